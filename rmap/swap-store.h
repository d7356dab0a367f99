/* SPDX-License-Identifier: MIT */
/*
 * swap-store.h - where evicted guest pages go: samepaged's own swap store
 * (docs/swap.md).
 *
 * A slot holds one page's content, once: a frame shared by N sharers is one
 * slot for all of them (the caller keeps the mapping from frames and guest
 * pages to slots).  Contents first go to a compressed tier in memory (LZ4,
 * a log in a memfd); when the tier is full its oldest entries move to the
 * swap file, written in batches, one 4 KiB block per slot at offset
 * slot x 4096 (sparse).  A page that does not compress below 3/4 of its size
 * goes to the file directly.  Zero pages never reach the store (the engine
 * drops them); the caller does not store them.
 *
 * Everything the store knows lives in two memfds - its metadata (a header
 * and the slot table, with each slot's owner) and the compressed tier -
 * plus the file, so that a samepaged restarted after a crash can take the
 * store over (sp_swap_store_adopt) from the descriptors the VM processes
 * keep for it (as O_PATH descriptors: they cannot read them; docs/swap.md
 * "After a crash").  A new store replaces a regular file at its path
 * instead of truncating it, so that the file an earlier samepaged wrote
 * lives on for them.  The store never reads what a VM process sends it as
 * anything but bytes.
 *
 * Locking: one mutex inside; every call may be made from any thread.
 */
#ifndef SAMEPAGE_RMAP_SWAP_STORE_H
#define SAMEPAGE_RMAP_SWAP_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <gio/gio.h>

typedef struct SpSwapStore SpSwapStore;

#define SP_SWAP_NO_SLOT UINT32_MAX

typedef struct SpSwapStoreStats {
    uint64_t slots_used;     /* contents held now */
    uint64_t slots_max;      /* what the file can hold */
    uint64_t cache_pages;    /* of them in the compressed tier */
    uint64_t cache_bytes;    /* compressed bytes the tier holds */
    uint64_t cache_capacity; /* its size */
    uint64_t meta_bytes;     /* the slot table's size (a memfd, like the tier) */
    uint64_t file_pages;     /* of them in the swap file */
    uint64_t bytes_written;  /* to the file, cumulative */
    uint64_t bytes_read;     /* from the file, cumulative */
    uint64_t puts, gets;     /* cumulative */
    uint64_t full;           /* puts refused because the file was full */
    uint64_t mem_bytes;      /* memory the store holds now: the tier's and the slot table's
                                memfd pages (the tier gives back what its tail passed) */
} SpSwapStoreStats;

/* A new store: `path` is the swap file (created, or truncated; its
 * directory must exist), at most file_bytes of it; the compressed tier is
 * cache_bytes (0: none).  NULL with a one-line error (unwritable path...). */
SpSwapStore *sp_swap_store_new(const char *path, uint64_t file_bytes, uint64_t cache_bytes,
                               GError **error);
void sp_swap_store_free(SpSwapStore *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpSwapStore, sp_swap_store_free)

/* Store a page (4096 bytes); its slot, or SP_SWAP_NO_SLOT with an error
 * (the file is full: the caller stops evicting). */
uint32_t sp_swap_store_put(SpSwapStore *s, const void *page, GError **error);
/* Read slot's content into page (4096 bytes); false with an error, always
 * SP_SWAP_STORE_ERROR_UNREADABLE: the swap file's I/O error, a block that
 * is not what was written (SP_SWAP_STORE_SUMS), a corrupt compressed copy,
 * a slot that holds nothing.  Not a passing failure: the
 * content is gone, and whoever maps it cannot go on. */
bool sp_swap_store_get(SpSwapStore *s, uint32_t slot, void *page, GError **error);
#define SP_SWAP_STORE_ERROR sp_swap_store_error_quark()
GQuark sp_swap_store_error_quark(void);
typedef enum { SP_SWAP_STORE_ERROR_UNREADABLE } SpSwapStoreError;
void sp_swap_store_drop(SpSwapStore *s, uint32_t slot);
void sp_swap_store_stats(SpSwapStore *s, SpSwapStoreStats *out);
/* Write the compressed tier's overflow out now (a batch). */
void sp_swap_store_flush(SpSwapStore *s);

/* Whose content a slot holds: what a samepaged restarted after a crash
 * needs to give it back to its owner. */
enum {
    SP_SWAP_OWNER_NONE = 0,
    SP_SWAP_OWNER_PAGE = 1,  /* a private page: a = sp_swap_vm_key(VM name), b = gfn */
    SP_SWAP_OWNER_FRAME = 2, /* a pool frame: a = the pool memfd's inode, b = page offset */
    SP_SWAP_OWNER_LAYER = 3, /* a clone-layer page: a = the group file's inode, b = page */
};
typedef struct SpSwapOwner {
    uint32_t kind;
    uint64_t a, b;
} SpSwapOwner;
/* Record slot's owner (a slot just put; dropping it forgets the owner). */
void sp_swap_store_set_owner(SpSwapStore *s, uint32_t slot, const SpSwapOwner *o);
typedef void (*SpSwapOwnedFn)(uint32_t slot, const SpSwapOwner *o, gpointer data);
/* fn for every used slot with an owner (the store's lock held: fn must
 * not call the store). */
void sp_swap_store_foreach_owned(SpSwapStore *s, SpSwapOwnedFn fn, gpointer data);
/* A VM's key in SP_SWAP_OWNER_PAGE (its name: unique while it runs, kept
 * across a restart of samepaged). */
static inline uint64_t sp_swap_vm_key(const char *name)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    return h;
}

/* What a samepaged restarted after a crash may conclude from the store it
 * takes over (kept in its metadata, so that they outlive the samepaged
 * that wrote them): EXACT, every page out of a VM that drops its zero
 * pages itself (SP_PROTO_AGENT_DROPS_ZERO) has a slot here - one without
 * was lost, not all zero.  A new store is EXACT; a samepaged that takes
 * over a store that is not clears it in its own (the pages it took over
 * may be out without a slot). */
#define SP_SWAP_STORE_EXACT 1u
/* SUMS: every block in the file has a checksum in the slot table, checked
 * when it is read back (a new store; not one of a samepage before it). */
#define SP_SWAP_STORE_SUMS 2u
/* CACHE_SUMS: every compressed copy has the page's checksum in the slot
 * table, checked when it is read back and when the tier's tail moves it to
 * the file (a new store; not one of a samepage before it). */
#define SP_SWAP_STORE_CACHE_SUMS 4u
uint32_t sp_swap_store_flags(SpSwapStore *s);
void sp_swap_store_clear_flags(SpSwapStore *s, uint32_t flags);

/* The descriptors a restarted samepaged needs (metadata, tier or -1, file). */
void sp_swap_store_fds(SpSwapStore *s, int *meta_fd, int *cache_fd, int *file_fd);
/* Take a store over from those descriptors (any mode, O_PATH too: they are
 * reopened read-write through /proc/self/fd). */
SpSwapStore *sp_swap_store_adopt(int meta_fd, int cache_fd, int file_fd, GError **error);

#endif
