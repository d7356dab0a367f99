/* SPDX-License-Identifier: MIT */
/*
 * test-swap-store.c - the swap store alone (rmap/swap-store.c): contents
 * come back byte for byte while the compressed tier's log wraps many
 * times and gives back the memory its tail passed, the store's memory
 * figure (what the balancer charges) follows what it holds, not its size,
 * a block or a compressed copy that is not what was put fails its read
 * (never other bytes), and a store is taken over from O_PATH descriptors
 * after a new one replaced its file (what a samepaged restarted after a
 * crash does).  A file system that fills under the tier's tail fails the
 * put, not a page put before.  The store does no file I/O under its lock:
 * a read blocked in the file lets drops and puts go on, a slot dropped
 * under it is reused only after it, and reads, puts, drops and the tier's
 * tail running at once from several threads give back every content as
 * put.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rmap/guest-mem.h"
#include "rmap/swap-store.h"

#define TIER (1u << 20)

/* Content n: compressible (mostly a repeated word) or not (a generator's). */
static void fill(uint8_t *p, uint64_t n, bool compressible)
{
    uint64_t *w = (uint64_t *)p, x = n * 0x9e3779b97f4a7c15ULL + 1;
    for (size_t i = 0; i < SP_PAGE_SIZE / 8; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* compressible: one word in 16 random (~300 bytes compressed) */
        w[i] = compressible && i % 16 ? (n + 1) * 0x0101010101010101ULL : x;
    }
}

/* A store of 64 MiB with a compressed tier of `tier` bytes (0: none) in a
 * new temporary directory *dir, its file *dir/swap. */
static SpSwapStore *new_store_tier(char **dir, uint64_t tier)
{
    g_autoptr(GError) err = NULL;
    *dir = g_dir_make_tmp("sp-store-XXXXXX", &err);
    g_assert_no_error(err);
    g_autofree char *path = g_build_filename(*dir, "swap", NULL);
    SpSwapStore *s = sp_swap_store_new(path, 64ull << 20, tier, &err);
    g_assert_no_error(err);
    return s;
}

static SpSwapStore *new_store(char **dir)
{
    return new_store_tier(dir, TIER);
}

static void remove_store(SpSwapStore *s, char *dir)
{
    sp_swap_store_free(s);
    g_autofree char *path = g_build_filename(dir, "swap", NULL);
    g_unlink(path);
    g_rmdir(dir);
}

/* slot's read fails as unreadable, with `why` in its message. */
static void expect_unreadable(SpSwapStore *s, uint32_t slot, const char *why)
{
    g_autoptr(GError) err = NULL;
    uint8_t back[SP_PAGE_SIZE];
    g_assert_false(sp_swap_store_get(s, slot, back, &err));
    g_assert_error(err, SP_SWAP_STORE_ERROR, SP_SWAP_STORE_ERROR_UNREADABLE);
    g_test_message("%s", err->message);
    g_assert_nonnull(strstr(err->message, why));
}

/* 40,000 compressible pages through a 1 MiB tier, 600 held at a time:
 * the log (~8 MiB of entries) wraps about eight times; every content read
 * back is the one put. */
static void test_tier_wraps(void)
{
    g_autofree char *dir = NULL;
    SpSwapStore *s = new_store(&dir);
    enum { HELD = 600, TOTAL = 40000 };
    uint32_t slot[HELD];
    uint8_t page[SP_PAGE_SIZE], back[SP_PAGE_SIZE];
    SpSwapStoreStats st;
    uint64_t most = 0;
    for (uint64_t n = 0; n < TOTAL; n++) {
        if (n >= HELD) {
            uint64_t old = n - HELD;
            g_autoptr(GError) err = NULL;
            fill(page, old, old % 3 != 0);
            g_assert_true(sp_swap_store_get(s, slot[old % HELD], back, &err));
            g_assert_no_error(err);
            g_assert_true(memcmp(page, back, SP_PAGE_SIZE) == 0);
            sp_swap_store_drop(s, slot[old % HELD]);
        }
        g_autoptr(GError) err = NULL;
        fill(page, n, n % 3 != 0); /* every third page goes straight to the file */
        slot[n % HELD] = sp_swap_store_put(s, page, &err);
        g_assert_no_error(err);
        g_assert_cmpuint(slot[n % HELD], !=, SP_SWAP_NO_SLOT);
        sp_swap_store_stats(s, &st);
        most = MAX(most, st.mem_bytes);
    }
    sp_swap_store_stats(s, &st);
    g_test_message("%" G_GUINT64_FORMAT " puts; tier %" G_GUINT64_FORMAT
                   " pages now; the store's memory at most %" G_GUINT64_FORMAT
                   " bytes (tier %u, slot table %" G_GUINT64_FORMAT ")",
                   st.puts, st.cache_pages, most, TIER, st.meta_bytes);
    g_assert_cmpuint(st.cache_pages, >, 0);
    g_assert_cmpuint(st.file_pages, >, 0);
    g_assert_cmpuint(most, <=, (uint64_t)TIER + st.meta_bytes);
    remove_store(s, dir);
}

/* Contents that do not compress never use the tier: the store's memory
 * stays a small part of its size (what the balancer charges). */
static void test_memory_follows_use(void)
{
    g_autofree char *dir = NULL;
    SpSwapStore *s = new_store(&dir);
    uint8_t page[SP_PAGE_SIZE];
    SpSwapStoreStats st;
    for (uint64_t n = 0; n < 2000; n++) {
        g_autoptr(GError) err = NULL;
        fill(page, n, false);
        g_assert_cmpuint(sp_swap_store_put(s, page, &err), !=, SP_SWAP_NO_SLOT);
    }
    sp_swap_store_stats(s, &st);
    g_test_message("2000 incompressible pages: tier %" G_GUINT64_FORMAT
                   " pages, the store's memory %" G_GUINT64_FORMAT
                   " bytes (sizes: tier %" G_GUINT64_FORMAT ", slot table %" G_GUINT64_FORMAT ")",
                   st.cache_pages, st.mem_bytes, st.cache_capacity, st.meta_bytes);
    g_assert_cmpuint(st.cache_pages, ==, 0);
    g_assert_cmpuint(st.file_pages, ==, 2000);
    g_assert_cmpuint(st.mem_bytes, <, st.cache_capacity / 8);
    g_assert_cmpuint(st.mem_bytes, <, st.meta_bytes);
    remove_store(s, dir);
}

static void count_owned(uint32_t slot, const SpSwapOwner *o, gpointer data)
{
    (void)slot;
    GArray *a = data;
    g_array_append_val(a, *o);
}

typedef struct OwnedSlot {
    uint32_t slot;
    SpSwapOwner o;
} OwnedSlot;

static void note_owned(uint32_t slot, const SpSwapOwner *o, gpointer data)
{
    OwnedSlot os = {.slot = slot, .o = *o};
    g_array_append_val((GArray *)data, os);
}

static bool all_zero(const uint8_t *p)
{
    for (size_t i = 0; i < SP_PAGE_SIZE; i++)
        if (p[i])
            return false;
    return true;
}

static int path_fd(int fd)
{
    g_autofree char *p = g_strdup_printf("/proc/self/fd/%d", fd);
    int r = open(p, O_PATH | O_CLOEXEC);
    g_assert_cmpint(r, >=, 0);
    return r;
}

/* Contents in the tier and in the file, with owners; O_PATH descriptors
 * of the store kept (as a VM process keeps them); a new store at the same
 * path replaces the file; the old one, taken over from the descriptors,
 * still gives every content back with its owner, and a dropped slot has
 * none (the blocks in the file checked against the sums its table kept);
 * its flags (SP_SWAP_STORE_EXACT, cleared there) are those it had. */
static void test_adopt(void)
{
    g_autofree char *dir = NULL;
    SpSwapStore *s = new_store(&dir);
    enum { N = 600 }; /* 1 MiB tier: the incompressible half goes to the file */
    uint32_t slot[N];
    uint8_t page[SP_PAGE_SIZE], back[SP_PAGE_SIZE];
    g_autoptr(GError) err = NULL;
    for (uint32_t i = 0; i < N; i++) {
        fill(page, i, i % 2);
        slot[i] = sp_swap_store_put(s, page, &err);
        g_assert_no_error(err);
        SpSwapOwner o = {.kind = SP_SWAP_OWNER_PAGE + i % 3, .a = 1000 + i, .b = i};
        sp_swap_store_set_owner(s, slot[i], &o);
    }
    sp_swap_store_drop(s, slot[7]);
    /* A new store is EXACT (every page out has a slot) and keeps both sums; what
     * a samepaged clears there stays cleared for the one that takes it over. */
    g_assert_cmphex(sp_swap_store_flags(s), ==,
                    SP_SWAP_STORE_EXACT | SP_SWAP_STORE_SUMS | SP_SWAP_STORE_CACHE_SUMS);
    sp_swap_store_clear_flags(s, SP_SWAP_STORE_EXACT);
    int m, c, f, fds[3];
    sp_swap_store_fds(s, &m, &c, &f);
    fds[0] = path_fd(m), fds[1] = path_fd(c), fds[2] = path_fd(f);
    sp_swap_store_free(s); /* a crash: only the kept descriptors hold it */
    g_autofree char *path = g_build_filename(dir, "swap", NULL);
    SpSwapStore *fresh = sp_swap_store_new(path, 64ull << 20, TIER, &err);
    g_assert_no_error(err);
    SpSwapStore *old = sp_swap_store_adopt(fds[0], fds[1], fds[2], &err);
    g_assert_no_error(err);
    g_assert_cmphex(sp_swap_store_flags(old), ==, SP_SWAP_STORE_SUMS | SP_SWAP_STORE_CACHE_SUMS);
    g_assert_cmphex(sp_swap_store_flags(fresh), ==,
                    SP_SWAP_STORE_EXACT | SP_SWAP_STORE_SUMS | SP_SWAP_STORE_CACHE_SUMS);
    g_autoptr(GArray) owned = g_array_new(FALSE, FALSE, sizeof(SpSwapOwner));
    sp_swap_store_foreach_owned(old, count_owned, owned);
    g_assert_cmpuint(owned->len, ==, N - 1);
    for (guint k = 0; k < owned->len; k++) {
        SpSwapOwner *o = &g_array_index(owned, SpSwapOwner, k);
        uint32_t i = (uint32_t)o->b;
        g_assert_cmpuint(i, !=, 7);
        g_assert_cmpuint(o->a, ==, 1000 + i);
        g_assert_cmpuint(o->kind, ==, SP_SWAP_OWNER_PAGE + i % 3);
        fill(page, i, i % 2);
        g_assert_true(sp_swap_store_get(old, slot[i], back, &err));
        g_assert_no_error(err);
        g_assert_cmpmem(back, SP_PAGE_SIZE, page, SP_PAGE_SIZE);
    }
    SpSwapStoreStats st;
    sp_swap_store_stats(old, &st);
    g_assert_cmpuint(st.file_pages, >, 0);
    g_assert_cmpuint(st.cache_pages, >, 0);
    sp_swap_store_stats(fresh, &st);
    g_assert_cmpuint(st.slots_used, ==, 0);
    sp_swap_store_free(old);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    remove_store(fresh, dir);
}

/* A samepaged killed anywhere leaves a store whose every owned slot still
 * reads the content it was put with: a child puts and drops pages (a ring
 * of 64, half of them too random for the tier: file slots, whose drop
 * punches the file) until it is killed with SIGKILL at a random moment;
 * the store is then taken over as a restarted samepaged would.  Before the
 * drop forgot a slot first, a kill inside the punch left a slot owned
 * whose block read as zeros. */
static void test_crash_anywhere(void)
{
    enum { ROUNDS = 30, RING = 64 };
    uint64_t checked = 0;
    for (int round = 0; round < ROUNDS; round++) {
        g_autofree char *dir = NULL;
        SpSwapStore *s = new_store(&dir);
        int ready[2];
        g_assert_cmpint(pipe(ready), ==, 0);
        pid_t pid = fork();
        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
            uint32_t ring[RING] = {0};
            uint8_t page[SP_PAGE_SIZE];
            for (uint64_t n = 0;; n++) {
                if (n >= RING)
                    sp_swap_store_drop(s, ring[n % RING]);
                fill(page, n, n % 2);
                uint32_t slot = sp_swap_store_put(s, page, NULL);
                if (slot == SP_SWAP_NO_SLOT)
                    _exit(3);
                SpSwapOwner o = {.kind = SP_SWAP_OWNER_PAGE, .a = 42, .b = n};
                sp_swap_store_set_owner(s, slot, &o);
                ring[n % RING] = slot;
                if (n == RING && write(ready[1], "", 1) != 1)
                    _exit(4);
            }
        }
        char one;
        g_assert_cmpint(read(ready[0], &one, 1), ==, 1); /* the ring is full */
        close(ready[0]);
        close(ready[1]);
        g_usleep(g_random_int_range(0, 10000));
        g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
        int status = 0;
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_assert_true(WIFSIGNALED(status)); /* not an early exit of its own */
        int m, c, f;
        sp_swap_store_fds(s, &m, &c, &f);
        g_autoptr(GError) err = NULL;
        SpSwapStore *old = sp_swap_store_adopt(m, c, f, &err);
        g_assert_no_error(err);
        g_autoptr(GArray) owned = g_array_new(FALSE, FALSE, sizeof(OwnedSlot));
        sp_swap_store_foreach_owned(old, note_owned, owned);
        g_assert_cmpuint(owned->len, >=, RING - 1); /* a kill inside a drop: one fewer */
        g_assert_cmpuint(owned->len, <=, RING);
        for (guint k = 0; k < owned->len; k++) {
            const OwnedSlot *os = &g_array_index(owned, OwnedSlot, k);
            const SpSwapOwner *o = &os->o;
            uint8_t want[SP_PAGE_SIZE], got[SP_PAGE_SIZE];
            fill(want, o->b, o->b % 2);
            g_assert_true(sp_swap_store_get(old, os->slot, got, &err));
            g_assert_no_error(err);
            if (memcmp(got, want, SP_PAGE_SIZE) != 0)
                g_error("round %d: slot %u (page %" G_GUINT64_FORMAT ") reads another content "
                        "after the kill%s",
                        round, os->slot, o->b, all_zero(got) ? " (zeros)" : "");
            checked++;
        }
        sp_swap_store_free(old);
        remove_store(s, dir);
    }
    g_test_message("%" G_GUINT64_FORMAT " owned slots read back after %d kills", checked, ROUNDS);
}

/* A slot the store cannot read back says why, as
 * SP_SWAP_STORE_ERROR_UNREADABLE (what ends the VM that faults on it,
 * sharing/swap.c): a block that reads back as other bytes without an error
 * (zeros: a file cut short, then written past), a swap file cut short, a
 * slot that holds nothing. */
static void test_unreadable(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = NULL;
    SpSwapStore *s = new_store_tier(&dir, 0); /* no tier: the file */
    g_autofree char *path = g_build_filename(dir, "swap", NULL);
    uint8_t page[SP_PAGE_SIZE], back[SP_PAGE_SIZE];
    fill(page, 7, false);
    uint32_t slot = sp_swap_store_put(s, page, &err);
    g_assert_no_error(err);
    g_assert_true(sp_swap_store_get(s, slot, back, &err));
    g_assert_cmpmem(back, SP_PAGE_SIZE, page, SP_PAGE_SIZE);
    g_assert_true(sp_swap_store_flags(s) & SP_SWAP_STORE_SUMS);
    static const uint8_t zeros[SP_PAGE_SIZE];
    int fd = open(path, O_WRONLY);
    g_assert_cmpint(pwrite(fd, zeros, SP_PAGE_SIZE, (off_t)slot * SP_PAGE_SIZE), ==, SP_PAGE_SIZE);
    close(fd);
    expect_unreadable(s, slot, "does not hold what was written there");
    g_assert_cmpint(truncate(path, 0), ==, 0);
    expect_unreadable(s, slot, "only 0 of its 4096 bytes are in the swap file");
    sp_swap_store_drop(s, slot);
    expect_unreadable(s, slot, "holds nothing");
    remove_store(s, dir);
}

/* A compressed copy that is not what was put (a stray write into the
 * tier's memory, which outlives samepaged: swap-adopt.c) fails the read -
 * a flipped literal byte still decompresses, to other bytes - and is not
 * laundered into the file under a checksum of its own when the tier's
 * tail passes it: the slot stays unreadable.  The other slots
 * read back, and the store goes on taking pages. */
static void test_tier_corrupt(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = NULL;
    SpSwapStore *s = new_store(&dir);
    g_assert_true(sp_swap_store_flags(s) & SP_SWAP_STORE_CACHE_SUMS);
    uint8_t a[SP_PAGE_SIZE], b[SP_PAGE_SIZE], c[SP_PAGE_SIZE], back[SP_PAGE_SIZE];
    fill(a, 11, true);
    fill(b, 12, true);
    fill(c, 13, true);
    uint32_t sa = sp_swap_store_put(s, a, &err), sb = sp_swap_store_put(s, b, &err);
    g_assert_no_error(err);
    SpSwapStoreStats st;
    sp_swap_store_stats(s, &st);
    g_assert_cmpuint(st.cache_pages, ==, 2);
    /* a's first word is one of its random ones: a literal in the log */
    int mfd, cfd, ffd;
    sp_swap_store_fds(s, &mfd, &cfd, &ffd);
    g_assert_cmpint(cfd, >=, 0);
    g_autofree uint8_t *log = g_malloc(TIER);
    g_assert_cmpint(pread(cfd, log, TIER, 0), ==, TIER);
    const uint8_t *lit = memmem(log, TIER, a, 8);
    g_assert_nonnull(lit);
    uint8_t flipped = lit[3] ^ 0x40;
    g_assert_cmpint(pwrite(cfd, &flipped, 1, (lit - log) + 3), ==, 1);
    expect_unreadable(s, sa, "its compressed copy is not what was put");
    g_assert_true(sp_swap_store_get(s, sb, back, &err));
    g_assert_cmpmem(back, SP_PAGE_SIZE, b, SP_PAGE_SIZE);
    /* 5,000 more pages through the 1 MiB tier (each dropped at once): its
     * tail passes both, b goes to the file, a not there */
    uint8_t other[SP_PAGE_SIZE];
    for (uint64_t i = 0; i < 5000; i++) {
        fill(other, 1000 + i, true);
        uint32_t so = sp_swap_store_put(s, other, &err);
        g_assert_no_error(err);
        sp_swap_store_drop(s, so);
    }
    sp_swap_store_stats(s, &st);
    g_assert_cmpuint(st.cache_pages, ==, 0);
    expect_unreadable(s, sa, "was not what was put when it was to go to the swap");
    g_assert_true(sp_swap_store_get(s, sb, back, &err));
    g_assert_cmpmem(back, SP_PAGE_SIZE, b, SP_PAGE_SIZE);
    uint32_t sc = sp_swap_store_put(s, c, &err);
    g_assert_no_error(err);
    g_assert_true(sp_swap_store_get(s, sc, back, &err));
    g_assert_cmpmem(back, SP_PAGE_SIZE, c, SP_PAGE_SIZE);
    sp_swap_store_drop(s, sa);
    sp_swap_store_drop(s, sb);
    sp_swap_store_drop(s, sc);
    sp_swap_store_stats(s, &st);
    g_assert_cmpuint(st.slots_used, ==, 0);
    remove_store(s, dir);
}

/* The file system fills under the tier's tail (a 2 MiB tmpfs, the store
 * told 64 MiB): a put fails with an error once neither the tier nor the
 * file takes its page, the tail stops at the copy it could not write -
 * every page put before reads back as put, from the tier or the file -
 * and once pages are dropped, puts go on. */
static void test_file_full(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("sp-store-XXXXXX", &err);
    g_assert_no_error(err);
    if (mount("sp-store-full", dir, "tmpfs", 0, "size=2m") < 0)
        g_error("mount tmpfs on %s: %s (the test needs root to make a small file system)", dir,
                g_strerror(errno));
    g_autofree char *path = g_build_filename(dir, "swap", NULL);
    SpSwapStore *s = sp_swap_store_new(path, 64ull << 20, TIER, &err);
    g_assert_no_error(err);
    g_autoptr(GArray) slots = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    uint8_t page[SP_PAGE_SIZE], back[SP_PAGE_SIZE];
    for (uint64_t n = 0;; n++) {
        g_assert_cmpuint(n, <, 100000);
        fill(page, n, n % 16 != 0);
        g_clear_error(&err);
        uint32_t slot = sp_swap_store_put(s, page, &err);
        if (slot == SP_SWAP_NO_SLOT)
            break;
        g_array_append_val(slots, slot);
    }
    g_assert_nonnull(err);
    SpSwapStoreStats st;
    sp_swap_store_stats(s, &st);
    g_test_message("%u pages put (%" G_GUINT64_FORMAT " in the tier, %" G_GUINT64_FORMAT
                   " in the file) before: %s",
                   slots->len, st.cache_pages, st.file_pages, err->message);
    /* the tail moved copies until the file was full: more in the file than
     * the incompressible sixteenth, and more put than the file holds */
    g_assert_cmpuint(st.file_pages, >, slots->len / 16 + 1);
    g_assert_cmpuint(slots->len, >, (2 << 20) / SP_PAGE_SIZE);
    g_assert_cmpuint(st.slots_used, ==, slots->len);
    g_assert_cmpuint(st.cache_pages + st.file_pages, ==, slots->len);
    for (guint n = 0; n < slots->len; n++) {
        g_autoptr(GError) e2 = NULL;
        fill(page, n, n % 16 != 0);
        if (!sp_swap_store_get(s, g_array_index(slots, uint32_t, n), back, &e2))
            g_error("page %u, put before the file filled: %s", n, e2->message);
        g_assert_cmpmem(back, SP_PAGE_SIZE, page, SP_PAGE_SIZE);
    }
    for (guint n = 0; n < slots->len; n += 2)
        sp_swap_store_drop(s, g_array_index(slots, uint32_t, n));
    for (uint64_t n = 0; n < 64; n++) {
        fill(page, 1000000 + n, false);
        g_clear_error(&err);
        uint32_t slot = sp_swap_store_put(s, page, &err);
        g_assert_no_error(err);
        g_assert_true(sp_swap_store_get(s, slot, back, &err));
        g_assert_cmpmem(back, SP_PAGE_SIZE, page, SP_PAGE_SIZE);
    }
    sp_swap_store_free(s);
    g_assert_cmpint(umount(dir), ==, 0);
    g_rmdir(dir);
}

/* --- no file I/O under the lock --- */

typedef struct BlockedRead {
    SpSwapStore *s;
    uint32_t slot;
    uint8_t *into; /* registered for missing faults: the read blocks in pread */
    bool ok;
    char *msg;
} BlockedRead;

static gpointer blocked_read(gpointer data)
{
    BlockedRead *r = data;
    g_autoptr(GError) err = NULL;
    r->ok = sp_swap_store_get(r->s, r->slot, r->into, &err);
    r->msg = err ? g_strdup(err->message) : NULL;
    return NULL;
}

typedef struct Dropper {
    SpSwapStore *s;
    uint32_t slot;
    gint done;
} Dropper;

static gpointer drop_then_flag(gpointer data)
{
    Dropper *d = data;
    sp_swap_store_drop(d->s, d->slot);
    g_atomic_int_set(&d->done, 1);
    return NULL;
}

/* A read of a block stuck in the file (here: pread copying into a page of
 * ours that waits for its missing fault, as a read from a slow disk waits)
 * holds no lock: a drop of that very slot returns meanwhile, and a put
 * and a read of another slot go through.  The dropped slot is not reused
 * while the read is in it, nor its block punched: the read, let go, gives
 * the content that was put; afterwards the slot is free again. */
static void test_read_unlocked(void)
{
    int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (uffd < 0)
        g_error("userfaultfd: %s (the test needs it, as samepage does)", g_strerror(errno));
    struct uffdio_api api = {.api = UFFD_API};
    g_assert_cmpint(ioctl(uffd, UFFDIO_API, &api), ==, 0);
    uint8_t *into =
        mmap(NULL, SP_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    g_assert_true(into != MAP_FAILED);
    struct uffdio_register reg = {.range = {.start = (uintptr_t)into, .len = SP_PAGE_SIZE},
                                  .mode = UFFDIO_REGISTER_MODE_MISSING};
    g_assert_cmpint(ioctl(uffd, UFFDIO_REGISTER, &reg), ==, 0);

    g_autofree char *dir = NULL;
    SpSwapStore *s = new_store_tier(&dir, 0); /* no tier: every slot in the file */
    g_autoptr(GError) err = NULL;
    uint8_t a[SP_PAGE_SIZE], b[SP_PAGE_SIZE], back[SP_PAGE_SIZE];
    fill(a, 1, false);
    fill(b, 2, false);
    uint32_t sa = sp_swap_store_put(s, a, &err);
    g_assert_no_error(err);

    BlockedRead r = {.s = s, .slot = sa, .into = into};
    GThread *reader = g_thread_new("blocked-read", blocked_read, &r);
    struct pollfd pfd = {.fd = uffd, .events = POLLIN};
    g_assert_cmpint(poll(&pfd, 1, 10000), ==, 1); /* the read is in pread, on our page */
    struct uffd_msg msg;
    g_assert_cmpint(read(uffd, &msg, sizeof(msg)), ==, sizeof(msg));
    g_assert_cmpuint(msg.event, ==, UFFD_EVENT_PAGEFAULT);

    Dropper d = {.s = s, .slot = sa};
    GThread *dropper = g_thread_new("drop", drop_then_flag, &d);
    for (int i = 0; i < 1000 && !g_atomic_int_get(&d.done); i++)
        g_usleep(10000);
    if (!g_atomic_int_get(&d.done))
        g_error("a drop waited 10 s for a read blocked in the swap file: I/O under the lock");
    g_thread_join(dropper);
    uint32_t sb = sp_swap_store_put(s, b, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(sb, !=, sa); /* not reused under the read */
    g_assert_true(sp_swap_store_get(s, sb, back, &err));
    g_assert_no_error(err);
    g_assert_cmpmem(back, SP_PAGE_SIZE, b, SP_PAGE_SIZE);
    SpSwapStoreStats st;
    sp_swap_store_stats(s, &st);
    g_assert_cmpuint(st.slots_used, ==, 1);

    struct uffdio_zeropage zp = {.range = {.start = (uintptr_t)into, .len = SP_PAGE_SIZE}};
    g_assert_cmpint(ioctl(uffd, UFFDIO_ZEROPAGE, &zp), ==, 0); /* let the read go on */
    g_thread_join(reader);
    if (!r.ok)
        g_error("the read of a slot dropped under it failed: %s", r.msg);
    g_free(r.msg);
    g_assert_cmpmem(into, SP_PAGE_SIZE, a, SP_PAGE_SIZE); /* its block was not punched */
    g_autofree char *path = g_build_filename(dir, "swap", NULL);
    struct stat fst;
    g_assert_cmpint(stat(path, &fst), ==, 0);
    g_assert_cmpint(fst.st_blocks * 512, ==, SP_PAGE_SIZE); /* but is now: b's alone is left */

    fill(a, 3, false); /* the dropped slot is free now: the next put takes it */
    uint32_t sc = sp_swap_store_put(s, a, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(sc, ==, sa);
    g_assert_true(sp_swap_store_get(s, sc, back, &err));
    g_assert_no_error(err);
    g_assert_cmpmem(back, SP_PAGE_SIZE, a, SP_PAGE_SIZE);
    sp_swap_store_stats(s, &st);
    g_assert_cmpuint(st.slots_used, ==, 2);
    munmap(into, SP_PAGE_SIZE);
    close(uffd);
    remove_store(s, dir);
}

/* --- many threads at once --- */

enum { RACE_RING = 2048, RACE_READERS = 2, RACE_PUTS = 30000, RACE_READS = 10000 };

typedef struct RaceSlot {
    uint32_t slot;
    uint64_t n;
    gint busy; /* 1: a reader is in it; 2: the writer replaces it (or has not filled it yet) */
} RaceSlot;

typedef struct Race {
    SpSwapStore *s;
    RaceSlot ring[RACE_RING];
    gint started, stop; /* the ring was filled; the writer is done */
    gint reads, bad, put_failed;
} Race;

static gpointer race_writer(gpointer data)
{
    Race *rc = data;
    uint8_t page[SP_PAGE_SIZE];
    gint64 give_up = g_get_monotonic_time() + 300 * G_USEC_PER_SEC;
    for (uint64_t n = 0; n < RACE_PUTS || g_atomic_int_get(&rc->reads) < RACE_READS; n++) {
        if (g_get_monotonic_time() > give_up) {
            g_test_message("after 300 s: %" G_GUINT64_FORMAT " puts, %d reads", n,
                           g_atomic_int_get(&rc->reads));
            g_atomic_int_set(&rc->put_failed, 1);
            break;
        }
        RaceSlot *e = &rc->ring[n % RACE_RING];
        if (n >= RACE_RING) {
            while (!g_atomic_int_compare_and_exchange(&e->busy, 0, 2))
                g_thread_yield(); /* a reader is in it: a read's time */
            sp_swap_store_drop(rc->s, e->slot);
        }
        fill(page, n, n % 3 != 0);
        g_autoptr(GError) err = NULL;
        e->slot = sp_swap_store_put(rc->s, page, &err);
        e->n = n;
        if (err) {
            g_test_message("put: %s", err->message);
            g_atomic_int_set(&rc->put_failed, 1);
            break;
        }
        if (n >= RACE_RING)
            g_atomic_int_set(&e->busy, 0);
        else if (n + 1 == RACE_RING) { /* the ring is full: readers may start */
            for (guint i = 0; i < RACE_RING; i++)
                g_atomic_int_set(&rc->ring[i].busy, 0);
            g_atomic_int_set(&rc->started, 1);
        }
    }
    g_atomic_int_set(&rc->stop, 1);
    return NULL;
}

static gpointer race_reader(gpointer data)
{
    Race *rc = data;
    uint8_t page[SP_PAGE_SIZE], want[SP_PAGE_SIZE];
    GRand *r = g_rand_new();
    while (!g_atomic_int_get(&rc->started) && !g_atomic_int_get(&rc->stop))
        g_usleep(1000);
    while (!g_atomic_int_get(&rc->stop)) {
        RaceSlot *e = &rc->ring[g_rand_int_range(r, 0, RACE_RING)];
        if (!g_atomic_int_compare_and_exchange(&e->busy, 0, 1)) {
            g_thread_yield();
            continue;
        }
        g_autoptr(GError) err = NULL;
        bool ok = sp_swap_store_get(rc->s, e->slot, page, &err);
        fill(want, e->n, e->n % 3 != 0);
        if (!ok || memcmp(page, want, SP_PAGE_SIZE) != 0) {
            g_test_message("slot %u (content %" G_GUINT64_FORMAT "): %s", e->slot, e->n,
                           ok ? "other bytes" : err->message);
            g_atomic_int_inc(&rc->bad);
        }
        g_atomic_int_set(&e->busy, 0);
        g_atomic_int_inc(&rc->reads);
    }
    g_rand_free(r);
    return NULL;
}

static gpointer race_flusher(gpointer data)
{
    Race *rc = data;
    while (!g_atomic_int_get(&rc->stop)) {
        sp_swap_store_flush(rc->s);
        g_usleep(200);
    }
    return NULL;
}

/* Puts (two in three compressible, so that the 1 MiB tier's tail moves
 * copies to the file all the time), drops, reads of live slots and
 * flushes from four threads, until 30,000 puts and 10,000 reads were
 * made: every read gives the content put, and at the end the counters
 * add up to what is held. */
static void test_threads(void)
{
    g_autofree char *dir = NULL;
    Race *rc = g_new0(Race, 1);
    rc->s = new_store(&dir);
    for (guint i = 0; i < RACE_RING; i++)
        rc->ring[i].busy = 2; /* until the writer filled the ring */
    GThread *t[RACE_READERS + 2];
    t[0] = g_thread_new("writer", race_writer, rc);
    t[1] = g_thread_new("flusher", race_flusher, rc);
    for (int i = 0; i < RACE_READERS; i++)
        t[2 + i] = g_thread_new("reader", race_reader, rc);
    for (int i = 0; i < RACE_READERS + 2; i++)
        g_thread_join(t[i]);
    SpSwapStoreStats st;
    sp_swap_store_stats(rc->s, &st);
    g_test_message("%d reads checked beside %" G_GUINT64_FORMAT " puts; %" G_GUINT64_FORMAT
                   " pages in the tier, %" G_GUINT64_FORMAT " in the file, %" G_GUINT64_FORMAT
                   " MiB written",
                   rc->reads, st.puts, st.cache_pages, st.file_pages, st.bytes_written >> 20);
    g_assert_cmpint(rc->put_failed, ==, 0);
    g_assert_cmpint(rc->bad, ==, 0);
    g_assert_cmpint(rc->reads, >=, RACE_READS);
    g_assert_cmpuint(st.slots_used, ==, MIN(st.puts, RACE_RING));
    g_assert_cmpuint(st.cache_pages + st.file_pages, ==, st.slots_used);
    g_assert_cmpuint(st.bytes_written, >, 0); /* the tail ran */
    remove_store(rc->s, dir);
    g_free(rc);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/swap-store/tier-wraps", test_tier_wraps);
    g_test_add_func("/swap-store/unreadable", test_unreadable);
    g_test_add_func("/swap-store/tier-corrupt", test_tier_corrupt);
    g_test_add_func("/swap-store/memory-follows-use", test_memory_follows_use);
    g_test_add_func("/swap-store/adopt", test_adopt);
    g_test_add_func("/swap-store/crash-anywhere", test_crash_anywhere);
    g_test_add_func("/swap-store/file-full", test_file_full);
    g_test_add_func("/swap-store/read-unlocked", test_read_unlocked);
    g_test_add_func("/swap-store/threads", test_threads);
    return g_test_run();
}
