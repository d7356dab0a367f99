/* SPDX-License-Identifier: MIT */
/*
 * frame-pool.h - shared frames: pages of a memfd that VMs map MAP_PRIVATE.
 *
 * A frame is one 4 KiB page of the pool's memfd at offset index * 4096.
 * Every VM page merged onto a frame is an mmap(MAP_PRIVATE | MAP_FIXED) of
 * that offset, so they all read the same physical page (the memfd's page
 * cache page) and a write by any of them is the kernel's copy-on-write:
 * the frame itself never changes after it was filled.
 *
 * The pool keeps one MAP_SHARED view of the whole memfd for the engine to
 * fill and compare frames; the file grows in 64 MiB steps.  A freed frame's
 * page is returned to the host at once with FALLOC_FL_PUNCH_HOLE, and its
 * index is reused for single frames; runs are carved from fresh indices so that
 * consecutive guest pages can map consecutive offsets (one mapping).
 *
 * Locking: none inside; the sharing engine calls it from its own thread
 * only (engine lock held).
 */
#ifndef SAMEPAGE_RMAP_FRAME_POOL_H
#define SAMEPAGE_RMAP_FRAME_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <gio/gio.h>

typedef struct SpFramePool {
    int fd;             /* the memfd */
    uint8_t *view;      /* MAP_SHARED view of the whole reserved range */
    uint64_t reserved;  /* bytes of address space reserved for the view */
    uint64_t file_size; /* current memfd size */
    uint64_t next;      /* frames below this index were handed out at least once */
    GArray *free;       /* uint32 indices of freed frames, reused first */
    uint64_t in_use;    /* frames allocated now */
    int node;           /* host NUMA node the pool prefers (-1: any) */
} SpFramePool;

bool sp_frame_pool_init(SpFramePool *pool, int node, uint64_t max_bytes, GError **error);
void sp_frame_pool_destroy(SpFramePool *pool);
/* Take over an existing pool memfd (a restarted supervisor gets it back
 * from a VM process): `fd` is reopened read-write (not taken); every frame
 * of the file counts as in use until sp_frame_pool_release() says not. */
bool sp_frame_pool_adopt(SpFramePool *pool, int fd, uint64_t max_bytes, GError **error);
/* An adopted pool's frame that nobody maps: punch it out, reuse its index. */
void sp_frame_pool_release(SpFramePool *pool, uint32_t frame);

/* Allocate `n` consecutive frames (n == 1 reuses freed ones); UINT32_MAX on failure. */
uint32_t sp_frame_pool_alloc(SpFramePool *pool, uint32_t n);
/* Give a frame's memory back to the host; its index may be reused. */
void sp_frame_pool_free(SpFramePool *pool, uint32_t frame);

static inline uint8_t *sp_frame_pool_ptr(SpFramePool *pool, uint32_t frame)
{
    return pool->view + (uint64_t)frame * 4096;
}

/* Bytes of host memory the pool's frames occupy now (from the kernel). */
uint64_t sp_frame_pool_resident_bytes(SpFramePool *pool);

#endif
