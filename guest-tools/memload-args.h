/* SPDX-License-Identifier: MIT */
/*
 * memload-args.h - memload's argument string (docs/memload.md, ARGUMENTS).
 *
 * "key=value,key=value"; every key optional.  Parsing is pure (no I/O) so the
 * host unit tests run it too; on error the caller prints the message and
 * exits with status 2.
 */
#ifndef MEMLOAD_ARGS_H
#define MEMLOAD_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ML_MAX_POOL     65536u       /* pool= upper bound (a bitmap of it lives in .bss) */
#define ML_MAX_RATE     100000000ULL /* rate= upper bound, pages/s */
#define ML_MAX_INTERVAL 3600000ULL   /* interval= upper bound, ms */
#define ML_MAX_PAGES    (1ULL << 40) /* pages= upper bound */

typedef struct MemloadArgs {
    uint64_t seed;        /* seed=: common seed (default 1) */
    uint32_t pct_shared;  /* shared=: percent of managed pages (default 40) */
    uint32_t pct_unique;  /* unique=: only checked for the sum; unique takes the rest */
    uint32_t pct_zero;    /* zero=: default 10 */
    uint32_t pct_image;   /* image=: default 10 (0 pages when there is no blob) */
    uint64_t pages;       /* pages=: managed pages, 0 = as many as fit */
    uint64_t rate;        /* rate=: rewrites per second per VM, 0 = no churn */
    uint32_t dup;         /* dup=: percent of rewrites drawn from the common pool */
    uint32_t pool;        /* pool=: distinct contents in the common churn pool */
    uint64_t rounds;      /* rounds=: verify rounds before exit, 0 = forever */
    uint64_t interval_ms; /* interval=: ms per round (churn window + verify) */
    uint32_t stall_ms;    /* stall=: print a round's longest pause >= this many ms (0 = off) */
    int fill;             /* fill=: -1 = content mix, else every page is this byte */
    bool realistic;       /* layout=realistic: shared pages mostly in runs at common frames */
    bool mix_given;       /* some of shared/unique/zero/image= was given */
} MemloadArgs;

void memload_args_defaults(MemloadArgs *a);
/* Parse s into a (which holds the defaults first).  On error returns false
 * and writes a one-line message (no newline) into err. */
bool memload_args_parse(MemloadArgs *a, const char *s, char *err, size_t errlen);

#endif
