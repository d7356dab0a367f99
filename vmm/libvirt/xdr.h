/* SPDX-License-Identifier: MIT */
/*
 * xdr.h - bounds-checked XDR (RFC 4506) reader and writer for the libvirt
 * remote wire protocol.
 *
 * The reader walks a caller-owned byte buffer; every read checks the bytes
 * left first, and every length or count taken from the wire is compared with
 * the caller's limit (and with the bytes actually left) BEFORE anything is
 * allocated.  A failed read sets a GError in SP_XDR_ERROR and leaves the
 * output untouched (owned outputs stay NULL); it never aborts.
 *
 * The writer appends to a GByteArray; it cannot fail except for strings over
 * the caller's limit, which callers avoid by construction.
 *
 * Encoding facts (libvirt-wire.md 1.2): big-endian, 4-byte alignment, char /
 * short take 4 bytes each, and *arrays of char take 4 bytes per element*
 * (rpcgen's xdr_vector/xdr_array with xdr_char): char model[32] is 128 bytes.
 *
 * No locking: a reader or writer belongs to one caller at a time.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define SP_XDR_ERROR (sp_xdr_error_quark())
GQuark sp_xdr_error_quark(void);

typedef enum {
    SP_XDR_ERROR_SHORT,    /* fewer bytes left than the item needs */
    SP_XDR_ERROR_TOO_LONG, /* a length or count over its limit */
    SP_XDR_ERROR_INVALID,  /* a value outside its domain (flag, padding) */
    SP_XDR_ERROR_TRAILING, /* bytes left after the last item */
} SpXdrErrorCode;

/* Reads from buf[0..len); buf must outlive the reader. */
typedef struct {
    const guint8 *buf; /* start of the encoded data */
    gsize len;         /* bytes in buf */
    gsize pos;         /* next byte to read; always <= len */
} SpXdrReader;

void sp_xdr_reader_init(SpXdrReader *r, const void *buf, gsize len);
gsize sp_xdr_reader_left(const SpXdrReader *r);
/* Fails with SP_XDR_ERROR_TRAILING unless every byte was consumed. */
bool sp_xdr_reader_finish(const SpXdrReader *r, GError **error);

bool sp_xdr_read_u32(SpXdrReader *r, guint32 *out, GError **error);
bool sp_xdr_read_i32(SpXdrReader *r, gint32 *out, GError **error);
bool sp_xdr_read_u64(SpXdrReader *r, guint64 *out, GError **error);
bool sp_xdr_read_i64(SpXdrReader *r, gint64 *out, GError **error);
bool sp_xdr_read_double(SpXdrReader *r, double *out, GError **error);
/* XDR bool: exactly 0 or 1. */
bool sp_xdr_read_bool(SpXdrReader *r, bool *out, GError **error);
/* Fixed opaque: n raw bytes plus padding to 4. */
bool sp_xdr_read_fixed_opaque(SpXdrReader *r, void *out, gsize n, GError **error);
/* Variable opaque<max>: *out is g_malloc'd (NULL when empty is fine). */
bool sp_xdr_read_opaque(SpXdrReader *r, guint8 **out, gsize *out_len, guint32 max, GError **error);
/* string<max>: a NUL-terminated copy; embedded NULs are refused (every
 * string of this protocol is text). */
bool sp_xdr_read_string(SpXdrReader *r, char **out, guint32 max, GError **error);
/* Optional string (remote_string): flag 0 -> *out = NULL, 1 -> string. */
bool sp_xdr_read_opt_string(SpXdrReader *r, char **out, guint32 max, GError **error);
/* Array count of a T x<max>: checks count <= max and that count elements of
 * at least min_elem_size bytes each can still be in the buffer. */
bool sp_xdr_read_count(SpXdrReader *r, guint32 *count, guint32 max, gsize min_elem_size,
                       GError **error);
/* char x<max>: count then 4 bytes per char; returns a NUL-terminated copy. */
bool sp_xdr_read_char_array(SpXdrReader *r, char **out, guint32 max, GError **error);
/* char x[n]: n chars, 4 bytes each, into out[n] (not NUL-terminated). */
bool sp_xdr_read_char_vector(SpXdrReader *r, char *out, gsize n, GError **error);

void sp_xdr_write_u32(GByteArray *w, guint32 v);
void sp_xdr_write_i32(GByteArray *w, gint32 v);
void sp_xdr_write_u64(GByteArray *w, guint64 v);
void sp_xdr_write_i64(GByteArray *w, gint64 v);
void sp_xdr_write_double(GByteArray *w, double v);
void sp_xdr_write_bool(GByteArray *w, bool v);
void sp_xdr_write_fixed_opaque(GByteArray *w, const void *data, gsize n);
void sp_xdr_write_opaque(GByteArray *w, const void *data, gsize n);
/* string: s must not be NULL; writes strlen(s) bytes. */
void sp_xdr_write_string(GByteArray *w, const char *s);
/* remote_string: NULL -> flag 0. */
void sp_xdr_write_opt_string(GByteArray *w, const char *s);
/* char x<>: count then 4 bytes per char (the rpcgen layout). */
void sp_xdr_write_char_array(GByteArray *w, const char *s, gsize n);
/* char x[n]: s padded with NULs (or cut) to n chars, 4 bytes each. */
void sp_xdr_write_char_vector(GByteArray *w, const char *s, gsize n);
/* Overwrite a u32 already written at offset off (for counts and lengths). */
void sp_xdr_patch_u32(GByteArray *w, gsize off, guint32 v);
