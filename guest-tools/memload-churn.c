/* SPDX-License-Identifier: MIT */
/*
 * memload-churn.c - rewrite pages at rate= pages per second per VM.
 *
 * Each vCPU owns rate * (v+1)/n - rate * v/n of the rate and rewrites random
 * pages of its own slice, spread over the churn window: at time t it has
 * done rate_v * (t - churn_t0) rewrites.  The time spent verifying is caught
 * up at the start of the next window, so the long-run rate is exact - as
 * long as the guest can write that fast.  One that cannot (every write a
 * swap-in, an emulated host) carries at most a second's worth of rewrites
 * behind it, and the catch-up ends with its window: before, the backlog
 * grew faster than it was written, the window never ended and no round
 * came again (seen inside the emulated host at rate=20000).
 * New content: with probability dup% a pool page (common seed, id < pool,
 * so it duplicates other VMs' rewrites), else a fresh unique page: id bit 55
 * set, the epoch in bits 54..40, the vCPU in bits 39..34 and a per-vCPU
 * counter below.  The epoch is 0, or 1 + clone id % 32767 once vCPU 0 has
 * seen (within ~10 ms of resuming) that this VM is a clone, so a clone and
 * its template do not produce the same "unique" pages from the same state;
 * the PRNG is reseeded when the epoch changes.
 * While the host requests a pause (SP_Q_PAUSE_REQUESTED) nothing is written
 * and the accounting restarts when the pause ends.
 * vCPU 0 polls the host's commands and the pause flag about every 10 ms.
 */
#include "guest-tools/memload.h"

#define ML_POLL_NS 10000000ULL
#define ML_SPIN    512

void memload_churn_restart(uint32_t vcpu)
{
    memload.churn_t0[vcpu] = sp_time_ns();
    memload.churn_done[vcpu] = 0;
}

/* (Re)seed this vCPU's PRNG for the current epoch: a clone and its
 * template must not go on choosing the same pages and contents. */
void memload_churn_seed(uint32_t vcpu)
{
    uint32_t epoch = memload.epoch;
    memload.rng_epoch[vcpu] = epoch;
    memload.rng[vcpu * 8] = memload_mix64(memload.ctx.vm_seed ^ (0x636875726e000000ULL + vcpu) ^
                                          ((uint64_t)epoch << 32));
}

static void churn_rewrite_one(uint32_t vcpu, uint64_t first, uint64_t end)
{
    uint64_t *rng = &memload.rng[vcpu * 8];
    if (memload.rng_epoch[vcpu] != memload.epoch)
        memload_churn_seed(vcpu);
    uint64_t slot = first + memload_rng_below(rng, end - first);
    uint64_t rec;
    if (memload_rng_below(rng, 100) < memload.args.dup)
        rec = memload_rec_make(ML_CLASS_POOL, memload_rng_below(rng, memload.args.pool));
    else
        rec = memload_rec_make(ML_CLASS_UNIQUE,
                               (1ULL << 55) | ((uint64_t)memload.rng_epoch[vcpu] << 40) |
                                   ((uint64_t)vcpu << 34) |
                                   (memload.unique_next[vcpu]++ & ((1ULL << 34) - 1)));
    memload.table[slot] = rec;
    memload_page_fill(memload_page(slot), &memload.ctx, rec);
}

void memload_churn_window(uint32_t vcpu, uint64_t deadline_ns)
{
    uint64_t first, end, next_poll = 0;
    uint64_t n = memload.nvcpus, rate = memload.args.rate;
    uint64_t rate_v = rate * (vcpu + 1) / n - rate * vcpu / n;
    memload_slice(vcpu, &first, &end);
    for (;;) {
        uint64_t now = sp_time_ns();
        if (vcpu == 0 && now >= next_poll) {
            memload_command_poll();
            next_poll = now + ML_POLL_NS;
        }
        if (memload.cmd_pending)
            return;
        if (memload.paused || rate_v == 0 || end == first) {
            memload.churn_t0[vcpu] = now;
            memload.churn_done[vcpu] = 0;
        } else {
            uint64_t dt = now - memload.churn_t0[vcpu];
            /* rate_v <= 1e8, so neither product overflows (no 128-bit divide
             * in a freestanding payload). */
            uint64_t due = dt / 1000000000u * rate_v + dt % 1000000000u * rate_v / 1000000000u;
            if (due > memload.churn_done[vcpu] + rate_v)
                memload.churn_done[vcpu] = due - rate_v; /* at most 1 s behind */
            for (uint64_t k = 1; memload.churn_done[vcpu] < due; k++) {
                churn_rewrite_one(vcpu, first, end);
                memload.churn_done[vcpu]++;
                memload.rewritten[vcpu]++;
                if (k % 64 == 0 && (now = sp_time_ns()) >= deadline_ns)
                    break;
            }
        }
        if (now >= deadline_ns)
            return;
        for (int i = 0; i < ML_SPIN; i++)
            sp_cpu_relax();
    }
}
