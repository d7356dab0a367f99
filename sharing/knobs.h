/* SPDX-License-Identifier: MIT */
/*
 * knobs.h - the engine's knobs, one table: KSM's name, where the knob lives
 * in SpEngineKnobs (engine.h), the values it takes, and its --help line.
 *
 * Every range check reads this table: the engine's own (sp_engine_new,
 * sp_engine_set_knobs), `samepage run`'s options (--pages-to-scan=N ...,
 * vmm/cmd-run.c) and libvirt's node-memory-tune (vmm/daemon/knobs.c).
 * The defaults are sp_engine_default_knobs().
 */
#ifndef SAMEPAGE_SHARING_KNOBS_H
#define SAMEPAGE_SHARING_KNOBS_H

#include <stddef.h>

#include "sharing/engine.h"

typedef struct SpEngineKnobInfo {
    const char *name;   /* KSM's name, as in /sys/kernel/mm/ksm/NAME */
    size_t offset;      /* of the knob's uint32_t in SpEngineKnobs */
    uint32_t min, max;  /* the values it takes */
    const char *values; /* those values in words for messages; NULL: "MIN..MAX" */
    const char *arg;    /* --help placeholder for the value */
    const char *help;   /* --help line of `samepage run`'s option */
    bool advisor_sets;  /* advisor_mode=1 chooses it: the operator may not set it then */
} SpEngineKnobInfo;

/* map_budget's default when swap is on (a memory limit, a swap file):
 * none.  Under a limit a merge that costs the kernel two mappings (~490
 * bytes) to save a 4 KiB page is worth more than a page swapped out
 * (docs/sharing.md "The budget"). */
#define SP_MAP_BUDGET_WITH_SWAP 0

#define SP_ENGINE_NKNOBS 12
/* run, pages_to_scan, sleep_millisecs, max_page_sharing, use_zero_pages,
 * merge_across_nodes, scan_nice, advisor_mode, advisor_target_scan_time,
 * advisor_max_cpu, map_budget, smart_scan: the order of `samepage run --help`. */
extern const SpEngineKnobInfo sp_engine_knob_info[SP_ENGINE_NKNOBS];

/* The knob called `name` (KSM's name), or NULL. */
const SpEngineKnobInfo *sp_engine_knob_find(const char *name);

/* The knob's value in k, and setting it (no check). */
static inline uint32_t sp_engine_knob_get(const SpEngineKnobs *k, const SpEngineKnobInfo *ki)
{
    return *(const uint32_t *)((const char *)k + ki->offset);
}
static inline void sp_engine_knob_set(SpEngineKnobs *k, const SpEngineKnobInfo *ki, uint32_t v)
{
    *(uint32_t *)((char *)k + ki->offset) = v;
}

/* Is v in the knob's range?  If not, a one-line SP_ENGINE_ERROR_KNOB
 * error "LABEL must be VALUES" (LABEL: the name the caller knows the knob
 * by; NULL for KSM's). */
bool sp_engine_knob_check(const SpEngineKnobInfo *ki, const char *label, uint64_t v,
                          GError **error);
/* Every knob of k in its range (the first that is not names the error). */
bool sp_engine_knobs_check(const SpEngineKnobs *k, GError **error);

#endif
