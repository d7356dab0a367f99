/* SPDX-License-Identifier: MIT */
/*
 * sp-bench.c - samepage's engine against the kernel's KSM, same VMs, same run.
 *
 * For each configuration the same VM set is started, each VM in its own
 * process (samepage-vm) supervised by this one, as `samepage run` does:
 * N memload VMs in one sharing domain (shared, unique, zero and image pages,
 * the image made from real files), and then
 *   samepage-default  samepage's engine at its default knobs
 *   samepage-full     samepage's engine at full speed (sleep 0)
 *   ksm-5000-20       samepage's engine off, each VM process's guest RAM
 *                     MADV_MERGEABLE (as `samepage run --engine=ksm`),
 *                     ksmd at pages_to_scan=5000 sleep=20
 *   ksm-full          the same, ksmd at pages_to_scan=100000 sleep=0
 * Each run measures, every --sample-ms (default 1000 ms), the saving as the
 * kernel sees it (distinct physical pages behind the managed RAM, from
 * each VM process's pagemap) against the achievable saving from memload's
 * ground truth, and the CPU time of the engine or of ksmd; the time and
 * CPU to reach 95 % and 99 %.  The sampler's own cost is printed (its
 * pagemap reads pay per mapping, and samepage's VM processes have many),
 * and so are the engine's (or ksmd's) run time, run-queue wait and
 * context switches over the convergence (schedstat, status), which
 * explain its wall time; then a churn phase (memload rewriting pages) for
 * steady-state CPU; then the host memory really used by the managed pages
 * (distinct physical pages from each VM process's /proc/PID/pagemap),
 * the mappings, and what the kernel holds for them ("kB/pg": the growth of
 * its slabs for VMAs, maple-tree nodes and anonymous reverse-map links
 * from before the first merge, per guest page, from /proc/slabinfo).  samepage's engine is its
 * index thread here plus the agent thread in every VM process (hashing, comparing and remapping
 * that VM's pages): its CPU is the sum of both, and the most cores it kept busy at once (over a
 * sample) says whether the agents ran in parallel.
 *
 * Output: a table, JSON (--json FILE) and a gnuplot PNG (--plot FILE).
 * Must run as root (KVM, KSM's sysfs knobs, pagemap).  Restores KSM's knobs.
 */
#include <errno.h>
#include <stdlib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "guest-tools/memload.h"
#include "sharing/engine.h"
#include "sharing/knobs.h"
#include "tests/lib/vm-harness.h"

typedef struct Sample {
    double t, saved_frac, cpu_s;
} Sample;

/* SpEngineStats' parts of metadata_bytes, in this order. */
static const char *const META_PARTS[6] = {"vm",      "frame_ids", "frames",
                                          "mappers", "stable",    "unstable"};

typedef struct Result {
    const char *name;
    double t95, cpu95, t99, cpu99; /* -1 if never reached */
    double final_frac;
    uint64_t achievable_pages, final_saved_pages;
    uint64_t host_pages;        /* distinct physical pages behind the managed RAM */
    double churn_cpu_frac;      /* CPU of the engine/ksmd during churn, fraction of a core */
    double churn_saved_frac;    /* saving kept during churn */
    double meta_bytes_per_page; /* engine metadata per guest page (KSM: estimate, see text) */
    double meta_parts[6];       /* samepage: the same, part by part (META_PARTS) */
    double mappings_per_vm;
    bool ksm, advisor;            /* the kernel's KSM; samepage with advisor_mode=1 */
    double scan_time_s, scan_cpu; /* samepage: its last full scan during churn, and its CPU */
    double kernel_bytes_per_page; /* the kernel's memory for the mappings (slab), per guest page */
    double index_cpu_s, agents_cpu_s; /* samepage: CPU to the end of convergence, by side */
    double max_cores;                 /* most cores the engine or ksmd kept busy in a sample */
    double sampler_s;                 /* wall time of the sampler's pagemap reads (convergence) */
    guint nsamples;
    double run_s, wait_s; /* the engine's threads or ksmd: on a CPU, runnable but waiting */
    uint64_t vol, invol;  /* their voluntary and involuntary context switches */
    GArray *samples;
} Result;

static int nvms = 4;
static int mem_mib = 512;
static const char *layout = "shuffled"; /* memload's layout= */
static int adv_target_s, adv_max_cpu;   /* --advisor S:PCT (0: no samepage-auto run) */
static int converge_s = 120, churn_s = 20, sample_ms = 1000;
static int smart_scan = -1; /* both engines' smart_scan; -1: as they are (both default to 1) */
static int map_budget = -1; /* --map-budget (-1: the engine's default) */
static char *images;

static uint64_t read_ksm(const char *knob)
{
    g_autofree char *p = g_build_filename("/sys/kernel/mm/ksm", knob, NULL);
    g_autofree char *s = NULL;
    if (!g_file_get_contents(p, &s, NULL, NULL))
        return 0;
    return g_ascii_strtoull(s, NULL, 10);
}

static void write_ksm(const char *knob, uint64_t v)
{
    /* sysfs: write in place (g_file_set_contents would rename a temp file). */
    g_autofree char *p = g_build_filename("/sys/kernel/mm/ksm", knob, NULL);
    FILE *f = fopen(p, "w");
    if (!f || fprintf(f, "%" G_GUINT64_FORMAT "\n", v) < 0 || fclose(f) != 0)
        g_printerr("sp-bench: cannot set ksm %s to %" G_GUINT64_FORMAT ": %s\n", knob, v,
                   g_strerror(errno));
}

/* CPU seconds of the threads of process `pid` named `comm` (utime + stime). */
static double threads_cpu_s(pid_t pid, const char *comm)
{
    g_autofree char *dir = g_strdup_printf("/proc/%d/task", (int)pid);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *e;
    unsigned long ticks = 0;
    while (d && (e = g_dir_read_name(d))) {
        g_autofree char *comm_p = g_strdup_printf("%s/%s/comm", dir, e);
        g_autofree char *c = NULL;
        if (!g_file_get_contents(comm_p, &c, NULL, NULL) || strcmp(g_strstrip(c), comm))
            continue;
        g_autofree char *stat_p = g_strdup_printf("%s/%s/stat", dir, e);
        g_autofree char *st = NULL;
        if (!g_file_get_contents(stat_p, &st, NULL, NULL))
            continue;
        char *rp = strrchr(st, ')');
        unsigned long ut = 0, stt = 0;
        if (rp &&
            sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stt) == 2)
            ticks += ut + stt;
    }
    return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

typedef struct {
    double run_s, wait_s;
    uint64_t vol, invol;
} Sched;

/* Add the schedstat (run and run-queue wait) and context switches of the
 * threads of `pid` named `comm` to *acc. */
static void sched_add(pid_t pid, const char *comm, Sched *acc)
{
    g_autofree char *dir = g_strdup_printf("/proc/%d/task", (int)pid);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *e;
    while (d && (e = g_dir_read_name(d))) {
        g_autofree char *comm_p = g_strdup_printf("%s/%s/comm", dir, e);
        g_autofree char *c = NULL, *ss = NULL, *st = NULL;
        if (!g_file_get_contents(comm_p, &c, NULL, NULL) || strcmp(g_strstrip(c), comm))
            continue;
        g_autofree char *ss_p = g_strdup_printf("%s/%s/schedstat", dir, e);
        g_autofree char *st_p = g_strdup_printf("%s/%s/status", dir, e);
        unsigned long long run = 0, wait = 0;
        if (g_file_get_contents(ss_p, &ss, NULL, NULL) && sscanf(ss, "%llu %llu", &run, &wait) == 2)
            acc->run_s += run / 1e9, acc->wait_s += wait / 1e9;
        if (g_file_get_contents(st_p, &st, NULL, NULL)) {
            const char *v = strstr(st, "\nvoluntary_ctxt_switches:");
            const char *iv = strstr(st, "nonvoluntary_ctxt_switches:");
            if (v)
                acc->vol += g_ascii_strtoull(strchr(v, ':') + 1, NULL, 10);
            if (iv)
                acc->invol += g_ascii_strtoull(strchr(iv, ':') + 1, NULL, 10);
        }
    }
}

static pid_t ksmd_pid(void)
{
    g_autoptr(GDir) d = g_dir_open("/proc", 0, NULL);
    const char *e;
    while (d && (e = g_dir_read_name(d))) {
        if (!g_ascii_isdigit(e[0]))
            continue;
        g_autofree char *comm_p = g_strdup_printf("/proc/%s/comm", e);
        g_autofree char *comm = NULL;
        if (g_file_get_contents(comm_p, &comm, NULL, NULL) && !strcmp(g_strstrip(comm), "ksmd"))
            return (pid_t)atoi(e);
    }
    return 0;
}

/* ksmd's utime + stime (0 without ksmd). */
static double ksmd_cpu_s(void)
{
    pid_t k = ksmd_pid();
    return k ? threads_cpu_s(k, "ksmd") : 0;
}

/* The engine's threads (index thread here, each VM's agent) or ksmd. */
static Sched engine_sched(Harness *h, bool ksm)
{
    Sched s = {0};
    if (ksm) {
        pid_t k = ksmd_pid();
        if (k)
            sched_add(k, "ksmd", &s);
        return s;
    }
    sched_add(getpid(), "sp-engine", &s);
    for (guint i = 0; i < h->vms->len; i++)
        sched_add(sp_vm_pid(h->vms->pdata[i]), "sp-agent", &s);
    return s;
}

/* samepage's engine: its index thread here, and the agent thread of every
 * VM process. */
static double agents_cpu_s(Harness *h)
{
    double s = 0;
    for (guint i = 0; i < h->vms->len; i++)
        s += threads_cpu_s(sp_vm_pid(h->vms->pdata[i]), "sp-agent");
    return s;
}

static double engine_cpu_s(Harness *h)
{
    return sp_engine_cpu_ns(h->engine) / 1e9 + agents_cpu_s(h);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Distinct physical pages (not the zero page) behind the managed RAM of all
 * VMs (pages[i] from guest address gpa[i]), read from each VM process's
 * /proc/PID/pagemap: the host memory those pages really use. */
static uint64_t host_pages(int n, SpVm **vms, const uint64_t *gpa, const uint64_t *pages)
{
    uint64_t total = 0, zpfn = harness_zero_pfn();
    for (int i = 0; i < n; i++)
        total += pages[i];
    g_autofree uint64_t *pfn = g_new(uint64_t, total);
    uint64_t k = 0;
    for (int i = 0; i < n; i++) {
        g_autofree uint64_t *ent = g_new0(uint64_t, pages[i]);
        if (!harness_vm_pagemap(vms[i], gpa[i] / 4096, pages[i], ent))
            continue;
        for (uint64_t p = 0; p < pages[i]; p++) {
            uint64_t f = ent[p] & ((1ULL << 55) - 1);
            if ((ent[p] >> 63) && f != zpfn)
                pfn[k++] = f;
        }
    }
    qsort(pfn, k, 8, cmp_u64);
    uint64_t distinct = 0;
    for (uint64_t i = 0; i < k; i++)
        distinct += i == 0 || pfn[i] != pfn[i - 1];
    return distinct;
}

/* Bytes the kernel's slabs for mappings hold now: VMAs, the maple tree's
 * nodes, and anonymous memory's reverse-map links (/proc/slabinfo). */
static double mapping_slab_bytes(void)
{
    static const char *const caches[] = {"vm_area_struct", "maple_node", "anon_vma_chain",
                                         "anon_vma"};
    FILE *f = fopen("/proc/slabinfo", "r");
    char line[512];
    double sum = 0;
    while (f && fgets(line, sizeof(line), f)) {
        char name[64];
        unsigned long active, num, size;
        if (sscanf(line, "%63s %lu %lu %lu", name, &active, &num, &size) != 4)
            continue;
        for (size_t i = 0; i < G_N_ELEMENTS(caches); i++)
            if (!strcmp(name, caches[i]))
                sum += (double)active * size;
    }
    if (f)
        fclose(f);
    return sum;
}

static void run_config(Result *r, bool ksm, uint32_t to_scan, uint32_t sleep_ms)
{
    Harness *h = harness_new();
    r->ksm = ksm;
    h->host->mergeable = ksm; /* each VM process madvises its guest RAM */
    if (!ksm) {
        SpEngineKnobs k;
        sp_engine_default_knobs(&k);
        k.run = 0;
        if (to_scan)
            k.pages_to_scan = to_scan;
        k.sleep_millisecs = sleep_ms;
        if (map_budget >= 0)
            k.map_budget = (uint32_t)map_budget;
        if (smart_scan >= 0)
            k.smart_scan = (uint32_t)smart_scan;
        if (r->advisor) {
            k.advisor_mode = 1;
            k.advisor_target_scan_time = (uint32_t)adv_target_s;
            k.advisor_max_cpu = (uint32_t)adv_max_cpu;
        }
        harness_use_engine(h, &k);
    }
    for (int i = 0; i < nvms; i++)
        harness_add(h,
                    "name=b%d,mem=%dM,vcpus=1,domain=bench,share=%s,payload=memload,image=%s,"
                    "args=seed=11,shared=50,unique=15,zero=15,image=20,interval=1000,pool=256,"
                    "layout=%s",
                    i, mem_mib, ksm ? "no" : "yes", images, layout);
    harness_start_all(h);
    uint64_t achievable = 0, distinct = 0, v = 0;
    SpVm **vms = (SpVm **)h->vms->pdata;
    uint64_t gpa[64], pages[64];
    for (int i = 0; i < nvms; i++) {
        SpVm *vm = vms[i];
        g_assert_true(harness_wait_result(vm, "pages_gpa", &gpa[i], 300));
        g_assert_true(harness_wait_result(vm, "pages_total", &pages[i], 300));
        achievable += pages[i];
        /* memload reports these right after the layout: wait for them */
        g_assert_true(harness_wait_result(vm, "distinct_unique", &v, 300));
        distinct += v;
        if (i == 0) {
            g_assert_true(harness_wait_result(vm, "distinct_shared", &v, 300));
            distinct += v;
            g_assert_true(harness_wait_result(vm, "distinct_image", &v, 300));
            distinct += v;
        }
        if (!ksm)
            sp_engine_set_range(h->engine, sp_vm_engine_handle(vm), gpa[i],
                                gpa[i] + pages[i] * 4096);
    }
    uint64_t managed = achievable;
    achievable -= distinct;              /* every page but one per distinct non-zero content */
    double slab0 = mapping_slab_bytes(); /* the VMs' own mappings, before any merge */
    r->achievable_pages = achievable;
    r->samples = g_array_new(FALSE, FALSE, sizeof(Sample));
    r->t95 = r->t99 = r->cpu95 = r->cpu99 = -1;

    double cpu0;
    if (ksm) {
        /* KSM's defaults for max_page_sharing (256) and merge_across_nodes (1)
         * match samepage's; they can only change with nothing merged. */
        write_ksm("run", 2);
        write_ksm("use_zero_pages", 1);
        write_ksm("pages_to_scan", to_scan);
        write_ksm("sleep_millisecs", sleep_ms);
        cpu0 = ksmd_cpu_s();
        write_ksm("run", 1);
    } else {
        cpu0 = engine_cpu_s(h);
        harness_engine_run(h, 1);
    }
    double index0 = ksm ? 0 : sp_engine_cpu_ns(h->engine) / 1e9,
           agents0 = ksm ? 0 : agents_cpu_s(h);
    Sched sc0 = engine_sched(h, ksm);
    gint64 t0 = g_get_monotonic_time();
    uint64_t saved = 0;
    double t = 0, cpu = 0, t_prev = 0, cpu_prev = 0;
    while ((g_get_monotonic_time() - t0) / 1e6 < converge_s) {
        g_usleep((gulong)sample_ms * 1000);
        t = (g_get_monotonic_time() - t0) / 1e6;
        cpu = (ksm ? ksmd_cpu_s() : engine_cpu_s(h)) - cpu0;
        r->max_cores = MAX(r->max_cores, (cpu - cpu_prev) / (t - t_prev));
        t_prev = t, cpu_prev = cpu;
        /* The saving as the kernel sees it, the same measure for both. */
        gint64 s0 = g_get_monotonic_time();
        saved = managed - MIN(managed, host_pages(nvms, vms, gpa, pages));
        r->sampler_s += (g_get_monotonic_time() - s0) / 1e6;
        r->nsamples++;
        double frac = achievable ? (double)saved / achievable : 0;
        Sample s = {t, frac, cpu};
        g_array_append_val(r->samples, s);
        if (r->t95 < 0 && frac >= 0.95)
            r->t95 = t, r->cpu95 = cpu;
        if (r->t99 < 0 && frac >= 0.99) {
            r->t99 = t, r->cpu99 = cpu;
            break;
        }
    }
    Sched sc1 = engine_sched(h, ksm);
    r->run_s = sc1.run_s - sc0.run_s, r->wait_s = sc1.wait_s - sc0.wait_s;
    r->vol = sc1.vol - sc0.vol, r->invol = sc1.invol - sc0.invol;
    if (!ksm) {
        r->index_cpu_s = sp_engine_cpu_ns(h->engine) / 1e9 - index0;
        r->agents_cpu_s = agents_cpu_s(h) - agents0;
    }
    /* Let the last stragglers in, then measure what the kernel holds. */
    g_usleep(2 * G_USEC_PER_SEC);
    r->host_pages = host_pages(nvms, vms, gpa, pages);
    r->final_saved_pages = managed - MIN(managed, r->host_pages);
    r->kernel_bytes_per_page = MAX(0.0, mapping_slab_bytes() - slab0) / (double)managed;
    if (!ksm) {
        /* the VMs' stats first: they refresh what the agents report, their
         * metadata included */
        double maps = 0;
        for (int i = 0; i < nvms; i++) {
            SpEngineVmStats vs;
            sp_engine_get_vm_stats(h->engine, sp_vm_engine_handle(vms[i]), &vs);
            maps += vs.mappings;
        }
        r->mappings_per_vm = maps / nvms;
        SpEngineStats st;
        sp_engine_get_stats(h->engine, &st);
        double gp = (double)nvms * mem_mib * 256;
        r->meta_bytes_per_page = (double)st.metadata_bytes / gp;
        const uint64_t parts[6] = {st.metadata_vm_bytes,     st.metadata_frame_ids_bytes,
                                   st.metadata_frames_bytes, st.metadata_mappers_bytes,
                                   st.metadata_stable_bytes, st.metadata_unstable_bytes};
        for (int p = 0; p < 6; p++)
            r->meta_parts[p] = parts[p] / gp;
    } else {
        /* KSM: one rmap_item (64 B) per scanned page plus stable nodes; the VMAs are untouched. */
        r->meta_bytes_per_page = 64.0 * achievable / ((double)nvms * mem_mib * 256);
        r->mappings_per_vm = 1;
    }
    r->final_frac = achievable ? (double)r->final_saved_pages / achievable : 0;

    /* Churn: every VM rewrites 1000 pages a second, half of them duplicates. */
    for (int i = 0; i < nvms; i++) {
        harness_command(h->vms->pdata[i], ML_CMD_DUP, 50, 30);
        harness_command(h->vms->pdata[i], ML_CMD_RATE, 1000, 30);
    }
    double c0 = ksm ? ksmd_cpu_s() : engine_cpu_s(h);
    gint64 w0 = g_get_monotonic_time();
    double frac_sum = 0;
    int nfrac = 0;
    while (g_get_monotonic_time() - w0 < churn_s * G_USEC_PER_SEC) {
        g_usleep(500000);
        saved = managed - MIN(managed, host_pages(nvms, vms, gpa, pages));
        frac_sum += achievable ? (double)saved / achievable : 0;
        nfrac++;
    }
    double c1 = ksm ? ksmd_cpu_s() : engine_cpu_s(h);
    r->churn_cpu_frac = (c1 - c0) / ((g_get_monotonic_time() - w0) / 1e6);
    r->churn_saved_frac = nfrac ? frac_sum / nfrac : 0;
    if (!ksm) {
        SpEngineStats st;
        sp_engine_get_stats(h->engine, &st);
        r->scan_time_s = st.scan_time_ms / 1e3;
        r->scan_cpu = st.scan_cpu_permille / 1e3;
    }
    g_assert_cmpuint(harness_integrity_count(h), ==, 0);
    if (ksm)
        write_ksm("run", 2);
    harness_free(h);
    if (ksm)
        write_ksm("run", 0);
}

static void print_result(FILE *f, const Result *r)
{
    fprintf(f, "%-17s %7.2f %7.2f %7.2f %7.2f %7.1f%% %9.1f %7.1f%% %8.1f%% %6.1f %6.1f %9.1f\n",
            r->name, r->t95, r->cpu95, r->t99, r->cpu99, 100 * r->final_frac, r->host_pages / 256.0,
            100 * r->churn_cpu_frac, 100 * r->churn_saved_frac, r->meta_bytes_per_page,
            r->kernel_bytes_per_page, r->mappings_per_vm);
}

int main(int argc, char **argv)
{
    g_autofree char *json_path = NULL, *plot_path = NULL, *layout_opt = NULL, *advisor = NULL;
    gboolean quick = FALSE;
    GOptionEntry entries[] = {
        {"vms", 0, 0, G_OPTION_ARG_INT, &nvms, "Number of VMs (default 4)", "N"},
        {"mem", 0, 0, G_OPTION_ARG_INT, &mem_mib, "MiB of RAM per VM (default 512)", "MIB"},
        {"layout", 0, 0, G_OPTION_ARG_STRING, &layout_opt,
         "memload's layout: shuffled (default: shared contents at different addresses in every "
         "VM, the worst case) or realistic (most of them in runs of 1-64 pages at the same "
         "addresses, as guests booted from one image)",
         "L"},
        {"advisor", 0, 0, G_OPTION_ARG_STRING, &advisor,
         "Also run samepage-auto: advisor_mode=1 with a full scan in S seconds and at most PCT "
         "% of one CPU",
         "S:PCT"},
        {"converge", 0, 0, G_OPTION_ARG_INT, &converge_s, "Longest convergence wait, s (120)", "S"},
        {"map-budget", 0, 0, G_OPTION_ARG_INT, &map_budget,
         "samepage's mapping budget, mappings per 1000 guest pages (default: the engine's, 500; "
         "0: none)",
         "PERMILLE"},
        {"smart-scan", 0, 0, G_OPTION_ARG_INT, &smart_scan,
         "smart_scan for both engines, 0 or 1 (default: as they are; both default to 1)", "0|1"},
        {"churn", 0, 0, G_OPTION_ARG_INT, &churn_s, "Churn phase, s (20)", "S"},
        {"sample-ms", 0, 0, G_OPTION_ARG_INT, &sample_ms,
         "Sample the saving every MS milliseconds (1000; at least 100)", "MS"},
        {"json", 0, 0, G_OPTION_ARG_FILENAME, &json_path, "Write the results as JSON", "FILE"},
        {"plot", 0, 0, G_OPTION_ARG_FILENAME, &plot_path, "Plot saving over time (PNG, gnuplot)",
         "FILE"},
        {"quick", 0, 0, G_OPTION_ARG_NONE, &quick, "2 VMs x 128 MiB, short phases (smoke run)",
         NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) oc = g_option_context_new(NULL);
    g_option_context_set_summary(oc, "samepage's sharing engine against the kernel's KSM, "
                                     "on the same memload VMs in one run (root only).");
    g_option_context_add_main_entries(oc, entries, NULL);
    g_autoptr(GError) err = NULL;
    if (!g_option_context_parse(oc, &argc, &argv, &err)) {
        g_printerr("sp-bench: %s\n", err->message);
        return 2;
    }
    if (quick)
        nvms = 2, mem_mib = 128, converge_s = 30, churn_s = 5;
    if (layout_opt && strcmp(layout_opt, "shuffled") && strcmp(layout_opt, "realistic")) {
        g_printerr("sp-bench: --layout must be shuffled or realistic, not '%s'\n", layout_opt);
        return 2;
    }
    if (layout_opt)
        layout = layout_opt;
    if (advisor && (sscanf(advisor, "%d:%d", &adv_target_s, &adv_max_cpu) != 2 ||
                    adv_target_s < 1 || adv_max_cpu < 1 || adv_max_cpu > 100)) {
        g_printerr("sp-bench: --advisor needs S:PCT (seconds >= 1, percent 1..100), not '%s'\n",
                   advisor);
        return 2;
    }
    const SpEngineKnobInfo *budget_knob = sp_engine_knob_find("map_budget");
    if (map_budget < -1 || map_budget > (int)budget_knob->max) {
        g_printerr("sp-bench: --map-budget must be %u..%u, not %d\n", budget_knob->min,
                   budget_knob->max, map_budget);
        return 2;
    }
    if (smart_scan > 1) {
        g_printerr("sp-bench: --smart-scan takes 0 or 1\n");
        return 2;
    }
    if (nvms < 2 || nvms > 64 || mem_mib < 64 || sample_ms < 100 || getuid() != 0) {
        g_printerr("sp-bench: needs root, 2..64 VMs, at least 64 MiB each and --sample-ms of at "
                   "least 100\n");
        return 2;
    }
    if (access("/sys/kernel/mm/ksm/run", W_OK) != 0) {
        g_printerr("sp-bench: the kernel's KSM (/sys/kernel/mm/ksm) is missing or read-only\n");
        return 1;
    }
    const char *files[] = {"/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/bin/bash",
                           "/usr/lib/x86_64-linux-gnu/libglib-2.0.so.0"};
    GString *img = g_string_new(NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autofree char *real = realpath(files[i], NULL);
        if (real && access(real, R_OK) == 0)
            g_string_append_printf(img, "%s%s", img->len ? ":" : "", real);
    }
    images = g_string_free(img, FALSE);
    const char *knobs[] = {"run", "pages_to_scan", "sleep_millisecs", "use_zero_pages"};
    uint64_t saved_knobs[G_N_ELEMENTS(knobs)];
    for (size_t i = 0; i < G_N_ELEMENTS(knobs); i++)
        saved_knobs[i] = read_ksm(knobs[i]);

    Result res[5] = {{.name = "samepage-default"},
                     {.name = "samepage-full"},
                     {.name = "ksm-5000-20"},
                     {.name = "ksm-full"},
                     {.name = "samepage-auto", .advisor = true}};
    int nres = adv_target_s ? 5 : 4;
    char budget[48] = "";
    if (map_budget >= 0)
        snprintf(budget, sizeof(budget), ", map_budget %d", map_budget);
    /* KSM's smart_scan (Linux 6.7+) and samepage's: the same for both */
    bool ksm_smart = access("/sys/kernel/mm/ksm/smart_scan", W_OK) == 0;
    uint64_t saved_smart = ksm_smart ? read_ksm("smart_scan") : 0;
    if (smart_scan >= 0 && ksm_smart)
        write_ksm("smart_scan", (uint64_t)smart_scan);
    SpEngineKnobs dk;
    sp_engine_default_knobs(&dk);
    printf("sp-bench: %d VMs x %d MiB, memload shared/unique/zero/image 50/15/15/20 %%, layout "
           "%s%s, smart_scan %d (KSM's: %s)\n",
           nvms, mem_mib, layout, budget, smart_scan >= 0 ? smart_scan : (int)dk.smart_scan,
           ksm_smart ? (read_ksm("smart_scan") ? "1" : "0") : "none, kernel before 6.7");
    fflush(stdout);
    run_config(&res[0], false, 0, 20);
    run_config(&res[1], false, 100000, 0);
    run_config(&res[2], true, 5000, 20);
    run_config(&res[3], true, 100000, 0);
    if (nres == 5)
        run_config(&res[4], false, 0, 20);
    for (size_t i = 0; i < G_N_ELEMENTS(knobs); i++)
        if (strcmp(knobs[i], "run"))
            write_ksm(knobs[i], saved_knobs[i]);
    write_ksm("run", saved_knobs[0]);
    if (ksm_smart)
        write_ksm("smart_scan", saved_smart);

    printf("\n%-17s %7s %7s %7s %7s %8s %9s %8s %9s %6s %6s %9s\n", "config", "t95 s", "cpu95 s",
           "t99 s", "cpu99 s", "saved", "host MiB", "churnCPU", "churnSav", "B/page", "kB/pg",
           "maps/VM");
    for (int i = 0; i < nres; i++)
        print_result(stdout, &res[i]);
    printf("\nratios (samepage-full / ksm-full): time to 99%% %.3f, CPU to 99%% %.3f, churn CPU "
           "%.3f, final saving %.3f\n",
           res[3].t99 > 0 && res[1].t99 > 0 ? res[1].t99 / res[3].t99 : -1,
           res[3].cpu99 > 0 && res[1].cpu99 >= 0 ? res[1].cpu99 / res[3].cpu99 : -1,
           res[3].churn_cpu_frac > 0 ? res[1].churn_cpu_frac / res[3].churn_cpu_frac : -1,
           res[3].final_frac > 0 ? res[1].final_frac / res[3].final_frac : -1);
    printf("(t/cpu = -1: the configuration did not reach that level within %d s)\n", converge_s);
    printf("\nCPU until convergence ended (samepage: index thread + the VM processes' agent "
           "threads), and the most cores kept busy at once over a %d ms sample:\n",
           sample_ms);
    for (int i = 0; i < nres; i++)
        if (!res[i].ksm)
            printf("%-17s index %7.2f s  agents %7.2f s  max %.2f cores\n", res[i].name,
                   res[i].index_cpu_s, res[i].agents_cpu_s, res[i].max_cores);
        else
            printf("%-17s ksmd  max %.2f cores\n", res[i].name, res[i].max_cores);
    if (nres == 5)
        printf("\nsamepage-auto (advisor_mode=1, a full scan in %d s, at most %d %% of a CPU): "
               "its last scan during churn took %.2f s at %.1f %% of a CPU (the engine's "
               "figures); churn CPU measured here %.1f %%\n",
               adv_target_s, adv_max_cpu, res[4].scan_time_s, 100 * res[4].scan_cpu,
               100 * res[4].churn_cpu_frac);
    printf("\nsamepage's metadata per guest page at convergence, part by part (B/page):\n");
    for (int i = 0; i < nres; i++) {
        if (res[i].ksm)
            continue;
        printf("%-17s", res[i].name);
        for (int p = 0; p < 6; p++)
            printf(" %s %.2f", META_PARTS[p], res[i].meta_parts[p]);
        printf("\n");
    }
    printf("\nWhere the wall time to convergence went, for the engine's threads (samepage: "
           "sp-engine + every sp-agent) or ksmd, and what the sampler cost:\n"
           "%-17s %8s %8s %8s %9s %9s %8s %9s\n",
           "config", "wall s", "run s", "wait s", "vol sw", "invol sw", "samples", "sampler s");
    for (int i = 0; i < nres; i++) {
        double wall = res[i].t99 > 0 ? res[i].t99 : converge_s;
        printf("%-17s %8.2f %8.2f %8.2f %9" G_GUINT64_FORMAT " %9" G_GUINT64_FORMAT " %8u %9.2f\n",
               res[i].name, wall, res[i].run_s, res[i].wait_s, res[i].vol, res[i].invol,
               res[i].nsamples, res[i].sampler_s);
    }

    if (json_path) {
        GString *j = g_string_new("{\"vms\":");
        g_string_append_printf(j, "%d,\"mem_mib\":%d,\"layout\":\"%s\",\"results\":[", nvms,
                               mem_mib, layout);
        for (int i = 0; i < nres; i++) {
            Result *r = &res[i];
            g_string_append_printf(
                j,
                "%s{\"config\":\"%s\",\"t95_s\":%.3f,\"cpu95_s\":%.3f,\"t99_s\":%.3f,"
                "\"cpu99_s\":%.3f,\"final_saving_fraction\":%.4f,\"achievable_pages\":"
                "%" G_GUINT64_FORMAT ",\"host_pages\":%" G_GUINT64_FORMAT
                ",\"churn_cpu_fraction\":%.4f,"
                "\"churn_saving_fraction\":%.4f,\"metadata_bytes_per_page\":%.2f,"
                "\"mappings_per_vm\":%.1f,\"kernel_mapping_bytes_per_page\":%.2f,\"index_cpu_s\":%."
                "3f,\"agents_cpu_s\":%.3f,"
                "\"max_cores\":%.3f,\"run_s\":%.3f,\"wait_s\":%.3f,\"voluntary_switches\":"
                "%" G_GUINT64_FORMAT ",\"involuntary_switches\":%" G_GUINT64_FORMAT
                ",\"sampler_s\":%.3f,",
                i ? "," : "", r->name, r->t95, r->cpu95, r->t99, r->cpu99, r->final_frac,
                r->achievable_pages, r->host_pages, r->churn_cpu_frac, r->churn_saved_frac,
                r->meta_bytes_per_page, r->mappings_per_vm, r->kernel_bytes_per_page,
                r->index_cpu_s, r->agents_cpu_s, r->max_cores, r->run_s, r->wait_s, r->vol,
                r->invol, r->sampler_s);
            g_string_append(j, "\"metadata_parts_per_page\":{");
            for (int p = 0; p < 6; p++)
                g_string_append_printf(j, "%s\"%s\":%.2f", p ? "," : "", META_PARTS[p],
                                       r->meta_parts[p]);
            g_string_append(j, "},\"samples\":[");
            for (guint s = 0; s < r->samples->len; s++) {
                Sample *sm = &g_array_index(r->samples, Sample, s);
                g_string_append_printf(j, "%s[%.2f,%.4f,%.3f]", s ? "," : "", sm->t, sm->saved_frac,
                                       sm->cpu_s);
            }
            g_string_append(j, "]}");
        }
        g_string_append(j, "]}\n");
        g_file_set_contents(json_path, j->str, -1, NULL);
        g_string_free(j, TRUE);
    }
    if (plot_path) {
        g_autofree char *dir = g_dir_make_tmp("sp-bench-XXXXXX", NULL);
        GString *gp = g_string_new(NULL);
        g_string_append_printf(gp,
                               "set terminal png size 900,500\nset output '%s'\n"
                               "set xlabel 'seconds'\nset ylabel 'share of achievable saving'\n"
                               "set key bottom right\nset yrange [0:1.05]\nplot ",
                               plot_path);
        for (int i = 0; i < nres; i++) {
            g_autofree char *dat = g_strdup_printf("%s/%d.dat", dir, i);
            FILE *f = fopen(dat, "w");
            for (guint s = 0; f && s < res[i].samples->len; s++) {
                Sample *sm = &g_array_index(res[i].samples, Sample, s);
                fprintf(f, "%f %f\n", sm->t, sm->saved_frac);
            }
            if (f)
                fclose(f);
            g_string_append_printf(gp, "%s'%s' with lines lw 2 title '%s'", i ? ", " : "", dat,
                                   res[i].name);
        }
        g_string_append(gp, "\n");
        g_autofree char *gpf = g_strdup_printf("%s/plot.gp", dir);
        g_file_set_contents(gpf, gp->str, -1, NULL);
        g_string_free(gp, TRUE);
        g_autofree char *cmd = g_strdup_printf("gnuplot '%s'", gpf);
        if (system(cmd) != 0)
            g_printerr("sp-bench: gnuplot failed (is gnuplot-nox installed?)\n");
    }
    return 0;
}
