/* SPDX-License-Identifier: MIT */
/*
 * test-rmap.c - the reverse map (rmap/rmap.h) against the kernel's own
 * answer, with real KVM VMs running memload (issue 4).
 *
 * Every VM runs in its own process; this one is their supervisor and holds
 * the reverse map, the clone groups and the engines' pools.  The
 * brute-force answer: stop the engines, pause every VM, read every guest
 * page through its VM process's /proc/PID/mem (so every page a VM maps is
 * in its page table), and read the physical frame number of every page of
 * every VM from its process's /proc/PID/pagemap (as root).  Two guest
 * pages map the same frame iff their PFNs are equal, whichever processes
 * they are in.  The check then asks the reverse map, for every guest
 * page, which frame backs it (sp_rmap_lookup) and walks that frame
 * (sp_rmap_walk, plain and SP_RMAP_EXACT): the set of (VM, gfn) returned
 * must equal the set of pages with that PFN, the frame's own PFN (its page
 * in the group file or the pool, through this process's view of them)
 * must be that PFN, and a page the map calls private must not share its
 * PFN with any other page.  The shared zero page is left out (every
 * untouched anonymous page maps it).
 *
 * Also checked: every frame allocated in an engine's pool is found by some
 * lookup (no pool frame without a mapper), and every group whose file is
 * still open has a member.
 *
 * Workloads: a random sequence (seeded; the seed is printed) of clones,
 * clones of clones, re-clones, workload changes and exits over two
 * families, one under the sharing engine (dedup merges across VMs of one
 * sharing domain, clones by full copy) and one without (clones by layers);
 * and the three exit orders of the issue.  Under the engine, an unrelated
 * VM's pages get merged onto the family's group frames, so some frames are
 * shared both ways (clone members and engine merges); the tests require it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guest-tools/memload.h"
#include "rmap/rmap.h"
#include "tests/lib/clone-harness.h"

typedef struct Loc {
    guint vm; /* index in the checked set */
    uint64_t gfn;
} Loc;

typedef struct CheckStats {
    uint64_t group_frames, group_maps, pool_frames, pool_maps, private_pages;
    uint64_t both_frames;     /* group frames mapped by members and by engine merges */
    uint64_t merged_on_group; /* pages the engine merged onto group frames */
} CheckStats;

typedef struct WalkCtx {
    GHashTable *vm_index; /* vm id -> index + 1 */
    GArray *hits;         /* Loc */
} WalkCtx;

static bool collect_hit(const SpRmapHit *hit, void *opaque)
{
    WalkCtx *w = opaque;
    guint idx = GPOINTER_TO_UINT(g_hash_table_lookup(w->vm_index, &hit->vm_id));
    g_assert_cmpuint(idx, >, 0); /* a VM outside the checked set would be a bug here */
    Loc l = {idx - 1, hit->gfn};
    g_array_append_val(w->hits, l);
    return true;
}

static gint loc_cmp(gconstpointer a, gconstpointer b)
{
    const Loc *x = a, *y = b;
    if (x->vm != y->vm)
        return x->vm < y->vm ? -1 : 1;
    return x->gfn < y->gfn ? -1 : x->gfn > y->gfn;
}

/* PFN of page `off` of a group's file, through a read-only shared view;
 * 0 if the file has no page there (a hole); `fallback` if the group's last
 * member went (its file lives on in the engine's merges onto it: then the
 * check rests on the set equality alone). */
static uint64_t group_page_pfn(SpCloneGroup *g, uint64_t off, uint64_t fallback)
{
    int fd = sp_clone_group_fd(g);
    if (fd < 0)
        return fallback;
    off_t data = lseek(fd, (off_t)(off * 4096), SEEK_DATA);
    if (data != (off_t)(off * 4096))
        return 0;
    uint8_t *v = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, (off_t)(off * 4096));
    g_assert_true(v != MAP_FAILED);
    (void)*(volatile uint8_t *)v;
    uint64_t pfn = harness_pfn(v);
    munmap(v, 4096);
    return pfn;
}

/* PFN of a pool frame, through the supervisor's view of its engine's pool
 * (read once, so that it is mapped here too). */
static uint64_t pool_frame_pfn(const SpFrameRef *f)
{
    const volatile uint8_t *v = sp_engine_frame_ptr((SpEngine *)f->pool, f);
    if (!v)
        g_error("pool frame %" G_GUINT64_FORMAT " named by the reverse map is not in use",
                f->index);
    (void)*v;
    return harness_pfn((const void *)v);
}

static guint frame_hash(gconstpointer p)
{
    const SpFrameRef *f = p;
    return g_direct_hash(f->group) ^ g_direct_hash(f->pool) ^ (guint)f->index ^
           (guint)(f->index >> 32) ^ f->kind;
}

static gboolean frame_equal(gconstpointer a, gconstpointer b)
{
    const SpFrameRef *x = a, *y = b;
    return x->kind == y->kind && x->group == y->group && x->pool == y->pool && x->index == y->index;
}

/* The kernel's answer, VMs paused: every page's PFN, and the pages behind
 * each PFN (the shared zero page left out). */
typedef struct Truth {
    SpVm **vms;
    guint n;
    uint64_t zero;        /* PFN of the shared zero page */
    uint64_t **pfn;       /* per VM, per gfn: its PFN (0: not present) */
    uint64_t *np;         /* per VM: its number of pages */
    GHashTable *by_pfn;   /* PFN -> GArray of Loc */
    GHashTable *vm_index; /* vm id -> index + 1 */
} Truth;

static void truth_read(Truth *t, SpVm **vms, guint n)
{
    *t = (Truth){.vms = vms, .n = n, .zero = harness_zero_pfn()};
    t->pfn = g_new0(uint64_t *, n);
    t->np = g_new0(uint64_t, n);
    t->by_pfn =
        g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, (GDestroyNotify)g_array_unref);
    t->vm_index = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    for (guint i = 0; i < n; i++) {
        uint64_t id = sp_vm_id(vms[i]);
        g_hash_table_insert(t->vm_index, g_memdup2(&id, 8), GUINT_TO_POINTER(i + 1));
        t->pfn[i] = ram_pfns(vms[i], &t->np[i]);
        for (uint64_t g = 0; g < t->np[i]; g++) {
            uint64_t p = t->pfn[i][g];
            if (!p || p == t->zero)
                continue;
            GArray *a = g_hash_table_lookup(t->by_pfn, &p);
            if (!a) {
                a = g_array_new(FALSE, FALSE, sizeof(Loc));
                g_hash_table_insert(t->by_pfn, g_memdup2(&p, 8), a);
            }
            Loc l = {i, g};
            g_array_append_val(a, l);
        }
    }
}

static void truth_clear(Truth *t)
{
    for (guint i = 0; i < t->n; i++)
        g_free(t->pfn[i]);
    g_free(t->pfn);
    g_free(t->np);
    g_hash_table_unref(t->by_pfn);
    g_hash_table_unref(t->vm_index);
}

/* The pages that map PFN p (NULL for none, a hole or the zero page). */
static GArray *truth_pages(const Truth *t, uint64_t p)
{
    return p && p != t->zero ? g_hash_table_lookup(t->by_pfn, &p) : NULL;
}

/* A page the rmap calls private must not share its PFN with another page. */
static void check_private(const Truth *t, guint i, uint64_t g)
{
    uint64_t p = t->pfn[i][g];
    GArray *same = truth_pages(t, p);
    if (!same || same->len <= 1)
        return;
    const Loc *o = &g_array_index(same, Loc, 0);
    if (o->vm == i && o->gfn == g)
        o++;
    g_error("%s gfn 0x%" G_GINT64_MODIFIER "x: the rmap says private, but PFN 0x%" G_GINT64_MODIFIER
            "x is also mapped by %s gfn 0x%" G_GINT64_MODIFIER "x",
            sp_vm_name(t->vms[i]), g, p, sp_vm_name(t->vms[o->vm]), o->gfn);
}

/* The walk found exactly the pages pagemap shows behind the frame's PFN. */
static void check_same_pages(const Truth *t, const SpFrameRef *f, GArray *same, GArray *hits)
{
    g_array_sort(hits, loc_cmp);
    g_array_sort(same, loc_cmp);
    bool equal = same->len == hits->len;
    for (guint k = 0; equal && k < same->len; k++)
        equal = loc_cmp(&g_array_index(same, Loc, k), &g_array_index(hits, Loc, k)) == 0;
    if (equal)
        return;
    for (guint k = 0; k < same->len; k++)
        printf("#   pagemap: %s gfn 0x%" G_GINT64_MODIFIER "x\n",
               sp_vm_name(t->vms[g_array_index(same, Loc, k).vm]), g_array_index(same, Loc, k).gfn);
    for (guint k = 0; k < hits->len; k++)
        printf("#   rmap:    %s gfn 0x%" G_GINT64_MODIFIER "x\n",
               sp_vm_name(t->vms[g_array_index(hits, Loc, k).vm]), g_array_index(hits, Loc, k).gfn);
    g_error("%s frame %" G_GUINT64_FORMAT ": the walk found %u mappings, pagemap %u",
            f->kind == SP_FRAME_POOL ? "pool" : "group", f->index, hits->len, same->len);
}

/* Walk frame f, which the rmap names for page (vm i, gfn g): the frame's
 * own page must have g's PFN, and the walk must find exactly the pages
 * with that PFN. */
static void check_frame(const Truth *t, guint i, uint64_t g, const SpFrameRef *f, GArray *hits,
                        CheckStats *cs)
{
    uint64_t p = t->pfn[i][g];
    WalkCtx w = {t->vm_index, hits};
    g_array_set_size(hits, 0);
    uint64_t nh = sp_rmap_walk(f, 0, collect_hit, &w);
    g_assert_cmpuint(nh, ==, hits->len);
    g_assert_cmpuint(sp_rmap_walk(f, SP_RMAP_EXACT, NULL, NULL), ==, nh);
    /* the frame's own page */
    uint64_t fp =
        f->kind == SP_FRAME_POOL ? pool_frame_pfn(f) : group_page_pfn(f->group, f->index, p);
    if (f->kind == SP_FRAME_GROUP) {
        cs->group_frames++;
        cs->group_maps += nh;
        /* a hit at another gfn, or by a page that left its own
         * layer, is an engine merge onto this group frame */
        uint64_t merged = 0;
        for (guint k = 0; k < hits->len; k++) {
            const Loc *l = &g_array_index(hits, Loc, k);
            merged +=
                l->gfn != f->index || !sp_rmap_vm_maps_layer(sp_vm_rmap(t->vms[l->vm]), l->gfn);
        }
        cs->merged_on_group += merged;
        cs->both_frames += merged && merged < nh;
    } else {
        cs->pool_frames++;
        cs->pool_maps += nh;
    }
    if (!fp || !p || p == t->zero) {
        /* A hole of a group file: members read zeros without a
         * file page.  Every hit must be such a page, too. */
        g_assert_cmpuint(f->kind, ==, SP_FRAME_GROUP);
        for (guint k = 0; k < hits->len; k++) {
            const Loc *l = &g_array_index(hits, Loc, k);
            uint64_t q = t->pfn[l->vm][l->gfn];
            if (q && q != t->zero && q != fp)
                g_error("hole frame %" G_GUINT64_FORMAT " of a group reported for %s "
                        "gfn 0x%" G_GINT64_MODIFIER "x, which maps PFN 0x%" G_GINT64_MODIFIER "x",
                        f->index, sp_vm_name(t->vms[l->vm]), l->gfn, q);
        }
        return;
    }
    if (fp != p)
        g_error(
            "%s gfn 0x%" G_GINT64_MODIFIER "x: maps PFN 0x%" G_GINT64_MODIFIER
            "x but the rmap says %s frame %" G_GUINT64_FORMAT " (PFN 0x%" G_GINT64_MODIFIER "x)",
            sp_vm_name(t->vms[i]), g, p, f->kind == SP_FRAME_POOL ? "pool" : "group", f->index, fp);
    check_same_pages(t, f, truth_pages(t, p), hits);
}

/* Check 1: for every guest page, the frame the rmap names (sp_rmap_lookup)
 * and that frame's walk agree with pagemap.  The pool frames met are
 * added to pool_frames. */
static void check_pages(const Truth *t, GHashTable *pool_frames, CheckStats *cs)
{
    g_autoptr(GHashTable) done = g_hash_table_new_full(frame_hash, frame_equal, g_free, NULL);
    g_autoptr(GArray) hits = g_array_new(FALSE, FALSE, sizeof(Loc));
    for (guint i = 0; i < t->n; i++) {
        SpRmapVm *rv = sp_vm_rmap(t->vms[i]);
        for (uint64_t g = 0; g < t->np[i]; g++) {
            SpFrameRef f = sp_rmap_lookup(rv, g);
            if (f.kind == SP_FRAME_NONE) {
                check_private(t, i, g);
                cs->private_pages++;
                continue;
            }
            if (f.kind == SP_FRAME_POOL)
                g_hash_table_add(pool_frames, g_memdup2(&f, sizeof(f)));
            if (g_hash_table_contains(done, &f))
                continue;
            g_hash_table_add(done, g_memdup2(&f, sizeof(f)));
            check_frame(t, i, g, &f, hits, cs);
        }
    }
}

/* Check 2: no pool frame without a mapper: every frame the engines have
 * allocated was reached by some lookup. */
static void check_pool_frames(SpEngine **engines, guint neng, GHashTable *pool_frames)
{
    uint64_t allocated = 0;
    for (guint e = 0; e < neng; e++) {
        SpEngineStats st;
        sp_engine_get_stats(engines[e], &st);
        allocated += st.pool_frames;
    }
    g_assert_cmpuint(allocated, ==, g_hash_table_size(pool_frames));
}

/* Check 3: no group file kept open without a member. */
static void check_group_files(void)
{
    g_autofree SpCloneGroupStats *gs = NULL;
    uint32_t ng = sp_rmap_group_stats(&gs);
    for (uint32_t k = 0; k < ng; k++)
        if (gs[k].file_open && gs[k].members == 0)
            g_error("group %" G_GUINT64_FORMAT " keeps its file open with no member", gs[k].id);
}

/* The whole comparison, VMs paused and engines stopped. */
static void compare(SpVm **vms, guint n, SpEngine **engines, guint neng, CheckStats *cs)
{
    Truth t;
    truth_read(&t, vms, n);
    g_autoptr(GHashTable) pool_frames =
        g_hash_table_new_full(frame_hash, frame_equal, g_free, NULL);
    check_pages(&t, pool_frames, cs);
    truth_clear(&t);
    check_pool_frames(engines, neng, pool_frames);
    check_group_files();
}

/* Check the reverse map of every VM of these harnesses (all must run). */
static CheckStats rmap_check(Harness **hs, guint nh, const char *when)
{
    g_autoptr(GPtrArray) vms = g_ptr_array_new();
    SpEngine *engines[4];
    guint neng = 0;
    for (guint k = 0; k < nh; k++) {
        if (hs[k]->engine) {
            harness_engine_run(hs[k], 0); /* returns between two batches: no merge after */
            engines[neng++] = hs[k]->engine;
        }
        for (guint i = 0; i < hs[k]->vms->len; i++)
            g_ptr_array_add(vms, hs[k]->vms->pdata[i]);
    }
    for (guint i = 0; i < vms->len; i++) {
        g_autoptr(GError) err = NULL;
        if (!sp_vm_pause(vms->pdata[i], &err))
            g_error("%s", err->message);
    }
    for (guint i = 0; i < vms->len; i++) {
        touch_read(vms->pdata[i]);
        g_autoptr(GError) err = NULL;
        if (!sp_rmap_sync(sp_vm_rmap(vms->pdata[i]), &err))
            g_error("%s", err->message);
    }
    CheckStats cs = {0};
    gint64 t0 = g_get_monotonic_time();
    compare((SpVm **)vms->pdata, vms->len, engines, neng, &cs);
    printf("# rmap == pagemap %s: %u VMs, %" G_GUINT64_FORMAT " group frames (%" G_GUINT64_FORMAT
           " mappings, %" G_GUINT64_FORMAT " of them engine merges; %" G_GUINT64_FORMAT
           " frames both), %" G_GUINT64_FORMAT " pool frames (%" G_GUINT64_FORMAT
           " mappings), %" G_GUINT64_FORMAT " private pages (%.0f ms)\n",
           when, vms->len, cs.group_frames, cs.group_maps, cs.merged_on_group, cs.both_frames,
           cs.pool_frames, cs.pool_maps, cs.private_pages, (g_get_monotonic_time() - t0) / 1000.0);
    for (guint i = 0; i < vms->len; i++)
        sp_vm_resume(vms->pdata[i], NULL);
    for (guint k = 0; k < nh; k++)
        if (hs[k]->engine)
            harness_engine_run(hs[k], 1);
    return cs;
}

/* The engine at full speed and without the mapping budget: these tests
 * need merges both ways (pool frames and the family's group frames), and
 * the default budget, once spent on pool frames, refuses the scattered
 * merges onto group frames (which are indexed last). */
static Harness *engine_harness(void)
{
    Harness *h = harness_new();
    SpEngineKnobs k;
    sp_engine_default_knobs(&k);
    k.sleep_millisecs = 0;
    k.pages_to_scan = 20000;
    k.map_budget = 0;
    harness_use_engine(h, &k);
    return h;
}

static SpVm *pick(Harness *h)
{
    return h->vms->pdata[g_test_rand_int_range(0, (gint32)h->vms->len)];
}

static void all_verify(Harness *h, uint64_t more)
{
    wait_more_rounds(h, (SpVm **)h->vms->pdata, h->vms->len, more);
}

/* Clones, clones of clones, re-clones, dedup merges and exits, in a random
 * order; the reverse map is compared with pagemap after every step. */
static void test_random(void)
{
    printf("# seed %u (rerun with --seed)\n", g_test_rand_int()); /* GLib prints the seed too */
    Harness *he = engine_harness(), *hl = harness_new();
    Harness *hs[2] = {he, hl};
    /* Inside the emulated host half the RAM: at 64 MiB the test passed
     * its 25 minutes there in step 2 of 6. */
    const char *mem = harness_slow() > 1 ? "32M" : "64M";
    SpVm *a = harness_add(he, "name=a,mem=%s,vcpus=2,domain=fam," MEMLOAD ",rate=300", mem);
    harness_add(he, "name=b,mem=%s,vcpus=1,domain=fam," MEMLOAD ",rate=300", mem);
    SpVm *c = harness_add(hl, "name=c,mem=%s,vcpus=2," MEMLOAD ",rate=300", mem);
    harness_start_all(he);
    harness_start_all(hl);
    g_assert_true(harness_wait_rounds(he, a, 1, HARNESS_DEADLINE_S));
    g_assert_true(harness_wait_rounds(hl, c, 1, HARNESS_DEADLINE_S));
    g_assert_true(harness_wait_scans(he->engine, 3, HARNESS_DEADLINE_S));
    rmap_check(hs, 2, "at start (dedup only)");

    /* Guaranteed shapes first: a family under the engine and a layered
     * chain without it; then random steps. */
    SpVm *kids[4];
    clone_into(he, a, "a-", 2, kids, NULL);
    clone_into(he, kids[0], "a-0-", 1, kids + 2, NULL); /* clone of a clone */
    clone_into(hl, c, "c-", 2, kids, NULL);
    clone_into(hl, kids[1], "c-1-", 1, kids + 2, NULL); /* chain of layers */
    clone_into(hl, c, "c-r", 1, kids, NULL);            /* re-clone: a new layer */
    all_verify(he, 1);
    all_verify(hl, 1);
    g_assert_true(harness_wait_scans(he->engine, 2, HARNESS_DEADLINE_S));

    uint64_t both = rmap_check(hs, 2, "after clones and clones of clones").both_frames;
    static const char *ops[] = {"clone", "exit", "fill-zero", "mix", "rate"};
    for (int step = 0; step < 6; step++) {
        Harness *h = hs[g_test_rand_int_range(0, 2)];
        int op = g_test_rand_int_range(0, 5);
        if (op == 0 && h->vms->len >= 8)
            op = 4;
        if (op == 1 && h->vms->len <= 2)
            op = 3;
        SpVm *vm = pick(h);
        g_autofree char *what = g_strdup_printf("step %d: %s %s", step, ops[op], sp_vm_name(vm));
        switch (op) {
        case 0: {
            g_autofree char *prefix = g_strdup_printf("%s-s%d-", sp_vm_name(vm), step);
            clone_into(h, vm, prefix, (uint32_t)g_test_rand_int_range(1, 3), kids, NULL);
            break;
        }
        case 1:
            drop_vm(h, vm);
            break;
        case 2:
            g_assert_true(harness_command(vm, ML_CMD_FILL, 0, HARNESS_DEADLINE_S));
            break;
        case 3:
            g_assert_true(harness_command(vm, ML_CMD_MIX, 0, HARNESS_DEADLINE_S));
            break;
        default:
            g_assert_true(harness_command(vm, ML_CMD_RATE, (uint32_t)g_test_rand_int_range(0, 3000),
                                          HARNESS_DEADLINE_S));
            break;
        }
        all_verify(h, 1);
        if (h->engine)
            g_assert_true(harness_wait_scans(h->engine, 2, HARNESS_DEADLINE_S));
        uint64_t b = rmap_check(hs, 2, what).both_frames; /* (MAX evaluates twice) */
        both = MAX(both, b);
    }
    /* b's pages merged onto the a family's group frames: frames both ways */
    g_assert_cmpuint(both, >, 0);
    g_assert_cmpuint(harness_integrity_count(he) + harness_integrity_count(hl), ==, 0);
    harness_free(he);
    harness_free(hl);
}

static SpVm *by_name(Harness *h, const char *name)
{
    for (guint i = 0; i < h->vms->len; i++)
        if (!strcmp(sp_vm_name(h->vms->pdata[i]), name))
            return h->vms->pdata[i];
    g_error("no VM %s", name);
}

/* One exit order on a chain tpl -> k0 -> k0-0 (plus k1), with or without
 * the engine: after each exit every survivor verifies all its bytes and
 * the reverse map equals pagemap. */
static void exit_order(bool engine, const char *const *order, const char *label)
{
    Harness *h = engine ? engine_harness() : harness_new();
    SpVm *t = harness_add(h, "name=tpl,mem=64M,vcpus=2,domain=fam," MEMLOAD ",rate=300");
    if (engine) /* an unrelated VM whose pages the family's dedup with */
        harness_add(h, "name=other,mem=64M,vcpus=1,domain=fam," MEMLOAD);
    harness_start_all(h);
    g_assert_true(harness_wait_rounds(h, t, 1, HARNESS_DEADLINE_S));
    SpVm *k[2], *kk[1];
    clone_into(h, t, "k", 2, k, NULL);
    clone_into(h, k[0], "k0-", 1, kk, NULL);
    all_verify(h, 1);
    if (engine)
        g_assert_true(harness_wait_scans(h->engine, 2, HARNESS_DEADLINE_S));
    g_autofree char *w0 = g_strdup_printf("%s: family of 4 made", label);
    CheckStats cs = rmap_check(&h, 1, w0);
    if (engine) /* `other` merged onto the family's group frames */
        g_assert_cmpuint(cs.both_frames, >, 0);
    for (int i = 0; order[i]; i++) {
        drop_vm(h, by_name(h, order[i]));
        all_verify(h, 2);
        if (engine)
            g_assert_true(harness_wait_scans(h->engine, 2, HARNESS_DEADLINE_S));
        g_autofree char *w = g_strdup_printf("%s: %s exited", label, order[i]);
        rmap_check(&h, 1, w);
    }
    harness_free(h);
}

static void test_exit_template_first(void)
{
    const char *order[] = {"tpl", "k1", NULL};
    exit_order(false, order, "template first");
    exit_order(true, order, "template first, engine");
}

static void test_exit_middle_first(void)
{
    const char *order[] = {"k0", "tpl", NULL};
    exit_order(false, order, "middle of the chain first");
    exit_order(true, order, "middle of the chain first, engine");
}

static void test_exit_children_first(void)
{
    const char *order[] = {"k0-0", "k1", "k0", NULL};
    exit_order(false, order, "children first");
    exit_order(true, order, "children first, engine");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/rmap/random", test_random);
    g_test_add_func("/rmap/exit-template-first", test_exit_template_first);
    g_test_add_func("/rmap/exit-middle-first", test_exit_middle_first);
    g_test_add_func("/rmap/exit-children-first", test_exit_children_first);
    return g_test_run();
}
