/* SPDX-License-Identifier: MIT */
/* knobs.c - node-memory-tune parameters and per-VM figures (see knobs.h). */
#include <string.h>

#include "sharing/engine.h"
#include "sharing/knobs.h"
#include "vmm/daemon/knobs.h"
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

bool sp_knobs_params_get(SpHostKnobs *k, SpLvParams *out, GError **error)
{
    SpEngineKnobs kn;
    SpEngineStats st;
    sp_engine_get_knobs(k->engine, &kn);
    sp_engine_get_stats(k->engine, &st);
    return sp_lv_params_add_uint(out, "shm_pages_to_scan", kn.pages_to_scan, error) &&
           sp_lv_params_add_uint(out, "shm_sleep_millisecs", kn.sleep_millisecs, error) &&
           sp_lv_params_add_ullong(out, "shm_pages_shared", st.pages_shared, error) &&
           sp_lv_params_add_ullong(out, "shm_pages_sharing", st.pages_sharing, error) &&
           sp_lv_params_add_ullong(out, "shm_pages_unshared", st.pages_unshared, error) &&
           sp_lv_params_add_ullong(out, "shm_pages_volatile", st.pages_volatile, error) &&
           sp_lv_params_add_ullong(out, "shm_full_scans", st.full_scans, error) &&
           sp_lv_params_add_ullong(out, "shm_pool_frames", st.pool_frames, error) &&
           sp_lv_params_add_uint(out, "shm_merge_across_nodes", kn.merge_across_nodes, error);
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

/* The knobs node-memory-tune may set: libvirt's name is "shm_" + KSM's. */
static const SpEngineKnobInfo *settable_knob(const char *field)
{
    static const char *const settable[] = {"pages_to_scan", "sleep_millisecs",
                                           "merge_across_nodes"};
    for (size_t i = 0; i < G_N_ELEMENTS(settable); i++)
        if (g_str_has_prefix(field, "shm_") && !strcmp(field + 4, settable[i]))
            return sp_engine_knob_find(settable[i]);
    return NULL;
}

bool sp_knobs_params_set(SpHostKnobs *k, const SpLvParams *in, GError **error)
{
    SpEngineKnobs kn;
    sp_engine_get_knobs(k->engine, &kn);
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
    }
    g_autoptr(GError) err = NULL;
    if (!sp_engine_set_knobs(k->engine, &kn, &err)) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG, "%s", err->message);
        return false;
    }
    g_message("event=knobs pages_to_scan=%u sleep_millisecs=%u merge_across_nodes=%u",
              kn.pages_to_scan, kn.sleep_millisecs, kn.merge_across_nodes);
    return true;
}

void sp_knobs_vm_stats(SpHostKnobs *k, SpVm *vm, SpKnobVmStats *out)
{
    memset(out, 0, sizeof(*out));
    SpEngineVmStats es;
    SpEngineVm *ev = sp_vm_engine_handle(vm);
    if (ev) {
        sp_engine_get_vm_stats(k->engine, ev, &es);
    } else { /* not in the engine: every resident page is its own, in one mapping */
        uint64_t resident = sp_vm_resident_pages(vm);
        es = (SpEngineVmStats){.rss_pages = resident, .private_pages = resident, .mappings = 1};
    }
    out->rss_pages = es.rss_pages;
    out->merged_pages = es.merged_pages;
    out->zero_pages = es.zero_pages;
    out->clone_shared_pages = sp_vm_clone_shared_pages(vm);
    out->clone_generation = sp_vm_clone_generation(vm);
    out->clone_group = sp_vm_clone_group_id(vm);
    out->private_pages = es.private_pages;
    out->mappings = es.mappings;
    out->profit_bytes = es.profit_bytes > 0 ? (guint64)es.profit_bytes : 0;
    const SpVmConfig *cfg = sp_vm_config(vm);
    out->sharing_domain = g_strdup(cfg->domain ? cfg->domain : cfg->name);
}
