/* SPDX-License-Identifier: MIT */
/*
 * entry.h - CPU state for the 64-bit Linux boot protocol.
 *
 * The protocol (Documentation/arch/x86/boot.rst, "64-bit boot protocol")
 * wants: long mode with paging, an identity map covering the kernel, the
 * zero page and the command line; a GDT with flat __BOOT_CS (0x10, execute/
 * read, 64-bit) and __BOOT_DS (0x18, read/write); CS = __BOOT_CS, DS/ES/SS =
 * __BOOT_DS; interrupts disabled; rsi = boot_params; rip = load address +
 * 0x200.  Only the boot vCPU starts there: application processors wait for
 * INIT/SIPI from the boot CPU (the in-kernel LAPIC handles that; their
 * mp_state stays KVM_MP_STATE_UNINITIALIZED).
 *
 * sp_linux_entry_tables_write() writes the GDT and the identity page tables
 * (first 4 GiB, 2 MiB pages) into guest RAM at the layout.h addresses.
 * sp_linux_entry_sregs()/sp_linux_entry_regs() edit the vCPU state that
 * KVM_GET_SREGS/KVM_GET_REGS returned, to be written back with the SET ioctls.
 */
#ifndef SAMEPAGE_VMM_LINUX_ENTRY_H
#define SAMEPAGE_VMM_LINUX_ENTRY_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>
#include <gio/gio.h>

#define SP_X86_CR0_PE   0x1ULL
#define SP_X86_CR0_MP   0x2ULL
#define SP_X86_CR0_ET   0x10ULL
#define SP_X86_CR0_NE   0x20ULL
#define SP_X86_CR0_PG   0x80000000ULL
#define SP_X86_CR4_PAE  0x20ULL
#define SP_X86_EFER_LME 0x100ULL
#define SP_X86_EFER_LMA 0x400ULL

/* Write GDT and page tables into guest RAM [ram, ram + ram_size). */
bool sp_linux_entry_tables_write(uint8_t *ram, uint64_t ram_size, GError **error);

/* Long mode, flat boot segments, CR3 = the identity map. */
void sp_linux_entry_sregs(struct kvm_sregs *sregs);

/* rip = entry, rsi = zero page, interrupts off. */
void sp_linux_entry_regs(struct kvm_regs *regs, uint64_t entry_gpa, uint64_t zero_page_gpa);

#endif
