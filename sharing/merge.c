/* SPDX-License-Identifier: MIT */
/*
 * merge.c - changing how one guest page is mapped, without losing a write.
 *
 * Every operation follows the same protocol (design.md, mechanism 3):
 *   1. write-protect the page with userfaultfd: from now on a guest write
 *      (through KVM) or a VMM write blocks in the kernel;
 *   2. check the content under protection (byte for byte);
 *   3. replace the mapping: mmap(MAP_FIXED) of a pool frame (merge), an
 *      empty anonymous mapping or MADV_DONTNEED (zero), or an mremap of a
 *      private copy (unmerge) - each is atomic under the kernel's mmap lock;
 *   4. register the new mapping with the userfaultfd, then clear the
 *      protection, which wakes any blocked writer: its retried write lands
 *      in the new mapping (a private copy of the frame, the zero page's
 *      replacement, or the unmerged copy).
 * If the content differs at step 2, the protection is cleared and nothing
 * changes.  A write is never lost and a changed page is never merged.
 *
 * Called with the engine lock held, from the engine thread.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sharing/engine-priv.h"

static void *page_addr(SpEngineVm *vm, uint64_t gfn)
{
    return vm->mem->host + gfn * SP_PAGE_SIZE;
}

static bool wp(SpEngineVm *vm, void *addr, bool on)
{
    struct uffdio_writeprotect w = {
        .range = {.start = (uintptr_t)addr, .len = SP_PAGE_SIZE},
        .mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
    };
    return ioctl(vm->mem->uffd, UFFDIO_WRITEPROTECT, &w) == 0;
}

/* Register a freshly created mapping with the userfaultfd (WP mode). */
static void reregister(SpEngineVm *vm, void *addr)
{
    struct uffdio_register r = {
        .range = {.start = (uintptr_t)addr, .len = SP_PAGE_SIZE},
        .mode = UFFDIO_REGISTER_MODE_WP,
    };
    if (ioctl(vm->mem->uffd, UFFDIO_REGISTER, &r) < 0)
        g_warning("event=uffd-register-failed vm=%s addr=%p error=\"%s\"", vm->name, addr,
                  g_strerror(errno));
}

/* Wake writers blocked on the page (after its protection went with the old mapping). */
static void wake(SpEngineVm *vm, void *addr)
{
    struct uffdio_range r = {.start = (uintptr_t)addr, .len = SP_PAGE_SIZE};
    ioctl(vm->mem->uffd, UFFDIO_WAKE, &r);
}

static bool is_zero(const void *p)
{
    const uint64_t *w = p;
    for (size_t i = 0; i < SP_PAGE_SIZE / 8; i++)
        if (w[i])
            return false;
    return true;
}

/* Tests: keep the window open and count guest writes that block in it.
 * The fault messages are only read, never answered: the wake below is
 * what lets the writers go on, as it does for every merge. */
static void test_hold_window(SpEngine *eng, SpEngineVm *vm, void *addr)
{
    g_usleep(eng->test_delay_us);
    struct uffd_msg msg;
    while (read(vm->mem->uffd, &msg, sizeof(msg)) == sizeof(msg)) {
        if (msg.event == UFFD_EVENT_PAGEFAULT &&
            (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) &&
            (msg.arg.pagefault.address & ~(SP_PAGE_SIZE - 1)) == (uintptr_t)addr)
            eng->stats.wp_faults_seen++;
    }
}

bool sh_merge_page(SpEngine *eng, SpEngineVm *vm, uint64_t gfn, uint32_t frame)
{
    uint8_t *addr = page_addr(vm, gfn);
    const uint8_t *fp = sh_frame_ptr(eng, frame);
    off_t foff;
    int ffd = sh_frame_fd(eng, frame, &foff);
    /* Make sure the page is populated, so that the protection takes hold. */
    (void)*(volatile uint8_t *)addr;
    if (!wp(vm, addr, true))
        return false;
    if (memcmp(addr, fp, SP_PAGE_SIZE) != 0) {
        wp(vm, addr, false);
        return false;
    }
    if (eng->test_delay_us)
        test_hold_window(eng, vm, addr);
    void *p = mmap(addr, SP_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, ffd, foff);
    if (p == MAP_FAILED) {
        /* Typically the mapping limit: the old page is untouched. */
        if (!eng->map_limit_warned)
            g_warning("event=merge-mmap-failed vm=%s error=\"%s\" (merging paused for such "
                      "pages; the guest is unaffected)",
                      vm->name, g_strerror(errno));
        eng->map_limit_warned = true;
        wp(vm, addr, false);
        return false;
    }
    reregister(vm, addr);
    wake(vm, addr);
    sh_page_set_merged(eng, vm, gfn, frame);
    if (vm->rmap)
        sp_rmap_vm_note_off(vm->rmap, gfn);
    eng->stats.merges++;
    return true;
}

bool sh_zero_page(SpEngine *eng, SpEngineVm *vm, uint64_t gfn)
{
    uint8_t *addr = page_addr(vm, gfn);
    uint64_t old = vm->page[gfn];
    (void)*(volatile uint8_t *)addr;
    if (!wp(vm, addr, true))
        return false;
    if (!is_zero(addr)) {
        wp(vm, addr, false);
        return false;
    }
    if (PG_KIND(old) == PG_ANON && !vm->file_backed) {
        /* Anonymous memory: drop the page; the next read maps the zero page. */
        madvise(addr, SP_PAGE_SIZE, MADV_DONTNEED);
    } else {
        /* A copied-on-write page sits in a file mapping (a pool frame's, or
         * a clone group file's): dropping it would expose the file's old
         * content, so put an empty anonymous mapping in its place instead. */
        void *p = mmap(addr, SP_PAGE_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            wp(vm, addr, false);
            return false;
        }
        reregister(vm, addr);
    }
    wp(vm, addr, false);
    wake(vm, addr);
    sh_page_set_zero(eng, vm, gfn);
    if (vm->rmap)
        sp_rmap_vm_note_off(vm->rmap, gfn);
    return true;
}

bool sh_unmerge_page(SpEngine *eng, SpEngineVm *vm, uint64_t gfn)
{
    uint8_t *addr = page_addr(vm, gfn);
    uint64_t old = vm->page[gfn];
    (void)*(volatile uint8_t *)addr;
    if (!wp(vm, addr, true))
        return false;
    /* A private copy of the current content, moved into place in one step. */
    void *copy =
        mmap(NULL, SP_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (copy == MAP_FAILED) {
        wp(vm, addr, false);
        return false;
    }
    memcpy(copy, addr, SP_PAGE_SIZE);
    if (mremap(copy, SP_PAGE_SIZE, SP_PAGE_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, addr) ==
        MAP_FAILED) {
        munmap(copy, SP_PAGE_SIZE);
        wp(vm, addr, false);
        return false;
    }
    reregister(vm, addr);
    wake(vm, addr);
    if (PG_KIND(old) == PG_MERGED)
        sh_page_clear_merged(eng, vm, gfn); /* COWED: no frame reference */
    vm->page[gfn] = PG_MAKE(PG_ANON, NO_FRAME, (old & 0xff & ~(uint64_t)(PG_KIND_MASK)));
    return true;
}

bool sh_page_is_file(SpEngineVm *vm, uint64_t gfn, bool *present)
{
    uint64_t ent = 0;
    off_t off = (off_t)(((uintptr_t)vm->mem->host / SP_PAGE_SIZE + gfn) * 8);
    if (vm->pagemap_fd < 0 || pread(vm->pagemap_fd, &ent, 8, off) != 8) {
        /* Unknown: say "still the frame's page".  At worst a frame is kept
         * too long; freeing one that is still mapped would corrupt memory. */
        *present = true;
        return true;
    }
    *present = (ent >> 63) & 1;
    return (ent >> 61) & 1;
}
