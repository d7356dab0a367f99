/* SPDX-License-Identifier: MIT */
/*
 * test-linux-bzimage.c - setup-header checks of vmm/linux/bzimage.c on
 * synthetic images: a good one is accepted with the right fields, and each
 * kind of malformed kernel (not a bzImage, too old a protocol, no 64-bit
 * entry, truncated setup, truncated kernel, zImage) is a one-line error.
 */
#include <glib.h>

#include "tests/linux-fake-bzimage.h"
#include "vmm/linux/bzimage.h"

static void expect_error(const guint8 *img, gsize size, const char *fragment)
{
    SpBzImage bz;
    g_autoptr(GError) err = NULL;
    g_assert_false(sp_bzimage_parse(img, size, "vmlinuz", &bz, &err));
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, fragment));
    g_assert_null(strchr(err->message, '\n'));
    g_assert_true(g_str_has_prefix(err->message, "vmlinuz"));
}

static void test_good(void)
{
    gsize size;
    g_autofree guint8 *img = fake_bzimage_new(100000, &size);
    SpBzImage bz;
    g_autoptr(GError) err = NULL;

    g_assert_true(sp_bzimage_parse(img, size, "vmlinuz", &bz, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(bz.version, ==, 0x020f);
    g_assert_cmpuint(bz.kernel_offset, ==, FAKE_SETUP_BYTES);
    g_assert_cmpuint(bz.kernel_size, ==, 100000);
    g_assert_cmpuint(bz.pref_address, ==, FAKE_PREF);
    g_assert_cmpuint(bz.init_size, ==, FAKE_INIT_SIZE);
    g_assert_cmpuint(bz.cmdline_max, ==, 2047);
    g_assert_cmpuint(bz.initrd_addr_max, ==, 0x7fffffff);
    g_assert_true(bz.relocatable);
    g_assert_cmpuint(bz.hdr_len, ==, 0x26c - 0x1f1);
}

static void test_setup_sects_zero_means_four(void)
{
    gsize size;
    g_autofree guint8 *img = fake_bzimage_new(4096, &size);
    SpBzImage bz;
    fake_hdr(img)->setup_sects = 0;
    g_assert_true(sp_bzimage_parse(img, size, "vmlinuz", &bz, NULL));
    g_assert_cmpuint(bz.kernel_offset, ==, 5 * 512);
}

static void test_not_bzimage(void)
{
    gsize size;
    g_autofree guint8 *img = fake_bzimage_new(4096, &size);
    g_autofree guint8 *elf = g_malloc0(8192);

    memcpy(elf, "\177ELF", 4);
    expect_error(elf, 8192, "not a Linux bzImage");
    expect_error(img, 100, "not a Linux bzImage"); /* too short for a header */
    fake_hdr(img)->header = 0x12345678;
    expect_error(img, size, "not a Linux bzImage");
    fake_hdr(img)->header = 0x53726448;
    fake_hdr(img)->boot_flag = 0;
    expect_error(img, size, "not a Linux bzImage");
}

static void test_old_protocol(void)
{
    gsize size;
    g_autofree guint8 *img = fake_bzimage_new(4096, &size);
    fake_hdr(img)->version = 0x0206;
    expect_error(img, size, "boot protocol 2.06 is too old");
    fake_hdr(img)->version = 0x020b;
    expect_error(img, size, "boot protocol 2.11 is too old");
}

static void test_no_64bit_entry(void)
{
    gsize size;
    g_autofree guint8 *img = fake_bzimage_new(4096, &size);
    fake_hdr(img)->xloadflags = 0;
    expect_error(img, size, "no 64-bit entry point");
}

static void test_zimage(void)
{
    gsize size;
    g_autofree guint8 *img = fake_bzimage_new(4096, &size);
    fake_hdr(img)->loadflags = 0;
    expect_error(img, size, "not a bzImage");
}

static void test_truncated(void)
{
    gsize size;
    g_autofree guint8 *img = fake_bzimage_new(100000, &size);
    /* Cut inside the protected-mode kernel: syssize says more. */
    expect_error(img, size - 1000, "truncated (protected-mode kernel shorter than syssize)");
    /* Cut inside the real-mode setup. */
    expect_error(img, FAKE_SETUP_BYTES - 100, "truncated (file ends inside the real-mode setup)");
    /* Cut inside the setup header itself (after "version"). */
    expect_error(img, 0x230, "setup header is truncated");
}

static void test_bad_fields(void)
{
    gsize size;
    g_autofree guint8 *img = fake_bzimage_new(4096, &size);
    fake_hdr(img)->init_size = 0;
    expect_error(img, size, "impossible init_size");
    fake_hdr(img)->init_size = FAKE_INIT_SIZE;
    fake_hdr(img)->cmdline_size = 0;
    expect_error(img, size, "cmdline_size 0");
    fake_hdr(img)->cmdline_size = 2047;
    fake_hdr(img)->pref_address = 0x1234;
    expect_error(img, size, "unusable pref_address");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/linux/bzimage/good", test_good);
    g_test_add_func("/linux/bzimage/setup-sects-zero", test_setup_sects_zero_means_four);
    g_test_add_func("/linux/bzimage/not-bzimage", test_not_bzimage);
    g_test_add_func("/linux/bzimage/old-protocol", test_old_protocol);
    g_test_add_func("/linux/bzimage/no-64bit-entry", test_no_64bit_entry);
    g_test_add_func("/linux/bzimage/zimage", test_zimage);
    g_test_add_func("/linux/bzimage/truncated", test_truncated);
    g_test_add_func("/linux/bzimage/bad-fields", test_bad_fields);
    return g_test_run();
}
