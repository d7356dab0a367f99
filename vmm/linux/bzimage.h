/* SPDX-License-Identifier: MIT */
/*
 * bzimage.h - parse and check a Linux bzImage (x86 boot protocol).
 *
 * A bzImage is the real-mode setup (boot sector + setup_sects sectors of
 * 512 bytes, holding the setup header at offset 0x1f1) followed by the
 * protected-mode kernel.  samepage boots the protected-mode part through
 * its 64-bit entry point, so it requires:
 *   - the "HdrS" magic and boot sector signature 0xAA55;
 *   - boot protocol >= 2.12: the first version with xloadflags, hence with
 *     XLF_KERNEL_64 (the 64-bit entry at load address + 0x200), and it also
 *     guarantees cmdline_size (2.06), pref_address/init_size (2.10);
 *   - XLF_KERNEL_64 set and a loaded-high (bzImage) kernel;
 *   - the file long enough for setup_sects and syssize (not truncated).
 * Every failure is a one-line GError naming the file's defect.
 *
 * Pure: works on a byte buffer, no I/O, no global state.
 */
#ifndef SAMEPAGE_VMM_LINUX_BZIMAGE_H
#define SAMEPAGE_VMM_LINUX_BZIMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <asm/bootparam.h>
#include <gio/gio.h>

#define SP_BZIMAGE_HDR_OFFSET     0x1f1        /* setup header inside the file */
#define SP_BZIMAGE_MIN_VERSION    0x020c       /* boot protocol 2.12 */
#define SP_BZIMAGE_ENTRY64_OFFSET 0x200        /* 64-bit entry from the load address */
#define SP_BZIMAGE_MAX_SIZE       (512u << 20) /* refuse absurd files before reading */

typedef struct SpBzImage {
    struct setup_header hdr;  /* copy of the file's setup header */
    size_t hdr_len;           /* bytes of it present in the file (from 0x1f1) */
    uint16_t version;         /* boot protocol, e.g. 0x020f */
    size_t kernel_offset;     /* file offset of the protected-mode kernel */
    size_t kernel_size;       /* its length in bytes (to the end of the file) */
    uint64_t pref_address;    /* where the kernel wants to be loaded */
    uint32_t init_size;       /* bytes the kernel needs from its load address */
    uint32_t cmdline_max;     /* longest command line, without the NUL */
    uint32_t initrd_addr_max; /* highest address the initrd may occupy */
    bool relocatable;         /* relocatable_kernel */
} SpBzImage;

/* Check the image in data[0..size) and fill *out.  `what` names the file in
 * error messages.  The image must outlive nothing: *out holds no pointer. */
bool sp_bzimage_parse(const uint8_t *data, size_t size, const char *what, SpBzImage *out,
                      GError **error);

#endif
