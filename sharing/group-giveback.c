/* SPDX-License-Identifier: MIT */
/*
 * group-giveback.c - clone groups' pages that no VM maps any more go back
 * to the host (docs/clones.md, "Layer pages nobody maps").
 *
 * A clone group's file holds a page for every page the source had when
 * the group was made, and the file keeps it for as long as the group
 * lives, whether or not any member still maps it: members leave a page
 * for good when they write it (the kernel copies it), when the engine
 * merges it onto a pool frame or drops it to the zero page.  Once every
 * member has left page `off`, the file's copy is memory nobody can read,
 * and a long-lived clone family that rewrites its memory holds twice what
 * it uses.  At the end of each pass the index looks at up to a budget of
 * such pages (a hand per group, as gframe indexing does) and punches each
 * dead page out of the file.
 *
 * A page is dead when, for every member of the group, the reverse map
 * says the member's page there is not this group's or has left it (the
 * off bit: set only after the page truly left - a write copied it, or a
 * remap replaced it - and never cleared while the layout stays: rmap.h,
 * "Exactness"); and no VM is merged onto it (a group frame with
 * references: those VMs map the file through the engine).  Stale off bits
 * err the safe way (a page that left is still taken as mapped).  The
 * members must all be known: a group is looked at only while every member
 * of it (the reverse map's count) is a VM attached to this engine, none
 * held by a clone (a clone's new layout is built from the off bits) nor
 * broken; and no group while a clone is under way (eng->layer_holds): its
 * children map their layout's files before they are members - a page the
 * source leaves meanwhile may be one the children still map.  And only
 * while no VM process this index does not track may map a group's file:
 * never after a VM was let go running (sp_engine_forget) or after a
 * re-attach adopted pools or group files (eng->layers_unsure), until a
 * re-attach that got every VM back.
 *
 * A dead page that is out in swap is forgotten there (its slot freed)
 * instead: it is a hole already.  A dead page is never indexed as a
 * frame (it is unindexed first, with no references), never read through
 * the view (that would fill the hole again) and never picked by the swap
 * clock: ShGroupRec.gone says which pages went.
 *
 * Locking: eng->lock held throughout (the scanner, between the pass's
 * last batch and its end); swap->lock around the swap store's lists.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "sharing/engine-priv.h"
#include "sharing/swap-priv.h"

/* Can rec's pages be judged now?  Every member is an attached VM that
 * is not being cloned. */
static bool family_known(SpEngine *eng, const ShGroupRec *rec)
{
    uint32_t members = 0;
    for (uint32_t s = 0; s < eng->nslots; s++) {
        SpEngineVm *vm = eng->vm_slots[s];
        if (!vm || !vm->rmap || !sp_rmap_vm_in_group(vm->rmap, rec->grp))
            continue;
        if (vm->broken || vm->hold)
            return false;
        members++;
    }
    return members && members == sp_clone_group_members(rec->grp);
}

/* Page `off` of rec, dead: out of the index, out of swap or out of the
 * file.  false if the file refused. */
static bool give_back(SpEngine *eng, ShGroupRec *rec, uint64_t off)
{
    sh_gframe_unindex(eng, rec, off);
    bool was_out = false;
    if (eng->swap) {
        g_mutex_lock(&eng->swap->lock);
        was_out = sh_swap_layer_forget(eng->swap, rec->ino, off);
        g_mutex_unlock(&eng->swap->lock);
    }
    if (!was_out && fallocate(rec->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                              (off_t)(off * SP_PAGE_SIZE), SP_PAGE_SIZE) < 0) {
        g_warning("event=layer-give-back-failed group=%" G_GUINT64_FORMAT " error=\"%s\" (its "
                  "pages nobody maps stay in memory)",
                  rec->ino, g_strerror(errno));
        rec->give_failed = true;
        return false;
    }
    rec->gone[off / 64] |= 1ULL << (off % 64);
    eng->stats.layer_pages_given_back++;
    return true;
}

static void give_back_group(SpEngine *eng, ShGroupRec *rec, uint64_t budget)
{
    if (rec->give_failed || !family_known(eng, rec))
        return;
    for (uint64_t looked = 0; looked < budget && looked < rec->npages; looked++) {
        uint64_t off = rec->give_hand;
        rec->give_hand = (rec->give_hand + 1) % rec->npages;
        if (!sp_clone_group_holds(rec->grp, off) || sh_grec_gone(rec, off))
            continue;
        uint32_t gf = rec->gf[off];
        if (gf && gf != GF_NOT_INDEXABLE && sh_frame(eng, (gf - 1) | GF_BIT)->refs)
            continue; /* VMs merged onto it map the file */
        if (sh_grec_mapper(eng, rec, off))
            continue;
        if (!give_back(eng, rec, off))
            return;
    }
}

void sh_grecs_give_back_some(SpEngine *eng, uint64_t budget)
{
    guint n = g_hash_table_size(eng->grecs);
    if (eng->layers_unsure || eng->layer_holds || !n)
        return;
    /* Each group its share of the budget, so that a large one does not
     * keep the others waiting. */
    uint64_t each = MAX(budget / n, 4096);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, eng->grecs);
    while (g_hash_table_iter_next(&it, &k, &v))
        give_back_group(eng, v, each);
}
