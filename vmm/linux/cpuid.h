/* SPDX-License-Identifier: MIT */
/*
 * cpuid.h - the CPUID a Linux guest's vCPU sees.
 *
 * Starts from KVM_GET_SUPPORTED_CPUID (what KVM and the host CPU can give a
 * guest) and makes it per-vCPU and honest:
 *   leaf 1:          APIC ID (EBX 31..24) = vCPU index, logical-processor
 *                    count (EBX 23..16) = vCPU count, HYPERVISOR bit set
 *                    (ECX 31) so the kernel knows it is a guest;
 *   leaves 0xb/0x1f: x2APIC ID (EDX) = vCPU index;
 *   leaf 0x8000001e: extended APIC ID (EAX) = vCPU index (AMD);
 *   leaf 6:          thermal/power management cleared (nothing emulates it).
 * APIC IDs equal vCPU indexes, which is what KVM_CREATE_VCPU(i) gives the
 * in-kernel LAPIC and what the MP table announces.
 *
 * Pure: returns a new kvm_cpuid2 (g_free it) for KVM_SET_CPUID2.
 */
#ifndef SAMEPAGE_VMM_LINUX_CPUID_H
#define SAMEPAGE_VMM_LINUX_CPUID_H

#include <stdint.h>
#include <linux/kvm.h>

struct kvm_cpuid2 *sp_linux_cpuid_for_vcpu(const struct kvm_cpuid2 *supported, uint32_t vcpu_index,
                                           uint32_t vcpu_count);

#endif
