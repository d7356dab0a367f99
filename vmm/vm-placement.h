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
 * A running VM's policy can change (virsh numatune --live, `samepage
 * numatune`): sp_numa_move_range() gives guest RAM the new policy in
 * batches of SP_NUMA_MOVE_BATCH bytes with MPOL_MF_MOVE (the VM process
 * does so for its anonymous stretches only, and sp_numa_move_pages() for
 * the pages of file mappings: vmm/vmproc/numa.c), so the pages only
 * this VM maps move while the guest runs (each batch holds the process's
 * mmap lock for the one batch: that is the longest a vCPU can stall on
 * it); a page that is also mapped elsewhere (a shared frame: samepaged's
 * view maps every one) is left where it is, never copied or unshared.
 * The threads' own policy (what a vCPU's copy-on-write break of a merged
 * page allocates with) follows through sp_numa_set_process_policy(): each
 * vCPU thread calls sp_numa_thread_sync() before it enters the guest and
 * applies a newer policy there.
 *
 * The process policy (sp_numa_set_process_policy / sp_numa_thread_sync) is
 * one static slot under a mutex, with an atomic generation read without
 * it; everything else is stateless.
 */
#pragma once

#include <gio/gio.h>
#include <sched.h>
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

/* Bytes of guest RAM per mbind() while a running VM moves (2 MiB). */
#define SP_NUMA_MOVE_BATCH (2u << 20)

/* A running VM's new policy for [addr, addr + len): mbind with
 * MPOL_MF_MOVE, SP_NUMA_MOVE_BATCH bytes at a time. */
bool sp_numa_move_range(SpNumaMode mode, const char *nodes, void *addr, size_t len, GError **error);

/* A running VM's new nodes for `pages` (n page addresses) where only this
 * process maps them, without setting any mapping's policy (move_pages
 * with MPOL_MF_MOVE; a page already on one of the nodes stays): for
 * mappings of a file, where mbind would set the file's own policy. */
bool sp_numa_move_pages(SpNumaMode mode, const char *nodes, void **pages, size_t n, GError **error);

/* The policy every thread of this process should run with; the caller's
 * thread gets it at once, the others at their next sp_numa_thread_sync(). */
bool sp_numa_set_process_policy(SpNumaMode mode, const char *nodes, GError **error);
/* On a thread that allocates guest memory (a vCPU): apply a process policy
 * newer than *seen (starts at 0).  Cheap when nothing changed. */
void sp_numa_thread_sync(unsigned *seen);

/* The host node of each page of [addr, addr + len) (len / 4096 entries),
 * negative for a page not resident, from the kernel (move_pages query). */
bool sp_numa_page_nodes(void *addr, size_t len, int *nodes, GError **error);
/* Resident pages of [addr, addr + len) per host node, from the kernel
 * (move_pages in query mode): counts[n] for n < max, plus *elsewhere for
 * pages on nodes >= max.  Pages not resident are not counted. */
bool sp_numa_resident_pages(void *addr, size_t len, guint64 *counts, guint max, guint64 *elsewhere,
                            GError **error);

/* cpuset=CPUS of a VM spec (libvirt's set syntax): every CPU exists on
 * this host and this process may run there; the error names the first that
 * does not, and the CPUs there are. */
bool sp_cpuset_parse(const char *cpus, cpu_set_t *set, GError **error);
