/* SPDX-License-Identifier: MIT */
/* test-elf.c - payload ELF validation: the real hello payload and broken copies of it. */
#include <elf.h>
#include <string.h>

#include "vmm/machine/elf-load.h"
#include "vmm/guest-abi.h"

static uint8_t *hello;
static gsize hello_len;

static void load_hello(void)
{
    const char *dir = g_getenv("top_builddir");
    g_autofree char *path = g_build_filename(dir ? dir : ".", "guest-tools", "hello.elf", NULL);
    g_autoptr(GError) err = NULL;
    if (!g_file_get_contents(path, (char **)&hello, &hello_len, &err))
        g_error("test needs the built payload %s: %s", path, err->message);
}

static bool parse_copy(const uint8_t *d, gsize n, const char *expect_in_error)
{
    SpElfImage img;
    g_autoptr(GError) err = NULL;
    bool ok = sp_elf_parse(d, n, &img, &err);
    if (!ok) {
        g_assert_nonnull(err);
        g_assert_null(strchr(err->message, '\n'));
        if (expect_in_error && !strstr(err->message, expect_in_error))
            g_error("error '%s' does not mention '%s'", err->message, expect_in_error);
    }
    return ok;
}

static void test_good(void)
{
    SpElfImage img;
    g_autoptr(GError) err = NULL;
    g_assert_true(sp_elf_parse(hello, hello_len, &img, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(img.entry, ==, SP_PAYLOAD_MIN_GPA);
    g_assert_cmpuint(img.nseg, >=, 1);
    g_assert_cmpuint(img.end, >, img.entry);

    SpGuestMem mem;
    g_assert_true(sp_guest_mem_init(&mem, 8 << 20, &err));
    g_assert_true(sp_elf_load(&img, hello, &mem, &err));
    /* the first segment's bytes are in guest RAM where it asked */
    g_assert_cmpmem(mem.host + img.seg[0].gpa, img.seg[0].filesz, hello + img.seg[0].offset,
                    img.seg[0].filesz);
    sp_guest_mem_destroy(&mem);

    /* a VM too small for the payload: an error, not a crash */
    g_assert_true(sp_guest_mem_init(&mem, 4 << 20, &err));
    g_assert_false(sp_elf_load(&img, hello, &mem, &err));
    g_assert_nonnull(strstr(err->message, "needs RAM"));
    sp_guest_mem_destroy(&mem);
}

static void test_truncated(void)
{
    g_assert_false(parse_copy(hello, 0, "not an ELF"));
    g_assert_false(parse_copy(hello, 3, "not an ELF"));
    g_assert_false(parse_copy(hello, 40, "truncated"));
    g_assert_false(parse_copy(hello, sizeof(Elf64_Ehdr) + 8, "program headers"));
    /* cut inside the first segment's file bytes */
    g_assert_false(parse_copy(hello, 0x1000 + 16, "outside the file"));
}

static void test_not_elf(void)
{
    const char *text = "#!/bin/sh\necho this is not a payload\n";
    g_assert_false(parse_copy((const uint8_t *)text, strlen(text), "not an ELF"));
}

static void test_wrong_arch(void)
{
    g_autofree uint8_t *d = g_memdup2(hello, hello_len);
    Elf64_Ehdr *eh = (Elf64_Ehdr *)d;
    eh->e_machine = EM_AARCH64;
    g_assert_false(parse_copy(d, hello_len, "architecture"));
    eh->e_machine = EM_X86_64;
    eh->e_ident[EI_CLASS] = ELFCLASS32;
    g_assert_false(parse_copy(d, hello_len, "architecture"));
    eh->e_ident[EI_CLASS] = ELFCLASS64;
    eh->e_type = ET_DYN;
    g_assert_false(parse_copy(d, hello_len, "static"));
}

static void test_bad_segments(void)
{
    g_autofree uint8_t *d = g_memdup2(hello, hello_len);
    Elf64_Ehdr *eh = (Elf64_Ehdr *)d;
    Elf64_Phdr *ph = (Elf64_Phdr *)(d + eh->e_phoff);
    Elf64_Phdr saved = ph[0];
    ph[0].p_vaddr = 0x1000; /* over the boot info */
    g_assert_false(parse_copy(d, hello_len, "outside"));
    ph[0] = saved;
    ph[0].p_vaddr = UINT64_MAX - 10; /* wraps */
    g_assert_false(parse_copy(d, hello_len, "outside"));
    ph[0] = saved;
    ph[0].p_filesz = ph[0].p_memsz + 1;
    g_assert_false(parse_copy(d, hello_len, NULL));
    ph[0] = saved;
    eh->e_entry = 0x123456789;
    g_assert_false(parse_copy(d, hello_len, "entry point"));
    eh->e_entry = SP_PAYLOAD_MIN_GPA;
    eh->e_phnum = 60000; /* beyond the file */
    g_assert_false(parse_copy(d, hello_len, "program headers"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    load_hello();
    g_test_add_func("/elf/good", test_good);
    g_test_add_func("/elf/truncated", test_truncated);
    g_test_add_func("/elf/not-elf", test_not_elf);
    g_test_add_func("/elf/wrong-arch", test_wrong_arch);
    g_test_add_func("/elf/bad-segments", test_bad_segments);
    int rc = g_test_run();
    g_free(hello);
    return rc;
}
