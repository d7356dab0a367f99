/* SPDX-License-Identifier: MIT */
/*
 * agent.c - the agent object, its thread and the memory channel's requests
 * (agent.h; the states are in agent-priv.h).
 *
 * The agent thread waits for a channel, then serves one request at a time
 * under a->lock.  When the channel closes (the supervisor died) it waits
 * for the next one: the page states stay, merged pages stay merged, and
 * a new index learns them from M_REPORT.  A malformed request ends that
 * channel (the supervisor would not send one; whoever did is not trusted).
 */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <linux/kvm.h>
#include <unistd.h>

#include "sharing/agent-priv.h"

#define POOL_VIEW (1ULL << 40) /* address space for a growing pool's view */

static void space_clear(AgentSpace *s)
{
    if (s->view)
        munmap(s->view, s->len);
    if (s->fd >= 0)
        close(s->fd);
    *s = (AgentSpace){.fd = -1};
}

/* Map `fd` (taken) as space `id`: a pool grows, so its view reserves room
 * beyond the file's end (only frames inside the file are ever used). */
static bool space_set(SpAgent *a, uint32_t id, uint32_t kind, int fd, GError **error)
{
    struct stat st;
    if (id >= AG_MAX_SPACES || (kind != SP_PROTO_SPACE_POOL && kind != SP_PROTO_SPACE_GROUP) ||
        fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        g_set_error(error, SP_PROTO_ERROR, SP_PROTO_ERR_MALFORMED, "bad space %u", id);
        close(fd);
        return false;
    }
    uint64_t len = kind == SP_PROTO_SPACE_POOL ? POOL_VIEW : (uint64_t)st.st_size;
    void *v = len ? mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_NORESERVE, fd, 0) : NULL;
    if (v == MAP_FAILED) {
        g_set_error(error, SP_PROTO_ERROR, SP_PROTO_ERR_IO, "cannot map space %u: %s", id,
                    g_strerror(errno));
        close(fd);
        return false;
    }
    /* A space still named by a page keeps its mapping: replacing it would
     * change what MERGED pages refer to.  The index reuses ids only for
     * the same file (after a restart). */
    space_clear(&a->spaces[id]);
    a->spaces[id] = (AgentSpace){.fd = fd, .kind = kind, .view = v, .len = len};
    return true;
}

SpAgent *sp_agent_new(const SpAgentVm *vm, GError **error)
{
    SpAgent *a = g_new0(SpAgent, 1);
    a->name = g_strdup(vm->name);
    a->thread_sync = vm->thread_sync;
    a->lost = vm->lost;
    a->lost_opaque = vm->opaque;
    a->mem = vm->mem;
    a->kvm_fd = vm->kvm_vm_fd;
    a->slot = vm->slot;
    a->rmap = vm->rmap;
    a->channel = -1;
    a->npages = vm->mem->size / SP_PAGE_SIZE;
    a->vmm_dirty = g_new0(uint64_t, (a->npages + 63) / 64);
    a->released = g_array_new(FALSE, FALSE, sizeof(SpProtoFrameLoc));
    a->use_zero_pages = 1;
    a->max_map_count = 65530;
    a->swap_fd = -1;
    for (int i = 0; i < 3; i++)
        a->store_kept.fds[i] = a->store_offered.fds[i] = -1;
    a->evicting = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    a->evict_buf = g_byte_array_new();
    a->swapped_in = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    g_mutex_init(&a->swap_lock);
    for (uint32_t i = 0; i < AG_MAX_SPACES; i++)
        a->spaces[i].fd = -1;
    a->status_fd = -1;
    /* Opened now: the sandbox allows no open later. */
    a->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (a->pagemap_fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot open /proc/self/pagemap: %s", g_strerror(errno));
        sp_agent_free(a);
        return NULL;
    }
    a->status_fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC); /* -1: not reported */
    g_mutex_init(&a->lock);
    g_cond_init(&a->cond);
    return a;
}

/* The VM process's anonymous resident pages (the kernel's RssAnon: guest
 * pages it holds privately, copies included, and its own heap - not the
 * zero page that dropped pages read, nor shared frames); 0 if unknown, or
 * when RAM maps a clone layout (its layer pages are counted otherwise). */
static uint64_t rss_anon_pages(SpAgent *a)
{
    char buf[4096];
    if (a->status_fd < 0 || a->file_backed)
        return 0;
    ssize_t n = pread(a->status_fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    const char *line = strstr(buf, "\nRssAnon:");
    unsigned long long kb = 0;
    if (!line || sscanf(line + 1, "RssAnon: %llu kB", &kb) != 1)
        return 0;
    return kb * 1024 / SP_PAGE_SIZE;
}

/* --- requests --- */

static bool reply(SpAgent *a, SpProtoMsg *req, const void *p, uint32_t len, const int *fds,
                  uint32_t nfds)
{
    return sp_proto_reply(a->channel, &req->hdr, p, len, fds, nfds, NULL);
}

static bool reply_error(SpAgent *a, SpProtoMsg *req, const char *what)
{
    return sp_proto_reply_error(a->channel, &req->hdr, what);
}

/* Released frames (and zero pages lost) since the last report. */
static bool reply_released(SpAgent *a, SpProtoMsg *req)
{
    SpProtoReleased r = {.n = a->released->len, .zero_now = a->zero};
    size_t bytes = (size_t)r.n * sizeof(SpProtoFrameLoc);
    g_autoptr(GByteArray) buf = g_byte_array_new();
    int fd = -1;
    if (sizeof(r) + bytes > SP_PROTO_MAX_MSG - sizeof(SpProtoHdr)) {
        r.blob = 1;
        fd = sp_proto_blob_new(a->released->data, bytes, NULL);
        if (fd < 0)
            return reply_error(a, req, "cannot make a blob");
    }
    g_byte_array_append(buf, (const guint8 *)&r, sizeof(r));
    if (!r.blob)
        g_byte_array_append(buf, (const guint8 *)a->released->data, (guint)bytes);
    bool ok = reply(a, req, buf->data, buf->len, &fd, fd >= 0 ? 1 : 0);
    if (fd >= 0)
        close(fd);
    if (ok)
        g_array_set_size(a->released, 0);
    return ok;
}

static bool do_attach(SpAgent *a, SpProtoMsg *req)
{
    SpProtoAttach at;
    SpProtoReader r = sp_proto_reader(req);
    sp_proto_read(&r, &at, sizeof(at));
    g_autoptr(GError) err = NULL;
    if (a->attached)
        return reply_error(a, req, "already attached (a new index re-attaches with M_REPORT)");
    if (!space_set(a, at.pool_space, SP_PROTO_SPACE_POOL, sp_proto_msg_take_fd(req, 0), &err))
        return reply_error(a, req, err->message);
    uint64_t words = (a->npages + 63) / 64;
    a->page = g_try_new0(uint64_t, a->npages);
    a->dirty = g_try_new0(uint64_t, words);
    a->refaulted = g_try_new0(uint64_t, words);
    a->back = g_try_new0(uint64_t, words);
    a->missing = g_try_new0(uint64_t, AG_MISSING_WORDS(a->npages));
    if (!a->page || !a->dirty || !a->refaulted || !a->back || !a->missing)
        return reply_error(a, req, "not enough memory for the sharing metadata");
    a->first = at.share_end ? MIN(at.share_start / SP_PAGE_SIZE, a->npages) : 0;
    a->end =
        at.share_end ? MIN((at.share_end + SP_PAGE_SIZE - 1) / SP_PAGE_SIZE, a->npages) : a->npages;
    a->max_map_count = MAX(at.max_map_count, 65530);
    a->file_backed = sp_rmap_vm_has_layout(a->rmap);
    /* Writes before now are in the states below: drop stale dirty bits. */
    struct kvm_dirty_log log = {.slot = a->slot, .dirty_bitmap = a->dirty};
    if (a->kvm_fd >= 0)
        ioctl(a->kvm_fd, KVM_GET_DIRTY_LOG, &log);
    if (!agent_init_states(a, &err))
        return reply_error(a, req, err->message);
    a->attached = true;
    SpProtoAttached out = {.npages = a->npages, .file_backed = a->file_backed};
    return reply(a, req, &out, sizeof(out), NULL, 0);
}

static bool do_scan(SpAgent *a, SpProtoMsg *req)
{
    SpProtoScan s;
    SpProtoReader r = sp_proto_reader(req);
    sp_proto_read(&r, &s, sizeof(s));
    uint32_t max_cands = MIN(s.max_cands, (SP_PROTO_MAX_MSG - sizeof(SpProtoHdr) -
                                           sizeof(SpProtoCands) - sizeof(SpProtoCandsMore)) /
                                              sizeof(SpProtoCand));
    s.max_cands = max_cands;
    g_autoptr(GArray) cands = g_array_sized_new(FALSE, FALSE, sizeof(SpProtoCand), 256);
    SpProtoCands out = {0};
    SpProtoCandsMore more = {0};
    agent_scan(a, &s, cands, &out, &more.skipped);
    out.ncands = cands->len;
    out.zero_now = a->zero;
    g_autoptr(GByteArray) buf = g_byte_array_new();
    g_byte_array_append(buf, (const guint8 *)&out, sizeof(out));
    g_byte_array_append(buf, (const guint8 *)cands->data,
                        (guint)(cands->len * sizeof(SpProtoCand)));
    g_byte_array_append(buf, (const guint8 *)&more, sizeof(more));
    return reply(a, req, buf->data, buf->len, NULL, 0);
}

static bool do_content(SpAgent *a, SpProtoMsg *req)
{
    uint64_t n = req->hdr.len / 8;
    SpProtoReader r = sp_proto_reader(req);
    const uint64_t *gfns = sp_proto_read_array(&r, n, 8);
    g_autofree uint8_t *pages = g_try_malloc(n * SP_PAGE_SIZE);
    if (!gfns || !pages)
        return reply_error(a, req, "bad content request");
    for (uint64_t i = 0; i < n; i++) {
        if (gfns[i] >= a->npages)
            return reply_error(a, req, "content request outside RAM");
        memcpy(pages + i * SP_PAGE_SIZE, a->mem->host + gfns[i] * SP_PAGE_SIZE, SP_PAGE_SIZE);
    }
    g_autoptr(GError) err = NULL;
    int fd = sp_proto_blob_new(pages, n * SP_PAGE_SIZE, &err);
    if (fd < 0)
        return reply_error(a, req, err->message);
    bool ok = reply(a, req, NULL, 0, &fd, 1);
    close(fd);
    return ok;
}

/* M_UNMERGE: a private copy of each listed page that is merged (the
 * index splits a VM's pages off frames of a node it left); the frames
 * they leave are in the reply, like a copy-on-write break's. */
static bool do_unmerge(SpAgent *a, SpProtoMsg *req)
{
    uint64_t n = req->hdr.len / 8;
    SpProtoReader r = sp_proto_reader(req);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t g = 0;
        if (!sp_proto_read(&r, &g, 8) || g >= a->npages)
            return reply_error(a, req, "unmerge request outside RAM");
        if (!(a->page[g] & AG_OUT) && AG_KIND(a->page[g]) == AG_MERGED)
            agent_unmerge_page(a, g);
    }
    return reply_released(a, req);
}

/* A merge the index may ask: its page, not written since it was hashed
 * this pass.  An ANON page's hash is in its word; a COWED page keeps none
 * (its word holds the frame it was copied from), and is not hashed again
 * here: unwritten this pass is enough, since every merge compares the
 * bytes under write protection (agent-merge.c) and the index checks a new
 * frame's content against its hash when it reads it (scan.c, step 3).
 * Hashing it again cost a second xxHash per such merge (profiled: a COWED
 * page is half of memload's rewrites). */
static bool merge_item_ok(SpAgent *a, const SpProtoMergeItem *it)
{
    if (it->gfn < a->first || it->gfn >= a->end)
        return false;
    uint64_t p = a->page[it->gfn];
    bool same;
    if (p & AG_HASHED)
        same = AG_HASH(p) == it->hash;
    else
        same = AG_KIND(p) == AG_COWED && (p & AG_TOUCHED) && !(p & (AG_VOLATILE | AG_OUT));
    return same && agent_can_merge(a, it->gfn, it->space, it->off);
}

static bool do_merge(SpAgent *a, SpProtoMsg *req)
{
    uint64_t n = req->hdr.len / sizeof(SpProtoMergeItem);
    SpProtoReader r = sp_proto_reader(req);
    const SpProtoMergeItem *it = sp_proto_read_array(&r, n, sizeof(SpProtoMergeItem));
    g_autofree uint8_t *res = g_malloc0(n ? n : 1);
    g_autofree uint8_t *ok = g_malloc0(n ? n : 1);
    for (uint64_t i = 0; it && i < n; i++)
        ok[i] = merge_item_ok(a, &it[i]);
    if (it)
        agent_merge_items(a, it, n, ok, res);
    return reply(a, req, res, (uint32_t)n, NULL, 0);
}

static bool do_space(SpAgent *a, SpProtoMsg *req)
{
    SpProtoSpace sp;
    SpProtoReader r = sp_proto_reader(req);
    sp_proto_read(&r, &sp, sizeof(sp));
    g_autoptr(GError) err = NULL;
    for (uint64_t g = 0; a->page && g < a->npages; g++)
        if (AG_KIND(a->page[g]) == AG_MERGED && AG_SPACE(a->page[g]) == sp.space)
            return reply_error(a, req, "space in use");
    if (!space_set(a, sp.space, sp.kind, sp_proto_msg_take_fd(req, 0), &err))
        return reply_error(a, req, err->message);
    return reply(a, req, NULL, 0, NULL, 0);
}

/* Per guest page: the state word (with the hash and the swap clock's idle
 * count), and five bitmaps (dirty log, VMM writes, refaulted, back,
 * missing chunks). */
static uint64_t agent_metadata_bytes(SpAgent *a)
{
    uint64_t words = (a->npages + 63) / 64;
    return a->npages * sizeof(uint64_t) + words * 8 * 4 + AG_MISSING_WORDS(a->npages) * 8;
}

static void fill_stats(SpAgent *a, SpProtoVmStats *st)
{
    *st = (SpProtoVmStats){
        .merged_pages = a->merged,
        .zero_pages = a->zero,
        .private_pages = a->touched - MIN(a->touched, a->merged + a->zero + a->out_now),
        .volatile_pages = a->volatile_now,
        .mappings = a->page ? agent_mappings(a) : 1,
        .metadata_bytes = a->page ? agent_metadata_bytes(a) : 0,
        .wp_faults_seen = a->wp_faults_seen,
        .evict_wp_faults_seen = __atomic_load_n(&a->evict_wp_faults_seen, __ATOMIC_RELAXED),
        .merges = a->merges,
        .cow_breaks = a->cow_breaks,
        .resident_pages = sp_guest_mem_resident_pages(a->mem),
    };
    agent_swap_fill_stats(a, st);
}

/* Everything a new index needs: the spaces (with their descriptors) and
 * every merged page.  Released frames not yet told are dropped: the report
 * supersedes them. */
static bool do_report(SpAgent *a, SpProtoMsg *req)
{
    g_autoptr(GArray) merged = g_array_new(FALSE, FALSE, sizeof(SpProtoFrameLoc));
    for (uint64_t g = 0; a->page && g < a->npages; g++)
        if (AG_KIND(a->page[g]) == AG_MERGED) {
            SpProtoFrameLoc l = {
                .gfn = g, .space = AG_SPACE(a->page[g]), .off = AG_OFF(a->page[g])};
            g_array_append_val(merged, l);
        }
    SpProtoReport rep = {.nmerged = merged->len};
    fill_stats(a, &rep.stats);
    g_autoptr(GByteArray) buf = g_byte_array_new();
    int fds[SP_PROTO_MAX_FDS];
    uint32_t nfds = 0;
    g_autoptr(GError) err = NULL;
    fds[nfds++] = sp_proto_blob_new(merged->data, merged->len * sizeof(SpProtoFrameLoc), &err);
    if (fds[0] < 0)
        return reply_error(a, req, err->message);
    g_autoptr(GArray) spaces = g_array_new(FALSE, FALSE, sizeof(SpProtoSpace));
    for (uint32_t i = 0; i < AG_MAX_SPACES && nfds < SP_PROTO_MAX_FDS; i++)
        if (a->spaces[i].fd >= 0) {
            SpProtoSpace s = {.space = i, .kind = a->spaces[i].kind};
            g_array_append_val(spaces, s);
            fds[nfds++] = a->spaces[i].fd;
        }
    rep.nspaces = spaces->len;
    g_byte_array_append(buf, (const guint8 *)&rep, sizeof(rep));
    g_byte_array_append(buf, (const guint8 *)spaces->data,
                        (guint)(spaces->len * sizeof(SpProtoSpace)));
    bool ok = reply(a, req, buf->data, buf->len, fds, nfds);
    close(fds[0]);
    if (ok)
        g_array_set_size(a->released, 0);
    return ok;
}

static bool serve(SpAgent *a, SpProtoMsg *req)
{
    if (req->hdr.flags & SP_PROTO_F_REPLY)
        return false;
    if (req->hdr.type != SP_PROTO_M_ATTACH && req->hdr.type != SP_PROTO_M_REPORT &&
        req->hdr.type != SP_PROTO_M_STATS && req->hdr.type != SP_PROTO_M_SYNC && !a->attached)
        return reply_error(a, req, "not attached");
    g_autoptr(GError) err = NULL;
    switch (req->hdr.type) {
    case SP_PROTO_M_ATTACH:
        return do_attach(a, req);
    case SP_PROTO_M_SPACE:
        return do_space(a, req);
    case SP_PROTO_M_BEGIN:
        agent_begin(a);
        return reply_released(a, req);
    case SP_PROTO_M_SCAN:
        return do_scan(a, req);
    case SP_PROTO_M_CONTENT:
        return do_content(a, req);
    case SP_PROTO_M_MERGE:
        return do_merge(a, req);
    case SP_PROTO_M_UNMERGE_ALL:
        agent_unmerge_all(a);
        return reply_released(a, req);
    case SP_PROTO_M_UNMERGE:
        return do_unmerge(a, req);
    case SP_PROTO_M_REPORT:
        return do_report(a, req);
    case SP_PROTO_M_STATS: {
        struct {
            SpProtoVmStats st;
            SpProtoVmStatsMore more;
        } all = {.more = {.merge_maps = a->merge_maps,
                          .compactions = a->compactions,
                          .compacted_pages = a->compacted_pages,
                          .compact_wp_faults = a->compact_wp_faults,
                          .rss_anon_pages = rss_anon_pages(a)}};
        fill_stats(a, &all.st);
        return reply(a, req, &all, sizeof(all), NULL, 0);
    }
    case SP_PROTO_M_KNOBS: {
        SpProtoKnobs k;
        SpProtoReader r = sp_proto_reader(req);
        sp_proto_read(&r, &k, sizeof(k));
        a->use_zero_pages = k.use_zero_pages ? 1 : 0;
        a->test_delay_us = MIN(k.test_delay_us, 1000000);
        a->compact_above = k.compact_above;
        /* Our thread id: the supervisor sets this thread's nice (scan_nice),
         * which we could not set back down once raised. */
        uint32_t tid = (uint32_t)gettid();
        return reply(a, req, &tid, sizeof(tid), NULL, 0);
    }
    case SP_PROTO_M_SYNC:
        if (!agent_settle(a, &err))
            return reply_error(a, req, err->message);
        return reply_released(a, req);
    case SP_PROTO_M_EVICT:
        return agent_swap_evict(a, req);
    case SP_PROTO_M_EVICT_DONE:
        return agent_swap_evict_done(a, req);
    case SP_PROTO_M_PREP:
        return agent_swap_prep(a, req);
    case SP_PROTO_M_SWAP:
        return agent_swap_channel(a, req);
    case SP_PROTO_M_SWAP_STORE:
        return agent_swap_store(a, req);
    case SP_PROTO_M_SWAP_DRAIN:
        agent_swap_drain(a);
        return sp_proto_reply(a->channel, &req->hdr, NULL, 0, NULL, 0, NULL);
    default:
        return reply_error(a, req, "not a memory-channel request");
    }
}

static gpointer agent_thread(gpointer opaque)
{
    SpAgent *a = opaque;
    g_mutex_lock(&a->lock);
    while (!__atomic_load_n(&a->quit, __ATOMIC_ACQUIRE)) {
        if (a->channel < 0) {
            g_cond_wait(&a->cond, &a->lock);
            continue;
        }
        int fd = a->channel;
        g_mutex_unlock(&a->lock);
        SpProtoMsg m;
        g_autoptr(GError) err = NULL;
        bool got = sp_proto_recv(fd, &m, 500, &err);
        g_mutex_lock(&a->lock);
        if (!got && g_error_matches(err, SP_PROTO_ERROR, SP_PROTO_ERR_TIMEOUT))
            continue;
        if (got && a->channel == fd) {
            if (a->thread_sync)
                a->thread_sync();
            /* After the guest ended only figures are given: RAM is going. */
            bool ok = !__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE) || m.hdr.type == SP_PROTO_M_STATS
                          ? serve(a, &m)
                          : reply_error(a, &m, "the guest has ended");
            sp_proto_msg_clear(&m);
            if (ok)
                continue;
            got = false;
        }
        if (a->channel == fd) {
            if (err && !g_error_matches(err, SP_PROTO_ERROR, SP_PROTO_ERR_CLOSED))
                g_warning("event=protocol-error channel=memory error=\"%s\"", err->message);
            close(fd);
            a->channel = -1;
            agent_swap_evict_abandon(a);
        }
    }
    g_mutex_unlock(&a->lock);
    return NULL;
}

void sp_agent_set_channel(SpAgent *a, int fd)
{
    g_mutex_lock(&a->lock);
    if (a->channel >= 0)
        close(a->channel);
    a->channel = fd;
    agent_swap_evict_abandon(a); /* a new supervisor: the old one's M_EVICT is void */
    if (!a->thread)
        a->thread = g_thread_new("sp-agent", agent_thread, a);
    g_cond_broadcast(&a->cond);
    g_mutex_unlock(&a->lock);
}

void sp_agent_stop(SpAgent *a)
{
    if (a)
        __atomic_store_n(&a->stop, 1, __ATOMIC_RELEASE);
}

void sp_agent_free(SpAgent *a)
{
    if (!a)
        return;
    sp_agent_stop(a);
    __atomic_store_n(&a->quit, 1, __ATOMIC_RELEASE);
    agent_swap_unblock(a); /* whoever waits on a swap-in now ends */
    g_mutex_lock(&a->lock);
    g_cond_broadcast(&a->cond);
    g_mutex_unlock(&a->lock);
    if (a->thread)
        g_thread_join(a->thread);
    agent_swap_stop(a);
    agent_compact_free(a);
    if (a->channel >= 0)
        close(a->channel);
    for (uint32_t i = 0; i < AG_MAX_SPACES; i++)
        space_clear(&a->spaces[i]);
    if (a->pagemap_fd >= 0)
        close(a->pagemap_fd);
    if (a->status_fd >= 0)
        close(a->status_fd);
    g_free(a->page);
    g_free(a->dirty);
    g_free(a->vmm_dirty);
    g_free(a->refaulted);
    g_free(a->back);
    g_free(a->missing);
    g_array_free(a->evicting, TRUE);
    g_byte_array_free(a->evict_buf, TRUE);
    g_array_free(a->swapped_in, TRUE);
    g_mutex_clear(&a->swap_lock);
    if (a->released)
        g_array_free(a->released, TRUE);
    g_free(a->name);
    g_mutex_clear(&a->lock);
    g_cond_clear(&a->cond);
    g_free(a);
}

void sp_agent_mark_dirty(SpAgent *a, uint64_t gpa, uint64_t len)
{
    if (!a || !len)
        return;
    uint64_t first = gpa / SP_PAGE_SIZE, last = (gpa + len - 1) / SP_PAGE_SIZE;
    for (uint64_t g = first; g <= last && g < a->npages; g++)
        __atomic_fetch_or(&a->vmm_dirty[g / 64], 1ULL << (g % 64), __ATOMIC_RELEASE);
}

bool sp_agent_attached_locked(SpAgent *a)
{
    return a->attached;
}

char *sp_agent_describe_page(SpAgent *a, uint64_t gpa)
{
    uint64_t g = gpa / SP_PAGE_SIZE;
    if (!a || !a->page || g >= a->npages)
        return g_strdup("(not a page of this VM's RAM)");
    static const char *const kinds[] = {"anon", "merged", "cowed", "zero"};
    uint64_t p = __atomic_load_n(&a->page[g], __ATOMIC_ACQUIRE);
    GString *s = g_string_new(NULL);
    g_string_append_printf(s, "gfn=%" G_GUINT64_FORMAT " kind=%s%s%s%s chunk_missing=%d", g,
                           kinds[AG_KIND(p)], (p & AG_OUT) ? " out" : "",
                           (p & AG_VOLATILE) ? " volatile" : "", (p & AG_TOUCHED) ? " touched" : "",
                           agent_chunk_is_missing(a, g));
    if (AG_KIND(p) == AG_MERGED) {
        uint32_t sp = AG_SPACE(p), off = AG_OFF(p);
        int fd = sp < AG_MAX_SPACES ? a->spaces[sp].fd : -1;
        off_t at = (off_t)((uint64_t)off * SP_PAGE_SIZE);
        /* SEEK_DATA and pread never fill a hole (a read through a mapping would) */
        off_t data = fd >= 0 ? lseek(fd, at, SEEK_DATA) : -1;
        uint8_t buf[SP_PAGE_SIZE];
        bool zero =
            fd >= 0 && pread(fd, buf, SP_PAGE_SIZE, at) == SP_PAGE_SIZE && agent_is_zero(buf);
        g_string_append_printf(s, " space=%u off=%u frame=%s%s", sp, off,
                               data == at ? "data" : "hole", zero ? ",all-zero" : "");
    }
    return g_string_free(s, FALSE);
}

bool sp_agent_attached(SpAgent *a)
{
    g_mutex_lock(&a->lock);
    bool at = a->attached;
    g_mutex_unlock(&a->lock);
    return at;
}

void sp_agent_lock(SpAgent *a)
{
    g_mutex_lock(&a->lock);
}

void sp_agent_unlock(SpAgent *a)
{
    g_mutex_unlock(&a->lock);
}

/* ANON and ZERO pages are in anonymous mappings (a zero page that was
 * copied-on-write got an empty anonymous mapping of its own); MERGED and
 * COWED ones in a frame's. */
static bool in_anon_mapping(uint64_t p)
{
    return AG_KIND(p) == AG_ANON || AG_KIND(p) == AG_ZERO;
}

uint64_t sp_agent_map_run_locked(SpAgent *a, uint64_t gfn, uint64_t max, bool *anon)
{
    bool layout = a->file_backed || (a->rmap && sp_rmap_vm_has_layout(a->rmap));
    if (layout || !a->page || max == 0) {
        *anon = !layout;
        return MAX(max, 1);
    }
    *anon = in_anon_mapping(a->page[gfn]);
    uint64_t n = 1;
    while (n < max && in_anon_mapping(a->page[gfn + n]) == *anon)
        n++;
    return n;
}

void sp_agent_reset_after_remap_locked(SpAgent *a)
{
    if (!a->attached)
        return;
    a->file_backed = true;
    g_array_set_size(a->released, 0);
    /* The file's mappings are new: registered for write-protection only
     * (rmap/clone-file.c), whatever chunks the old ones had in missing
     * mode.  A chunk left marked would never be registered again, and a
     * page of the layer punched out for swap would then read as a fresh
     * zero page - in the file, for the whole family. */
    for (uint64_t w = 0; a->missing && w < AG_MISSING_WORDS(a->npages); w++)
        __atomic_store_n(&a->missing[w], 0, __ATOMIC_RELEASE);
    /* Writes before the remap are in the layer: drop their dirty bits. */
    uint64_t words = (a->npages + 63) / 64;
    struct kvm_dirty_log log = {.slot = a->slot, .dirty_bitmap = a->dirty};
    if (a->kvm_fd >= 0)
        ioctl(a->kvm_fd, KVM_GET_DIRTY_LOG, &log);
    for (uint64_t w = 0; w < words; w++)
        __atomic_store_n(&a->vmm_dirty[w], 0, __ATOMIC_RELAXED);
    agent_init_states(a, NULL);
}

bool sp_agent_sync(SpAgent *a, GError **error)
{
    g_mutex_lock(&a->lock);
    bool ok = agent_settle(a, error);
    g_mutex_unlock(&a->lock);
    return ok;
}
