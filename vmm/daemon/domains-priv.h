/* SPDX-License-Identifier: MIT */
/*
 * domains-priv.h - what the registry's files share (domains.c: the list,
 * definitions, jobs; domains-run.c: running VMs; domains-clone.c: clones;
 * events.c: lifecycle events).  Locking as in domains.h: "lock held" means
 * ds->lock, "job held" the domain's job.
 */
#ifndef SAMEPAGE_VMM_DAEMON_DOMAINS_PRIV_H
#define SAMEPAGE_VMM_DAEMON_DOMAINS_PRIV_H

#include "vmm/daemon/domains.h"

/* libvirt state reasons samepaged uses (virDomain<State>Reason) */
#define SHUTOFF_UNKNOWN   0
#define SHUTOFF_SHUTDOWN  1
#define SHUTOFF_DESTROYED 2
#define SHUTOFF_CRASHED   3
#define SHUTOFF_FAILED    6
#define RUNNING_BOOTED    1
#define RUNNING_UNPAUSED  5
#define PAUSED_USER       1
#define CRASHED_PANICKED  1

#define DOM_ERROR(error, code, ...) g_set_error(error, SP_LV_ERROR, code, __VA_ARGS__)

/* <state-dir>/<sub>/<name><ext> */
char *dom_path(SpDomains *ds, const char *sub, const char *name, const char *ext);
/* Gives def a random (version 4) UUID. */
void dom_uuid_random(SpDomXml *def);
/* A new domain with one reference (the caller's), not listed. */
SpDomain *domain_new(SpDomains *ds, SpDomXml *def, bool persistent);
SpDomain *dom_ref(SpDomain *d);
/* Lock held: the list takes a reference / drops its reference. */
void dom_list_add(SpDomains *ds, SpDomain *d);
void dom_list_remove(SpDomains *ds, SpDomain *d);
/* Lock held: a domain has this name, or a clone in progress reserved it. */
bool dom_name_taken(SpDomains *ds, const char *name);
/* run/NAME.xml: a running domain's definition, for a restarted samepaged
 * (lock held). */
void dom_write_run_file(SpDomains *ds, SpDomain *d);
void dom_remove_run_file(SpDomains *ds, const char *name);
/* domains/NAME.xml: a persistent domain's definition (lock held). */
bool dom_write_definition(SpDomains *ds, SpDomain *d, GError **error);

/* How long an operation waits for another's job on the same domain, in
 * seconds (libvirt's wait for a domain's job). */
#define JOB_WAIT_S 30.0
/* The domain's job (domains.h).  api names the holder in the error of a
 * caller that timed out; wait_s < 0 waits as long as it takes (a VM's end
 * must be handled). */
bool dom_job_begin(SpDomain *d, const char *api, double wait_s, GError **error);
void dom_job_end(SpDomain *d);
/* Job held: clears d->vm (lock taken inside) and waits until no query uses
 * it; the caller then owns the VM. */
SpVm *dom_take_vm(SpDomain *d);

/* SpVmEvents callbacks of a domain's VM (opaque: the SpDomain). */
SpVmEvents dom_events(SpDomain *d);
void dom_console(SpVm *vm, const char *line, void *opaque);
void dom_integrity(SpVm *vm, uint64_t gpa, uint64_t expected, uint64_t found, void *opaque);
void dom_ended(SpVm *vm, SpVmState state, void *opaque);

/* domains-run.c.  Job held: start the definition in a new VM process with
 * this libvirt id; on failure the domain is shut off (failed). */
bool dom_boot(SpDomains *ds, SpDomain *d, gint32 id, GError **error);
/* A task for ds->tasks: start an autostart domain. */
void dom_autostart_task(SpDomains *ds, SpDomain *d);

/* events.c: report a lifecycle event / a reboot of d (no lock held). */
void dom_emit(SpDomain *d, gint32 event, gint32 detail);
void dom_emit_reboot(SpDomain *d);

/* The children of one clone call: name -> domain, fixed once made. */
typedef struct DomFamily DomFamily;
void dom_family_unref(DomFamily *f); /* NULL is fine */

/* The tasks of ds->tasks. */
typedef struct DomTask {
    enum { DOM_TASK_ENDED, DOM_TASK_AUTOSTART, DOM_TASK_REHOME } kind;
    SpDomain *d; /* a reference (NULL for REHOME) */
    SpVm *vm;    /* ENDED: the VM that ended */
} DomTask;
void dom_task_run(gpointer task, gpointer ds);
void dom_rehome_task(SpDomains *ds); /* domains-numa.c: the periodic pass */

/* <memtune><hard_limit> is kept only with samepaged's swap; without it the
 * limit is dropped from cfg, with a warning (the VM runs unlimited). */
void dom_mem_limit_applies(SpDomains *ds, SpVmConfig *cfg);

#endif
