/* SPDX-License-Identifier: MIT */
/* knobs.c - node-memory-tune parameters and per-VM figures (see knobs.h). */
#include <string.h>

#include "vmm/daemon/knobs.h"
#include "vmm/libvirt/backend.h"

struct SpHostKnobs {
    void *engine;              /* the sharing engine, or NULL */
    guint32 pages_to_scan;     /* when no engine */
    guint32 sleep_millisecs;
    guint32 merge_across_nodes;
};

SpHostKnobs *sp_knobs_new(void *engine)
{
    SpHostKnobs *k = g_new0(SpHostKnobs, 1);
    k->engine = engine;
    k->pages_to_scan = 100;
    k->sleep_millisecs = 20;
    k->merge_across_nodes = 1;
    return k;
}

void sp_knobs_free(SpHostKnobs *k)
{
    g_free(k);
}

bool sp_knobs_params_get(SpHostKnobs *k, SpLvParams *out, GError **error)
{
    return sp_lv_params_add_uint(out, "shm_pages_to_scan", k->pages_to_scan, error) &&
           sp_lv_params_add_uint(out, "shm_sleep_millisecs", k->sleep_millisecs, error) &&
           sp_lv_params_add_ullong(out, "shm_pages_shared", 0, error) &&
           sp_lv_params_add_ullong(out, "shm_pages_sharing", 0, error) &&
           sp_lv_params_add_ullong(out, "shm_pages_unshared", 0, error) &&
           sp_lv_params_add_ullong(out, "shm_pages_volatile", 0, error) &&
           sp_lv_params_add_ullong(out, "shm_full_scans", 0, error) &&
           sp_lv_params_add_uint(out, "shm_merge_across_nodes", k->merge_across_nodes, error);
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

bool sp_knobs_params_set(SpHostKnobs *k, const SpLvParams *in, GError **error)
{
    guint32 to_scan = k->pages_to_scan, sleep_ms = k->sleep_millisecs,
            across = k->merge_across_nodes;
    /* Check everything before changing anything. */
    for (guint i = 0; i < sp_lv_params_len(in); i++) {
        const SpLvParam *p = sp_lv_params_get(in, i);
        guint32 v = 0;
        if (!strcmp(p->field, "shm_pages_to_scan")) {
            if (!knob_value(p, &v, error))
                return false;
            to_scan = v;
        } else if (!strcmp(p->field, "shm_sleep_millisecs")) {
            if (!knob_value(p, &v, error))
                return false;
            sleep_ms = v;
        } else if (!strcmp(p->field, "shm_merge_across_nodes")) {
            if (!knob_value(p, &v, error) || v > 1) {
                g_clear_error(error);
                g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG,
                            "shm_merge_across_nodes must be 0 or 1");
                return false;
            }
            across = v;
        } else {
            g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG,
                        "parameter '%s' is not supported or read-only", p->field);
            return false;
        }
    }
    k->pages_to_scan = to_scan;
    k->sleep_millisecs = sleep_ms;
    k->merge_across_nodes = across;
    g_message("event=knobs pages_to_scan=%u sleep_millisecs=%u merge_across_nodes=%u", to_scan,
              sleep_ms, across);
    return true;
}

void sp_knobs_vm_stats(SpHostKnobs *k, SpVm *vm, SpKnobVmStats *out)
{
    memset(out, 0, sizeof(*out));
    GuestMem *mem = sp_vm_mem(vm);
    out->rss_pages = guest_mem_resident_pages(mem);
    out->private_pages = out->rss_pages;
    out->mappings = 1;
    const SpVmConfig *cfg = sp_vm_config(vm);
    out->sharing_domain = g_strdup(cfg->domain ? cfg->domain : cfg->name);
}
