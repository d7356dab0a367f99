/* SPDX-License-Identifier: MIT */
/*
 * clone-harness.c - helpers shared by the clone and reverse-map tests:
 * cloning into a harness, waiting for verified rounds, dropping a VM,
 * reading physical frame numbers of guest RAM from each VM process's
 * pagemap.  See clone-harness.h.
 */
#include <stdio.h>
#include <string.h>

#include "tests/lib/clone-harness.h"

/* Clone `src` n times into the harness (children named <prefix><i>). */
void clone_into(Harness *h, SpVm *src, const char *prefix, uint32_t n, SpVm **out,
                SpVmCloneTimes *t)
{
    SpVmEvents ev = harness_events(h);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    uint64_t ids[SP_VM_CLONE_MAX];
    for (uint32_t i = 0; i < n; i++) {
        g_ptr_array_add(names, g_strdup_printf("%s%u", prefix, i));
        ids[i] = harness_new_vm_id();
    }
    g_autoptr(GError) err = NULL;
    if (!sp_vm_clone_many(src, n, (const char *const *)names->pdata, ids, &ev, out, t, &err))
        g_error("%s", err->message);
    for (uint32_t i = 0; i < n; i++)
        g_ptr_array_add(h->vms, out[i]);
}

uint64_t rounds_of(SpVm *vm)
{
    SpVmInfo info;
    sp_vm_get_info(vm, &info);
    return info.rounds;
}

/* Each VM verifies `more` further full rounds with no integrity error. */
void wait_more_rounds(Harness *h, SpVm **vms, guint n, uint64_t more)
{
    uint64_t goal[64];
    g_assert_cmpuint(n, <=, 64);
    for (guint i = 0; i < n; i++)
        goal[i] = rounds_of(vms[i]) + more;
    for (guint i = 0; i < n; i++) {
        if (!harness_wait_rounds(h, vms[i], goal[i], HARNESS_DEADLINE_S))
            g_error("VM '%s' did not reach round %" G_GUINT64_FORMAT, sp_vm_name(vms[i]), goal[i]);
        SpVmInfo info;
        sp_vm_get_info(vms[i], &info);
        g_assert_cmpuint(info.integrity_errors, ==, 0);
        uint64_t total = 0;
        g_assert_true(sp_vm_get_result(vms[i], "pages_total", &total));
        g_assert_cmpuint(total, >, 5000);                 /* (32 MiB VMs hold about 6600) */
        g_assert_cmpuint(info.pages_verified, ==, total); /* every managed page */
    }
    g_assert_cmpuint(harness_integrity_count(h), ==, 0);
}

/* Remove `vm` from the harness and free it (its process ends). */
void drop_vm(Harness *h, SpVm *vm)
{
    sp_vm_request_stop(vm);
    sp_vm_wait(vm);
    g_ptr_array_remove(h->vms, vm);
    sp_vm_free(vm);
}

/* Physical frame numbers of a VM's RAM from its process's pagemap (0 =
 * not present), read in one go so the VMs barely move meanwhile. */
uint64_t *ram_pfns(SpVm *vm, uint64_t *npages)
{
    uint64_t np = sp_vm_config(vm)->mem_size / 4096;
    uint64_t *e = g_new(uint64_t, np);
    if (!harness_vm_pagemap(vm, 0, np, e))
        g_error("cannot read the pagemap of VM '%s' (pid %d)", sp_vm_name(vm), (int)sp_vm_pid(vm));
    for (uint64_t i = 0; i < np; i++)
        e[i] = (e[i] >> 63) ? e[i] & ((1ULL << 55) - 1) : 0;
    *npages = np;
    return e;
}

/* Distinct physical frames behind the RAM of these VMs, and the number of
 * present pages of the first one. */
uint64_t distinct_frames(SpVm **vms, guint n, uint64_t *first_present)
{
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    for (guint i = 0; i < n; i++) {
        uint64_t np;
        g_autofree uint64_t *pfn = ram_pfns(vms[i], &np);
        for (uint64_t g = 0; g < np; g++) {
            if (!pfn[g])
                continue;
            if (i == 0)
                (*first_present)++;
            g_hash_table_add(seen, g_memdup2(&pfn[g], 8));
        }
    }
    return g_hash_table_size(seen);
}

/* Read every page of a VM through its process's /proc/PID/mem (64 MiB a
 * pread): the reads fault its shared pages into the VM process's page
 * tables, as the guest's own first read would, without writing anything. */
void touch_read(SpVm *vm)
{
    const uint64_t chunk = 64ULL << 20, size = sp_vm_config(vm)->mem_size;
    g_autofree uint8_t *buf = g_malloc(MIN(chunk, size));
    for (uint64_t off = 0; off < size; off += chunk)
        harness_vm_read(vm, off, buf, MIN(chunk, size - off));
}

SpVm *start_template(Harness *h, const char *name, const char *extra)
{
    SpVm *t = harness_add(h, "name=%s,mem=128M,vcpus=2," MEMLOAD "%s", name, extra);
    harness_start_all(h);
    if (!harness_wait_rounds(h, t, 1, HARNESS_DEADLINE_S)) {
        SpVmInfo info;
        sp_vm_get_info(t, &info);
        g_error("template '%s' did not verify its memory once: %s", name,
                sp_vm_state_name(info.state));
    }
    return t;
}
