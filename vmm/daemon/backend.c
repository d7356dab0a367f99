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

/* The domain with this UUID (a reference), or NO_DOMAIN. */
static SpDomain *be_domain(SpDaemon *dm, const guint8 uuid[16], GError **error)
{
    SpDomain *d = sp_domains_get_uuid(dm->domains, uuid);
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
    sp_domains_list_info(dm->domains, out);
    return true;
}

static bool be_domain_get(void *opaque, const guint8 uuid[16], SpLvDomainInfo *out, GError **error)
{
    g_autoptr(SpDomain) d = be_domain(opaque, uuid, error);
    if (!d)
        return false;
    sp_domain_fill_info(d, out);
    return true;
}

static bool be_domain_get_xml(void *opaque, const guint8 uuid[16], guint32 flags, char **xml,
                              GError **error)
{
    g_autoptr(SpDomain) d = be_domain(opaque, uuid, error);
    if (!d)
        return false;
    *xml = sp_domain_xml(d);
    return true;
}

/* A domain a registry call returned (a reference): its info, or false. */
static bool be_made(SpDomain *d, SpLvDomainInfo *out)
{
    if (!d)
        return false;
    sp_domain_fill_info(d, out);
    sp_domain_unref(d);
    return true;
}

static bool be_domain_define_xml(void *opaque, const char *xml, guint32 flags, SpLvDomainInfo *out,
                                 GError **error)
{
    SpDaemon *dm = opaque;
    return be_made(sp_domains_define(dm->domains, xml, true, error), out);
}

static bool be_domain_create_xml(void *opaque, const char *xml, guint32 flags, SpLvDomainInfo *out,
                                 GError **error)
{
    SpDaemon *dm = opaque;
    return be_made(sp_domains_create(dm->domains, xml, error), out);
}

typedef bool (*DomainsOp)(SpDomains *ds, SpDomain *d, GError **error);

/* Looks the domain up and runs a registry operation on it. */
static bool be_op(void *opaque, const guint8 uuid[16], DomainsOp op, GError **error)
{
    SpDaemon *dm = opaque;
    g_autoptr(SpDomain) d = be_domain(dm, uuid, error);
    return d && op(dm->domains, d, error);
}

static bool be_domain_undefine(void *opaque, const guint8 uuid[16], guint32 flags, GError **error)
{
    return be_op(opaque, uuid, sp_domains_undefine, error);
}

static bool be_domain_start(void *opaque, const guint8 uuid[16], guint32 flags, GError **error)
{
    return be_op(opaque, uuid, sp_domains_start, error);
}

static bool be_domain_destroy(void *opaque, const guint8 uuid[16], guint32 flags, GError **error)
{
    return be_op(opaque, uuid, sp_domains_destroy, error);
}

static bool be_domain_shutdown(void *opaque, const guint8 uuid[16], GError **error)
{
    return be_op(opaque, uuid, sp_domains_shutdown, error);
}

static bool be_domain_suspend(void *opaque, const guint8 uuid[16], GError **error)
{
    return be_op(opaque, uuid, sp_domains_suspend, error);
}

static bool be_domain_resume(void *opaque, const guint8 uuid[16], GError **error)
{
    return be_op(opaque, uuid, sp_domains_resume, error);
}

static bool be_domain_reboot(void *opaque, const guint8 uuid[16], GError **error)
{
    return be_op(opaque, uuid, sp_domains_reboot, error);
}

static bool be_domain_set_autostart(void *opaque, const guint8 uuid[16], bool on, GError **error)
{
    SpDaemon *dm = opaque;
    g_autoptr(SpDomain) d = be_domain(dm, uuid, error);
    return d && sp_domains_set_autostart(dm->domains, d, on, error);
}

static bool be_domain_mem_limit_get(void *opaque, const guint8 uuid[16], guint32 flags,
                                    guint64 *kib, GError **error)
{
    SpDaemon *dm = opaque;
    g_autoptr(SpDomain) d = be_domain(dm, uuid, error);
    return d && sp_domains_get_mem_limit(dm->domains, d, flags, kib, error);
}

static bool be_domain_numa_get(void *opaque, const guint8 uuid[16], guint32 flags, char **mode,
                               char **nodeset, GError **error)
{
    SpDaemon *dm = opaque;
    g_autoptr(SpDomain) d = be_domain(dm, uuid, error);
    if (!d)
        return false;
    sp_domains_get_numa(dm->domains, d, flags, mode, nodeset);
    return true;
}

static bool be_domain_numa_set(void *opaque, const guint8 uuid[16], guint32 flags, const char *mode,
                               const char *nodeset, GError **error)
{
    SpDaemon *dm = opaque;
    g_autoptr(SpDomain) d = be_domain(dm, uuid, error);
    return d && sp_domains_set_numa(dm->domains, d, flags, mode, nodeset, error);
}

static bool be_domain_mem_limit_set(void *opaque, const guint8 uuid[16], guint32 flags, guint64 kib,
                                    GError **error)
{
    SpDaemon *dm = opaque;
    g_autoptr(SpDomain) d = be_domain(dm, uuid, error);
    return d && sp_domains_set_mem_limit(dm->domains, d, flags, kib, error);
}

static bool be_domain_memory_stats(void *opaque, const guint8 uuid[16], GArray *out, GError **error)
{
    SpDaemon *dm = opaque;
    g_autoptr(SpDomain) d = be_domain(dm, uuid, error);
    if (!d)
        return false;
    g_auto(SpLvDomainInfo) info = {0};
    sp_domain_fill_info(d, &info);
    guint64 max_kib = info.max_mem_kib;
    SpLvMemStat st[] = {
        {SP_LV_MEMSTAT_ACTUAL_BALLOON, max_kib},
        {SP_LV_MEMSTAT_RSS, 0},
        {SP_LV_MEMSTAT_USABLE, max_kib},
        {SP_LV_MEMSTAT_AVAILABLE, max_kib},
        {SP_LV_MEMSTAT_SWAP_IN, 0},
        {SP_LV_MEMSTAT_SWAP_OUT, 0},
    };
    SpVm *vm = sp_domain_vm_use(d);
    if (vm) {
        SpKnobVmStats vs;
        sp_knobs_vm_stats(dm->knobs, vm, &vs);
        sp_domain_vm_done(d);
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
    g_autoptr(SpDomain) d = be_domain(dm, uuid, error);
    if (!d)
        return false;
    SpVm *vm = sp_domain_vm_use(d);
    if (!vm)
        return true;
    /* samepage's own per-VM figures (vmm/metrics/figures.h), pages unless
     * the key says otherwise, and what the guest reported through the
     * control port (memload: verify rounds, pages verified, mismatches). */
    bool ok = sp_knobs_vm_params(dm->knobs, vm, groups & SP_LV_STATS_BALLOON, out, error);
    /* resident guest pages per host node, from the kernel (docs/numa.md);
     * a VM process that cannot answer costs these keys, not the call */
    g_autoptr(GArray) numa = g_array_new(FALSE, TRUE, sizeof(guint64));
    if (ok && (groups & SP_LV_STATS_BALLOON) && sp_vm_numa_pages(vm, numa, NULL)) {
        guint nodes = numa_available() >= 0 ? (guint)numa_max_node() + 1 : 1;
        if (numa->len < nodes)
            g_array_set_size(numa, nodes);
        for (guint n = 0; ok && n < numa->len; n++) {
            g_autofree char *key = g_strdup_printf("samepage.numa.node%u.pages", n);
            ok = sp_lv_params_add_ullong(out, key, g_array_index(numa, guint64, n), error);
        }
        ok = ok && sp_lv_params_add_ullong(out, "samepage.numa.pages_migrated",
                                           sp_vm_numa_migrated(vm), error);
    }
    sp_domain_vm_done(d);
    return ok;
}

/* The domain has this disk (or interface) target: its stats are all zero,
 * samepage gives guests no block or network devices yet. */
static bool be_device(void *opaque, const guint8 uuid[16], bool disk, const char *name,
                      GError **error)
{
    g_autoptr(SpDomain) d = be_domain(opaque, uuid, error);
    if (!d)
        return false;
    if (sp_domain_has_device(d, disk, name))
        return true;
    BE_ERROR(error, SP_LV_ERR_INVALID_ARG, "invalid %s: %s", disk ? "path" : "interface", name);
    return false;
}

static bool be_domain_block_stats(void *opaque, const guint8 uuid[16], const char *path,
                                  SpLvBlockStats *out, GError **error)
{
    *out = (SpLvBlockStats){0, 0, 0, 0, 0};
    return be_device(opaque, uuid, true, path, error);
}

static bool be_domain_interface_stats(void *opaque, const guint8 uuid[16], const char *device,
                                      SpLvInterfaceStats *out, GError **error)
{
    *out = (SpLvInterfaceStats){0};
    return be_device(opaque, uuid, false, device, error);
}

static void cpumap_from_set(guint8 map[SP_LV_CPUMAP_BYTES], const cpu_set_t *set)
{
    memset(map, 0, SP_LV_CPUMAP_BYTES);
    for (guint i = 0; i < SP_LV_CPUMAP_BYTES * 8 && i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, set))
            map[i / 8] |= 1u << (i % 8);
}

/* Live: the VM's vCPU threads; else the definition's vCPUs and cpuset. */
static bool be_domain_vcpus(void *opaque, const guint8 uuid[16], bool live, GArray *out,
                            GError **error)
{
    SpDaemon *dm = opaque;
    g_autoptr(SpDomain) d = be_domain(dm, uuid, error);
    if (!d)
        return false;
    if (!live) {
        cpu_set_t set;
        guint32 n = sp_domain_configured_cpus(d, &set);
        for (guint32 i = 0; i < n; i++) {
            SpLvVcpuInfo v = {.number = i, .state = SP_LV_VCPU_OFFLINE, .cpu = -1};
            cpumap_from_set(v.cpumap, &set);
            g_array_append_val(out, v);
        }
        return true;
    }
    SpVm *vm = sp_domain_vm_use(d);
    if (!vm) {
        BE_ERROR(error, SP_LV_ERR_OPERATION_INVALID,
                 "Requested operation is not valid: domain is not running");
        return false;
    }
    g_autoptr(GArray) vcpus = g_array_new(FALSE, FALSE, sizeof(SpVmVcpu));
    bool ok = sp_vm_vcpus(vm, vcpus, error);
    sp_domain_vm_done(d);
    for (guint i = 0; ok && i < vcpus->len; i++) {
        const SpVmVcpu *t = &g_array_index(vcpus, SpVmVcpu, i);
        SpLvVcpuInfo v = {.number = t->index,
                          .state = SP_LV_VCPU_RUNNING,
                          .cpu_time_ns = t->cpu_ns,
                          .cpu = t->cpu};
        cpumap_from_set(v.cpumap, &t->affinity);
        g_array_append_val(out, v);
    }
    return ok;
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
    g_autoptr(SpDomain) d = sp_domains_get_name(dm->domains, name);
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
    .domain_suspend = be_domain_suspend,
    .domain_resume = be_domain_resume,
    .domain_reboot = be_domain_reboot,
    .domain_set_autostart = be_domain_set_autostart,
    .domain_mem_limit_get = be_domain_mem_limit_get,
    .domain_mem_limit_set = be_domain_mem_limit_set,
    .domain_numa_get = be_domain_numa_get,
    .domain_numa_set = be_domain_numa_set,
    .domain_vcpus = be_domain_vcpus,
    .domain_memory_stats = be_domain_memory_stats,
    .domain_stats = be_domain_stats,
    .domain_block_stats = be_domain_block_stats,
    .domain_interface_stats = be_domain_interface_stats,
    .node_get_info = be_node_get_info,
    .host_caps = sp_daemon_host_caps,
    .node_cpu_stats = sp_daemon_node_cpu_stats,
    .node_memory_params_get = be_node_memory_params_get,
    .node_memory_params_set = be_node_memory_params_set,
    .node_memory_stats = be_node_memory_stats,
    .domain_clone = be_domain_clone,
    .clone_groups = be_clone_groups,
};
