/* SPDX-License-Identifier: MIT */
/*
 * elf-load.h - validating and loading guest-tools payloads (static x86-64 ELF).
 *
 * sp_elf_parse() checks a file image completely before anything is copied:
 * 64-bit little-endian x86-64 ET_EXEC, program headers inside the file,
 * every PT_LOAD inside the file and at or above SP_PAYLOAD_MIN_GPA without
 * overflow, and the entry point inside an executable PT_LOAD.  A failure is
 * one line naming what is wrong.  sp_elf_load() then copies segments into
 * guest RAM, zero-filling .bss, after checking they fit.
 */
#ifndef SAMEPAGE_VMM_ELF_LOAD_H
#define SAMEPAGE_VMM_ELF_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <gio/gio.h>

#include "rmap/guest-mem.h"

#define SP_ELF_MAX_SEGMENTS 16

typedef struct SpElfSegment {
    uint64_t gpa;    /* load address (virtual == physical) */
    uint64_t offset; /* file offset */
    uint64_t filesz; /* bytes copied from the file */
    uint64_t memsz;  /* bytes in memory; the rest is zeroed */
} SpElfSegment;

typedef struct SpElfImage {
    uint64_t entry; /* entry point */
    uint64_t end;   /* first byte above every segment */
    unsigned nseg;
    SpElfSegment seg[SP_ELF_MAX_SEGMENTS];
} SpElfImage;

bool sp_elf_parse(const uint8_t *data, size_t size, SpElfImage *out, GError **error);
bool sp_elf_load(const SpElfImage *img, const uint8_t *data, SpGuestMem *mem, GError **error);

#endif
