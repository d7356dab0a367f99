/* SPDX-License-Identifier: MIT */
/*
 * xdr.c - bounds-checked XDR reader and writer (see xdr.h for the rules).
 *
 * Invariant of SpXdrReader: pos <= len at all times; every read first checks
 * that its whole item (including padding) fits in len - pos, so arithmetic on
 * wire values never overflows the buffer.  Lengths are checked against the
 * caller's limit and against the bytes left before g_malloc.
 */
#include "vmm/libvirt/xdr.h"

#include <string.h>

GQuark sp_xdr_error_quark(void)
{
    return g_quark_from_static_string("sp-xdr-error-quark");
}

static gsize xdr_pad(gsize n)
{
    return (4 - (n & 3)) & 3;
}

void sp_xdr_reader_init(SpXdrReader *r, const void *buf, gsize len)
{
    r->buf = buf;
    r->len = len;
    r->pos = 0;
}

gsize sp_xdr_reader_left(const SpXdrReader *r)
{
    return r->len - r->pos;
}

bool sp_xdr_reader_finish(const SpXdrReader *r, GError **error)
{
    if (r->pos != r->len) {
        g_set_error(error, SP_XDR_ERROR, SP_XDR_ERROR_TRAILING, "%zu unexpected trailing bytes",
                    r->len - r->pos);
        return false;
    }
    return true;
}

static bool xdr_need(SpXdrReader *r, gsize n, GError **error)
{
    if (n > sp_xdr_reader_left(r)) {
        g_set_error(error, SP_XDR_ERROR, SP_XDR_ERROR_SHORT,
                    "truncated data: need %zu bytes at offset %zu, %zu left", n, r->pos,
                    sp_xdr_reader_left(r));
        return false;
    }
    return true;
}

bool sp_xdr_read_u32(SpXdrReader *r, guint32 *out, GError **error)
{
    if (!xdr_need(r, 4, error))
        return false;
    const guint8 *p = r->buf + r->pos;
    *out = (guint32)p[0] << 24 | (guint32)p[1] << 16 | (guint32)p[2] << 8 | p[3];
    r->pos += 4;
    return true;
}

bool sp_xdr_read_i32(SpXdrReader *r, gint32 *out, GError **error)
{
    guint32 v;
    if (!sp_xdr_read_u32(r, &v, error))
        return false;
    *out = (gint32)v;
    return true;
}

bool sp_xdr_read_u64(SpXdrReader *r, guint64 *out, GError **error)
{
    guint32 hi, lo;
    if (!xdr_need(r, 8, error))
        return false;
    sp_xdr_read_u32(r, &hi, NULL);
    sp_xdr_read_u32(r, &lo, NULL);
    *out = (guint64)hi << 32 | lo;
    return true;
}

bool sp_xdr_read_i64(SpXdrReader *r, gint64 *out, GError **error)
{
    guint64 v;
    if (!sp_xdr_read_u64(r, &v, error))
        return false;
    *out = (gint64)v;
    return true;
}

bool sp_xdr_read_double(SpXdrReader *r, double *out, GError **error)
{
    guint64 v;
    if (!sp_xdr_read_u64(r, &v, error))
        return false;
    memcpy(out, &v, sizeof(*out));
    return true;
}

bool sp_xdr_read_bool(SpXdrReader *r, bool *out, GError **error)
{
    guint32 v;
    if (!xdr_need(r, 4, error))
        return false;
    sp_xdr_read_u32(r, &v, NULL);
    if (v > 1) {
        r->pos -= 4;
        g_set_error(error, SP_XDR_ERROR, SP_XDR_ERROR_INVALID, "invalid boolean %u", v);
        return false;
    }
    *out = v;
    return true;
}

/* Checks n bytes plus padding fit, and that the padding is zero. */
static bool xdr_check_padded(SpXdrReader *r, gsize n, GError **error)
{
    gsize pad = xdr_pad(n);
    if (n > sp_xdr_reader_left(r) || pad > sp_xdr_reader_left(r) - n) {
        g_set_error(error, SP_XDR_ERROR, SP_XDR_ERROR_SHORT,
                    "truncated data: need %zu bytes at offset %zu, %zu left", n + pad, r->pos,
                    sp_xdr_reader_left(r));
        return false;
    }
    for (gsize i = 0; i < pad; i++) {
        if (r->buf[r->pos + n + i] != 0) {
            g_set_error(error, SP_XDR_ERROR, SP_XDR_ERROR_INVALID, "non-zero padding at offset %zu",
                        r->pos + n + i);
            return false;
        }
    }
    return true;
}

bool sp_xdr_read_fixed_opaque(SpXdrReader *r, void *out, gsize n, GError **error)
{
    if (!xdr_check_padded(r, n, error))
        return false;
    memcpy(out, r->buf + r->pos, n);
    r->pos += n + xdr_pad(n);
    return true;
}

/* Reads a length word, bounded by max; restores pos on failure. */
static bool xdr_read_len(SpXdrReader *r, guint32 *len, guint32 max, const char *what,
                         GError **error)
{
    if (!sp_xdr_read_u32(r, len, error))
        return false;
    if (*len > max) {
        r->pos -= 4;
        g_set_error(error, SP_XDR_ERROR, SP_XDR_ERROR_TOO_LONG, "%s length %u exceeds the limit %u",
                    what, *len, max);
        return false;
    }
    return true;
}

bool sp_xdr_read_opaque(SpXdrReader *r, guint8 **out, gsize *out_len, guint32 max, GError **error)
{
    guint32 len;
    if (!xdr_read_len(r, &len, max, "opaque", error))
        return false;
    if (!xdr_check_padded(r, len, error)) {
        r->pos -= 4;
        return false;
    }
    *out = len ? g_memdup2(r->buf + r->pos, len) : NULL;
    *out_len = len;
    r->pos += len + xdr_pad(len);
    return true;
}

bool sp_xdr_read_string(SpXdrReader *r, char **out, guint32 max, GError **error)
{
    guint32 len;
    if (!xdr_read_len(r, &len, max, "string", error))
        return false;
    if (!xdr_check_padded(r, len, error)) {
        r->pos -= 4;
        return false;
    }
    if (memchr(r->buf + r->pos, 0, len)) {
        r->pos -= 4;
        g_set_error(error, SP_XDR_ERROR, SP_XDR_ERROR_INVALID, "string contains a NUL byte");
        return false;
    }
    *out = g_strndup((const char *)r->buf + r->pos, len);
    r->pos += len + xdr_pad(len);
    return true;
}

bool sp_xdr_read_opt_string(SpXdrReader *r, char **out, guint32 max, GError **error)
{
    bool present;
    if (!sp_xdr_read_bool(r, &present, error))
        return false;
    if (!present) {
        *out = NULL;
        return true;
    }
    if (!sp_xdr_read_string(r, out, max, error)) {
        r->pos -= 4;
        return false;
    }
    return true;
}

bool sp_xdr_read_count(SpXdrReader *r, guint32 *count, guint32 max, gsize min_elem_size,
                       GError **error)
{
    if (!xdr_read_len(r, count, max, "array", error))
        return false;
    if (min_elem_size && *count > sp_xdr_reader_left(r) / min_elem_size) {
        g_set_error(error, SP_XDR_ERROR, SP_XDR_ERROR_SHORT,
                    "array of %u elements cannot fit in the %zu bytes left", *count,
                    sp_xdr_reader_left(r));
        r->pos -= 4;
        return false;
    }
    return true;
}

/* Reads n XDR chars (4 bytes each) into out; refuses values outside char. */
static bool xdr_read_chars(SpXdrReader *r, char *out, gsize n, GError **error)
{
    gsize start = r->pos;
    if (n > sp_xdr_reader_left(r) / 4) {
        g_set_error(error, SP_XDR_ERROR, SP_XDR_ERROR_SHORT,
                    "truncated char array: %zu chars need %zu bytes, %zu left", n, n * 4,
                    sp_xdr_reader_left(r));
        return false;
    }
    for (gsize i = 0; i < n; i++) {
        gint32 c = 0;
        sp_xdr_read_i32(r, &c, NULL);
        if (c < -128 || c > 255) {
            r->pos = start;
            g_set_error(error, SP_XDR_ERROR, SP_XDR_ERROR_INVALID,
                        "char array element %zu has value %d", i, c);
            return false;
        }
        out[i] = (char)c;
    }
    return true;
}

bool sp_xdr_read_char_array(SpXdrReader *r, char **out, guint32 max, GError **error)
{
    guint32 n;
    if (!sp_xdr_read_count(r, &n, max, 4, error))
        return false;
    g_autofree char *s = g_malloc(n + 1);
    if (!xdr_read_chars(r, s, n, error)) {
        r->pos -= 4;
        return false;
    }
    s[n] = 0;
    if (strlen(s) != n) {
        r->pos -= 4 + 4 * (gsize)n;
        g_set_error(error, SP_XDR_ERROR, SP_XDR_ERROR_INVALID, "char array contains a NUL");
        return false;
    }
    *out = g_steal_pointer(&s);
    return true;
}

bool sp_xdr_read_char_vector(SpXdrReader *r, char *out, gsize n, GError **error)
{
    return xdr_read_chars(r, out, n, error);
}

void sp_xdr_write_u32(GByteArray *w, guint32 v)
{
    guint8 b[4] = {v >> 24, v >> 16, v >> 8, v};
    g_byte_array_append(w, b, 4);
}

void sp_xdr_write_i32(GByteArray *w, gint32 v)
{
    sp_xdr_write_u32(w, (guint32)v);
}

void sp_xdr_write_u64(GByteArray *w, guint64 v)
{
    sp_xdr_write_u32(w, v >> 32);
    sp_xdr_write_u32(w, (guint32)v);
}

void sp_xdr_write_i64(GByteArray *w, gint64 v)
{
    sp_xdr_write_u64(w, (guint64)v);
}

void sp_xdr_write_double(GByteArray *w, double v)
{
    guint64 u;
    memcpy(&u, &v, sizeof(u));
    sp_xdr_write_u64(w, u);
}

void sp_xdr_write_bool(GByteArray *w, bool v)
{
    sp_xdr_write_u32(w, v ? 1 : 0);
}

void sp_xdr_write_fixed_opaque(GByteArray *w, const void *data, gsize n)
{
    static const guint8 zero[4];
    g_byte_array_append(w, data, n);
    g_byte_array_append(w, zero, xdr_pad(n));
}

void sp_xdr_write_opaque(GByteArray *w, const void *data, gsize n)
{
    sp_xdr_write_u32(w, n);
    sp_xdr_write_fixed_opaque(w, data, n);
}

void sp_xdr_write_string(GByteArray *w, const char *s)
{
    sp_xdr_write_opaque(w, s, strlen(s));
}

void sp_xdr_write_opt_string(GByteArray *w, const char *s)
{
    sp_xdr_write_bool(w, s != NULL);
    if (s)
        sp_xdr_write_string(w, s);
}

void sp_xdr_write_char_array(GByteArray *w, const char *s, gsize n)
{
    sp_xdr_write_u32(w, n);
    for (gsize i = 0; i < n; i++)
        sp_xdr_write_i32(w, (signed char)s[i]);
}

void sp_xdr_write_char_vector(GByteArray *w, const char *s, gsize n)
{
    gsize len = s ? strnlen(s, n) : 0;
    for (gsize i = 0; i < n; i++)
        sp_xdr_write_i32(w, i < len ? (signed char)s[i] : 0);
}

void sp_xdr_patch_u32(GByteArray *w, gsize off, guint32 v)
{
    g_assert(off + 4 <= w->len);
    w->data[off] = v >> 24;
    w->data[off + 1] = v >> 16;
    w->data[off + 2] = v >> 8;
    w->data[off + 3] = v;
}
