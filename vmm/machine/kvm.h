/* SPDX-License-Identifier: MIT */
/*
 * kvm.h - the host's /dev/kvm, opened once per process.
 *
 * SpKvm holds the system fd, the size of a vCPU's kvm_run area, the CPUID
 * the host supports and which optional capabilities exist.  The required
 * capabilities are checked from one table (kvm.c) when it is opened, and a
 * missing one is a one-line error naming it.
 *
 * Immutable after sp_kvm_open(); shared read-only by every VM and thread.
 */
#ifndef SAMEPAGE_VMM_KVM_H
#define SAMEPAGE_VMM_KVM_H

#include <stdbool.h>
#include <linux/kvm.h>
#include <gio/gio.h>

typedef struct SpKvm {
    int fd;                        /* /dev/kvm */
    int run_size;                  /* KVM_GET_VCPU_MMAP_SIZE */
    int max_vcpus;                 /* KVM_CAP_MAX_VCPUS (or NR_VCPUS) */
    bool has_irqchip;              /* KVM_CAP_IRQCHIP */
    bool has_pit2;                 /* KVM_CAP_PIT2 */
    bool has_manual_dirty_protect; /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 */
    struct kvm_cpuid2 *cpuid;      /* KVM_GET_SUPPORTED_CPUID */
} SpKvm;

/* Open `path` (normally /dev/kvm) and check the required capabilities. */
SpKvm *sp_kvm_open(const char *path, GError **error);
void sp_kvm_close(SpKvm *kvm);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpKvm, sp_kvm_close)

#endif
