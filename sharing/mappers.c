/* SPDX-License-Identifier: MIT */
/*
 * mappers.c - the engine's side of the reverse map (rmap/rmap.h).
 *
 * For every pool frame and group frame (group-frames.c), the MERGED pages
 * that map it (vm slot << 40 | gfn), kept in step with the frame's refs by
 * the frame's get/put pair in counters.c (add, remove): KSM's rmap_items
 * hanging off a stable node.  The engine registers its pool with the reverse map,
 * which calls the walker, lookup and settle callbacks with rmap_lock held;
 * they take eng->lock (lock order: rmap/rmap.h, "Locking").  A mapper list
 * is at most max_page_sharing long, so removal is a short linear search.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "sharing/engine-priv.h"

static uint64_t mapper_word(SpEngineVm *vm, uint64_t gfn)
{
    return ((uint64_t)vm->slot_index << 40) | gfn;
}

/* The list array of a frame id (pool or group frame) and its index. */
static GPtrArray *mapper_lists(SpEngine *eng, uint32_t *fid)
{
    if (sh_is_gframe(*fid)) {
        *fid &= ~GF_BIT;
        return eng->gmappers;
    }
    return eng->mappers;
}

/* The list of frame id fid, or NULL (no mapper). */
static GArray *mapper_list(SpEngine *eng, uint32_t fid)
{
    GPtrArray *lists = mapper_lists(eng, &fid);
    return fid < lists->len ? g_ptr_array_index(lists, fid) : NULL;
}

void sh_mapper_add(SpEngine *eng, uint32_t frame, SpEngineVm *vm, uint64_t gfn)
{
    GPtrArray *lists = mapper_lists(eng, &frame);
    if (frame >= lists->len)
        g_ptr_array_set_size(lists, (gint)frame + 1);
    GArray *m = g_ptr_array_index(lists, frame);
    if (!m) {
        m = g_array_sized_new(FALSE, FALSE, sizeof(uint64_t), 2);
        g_ptr_array_index(lists, frame) = m;
    }
    uint64_t w = mapper_word(vm, gfn);
    g_array_append_val(m, w);
}

void sh_mapper_remove(SpEngine *eng, uint32_t frame, SpEngineVm *vm, uint64_t gfn)
{
    GPtrArray *lists = mapper_lists(eng, &frame);
    GArray *m = frame < lists->len ? g_ptr_array_index(lists, frame) : NULL;
    uint64_t w = mapper_word(vm, gfn);
    for (guint i = 0; m && i < m->len; i++)
        if (g_array_index(m, uint64_t, i) == w) {
            g_array_remove_index_fast(m, i);
            if (!m->len) {
                g_array_free(m, TRUE);
                g_ptr_array_index(lists, frame) = NULL;
            }
            return;
        }
    g_warn_if_reached(); /* every MERGED page is listed */
}

uint32_t sh_mapper_count(SpEngine *eng, uint32_t frame)
{
    GArray *m = mapper_list(eng, frame);
    return m ? m->len : 0;
}

static void lists_free(GPtrArray *lists)
{
    for (guint i = 0; i < lists->len; i++)
        if (g_ptr_array_index(lists, i))
            g_array_free(g_ptr_array_index(lists, i), TRUE);
    g_ptr_array_free(lists, TRUE);
}

void sh_mappers_free(SpEngine *eng)
{
    lists_free(eng->mappers);
    lists_free(eng->gmappers);
}

static SpEngineVm *vm_by_id(SpEngine *eng, uint64_t id)
{
    for (uint32_t s = 0; s < eng->nslots; s++)
        if (eng->vm_slots[s] && eng->vm_slots[s]->id == id)
            return eng->vm_slots[s];
    return NULL;
}

/* SP_RMAP_EXACT: is the page a private copy now (present, not a file
 * page), read from the VM process's pagemap (root)?  Unknown: no. */
static bool page_is_private(SpEngineVm *vm, uint64_t gfn)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/pagemap", vm->pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    uint64_t e = 0;
    bool ok = fd >= 0 && pread(fd, &e, 8, (off_t)((vm->ram_base / SP_PAGE_SIZE + gfn) * 8)) == 8;
    if (fd >= 0)
        close(fd);
    return ok && (e >> 63) && !((e >> 61) & 1);
}

/* Visit the mappers of frame fid; eng->lock held. */
static uint64_t walk_list(SpEngine *eng, uint32_t fid, unsigned flags, SpRmapVisit visit,
                          void *visit_opaque, bool *stopped)
{
    uint64_t n = 0;
    GArray *m = mapper_list(eng, fid);
    for (guint i = 0; m && i < m->len; i++) {
        uint64_t w = g_array_index(m, uint64_t, i);
        SpEngineVm *vm = eng->vm_slots[w >> 40];
        uint64_t gfn = w & ((1ULL << 40) - 1);
        if ((flags & SP_RMAP_EXACT) && page_is_private(vm, gfn))
            continue; /* copied on write; the next harvest will tell the engine */
        n++;
        SpRmapHit hit = {.vm_id = vm->id, .vm_name = vm->name, .gfn = gfn, .host = NULL};
        if (visit && !visit(&hit, visit_opaque)) {
            *stopped = true;
            break;
        }
    }
    return n;
}

static uint64_t pool_walk(void *opaque, uint64_t index, unsigned flags, SpRmapVisit visit,
                          void *visit_opaque, bool *stopped)
{
    SpEngine *eng = opaque;
    if (index >= GF_BIT)
        return 0;
    g_mutex_lock(&eng->lock);
    uint64_t n = walk_list(eng, (uint32_t)index, flags, visit, visit_opaque, stopped);
    g_mutex_unlock(&eng->lock);
    return n;
}

static uint64_t group_walk(void *opaque, const SpCloneGroup *g, uint64_t off, unsigned flags,
                           SpRmapVisit visit, void *visit_opaque, bool *stopped)
{
    SpEngine *eng = opaque;
    uint64_t n = 0;
    g_mutex_lock(&eng->lock);
    uint32_t fid = sh_gframe_find(eng, g, off);
    if (fid != NO_FRAME)
        n = walk_list(eng, fid, flags, visit, visit_opaque, stopped);
    g_mutex_unlock(&eng->lock);
    return n;
}

static bool pool_lookup(void *opaque, uint64_t vm_id, uint64_t gfn, SpFrameRef *out)
{
    SpEngine *eng = opaque;
    g_mutex_lock(&eng->lock);
    SpEngineVm *vm = vm_by_id(eng, vm_id);
    uint32_t fid = vm && gfn < vm->npages ? vm->fid_of[gfn] : NO_FRAME;
    bool found = fid != NO_FRAME;
    if (found) {
        if (sh_is_gframe(fid))
            found = sh_gframe_ref(eng, fid, out);
        else
            *out = (SpFrameRef){.kind = SP_FRAME_POOL, .pool = eng, .index = fid};
    }
    g_mutex_unlock(&eng->lock);
    return found;
}

/* Syncs of VMs in other processes go through their agents (M_SYNC), which
 * report copied-on-write merges as released frames: nothing to do here. */
static void pool_settle(void *opaque, uint64_t vm_id, const uint64_t *priv, uint64_t npages)
{
    (void)opaque;
    (void)vm_id;
    (void)priv;
    (void)npages;
}

static const SpRmapPoolOps pool_ops = {
    .walk = pool_walk,
    .walk_group = group_walk,
    .lookup = pool_lookup,
    .settle = pool_settle,
};

void sh_rmap_register(SpEngine *eng)
{
    sp_rmap_register_pool(eng, &pool_ops, eng);
}

void sh_rmap_unregister(SpEngine *eng)
{
    sp_rmap_unregister_pool(eng);
}
