/* SPDX-License-Identifier: MIT */
/*
 * vm-placement.h - which host NUMA nodes a VM's memory comes from: the
 * numa=MODE:NODES of a VM spec and libvirt's <numatune><memory mode
 * nodeset>, checked against the host and applied by the VM process
 * (docs/numa.md).
 *
 * Modes, with libvirt's meanings:
 *   strict      MPOL_BIND: only those nodes;
 *   preferred   MPOL_PREFERRED (one node) or MPOL_PREFERRED_MANY
 *               (several): those first, the others when they are full;
 *   interleave  MPOL_INTERLEAVE: page by page over those nodes.
 * The VM process applies the policy before it builds its machine, to
 * itself (set_mempolicy: every page it allocates afterwards — guest RAM a
 * vCPU faults in, a page swapped back in, its own heap and page tables —
 * and the threads it starts later inherit it), and again to guest RAM
 * once built (mbind with MPOL_MF_MOVE: the pages the loader wrote move).
 * Shared frames live in samepaged's pools and are not placed by this.
 *
 * Stateless; no locking.
 */
#pragma once

#include <gio/gio.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum {
    SP_NUMA_DEFAULT = 0, /* no policy: the kernel's (local node) */
    SP_NUMA_STRICT,
    SP_NUMA_PREFERRED,
    SP_NUMA_INTERLEAVE,
} SpNumaMode;

/* "strict", "preferred", "interleave"; NULL for SP_NUMA_DEFAULT. */
const char *sp_numa_mode_name(SpNumaMode mode);
/* libvirt's mode names ("restrictive" is refused: it needs cgroups). */
bool sp_numa_mode_parse(const char *name, SpNumaMode *mode, GError **error);

/* numa=MODE:NODES of a VM spec (the value after "numa="). */
bool sp_numa_spec_parse(const char *value, SpNumaMode *mode, char **nodes, GError **error);

/* Every node of `nodes` exists on this host and has memory; the error
 * names the first that does not, and the nodes there are. */
bool sp_numa_nodes_check(const char *nodes, GError **error);

/* In the VM process: the policy for the calling thread (and the threads
 * it starts afterwards), then for [addr, addr + len) with MPOL_MF_MOVE. */
bool sp_numa_apply_task(SpNumaMode mode, const char *nodes, GError **error);
bool sp_numa_apply_range(SpNumaMode mode, const char *nodes, void *addr, size_t len,
                         GError **error);
