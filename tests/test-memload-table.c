/* SPDX-License-Identifier: MIT */
/*
 * test-memload-table.c - memload's region plan, record table and ground
 * truth, on the host.
 *
 * The plan must use as much of the region as fits and never more; the table
 * must hold exactly the planned class counts with the right content ids,
 * shuffled per VM (deterministically); the ground truth must count distinct
 * contents exactly, including repeated and all-zero blob pages, and leave
 * its scratch memory zeroed (or untouched when there is none).
 */
#include <glib.h>
#include <string.h>

#include "guest-tools/memload-table.h"

static void test_plan_auto_fits(void)
{
    MemloadArgs a;
    memload_args_defaults(&a);
    for (uint64_t bp = 0; bp < 40; bp += 13) {
        for (uint64_t r = 0; r < 3000; r++) {
            MemloadLayout l;
            const char *err = NULL;
            if (!memload_layout_plan(&a, r, bp, &l, &err)) {
                g_assert_nonnull(err);
                g_assert_cmpuint(r, <=, 3 + (bp ? 1 : 0));
                continue;
            }
            uint64_t used = l.pages + l.table_pages + l.set_pages;
            g_assert_cmpuint(used, <=, r);
            g_assert_cmpuint(l.table_pages, ==, (l.pages + 511) / 512);
            /* maximal: one more page would need more than the region */
            uint64_t more = l.pages + 1;
            g_assert_cmpuint(more + (more + 511) / 512 + l.set_pages, >, r);
            g_assert_cmpuint(l.shared + l.unique + l.zero + l.image + l.fill, ==, l.pages);
            if (bp)
                g_assert_cmpuint(l.set_slots, >=, 2 * bp);
            else
                g_assert_cmpuint(l.set_slots, ==, 0);
        }
    }
}

static void test_plan_pages(void)
{
    MemloadArgs a;
    MemloadLayout l;
    const char *err = NULL;
    memload_args_defaults(&a);
    a.pages = 1024;
    g_assert_true(memload_layout_plan(&a, 1026, 0, &l, &err));
    g_assert_cmpuint(l.pages, ==, 1024);
    g_assert_cmpuint(l.table_pages, ==, 2);
    g_assert_false(memload_layout_plan(&a, 1025, 0, &l, &err));
    g_assert_nonnull(strstr(err, "pages="));
    /* 256 MiB of free RAM: the class split of the defaults. */
    a.pages = 0;
    g_assert_true(memload_layout_plan(&a, 65536, 0, &l, &err));
    g_assert_cmpuint(l.pages, ==, 65408);
    g_assert_cmpuint(l.shared, ==, 65408 * 40 / 100);
    g_assert_cmpuint(l.zero, ==, 65408 * 10 / 100);
    g_assert_cmpuint(l.image, ==, 0);
    g_assert_true(l.image_dropped);
    g_assert_true(memload_layout_plan(&a, 65536, 100, &l, &err));
    g_assert_cmpuint(l.image, ==, l.pages * 10 / 100);
    g_assert_false(l.image_dropped);
    a.fill = 'c';
    g_assert_true(memload_layout_plan(&a, 65536, 0, &l, &err));
    g_assert_cmpuint(l.fill, ==, l.pages);
    g_assert_cmpuint(l.shared + l.unique + l.zero + l.image, ==, 0);
}

static uint64_t *build(const MemloadArgs *a, uint64_t region, uint64_t bp, uint64_t vm_seed,
                       MemloadLayout *l)
{
    const char *err = NULL;
    g_assert_true(memload_layout_plan(a, region, bp, l, &err));
    uint64_t *t = g_new0(uint64_t, l->pages);
    memload_table_build(t, l, a, bp, vm_seed);
    return t;
}

static void test_build_counts_and_ids(void)
{
    MemloadArgs a;
    MemloadLayout l;
    memload_args_defaults(&a);
    a.pct_shared = 30;
    a.pct_zero = 20;
    a.pct_image = 25;
    g_autofree uint64_t *t = build(&a, 20000, 7, 99, &l);
    uint64_t count[ML_CLASS_COUNT] = {0}, image_ids[7] = {0};
    g_autofree uint8_t *shared_seen = g_new0(uint8_t, l.shared);
    g_autoptr(GHashTable) unique_ids = g_hash_table_new(g_int64_hash, g_int64_equal);
    for (uint64_t i = 0; i < l.pages; i++) {
        unsigned cls = memload_rec_class(t[i]);
        uint64_t id = memload_rec_id(t[i]);
        g_assert_cmpuint(cls, <, ML_CLASS_COUNT);
        count[cls]++;
        if (cls == ML_CLASS_SHARED) {
            g_assert_cmpuint(id, <, l.shared);
            g_assert_false(shared_seen[id]);
            shared_seen[id] = 1;
        } else if (cls == ML_CLASS_UNIQUE) {
            g_assert_true(g_hash_table_add(unique_ids, &t[i]));
        } else if (cls == ML_CLASS_IMAGE) {
            g_assert_cmpuint(id, <, 7);
            image_ids[id]++;
        } else {
            g_assert_cmpuint(cls, ==, ML_CLASS_ZERO);
            g_assert_cmpuint(id, ==, 0);
        }
    }
    g_assert_cmpuint(count[ML_CLASS_SHARED], ==, l.shared);
    g_assert_cmpuint(count[ML_CLASS_UNIQUE], ==, l.unique);
    g_assert_cmpuint(count[ML_CLASS_ZERO], ==, l.zero);
    g_assert_cmpuint(count[ML_CLASS_IMAGE], ==, l.image);
    /* image pages cycle through the blob: counts differ by at most one */
    for (int i = 0; i < 7; i++)
        g_assert_cmpuint(image_ids[i], >=, l.image / 7);
}

/* Longest run of equal classes: in-order runs would be thousands long. */
static uint64_t longest_run(const uint64_t *t, uint64_t n)
{
    uint64_t best = 1, cur = 1;
    for (uint64_t i = 1; i < n; i++) {
        cur = memload_rec_class(t[i]) == memload_rec_class(t[i - 1]) ? cur + 1 : 1;
        if (cur > best)
            best = cur;
    }
    return best;
}

static void test_build_shuffled_per_vm(void)
{
    MemloadArgs a;
    MemloadLayout l;
    memload_args_defaults(&a);
    g_autofree uint64_t *t1 = build(&a, 65536, 0, 1, &l);
    g_autofree uint64_t *t1b = build(&a, 65536, 0, 1, &l);
    g_autofree uint64_t *t2 = build(&a, 65536, 0, 2, &l);
    g_assert_cmpmem(t1, l.pages * 8, t1b, l.pages * 8);
    g_assert_cmpuint(longest_run(t1, l.pages), <, 40);
    uint64_t same = 0;
    for (uint64_t i = 0; i < l.pages; i++)
        same += t1[i] == t2[i] && memload_rec_class(t1[i]) != ML_CLASS_ZERO;
    g_assert_cmpuint(same, <, l.pages / 100);
    /* The first 1000 slots hold a mix of classes near the planned ratio. */
    uint64_t shared = 0;
    for (uint64_t i = 0; i < 1000; i++)
        shared += memload_rec_class(t1[i]) == ML_CLASS_SHARED;
    g_assert_cmpuint(shared, >, 300);
    g_assert_cmpuint(shared, <, 500);
}

/* layout=realistic: the same classes and ids as shuffled, each shared id
 * once; 75 % of the shared contents in runs of 1..64 consecutive ids at
 * the same frames in VMs of other seeds; the rest differs between them. */
static void test_build_realistic(void)
{
    MemloadArgs a;
    MemloadLayout l;
    char err[256];
    memload_args_defaults(&a);
    g_assert_true(memload_args_parse(&a, "layout=realistic", err, sizeof(err)));
    g_assert_true(a.realistic);
    g_autofree uint64_t *t1 = build(&a, 65536, 5, 1, &l);
    g_autofree uint64_t *t2 = build(&a, 65536, 5, 2, &l);
    uint64_t runs = l.shared * ML_RUN_SHARE_PCT / 100;
    uint64_t count[ML_CLASS_COUNT] = {0};
    g_autofree uint8_t *seen = g_new0(uint8_t, l.shared);
    uint64_t at_same_frame = 0, run_len = 0, nruns = 0, longest = 0, other_same = 0;
    for (uint64_t i = 0; i < l.pages; i++) {
        unsigned cls = memload_rec_class(t1[i]);
        uint64_t id = memload_rec_id(t1[i]);
        count[cls]++;
        if (cls == ML_CLASS_SHARED) {
            g_assert_false(seen[id]);
            seen[id] = 1;
        }
        bool in_run = cls == ML_CLASS_SHARED && id < runs;
        if (in_run) {
            g_assert_cmpuint(t2[i], ==, t1[i]); /* the same frame in the other VM */
            at_same_frame++;
            bool cont = i > 0 && memload_rec_class(t1[i - 1]) == ML_CLASS_SHARED &&
                        memload_rec_id(t1[i - 1]) + 1 == id && run_len < ML_RUN_MAX;
            if (!cont)
                nruns++;
            run_len = cont ? run_len + 1 : 1;
            longest = MAX(longest, run_len);
        } else {
            run_len = 0;
            other_same += t1[i] == t2[i] && cls != ML_CLASS_ZERO;
        }
    }
    g_assert_cmpuint(count[ML_CLASS_SHARED], ==, l.shared);
    g_assert_cmpuint(count[ML_CLASS_UNIQUE], ==, l.unique);
    g_assert_cmpuint(count[ML_CLASS_ZERO], ==, l.zero);
    g_assert_cmpuint(count[ML_CLASS_IMAGE], ==, l.image);
    g_assert_cmpuint(at_same_frame, ==, runs);
    g_assert_cmpuint(longest, <=, ML_RUN_MAX);
    g_assert_cmpuint(longest, >, ML_RUN_MAX / 2);
    /* mean length near 32.5: ids in runs / runs counted (adjacent runs
     * with consecutive ids would count as one) */
    g_assert_cmpuint(runs / nruns, >, 20);
    g_assert_cmpuint(runs / nruns, <, 45);
    g_assert_cmpuint(other_same, <, l.pages / 100); /* the data is each VM's own order */
    /* runs are spread over the whole table, not packed at its start */
    uint64_t last_half = 0;
    for (uint64_t i = l.pages / 2; i < l.pages; i++)
        last_half += memload_rec_class(t1[i]) == ML_CLASS_SHARED && memload_rec_id(t1[i]) < runs;
    g_assert_cmpuint(last_half, >, runs / 4);
    g_assert_false(memload_args_parse(&a, "layout=sorted", err, sizeof(err)));
    g_assert_nonnull(strstr(err, "layout must be shuffled or realistic"));
}

/* Blob: pages 0,1,2 equal; 3,4 zero; 5 equals 0; 6,7 distinct. */
static uint8_t *make_blob(void)
{
    uint8_t *blob = g_malloc0(8 * ML_PAGE_SIZE);
    for (int p = 0; p < 8; p++) {
        if (p == 3 || p == 4)
            continue;
        int pattern = (p <= 2 || p == 5) ? 0 : p;
        for (uint32_t i = 0; i < ML_PAGE_SIZE; i++)
            blob[p * ML_PAGE_SIZE + i] = (uint8_t)(i * 31 + pattern * 101 + 1);
    }
    return blob;
}

static void test_distinct_blob(void)
{
    g_autofree uint8_t *blob = make_blob();
    uint64_t slots[16] = {0};
    MemloadDistinct d;
    memload_distinct_init(&d, slots, 16, blob, 8);
    for (int rep = 0; rep < 3; rep++)
        for (uint64_t i = 0; i < 8; i++)
            memload_distinct_add(&d, i);
    g_assert_cmpuint(d.distinct, ==, 3);
    g_assert_cmpuint(d.zero, ==, 6);
    memload_distinct_add(&d, 8); /* out of range: ignored */
    g_assert_cmpuint(d.distinct, ==, 3);
    memload_distinct_clear(&d);
    for (int i = 0; i < 16; i++)
        g_assert_cmpuint(slots[i], ==, 0);
    g_assert_cmpuint(d.distinct + d.zero, ==, 0);
}

static void test_truth(void)
{
    g_autofree uint8_t *blob = make_blob();
    MemloadArgs a;
    MemloadLayout l;
    memload_args_defaults(&a);
    a.pct_shared = 20;
    a.pct_zero = 10;
    a.pct_image = 30;
    g_autofree uint64_t *t = build(&a, 4000, 8, 5, &l);
    g_autofree uint64_t *slots = g_new0(uint64_t, l.set_slots);
    g_autofree uint64_t *pool_bits = g_new0(uint64_t, ML_MAX_POOL / 64);
    MemloadDistinct d;
    MemloadTruth tr;
    memload_distinct_init(&d, slots, l.set_slots, blob, 8);
    memload_truth_count(t, l.pages, &d, pool_bits, &tr);
    g_assert_cmpuint(tr.pages[ML_CLASS_SHARED], ==, l.shared);
    g_assert_cmpuint(tr.pages[ML_CLASS_IMAGE], ==, l.image);
    g_assert_cmpuint(tr.distinct_image, ==, 3);
    /* image ids cycle 0..7: ids 3 and 4 are the zero blob pages */
    uint64_t want_zero_img = 0;
    for (uint64_t k = 0; k < l.image; k++)
        want_zero_img += (k % 8 == 3 || k % 8 == 4);
    g_assert_cmpuint(tr.image_zero, ==, want_zero_img);
    g_assert_cmpuint(tr.zero_content, ==, l.zero + want_zero_img);
    g_assert_cmpuint(tr.distinct_nonzero, ==, l.shared + l.unique + 3);
    for (uint64_t i = 0; i < l.set_slots; i++)
        g_assert_cmpuint(slots[i], ==, 0);

    /* Churn-like edits: pool pages (some repeated), fill pages. */
    t[0] = memload_rec_make(ML_CLASS_POOL, 7);
    t[1] = memload_rec_make(ML_CLASS_POOL, 7);
    t[2] = memload_rec_make(ML_CLASS_POOL, 65535);
    t[3] = memload_rec_make(ML_CLASS_FILL, 'a');
    t[4] = memload_rec_make(ML_CLASS_FILL, 'a');
    t[5] = memload_rec_make(ML_CLASS_FILL, 0);
    MemloadTruth t2;
    memload_truth_count(t, l.pages, &d, pool_bits, &t2);
    g_assert_cmpuint(t2.pages[ML_CLASS_POOL], ==, 3);
    g_assert_cmpuint(t2.distinct_pool, ==, 2);
    g_assert_cmpuint(t2.pages[ML_CLASS_FILL], ==, 3);
    g_assert_cmpuint(t2.distinct_fill, ==, 1);
    g_assert_cmpuint(t2.fill_zero, ==, 1);
    uint64_t total = 0;
    for (int c = 0; c < ML_CLASS_COUNT; c++)
        total += t2.pages[c];
    g_assert_cmpuint(total, ==, l.pages);
    g_assert_cmpuint(t2.distinct_nonzero, ==,
                     t2.pages[ML_CLASS_SHARED] + t2.pages[ML_CLASS_UNIQUE] + t2.distinct_image + 2 +
                         1);
}

/* No blob: the set has no slots and must not write the memory it was given
 * (it is the first managed page in the payload). */
static void test_truth_no_set_untouched(void)
{
    MemloadArgs a;
    MemloadLayout l;
    memload_args_defaults(&a);
    g_autofree uint64_t *t = build(&a, 1000, 0, 5, &l);
    uint64_t guard[4] = {11, 22, 33, 44};
    g_autofree uint64_t *pool_bits = g_new0(uint64_t, ML_MAX_POOL / 64);
    MemloadDistinct d;
    MemloadTruth tr;
    memload_distinct_init(&d, guard, 0, NULL, 0);
    memload_truth_count(t, l.pages, &d, pool_bits, &tr);
    g_assert_cmpuint(guard[0], ==, 11);
    g_assert_cmpuint(guard[3], ==, 44);
    g_assert_cmpuint(tr.pages[ML_CLASS_IMAGE], ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/memload/table/plan-auto-fits", test_plan_auto_fits);
    g_test_add_func("/memload/table/plan-pages", test_plan_pages);
    g_test_add_func("/memload/table/build-counts-and-ids", test_build_counts_and_ids);
    g_test_add_func("/memload/table/build-shuffled-per-vm", test_build_shuffled_per_vm);
    g_test_add_func("/memload/table/build-realistic", test_build_realistic);
    g_test_add_func("/memload/table/distinct-blob", test_distinct_blob);
    g_test_add_func("/memload/table/truth", test_truth);
    g_test_add_func("/memload/table/truth-no-set-untouched", test_truth_no_set_untouched);
    return g_test_run();
}
