/* SPDX-License-Identifier: MIT */
/*
 * server.h - the libvirt endpoint's UNIX-socket server.
 *
 * Listens on a read-write socket (mode 0600, or 0660 with a configured
 * group) and optionally a read-only socket (0666), accepts any number of
 * clients up to max_clients, and runs one SpLvSession per connection on the
 * GMainContext it is given (one protocol thread: whoever iterates that
 * context).  Peer credentials (SO_PEERCRED) are checked on the read-write
 * socket: uid 0, the daemon's own uid, or a member of rw_group may use it;
 * anyone else gets an access-denied error reply and is disconnected.  A
 * connection that breaks the protocol is closed alone; the others go on.
 *
 * Not thread-safe: create, use and free the server from the thread that
 * iterates ctx (or before that thread starts).
 */
#pragma once

#include <sys/types.h>

#include "vmm/libvirt/session.h"

typedef struct {
    const char *rw_path;         /* read-write socket path (required) */
    const char *ro_path;         /* read-only socket path, NULL for none */
    gid_t rw_group;              /* (gid_t)-1: root-only 0600; else chown :group, 0660 */
    guint max_clients;           /* 0 = 512 */
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
