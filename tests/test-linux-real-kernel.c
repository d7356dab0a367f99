/* SPDX-License-Identifier: MIT */
/*
 * test-linux-real-kernel.c - the loader against Debian's real kernel and the
 * project's Linux-guest initramfs (scripts/guest-images.sh; `make check`
 * builds them first, see vmm/linux/local.mk).  The images are looked up in
 * $SAMEPAGE_IMAGES, else $top_builddir/images.  A missing image cache FAILS
 * this test with a message saying how to build it: it never skips.
 *
 * Checks: the setup header passes (protocol >= 2.12, 64-bit entry), and
 * sp_linux_boot_prepare() lays out a 256 MiB, 2-vCPU guest with the real
 * initrd (the gzip magic is where the zero page says), and refuses the same
 * kernel in 64 MiB (init_size does not fit) with a one-line error.
 */
#include <glib.h>

#include "vmm/linux/bzimage.h"
#include "vmm/linux/layout.h"
#include "vmm/linux/linux-boot.h"

static char *images_dir(void)
{
    const char *d = g_getenv("SAMEPAGE_IMAGES");
    if (d && *d)
        return g_strdup(d);
    const char *b = g_getenv("top_builddir");
    return g_build_filename(b ? b : ".", "images", NULL);
}

static char *image_path(const char *name)
{
    g_autofree char *dir = images_dir();
    char *p = g_build_filename(dir, name, NULL);
    if (!g_file_test(p, G_FILE_TEST_IS_REGULAR))
        g_error("%s is missing: build the image cache with scripts/guest-images.sh "
                "(make check does it first) or point SAMEPAGE_IMAGES at it",
                p);
    return p;
}

static void test_header(void)
{
    g_autofree char *path = image_path("vmlinuz");
    g_autofree char *data = NULL;
    gsize len;
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    SpBzImage bz;
    g_autoptr(GError) err = NULL;
    g_assert_true(sp_bzimage_parse((guint8 *)data, len, path, &bz, &err));
    g_assert_no_error(err);
    g_assert_cmphex(bz.version, >=, 0x020c);
    g_assert_true(bz.relocatable);
    g_assert_cmpuint(bz.pref_address, ==, 0x1000000);
    g_assert_cmpuint(bz.cmdline_max, >=, 2047);
    g_test_message("boot protocol %x, init_size %u MiB", bz.version, bz.init_size >> 20);
}

static void test_prepare(void)
{
    g_autofree char *k = image_path("vmlinuz");
    g_autofree char *rd = image_path("linux-guest-initrd.gz");
    g_autoptr(SpVmConfig) cfg = sp_vm_config_new();
    cfg->name = g_strdup("l1");
    cfg->vcpus = 2;
    cfg->kernel = g_strdup(k);
    cfg->initrd = g_strdup(rd);
    cfg->cmdline = g_strdup("console=ttyS0 quiet");
    SpGuestMem mem;
    g_autoptr(GError) err = NULL;
    g_assert_true(sp_guest_mem_init(&mem, 256ull << 20, &err));
    SpLinuxBootState st;
    g_assert_true(sp_linux_boot_prepare(cfg, &mem, &st, &err));
    g_assert_no_error(err);
    g_assert_cmphex(st.entry_gpa, ==, 0x1000200);
    g_assert_cmpuint(st.initrd_gpa + st.initrd_size, <=, 256ull << 20);
    g_assert_cmpuint(mem.host[st.initrd_gpa], ==, 0x1f); /* gzip magic */
    g_assert_cmpuint(mem.host[st.initrd_gpa + 1], ==, 0x8b);
    sp_guest_mem_destroy(&mem);

    g_assert_true(sp_guest_mem_init(&mem, 64ull << 20, &err));
    g_assert_false(sp_linux_boot_prepare(cfg, &mem, &st, &err));
    g_assert_nonnull(strstr(err->message, "kernel needs RAM up to"));
    sp_guest_mem_destroy(&mem);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/linux/real-kernel/header", test_header);
    g_test_add_func("/linux/real-kernel/prepare", test_prepare);
    return g_test_run();
}
