/* SPDX-License-Identifier: MIT */
/*
 * test-vm-run.c - real VMs on /dev/kvm running memload, each in its own
 * process: concurrency, a byte flipped from outside the guest (through the
 * VM process's /proc/PID/mem, as root could) that the guest must catch at
 * its exact address, a lazily allocated 4 GiB guest, and a crash next to a
 * healthy VM.
 */
#include <stdio.h>
#include <string.h>

#include "tests/lib/vm-harness.h"

#define IMAGE "/usr/lib/x86_64-linux-gnu/libc.so.6"

/* 4 VMs x 256 MiB x 2 vCPUs of memload, churning and verifying. */
static void test_four_vms(void)
{
    Harness *h = harness_new();
    SpVm *vm[4];
    for (int i = 0; i < 4; i++)
        vm[i] = harness_add(h,
                            "name=m%d,mem=256M,vcpus=2,payload=memload,image=" IMAGE
                            ",args=seed=7,rounds=4,rate=5000,dup=30,interval=300",
                            i);
    harness_start_all(h);
    g_assert_true(harness_wait_all(h, 120));
    for (int i = 0; i < 4; i++) {
        SpVmInfo info;
        sp_vm_get_info(vm[i], &info);
        g_assert_cmpstr(sp_vm_state_name(info.state), ==, "exited");
        g_assert_cmpint(info.exit_status, ==, 0);
        g_assert_cmpuint(info.rounds, >=, 4);
        g_assert_cmpuint(info.integrity_errors, ==, 0);
        g_assert_cmpuint(info.pages_rewritten, >, 0);
        uint64_t total = 0, image = 0, blob = 0;
        g_assert_true(sp_vm_get_result(vm[i], "pages_total", &total));
        g_assert_true(sp_vm_get_result(vm[i], "pages_image", &image));
        g_assert_true(sp_vm_get_result(vm[i], "blob_pages", &blob));
        /* it managed nearly all of its 256 MiB, the image file in it; its
         * image pages are counted at the end, after the churn (rate= per
         * second): inside the emulated host a round lasts long enough for
         * the churn to rewrite every one of them. */
        g_assert_cmpuint(total, >, 60000);
        g_assert_cmpuint(blob, >, 0);
        if (harness_slow() == 1)
            g_assert_cmpuint(image, >, 0);
        g_assert_cmpuint(info.pages_verified, ==, total);
    }
    g_assert_cmpuint(harness_integrity_count(h), ==, 0);
    harness_free(h);
}

/* Flip one byte of guest RAM from outside the guest (the VM process's
 * /proc/PID/mem); memload must name that address. */
static void test_byte_flip(void)
{
    Harness *h = harness_new();
    SpVm *vm = harness_add(h, "name=flip,mem=64M,vcpus=2,payload=memload,"
                              "args=seed=3,rounds=0,interval=50");
    harness_start_all(h);
    g_assert_true(harness_wait_rounds(h, vm, 1, 30));
    g_assert_cmpuint(harness_integrity_count(h), ==, 0);

    /* an odd byte in a managed page */
    const uint64_t gpa = sp_vm_config(vm)->mem_size - 5 * 4096 + 1237;
    uint8_t b = 0;
    harness_vm_read(vm, gpa, &b, 1);
    b ^= 0x20;
    harness_vm_write(vm, gpa, &b, 1);
    SpVmInfo info;
    sp_vm_get_info(vm, &info);
    g_assert_true(harness_wait_rounds(h, vm, info.rounds + 2, 30));
    sp_vm_request_stop(vm);
    sp_vm_wait(vm);

    g_assert_cmpuint(harness_integrity_count(h), >=, 1);
    HarnessIntegrity *r = &g_array_index(h->integrity, HarnessIntegrity, 0);
    g_assert_true(r->vm == vm);
    g_assert_cmphex(r->gpa, ==, gpa);
    /* the 8-byte words it reports differ in exactly the flipped bit */
    g_assert_cmphex(r->expected ^ r->found, ==, (uint64_t)0x20 << (8 * (gpa & 7)));
    harness_free(h);
}

/* Bytes of [base, base + len) that the process maps (/proc/PID/maps). */
static uint64_t mapped_bytes(pid_t pid, uint64_t base, uint64_t len)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/maps", (int)pid);
    g_autofree char *maps = NULL;
    g_assert_true(g_file_get_contents(path, &maps, NULL, NULL));
    g_auto(GStrv) lines = g_strsplit(maps, "\n", -1);
    uint64_t total = 0;
    for (char **l = lines; *l; l++) {
        unsigned long long a = 0, b = 0;
        if (sscanf(*l, "%llx-%llx", &a, &b) != 2)
            continue;
        uint64_t lo = MAX(a, base), hi = MIN(b, base + len);
        total += hi > lo ? hi - lo : 0;
    }
    return total;
}

/* A 4 GiB guest starts without 4 GiB of host memory and runs over part of
 * it: what it costs the host is its VM process's resident memory, plus
 * whatever the supervisor (this process) grew by for it. */
static void test_big_lazy(void)
{
    Harness *h = harness_new();
    uint64_t rss0 = harness_rss_pages();
    SpVm *vm = harness_add(h, "name=big,mem=4G,vcpus=2,payload=memload,"
                              "args=seed=5,pages=32768,rounds=2,rate=1000,interval=100");
    harness_start_all(h);
    g_assert_true(harness_wait_all(h, HARNESS_DEADLINE_S));
    SpVmInfo info;
    sp_vm_get_info(vm, &info);
    g_assert_cmpint(info.exit_status, ==, 0);
    g_assert_cmpuint(info.integrity_errors, ==, 0);
    uint64_t vm_rss = harness_vm_rss_pages(vm) * 4096;
    uint64_t rss1 = harness_rss_pages();
    uint64_t super_grew = (rss1 > rss0 ? rss1 - rss0 : 0) * 4096;
    uint64_t grew = vm_rss + super_grew;
    g_test_message("4 GiB VM with 128 MiB in use: VM process RSS %" G_GUINT64_FORMAT
                   " MiB, supervisor RSS grew %" G_GUINT64_FORMAT " MiB",
                   vm_rss >> 20, super_grew >> 20);
    g_assert_cmpuint(vm_rss, >, 0); /* its process is still there to measure */
    g_assert_cmpuint(grew, <, 512ULL << 20);
    /* and its process really maps 4 GiB of guest RAM */
    g_assert_cmpuint(mapped_bytes(sp_vm_pid(vm), sp_vm_ram_base(vm), 4ULL << 30), ==, 4ULL << 30);
    harness_free(h);
}

/* A triple-faulting VM is reported as crashed; memload next to it finishes. */
static void test_crash_beside_healthy(void)
{
    Harness *h = harness_new();
    SpVm *bad = harness_add(h, "name=bad,mem=16M,payload=crash,args=mode=ud2");
    SpVm *good = harness_add(h, "name=good,mem=64M,vcpus=2,payload=memload,args=seed=1,rounds=3");
    harness_start_all(h);
    g_assert_true(harness_wait_all(h, HARNESS_DEADLINE_S));
    SpVmInfo ib, ig;
    sp_vm_get_info(bad, &ib);
    sp_vm_get_info(good, &ig);
    g_assert_cmpstr(sp_vm_state_name(ib.state), ==, "crashed");
    g_autofree char *reason = sp_vm_get_reason(bad);
    g_assert_nonnull(strstr(reason, "triple fault"));
    g_assert_nonnull(strstr(reason, "rip "));
    g_assert_cmpstr(sp_vm_state_name(ig.state), ==, "exited");
    g_assert_cmpint(ig.exit_status, ==, 0);
    g_assert_cmpuint(ig.rounds, ==, 3);
    harness_free(h);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vm-run/four-vms", test_four_vms);
    g_test_add_func("/vm-run/byte-flip", test_byte_flip);
    g_test_add_func("/vm-run/big-lazy", test_big_lazy);
    g_test_add_func("/vm-run/crash-beside-healthy", test_crash_beside_healthy);
    return g_test_run();
}
