/* SPDX-License-Identifier: MIT */
/*
 * volatile - a payload for the engine's volatility test.  It fills pages
 * 0..N-1 of its free RAM with the same pattern, then rewrites page 0 with
 * that same pattern over and over (so its content always duplicates the
 * others, but it is written in every scan) while it checks that every page
 * still holds the pattern.  Argument: pages=N (default 64).
 */
#include "guest-tools/rt/sp-rt.h"

static uint64_t pattern(uint64_t i)
{
    return 0x9e3779b97f4a7c15ULL * (i + 1) ^ 0x5a5a5a5a5a5a5a5aULL;
}

int sp_main(const SpBootInfo *info, uint32_t vcpu)
{
    if (vcpu != 0)
        for (uint32_t steps = 0;;)
            sp_spin_step(&steps);
    uint64_t n = 64;
    const char *a = (const char *)(uintptr_t)info->args_gpa;
    for (; *a; a++)
        if (a[0] == 'p' && a[1] == 'a' && a[2] == 'g' && a[3] == 'e' && a[4] == 's' && a[5] == '=')
            for (a += 6, n = 0; *a >= '0' && *a <= '9'; a++)
                n = n * 10 + (uint64_t)(*a - '0');
    volatile uint64_t *base = (volatile uint64_t *)(uintptr_t)info->free_gpa;
    for (uint64_t p = 0; p < n; p++)
        for (uint64_t w = 0; w < 512; w++)
            base[p * 512 + w] = pattern(w);
    sp_result("pages_gpa", info->free_gpa);
    sp_result("pages_total", n);
    sp_phase(1, "filled");
    for (uint64_t round = 1;; round++) {
        for (int rep = 0; rep < 64; rep++)
            for (uint64_t w = 0; w < 512; w++)
                base[w] = pattern(w); /* page 0: same bytes, written again */
        uint64_t bad = 0;
        for (uint64_t p = 0; p < n; p++)
            for (uint64_t w = 0; w < 512; w++)
                if (base[p * 512 + w] != pattern(w)) {
                    if (!bad)
                        sp_integrity((uint64_t)(uintptr_t)&base[p * 512 + w], pattern(w),
                                     base[p * 512 + w]);
                    bad++;
                }
        if (round % 256 == 0)
            sp_round(round / 256, n, 0);
    }
}
