/* SPDX-License-Identifier: MIT */
/*
 * domxml.h - libvirt domain XML as samepage reads and writes it.
 *
 * Every element of a definition falls in one of three classes (the table
 * in domxml.c, documented in docs/libvirt.md "Domain XML"):
 *
 *   honoured  samepage acts on it: name, uuid, memory, currentMemory, vcpu
 *             (placement, cpuset, current), os (type, kernel, initrd,
 *             cmdline), memoryBacking/nosharepages, on_poweroff, on_reboot,
 *             on_crash, devices/serial and devices/console (the 8250 UART
 *             and its log), the samepage metadata; memtune and numatune are
 *             parsed into fields (their behaviour lands with swap and NUMA).
 *   kept      samepage has no choice to make about it, so it is accepted,
 *             kept verbatim and returned by dumpxml: title, description,
 *             features, cpu, clock, pm, sysinfo, seclabel, resource, other
 *             metadata namespaces, os/boot..., devices/emulator, disks and
 *             interfaces (their <target dev> names answer the stats calls),
 *             controllers, input, graphics, video, ...
 *   refused   what samepage would otherwise get wrong: a device the guest
 *             would depend on that samepage does not provide (hostdev,
 *             filesystem, watchdog, tpm, ...), a memory backing it cannot
 *             honour (hugepages, locked, shared access, ...), firmware,
 *             and anything it does not know.  The error names the element
 *             and its path, and says why.
 *
 * Formatting: sp_domxml_format() writes honoured elements from the fields
 * and kept ones from their trees, in a fixed order; format -> parse ->
 * format is the identity.  Semantic checks that need the host (does the
 * payload exist, do the CPUs of cpuset exist) are the daemon's.
 * Stateless; no locking.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "vmm/libvirt/xmltree.h"

#define SP_DOMXML_NS "https://samepage.invalid/xmlns/1"

#define SP_DOMXML_ERROR (sp_domxml_error_quark())
GQuark sp_domxml_error_quark(void);
typedef enum {
    SP_DOMXML_ERROR_SYNTAX,      /* not well-formed XML */
    SP_DOMXML_ERROR_UNSUPPORTED, /* an element or attribute samepage refuses */
    SP_DOMXML_ERROR_INVALID,     /* a value that does not parse or is missing */
} SpDomXmlErrorCode;

/* A disk or interface: its tree (kept verbatim) and what the stats calls
 * need from it. */
typedef struct {
    SpXmlNode *node;    /* the element (owned by SpDomXml.devices) */
    const char *type;   /* type attribute, or NULL */
    const char *source; /* source file/dev/name/bridge/network, or NULL */
    const char *target; /* target dev: the name BLOCK_STATS / INTERFACE_STATS accept */
} SpDomXmlDevice;

/* on_poweroff / on_reboot / on_crash */
typedef enum {
    SP_DOMXML_ACTION_UNSET = 0, /* element absent: libvirt's default applies */
    SP_DOMXML_ACTION_DESTROY,   /* the domain stops */
    SP_DOMXML_ACTION_RESTART,   /* a new VM process boots the same definition */
    SP_DOMXML_ACTION_PRESERVE,  /* on_crash only: the crashed VM stays, for inspection */
} SpDomXmlAction;

/* numatune/memnode */
typedef struct {
    guint32 cellid; /* guest NUMA cell */
    char *mode;     /* strict|preferred|interleave|restrictive, or NULL */
    char *nodeset;  /* host nodes, cpuset syntax */
} SpDomXmlMemnode;

typedef struct {
    char *type;      /* domain type attribute: "samepage" or "kvm" */
    char *name;      /* required */
    guint8 uuid[16]; /* valid when has_uuid */
    bool has_uuid;   /* <uuid> was given */
    char *title, *description;
    guint64 memory_kib;         /* required, > 0 */
    guint64 current_memory_kib; /* defaults to memory_kib */
    guint32 vcpus;              /* <vcpu>: the maximum; defaults to 1 */
    guint32 vcpus_current;      /* current='N' (vCPUs that run), 0 = all */
    char *vcpu_placement;       /* static|auto, or NULL */
    char *vcpu_cpuset;          /* host CPUs the vCPUs may run on (cpuset syntax), or NULL */
    char *os_type;              /* defaults to "hvm" */
    char *os_arch, *os_machine;
    char *kernel, *initrd, *cmdline;
    GPtrArray *os_kept; /* SpXmlNode * under <os>: boot, bootmenu... */
    char *sp_payload, *sp_args, *sp_domain, *sp_share; /* samepage metadata */
    GPtrArray *metadata_kept;                          /* SpXmlNode *: other namespaces */
    bool nosharepages;                                 /* memoryBacking/nosharepages */
    SpXmlNode *memory_backing;                         /* the element as given, or NULL */
    /* memtune, KiB, 0 = not given (kept; honoured with the swap issue) */
    guint64 memtune_hard_limit_kib, memtune_soft_limit_kib, memtune_swap_hard_limit_kib,
        memtune_min_guarantee_kib;
    bool has_memtune; /* <memtune> was given (possibly empty) */
    /* numatune (kept; honoured with the NUMA issue) */
    bool has_numatune;
    char *numa_mode, *numa_nodeset, *numa_placement; /* numatune/memory */
    GPtrArray *numa_memnodes;                        /* SpDomXmlMemnode * */
    SpDomXmlAction on_poweroff, on_reboot, on_crash;
    GPtrArray *kept;       /* SpXmlNode *: kept top-level elements, document order */
    GPtrArray *devices;    /* SpXmlNode *: every <devices> child, document order */
    GPtrArray *disks;      /* SpDomXmlDevice * (views into devices) */
    GPtrArray *interfaces; /* SpDomXmlDevice * (views into devices) */
    char *serial_type;     /* the UART's <serial>/<console> type (pty|file), or NULL */
    char *serial_path;     /* type='file': the log it writes, else NULL */
} SpDomXml;

SpDomXml *sp_domxml_new(void);
void sp_domxml_free(SpDomXml *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpDomXml, sp_domxml_free)

SpDomXml *sp_domxml_parse(const char *xml, GError **error);
/* id >= 0 adds the running domain's id attribute. */
char *sp_domxml_format(const SpDomXml *d, gint32 id);
/* A copy (format + parse): for clones and restarts. */
SpDomXml *sp_domxml_copy(const SpDomXml *d);

/* The vCPUs that run: current='N', else all. */
guint32 sp_domxml_vcpus_running(const SpDomXml *d);
/* The action for an event, with libvirt's defaults (destroy, restart,
 * destroy) where the element is absent. */
SpDomXmlAction sp_domxml_on_poweroff(const SpDomXml *d);
SpDomXmlAction sp_domxml_on_reboot(const SpDomXml *d);
SpDomXmlAction sp_domxml_on_crash(const SpDomXml *d);

/* libvirt's cpuset syntax ("0-3,^2,8"): the ids, ascending, each < max. */
bool sp_domxml_cpuset_parse(const char *s, guint max, GArray *ids, GError **error);

bool sp_domxml_uuid_parse(const char *s, guint8 out[16]);
void sp_domxml_uuid_format(const guint8 uuid[16], char out[37]);
