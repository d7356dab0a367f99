/* SPDX-License-Identifier: MIT */
/* knobs.c - the table of the engine's knobs and their range check (see knobs.h). */
#include <string.h>

#include "sharing/knobs.h"

/* Every field of SpEngineKnobs is a uint32_t knob of this table. */
G_STATIC_ASSERT(sizeof(SpEngineKnobs) == SP_ENGINE_NKNOBS * sizeof(uint32_t));

#define KNOB(field) .name = #field, .offset = offsetof(SpEngineKnobs, field)

const SpEngineKnobInfo sp_engine_knob_info[SP_ENGINE_NKNOBS] = {
    {KNOB(run), .min = 0, .max = 2, .values = "0 (stop), 1 (run) or 2 (unmerge all)", .arg = "N",
     .help = "KSM run: 0 stop, 1 run (default), 2 unmerge all"},
    {KNOB(pages_to_scan), .min = 1, .max = 100000000, .arg = "N",
     .help = "Pages examined per batch (default 4096)", .advisor_sets = true},
    {KNOB(sleep_millisecs), .min = 0, .max = 600000, .arg = "MS",
     .help = "Pause between batches, ms (default 20; 0 = full speed)", .advisor_sets = true},
    {KNOB(max_page_sharing), .min = 2, .max = 1u << 30, .arg = "N",
     .help = "Most guest pages one shared frame may back (default 256)"},
    {KNOB(use_zero_pages), .min = 0, .max = 1, .arg = "0|1",
     .help = "Drop all-zero pages to the zero page (default 1)"},
    {KNOB(merge_across_nodes), .min = 0, .max = 1, .arg = "0|1",
     .help = "Share frames across host NUMA nodes (default 1; 0: each node its own index "
             "and frames, changed only while nothing is shared)"},
    {KNOB(scan_nice), .min = 0, .max = 19, .arg = "N",
     .help = "Nice of the engine's threads, in samepaged and in each VM process (default 0, "
             "level with the vCPUs; 5 is ksmd's, 19 takes only what the vCPUs leave)"},
    {KNOB(advisor_mode), .min = 0, .max = 1, .values = "0 (none) or 1 (scan-time)", .arg = "0|1",
     .help = "1: the engine sets pages_to_scan and sleep_millisecs itself so that a full scan "
             "takes advisor_target_scan_time and it uses at most advisor_max_cpu (default 0)"},
    {KNOB(advisor_target_scan_time), .min = 1, .max = 86400, .arg = "S",
     .help = "With advisor_mode=1: seconds a full scan should take (default 200, KSM's)"},
    {KNOB(advisor_max_cpu), .min = 1, .max = 100, .arg = "PCT",
     .help = "With advisor_mode=1: percent of one CPU the engine and its agents may use "
             "(default 70, KSM's)"},
    {KNOB(map_budget), .min = 0, .max = 2000, .arg = "PERMILLE",
     .help = "Mappings (VMAs) a VM's RAM may be split into, per 1000 of its pages; past it "
             "only merges that add none and runs of 16+ pages go on (default 500, none with "
             "swap on; 0: no budget)"},
    {KNOB(smart_scan), .min = 0, .max = 1, .arg = "0|1",
     .help = "1: a page that stays unmerged and unwritten is examined only every 2nd, 4th, then "
             "8th pass, as KSM's smart_scan (default 1)"},
};

const SpEngineKnobInfo *sp_engine_knob_find(const char *name)
{
    for (size_t i = 0; i < SP_ENGINE_NKNOBS; i++)
        if (!strcmp(sp_engine_knob_info[i].name, name))
            return &sp_engine_knob_info[i];
    return NULL;
}

bool sp_engine_knob_check(const SpEngineKnobInfo *ki, const char *label, uint64_t v, GError **error)
{
    if (v >= ki->min && v <= ki->max)
        return true;
    label = label ? label : ki->name;
    if (ki->values)
        g_set_error(error, SP_ENGINE_ERROR, SP_ENGINE_ERROR_KNOB, "%s must be %s", label,
                    ki->values);
    else if (ki->max == ki->min + 1)
        g_set_error(error, SP_ENGINE_ERROR, SP_ENGINE_ERROR_KNOB, "%s must be %u or %u", label,
                    ki->min, ki->max);
    else
        g_set_error(error, SP_ENGINE_ERROR, SP_ENGINE_ERROR_KNOB, "%s must be %u..%u", label,
                    ki->min, ki->max);
    return false;
}

bool sp_engine_knobs_check(const SpEngineKnobs *k, GError **error)
{
    for (size_t i = 0; i < SP_ENGINE_NKNOBS; i++) {
        const SpEngineKnobInfo *ki = &sp_engine_knob_info[i];
        if (!sp_engine_knob_check(ki, NULL, sp_engine_knob_get(k, ki), error))
            return false;
    }
    return true;
}
