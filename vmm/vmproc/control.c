/* SPDX-License-Identifier: MIT */
/*
 * control.c - the VM process's side of the control channel: one handler
 * per request (proto.h lists them), on the main thread.
 *
 * Every request gets exactly one reply; a request that cannot be done
 * gets an error reply with a one-line reason, and the VM goes on.  Clone
 * requests are in clone.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rmap/clone-layout.h"
#include "vmm/vmproc/sandbox.h"
#include "vmm/vmproc/vmproc.h"

static void put_result(gpointer key, gpointer value, gpointer opaque)
{
    SpProtoWriter *w = opaque;
    uint64_t v = *(uint64_t *)value;
    uint8_t l = (uint8_t)MIN(strlen(key), 64);
    sp_proto_put(w, &v, 8);
    sp_proto_put(w, &l, 1);
    sp_proto_put(w, key, l);
}

void sp_vmproc_status(SpVmProc *p, SpProtoWriter *w)
{
    SpProtoStatus st = {0};
    g_autoptr(GHashTable) results = NULL;
    g_autofree char *reason = NULL;
    if (p->m) {
        SpVmInfo info;
        sp_machine_get_info(p->m, &info);
        SpGuestMem *mem = sp_machine_mem(p->m);
        st = (SpProtoStatus){
            .state = info.state,
            .exit_status = info.exit_status,
            .rounds = info.rounds,
            .pages_verified = info.pages_verified,
            .pages_rewritten = info.pages_rewritten,
            .integrity_errors = info.integrity_errors,
            .phase = info.phase,
            .run_ns = (uint64_t)(info.seconds * 1e9),
            .cpu_ns = sp_machine_cpu_time_ns(p->m),
            .command = sp_machine_command_word(p->m),
            .clone_generation = sp_machine_clone_generation(p->m),
            .clone_id = sp_machine_clone_id(p->m),
            .ram_base = (uint64_t)(uintptr_t)mem->host,
            .ram_size = mem->size,
            .resident_pages = sp_guest_mem_resident_pages(mem),
            .suspended = sp_machine_suspended(p->m),
        };
        results = sp_machine_results(p->m);
        reason = sp_machine_get_reason(p->m);
    }
    /* Results that do not fit one message are left out (a guest could
     * report thousands of keys). */
    g_autoptr(GByteArray) rb = g_byte_array_new();
    SpProtoWriter rw = {.buf = rb};
    if (results)
        g_hash_table_foreach(results, put_result, &rw);
    st.nresults = results ? g_hash_table_size(results) : 0;
    if (rb->len > SP_PROTO_MAX_MSG / 2) {
        g_byte_array_set_size(rb, 0);
        st.nresults = 0;
    }
    size_t rl = reason ? MIN(strlen(reason), 2048) : 0;
    st.reason_len = (uint32_t)rl;
    sp_proto_put(w, &st, sizeof(st));
    sp_proto_put(w, rb->data, rb->len);
    if (rl)
        sp_proto_put(w, reason, rl);
}

void sp_vmproc_reply(SpVmProc *p, SpProtoMsg *req, const void *payload, uint32_t len,
                     const int *fds, uint32_t nfds)
{
    g_mutex_lock(&p->send_lock);
    if (p->control >= 0)
        sp_proto_reply(p->control, &req->hdr, payload, len, fds, nfds, NULL);
    g_mutex_unlock(&p->send_lock);
}

static void reply_ok(SpVmProc *p, SpProtoMsg *req, const void *payload, uint32_t len)
{
    sp_vmproc_reply(p, req, payload, len, NULL, 0);
}

void sp_vmproc_reply_error(SpVmProc *p, SpProtoMsg *req, const GError *err)
{
    g_mutex_lock(&p->send_lock);
    if (p->control >= 0)
        sp_proto_reply_error(p->control, &req->hdr, err->message);
    g_mutex_unlock(&p->send_lock);
}

static void do_status(SpVmProc *p, SpProtoMsg *req)
{
    g_autoptr(GByteArray) buf = g_byte_array_new();
    SpProtoWriter w = {.buf = buf};
    sp_vmproc_status(p, &w);
    reply_ok(p, req, buf->data, buf->len);
}

static void do_command(SpVmProc *p, SpProtoMsg *req)
{
    uint32_t op = 0, arg = 0;
    SpProtoReader r = sp_proto_reader(req);
    sp_proto_read(&r, &op, 4);
    sp_proto_read(&r, &arg, 4);
    uint32_t seq = sp_machine_send_command(p->m, (uint8_t)op, arg);
    reply_ok(p, req, &seq, sizeof(seq));
}

/* Tests (--test-hooks): make this VM process do what a compromised one
 * would, to see that it dies alone. */
static void do_test_hook(SpVmProc *p, SpProtoMsg *req)
{
    uint32_t hook = 0;
    SpProtoReader r = sp_proto_reader(req);
    sp_proto_read(&r, &hook, 4);
    if (!p->test_hooks) {
        g_autoptr(GError) e =
            g_error_new(SP_PROTO_ERROR, SP_PROTO_ERR_REMOTE, "test hooks are off in this VM");
        sp_vmproc_reply_error(p, req, e);
        return;
    }
    reply_ok(p, req, NULL, 0);
    if (hook == SP_VMPROC_HOOK_DEAF_STOP) {
        p->deaf_stop = true;
    } else if (hook == SP_VMPROC_HOOK_OPEN) {
        /* Opening fails (EACCES, sandbox.c); were it to succeed, this
         * process would abort rather than die of the filter, and the test
         * would see the wrong reason.  Then a call outside the filter: the
         * kernel kills this process (SIGSYS). */
        const char *path = "/proc/1/mem";
        int fd = open(path, O_RDONLY);
        if (fd >= 0 || errno != EACCES) {
            g_printerr("samepage-vm: test hook: open(%s) gave %d (%s)\n", path, fd,
                       g_strerror(errno));
            abort();
        }
        syscall(SYS_ptrace, PTRACE_ATTACH, 1L, 0L, 0L);
        g_printerr("samepage-vm: test hook: ptrace survived the filter\n");
        abort();
    } else if (hook == SP_VMPROC_HOOK_CRASH) {
        *(volatile int *)NULL = 1;
    } else {
        /* Raw packets, past the encoder's own checks. */
        static uint8_t big[SP_PROTO_MAX_MSG + 512];
        SpProtoHdr h = {.magic = SP_PROTO_MAGIC,
                        .version = SP_PROTO_VERSION,
                        .type = SP_PROTO_EV_CONSOLE,
                        .len = 4};
        size_t n = sizeof(h) + 4;
        if (hook == SP_VMPROC_HOOK_BAD_VERSION)
            h.version = 99;
        else if (hook == SP_VMPROC_HOOK_OVERSIZED)
            n = sizeof(big), h.len = (uint32_t)(n - sizeof(h));
        else if (hook == SP_VMPROC_HOOK_TRUNCATED)
            n = 10;
        else if (hook == SP_VMPROC_HOOK_BAD_LENGTH)
            h.len = 1000;
        memcpy(big, &h, sizeof(h));
        g_mutex_lock(&p->send_lock);
        if (p->control >= 0 && send(p->control, big, n, MSG_NOSIGNAL) < 0)
            g_warning("event=test-hook-send-failed error=\"%s\"", g_strerror(errno));
        g_mutex_unlock(&p->send_lock);
    }
}

/* The clone layout, for a re-attaching supervisor: one group file per
 * request (the supervisor finds or rebuilds its groups from them), or the
 * off bits and the layer blob. */
static void do_layout(SpVmProc *p, SpProtoMsg *req)
{
    uint32_t i = 0;
    SpProtoReader r = sp_proto_reader(req);
    sp_proto_read(&r, &i, 4);
    SpRmapVm *rv = sp_machine_rmap(p->m);
    SpCloneGroup *groups[SP_CLONE_LAYOUT_MAX_LAYERS];
    uint32_t n = sp_rmap_vm_groups(rv, groups, G_N_ELEMENTS(groups));
    int fds[2] = {-1, -1};
    uint32_t nfds = 0;
    g_autoptr(GError) err = NULL;
    if (i == SP_PROTO_LAYOUT_BITS) {
        fds[nfds++] = sp_rmap_vm_off_fd(rv);
        if (n > 1) {
            fds[nfds] = sp_proto_blob_new(sp_rmap_vm_layers(rv),
                                          sp_machine_mem(p->m)->size / SP_PAGE_SIZE, &err);
            if (fds[nfds] >= 0)
                nfds++;
        }
    } else if (i < n) {
        fds[nfds++] = sp_clone_group_fd(groups[i]);
    }
    if (err || (i != SP_PROTO_LAYOUT_BITS && i >= n) || (nfds && fds[nfds - 1] < 0)) {
        if (!err)
            err = g_error_new(SP_PROTO_ERROR, SP_PROTO_ERR_MALFORMED, "no layer %u", i);
        sp_vmproc_reply_error(p, req, err);
        return;
    }
    sp_vmproc_reply(p, req, &n, 4, fds, nfds);
    if (i == SP_PROTO_LAYOUT_BITS && nfds > 1)
        close(fds[1]);
}

static void do_identity(SpVmProc *p, SpProtoMsg *req)
{
    SpProtoIdentity id;
    SpProtoReader r = sp_proto_reader(req);
    sp_proto_read(&r, &id, sizeof(id));
    p->lv_id = id.lv_id;
    memcpy(p->uuid, id.uuid, 16);
    int fd = sp_proto_msg_take_fd(req, 0);
    if (fd >= 0) {
        FILE *f = fdopen(fd, "a");
        if (!f)
            close(fd);
        g_mutex_lock(&p->console_lock);
        if (p->console)
            fclose(p->console);
        p->console = f;
        g_mutex_unlock(&p->console_lock);
    }
    reply_ok(p, req, NULL, 0);
}

static void do_simple(SpVmProc *p, SpProtoMsg *req)
{
    g_autoptr(GError) err = NULL;
    bool ok = true;
    switch (req->hdr.type) {
    case SP_PROTO_START:
        ok = sp_machine_start(p->m, &err);
        break;
    case SP_PROTO_STOP:
        if (!p->deaf_stop)
            sp_machine_request_stop(p->m);
        break;
    case SP_PROTO_PAUSE:
        ok = sp_machine_suspend(p->m, &err);
        break;
    case SP_PROTO_RESUME:
        ok = sp_machine_unsuspend(p->m, &err);
        break;
    case SP_PROTO_SYNC:
        ok = sp_agent_sync(p->agent, &err);
        break;
    case SP_PROTO_QUIT:
        if (!p->ended)
            sp_machine_request_stop(p->m);
        p->quit = true;
        break;
    default:
        ok = false;
        err = g_error_new(SP_PROTO_ERROR, SP_PROTO_ERR_MALFORMED, "%s is not a control request",
                          sp_proto_type_name(req->hdr.type));
    }
    if (ok)
        reply_ok(p, req, NULL, 0);
    else
        sp_vmproc_reply_error(p, req, err);
}

void sp_vmproc_handle(SpVmProc *p, SpProtoMsg *req)
{
    if (req->hdr.flags & SP_PROTO_F_REPLY) {
        g_warning("event=protocol-error error=\"unexpected reply %s\"",
                  sp_proto_type_name(req->hdr.type));
        return;
    }
    switch (req->hdr.type) {
    case SP_PROTO_STATUS:
        do_status(p, req);
        break;
    case SP_PROTO_COMMAND:
        do_command(p, req);
        break;
    case SP_PROTO_TEST_HOOK:
        do_test_hook(p, req);
        break;
    case SP_PROTO_LAYOUT:
        do_layout(p, req);
        break;
    case SP_PROTO_IDENTITY:
        do_identity(p, req);
        break;
    case SP_PROTO_NUMA_SET:
    case SP_PROTO_NUMA_PAGES:
        sp_vmproc_numa(p, req);
        break;
    case SP_PROTO_CLONE_SAVE:
    case SP_PROTO_CLONE_GROUP:
    case SP_PROTO_CLONE_LOAD:
        sp_vmproc_clone(p, req);
        break;
    default:
        do_simple(p, req);
        break;
    }
}

int sp_vmproc_probe_open(SpVmProc *p, const char *path)
{
    g_autoptr(GError) err = NULL;
    if (!sp_sandbox_drop_privileges(p->uid, p->gid, &err)) {
        g_printerr("samepage-vm: %s\n", err->message);
        return 2;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        printf("opened %s\n", path);
        close(fd);
        return 0;
    }
    printf("denied %s: %s\n", path, g_strerror(errno));
    return 1;
}
