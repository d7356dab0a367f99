/* SPDX-License-Identifier: MIT */
/*
 * mappers.c - the engine's side of the reverse map (rmap/rmap.h).
 *
 * For every pool frame, the MERGED pages that map it (vm slot << 40 | gfn),
 * kept in step with the frame's refs by sh_merge_page (add) and
 * sh_frame_unref (remove): KSM's rmap_items hanging off a stable node.
 * The engine registers its pool with the reverse map; the walker, lookup
 * and settle callbacks run with rmap_lock held and take eng->lock (the
 * lock order of rmap.h).  A mapper list is at most max_page_sharing long,
 * so removal is a short linear search.
 */
#include <string.h>

#include "sharing/engine-priv.h"

static uint64_t mapper_word(ShVm *vm, uint64_t gfn)
{
    return ((uint64_t)vm->slot_index << 40) | gfn;
}

void sh_mapper_add(SpEngine *eng, uint32_t frame, ShVm *vm, uint64_t gfn)
{
    if (frame >= eng->mappers->len)
        g_ptr_array_set_size(eng->mappers, (gint)frame + 1);
    GArray *m = g_ptr_array_index(eng->mappers, frame);
    if (!m) {
        m = g_array_sized_new(FALSE, FALSE, sizeof(uint64_t), 2);
        g_ptr_array_index(eng->mappers, frame) = m;
    }
    uint64_t w = mapper_word(vm, gfn);
    g_array_append_val(m, w);
}

void sh_mapper_remove(SpEngine *eng, uint32_t frame, ShVm *vm, uint64_t gfn)
{
    GArray *m = frame < eng->mappers->len ? g_ptr_array_index(eng->mappers, frame) : NULL;
    uint64_t w = mapper_word(vm, gfn);
    for (guint i = 0; m && i < m->len; i++)
        if (g_array_index(m, uint64_t, i) == w) {
            g_array_remove_index_fast(m, i);
            if (!m->len) {
                g_array_free(m, TRUE);
                g_ptr_array_index(eng->mappers, frame) = NULL;
            }
            return;
        }
    g_warn_if_reached(); /* every MERGED page is listed */
}

void sh_mappers_free(SpEngine *eng)
{
    for (guint i = 0; i < eng->mappers->len; i++)
        if (g_ptr_array_index(eng->mappers, i))
            g_array_free(g_ptr_array_index(eng->mappers, i), TRUE);
    g_ptr_array_free(eng->mappers, TRUE);
}

static ShVm *vm_by_id(SpEngine *eng, uint64_t id)
{
    for (uint32_t s = 0; s < eng->nslots; s++)
        if (eng->vm_slots[s] && eng->vm_slots[s]->id == id)
            return eng->vm_slots[s];
    return NULL;
}

static uint64_t pool_walk(void *opaque, uint64_t index, unsigned flags, SpRmapVisit visit,
                          void *visit_opaque)
{
    SpEngine *eng = opaque;
    uint64_t n = 0;
    g_mutex_lock(&eng->lock);
    GArray *m = index < eng->mappers->len ? g_ptr_array_index(eng->mappers, index) : NULL;
    for (guint i = 0; m && i < m->len; i++) {
        uint64_t w = g_array_index(m, uint64_t, i);
        ShVm *vm = eng->vm_slots[w >> 40];
        uint64_t gfn = w & ((1ULL << 40) - 1);
        bool present;
        if ((flags & SP_RMAP_EXACT) && !sh_page_is_file(vm, gfn, &present) && present)
            continue; /* copied on write; the next harvest will tell the engine */
        n++;
        SpRmapHit hit = {.vm_id = vm->id,
                         .vm_name = vm->name,
                         .gfn = gfn,
                         .host = vm->mem->host + gfn * SP_PAGE_SIZE};
        if (visit && !visit(&hit, visit_opaque))
            break;
    }
    g_mutex_unlock(&eng->lock);
    return n;
}

static bool pool_lookup(void *opaque, uint64_t vm_id, uint64_t gfn, uint64_t *index)
{
    SpEngine *eng = opaque;
    g_mutex_lock(&eng->lock);
    ShVm *vm = vm_by_id(eng, vm_id);
    bool found = vm && gfn < vm->npages && PG_KIND(vm->page[gfn]) == PG_MERGED;
    if (found)
        *index = PG_FRAME(vm->page[gfn]);
    g_mutex_unlock(&eng->lock);
    return found;
}

/* A sync found these pages private: merged ones among them were copied on
 * write, which the dirty log may not have told us yet. */
static void pool_settle(void *opaque, uint64_t vm_id, const uint64_t *priv, uint64_t npages)
{
    SpEngine *eng = opaque;
    g_mutex_lock(&eng->lock);
    ShVm *vm = vm_by_id(eng, vm_id);
    for (uint64_t g = 0; vm && g < MIN(npages, vm->npages); g++)
        if ((priv[g / 64] >> (g % 64) & 1) && PG_KIND(vm->page[g]) == PG_MERGED)
            sh_page_written(eng, vm, g);
    g_mutex_unlock(&eng->lock);
}

static const SpRmapPoolOps pool_ops = {
    .walk = pool_walk,
    .lookup = pool_lookup,
    .settle = pool_settle,
};

void sh_rmap_register(SpEngine *eng)
{
    sp_rmap_register_pool(&eng->pool, &pool_ops, eng);
}

void sh_rmap_unregister(SpEngine *eng)
{
    sp_rmap_unregister_pool(&eng->pool);
}
