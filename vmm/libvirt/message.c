/* SPDX-License-Identifier: MIT */
/*
 * message.c - packet framing, header and remote_error codec (message.h).
 *
 * remote_error layout (remote_protocol.x, same as virNetMessageError):
 *   int code; int domain; remote_string message; int level;
 *   remote_domain dom; remote_string str1, str2, str3;
 *   int int1; int int2; remote_network net;
 * remote_domain and remote_network are optional pointers: we always send
 * them absent (a 0 flag word).
 */
#include "vmm/libvirt/message.h"

#include "vmm/libvirt/protocol.h"

bool sp_lv_frame_length(const guint8 *buf, guint32 max_len, guint32 *total, GError **error)
{
    guint32 len = (guint32)buf[0] << 24 | (guint32)buf[1] << 16 | (guint32)buf[2] << 8 | buf[3];
    if (len < SP_LV_LEN_SIZE + SP_LV_HEADER_SIZE) {
        g_set_error(error, SP_XDR_ERROR, SP_XDR_ERROR_INVALID,
                    "packet length %u is shorter than a header", len);
        return false;
    }
    if (len > max_len) {
        g_set_error(error, SP_XDR_ERROR, SP_XDR_ERROR_TOO_LONG,
                    "packet length %u exceeds the limit %u", len, max_len);
        return false;
    }
    *total = len;
    return true;
}

bool sp_lv_header_decode(SpXdrReader *r, SpLvHeader *h, GError **error)
{
    SpLvHeader t;
    if (sp_xdr_reader_left(r) < SP_LV_HEADER_SIZE) {
        g_set_error(error, SP_XDR_ERROR, SP_XDR_ERROR_SHORT, "truncated packet header");
        return false;
    }
    sp_xdr_read_u32(r, &t.prog, NULL);
    sp_xdr_read_u32(r, &t.vers, NULL);
    sp_xdr_read_i32(r, &t.proc, NULL);
    sp_xdr_read_i32(r, &t.type, NULL);
    sp_xdr_read_u32(r, &t.serial, NULL);
    sp_xdr_read_i32(r, &t.status, NULL);
    *h = t;
    return true;
}

void sp_lv_header_encode(GByteArray *w, const SpLvHeader *h)
{
    sp_xdr_write_u32(w, h->prog);
    sp_xdr_write_u32(w, h->vers);
    sp_xdr_write_i32(w, h->proc);
    sp_xdr_write_i32(w, h->type);
    sp_xdr_write_u32(w, h->serial);
    sp_xdr_write_i32(w, h->status);
}

gsize sp_lv_packet_begin(GByteArray *out, const SpLvHeader *h)
{
    gsize start = out->len;
    sp_xdr_write_u32(out, 0);
    sp_lv_header_encode(out, h);
    return start;
}

void sp_lv_packet_end(GByteArray *out, gsize start)
{
    sp_xdr_patch_u32(out, start, out->len - start);
}

void sp_lv_error_encode(GByteArray *w, gint32 code, gint32 domain, const char *message)
{
    sp_xdr_write_i32(w, code);
    sp_xdr_write_i32(w, domain);
    sp_xdr_write_opt_string(w, message);
    sp_xdr_write_i32(w, SP_LV_ERR_LEVEL_ERROR);
    sp_xdr_write_u32(w, 0);           /* dom: absent */
    sp_xdr_write_opt_string(w, NULL); /* str1 */
    sp_xdr_write_opt_string(w, NULL); /* str2 */
    sp_xdr_write_opt_string(w, NULL); /* str3 */
    sp_xdr_write_i32(w, 0);           /* int1 */
    sp_xdr_write_i32(w, 0);           /* int2 */
    sp_xdr_write_u32(w, 0);           /* net: absent */
}

void sp_lv_remote_error_clear(SpLvRemoteError *e)
{
    g_clear_pointer(&e->message, g_free);
    g_clear_pointer(&e->str1, g_free);
}

/* Skips an optional remote_nonnull_domain / remote_nonnull_network. */
static bool error_skip_opt_object(SpXdrReader *r, bool has_id, GError **error)
{
    bool present;
    g_autofree char *name = NULL;
    guint8 uuid[SP_LV_UUID_LEN];
    gint32 id;
    if (!sp_xdr_read_bool(r, &present, error))
        return false;
    if (!present)
        return true;
    return sp_xdr_read_string(r, &name, SP_LV_STRING_MAX, error) &&
           sp_xdr_read_fixed_opaque(r, uuid, sizeof(uuid), error) &&
           (!has_id || sp_xdr_read_i32(r, &id, error));
}

bool sp_lv_error_decode(SpXdrReader *r, SpLvRemoteError *e, GError **error)
{
    g_autofree char *s2 = NULL, *s3 = NULL;
    gint32 int2;
    *e = (SpLvRemoteError){0};
    if (sp_xdr_read_i32(r, &e->code, error) && sp_xdr_read_i32(r, &e->domain, error) &&
        sp_xdr_read_opt_string(r, &e->message, SP_LV_STRING_MAX, error) &&
        sp_xdr_read_i32(r, &e->level, error) && error_skip_opt_object(r, true, error) &&
        sp_xdr_read_opt_string(r, &e->str1, SP_LV_STRING_MAX, error) &&
        sp_xdr_read_opt_string(r, &s2, SP_LV_STRING_MAX, error) &&
        sp_xdr_read_opt_string(r, &s3, SP_LV_STRING_MAX, error) &&
        sp_xdr_read_i32(r, &e->int1, error) && sp_xdr_read_i32(r, &int2, error) &&
        error_skip_opt_object(r, false, error))
        return true;
    sp_lv_remote_error_clear(e);
    return false;
}

void sp_lv_reply_error_append(GByteArray *out, const SpLvHeader *call, gint32 code, gint32 domain,
                              const char *message)
{
    SpLvHeader h = *call;
    h.type = SP_LV_REPLY;
    h.status = SP_LV_STATUS_ERROR;
    gsize start = sp_lv_packet_begin(out, &h);
    sp_lv_error_encode(out, code, domain, message);
    sp_lv_packet_end(out, start);
}
