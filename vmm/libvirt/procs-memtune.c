/* SPDX-License-Identifier: MIT */
/*
 * procs-memtune.c - virsh memtune: DOMAIN_GET_MEMORY_PARAMETERS and
 * DOMAIN_SET_MEMORY_PARAMETERS (docs/swap.md, docs/libvirt.md).
 *
 * The parameters are libvirt's: hard_limit, soft_limit and
 * swap_hard_limit, unsigned long long KiB, VIR_DOMAIN_MEMORY_PARAM_UNLIMITED
 * for none.  samepage keeps hard_limit (its per-VM swap limit); the other
 * two are reported unlimited and refused when set.  GET follows libvirt's
 * two steps (nparams 0 asks for the count).  Flags: VIR_DOMAIN_AFFECT_LIVE
 * and VIR_DOMAIN_AFFECT_CONFIG (neither: the running VM if it runs, else
 * the definition).  SET is refused on read-only connections.
 */
#include <string.h>

#include "vmm/libvirt/procs.h"

#define MEMTUNE_FLAGS (SP_LV_AFFECT_LIVE | SP_LV_AFFECT_CONFIG | SP_LV_TYPED_PARAM_STRING_OKAY)

static bool proc_get_memory_params(SpLvSession *s, SpXdrReader *args, GByteArray *ret,
                                   GError **error)
{
    guint8 uuid[16];
    gint32 nparams;
    guint32 flags;
    const SpLvBackendOps *ops = s->backend->ops;
    if (!sp_lv_dom_params_get_args(args, uuid, &nparams, &flags, MEMTUNE_FLAGS,
                                   SP_LV_DOMAIN_MEMORY_PARAMETERS_MAX, error))
        return false;
    if (!ops->domain_mem_limit_get)
        return sp_lv_unsupported("virDomainGetMemoryParameters", error);
    guint64 kib = 0;
    if (!ops->domain_mem_limit_get(s->backend->opaque, uuid, flags, &kib, error))
        return false;
    g_autoptr(SpLvParams) p = sp_lv_params_new();
    if (!sp_lv_params_add_ullong(p, "hard_limit", kib ? kib : SP_LV_MEMORY_PARAM_UNLIMITED,
                                 error) ||
        !sp_lv_params_add_ullong(p, "soft_limit", SP_LV_MEMORY_PARAM_UNLIMITED, error) ||
        !sp_lv_params_add_ullong(p, "swap_hard_limit", SP_LV_MEMORY_PARAM_UNLIMITED, error))
        return false;
    sp_lv_params_reply(ret, p, nparams);
    return true;
}

static bool proc_set_memory_params(SpLvSession *s, SpXdrReader *args, GByteArray *ret,
                                   GError **error)
{
    guint8 uuid[16];
    guint32 flags;
    const SpLvBackendOps *ops = s->backend->ops;
    g_autoptr(SpLvParams) p = sp_lv_params_new();
    if (!sp_lv_dom_params_set_args(args, uuid, p, &flags, MEMTUNE_FLAGS,
                                   SP_LV_DOMAIN_MEMORY_PARAMETERS_MAX, error))
        return false;
    if (!ops->domain_mem_limit_set)
        return sp_lv_unsupported("virDomainSetMemoryParameters", error);
    bool have = false;
    guint64 kib = 0;
    for (guint i = 0; i < sp_lv_params_len(p); i++) {
        const SpLvParam *prm = sp_lv_params_get(p, i);
        guint64 v;
        if (!sp_lv_param_get_u64(prm, &v)) {
            g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG,
                        "invalid argument: parameter '%s' must be an unsigned long long (KiB)",
                        prm->field);
            return false;
        }
        if (!strcmp(prm->field, "hard_limit")) {
            have = true;
            kib = v >= SP_LV_MEMORY_PARAM_UNLIMITED ? 0 : v;
        } else if ((strcmp(prm->field, "soft_limit") && strcmp(prm->field, "swap_hard_limit")) ||
                   v < SP_LV_MEMORY_PARAM_UNLIMITED) {
            g_set_error(error, SP_LV_ERROR, SP_LV_ERR_CONFIG_UNSUPPORTED,
                        "argument unsupported: samepage keeps a hard_limit only, not '%s' "
                        "(docs/swap.md)",
                        prm->field);
            return false;
        }
    }
    (void)ret;
    return !have || ops->domain_mem_limit_set(s->backend->opaque, uuid, flags, kib, error);
}

const SpLvProc sp_lv_procs_memtune[] = {
    {SP_LV_PROC_DOMAIN_GET_MEMORY_PARAMETERS, "virDomainGetMemoryParameters", false, false,
     proc_get_memory_params},
    {SP_LV_PROC_DOMAIN_SET_MEMORY_PARAMETERS, "virDomainSetMemoryParameters", true, false,
     proc_set_memory_params},
};
const gsize sp_lv_procs_memtune_len = G_N_ELEMENTS(sp_lv_procs_memtune);
