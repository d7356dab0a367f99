/* SPDX-License-Identifier: MIT */
/*
 * proto.h - the supervisor <-> VM process protocol (docs/process-model.md).
 *
 * It lives in sharing/ because the engine speaks it (the memory channel)
 * and the layering is vmm -> sharing -> rmap; the control channel's types
 * (the VM process's lifecycle) are defined here too, so that one decoder,
 * and one fuzzer, checks every message a VM process can send.
 *
 * Transport: a UNIX SOCK_SEQPACKET socket per channel, so a message is one
 * packet (no partial reads, no framing to resync) and a sender that must
 * not block (a vCPU thread reporting an event) can use MSG_DONTWAIT and
 * either send a whole message or none.  A message is an SpProtoHdr and
 * `len` bytes of payload; at most SP_PROTO_MAX_FDS descriptors travel with
 * it as SCM_RIGHTS.  Bulk data (page tables, layouts, page contents) goes
 * in a *blob*: a sealed memfd passed as a descriptor (sp_proto_blob_*), so
 * a packet stays small and the receiver maps data the sender can no longer
 * change or shrink.
 *
 * Checking: sp_proto_recv() accepts a message only if the magic and the
 * version match, the type is known, it came in one packet no larger than
 * SP_PROTO_MAX_MSG, the payload length lies within the type's bounds and
 * the number of descriptors equals what the type carries.  Everything
 * else is an SP_PROTO_ERROR and the caller ends that session.  Payload
 * readers (SpProtoReader) check every field against the bytes left.
 *
 * Types below 0x100 are control-channel messages, 0x100.. memory-channel
 * (engine) messages.  A request gets exactly one reply with the same seq
 * (SP_PROTO_F_REPLY), or an error reply (SP_PROTO_F_ERROR, payload = a
 * one-line message).  Events (SP_PROTO_EV_*) are sent by the VM process on
 * the control channel without a request.
 *
 * Locking: none inside; a channel's sender serializes its own sends.
 */
#ifndef SAMEPAGE_SHARING_PROTO_H
#define SAMEPAGE_SHARING_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <gio/gio.h>

#define SP_PROTO_MAGIC    0x4d565053u /* "SPVM" little-endian */
#define SP_PROTO_VERSION  1
#define SP_PROTO_MAX_MSG  (64 * 1024) /* header + payload, one packet */
#define SP_PROTO_MAX_FDS  8
#define SP_PROTO_MAX_BLOB (1ULL << 34) /* 16 GiB: no blob is ever larger */

#define SP_PROTO_ERROR (sp_proto_error_quark())
GQuark sp_proto_error_quark(void);
typedef enum {
    SP_PROTO_ERR_CLOSED,    /* the peer closed the channel */
    SP_PROTO_ERR_MALFORMED, /* a message broke the rules above */
    SP_PROTO_ERR_TIMEOUT,   /* no reply in time */
    SP_PROTO_ERR_REMOTE,    /* the peer answered with an error reply */
    SP_PROTO_ERR_IO,        /* a system call failed */
} SpProtoErrorCode;

typedef struct SpProtoHdr {
    uint32_t magic;
    uint16_t version;
    uint16_t type;
    uint32_t seq;
    uint32_t flags;
    uint32_t len; /* payload bytes after the header */
    uint32_t nfds;
} SpProtoHdr;

#define SP_PROTO_F_REPLY 1u
#define SP_PROTO_F_ERROR 2u

typedef enum SpProtoType {
    /* --- control channel: supervisor -> VM requests --- */
    SP_PROTO_HELLO = 1,   /* first message on a channel, both ways (SpProtoHello) */
    SP_PROTO_CONFIG,      /* spec text; fd: console log (or none) */
    SP_PROTO_START,       /* run the vCPUs */
    SP_PROTO_STOP,        /* stop the guest (state STOPPED) */
    SP_PROTO_PAUSE,       /* suspend: park the vCPUs until RESUME (no-op if suspended) */
    SP_PROTO_RESUME,      /* end the suspend (error if not suspended) */
    SP_PROTO_COMMAND,     /* u8 opcode, u32 arg -> reply u32 seq */
    SP_PROTO_STATUS,      /* -> reply SpProtoStatus + results (key\0 u64)... */
    SP_PROTO_CLONE_SAVE,  /* clone source: pause, make the layer -> SpProtoCloneSave + fds */
    SP_PROTO_CLONE_GROUP, /* clone child: one layer's group file (fd) */
    SP_PROTO_CLONE_LOAD,  /* clone child: layout + state (SpProtoCloneLoad) */
    SP_PROTO_QUIT,        /* the supervisor collected the end: exit */
    SP_PROTO_TEST_HOOK,   /* tests only (--test-hooks): u32 hook */
    SP_PROTO_SYNC,        /* read pagemap, update the off bits (a VM outside the engine) */
    SP_PROTO_IDENTITY,    /* SpProtoIdentity; fd (optional): its console log */
    SP_PROTO_LAYOUT,      /* u32 i -> u32 ngroups; fd: group file i (i < ngroups), or
                           * for i = SP_PROTO_LAYOUT_BITS: the off bits and the layer blob */
    SP_PROTO_NUMA_SET,    /* u32 SpNumaMode, node list text: move guest RAM (vm-placement.h)
                           * -> u64 pages moved onto those nodes */
    SP_PROTO_NUMA_PAGES,  /* -> u32 n, u64 pages[n] per node, u64 on nodes >= n */
    /* --- control channel: VM -> supervisor events --- */
    SP_PROTO_EV_CONSOLE = 0x40, /* text */
    SP_PROTO_EV_PHASE,          /* u64 n, text label */
    SP_PROTO_EV_RESULT,         /* u64 value, text key */
    SP_PROTO_EV_INTEGRITY,      /* u64 gpa, expected, found */
    SP_PROTO_EV_ROUND,          /* u64 round, verified, rewritten */
    SP_PROTO_EV_ENDED,          /* SpProtoStatus */
    /* --- memory channel: supervisor (engine) -> VM (agent) requests --- */
    SP_PROTO_M_ATTACH = 0x100, /* SpProtoAttach; fd: the share set's pool -> SpProtoAttached + fd */
    SP_PROTO_M_SPACE,          /* SpProtoSpace; fd: a pool or group file, read-only */
    SP_PROTO_M_BEGIN,          /* a new pass: harvest -> SpProtoReleased */
    SP_PROTO_M_SCAN,           /* SpProtoScan -> SpProtoCands */
    SP_PROTO_M_CONTENT,        /* u64 gfns -> blob fd with 4096 bytes each */
    SP_PROTO_M_MERGE,          /* SpProtoMergeItem[] -> u8 results */
    SP_PROTO_M_UNMERGE_ALL,    /* -> SpProtoReleased */
    SP_PROTO_M_REPORT,         /* -> SpProtoReport + fds (spaces) + blob (merged pages) */
    SP_PROTO_M_STATS,          /* -> SpProtoVmStats */
    SP_PROTO_M_KNOBS,          /* SpProtoKnobs */
    SP_PROTO_M_SYNC,           /* read pagemap: off bits, settle CoW'd merges -> SpProtoReleased */
    SP_PROTO_M_EVICT,          /* SpProtoEvict -> SpProtoEvicted (gfns) + blob (contents) */
    SP_PROTO_M_EVICT_DONE,     /* u8 per evicted gfn: SP_PROTO_EVICT_* -> u8 per gfn: dropped */
    SP_PROTO_M_PREP,           /* u64 gfns: make them fault to us when missing (frame eviction) */
    SP_PROTO_M_SWAP, /* fd: the swap channel (the VM's requests for pages); reply: u32, the swap
                        thread's id */
    SP_PROTO_M_SWAP_DRAIN, /* bring every page the VM gave up back (touch them) */
    SP_PROTO_M_UNMERGE,    /* u64 gfns: private copies of these merged pages -> SpProtoReleased */
    SP_PROTO_M_SWAP_STORE, /* SpProtoSwapStore; fds: the swap store's (O_PATH), for the VM
                              to keep across a crash of samepaged -> SpProtoSwapStore + the
                              ones it kept before (none: it kept none, or a commit) */
    /* --- swap channel: VM (its fault handler) -> supervisor requests --- */
    SP_PROTO_S_IN = 0x180, /* SpProtoSwapIn [+ read-ahead] -> SpProtoSwapAnswer (+ 4096 bytes for
                               COPY [+ read-ahead]) */
} SpProtoType;

/* What a peer says first on a channel. */
typedef struct SpProtoHello {
    uint32_t channel; /* SP_PROTO_CH_* */
    uint32_t pid;     /* the VM process (from the VM); 0 from the supervisor */
    uint64_t vm_id;   /* the supervisor's id of the VM */
    int32_t lv_id;    /* libvirt id, or -1 */
    uint32_t state;   /* SpVmState (from the VM) */
    uint8_t uuid[16]; /* libvirt UUID, or zero */
    char name[64];    /* NUL-terminated */
} SpProtoHello;
#define SP_PROTO_LAYOUT_BITS 0xffffffffu
#define SP_PROTO_NUMA_NODES  64 /* nodes a NUMA_PAGES reply counts one by one */
#define SP_PROTO_CH_CONTROL  1
#define SP_PROTO_CH_MEMORY   2
#define SP_PROTO_CH_SWAP     3

/* IDENTITY: the libvirt identity a VM process keeps for a re-attach (a
 * clone child gets it after the clone). */
typedef struct SpProtoIdentity {
    int32_t lv_id;
    uint8_t uuid[16];
} SpProtoIdentity;

/* A VM's status: the reply to STATUS, the payload of EV_ENDED. */
typedef struct SpProtoStatus {
    uint32_t state; /* SpVmState */
    int32_t exit_status;
    uint64_t rounds;
    uint64_t pages_verified;
    uint64_t pages_rewritten;
    uint64_t integrity_errors;
    uint64_t phase;
    uint64_t run_ns;  /* time since start (to its end, once ended) */
    uint64_t cpu_ns;  /* CPU time of the vCPU threads */
    uint64_t command; /* the SP_Q_COMMAND word */
    uint64_t clone_generation;
    uint64_t clone_id;
    uint64_t ram_base; /* host address of guest RAM in the VM process */
    uint64_t ram_size;
    uint64_t resident_pages; /* of guest RAM (mincore) */
    uint32_t nresults;       /* results follow: u64 value, u8 keylen, key bytes */
    uint32_t reason_len;     /* then the reason text (no NUL) */
    uint32_t suspended;      /* 1: the supervisor's PAUSE holds its vCPUs */
    uint32_t pad;
} SpProtoStatus;

/* CLONE_SAVE reply (source paused, its layer made).  fds[0]: a blob with
 * nvcpus x vcpu_state_len bytes of vCPU state; fds[1]: the new group file
 * (read-write: the supervisor keeps it and hands children read-only
 * descriptors); with `layered`, fds[2]: a blob of one byte per page, the
 * children's layer index (their layout is the source's plus the new
 * layer on top); else the children's layout is the new file alone. */
typedef struct SpProtoCloneSave {
    uint32_t layered;
    uint32_t nvcpus;
    uint32_t vcpu_state_len;
    uint32_t pad;
    uint64_t pages_copied;    /* pages written to the file while paused */
    uint64_t pages_precopied; /* ... and before the pause, while it ran */
    uint64_t park_ns, copy_ns, remap_ns, precopy_ns;
    uint64_t command; /* the source's command word */
} SpProtoCloneSave;

/* CLONE_GROUP (supervisor -> child), once per layer, oldest first:
 * u32 layer index; fd: the group file, read-only. */

/* CLONE_LOAD (supervisor -> child): layout and state.  fds[0]: the vCPU
 * state blob; fds[1] (when ngroups > 1): the layer blob. */
typedef struct SpProtoCloneLoad {
    uint32_t ngroups; /* CLONE_GROUP messages sent before */
    uint32_t nvcpus;
    uint32_t vcpu_state_len;
    uint32_t pad;
    uint64_t command;
    uint64_t clone_generation;
    uint64_t clone_id;
} SpProtoCloneLoad;

/* Engine: attach (supervisor -> VM). */
typedef struct SpProtoAttach {
    uint64_t share_start, share_end; /* guest-physical range; 0,0 = all */
    uint32_t pool_space;             /* the space id of the pool fd */
    uint32_t max_map_count;          /* the kernel's limit */
} SpProtoAttach;

typedef struct SpProtoAttached {
    uint64_t npages;
    uint32_t file_backed; /* RAM maps a clone layout */
    uint32_t pad;
} SpProtoAttached;

typedef struct SpProtoKnobs {
    uint32_t use_zero_pages;
    uint32_t test_delay_us;
    uint32_t compact_above; /* mappings per 1000 pages past which the agent gives back what
                               copy-on-write left (agent-compact.c); 0: never */
    uint32_t pad;
} SpProtoKnobs; /* -> u32: the agent thread's id (its nice is set by the supervisor) */

typedef struct SpProtoScan {
    uint64_t cursor; /* first gfn to examine */
    uint64_t limit;  /* and the end of the range the index scans */
    uint32_t budget; /* pages to examine at most */
    uint32_t max_cands;
    uint32_t flags; /* SP_PROTO_SCAN_* */
    uint32_t pass;  /* with SP_PROTO_SCAN_SMART: the index's pass number (was padding, 0) */
} SpProtoScan;
/* Say each candidate's host NUMA node (merge_across_nodes=0). */
#define SP_PROTO_SCAN_NODES 1u
/* smart_scan: leave out the pages that stay unmerged and unwritten, but in
 * a pass whose number is a multiple of their step (agent-scan.c).  An agent
 * that does not know the flag examines every page, as before. */
#define SP_PROTO_SCAN_SMART 2u

typedef struct SpProtoCand {
    uint64_t gfn;
    uint32_t hash;
    uint32_t node1; /* with SP_PROTO_SCAN_NODES: the page's node + 1 (0: not known) */
} SpProtoCand;

typedef struct SpProtoCands {
    uint64_t next;      /* cursor for the next SCAN */
    uint32_t done;      /* the pass reached the end of the range */
    uint32_t ncands;    /* SpProtoCand follow */
    uint64_t scanned;   /* pages examined (KSM's pages_scanned) */
    uint64_t volatile_; /* of which volatile */
    uint64_t work;      /* pages hashed or dropped */
    uint64_t zero_now;  /* the VM's zero pages after this batch */
} SpProtoCands;
/* After the candidates, from agents that know SP_PROTO_SCAN_SMART (an
 * older agent's reply ends with them: read as 0). */
typedef struct SpProtoCandsMore {
    uint64_t skipped; /* pages smart_scan left out of this pass */
} SpProtoCandsMore;

/* A frame a VM page maps: (space, page offset in that space's file). */
typedef struct SpProtoFrameLoc {
    uint64_t gfn;
    uint32_t space;
    uint32_t off;
} SpProtoFrameLoc;

/* Pages that stopped mapping their frame (copied on write, unmerged). */
typedef struct SpProtoReleased {
    uint32_t n; /* SpProtoFrameLoc follow, or in the blob if `blob` */
    uint32_t blob;
    uint64_t zero_now; /* the VM's zero pages now */
} SpProtoReleased;

typedef struct SpProtoMergeItem {
    uint64_t gfn;
    uint32_t space;
    uint32_t off;
    uint32_t hash; /* the frame's content hash */
    uint32_t pad;
} SpProtoMergeItem;

typedef struct SpProtoVmStats {
    uint64_t merged_pages;
    uint64_t zero_pages;
    uint64_t private_pages;
    uint64_t volatile_pages;
    uint64_t mappings;
    uint64_t metadata_bytes;
    uint64_t wp_faults_seen;
    uint64_t evict_wp_faults_seen;
    uint64_t merges;
    uint64_t cow_breaks;
    uint64_t resident_pages; /* of its RAM, mincore */
    uint64_t swapped_pages;  /* OUT now */
    uint64_t swap_outs, swap_ins, refaults;
    uint64_t swap_in_p50_us, swap_in_p99_us;
    uint64_t swap_blocked_ns; /* vCPU time spent waiting for swap-ins */
} SpProtoVmStats;
/* M_STATS replies SpProtoVmStats then SpProtoVmStatsMore; a VM process
 * from before the second part sends only the first (M_REPORT carries the
 * first only), so the reader takes what is there. */
typedef struct SpProtoVmStatsMore {
    uint64_t merge_maps; /* mmap calls its merges took (a run takes one), cumulative */
    uint64_t compactions, compacted_pages; /* stretches left by copy-on-write rebuilt as one
                                              mapping (agent-compact.c), their pages: cumulative */
    uint64_t compact_wp_faults; /* tests: guest writes that blocked in a compaction's window */
    uint64_t rss_anon_pages;    /* the VM process's RssAnon (0: unknown, or RAM maps a clone
                                   layout): what swap charges as its private memory */
} SpProtoVmStatsMore;

typedef struct SpProtoReport {
    uint32_t nspaces; /* SpProtoSpace follow; fds[1..nspaces] */
    uint32_t pad;
    uint64_t nmerged; /* SpProtoFrameLoc in the blob (fds[0]) */
    SpProtoVmStats stats;
} SpProtoReport;

typedef struct SpProtoSpace {
    uint32_t space;
    uint32_t kind; /* SP_PROTO_SPACE_* */
} SpProtoSpace;
#define SP_PROTO_SPACE_POOL  1
#define SP_PROTO_SPACE_GROUP 2

/* Swap (docs/swap.md).  M_EVICT asks the agent for up to `max` cold
 * private pages (not written for min_idle passes, not refaulted lately):
 * it write-protects them and answers their gfns and contents; the
 * supervisor stores them and answers M_EVICT_DONE, one byte per page; the
 * agent then drops the stored ones (they fault back through the swap
 * channel) and unprotects all. */
typedef struct SpProtoEvict {
    uint32_t max;
    uint32_t min_idle;
} SpProtoEvict;

/* M_EVICT_DONE, per page: keep it; it is stored (drop it: it faults back
 * through the swap channel); it is all zero (drop it as a zero page: it
 * takes no slot and is no longer out; only to an agent that said
 * SP_PROTO_AGENT_DROPS_ZERO). */
#define SP_PROTO_EVICT_KEEP   0
#define SP_PROTO_EVICT_STORED 1
#define SP_PROTO_EVICT_ZERO   2

typedef struct SpProtoEvicted {
    uint32_t n; /* u64 gfns follow; fds[0]: blob of n x 4096 bytes */
    uint32_t pad;
} SpProtoEvicted;

/* M_SWAP_STORE: the swap store's descriptors, in this order: metadata,
 * compressed tier (if has_tier), swap file.  nfds 0: none.  flags 0: an
 * offer (the VM keeps its store too until a commit); COMMIT: this VM's
 * pages are in that store now, it is the one to keep (the same
 * descriptors again, so that a VM process of an older samepage, which
 * reads no flags, keeps them too; the reply carries none). */
#define SP_PROTO_STORE_COMMIT 1u
typedef struct SpProtoSwapStore {
    uint32_t has_tier;
    uint32_t flags; /* requests: SP_PROTO_STORE_*; replies: SP_PROTO_AGENT_* (0: an older agent) */
} SpProtoSwapStore;
/* In the reply: the agent drops an all-zero page it is told to
 * (SP_PROTO_EVICT_ZERO) as a zero page of its own, so that every page it
 * has out has a slot (one out without a slot was lost, not all zero), and
 * it takes SP_PROTO_SWAPANS_LOST. */
#define SP_PROTO_AGENT_DROPS_ZERO 1u

/* A fault on a page that is not there. */
typedef struct SpProtoSwapIn {
    uint64_t gfn;
    uint32_t kind;   /* SP_PROTO_SWAPIN_* */
    uint32_t space;  /* FRAME: the frame the page maps; LAYER: its layer file's inode, low half */
    uint32_t off;    /* FRAME */
    uint32_t ino_hi; /* LAYER: the inode's high half (0 and 0 from an older VM process: any) */
} SpProtoSwapIn;
#define SP_PROTO_SWAPIN_PAGE  1 /* a private page the agent evicted */
#define SP_PROTO_SWAPIN_FRAME 2 /* a merged page: its frame may have been evicted */
#define SP_PROTO_SWAPIN_LAYER 3 /* a clone's page still in its layer: page gfn of that file */

/* Read-ahead (optional, after a request's SpProtoSwapIn, and after the 4096
 * bytes of a PAGE request's COPY answer).  In a PAGE request: n candidate
 * gfns, other pages of the faulting page's aligned block that the VM gave
 * up, nearest first.  In its answer: the n the supervisor sends (a prefix
 * of its choice, within its limits), their gfns, then their contents, 4096
 * bytes each.  In a FRAME request: n frames (space << 32 | offset) that
 * other merged pages of the block map; in a LAYER request: n other pages
 * of the block that still map the same layer file.  Their answer (WAKE)
 * carries nothing: those of them that were out are back in their files,
 * within the supervisor's limits.  A request without it gets an answer
 * without it (a VM process started by an older samepaged, which also
 * ignores it in FRAME and LAYER requests), and one with n = 0 is plain. */
typedef struct SpProtoSwapAhead {
    uint32_t n;
    uint32_t pad;
} SpProtoSwapAhead;
#define SP_PROTO_SWAP_AHEAD_MAX 14 /* 15 pages in one answer: under SP_PROTO_MAX_MSG */

typedef struct SpProtoSwapAnswer {
    uint32_t how; /* SP_PROTO_SWAPANS_*: copy the 4096 bytes that follow, or wake */
    uint32_t pad;
} SpProtoSwapAnswer;
#define SP_PROTO_SWAPANS_COPY 1
#define SP_PROTO_SWAPANS_WAKE 2 /* the file's page is back: retry the fault */
/* The page's content is gone (its slot was lost, the store cannot read it
 * back): the VM cannot go on (only to an agent that said
 * SP_PROTO_AGENT_DROPS_ZERO).  The answer may be followed by why, text of
 * at most SP_PROTO_SWAP_LOST_WHY_MAX bytes (not NUL-terminated). */
#define SP_PROTO_SWAPANS_LOST      3
#define SP_PROTO_SWAP_LOST_WHY_MAX 240

/* --- messages --- */

typedef struct SpProtoMsg {
    SpProtoHdr hdr;
    uint8_t *payload;          /* hdr.len bytes (g_free) */
    int fds[SP_PROTO_MAX_FDS]; /* hdr.nfds received descriptors (owned) */
} SpProtoMsg;

void sp_proto_msg_clear(SpProtoMsg *m); /* closes fds not taken (-1) */
/* Take descriptor i (the message no longer owns it); -1 if absent. */
int sp_proto_msg_take_fd(SpProtoMsg *m, uint32_t i);

/* Name of a type, for messages ("CLONE_SAVE"); "unknown" otherwise. */
const char *sp_proto_type_name(uint16_t type);

/* Send one message; fds are not closed.  flags: MSG_DONTWAIT or 0. */
bool sp_proto_send(int sock, uint16_t type, uint32_t seq, uint32_t pflags, const void *payload,
                   uint32_t len, const int *fds, uint32_t nfds, int sendflags, GError **error);
/* Reply to request `req`; an error reply carries err->message. */
bool sp_proto_reply(int sock, const SpProtoHdr *req, const void *payload, uint32_t len,
                    const int *fds, uint32_t nfds, GError **error);
bool sp_proto_reply_error(int sock, const SpProtoHdr *req, const char *message);
/* Receive and check one message; timeout_ms < 0 waits forever.  An error
 * reply is a message too: sp_proto_is_error() tells (and sets its text). */
bool sp_proto_recv(int sock, SpProtoMsg *m, int timeout_ms, GError **error);
bool sp_proto_is_error(const SpProtoMsg *m, GError **error);
/* Check a received header and payload length (the decoder's rules; the
 * fuzzer calls it on raw bytes). */
bool sp_proto_check(const SpProtoHdr *h, size_t packet_len, uint32_t nfds, GError **error);

/* A connected pair of channel sockets (SOCK_SEQPACKET, close-on-exec). */
bool sp_proto_socketpair(int sv[2], GError **error);

/* --- blobs: sealed memfds --- */

/* A new memfd with `len` bytes copied from data, sealed against writes,
 * growth and shrinking; -1 with an error. */
int sp_proto_blob_new(const void *data, uint64_t len, GError **error);
/* Map blob fd read-only after checking its seals and that its size is
 * exactly `expect` (or at most `max` when expect is 0); *len is set. */
void *sp_proto_blob_map(int fd, uint64_t expect, uint64_t max, uint64_t *len, GError **error);
void sp_proto_blob_unmap(void *p, uint64_t len);

/* --- payload reader: bounds-checked fields --- */

typedef struct SpProtoReader {
    const uint8_t *p;
    size_t left;
    bool bad; /* a read ran past the end */
} SpProtoReader;

static inline SpProtoReader sp_proto_reader(const SpProtoMsg *m)
{
    return (SpProtoReader){.p = m->payload, .left = m->hdr.len, .bad = false};
}
/* Copy n bytes out (zeroes and marks bad if fewer are left). */
bool sp_proto_read(SpProtoReader *r, void *out, size_t n);
/* A pointer to n bytes in place, or NULL (and bad). */
const void *sp_proto_read_ptr(SpProtoReader *r, size_t n);
/* count items of `size` bytes in place; NULL if they do not fit. */
const void *sp_proto_read_array(SpProtoReader *r, uint64_t count, size_t size);
/* A string of `len` bytes (not NUL-terminated on the wire), as a new
 * NUL-terminated string with control characters other than \t replaced. */
char *sp_proto_read_text(SpProtoReader *r, size_t len);

/* --- payload writer --- */

typedef struct SpProtoWriter {
    GByteArray *buf;
} SpProtoWriter;
static inline void sp_proto_put(SpProtoWriter *w, const void *p, size_t n)
{
    g_byte_array_append(w->buf, p, (guint)n);
}

#endif
