/* SPDX-License-Identifier: MIT */
/*
 * rmap.c - VMs in the reverse map, the walk, lookups and syncs (rmap.h).
 *
 * Invariants: rv->layout != NULL iff rv is a member of every group of that
 * layout (and of no other); rv->clone_shared = number of pages g with
 * layout->layer[g]'s group holding page g and the off bit of g clear.
 * Off bits only ever go from 0 to 1 while a layout stays; note_off keeps
 * the counter in step with an atomic test-and-set.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rmap/rmap-priv.h"

typedef struct RmapPool {
    const void *pool;
    SpRmapPoolOps ops;
    void *opaque;
} RmapPool;

static GArray *pools; /* RmapPool, rmap_lock */

static size_t shared_len(uint64_t npages)
{
    return sizeof(RmapShared) + (npages + 63) / 64 * 8;
}

/* An entry over the shared off bits mapped at p (len bytes; fd: theirs). */
static SpRmapVm *rmap_vm_alloc(uint64_t vm_id, const char *name, uint64_t npages, int fd, void *p,
                               size_t len)
{
    SpRmapVm *rv = g_new0(SpRmapVm, 1);
    rv->id = vm_id;
    rv->name = g_strdup(name);
    rv->npages = npages;
    rv->shared_fd = fd;
    rv->shared = p;
    rv->shared_len = len;
    rv->off = (uint64_t *)(rv->shared + 1);
    return rv;
}

SpRmapVm *sp_rmap_vm_new(uint64_t vm_id, const char *name, SpGuestMem *mem, GError **error)
{
    uint64_t npages = mem->size / SP_PAGE_SIZE;
    size_t len = shared_len(npages);
    int fd = memfd_create("samepage-offbits", MFD_CLOEXEC);
    void *p = MAP_FAILED;
    if (fd >= 0 && ftruncate(fd, (off_t)len) == 0)
        p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        g_set_error(error, SP_RMAP_ERROR, SP_RMAP_ERROR_INVALID,
                    "VM '%s': cannot make its reverse-map bits: %s", name, g_strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    SpRmapVm *rv = rmap_vm_alloc(vm_id, name, npages, fd, p, len);
    rv->mem = mem;
    rv->shared->magic = RMAP_SHARED_MAGIC;
    rv->shared->npages = npages;
    return rv;
}

SpRmapVm *sp_rmap_vm_new_remote(uint64_t vm_id, const char *name, uint64_t npages, int off_fd,
                                GError **error)
{
    size_t len = shared_len(npages);
    struct stat st;
    void *p = MAP_FAILED;
    if (off_fd >= 0 && fstat(off_fd, &st) == 0 && (uint64_t)st.st_size == len)
        p = mmap(NULL, len, PROT_READ, MAP_SHARED, off_fd, 0);
    if (p == MAP_FAILED || ((RmapShared *)p)->npages != npages) {
        g_set_error(error, SP_RMAP_ERROR, SP_RMAP_ERROR_INVALID,
                    "VM '%s': its reverse-map bits are missing or the wrong size", name);
        if (p != MAP_FAILED)
            munmap(p, len);
        return NULL;
    }
    SpRmapVm *rv = rmap_vm_alloc(vm_id, name, npages, -1, p, len);
    rv->remote = true;
    return rv;
}

void sp_rmap_vm_set_remote(SpRmapVm *rv, int pid, uint64_t ram_base, SpRmapSyncFn sync,
                           void *opaque)
{
    g_mutex_lock(&rmap_lock);
    rv->pid = pid;
    rv->ram_base = ram_base;
    rv->sync_fn = sync;
    rv->sync_opaque = opaque;
    g_mutex_unlock(&rmap_lock);
}

int sp_rmap_vm_off_fd(const SpRmapVm *rv)
{
    return rv->shared_fd;
}

const SpCloneLayout *sp_rmap_vm_layout(const SpRmapVm *rv)
{
    return __atomic_load_n(&rv->layout, __ATOMIC_ACQUIRE);
}

const uint8_t *sp_rmap_vm_layers(const SpRmapVm *rv)
{
    const SpCloneLayout *l = __atomic_load_n(&rv->layout, __ATOMIC_ACQUIRE);
    return l ? l->layer : NULL;
}

bool sp_rmap_vm_has_layout(const SpRmapVm *rv)
{
    return __atomic_load_n(&rv->layout, __ATOMIC_ACQUIRE) != NULL;
}

static void rmap_vm_leave_locked(SpRmapVm *rv)
{
    if (!rv->layout)
        return;
    for (guint i = 0; i < rv->layout->groups->len; i++)
        clone_group_remove_member(g_ptr_array_index(rv->layout->groups, i), rv);
    rv->layout = NULL;
    if (!rv->remote)
        __atomic_store_n(&rv->shared->clone_shared, 0, __ATOMIC_RELAXED);
}

void sp_rmap_vm_free(SpRmapVm *rv)
{
    if (!rv)
        return;
    g_mutex_lock(&rmap_lock);
    SpCloneLayout *layout = rv->layout;
    rmap_vm_leave_locked(rv);
    g_mutex_unlock(&rmap_lock);
    sp_clone_layout_free(layout); /* after leaving its groups */
    munmap(rv->shared, rv->shared_len);
    if (rv->shared_fd >= 0)
        close(rv->shared_fd);
    g_free(rv->name);
    g_free(rv);
}

static const SpCloneGroup *layout_group(const SpCloneLayout *l, uint64_t gfn)
{
    return g_ptr_array_index(l->groups, l->layer[gfn]);
}

void rmap_vm_set_layout(SpRmapVm *rv, SpCloneLayout *layout)
{
    g_mutex_lock(&rmap_lock);
    SpCloneLayout *old = rv->layout;
    rmap_vm_leave_locked(rv);
    if (layout) {
        g_assert(layout->npages == rv->npages);
        for (guint i = 0; i < layout->groups->len; i++)
            clone_group_add_member(g_ptr_array_index(layout->groups, i), rv, (uint8_t)i);
        if (!rv->remote) {
            memset(rv->off, 0, (rv->npages + 63) / 64 * 8);
            uint64_t shared = 0;
            for (uint64_t g = 0; g < rv->npages; g++)
                shared += rmap_bit(layout_group(layout, g)->present, g);
            __atomic_store_n(&rv->shared->clone_shared, shared, __ATOMIC_RELAXED);
        }
        __atomic_store_n(&rv->layout, layout, __ATOMIC_RELEASE);
    }
    g_mutex_unlock(&rmap_lock);
    sp_clone_layout_free(old);
}

void sp_rmap_vm_adopt_layout(SpRmapVm *rv, SpCloneLayout *layout)
{
    g_assert(rv->remote);
    rmap_vm_set_layout(rv, layout);
}

void sp_rmap_vm_note_off(SpRmapVm *rv, uint64_t gfn)
{
    const SpCloneLayout *l = __atomic_load_n(&rv->layout, __ATOMIC_ACQUIRE);
    if (!l || gfn >= rv->npages || rv->remote)
        return;
    uint64_t bit = 1ULL << (gfn % 64);
    uint64_t old = __atomic_fetch_or(&rv->off[gfn / 64], bit, __ATOMIC_ACQ_REL);
    if (!(old & bit) && rmap_bit(layout_group(l, gfn)->present, gfn))
        __atomic_fetch_sub(&rv->shared->clone_shared, 1, __ATOMIC_RELAXED);
}

void sp_rmap_vm_copy_off(const SpRmapVm *rv, uint64_t *out)
{
    uint64_t words = (rv->npages + 63) / 64;
    for (uint64_t w = 0; w < words; w++)
        out[w] = rv->layout && rv->off ? __atomic_load_n(&rv->off[w], __ATOMIC_RELAXED) : 0;
}

bool sp_rmap_vm_maps_layer(const SpRmapVm *rv, uint64_t gfn)
{
    return rv->layout && gfn < rv->npages && !rmap_bit(rv->off, gfn);
}

uint64_t sp_rmap_vm_clone_shared(const SpRmapVm *rv)
{
    if (!rv->layout)
        return 0;
    /* A remote VM's figure is what it says: at most its page count. */
    return MIN(__atomic_load_n(&rv->shared->clone_shared, __ATOMIC_RELAXED), rv->npages);
}

SpCloneGroup *sp_rmap_vm_group(const SpRmapVm *rv)
{
    const SpCloneLayout *l = rv->layout;
    return l ? g_ptr_array_index(l->groups, l->groups->len - 1) : NULL;
}

SpCloneGroup *sp_rmap_vm_layer_group(const SpRmapVm *rv, uint64_t gfn)
{
    const SpCloneLayout *l = rv->layout;
    return l && gfn < rv->npages ? g_ptr_array_index(l->groups, l->layer[gfn]) : NULL;
}

guint sp_rmap_vm_groups(const SpRmapVm *rv, SpCloneGroup **out, guint max)
{
    const SpCloneLayout *l = rv->layout;
    guint n = l ? MIN(l->groups->len, max) : 0;
    for (guint i = 0; i < n; i++)
        out[i] = g_ptr_array_index(l->groups, i);
    return n;
}

bool sp_rmap_vm_in_group(const SpRmapVm *rv, const SpCloneGroup *g)
{
    const SpCloneLayout *l = rv->layout;
    for (guint i = 0; l && i < l->groups->len; i++)
        if (g_ptr_array_index(l->groups, i) == g)
            return true;
    return false;
}

/* /proc/self/pagemap, opened once for the process (pread is thread-safe). */
static int rmap_pagemap_fd(void)
{
    static int fd = -1;
    int cur = __atomic_load_n(&fd, __ATOMIC_ACQUIRE);
    if (cur >= 0)
        return cur;
    int nfd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (nfd < 0)
        return -1;
    if (!__atomic_compare_exchange_n(&fd, &cur, nfd, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        close(nfd); /* another thread won */
        return cur;
    }
    return nfd;
}

void sp_rmap_prepare(void)
{
    rmap_pagemap_fd();
}

/* Page entries of [first, first+n) of rv's RAM; false if unreadable.  A
 * remote VM's are read from its process's pagemap (root). */
static bool rmap_pagemap(const SpRmapVm *rv, uint64_t first, uint64_t n, uint64_t *ent)
{
    if (rv->remote) {
        if (!rv->pid)
            return false;
        g_autofree char *path = g_strdup_printf("/proc/%d/pagemap", rv->pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        off_t off = (off_t)((rv->ram_base / SP_PAGE_SIZE + first) * 8);
        bool ok = fd >= 0 && pread(fd, ent, n * 8, off) == (ssize_t)(n * 8);
        if (fd >= 0)
            close(fd);
        return ok;
    }
    int fd = rmap_pagemap_fd();
    off_t off = (off_t)(((uintptr_t)rv->mem->host / SP_PAGE_SIZE + first) * 8);
    return fd >= 0 && pread(fd, ent, n * 8, off) == (ssize_t)(n * 8);
}

static inline bool pagemap_private(uint64_t e)
{
    return (e >> 63) && !((e >> 61) & 1); /* present, not a file page */
}

/* rmap_lock held (so no layout change can slip between the read and the
 * marking: set_layout takes the lock after the RAM was remapped). */
static bool rmap_sync_locked(SpRmapVm *rv)
{
    if (rv->remote) {
        /* The VM process reads its own pagemap and sets its bits. */
        bool ok = rv->sync_fn && rv->sync_fn(rv->sync_opaque, NULL);
        if (ok)
            rv->last_sync_us = g_get_monotonic_time();
        return ok;
    }
    uint64_t words = (rv->npages + 63) / 64;
    g_autofree uint64_t *ent = g_try_new(uint64_t, rv->npages);
    g_autofree uint64_t *priv = g_try_new0(uint64_t, words);
    if (!ent || !priv || !rmap_pagemap(rv, 0, rv->npages, ent))
        return false;
    for (uint64_t g = 0; g < rv->npages; g++)
        if (pagemap_private(ent[g]))
            priv[g / 64] |= 1ULL << (g % 64);
    if (rv->layout)
        for (uint64_t g = 0; g < rv->npages; g++)
            if (priv[g / 64] >> (g % 64) & 1)
                sp_rmap_vm_note_off(rv, g);
    for (guint i = 0; pools && i < pools->len; i++) {
        RmapPool *p = &g_array_index(pools, RmapPool, i);
        p->ops.settle(p->opaque, rv->id, priv, rv->npages);
    }
    rv->last_sync_us = g_get_monotonic_time();
    return true;
}

bool sp_rmap_sync(SpRmapVm *rv, GError **error)
{
    g_mutex_lock(&rmap_lock);
    bool ok = rmap_sync_locked(rv);
    g_mutex_unlock(&rmap_lock);
    if (!ok)
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "VM '%s': cannot read /proc/self/pagemap for the reverse map", rv->name);
    return ok;
}

void rmap_sync_if_older_locked(SpRmapVm *rv, double max_age_s)
{
    if (rv->layout && g_get_monotonic_time() - rv->last_sync_us > (gint64)(max_age_s * 1e6))
        rmap_sync_locked(rv);
}

uint64_t sp_rmap_vm_clone_shared_fresh(SpRmapVm *rv, double max_age_s)
{
    g_mutex_lock(&rmap_lock);
    rmap_sync_if_older_locked(rv, max_age_s);
    g_mutex_unlock(&rmap_lock);
    return sp_rmap_vm_clone_shared(rv);
}

SpFrameRef sp_rmap_lookup(SpRmapVm *rv, uint64_t gfn)
{
    SpFrameRef f = {.kind = SP_FRAME_NONE};
    if (gfn >= rv->npages)
        return f;
    g_mutex_lock(&rmap_lock);
    for (guint i = 0; pools && i < pools->len; i++) {
        RmapPool *p = &g_array_index(pools, RmapPool, i);
        if (p->ops.lookup(p->opaque, rv->id, gfn, &f))
            break;
    }
    if (f.kind == SP_FRAME_NONE && sp_rmap_vm_maps_layer(rv, gfn))
        f = (SpFrameRef){.kind = SP_FRAME_GROUP,
                         .group = (SpCloneGroup *)layout_group(rv->layout, gfn),
                         .index = gfn};
    g_mutex_unlock(&rmap_lock);
    return f;
}

/* SP_RMAP_EXACT for a group frame: the member's page is not a private copy. */
static bool member_still_maps(SpRmapVm *rv, uint64_t gfn)
{
    uint64_t e = 0;
    if (!rmap_pagemap(rv, gfn, 1, &e))
        return true; /* unknown: the map's answer stands */
    if (!pagemap_private(e))
        return true;
    sp_rmap_vm_note_off(rv, gfn); /* a remote VM learns it at its next harvest */
    return false;
}

static uint64_t walk_group(SpCloneGroup *grp, uint64_t off, unsigned flags, SpRmapVisit visit,
                           void *opaque, bool *stopped)
{
    uint64_t n = 0;
    if (off >= grp->npages)
        return 0;
    for (guint i = 0; i < grp->members->len; i++) {
        const RmapMember *m = &g_array_index(grp->members, RmapMember, i);
        SpRmapVm *rv = m->vm;
        if (rv->layout->layer[off] != m->layer || rmap_bit(rv->off, off))
            continue;
        if ((flags & SP_RMAP_EXACT) && !member_still_maps(rv, off))
            continue;
        n++;
        SpRmapHit hit = {.vm_id = rv->id,
                         .vm_name = rv->name,
                         .gfn = off,
                         .host = rv->mem ? rv->mem->host + off * SP_PAGE_SIZE : NULL};
        if (visit && !visit(&hit, opaque)) {
            *stopped = true;
            break;
        }
    }
    return n;
}

uint64_t sp_rmap_walk(const SpFrameRef *f, unsigned flags, SpRmapVisit visit, void *opaque)
{
    uint64_t n = 0;
    g_mutex_lock(&rmap_lock);
    bool stopped = false;
    if (f->kind == SP_FRAME_GROUP) {
        /* the members (anon_vma style), then pages merged onto it */
        n = walk_group(f->group, f->index, flags, visit, opaque, &stopped);
        for (guint i = 0; !stopped && pools && i < pools->len; i++) {
            RmapPool *p = &g_array_index(pools, RmapPool, i);
            n += p->ops.walk_group(p->opaque, f->group, f->index, flags, visit, opaque, &stopped);
        }
    } else if (f->kind == SP_FRAME_POOL) {
        for (guint i = 0; pools && i < pools->len; i++) {
            RmapPool *p = &g_array_index(pools, RmapPool, i);
            if (p->pool == f->pool) {
                n = p->ops.walk(p->opaque, f->index, flags, visit, opaque, &stopped);
                break;
            }
        }
    }
    g_mutex_unlock(&rmap_lock);
    return n;
}

void sp_rmap_register_pool(const void *pool, const SpRmapPoolOps *ops, void *opaque)
{
    RmapPool p = {pool, *ops, opaque};
    g_mutex_lock(&rmap_lock);
    if (!pools)
        pools = g_array_new(FALSE, FALSE, sizeof(RmapPool));
    g_array_append_val(pools, p);
    g_mutex_unlock(&rmap_lock);
}

void sp_rmap_unregister_pool(const void *pool)
{
    g_mutex_lock(&rmap_lock);
    for (guint i = 0; pools && i < pools->len; i++)
        if (g_array_index(pools, RmapPool, i).pool == pool) {
            g_array_remove_index_fast(pools, i);
            break;
        }
    g_mutex_unlock(&rmap_lock);
}
