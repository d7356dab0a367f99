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

/* --- the lists: one slab of words, a block per list ---
 *
 * A list of len words lives in a block of 2^cls(len) words of the slab
 * (the power of two at or above len); its header is 8 bytes by frame id.
 * A list that outgrows its block, or fits in half of it, moves to a block
 * of the right size (lists are at most max_page_sharing long: a copy of a
 * few words).  Free blocks are kept per size, the first word of each
 * linking to the next.  When the blocks in use fill less than half of
 * the slab (the sharing found during a fill is gone, say), the lists are
 * packed into a new slab of the size they need: the memory goes back.
 * What the slab holds, free blocks included, is counted as metadata.  What this replaced, a
 * GArray per frame, cost about 88 bytes for a frame with 4 mappers; this
 * costs 24.
 *
 * Words are 4 bytes (narrow: slot << SH_NARROW_GFN_BITS | gfn) while every
 * mapper fits - VM slots below 256, guest pages below 2^24 (64 GiB) - and
 * 8 bytes (wide: slot << 40 | gfn) from the first one that does not: the
 * slab is then packed into wide words, for good.  Outside this file a
 * mapper is always the wide form (sh_mappers_at). */
typedef struct ShMapList {
    uint32_t off; /* the block's first word in the slab */
    uint32_t len; /* words; 0: no block */
} ShMapList;

#define CLASSES 32

struct ShMapLists {
    ShVec *lists;            /* ShMapList by (pool or group) frame index (vec.h) */
    void *slab;              /* words: uint32_t (narrow) or uint64_t (wide) */
    bool wide;               /* 8-byte words */
    uint64_t used;           /* words handed out (high-water mark) */
    uint64_t cap;            /* words allocated */
    uint64_t inuse;          /* words in blocks that hold a list */
    uint32_t free1[CLASSES]; /* per block size: first free block's off + 1, 0: none */
};

static size_t word_size(const ShMapLists *l)
{
    return l->wide ? sizeof(uint64_t) : sizeof(uint32_t);
}

/* Word i as it is stored (a mapper in its slab's form, or a free link). */
static uint64_t raw_get(const ShMapLists *l, uint64_t i)
{
    return l->wide ? ((uint64_t *)l->slab)[i] : ((uint32_t *)l->slab)[i];
}

static void raw_set(ShMapLists *l, uint64_t i, uint64_t w)
{
    if (l->wide)
        ((uint64_t *)l->slab)[i] = w;
    else
        ((uint32_t *)l->slab)[i] = (uint32_t)w;
}

static bool fits_narrow(uint64_t w)
{
    return (w >> 40) < (1u << (32 - SH_NARROW_GFN_BITS)) &&
           (w & ((1ULL << 40) - 1)) < (1u << SH_NARROW_GFN_BITS);
}

/* A mapper (wide form) as the slab stores it. */
static uint64_t stored(const ShMapLists *l, uint64_t w)
{
    if (l->wide)
        return w;
    return (w >> 40) << SH_NARROW_GFN_BITS | (w & ((1ULL << 40) - 1));
}

ShMapLists *sh_maplists_new(void)
{
    ShMapLists *l = g_new0(ShMapLists, 1);
    l->lists = sh_vec_new(sizeof(ShMapList));
    return l;
}

void sh_maplists_free(ShMapLists *l)
{
    if (!l)
        return;
    sh_vec_free(l->lists);
    g_free(l->slab);
    g_free(l);
}

uint64_t sh_maplists_bytes(const ShMapLists *l)
{
    return sh_vec_bytes(l->lists) + l->cap * word_size(l);
}

static unsigned cls_of(uint32_t len)
{
    return len <= 1 ? 0 : g_bit_storage(len - 1);
}

static uint32_t block_get(ShMapLists *l, unsigned cls)
{
    if (l->free1[cls]) {
        uint32_t off = l->free1[cls] - 1;
        l->free1[cls] = (uint32_t)raw_get(l, off);
        l->inuse += 1ULL << cls;
        return off;
    }
    uint64_t want = l->used + (1ULL << cls);
    g_assert(want <= UINT32_MAX); /* 32 GiB of lists: far past any VM set */
    if (want > l->cap) {
        l->cap = MAX(want, l->cap + l->cap / 2 + 64);
        l->slab = g_realloc_n(l->slab, l->cap, word_size(l));
    }
    uint32_t off = (uint32_t)l->used;
    l->used = want;
    l->inuse += 1ULL << cls;
    return off;
}

static void block_put(ShMapLists *l, uint32_t off, unsigned cls)
{
    raw_set(l, off, l->free1[cls]);
    l->free1[cls] = off + 1;
    l->inuse -= 1ULL << cls;
}

static void block_move(ShMapLists *l, uint32_t to, uint32_t from, uint32_t n)
{
    size_t ws = word_size(l);
    memcpy((uint8_t *)l->slab + to * ws, (uint8_t *)l->slab + from * ws, n * ws);
}

/* Every list into a new slab, its blocks one after the other, with room
 * for inuse / room_div more words; wide: in 8-byte words from now on. */
static void pack(ShMapLists *l, bool wide, unsigned room_div)
{
    ShMapLists old = *l;
    l->wide = wide;
    l->cap = l->inuse + l->inuse / room_div + 64;
    l->slab = g_malloc_n(l->cap, word_size(l));
    l->used = 0;
    for (uint32_t i = 0; i < l->lists->len; i++) {
        ShMapList *m = &sh_vec_index(l->lists, ShMapList, i);
        if (!m->len)
            continue;
        for (uint32_t k = 0; k < m->len; k++) {
            uint64_t w = raw_get(&old, m->off + k);
            if (wide && !old.wide)
                w = sh_mapper_widen((uint32_t)w);
            raw_set(l, l->used + k, w);
        }
        m->off = (uint32_t)l->used;
        l->used += 1ULL << cls_of(m->len);
    }
    memset(l->free1, 0, sizeof(l->free1));
    g_free(old.slab);
}

/* The lists of a frame id (pool or group frame) and its index there. */
static ShMapLists *lists_of(SpEngine *eng, uint32_t *fid)
{
    if (sh_is_gframe(*fid)) {
        *fid &= ~GF_BIT;
        return eng->gmappers;
    }
    return eng->mappers;
}

ShMappers sh_mappers(SpEngine *eng, uint32_t frame)
{
    ShMapLists *l = lists_of(eng, &frame);
    ShMapList *m = frame < l->lists->len ? &sh_vec_index(l->lists, ShMapList, frame) : NULL;
    if (!m || !m->len)
        return (ShMappers){.n = 0};
    return (ShMappers){
        .w = (uint8_t *)l->slab + m->off * word_size(l), .n = m->len, .wide = l->wide};
}

void sh_mapper_add(SpEngine *eng, uint32_t frame, SpEngineVm *vm, uint64_t gfn)
{
    ShMapLists *l = lists_of(eng, &frame);
    uint64_t w = mapper_word(vm, gfn);
    if (!l->wide && !fits_narrow(w))
        pack(l, true, 4);
    if (frame >= l->lists->len)
        sh_vec_set_size(l->lists, frame + 1);
    ShMapList *m = &sh_vec_index(l->lists, ShMapList, frame);
    g_assert(m->len < UINT32_MAX);
    if (m->len == 0) {
        m->off = block_get(l, 0);
    } else if ((m->len & (m->len - 1)) == 0) { /* its block is full: one twice the size */
        uint32_t off = block_get(l, cls_of(m->len + 1));
        block_move(l, off, m->off, m->len);
        block_put(l, m->off, cls_of(m->len));
        m->off = off;
    }
    raw_set(l, m->off + m->len++, stored(l, w));
}

void sh_mapper_remove(SpEngine *eng, uint32_t frame, SpEngineVm *vm, uint64_t gfn)
{
    ShMapLists *l = lists_of(eng, &frame);
    ShMapList *m = frame < l->lists->len ? &sh_vec_index(l->lists, ShMapList, frame) : NULL;
    uint64_t w = mapper_word(vm, gfn);
    if (!l->wide && !fits_narrow(w))
        m = NULL; /* never listed */
    w = stored(l, w);
    for (uint32_t i = 0; m && i < m->len; i++) {
        if (raw_get(l, m->off + i) != w)
            continue;
        unsigned cls = cls_of(m->len);
        raw_set(l, m->off + i, raw_get(l, m->off + m->len - 1));
        if (--m->len == 0) {
            block_put(l, m->off, cls);
        } else if (cls_of(m->len) < cls) { /* fits in half its block: move */
            uint32_t off = block_get(l, cls_of(m->len));
            block_move(l, off, m->off, m->len);
            block_put(l, m->off, cls);
            m->off = off;
        }
        if (l->cap >= 65536 && l->inuse < l->cap / 2)
            pack(l, l->wide, 4);
        return;
    }
    g_warn_if_reached(); /* every MERGED page is listed */
}

/* Lists fill in steps: during a pass most frames get their second mapper,
 * later their third and fourth, each step moving the list to a block twice
 * the size and leaving the smaller one free, where no list may want it
 * again (tests/test-mappers, /mappers/trim: 4 mappers per frame filled so
 * take 10.3 bytes per mapper, headers included, where packed they take
 * 6.5).  So, after each pass, a slab whose free blocks and growth room
 * exceed an eighth of it is packed with a sixteenth to spare: one copy of
 * the words in use. */
static bool trim(ShMapLists *l)
{
    if (l->cap < 4096 || (l->cap - l->inuse) * 8 <= l->cap)
        return false;
    pack(l, l->wide, 16);
    return true;
}

unsigned sh_mappers_trim(SpEngine *eng)
{
    return (unsigned)trim(eng->mappers) + (unsigned)trim(eng->gmappers);
}

uint32_t sh_mapper_count(SpEngine *eng, uint32_t frame)
{
    return sh_mappers(eng, frame).n;
}

void sh_mappers_free(SpEngine *eng)
{
    sh_maplists_free(eng->mappers);
    sh_maplists_free(eng->gmappers);
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
    ShMappers m = sh_mappers(eng, fid);
    for (uint32_t i = 0; i < m.n; i++) {
        uint64_t w = sh_mappers_at(&m, i);
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
    sh_engine_lock(eng);
    uint64_t n = walk_list(eng, (uint32_t)index, flags, visit, visit_opaque, stopped);
    g_mutex_unlock(&eng->lock);
    return n;
}

static uint64_t group_walk(void *opaque, const SpCloneGroup *g, uint64_t off, unsigned flags,
                           SpRmapVisit visit, void *visit_opaque, bool *stopped)
{
    SpEngine *eng = opaque;
    uint64_t n = 0;
    sh_engine_lock(eng);
    uint32_t fid = sh_gframe_find(eng, g, off);
    if (fid != NO_FRAME)
        n = walk_list(eng, fid, flags, visit, visit_opaque, stopped);
    g_mutex_unlock(&eng->lock);
    return n;
}

static bool pool_lookup(void *opaque, uint64_t vm_id, uint64_t gfn, SpFrameRef *out)
{
    SpEngine *eng = opaque;
    sh_engine_lock(eng);
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
