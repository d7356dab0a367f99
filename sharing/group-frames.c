/* SPDX-License-Identifier: MIT */
/*
 * group-frames.c - clone groups' pages as stable frames: dedup onto a
 * clone's page, as KSM merges a page into a forked process's KSM page.
 *
 * A page of a clone group's file that a member of the group still maps is
 * shared already (the reverse map walks it through the group).  At the end
 * of each pass the index goes over such pages (sh_gframes_index_some, a few
 * at a time): it hashes the group's copy once (through a read-only view of
 * the file, which the supervisor holds) and puts it in the stable index as
 * a *group frame*.  A page of any VM of the same sharing
 * domain with that content is then merged onto it: mapped MAP_PRIVATE from
 * the group's file at that offset, exactly as a pool frame is mapped.  Such
 * a frame is shared both ways: by the group's members (no list) and by the
 * engine's merges (listed in gmappers, as pool frames' mappers are).
 *
 * Frame ids: a pool frame is its index in eng->frames; a group frame is GF_BIT |
 * index into eng->gframes.  One ShGroupRec per group the engine knows:
 * a reference to the group, a duplicate of its file descriptor, the view,
 * and per page the group frame made of it.  Group frames never own memory
 * (the file does), so refs = the engine's merges onto it; pages_shared
 * counts group frames with refs > 0 and pages_sharing each such merge
 * (counters.c keeps them, and the record's refs, through
 * sh_gframe_rec_get/put).
 *
 * Lifetimes and locks: records are made at attach, outside eng->lock,
 * because taking a group reference takes rmap_lock (lock order: rmap/rmap.h,
 * "Locking").  A record dies when no attached VM is a member
 * of its group and no merge maps one of its frames: it is then unlinked
 * under eng->lock and put on eng->grec_dead; sh_grecs_reap() finishes it
 * (unmap, close, drop the group reference) without eng->lock.  The view and
 * fd keep the group's file alive until then.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "sharing/engine-priv.h"
#include "sharing/swap-priv.h"

static ShGFrame *gframe(SpEngine *eng, uint32_t fid)
{
    return &sh_vec_index(eng->gframes, ShGFrame, fid & ~GF_BIT);
}

ShFrame *sh_frame(SpEngine *eng, uint32_t fid)
{
    if (sh_is_gframe(fid))
        return &gframe(eng, fid)->f;
    return &sh_vec_index(eng->frames, ShFrame, fid);
}

const uint8_t *sh_frame_ptr(SpEngine *eng, uint32_t fid)
{
    if (sh_is_gframe(fid)) {
        ShGFrame *g = gframe(eng, fid);
        return g->rec->view + g->off * SP_PAGE_SIZE;
    }
    ShFrame *f = sh_frame(eng, fid);
    ShPool *p = g_ptr_array_index(eng->pools, f->pool);
    return sp_frame_pool_ptr(&p->fp, f->off);
}

/* --- records --- */

static void grec_finish(ShGroupRec *rec)
{
    if (rec->view)
        munmap(rec->view, rec->npages * SP_PAGE_SIZE);
    if (rec->fd >= 0)
        close(rec->fd);
    sp_clone_group_unref(rec->grp);
    g_free(rec->gf);
    g_free(rec->gone);
    g_free(rec);
}

/* Outside eng->lock: a record for g, or NULL if its file cannot be viewed. */
static ShGroupRec *grec_new(SpCloneGroup *g)
{
    int gfd = sp_clone_group_fd(g);
    if (gfd < 0)
        return NULL;
    ShGroupRec *rec = g_new0(ShGroupRec, 1);
    rec->grp = sp_clone_group_ref(g);
    rec->npages = sp_clone_group_npages(g);
    rec->fd = fcntl(gfd, F_DUPFD_CLOEXEC, 0);
    void *v = rec->fd < 0
                  ? MAP_FAILED
                  : mmap(NULL, rec->npages * SP_PAGE_SIZE, PROT_READ, MAP_SHARED, rec->fd, 0);
    if (v == MAP_FAILED) {
        grec_finish(rec);
        return NULL;
    }
    rec->view = v;
    rec->gf = g_new0(uint32_t, rec->npages);
    rec->gone = g_new0(uint64_t, (rec->npages + 63) / 64);
    struct stat st;
    rec->ino = fstat(rec->fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
    return rec;
}

/* eng->lock held: the record of g, or (a new one) `rec` inserted. */
static ShGroupRec *grec_insert(SpEngine *eng, SpCloneGroup *g, ShGroupRec *rec, bool *raced)
{
    ShGroupRec *have = g_hash_table_lookup(eng->grecs, g);
    *raced = have != NULL;
    if (have)
        return have;
    g_hash_table_insert(eng->grecs, g, rec);
    return rec;
}

ShGroupRec *sh_grec_adopt(SpEngine *eng, int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size % SP_PAGE_SIZE)
        return NULL;
    /* A group the supervisor knows already (a re-attached member's layer),
     * or a new group of its own: the file of a family none of whose
     * members is attached any more. */
    SpCloneGroup *g = sp_clone_group_find_ino((uint64_t)st.st_ino);
    if (!g) {
        int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (dup < 0)
            return NULL;
        g = sp_clone_group_new(dup, (uint64_t)st.st_size / SP_PAGE_SIZE, NULL);
    }
    ShGroupRec *rec = grec_new(g);
    bool raced = false;
    sh_engine_lock(eng);
    ShGroupRec *r = rec ? grec_insert(eng, g, rec, &raced) : NULL;
    g_mutex_unlock(&eng->lock);
    if (raced)
        grec_finish(rec);
    sp_clone_group_unref(g);
    return r;
}

void sh_grecs_prepare(SpEngine *eng, SpRmapVm *rv)
{
    SpCloneGroup *groups[SP_CLONE_LAYOUT_MAX_LAYERS];
    guint n = rv ? sp_rmap_vm_groups(rv, groups, G_N_ELEMENTS(groups)) : 0;
    for (guint i = 0; i < n; i++) {
        sh_engine_lock(eng);
        bool have = g_hash_table_contains(eng->grecs, groups[i]);
        g_mutex_unlock(&eng->lock);
        if (have)
            continue;
        ShGroupRec *rec = grec_new(groups[i]);
        if (!rec)
            continue;
        bool raced = false;
        sh_engine_lock(eng);
        grec_insert(eng, groups[i], rec, &raced);
        g_mutex_unlock(&eng->lock);
        if (raced)
            grec_finish(rec);
    }
}

/* The share set whose stable index holds frame fid. */
static uint32_t sh_frame_group(SpEngine *eng, uint32_t fid)
{
    if (sh_is_gframe(fid))
        return gframe(eng, fid)->group;
    ShPool *p = g_ptr_array_index(eng->pools, sh_frame(eng, fid)->pool);
    return p->group;
}

void sh_frame_link(SpEngine *eng, uint32_t fid)
{
    ShFrame *f = sh_frame(eng, fid);
    uint64_t key = sh_key(sh_frame_group(eng, fid), sh_frame_node(eng, fid), f->hash);
    uint32_t head = NO_FRAME;
    f->next = index_map_get(&eng->stable, key, &head) ? head : NO_FRAME;
    index_map_set(&eng->stable, key, fid);
}

void sh_frame_unlink(SpEngine *eng, uint32_t fid)
{
    ShFrame *f = sh_frame(eng, fid);
    uint64_t key = sh_key(sh_frame_group(eng, fid), sh_frame_node(eng, fid), f->hash);
    uint32_t head = NO_FRAME;
    if (!index_map_get(&eng->stable, key, &head))
        return;
    if (head == fid) {
        if (f->next == NO_FRAME)
            index_map_remove(&eng->stable, key);
        else
            index_map_set(&eng->stable, key, f->next);
        return;
    }
    for (uint32_t p = head; p != NO_FRAME;) {
        ShFrame *pf = sh_frame(eng, p);
        if (pf->next == fid) {
            pf->next = f->next;
            return;
        }
        p = pf->next;
    }
}

static bool grec_has_member(SpEngine *eng, const ShGroupRec *rec)
{
    for (uint32_t s = 0; s < eng->nslots; s++)
        if (eng->vm_slots[s] && eng->vm_slots[s]->rmap &&
            sp_rmap_vm_in_group(eng->vm_slots[s]->rmap, rec->grp))
            return true;
    return false;
}

void sh_gframe_unindex(SpEngine *eng, ShGroupRec *rec, uint64_t off)
{
    uint32_t v = rec->gf[off];
    if (!v || v == GF_NOT_INDEXABLE)
        return;
    uint32_t idx = v - 1;
    sh_frame_unlink(eng, idx | GF_BIT);
    sh_swap_gframe_forget(eng, idx);
    gframe(eng, idx | GF_BIT)->rec = NULL;
    g_array_append_val(eng->gframe_free, idx);
    rec->gf[off] = 0;
}

/* eng->lock held: retire `rec` if nothing needs it any more. */
static void grec_maybe_retire(SpEngine *eng, ShGroupRec *rec)
{
    if (rec->refs || grec_has_member(eng, rec))
        return;
    for (uint64_t p = 0; p < rec->npages; p++)
        sh_gframe_unindex(eng, rec, p);
    if (eng->swap) { /* no VM maps the file now: its pages out are nobody's */
        g_mutex_lock(&eng->swap->lock);
        sh_swap_layer_file_drop(eng->swap, rec->ino);
        g_mutex_unlock(&eng->swap->lock);
    }
    /* A space id a VM was given for this group names nothing now (a later
     * record could be allocated at the same address). */
    for (uint32_t s = 0; s < eng->nslots; s++) {
        SpEngineVm *vm = eng->vm_slots[s];
        for (guint i = 0; vm && vm->spaces && i < vm->spaces->len; i++)
            if (g_array_index(vm->spaces, ShSpace, i).rec == rec)
                g_array_index(vm->spaces, ShSpace, i) = (ShSpace){.pool = NO_SPACE};
    }
    g_hash_table_remove(eng->grecs, rec->grp);
    rec->next_dead = eng->grec_dead;
    eng->grec_dead = rec;
}

void sh_grecs_collect(SpEngine *eng)
{
    GHashTableIter it;
    gpointer k, v;
    g_autoptr(GPtrArray) all = g_ptr_array_new();
    g_hash_table_iter_init(&it, eng->grecs);
    while (g_hash_table_iter_next(&it, &k, &v))
        g_ptr_array_add(all, v);
    for (guint i = 0; i < all->len; i++)
        grec_maybe_retire(eng, all->pdata[i]);
}

void sh_grecs_reap(SpEngine *eng)
{
    sh_engine_lock(eng);
    ShGroupRec *dead = eng->grec_dead;
    eng->grec_dead = NULL;
    g_mutex_unlock(&eng->lock);
    while (dead) {
        ShGroupRec *next = dead->next_dead;
        grec_finish(dead);
        dead = next;
    }
}

void sh_grecs_free(SpEngine *eng)
{
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, eng->grecs);
    while (g_hash_table_iter_next(&it, &k, &v))
        grec_finish(v);
    g_hash_table_destroy(eng->grecs);
    while (eng->grec_dead) {
        ShGroupRec *next = eng->grec_dead->next_dead;
        grec_finish(eng->grec_dead);
        eng->grec_dead = next;
    }
    sh_vec_free(eng->gframes);
    g_array_free(eng->gframe_free, TRUE);
}

/* --- frames --- */

/* Index page `off` of rec as a frame of share set `group`; its fid, or
 * NO_FRAME (a zero page, or no room). */
static uint32_t gframe_index_page(SpEngine *eng, ShGroupRec *rec, uint64_t off, uint32_t group)
{
    if (off >= rec->npages || rec->gf[off] == GF_NOT_INDEXABLE || sh_grec_gone(rec, off))
        return NO_FRAME; /* (a page given back is a hole: reading it would fill it) */
    if (rec->gf[off])
        return (rec->gf[off] - 1) | GF_BIT;
    if (eng->swap) { /* a page out, or lost in a take-over, is a hole: reading it
                      * would fill it with zeros */
        g_mutex_lock(&eng->swap->lock);
        bool out = sh_swap_layer_is_out(eng->swap, rec->ino, off) ||
                   sh_swap_lost_locked(eng->swap, rec->ino, off);
        g_mutex_unlock(&eng->swap->lock);
        if (out)
            return NO_FRAME;
    }
    XXH64_hash_t h = XXH3_64bits(rec->view + off * SP_PAGE_SIZE, SP_PAGE_SIZE);
    uint32_t hash = (uint32_t)(h ^ (h >> 32));
    eng->scan_work++;
    if (hash == eng->zero_hash) {
        rec->gf[off] = GF_NOT_INDEXABLE;
        return NO_FRAME;
    }
    uint32_t idx;
    if (eng->gframe_free->len) {
        idx = g_array_index(eng->gframe_free, uint32_t, eng->gframe_free->len - 1);
        g_array_set_size(eng->gframe_free, eng->gframe_free->len - 1);
    } else {
        idx = eng->gframes->len;
        if (idx >= GF_BIT - 1)
            return NO_FRAME;
        sh_vec_set_size(eng->gframes, idx + 1);
    }
    uint32_t fid = idx | GF_BIT;
    ShGFrame *g = gframe(eng, fid);
    *g = (ShGFrame){
        .f = {.hash = hash, .refs = 0, .next = NO_FRAME}, .group = group, .rec = rec, .off = off};
    rec->gf[off] = idx + 1;
    sh_frame_link(eng, fid);
    return fid;
}

uint32_t sh_gframe_adopt(SpEngine *eng, ShGroupRec *rec, uint64_t off)
{
    /* The share set of an attached member, or of the first attached VM
     * that maps the group (whoever reported the merge). */
    uint32_t group = 0;
    for (uint32_t s = 0; s < eng->nslots; s++)
        if (eng->vm_slots[s]) {
            group = eng->vm_slots[s]->group;
            if (eng->vm_slots[s]->rmap && sp_rmap_vm_in_group(eng->vm_slots[s]->rmap, rec->grp))
                break;
        }
    return gframe_index_page(eng, rec, off, group);
}

SpEngineVm *sh_grec_mapper(SpEngine *eng, const ShGroupRec *rec, uint64_t off)
{
    for (uint32_t s = 0; s < eng->nslots; s++) {
        SpEngineVm *vm = eng->vm_slots[s];
        if (vm && vm->rmap && off < vm->npages && sp_rmap_vm_maps_layer(vm->rmap, off) &&
            sp_rmap_vm_layer_group(vm->rmap, off) == rec->grp)
            return vm;
    }
    return NULL;
}

/* Up to `budget` pages of rec looked at, from its cursor, which wraps:
 * pages that were not mapped yet get another look. */
static void index_group(SpEngine *eng, ShGroupRec *rec, uint64_t budget)
{
    for (uint64_t looked = 0; looked < budget && looked < rec->npages; looked++) {
        uint64_t off = rec->cursor;
        rec->cursor = (rec->cursor + 1) % rec->npages;
        if (rec->gf[off] || !sp_clone_group_holds(rec->grp, off))
            continue;
        SpEngineVm *vm = sh_grec_mapper(eng, rec, off);
        if (vm)
            gframe_index_page(eng, rec, off, vm->group);
    }
}

void sh_gframes_index_some(SpEngine *eng, uint64_t budget)
{
    guint n = g_hash_table_size(eng->grecs);
    if (!n)
        return;
    /* Each group its share of the budget (as the giveback's), so that a
     * large family does not keep the others' frames out of the index. */
    uint64_t each = MAX(budget / n, 4096);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, eng->grecs);
    while (g_hash_table_iter_next(&it, &k, &v))
        index_group(eng, v, each);
}

void sh_gframe_rec_get(SpEngine *eng, uint32_t fid)
{
    gframe(eng, fid)->rec->refs++;
}

void sh_gframe_rec_put(SpEngine *eng, uint32_t fid)
{
    ShGroupRec *rec = gframe(eng, fid)->rec;
    rec->refs--;
    grec_maybe_retire(eng, rec);
}

void sh_gframe_rec_forget(SpEngine *eng, uint32_t fid)
{
    gframe(eng, fid)->rec->refs--;
}

bool sh_gframe_ref(SpEngine *eng, uint32_t fid, SpFrameRef *out)
{
    ShGFrame *g = gframe(eng, fid);
    if (!g->rec)
        return false;
    *out = (SpFrameRef){.kind = SP_FRAME_GROUP, .group = g->rec->grp, .index = g->off};
    return true;
}

uint32_t sh_gframe_find(SpEngine *eng, const SpCloneGroup *grp, uint64_t off)
{
    ShGroupRec *rec = g_hash_table_lookup(eng->grecs, grp);
    if (!rec || off >= rec->npages || !rec->gf[off] || rec->gf[off] == GF_NOT_INDEXABLE)
        return NO_FRAME;
    return (rec->gf[off] - 1) | GF_BIT;
}

uint64_t sh_gframes_bytes(SpEngine *eng)
{
    uint64_t b = sh_vec_bytes(eng->gframes);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, eng->grecs);
    while (g_hash_table_iter_next(&it, &k, &v))
        b += ((ShGroupRec *)v)->npages * sizeof(uint32_t) +
             (((ShGroupRec *)v)->npages + 63) / 64 * 8;
    return b;
}
