/* SPDX-License-Identifier: MIT */
/*
 * swap-layers.c - clone groups' pages in swap (docs/swap.md "Clone
 * layers"): a page of a clone group's file that members of the family
 * still map leaves memory once for the whole family, as a shared frame
 * does, and comes back once.
 *
 * Eviction (the balancer, after private pages and pool frames; eng->lock
 * held): a clock over each group's pages (ShGroupRec.swap_hand) takes a
 * page the file holds, that is not all zeros and that did not come back
 * since the hand last passed.  A group is eligible only when every member
 * of it (the reverse map's count) is a VM of this engine with a swap
 * channel, none held by a clone: a member the engine cannot ask would read
 * the hole as zeros; a page other VMs were merged onto (a group frame with
 * references) only when each of them is such a VM too.  Every member that
 * maps the page (its top layer there is this group, the page not left: the
 * reverse map, lock-free) and every VM merged onto it (the frame's mapper
 * list) registers it for missing faults (M_PREP); then the content goes to
 * the store, the page is listed, and punched out of the file - which
 * removes it from every mapper at once.  Nothing may read the hole through
 * a view meanwhile (that would fill it with a zero page, in the file): a
 * group frame without references is taken out of the index
 * (sh_gframe_unindex) and a page out is never indexed (gframe_index_page
 * asks); a group frame with references stays indexed - its merges name it
 * - and is marked out (ShSwap.gframe_out, read by sh_swap_frame_is_out,
 * which keeps merges and the swap path's twin search off it) until a pass
 * end or a balancer round finds it back in its file
 * (sh_swap_gframes_settle).
 *
 * Swap-in: a member's fault on the hole comes as S_IN LAYER with the
 * file's inode; a merged VM's as S_IN FRAME naming its space id for the
 * group's file (swap.c finds the inode: ShSwapVm.space_ino).  Either way
 * the service thread writes the content back into the file (pwrite: into
 * its page cache), frees the slot, and answers WAKE: the faulting VM, and
 * every other that faults, maps that same page again.  An older VM
 * process names no inode: the page comes back in every file that has it
 * out.
 *
 * Clones: while a VM of the engine is being cloned (sp_engine_layers_hold,
 * eng->layer_holds), every page out comes back and none leaves:
 * the children map the files before they can register anything.  A VM
 * that samepaged lets go running brings everything back first
 * (sh_swap_vm_detach).  When the engine forgets a group (no member, no
 * merge), its pages' slots are freed (sh_swap_layer_file_drop).
 *
 * Locking: as swap-evict.c for eviction (eng->lock, then swap->lock
 * around the lists); the service thread holds only swap->lock and touches
 * nothing but ShLayerFile, which lives until the group is forgotten or
 * swap ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "sharing/swap-priv.h"

#define LAYER_BATCH 512

static ShLayerFile *file_find(ShSwap *sw, uint64_t ino)
{
    for (guint i = 0; i < sw->layer_files->len; i++) {
        ShLayerFile *lf = sw->layer_files->pdata[i];
        if (lf->ino == ino)
            return lf;
    }
    return NULL;
}

static ShLayerFile *file_get(ShSwap *sw, ShGroupRec *rec)
{
    ShLayerFile *lf = file_find(sw, rec->ino);
    if (lf)
        return lf;
    int fd = fcntl(rec->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    lf = g_new0(ShLayerFile, 1);
    lf->ino = rec->ino;
    lf->fd = fd;
    lf->npages = rec->npages;
    lf->slot1 = g_new0(uint32_t, rec->npages);
    lf->back = g_new0(uint64_t, (rec->npages + 63) / 64);
    g_ptr_array_add(sw->layer_files, lf);
    return lf;
}

static void file_free(ShLayerFile *lf)
{
    close(lf->fd);
    g_free(lf->slot1);
    g_free(lf->back);
    g_free(lf);
}

bool sh_swap_layer_is_out(ShSwap *sw, uint64_t ino, uint64_t off)
{
    ShLayerFile *lf = file_find(sw, ino);
    return lf && off < lf->npages && lf->slot1[off];
}

/* One page back into its file (on a fault of faulter's, or NULL); lock
 * held. */
static bool restore_one(ShSwap *sw, ShLayerFile *lf, uint64_t off, ShSwapVm *faulter,
                        GError **error)
{
    uint32_t slot = lf->slot1[off] - 1;
    uint8_t page[SP_PAGE_SIZE];
    g_autoptr(GError) err = NULL;
    if (!sp_swap_store_get(sw->store, slot, page, &err) ||
        pwrite(lf->fd, page, SP_PAGE_SIZE, (off_t)(off * SP_PAGE_SIZE)) != SP_PAGE_SIZE) {
        if (!err)
            g_set_error(&err, G_IO_ERROR, g_io_error_from_errno(errno),
                        "cannot write the page back into its layer file: %s", g_strerror(errno));
        g_warning("event=swap-in-failed layer=%" G_GUINT64_FORMAT " page=%" G_GUINT64_FORMAT
                  " error=\"%s\"",
                  lf->ino, off, err->message);
        g_propagate_error(error, g_steal_pointer(&err));
        return false;
    }
    sh_swap_count_refault(sw, slot, faulter);
    sp_swap_store_drop(sw->store, slot);
    lf->slot1[off] = 0;
    lf->back[off / 64] |= 1ULL << (off % 64);
    lf->out--;
    sw->layer_out--;
    sw->frames_out--;
    sw->frame_ins++;
    sw->in_since++;
    sw->swap_ins++;
    return true;
}

bool sh_swap_layer_restore(ShSwap *sw, uint64_t ino, uint64_t off, ShSwapVm *faulter,
                           GError **error)
{
    bool ok = true;
    for (guint i = 0; i < sw->layer_files->len; i++) {
        ShLayerFile *lf = sw->layer_files->pdata[i];
        if ((!ino || lf->ino == ino) && off < lf->npages && lf->slot1[off])
            ok &= restore_one(sw, lf, off, faulter, ok ? error : NULL);
    }
    return ok;
}

void sh_swap_layers_restore_all(ShSwap *sw)
{
    for (guint i = 0; i < sw->layer_files->len; i++) {
        ShLayerFile *lf = sw->layer_files->pdata[i];
        for (uint64_t off = 0; lf->out && off < lf->npages; off++)
            if (lf->slot1[off])
                restore_one(sw, lf, off, NULL, NULL);
    }
}

/* Page off of lf is out and nobody's now: its slot goes; lock held. */
static void slot_forget(ShSwap *sw, ShLayerFile *lf, uint64_t off)
{
    sp_swap_store_drop(sw->store, lf->slot1[off] - 1);
    lf->slot1[off] = 0;
    lf->out--;
    sw->layer_out--;
    sw->frames_out--;
}

bool sh_swap_layer_forget(ShSwap *sw, uint64_t ino, uint64_t off)
{
    ShLayerFile *lf = file_find(sw, ino);
    if (!lf || off >= lf->npages || !lf->slot1[off])
        return false;
    slot_forget(sw, lf, off);
    return true;
}

void sh_swap_layer_file_drop(ShSwap *sw, uint64_t ino)
{
    sh_swap_lost_forget_file(sw, ino);
    ShLayerFile *lf = file_find(sw, ino);
    if (!lf)
        return;
    for (uint64_t off = 0; lf->out && off < lf->npages; off++)
        if (lf->slot1[off])
            slot_forget(sw, lf, off);
    g_ptr_array_remove(sw->layer_files, lf);
    file_free(lf);
}

void sh_swap_layers_free(ShSwap *sw)
{
    for (guint i = 0; i < sw->layer_files->len; i++)
        file_free(sw->layer_files->pdata[i]);
    g_ptr_array_free(sw->layer_files, TRUE);
}

/* Can pages of rec's group leave now?  Every member is ours and can be
 * asked; lock held. */
static bool group_evictable(SpEngine *eng, ShSwap *sw, ShGroupRec *rec, SpEngineVm *only)
{
    uint32_t members = 0;
    bool has_only = only == NULL;
    for (uint32_t s = 0; s < eng->nslots; s++) {
        SpEngineVm *vm = eng->vm_slots[s];
        if (!vm || !vm->rmap || !sp_rmap_vm_in_group(vm->rmap, rec->grp))
            continue;
        if (vm->broken || vm->hold || !sh_swap_vm_find(sw, vm))
            return false;
        members++;
        has_only |= vm == only;
    }
    return members && members == sp_clone_group_members(rec->grp) && has_only;
}

/* Pages of rec to evict, from its clock: up to max.  eng->lock held. */
static void pick_pages(SpEngine *eng, ShSwap *sw, ShGroupRec *rec, ShLayerFile *lf, uint64_t max,
                       GArray *out)
{
    for (uint64_t seen = 0; seen < rec->npages && out->len < max; seen++) {
        uint64_t off = rec->swap_hand++ % rec->npages;
        uint64_t bit = 1ULL << (off % 64);
        uint32_t gf = rec->gf[off];
        if (!sp_clone_group_holds(rec->grp, off) || lf->slot1[off] || gf == GF_NOT_INDEXABLE ||
            sh_grec_gone(rec, off) || sh_swap_lost_locked(sw, rec->ino, off))
            continue; /* (a page given back: a hole nobody maps, group-giveback.c; one lost
                       * in a take-over: a hole its mappers must not read, swap-adopt.c) */
        if (gf && sh_frame(eng, (gf - 1) | GF_BIT)->refs &&
            !sh_swap_mappers_ready(eng, sw, (gf - 1) | GF_BIT, NULL, NULL))
            continue;                   /* merged onto by a VM that cannot be asked */
        if (lf->back[off / 64] & bit) { /* came back lately: a second chance */
            lf->back[off / 64] &= ~bit;
            continue;
        }
        if (sh_swap_is_zero(rec->view + off * SP_PAGE_SIZE))
            continue; /* costs a slot, frees a page no sooner than the zero page would */
        g_array_append_val(out, off);
    }
}

/* Every member that maps one of the pages, and every VM merged onto one
 * (a group frame with references), registers it for missing faults. */
static bool prep_mappers(SpEngine *eng, ShGroupRec *rec, GArray *offs)
{
    g_autoptr(GHashTable) per_vm = sh_swap_per_vm_new();
    for (uint32_t s = 0; s < eng->nslots; s++) {
        SpEngineVm *vm = eng->vm_slots[s];
        if (!vm || !vm->rmap || !sp_rmap_vm_in_group(vm->rmap, rec->grp))
            continue;
        GArray *gfns = g_array_new(FALSE, FALSE, sizeof(uint64_t));
        g_hash_table_insert(per_vm, vm, gfns);
        for (guint i = 0; i < offs->len; i++) {
            uint64_t off = g_array_index(offs, uint64_t, i);
            if (off < vm->npages && sp_rmap_vm_layer_group(vm->rmap, off) == rec->grp &&
                sp_rmap_vm_maps_layer(vm->rmap, off))
                g_array_append_val(gfns, off);
        }
    }
    for (guint i = 0; i < offs->len; i++) {
        uint32_t gf = rec->gf[g_array_index(offs, uint64_t, i)];
        if (gf && gf != GF_NOT_INDEXABLE)
            sh_swap_gather_mappers(eng, (gf - 1) | GF_BIT, per_vm);
    }
    return sh_swap_prep_all(eng, per_vm);
}

/* Group frame idx is no longer marked out; eng->lock held. */
static void gframe_unmark(ShSwap *sw, uint32_t idx)
{
    if (idx / 64 < sw->gframe_out_len)
        __atomic_fetch_and(&sw->gframe_out[idx / 64], ~(1ULL << (idx % 64)), __ATOMIC_RELEASE);
}

/* Group frame idx is marked out; eng->lock and lock held. */
static void gframe_mark(SpEngine *eng, ShSwap *sw, uint32_t idx)
{
    uint32_t words = (eng->gframes->len + 63) / 64;
    if (words > sw->gframe_out_len) {
        sw->gframe_out = g_renew(uint64_t, sw->gframe_out, words);
        memset(sw->gframe_out + sw->gframe_out_len, 0, (words - sw->gframe_out_len) * 8);
        sw->gframe_out_len = words;
    }
    __atomic_fetch_or(&sw->gframe_out[idx / 64], 1ULL << (idx % 64), __ATOMIC_RELEASE);
}

void sh_swap_gframe_forget(SpEngine *eng, uint32_t idx)
{
    if (eng->swap)
        gframe_unmark(eng->swap, idx);
}

void sh_swap_gframes_settle(SpEngine *eng)
{
    ShSwap *sw = eng->swap;
    if (!sw)
        return;
    g_mutex_lock(&sw->lock);
    for (uint32_t w = 0; w < sw->gframe_out_len; w++) {
        for (uint64_t bits = sw->gframe_out[w]; bits; bits &= bits - 1) {
            uint32_t idx = w * 64 + (uint32_t)__builtin_ctzll(bits);
            const ShGFrame *g = &sh_vec_index(eng->gframes, ShGFrame, idx);
            if (!g->rec || !sh_swap_layer_is_out(sw, g->rec->ino, g->off))
                gframe_unmark(sw, idx);
        }
    }
    g_mutex_unlock(&sw->lock);
}

/* Evict pages of rec; how many left.  eng->lock held. */
static uint64_t evict_group(SpEngine *eng, ShSwap *sw, ShGroupRec *rec, uint64_t max,
                            SpEngineVm *only)
{
    g_autoptr(GArray) offs = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    g_mutex_lock(&sw->lock);
    ShLayerFile *lf = NULL;
    if (!sw->stopped_full && !eng->layer_holds && group_evictable(eng, sw, rec, only) &&
        (lf = file_get(sw, rec)))
        pick_pages(eng, sw, rec, lf, MIN(max, LAYER_BATCH), offs);
    if (offs->len) /* VMs merged onto a page fault on the group's space */
        sh_swap_note_spaces(eng, sw);
    g_mutex_unlock(&sw->lock);
    if (!offs->len || !prep_mappers(eng, rec, offs))
        return 0;
    uint64_t gone = 0;
    for (guint i = 0; i < offs->len; i++) {
        uint64_t off = g_array_index(offs, uint64_t, i);
        /* No merge may read it while it is out: a group frame nobody merged
         * onto leaves the index; one merged onto stays (its references
         * name it), marked out until it is back (sh_swap_gframes_settle). */
        uint32_t gf = rec->gf[off];
        bool merged = gf && gf != GF_NOT_INDEXABLE && sh_frame(eng, (gf - 1) | GF_BIT)->refs;
        if (!merged)
            sh_gframe_unindex(eng, rec, off);
        g_autoptr(GError) err = NULL;
        uint32_t slot = sp_swap_store_put(sw->store, rec->view + off * SP_PAGE_SIZE, &err);
        g_mutex_lock(&sw->lock);
        if (slot == SP_SWAP_NO_SLOT) {
            if (err)
                sh_swap_store_full(sw, err);
            g_mutex_unlock(&sw->lock);
            break;
        }
        SpSwapOwner own = {.kind = SP_SWAP_OWNER_LAYER, .a = lf->ino, .b = off};
        sp_swap_store_set_owner(sw->store, slot, &own);
        /* Listed before the punch: a fault right after finds it. */
        lf->slot1[off] = slot + 1;
        if (merged)
            gframe_mark(eng, sw, gf - 1);
        if (!sh_swap_punch(sw, lf->fd, off, slot, "layer")) {
            lf->slot1[off] = 0;
            if (merged)
                gframe_unmark(sw, gf - 1);
            g_mutex_unlock(&sw->lock);
            break;
        }
        lf->out++;
        sw->layer_out++;
        gone++;
        g_mutex_unlock(&sw->lock);
    }
    return gone;
}

uint64_t sh_swap_evict_layers(SpEngine *eng, uint64_t max, SpEngineVm *only)
{
    ShSwap *sw = eng->swap;
    g_autoptr(GPtrArray) recs = g_ptr_array_new();
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, eng->grecs);
    while (g_hash_table_iter_next(&it, &k, &v))
        g_ptr_array_add(recs, v);
    uint64_t got = 0;
    for (guint i = 0; i < recs->len && got < max; i++)
        got += evict_group(eng, sw, recs->pdata[i], max - got, only);
    return got;
}

void sh_swap_layers_hold(SpEngine *eng)
{
    ShSwap *sw = eng->swap;
    if (!sw)
        return;
    g_mutex_lock(&sw->lock);
    sh_swap_layers_restore_all(sw);
    g_mutex_unlock(&sw->lock);
}
