/* SPDX-License-Identifier: MIT */
/*
 * clone.c - the VM process's side of cloning (the supervisor's side is
 * vmm/super/vm-clone.c; what a layer is: rmap/clone-layout.h).
 *
 * Source (CLONE_SAVE): the machine pauses, saves its vCPUs, makes the new
 * layer file and resumes (sp_machine_clone_save); the reply carries the
 * vCPU state and the layer to the supervisor, which hands them to the
 * children.  The agent lock is held meanwhile: no merge may change RAM
 * while it is copied, and a source whose RAM is replaced by the layer
 * forgets its merges (the index re-reads them with M_REPORT).
 *
 * Child (CLONE_GROUP..., CLONE_LOAD): collect the layout's group files,
 * then map them and load the vCPU state (sp_machine_clone_load).  The
 * child was made unbooted and starts with START.
 */
#include <string.h>
#include <unistd.h>

#include "rmap/clone-layout.h"
#include "vmm/vmproc/vmproc.h"

static void save(SpVmProc *p, SpProtoMsg *req)
{
    g_autoptr(GError) err = NULL;
    SpMachineCloneSave out = {.group_fd = -1};
    sp_agent_lock(p->agent);
    sp_agent_swap_drain(p->agent); /* a layer is a copy of what is resident */
    bool ok = sp_machine_clone_save(p->m, p->agent, &out, &err);
    sp_agent_unlock(p->agent);
    if (!ok) {
        sp_vmproc_reply_error(p, req, err);
        return;
    }
    SpProtoCloneSave rep = {
        .layered = out.layer != NULL,
        .nvcpus = out.nvcpus,
        .vcpu_state_len = out.vcpu_state_len,
        .pages_copied = out.pages_copied,
        .pages_precopied = out.pages_precopied,
        .park_ns = out.park_ns,
        .copy_ns = out.copy_ns,
        .remap_ns = out.remap_ns,
        .precopy_ns = out.precopy_ns,
        .command = sp_machine_command_word(p->m),
    };
    int fds[3] = {-1, out.group_fd, -1};
    uint32_t nfds = 2;
    fds[0] = sp_proto_blob_new(out.vcpu_state, (uint64_t)out.nvcpus * out.vcpu_state_len, &err);
    if (fds[0] >= 0 && out.layer)
        fds[nfds++] = sp_proto_blob_new(out.layer, out.npages, &err);
    if (fds[0] < 0 || (out.layer && fds[2] < 0)) {
        sp_vmproc_reply_error(p, req, err);
    } else {
        sp_vmproc_reply(p, req, &rep, sizeof(rep), fds, nfds);
    }
    for (uint32_t i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    sp_machine_clone_save_clear(&out);
}

/* Group files received so far for a CLONE_LOAD, by layer. */
static GArray *pending_groups(void)
{
    static GArray *fds;
    if (!fds)
        fds = g_array_new(FALSE, FALSE, sizeof(int));
    return fds;
}

static void reset_groups(void)
{
    GArray *fds = pending_groups();
    for (guint i = 0; i < fds->len; i++)
        if (g_array_index(fds, int, i) >= 0)
            close(g_array_index(fds, int, i));
    g_array_set_size(fds, 0);
}

static void group(SpVmProc *p, SpProtoMsg *req)
{
    uint32_t index = 0;
    SpProtoReader r = sp_proto_reader(req);
    sp_proto_read(&r, &index, 4);
    GArray *fds = pending_groups();
    if (index != fds->len || index >= SP_CLONE_LAYOUT_MAX_LAYERS) {
        g_autoptr(GError) e =
            g_error_new(SP_PROTO_ERROR, SP_PROTO_ERR_MALFORMED, "layer %u out of order", index);
        reset_groups();
        sp_vmproc_reply_error(p, req, e);
        return;
    }
    int fd = sp_proto_msg_take_fd(req, 0);
    g_array_append_val(fds, fd);
    sp_vmproc_reply(p, req, NULL, 0, NULL, 0);
}

static void load(SpVmProc *p, SpProtoMsg *req)
{
    g_autoptr(GError) err = NULL;
    SpProtoCloneLoad ld;
    SpProtoReader r = sp_proto_reader(req);
    sp_proto_read(&r, &ld, sizeof(ld));
    GArray *fds = pending_groups();
    uint64_t npages = sp_machine_mem(p->m)->size / SP_PAGE_SIZE;
    uint64_t vlen = 0, llen = 0;
    void *vcpus = NULL, *layer = NULL;
    bool ok = false;
    if (ld.ngroups != fds->len || ld.ngroups == 0 || ld.nvcpus == 0 || ld.vcpu_state_len == 0 ||
        ld.vcpu_state_len > (1u << 20) || (ld.ngroups > 1) != (req->hdr.nfds == 2)) {
        err = g_error_new(SP_PROTO_ERROR, SP_PROTO_ERR_MALFORMED, "inconsistent CLONE_LOAD");
        goto out;
    }
    vcpus = sp_proto_blob_map(req->fds[0], (uint64_t)ld.nvcpus * ld.vcpu_state_len, 0, &vlen, &err);
    if (!vcpus)
        goto out;
    if (ld.ngroups > 1 && !(layer = sp_proto_blob_map(req->fds[1], npages, 0, &llen, &err)))
        goto out;
    SpMachineCloneLoad in = {
        .group_fds = (int *)fds->data,
        .ngroups = ld.ngroups,
        .layer = layer,
        .vcpu_state = vcpus,
        .nvcpus = ld.nvcpus,
        .vcpu_state_len = ld.vcpu_state_len,
        .command = ld.command,
        .clone_generation = ld.clone_generation,
        .clone_id = ld.clone_id,
    };
    ok = sp_machine_clone_load(p->m, &in, &err); /* takes the group fds */
    g_array_set_size(fds, 0);
out:
    sp_proto_blob_unmap(vcpus, vlen);
    sp_proto_blob_unmap(layer, llen);
    reset_groups();
    if (!ok) {
        sp_vmproc_reply_error(p, req, err);
        return;
    }
    sp_vmproc_reply(p, req, NULL, 0, NULL, 0);
}

void sp_vmproc_clone(SpVmProc *p, SpProtoMsg *req)
{
    switch (req->hdr.type) {
    case SP_PROTO_CLONE_SAVE:
        save(p, req);
        break;
    case SP_PROTO_CLONE_GROUP:
        group(p, req);
        break;
    default:
        load(p, req);
        break;
    }
}
