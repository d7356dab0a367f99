/* SPDX-License-Identifier: MIT */
/*
 * counters.c - KSM's counters, kept by paired helpers.
 *
 * The counters operators see (engine.h) and the per-VM ones behind them
 * count page states and frame references (engine-priv.h):
 *   pages_shared   frames with at least one MERGED page mapping them
 *                  (pool frames and group frames alike)
 *   pages_sharing  MERGED pages beyond the first of each pool frame, plus
 *                  every MERGED page of a group frame (its file holds the
 *                  first copy): the pages saved by merging
 *   zero_pages     pages in ZERO, over all attached VMs
 *   vm->merged     the VM's pages in MERGED
 *   vm->zero       the VM's pages in ZERO
 *   vm->touched    the VM's pages with PG_TOUCHED
 *   ShFrame.refs   MERGED pages mapping the frame (= its mapper list)
 *   ShGroupRec.refs  the refs of the record's group frames
 * Only the helpers below change them, each in step with the state it
 * counts: sh_page_set_merged / sh_page_clear_merged (a page starts or stops
 * mapping a frame: the frame's get/put pair, which owns its reference, its
 * mapper entry, pages_shared and pages_sharing, and frees a pool frame with
 * its last reference), sh_page_set_zero / sh_page_clear_zero, and
 * sh_page_touch.  Event counters (merges, cow_breaks, pages_scanned, ...)
 * are bumped where the event happens.
 *
 * Engine lock held throughout.
 */
#include "sharing/engine-priv.h"

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
    if (sh_is_gframe(fid))
        sh_gframe_rec_get(eng, fid);
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
    if (sh_is_gframe(fid)) {
        sh_gframe_rec_put(eng, fid);
    } else if (f->refs == 0) {
        sh_frame_unlink(eng, fid);
        sp_frame_pool_free(&eng->pool, fid);
        eng->stats.frames_freed++;
    }
}

void sh_page_set_merged(SpEngine *eng, SpEngineVm *vm, uint64_t gfn, uint32_t fid)
{
    uint64_t old = vm->page[gfn];
    g_assert(PG_KIND(old) == PG_ANON || PG_KIND(old) == PG_COWED);
    vm->page[gfn] = PG_MAKE(PG_MERGED, fid, (old & ~(uint64_t)PG_KIND_MASK & 0xff) | PG_HASHED);
    vm->merged++;
    frame_get(eng, fid, vm, gfn);
}

void sh_page_clear_merged(SpEngine *eng, SpEngineVm *vm, uint64_t gfn)
{
    uint64_t p = vm->page[gfn];
    g_assert(PG_KIND(p) == PG_MERGED);
    vm->page[gfn] = (p & ~(uint64_t)PG_KIND_MASK) | PG_COWED;
    vm->merged--;
    frame_put(eng, PG_FRAME(p), vm, gfn);
}

void sh_page_set_zero(SpEngine *eng, SpEngineVm *vm, uint64_t gfn)
{
    uint64_t old = vm->page[gfn];
    g_assert(PG_KIND(old) == PG_ANON || PG_KIND(old) == PG_COWED);
    vm->page[gfn] = PG_MAKE(PG_ZERO, NO_FRAME, (old & 0xff & ~(uint64_t)PG_KIND_MASK));
    vm->zero++;
    eng->stats.zero_pages++;
}

void sh_page_clear_zero(SpEngine *eng, SpEngineVm *vm, uint64_t gfn)
{
    uint64_t p = vm->page[gfn];
    g_assert(PG_KIND(p) == PG_ZERO);
    vm->page[gfn] = (p & ~(uint64_t)PG_KIND_MASK) | PG_ANON;
    vm->zero--;
    eng->stats.zero_pages--;
}

void sh_page_touch(SpEngineVm *vm, uint64_t gfn)
{
    if (vm->page[gfn] & PG_TOUCHED)
        return;
    vm->page[gfn] |= PG_TOUCHED;
    vm->touched++;
}
