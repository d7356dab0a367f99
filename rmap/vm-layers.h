/* SPDX-License-Identifier: MIT */
/*
 * vm-layers.h - the clone-layer protocol: how a paused VM's RAM becomes the
 * layout its clones map, and how a clone maps it (design.md, mechanism 7;
 * the layers are rmap/clone-layout.h's).
 *
 * The source, paused, pushes a layer (sp_rmap_vm_push_layer):
 *  - a VM with a layout that is not too deep gets, for its children, its
 *    layout plus one new layer holding the pages that left their layer
 *    since (the off bits after a sync: written, or remapped by the sharing
 *    engine).  It keeps its own RAM and layout: remapping would lengthen
 *    the pause, so those pages exist twice (in the source, in the layer);
 *  - any other VM (never cloned; too many layers or mappings) is copied in
 *    full into a new group file that its RAM then maps too: its layout
 *    becomes that one file, a group whose parent is the group it was in.
 * Each child then maps the layout (sp_rmap_vm_map_layout) before it runs.
 *
 * Kept here, not by the caller: a VM's reverse-map entry takes its layout
 * right after its RAM was mapped from it (so its off bits start clear), a
 * VM owns its layout (freed with its entry or when replaced), and a group
 * is made with the right parent.  The caller (vmm/vm-clone.c) keeps the
 * pause, the vCPU state and whatever tracks the RAM's pages (the sharing
 * engine), which it detaches and attaches again around a remap through
 * SpRmapRemapHooks.
 *
 * Locking: called from the thread that clones, with the VMs' vCPUs paused
 * (the source) or not started (a child); takes rmap_lock itself and calls
 * the hooks without it.
 */
#ifndef SAMEPAGE_RMAP_VM_LAYERS_H
#define SAMEPAGE_RMAP_VM_LAYERS_H

#include <stdbool.h>
#include <stdint.h>
#include <gio/gio.h>

#include "rmap/rmap.h"

/* The caller's part of a remap of the source's RAM. */
typedef struct SpRmapRemapHooks {
    /* Before the RAM is replaced: stop whatever tracks its pages (detach
     * the engine) and forget writes the copy already holds (dirty bits). */
    void (*before)(void *opaque);
    /* After: the RAM maps the new file, or a failed registration left the
     * mapping unprotected (called either way); track it again. */
    bool (*after)(void *opaque, GError **error);
    void *opaque;
} SpRmapRemapHooks;

/* What a push did. */
typedef struct SpRmapPush {
    uint64_t pages_copied; /* pages written into the children's new layer or file */
    gint64 copied_us;      /* monotonic time when that copy ended */
    void *old_ram;         /* after a remap, the source's pages before it: munmap
                            * them (the RAM's size) once the children run; or NULL */
} SpRmapPush;

/* Source paused: the layout its children are to map (see above), or NULL
 * with an error.  pre_fd: a new file the caller already copied all of RAM
 * into while the VM ran (only for a VM without a layout), taken over; -1
 * for none.  Free the layout with sp_clone_layout_free() once every child
 * mapped it. */
SpCloneLayout *sp_rmap_vm_push_layer(SpRmapVm *rv, int pre_fd, const SpRmapRemapHooks *hooks,
                                     SpRmapPush *out, GError **error);

/* A child, not running yet: map a copy of `layout` over its RAM and make
 * it the child's layout. */
bool sp_rmap_vm_map_layout(SpRmapVm *rv, const SpCloneLayout *layout, GError **error);

#endif
