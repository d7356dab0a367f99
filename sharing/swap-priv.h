/* SPDX-License-Identifier: MIT */
/*
 * swap-priv.h - samepaged's side of swap (docs/swap.md): what is out, the
 * service that brings it back, and the balancer that decides what leaves.
 * The VM process's side is sharing/agent-swap.c.
 *
 *   swap.c        the ShSwap object: the store (rmap/swap-store.h), the
 *                 tables of what is out, the service thread that answers
 *                 the VM processes' swap-in requests, statistics;
 *   swap-evict.c  the balancer thread: what each VM and the host are
 *                 charged, and eviction of cold private pages (through the
 *                 agents) and of shared frames (punched out of their pool
 *                 once, for every sharer);
 *   swap-layers.c clone-layer pages;
 *   swap-adopt.c  the store of a samepaged that crashed, taken over at
 *                 re-attach (every slot names its owner).
 *
 * What is out:
 *   a private page  ShSwapVm.slot_of[gfn] = its slot + 1 (ZERO_SLOT: it was
 *                   all zero and was not written); the agent marked it OUT
 *                   and dropped it.  Swap-in: its content is copied into
 *                   the faulting VM (UFFDIO_COPY), the slot dropped.
 *   a pool frame    frames[(pool << 32) | off] = fid << 32 | slot; the bit
 *                   fid of frame_out is set; the frame's page is a hole in
 *                   the pool memfd.  Every mapper registered the page for
 *                   missing faults before the punch (M_PREP).  Swap-in: the
 *                   content is written back into the pool at its offset
 *                   (pwrite: a concurrent fault waits on the page lock, it
 *                   never sees it half written), once, and each faulting
 *                   sharer retries its fault and maps that same page
 *                   (UFFDIO_WAKE): sharing survives, no copy per sharer.
 *   a layer page    a page of a clone group's file: ShLayerFile.slot1
 *                   (swap-layers.c), the same way for the whole family and
 *                   for the VMs merged onto it (a group frame: its bit of
 *                   gframe_out is set while it is out).
 *
 * Invariants: a frame is never read through a view while it is out (a read
 * fault of a hole in a view that is not registered with a userfaultfd
 * fills the hole with zeros, for every sharer): match() skips frames that
 * are out (sh_swap_frame_is_out) and the balancer evicts only frames every
 * mapper of which has a swap channel and is neither broken nor held.
 *
 * Locking: swap->lock guards everything here but the frame_out bits, which
 * are read with atomics under eng->lock (set by the balancer holding both
 * locks; cleared by the service thread holding swap->lock).  Lock order:
 * eng->lock, then swap->lock.  The service thread takes swap->lock only:
 * a VM whose agent thread waits for a swap-in (it touched an evicted page)
 * while the engine waits for that agent must still be served.  Nobody
 * holds swap->lock across a request to a VM process.
 */
#ifndef SAMEPAGE_SHARING_SWAP_PRIV_H
#define SAMEPAGE_SHARING_SWAP_PRIV_H

#include "rmap/swap-store.h"
#include "sharing/engine-priv.h"

#define ZERO_SLOT (UINT32_MAX - 1)

typedef struct ShSwapVm {
    SpEngineVm *vm;       /* sh_swap_vm_attach; immutable: NULL once dead */
    char *name;           /* sh_swap_vm_attach; immutable */
    int chan;             /* sh_swap_vm_attach; immutable: our end of its swap channel */
    uint64_t npages;      /* sh_swap_vm_attach; immutable */
    uint32_t *slot_of;    /* swap-evict.c, service; swap->lock: private pages out (slot + 1) */
    GArray *space_pool;   /* swap-evict.c; swap->lock: by the VM's space id, pool or NO_SPACE */
    GArray *space_ino;    /* swap-evict.c; swap->lock: by space id, its file's inode (a group
                           * file's, a pool's) or 0 */
    uint64_t limit_pages; /* sp_engine_vm_set_mem_limit; swap->lock: 0 = none */
    uint64_t out;         /* swap-evict.c, service; swap->lock: private pages out */
    uint64_t refaults;    /* service; swap->lock: its faults' contents back within 60 s */
    uint64_t charged;     /* balancer; swap->lock: pages charged at the last look */
    uint64_t in_since;    /* service; swap->lock: pages brought back since that look */
    bool dead;            /* sh_swap_vm_detach; swap->lock: the service frees it */
    bool keep_slots;      /* sh_swap_vm_detach; swap->lock: let go running: its slots stay in
                           * the store (which it keeps) for the next samepaged */
    bool adopted;         /* swap-adopt.c; swap->lock: its old store was taken over whole, from
                           * a samepaged or an agent before SP_SWAP_STORE_EXACT: a page out
                           * without a slot was all zero */
    bool slots_exact;     /* swap-adopt.c; swap->lock: its old store was taken over and a page
                           * out without a slot is a lost one (SP_PROTO_SWAPANS_LOST) */
    bool takes_lost;      /* sh_swap_vm_attach; immutable: its VM process takes
                           * SP_PROTO_SWAPANS_LOST (SP_PROTO_AGENT_DROPS_ZERO): it ends on a
                           * page whose content is gone (an older one is answered an error,
                           * and asks again) */
    uint64_t zero_guess;  /* service; swap->lock: pages answered so (the first few logged) */
    bool hup;             /* service; swap->lock: its channel closed (not polled) */
    /* A request waiting at a limit for the balancer (service only): served
     * once the evictions made room, a round ended after held_seq, or at
     * held_until (monotonic us). */
    bool held;
    SpProtoMsg held_msg;
    uint64_t held_seq;
    gint64 held_until;
} ShSwapVm;

/* Pages of one clone group's file that are out (swap-layers.c): made at
 * its first eviction, kept while the engine knows the group. */
typedef struct ShLayerFile {
    uint64_t ino;    /* immutable: the file's inode (what a VM's S_IN LAYER names) */
    int fd;          /* immutable: a descriptor of the file */
    uint64_t npages; /* immutable */
    uint32_t *slot1; /* swap->lock: per page, its slot + 1 while out, 0: in the file */
    uint64_t *back;  /* swap->lock: bits: brought back since the clock passed */
    uint64_t out;    /* swap->lock: pages out */
} ShLayerFile;

typedef struct ShSwap {
    SpSwapStore *store; /* sp_engine_enable_swap; immutable */
    GMutex lock;
    GCond cond;             /* with lock: the balancer's wake-ups */
    uint64_t balance_seq;   /* balancer; lock: rounds ended */
    uint64_t in_since;      /* service; lock: pages and frames brought back since the last charge */
    GPtrArray *vms;         /* attach, service (frees the dead); lock: ShSwapVm * */
    GArray *pool_fds;       /* swap-evict.c; lock: by pool index, a descriptor of it or -1 */
    GHashTable *frames;     /* swap-evict.c, service, frame_dropped; lock: frames out */
    GPtrArray *layer_files; /* swap-layers.c; lock: ShLayerFile * */
    GPtrArray *old_stores;  /* swap-adopt.c; lock: ShOldStore *, until every VM came back */
    GHashTable *lost;       /* swap-adopt.c; lock: ShLostPage * -> itself: shared pages a
                             * take-over could not write back (holes their mappers must not
                             * read: SP_PROTO_SWAPANS_LOST) */
    uint32_t nlost;         /* atomics: lost's size, looked at without the lock */
    uint64_t *frame_out;    /* by fid, atomics (see Locking) */
    uint32_t frame_out_len; /* words; eng->lock and lock to grow */
    uint64_t *gframe_out;   /* by group frame index: merged onto, its page out (eng->lock) */
    uint32_t gframe_out_len; /* words; eng->lock */
    uint64_t *frame_back;    /* by fid: restored since the frame clock passed (lock) */
    uint32_t frame_hand;     /* balancer; eng->lock: the frame clock */
    uint32_t *slot_time;     /* by slot: when its content left (s, monotonic); lock */
    uint64_t slot_time_len;
    int wake_fd; /* eventfd: the service thread's poll set changed, or a round ended */
    GThread *service, *balancer;
    bool quit;                   /* lock */
    uint64_t host_limit_pages;   /* lock: 0 = none */
    uint64_t cache_pages_charge; /* immutable: the compressed tier, charged to the host */
    bool pressure;               /* immutable: reclaim on host memory pressure */
    uint32_t readahead;          /* immutable: pages sent with a faulting one, at most */
    bool kept_out;               /* lock: a VM let go running kept pages out (keep_slots) */
    bool stopped_full;           /* balancer; lock: the store refused a put (logged once) */
    uint64_t full_slots;         /* balancer; lock: slots used when it did */
    gint64 full_us;              /* balancer; lock: when (monotonic) */
    uint64_t host_after;         /* balancer only: the host charge its last round left */
    uint64_t ins_after;          /* balancer only: swap_ins then */
    /* figures (lock) */
    uint64_t frames_out, swap_outs, swap_ins, frame_outs, frame_ins, refaults;
    uint64_t merged_instead, zero_skipped, full_events, pressure_rounds, charged;
    uint64_t swapin_copies, throttled, prefetched;
    uint64_t layer_out; /* of frames_out: clone-layer pages */
} ShSwap;

/* swap.c */
#define THROTTLE_MAX_MS 50 /* the longest a swap-in waits for the balancer */
#define HEADROOM_PCT    97 /* the balancer evicts down to this much of a limit */
#define SWAP_NICE       -5 /* the service thread's and the VMs' swap threads' nice */
ShSwapVm *sh_swap_vm_find(ShSwap *sw, SpEngineVm *vm); /* lock held */
void sh_swap_service_kick(ShSwap *sw);                 /* wake the service thread */
void sh_swap_test_kill(ShSwap *sw, const char *point); /* tests only: SAMEPAGE_TEST_KILL */
void sh_swap_slot_left(ShSwap *sw, uint32_t slot);     /* lock held: note when */
#define SLOT_TIME_UNKNOWN UINT32_MAX
void sh_swap_slot_left_unknown(ShSwap *sw, uint32_t slot); /* lock held: when is not known */
bool sh_swap_slot_refault(ShSwap *sw, uint32_t slot);      /* lock held: back within 60 s? */
/* Tests only: SAMEPAGE_TEST_LOSE_SLOTS=VM:N, how many of VM's private
 * slots a take-over loses on purpose (0: none). */
uint32_t sh_swap_test_lose(const char *vm);
/* A content out since `slot` left comes back on a fault of `faulter`'s
 * (NULL: brought back by samepaged, not a refault); lock held. */
void sh_swap_count_refault(ShSwap *sw, uint32_t slot, ShSwapVm *faulter);
/* The frame whose (pool, off) is out comes back into its pool, on a fault
 * of `faulter`'s (or NULL); lock held.  false: it could not be read back
 * (logged; SP_SWAP_STORE_ERROR_UNREADABLE: its content is gone). */
bool sh_swap_frame_restore(ShSwap *sw, uint64_t key, ShSwapVm *faulter, GError **error);
static inline uint64_t sh_swap_frame_key(uint32_t pool, uint32_t off)
{
    return ((uint64_t)pool << 32) | off;
}

/* swap-layers.c: clone groups' pages (docs/swap.md "Clone layers") */
/* Evict up to `max` pages of clone groups' files now (eng->lock held). */
uint64_t sh_swap_evict_layers(SpEngine *eng, uint64_t max, SpEngineVm *only);
/* Page `off` of the file with inode `ino` (0: of every file) comes back
 * into its file, on a fault of `faulter`'s; lock held.  false: it could
 * not be read back (logged; the first failure in *error, as
 * sh_swap_frame_restore's). */
bool sh_swap_layer_restore(ShSwap *sw, uint64_t ino, uint64_t off, ShSwapVm *faulter,
                           GError **error);
void sh_swap_layers_restore_all(ShSwap *sw);                       /* lock held */
bool sh_swap_layer_is_out(ShSwap *sw, uint64_t ino, uint64_t off); /* lock held */
/* The group is gone (no member, no merge): its pages' slots are freed. */
void sh_swap_layer_file_drop(ShSwap *sw, uint64_t ino); /* lock held */
/* Page off of the file is nobody's now: if it is out, its slot is freed
 * (true).  Lock held. */
bool sh_swap_layer_forget(ShSwap *sw, uint64_t ino, uint64_t off);
void sh_swap_layers_free(ShSwap *sw);
bool sh_swap_is_zero(const uint8_t *page);
void sh_swap_store_full(ShSwap *sw, const GError *err); /* lock held */

/* Frames merged onto (pool or group frames): is every mapper of fid a VM
 * that can be asked (a swap channel, neither broken nor held)?  `*has_only`
 * (if not NULL) is set if `only` is one of them.  eng->lock and lock held. */
bool sh_swap_mappers_ready(SpEngine *eng, ShSwap *sw, uint32_t fid, SpEngineVm *only,
                           bool *has_only);
/* Each mapper's page of frame fid, into per_vm (SpEngineVm * -> GArray of
 * uint64 gfns); eng->lock held. */
void sh_swap_gather_mappers(SpEngine *eng, uint32_t fid, GHashTable *per_vm);
GHashTable *sh_swap_per_vm_new(void);
/* Every VM of per_vm registers its pages for missing faults (M_PREP).
 * false: one could not (nothing may be punched then).  eng->lock held. */
bool sh_swap_prep_all(SpEngine *eng, GHashTable *per_vm);
/* The VMs' space ids, for the service thread (eng->lock and lock held). */
void sh_swap_note_spaces(SpEngine *eng, ShSwap *sw);

/* swap-adopt.c */
/* v (not listed yet) takes over its private pages from the old store its
 * VM handed over (sh_swap_store_handover), and the VM keeps our store from
 * then on (a commit); eng->lock held. */
void sh_swap_adopt_pages(SpEngine *eng, ShSwapVm *v, SpEngineVm *vm);
void sh_swap_old_store_free(ShOldStore *o);
/* Page off of the pool or group file with inode ino was out before
 * samepaged restarted and could not be written back: a hole whose content
 * is lost (lock held). */
bool sh_swap_lost_locked(ShSwap *sw, uint64_t ino, uint64_t off);
/* The file with inode ino is gone: its lost pages are forgotten (lock
 * held; an inode number may come back, for another file). */
void sh_swap_lost_forget_file(ShSwap *sw, uint64_t ino);
GHashTable *sh_swap_lost_new(void);

/* swap-evict.c */
/* eng->lock held: vm registers guest pages gfns (uint64) for missing
 * faults (M_PREP), before what they map is punched out.  false: it could
 * not (nothing may be punched then). */
bool sh_swap_prep(SpEngine *eng, SpEngineVm *vm, GArray *gfns);
/* Lock held: a shared content listed as out in `slot` leaves page off of
 * file fd (a pool, a layer: `what`, for the log), and is counted.  false:
 * the punch failed (logged, the slot dropped; the caller unlists it). */
bool sh_swap_punch(ShSwap *sw, int fd, uint64_t off, uint32_t slot, const char *what);
gpointer sh_swap_balancer(gpointer eng);
/* Evict up to `max` frames now (eng->lock held); how many left. */
uint64_t sh_swap_evict_frames(SpEngine *eng, uint64_t max, SpEngineVm *only);
/* Evict up to `max` private pages of vm idle for min_idle passes. */
uint64_t sh_swap_evict_private(SpEngine *eng, SpEngineVm *vm, uint32_t max, uint32_t min_idle);

#endif
