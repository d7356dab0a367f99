/* SPDX-License-Identifier: MIT */
/*
 * procs-common.c - helpers shared by the procedure implementations:
 * argument end check, remote_nonnull_domain codec, backend lookups with
 * libvirt-style "not found" errors.
 */
#include <string.h>

#include "vmm/libvirt/procs.h"

void sp_lv_domain_info_clear(SpLvDomainInfo *d)
{
    g_clear_pointer(&d->name, g_free);
}

const char *sp_lv_state_name(gint32 state)
{
    static const char *const names[] = {"no state",    "running",  "idle",    "paused",
                                        "in shutdown", "shut off", "crashed", "pmsuspended"};
    if (state < 0 || state >= (gint32)G_N_ELEMENTS(names))
        return "unknown";
    return names[state];
}

void sp_lv_domain_info_free(SpLvDomainInfo *d)
{
    if (!d)
        return;
    sp_lv_domain_info_clear(d);
    g_free(d);
}

bool sp_lv_args_end(SpXdrReader *args, GError **error)
{
    return sp_xdr_reader_finish(args, error);
}

bool sp_lv_args_int_flags(SpXdrReader *args, gint32 *n, guint32 *flags, GError **error)
{
    return sp_xdr_read_i32(args, n, error) && sp_xdr_read_u32(args, flags, error) &&
           sp_lv_args_end(args, error);
}

bool sp_lv_read_dom(SpXdrReader *r, char **name, guint8 uuid[16], gint32 *id, GError **error)
{
    g_autofree char *n = NULL;
    if (!sp_xdr_read_string(r, &n, SP_LV_STRING_MAX, error) ||
        !sp_xdr_read_fixed_opaque(r, uuid, 16, error) || !sp_xdr_read_i32(r, id, error))
        return false;
    if (name)
        *name = g_steal_pointer(&n);
    return true;
}

void sp_lv_write_dom(GByteArray *w, const SpLvDomainInfo *d)
{
    sp_xdr_write_string(w, d->name ? d->name : "");
    sp_xdr_write_fixed_opaque(w, d->uuid, 16);
    sp_xdr_write_i32(w, d->id);
}

bool sp_lv_domain_get(SpLvSession *s, const guint8 uuid[16], SpLvDomainInfo *out, GError **error)
{
    *out = (SpLvDomainInfo){0};
    if (!s->backend->ops->domain_get(s->backend->opaque, uuid, out, error)) {
        sp_lv_domain_info_clear(out);
        return false;
    }
    return true;
}

bool sp_lv_dom_args(SpLvSession *s, SpXdrReader *args, guint32 *flags, SpLvDomainInfo *d,
                    GError **error)
{
    guint8 uuid[16];
    gint32 id;
    if (!sp_lv_read_dom(args, NULL, uuid, &id, error) ||
        (flags && !sp_xdr_read_u32(args, flags, error)) || !sp_lv_args_end(args, error))
        return false;
    return sp_lv_domain_get(s, uuid, d, error);
}

bool sp_lv_flags_check(guint32 flags, guint32 allowed, GError **error)
{
    if (!(flags & ~allowed))
        return true;
    g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG,
                "invalid argument: unsupported flags (0x%x)", flags & ~allowed);
    return false;
}

bool sp_lv_read_dom_lookup(SpLvSession *s, SpXdrReader *args, SpLvDomainInfo *out, GError **error)
{
    guint8 uuid[16];
    gint32 id;
    if (!sp_lv_read_dom(args, NULL, uuid, &id, error))
        return false;
    return sp_lv_domain_get(s, uuid, out, error);
}

GPtrArray *sp_lv_domain_list(SpLvSession *s, GError **error)
{
    g_autoptr(GPtrArray) list =
        g_ptr_array_new_with_free_func((GDestroyNotify)sp_lv_domain_info_free);
    if (!s->backend->ops->domain_list(s->backend->opaque, list, error))
        return NULL;
    return g_steal_pointer(&list);
}

bool sp_lv_unsupported(const char *api, GError **error)
{
    g_set_error(error, SP_LV_ERROR, SP_LV_ERR_NO_SUPPORT,
                "this function is not supported by the connection driver: %s", api);
    return false;
}

bool sp_lv_nparams_bounded(gint32 nparams, guint max, GError **error)
{
    if (nparams >= 0 && (guint32)nparams <= max)
        return true;
    g_set_error(error, SP_LV_ERROR, SP_LV_ERR_RPC, "nparams %d out of range 0..%u", nparams, max);
    return false;
}

bool sp_lv_dom_params_get_args(SpXdrReader *args, guint8 uuid[16], gint32 *nparams, guint32 *flags,
                               guint32 allowed, guint max, GError **error)
{
    gint32 id;
    return sp_lv_read_dom(args, NULL, uuid, &id, error) &&
           sp_lv_args_int_flags(args, nparams, flags, error) &&
           sp_lv_flags_check(*flags, allowed, error) && sp_lv_nparams_bounded(*nparams, max, error);
}

bool sp_lv_dom_params_set_args(SpXdrReader *args, guint8 uuid[16], SpLvParams *p, guint32 *flags,
                               guint32 allowed, guint max, GError **error)
{
    gint32 id;
    return sp_lv_read_dom(args, NULL, uuid, &id, error) &&
           sp_lv_params_decode(args, p, max, error) && sp_xdr_read_u32(args, flags, error) &&
           sp_lv_args_end(args, error) && sp_lv_flags_check(*flags, allowed, error);
}

void sp_lv_params_reply(GByteArray *ret, const SpLvParams *p, gint32 nparams)
{
    if (nparams == 0) { /* the first step: how many there are */
        sp_xdr_write_u32(ret, 0);
        sp_xdr_write_i32(ret, sp_lv_params_len(p));
        return;
    }
    guint n = MIN((guint)nparams, sp_lv_params_len(p));
    sp_lv_params_encode_range(ret, p, 0, n);
    sp_xdr_write_i32(ret, n);
}

bool sp_lv_node_stats_bounded(gint32 nparams, GError **error)
{
    return sp_lv_nparams_bounded(nparams, SP_LV_NODE_MEMORY_STATS_MAX, error);
}

void sp_lv_node_stats_write(GByteArray *ret, gint32 nparams, const SpLvNodeStat *f, guint avail)
{
    if (nparams == 0) { /* the first step: how many there are */
        sp_xdr_write_u32(ret, 0);
        sp_xdr_write_i32(ret, avail);
        return;
    }
    guint n = MIN((guint)nparams, avail);
    sp_xdr_write_u32(ret, n);
    for (guint i = 0; i < n; i++) {
        sp_xdr_write_string(ret, f[i].field);
        sp_xdr_write_u64(ret, f[i].value);
    }
    sp_xdr_write_i32(ret, n);
}
