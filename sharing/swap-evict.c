/* SPDX-License-Identifier: MIT */
/*
 * swap-evict.c - what leaves memory, and when (swap-priv.h, docs/swap.md).
 *
 * Charges.  Every 100 ms the balancer asks each VM's agent for its figures
 * and charges:
 *   a VM    its private resident pages (the smaller of its RAM's resident
 *           pages that map no frame in memory and its process's RssAnon)
 *           plus, for each of its pages
 *           that maps a shared frame in memory, 1/N of that frame when N
 *           pages map it (Linux's Pss);
 *   host    every VM's private resident pages, plus each frame in memory
 *           once, plus the store's own memory (the pages the compressed
 *           tier and the slot table hold now).
 * A VM over its limit, or the host over its own, or the host under memory
 * pressure (PSI "some" avg10 >= 20 % or MemAvailable under 5 % of
 * MemTotal), evicts down to 97 % of the limit (a little room, so that
 * a VM that touches a page does not at once evict another).  The host's
 * room grows with its charge's growth since the last round from what
 * nothing holds back (copy-on-write breaks and first touches; not
 * swap-ins, which wait at the limit — counting them would evict more the
 * more comes back): twice that growth, a quarter of the limit at most, so
 * that a round that runs late (the balancer shares the cores with the
 * vCPUs) finds the host still near its limit, as kswapd's watermarks keep
 * room for allocations.
 *
 * Order: cold private pages first (the agent's clock: not written for
 * min_idle passes, not swapped in since its hand last passed; min_idle
 * drops from 3 to 0 while that finds too little), then shared frames
 * (a clock over the frames, with a second chance for one brought back
 * since the hand passed): a frame is one slot and one hole for all its
 * sharers; then pages of clone groups' files, the same way for a whole
 * family (swap-layers.c).  A private page whose content is a frame in the stable index is
 * merged onto it rather than written; an all-zero one is not written: the
 * VM drops it as a zero page of its own (not out: no slot; an agent before
 * SP_PROTO_AGENT_DROPS_ZERO keeps it out without a slot).
 *
 * eng->lock is held for one batch at a time (one VM's private batch, or a
 * batch of frames), and dropped in between.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sharing/swap-priv.h"

#define TICK_MS 100
/* Pages per M_EVICT: their copies (the agent's buffer, the blob) are
 * memory of their own while it runs: 2 MiB each at most. */
#define PRIVATE_BATCH  512
#define FRAME_BATCH    512
#define ROOM_MAX_PCT   25
#define PSI_SOME_LIMIT 20.0
#define AVAIL_MIN_PCT  5

/* sw->lock held: the store refused a put (its file is full or failing).
 * Eviction stops, said once; balance_once resumes it once a tenth of the
 * slots held then came back, 10 s later at the earliest. */
void sh_swap_store_full(ShSwap *sw, const GError *err)
{
    sw->full_events++;
    if (sw->stopped_full)
        return;
    SpSwapStoreStats st;
    sp_swap_store_stats(sw->store, &st);
    sw->stopped_full = true;
    sw->full_slots = st.slots_used;
    sw->full_us = g_get_monotonic_time();
    g_warning("event=swap-full slots_used=%" G_GUINT64_FORMAT " error=\"%s\" (eviction stops "
              "until a tenth of them came back; the VMs go on, over their limits meanwhile)",
              st.slots_used, err->message);
}

/* --- private pages --- */

bool sh_swap_is_zero(const uint8_t *p)
{
    const uint64_t *w = (const uint64_t *)p;
    for (size_t i = 0; i < SP_PAGE_SIZE / 8; i++)
        if (w[i])
            return false;
    return true;
}

/* A frame in memory with exactly this content, or NO_FRAME. */
static uint32_t stable_twin(SpEngine *eng, SpEngineVm *vm, const uint8_t *page, uint32_t *hash)
{
    *hash = sh_page_hash(page);
    uint32_t head = NO_FRAME;
    if (!index_map_get(&eng->stable, sh_key(vm->group, -1, *hash), &head))
        return NO_FRAME;
    for (uint32_t fi = head; fi != NO_FRAME; fi = sh_frame(eng, fi)->next) {
        ShFrame *f = sh_frame(eng, fi);
        if (f->hash != *hash || f->refs >= eng->knobs.max_page_sharing ||
            sh_swap_frame_is_out(eng, fi))
            continue;
        const uint8_t *c = sh_frame_ptr(eng, fi);
        if (c && memcmp(c, page, SP_PAGE_SIZE) == 0)
            return fi;
    }
    return NO_FRAME;
}

/* Store the pages of an M_EVICT answer; stored[i] says which went. */
static void store_pages(SpEngine *eng, ShSwap *sw, ShSwapVm *v, SpEngineVm *vm,
                        const uint64_t *gfns, const uint8_t *pages, uint32_t n, uint8_t *stored,
                        GArray *twins)
{
    uint64_t key = sp_swap_vm_key(v->name); /* the owner of its slots */
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *c = pages + (uint64_t)i * SP_PAGE_SIZE;
        uint64_t g = gfns[i];
        uint32_t slot, hash;
        if (g >= vm->npages || vm->fid_of[g] != NO_FRAME)
            continue; /* a confused agent */
        g_mutex_lock(&sw->lock);
        if (v->slot_of[g]) {
            /* The page is here (the agent offers none that is out), so its
             * slot is stale: an orphan of a crash inside an eviction that
             * the store taken over brought (swap-adopt.c). */
            if (v->slot_of[g] - 1 != ZERO_SLOT)
                sp_swap_store_drop(sw->store, v->slot_of[g] - 1);
            v->slot_of[g] = 0;
            v->out--;
        }
        g_mutex_unlock(&sw->lock);
        if (sh_swap_is_zero(c) && vm->drops_zero) {
            /* dropped by the VM as a zero page: not out, no slot */
            sw->zero_skipped++;
            stored[i] = SP_PROTO_EVICT_ZERO;
            continue;
        }
        if (sh_swap_is_zero(c)) { /* an older agent: out, with no slot */
            slot = ZERO_SLOT;
            sw->zero_skipped++;
        } else {
            uint32_t twin = stable_twin(eng, vm, c, &hash);
            if (twin != NO_FRAME) {
                ShMergeWant w = {.gfn = g, .hash = hash, .fid = twin};
                g_array_append_val(twins, w);
                continue;
            }
            if (sw->stopped_full)
                continue;
            g_autoptr(GError) err = NULL;
            slot = sp_swap_store_put(sw->store, c, &err);
            if (slot == SP_SWAP_NO_SLOT) {
                g_mutex_lock(&sw->lock);
                sh_swap_store_full(sw, err);
                g_mutex_unlock(&sw->lock);
                continue;
            }
            SpSwapOwner own = {.kind = SP_SWAP_OWNER_PAGE, .a = key, .b = g};
            sp_swap_store_set_owner(sw->store, slot, &own);
        }
        g_mutex_lock(&sw->lock);
        if (slot != ZERO_SLOT)
            sh_swap_slot_left(sw, slot);
        v->slot_of[g] = slot + 1;
        v->out++;
        g_mutex_unlock(&sw->lock);
        stored[i] = SP_PROTO_EVICT_STORED;
    }
}

uint64_t sh_swap_evict_private(SpEngine *eng, SpEngineVm *vm, uint32_t max, uint32_t min_idle)
{
    ShSwap *sw = eng->swap;
    g_mutex_lock(&sw->lock);
    ShSwapVm *v = sh_swap_vm_find(sw, vm);
    g_mutex_unlock(&sw->lock);
    if (!v || vm->broken || vm->hold)
        return 0;
    SpProtoEvict ev = {.max = max, .min_idle = min_idle};
    SpProtoMsg r = {0};
    if (!sh_exchange(eng, vm, SP_PROTO_M_EVICT, &ev, sizeof(ev), NULL, 0, &r))
        return 0;
    SpProtoReader rd = sp_proto_reader(&r);
    SpProtoEvicted out;
    sp_proto_read(&rd, &out, sizeof(out));
    const uint64_t *gfns = sp_proto_read_array(&rd, out.n, 8);
    uint64_t len = 0;
    const uint8_t *pages =
        gfns && out.n && r.hdr.nfds == 1
            ? sp_proto_blob_map(r.fds[0], (uint64_t)out.n * SP_PAGE_SIZE, 0, &len, NULL)
            : NULL;
    uint32_t n = pages ? out.n : 0;
    g_autofree uint8_t *stored = g_malloc0(MAX(out.n, 1u));
    g_autofree uint64_t *gcopy = g_memdup2(gfns, gfns ? (gsize)n * 8 : 0);
    g_autoptr(GArray) twins = g_array_new(FALSE, FALSE, sizeof(ShMergeWant));
    if (n) {
        store_pages(eng, sw, v, vm, gfns, pages, n, stored, twins);
        sh_swap_test_kill(sw, "evict"); /* tests: between M_EVICT and its DONE */
    }
    sp_proto_blob_unmap((void *)pages, len);
    sp_proto_msg_clear(&r);
    /* Every page it protected gets an answer, stored or not. */
    SpProtoMsg d = {0};
    bool ok = sh_exchange(eng, vm, SP_PROTO_M_EVICT_DONE, stored, out.n, NULL, 0, &d);
    rd = sp_proto_reader(&d);
    const uint8_t *dropped = ok ? sp_proto_read_array(&rd, out.n, 1) : NULL;
    uint64_t gone = 0;
    g_mutex_lock(&sw->lock);
    for (uint32_t i = 0; i < n; i++) {
        if (stored[i] == SP_PROTO_EVICT_KEEP)
            continue;
        if (dropped && dropped[i]) {
            gone++;
            continue;
        }
        if (stored[i] == SP_PROTO_EVICT_ZERO)
            continue; /* kept: nothing of ours to undo */
        /* No answer (the VM is lost or going): it may have dropped the
         * page, so its slot stays; at worst an orphan (store_pages), where
         * freeing it could leave a page that is out with nothing to
         * answer its fault. */
        if (!dropped)
            continue;
        /* Still in the VM: its slot is not needed. */
        uint32_t s1 = v->slot_of[gcopy[i]];
        if (s1 && s1 - 1 != ZERO_SLOT)
            sp_swap_store_drop(sw->store, s1 - 1);
        v->slot_of[gcopy[i]] = 0;
        v->out--;
    }
    sw->swap_outs += gone;
    g_mutex_unlock(&sw->lock);
    sp_proto_msg_clear(&d);
    uint64_t merged = twins->len ? sh_merge_onto(eng, vm, twins) : 0;
    g_mutex_lock(&sw->lock);
    sw->merged_instead += merged;
    g_mutex_unlock(&sw->lock);
    return gone + merged;
}

/* --- frames --- */

bool sh_swap_prep(SpEngine *eng, SpEngineVm *vm, GArray *gfns)
{
    const guint per_msg = (SP_PROTO_MAX_MSG - sizeof(SpProtoHdr)) / 8;
    for (guint done = 0; done < gfns->len; done += per_msg) {
        guint n = MIN(per_msg, gfns->len - done);
        if (!sh_exchange(eng, vm, SP_PROTO_M_PREP, &g_array_index(gfns, uint64_t, done), n * 8,
                         NULL, 0, NULL))
            return false;
    }
    return true;
}

bool sh_swap_punch(ShSwap *sw, int fd, uint64_t off, uint32_t slot, const char *what)
{
    sh_swap_slot_left(sw, slot);
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(off * SP_PAGE_SIZE),
                  SP_PAGE_SIZE) < 0) {
        g_warning("event=swap-punch-failed file=%s error=\"%s\"", what, g_strerror(errno));
        sp_swap_store_drop(sw->store, slot);
        return false;
    }
    sw->frames_out++;
    sw->frame_outs++;
    sw->swap_outs++;
    return true;
}

static void grow_bits(ShSwap *sw, uint32_t nframes)
{
    uint32_t words = (nframes + 63) / 64;
    if (words <= sw->frame_out_len)
        return;
    words = MAX(words, sw->frame_out_len * 2);
    sw->frame_out = g_renew(uint64_t, sw->frame_out, words);
    sw->frame_back = g_renew(uint64_t, sw->frame_back, words);
    memset(sw->frame_out + sw->frame_out_len, 0, (words - sw->frame_out_len) * 8);
    memset(sw->frame_back + sw->frame_out_len, 0, (words - sw->frame_out_len) * 8);
    __atomic_store_n(&sw->frame_out_len, words, __ATOMIC_RELEASE);
}

static int pool_fd(SpEngine *eng, ShSwap *sw, uint32_t pool)
{
    while (sw->pool_fds->len <= pool) {
        int none = -1;
        g_array_append_val(sw->pool_fds, none);
    }
    int *fd = &g_array_index(sw->pool_fds, int, pool);
    if (*fd < 0)
        *fd = fcntl(((ShPool *)g_ptr_array_index(eng->pools, pool))->fp.fd, F_DUPFD_CLOEXEC, 0);
    return *fd;
}

/* Can frame fid leave now?  Every mapper must have a swap channel. */
static bool frame_evictable(SpEngine *eng, ShSwap *sw, uint32_t fid, SpEngineVm *only)
{
    ShFrame *f = sh_frame(eng, fid);
    if (!f->refs || f->pool == NO_SPACE || sh_swap_frame_is_out(eng, fid) ||
        ((ShPool *)g_ptr_array_index(eng->pools, f->pool))->adopted)
        return false;
    bool has_only = only == NULL;
    return sh_swap_mappers_ready(eng, sw, fid, only, &has_only) && has_only;
}

bool sh_swap_mappers_ready(SpEngine *eng, ShSwap *sw, uint32_t fid, SpEngineVm *only,
                           bool *has_only)
{
    ShMappers m = sh_mappers(eng, fid);
    for (uint32_t i = 0; i < m.n; i++) {
        uint64_t w = sh_mappers_at(&m, i);
        uint32_t slot = (uint32_t)(w >> 40);
        SpEngineVm *vm = slot < eng->nslots ? eng->vm_slots[slot] : NULL;
        if (!vm || vm->broken || vm->hold || !sh_swap_vm_find(sw, vm))
            return false;
        if (has_only)
            *has_only |= vm == only;
    }
    return m.n > 0;
}

/* Pick up to max frames from the clock; lock held. */
static void pick_frames(SpEngine *eng, ShSwap *sw, uint64_t max, SpEngineVm *only, GArray *out)
{
    uint32_t nf = eng->frames->len;
    grow_bits(sw, nf);
    for (uint32_t seen = 0; seen < nf && out->len < max; seen++) {
        uint32_t fid = sw->frame_hand++ % nf;
        uint64_t bit = 1ULL << (fid % 64);
        if (sw->frame_back[fid / 64] & bit) { /* brought back lately: a second chance */
            sw->frame_back[fid / 64] &= ~bit;
            continue;
        }
        if (frame_evictable(eng, sw, fid, only))
            g_array_append_val(out, fid);
    }
}

GHashTable *sh_swap_per_vm_new(void)
{
    return g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                 (GDestroyNotify)g_array_unref);
}

void sh_swap_gather_mappers(SpEngine *eng, uint32_t fid, GHashTable *per_vm)
{
    ShMappers m = sh_mappers(eng, fid);
    for (uint32_t k = 0; k < m.n; k++) {
        uint64_t w = sh_mappers_at(&m, k);
        SpEngineVm *vm = eng->vm_slots[w >> 40];
        GArray *g = g_hash_table_lookup(per_vm, vm);
        if (!g) {
            g = g_array_new(FALSE, FALSE, sizeof(uint64_t));
            g_hash_table_insert(per_vm, vm, g);
        }
        uint64_t gfn = w & ((1ULL << 40) - 1);
        g_array_append_val(g, gfn);
    }
}

bool sh_swap_prep_all(SpEngine *eng, GHashTable *per_vm)
{
    GHashTableIter it;
    gpointer key, val;
    g_hash_table_iter_init(&it, per_vm);
    while (g_hash_table_iter_next(&it, &key, &val))
        if (!sh_swap_prep(eng, key, val))
            return false; /* nothing evicted: a VM could not be made ready */
    return true;
}

/* Every mapper of the frames registers their pages for missing faults. */
static bool prep_mappers(SpEngine *eng, GArray *fids)
{
    g_autoptr(GHashTable) per_vm = sh_swap_per_vm_new();
    for (guint i = 0; i < fids->len; i++)
        sh_swap_gather_mappers(eng, g_array_index(fids, uint32_t, i), per_vm);
    return sh_swap_prep_all(eng, per_vm);
}

void sh_swap_note_spaces(SpEngine *eng, ShSwap *sw)
{
    for (guint i = 0; i < sw->vms->len; i++) {
        ShSwapVm *v = sw->vms->pdata[i];
        if (v->dead || !v->vm)
            continue;
        GArray *sp = v->vm->spaces;
        g_array_set_size(v->space_pool, sp->len);
        g_array_set_size(v->space_ino, sp->len);
        for (guint s = 0; s < sp->len; s++) {
            const ShSpace *space = &g_array_index(sp, ShSpace, s);
            g_array_index(v->space_pool, uint32_t, s) = space->pool;
            g_array_index(v->space_ino, uint64_t, s) =
                space->rec ? space->rec->ino
                : space->pool != NO_SPACE
                    ? ((ShPool *)g_ptr_array_index(eng->pools, space->pool))->ino
                    : 0;
        }
    }
}

uint64_t sh_swap_evict_frames(SpEngine *eng, uint64_t max, SpEngineVm *only)
{
    ShSwap *sw = eng->swap;
    g_autoptr(GArray) fids = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    g_mutex_lock(&sw->lock);
    if (sw->stopped_full) {
        g_mutex_unlock(&sw->lock);
        return 0;
    }
    pick_frames(eng, sw, MIN(max, FRAME_BATCH), only, fids);
    sh_swap_note_spaces(eng, sw);
    g_mutex_unlock(&sw->lock);
    if (!fids->len || !prep_mappers(eng, fids))
        return 0;
    uint64_t gone = 0;
    for (guint i = 0; i < fids->len; i++) {
        uint32_t fid = g_array_index(fids, uint32_t, i);
        ShFrame *f = sh_frame(eng, fid);
        const uint8_t *c = sh_frame_ptr(eng, fid);
        g_autoptr(GError) err = NULL;
        uint32_t slot = c ? sp_swap_store_put(sw->store, c, &err) : SP_SWAP_NO_SLOT;
        g_mutex_lock(&sw->lock);
        int fd = slot != SP_SWAP_NO_SLOT ? pool_fd(eng, sw, f->pool) : -1;
        if (slot == SP_SWAP_NO_SLOT || fd < 0) {
            if (err)
                sh_swap_store_full(sw, err);
            if (slot != SP_SWAP_NO_SLOT)
                sp_swap_store_drop(sw->store, slot);
            g_mutex_unlock(&sw->lock);
            break;
        }
        SpSwapOwner own = {.kind = SP_SWAP_OWNER_FRAME,
                           .a = ((ShPool *)g_ptr_array_index(eng->pools, f->pool))->ino,
                           .b = f->off};
        sp_swap_store_set_owner(sw->store, slot, &own);
        /* Listed before the punch: a fault right after finds it. */
        uint64_t *k = g_new(uint64_t, 1), *v = g_new(uint64_t, 1);
        *k = sh_swap_frame_key(f->pool, f->off);
        *v = ((uint64_t)fid << 32) | slot;
        g_hash_table_insert(sw->frames, k, v);
        __atomic_fetch_or(&sw->frame_out[fid / 64], 1ULL << (fid % 64), __ATOMIC_RELEASE);
        if (!sh_swap_punch(sw, fd, f->off, slot, "pool")) {
            g_hash_table_remove(sw->frames, k);
            __atomic_fetch_and(&sw->frame_out[fid / 64], ~(1ULL << (fid % 64)), __ATOMIC_RELEASE);
            g_mutex_unlock(&sw->lock);
            break;
        }
        gone++;
        g_mutex_unlock(&sw->lock);
        sh_swap_test_kill(sw, "evict-frame"); /* tests: a frame out, its mappers prepared */
    }
    return gone;
}

/* --- the balancer --- */

/* Is the host short of memory?  PSI, then MemAvailable. */
static bool host_pressure(void)
{
    char buf[512];
    FILE *f = fopen("/proc/pressure/memory", "r");
    if (f) {
        double avg10 = 0;
        bool hit = fgets(buf, sizeof(buf), f) && sscanf(buf, "some avg10=%lf", &avg10) == 1 &&
                   avg10 >= PSI_SOME_LIMIT;
        fclose(f);
        if (hit)
            return true;
    }
    unsigned long long total = 0, avail = 0, v;
    if (!(f = fopen("/proc/meminfo", "r")))
        return false;
    while (fgets(buf, sizeof(buf), f)) {
        if (sscanf(buf, "MemTotal: %llu kB", &v) == 1)
            total = v;
        else if (sscanf(buf, "MemAvailable: %llu kB", &v) == 1)
            avail = v;
    }
    fclose(f);
    return total && avail < total * AVAIL_MIN_PCT / 100;
}

/* eng->lock held: charge every VM; the host's charge. */
static uint64_t charge_all(SpEngine *eng, ShSwap *sw)
{
    uint64_t host = 0;
    for (uint32_t s = 0; s < eng->nslots; s++) {
        SpEngineVm *vm = eng->vm_slots[s];
        if (!vm || vm->broken || vm->hold)
            continue;
        sh_vm_refresh_stats(eng, vm);
        g_mutex_lock(&sw->lock);
        ShSwapVm *v = sh_swap_vm_find(sw, vm);
        bool walk = (v && v->limit_pages) || sw->frames_out;
        g_mutex_unlock(&sw->lock);
        /* share: 1/N of each frame it maps, in 1/65536ths (only when it
         * matters: the walk costs a look at every page) */
        uint64_t merged_in = walk ? 0 : vm->merged, share = 0;
        for (uint64_t g = vm->first; walk && g < vm->end; g++) {
            uint32_t fid = vm->fid_of[g];
            if (fid == NO_FRAME || sh_swap_frame_is_out(eng, fid))
                continue;
            merged_in++;
            share += 65536 / MAX(sh_frame(eng, fid)->refs, 1u);
        }
        /* Private: the smaller of two figures that each count the guest
         * pages the VM holds alone, plus something else: its RAM's resident
         * pages that map no frame (mincore: also the zero page that dropped
         * pages map once read) and its process's anonymous resident pages
         * (RssAnon: also the process's own heap, large in a sanitizer
         * build). */
        uint64_t res = vm->agent.resident_pages;
        uint64_t priv = res - MIN(res, merged_in);
        if (vm->agent_more.rss_anon_pages)
            priv = MIN(priv, vm->agent_more.rss_anon_pages);
        host += priv;
        g_mutex_lock(&sw->lock);
        v = sh_swap_vm_find(sw, vm);
        if (v) {
            v->charged = priv + share / 65536;
            v->in_since = 0;
        }
        g_mutex_unlock(&sw->lock);
    }
    SpSwapStoreStats st;
    sp_swap_store_stats(sw->store, &st);
    uint64_t frames = sh_pools_in_use(eng);
    g_mutex_lock(&sw->lock);
    /* The pool frames in memory (frames_out also counts the clone-layer
     * pages out, which are no pool's), and the store's own memory: the
     * pages its memfds hold now (the tier's live part and the slot table's
     * used part), not their sizes. */
    uint64_t pool_out = sw->frames_out - MIN(sw->frames_out, sw->layer_out);
    host += frames - MIN(frames, pool_out) + (st.mem_bytes + SP_PAGE_SIZE - 1) / SP_PAGE_SIZE;
    sw->charged = host;
    sw->in_since = 0;
    g_mutex_unlock(&sw->lock);
    return host;
}

/* Between two batches: let the scanner, attaches and readers in.  false
 * if the VM we evict for went meanwhile. */
static bool batch_pause(SpEngine *eng, uint32_t only_slot, SpEngineVm *only)
{
    sh_engine_let_in(eng);
    return !only || (only_slot < eng->nslots && eng->vm_slots[only_slot] == only);
}

/* n pages just left (for the VM `only`, or the host): the charges that
 * swap-ins are held to drop now, not at the end of the round, and the
 * swap-ins held at a limit are looked at again (swap.c). */
static void evicted(ShSwap *sw, SpEngineVm *only, uint64_t n)
{
    if (!n)
        return;
    g_mutex_lock(&sw->lock);
    sw->charged -= MIN(sw->charged, n);
    ShSwapVm *v = only ? sh_swap_vm_find(sw, only) : NULL;
    if (v)
        v->charged -= MIN(v->charged, n);
    g_mutex_unlock(&sw->lock);
    sh_swap_service_kick(sw);
}

/* Evict `want` pages, private first (colder first), then frames. */
static uint64_t evict(SpEngine *eng, SpEngineVm *only, uint64_t want)
{
    uint64_t got = 0;
    uint32_t only_slot = only ? only->slot_index : 0;
    static const uint32_t idle_steps[] = {3, 1, 0};
    for (size_t k = 0; k < G_N_ELEMENTS(idle_steps) && got < want; k++) {
        bool progress = true;
        while (got < want && progress) {
            progress = false;
            for (uint32_t s = 0; s < eng->nslots && got < want; s++) {
                SpEngineVm *vm = eng->vm_slots[s];
                if (!vm || (only && vm != only))
                    continue;
                uint64_t n = sh_swap_evict_private(
                    eng, vm, (uint32_t)MIN(want - got, PRIVATE_BATCH), idle_steps[k]);
                got += n;
                evicted(eng->swap, only, n);
                progress |= n > 0;
                if (!batch_pause(eng, only_slot, only) || eng->swap->quit)
                    return got;
            }
        }
    }
    while (got < want) {
        uint64_t n = sh_swap_evict_frames(eng, want - got, only);
        got += n;
        evicted(eng->swap, only, n);
        if (!n || !batch_pause(eng, only_slot, only) || eng->swap->quit)
            break;
    }
    while (got < want && !eng->swap->quit) {
        uint64_t n = sh_swap_evict_layers(eng, want - got, only);
        got += n;
        evicted(eng->swap, only, n);
        if (!n || !batch_pause(eng, only_slot, only))
            break;
    }
    return got;
}

static void balance_once(SpEngine *eng, ShSwap *sw)
{
    sh_engine_lock(eng);
    /* Group frames back from swap are no longer out for the charge (nor
     * for merges): with the engine stopped, no pass end would say so. */
    sh_swap_gframes_settle(eng);
    uint64_t host = charge_all(eng, sw);
    g_mutex_lock(&sw->lock);
    uint64_t limit = sw->host_limit_pages;
    bool was_full = sw->stopped_full;
    uint64_t ins = sw->swap_ins;
    g_mutex_unlock(&sw->lock);
    /* Each VM over its own limit. */
    for (uint32_t s = 0; s < eng->nslots; s++) {
        SpEngineVm *vm = eng->vm_slots[s];
        if (!vm || vm->broken || vm->hold)
            continue;
        g_mutex_lock(&sw->lock);
        ShSwapVm *v = sh_swap_vm_find(sw, vm);
        uint64_t lim = v ? v->limit_pages : 0, ch = v ? v->charged : 0;
        g_mutex_unlock(&sw->lock);
        if (lim && ch >= lim) { /* at its limit: swap-ins wait for this */
            /* (evicted() lowers its charge, what swap-ins are held to).
             * Not inside MIN(), which would evaluate it twice: a second
             * eviction, for a VM that may have gone in the first one's
             * pauses (a use after free, seen under ASan at a destroy). */
            uint64_t n = evict(eng, vm, ch - lim * HEADROOM_PCT / 100);
            host -= MIN(host, n);
        }
    }
    /* The host: room for twice what it grew by since the last round. */
    /* growth that nothing held back: not the swap-ins, which wait at the limit */
    uint64_t grown = host > sw->host_after ? host - sw->host_after : 0;
    grown = sw->host_after ? grown - MIN(grown, ins - sw->ins_after) : 0;
    uint64_t room =
        MIN(MAX(limit - limit * HEADROOM_PCT / 100, 2 * grown), limit * ROOM_MAX_PCT / 100);
    uint64_t target = limit ? limit - room : UINT64_MAX;
    if (sw->pressure && host_pressure()) {
        target = MIN(target, host - MIN(host, MAX(host / 100, 256u)));
        g_mutex_lock(&sw->lock);
        sw->pressure_rounds++;
        g_mutex_unlock(&sw->lock);
    }
    if ((limit && host >= limit) || target < host) {
        uint64_t n = evict(eng, NULL, host - target); /* once: see above */
        host -= MIN(host, n);
    }
    sw->host_after = host;
    sw->ins_after = ins;
    g_mutex_lock(&sw->lock);
    sw->charged = host; /* after this round's evictions: what swap-ins are held to */
    g_mutex_unlock(&sw->lock);
    g_mutex_unlock(&eng->lock);
    /* A full store may have room again once pages came back. */
    if (was_full) {
        SpSwapStoreStats st;
        sp_swap_store_stats(sw->store, &st);
        g_mutex_lock(&sw->lock);
        if (st.slots_used <= sw->full_slots * 9 / 10 &&
            g_get_monotonic_time() - sw->full_us >= 10 * G_USEC_PER_SEC) {
            sw->stopped_full = false;
            g_message("event=swap-resumed slots_used=%" G_GUINT64_FORMAT, st.slots_used);
        }
        g_mutex_unlock(&sw->lock);
    }
}

gpointer sh_swap_balancer(gpointer opaque)
{
    SpEngine *eng = opaque;
    ShSwap *sw = eng->swap;
    g_mutex_lock(&sw->lock);
    while (!sw->quit) {
        g_cond_wait_until(&sw->cond, &sw->lock, g_get_monotonic_time() + TICK_MS * 1000);
        if (sw->quit)
            break;
        g_mutex_unlock(&sw->lock);
        balance_once(eng, sw);
        g_mutex_lock(&sw->lock);
        sw->balance_seq++;
        sh_swap_service_kick(sw); /* swap-ins held at a limit go on */
    }
    g_mutex_unlock(&sw->lock);
    return NULL;
}

uint64_t sp_engine_swap_out(SpEngine *eng, SpEngineVm *vm, bool private_pages, bool frames,
                            uint64_t max)
{
    if (!eng->swap)
        return 0;
    uint64_t got = 0;
    sh_engine_lock(eng);
    uint32_t only_slot = vm ? vm->slot_index : 0;
    /* One turn of each VM's clock at most: a VM that answers fewer pages
     * than asked looked at all of them (a running guest brings pages back
     * meanwhile, which must not keep this going for ever). */
    uint32_t nslots = eng->nslots; /* VMs attached meanwhile wait for the next call */
    g_autofree bool *done = g_new0(bool, MAX(nslots, 1));
    for (bool more = private_pages; more && got < max;) {
        more = false;
        for (uint32_t s = 0; s < MIN(nslots, eng->nslots) && got < max; s++) {
            SpEngineVm *v = eng->vm_slots[s];
            if (!v || (vm && v != vm) || done[s])
                continue;
            uint32_t want = (uint32_t)MIN(max - got, PRIVATE_BATCH);
            uint64_t n = sh_swap_evict_private(eng, v, want, 0);
            got += n;
            done[s] = n < want;
            more |= !done[s];
        }
        if (!batch_pause(eng, only_slot, vm))
            break;
    }
    /* Frames: as many as there are now, at most (the same reason). */
    uint64_t n = 1, frames_max = sh_pools_in_use(eng), frames_got = 0;
    while (frames && n && got < max && frames_got < frames_max) {
        n = sh_swap_evict_frames(eng, MIN(max - got, frames_max - frames_got), vm);
        got += n;
        frames_got += n;
        if (!batch_pause(eng, only_slot, vm))
            break;
    }
    /* Clone-layer pages: one turn of each group's clock at most. */
    uint64_t layers_max = 0;
    GHashTableIter it;
    gpointer k, r;
    g_hash_table_iter_init(&it, eng->grecs);
    while (g_hash_table_iter_next(&it, &k, &r))
        layers_max += ((ShGroupRec *)r)->npages;
    for (uint64_t layers_got = 0, m = 1; frames && m && got < max && layers_got < layers_max;) {
        m = sh_swap_evict_layers(eng, MIN(max - got, layers_max - layers_got), vm);
        got += m;
        layers_got += m;
        if (!batch_pause(eng, only_slot, vm))
            break;
    }
    g_mutex_unlock(&eng->lock);
    return got;
}
