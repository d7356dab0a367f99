/* SPDX-License-Identifier: MIT */
/* cpuid.c - per-vCPU CPUID for Linux guests (see cpuid.h). */
#include <string.h>
#include <glib.h>

#include "vmm/linux/cpuid.h"

#define CPUID_1_ECX_HYPERVISOR (1u << 31)

struct kvm_cpuid2 *sp_linux_cpuid_for_vcpu(const struct kvm_cpuid2 *supported, uint32_t vcpu_index,
                                           uint32_t vcpu_count)
{
    size_t bytes = sizeof(struct kvm_cpuid2) + supported->nent * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *c = g_malloc0(bytes);

    memcpy(c, supported, bytes);
    for (uint32_t i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        switch (e->function) {
        case 1:
            e->ebx = (e->ebx & 0x0000ffffu) | (vcpu_index << 24) | ((vcpu_count & 0xff) << 16);
            e->ecx |= CPUID_1_ECX_HYPERVISOR;
            break;
        case 6:
            e->eax = e->ebx = e->ecx = e->edx = 0;
            break;
        case 0xb:
        case 0x1f:
            e->edx = vcpu_index;
            break;
        case 0x8000001e:
            e->eax = vcpu_index;
            break;
        default:
            break;
        }
    }
    return c;
}
