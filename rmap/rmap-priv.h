/* SPDX-License-Identifier: MIT */
/*
 * rmap-priv.h - the reverse map's insides (clone-group.c, rmap.c,
 * clone-layout.c).  See rmap.h for the model, invariants and locking.
 */
#ifndef SAMEPAGE_RMAP_RMAP_PRIV_H
#define SAMEPAGE_RMAP_RMAP_PRIV_H

#include "rmap/clone-layout.h"
#include "rmap/rmap.h"

/* A VM's membership in one group: the group is layer `layer` of its layout. */
typedef struct RmapMember {
    SpRmapVm *vm;
    uint8_t layer;
} RmapMember;

struct SpCloneGroup {
    uint64_t id;
    int fd; /* the file; -1 once no layout uses it */
    uint64_t npages;
    uint64_t *present; /* pages the file held when the group was made */
    uint64_t npresent;
    SpCloneGroup *parent; /* one reference, or NULL */
    int refs;             /* rmap_lock: layouts + child groups + callers */
    int layout_refs;      /* rmap_lock: layouts holding the fd */
    GArray *members;      /* RmapMember, rmap_lock */
};

struct SpRmapVm {
    uint64_t id;
    char *name;
    SpGuestMem *mem;
    uint64_t npages;
    SpCloneLayout *layout; /* owned; NULL: no clone group under its RAM */
    uint64_t *off;         /* atomic bits: page left its layer for good */
    uint64_t clone_shared; /* atomic: pages mapping a frame their group file holds */
    gint64 last_sync_us;   /* rmap_lock: monotonic time of the last sync */
};

extern GMutex rmap_lock;

static inline bool rmap_bit(const uint64_t *bits, uint64_t i)
{
    return (__atomic_load_n(&bits[i / 64], __ATOMIC_RELAXED) >> (i % 64)) & 1;
}

/* rmap.c, rmap_lock held: sync rv if its last sync is older than that */
void rmap_sync_if_older_locked(SpRmapVm *rv, double max_age_s);
/* rmap.c (takes rmap_lock): rv's RAM was just mapped from `layout` (NULL:
 * none), so every page maps its layer and the off bits start clear.  rv
 * takes the layout over and frees the one it replaces.  Nothing else may
 * touch rv's RAM or entry meanwhile (vCPUs paused or not started, engine
 * detached): vm-layers.c is the only caller. */
void rmap_vm_set_layout(SpRmapVm *rv, SpCloneLayout *layout);

/* clone-group.c, rmap_lock held */
void clone_group_add_member(SpCloneGroup *g, SpRmapVm *vm, uint8_t layer);
void clone_group_remove_member(SpCloneGroup *g, SpRmapVm *vm);
/* A layout starts or stops using g's file (takes rmap_lock). */
void clone_group_layout_hold(SpCloneGroup *g);
void clone_group_layout_release(SpCloneGroup *g);

#endif
