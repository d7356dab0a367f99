/* SPDX-License-Identifier: MIT */
/*
 * engine.c - the index object: knobs, VMs, the scanner thread, statistics.
 *
 * The scanner thread loops over full scans (passes).  Each pass begins
 * with every attached VM's harvest (scan.c), then goes over the VMs in
 * batches of pages_to_scan pages, dropping the engine lock and sleeping
 * sleep_millisecs between batches (0 = no pause: full speed).  run=0 parks
 * the thread; run=2 unmerges every page once and then parks it.  Builds
 * configured with --enable-debug-recount recount every counter after each
 * full scan (counters.c).
 *
 * Locking: eng->lock guards the index (engine-priv.h); the lock order with
 * the reverse map's rmap_lock is in rmap/rmap.h ("Locking").  A VM that the
 * clone code holds (sp_engine_vm_hold) is skipped by the scanner until it
 * is released.
 *
 * Handing the lock over: the scanner holds eng->lock through a batch (its
 * exchanges with the VM processes included) and drops it between batches.
 * A GMutex is not fair: unlock, yield and lock again took it straight
 * back, before a woken waiter ran, so a statistics reader (the metrics
 * endpoint, libvirt's domstats) or the swap balancer could wait many
 * batches (seconds inside the emulated host).  Threads other than the
 * scanner take the lock with sh_engine_lock, which counts them in
 * lock_wanted; between batches sh_engine_let_in sleeps with the lock
 * dropped until they have had it, LET_IN_MAX_US at most, so that a stream
 * of readers cannot stop the scan.  A waiter gets the lock at the next
 * batch's end (a bound that cut it short is counted, let_in_cut; readers
 * of figures record the most batches they waited beyond those,
 * sp_engine_handover: 1 when the hand-over works).  Readers of figures
 * (sp_engine_get_stats, _get_vm_stats, _get_knobs) do not wait behind an
 * exchange that is slow to be answered (exchange.c: a stopped or stuck VM
 * process, up to 30 s): they get the figures as last read or as the last
 * pass left them (pub_lock; a VM's own: as last read), so that status
 * lines, domstats and the metrics endpoint go on; and an agent that does
 * not answer M_STATS within STATS_WAIT_MS keeps its last figures instead
 * of holding the lock for the exchange's whole bound.
 *
 * Metadata: in the index, 4 bytes per guest page (fid_of) plus 20 bytes per
 * frame, its mapper list and the index tables; in each VM process, 8 bytes
 * per page (the state word, which holds an ANON page's hash) and five
 * bitmaps.  Both are reported as metadata_bytes, and part by part
 * (SpEngineStats: the VM processes', the frame ids, the frame records and
 * offset tables, the mapper lists, the stable index, the unstable table),
 * every byte allocated counted.  The tables by frame grow by an eighth
 * (vec.h); after each pass the mapper lists' slab and the stable index
 * give back what growth left unused (mappers.c, index-map.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "config.h"
#include "sharing/engine-priv.h"
#include "sharing/knobs.h"

#define LET_IN_MAX_US 50000
#define STATS_WAIT_MS 2000 /* an agent's figures (M_STATS), before they stay as they were */

void sh_engine_lock(SpEngine *eng)
{
    g_atomic_int_inc(&eng->lock_wanted);
    g_mutex_lock(&eng->lock);
    g_atomic_int_add(&eng->lock_wanted, -1);
}

bool sh_engine_lock_for_figures(SpEngine *eng)
{
    g_atomic_int_inc(&eng->lock_wanted);
    /* Read once wanted is seen: a batch that ends from here on lets us in
     * at its end, or let_in's bound cut it short (let_in_cut). */
    uint64_t b0 = __atomic_load_n(&eng->batches, __ATOMIC_SEQ_CST);
    uint64_t c0 = __atomic_load_n(&eng->let_in_cut, __ATOMIC_SEQ_CST);
    bool got;
    while (!(got = g_mutex_trylock(&eng->lock)) && !g_atomic_int_get(&eng->slow_exchanges))
        g_usleep(20); /* let_in's pauses are 50 us */
    g_atomic_int_add(&eng->lock_wanted, -1);
    if (got) { /* both stand still while we hold the lock */
        int64_t beyond = (int64_t)(eng->batches - b0) - (int64_t)(eng->let_in_cut - c0);
        if (beyond > (int64_t)__atomic_load_n(&eng->fig_waited, __ATOMIC_RELAXED))
            __atomic_store_n(&eng->fig_waited, (uint64_t)beyond, __ATOMIC_RELAXED);
    }
    return got;
}

void sh_engine_let_in(SpEngine *eng)
{
    if (!g_atomic_int_get(&eng->lock_wanted)) {
        g_mutex_unlock(&eng->lock);
        g_thread_yield();
        g_mutex_lock(&eng->lock);
        return;
    }
    gint64 until = g_get_monotonic_time() + LET_IN_MAX_US;
    do { /* asleep, so that a woken waiter runs and takes it */
        g_mutex_unlock(&eng->lock);
        g_usleep(50);
        g_mutex_lock(&eng->lock);
    } while (g_atomic_int_get(&eng->lock_wanted) && g_get_monotonic_time() < until);
    if (g_atomic_int_get(&eng->lock_wanted))
        __atomic_add_fetch(&eng->let_in_cut, 1, __ATOMIC_SEQ_CST);
}

GQuark sp_engine_error_quark(void)
{
    return g_quark_from_static_string("sp-engine-error-quark");
}

void sp_engine_default_knobs(SpEngineKnobs *k)
{
    /* KSM's defaults, but a larger batch: samepage scans with dirty logs, so a
     * batch of unchanged pages costs almost nothing. */
    *k = (SpEngineKnobs){
        .run = 1,
        .pages_to_scan = 4096,
        .sleep_millisecs = 20,
        .max_page_sharing = 256,
        .use_zero_pages = 1,
        .merge_across_nodes = 1,
        .scan_nice = 0, /* level with the vCPUs: docs/sharing.md says why not ksmd's 5 */
        .advisor_mode = 0,
        .advisor_target_scan_time = 200, /* KSM's advisor defaults */
        .advisor_max_cpu = 70,
        .map_budget = 500, /* one mapping per 2 guest pages: docs/sharing.md, "Mappings" */
        .smart_scan = 1,   /* KSM's default since Linux 6.7 */
    };
}

/* The ranges are sharing/knobs.c's table, which `samepage run` and the
 * daemon's node-memory-tune check against too. */
static bool knobs_check(const SpEngineKnobs *k, GError **error)
{
    return sp_engine_knobs_check(k, error);
}

/* Raise vm.max_map_count so merged pages (up to two mappings each) fit. */
static void engine_raise_map_limit(SpEngine *eng, uint64_t want)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    unsigned long long cur = 65530;
    if (f) {
        if (fscanf(f, "%llu", &cur) != 1)
            cur = 65530;
        fclose(f);
    }
    if (cur < want && geteuid() == 0 && (f = fopen("/proc/sys/vm/max_map_count", "w"))) {
        if (fprintf(f, "%llu\n", (unsigned long long)want) > 0 && fclose(f) == 0) {
            g_message("event=max-map-count from=%llu to=%llu", cur, (unsigned long long)want);
            cur = want;
        }
    }
    eng->max_map_count = cur;
}

/* run != 1: run=2 unmerges everything once, then the thread parks until a
 * knob changes (or quit). */
static void engine_park(SpEngine *eng)
{
    if (eng->knobs.run == 2 && !eng->unmerged) {
        sh_unmerge_all(eng);
        eng->unmerged = true;
        eng->stats.pages_unshared = 0;
        eng->stats.pages_volatile = 0;
        g_cond_broadcast(&eng->cond);
    }
    g_cond_wait(&eng->cond, &eng->lock);
}

/* Between two batches of a scan: sleep_millisecs, or at full speed just
 * let attach/detach and stats readers take the lock.  false: stop the scan
 * (quit, or run changed). */
static bool engine_batch_pause(SpEngine *eng)
{
    if (eng->knobs.advisor_mode == 1)
        return sh_advisor_pause(eng, false);
    if (eng->knobs.sleep_millisecs) {
        gint64 until = g_get_monotonic_time() + eng->knobs.sleep_millisecs * 1000;
        g_cond_wait_until(&eng->cond, &eng->lock, until);
        sh_advisor_nice(eng); /* a knob change wakes us */
    } else {
        sh_engine_let_in(eng);
    }
    return !eng->quit && eng->knobs.run == 1;
}

/* One full scan: every VM's harvest, then every attached VM's pages in
 * batches of pages_to_scan, then the scan's figures.  false if it was cut
 * short (quit, or run changed): no figures then. */
static bool engine_scan_pass(SpEngine *eng)
{
    sh_advisor_pass_begin(eng);
    sh_scan_begin(eng);
    for (uint32_t s = 0; s < eng->nslots; s++) {
        for (;;) {
            SpEngineVm *vm = eng->vm_slots[s]; /* re-read: it may detach while we sleep */
            uint32_t batch =
                eng->knobs.advisor_mode == 1 ? eng->adv.batch : eng->knobs.pages_to_scan;
            if (!vm || vm->broken || vm->hold || !sh_scan_batch(eng, vm, batch))
                break;
            __atomic_add_fetch(&eng->batches, 1, __ATOMIC_SEQ_CST); /* before let_in's look */
            if (!engine_batch_pause(eng))
                return false;
        }
        if (eng->quit || eng->knobs.run != 1)
            return false;
    }
    /* Clone groups' pages that members still map become frames to merge onto;
     * those no VM maps any more go back to the host. */
    sh_swap_gframes_settle(eng); /* group frames back from swap: merges onto them again */
    sh_gframes_index_some(eng, 65536);
    sh_grecs_give_back_some(eng, 65536);
    uint64_t vol = 0;
    for (uint32_t s = 0; s < eng->nslots; s++)
        if (eng->vm_slots[s])
            vol += eng->vm_slots[s]->volatile_now;
    eng->stats.pages_volatile = vol;
    /* the pages smart_scan left out were unique when last examined: KSM
     * takes them out of its unstable tree, and out of pages_unshared; here
     * they stay in it, so that it does not swing with the pass's number */
    eng->stats.pages_unshared = eng->unstable.count + eng->pass_skipped;
    /* metadata a pass's growth left unused goes back (mappers.c, index-map.h) */
    sh_mappers_trim(eng);
    index_map_trim(&eng->stable);
    if (SP_DEBUG_RECOUNT)
        sh_counters_recount(eng); /* debug builds: loud on any mismatch */
    eng->stats.full_scans++;
    sh_publish_stats(eng);
    return true;
}

/* After a full scan: finish retired group records, wake the waiters for
 * the scan, and rest until the next one. */
static void engine_between_scans(SpEngine *eng)
{
    if (eng->grec_dead) { /* finish retired group records without the lock */
        g_mutex_unlock(&eng->lock);
        sh_grecs_reap(eng);
        g_mutex_lock(&eng->lock);
    }
    g_cond_broadcast(&eng->cond);
    if (eng->nslots == 0) {
        g_cond_wait(&eng->cond, &eng->lock);
    } else if (eng->knobs.advisor_mode == 1) {
        sh_advisor_pause(eng, true); /* the pass takes its time */
    } else if (eng->knobs.sleep_millisecs || !eng->scan_work) {
        /* A scan that found nothing written and nothing to hash rests
         * even at full speed: the dirty log says there is no work. */
        uint32_t ms = eng->knobs.sleep_millisecs ? eng->knobs.sleep_millisecs : 2;
        gint64 until = g_get_monotonic_time() + ms * 1000;
        g_cond_wait_until(&eng->cond, &eng->lock, until);
    } else {
        /* Let waiters for the scan we just finished in. */
        sh_engine_let_in(eng);
    }
    eng->scan_work = 0;
}

static gpointer engine_thread(gpointer opaque)
{
    SpEngine *eng = opaque;
    eng->tid = pthread_self();
    __atomic_store_n(&eng->tid_valid, 1, __ATOMIC_RELEASE);
    g_mutex_lock(&eng->lock);
    while (!eng->quit) {
        if (eng->knobs.run != 1)
            engine_park(eng);
        else if (engine_scan_pass(eng))
            engine_between_scans(eng);
    }
    g_mutex_unlock(&eng->lock);
    return NULL;
}

SpEngine *sp_engine_new(const SpEngineKnobs *knobs, GError **error)
{
    SpEngineKnobs k;
    if (!knobs) {
        sp_engine_default_knobs(&k);
        knobs = &k;
    }
    if (!knobs_check(knobs, error))
        return NULL;
    SpEngine *eng = g_new0(SpEngine, 1);
    g_mutex_init(&eng->lock);
    g_mutex_init(&eng->pub_lock);
    g_cond_init(&eng->cond);
    eng->knobs = *knobs;
    eng->pub_knobs = *knobs;
    eng->adv.nice_tried = UINT32_MAX;
    eng->pools = g_ptr_array_new();
    eng->frames = sh_vec_new(sizeof(ShFrame));
    eng->frame_free = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    eng->mappers = sh_maplists_new();
    eng->gmappers = sh_maplists_new();
    eng->gframes = sh_vec_new(sizeof(ShGFrame));
    eng->gframe_free = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    eng->grecs = g_hash_table_new(g_direct_hash, g_direct_equal);
    index_map_init(&eng->stable);
    index_map_init(&eng->unstable);
    eng->domain_ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    eng->domain_parent = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    static const uint8_t zero[SP_PAGE_SIZE];
    XXH64_hash_t h = XXH3_64bits(zero, sizeof(zero));
    eng->zero_hash = (uint32_t)(h ^ (h >> 32));
    engine_raise_map_limit(eng, 65530);
    eng->thread = g_thread_new("sp-engine", engine_thread, eng);
    sh_rmap_register(eng);
    return eng;
}

void sp_engine_free(SpEngine *eng)
{
    if (!eng)
        return;
    sh_rmap_unregister(eng); /* no walk can reach us from here on */
    sh_engine_lock(eng);
    eng->quit = true;
    g_cond_broadcast(&eng->cond);
    g_mutex_unlock(&eng->lock);
    g_thread_join(eng->thread);
    sh_swap_free(eng);
    for (uint32_t s = 0; s < eng->nslots; s++)
        g_warn_if_fail(eng->vm_slots[s] == NULL);
    g_free(eng->vm_slots);
    sh_pools_free(eng);
    sh_vec_free(eng->frames);
    g_array_free(eng->frame_free, TRUE);
    sh_mappers_free(eng);
    sh_grecs_free(eng);
    index_map_destroy(&eng->stable);
    index_map_destroy(&eng->unstable);
    g_hash_table_destroy(eng->domain_ids);
    g_array_free(eng->domain_parent, TRUE);
    g_mutex_clear(&eng->lock);
    g_mutex_clear(&eng->pub_lock);
    g_cond_clear(&eng->cond);
    g_free(eng);
}

/* Knobs the agents apply themselves; eng->lock held. */
static void push_agent_knobs(SpEngine *eng, SpEngineVm *only)
{
    SpProtoKnobs k = {.use_zero_pages = eng->knobs.use_zero_pages,
                      .test_delay_us = eng->test_delay_us,
                      .compact_above = eng->knobs.map_budget * 9 / 10};
    for (uint32_t s = 0; s < eng->nslots; s++) {
        SpEngineVm *vm = eng->vm_slots[s];
        SpProtoMsg r = {0};
        if (vm && !vm->broken && (!only || vm == only) &&
            sh_exchange(eng, vm, SP_PROTO_M_KNOBS, &k, sizeof(k), NULL, 0, &r)) {
            SpProtoReader rd = sp_proto_reader(&r);
            uint32_t tid = 0;
            if (sp_proto_read(&rd, &tid, sizeof(tid)))
                sh_advisor_agent_nice(eng, vm, tid);
        }
        sp_proto_msg_clear(&r);
    }
}

/* eng->lock held: the knobs as sp_engine_get_knobs shows them, into out
 * (if not NULL) and into pub_knobs - kept there from the start and at
 * every change, so that a reader who cannot have the lock gets the
 * operator's knobs as they are (only the advisor's choices may be a
 * little old). */
static void publish_knobs(SpEngine *eng, SpEngineKnobs *out)
{
    SpEngineKnobs k = eng->knobs;
    if (k.advisor_mode == 1 && eng->adv.batch) { /* what the advisor chose */
        k.pages_to_scan = eng->adv.batch;
        k.sleep_millisecs = eng->adv.sleep_ms;
    }
    g_mutex_lock(&eng->pub_lock);
    eng->pub_knobs = k;
    g_mutex_unlock(&eng->pub_lock);
    if (out)
        *out = k;
}

bool sp_engine_set_knobs(SpEngine *eng, const SpEngineKnobs *k, GError **error)
{
    if (!knobs_check(k, error))
        return false;
    sh_engine_lock(eng);
    if (k->merge_across_nodes != eng->knobs.merge_across_nodes) {
        /* KSM's rule: the stable index cannot change its shape while
         * anything is in it (EBUSY); run=2 empties it. */
        if (eng->stats.pages_shared) {
            g_set_error(error, SP_ENGINE_ERROR, SP_ENGINE_ERROR_BUSY,
                        "merge_across_nodes cannot change while pages are shared "
                        "(pages_shared %" G_GUINT64_FORMAT "): Device or resource busy; "
                        "set run=2 first, as with KSM",
                        eng->stats.pages_shared);
            g_mutex_unlock(&eng->lock);
            return false;
        }
        index_map_clear(&eng->unstable); /* its keys say the old shape */
        /* no frame is in use (pages_shared 0): the last pass's count of
         * host-wide frames per node is gone, and with 0 none comes back */
        memset(eng->stats.numa_frames_on, 0, sizeof(eng->stats.numa_frames_on));
    }
    if (k->run != 2)
        eng->unmerged = false;
    bool agent_changed = k->use_zero_pages != eng->knobs.use_zero_pages ||
                         k->scan_nice != eng->knobs.scan_nice ||
                         k->map_budget != eng->knobs.map_budget;
    SpEngineKnobs was = eng->knobs;
    eng->knobs = *k;
    if (was.advisor_mode == 1 && k->advisor_mode == 1) {
        /* The advisor's choices, read back by the caller, are not the
         * operator's: those stay as they were (advisor.c). */
        eng->knobs.pages_to_scan = was.pages_to_scan;
        eng->knobs.sleep_millisecs = was.sleep_millisecs;
    }
    if (agent_changed)
        push_agent_knobs(eng, NULL);
    publish_knobs(eng, NULL);
    g_cond_broadcast(&eng->cond);
    g_mutex_unlock(&eng->lock);
    return true;
}

void sp_engine_get_knobs_set(SpEngine *eng, SpEngineKnobs *k)
{
    sh_engine_lock(eng);
    *k = eng->knobs;
    g_mutex_unlock(&eng->lock);
}

void sp_engine_get_knobs(SpEngine *eng, SpEngineKnobs *k)
{
    if (!sh_engine_lock_for_figures(eng)) {
        g_mutex_lock(&eng->pub_lock);
        *k = eng->pub_knobs;
        g_mutex_unlock(&eng->pub_lock);
        return;
    }
    publish_knobs(eng, k);
    g_mutex_unlock(&eng->lock);
}

/* --- sharing domains: union-find over domain ids --- */

static uint32_t domain_id(SpEngine *eng, const char *name)
{
    gpointer v = g_hash_table_lookup(eng->domain_ids, name);
    if (v)
        return GPOINTER_TO_UINT(v) - 1;
    uint32_t id = eng->domain_parent->len;
    g_array_append_val(eng->domain_parent, id);
    g_hash_table_insert(eng->domain_ids, g_strdup(name), GUINT_TO_POINTER(id + 1));
    return id;
}

static uint32_t domain_find(SpEngine *eng, uint32_t id)
{
    uint32_t *p = (uint32_t *)eng->domain_parent->data;
    while (p[id] != id) {
        p[id] = p[p[id]];
        id = p[id];
    }
    return id;
}

void sp_engine_allow_domains(SpEngine *eng, const char *a, const char *b)
{
    sh_engine_lock(eng);
    uint32_t ra = domain_find(eng, domain_id(eng, a)), rb = domain_find(eng, domain_id(eng, b));
    if (ra != rb)
        g_array_index(eng->domain_parent, uint32_t, MAX(ra, rb)) = MIN(ra, rb);
    for (uint32_t s = 0; s < eng->nslots; s++)
        if (eng->vm_slots[s])
            eng->vm_slots[s]->group = domain_find(eng, domain_id(eng, eng->vm_slots[s]->domain));
    g_mutex_unlock(&eng->lock);
}

/* --- VMs --- */

static void shvm_free(SpEngineVm *vm)
{
    if (vm->agent_stat_fd >= 0)
        close(vm->agent_stat_fd);
    g_free(vm->fid_of);
    g_free(vm->map_refused);
    if (vm->spaces)
        g_array_free(vm->spaces, TRUE);
    g_free(vm->name);
    g_free(vm->domain);
    g_free(vm);
}

/* eng->lock held: a free slot for vm, or false. */
static bool slot_take(SpEngine *eng, SpEngineVm *vm)
{
    uint32_t s = 0;
    while (s < eng->nslots && eng->vm_slots[s])
        s++;
    if (s == eng->nslots) {
        if (eng->nslots == MAX_VM_SLOTS)
            return false;
        eng->vm_slots = g_renew(SpEngineVm *, eng->vm_slots, eng->nslots + 1);
        eng->nslots++;
    }
    vm->slot_index = s;
    eng->vm_slots[s] = vm;
    return true;
}

/* eng->lock held: a new VM starts over (M_ATTACH): its pool is space 0. */
static bool attach_fresh(SpEngine *eng, SpEngineVm *vm, GError **error)
{
    uint32_t pool = sh_pool_for(eng, vm->group, -1);
    if (pool == NO_SPACE) {
        g_set_error(error, SP_ENGINE_ERROR, SP_ENGINE_ERROR_NO_MEMORY, "no frame pool for VM '%s'",
                    vm->name);
        return false;
    }
    ShPool *p = g_ptr_array_index(eng->pools, pool);
    g_autofree char *path = g_strdup_printf("/proc/self/fd/%d", p->fp.fd);
    int ro = open(path, O_RDONLY | O_CLOEXEC);
    SpProtoAttach at = {.share_start = vm->first * SP_PAGE_SIZE,
                        .share_end = vm->end * SP_PAGE_SIZE,
                        .pool_space = 0,
                        .max_map_count = (uint32_t)MIN(eng->max_map_count, UINT32_MAX)};
    if (vm->first == 0 && vm->end == vm->npages)
        at.share_start = at.share_end = 0;
    SpProtoMsg r = {0};
    bool ok = ro >= 0 && sh_exchange(eng, vm, SP_PROTO_M_ATTACH, &at, sizeof(at), &ro, 1, &r);
    if (ro >= 0)
        close(ro);
    if (!ok) {
        g_set_error(error, SP_ENGINE_ERROR, SP_ENGINE_ERROR_NO_MEMORY,
                    "VM '%s' did not take part in sharing (see the log)", vm->name);
        return false;
    }
    sp_proto_msg_clear(&r);
    ShSpace sp = {.pool = pool};
    g_array_set_size(vm->spaces, 0);
    g_array_append_val(vm->spaces, sp);
    return true;
}

SpEngineVm *sp_engine_attach(SpEngine *eng, const SpEngineVmDesc *d, GError **error)
{
    SpEngineVm *vm = g_new0(SpEngineVm, 1);
    vm->agent_stat_fd = -1;
    vm->eng = eng;
    vm->id = d->id;
    vm->name = g_strdup(d->name);
    vm->domain = g_strdup(d->domain ? d->domain : d->name);
    vm->channel = d->channel;
    vm->pid = d->pid;
    vm->ram_base = d->ram_base;
    vm->rmap = d->rmap;
    vm->npages = d->npages;
    vm->first = d->share_end ? MIN(d->share_start / SP_PAGE_SIZE, vm->npages) : 0;
    vm->end = d->share_end ? MIN(d->share_end / SP_PAGE_SIZE, vm->npages) : vm->npages;
    vm->spaces = g_array_new(FALSE, FALSE, sizeof(ShSpace));
    vm->fid_of = g_try_new(uint32_t, vm->npages);
    if (!vm->fid_of) {
        g_set_error(error, SP_ENGINE_ERROR, SP_ENGINE_ERROR_NO_MEMORY,
                    "not enough memory for the sharing metadata of VM '%s'", d->name);
        shvm_free(vm);
        return NULL;
    }
    memset(vm->fid_of, 0xff, vm->npages * sizeof(uint32_t));
    if (vm->rmap)
        sh_grecs_prepare(eng, vm->rmap); /* its clone groups' pages become frames */
    sh_engine_lock(eng);
    if (!slot_take(eng, vm)) {
        g_mutex_unlock(&eng->lock);
        g_set_error(error, SP_ENGINE_ERROR, SP_ENGINE_ERROR_TOO_MANY_VMS,
                    "too many VMs for one engine");
        shvm_free(vm);
        return NULL;
    }
    vm->group = domain_find(eng, domain_id(eng, vm->domain));
    sh_cand_fit(eng, vm);
    /* Two mappings per page at worst, in the VM's own process. */
    uint64_t want = 65530 + 2 * vm->npages;
    if (want > eng->max_map_count)
        engine_raise_map_limit(eng, want);
    if (d->reattach) {
        sh_swap_store_handover(eng, vm); /* before its frames are read (swap-adopt.c) */
        eng->layers_unsure = true;       /* until every VM is back: group-giveback.c */
    }
    bool ok = d->reattach ? sh_vm_resync(eng, vm, true) : attach_fresh(eng, vm, error);
    if (ok) {
        push_agent_knobs(eng, vm);
        sh_swap_vm_attach(eng, vm);
    }
    if (!ok) {
        if (d->reattach)
            g_set_error(error, SP_ENGINE_ERROR, SP_ENGINE_ERROR_NO_MEMORY,
                        "VM '%s': its merges could not be read back", vm->name);
        /* Keep what a re-attach adopted until the VM goes (it maps it). */
        vm->broken = true;
    }
    g_cond_broadcast(&eng->cond);
    g_mutex_unlock(&eng->lock);
    if (!ok && !d->reattach) {
        sp_engine_detach(eng, vm);
        return NULL;
    }
    return vm;
}

/* Take vm out of the engine: its references are put (frames whose last
 * mapper it was are freed), or with keep_frames only forgotten. */
static void vm_remove(SpEngine *eng, SpEngineVm *vm, bool keep_frames)
{
    sh_engine_lock(eng);
    while (vm->hold)
        g_cond_wait(&eng->cond, &eng->lock);
    sh_swap_vm_detach(eng, vm, keep_frames);
    if (keep_frames) /* it goes on mapping its clone groups' files, unseen */
        eng->layers_unsure = eng->vm_let_go = true;
    /* Let go, the VM process goes on mapping its frames: from now on no
     * frame of its pools may be punched out when the index's last
     * reference goes (other VMs' copy-on-write breaks until the engine
     * stops); the next supervisor's re-attach sorts them out. */
    for (guint i = 0; keep_frames && i < vm->spaces->len; i++) {
        uint32_t pool = g_array_index(vm->spaces, ShSpace, i).pool;
        if (pool != NO_SPACE)
            ((ShPool *)g_ptr_array_index(eng->pools, pool))->adopted = true;
    }
    for (uint64_t g = 0; g < vm->npages; g++) {
        if (vm->fid_of[g] == NO_FRAME)
            continue;
        if (keep_frames)
            sh_page_forget(eng, vm, g);
        else
            sh_page_clear_merged(eng, vm, g);
    }
    sh_vm_set_zero(eng, vm, 0);
    sh_advisor_vm_gone(eng, vm);
    eng->vm_slots[vm->slot_index] = NULL;
    if (!keep_frames)
        sh_grecs_collect(eng); /* groups it was the last attached member of */
    g_mutex_unlock(&eng->lock);
    sh_grecs_reap(eng);
    shvm_free(vm);
}

void sp_engine_detach(SpEngine *eng, SpEngineVm *vm)
{
    if (vm)
        vm_remove(eng, vm, false);
}

void sp_engine_forget(SpEngine *eng, SpEngineVm *vm)
{
    if (vm)
        vm_remove(eng, vm, true); /* the VM goes on mapping its frames */
}

void sp_engine_vm_going(SpEngine *eng, SpEngineVm *vm)
{
    (void)eng;
    /* Without the lock: the engine may be waiting on this VM's channel (up
     * to 30 s when its process does not answer); the kill ends that wait,
     * and exchange.c takes the closed channel quietly. */
    __atomic_store_n(&vm->going, true, __ATOMIC_RELEASE);
}

void sp_engine_set_range(SpEngine *eng, SpEngineVm *vm, uint64_t start, uint64_t end)
{
    if (!vm)
        return;
    sh_engine_lock(eng);
    vm->first = MIN(start / SP_PAGE_SIZE, vm->npages);
    vm->end = end ? MIN((end + SP_PAGE_SIZE - 1) / SP_PAGE_SIZE, vm->npages) : vm->npages;
    g_mutex_unlock(&eng->lock);
}

void sp_engine_set_test_delay(SpEngine *eng, uint32_t us)
{
    sh_engine_lock(eng);
    eng->test_delay_us = us;
    push_agent_knobs(eng, NULL);
    g_mutex_unlock(&eng->lock);
}

const void *sp_engine_frame_ptr(SpEngine *eng, const SpFrameRef *f)
{
    const void *ptr = NULL;
    sh_engine_lock(eng);
    if (f->kind == SP_FRAME_POOL && f->pool == eng && f->index < eng->frames->len) {
        const ShFrame *fr = &sh_vec_index(eng->frames, ShFrame, f->index);
        if (fr->refs && fr->pool < eng->pools->len && !sh_swap_frame_is_out(eng, f->index))
            ptr = sp_frame_pool_ptr(&((ShPool *)eng->pools->pdata[fr->pool])->fp, fr->off);
    }
    g_mutex_unlock(&eng->lock);
    return ptr;
}

void sp_engine_layers_hold(SpEngine *eng, bool hold)
{
    sh_engine_lock(eng); /* an eviction or a giveback under way ends first */
    if (hold) {
        eng->layer_holds++;
        sh_swap_layers_hold(eng);
    } else {
        g_assert(eng->layer_holds > 0);
        eng->layer_holds--;
    }
    g_mutex_unlock(&eng->lock);
}

void sp_engine_vm_hold(SpEngine *eng, SpEngineVm *vm)
{
    sh_engine_lock(eng);
    vm->hold++;
    eng->holds++;
    g_mutex_unlock(&eng->lock);
}

void sp_engine_vm_resync(SpEngine *eng, SpEngineVm *vm)
{
    sh_engine_lock(eng);
    if (!vm->broken)
        sh_vm_resync(eng, vm, false);
    g_mutex_unlock(&eng->lock);
}

void sp_engine_vm_release(SpEngine *eng, SpEngineVm *vm)
{
    sh_engine_lock(eng);
    vm->hold--;
    eng->holds--;
    g_cond_broadcast(&eng->cond);
    g_mutex_unlock(&eng->lock);
}

bool sp_engine_vm_sync(SpEngine *eng, SpEngineVm *vm, GError **error)
{
    sh_engine_lock(eng);
    SpProtoMsg r = {0};
    bool ok = !vm->broken && sh_exchange(eng, vm, SP_PROTO_M_SYNC, NULL, 0, NULL, 0, &r) &&
              sh_apply_released(eng, vm, &r);
    sp_proto_msg_clear(&r);
    g_mutex_unlock(&eng->lock);
    if (!ok)
        g_set_error(error, SP_ENGINE_ERROR, SP_ENGINE_ERROR_NO_MEMORY,
                    "VM '%s': no sync through its memory channel", vm->name);
    return ok;
}

void sp_engine_reattach_done(SpEngine *eng, bool all_attached)
{
    sh_engine_lock(eng);
    if (all_attached && !eng->vm_let_go)
        eng->layers_unsure = false; /* group-giveback.c */
    if (all_attached)
        sh_pools_release_unused(eng);
    else
        g_message("event=reattach-incomplete (frames no re-attached VM maps are kept: a VM "
                  "that could not be re-attached may map them)");
    sh_swap_adopt_done(eng, all_attached);
    g_mutex_unlock(&eng->lock);
}

/* The engine's own memory, part by part (SpEngineStats): frames and their
 * mapper lists, the pools' offset tables, the two index tables, and per VM
 * its frame ids, the budget's refused bits and its agent's tables. */
static void engine_metadata(SpEngine *eng, SpEngineStats *out)
{
    out->metadata_frames_bytes = sh_vec_bytes(eng->frames) + sh_gframes_bytes(eng);
    for (guint p = 0; p < eng->pools->len; p++)
        out->metadata_frames_bytes += sh_vec_bytes(((ShPool *)eng->pools->pdata[p])->fid_of_off);
    out->metadata_mappers_bytes =
        sh_maplists_bytes(eng->mappers) + sh_maplists_bytes(eng->gmappers);
    out->metadata_stable_bytes = index_map_bytes(&eng->stable);
    out->metadata_unstable_bytes = index_map_bytes(&eng->unstable);
    out->metadata_frame_ids_bytes = 0;
    out->metadata_vm_bytes = 0;
    for (uint32_t s = 0; s < eng->nslots; s++) {
        SpEngineVm *vm = eng->vm_slots[s];
        if (!vm)
            continue;
        out->metadata_frame_ids_bytes +=
            vm->npages * sizeof(uint32_t) + (vm->map_refused ? (vm->npages + 63) / 64 * 8 : 0);
        out->metadata_vm_bytes += vm->agent.metadata_bytes;
    }
    out->metadata_bytes = out->metadata_vm_bytes + out->metadata_frame_ids_bytes +
                          out->metadata_frames_bytes + out->metadata_mappers_bytes +
                          out->metadata_stable_bytes + out->metadata_unstable_bytes;
}

/* eng->lock held: ask the agent for its figures (a round trip). */
void sh_vm_refresh_stats(SpEngine *eng, SpEngineVm *vm)
{
    SpProtoMsg r = {0};
    if (vm->broken || vm->hold || !sh_exchange_soft(eng, vm, SP_PROTO_M_STATS, STATS_WAIT_MS, &r))
        return;
    SpProtoReader rd = sp_proto_reader(&r);
    SpProtoVmStats st;
    SpProtoVmStatsMore more = {0};
    if (sp_proto_read(&rd, &st, sizeof(st))) {
        vm->agent = st;
        vm->agent_us = g_get_monotonic_time();
        /* an older VM process sends a shorter second part: the rest stays 0 */
        if (rd.left && sp_proto_read(&rd, &more, MIN((size_t)rd.left, sizeof(more))))
            vm->agent_more = more;
    }
    sp_proto_msg_clear(&r);
}

/* eng->lock held: the node-wide figures (no exchange with any VM). */
static void engine_figures(SpEngine *eng, SpEngineStats *out)
{
    *out = eng->stats;
    engine_metadata(eng, out);
    out->pool_frames = sh_pools_in_use(eng);
    out->saved_bytes = (out->pages_sharing + out->zero_pages) * SP_PAGE_SIZE;
    out->general_profit = (int64_t)out->saved_bytes - (int64_t)out->metadata_bytes;
}

/* eng->lock held, at the end of every pass: the figures a reader gets when
 * the lock is not to be had (sp_engine_get_stats) are never older than the
 * last pass, even if nobody read them since (they were zeros until the
 * first read).  The merge-window counters are a reader's (tests): kept. */
void sh_publish_stats(SpEngine *eng)
{
    SpEngineStats s;
    engine_figures(eng, &s);
    g_mutex_lock(&eng->pub_lock);
    s.wp_faults_seen = MAX(s.wp_faults_seen, eng->pub_stats.wp_faults_seen);
    s.evict_wp_faults_seen = MAX(s.evict_wp_faults_seen, eng->pub_stats.evict_wp_faults_seen);
    eng->pub_stats = s;
    g_mutex_unlock(&eng->pub_lock);
}

void sp_engine_get_stats(SpEngine *eng, SpEngineStats *out)
{
    if (!sh_engine_lock_for_figures(eng)) {
        g_mutex_lock(&eng->pub_lock);
        *out = eng->pub_stats;
        g_mutex_unlock(&eng->pub_lock);
        return;
    }
    engine_figures(eng, out);
    /* Writes caught in a merge window happen in the VM processes (tests). */
    for (uint32_t s = 0; eng->test_delay_us && s < eng->nslots; s++)
        if (eng->vm_slots[s]) {
            sh_vm_refresh_stats(eng, eng->vm_slots[s]);
            out->wp_faults_seen += eng->vm_slots[s]->agent.wp_faults_seen;
            out->evict_wp_faults_seen += eng->vm_slots[s]->agent.evict_wp_faults_seen;
        }
    g_mutex_lock(&eng->pub_lock);
    eng->pub_stats = *out;
    g_mutex_unlock(&eng->pub_lock);
    g_mutex_unlock(&eng->lock);
}

void sp_engine_get_vm_stats(SpEngine *eng, SpEngineVm *vm, SpEngineVmStats *out)
{
    sp_engine_get_vm_stats_aged(eng, vm, 0, out);
}

void sp_engine_get_vm_stats_aged(SpEngine *eng, SpEngineVm *vm, double max_age_s,
                                 SpEngineVmStats *out)
{
    memset(out, 0, sizeof(*out));
    if (!vm)
        return;
    if (!sh_engine_lock_for_figures(eng)) {
        g_mutex_lock(&eng->pub_lock);
        *out = vm->pub;
        g_mutex_unlock(&eng->pub_lock);
        return;
    }
    if (max_age_s <= 0 || !vm->agent_us ||
        g_get_monotonic_time() - vm->agent_us > (gint64)(max_age_s * 1e6))
        sh_vm_refresh_stats(eng, vm);
    out->merged_pages = vm->merged;
    out->zero_pages = vm->zero;
    out->private_pages = vm->agent.private_pages;
    out->volatile_pages = vm->volatile_now;
    out->mappings = vm->agent.mappings;
    out->merges = vm->agent.merges;
    out->merge_maps = vm->agent_more.merge_maps;
    out->compactions = vm->agent_more.compactions;
    out->compacted_pages = vm->agent_more.compacted_pages;
    out->compact_wp_faults = vm->agent_more.compact_wp_faults;
    out->map_skipped = vm->map_skipped;
    out->profit_bytes = (int64_t)((vm->merged + vm->zero) * SP_PAGE_SIZE) -
                        (int64_t)(vm->agent.metadata_bytes + vm->npages * sizeof(uint32_t));
    out->rss_pages = vm->agent.resident_pages - MIN(vm->agent.resident_pages, vm->merged);
    out->swapped_pages = vm->agent.swapped_pages;
    out->swap_outs = vm->agent.swap_outs;
    out->swap_ins = vm->agent.swap_ins;
    out->swap_in_p50_us = vm->agent.swap_in_p50_us;
    out->swap_in_p99_us = vm->agent.swap_in_p99_us;
    out->swap_blocked_ns = vm->agent.swap_blocked_ns;
    sh_swap_vm_figures(eng, vm, out);
    g_mutex_lock(&eng->pub_lock);
    vm->pub = *out;
    g_mutex_unlock(&eng->pub_lock);
    g_mutex_unlock(&eng->lock);
}

uint64_t sp_engine_batches(SpEngine *eng)
{
    return __atomic_load_n(&eng->batches, __ATOMIC_ACQUIRE);
}

void sp_engine_handover(SpEngine *eng, uint64_t *figures_waited, uint64_t *let_in_cut)
{
    *figures_waited = __atomic_load_n(&eng->fig_waited, __ATOMIC_RELAXED);
    *let_in_cut = __atomic_load_n(&eng->let_in_cut, __ATOMIC_ACQUIRE);
}

uint64_t sp_engine_cpu_ns(SpEngine *eng)
{
    clockid_t cid;
    struct timespec ts;
    if (!__atomic_load_n(&eng->tid_valid, __ATOMIC_ACQUIRE) ||
        pthread_getcpuclockid(eng->tid, &cid) != 0 || clock_gettime(cid, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

bool sp_engine_wait_scans(SpEngine *eng, uint64_t n, double timeout_s)
{
    gint64 until = g_get_monotonic_time() + (gint64)(timeout_s * 1e6);
    sh_engine_lock(eng);
    uint64_t target = eng->stats.full_scans + n;
    while (eng->stats.full_scans < target) {
        if (!g_cond_wait_until(&eng->cond, &eng->lock, until))
            break;
    }
    bool ok = eng->stats.full_scans >= target;
    g_mutex_unlock(&eng->lock);
    return ok;
}
