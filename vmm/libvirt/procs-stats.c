/* SPDX-License-Identifier: MIT */
/*
 * procs-stats.c - per-domain statistics: DOMAIN_MEMORY_STATS (dommemstat)
 * and CONNECT_GET_ALL_DOMAIN_STATS (domstats, exporters).
 *
 * domstats records are built in two steps: the endpoint adds the standard
 * keys it can derive from SpLvDomainInfo (state.*, cpu.time, balloon.current
 * and .maximum, vcpu.current and .maximum), then the backend's domain_stats
 * callback appends whatever else it knows (samepage.*, balloon.rss, ...).
 * "stats = 0" means every group.  Without explicit domains, the
 * ACTIVE/INACTIVE/PERSISTENT/... filter bits (same values as for
 * CONNECT_LIST_ALL_DOMAINS) select the domains.
 */
#include "vmm/libvirt/procs.h"

#define SP_LV_STATS_ALL_GROUPS  0x7ffu
#define SP_LV_STATS_FILTER_MASK 0xffu

static bool proc_memory_stats(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    guint8 uuid[16];
    gint32 id;
    guint32 max_stats, flags;
    SpLvDomainInfo d = {0};
    if (!sp_lv_read_dom(args, NULL, uuid, &id, error) ||
        !sp_xdr_read_u32(args, &max_stats, error) || !sp_xdr_read_u32(args, &flags, error) ||
        !sp_lv_args_end(args, error))
        return false;
    if (max_stats > SP_LV_DOMAIN_MEMORY_STATS_MAX) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_RPC, "maxStats %u exceeds the limit %u",
                    max_stats, SP_LV_DOMAIN_MEMORY_STATS_MAX);
        return false;
    }
    if (!sp_lv_domain_get(s, uuid, &d, error))
        return false;
    g_autoptr(GArray) stats = g_array_new(FALSE, TRUE, sizeof(SpLvMemStat));
    bool ok = s->backend->ops->domain_memory_stats
                  ? s->backend->ops->domain_memory_stats(s->backend->opaque, d.uuid, stats, error)
                  : sp_lv_unsupported("virDomainMemoryStats", error);
    sp_lv_domain_info_clear(&d);
    if (!ok)
        return false;
    guint n = MIN(stats->len, max_stats);
    sp_xdr_write_u32(ret, n);
    for (guint i = 0; i < n; i++) {
        const SpLvMemStat *m = &g_array_index(stats, SpLvMemStat, i);
        sp_xdr_write_i32(ret, m->tag);
        sp_xdr_write_u64(ret, m->val);
    }
    return true;
}

static bool stats_standard(const SpLvDomainInfo *d, guint32 groups, SpLvParams *p, GError **error)
{
    if (groups & SP_LV_STATS_STATE && (!sp_lv_params_add_int(p, "state.state", d->state, error) ||
                                       !sp_lv_params_add_int(p, "state.reason", d->reason, error)))
        return false;
    if (groups & SP_LV_STATS_CPU_TOTAL && d->id >= 0 &&
        !sp_lv_params_add_ullong(p, "cpu.time", d->cpu_time_ns, error))
        return false;
    if (groups & SP_LV_STATS_BALLOON &&
        (!sp_lv_params_add_ullong(p, "balloon.current", d->cur_mem_kib, error) ||
         !sp_lv_params_add_ullong(p, "balloon.maximum", d->max_mem_kib, error)))
        return false;
    if (groups & SP_LV_STATS_VCPU && (!sp_lv_params_add_uint(p, "vcpu.current", d->vcpus, error) ||
                                      !sp_lv_params_add_uint(p, "vcpu.maximum", d->vcpus, error)))
        return false;
    return true;
}

static bool stats_record(SpLvSession *s, const SpLvDomainInfo *d, guint32 groups, GByteArray *ret,
                         GError **error)
{
    g_autoptr(SpLvParams) p = sp_lv_params_new();
    if (!stats_standard(d, groups, p, error))
        return false;
    if (s->backend->ops->domain_stats &&
        !s->backend->ops->domain_stats(s->backend->opaque, d->uuid, groups, p, error))
        return false;
    if (sp_lv_params_len(p) > SP_LV_GET_ALL_DOMAIN_STATS_MAX) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INTERNAL_ERROR,
                    "internal error: %u statistics for domain '%s' exceed the limit %u",
                    sp_lv_params_len(p), d->name, SP_LV_GET_ALL_DOMAIN_STATS_MAX);
        return false;
    }
    sp_lv_write_dom(ret, d);
    sp_lv_params_encode(ret, p);
    return true;
}

static bool stats_filter(const SpLvDomainInfo *d, guint32 flags)
{
    bool active = d->id >= 0;
    if ((flags & 3) && !((flags & 1 && active) || (flags & 2 && !active)))
        return false;
    if ((flags & 12) && !((flags & 4 && d->persistent) || (flags & 8 && !d->persistent)))
        return false;
    guint32 st = flags & 0xf0;
    if (st) {
        bool running = d->state == SP_LV_DOMAIN_RUNNING;
        bool paused = d->state == SP_LV_DOMAIN_PAUSED;
        bool shutoff = d->state == SP_LV_DOMAIN_SHUTOFF;
        bool other = !running && !paused && !shutoff;
        if (!((st & 16 && running) || (st & 32 && paused) || (st & 64 && shutoff) ||
              (st & 128 && other)))
            return false;
    }
    return true;
}

static bool proc_get_all_domain_stats(SpLvSession *s, SpXdrReader *args, GByteArray *ret,
                                      GError **error)
{
    guint32 ndoms, groups, flags;
    /* a remote_nonnull_domain is at least 4 + 16 + 4 bytes */
    if (!sp_xdr_read_count(args, &ndoms, SP_LV_DOMAIN_LIST_MAX, 24, error))
        return false;
    g_autoptr(GArray) uuids = g_array_sized_new(FALSE, FALSE, 16, ndoms);
    for (guint32 i = 0; i < ndoms; i++) {
        guint8 uuid[16];
        gint32 id;
        if (!sp_lv_read_dom(args, NULL, uuid, &id, error))
            return false;
        g_array_append_vals(uuids, uuid, 1);
    }
    if (!sp_xdr_read_u32(args, &groups, error) || !sp_xdr_read_u32(args, &flags, error) ||
        !sp_lv_args_end(args, error))
        return false;
    if (groups == 0)
        groups = SP_LV_STATS_ALL_GROUPS;

    g_autoptr(GPtrArray) list = NULL;
    if (ndoms) {
        list = g_ptr_array_new_with_free_func((GDestroyNotify)sp_lv_domain_info_free);
        for (guint32 i = 0; i < ndoms; i++) {
            g_autoptr(SpLvDomainInfo) d = g_new0(SpLvDomainInfo, 1);
            if (!sp_lv_domain_get(s, &g_array_index(uuids, guint8, i * 16), d, error))
                return false;
            g_ptr_array_add(list, g_steal_pointer(&d));
        }
    } else {
        list = sp_lv_domain_list(s, error);
        if (!list)
            return false;
    }
    gsize count_at = ret->len;
    guint32 n = 0;
    sp_xdr_write_u32(ret, 0);
    for (guint i = 0; i < list->len; i++) {
        const SpLvDomainInfo *d = list->pdata[i];
        if (!ndoms && !stats_filter(d, flags & SP_LV_STATS_FILTER_MASK))
            continue;
        if (!stats_record(s, d, groups, ret, error))
            return false;
        n++;
    }
    if (n > SP_LV_DOMAIN_LIST_MAX) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INTERNAL_ERROR,
                    "internal error: %u domains exceed the protocol limit", n);
        return false;
    }
    sp_xdr_patch_u32(ret, count_at, n);
    return true;
}

const SpLvProc sp_lv_procs_stats[] = {
    {SP_LV_PROC_DOMAIN_MEMORY_STATS, "virDomainMemoryStats", false, false, proc_memory_stats},
    {SP_LV_PROC_CONNECT_GET_ALL_DOMAIN_STATS, "virConnectGetAllDomainStats", false, false,
     proc_get_all_domain_stats},
};
const gsize sp_lv_procs_stats_len = G_N_ELEMENTS(sp_lv_procs_stats);
