/* SPDX-License-Identifier: MIT */
/*
 * clone-bench.c - cost of cloning a running VM (issue 4 targets).
 *
 * Every VM is a process of its own (samepage-vm) supervised by this one, as
 * `samepage run` does; a clone child is a new VM process that maps the
 * template's group file.  Starts one memload VM (mem=1G by default, 2
 * vCPUs, rate=0) and waits until it has filled and verified all its RAM
 * once, then:
 *   - clones it once and reports the pause (with its parts: parking the
 *     vCPUs, copying resident RAM into the group file, remapping the
 *     template) and the time until the child runs;
 *   - copies as many bytes as the RAM with memcpy between two resident
 *     buffers of this process, the plain-copy baseline, in the same run;
 *   - clones it N times and pauses the children as soon as they run: host
 *     memory per quiet clone (one that has not touched its RAM);
 *   - clones it N more times (default 8) and reports host memory per idle
 *     clone after the children verified all their RAM once: distinct
 *     physical frames over all VMs' RAM (each VM process's
 *     /proc/PID/pagemap), the anonymous memory and page tables of every
 *     VM process and of this one (/proc/PID/status: a clone's process
 *     costs its own heap and page tables) and the system's MemAvailable
 *     (/proc/meminfo), each per clone;
 *   - reverse map: clones a 256 MiB VM into 63 children (a family of 64
 *     running VMs) and times sp_rmap_walk() over 20000 random frames of
 *     their group, each mapped by up to 64 VMs: mean and 99th percentile,
 *     plain and SP_RMAP_EXACT (a read of the mapping VM process's pagemap
 *     per mapping).
 * Usage: clone-bench [MEM [N]]   e.g.  clone-bench 1G 8
 * Run as root (pagemap PFNs) from the build tree.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rmap/rmap.h"
#include "tests/lib/clone-harness.h"

static uint64_t kb_field(const char *file, const char *key)
{
    g_autofree char *s = NULL;
    if (!g_file_get_contents(file, &s, NULL, NULL))
        return 0;
    const char *p = strstr(s, key);
    return p ? g_ascii_strtoull(p + strlen(key), NULL, 10) : 0;
}

static uint64_t family_frames(SpVm **vms, guint n)
{
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    for (guint i = 0; i < n; i++) {
        uint64_t np;
        g_autofree uint64_t *pfn = ram_pfns(vms[i], &np);
        for (uint64_t g = 0; g < np; g++)
            if (pfn[g])
                g_hash_table_add(seen, g_memdup2(&pfn[g], 8));
    }
    return g_hash_table_size(seen);
}

/* Host memory behind a set of VMs: distinct physical frames of their RAM,
 * and the anonymous memory and page tables of their processes and of this
 * one, the supervisor (KiB). */
typedef struct MemSnap {
    uint64_t frames, anon_kb, pte_kb;
} MemSnap;

static MemSnap mem_snap(SpVm **vms, guint n)
{
    MemSnap m = {.frames = family_frames(vms, n)};
    m.anon_kb = kb_field("/proc/self/status", "RssAnon:");
    m.pte_kb = kb_field("/proc/self/status", "VmPTE:");
    for (guint i = 0; i < n; i++) {
        g_autofree char *status = g_strdup_printf("/proc/%d/status", (int)sp_vm_pid(vms[i]));
        m.anon_kb += kb_field(status, "RssAnon:");
        m.pte_kb += kb_field(status, "VmPTE:");
    }
    return m;
}

/* What n clones cost each, from a snapshot before them to one after. */
static void print_per_clone(const MemSnap *a, const MemSnap *b, uint32_t n)
{
    printf("  distinct frames of all VMs: %+.1f KiB\n",
           (double)((int64_t)b->frames - (int64_t)a->frames) * 4 / n);
    printf("  processes' RssAnon:         %+.1f KiB\n",
           (double)((int64_t)b->anon_kb - (int64_t)a->anon_kb) / n);
    printf("  processes' page tables:     %+.1f KiB\n",
           (double)((int64_t)b->pte_kb - (int64_t)a->pte_kb) / n);
}

/* Clone `t` into n children named <prefix><i> with ids first_id + i
 * (not added to the harness); exits on failure. */
static void bench_clone_n(SpVm *t, const char *prefix, uint64_t first_id, uint32_t n, SpVm **kids,
                          SpVmCloneTimes *ct)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    g_autofree uint64_t *ids = g_new(uint64_t, n);
    for (uint32_t i = 0; i < n; i++) {
        g_ptr_array_add(names, g_strdup_printf("%s%u", prefix, i));
        ids[i] = first_id + i;
    }
    if (!sp_vm_clone_many(t, n, (const char *const *)names->pdata, ids, NULL, kids, ct, &err))
        g_error("%s", err->message);
}

/* One child of `t`, named `name` (not added to the harness); exits on failure. */
static SpVm *bench_clone_one(SpVm *t, const char *name, uint64_t id, SpVmCloneTimes *ct)
{
    g_autoptr(GError) err = NULL;
    SpVm *kid = NULL;
    if (!sp_vm_clone_many(t, 1, &name, &id, NULL, &kid, ct, &err))
        g_error("%s", err->message);
    return kid;
}

/* n children paused as soon as they run: the memory of a clone that has
 * not touched its RAM yet (a guest that sits idle), then freed again. */
static void bench_quiet_clones(Harness *h, SpVm *t, uint32_t n)
{
    g_autoptr(GError) err = NULL;
    MemSnap m0 = mem_snap((SpVm **)h->vms->pdata, h->vms->len);
    g_autofree SpVm **kids = g_new0(SpVm *, n);
    SpVmCloneTimes ct;
    bench_clone_n(t, "quiet", 300, n, kids, &ct);
    for (uint32_t i = 0; i < n; i++)
        if (!sp_vm_pause(kids[i], &err))
            g_error("%s", err->message);
    g_autoptr(GPtrArray) all = g_ptr_array_new();
    for (guint i = 0; i < h->vms->len; i++)
        g_ptr_array_add(all, h->vms->pdata[i]);
    for (uint32_t i = 0; i < n; i++)
        g_ptr_array_add(all, kids[i]);
    MemSnap m1 = mem_snap((SpVm **)all->pdata, all->len);
    printf(
        "per quiet clone (%u clones paused as soon as they ran, %.0f ms after the clone began):\n",
        n, ct.children_ms);
    print_per_clone(&m0, &m1, n);
    for (uint32_t i = 0; i < n; i++) {
        sp_vm_resume(kids[i], NULL);
        sp_vm_free(kids[i]);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Walks of `nwalk` random frames of the template's group; per-walk times
 * in microseconds, sorted, into `us`; mappings visited into *visits. */
static void time_walks(SpRmapVm *rv, uint64_t npages, unsigned flags, double *us, int nwalk,
                       uint64_t *visits)
{
    *visits = 0;
    for (int i = 0; i < nwalk; i++) {
        SpFrameRef f = sp_rmap_lookup(rv, (uint64_t)g_random_int_range(0, (gint32)npages));
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        *visits += sp_rmap_walk(&f, flags, NULL, NULL);
        clock_gettime(CLOCK_MONOTONIC, &b);
        us[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
    }
    qsort(us, (size_t)nwalk, sizeof(double), cmp_double);
}

static void print_walks(const char *label, SpRmapVm *rv, uint64_t npages, unsigned flags, int nwalk)
{
    g_autofree double *us = g_new(double, nwalk);
    uint64_t visits = 0;
    time_walks(rv, npages, flags, us, nwalk, &visits);
    double sum = 0;
    for (int i = 0; i < nwalk; i++)
        sum += us[i];
    printf("  %s: median %.2f us, mean %.2f us, p99 %.2f us, max %.1f us (%.1f mappings per "
           "frame)\n",
           label, us[nwalk / 2], sum / nwalk, us[nwalk * 99 / 100], us[nwalk - 1],
           (double)visits / nwalk);
}

static void bench_rmap_walk(void)
{
    enum { NWALK = 20000, NKIDS = 63 };
    Harness *h = harness_new();
    SpVm *t = harness_add(h, "name=rt,mem=256M,vcpus=1,payload=memload,args=seed=5,rounds=0,"
                             "interval=500,rate=0");
    harness_start_all(h);
    if (!harness_wait_rounds(h, t, 1, 300))
        g_error("template did not verify its RAM");
    g_autofree SpVm **kids = g_new0(SpVm *, NKIDS);
    g_autoptr(GError) err = NULL;
    SpVmCloneTimes ct;
    bench_clone_n(t, "w", 1000, NKIDS, kids, &ct);
    for (uint32_t i = 0; i < NKIDS; i++)
        g_ptr_array_add(h->vms, kids[i]);
    g_usleep(500000);
    uint64_t npages = sp_vm_config(t)->mem_size / 4096;
    printf("reverse map, family of %u VMs (256 MiB each), %d walks of random frames:\n", NKIDS + 1,
           NWALK);
    print_walks("running, plain", sp_vm_rmap(t), npages, 0, NWALK);
    print_walks("running, EXACT", sp_vm_rmap(t), npages, SP_RMAP_EXACT, NWALK);
    /* The walk's own cost, without 64 VMs competing for the 2 cores. */
    for (guint i = 0; i < h->vms->len; i++)
        if (!sp_vm_pause(h->vms->pdata[i], &err))
            g_error("%s", err->message);
    print_walks("paused,  plain", sp_vm_rmap(t), npages, 0, NWALK);
    print_walks("paused,  EXACT", sp_vm_rmap(t), npages, SP_RMAP_EXACT, NWALK);
    for (guint i = 0; i < h->vms->len; i++)
        sp_vm_resume(h->vms->pdata[i], NULL);
    printf("integrity errors: %u\n", harness_integrity_count(h));
    harness_free(h);
}

int main(int argc, char **argv)
{
    const char *mem = argc > 1 ? argv[1] : "1G";
    uint32_t n = argc > 2 ? (uint32_t)atoi(argv[2]) : 8;
    if (n < 1 || n > SP_VM_CLONE_MAX - 1)
        n = 8;
    Harness *h = harness_new();
    SpVm *t = harness_add(h,
                          "name=tpl,mem=%s,vcpus=2,payload=memload,args=seed=3,rounds=0,"
                          "interval=200",
                          mem);
    harness_start_all(h);
    if (!harness_wait_rounds(h, t, 1, 300))
        g_error("template did not verify its RAM");
    const uint64_t ram = sp_vm_config(t)->mem_size;
    printf("template: %s, %" G_GUINT64_FORMAT " resident pages\n", mem, sp_vm_resident_pages(t));

    SpVmCloneTimes ct;
    SpVm *kid = bench_clone_one(t, "c0", 100, &ct);
    g_ptr_array_add(h->vms, kid);
    printf("clone 1: pre-copy %" G_GUINT64_FORMAT " pages in %.1f ms while running; pause %.1f ms "
           "(park %.2f, copy %" G_GUINT64_FORMAT " changed pages %.1f, remap %.1f), child running "
           "%.1f ms after the clone began (its process made, the pre-copy, the pause)\n",
           ct.pages_precopied, ct.precopy_ms, ct.pause_ms, ct.park_ms, ct.pages_copied, ct.copy_ms,
           ct.remap_ms, ct.children_ms);

    /* a plain copy of as many bytes, for comparison (the RAM itself is in
     * the VM's process; memcpy speed does not depend on what it copies) */
    uint8_t *src = g_malloc(ram), *buf = g_malloc(ram);
    memset(src, 3, ram);
    memset(buf, 1, ram); /* fault both in first: we time the copy */
    gint64 c0 = g_get_monotonic_time();
    memcpy(buf, src, ram);
    gint64 c1 = g_get_monotonic_time();
    printf("plain memcpy of as many bytes as the RAM: %.1f ms (pre-faulted buffers)\n",
           (c1 - c0) / 1000.0);
    g_free(src);
    g_free(buf);

    /* second clone from the already file-backed template */
    SpVm *kid2 = bench_clone_one(t, "c1", 101, &ct);
    g_ptr_array_add(h->vms, kid2);
    printf("clone 2 (re-clone): pause %.1f ms (park %.2f, copy %" G_GUINT64_FORMAT
           " changed pages %.1f, remap %.1f), child running after %.1f ms\n",
           ct.pause_ms, ct.park_ms, ct.pages_copied, ct.copy_ms, ct.remap_ms, ct.children_ms);

    bench_quiet_clones(h, t, n);

    /* idle clones: n more children; memory once they all verified once */
    SpVm *base[3] = {t, kid, kid2};
    for (int i = 0; i < 3; i++)
        harness_wait_rounds(h, base[i], rounds_of(base[i]) + 2, 300);
    MemSnap m0 = mem_snap((SpVm **)h->vms->pdata, h->vms->len);
    uint64_t avail0 = kb_field("/proc/meminfo", "MemAvailable:");
    g_autofree SpVm **kids = g_new0(SpVm *, n);
    bench_clone_n(t, "idle", 200, n, kids, &ct);
    printf("clone %u at once: pause %.1f ms, all running after %.1f ms\n", n, ct.pause_ms,
           ct.children_ms);
    for (uint32_t i = 0; i < n; i++)
        g_ptr_array_add(h->vms, kids[i]);
    for (uint32_t i = 0; i < n; i++)
        harness_wait_rounds(h, kids[i], rounds_of(kids[i]) + 2, 300);
    MemSnap m1 = mem_snap((SpVm **)h->vms->pdata, h->vms->len);
    uint64_t avail1 = kb_field("/proc/meminfo", "MemAvailable:");
    printf("per idle clone (%u clones, after each verified its RAM twice):\n", n);
    print_per_clone(&m0, &m1, n);
    printf("  system MemAvailable drop:   %+.1f KiB\n",
           (double)((int64_t)avail0 - (int64_t)avail1) / n);
    printf("integrity errors: %u\n", harness_integrity_count(h));
    harness_free(h);
    bench_rmap_walk();
    return 0;
}
