/* SPDX-License-Identifier: MIT */
/*
 * scan.c - one pass of the index over the VMs (the agent's half is
 * sharing/agent-scan.c).
 *
 * A pass begins with every VM's harvest (M_BEGIN): the agents learn from
 * KVM's dirty log which pages changed, and report the merged pages the
 * kernel copied on write, whose frame references are dropped here.  The
 * unstable table is emptied.
 *
 * Then each VM in turn, batch by batch (sh_scan_batch):
 *   1. M_SCAN: the agent examines up to pages_to_scan pages from the VM's
 *      cursor and returns the candidates (gfn, hash): touched, stable,
 *      not merged, not zero (it drops zero pages itself);
 *   2. each candidate is matched: a frame of the stable index with the same
 *      share set and hash and room for one more mapper is a merge for this
 *      VM; else an earlier candidate with the same key in the unstable
 *      table (of any VM) makes a pair; else the candidate goes into the
 *      unstable table;
 *   3. pairs need a new frame: M_CONTENT fetches this VM's pages, each is
 *      hashed again (the hash must match the candidate's) and copied into a
 *      new frame of the share set's pool;
 *   4. M_MERGE to this VM (its stable matches and its side of the pairs)
 *      and to each partner VM (the other side), all sent before any answer
 *      is awaited, so the agents work at once (each on its own pages):
 *      every agent compares the bytes under write protection before it
 *      remaps, and answers which merges happened; each is one reference
 *      (counters.c);
 *   5. new frames are published into the stable index with the references
 *      they got (or freed if none).
 * So a new duplicate merges in the first pass that sees it unchanged, as
 * before the process split - provided its partner is examined in that pass:
 * with smart_scan (agent-scan.c) a page that has stayed unmerged and
 * unwritten for a while is examined only in some passes (all such pages in
 * every 8th), and a duplicate of it merges in the first of those.
 *
 * merge_across_nodes=0 (KSM's): the agents say each candidate's host node
 * and the key includes it, so the stable index, the unstable table and the
 * pools are each node's own: a page is matched only with pages and frames
 * of its node, and a new frame comes from its node's pool (pools.c).  (The
 * unstable table keeps a 32-bit tag of the key, index-map.h: exact within a
 * share set and node; across nodes, about once in 2^32 pairs, a page may
 * be paired with another node's page of another content, whose merge the
 * partner's byte comparison in step 4 refuses: the new frame then has the
 * one reference, as when a partner's page changes before its merge.)
 * Group frames belong to no node and are found only with
 * merge_across_nodes=1.
 *
 * Engine lock held throughout.
 */
#include <string.h>

#include "sharing/engine-priv.h"

static uint64_t budget_limit(SpEngine *eng, SpEngineVm *vm)
{
    return vm->npages * eng->knobs.map_budget / 1000;
}

void sh_scan_begin(SpEngine *eng)
{
    eng->stats.map_skipped = 0;
    eng->pass_skipped = 0;
    for (uint32_t i = 0; i < eng->nslots; i++) {
        SpEngineVm *vm = eng->vm_slots[i];
        if (!vm || vm->broken || vm->hold)
            continue;
        SpProtoMsg r = {0};
        vm->volatile_now = 0;
        vm->cursor = vm->first;
        if (sh_exchange(eng, vm, SP_PROTO_M_BEGIN, NULL, 0, NULL, 0, &r)) {
            SpProtoReader rd = sp_proto_reader(&r);
            SpProtoReleased rel;
            if (sp_proto_read(&rd, &rel, sizeof(rel)))
                eng->stats.cow_breaks += rel.n;
            sh_apply_released(eng, vm, &r);
        }
        sp_proto_msg_clear(&r);
        /* The mapping budget: what the last pass left, and the agent's
         * own count of its mappings to start this one from (after M_BEGIN,
         * which gave back what copies-on-write left: agent-compact.c). */
        /* What the last pass refused, and what earlier ones refused that
         * was not asked again (refused pages are not, while at the budget;
         * with smart_scan they are examined less often): both are left on
         * the table — but for a page merged since by a way of its own. */
        uint64_t still = 0;
        if (!eng->knobs.map_budget && vm->map_refused) /* no budget (lifted): none is */
            memset(vm->map_refused, 0, (vm->npages + 63) / 64 * 8);
        for (uint64_t w = 0; vm->map_refused && w < (vm->npages + 63) / 64; w++)
            for (uint64_t bits = vm->map_refused[w]; bits; bits &= bits - 1) {
                uint64_t g = w * 64 + (uint64_t)__builtin_ctzll(bits);
                if (vm->fid_of[g] != NO_FRAME)
                    vm->map_refused[w] &= ~(1ULL << (g % 64));
                else
                    still++;
            }
        vm->map_skipped = MAX(vm->map_skipped_now, still);
        vm->map_skipped_now = 0;
        eng->stats.map_skipped += vm->map_skipped;
        /* With room under the budget a refused page is matched again when
         * next examined (match()), and its bit goes then: with smart_scan
         * that may be 8 passes away, and until then it is still left on
         * the table. */
        if (eng->knobs.map_budget && !vm->broken) {
            sh_vm_refresh_stats(eng, vm);
            vm->map_est = vm->agent.mappings;
        }
    }
    index_map_clear(&eng->unstable);
}

/* A merge to ask of a VM: its page gfn onto frame fid (or, until the frame
 * exists, onto the batch's new frame number `pend`). */
typedef struct Want {
    SpEngineVm *vm;
    uint64_t gfn;
    uint32_t fid;
    uint32_t hash;
    int32_t pend; /* index in Batch.pends, or -1 */
} Want;

/* A frame this batch will make: the first candidate that found an earlier
 * one of the same key (`mine`, whose content fills it), and every
 * candidate of the batch that joins it, up to max_page_sharing. */
typedef struct Pend {
    uint64_t key;
    uint64_t gfn; /* mine: a page of the scanned VM */
    int node;     /* the pool its frame comes from (-1: any) */
    uint32_t hash;
    uint32_t count;
    uint32_t fid; /* once made */
} Pend;

typedef struct Batch {
    GArray *wants;      /* Want */
    GArray *pends;      /* Pend */
    GHashTable *by_key; /* key -> Pend index + 1 (the newest of the key) */
    GHashTable *extra;  /* stable fid -> merges asked in this batch */
} Batch;

/* Frame `off` of pool `pool`, allocated, becomes frame content's id. */
static uint32_t new_frame_at(SpEngine *eng, uint32_t pool, uint32_t off, const void *content,
                             uint32_t hash)
{
    ShPool *p = g_ptr_array_index(eng->pools, pool);
    uint32_t fid = sh_frame_id_new(eng, pool, off, hash);
    if (fid == NO_FRAME) {
        sp_frame_pool_free(&p->fp, off);
        return NO_FRAME;
    }
    memcpy(sp_frame_pool_ptr(&p->fp, off), content, SP_PAGE_SIZE);
    return fid;
}

/* The VM's (space, off) for frame fid, telling it about the file first if
 * it does not know it yet; false if it cannot be told. */
static bool frame_loc(SpEngine *eng, SpEngineVm *vm, uint32_t fid, uint32_t *space, uint32_t *off)
{
    if (sh_is_gframe(fid)) {
        ShGFrame *g = &sh_vec_index(eng->gframes, ShGFrame, fid & ~GF_BIT);
        *space = sh_vm_space_grec(eng, vm, g->rec);
        *off = (uint32_t)g->off;
    } else {
        ShFrame *f = &sh_vec_index(eng->frames, ShFrame, fid);
        *space = sh_vm_space_pool(eng, vm, f->pool);
        *off = f->off;
    }
    return *space != NO_SPACE;
}

typedef struct Item {
    SpProtoMergeItem it;
    guint want;    /* index in the wants */
    uint8_t added; /* mappings the budget counted for it (given back if it does not happen) */
} Item;

static gint item_cmp(gconstpointer a, gconstpointer b)
{
    uint64_t x = ((const Item *)a)->it.gfn, y = ((const Item *)b)->it.gfn;
    return x < y ? -1 : x > y;
}

/* The mapping budget (docs/sharing.md, "Mappings").  A VM's RAM is split
 * into a new mapping wherever a page's mapping changes: anonymous to a
 * frame, or to a frame that is not the next one of the same space.  A merge
 * changes the boundaries on each side of its page: from the engine's own
 * state of the neighbours (the left one as this request leaves it), that
 * is -2..+2 mappings.  Past the budget, a merge that adds mappings goes on
 * only in a run of BUDGET_RUN pages (two mappings for 64 KiB or more); the
 * rest are refused and counted.  The count starts each pass from the
 * agent's exact one; in between it only grows (what unmerges and
 * copy-on-write breaks give back waits for the next pass), and a page the
 * engine does not know is still file-mapped (copied on write) only makes
 * it count high: the budget errs on the side of fewer mappings. */
#define BUDGET_RUN 16

typedef struct Loc {
    bool edge; /* beyond guest RAM: no boundary there */
    bool file; /* maps a frame (space, off) */
    uint32_t space, off;
} Loc;

static Loc page_loc(SpEngine *eng, SpEngineVm *vm, uint64_t gfn)
{
    Loc l = {.edge = gfn >= vm->npages};
    if (!l.edge && vm->fid_of[gfn] != NO_FRAME)
        l.file = frame_loc(eng, vm, vm->fid_of[gfn], &l.space, &l.off);
    return l;
}

static int boundary(Loc a, Loc b)
{
    if (a.edge || b.edge)
        return 0;
    if (a.file != b.file)
        return 1;
    return a.file && (a.space != b.space || b.off != a.off + 1);
}

static bool item_follows(const Item *a, const Item *b)
{
    return b->it.gfn == a->it.gfn + 1 && b->it.space == a->it.space && b->it.off == a->it.off + 1;
}

static void budget_filter(SpEngine *eng, SpEngineVm *vm, GArray *sorted)
{
    if (!eng->knobs.map_budget || !sorted->len)
        return;
    uint64_t limit = budget_limit(eng, vm);
    guint n = sorted->len, kept = 0;
    g_autofree guint *run = g_new(guint, n);
    for (guint i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && item_follows(&g_array_index(sorted, Item, j - 1),
                                              &g_array_index(sorted, Item, j));
             j++)
            ;
        for (guint k = i; k < j; k++)
            run[k] = j - i;
    }
    Loc left = {0};
    uint64_t left_gfn = UINT64_MAX; /* the last page kept, as it will be */
    for (guint i = 0; i < n; i++) {
        Item x = g_array_index(sorted, Item, i);
        uint64_t g = x.it.gfn;
        Loc me = {.file = true, .space = x.it.space, .off = x.it.off};
        Loc cur = page_loc(eng, vm, g);
        Loc l = g == 0 ? (Loc){.edge = true} : left_gfn == g - 1 ? left : page_loc(eng, vm, g - 1);
        Loc r = page_loc(eng, vm, g + 1);
        int delta = boundary(l, me) + boundary(me, r) - boundary(l, cur) - boundary(cur, r);
        if (delta > 0 && vm->map_est + (uint64_t)delta > limit && run[i] < BUDGET_RUN) {
            vm->map_skipped_now++;
            if (!vm->map_refused)
                vm->map_refused = g_try_new0(uint64_t, (vm->npages + 63) / 64);
            if (vm->map_refused)
                vm->map_refused[g / 64] |= 1ULL << (g % 64);
            continue;
        }
        if (delta > 0)
            vm->map_est += (uint64_t)delta;
        x.added = (uint8_t)MAX(delta, 0);
        g_array_index(sorted, Item, kept++) = x;
        left = me;
        left_gfn = g;
    }
    g_array_set_size(sorted, kept);
}

/* Step 4 for one VM: its merges among the wants, in guest-address order
 * (so that consecutive pages going to consecutive frames reach the agent
 * as a run: one mmap), sent a message at a time. */
typedef struct MergeJob {
    SpEngineVm *vm;
    GArray *items; /* SpProtoMergeItem */
    GArray *which; /* guint: the want of each item */
    GArray *added; /* uint8_t: the mappings the budget counted for each item */
    guint done;    /* items answered */
    guint n;       /* items in the message in flight (0: none) */
    uint32_t seq;
} MergeJob;

static void merge_job_init(SpEngine *eng, MergeJob *job, SpEngineVm *vm, GArray *wants)
{
    /* a Want whose new frame could not be made has fid NO_FRAME: skipped */
    g_autoptr(GArray) sorted = g_array_new(FALSE, FALSE, sizeof(Item));
    for (guint i = 0; i < wants->len; i++) {
        Want *w = &g_array_index(wants, Want, i);
        Item x = {.it = {.gfn = w->gfn, .hash = w->hash}, .want = i};
        if (w->vm != vm || w->fid == NO_FRAME || vm->fid_of[w->gfn] != NO_FRAME ||
            !frame_loc(eng, vm, w->fid, &x.it.space, &x.it.off))
            continue;
        g_array_append_val(sorted, x);
    }
    g_array_sort(sorted, item_cmp);
    budget_filter(eng, vm, sorted);
    *job = (MergeJob){
        .vm = vm,
        .items = g_array_sized_new(FALSE, FALSE, sizeof(SpProtoMergeItem), sorted->len),
        .which = g_array_sized_new(FALSE, FALSE, sizeof(guint), sorted->len),
        .added = g_array_sized_new(FALSE, FALSE, sizeof(uint8_t), sorted->len),
    };
    for (guint i = 0; i < sorted->len; i++) {
        g_array_append_val(job->items, g_array_index(sorted, Item, i).it);
        g_array_append_val(job->which, g_array_index(sorted, Item, i).want);
        g_array_append_val(job->added, g_array_index(sorted, Item, i).added);
    }
}

/* Send the job's next message, if any is left; false if none went. */
static bool merge_job_send(SpEngine *eng, MergeJob *job)
{
    const size_t per_msg = (SP_PROTO_MAX_MSG - sizeof(SpProtoHdr)) / sizeof(SpProtoMergeItem);
    job->n = 0;
    if (job->done >= job->items->len || job->vm->broken)
        return false;
    guint n = (guint)MIN(per_msg, job->items->len - job->done);
    if (!sh_send(eng, job->vm, SP_PROTO_M_MERGE,
                 &g_array_index(job->items, SpProtoMergeItem, job->done),
                 (uint32_t)(n * sizeof(SpProtoMergeItem)), NULL, 0, &job->seq))
        return false;
    job->n = n;
    return true;
}

/* Receive the answer to the message in flight: each merge that happened
 * is one reference. */
static void merge_job_collect(SpEngine *eng, MergeJob *job, GArray *wants)
{
    SpProtoMsg r = {0};
    guint n = job->n;
    job->n = 0;
    if (!n || !sh_recv(eng, job->vm, SP_PROTO_M_MERGE, job->seq, &r)) {
        job->done = job->items->len; /* nothing more for it */
        return;
    }
    SpProtoReader rd = sp_proto_reader(&r);
    const uint8_t *res = sp_proto_read_array(&rd, n, 1);
    for (guint k = 0; res && k < n; k++) {
        if (!res[k]) { /* not merged: what the budget counted for it comes back */
            job->vm->map_est -=
                MIN(job->vm->map_est, g_array_index(job->added, uint8_t, job->done + k));
            continue;
        }
        Want *w = &g_array_index(wants, Want, g_array_index(job->which, guint, job->done + k));
        sh_page_set_merged(eng, job->vm, w->gfn, w->fid);
        eng->stats.merges++;
        eng->scan_work++;
    }
    sp_proto_msg_clear(&r);
    job->done += n;
}

/* Step 4 for several VMs at once: each VM's agent works on its merges
 * while the others work on theirs (the engine's work is a chain of
 * requests, and on a host whose vCPUs keep every core busy each request
 * waits its turn on a core: several in flight wait together). */
/* A new frame (no mapper yet) that only one VM's job still asks for
 * would be one page for one page: no saving, and a mapping or two spent.
 * Its item goes (the mapping budget refused its partner; counted with
 * those). */
static void drop_lone_frames(SpEngine *eng, MergeJob *jobs, guint njobs, GArray *wants)
{
    g_autoptr(GHashTable) asks = g_hash_table_new(g_direct_hash, g_direct_equal);
    for (int pass = 0; pass < 2; pass++)
        for (guint j = 0; j < njobs; j++) {
            MergeJob *job = &jobs[j];
            guint kept = 0;
            for (guint i = 0; i < job->items->len; i++) {
                Want *w = &g_array_index(wants, Want, g_array_index(job->which, guint, i));
                gpointer key = GUINT_TO_POINTER(w->fid + 1);
                guint n = GPOINTER_TO_UINT(g_hash_table_lookup(asks, key));
                bool fresh = sh_frame(eng, w->fid)->refs == 0;
                if (pass == 0) {
                    if (fresh)
                        g_hash_table_insert(asks, key, GUINT_TO_POINTER(n + 1));
                    continue;
                }
                uint8_t added = g_array_index(job->added, uint8_t, i);
                if (fresh && n < 2) {
                    job->vm->map_skipped_now++;
                    job->vm->map_est -= MIN(job->vm->map_est, added);
                    continue;
                }
                g_array_index(job->items, SpProtoMergeItem, kept) =
                    g_array_index(job->items, SpProtoMergeItem, i);
                g_array_index(job->added, uint8_t, kept) = added;
                g_array_index(job->which, guint, kept++) = g_array_index(job->which, guint, i);
            }
            if (pass == 1) {
                g_array_set_size(job->items, kept);
                g_array_set_size(job->which, kept);
                g_array_set_size(job->added, kept);
            }
        }
}

static void merge_all(SpEngine *eng, GPtrArray *vms, GArray *wants)
{
    g_autofree MergeJob *jobs = g_new0(MergeJob, vms->len);
    for (guint i = 0; i < vms->len; i++)
        merge_job_init(eng, &jobs[i], vms->pdata[i], wants);
    if (eng->knobs.map_budget)
        drop_lone_frames(eng, jobs, vms->len, wants);
    for (bool sent = true; sent;) {
        sent = false;
        for (guint i = 0; i < vms->len; i++)
            sent |= merge_job_send(eng, &jobs[i]);
        for (guint i = 0; i < vms->len; i++)
            if (jobs[i].n)
                merge_job_collect(eng, &jobs[i], wants);
    }
    for (guint i = 0; i < vms->len; i++) {
        g_array_free(jobs[i].items, TRUE);
        g_array_free(jobs[i].which, TRUE);
        g_array_free(jobs[i].added, TRUE);
    }
}

static void merge_on(SpEngine *eng, SpEngineVm *vm, GArray *wants)
{
    g_autoptr(GPtrArray) one = g_ptr_array_new();
    g_ptr_array_add(one, vm);
    merge_all(eng, one, wants);
}

/* Step 3 for the pends [first, first + n), whose contents are `pages`:
 * each whose content still has its hash gets a frame.  Pends of
 * consecutive guest pages going to one pool get consecutive frames (a
 * run), so that every VM holding them at consecutive pages maps them with
 * one mmap. */
static void fill_frames(SpEngine *eng, SpEngineVm *vm, Batch *b, guint first, guint n,
                        const uint8_t *pages, GArray *fresh)
{
    g_autofree uint32_t *pool = g_new(uint32_t, n);
    for (guint k = 0; k < n; k++) {
        Pend *pd = &g_array_index(b->pends, Pend, first + k);
        /* changed since, or a lying agent: no frame */
        pool[k] = sh_page_hash(pages + (uint64_t)k * SP_PAGE_SIZE) != pd->hash
                      ? NO_SPACE
                      : sh_pool_for(eng, vm->group, pd->node);
    }
    for (guint k = 0, j; k < n; k = j) {
        j = k + 1;
        if (pool[k] == NO_SPACE)
            continue;
        while (j < n && pool[j] == pool[k] &&
               g_array_index(b->pends, Pend, first + j).gfn ==
                   g_array_index(b->pends, Pend, first + j - 1).gfn + 1)
            j++;
        ShPool *p = g_ptr_array_index(eng->pools, pool[k]);
        uint32_t run = j - k > 1 ? sp_frame_pool_alloc(&p->fp, j - k) : UINT32_MAX;
        for (guint m = k; m < j; m++) {
            Pend *pd = &g_array_index(b->pends, Pend, first + m);
            uint32_t off = run != UINT32_MAX ? run + (m - k) : sp_frame_pool_alloc(&p->fp, 1);
            if (off == UINT32_MAX)
                continue;
            pd->fid = new_frame_at(eng, pool[k], off, pages + (uint64_t)m * SP_PAGE_SIZE, pd->hash);
            if (pd->fid != NO_FRAME)
                g_array_append_val(fresh, pd->fid);
        }
    }
}

/* Step 3: the batch's new frames, from the scanned VM's contents. */
static void make_frames(SpEngine *eng, SpEngineVm *vm, Batch *b, GArray *fresh)
{
    if (!b->pends->len)
        return;
    const size_t per_msg = (SP_PROTO_MAX_MSG - sizeof(SpProtoHdr)) / 8;
    g_autoptr(GArray) gfns = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    for (guint i = 0; i < b->pends->len; i++)
        g_array_append_val(gfns, g_array_index(b->pends, Pend, i).gfn);
    for (guint done = 0; done < gfns->len && !vm->broken;) {
        guint n = (guint)MIN(per_msg, gfns->len - done);
        SpProtoMsg r = {0};
        if (!sh_exchange(eng, vm, SP_PROTO_M_CONTENT, &g_array_index(gfns, uint64_t, done), n * 8,
                         NULL, 0, &r))
            break;
        uint64_t len = 0;
        const uint8_t *pages =
            r.hdr.nfds == 1 ? sp_proto_blob_map(r.fds[0], (uint64_t)n * SP_PAGE_SIZE, 0, &len, NULL)
                            : NULL;
        if (pages)
            fill_frames(eng, vm, b, done, n, pages, fresh);
        sp_proto_blob_unmap((void *)pages, len);
        sp_proto_msg_clear(&r);
        done += n;
    }
    for (guint i = 0; i < b->wants->len; i++) {
        Want *w = &g_array_index(b->wants, Want, i);
        if (w->pend >= 0)
            w->fid = g_array_index(b->pends, Pend, w->pend).fid;
    }
}

uint64_t sh_merge_onto(SpEngine *eng, SpEngineVm *vm, GArray *twins)
{
    g_autoptr(GArray) wants = g_array_new(FALSE, FALSE, sizeof(Want));
    for (guint i = 0; i < twins->len; i++) {
        ShMergeWant *t = &g_array_index(twins, ShMergeWant, i);
        Want w = {.vm = vm, .gfn = t->gfn, .fid = t->fid, .hash = t->hash, .pend = -1};
        g_array_append_val(wants, w);
    }
    uint64_t before = vm->merged;
    merge_on(eng, vm, wants);
    return vm->merged - before;
}

static void want_add(Batch *b, SpEngineVm *vm, uint64_t gfn, uint32_t hash, uint32_t fid,
                     int32_t pend)
{
    Want w = {.vm = vm, .gfn = gfn, .fid = fid, .hash = hash, .pend = pend};
    g_array_append_val(b->wants, w);
}

/* Step 2: match one candidate. */
static void match(SpEngine *eng, SpEngineVm *vm, const SpProtoCand *c, Batch *b)
{
    if (c->gfn < vm->first || c->gfn >= vm->end || vm->fid_of[c->gfn] != NO_FRAME)
        return; /* a confused agent: ignore */
    /* Refused by the budget, which is still spent: not matched (no frame,
     * no content read, no merge request) until the VM has room again. */
    if (vm->map_refused && (vm->map_refused[c->gfn / 64] >> (c->gfn % 64) & 1)) {
        if (eng->knobs.map_budget && vm->map_est >= budget_limit(eng, vm)) {
            vm->map_skipped_now++;
            return;
        }
        vm->map_refused[c->gfn / 64] &= ~(1ULL << (c->gfn % 64)); /* asked again */
    }
    uint32_t mps = eng->knobs.max_page_sharing;
    int node = eng->knobs.merge_across_nodes ? -1 : c->node1 ? (int)c->node1 - 1 : 0;
    uint64_t key = sh_key(vm->group, node, c->hash);
    uint32_t head = NO_FRAME;
    if (index_map_get(&eng->stable, key, &head)) {
        /* f->hash == c->hash: the frame's key is this one (index-map.h) */
        for (uint32_t fi = head; fi != NO_FRAME;) {
            ShFrame *f = sh_frame(eng, fi);
            uint32_t more = GPOINTER_TO_UINT(g_hash_table_lookup(b->extra, GUINT_TO_POINTER(fi)));
            /* A frame that is swapped out is not read, nor merged onto. */
            if (f->hash == c->hash && f->refs + more < mps && !sh_swap_frame_is_out(eng, fi)) {
                g_hash_table_insert(b->extra, GUINT_TO_POINTER(fi), GUINT_TO_POINTER(more + 1));
                want_add(b, vm, c->gfn, c->hash, fi, -1);
                return;
            }
            fi = f->next;
        }
    }
    guint pi = GPOINTER_TO_UINT(g_hash_table_lookup(b->by_key, &key));
    if (pi && g_array_index(b->pends, Pend, pi - 1).count < mps) {
        g_array_index(b->pends, Pend, pi - 1).count++;
        want_add(b, vm, c->gfn, c->hash, NO_FRAME, (int32_t)(pi - 1));
        return;
    }
    uint32_t ref = 0;
    if (index_map_get(&eng->unstable, key, &ref)) {
        uint64_t slot = (uint64_t)ref >> eng->cand_gfn_bits;
        uint64_t ogfn = ref & ((1ULL << eng->cand_gfn_bits) - 1);
        SpEngineVm *o = slot < eng->nslots ? eng->vm_slots[slot] : NULL;
        if (o && !o->broken && !o->hold && o->group == vm->group && ogfn < o->npages &&
            !(o == vm && ogfn == c->gfn) && o->fid_of[ogfn] == NO_FRAME) {
            index_map_remove(&eng->unstable, key);
            Pend pd = {.key = key,
                       .gfn = c->gfn,
                       .node = node,
                       .hash = c->hash,
                       .count = 2,
                       .fid = NO_FRAME};
            int32_t idx = (int32_t)b->pends->len;
            g_array_append_val(b->pends, pd);
            uint64_t *k = g_memdup2(&key, sizeof(key));
            g_hash_table_replace(b->by_key, k, GUINT_TO_POINTER(idx + 1));
            want_add(b, o, ogfn, c->hash, NO_FRAME, idx); /* the earlier page first */
            want_add(b, vm, c->gfn, c->hash, NO_FRAME, idx);
            return;
        }
    }
    uint64_t mine = (uint64_t)vm->slot_index << eng->cand_gfn_bits | c->gfn;
    if (mine < UINT32_MAX) /* else a slot past the references' room: see engine-priv.h */
        index_map_set(&eng->unstable, key, (uint32_t)mine);
}

void sh_cand_fit(SpEngine *eng, SpEngineVm *vm)
{
    uint32_t bits = MIN(vm->npages > 1 ? g_bit_storage(vm->npages - 1) : 1, 32);
    if (bits <= eng->cand_gfn_bits)
        return;
    eng->cand_gfn_bits = bits;
    index_map_clear(&eng->unstable); /* its references say the old split */
}

bool sh_scan_batch(SpEngine *eng, SpEngineVm *vm, uint32_t budget)
{
    if (vm->cursor >= vm->end)
        return false;
    SpProtoScan s = {.cursor = vm->cursor,
                     .limit = vm->end,
                     .budget = budget,
                     .max_cands = budget,
                     .flags = (eng->knobs.merge_across_nodes ? 0 : SP_PROTO_SCAN_NODES) |
                              (eng->knobs.smart_scan ? SP_PROTO_SCAN_SMART : 0),
                     .pass = (uint32_t)eng->stats.full_scans};
    SpProtoMsg r = {0};
    if (!sh_exchange(eng, vm, SP_PROTO_M_SCAN, &s, sizeof(s), NULL, 0, &r))
        return false;
    SpProtoReader rd = sp_proto_reader(&r);
    SpProtoCands cs;
    sp_proto_read(&rd, &cs, sizeof(cs));
    const SpProtoCand *cands = sp_proto_read_array(&rd, cs.ncands, sizeof(SpProtoCand));
    SpProtoCandsMore more = {0};
    if (rd.left >= sizeof(more)) /* an older agent's reply ends with the candidates */
        sp_proto_read(&rd, &more, sizeof(more));
    if (!cands || cs.next <= vm->cursor) {
        /* no progress: a confused agent; end its pass */
        sp_proto_msg_clear(&r);
        vm->cursor = vm->end;
        return false;
    }
    vm->cursor = MIN(cs.next, vm->end);
    eng->stats.pages_scanned += cs.scanned;
    eng->stats.pages_skipped += more.skipped;
    eng->pass_skipped += more.skipped;
    vm->volatile_now += cs.volatile_;
    eng->scan_work += cs.work;
    sh_vm_set_zero(eng, vm, cs.zero_now);
    Batch bt = {
        .wants = g_array_new(FALSE, FALSE, sizeof(Want)),
        .pends = g_array_new(FALSE, FALSE, sizeof(Pend)),
        .by_key = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL),
        .extra = g_hash_table_new(g_direct_hash, g_direct_equal),
    };
    g_autoptr(GArray) fresh = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    for (uint32_t i = 0; i < cs.ncands; i++)
        match(eng, vm, &cands[i], &bt);
    sp_proto_msg_clear(&r);
    make_frames(eng, vm, &bt, fresh);
    /* This VM's merges and each partner's, all at once. */
    g_autoptr(GPtrArray) vms = g_ptr_array_new();
    g_ptr_array_add(vms, vm);
    for (guint i = 0; i < bt.wants->len; i++) {
        SpEngineVm *w = g_array_index(bt.wants, Want, i).vm;
        if (!g_ptr_array_find(vms, w, NULL))
            g_ptr_array_add(vms, w);
    }
    merge_all(eng, vms, bt.wants);
    for (guint i = 0; i < fresh->len; i++)
        sh_frame_publish(eng, g_array_index(fresh, uint32_t, i));
    g_array_free(bt.wants, TRUE);
    g_array_free(bt.pends, TRUE);
    g_hash_table_destroy(bt.by_key);
    g_hash_table_destroy(bt.extra);
    return !cs.done && vm->cursor < vm->end;
}

void sh_unmerge_all(SpEngine *eng)
{
    for (uint32_t i = 0; i < eng->nslots; i++) {
        SpEngineVm *vm = eng->vm_slots[i];
        SpProtoMsg r = {0};
        if (vm && !vm->broken && !vm->hold &&
            sh_exchange(eng, vm, SP_PROTO_M_UNMERGE_ALL, NULL, 0, NULL, 0, &r))
            sh_apply_released(eng, vm, &r);
        sp_proto_msg_clear(&r);
    }
    index_map_clear(&eng->unstable);
    if (!eng->stats.pages_shared) /* the last re-homing pass's frames are all gone */
        memset(eng->stats.numa_frames_on, 0, sizeof(eng->stats.numa_frames_on));
}
