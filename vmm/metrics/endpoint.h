/* SPDX-License-Identifier: MIT */
/*
 * endpoint.h - the Prometheus endpoint of a supervisor (samepaged
 * --metrics-listen, samepage run --metrics-listen): GET /metrics answers
 * the text exposition of prom.h over HTTP/1.1 (libsoup's server).
 *
 * Cost and concurrency: a scrape never walks /proc.  The endpoint keeps
 * the last exposition text with the time it was made; a scrape within
 * SP_METRICS_MAX_AGE_MS of it gets that same text, so any number of
 * scrapers cost at most one collection per interval.  A collection
 * (sp_fig_collect) takes the engine's lock once per VM only to copy its
 * figures; it asks a VM's agent (an M_STATS round trip, during which the
 * engine waits) only when the agent's last figures are older than
 * SP_METRICS_AGENT_MAX_AGE_S.  Everything
 * runs on the thread whose GMainContext was the thread-default at
 * sp_metrics_endpoint_new() (the supervisor's main thread, which owns the
 * VM list the collect callback reads): concurrent connections are served
 * one request at a time by that loop; no lock is needed.
 *
 * Bad input harms nothing else: a malformed request gets libsoup's 400,
 * another method 405, another path 404, each with a one-line body; more
 * than SP_METRICS_MAX_CONNECTIONS open connections are closed at once.
 */
#ifndef SAMEPAGE_VMM_METRICS_ENDPOINT_H
#define SAMEPAGE_VMM_METRICS_ENDPOINT_H

#include "vmm/metrics/snapshot.h"

#define SP_METRICS_MAX_AGE_MS      500
#define SP_METRICS_MAX_CONNECTIONS 32
/* How old the figures only a VM's agent knows (private pages, mappings,
 * resident pages) may be in a scrape: older ones cost one round trip to
 * the VM process, under the engine's lock. */
#define SP_METRICS_AGENT_MAX_AGE_S 5.0

typedef struct SpMetricsEndpoint SpMetricsEndpoint;
/* A fresh snapshot of the supervisor's figures (called on its thread). */
typedef SpFigSnapshot *(*SpMetricsCollectFn)(void *opaque);

/* Listen on ADDR:PORT (an IPv4 or [IPv6] address, or a host name that
 * resolves; PORT 0 picks a free one).  A one-line error if the address is
 * malformed or cannot be bound. */
SpMetricsEndpoint *sp_metrics_endpoint_new(const char *listen, SpMetricsCollectFn collect,
                                           void *opaque, GError **error);
void sp_metrics_endpoint_free(SpMetricsEndpoint *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpMetricsEndpoint, sp_metrics_endpoint_free)
/* The address it listens on, "ADDR:PORT" (the port chosen for 0). */
const char *sp_metrics_endpoint_address(const SpMetricsEndpoint *m);

#endif
