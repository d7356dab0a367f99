/* SPDX-License-Identifier: MIT */
/*
 * machine.h - one virtual machine as the VM process runs it: its KVM VM,
 * guest RAM, vCPU threads and devices (the supervisor's view of a VM is
 * vmm/super/vm.h; docs/process-model.md).
 *
 * Lifecycle:  sp_machine_new() -> CREATED (RAM mapped, image loaded, vCPUs made)
 *             sp_machine_start() -> RUNNING (one thread per vCPU)
 *             then one of EXITED (guest asked to exit: exit_status),
 *             CRASHED (unexpected exit: reason + register dump) or
 *             STOPPED (sp_machine_request_stop() from the host).
 *             sp_machine_wait() joins the threads; sp_machine_free() releases all.
 *
 * A crash ends only that VM: nothing a guest does stops the process.
 *
 * Events (console lines, phases, results, integrity errors, rounds, the
 * final state) go to the SpMachineEvents callbacks, called from vCPU threads:
 * they must be thread-safe and quick.  The machine also keeps running totals
 * that any thread may read with sp_machine_get_info().
 *
 * Locking: m->lock protects state, reason, exit_status and the results
 * table; counters are atomics.  Devices take their own locks.  Never call a
 * callback with m->lock held.
 */
#ifndef SAMEPAGE_VMM_MACHINE_MACHINE_H
#define SAMEPAGE_VMM_MACHINE_MACHINE_H

#include <stdbool.h>
#include <stdint.h>
#include <gio/gio.h>

#include "rmap/guest-mem.h"
#include "vmm/machine/kvm.h"
#include "vmm/vm-config.h"
#include "vmm/vm-error.h"
#include "vmm/vm-state.h"

typedef struct SpMachine SpMachine;

typedef struct SpMachineEvents {
    void (*console)(SpMachine *vm, const char *line, void *opaque);
    void (*phase)(SpMachine *vm, uint64_t n, const char *label, void *opaque);
    void (*result)(SpMachine *vm, const char *key, uint64_t value, void *opaque);
    void (*integrity)(SpMachine *vm, uint64_t gpa, uint64_t expected, uint64_t found, void *opaque);
    void (*round)(SpMachine *vm, uint64_t round, uint64_t verified, uint64_t rewritten,
                  void *opaque);
    void (*ended)(SpMachine *vm, SpVmState state, void *opaque); /* once, when it leaves RUNNING */
    void *opaque;
} SpMachineEvents;

struct SpAgent;
struct SpRmapVm;

SpMachine *sp_machine_new(SpKvm *kvm, const SpVmConfig *cfg, uint64_t vm_id,
                          const SpMachineEvents *events, GError **error);
/* A clone child: RAM stays empty and the vCPUs get no initial state until
 * sp_machine_clone_load(). */
SpMachine *sp_machine_new_unbooted(SpKvm *kvm, const SpVmConfig *cfg, uint64_t vm_id,
                                   const SpMachineEvents *events, GError **error);
/* The VM side of the sharing engine: VMM writes to guest RAM are told to it. */
void sp_machine_set_agent(SpMachine *m, struct SpAgent *agent);
bool sp_machine_start(SpMachine *vm, GError **error);
void sp_machine_request_stop(SpMachine *vm); /* any thread, idempotent */
void sp_machine_wait(SpMachine *vm);         /* joins every vCPU thread */
void sp_machine_free(SpMachine *vm);
/* The host cannot let the guest run on (its memory is lost): CRASHED with
 * reason, the vCPUs kicked out of the guest.  Any thread, idempotent. */
void sp_machine_fail(SpMachine *vm, const char *reason);

const char *sp_machine_name(const SpMachine *vm);
uint64_t sp_machine_id(const SpMachine *vm);
const SpVmConfig *sp_machine_config(const SpMachine *vm);
SpGuestMem *sp_machine_mem(SpMachine *vm);
int sp_machine_kvm_fd(const SpMachine *vm); /* the KVM VM fd (for dirty logging) */
#define SP_MACHINE_RAM_SLOT 0               /* memslot holding all of guest RAM */

void sp_machine_get_info(SpMachine *vm, SpVmInfo *info);
uint64_t sp_machine_cpu_time_ns(SpMachine *vm); /* CPU time of all vCPU threads so far */
/* Post a command for the payload (SP_Q_COMMAND); returns its sequence number. */
uint32_t sp_machine_send_command(SpMachine *vm, uint8_t opcode, uint32_t arg);
char *sp_machine_get_reason(SpMachine *vm); /* crash/stop reason, or NULL */
/* Value a guest reported with SP_CTL_RESULT, if any. */
bool sp_machine_get_result(SpMachine *vm, const char *key, uint64_t *value);

uint64_t sp_machine_command_word(SpMachine *m); /* the SP_Q_COMMAND word */
/* A copy of the results table (key -> boxed uint64); g_hash_table_unref it. */
GHashTable *sp_machine_results(SpMachine *m);
/* The VM's entry in its own reverse map (rmap/rmap.h): its clone layout
 * and off bits; never NULL once created.  _off_fd: the memfd behind the
 * off bits, for the supervisor (not owned). */
struct SpRmapVm *sp_machine_rmap(SpMachine *m);
int sp_machine_rmap_off_fd(SpMachine *m);

/* Clones (machine-clone.c; the whole story is in vmm/super/vm-clone.c).
 * The children's control port answers SP_Q_CLONE_GENERATION = source's + 1
 * and a distinct SP_Q_CLONE_ID. */
uint64_t sp_machine_clone_generation(const SpMachine *m); /* 0 = not a clone */
uint64_t sp_machine_clone_id(const SpMachine *m);

/* Source, running: pause, save the vCPUs, push a layer (rmap/vm-layers.h)
 * with the agent's lock held by the caller, resume. */
typedef struct SpMachineCloneSave {
    void *vcpu_state; /* nvcpus x vcpu_state_len bytes (g_free) */
    uint32_t nvcpus, vcpu_state_len;
    int group_fd;   /* the new layer's file (read-write; close it) */
    uint8_t *layer; /* layered: the children's layer per page (g_free), else NULL */
    uint64_t npages;
    uint64_t pages_copied, pages_precopied;
    uint64_t park_ns, copy_ns, remap_ns, precopy_ns;
} SpMachineCloneSave;
bool sp_machine_clone_save(SpMachine *m, struct SpAgent *agent, SpMachineCloneSave *out,
                           GError **error);
void sp_machine_clone_save_clear(SpMachineCloneSave *out);

/* Child, unbooted: map the layout made of group_fds (oldest first; taken,
 * even on failure) and `layer` (one byte per page; NULL with one group),
 * load the vCPU state. */
typedef struct SpMachineCloneLoad {
    int *group_fds;
    uint32_t ngroups;
    const uint8_t *layer;
    const void *vcpu_state;
    uint32_t nvcpus, vcpu_state_len;
    uint64_t command, clone_generation, clone_id;
} SpMachineCloneLoad;
bool sp_machine_clone_load(SpMachine *m, const SpMachineCloneLoad *in, GError **error);

/* Park every vCPU thread outside KVM_RUN (their registers stay in KVM,
 * with any pending I/O completed) and wait until all are parked; false
 * with an error if the VM is not running or they do not park in time.
 * Pauses nest (a clone pausing a suspended VM leaves it suspended): each
 * sp_machine_resume() undoes one sp_machine_pause(), and the vCPUs go on
 * when none is left.  Callers on the control thread only. */
bool sp_machine_pause(SpMachine *vm, GError **error);
void sp_machine_resume(SpMachine *vm);
/* The supervisor's suspend (libvirt's virDomainSuspend): one pause held
 * until sp_machine_unsuspend().  Suspending a suspended VM is a no-op;
 * unsuspending one that is not suspended is an error. */
bool sp_machine_suspend(SpMachine *vm, GError **error);
bool sp_machine_unsuspend(SpMachine *vm, GError **error);
bool sp_machine_suspended(SpMachine *vm);
/* Make every vCPU leave the guest once and enter it again (a NUMA policy
 * changed: vm-placement.h); any thread. */
void sp_machine_kick_all(SpMachine *vm);

#endif
