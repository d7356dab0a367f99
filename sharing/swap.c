/* SPDX-License-Identifier: MIT */
/*
 * swap.c - samepaged's swap: the store, the tables of what is out, the
 * service thread that gives pages back, and the figures (swap-priv.h,
 * docs/swap.md).
 *
 * The service thread polls every VM's swap channel.  A request (S_IN) names
 * a guest page that faulted missing in that VM:
 *   PAGE   a private page the VM gave up: its content is sent (COPY) and
 *          its slot dropped;
 *   FRAME  a merged page (space, off): if that frame is out, its content is
 *          written back into the pool, once; the answer is WAKE (retry the
 *          fault: it maps the frame's page again), also when another sharer
 *          brought it back first;
 *   LAYER  a page of a clone group's file (the file's inode, the page):
 *          if it is out, written back into the file, once, and WAKE, as
 *          for a frame (swap-layers.c; a merged VM's fault on such a page
 *          comes as FRAME, naming its space for the group's file).
 * Anything that does not add up (a page that is not out, a bad space) is
 * answered with an error; the VM process logs it and asks again later.
 *
 * Locking: swap-priv.h.  The service thread takes swap->lock only.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "sharing/swap-priv.h"

#define REFAULT_WINDOW_S 60

static uint32_t now_s(void)
{
    return (uint32_t)(g_get_monotonic_time() / G_USEC_PER_SEC);
}

void sh_swap_slot_left(ShSwap *sw, uint32_t slot)
{
    if (slot >= sw->slot_time_len) {
        uint64_t len = MAX((uint64_t)slot + 1, sw->slot_time_len * 2);
        sw->slot_time = g_renew(uint32_t, sw->slot_time, len);
        for (uint64_t i = sw->slot_time_len; i < len; i++)
            sw->slot_time[i] = SLOT_TIME_UNKNOWN;
        sw->slot_time_len = len;
    }
    sw->slot_time[slot] = now_s();
}

void sh_swap_slot_left_unknown(ShSwap *sw, uint32_t slot)
{
    sh_swap_slot_left(sw, slot);
    sw->slot_time[slot] = SLOT_TIME_UNKNOWN;
}

/* A slot's content comes back: was it out for less than 60 s? */
bool sh_swap_slot_refault(ShSwap *sw, uint32_t slot)
{
    return slot < sw->slot_time_len && sw->slot_time[slot] != SLOT_TIME_UNKNOWN &&
           now_s() - sw->slot_time[slot] < REFAULT_WINDOW_S;
}

ShSwapVm *sh_swap_vm_find(ShSwap *sw, SpEngineVm *vm)
{
    for (guint i = 0; i < sw->vms->len; i++) {
        ShSwapVm *v = sw->vms->pdata[i];
        if (v->vm == vm && !v->dead)
            return v;
    }
    return NULL;
}

static void frame_out_clear(ShSwap *sw, uint32_t fid)
{
    if (fid / 64 < sw->frame_out_len)
        __atomic_fetch_and(&sw->frame_out[fid / 64], ~(1ULL << (fid % 64)), __ATOMIC_RELEASE);
}

bool sh_swap_frame_is_out(SpEngine *eng, uint32_t fid)
{
    ShSwap *sw = eng->swap;
    if (!sw)
        return false;
    if (sh_is_gframe(fid)) {
        uint32_t i = fid & ~GF_BIT;
        return i / 64 < sw->gframe_out_len &&
               ((__atomic_load_n(&sw->gframe_out[i / 64], __ATOMIC_ACQUIRE) >> (i % 64)) & 1);
    }
    if (fid / 64 >= sw->frame_out_len)
        return false;
    return (__atomic_load_n(&sw->frame_out[fid / 64], __ATOMIC_ACQUIRE) >> (fid % 64)) & 1;
}

void sh_swap_count_refault(ShSwap *sw, uint32_t slot, ShSwapVm *faulter)
{
    if (faulter && sh_swap_slot_refault(sw, slot)) {
        sw->refaults++;
        faulter->refaults++;
    }
}

bool sh_swap_frame_restore(ShSwap *sw, uint64_t key, ShSwapVm *faulter, GError **error)
{
    gpointer v;
    if (!g_hash_table_lookup_extended(sw->frames, &key, NULL, &v))
        return true; /* back already */
    uint64_t val = *(uint64_t *)v;
    uint32_t fid = (uint32_t)(val >> 32), slot = (uint32_t)val;
    uint32_t pool = (uint32_t)(key >> 32), off = (uint32_t)key;
    int fd = pool < sw->pool_fds->len ? g_array_index(sw->pool_fds, int, pool) : -1;
    uint8_t page[SP_PAGE_SIZE];
    g_autoptr(GError) err = NULL;
    if (fd < 0 || !sp_swap_store_get(sw->store, slot, page, &err) ||
        pwrite(fd, page, SP_PAGE_SIZE, (off_t)off * SP_PAGE_SIZE) != SP_PAGE_SIZE) {
        if (!err)
            g_set_error(&err, G_IO_ERROR, g_io_error_from_errno(errno),
                        "cannot write the frame back into its pool: %s",
                        fd < 0 ? "no descriptor of the pool" : g_strerror(errno));
        g_warning("event=swap-in-failed frame=%u error=\"%s\"", fid, err->message);
        g_propagate_error(error, g_steal_pointer(&err));
        return false;
    }
    sh_swap_count_refault(sw, slot, faulter);
    sp_swap_store_drop(sw->store, slot);
    g_hash_table_remove(sw->frames, &key);
    frame_out_clear(sw, fid);
    if (fid / 64 < sw->frame_out_len)
        sw->frame_back[fid / 64] |= 1ULL << (fid % 64);
    sw->frames_out--;
    sw->frame_ins++;
    sw->in_since++;
    sw->swap_ins++;
    return true;
}

/* Lock held.  A page coming back while its VM or the host is at its limit
 * waits for the balancer to make room (until its evictions bring the charge
 * under the limit or its round ends, THROTTLE_MAX_MS at most),
 * as a task in a memory cgroup reclaims before it gets a page: without it,
 * guests that touch swapped pages faster than the balancer evicts would
 * hold more than the limit between its rounds.  Only that request waits:
 * it is held (ShSwapVm.held) while the service thread goes on serving the
 * other VMs (a VM process asks one page at a time).  Bounded, so that a
 * balancer waiting on this VM's agent (itself waiting on this swap-in)
 * cannot hang it. */
static bool must_wait(ShSwap *sw, ShSwapVm *v)
{
    bool host_over = sw->host_limit_pages && sw->charged + sw->in_since >= sw->host_limit_pages;
    bool vm_over = v->limit_pages && v->charged + v->in_since >= v->limit_pages;
    return (host_over || vm_over) && !sw->stopped_full; /* full: no room can be made */
}

/* Read-ahead: how many more pages may come back now (lock held).  Only
 * into room under what the balancer evicts down to (HEADROOM_PCT of each
 * limit): at a limit the balancer is working at, a page read ahead would
 * push out another, likely one of the same sequence. */
static uint32_t ahead_room(ShSwap *sw, ShSwapVm *v)
{
    uint64_t room = sw->readahead;
    uint64_t host = sw->host_limit_pages * HEADROOM_PCT / 100;
    uint64_t vm = v->limit_pages * HEADROOM_PCT / 100;
    if (sw->host_limit_pages) {
        uint64_t used = sw->charged + sw->in_since;
        room = MIN(room, used < host ? host - used : 0);
    }
    if (v->limit_pages) {
        uint64_t used = v->charged + v->in_since;
        room = MIN(room, used < vm ? vm - used : 0);
    }
    return (uint32_t)room;
}

/* One private page leaves the store for good: it is back in v (lock held). */
static void page_back(ShSwap *sw, ShSwapVm *v, uint64_t gfn, bool faulted)
{
    uint32_t slot = v->slot_of[gfn] - 1;
    if (slot != ZERO_SLOT) {
        sh_swap_count_refault(sw, slot, faulted ? v : NULL);
        sp_swap_store_drop(sw->store, slot);
    }
    v->slot_of[gfn] = 0;
    v->out--;
    v->in_since++;
    sw->in_since++;
    sw->swap_ins++;
}

/* The content of v's private page gfn, which is out, into page (lock held). */
static bool page_content(ShSwap *sw, ShSwapVm *v, uint64_t gfn, uint8_t *page, GError **error)
{
    uint32_t slot = v->slot_of[gfn] - 1;
    if (slot == ZERO_SLOT) {
        memset(page, 0, SP_PAGE_SIZE);
        return true;
    }
    return sp_swap_store_get(sw->store, slot, page, error);
}

/* v's page's content is gone: v is told so, with why (the reason its VM
 * process ends with: "guest page N (gfn) was swapped out and its content
 * is lost: <why>").  A VM process that does not take SP_PROTO_SWAPANS_LOST
 * is answered an error (it asks again). */
static void reply_lost(ShSwapVm *v, SpProtoMsg *m, const char *why)
{
    if (!v->takes_lost) {
        sp_proto_reply_error(v->chan, &m->hdr, why);
        return;
    }
    uint8_t buf[sizeof(SpProtoSwapAnswer) + SP_PROTO_SWAP_LOST_WHY_MAX];
    SpProtoSwapAnswer a = {.how = SP_PROTO_SWAPANS_LOST};
    size_t n = MIN(strlen(why), (size_t)SP_PROTO_SWAP_LOST_WHY_MAX);
    memcpy(buf, &a, sizeof(a));
    memcpy(buf + sizeof(a), why, n);
    sp_proto_reply(v->chan, &m->hdr, buf, (uint32_t)(sizeof(a) + n), NULL, 0, NULL);
}

/* A PAGE request: the page, and as many of the read-ahead candidates the
 * VM named as are out, readahead allows and the limits have room for.
 * Their slots go once the answer is sent (not before: a VM that is going
 * takes them with it).  A candidate the VM named that is not out here is
 * skipped, not an error: the VM's view is a moment older. */
static void serve_page(ShSwap *sw, ShSwapVm *v, SpProtoMsg *m, const SpProtoSwapIn *in,
                       SpProtoReader *r)
{
    g_autoptr(GError) err = NULL;
    if (!v->slot_of[in->gfn] && v->slots_exact) {
        /* out, and no slot: its content did not survive a crash of
         * samepaged (a defect, or a store that could not be read).  The
         * VM ends; zeros in its place would be a silent corruption. */
        g_warning("event=swap-in-lost vm=%s gfn=%" G_GUINT64_FORMAT " (out before samepaged "
                  "restarted, and no slot holds it: the VM is told it is lost)",
                  v->name, in->gfn);
        reply_lost(v, m, "samepaged has no slot for it after a restart");
        return;
    }
    if (!v->slot_of[in->gfn] && v->adopted) {
        /* out before samepaged restarted, without a slot, from a samepaged
         * or an agent that left zero pages out without one: all zero
         * (swap-adopt.c).  Said in the log, so that a slot lost by a
         * defect shows there, not only as zeros in the guest. */
        v->slot_of[in->gfn] = ZERO_SLOT + 1;
        v->out++;
        if (++v->zero_guess <= 8)
            g_message("event=swap-in-zero-unslotted vm=%s gfn=%" G_GUINT64_FORMAT
                      " count=%" G_GUINT64_FORMAT " (out before samepaged restarted, with no "
                      "slot: answered as the all-zero page it was%s)",
                      v->name, in->gfn, v->zero_guess,
                      v->zero_guess == 8 ? "; no more of these are logged" : "");
    }
    if (!v->slot_of[in->gfn]) {
        sp_proto_reply_error(v->chan, &m->hdr, "that page is not swapped out");
        return;
    }
    SpProtoSwapAhead ahead = {0};
    const uint64_t *cand = NULL;
    if (r->left && sp_proto_read(r, &ahead, sizeof(ahead)))
        cand = sp_proto_read_array(r, MIN(ahead.n, (uint32_t)SP_PROTO_SWAP_AHEAD_MAX), 8);
    uint32_t want =
        cand ? MIN(MIN(ahead.n, (uint32_t)SP_PROTO_SWAP_AHEAD_MAX), ahead_room(sw, v)) : 0;
    /* answer: how, page, [n, gfns[n], pages[n]] */
    gsize cap = sizeof(SpProtoSwapAnswer) + SP_PAGE_SIZE +
                (cand ? sizeof(SpProtoSwapAhead) + want * (8 + SP_PAGE_SIZE) : 0);
    g_autofree uint8_t *buf = g_malloc(cap);
    SpProtoSwapAnswer *a = (SpProtoSwapAnswer *)buf;
    *a = (SpProtoSwapAnswer){.how = SP_PROTO_SWAPANS_COPY};
    if (!page_content(sw, v, in->gfn, buf + sizeof(*a), &err)) {
        /* The store cannot give it back (the swap file's I/O error, a
         * corrupt compressed copy): asked again, it would fail again, and
         * the guest wait on it for ever.  Its slot goes with the VM. */
        g_warning("event=swap-in-unreadable vm=%s gfn=%" G_GUINT64_FORMAT " error=\"%s\" (%s)",
                  v->name, in->gfn, err->message,
                  v->takes_lost ? "the VM is told it is lost"
                                : "an older VM process: it asks again");
        reply_lost(v, m, err->message);
        return;
    }
    uint64_t sent[SP_PROTO_SWAP_AHEAD_MAX];
    uint32_t n = 0;
    uint8_t *pages = buf + sizeof(*a) + SP_PAGE_SIZE + sizeof(SpProtoSwapAhead) + want * 8;
    for (uint32_t i = 0; i < want && cand; i++) {
        uint64_t g = cand[i];
        if (g >= v->npages || g == in->gfn || !v->slot_of[g])
            continue;
        bool dup = false;
        for (uint32_t j = 0; j < n && !dup; j++)
            dup = sent[j] == g;
        if (dup || !page_content(sw, v, g, pages + (gsize)n * SP_PAGE_SIZE, NULL))
            continue;
        sent[n++] = g;
    }
    gsize len = sizeof(*a) + SP_PAGE_SIZE;
    if (cand) {
        SpProtoSwapAhead out = {.n = n};
        memcpy(buf + len, &out, sizeof(out));
        memcpy(buf + len + sizeof(out), sent, (gsize)n * 8);
        /* the pages follow the n gfns: close the gap left for `want` */
        memmove(buf + len + sizeof(out) + (gsize)n * 8, pages, (gsize)n * SP_PAGE_SIZE);
        len += sizeof(out) + (gsize)n * (8 + SP_PAGE_SIZE);
    }
    if (!sp_proto_reply(v->chan, &m->hdr, buf, (uint32_t)len, NULL, 0, NULL))
        return; /* it is going: the slots go with it */
    page_back(sw, v, in->gfn, true);
    for (uint32_t i = 0; i < n; i++)
        page_back(sw, v, sent[i], false);
    sw->prefetched += n;
}

static uint32_t space_pool(ShSwapVm *v, uint32_t space)
{
    return space < v->space_pool->len ? g_array_index(v->space_pool, uint32_t, space) : NO_SPACE;
}

/* The inode of the file (a clone group's, a pool's) that v's space id
 * stands for, or 0 (not known here). */
static uint64_t space_ino(ShSwapVm *v, uint32_t space)
{
    return space < v->space_ino->len ? g_array_index(v->space_ino, uint64_t, space) : 0;
}

/* Read-ahead of shared pages (lock held): a FRAME or LAYER request names
 * other frames (space << 32 | offset), or other pages of the same layer
 * file, that the faulting page's neighbours map.  Those of them that are
 * out come back now, as many as readahead and the limits allow (as
 * serve_page's); the neighbours then map them without a fault.  Not
 * refaults: the VM did not touch them (yet).  Nothing in the answer: a
 * candidate that is not out, or not known here, is skipped. */
static void read_ahead_shared(ShSwap *sw, ShSwapVm *v, const SpProtoSwapIn *in, uint64_t ino,
                              SpProtoReader *r)
{
    SpProtoSwapAhead ahead;
    if (!r->left || !sp_proto_read(r, &ahead, sizeof(ahead)))
        return;
    uint32_t n = MIN(ahead.n, (uint32_t)SP_PROTO_SWAP_AHEAD_MAX);
    const uint64_t *cand = sp_proto_read_array(r, n, 8);
    uint32_t room = ahead_room(sw, v), got = 0;
    for (uint32_t i = 0; cand && i < n && got < room; i++) {
        if (in->kind == SP_PROTO_SWAPIN_FRAME) {
            uint32_t pool = space_pool(v, (uint32_t)(cand[i] >> 32));
            uint64_t key = sh_swap_frame_key(pool, (uint32_t)cand[i]);
            uint64_t gino = space_ino(v, (uint32_t)(cand[i] >> 32));
            if (pool != NO_SPACE && g_hash_table_contains(sw->frames, &key) &&
                sh_swap_frame_restore(sw, key, NULL, NULL))
                got++;
            else if (pool == NO_SPACE && gino &&
                     sh_swap_layer_is_out(sw, gino, (uint32_t)cand[i]) &&
                     sh_swap_layer_restore(sw, gino, (uint32_t)cand[i], NULL, NULL))
                got++; /* a group frame merged onto (swap-layers.c) */
        } else if (sh_swap_layer_is_out(sw, ino, cand[i]) &&
                   sh_swap_layer_restore(sw, ino, cand[i], NULL, NULL)) {
            got++;
        }
    }
    sw->prefetched += got;
}

/* Is the shared page a FRAME or LAYER request names a hole a take-over
 * could not fill (swap-adopt.c)?  Then the VM is told it is lost: retried,
 * its fault would find the hole again, for ever.  Lock held. */
static bool shared_lost(ShSwap *sw, ShSwapVm *v, const SpProtoSwapIn *in)
{
    if (!__atomic_load_n(&sw->nlost, __ATOMIC_ACQUIRE))
        return false;
    uint64_t ino = space_ino(v, in->space), off = in->off; /* a pool's, a group's */
    if (in->kind == SP_PROTO_SWAPIN_LAYER) {
        ino = ((uint64_t)in->ino_hi << 32) | in->space;
        off = in->gfn;
    }
    if (!ino || !sh_swap_lost_locked(sw, ino, off))
        return false;
    g_warning("event=swap-in-lost vm=%s gfn=%" G_GUINT64_FORMAT " file_inode=%" G_GUINT64_FORMAT
              " page=%" G_GUINT64_FORMAT " (a shared page out before samepaged restarted that "
              "could not be written back: the VM is told it is lost)",
              v->name, in->gfn, ino, off);
    return true;
}

/* One request of v's (lock held).  `may_hold`: it may wait at a limit;
 * true if it was held (m now belongs to v->held_msg). */
static bool serve(ShSwap *sw, ShSwapVm *v, SpProtoMsg *m, bool may_hold)
{
    SpProtoSwapIn in;
    SpProtoReader r = sp_proto_reader(m);
    if (m->hdr.type != SP_PROTO_S_IN || !sp_proto_read(&r, &in, sizeof(in)) ||
        in.gfn >= v->npages) {
        sp_proto_reply_error(v->chan, &m->hdr, "not a swap-in request");
        return false;
    }
    if (may_hold && !v->held && must_wait(sw, v) &&
        (in.kind == SP_PROTO_SWAPIN_PAGE || in.kind == SP_PROTO_SWAPIN_FRAME ||
         in.kind == SP_PROTO_SWAPIN_LAYER)) {
        v->held = true;
        v->held_msg = *m;
        v->held_seq = sw->balance_seq;
        v->held_until = g_get_monotonic_time() + THROTTLE_MAX_MS * 1000;
        sw->throttled++;
        g_cond_broadcast(&sw->cond); /* the balancer, now */
        return true;
    }
    if (in.kind == SP_PROTO_SWAPIN_PAGE) {
        serve_page(sw, v, m, &in, &r);
        return false;
    }
    if ((in.kind == SP_PROTO_SWAPIN_FRAME || in.kind == SP_PROTO_SWAPIN_LAYER) &&
        shared_lost(sw, v, &in)) {
        reply_lost(v, m,
                   "the shared page it maps could not be written back after samepaged "
                   "restarted");
        return false;
    }
    g_autoptr(GError) err = NULL;
    bool back = true;
    if (in.kind == SP_PROTO_SWAPIN_FRAME) {
        uint32_t pool = space_pool(v, in.space);
        uint64_t gino = space_ino(v, in.space);
        if (pool != NO_SPACE)
            back = sh_swap_frame_restore(sw, sh_swap_frame_key(pool, in.off), v, &err);
        /* A group frame merged onto: its page comes back into the group's
         * file, for the family and every VM merged onto it. */
        else if (gino)
            back = sh_swap_layer_restore(sw, gino, in.off, v, &err);
    }
    uint64_t ino = ((uint64_t)in.ino_hi << 32) | in.space;
    if (in.kind == SP_PROTO_SWAPIN_LAYER)
        back = sh_swap_layer_restore(sw, ino, in.gfn, v, &err);
    if (!back && g_error_matches(err, SP_SWAP_STORE_ERROR, SP_SWAP_STORE_ERROR_UNREADABLE)) {
        /* Its content is gone, for every VM that maps it: each that
         * touches it ends (its slot goes with the last of them). */
        g_warning("event=swap-in-unreadable vm=%s gfn=%" G_GUINT64_FORMAT " shared=yes "
                  "error=\"%s\"",
                  v->name, in.gfn, err->message);
        reply_lost(v, m, err->message);
        return false;
    }
    if (!back) { /* (it could not be written into its file: asked again) */
        sp_proto_reply_error(v->chan, &m->hdr, err ? err->message : "it could not be read back");
        return false;
    }
    if (in.kind == SP_PROTO_SWAPIN_FRAME || (in.kind == SP_PROTO_SWAPIN_LAYER && ino))
        read_ahead_shared(sw, v, &in, ino, &r);
    /* FRAME, LAYER (back now, or never out): retry the fault. */
    SpProtoSwapAnswer a = {.how = SP_PROTO_SWAPANS_WAKE};
    sp_proto_reply(v->chan, &m->hdr, &a, sizeof(a), NULL, 0, NULL);
    return false;
}

/* v's held request, if any, is answered now, or dropped (lock held). */
static void held_serve(ShSwap *sw, ShSwapVm *v, bool answer)
{
    if (!v->held)
        return;
    v->held = false;
    if (answer)
        serve(sw, v, &v->held_msg, false);
    sp_proto_msg_clear(&v->held_msg);
}

/* Held requests whose round ended or whose time is up go on (lock held);
 * the poll timeout until the next one is due (ms, at most 1000). */
static int held_serve_due(ShSwap *sw)
{
    gint64 now = g_get_monotonic_time(), next = now + 1000 * 1000;
    for (guint i = 0; i < sw->vms->len; i++) {
        ShSwapVm *v = sw->vms->pdata[i];
        if (!v->held)
            continue;
        if (v->hup) /* its process is gone (the dead are freed before this) */
            held_serve(sw, v, false);
        else if (sw->quit || sw->balance_seq != v->held_seq || now >= v->held_until ||
                 !must_wait(sw, v))
            held_serve(sw, v, true);
        else
            next = MIN(next, v->held_until);
    }
    return (int)((next - now + 999) / 1000);
}

static void vm_free(ShSwap *sw, ShSwapVm *v)
{
    held_serve(sw, v, false);
    for (uint64_t g = 0; g < v->npages && !v->keep_slots; g++)
        if (v->slot_of[g] && v->slot_of[g] - 1 != ZERO_SLOT)
            sp_swap_store_drop(sw->store, v->slot_of[g] - 1);
    if (v->chan >= 0)
        close(v->chan);
    g_free(v->slot_of);
    g_array_free(v->space_pool, TRUE);
    g_array_free(v->space_ino, TRUE);
    g_free(v->name);
    g_free(v);
}

static gpointer service_thread(gpointer opaque)
{
    ShSwap *sw = opaque;
    if (setpriority(PRIO_PROCESS, 0, SWAP_NICE) < 0)
        g_message("event=swap-nice-refused thread=service nice=%d error=\"%s\"", SWAP_NICE,
                  g_strerror(errno));
    g_autoptr(GArray) pfds = g_array_new(FALSE, FALSE, sizeof(struct pollfd));
    g_autoptr(GPtrArray) who = g_ptr_array_new();
    g_mutex_lock(&sw->lock);
    while (!sw->quit) {
        /* The poll set: the live channels (the dead are freed here, so
         * that no descriptor is closed under our poll). */
        g_array_set_size(pfds, 0);
        g_ptr_array_set_size(who, 0);
        struct pollfd w = {.fd = sw->wake_fd, .events = POLLIN};
        g_array_append_val(pfds, w);
        for (guint i = 0; i < sw->vms->len;) {
            ShSwapVm *v = sw->vms->pdata[i];
            if (v->dead) {
                g_ptr_array_remove_index_fast(sw->vms, i);
                vm_free(sw, v);
                continue;
            }
            i++;
            if (v->hup)
                continue; /* its process is gone; the detach frees it */
            struct pollfd p = {.fd = v->chan, .events = POLLIN};
            g_array_append_val(pfds, p);
            g_ptr_array_add(who, v);
        }
        int timeout = held_serve_due(sw);
        g_mutex_unlock(&sw->lock);
        int n = poll((struct pollfd *)pfds->data, pfds->len, timeout);
        g_mutex_lock(&sw->lock);
        if (n <= 0)
            continue;
        struct pollfd *pf = (struct pollfd *)pfds->data;
        if (pf[0].revents) {
            uint64_t x;
            if (read(sw->wake_fd, &x, sizeof(x)) < 0 && errno != EAGAIN)
                g_warning("event=swap-wake-failed error=\"%s\"", g_strerror(errno));
        }
        for (guint i = 1; i < pfds->len; i++) {
            ShSwapVm *v = who->pdata[i - 1];
            if (!pf[i].revents || v->dead)
                continue;
            SpProtoMsg m;
            if (!sp_proto_recv(v->chan, &m, 0, NULL)) {
                if (pf[i].revents & (POLLHUP | POLLERR))
                    v->hup = true;
                continue;
            }
            /* One request at a time per VM: one that asks again (it gave up
             * waiting) has its older request answered first. */
            held_serve(sw, v, true);
            if (!serve(sw, v, &m, true))
                sp_proto_msg_clear(&m);
        }
    }
    g_mutex_unlock(&sw->lock);
    return NULL;
}

void sh_swap_service_kick(ShSwap *sw)
{
    uint64_t one = 1;
    if (write(sw->wake_fd, &one, sizeof(one)) < 0)
        g_warning("event=swap-wake-failed error=\"%s\"", g_strerror(errno));
}

/* Tests only (tests/daemon/restart-swap*.sh): with SAMEPAGE_TEST_KILL
 * naming a file, samepaged kills itself with SIGKILL at `point` once that
 * file exists and holds the point's name: a crash at the moments that
 * matter (docs/swap.md "After a crash").  With sw (its lock not held) the
 * log line says how many frames and layer pages were out then: what a
 * take-over must write back. */
void sh_swap_test_kill(ShSwap *sw, const char *point)
{
    static const char *trigger;
    static gsize once;
    if (g_once_init_enter(&once)) {
        trigger = g_getenv("SAMEPAGE_TEST_KILL");
        g_once_init_leave(&once, 1);
    }
    g_autofree char *text = NULL;
    if (!trigger || !*trigger || !g_file_get_contents(trigger, &text, NULL, NULL) ||
        strcmp(g_strstrip(text), point) != 0)
        return;
    uint64_t out = 0;
    if (sw) {
        g_mutex_lock(&sw->lock);
        out = sw->frames_out;
        g_mutex_unlock(&sw->lock);
    }
    g_warning("event=test-kill point=%s frames_out=%" G_GUINT64_FORMAT " (SAMEPAGE_TEST_KILL)",
              point, out);
    raise(SIGKILL);
}

/* Tests: SAMEPAGE_TEST_LOSE_SLOTS=VM:N makes a take-over lose N of VM's
 * private slots on purpose, as a defect would (swap-adopt.c). */
uint32_t sh_swap_test_lose(const char *vm)
{
    const char *spec = g_getenv("SAMEPAGE_TEST_LOSE_SLOTS"); /* VM:N */
    const char *colon = spec ? strrchr(spec, ':') : NULL;
    if (!colon || (size_t)(colon - spec) != strlen(vm) || strncmp(spec, vm, strlen(vm)) != 0)
        return 0;
    return (uint32_t)g_ascii_strtoull(colon + 1, NULL, 10);
}

/* --- the engine's calls (engine-priv.h) --- */

/* The VM process's swap thread (its id in the M_SWAP reply) runs at
 * SWAP_NICE: vCPUs wait on it, as a task that faults waits on the
 * kernel's swap-in in its own context.  Only a thread of that process. */
static void swap_thread_nice(SpEngineVm *vm, SpProtoMsg *r)
{
    uint32_t tid = 0;
    SpProtoReader rd = sp_proto_reader(r);
    if (!sp_proto_read(&rd, &tid, sizeof(tid)) || tid == 0 || vm->pid <= 0)
        return;
    g_autofree char *task = g_strdup_printf("/proc/%d/task/%u", vm->pid, tid);
    bool ours = access(task, F_OK) == 0;
    if (!ours || setpriority(PRIO_PROCESS, (id_t)tid, SWAP_NICE) < 0)
        g_message("event=swap-nice-refused vm=%s tid=%u nice=%d error=\"%s\"", vm->name, tid,
                  SWAP_NICE, ours ? g_strerror(errno) : "not a thread of its process");
}

void sh_swap_vm_attach(SpEngine *eng, SpEngineVm *vm)
{
    ShSwap *sw = eng->swap;
    if (!sw)
        return;
    int sv[2];
    g_autoptr(GError) err = NULL;
    if (!sp_proto_socketpair(sv, &err)) {
        g_warning("event=swap-channel-failed vm=%s error=\"%s\" (its memory will not be swapped)",
                  vm->name, err->message);
        return;
    }
    SpProtoMsg r = {0};
    bool ok = sh_exchange(eng, vm, SP_PROTO_M_SWAP, NULL, 0, &sv[1], 1, &r);
    close(sv[1]);
    if (ok)
        swap_thread_nice(vm, &r);
    sp_proto_msg_clear(&r);
    ShSwapVm *v = ok ? g_new0(ShSwapVm, 1) : NULL;
    if (v)
        v->slot_of = g_try_new0(uint32_t, vm->npages);
    if (!v || !v->slot_of) {
        g_warning("event=swap-channel-failed vm=%s (its memory will not be swapped)", vm->name);
        close(sv[0]);
        g_free(v);
        return;
    }
    v->vm = vm;
    v->name = g_strdup(vm->name);
    v->chan = sv[0];
    v->npages = vm->npages;
    v->space_pool = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    v->space_ino = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    sh_swap_store_handover(eng, vm); /* (done already at a re-attach) */
    v->takes_lost = vm->drops_zero;  /* (its M_SWAP_STORE reply said so) */
    sh_swap_adopt_pages(eng, v, vm);
    g_mutex_lock(&sw->lock);
    g_ptr_array_add(sw->vms, v);
    if (__atomic_load_n(&sw->nlost, __ATOMIC_ACQUIRE))
        sh_swap_note_spaces(eng, sw); /* its faults on a lost page are told so (serve) */
    g_mutex_unlock(&sw->lock);
    sh_swap_service_kick(sw);
}

void sh_swap_vm_detach(SpEngine *eng, SpEngineVm *vm, bool keep_running)
{
    ShSwap *sw = eng->swap;
    if (!sw)
        return;
    if (keep_running && !vm->broken) {
        /* The VM goes on without us: everything of it comes back first
         * (samepaged keeps no swap across restarts).  Its frames are
         * written back here; its private pages it touches itself (they
         * fault back through the service thread). */
        g_mutex_lock(&sw->lock);
        for (uint64_t g = 0; g < vm->npages; g++) {
            uint32_t fid = vm->fid_of[g];
            if (fid != NO_FRAME && !sh_is_gframe(fid) && sh_swap_frame_is_out(eng, fid)) {
                ShFrame *f = sh_frame(eng, fid);
                sh_swap_frame_restore(sw, sh_swap_frame_key(f->pool, f->off), NULL, NULL);
            }
        }
        /* Clone-layer pages: all of them (whichever files it maps; this
         * happens when samepaged stops, not per VM in normal running). */
        sh_swap_layers_restore_all(sw);
        g_mutex_unlock(&sw->lock);
        sh_exchange(eng, vm, SP_PROTO_M_SWAP_DRAIN, NULL, 0, NULL, 0, NULL);
    }
    g_mutex_lock(&sw->lock);
    ShSwapVm *v = sh_swap_vm_find(sw, vm);
    if (v) {
        if (keep_running && v->out) {
            g_warning("event=swap-left vm=%s pages=%" G_GUINT64_FORMAT
                      " (they could not be brought back before samepaged let the VM go: they "
                      "stay in the swap store it keeps, for the next samepaged)",
                      v->name, v->out);
            v->keep_slots = true;
            sw->kept_out = true;
        }
        v->vm = NULL;
        v->dead = true;
    }
    g_mutex_unlock(&sw->lock);
    sh_swap_service_kick(sw);
}

void sh_swap_frame_dropped(SpEngine *eng, uint32_t fid)
{
    ShSwap *sw = eng->swap;
    if (sh_is_gframe(fid) || !sh_swap_frame_is_out(eng, fid))
        return; /* (a group frame's page is the group file's) */
    ShFrame *f = sh_frame(eng, fid);
    uint64_t key = sh_swap_frame_key(f->pool, f->off);
    g_mutex_lock(&sw->lock);
    gpointer v;
    if (g_hash_table_lookup_extended(sw->frames, &key, NULL, &v)) {
        sp_swap_store_drop(sw->store, (uint32_t) * (uint64_t *)v);
        g_hash_table_remove(sw->frames, &key);
        sw->frames_out--;
    }
    frame_out_clear(sw, fid);
    g_mutex_unlock(&sw->lock);
}

void sh_swap_free(SpEngine *eng)
{
    ShSwap *sw = eng->swap;
    if (!sw)
        return;
    g_mutex_lock(&sw->lock);
    sw->quit = true;
    g_cond_broadcast(&sw->cond);
    g_mutex_unlock(&sw->lock);
    sh_swap_service_kick(sw);
    g_thread_join(sw->service);
    g_thread_join(sw->balancer);
    for (guint i = 0; i < sw->vms->len; i++)
        vm_free(sw, sw->vms->pdata[i]);
    g_ptr_array_free(sw->vms, TRUE);
    for (guint i = 0; i < sw->pool_fds->len; i++)
        if (g_array_index(sw->pool_fds, int, i) >= 0)
            close(g_array_index(sw->pool_fds, int, i));
    g_array_free(sw->pool_fds, TRUE);
    g_hash_table_destroy(sw->frames);
    sh_swap_layers_free(sw);
    for (guint i = 0; i < sw->old_stores->len; i++)
        sh_swap_old_store_free(sw->old_stores->pdata[i]);
    g_ptr_array_free(sw->old_stores, TRUE);
    g_hash_table_destroy(sw->lost);
    g_free(sw->frame_out);
    g_free(sw->gframe_out);
    g_free(sw->frame_back);
    g_free(sw->slot_time);
    close(sw->wake_fd);
    sp_swap_store_free(sw->store);
    g_mutex_clear(&sw->lock);
    g_cond_clear(&sw->cond);
    g_free(sw);
    eng->swap = NULL;
}

/* --- the public calls (engine.h) --- */

bool sp_engine_enable_swap(SpEngine *eng, const SpSwapConfig *cfg, GError **error)
{
    g_return_val_if_fail(!eng->swap, false);
    g_autoptr(SpSwapStore) store =
        sp_swap_store_new(cfg->path, cfg->file_bytes, cfg->cache_bytes, error);
    if (!store)
        return false;
    int wfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wfd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "eventfd: %s",
                    g_strerror(errno));
        return false;
    }
    ShSwap *sw = g_new0(ShSwap, 1);
    g_mutex_init(&sw->lock);
    g_cond_init(&sw->cond);
    sw->store = g_steal_pointer(&store);
    sw->vms = g_ptr_array_new();
    sw->pool_fds = g_array_new(FALSE, FALSE, sizeof(int));
    sw->frames = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
    sw->layer_files = g_ptr_array_new();
    sw->old_stores = g_ptr_array_new();
    sw->lost = sh_swap_lost_new();
    sw->wake_fd = wfd;
    sw->host_limit_pages = cfg->host_limit / SP_PAGE_SIZE;
    sw->cache_pages_charge = cfg->cache_bytes / SP_PAGE_SIZE;
    sw->pressure = cfg->pressure;
    sw->readahead = MIN(cfg->readahead, (uint32_t)SP_SWAP_READAHEAD_MAX);
    sh_engine_lock(eng);
    eng->swap = sw;
    g_mutex_unlock(&eng->lock);
    sw->service = g_thread_new("sp-swap-in", service_thread, sw);
    sw->balancer = g_thread_new("sp-swap-out", sh_swap_balancer, eng);
    /* VMs attached before: their channels now. */
    sh_engine_lock(eng);
    for (uint32_t s = 0; s < eng->nslots; s++)
        if (eng->vm_slots[s] && !eng->vm_slots[s]->broken)
            sh_swap_vm_attach(eng, eng->vm_slots[s]);
    g_mutex_unlock(&eng->lock);
    return true;
}

bool sp_engine_swap_enabled(SpEngine *eng)
{
    return eng->swap != NULL;
}

bool sp_engine_swap_left_out(SpEngine *eng)
{
    ShSwap *sw = eng->swap;
    if (!sw)
        return false;
    g_mutex_lock(&sw->lock);
    bool left = sw->kept_out || sw->old_stores->len > 0;
    g_mutex_unlock(&sw->lock);
    return left;
}

void sp_engine_set_mem_limit(SpEngine *eng, uint64_t bytes)
{
    ShSwap *sw = eng->swap;
    if (!sw)
        return;
    g_mutex_lock(&sw->lock);
    sw->host_limit_pages = bytes / SP_PAGE_SIZE;
    g_cond_broadcast(&sw->cond);
    g_mutex_unlock(&sw->lock);
}

bool sp_engine_vm_set_mem_limit(SpEngine *eng, SpEngineVm *vm, uint64_t bytes, GError **error)
{
    ShSwap *sw = eng->swap;
    if (!sw || !vm) {
        g_set_error(error, SP_ENGINE_ERROR, SP_ENGINE_ERROR_NO_SWAP,
                    "swap is off (samepaged --swap; samepage run --mem-limit or --swap-file): a "
                    "memory limit cannot be kept");
        return false;
    }
    sh_engine_lock(eng);
    g_mutex_lock(&sw->lock);
    ShSwapVm *v = sh_swap_vm_find(sw, vm);
    if (v) {
        v->limit_pages = bytes / SP_PAGE_SIZE;
        g_cond_broadcast(&sw->cond);
    }
    g_mutex_unlock(&sw->lock);
    g_mutex_unlock(&eng->lock);
    if (!v)
        g_set_error(error, SP_ENGINE_ERROR, SP_ENGINE_ERROR_NO_SWAP,
                    "VM '%s' has no swap channel: a memory limit cannot be kept", vm->name);
    return v != NULL;
}

void sp_engine_get_swap_stats(SpEngine *eng, SpSwapStats *out)
{
    memset(out, 0, sizeof(*out));
    ShSwap *sw = eng->swap;
    if (!sw)
        return;
    SpSwapStoreStats st;
    sp_swap_store_stats(sw->store, &st);
    g_mutex_lock(&sw->lock);
    uint64_t priv = 0;
    for (guint i = 0; i < sw->vms->len; i++)
        if (!((ShSwapVm *)sw->vms->pdata[i])->dead)
            priv += ((ShSwapVm *)sw->vms->pdata[i])->out;
    *out = (SpSwapStats){
        .enabled = true,
        .pages_swapped = priv + sw->frames_out,
        .frames_swapped = sw->frames_out,
        .layer_pages = sw->layer_out,
        .bytes_written = st.bytes_written,
        .bytes_read = st.bytes_read,
        .slots_used = st.slots_used,
        .slots_max = st.slots_max,
        .swapin_copies = sw->swapin_copies,
        .cache_pages = st.cache_pages,
        .cache_bytes = st.cache_bytes,
        .file_pages = st.file_pages,
        .refaults = sw->refaults,
        .swap_outs = sw->swap_outs,
        .swap_ins = sw->swap_ins,
        .frame_outs = sw->frame_outs,
        .frame_ins = sw->frame_ins,
        .merged_instead = sw->merged_instead,
        .zero_skipped = sw->zero_skipped,
        .full_events = sw->full_events,
        .pressure_rounds = sw->pressure_rounds,
        .throttled = sw->throttled,
        .prefetched = sw->prefetched,
        .cache_ratio = st.cache_bytes ? st.cache_pages * 4096.0 / (double)st.cache_bytes : 0.0,
        .limit_bytes = sw->host_limit_pages * SP_PAGE_SIZE,
        .charged_bytes = sw->charged * SP_PAGE_SIZE,
    };
    g_mutex_unlock(&sw->lock);
}

void sh_swap_vm_figures(SpEngine *eng, SpEngineVm *vm, SpEngineVmStats *out)
{
    ShSwap *sw = eng->swap;
    if (!sw)
        return;
    g_mutex_lock(&sw->lock);
    ShSwapVm *v = sh_swap_vm_find(sw, vm);
    if (v) {
        out->mem_limit = v->limit_pages * SP_PAGE_SIZE;
        out->charged_bytes = v->charged * SP_PAGE_SIZE;
        out->refaults = v->refaults;
    }
    g_mutex_unlock(&sw->lock);
}
