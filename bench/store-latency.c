/* SPDX-License-Identifier: MIT */
/*
 * store-latency.c - how long a read from samepage's swap store waits while
 * pages are being put into it (bench/README.md, "no file I/O under the
 * store's lock").
 *
 * A swap-in reads its slot (sp_swap_store_get) while the balancer puts
 * evicted pages (sp_swap_store_put), and a put into a full compressed tier
 * moves the tier's oldest copies to the swap file.  This program runs the
 * two side by side on the store alone - no VM, no KVM - for a fixed time:
 *
 *   writer: puts RATE pages a second (PCT % of them compressible like a
 *           guest's: half the page random, half zeros; the rest random,
 *           which go to the file directly) and drops the oldest, keeping
 *           RING pages stored;
 *   reader: every GAP µs reads a random stored page back, checks it, and
 *           records how long the read took.
 *
 * It prints the reads' p50/p99/p99.9/max, the writer's rate, how many
 * pages the tier and the file held at the end and both threads' CPU time
 * and run-queue wait (a read that waits for a core waits too).  The two
 * threads want a core each: run it alone.  Not a KSM comparison: the
 * kernel's swap has no per-read figure to set beside it; compare commits
 * instead.
 *
 *   bench/store-latency [--seconds S] [--dir DIR] [--cache MIB] [--ring N]
 *                       [--pct-compressible P] [--gap-us G]
 *                       [--puts-per-s RATE]
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "rmap/guest-mem.h"
#include "rmap/swap-store.h"

typedef struct Stored {
    uint32_t slot;
    uint64_t id; /* what fill() was given */
    gint busy;   /* 1: the reader is reading it; 2: the writer is replacing it */
} Stored;

typedef struct Bench {
    SpSwapStore *s;
    Stored *ring;
    guint nring;
    guint pct;
    guint gap_us;
    uint64_t rate; /* puts per second, 0: as fast as it can */
    uint64_t t0;
    gint stop;
    gint filled; /* the ring holds pages */
    uint64_t puts, put_fail;
    GArray *lat_ns; /* the reader's, uint64_t */
    uint64_t bad;   /* reads that failed or returned other bytes */
    double writer_cpu, reader_cpu;
    double writer_wait, reader_wait; /* run-queue wait over the timed part */
} Bench;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* This thread's run-queue wait so far, in seconds (schedstat's second
 * field); -1 if the kernel keeps none. */
static double thread_wait_s(void)
{
    g_autofree char *text = NULL;
    unsigned long long run, wait;
    if (!g_file_get_contents("/proc/thread-self/schedstat", &text, NULL, NULL) ||
        sscanf(text, "%llu %llu", &run, &wait) != 2)
        return -1;
    return (double)wait / 1e9;
}

static bool compressible(const Bench *b, uint64_t id)
{
    return (id * 2654435761u) % 100 < b->pct;
}

static void fill(const Bench *b, uint8_t *page, uint64_t id)
{
    uint64_t x = id * 0x9e3779b97f4a7c15ull + 1;
    size_t random_bytes = compressible(b, id) ? SP_PAGE_SIZE / 2 : SP_PAGE_SIZE;
    for (size_t i = 0; i < SP_PAGE_SIZE; i += 8) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t w = i < random_bytes ? x : 0;
        memcpy(page + i, &w, 8);
    }
}

static void *writer(void *arg)
{
    Bench *b = arg;
    uint8_t page[SP_PAGE_SIZE];
    for (uint64_t id = 0; !g_atomic_int_get(&b->stop); id++) {
        Stored *st = &b->ring[id % b->nring];
        while (!g_atomic_int_compare_and_exchange(&st->busy, 0, 2))
            ; /* the reader is on it: a read's time */
        if (id >= b->nring)
            sp_swap_store_drop(b->s, st->slot);
        fill(b, page, id);
        g_autoptr(GError) err = NULL;
        uint32_t slot = sp_swap_store_put(b->s, page, &err);
        if (slot == SP_SWAP_NO_SLOT) {
            b->put_fail++;
            g_printerr("store-latency: put failed: %s\n", err ? err->message : "?");
            g_atomic_int_set(&st->busy, 0);
            g_atomic_int_set(&b->stop, 1);
            break;
        }
        st->slot = slot;
        st->id = id;
        g_atomic_int_set(&st->busy, 0);
        b->puts++;
        uint64_t rate = __atomic_load_n(&b->rate, __ATOMIC_ACQUIRE); /* 0: filling, or flat out */
        if (rate) { /* paced: due by the timed part's start and the rate */
            uint64_t due = b->t0 + b->puts * 1000000000ull / rate;
            uint64_t now = now_ns();
            if (due > now + 1000000)
                g_usleep((due - now) / 1000);
        }
        if (id + 1 == b->nring)
            g_atomic_int_set(&b->filled, 1);
    }
    b->writer_cpu = thread_cpu_s();
    b->writer_wait = thread_wait_s();
    return NULL;
}

static void *reader(void *arg)
{
    Bench *b = arg;
    uint8_t page[SP_PAGE_SIZE], want[SP_PAGE_SIZE];
    GRand *r = g_rand_new_with_seed(7);
    double wait0 = thread_wait_s();
    while (!g_atomic_int_get(&b->stop)) {
        g_usleep(b->gap_us);
        Stored *st = &b->ring[g_rand_int_range(r, 0, (gint32)b->nring)];
        if (!g_atomic_int_compare_and_exchange(&st->busy, 0, 1))
            continue;
        uint32_t slot = st->slot;
        uint64_t id = st->id;
        g_autoptr(GError) err = NULL;
        uint64_t t0 = now_ns();
        bool ok = sp_swap_store_get(b->s, slot, page, &err);
        uint64_t dt = now_ns() - t0;
        g_atomic_int_set(&st->busy, 0);
        fill(b, want, id);
        if (!ok || memcmp(page, want, SP_PAGE_SIZE) != 0) {
            if (b->bad++ < 3)
                g_printerr("store-latency: slot %u: %s\n", slot,
                           ok ? "other bytes than were put" : err->message);
            continue;
        }
        g_array_append_val(b->lat_ns, dt);
    }
    g_rand_free(r);
    b->reader_cpu = thread_cpu_s();
    b->reader_wait = thread_wait_s() - wait0;
    return NULL;
}

static int cmp_u64(gconstpointer a, gconstpointer b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_us(GArray *a, double p)
{
    if (!a->len)
        return 0;
    guint i = (guint)(p / 100.0 * (a->len - 1) + 0.5);
    return (double)g_array_index(a, uint64_t, i) / 1000.0;
}

int main(int argc, char **argv)
{
    gint seconds = 20, cache_mib = 64, ring = 65536, pct = 70, gap = 50, rate = 10000;
    g_autofree char *dir = NULL;
    GOptionEntry entries[] = {
        {"seconds", 0, 0, G_OPTION_ARG_INT, &seconds, "how long the reads are timed (20)", "S"},
        {"dir", 0, 0, G_OPTION_ARG_FILENAME, &dir,
         "where the swap file goes (default: the temporary directory, as for samepage run)", "DIR"},
        {"cache", 0, 0, G_OPTION_ARG_INT, &cache_mib,
         "the compressed tier in MiB (64, samepage's default; 0: none)", "MIB"},
        {"ring", 0, 0, G_OPTION_ARG_INT, &ring, "pages kept stored (65536: 256 MiB)", "N"},
        {"pct-compressible", 0, 0, G_OPTION_ARG_INT, &pct,
         "pages that compress to about half (70); the rest are random", "P"},
        {"gap-us", 0, 0, G_OPTION_ARG_INT, &gap, "the reader's pause between reads (50)", "G"},
        {"puts-per-s", 0, 0, G_OPTION_ARG_INT, &rate,
         "the writer's pace once the ring is full (10000: 40 MiB/s; 0: as fast as it can)", "N"},
        {NULL, 0, 0, 0, NULL, NULL, NULL}};
    g_autoptr(GOptionContext) ctx =
        g_option_context_new("- swap-in reads beside puts, on the store alone");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) err = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        g_printerr("store-latency: %s\n", err->message);
        return 2;
    }
    if (seconds <= 0 || cache_mib < 0 || ring < 16 || pct < 0 || pct > 100 || gap < 0 || rate < 0) {
        g_printerr("store-latency: --seconds > 0, --cache >= 0, --ring >= 16, "
                   "--pct-compressible 0..100, --gap-us >= 0, --puts-per-s >= 0\n");
        return 2;
    }
    g_autofree char *tmp = g_dir_make_tmp("sp-store-XXXXXX", &err);
    if (dir == NULL && !tmp) {
        g_printerr("store-latency: %s\n", err->message);
        return 1;
    }
    g_autofree char *path = g_build_filename(dir ? dir : tmp, "store-latency.swap", NULL);
    Bench b = {.nring = (guint)ring, .pct = (guint)pct, .gap_us = (guint)gap};
    b.s =
        sp_swap_store_new(path, (uint64_t)ring * 2 * SP_PAGE_SIZE, (uint64_t)cache_mib << 20, &err);
    if (!b.s) {
        g_printerr("store-latency: %s\n", err->message);
        return 1;
    }
    b.ring = g_new0(Stored, b.nring);
    b.lat_ns = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    pthread_t w, r;
    pthread_create(&w, NULL, writer, &b);
    while (!g_atomic_int_get(&b.filled) && !g_atomic_int_get(&b.stop))
        g_usleep(10000);
    uint64_t puts0 = b.puts, t0 = now_ns();
    b.t0 = t0 - puts0 * (rate ? 1000000000ull / (uint64_t)rate : 0);
    __atomic_store_n(&b.rate, (uint64_t)rate, __ATOMIC_RELEASE); /* from here on */
    pthread_create(&r, NULL, reader, &b);
    g_usleep((gulong)seconds * G_USEC_PER_SEC);
    g_atomic_int_set(&b.stop, 1);
    pthread_join(r, NULL);
    pthread_join(w, NULL);
    double wall = (double)(now_ns() - t0) / 1e9;
    SpSwapStoreStats st;
    sp_swap_store_stats(b.s, &st);
    g_array_sort(b.lat_ns, cmp_u64);
    printf("store-latency: %d s, tier %d MiB, %d pages kept, %d %% compressible, a read every "
           "%d us, %d puts/s, file %s\n",
           seconds, cache_mib, ring, pct, gap, rate, path);
    printf(
        "reads %u: p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us; failed %" G_GUINT64_FORMAT
        "\n",
        b.lat_ns->len, pct_us(b.lat_ns, 50), pct_us(b.lat_ns, 99), pct_us(b.lat_ns, 99.9),
        pct_us(b.lat_ns, 100), b.bad);
    printf("puts %.0f/s; at the end %" G_GUINT64_FORMAT " pages in the tier, %" G_GUINT64_FORMAT
           " in the file; %.1f MiB written, %.1f MiB read from the file\n",
           (double)(b.puts - puts0) / wall, st.cache_pages, st.file_pages,
           (double)st.bytes_written / 1048576.0, (double)st.bytes_read / 1048576.0);
    printf("cpu: writer %.2f s, reader %.2f s; run-queue wait: writer %.2f s, reader %.2f s "
           "(the writer's from its start: the fill included)\n",
           b.writer_cpu, b.reader_cpu, b.writer_wait, b.reader_wait);
    sp_swap_store_free(b.s);
    unlink(path);
    if (tmp)
        g_rmdir(tmp);
    g_free(b.ring);
    g_array_free(b.lat_ns, TRUE);
    return b.bad || b.put_fail ? 1 : 0;
}
