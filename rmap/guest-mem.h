/* SPDX-License-Identifier: MIT */
/*
 * guest-mem.h - one VM's guest RAM as the host sees it.
 *
 * Guest RAM is a single anonymous MAP_PRIVATE | MAP_NORESERVE mapping, so a
 * 4 GiB guest costs nothing until it touches pages.  It is registered with a
 * userfaultfd in write-protect mode over its whole length (design.md,
 * mechanism 1 and 3); write-protecting a page costs nothing until the sharing
 * engine actually protects it.  Missing-fault mode is *not* registered here:
 * the swap code registers it only on ranges holding swapped-out pages.
 *
 * Invariants: `host` and `size` never change while the VM exists (the
 * sharing engine may replace pages *inside* the mapping with MAP_FIXED, never
 * the mapping's extent).  Guest physical address X lives at host + X.
 *
 * Locking: none inside; the fields are immutable after sp_guest_mem_init()
 * but the resident-page count's, which are atomics.
 */
#ifndef SAMEPAGE_RMAP_GUEST_MEM_H
#define SAMEPAGE_RMAP_GUEST_MEM_H

#include <stdbool.h>
#include <stdint.h>
#include <gio/gio.h>

#define SP_PAGE_SIZE  4096ULL
#define SP_PAGE_SHIFT 12

/* rmap/'s error domain (here, in the header every rmap/ file includes), for
 * errors no system call reported: those are G_IO_ERROR, from errno. */
#define SP_RMAP_ERROR (sp_rmap_error_quark())
GQuark sp_rmap_error_quark(void);
typedef enum {
    SP_RMAP_ERROR_INVALID, /* an argument the guest memory model cannot take */
} SpRmapError;

typedef struct SpGuestMem {
    uint8_t *host;          /* base of the host mapping of guest RAM */
    uint64_t size;          /* bytes of guest RAM, a multiple of SP_PAGE_SIZE */
    int uffd;               /* userfaultfd with WP mode over [host, host+size), or -1 */
    uint64_t uffd_features; /* features the kernel granted in UFFDIO_API */
    /* sp_guest_mem_resident_pages()'s last count (atomics: any thread) */
    uint64_t resident, resident_at_us, resident_cost_us;
} SpGuestMem;

/* Map `size` bytes of guest RAM and register it with a new userfaultfd in
 * write-protect mode.  `size` must be a non-zero multiple of 4 KiB. */
bool sp_guest_mem_init(SpGuestMem *mem, uint64_t size, GError **error);

/* Let the host kernel's KSM merge this guest RAM: madvise(MADV_MERGEABLE)
 * over the whole mapping (what QEMU does with mem-merge=on).  Used by
 * `samepage run --engine=ksm`, with samepage's own engine off.  Fails with
 * a one-line error if the kernel has no KSM (CONFIG_KSM=n gives EINVAL). */
bool sp_guest_mem_set_mergeable(SpGuestMem *mem, GError **error);

/* Unmap and close; safe on a zeroed or already-destroyed SpGuestMem. */
void sp_guest_mem_destroy(SpGuestMem *mem);

/* Host pointer for [gpa, gpa+len), or NULL if any of it is outside RAM. */
void *sp_guest_mem_ptr(const SpGuestMem *mem, uint64_t gpa, uint64_t len);

/* Pages of guest RAM resident in host memory (mincore), including shared
 * pages mapped from a frame pool.  mincore walks every mapping of the
 * range: 62 ms at 100,000 mappings and 0.62 s at 1,000,000 (4 GiB of RAM,
 * bench/map-cost), holding the mm's lock against merges; so the count is
 * kept and made again only when it is older than SP_GUEST_MEM_RESIDENT_AGE
 * times what the last one took (fresh on every call for small VMs: 3 ms
 * at 4 GiB and 1,000 mappings, i.e. at most 60 ms old; up to 12 s old at
 * a million mappings).  Counting thus takes at most 1/20 of the time. */
#define SP_GUEST_MEM_RESIDENT_AGE 20
uint64_t sp_guest_mem_resident_pages(SpGuestMem *mem);

#endif
