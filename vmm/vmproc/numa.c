/* SPDX-License-Identifier: MIT */
/*
 * numa.c - the VM process's side of NUMA placement while the VM runs
 * (docs/numa.md): NUMA_SET moves guest RAM to a new policy, NUMA_PAGES
 * counts guest RAM's resident pages per host node, as the kernel sees them.
 *
 * A move takes as long as copying the pages does (about 1 GiB/s), so it
 * runs on a thread of its own and replies from there: the main thread
 * keeps serving the supervisor (status, stop) meanwhile.  One move at a
 * time (`moving`, atomic); a second request is refused with a message.
 * The order inside a move: the process policy first (the vCPUs pick it up
 * on their next entry, after a kick, so a copy-on-write break during the
 * move already lands on the new nodes), then guest RAM in batches
 * (vm-placement.h), each under the agent's lock (move_guest_ram: only
 * anonymous stretches get an mbind).  cfg's numa fields are the main thread's: NUMA_PAGES
 * and STATUS read nothing of them.  The reply to NUMA_SET is the number of
 * pages that moved: resident on another node before, on one of the new
 * nodes after (u64).
 */
#include <string.h>

#include "vmm/id-list.h"
#include "vmm/vm-placement.h"
#include "vmm/vmproc/vmproc.h"

static int moving; /* atomic: a move is under way */

typedef struct {
    SpVmProc *p;
    SpProtoMsg req; /* only the header is used: the reply's seq */
    SpNumaMode mode;
    char *nodes;
} NumaMove;

/* The nodes of a node list as a mask (nodes < 64: SP_PROTO_NUMA_NODES). */
static bool node_mask(const char *nodes, guint64 *mask, GError **error)
{
    g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(guint));
    if (!sp_id_list_parse(nodes, SP_PROTO_NUMA_NODES, ids, error))
        return false;
    *mask = 0;
    for (guint i = 0; i < ids->len; i++)
        *mask |= 1ULL << g_array_index(ids, guint, i);
    return true;
}

/* Guest RAM to the new policy, SP_NUMA_MOVE_BATCH bytes at a time, each
 * batch under the agent's lock, so no merge changes its mappings
 * meanwhile: anonymous stretches get the policy with mbind (their pages
 * move with it); stretches that map a file - merged pages map samepaged's
 * pool frames, a clone's RAM its family's layer file - only have the pages
 * this VM alone maps moved (move_pages): mbind there would set the policy
 * of the file itself, where samepaged allocates frames for every VM. */
static bool move_guest_ram(NumaMove *mv, SpGuestMem *mem, GError **error)
{
    SpAgent *agent = mv->p->agent;
    if (!agent)
        return sp_numa_move_range(mv->mode, mv->nodes, mem->host, mem->size, error);
    uint64_t npages = mem->size / SP_PAGE_SIZE, batch = SP_NUMA_MOVE_BATCH / SP_PAGE_SIZE;
    g_autofree void **filed = g_new(void *, batch); /* a batch's pages in file mappings */
    bool ok = true;
    for (uint64_t g = 0; ok && g < npages; g += batch) {
        uint64_t end = MIN(npages, g + batch), nfiled = 0;
        sp_agent_lock(agent);
        for (uint64_t s = g, n; ok && s < end; s += n) {
            bool anon;
            n = sp_agent_map_run_locked(agent, s, end - s, &anon);
            uint8_t *addr = mem->host + s * SP_PAGE_SIZE;
            if (anon)
                ok = sp_numa_apply_range(mv->mode, mv->nodes, addr, n * SP_PAGE_SIZE, error);
            else
                for (uint64_t i = 0; i < n; i++)
                    filed[nfiled++] = addr + i * SP_PAGE_SIZE;
        }
        ok = ok && sp_numa_move_pages(mv->mode, mv->nodes, filed, nfiled, error);
        sp_agent_unlock(agent);
    }
    return ok;
}

static gpointer move_thread(gpointer opaque)
{
    NumaMove *mv = opaque;
    g_autoptr(GError) err = NULL;
    SpGuestMem *mem = sp_machine_mem(mv->p->m);
    gint64 t0 = g_get_monotonic_time();
    size_t npages = mem->size / SP_PAGE_SIZE;
    g_autofree int *before = g_new(int, npages);
    g_autofree int *after = g_new(int, npages);
    guint64 mask = 0;
    bool ok = node_mask(mv->nodes, &mask, &err) &&
              sp_numa_set_process_policy(mv->mode, mv->nodes, &err) &&
              sp_numa_page_nodes(mem->host, mem->size, before, &err);
    if (ok) {
        sp_machine_kick_all(mv->p->m);
        ok = move_guest_ram(mv, mem, &err) && sp_numa_page_nodes(mem->host, mem->size, after, &err);
    }
    if (ok) {
        /* moved: resident on another node before, on one of the new ones after */
        uint64_t moved = 0;
        for (size_t i = 0; i < npages; i++)
            moved += before[i] >= 0 && before[i] < 64 && !(mask >> before[i] & 1) &&
                     after[i] >= 0 && after[i] < 64 && (mask >> after[i] & 1);
        g_message("event=numa-moved vm=%s numa=%s:%s pages=%" G_GUINT64_FORMAT " seconds=%.3f",
                  mv->p->name, sp_numa_mode_name(mv->mode), mv->nodes, moved,
                  (g_get_monotonic_time() - t0) / 1e6);
        sp_vmproc_reply(mv->p, &mv->req, &moved, 8, NULL, 0);
    } else {
        sp_vmproc_reply_error(mv->p, &mv->req, err);
    }
    __atomic_store_n(&moving, 0, __ATOMIC_RELEASE);
    g_free(mv->nodes);
    g_free(mv);
    return NULL;
}

static void do_set(SpVmProc *p, SpProtoMsg *req)
{
    uint32_t mode = 0;
    g_autoptr(GError) err = NULL;
    SpProtoReader r = sp_proto_reader(req);
    sp_proto_read(&r, &mode, 4);
    g_autofree char *nodes = sp_proto_read_text(&r, r.left);
    if (r.bad || !nodes || mode == SP_NUMA_DEFAULT || !sp_numa_mode_name((SpNumaMode)mode)) {
        err = g_error_new(SP_PROTO_ERROR, SP_PROTO_ERR_MALFORMED, "bad NUMA_SET request");
    } else if (!sp_numa_nodes_check(nodes, &err)) {
        /* err says which node */
    } else if (__atomic_exchange_n(&moving, 1, __ATOMIC_ACQ_REL)) {
        err = g_error_new(SP_PROTO_ERROR, SP_PROTO_ERR_REMOTE,
                          "a NUMA move of this VM is already under way");
    }
    if (err) {
        sp_vmproc_reply_error(p, req, err);
        return;
    }
    NumaMove *mv = g_new0(NumaMove, 1);
    mv->p = p;
    mv->req.hdr = req->hdr;
    mv->mode = (SpNumaMode)mode;
    mv->nodes = g_steal_pointer(&nodes);
    GThread *t = g_thread_try_new("numa-move", move_thread, mv, &err);
    if (!t) {
        __atomic_store_n(&moving, 0, __ATOMIC_RELEASE);
        g_free(mv->nodes);
        g_free(mv);
        sp_vmproc_reply_error(p, req, err);
        return;
    }
    g_thread_unref(t);
}

static void do_pages(SpVmProc *p, SpProtoMsg *req)
{
    g_autoptr(GError) err = NULL;
    SpGuestMem *mem = sp_machine_mem(p->m);
    guint64 pages[SP_PROTO_NUMA_NODES], elsewhere = 0;
    if (!sp_numa_resident_pages(mem->host, mem->size, pages, SP_PROTO_NUMA_NODES, &elsewhere,
                                &err)) {
        sp_vmproc_reply_error(p, req, err);
        return;
    }
    g_autoptr(GByteArray) b = g_byte_array_new();
    uint32_t n = SP_PROTO_NUMA_NODES;
    g_byte_array_append(b, (const guint8 *)&n, 4);
    g_byte_array_append(b, (const guint8 *)pages, sizeof(pages));
    g_byte_array_append(b, (const guint8 *)&elsewhere, 8);
    sp_vmproc_reply(p, req, b->data, b->len, NULL, 0);
}

void sp_vmproc_numa(SpVmProc *p, SpProtoMsg *req)
{
    if (!p->m) {
        g_autoptr(GError) err =
            g_error_new(SP_PROTO_ERROR, SP_PROTO_ERR_REMOTE, "the VM is not built yet");
        sp_vmproc_reply_error(p, req, err);
    } else if (req->hdr.type == SP_PROTO_NUMA_SET) {
        do_set(p, req);
    } else {
        do_pages(p, req);
    }
}
