/* SPDX-License-Identifier: MIT */
/*
 * domains.h - samepaged's domains: definitions, persistence, running VMs.
 *
 * A domain is a VM definition (libvirt domain XML, parsed by
 * vmm/libvirt/domxml.c) plus, while it runs, an SpVm: a VM process of its
 * own (docs/process-model.md).  Persistent domains are stored as
 * <state-dir>/domains/<name>.xml and survive daemon restarts (with
 * <state-dir>/autostart/<name>.xml, a link to it, when they start with
 * samepaged); transient ones (virsh create, clones) vanish when they stop.
 *
 * While a domain runs, <state-dir>/run/<name>.xml holds its definition (the
 * live one, like libvirt's status XML) and its VM process listens on
 * <runtime-dir>/vms/<name>.sock.  samepaged stopping or dying leaves the VM
 * processes running; at start-up it re-attaches to each one (sp_vm_attach)
 * with its id, state (a suspended VM stays paused) and merges.  A run file
 * whose VM process is gone means the VM died with nobody watching: the
 * domain is reported shut off with reason "crashed" (and logged).
 *
 * Lifecycle (domains-run.c): start, destroy, shutdown, reboot/reset,
 * suspend/resume; when a VM ends by itself its <on_poweroff>, <on_reboot>
 * or <on_crash> action applies (destroy, restart: a new VM process boots
 * the definition again with the same id; preserve, for crashes: the
 * crashed VM stays until destroyed).  Every change of state is reported
 * through the emit hook as libvirt's lifecycle event (events.c).
 *
 * Concurrency (docs/libvirt.md "Concurrency"): any thread may call these
 * functions; libvirt calls arrive on the endpoint's worker threads.
 *   - ds->lock, the registry lock, protects the list, the reserved names
 *     and every field of every SpDomain.  It is held only briefly, never
 *     across a request to a VM process, a VM's end or file I/O beyond one
 *     definition file.
 *   - Each domain has a job: one state-changing operation at a time
 *     (start, destroy, shutdown, reboot, suspend, resume, undefine, clone,
 *     and the handling of a VM's end).  Another one waits for it for up to
 *     30 s, then fails with VIR_ERR_OPERATION_TIMEOUT naming the holder.
 *     Destroy first asks the VM to stop (without the job), so it ends a
 *     long operation instead of waiting for it.  Only the job holder sets
 *     or clears d->vm.
 *   - Queries never wait for a job.  One that talks to a VM process takes
 *     a use of d->vm (sp_domain_vm_use) so it is not freed meanwhile; the
 *     job holder clears d->vm first, then waits for the uses to end.
 *   - Domains are reference counted: lookups return a reference, the list
 *     holds one, and a domain removed from the list lives until the last
 *     reference goes.
 * Lock order: a domain's job, then ds->lock, then the emit hook's own lock.  The VM's event
 * callbacks run on its reader thread; the one for its end hands the work to ds->tasks, a thread
 * pool (also used for autostart).
 */
#ifndef SAMEPAGE_VMM_DAEMON_DOMAINS_H
#define SAMEPAGE_VMM_DAEMON_DOMAINS_H

#include <stdio.h>

#include "vmm/libvirt/backend.h"
#include "vmm/libvirt/domxml.h"
#include "vmm/super/vm.h"

typedef struct SpDomain {
    gint refs;                /* atomic: the list's and every lookup's */
    SpDomXml *def;            /* the definition (owned; replaced by a redefine) */
    bool persistent;          /* stored in the state dir */
    bool autostart;           /* started when samepaged starts (persistent only) */
    bool listed;              /* in ds->list */
    SpVm *vm;                 /* non-NULL while running (or preserved after a crash) */
    guint vm_users;           /* queries using vm outside the lock */
    gint32 id;                /* >= 1 while active, else -1 */
    SpLvDomainState state;    /* libvirt state */
    gint32 reason;            /* libvirt state reason */
    uint64_t cpu_ns_last;     /* CPU time of the last run, once stopped */
    const char *job;          /* API name of the operation holding the job, or NULL */
    gint64 restart_times[4];  /* monotonic us of the last automatic restarts */
    struct SpDomains *owner;  /* back pointer */
    struct DomFamily *family; /* clones: the events opaque its VM shares, or NULL */
} SpDomain;

/* Lifecycle events: (domain, eventID, event, detail) as libvirt numbers
 * them; called from any thread, with ds->lock held: it must only queue
 * (sp_lv_server_emit), never call into the registry. */
typedef void (*SpDomainsEmit)(void *opaque, const SpLvDomainInfo *dom, gint32 event_id,
                              gint32 event, gint32 detail);

typedef struct SpDomains {
    GMutex lock;             /* the registry lock (see above) */
    GCond cond;              /* a job ended, a use of a VM ended */
    SpVmHost *host;          /* what every VM process gets (not owned) */
    char *runtime_dir;       /* VM processes' re-attach sockets in DIR/vms */
    char *state_dir;         /* root of persistent state */
    GPtrArray *list;         /* SpDomain* (one reference each), definition order */
    GHashTable *reserved;    /* names a clone in progress will take */
    gint32 next_id;          /* next running id */
    uint64_t next_vm_id;     /* SpBootInfo vm_id */
    struct SpEngine *engine; /* sharing engine every VM attaches to, or NULL */
    guint32 clone_max;       /* most children per clone (1..SP_VM_CLONE_MAX) */
    GThreadPool *tasks;      /* VM ends, autostarts, periodic re-homing */
    gint rehome_queued;      /* atomic: a periodic re-homing task is queued or running */
    SpDomainsEmit emit;      /* lifecycle events, or NULL */
    void *emit_opaque;
} SpDomains;

/* Load the definitions and re-attach to the VM processes that run (they
 * join `engine`, which may be NULL). */
SpDomains *sp_domains_new(SpVmHost *host, struct SpEngine *engine, const char *state_dir,
                          GError **error);
/* Waits for pending tasks, lets go of every running VM (their processes go
 * on, to be re-attached by the next samepaged) and frees everything. */
void sp_domains_free(SpDomains *ds);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpDomains, sp_domains_free)
void sp_domains_set_emit(SpDomains *ds, SpDomainsEmit emit, void *opaque);
/* Starts every autostart domain that is not running (in ds->tasks). */
void sp_domains_autostart(SpDomains *ds);

/* Lookups return a reference (sp_domain_unref), or NULL. */
SpDomain *sp_domains_get_uuid(SpDomains *ds, const guint8 uuid[16]);
SpDomain *sp_domains_get_name(SpDomains *ds, const char *name);
void sp_domain_unref(SpDomain *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpDomain, sp_domain_unref)
/* Every domain's info (SpLvDomainInfo *), in list order. */
void sp_domains_list_info(SpDomains *ds, GPtrArray *out);
/* A reference to every listed domain, at one moment (free the array). */
GPtrArray *sp_domains_list_refs(SpDomains *ds);
void sp_domain_fill_info(SpDomain *d, SpLvDomainInfo *out);
/* The domain's XML: the definition, with its id while active. */
char *sp_domain_xml(SpDomain *d);
/* Whether the definition has a disk (or, disk false, an interface) whose
 * target (or, for disks, source) is `name`. */
bool sp_domain_has_device(SpDomain *d, bool disk, const char *name);
/* The configured vCPUs (<vcpu>, the maximum) and the host CPUs they may
 * run on (<vcpu cpuset>, else every CPU samepaged may use). */
guint32 sp_domain_configured_cpus(SpDomain *d, cpu_set_t *set);
/* virsh memtune's hard_limit (KiB, 0: none): the running VM's swap limit
 * (SP_LV_AFFECT_LIVE), the definition's <memtune><hard_limit>
 * (SP_LV_AFFECT_CONFIG, saved), or whichever applies (0).  A limit needs
 * samepaged's swap (--swap); docs/swap.md. */
bool sp_domains_set_mem_limit(SpDomains *ds, SpDomain *d, guint32 flags, guint64 kib,
                              GError **error);
bool sp_domains_get_mem_limit(SpDomains *ds, SpDomain *d, guint32 flags, guint64 *kib,
                              GError **error);

/* virsh numatune (domains-numa.c, docs/numa.md).  Set: mode (libvirt's
 * name; NULL keeps the current one, strict if none) and nodeset (NULL
 * keeps the current one) of the running VM (SP_LV_AFFECT_LIVE: its RAM
 * moves, the call returns when it has), of the definition
 * (SP_LV_AFFECT_CONFIG, saved), or whichever applies (0).  Get: the same
 * one's mode name (strict when it has no policy) and nodeset ("" for none),
 * both g_free. */
bool sp_domains_set_numa(SpDomains *ds, SpDomain *d, guint32 flags, const char *mode,
                         const char *nodeset, GError **error);
void sp_domains_get_numa(SpDomains *ds, SpDomain *d, guint32 flags, char **mode, char **nodeset);
/* Every SP_DOMAINS_REHOME_S seconds (samepaged's main loop calls it): on a
 * host with several nodes and merge_across_nodes=1, a re-homing pass in
 * ds->tasks (one at a time), so frames made where the engine thread ran
 * go to the node their sharers want without waiting for a live move. */
#define SP_DOMAINS_REHOME_S 30
void sp_domains_numa_tick(SpDomains *ds);

/* d->vm for a query, or NULL if not running; sp_domain_vm_done ends the use. */
SpVm *sp_domain_vm_use(SpDomain *d);
void sp_domain_vm_done(SpDomain *d);

/* Parse, check and add (or, same name and UUID, replace) a definition;
 * returns the domain (a reference). */
SpDomain *sp_domains_define(SpDomains *ds, const char *xml, bool persistent, GError **error);
bool sp_domains_undefine(SpDomains *ds, SpDomain *d, GError **error);
/* Define a transient domain and start it (virsh create). */
SpDomain *sp_domains_create(SpDomains *ds, const char *xml, GError **error);
bool sp_domains_set_autostart(SpDomains *ds, SpDomain *d, bool on, GError **error);

/* domains-run.c */
bool sp_domains_start(SpDomains *ds, SpDomain *d, GError **error);
bool sp_domains_destroy(SpDomains *ds, SpDomain *d, GError **error);
/* Stop the guest as a power-off (samepage guests have no ACPI button: at
 * once), then apply <on_poweroff>. */
bool sp_domains_shutdown(SpDomains *ds, SpDomain *d, GError **error);
/* Reset: a new VM process boots the definition again, same id. */
bool sp_domains_reboot(SpDomains *ds, SpDomain *d, GError **error);
bool sp_domains_suspend(SpDomains *ds, SpDomain *d, GError **error);
bool sp_domains_resume(SpDomains *ds, SpDomain *d, GError **error);

/* Clone running domain d into `count` children (domains-clone.c): names
 * the first n_names of them (the rest NAME-c1, NAME-c2, ... skipping taken
 * names); each child is a running transient domain whose definition is d's
 * with a new name and UUID.  Appends the children's names to out (char *).
 * All or nothing: on failure no child domain exists. */
bool sp_domains_clone(SpDomains *ds, SpDomain *d, guint32 count, const char *const *names,
                      guint32 n_names, GPtrArray *out, GError **error);
guint sp_domains_running(SpDomains *ds);

/* The VM config a definition describes (payload looked up, sizes checked). */
SpVmConfig *sp_domain_vm_config(const SpDomXml *def, GError **error);

#endif
