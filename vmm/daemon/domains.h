/* SPDX-License-Identifier: MIT */
/*
 * domains.h - samepaged's domains: definitions, persistence, running VMs.
 *
 * A domain is a VM definition (libvirt domain XML, parsed by
 * vmm/libvirt/domxml.c) plus, while it runs, an SpVm: a VM process of its
 * own (docs/process-model.md).  Persistent domains are stored as
 * <state-dir>/domains/<name>.xml and survive daemon restarts; transient
 * ones (virsh create, clones) vanish when they stop.
 *
 * While a domain runs, <state-dir>/run/<name>.xml holds its definition (the
 * live one, like libvirt's status XML) and its VM process listens on
 * <runtime-dir>/vms/<name>.sock.  samepaged stopping or dying leaves the VM
 * processes running; at start-up it re-attaches to each one (sp_vm_attach)
 * with its id, and the engine reads back its merges.  A run file whose VM
 * process is gone means the VM died with nobody watching: the domain is
 * reported shut off with reason "crashed" (and logged), never silently
 * forgotten.  To stop the VMs themselves (host shutdown) use
 * sp_domains_stop_all (`samepage shutdown-all`, samepage-guests.service).
 *
 * Each running VM's console goes to <state-dir>/console/<name>.log, written
 * by its VM process (so nothing is lost while samepaged restarts).
 *
 * Clones (domains-clone.c): sp_domains_clone() registers the children of a
 * running domain as running transient domains.  sp_vm_clone_many() gives
 * every child the same SpVmEvents, so their opaque is a DomFamily that maps
 * a VM's name to its SpDomain; each child domain holds a reference.
 *
 * Threading: the registry lives on the daemon's main thread (GMainContext),
 * which also runs the libvirt endpoint.  vCPU threads only append console
 * lines (under the domain's console lock) and post "VM ended" to the main
 * context; the main thread then joins and frees the VM.
 */
#ifndef SAMEPAGE_VMM_DAEMON_DOMAINS_H
#define SAMEPAGE_VMM_DAEMON_DOMAINS_H

#include <stdio.h>

#include "vmm/libvirt/backend.h"
#include "vmm/libvirt/domxml.h"
#include "vmm/super/vm.h"

typedef struct SpDomain {
    SpDomXml *def;            /* the definition (owned) */
    bool persistent;          /* stored in the state dir */
    SpVm *vm;                 /* non-NULL while running */
    gint32 id;                /* >= 1 while running, else -1 */
    SpLvDomainState state;    /* libvirt state */
    gint32 reason;            /* libvirt state reason */
    uint64_t cpu_ns_last;     /* CPU time of the last run, once stopped */
    struct SpDomains *owner;  /* back pointer */
    struct DomFamily *family; /* clones: the events opaque its VM shares, or NULL */
} SpDomain;

typedef struct SpDomains {
    SpVmHost *host;          /* what every VM process gets (not owned) */
    char *runtime_dir;       /* VM processes' re-attach sockets in DIR/vms */
    char *state_dir;         /* root of persistent state */
    GPtrArray *list;         /* SpDomain*, definition order */
    gint32 next_id;          /* next running id */
    GMainContext *ctx;       /* the main thread's context */
    uint64_t next_vm_id;     /* SpBootInfo vm_id */
    struct SpEngine *engine; /* sharing engine every VM attaches to, or NULL */
    guint32 clone_max;       /* most children per clone (1..SP_VM_CLONE_MAX) */
} SpDomains;

/* Load the definitions and re-attach to the VM processes that run (they
 * join `engine`, which may be NULL). */
SpDomains *sp_domains_new(SpVmHost *host, struct SpEngine *engine, const char *state_dir,
                          GMainContext *ctx, GError **error);
/* Lets go of every running VM (their processes go on, to be re-attached by
 * the next samepaged) and frees everything. */
void sp_domains_free(SpDomains *ds);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpDomains, sp_domains_free)

SpDomain *sp_domains_find_uuid(SpDomains *ds, const guint8 uuid[16]);
SpDomain *sp_domains_find_name(SpDomains *ds, const char *name);

/* Parse, check and add (or, same name and UUID, replace) a definition. */
SpDomain *sp_domains_define(SpDomains *ds, const char *xml, bool persistent, GError **error);
bool sp_domains_undefine(SpDomains *ds, SpDomain *d, GError **error);
bool sp_domains_start(SpDomains *ds, SpDomain *d, GError **error);
bool sp_domains_destroy(SpDomains *ds, SpDomain *d, GError **error);
void sp_domains_stop_all(SpDomains *ds);
/* Clone running domain d into `count` children (domains-clone.c): names
 * the first n_names of them (the rest NAME-c1, NAME-c2, ... skipping taken
 * names); each child is a running transient domain whose definition is d's
 * with a new name and UUID.  Appends the children's names to out (char *).
 * All or nothing: on failure no child domain exists. */
bool sp_domains_clone(SpDomains *ds, SpDomain *d, guint32 count, const char *const *names,
                      guint32 n_names, GPtrArray *out, GError **error);
guint sp_domains_running(SpDomains *ds);

void sp_domain_fill_info(SpDomain *d, SpLvDomainInfo *out);

/* The VM config a definition describes (payload looked up, sizes checked). */
SpVmConfig *sp_domain_vm_config(const SpDomXml *def, GError **error);

#endif
