/* SPDX-License-Identifier: MIT */
/*
 * metrics.h - samepaged's Prometheus endpoint (--metrics-listen): the
 * endpoint of vmm/metrics/endpoint.h fed with snapshots of the domain
 * registry.  Runs on the daemon's main thread, which owns the registry
 * (domains.h): the endpoint's connections are served by the same
 * GMainContext as the libvirt sockets.
 */
#ifndef SAMEPAGE_VMM_DAEMON_METRICS_H
#define SAMEPAGE_VMM_DAEMON_METRICS_H

#include "vmm/daemon/domains.h"
#include "vmm/metrics/endpoint.h"

/* Every defined domain (running ones with their figures), the engine's
 * figures and the clone groups, now. */
SpFigSnapshot *sp_daemon_metrics_collect(SpDomains *ds);
/* Serve them on ADDR:PORT; a one-line error if it cannot. */
SpMetricsEndpoint *sp_daemon_metrics_new(SpDomains *ds, const char *listen, GError **error);

#endif
