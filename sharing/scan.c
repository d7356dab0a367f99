/* SPDX-License-Identifier: MIT */
/*
 * scan.c - one pass of the scanner: harvest dirty logs, then examine pages.
 *
 * At the start of every full scan each VM's KVM dirty log is harvested
 * (KVM_GET_DIRTY_LOG returns and clears it), together with the pages VMM
 * threads reported writing.  A written page is VOLATILE for this scan (KSM
 * would say its checksum changed) and its hash is stale.  A written MERGED
 * page was copied on write by the kernel - unless the bit is stale (the
 * write happened just before the merge and the merge saw its result), so
 * /proc/self/pagemap decides: a page still mapped from the file is still
 * merged.  A copied page drops its frame reference; the frame is freed
 * with its last reference.
 *
 * Then every touched page that is not volatile, merged or zero is hashed
 * (once: the hash stays valid until the page is written), dropped if it is
 * all zero, merged onto a frame of the stable index with the same group and
 * content, or paired through the unstable table with an earlier page of
 * the same content into a new frame.  A new duplicate therefore merges in
 * the first scan that sees it unchanged.
 *
 * Engine lock held throughout.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include <xxhash.h>

#include "sharing/engine-priv.h"

void sh_page_written(SpEngine *eng, SpEngineVm *vm, uint64_t gfn)
{
    if (vm->rmap) /* a write copies the page out of its clone group, if it was in one */
        sp_rmap_vm_note_off(vm->rmap, gfn);
    sh_page_touch(vm, gfn);
    eng->scan_work++;
    uint64_t p = (vm->page[gfn] | PG_VOLATILE) & ~(uint64_t)PG_HASHED;
    vm->page[gfn] = p;
    bool present = true;
    switch (PG_KIND(p)) {
    case PG_MERGED:
        if (sh_page_is_file(vm, gfn, &present) || !present) {
            /* stale bit: the write preceded the merge, which saw its result */
            vm->page[gfn] = (p & ~(uint64_t)PG_VOLATILE) | PG_HASHED;
            break;
        }
        eng->stats.cow_breaks++;
        sh_page_clear_merged(eng, vm, gfn); /* copied on write: now COWED */
        break;
    case PG_ZERO:
        sh_page_is_file(vm, gfn, &present);
        if (!present) { /* stale: still dropped */
            vm->page[gfn] = p & ~(uint64_t)PG_VOLATILE;
            break;
        }
        sh_page_clear_zero(eng, vm, gfn);
        break;
    default:
        break;
    }
}

static void harvest(SpEngine *eng, SpEngineVm *vm)
{
    uint64_t words = (vm->npages + 63) / 64;
    /* Last scan's volatility is over. */
    for (uint64_t g = 0; g < vm->npages; g++)
        vm->page[g] &= ~(uint64_t)PG_VOLATILE;
    vm->volatile_now = 0;
    if (vm->kvm_fd >= 0) {
        struct kvm_dirty_log log = {.slot = vm->slot, .dirty_bitmap = vm->dirty};
        memset(vm->dirty, 0, words * 8);
        if (ioctl(vm->kvm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
            g_warning("event=dirty-log-failed vm=%s error=\"%s\"", vm->name, g_strerror(errno));
    } else {
        memset(vm->dirty, 0, words * 8);
    }
    for (uint64_t w = 0; w < words; w++) {
        uint64_t bits = vm->dirty[w] | __atomic_exchange_n(&vm->vmm_dirty[w], 0, __ATOMIC_ACQ_REL);
        while (bits) {
            uint64_t gfn = w * 64 + (uint64_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            if (gfn < vm->npages)
                sh_page_written(eng, vm, gfn);
        }
    }
}

void sh_scan_begin(SpEngine *eng)
{
    for (uint32_t i = 0; i < eng->nslots; i++)
        if (eng->vm_slots[i])
            harvest(eng, eng->vm_slots[i]);
    u64map_clear(&eng->unstable);
}

static bool map_budget_ok(SpEngine *eng)
{
    /* Each merged page may cost two mappings; stop short of the kernel's limit. */
    uint64_t est = 1024;
    for (uint32_t i = 0; i < eng->nslots; i++)
        if (eng->vm_slots[i])
            est += 2 * eng->vm_slots[i]->merged + 2 * eng->vm_slots[i]->zero + 1;
    return est + 1024 < eng->max_map_count * 9 / 10;
}

static uint32_t new_frame(SpEngine *eng, const void *content, uint32_t hash, uint32_t group)
{
    uint32_t f = sp_frame_pool_alloc(&eng->pool, 1);
    if (f == UINT32_MAX)
        return NO_FRAME;
    if (f >= eng->frames->len)
        g_array_set_size(eng->frames, f + 1);
    memcpy(sp_frame_pool_ptr(&eng->pool, f), content, SP_PAGE_SIZE);
    g_array_index(eng->frames, ShFrame, f) =
        (ShFrame){.hash = hash, .refs = 0, .group = group, .next = NO_FRAME};
    return f;
}

static bool try_stable(SpEngine *eng, SpEngineVm *vm, uint64_t gfn, uint64_t key, uint32_t hash)
{
    uint64_t head = 0;
    if (!u64map_get(&eng->stable, key, &head))
        return false;
    const uint8_t *addr = vm->mem->host + gfn * SP_PAGE_SIZE;
    for (uint32_t fi = (uint32_t)head; fi != NO_FRAME;) {
        ShFrame *f = sh_frame(eng, fi);
        if (f->hash == hash && f->refs < eng->knobs.max_page_sharing &&
            memcmp(addr, sh_frame_ptr(eng, fi), SP_PAGE_SIZE) == 0)
            return sh_merge_page(eng, vm, gfn, fi);
        fi = f->next;
    }
    return false;
}

static bool try_unstable(SpEngine *eng, SpEngineVm *vm, uint64_t gfn, uint64_t key, uint32_t hash)
{
    uint64_t v = 0;
    if (!u64map_get(&eng->unstable, key, &v))
        return false;
    uint32_t slot = (uint32_t)(v >> 40);
    uint64_t ogfn = v & ((1ULL << 40) - 1);
    SpEngineVm *o = slot < eng->nslots ? eng->vm_slots[slot] : NULL;
    if (!o || ogfn >= o->npages || (o == vm && ogfn == gfn))
        return false;
    uint64_t op = o->page[ogfn];
    if ((PG_KIND(op) != PG_ANON && PG_KIND(op) != PG_COWED) || (op & PG_VOLATILE) ||
        !(op & PG_HASHED) || o->hash[ogfn] != hash || o->group != vm->group)
        return false;
    const uint8_t *a = vm->mem->host + gfn * SP_PAGE_SIZE;
    const uint8_t *b = o->mem->host + ogfn * SP_PAGE_SIZE;
    if (memcmp(a, b, SP_PAGE_SIZE) != 0)
        return false;
    if (!map_budget_ok(eng))
        return false;
    uint32_t f = new_frame(eng, a, hash, vm->group);
    if (f == NO_FRAME)
        return false;
    sh_merge_page(eng, o, ogfn, f);
    sh_merge_page(eng, vm, gfn, f);
    u64map_remove(&eng->unstable, key);
    uint32_t refs = sh_frame(eng, f)->refs;
    if (refs == 0) { /* both merges failed: the frame was never used */
        sp_frame_pool_free(&eng->pool, f);
        return false;
    }
    sh_frame_link(eng, f);
    return refs == 2 || PG_KIND(vm->page[gfn]) == PG_MERGED;
}

void sh_scan_page(SpEngine *eng, SpEngineVm *vm, uint64_t gfn)
{
    uint64_t p = vm->page[gfn];
    if (!(p & PG_TOUCHED)) {
        /* a clone's page still in its group: a frame for others to merge onto */
        if (vm->file_backed)
            sh_gframe_index(eng, vm, gfn);
        return;
    }
    if (PG_KIND(p) == PG_MERGED || PG_KIND(p) == PG_ZERO)
        return;
    eng->stats.pages_scanned++;
    if (p & PG_VOLATILE) {
        vm->volatile_now++;
        return;
    }
    const uint8_t *addr = vm->mem->host + gfn * SP_PAGE_SIZE;
    if (!(p & PG_HASHED)) {
        XXH64_hash_t h = XXH3_64bits(addr, SP_PAGE_SIZE);
        eng->scan_work++;
        vm->hash[gfn] = (uint32_t)(h ^ (h >> 32));
        vm->page[gfn] = p | PG_HASHED;
    }
    uint32_t hash = vm->hash[gfn];
    if (eng->knobs.use_zero_pages && hash == eng->zero_hash && sh_zero_page(eng, vm, gfn))
        return;
    uint64_t key = sh_key(vm->group, hash);
    if (try_stable(eng, vm, gfn, key, hash))
        return;
    if (try_unstable(eng, vm, gfn, key, hash))
        return;
    if (PG_KIND(vm->page[gfn]) == PG_MERGED)
        return;
    u64map_set(&eng->unstable, key, ((uint64_t)vm->slot_index << 40) | gfn);
}

void sh_unmerge_all(SpEngine *eng)
{
    for (uint32_t i = 0; i < eng->nslots; i++) {
        SpEngineVm *vm = eng->vm_slots[i];
        if (!vm)
            continue;
        for (uint64_t g = 0; g < vm->npages; g++) {
            unsigned k = PG_KIND(vm->page[g]);
            if (k == PG_MERGED || k == PG_COWED) {
                sh_unmerge_page(eng, vm, g);
            } else if (k == PG_ZERO) {
                sh_page_clear_zero(eng, vm, g);
            }
        }
    }
    u64map_clear(&eng->unstable);
}
