/* SPDX-License-Identifier: MIT */
/*
 * memload-verify.c - check every page of this vCPU's slice against its record.
 *
 * Each page is regenerated word by word and compared (memload_page_check).
 * A mismatching page counts one error; the first differing byte is reported
 * with sp_integrity(exact guest address of that byte, expected aligned 8-byte
 * word, found word), at most ML_REPORTS_PER_ROUND times per round over all
 * vCPUs.  Verification goes on after a mismatch.
 *
 * With stall=MS the loop also times itself with the TSC (user mode reads
 * it natively): the longest pause between two consecutive page checks is
 * how long this vCPU did not run its guest code - a fault the host kept
 * waiting (a page under migration, a lock), or host scheduling.
 */
#include "guest-tools/memload.h"

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

void memload_verify_slice(uint32_t vcpu)
{
    uint64_t first, end, verified = 0, gap = 0;
    uint64_t prev = memload.tsc_per_ms ? rdtsc() : 0;
    memload_slice(vcpu, &first, &end);
    for (uint64_t s = first; s < end; s++, verified++) {
        if (memload.tsc_per_ms) { /* stall=: the longest pause between two pages */
            uint64_t now = rdtsc();
            if (now - prev > gap)
                gap = now - prev;
            prev = now;
        }
        MemloadMismatch mm;
        const uint8_t *page = memload_page(s);
        if (memload_page_check(page, &memload.ctx, memload.table[s], &mm))
            continue;
        __atomic_add_fetch(&memload.errors, 1, __ATOMIC_RELAXED);
        uint32_t left = __atomic_load_n(&memload.reports_left, __ATOMIC_RELAXED);
        while (left && !__atomic_compare_exchange_n(&memload.reports_left, &left, left - 1, false,
                                                    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            ;
        if (left)
            sp_integrity((uintptr_t)page + mm.offset, mm.expected, mm.found);
    }
    memload.verified[vcpu] = verified;
    memload.gap_tsc[vcpu] = gap;
}
