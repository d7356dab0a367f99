/*
 * test-libvirt-xdr.c - unit tests of the XDR codec (vmm/libvirt/xdr.c):
 * round trips of every type, exact byte layouts (big-endian, padding, the
 * 4-bytes-per-char arrays), and every bound: short buffers, lengths over
 * the limit, counts that cannot fit, bad booleans, non-zero padding,
 * embedded NULs, trailing bytes.  A failed read must leave the reader where
 * it was and outputs unallocated.
 */
#include <string.h>

#include "vmm/libvirt/typed-params.h"
#include "vmm/libvirt/xdr.h"

static void test_scalars(void)
{
    g_autoptr(GByteArray) w = g_byte_array_new();
    sp_xdr_write_u32(w, 0xdeadbeef);
    sp_xdr_write_i32(w, -2);
    sp_xdr_write_u64(w, 0x0102030405060708ull);
    sp_xdr_write_i64(w, -3);
    sp_xdr_write_double(w, 1.5);
    sp_xdr_write_bool(w, true);
    static const guint8 expect[] = {
        0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0xfe, 1, 2, 3, 4, 5, 6, 7, 8, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xfd, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0, 0, 0,    1};
    g_assert_cmpmem(w->data, w->len, expect, sizeof(expect));

    SpXdrReader r;
    guint32 u;
    gint32 i;
    guint64 u64;
    gint64 i64;
    double d;
    bool b;
    sp_xdr_reader_init(&r, w->data, w->len);
    g_assert_true(sp_xdr_read_u32(&r, &u, NULL));
    g_assert_cmphex(u, ==, 0xdeadbeef);
    g_assert_true(sp_xdr_read_i32(&r, &i, NULL));
    g_assert_cmpint(i, ==, -2);
    g_assert_true(sp_xdr_read_u64(&r, &u64, NULL));
    g_assert_cmphex(u64, ==, 0x0102030405060708ull);
    g_assert_true(sp_xdr_read_i64(&r, &i64, NULL));
    g_assert_cmpint(i64, ==, -3);
    g_assert_true(sp_xdr_read_double(&r, &d, NULL));
    g_assert_cmpfloat(d, ==, 1.5);
    g_assert_true(sp_xdr_read_bool(&r, &b, NULL));
    g_assert_true(b);
    g_assert_true(sp_xdr_reader_finish(&r, NULL));
}

static void test_short_reads(void)
{
    static const guint8 buf[7] = {0};
    SpXdrReader r;
    guint32 u;
    guint64 u64;
    g_autoptr(GError) err = NULL;
    sp_xdr_reader_init(&r, buf, 3);
    g_assert_false(sp_xdr_read_u32(&r, &u, &err));
    g_assert_error(err, SP_XDR_ERROR, SP_XDR_ERROR_SHORT);
    g_assert_cmpuint(r.pos, ==, 0);
    g_clear_error(&err);
    sp_xdr_reader_init(&r, buf, 7);
    g_assert_false(sp_xdr_read_u64(&r, &u64, &err));
    g_assert_error(err, SP_XDR_ERROR, SP_XDR_ERROR_SHORT);
    g_assert_cmpuint(r.pos, ==, 0);
    g_clear_error(&err);
    g_assert_true(sp_xdr_read_u32(&r, &u, NULL));
    g_assert_false(sp_xdr_reader_finish(&r, &err));
    g_assert_error(err, SP_XDR_ERROR, SP_XDR_ERROR_TRAILING);
}

static void test_bool_invalid(void)
{
    static const guint8 buf[] = {0, 0, 0, 2};
    SpXdrReader r;
    bool b;
    g_autoptr(GError) err = NULL;
    sp_xdr_reader_init(&r, buf, sizeof(buf));
    g_assert_false(sp_xdr_read_bool(&r, &b, &err));
    g_assert_error(err, SP_XDR_ERROR, SP_XDR_ERROR_INVALID);
    g_assert_cmpuint(r.pos, ==, 0);
}

static void test_string_layout(void)
{
    g_autoptr(GByteArray) w = g_byte_array_new();
    sp_xdr_write_string(w, "qemu:///system");
    sp_xdr_write_opt_string(w, NULL);
    sp_xdr_write_opt_string(w, "vm1");
    static const guint8 expect[] = {0,   0,   0,   14,  'q', 'e', 'm', 'u', ':', '/', '/', '/',
                                    's', 'y', 's', 't', 'e', 'm', 0,   0,   0,   0,   0,   0,
                                    0,   0,   0,   1,   0,   0,   0,   3,   'v', 'm', '1', 0};
    g_assert_cmpmem(w->data, w->len, expect, sizeof(expect));
    SpXdrReader r;
    g_autofree char *s1 = NULL, *s2 = NULL, *s3 = NULL;
    sp_xdr_reader_init(&r, w->data, w->len);
    g_assert_true(sp_xdr_read_string(&r, &s1, 100, NULL));
    g_assert_cmpstr(s1, ==, "qemu:///system");
    g_assert_true(sp_xdr_read_opt_string(&r, &s2, 100, NULL));
    g_assert_null(s2);
    g_assert_true(sp_xdr_read_opt_string(&r, &s3, 100, NULL));
    g_assert_cmpstr(s3, ==, "vm1");
    g_assert_true(sp_xdr_reader_finish(&r, NULL));
}

static void test_string_bounds(void)
{
    g_autoptr(GByteArray) w = g_byte_array_new();
    g_autoptr(GError) err = NULL;
    char *s = NULL;
    SpXdrReader r;
    sp_xdr_write_string(w, "hello");
    /* limit: exactly the length passes, one less fails without allocating */
    sp_xdr_reader_init(&r, w->data, w->len);
    g_assert_false(sp_xdr_read_string(&r, &s, 4, &err));
    g_assert_error(err, SP_XDR_ERROR, SP_XDR_ERROR_TOO_LONG);
    g_assert_null(s);
    g_assert_cmpuint(r.pos, ==, 0);
    g_clear_error(&err);
    g_assert_true(sp_xdr_read_string(&r, &s, 5, NULL));
    g_assert_cmpstr(s, ==, "hello");
    g_free(s);
    s = NULL;
    /* a huge length word with little data: refused as short, not allocated */
    static const guint8 huge[] = {0x7f, 0xff, 0xff, 0xff, 'a', 'b', 'c', 'd'};
    sp_xdr_reader_init(&r, huge, sizeof(huge));
    g_assert_false(sp_xdr_read_string(&r, &s, G_MAXUINT32, &err));
    g_assert_error(err, SP_XDR_ERROR, SP_XDR_ERROR_SHORT);
    g_assert_null(s);
    g_clear_error(&err);
    /* truncated padding */
    sp_xdr_reader_init(&r, w->data, w->len - 1);
    g_assert_false(sp_xdr_read_string(&r, &s, 100, &err));
    g_assert_error(err, SP_XDR_ERROR, SP_XDR_ERROR_SHORT);
    g_assert_cmpuint(r.pos, ==, 0);
    g_clear_error(&err);
    /* non-zero padding */
    w->data[w->len - 1] = 1;
    sp_xdr_reader_init(&r, w->data, w->len);
    g_assert_false(sp_xdr_read_string(&r, &s, 100, &err));
    g_assert_error(err, SP_XDR_ERROR, SP_XDR_ERROR_INVALID);
    g_clear_error(&err);
    /* embedded NUL */
    static const guint8 nul[] = {0, 0, 0, 3, 'a', 0, 'b', 0};
    sp_xdr_reader_init(&r, nul, sizeof(nul));
    g_assert_false(sp_xdr_read_string(&r, &s, 100, &err));
    g_assert_error(err, SP_XDR_ERROR, SP_XDR_ERROR_INVALID);
    g_assert_null(s);
    g_clear_error(&err);
    /* optional string: flag other than 0/1 */
    static const guint8 flag[] = {0, 0, 0, 5};
    sp_xdr_reader_init(&r, flag, sizeof(flag));
    g_assert_false(sp_xdr_read_opt_string(&r, &s, 100, &err));
    g_assert_error(err, SP_XDR_ERROR, SP_XDR_ERROR_INVALID);
    g_clear_error(&err);
    /* empty string */
    g_byte_array_set_size(w, 0);
    sp_xdr_write_string(w, "");
    g_assert_cmpuint(w->len, ==, 4);
    sp_xdr_reader_init(&r, w->data, w->len);
    g_assert_true(sp_xdr_read_string(&r, &s, 0, NULL));
    g_assert_cmpstr(s, ==, "");
    g_free(s);
}

static void test_opaque(void)
{
    g_autoptr(GByteArray) w = g_byte_array_new();
    static const guint8 uuid[16] = {0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33,
                                    0x44, 0x44, 0x55, 0x55, 0x55, 0x55, 0x55, 0x51};
    sp_xdr_write_fixed_opaque(w, uuid, 16);
    g_assert_cmpuint(w->len, ==, 16);
    sp_xdr_write_opaque(w, "\x01\x02\x03", 3);
    g_assert_cmpuint(w->len, ==, 16 + 4 + 4);
    SpXdrReader r;
    guint8 u[16];
    g_autofree guint8 *o = NULL;
    gsize olen;
    g_autoptr(GError) err = NULL;
    sp_xdr_reader_init(&r, w->data, w->len);
    g_assert_true(sp_xdr_read_fixed_opaque(&r, u, 16, NULL));
    g_assert_cmpmem(u, 16, uuid, 16);
    g_assert_false(sp_xdr_read_opaque(&r, &o, &olen, 2, &err));
    g_assert_error(err, SP_XDR_ERROR, SP_XDR_ERROR_TOO_LONG);
    g_assert_true(sp_xdr_read_opaque(&r, &o, &olen, 3, NULL));
    g_assert_cmpmem(o, olen, "\x01\x02\x03", 3);
    g_assert_true(sp_xdr_reader_finish(&r, NULL));
}

static void test_counts(void)
{
    static const guint8 buf[] = {0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3};
    SpXdrReader r;
    guint32 n;
    g_autoptr(GError) err = NULL;
    sp_xdr_reader_init(&r, buf, sizeof(buf));
    g_assert_false(sp_xdr_read_count(&r, &n, 2, 4, &err));
    g_assert_error(err, SP_XDR_ERROR, SP_XDR_ERROR_TOO_LONG);
    g_assert_cmpuint(r.pos, ==, 0);
    g_clear_error(&err);
    /* 3 elements of 8 bytes cannot fit in the 12 bytes left */
    g_assert_false(sp_xdr_read_count(&r, &n, 100, 8, &err));
    g_assert_error(err, SP_XDR_ERROR, SP_XDR_ERROR_SHORT);
    g_assert_cmpuint(r.pos, ==, 0);
    g_clear_error(&err);
    g_assert_true(sp_xdr_read_count(&r, &n, 3, 4, NULL));
    g_assert_cmpuint(n, ==, 3);
}

/* The trap: char arrays take 4 bytes per char. */
static void test_char_arrays(void)
{
    g_autoptr(GByteArray) w = g_byte_array_new();
    sp_xdr_write_char_vector(w, "x86_64", 32);
    g_assert_cmpuint(w->len, ==, 128);
    static const guint8 first[] = {0, 0, 0, 'x', 0, 0, 0, '8', 0, 0, 0, '6'};
    g_assert_cmpmem(w->data, 12, first, 12);
    for (gsize i = 6 * 4; i < 128; i++)
        g_assert_cmpuint(w->data[i], ==, 0);
    sp_xdr_write_char_array(w, "selinux", 7);
    g_assert_cmpuint(w->len, ==, 128 + 4 + 28);
    sp_xdr_write_char_array(w, "", 0);
    g_assert_cmpuint(w->len, ==, 128 + 4 + 28 + 4);

    SpXdrReader r;
    char model[32];
    g_autofree char *sel = NULL, *empty = NULL;
    sp_xdr_reader_init(&r, w->data, w->len);
    g_assert_true(sp_xdr_read_char_vector(&r, model, 32, NULL));
    g_assert_cmpstr(model, ==, "x86_64");
    g_assert_true(sp_xdr_read_char_array(&r, &sel, 256, NULL));
    g_assert_cmpstr(sel, ==, "selinux");
    g_assert_true(sp_xdr_read_char_array(&r, &empty, 256, NULL));
    g_assert_cmpstr(empty, ==, "");
    g_assert_true(sp_xdr_reader_finish(&r, NULL));

    /* the 1-byte-per-char form (what a naive encoder writes) is refused */
    g_autoptr(GError) err = NULL;
    char *s = NULL;
    static const guint8 naive[] = {0, 0, 0, 4, 's', 'e', 'l', 'x'};
    sp_xdr_reader_init(&r, naive, sizeof(naive));
    g_assert_false(sp_xdr_read_char_array(&r, &s, 256, &err));
    g_assert_error(err, SP_XDR_ERROR, SP_XDR_ERROR_SHORT);
    g_assert_null(s);
    g_clear_error(&err);
    /* a char element out of range */
    static const guint8 big[] = {0, 0, 0, 1, 0, 0, 1, 0};
    sp_xdr_reader_init(&r, big, sizeof(big));
    g_assert_false(sp_xdr_read_char_array(&r, &s, 256, &err));
    g_assert_error(err, SP_XDR_ERROR, SP_XDR_ERROR_INVALID);
    g_assert_cmpuint(r.pos, ==, 0);
    g_clear_error(&err);
    /* count over the limit */
    sp_xdr_reader_init(&r, w->data + 128, w->len - 128);
    g_assert_false(sp_xdr_read_char_array(&r, &s, 6, &err));
    g_assert_error(err, SP_XDR_ERROR, SP_XDR_ERROR_TOO_LONG);
}

static void test_typed_params(void)
{
    g_autoptr(SpLvParams) p = sp_lv_params_new();
    g_autoptr(GError) err = NULL;
    g_assert_true(sp_lv_params_add_int(p, "a.int", -5, NULL));
    g_assert_true(sp_lv_params_add_uint(p, "shm_pages_to_scan", 200, NULL));
    g_assert_true(sp_lv_params_add_llong(p, "a.llong", -6, NULL));
    g_assert_true(sp_lv_params_add_ullong(p, "samepage.merged_pages", 1ull << 40, NULL));
    g_assert_true(sp_lv_params_add_double(p, "a.double", 0.25, NULL));
    g_assert_true(sp_lv_params_add_boolean(p, "a.bool", true, NULL));
    g_assert_true(sp_lv_params_add_string(p, "samepage.domain", "tenant-a", NULL));
    char longname[81];
    memset(longname, 'x', 80);
    longname[80] = 0;
    g_assert_false(sp_lv_params_add_uint(p, longname, 1, &err));
    g_clear_error(&err);
    longname[79] = 0; /* 79 bytes: the longest allowed */
    g_assert_true(sp_lv_params_add_uint(p, longname, 1, NULL));

    g_autoptr(GByteArray) w = g_byte_array_new();
    sp_lv_params_encode(w, p);
    /* layout of the second entry, as in libvirt-wire.md 1.2 */
    static const guint8 uint_entry[] = {0,   0,   0,   17,  's', 'h', 'm', '_', 'p', 'a', 'g',
                                        'e', 's', '_', 't', 'o', '_', 's', 'c', 'a', 'n', 0,
                                        0,   0,   0,   0,   0,   2,   0,   0,   0,   0xc8};
    g_assert_nonnull(memmem(w->data, w->len, uint_entry, sizeof(uint_entry)));

    SpXdrReader r;
    g_autoptr(SpLvParams) q = sp_lv_params_new();
    sp_xdr_reader_init(&r, w->data, w->len);
    g_assert_true(sp_lv_params_decode(&r, q, 64, NULL));
    g_assert_true(sp_xdr_reader_finish(&r, NULL));
    g_assert_cmpuint(sp_lv_params_len(q), ==, 8);
    g_assert_cmpint(sp_lv_params_find(q, "a.int")->v.i, ==, -5);
    g_assert_cmpuint(sp_lv_params_find(q, "shm_pages_to_scan")->v.ui, ==, 200);
    g_assert_cmpint(sp_lv_params_find(q, "a.llong")->v.l, ==, -6);
    g_assert_cmpuint(sp_lv_params_find(q, "samepage.merged_pages")->v.ul, ==, 1ull << 40);
    g_assert_cmpfloat(sp_lv_params_find(q, "a.double")->v.d, ==, 0.25);
    g_assert_true(sp_lv_params_find(q, "a.bool")->v.b);
    g_assert_cmpstr(sp_lv_params_find(q, "samepage.domain")->v.s, ==, "tenant-a");

    /* count limit */
    g_autoptr(SpLvParams) z = sp_lv_params_new();
    sp_xdr_reader_init(&r, w->data, w->len);
    g_assert_false(sp_lv_params_decode(&r, z, 7, &err));
    g_assert_error(err, SP_XDR_ERROR, SP_XDR_ERROR_TOO_LONG);
    g_clear_error(&err);
    /* unknown type */
    g_autoptr(GByteArray) bad = g_byte_array_new();
    sp_xdr_write_u32(bad, 1);
    sp_xdr_write_string(bad, "x");
    sp_xdr_write_i32(bad, 9);
    sp_xdr_write_u32(bad, 0);
    sp_xdr_reader_init(&r, bad->data, bad->len);
    g_assert_false(sp_lv_params_decode(&r, z, 64, &err));
    g_assert_error(err, SP_XDR_ERROR, SP_XDR_ERROR_INVALID);
    g_clear_error(&err);
    /* every truncation of a valid encoding fails cleanly */
    for (gsize cut = 0; cut < w->len; cut++) {
        g_autoptr(SpLvParams) t = sp_lv_params_new();
        g_autoptr(GError) e = NULL;
        sp_xdr_reader_init(&r, w->data, cut);
        g_assert_false(sp_lv_params_decode(&r, t, 64, &e));
        g_assert_nonnull(e);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/libvirt/xdr/scalars", test_scalars);
    g_test_add_func("/libvirt/xdr/short-reads", test_short_reads);
    g_test_add_func("/libvirt/xdr/bool-invalid", test_bool_invalid);
    g_test_add_func("/libvirt/xdr/string-layout", test_string_layout);
    g_test_add_func("/libvirt/xdr/string-bounds", test_string_bounds);
    g_test_add_func("/libvirt/xdr/opaque", test_opaque);
    g_test_add_func("/libvirt/xdr/counts", test_counts);
    g_test_add_func("/libvirt/xdr/char-arrays", test_char_arrays);
    g_test_add_func("/libvirt/xdr/typed-params", test_typed_params);
    return g_test_run();
}
