/* SPDX-License-Identifier: MIT */
/*
 * knobs.h - the memory engine as the management plane sees it: KSM-named
 * knobs and node counters (node-memory-tune), and per-VM figures (dommemstat,
 * domstats samepage.*), from the tables of vmm/metrics/figures.h: a new
 * figure with a libvirt name there reaches the libvirt endpoint by itself.
 */
#ifndef SAMEPAGE_VMM_DAEMON_KNOBS_H
#define SAMEPAGE_VMM_DAEMON_KNOBS_H

#include "vmm/libvirt/typed-params.h"
#include "vmm/metrics/figures.h"
#include "vmm/super/vm.h"

typedef struct SpHostKnobs SpHostKnobs;

/* What dommemstat needs (the other figures: sp_knobs_vm_params). */
typedef struct SpKnobVmStats {
    guint64 rss_pages;           /* guest RAM pages resident on the host, its own */
    guint64 swap_ins, swap_outs; /* pages, since start */
} SpKnobVmStats;

SpHostKnobs *sp_knobs_new(void *engine);
void sp_knobs_free(SpHostKnobs *k);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpHostKnobs, sp_knobs_free)
/* node-memory-tune: every node figure with a libvirt name (shm_*). */
bool sp_knobs_params_get(SpHostKnobs *k, SpLvParams *out, GError **error);
bool sp_knobs_params_set(SpHostKnobs *k, const SpLvParams *in, GError **error);
void sp_knobs_vm_stats(SpHostKnobs *k, SpVm *vm, SpKnobVmStats *out);
/* domstats of a running VM: balloon.rss (with balloon), every VM figure with a libvirt
 * name (samepage.*) and samepage.sharing_domain. */
bool sp_knobs_vm_params(SpHostKnobs *k, SpVm *vm, bool balloon, SpLvParams *out, GError **error);
/* The figures of a table with a libvirt name, as typed parameters. */
bool sp_knobs_add_figures(SpLvParams *out, SpFigScope scope, const SpFigValue *v, GError **error);

#endif
