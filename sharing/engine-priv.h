/* SPDX-License-Identifier: MIT */
/*
 * engine-priv.h - the index's insides (engine.c, scan.c, exchange.c,
 * counters.c, group-frames.c, mappers.c, pools.c).  The page states live in
 * each VM process (sharing/agent-priv.h); the index keeps what is shared.
 *
 * Frames.  A frame id (fid) names either a *pool frame* (a page of a share
 * set's pool memfd: ShFrame in eng->frames, with its pool and offset) or,
 * with GF_BIT set, a *group frame* (a page of a clone group's file:
 * ShGFrame in eng->gframes).  refs = MERGED pages mapping the frame;
 * mappers[fid] lists them (vm slot, gfn: 4-byte words while they fit,
 * mappers.c), KSM's rmap_items, which is
 * how the reverse map walks a frame (mappers.c, rmap/rmap.h); and each VM's
 * fid_of[gfn] says which frame its page maps (NO_FRAME: none).  A pool frame
 * is in the stable index (key: share set << 32 | hash) from the merges that
 * made it until its refs drop to 0, when it is freed (hole punched); frames
 * with equal keys (or, rarely, keys whose 32-bit tags collide: index-map.h)
 * are chained through `next`, and a walker takes a frame as its key's only
 * if the frame's hash is the one it looks for.
 *
 * The unstable table maps key -> a 32-bit reference (vm slot <<
 * cand_gfn_bits | gfn, scan.c) of a candidate page seen this pass with no
 * match yet; it is emptied at every pass start, as KSM's unstable tree is.
 * Its entries are hints: the VM compares bytes before any merge (which is
 * what lets index-map.h keep a 32-bit tag instead of the key).
 * cand_gfn_bits fits the largest VM attached so far; when a larger one
 * comes it grows and the table is emptied; a VM whose slot does not fit in
 * the other bits puts no page in the table (its pages still match the
 * table's and the stable index's: see scan.c).
 *
 * Share sets and pools: VMs whose domains may share (--allow-share) form a
 * share set (union-find over domain ids; a VM's `group`); each share set
 * has a pool, created with its first frame, and every VM of the set maps it
 * as its space 0.  Group files a VM merges onto get further space ids.
 *
 * Every field's comment says "writer; lock: meaning" ("immutable": set
 * before the struct is shared).  eng->lock protects everything here; the
 * engine thread holds it while it exchanges with a VM process and while it
 * works on a batch, and drops it to sleep.  Lock order with the reverse
 * map's rmap_lock: rmap/rmap.h ("Locking").  A VM's memory channel is used
 * only with eng->lock held.
 */
#ifndef SAMEPAGE_SHARING_ENGINE_PRIV_H
#define SAMEPAGE_SHARING_ENGINE_PRIV_H

#include <pthread.h>
#include <xxhash.h>

#include "rmap/clone-layout.h"
#include "rmap/frame-pool.h"
#include "sharing/index-map.h"
#include "sharing/engine.h"
#include "sharing/proto.h"
#include "sharing/vec.h"

#define NO_FRAME     UINT32_MAX
#define MAX_VM_SLOTS 65535
#define NO_SPACE     UINT32_MAX

typedef struct ShMapLists ShMapLists; /* mappers.c */

/* 20 bytes: the share set a pool frame belongs to is its pool's
 * (sh_frame_group). */
typedef struct ShFrame {
    uint32_t hash; /* new_frame; immutable: content hash (32 bits of XXH3) */
    uint32_t refs; /* counters.c; eng->lock: MERGED pages mapping it; 0 = free */
    uint32_t next; /* sh_frame_link/unlink; eng->lock: next frame of the key, or NO_FRAME */
    uint32_t pool; /* new_frame; immutable: index in eng->pools (pool frames) */
    uint32_t off;  /* new_frame; immutable: frame offset in that pool */
} ShFrame;

/* Group frames (group-frames.c): frame ids with GF_BIT set. */
#define GF_BIT           (1u << 31)
#define GF_NOT_INDEXABLE UINT32_MAX /* ShGroupRec.gf[] value: a zero page, never a frame */
static inline bool sh_is_gframe(uint32_t fid)
{
    return fid != NO_FRAME && (fid & GF_BIT);
}

typedef struct ShPool {
    uint32_t group;     /* pools.c; immutable: the share set it serves */
    int node;           /* pools.c; immutable: the node its frames live on, -1: any */
    SpFramePool fp;     /* pools.c, counters.c (frees); eng->lock: the memfd and its view */
    uint64_t ino;       /* pools.c; immutable: the memfd's inode (re-attach) */
    ShVec *fid_of_off;  /* new_frame, counters.c; eng->lock: uint32 fid + 1 per offset */
    bool adopted;       /* sh_pool_adopt, vm_remove, release_unused; eng->lock: a VM process
                         * the index does not track (not re-attached yet, or let go by
                         * sp_engine_forget) may map its frames, so one without
                         * references stays */
    uint64_t kept_lost; /* release_unused; eng->lock: offsets in use without a frame: holes a
                         * take-over could not fill, which VMs may map (swap-adopt.c) */
} ShPool;

typedef struct ShGroupRec {
    SpCloneGroup *grp; /* grec_new; immutable: one reference (dropped by grec_finish) */
    int fd;            /* grec_new; immutable: a read-only descriptor of the group's file */
    uint8_t *view;     /* grec_new; immutable: read-only shared view of the file */
    uint64_t npages;   /* grec_new; immutable */
    uint64_t ino;      /* grec_new; immutable: the file's inode (re-attach) */
    uint32_t *gf;      /* sh_gframe_index; eng->lock: per page, group frame index + 1; 0: not yet */
    uint64_t refs;     /* counters.c (sh_gframe_rec_get/put); eng->lock: merges onto its frames */
    uint64_t cursor;   /* sh_gframes_index_some; eng->lock: next page to index */
    uint64_t swap_hand; /* swap-layers.c; eng->lock: the eviction clock over its pages */
    uint64_t *gone;     /* group-giveback.c; eng->lock: pages punched out of the file (bits) */
    uint64_t give_hand; /* group-giveback.c; eng->lock: the next page to look at */
    bool give_failed;   /* group-giveback.c; eng->lock: the file refused a punch: no more */
    /* grec_maybe_retire; eng->lock, then the reaper's alone: next retired record */
    struct ShGroupRec *next_dead;
} ShGroupRec;

typedef struct ShGFrame {
    ShFrame f;       /* as a pool frame's (pool, off unused) */
    uint32_t group;  /* sh_gframe_index; eng->lock: the share set it was indexed for */
    ShGroupRec *rec; /* sh_gframe_index, grec_maybe_retire; eng->lock: NULL = a free slot */
    uint64_t off;    /* sh_gframe_index; eng->lock: page of the group's file */
} ShGFrame;

/* What a VM's space id stands for, in the index. */
typedef struct ShSpace {
    uint32_t pool;   /* index in eng->pools, or NO_SPACE */
    ShGroupRec *rec; /* or this group's record (NULL) */
} ShSpace;

struct SpEngineVm {
    SpEngine *eng;       /* attach; immutable */
    uint64_t id;         /* attach; immutable: the supervisor's VM id */
    char *name;          /* attach; immutable */
    int channel;         /* attach; immutable: the memory channel (not owned) */
    int pid;             /* attach; immutable: the VM process (pagemap for SP_RMAP_EXACT) */
    uint64_t ram_base;   /* attach; immutable: its RAM's address in that process */
    uint64_t npages;     /* attach; immutable: guest pages */
    uint64_t first, end; /* attach, sp_engine_set_range; eng->lock: gfns that take part */
    uint32_t group;      /* attach; eng->lock: share set (domains) */
    uint32_t slot_index; /* attach; eng->lock: index in eng->vm_slots */
    char *domain;        /* attach; immutable: sharing domain name */
    SpRmapVm *rmap;      /* attach; immutable: its reverse-map entry, or NULL */
    bool broken;         /* exchange.c; eng->lock: its channel failed; no more requests */
    bool going;          /* sp_engine_vm_going; atomic: its process is being killed */
    uint32_t stale_seq;  /* exchange.c; eng->lock: an M_STATS answered too late, to drop */
    bool swap_handed;    /* swap-adopt.c; eng->lock: it holds the swap store's descriptors */
    bool drops_zero;     /* swap-adopt.c, at the hand-over; then immutable: its agent drops the
                          * zero pages it evicts itself (SP_PROTO_AGENT_DROPS_ZERO) */
    struct ShOldStore *swap_old; /* swap-adopt.c; eng->lock: the store it kept, taken over,
                                  * until its pages are (sh_swap_vm_attach) */
    uint32_t hold;               /* sp_engine_vm_hold; eng->lock: the clone code owns it now */
    uint32_t *fid_of; /* counters.c; eng->lock: per page, the frame it maps or NO_FRAME */
    GArray *spaces;   /* scan.c, reattach; eng->lock: ShSpace by the VM's space id */
    uint64_t cursor;  /* scan.c; eng->lock: next gfn of the current pass */
    /* counters: the index's own (counters.c), and the agent's last report */
    uint64_t merged;               /* counters.c; eng->lock: pages whose fid_of is a frame */
    uint64_t zero;                 /* exchange.c; eng->lock: the agent's zero pages, last said */
    uint64_t volatile_now;         /* scan.c; eng->lock: volatile pages counted this pass */
    uint64_t map_est;              /* scan.c; eng->lock: its mappings at most (the agent's count
                                    * at the pass's start + what merges added since) */
    uint64_t map_skipped_now;      /* scan.c; eng->lock: merges the budget refused this pass */
    uint64_t map_skipped;          /* scan.c; eng->lock: the same, its last full pass */
    uint64_t *map_refused;         /* scan.c; eng->lock: bits by gfn, refused by the budget since
                                    * the VM last had room (not matched again meanwhile) */
    SpProtoVmStats agent;          /* sp_engine_get_vm_stats; eng->lock: the agent's last stats */
    SpProtoVmStatsMore agent_more; /* ... their second part (0: an older VM process) */
    gint64 agent_us;       /* sp_engine_get_vm_stats; eng->lock: when they came (monotonic) */
    uint32_t agent_tid;    /* advisor.c; eng->lock: its agent thread (M_KNOBS), 0 unknown */
    int agent_stat_fd;     /* advisor.c; eng->lock: that thread's /proc schedstat, or -1 */
    uint64_t agent_cpu_ns; /* advisor.c; eng->lock: its CPU time at the last read */
    SpEngineVmStats pub;   /* engine.c; eng->pub_lock: its figures as last read */
};

/* advisor.c: scan_nice and advisor_mode's pacing; the scanner's, eng->lock */
typedef struct ShAdvisor {
    gint64 pass_start_us;   /* the current pass began (monotonic) */
    uint64_t cpu_start_ns;  /* engine thread + agents' CPU then */
    uint64_t pass_pages;    /* pages the pass covers */
    uint64_t agents_cpu_ns; /* the agents' CPU, summed from their schedstat reads */
    uint32_t batch;         /* advisor_mode=1: pages per batch it chose */
    uint32_t sleep_ms;      /* advisor_mode=1: its last pause */
    uint32_t nice_tried;    /* scan_nice last applied to the engine thread */
} ShAdvisor;

struct SpEngine {
    GMutex lock;            /* the engine's lock (lock order: rmap/rmap.h, "Locking") */
    GCond cond;             /* with lock: scans completed, knob changes, attach, quit, holds */
    gint lock_wanted;       /* atomic: threads in sh_engine_lock, waiting for lock */
    uint64_t batches;       /* atomic: batches the scanner finished (sp_engine_batches) */
    uint64_t let_in_cut;    /* atomic: let_in's ended at LET_IN_MAX_US, a waiter not in */
    uint64_t fig_waited;    /* atomic: most batches a figures reader waited, less the cut */
    GThread *thread;        /* sp_engine_new; immutable until joined by sp_engine_free */
    pthread_t tid;          /* scanner, before tid_valid; read once tid_valid is set */
    volatile int tid_valid; /* scanner at start; atomic (release/acquire): tid is set */
    bool quit;              /* sp_engine_free; eng->lock */
    SpEngineKnobs knobs;    /* sp_engine_set_knobs; eng->lock */
    bool unmerged;          /* scanner (run=2 done), set_knobs (other run); eng->lock */
    GPtrArray *pools;       /* pools.c; eng->lock: ShPool *, by index */
    ShVec *frames;          /* scan.c, counters.c; eng->lock: ShFrame by pool fid */
    GArray *frame_free;     /* counters.c, new_frame; eng->lock: free pool fids (uint32) */
    ShMapLists *mappers;    /* counters.c; eng->lock: per frame, its mappers (mappers.c) */
    ShVec *gframes;         /* scanner, detach (retire); eng->lock: ShGFrame by index */
    GArray *gframe_free;    /* sh_gframe_index, grec_maybe_retire; eng->lock: free indices */
    ShMapLists *gmappers;   /* counters.c; eng->lock: per group frame, like mappers */
    GHashTable *grecs;      /* sh_grecs_prepare, retire; eng->lock: SpCloneGroup * -> rec */
    ShGroupRec *grec_dead;  /* retire, sh_grecs_reap; eng->lock: to finish without it */
    ShIndexMap stable;      /* sh_frame_link/unlink; eng->lock: key -> first frame */
    ShIndexMap unstable;    /* scanner; eng->lock: key -> slot << cand_gfn_bits | gfn */
    uint32_t cand_gfn_bits; /* attach; eng->lock: gfn bits of a candidate reference */
    SpEngineVm **vm_slots;  /* attach, detach; eng->lock: by slot_index; NULL = free */
    uint32_t nslots;        /* attach; eng->lock: length of vm_slots */
    GHashTable *domain_ids; /* attach, allow_domains; eng->lock: domain name -> id + 1 */
    GArray *domain_parent;  /* attach, allow_domains; eng->lock: union-find over domain ids */
    uint64_t max_map_count; /* sp_engine_new, attach; eng->lock: the kernel's limit, raised */
    uint32_t zero_hash;     /* sp_engine_new; immutable: hash of an all-zero page */
    uint32_t test_delay_us; /* sp_engine_set_test_delay; eng->lock: merge window held open */
    uint64_t scan_work;     /* scanner; eng->lock: pages written, hashed or remapped */
    uint64_t pass_skipped;  /* scanner; eng->lock: pages smart_scan left out of this pass */
    uint32_t holds;         /* sp_engine_vm_hold/release; eng->lock: VMs held by clones */
    /* sp_engine_layers_hold; eng->lock: clones under way, from before the
     * source saves its layer until the children started: no page of a
     * clone group's file leaves it (swap, giveback) */
    uint32_t layer_holds;
    struct ShSwap *swap; /* sp_engine_enable_swap; immutable once set: swap (swap-priv.h) */
    /* attach (a re-attach), vm_remove (let go), sp_engine_reattach_done; eng->lock: a VM
     * process the index does not track may map clone groups' files (group-giveback.c) */
    bool layers_unsure;
    bool vm_let_go; /* vm_remove; eng->lock: a VM was let go running (sp_engine_forget) */
    ShAdvisor adv;  /* advisor.c; eng->lock */
    /* counters.c (state counters), scanner (events); eng->lock: the live
     * counters, copied out by sp_engine_get_stats */
    SpEngineStats stats;
    /* exchange.c; atomic: exchanges (under lock) that have waited for their
     * answer for 2 s (SLOW_EXCHANGE_MS): a VM process that may not answer for up
     * to the exchange's bound.  Readers of figures do not wait for the
     * lock then, and get the figures as last read (engine.c). */
    gint slow_exchanges;
    /* for when the lock is not to be had, under pub_lock: the figures as
     * sp_engine_get_stats last read them, and the knobs as shown, kept
     * from the start and at every change (engine.c, publish_knobs) */
    GMutex pub_lock;
    SpEngineStats pub_stats;
    SpEngineKnobs pub_knobs;
};

/* eng->lock handed over fairly (engine.c, "Handing the lock over"): taken
 * by any thread but the scanner; and the pause between two batches of a
 * thread that holds it batch after batch (the scanner, an eviction). */
void sh_engine_lock(SpEngine *eng);
void sh_engine_let_in(SpEngine *eng);
/* For readers of figures: the lock as sh_engine_lock, unless an exchange
 * is slow (slow_exchanges) while it waits: false then, without it. */
bool sh_engine_lock_for_figures(SpEngine *eng);
/* eng->lock held: publish the node-wide figures for readers that cannot
 * have the lock (pub_stats), as at the end of every pass. */
void sh_publish_stats(SpEngine *eng);

/* exchange.c - requests on a VM's memory channel; eng->lock held.  A
 * failure marks the VM broken (logged once) and returns false: the engine
 * stops talking to it, and keeps its frame references until it detaches
 * (a live VM may still map them). */
bool sh_exchange(SpEngine *eng, SpEngineVm *vm, uint16_t type, const void *payload, uint32_t len,
                 const int *fds, uint32_t nfds, SpProtoMsg *reply);
/* The same in two halves, so that several VMs work on requests at once:
 * at most one request in flight per VM, and nothing else sent to that VM
 * until its answer is received. */
bool sh_send(SpEngine *eng, SpEngineVm *vm, uint16_t type, const void *payload, uint32_t len,
             const int *fds, uint32_t nfds, uint32_t *seq);
bool sh_recv(SpEngine *eng, SpEngineVm *vm, uint16_t type, uint32_t seq, SpProtoMsg *reply);
/* An exchange whose answer may come late (M_STATS: figures): no answer
 * within timeout_ms returns false and leaves the VM working; the late
 * answer is dropped when it comes, and until then vm->stale_seq says one
 * is owed (ask nothing of this kind meanwhile). */
bool sh_exchange_soft(SpEngine *eng, SpEngineVm *vm, uint16_t type, int timeout_ms,
                      SpProtoMsg *reply);
/* Apply a reply carrying SpProtoReleased: drop those references. */
bool sh_apply_released(SpEngine *eng, SpEngineVm *vm, SpProtoMsg *reply);
/* Tell the VM about a pool or group file (M_SPACE); its space id, or NO_SPACE. */
uint32_t sh_vm_space_pool(SpEngine *eng, SpEngineVm *vm, uint32_t pool);
uint32_t sh_vm_space_grec(SpEngine *eng, SpEngineVm *vm, ShGroupRec *rec);
/* The frame (space, off) of the VM names, or NO_FRAME. */
uint32_t sh_vm_frame_at(SpEngine *eng, SpEngineVm *vm, uint32_t space, uint32_t off);

/* advisor.c - scan_nice and advisor_mode's pacing (engine thread) */
void sh_advisor_pass_begin(SpEngine *eng); /* nice, the last pass's figures, the batch */
void sh_advisor_nice(SpEngine *eng);       /* scan_nice on the engine thread, if it changed */
void sh_advisor_agent_nice(SpEngine *eng, SpEngineVm *vm, uint32_t tid); /* M_KNOBS reply's */
void sh_advisor_vm_gone(SpEngine *eng, SpEngineVm *vm); /* count its agent's last CPU */
bool sh_advisor_pause(SpEngine *eng, bool pass_end); /* until the next batch (pass); false: stop */

/* scan.c - one pass */
void sh_scan_begin(SpEngine *eng);
/* One batch of vm: scan from its cursor, match, merge.  false: vm's pass is done. */
bool sh_scan_batch(SpEngine *eng, SpEngineVm *vm, uint32_t budget);
void sh_unmerge_all(SpEngine *eng);
/* Widen the unstable table's gfn bits for vm (emptying it) if they must. */
void sh_cand_fit(SpEngine *eng, SpEngineVm *vm);
/* Re-read a VM's merged pages (M_REPORT) and make the index agree. */
bool sh_vm_resync(SpEngine *eng, SpEngineVm *vm, bool adopt_spaces);

/* A cold page whose content is a frame's: merge it (swap-evict.c). */
typedef struct ShMergeWant {
    uint64_t gfn;
    uint32_t hash;
    uint32_t fid;
} ShMergeWant;
/* Merge vm's pages onto the frames named (ShMergeWant); how many merged. */
uint64_t sh_merge_onto(SpEngine *eng, SpEngineVm *vm, GArray *twins);

/* swap.c, swap-evict.c (swap-priv.h); no-ops while swap is off */
/* Is frame fid's page out?  A pool frame: atomics, any lock; a group
 * frame (merged onto, its layer page out): eng->lock. */
bool sh_swap_frame_is_out(SpEngine *eng, uint32_t fid);
/* swap-layers.c, eng->lock held: group frame `idx` is unindexed (its out
 * mark goes); at a pass's end, the marks of pages back in their files go. */
void sh_swap_gframe_forget(SpEngine *eng, uint32_t idx);
void sh_swap_gframes_settle(SpEngine *eng);
/* A clone begins (eng->lock held): every clone-layer page out comes back. */
void sh_swap_layers_hold(SpEngine *eng);
void sh_swap_frame_dropped(SpEngine *eng, uint32_t fid); /* its last reference went */
void sh_swap_vm_attach(SpEngine *eng, SpEngineVm *vm);   /* gives it a swap channel */
/* The VM leaves; keep_running: it goes on without us (all of it comes back first). */
void sh_swap_vm_detach(SpEngine *eng, SpEngineVm *vm, bool keep_running);
void sh_swap_free(SpEngine *eng); /* WITHOUT eng->lock */
void sh_swap_vm_figures(SpEngine *eng, SpEngineVm *vm, SpEngineVmStats *out);
typedef struct ShOldStore ShOldStore;
/* swap-adopt.c (docs/swap.md "After a crash"), eng->lock held: vm gets the
 * swap store's descriptors to keep, and gives back those it kept (a
 * re-attach: that store is taken over); */
void sh_swap_store_handover(SpEngine *eng, SpEngineVm *vm);
/* a pool or group file a re-attaching VM maps gets back its pages that were
 * out (before its frames are indexed from their content); */
void sh_swap_adopt_space(SpEngine *eng, int fd);
/* every VM came back (or not): the old stores go. */
void sh_swap_adopt_done(SpEngine *eng, bool all_attached);
/* Is page off of the pool or group file with inode ino a hole whose content
 * a take-over lost?  Nothing may read it then (a read would fill it with
 * zeros, for every mapper): not indexed, not evicted, its pool offset
 * never reused.  eng->lock may be held, not swap->lock. */
bool sh_swap_shared_lost(SpEngine *eng, uint64_t ino, uint64_t off);

/* engine.c: the agent's figures, fresh (a round trip) */
void sh_vm_refresh_stats(SpEngine *eng, SpEngineVm *vm);

/* pools.c */
/* The pool of share set `group`, made on first use; NO_SPACE on failure. */
/* The pool of a share set's frames on `node` (-1: any node), made with
 * its first frame; NO_SPACE if it cannot be made. */
uint32_t sh_pool_for(SpEngine *eng, uint32_t group, int node);
/* The node of frame fid's pool (-1: any; group frames are -1). */
int sh_frame_node(SpEngine *eng, uint32_t fid);
/* The pool whose memfd is the file of fd (re-attach), adopting it if new. */
uint32_t sh_pool_adopt(SpEngine *eng, int fd, uint32_t group);
/* A new pool frame id for (pool, off), with its hash and share set. */
uint32_t sh_frame_id_new(SpEngine *eng, uint32_t pool, uint32_t off, uint32_t hash);
/* A frame for offset `off` of an adopted pool (hashed from its content). */
uint32_t sh_pool_frame_adopt(SpEngine *eng, uint32_t pool, uint32_t off);
void sh_pools_free(SpEngine *eng);
uint64_t sh_pools_in_use(SpEngine *eng);
/* Punch out frames of adopted pools that no VM maps (after a re-attach). */
void sh_pools_release_unused(SpEngine *eng);

/* counters.c - the only code that changes a frame's refs, a VM's fid_of
 * and merged, or the counters that follow them. */
/* The VM's page gfn now maps frame fid (it merged). */
void sh_page_set_merged(SpEngine *eng, SpEngineVm *vm, uint64_t gfn, uint32_t fid);
/* It no longer does (copied on write, unmerged, or the VM went). */
void sh_page_clear_merged(SpEngine *eng, SpEngineVm *vm, uint64_t gfn);
/* The VM goes on without this engine: its reference goes, the frame stays
 * (even with no reference left: the VM still maps it). */
void sh_page_forget(SpEngine *eng, SpEngineVm *vm, uint64_t gfn);
/* The agent says it has `zero` zero pages now. */
void sh_vm_set_zero(SpEngine *eng, SpEngineVm *vm, uint64_t zero);
/* A new pool frame made of `refs` merges is published (or freed if none). */
void sh_frame_publish(SpEngine *eng, uint32_t fid);
/* Recompute every counter; g_critical for each mismatch, returns their number. */
unsigned sh_counters_recount(SpEngine *eng);

/* group-frames.c */
ShFrame *sh_frame(SpEngine *eng, uint32_t fid);
const uint8_t *sh_frame_ptr(SpEngine *eng, uint32_t fid);
void sh_frame_link(SpEngine *eng, uint32_t fid);    /* into the stable index */
void sh_frame_unlink(SpEngine *eng, uint32_t fid);  /* from the stable index */
void sh_grecs_prepare(SpEngine *eng, SpRmapVm *rv); /* WITHOUT eng->lock */
ShGroupRec *sh_grec_adopt(SpEngine *eng, int fd);   /* WITHOUT eng->lock (re-attach) */
void sh_grecs_collect(SpEngine *eng);               /* retire unneeded records */
/* Page off of rec stops being a group frame (none merged onto it); it
 * may be indexed again later. */
void sh_gframe_unindex(SpEngine *eng, ShGroupRec *rec, uint64_t off);
void sh_grecs_reap(SpEngine *eng); /* WITHOUT eng->lock */
void sh_grecs_free(SpEngine *eng);
/* Index up to `budget` pages of clone groups that an attached member maps. */
void sh_gframes_index_some(SpEngine *eng, uint64_t budget);
void sh_gframe_rec_get(SpEngine *eng, uint32_t fid);    /* counters.c: a merge onto fid */
void sh_gframe_rec_put(SpEngine *eng, uint32_t fid);    /* counters.c: one gone; may retire */
void sh_gframe_rec_forget(SpEngine *eng, uint32_t fid); /* one gone; no retirement */
bool sh_gframe_ref(SpEngine *eng, uint32_t fid, SpFrameRef *out);
uint32_t sh_gframe_find(SpEngine *eng, const SpCloneGroup *grp, uint64_t off);
/* The group frame of page `off` of rec, indexed now if it was not yet. */
uint32_t sh_gframe_adopt(SpEngine *eng, ShGroupRec *rec, uint64_t off);
uint64_t sh_gframes_bytes(SpEngine *eng);
/* An attached member that maps page `off` of rec's group as its layer, or
 * NULL (the reverse map's off bits: a page that left is not). */
SpEngineVm *sh_grec_mapper(SpEngine *eng, const ShGroupRec *rec, uint64_t off);
static inline bool sh_grec_gone(const ShGroupRec *rec, uint64_t off)
{
    return rec->gone[off / 64] >> (off % 64) & 1;
}

/* group-giveback.c - clone groups' pages no VM maps any more, punched out
 * of their files: up to `budget` pages looked at.  eng->lock held. */
void sh_grecs_give_back_some(SpEngine *eng, uint64_t budget);

/* mappers.c - who maps a frame; the engine's side of the reverse map */
ShMapLists *sh_maplists_new(void);
void sh_maplists_free(ShMapLists *l);
uint64_t sh_maplists_bytes(const ShMapLists *l); /* its memory, free blocks included */
/* The mappers of a frame (pool or group frame id), n of them; valid
 * until the next add or remove (eng->lock held).  sh_mappers_at gives
 * mapper i as vm slot << 40 | gfn. */
#define SH_NARROW_GFN_BITS 24 /* 4-byte words: see mappers.c */
typedef struct ShMappers {
    const void *w; /* the words: uint32_t, or uint64_t when wide */
    uint32_t n;
    bool wide;
} ShMappers;
ShMappers sh_mappers(SpEngine *eng, uint32_t frame);
static inline uint64_t sh_mapper_widen(uint32_t w) /* a 4-byte word, as slot << 40 | gfn */
{
    return (uint64_t)(w >> SH_NARROW_GFN_BITS) << 40 | (w & ((1u << SH_NARROW_GFN_BITS) - 1));
}
static inline uint64_t sh_mappers_at(const ShMappers *m, uint32_t i)
{
    if (m->wide)
        return ((const uint64_t *)m->w)[i];
    return sh_mapper_widen(((const uint32_t *)m->w)[i]);
}
void sh_mapper_add(SpEngine *eng, uint32_t frame, SpEngineVm *vm, uint64_t gfn);
void sh_mapper_remove(SpEngine *eng, uint32_t frame, SpEngineVm *vm, uint64_t gfn);
uint32_t sh_mapper_count(SpEngine *eng, uint32_t frame);
/* After a pass: pack lists whose slab is more than an eighth unused;
 * returns how many of the two (pool and group frames') were packed. */
unsigned sh_mappers_trim(SpEngine *eng);
void sh_mappers_free(SpEngine *eng);
void sh_rmap_register(SpEngine *eng);
void sh_rmap_unregister(SpEngine *eng);

/* The content hash of a page (32 bits of XXH3), as the agents compute it. */
static inline uint32_t sh_page_hash(const void *p)
{
    XXH64_hash_t h = XXH3_64bits(p, SP_PAGE_SIZE);
    return (uint32_t)(h ^ (h >> 32));
}

/* The index's key of a content: its share set, its node (-1: any node,
 * merge_across_nodes=1; a frame's node is its pool's) and its hash.
 * Share sets number below 2^24. */
static inline uint64_t sh_key(uint32_t group, int node, uint32_t hash)
{
    return ((uint64_t)(node + 1) << 56) | ((uint64_t)(group + 1) << 32) | hash; /* never 0 */
}

#endif
