/* SPDX-License-Identifier: MIT */
/*
 * vm-state.h - a VM's states and status snapshot, the same on both sides of
 * the process split: the machine in the VM process (vmm/machine/) and the
 * supervisor's view of it (vmm/super/).
 */
#ifndef SAMEPAGE_VMM_VM_STATE_H
#define SAMEPAGE_VMM_VM_STATE_H

#include <stdint.h>

typedef enum SpVmState {
    SP_VM_CREATED,
    SP_VM_RUNNING,
    SP_VM_EXITED,  /* the guest asked to exit; see exit_status */
    SP_VM_CRASHED, /* unexpected vCPU exit, or the VM process died; see reason */
    SP_VM_STOPPED, /* stopped by the host */
} SpVmState;

const char *sp_vm_state_name(SpVmState s);

/* The reason of an EXITED VM whose guest asked for a reboot (a Linux
 * guest's reset port): the supervisor applies its reboot action. */
#define SP_VM_REASON_REBOOT "guest rebooted"

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

#endif
