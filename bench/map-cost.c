/* SPDX-License-Identifier: MIT */
/*
 * map-cost - what a VM process's mappings cost samepage's own readers of
 * pagemap, mincore and /proc maps (issue 14, point 5).
 *
 * A merged guest page is a MAP_PRIVATE mapping of a pool frame inside the
 * guest's anonymous RAM: every scattered merge splits the RAM into more
 * mappings (VMAs).  This program builds that shape in its own address
 * space - RAM of --ram pages (default 1,000,002: 4 GiB, and at least
 * N + 2), every other page of its first N replaced by a mapping of a
 * one-page memfd, so N/2 frame mappings between N/2 anonymous pieces: N
 * mappings in all, every page resident - and times, with the same calls
 * samepage makes (the RAM is the same size in every row, so what grows
 * is the mappings' cost):
 *
 *   merge          mmap(MAP_FIXED) of a frame page over an anonymous page
 *                  and back (agent-merge.c; the unmerge is the same call)
 *   pagemap-all    pread of the whole RAM's /proc/self/pagemap entries
 *                  (agent_settle on M_SYNC, sp_rmap_sync, agent_init_states
 *                  of a clone: before a clone and on re-attach, not per pass)
 *   pagemap-one    pread of one entry (agent_page_is_file: per written
 *                  merged or zero page, each pass)
 *   mincore-all    mincore over the whole RAM (sp_guest_mem_resident_pages:
 *                  every M_STATS, i.e. each pass start and each figure refresh)
 *   maps           reading /proc/self/maps (no samepage code path; tests,
 *                  the benchmark's sampler and operators' tools do)
 *   smaps_rollup   reading /proc/self/smaps_rollup (likewise)
 *
 * and the kernel's memory per mapping (Slab + PageTables from
 * /proc/meminfo before and after building them; other activity on the
 * host shows up in it too).  Each figure is the median of --reps runs.
 * Needs vm.max_map_count above the largest N (the program raises it when
 * root and puts it back).  Not a test: run it alone.
 *
 * Usage: bench/map-cost [--reps R] [--ram PAGES] [N...]
 *        (default N: 1000 100000 1000000)
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PG 4096UL

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, n, sizeof(*v), cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static long meminfo_kb(const char *key)
{
    g_autofree char *s = NULL;
    if (!g_file_get_contents("/proc/meminfo", &s, NULL, NULL))
        return 0;
    char *p = strstr(s, key);
    return p ? atol(p + strlen(key)) : 0;
}

static long slab_pt_kb(void)
{
    return meminfo_kb("\nSlab:") + meminfo_kb("\nPageTables:");
}

static size_t read_all(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    static char buf[1 << 20];
    size_t total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        total += (size_t)n;
    close(fd);
    return total;
}

/* /proc files are written in place (g_file_set_contents renames). */
static bool write_proc(const char *path, const char *v)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    bool ok = fputs(v, f) >= 0;
    return fclose(f) == 0 && ok;
}

static long count_maps(void)
{
    g_autofree char *s = NULL;
    if (!g_file_get_contents("/proc/self/maps", &s, NULL, NULL))
        return -1;
    long n = 0;
    for (char *p = s; *p; p++)
        n += *p == '\n';
    return n;
}

static bool measure(uint64_t nmaps, uint64_t ram_pages, int reps, int frame_fd)
{
    uint64_t npages = MAX(2 * (nmaps / 2) + 2, ram_pages);
    long before = slab_pt_kb();
    long maps0 = count_maps();
    uint8_t *ram =
        mmap(NULL, npages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ram == MAP_FAILED) {
        fprintf(stderr, "map-cost: cannot map %" PRIu64 " pages: %s\n", npages, strerror(errno));
        return false;
    }
    for (uint64_t g = 0; g < npages; g++)
        ram[g * PG] = (uint8_t)g;
    for (uint64_t g = 1; g < 2 * (nmaps / 2); g += 2) {
        if (mmap(ram + g * PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, frame_fd, 0) ==
            MAP_FAILED) {
            fprintf(stderr,
                    "map-cost: mapping %" PRIu64 " of %" PRIu64 ": %s (vm.max_map_count?)\n", g / 2,
                    nmaps / 2, strerror(errno));
            munmap(ram, npages * PG);
            return false;
        }
        (void)*(volatile uint8_t *)(ram + g * PG);
    }
    long maps = count_maps() - maps0;
    long kernel_kb = slab_pt_kb() - before;

    double t_merge[reps], t_pm_all[reps], t_pm_one[reps], t_mincore[reps], t_maps[reps],
        t_rollup[reps];
    size_t maps_bytes = 0;
    int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    uint64_t *ent = g_new(uint64_t, npages);
    unsigned char *vec = g_malloc(npages);
    GRand *rnd = g_rand_new_with_seed(1);
    for (int r = 0; r < reps; r++) {
        /* merge and unmerge 200 anonymous pages at random places */
        double t0 = now_us();
        for (int i = 0; i < 200; i++) {
            uint64_t g = 2 * (uint64_t)g_rand_int_range(rnd, 0, (gint32)(nmaps / 2 + 1));
            uint8_t *a = ram + g * PG;
            mmap(a, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, frame_fd, 0);
            (void)*(volatile uint8_t *)a;
            mmap(a, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
            a[0] = 1;
        }
        t_merge[r] = (now_us() - t0) / 400;
        off_t base = (off_t)((uintptr_t)ram / PG * 8);
        t0 = now_us();
        if (pread(pm, ent, npages * 8, base) != (ssize_t)(npages * 8))
            fprintf(stderr, "map-cost: short pagemap read\n");
        t_pm_all[r] = now_us() - t0;
        t0 = now_us();
        for (int i = 0; i < 1000; i++) {
            uint64_t g = (uint64_t)g_rand_int_range(rnd, 0, (gint32)npages);
            if (pread(pm, ent, 8, base + (off_t)g * 8) != 8)
                fprintf(stderr, "map-cost: short pagemap read\n");
        }
        t_pm_one[r] = (now_us() - t0) / 1000;
        t0 = now_us();
        mincore(ram, npages * PG, vec);
        t_mincore[r] = now_us() - t0;
        t0 = now_us();
        maps_bytes = read_all("/proc/self/maps");
        t_maps[r] = now_us() - t0;
        t0 = now_us();
        read_all("/proc/self/smaps_rollup");
        t_rollup[r] = now_us() - t0;
    }
    printf("%9" PRIu64 " %9" PRIu64 " %9ld %9.1f %12.1f %11.2f %12.1f %10.1f %8.1f %12.1f %9.0f\n",
           nmaps, npages, maps, median(t_merge, reps), median(t_pm_all, reps),
           median(t_pm_one, reps), median(t_mincore, reps), median(t_maps, reps),
           maps_bytes / 1048576.0, median(t_rollup, reps),
           maps > 0 ? kernel_kb * 1024.0 / maps : 0);
    fflush(stdout);
    g_rand_free(rnd);
    g_free(vec);
    g_free(ent);
    close(pm);
    munmap(ram, npages * PG);
    return true;
}

int main(int argc, char **argv)
{
    int reps = 5;
    uint64_t ram_pages = 1000002;
    GArray *ns = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--ram") && i + 1 < argc) {
            ram_pages = g_ascii_strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("Usage: %s [--reps R] [--ram PAGES] [N...]\n"
                   "Times samepage's pagemap, mincore and /proc maps readers and one merge\n"
                   "in a process whose RAM (PAGES resident pages, default 1000002: 4 GiB)\n"
                   "is split into N mappings (default 1000 100000 1000000; medians of R\n"
                   "runs, default 5).  Run alone, as root (it raises vm.max_map_count for\n"
                   "the run).\n",
                   argv[0]);
            return 0;
        } else {
            char *end;
            uint64_t n = g_ascii_strtoull(argv[i], &end, 10);
            if (*end || n < 2 || n > 4000000) {
                fprintf(stderr, "map-cost: '%s': N must be 2..4000000 mappings\n", argv[i]);
                return 2;
            }
            g_array_append_val(ns, n);
        }
    }
    if (reps < 1 || reps > 100 || ram_pages < 2 || ram_pages > (1ULL << 24)) {
        fprintf(stderr, "map-cost: --reps must be 1..100, --ram 2..16777216 pages\n");
        return 2;
    }
    if (!ns->len) {
        const uint64_t d[] = {1000, 100000, 1000000};
        g_array_append_vals(ns, d, 3);
    }
    uint64_t most = 0;
    for (guint i = 0; i < ns->len; i++)
        most = MAX(most, g_array_index(ns, uint64_t, i));
    g_autofree char *old_max = NULL;
    g_file_get_contents("/proc/sys/vm/max_map_count", &old_max, NULL, NULL);
    if (old_max && g_ascii_strtoull(old_max, NULL, 10) < most + 65536) {
        g_autofree char *v = g_strdup_printf("%" PRIu64 "\n", most + 65536);
        if (!write_proc("/proc/sys/vm/max_map_count", v))
            fprintf(stderr, "map-cost: cannot raise vm.max_map_count (not root?)\n");
    }
    int fd = memfd_create("frame", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, PG) < 0) {
        fprintf(stderr, "map-cost: memfd: %s\n", strerror(errno));
        return 1;
    }
    printf("# times in microseconds, medians of %d runs; merge: one mmap (merge or unmerge);\n"
           "# kernel: Slab + PageTables growth per mapping (bytes)\n",
           reps);
    printf("%9s %9s %9s %9s %12s %11s %12s %10s %8s %12s %9s\n", "N", "pages", "mappings", "merge",
           "pagemap-all", "pagemap-one", "mincore-all", "maps", "maps-MiB", "smaps_rollup",
           "kernel-B");
    bool ok = true;
    for (guint i = 0; ok && i < ns->len; i++)
        ok = measure(g_array_index(ns, uint64_t, i), ram_pages, reps, fd);
    if (old_max)
        write_proc("/proc/sys/vm/max_map_count", old_max);
    g_array_free(ns, TRUE);
    return ok ? 0 : 1;
}
