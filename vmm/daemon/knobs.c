/* SPDX-License-Identifier: MIT */
/*
 * knobs.c - node-memory-tune parameters and per-VM figures (see knobs.h):
 * the figures of vmm/metrics/figures.h that have a libvirt name, read
 * from the same sources as every other printer's (snapshot.h).
 */
#include <numa.h>
#include <string.h>

#include "sharing/engine.h"
#include "sharing/knobs.h"
#include "vmm/daemon/knobs.h"
#include "vmm/metrics/snapshot.h"
#include "vmm/libvirt/backend.h"

struct SpHostKnobs {
    SpEngine *engine; /* the sharing engine (not owned) */
};

SpHostKnobs *sp_knobs_new(void *engine)
{
    SpHostKnobs *k = g_new0(SpHostKnobs, 1);
    k->engine = engine;
    return k;
}

void sp_knobs_free(SpHostKnobs *k)
{
    g_free(k);
}

/* The figures of a table that have a libvirt name, as typed parameters
 * (figures.h: U32 -> UINT, U64 -> ULLONG, I64 -> LLONG, BOOL -> BOOLEAN). */
bool sp_knobs_add_figures(SpLvParams *out, SpFigScope scope, const SpFigValue *v, GError **error)
{
    size_t n;
    const SpFigure *t = sp_fig_table(scope, &n);
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        if (!t[i].libvirt)
            continue;
        switch (t[i].ctype) {
        case SP_FIG_U32:
            ok = sp_lv_params_add_uint(out, t[i].libvirt, (guint32)v[i].u, error);
            break;
        case SP_FIG_I64:
            ok = sp_lv_params_add_llong(out, t[i].libvirt, v[i].i, error);
            break;
        case SP_FIG_F64:
            ok = sp_lv_params_add_double(out, t[i].libvirt, v[i].d, error);
            break;
        case SP_FIG_BOOL:
            ok = sp_lv_params_add_boolean(out, t[i].libvirt, v[i].u != 0, error);
            break;
        default:
            ok = sp_lv_params_add_ullong(out, t[i].libvirt, v[i].u, error);
        }
    }
    return ok;
}

/* Per host node (docs/numa.md), for the host's nodes while libvirt's limit
 * of parameters per call allows, from the same reading as the node-wide
 * figures:
 *   shm_node<N>_pages_shared, shm_node<N>_pages_sharing
 *       node N's own frames in use and the pages they save
 *       (merge_across_nodes=0; they add up to the node-wide ones);
 *   shm_node<N>_frames
 *       frames in use on node N: its own pool's, plus the host-wide pool's
 *       the kernel had there at the last re-homing pass (every 30 s on a
 *       host with several nodes; on one node, every frame in use). */
static bool add_node_counters(const SpEngineStats *st, SpLvParams *out, GError **error)
{
    int nodes = numa_available() >= 0 ? numa_max_node() + 1 : 1;
    bool ok = true;
    for (int n = 0; ok && n < MIN(nodes, SP_ENGINE_NODES) &&
                    sp_lv_params_len(out) + 3 <= SP_LV_NODE_MEMORY_PARAMETERS_MAX;
         n++) {
        g_autofree char *k1 = g_strdup_printf("shm_node%d_frames", n);
        g_autofree char *k2 = g_strdup_printf("shm_node%d_pages_shared", n);
        g_autofree char *k3 = g_strdup_printf("shm_node%d_pages_sharing", n);
        uint64_t frames =
            nodes == 1 ? st->pages_shared : st->node_pages_shared[n] + st->numa_frames_on[n];
        ok = sp_lv_params_add_ullong(out, k1, frames, error) &&
             sp_lv_params_add_ullong(out, k2, st->node_pages_shared[n], error) &&
             sp_lv_params_add_ullong(out, k3, st->node_pages_sharing[n], error);
    }
    return ok;
}

bool sp_knobs_params_get(SpHostKnobs *k, SpLvParams *out, GError **error)
{
    SpFigNodeSrc src;
    size_t n;
    sp_fig_table(SP_FIG_NODE, &n);
    g_autofree SpFigValue *v = g_new0(SpFigValue, n);
    sp_fig_node_source(k->engine, &src);
    sp_fig_read(SP_FIG_NODE, &src, v);
    return sp_knobs_add_figures(out, SP_FIG_NODE, v, error) &&
           add_node_counters(&src.eng, out, error);
}

static bool knob_value(const SpLvParam *p, guint32 *out, GError **error)
{
    switch (p->type) {
    case SP_LV_PARAM_UINT:
        *out = p->v.ui;
        return true;
    case SP_LV_PARAM_ULLONG:
        if (p->v.ul <= G_MAXUINT32) {
            *out = (guint32)p->v.ul;
            return true;
        }
        break;
    case SP_LV_PARAM_INT:
        if (p->v.i >= 0) {
            *out = (guint32)p->v.i;
            return true;
        }
        break;
    default:
        break;
    }
    g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG, "invalid value for %s", p->field);
    return false;
}

/* The knobs node-memory-tune may set: libvirt's name is "shm_" + KSM's.
 * virsh names the first three; the others are for API clients
 * (python3-libvirt's setMemoryParameters): shm_run (0, 1, 2 as KSM's run;
 * run=2 empties the index, after which merge_across_nodes may change),
 * shm_scan_nice, the advisor's three (sharing/advisor.c),
 * shm_map_budget (sharing/scan.c) and shm_smart_scan (sharing/agent-scan.c). */
static const SpEngineKnobInfo *settable_knob(const char *field)
{
    static const char *const settable[] = {
        "pages_to_scan", "sleep_millisecs", "merge_across_nodes",       "run",
        "scan_nice",     "advisor_mode",    "advisor_target_scan_time", "advisor_max_cpu",
        "map_budget",    "smart_scan"};
    for (size_t i = 0; i < G_N_ELEMENTS(settable); i++)
        if (g_str_has_prefix(field, "shm_") && !strcmp(field + 4, settable[i]))
            return sp_engine_knob_find(settable[i]);
    return NULL;
}

bool sp_knobs_params_set(SpHostKnobs *k, const SpLvParams *in, GError **error)
{
    SpEngineKnobs kn;
    sp_engine_get_knobs_set(k->engine, &kn);
    bool paced = false; /* shm_pages_to_scan or shm_sleep_millisecs given */
    /* Check everything before changing anything. */
    for (guint i = 0; i < sp_lv_params_len(in); i++) {
        const SpLvParam *p = sp_lv_params_get(in, i);
        const SpEngineKnobInfo *ki = settable_knob(p->field);
        guint32 v = 0;
        g_autoptr(GError) err = NULL;
        if (!ki) {
            g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG,
                        "parameter '%s' is not supported or read-only", p->field);
            return false;
        }
        if (!knob_value(p, &v, error))
            return false;
        if (!sp_engine_knob_check(ki, p->field, v, &err)) {
            g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG, "%s", err->message);
            return false;
        }
        sp_engine_knob_set(&kn, ki, v);
        paced |= ki->advisor_sets;
    }
    if (paced && kn.advisor_mode == 1) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG,
                    "shm_pages_to_scan and shm_sleep_millisecs are the engine's own while "
                    "shm_advisor_mode is 1 (scan-time): set shm_advisor_target_scan_time and "
                    "shm_advisor_max_cpu, or shm_advisor_mode 0 first");
        return false;
    }
    g_autoptr(GError) err = NULL;
    if (!sp_engine_set_knobs(k->engine, &kn, &err)) {
        g_set_error(error, SP_LV_ERROR,
                    g_error_matches(err, SP_ENGINE_ERROR, SP_ENGINE_ERROR_BUSY)
                        ? SP_LV_ERR_OPERATION_INVALID
                        : SP_LV_ERR_INVALID_ARG,
                    "%s", err->message);
        return false;
    }
    g_message("event=knobs run=%u pages_to_scan=%u sleep_millisecs=%u merge_across_nodes=%u "
              "scan_nice=%u advisor_mode=%u advisor_target_scan_time=%u advisor_max_cpu=%u",
              kn.run, kn.pages_to_scan, kn.sleep_millisecs, kn.merge_across_nodes, kn.scan_nice,
              kn.advisor_mode, kn.advisor_target_scan_time, kn.advisor_max_cpu);
    return true;
}

void sp_knobs_vm_stats(SpHostKnobs *k, SpVm *vm, SpKnobVmStats *out)
{
    SpFigVmSrc src;
    sp_fig_vm_source(vm, k->engine, 0, &src);
    *out = (SpKnobVmStats){
        .rss_pages = src.eng.rss_pages,
        .swap_ins = src.eng.swap_ins,
        .swap_outs = src.eng.swap_outs,
    };
}

bool sp_knobs_vm_params(SpHostKnobs *k, SpVm *vm, bool balloon, SpLvParams *out, GError **error)
{
    SpFigVmSrc src;
    size_t n;
    sp_fig_table(SP_FIG_VM, &n);
    g_autofree SpFigValue *v = g_new0(SpFigValue, n);
    sp_fig_vm_source(vm, k->engine, 0, &src);
    sp_fig_read(SP_FIG_VM, &src, v);
    const SpVmConfig *cfg = sp_vm_config(vm);
    return (!balloon ||
            sp_lv_params_add_ullong(out, "balloon.rss", src.eng.rss_pages * 4, error)) &&
           sp_knobs_add_figures(out, SP_FIG_VM, v, error) &&
           sp_lv_params_add_string(out, "samepage.sharing_domain",
                                   cfg->domain ? cfg->domain : cfg->name, error);
}
