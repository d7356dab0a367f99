/* SPDX-License-Identifier: MIT */
/* vm-state.c - names of a VM's states (vm-state.h). */
#include "vmm/vm-state.h"

const char *sp_vm_state_name(SpVmState s)
{
    switch (s) {
    case SP_VM_CREATED:
        return "created";
    case SP_VM_RUNNING:
        return "running";
    case SP_VM_EXITED:
        return "exited";
    case SP_VM_CRASHED:
        return "crashed";
    case SP_VM_STOPPED:
        return "stopped";
    }
    return "unknown";
}
