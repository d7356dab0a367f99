/* SPDX-License-Identifier: MIT */
/*
 * swap-adopt.c - swapped guest memory survives a crash of samepaged
 * (docs/swap.md "After a crash").
 *
 * Every VM process keeps O_PATH descriptors of the swap store (its slot
 * table, compressed tier and file: M_SWAP_STORE) without being able to read
 * them, and every slot names its owner (rmap/swap-store.h): a VM's private
 * page (the VM's name, gfn), a pool frame (the pool memfd's inode, offset)
 * or a clone-layer page (the group file's inode, page).  A samepaged that
 * re-attaches after a crash gets those descriptors back from each VM
 * (sh_swap_store_handover), takes the old store over once (by its slot
 * table's inode), and gives every content back to its owner:
 *
 *   a frame or layer page  written back into its pool or group file when
 *                          the first VM reporting that file is re-attached
 *                          (sh_swap_adopt_space, before the frames are
 *                          indexed from their content); its mappers, which
 *                          fault on a hole, retry and find it;  one that
 *                          cannot be written back stays a hole, listed as
 *                          lost (ShSwap.lost): nothing of samepaged reads
 *                          it (a read would fill it with zeros, for every
 *                          mapper: the engine does not index it, the
 *                          balancer does not look at it, its pool offset
 *                          is never given to another frame), and a mapper
 *                          that faults on it is told it is lost;
 *   a private page         copied into the new store under the same gfn,
 *                          then (the VM told to keep the new store: a
 *                          commit) dropped from the old one
 *                          (sh_swap_adopt_pages): still out, it comes back
 *                          when the guest touches it.
 *
 * Until the commit the VM process keeps the old store too and hands it, not
 * ours, to a samepaged after us (agent-swap.c): if we die in the middle of
 * the take-over, the store that holds its pages is not lost with us.
 *
 * A private page the VM asks for that has no slot was lost: a VM that
 * drops its zero pages itself (SP_PROTO_AGENT_DROPS_ZERO) has none out
 * without a slot, and a content is always stored, with its owner, before the VM
 * drops its page.  If the old store says so too (SP_SWAP_STORE_EXACT: its
 * samepaged evicted that way), or a slot could not be moved, the VM is told
 * the page is lost (SP_PROTO_SWAPANS_LOST: it ends, crashed; never zeros in
 * the guest).  With an older agent or an older store, a page out without a
 * slot was all zero, and is answered as zero if the old store was taken
 * over whole (ShSwapVm.adopted; logged).  When every VM came back
 * (sh_swap_adopt_done), the old stores go; what is left in them was a VM's
 * that did not come back.
 *
 * Locking: the old stores and the lost pages are swap->lock's; these calls
 * hold eng->lock (handover, spaces) or nothing of the engine (pages), and
 * take swap->lock.  ShSwap.nlost is read without it (atomics), so that the
 * engine's paths pay nothing while no page is lost.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sharing/swap-priv.h"

/* A shared page lost in a take-over: page off of the file with inode ino. */
typedef struct ShLostPage {
    uint64_t ino, off;
} ShLostPage;

static guint lost_hash(gconstpointer p)
{
    const ShLostPage *l = p;
    return (guint)(l->ino * 0x9E3779B97F4A7C15ULL ^ l->off);
}

static gboolean lost_equal(gconstpointer a, gconstpointer b)
{
    const ShLostPage *x = a, *y = b;
    return x->ino == y->ino && x->off == y->off;
}

GHashTable *sh_swap_lost_new(void)
{
    return g_hash_table_new_full(lost_hash, lost_equal, g_free, NULL);
}

bool sh_swap_lost_locked(ShSwap *sw, uint64_t ino, uint64_t off)
{
    if (!__atomic_load_n(&sw->nlost, __ATOMIC_ACQUIRE))
        return false;
    ShLostPage l = {.ino = ino, .off = off};
    return g_hash_table_contains(sw->lost, &l);
}

bool sh_swap_shared_lost(SpEngine *eng, uint64_t ino, uint64_t off)
{
    ShSwap *sw = eng->swap;
    if (!sw || !__atomic_load_n(&sw->nlost, __ATOMIC_ACQUIRE))
        return false;
    g_mutex_lock(&sw->lock);
    bool lost = sh_swap_lost_locked(sw, ino, off);
    g_mutex_unlock(&sw->lock);
    return lost;
}

static void lost_add(ShSwap *sw, uint64_t ino, uint64_t off)
{
    ShLostPage *l = g_new(ShLostPage, 1);
    *l = (ShLostPage){.ino = ino, .off = off};
    g_hash_table_add(sw->lost, l);
    __atomic_store_n(&sw->nlost, g_hash_table_size(sw->lost), __ATOMIC_RELEASE);
}

static gboolean lost_of_file(gpointer key, gpointer value, gpointer ino)
{
    (void)value;
    return ((ShLostPage *)key)->ino == *(uint64_t *)ino;
}

void sh_swap_lost_forget_file(ShSwap *sw, uint64_t ino)
{
    if (!__atomic_load_n(&sw->nlost, __ATOMIC_ACQUIRE))
        return;
    g_hash_table_foreach_remove(sw->lost, lost_of_file, &ino);
    __atomic_store_n(&sw->nlost, g_hash_table_size(sw->lost), __ATOMIC_RELEASE);
}

/* Tests: SAMEPAGE_TEST_LOSE_SHARED=N makes a take-over lose the first N
 * frame or layer pages it writes back, as a defect would (lock held). */
static bool test_lose_shared(uint64_t ino, uint64_t off)
{
    static uint32_t lost_so_far;
    const char *n = g_getenv("SAMEPAGE_TEST_LOSE_SHARED");
    if (!n || lost_so_far >= g_ascii_strtoull(n, NULL, 10))
        return false;
    lost_so_far++;
    g_warning("event=test-lose-slot shared inode=%" G_GUINT64_FORMAT " page=%" G_GUINT64_FORMAT
              " (SAMEPAGE_TEST_LOSE_SHARED)",
              ino, off);
    return true;
}

/* One owned slot of an old store. */
typedef struct OldSlot {
    uint32_t slot;
    bool taken;
    SpSwapOwner o;
} OldSlot;

struct ShOldStore {
    SpSwapStore *store;
    uint64_t meta_ino;
    GArray *slots; /* OldSlot */
    uint64_t left; /* not taken yet */
    bool exact;    /* SP_SWAP_STORE_EXACT */
};

static void collect(uint32_t slot, const SpSwapOwner *o, gpointer data)
{
    OldSlot s = {.slot = slot, .o = *o};
    g_array_append_val((GArray *)data, s);
}

static uint64_t fd_ino(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* fd opened again through /proc with `flags` (O_PATH: what a VM process
 * may hold, not read; O_RDWR: to write back into a file it sent). */
static int proc_reopen(int fd, int flags)
{
    g_autofree char *p = g_strdup_printf("/proc/self/fd/%d", fd);
    return open(p, flags | O_CLOEXEC);
}

/* The old store whose slot table is fds[0], taken over once; lock held. */
static ShOldStore *old_store(ShSwap *sw, const char *vm, const int *fds, uint32_t nfds,
                             bool has_tier)
{
    uint64_t ino = fd_ino(fds[0]);
    for (guint i = 0; i < sw->old_stores->len; i++) {
        ShOldStore *o = sw->old_stores->pdata[i];
        if (o->meta_ino == ino)
            return o;
    }
    g_autoptr(GError) err = NULL;
    SpSwapStore *s = sp_swap_store_adopt(fds[0], has_tier ? fds[1] : -1, fds[nfds - 1], &err);
    if (!s) {
        g_warning("event=swap-adopt-failed vm=%s error=\"%s\" (pages it had out before samepaged "
                  "restarted cannot come back)",
                  vm, err->message);
        return NULL;
    }
    ShOldStore *o = g_new0(ShOldStore, 1);
    o->store = s;
    o->meta_ino = ino;
    o->exact = (sp_swap_store_flags(s) & SP_SWAP_STORE_EXACT) != 0;
    if (!o->exact) /* what it had out without a slot we may carry on so */
        sp_swap_store_clear_flags(sw->store, SP_SWAP_STORE_EXACT);
    o->slots = g_array_new(FALSE, FALSE, sizeof(OldSlot));
    sp_swap_store_foreach_owned(s, collect, o->slots);
    o->left = o->slots->len;
    g_ptr_array_add(sw->old_stores, o);
    g_message("event=swap-adopt store_inode=%" G_GUINT64_FORMAT " slots=%u exact=%s (the swap "
              "store of the samepaged before this one, from VM %s)",
              ino, o->slots->len, o->exact ? "yes" : "no", vm);
    return o;
}

/* M_SWAP_STORE to vm with our store's descriptors (O_PATH): an offer, or
 * a commit (flags); eng->lock held.  own: our store's descriptors.  A VM
 * that did not take them is said in the log. */
static bool send_store(SpEngine *eng, SpEngineVm *vm, uint32_t flags, int own[3], SpProtoMsg *r)
{
    int fds[3];
    uint32_t n = 0;
    sp_swap_store_fds(eng->swap->store, &own[0], &own[1], &own[2]);
    SpProtoSwapStore st = {.has_tier = own[1] >= 0, .flags = flags};
    for (int i = 0; i < 3; i++)
        if (own[i] >= 0 && (fds[n] = proc_reopen(own[i], O_PATH)) >= 0)
            n++;
    if (n != (st.has_tier ? 3u : 2u)) { /* keep nothing rather than half */
        for (uint32_t i = 0; i < n; i++)
            close(fds[i]);
        n = 0;
    }
    bool ok = sh_exchange(eng, vm, SP_PROTO_M_SWAP_STORE, &st, sizeof(st), fds, n, r);
    for (uint32_t i = 0; i < n; i++)
        close(fds[i]);
    if (!ok && !vm->broken)
        g_message("event=swap-store-not-kept vm=%s (its pages out would not survive a crash of "
                  "samepaged)",
                  vm->name);
    return ok;
}

void sh_swap_store_handover(SpEngine *eng, SpEngineVm *vm)
{
    ShSwap *sw = eng->swap;
    if (!sw || vm->swap_handed)
        return;
    vm->swap_handed = true;
    int own[3];
    SpProtoMsg r = {0};
    if (!send_store(eng, vm, 0, own, &r))
        return;
    SpProtoSwapStore old;
    SpProtoReader rd = sp_proto_reader(&r);
    uint32_t want = 0;
    if (sp_proto_read(&rd, &old, sizeof(old))) {
        want = old.has_tier ? 3 : 2;
        vm->drops_zero = (old.flags & SP_PROTO_AGENT_DROPS_ZERO) != 0;
    }
    if (r.hdr.nfds && r.hdr.nfds == want && fd_ino(r.fds[0]) != fd_ino(own[0])) {
        g_mutex_lock(&sw->lock);
        vm->swap_old = old_store(sw, vm->name, r.fds, r.hdr.nfds, old.has_tier);
        g_mutex_unlock(&sw->lock);
    }
    sp_proto_msg_clear(&r);
}

/* Write slot `s` of o back at page `off` of fd (reopened read-write). */
static bool write_back(ShOldStore *o, const OldSlot *s, int fd, const char *what)
{
    uint8_t page[SP_PAGE_SIZE];
    g_autoptr(GError) err = NULL;
    if (!sp_swap_store_get(o->store, s->slot, page, &err) ||
        pwrite(fd, page, SP_PAGE_SIZE, (off_t)(s->o.b * SP_PAGE_SIZE)) != SP_PAGE_SIZE) {
        g_warning("event=swap-adopt-lost %s=%" G_GUINT64_FORMAT " page=%" G_GUINT64_FORMAT
                  " error=\"%s\"",
                  what, s->o.a, s->o.b, err ? err->message : g_strerror(errno));
        return false;
    }
    return true;
}

void sh_swap_adopt_space(SpEngine *eng, int fd)
{
    ShSwap *sw = eng->swap;
    if (!sw)
        return;
    uint64_t ino = fd_ino(fd);
    g_mutex_lock(&sw->lock);
    int rw = -1; /* -2: the file cannot be written: every page of it is lost */
    uint64_t back = 0, lost = 0;
    for (guint i = 0; i < sw->old_stores->len; i++) {
        ShOldStore *o = sw->old_stores->pdata[i];
        for (guint k = 0; k < o->slots->len; k++) {
            OldSlot *s = &g_array_index(o->slots, OldSlot, k);
            if (s->taken || s->o.a != ino ||
                (s->o.kind != SP_SWAP_OWNER_FRAME && s->o.kind != SP_SWAP_OWNER_LAYER))
                continue;
            if (rw == -1 && (rw = proc_reopen(fd, O_RDWR)) < 0) {
                g_warning("event=swap-adopt-lost inode=%" G_GUINT64_FORMAT " error=\"%s\"", ino,
                          g_strerror(errno));
                rw = -2;
            }
            if (rw >= 0 && !test_lose_shared(ino, s->o.b) &&
                write_back(o, s, rw, s->o.kind == SP_SWAP_OWNER_FRAME ? "pool" : "layer")) {
                back++;
            } else { /* a hole for good: its mappers are told so */
                lost++;
                lost_add(sw, ino, s->o.b);
            }
            s->taken = true;
            o->left--;
            sp_swap_store_drop(o->store, s->slot);
        }
    }
    g_mutex_unlock(&sw->lock);
    if (rw >= 0)
        close(rw);
    if (back || lost)
        g_message("event=swap-adopt-shared inode=%" G_GUINT64_FORMAT " pages=%" G_GUINT64_FORMAT
                  " lost=%" G_GUINT64_FORMAT " (written back into their file: every mapper "
                  "finds them there%s)",
                  ino, back, lost,
                  lost ? "; a VM that touches a lost one ends: its content is gone" : "");
}

void sh_swap_adopt_pages(SpEngine *eng, ShSwapVm *v, SpEngineVm *vm)
{
    ShSwap *sw = eng->swap;
    ShOldStore *o = vm->swap_old;
    vm->swap_old = NULL; /* used once: the old stores may go after this */
    if (o)
        sh_swap_test_kill(NULL, "adopt-before-move");
    uint64_t key = sp_swap_vm_key(vm->name), lost = 0;
    uint32_t lose = o ? sh_swap_test_lose(vm->name) : 0;
    uint8_t page[SP_PAGE_SIZE];
    g_autoptr(GArray) moved = g_array_new(FALSE, FALSE, sizeof(uint32_t)); /* old slots */
    g_mutex_lock(&sw->lock);
    for (guint k = 0; o && k < o->slots->len; k++) {
        OldSlot *s = &g_array_index(o->slots, OldSlot, k);
        if (s->taken || s->o.kind != SP_SWAP_OWNER_PAGE || s->o.a != key)
            continue;
        s->taken = true;
        o->left--;
        if (lose) { /* tests: a slot gone without a trace, as a defect would lose it */
            lose--;
            g_warning("event=test-lose-slot vm=%s gfn=%" G_GUINT64_FORMAT
                      " (SAMEPAGE_TEST_LOSE_SLOTS)",
                      v->name, s->o.b);
            g_array_append_val(moved, s->slot); /* dropped from the old store too */
            continue;
        }
        g_autoptr(GError) err = NULL;
        uint32_t slot = SP_SWAP_NO_SLOT;
        if (s->o.b < v->npages && !v->slot_of[s->o.b] &&
            sp_swap_store_get(o->store, s->slot, page, &err))
            slot = sp_swap_store_put(sw->store, page, &err);
        if (slot == SP_SWAP_NO_SLOT) {
            lost++;
            g_warning("event=swap-adopt-lost vm=%s gfn=%" G_GUINT64_FORMAT " error=\"%s\"", v->name,
                      s->o.b, err ? err->message : "not a page of this VM");
            continue;
        }
        SpSwapOwner own = {.kind = SP_SWAP_OWNER_PAGE, .a = key, .b = s->o.b};
        sp_swap_store_set_owner(sw->store, slot, &own);
        sh_swap_slot_left_unknown(sw, slot); /* not a refault when it comes back */
        v->slot_of[s->o.b] = slot + 1;
        v->out++;
        g_array_append_val(moved, s->slot);
    }
    /* A page out without a slot now: lost, when the VM drops its zero pages
     * itself and the store says every page of such a VM had a slot, or when
     * a slot could not be moved; otherwise (an older agent or samepaged,
     * every slot found) it was an all-zero page. */
    v->slots_exact = o && vm->drops_zero && (o->exact || lost > 0);
    v->adopted = o && lost == 0 && !v->slots_exact;
    g_mutex_unlock(&sw->lock);
    /* Every page is in our store now (and still in the old one): the VM
     * keeps our store from now on (agent-swap.c).  Only then do the old
     * slots go: until the commit the VM hands the old store to a samepaged
     * after us, should we die. */
    if (o)
        sh_swap_test_kill(NULL, "adopt-before-commit");
    int ours[3];
    SpProtoMsg r = {0};
    bool committed = send_store(eng, vm, SP_PROTO_STORE_COMMIT, ours, &r);
    sp_proto_msg_clear(&r);
    if (!o)
        return;
    g_mutex_lock(&sw->lock);
    for (guint k = 0; committed && k < moved->len; k++) /* (else: with the old store) */
        sp_swap_store_drop(o->store, g_array_index(moved, uint32_t, k));
    g_mutex_unlock(&sw->lock);
    g_message("event=swap-adopt-pages vm=%s pages=%u lost=%" G_GUINT64_FORMAT, v->name, moved->len,
              lost);
}

void sh_swap_adopt_done(SpEngine *eng, bool all_attached)
{
    ShSwap *sw = eng->swap;
    if (!sw || !all_attached)
        return; /* a VM not re-attached may still come: its pages stay */
    g_mutex_lock(&sw->lock);
    for (guint i = 0; i < sw->old_stores->len; i++) {
        ShOldStore *o = sw->old_stores->pdata[i];
        g_message("event=swap-adopt-done store_inode=%" G_GUINT64_FORMAT " left=%" G_GUINT64_FORMAT
                  " (slots of VMs that did not come back: dropped)",
                  o->meta_ino, o->left);
        sh_swap_old_store_free(o);
    }
    g_ptr_array_set_size(sw->old_stores, 0);
    g_mutex_unlock(&sw->lock);
}

void sh_swap_old_store_free(ShOldStore *o)
{
    sp_swap_store_free(o->store);
    g_array_free(o->slots, TRUE);
    g_free(o);
}
