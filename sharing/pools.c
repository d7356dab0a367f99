/* SPDX-License-Identifier: MIT */
/*
 * pools.c - one frame pool per share set (engine-priv.h).
 *
 * A share set's pool is made with its first frame and lives as long as the
 * engine.  Its memfd is what VM processes of that set map (read-only, as
 * their space 0); no VM process ever gets another set's pool.  With
 * merge_across_nodes=0 a share set also has one pool per host node, whose
 * memfd carries a shared memory policy preferring that node (mbind on
 * samepaged's view: the kernel places the file's pages by it, whoever
 * faults them), so a node's frames are allocated on it; its name says the
 * node ("samepage-frames-node1"), and a re-attach reads it back.  After a
 * supervisor restart a pool comes back from the VM processes that map it
 * (sh_pool_adopt: the same memfd, found by its inode); its frames get
 * ShFrames as the re-attached VMs report their merges, and once every VM
 * is back the frames nobody maps are punched out (sh_pools_release_unused).
 *
 * Engine lock held throughout.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <xxhash.h>

#include "sharing/engine-priv.h"

#define POOL_RESERVE (256ULL << 30) /* address space per pool: 256 GiB of frames */

static ShPool *pool_new(SpEngine *eng, uint32_t group, int node)
{
    ShPool *p = g_new0(ShPool, 1);
    p->group = group;
    p->node = node;
    p->fid_of_off = sh_vec_new(sizeof(uint32_t));
    g_ptr_array_add(eng->pools, p);
    return p;
}

static void pool_free(ShPool *p)
{
    sp_frame_pool_destroy(&p->fp);
    sh_vec_free(p->fid_of_off);
    g_free(p);
}

/* A node's pool prefers it (MPOL_PREFERRED: a full node lends memory rather
 * than fail a merge). */
static void pool_prefer_node(ShPool *p)
{
    unsigned long mask = 1UL << p->node;
    if (syscall(SYS_mbind, p->fp.view, p->fp.reserved, 1 /* MPOL_PREFERRED */, &mask,
                sizeof(mask) * 8 + 1, 0) < 0)
        g_warning("event=pool-node-policy-failed node=%d error=\"%s\"", p->node, g_strerror(errno));
}

int sh_frame_node(SpEngine *eng, uint32_t fid)
{
    if (sh_is_gframe(fid))
        return -1;
    const ShFrame *f = &sh_vec_index(eng->frames, ShFrame, fid);
    return f->pool < eng->pools->len ? ((ShPool *)eng->pools->pdata[f->pool])->node : -1;
}

uint32_t sh_pool_for(SpEngine *eng, uint32_t group, int node)
{
    for (guint i = 0; i < eng->pools->len; i++) {
        const ShPool *p = eng->pools->pdata[i];
        if (p->group == group && p->node == node)
            return i;
    }
    if (node >= 64)
        return NO_SPACE;
    ShPool *p = pool_new(eng, group, node);
    g_autoptr(GError) err = NULL;
    struct stat st;
    if (!sp_frame_pool_init(&p->fp, node, POOL_RESERVE, &err) || fstat(p->fp.fd, &st) < 0) {
        g_warning("event=pool-failed error=\"%s\"", err ? err->message : "fstat");
        g_ptr_array_remove_index(eng->pools, eng->pools->len - 1);
        pool_free(p);
        return NO_SPACE;
    }
    p->ino = (uint64_t)st.st_ino;
    if (node >= 0)
        pool_prefer_node(p);
    return eng->pools->len - 1;
}

/* The node a pool's memfd was made for, from its name (-1: any). */
static int pool_node_of_fd(int fd)
{
    g_autofree char *path = g_strdup_printf("/proc/self/fd/%d", fd);
    g_autofree char *target = g_file_read_link(path, NULL);
    int node = -1;
    const char *s = target ? strstr(target, "samepage-frames-node") : NULL;
    if (s && sscanf(s, "samepage-frames-node%d", &node) != 1)
        node = -1;
    return node >= 0 && node < 64 ? node : -1;
}

uint32_t sh_pool_adopt(SpEngine *eng, int fd, uint32_t group)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return NO_SPACE;
    for (guint i = 0; i < eng->pools->len; i++) {
        ShPool *p = eng->pools->pdata[i];
        if (p->ino == (uint64_t)st.st_ino)
            return p->group == group ? i : NO_SPACE;
    }
    ShPool *p = pool_new(eng, group, pool_node_of_fd(fd));
    g_autoptr(GError) err = NULL;
    if (!sp_frame_pool_adopt(&p->fp, fd, POOL_RESERVE, &err)) {
        g_warning("event=pool-adopt-failed error=\"%s\"", err->message);
        g_ptr_array_remove_index(eng->pools, eng->pools->len - 1);
        pool_free(p);
        return NO_SPACE;
    }
    p->ino = (uint64_t)st.st_ino;
    p->adopted = true;
    g_message("event=pool-adopted frames=%" G_GUINT64_FORMAT, p->fp.next);
    return eng->pools->len - 1;
}

uint32_t sh_frame_id_new(SpEngine *eng, uint32_t pool, uint32_t off, uint32_t hash)
{
    uint32_t fid;
    if (eng->frame_free->len) {
        fid = g_array_index(eng->frame_free, uint32_t, eng->frame_free->len - 1);
        g_array_set_size(eng->frame_free, eng->frame_free->len - 1);
    } else {
        fid = eng->frames->len;
        if (fid >= GF_BIT - 1)
            return NO_FRAME;
        sh_vec_set_size(eng->frames, fid + 1);
    }
    sh_vec_index(eng->frames, ShFrame, fid) =
        (ShFrame){.hash = hash, .refs = 0, .next = NO_FRAME, .pool = pool, .off = off};
    ShPool *p = g_ptr_array_index(eng->pools, pool);
    if (off >= p->fid_of_off->len)
        sh_vec_set_size(p->fid_of_off, off + 1);
    sh_vec_index(p->fid_of_off, uint32_t, off) = fid + 1;
    return fid;
}

uint32_t sh_pool_frame_adopt(SpEngine *eng, uint32_t pool, uint32_t off)
{
    ShPool *p = g_ptr_array_index(eng->pools, pool);
    if ((uint64_t)off >= p->fp.next)
        return NO_FRAME;
    if (off < p->fid_of_off->len && sh_vec_index(p->fid_of_off, uint32_t, off))
        return sh_vec_index(p->fid_of_off, uint32_t, off) - 1;
    if (sh_swap_shared_lost(eng, p->ino, off)) { /* a hole: reading it would fill it */
        g_warning("event=frame-lost-not-indexed pool_inode=%" G_GUINT64_FORMAT " off=%u (out "
                  "before samepaged restarted and not written back: a VM that touches it ends)",
                  p->ino, off);
        return NO_FRAME;
    }
    XXH64_hash_t h = XXH3_64bits(sp_frame_pool_ptr(&p->fp, off), SP_PAGE_SIZE);
    uint32_t fid = sh_frame_id_new(eng, pool, off, (uint32_t)(h ^ (h >> 32)));
    if (fid != NO_FRAME)
        sh_frame_link(eng, fid);
    return fid;
}

void sh_pools_release_unused(SpEngine *eng)
{
    for (guint i = 0; i < eng->pools->len; i++) {
        ShPool *p = eng->pools->pdata[i];
        if (!p->adopted)
            continue;
        uint64_t freed = 0, kept_lost = 0;
        g_autoptr(GHashTable) already = g_hash_table_new(g_direct_hash, g_direct_equal);
        for (guint k = 0; k < p->fp.free->len; k++)
            g_hash_table_add(already, GUINT_TO_POINTER(g_array_index(p->fp.free, uint32_t, k)));
        for (uint64_t off = 0; off < p->fp.next; off++) {
            if (g_hash_table_contains(already, GUINT_TO_POINTER((guint)off)))
                continue;
            uint32_t f = off < p->fid_of_off->len ? sh_vec_index(p->fid_of_off, uint32_t, off) : 0;
            if (f && sh_vec_index(eng->frames, ShFrame, f - 1).refs)
                continue;
            if (!f && sh_swap_shared_lost(eng, p->ino, off)) {
                kept_lost++; /* VMs may still map the hole: never another frame's */
                continue;
            }
            if (f) { /* adopted, then its last mapper went before the release */
                uint32_t fid = f - 1;
                sh_frame_unlink(eng, fid);
                sh_vec_index(p->fid_of_off, uint32_t, off) = 0;
                sh_vec_index(eng->frames, ShFrame, fid) =
                    (ShFrame){.next = NO_FRAME, .pool = NO_SPACE};
                g_array_append_val(eng->frame_free, fid);
            }
            sp_frame_pool_release(&p->fp, (uint32_t)off);
            freed++;
        }
        p->adopted = false;
        p->kept_lost = kept_lost;
        g_message("event=pool-released-unused frames=%" G_GUINT64_FORMAT
                  " kept_lost=%" G_GUINT64_FORMAT,
                  freed, kept_lost);
    }
}

void sh_pools_free(SpEngine *eng)
{
    for (guint i = 0; i < eng->pools->len; i++)
        pool_free(eng->pools->pdata[i]);
    g_ptr_array_free(eng->pools, TRUE);
}

uint64_t sh_pools_in_use(SpEngine *eng)
{
    uint64_t n = 0;
    for (guint i = 0; i < eng->pools->len; i++)
        n += ((ShPool *)eng->pools->pdata[i])->fp.in_use;
    return n;
}
