/* SPDX-License-Identifier: MIT */
/*
 * knobs.h - the memory engine as the management plane sees it: KSM-named
 * knobs and node counters (node-memory-tune), and per-VM figures (dommemstat,
 * domstats samepage.*).  This is the one place where new figures (clones,
 * swap, NUMA) plug into the libvirt endpoint.
 */
#ifndef SAMEPAGE_VMM_DAEMON_KNOBS_H
#define SAMEPAGE_VMM_DAEMON_KNOBS_H

#include "vmm/libvirt/typed-params.h"
#include "vmm/super/vm.h"

typedef struct SpHostKnobs SpHostKnobs;

typedef struct SpKnobVmStats {
    guint64 rss_pages;           /* guest RAM pages resident on the host */
    guint64 merged_pages;        /* pages mapped from shared (dedup) frames */
    guint64 zero_pages;          /* pages dropped to the zero page */
    guint64 clone_shared_pages;  /* pages shared with its clone family */
    guint64 clone_generation;    /* 0: not a clone; a clone of a clone: 2 */
    guint64 clone_group;         /* id of its clone group (rmap/rmap.h), 0: none */
    guint64 private_pages;       /* pages only this VM maps */
    guint64 swapped_pages;       /* pages swapped out now */
    guint64 swap_ins, swap_outs; /* pages, since start */
    guint64 mappings;            /* host mappings (VMAs) of its RAM */
    guint64 profit_bytes;        /* saved minus metadata */
    char *sharing_domain;        /* g_free'd by the caller; NULL = own name */
} SpKnobVmStats;

SpHostKnobs *sp_knobs_new(void *engine);
void sp_knobs_free(SpHostKnobs *k);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpHostKnobs, sp_knobs_free)
bool sp_knobs_params_get(SpHostKnobs *k, SpLvParams *out, GError **error);
bool sp_knobs_params_set(SpHostKnobs *k, const SpLvParams *in, GError **error);
void sp_knobs_vm_stats(SpHostKnobs *k, SpVm *vm, SpKnobVmStats *out);

#endif
