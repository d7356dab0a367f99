/* SPDX-License-Identifier: MIT */
/*
 * boot-params.h - where a Linux kernel, its command line and initrd go, and
 * the boot_params ("zero page") that tells the kernel.
 *
 * sp_linux_plan() decides the guest-physical placement from the parsed
 * bzImage, the RAM size and the sizes of command line and initrd, and fails
 * with one line when something does not fit:
 *   - RAM above SP_LINUX_MEM_MAX (see layout.h);
 *   - the kernel's init_size from its load address (pref_address) beyond RAM;
 *   - a command line longer than the kernel's cmdline_size;
 *   - an initrd that does not fit between the kernel's end and
 *     min(RAM end, initrd_addr_max + 1).  It is put as high as possible
 *     (page aligned), as boot loaders conventionally do.
 * sp_linux_boot_params_fill() then builds the zero page from the plan: the
 * kernel's own setup header (as the protocol requires), loader type 0xff,
 * command line and initrd pointers (with their ext_* high halves) and the
 * e820 map of e820.h.
 *
 * Pure functions: no I/O, no guest memory access.
 */
#ifndef SAMEPAGE_VMM_LINUX_BOOT_PARAMS_H
#define SAMEPAGE_VMM_LINUX_BOOT_PARAMS_H

#include <stdbool.h>
#include <stdint.h>
#include <asm/bootparam.h>
#include <gio/gio.h>

#include "vmm/linux/bzimage.h"

typedef struct SpLinuxPlan {
    uint64_t ram_size;    /* bytes of guest RAM from GPA 0 */
    uint64_t kernel_gpa;  /* load address of the protected-mode kernel */
    uint64_t kernel_end;  /* kernel_gpa + max(init_size, file part) */
    uint64_t entry_gpa;   /* 64-bit entry point: kernel_gpa + 0x200 */
    uint64_t cmdline_gpa; /* NUL-terminated command line */
    uint64_t cmdline_len; /* without the NUL */
    uint64_t initrd_gpa;  /* 0 when there is no initrd */
    uint64_t initrd_size; /* bytes; 0 when there is none */
} SpLinuxPlan;

bool sp_linux_plan(const SpBzImage *img, uint64_t ram_size, uint64_t cmdline_len,
                   uint64_t initrd_size, SpLinuxPlan *plan, GError **error);

void sp_linux_boot_params_fill(struct boot_params *bp, const SpBzImage *img,
                               const SpLinuxPlan *plan);

#endif
