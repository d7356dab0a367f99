/*
 * test-libvirt-message.c - unit tests of packet framing, headers, error
 * replies (vmm/libvirt/message.c) and of a session's dispatch
 * (vmm/libvirt/session.c) driven byte-exactly with the in-memory test
 * backend: serial echo, unknown procedure, not-open, read-only denial,
 * keepalive, and every way a packet can end the connection.
 */
#include <string.h>

#include "tests/libvirt/test-backend.h"
#include "vmm/libvirt/message.h"
#include "vmm/libvirt/protocol.h"
#include "vmm/libvirt/session.h"

static const SpLvEndpointConfig cfg = {
    .hv_type = "samepage", .hv_version = 1000, .inbound_max = 4096};

typedef struct {
    SpLvTestBackend *tb;
    SpLvBackend be;
    SpLvSession *s;
    GByteArray *out;
} Fixture;

static void fx_setup(Fixture *f, gconstpointer data)
{
    f->tb = sp_lv_test_backend_new();
    f->be = sp_lv_test_backend_get(f->tb);
    f->s = sp_lv_session_new(&f->be, &cfg, data != NULL, NULL);
    f->out = g_byte_array_new();
}

static void fx_teardown(Fixture *f, gconstpointer data)
{
    sp_lv_session_free(f->s);
    sp_lv_test_backend_free(f->tb);
    g_byte_array_unref(f->out);
}

/* Builds a CALL packet of the remote program. */
static GByteArray *call_new(gint32 proc, guint32 serial, const GByteArray *payload)
{
    GByteArray *p = g_byte_array_new();
    SpLvHeader h = {SP_LV_REMOTE_PROGRAM, SP_LV_REMOTE_VERSION, proc, SP_LV_CALL, serial,
                    SP_LV_STATUS_OK};
    gsize start = sp_lv_packet_begin(p, &h);
    if (payload)
        g_byte_array_append(p, payload->data, payload->len);
    sp_lv_packet_end(p, start);
    return p;
}

/* Pops the first reply packet from out; returns its payload reader. */
static void reply_pop(GByteArray *out, SpLvHeader *h, GByteArray *payload)
{
    guint32 total = 0;
    g_assert_cmpuint(out->len, >=, 28);
    g_assert_true(sp_lv_frame_length(out->data, SP_LV_MESSAGE_MAX, &total, NULL));
    g_assert_cmpuint(total, <=, out->len);
    SpXdrReader r;
    sp_xdr_reader_init(&r, out->data + 4, total - 4);
    g_assert_true(sp_lv_header_decode(&r, h, NULL));
    g_byte_array_set_size(payload, 0);
    g_byte_array_append(payload, out->data + 28, total - 28);
    g_byte_array_remove_range(out, 0, total);
}

static bool feed(Fixture *f, GByteArray *pkt, GError **error)
{
    return sp_lv_session_feed(f->s, pkt->data, pkt->len, f->out, error);
}

/* Sends a call and expects an OK reply echoing prog/vers/proc/serial. */
static void call_ok(Fixture *f, gint32 proc, guint32 serial, const GByteArray *args,
                    GByteArray *ret)
{
    g_autoptr(GByteArray) pkt = call_new(proc, serial, args);
    g_autoptr(GError) err = NULL;
    SpLvHeader h;
    g_assert_true(feed(f, pkt, &err));
    g_assert_no_error(err);
    reply_pop(f->out, &h, ret);
    g_assert_cmphex(h.prog, ==, SP_LV_REMOTE_PROGRAM);
    g_assert_cmpuint(h.vers, ==, 1);
    g_assert_cmpint(h.proc, ==, proc);
    g_assert_cmpint(h.type, ==, SP_LV_REPLY);
    g_assert_cmpuint(h.serial, ==, serial);
    g_assert_cmpint(h.status, ==, SP_LV_STATUS_OK);
}

/* Expects an error reply with this code; returns its message. */
static char *reply_error(GByteArray *out, guint32 serial, gint32 code)
{
    g_autoptr(GByteArray) payload = g_byte_array_new();
    SpLvHeader h;
    SpLvRemoteError e;
    SpXdrReader r;
    reply_pop(out, &h, payload);
    g_assert_cmpint(h.type, ==, SP_LV_REPLY);
    g_assert_cmpint(h.status, ==, SP_LV_STATUS_ERROR);
    g_assert_cmpuint(h.serial, ==, serial);
    sp_xdr_reader_init(&r, payload->data, payload->len);
    g_assert_true(sp_lv_error_decode(&r, &e, NULL));
    g_assert_true(sp_xdr_reader_finish(&r, NULL));
    g_assert_cmpint(e.code, ==, code);
    g_assert_cmpint(e.level, ==, SP_LV_ERR_LEVEL_ERROR);
    char *msg = g_steal_pointer(&e.message);
    sp_lv_remote_error_clear(&e);
    return msg;
}

static void do_open(Fixture *f, guint32 flags)
{
    g_autoptr(GByteArray) args = g_byte_array_new();
    g_autoptr(GByteArray) ret = g_byte_array_new();
    sp_xdr_write_opt_string(args, "samepage:///system");
    sp_xdr_write_u32(args, flags);
    call_ok(f, SP_LV_PROC_CONNECT_OPEN, 2, args, ret);
    g_assert_cmpuint(ret->len, ==, 0);
}

static void test_frame_length(void)
{
    guint32 total;
    g_autoptr(GError) err = NULL;
    static const guint8 ok[] = {0, 0, 0, 28}, small[] = {0, 0, 0, 27}, big[] = {0, 0x10, 0, 1},
                        huge[] = {0xff, 0xff, 0xff, 0xff};
    g_assert_true(sp_lv_frame_length(ok, 1 << 20, &total, NULL));
    g_assert_cmpuint(total, ==, 28);
    g_assert_false(sp_lv_frame_length(small, 1 << 20, &total, &err));
    g_clear_error(&err);
    g_assert_false(sp_lv_frame_length(big, 1 << 20, &total, &err));
    g_assert_error(err, SP_XDR_ERROR, SP_XDR_ERROR_TOO_LONG);
    g_clear_error(&err);
    g_assert_false(sp_lv_frame_length(huge, SP_LV_MESSAGE_MAX, &total, &err));
}

static void test_error_layout(void)
{
    g_autoptr(GByteArray) w = g_byte_array_new();
    sp_lv_error_encode(w, 42, 20, "Domain not found");
    /* code, domain, msg flag, len 16, 16 bytes, level, dom 0, str1-3 0,
     * int1, int2, net 0 */
    static const guint8 expect[] = {0,   0,   0,   42,  0,   0,   0,   20,  0,   0,   0,   1,   0,
                                    0,   0,   16,  'D', 'o', 'm', 'a', 'i', 'n', ' ', 'n', 'o', 't',
                                    ' ', 'f', 'o', 'u', 'n', 'd', 0,   0,   0,   2,   0,   0,   0,
                                    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
                                    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0};
    g_assert_cmpmem(w->data, w->len, expect, sizeof(expect));
    SpLvRemoteError e;
    SpXdrReader r;
    sp_xdr_reader_init(&r, w->data, w->len);
    g_assert_true(sp_lv_error_decode(&r, &e, NULL));
    g_assert_cmpstr(e.message, ==, "Domain not found");
    sp_lv_remote_error_clear(&e);
    for (gsize cut = 0; cut < w->len; cut++) {
        g_autoptr(GError) err = NULL;
        sp_xdr_reader_init(&r, w->data, cut);
        g_assert_false(sp_lv_error_decode(&r, &e, &err));
        g_assert_null(e.message);
    }
}

static void test_auth_list_serial0(Fixture *f, gconstpointer data)
{
    g_autoptr(GByteArray) ret = g_byte_array_new();
    call_ok(f, SP_LV_PROC_AUTH_LIST, 0, NULL, ret);
    static const guint8 expect[] = {0, 0, 0, 1, 0, 0, 0, 0};
    g_assert_cmpmem(ret->data, ret->len, expect, sizeof(expect));
}

static void test_not_open(Fixture *f, gconstpointer data)
{
    g_autoptr(GByteArray) pkt = call_new(SP_LV_PROC_CONNECT_LIST_ALL_DOMAINS, 5, NULL);
    g_assert_true(feed(f, pkt, NULL));
    g_autofree char *msg = reply_error(f->out, 5, SP_LV_ERR_INTERNAL_ERROR);
    g_assert_nonnull(strstr(msg, "not open"));
}

static void test_unknown_procedure(Fixture *f, gconstpointer data)
{
    do_open(f, 0);
    g_autoptr(GByteArray) pkt = call_new(426 + 1000, 7, NULL);
    g_assert_true(feed(f, pkt, NULL));
    g_autofree char *msg = reply_error(f->out, 7, SP_LV_ERR_RPC);
    g_assert_cmpstr(msg, ==, "unknown procedure: 1426");
    /* the session goes on */
    g_autoptr(GByteArray) ret = g_byte_array_new();
    call_ok(f, SP_LV_PROC_CONNECT_GET_TYPE, 8, NULL, ret);
    static const guint8 expect[] = {0, 0, 0, 8, 's', 'a', 'm', 'e', 'p', 'a', 'g', 'e'};
    g_assert_cmpmem(ret->data, ret->len, expect, sizeof(expect));
}

static void test_node_info_layout(Fixture *f, gconstpointer data)
{
    do_open(f, 0);
    g_autoptr(GByteArray) ret = g_byte_array_new();
    call_ok(f, SP_LV_PROC_NODE_GET_INFO, 3, NULL, ret);
    g_assert_cmpuint(ret->len, ==, 128 + 8 + 6 * 4);
    g_assert_cmpuint(ret->data[3], ==, 'x');
    g_assert_cmpuint(ret->data[7], ==, '8');
}

static void test_readonly_denied(Fixture *f, gconstpointer data)
{
    do_open(f, SP_LV_CONNECT_RO);
    g_assert_true(sp_lv_session_is_readonly(f->s));
    g_autoptr(GByteArray) args = g_byte_array_new();
    sp_xdr_write_string(args, "alpha");
    static const guint8 uuid[16] = {0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33,
                                    0x44, 0x44, 0x55, 0x55, 0x55, 0x55, 0x55, 0x51};
    sp_xdr_write_fixed_opaque(args, uuid, 16);
    sp_xdr_write_i32(args, 1);
    g_autoptr(GByteArray) pkt = call_new(SP_LV_PROC_DOMAIN_DESTROY, 9, args);
    g_assert_true(feed(f, pkt, NULL));
    g_autofree char *msg = reply_error(f->out, 9, SP_LV_ERR_OPERATION_DENIED);
    g_assert_cmpstr(msg, ==, "operation forbidden: read only access prevents virDomainDestroy");
    /* reading still works, and alpha still runs */
    g_autoptr(GByteArray) st = g_byte_array_new();
    sp_xdr_write_u32(args, 0);
    call_ok(f, SP_LV_PROC_DOMAIN_GET_STATE, 10, args, st);
    static const guint8 running[] = {0, 0, 0, 1, 0, 0, 0, 1};
    g_assert_cmpmem(st->data, st->len, running, sizeof(running));
}

static void test_keepalive(Fixture *f, gconstpointer data)
{
    g_autoptr(GByteArray) ping = g_byte_array_new();
    SpLvHeader h = {SP_LV_KEEPALIVE_PROGRAM, 1, SP_LV_KEEPALIVE_PING, SP_LV_MESSAGE, 0, 0};
    gsize start = sp_lv_packet_begin(ping, &h);
    sp_lv_packet_end(ping, start);
    g_assert_true(feed(f, ping, NULL));
    g_autoptr(GByteArray) payload = g_byte_array_new();
    SpLvHeader r;
    reply_pop(f->out, &r, payload);
    g_assert_cmphex(r.prog, ==, SP_LV_KEEPALIVE_PROGRAM);
    g_assert_cmpint(r.proc, ==, SP_LV_KEEPALIVE_PONG);
    g_assert_cmpint(r.type, ==, SP_LV_MESSAGE);
    g_assert_cmpuint(r.serial, ==, 0);
    g_assert_cmpuint(payload->len, ==, 0);
}

static void test_byte_at_a_time(Fixture *f, gconstpointer data)
{
    g_autoptr(GByteArray) a = call_new(SP_LV_PROC_AUTH_LIST, 1, NULL);
    g_autoptr(GByteArray) b = call_new(SP_LV_PROC_AUTH_LIST, 2, NULL);
    g_byte_array_append(a, b->data, b->len);
    for (guint i = 0; i < a->len; i++)
        g_assert_true(sp_lv_session_feed(f->s, a->data + i, 1, f->out, NULL));
    g_autoptr(GByteArray) payload = g_byte_array_new();
    SpLvHeader h;
    reply_pop(f->out, &h, payload);
    g_assert_cmpuint(h.serial, ==, 1);
    reply_pop(f->out, &h, payload);
    g_assert_cmpuint(h.serial, ==, 2);
    g_assert_cmpuint(f->out->len, ==, 0);
}

static void test_fatal_oversized(Fixture *f, gconstpointer data)
{
    /* the length word alone ends the session: the body is never buffered */
    static const guint8 len[] = {0, 0, 0x10, 0x01};
    g_autoptr(GError) err = NULL;
    g_assert_false(sp_lv_session_feed(f->s, len, 4, f->out, &err));
    g_assert_nonnull(err);
    g_assert_cmpuint(f->out->len, ==, 0);
}

static void test_fatal_short_length(Fixture *f, gconstpointer data)
{
    static const guint8 len[] = {0, 0, 0, 4};
    g_autoptr(GError) err = NULL;
    g_assert_false(sp_lv_session_feed(f->s, len, 4, f->out, &err));
}

static void test_fatal_wrong_program(Fixture *f, gconstpointer data)
{
    g_autoptr(GByteArray) pkt = call_new(1, 4, NULL);
    pkt->data[4 + 3] ^= 1; /* prog 0x20008087: the QEMU program */
    g_autoptr(GError) err = NULL;
    g_assert_false(feed(f, pkt, &err));
    g_autofree char *msg = reply_error(f->out, 4, SP_LV_ERR_RPC);
    g_assert_nonnull(strstr(msg, "cannot find program"));
}

static void test_fatal_reply_type(Fixture *f, gconstpointer data)
{
    g_autoptr(GByteArray) pkt = call_new(SP_LV_PROC_AUTH_LIST, 4, NULL);
    pkt->data[4 + 15] = SP_LV_REPLY;
    g_autoptr(GError) err = NULL;
    g_assert_false(feed(f, pkt, &err));
    g_assert_cmpuint(f->out->len, ==, 0);
}

static void test_fatal_bad_args(Fixture *f, gconstpointer data)
{
    do_open(f, 0);
    /* LOOKUP_BY_NAME whose string claims more bytes than the packet has */
    g_autoptr(GByteArray) args = g_byte_array_new();
    sp_xdr_write_u32(args, 100);
    sp_xdr_write_u32(args, 0x41414141);
    g_autoptr(GByteArray) pkt = call_new(SP_LV_PROC_DOMAIN_LOOKUP_BY_NAME, 11, args);
    g_autoptr(GError) err = NULL;
    g_assert_false(feed(f, pkt, &err));
    g_autofree char *msg = reply_error(f->out, 11, SP_LV_ERR_RPC);
    g_assert_nonnull(strstr(msg, "cannot decode"));
}

static void test_fatal_trailing(Fixture *f, gconstpointer data)
{
    g_autoptr(GByteArray) args = g_byte_array_new();
    sp_xdr_write_u32(args, 0);
    g_autoptr(GByteArray) pkt = call_new(SP_LV_PROC_AUTH_LIST, 12, args);
    g_autoptr(GError) err = NULL;
    g_assert_false(feed(f, pkt, &err));
    g_autofree char *msg = reply_error(f->out, 12, SP_LV_ERR_RPC);
    g_assert_nonnull(strstr(msg, "trailing"));
}

static void test_denied_peer(void)
{
    SpLvTestBackend *tb = sp_lv_test_backend_new();
    SpLvBackend be = sp_lv_test_backend_get(tb);
    g_autoptr(SpLvSession) s = sp_lv_session_new(&be, &cfg, false, "access denied: uid 65534");
    g_autoptr(GByteArray) out = g_byte_array_new();
    g_autoptr(GByteArray) pkt = call_new(SP_LV_PROC_AUTH_LIST, 0, NULL);
    g_autoptr(GError) err = NULL;
    g_assert_false(sp_lv_session_feed(s, pkt->data, pkt->len, out, &err));
    g_autofree char *msg = reply_error(out, 0, SP_LV_ERR_ACCESS_DENIED);
    g_assert_cmpstr(msg, ==, "access denied: uid 65534");
    sp_lv_test_backend_free(tb);
}

static void test_memory_params_two_step(Fixture *f, gconstpointer data)
{
    do_open(f, 0);
    g_autoptr(GByteArray) args = g_byte_array_new();
    g_autoptr(GByteArray) ret = g_byte_array_new();
    sp_xdr_write_i32(args, 0);
    sp_xdr_write_u32(args, SP_LV_TYPED_PARAM_STRING_OKAY);
    call_ok(f, SP_LV_PROC_NODE_GET_MEMORY_PARAMETERS, 3, args, ret);
    static const guint8 count[] = {0, 0, 0, 0, 0, 0, 0, 8};
    g_assert_cmpmem(ret->data, ret->len, count, sizeof(count));
    /* over the protocol limit: error, session goes on */
    g_byte_array_set_size(args, 0);
    sp_xdr_write_i32(args, 65);
    sp_xdr_write_u32(args, 0);
    g_autoptr(GByteArray) pkt = call_new(SP_LV_PROC_NODE_GET_MEMORY_PARAMETERS, 4, args);
    g_assert_true(feed(f, pkt, NULL));
    g_autofree char *msg = reply_error(f->out, 4, SP_LV_ERR_RPC);
    g_assert_nonnull(msg);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/libvirt/message/frame-length", test_frame_length);
    g_test_add_func("/libvirt/message/error-layout", test_error_layout);
    g_test_add_func("/libvirt/session/denied-peer", test_denied_peer);
#define FX(path, fn, ro) g_test_add(path, Fixture, ro, fx_setup, fn, fx_teardown)
    FX("/libvirt/session/auth-list-serial-0", test_auth_list_serial0, NULL);
    FX("/libvirt/session/not-open", test_not_open, NULL);
    FX("/libvirt/session/unknown-procedure", test_unknown_procedure, NULL);
    FX("/libvirt/session/node-info-layout", test_node_info_layout, NULL);
    FX("/libvirt/session/readonly-denied", test_readonly_denied, NULL);
    FX("/libvirt/session/keepalive", test_keepalive, NULL);
    FX("/libvirt/session/byte-at-a-time", test_byte_at_a_time, NULL);
    FX("/libvirt/session/memory-params-two-step", test_memory_params_two_step, NULL);
    FX("/libvirt/session/fatal-oversized", test_fatal_oversized, NULL);
    FX("/libvirt/session/fatal-short-length", test_fatal_short_length, NULL);
    FX("/libvirt/session/fatal-wrong-program", test_fatal_wrong_program, NULL);
    FX("/libvirt/session/fatal-reply-type", test_fatal_reply_type, NULL);
    FX("/libvirt/session/fatal-bad-args", test_fatal_bad_args, NULL);
    FX("/libvirt/session/fatal-trailing", test_fatal_trailing, NULL);
    return g_test_run();
}
