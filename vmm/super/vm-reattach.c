/* SPDX-License-Identifier: MIT */
/*
 * vm-reattach.c - a VM's entry in the supervisor's reverse map, for a VM
 * process it started or one it took over after a restart (vm.h).
 *
 * The entry reads the VM process's off bits from their memfd (read-only).
 * A new VM has no layout (a clone child gets one from vm-clone.c); a
 * re-attached VM tells its layout with LAYOUT requests: its group files,
 * oldest first, which the supervisor matches with the groups it knows (by
 * inode: the layers of re-attached VMs of one family are the same files)
 * or makes anew, with each one's parent the one under it, and the layer
 * of every page.
 *
 * Syncs of the entry (the reverse map asks for one before exact figures)
 * go to the VM process: through the engine when the VM is attached to it
 * (the agent also releases the frames of merged pages copied on write), on
 * the control channel otherwise.
 */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rmap/rmap.h"
#include "sharing/engine.h"
#include "vmm/super/vm-priv.h"

static bool rmap_sync(void *opaque, GError **error)
{
    SpVm *vm = opaque;
    if (vm->shvm)
        return sp_engine_vm_sync(vm->engine, vm->shvm, error);
    return sp_vm_request(vm, SP_PROTO_SYNC, NULL, 0, NULL, 0, 10.0, NULL, error);
}

bool sp_vm_rmap_setup(SpVm *vm, int off_fd, GError **error)
{
    uint64_t npages = vm->cfg->mem_size / SP_PAGE_SIZE;
    vm->rmap = sp_rmap_vm_new_remote(vm->id, vm->name, npages, off_fd, error);
    if (!vm->rmap)
        return false;
    sp_rmap_vm_set_remote(vm->rmap, vm->pid, vm->ram_base, rmap_sync, vm);
    return true;
}

/* LAYOUT(i): the reply's first descriptor (taken) and ngroups. */
static int layout_fd(SpVm *vm, uint32_t i, uint32_t *ngroups, int *second, GError **error)
{
    SpProtoMsg r = {0};
    if (!sp_vm_request(vm, SP_PROTO_LAYOUT, &i, 4, NULL, 0, 10.0, &r, error))
        return -1;
    SpProtoReader rd = sp_proto_reader(&r);
    sp_proto_read(&rd, ngroups, 4);
    int fd = sp_proto_msg_take_fd(&r, 0);
    if (second)
        *second = sp_proto_msg_take_fd(&r, 1);
    sp_proto_msg_clear(&r);
    if (fd < 0 || rd.bad || *ngroups > SP_CLONE_LAYOUT_MAX_LAYERS) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_REFUSED, "bad LAYOUT reply");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

bool sp_vm_rmap_reattach(SpVm *vm, GError **error)
{
    uint32_t n = 0;
    int blob = -1;
    int off_fd = layout_fd(vm, SP_PROTO_LAYOUT_BITS, &n, &blob, error);
    if (off_fd < 0)
        return false;
    bool ok = sp_vm_rmap_setup(vm, off_fd, error);
    close(off_fd);
    uint64_t npages = vm->cfg->mem_size / SP_PAGE_SIZE, blen = 0;
    void *layer = NULL;
    if (ok && n > 1) {
        layer = blob >= 0 ? sp_proto_blob_map(blob, npages, 0, &blen, error) : NULL;
        ok = layer != NULL;
        if (!layer && blob < 0)
            g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_REFUSED, "no layer blob");
    }
    SpCloneLayout *l = NULL;
    SpCloneGroup *parent = NULL;
    for (uint32_t i = 0; ok && i < n; i++) {
        uint32_t again = 0;
        int fd = layout_fd(vm, i, &again, NULL, error);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || (uint64_t)st.st_size != npages * SP_PAGE_SIZE) {
            if (fd >= 0) {
                close(fd);
                g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_REFUSED, "layer %u: wrong file", i);
            }
            ok = false;
            break;
        }
        SpCloneGroup *g = sp_clone_group_find_ino((uint64_t)st.st_ino);
        if (g)
            close(fd);
        else
            g = sp_clone_group_new(fd, npages, parent);
        if (!l)
            l = sp_clone_layout_new_flat(g, npages);
        else
            sp_clone_layout_add_group(l, g);
        sp_clone_group_unref(g);
        parent = sp_clone_layout_top(l);
    }
    if (ok && l && layer) {
        for (uint64_t p = 0; ok && p < npages; p++)
            ok = ((const uint8_t *)layer)[p] < l->groups->len;
        if (ok)
            memcpy(l->layer, layer, npages);
        else
            g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_REFUSED, "layer index out of range");
    }
    sp_proto_blob_unmap(layer, blen);
    if (blob >= 0)
        close(blob);
    if (!ok) {
        sp_clone_layout_free(l);
        return false;
    }
    if (l)
        sp_rmap_vm_adopt_layout(vm->rmap, l);
    vm->reattached = true;
    return true;
}
