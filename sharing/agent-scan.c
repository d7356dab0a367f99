/* SPDX-License-Identifier: MIT */
/*
 * agent-scan.c - the agent's part of a scan: harvest the dirty log, then
 * examine pages and hand the index its candidates.
 *
 * At the start of every pass (M_BEGIN) KVM's dirty log is harvested
 * (KVM_GET_DIRTY_LOG returns and clears it), together with the pages VMM
 * threads reported writing.  A written page is VOLATILE for this pass (KSM
 * would say its checksum changed) and its hash is stale.  A written MERGED
 * page was copied on write by the kernel - unless the bit is stale (the
 * write happened just before the merge and the merge saw its result), so
 * pagemap decides: a page still mapped from the file is still merged.  A
 * copied page releases its frame (the index drops the reference).
 *
 * Then (M_SCAN) every touched page that is not volatile, merged or zero is
 * hashed (once: the hash stays valid until the page is written; a COWED
 * page, which has no room for it, each time), dropped if it is all zero, or
 * returned as a candidate (gfn, hash) for the index to match against its
 * stable index and unstable table - but with smart_scan, a page that has
 * stayed unmerged and unwritten for three passes or more is left out of
 * some passes (smart_skip; it costs neither a hash nor a lookup there).
 *
 * Agent lock held throughout.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kvm.h>
#include <xxhash.h>

#include "config.h"
#include "sharing/agent-priv.h"

uint32_t agent_page_hash(const void *p)
{
    XXH64_hash_t h = XXH3_64bits(p, SP_PAGE_SIZE);
    return (uint32_t)(h ^ (h >> 32));
}

void agent_release(SpAgent *a, uint64_t gfn, uint64_t p)
{
    SpProtoFrameLoc loc = {.gfn = gfn, .space = AG_SPACE(p), .off = AG_OFF(p)};
    g_array_append_val(a->released, loc);
    a->merged--;
}

void agent_page_written(SpAgent *a, uint64_t gfn)
{
    uint64_t p = a->page[gfn];
    if (a->rmap) /* a write copies the page out of its clone group, if it was in one */
        sp_rmap_vm_note_off(a->rmap, gfn);
    if (!(p & AG_TOUCHED))
        a->touched++;
    p |= AG_TOUCHED | AG_VOLATILE;
    p &= ~(uint64_t)AG_HASHED;
    bool present = true;
    switch (AG_KIND(p)) {
    case AG_MERGED:
        if (agent_page_is_file(a, gfn, &present) || !present) {
            /* stale bit: the write preceded the merge, which saw its result */
            p &= ~(uint64_t)AG_VOLATILE;
            break;
        }
        a->cow_breaks++;
        agent_release(a, gfn, p);
        p = (p & ~(uint64_t)AG_KIND_MASK) | AG_COWED;
        break;
    case AG_ZERO:
        agent_page_is_file(a, gfn, &present);
        if (!present) { /* stale: still dropped */
            p &= ~(uint64_t)AG_VOLATILE;
            break;
        }
        a->zero--;
        p = ag_to_anon(p);
        break;
    default:
        break;
    }
    a->page[gfn] = p;
}

/* Debug builds: the agent's counters against its page states (the
 * index's are checked by sharing/counters.c); g_critical per mismatch. */
static void agent_recount(SpAgent *a)
{
    uint64_t merged = 0, zero = 0, touched = 0;
    for (uint64_t g = 0; g < a->npages; g++) {
        merged += AG_KIND(a->page[g]) == AG_MERGED;
        zero += AG_KIND(a->page[g]) == AG_ZERO;
        touched += (a->page[g] & AG_TOUCHED) != 0;
    }
    const struct {
        const char *name;
        uint64_t expected, found;
    } c[] = {
        {"merged", merged, a->merged}, {"zero", zero, a->zero}, {"touched", touched, a->touched}};
    for (size_t i = 0; i < G_N_ELEMENTS(c); i++)
        if (c[i].expected != c[i].found)
            g_critical(
                "event=recount-mismatch counter=%s owner=agent:%s expected=%" G_GUINT64_FORMAT
                " found=%" G_GUINT64_FORMAT,
                c[i].name, a->name, c[i].expected, c[i].found);
}

void agent_begin(SpAgent *a)
{
    agent_swap_pass(a); /* idle ages, from last pass's volatility */
    if (SP_DEBUG_RECOUNT)
        agent_recount(a);
    uint64_t words = (a->npages + 63) / 64;
    /* Last pass's volatility is over. */
    for (uint64_t g = 0; g < a->npages; g++)
        a->page[g] &= ~(uint64_t)AG_VOLATILE;
    a->volatile_now = 0;
    memset(a->dirty, 0, words * 8);
    struct kvm_dirty_log log = {.slot = a->slot, .dirty_bitmap = a->dirty};
    if (a->kvm_fd >= 0 && ioctl(a->kvm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
        g_warning("event=dirty-log-failed vm=%s error=\"%s\"", a->name, g_strerror(errno));
    for (uint64_t w = 0; w < words; w++) {
        uint64_t bits = a->dirty[w] | __atomic_exchange_n(&a->vmm_dirty[w], 0, __ATOMIC_ACQ_REL);
        while (bits) {
            uint64_t gfn = w * 64 + (uint64_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            if (gfn < a->npages)
                agent_page_written(a, gfn);
        }
    }
    agent_compact(a); /* what the copies-on-write just found left behind */
}

/* Each candidate's host node, from the kernel (move_pages in query mode,
 * one call per QUERY_BATCH pages): merge_across_nodes=0 indexes pages of
 * each node apart.  A page the kernel cannot place stays "not known". */
static void cands_nodes(SpAgent *a, GArray *cands)
{
    enum { QUERY_BATCH = 512 };
    void *pages[QUERY_BATCH];
    int status[QUERY_BATCH];
    for (guint first = 0; first < cands->len; first += QUERY_BATCH) {
        guint n = MIN((guint)QUERY_BATCH, cands->len - first);
        for (guint i = 0; i < n; i++)
            pages[i] =
                a->mem->host + g_array_index(cands, SpProtoCand, first + i).gfn * SP_PAGE_SIZE;
        if (syscall(SYS_move_pages, 0, (unsigned long)n, pages, NULL, status, 0) < 0)
            return;
        for (guint i = 0; i < n; i++)
            g_array_index(cands, SpProtoCand, first + i).node1 =
                status[i] >= 0 && status[i] < 64 ? (uint32_t)status[i] + 1 : 0;
    }
}

/* smart_scan: is a page that has stayed unmerged and unwritten for as many
 * passes as its idle count left out of pass `pass`?  Not in its first three
 * passes unwritten; then it is examined every 2nd pass (idle 3-5), every
 * 4th (6-8), and from then on every 8th - always in passes whose number is
 * a multiple of 8, and the same for every VM, so such pages still meet
 * each other in the unstable table once in 8 passes.  KSM's smart_scan
 * (Linux 6.7) has the same steps, but each page skips in a phase of its
 * own (its rmap item's count of skips left). */
static bool smart_skip(uint64_t p, uint32_t pass)
{
    unsigned idle = AG_IDLE(p);
    if (idle < 3)
        return false;
    uint32_t step = idle <= 5 ? 2 : idle <= 8 ? 4 : 8;
    return pass % step != 0;
}

void agent_scan(SpAgent *a, const SpProtoScan *s, GArray *cands, SpProtoCands *out,
                uint64_t *skipped)
{
    static uint32_t zero_hash;
    if (!zero_hash) {
        static const uint8_t zero[SP_PAGE_SIZE];
        zero_hash = agent_page_hash(zero);
    }
    uint64_t g = MAX(s->cursor, a->first), end = MIN(a->end, s->limit);
    uint32_t budget = s->budget;
    bool smart = (s->flags & SP_PROTO_SCAN_SMART) != 0;
    for (; g < end && budget > 0 && cands->len < s->max_cands; g++, budget--) {
        uint64_t p = a->page[g];
        if (!(p & AG_TOUCHED) || (p & AG_OUT))
            continue; /* untouched, a clone's page still in its group, or swapped out */
        if (AG_KIND(p) == AG_MERGED || AG_KIND(p) == AG_ZERO)
            continue;
        if (smart && !(p & AG_VOLATILE) && smart_skip(p, s->pass)) {
            (*skipped)++; /* stepped over like a merged page: the pass takes as long */
            continue;
        }
        out->scanned++;
        if (p & AG_VOLATILE) {
            out->volatile_++;
            a->volatile_now++;
            continue;
        }
        const uint8_t *addr = a->mem->host + g * SP_PAGE_SIZE;
        uint32_t hash = AG_HASH(p);
        if (!(p & AG_HASHED)) {
            hash = agent_page_hash(addr);
            if (AG_KIND(p) == AG_ANON)
                a->page[g] = ag_hashed(p, hash);
            out->work++;
        }
        if (a->use_zero_pages && hash == zero_hash && agent_zero_page(a, g)) {
            out->work++;
            continue;
        }
        SpProtoCand c = {.gfn = g, .hash = hash};
        g_array_append_val(cands, c);
    }
    out->next = g;
    out->done = g >= end;
    if (s->flags & SP_PROTO_SCAN_NODES)
        cands_nodes(a, cands);
}

void agent_unmerge_all(SpAgent *a)
{
    for (uint64_t g = 0; g < a->npages; g++) {
        unsigned k = AG_KIND(a->page[g]);
        if (a->page[g] & AG_OUT)
            continue; /* not mapped: nothing to unmerge */
        if (k == AG_MERGED || k == AG_COWED) {
            agent_unmerge_page(a, g);
        } else if (k == AG_ZERO) {
            a->page[g] = ag_to_anon(a->page[g]);
            a->zero--;
        }
    }
}

/* Initial states: pages in memory already (the loader's, or written before
 * attach) are touched - except, in a clone, pages that still map their
 * clone group: they are shared already, and only a write makes them
 * candidates.  A private page of a clone (present, not a file page) left
 * its group for the reverse map. */
bool agent_init_states(SpAgent *a, GError **error)
{
    a->touched = a->merged = a->zero = 0;
    if (a->file_backed) {
        const uint64_t chunk = 1ULL << 16;
        g_autofree uint64_t *ent = g_new(uint64_t, chunk);
        for (uint64_t g = 0; g < a->npages; g += chunk) {
            uint64_t n = MIN(chunk, a->npages - g);
            off_t off = (off_t)(((uintptr_t)a->mem->host / SP_PAGE_SIZE + g) * 8);
            if (a->pagemap_fd < 0 || pread(a->pagemap_fd, ent, n * 8, off) != (ssize_t)(n * 8)) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                            "VM '%s': cannot read /proc/self/pagemap", a->name);
                return false;
            }
            for (uint64_t i = 0; i < n; i++) {
                a->page[g + i] = 0;
                if ((ent[i] >> 63) && !((ent[i] >> 61) & 1)) {
                    a->page[g + i] = AG_TOUCHED | AG_VOLATILE;
                    a->touched++;
                    if (a->rmap)
                        sp_rmap_vm_note_off(a->rmap, g + i);
                }
            }
        }
        return true;
    }
    const uint64_t chunk = 1ULL << 20;
    g_autofree unsigned char *vec = g_malloc(MIN(a->npages, chunk));
    for (uint64_t g = 0; g < a->npages; g += chunk) {
        uint64_t n = MIN(a->npages - g, chunk);
        if (mincore(a->mem->host + g * SP_PAGE_SIZE, n * SP_PAGE_SIZE, vec) < 0)
            memset(vec, 1, n); /* unknown: every page a candidate */
        for (uint64_t i = 0; i < n; i++) {
            a->page[g + i] = (vec[i] & 1) ? AG_TOUCHED | AG_VOLATILE : 0;
            a->touched += vec[i] & 1;
        }
    }
    return true;
}

/* Read pagemap once: pages that are private now left their clone layer
 * (off bits), and merged pages among them were copied on write, which the
 * dirty log may not have told us yet. */
bool agent_settle(SpAgent *a, GError **error)
{
    if (!sp_rmap_sync(a->rmap, error))
        return false;
    if (!a->attached)
        return true;
    const uint64_t chunk = 1ULL << 16;
    g_autofree uint64_t *ent = g_new(uint64_t, chunk);
    for (uint64_t g = 0; g < a->npages; g += chunk) {
        uint64_t n = MIN(chunk, a->npages - g);
        off_t off = (off_t)(((uintptr_t)a->mem->host / SP_PAGE_SIZE + g) * 8);
        if (pread(a->pagemap_fd, ent, n * 8, off) != (ssize_t)(n * 8))
            return true;
        for (uint64_t i = 0; i < n; i++)
            if ((ent[i] >> 63) && !((ent[i] >> 61) & 1) && AG_KIND(a->page[g + i]) == AG_MERGED)
                agent_page_written(a, g + i);
    }
    return true;
}

/* Mappings: a new one starts wherever the kind of mapping changes or
 * file-backed pages stop mapping consecutive frames of one space. */
uint64_t agent_mappings(SpAgent *a)
{
    uint64_t maps = 1;
    for (uint64_t g = 1; g < a->npages; g++) {
        uint64_t x = a->page[g - 1], y = a->page[g];
        bool fx = AG_KIND(x) == AG_MERGED || AG_KIND(x) == AG_COWED;
        bool fy = AG_KIND(y) == AG_MERGED || AG_KIND(y) == AG_COWED;
        if (fx != fy || (fy && (AG_SPACE(y) != AG_SPACE(x) || AG_OFF(y) != AG_OFF(x) + 1)))
            maps++;
    }
    return maps;
}
