/* SPDX-License-Identifier: MIT */
/*
 * vm-priv.h - SpMachine's insides, shared by the files that implement a VM
 * (vm.c, vcpu.c, ctlport.c, boot-payload.c).  Nothing outside vmm/ core
 * includes this; everyone else uses vm.h.
 */
#ifndef SAMEPAGE_VMM_VM_PRIV_H
#define SAMEPAGE_VMM_VM_PRIV_H

#include <pthread.h>
#include <linux/kvm.h>

#include "vmm/machine/iobus.h"
#include "vmm/linux/power.h"
#include "vmm/devices/uart8250.h"
#include "vmm/machine/machine.h"

typedef struct SpVcpu {
    SpMachine *vm;
    uint32_t index;            /* 0 .. nvcpus-1 */
    int fd;                    /* KVM vCPU fd */
    struct kvm_run *run;       /* mmap'ed kvm_run area */
    GThread *thread;           /* NULL until started */
    pthread_t tid;             /* for kicking it out of KVM_RUN */
    volatile int tid_valid;    /* tid is set (atomic) */
    struct kvm_regs init_regs; /* state to start from */
    struct kvm_sregs init_sregs;
    bool start_runnable; /* start at init_regs even if not the BSP */
} SpVcpu;

struct SpMachine {
    SpKvm *kvm;      /* shared, not owned */
    SpVmConfig *cfg; /* owned copy */
    uint64_t id;
    int fd;       /* KVM VM fd */
    bool irqchip; /* in-kernel irqchip created */
    SpGuestMem mem;
    SpMachineEvents ev;
    SpIoBus io;
    SpUart *uart;
    SpLinuxPower power; /* Linux guests: power-off/reboot ports */
    SpVcpu *vcpus;
    uint32_t nvcpus;
    int stop;        /* atomic: vCPUs must leave KVM_RUN */
    gint64 start_us; /* monotonic time of sp_machine_start() */
    gint64 end_us;   /* ... and of leaving RUNNING */

    struct SpAgent *agent; /* the VM side of the sharing engine (VMM writes go to it) */

    GMutex lock; /* protects the fields below */
    SpVmState state;
    int exit_status;     /* when EXITED */
    char *reason;        /* crash/stop reason */
    GHashTable *results; /* key -> uint64 value (boxed) */

    /* Counters, atomics. */
    uint64_t rounds;
    uint64_t pages_verified;
    uint64_t pages_rewritten;
    uint64_t integrity_errors;
    uint64_t phase;
    uint64_t cpu_ns_done; /* CPU time of vCPU threads that ended */
    uint64_t command;     /* SP_Q_COMMAND word (atomic) */

    /* Pause (clones, suspend): a vCPU that sees pause_req > 0 parks on
     * pause_cond until it drops to 0 or the VM stops.  pause_lock protects
     * parked and alive and serializes changes of pause_req, which vCPUs
     * read without it (atomic). */
    GMutex pause_lock;
    GCond pause_cond;
    int pause_req;   /* atomic: pauses held (they nest) */
    int suspended;   /* atomic: one of them is the supervisor's suspend */
    uint32_t parked; /* vCPU threads parked now */
    uint32_t alive;  /* vCPU threads started and not yet returned */

    /* Clone identity, answered by the control port (immutable once running). */
    uint64_t clone_generation; /* 0 = not a clone */
    uint64_t clone_id;         /* distinct among clones of this process */
    bool ram_file_backed;      /* RAM maps a clone group file (set while paused) */
    struct SpRmapVm *rmap;     /* its place in the reverse map (rmap/rmap.h) */
    int precopy;               /* atomic: a clone is copying RAM while it runs */
    GArray *precopy_pages;     /* gfns VMM threads wrote meanwhile (under lock) */
};

/* Leave RUNNING for `state` (first caller wins) and kick every vCPU. */
void sp_machine_end(SpMachine *vm, SpVmState state, int status, const char *reason);

/* Create a VM; with boot=false its RAM stays empty and its vCPUs get no
 * initial state (a clone fills both in). */
SpMachine *sp_machine_new_internal(SpKvm *kvm, const SpVmConfig *cfg, uint64_t vm_id,
                                   const SpMachineEvents *events, bool boot, GError **error);

/* A VMM thread wrote guest RAM [gpa, gpa+len): a clone's pre-copy must
 * copy those pages again (KVM's dirty log does not show them). */
void sp_machine_note_vmm_write(SpMachine *vm, uint64_t gpa, uint64_t len);

/* vcpu.c */
bool sp_vcpu_create(SpMachine *vm, SpVcpu *vcpu, uint32_t index, GError **error);
void sp_vcpu_destroy(SpVcpu *vcpu);
bool sp_vcpu_set_initial_state(SpVcpu *vcpu, GError **error);
gpointer sp_vcpu_thread(gpointer vcpu);
void sp_vcpu_kick(SpVcpu *vcpu);
char *sp_vcpu_dump_regs(SpVcpu *vcpu);

/* ctlport.c */
bool sp_ctlport_io(void *vm, uint16_t port, uint8_t *data, uint32_t size, bool is_write);

/* boot-payload.c: load the payload and the image blob, build page tables and
 * boot info, and fill every vCPU's initial registers. */
bool sp_boot_payload(SpMachine *vm, GError **error);

#endif
