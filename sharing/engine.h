/* SPDX-License-Identifier: MIT */
/*
 * engine.h - the deduplication engine's index: KSM's semantics, from the
 * VMM side, across VM processes (docs/sharing.md, docs/process-model.md).
 *
 * The supervisor attaches each VM by its memory channel to the VM's agent
 * (sharing/agent.h), which knows the VM's pages.  One engine thread drives
 * every attached VM through passes: the agent harvests KVM's dirty log (the
 * pages that changed are volatile; merged pages the kernel copied on write
 * release their frames), hashes stable pages with XXH3 and returns them as
 * candidates; the index matches candidates against its stable index of
 * shared frames and an unstable table rebuilt every pass, fills new frames
 * (contents sent by the VM) in the share set's pool memfd, and tells the
 * VMs to merge, which they do with the race-free protocol of
 * docs/sharing.md.  Knobs and counters keep KSM's names and meanings.
 *
 * Threads: the engine thread does all scanning; any thread may call the
 * knob setters, the stats getters, attach/detach and the holds (they take
 * eng->lock, which the scanner holds while it works on a batch).
 */
#ifndef SAMEPAGE_SHARING_ENGINE_H
#define SAMEPAGE_SHARING_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <gio/gio.h>

#include "rmap/rmap.h"

typedef struct SpEngine SpEngine;
typedef struct SpEngineVm SpEngineVm;

/* Errors of the engine's calls (a failed system call stays G_IO_ERROR). */
#define SP_ENGINE_ERROR (sp_engine_error_quark())
GQuark sp_engine_error_quark(void);
typedef enum {
    SP_ENGINE_ERROR_KNOB,         /* a knob value outside its range */
    SP_ENGINE_ERROR_NO_MEMORY,    /* no memory for a VM's sharing metadata */
    SP_ENGINE_ERROR_TOO_MANY_VMS, /* every VM slot of the engine is taken */
    SP_ENGINE_ERROR_NO_SWAP,      /* a memory limit, but swap is off for the VM */
    SP_ENGINE_ERROR_BUSY,         /* merge_across_nodes changed while pages are shared (EBUSY) */
} SpEngineError;

/* What the supervisor tells the engine about a VM. */
typedef struct SpEngineVmDesc {
    uint64_t id;          /* the VM's id, unique in the supervisor */
    const char *name;     /* for messages and stats */
    int channel;          /* its memory channel (not taken; must outlive the attach) */
    int pid;              /* its process (for /proc/PID/pagemap in exact walks) */
    uint64_t ram_base;    /* where its RAM is mapped in that process */
    uint64_t npages;      /* guest pages */
    const char *domain;   /* sharing domain; NULL = its own (the name) */
    uint64_t share_start; /* guest-physical range that takes part in sharing; */
    uint64_t share_end;   /* 0, 0 = all of RAM (the default) */
    SpRmapVm *rmap;       /* its reverse-map entry (may be NULL) */
    bool reattach;        /* the VM was attached to an earlier index (a supervisor
                           * restart): read its merges (M_REPORT) instead of
                           * starting it over */
} SpEngineVmDesc;

/* KSM's knobs (and scan_nice, samepage's own).  run: 0 stop, 1 run, 2
 * unmerge everything and stay stopped.  Their ranges and help lines: sharing/knobs.h. */
typedef struct SpEngineKnobs {
    uint32_t run;
    uint32_t pages_to_scan;      /* pages per batch */
    uint32_t sleep_millisecs;    /* pause between batches */
    uint32_t max_page_sharing;   /* mappings per frame at most (>= 2) */
    uint32_t use_zero_pages;     /* drop all-zero pages instead of merging them */
    uint32_t merge_across_nodes; /* 0: each host node its own index and frames (scan.c) */
    /* Competing for CPU, and automatic tuning (advisor.c, docs/sharing.md) */
    uint32_t scan_nice;                /* nice of the engine thread and the VMs' agent threads */
    uint32_t advisor_mode;             /* 0 none; 1 scan-time: the engine sets pages_to_scan and
                                        * sleep_millisecs itself, from the two below */
    uint32_t advisor_target_scan_time; /* seconds a full scan should take */
    uint32_t advisor_max_cpu; /* percent of one CPU the engine and its agents use at most */
    /* Mappings (docs/sharing.md, "Mappings"): per 1000 of a VM's guest pages,
     * the mappings (VMAs) its RAM may be split into before only merges that
     * add none, or runs of 16 pages or more, go on (0: no budget). */
    uint32_t map_budget;
    /* KSM's smart_scan (docs/sharing.md, "Smart scan"): a page that stays
     * unmerged and unwritten is examined only every 2nd, 4th, then 8th
     * pass. */
    uint32_t smart_scan;
} SpEngineKnobs;

/* Host NUMA nodes the per-node counters cover. */
#define SP_ENGINE_NODES 8

/* Node-wide counters, KSM's names and meanings. */
typedef struct SpEngineStats {
    uint64_t pages_shared;  /* frames in the stable index (shared frames in use) */
    uint64_t pages_sharing; /* guest pages mapping those frames, minus one per frame: pages saved */
    uint64_t pages_unshared; /* stable, unique pages in the unstable table at the last full scan */
    uint64_t pages_volatile; /* pages that changed since the previous scan (not merge candidates) */
    uint64_t pages_scanned;  /* pages examined, cumulative */
    uint64_t pages_skipped;  /* pages smart_scan left out of a pass, cumulative (KSM's) */
    uint64_t full_scans;     /* completed passes over all VMs */
    uint64_t zero_pages;     /* pages dropped to the zero page and still zero */
    int64_t general_profit;  /* saved_bytes minus metadata_bytes */
    uint64_t saved_bytes;    /* (pages_sharing + zero_pages) x 4096: memory the sharing saves */
    uint64_t metadata_bytes; /* the engine's own memory for page tables, index and frames */
    /* metadata_bytes, part by part (they sum to it) */
    uint64_t metadata_vm_bytes;        /* in the VM processes: state words, bitmaps */
    uint64_t metadata_frame_ids_bytes; /* the index's frame id per guest page, refused bits */
    uint64_t metadata_frames_bytes;    /* frame records, pools' offset tables */
    uint64_t metadata_mappers_bytes;   /* the frames' mapper lists (the reverse map) */
    uint64_t metadata_stable_bytes;    /* the stable index's table */
    uint64_t metadata_unstable_bytes;  /* the unstable table (sized for a pass's peak) */
    uint64_t merges;                   /* merge events, cumulative */
    uint64_t map_skipped;  /* merges the mapping budget refused in the last full pass, all VMs */
    uint64_t cow_breaks;   /* shares broken by a guest write (seen in the dirty log), cumulative */
    uint64_t frames_freed; /* frames whose last mapper went, cumulative */
    uint64_t layer_pages_given_back; /* clone groups' pages no VM mapped, punched out, cumulative */
    uint64_t wp_faults_seen; /* guest writes caught blocked inside a merge window (test delay) */
    uint64_t evict_wp_faults_seen; /* ... inside an eviction window (swap, test delay) */
    uint64_t pool_frames; /* frames allocated in the pool now (each has a mapper, or a leak) */
    uint64_t numa_frames_rehomed;   /* shared frames moved to their sharers' node, cumulative */
    uint64_t numa_frames_misplaced; /* ... that the last pass wanted to move and could not */
    uint64_t numa_pages_split;  /* pages split off another node's frames (merge_across_nodes=0) */
    uint64_t scan_time_ms;      /* the last full scan's wall time, start to start */
    uint64_t scan_cpu_permille; /* engine thread + agents' CPU in it, per mille of one CPU */
    /* pages_shared and pages_sharing of each node's own frames
     * (merge_across_nodes=0; frames of the any-node pools are in neither) */
    uint64_t node_pages_shared[SP_ENGINE_NODES];
    uint64_t node_pages_sharing[SP_ENGINE_NODES];
    /* frames of the host-wide pools in use on each node, as the kernel
     * placed them at the last re-homing pass (numa-rehome.c; the pass
     * runs only with merge_across_nodes=1 and run=1); 0 once no frame is
     * in use (run=2, a change of merge_across_nodes) */
    uint64_t numa_frames_on[SP_ENGINE_NODES];
} SpEngineStats;

/* NUMA (numa-rehome.c, docs/numa.md): move every shared frame that most
 * of the pages mapping it want on another node there.  vm_nodes gives a
 * VM's nodes (bit n: node n; 0: no policy) by the id it was attached
 * with; it is called with the engine's lock held and must not call the
 * engine.  Returns false only when the kernel refused the whole pass. */
typedef uint64_t (*SpEngineVmNodes)(uint64_t vm_id, void *opaque);
typedef struct SpEngineRehome {
    uint64_t frames_checked;   /* shared frames some VM with a policy maps */
    uint64_t frames_moved;     /* moved by this pass */
    uint64_t frames_misplaced; /* wanted elsewhere, not moved (the kernel refused) */
} SpEngineRehome;
bool sp_engine_numa_rehome(SpEngine *eng, SpEngineVmNodes vm_nodes, void *opaque,
                           SpEngineRehome *out, GError **error);
/* merge_across_nodes=0: the VM now lives on `nodes` (bit n: node n; 0: no
 * policy, nothing done); its pages that map frames of other nodes' pools
 * get private copies (*split of them), to be merged again on its nodes. */
bool sp_engine_numa_split(SpEngine *eng, SpEngineVm *vm, uint64_t nodes, uint64_t *split,
                          GError **error);

/* Per-VM figures. */
typedef struct SpEngineVmStats {
    uint64_t merged_pages;      /* pages mapping a shared frame now */
    uint64_t zero_pages;        /* pages dropped to the zero page */
    uint64_t private_pages;     /* touched pages that are neither */
    uint64_t volatile_pages;    /* pages that changed in the last scan */
    uint64_t mappings;          /* host mappings (VMAs) its RAM is split into */
    uint64_t merges;            /* its pages merged, cumulative */
    uint64_t merge_maps;        /* mmap calls those merges took, cumulative: a run of consecutive
                                 * pages onto consecutive frames takes one */
    uint64_t compactions;       /* stretches of private pages that copy-on-write had left in
                                 * several mappings, rebuilt as one (cumulative; agent-compact.c) */
    uint64_t compacted_pages;   /* their pages */
    uint64_t compact_wp_faults; /* tests (a test delay set): guest writes that blocked in a
                                 * compaction's window, cumulative */
    uint64_t map_skipped;       /* merges the mapping budget refused in its last full pass: the
                                 * sharing left on the table (pages) */
    int64_t profit_bytes;       /* bytes saved for this VM minus its metadata */
    uint64_t rss_pages;         /* resident pages of its RAM minus its merged pages: what it keeps
                                 * to itself (shared frames count once, in the pool) */
    /* swap (docs/swap.md); 0 while swap is off */
    uint64_t swapped_pages;  /* its private pages out now */
    uint64_t swap_outs;      /* its private pages evicted, cumulative */
    uint64_t swap_ins;       /* faults it resolved through swap (pages and frames), cumulative */
    uint64_t swap_in_p50_us; /* swap-in latency over its last 1024 swap-ins */
    uint64_t swap_in_p99_us;
    uint64_t swap_blocked_ns; /* time its vCPUs and threads waited for swap-ins, cumulative */
    uint64_t refaults;        /* its faults' pages, frames, layer pages back within 60 s */
    uint64_t mem_limit;       /* its limit in bytes, 0 = none */
    uint64_t charged_bytes;   /* what its limit is checked against, at the last look */
} SpEngineVmStats;

/* Swap (docs/swap.md): samepaged's own store, limits, reclaim. */
typedef struct SpSwapConfig {
    const char *path;     /* the swap file (created, truncated) */
    uint64_t file_bytes;  /* its size at most (sparse) */
    uint64_t cache_bytes; /* the compressed tier in memory (0: none) */
    uint64_t host_limit;  /* bytes all VMs' guest RAM may occupy (0: no limit) */
    bool pressure;        /* also reclaim when the host is short of memory */
    uint32_t readahead;   /* pages of the faulting page's block sent with it, at most
                             (0: none; at most SP_SWAP_READAHEAD_MAX) */
} SpSwapConfig;
#define SP_SWAP_READAHEAD_DEFAULT 7  /* with the faulting page: a block of 8, as Linux's */
#define SP_SWAP_READAHEAD_MAX     14 /* what one answer holds */

typedef struct SpSwapStats {
    bool enabled;
    uint64_t pages_swapped;  /* private pages and frames out now */
    uint64_t frames_swapped; /* of them shared frames (one slot each for all sharers) */
    uint64_t layer_pages;    /* of those, pages of clone groups' files (docs/swap.md) */
    uint64_t bytes_written;  /* to the swap file, cumulative */
    uint64_t bytes_read;     /* from it, cumulative */
    uint64_t slots_used;     /* contents held now */
    uint64_t slots_max;
    uint64_t swapin_copies;         /* sharers that got a private copy of a shared frame: stays 0 */
    uint64_t cache_pages;           /* contents in the compressed tier */
    uint64_t cache_bytes;           /* their compressed size */
    double cache_ratio;             /* cache_pages x 4096 / cache_bytes (0: empty) */
    uint64_t file_pages;            /* contents in the file */
    uint64_t refaults;              /* contents back within 60 s of leaving, cumulative */
    uint64_t swap_outs;             /* contents evicted (a frame once), cumulative */
    uint64_t swap_ins;              /* contents brought back, cumulative */
    uint64_t frame_outs, frame_ins; /* of them shared frames */
    uint64_t merged_instead;        /* cold pages merged onto a frame instead of written */
    uint64_t zero_skipped;          /* cold all-zero pages evicted without a slot */
    uint64_t full_events;           /* puts the store refused (full or failing file) */
    uint64_t pressure_rounds;       /* balancer rounds that found the host short of memory */
    uint64_t throttled;             /* swap-ins that waited for the balancer (at a limit) */
    uint64_t prefetched;            /* of swap_ins: pages sent with a faulting neighbour */
    uint64_t limit_bytes;           /* the host limit, 0 = none */
    uint64_t charged_bytes;         /* what it is checked against, at the last look */
} SpSwapStats;

SpEngine *sp_engine_new(const SpEngineKnobs *knobs, GError **error);
void sp_engine_free(SpEngine *eng); /* stops the thread; VMs must be detached */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpEngine, sp_engine_free)

void sp_engine_default_knobs(SpEngineKnobs *k);
/* Validate and apply; a bad value changes nothing and sets a one-line error. */
bool sp_engine_set_knobs(SpEngine *eng, const SpEngineKnobs *k, GError **error);
/* The knobs in force: with advisor_mode=1, pages_to_scan and
 * sleep_millisecs are the advisor's choice (its batch, its last pause). */
void sp_engine_get_knobs(SpEngine *eng, SpEngineKnobs *k);
/* The knobs as last set (the operator's pages_to_scan and sleep_millisecs
 * even while the advisor chooses): the base for a change of some of them. */
void sp_engine_get_knobs_set(SpEngine *eng, SpEngineKnobs *k);

/* Domains: let domains a and b share non-zero pages. */
void sp_engine_allow_domains(SpEngine *eng, const char *a, const char *b);

SpEngineVm *sp_engine_attach(SpEngine *eng, const SpEngineVmDesc *desc, GError **error);
/* Forget a VM before its RAM is unmapped; drops its frame references. */
void sp_engine_detach(SpEngine *eng, SpEngineVm *vm);
/* Forget a VM that goes on running without this engine (samepaged
 * stopping): its frames are left as they are, for the next engine. */
void sp_engine_forget(SpEngine *eng, SpEngineVm *vm);
/* vm's process is about to be killed: no more requests to it, and none
 * that fails is logged as a lost VM; its frames stay until the detach.
 * Any thread; does not wait for the engine's lock. */
void sp_engine_vm_going(SpEngine *eng, SpEngineVm *vm);
/* Change the guest-physical range of a VM that takes part in sharing. */
void sp_engine_set_range(SpEngine *eng, SpEngineVm *vm, uint64_t start, uint64_t end);
/* Tests only: hold every merge window open `us` microseconds after the
 * compare, and count the guest writes that block in it (wp_faults_seen). */
void sp_engine_set_test_delay(SpEngine *eng, uint32_t us);
/* Tests and tools only: the supervisor's read-write view of pool frame f
 * (f->pool == eng, f->index a frame id, as sp_rmap_lookup returns them),
 * or NULL if f is not a frame of this engine in use.  The page behind it
 * is the one every VM process that merged onto f maps (its PFN in their
 * pagemaps).  Valid while the engine lives; the frame may be freed and
 * reused once the engine runs again.  Takes eng->lock. */
const void *sp_engine_frame_ptr(SpEngine *eng, const SpFrameRef *f);
/* Clones: while held, the engine does not talk to the VM (its process is
 * making a layer); _resync re-reads its merges (its RAM was replaced);
 * _release lets the engine go on.  Hold, (resync,) release, in that order. */
void sp_engine_vm_hold(SpEngine *eng, SpEngineVm *vm);
void sp_engine_vm_resync(SpEngine *eng, SpEngineVm *vm);
void sp_engine_vm_release(SpEngine *eng, SpEngineVm *vm);
/* The reverse map's sync of an attached VM (M_SYNC): its off bits, and the
 * frames of merged pages copied on write. */
bool sp_engine_vm_sync(SpEngine *eng, SpEngineVm *vm, GError **error);
/* After a supervisor restart, once every VM that could be was re-attached
 * (all_attached: none failed): frames of the adopted pools that no VM maps
 * are given back to the host.  With all_attached false they are kept (an
 * unattached VM might map them) and logged. */
void sp_engine_reattach_done(SpEngine *eng, bool all_attached);

void sp_engine_get_stats(SpEngine *eng, SpEngineStats *out);
void sp_engine_get_vm_stats(SpEngine *eng, SpEngineVm *vm, SpEngineVmStats *out);
/* Swap: on for good once enabled (VMs attached later get it too); a
 * one-line error for an unusable swap file. */
bool sp_engine_enable_swap(SpEngine *eng, const SpSwapConfig *cfg, GError **error);
bool sp_engine_swap_enabled(SpEngine *eng);
/* After the VMs were let go: did any keep pages out in the swap store (a
 * VM let go running with pages that could not come back, or an old store
 * taken over from a VM that never re-attached)?  A later samepaged must
 * then run with swap to answer them. */
bool sp_engine_swap_left_out(SpEngine *eng);
void sp_engine_set_mem_limit(SpEngine *eng, uint64_t bytes); /* the host's; 0 = none */
/* A VM's limit (0 = none); false if swap is off for it. */
bool sp_engine_vm_set_mem_limit(SpEngine *eng, SpEngineVm *vm, uint64_t bytes, GError **error);
void sp_engine_get_swap_stats(SpEngine *eng, SpSwapStats *out);
/* Evict now, whatever the limits (tests, `samepage swap-out`): up to max
 * private pages of vm (all VMs: NULL) and, with frames, up to max shared
 * frames: pool frames, then pages of clone groups' files.  Returns how
 * many left. */
uint64_t sp_engine_swap_out(SpEngine *eng, SpEngineVm *vm, bool private_pages, bool frames,
                            uint64_t max);
/* A VM of this engine is being cloned (hold: before its layer is saved),
 * or that is over (release: once the children started): meanwhile every
 * clone-layer page out of its file comes back and none leaves it (swap,
 * giveback), since the children map the files before they are members of
 * their groups and can take faults. */
void sp_engine_layers_hold(SpEngine *eng, bool hold);

/* The same, but the figures only the VM's agent knows (private pages,
 * mappings, resident pages) come from its last report when that is at most
 * max_age_s old: no round trip to the VM process, the engine's lock held
 * only to copy (scrapers at any rate cost the engine nothing more).
 * merged, zero and volatile pages are the index's own, always current. */
void sp_engine_get_vm_stats_aged(SpEngine *eng, SpEngineVm *vm, double max_age_s,
                                 SpEngineVmStats *out);
/* Batches the scanner finished so far; no lock taken (tests). */
uint64_t sp_engine_batches(SpEngine *eng);
/* The lock's hand-over so far (engine.c, "Handing the lock over"; tests):
 * figures_waited, the most batches that ended while a reader of figures
 * waited for the lock, less those whose pause for waiters its bound cut
 * short (let_in_cut: all such pauses, a waiter not run in time).  At most 1
 * when the hand-over works, however busy the host. */
void sp_engine_handover(SpEngine *eng, uint64_t *figures_waited, uint64_t *let_in_cut);
/* CPU time the engine thread has used so far (ns). */
uint64_t sp_engine_cpu_ns(SpEngine *eng);
/* Block until `n` more full scans completed (tests, `samepage stats --settle`). */
bool sp_engine_wait_scans(SpEngine *eng, uint64_t n, double timeout_s);

#endif
