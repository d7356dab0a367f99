/* SPDX-License-Identifier: MIT */
/*
 * backend.c - samepaged's SpLvBackendOps: domains from the registry
 * (domains.c), node figures from the host, sharing knobs and counters from
 * the memory engine (knobs.c).  Runs on the main thread only (see
 * vmm/libvirt/backend.h), like the registry itself.
 */
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <numa.h>

#include "vmm/daemon/backend.h"
#include "vmm/daemon/knobs.h"
#include "rmap/rmap.h"
#include "vmm/metrics/snapshot.h"

#define BE_ERROR(error, code, ...) g_set_error(error, SP_LV_ERROR, code, __VA_ARGS__)

static SpDomain *be_domain(SpDaemon *dm, const guint8 uuid[16], GError **error)
{
    SpDomain *d = sp_domains_find_uuid(dm->domains, uuid);
    if (!d) {
        char s[37];
        sp_domxml_uuid_format(uuid, s);
        BE_ERROR(error, SP_LV_ERR_NO_DOMAIN, "Domain not found: no domain with UUID %s", s);
    }
    return d;
}

static bool be_domain_list(void *opaque, GPtrArray *out, GError **error)
{
    SpDaemon *dm = opaque;
    for (guint i = 0; i < dm->domains->list->len; i++) {
        SpLvDomainInfo *info = g_new0(SpLvDomainInfo, 1);
        sp_domain_fill_info(dm->domains->list->pdata[i], info);
        g_ptr_array_add(out, info);
    }
    return true;
}

static bool be_domain_get(void *opaque, const guint8 uuid[16], SpLvDomainInfo *out, GError **error)
{
    SpDomain *d = be_domain(opaque, uuid, error);
    if (!d)
        return false;
    sp_domain_fill_info(d, out);
    return true;
}

static bool be_domain_get_xml(void *opaque, const guint8 uuid[16], guint32 flags, char **xml,
                              GError **error)
{
    SpDomain *d = be_domain(opaque, uuid, error);
    if (!d)
        return false;
    *xml = sp_domxml_format(d->def, d->id);
    return true;
}

static bool be_domain_define_xml(void *opaque, const char *xml, guint32 flags, SpLvDomainInfo *out,
                                 GError **error)
{
    SpDaemon *dm = opaque;
    SpDomain *d = sp_domains_define(dm->domains, xml, true, error);
    if (!d)
        return false;
    sp_domain_fill_info(d, out);
    return true;
}

static bool be_domain_undefine(void *opaque, const guint8 uuid[16], guint32 flags, GError **error)
{
    SpDaemon *dm = opaque;
    SpDomain *d = be_domain(dm, uuid, error);
    return d && sp_domains_undefine(dm->domains, d, error);
}

static bool be_domain_create_xml(void *opaque, const char *xml, guint32 flags, SpLvDomainInfo *out,
                                 GError **error)
{
    SpDaemon *dm = opaque;
    g_autoptr(GError) perr = NULL;
    g_autoptr(SpDomXml) probe = sp_domxml_parse(xml, &perr);
    if (probe && sp_domains_find_name(dm->domains, probe->name)) {
        BE_ERROR(error, SP_LV_ERR_DOM_EXIST, "domain '%s' already exists", probe->name);
        return false;
    }
    SpDomain *d = sp_domains_define(dm->domains, xml, false, error);
    if (!d)
        return false;
    if (!sp_domains_start(dm->domains, d, error)) {
        if (!d->vm)
            g_ptr_array_remove(dm->domains->list, d);
        return false;
    }
    sp_domain_fill_info(d, out);
    return true;
}

static bool be_domain_start(void *opaque, const guint8 uuid[16], guint32 flags, GError **error)
{
    SpDaemon *dm = opaque;
    SpDomain *d = be_domain(dm, uuid, error);
    return d && sp_domains_start(dm->domains, d, error);
}

static bool be_domain_destroy(void *opaque, const guint8 uuid[16], guint32 flags, GError **error)
{
    SpDaemon *dm = opaque;
    SpDomain *d = be_domain(dm, uuid, error);
    return d && sp_domains_destroy(dm->domains, d, error);
}

static bool be_domain_shutdown(void *opaque, const guint8 uuid[16], GError **error)
{
    /* Payloads have no ACPI: a graceful shutdown is the same as a stop. */
    return be_domain_destroy(opaque, uuid, 0, error);
}

static bool be_domain_memory_stats(void *opaque, const guint8 uuid[16], GArray *out, GError **error)
{
    SpDaemon *dm = opaque;
    SpDomain *d = be_domain(dm, uuid, error);
    if (!d)
        return false;
    guint64 max_kib = d->def->memory_kib;
    SpLvMemStat st[] = {
        {SP_LV_MEMSTAT_ACTUAL_BALLOON, max_kib},
        {SP_LV_MEMSTAT_RSS, 0},
        {SP_LV_MEMSTAT_USABLE, max_kib},
        {SP_LV_MEMSTAT_AVAILABLE, max_kib},
        {SP_LV_MEMSTAT_SWAP_IN, 0},
        {SP_LV_MEMSTAT_SWAP_OUT, 0},
    };
    if (d->vm) {
        SpKnobVmStats vs;
        sp_knobs_vm_stats(dm->knobs, d->vm, &vs);
        st[1].val = vs.rss_pages * 4;
        st[4].val = vs.swap_ins * 4;
        st[5].val = vs.swap_outs * 4;
    }
    g_array_append_vals(out, st, G_N_ELEMENTS(st));
    return true;
}

static bool be_domain_stats(void *opaque, const guint8 uuid[16], guint32 groups, SpLvParams *out,
                            GError **error)
{
    SpDaemon *dm = opaque;
    SpDomain *d = be_domain(dm, uuid, error);
    if (!d)
        return false;
    if (!d->vm)
        return true;
    /* samepage's own per-VM figures (vmm/metrics/figures.h), pages unless
     * the key says otherwise, and what the guest reported through the
     * control port (memload: verify rounds, pages verified, mismatches). */
    return sp_knobs_vm_params(dm->knobs, d->vm, groups & SP_LV_STATS_BALLOON, out, error);
}

static bool be_domain_block_stats(void *opaque, const guint8 uuid[16], const char *path,
                                  SpLvBlockStats *out, GError **error)
{
    SpDomain *d = be_domain(opaque, uuid, error);
    if (!d)
        return false;
    for (guint i = 0; d->def->disks && i < d->def->disks->len; i++) {
        SpDomXmlDevice *dev = d->def->disks->pdata[i];
        if (!g_strcmp0(dev->target, path) || !g_strcmp0(dev->source, path)) {
            /* samepage has no block devices yet: a defined disk reads as idle. */
            *out = (SpLvBlockStats){0, 0, 0, 0, 0};
            return true;
        }
    }
    BE_ERROR(error, SP_LV_ERR_INVALID_ARG, "invalid path: %s", path);
    return false;
}

static bool be_domain_interface_stats(void *opaque, const guint8 uuid[16], const char *device,
                                      SpLvInterfaceStats *out, GError **error)
{
    SpDomain *d = be_domain(opaque, uuid, error);
    if (!d)
        return false;
    for (guint i = 0; d->def->interfaces && i < d->def->interfaces->len; i++) {
        SpDomXmlDevice *dev = d->def->interfaces->pdata[i];
        if (!g_strcmp0(dev->target, device)) {
            *out = (SpLvInterfaceStats){0};
            return true;
        }
    }
    BE_ERROR(error, SP_LV_ERR_INVALID_ARG, "invalid interface: %s", device);
    return false;
}

static bool be_node_get_info(void *opaque, SpLvNodeInfo *out, GError **error)
{
    struct utsname u;
    memset(out, 0, sizeof(*out));
    uname(&u);
    g_strlcpy(out->model, u.machine, sizeof(out->model));
    out->memory_kib = (guint64)sysconf(_SC_PHYS_PAGES) * (sysconf(_SC_PAGESIZE) / 1024);
    out->cpus = (gint32)sysconf(_SC_NPROCESSORS_ONLN);
    out->nodes = numa_available() >= 0 ? numa_num_configured_nodes() : 1;
    out->sockets = 1;
    out->cores = out->cpus / MAX(out->nodes, 1);
    out->threads = 1;
    g_autofree char *cpuinfo = NULL;
    if (g_file_get_contents("/proc/cpuinfo", &cpuinfo, NULL, NULL)) {
        const char *m = strstr(cpuinfo, "cpu MHz");
        if (m && (m = strchr(m, ':')))
            out->mhz = (gint32)g_ascii_strtod(m + 1, NULL);
    }
    return true;
}

static bool be_node_memory_params_get(void *opaque, SpLvParams *out, GError **error)
{
    SpDaemon *dm = opaque;
    return sp_knobs_params_get(dm->knobs, out, error);
}

static bool be_node_memory_params_set(void *opaque, const SpLvParams *params, GError **error)
{
    SpDaemon *dm = opaque;
    return sp_knobs_params_set(dm->knobs, params, error);
}

static bool be_node_memory_stats(void *opaque, gint32 cell, SpLvNodeMemStats *out, GError **error)
{
    memset(out, 0, sizeof(*out));
    if (cell == -1) {
        g_autofree char *mi = NULL;
        if (!g_file_get_contents("/proc/meminfo", &mi, NULL, error))
            return false;
        const struct {
            const char *key;
            guint64 *dst;
        } f[] = {{"MemTotal:", &out->total_kib},
                 {"MemFree:", &out->free_kib},
                 {"Buffers:", &out->buffers_kib},
                 {"Cached:", &out->cached_kib}};
        for (size_t i = 0; i < G_N_ELEMENTS(f); i++) {
            const char *p = strstr(mi, f[i].key);
            if (p)
                *f[i].dst = g_ascii_strtoull(p + strlen(f[i].key), NULL, 10);
        }
        out->has_buffers_cached = true;
        return true;
    }
    int nodes = numa_available() >= 0 ? numa_max_node() + 1 : 1;
    if (cell < 0 || cell >= nodes) {
        BE_ERROR(error, SP_LV_ERR_INVALID_ARG, "invalid cell number %d (this host has %d)", cell,
                 nodes);
        return false;
    }
    long long free_b = 0;
    long long total_b = numa_available() >= 0 ? numa_node_size64(cell, &free_b) : 0;
    if (total_b <= 0) {
        struct sysinfo si;
        sysinfo(&si);
        total_b = (long long)si.totalram * si.mem_unit;
        free_b = (long long)si.freeram * si.mem_unit;
    }
    out->total_kib = (guint64)total_b / 1024;
    out->free_kib = (guint64)free_b / 1024;
    return true;
}

static bool be_domain_clone(void *opaque, const char *name, guint32 count, const char *const *names,
                            guint32 n_names, GPtrArray *children, GError **error)
{
    SpDaemon *dm = opaque;
    SpDomain *d = sp_domains_find_name(dm->domains, name);
    if (!d) {
        BE_ERROR(error, SP_LV_ERR_NO_DOMAIN, "Domain not found: no domain with matching name '%s'",
                 name);
        return false;
    }
    return sp_domains_clone(dm->domains, d, count, names, n_names, children, error);
}

/* One typed-parameter list per clone group of the process (rmap/rmap.h),
 * its figures named as vmm/metrics/figures.h says. */
static bool be_clone_groups(void *opaque, GPtrArray *groups, GError **error)
{
    g_autoptr(SpFigSnapshot) snap = sp_fig_snapshot_new();
    g_autofree SpCloneGroupStats *gs = NULL;
    uint32_t n = sp_rmap_group_stats(&gs);
    for (uint32_t i = 0; i < n; i++) {
        sp_fig_snapshot_add_group(snap, &gs[i]);
        SpLvParams *p = sp_lv_params_new();
        g_ptr_array_add(groups, p);
        if (!sp_knobs_add_figures(p, SP_FIG_GROUP, snap->groups->pdata[i], error))
            return false;
    }
    return true;
}

const SpLvBackendOps sp_daemon_backend_ops = {
    .domain_list = be_domain_list,
    .domain_get = be_domain_get,
    .domain_get_xml = be_domain_get_xml,
    .domain_define_xml = be_domain_define_xml,
    .domain_undefine = be_domain_undefine,
    .domain_create_xml = be_domain_create_xml,
    .domain_start = be_domain_start,
    .domain_destroy = be_domain_destroy,
    .domain_shutdown = be_domain_shutdown,
    .domain_memory_stats = be_domain_memory_stats,
    .domain_stats = be_domain_stats,
    .domain_block_stats = be_domain_block_stats,
    .domain_interface_stats = be_domain_interface_stats,
    .node_get_info = be_node_get_info,
    .node_memory_params_get = be_node_memory_params_get,
    .node_memory_params_set = be_node_memory_params_set,
    .node_memory_stats = be_node_memory_stats,
    .domain_clone = be_domain_clone,
    .clone_groups = be_clone_groups,
};
