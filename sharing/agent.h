/* SPDX-License-Identifier: MIT */
/*
 * agent.h - the VM side of the sharing engine, in the VM process
 * (docs/process-model.md, docs/sharing.md).
 *
 * The engine is split where the address spaces split.  The supervisor
 * keeps the index (sharing/engine.h: frames, the stable index, the
 * unstable table, counters, the scan schedule); each VM process keeps an
 * agent that knows its own pages: their states, their hashes, KVM's dirty
 * log, and the only code that changes how a page of this VM is mapped
 * (write-protect, compare, remap: agent-merge.c).  The index drives the
 * agent over the memory channel (vmm/proto/proto.h, SP_PROTO_M_*): begin a
 * pass (harvest the dirty log), scan a batch (hash, drop zero pages, return
 * candidates), send contents (for a new frame), merge pages onto frames,
 * unmerge everything, report the state (after a supervisor restart), sync
 * with pagemap.  The agent checks every request against its own state and
 * compares bytes itself before any merge: a confused or lying supervisor
 * can fail merges, never corrupt the guest.
 *
 * A frame is named by (space, page offset): space is a small number the
 * index gave a descriptor with M_SPACE (its share set's pool, or a clone
 * group's file), mapped read-only here.
 *
 * Threads: the agent thread serves the memory channel; VMM threads call
 * sp_agent_mark_dirty() (lock-free); the clone code takes the agent lock
 * around what it does to RAM (sp_agent_lock()).  Without a channel (no
 * supervisor, or the VM is not shared) the agent does nothing but record
 * VMM writes.
 */
#ifndef SAMEPAGE_SHARING_AGENT_H
#define SAMEPAGE_SHARING_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <gio/gio.h>

#include "rmap/guest-mem.h"
#include "rmap/rmap.h"

typedef struct SpAgent SpAgent;

/* What the agent needs of its VM. */
typedef struct SpAgentVm {
    const char *name; /* for messages */
    SpGuestMem *mem;  /* RAM with its write-protect userfaultfd */
    int kvm_vm_fd;    /* memslot `slot` covers all of RAM with dirty logging */
    uint32_t slot;
    SpRmapVm *rmap; /* the VM's off bits (rmap/rmap.h) */
    /* Called on the agent's thread before each request, and on its swap
     * thread before it resolves a fault (NULL: none): the VM process gives
     * them the process's NUMA policy, so the private copies an unmerge
     * makes and the pages swapped back in land on the VM's nodes. */
    void (*thread_sync)(void);
    /* Called on the swap thread when a page the guest waits for cannot
     * come back (samepaged lost its content): the VM must end, with
     * `reason`, before the guest runs on.  NULL: none. */
    void (*lost)(const char *reason, void *opaque);
    void *opaque; /* lost's */
} SpAgentVm;

SpAgent *sp_agent_new(const SpAgentVm *vm, GError **error);
/* The guest ended: merge no more (figures are still served).  Free ends the
 * thread; the RAM must still be mapped. */
void sp_agent_stop(SpAgent *a);
void sp_agent_free(SpAgent *a);
/* Serve the memory channel `fd` (taken; a previous one is closed). */
void sp_agent_set_channel(SpAgent *a, int fd);
/* A VMM thread wrote guest RAM [gpa, gpa+len): KVM's log does not show it. */
void sp_agent_mark_dirty(SpAgent *a, uint64_t gpa, uint64_t len);
/* Is the VM attached to an index (merges may exist)? */
bool sp_agent_attached(SpAgent *a);
bool sp_agent_attached_locked(SpAgent *a); /* the caller holds sp_agent_lock() */
/* What the agent knows of the page at gpa, one line (its kind, flags, the
 * frame it maps and whether that frame's page is in the file): for a log
 * line beside an integrity error.  Lock-free; a moment's view. */
char *sp_agent_describe_page(SpAgent *a, uint64_t gpa);

/* The clone code, around what it does to RAM.  While held, no request is
 * served. */
void sp_agent_lock(SpAgent *a);
void sp_agent_unlock(SpAgent *a);
/* For a NUMA move of guest RAM (vmm/vmproc/numa.c), the caller holding
 * sp_agent_lock(): how many pages from gfn on (1..max) sit in the same
 * kind of mapping as gfn's, and whether that is anonymous memory (*anon).
 * Only there may a memory policy be set with mbind: in a file's mapping -
 * a merged page maps a frame of samepaged's pool, a clone's RAM maps its
 * family's layer file - the kernel sets the policy of the file itself
 * (shmem_set_policy, MAP_PRIVATE or not), i.e. where samepaged allocates
 * the pool's frames for every VM.  RAM that maps a clone layout counts as
 * a file's throughout: which of its pages moved into anonymous mappings
 * of their own is not recorded. */
uint64_t sp_agent_map_run_locked(SpAgent *a, uint64_t gfn, uint64_t max, bool *anon);
/* Bring every evicted page of the VM back (docs/swap.md): before RAM is
 * copied whole (a clone).  The caller holds sp_agent_lock(). */
void sp_agent_swap_drain(SpAgent *a);
/* Lock held: RAM was just replaced by a clone layer file (every page maps
 * its layer now): forget merges and zero pages; pages start over as
 * clone-shared.  The index learns it from the next M_REPORT. */
void sp_agent_reset_after_remap_locked(SpAgent *a);
/* Lock held or not: read pagemap; pages that left their clone layer are
 * marked off in the rmap (a VM outside the engine). */
bool sp_agent_sync(SpAgent *a, GError **error);

#endif
