/* SPDX-License-Identifier: MIT */
/*
 * agent-compact.c - give back the mappings that copy-on-write leaves.
 *
 * A merged page is a mapping of its frame (agent-merge.c).  When the guest
 * writes it, the kernel copies the page into that same mapping: the page
 * is private again (COWED), but its mapping stays, and with it the
 * boundaries it made.  Under churn such pages pile up; a VM stays at the
 * engine's mapping budget (docs/sharing.md, "Mappings") with mappings that
 * map nothing shared, the budget refuses new merges, and sharing decays.
 *
 * So at the start of a pass, when the VM has more than `compact_above`
 * mappings per 1000 pages (the engine sets half its budget), each stretch
 * of private pages that holds a copied page and lies between two merged
 * pages (or an edge of RAM) becomes one anonymous mapping again, by the
 * merge protocol (agent-merge.c): the stretch is populated and
 * write-protected; its content is copied into a fresh anonymous mapping
 * (a page that reads as zero is left unpopulated there: it reads as zero
 * still); mremap puts the copy in place at once; the new mapping is
 * registered with the userfaultfd, and the writers that blocked are woken:
 * their writes land in the copy.  Reads go on throughout (the old pages
 * until the mremap, the same content after).  Bounded by frames' mappings
 * on both sides, the stretch is exactly one mapping, as agent_mappings
 * counts it.
 *
 * Left alone: a stretch longer than COMPACT_MAX pages (the copy's cost),
 * or in a 2 MiB chunk registered for missing faults (swapped pages: their
 * holes must stay holes); RAM that maps a clone layout (file_backed: an
 * unwritten page there is the layer's, not a zero page); and the whole
 * pass while an eviction holds pages protected.  At most COMPACT_PER_PASS
 * stretches a pass, so that M_BEGIN stays short.
 *
 * Agent lock held, on the agent thread.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "sharing/agent-priv.h"

#define COMPACT_MAX      512
#define COMPACT_PER_PASS 4096

static bool in_missing_chunk(SpAgent *a, uint64_t from, uint64_t to)
{
    if (!a->missing)
        return false;
    for (uint64_t c = from / AG_CHUNK_PAGES; c <= (to - 1) / AG_CHUNK_PAGES; c++)
        if ((__atomic_load_n(&a->missing[c / 64], __ATOMIC_ACQUIRE) >> (c % 64)) & 1)
            return true;
    return false;
}

static bool page_is_zero(const uint8_t *p)
{
    const uint64_t *w = (const uint64_t *)p;
    for (size_t i = 0; i < SP_PAGE_SIZE / 8; i++)
        if (w[i])
            return false;
    return true;
}

/* The pages [from, to), none merged, as one anonymous mapping; false if the
 * kernel refused a step (nothing changed then). */
static bool compact_stretch(SpAgent *a, uint64_t from, uint64_t to)
{
    uint8_t *addr = a->mem->host + from * SP_PAGE_SIZE;
    uint64_t len = (to - from) * SP_PAGE_SIZE;
    for (uint64_t off = 0; off < len; off += SP_PAGE_SIZE)
        (void)*(volatile uint8_t *)(addr + off); /* populated: the protection takes hold */
    struct uffdio_writeprotect w = {.range = {.start = (uintptr_t)addr, .len = len},
                                    .mode = UFFDIO_WRITEPROTECT_MODE_WP};
    if (ioctl(a->mem->uffd, UFFDIO_WRITEPROTECT, &w) < 0)
        return false;
    if (a->test_delay_us) { /* tests: writes land in the window, then must survive the copy */
        uint64_t seen = __atomic_load_n(&a->wp_faults_seen, __ATOMIC_RELAXED);
        agent_test_hold_window(a, addr, len);
        a->compact_wp_faults += __atomic_load_n(&a->wp_faults_seen, __ATOMIC_RELAXED) - seen;
    }
    uint8_t *copy =
        mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    bool ok = copy != MAP_FAILED;
    if (ok) {
        /* as guest RAM is (rmap/guest-mem.c) */
        madvise(copy, len, MADV_DONTDUMP);
        madvise(copy, len, MADV_NOHUGEPAGE);
        for (uint64_t off = 0; off < len; off += SP_PAGE_SIZE)
            if (!page_is_zero(addr + off))
                memcpy(copy + off, addr + off, SP_PAGE_SIZE);
        ok = mremap(copy, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, addr) != MAP_FAILED;
        if (!ok)
            munmap(copy, len);
    }
    if (!ok) {
        w.mode = 0; /* clearing it wakes the writers */
        ioctl(a->mem->uffd, UFFDIO_WRITEPROTECT, &w);
        return false;
    }
    /* Register chunk by chunk (agent_reregister_range's contract); none is
     * registered for missing faults (checked), so all are alike. */
    for (uint64_t g = from; g < to;) {
        uint64_t end = MIN(to, (g / AG_CHUNK_PAGES + 1) * AG_CHUNK_PAGES);
        agent_reregister_range(a, a->mem->host + g * SP_PAGE_SIZE, (end - g) * SP_PAGE_SIZE);
        g = end;
    }
    struct uffdio_range r = {.start = (uintptr_t)addr, .len = len};
    ioctl(a->mem->uffd, UFFDIO_WAKE, &r);
    for (uint64_t g = from; g < to; g++)
        if (AG_KIND(a->page[g]) == AG_COWED)
            a->page[g] = (a->page[g] & ~(uint64_t)AG_KIND_MASK) | AG_ANON;
    return true;
}

void agent_compact(SpAgent *a)
{
    if (!a->compact_above || a->file_backed || a->evicting->len || !a->npages ||
        agent_mappings(a) * 1000 <= a->npages * a->compact_above)
        return;
    uint32_t done = 0;
    for (uint64_t g = 0; g < a->npages && done < COMPACT_PER_PASS;) {
        if (AG_KIND(a->page[g]) == AG_MERGED) {
            g++;
            continue;
        }
        uint64_t from = g;
        bool cowed = false, out = false;
        for (; g < a->npages && AG_KIND(a->page[g]) != AG_MERGED; g++) {
            cowed |= AG_KIND(a->page[g]) == AG_COWED;
            out |= (a->page[g] & AG_OUT) != 0;
        }
        if (!cowed || out || g - from < 2 || g - from > COMPACT_MAX || in_missing_chunk(a, from, g))
            continue;
        if (compact_stretch(a, from, g)) {
            a->compactions++;
            a->compacted_pages += g - from;
        }
        done++;
    }
}
