/* SPDX-License-Identifier: MIT */
/*
 * memload-table.c - plan the managed region, build and shuffle the record
 * table, and count the ground truth from it (pure, see memload-table.h).
 */
#include "guest-tools/memload-table.h"

static uint64_t div_up(uint64_t a, uint64_t b)
{
    return (a + b - 1) / b;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

bool memload_layout_plan(const MemloadArgs *a, uint64_t region_pages, uint64_t blob_pages,
                         MemloadLayout *out, const char **err)
{
    MemloadLayout l = {0};
    /* The set is reserved whenever there is a blob, so that a MIX command
     * can bring image pages back even after a start with fill=. */
    if (blob_pages > 0) {
        l.set_slots = 16;
        while (l.set_slots < 2 * blob_pages)
            l.set_slots <<= 1;
        l.set_pages = div_up(l.set_slots * 8, ML_PAGE_SIZE);
    }
    if (region_pages <= l.set_pages + 1) {
        *err = "no free guest RAM to manage";
        return false;
    }
    uint64_t avail = region_pages - l.set_pages;
    if (a->pages) {
        if (a->pages + div_up(a->pages, ML_PAGE_SIZE / 8) > avail) {
            *err = "pages= does not fit in the free guest RAM (with its record table)";
            return false;
        }
        l.pages = a->pages;
    } else {
        /* Largest N with N + ceil(N / 512) <= avail. */
        l.pages = avail / 513 * 512 + (avail % 513 ? avail % 513 - 1 : 0);
        if (l.pages == 0) {
            *err = "no free guest RAM to manage";
            return false;
        }
    }
    l.table_pages = div_up(l.pages, ML_PAGE_SIZE / 8);
    memload_layout_classes(&l, a, blob_pages);
    *out = l;
    return true;
}

void memload_layout_classes(MemloadLayout *l, const MemloadArgs *a, uint64_t blob_pages)
{
    l->shared = l->unique = l->zero = l->image = l->fill = 0;
    l->image_dropped = false;
    if (a->fill >= 0) {
        l->fill = l->pages;
        return;
    }
    l->shared = l->pages * a->pct_shared / 100;
    l->zero = l->pages * a->pct_zero / 100;
    if (blob_pages)
        l->image = l->pages * a->pct_image / 100;
    else
        l->image_dropped = a->pct_image > 0;
    l->unique = l->pages - l->shared - l->zero - l->image;
}

/* Fisher-Yates over t[0..n), driven by the per-VM seed. */
static void shuffle(uint64_t *t, uint64_t n, uint64_t vm_seed)
{
    uint64_t rng = vm_seed ^ 0x73687566666c6531ULL;
    for (uint64_t i = n; i > 1; i--) {
        uint64_t j = memload_rng_below(&rng, i);
        uint64_t x = t[i - 1];
        t[i - 1] = t[j];
        t[j] = x;
    }
}

void memload_table_build(uint64_t *table, const MemloadLayout *lay, const MemloadArgs *a,
                         uint64_t blob_pages, uint64_t vm_seed)
{
    /* layout=realistic: the first `runs` shared contents go into runs at
     * frames every VM of this seed and size shares; the rest is built
     * compactly at the end of the table and spread between the runs. */
    uint64_t total =
        lay->shared + lay->unique + lay->zero + (blob_pages ? lay->image : 0) + lay->fill;
    uint64_t runs = a->realistic ? lay->shared * ML_RUN_SHARE_PCT / 100 : 0;
    uint64_t n = runs;
    for (uint64_t i = runs; i < lay->shared; i++)
        table[n++] = memload_rec_make(ML_CLASS_SHARED, i);
    for (uint64_t i = 0; i < lay->unique; i++)
        table[n++] = memload_rec_make(ML_CLASS_UNIQUE, i);
    for (uint64_t i = 0; i < lay->zero; i++)
        table[n++] = memload_rec_make(ML_CLASS_ZERO, 0);
    for (uint64_t i = 0; i < lay->image && blob_pages; i++)
        table[n++] = memload_rec_make(ML_CLASS_IMAGE, i % blob_pages);
    for (uint64_t i = 0; i < lay->fill; i++)
        table[n++] = memload_rec_make(ML_CLASS_FILL, (uint64_t)a->fill & 0xff);
    shuffle(table + runs, total - runs, vm_seed);
    if (!runs)
        return;
    /* Lay the runs from the front: between two runs a gap of the shuffled
     * records, moved forward from where they wait (dst < src always: the
     * records not yet placed are exactly the run pages still to come).
     * Run lengths 1..ML_RUN_MAX and gaps come from the common seed. */
    uint64_t rest = total - runs;
    uint64_t mean_gap = rest / (runs / ((ML_RUN_MAX + 1) / 2) + 1);
    uint64_t rng = memload_mix64(a->seed ^ 0x72756e6c61796f75ULL) ^ total;
    uint64_t dst = 0, src = runs, id = 0;
    while (id < runs) {
        uint64_t gap = min_u64(memload_rng_below(&rng, 2 * mean_gap + 1), total - src);
        uint64_t len = min_u64(1 + memload_rng_below(&rng, ML_RUN_MAX), runs - id);
        for (uint64_t k = 0; k < gap; k++)
            table[dst++] = table[src++];
        for (uint64_t k = 0; k < len; k++)
            table[dst++] = memload_rec_make(ML_CLASS_SHARED, id++);
    }
    /* What is left of the shuffled records is already in place (dst == src). */
}

void memload_distinct_init(MemloadDistinct *d, uint64_t *slots, uint64_t nslots,
                           const uint8_t *blob, uint64_t blob_pages)
{
    *d = (MemloadDistinct){
        .slots = nslots ? slots : NULL, /* no set: never touch the memory */
        .mask = nslots ? nslots - 1 : 0,
        .blob = blob,
        .blob_pages = blob_pages,
    };
}

void memload_distinct_add(MemloadDistinct *d, uint64_t blob_index)
{
    if (!d->blob || blob_index >= d->blob_pages)
        return;
    const uint8_t *page = d->blob + blob_index * ML_PAGE_SIZE;
    if (memload_page_is_zero(page)) {
        d->zero++;
        return;
    }
    if (!d->slots)
        return;
    /* Linear probing; equal hashes are confirmed by comparing the pages, so
     * the count is exact.  The set never fills: set_slots >= 2 * blob_pages. */
    for (uint64_t h = memload_page_hash(page);; h++) {
        uint64_t *s = &d->slots[h & d->mask];
        if (*s == 0) {
            *s = blob_index + 1;
            d->distinct++;
            return;
        }
        if (*s - 1 == blob_index || memload_page_equal(d->blob + (*s - 1) * ML_PAGE_SIZE, page))
            return;
    }
}

void memload_distinct_clear(MemloadDistinct *d)
{
    if (d->slots)
        for (uint64_t i = 0; i <= d->mask; i++)
            d->slots[i] = 0;
    d->distinct = 0;
    d->zero = 0;
}

void memload_truth_count(const uint64_t *table, uint64_t n, MemloadDistinct *d, uint64_t *pool_bits,
                         MemloadTruth *t)
{
    uint64_t fill_bits[4] = {0, 0, 0, 0};
    *t = (MemloadTruth){0};
    for (uint32_t i = 0; i < ML_MAX_POOL / 64; i++)
        pool_bits[i] = 0;
    memload_distinct_clear(d);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t rec = table[i];
        unsigned cls = memload_rec_class(rec);
        uint64_t id = memload_rec_id(rec);
        if (cls >= ML_CLASS_COUNT)
            continue;
        t->pages[cls]++;
        switch (cls) {
        case ML_CLASS_IMAGE:
            memload_distinct_add(d, id);
            break;
        case ML_CLASS_POOL:
            if (id < ML_MAX_POOL && !(pool_bits[id / 64] & (1ULL << (id % 64)))) {
                pool_bits[id / 64] |= 1ULL << (id % 64);
                t->distinct_pool++;
            }
            break;
        case ML_CLASS_FILL:
            id &= 0xff;
            if (id == 0)
                t->fill_zero++;
            else if (!(fill_bits[id / 64] & (1ULL << (id % 64)))) {
                fill_bits[id / 64] |= 1ULL << (id % 64);
                t->distinct_fill++;
            }
            break;
        default:
            break;
        }
    }
    t->distinct_image = d->distinct;
    t->image_zero = d->zero;
    memload_distinct_clear(d);
    t->distinct_nonzero = t->pages[ML_CLASS_SHARED] + t->pages[ML_CLASS_UNIQUE] +
                          t->distinct_image + t->distinct_pool + t->distinct_fill;
    t->zero_content = t->pages[ML_CLASS_ZERO] + t->image_zero + t->fill_zero;
}
