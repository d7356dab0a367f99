/* SPDX-License-Identifier: MIT */
/*
 * swap-store.c - slots in a compressed tier and a swap file (swap-store.h).
 *
 * The metadata memfd holds a StoreHdr and the slot table; the tier memfd is
 * a log of entries (slot, compressed length, LZ4 data), appended at `head`
 * and reclaimed from `tail` (byte counters that only grow; position =
 * counter mod capacity).  An entry is live while its slot still points at
 * it.  Reclaiming writes live entries, decompressed, to the file at
 * slot x 4096: a batch of at least an eighth of the tier at a time.
 *
 * The tier gives back the memory its tail passed (punched out of the memfd),
 * so that what it holds is about head - tail, not its capacity.
 *
 * Invariants: a slot is FREE (on the free list), CACHE (`where` = the log
 * counter of its entry, tail <= where < head), FILE (its block in the
 * file) or LOST (its compressed copy was not what was put when the tail
 * passed it: nothing to read).  In a store with SP_SWAP_STORE_SUMS,
 * `next_free` of a FILE slot holds a checksum of the block as written; with
 * SP_SWAP_STORE_CACHE_SUMS, that of a CACHE slot holds the page's - set
 * before the slot turns FILE or CACHE, so that a crash at any instruction
 * leaves none stale.  used = CACHE + FILE + LOST slots (LOST ones counted
 * as file pages: their owner frees them as it frees a FILE slot).
 *
 * A block read back that is not what was written (the file cut short and
 * written past, a disk's bad block read without an error), or a compressed
 * copy that is not what was put (a stray write into the tier's memory,
 * which outlives samepaged), fails the read, as an I/O error does: never
 * other bytes in the guest, and the tail never writes such a copy to the
 * file under a checksum of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <xxhash.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rmap/guest-mem.h"
#include "rmap/swap-store.h"

#define STORE_MAGIC 0x5350535741503032ULL /* "SPSWAP02" */
#define ENTRY_ALIGN 8
#define RAW_LIMIT   (SP_PAGE_SIZE * 3 / 4) /* compresses worse: straight to the file */

enum { SLOT_FREE = 0, SLOT_CACHE = 1, SLOT_FILE = 2, SLOT_LOST = 3 };

typedef struct StoreHdr {
    uint64_t magic;
    char path[512];     /* the swap file */
    uint64_t nslots;    /* slot table entries: the file's size in pages */
    uint64_t cache_cap; /* bytes of the tier */
    uint64_t head, tail;
    uint64_t next_unused; /* slots below it were handed out once */
    uint32_t free_head;   /* free list: slot + 1, 0 = empty */
    uint32_t flags;       /* SP_SWAP_STORE_* (0 in a store of a samepage before them) */
    SpSwapStoreStats st;
} StoreHdr;

typedef struct Slot {
    uint32_t state;
    uint32_t clen;      /* compressed length (CACHE) */
    uint64_t where;     /* the entry's log counter (CACHE) */
    uint32_t next_free; /* FREE: the next free slot + 1 */
    uint32_t owner;     /* SP_SWAP_OWNER_*: whose content (a restarted samepaged's guide) */
    uint64_t owner_a, owner_b;
} Slot;

typedef struct Entry {
    uint32_t slot; /* UINT32_MAX: padding up to the tier's end */
    uint32_t clen;
} Entry;

struct SpSwapStore {
    GMutex lock;
    int meta_fd, cache_fd, file_fd;
    StoreHdr *hdr; /* the metadata memfd, mapped */
    Slot *slots;
    size_t meta_len;
    uint8_t *cache; /* the tier, mapped */
};

static size_t meta_bytes(uint64_t nslots)
{
    return sizeof(StoreHdr) + nslots * sizeof(Slot);
}

static uint64_t align_up(uint64_t v)
{
    return (v + ENTRY_ALIGN - 1) & ~(uint64_t)(ENTRY_ALIGN - 1);
}

static int memfd_sized(const char *name, uint64_t len, GError **error)
{
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)len) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "swap store: %s: %s", name,
                    g_strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static bool store_map(SpSwapStore *s, GError **error)
{
    struct stat st;
    if (fstat(s->meta_fd, &st) < 0 || (size_t)st.st_size < sizeof(StoreHdr)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "swap store: bad metadata");
        return false;
    }
    s->meta_len = (size_t)st.st_size;
    void *m = mmap(NULL, s->meta_len, PROT_READ | PROT_WRITE, MAP_SHARED, s->meta_fd, 0);
    if (m == MAP_FAILED) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "swap store: %s",
                    g_strerror(errno));
        return false;
    }
    s->hdr = m;
    s->slots = (Slot *)(s->hdr + 1);
    if (s->hdr->magic != STORE_MAGIC || meta_bytes(s->hdr->nslots) != s->meta_len) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "swap store: metadata of another kind");
        return false;
    }
    if (s->hdr->cache_cap) {
        void *c = mmap(NULL, s->hdr->cache_cap, PROT_READ | PROT_WRITE, MAP_SHARED, s->cache_fd, 0);
        if (c == MAP_FAILED) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "swap store: tier: %s",
                        g_strerror(errno));
            return false;
        }
        s->cache = c;
    }
    return true;
}

SpSwapStore *sp_swap_store_new(const char *path, uint64_t file_bytes, uint64_t cache_bytes,
                               GError **error)
{
    uint64_t nslots = file_bytes / SP_PAGE_SIZE;
    if (nslots == 0 || nslots >= UINT32_MAX || strlen(path) >= sizeof(((StoreHdr *)0)->path)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "swap store: the file must hold 1 to 2^32-1 pages and its path be shorter "
                    "than 512 bytes");
        return NULL;
    }
    cache_bytes = cache_bytes / SP_PAGE_SIZE * SP_PAGE_SIZE;
    SpSwapStore *s = g_new0(SpSwapStore, 1);
    g_mutex_init(&s->lock);
    s->meta_fd = s->cache_fd = s->file_fd = -1;
    /* A regular file is replaced, not truncated: VM processes may still
     * hold the one a samepaged before this one wrote (its pages are taken
     * over from it at re-attach).  Anything else (a device) is opened. */
    struct stat pst;
    if (lstat(path, &pst) == 0 && S_ISREG(pst.st_mode) && unlink(path) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot use %s as swap file: %s", path, g_strerror(errno));
        goto fail;
    }
    s->file_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (s->file_fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot use %s as swap file: %s", path, g_strerror(errno));
        goto fail;
    }
    if ((s->meta_fd = memfd_sized("samepage-swap-meta", meta_bytes(nslots), error)) < 0)
        goto fail;
    cache_bytes = cache_bytes / SP_PAGE_SIZE * SP_PAGE_SIZE; /* whole pages: log_punch */
    if (cache_bytes && (s->cache_fd = memfd_sized("samepage-swap-cache", cache_bytes, error)) < 0)
        goto fail;
    StoreHdr h = {.magic = STORE_MAGIC,
                  .nslots = nslots,
                  .cache_cap = cache_bytes,
                  .flags = SP_SWAP_STORE_EXACT | SP_SWAP_STORE_SUMS | SP_SWAP_STORE_CACHE_SUMS};
    g_strlcpy(h.path, path, sizeof(h.path));
    h.st.slots_max = nslots;
    h.st.cache_capacity = cache_bytes;
    if (pwrite(s->meta_fd, &h, sizeof(h), 0) != sizeof(h)) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "swap store: %s",
                    g_strerror(errno));
        goto fail;
    }
    if (!store_map(s, error))
        goto fail;
    return s;
fail:
    sp_swap_store_free(s);
    return NULL;
}

/* fd reopened read-write through /proc (it may be an O_PATH descriptor). */
static int reopen(int fd)
{
    g_autofree char *p = g_strdup_printf("/proc/self/fd/%d", fd);
    return open(p, O_RDWR | O_CLOEXEC);
}

SpSwapStore *sp_swap_store_adopt(int meta_fd, int cache_fd, int file_fd, GError **error)
{
    SpSwapStore *s = g_new0(SpSwapStore, 1);
    g_mutex_init(&s->lock);
    s->meta_fd = s->cache_fd = s->file_fd = -1;
    s->meta_fd = reopen(meta_fd);
    if (cache_fd >= 0)
        s->cache_fd = reopen(cache_fd);
    s->file_fd = reopen(file_fd);
    if (s->meta_fd < 0 || (cache_fd >= 0 && s->cache_fd < 0) || s->file_fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "swap store: cannot reopen its descriptors: %s", g_strerror(errno));
        goto fail;
    }
    if (!store_map(s, error))
        goto fail;
    if (s->hdr->cache_cap && s->cache_fd < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "swap store: its tier is missing");
        goto fail;
    }
    return s;
fail:
    sp_swap_store_free(s);
    return NULL;
}

void sp_swap_store_free(SpSwapStore *s)
{
    if (!s)
        return;
    if (s->cache)
        munmap(s->cache, s->hdr->cache_cap);
    if (s->hdr)
        munmap(s->hdr, s->meta_len);
    if (s->meta_fd >= 0)
        close(s->meta_fd);
    if (s->cache_fd >= 0)
        close(s->cache_fd);
    if (s->file_fd >= 0)
        close(s->file_fd);
    g_mutex_clear(&s->lock);
    g_free(s);
}

void sp_swap_store_fds(SpSwapStore *s, int *meta_fd, int *cache_fd, int *file_fd)
{
    *meta_fd = s->meta_fd;
    *cache_fd = s->cache_fd;
    *file_fd = s->file_fd;
}

void sp_swap_store_set_owner(SpSwapStore *s, uint32_t slot, const SpSwapOwner *o)
{
    g_mutex_lock(&s->lock);
    Slot *sl = slot < s->hdr->nslots ? &s->slots[slot] : NULL;
    if (sl && sl->state != SLOT_FREE) {
        sl->owner_a = o->a;
        sl->owner_b = o->b;
        sl->owner = o->kind;
    }
    g_mutex_unlock(&s->lock);
}

void sp_swap_store_foreach_owned(SpSwapStore *s, SpSwapOwnedFn fn, gpointer data)
{
    g_mutex_lock(&s->lock);
    uint64_t n = MIN(s->hdr->next_unused, s->hdr->nslots);
    for (uint64_t i = 0; i < n; i++) {
        Slot *sl = &s->slots[i];
        if (sl->state == SLOT_FREE || sl->owner == SP_SWAP_OWNER_NONE)
            continue;
        SpSwapOwner o = {.kind = sl->owner, .a = sl->owner_a, .b = sl->owner_b};
        fn((uint32_t)i, &o, data);
    }
    g_mutex_unlock(&s->lock);
}

/* --- the file --- */

/* A page's checksum: a file block's, and (CACHE_SUMS) a compressed copy's. */
static uint32_t block_sum(const void *page)
{
    return (uint32_t)XXH3_64bits(page, SP_PAGE_SIZE);
}

/* page into slot's block; its checksum in the slot, which the caller then
 * turns FILE (lock held). */
static bool file_write(SpSwapStore *s, uint32_t slot, const void *page)
{
    if (pwrite(s->file_fd, page, SP_PAGE_SIZE, (off_t)slot * SP_PAGE_SIZE) != SP_PAGE_SIZE)
        return false;
    s->hdr->st.bytes_written += SP_PAGE_SIZE;
    __atomic_store_n(&s->slots[slot].next_free, block_sum(page), __ATOMIC_SEQ_CST);
    return true;
}

/* --- the compressed tier's log --- */

static Entry *entry_at(SpSwapStore *s, uint64_t counter)
{
    return (Entry *)(s->cache + counter % s->hdr->cache_cap);
}

/* Reclaim from the tail until `need` bytes fit, and at least an eighth of
 * the tier (a batch), writing live entries to the file.  false if a write
 * failed (the file is full or broken): then nothing more goes to the tier. */
/* Give back the tier's memory of log counters [from, to), which the tail
 * passed: whole pages only, and none that a live entry ([to, head)) or the
 * head's next page shares a position with.  A counter c below to whose
 * page starts at or after ceil(head) - cap is dead, and so is its position
 * (c + cap lies at or past the head). */
static void log_punch(SpSwapStore *s, uint64_t from, uint64_t to)
{
    uint64_t cap = s->hdr->cache_cap, head = s->hdr->head;
    if (cap % SP_PAGE_SIZE)
        return;
    uint64_t head_up = (head + SP_PAGE_SIZE - 1) / SP_PAGE_SIZE * SP_PAGE_SIZE;
    from = from / SP_PAGE_SIZE * SP_PAGE_SIZE;
    if (head_up > cap)
        from = MAX(from, head_up - cap);
    to = to / SP_PAGE_SIZE * SP_PAGE_SIZE;
    while (from < to) {
        uint64_t pos = from % cap, len = MIN(to - from, cap - pos);
        fallocate(s->cache_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)pos, (off_t)len);
        from += len;
    }
}

/* The page a CACHE slot's entry e holds, into page: false if it does not
 * decompress to a page, or (CACHE_SUMS) to the page that was put. */
static bool cache_read(SpSwapStore *s, const Slot *sl, const Entry *e, void *page)
{
    return LZ4_decompress_safe((const char *)(e + 1), page, (int)e->clen, SP_PAGE_SIZE) ==
               SP_PAGE_SIZE &&
           (!(s->hdr->flags & SP_SWAP_STORE_CACHE_SUMS) || block_sum(page) == sl->next_free);
}

static bool log_reclaim(SpSwapStore *s, uint64_t need)
{
    StoreHdr *h = s->hdr;
    uint64_t want = MAX(need, h->cache_cap / 8);
    uint8_t page[SP_PAGE_SIZE];
    uint64_t tail0 = h->tail;
    while (h->head - h->tail + want > h->cache_cap && h->tail < h->head) {
        Entry *e = entry_at(s, h->tail);
        uint64_t size = sizeof(Entry) + align_up(e->clen);
        if (e->slot == UINT32_MAX) { /* padding to the end */
            h->tail += h->cache_cap - h->tail % h->cache_cap;
            continue;
        }
        Slot *sl = e->slot < h->nslots ? &s->slots[e->slot] : NULL;
        if (sl && sl->state == SLOT_CACHE && sl->where == h->tail) {
            if (!cache_read(s, sl, e, page)) { /* nothing true to write */
                __atomic_store_n(&sl->state, SLOT_LOST, __ATOMIC_RELEASE);
            } else if (file_write(s, e->slot, page)) {
                __atomic_store_n(&sl->state, SLOT_FILE, __ATOMIC_RELEASE);
            } else {
                log_punch(s, tail0, h->tail);
                return false;
            }
            h->st.cache_pages--;
            h->st.cache_bytes -= e->clen;
            h->st.file_pages++;
        }
        h->tail += size;
    }
    log_punch(s, tail0, h->tail);
    return true;
}

/* Append (slot, data) to the log; false if it does not fit. */
static bool log_append(SpSwapStore *s, uint32_t slot, const void *data, uint32_t clen)
{
    StoreHdr *h = s->hdr;
    uint64_t size = sizeof(Entry) + align_up(clen);
    if (size > h->cache_cap / 2)
        return false;
    uint64_t room_to_end = h->cache_cap - h->head % h->cache_cap;
    if (room_to_end < size) { /* pad to the end, start over at 0 */
        if (!log_reclaim(s, room_to_end + size))
            return false;
        if (room_to_end >= sizeof(Entry))
            *entry_at(s, h->head) = (Entry){.slot = UINT32_MAX};
        h->head += room_to_end;
    }
    if (h->head - h->tail + size > h->cache_cap && !log_reclaim(s, size))
        return false;
    Entry *e = entry_at(s, h->head);
    *e = (Entry){.slot = slot, .clen = clen};
    memcpy(e + 1, data, clen);
    s->slots[slot].where = h->head;
    s->slots[slot].clen = clen;
    h->head += size;
    return true;
}

/* --- slots --- */

static uint32_t slot_alloc(SpSwapStore *s)
{
    StoreHdr *h = s->hdr;
    if (h->free_head) {
        uint32_t slot = h->free_head - 1;
        h->free_head = s->slots[slot].next_free;
        return slot;
    }
    if (h->next_unused >= h->nslots)
        return SP_SWAP_NO_SLOT;
    return (uint32_t)h->next_unused++;
}

uint32_t sp_swap_store_put(SpSwapStore *s, const void *page, GError **error)
{
    char buf[LZ4_COMPRESSBOUND(SP_PAGE_SIZE)];
    g_mutex_lock(&s->lock);
    StoreHdr *h = s->hdr;
    uint32_t slot = slot_alloc(s);
    if (slot == SP_SWAP_NO_SLOT) {
        h->st.full++;
        g_mutex_unlock(&s->lock);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                    "the swap file is full (%" G_GUINT64_FORMAT " pages)", h->nslots);
        return SP_SWAP_NO_SLOT;
    }
    int clen = h->cache_cap ? LZ4_compress_default(page, buf, SP_PAGE_SIZE, sizeof(buf)) : 0;
    bool cached =
        clen > 0 && (uint64_t)clen < RAW_LIMIT && log_append(s, slot, buf, (uint32_t)clen);
    if (cached) {
        __atomic_store_n(&s->slots[slot].next_free, block_sum(page), __ATOMIC_SEQ_CST);
        __atomic_store_n(&s->slots[slot].state, SLOT_CACHE, __ATOMIC_RELEASE);
        h->st.cache_pages++;
        h->st.cache_bytes += (uint64_t)clen;
    } else if (file_write(s, slot, page)) {
        __atomic_store_n(&s->slots[slot].state, SLOT_FILE, __ATOMIC_RELEASE);
        h->st.file_pages++;
    } else {
        int e = errno;
        s->slots[slot].next_free = h->free_head;
        h->free_head = slot + 1;
        h->st.full++;
        g_mutex_unlock(&s->lock);
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "cannot write the swap file: %s",
                    g_strerror(e));
        return SP_SWAP_NO_SLOT;
    }
    h->st.slots_used++;
    h->st.puts++;
    g_mutex_unlock(&s->lock);
    return slot;
}

GQuark sp_swap_store_error_quark(void)
{
    return g_quark_from_static_string("sp-swap-store-error-quark");
}

bool sp_swap_store_get(SpSwapStore *s, uint32_t slot, void *page, GError **error)
{
    g_mutex_lock(&s->lock);
    StoreHdr *h = s->hdr;
    Slot *sl = slot < h->nslots ? &s->slots[slot] : NULL;
    bool ok = false;
    const char *why = "it holds nothing";
    g_autofree char *io = NULL;
    if (sl && sl->state == SLOT_CACHE) {
        Entry *e = entry_at(s, sl->where);
        ok = e->slot == slot && cache_read(s, sl, e, page);
        why = e->slot != slot ? "its compressed copy is another slot's"
                              : "its compressed copy is not what was put (corrupt, or its "
                                "checksum differs)";
    } else if (sl && sl->state == SLOT_LOST) {
        why = "its compressed copy was not what was put when it was to go to the swap file";
    } else if (sl && sl->state == SLOT_FILE) {
        ssize_t n = pread(s->file_fd, page, SP_PAGE_SIZE, (off_t)slot * SP_PAGE_SIZE);
        ok = n == SP_PAGE_SIZE &&
             (!(h->flags & SP_SWAP_STORE_SUMS) || block_sum(page) == sl->next_free);
        if (ok)
            h->st.bytes_read += SP_PAGE_SIZE;
        else if (n == SP_PAGE_SIZE)
            why = "the swap file does not hold what was written there (its checksum differs)";
        else if (n < 0)
            why = io = g_strdup_printf("the swap file cannot be read: %s", g_strerror(errno));
        else
            why = io = g_strdup_printf("only %zd of its 4096 bytes are in the swap file", n);
    }
    if (ok)
        h->st.gets++;
    g_mutex_unlock(&s->lock);
    if (!ok)
        g_set_error(error, SP_SWAP_STORE_ERROR, SP_SWAP_STORE_ERROR_UNREADABLE,
                    "swap slot %u cannot be read: %s", slot, why);
    return ok;
}

void sp_swap_store_drop(SpSwapStore *s, uint32_t slot)
{
    g_mutex_lock(&s->lock);
    StoreHdr *h = s->hdr;
    Slot *sl = slot < h->nslots ? &s->slots[slot] : NULL;
    if (sl && sl->state != SLOT_FREE) {
        uint32_t was = sl->state;
        /* Forgotten first, its block punched after: the table outlives a
         * crash of samepaged (swap-adopt.c), and a slot still owned whose
         * block was punched already would give its owner back a page of
         * zeros (seen: a frame restored, then killed inside this drop; the
         * next samepaged wrote the zeros back into the pool for every
         * sharer).  A crash after this leaves at worst a block unpunched. */
        __atomic_store_n(&sl->owner, SP_SWAP_OWNER_NONE, __ATOMIC_SEQ_CST);
        __atomic_store_n(&sl->state, SLOT_FREE, __ATOMIC_SEQ_CST);
        if (was == SLOT_CACHE) {
            h->st.cache_pages--;
            h->st.cache_bytes -= sl->clen;
        } else {
            h->st.file_pages--;
        }
        *sl = (Slot){.state = SLOT_FREE, .next_free = h->free_head};
        h->free_head = slot + 1;
        h->st.slots_used--;
        if (was == SLOT_FILE)
            fallocate(s->file_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      (off_t)slot * SP_PAGE_SIZE, SP_PAGE_SIZE);
    }
    g_mutex_unlock(&s->lock);
}

void sp_swap_store_flush(SpSwapStore *s)
{
    g_mutex_lock(&s->lock);
    if (s->hdr->cache_cap)
        log_reclaim(s, 0);
    g_mutex_unlock(&s->lock);
}

uint32_t sp_swap_store_flags(SpSwapStore *s)
{
    g_mutex_lock(&s->lock);
    uint32_t f = s->hdr->flags;
    g_mutex_unlock(&s->lock);
    return f;
}

void sp_swap_store_clear_flags(SpSwapStore *s, uint32_t flags)
{
    g_mutex_lock(&s->lock);
    s->hdr->flags &= ~flags;
    g_mutex_unlock(&s->lock);
}

void sp_swap_store_stats(SpSwapStore *s, SpSwapStoreStats *out)
{
    g_mutex_lock(&s->lock);
    *out = s->hdr->st;
    out->meta_bytes = s->meta_len;
    struct stat st;
    out->mem_bytes = 0;
    if (fstat(s->meta_fd, &st) == 0)
        out->mem_bytes += (uint64_t)st.st_blocks * 512;
    if (s->cache_fd >= 0 && fstat(s->cache_fd, &st) == 0)
        out->mem_bytes += (uint64_t)st.st_blocks * 512;
    g_mutex_unlock(&s->lock);
}
