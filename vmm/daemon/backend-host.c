/* SPDX-License-Identifier: MIT */
/*
 * backend-host.c - the host as samepaged describes it to libvirt clients:
 * capabilities and domcapabilities (SpLvHostCaps: arch, CPU vendor and
 * topology, NUMA cells from libnuma, the most vCPUs KVM gives one guest,
 * the VM process program) and nodecpustats (/proc/stat, as libvirt's Linux
 * driver reads it: user = user + nice, kernel = system + irq + softirq,
 * idle, iowait, in nanoseconds).  Reads the system each time; no state.
 */
#include <numa.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "vmm/daemon/backend.h"

static char *cpu_vendor(void)
{
    g_autofree char *cpuinfo = NULL;
    if (!g_file_get_contents("/proc/cpuinfo", &cpuinfo, NULL, NULL))
        return NULL;
    if (strstr(cpuinfo, "GenuineIntel"))
        return g_strdup("Intel");
    if (strstr(cpuinfo, "AuthenticAMD"))
        return g_strdup("AMD");
    return NULL;
}

/* The DMI system UUID (root only), else the machine id as a UUID. */
static char *host_uuid(void)
{
    g_autofree char *text = NULL;
    if (g_file_get_contents("/sys/class/dmi/id/product_uuid", &text, NULL, NULL))
        return g_strdup(g_strstrip(text));
    if (!g_file_get_contents("/etc/machine-id", &text, NULL, NULL))
        return NULL;
    guint8 u[16];
    char s[37];
    if (!sp_domxml_uuid_parse(g_strstrip(text), u))
        return NULL;
    sp_domxml_uuid_format(u, s);
    return g_strdup(s);
}

static SpLvCell *cell_new(gint32 id, guint64 memory_kib)
{
    SpLvCell *c = g_new0(SpLvCell, 1);
    c->id = id;
    c->memory_kib = memory_kib;
    c->cpus = g_array_new(FALSE, FALSE, sizeof(guint));
    return c;
}

/* One cell per NUMA node with memory or CPUs; one cell for a host without
 * libnuma. */
static void host_cells(GPtrArray *cells)
{
    long ncpus = sysconf(_SC_NPROCESSORS_CONF);
    if (numa_available() < 0) {
        SpLvCell *c =
            cell_new(0, (guint64)sysconf(_SC_PHYS_PAGES) * (sysconf(_SC_PAGESIZE) / 1024));
        cpu_set_t online;
        CPU_ZERO(&online);
        sched_getaffinity(0, sizeof(online), &online);
        for (guint i = 0; i < (guint)ncpus && i < CPU_SETSIZE; i++)
            if (CPU_ISSET(i, &online))
                g_array_append_val(c->cpus, i);
        g_ptr_array_add(cells, c);
        return;
    }
    struct bitmask *mask = numa_allocate_cpumask();
    for (int node = 0; node <= numa_max_node(); node++) {
        long long size = numa_node_size64(node, NULL);
        if (size < 0 || numa_node_to_cpus(node, mask) < 0)
            continue;
        SpLvCell *c = cell_new(node, (guint64)size / 1024);
        for (guint i = 0; i < mask->size && i < (guint)ncpus; i++)
            if (numa_bitmask_isbitset(mask, i))
                g_array_append_val(c->cpus, i);
        g_ptr_array_add(cells, c);
    }
    numa_free_cpumask(mask);
}

bool sp_daemon_host_caps(void *opaque, SpLvHostCaps *out, GError **error)
{
    SpDaemon *dm = opaque;
    SpVmHost *host = dm->domains->host;
    struct utsname u;
    uname(&u);
    *out = (SpLvHostCaps){
        .arch = g_strdup(u.machine),
        .cpu_vendor = cpu_vendor(),
        .host_uuid = host_uuid(),
        .max_vcpus = (guint32)host->max_vcpus,
        .emulator = g_strdup(host->vm_binary),
        .cells = g_ptr_array_new(),
    };
    host_cells(out->cells);
    guint ncpus = 0;
    for (guint i = 0; i < out->cells->len; i++)
        ncpus += ((SpLvCell *)out->cells->pdata[i])->cpus->len;
    /* as nodeinfo says it: one socket per cell, one thread per core */
    out->sockets = 1;
    out->cores = MAX(ncpus / MAX(out->cells->len, 1), 1);
    out->threads = 1;
    return true;
}

bool sp_daemon_node_cpu_stats(void *opaque, gint32 cpu, SpLvNodeCpuStats *out, GError **error)
{
    g_autofree char *stat = NULL;
    if (!g_file_get_contents("/proc/stat", &stat, NULL, error))
        return false;
    g_autofree char *want = cpu < 0 ? g_strdup("cpu ") : g_strdup_printf("cpu%d ", cpu);
    const char *line = g_str_has_prefix(stat, want) ? stat : NULL;
    if (!line) {
        g_autofree char *nl_want = g_strconcat("\n", want, NULL);
        line = strstr(stat, nl_want);
        line = line ? line + 1 : NULL;
    }
    if (!line) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG,
                    "invalid argument: no CPU %d on this host", cpu);
        return false;
    }
    guint64 t[7] = {0}; /* user nice system idle iowait irq softirq */
    const char *p = line + strlen(want);
    for (int i = 0; i < 7; i++) {
        char *end;
        t[i] = g_ascii_strtoull(p, &end, 10);
        p = end;
    }
    guint64 ns = 1000000000ull / (guint64)sysconf(_SC_CLK_TCK);
    *out = (SpLvNodeCpuStats){.user_ns = (t[0] + t[1]) * ns,
                              .kernel_ns = (t[2] + t[5] + t[6]) * ns,
                              .idle_ns = t[3] * ns,
                              .iowait_ns = t[4] * ns};
    return true;
}
