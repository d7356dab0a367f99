/* SPDX-License-Identifier: MIT */
/*
 * procs-numatune.c - virsh numatune: DOMAIN_GET_NUMA_PARAMETERS and
 * DOMAIN_SET_NUMA_PARAMETERS (docs/numa.md, docs/libvirt.md).
 *
 * The parameters are libvirt's: numa_mode (int: 0 strict, 1 preferred,
 * 2 interleave, 3 restrictive, which samepage refuses) and numa_nodeset
 * (string, e.g. "0-1").  GET follows libvirt's two steps (nparams 0 asks
 * for the count); a client that did not say VIR_TYPED_PARAM_STRING_OKAY
 * gets the mode only, as libvirt's drivers do.  SET with --live moves the
 * running VM's memory before it returns.  Flags: VIR_DOMAIN_AFFECT_LIVE
 * and VIR_DOMAIN_AFFECT_CONFIG (neither: the running VM if it runs, else
 * the definition).  SET is refused on read-only connections.
 */
#include <string.h>

#include "vmm/libvirt/procs.h"

/* virDomainNumatuneMemMode, by its number */
static const char *const mode_names[] = {"strict", "preferred", "interleave", "restrictive"};

#define NUMA_FLAGS (SP_LV_AFFECT_LIVE | SP_LV_AFFECT_CONFIG | SP_LV_TYPED_PARAM_STRING_OKAY)

static bool proc_get_numa_params(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    guint8 uuid[16];
    gint32 nparams;
    guint32 flags;
    const SpLvBackendOps *ops = s->backend->ops;
    if (!sp_lv_dom_params_get_args(args, uuid, &nparams, &flags, NUMA_FLAGS,
                                   SP_LV_DOMAIN_NUMA_PARAMETERS_MAX, error))
        return false;
    if (!ops->domain_numa_get)
        return sp_lv_unsupported("virDomainGetNumaParameters", error);
    g_autofree char *mode = NULL, *nodeset = NULL;
    if (!ops->domain_numa_get(s->backend->opaque, uuid, flags & ~SP_LV_TYPED_PARAM_STRING_OKAY,
                              &mode, &nodeset, error))
        return false;
    gint32 m = 0;
    for (guint i = 0; i < G_N_ELEMENTS(mode_names); i++)
        if (!g_strcmp0(mode, mode_names[i]))
            m = (gint32)i;
    g_autoptr(SpLvParams) p = sp_lv_params_new();
    if (!sp_lv_params_add_int(p, "numa_mode", m, error) ||
        ((flags & SP_LV_TYPED_PARAM_STRING_OKAY) &&
         !sp_lv_params_add_string(p, "numa_nodeset", nodeset, error)))
        return false;
    sp_lv_params_reply(ret, p, nparams);
    return true;
}

static bool proc_set_numa_params(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    guint8 uuid[16];
    guint32 flags;
    const SpLvBackendOps *ops = s->backend->ops;
    g_autoptr(SpLvParams) p = sp_lv_params_new();
    if (!sp_lv_dom_params_set_args(args, uuid, p, &flags, NUMA_FLAGS,
                                   SP_LV_DOMAIN_NUMA_PARAMETERS_MAX, error))
        return false;
    if (!ops->domain_numa_set)
        return sp_lv_unsupported("virDomainSetNumaParameters", error);
    const char *mode = NULL, *nodeset = NULL;
    for (guint i = 0; i < sp_lv_params_len(p); i++) {
        const SpLvParam *prm = sp_lv_params_get(p, i);
        guint64 v;
        if (!strcmp(prm->field, "numa_mode")) {
            if (!sp_lv_param_get_u64(prm, &v) || v >= G_N_ELEMENTS(mode_names)) {
                g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG,
                            "invalid argument: numa_mode must be 0 (strict), 1 (preferred), "
                            "2 (interleave) or 3 (restrictive)");
                return false;
            }
            mode = mode_names[v];
        } else if (!strcmp(prm->field, "numa_nodeset") && prm->type == SP_LV_PARAM_STRING) {
            nodeset = prm->v.s;
        } else {
            g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG,
                        "invalid argument: unknown or mistyped NUMA parameter '%s' (known: "
                        "numa_mode, int; numa_nodeset, string)",
                        prm->field);
            return false;
        }
    }
    (void)ret;
    if (!mode && !nodeset)
        return true;
    return ops->domain_numa_set(s->backend->opaque, uuid, flags & ~SP_LV_TYPED_PARAM_STRING_OKAY,
                                mode, nodeset, error);
}

const SpLvProc sp_lv_procs_numatune[] = {
    {SP_LV_PROC_DOMAIN_GET_NUMA_PARAMETERS, "virDomainGetNumaParameters", false, false,
     proc_get_numa_params},
    {SP_LV_PROC_DOMAIN_SET_NUMA_PARAMETERS, "virDomainSetNumaParameters", true, false,
     proc_set_numa_params},
};
const gsize sp_lv_procs_numatune_len = G_N_ELEMENTS(sp_lv_procs_numatune);
