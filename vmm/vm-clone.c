/* SPDX-License-Identifier: MIT */
/*
 * vm-clone.c - clone a running VM into N children (issue 4, design.md
 * mechanism 7; the API is in vm.h).
 *
 * Order, chosen so the source is paused as briefly as possible:
 *  1. outside the pause: create every child's KVM VM, RAM mapping (with its
 *     userfaultfd), vCPUs and devices, without booting anything;
 *  2. pause the source (vCPUs parked outside KVM_RUN, pending I/O completed);
 *     read each vCPU's registers, special registers, XSAVE area (or FPU),
 *     XCRs and MP state from KVM;
 *  3. push a layer (rmap/vm-layers.h): copy the source's resident RAM once
 *     into the group's frame file (rmap/clone-file.h), detach the source
 *     from the sharing engine, map the file MAP_PRIVATE over the source's
 *     RAM, attach it again (the engine's part is here, as hooks); resume;
 *  4. map the file over each child's RAM, load the vCPU state, start it.
 * After 3 the source and all children read the same page-cache pages; a
 * write by any of them copies that one page for the writer (the kernel's
 * copy-on-write), so they diverge independently.
 *
 * Sharing engine: pages the engine had merged are copied into the file like
 * any other page (the copy is taken while the source is still attached, so
 * it reads the pool frames); only then is the source detached, which may
 * free those pool frames, its stale dirty bits dropped, and its RAM
 * replaced.  Re-attaching reads pagemap: pages that map the group file are
 * clone-shared and the engine leaves them alone until they are written.
 *
 * Reverse map: every file is a sharing group (rmap/rmap.h).  rmap/'s
 * clone-layer protocol (rmap/vm-layers.h) keeps its invariants: the
 * source's new group has the group it was in as parent, and each VM's rmap
 * entry takes its layout right after its RAM was mapped from it.
 *
 * Re-cloning a VM, or cloning a clone, adds a layer file holding only the
 * pages the source changed since its layout was made (rmap/clone-layout.h),
 * so a chain of clones is a chain of files, each kept alive by the kernel
 * for as long as any member maps it.  The source keeps its changed pages
 * (remapping them would lengthen the pause), so those pages exist twice:
 * once in the source, once in the layer its new children share.  This
 * holds for VMs under the sharing engine too: the reverse map knows which
 * pages the engine remapped.
 *
 * Only payload VMs can be cloned: a Linux guest has interrupt controller,
 * timer and MSR state that is not copied yet.
 *
 * Locking: one clone of a given source at a time (the caller's job, like
 * every lifecycle call on an SpVm); the pause protocol is in vm.c/vcpu.c.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rmap/clone-file.h"
#include "rmap/clone-layout.h"
#include "rmap/rmap.h"
#include "rmap/vm-layers.h"
#include "sharing/engine.h"
#include "vmm/vm-priv.h"

typedef struct CloneVcpuState {
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_xsave xsave;
    struct kvm_fpu fpu;
    struct kvm_xcrs xcrs;
    struct kvm_mp_state mp;
    bool have_xsave, have_xcrs;
} CloneVcpuState;

static uint64_t clone_next_id = 1; /* atomic; ids are distinct in the process */

void sp_vm_note_vmm_write(SpVm *vm, uint64_t gpa, uint64_t len)
{
    if (!len)
        return;
    /* The write copied those pages out of the VM's clone group. */
    for (uint64_t g = gpa / SP_PAGE_SIZE; vm->rmap && g <= (gpa + len - 1) / SP_PAGE_SIZE; g++)
        sp_rmap_vm_note_off(vm->rmap, g);
    if (!__atomic_load_n(&vm->precopy, __ATOMIC_ACQUIRE))
        return;
    g_mutex_lock(&vm->lock);
    if (vm->precopy_pages)
        for (uint64_t g = gpa / SP_PAGE_SIZE; g <= (gpa + len - 1) / SP_PAGE_SIZE; g++)
            g_array_append_val(vm->precopy_pages, g);
    g_mutex_unlock(&vm->lock);
}

/* Pre-copy, source running: start tracking writes (KVM's dirty log, which
 * nobody else harvests on a VM outside the engine, plus VMM writes), then
 * copy all resident RAM into a new file.  Returns the fd or -1. */
static int clone_precopy_start(SpVm *src, uint64_t *dirty, uint64_t *pages, GError **error)
{
    g_mutex_lock(&src->lock);
    src->precopy_pages = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    g_mutex_unlock(&src->lock);
    __atomic_store_n(&src->precopy, 1, __ATOMIC_RELEASE);
    struct kvm_dirty_log log = {.slot = SP_VM_RAM_SLOT, .dirty_bitmap = dirty};
    if (ioctl(src->fd, KVM_GET_DIRTY_LOG, &log) < 0) { /* clears it */
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "KVM_GET_DIRTY_LOG: %s",
                    g_strerror(errno));
        return -1;
    }
    return sp_clone_file_create(&src->mem, pages, error);
}

/* Source paused: copy what changed since clone_precopy_start. */
static bool clone_precopy_finish(SpVm *src, int fd, uint64_t *dirty, uint64_t *copied,
                                 GError **error)
{
    struct kvm_dirty_log log = {.slot = SP_VM_RAM_SLOT, .dirty_bitmap = dirty};
    if (ioctl(src->fd, KVM_GET_DIRTY_LOG, &log) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "KVM_GET_DIRTY_LOG: %s",
                    g_strerror(errno));
        return false;
    }
    __atomic_store_n(&src->precopy, 0, __ATOMIC_RELEASE);
    g_mutex_lock(&src->lock);
    for (guint i = 0; i < src->precopy_pages->len; i++) {
        uint64_t g = g_array_index(src->precopy_pages, uint64_t, i);
        dirty[g / 64] |= 1ULL << (g % 64);
    }
    g_mutex_unlock(&src->lock);
    return sp_clone_file_write_pages(fd, &src->mem, dirty, copied, error);
}

static void clone_precopy_end(SpVm *src)
{
    __atomic_store_n(&src->precopy, 0, __ATOMIC_RELEASE);
    g_mutex_lock(&src->lock);
    if (src->precopy_pages)
        g_array_free(src->precopy_pages, TRUE);
    src->precopy_pages = NULL;
    g_mutex_unlock(&src->lock);
}

uint64_t sp_vm_clone_generation(const SpVm *vm)
{
    return vm->clone_generation;
}

uint64_t sp_vm_clone_shared_pages(const SpVm *vm)
{
    /* A VM under the engine has its writes harvested; any other is synced
     * from pagemap when its figure is older than a second. */
    if (!vm->rmap)
        return 0;
    return vm->shvm ? sp_rmap_vm_clone_shared(vm->rmap)
                    : sp_rmap_vm_clone_shared_fresh(vm->rmap, 1.0);
}

uint64_t sp_vm_clone_group_id(const SpVm *vm)
{
    SpCloneGroup *g = vm->rmap ? sp_rmap_vm_group(vm->rmap) : NULL;
    return g ? sp_clone_group_id(g) : 0;
}

static bool clone_vcpu_save(SpVcpu *v, CloneVcpuState *st, GError **error)
{
    if (ioctl(v->fd, KVM_GET_REGS, &st->regs) < 0 || ioctl(v->fd, KVM_GET_SREGS, &st->sregs) < 0 ||
        ioctl(v->fd, KVM_GET_MP_STATE, &st->mp) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "VM '%s': cannot read vCPU %u state: %s", v->vm->cfg->name, v->index,
                    g_strerror(errno));
        return false;
    }
    st->have_xsave = ioctl(v->fd, KVM_GET_XSAVE, &st->xsave) == 0;
    if (!st->have_xsave && ioctl(v->fd, KVM_GET_FPU, &st->fpu) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "VM '%s': cannot read vCPU %u FPU state: %s", v->vm->cfg->name, v->index,
                    g_strerror(errno));
        return false;
    }
    st->have_xcrs = ioctl(v->fd, KVM_GET_XCRS, &st->xcrs) == 0;
    return true;
}

static bool clone_vcpu_load(SpVcpu *v, const CloneVcpuState *st, GError **error)
{
    const char *what = NULL;
    if (ioctl(v->fd, KVM_SET_SREGS, &st->sregs) < 0)
        what = "special registers";
    else if (ioctl(v->fd, KVM_SET_REGS, &st->regs) < 0)
        what = "registers";
    else if (st->have_xcrs && ioctl(v->fd, KVM_SET_XCRS, &st->xcrs) < 0)
        what = "XCRs";
    else if (st->have_xsave && ioctl(v->fd, KVM_SET_XSAVE, &st->xsave) < 0)
        what = "XSAVE state";
    else if (!st->have_xsave && ioctl(v->fd, KVM_SET_FPU, &st->fpu) < 0)
        what = "FPU state";
    else if (ioctl(v->fd, KVM_SET_MP_STATE, &st->mp) < 0)
        what = "MP state";
    if (what) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "VM '%s': cannot set vCPU %u %s: %s", v->vm->cfg->name, v->index, what,
                    g_strerror(errno));
        return false;
    }
    v->init_regs = st->regs;
    v->init_sregs = st->sregs;
    return true;
}

/* Step 1: an unbooted VM like src, named `name`. */
static SpVm *clone_child_new(SpVm *src, const char *name, uint64_t vm_id, const SpVmEvents *ev,
                             GError **error)
{
    g_autoptr(SpVmConfig) cfg = sp_vm_config_copy(src->cfg);
    g_free(cfg->name);
    cfg->name = g_strdup(name);
    SpVm *child = sp_vm_new_internal(src->kvm, cfg, vm_id, ev, false, error);
    if (!child)
        return NULL;
    if (src->engine)
        sp_vm_set_engine(child, src->engine, src->share_start, src->share_end);
    child->clone_generation = src->clone_generation + 1;
    child->clone_id = __atomic_fetch_add(&clone_next_id, 1, __ATOMIC_RELAXED);
    return child;
}

/* Source paused: what the guest reported so far is the children's history
 * too (results such as pages_gpa, the round and phase), and the command
 * word goes on with the source's sequence numbers. */
static void clone_copy_reports(SpVm *src, SpVm *child)
{
    g_mutex_lock(&src->lock);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, src->results);
    while (g_hash_table_iter_next(&it, &k, &v))
        g_hash_table_insert(child->results, g_strdup(k), g_memdup2(v, sizeof(uint64_t)));
    child->command = __atomic_load_n(&src->command, __ATOMIC_ACQUIRE);
    g_mutex_unlock(&src->lock);
    child->rounds = __atomic_load_n(&src->rounds, __ATOMIC_RELAXED);
    child->phase = __atomic_load_n(&src->phase, __ATOMIC_RELAXED);
    child->pages_verified = __atomic_load_n(&src->pages_verified, __ATOMIC_RELAXED);
}

/* Step 3, source paused: around a remap of its RAM (rmap/vm-layers.h), the
 * source leaves the sharing engine and comes back as a file-backed VM. */
static void clone_remap_before(void *opaque)
{
    SpVm *src = opaque;
    if (!src->shvm)
        return;
    sp_engine_detach(src->engine, src->shvm);
    src->shvm = NULL;
    /* Writes before the pause are in the copy: drop their dirty bits, or
     * the engine would take them for writes to the new mapping (and the
     * reverse map for pages copied out of the group). */
    g_autofree uint64_t *scratch = g_new0(uint64_t, (src->mem.size / SP_PAGE_SIZE + 63) / 64);
    struct kvm_dirty_log log = {.slot = SP_VM_RAM_SLOT, .dirty_bitmap = scratch};
    ioctl(src->fd, KVM_GET_DIRTY_LOG, &log);
}

static bool clone_remap_after(void *opaque, GError **error)
{
    SpVm *src = opaque;
    src->ram_file_backed = true;
    return sp_vm_engine_attach(src, error);
}

bool sp_vm_clone_many(SpVm *src, uint32_t n, const char *const *names, const uint64_t *ids,
                      const SpVmEvents *ev, SpVm **out, SpVmCloneTimes *times, GError **error)
{
    if (n == 0 || n > SP_VM_CLONE_MAX) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_INVALID, "clone count must be 1..%d, not %u",
                    SP_VM_CLONE_MAX, n);
        return false;
    }
    if (!src->cfg->payload) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_UNSUPPORTED,
                    "VM '%s' runs a Linux kernel: only payload VMs can be cloned", src->cfg->name);
        return false;
    }
    SpVmInfo info;
    sp_vm_get_info(src, &info);
    if (info.state != SP_VM_RUNNING) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_STATE, "VM '%s' is %s, cannot clone it",
                    src->cfg->name, sp_vm_state_name(info.state));
        return false;
    }
    g_autofree SpVm **kids = g_new0(SpVm *, n);
    g_autofree CloneVcpuState *st = g_new0(CloneVcpuState, src->nvcpus);
    bool paused = false;
    void *old_ram = NULL; /* the source's pages before it mapped the file */
    int pre_fd = -1;
    g_autofree uint64_t *dirty = NULL;
    SpCloneLayout *kl = NULL; /* the children's layout */
    SpRmapPush push = {0};
    for (uint32_t i = 0; i < n; i++) {
        kids[i] = clone_child_new(src, names[i], ids[i], ev, error);
        if (!kids[i])
            goto fail;
    }

    /* Pre-copy: a VM cloned for the first time, outside the engine, with
     * dirty logging on, copies its RAM while it runs and only what changed
     * meanwhile during the pause. */
    uint64_t npages = src->mem.size / SP_PAGE_SIZE;
    dirty = g_new0(uint64_t, (npages + 63) / 64);
    uint64_t precopied = 0;
    gint64 tp = g_get_monotonic_time();
    if (!sp_rmap_vm_group(src->rmap) && !src->shvm && !src->engine && !src->cfg->no_share) {
        pre_fd = clone_precopy_start(src, dirty, &precopied, error);
        if (pre_fd < 0)
            goto fail;
    }
    gint64 t0 = g_get_monotonic_time();
    if (!sp_vm_pause(src, error))
        goto fail;
    paused = true;
    gint64 t_parked = g_get_monotonic_time(), t_copied = 0;
    for (uint32_t v = 0; v < src->nvcpus; v++)
        if (!clone_vcpu_save(&src->vcpus[v], &st[v], error))
            goto fail;
    for (uint32_t i = 0; i < n; i++)
        clone_copy_reports(src, kids[i]);
    uint64_t copied = 0;
    if (pre_fd >= 0 && !clone_precopy_finish(src, pre_fd, dirty, &copied, error))
        goto fail;
    SpRmapRemapHooks hooks = {clone_remap_before, clone_remap_after, src};
    kl = sp_rmap_vm_push_layer(src->rmap, pre_fd, &hooks, &push, error);
    pre_fd = -1; /* owned by the source's layout now, or closed */
    old_ram = push.old_ram;
    copied += push.pages_copied;
    t_copied = push.copied_us;
    if (!kl)
        goto fail;
    sp_vm_resume(src);
    paused = false;
    gint64 t1 = g_get_monotonic_time();

    for (uint32_t i = 0; i < n; i++) {
        if (!sp_rmap_vm_map_layout(kids[i]->rmap, kl, error))
            goto fail;
        kids[i]->ram_file_backed = true;
        for (uint32_t v = 0; v < kids[i]->nvcpus; v++)
            if (!clone_vcpu_load(&kids[i]->vcpus[v], &st[v], error))
                goto fail;
    }
    for (uint32_t i = 0; i < n; i++)
        if (!sp_vm_start(kids[i], error))
            goto fail;
    gint64 t2 = g_get_monotonic_time();
    if (old_ram) /* freeing them takes a while: after the children run */
        munmap(old_ram, src->mem.size);
    sp_clone_layout_free(kl);
    clone_precopy_end(src);
    if (times)
        *times = (SpVmCloneTimes){
            .pause_ms = (t1 - t0) / 1000.0,
            .park_ms = (t_parked - t0) / 1000.0,
            .copy_ms = (t_copied - t_parked) / 1000.0,
            .remap_ms = (t1 - t_copied) / 1000.0,
            .children_ms = (t2 - t0) / 1000.0,
            .pages_copied = copied,
            .pages_precopied = precopied,
            .precopy_ms = (t0 - tp) / 1000.0,
        };
    memcpy(out, kids, n * sizeof(*kids));
    return true;

fail:
    if (paused)
        sp_vm_resume(src);
    if (old_ram)
        munmap(old_ram, src->mem.size);
    sp_clone_layout_free(kl);
    clone_precopy_end(src);
    if (pre_fd >= 0)
        close(pre_fd);
    for (uint32_t i = 0; i < n; i++)
        sp_vm_free(kids[i]);
    g_prefix_error(error, "cannot clone VM '%s': ", src->cfg->name);
    return false;
}

SpVm *sp_vm_clone(SpVm *src, const char *name, uint64_t vm_id, const SpVmEvents *ev, GError **error)
{
    SpVm *child = NULL;
    const char *names[1] = {name};
    uint64_t ids[1] = {vm_id};
    if (!sp_vm_clone_many(src, 1, names, ids, ev, &child, NULL, error))
        return NULL;
    return child;
}

SpRmapVm *sp_vm_rmap(SpVm *vm)
{
    return vm->rmap;
}
