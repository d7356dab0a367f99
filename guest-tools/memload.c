/* SPDX-License-Identifier: MIT */
/*
 * memload.c - the memload payload: set-up, fill, ground truth, rounds.
 *
 * Flow (every vCPU; "B" is a barrier over all vCPUs):
 *   vCPU 0 parses the arguments, plans the region and builds the record
 *   table; B; each vCPU fills its slice; B; vCPU 0 reports the ground truth
 *   and phase 1; B; then rounds: churn window (interval ms, rewrites at
 *   rate=, vCPU 0 polls commands); B; pending command; verify own slice; B;
 *   vCPU 0 reports the round and maybe exits; B.
 * Bad arguments: vCPU 0 prints one line and exits with status 2 (the other
 * vCPUs are still waiting at the first barrier).
 * See docs/memload.md for the arguments, result keys and phases.
 */
#include "guest-tools/memload.h"

MemloadState memload;
static uint64_t pool_bits[ML_MAX_POOL / 64];

static __attribute__((noreturn)) void memload_die(const char *msg)
{
    sp_printf("%s\n", msg);
    sp_exit(2);
}

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

static void memload_tsc_calibrate(void)
{
    uint64_t t0 = sp_time_ns(), c0 = rdtsc(), t1;
    while ((t1 = sp_time_ns()) - t0 < 20000000ULL)
        sp_cpu_relax();
    uint64_t c1 = rdtsc();
    memload.tsc_per_ms = (c1 - c0) * 1000000ULL / (t1 - t0);
    if (!memload.tsc_per_ms)
        memload.tsc_per_ms = 1;
}

static void memload_setup(const SpBootInfo *info)
{
    char err[256];
    const char *perr = NULL;
    MemloadArgs *a = &memload.args;

    if (info->magic != SP_BOOT_MAGIC || info->version != SP_BOOT_VERSION)
        memload_die("memload: boot info has a wrong magic or version");
    if (info->vcpu_count == 0 || info->vcpu_count > SP_MAX_VCPUS)
        memload_die("memload: unsupported vCPU count");
    memload_args_defaults(a);
    if (!memload_args_parse(a, info->args_gpa ? (const char *)(uintptr_t)info->args_gpa : "", err,
                            sizeof(err)))
        memload_die(err);

    if (a->stall_ms) /* TSC ticks per ms against the VMM's clock, over 20 ms */
        memload_tsc_calibrate();

    /* Region: [free_gpa, free_end) minus the blob if the VMM put it there. */
    uint64_t start = (info->free_gpa + ML_PAGE_SIZE - 1) & ~(uint64_t)(ML_PAGE_SIZE - 1);
    uint64_t end = info->free_end & ~(uint64_t)(ML_PAGE_SIZE - 1);
    uint64_t blob_pages = info->blob_gpa ? info->blob_size / ML_PAGE_SIZE : 0;
    uint64_t blob_end = info->blob_gpa + blob_pages * ML_PAGE_SIZE;
    if (blob_pages && info->blob_gpa < end && blob_end > start) {
        /* Keep the larger of the parts before and after the blob. */
        uint64_t before = info->blob_gpa > start ? info->blob_gpa - start : 0;
        uint64_t after = blob_end < end ? end - blob_end : 0;
        if (before >= after)
            end = start + before;
        else
            start = blob_end;
    }
    uint64_t region_pages = end > start ? (end - start) / ML_PAGE_SIZE : 0;
    if (!memload_layout_plan(a, region_pages, blob_pages, &memload.lay, &perr)) {
        sp_snprintf(err, sizeof(err), "memload: %s (%lu free pages)", perr, region_pages);
        memload_die(err);
    }

    memload.info = info;
    memload.nvcpus = info->vcpu_count;
    memload.table = (uint64_t *)(uintptr_t)start;
    memload.set_slots = (uint64_t *)(uintptr_t)(start + memload.lay.table_pages * ML_PAGE_SIZE);
    memload.pages =
        (uint8_t *)(uintptr_t)(start +
                               (memload.lay.table_pages + memload.lay.set_pages) * ML_PAGE_SIZE);
    memload.ctx = (MemloadContentCtx){
        .common_seed = a->seed,
        .vm_seed = memload_vm_seed(a->seed, info->vm_id, info->vm_name),
        .blob = blob_pages ? (const uint8_t *)(uintptr_t)info->blob_gpa : NULL,
        .blob_pages = blob_pages,
    };
    memload_table_build(memload.table, &memload.lay, a, blob_pages, memload.ctx.vm_seed);
    memload.reports_left = ML_REPORTS_PER_ROUND;

    sp_printf(
        "memload: %s: %lu pages at 0x%lx (shared %lu unique %lu zero %lu image %lu fill %lu), "
        "%u vcpus, seed %lu, rate %lu/s, dup %u%%, interval %lu ms, rounds %lu\n",
        info->vm_name, memload.lay.pages, (uint64_t)(uintptr_t)memload.pages, memload.lay.shared,
        memload.lay.unique, memload.lay.zero, memload.lay.image, memload.lay.fill, memload.nvcpus,
        a->seed, a->rate, a->dup, a->interval_ms, a->rounds);
    if (memload.lay.image_dropped)
        sp_printf("memload: no image blob: image=%u%% gets 0 pages (unique instead)\n",
                  a->pct_image);
}

/* vCPU 0, after a barrier: count the records and report the ground truth. */
void memload_truth_report(void)
{
    MemloadDistinct d;
    MemloadTruth t;
    memload_distinct_init(&d, memload.set_slots, memload.lay.set_slots, memload.ctx.blob,
                          memload.ctx.blob_pages);
    memload_truth_count(memload.table, memload.lay.pages, &d, pool_bits, &t);
    sp_result("pages_gpa", (uint64_t)(uintptr_t)memload.pages);
    sp_result("pages_total", memload.lay.pages);
    sp_result("pages_shared", t.pages[ML_CLASS_SHARED]);
    sp_result("pages_unique", t.pages[ML_CLASS_UNIQUE]);
    sp_result("pages_zero", t.pages[ML_CLASS_ZERO]);
    sp_result("pages_image", t.pages[ML_CLASS_IMAGE]);
    sp_result("pages_pool", t.pages[ML_CLASS_POOL]);
    sp_result("pages_fill", t.pages[ML_CLASS_FILL]);
    sp_result("distinct_shared", t.pages[ML_CLASS_SHARED]);
    sp_result("distinct_unique", t.pages[ML_CLASS_UNIQUE]);
    sp_result("distinct_image", t.distinct_image);
    sp_result("image_zero_pages", t.image_zero);
    sp_result("distinct_pool", t.distinct_pool);
    sp_result("distinct_fill", t.distinct_fill);
    sp_result("zero_content_pages", t.zero_content);
    sp_result("distinct_nonzero", t.distinct_nonzero);
    sp_result("meta_pages", memload.lay.table_pages + memload.lay.set_pages);
    sp_result("blob_pages", memload.ctx.blob_pages);
}

static void memload_round_report(uint64_t round, uint64_t verify_ns)
{
    uint64_t verified = 0, rewritten = 0;
    for (uint32_t v = 0; v < memload.nvcpus; v++) {
        verified += memload.verified[v];
        rewritten += memload.rewritten[v];
    }
    if (rewritten)
        memload_truth_report();
    if (memload.args.stall_ms) {
        uint64_t gap = 0;
        for (uint32_t v = 0; v < memload.nvcpus; v++)
            gap = memload.gap_tsc[v] > gap ? memload.gap_tsc[v] : gap;
        uint64_t us = gap * 1000 / memload.tsc_per_ms;
        if (us >= memload.args.stall_ms * 1000ULL)
            sp_printf("memload: round %lu: longest stall %lu us\n", round, us);
    }
    sp_result("verify_ns", verify_ns);
    sp_result("integrity_errors", memload.errors);
    sp_round(round, verified, rewritten);
}

int sp_main(const SpBootInfo *info, uint32_t vcpu)
{
    uint32_t n = info->vcpu_count;
    if (vcpu == 0)
        memload_setup(info);
    sp_barrier_wait(&memload.barrier, n);

    memload_churn_seed(vcpu);
    uint64_t t0 = sp_time_ns();
    memload_fill_slice(vcpu);
    sp_barrier_wait(&memload.barrier, n);
    if (vcpu == 0) {
        sp_result("fill_ns", sp_time_ns() - t0);
        memload_truth_report();
        sp_phase(ML_PHASE_FILLED, "filled");
    }
    sp_barrier_wait(&memload.barrier, n);

    memload_churn_restart(vcpu);
    for (uint64_t round = 1;; round++) {
        if (vcpu == 0 && round == 1)
            sp_phase(ML_PHASE_ROUNDS, memload.args.rate ? "churning" : "verifying");
        memload.rewritten[vcpu] = 0;
        memload_churn_window(vcpu, sp_time_ns() + memload.args.interval_ms * 1000000ULL);
        sp_barrier_wait(&memload.barrier, n);
        if (memload.cmd_pending)
            memload_command_run(vcpu);
        uint64_t tv = sp_time_ns();
        memload_verify_slice(vcpu);
        sp_barrier_wait(&memload.barrier, n);
        if (vcpu == 0) {
            memload_round_report(round, sp_time_ns() - tv);
            memload.reports_left = ML_REPORTS_PER_ROUND;
            if ((memload.args.rounds && round >= memload.args.rounds) || memload.exit_now) {
                sp_phase(ML_PHASE_DONE, "done");
                sp_exit(memload.errors ? 1 : 0);
            }
        }
        sp_barrier_wait(&memload.barrier, n);
    }
}
