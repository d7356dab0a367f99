/* SPDX-License-Identifier: MIT */
/*
 * numa-rehome.c - shared frames follow their sharers between host NUMA
 * nodes (docs/numa.md).
 *
 * With one frame per content host-wide (KSM's merge_across_nodes=1), a
 * frame belongs on the node where most of the guest pages that map it
 * want their memory.  After a VM moved (a live NUMA change), the
 * supervisor asks for a pass: for every pool frame in use, each guest
 * page mapping it votes for the nodes of its VM's policy (the caller's
 * vm_nodes; a VM without a policy does not vote); a frame on a node that
 * fewer pages want than another node, which more than half of its pages
 * want, is moved there with move_pages(MPOL_MF_MOVE_ALL) on the pool's
 * view.  The kernel moves the page of the memfd, so every VM process that
 * maps it follows at once: nothing is copied, nothing unshared, and a
 * guest that touches the page during the move waits on the kernel's
 * migration entry.  A frame the kernel cannot move (busy, or the node is
 * full) stays where it is and is counted misplaced until a later pass.
 *
 * Every pool frame in use is queried, so a pass also says how many sit on
 * each node (numa_frames_on).  Frames of a node's pool (merge_across_nodes=0) belong to their node
 * and are not moved: a VM that moved away from a node instead leaves that node's frames
 * (sp_engine_numa_split): its pages that map them get private copies, allocated on its new nodes,
 * and the next passes merge them into those nodes' own index - KSM's "never merge across nodes"
 * kept after the move, and nothing unshared that stayed on its node.  Frames of clone groups are
 * not moved here (their pages belong to the family's layer file); nodes >= REHOME_NODES are not
 * voted for.
 *
 * Locking: eng->lock while the frames, their mappers and the VMs are read
 * (the vote); the kernel's queries and moves run without it.  A frame
 * freed meanwhile is no longer resident (the query says so) and is
 * skipped; one reused meanwhile for another content may land on the node
 * the old one wanted, which costs placement, never data.
 */
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sharing/engine-priv.h"

#define REHOME_NODES     8 /* nodes voted for (of 64 a policy can name) */
#define QUERY_BATCH      1024
#define MPOL_MF_MOVE_ALL (1 << 2) /* <numaif.h>'s, without linking libnuma here */

static long move_pages(unsigned long count, void **pages, const int *nodes, int *status, int flags)
{
    return syscall(SYS_move_pages, 0, count, pages, nodes, status, flags);
}

typedef struct {
    uint8_t *addr; /* the frame in its pool's view */
    uint16_t votes[REHOME_NODES];
    uint32_t total; /* pages that map it */
} Vote;

/* Count, under eng->lock, who wants each frame where. */
static GArray *collect_votes(SpEngine *eng, SpEngineVmNodes vm_nodes, void *opaque)
{
    GArray *out = g_array_new(FALSE, TRUE, sizeof(Vote));
    g_autofree uint64_t *mask_of_slot = g_new0(uint64_t, eng->nslots + 1);
    for (uint32_t s = 0; s < eng->nslots; s++)
        if (eng->vm_slots[s])
            mask_of_slot[s] = vm_nodes(eng->vm_slots[s]->id, opaque);
    for (guint fid = 0; fid < eng->frames->len; fid++) {
        const ShFrame *f = &sh_vec_index(eng->frames, ShFrame, fid);
        ShMappers m = sh_mappers(eng, fid);
        if (!f->refs || !m.n || f->pool >= eng->pools->len ||
            ((ShPool *)eng->pools->pdata[f->pool])->node >= 0)
            continue; /* free, or a node's own frame (merge_across_nodes=0): it stays */
        Vote v = {.addr = ((ShPool *)eng->pools->pdata[f->pool])->fp.view +
                          (uint64_t)f->off * SP_PAGE_SIZE};
        bool any = false;
        for (uint32_t i = 0; i < m.n; i++) {
            uint64_t slot = sh_mappers_at(&m, i) >> 40;
            uint64_t mask = slot < eng->nslots ? mask_of_slot[slot] : 0;
            v.total++;
            for (int n = 0; n < REHOME_NODES; n++)
                if (mask >> n & 1) {
                    v.votes[n] = (uint16_t)MIN(v.votes[n] + 1u, UINT16_MAX);
                    any = true;
                }
        }
        (void)any; /* a frame nobody votes for stays, but is counted where it is */
        g_array_append_val(out, v);
    }
    return out;
}

/* The node a frame on node `now` should move to, or -1 to stay. */
static int wanted_node(const Vote *v, int now)
{
    int best = -1;
    for (int n = 0; n < REHOME_NODES; n++)
        if (best < 0 || v->votes[n] > v->votes[best])
            best = n;
    unsigned here = now >= 0 && now < REHOME_NODES ? v->votes[now] : 0;
    if (best < 0 || best == now || v->votes[best] <= here || 2u * v->votes[best] <= v->total)
        return -1;
    return best;
}

bool sp_engine_numa_rehome(SpEngine *eng, SpEngineVmNodes vm_nodes, void *opaque,
                           SpEngineRehome *out, GError **error)
{
    *out = (SpEngineRehome){0};
    sh_engine_lock(eng);
    g_autoptr(GArray) votes = collect_votes(eng, vm_nodes, opaque);
    g_mutex_unlock(&eng->lock);
    void *pages[QUERY_BATCH];
    int nodes[QUERY_BATCH], status[QUERY_BATCH], from[QUERY_BATCH];
    uint64_t on_node[SP_ENGINE_NODES] = {0}; /* frames per node, as the kernel has them */
    for (guint first = 0; first < votes->len; first += QUERY_BATCH) {
        guint n = MIN((guint)QUERY_BATCH, votes->len - first), k = 0;
        for (guint i = 0; i < n; i++)
            pages[i] = g_array_index(votes, Vote, first + i).addr;
        if (move_pages(n, pages, NULL, status, 0) < 0) {
            int e = errno;
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e),
                        "move_pages (query) of the frame pool: %s", g_strerror(e));
            return false;
        }
        out->frames_checked += n;
        for (guint i = 0; i < n; i++)
            if (status[i] >= 0 && status[i] < SP_ENGINE_NODES)
                on_node[status[i]]++;
        /* the ones to move, packed to the front */
        for (guint i = 0; i < n; i++) {
            int to =
                status[i] < 0 ? -1 : wanted_node(&g_array_index(votes, Vote, first + i), status[i]);
            if (to < 0)
                continue;
            pages[k] = pages[i];
            from[k] = status[i];
            nodes[k++] = to;
        }
        if (!k)
            continue;
        if (move_pages(k, pages, nodes, status, MPOL_MF_MOVE_ALL) < 0) {
            int e = errno;
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e),
                        "move_pages of %u shared frames: %s", k, g_strerror(e));
            return false;
        }
        for (guint i = 0; i < k; i++) {
            if (status[i] == nodes[i]) {
                out->frames_moved++;
                if (from[i] < SP_ENGINE_NODES)
                    on_node[from[i]]--;
                if (nodes[i] < SP_ENGINE_NODES)
                    on_node[nodes[i]]++;
            } else {
                out->frames_misplaced++;
            }
        }
    }
    sh_engine_lock(eng);
    eng->stats.numa_frames_rehomed += out->frames_moved;
    eng->stats.numa_frames_misplaced = out->frames_misplaced;
    memcpy(eng->stats.numa_frames_on, on_node, sizeof(on_node));
    g_mutex_unlock(&eng->lock);
    return true;
}

/* --- merge_across_nodes=0: split a moved VM off other nodes' frames --- */

bool sp_engine_numa_split(SpEngine *eng, SpEngineVm *vm, uint64_t nodes, uint64_t *split,
                          GError **error)
{
    *split = 0;
    if (!vm || !nodes)
        return true;
    sh_engine_lock(eng);
    g_autoptr(GArray) gfns = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    for (uint64_t g = 0; g < vm->npages; g++) {
        uint32_t fid = vm->fid_of[g];
        if (fid == NO_FRAME || sh_is_gframe(fid))
            continue;
        int n = sh_frame_node(eng, fid);
        if (n >= 0 && n < 64 && !(nodes >> n & 1))
            g_array_append_val(gfns, g);
    }
    const size_t per_msg = (SP_PROTO_MAX_MSG - sizeof(SpProtoHdr)) / 8;
    bool ok = true;
    uint64_t before = vm->merged;
    for (guint done = 0; ok && done < gfns->len;) {
        guint n = (guint)MIN(per_msg, gfns->len - done);
        SpProtoMsg r = {0};
        ok = !vm->broken &&
             sh_exchange(eng, vm, SP_PROTO_M_UNMERGE, &g_array_index(gfns, uint64_t, done), n * 8,
                         NULL, 0, &r) &&
             sh_apply_released(eng, vm, &r);
        sp_proto_msg_clear(&r);
        done += n;
    }
    *split = before - MIN(before, vm->merged);
    eng->stats.numa_pages_split += *split;
    g_mutex_unlock(&eng->lock);
    if (!ok)
        g_set_error(error, SP_ENGINE_ERROR, SP_ENGINE_ERROR_NO_MEMORY,
                    "VM '%s': no unmerge through its memory channel", vm->name);
    return ok;
}
