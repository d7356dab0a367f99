/* SPDX-License-Identifier: MIT */
/*
 * test-linux-boot-params.c - placement, zero page and e820 map of a Linux
 * boot (vmm/linux/boot-params.c, e820.c), and sp_linux_boot_prepare() end to
 * end on real guest RAM with a synthetic kernel and initrd: the bytes the
 * guest will read (kernel, initrd, command line, zero page) are checked.
 * Error cases: command line too long, initrd too big, RAM too small for the
 * kernel, RAM too large, too many vCPUs, a kernel file that is not a bzImage.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "tests/linux-fake-bzimage.h"
#include "vmm/linux/boot-params.h"
#include "vmm/linux/e820.h"
#include "vmm/linux/layout.h"
#include "vmm/linux/linux-boot.h"

#define MiB (1ull << 20)

static SpBzImage fake_parsed(void)
{
    gsize size;
    g_autofree guint8 *img = fake_bzimage_new(8192, &size);
    SpBzImage bz;
    g_assert_true(sp_bzimage_parse(img, size, "fake", &bz, NULL));
    return bz;
}

static void test_e820(void)
{
    struct boot_e820_entry e[8];
    size_t n = sp_linux_e820_build(256 * MiB, e, 8);
    g_assert_cmpuint(n, ==, 3);
    /* Sorted, contiguous, covering [0, RAM) exactly. */
    uint64_t at = 0, ram = 0;
    for (size_t i = 0; i < n; i++) {
        g_assert_cmpuint(e[i].addr, ==, at);
        at += e[i].size;
        if (e[i].type == SP_E820_RAM)
            ram += e[i].size;
    }
    g_assert_cmpuint(at, ==, 256 * MiB);
    g_assert_cmpuint(e[0].type, ==, SP_E820_RAM);
    g_assert_cmpuint(e[0].size, ==, 0x9fc00);
    g_assert_cmpuint(e[1].type, ==, SP_E820_RESERVED);
    g_assert_cmpuint(e[1].addr + e[1].size, ==, 0x100000);
    g_assert_cmpuint(e[2].type, ==, SP_E820_RAM);
    g_assert_cmpuint(ram, ==, 256 * MiB - (0x100000 - 0x9fc00));
    /* The MP table sits in the reserved hole. */
    g_assert_cmpuint(SP_LINUX_MPTABLE_GPA, >=, e[1].addr);
    g_assert_cmpuint(SP_LINUX_MPTABLE_GPA + SP_LINUX_MPTABLE_ROOM, <=, e[1].addr + e[1].size);
    g_assert_cmpuint(sp_linux_e820_build(1 * MiB, e, 8), ==, 0);
    g_assert_cmpuint(sp_linux_e820_build(256 * MiB, e, 2), ==, 0);
}

static void test_plan_and_zero_page(void)
{
    SpBzImage bz = fake_parsed();
    SpLinuxPlan p;
    g_autoptr(GError) err = NULL;
    g_assert_true(sp_linux_plan(&bz, 256 * MiB, 40, 5 * MiB + 123, &p, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(p.kernel_gpa, ==, FAKE_PREF);
    g_assert_cmpuint(p.entry_gpa, ==, FAKE_PREF + 0x200);
    g_assert_cmpuint(p.kernel_end, ==, FAKE_PREF + FAKE_INIT_SIZE);
    /* initrd: page aligned, as high as possible, inside RAM, above the kernel. */
    g_assert_cmpuint(p.initrd_gpa & 0xfff, ==, 0);
    g_assert_cmpuint(p.initrd_gpa + p.initrd_size, <=, 256 * MiB);
    g_assert_cmpuint(p.initrd_gpa + p.initrd_size, >, 256 * MiB - 4096);
    g_assert_cmpuint(p.initrd_gpa, >=, p.kernel_end);

    struct boot_params *bp = g_new0(struct boot_params, 1);
    sp_linux_boot_params_fill(bp, &bz, &p);
    g_assert_cmpuint(bp->hdr.header, ==, 0x53726448);
    g_assert_cmpuint(bp->hdr.version, ==, 0x020f);
    g_assert_cmpuint(bp->hdr.type_of_loader, ==, 0xff);
    g_assert_true(bp->hdr.loadflags & LOADED_HIGH);
    g_assert_true(bp->hdr.loadflags & CAN_USE_HEAP);
    g_assert_cmpuint(bp->hdr.cmd_line_ptr, ==, SP_LINUX_CMDLINE_GPA);
    g_assert_cmpuint(bp->ext_cmd_line_ptr, ==, 0);
    g_assert_cmpuint(bp->hdr.ramdisk_image, ==, p.initrd_gpa);
    g_assert_cmpuint(bp->hdr.ramdisk_size, ==, 5 * MiB + 123);
    g_assert_cmpuint(bp->ext_ramdisk_image, ==, 0);
    g_assert_cmpuint(bp->hdr.code32_start, ==, FAKE_PREF);
    g_assert_cmpuint(bp->hdr.vid_mode, ==, 0xffff);
    g_assert_cmpuint(bp->e820_entries, ==, 3);
    g_assert_cmpuint(bp->e820_table[2].addr + bp->e820_table[2].size, ==, 256 * MiB);
    g_free(bp);

    /* No initrd: nothing placed. */
    g_assert_true(sp_linux_plan(&bz, 256 * MiB, 0, 0, &p, NULL));
    g_assert_cmpuint(p.initrd_gpa, ==, 0);
    g_assert_cmpuint(p.initrd_size, ==, 0);
}

static void test_initrd_addr_max(void)
{
    SpBzImage bz = fake_parsed();
    SpLinuxPlan p;
    bz.initrd_addr_max = 128 * MiB - 1; /* old kernels: below 128 MiB */
    g_assert_true(sp_linux_plan(&bz, 1024 * MiB, 10, 10 * MiB, &p, NULL));
    g_assert_cmpuint(p.initrd_gpa + p.initrd_size, <=, 128 * MiB);
}

static void expect_plan_error(uint64_t ram, uint64_t cmdlen, uint64_t initrd, const char *frag)
{
    SpBzImage bz = fake_parsed();
    SpLinuxPlan p;
    g_autoptr(GError) err = NULL;
    g_assert_false(sp_linux_plan(&bz, ram, cmdlen, initrd, &p, &err));
    g_assert_nonnull(err);
    if (!strstr(err->message, frag))
        g_error("'%s' lacks '%s'", err->message, frag);
    g_assert_null(strchr(err->message, '\n'));
}

static void test_plan_errors(void)
{
    expect_plan_error(256 * MiB, 2048, 0,
                      "command line is 2048 bytes, this kernel accepts at most 2047");
    expect_plan_error(256 * MiB, 10, 300 * MiB, "initrd of 300 MiB does not fit");
    /* Kernel ends at 48 MiB: 47 MiB of RAM cannot hold it. */
    expect_plan_error(47 * MiB, 10, 0, "kernel needs RAM up to 48 MiB");
    /* 50 MiB of RAM holds the kernel but not a 4 MiB initrd above it. */
    expect_plan_error(50 * MiB, 10, 4 * MiB, "does not fit between the kernel's end (48 MiB)");
    expect_plan_error(4096 * MiB, 10, 0, "at most 3072 MiB of RAM");
    /* Exactly cmdline_size is fine. */
    SpBzImage bz = fake_parsed();
    SpLinuxPlan p;
    g_assert_true(sp_linux_plan(&bz, 256 * MiB, 2047, 0, &p, NULL));
}

/* sp_linux_boot_prepare() over real guest RAM and files. */
typedef struct {
    char *dir, *kernel, *initrd;
    SpGuestMem mem;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    gsize ksize;
    g_autofree guint8 *k = fake_bzimage_new(64 * 1024, &ksize);
    guint8 *rd = g_malloc(3 * MiB + 5);
    for (gsize i = 0; i < 3 * MiB + 5; i++)
        rd[i] = (guint8)(i * 13 + 1);
    f->dir = g_dir_make_tmp("sp-linux-XXXXXX", NULL);
    f->kernel = g_build_filename(f->dir, "vmlinuz", NULL);
    f->initrd = g_build_filename(f->dir, "initrd", NULL);
    g_assert_true(g_file_set_contents(f->kernel, (char *)k, (gssize)ksize, NULL));
    g_assert_true(g_file_set_contents(f->initrd, (char *)rd, 3 * MiB + 5, NULL));
    g_free(rd);
    g_autoptr(GError) err = NULL;
    g_assert_true(sp_guest_mem_init(&f->mem, 128 * MiB, &err));
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    sp_guest_mem_destroy(&f->mem);
    g_unlink(f->kernel);
    g_unlink(f->initrd);
    g_rmdir(f->dir);
    g_free(f->kernel);
    g_free(f->initrd);
    g_free(f->dir);
}

static SpVmConfig *config_for(Fixture *f, const char *cmdline, uint32_t vcpus)
{
    SpVmConfig *cfg = sp_vm_config_new();
    cfg->name = g_strdup("l1");
    cfg->mem_size = f->mem.size;
    cfg->vcpus = vcpus;
    cfg->kernel = g_strdup(f->kernel);
    cfg->initrd = g_strdup(f->initrd);
    cfg->cmdline = g_strdup(cmdline);
    return cfg;
}

static void test_prepare(Fixture *f, gconstpointer data)
{
    g_autoptr(SpVmConfig) cfg = config_for(f, "console=ttyS0 quiet", 2);
    SpLinuxBootState st;
    g_autoptr(GError) err = NULL;
    g_assert_true(sp_linux_boot_prepare(cfg, &f->mem, &st, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(st.entry_gpa, ==, FAKE_PREF + 0x200);
    g_assert_cmpuint(st.zero_page_gpa, ==, SP_LINUX_ZERO_PAGE_GPA);
    g_assert_cmpuint(st.vcpu_count, ==, 2);
    g_assert_cmpuint(st.boot_version, ==, 0x020f);

    /* The protected-mode kernel is at its load address, byte for byte. */
    const guint8 *kern = f->mem.host + FAKE_PREF;
    for (gsize i = 0; i < 64 * 1024; i += 997)
        g_assert_cmpuint(kern[i], ==, (guint8)(i * 7 + 3));
    /* The initrd where the zero page says. */
    const struct boot_params *bp = (const void *)(f->mem.host + SP_LINUX_ZERO_PAGE_GPA);
    g_assert_cmpuint(bp->hdr.ramdisk_image, ==, st.initrd_gpa);
    g_assert_cmpuint(bp->hdr.ramdisk_size, ==, 3 * MiB + 5);
    const guint8 *rd = f->mem.host + bp->hdr.ramdisk_image;
    for (gsize i = 0; i < 3 * MiB + 5; i += 4099)
        g_assert_cmpuint(rd[i], ==, (guint8)(i * 13 + 1));
    g_assert_cmpuint(rd[3 * MiB + 4], ==, (guint8)((3 * MiB + 4) * 13 + 1));
    g_assert_cmpstr((const char *)f->mem.host + bp->hdr.cmd_line_ptr, ==, "console=ttyS0 quiet");
    g_assert_cmpuint(bp->e820_entries, ==, 3);
    /* The MP floating pointer is where Linux scans for it. */
    g_assert_cmpmem(f->mem.host + SP_LINUX_MPTABLE_GPA, 4, "_MP_", 4);
    /* Identity map: PML4[0] -> PDPT, PD entries map 2 MiB pages 1:1. */
    const uint64_t *pml4 = (const void *)(f->mem.host + SP_LINUX_PML4_GPA);
    const uint64_t *pd = (const void *)(f->mem.host + SP_LINUX_PD_GPA);
    g_assert_cmpuint(pml4[0] & ~0xfffull, ==, SP_LINUX_PDPT_GPA);
    g_assert_cmpuint(pd[8] & ~0xfffull, ==, 8 * 2 * MiB);
}

static void expect_prepare_error(Fixture *f, SpVmConfig *cfg, const char *frag)
{
    SpLinuxBootState st;
    g_autoptr(GError) err = NULL;
    g_assert_false(sp_linux_boot_prepare(cfg, &f->mem, &st, &err));
    g_assert_nonnull(err);
    if (!strstr(err->message, frag))
        g_error("'%s' lacks '%s'", err->message, frag);
    g_assert_null(strchr(err->message, '\n'));
}

static void test_prepare_errors(Fixture *f, gconstpointer data)
{
    g_autofree char *longcmd = g_strnfill(3000, 'x');
    g_autoptr(SpVmConfig) c1 = config_for(f, longcmd, 1);
    expect_prepare_error(f, c1, "command line is 3000 bytes");

    g_autoptr(SpVmConfig) c2 = config_for(f, "", 255);
    expect_prepare_error(f, c2, "1 to 254 vCPUs");

    /* The initrd file given as kernel: not a bzImage. */
    g_autoptr(SpVmConfig) c3 = config_for(f, "", 1);
    g_free(c3->kernel);
    c3->kernel = g_strdup(f->initrd);
    expect_prepare_error(f, c3, "not a Linux bzImage");

    g_autoptr(SpVmConfig) c4 = config_for(f, "", 1);
    g_free(c4->initrd);
    c4->initrd = g_build_filename(f->dir, "missing", NULL);
    expect_prepare_error(f, c4, "No such file");

    /* A 100 MiB initrd cannot fit above a kernel ending at 48 MiB in 128 MiB. */
    g_autoptr(SpVmConfig) c5 = config_for(f, "", 1);
    g_autofree char *big = g_build_filename(f->dir, "big", NULL);
    FILE *fp = fopen(big, "w");
    g_assert_nonnull(fp);
    g_assert_cmpint(ftruncate(fileno(fp), 100 * MiB), ==, 0);
    fclose(fp);
    g_free(c5->initrd);
    c5->initrd = g_strdup(big);
    expect_prepare_error(f, c5, "initrd of 100 MiB does not fit");
    g_unlink(big);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/linux/e820/layout", test_e820);
    g_test_add_func("/linux/plan/zero-page", test_plan_and_zero_page);
    g_test_add_func("/linux/plan/initrd-addr-max", test_initrd_addr_max);
    g_test_add_func("/linux/plan/errors", test_plan_errors);
    g_test_add("/linux/prepare/guest-ram", Fixture, NULL, fixture_setup, test_prepare,
               fixture_teardown);
    g_test_add("/linux/prepare/errors", Fixture, NULL, fixture_setup, test_prepare_errors,
               fixture_teardown);
    return g_test_run();
}
