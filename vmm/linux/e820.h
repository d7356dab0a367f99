/* SPDX-License-Identifier: MIT */
/*
 * e820.h - the BIOS e820 memory map a Linux guest receives in boot_params.
 *
 * For `ram_size` bytes of guest RAM from GPA 0 the map is
 *   [0, 0x9fc00)            usable RAM (conventional memory)
 *   [0x9fc00, 0x100000)     reserved (EBDA, VGA window, BIOS area with the MP table)
 *   [0x100000, ram_size)    usable RAM
 * so every usable byte is backed by the RAM memslot and nothing the VMM
 * placed for firmware (MP table) is handed to the allocator.
 * Entries are sorted, non-overlapping and cover [0, ram_size) exactly.
 */
#ifndef SAMEPAGE_VMM_LINUX_E820_H
#define SAMEPAGE_VMM_LINUX_E820_H

#include <stddef.h>
#include <stdint.h>
#include <asm/bootparam.h>

#define SP_E820_RAM      1
#define SP_E820_RESERVED 2

/* Fill out[0..max) and return the number of entries, or 0 if ram_size is
 * below 1 MiB + 1 page or max is too small. */
size_t sp_linux_e820_build(uint64_t ram_size, struct boot_e820_entry *out, size_t max);

#endif
