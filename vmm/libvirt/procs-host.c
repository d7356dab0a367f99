/* SPDX-License-Identifier: MIT */
/*
 * procs-host.c - what management tools ask about the host before they
 * define anything: capabilities, domcapabilities (the XML of
 * capabilities.c), maxvcpus (CONNECT_GET_MAX_VCPUS), nodecpustats
 * (NODE_GET_CPU_STATS) and the host's CPU map (NODE_GET_CPU_MAP, which
 * virsh vcpuinfo asks for to size its affinity maps).
 *
 * domcapabilities is refused on read-only connections, as libvirt does
 * (virConnectGetDomainCapabilities requires write access); the others are
 * queries.  All answer from the backend's host_caps / node_cpu_stats.
 */
#include <string.h>

#include "vmm/libvirt/capabilities.h"
#include "vmm/libvirt/procs.h"

static bool host_caps(SpLvSession *s, SpLvHostCaps *c, const char *api, GError **error)
{
    *c = (SpLvHostCaps){0};
    if (!s->backend->ops->host_caps)
        return sp_lv_unsupported(api, error);
    if (s->backend->ops->host_caps(s->backend->opaque, c, error))
        return true;
    sp_lv_host_caps_clear(c);
    return false;
}

static bool proc_get_capabilities(SpLvSession *s, SpXdrReader *args, GByteArray *ret,
                                  GError **error)
{
    SpLvHostCaps c;
    if (!sp_lv_args_end(args, error) || !host_caps(s, &c, "virConnectGetCapabilities", error))
        return false;
    g_autofree char *xml = sp_lv_capabilities_xml(&c);
    sp_lv_host_caps_clear(&c);
    sp_xdr_write_string(ret, xml);
    return true;
}

static bool type_ours(const char *type)
{
    return !type || !g_ascii_strcasecmp(type, "samepage") || !g_ascii_strcasecmp(type, "kvm");
}

/* {string? emulatorbin, arch, machine, virttype; unsigned flags} -> {string} */
static bool proc_get_domain_capabilities(SpLvSession *s, SpXdrReader *args, GByteArray *ret,
                                         GError **error)
{
    g_autofree char *emulator = NULL, *arch = NULL, *machine = NULL, *virttype = NULL;
    guint32 flags;
    SpLvHostCaps c;
    if (!sp_xdr_read_opt_string(args, &emulator, SP_LV_STRING_MAX, error) ||
        !sp_xdr_read_opt_string(args, &arch, SP_LV_STRING_MAX, error) ||
        !sp_xdr_read_opt_string(args, &machine, SP_LV_STRING_MAX, error) ||
        !sp_xdr_read_opt_string(args, &virttype, SP_LV_STRING_MAX, error) ||
        !sp_xdr_read_u32(args, &flags, error) || !sp_lv_args_end(args, error) ||
        !sp_lv_flags_check(flags, 0, error) ||
        !host_caps(s, &c, "virConnectGetDomainCapabilities", error))
        return false;
    const char *what = NULL, *value = NULL;
    if (!type_ours(virttype))
        what = "virttype", value = virttype;
    else if (arch && c.arch && strcmp(arch, c.arch) != 0)
        what = "arch", value = arch;
    else if (emulator && c.emulator && strcmp(emulator, c.emulator) != 0)
        what = "emulator", value = emulator;
    if (what) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG,
                    "invalid argument: samepage runs %s guests of domain type samepage (or kvm) "
                    "with %s, not %s '%s'",
                    c.arch ? c.arch : "x86_64", c.emulator ? c.emulator : "samepage-vm", what,
                    value);
        sp_lv_host_caps_clear(&c);
        return false;
    }
    g_autofree char *xml = sp_lv_domcapabilities_xml(&c, virttype);
    sp_lv_host_caps_clear(&c);
    sp_xdr_write_string(ret, xml);
    return true;
}

/* {string? type} -> {int max_vcpus} */
static bool proc_get_max_vcpus(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    g_autofree char *type = NULL;
    SpLvHostCaps c;
    if (!sp_xdr_read_opt_string(args, &type, SP_LV_STRING_MAX, error) ||
        !sp_lv_args_end(args, error))
        return false;
    if (!type_ours(type)) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG,
                    "invalid argument: unknown type '%s' (samepage, kvm)", type);
        return false;
    }
    if (!host_caps(s, &c, "virConnectGetMaxVcpus", error))
        return false;
    sp_xdr_write_i32(ret, (gint32)c.max_vcpus);
    sp_lv_host_caps_clear(&c);
    return true;
}

/* {int cpuNum, int nparams, unsigned flags} -> {stats params<>, int nparams} */
static bool proc_node_get_cpu_stats(SpLvSession *s, SpXdrReader *args, GByteArray *ret,
                                    GError **error)
{
    gint32 cpu, nparams;
    guint32 flags;
    if (!sp_xdr_read_i32(args, &cpu, error) || !sp_xdr_read_i32(args, &nparams, error) ||
        !sp_xdr_read_u32(args, &flags, error) || !sp_lv_args_end(args, error) ||
        !sp_lv_node_stats_bounded(nparams, error) || !sp_lv_flags_check(flags, 0, error))
        return false;
    if (cpu < SP_LV_NODE_CPU_STATS_ALL_CPUS) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG, "invalid argument: cpu number %d",
                    cpu);
        return false;
    }
    if (!s->backend->ops->node_cpu_stats)
        return sp_lv_unsupported("virNodeGetCPUStats", error);
    SpLvNodeCpuStats st = {0};
    if (!s->backend->ops->node_cpu_stats(s->backend->opaque, cpu, &st, error))
        return false;
    const SpLvNodeStat f[] = {{"kernel", st.kernel_ns},
                              {"user", st.user_ns},
                              {"idle", st.idle_ns},
                              {"iowait", st.iowait_ns}};
    sp_lv_node_stats_write(ret, nparams, f, G_N_ELEMENTS(f));
    return true;
}

/* {int need_map, int need_online, unsigned flags} -> {opaque cpumap<>,
 * unsigned online, int ret}: ret = CPUs the host can have (highest id + 1),
 * the map and online count of those it has. */
static bool proc_node_get_cpu_map(SpLvSession *s, SpXdrReader *args, GByteArray *ret,
                                  GError **error)
{
    gint32 need_map, need_online;
    guint32 flags;
    SpLvHostCaps c;
    if (!sp_xdr_read_i32(args, &need_map, error) || !sp_xdr_read_i32(args, &need_online, error) ||
        !sp_xdr_read_u32(args, &flags, error) || !sp_lv_args_end(args, error) ||
        !sp_lv_flags_check(flags, 0, error) || !host_caps(s, &c, "virNodeGetCPUMap", error))
        return false;
    guint8 map[SP_LV_CPUMAP_BYTES] = {0};
    guint top = 0, online = 0;
    for (guint i = 0; c.cells && i < c.cells->len; i++) {
        const SpLvCell *cell = c.cells->pdata[i];
        for (guint k = 0; cell->cpus && k < cell->cpus->len; k++) {
            guint id = g_array_index(cell->cpus, guint, k);
            if (id >= SP_LV_CPUMAP_BYTES * 8)
                continue;
            map[id / 8] |= 1u << (id % 8);
            top = MAX(top, id + 1);
            online++;
        }
    }
    sp_lv_host_caps_clear(&c);
    sp_xdr_write_opaque(ret, map, need_map ? (top + 7) / 8 : 0);
    sp_xdr_write_u32(ret, need_online ? online : 0);
    sp_xdr_write_i32(ret, (gint32)top);
    return true;
}

const SpLvProc sp_lv_procs_host[] = {
    {SP_LV_PROC_CONNECT_GET_CAPABILITIES, "virConnectGetCapabilities", false, false,
     proc_get_capabilities},
    {SP_LV_PROC_CONNECT_GET_DOMAIN_CAPABILITIES, "virConnectGetDomainCapabilities", true, false,
     proc_get_domain_capabilities},
    {SP_LV_PROC_CONNECT_GET_MAX_VCPUS, "virConnectGetMaxVcpus", false, false, proc_get_max_vcpus},
    {SP_LV_PROC_NODE_GET_CPU_STATS, "virNodeGetCPUStats", false, false, proc_node_get_cpu_stats},
    {SP_LV_PROC_NODE_GET_CPU_MAP, "virNodeGetCPUMap", false, false, proc_node_get_cpu_map},
};
const gsize sp_lv_procs_host_len = G_N_ELEMENTS(sp_lv_procs_host);
