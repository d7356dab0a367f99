/* SPDX-License-Identifier: MIT */
/*
 * test-memload-content.c - memload's page content generator, on the host.
 *
 * The same guest-tools/memload-content.c the payload runs: determinism,
 * which classes agree across VMs (shared, pool) and which must not (unique),
 * and that the checker finds a single flipped byte at every offset of a
 * page, reporting that exact offset and the words around it.
 */
#include <glib.h>
#include <string.h>

#include "guest-tools/memload-content.h"

static uint64_t page_a[ML_PAGE_WORDS], page_b[ML_PAGE_WORDS];

static MemloadContentCtx ctx_for(uint64_t seed, uint64_t vm_id, const char *name)
{
    return (MemloadContentCtx){
        .common_seed = seed,
        .vm_seed = memload_vm_seed(seed, vm_id, name),
    };
}

static void test_deterministic(void)
{
    MemloadContentCtx c = ctx_for(1, 3, "a");
    uint64_t rec = memload_rec_make(ML_CLASS_SHARED, 42);
    memload_page_fill(page_a, &c, rec);
    memload_page_fill(page_b, &c, rec);
    g_assert_cmpmem(page_a, sizeof(page_a), page_b, sizeof(page_b));
    g_assert_false(memload_page_is_zero(page_a));
    /* Every word agrees with the random-access generator. */
    for (uint32_t i = 0; i < ML_PAGE_WORDS; i++)
        g_assert_cmphex(page_a[i], ==, memload_content_word(&c, rec, i));
    /* The words of one page are not all alike. */
    GHashTable *seen = g_hash_table_new(g_int64_hash, g_int64_equal);
    for (uint32_t i = 0; i < ML_PAGE_WORDS; i++)
        g_hash_table_add(seen, &page_a[i]);
    g_assert_cmpuint(g_hash_table_size(seen), ==, ML_PAGE_WORDS);
    g_hash_table_destroy(seen);
}

static void test_cross_vm(void)
{
    MemloadContentCtx a = ctx_for(9, 1, "vm-a"), b = ctx_for(9, 2, "vm-b"),
                      other = ctx_for(10, 1, "vm-a");
    /* shared and pool: same seed => same bytes in every VM. */
    for (unsigned cls = ML_CLASS_SHARED; cls <= ML_CLASS_POOL;
         cls += ML_CLASS_POOL - ML_CLASS_SHARED) {
        memload_page_fill(page_a, &a, memload_rec_make(cls, 5));
        memload_page_fill(page_b, &b, memload_rec_make(cls, 5));
        g_assert_true(memload_page_equal(page_a, page_b));
        memload_page_fill(page_b, &other, memload_rec_make(cls, 5));
        g_assert_false(memload_page_equal(page_a, page_b));
        memload_page_fill(page_b, &a, memload_rec_make(cls, 6));
        g_assert_false(memload_page_equal(page_a, page_b));
    }
    /* unique: differs between VMs (vm_id or name) with the same id and seed. */
    memload_page_fill(page_a, &a, memload_rec_make(ML_CLASS_UNIQUE, 5));
    memload_page_fill(page_b, &b, memload_rec_make(ML_CLASS_UNIQUE, 5));
    g_assert_false(memload_page_equal(page_a, page_b));
    MemloadContentCtx same_id = ctx_for(9, 1, "vm-b");
    memload_page_fill(page_b, &same_id, memload_rec_make(ML_CLASS_UNIQUE, 5));
    g_assert_false(memload_page_equal(page_a, page_b));
    /* Classes never collide with each other for the same id. */
    memload_page_fill(page_b, &a, memload_rec_make(ML_CLASS_SHARED, 5));
    g_assert_false(memload_page_equal(page_a, page_b));
    memload_page_fill(page_a, &a, memload_rec_make(ML_CLASS_POOL, 5));
    g_assert_false(memload_page_equal(page_a, page_b));
}

static void test_zero_fill_image(void)
{
    static uint8_t blob[3 * ML_PAGE_SIZE];
    for (size_t i = 0; i < sizeof(blob); i++)
        blob[i] = (uint8_t)(i * 7 + i / ML_PAGE_SIZE * 13 + 1);
    MemloadContentCtx c = ctx_for(1, 1, "x");
    c.blob = blob;
    c.blob_pages = 3;

    memset(page_a, 0x55, sizeof(page_a));
    memload_page_fill(page_a, &c, memload_rec_make(ML_CLASS_ZERO, 0));
    g_assert_true(memload_page_is_zero(page_a));
    g_assert_true(memload_page_check(page_a, &c, 0, NULL));

    memload_page_fill(page_a, &c, memload_rec_make(ML_CLASS_FILL, 'c'));
    for (size_t i = 0; i < ML_PAGE_SIZE; i++)
        g_assert_cmpuint(((uint8_t *)page_a)[i], ==, 'c');
    g_assert_true(memload_page_check(page_a, &c, memload_rec_make(ML_CLASS_FILL, 'c'), NULL));
    g_assert_false(memload_page_check(page_a, &c, memload_rec_make(ML_CLASS_FILL, 'a'), NULL));

    memload_page_fill(page_a, &c, memload_rec_make(ML_CLASS_IMAGE, 2));
    g_assert_cmpmem(page_a, ML_PAGE_SIZE, blob + 2 * ML_PAGE_SIZE, ML_PAGE_SIZE);
    g_assert_true(memload_page_check(page_a, &c, memload_rec_make(ML_CLASS_IMAGE, 2), NULL));
    g_assert_false(memload_page_check(page_a, &c, memload_rec_make(ML_CLASS_IMAGE, 1), NULL));
}

/* The acceptance property: one flipped byte anywhere is found, at its exact
 * offset, for every class. */
static void test_single_flip_every_offset(void)
{
    static uint8_t blob[ML_PAGE_SIZE];
    for (size_t i = 0; i < sizeof(blob); i++)
        blob[i] = (uint8_t)(i ^ 0xa5);
    MemloadContentCtx c = ctx_for(3, 4, "flip");
    c.blob = blob;
    c.blob_pages = 1;
    const uint64_t recs[] = {
        memload_rec_make(ML_CLASS_ZERO, 0),   memload_rec_make(ML_CLASS_SHARED, 17),
        memload_rec_make(ML_CLASS_UNIQUE, 9), memload_rec_make(ML_CLASS_IMAGE, 0),
        memload_rec_make(ML_CLASS_POOL, 3),   memload_rec_make(ML_CLASS_FILL, 0xff),
    };
    for (size_t r = 0; r < G_N_ELEMENTS(recs); r++) {
        memload_page_fill(page_a, &c, recs[r]);
        g_assert_true(memload_page_check(page_a, &c, recs[r], NULL));
        uint8_t *bytes = (uint8_t *)page_a;
        for (uint32_t off = 0; off < ML_PAGE_SIZE; off++) {
            for (unsigned bit = 0; bit < 8; bit += 7) {
                MemloadMismatch mm = {0};
                uint64_t want = page_a[off / 8];
                bytes[off] ^= (uint8_t)(1u << bit);
                g_assert_false(memload_page_check(page_a, &c, recs[r], &mm));
                g_assert_cmpuint(mm.offset, ==, off);
                g_assert_cmphex(mm.expected, ==, want);
                g_assert_cmphex(mm.found, ==, page_a[off / 8]);
                bytes[off] ^= (uint8_t)(1u << bit);
            }
        }
        g_assert_true(memload_page_check(page_a, &c, recs[r], NULL));
    }
}

static void test_first_of_several(void)
{
    MemloadContentCtx c = ctx_for(1, 1, "x");
    uint64_t rec = memload_rec_make(ML_CLASS_UNIQUE, 1);
    MemloadMismatch mm = {0};
    memload_page_fill(page_a, &c, rec);
    ((uint8_t *)page_a)[4000] ^= 1;
    ((uint8_t *)page_a)[1234] ^= 0x80;
    ((uint8_t *)page_a)[1235] ^= 0x80;
    g_assert_false(memload_page_check(page_a, &c, rec, &mm));
    g_assert_cmpuint(mm.offset, ==, 1234);
}

static void test_hash(void)
{
    MemloadContentCtx c = ctx_for(1, 1, "x");
    memload_page_fill(page_a, &c, memload_rec_make(ML_CLASS_SHARED, 1));
    memcpy(page_b, page_a, sizeof(page_a));
    g_assert_cmphex(memload_page_hash(page_a), ==, memload_page_hash(page_b));
    ((uint8_t *)page_b)[100] ^= 1;
    g_assert_cmphex(memload_page_hash(page_a), !=, memload_page_hash(page_b));
}

static void test_rng(void)
{
    uint64_t s = 1, counts[10] = {0};
    for (int i = 0; i < 100000; i++)
        counts[memload_rng_below(&s, 10)]++;
    for (int i = 0; i < 10; i++)
        g_assert_cmpuint(counts[i], >, 9000);
    g_assert_cmphex(memload_rec_class(memload_rec_make(ML_CLASS_POOL, ML_ID_MASK)), ==,
                    ML_CLASS_POOL);
    g_assert_cmphex(memload_rec_id(memload_rec_make(ML_CLASS_POOL, ML_ID_MASK)), ==, ML_ID_MASK);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/memload/content/deterministic", test_deterministic);
    g_test_add_func("/memload/content/cross-vm", test_cross_vm);
    g_test_add_func("/memload/content/zero-fill-image", test_zero_fill_image);
    g_test_add_func("/memload/content/single-flip-every-offset", test_single_flip_every_offset);
    g_test_add_func("/memload/content/first-of-several", test_first_of_several);
    g_test_add_func("/memload/content/hash", test_hash);
    g_test_add_func("/memload/content/rng", test_rng);
    return g_test_run();
}
