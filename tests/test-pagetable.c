/* SPDX-License-Identifier: MIT */
/* test-pagetable.c - walk the identity tables the way the CPU would. */
#include <string.h>

#include "vmm/guest-abi.h"
#include "vmm/machine/pagetable.h"

/* Translate like a 4-level walk with 2 MiB leaves; false if not present or
 * not user-writable. */
static bool walk(SpGuestMem *m, uint64_t cr3, uint64_t va, uint64_t *pa)
{
    const uint64_t need = SP_PTE_P | SP_PTE_RW | SP_PTE_US;
    uint64_t *pml4 = sp_guest_mem_ptr(m, cr3, 4096);
    uint64_t e = pml4[(va >> 39) & 511];
    if ((e & need) != need)
        return false;
    uint64_t *pdpt = sp_guest_mem_ptr(m, e & ~0xfffULL, 4096);
    e = pdpt[(va >> 30) & 511];
    if ((e & need) != need)
        return false;
    uint64_t *pd = sp_guest_mem_ptr(m, e & ~0xfffULL, 4096);
    e = pd[(va >> 21) & 511];
    if ((e & need) != need || !(e & SP_PTE_PS))
        return false;
    *pa = (e & ~0x1fffffULL) | (va & 0x1fffff);
    return true;
}

static void check_ram(uint64_t ram)
{
    SpGuestMem m;
    g_autoptr(GError) err = NULL;
    g_assert_true(sp_guest_mem_init(&m, ram, &err));
    uint64_t cr3 = 0;
    g_assert_true(sp_pagetable_build(&m, SP_PGTABLE_GPA, SP_PGTABLE_END, &cr3, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(cr3, ==, SP_PGTABLE_GPA);
    uint64_t probes[] = {0, 0x1000, SP_PAYLOAD_MIN_GPA, ram / 2 + 123, ram - 1, ram - 4096};
    for (size_t i = 0; i < G_N_ELEMENTS(probes); i++) {
        uint64_t pa = 0;
        g_assert_true(walk(&m, cr3, probes[i], &pa));
        g_assert_cmpuint(pa, ==, probes[i]); /* identity */
    }
    for (uint64_t va = 0; va < ram; va += 2 << 20) {
        uint64_t pa = 0;
        g_assert_true(walk(&m, cr3, va + 77, &pa));
        g_assert_cmpuint(pa, ==, va + 77);
    }
    uint64_t pa = 0;
    g_assert_false(walk(&m, cr3, ram, &pa));                /* just above RAM */
    g_assert_false(walk(&m, cr3, ram + (1ULL << 30), &pa)); /* far above */
    g_assert_false(walk(&m, cr3, 1ULL << 39, &pa));         /* another PML4 slot */
    sp_guest_mem_destroy(&m);
}

static void test_sizes(void)
{
    check_ram(64ULL << 20);
    check_ram(1ULL << 30);
    check_ram(3ULL << 30);
    check_ram((5ULL << 30) + (6ULL << 20));
}

static void test_bad(void)
{
    SpGuestMem m;
    g_autoptr(GError) err = NULL;
    g_assert_true(sp_guest_mem_init(&m, (64ULL << 20) + 4096, &err));
    uint64_t cr3 = 0;
    g_assert_false(sp_pagetable_build(&m, SP_PGTABLE_GPA, SP_PGTABLE_END, &cr3, &err));
    g_assert_nonnull(strstr(err->message, "2 MiB"));
    g_clear_error(&err);
    /* reserved room too small for the tables */
    g_assert_false(sp_pagetable_build(&m, SP_PGTABLE_GPA, SP_PGTABLE_GPA + 4096, &cr3, &err));
    sp_guest_mem_destroy(&m);
    g_assert_cmpuint(sp_pagetable_size(4ULL << 30), ==, 6 * 4096);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/pagetable/sizes", test_sizes);
    g_test_add_func("/pagetable/bad", test_bad);
    return g_test_run();
}
