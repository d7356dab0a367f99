/* SPDX-License-Identifier: MIT */
/* vm-layers.c - the clone-layer protocol (see vm-layers.h). */
#include "rmap/clone-file.h"
#include "rmap/rmap-priv.h"
#include "rmap/vm-layers.h"

/* The source's RAM is copied into a new file (or pre_fd holds the copy)
 * that the RAM then maps: a new group, the source's only layer. */
static SpCloneLayout *push_flat(SpRmapVm *rv, int pre_fd, const SpRmapRemapHooks *hooks,
                                SpRmapPush *out, GError **error)
{
    int fd = pre_fd >= 0 ? pre_fd : sp_clone_file_create(rv->mem, &out->pages_copied, error);
    out->copied_us = g_get_monotonic_time();
    if (fd < 0)
        return NULL;
    hooks->before(hooks->opaque);
    out->old_ram = sp_guest_mem_move_out(rv->mem);
    bool ok = sp_guest_mem_map_file(rv->mem, fd, error);
    /* A new group; the one the VM was in (if any) is its parent. */
    SpCloneGroup *grp =
        sp_clone_group_new(fd, rv->npages, rv->layout ? sp_clone_layout_top(rv->layout) : NULL);
    SpCloneLayout *nl = sp_clone_layout_new_flat(grp, rv->npages);
    sp_clone_group_unref(grp);
    rmap_vm_set_layout(rv, nl);
    /* Track the RAM again even after a failed registration: it is the
     * file's now either way, and the engine copes with pages it cannot
     * protect. */
    g_autoptr(GError) aerr = NULL;
    if (!hooks->after(hooks->opaque, ok ? error : &aerr))
        ok = false;
    return ok ? sp_clone_layout_copy(nl) : NULL;
}

SpCloneLayout *sp_rmap_vm_push_layer(SpRmapVm *rv, int pre_fd, const SpRmapRemapHooks *hooks,
                                     SpRmapPush *out, GError **error)
{
    *out = (SpRmapPush){0};
    const SpCloneLayout *l = rv->layout;
    if (l && l->groups->len < SP_CLONE_LAYOUT_MAX_LAYERS) {
        /* The pages that left their layer (written, or remapped by the
         * engine), exactly: the vCPUs are parked and the sync reads pagemap. */
        if (!sp_rmap_sync(rv, error))
            return NULL;
        g_autofree uint64_t *changed = g_new0(uint64_t, (l->npages + 63) / 64);
        sp_rmap_vm_copy_off(rv, changed);
        SpCloneLayout *n =
            sp_clone_layout_with_changed(l, rv->mem, changed, &out->pages_copied, error);
        out->copied_us = g_get_monotonic_time();
        if (!n)
            return NULL;
        if (sp_clone_layout_runs(n) <= SP_CLONE_LAYOUT_MAX_RUNS)
            return n;
        sp_clone_layout_free(n); /* too fragmented: flatten */
    }
    return push_flat(rv, pre_fd, hooks, out, error);
}

bool sp_rmap_vm_map_layout(SpRmapVm *rv, const SpCloneLayout *layout, GError **error)
{
    SpCloneLayout *l = sp_clone_layout_copy(layout);
    if (!sp_clone_layout_map(l, rv->mem, error)) {
        sp_clone_layout_free(l);
        return false;
    }
    rmap_vm_set_layout(rv, l);
    return true;
}
