/* SPDX-License-Identifier: MIT */
/*
 * client.c - the synchronous libvirt remote-protocol client (client.h).
 *
 * Invariants: c->serial grows by one per call; a call writes one whole
 * packet, then reads packets until the REPLY with its serial arrives (MESSAGE
 * packets such as keepalive pings are skipped; anything else is a protocol
 * error).  After any I/O or protocol error the socket is closed (fd -1) so
 * later calls fail cleanly instead of reading a desynchronised stream.
 * Reply sizes are checked against SP_LV_MESSAGE_MAX before allocating.
 */
#include "vmm/libvirt/client.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/libvirt/message.h"
#include "vmm/libvirt/protocol.h"
#include "vmm/libvirt/xmltree.h"

GQuark sp_lv_client_error_quark(void)
{
    return g_quark_from_static_string("sp-lv-client-error-quark");
}
GQuark sp_lv_client_remote_error_quark(void)
{
    return g_quark_from_static_string("sp-lv-client-remote-error-quark");
}

#define CLIENT_TIMEOUT_DEFAULT_MS 60000

struct SpLvClient {
    int fd;         /* connected socket, -1 after an error */
    guint32 serial; /* serial of the next call */
    int timeout_ms; /* per-reply wait */
    char *path;     /* for messages */
};

void sp_lv_client_dom_clear(SpLvClientDom *d)
{
    g_clear_pointer(&d->name, g_free);
}

void sp_lv_client_dom_free(SpLvClientDom *d)
{
    if (!d)
        return;
    sp_lv_client_dom_clear(d);
    g_free(d);
}

static void client_broken(SpLvClient *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static bool client_send_all(SpLvClient *c, const guint8 *buf, gsize len, GError **error)
{
    while (len) {
        ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = errno;
            g_set_error(error, SP_LV_CLIENT_ERROR, SP_LV_CLIENT_ERROR_IO,
                        "cannot send to samepaged at %s: %s", c->path, g_strerror(e));
            client_broken(c);
            return false;
        }
        buf += n;
        len -= (gsize)n;
    }
    return true;
}

static bool client_recv_all(SpLvClient *c, guint8 *buf, gsize len, GError **error)
{
    while (len) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int r = poll(&p, 1, c->timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0) {
            g_set_error(error, SP_LV_CLIENT_ERROR, SP_LV_CLIENT_ERROR_IO,
                        "no reply from samepaged at %s within %d ms", c->path, c->timeout_ms);
            client_broken(c);
            return false;
        }
        ssize_t n = r < 0 ? -1 : recv(c->fd, buf, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = errno;
            g_set_error(error, SP_LV_CLIENT_ERROR, SP_LV_CLIENT_ERROR_IO,
                        "connection to samepaged at %s lost: %s", c->path,
                        n == 0 ? "end of file" : g_strerror(e));
            client_broken(c);
            return false;
        }
        buf += n;
        len -= (gsize)n;
    }
    return true;
}

static bool client_protocol_error(SpLvClient *c, GError **error, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
static bool client_protocol_error(SpLvClient *c, GError **error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, SP_LV_CLIENT_ERROR, SP_LV_CLIENT_ERROR_PROTOCOL,
                "malformed reply from samepaged at %s: %s", c->path, msg);
    client_broken(c);
    return false;
}

/* Reads one whole packet; *pkt holds the bytes after the length word. */
static bool client_read_packet(SpLvClient *c, GByteArray **pkt, GError **error)
{
    guint8 lenbuf[4];
    guint32 total;
    g_autoptr(GError) ferr = NULL;
    if (!client_recv_all(c, lenbuf, 4, error))
        return false;
    if (!sp_lv_frame_length(lenbuf, SP_LV_MESSAGE_MAX, &total, &ferr))
        return client_protocol_error(c, error, "%s", ferr->message);
    g_autoptr(GByteArray) b = g_byte_array_sized_new(total - 4);
    g_byte_array_set_size(b, total - 4);
    if (!client_recv_all(c, b->data, b->len, error))
        return false;
    *pkt = g_steal_pointer(&b);
    return true;
}

bool sp_lv_client_call(SpLvClient *c, gint32 proc, const GByteArray *args, GByteArray **reply,
                       GError **error)
{
    return sp_lv_client_call_program(c, SP_LV_REMOTE_PROGRAM, SP_LV_REMOTE_VERSION, proc, args,
                                     reply, error);
}

bool sp_lv_client_call_program(SpLvClient *c, guint32 prog, guint32 vers, gint32 proc,
                               const GByteArray *args, GByteArray **reply, GError **error)
{
    if (c->fd < 0) {
        g_set_error(error, SP_LV_CLIENT_ERROR, SP_LV_CLIENT_ERROR_IO,
                    "connection to samepaged at %s is closed", c->path);
        return false;
    }
    SpLvHeader h = {.prog = prog,
                    .vers = vers,
                    .proc = proc,
                    .type = SP_LV_CALL,
                    .serial = c->serial++,
                    .status = SP_LV_STATUS_OK};
    g_autoptr(GByteArray) out = g_byte_array_new();
    gsize start = sp_lv_packet_begin(out, &h);
    if (args)
        g_byte_array_append(out, args->data, args->len);
    sp_lv_packet_end(out, start);
    if (!client_send_all(c, out->data, out->len, error))
        return false;

    for (;;) {
        g_autoptr(GByteArray) pkt = NULL;
        g_autoptr(GError) derr = NULL;
        if (!client_read_packet(c, &pkt, error))
            return false;
        SpXdrReader r;
        SpLvHeader rh;
        sp_xdr_reader_init(&r, pkt->data, pkt->len);
        if (!sp_lv_header_decode(&r, &rh, &derr))
            return client_protocol_error(c, error, "%s", derr->message);
        if (rh.type == SP_LV_MESSAGE)
            continue; /* keepalive ping or event: not ours */
        if (rh.prog != prog || rh.vers != vers || rh.type != SP_LV_REPLY || rh.serial != h.serial ||
            rh.proc != proc)
            return client_protocol_error(
                c, error, "unexpected packet (program 0x%x, type %d, procedure %d, serial %u)",
                rh.prog, rh.type, rh.proc, rh.serial);
        if (rh.status == SP_LV_STATUS_ERROR) {
            SpLvRemoteError e;
            if (!sp_lv_error_decode(&r, &e, &derr))
                return client_protocol_error(c, error, "error payload: %s", derr->message);
            if (!sp_xdr_reader_finish(&r, &derr)) {
                sp_lv_remote_error_clear(&e);
                return client_protocol_error(c, error, "error payload: %s", derr->message);
            }
            g_set_error(error, SP_LV_CLIENT_REMOTE_ERROR, e.code, "%s",
                        e.message && *e.message ? e.message : "unknown error");
            sp_lv_remote_error_clear(&e);
            return false;
        }
        if (rh.status != SP_LV_STATUS_OK)
            return client_protocol_error(c, error, "status %d", rh.status);
        g_autoptr(GByteArray) payload = g_byte_array_new();
        g_byte_array_append(payload, pkt->data + r.pos, sp_xdr_reader_left(&r));
        *reply = g_steal_pointer(&payload);
        return true;
    }
}

/* Decodes a reply with fn; any decode failure or trailing byte is fatal. */
typedef bool (*ReplyFn)(SpXdrReader *r, void *out, GError **error);

static bool client_call_decode_program(SpLvClient *c, guint32 prog, gint32 proc,
                                       const GByteArray *args, ReplyFn fn, void *out,
                                       GError **error)
{
    g_autoptr(GByteArray) reply = NULL;
    g_autoptr(GError) derr = NULL;
    guint32 vers = prog == SP_LV_REMOTE_PROGRAM ? SP_LV_REMOTE_VERSION : SP_LV_SAMEPAGE_VERSION;
    if (!sp_lv_client_call_program(c, prog, vers, proc, args, &reply, error))
        return false;
    SpXdrReader r;
    sp_xdr_reader_init(&r, reply->data, reply->len);
    if ((fn && !fn(&r, out, &derr)) || (!derr && !sp_xdr_reader_finish(&r, &derr)))
        return client_protocol_error(c, error, "procedure %d: %s", proc, derr->message);
    return true;
}

static bool client_call_decode(SpLvClient *c, gint32 proc, const GByteArray *args, ReplyFn fn,
                               void *out, GError **error)
{
    return client_call_decode_program(c, SP_LV_REMOTE_PROGRAM, proc, args, fn, out, error);
}

SpLvClient *sp_lv_client_connect(const char *path, bool readonly, GError **error)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        g_set_error(error, SP_LV_CLIENT_ERROR, SP_LV_CLIENT_ERROR_CONNECT,
                    "socket path is longer than %zu bytes", sizeof(sa.sun_path) - 1);
        return NULL;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        g_set_error(error, SP_LV_CLIENT_ERROR, SP_LV_CLIENT_ERROR_CONNECT, "%s", g_strerror(e));
        return NULL;
    }
    g_autoptr(SpLvClient) c = g_new0(SpLvClient, 1);
    c->fd = fd;
    c->serial = 1;
    c->timeout_ms = CLIENT_TIMEOUT_DEFAULT_MS;
    c->path = g_strdup(path);
    g_autoptr(GByteArray) args = g_byte_array_new();
    sp_xdr_write_opt_string(args, "samepage:///system");
    sp_xdr_write_u32(args, readonly ? SP_LV_CONNECT_RO : 0);
    if (!client_call_decode(c, SP_LV_PROC_CONNECT_OPEN, args, NULL, NULL, error)) {
        client_broken(c); /* nothing to close politely */
        return NULL;
    }
    return g_steal_pointer(&c);
}

void sp_lv_client_close(SpLvClient *c)
{
    if (!c)
        return;
    if (c->fd >= 0) {
        c->timeout_ms = MIN(c->timeout_ms, 2000);
        client_call_decode(c, SP_LV_PROC_CONNECT_CLOSE, NULL, NULL, NULL, NULL);
        client_broken(c);
    }
    g_free(c->path);
    g_free(c);
}

void sp_lv_client_set_timeout(SpLvClient *c, int timeout_ms)
{
    c->timeout_ms = timeout_ms;
}

void sp_lv_client_write_dom(GByteArray *w, const SpLvClientDom *d)
{
    sp_xdr_write_string(w, d->name ? d->name : "");
    sp_xdr_write_fixed_opaque(w, d->uuid, 16);
    sp_xdr_write_i32(w, d->id);
}

bool sp_lv_client_read_dom(SpXdrReader *r, SpLvClientDom *d, GError **error)
{
    g_autofree char *name = NULL;
    if (!sp_xdr_read_string(r, &name, SP_LV_STRING_MAX, error) ||
        !sp_xdr_read_fixed_opaque(r, d->uuid, 16, error) || !sp_xdr_read_i32(r, &d->id, error))
        return false;
    d->name = g_steal_pointer(&name);
    return true;
}

static bool reply_dom(SpXdrReader *r, void *out, GError **error)
{
    return sp_lv_client_read_dom(r, out, error);
}

bool sp_lv_client_lookup_by_name(SpLvClient *c, const char *name, SpLvClientDom *out,
                                 GError **error)
{
    g_autoptr(GByteArray) args = g_byte_array_new();
    *out = (SpLvClientDom){0};
    sp_xdr_write_string(args, name);
    if (!client_call_decode(c, SP_LV_PROC_DOMAIN_LOOKUP_BY_NAME, args, reply_dom, out, error)) {
        sp_lv_client_dom_clear(out);
        return false;
    }
    return true;
}

static bool reply_dom_list(SpXdrReader *r, void *out, GError **error)
{
    GPtrArray *list = out;
    guint32 n, ret;
    if (!sp_xdr_read_count(r, &n, SP_LV_DOMAIN_LIST_MAX, 24, error))
        return false;
    for (guint32 i = 0; i < n; i++) {
        g_autoptr(SpLvClientDom) d = g_new0(SpLvClientDom, 1);
        if (!sp_lv_client_read_dom(r, d, error))
            return false;
        g_ptr_array_add(list, g_steal_pointer(&d));
    }
    if (!sp_xdr_read_u32(r, &ret, error))
        return false;
    if (ret != n) {
        g_set_error(error, SP_XDR_ERROR, SP_XDR_ERROR_INVALID,
                    "domain count %u does not match the %u domains sent", ret, n);
        return false;
    }
    return true;
}

GPtrArray *sp_lv_client_list_all(SpLvClient *c, guint32 flags, GError **error)
{
    g_autoptr(GByteArray) args = g_byte_array_new();
    g_autoptr(GPtrArray) list =
        g_ptr_array_new_with_free_func((GDestroyNotify)sp_lv_client_dom_free);
    sp_xdr_write_i32(args, 1); /* need_results */
    sp_xdr_write_u32(args, flags);
    if (!client_call_decode(c, SP_LV_PROC_CONNECT_LIST_ALL_DOMAINS, args, reply_dom_list, list,
                            error))
        return NULL;
    return g_steal_pointer(&list);
}

static bool reply_state(SpXdrReader *r, void *out, GError **error)
{
    gint32 *sr = out;
    return sp_xdr_read_i32(r, &sr[0], error) && sp_xdr_read_i32(r, &sr[1], error);
}

bool sp_lv_client_get_state(SpLvClient *c, const SpLvClientDom *d, gint32 *state, gint32 *reason,
                            GError **error)
{
    g_autoptr(GByteArray) args = g_byte_array_new();
    gint32 sr[2];
    sp_lv_client_write_dom(args, d);
    sp_xdr_write_u32(args, 0);
    if (!client_call_decode(c, SP_LV_PROC_DOMAIN_GET_STATE, args, reply_state, sr, error))
        return false;
    *state = sr[0];
    if (reason)
        *reason = sr[1];
    return true;
}

bool sp_lv_client_dom_void(SpLvClient *c, gint32 proc, const SpLvClientDom *d, bool with_flags,
                           guint32 flags, GError **error)
{
    g_autoptr(GByteArray) args = g_byte_array_new();
    sp_lv_client_write_dom(args, d);
    if (with_flags)
        sp_xdr_write_u32(args, flags);
    return client_call_decode(c, proc, args, NULL, NULL, error);
}

bool sp_lv_client_define_xml(SpLvClient *c, const char *xml, SpLvClientDom *out, GError **error)
{
    g_autoptr(GByteArray) args = g_byte_array_new();
    *out = (SpLvClientDom){0};
    sp_xdr_write_string(args, xml);
    if (!client_call_decode(c, SP_LV_PROC_DOMAIN_DEFINE_XML, args, reply_dom, out, error)) {
        sp_lv_client_dom_clear(out);
        return false;
    }
    return true;
}

void sp_lv_client_dom_stats_free(SpLvClientDomStats *s)
{
    if (!s)
        return;
    sp_lv_client_dom_clear(&s->dom);
    sp_lv_params_free(s->params);
    g_free(s);
}

static bool reply_stats(SpXdrReader *r, void *out, GError **error)
{
    GPtrArray *list = out;
    guint32 n;
    /* a record is at least a dom (24 bytes) and a param count (4) */
    if (!sp_xdr_read_count(r, &n, SP_LV_DOMAIN_LIST_MAX, 28, error))
        return false;
    for (guint32 i = 0; i < n; i++) {
        SpLvClientDomStats *s = g_new0(SpLvClientDomStats, 1);
        s->params = sp_lv_params_new();
        g_ptr_array_add(list, s); /* freed with the list on failure */
        if (!sp_lv_client_read_dom(r, &s->dom, error) ||
            !sp_lv_params_decode(r, s->params, SP_LV_GET_ALL_DOMAIN_STATS_MAX, error))
            return false;
    }
    return true;
}

GPtrArray *sp_lv_client_get_all_domain_stats(SpLvClient *c, GPtrArray *doms, guint32 groups,
                                             guint32 flags, GError **error)
{
    g_autoptr(GByteArray) args = g_byte_array_new();
    g_autoptr(GPtrArray) list =
        g_ptr_array_new_with_free_func((GDestroyNotify)sp_lv_client_dom_stats_free);
    guint n = doms ? doms->len : 0;
    sp_xdr_write_u32(args, n);
    for (guint i = 0; i < n; i++)
        sp_lv_client_write_dom(args, doms->pdata[i]);
    sp_xdr_write_u32(args, groups);
    sp_xdr_write_u32(args, flags);
    if (!client_call_decode(c, SP_LV_PROC_CONNECT_GET_ALL_DOMAIN_STATS, args, reply_stats, list,
                            error))
        return NULL;
    return g_steal_pointer(&list);
}

typedef struct {
    SpLvParams *params;
    gint32 nparams;
} NodeParamsReply;

static bool reply_node_params(SpXdrReader *r, void *out, GError **error)
{
    NodeParamsReply *np = out;
    return sp_lv_params_decode(r, np->params, SP_LV_NODE_MEMORY_PARAMETERS_MAX, error) &&
           sp_xdr_read_i32(r, &np->nparams, error);
}

SpLvParams *sp_lv_client_node_memory_params(SpLvClient *c, GError **error)
{
    /* first ask how many there are, then fetch that many (as virsh does) */
    g_autoptr(SpLvParams) count = sp_lv_params_new();
    NodeParamsReply np = {.params = count};
    g_autoptr(GByteArray) args = g_byte_array_new();
    sp_xdr_write_i32(args, 0);
    sp_xdr_write_u32(args, SP_LV_TYPED_PARAM_STRING_OKAY);
    if (!client_call_decode(c, SP_LV_PROC_NODE_GET_MEMORY_PARAMETERS, args, reply_node_params, &np,
                            error))
        return NULL;
    if (np.nparams < 0 || (guint32)np.nparams > SP_LV_NODE_MEMORY_PARAMETERS_MAX) {
        client_protocol_error(c, error, "node memory parameter count %d", np.nparams);
        return NULL;
    }
    g_autoptr(SpLvParams) p = sp_lv_params_new();
    if (np.nparams == 0)
        return g_steal_pointer(&p);
    NodeParamsReply np2 = {.params = p};
    g_byte_array_set_size(args, 0);
    sp_xdr_write_i32(args, np.nparams);
    sp_xdr_write_u32(args, SP_LV_TYPED_PARAM_STRING_OKAY);
    if (!client_call_decode(c, SP_LV_PROC_NODE_GET_MEMORY_PARAMETERS, args, reply_node_params, &np2,
                            error))
        return NULL;
    return g_steal_pointer(&p);
}

/* --- NUMA cells --- */

static bool reply_string(SpXdrReader *r, void *out, GError **error)
{
    return sp_xdr_read_string(r, out, SP_LV_STRING_MAX, error);
}

static bool reply_cells_free(SpXdrReader *r, void *out, GError **error)
{
    GArray *free_b = out;
    guint32 n;
    if (!sp_xdr_read_u32(r, &n, error))
        return false;
    if (n > SP_LV_NODE_MAX_CELLS) {
        g_set_error(error, SP_LV_CLIENT_ERROR, SP_LV_CLIENT_ERROR_PROTOCOL, "%u cells", n);
        return false;
    }
    for (guint32 i = 0; i < n; i++) {
        guint64 b;
        if (!sp_xdr_read_u64(r, &b, error))
            return false;
        g_array_append_val(free_b, b);
    }
    return true;
}

void sp_lv_client_cell_free(SpLvClientCell *cell)
{
    if (!cell)
        return;
    g_free(cell->cpus);
    g_free(cell);
}

static const SpXmlNode *xml_child(const SpXmlNode *n, const char *name)
{
    for (guint i = 0; n && n->children && i < n->children->len; i++)
        if (!strcmp(((SpXmlNode *)n->children->pdata[i])->name, name))
            return n->children->pdata[i];
    return NULL;
}

/* "0,1,2,5" -> "0-2,5" */
static char *cpus_text(const SpXmlNode *cpus)
{
    GString *s = g_string_new(NULL);
    gint64 first = -1, last = -2;
    for (guint i = 0; cpus && cpus->children && i <= cpus->children->len; i++) {
        const char *id =
            i < cpus->children->len ? sp_xml_attr(cpus->children->pdata[i], "id") : NULL;
        gint64 v = id ? g_ascii_strtoll(id, NULL, 10) : -3;
        if (v == last + 1) {
            last = v;
            continue;
        }
        if (first >= 0) {
            g_string_append_printf(s, "%s%" G_GINT64_FORMAT, s->len ? "," : "", first);
            if (last > first)
                g_string_append_printf(s, "-%" G_GINT64_FORMAT, last);
        }
        first = last = v;
    }
    return g_string_free(s, FALSE);
}

GPtrArray *sp_lv_client_node_cells(SpLvClient *c, GError **error)
{
    g_autofree char *xml = NULL;
    g_autoptr(GByteArray) args = g_byte_array_new();
    if (!client_call_decode(c, SP_LV_PROC_CONNECT_GET_CAPABILITIES, args, reply_string, &xml,
                            error))
        return NULL;
    g_autoptr(SpXmlNode) root = sp_xml_parse(xml, error);
    if (!root)
        return NULL;
    const SpXmlNode *cells = xml_child(xml_child(xml_child(root, "host"), "topology"), "cells");
    g_autoptr(GPtrArray) out =
        g_ptr_array_new_with_free_func((GDestroyNotify)sp_lv_client_cell_free);
    for (guint i = 0; cells && cells->children && i < cells->children->len; i++) {
        const SpXmlNode *cell = cells->children->pdata[i];
        const SpXmlNode *mem = xml_child(cell, "memory");
        SpLvClientCell *cc = g_new0(SpLvClientCell, 1);
        const char *id = sp_xml_attr(cell, "id");
        cc->id = id ? (gint32)g_ascii_strtoll(id, NULL, 10) : (gint32)i;
        cc->memory_kib = mem && mem->text ? g_ascii_strtoull(mem->text, NULL, 10) : 0;
        cc->cpus = cpus_text(xml_child(cell, "cpus"));
        g_ptr_array_add(out, cc);
        /* this cell's free memory */
        g_autoptr(GArray) free_b = g_array_new(FALSE, FALSE, sizeof(guint64));
        g_byte_array_set_size(args, 0);
        sp_xdr_write_i32(args, cc->id);
        sp_xdr_write_i32(args, 1);
        if (!client_call_decode(c, SP_LV_PROC_NODE_GET_CELLS_FREE_MEMORY, args, reply_cells_free,
                                free_b, error))
            return NULL;
        cc->free_kib = free_b->len ? g_array_index(free_b, guint64, 0) / 1024 : 0;
    }
    return g_steal_pointer(&out);
}

/* --- samepage program --- */

static bool reply_clone(SpXdrReader *r, void *out, GError **error)
{
    GPtrArray *kids = out;
    guint32 n;
    if (!sp_xdr_read_u32(r, &n, error))
        return false;
    if (n > SP_LV_CLONE_NAMES_MAX) {
        g_set_error(error, SP_XDR_ERROR, SP_XDR_ERROR_TOO_LONG, "%u children", n);
        return false;
    }
    for (guint32 i = 0; i < n; i++) {
        char *name = NULL;
        if (!sp_xdr_read_string(r, &name, SP_LV_CLONE_NAME_MAX, error))
            return false;
        g_ptr_array_add(kids, name);
    }
    return true;
}

GPtrArray *sp_lv_client_clone(SpLvClient *c, const char *name, guint32 count,
                              const char *const *names, guint32 n_names, GError **error)
{
    g_autoptr(GByteArray) args = g_byte_array_new();
    sp_xdr_write_string(args, name);
    sp_xdr_write_u32(args, count);
    sp_xdr_write_u32(args, n_names);
    for (guint32 i = 0; i < n_names; i++)
        sp_xdr_write_string(args, names[i]);
    g_autoptr(GPtrArray) kids = g_ptr_array_new_with_free_func(g_free);
    if (!client_call_decode_program(c, SP_LV_SAMEPAGE_PROGRAM, SP_LV_SAMEPAGE_PROC_CLONE, args,
                                    reply_clone, kids, error))
        return NULL;
    return g_steal_pointer(&kids);
}

static bool reply_clone_groups(SpXdrReader *r, void *out, GError **error)
{
    GPtrArray *groups = out;
    guint32 n;
    if (!sp_xdr_read_u32(r, &n, error))
        return false;
    if (n > SP_LV_CLONE_GROUPS_MAX) {
        g_set_error(error, SP_XDR_ERROR, SP_XDR_ERROR_TOO_LONG, "%u clone groups", n);
        return false;
    }
    for (guint32 i = 0; i < n; i++) {
        SpLvParams *p = sp_lv_params_new();
        g_ptr_array_add(groups, p);
        if (!sp_lv_params_decode(r, p, SP_LV_CLONE_GROUP_PARAMS, error))
            return false;
    }
    return true;
}

GPtrArray *sp_lv_client_clone_groups(SpLvClient *c, GError **error)
{
    g_autoptr(GByteArray) args = g_byte_array_new();
    sp_xdr_write_u32(args, 0);
    g_autoptr(GPtrArray) groups = g_ptr_array_new_with_free_func((GDestroyNotify)sp_lv_params_free);
    if (!client_call_decode_program(c, SP_LV_SAMEPAGE_PROGRAM, SP_LV_SAMEPAGE_PROC_CLONE_GROUPS,
                                    args, reply_clone_groups, groups, error))
        return NULL;
    return g_steal_pointer(&groups);
}
