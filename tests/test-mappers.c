/* SPDX-License-Identifier: MIT */
/*
 * test-mappers.c - the engine's mapper lists alone (sharing/mappers.c): a
 * random mix of adds and removes over pool and group frames agrees with a
 * reference at every check, through blocks that grow, shrink and are
 * reused and through the packing that gives memory back; the words are 4
 * bytes while every mapper fits (slot below 256, guest page below 2^24)
 * and the lists hold the same mappers once one that does not fit - a page
 * at 64 GiB, a slot of 300 - has made them 8-byte words; lists filled in
 * steps, as a pass fills them, leave free blocks that the trim after a
 * pass gives back.
 */
#include <glib.h>

#include "sharing/engine-priv.h"

#define NVMS    4
#define NFRAMES 40000
#define NPOOL   35000 /* frames 0..NPOOL-1 are pool frames, the rest group frames */

static uint32_t fid_of(uint32_t f)
{
    return f < NPOOL ? f : (f - NPOOL) | GF_BIT;
}

typedef struct Ref {
    GHashTable *of; /* frame id -> GHashTable of mapper words (slot << 40 | gfn) */
} Ref;

static GHashTable *ref_list(Ref *r, uint32_t fid)
{
    GHashTable *l = g_hash_table_lookup(r->of, GUINT_TO_POINTER(fid));
    if (!l) {
        l = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
        g_hash_table_insert(r->of, GUINT_TO_POINTER(fid), l);
    }
    return l;
}

static void ref_add(Ref *r, uint32_t fid, SpEngineVm *vm, uint64_t gfn)
{
    uint64_t *w = g_new(uint64_t, 1);
    *w = (uint64_t)vm->slot_index << 40 | gfn;
    g_assert_true(g_hash_table_add(ref_list(r, fid), w));
}

/* Every frame's list holds exactly the reference's mappers. */
static void check(SpEngine *eng, Ref *r)
{
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, r->of);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        uint32_t fid = GPOINTER_TO_UINT(k);
        GHashTable *want = v;
        ShMappers m = sh_mappers(eng, fid);
        g_assert_cmpuint(m.n, ==, g_hash_table_size(want));
        g_assert_cmpuint(sh_mapper_count(eng, fid), ==, m.n);
        for (uint32_t i = 0; i < m.n; i++) {
            uint64_t w = sh_mappers_at(&m, i);
            g_assert_true(g_hash_table_contains(want, &w));
        }
    }
}

/* Remove one mapper of fid, a random one; false if it has none. */
static bool remove_one(SpEngine *eng, Ref *r, SpEngineVm **vms, uint32_t fid, GRand *rnd)
{
    GHashTable *l = ref_list(r, fid);
    guint n = g_hash_table_size(l);
    if (!n)
        return false;
    guint pick = (guint)g_rand_int_range(rnd, 0, (gint32)n);
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, l);
    while (g_hash_table_iter_next(&it, &k, NULL) && pick--)
        ;
    uint64_t w = *(uint64_t *)k;
    SpEngineVm *vm = NULL;
    for (int i = 0; vms[i]; i++)
        if (vms[i]->slot_index == w >> 40)
            vm = vms[i];
    g_assert_nonnull(vm);
    sh_mapper_remove(eng, fid, vm, w & ((1ULL << 40) - 1));
    g_hash_table_remove(l, &w);
    return true;
}

static uint64_t total_words(Ref *r)
{
    uint64_t n = 0;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, r->of);
    while (g_hash_table_iter_next(&it, NULL, &v))
        n += g_hash_table_size(v);
    return n;
}

static void test_lists(void)
{
    SpEngine *eng = g_new0(SpEngine, 1);
    eng->mappers = sh_maplists_new();
    eng->gmappers = sh_maplists_new();
    SpEngineVm vm[NVMS + 2] = {0};
    SpEngineVm *vms[NVMS + 3] = {0};
    for (int i = 0; i < NVMS + 2; i++) {
        vm[i].slot_index = i < NVMS ? (uint32_t)i * 60 : 300; /* the last two: 300 */
        vms[i] = &vm[i];
    }
    Ref r = {.of = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                         (GDestroyNotify)g_hash_table_unref)};
    GRand *rnd = g_rand_new_with_seed(7);
    const uint32_t nframes = NFRAMES;

    /* Every frame 4 mappers. */
    for (uint32_t f = 0; f < nframes; f++) {
        uint32_t fid = fid_of(f);
        for (int i = 0; i < NVMS; i++) {
            uint64_t gfn = (uint64_t)f * 4 + (uint64_t)i + ((1ULL << 24) - 4 * nframes);
            sh_mapper_add(eng, fid, vms[i], gfn); /* up to 2^24 - 1: still 4 bytes */
            ref_add(&r, fid, vms[i], gfn);
        }
    }
    check(eng, &r);
    uint64_t words = total_words(&r);
    uint64_t bytes = sh_maplists_bytes(eng->mappers) + sh_maplists_bytes(eng->gmappers);
    g_test_message("%u frames, %" G_GUINT64_FORMAT " mappers: %" G_GUINT64_FORMAT " bytes", nframes,
                   words, bytes);
    /* headers of 8 bytes, 4-byte words, a slab at most half again as large */
    g_assert_cmpuint(bytes, <=, 8 * nframes + 6 * words + 2 * 4 * 64);

    /* Random adds and removes: blocks grow, shrink, are reused. */
    for (int step = 0; step < 200000; step++) {
        uint32_t f = (uint32_t)g_rand_int_range(rnd, 0, (gint32)nframes);
        uint32_t fid = fid_of(f);
        if (g_rand_boolean(rnd)) {
            SpEngineVm *v = vms[g_rand_int_range(rnd, 0, NVMS)];
            uint64_t gfn = 0;
            do
                gfn = (uint64_t)g_rand_int_range(rnd, 0, 1 << 24);
            while (g_hash_table_contains(ref_list(&r, fid),
                                         &(uint64_t){(uint64_t)v->slot_index << 40 | gfn}));
            sh_mapper_add(eng, fid, v, gfn);
            ref_add(&r, fid, v, gfn);
        } else {
            remove_one(eng, &r, vms, fid, rnd);
        }
        if (step % 20000 == 0)
            check(eng, &r);
    }
    check(eng, &r);

    /* A page at 64 GiB of guest RAM does not fit: 8-byte words from now
     * on, the same mappers. */
    sh_mapper_add(eng, 3, vms[1], 1ULL << 24);
    ref_add(&r, 3, vms[1], 1ULL << 24);
    check(eng, &r);
    /* the group frames' lists are their own: still 4 bytes, until a slot of 300 */
    sh_mapper_add(eng, 7 | GF_BIT, vms[NVMS], 5);
    ref_add(&r, 7 | GF_BIT, vms[NVMS], 5);
    check(eng, &r);
    words = total_words(&r);
    bytes = sh_maplists_bytes(eng->mappers) + sh_maplists_bytes(eng->gmappers);
    g_assert_cmpuint(bytes, >=, 8 * words);
    g_test_message("8-byte words: %" G_GUINT64_FORMAT " bytes", bytes);

    /* Nearly everything goes: packing gives the memory back, the rest stays. */
    for (uint32_t f = 0; f < nframes; f++) {
        uint32_t fid = fid_of(f);
        while ((f % 100) && remove_one(eng, &r, vms, fid, rnd))
            ;
    }
    check(eng, &r);
    words = total_words(&r);
    uint64_t after = sh_maplists_bytes(eng->mappers) + sh_maplists_bytes(eng->gmappers);
    g_test_message("%" G_GUINT64_FORMAT " mappers left: %" G_GUINT64_FORMAT " bytes", words, after);
    /* (a slab below 64 Ki words is not packed, and the headers stay) */
    g_assert_cmpuint(after, <, bytes / 2);

    g_rand_free(rnd);
    g_hash_table_unref(r.of);
    sh_mappers_free(eng);
    g_free(eng);
}

/* Lists filled as a pass fills them (every frame its second mapper, then
 * every frame its third, then its fourth) leave the smaller blocks free;
 * the trim after a pass gives them back and the lists stay as they were. */
static void test_trim(void)
{
    SpEngine *eng = g_new0(SpEngine, 1);
    eng->mappers = sh_maplists_new();
    eng->gmappers = sh_maplists_new();
    SpEngineVm vm[NVMS] = {0};
    for (int i = 0; i < NVMS; i++)
        vm[i].slot_index = (uint32_t)i;
    Ref r = {.of = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                         (GDestroyNotify)g_hash_table_unref)};
    const uint32_t nframes = NFRAMES;
    for (int i = 0; i < NVMS; i++)
        for (uint32_t f = 0; f < nframes; f++) {
            sh_mapper_add(eng, fid_of(f), &vm[i], f);
            ref_add(&r, fid_of(f), &vm[i], f);
        }
    check(eng, &r);
    uint64_t words = total_words(&r);
    uint64_t before = sh_maplists_bytes(eng->mappers) + sh_maplists_bytes(eng->gmappers);
    g_assert_cmpuint(sh_mappers_trim(eng), ==, 2);
    check(eng, &r);
    uint64_t after = sh_maplists_bytes(eng->mappers) + sh_maplists_bytes(eng->gmappers);
    g_test_message("%" G_GUINT64_FORMAT " mappers filled in steps: %" G_GUINT64_FORMAT
                   " bytes, %" G_GUINT64_FORMAT " after the trim",
                   words, before, after);
    /* 8-byte headers grown by an eighth, 4-byte words in blocks of 4, a
     * sixteenth to spare */
    g_assert_cmpuint(after, <=, 9 * nframes + 4 * words + 4 * words / 16 + 2 * (8 + 4) * 64);
    g_assert_cmpuint(before, >, after + 4 * words / 4);
    g_assert_cmpuint(sh_mappers_trim(eng), ==, 0); /* nothing more to give back */
    /* the trimmed slab goes on: an add grows it, a remove still finds its mapper */
    sh_mapper_add(eng, fid_of(5), &vm[0], 1u << 20);
    ref_add(&r, fid_of(5), &vm[0], 1u << 20);
    GRand *rnd = g_rand_new_with_seed(11);
    g_assert_true(remove_one(eng, &r, (SpEngineVm *[]){&vm[0], &vm[1], &vm[2], &vm[3], NULL},
                             fid_of(9), rnd));
    check(eng, &r);
    g_rand_free(rnd);

    g_hash_table_unref(r.of);
    sh_mappers_free(eng);
    g_free(eng);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/mappers/lists", test_lists);
    g_test_add_func("/mappers/trim", test_trim);
    return g_test_run();
}
