/* SPDX-License-Identifier: MIT */
/*
 * session.c - packet reassembly and dispatch for one connection.
 *
 * Flow per complete packet: validate the length word (sp_lv_frame_length)
 * as soon as 4 bytes are buffered, so an oversized packet is refused before
 * its body is buffered; decode the header; then
 *   keepalive program: PING -> PONG, PONG ignored, anything else fatal;
 *   remote program:    only CALL with status OK; version 1; dispatch;
 *   samepage program:  (0x53504745, procs-samepage.c) the same rules, its
 *                      own procedure table;
 *   other program:     CALL gets "cannot find program" and the session ends.
 * Dispatch order: denied peer -> unknown procedure ("unknown procedure: N",
 * VIR_ERR_RPC, which clients turn into VIR_ERR_NO_SUPPORT) -> not yet open
 * -> read-only check (VIR_ERR_OPERATION_DENIED) -> handler.  A handler's
 * decode error (SP_XDR_ERROR) ends the session after an error reply.
 * With a deferral function (server.c's workers), a call whose procedure is
 * not connection-level (sp_lv_proc_is_session) is copied into an SpLvCall after these checks and
 * handed out; sp_lv_call_run() later runs the same handler step.
 *
 * Invariant: inbuf never holds more than one packet's bytes beyond the
 * current read, and never more than inbound_max bytes of one packet.
 */
#include "vmm/libvirt/session.h"

#include <string.h>

#include "vmm/libvirt/message.h"
#include "vmm/libvirt/procs.h"

GQuark sp_lv_error_quark(void)
{
    return g_quark_from_static_string("sp-lv-error-quark");
}

SpLvSession *sp_lv_session_new(const SpLvBackend *backend, const SpLvEndpointConfig *cfg,
                               bool readonly, const char *deny_reason)
{
    SpLvSession *s = g_new0(SpLvSession, 1);
    s->backend = backend;
    s->cfg = cfg;
    s->inbuf = g_byte_array_new();
    s->readonly = readonly;
    s->deny_reason = g_strdup(deny_reason);
    s->callbacks = g_array_new(FALSE, FALSE, sizeof(SpLvEventCallback));
    s->next_callback = 1;
    return s;
}

void sp_lv_session_free(SpLvSession *s)
{
    if (!s)
        return;
    g_byte_array_unref(s->inbuf);
    g_array_unref(s->callbacks);
    g_free(s->deny_reason);
    g_free(s);
}

void sp_lv_session_set_defer(SpLvSession *s, SpLvDeferFn fn, void *opaque)
{
    s->defer = fn;
    s->defer_opaque = opaque;
}

gsize sp_lv_session_wanted(const SpLvSession *s)
{
    if (s->inbuf->len < SP_LV_LEN_SIZE)
        return SP_LV_LEN_SIZE - s->inbuf->len;
    guint32 be;
    memcpy(&be, s->inbuf->data, sizeof(be));
    guint32 total = GUINT32_FROM_BE(be);
    /* a bad length is refused by the next feed; ask for one byte to get there */
    return total > s->inbuf->len ? total - s->inbuf->len : 1;
}

bool sp_lv_session_is_open(const SpLvSession *s)
{
    return s->opened;
}

bool sp_lv_session_is_readonly(const SpLvSession *s)
{
    return s->readonly;
}

static const SpLvProc *const proc_tables[] = {
    sp_lv_procs_connect,   sp_lv_procs_domain,   sp_lv_procs_stats, sp_lv_procs_node,
    sp_lv_procs_lifecycle, sp_lv_procs_vcpu,     sp_lv_procs_host,  sp_lv_procs_events,
    sp_lv_procs_memtune,   sp_lv_procs_numatune,
};

const SpLvProc *sp_lv_proc_find(gint32 proc)
{
    const gsize lens[] = {sp_lv_procs_connect_len,   sp_lv_procs_domain_len,
                          sp_lv_procs_stats_len,     sp_lv_procs_node_len,
                          sp_lv_procs_lifecycle_len, sp_lv_procs_vcpu_len,
                          sp_lv_procs_host_len,      sp_lv_procs_events_len,
                          sp_lv_procs_memtune_len,   sp_lv_procs_numatune_len};
    for (gsize t = 0; t < G_N_ELEMENTS(proc_tables); t++)
        for (gsize i = 0; i < lens[t]; i++)
            if (proc_tables[t][i].proc == proc)
                return &proc_tables[t][i];
    return NULL;
}

bool sp_lv_proc_is_session(const SpLvProc *p)
{
    return (p >= sp_lv_procs_connect && p < sp_lv_procs_connect + sp_lv_procs_connect_len) ||
           (p >= sp_lv_procs_events && p < sp_lv_procs_events + sp_lv_procs_events_len);
}

static void session_pong_append(GByteArray *out)
{
    SpLvHeader h = {.prog = SP_LV_KEEPALIVE_PROGRAM,
                    .vers = SP_LV_KEEPALIVE_VERSION,
                    .proc = SP_LV_KEEPALIVE_PONG,
                    .type = SP_LV_MESSAGE,
                    .serial = 0,
                    .status = SP_LV_STATUS_OK};
    gsize start = sp_lv_packet_begin(out, &h);
    sp_lv_packet_end(out, start);
}

static bool session_keepalive(SpLvSession *s, const SpLvHeader *h, SpXdrReader *r, GByteArray *out,
                              GError **error)
{
    if (h->vers != SP_LV_KEEPALIVE_VERSION || h->type != SP_LV_MESSAGE ||
        sp_xdr_reader_left(r) != 0 ||
        (h->proc != SP_LV_KEEPALIVE_PING && h->proc != SP_LV_KEEPALIVE_PONG)) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_RPC,
                    "malformed keepalive message (version %u, type %d, procedure %d)", h->vers,
                    h->type, h->proc);
        return false;
    }
    if (h->proc == SP_LV_KEEPALIVE_PING)
        session_pong_append(out);
    return true;
}

struct SpLvCall {
    SpLvSession *s;    /* the connection (outlives the call: server.c) */
    SpLvHeader h;      /* the call's header */
    const SpLvProc *p; /* its procedure */
    guint8 *args;      /* a copy of its arguments */
    gsize len;         /* their bytes */
};

/* Runs handler p on args and appends the reply (or the error reply) to
 * out; false ends the session (a decode error). */
static bool call_exec(SpLvSession *s, const SpLvHeader *h, const SpLvProc *p, SpXdrReader *args,
                      GByteArray *out, GError **error)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GByteArray) ret = g_byte_array_new();
    bool ok = p->fn(s, args, ret, &err);
    if (ok && sp_xdr_reader_left(args) != 0) {
        /* a handler forgot sp_lv_args_end: treat as malformed */
        ok = sp_xdr_reader_finish(args, &err);
    }
    if (ok && ret->len + SP_LV_LEN_SIZE + SP_LV_HEADER_SIZE > SP_LV_MESSAGE_MAX) {
        ok = false;
        g_set_error(&err, SP_LV_ERROR, SP_LV_ERR_INTERNAL_ERROR,
                    "internal error: reply of %u bytes to %s is too large for the protocol",
                    ret->len, p->api);
    }
    if (ok) {
        SpLvHeader rh = *h;
        rh.type = SP_LV_REPLY;
        rh.status = SP_LV_STATUS_OK;
        gsize start = sp_lv_packet_begin(out, &rh);
        g_byte_array_append(out, ret->data, ret->len);
        sp_lv_packet_end(out, start);
        return true;
    }
    if (err->domain == SP_XDR_ERROR) {
        g_autofree char *msg = g_strdup_printf(
            "cannot decode the arguments of %s (procedure %d): %s", p->api, h->proc, err->message);
        sp_lv_reply_error_append(out, h, SP_LV_ERR_RPC, SP_LV_FROM_RPC, msg);
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_RPC, "%s", msg);
        return false;
    }
    gint32 code = err->domain == SP_LV_ERROR ? err->code : SP_LV_ERR_INTERNAL_ERROR;
    sp_lv_reply_error_append(out, h, code,
                             code == SP_LV_ERR_NO_DOMAIN ? SP_LV_FROM_DOMAIN : SP_LV_FROM_REMOTE,
                             err->message);
    return true;
}

bool sp_lv_call_run(SpLvCall *call, GByteArray *out, GError **error)
{
    SpXdrReader r;
    sp_xdr_reader_init(&r, call->args, call->len);
    return call_exec(call->s, &call->h, call->p, &r, out, error);
}

void sp_lv_call_free(SpLvCall *call)
{
    if (!call)
        return;
    g_free(call->args);
    g_free(call);
}

/* Runs one CALL of the remote program; false ends the session. */
static bool session_dispatch(SpLvSession *s, const SpLvHeader *h, SpXdrReader *args,
                             GByteArray *out, GError **error)
{
    const SpLvProc *p;

    if (s->deny_reason) {
        sp_lv_reply_error_append(out, h, SP_LV_ERR_ACCESS_DENIED, SP_LV_FROM_RPC, s->deny_reason);
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_ACCESS_DENIED, "%s", s->deny_reason);
        return false;
    }
    p = h->prog == SP_LV_SAMEPAGE_PROGRAM ? sp_lv_samepage_proc_find(h->proc)
                                          : sp_lv_proc_find(h->proc);
    if (!p) {
        g_autofree char *msg = g_strdup_printf("unknown procedure: %d", h->proc);
        sp_lv_reply_error_append(out, h, SP_LV_ERR_RPC, SP_LV_FROM_RPC, msg);
        return true;
    }
    if (!s->opened && !p->before_open) {
        sp_lv_reply_error_append(out, h, SP_LV_ERR_INTERNAL_ERROR, SP_LV_FROM_RPC,
                                 "internal error: connection not open");
        return true;
    }
    if (p->mutating && s->readonly) {
        g_autofree char *msg =
            g_strdup_printf("operation forbidden: read only access prevents %s", p->api);
        sp_lv_reply_error_append(out, h, SP_LV_ERR_OPERATION_DENIED, SP_LV_FROM_RPC, msg);
        return true;
    }
    if (s->defer && !sp_lv_proc_is_session(p)) {
        SpLvCall *call = g_new0(SpLvCall, 1);
        call->s = s;
        call->h = *h;
        call->p = p;
        call->len = sp_xdr_reader_left(args);
        call->args = g_memdup2(args->buf + args->pos, call->len);
        s->defer(s->defer_opaque, call, p->mutating);
        return true;
    }
    return call_exec(s, h, p, args, out, error);
}

static bool session_packet(SpLvSession *s, const guint8 *pkt, gsize len, GByteArray *out,
                           GError **error)
{
    SpXdrReader r;
    SpLvHeader h;
    sp_xdr_reader_init(&r, pkt + SP_LV_LEN_SIZE, len - SP_LV_LEN_SIZE);
    if (!sp_lv_header_decode(&r, &h, error))
        return false;

    if (h.prog == SP_LV_KEEPALIVE_PROGRAM)
        return session_keepalive(s, &h, &r, out, error);

    bool remote = h.prog == SP_LV_REMOTE_PROGRAM && h.vers == SP_LV_REMOTE_VERSION;
    bool samepage = h.prog == SP_LV_SAMEPAGE_PROGRAM && h.vers == SP_LV_SAMEPAGE_VERSION;
    if (!remote && !samepage) {
        g_autofree char *msg = g_strdup_printf("cannot find program %u version %u", h.prog, h.vers);
        if (h.type == SP_LV_CALL)
            sp_lv_reply_error_append(out, &h, SP_LV_ERR_RPC, SP_LV_FROM_RPC, msg);
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_RPC, "%s", msg);
        return false;
    }
    if (h.type != SP_LV_CALL || h.status != SP_LV_STATUS_OK) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_RPC,
                    "unexpected message type %d status %d from client", h.type, h.status);
        return false;
    }
    return session_dispatch(s, &h, &r, out, error);
}

bool sp_lv_session_feed(SpLvSession *s, const guint8 *data, gsize len, GByteArray *out,
                        GError **error)
{
    while (len > 0) {
        /* take just enough bytes to complete the length word or the packet */
        gsize want;
        guint32 total = 0;
        if (s->inbuf->len < SP_LV_LEN_SIZE) {
            want = SP_LV_LEN_SIZE - s->inbuf->len;
        } else {
            if (!sp_lv_frame_length(s->inbuf->data, s->cfg->inbound_max, &total, error))
                return false;
            want = total - s->inbuf->len;
        }
        gsize take = MIN(want, len);
        g_byte_array_append(s->inbuf, data, take);
        data += take;
        len -= take;

        if (s->inbuf->len == SP_LV_LEN_SIZE && total == 0) {
            if (!sp_lv_frame_length(s->inbuf->data, s->cfg->inbound_max, &total, error))
                return false;
        }
        if (total && s->inbuf->len == total) {
            bool ok = session_packet(s, s->inbuf->data, total, out, error);
            g_byte_array_set_size(s->inbuf, 0);
            if (!ok)
                return false;
        }
    }
    return true;
}
