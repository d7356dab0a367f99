/* SPDX-License-Identifier: MIT */
/*
 * machine-clone.c - a machine's part of cloning (machine.h; the whole
 * story, and the supervisor's part, are in vmm/super/vm-clone.c; the
 * layers in rmap/vm-layers.h).
 *
 * Source (sp_machine_clone_save), in the order that keeps the pause short:
 * a VM cloned for the first time, outside the engine, pre-copies its RAM
 * into a new file while it runs; then it pauses (vCPUs parked outside
 * KVM_RUN, pending I/O completed), its vCPU state is read from KVM (regs,
 * sregs, XSAVE or FPU, XCRs, MP state), the layer is pushed
 * (sp_rmap_vm_push_layer: the pages written since the pre-copy, or all of
 * RAM, or only what changed since the last layer), and it resumes.  Pages
 * the engine had merged are copied like any other (the copy reads the
 * frames); if the RAM is replaced by the new file, the agent forgets its
 * merges (its lock is held by the caller) and the index re-reads them.
 *
 * Child (sp_machine_clone_load): map the layout's files and load the vCPU
 * state, before it starts.
 *
 * Only payload VMs can be cloned: a Linux guest has interrupt controller,
 * timer and MSR state that is not copied yet.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rmap/clone-file.h"
#include "rmap/clone-layout.h"
#include "rmap/rmap.h"
#include "rmap/vm-layers.h"
#include "sharing/agent.h"
#include "vmm/machine/machine-priv.h"

typedef struct CloneVcpuState {
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_xsave xsave;
    struct kvm_fpu fpu;
    struct kvm_xcrs xcrs;
    struct kvm_mp_state mp;
    bool have_xsave, have_xcrs;
} CloneVcpuState;

void sp_machine_note_vmm_write(SpMachine *vm, uint64_t gpa, uint64_t len)
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
static int clone_precopy_start(SpMachine *src, uint64_t *dirty, uint64_t *pages, GError **error)
{
    g_mutex_lock(&src->lock);
    src->precopy_pages = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    g_mutex_unlock(&src->lock);
    __atomic_store_n(&src->precopy, 1, __ATOMIC_RELEASE);
    struct kvm_dirty_log log = {.slot = SP_MACHINE_RAM_SLOT, .dirty_bitmap = dirty};
    if (ioctl(src->fd, KVM_GET_DIRTY_LOG, &log) < 0) { /* clears it */
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "KVM_GET_DIRTY_LOG: %s",
                    g_strerror(errno));
        return -1;
    }
    return sp_clone_file_create(&src->mem, pages, error);
}

/* Source paused: copy what changed since clone_precopy_start. */
static bool clone_precopy_finish(SpMachine *src, int fd, uint64_t *dirty, uint64_t *copied,
                                 GError **error)
{
    struct kvm_dirty_log log = {.slot = SP_MACHINE_RAM_SLOT, .dirty_bitmap = dirty};
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

static void clone_precopy_end(SpMachine *src)
{
    __atomic_store_n(&src->precopy, 0, __ATOMIC_RELEASE);
    g_mutex_lock(&src->lock);
    if (src->precopy_pages)
        g_array_free(src->precopy_pages, TRUE);
    src->precopy_pages = NULL;
    g_mutex_unlock(&src->lock);
}

uint64_t sp_machine_clone_generation(const SpMachine *vm)
{
    return vm->clone_generation;
}

uint64_t sp_machine_clone_id(const SpMachine *vm)
{
    return vm->clone_id;
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

/* Around a remap of the source's RAM (rmap/vm-layers.h): the agent (its
 * lock held by the caller) forgets merges and starts over on the file. */
static void clone_remap_before(void *opaque)
{
    (void)opaque;
}

static bool clone_remap_after(void *opaque, GError **error)
{
    SpMachine *src = opaque;
    src->ram_file_backed = true;
    if (src->agent)
        sp_agent_reset_after_remap_locked(src->agent);
    return true;
}

static uint64_t ns_since(gint64 t)
{
    return (uint64_t)(g_get_monotonic_time() - t) * 1000;
}

bool sp_machine_clone_save(SpMachine *src, SpAgent *agent, SpMachineCloneSave *out, GError **error)
{
    memset(out, 0, sizeof(*out));
    out->group_fd = -1;
    if (!src->cfg->payload) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_UNSUPPORTED,
                    "VM '%s' runs a Linux kernel: only payload VMs can be cloned", src->cfg->name);
        return false;
    }
    SpVmInfo info;
    sp_machine_get_info(src, &info);
    if (info.state != SP_VM_RUNNING) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_STATE, "VM '%s' is %s, cannot clone it",
                    src->cfg->name, sp_vm_state_name(info.state));
        return false;
    }
    CloneVcpuState *st = g_new0(CloneVcpuState, src->nvcpus);
    bool paused = false;
    int pre_fd = -1;
    SpCloneLayout *kl = NULL; /* the children's layout */
    SpRmapPush push = {0};
    uint64_t npages = src->mem.size / SP_PAGE_SIZE;
    g_autofree uint64_t *dirty = g_new0(uint64_t, (npages + 63) / 64);
    gint64 tp = g_get_monotonic_time();
    if (!sp_rmap_vm_group(src->rmap) && !(agent && sp_agent_attached_locked(agent)) &&
        !src->cfg->no_share) {
        pre_fd = clone_precopy_start(src, dirty, &out->pages_precopied, error);
        if (pre_fd < 0)
            goto fail;
    }
    out->precopy_ns = ns_since(tp);
    gint64 t0 = g_get_monotonic_time();
    if (!sp_machine_pause(src, error))
        goto fail;
    paused = true;
    out->park_ns = ns_since(t0);
    gint64 t_parked = g_get_monotonic_time();
    for (uint32_t v = 0; v < src->nvcpus; v++)
        if (!clone_vcpu_save(&src->vcpus[v], &st[v], error))
            goto fail;
    uint64_t copied = 0;
    if (pre_fd >= 0 && !clone_precopy_finish(src, pre_fd, dirty, &copied, error))
        goto fail;
    SpRmapRemapHooks hooks = {clone_remap_before, clone_remap_after, src};
    kl = sp_rmap_vm_push_layer(src->rmap, pre_fd, &hooks, &push, error);
    pre_fd = -1; /* owned by the source's layout now, or closed */
    if (!kl)
        goto fail;
    out->pages_copied = copied + push.pages_copied;
    out->copy_ns = (uint64_t)(push.copied_us - t_parked) * 1000;
    sp_machine_resume(src);
    paused = false;
    out->remap_ns = (uint64_t)(g_get_monotonic_time() - push.copied_us) * 1000;
    if (push.old_ram)
        munmap(push.old_ram, src->mem.size);
    clone_precopy_end(src);
    out->group_fd = fcntl(sp_clone_group_fd(sp_clone_layout_top(kl)), F_DUPFD_CLOEXEC, 0);
    if (kl->groups->len > 1)
        out->layer = g_memdup2(kl->layer, kl->npages);
    out->npages = kl->npages;
    out->vcpu_state = st;
    out->nvcpus = src->nvcpus;
    out->vcpu_state_len = sizeof(CloneVcpuState);
    sp_clone_layout_free(kl);
    if (out->group_fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "dup: %s", g_strerror(errno));
        sp_machine_clone_save_clear(out);
        return false;
    }
    return true;

fail:
    if (paused)
        sp_machine_resume(src);
    if (push.old_ram)
        munmap(push.old_ram, src->mem.size);
    sp_clone_layout_free(kl);
    clone_precopy_end(src);
    if (pre_fd >= 0)
        close(pre_fd);
    g_free(st);
    g_prefix_error(error, "cannot clone VM '%s': ", src->cfg->name);
    return false;
}

void sp_machine_clone_save_clear(SpMachineCloneSave *out)
{
    g_free(out->vcpu_state);
    g_free(out->layer);
    if (out->group_fd >= 0)
        close(out->group_fd);
    memset(out, 0, sizeof(*out));
    out->group_fd = -1;
}

bool sp_machine_clone_load(SpMachine *m, const SpMachineCloneLoad *in, GError **error)
{
    uint64_t npages = m->mem.size / SP_PAGE_SIZE;
    bool ok = false;
    SpCloneLayout *l = NULL;
    if (in->nvcpus != m->nvcpus || in->vcpu_state_len != sizeof(CloneVcpuState) ||
        in->ngroups == 0 || in->ngroups > SP_CLONE_LAYOUT_MAX_LAYERS) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_INVALID,
                    "VM '%s': clone state does not fit (%u vCPUs of %u bytes, %u layers)",
                    m->cfg->name, in->nvcpus, in->vcpu_state_len, in->ngroups);
        goto out;
    }
    l = sp_clone_layout_from_fds(in->group_fds, in->ngroups, in->layer, npages, error);
    for (uint32_t i = 0; i < in->ngroups; i++)
        in->group_fds[i] = -1; /* taken */
    if (!l || !sp_rmap_vm_map_layout(m->rmap, l, error))
        goto out;
    m->ram_file_backed = true;
    const CloneVcpuState *st = in->vcpu_state;
    for (uint32_t v = 0; v < m->nvcpus; v++)
        if (!clone_vcpu_load(&m->vcpus[v], &st[v], error))
            goto out;
    __atomic_store_n(&m->command, in->command, __ATOMIC_RELEASE);
    m->clone_generation = in->clone_generation;
    m->clone_id = in->clone_id;
    ok = true;
out:
    for (uint32_t i = 0; i < in->ngroups; i++)
        if (in->group_fds[i] >= 0)
            close(in->group_fds[i]);
    sp_clone_layout_free(l);
    return ok;
}

SpRmapVm *sp_machine_rmap(SpMachine *vm)
{
    return vm->rmap;
}

int sp_machine_rmap_off_fd(SpMachine *vm)
{
    return sp_rmap_vm_off_fd(vm->rmap);
}
