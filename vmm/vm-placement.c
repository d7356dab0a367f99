/* SPDX-License-Identifier: MIT */
/* vm-placement.c - NUMA memory policy of a VM (see vm-placement.h). */
#include <errno.h>
#include <numa.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <numaif.h>
#include <string.h>

#include "vmm/id-list.h"
#include "vmm/vm-error.h"
#include "vmm/vm-placement.h"

#ifndef MPOL_PREFERRED_MANY
#define MPOL_PREFERRED_MANY 5 /* Linux 5.15 */
#endif

/* Nodes a policy may name: the kernel's mask width (MAX_NUMNODES is at
 * most 1024 in Debian's kernels). */
#define NODE_LIMIT 1024

#define PLACE_ERROR(error, ...) g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_INVALID, __VA_ARGS__)

static const char *const mode_names[] = {NULL, "strict", "preferred", "interleave"};

const char *sp_numa_mode_name(SpNumaMode mode)
{
    return (guint)mode < G_N_ELEMENTS(mode_names) ? mode_names[mode] : NULL;
}

bool sp_numa_mode_parse(const char *name, SpNumaMode *mode, GError **error)
{
    for (guint i = 1; i < G_N_ELEMENTS(mode_names); i++)
        if (!g_strcmp0(name, mode_names[i])) {
            *mode = (SpNumaMode)i;
            return true;
        }
    PLACE_ERROR(error, "unknown NUMA mode '%s' (known: strict, preferred, interleave)",
                name ? name : "");
    return false;
}

bool sp_numa_spec_parse(const char *value, SpNumaMode *mode, char **nodes, GError **error)
{
    const char *colon = strchr(value, ':');
    g_autofree char *name = colon ? g_strndup(value, colon - value) : g_strdup(value);
    g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(guint));
    if (!colon || !colon[1]) {
        PLACE_ERROR(error, "numa=%s: expected MODE:NODES, e.g. numa=strict:1", value);
        return false;
    }
    if (!sp_numa_mode_parse(name, mode, error) ||
        !sp_id_list_parse(colon + 1, NODE_LIMIT, ids, error)) {
        g_prefix_error(error, "numa=%s: ", value);
        return false;
    }
    g_free(*nodes);
    *nodes = g_strdup(colon + 1);
    return true;
}

/* The nodes with memory on this host, as a list for messages. */
static char *host_nodes_text(void)
{
    GString *s = g_string_new(NULL);
    int max = numa_available() < 0 ? 0 : numa_max_node();
    for (int n = 0; n <= max; n++)
        if (numa_available() < 0 || numa_bitmask_isbitset(numa_all_nodes_ptr, n))
            g_string_append_printf(s, "%s%d", s->len ? "," : "", n);
    return g_string_free(s, FALSE);
}

static bool node_exists(guint n)
{
    if (numa_available() < 0)
        return n == 0;
    return (int)n <= numa_max_node() && numa_bitmask_isbitset(numa_all_nodes_ptr, n);
}

bool sp_numa_nodes_check(const char *nodes, GError **error)
{
    g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(guint));
    if (!sp_id_list_parse(nodes, NODE_LIMIT, ids, error))
        return false;
    for (guint i = 0; i < ids->len; i++) {
        guint n = g_array_index(ids, guint, i);
        if (!node_exists(n)) {
            g_autofree char *have = host_nodes_text();
            PLACE_ERROR(error, "this host has no NUMA node %u with memory (nodes: %s)", n, have);
            return false;
        }
    }
    return true;
}

/* The policy's mode and node mask (maxnode bits) for the kernel. */
static bool policy_of(SpNumaMode mode, const char *nodes, int *kmode, unsigned long *mask,
                      unsigned long *maxnode, GError **error)
{
    g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(guint));
    if (!sp_id_list_parse(nodes, NODE_LIMIT, ids, error))
        return false;
    memset(mask, 0, NODE_LIMIT / 8);
    for (guint i = 0; i < ids->len; i++) {
        guint n = g_array_index(ids, guint, i);
        mask[n / (8 * sizeof(long))] |= 1UL << (n % (8 * sizeof(long)));
    }
    *maxnode = NODE_LIMIT + 1;
    switch (mode) {
    case SP_NUMA_STRICT:
        *kmode = MPOL_BIND;
        return true;
    case SP_NUMA_PREFERRED:
        *kmode = ids->len == 1 ? MPOL_PREFERRED : MPOL_PREFERRED_MANY;
        return true;
    case SP_NUMA_INTERLEAVE:
        *kmode = MPOL_INTERLEAVE;
        return true;
    default:
        PLACE_ERROR(error, "no NUMA mode");
        return false;
    }
}

/* The policy for the calling thread (addr NULL: set_mempolicy) or for
 * [addr, addr + len) (mbind, moving what is there). */
static bool numa_apply(SpNumaMode mode, const char *nodes, void *addr, size_t len, GError **error)
{
    unsigned long mask[NODE_LIMIT / (8 * sizeof(long))], maxnode;
    int kmode;
    if (mode == SP_NUMA_DEFAULT)
        return true;
    if (!policy_of(mode, nodes, &kmode, mask, &maxnode, error))
        return false;
    if ((addr ? mbind(addr, len, kmode, mask, maxnode, MPOL_MF_MOVE)
              : set_mempolicy(kmode, mask, maxnode)) < 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "%s(%s:%s)%s: %s",
                    addr ? "mbind" : "set_mempolicy", sp_numa_mode_name(mode), nodes,
                    addr ? " of guest RAM" : "", g_strerror(e));
        return false;
    }
    return true;
}

bool sp_numa_apply_task(SpNumaMode mode, const char *nodes, GError **error)
{
    return numa_apply(mode, nodes, NULL, 0, error);
}

bool sp_numa_apply_range(SpNumaMode mode, const char *nodes, void *addr, size_t len, GError **error)
{
    return numa_apply(mode, nodes, addr, len, error);
}

bool sp_numa_move_range(SpNumaMode mode, const char *nodes, void *addr, size_t len, GError **error)
{
    for (size_t off = 0; off < len; off += SP_NUMA_MOVE_BATCH)
        if (!numa_apply(mode, nodes, (char *)addr + off, MIN(SP_NUMA_MOVE_BATCH, len - off), error))
            return false;
    return true;
}

/* --- the process policy, for threads that started before it changed --- */

static GMutex proc_lock;
static SpNumaMode proc_mode;
static char *proc_nodes;
static unsigned proc_gen; /* atomic; 0: never set */

bool sp_numa_set_process_policy(SpNumaMode mode, const char *nodes, GError **error)
{
    unsigned long mask[NODE_LIMIT / (8 * sizeof(long))], maxnode;
    int kmode;
    if (mode != SP_NUMA_DEFAULT && !policy_of(mode, nodes, &kmode, mask, &maxnode, error))
        return false;
    g_mutex_lock(&proc_lock);
    proc_mode = mode;
    g_free(proc_nodes);
    proc_nodes = g_strdup(nodes);
    __atomic_add_fetch(&proc_gen, 1, __ATOMIC_RELEASE);
    g_mutex_unlock(&proc_lock);
    unsigned seen = 0;
    sp_numa_thread_sync(&seen);
    return true;
}

void sp_numa_thread_sync(unsigned *seen)
{
    unsigned gen = __atomic_load_n(&proc_gen, __ATOMIC_ACQUIRE);
    if (gen == *seen)
        return;
    unsigned long mask[NODE_LIMIT / (8 * sizeof(long))], maxnode;
    int kmode = MPOL_DEFAULT;
    bool ok = true;
    g_mutex_lock(&proc_lock);
    gen = __atomic_load_n(&proc_gen, __ATOMIC_ACQUIRE);
    if (proc_mode == SP_NUMA_DEFAULT) {
        memset(mask, 0, sizeof(mask));
        maxnode = 0;
    } else {
        ok = policy_of(proc_mode, proc_nodes, &kmode, mask, &maxnode, NULL);
    }
    g_mutex_unlock(&proc_lock);
    /* A failure leaves this thread's previous policy: the nodes were
     * checked when the policy was set, so only a node going away can fail. */
    if (ok && set_mempolicy(kmode, maxnode ? mask : NULL, maxnode) < 0)
        g_warning("event=numa-thread-policy error=\"%s\"", g_strerror(errno));
    *seen = gen;
}

/* Pages per move_pages() query. */
#define QUERY_BATCH 1024

bool sp_numa_page_nodes(void *addr, size_t len, int *nodes, GError **error)
{
    void *pages[QUERY_BATCH];
    size_t npages = len / 4096;
    for (size_t first = 0; first < npages; first += QUERY_BATCH) {
        size_t n = MIN((size_t)QUERY_BATCH, npages - first);
        for (size_t i = 0; i < n; i++)
            pages[i] = (char *)addr + (first + i) * 4096;
        if (syscall(SYS_move_pages, 0, (unsigned long)n, pages, NULL, nodes + first, 0) < 0) {
            int e = errno;
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e),
                        "move_pages (query) of guest RAM: %s", g_strerror(e));
            return false;
        }
    }
    return true;
}

bool sp_numa_move_pages(SpNumaMode mode, const char *nodes, void **pages, size_t n, GError **error)
{
    g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(guint));
    if (mode == SP_NUMA_DEFAULT || !sp_id_list_parse(nodes, NODE_LIMIT, ids, error))
        return mode == SP_NUMA_DEFAULT;
    void *moving[QUERY_BATCH];
    int now[QUERY_BATCH], to[QUERY_BATCH];
    size_t next = 0;
    for (size_t first = 0; first < n; first += QUERY_BATCH) {
        size_t k = MIN((size_t)QUERY_BATCH, n - first), m = 0;
        if (syscall(SYS_move_pages, 0, (unsigned long)k, pages + first, NULL, now, 0) < 0)
            goto failed;
        for (size_t i = 0; i < k; i++) {
            bool placed = now[i] < 0; /* not resident: nothing to move */
            for (guint x = 0; !placed && x < ids->len; x++)
                placed = (guint)now[i] == g_array_index(ids, guint, x);
            if (!placed) { /* to the nodes in turn (one for strict and preferred:N) */
                moving[m] = pages[first + i];
                to[m++] = (int)g_array_index(ids, guint, next++ % ids->len);
            }
        }
        /* A page that stays says why in its status (EACCES: a shared
         * frame, also mapped elsewhere; EBUSY): left where it is, as mbind
         * leaves it.  ENOENT: none needed moving. */
        if (m && syscall(SYS_move_pages, 0, (unsigned long)m, moving, to, now, MPOL_MF_MOVE) < 0 &&
            errno != ENOENT)
            goto failed;
    }
    return true;
failed:;
    int e = errno;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "move_pages of guest RAM to %s:%s: %s",
                sp_numa_mode_name(mode), nodes, g_strerror(e));
    return false;
}

bool sp_numa_resident_pages(void *addr, size_t len, guint64 *counts, guint max, guint64 *elsewhere,
                            GError **error)
{
    size_t npages = len / 4096;
    g_autofree int *nodes = g_new(int, npages);
    memset(counts, 0, max * sizeof(*counts));
    *elsewhere = 0;
    if (!sp_numa_page_nodes(addr, len, nodes, error))
        return false;
    for (size_t i = 0; i < npages; i++) {
        if (nodes[i] < 0) /* -ENOENT: not resident (or the zero page) */
            continue;
        if ((guint)nodes[i] < max)
            counts[nodes[i]]++;
        else
            (*elsewhere)++;
    }
    return true;
}

bool sp_cpuset_parse(const char *cpus, cpu_set_t *set, GError **error)
{
    g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(guint));
    cpu_set_t allowed;
    CPU_ZERO(set);
    if (!sp_id_list_parse(cpus, CPU_SETSIZE, ids, error))
        return false;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
        CPU_ZERO(&allowed);
    for (guint i = 0; i < ids->len; i++) {
        guint c = g_array_index(ids, guint, i);
        if (!CPU_ISSET(c, &allowed)) {
            GString *have = g_string_new(NULL);
            for (int k = 0; k < CPU_SETSIZE; k++)
                if (CPU_ISSET(k, &allowed))
                    g_string_append_printf(have, "%s%d", have->len ? "," : "", k);
            PLACE_ERROR(error, "this host has no CPU %u that samepage may use (CPUs: %s)", c,
                        have->str);
            g_string_free(have, TRUE);
            return false;
        }
        CPU_SET(c, set);
    }
    return true;
}
