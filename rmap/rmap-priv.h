/* SPDX-License-Identifier: MIT */
/*
 * rmap-priv.h - the reverse map's insides (clone-group.c, rmap.c,
 * clone-layout.c).  See rmap.h for the model, invariants and locking.
 */
#ifndef SAMEPAGE_RMAP_RMAP_PRIV_H
#define SAMEPAGE_RMAP_RMAP_PRIV_H

#include "rmap/clone-layout.h"
#include "rmap/rmap.h"

/* Every field's comment says "writer; lock: meaning".  "immutable": set
 * before the struct is shared, never changed after.  The order of the locks
 * is in rmap.h ("Locking"). */

/* A VM's membership in one group: the group is layer `layer` of its layout.
 * clone_group_add_member (from set_layout); rmap_lock, as the array. */
typedef struct RmapMember {
    SpRmapVm *vm;
    uint8_t layer;
} RmapMember;

struct SpCloneGroup {
    uint64_t id;          /* sp_clone_group_new; immutable */
    int fd;               /* new, then -1 by the last layout release; rmap_lock: the file */
    uint64_t npages;      /* new; immutable */
    uint64_t ino;         /* new; immutable: the file's inode */
    uint64_t *present;    /* new; immutable: pages the file held then */
    uint64_t npresent;    /* new; immutable: bits set in present */
    SpCloneGroup *parent; /* new; immutable: one reference to the layer under it, or NULL */
    int refs;             /* new, ref/unref, layouts, members, children; rmap_lock */
    int layout_refs;      /* clone_group_layout_hold/release; rmap_lock: layouts holding fd */
    GArray *members;      /* clone_group_add/remove_member; rmap_lock: RmapMember */
    uint32_t nmembers;    /* the same; rmap_lock to write, atomic to read: members->len */
};

/* The off bits live in a memfd that the VM process writes and its
 * supervisor maps read-only (docs/process-model.md): this header, then one
 * bit per page. */
typedef struct RmapShared {
    uint64_t magic; /* RMAP_SHARED_MAGIC */
    uint64_t npages;
    uint64_t clone_shared; /* atomic: pages mapping a frame their group file holds */
    uint64_t pad[5];
} RmapShared;
#define RMAP_SHARED_MAGIC 0x53504f4646424954ULL /* "SPOFFBIT" */

struct SpRmapVm {
    uint64_t id;        /* sp_rmap_vm_new; immutable: the VMM's VM id */
    char *name;         /* sp_rmap_vm_new; immutable */
    SpGuestMem *mem;    /* sp_rmap_vm_new; immutable: its RAM (NULL when remote) */
    uint64_t npages;    /* sp_rmap_vm_new; immutable */
    bool remote;        /* immutable: the VM runs in another process, which writes
                         * the off bits; this entry only reads them */
    int shared_fd;      /* immutable: the memfd behind `shared` (local entries) */
    RmapShared *shared; /* immutable mapping: header + off bits */
    size_t shared_len;
    /* remote: how to sync (the VM process reads its pagemap), and where its
     * RAM is, for SP_RMAP_EXACT (/proc/PID/pagemap) */
    SpRmapSyncFn sync_fn;
    void *sync_opaque;
    int pid;
    uint64_t ram_base;
    /* rmap_vm_set_layout and free; rmap_lock, read lock-free under the
     * set_layout rule (vm-layers.h): owned; NULL: no clone group under its RAM */
    SpCloneLayout *layout;
    /* in `shared`; rmap_vm_set_layout clears them (rmap_lock, local entries);
     * note_off sets bits, atomic, from any thread: page left its layer for
     * good.  A remote entry's are written by the VM process. */
    uint64_t *off;
    gint64 last_sync_us; /* the syncs; rmap_lock: monotonic time of the last sync */
};

/* clone-group.c: the reverse map's one lock (rmap.h, "Locking") */
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
