/* SPDX-License-Identifier: MIT */
/*
 * server.c - UNIX-socket listener and per-connection I/O for the libvirt
 * endpoint (server.h).
 *
 * Sockets, sessions and output buffers live on one GMainContext (the
 * protocol thread).  Each listening socket has a GSource for G_IO_IN; each
 * client has one GSource whose condition is IN while it may read, plus OUT
 * while replies are pending.  Sockets are non-blocking.
 *
 * Input: what is read goes to c->in and is fed to the session one packet
 * at a time (sp_lv_session_wanted), so that a client with
 * SP_LV_INFLIGHT_MAX calls at the workers is neither read nor fed further.
 *
 * Workers: a deferred call (session.c) becomes a Work on the jobs or the
 * queries pool; the worker runs it and queues a ServerItem with the reply
 * on srv->done (done_lock) and wakes the protocol thread through an
 * eventfd; there the reply is appended to the client's output.  Events
 * (sp_lv_server_emit, any thread) travel the same queue.  A client whose
 * socket closed while calls were at the workers is `dead`: out of the list,
 * its fd closed, freed when its last call comes back (the session a worker
 * uses lives until then).
 *
 * Backpressure: a client whose pending output exceeds OUT_HIGH_WATER is not
 * read from until it drains, so a client that sends calls but never reads
 * replies cannot make us buffer without bound; one that lets events pile up
 * past SP_LV_EVENT_BACKLOG_MAX is closed.
 *
 * Closing: on a protocol error the session has already appended an error
 * reply when the client can read one; the client stops being read, its
 * output is flushed (best effort, non-blocking) once its calls are back,
 * then the fd is closed.
 *
 * Socket permissions: bind, then chmod/chown, then listen - nobody can
 * connect before listen(), so the mode is in force before the first client.
 */
#include "vmm/libvirt/server.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "sp-libvirt"

#define OUT_HIGH_WATER (8u << 20)
#define READ_CHUNK     65536

typedef struct SpLvClient SpLvClient;

typedef struct {
    SpLvServer *srv; /* owner */
    int fd;          /* listening socket */
    char *path;      /* socket file, removed on free */
    bool readonly;   /* sessions start read-only */
    GSource *source; /* accept watch */
} SpLvListener;

struct SpLvServer {
    SpLvServerConfig cfg;        /* copy; strings below are owned copies */
    SpLvEndpointConfig endpoint; /* sessions point here */
    char *hv_type;               /* owned copy of cfg.endpoint.hv_type */
    SpLvBackend backend;         /* callbacks */
    GMainContext *ctx;           /* where sources run (ref held) */
    SpLvListener rw, ro;         /* ro.fd < 0 when absent */
    GList *clients;              /* of SpLvClient * (live ones) */
    guint n_clients;             /* length of clients */
    guint64 next_client_id;      /* for log lines */
    GThreadPool *jobs;           /* state-changing calls, or NULL (inline) */
    GThreadPool *queries;        /* other calls that reach the backend, or NULL */
    GMutex done_lock;            /* protects done */
    GQueue done;                 /* ServerItem *: for the protocol thread */
    int wake_fd;                 /* eventfd: done has items */
    GSource *wake_source;        /* its watch */
};

struct SpLvClient {
    SpLvServer *srv;      /* owner */
    guint64 id;           /* for log lines */
    int fd;               /* connected socket, -1 once dead */
    SpLvSession *session; /* protocol state */
    GByteArray *in;       /* bytes read, not yet fed to the session */
    GByteArray *out;      /* reply bytes not yet written */
    GSource *source;      /* I/O watch */
    GIOCondition cond;    /* condition of source */
    guint inflight;       /* calls at the workers */
    bool closing;         /* stop reading; close once out is flushed */
    bool dead;            /* out of the list, fd closed: freed when inflight is 0 */
};

/* What the workers and sp_lv_server_emit hand the protocol thread. */
typedef struct {
    SpLvClient *c;      /* a reply: its client; NULL for an event */
    GByteArray *reply;  /* reply: its packet */
    char *fatal;        /* reply: close the connection after it, why */
    SpLvDomainInfo dom; /* event: the domain */
    gint32 event_id, event, detail;
} ServerItem;

/* A call on its way to a worker. */
typedef struct {
    SpLvClient *c;
    SpLvCall *call;
} Work;

static void client_free(SpLvClient *c)
{
    sp_lv_session_free(c->session);
    g_byte_array_unref(c->in);
    g_byte_array_unref(c->out);
    g_free(c);
}

static void client_unwatch(SpLvClient *c)
{
    if (c->source) {
        g_source_destroy(c->source);
        g_source_unref(c->source);
        c->source = NULL;
    }
}

/* Out of the list and its socket closed; freed now, or when its last call
 * comes back from the workers. */
static void client_drop(SpLvClient *c)
{
    SpLvServer *srv = c->srv;
    srv->clients = g_list_remove(srv->clients, c);
    srv->n_clients--;
    g_debug("client %" G_GUINT64_FORMAT " disconnected", c->id);
    client_unwatch(c);
    close(c->fd);
    c->fd = -1;
    c->dead = true;
    if (!c->inflight)
        client_free(c);
}

static gboolean client_io(gint fd, GIOCondition cond, gpointer data);

static void client_watch(SpLvClient *c)
{
    GIOCondition want = 0;
    if (!c->closing && c->out->len < OUT_HIGH_WATER && c->inflight < SP_LV_INFLIGHT_MAX &&
        c->in->len < READ_CHUNK)
        want |= G_IO_IN;
    if (c->out->len)
        want |= G_IO_OUT;
    if (c->source && want == c->cond)
        return;
    if (c->source) {
        g_source_destroy(c->source);
        g_source_unref(c->source);
    }
    c->cond = want;
    c->source = g_unix_fd_source_new(c->fd, want | G_IO_HUP | G_IO_ERR);
    g_source_set_callback(c->source, G_SOURCE_FUNC(client_io), c, NULL);
    g_source_attach(c->source, c->srv->ctx);
}

/* Writes what the socket takes; false on a fatal write error. */
static bool client_flush(SpLvClient *c)
{
    while (c->out->len) {
        ssize_t n = send(c->fd, c->out->data, c->out->len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return true;
            g_debug("client %" G_GUINT64_FORMAT ": write: %s", c->id, g_strerror(errno));
            return false;
        }
        g_byte_array_remove_range(c->out, 0, n);
    }
    return true;
}

/* Feeds buffered input to the session, one packet at a time, while the
 * client may have more calls in progress. */
static void client_process(SpLvClient *c)
{
    while (!c->closing && c->in->len && c->inflight < SP_LV_INFLIGHT_MAX) {
        gsize take = MIN(sp_lv_session_wanted(c->session), c->in->len);
        g_autoptr(GError) err = NULL;
        if (!sp_lv_session_feed(c->session, c->in->data, take, c->out, &err)) {
            g_message("closing client %" G_GUINT64_FORMAT ": %s", c->id, err->message);
            c->closing = true;
        }
        g_byte_array_remove_range(c->in, 0, take);
    }
}

/* Returns false when the client is gone (dropped). */
static bool client_read(SpLvClient *c)
{
    guint8 buf[READ_CHUNK];
    ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            return true;
        g_debug("client %" G_GUINT64_FORMAT ": read: %s", c->id, g_strerror(errno));
        client_drop(c);
        return false;
    }
    if (n == 0) {
        /* the client closed its side: still deliver the replies it asked for */
        if (c->out->len == 0 && c->inflight == 0) {
            client_drop(c);
            return false;
        }
        c->closing = true;
        return true;
    }
    g_byte_array_append(c->in, buf, n);
    client_process(c);
    return true;
}

/* After any change: write what the socket takes, close a finished client,
 * or watch for what comes next.  False when the client was dropped. */
static bool client_kick(SpLvClient *c)
{
    if (!client_flush(c) || (c->closing && c->out->len == 0 && c->inflight == 0)) {
        client_drop(c);
        return false;
    }
    client_watch(c);
    return true;
}

static gboolean client_io(gint fd, GIOCondition cond, gpointer data)
{
    SpLvClient *c = data;
    if ((cond & G_IO_IN) && !c->closing) {
        if (!client_read(c))
            return G_SOURCE_REMOVE; /* source destroyed with the client */
    } else if (cond & (G_IO_HUP | G_IO_ERR)) {
        client_drop(c);
        return G_SOURCE_REMOVE;
    }
    return client_kick(c) ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* --- workers --- */

static void server_push(SpLvServer *srv, ServerItem *it)
{
    g_mutex_lock(&srv->done_lock);
    g_queue_push_tail(&srv->done, it);
    g_mutex_unlock(&srv->done_lock);
    guint64 one = 1;
    if (write(srv->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        g_warning("cannot wake the protocol thread: %s", g_strerror(errno));
}

static void worker_run(gpointer data, gpointer opaque)
{
    Work *w = data;
    ServerItem *it = g_new0(ServerItem, 1);
    g_autoptr(GError) err = NULL;
    it->c = w->c;
    it->reply = g_byte_array_new();
    if (!sp_lv_call_run(w->call, it->reply, &err))
        it->fatal = g_strdup(err->message);
    sp_lv_call_free(w->call);
    g_free(w);
    server_push(opaque, it);
}

/* SpLvDeferFn of every session (with workers). */
static void client_defer(void *opaque, SpLvCall *call, bool mutating)
{
    SpLvClient *c = opaque;
    Work *w = g_new0(Work, 1);
    w->c = c;
    w->call = call;
    c->inflight++;
    g_thread_pool_push(mutating ? c->srv->jobs : c->srv->queries, w, NULL);
}

static void item_free(ServerItem *it)
{
    if (it->reply)
        g_byte_array_unref(it->reply);
    g_free(it->fatal);
    sp_lv_domain_info_clear(&it->dom);
    g_free(it);
}

/* A call came back: its reply to the client, unless the client is gone. */
static void item_reply(ServerItem *it)
{
    SpLvClient *c = it->c;
    c->inflight--;
    if (c->dead) {
        if (!c->inflight)
            client_free(c);
        return;
    }
    g_byte_array_append(c->out, it->reply->data, it->reply->len);
    if (it->fatal) {
        g_message("closing client %" G_GUINT64_FORMAT ": %s", c->id, it->fatal);
        c->closing = true;
    }
    client_process(c);
    client_kick(c);
}

static void item_event(SpLvServer *srv, ServerItem *it)
{
    for (GList *l = srv->clients; l;) {
        SpLvClient *c = l->data;
        l = l->next; /* c may be dropped */
        if (c->closing)
            continue;
        sp_lv_session_event_append(c->session, c->out, &it->dom, it->event_id, it->event,
                                   it->detail);
        if (c->out->len > SP_LV_EVENT_BACKLOG_MAX) {
            g_message("closing client %" G_GUINT64_FORMAT ": %u bytes of replies and events "
                      "unread",
                      c->id, c->out->len);
            client_drop(c);
            continue;
        }
        client_kick(c);
    }
}

static void server_drain(SpLvServer *srv)
{
    for (;;) {
        g_mutex_lock(&srv->done_lock);
        ServerItem *it = g_queue_pop_head(&srv->done);
        g_mutex_unlock(&srv->done_lock);
        if (!it)
            return;
        if (it->c)
            item_reply(it);
        else
            item_event(srv, it);
        item_free(it);
    }
}

static gboolean server_wake(gint fd, GIOCondition cond, gpointer data)
{
    guint64 n;
    if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        g_warning("eventfd read: %s", g_strerror(errno));
    server_drain(data);
    return G_SOURCE_CONTINUE;
}

void sp_lv_server_emit(SpLvServer *srv, const SpLvDomainInfo *dom, gint32 event_id, gint32 event,
                       gint32 detail)
{
    ServerItem *it = g_new0(ServerItem, 1);
    it->dom.name = g_strdup(dom->name);
    memcpy(it->dom.uuid, dom->uuid, 16);
    it->dom.id = dom->id;
    it->event_id = event_id;
    it->event = event;
    it->detail = detail;
    server_push(srv, it);
}

/* NULL if the peer may use this listener, else a reason to refuse it. */
static char *peer_check(SpLvServer *srv, SpLvListener *l, int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return g_strdup_printf("access denied: cannot read peer credentials: %s",
                               g_strerror(errno));
    if (l->readonly || cred.uid == 0 || cred.uid == geteuid())
        return NULL;
    if (srv->cfg.rw_group != (gid_t)-1) {
        if (cred.gid == srv->cfg.rw_group)
            return NULL;
        /* supplementary groups of the peer process */
        g_autofree char *path = g_strdup_printf("/proc/%d/status", (int)cred.pid);
        g_autofree char *status = NULL;
        if (g_file_get_contents(path, &status, NULL, NULL)) {
            const char *groups = strstr(status, "\nGroups:");
            if (groups) {
                g_autofree char *line = g_strndup(groups + 8, strcspn(groups + 8, "\n"));
                g_auto(GStrv) ids = g_strsplit_set(line, " \t", -1);
                for (char **id = ids; *id; id++)
                    if (**id && g_ascii_strtoull(*id, NULL, 10) == srv->cfg.rw_group)
                        return NULL;
            }
        }
    }
    return g_strdup_printf("access denied: uid %u is not allowed on the read-write socket "
                           "%s; use the read-only socket",
                           (unsigned)cred.uid, l->path);
}

static gboolean listener_accept(gint lfd, GIOCondition cond, gpointer data)
{
    SpLvListener *l = data;
    SpLvServer *srv = l->srv;
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            g_warning("accept on %s: %s", l->path, g_strerror(errno));
        return G_SOURCE_CONTINUE;
    }
    if (srv->n_clients >= srv->cfg.max_clients) {
        g_warning("refusing a client on %s: %u clients connected", l->path, srv->n_clients);
        close(fd);
        return G_SOURCE_CONTINUE;
    }
    g_autofree char *deny = peer_check(srv, l, fd);
    SpLvClient *c = g_new0(SpLvClient, 1);
    c->srv = srv;
    c->id = ++srv->next_client_id;
    c->fd = fd;
    c->in = g_byte_array_new();
    c->out = g_byte_array_new();
    c->session = sp_lv_session_new(&srv->backend, &srv->endpoint, l->readonly, deny);
    if (srv->jobs)
        sp_lv_session_set_defer(c->session, client_defer, c);
    if (deny)
        g_message("client %" G_GUINT64_FORMAT ": %s", c->id, deny);
    srv->clients = g_list_prepend(srv->clients, c);
    srv->n_clients++;
    g_debug("client %" G_GUINT64_FORMAT " connected on %s", c->id, l->path);
    client_watch(c);
    return G_SOURCE_CONTINUE;
}

/* Removes path if it is a socket nobody listens on; fails if one does. */
static bool socket_path_reclaim(const char *path, GError **error)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return true;
    if (!S_ISSOCK(st.st_mode)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS, "%s exists and is not a socket", path);
        return false;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
    bool live = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (fd >= 0)
        close(fd);
    if (live) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE, "%s is in use by another server",
                    path);
        return false;
    }
    unlink(path);
    return true;
}

static bool listener_open(SpLvServer *srv, SpLvListener *l, const char *path, bool readonly,
                          GError **error)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    l->srv = srv;
    l->readonly = readonly;
    l->fd = -1;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FILENAME_TOO_LONG, "socket path %s is too long",
                    path);
        return false;
    }
    if (!socket_path_reclaim(path, error))
        return false;
    g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
    l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "bind %s: %s", path,
                    g_strerror(errno));
        return false;
    }
    l->path = g_strdup(path);
    mode_t mode = readonly ? 0666 : 0600;
    if (!readonly && srv->cfg.rw_group != (gid_t)-1) {
        mode = 0660;
        if (chown(path, (uid_t)-1, srv->cfg.rw_group) < 0) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "chown %s to group %u: %s",
                        path, (unsigned)srv->cfg.rw_group, g_strerror(errno));
            return false;
        }
    }
    if (chmod(path, mode) < 0 || listen(l->fd, 64) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "listen %s: %s", path,
                    g_strerror(errno));
        return false;
    }
    l->source = g_unix_fd_source_new(l->fd, G_IO_IN);
    g_source_set_callback(l->source, G_SOURCE_FUNC(listener_accept), l, NULL);
    g_source_attach(l->source, srv->ctx);
    return true;
}

static void listener_close(SpLvListener *l)
{
    if (l->source) {
        g_source_destroy(l->source);
        g_source_unref(l->source);
        l->source = NULL;
    }
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    if (l->path)
        unlink(l->path);
    g_clear_pointer(&l->path, g_free);
}

SpLvServer *sp_lv_server_new(const SpLvServerConfig *cfg, const SpLvBackend *backend,
                             GMainContext *ctx, GError **error)
{
    g_autoptr(SpLvServer) srv = g_new0(SpLvServer, 1);
    srv->rw.fd = srv->ro.fd = srv->wake_fd = -1;
    srv->cfg = *cfg;
    srv->cfg.rw_path = srv->cfg.ro_path = NULL;
    if (!srv->cfg.max_clients)
        srv->cfg.max_clients = 512;
    srv->endpoint = cfg->endpoint;
    srv->hv_type = g_strdup(cfg->endpoint.hv_type ? cfg->endpoint.hv_type : "samepage");
    srv->endpoint.hv_type = srv->hv_type;
    if (!srv->endpoint.inbound_max)
        srv->endpoint.inbound_max = SP_LV_INBOUND_MAX_DEFAULT;
    srv->backend = *backend;
    srv->ctx = g_main_context_ref(ctx ? ctx : g_main_context_default());
    g_mutex_init(&srv->done_lock);
    g_queue_init(&srv->done);
    srv->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (srv->wake_fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "eventfd: %s",
                    g_strerror(errno));
        return NULL;
    }
    srv->wake_source = g_unix_fd_source_new(srv->wake_fd, G_IO_IN);
    g_source_set_callback(srv->wake_source, G_SOURCE_FUNC(server_wake), srv, NULL);
    g_source_attach(srv->wake_source, srv->ctx);
    if (cfg->job_workers && cfg->query_workers) {
        srv->jobs = g_thread_pool_new(worker_run, srv, (gint)cfg->job_workers, FALSE, NULL);
        srv->queries = g_thread_pool_new(worker_run, srv, (gint)cfg->query_workers, FALSE, NULL);
    }
    if (!cfg->rw_path) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "no read-write socket path");
        return NULL;
    }
    if (!listener_open(srv, &srv->rw, cfg->rw_path, false, error))
        return NULL;
    if (cfg->ro_path && !listener_open(srv, &srv->ro, cfg->ro_path, true, error))
        return NULL;
    return g_steal_pointer(&srv);
}

void sp_lv_server_free(SpLvServer *srv)
{
    if (!srv)
        return;
    while (srv->clients)
        client_drop(srv->clients->data);
    listener_close(&srv->rw);
    listener_close(&srv->ro);
    /* The workers finish their calls; then their replies free the clients. */
    if (srv->jobs)
        g_thread_pool_free(srv->jobs, FALSE, TRUE);
    if (srv->queries)
        g_thread_pool_free(srv->queries, FALSE, TRUE);
    server_drain(srv);
    if (srv->wake_source) {
        g_source_destroy(srv->wake_source);
        g_source_unref(srv->wake_source);
    }
    if (srv->wake_fd >= 0)
        close(srv->wake_fd);
    g_mutex_clear(&srv->done_lock);
    if (srv->ctx)
        g_main_context_unref(srv->ctx);
    g_free(srv->hv_type);
    g_free(srv);
}

guint sp_lv_server_n_clients(const SpLvServer *srv)
{
    return srv->n_clients;
}
