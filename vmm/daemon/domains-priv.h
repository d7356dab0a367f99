/* SPDX-License-Identifier: MIT */
/*
 * domains-priv.h - what domains.c shares with domains-clone.c: building a
 * domain, its state-dir paths and the VM event callbacks, and the clone
 * family that routes the shared events of cloned VMs to their domains.
 * Same threading as domains.h: the registry on the main thread; the event
 * callbacks on vCPU threads.
 */
#ifndef SAMEPAGE_VMM_DAEMON_DOMAINS_PRIV_H
#define SAMEPAGE_VMM_DAEMON_DOMAINS_PRIV_H

#include "vmm/daemon/domains.h"

/* libvirt state reasons samepaged uses */
#define SHUTOFF_UNKNOWN   0
#define SHUTOFF_SHUTDOWN  1
#define SHUTOFF_DESTROYED 2
#define SHUTOFF_CRASHED   3
#define SHUTOFF_FAILED    6
#define RUNNING_BOOTED    1
#define CRASHED_UNKNOWN   0

/* <state-dir>/<sub>/<name><ext> */
char *dom_path(SpDomains *ds, const char *sub, const char *name, const char *ext);
SpDomain *domain_new(SpDomains *ds, SpDomXml *def, bool persistent);
void domain_free(SpDomain *d);
/* run/NAME.xml: a running domain's definition, for a restarted samepaged. */
void dom_write_run_file(SpDomains *ds, SpDomain *d);

/* SpVmEvents callbacks; opaque is the SpDomain. */
void dom_console(SpVm *vm, const char *line, void *opaque);
void dom_integrity(SpVm *vm, uint64_t gpa, uint64_t expected, uint64_t found, void *opaque);
void dom_ended(SpVm *vm, SpVmState state, void *opaque);

/* The children of one clone call: name -> domain, fixed once made. */
typedef struct DomFamily DomFamily;
void dom_family_unref(DomFamily *f); /* NULL is fine */

#endif
