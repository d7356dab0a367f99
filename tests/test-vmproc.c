/* SPDX-License-Identifier: MIT */
/*
 * test-vmproc.c - one process per VM: what a VM process can reach, and
 * that whatever goes wrong in one (a system call outside its filter, a
 * crash, garbage on its channel, a kill -9) ends that VM alone.
 *
 * isolation: from a VM process's credentials (samepage-vm --probe-open
 *   drops them exactly as a VM process does after setup), another VM
 *   process's /proc/PID/mem and its descriptor of its share set's pool, and
 *   the supervisor's pool descriptors, cannot be opened; a world-readable
 *   file can (the probe works).
 * seccomp: opening init's /proc/1/mem fails with EACCES (the
 *   process aborts otherwise), then a system call outside the filter
 *   (ptrace) kills that VM process (SIGSYS); its VM is reported crashed
 *   and the others go on verifying.
 * bad-messages: a VM process that sends a message of another version, a
 *   packet larger than any message, one shorter than a header or one whose
 *   length lies is killed and its VM reported crashed ("protocol error");
 *   the supervisor and the other VMs go on.
 * kill-one: kill -9 of one of three sharing VM processes: it is crashed,
 *   the others verify on, and every pool frame still allocated has a
 *   mapper (the engine dropped the dead VM's references at once).
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/lib/vm-harness.h"
#include "vmm/vmproc/vmproc.h"

#define MEMLOAD "payload=memload,args=seed=5,rate=500,interval=100"

/* Run samepage-vm --probe-open PATH; its output line in *out. */
static bool probe_open(Harness *h, const char *path, char **out)
{
    const char *argv[] = {h->host->vm_binary, "--probe-open", path, NULL};
    g_autofree char *so = NULL, *se = NULL;
    gint status = 0;
    g_autoptr(GError) err = NULL;
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &so, &se, &status,
                      &err))
        g_error("cannot run the probe: %s", err->message);
    *out = g_strstrip(g_strdup_printf("%s%s", so ? so : "", se ? se : ""));
    g_test_message("probe %s: %s", path, *out);
    return g_spawn_check_wait_status(status, NULL);
}

/* The descriptors of `pid` that are the frame pools (memfd:samepage-frames). */
static GPtrArray *pool_fd_paths(pid_t pid)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *dir = g_strdup_printf("/proc/%d/fd", (int)pid);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *f;
    while (d && (f = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(dir, f, NULL);
        g_autofree char *target = g_file_read_link(p, NULL);
        if (target && strstr(target, "samepage-frames"))
            g_ptr_array_add(out, g_steal_pointer(&p));
    }
    return out;
}

static void wait_merged(Harness *h, uint64_t min)
{
    SpEngineStats st = {0};
    for (int i = 0; i < 600 && st.pages_sharing < min; i++) {
        harness_wait_scans(h->engine, 1, 2);
        sp_engine_get_stats(h->engine, &st);
    }
    g_assert_cmpuint(st.pages_sharing, >=, min);
}

static void test_isolation(void)
{
    Harness *h = harness_new();
    harness_use_fast_engine(h);
    SpVm *red = harness_add(h, "name=red,mem=16M,domain=red," MEMLOAD);
    harness_add(h, "name=red2,mem=16M,domain=red," MEMLOAD);
    SpVm *blue = harness_add(h, "name=blue,mem=16M,domain=blue," MEMLOAD);
    harness_add(h, "name=blue2,mem=16M,domain=blue," MEMLOAD);
    harness_start_all(h);
    wait_merged(h, 1000); /* both domains have pools now */
    g_autofree char *out = NULL;
    /* The probe works: a world-readable file opens. */
    g_assert_true(probe_open(h, "/etc/passwd", &out));
    g_assert_true(g_str_has_prefix(out, "opened"));
    g_clear_pointer(&out, g_free);
    /* Another VM process's memory. */
    g_autofree char *mem = g_strdup_printf("/proc/%d/mem", (int)sp_vm_pid(blue));
    g_assert_false(probe_open(h, mem, &out));
    g_assert_true(g_str_has_prefix(out, "denied"));
    g_clear_pointer(&out, g_free);
    /* Another share set's pool, through the VM process that maps it and
     * through the supervisor that owns it. */
    g_autoptr(GPtrArray) blue_pools = pool_fd_paths(sp_vm_pid(blue));
    g_autoptr(GPtrArray) sup_pools = pool_fd_paths(getpid());
    g_assert_cmpuint(blue_pools->len, >=, 1);
    g_assert_cmpuint(sup_pools->len, >=, 2); /* one per domain */
    for (guint i = 0; i < blue_pools->len; i++) {
        g_assert_false(probe_open(h, blue_pools->pdata[i], &out));
        g_assert_true(g_str_has_prefix(out, "denied"));
        g_clear_pointer(&out, g_free);
    }
    for (guint i = 0; i < sup_pools->len; i++) {
        g_assert_false(probe_open(h, sup_pools->pdata[i], &out));
        g_assert_true(g_str_has_prefix(out, "denied"));
        g_clear_pointer(&out, g_free);
    }
    /* A VM process holds only its own share set's pool. */
    g_autoptr(GPtrArray) red_pools = pool_fd_paths(sp_vm_pid(red));
    g_assert_cmpuint(red_pools->len, ==, 1);
    g_assert_cmpuint(harness_integrity_count(h), ==, 0);
    harness_free(h);
}

/* vm ends crashed with a reason containing `why`; the others verify on. */
static void expect_alone(Harness *h, SpVm *vm, const char *why)
{
    gint64 deadline =
        g_get_monotonic_time() + (gint64)(HARNESS_DEADLINE_S * harness_slow() * G_USEC_PER_SEC);
    SpVmInfo info;
    do {
        g_usleep(20000);
        sp_vm_get_info(vm, &info);
    } while (info.state == SP_VM_RUNNING && g_get_monotonic_time() < deadline);
    g_autofree char *reason = sp_vm_get_reason(vm);
    g_test_message("%s: %s (%s)", sp_vm_name(vm), sp_vm_state_name(info.state), reason);
    g_assert_cmpint(info.state, ==, SP_VM_CRASHED);
    g_assert_nonnull(strstr(reason, why));
    for (guint i = 0; i < h->vms->len; i++) {
        SpVm *o = h->vms->pdata[i];
        SpVmInfo oi;
        sp_vm_get_info(o, &oi);
        if (o == vm || oi.state != SP_VM_RUNNING)
            continue;
        g_assert_true(harness_wait_rounds(h, o, oi.rounds + 2, HARNESS_DEADLINE_S));
    }
}

static void test_seccomp(void)
{
    Harness *h = harness_new();
    SpVm *bad = harness_add(h, "name=bad,mem=16M," MEMLOAD);
    harness_add(h, "name=good,mem=16M," MEMLOAD);
    harness_start_all(h);
    g_assert_true(harness_wait_rounds(h, bad, 1, HARNESS_DEADLINE_S));
    sp_vm_test_hook(bad, SP_VMPROC_HOOK_OPEN, NULL);
    expect_alone(h, bad, "Bad system call");
    g_assert_cmpuint(harness_integrity_count(h), ==, 0);
    harness_free(h);
}

static void test_bad_messages(void)
{
    const uint32_t hooks[] = {SP_VMPROC_HOOK_BAD_VERSION, SP_VMPROC_HOOK_OVERSIZED,
                              SP_VMPROC_HOOK_TRUNCATED, SP_VMPROC_HOOK_BAD_LENGTH};
    Harness *h = harness_new();
    harness_use_fast_engine(h);
    SpVm *bad[4];
    for (int i = 0; i < 4; i++)
        bad[i] = harness_add(h, "name=bad%d,mem=16M,domain=d," MEMLOAD, i);
    harness_add(h, "name=good,mem=16M,domain=d," MEMLOAD);
    harness_start_all(h);
    wait_merged(h, 1000);
    for (int i = 0; i < 4; i++) {
        sp_vm_test_hook(bad[i], hooks[i], NULL);
        expect_alone(h, bad[i], "protocol error");
    }
    g_assert_cmpuint(harness_integrity_count(h), ==, 0);
    harness_free(h);
}

static void test_kill_one(void)
{
    Harness *h = harness_new();
    harness_use_fast_engine(h);
    SpVm *vm[3];
    for (int i = 0; i < 3; i++)
        vm[i] = harness_add(h, "name=k%d,mem=32M,domain=k," MEMLOAD, i);
    harness_start_all(h);
    wait_merged(h, 3000);
    kill(sp_vm_pid(vm[1]), SIGKILL);
    expect_alone(h, vm[1], "signal 9");
    /* The supervisor lets the dead VM go (as samepaged does when it sees
     * the end): its references go with it. */
    g_ptr_array_remove(h->vms, vm[1]);
    sp_vm_free(vm[1]);
    harness_wait_scans(h->engine, 2, HARNESS_DEADLINE_S);
    SpEngineStats st;
    sp_engine_get_stats(h->engine, &st);
    g_test_message("pool frames %" G_GUINT64_FORMAT ", frames shared %" G_GUINT64_FORMAT,
                   st.pool_frames, st.pages_shared);
    g_assert_cmpuint(st.pool_frames, ==, st.pages_shared); /* each has a mapper */
    g_assert_cmpuint(st.pages_sharing, >, 0);
    g_assert_cmpuint(harness_integrity_count(h), ==, 0);
    harness_free(h);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    /* The supervisor warns about the misbehaving VM processes these tests
     * make: that is expected; criticals (a recount mismatch) stay fatal. */
    g_log_set_always_fatal(G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL);
    g_test_add_func("/vmproc/isolation", test_isolation);
    g_test_add_func("/vmproc/seccomp", test_seccomp);
    g_test_add_func("/vmproc/bad-messages", test_bad_messages);
    g_test_add_func("/vmproc/kill-one", test_kill_one);
    return g_test_run();
}
