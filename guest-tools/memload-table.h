/* SPDX-License-Identifier: MIT */
/*
 * memload-table.h - the page record table and the ground-truth counters.
 *
 * memload manages a region of guest RAM laid out as
 *     [ record table | distinct-set scratch | managed pages ... ]
 * The record table holds one uint64_t per managed page (memload-content.h:
 * class << 56 | content id); it is the only truth about what each page must
 * hold.  Classes are assigned in runs and then shuffled with Fisher-Yates
 * driven by the per-VM seed, so each class lands on scattered guest frames
 * and two VMs with the same seed hold the same shared contents at different
 * addresses (layout=shuffled, the default: the worst case for sharing's
 * mappings).  layout=realistic keeps most shared contents in runs at the
 * same frames in every VM, as identical guests booted from one image do.  The scratch area is an
 * open-addressing set used to count distinct image contents (blob pages may repeat); it is cleared
 * after each use so it reads as zero pages between counts.
 *
 * Pure code: no I/O, no globals; the caller owns all memory.
 */
#ifndef MEMLOAD_TABLE_H
#define MEMLOAD_TABLE_H

#include "guest-tools/memload-args.h"
#include "guest-tools/memload-content.h"

typedef struct MemloadLayout {
    uint64_t pages;  /* managed pages */
    uint64_t shared; /* pages per class at fill time */
    uint64_t unique;
    uint64_t zero;
    uint64_t image;
    uint64_t fill;
    uint64_t table_pages; /* pages holding the record table */
    uint64_t set_slots;   /* slots of the distinct set (power of two, or 0) */
    uint64_t set_pages;   /* pages holding it */
    bool image_dropped;   /* image= asked for pages but there is no blob */
} MemloadLayout;

/* Plan the layout for a region of region_pages pages.  Returns false with a
 * static message in *err when pages= does not fit. */
bool memload_layout_plan(const MemloadArgs *a, uint64_t region_pages, uint64_t blob_pages,
                         MemloadLayout *out, const char **err);

/* Set the class counts of lay (lay->pages already set) for the fill-time
 * content of a: fill= or the shared/zero/image/unique mix. */
void memload_layout_classes(MemloadLayout *lay, const MemloadArgs *a, uint64_t blob_pages);

/* layout=realistic: this share of the shared contents lies in runs of 1 to
 * ML_RUN_MAX consecutive contents at the same frames in every VM of the
 * same seed and size (an OS image's pages, read in by identical guests);
 * the rest of the shared contents, and every other class, is shuffled
 * with the per-VM seed into the frames between the runs (data). */
#define ML_RUN_SHARE_PCT 75
#define ML_RUN_MAX       64

/* Write the fill-time records of all lay->pages pages into table and shuffle
 * them with the per-VM seed (layout=realistic: around the common runs).
 * Deterministic in (args, layout, vm_seed). */
void memload_table_build(uint64_t *table, const MemloadLayout *lay, const MemloadArgs *a,
                         uint64_t blob_pages, uint64_t vm_seed);

/* Set of distinct non-zero blob page contents.  slots: set_slots zeroed
 * words (each 0 = empty, else blob page index + 1). */
typedef struct MemloadDistinct {
    uint64_t *slots;
    uint64_t mask; /* set_slots - 1 */
    const uint8_t *blob;
    uint64_t blob_pages;
    uint64_t distinct; /* distinct non-zero contents added */
    uint64_t zero;     /* pages added that were all zero */
} MemloadDistinct;

void memload_distinct_init(MemloadDistinct *d, uint64_t *slots, uint64_t nslots,
                           const uint8_t *blob, uint64_t blob_pages);
void memload_distinct_add(MemloadDistinct *d, uint64_t blob_index);
void memload_distinct_clear(MemloadDistinct *d);

/* Ground truth: what the managed pages hold right now, from the records. */
typedef struct MemloadTruth {
    uint64_t pages[ML_CLASS_COUNT]; /* pages per class */
    uint64_t distinct_image;        /* distinct non-zero contents among image pages */
    uint64_t image_zero;            /* image pages whose blob page is all zero */
    uint64_t distinct_pool;         /* distinct pool contents in use */
    uint64_t distinct_fill;         /* distinct non-zero fill bytes in use */
    uint64_t fill_zero;             /* fill pages with byte 0 */
    uint64_t distinct_nonzero;      /* all distinct non-zero contents in this VM */
    uint64_t zero_content;          /* pages that read as all zero */
} MemloadTruth;

/* Count the records in table[0..n).  pool_bits: ML_MAX_POOL/64 words of
 * scratch, fill_bits: 4 words of scratch; d: an initialised distinct set. */
void memload_truth_count(const uint64_t *table, uint64_t n, MemloadDistinct *d, uint64_t *pool_bits,
                         MemloadTruth *t);

#endif
