/* SPDX-License-Identifier: MIT */
/*
 * procs-vcpu.c - a domain's vCPUs: virsh vcpuinfo (GET_VCPUS, and
 * GET_VCPU_PIN_INFO for a shut-off domain), vcpucount (GET_VCPUS_FLAGS) and
 * GET_MAX_VCPUS.  Read-only queries.
 *
 * Counts come from SpLvDomainInfo (vcpus: those that run, vcpus_max: the
 * <vcpu> maximum); per-vCPU figures and affinities from the backend's
 * domain_vcpus.  cpumaps follow libvirt's layout: maxinfo (or ncpumaps)
 * maps of maplen bytes each, bit n of a map = host CPU n, the whole buffer
 * sent even where fewer vCPUs exist, as libvirtd does.  Every count and
 * size from the wire is bounded before anything is allocated.
 */
#include <string.h>

#include "vmm/libvirt/procs.h"

static guint32 vcpus_max(const SpLvDomainInfo *d)
{
    return d->vcpus_max ? d->vcpus_max : d->vcpus;
}

/* The backend's vCPUs of d (live: running ones). */
static GArray *vcpus_get(SpLvSession *s, const SpLvDomainInfo *d, bool live, GError **error)
{
    if (!s->backend->ops->domain_vcpus) {
        sp_lv_unsupported("virDomainGetVcpus", error);
        return NULL;
    }
    g_autoptr(GArray) v = g_array_new(FALSE, TRUE, sizeof(SpLvVcpuInfo));
    if (!s->backend->ops->domain_vcpus(s->backend->opaque, d->uuid, live, v, error))
        return NULL;
    return g_steal_pointer(&v);
}

/* n maps of maplen bytes (the wire's opaque cpumaps<>), map i from v[i]. */
static void cpumaps_write(GByteArray *ret, GArray *v, guint n, guint maplen)
{
    g_autofree guint8 *maps = g_malloc0((gsize)n * maplen + 1);
    for (guint i = 0; i < n && i < v->len; i++)
        memcpy(maps + (gsize)i * maplen, g_array_index(v, SpLvVcpuInfo, i).cpumap,
               MIN(maplen, SP_LV_CPUMAP_BYTES));
    sp_xdr_write_opaque(ret, maps, (gsize)n * maplen);
}

static bool maps_bounded(gint32 n, gint32 maplen, GError **error)
{
    if (n >= 0 && maplen >= 0 && (guint32)n <= SP_LV_VCPUINFO_MAX &&
        (guint64)n * (guint32)maplen <= SP_LV_CPUMAPS_MAX)
        return true;
    g_set_error(error, SP_LV_ERROR, SP_LV_ERR_RPC,
                "%d vCPUs of %d map bytes each exceed the protocol's limits", n, maplen);
    return false;
}

/* {dom, int maxinfo, int maplen} -> {vcpu_info info<>, opaque cpumaps<>} */
static bool proc_get_vcpus(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    guint8 uuid[16];
    gint32 id, maxinfo, maplen;
    g_auto(SpLvDomainInfo) d = {0};
    if (!sp_lv_read_dom(args, NULL, uuid, &id, error) || !sp_xdr_read_i32(args, &maxinfo, error) ||
        !sp_xdr_read_i32(args, &maplen, error) || !sp_lv_args_end(args, error) ||
        !maps_bounded(maxinfo, maplen, error) || !sp_lv_domain_get(s, uuid, &d, error))
        return false;
    g_autoptr(GArray) v = vcpus_get(s, &d, true, error);
    if (!v)
        return false;
    guint n = MIN(v->len, (guint)maxinfo);
    sp_xdr_write_u32(ret, n);
    for (guint i = 0; i < n; i++) {
        const SpLvVcpuInfo *c = &g_array_index(v, SpLvVcpuInfo, i);
        sp_xdr_write_u32(ret, c->number);
        sp_xdr_write_i32(ret, c->state);
        sp_xdr_write_u64(ret, c->cpu_time_ns);
        sp_xdr_write_i32(ret, c->cpu);
    }
    cpumaps_write(ret, v, (guint)maxinfo, (guint)maplen);
    return true;
}

/* Live (*live) or configuration figures for flags (virDomainModificationImpact). */
static bool impact_live(const SpLvDomainInfo *d, guint32 flags, bool *live, GError **error)
{
    if ((flags & SP_LV_AFFECT_LIVE) && (flags & SP_LV_AFFECT_CONFIG)) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG,
                    "invalid argument: live and config are mutually exclusive");
        return false;
    }
    *live = (flags & SP_LV_AFFECT_LIVE) || (!(flags & SP_LV_AFFECT_CONFIG) && d->id >= 0);
    if (*live && d->id < 0) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_OPERATION_INVALID,
                    "Requested operation is not valid: domain '%s' is not running", d->name);
        return false;
    }
    return true;
}

/* {dom, int ncpumaps, int maplen, unsigned flags} -> {opaque cpumaps<>, int num} */
static bool proc_get_vcpu_pin_info(SpLvSession *s, SpXdrReader *args, GByteArray *ret,
                                   GError **error)
{
    guint8 uuid[16];
    gint32 id, ncpumaps, maplen;
    guint32 flags;
    bool live;
    g_auto(SpLvDomainInfo) d = {0};
    if (!sp_lv_read_dom(args, NULL, uuid, &id, error) || !sp_xdr_read_i32(args, &ncpumaps, error) ||
        !sp_xdr_read_i32(args, &maplen, error) || !sp_xdr_read_u32(args, &flags, error) ||
        !sp_lv_args_end(args, error) || !maps_bounded(ncpumaps, maplen, error) ||
        !sp_lv_flags_check(flags, SP_LV_AFFECT_LIVE | SP_LV_AFFECT_CONFIG, error) ||
        !sp_lv_domain_get(s, uuid, &d, error) || !impact_live(&d, flags, &live, error))
        return false;
    g_autoptr(GArray) v = vcpus_get(s, &d, live, error);
    if (!v)
        return false;
    cpumaps_write(ret, v, (guint)ncpumaps, (guint)maplen);
    sp_xdr_write_i32(ret, (gint32)MIN(v->len, (guint)ncpumaps));
    return true;
}

/* {dom, unsigned flags} -> {int num}: vcpucount's four figures */
static bool proc_get_vcpus_flags(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    guint32 flags;
    bool live;
    g_auto(SpLvDomainInfo) d = {0};
    if (!sp_lv_dom_args(s, args, &flags, &d, error) ||
        !sp_lv_flags_check(
            flags, SP_LV_AFFECT_LIVE | SP_LV_AFFECT_CONFIG | SP_LV_VCPU_MAXIMUM | SP_LV_VCPU_GUEST,
            error) ||
        !impact_live(&d, flags, &live, error))
        return false;
    if (flags & SP_LV_VCPU_GUEST) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_OPERATION_UNSUPPORTED,
                    "Operation not supported: samepage guests have no guest agent");
        return false;
    }
    /* samepage cannot plug vCPUs: live and configured figures agree */
    sp_xdr_write_i32(ret, (flags & SP_LV_VCPU_MAXIMUM) ? vcpus_max(&d) : d.vcpus);
    return true;
}

static bool proc_get_max_vcpus(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    g_auto(SpLvDomainInfo) d = {0};
    if (!sp_lv_dom_args(s, args, NULL, &d, error))
        return false;
    sp_xdr_write_i32(ret, vcpus_max(&d));
    return true;
}

const SpLvProc sp_lv_procs_vcpu[] = {
    {SP_LV_PROC_DOMAIN_GET_VCPUS, "virDomainGetVcpus", false, false, proc_get_vcpus},
    {SP_LV_PROC_DOMAIN_GET_VCPU_PIN_INFO, "virDomainGetVcpuPinInfo", false, false,
     proc_get_vcpu_pin_info},
    {SP_LV_PROC_DOMAIN_GET_VCPUS_FLAGS, "virDomainGetVcpusFlags", false, false,
     proc_get_vcpus_flags},
    {SP_LV_PROC_DOMAIN_GET_MAX_VCPUS, "virDomainGetMaxVcpus", false, false, proc_get_max_vcpus},
};
const gsize sp_lv_procs_vcpu_len = G_N_ELEMENTS(sp_lv_procs_vcpu);
