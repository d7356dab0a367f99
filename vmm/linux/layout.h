/* SPDX-License-Identifier: MIT */
/*
 * layout.h - guest-physical layout of a VM booting a Linux kernel.
 *
 *   0x00000 - 0x004ff  real-mode IVT and BIOS data area (left zero)
 *   0x00500            GDT: null, null, 0x10 = 64-bit code, 0x18 = data, 0x20 = TSS
 *   0x07000            boot_params ("zero page")
 *   0x08000 - 0x08fff  initial stack (the kernel switches to its own at once)
 *   0x09000            PML4, 0x0a000 PDPT, 0x0b000..0x0efff four PDs:
 *                      identity map of the first 4 GiB with 2 MiB pages
 *   0x20000            kernel command line (at most SP_LINUX_CMDLINE_ROOM bytes)
 *   0x9fc00 - 0xfffff  reserved in the e820 map (EBDA / VGA / BIOS hole);
 *                      ACPI tables at 0xe0000, the MP table at 0xf0000
 *   pref_address       the protected-mode kernel (16 MiB for Debian), init_size bytes
 *   top of RAM         the initrd, page aligned, below initrd_addr_max
 *
 * Guest RAM is one contiguous memslot from GPA 0 (rmap/guest-mem.h), so a
 * Linux guest has at most SP_LINUX_MEM_MAX of RAM: above it would overlap the
 * IOAPIC (0xfec00000) and LAPIC (0xfee00000) that the in-kernel irqchip
 * emulates.  More needs a second memslot above 4 GiB.
 */
#ifndef SAMEPAGE_VMM_LINUX_LAYOUT_H
#define SAMEPAGE_VMM_LINUX_LAYOUT_H

#define SP_LINUX_GDT_GPA       0x500ULL
#define SP_LINUX_GDT_ENTRIES   6 /* TSS takes two slots in long mode */
#define SP_LINUX_ZERO_PAGE_GPA 0x7000ULL
#define SP_LINUX_STACK_TOP     0x8ff0ULL
#define SP_LINUX_PML4_GPA      0x9000ULL
#define SP_LINUX_PDPT_GPA      0xa000ULL
#define SP_LINUX_PD_GPA        0xb000ULL /* 4 pages */
#define SP_LINUX_IDENT_GIB     4         /* identity-mapped GiBs */
#define SP_LINUX_CMDLINE_GPA   0x20000ULL
#define SP_LINUX_CMDLINE_ROOM  0x10000ULL  /* bytes reserved for the command line */
#define SP_LINUX_EBDA_GPA      0x9fc00ULL  /* start of the low reserved hole */
#define SP_LINUX_HIMEM_GPA     0x100000ULL /* end of the hole: RAM from 1 MiB */
#define SP_LINUX_ACPI_GPA      0xe0000ULL
#define SP_LINUX_ACPI_ROOM     0x10000ULL
#define SP_LINUX_MPTABLE_GPA   0xf0000ULL
#define SP_LINUX_MPTABLE_ROOM  0x10000ULL
#define SP_LINUX_MEM_MAX       0xc0000000ULL /* 3 GiB: below the IOAPIC/LAPIC window */

#define SP_LINUX_BOOT_CS  0x10 /* __BOOT_CS of the 64-bit boot protocol */
#define SP_LINUX_BOOT_DS  0x18 /* __BOOT_DS */
#define SP_LINUX_BOOT_TSS 0x20

#define SP_LINUX_IOAPIC_GPA 0xfec00000ULL
#define SP_LINUX_LAPIC_GPA  0xfee00000ULL

#endif
