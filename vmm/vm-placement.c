/* SPDX-License-Identifier: MIT */
/* vm-placement.c - NUMA memory policy of a VM (see vm-placement.h). */
#include <errno.h>
#include <numa.h>
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
