/* SPDX-License-Identifier: MIT */
/*
 * memload-verify.c - check every page of this vCPU's slice against its record.
 *
 * Each page is regenerated word by word and compared (memload_page_check).
 * A mismatching page counts one error; the first differing byte is reported
 * with sp_integrity(exact guest address of that byte, expected aligned 8-byte
 * word, found word), at most ML_REPORTS_PER_ROUND times per round over all
 * vCPUs.  Verification goes on after a mismatch.
 */
#include "guest-tools/memload.h"

void memload_verify_slice(uint32_t vcpu)
{
    uint64_t first, end, verified = 0;
    memload_slice(vcpu, &first, &end);
    for (uint64_t s = first; s < end; s++, verified++) {
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
}
