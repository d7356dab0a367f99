/* SPDX-License-Identifier: MIT */
/* backend.h - samepaged's answers to the libvirt endpoint (SpLvBackendOps). */
#ifndef SAMEPAGE_VMM_DAEMON_BACKEND_H
#define SAMEPAGE_VMM_DAEMON_BACKEND_H

#include "vmm/daemon/domains.h"
#include "vmm/libvirt/backend.h"

typedef struct SpDaemon {
    SpDomains *domains;        /* the VMs */
    struct SpHostKnobs *knobs; /* memory engine knobs and counters */
} SpDaemon;

/* The backend table; opaque must be an SpDaemon*. */
extern const SpLvBackendOps sp_daemon_backend_ops;

/* backend-host.c: the host for capabilities and nodecpustats. */
bool sp_daemon_host_caps(void *opaque, SpLvHostCaps *out, GError **error);
bool sp_daemon_node_cpu_stats(void *opaque, gint32 cpu, SpLvNodeCpuStats *out, GError **error);

#endif
