/* SPDX-License-Identifier: MIT */
/* pagetable.c - identity page tables for payload VMs (see pagetable.h). */
#include <string.h>

#include "vmm/machine/pagetable.h"
#include "vmm/vm-error.h"

#define GIB  (1ULL << 30)
#define MIB2 (2ULL << 20)

uint64_t sp_pagetable_size(uint64_t ram_size)
{
    uint64_t npd = (ram_size + GIB - 1) / GIB;
    return (2 + npd) * SP_PAGE_SIZE;
}

bool sp_pagetable_build(SpGuestMem *mem, uint64_t pt_gpa, uint64_t pt_end, uint64_t *cr3,
                        GError **error)
{
    uint64_t ram = mem->size;
    uint64_t need = sp_pagetable_size(ram);
    uint64_t npd = (ram + GIB - 1) / GIB;
    if (ram % MIB2) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_INVALID,
                    "payload VMs need RAM in multiples of 2 MiB");
        return false;
    }
    if (npd > 512 || pt_gpa % SP_PAGE_SIZE || pt_gpa + need > pt_end || pt_end > ram) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_INVALID,
                    "%llu MiB of RAM needs %llu KiB of page tables, more than the %llu KiB "
                    "reserved",
                    (unsigned long long)(ram >> 20), (unsigned long long)(need >> 10),
                    (unsigned long long)((pt_end - pt_gpa) >> 10));
        return false;
    }
    uint64_t *pml4 = sp_guest_mem_ptr(mem, pt_gpa, need);
    memset(pml4, 0, need);
    uint64_t pdpt_gpa = pt_gpa + SP_PAGE_SIZE;
    uint64_t *pdpt = pml4 + 512;
    const uint64_t flags = SP_PTE_P | SP_PTE_RW | SP_PTE_US;
    pml4[0] = pdpt_gpa | flags;
    for (uint64_t g = 0; g < npd; g++) {
        uint64_t pd_gpa = pdpt_gpa + (1 + g) * SP_PAGE_SIZE;
        uint64_t *pd = pdpt + (1 + g) * 512;
        pdpt[g] = pd_gpa | flags;
        for (uint64_t i = 0; i < 512; i++) {
            uint64_t addr = g * GIB + i * MIB2;
            if (addr >= ram)
                break;
            pd[i] = addr | flags | SP_PTE_PS;
        }
    }
    *cr3 = pt_gpa;
    return true;
}
