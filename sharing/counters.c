/* SPDX-License-Identifier: MIT */
/*
 * counters.c - KSM's counters, kept by paired helpers, and their recount.
 *
 * The counters operators see (engine.h) and the per-VM ones behind them
 * count frame references (engine-priv.h):
 *   pages_shared   frames with at least one MERGED page mapping them
 *                  (pool frames and group frames alike)
 *   pages_sharing  MERGED pages beyond the first of each pool frame, plus
 *                  every MERGED page of a group frame (its file holds the
 *                  first copy): the pages saved by merging
 *   node_pages_shared[n], node_pages_sharing[n]
 *                  the same for the frames of node n's pools only
 *                  (merge_across_nodes=0)
 *   zero_pages     the attached VMs' zero pages (what their agents say)
 *   vm->merged     the VM's pages whose fid_of names a frame
 *   ShFrame.refs   MERGED pages mapping the frame (= its mapper list)
 *   ShGroupRec.refs  the refs of the record's group frames
 * Only the helpers below change them: sh_page_set_merged /
 * sh_page_clear_merged (a page starts or stops mapping a frame: the
 * frame's get/put pair, which owns its reference, its mapper entry,
 * pages_shared and pages_sharing, and frees a pool frame with its last
 * reference once it is published) and sh_vm_set_zero.  Event counters
 * (merges, cow_breaks, pages_scanned, ...) are bumped where the event
 * happens.
 *
 * The page states behind vm->merged live in the VM process; their own
 * counters are the agent's (sharing/agent-priv.h) and are checked there.
 *
 * sh_counters_recount() recomputes every counter above from fid_of and the
 * frame references and reports each mismatch with g_critical (counter,
 * expected, found).  The engine runs it after every full scan in builds
 * configured with --enable-debug-recount (implied by --enable-sanitizers),
 * where the tests run with criticals fatal.
 *
 * Engine lock held throughout.
 */
#include <stdio.h>

#include "sharing/engine-priv.h"

/* The per-node counters follow the node-wide ones for a node's own frames
 * (shared, sharing: the change to each, +1, -1 or 0). */
static void node_count(SpEngine *eng, uint32_t fid, int shared, int sharing)
{
    int n = sh_frame_node(eng, fid);
    if (n < 0 || n >= SP_ENGINE_NODES)
        return;
    eng->stats.node_pages_shared[n] += (uint64_t)(int64_t)shared;
    eng->stats.node_pages_sharing[n] += (uint64_t)(int64_t)sharing;
}

/* A MERGED page (vm, gfn) starts mapping frame fid. */
static void frame_get(SpEngine *eng, uint32_t fid, SpEngineVm *vm, uint64_t gfn)
{
    ShFrame *f = sh_frame(eng, fid);
    f->refs++;
    sh_mapper_add(eng, fid, vm, gfn);
    if (f->refs == 1)
        eng->stats.pages_shared++;
    if (sh_is_gframe(fid) || f->refs > 1)
        eng->stats.pages_sharing++;
    node_count(eng, fid, f->refs == 1, f->refs > 1);
    if (sh_is_gframe(fid))
        sh_gframe_rec_get(eng, fid);
}

static void pool_frame_free(SpEngine *eng, uint32_t fid)
{
    sh_swap_frame_dropped(eng, fid); /* its slot, if it is out */
    ShFrame *f = sh_frame(eng, fid);
    ShPool *p = g_ptr_array_index(eng->pools, f->pool);
    sp_frame_pool_free(&p->fp, f->off);
    sh_vec_index(p->fid_of_off, uint32_t, f->off) = 0;
    *f = (ShFrame){.next = NO_FRAME, .pool = NO_SPACE};
    g_array_append_val(eng->frame_free, fid);
    eng->stats.frames_freed++;
}

/* The MERGED page (vm, gfn) no longer maps frame fid; a pool frame goes
 * with its last reference (a group frame's page stays in the group file). */
static void frame_put(SpEngine *eng, uint32_t fid, SpEngineVm *vm, uint64_t gfn)
{
    sh_mapper_remove(eng, fid, vm, gfn);
    ShFrame *f = sh_frame(eng, fid);
    g_assert(f->refs > 0);
    f->refs--;
    if (sh_is_gframe(fid) || f->refs > 0)
        eng->stats.pages_sharing--;
    if (f->refs == 0)
        eng->stats.pages_shared--;
    node_count(eng, fid, -(f->refs == 0), -(f->refs > 0));
    if (sh_is_gframe(fid)) {
        sh_gframe_rec_put(eng, fid);
    } else if (f->refs == 0 && !((ShPool *)g_ptr_array_index(eng->pools, f->pool))->adopted) {
        /* A frame of a pool adopted after a restart stays until every VM
         * is back: one not re-attached yet may map it (pools.c). */
        sh_frame_unlink(eng, fid);
        pool_frame_free(eng, fid);
    }
}

void sh_page_set_merged(SpEngine *eng, SpEngineVm *vm, uint64_t gfn, uint32_t fid)
{
    g_assert(vm->fid_of[gfn] == NO_FRAME);
    vm->fid_of[gfn] = fid;
    vm->merged++;
    frame_get(eng, fid, vm, gfn);
}

void sh_page_clear_merged(SpEngine *eng, SpEngineVm *vm, uint64_t gfn)
{
    uint32_t fid = vm->fid_of[gfn];
    g_assert(fid != NO_FRAME);
    vm->fid_of[gfn] = NO_FRAME;
    vm->merged--;
    frame_put(eng, fid, vm, gfn);
}

/* A group frame's record loses a merge without being retired. */
static void gframe_rec_refs_drop(SpEngine *eng, uint32_t fid)
{
    sh_gframe_rec_forget(eng, fid);
}

void sh_page_forget(SpEngine *eng, SpEngineVm *vm, uint64_t gfn)
{
    uint32_t fid = vm->fid_of[gfn];
    vm->fid_of[gfn] = NO_FRAME;
    vm->merged--;
    sh_mapper_remove(eng, fid, vm, gfn);
    ShFrame *f = sh_frame(eng, fid);
    f->refs--;
    if (sh_is_gframe(fid) || f->refs > 0)
        eng->stats.pages_sharing--;
    if (f->refs == 0)
        eng->stats.pages_shared--;
    node_count(eng, fid, -(f->refs == 0), -(f->refs > 0));
    if (sh_is_gframe(fid))
        gframe_rec_refs_drop(eng, fid);
}

void sh_vm_set_zero(SpEngine *eng, SpEngineVm *vm, uint64_t zero)
{
    eng->stats.zero_pages += zero - vm->zero;
    vm->zero = zero;
}

void sh_frame_publish(SpEngine *eng, uint32_t fid)
{
    if (sh_frame(eng, fid)->refs == 0)
        pool_frame_free(eng, fid);
    else
        sh_frame_link(eng, fid);
}

/* --- the recount --- */

static unsigned recount_check(const char *counter, const char *owner, uint64_t expected,
                              uint64_t found)
{
    if (expected == found)
        return 0;
    g_critical("event=recount-mismatch counter=%s owner=%s expected=%" G_GUINT64_FORMAT
               " found=%" G_GUINT64_FORMAT,
               counter, owner, expected, found);
    return 1;
}

static unsigned recount_frame(const char *counter, uint32_t fid, uint64_t expected, uint64_t found)
{
    if (expected == found)
        return 0;
    char owner[32];
    snprintf(owner, sizeof(owner), "frame:%s%u", sh_is_gframe(fid) ? "g" : "", fid & ~GF_BIT);
    return recount_check(counter, owner, expected, found);
}

/* Count the VM's merged pages into refs[] (pool frames first, then group
 * frames). */
static unsigned recount_vm(SpEngine *eng, SpEngineVm *vm, uint32_t *refs, uint64_t *zero)
{
    uint64_t merged = 0, bad = 0;
    uint32_t npool = eng->frames->len, nframes = npool + eng->gframes->len;
    for (uint64_t g = 0; g < vm->npages; g++) {
        uint32_t fid = vm->fid_of[g];
        if (fid == NO_FRAME)
            continue;
        merged++;
        uint32_t i = sh_is_gframe(fid) ? npool + (fid & ~GF_BIT) : fid;
        if (i < nframes)
            refs[i]++;
        else
            bad++;
    }
    g_autofree char *owner = g_strdup_printf("vm:%s", vm->name);
    *zero += vm->zero;
    return recount_check("merged", owner, merged, vm->merged) +
           recount_check("merged_onto_unknown_frame", owner, 0, bad);
}

static bool pool_adopted(SpEngine *eng, uint32_t pool)
{
    return ((ShPool *)g_ptr_array_index(eng->pools, pool))->adopted;
}

unsigned sh_counters_recount(SpEngine *eng)
{
    uint32_t npool = eng->frames->len, ngf = eng->gframes->len;
    g_autofree uint32_t *refs = g_new0(uint32_t, (gsize)npool + ngf + 1);
    uint64_t zero = 0, shared = 0, sharing = 0, in_pool = 0;
    uint64_t nshared[SP_ENGINE_NODES] = {0}, nsharing[SP_ENGINE_NODES] = {0};
    unsigned bad = 0;
    for (uint32_t s = 0; s < eng->nslots; s++)
        if (eng->vm_slots[s])
            bad += recount_vm(eng, eng->vm_slots[s], refs, &zero);
    for (uint32_t fid = 0; fid < npool; fid++) {
        const ShFrame *f = &sh_vec_index(eng->frames, ShFrame, fid);
        uint32_t r = f->refs;
        bad += recount_frame("refs", fid, refs[fid], r);
        bad += recount_frame("mappers", fid, r, sh_mapper_count(eng, fid));
        shared += r > 0;
        sharing += r > 0 ? r - 1 : 0;
        int n = sh_frame_node(eng, fid);
        if (n >= 0 && n < SP_ENGINE_NODES) {
            nshared[n] += r > 0;
            nsharing[n] += r > 0 ? r - 1 : 0;
        }
        /* Allocated frames: with references, or forgotten by a VM that
         * went on mapping them (sp_engine_forget); an adopted pool's
         * offsets are all in use until sh_pools_release_unused. */
        in_pool += f->pool != NO_SPACE && !pool_adopted(eng, f->pool);
    }
    /* per group record: the sum of its frames' refs */
    g_autoptr(GHashTable) rec_refs =
        g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    for (uint32_t i = 0; i < ngf; i++) {
        const ShGFrame *g = &sh_vec_index(eng->gframes, ShGFrame, i);
        uint32_t fid = i | GF_BIT, r = g->f.refs;
        bad += recount_frame("refs", fid, refs[npool + i], r);
        bad += recount_frame("mappers", fid, r, sh_mapper_count(eng, fid));
        shared += r > 0;
        sharing += r;
        if (g->rec) {
            uint64_t *sum = g_hash_table_lookup(rec_refs, g->rec);
            if (!sum) {
                sum = g_new0(uint64_t, 1);
                g_hash_table_insert(rec_refs, g->rec, sum);
            }
            *sum += r;
        }
    }
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, eng->grecs);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        const ShGroupRec *rec = v;
        uint64_t *sum = g_hash_table_lookup(rec_refs, rec);
        g_autofree char *owner =
            g_strdup_printf("group:%" G_GUINT64_FORMAT, sp_clone_group_id(rec->grp));
        bad += recount_check("group_refs", owner, sum ? *sum : 0, rec->refs);
    }
    bad += recount_check("zero_pages", "engine", zero, eng->stats.zero_pages);
    bad += recount_check("pages_shared", "engine", shared, eng->stats.pages_shared);
    bad += recount_check("pages_sharing", "engine", sharing, eng->stats.pages_sharing);
    for (int n = 0; n < SP_ENGINE_NODES; n++) {
        g_autofree char *owner = g_strdup_printf("node%d", n);
        bad += recount_check("pages_shared", owner, nshared[n], eng->stats.node_pages_shared[n]);
        bad += recount_check("pages_sharing", owner, nsharing[n], eng->stats.node_pages_sharing[n]);
    }
    uint64_t in_use = 0;
    for (guint i = 0; i < eng->pools->len; i++)
        if (!pool_adopted(eng, i)) {
            in_use += ((ShPool *)eng->pools->pdata[i])->fp.in_use;
            in_pool += ((ShPool *)eng->pools->pdata[i])->kept_lost; /* holes: no frame */
        }
    bad += recount_check("pool_frames", "engine", in_pool, in_use);
    return bad;
}
