/* SPDX-License-Identifier: MIT */
/*
 * agent-merge.c - changing how one guest page is mapped, without losing a
 * write.
 *
 * Every operation follows the same protocol (design.md, mechanism 3):
 *   1. write-protect the page with userfaultfd: from now on a guest write
 *      (through KVM) or a VMM write blocks in the kernel;
 *   2. check the content under protection (byte for byte);
 *   3. replace the mapping: mmap(MAP_FIXED) of a frame (merge), an empty
 *      anonymous mapping or MADV_DONTNEED (zero), or an mremap of a private
 *      copy (unmerge) - each is atomic under the kernel's mmap lock;
 *   4. register the new mapping with the userfaultfd, then clear the
 *      protection, which wakes any blocked writer: its retried write lands
 *      in the new mapping (a private copy of the frame, the zero page's
 *      replacement, or the unmerged copy).
 * If the content differs at step 2, the protection is cleared and nothing
 * changes.  A write is never lost and a changed page is never merged.
 *
 * Merges come in runs (agent_merge_run): consecutive guest pages onto
 * consecutive frames of one file, as identical guests booted from one
 * image hold them.  A run takes each step once for all its pages - one
 * protection, one mmap per stretch of pages that still match, one
 * registration, one wake - so a run of 64 costs about what one page does,
 * and is one mapping.  A kernel that protects only within one mapping
 * (before Linux 6.5) refuses a run that spans several: it is then merged
 * page by page.
 *
 * Agent lock held, on the agent thread (or the clone code, holding it).
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sharing/agent-priv.h"

static void *page_addr(SpAgent *a, uint64_t gfn)
{
    return a->mem->host + gfn * SP_PAGE_SIZE;
}

bool agent_wp_range(SpAgent *a, void *addr, uint64_t len, bool on)
{
    struct uffdio_writeprotect w = {
        .range = {.start = (uintptr_t)addr, .len = len},
        .mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
    };
    return ioctl(a->mem->uffd, UFFDIO_WRITEPROTECT, &w) == 0;
}

static bool wp(SpAgent *a, void *addr, bool on)
{
    return agent_wp_range(a, addr, SP_PAGE_SIZE, on);
}

bool agent_chunk_is_missing(SpAgent *a, uint64_t gfn)
{
    uint64_t c = gfn / AG_CHUNK_PAGES;
    return a->missing && (__atomic_load_n(&a->missing[c / 64], __ATOMIC_ACQUIRE) >> (c % 64)) & 1;
}

/* Register a freshly created mapping with the userfaultfd: write-protect
 * mode, and missing mode too in a chunk that holds swapped pages. */
void agent_reregister(SpAgent *a, void *addr)
{
    agent_reregister_range(a, addr, SP_PAGE_SIZE);
}

void agent_reregister_range(SpAgent *a, void *addr, uint64_t len)
{
    uint64_t gfn = ((uint8_t *)addr - a->mem->host) / SP_PAGE_SIZE;
    struct uffdio_register r = {
        .range = {.start = (uintptr_t)addr, .len = len},
        .mode = UFFDIO_REGISTER_MODE_WP |
                (agent_chunk_is_missing(a, gfn) ? UFFDIO_REGISTER_MODE_MISSING : 0),
    };
    if (ioctl(a->mem->uffd, UFFDIO_REGISTER, &r) < 0)
        g_warning("event=uffd-register-failed vm=%s addr=%p error=\"%s\"", a->name, addr,
                  g_strerror(errno));
}

bool agent_chunk_missing(SpAgent *a, uint64_t gfn)
{
    if (agent_chunk_is_missing(a, gfn))
        return true;
    uint64_t c = gfn / AG_CHUNK_PAGES, first = c * AG_CHUNK_PAGES;
    uint64_t n = MIN((uint64_t)AG_CHUNK_PAGES, a->npages - first);
    struct uffdio_register r = {
        .range = {.start = (uintptr_t)(a->mem->host + first * SP_PAGE_SIZE),
                  .len = n * SP_PAGE_SIZE},
        .mode = UFFDIO_REGISTER_MODE_WP | UFFDIO_REGISTER_MODE_MISSING,
    };
    if (ioctl(a->mem->uffd, UFFDIO_REGISTER, &r) < 0) {
        g_warning("event=uffd-register-failed vm=%s chunk=%" G_GUINT64_FORMAT
                  " mode=missing error=\"%s\"",
                  a->name, c, g_strerror(errno));
        return false;
    }
    __atomic_fetch_or(&a->missing[c / 64], 1ULL << (c % 64), __ATOMIC_RELEASE);
    return true;
}

/* Wake writers blocked on the page (after its protection went with the old mapping). */
static void wake_range(SpAgent *a, void *addr, uint64_t len)
{
    struct uffdio_range r = {.start = (uintptr_t)addr, .len = len};
    ioctl(a->mem->uffd, UFFDIO_WAKE, &r);
}

static void wake(SpAgent *a, void *addr)
{
    wake_range(a, addr, SP_PAGE_SIZE);
}

bool agent_is_zero(const void *p)
{
    const uint64_t *w = p;
    for (size_t i = 0; i < SP_PAGE_SIZE / 8; i++)
        if (w[i])
            return false;
    return true;
}

const uint8_t *agent_frame_ptr(SpAgent *a, uint32_t space, uint32_t off)
{
    if (space >= AG_MAX_SPACES || a->spaces[space].fd < 0 ||
        ((uint64_t)off + 1) * SP_PAGE_SIZE > a->spaces[space].len)
        return NULL;
    return a->spaces[space].view + (uint64_t)off * SP_PAGE_SIZE;
}

/* Tests: keep the window [addr, addr + len) open and count guest writes
 * that block in it.  The fault messages are only read, never answered:
 * the wake that ends every merge is what lets the writers go on. */
void agent_test_hold_window(SpAgent *a, void *addr, uint64_t len)
{
    uintptr_t start = (uintptr_t)addr, end = start + len;
    if (a->swap_thread) { /* it reads the userfaultfd: it counts them */
        __atomic_store_n(&a->window_end, end, __ATOMIC_RELEASE);
        __atomic_store_n(&a->window, start, __ATOMIC_RELEASE);
        g_usleep(a->test_delay_us);
        __atomic_store_n(&a->window, 0, __ATOMIC_RELEASE);
        return;
    }
    g_usleep(a->test_delay_us);
    struct uffd_msg msg;
    while (read(a->mem->uffd, &msg, sizeof(msg)) == sizeof(msg)) {
        uintptr_t at = msg.arg.pagefault.address;
        if (msg.event == UFFD_EVENT_PAGEFAULT &&
            (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) && at >= start && at < end)
            a->wp_faults_seen++;
    }
}

/* Each merged page may cost two mappings; stop short of the kernel's limit. */
static bool map_budget_ok(SpAgent *a)
{
    uint64_t est = 1024 + 2 * a->merged + 2 * a->zero;
    return est + 1024 < a->max_map_count * 9 / 10;
}

bool agent_can_merge(SpAgent *a, uint64_t gfn, uint32_t space, uint32_t off)
{
    uint64_t p = a->page[gfn];
    unsigned kind = AG_KIND(p);
    return agent_frame_ptr(a, space, off) && (kind == AG_ANON || kind == AG_COWED) &&
           (p & AG_TOUCHED) && !(p & AG_OUT);
}

/* The page's new state once merged. */
static void merged(SpAgent *a, uint64_t gfn, uint32_t space, uint32_t off)
{
    a->page[gfn] = AG_MAKE(AG_MERGED, space, off, a->page[gfn] & AG_CARRY & ~(uint64_t)AG_HASHED);
    if (a->rmap)
        sp_rmap_vm_note_off(a->rmap, gfn);
    a->merged++;
    a->merges++;
}

/* Step 3: map n frames from (space, off) over the pages at addr; false if
 * the kernel refused (the old pages are untouched, still protected). */
static bool map_frames(SpAgent *a, uint8_t *addr, uint64_t n, uint32_t space, uint32_t off)
{
    void *p = mmap(addr, n * SP_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED,
                   a->spaces[space].fd, (off_t)off * (off_t)SP_PAGE_SIZE);
    if (p == MAP_FAILED) {
        /* Typically the mapping limit. */
        if (!a->map_limit_warned)
            g_warning("event=merge-mmap-failed vm=%s error=\"%s\" (merging paused for such "
                      "pages; the guest is unaffected)",
                      a->name, g_strerror(errno));
        a->map_limit_warned = true;
        return false;
    }
    a->merge_maps++;
    return true;
}

/* Steps 3 and 4 for the pages [i, j) of a run, protected, that all match
 * (res[i] set) or all differ; false if the mmap failed (nothing changed). */
static bool remap_stretch(SpAgent *a, uint8_t *addr, uint32_t space, uint32_t off, uint8_t match,
                          uint32_t n)
{
    uint64_t len = (uint64_t)n * SP_PAGE_SIZE;
    if (!match || !map_frames(a, addr, n, space, off)) {
        agent_wp_range(a, addr, len, false);
        return !match;
    }
    agent_reregister_range(a, addr, len);
    return true;
}

uint32_t agent_merge_run(SpAgent *a, uint64_t gfn, uint32_t n, uint32_t space, uint32_t off,
                         uint8_t *res)
{
    memset(res, 0, n);
    uint8_t *addr = page_addr(a, gfn);
    uint64_t len = (uint64_t)n * SP_PAGE_SIZE;
    const uint8_t *fp = agent_frame_ptr(a, space, off);
    if (!n || !fp || !agent_frame_ptr(a, space, off + n - 1) || !map_budget_ok(a))
        return 0;
    /* Make sure the pages are populated, so that the protection takes hold. */
    for (uint32_t i = 0; i < n; i++)
        (void)*(volatile uint8_t *)(addr + (uint64_t)i * SP_PAGE_SIZE);
    if (!agent_wp_range(a, addr, len, true)) {
        if (n == 1)
            return 0;
        /* The run spans mappings this kernel cannot protect at once. */
        uint32_t k = 0;
        for (uint32_t i = 0; i < n; i++)
            k += agent_merge_run(a, gfn + i, 1, space, off + i, res + i);
        return k;
    }
    for (uint32_t i = 0; i < n; i++)
        res[i] = memcmp(addr + (uint64_t)i * SP_PAGE_SIZE, fp + (uint64_t)i * SP_PAGE_SIZE,
                        SP_PAGE_SIZE) == 0;
    if (a->test_delay_us)
        agent_test_hold_window(a, addr, len);
    uint32_t k = 0;
    for (uint32_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && res[j] == res[i];)
            j++;
        if (!remap_stretch(a, addr + (uint64_t)i * SP_PAGE_SIZE, space, off + i, res[i], j - i))
            memset(res + i, 0, j - i);
        for (uint32_t m = i; m < j && res[m]; m++, k++)
            merged(a, gfn + m, space, off + m);
    }
    wake_range(a, addr, len);
    return k;
}

/* A span ends where the next item is more than this many pages on: the
 * pages between are protected too, and protecting a page also makes KVM
 * drop its mapping of it (the guest faults it back in), so a sparse span
 * costs the guests more than it saves (measured: churn CPU 14 % -> 24 %
 * with whole-chunk spans). */
#define AG_SPAN_GAP 4

static bool in_run(const SpProtoMergeItem *p, const SpProtoMergeItem *q)
{
    return q->gfn == p->gfn + 1 && q->space == p->space && q->off == p->off + 1 &&
           q->gfn / AG_CHUNK_PAGES == p->gfn / AG_CHUNK_PAGES;
}

/* The items [0, n) that may merge (ok), run by run. */
static void merge_runs(SpAgent *a, const SpProtoMergeItem *it, uint64_t n, const uint8_t *ok,
                       uint8_t *res)
{
    for (uint64_t i = 0, j; i < n; i = j) {
        j = i + 1;
        if (!ok[i])
            continue;
        while (j < n && ok[j] && in_run(&it[j - 1], &it[j]))
            j++;
        agent_merge_run(a, it[i].gfn, (uint32_t)(j - i), it[i].space, it[i].off, res + i);
    }
}

/* One span: items of one chunk, in ascending guest order.  The whole span
 * [first item, last item] is protected at once - its other pages too: a
 * guest write to one of them waits the few microseconds of the span and
 * is woken with the rest - then each run that still matches is mapped,
 * the span registered and unprotected once, and woken once. */
static void merge_span(SpAgent *a, const SpProtoMergeItem *it, uint64_t n, const uint8_t *allowed,
                       uint8_t *res)
{
    /* Checked again now: an earlier span of the same request may have
     * merged a page named twice.  A span holds at most a chunk's pages
     * (ascending, in one chunk). */
    uint8_t ok[AG_CHUNK_PAGES];
    g_assert(n <= AG_CHUNK_PAGES);
    for (uint64_t k = 0; k < n; k++)
        ok[k] = allowed[k] && agent_can_merge(a, it[k].gfn, it[k].space, it[k].off);
    uint64_t first = n, last = 0, count = 0;
    for (uint64_t k = 0; k < n; k++)
        if (ok[k]) {
            first = MIN(first, k);
            last = k;
            count++;
        }
    /* Pages protected for an eviction must stay so: no span then. */
    if (count < 2 || a->evicting->len || !map_budget_ok(a)) {
        merge_runs(a, it, n, ok, res);
        return;
    }
    uint64_t g0 = it[first].gfn, npages = it[last].gfn + 1 - g0;
    uint8_t *lo = page_addr(a, g0);
    uint64_t len = npages * SP_PAGE_SIZE;
    for (uint64_t k = first; k <= last; k++)
        if (ok[k]) /* present, so that the protection takes hold */
            (void)*(volatile uint8_t *)page_addr(a, it[k].gfn);
    if (!agent_wp_range(a, lo, len, true)) { /* a kernel that protects within one mapping only */
        merge_runs(a, it, n, ok, res);
        return;
    }
    for (uint64_t k = 0; k < n; k++)
        res[k] = ok[k] && memcmp(page_addr(a, it[k].gfn),
                                 agent_frame_ptr(a, it[k].space, it[k].off), SP_PAGE_SIZE) == 0;
    if (a->test_delay_us)
        agent_test_hold_window(a, lo, len);
    bool mapped = false;
    for (uint64_t k = 0, j; k < n; k = j) {
        j = k + 1;
        if (!res[k])
            continue;
        while (j < n && res[j] && in_run(&it[j - 1], &it[j]))
            j++;
        if (!map_frames(a, page_addr(a, it[k].gfn), j - k, it[k].space, it[k].off)) {
            memset(res + k, 0, j - k);
            continue;
        }
        mapped = true;
    }
    if (mapped)
        agent_reregister_range(a, lo, len);
    if (!agent_wp_range(a, lo, len, false)) {
        /* The span is several mappings now, and this kernel unprotects
         * within one only: every page that was not remapped, one by one. */
        uint64_t done[AG_CHUNK_PAGES / 64] = {0};
        for (uint64_t k = 0; k < n; k++)
            if (res[k])
                done[(it[k].gfn - g0) / 64] |= 1ULL << ((it[k].gfn - g0) % 64);
        for (uint64_t i = 0; i < npages; i++)
            if (!(done[i / 64] >> (i % 64) & 1))
                wp(a, page_addr(a, g0 + i), false);
    }
    wake_range(a, lo, len);
    for (uint64_t k = 0; k < n; k++)
        if (res[k])
            merged(a, it[k].gfn, it[k].space, it[k].off);
}

void agent_merge_items(SpAgent *a, const SpProtoMergeItem *it, uint64_t n, const uint8_t *ok,
                       uint8_t *res)
{
    memset(res, 0, n);
    for (uint64_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && it[j].gfn > it[j - 1].gfn &&
                        it[j].gfn - it[j - 1].gfn <= AG_SPAN_GAP &&
                        it[j].gfn / AG_CHUNK_PAGES == it[i].gfn / AG_CHUNK_PAGES;)
            j++;
        merge_span(a, it + i, j - i, ok + i, res + i);
    }
}

bool agent_zero_page(SpAgent *a, uint64_t gfn)
{
    uint8_t *addr = page_addr(a, gfn);
    uint64_t old = a->page[gfn];
    (void)*(volatile uint8_t *)addr;
    if (!wp(a, addr, true))
        return false;
    if (!agent_is_zero(addr)) {
        wp(a, addr, false);
        return false;
    }
    if (AG_KIND(old) == AG_ANON && !a->file_backed) {
        /* Anonymous memory: drop the page; the next read maps the zero page. */
        madvise(addr, SP_PAGE_SIZE, MADV_DONTNEED);
    } else {
        /* A copied-on-write page sits in a file mapping (a frame's, or a
         * clone group file's): dropping it would expose the file's old
         * content, so put an empty anonymous mapping in its place instead. */
        void *p = mmap(addr, SP_PAGE_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            wp(a, addr, false);
            return false;
        }
        agent_reregister(a, addr);
    }
    wp(a, addr, false);
    wake(a, addr);
    a->page[gfn] = AG_MAKE(AG_ZERO, 0, 0, old & AG_CARRY & ~(uint64_t)AG_HASHED);
    if (a->rmap)
        sp_rmap_vm_note_off(a->rmap, gfn);
    a->zero++;
    return true;
}

bool agent_unmerge_page(SpAgent *a, uint64_t gfn)
{
    uint8_t *addr = page_addr(a, gfn);
    uint64_t old = a->page[gfn];
    (void)*(volatile uint8_t *)addr;
    if (!wp(a, addr, true))
        return false;
    /* A private copy of the current content, moved into place in one step. */
    void *copy =
        mmap(NULL, SP_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (copy == MAP_FAILED) {
        wp(a, addr, false);
        return false;
    }
    memcpy(copy, addr, SP_PAGE_SIZE);
    if (mremap(copy, SP_PAGE_SIZE, SP_PAGE_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, addr) ==
        MAP_FAILED) {
        munmap(copy, SP_PAGE_SIZE);
        wp(a, addr, false);
        return false;
    }
    agent_reregister(a, addr);
    wake(a, addr);
    if (AG_KIND(old) == AG_MERGED)
        agent_release(a, gfn, old);
    a->page[gfn] = ag_to_anon(old); /* MERGED or COWED: no hash kept */
    return true;
}

bool agent_page_is_file(SpAgent *a, uint64_t gfn, bool *present)
{
    uint64_t ent = 0;
    off_t off = (off_t)(((uintptr_t)a->mem->host / SP_PAGE_SIZE + gfn) * 8);
    if (a->pagemap_fd < 0 || pread(a->pagemap_fd, &ent, 8, off) != 8) {
        /* Unknown: say "still the frame's page".  At worst a frame is kept
         * too long; releasing one that is still mapped could let it be
         * freed under the guest. */
        *present = true;
        return true;
    }
    *present = (ent >> 63) & 1;
    return (ent >> 61) & 1;
}
