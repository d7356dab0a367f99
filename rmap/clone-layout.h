/* SPDX-License-Identifier: MIT */
/*
 * clone-layout.h - which clone-group file each guest page of a VM maps:
 * the chain of groups (design.md, mechanism 7).
 *
 * A VM made by cloning maps its RAM from one or more group files, all
 * MAP_PRIVATE at offset = guest address: layer 0 is the file made when the
 * family's first clone happened, and every later clone of a member adds a
 * layer holding only the pages that member had changed since (its
 * copy-on-write pages), mapped over the older layers.  So re-cloning or
 * cloning a clone copies only what diverged, and a chain of clones is a
 * chain of files.  layer[gfn] says which file backs the page where the VM
 * has not written it; a page the VM wrote is private anonymous memory
 * (pagemap says which).
 *
 * Invariant the user must keep: nothing drops pages of a VM that uses a
 * layout with MADV_DONTNEED (that would bring back the layer's content,
 * which is right only while the page was never written since the layout
 * was made); the sharing engine puts an empty anonymous mapping in place
 * instead (SpEngineVmDesc.file_backed).  Which pages left their layer is
 * the reverse map's business (rmap/rmap.h: the off bits). *
 * Each layer is a sharing group (rmap/rmap.h), which holds the file; a
 * layout holds each of its groups (and so their files) until it is freed.
 * The kernel keeps a file's pages alive as long as any VM maps them, so
 * VMs exit in any order.
 * Locking: none; a layout belongs to one VM and changes only while its
 * vCPUs are paused.
 */
#ifndef SAMEPAGE_RMAP_CLONE_LAYOUT_H
#define SAMEPAGE_RMAP_CLONE_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>
#include <gio/gio.h>

#include "rmap/guest-mem.h"
#include "rmap/rmap.h"

#define SP_CLONE_LAYOUT_MAX_LAYERS 200
#define SP_CLONE_LAYOUT_MAX_RUNS   4096 /* mappings per VM before flattening */

struct SpCloneLayout {
    GPtrArray *groups; /* SpCloneGroup *, one per layer, oldest first; held */
    uint8_t *layer;    /* per guest page: index into groups */
    uint64_t npages;
};

/* One layer: all of RAM from group g (the layout takes its own hold). */
SpCloneLayout *sp_clone_layout_new_flat(SpCloneGroup *g, uint64_t npages);
SpCloneLayout *sp_clone_layout_copy(const SpCloneLayout *l); /* holds the same groups */
/* A layout from its group files (oldest first; each a new group whose parent
 * is the one before; the fds are taken, even on failure) and one byte per
 * page naming its layer (NULL: all layer 0).  For a clone child made in
 * another process than its source.  NULL with an error if a layer index is
 * out of range or a file is not a file of npages pages. */
SpCloneLayout *sp_clone_layout_from_fds(const int *fds, uint32_t nfds, const uint8_t *layer,
                                        uint64_t npages, GError **error);
/* l's groups plus g on top, with `layer` (one byte per page, checked) as
 * the layer array: the layout a source in another process gave its clones
 * (the supervisor's copy of it). */
/* One more layer on top (the layout holds g); pages keep their layer. */
void sp_clone_layout_add_group(SpCloneLayout *l, SpCloneGroup *g);
SpCloneLayout *sp_clone_layout_push(const SpCloneLayout *l, SpCloneGroup *g, const uint8_t *layer,
                                    GError **error);
/* The group of the top layer (the newest). */
SpCloneGroup *sp_clone_layout_top(const SpCloneLayout *l);
void sp_clone_layout_free(SpCloneLayout *l);
/* Number of runs of equal layer, i.e. mappings sp_clone_layout_map makes. */
uint64_t sp_clone_layout_runs(const SpCloneLayout *l);
/* Map every run of the layout over mem (MAP_FIXED, WP registration). */
bool sp_clone_layout_map(const SpCloneLayout *l, SpGuestMem *mem, GError **error);
/* A new layout: `l` plus a new layer holding the pages of mem whose bit is
 * set in `changed` (those that no longer read as their layer: what the VM
 * wrote, or the sharing engine remapped, since `l` was made; the reverse
 * map's off bits after a sync), a new group whose parent is l's top group.
 * mem itself is not touched: its owner keeps its pages and `l`, so this
 * costs one copy of the changed pages and no remapping.
 * `copied` = pages written.  NULL with an error on failure. */
SpCloneLayout *sp_clone_layout_with_changed(const SpCloneLayout *l, const SpGuestMem *mem,
                                            const uint64_t *changed, uint64_t *copied,
                                            GError **error);

#endif
