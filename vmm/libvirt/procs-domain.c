/* SPDX-License-Identifier: MIT */
/*
 * procs-domain.c - domain lookup, listing and read-only queries: lookup by
 * id/name/uuid, list (all, active ids, defined names, counts), state, info,
 * os type, persistence, autostart, managed save, messages, XML, max memory,
 * job info (always "none").
 *
 * Lookups by id and by name walk the backend's domain list (the backend only
 * has to answer by UUID); a list longer than REMOTE_DOMAIN_LIST_MAX is an
 * error rather than a reply clients would refuse.
 */
#include <string.h>

#include "vmm/libvirt/procs.h"

static bool no_domain(GError **error, const char *what, const char *value)
{
    g_set_error(error, SP_LV_ERROR, SP_LV_ERR_NO_DOMAIN,
                "Domain not found: no domain with matching %s '%s'", what, value);
    return false;
}

/* Copies the list entry that matches into *out; NO_DOMAIN otherwise. */
static bool domain_find(SpLvSession *s, const char *name, gint32 id, SpLvDomainInfo *out,
                        GError **error)
{
    g_autoptr(GPtrArray) list = sp_lv_domain_list(s, error);
    if (!list)
        return false;
    for (guint i = 0; i < list->len; i++) {
        SpLvDomainInfo *d = list->pdata[i];
        if ((name && g_strcmp0(d->name, name) == 0) || (!name && id >= 0 && d->id == id)) {
            *out = *d;
            d->name = NULL; /* moved to out */
            return true;
        }
    }
    if (name)
        return no_domain(error, "name", name);
    g_autofree char *ids = g_strdup_printf("%d", id);
    return no_domain(error, "id", ids);
}

static bool proc_lookup_by_id(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    gint32 id;
    SpLvDomainInfo d = {0};
    if (!sp_xdr_read_i32(args, &id, error) || !sp_lv_args_end(args, error) ||
        !domain_find(s, NULL, id, &d, error))
        return false;
    sp_lv_write_dom(ret, &d);
    sp_lv_domain_info_clear(&d);
    return true;
}

static bool proc_lookup_by_name(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    g_autofree char *name = NULL;
    SpLvDomainInfo d = {0};
    if (!sp_xdr_read_string(args, &name, SP_LV_STRING_MAX, error) || !sp_lv_args_end(args, error) ||
        !domain_find(s, name, -1, &d, error))
        return false;
    sp_lv_write_dom(ret, &d);
    sp_lv_domain_info_clear(&d);
    return true;
}

static bool proc_lookup_by_uuid(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    guint8 uuid[16];
    SpLvDomainInfo d = {0};
    if (!sp_xdr_read_fixed_opaque(args, uuid, 16, error) || !sp_lv_args_end(args, error) ||
        !sp_lv_domain_get(s, uuid, &d, error))
        return false;
    sp_lv_write_dom(ret, &d);
    sp_lv_domain_info_clear(&d);
    return true;
}

static bool list_matches(const SpLvDomainInfo *d, guint32 flags)
{
    bool active = d->id >= 0;
    if ((flags & (SP_LV_LIST_ACTIVE | SP_LV_LIST_INACTIVE)) &&
        !((flags & SP_LV_LIST_ACTIVE && active) || (flags & SP_LV_LIST_INACTIVE && !active)))
        return false;
    if ((flags & (SP_LV_LIST_PERSISTENT | SP_LV_LIST_TRANSIENT)) &&
        !((flags & SP_LV_LIST_PERSISTENT && d->persistent) ||
          (flags & SP_LV_LIST_TRANSIENT && !d->persistent)))
        return false;
    guint32 st =
        flags & (SP_LV_LIST_RUNNING | SP_LV_LIST_PAUSED | SP_LV_LIST_SHUTOFF | SP_LV_LIST_OTHER);
    if (st) {
        bool running = d->state == SP_LV_DOMAIN_RUNNING;
        bool paused = d->state == SP_LV_DOMAIN_PAUSED;
        bool shutoff = d->state == SP_LV_DOMAIN_SHUTOFF;
        bool other = !running && !paused && !shutoff;
        if (!((st & SP_LV_LIST_RUNNING && running) || (st & SP_LV_LIST_PAUSED && paused) ||
              (st & SP_LV_LIST_SHUTOFF && shutoff) || (st & SP_LV_LIST_OTHER && other)))
            return false;
    }
    return true;
}

static bool too_many(GError **error, guint n)
{
    g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INTERNAL_ERROR,
                "internal error: %u domains exceed the protocol limit %u", n,
                SP_LV_DOMAIN_LIST_MAX);
    return false;
}

static bool proc_list_all_domains(SpLvSession *s, SpXdrReader *args, GByteArray *ret,
                                  GError **error)
{
    gint32 need_results;
    guint32 flags;
    if (!sp_lv_args_int_flags(args, &need_results, &flags, error))
        return false;
    g_autoptr(GPtrArray) list = sp_lv_domain_list(s, error);
    if (!list)
        return false;
    guint n = 0;
    gsize count_at = ret->len;
    sp_xdr_write_u32(ret, 0);
    for (guint i = 0; i < list->len; i++) {
        const SpLvDomainInfo *d = list->pdata[i];
        if (!list_matches(d, flags))
            continue;
        n++;
        if (need_results)
            sp_lv_write_dom(ret, d);
    }
    if (n > SP_LV_DOMAIN_LIST_MAX)
        return too_many(error, n);
    if (need_results)
        sp_xdr_patch_u32(ret, count_at, n);
    sp_xdr_write_u32(ret, n);
    return true;
}

static bool read_max(SpXdrReader *args, gint32 *max, GError **error)
{
    if (!sp_xdr_read_i32(args, max, error) || !sp_lv_args_end(args, error))
        return false;
    if (*max < 0 || (guint32)*max > SP_LV_DOMAIN_LIST_MAX) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_RPC, "maximum %d out of range 0..%u", *max,
                    SP_LV_DOMAIN_LIST_MAX);
        return false;
    }
    return true;
}

/* Up to max ids of the active domains (CONNECT_LIST_DOMAINS) or names of
 * the inactive ones (CONNECT_LIST_DEFINED_DOMAINS): {int max} -> {ids<>}
 * or {string names<>}. */
static bool list_ids_or_names(SpLvSession *s, SpXdrReader *args, GByteArray *ret, bool active,
                              GError **error)
{
    gint32 max;
    if (!read_max(args, &max, error))
        return false;
    g_autoptr(GPtrArray) list = sp_lv_domain_list(s, error);
    if (!list)
        return false;
    gsize count_at = ret->len;
    gint32 n = 0;
    sp_xdr_write_u32(ret, 0);
    for (guint i = 0; i < list->len && n < max; i++) {
        const SpLvDomainInfo *d = list->pdata[i];
        if ((d->id >= 0) != active)
            continue;
        if (active)
            sp_xdr_write_i32(ret, d->id);
        else
            sp_xdr_write_string(ret, d->name);
        n++;
    }
    sp_xdr_patch_u32(ret, count_at, n);
    return true;
}

static bool proc_list_domains(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    return list_ids_or_names(s, args, ret, true, error);
}

static bool proc_list_defined_domains(SpLvSession *s, SpXdrReader *args, GByteArray *ret,
                                      GError **error)
{
    return list_ids_or_names(s, args, ret, false, error);
}

static bool count_domains(SpLvSession *s, SpXdrReader *args, GByteArray *ret, bool active,
                          GError **error)
{
    if (!sp_lv_args_end(args, error))
        return false;
    g_autoptr(GPtrArray) list = sp_lv_domain_list(s, error);
    if (!list)
        return false;
    gint32 n = 0;
    for (guint i = 0; i < list->len; i++)
        n += (((SpLvDomainInfo *)list->pdata[i])->id >= 0) == active;
    sp_xdr_write_i32(ret, n);
    return true;
}

static bool proc_num_of_domains(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    return count_domains(s, args, ret, true, error);
}

static bool proc_num_of_defined_domains(SpLvSession *s, SpXdrReader *args, GByteArray *ret,
                                        GError **error)
{
    return count_domains(s, args, ret, false, error);
}

#define DOM_PROC(fname, with_flags, ...)                                                           \
    static bool fname(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)          \
    {                                                                                              \
        SpLvDomainInfo d = {0};                                                                    \
        guint32 flags = 0;                                                                         \
        if (!sp_lv_dom_args(s, args, with_flags ? &flags : NULL, &d, error))                       \
            return false;                                                                          \
        bool ok = true;                                                                            \
        (void)flags;                                                                               \
        __VA_ARGS__;                                                                               \
        sp_lv_domain_info_clear(&d);                                                               \
        return ok;                                                                                 \
    }

DOM_PROC(proc_get_state, true, {
    sp_xdr_write_i32(ret, d.state);
    sp_xdr_write_i32(ret, d.reason);
})

DOM_PROC(proc_get_info, false, {
    sp_xdr_write_u32(ret, d.state); /* u_char, 4 bytes */
    sp_xdr_write_u64(ret, d.max_mem_kib);
    sp_xdr_write_u64(ret, d.cur_mem_kib);
    sp_xdr_write_u32(ret, MIN(d.vcpus, 0xffffu)); /* u_short, 4 bytes */
    sp_xdr_write_u64(ret, d.cpu_time_ns);
})

DOM_PROC(proc_get_max_memory, false, { sp_xdr_write_u64(ret, d.max_mem_kib); })
DOM_PROC(proc_is_active, false, { sp_xdr_write_i32(ret, d.id >= 0); })
DOM_PROC(proc_is_persistent, false, { sp_xdr_write_i32(ret, d.persistent); })
DOM_PROC(proc_get_autostart, false, { sp_xdr_write_i32(ret, d.autostart); })
DOM_PROC(proc_has_managed_save, true, { sp_xdr_write_i32(ret, 0); })
DOM_PROC(proc_get_messages, true, { sp_xdr_write_u32(ret, 0); })

DOM_PROC(proc_get_os_type, false, {
    g_autofree char *os = NULL;
    const SpLvBackendOps *ops = s->backend->ops;
    if (ops->domain_get_os_type)
        ok = ops->domain_get_os_type(s->backend->opaque, d.uuid, &os, error);
    if (ok)
        sp_xdr_write_string(ret, os ? os : "hvm");
})

DOM_PROC(proc_get_xml_desc, true, {
    g_autofree char *xml = NULL;
    ok = s->backend->ops->domain_get_xml(s->backend->opaque, d.uuid, flags, &xml, error);
    if (ok)
        sp_xdr_write_string(ret, xml);
})

/* DOMAIN_GET_JOB_INFO: no jobs exist: type NONE and eleven zero u64. */
DOM_PROC(proc_get_job_info, false, {
    sp_xdr_write_i32(ret, 0);
    for (int i = 0; i < 11; i++)
        sp_xdr_write_u64(ret, 0);
})

static bool dev_args(SpLvSession *s, SpXdrReader *args, SpLvDomainInfo *d, char **dev,
                     GError **error)
{
    guint8 uuid[16];
    gint32 id;
    if (!sp_lv_read_dom(args, NULL, uuid, &id, error) ||
        !sp_xdr_read_string(args, dev, SP_LV_STRING_MAX, error) || !sp_lv_args_end(args, error))
        return false;
    return sp_lv_domain_get(s, uuid, d, error);
}

static bool proc_block_stats(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    g_autofree char *path = NULL;
    SpLvDomainInfo d = {0};
    SpLvBlockStats st = {-1, -1, -1, -1, -1};
    if (!dev_args(s, args, &d, &path, error))
        return false;
    bool ok =
        s->backend->ops->domain_block_stats
            ? s->backend->ops->domain_block_stats(s->backend->opaque, d.uuid, path, &st, error)
            : sp_lv_unsupported("virDomainBlockStats", error);
    sp_lv_domain_info_clear(&d);
    if (!ok)
        return false;
    sp_xdr_write_i64(ret, st.rd_req);
    sp_xdr_write_i64(ret, st.rd_bytes);
    sp_xdr_write_i64(ret, st.wr_req);
    sp_xdr_write_i64(ret, st.wr_bytes);
    sp_xdr_write_i64(ret, st.errs);
    return true;
}

static bool proc_interface_stats(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    g_autofree char *dev = NULL;
    SpLvDomainInfo d = {0};
    SpLvInterfaceStats st = {-1, -1, -1, -1, -1, -1, -1, -1};
    if (!dev_args(s, args, &d, &dev, error))
        return false;
    bool ok =
        s->backend->ops->domain_interface_stats
            ? s->backend->ops->domain_interface_stats(s->backend->opaque, d.uuid, dev, &st, error)
            : sp_lv_unsupported("virDomainInterfaceStats", error);
    sp_lv_domain_info_clear(&d);
    if (!ok)
        return false;
    gint64 v[] = {st.rx_bytes, st.rx_packets, st.rx_errs, st.rx_drop,
                  st.tx_bytes, st.tx_packets, st.tx_errs, st.tx_drop};
    for (gsize i = 0; i < G_N_ELEMENTS(v); i++)
        sp_xdr_write_i64(ret, v[i]);
    return true;
}

const SpLvProc sp_lv_procs_domain[] = {
    {SP_LV_PROC_DOMAIN_LOOKUP_BY_ID, "virDomainLookupByID", false, false, proc_lookup_by_id},
    {SP_LV_PROC_DOMAIN_LOOKUP_BY_NAME, "virDomainLookupByName", false, false, proc_lookup_by_name},
    {SP_LV_PROC_DOMAIN_LOOKUP_BY_UUID, "virDomainLookupByUUID", false, false, proc_lookup_by_uuid},
    {SP_LV_PROC_CONNECT_LIST_ALL_DOMAINS, "virConnectListAllDomains", false, false,
     proc_list_all_domains},
    {SP_LV_PROC_CONNECT_LIST_DOMAINS, "virConnectListDomains", false, false, proc_list_domains},
    {SP_LV_PROC_CONNECT_LIST_DEFINED_DOMAINS, "virConnectListDefinedDomains", false, false,
     proc_list_defined_domains},
    {SP_LV_PROC_CONNECT_NUM_OF_DOMAINS, "virConnectNumOfDomains", false, false,
     proc_num_of_domains},
    {SP_LV_PROC_CONNECT_NUM_OF_DEFINED_DOMAINS, "virConnectNumOfDefinedDomains", false, false,
     proc_num_of_defined_domains},
    {SP_LV_PROC_DOMAIN_GET_STATE, "virDomainGetState", false, false, proc_get_state},
    {SP_LV_PROC_DOMAIN_GET_INFO, "virDomainGetInfo", false, false, proc_get_info},
    {SP_LV_PROC_DOMAIN_GET_MAX_MEMORY, "virDomainGetMaxMemory", false, false, proc_get_max_memory},
    {SP_LV_PROC_DOMAIN_GET_OS_TYPE, "virDomainGetOSType", false, false, proc_get_os_type},
    {SP_LV_PROC_DOMAIN_IS_ACTIVE, "virDomainIsActive", false, false, proc_is_active},
    {SP_LV_PROC_DOMAIN_IS_PERSISTENT, "virDomainIsPersistent", false, false, proc_is_persistent},
    {SP_LV_PROC_DOMAIN_GET_AUTOSTART, "virDomainGetAutostart", false, false, proc_get_autostart},
    {SP_LV_PROC_DOMAIN_HAS_MANAGED_SAVE_IMAGE, "virDomainHasManagedSaveImage", false, false,
     proc_has_managed_save},
    {SP_LV_PROC_DOMAIN_GET_MESSAGES, "virDomainGetMessages", false, false, proc_get_messages},
    {SP_LV_PROC_DOMAIN_GET_XML_DESC, "virDomainGetXMLDesc", false, false, proc_get_xml_desc},
    {SP_LV_PROC_DOMAIN_GET_JOB_INFO, "virDomainGetJobInfo", false, false, proc_get_job_info},
    {SP_LV_PROC_DOMAIN_BLOCK_STATS, "virDomainBlockStats", false, false, proc_block_stats},
    {SP_LV_PROC_DOMAIN_INTERFACE_STATS, "virDomainInterfaceStats", false, false,
     proc_interface_stats},
};
const gsize sp_lv_procs_domain_len = G_N_ELEMENTS(sp_lv_procs_domain);
