/* SPDX-License-Identifier: MIT */
/*
 * engine-priv.h - the engine's insides (engine.c, scan.c, merge.c).
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
 * Locking: eng->lock protects everything here except SpEngineVm.vmm_dirty
 * (atomic bit operations) and the published stats (eng->stats, under
 * eng->lock too, copied out by readers).  The engine thread holds eng->lock
 * while it works on a batch of pages and drops it to sleep between
 * batches.  Lock order with the reverse map's rmap_lock: rmap/rmap.h
 * ("Locking").
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

typedef struct ShFrame {
    uint32_t hash;  /* content hash (32 bits of XXH3) */
    uint32_t refs;  /* MERGED pages mapping it; 0 = free */
    uint32_t group; /* sharing group it belongs to */
    uint32_t next;  /* next frame with the same key, or NO_FRAME */
} ShFrame;

/* Group frames (group-frames.c): frame ids with GF_BIT set. */
#define GF_BIT (1u << 31)
static inline bool sh_is_gframe(uint32_t fid)
{
    return fid != NO_FRAME && (fid & GF_BIT);
}

typedef struct ShGroupRec {
    SpCloneGroup *grp; /* one reference */
    int fd;            /* a duplicate of the group's file descriptor */
    uint8_t *view;     /* read-only shared view of the file */
    uint64_t npages;
    uint32_t *gf;  /* per page: group frame index + 1; 0 = not yet */
    uint64_t refs; /* the engine's merges onto its frames */
    struct ShGroupRec *next_dead;
} ShGroupRec;

typedef struct ShGFrame {
    ShFrame f;
    ShGroupRec *rec; /* NULL: a free slot */
    uint64_t off;    /* page of the group's file */
} ShGFrame;

struct SpEngineVm {
    SpEngine *eng;
    uint64_t id; /* the VMM's VM id */
    char *name;
    SpGuestMem *mem;     /* its RAM */
    int kvm_fd;          /* KVM VM fd, -1: no dirty log (every page volatile-free) */
    uint32_t slot;       /* memslot with dirty logging */
    uint64_t npages;     /* guest pages */
    uint64_t first, end; /* gfns [first, end) take part in sharing */
    uint64_t *page;      /* state per guest page (see above) */
    uint32_t *hash;      /* content hash per page, valid with PG_HASHED */
    uint64_t *dirty;     /* KVM_GET_DIRTY_LOG buffer, one bit per page */
    uint64_t *vmm_dirty; /* pages written by VMM threads (atomic bits) */
    int pagemap_fd;      /* /proc/self/pagemap, to tell CoW'd pages from merged ones */
    uint32_t group;      /* sharing group (domains allowed to share) */
    uint32_t slot_index; /* index in eng->vm_slots */
    char *domain;        /* sharing domain name */
    bool file_backed;    /* RAM maps a clone group's file (see SpEngineVmDesc) */
    SpRmapVm *rmap;      /* its reverse-map entry, or NULL */
    /* counters (engine lock) */
    uint64_t merged;       /* pages in MERGED */
    uint64_t zero;         /* pages in ZERO */
    uint64_t touched;      /* pages with PG_TOUCHED */
    uint64_t volatile_now; /* pages VOLATILE in the current scan */
};

struct SpEngine {
    GMutex lock;
    GCond cond; /* scans completed, knob changes, quit */
    GThread *thread;
    pthread_t tid; /* the engine thread, for its CPU clock */
    volatile int tid_valid;
    bool quit;
    SpEngineKnobs knobs;
    bool unmerged; /* run=2 finished its unmerge */
    SpFramePool pool;
    GArray *frames;        /* ShFrame, indexed by frame number */
    GPtrArray *mappers;    /* per frame: GArray of uint64 (slot << 40 | gfn), or NULL */
    GArray *gframes;       /* ShGFrame, by group frame index */
    GArray *gframe_free;   /* uint32 free indices of gframes */
    GPtrArray *gmappers;   /* per group frame: like mappers */
    GHashTable *grecs;     /* SpCloneGroup * -> ShGroupRec * */
    ShGroupRec *grec_dead; /* retired, to finish without the lock */
    U64Map stable;         /* key -> first frame */
    U64Map unstable;       /* key -> vm slot << 40 | gfn */
    SpEngineVm **vm_slots; /* by slot_index; NULL = free */
    uint32_t nslots;
    GHashTable *domain_ids; /* domain name -> id + 1 */
    GArray *domain_parent;  /* union-find over domain ids (uint32) */
    uint64_t max_map_count; /* the kernel's limit, after raising it */
    bool map_limit_warned;  /* the mapping-limit warning was logged once */
    uint32_t zero_hash;     /* hash of an all-zero page */
    uint32_t test_delay_us; /* tests: merge window held open this long */
    uint64_t scan_work;     /* pages written, hashed or remapped in this scan */
    SpEngineStats stats;    /* live counters */
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
