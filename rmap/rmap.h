/* SPDX-License-Identifier: MIT */
/*
 * rmap.h - sharing groups and the reverse map: which (VM, guest frame)
 * pairs map a given host frame now (issue 4, design.md "Clones").
 *
 * Frames.  A guest page is backed by one of
 *   - a GROUP frame: page `off` of a clone group's file (a memfd made when a
 *     VM was cloned, rmap/clone-file.h); every member of the group maps it
 *     MAP_PRIVATE at guest frame `off`, until it writes the page (the
 *     kernel copies it) or the sharing engine remaps it;
 *   - a POOL frame: frame `index` of a sharing engine's pool (dedup merge);
 *   - nothing shared: private anonymous memory.
 *
 * Groups are anon_vma's idea applied to VM clones.  A group knows its member
 * VMs (every VM whose layout has the group's file as one of its layers) and
 * its parent group (the layer under it: a clone of a clone adds a layer
 * holding only the pages its source changed).  A group frame may also be
 * mapped by pages of other VMs that the sharing engine merged onto it
 * (dedup onto a clone's page, as KSM merges into a forked KSM page): the
 * walk adds those from the engine's mapper list.  A member knows, per guest
 * page, which of its layers backs the page (SpCloneLayout.layer) and whether
 * the page has left the layer for good (the `off` bit: written, hence
 * copied; or remapped by the engine).  So the walk of a group frame visits
 * the group's members and tests two bytes of each: no list per mapping is
 * kept for clone-shared pages, and a page copied on write in one member is
 * no longer reported for that member.  Pool frames are walked through the
 * engine that owns the pool (it keeps a mapper list per frame, as KSM keeps
 * rmap_items per stable node) via the pool walker it registers.
 *
 * Exactness.  Leaving a layer always starts with a write (a private copy),
 * and the off bit is sticky.  Writes are learned from the engine's dirty-log
 * harvest, from VMM writes, and by sp_rmap_sync(), which reads the VM's
 * /proc/self/pagemap once (about 2 ms per GiB) and also lets the engine
 * settle merged pages that were copied on write.  The walk is therefore
 * exact for every write made before the last sync or harvest; a page
 * written after it is still reported until the next one.  SP_RMAP_EXACT
 * makes the walk check each candidate in /proc/self/pagemap instead (one
 * pread per candidate): exact at the time of the walk.
 *
 * A frame a member has not touched yet (not present in its page table) is
 * reported: the member maps it, its first read will show that frame.
 *
 * Lifetimes.  Groups are reference counted: by the layouts that map their
 * file (each holds the file descriptor) and by child groups (parent link).
 * When the last layout using a group goes, its file is closed and the
 * kernel frees its pages once no VM maps them; the group struct lives on
 * while a child group names it as parent.  VMs exit in any order.
 *
 * Locking.  Two locks meet here: rmap_lock, one process-wide mutex that
 * protects groups, members and layouts (and the table of pool walkers), and
 * each sharing engine's own lock (SpEngine.lock, sharing/engine-priv.h),
 * which protects that engine's page states, frames and mapper lists.
 *
 *     Lock order: rmap_lock, then an engine's lock.
 *
 * This is the one place the order is written; every other mention points
 * here.  The reverse map calls the pool walkers (SpRmapPoolOps) with
 * rmap_lock held, and they take their engine's lock.  Code that holds an
 * engine's lock never takes rmap_lock: it calls only the functions marked
 * "lock-free" below, and takes or drops a group reference only after
 * releasing its lock.  A walk holds rmap_lock for its duration (cost:
 * members x 2 bit tests; a frame shared by 64 VMs is walked in well under
 * 10 us, see bench/clone-bench).  Off bits are set with atomic operations,
 * from any thread, without the lock.  A "lock-free" function reads only
 * immutable fields, atomic bits, or a VM's layout, which changes only as
 * sp_rmap_vm_set_layout() says (nothing else touches the VM meanwhile).
 * Every function below says "takes rmap_lock", "caller holds rmap_lock" or
 * "lock-free"; every field in rmap-priv.h names its writer and its lock.
 */
#ifndef SAMEPAGE_RMAP_RMAP_H
#define SAMEPAGE_RMAP_RMAP_H

#include <stdbool.h>
#include <stdint.h>
#include <gio/gio.h>

#include "rmap/guest-mem.h"

typedef struct SpCloneGroup SpCloneGroup;
typedef struct SpRmapVm SpRmapVm;
typedef struct SpCloneLayout SpCloneLayout;

typedef enum {
    SP_FRAME_NONE = 0, /* private memory: no shared frame */
    SP_FRAME_GROUP,    /* page `index` of group `group`'s file */
    SP_FRAME_POOL,     /* frame `index` of engine `pool` (in one of its pools) */
} SpFrameKind;

typedef struct SpFrameRef {
    SpFrameKind kind;
    SpCloneGroup *group; /* SP_FRAME_GROUP */
    const void *pool;    /* SP_FRAME_POOL: the SpEngine that owns the frame */
    uint64_t index;      /* page in the group file, or the engine's frame id */
} SpFrameRef;

/* One mapping found by a walk. */
typedef struct SpRmapHit {
    uint64_t vm_id; /* the VMM's VM id */
    const char *vm_name;
    uint64_t gfn;  /* guest frame number */
    uint8_t *host; /* its host address */
} SpRmapHit;

/* Return false to stop the walk. */
typedef bool (*SpRmapVisit)(const SpRmapHit *hit, void *opaque);

enum { SP_RMAP_EXACT = 1 };

/* --- groups (rmap/clone-group.c) --- */

/* A new group over memfd `fd` (taken over) of npages pages; the pages the
 * file holds are read from it (SEEK_DATA).  parent may be NULL.  The caller
 * holds the one reference returned.  Takes rmap_lock. */
SpCloneGroup *sp_clone_group_new(int fd, uint64_t npages, SpCloneGroup *parent);
/* The live group whose file has inode `ino`, with a reference the caller
 * drops, or NULL.  Takes rmap_lock.  (A restarted supervisor finds the
 * groups VM processes report by their files.) */
SpCloneGroup *sp_clone_group_find_ino(uint64_t ino);
/* A reference more, one less (the last frees the group).  Take rmap_lock. */
SpCloneGroup *sp_clone_group_ref(SpCloneGroup *g);
void sp_clone_group_unref(SpCloneGroup *g);
/* The group's file, -1 once its last layout went.  Lock-free: call it
 * while a layout of the caller's VM holds the file, so it stays open. */
int sp_clone_group_fd(const SpCloneGroup *g);
uint64_t sp_clone_group_id(const SpCloneGroup *g);  /* lock-free (immutable) */
uint64_t sp_clone_group_ino(const SpCloneGroup *g); /* lock-free (immutable): its file's inode */
/* Its members now (VMs whose layout has it, in this process's map).
 * Lock-free (an atomic copy): a count that may change the moment after. */
uint32_t sp_clone_group_members(const SpCloneGroup *g);

typedef struct SpCloneGroupStats {
    uint64_t id;
    uint64_t parent_id;    /* 0: none */
    uint32_t members;      /* VMs whose layout has this group */
    uint64_t pages;        /* pages the group's file holds */
    uint64_t mappings;     /* (member, page) pairs that map one of them now */
    uint64_t pages_shared; /* of its pages, those mapped by 2 or more members */
    uint64_t pages_saved;  /* mappings minus distinct pages mapped: copies avoided */
    bool file_open;        /* a layout still holds its file (else only a parent link) */
} SpCloneGroupStats;

/* Every group alive in the process, by id (`out` is g_free'd by the caller).
 * Members not synced in the last second are synced first (a pagemap read,
 * about 2 ms per GiB), so the figures follow VMs outside any engine too.
 * Takes rmap_lock (and, through the syncs, each engine's lock after it). */
uint32_t sp_rmap_group_stats(SpCloneGroupStats **out);

/* --- VMs in the reverse map (rmap/rmap.c) --- */

/* Open what the reverse map reads later (/proc/self/pagemap): a VM
 * process calls it before its sandbox forbids opening files. */
void sp_rmap_prepare(void);
/* A VM with no layout yet, in this process.  Its off bits live in a memfd
 * (sp_rmap_vm_off_fd) that the supervisor maps.  Lock-free (nothing
 * shared yet).  NULL with an error if the memfd cannot be made. */
SpRmapVm *sp_rmap_vm_new(uint64_t vm_id, const char *name, SpGuestMem *mem, GError **error);
int sp_rmap_vm_off_fd(const SpRmapVm *rv); /* not owned; -1 for a remote entry */
/* The supervisor's entry for a VM in another process: its off bits are the
 * memfd `off_fd` (not taken) written by that process.  Its layout is set
 * with sp_rmap_vm_adopt_layout(); syncs go through `sync` (a request to
 * the VM process); SP_RMAP_EXACT reads /proc/PID/pagemap at ram_base. */
typedef bool (*SpRmapSyncFn)(void *opaque, GError **error);
SpRmapVm *sp_rmap_vm_new_remote(uint64_t vm_id, const char *name, uint64_t npages, int off_fd,
                                GError **error);
void sp_rmap_vm_set_remote(SpRmapVm *rv, int pid, uint64_t ram_base, SpRmapSyncFn sync,
                           void *opaque);
/* Remote entry: its VM process now maps `layout` (taken over).  Takes
 * rmap_lock. */
void sp_rmap_vm_adopt_layout(SpRmapVm *rv, SpCloneLayout *layout);
bool sp_rmap_vm_has_layout(const SpRmapVm *rv); /* lock-free */
/* The layer of every page of rv's layout (npages bytes, borrowed), or NULL
 * without one.  Lock-free under the set_layout rule. */
const uint8_t *sp_rmap_vm_layers(const SpRmapVm *rv);
/* rv's layout, or NULL (borrowed; lock-free under the set_layout rule). */
const SpCloneLayout *sp_rmap_vm_layout(const SpRmapVm *rv);
void sp_rmap_vm_free(SpRmapVm *rv); /* leaves its groups, frees its layout; takes rmap_lock */
/* A VM gets its layout (the clone groups under its RAM) through the
 * clone-layer protocol of rmap/vm-layers.h, which keeps it. */
/* Page gfn left its layer for good (written, or remapped).  Lock-free
 * (atomic bits and counter). */
void sp_rmap_vm_note_off(SpRmapVm *rv, uint64_t gfn);
/* Copy the off bits (npages bits; all clear without a layout).  Lock-free. */
void sp_rmap_vm_copy_off(const SpRmapVm *rv, uint64_t *out);
/* Does page gfn still map its layer's frame, as far as the map knows?
 * Lock-free. */
bool sp_rmap_vm_maps_layer(const SpRmapVm *rv, uint64_t gfn);
/* Pages that map a group frame the file holds (clone-shared pages), as
 * far as the map knows (lock-free); _fresh syncs first if the last sync is
 * older than max_age_s (for statistics of VMs whose writes no engine
 * harvests; takes rmap_lock, and each engine's lock after it). */
uint64_t sp_rmap_vm_clone_shared(const SpRmapVm *rv);
uint64_t sp_rmap_vm_clone_shared_fresh(SpRmapVm *rv, double max_age_s);
/* The group of the VM's top layer, or NULL (borrowed).  Lock-free. */
SpCloneGroup *sp_rmap_vm_group(const SpRmapVm *rv);
/* The group whose file backs page gfn in the VM's layout (whether or not
 * the page still maps it), or NULL without a layout (borrowed).  Lock-free. */
SpCloneGroup *sp_rmap_vm_layer_group(const SpRmapVm *rv, uint64_t gfn);
/* The groups of the VM's layout, oldest first (borrowed; at most max).
 * Lock-free. */
guint sp_rmap_vm_groups(const SpRmapVm *rv, SpCloneGroup **out, guint max);
/* Is g one of the layers of the VM's layout?  Lock-free. */
bool sp_rmap_vm_in_group(const SpRmapVm *rv, const SpCloneGroup *g);
/* Does the group's file hold page `off` (it did when the group was made)?
 * Lock-free (immutable), as is its size. */
bool sp_clone_group_holds(const SpCloneGroup *g, uint64_t off);
uint64_t sp_clone_group_npages(const SpCloneGroup *g);

/* Read the VM's pagemap once: mark every private page off, and hand the
 * private-page bitmap to the pool walkers so the engine settles merged
 * pages that were copied on write.  false if pagemap cannot be read.
 * Takes rmap_lock (and each engine's lock after it, through `settle`). */
bool sp_rmap_sync(SpRmapVm *rv, GError **error);

/* --- walks --- */

/* Which frame backs (rv, gfn) now (as far as the map knows).  Takes
 * rmap_lock (and each engine's lock after it, through `lookup`). */
SpFrameRef sp_rmap_lookup(SpRmapVm *rv, uint64_t gfn);
/* Visit every (VM, gfn) that maps `f`; returns the number visited.  Takes
 * rmap_lock (and the owning engine's lock after it, through the walkers);
 * `visit` runs with them held, so it must not call into the rmap or the
 * engine. */
uint64_t sp_rmap_walk(const SpFrameRef *f, unsigned flags, SpRmapVisit visit, void *opaque);

/* Pool walkers: an engine registers one per pool.  `walk` visits the
 * mappers of pool frame `index`; `walk_group` visits the pages the engine
 * merged onto page `off` of group `g` (dedup onto a clone group's frame;
 * the group's members are the reverse map's own business); `lookup` says
 * which engine-merged frame (vm_id, gfn) maps (false: none); `settle` gets
 * a VM's private pages from a sync.  A walk stops when `visit` returns
 * false; *stopped then tells the caller.  Every callback: caller holds
 * rmap_lock; the callback takes its engine's lock. */
typedef struct SpRmapPoolOps {
    uint64_t (*walk)(void *opaque, uint64_t index, unsigned flags, SpRmapVisit visit,
                     void *visit_opaque, bool *stopped);
    uint64_t (*walk_group)(void *opaque, const SpCloneGroup *g, uint64_t off, unsigned flags,
                           SpRmapVisit visit, void *visit_opaque, bool *stopped);
    bool (*lookup)(void *opaque, uint64_t vm_id, uint64_t gfn, SpFrameRef *out);
    void (*settle)(void *opaque, uint64_t vm_id, const uint64_t *private_bits, uint64_t npages);
} SpRmapPoolOps;
/* Take rmap_lock: once unregister returns, no walk reaches the pool. */
void sp_rmap_register_pool(const void *pool, const SpRmapPoolOps *ops, void *opaque);
void sp_rmap_unregister_pool(const void *pool);

#endif
