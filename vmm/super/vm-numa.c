/* SPDX-License-Identifier: MIT */
/*
 * vm-numa.c - a running VM's NUMA placement, from the supervisor
 * (docs/numa.md): change its memory policy (the VM process moves its RAM:
 * vmm/vmproc/numa.c) and read its resident pages per host node.
 *
 * The VM's policy lives in vm->cfg (numa_mode, numa_nodes), changed only
 * here and under vm->lock; sp_vm_numa_policy() copies it out under the
 * same lock.  A clone child gets a copy of its source's cfg, so it
 * inherits the policy the source has at the time of the clone.
 */
#include <string.h>

#include "vmm/super/vm-priv.h"
#include "vmm/vm-placement.h"

/* A move copies every page only this VM maps; under TCG (the emulated
 * host) that is ~100x slower than on hardware: 30 s plus 1 s per 8 MiB. */
static double move_timeout_s(SpVm *vm)
{
    return 30.0 + (double)(vm->cfg->mem_size >> 23);
}

bool sp_vm_set_numa(SpVm *vm, SpNumaMode mode, const char *nodes, GError **error)
{
    if (mode == SP_NUMA_DEFAULT || !nodes || !sp_numa_nodes_check(nodes, error)) {
        if (error && !*error)
            g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_INVALID, "a NUMA move needs a node set");
        return false;
    }
    g_autoptr(GByteArray) b = g_byte_array_new();
    uint32_t m = mode;
    g_byte_array_append(b, (const guint8 *)&m, 4);
    g_byte_array_append(b, (const guint8 *)nodes, (guint)strlen(nodes));
    if (b->len > 4 + 256) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_INVALID, "node set '%s' is too long", nodes);
        return false;
    }
    SpProtoMsg r;
    if (!sp_vm_request(vm, SP_PROTO_NUMA_SET, b->data, b->len, NULL, 0, move_timeout_s(vm), &r,
                       error))
        return false;
    SpProtoReader rd = sp_proto_reader(&r);
    uint64_t moved = 0;
    sp_proto_read(&rd, &moved, 8); /* a short reply counts 0 */
    sp_proto_msg_clear(&r);
    g_mutex_lock(&vm->lock);
    vm->numa_migrated += moved;
    vm->cfg->numa_mode = mode;
    g_free(vm->cfg->numa_nodes);
    vm->cfg->numa_nodes = g_strdup(nodes);
    vm->numa_us = 0; /* the pages moved */
    g_mutex_unlock(&vm->lock);
    return true;
}

uint64_t sp_vm_numa_migrated(SpVm *vm)
{
    g_mutex_lock(&vm->lock);
    uint64_t n = vm->numa_migrated;
    g_mutex_unlock(&vm->lock);
    return n;
}

void sp_vm_numa_policy(SpVm *vm, SpNumaMode *mode, char **nodes)
{
    g_mutex_lock(&vm->lock);
    *mode = vm->cfg->numa_mode;
    *nodes = g_strdup(vm->cfg->numa_nodes);
    g_mutex_unlock(&vm->lock);
}

/* How long a NUMA_PAGES answer is reused: a scrape or a domstats loop
 * costs the VM process one query (a kernel walk of all of guest RAM, ~10
 * ms per GiB) every NUMA_PAGES_MAX_AGE_US at most. */
#define NUMA_PAGES_MAX_AGE_US (2 * G_USEC_PER_SEC)

void sp_vm_numa_pages_stale(SpVm *vm)
{
    g_mutex_lock(&vm->lock);
    vm->numa_us = 0;
    g_mutex_unlock(&vm->lock);
}

bool sp_vm_numa_pages(SpVm *vm, GArray *out, GError **error)
{
    gint64 now = g_get_monotonic_time();
    g_mutex_lock(&vm->lock);
    bool fresh = vm->numa_us && now - vm->numa_us < NUMA_PAGES_MAX_AGE_US;
    if (fresh) {
        g_array_set_size(out, 0);
        g_array_append_vals(out, vm->numa_pages, vm->numa_nodes);
    }
    g_mutex_unlock(&vm->lock);
    if (fresh)
        return true;
    SpProtoMsg r;
    if (!sp_vm_request(vm, SP_PROTO_NUMA_PAGES, NULL, 0, NULL, 0, 10.0, &r, error))
        return false;
    SpProtoReader rd = sp_proto_reader(&r);
    uint32_t n = 0;
    sp_proto_read(&rd, &n, 4);
    /* the array follows a u32: copied out, it is not 8-byte aligned */
    uint64_t pages[SP_PROTO_NUMA_NODES];
    bool ok = n <= SP_PROTO_NUMA_NODES && sp_proto_read(&rd, pages, (size_t)n * 8) && !rd.bad;
    if (ok) {
        /* up to the last node with pages */
        guint len = 0;
        for (guint i = 0; i < n; i++)
            if (pages[i])
                len = i + 1;
        g_array_set_size(out, 0);
        g_array_append_vals(out, pages, len);
        g_mutex_lock(&vm->lock);
        memcpy(vm->numa_pages, pages, len * 8);
        vm->numa_nodes = len;
        vm->numa_us = now;
        g_mutex_unlock(&vm->lock);
    } else {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_REFUSED, "VM '%s': bad NUMA_PAGES reply",
                    vm->name);
    }
    sp_proto_msg_clear(&r);
    return ok;
}
