/* SPDX-License-Identifier: MIT */
/*
 * clone-group.c - sharing groups: one per clone-group file (rmap.h).
 *
 * A group owns its memfd while at least one layout uses it (layout_refs);
 * the struct itself lives while anything refers to it (refs: layouts,
 * child groups through their parent link, callers).  Every group alive is
 * in `groups`, for the statistics.  All of it under rmap_lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rmap/rmap-priv.h"

GMutex rmap_lock;
static GPtrArray *groups; /* SpCloneGroup *, every group alive (rmap_lock) */
static uint64_t next_group_id = 1;

/* Which pages the file holds: its data ranges (shmem answers SEEK_DATA). */
static void group_read_present(SpCloneGroup *g)
{
    off_t end = (off_t)(g->npages * SP_PAGE_SIZE);
    for (off_t pos = 0; pos < end;) {
        off_t d = lseek(g->fd, pos, SEEK_DATA);
        if (d < 0 || d >= end)
            break;
        off_t h = lseek(g->fd, d, SEEK_HOLE);
        if (h < 0 || h > end)
            h = end;
        for (uint64_t p = (uint64_t)d / SP_PAGE_SIZE;
             p < ((uint64_t)h + SP_PAGE_SIZE - 1) / SP_PAGE_SIZE; p++) {
            g->present[p / 64] |= 1ULL << (p % 64);
            g->npresent++;
        }
        pos = h;
    }
}

SpCloneGroup *sp_clone_group_new(int fd, uint64_t npages, SpCloneGroup *parent)
{
    SpCloneGroup *g = g_new0(SpCloneGroup, 1);
    g->fd = fd;
    g->npages = npages;
    g->present = g_new0(uint64_t, (npages + 63) / 64);
    group_read_present(g);
    struct stat st;
    g->ino = fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
    g->members = g_array_new(FALSE, FALSE, sizeof(RmapMember));
    g->refs = 1;
    g_mutex_lock(&rmap_lock);
    g->id = next_group_id++;
    if (parent) {
        g->parent = parent;
        parent->refs++;
    }
    if (!groups)
        groups = g_ptr_array_new();
    g_ptr_array_add(groups, g);
    g_mutex_unlock(&rmap_lock);
    return g;
}

SpCloneGroup *sp_clone_group_find_ino(uint64_t ino)
{
    SpCloneGroup *found = NULL;
    g_mutex_lock(&rmap_lock);
    for (guint i = 0; groups && i < groups->len && ino; i++) {
        SpCloneGroup *g = groups->pdata[i];
        if (g->ino == ino && g->fd >= 0) {
            found = g;
            g->refs++;
            break;
        }
    }
    g_mutex_unlock(&rmap_lock);
    return found;
}

SpCloneGroup *sp_clone_group_ref(SpCloneGroup *g)
{
    g_mutex_lock(&rmap_lock);
    g->refs++;
    g_mutex_unlock(&rmap_lock);
    return g;
}

static void group_unref_locked(SpCloneGroup *g)
{
    while (g && --g->refs == 0) {
        SpCloneGroup *parent = g->parent;
        g_assert(g->layout_refs == 0 && g->members->len == 0);
        g_ptr_array_remove_fast(groups, g);
        if (g->fd >= 0)
            close(g->fd);
        g_array_free(g->members, TRUE);
        g_free(g->present);
        g_free(g);
        g = parent;
    }
}

void sp_clone_group_unref(SpCloneGroup *g)
{
    if (!g)
        return;
    g_mutex_lock(&rmap_lock);
    group_unref_locked(g);
    g_mutex_unlock(&rmap_lock);
}

int sp_clone_group_fd(const SpCloneGroup *g)
{
    return g->fd;
}

uint64_t sp_clone_group_id(const SpCloneGroup *g)
{
    return g->id;
}

uint64_t sp_clone_group_ino(const SpCloneGroup *g)
{
    return g->ino;
}

uint32_t sp_clone_group_members(const SpCloneGroup *g)
{
    return __atomic_load_n(&g->nmembers, __ATOMIC_ACQUIRE);
}

bool sp_clone_group_holds(const SpCloneGroup *g, uint64_t off)
{
    return off < g->npages && rmap_bit(g->present, off);
}

uint64_t sp_clone_group_npages(const SpCloneGroup *g)
{
    return g->npages;
}

void clone_group_layout_hold(SpCloneGroup *g)
{
    g_mutex_lock(&rmap_lock);
    g->refs++;
    g->layout_refs++;
    g_mutex_unlock(&rmap_lock);
}

void clone_group_layout_release(SpCloneGroup *g)
{
    g_mutex_lock(&rmap_lock);
    if (--g->layout_refs == 0 && g->fd >= 0) {
        /* The kernel keeps the pages while any VM maps them. */
        close(g->fd);
        g->fd = -1;
    }
    group_unref_locked(g);
    g_mutex_unlock(&rmap_lock);
}

void clone_group_add_member(SpCloneGroup *g, SpRmapVm *vm, uint8_t layer)
{
    RmapMember m = {vm, layer};
    g_array_append_val(g->members, m);
    __atomic_store_n(&g->nmembers, g->members->len, __ATOMIC_RELEASE);
    g->refs++;
}

void clone_group_remove_member(SpCloneGroup *g, SpRmapVm *vm)
{
    for (guint i = 0; i < g->members->len; i++)
        if (g_array_index(g->members, RmapMember, i).vm == vm) {
            g_array_remove_index_fast(g->members, i);
            __atomic_store_n(&g->nmembers, g->members->len, __ATOMIC_RELEASE);
            group_unref_locked(g);
            return;
        }
}

/* Figures of one group: a pass over its pages and members. */
static void group_stats(const SpCloneGroup *g, SpCloneGroupStats *s)
{
    *s = (SpCloneGroupStats){
        .id = g->id,
        .parent_id = g->parent ? g->parent->id : 0,
        .members = g->members->len,
        .pages = g->npresent,
        .file_open = g->fd >= 0,
    };
    for (uint64_t p = 0; p < g->npages; p++) {
        if (!rmap_bit(g->present, p)) {
            if (!g->present[p / 64])
                p |= 63;
            continue;
        }
        uint32_t n = 0;
        for (guint i = 0; i < g->members->len; i++) {
            const RmapMember *m = &g_array_index(g->members, RmapMember, i);
            n += m->vm->layout->layer[p] == m->layer && !rmap_bit(m->vm->off, p);
        }
        s->mappings += n;
        s->pages_shared += n >= 2;
        s->pages_saved += n ? n - 1 : 0;
    }
}

static int group_stats_cmp(const void *a, const void *b)
{
    uint64_t x = ((const SpCloneGroupStats *)a)->id, y = ((const SpCloneGroupStats *)b)->id;
    return x < y ? -1 : x > y;
}

uint32_t sp_rmap_group_stats(SpCloneGroupStats **out)
{
    g_mutex_lock(&rmap_lock);
    uint32_t n = groups ? groups->len : 0;
    for (uint32_t i = 0; i < n; i++) {
        SpCloneGroup *g = groups->pdata[i];
        for (guint k = 0; k < g->members->len; k++)
            rmap_sync_if_older_locked(g_array_index(g->members, RmapMember, k).vm, 1.0);
    }
    *out = g_new0(SpCloneGroupStats, MAX(n, 1));
    for (uint32_t i = 0; i < n; i++)
        group_stats(groups->pdata[i], &(*out)[i]);
    g_mutex_unlock(&rmap_lock);
    qsort(*out, n, sizeof(**out), group_stats_cmp);
    return n;
}
