/* SPDX-License-Identifier: MIT */
/*
 * memload.h - state shared by the vCPUs of the memload payload.
 *
 * memload (docs/memload.md) fills its guest RAM with a mix of shared,
 * unique, zero and image pages, reports the ground truth, then runs rounds
 * of churn (rewrites) and verification.  Every vCPU runs the same code on
 * its own slice of the managed pages; vCPU 0 also does set-up, reporting and
 * command polling.
 *
 * Concurrency: all fields of MemloadState are written by vCPU 0 before a
 * barrier and read by the others after it, except
 *   - per-vCPU slots (rewritten[], verified[], churn_*[]): owned by that vCPU,
 *     read by vCPU 0 after a barrier;
 *   - errors, reports_left: updated atomically by every vCPU;
 *   - cmd_pending, paused: written by vCPU 0 at any time, polled by the others
 *     (plain volatile flags; they only end a churn window early).
 * A vCPU writes only the pages and records of its own slice, so rewrites
 * need no locking.
 */
#ifndef MEMLOAD_H
#define MEMLOAD_H

#include "guest-tools/rt/sp-rt.h"
#include "guest-tools/memload-args.h"
#include "guest-tools/memload-content.h"
#include "guest-tools/memload-table.h"

/*
 * Proposed control-port query (not yet in vmm/guest-abi.h): the latest
 * command word the host set for this VM, 0 if none.
 *   bits 63..32  sequence number (non-zero; the host bumps it per command)
 *   bits 31..24  opcode (ML_CMD_*)
 *   bits 23..0   argument
 * memload acts on a word whose sequence differs from the last one it acted
 * on, then reports sp_result("cmd_seq", seq) and "cmd_status" (0 = done,
 * 1 = unknown opcode or bad argument).
 */
#ifndef SP_Q_COMMAND
#define SP_Q_COMMAND 4
#endif

enum {
    ML_CMD_FILL = 1,    /* rewrite every managed page with byte (arg & 0xff) */
    ML_CMD_MIX = 2,     /* rewrite every managed page with the fill-time mix from args */
    ML_CMD_RATE = 3,    /* set rate= to arg pages per second */
    ML_CMD_DUP = 4,     /* set dup= to arg percent (0..100) */
    ML_CMD_EXIT = 5,    /* finish this round's verify, then exit as after rounds=N */
    ML_CMD_SET_ONE = 6, /* page slot (arg >> 8, < 65536) becomes all byte (arg & 0xff) */
};

static inline uint32_t memload_cmd_seq(uint64_t w)
{
    return (uint32_t)(w >> 32);
}
static inline unsigned memload_cmd_op(uint64_t w)
{
    return (unsigned)(w >> 24) & 0xff;
}
static inline uint32_t memload_cmd_arg(uint64_t w)
{
    return (uint32_t)w & 0xffffff;
}

/* Phases reported through sp_phase(). */
enum {
    ML_PHASE_FILLED = 1,   /* fill done, ground truth reported */
    ML_PHASE_ROUNDS = 2,   /* first round started (churn if rate > 0) */
    ML_PHASE_REFILLED = 3, /* a FILL/MIX command rewrote every page */
    ML_PHASE_DONE = 4,     /* last round reported, exiting */
};

#define ML_REPORTS_PER_ROUND 16 /* sp_integrity() calls per round, all vCPUs */

typedef struct MemloadState {
    const SpBootInfo *info;
    uint32_t nvcpus;
    MemloadArgs args;
    MemloadLayout lay;
    MemloadContentCtx ctx;
    uint64_t *table;     /* record table, lay.pages entries */
    uint64_t *set_slots; /* distinct-set scratch, lay.set_slots entries */
    uint8_t *pages;      /* first managed page; slot i at pages + i * 4096 */
    SpBarrier barrier;

    volatile uint64_t cmd_word;    /* command being executed (0 = none) */
    volatile uint32_t cmd_pending; /* vCPU 0 saw a new command: end churn early */
    volatile uint32_t paused;      /* SP_Q_PAUSE_REQUESTED was 1 at the last poll */
    volatile uint32_t exit_now;    /* an EXIT command was received */
    uint32_t last_seq;             /* sequence of the last command acted on */

    uint64_t errors;                    /* mismatching pages over all rounds (atomic) */
    uint32_t reports_left;              /* sp_integrity() budget this round (atomic) */
    uint64_t rewritten[SP_MAX_VCPUS];   /* rewrites this round */
    uint64_t verified[SP_MAX_VCPUS];    /* pages verified this round */
    uint64_t gap_tsc[SP_MAX_VCPUS];     /* stall=: longest pause between two pages this round */
    uint64_t tsc_per_ms;                /* stall=: TSC ticks per ms (calibrated at setup) */
    uint64_t churn_t0[SP_MAX_VCPUS];    /* churn accounting start time (ns) */
    uint64_t churn_done[SP_MAX_VCPUS];  /* rewrites since churn_t0 */
    uint64_t rng[SP_MAX_VCPUS * 8];     /* per-vCPU PRNG, one cache line apart */
    uint64_t unique_next[SP_MAX_VCPUS]; /* next churn unique id counter */
    volatile uint32_t epoch;            /* 0, or 1 + clone id % 32767 in a clone (vCPU 0 polls) */
    uint32_t rng_epoch[SP_MAX_VCPUS];   /* epoch this vCPU's PRNG was seeded for */
} MemloadState;

extern MemloadState memload;

/* This vCPU's slice of the managed pages: [*first, *end). */
static inline void memload_slice(uint32_t vcpu, uint64_t *first, uint64_t *end)
{
    uint64_t n = memload.lay.pages;
    *first = n * vcpu / memload.nvcpus;
    *end = n * (vcpu + 1) / memload.nvcpus;
}

static inline uint8_t *memload_page(uint64_t slot)
{
    return memload.pages + slot * ML_PAGE_SIZE;
}

void memload_fill_slice(uint32_t vcpu);
void memload_verify_slice(uint32_t vcpu);
void memload_churn_window(uint32_t vcpu, uint64_t deadline_ns);
void memload_churn_restart(uint32_t vcpu);
void memload_churn_seed(uint32_t vcpu);
void memload_command_poll(void);
void memload_command_run(uint32_t vcpu);
void memload_truth_report(void);

#endif
