/* SPDX-License-Identifier: MIT */
/* crash - a payload that misbehaves on purpose, for the VMM's crash tests.
 * Argument "mode=" selects how: fault (write to an unmapped address, which
 * without an IDT ends as a triple fault), ud2, port (unknown I/O port). */
#include "guest-tools/rt/sp-rt.h"

static bool has(const char *s, const char *w)
{
    for (; *s; s++) {
        size_t i = 0;
        while (w[i] && s[i] == w[i])
            i++;
        if (!w[i])
            return true;
    }
    return false;
}

int sp_main(const SpBootInfo *info, uint32_t vcpu)
{
    const char *args = (const char *)(uintptr_t)info->args_gpa;
    sp_printf("crash payload starting (%s)\n", args);
    if (has(args, "mode=ud2"))
        __asm__ volatile("ud2");
    if (has(args, "mode=port"))
        __asm__ volatile("outb %%al, $0x99" : : "a"(0));
    /* Default: touch memory far beyond RAM -> #PF -> no IDT -> triple fault. */
    *(volatile uint64_t *)(uintptr_t)(0x8000000000ULL) = 1;
    return 0;
}
