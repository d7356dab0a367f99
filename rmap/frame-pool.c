/* SPDX-License-Identifier: MIT */
/* frame-pool.c - the memfd that holds shared frames (see frame-pool.h). */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rmap/frame-pool.h"

#define POOL_GROW (64ULL << 20)

/* The read-write view of pool->fd over max_bytes (NORESERVE); false with an error. */
static bool pool_map_view(SpFramePool *pool, uint64_t max_bytes, GError **error)
{
    pool->reserved = max_bytes;
    void *v =
        mmap(NULL, max_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, pool->fd, 0);
    if (v == MAP_FAILED) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot reserve %llu GiB for the frame pool: %s",
                    (unsigned long long)(max_bytes >> 30), g_strerror(errno));
        close(pool->fd);
        pool->fd = -1;
        return false;
    }
    madvise(v, max_bytes, MADV_NOHUGEPAGE);
    pool->view = v;
    pool->free = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    return true;
}

bool sp_frame_pool_init(SpFramePool *pool, int node, uint64_t max_bytes, GError **error)
{
    *pool = (SpFramePool){.fd = -1, .node = node};
    g_autofree char *name =
        node >= 0 ? g_strdup_printf("samepage-frames-node%d", node) : g_strdup("samepage-frames");
    pool->fd = memfd_create(name, MFD_CLOEXEC);
    if (pool->fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "memfd_create: %s",
                    g_strerror(errno));
        return false;
    }
    return pool_map_view(pool, max_bytes, error);
}

bool sp_frame_pool_adopt(SpFramePool *pool, int fd, uint64_t max_bytes, GError **error)
{
    *pool = (SpFramePool){.fd = -1, .node = -1};
    g_autofree char *path = g_strdup_printf("/proc/self/fd/%d", fd);
    struct stat st;
    pool->fd = open(path, O_RDWR | O_CLOEXEC);
    if (pool->fd < 0 || fstat(pool->fd, &st) < 0 || (uint64_t)st.st_size > max_bytes ||
        st.st_size % 4096) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot adopt a frame pool: %s",
                    pool->fd < 0 ? g_strerror(errno) : "bad size");
        if (pool->fd >= 0)
            close(pool->fd);
        pool->fd = -1;
        return false;
    }
    if (!pool_map_view(pool, max_bytes, error))
        return false;
    pool->file_size = (uint64_t)st.st_size;
    pool->next = pool->file_size / 4096;
    pool->in_use = pool->next;
    return true;
}

void sp_frame_pool_release(SpFramePool *pool, uint32_t frame)
{
    sp_frame_pool_free(pool, frame);
}

void sp_frame_pool_destroy(SpFramePool *pool)
{
    if (pool->view)
        munmap(pool->view, pool->reserved);
    if (pool->fd >= 0)
        close(pool->fd);
    if (pool->free)
        g_array_free(pool->free, TRUE);
    *pool = (SpFramePool){.fd = -1};
}

static bool pool_grow(SpFramePool *pool, uint64_t need_bytes)
{
    if (need_bytes <= pool->file_size)
        return true;
    uint64_t size = (need_bytes + POOL_GROW - 1) / POOL_GROW * POOL_GROW;
    if (size > pool->reserved)
        size = pool->reserved;
    if (size < need_bytes || ftruncate(pool->fd, (off_t)size) < 0)
        return false;
    pool->file_size = size;
    return true;
}

uint32_t sp_frame_pool_alloc(SpFramePool *pool, uint32_t n)
{
    if (n == 1 && pool->free->len) {
        uint32_t f = g_array_index(pool->free, uint32_t, pool->free->len - 1);
        g_array_set_size(pool->free, pool->free->len - 1);
        pool->in_use++;
        return f;
    }
    if (pool->next + n > UINT32_MAX - 1 || !pool_grow(pool, (pool->next + n) * 4096))
        return UINT32_MAX;
    uint32_t f = (uint32_t)pool->next;
    pool->next += n;
    pool->in_use += n;
    return f;
}

void sp_frame_pool_free(SpFramePool *pool, uint32_t frame)
{
    fallocate(pool->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)frame * 4096, 4096);
    g_array_append_val(pool->free, frame);
    pool->in_use--;
}

uint64_t sp_frame_pool_resident_bytes(SpFramePool *pool)
{
    struct stat st;
    if (fstat(pool->fd, &st) < 0)
        return 0;
    return (uint64_t)st.st_blocks * 512;
}
