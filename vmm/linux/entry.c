/* SPDX-License-Identifier: MIT */
/* entry.c - GDT, identity page tables and registers for the 64-bit Linux
 * entry (see entry.h). */
#include <string.h>

#include "vmm/linux/entry.h"
#include "vmm/linux/layout.h"
#include "vmm/vm-error.h"

#define PTE_P  0x1ULL
#define PTE_RW 0x2ULL
#define PTE_PS 0x80ULL

/* GDT descriptor from base, limit and the access/flags bits (as in the SDM:
 * flags in bits 52..55, access byte in 40..47). */
static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
    return ((uint64_t)(base & 0xff000000u) << 32) | ((uint64_t)(flags & 0xf0ffu) << 40) |
           ((uint64_t)(limit & 0x000f0000u) << 32) | ((uint64_t)(base & 0x00ffffffu) << 16) |
           (uint64_t)(limit & 0x0000ffffu);
}

#define GDT_CODE64 0xa09b /* G, L, present, DPL 0, code execute/read, accessed */
#define GDT_DATA   0xc093 /* G, D/B, present, DPL 0, data read/write, accessed */
#define GDT_TSS    0x008b /* present, 64-bit busy TSS */

bool sp_linux_entry_tables_write(uint8_t *ram, uint64_t ram_size, GError **error)
{
    if (ram_size < SP_LINUX_HIMEM_GPA) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_NO_SPACE, "guest RAM below 1 MiB");
        return false;
    }
    uint64_t gdt[SP_LINUX_GDT_ENTRIES] = {
        [SP_LINUX_BOOT_CS / 8] = gdt_entry(GDT_CODE64, 0, 0xfffff),
        [SP_LINUX_BOOT_DS / 8] = gdt_entry(GDT_DATA, 0, 0xfffff),
        [SP_LINUX_BOOT_TSS / 8] = gdt_entry(GDT_TSS, 0, 0x67),
    };
    memcpy(ram + SP_LINUX_GDT_GPA, gdt, sizeof gdt);

    uint64_t *pml4 = (uint64_t *)(ram + SP_LINUX_PML4_GPA);
    uint64_t *pdpt = (uint64_t *)(ram + SP_LINUX_PDPT_GPA);
    memset(pml4, 0, 4096);
    memset(pdpt, 0, 4096);
    pml4[0] = SP_LINUX_PDPT_GPA | PTE_P | PTE_RW;
    for (uint64_t g = 0; g < SP_LINUX_IDENT_GIB; g++) {
        uint64_t *pd = (uint64_t *)(ram + SP_LINUX_PD_GPA + g * 4096);
        pdpt[g] = (SP_LINUX_PD_GPA + g * 4096) | PTE_P | PTE_RW;
        for (uint64_t i = 0; i < 512; i++)
            pd[i] = ((g << 30) | (i << 21)) | PTE_P | PTE_RW | PTE_PS;
    }
    return true;
}

static struct kvm_segment seg_flat(uint16_t sel, uint8_t type, bool code)
{
    return (struct kvm_segment){
        .base = 0,
        .limit = 0xffffffff,
        .selector = sel,
        .type = type,
        .present = 1,
        .dpl = 0,
        .db = code ? 0 : 1,
        .s = 1,
        .l = code ? 1 : 0,
        .g = 1,
    };
}

void sp_linux_entry_sregs(struct kvm_sregs *s)
{
    s->cs = seg_flat(SP_LINUX_BOOT_CS, 0xb, true);
    s->ds = s->es = s->fs = s->gs = s->ss = seg_flat(SP_LINUX_BOOT_DS, 0x3, false);
    s->tr = (struct kvm_segment){
        .base = 0, .limit = 0x67, .selector = SP_LINUX_BOOT_TSS, .type = 0xb, .present = 1};
    s->ldt = (struct kvm_segment){.selector = 0, .type = 0x2, .present = 1, .limit = 0xffff};
    s->gdt.base = SP_LINUX_GDT_GPA;
    s->gdt.limit = SP_LINUX_GDT_ENTRIES * 8 - 1;
    s->idt.base = 0;
    s->idt.limit = 0;
    s->cr0 = SP_X86_CR0_PE | SP_X86_CR0_MP | SP_X86_CR0_ET | SP_X86_CR0_NE | SP_X86_CR0_PG;
    s->cr3 = SP_LINUX_PML4_GPA;
    s->cr4 = SP_X86_CR4_PAE;
    s->efer = SP_X86_EFER_LME | SP_X86_EFER_LMA;
}

void sp_linux_entry_regs(struct kvm_regs *r, uint64_t entry_gpa, uint64_t zero_page_gpa)
{
    memset(r, 0, sizeof *r);
    r->rflags = 0x2; /* reserved bit 1; IF clear */
    r->rip = entry_gpa;
    r->rsi = zero_page_gpa;
    r->rsp = SP_LINUX_STACK_TOP;
    r->rbp = SP_LINUX_STACK_TOP;
}
