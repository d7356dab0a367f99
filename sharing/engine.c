/* SPDX-License-Identifier: MIT */
/*
 * engine.c - the engine object: knobs, VMs, the scanner thread, statistics.
 *
 * The scanner thread loops over full scans.  Each scan harvests the dirty
 * logs (scan.c), then walks every attached VM's pages in batches of
 * pages_to_scan, dropping the engine lock and sleeping sleep_millisecs
 * between batches (0 = no pause: full speed).  run=0 parks the thread;
 * run=2 unmerges every page once (merge.c) and then parks it.  Builds
 * configured with --enable-debug-recount recount every counter after each
 * full scan (counters.c).
 *
 * Locking: eng->lock guards the engine's state (engine-priv.h) and is never
 * held while calling into the VMM; the lock order with the reverse map's
 * rmap_lock is in rmap/rmap.h ("Locking").
 *
 * Metadata: 12 bytes per guest page (state word + hash) plus 16 bytes per
 * frame and the index tables; reported as metadata_bytes.
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

#define POOL_RESERVE (1ULL << 40) /* address space for frames: 1 TiB */

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
    if (eng->knobs.sleep_millisecs) {
        gint64 until = g_get_monotonic_time() + eng->knobs.sleep_millisecs * 1000;
        g_cond_wait_until(&eng->cond, &eng->lock, until);
    } else {
        g_mutex_unlock(&eng->lock);
        g_thread_yield();
        g_mutex_lock(&eng->lock);
    }
    return !eng->quit && eng->knobs.run == 1;
}

/* One full scan: harvest the dirty logs, then every attached VM's pages in
 * batches of pages_to_scan, then the scan's figures.  false if it was cut
 * short (quit, or run changed): no figures then. */
static bool engine_scan_pass(SpEngine *eng)
{
    sh_scan_begin(eng);
    uint32_t budget = eng->knobs.pages_to_scan;
    for (uint32_t s = 0; s < eng->nslots; s++) {
        for (uint64_t g = 0;; g++) {
            SpEngineVm *vm = eng->vm_slots[s]; /* re-read: it may detach while we sleep */
            if (!vm || g < vm->first)
                g = vm ? vm->first : 0;
            if (!vm || g >= vm->end)
                break;
            sh_scan_page(eng, vm, g);
            if (--budget == 0) {
                budget = eng->knobs.pages_to_scan;
                if (!engine_batch_pause(eng))
                    return false;
            }
        }
    }
    uint64_t vol = 0;
    for (uint32_t s = 0; s < eng->nslots; s++)
        if (eng->vm_slots[s])
            vol += eng->vm_slots[s]->volatile_now;
    eng->stats.pages_volatile = vol;
    eng->stats.pages_unshared = eng->unstable.count;
    if (SP_DEBUG_RECOUNT)
        sh_counters_recount(eng); /* debug builds: loud on any mismatch */
    eng->stats.full_scans++;
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
    } else if (eng->knobs.sleep_millisecs || !eng->scan_work) {
        /* A scan that found nothing written and nothing to hash rests
         * even at full speed: the dirty log says there is no work. */
        uint32_t ms = eng->knobs.sleep_millisecs ? eng->knobs.sleep_millisecs : 2;
        gint64 until = g_get_monotonic_time() + ms * 1000;
        g_cond_wait_until(&eng->cond, &eng->lock, until);
    } else {
        /* Let waiters for the scan we just finished in. */
        g_mutex_unlock(&eng->lock);
        g_thread_yield();
        g_mutex_lock(&eng->lock);
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
    g_cond_init(&eng->cond);
    eng->knobs = *knobs;
    if (!sp_frame_pool_init(&eng->pool, 0, POOL_RESERVE, error)) {
        g_free(eng);
        return NULL;
    }
    eng->frames = g_array_new(FALSE, TRUE, sizeof(ShFrame));
    eng->mappers = g_ptr_array_new();
    eng->gmappers = g_ptr_array_new();
    eng->gframes = g_array_new(FALSE, TRUE, sizeof(ShGFrame));
    eng->gframe_free = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    eng->grecs = g_hash_table_new(g_direct_hash, g_direct_equal);
    u64map_init(&eng->stable);
    u64map_init(&eng->unstable);
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
    g_mutex_lock(&eng->lock);
    eng->quit = true;
    g_cond_broadcast(&eng->cond);
    g_mutex_unlock(&eng->lock);
    g_thread_join(eng->thread);
    for (uint32_t s = 0; s < eng->nslots; s++)
        g_warn_if_fail(eng->vm_slots[s] == NULL);
    g_free(eng->vm_slots);
    sp_frame_pool_destroy(&eng->pool);
    g_array_free(eng->frames, TRUE);
    sh_mappers_free(eng);
    sh_grecs_free(eng);
    u64map_destroy(&eng->stable);
    u64map_destroy(&eng->unstable);
    g_hash_table_destroy(eng->domain_ids);
    g_array_free(eng->domain_parent, TRUE);
    g_mutex_clear(&eng->lock);
    g_cond_clear(&eng->cond);
    g_free(eng);
}

bool sp_engine_set_knobs(SpEngine *eng, const SpEngineKnobs *k, GError **error)
{
    if (!knobs_check(k, error))
        return false;
    g_mutex_lock(&eng->lock);
    if (k->run != 2)
        eng->unmerged = false;
    eng->knobs = *k;
    g_cond_broadcast(&eng->cond);
    g_mutex_unlock(&eng->lock);
    return true;
}

void sp_engine_get_knobs(SpEngine *eng, SpEngineKnobs *k)
{
    g_mutex_lock(&eng->lock);
    *k = eng->knobs;
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
    g_mutex_lock(&eng->lock);
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
    if (vm->pagemap_fd >= 0)
        close(vm->pagemap_fd);
    g_free(vm->page);
    g_free(vm->hash);
    g_free(vm->dirty);
    g_free(vm->vmm_dirty);
    g_free(vm->name);
    g_free(vm->domain);
    g_free(vm);
}

/* Initial states of a clone's pages from /proc/self/pagemap: a private
 * page (present, not a file page) is touched and leaves its group for the
 * reverse map; a page of the group file is left alone. */
static bool attach_clone_pages(SpEngineVm *vm)
{
    const uint64_t chunk = 1ULL << 16;
    g_autofree uint64_t *ent = g_new(uint64_t, chunk);
    for (uint64_t g = 0; g < vm->npages; g += chunk) {
        uint64_t n = MIN(chunk, vm->npages - g);
        off_t off = (off_t)(((uintptr_t)vm->mem->host / SP_PAGE_SIZE + g) * 8);
        if (vm->pagemap_fd < 0 || pread(vm->pagemap_fd, ent, n * 8, off) != (ssize_t)(n * 8))
            return false;
        for (uint64_t i = 0; i < n; i++)
            if ((ent[i] >> 63) && !((ent[i] >> 61) & 1)) {
                vm->page[g + i] |= PG_VOLATILE;
                sh_page_touch(vm, g + i);
                sp_rmap_vm_note_off(vm->rmap, g + i);
            }
    }
    return true;
}

SpEngineVm *sp_engine_attach(SpEngine *eng, const SpEngineVmDesc *d, GError **error)
{
    g_autofree unsigned char *vec = NULL;
    SpEngineVm *vm = g_new0(SpEngineVm, 1);
    vm->pagemap_fd = -1;
    vm->eng = eng;
    vm->id = d->id;
    vm->name = g_strdup(d->name);
    vm->domain = g_strdup(d->domain ? d->domain : d->name);
    vm->mem = d->mem;
    vm->kvm_fd = d->kvm_vm_fd;
    vm->file_backed = d->file_backed;
    vm->rmap = d->rmap;
    vm->slot = d->slot;
    vm->npages = d->mem->size / SP_PAGE_SIZE;
    vm->first = d->share_end ? d->share_start / SP_PAGE_SIZE : 0;
    vm->end = d->share_end ? MIN(d->share_end / SP_PAGE_SIZE, vm->npages) : vm->npages;
    uint64_t words = (vm->npages + 63) / 64;
    vm->page = g_try_new0(uint64_t, vm->npages);
    vm->hash = g_try_new0(uint32_t, vm->npages);
    vm->dirty = g_try_new0(uint64_t, words);
    vm->vmm_dirty = g_try_new0(uint64_t, words);
    if (!vm->page || !vm->hash || !vm->dirty || !vm->vmm_dirty) {
        g_set_error(error, SP_ENGINE_ERROR, SP_ENGINE_ERROR_NO_MEMORY,
                    "not enough memory for the sharing metadata of VM '%s'", d->name);
        goto fail;
    }
    vm->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    /* Pages already in memory (the loader's, or written before attach) are
     * touched - except, in a clone, pages that still map their clone group:
     * they are shared already, and only a write (seen in the dirty log)
     * makes them candidates, like any page. */
    if (vm->rmap && vm->file_backed && !attach_clone_pages(vm)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "VM '%s': cannot read /proc/self/pagemap",
                    d->name);
        goto fail;
    }
    vec = vm->file_backed && vm->rmap ? NULL : g_try_malloc(MIN(vm->npages, 1ULL << 20));
    for (uint64_t g = 0; vec && g < vm->npages; g += 1ULL << 20) {
        uint64_t n = MIN(vm->npages - g, 1ULL << 20);
        if (mincore(d->mem->host + g * SP_PAGE_SIZE, n * SP_PAGE_SIZE, vec) < 0)
            break;
        for (uint64_t i = 0; i < n; i++)
            if (vec[i] & 1) {
                vm->page[g + i] |= PG_VOLATILE;
                sh_page_touch(vm, g + i);
            }
    }
    g_mutex_lock(&eng->lock);
    uint32_t s = 0;
    while (s < eng->nslots && eng->vm_slots[s])
        s++;
    if (s == eng->nslots) {
        if (eng->nslots == MAX_VM_SLOTS) {
            g_mutex_unlock(&eng->lock);
            g_set_error(error, SP_ENGINE_ERROR, SP_ENGINE_ERROR_TOO_MANY_VMS,
                        "too many VMs for one engine");
            goto fail;
        }
        eng->vm_slots = g_renew(SpEngineVm *, eng->vm_slots, eng->nslots + 1);
        eng->nslots++;
    }
    vm->slot_index = s;
    vm->group = domain_find(eng, domain_id(eng, vm->domain));
    eng->vm_slots[s] = vm;
    /* Two mappings per page at worst, for every attached VM. */
    uint64_t want = 65530;
    for (uint32_t i = 0; i < eng->nslots; i++)
        if (eng->vm_slots[i])
            want += 2 * eng->vm_slots[i]->npages;
    if (want > eng->max_map_count)
        engine_raise_map_limit(eng, want);
    g_cond_broadcast(&eng->cond);
    g_mutex_unlock(&eng->lock);
    sh_grecs_prepare(eng, vm); /* its clone groups' pages become frames */
    return vm;
fail:
    shvm_free(vm);
    return NULL;
}

void sp_engine_detach(SpEngine *eng, SpEngineVm *vm)
{
    if (!vm)
        return;
    g_mutex_lock(&eng->lock);
    for (uint64_t g = 0; g < vm->npages; g++) {
        if (PG_KIND(vm->page[g]) == PG_MERGED)
            sh_page_clear_merged(eng, vm, g);
        else if (PG_KIND(vm->page[g]) == PG_ZERO)
            sh_page_clear_zero(eng, vm, g);
    }
    eng->vm_slots[vm->slot_index] = NULL;
    sh_grecs_collect(eng); /* groups it was the last attached member of */
    g_mutex_unlock(&eng->lock);
    sh_grecs_reap(eng);
    shvm_free(vm);
}

void sp_engine_set_range(SpEngine *eng, SpEngineVm *vm, uint64_t start, uint64_t end)
{
    if (!vm)
        return;
    g_mutex_lock(&eng->lock);
    vm->first = MIN(start / SP_PAGE_SIZE, vm->npages);
    vm->end = end ? MIN((end + SP_PAGE_SIZE - 1) / SP_PAGE_SIZE, vm->npages) : vm->npages;
    g_mutex_unlock(&eng->lock);
}

void sp_engine_set_test_delay(SpEngine *eng, uint32_t us)
{
    g_mutex_lock(&eng->lock);
    eng->test_delay_us = us;
    g_mutex_unlock(&eng->lock);
}

void sp_engine_mark_dirty(SpEngineVm *vm, uint64_t gpa, uint64_t len)
{
    if (!vm || !len)
        return;
    uint64_t first = gpa / SP_PAGE_SIZE, last = (gpa + len - 1) / SP_PAGE_SIZE;
    for (uint64_t g = first; g <= last && g < vm->npages; g++)
        __atomic_fetch_or(&vm->vmm_dirty[g / 64], 1ULL << (g % 64), __ATOMIC_RELEASE);
}

static uint64_t engine_metadata(SpEngine *eng)
{
    uint64_t b = eng->frames->len * sizeof(ShFrame) + sh_gframes_bytes(eng) +
                 u64map_bytes(&eng->stable) + u64map_bytes(&eng->unstable);
    for (uint32_t s = 0; s < eng->nslots; s++)
        if (eng->vm_slots[s])
            b += eng->vm_slots[s]->npages * (sizeof(uint64_t) + sizeof(uint32_t)) +
                 (eng->vm_slots[s]->npages + 63) / 64 * 16;
    return b;
}

void sp_engine_get_stats(SpEngine *eng, SpEngineStats *out)
{
    g_mutex_lock(&eng->lock);
    *out = eng->stats;
    out->metadata_bytes = engine_metadata(eng);
    out->pool_frames = eng->pool.in_use;
    out->saved_bytes = (out->pages_sharing + out->zero_pages) * SP_PAGE_SIZE;
    out->general_profit = (int64_t)out->saved_bytes - (int64_t)out->metadata_bytes;
    g_mutex_unlock(&eng->lock);
}

void sp_engine_get_vm_stats(SpEngine *eng, SpEngineVm *vm, SpEngineVmStats *out)
{
    memset(out, 0, sizeof(*out));
    if (!vm)
        return;
    uint64_t resident = sp_guest_mem_resident_pages(vm->mem); /* mincore: not under the lock */
    g_mutex_lock(&eng->lock);
    out->merged_pages = vm->merged;
    out->zero_pages = vm->zero;
    out->private_pages = vm->touched - MIN(vm->touched, vm->merged + vm->zero);
    out->volatile_pages = vm->volatile_now;
    /* Mappings: a new one starts wherever the kind of mapping changes or
     * file-backed pages stop mapping consecutive frames. */
    uint64_t maps = 1;
    for (uint64_t g = 1; g < vm->npages; g++) {
        uint64_t a = vm->page[g - 1], b = vm->page[g];
        bool fa = PG_KIND(a) == PG_MERGED || PG_KIND(a) == PG_COWED;
        bool fb = PG_KIND(b) == PG_MERGED || PG_KIND(b) == PG_COWED;
        if (fa != fb || (fb && PG_FRAME(b) != PG_FRAME(a) + 1))
            maps++;
    }
    out->mappings = maps;
    out->profit_bytes = (int64_t)((vm->merged + vm->zero) * SP_PAGE_SIZE) -
                        (int64_t)(vm->npages * (sizeof(uint64_t) + sizeof(uint32_t)));
    out->rss_pages = resident - MIN(resident, vm->merged);
    g_mutex_unlock(&eng->lock);
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
    g_mutex_lock(&eng->lock);
    uint64_t target = eng->stats.full_scans + n;
    while (eng->stats.full_scans < target) {
        if (!g_cond_wait_until(&eng->cond, &eng->lock, until))
            break;
    }
    bool ok = eng->stats.full_scans >= target;
    g_mutex_unlock(&eng->lock);
    return ok;
}
