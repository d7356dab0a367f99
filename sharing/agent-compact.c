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
 * mappings per 1000 pages (the engine sets 90 % of its budget), stretches
 * of private pages that hold a copied page and lie between two merged
 * pages (or an edge of RAM) become one anonymous mapping again each, until
 * the VM is down to 8/9 of that (80 % of the budget): room for the pass's
 * merges, at a cost in proportion to what copy-on-write broke.  Only a
 * stretch that gives mappings back is rebuilt (a copied page inside a
 * merged run's mapping is part of that mapping still).  By the merge
 * protocol (agent-merge.c): the stretch is populated and
 * write-protected; its content is copied into a fresh anonymous mapping
 * (a page that reads as zero is left unpopulated there: it reads as zero
 * still); mremap puts the copy in place at once; the new mapping is
 * registered with the userfaultfd, and the writers that blocked are woken:
 * their writes land in the copy.  Reads go on throughout (the old pages
 * until the mremap, the same content after).  Bounded by frames' mappings
 * on both sides, the stretch is exactly one mapping, as agent_mappings
 * counts it.  The count is kept exact by agent_mappings's own rule.
 *
 * A stretch longer than COMPACT_MAX pages (the copy's cost under one
 * protection) is rebuilt in pieces, each parted from the next by a copied
 * page left as it is: when copy-on-write outruns merging, few merged
 * pages are left to bound the stretches, and these are exactly the VMs
 * at their budget (inside the emulated host: 11 merged pages, 1,635
 * mappings of a 1,638 budget, stretches of ~700 pages; none rebuilt
 * while they were left whole, and sharing never came back).
 *
 * Left alone: a piece in a 2 MiB chunk registered for missing faults
 * (swapped pages: their holes must stay holes); RAM that maps a clone
 * layout (file_backed: an unwritten page there is the layer's, not a zero
 * page); and the whole pass while an eviction holds pages protected.  At
 * most COMPACT_PER_PASS pieces a pass, so that M_BEGIN stays short.
 *
 * Agent lock held, on the agent thread.
 */
#include <string.h>
#include <sys/mman.h>

#include "sharing/agent-priv.h"

#define COMPACT_MAX      512
#define COMPACT_PER_PASS 4096
#define WINDOW_PAGES     1024 /* stretches rebuilt under one protection (4 MiB of RAM) */
#define WINDOW_MAX       64
#define SCRATCH_BYTES    (64ull << 20)

static bool in_missing_chunk(SpAgent *a, uint64_t from, uint64_t to)
{
    if (!a->missing)
        return false;
    for (uint64_t c = from / AG_CHUNK_PAGES; c <= (to - 1) / AG_CHUNK_PAGES; c++)
        if ((__atomic_load_n(&a->missing[c / 64], __ATOMIC_ACQUIRE) >> (c % 64)) & 1)
            return true;
    return false;
}

/* len bytes of fresh anonymous memory, flagged as guest RAM is
 * (rmap/guest-mem.c), from the front of a reserved region: the flags are
 * set once per region rather than once per copy, and what mremap takes
 * from the front leaves the rest one mapping. */
static uint8_t *scratch_take(SpAgent *a, uint64_t len)
{
    if (a->scratch_left < len) {
        if (a->scratch_left)
            munmap(a->scratch, a->scratch_left);
        a->scratch_left = 0;
        void *p = mmap(NULL, SCRATCH_BYTES, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        madvise(p, SCRATCH_BYTES, MADV_DONTDUMP);
        madvise(p, SCRATCH_BYTES, MADV_NOHUGEPAGE);
        a->scratch = p;
        a->scratch_left = SCRATCH_BYTES;
    }
    uint8_t *p = a->scratch;
    a->scratch += len;
    a->scratch_left -= len;
    return p;
}

void agent_compact_free(SpAgent *a)
{
    if (a->scratch_left)
        munmap(a->scratch, a->scratch_left);
    a->scratch_left = 0;
}

typedef struct Stretch {
    uint64_t from, to;
    int64_t gain;
} Stretch;

/* agent_mappings's rule: a new mapping starts between pages x and y. */
static int starts(uint64_t x, uint64_t y)
{
    bool fx = AG_KIND(x) == AG_MERGED || AG_KIND(x) == AG_COWED;
    bool fy = AG_KIND(y) == AG_MERGED || AG_KIND(y) == AG_COWED;
    return fx != fy || (fy && (AG_SPACE(y) != AG_SPACE(x) || AG_OFF(y) != AG_OFF(x) + 1));
}

/* The protection of [from, to) set or cleared.  A kernel before 6.5
 * (Debian 12's 6.1 among them) protects within one mapping at a time
 * only: there, mapping by mapping, as agent_mappings draws them; a
 * protection that fails half-way is taken back.  (With the whole window
 * at once only, no stretch was ever rebuilt on 6.1.) */
static bool wp_span(SpAgent *a, uint64_t from, uint64_t to, bool on)
{
    if (agent_wp_range(a, a->mem->host + from * SP_PAGE_SIZE, (to - from) * SP_PAGE_SIZE, on))
        return true;
    for (uint64_t g = from, e; g < to; g = e) {
        for (e = g + 1; e < to && !starts(a->page[e - 1], a->page[e]);)
            e++;
        if (!agent_wp_range(a, a->mem->host + g * SP_PAGE_SIZE, (e - g) * SP_PAGE_SIZE, on)) {
            if (on && g > from)
                wp_span(a, from, g, false);
            return false;
        }
    }
    return true;
}

/* One stretch, protected: copied, and the copy moved into place. */
static bool move_copy(SpAgent *a, const Stretch *st)
{
    uint8_t *addr = a->mem->host + st->from * SP_PAGE_SIZE;
    uint64_t len = (st->to - st->from) * SP_PAGE_SIZE;
    uint8_t *copy = scratch_take(a, len);
    if (!copy)
        return false;
    for (uint64_t off = 0; off < len; off += SP_PAGE_SIZE)
        if (!agent_is_zero(addr + off))
            memcpy(copy + off, addr + off, SP_PAGE_SIZE);
    if (mremap(copy, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, addr) == MAP_FAILED) {
        madvise(copy, len, MADV_DONTNEED); /* given back; the scratch moved on */
        return false;
    }
    for (uint64_t g = st->from; g < st->to; g++)
        if (AG_KIND(a->page[g]) == AG_COWED)
            a->page[g] = ag_to_anon(a->page[g]);
    a->compactions++;
    a->compacted_pages += st->to - st->from;
    return true;
}

/* The stretches of a window, under one protection of [first.from,
 * last.to): populated, protected, each copied and moved into place, the
 * span registered again chunk by chunk, and the protection cleared over
 * it, which wakes the writers (the moved pages carry none; the merged
 * pages between keep their frames: clearing the protection of a page of
 * a private file mapping never makes it writable).  Mappings given back. */
static uint64_t compact_window(SpAgent *a, const Stretch *w, uint32_t n)
{
    uint64_t from = w[0].from, to = w[n - 1].to;
    for (uint32_t i = 0; i < n; i++)
        for (uint64_t g = w[i].from; g < w[i].to; g++)
            (void)*(volatile uint8_t *)(a->mem->host + g * SP_PAGE_SIZE); /* populated */
    if (!wp_span(a, from, to, true))
        return 0;
    if (a->test_delay_us) { /* tests: writes land in the window, then must survive the copy */
        uint64_t seen = __atomic_load_n(&a->wp_faults_seen, __ATOMIC_RELAXED);
        agent_test_hold_window(a, a->mem->host + from * SP_PAGE_SIZE, (to - from) * SP_PAGE_SIZE);
        a->compact_wp_faults += __atomic_load_n(&a->wp_faults_seen, __ATOMIC_RELAXED) - seen;
    }
    uint64_t less = 0;
    for (uint32_t i = 0; i < n; i++)
        if (move_copy(a, &w[i]))
            less += (uint64_t)w[i].gain;
    for (uint64_t g = from; g < to;) { /* agent_reregister_range's contract: one chunk */
        uint64_t end = MIN(to, (g / AG_CHUNK_PAGES + 1) * AG_CHUNK_PAGES);
        agent_reregister_range(a, a->mem->host + g * SP_PAGE_SIZE, (end - g) * SP_PAGE_SIZE);
        g = end;
    }
    wp_span(a, from, to, false);
    return less;
}

/* Mappings that rebuilding [from, to) as one anonymous mapping gives back
 * (<= 0: none; a copied page inside a merged run's mapping, for one, is
 * still part of it, and rebuilding it would split the run). */
static int64_t gain(SpAgent *a, uint64_t from, uint64_t to)
{
    int64_t before = 0, after = 0;
    for (uint64_t g = from + 1; g < to; g++)
        before += starts(a->page[g - 1], a->page[g]);
    if (from > 0) {
        before += starts(a->page[from - 1], a->page[from]);
        after += starts(a->page[from - 1], AG_MAKE(AG_ANON, 0, 0, 0));
    }
    if (to < a->npages) {
        before += starts(a->page[to - 1], a->page[to]);
        after += starts(AG_MAKE(AG_ANON, 0, 0, 0), a->page[to]);
    }
    return before - after;
}

/* The piece of [from, to) that starts at from, and where the next one
 * starts (*next).  All of it when it is COMPACT_MAX pages or fewer; else
 * it ends at the last copied page within COMPACT_MAX, which stays as it
 * is and parts it from the next piece: each piece lies between two
 * frames' mappings (or an edge of RAM), so that rebuilt it is one mapping,
 * as agent_mappings counts it.  Without such a page it is empty (what
 * follows maps no frame: nothing to give back), and the next piece starts
 * after the next copied page. */
static uint64_t piece_end(SpAgent *a, uint64_t from, uint64_t to, uint64_t *next)
{
    if (to - from <= COMPACT_MAX)
        return *next = to;
    for (uint64_t g = from + COMPACT_MAX; g > from; g--)
        if (AG_KIND(a->page[g]) == AG_COWED) {
            *next = g + 1;
            return g;
        }
    uint64_t g = from + COMPACT_MAX + 1;
    while (g < to && AG_KIND(a->page[g]) != AG_COWED)
        g++;
    *next = MIN(to, g + 1);
    return from;
}

/* A piece worth rebuilding: it holds a copied page, none evicted, none in
 * a chunk registered for missing faults, and rebuilt gives mappings back. */
static bool piece_wanted(SpAgent *a, Stretch *st)
{
    bool cowed = false;
    for (uint64_t g = st->from; g < st->to; g++) {
        if (a->page[g] & AG_OUT)
            return false;
        cowed |= AG_KIND(a->page[g]) == AG_COWED;
    }
    if (!cowed || in_missing_chunk(a, st->from, st->to))
        return false;
    return (st->gain = gain(a, st->from, st->to)) > 0;
}

void agent_compact(SpAgent *a)
{
    if (!a->compact_above || a->file_backed || a->evicting->len || !a->npages)
        return;
    uint64_t maps = agent_mappings(a);
    if (maps * 1000 <= a->npages * a->compact_above)
        return;
    uint64_t target = a->npages * (a->compact_above * 8 / 9) / 1000;
    Stretch w[WINDOW_MAX];
    uint32_t n = 0, done = 0;
    uint64_t want = 0; /* mappings the window gives back */
    for (uint64_t g = 0; g < a->npages && done < COMPACT_PER_PASS;) {
        if (AG_KIND(a->page[g]) == AG_MERGED) {
            g++;
            continue;
        }
        uint64_t to = g;
        while (to < a->npages && AG_KIND(a->page[to]) != AG_MERGED)
            to++;
        /* [g, to) between merged pages, in pieces of COMPACT_MAX at most */
        bool enough = false;
        for (uint64_t from = g; from < to && done < COMPACT_PER_PASS;) {
            uint64_t next;
            Stretch st = {.from = from, .to = piece_end(a, from, to, &next)};
            from = next;
            if (st.to == st.from || !piece_wanted(a, &st))
                continue;
            if (n && (n == WINDOW_MAX || st.to - w[0].from > WINDOW_PAGES)) {
                maps -= MIN(maps, compact_window(a, w, n));
                done += n;
                n = 0;
                want = 0;
            }
            if ((enough = maps - MIN(maps, want) <= target))
                break;
            w[n++] = st;
            want += (uint64_t)st.gain;
        }
        if (enough)
            break;
        g = to;
    }
    if (n)
        compact_window(a, w, n);
}
