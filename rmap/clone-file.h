/* SPDX-License-Identifier: MIT */
/*
 * clone-file.h - the frame file of a clone group (design.md, mechanism 7).
 *
 * Cloning a VM copies its guest RAM once into a memfd, the group's frame
 * file: page N of the file holds guest frame N.  The source VM and every
 * clone then map the file MAP_PRIVATE | MAP_FIXED over their whole RAM, so
 * they all read the same page-cache pages until one of them writes a page,
 * when the kernel copies that page for the writer alone (copy-on-write).
 * Only pages resident in the source are written; the others stay holes and
 * read as zeros, exactly what the source would have read.
 *
 * Lifetime: the kernel keeps the file alive while any mapping of it exists,
 * so the fd can be closed as soon as every member has mapped it; the last
 * VM to unmap it frees it.  No frame ever outlives all its mappers.
 *
 * Locking: none; the caller makes sure nobody writes the source RAM while
 * sp_clone_file_create() copies it (its vCPUs are paused).
 */
#ifndef SAMEPAGE_RMAP_CLONE_FILE_H
#define SAMEPAGE_RMAP_CLONE_FILE_H

#include <stdbool.h>
#include <stdint.h>
#include <gio/gio.h>

#include "rmap/guest-mem.h"

/* Copy the resident pages of `src` into a new memfd of src->size bytes.
 * Returns the fd (close it when every member mapped it) or -1 with an
 * error; `pages_copied` (may be NULL) counts the pages written. */
int sp_clone_file_create(const SpGuestMem *src, uint64_t *pages_copied, GError **error);

/* Move mem's current pages out of the way, leaving [host, host+size)
 * unmapped for sp_guest_mem_map_file(): mremap moves page tables instead of
 * freeing every page, so the caller's pause stays short.  Returns where
 * the old pages went (munmap it, size bytes, when convenient) or NULL if
 * they could not be moved (RAM split into several mappings): then the
 * caller just maps over them. */
void *sp_guest_mem_move_out(SpGuestMem *mem);

/* Write the pages of src whose bit is set in `bitmap` (bit g = page g)
 * into fd at their offsets; `pages` counts them. */
bool sp_clone_file_write_pages(int fd, const SpGuestMem *src, const uint64_t *bitmap,
                               uint64_t *pages, GError **error);

/* Replace all of mem's RAM with a MAP_PRIVATE mapping of `fd` (at the same
 * address, so KVM's memslot stays valid) and register it again with mem's
 * userfaultfd in write-protect mode.  Whatever mem held before is gone. */
bool sp_guest_mem_map_file(SpGuestMem *mem, int fd, GError **error);
/* The same for [off, off+len) of RAM, from the same offset of `fd`. */
bool sp_guest_mem_map_file_range(SpGuestMem *mem, int fd, uint64_t off, uint64_t len,
                                 GError **error);

#endif
