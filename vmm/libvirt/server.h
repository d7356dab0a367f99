/* SPDX-License-Identifier: MIT */
/*
 * server.h - the libvirt endpoint's UNIX-socket server.
 *
 * Listens on a read-write socket (mode 0600, or 0660 with a configured
 * group) and optionally a read-only socket (0666), accepts any number of
 * clients up to max_clients, and runs one SpLvSession per connection on the
 * GMainContext it is given (the protocol thread: whoever iterates that
 * context).  Peer credentials (SO_PEERCRED) are checked on the read-write
 * socket: uid 0, the daemon's own uid, or a member of rw_group may use it;
 * anyone else gets an access-denied error reply and is disconnected.  A
 * connection that breaks the protocol is closed alone; the others go on.
 *
 * Workers (job_workers, query_workers > 0; samepaged): calls that reach the
 * backend run on two thread pools, state changes on one, queries on the
 * other, so that a long operation (a clone, a stop) holds up neither other
 * clients nor the queries of its own client; each connection has at most
 * SP_LV_INFLIGHT_MAX calls in progress (it is not read from meanwhile),
 * and replies go back in the order they complete (clients match them by
 * serial).  Without workers every call runs on the protocol thread.
 *
 * Events: sp_lv_server_emit() may be called from any thread; the event is
 * queued and written, on the protocol thread, to every connection that
 * registered for it (procs-events.c).  A connection that lets more than
 * SP_LV_EVENT_BACKLOG_MAX bytes of replies and events pile up unread is
 * closed.
 *
 * Otherwise not thread-safe: create, use and free the server from the
 * thread that iterates ctx (or before that thread starts).
 */
#pragma once

#include <sys/types.h>

#include "vmm/libvirt/session.h"

typedef struct {
    const char *rw_path;         /* read-write socket path (required) */
    const char *ro_path;         /* read-only socket path, NULL for none */
    gid_t rw_group;              /* (gid_t)-1: root-only 0600; else chown :group, 0660 */
    guint max_clients;           /* 0 = 512 */
    guint job_workers;           /* threads for state changes (0: none, all inline) */
    guint query_workers;         /* threads for queries (0: none, all inline) */
    SpLvEndpointConfig endpoint; /* type, version, inbound limit (0 = 1 MiB) */
} SpLvServerConfig;

typedef struct SpLvServer SpLvServer;

/* Binds both sockets (replacing stale socket files, refusing live ones). */
SpLvServer *sp_lv_server_new(const SpLvServerConfig *cfg, const SpLvBackend *backend,
                             GMainContext *ctx, GError **error);
/* Closes every connection and removes the socket files. */
void sp_lv_server_free(SpLvServer *srv);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpLvServer, sp_lv_server_free)

guint sp_lv_server_n_clients(const SpLvServer *srv);

#define SP_LV_INFLIGHT_MAX      5u          /* calls in progress per connection */
#define SP_LV_EVENT_BACKLOG_MAX (16u << 20) /* unread bytes before a connection is dropped */
/* Queue a domain event for every connection that registered for it; any
 * thread.  event_id SP_LV_EVENT_ID_LIFECYCLE (event, detail) or
 * SP_LV_EVENT_ID_REBOOT. */
void sp_lv_server_emit(SpLvServer *srv, const SpLvDomainInfo *dom, gint32 event_id, gint32 event,
                       gint32 detail);
