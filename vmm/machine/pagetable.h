/* SPDX-License-Identifier: MIT */
/*
 * pagetable.h - identity page tables for payload VMs.
 *
 * Maps guest virtual X to guest physical X for all of RAM with 2 MiB pages
 * that are present, writable and user-accessible (payloads run at CPL 3).
 * Layout at `pt_gpa`: PML4, one PDPT, then one page directory per GiB of
 * RAM.  Addresses above RAM are not mapped, so a stray access faults (and,
 * with no IDT, ends the VM as crashed) instead of reaching MMIO.
 */
#ifndef SAMEPAGE_VMM_PAGETABLE_H
#define SAMEPAGE_VMM_PAGETABLE_H

#include <stdbool.h>
#include <stdint.h>
#include <gio/gio.h>

#include "rmap/guest-mem.h"

#define SP_PTE_P  0x1ULL
#define SP_PTE_RW 0x2ULL
#define SP_PTE_US 0x4ULL
#define SP_PTE_PS 0x80ULL

/* Bytes of page tables needed for `ram_size`. */
uint64_t sp_pagetable_size(uint64_t ram_size);

/* Build the tables in [pt_gpa, pt_end); ram_size must be a multiple of 2 MiB.
 * On success *cr3 is the PML4's address. */
bool sp_pagetable_build(SpGuestMem *mem, uint64_t pt_gpa, uint64_t pt_end, uint64_t *cr3,
                        GError **error);

#endif
