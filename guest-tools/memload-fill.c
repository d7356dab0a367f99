/* SPDX-License-Identifier: MIT */
/*
 * memload-fill.c - write every page of this vCPU's slice from its record.
 *
 * Zero pages are written too (not left untouched), so the host sees real,
 * allocated zero-filled pages that its zero-page handling has to find.
 */
#include "guest-tools/memload.h"

void memload_fill_slice(uint32_t vcpu)
{
    uint64_t first, end;
    memload_slice(vcpu, &first, &end);
    for (uint64_t s = first; s < end; s++)
        memload_page_fill(memload_page(s), &memload.ctx, memload.table[s]);
}
