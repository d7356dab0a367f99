/* SPDX-License-Identifier: MIT */
/*
 * vm.h - one virtual machine: its KVM VM, guest RAM, vCPU threads, devices.
 *
 * Lifecycle:  sp_vm_new() -> CREATED (RAM mapped, image loaded, vCPUs made)
 *             sp_vm_start() -> RUNNING (one thread per vCPU)
 *             then one of EXITED (guest asked to exit: exit_status),
 *             CRASHED (unexpected exit: reason + register dump) or
 *             STOPPED (sp_vm_request_stop() from the host).
 *             sp_vm_wait() joins the threads; sp_vm_free() releases all.
 *
 * A crash ends only that VM: nothing a guest does stops the process.
 *
 * Events (console lines, phases, results, integrity errors, rounds, the
 * final state) go to the SpVmEvents callbacks, called from vCPU threads:
 * they must be thread-safe and quick.  The VM also keeps running totals that
 * any thread may read with sp_vm_get_info().
 *
 * Locking: vm->lock protects state, reason, exit_status and the results
 * table; counters are atomics.  Devices take their own locks.  Never call a
 * callback with vm->lock held.
 */
#ifndef SAMEPAGE_VMM_VM_H
#define SAMEPAGE_VMM_VM_H

#include <stdbool.h>
#include <stdint.h>
#include <gio/gio.h>

#include "rmap/guest-mem.h"
#include "vmm/kvm.h"
#include "vmm/vm-config.h"
#include "vmm/vm-error.h"

typedef struct SpVm SpVm;

typedef enum SpVmState {
    SP_VM_CREATED,
    SP_VM_RUNNING,
    SP_VM_EXITED,  /* the guest asked to exit; see exit_status */
    SP_VM_CRASHED, /* unexpected vCPU exit; see reason */
    SP_VM_STOPPED, /* stopped by the host */
} SpVmState;

const char *sp_vm_state_name(SpVmState s);

typedef struct SpVmEvents {
    void (*console)(SpVm *vm, const char *line, void *opaque);
    void (*phase)(SpVm *vm, uint64_t n, const char *label, void *opaque);
    void (*result)(SpVm *vm, const char *key, uint64_t value, void *opaque);
    void (*integrity)(SpVm *vm, uint64_t gpa, uint64_t expected, uint64_t found, void *opaque);
    void (*round)(SpVm *vm, uint64_t round, uint64_t verified, uint64_t rewritten, void *opaque);
    void (*ended)(SpVm *vm, SpVmState state, void *opaque); /* once, when it leaves RUNNING */
    void *opaque;
} SpVmEvents;

/* A snapshot of a VM's status for display. */
typedef struct SpVmInfo {
    SpVmState state;
    int exit_status;           /* when EXITED */
    uint64_t rounds;           /* SP_CTL_ROUND reports */
    uint64_t pages_verified;   /* in the last round */
    uint64_t pages_rewritten;  /* total */
    uint64_t integrity_errors; /* SP_CTL_INTEGRITY reports */
    uint64_t phase;            /* last phase reported */
    double seconds;            /* since start */
} SpVmInfo;

typedef struct SpEngine SpEngine;
typedef struct SpEngineVm SpEngineVm;

SpVm *sp_vm_new(SpKvm *kvm, const SpVmConfig *cfg, uint64_t vm_id, const SpVmEvents *events,
                GError **error);
/* Share this VM's memory through `engine` (unless its config opts out):
 * attached at sp_vm_start(), detached in sp_vm_free() before RAM goes away.
 * [share_start, share_end) limits sharing to part of RAM (0, 0 = all). */
void sp_vm_set_engine(SpVm *vm, SpEngine *engine, uint64_t share_start, uint64_t share_end);
SpEngineVm *sp_vm_engine_handle(SpVm *vm); /* NULL if not attached */
bool sp_vm_start(SpVm *vm, GError **error);
void sp_vm_request_stop(SpVm *vm); /* any thread, idempotent */
void sp_vm_wait(SpVm *vm);         /* joins every vCPU thread */
void sp_vm_free(SpVm *vm);

const char *sp_vm_name(const SpVm *vm);
uint64_t sp_vm_id(const SpVm *vm);
const SpVmConfig *sp_vm_config(const SpVm *vm);
SpGuestMem *sp_vm_mem(SpVm *vm);
int sp_vm_kvm_fd(const SpVm *vm); /* the KVM VM fd (for dirty logging) */
#define SP_VM_RAM_SLOT 0          /* memslot holding all of guest RAM */

void sp_vm_get_info(SpVm *vm, SpVmInfo *info);
uint64_t sp_vm_cpu_time_ns(SpVm *vm); /* CPU time of all vCPU threads so far */
/* Post a command for the payload (SP_Q_COMMAND); returns its sequence number. */
uint32_t sp_vm_send_command(SpVm *vm, uint8_t opcode, uint32_t arg);
char *sp_vm_get_reason(SpVm *vm); /* crash/stop reason, or NULL */
/* Value a guest reported with SP_CTL_RESULT, if any. */
bool sp_vm_get_result(SpVm *vm, const char *key, uint64_t *value);

/* Clones (vm-clone.c).  The source must be a running payload VM.  It is
 * paused once, its RAM becomes the frame file of a new clone group that it
 * and the children map copy-on-write, and each child starts from the
 * source's vCPU state with the same config under a new name and id.  The
 * children's control port answers SP_Q_CLONE_GENERATION = source's + 1
 * and a distinct SP_Q_CLONE_ID.  Children that share the source's engine
 * setting attach to it at start; the source is detached while its RAM is
 * replaced and attached again before it resumes. */
#define SP_VM_CLONE_MAX 64
typedef struct SpVmCloneTimes {
    double pause_ms;          /* pause requested -> source running again */
    double park_ms;           /* ... of which waiting for the vCPUs to park */
    double copy_ms;           /* ... copying RAM into the group file */
    double remap_ms;          /* ... replacing the source's RAM by the file */
    double children_ms;       /* source parked -> every child running */
    uint64_t pages_copied;    /* pages written to a group file while paused */
    uint64_t pages_precopied; /* ... and before the pause, while it ran */
    double precopy_ms;        /* time of that pre-copy */
} SpVmCloneTimes;
SpVm *sp_vm_clone(SpVm *src, const char *name, uint64_t vm_id, const SpVmEvents *ev,
                  GError **error);
/* `n` (1..SP_VM_CLONE_MAX) children with one pause: names[i], ids[i];
 * out[i] receives them.  All or nothing; `times` may be NULL. */
bool sp_vm_clone_many(SpVm *src, uint32_t n, const char *const *names, const uint64_t *ids,
                      const SpVmEvents *ev, SpVm **out, SpVmCloneTimes *times, GError **error);
uint64_t sp_vm_clone_generation(const SpVm *vm); /* 0 = not a clone */
/* Clone sharing (rmap/rmap.h): pages that map a frame of the VM's clone
 * group files now, and the id of the group of its top layer (0: none).
 * Node-wide per-group figures: sp_rmap_group_stats(). */
uint64_t sp_vm_clone_shared_pages(const SpVm *vm);
uint64_t sp_vm_clone_group_id(const SpVm *vm);
/* The VM's entry in the reverse map (rmap/rmap.h); never NULL once created. */
struct SpRmapVm *sp_vm_rmap(SpVm *vm);

/* Park every vCPU thread outside KVM_RUN (their registers stay in KVM,
 * with any pending I/O completed) and wait until all are parked; false
 * with an error if the VM is not running or they do not park in time.
 * sp_vm_resume() lets them go on.  One pauser at a time. */
bool sp_vm_pause(SpVm *vm, GError **error);
void sp_vm_resume(SpVm *vm);

#endif
