/* SPDX-License-Identifier: MIT */
/*
 * linux-boot.h - boot a Linux bzImage in a samepage VM (64-bit boot protocol).
 *
 * Call order, from vm.c (see docs/linux-guests.md for the full contract):
 *   1. sp_guest_mem_init(), KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2, memslot 0.
 *   2. sp_linux_boot_prepare(cfg, mem, &st, error): reads cfg->kernel and
 *      cfg->initrd, checks them (one-line errors for a bad kernel, an initrd
 *      that does not fit, a command line that is too long, too much RAM or
 *      too many vCPUs), and writes into guest RAM: the protected-mode kernel,
 *      the initrd, the command line, the zero page, the GDT, the identity page
 *      tables and the MP table.
 *   3. for each vCPU i after KVM_CREATE_VCPU(i):
 *      sp_linux_vcpu_setup(vcpu_fd, kvm, &st, i, &sregs, &regs, error) sets
 *      CPUID, FPU and the LAPIC's LINT0/LINT1, and returns the registers to
 *      load with KVM_SET_SREGS/KVM_SET_REGS: the 64-bit entry state for
 *      vCPU 0, the vCPU's reset state for the others, which stay in
 *      KVM_MP_STATE_UNINITIALIZED until the guest's INIT/SIPI wakes them
 *      (in-kernel LAPIC): never make them runnable.
 * The VMM must then run the vCPUs with a tolerant I/O bus (unknown ports
 * read as 0xff, writes ignored) and the 8250 on COM1 raising GSI 4.
 *
 * Locking: none; called during VM construction, before any vCPU runs.
 */
#ifndef SAMEPAGE_VMM_LINUX_LINUX_BOOT_H
#define SAMEPAGE_VMM_LINUX_LINUX_BOOT_H

#include <stdbool.h>
#include <stdint.h>
#include <gio/gio.h>

#include "rmap/guest-mem.h"
#include "vmm/machine/kvm.h"
#include "vmm/vm-config.h"

#define SP_LINUX_DEFAULT_CMDLINE "console=ttyS0"

typedef struct SpLinuxBootState {
    uint64_t entry_gpa;     /* 64-bit entry point of the boot vCPU */
    uint64_t zero_page_gpa; /* boot_params, passed in rsi */
    uint64_t kernel_gpa;    /* where the protected-mode kernel was loaded */
    uint64_t kernel_end;    /* kernel_gpa + init_size */
    uint64_t initrd_gpa;    /* 0 if none */
    uint64_t initrd_size;
    uint32_t vcpu_count;   /* announced in the MP table */
    uint16_t boot_version; /* the kernel's boot protocol version */
} SpLinuxBootState;

bool sp_linux_boot_prepare(const SpVmConfig *cfg, SpGuestMem *mem, SpLinuxBootState *out,
                           GError **error);

bool sp_linux_vcpu_setup(int vcpu_fd, const SpKvm *kvm, const SpLinuxBootState *st,
                         uint32_t vcpu_index, struct kvm_sregs *sregs, struct kvm_regs *regs,
                         GError **error);

#endif
