/* SPDX-License-Identifier: MIT */
/*
 * vm-clone.c - cloning a running VM into N children, from the supervisor
 * (vm.h; the VM process's side is vmm/vmproc/clone.c, the machine's
 * vmm/machine/machine-clone.c).
 *
 * Order, chosen so the source is paused as briefly as possible:
 *  1. outside the pause: start every child's VM process, unbooted (its
 *     KVM VM, RAM, vCPUs and devices exist; nothing is loaded);
 *  2. CLONE_SAVE to the source: it pauses, saves its vCPUs, makes the new
 *     layer file (its whole RAM the first time; then only what it changed
 *     since its layout was made), and resumes;
 *  3. the new layer becomes a clone group of the supervisor's reverse map
 *     (its parent: the source's top group); the children's layout is the
 *     source's new one (flat) or the source's plus the new layer
 *     (layered);
 *  4. each child gets its layout's group files (read-only descriptors) and
 *     the vCPU state, maps them and starts.
 *
 * The sharing engine: while the source makes its layer, the engine does not
 * talk to it (sp_engine_vm_hold); a source whose RAM was replaced by the
 * file forgot its merges, and the engine re-reads its state (M_REPORT)
 * before letting go.  Children attach to the engine when they start.
 * From before the save until they started, no page of a clone layer is
 * out of its file (sp_engine_layers_hold): they map the files.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "rmap/rmap.h"
#include "sharing/engine.h"
#include "vmm/super/vm-priv.h"

#define CLONE_TIMEOUT_S 60.0

static uint64_t clone_next_id = 1; /* atomic; ids are distinct in the supervisor */

/* A read-only descriptor of the same file (children must not write it). */
static int reopen_ro(int fd)
{
    g_autofree char *path = g_strdup_printf("/proc/self/fd/%d", fd);
    return open(path, O_RDONLY | O_CLOEXEC);
}

uint64_t sp_vm_clone_generation(const SpVm *vm)
{
    return vm->clone_generation;
}

uint64_t sp_vm_clone_shared_pages(SpVm *vm)
{
    /* A VM under the engine has its writes harvested; any other is synced
     * (its process reads its pagemap) when its figure is older than a second. */
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

static SpVm *child_new(SpVm *src, const char *name, uint64_t vm_id, const SpVmEvents *ev,
                       GError **error)
{
    g_autoptr(SpVmConfig) cfg = sp_vm_config_copy(src->cfg);
    g_free(cfg->name);
    cfg->name = g_strdup(name);
    SpVm *child = sp_vm_new_clone_child(src->host, cfg, vm_id, ev, error);
    if (!child)
        return NULL;
    if (src->engine)
        sp_vm_set_engine(child, src->engine, src->share_start, src->share_end);
    child->clone_generation = src->clone_generation + 1;
    /* The children's history is the source's (results such as pages_gpa,
     * the round and phase). */
    g_mutex_lock(&src->lock);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, src->results);
    while (g_hash_table_iter_next(&it, &k, &v))
        g_hash_table_insert(child->results, g_strdup(k), g_memdup2(v, sizeof(uint64_t)));
    child->rounds = src->rounds;
    child->phase = src->phase;
    child->pages_verified = src->pages_verified;
    g_mutex_unlock(&src->lock);
    return child;
}

/* Step 3: the supervisor's side of the new layer. */
static SpCloneLayout *layer_to_layouts(SpVm *src, const SpProtoCloneSave *rep, int group_fd,
                                       const uint8_t *layer, GError **error)
{
    uint64_t npages = src->cfg->mem_size / SP_PAGE_SIZE;
    const SpCloneLayout *sl = sp_rmap_vm_layout(src->rmap);
    SpCloneGroup *parent = sl ? sp_clone_layout_top(sl) : NULL;
    SpCloneGroup *grp = sp_clone_group_new(group_fd, npages, parent);
    if (!grp) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_SETUP, "cannot read the new layer file");
        return NULL;
    }
    SpCloneLayout *kids;
    if (rep->layered && sl) {
        kids = sp_clone_layout_push(sl, grp, layer, error);
    } else {
        /* Flat: the source maps the new file too. */
        kids = sp_clone_layout_new_flat(grp, npages);
        sp_rmap_vm_adopt_layout(src->rmap, sp_clone_layout_copy(kids));
    }
    sp_clone_group_unref(grp);
    return kids;
}

/* Step 4 for one child. */
static bool child_load(SpVm *child, const SpCloneLayout *l, int vcpu_blob,
                       const SpProtoCloneSave *rep, GError **error)
{
    int layer_blob = -1;
    bool ok = true;
    for (guint i = 0; ok && i < l->groups->len; i++) {
        int fd = reopen_ro(sp_clone_group_fd(g_ptr_array_index(l->groups, i)));
        uint32_t idx = i;
        ok = fd >= 0 && sp_vm_request(child, SP_PROTO_CLONE_GROUP, &idx, 4, &fd, 1, CLONE_TIMEOUT_S,
                                      NULL, error);
        if (fd < 0)
            g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_SETUP, "cannot reopen a layer file: %s",
                        g_strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    if (ok && l->groups->len > 1) {
        layer_blob = sp_proto_blob_new(l->layer, l->npages, error);
        ok = layer_blob >= 0;
    }
    SpProtoCloneLoad ld = {
        .ngroups = l->groups->len,
        .nvcpus = rep->nvcpus,
        .vcpu_state_len = rep->vcpu_state_len,
        .command = rep->command,
        .clone_generation = child->clone_generation,
        .clone_id = __atomic_fetch_add(&clone_next_id, 1, __ATOMIC_RELAXED),
    };
    int fds[2] = {vcpu_blob, layer_blob};
    if (ok)
        ok = sp_vm_request(child, SP_PROTO_CLONE_LOAD, &ld, sizeof(ld), fds,
                           layer_blob >= 0 ? 2 : 1, CLONE_TIMEOUT_S, NULL, error);
    if (layer_blob >= 0)
        close(layer_blob);
    if (!ok)
        return false;
    sp_rmap_vm_adopt_layout(child->rmap, sp_clone_layout_copy(l));
    return true;
}

bool sp_vm_clone_many(SpVm *src, uint32_t n, const char *const *names, const uint64_t *ids,
                      const SpVmEvents *ev, SpVm **out, SpVmCloneTimes *times, GError **error)
{
    if (n == 0 || n > SP_VM_CLONE_MAX) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_STATE, "clone count must be 1..%d, not %u",
                    SP_VM_CLONE_MAX, n);
        return false;
    }
    if (!src->cfg->payload) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_STATE,
                    "VM '%s' runs a Linux kernel: only payload VMs can be cloned", src->name);
        return false;
    }
    SpVmInfo info;
    sp_vm_get_info(src, &info);
    if (info.state != SP_VM_RUNNING) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_STATE, "VM '%s' is %s, cannot clone it",
                    src->name, sp_vm_state_name(info.state));
        return false;
    }
    gint64 t0 = g_get_monotonic_time();
    g_autofree SpVm **kids = g_new0(SpVm *, n);
    SpCloneLayout *kl = NULL;
    SpProtoMsg rep_msg = {0};
    SpProtoCloneSave rep = {0};
    bool held = false, layers_held = false;
    for (uint32_t i = 0; i < n; i++)
        if (!(kids[i] = child_new(src, names[i], ids[i], ev, error)))
            goto fail;

    gint64 t_save = g_get_monotonic_time();
    if (src->engine) { /* the children map the layer files before they can take faults */
        sp_engine_layers_hold(src->engine, true);
        layers_held = true;
    }
    if (src->shvm) {
        sp_engine_vm_hold(src->engine, src->shvm);
        held = true;
    }
    uint32_t zero = 0;
    if (!sp_vm_request(src, SP_PROTO_CLONE_SAVE, &zero, 4, NULL, 0, CLONE_TIMEOUT_S, &rep_msg,
                       error))
        goto fail;
    gint64 t_saved = g_get_monotonic_time();
    SpProtoReader r = sp_proto_reader(&rep_msg);
    sp_proto_read(&r, &rep, sizeof(rep));
    uint64_t npages = src->cfg->mem_size / SP_PAGE_SIZE, vlen = 0, llen = 0;
    bool shape = !r.bad && rep.nvcpus == src->cfg->vcpus && rep.vcpu_state_len &&
                 rep.vcpu_state_len <= (1u << 20) && rep_msg.hdr.nfds == (rep.layered ? 3u : 2u);
    void *layer = NULL;
    if (shape && rep.layered &&
        !(layer = sp_proto_blob_map(rep_msg.fds[2], npages, 0, &llen, error)))
        goto fail;
    if (!shape) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_REFUSED, "malformed CLONE_SAVE reply");
        goto fail;
    }
    void *vmap = sp_proto_blob_map(rep_msg.fds[0], (uint64_t)rep.nvcpus * rep.vcpu_state_len, 0,
                                   &vlen, error);
    sp_proto_blob_unmap(vmap, vlen); /* only checked: the children map it */
    if (!vmap)
        goto fail;
    kl = layer_to_layouts(src, &rep, sp_proto_msg_take_fd(&rep_msg, 1), layer, error);
    sp_proto_blob_unmap(layer, llen);
    if (!kl)
        goto fail;
    if (held && !rep.layered)
        sp_engine_vm_resync(src->engine, src->shvm);
    if (held)
        sp_engine_vm_release(src->engine, src->shvm);
    held = false;

    for (uint32_t i = 0; i < n; i++)
        if (!child_load(kids[i], kl, rep_msg.fds[0], &rep, error))
            goto fail;
    for (uint32_t i = 0; i < n; i++)
        if (!sp_vm_start(kids[i], error))
            goto fail;
    if (layers_held) /* started: attached, or counted as members the engine cannot ask */
        sp_engine_layers_hold(src->engine, false);
    layers_held = false;
    gint64 t2 = g_get_monotonic_time();
    if (times)
        *times = (SpVmCloneTimes){
            .pause_ms = (rep.park_ns + rep.copy_ns + rep.remap_ns) / 1e6,
            .park_ms = rep.park_ns / 1e6,
            .copy_ms = rep.copy_ns / 1e6,
            .remap_ms = rep.remap_ns / 1e6,
            .children_ms = (t2 - t0) / 1000.0,
            .pages_copied = rep.pages_copied,
            .pages_precopied = rep.pages_precopied,
            .precopy_ms = rep.precopy_ns / 1e6,
        };
    g_debug("clone of %s: children made in %.1f ms, save %.1f ms", src->name,
            (t_save - t0) / 1000.0, (t_saved - t_save) / 1000.0);
    sp_clone_layout_free(kl);
    sp_proto_msg_clear(&rep_msg);
    memcpy(out, kids, n * sizeof(*kids));
    return true;

fail:
    if (held)
        sp_engine_vm_release(src->engine, src->shvm);
    if (layers_held)
        sp_engine_layers_hold(src->engine, false);
    sp_clone_layout_free(kl);
    sp_proto_msg_clear(&rep_msg);
    for (uint32_t i = 0; i < n; i++)
        sp_vm_free(kids[i]);
    g_prefix_error(error, "cannot clone VM '%s': ", src->name);
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
