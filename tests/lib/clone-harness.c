/* SPDX-License-Identifier: MIT */
/*
 * clone-harness.c - helpers shared by the clone and reverse-map tests:
 * cloning into a harness, waiting for verified rounds, dropping a VM,
 * reading physical frame numbers of guest RAM.  See clone-harness.h.
 */
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

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
        g_assert_cmpuint(total, >, 10000);
        g_assert_cmpuint(info.pages_verified, ==, total); /* every managed page */
    }
    g_assert_cmpuint(harness_integrity_count(h), ==, 0);
}

/* Remove `vm` from the harness and free it (its RAM is unmapped). */
void drop_vm(Harness *h, SpVm *vm)
{
    sp_vm_request_stop(vm);
    sp_vm_wait(vm);
    g_ptr_array_remove(h->vms, vm);
    sp_vm_free(vm);
}

/* Physical frame numbers of a VM's RAM from /proc/self/pagemap (0 = not
 * present), read in one go so the VMs barely move meanwhile. */
uint64_t *ram_pfns(SpVm *vm, uint64_t *npages)
{
    SpGuestMem *m = sp_vm_mem(vm);
    uint64_t np = m->size / 4096;
    uint64_t *e = g_new(uint64_t, np);
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, e, np * 8, (off_t)((uintptr_t)m->host / 4096 * 8)), ==,
                    (ssize_t)(np * 8));
    close(fd);
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

/* Read one byte of every page of a VM from the host: maps its shared
 * pages into our page tables without writing anything. */
void touch_read(SpVm *vm)
{
    SpGuestMem *m = sp_vm_mem(vm);
    volatile uint8_t sink = 0;
    for (uint64_t off = 0; off < m->size; off += 4096)
        sink ^= ((volatile uint8_t *)m->host)[off];
    (void)sink;
}

SpVm *start_template(Harness *h, const char *name, const char *extra)
{
    SpVm *t = harness_add(h, "name=%s,mem=128M,vcpus=2," MEMLOAD "%s", name, extra);
    harness_start_all(h);
    g_assert_true(harness_wait_rounds(h, t, 1, HARNESS_DEADLINE_S));
    return t;
}
