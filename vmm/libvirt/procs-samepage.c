/* SPDX-License-Identifier: MIT */
/*
 * procs-samepage.c - samepage's private RPC program (SP_LV_SAMEPAGE_PROGRAM
 * 0x53504745, version 1), served on the libvirt socket beside libvirt's
 * remote program, for what libvirt has no procedure for:
 *
 *   1 CLONE         {string name; unsigned count; string names<64>}
 *                   -> {string children<64>}      mutating (refused read-only)
 *   2 CLONE_GROUPS  {unsigned flags (0)}
 *                   -> {sp_clone_group groups<4096>}, each group a
 *                      remote_typed_param params<16> (id, parent, members,
 *                      pages, mappings, pages_shared, pages_saved, file_open)
 *
 * The XDR and semantics are in docs/libvirt.md ("The samepage program").
 * Dispatch (session.c) is the same as for the remote program: access check,
 * unknown procedure -> VIR_ERR_RPC "unknown procedure: N", open check,
 * read-only check, handler.  Stateless; the protocol thread only.
 */
#include <string.h>

#include "vmm/libvirt/procs.h"

static bool proc_sp_clone(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    g_autofree char *name = NULL;
    guint32 count = 0, n_names = 0;
    if (!sp_xdr_read_string(args, &name, SP_LV_STRING_MAX, error) ||
        !sp_xdr_read_u32(args, &count, error) || !sp_xdr_read_u32(args, &n_names, error))
        return false;
    if (n_names > SP_LV_CLONE_NAMES_MAX) {
        g_set_error(error, SP_XDR_ERROR, SP_XDR_ERROR_TOO_LONG, "%u clone names, more than %u",
                    n_names, SP_LV_CLONE_NAMES_MAX);
        return false;
    }
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    for (guint32 i = 0; i < n_names; i++) {
        char *n = NULL;
        if (!sp_xdr_read_string(args, &n, SP_LV_CLONE_NAME_MAX, error))
            return false;
        g_ptr_array_add(names, n);
    }
    g_ptr_array_add(names, NULL);
    if (!sp_lv_args_end(args, error))
        return false;
    if (!s->backend->ops->domain_clone)
        return sp_lv_unsupported("samepageDomainClone", error);
    g_autoptr(GPtrArray) kids = g_ptr_array_new_with_free_func(g_free);
    if (!s->backend->ops->domain_clone(s->backend->opaque, name, count,
                                       (const char *const *)names->pdata, n_names, kids, error))
        return false;
    sp_xdr_write_u32(ret, kids->len);
    for (guint i = 0; i < kids->len; i++)
        sp_xdr_write_string(ret, kids->pdata[i]);
    return true;
}

static bool proc_sp_clone_groups(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    guint32 flags;
    if (!sp_xdr_read_u32(args, &flags, error) || !sp_lv_args_end(args, error))
        return false;
    if (flags) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG, "unsupported flags (0x%x)", flags);
        return false;
    }
    if (!s->backend->ops->clone_groups)
        return sp_lv_unsupported("samepageCloneGroups", error);
    g_autoptr(GPtrArray) groups = g_ptr_array_new_with_free_func((GDestroyNotify)sp_lv_params_free);
    if (!s->backend->ops->clone_groups(s->backend->opaque, groups, error))
        return false;
    guint n = MIN(groups->len, SP_LV_CLONE_GROUPS_MAX);
    sp_xdr_write_u32(ret, n);
    for (guint i = 0; i < n; i++) {
        const SpLvParams *p = groups->pdata[i];
        sp_lv_params_encode_range(ret, p, 0, MIN(sp_lv_params_len(p), SP_LV_CLONE_GROUP_PARAMS));
    }
    return true;
}

const SpLvProc sp_lv_procs_samepage[] = {
    {SP_LV_SAMEPAGE_PROC_CLONE, "samepageDomainClone", true, false, proc_sp_clone},
    {SP_LV_SAMEPAGE_PROC_CLONE_GROUPS, "samepageCloneGroups", false, false, proc_sp_clone_groups},
};
const gsize sp_lv_procs_samepage_len = G_N_ELEMENTS(sp_lv_procs_samepage);

const SpLvProc *sp_lv_samepage_proc_find(gint32 proc)
{
    for (gsize i = 0; i < sp_lv_procs_samepage_len; i++)
        if (sp_lv_procs_samepage[i].proc == proc)
            return &sp_lv_procs_samepage[i];
    return NULL;
}
