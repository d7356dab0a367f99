/* SPDX-License-Identifier: MIT */
/*
 * agent-priv.h - the agent's insides (agent.c, agent-scan.c,
 * agent-merge.c).
 *
 * Page states (SpAgent.page[gfn]):
 *   ANON    private anonymous memory, the state every page starts in
 *   MERGED  mapped MAP_PRIVATE from frame (space, off) and not written
 *           since: reads hit the shared frame
 *   COWED   was MERGED, then written: the kernel copied it, so it is
 *           private again, but its mapping is still the frame file's
 *           (kept to count mappings); it holds no frame reference
 *   ZERO    dropped to the zero page (no memory) and not written since
 * plus flags: TOUCHED (ever written, by the guest or the VMM), HASHED (an
 * ANON page whose hash bits hold its current content's hash), VOLATILE (written since the
 * previous pass, so not a merge candidate in this one), OUT (an ANON page
 * the supervisor swapped out: not mapped, faults back through the swap
 * channel; agent-swap.c).  Every change of a word is the agent thread's
 * (OUT too: cleared at its next pass for the pages the swap thread brought
 * back); the swap thread only reads words, atomically.
 * Word layout: bits 0-1 kind, 2-5 flags, 8-23 space, 24-55 frame page
 * offset in that space (MERGED, COWED) or the content's 32-bit hash (ANON
 * with HASHED), 56-63 the swap clock's idle count (passes since the page's
 * last write, saturating at 255), which every change of state carries over
 * (AG_CARRY).  Only ANON pages keep a hash: a COWED page's offset bits say
 * where its mapping lies (agent_mappings), so it is hashed again each time
 * it is examined, as KSM checksums its unstable pages; every change away
 * from ANON drops HASHED (ag_to_anon, and the kind changes that set the
 * offset).  No hash array: 8 bytes per page where there were 12.
 *
 * Exactness toward the index: every MERGED page is one reference the index
 * counts; a page leaves MERGED only through agent_release(), which queues
 * its (gfn, space, off) for the next reply that carries released frames
 * (M_BEGIN, M_UNMERGE_ALL, M_SYNC), or through a reset that the index
 * learns from M_REPORT.
 *
 * Locking: a->lock protects everything here but vmm_dirty (atomic bits),
 * `channel` (changed under a->lock, read by the agent thread) and the
 * stop/quit flags (atomics).  The agent thread holds it while it serves
 * one request.
 */
#ifndef SAMEPAGE_SHARING_AGENT_PRIV_H
#define SAMEPAGE_SHARING_AGENT_PRIV_H

#include "sharing/agent.h"
#include "sharing/proto.h"

enum {
    AG_ANON = 0,
    AG_MERGED = 1,
    AG_COWED = 2,
    AG_ZERO = 3,
    AG_KIND_MASK = 3,
    AG_TOUCHED = 1 << 2,
    AG_HASHED = 1 << 3,
    AG_VOLATILE = 1 << 4,
    AG_OUT = 1 << 5, /* evicted: its content is in the supervisor's swap store */
    AG_FLAGS = 0xff,
};
#define AG_KIND(p)    ((unsigned)((p)&AG_KIND_MASK))
#define AG_SPACE(p)   ((uint32_t)(((p) >> 8) & 0xffff))
#define AG_OFF(p)     ((uint32_t)((p) >> 24))
#define AG_IDLE_SHIFT 56
#define AG_IDLE_MASK  (0xffULL << AG_IDLE_SHIFT)
#define AG_IDLE(p)    ((unsigned)((p) >> AG_IDLE_SHIFT))
#define AG_CARRY      ((uint64_t)AG_FLAGS | AG_IDLE_MASK) /* what a change of state keeps */
#define AG_MAKE(kind, space, off, flags)                                                           \
    ((uint64_t)(kind) |                                                                            \
     ((uint64_t)(flags) & ((AG_FLAGS & ~(uint64_t)AG_KIND_MASK) | AG_IDLE_MASK)) |                 \
     ((uint64_t)(space) << 8) | ((uint64_t)(off) << 24))
#define AG_MAX_SPACES 4096
#define AG_HASH(p)    AG_OFF(p) /* ANON with HASHED */
#define AG_OFF_MASK   (0xffffffffULL << 24)
/* The word of an ANON page, hashed with hash. */
static inline uint64_t ag_hashed(uint64_t p, uint32_t hash)
{
    return (p & ~AG_OFF_MASK) | ((uint64_t)hash << 24) | AG_HASHED;
}
/* p as an ANON page: an ANON page keeps its hash; any other drops what
 * its offset bits held, and HASHED. */
static inline uint64_t ag_to_anon(uint64_t p)
{
    if (AG_KIND(p) == AG_ANON)
        return p;
    return AG_MAKE(AG_ANON, 0, 0, p & AG_CARRY & ~(uint64_t)AG_HASHED);
}

#define AG_CHUNK_PAGES 512 /* 2 MiB: the granule of missing-fault registration */
/* Words of SpAgent.missing (a bit per chunk, with room to spare). */
#define AG_MISSING_WORDS(npages) (((npages) / AG_CHUNK_PAGES + 64) / 64)

typedef struct AgentSpace {
    int fd;        /* -1: free */
    uint32_t kind; /* SP_PROTO_SPACE_* */
    uint8_t *view; /* read-only shared view */
    uint64_t len;  /* bytes of the view */
} AgentSpace;

/* One swap store's descriptors, in M_SWAP_STORE's order (metadata,
 * compressed tier if has_tier, file); nfds 0: none. */
typedef struct AgentStore {
    int fds[3];
    uint32_t nfds;
    uint32_t has_tier;
} AgentStore;

struct SpAgent {
    char *name;
    void (*thread_sync)(void);                      /* immutable: SpAgentVm's */
    void (*lost)(const char *reason, void *opaque); /* immutable: SpAgentVm's */
    void *lost_opaque;
    SpGuestMem *mem;
    int kvm_fd;
    uint32_t slot;
    SpRmapVm *rmap;
    GMutex lock;
    GCond cond; /* a channel arrived, or stop */
    GThread *thread;
    int channel; /* the memory channel, -1 when none */
    int stop;    /* atomic: the guest ended: only figures are served */
    int quit;    /* atomic: the thread ends */
    /* attached state */
    bool attached;
    bool file_backed; /* RAM maps a clone layout: never MADV_DONTNEED */
    uint64_t npages;
    uint64_t first, end; /* gfns [first, end) take part */
    uint64_t *page;      /* state per guest page (see above) */
    uint64_t *dirty;     /* KVM_GET_DIRTY_LOG buffer */
    uint64_t *vmm_dirty; /* pages VMM threads wrote (atomic bits, always there) */
    int pagemap_fd;      /* /proc/self/pagemap (opened before the sandbox) */
    int status_fd;       /* /proc/self/status (the same), -1: none */
    AgentSpace spaces[AG_MAX_SPACES];
    GArray *released; /* SpProtoFrameLoc, not yet told to the index */
    /* knobs */
    uint32_t use_zero_pages;
    uint32_t test_delay_us;
    uint32_t compact_above; /* mappings per 1000 pages past which agent_compact works, 0: never */
    uint64_t max_map_count;
    bool map_limit_warned;
    /* counters */
    uint64_t merged, zero, touched, volatile_now;
    uint64_t merges, cow_breaks, wp_faults_seen;
    uint64_t merge_maps;                   /* mmap calls the merges took (one per run) */
    uint64_t compactions, compacted_pages; /* agent-compact.c: stretches rebuilt, their pages */
    uint64_t compact_wp_faults;            /* tests: of wp_faults_seen, in a compaction's window */
    uint8_t *scratch;                      /* agent-compact.c: fresh memory for the copies */
    uint64_t scratch_left;                 /* bytes of it not taken yet */
    uint64_t evict_wp_faults_seen; /* tests: writes blocked in an eviction window (swap thread) */
    /* swap (agent-swap.c): the agent thread's, but where noted */
    uint64_t *refaulted;   /* bits: swapped in since the clock last passed (swap thread sets) */
    uint64_t leaving;      /* atomic: gfn + 1 of the page evict_page is dropping, 0: none
                              (OUT is set before the drop: not read ahead meanwhile) */
    uint64_t *back;        /* bits, atomics: swapped in, OUT not cleared yet (swap thread sets,
                            * the agent's pass clears with OUT) */
    uint64_t *missing;     /* bits per 2 MiB chunk: registered for missing faults */
    uint64_t clock;        /* the eviction clock's hand */
    GArray *evicting;      /* gfns write-protected for M_EVICT, until M_EVICT_DONE */
    GByteArray *evict_buf; /* their contents, as sent */
    uint64_t out_now;      /* pages OUT */
    uint64_t swap_outs;    /* cumulative */
    GThread *swap_thread;  /* resolves missing faults (started with M_PREP/M_EVICT) */
    uint32_t swap_tid;     /* atomic: its thread id once it runs, 0 before */
    int swap_fd;           /* the swap channel: the swap thread's, -1: none yet */
    uint32_t swap_gen;     /* swap_lock: channels given so far (a request is sent once on each) */
    /* The swap stores' descriptors (M_SWAP_STORE; agent thread), kept,
     * never read, for a samepaged restarted after a crash (agent-swap.c):
     * the one whose samepaged took this VM's pages over last, and a newer
     * one offered by a samepaged that has not yet (it may die first). */
    AgentStore store_kept;
    AgentStore store_offered;
    GMutex swap_lock;   /* swap_fd, swapped_in, and the figures below */
    GArray *swapped_in; /* gfns the swap thread brought back, for the agent thread */
    uint64_t swap_ins, refaults, blocked_ns;
    uint32_t lat_us[1024]; /* the last swap-ins' latencies, a ring */
    uintptr_t window;      /* tests: the first page of a merge window held open (1: an
                            * eviction's), whose write faults the swap thread counts */
    uintptr_t window_end;  /* tests: the end of that merge window (set before window) */
    uint32_t nlat;
};

/* agent-scan.c, lock held */
uint32_t agent_page_hash(const void *p); /* 32 bits of XXH3, as sh_page_hash */
void agent_begin(SpAgent *a);
void agent_scan(SpAgent *a, const SpProtoScan *s, GArray *cands, SpProtoCands *out,
                uint64_t *skipped);
void agent_page_written(SpAgent *a, uint64_t gfn);
void agent_release(SpAgent *a, uint64_t gfn, uint64_t p);
bool agent_init_states(SpAgent *a, GError **error);
void agent_unmerge_all(SpAgent *a);
bool agent_settle(SpAgent *a, GError **error);
uint64_t agent_mappings(SpAgent *a);

/* agent-compact.c, lock held: at M_BEGIN, after the harvest */
void agent_compact(SpAgent *a);
void agent_compact_free(SpAgent *a); /* the scratch region, at the end */

/* agent-merge.c, lock held: the userfaultfd protocol (docs/sharing.md) */
/* Can page gfn be merged onto frame (space, off) - the frame known, the
 * page touched, private and in RAM? */
bool agent_can_merge(SpAgent *a, uint64_t gfn, uint32_t space, uint32_t off);
/* Merge the n consecutive pages from gfn onto the n consecutive frames
 * from (space, off), each that agent_can_merge() allowed and still holds
 * its frame's bytes: one protection, one mmap per run of equal pages, one
 * registration, one wake.  res[i]: page gfn + i merged.  The pages lie in
 * one 2 MiB chunk.  Returns how many merged. */
uint32_t agent_merge_run(SpAgent *a, uint64_t gfn, uint32_t n, uint32_t space, uint32_t off,
                         uint8_t *res);
/* The index's merge items (ascending guest order), those with ok[i] set
 * allowed: in spans of items close together within one chunk - one
 * protection of the span, one mmap per run, one registration, one
 * unprotection, one wake.  res[i]: item i merged. */
void agent_merge_items(SpAgent *a, const SpProtoMergeItem *it, uint64_t n, const uint8_t *ok,
                       uint8_t *res);
bool agent_zero_page(SpAgent *a, uint64_t gfn);
bool agent_unmerge_page(SpAgent *a, uint64_t gfn);
/* Is the page at gfn still its frame file's page (not copied on write)? */
bool agent_page_is_file(SpAgent *a, uint64_t gfn, bool *present);
/* Does gfn's 2 MiB chunk take missing faults already? */
bool agent_chunk_is_missing(SpAgent *a, uint64_t gfn);
/* Register [gfn's chunk] with the userfaultfd for missing faults too, and
 * re-register a remapped page with the modes of its chunk. */
bool agent_chunk_missing(SpAgent *a, uint64_t gfn);
void agent_reregister(SpAgent *a, void *addr);
bool agent_wp_range(SpAgent *a, void *addr, uint64_t len, bool on); /* userfaultfd protection */
bool agent_is_zero(const void *p);                                  /* a page of zeros */
/* Tests (test_delay_us set): hold the window [addr, addr + len), protected, open and count
 * the guest writes that block in it (wp_faults_seen). */
void agent_test_hold_window(SpAgent *a, void *addr, uint64_t len);
void agent_reregister_range(SpAgent *a, void *addr, uint64_t len); /* within one chunk */

/* agent-swap.c, lock held */
bool agent_swap_evict(SpAgent *a, SpProtoMsg *req);
bool agent_swap_evict_done(SpAgent *a, SpProtoMsg *req);
/* An M_EVICT whose M_EVICT_DONE will not come (its supervisor went): its
 * pages stay, unprotected, and their blocked writers go on (lock held). */
void agent_swap_evict_abandon(SpAgent *a);
bool agent_swap_prep(SpAgent *a, SpProtoMsg *req);
bool agent_swap_channel(SpAgent *a, SpProtoMsg *req);
bool agent_swap_store(SpAgent *a, SpProtoMsg *req); /* M_SWAP_STORE */
void agent_swap_pass(SpAgent *a);                   /* at M_BEGIN: idle ages */
/* Touch every page that is out, so that all of it is back (the swap thread
 * serves the faults); before a clone copies RAM, and when samepaged goes. */
void agent_swap_drain(SpAgent *a);
void agent_swap_stop(SpAgent *a); /* the thread ends */
/* Teardown: guest RAM leaves userfaultfd, so that no thread waits any more
 * on a swap-in nobody will answer (a->quit set first). */
void agent_swap_unblock(SpAgent *a);
void agent_swap_fill_stats(SpAgent *a, SpProtoVmStats *st);
const uint8_t *agent_frame_ptr(SpAgent *a, uint32_t space, uint32_t off);

#endif
