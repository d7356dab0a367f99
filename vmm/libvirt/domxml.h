/* SPDX-License-Identifier: MIT */
/*
 * domxml.h - samepage's subset of libvirt domain XML: parse and format.
 *
 * Understood (everything else is REJECTED with an error naming the element
 * or attribute's path, never silently ignored):
 *
 *   <domain type='samepage'|'kvm'>           (the type is kept as given)
 *     <name>  <uuid>  <title>  <description>
 *     <memory unit=...>  <currentMemory unit=...>   (b, KB, KiB, MB, MiB,
 *                                      GB, GiB, TB, TiB, k, M, G, T; KiB default)
 *     <vcpu>N</vcpu>
 *     <os><type arch=.. machine=..>hvm</type> <kernel> <initrd> <cmdline></os>
 *     <metadata>
 *       <sp:samepage xmlns:sp="https://samepage.invalid/xmlns/1">
 *         <sp:payload>path</sp:payload> <sp:args>..</sp:args>
 *         <sp:domain>sharing domain</sp:domain> <sp:share>policy</sp:share>
 *       </sp:samepage>
 *     </metadata>
 *     <devices>
 *       <disk type=.. device=..><source file|dev|name=../><target dev=.. bus=../>
 *             <driver name=.. type=../><readonly/></disk>
 *       <interface type=..><source bridge|network|dev=../><target dev=../>
 *             <mac address=../><model type=../></interface>
 *     </devices>
 *   </domain>
 *
 * Any namespace prefix bound to SP_DOMXML_NS works.  Semantic checks (does
 * the payload exist, is the share policy known) belong to the daemon.
 * Stateless; no locking.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#define SP_DOMXML_NS "https://samepage.invalid/xmlns/1"

#define SP_DOMXML_ERROR (sp_domxml_error_quark())
GQuark sp_domxml_error_quark(void);
typedef enum {
    SP_DOMXML_ERROR_SYNTAX,      /* not well-formed XML */
    SP_DOMXML_ERROR_UNSUPPORTED, /* an element or attribute we do not understand */
    SP_DOMXML_ERROR_INVALID,     /* a value that does not parse or is missing */
} SpDomXmlErrorCode;

typedef struct {
    char *type;        /* disk: file|block|network; interface: bridge|network|ethernet */
    char *device;      /* disk only: disk|cdrom */
    char *source;      /* source file/dev/name (disk) or bridge/network/dev (nic) */
    char *source_attr; /* which source attribute: "file", "dev", "bridge", ... */
    char *target;      /* target dev: the name BLOCK_STATS / INTERFACE_STATS accept */
    char *bus;         /* disk target bus */
    char *driver_name, *driver_type; /* disk driver */
    bool readonly;                   /* disk <readonly/> */
    char *mac;                       /* interface mac address */
    char *model;                     /* interface model type */
} SpDomXmlDevice;

typedef struct {
    char *type;      /* domain type attribute */
    char *name;      /* required */
    guint8 uuid[16]; /* valid when has_uuid */
    bool has_uuid;   /* <uuid> was given */
    char *title, *description;
    guint64 memory_kib;         /* required, > 0 */
    guint64 current_memory_kib; /* defaults to memory_kib */
    guint32 vcpus;              /* defaults to 1 */
    char *os_type;              /* defaults to "hvm" */
    char *os_arch, *os_machine;
    char *kernel, *initrd, *cmdline;
    char *sp_payload, *sp_args, *sp_domain, *sp_share; /* samepage metadata */
    GPtrArray *disks;                                  /* of SpDomXmlDevice * */
    GPtrArray *interfaces;                             /* of SpDomXmlDevice * */
} SpDomXml;

SpDomXml *sp_domxml_new(void);
void sp_domxml_free(SpDomXml *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpDomXml, sp_domxml_free)

SpDomXml *sp_domxml_parse(const char *xml, GError **error);
/* id >= 0 adds the running domain's id attribute. */
char *sp_domxml_format(const SpDomXml *d, gint32 id);

bool sp_domxml_uuid_parse(const char *s, guint8 out[16]);
void sp_domxml_uuid_format(const guint8 uuid[16], char out[37]);
