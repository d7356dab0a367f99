/* SPDX-License-Identifier: MIT */
/*
 * backend.h - the interface between the libvirt endpoint (vmm/libvirt/) and
 * whatever owns the VMs (samepaged, or the test backend of tests/libvirt/).
 *
 * The endpoint decodes calls, checks access (read-only connections never
 * reach a mutating callback) and encodes replies; the backend only answers
 * questions about domains and the node.  A backend is a table of callbacks
 * (SpLvBackendOps) plus an opaque pointer handed back to every callback.
 *
 * Errors: a callback that fails returns false and sets a GError in the
 * SP_LV_ERROR domain whose code is a libvirt virErrorNumber (SP_LV_ERR_* in
 * protocol.h: NO_DOMAIN 42, OPERATION_INVALID 55, INVALID_ARG 8, XML_ERROR
 * 27, DOM_EXIST 28, ...).  The message is shown verbatim by virsh
 * ("error: <message>").  An error in another domain is reported as
 * SP_LV_ERR_INTERNAL_ERROR with its message.
 *
 * Threading: with a server configured with workers (SpLvServerConfig
 * job_workers / query_workers, what samepaged does), callbacks run on
 * worker threads, several at a time, for one connection or many: the
 * backend must be thread-safe and may block (a clone takes seconds) without
 * holding up other clients.  Without workers (the test server, the fuzz
 * target), every callback runs on the protocol thread, one at a time, and
 * should not block.
 *
 * Domains are identified by UUID in every call after lookup (names can be
 * reused after undefine; a UUID cannot be mistaken).  Optional callbacks may
 * be NULL: the endpoint then answers "unsupported" (or a neutral value where
 * noted).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "vmm/libvirt/protocol.h"
#include "vmm/libvirt/typed-params.h"

#define SP_LV_ERROR (sp_lv_error_quark())
GQuark sp_lv_error_quark(void);

/* virDomainState */
typedef enum {
    SP_LV_DOMAIN_NOSTATE = 0,
    SP_LV_DOMAIN_RUNNING = 1,
    SP_LV_DOMAIN_BLOCKED = 2,
    SP_LV_DOMAIN_PAUSED = 3,
    SP_LV_DOMAIN_SHUTDOWN = 4,
    SP_LV_DOMAIN_SHUTOFF = 5,
    SP_LV_DOMAIN_CRASHED = 6,
    SP_LV_DOMAIN_PMSUSPENDED = 7,
} SpLvDomainState;

/* virsh's words for a virDomainState ("running", "shut off", ...). */
const char *sp_lv_state_name(gint32 state);

/* One domain as the endpoint sees it. */
typedef struct {
    char *name;            /* unique among defined domains, owned */
    guint8 uuid[16];       /* identity */
    gint32 id;             /* >= 1 while running, -1 when inactive */
    SpLvDomainState state; /* virDomainState */
    gint32 reason;         /* virDomain<State>Reason, 0 = unknown */
    guint64 max_mem_kib;   /* <memory> */
    guint64 cur_mem_kib;   /* <currentMemory> (balloon target) */
    guint32 vcpus;         /* vCPUs that run (<vcpu current>, else <vcpu>) */
    guint32 vcpus_max;     /* <vcpu>: the most it may have (0: same as vcpus) */
    guint64 cpu_time_ns;   /* CPU time used by all vCPUs */
    bool persistent;       /* defined (survives destroy), not transient */
    bool autostart;        /* started when samepaged starts */
} SpLvDomainInfo;

void sp_lv_domain_info_clear(SpLvDomainInfo *d);
void sp_lv_domain_info_free(SpLvDomainInfo *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpLvDomainInfo, sp_lv_domain_info_free)
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(SpLvDomainInfo, sp_lv_domain_info_clear)

/* virDomainMemoryStatTags; values in KiB except faults and last_update. */
typedef enum {
    SP_LV_MEMSTAT_SWAP_IN = 0,
    SP_LV_MEMSTAT_SWAP_OUT = 1,
    SP_LV_MEMSTAT_MAJOR_FAULT = 2,
    SP_LV_MEMSTAT_MINOR_FAULT = 3,
    SP_LV_MEMSTAT_UNUSED = 4,
    SP_LV_MEMSTAT_AVAILABLE = 5,
    SP_LV_MEMSTAT_ACTUAL_BALLOON = 6,
    SP_LV_MEMSTAT_RSS = 7,
    SP_LV_MEMSTAT_USABLE = 8,
    SP_LV_MEMSTAT_LAST_UPDATE = 9,
    SP_LV_MEMSTAT_DISK_CACHES = 10,
    SP_LV_MEMSTAT_HUGETLB_PGALLOC = 11,
    SP_LV_MEMSTAT_HUGETLB_PGFAIL = 12,
} SpLvMemStatTag;

typedef struct {
    SpLvMemStatTag tag; /* which figure */
    guint64 val;        /* its value */
} SpLvMemStat;

/* virNodeInfo */
typedef struct {
    char model[32];     /* CPU architecture, e.g. "x86_64" (NUL-padded) */
    guint64 memory_kib; /* host memory */
    gint32 cpus, mhz, nodes, sockets, cores, threads;
} SpLvNodeInfo;

/* One NUMA cell's memory (or all cells), KiB.  buffers/cached are sent only
 * when has_buffers_cached (libvirt sends them for the all-cells query). */
typedef struct {
    guint64 total_kib, free_kib, buffers_kib, cached_kib;
    bool has_buffers_cached;
} SpLvNodeMemStats;

/* One vCPU: virVcpuInfo, and the host CPUs it may run on. */
#define SP_LV_CPUMAP_BYTES 128 /* 1024 host CPUs */
typedef struct {
    guint32 number;                    /* vCPU number */
    gint32 state;                      /* SP_LV_VCPU_OFFLINE / RUNNING / BLOCKED */
    guint64 cpu_time_ns;               /* CPU time it used */
    gint32 cpu;                        /* host CPU it runs on, -1 if none */
    guint8 cpumap[SP_LV_CPUMAP_BYTES]; /* affinity: bit n = host CPU n */
} SpLvVcpuInfo;

/* The host, for capabilities and domcapabilities (capabilities.c). */
typedef struct {
    gint32 id;          /* NUMA node */
    guint64 memory_kib; /* its memory */
    GArray *cpus;       /* guint: its CPUs */
} SpLvCell;
typedef struct {
    char *arch;                   /* "x86_64" */
    char *cpu_vendor, *cpu_model; /* from the host, or NULL */
    char *host_uuid;              /* or NULL */
    guint32 sockets, cores, threads;
    guint32 max_vcpus; /* most vCPUs one guest may have */
    char *emulator;    /* the program that runs one VM */
    GPtrArray *cells;  /* SpLvCell *, by id */
} SpLvHostCaps;
void sp_lv_host_caps_clear(SpLvHostCaps *c);

/* virNodeGetCPUStats figures, nanoseconds (one CPU, or all). */
typedef struct {
    guint64 kernel_ns, user_ns, idle_ns, iowait_ns;
} SpLvNodeCpuStats;

/* virDomainBlockStatsStruct / virDomainInterfaceStatsStruct (-1 = unknown) */
typedef struct {
    gint64 rd_req, rd_bytes, wr_req, wr_bytes, errs;
} SpLvBlockStats;
typedef struct {
    gint64 rx_bytes, rx_packets, rx_errs, rx_drop, tx_bytes, tx_packets, tx_errs, tx_drop;
} SpLvInterfaceStats;

/* Group bits of CONNECT_GET_ALL_DOMAIN_STATS (virDomainStatsTypes). */
enum {
    SP_LV_STATS_STATE = 1u << 0,
    SP_LV_STATS_CPU_TOTAL = 1u << 1,
    SP_LV_STATS_BALLOON = 1u << 2,
    SP_LV_STATS_VCPU = 1u << 3,
    SP_LV_STATS_INTERFACE = 1u << 4,
    SP_LV_STATS_BLOCK = 1u << 5,
    SP_LV_STATS_PERF = 1u << 6,
    SP_LV_STATS_IOTHREAD = 1u << 7,
    SP_LV_STATS_MEMORY = 1u << 8,
    SP_LV_STATS_DIRTYRATE = 1u << 9,
    SP_LV_STATS_VM = 1u << 10,
};

typedef struct {
    /* --- domains (required) --- */
    /* Appends every defined or running domain (SpLvDomainInfo *, owned by
     * the array, which has sp_lv_domain_info_free as free func). */
    bool (*domain_list)(void *opaque, GPtrArray *out, GError **error);
    /* Fills *out for the domain with this UUID; NO_DOMAIN if none. */
    bool (*domain_get)(void *opaque, const guint8 uuid[16], SpLvDomainInfo *out, GError **error);
    /* Domain XML (flags: virDomainXMLFlags, may be ignored); g_free'd. */
    bool (*domain_get_xml)(void *opaque, const guint8 uuid[16], guint32 flags, char **xml,
                           GError **error);
    /* "hvm" for samepage VMs; NULL callback -> "hvm". */
    bool (*domain_get_os_type)(void *opaque, const guint8 uuid[16], char **os_type, GError **error);

    /* --- lifecycle (mutating; never called on read-only connections) --- */
    /* Define (or redefine, same name and UUID) a persistent domain. */
    bool (*domain_define_xml)(void *opaque, const char *xml, guint32 flags, SpLvDomainInfo *out,
                              GError **error);
    bool (*domain_undefine)(void *opaque, const guint8 uuid[16], guint32 flags, GError **error);
    /* Create and start a transient domain. */
    bool (*domain_create_xml)(void *opaque, const char *xml, guint32 flags, SpLvDomainInfo *out,
                              GError **error);
    /* Start a defined domain (flags: virDomainCreateFlags). */
    bool (*domain_start)(void *opaque, const guint8 uuid[16], guint32 flags, GError **error);
    /* Hard stop. */
    bool (*domain_destroy)(void *opaque, const guint8 uuid[16], guint32 flags, GError **error);
    /* Graceful stop request (optional). */
    bool (*domain_shutdown)(void *opaque, const guint8 uuid[16], GError **error);
    /* virsh suspend / resume: the guest stops making progress / goes on
     * (state paused, reason user).  Optional. */
    bool (*domain_suspend)(void *opaque, const guint8 uuid[16], GError **error);
    bool (*domain_resume)(void *opaque, const guint8 uuid[16], GError **error);
    /* virsh reboot and reset: the guest boots again.  Optional. */
    bool (*domain_reboot)(void *opaque, const guint8 uuid[16], GError **error);
    /* Start it when the daemon starts (persistent domains).  Optional. */
    bool (*domain_set_autostart)(void *opaque, const guint8 uuid[16], bool on, GError **error);
    /* virsh memtune's hard_limit in KiB (0: none), of the running VM or the
     * definition as flags (SP_LV_AFFECT_*) say.  Optional. */
    bool (*domain_mem_limit_get)(void *opaque, const guint8 uuid[16], guint32 flags, guint64 *kib,
                                 GError **error);
    bool (*domain_mem_limit_set)(void *opaque, const guint8 uuid[16], guint32 flags, guint64 kib,
                                 GError **error);
    /* virsh numatune: the memory policy's mode name (strict, preferred,
     * interleave) and node set ("" for none), of the running VM or the
     * definition as flags say; set either (NULL keeps it): a running VM's
     * memory moves before the call returns.  Optional. */
    bool (*domain_numa_get)(void *opaque, const guint8 uuid[16], guint32 flags, char **mode,
                            char **nodeset, GError **error);
    bool (*domain_numa_set)(void *opaque, const guint8 uuid[16], guint32 flags, const char *mode,
                            const char *nodeset, GError **error);

    /* --- statistics --- */
    /* dommemstat: append figures to out (GArray of SpLvMemStat). */
    bool (*domain_memory_stats)(void *opaque, const guint8 uuid[16], GArray *out, GError **error);
    /* domstats: append this domain's typed parameters for the requested
     * groups (SP_LV_STATS_* bits; never 0: "all" arrives as all bits).  The
     * endpoint has already added state.*, cpu.time, balloon.current/maximum
     * and vcpu.current/maximum from SpLvDomainInfo; the backend adds what
     * only it knows (balloon.rss, block.*, net.*, samepage.*).  Optional. */
    bool (*domain_stats)(void *opaque, const guint8 uuid[16], guint32 groups, SpLvParams *out,
                         GError **error);
    /* BLOCK_STATS / INTERFACE_STATS for a <target dev> of the domain XML.
     * Optional: NULL -> NO_SUPPORT. */
    bool (*domain_block_stats)(void *opaque, const guint8 uuid[16], const char *path,
                               SpLvBlockStats *out, GError **error);
    bool (*domain_interface_stats)(void *opaque, const guint8 uuid[16], const char *device,
                                   SpLvInterfaceStats *out, GError **error);

    /* vCPUs (optional): live -> the running vCPUs (OPERATION_INVALID if the
     * domain is not running); else one per configured vCPU up to the
     * maximum, offline, with its configured affinity.  Appends SpLvVcpuInfo. */
    bool (*domain_vcpus)(void *opaque, const guint8 uuid[16], bool live, GArray *out,
                         GError **error);

    /* --- node --- */
    bool (*node_get_info)(void *opaque, SpLvNodeInfo *out, GError **error);
    /* capabilities, domcapabilities, maxvcpus, the CPU map (optional). */
    bool (*host_caps)(void *opaque, SpLvHostCaps *out, GError **error);
    /* nodecpustats: cpu >= 0 one CPU, -1 all; INVALID_ARG if no such CPU
     * (optional). */
    bool (*node_cpu_stats)(void *opaque, gint32 cpu, SpLvNodeCpuStats *out, GError **error);
    /* node-memory-tune read: append the shm_* parameters, typed as in
     * libvirt-wire.md (to_scan/sleep/merge_across_nodes UINT, the rest
     * ULLONG). */
    bool (*node_memory_params_get)(void *opaque, SpLvParams *out, GError **error);
    /* node-memory-tune write (mutating).  Reject unknown or read-only names
     * with INVALID_ARG, before changing anything. */
    bool (*node_memory_params_set)(void *opaque, const SpLvParams *params, GError **error);
    /* nodememstats: cell >= 0 is one NUMA node, -1 all; INVALID_ARG for a
     * cell that does not exist. */
    bool (*node_memory_stats)(void *opaque, gint32 cell, SpLvNodeMemStats *out, GError **error);

    /* --- samepage program (SP_LV_SAMEPAGE_PROGRAM; optional) --- */
    /* Clone the running domain `name` into `count` children (mutating).
     * names[0..n_names) name the first children (n_names <= count); the
     * backend names the rest.  Appends the children's names (char *, the
     * array frees them) in order.  All or nothing. */
    bool (*domain_clone)(void *opaque, const char *name, guint32 count, const char *const *names,
                         guint32 n_names, GPtrArray *children, GError **error);
    /* Appends one SpLvParams * per clone group (the array frees them). */
    bool (*clone_groups)(void *opaque, GPtrArray *groups, GError **error);
} SpLvBackendOps;

typedef struct {
    const SpLvBackendOps *ops; /* callbacks, static storage */
    void *opaque;              /* handed to every callback */
} SpLvBackend;
