/* SPDX-License-Identifier: MIT */
/*
 * engine-priv.h - the engine's insides (engine.c, scan.c, merge.c,
 * counters.c, group-frames.c, mappers.c).
 *
 * Page states (SpEngineVm.page[gfn], low bits):
 *   ANON    private anonymous memory, the state every page starts in
 *   MERGED  mapped MAP_PRIVATE from pool frame F and not written since:
 *           reads hit the shared frame (F is in the high bits)
 *   COWED   was MERGED, then written: the kernel copied it, so it is
 *           private again, but its mapping is still the file mapping of F
 *           (F kept only to count mappings); it holds no frame reference
 *   ZERO    dropped to the zero page (no memory) and not written since
 * plus flags: TOUCHED (ever written, by the guest or the VMM), HASHED (the
 * hash word is the current content's), VOLATILE (written since the
 * previous scan, so not a merge candidate this scan).
 *
 * Frames: ShFrame per pool frame; refs = MERGED pages mapping it, and
 * mappers[frame] lists them (vm slot << 40 | gfn), KSM's rmap_items: the
 * reverse map walks a pool frame through it (mappers.c, rmap/rmap.h).  A frame
 * is in the stable index (key: sharing group << 32 | hash) from the merge
 * that created it until its refs drop to 0, when it is freed (hole punched).
 * Frames with equal keys are chained through `next`.
 *
 * The unstable table maps key -> (vm slot << 40 | gfn) of a stable page
 * seen this scan with no match yet; it is emptied at every scan start, as
 * KSM's unstable tree is.  Its entries are hints: every use re-checks the
 * page's state and compares bytes.
 *
 * Locking: eng->lock protects everything here unless a field's comment
 * says otherwise; every field names its writer and its lock.  Readers copy
 * the published stats out under the lock.  The engine thread holds
 * eng->lock while it works on a batch of pages and drops it to sleep
 * between batches.  Lock order with the reverse map's rmap_lock:
 * rmap/rmap.h ("Locking").
 */
#ifndef SAMEPAGE_SHARING_ENGINE_PRIV_H
#define SAMEPAGE_SHARING_ENGINE_PRIV_H

#include <pthread.h>

#include "rmap/clone-layout.h"
#include "rmap/frame-pool.h"
#include "sharing/engine.h"
#include "sharing/u64map.h"

enum {
    PG_ANON = 0,
    PG_MERGED = 1,
    PG_COWED = 2,
    PG_ZERO = 3,
    PG_KIND_MASK = 3,
    PG_TOUCHED = 1 << 2,
    PG_HASHED = 1 << 3,
    PG_VOLATILE = 1 << 4,
};
#define PG_FRAME_SHIFT 8
#define PG_KIND(p)     ((unsigned)((p)&PG_KIND_MASK))
#define PG_FRAME(p)    ((uint32_t)((p) >> PG_FRAME_SHIFT))
#define PG_MAKE(kind, frame, flags)                                                                \
    ((uint64_t)(kind) | (uint64_t)(flags) | ((uint64_t)(frame) << PG_FRAME_SHIFT))
#define NO_FRAME     UINT32_MAX
#define MAX_VM_SLOTS 65535

/* Every field's comment says "writer; lock: meaning".  "immutable": set
 * before the struct is shared (sp_engine_new, sp_engine_attach before the
 * VM takes its slot, grec_new before the record is listed) and never
 * changed after; "scanner": the engine thread. */

/* A pool frame, or the frame part of a group frame (ShGFrame). */
typedef struct ShFrame {
    uint32_t hash;  /* made by new_frame/sh_gframe_index; eng->lock: 32 bits of XXH3 */
    uint32_t refs;  /* counters.c only; eng->lock: MERGED pages mapping it; 0 = free */
    uint32_t group; /* made by new_frame/sh_gframe_index; eng->lock: its sharing group */
    uint32_t next;  /* sh_frame_link/unlink; eng->lock: next with the same key, or NO_FRAME */
} ShFrame;

/* Group frames (group-frames.c): frame ids with GF_BIT set. */
#define GF_BIT (1u << 31)
static inline bool sh_is_gframe(uint32_t fid)
{
    return fid != NO_FRAME && (fid & GF_BIT);
}

typedef struct ShGroupRec {
    SpCloneGroup *grp; /* grec_new; immutable: one reference (dropped by grec_finish) */
    int fd;            /* grec_new; immutable: a duplicate of the group's file descriptor */
    uint8_t *view;     /* grec_new; immutable: read-only shared view of the file */
    uint64_t npages;   /* grec_new; immutable */
    uint32_t *gf;      /* sh_gframe_index; eng->lock: per page, group frame index + 1; 0: not yet */
    uint64_t refs;     /* counters.c (sh_gframe_rec_get/put); eng->lock: merges onto its frames */
    /* grec_maybe_retire; eng->lock, then the reaper's alone: next retired record */
    struct ShGroupRec *next_dead;
} ShGroupRec;

typedef struct ShGFrame {
    ShFrame f;       /* as a pool frame's */
    ShGroupRec *rec; /* sh_gframe_index, grec_maybe_retire; eng->lock: NULL = a free slot */
    uint64_t off;    /* sh_gframe_index; eng->lock: page of the group's file */
} ShGFrame;

struct SpEngineVm {
    SpEngine *eng;       /* attach; immutable */
    uint64_t id;         /* attach; immutable: the VMM's VM id */
    char *name;          /* attach; immutable */
    SpGuestMem *mem;     /* attach; immutable: its RAM */
    int kvm_fd;          /* attach; immutable: KVM VM fd, -1: no dirty log */
    uint32_t slot;       /* attach; immutable: memslot with dirty logging */
    uint64_t npages;     /* attach; immutable: guest pages */
    uint64_t first, end; /* attach, sp_engine_set_range; eng->lock: gfns that take part */
    uint64_t *page;      /* attach, scanner, counters.c, settle; eng->lock: state per page */
    uint32_t *hash;      /* scanner; eng->lock: content hash per page, valid with PG_HASHED */
    uint64_t *dirty;     /* scanner (harvest); eng->lock: KVM_GET_DIRTY_LOG buffer */
    /* sp_engine_mark_dirty (any thread) sets bits, the harvest takes them;
     * atomic, no lock: pages written by VMM threads */
    uint64_t *vmm_dirty;
    int pagemap_fd;      /* attach; immutable: /proc/self/pagemap, CoW'd or still merged? */
    uint32_t group;      /* attach, allow_domains; eng->lock: sharing group (domains) */
    uint32_t slot_index; /* attach; eng->lock: index in eng->vm_slots */
    char *domain;        /* attach; immutable: sharing domain name */
    bool file_backed;    /* attach; immutable: RAM maps a clone group's file (SpEngineVmDesc) */
    SpRmapVm *rmap;      /* attach; immutable: its reverse-map entry, or NULL */
    /* counters */
    uint64_t merged;       /* counters.c; eng->lock: pages in MERGED */
    uint64_t zero;         /* counters.c; eng->lock: pages in ZERO */
    uint64_t touched;      /* counters.c (sh_page_touch); eng->lock: pages with PG_TOUCHED */
    uint64_t volatile_now; /* scanner; eng->lock: pages VOLATILE in the current scan */
};

struct SpEngine {
    GMutex lock;            /* the engine's lock (lock order: rmap/rmap.h, "Locking") */
    GCond cond;             /* with lock: scans completed, knob changes, attach, quit */
    GThread *thread;        /* sp_engine_new; immutable until joined by sp_engine_free */
    pthread_t tid;          /* scanner, before tid_valid; read once tid_valid is set */
    volatile int tid_valid; /* scanner at start; atomic (release/acquire): tid is set */
    bool quit;              /* sp_engine_free; eng->lock */
    SpEngineKnobs knobs;    /* sp_engine_set_knobs; eng->lock */
    bool unmerged;          /* scanner (run=2 done), set_knobs (other run); eng->lock */
    SpFramePool pool;       /* new_frame (scanner), counters.c (frees); eng->lock */
    GArray *frames;         /* scanner; eng->lock: ShFrame, indexed by frame number */
    GPtrArray *mappers;     /* counters.c; eng->lock: per frame, GArray of slot << 40 | gfn */
    GArray *gframes;        /* scanner, detach (retire); eng->lock: ShGFrame by index */
    GArray *gframe_free;    /* sh_gframe_index, grec_maybe_retire; eng->lock: free indices */
    GPtrArray *gmappers;    /* counters.c; eng->lock: per group frame, like mappers */
    GHashTable *grecs;      /* sh_grecs_prepare, retire; eng->lock: SpCloneGroup * -> rec */
    ShGroupRec *grec_dead;  /* retire, sh_grecs_reap; eng->lock: to finish without it */
    U64Map stable;          /* sh_frame_link/unlink; eng->lock: key -> first frame */
    U64Map unstable;        /* scanner; eng->lock: key -> vm slot << 40 | gfn */
    SpEngineVm **vm_slots;  /* attach, detach; eng->lock: by slot_index; NULL = free */
    uint32_t nslots;        /* attach; eng->lock: length of vm_slots */
    GHashTable *domain_ids; /* attach, allow_domains; eng->lock: domain name -> id + 1 */
    GArray *domain_parent;  /* attach, allow_domains; eng->lock: union-find over domain ids */
    uint64_t max_map_count; /* sp_engine_new, attach; eng->lock: the kernel's limit, raised */
    bool map_limit_warned;  /* scanner (merge.c); eng->lock: mapping-limit warning logged */
    uint32_t zero_hash;     /* sp_engine_new; immutable: hash of an all-zero page */
    uint32_t test_delay_us; /* sp_engine_set_test_delay; eng->lock: merge window held open */
    uint64_t scan_work;     /* scanner, settle; eng->lock: pages written, hashed or remapped */
    /* counters.c (state counters), scanner (events), settle; eng->lock:
     * the live counters, copied out by sp_engine_get_stats */
    SpEngineStats stats;
};

/* merge.c - the userfaultfd protocol; engine lock held. */
bool sh_merge_page(SpEngine *eng, SpEngineVm *vm, uint64_t gfn, uint32_t frame);
bool sh_zero_page(SpEngine *eng, SpEngineVm *vm, uint64_t gfn);
bool sh_unmerge_page(SpEngine *eng, SpEngineVm *vm, uint64_t gfn);
/* Is the page at gfn still the pool frame's page (not copied on write)? */
bool sh_page_is_file(SpEngineVm *vm, uint64_t gfn, bool *present);

/* scan.c */
void sh_scan_begin(SpEngine *eng);
void sh_scan_page(SpEngine *eng, SpEngineVm *vm, uint64_t gfn);
/* Apply one write to a page's state (as a harvested dirty bit does). */
void sh_page_written(SpEngine *eng, SpEngineVm *vm, uint64_t gfn);

/* counters.c - the only code that changes a page's kind to or from MERGED
 * or ZERO, a frame's refs, or the counters that follow them.  Flags are
 * kept. */
/* An ANON or COWED page now maps frame fid: MERGED (and HASHED). */
void sh_page_set_merged(SpEngine *eng, SpEngineVm *vm, uint64_t gfn, uint32_t fid);
/* A MERGED page no longer maps its frame (copied on write, or about to be
 * remapped): COWED, the frame number kept. */
void sh_page_clear_merged(SpEngine *eng, SpEngineVm *vm, uint64_t gfn);
/* An ANON or COWED page was dropped: ZERO. */
void sh_page_set_zero(SpEngine *eng, SpEngineVm *vm, uint64_t gfn);
/* A ZERO page was written (or unmerged): ANON. */
void sh_page_clear_zero(SpEngine *eng, SpEngineVm *vm, uint64_t gfn);
/* The page was written at least once (TOUCHED). */
void sh_page_touch(SpEngineVm *vm, uint64_t gfn);
/* Recompute every counter; g_critical for each mismatch, returns their number. */
unsigned sh_counters_recount(SpEngine *eng);

/* group-frames.c */
ShFrame *sh_frame(SpEngine *eng, uint32_t fid);
const uint8_t *sh_frame_ptr(SpEngine *eng, uint32_t fid);
int sh_frame_fd(SpEngine *eng, uint32_t fid, off_t *off);
void sh_frame_link(SpEngine *eng, uint32_t fid);      /* into the stable index */
void sh_frame_unlink(SpEngine *eng, uint32_t fid);    /* from the stable index */
void sh_grecs_prepare(SpEngine *eng, SpEngineVm *vm); /* WITHOUT eng->lock */
void sh_grecs_collect(SpEngine *eng);                 /* retire unneeded records */
void sh_grecs_reap(SpEngine *eng);                    /* WITHOUT eng->lock */
void sh_grecs_free(SpEngine *eng);
void sh_gframe_index(SpEngine *eng, SpEngineVm *vm, uint64_t gfn); /* an untouched clone page */
void sh_gframe_rec_get(SpEngine *eng, uint32_t fid); /* counters.c: a merge onto fid */
void sh_gframe_rec_put(SpEngine *eng, uint32_t fid); /* counters.c: one gone; may retire */
bool sh_gframe_ref(SpEngine *eng, uint32_t fid, SpFrameRef *out);
uint32_t sh_gframe_find(SpEngine *eng, const SpCloneGroup *grp, uint64_t off);
uint64_t sh_gframes_bytes(SpEngine *eng);

/* mappers.c - who maps a pool frame; the engine's side of the reverse map */
void sh_mapper_add(SpEngine *eng, uint32_t frame, SpEngineVm *vm, uint64_t gfn);
void sh_mapper_remove(SpEngine *eng, uint32_t frame, SpEngineVm *vm, uint64_t gfn);
uint32_t sh_mapper_count(SpEngine *eng, uint32_t frame);
void sh_mappers_free(SpEngine *eng);
void sh_rmap_register(SpEngine *eng);
void sh_rmap_unregister(SpEngine *eng);
void sh_unmerge_all(SpEngine *eng);

static inline uint64_t sh_key(uint32_t group, uint32_t hash)
{
    return ((uint64_t)(group + 1) << 32) | hash; /* never 0 */
}

#endif
