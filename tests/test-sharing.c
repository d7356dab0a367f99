/* SPDX-License-Identifier: MIT */
/*
 * test-sharing.c - the sharing engine with real VMs running memload.
 *
 * ksm01: LTP's KSM counter sequence across three VMs, with KSM's exact
 * counter values after each step, run=2 and run=0, and the
 * max_page_sharing remainder rule.  The guests verify every byte the
 * whole time.
 */
#include <stdio.h>
#include <string.h>

#include "guest-tools/memload.h"
#include "tests/vm-harness.h"

#define NPAGES 1024 /* managed pages per VM */

typedef struct Want {
    uint64_t shared, sharing, vol, unshared;
} Want;

/* Wait until the counters settle at `w` (checked after every full scan). */
static void expect_counters(Harness *h, const char *step, Want w)
{
    SpEngineStats st = {0};
    for (int i = 0; i < 400; i++) {
        sp_engine_wait_scans(h->engine, 1, 5);
        sp_engine_get_stats(h->engine, &st);
        if (st.pages_shared == w.shared && st.pages_sharing == w.sharing &&
            st.pages_volatile == w.vol && st.pages_unshared == w.unshared)
            break;
    }
    g_test_message("%s: shared %" G_GUINT64_FORMAT " sharing %" G_GUINT64_FORMAT
                   " volatile %" G_GUINT64_FORMAT " unshared %" G_GUINT64_FORMAT,
                   step, st.pages_shared, st.pages_sharing, st.pages_volatile, st.pages_unshared);
    g_assert_cmpuint(st.pages_shared, ==, w.shared);
    g_assert_cmpuint(st.pages_sharing, ==, w.sharing);
    g_assert_cmpuint(st.pages_volatile, ==, w.vol);
    g_assert_cmpuint(st.pages_unshared, ==, w.unshared);
}

/* Every VM completes two more verify rounds with no integrity error. */
static void expect_bytes_intact(Harness *h)
{
    for (guint i = 0; i < h->vms->len; i++) {
        SpVm *vm = h->vms->pdata[i];
        SpVmInfo info;
        sp_vm_get_info(vm, &info);
        g_assert_true(harness_wait_rounds(h, vm, info.rounds + 2, 60));
    }
    g_assert_cmpuint(harness_integrity_count(h), ==, 0);
}

static void set_knob_mps(Harness *h, uint32_t run, uint32_t mps)
{
    SpEngineKnobs k;
    g_autoptr(GError) err = NULL;
    sp_engine_get_knobs(h->engine, &k);
    k.run = run;
    k.max_page_sharing = mps;
    g_assert_true(sp_engine_set_knobs(h->engine, &k, &err));
}

static void test_ksm01(void)
{
    Harness *h = harness_new();
    SpEngineKnobs k;
    sp_engine_default_knobs(&k);
    k.run = 0;
    k.sleep_millisecs = 0;
    k.pages_to_scan = 100000;
    k.max_page_sharing = 1 << 20;
    harness_use_engine(h, &k);
    const char fill[3] = {'c', 'a', 'a'};
    SpVm *vm[3];
    for (int i = 0; i < 3; i++)
        vm[i] = harness_add(h,
                            "name=k%d,mem=16M,vcpus=1,domain=ksm,payload=memload,"
                            "args=fill=%c,pages=%d,interval=50",
                            i, fill[i], NPAGES);
    harness_start_all(h);
    for (int i = 0; i < 3; i++)
        harness_share_managed(h, vm[i]);
    harness_engine_run(h, 1);
    const uint64_t n = 3 * NPAGES;

    expect_counters(h, "c/a/a", (Want){2, n - 2, 0, 0});
    expect_bytes_intact(h);

    g_assert_true(harness_command(vm[1], ML_CMD_FILL, 'b', 30));
    expect_counters(h, "c/b/a", (Want){3, n - 3, 0, 0});
    expect_bytes_intact(h);

    for (int i = 0; i < 3; i++)
        g_assert_true(harness_command(vm[i], ML_CMD_FILL, 'd', 30));
    expect_counters(h, "d/d/d", (Want){1, n - 1, 0, 0});
    expect_bytes_intact(h);

    g_assert_true(harness_command(vm[1], ML_CMD_SET_ONE, (5 << 8) | 'e', 30));
    expect_counters(h, "d/d(e)/d", (Want){1, n - 2, 0, 1});
    expect_bytes_intact(h);

    /* run=2: everything unmerged, every byte still there. */
    harness_engine_run(h, 2);
    expect_counters(h, "run=2", (Want){0, 0, 0, 0});
    SpEngineStats st;
    sp_engine_get_stats(h->engine, &st);
    g_assert_cmpuint(st.zero_pages, ==, 0);
    expect_bytes_intact(h);
    /* run=0 stays at 0 while the guests keep running */
    harness_engine_run(h, 0);
    g_usleep(500000);
    sp_engine_get_stats(h->engine, &st);
    g_assert_cmpuint(st.pages_shared + st.pages_sharing, ==, 0);

    /* max_page_sharing: n identical pages need n/mps frames (+1 for a remainder). */
    g_assert_true(harness_command(vm[1], ML_CMD_SET_ONE, (5 << 8) | 'd', 30));
    const uint32_t mps = 7;
    set_knob_mps(h, 1, mps);
    uint64_t shared = n / mps + (n % mps ? 1 : 0);
    expect_counters(h, "mps=7", (Want){shared, n - shared, 0, 0});
    expect_bytes_intact(h);
    harness_free(h);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/sharing/ksm01-counters", test_ksm01);
    return g_test_run();
}
