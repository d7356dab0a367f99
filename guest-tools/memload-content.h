/* SPDX-License-Identifier: MIT */
/*
 * memload-content.h - what a memload page holds, as a pure function.
 *
 * Every managed page has a 64-bit record (memload-table.h): a class in the
 * top 8 bits and a content id in the low 56 bits.  The bytes of the page are
 * a pure function of (record, the seeds, the blob): memload_page_fill()
 * writes them, memload_page_check() regenerates and compares them.  Nothing
 * here touches ports or globals, so the same code is compiled into the guest
 * payload and into the host unit tests (tests/test-memload-*.c).
 *
 * Generated classes (shared, unique, pool) use a counter-based generator:
 * word i of the page is mix64(key + (i + 1) * GOLDEN), where key is derived
 * from (class, seed, id).  Any word can thus be regenerated on its own, and a
 * page costs two multiplies per 8 bytes (about 1 us per 4 KiB).
 *   - shared and pool keys use the common seed (identical across VMs that
 *     use the same seed=),
 *   - unique keys use the per-VM seed (seed, vm_id, vm_name).
 * Zero pages are all zero, fill pages repeat one byte, image pages are a copy
 * of blob page `id`.
 */
#ifndef MEMLOAD_CONTENT_H
#define MEMLOAD_CONTENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ML_PAGE_SIZE  4096u
#define ML_PAGE_WORDS (ML_PAGE_SIZE / 8u)

/* Page classes, stored in the top 8 bits of a record.  A record of 0 is a
 * zero page, so a cleared table describes all-zero memory. */
typedef enum MemloadClass {
    ML_CLASS_ZERO = 0,   /* all bytes 0 */
    ML_CLASS_SHARED = 1, /* generated from the common seed, id = 0..pages_shared-1 */
    ML_CLASS_UNIQUE = 2, /* generated from the per-VM seed */
    ML_CLASS_IMAGE = 3,  /* copy of blob page id */
    ML_CLASS_POOL = 4,   /* churn pool content: common seed, id < pool */
    ML_CLASS_FILL = 5,   /* every byte equals id (0..255) */
    ML_CLASS_COUNT = 6,
} MemloadClass;

#define ML_ID_MASK ((1ULL << 56) - 1)

static inline uint64_t memload_rec_make(unsigned cls, uint64_t id)
{
    return ((uint64_t)cls << 56) | (id & ML_ID_MASK);
}
static inline unsigned memload_rec_class(uint64_t rec)
{
    return (unsigned)(rec >> 56);
}
static inline uint64_t memload_rec_id(uint64_t rec)
{
    return rec & ML_ID_MASK;
}

/* splitmix64's finalizer: a bijection on 64-bit words with good avalanche. */
static inline uint64_t memload_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#define ML_GOLDEN 0x9e3779b97f4a7c15ULL

/* splitmix64 sequence: the PRNG behind shuffles and churn choices. */
static inline uint64_t memload_rng_next(uint64_t *state)
{
    *state += ML_GOLDEN;
    return memload_mix64(*state);
}

/* Uniform value in [0, n) (n > 0), by the multiply-high method. */
static inline uint64_t memload_rng_below(uint64_t *state, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)memload_rng_next(state) * n) >> 64);
}

/* Everything besides the record that a page's content depends on. */
typedef struct MemloadContentCtx {
    uint64_t common_seed; /* seed= : shared and pool classes */
    uint64_t vm_seed;     /* memload_vm_seed(): unique class and placement */
    const uint8_t *blob;  /* image blob in guest memory (NULL if none) */
    uint64_t blob_pages;  /* its size in pages */
} MemloadContentCtx;

/* Where a page first differs from its record. */
typedef struct MemloadMismatch {
    uint32_t offset;   /* byte offset of the first differing byte */
    uint64_t expected; /* expected aligned 8-byte word holding it (little endian) */
    uint64_t found;    /* the word actually found there */
} MemloadMismatch;

uint64_t memload_vm_seed(uint64_t seed, uint64_t vm_id, const char *vm_name);
uint64_t memload_content_key(const MemloadContentCtx *ctx, uint64_t rec);
/* Expected 64-bit word i (0..511) of a page with record rec. */
uint64_t memload_content_word(const MemloadContentCtx *ctx, uint64_t rec, uint32_t i);
void memload_page_fill(void *page, const MemloadContentCtx *ctx, uint64_t rec);
/* true if the page matches rec; else false and *mm says where it differs. */
bool memload_page_check(const void *page, const MemloadContentCtx *ctx, uint64_t rec,
                        MemloadMismatch *mm);
bool memload_page_is_zero(const void *page);
bool memload_page_equal(const void *a, const void *b);
uint64_t memload_page_hash(const void *page);

#endif
