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
 * Invariants: a slot is FREE (on the free list, or about to be: pinned or
 * its block being punched, below), CACHE (`where` = the log counter of its
 * entry, tail <= where < head), FILE (its block in the
 * file) or LOST (its compressed copy was not what was put when the tail
 * passed it: nothing to read).  In a store with SP_SWAP_STORE_SUMS,
 * `next_free` of a FILE slot holds a checksum of the block as written; with
 * SP_SWAP_STORE_CACHE_SUMS, that of a CACHE slot holds the page's - set
 * before the slot turns FILE or CACHE, so that a crash at any instruction
 * leaves none stale.  used = CACHE + FILE + LOST slots (LOST ones counted
 * as file pages: their owner frees them as it frees a FILE slot).
 *
 * Locking: the mutex guards the header, the slot table and the log, never
 * file I/O.  A read of a block (sp_swap_store_get), a put's block write,
 * the tail's moves to the file and the punch of a dropped slot's block
 * (to_punch, store_unlock) run without it, so that a swap-in waits
 * neither for another's disk read nor for the tail writing a batch nor for
 * the file system's journal (bench/store-latency measures it; the tier's
 * own punch stays under it, once per tail pass).  A slot in use so pins itself
 * (`pins`): dropped meanwhile, it turns FREE at once but reaches the free
 * list, and its block is punched, only when the last pin goes - so a slot
 * is never reused, nor its block overwritten, under a read or a write.  A
 * put's new slot is nobody's until put returns.  One thread at a time
 * moves the tail (tail_busy; others needing room wait on tail_done); the
 * entries it moves stay in the log, live, until their slots turned FILE,
 * so a read meanwhile finds them there.  A crash in between leaves them
 * CACHE (the file's half-written blocks unread), or a slot FREE and off
 * the free list (a put's or a drop's in flight): a slot of file lost to
 * the store that takes this one over, never a wrong page.
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

/* A slot in use outside the lock (a read of its block, its copy on the way
 * to the file): a drop meanwhile frees it only when the last user is done. */
typedef struct Pin {
    uint32_t users;
    bool dropped; /* freed meanwhile: its block punched, then onto the free list, after the last
                     unpin */
} Pin;

/* The tail moves copies to the file a batch at a time (2^6 pages). */
#define TAIL_BATCH 64

typedef struct Moving {
    uint32_t slot;
    uint64_t where; /* its entry's log counter */
    uint32_t sum;   /* the page's checksum, for its FILE slot */
    bool ok;        /* decompressed to what was put and written */
    bool bad;       /* did not decompress to what was put */
} Moving;

struct SpSwapStore {
    GMutex lock;
    GCond tail_done;   /* a tail pass ended (tail_busy cleared) */
    bool tail_busy;    /* a thread moves the tail's copies to the file (unlocked at times) */
    GHashTable *pins;  /* slot -> Pin *: slots in use outside the lock */
    GArray *to_punch;  /* uint32_t: slots FREE whose block is punched before they are reused */
    Moving *moving;    /* TAIL_BATCH, the tail pass's batch */
    uint8_t *move_buf; /* TAIL_BATCH pages */
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

static SpSwapStore *store_alloc(void)
{
    SpSwapStore *s = g_new0(SpSwapStore, 1);
    g_mutex_init(&s->lock);
    g_cond_init(&s->tail_done);
    s->pins = g_hash_table_new_full(NULL, NULL, NULL, g_free);
    s->to_punch = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    s->moving = g_new(Moving, TAIL_BATCH);
    s->move_buf = g_malloc((size_t)TAIL_BATCH * SP_PAGE_SIZE);
    s->meta_fd = s->cache_fd = s->file_fd = -1;
    return s;
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
    SpSwapStore *s = store_alloc();
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
    SpSwapStore *s = store_alloc();
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
    g_hash_table_destroy(s->pins);
    g_array_free(s->to_punch, TRUE);
    g_free(s->moving);
    g_free(s->move_buf);
    g_cond_clear(&s->tail_done);
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

/* page into slot's block (no lock needed: nobody else writes that block,
 * nor reads it before the slot turns FILE). */
static bool file_write(SpSwapStore *s, uint32_t slot, const void *page)
{
    return pwrite(s->file_fd, page, SP_PAGE_SIZE, (off_t)slot * SP_PAGE_SIZE) == SP_PAGE_SIZE;
}

/* slot's block written: its checksum in the slot, then the slot FILE, so
 * that a crash between the two leaves no stale sum (lock held). */
static void slot_to_file(SpSwapStore *s, uint32_t slot, uint32_t sum)
{
    s->hdr->st.bytes_written += SP_PAGE_SIZE;
    __atomic_store_n(&s->slots[slot].next_free, sum, __ATOMIC_SEQ_CST);
    __atomic_store_n(&s->slots[slot].state, SLOT_FILE, __ATOMIC_RELEASE);
}

/* --- slots in use outside the lock (lock held) --- */

static void free_push(SpSwapStore *s, uint32_t slot)
{
    s->slots[slot] = (Slot){.state = SLOT_FREE, .next_free = s->hdr->free_head};
    s->hdr->free_head = slot + 1;
}

static void pin(SpSwapStore *s, uint32_t slot)
{
    Pin *p = g_hash_table_lookup(s->pins, GUINT_TO_POINTER(slot));
    if (!p) {
        p = g_new0(Pin, 1);
        g_hash_table_insert(s->pins, GUINT_TO_POINTER(slot), p);
    }
    p->users++;
}

/* A dropped slot back to the free list; one whose block may hold data
 * first has it punched, by store_unlock, without the lock. */
static void slot_release(SpSwapStore *s, uint32_t slot, bool punch)
{
    if (punch)
        g_array_append_val(s->to_punch, slot);
    else
        free_push(s, slot);
}

static void unpin(SpSwapStore *s, uint32_t slot)
{
    Pin *p = g_hash_table_lookup(s->pins, GUINT_TO_POINTER(slot));
    if (--p->users)
        return;
    if (p->dropped) /* its block was read or written: punch it */
        slot_release(s, slot, true);
    g_hash_table_remove(s->pins, GUINT_TO_POINTER(slot));
}

/* Unlock; punch the blocks of the slots released meanwhile (an ext4 punch
 * can wait for the journal: not under the lock), then free them. */
static void store_unlock(SpSwapStore *s)
{
    if (!s->to_punch->len) {
        g_mutex_unlock(&s->lock);
        return;
    }
    GArray *p = s->to_punch;
    s->to_punch = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    g_mutex_unlock(&s->lock);
    for (guint i = 0; i < p->len; i++)
        fallocate(s->file_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  (off_t)g_array_index(p, uint32_t, i) * SP_PAGE_SIZE, SP_PAGE_SIZE);
    g_mutex_lock(&s->lock);
    for (guint i = 0; i < p->len; i++)
        free_push(s, g_array_index(p, uint32_t, i));
    g_mutex_unlock(&s->lock);
    g_array_free(p, TRUE);
}

/* --- the compressed tier's log --- */

static Entry *entry_at(SpSwapStore *s, uint64_t counter)
{
    return (Entry *)(s->cache + counter % s->hdr->cache_cap);
}

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
 * decompress to a page, or (CACHE_SUMS) to the page that was put (sum). */
static bool cache_read(SpSwapStore *s, uint32_t sum, const Entry *e, void *page)
{
    return LZ4_decompress_safe((const char *)(e + 1), page, (int)e->clen, SP_PAGE_SIZE) ==
               SP_PAGE_SIZE &&
           (!(s->hdr->flags & SP_SWAP_STORE_CACHE_SUMS) || block_sum(page) == sum);
}

/* A CACHE slot whose entry is at counter `where` (lock held). */
static bool entry_live(SpSwapStore *s, uint32_t slot, uint64_t where)
{
    return slot < s->hdr->nslots && s->slots[slot].state == SLOT_CACHE &&
           s->slots[slot].where == where;
}

/* One batch of the tail pass: from the tail, while the log holds more than
 * cap - want, up to TAIL_BATCH live entries moved to the file - gathered
 * and pinned with the lock held, decompressed, checked and written without
 * it, their slots turned FILE (or LOST: not what was put) with it again -
 * and the tail moved past them.  false if a write failed (the file is full
 * or broken): the tail stops at that entry, still live.  Lock held. */
static bool tail_batch(SpSwapStore *s, uint64_t want)
{
    StoreHdr *h = s->hdr;
    uint64_t scan = h->tail;
    uint32_t n = 0;
    while (n < TAIL_BATCH && scan < h->head && h->head - scan + want > h->cache_cap) {
        Entry *e = entry_at(s, scan);
        if (e->slot == UINT32_MAX) { /* padding to the end */
            scan += h->cache_cap - scan % h->cache_cap;
            continue;
        }
        if (entry_live(s, e->slot, scan)) {
            s->moving[n++] = (Moving){.slot = e->slot, .where = scan};
            pin(s, e->slot);
        }
        scan += sizeof(Entry) + align_up(e->clen);
    }
    /* Unlocked: the entries stay (the tail has not passed them), their
     * slots pinned; the sums are read now, while they cannot change. */
    uint32_t sums[TAIL_BATCH];
    for (uint32_t i = 0; i < n; i++)
        sums[i] = s->slots[s->moving[i].slot].next_free;
    g_mutex_unlock(&s->lock);
    bool wrote_all = true;
    for (uint32_t i = 0; i < n; i++) {
        Moving *m = &s->moving[i];
        uint8_t *page = s->move_buf + (size_t)i * SP_PAGE_SIZE;
        m->bad = !cache_read(s, sums[i], entry_at(s, m->where), page);
        /* (with CACHE_SUMS cache_read checked the page against its sum) */
        m->sum = s->hdr->flags & SP_SWAP_STORE_CACHE_SUMS ? sums[i] : block_sum(page);
        m->ok = !m->bad && wrote_all && file_write(s, m->slot, page);
        wrote_all &= m->ok || m->bad;
    }
    g_mutex_lock(&s->lock);
    for (uint32_t i = 0; i < n; i++) {
        Moving *m = &s->moving[i];
        if (!m->ok && !m->bad) { /* a write failed: the tail stops here */
            for (uint32_t j = i; j < n; j++)
                unpin(s, s->moving[j].slot);
            scan = m->where;
            break;
        }
        if (entry_live(s, m->slot, m->where)) { /* not dropped meanwhile */
            Entry *e = entry_at(s, m->where);
            h->st.cache_pages--;
            h->st.cache_bytes -= e->clen;
            h->st.file_pages++;
            if (m->ok) /* nothing true to write when bad: it turns LOST */
                slot_to_file(s, m->slot, m->sum);
            else
                __atomic_store_n(&s->slots[m->slot].state, SLOT_LOST, __ATOMIC_RELEASE);
        }
        unpin(s, m->slot);
    }
    h->tail = scan;
    return wrote_all;
}

/* Reclaim from the tail until `need` more bytes fit, and at least an
 * eighth of the tier (a pass), writing live entries to the file, then give
 * back the tier's memory the tail passed (once per pass: a punch of the
 * mapped tier costs a TLB flush on every CPU, measured worse per batch).
 * false if a write failed (the file is full or broken).  Lock held;
 * dropped and taken again (tail_batch), and while another thread's pass
 * runs this one waits for it and returns true: the caller looks for room
 * again. */
static bool log_reclaim(SpSwapStore *s, uint64_t need)
{
    StoreHdr *h = s->hdr;
    if (s->tail_busy) {
        while (s->tail_busy)
            g_cond_wait(&s->tail_done, &s->lock);
        return true;
    }
    s->tail_busy = true;
    uint64_t want = MAX(need, h->cache_cap / 8);
    uint64_t tail0 = h->tail;
    bool ok = true;
    while (ok && h->head - h->tail + want > h->cache_cap && h->tail < h->head)
        ok = tail_batch(s, want);
    log_punch(s, tail0, h->tail);
    s->tail_busy = false;
    g_cond_broadcast(&s->tail_done);
    return ok;
}

/* Append (slot, data) to the log; false if it does not fit (lock held;
 * log_reclaim may drop it meanwhile). */
static bool log_append(SpSwapStore *s, uint32_t slot, const void *data, uint32_t clen)
{
    StoreHdr *h = s->hdr;
    uint64_t size = sizeof(Entry) + align_up(clen);
    if (size > h->cache_cap / 2)
        return false;
    uint64_t room_to_end;
    for (;;) { /* room for the entry, and for padding first if it does not fit before the end */
        room_to_end = h->cache_cap - h->head % h->cache_cap;
        uint64_t need = room_to_end < size ? room_to_end + size : size;
        if (h->head - h->tail + need <= h->cache_cap)
            break;
        if (!log_reclaim(s, need))
            return false;
    }
    if (room_to_end < size) { /* pad to the end, start over at 0 */
        if (room_to_end >= sizeof(Entry))
            *entry_at(s, h->head) = (Entry){.slot = UINT32_MAX};
        h->head += room_to_end;
    }
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
    /* Compressed and summed before the lock: cache_cap never changes. */
    int clen = s->hdr->cache_cap ? LZ4_compress_default(page, buf, SP_PAGE_SIZE, sizeof(buf)) : 0;
    uint32_t sum = block_sum(page);
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
    /* The slot is nobody's until this returns: nothing reads or drops it. */
    bool cached =
        clen > 0 && (uint64_t)clen < RAW_LIMIT && log_append(s, slot, buf, (uint32_t)clen);
    if (cached) {
        __atomic_store_n(&s->slots[slot].next_free, sum, __ATOMIC_SEQ_CST);
        __atomic_store_n(&s->slots[slot].state, SLOT_CACHE, __ATOMIC_RELEASE);
        h->st.cache_pages++;
        h->st.cache_bytes += (uint64_t)clen;
    } else {
        g_mutex_unlock(&s->lock);
        bool wrote = file_write(s, slot, page);
        int e = errno;
        g_mutex_lock(&s->lock);
        if (!wrote) {
            free_push(s, slot);
            h->st.full++;
            store_unlock(s);
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e),
                        "cannot write the swap file: %s", g_strerror(e));
            return SP_SWAP_NO_SLOT;
        }
        slot_to_file(s, slot, sum);
        h->st.file_pages++;
    }
    h->st.slots_used++;
    h->st.puts++;
    store_unlock(s);
    return slot;
}

GQuark sp_swap_store_error_quark(void)
{
    return g_quark_from_static_string("sp-swap-store-error-quark");
}

/* Read a FILE slot's block without the lock (held on entry and on return):
 * pinned meanwhile, so that a drop cannot free, punch or reuse it. */
static bool file_read(SpSwapStore *s, uint32_t slot, void *page, const char **why, char **io)
{
    StoreHdr *h = s->hdr;
    uint32_t sum = s->slots[slot].next_free;
    bool sums = h->flags & SP_SWAP_STORE_SUMS;
    pin(s, slot);
    g_mutex_unlock(&s->lock);
    ssize_t n = pread(s->file_fd, page, SP_PAGE_SIZE, (off_t)slot * SP_PAGE_SIZE);
    int e = errno;
    bool ok = n == SP_PAGE_SIZE && (!sums || block_sum(page) == sum);
    g_mutex_lock(&s->lock);
    unpin(s, slot);
    if (ok)
        h->st.bytes_read += SP_PAGE_SIZE;
    else if (n == SP_PAGE_SIZE)
        *why = "the swap file does not hold what was written there (its checksum differs)";
    else if (n < 0)
        *why = *io = g_strdup_printf("the swap file cannot be read: %s", g_strerror(e));
    else
        *why = *io = g_strdup_printf("only %zd of its 4096 bytes are in the swap file", n);
    return ok;
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
        ok = e->slot == slot && cache_read(s, sl->next_free, e, page);
        why = e->slot != slot ? "its compressed copy is another slot's"
                              : "its compressed copy is not what was put (corrupt, or its "
                                "checksum differs)";
    } else if (sl && sl->state == SLOT_LOST) {
        why = "its compressed copy was not what was put when it was to go to the swap file";
    } else if (sl && sl->state == SLOT_FILE) {
        ok = file_read(s, slot, page, &why, &io);
    }
    if (ok)
        h->st.gets++;
    store_unlock(s);
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
        h->st.slots_used--;
        Pin *p = g_hash_table_lookup(s->pins, GUINT_TO_POINTER(slot));
        if (p) { /* read or moved to the file right now: freed when that is done */
            p->dropped = true;
            *sl = (Slot){.state = SLOT_FREE};
        } else {
            *sl = (Slot){.state = SLOT_FREE};
            slot_release(s, slot, was == SLOT_FILE);
        }
    }
    store_unlock(s);
}

void sp_swap_store_flush(SpSwapStore *s)
{
    g_mutex_lock(&s->lock);
    if (s->hdr->cache_cap)
        log_reclaim(s, 0);
    store_unlock(s);
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
