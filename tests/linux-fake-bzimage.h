/* SPDX-License-Identifier: MIT */
/*
 * linux-fake-bzimage.h - synthetic bzImage files for the Linux boot tests.
 *
 * fake_bzimage_new() builds a minimal but well-formed image: boot sector
 * with 0xAA55, setup header (HdrS, protocol 2.15, LOADED_HIGH, XLF_KERNEL_64,
 * relocatable, pref_address 16 MiB, init_size 32 MiB, cmdline_size 2047,
 * initrd_addr_max 0x7fffffff) and `kernel_bytes` of protected-mode kernel
 * filled with a recognisable pattern.  Tests then break one field at a time.
 */
#ifndef SAMEPAGE_TESTS_LINUX_FAKE_BZIMAGE_H
#define SAMEPAGE_TESTS_LINUX_FAKE_BZIMAGE_H

#include <string.h>
#include <asm/bootparam.h>
#include <glib.h>

#define FAKE_SETUP_SECTS 4
#define FAKE_SETUP_BYTES ((FAKE_SETUP_SECTS + 1) * 512)
#define FAKE_INIT_SIZE   (32u << 20)
#define FAKE_PREF        (16ull << 20)

static inline struct setup_header *fake_hdr(guint8 *img)
{
    return (struct setup_header *)(img + 0x1f1);
}

static inline guint8 *fake_bzimage_new(gsize kernel_bytes, gsize *size)
{
    gsize n = FAKE_SETUP_BYTES + kernel_bytes;
    guint8 *img = g_malloc0(n);
    struct setup_header *h = fake_hdr(img);

    h->setup_sects = FAKE_SETUP_SECTS;
    h->boot_flag = 0xaa55;
    h->jump = (guint16)(0xeb | ((0x26c - 0x202) << 8)); /* jmp over the 2.15 header */
    h->header = 0x53726448;
    h->version = 0x020f;
    h->loadflags = LOADED_HIGH;
    h->syssize = (guint32)((kernel_bytes + 15) / 16);
    h->code32_start = 0x100000;
    h->initrd_addr_max = 0x7fffffff;
    h->kernel_alignment = 0x200000;
    h->relocatable_kernel = 1;
    h->xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G;
    h->cmdline_size = 2047;
    h->pref_address = FAKE_PREF;
    h->init_size = FAKE_INIT_SIZE;
    for (gsize i = 0; i < kernel_bytes; i++)
        img[FAKE_SETUP_BYTES + i] = (guint8)(i * 7 + 3);
    *size = n;
    return img;
}

#endif
