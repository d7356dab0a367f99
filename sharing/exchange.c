/* SPDX-License-Identifier: MIT */
/*
 * exchange.c - the index's requests on a VM's memory channel, and what the
 * answers mean for the index (engine-priv.h).
 *
 * Trust: the VM process may be compromised (docs/process-model.md).  Every
 * answer is bounds-checked; a VM can only release references it holds
 * (fid_of says which frame each of its pages maps) and can only merge onto
 * frames the index offered it.  A VM whose channel fails, times out or
 * says something malformed is marked broken: the engine stops talking to
 * it and logs it once, and keeps its frame references until it detaches
 * (its pages may still map them; freeing them under it would show it
 * zeros).  A VM whose process the supervisor is killing (vm->going) is
 * marked broken quietly.
 *
 * An answer is waited for in slices of EXCHANGE_SLICE_MS: between them a
 * VM being killed is let go at once, and after SLOW_EXCHANGE_MS the
 * exchange counts in eng->slow_exchanges, so that readers of figures stop
 * waiting for the lock behind a VM process that does not answer (a
 * stopped or stuck one: up to EXCHANGE_TIMEOUT_MS, then it is broken).
 * (An answer takes milliseconds; under a sanitizer or in the emulated
 * host, tenths of a second: readers still wait for those, and get fresh
 * figures.)
 *
 * Engine lock held throughout.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "sharing/engine-priv.h"

#define EXCHANGE_TIMEOUT_MS 30000
#define EXCHANGE_SLICE_MS   100
#define SLOW_EXCHANGE_MS    2000

static void vm_broken(SpEngineVm *vm, const char *what, const GError *err)
{
    if (vm->broken)
        return;
    vm->broken = true;
    if (__atomic_load_n(&vm->going, __ATOMIC_ACQUIRE))
        return; /* quietly: its process is being killed (sp_engine_vm_going) */
    g_warning("event=engine-vm-lost vm=%s request=%s error=\"%s\" (no more sharing for it; its "
              "frames stay until it ends)",
              vm->name, what, err ? err->message : "malformed answer");
}

bool sh_send(SpEngine *eng, SpEngineVm *vm, uint16_t type, const void *payload, uint32_t len,
             const int *fds, uint32_t nfds, uint32_t *seq)
{
    (void)eng;
    if (__atomic_load_n(&vm->going, __ATOMIC_ACQUIRE))
        vm->broken = true; /* quietly (sp_engine_vm_going) */
    if (vm->broken)
        return false;
    g_autoptr(GError) err = NULL;
    static uint32_t counter;
    *seq = ++counter;
    if (!sp_proto_send(vm->channel, type, *seq, 0, payload, len, fds, nfds, 0, &err)) {
        vm_broken(vm, sp_proto_type_name(type), err);
        return false;
    }
    return true;
}

typedef enum { GOT, TIMED_OUT, FAILED } RecvEnd;

/* The next message on vm's channel within timeout_ms, in slices; a late
 * answer still owed (stale_seq) is dropped on the way. */
static RecvEnd recv_within(SpEngine *eng, SpEngineVm *vm, uint16_t type, int timeout_ms,
                           SpProtoMsg *m)
{
    gint64 t0 = g_get_monotonic_time(), until = t0 + (gint64)timeout_ms * 1000;
    bool slow = false;
    RecvEnd end;
    for (;;) {
        g_autoptr(GError) err = NULL;
        gint64 left_ms = (until - g_get_monotonic_time()) / 1000;
        if (sp_proto_recv(vm->channel, m, (int)CLAMP(left_ms, 0, EXCHANGE_SLICE_MS), &err)) {
            if (vm->stale_seq && (m->hdr.flags & SP_PROTO_F_REPLY) && m->hdr.seq == vm->stale_seq) {
                vm->stale_seq = 0;
                sp_proto_msg_clear(m);
                continue;
            }
            end = GOT;
            break;
        }
        if (!g_error_matches(err, SP_PROTO_ERROR, SP_PROTO_ERR_TIMEOUT)) {
            vm_broken(vm, sp_proto_type_name(type), err);
            end = FAILED;
            break;
        }
        if (__atomic_load_n(&vm->going, __ATOMIC_ACQUIRE)) {
            vm->broken = true; /* quietly (sp_engine_vm_going) */
            end = FAILED;
            break;
        }
        if (g_get_monotonic_time() >= until) {
            end = TIMED_OUT;
            break;
        }
        if (!slow && g_get_monotonic_time() - t0 >= SLOW_EXCHANGE_MS * 1000) {
            slow = true;
            g_atomic_int_inc(&eng->slow_exchanges);
        }
    }
    if (slow)
        g_atomic_int_add(&eng->slow_exchanges, -1);
    return end;
}

/* A message received: an error answer, or the reply to (type, seq)? */
static bool take_reply(SpEngineVm *vm, uint16_t type, uint32_t seq, SpProtoMsg *m,
                       SpProtoMsg *reply)
{
    g_autoptr(GError) err = NULL;
    if (sp_proto_is_error(m, &err)) {
        sp_proto_msg_clear(m);
        if (g_str_has_prefix(err->message, "the guest has ended")) {
            vm->broken = true; /* quietly: it is going, its frames with it */
            return false;
        }
        /* the agent refused (a merge race, a full table): not broken */
        g_debug("event=agent-refused vm=%s request=%s error=\"%s\"", vm->name,
                sp_proto_type_name(type), err->message);
        return false;
    }
    if (!(m->hdr.flags & SP_PROTO_F_REPLY) || m->hdr.type != type || m->hdr.seq != seq) {
        sp_proto_msg_clear(m);
        vm_broken(vm, sp_proto_type_name(type), NULL);
        return false;
    }
    if (reply)
        *reply = *m;
    else
        sp_proto_msg_clear(m);
    return true;
}

bool sh_recv(SpEngine *eng, SpEngineVm *vm, uint16_t type, uint32_t seq, SpProtoMsg *reply)
{
    if (vm->broken)
        return false;
    SpProtoMsg m;
    RecvEnd end = recv_within(eng, vm, type, EXCHANGE_TIMEOUT_MS, &m);
    if (end == TIMED_OUT) {
        g_autoptr(GError) err = g_error_new(SP_PROTO_ERROR, SP_PROTO_ERR_TIMEOUT,
                                            "no message within %d ms", EXCHANGE_TIMEOUT_MS);
        vm_broken(vm, sp_proto_type_name(type), err);
    }
    return end == GOT && take_reply(vm, type, seq, &m, reply);
}

bool sh_exchange_soft(SpEngine *eng, SpEngineVm *vm, uint16_t type, int timeout_ms,
                      SpProtoMsg *reply)
{
    uint32_t seq = 0;
    SpProtoMsg m;
    if (vm->stale_seq && !vm->broken && recv_within(eng, vm, type, 0, &m) == GOT)
        take_reply(vm, type, 0, &m, NULL); /* (anything but the late answer breaks it) */
    if (vm->stale_seq || !sh_send(eng, vm, type, NULL, 0, NULL, 0, &seq))
        return false; /* the late answer is still owed: its figures stay */
    RecvEnd end = recv_within(eng, vm, type, timeout_ms, &m);
    if (end == TIMED_OUT) {
        vm->stale_seq = seq;
        g_message("event=engine-vm-slow vm=%s request=%s (no answer within %d ms: its figures "
                  "stay as they were until it answers)",
                  vm->name, sp_proto_type_name(type), timeout_ms);
    }
    return end == GOT && take_reply(vm, type, seq, &m, reply);
}

bool sh_exchange(SpEngine *eng, SpEngineVm *vm, uint16_t type, const void *payload, uint32_t len,
                 const int *fds, uint32_t nfds, SpProtoMsg *reply)
{
    uint32_t seq = 0;
    return sh_send(eng, vm, type, payload, len, fds, nfds, &seq) &&
           sh_recv(eng, vm, type, seq, reply);
}

uint32_t sh_vm_frame_at(SpEngine *eng, SpEngineVm *vm, uint32_t space, uint32_t off)
{
    if (space >= vm->spaces->len)
        return NO_FRAME;
    ShSpace *sp = &g_array_index(vm->spaces, ShSpace, space);
    if (sp->pool != NO_SPACE) {
        ShPool *p = g_ptr_array_index(eng->pools, sp->pool);
        if (off >= p->fid_of_off->len)
            return NO_FRAME;
        uint32_t f = sh_vec_index(p->fid_of_off, uint32_t, off);
        return f ? f - 1 : NO_FRAME;
    }
    if (sp->rec)
        return sh_gframe_find(eng, sp->rec->grp, off);
    return NO_FRAME;
}

bool sh_apply_released(SpEngine *eng, SpEngineVm *vm, SpProtoMsg *reply)
{
    SpProtoReader rd = sp_proto_reader(reply);
    SpProtoReleased rel;
    if (!sp_proto_read(&rd, &rel, sizeof(rel)) || rel.n > vm->npages) {
        vm_broken(vm, "released", NULL);
        return false;
    }
    uint64_t blen = 0;
    const SpProtoFrameLoc *locs = NULL;
    void *blob = NULL;
    if (rel.blob) {
        if (reply->hdr.nfds != 1 ||
            !(blob = sp_proto_blob_map(reply->fds[0], (uint64_t)rel.n * sizeof(SpProtoFrameLoc), 0,
                                       &blen, NULL))) {
            vm_broken(vm, "released", NULL);
            return false;
        }
        locs = blob;
    } else {
        locs = sp_proto_read_array(&rd, rel.n, sizeof(SpProtoFrameLoc));
    }
    for (uint32_t i = 0; locs && i < rel.n; i++) {
        uint64_t g = locs[i].gfn;
        /* Only what the VM holds: its page must map that very frame. */
        if (g >= vm->npages || vm->fid_of[g] == NO_FRAME ||
            vm->fid_of[g] != sh_vm_frame_at(eng, vm, locs[i].space, locs[i].off))
            continue;
        sh_page_clear_merged(eng, vm, g);
        eng->scan_work++;
    }
    sp_proto_blob_unmap(blob, blen);
    sh_vm_set_zero(eng, vm, MIN(rel.zero_now, vm->npages));
    return true;
}

/* The VM's space id for a new file: the next one, told with M_SPACE. */
static uint32_t space_add(SpEngine *eng, SpEngineVm *vm, int fd, uint32_t kind, ShSpace sp)
{
    g_autofree char *path = g_strdup_printf("/proc/self/fd/%d", fd);
    int ro = open(path, O_RDONLY | O_CLOEXEC);
    if (ro < 0)
        return NO_SPACE;
    SpProtoSpace msg = {.space = vm->spaces->len, .kind = kind};
    bool ok =
        msg.space < 4096 && sh_exchange(eng, vm, SP_PROTO_M_SPACE, &msg, sizeof(msg), &ro, 1, NULL);
    close(ro);
    if (!ok)
        return NO_SPACE;
    g_array_append_val(vm->spaces, sp);
    return msg.space;
}

uint32_t sh_vm_space_pool(SpEngine *eng, SpEngineVm *vm, uint32_t pool)
{
    for (guint i = 0; i < vm->spaces->len; i++)
        if (g_array_index(vm->spaces, ShSpace, i).pool == pool)
            return i;
    ShPool *p = g_ptr_array_index(eng->pools, pool);
    if (p->group != vm->group)
        return NO_SPACE; /* never another share set's pool */
    return space_add(eng, vm, p->fp.fd, SP_PROTO_SPACE_POOL, (ShSpace){.pool = pool});
}

uint32_t sh_vm_space_grec(SpEngine *eng, SpEngineVm *vm, ShGroupRec *rec)
{
    for (guint i = 0; i < vm->spaces->len; i++)
        if (g_array_index(vm->spaces, ShSpace, i).rec == rec)
            return i;
    return space_add(eng, vm, rec->fd, SP_PROTO_SPACE_GROUP,
                     (ShSpace){.pool = NO_SPACE, .rec = rec});
}

/* Make the index agree with the VM's report (M_REPORT): drop every
 * reference the index holds for it, then take one per merged page it
 * reports.  With adopt_spaces (a re-attach) the VM's space ids are taken
 * as they are: pools and group files are found by their inode, or adopted
 * (frames of an adopted pool are indexed from their content). */
bool sh_vm_resync(SpEngine *eng, SpEngineVm *vm, bool adopt_spaces)
{
    SpProtoMsg r = {0};
    if (!sh_exchange(eng, vm, SP_PROTO_M_REPORT, NULL, 0, NULL, 0, &r))
        return false;
    bool ok = false;
    SpProtoReader rd = sp_proto_reader(&r);
    SpProtoReport rep;
    sp_proto_read(&rd, &rep, sizeof(rep));
    const SpProtoSpace *sps = sp_proto_read_array(&rd, rep.nspaces, sizeof(SpProtoSpace));
    uint64_t blen = 0;
    const SpProtoFrameLoc *locs = NULL;
    if (!sps || rep.nmerged > vm->npages || r.hdr.nfds != 1 + rep.nspaces)
        goto out;
    locs = sp_proto_blob_map(r.fds[0], rep.nmerged * sizeof(SpProtoFrameLoc), 0, &blen, NULL);
    if (!locs)
        goto out;
    if (adopt_spaces) {
        g_array_set_size(vm->spaces, 0);
        for (uint32_t i = 0; i < rep.nspaces; i++) {
            if (sps[i].space >= 4096)
                goto out;
            if (sps[i].space >= vm->spaces->len) {
                guint old = vm->spaces->len;
                g_array_set_size(vm->spaces, sps[i].space + 1);
                for (guint k = old; k < vm->spaces->len; k++)
                    g_array_index(vm->spaces, ShSpace, k) = (ShSpace){.pool = NO_SPACE};
            }
            ShSpace *sp = &g_array_index(vm->spaces, ShSpace, sps[i].space);
            int fd = r.fds[1 + i];
            sh_swap_adopt_space(eng, fd); /* its pages that were out, back first */
            if (sps[i].kind == SP_PROTO_SPACE_POOL) {
                sp->pool = sh_pool_adopt(eng, fd, vm->group);
            } else {
                g_mutex_unlock(&eng->lock); /* sh_grec_adopt takes rmap_lock */
                sp->rec = sh_grec_adopt(eng, fd);
                sh_engine_lock(eng);
            }
        }
    }
    for (uint64_t g = 0; g < vm->npages; g++)
        if (vm->fid_of[g] != NO_FRAME)
            sh_page_clear_merged(eng, vm, g);
    for (uint64_t i = 0; i < rep.nmerged; i++) {
        uint64_t g = locs[i].gfn;
        uint32_t fid =
            g < vm->npages ? sh_vm_frame_at(eng, vm, locs[i].space, locs[i].off) : NO_FRAME;
        if (fid == NO_FRAME && g < vm->npages && adopt_spaces && locs[i].space < vm->spaces->len) {
            ShSpace *sp = &g_array_index(vm->spaces, ShSpace, locs[i].space);
            if (sp->pool != NO_SPACE)
                fid = sh_pool_frame_adopt(eng, sp->pool, locs[i].off);
            else if (sp->rec)
                fid = sh_gframe_adopt(eng, sp->rec, locs[i].off);
        }
        if (fid != NO_FRAME && vm->fid_of[g] == NO_FRAME)
            sh_page_set_merged(eng, vm, g, fid);
    }
    vm->agent = rep.stats;
    sh_vm_set_zero(eng, vm, MIN(rep.stats.zero_pages, vm->npages));
    ok = true;
out:
    sp_proto_blob_unmap((void *)locs, blen);
    sp_proto_msg_clear(&r);
    if (!ok)
        g_warning("event=engine-resync-failed vm=%s", vm->name);
    return ok;
}
