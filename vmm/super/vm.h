/* SPDX-License-Identifier: MIT */
/*
 * vm.h - a VM as its supervisor sees it: one `samepage-vm` process
 * (docs/process-model.md), started, watched and stopped from here.
 *
 * Lifecycle:  sp_vm_new() -> CREATED (the process runs; RAM mapped, image
 *             loaded, vCPUs made, sandbox in place)
 *             sp_vm_start() -> RUNNING
 *             then EXITED (the guest asked to: exit_status), CRASHED (an
 *             unexpected exit of the guest, or the VM process died) or
 *             STOPPED (sp_vm_request_stop()).
 *             sp_vm_wait() waits for the end; sp_vm_free() detaches the VM
 *             from the engine, lets the process exit and reaps it.
 * sp_vm_attach() takes over a VM process that another supervisor started
 * (samepaged after a restart) through its re-attach socket.
 *
 * Events (console lines, phases, results, integrity errors, rounds, the end)
 * reach the SpVmEvents callbacks on the VM's reader thread: they must be
 * thread-safe and quick.  sp_vm_get_info() and sp_vm_get_result() answer
 * from what the events reported (no round trip).
 *
 * Locking: vm->lock protects the status mirror and the pending replies;
 * send_lock serializes sends on the control channel.  Never call a callback
 * with a lock held.
 */
#ifndef SAMEPAGE_VMM_SUPER_VM_H
#define SAMEPAGE_VMM_SUPER_VM_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <gio/gio.h>

#include "vmm/vm-config.h"
#include "vmm/vm-state.h"

typedef struct SpVm SpVm;
typedef struct SpEngine SpEngine;
typedef struct SpEngineVm SpEngineVm;
struct SpRmapVm;

typedef struct SpVmEvents {
    void (*console)(SpVm *vm, const char *line, void *opaque);
    void (*phase)(SpVm *vm, uint64_t n, const char *label, void *opaque);
    void (*result)(SpVm *vm, const char *key, uint64_t value, void *opaque);
    void (*integrity)(SpVm *vm, uint64_t gpa, uint64_t expected, uint64_t found, void *opaque);
    void (*round)(SpVm *vm, uint64_t round, uint64_t verified, uint64_t rewritten, void *opaque);
    void (*ended)(SpVm *vm, SpVmState state, void *opaque); /* once, when it leaves RUNNING */
    void *opaque;
} SpVmEvents;

/* What every VM process a supervisor starts gets. */
typedef struct SpVmHost {
    char *vm_binary;          /* samepage-vm */
    char *kvm_path;           /* /dev/kvm */
    char *runtime_dir;        /* re-attach sockets in DIR/vms (samepaged), or NULL */
    char *vm_user;            /* the unprivileged user VM processes run as */
    char *seccomp;            /* "on", "log" or "off" */
    bool die_with_supervisor; /* samepage run: VM processes die with it */
    bool test_hooks;          /* tests: VM processes accept TEST_HOOK */
    bool mergeable;           /* --engine=ksm: guest RAM MADV_MERGEABLE */
    int max_vcpus;            /* KVM's limit, read once */
} SpVmHost;

/* A host with defaults: samepage-vm from $SAMEPAGE_VM, next to the running
 * binary (build tree) or the install directory; /dev/kvm opened once to
 * check it and read its limits. */
SpVmHost *sp_vm_host_new(const char *kvm_path, GError **error);
void sp_vm_host_free(SpVmHost *h);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpVmHost, sp_vm_host_free)

/* Start a VM process for cfg and wait until its machine is built (or the
 * error that stopped it).  lv_id/uuid: the libvirt identity it keeps
 * across supervisor restarts (-1/NULL outside samepaged); console_fd: its
 * console log (-1: none; not taken). */
SpVm *sp_vm_new(SpVmHost *host, const SpVmConfig *cfg, uint64_t vm_id, const SpVmEvents *events,
                GError **error);
SpVm *sp_vm_new_full(SpVmHost *host, const SpVmConfig *cfg, uint64_t vm_id, int32_t lv_id,
                     const uint8_t *uuid, int console_fd, const SpVmEvents *events, GError **error);
/* Take over a running VM process through its re-attach socket. */
SpVm *sp_vm_attach(SpVmHost *host, const char *socket_path, const SpVmConfig *cfg,
                   const SpVmEvents *events, GError **error);

/* Share this VM's memory through `engine` (unless its config opts out):
 * attached at sp_vm_start() (or now, for a VM that runs already),
 * detached in sp_vm_free(). */
void sp_vm_set_engine(SpVm *vm, SpEngine *engine, uint64_t share_start, uint64_t share_end);
bool sp_vm_engine_attach(SpVm *vm, GError **error);
SpEngineVm *sp_vm_engine_handle(SpVm *vm); /* NULL if not attached */
/* Its memory limit now (bytes, 0: none; at least SP_VM_MEM_LIMIT_MIN):
 * the engine's swap keeps it (docs/swap.md).  false with a one-line error
 * when the VM does not share (share=no) or swap is off. */
bool sp_vm_set_mem_limit(SpVm *vm, uint64_t bytes, GError **error);
/* NUMA (vm-numa.c, docs/numa.md): move the running VM to a new memory
 * policy (waits for the move); its policy now (*nodes: g_free); its
 * resident guest pages per host node, from the kernel (out: guint64 per
 * node, up to the last node with pages). */
bool sp_vm_set_numa(SpVm *vm, SpNumaMode mode, const char *nodes, GError **error);
void sp_vm_numa_policy(SpVm *vm, SpNumaMode *mode, char **nodes);
bool sp_vm_numa_pages(SpVm *vm, GArray *out, GError **error);
/* Forget the last answer (its pages moved: a frame re-homing pass). */
void sp_vm_numa_pages_stale(SpVm *vm);
/* Pages the VM's NUMA moves brought to their new nodes, since it started. */
uint64_t sp_vm_numa_migrated(SpVm *vm);
bool sp_vm_start(SpVm *vm, GError **error);
void sp_vm_request_stop(SpVm *vm); /* any thread, idempotent */
/* Stop the guest and wait for its end: STOP, then up to 10 s for the
 * guest to end; a VM process whose guest has not ended by then is killed
 * (event=vm-killed; its end is STOPPED, with a reason that says so, and
 * neither the engine nor the reader take it for a crash).  true if the
 * guest stopped by itself.  Not on the reader thread. */
bool sp_vm_stop(SpVm *vm);
/* Stop the guest now, without waiting: STOP and SIGKILL of the VM process
 * at once (event=vm-killed; its end is STOPPED, "the VM process was killed:
 * why", reported later like any end).  For callers that gave the guest its
 * time themselves (samepage run's second signal or its 10 s).  false if
 * the VM had ended or was killed already.  Any thread but the reader. */
bool sp_vm_kill(SpVm *vm, const char *why);
/* Its process was killed by sp_vm_kill or sp_vm_stop's timeout. */
bool sp_vm_was_killed(SpVm *vm);
/* Wait for the end (at most timeout_s; < 0 forever); false on timeout. */
bool sp_vm_wait_timeout(SpVm *vm, double timeout_s);
void sp_vm_wait(SpVm *vm);
void sp_vm_free(SpVm *vm);
/* Let go of a running VM without stopping it (samepaged stopping): its
 * process goes on and waits to be re-attached; its frames stay. */
void sp_vm_release(SpVm *vm);
/* Give the VM process its libvirt identity and console log (a clone child,
 * after the clone); console_fd -1: none (not taken). */
bool sp_vm_set_identity(SpVm *vm, int32_t lv_id, const uint8_t *uuid, int console_fd,
                        GError **error);

const char *sp_vm_name(const SpVm *vm);
uint64_t sp_vm_id(const SpVm *vm);
int32_t sp_vm_lv_id(const SpVm *vm);
const uint8_t *sp_vm_uuid(const SpVm *vm);
const SpVmConfig *sp_vm_config(const SpVm *vm);
pid_t sp_vm_pid(const SpVm *vm);
/* Where guest RAM is mapped in the VM process (for /proc/PID/pagemap). */
uint64_t sp_vm_ram_base(const SpVm *vm);
/* Read guest RAM [gpa, gpa+len) through /proc/PID/mem (tests, root). */
bool sp_vm_read_ram(SpVm *vm, uint64_t gpa, void *buf, uint64_t len, GError **error);

void sp_vm_get_info(SpVm *vm, SpVmInfo *info);
uint64_t sp_vm_cpu_time_ns(SpVm *vm);    /* CPU time of its vCPU threads so far */
uint64_t sp_vm_resident_pages(SpVm *vm); /* of its guest RAM, now */
/* Post a command for the payload (SP_Q_COMMAND); returns its sequence number (0: failed). */
uint32_t sp_vm_send_command(SpVm *vm, uint8_t opcode, uint32_t arg);
char *sp_vm_get_reason(SpVm *vm); /* crash/stop reason, or NULL */
/* Did it end because its process died (killed, a bug), not its guest? */
bool sp_vm_process_died(const SpVm *vm);
bool sp_vm_get_result(SpVm *vm, const char *key, uint64_t *value);
/* Tests (host->test_hooks): make the VM process misbehave (vmproc.h hooks). */
bool sp_vm_test_hook(SpVm *vm, uint32_t hook, GError **error);

/* Its vCPU threads, from /proc (vm-threads.c: no round trip, so it answers
 * while the VM process is busy): appends SpVmVcpu by index. */
typedef struct SpVmVcpu {
    uint32_t index;     /* vCPU number */
    pid_t tid;          /* its thread in the VM process */
    uint64_t cpu_ns;    /* CPU time it used so far */
    int cpu;            /* host CPU it last ran on */
    cpu_set_t affinity; /* host CPUs it may run on */
} SpVmVcpu;
bool sp_vm_vcpus(SpVm *vm, GArray *out, GError **error);
/* Pin every thread of its process to `set` (threads started later inherit
 * it: call before sp_vm_start to cover the vCPUs). */
bool sp_vm_set_affinity(SpVm *vm, const cpu_set_t *set, GError **error);

/* Suspend the guest (its vCPUs park until sp_vm_resume; pausing a
 * suspended VM is a no-op, resuming one that is not suspended an error),
 * and whether it is suspended (also after a re-attach: the VM process
 * reports it). */
bool sp_vm_pause(SpVm *vm, GError **error);
bool sp_vm_resume(SpVm *vm, GError **error);
bool sp_vm_suspended(SpVm *vm);

/* Clones (vm-clone.c).  The source must be a running payload VM.  Its
 * process pauses once and makes the layer file of a new clone group that
 * it and the children map copy-on-write; each child is a new VM process
 * that starts from the source's vCPU state with the same config under a
 * new name and id. */
#define SP_VM_CLONE_MAX 64
typedef struct SpVmCloneTimes {
    double pause_ms;          /* pause requested -> source running again */
    double park_ms;           /* ... of which waiting for the vCPUs to park */
    double copy_ms;           /* ... copying RAM into the group file */
    double remap_ms;          /* ... replacing the source's RAM by the file */
    double children_ms;       /* clone requested -> every child running */
    uint64_t pages_copied;    /* pages written to a group file while paused */
    uint64_t pages_precopied; /* ... and before the pause, while it ran */
    double precopy_ms;        /* time of that pre-copy */
} SpVmCloneTimes;
SpVm *sp_vm_clone(SpVm *src, const char *name, uint64_t vm_id, const SpVmEvents *ev,
                  GError **error);
bool sp_vm_clone_many(SpVm *src, uint32_t n, const char *const *names, const uint64_t *ids,
                      const SpVmEvents *ev, SpVm **out, SpVmCloneTimes *times, GError **error);
uint64_t sp_vm_clone_generation(const SpVm *vm); /* 0 = not a clone */
uint64_t sp_vm_clone_shared_pages(SpVm *vm);
uint64_t sp_vm_clone_group_id(const SpVm *vm);
/* The VM's entry in the supervisor's reverse map (rmap/rmap.h). */
struct SpRmapVm *sp_vm_rmap(SpVm *vm);

#endif
