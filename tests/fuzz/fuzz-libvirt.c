/*
 * fuzz-libvirt.c - libFuzzer target for the libvirt endpoint's decoder:
 * framing, headers, keepalive, dispatch and every procedure's argument
 * decoding (and the domain XML parser behind DEFINE_XML / CREATE_XML),
 * through sp_lv_session_feed() exactly as the server drives it, over a fresh
 * in-memory test backend per input.
 *
 * Input: byte 0 selects the session mode (bit 0: CONNECT_OPEN already done,
 * bit 1: read-only socket); byte 1 selects how the rest is split into feed()
 * calls (chunk size 1..256); the rest is the client's byte stream.
 * Every reply the session produces must itself be well-framed.
 */
#include <stdint.h>
#include <string.h>

#include "tests/libvirt/test-backend.h"
#include "vmm/libvirt/message.h"
#include "vmm/libvirt/protocol.h"
#include "vmm/libvirt/session.h"

static const SpLvEndpointConfig fuzz_cfg = {
    .hv_type = "samepage", .hv_version = 1000, .inbound_max = 1u << 16};

static void fuzz_open(SpLvSession *s, GByteArray *out)
{
    g_autoptr(GByteArray) pkt = g_byte_array_new();
    SpLvHeader h = {SP_LV_REMOTE_PROGRAM, 1, SP_LV_PROC_CONNECT_OPEN, SP_LV_CALL, 0, 0};
    gsize start = sp_lv_packet_begin(pkt, &h);
    sp_xdr_write_opt_string(pkt, "samepage:///system");
    sp_xdr_write_u32(pkt, 0);
    sp_lv_packet_end(pkt, start);
    if (!sp_lv_session_feed(s, pkt->data, pkt->len, out, NULL))
        __builtin_trap();
}

/* Every packet the server writes must parse back. */
static void fuzz_check_replies(const GByteArray *out)
{
    gsize pos = 0;
    while (pos < out->len) {
        guint32 total;
        if (out->len - pos < 28 ||
            !sp_lv_frame_length(out->data + pos, SP_LV_MESSAGE_MAX, &total, NULL) ||
            total > out->len - pos)
            __builtin_trap();
        pos += total;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    guint8 mode = data[0];
    gsize chunk = (gsize)data[1] + 1;
    data += 2;
    size -= 2;

    SpLvTestBackend *tb = sp_lv_test_backend_new();
    SpLvBackend be = sp_lv_test_backend_get(tb);
    SpLvSession *s = sp_lv_session_new(&be, &fuzz_cfg, mode & 2, NULL);
    GByteArray *out = g_byte_array_new();
    if (mode & 1)
        fuzz_open(s, out);
    for (gsize off = 0; off < size; off += chunk) {
        gsize n = MIN(chunk, size - off);
        if (!sp_lv_session_feed(s, data + off, n, out, NULL))
            break;
    }
    fuzz_check_replies(out);
    g_byte_array_unref(out);
    sp_lv_session_free(s);
    sp_lv_test_backend_free(tb);
    return 0;
}
