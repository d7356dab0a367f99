/* SPDX-License-Identifier: MIT */
/*
 * agent-swap.c - the VM process's part of swap (docs/swap.md): giving cold
 * pages up, and getting pages back when the guest touches them.
 *
 * Eviction of private pages, two requests from the supervisor:
 *   M_EVICT       the clock goes over the pages from its hand and picks
 *                 cold ones: ANON or COWED, touched, not written for
 *                 min_idle passes, and not swapped in since the clock last
 *                 passed (a refaulted page gets a second chance).  Each is
 *                 write-protected first (a guest write now blocks: nothing
 *                 written after the copy can be lost), then copied; the
 *                 answer carries the gfns and a blob of their contents.
 *   M_EVICT_DONE  one byte per page: stored, all zero, or kept.  A stored
 *                 page's chunk is registered for missing faults, the page
 *                 is dropped (MADV_DONTNEED in anonymous RAM; an empty
 *                 anonymous mapping in a file mapping, which must not show
 *                 the file again) and marked OUT.  An all-zero page is
 *                 dropped the way the engine drops zero pages (ZERO, not
 *                 OUT: it has no slot, and a read maps the zero page), so
 *                 that every page OUT has a slot: one without is a lost
 *                 one, never taken for zeros (SP_PROTO_AGENT_DROPS_ZERO,
 *                 said in the M_SWAP_STORE reply).  Then every page is
 *                 unprotected, which wakes any blocked writer: its write
 *                 faults as missing and the page comes back first.
 *   If the channel goes (samepaged died) or a new one comes between the
 *   two, the M_EVICT_DONE never will: the pages are unprotected as they
 *   are (agent_swap_evict_abandon), or a guest writing one would block for
 *   ever.  Their slots, if the old store has them, are orphans the new
 *   samepaged takes over and never answers (the pages are not OUT).
 * Frames (M_PREP): before the supervisor punches a shared frame out of its
 * file, every VM that maps it registers that page's chunk for missing
 * faults, so that nobody reads a hole (which the kernel would fill with a
 * zero page, for every sharer).
 *
 * Swap-in: the swap thread reads the userfaultfd.  A missing fault on
 *   an OUT page      asks the supervisor (S_IN PAGE) for its content and
 *                    installs it (UFFDIO_COPY, which wakes the guest);
 *   a merged page    asks for its frame (S_IN FRAME): the supervisor puts
 *                    the frame's page back into the pool once, for every
 *                    sharer, and the fault is retried (UFFDIO_WAKE): the
 *                    guest maps that same page again, sharing kept;
 *   a clone's page   the same for its layer's group file (S_IN LAYER, with
 *                    the file's inode: the supervisor writes the page back
 *                    into that file, for the whole family);
 *   anything else    (an untouched page of a registered chunk, or one
 *                    dropped as zero): the zero page.
 * A page whose content the supervisor lost (SP_PROTO_SWAPANS_LOST: after a
 * crash of samepaged, a slot that did not survive or a shared page it could
 * not write back; a slot the store cannot read) ends the VM through
 * SpAgentVm.lost, with the supervisor's reason, before the guest is let
 * go: never zeros in its place.
 * Write-protect faults are the merge protocol's; they are woken there.
 *
 * Locking: the swap thread never takes the agent lock (the agent thread may
 * itself be blocked on a missing fault that only the swap thread can
 * resolve) and never writes a page word: it reads them, installs the page,
 * and queues its gfn in `swapped_in`; the agent thread clears OUT for
 * those at its next pass (until then the present page is just not a
 * candidate).  swap_lock guards the channel, the queue and the figures.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sharing/agent-priv.h"

/* How long the swap thread waits for an answer before it looks again for a
 * new channel (or the end): it goes on waiting on the same one. */
#define SWAP_REQUEST_TIMEOUT_MS 1000

static uint64_t page_word(SpAgent *a, uint64_t gfn)
{
    return __atomic_load_n(&a->page[gfn], __ATOMIC_ACQUIRE);
}

static bool wp_range(SpAgent *a, uint64_t gfn, bool on)
{
    struct uffdio_writeprotect w = {
        .range = {.start = (uintptr_t)(a->mem->host + gfn * SP_PAGE_SIZE), .len = SP_PAGE_SIZE},
        .mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
    };
    return ioctl(a->mem->uffd, UFFDIO_WRITEPROTECT, &w) == 0;
}

static void swap_start(SpAgent *a);

/* --- eviction --- */

/* Unprotect page g and wake whoever blocked writing it. */
static void evict_release(SpAgent *a, uint64_t g)
{
    wp_range(a, g, false);
    struct uffdio_range wr = {.start = (uintptr_t)(a->mem->host + g * SP_PAGE_SIZE),
                              .len = SP_PAGE_SIZE};
    ioctl(a->mem->uffd, UFFDIO_WAKE, &wr);
}

void agent_swap_evict_abandon(SpAgent *a)
{
    if (!a->evicting->len)
        return;
    g_message("event=swap-evict-abandoned vm=%s pages=%u (the supervisor went between "
              "M_EVICT and M_EVICT_DONE: the pages stay)",
              a->name, a->evicting->len);
    for (guint i = 0; i < a->evicting->len; i++)
        evict_release(a, g_array_index(a->evicting, uint64_t, i));
    g_array_set_size(a->evicting, 0);
}

bool agent_swap_evict(SpAgent *a, SpProtoMsg *req)
{
    agent_swap_evict_abandon(a); /* an earlier one never got its M_EVICT_DONE */
    SpProtoEvict ev;
    SpProtoReader r = sp_proto_reader(req);
    sp_proto_read(&r, &ev, sizeof(ev));
    uint32_t max = MIN(ev.max, (SP_PROTO_MAX_MSG - 64) / 8);
    g_array_set_size(a->evicting, 0);
    GByteArray *pages = a->evict_buf;
    g_byte_array_set_size(pages, 0);
    for (uint64_t seen = 0; seen < a->npages && a->evicting->len < max; seen++) {
        uint64_t g = a->clock;
        a->clock = (a->clock + 1) % a->npages;
        uint64_t p = a->page[g];
        unsigned k = AG_KIND(p);
        if ((k != AG_ANON && k != AG_COWED) || !(p & AG_TOUCHED) || (p & (AG_OUT | AG_VOLATILE)) ||
            AG_IDLE(p) < ev.min_idle)
            continue;
        if (a->file_backed && a->rmap && sp_rmap_vm_maps_layer(a->rmap, g))
            continue; /* still its clone family's page: evicting a copy frees nothing */
        uint64_t bit = 1ULL << (g % 64);
        if (__atomic_fetch_and(&a->refaulted[g / 64], ~bit, __ATOMIC_ACQ_REL) & bit)
            continue; /* second chance */
        uint8_t *addr = a->mem->host + g * SP_PAGE_SIZE;
        (void)*(volatile uint8_t *)addr; /* present, so that the protection holds */
        if (!wp_range(a, g, true))
            continue;
        g_byte_array_append(pages, addr, SP_PAGE_SIZE);
        g_array_append_val(a->evicting, g);
    }
    if (a->test_delay_us && a->evicting->len) { /* tests: hold the window open */
        __atomic_store_n(&a->window, 1, __ATOMIC_RELEASE);
        g_usleep(a->test_delay_us);
        __atomic_store_n(&a->window, 0, __ATOMIC_RELEASE);
    }
    SpProtoEvicted out = {.n = a->evicting->len};
    g_autoptr(GByteArray) buf = g_byte_array_new();
    g_byte_array_append(buf, (const guint8 *)&out, sizeof(out));
    g_byte_array_append(buf, (const guint8 *)a->evicting->data, a->evicting->len * 8);
    g_autoptr(GError) err = NULL;
    int fd = sp_proto_blob_new(pages->data, pages->len, &err);
    bool ok = fd >= 0 && sp_proto_reply(a->channel, &req->hdr, buf->data, buf->len, &fd, 1, NULL);
    if (fd >= 0)
        close(fd);
    if (!ok) { /* nothing will be stored: let the writers go */
        for (guint i = 0; i < a->evicting->len; i++)
            evict_release(a, g_array_index(a->evicting, uint64_t, i));
        g_array_set_size(a->evicting, 0);
    }
    return ok;
}

/* A stored page leaves: OUT first (a read that faults from now on asks
 * the supervisor, which has its slot), then dropped.  `stored` is the
 * content the supervisor keeps. */
static bool evict_page(SpAgent *a, uint64_t g, const uint8_t *stored)
{
    uint8_t *addr = a->mem->host + g * SP_PAGE_SIZE;
    uint64_t p = a->page[g];
    if (!agent_chunk_missing(a, g))
        return false;
    if (AG_KIND(p) != AG_ANON || a->file_backed) {
        /* In a file mapping a dropped page would show the file again: the
         * page moves to an anonymous mapping of its own first, with its
         * content (a reader in between sees it), registered again and
         * protected again; a write that slipped in before the protection
         * keeps the page here. */
        void *m = mmap(NULL, SP_PAGE_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED)
            return false;
        memcpy(m, addr, SP_PAGE_SIZE);
        if (mremap(m, SP_PAGE_SIZE, SP_PAGE_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, addr) ==
            MAP_FAILED) {
            munmap(m, SP_PAGE_SIZE);
            return false;
        }
        agent_reregister(a, addr);
        if (!wp_range(a, g, true) || memcmp(addr, stored, SP_PAGE_SIZE) != 0) {
            /* now an ANON page: it no longer maps the file */
            a->page[g] = AG_MAKE(AG_ANON, 0, 0, p & AG_CARRY & ~(uint64_t)AG_HASHED);
            return false;
        }
        p = ag_to_anon(p);
    }
    /* OUT before the drop, so that a fault after it asks for the slot; but
     * until the drop the page is still here, and the swap thread must not
     * read it ahead (its copy would fail, then the drop lose it). */
    __atomic_store_n(&a->leaving, g + 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&a->page[g],
                     AG_MAKE(AG_ANON, 0, 0, (p & AG_CARRY & ~(uint64_t)AG_HASHED) | AG_OUT),
                     __ATOMIC_SEQ_CST);
    bool dropped = madvise(addr, SP_PAGE_SIZE, MADV_DONTNEED) == 0;
    if (!dropped)
        __atomic_store_n(&a->page[g], p, __ATOMIC_RELEASE);
    __atomic_store_n(&a->leaving, 0, __ATOMIC_SEQ_CST);
    if (!dropped)
        return false;
    if (a->rmap)
        sp_rmap_vm_note_off(a->rmap, g);
    a->out_now++;
    return true;
}

bool agent_swap_evict_done(SpAgent *a, SpProtoMsg *req)
{
    uint64_t n = req->hdr.len;
    SpProtoReader r = sp_proto_reader(req);
    const uint8_t *stored = sp_proto_read_array(&r, n, 1);
    g_autofree uint8_t *res = g_malloc0(n ? n : 1);
    for (guint i = 0; i < a->evicting->len; i++) {
        uint64_t g = g_array_index(a->evicting, uint64_t, i);
        uint8_t how = stored && i < n ? stored[i] : SP_PROTO_EVICT_KEEP;
        if (how == SP_PROTO_EVICT_ZERO &&
            agent_is_zero(a->evict_buf->data + (uint64_t)i * SP_PAGE_SIZE))
            res[i] = agent_zero_page(a, g); /* (it was protected since its copy) */
        else if (how == SP_PROTO_EVICT_STORED)
            res[i] = evict_page(a, g, a->evict_buf->data + (uint64_t)i * SP_PAGE_SIZE);
        a->swap_outs += res[i];
        evict_release(a, g);
    }
    g_array_set_size(a->evicting, 0);
    swap_start(a);
    /* One byte per page: dropped (its slot is now needed) or kept. */
    return sp_proto_reply(a->channel, &req->hdr, res, (uint32_t)n, NULL, 0, NULL);
}

bool agent_swap_prep(SpAgent *a, SpProtoMsg *req)
{
    uint64_t n = req->hdr.len / 8;
    SpProtoReader r = sp_proto_reader(req);
    const uint64_t *gfns = sp_proto_read_array(&r, n, 8);
    bool ok = gfns != NULL;
    for (uint64_t i = 0; ok && i < n; i++)
        ok = gfns[i] < a->npages && agent_chunk_missing(a, gfns[i]);
    swap_start(a);
    if (!ok)
        return sp_proto_reply_error(a->channel, &req->hdr, "cannot register for missing faults");
    return sp_proto_reply(a->channel, &req->hdr, NULL, 0, NULL, 0, NULL);
}

bool agent_swap_channel(SpAgent *a, SpProtoMsg *req)
{
    int fd = sp_proto_msg_take_fd(req, 0);
    g_mutex_lock(&a->swap_lock);
    if (a->swap_fd >= 0)
        close(a->swap_fd);
    a->swap_fd = fd;
    a->swap_gen++;
    g_mutex_unlock(&a->swap_lock);
    swap_start(a);
    /* The swap thread's id: the supervisor raises its priority (it works
     * for vCPUs that wait on it), which this sandbox may not. */
    uint32_t tid = 0;
    for (int i = 0; i < 1000 && !(tid = __atomic_load_n(&a->swap_tid, __ATOMIC_ACQUIRE)); i++)
        g_usleep(1000);
    return sp_proto_reply(a->channel, &req->hdr, &tid, sizeof(tid), NULL, 0, NULL);
}

static void store_close(AgentStore *s)
{
    for (int i = 0; i < 3; i++) {
        if (s->fds[i] >= 0)
            close(s->fds[i]);
        s->fds[i] = -1;
    }
    s->nfds = 0;
    s->has_tier = 0;
}

/* The swap stores' descriptors are kept here, never read (they are O_PATH
 * ones), so that the pages out outlive a crash of samepaged (docs/swap.md
 * "After a crash").  A samepaged that attaches offers its own store and
 * gets back the kept one: that of the last samepaged that took this VM's
 * pages over, where they are.  It moves them into its own store (copies:
 * it drops them from the old one only after the commit) and then commits
 * (SP_PROTO_STORE_COMMIT, its store's descriptors again): from then on its
 * store is the one kept.  Until the commit both are kept, and the one
 * handed over is the old one: a samepaged that dies in the middle of a
 * take-over must not leave the only store that holds the pages with
 * nobody (its own holds at most copies of them then).  A VM that kept
 * none (started by this samepaged) keeps the offered one at once. */
bool agent_swap_store(SpAgent *a, SpProtoMsg *req)
{
    SpProtoSwapStore in;
    SpProtoReader r = sp_proto_reader(req);
    sp_proto_read(&r, &in, sizeof(in));
    uint32_t want = in.has_tier ? 3 : 2;
    if (req->hdr.nfds && req->hdr.nfds != want)
        return sp_proto_reply_error(a->channel, &req->hdr, "M_SWAP_STORE: wrong descriptors");
    bool commit = in.flags & SP_PROTO_STORE_COMMIT;
    AgentStore *kept = &a->store_kept;
    SpProtoSwapStore out = {.has_tier = commit ? 0 : kept->has_tier,
                            .flags = SP_PROTO_AGENT_DROPS_ZERO};
    uint32_t nout = commit ? 0 : kept->nfds;
    bool ok = sp_proto_reply(a->channel, &req->hdr, &out, sizeof(out), nout ? kept->fds : NULL,
                             nout, NULL);
    AgentStore got = {.fds = {-1, -1, -1}, .nfds = req->hdr.nfds, .has_tier = in.has_tier ? 1 : 0};
    for (uint32_t i = 0; i < req->hdr.nfds; i++) {
        got.fds[i] = req->fds[i];
        req->fds[i] = -1; /* ours now */
    }
    /* (an offer that was never committed held copies only: its samepaged
     * is gone, or this is its offer again) */
    store_close(&a->store_offered);
    if (commit || !kept->nfds) {
        store_close(kept);
        *kept = got;
    } else {
        a->store_offered = got;
    }
    return ok;
}

/* Pages the swap thread brought back are present again. */
static void agent_swap_pass_in(SpAgent *a)
{
    g_mutex_lock(&a->swap_lock);
    for (guint i = 0; i < a->swapped_in->len; i++) {
        uint64_t g = g_array_index(a->swapped_in, uint64_t, i);
        if (a->page[g] & AG_OUT) {
            a->page[g] &= ~(uint64_t)AG_OUT;
            a->out_now--;
        }
        __atomic_fetch_and(&a->back[g / 64], ~(1ULL << (g % 64)), __ATOMIC_RELEASE);
    }
    g_array_set_size(a->swapped_in, 0);
    g_mutex_unlock(&a->swap_lock);
}

void agent_swap_pass(SpAgent *a)
{
    agent_swap_pass_in(a);
    /* Called before the harvest marks this pass's writes volatile: a page
     * written in the last pass starts over. */
    for (uint64_t g = 0; g < a->npages; g++) {
        uint64_t p = a->page[g];
        if (p & AG_VOLATILE)
            a->page[g] = p & ~AG_IDLE_MASK;
        else if (AG_IDLE(p) < 255)
            a->page[g] = p + (1ULL << AG_IDLE_SHIFT);
    }
}

void agent_swap_drain(SpAgent *a)
{
    if (!a->swap_thread || !a->page)
        return;
    /* Merged pages too: their frame may be out (punched), and a copy of
     * RAM that skips what is not resident would miss them. */
    for (uint64_t g = 0; g < a->npages; g++)
        if ((page_word(a, g) & AG_OUT) || AG_KIND(page_word(a, g)) == AG_MERGED)
            (void)*(volatile uint8_t *)(a->mem->host + g * SP_PAGE_SIZE);
    agent_swap_pass_in(a);
}

void sp_agent_swap_drain(SpAgent *a)
{
    if (a)
        agent_swap_drain(a);
}

/* --- swap-in --- */

static void record_latency(SpAgent *a, gint64 t0, bool refault)
{
    uint64_t ns = (uint64_t)(g_get_monotonic_time() - t0) * 1000;
    g_mutex_lock(&a->swap_lock);
    a->swap_ins++;
    a->refaults += refault;
    a->blocked_ns += ns;
    a->lat_us[a->nlat++ % G_N_ELEMENTS(a->lat_us)] = (uint32_t)MIN(ns / 1000, UINT32_MAX);
    g_mutex_unlock(&a->swap_lock);
}

/* One swap-in request and what came back for it. */
typedef struct SwapAsk {
    SpProtoSwapIn in;
    uint32_t nahead;                           /* read-ahead candidates */
    uint64_t ahead[SP_PROTO_SWAP_AHEAD_MAX];   /* their gfns, nearest first */
    uint8_t page[SP_PAGE_SIZE];                /* COPY: the page's content */
    uint32_t got;                              /* read-ahead pages sent */
    uint64_t got_gfn[SP_PROTO_SWAP_AHEAD_MAX]; /* theirs */
    uint8_t got_pages[SP_PROTO_SWAP_AHEAD_MAX * SP_PAGE_SIZE];
    char why[SP_PROTO_SWAP_LOST_WHY_MAX + 1]; /* LOST: why, as the supervisor said it, or "" */
} SwapAsk;

#define AHEAD_BLOCK 16 /* read-ahead looks in the faulting page's aligned block */

/* Is g a page this VM gave up, and not one evict_page is dropping now? */
static bool ahead_ok(SpAgent *a, uint64_t g)
{
    if (!(page_word(a, g) & AG_OUT) ||
        (__atomic_load_n(&a->back[g / 64], __ATOMIC_ACQUIRE) & (1ULL << (g % 64))))
        return false;
    /* OUT was read with acquire after evict_page set leaving, so this sees
     * g + 1 until the page is dropped. */
    return __atomic_load_n(&a->leaving, __ATOMIC_SEQ_CST) != g + 1;
}

/* Is page n a read-ahead candidate for the request q (g's neighbour)?  Its
 * name in *c: for a PAGE, n if it is out here; for a FRAME, the frame n
 * maps (space << 32 | offset); for a LAYER, n if it still maps the same
 * group's file (grp). */
static bool ahead_one(SpAgent *a, const SwapAsk *q, uint64_t n, SpCloneGroup *grp, uint64_t *c)
{
    uint64_t p = page_word(a, n);
    switch (q->in.kind) {
    case SP_PROTO_SWAPIN_PAGE:
        *c = n;
        return ahead_ok(a, n);
    case SP_PROTO_SWAPIN_FRAME:
        *c = (uint64_t)AG_SPACE(p) << 32 | AG_OFF(p);
        return AG_KIND(p) == AG_MERGED && !(p & AG_OUT) &&
               *c != ((uint64_t)q->in.space << 32 | q->in.off);
    default:
        *c = n;
        return grp && AG_KIND(p) != AG_MERGED && !(p & AG_OUT) &&
               sp_rmap_vm_maps_layer(a->rmap, n) && sp_rmap_vm_layer_group(a->rmap, n) == grp;
    }
}

/* Read-ahead candidates from g's aligned block, nearest first (after g,
 * then before it, at each distance), each named once: for a PAGE the
 * other pages out here, for a FRAME the frames the other merged pages map,
 * for a LAYER the other pages still in the same group's file.  The
 * supervisor brings back what its read-ahead setting and the limits allow
 * (those of them that are out). */
static void ahead_candidates(SpAgent *a, uint64_t g, SwapAsk *q)
{
    uint64_t base = g - g % AHEAD_BLOCK, end = MIN(base + AHEAD_BLOCK, a->npages);
    SpCloneGroup *grp =
        q->in.kind == SP_PROTO_SWAPIN_LAYER && a->rmap ? sp_rmap_vm_layer_group(a->rmap, g) : NULL;
    for (uint64_t d = 1; d < AHEAD_BLOCK && q->nahead < SP_PROTO_SWAP_AHEAD_MAX; d++) {
        for (int i = 0; i < 2 && q->nahead < SP_PROTO_SWAP_AHEAD_MAX; i++) {
            uint64_t n = i ? g - d : g + d, c;
            if ((i ? g < base + d : n >= end) || !ahead_one(a, q, n, grp, &c))
                continue;
            bool dup = false;
            for (uint32_t j = 0; j < q->nahead && !dup; j++)
                dup = q->ahead[j] == c;
            if (!dup)
                q->ahead[q->nahead++] = c;
        }
    }
}

/* The answer's read-ahead part (absent from an older supervisor's). */
static bool read_ahead_part(SpProtoReader *r, SwapAsk *q)
{
    SpProtoSwapAhead h;
    if (!r->left)
        return true;
    if (!sp_proto_read(r, &h, sizeof(h)) || h.n > q->nahead)
        return false;
    const uint64_t *gfns = sp_proto_read_array(r, h.n, 8);
    const uint8_t *pages = sp_proto_read_array(r, h.n, SP_PAGE_SIZE);
    if (h.n && (!gfns || !pages))
        return false;
    for (uint32_t i = 0; i < h.n; i++) {
        bool asked = false;
        for (uint32_t j = 0; j < q->nahead && !asked; j++)
            asked = q->ahead[j] == gfns[i];
        if (!asked)
            return false; /* never install a page we did not ask for */
        q->got_gfn[i] = gfns[i];
    }
    memcpy(q->got_pages, pages, (gsize)h.n * SP_PAGE_SIZE);
    q->got = h.n;
    return true;
}

/* Ask the supervisor; the answer in *ans (and the pages in q for COPY).
 * Waits for a channel if the supervisor is away (it re-attaches). */
static bool ask(SpAgent *a, SwapAsk *q, SpProtoSwapAnswer *ans)
{
    static uint32_t seq;
    uint8_t req[sizeof(SpProtoSwapIn) + sizeof(SpProtoSwapAhead) + SP_PROTO_SWAP_AHEAD_MAX * 8];
    size_t len = sizeof(q->in);
    memcpy(req, &q->in, sizeof(q->in));
    if (q->nahead) {
        SpProtoSwapAhead h = {.n = q->nahead};
        memcpy(req + len, &h, sizeof(h));
        memcpy(req + len + sizeof(h), q->ahead, q->nahead * 8);
        len += sizeof(h) + q->nahead * 8;
    }
    /* A request is sent once on a channel and its answer awaited however
     * long it takes (a supervisor re-attaching, a loaded host): sent again,
     * the answer to the first would be taken for the second's, and every
     * later one be off by one.  Only a new channel (a new supervisor: the
     * old one's is dead) or a refusal sends it again. */
    uint32_t sent_gen = 0;
    bool sent = false;
    while (!__atomic_load_n(&a->quit, __ATOMIC_ACQUIRE)) {
        g_mutex_lock(&a->swap_lock);
        int fd = a->swap_fd;
        uint32_t gen = a->swap_gen;
        g_mutex_unlock(&a->swap_lock);
        if (fd >= 0 && (!sent || gen != sent_gen)) {
            sent = sp_proto_send(fd, SP_PROTO_S_IN, ++seq, 0, req, len, NULL, 0, 0, NULL);
            sent_gen = gen;
        }
        SpProtoMsg m;
        g_autoptr(GError) rerr = NULL;
        if (!sent || !sp_proto_recv(fd, &m, SWAP_REQUEST_TIMEOUT_MS, &rerr)) {
            if (sent && g_error_matches(rerr, SP_PROTO_ERROR, SP_PROTO_ERR_TIMEOUT))
                continue; /* still ours to wait for, on this channel */
            sent = false;
            g_usleep(100000); /* no supervisor now: the guest waits for the next */
            continue;
        }
        if (m.hdr.seq != seq) { /* an answer to a request of an earlier channel */
            sp_proto_msg_clear(&m);
            continue;
        }
        SpProtoReader r = sp_proto_reader(&m);
        q->got = 0;
        bool ok = !(m.hdr.flags & SP_PROTO_F_ERROR) && m.hdr.seq == seq &&
                  sp_proto_read(&r, ans, sizeof(*ans)) &&
                  (ans->how != SP_PROTO_SWAPANS_COPY ||
                   (sp_proto_read(&r, q->page, SP_PAGE_SIZE) && read_ahead_part(&r, q)));
        if (!ok)
            g_warning("event=swap-in-refused vm=%s gfn=%" G_GUINT64_FORMAT " (%.*s)", a->name,
                      q->in.gfn, (m.hdr.flags & SP_PROTO_F_ERROR) ? (int)m.hdr.len : 0,
                      (const char *)m.payload);
        if (ok && ans->how == SP_PROTO_SWAPANS_LOST) { /* why, if said: printable only */
            size_t n = MIN(r.left, (size_t)SP_PROTO_SWAP_LOST_WHY_MAX);
            for (size_t i = 0; i < n; i++)
                q->why[i] = g_ascii_isprint(r.p[i]) && r.p[i] != '"' ? (char)r.p[i] : '?';
            q->why[n] = 0;
        }
        sp_proto_msg_clear(&m);
        if (ok)
            return true;
        sent = false; /* refused: asked again */
        g_usleep(100000);
    }
    return false;
}

/* A page's content from the supervisor goes in (UFFDIO_COPY, which wakes
 * whoever waits on it); the agent clears its OUT at its next pass. */
static void install(SpAgent *a, uint64_t g, const uint8_t *content)
{
    uint8_t *page = a->mem->host + g * SP_PAGE_SIZE;
    __atomic_fetch_or(&a->refaulted[g / 64], 1ULL << (g % 64), __ATOMIC_RELEASE);
    struct uffdio_copy c = {.dst = (uintptr_t)page, .src = (uintptr_t)content, .len = SP_PAGE_SIZE};
    if (ioctl(a->mem->uffd, UFFDIO_COPY, &c) < 0 && errno != EEXIST)
        g_warning("event=swap-in-copy-failed vm=%s gfn=%" G_GUINT64_FORMAT " error=\"%s\"", a->name,
                  g, g_strerror(errno));
    g_mutex_lock(&a->swap_lock);
    __atomic_fetch_or(&a->back[g / 64], 1ULL << (g % 64), __ATOMIC_RELEASE);
    g_array_append_val(a->swapped_in, g);
    g_mutex_unlock(&a->swap_lock);
}

/* The supervisor has no content for g, which is out: the VM ends (with
 * the reason), and only then is the faulting thread let go, onto the zero
 * page: the machine has ended, so a vCPU leaves KVM_RUN before the guest
 * runs again.  Without SpAgentVm.lost it stays blocked. */
static void lost(SpAgent *a, uint64_t g, const char *said)
{
    g_autofree char *why = g_strdup_printf(
        "guest page %" G_GUINT64_FORMAT " (gfn) was swapped out and its content is lost: %s", g,
        *said ? said : "samepaged has no slot for it after a restart");
    g_warning("event=swap-in-lost vm=%s gfn=%" G_GUINT64_FORMAT " (%s)", a->name, g,
              a->lost ? "the VM ends" : "the guest stays blocked");
    if (!a->lost)
        return;
    a->lost(why, a->lost_opaque);
    struct uffdio_zeropage z = {
        .range = {.start = (uintptr_t)(a->mem->host + g * SP_PAGE_SIZE), .len = SP_PAGE_SIZE}};
    ioctl(a->mem->uffd, UFFDIO_ZEROPAGE, &z);
}

static void resolve(SpAgent *a, uint64_t addr)
{
    uint64_t g = (addr - (uintptr_t)a->mem->host) / SP_PAGE_SIZE;
    if (addr < (uintptr_t)a->mem->host || g >= a->npages)
        return;
    uint8_t *page = a->mem->host + g * SP_PAGE_SIZE;
    gint64 t0 = g_get_monotonic_time();
    uint64_t p = page_word(a, g);
    /* OUT is stale for a page this thread already brought back: the
     * agent clears it at its next pass.  Meanwhile the page may have been
     * dropped again (a zero page) or merged, and faults as what it is now. */
    if (__atomic_load_n(&a->back[g / 64], __ATOMIC_ACQUIRE) & (1ULL << (g % 64)))
        p &= ~(uint64_t)AG_OUT;
    SpProtoSwapIn in = {.gfn = g};
    if (p & AG_OUT)
        in.kind = SP_PROTO_SWAPIN_PAGE;
    else if (AG_KIND(p) == AG_MERGED)
        in = (SpProtoSwapIn){
            .gfn = g, .kind = SP_PROTO_SWAPIN_FRAME, .space = AG_SPACE(p), .off = AG_OFF(p)};
    else if (a->file_backed && a->rmap && sp_rmap_vm_maps_layer(a->rmap, g)) {
        SpCloneGroup *grp = sp_rmap_vm_layer_group(a->rmap, g);
        uint64_t ino = grp ? sp_clone_group_ino(grp) : 0;
        in = (SpProtoSwapIn){.gfn = g,
                             .kind = SP_PROTO_SWAPIN_LAYER,
                             .space = (uint32_t)ino,
                             .ino_hi = (uint32_t)(ino >> 32)};
    }
    if (!in.kind) { /* never written here, or dropped as zero: what a fresh page reads */
        struct uffdio_zeropage z = {.range = {.start = (uintptr_t)page, .len = SP_PAGE_SIZE}};
        if (ioctl(a->mem->uffd, UFFDIO_ZEROPAGE, &z) < 0) {
            if (errno == EEXIST) { /* back already (read ahead): a waiter, if any, retries */
                struct uffdio_range w = {.start = (uintptr_t)page, .len = SP_PAGE_SIZE};
                ioctl(a->mem->uffd, UFFDIO_WAKE, &w);
            } else {
                g_warning("event=swap-zeropage-failed vm=%s gfn=%" G_GUINT64_FORMAT " error=\"%s\"",
                          a->name, g, g_strerror(errno));
            }
        }
        return;
    }
    SwapAsk q = {.in = in};
    ahead_candidates(a, g, &q);
    SpProtoSwapAnswer ans;
    if (!ask(a, &q, &ans))
        return;
    if (ans.how == SP_PROTO_SWAPANS_LOST) {
        lost(a, g, q.why);
        return;
    }
    if (ans.how == SP_PROTO_SWAPANS_COPY) {
        /* Back, and a second chance from the clock for it and for what came
         * with it: read ahead for use, not to be the next victims (their
         * idle counts are those of pages that were out). */
        install(a, g, q.page);
        for (uint32_t i = 0; i < q.got; i++)
            install(a, q.got_gfn[i], q.got_pages + (gsize)i * SP_PAGE_SIZE);
    } else {
        struct uffdio_range w = {.start = (uintptr_t)page, .len = SP_PAGE_SIZE};
        ioctl(a->mem->uffd, UFFDIO_WAKE, &w);
    }
    record_latency(a, t0, in.kind == SP_PROTO_SWAPIN_PAGE);
}

static gpointer swap_thread(gpointer opaque)
{
    SpAgent *a = opaque;
    __atomic_store_n(&a->swap_tid, (uint32_t)gettid(), __ATOMIC_RELEASE);
    while (!__atomic_load_n(&a->quit, __ATOMIC_ACQUIRE)) {
        struct pollfd pf = {.fd = a->mem->uffd, .events = POLLIN};
        if (poll(&pf, 1, 200) <= 0)
            continue;
        struct uffd_msg msg[16];
        ssize_t n = read(a->mem->uffd, msg, sizeof(msg));
        for (ssize_t i = 0; i < n / (ssize_t)sizeof(msg[0]); i++) {
            if (msg[i].event != UFFD_EVENT_PAGEFAULT)
                continue;
            if (msg[i].arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) {
                /* The merge and eviction protocols wake their own; tests
                 * count those caught in a window held open. */
                uintptr_t w = __atomic_load_n(&a->window, __ATOMIC_ACQUIRE);
                if (w == 1)
                    __atomic_fetch_add(&a->evict_wp_faults_seen, 1, __ATOMIC_RELAXED);
                else if (w > 1 && msg[i].arg.pagefault.address >= w &&
                         msg[i].arg.pagefault.address <
                             __atomic_load_n(&a->window_end, __ATOMIC_ACQUIRE))
                    __atomic_fetch_add(&a->wp_faults_seen, 1, __ATOMIC_RELAXED);
                continue;
            }
            if (a->thread_sync) /* its copies are guest memory: the process's NUMA policy */
                a->thread_sync();
            resolve(a, msg[i].arg.pagefault.address & ~(SP_PAGE_SIZE - 1));
        }
    }
    return NULL;
}

static void swap_start(SpAgent *a)
{
    if (!a->swap_thread)
        a->swap_thread = g_thread_new("sp-swap", swap_thread, a);
}

void agent_swap_unblock(SpAgent *a)
{
    /* A vCPU (or the agent thread) may still wait on a page only this thread could bring back
     * (the supervisor is gone and the VM is being torn down): without the
     * registration its fault is retried and maps what is there, so that it
     * can see the stop and end instead of waiting for ever.  The guest's
     * memory goes with the process; nobody reads it any more. */
    if (a->swap_thread && a->mem && a->mem->uffd >= 0) {
        struct uffdio_range r = {.start = (uintptr_t)a->mem->host, .len = a->mem->size};
        if (ioctl(a->mem->uffd, UFFDIO_UNREGISTER, &r) < 0)
            g_debug("event=swap-unregister-failed error=\"%s\"", g_strerror(errno));
    }
}

void agent_swap_stop(SpAgent *a)
{
    store_close(&a->store_kept);
    store_close(&a->store_offered);
    if (a->swap_thread)
        g_thread_join(a->swap_thread);
    a->swap_thread = NULL;
    if (a->swap_fd >= 0)
        close(a->swap_fd);
    a->swap_fd = -1;
}

/* Shell sort: glibc's qsort may ask sysinfo(), which the sandbox refuses. */
static void sort_u32(uint32_t *v, uint32_t n)
{
    for (uint32_t gap = n / 2; gap > 0; gap /= 2)
        for (uint32_t i = gap; i < n; i++) {
            uint32_t x = v[i], j = i;
            for (; j >= gap && v[j - gap] > x; j -= gap)
                v[j] = v[j - gap];
            v[j] = x;
        }
}

void agent_swap_fill_stats(SpAgent *a, SpProtoVmStats *st)
{
    g_mutex_lock(&a->swap_lock);
    uint32_t n = MIN(a->nlat, (uint32_t)G_N_ELEMENTS(a->lat_us));
    uint32_t sorted[G_N_ELEMENTS(a->lat_us)];
    memcpy(sorted, a->lat_us, n * sizeof(uint32_t));
    st->swap_ins = a->swap_ins;
    st->refaults = a->refaults;
    st->swap_blocked_ns = a->blocked_ns;
    g_mutex_unlock(&a->swap_lock);
    sort_u32(sorted, n);
    st->swap_in_p50_us = n ? sorted[n / 2] : 0;
    st->swap_in_p99_us = n ? sorted[MIN(n - 1, n * 99 / 100)] : 0;
    st->swap_outs = a->swap_outs;
    st->swapped_pages = a->out_now;
}
