/* SPDX-License-Identifier: MIT */
/*
 * endpoint.c - the Prometheus endpoint (endpoint.h): a GSocketService
 * accepts connections (counting them, closing those over the limit) and
 * hands each to a SoupServer, which parses HTTP; the one handler answers
 * /metrics from the cached exposition text, refreshed when older than
 * SP_METRICS_MAX_AGE_MS.  Every answer closes its connection ("Connection:
 * close"): libsoup keeps connections alive only on listeners of its own,
 * and a scraper then holds no connection between scrapes.  All of it on
 * the creating thread's main context.
 */
#include "vmm/metrics/endpoint.h"

#include <string.h>
#include <libsoup/soup.h>

#include "vmm/metrics/prom.h"

struct SpMetricsEndpoint {
    GSocketService *service;    /* accepts connections */
    SoupServer *soup;           /* serves HTTP on them */
    char *address;              /* ADDR:PORT bound */
    SpMetricsCollectFn collect; /* makes a snapshot */
    void *opaque;               /* its argument */
    GBytes *text;               /* the last exposition text, or NULL */
    gint64 text_us;             /* when it was made (monotonic) */
    GHashTable *conns;          /* open GSocketConnection*, weakly referenced */
    guint64 refused;            /* connections closed over the limit */
};

static void endpoint_conn_gone(gpointer opaque, GObject *conn)
{
    SpMetricsEndpoint *m = opaque;
    g_hash_table_remove(m->conns, conn);
}

static gboolean endpoint_incoming(GSocketService *svc, GSocketConnection *conn, GObject *src,
                                  gpointer opaque)
{
    SpMetricsEndpoint *m = opaque;
    g_autoptr(GError) err = NULL;
    if (g_hash_table_size(m->conns) >= SP_METRICS_MAX_CONNECTIONS) {
        if (m->refused++ % 1000 == 0)
            g_warning("event=metrics-refused open=%u limit=%d refused=%" G_GUINT64_FORMAT
                      " (too many connections to the metrics endpoint)",
                      g_hash_table_size(m->conns), SP_METRICS_MAX_CONNECTIONS, m->refused);
        g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
        return TRUE;
    }
    g_autoptr(GSocketAddress) local = g_socket_connection_get_local_address(conn, NULL);
    g_autoptr(GSocketAddress) remote = g_socket_connection_get_remote_address(conn, NULL);
    if (!soup_server_accept_iostream(m->soup, G_IO_STREAM(conn), local, remote, &err)) {
        g_warning("event=metrics-accept-failed error=\"%s\"", err->message);
        g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
        return TRUE;
    }
    g_hash_table_add(m->conns, conn);
    g_object_weak_ref(G_OBJECT(conn), endpoint_conn_gone, m);
    return TRUE;
}

static void endpoint_reply_text(SoupServerMessage *msg, guint status, const char *text)
{
    soup_server_message_set_status(msg, status, NULL);
    soup_server_message_set_response(msg, "text/plain; charset=utf-8", SOUP_MEMORY_COPY, text,
                                     strlen(text));
}

static void endpoint_handle(SoupServer *server, SoupServerMessage *msg, const char *path,
                            GHashTable *query, gpointer opaque)
{
    SpMetricsEndpoint *m = opaque;
    const char *method = soup_server_message_get_method(msg);
    /* libsoup keeps connections alive only on its own listeners: say so. */
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection",
                                 "close");
    if (strcmp(path, "/metrics") != 0) {
        g_autofree char *t = g_strdup_printf("not found: %s (the metrics are at /metrics)\n", path);
        endpoint_reply_text(msg, SOUP_STATUS_NOT_FOUND, t);
        return;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow",
                                     "GET, HEAD");
        endpoint_reply_text(msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
                            "method not allowed: /metrics answers GET and HEAD\n");
        return;
    }
    gint64 now = g_get_monotonic_time();
    if (!m->text || now - m->text_us >= SP_METRICS_MAX_AGE_MS * 1000 || now < m->text_us) {
        gint64 t0 = g_get_monotonic_time();
        g_autoptr(SpFigSnapshot) snap = m->collect(m->opaque);
        g_debug("event=metrics-collect us=%" G_GINT64_FORMAT, g_get_monotonic_time() - t0);
        g_clear_pointer(&m->text, g_bytes_unref);
        m->text = sp_prom_render(snap);
        m->text_us = g_get_monotonic_time();
    }
    soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Content-Type",
                                 SP_PROM_CONTENT_TYPE);
    soup_message_body_append_bytes(soup_server_message_get_response_body(msg), m->text);
}

/* ADDR:PORT into an address; a one-line error otherwise. */
static GSocketAddress *endpoint_parse(const char *listen, GError **error)
{
    const char *colon = strrchr(listen, ':');
    g_autofree char *host = colon ? g_strndup(listen, colon - listen) : NULL;
    guint64 port = 0;
    if (!colon || !*host || !g_ascii_string_to_unsigned(colon + 1, 10, 0, 65535, &port, NULL)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "metrics address '%s' is not ADDR:PORT (e.g. 127.0.0.1:9477, [::1]:9477)",
                    listen);
        return NULL;
    }
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = 0;
    }
    if (strpbrk(host, "[]")) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "metrics address '%s': an IPv6 address goes in brackets, [ADDR]:PORT", listen);
        return NULL;
    }
    g_autoptr(GInetAddress) ia = g_inet_address_new_from_string(host);
    if (!ia) {
        g_autoptr(GResolver) r = g_resolver_get_default();
        g_autoptr(GError) err = NULL;
        GList *found = g_resolver_lookup_by_name(r, host, NULL, &err);
        if (!found) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "metrics address '%s': cannot resolve '%s': %s", listen, host,
                        err->message);
            return NULL;
        }
        ia = g_object_ref(found->data);
        g_resolver_free_addresses(found);
    }
    return g_inet_socket_address_new(ia, (guint16)port);
}

SpMetricsEndpoint *sp_metrics_endpoint_new(const char *listen, SpMetricsCollectFn collect,
                                           void *opaque, GError **error)
{
    g_autoptr(GSocketAddress) want = endpoint_parse(listen, error);
    if (!want)
        return NULL;
    g_autoptr(SpMetricsEndpoint) m = g_new0(SpMetricsEndpoint, 1);
    m->collect = collect;
    m->opaque = opaque;
    m->conns = g_hash_table_new(NULL, NULL);
    m->soup = soup_server_new("server-header", "samepage ", NULL);
    soup_server_add_handler(m->soup, NULL, endpoint_handle, m, NULL);
    m->service = g_socket_service_new();
    g_autoptr(GSocketAddress) got = NULL;
    g_autoptr(GError) err = NULL;
    if (!g_socket_listener_add_address(G_SOCKET_LISTENER(m->service), want, G_SOCKET_TYPE_STREAM,
                                       G_SOCKET_PROTOCOL_TCP, NULL, &got, &err)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot listen on %s for metrics: %s",
                    listen, err->message);
        return NULL;
    }
    g_autofree char *ip =
        g_inet_address_to_string(g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(got)));
    guint16 port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(got));
    m->address =
        strchr(ip, ':') ? g_strdup_printf("[%s]:%u", ip, port) : g_strdup_printf("%s:%u", ip, port);
    g_signal_connect(m->service, "incoming", G_CALLBACK(endpoint_incoming), m);
    g_socket_service_start(m->service);
    return g_steal_pointer(&m);
}

void sp_metrics_endpoint_free(SpMetricsEndpoint *m)
{
    if (!m)
        return;
    if (m->service) {
        g_socket_service_stop(m->service);
        g_socket_listener_close(G_SOCKET_LISTENER(m->service));
        g_signal_handlers_disconnect_by_data(m->service, m);
        g_object_unref(m->service);
    }
    GHashTableIter it;
    gpointer conn;
    g_hash_table_iter_init(&it, m->conns);
    while (g_hash_table_iter_next(&it, &conn, NULL))
        g_object_weak_unref(conn, endpoint_conn_gone, m);
    g_hash_table_unref(m->conns);
    if (m->soup) {
        soup_server_disconnect(m->soup);
        g_object_unref(m->soup);
    }
    if (m->text)
        g_bytes_unref(m->text);
    g_free(m->address);
    g_free(m);
}

const char *sp_metrics_endpoint_address(const SpMetricsEndpoint *m)
{
    return m->address;
}
