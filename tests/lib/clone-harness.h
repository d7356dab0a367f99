/* SPDX-License-Identifier: MIT */
/*
 * clone-harness.h - helpers for tests of VM clones and the reverse map
 * (tests/test-clone.c, tests/test-rmap.c) and for bench/clone-bench.c, on
 * top of vm-harness.h.
 * Each helper fails the test (g_error/g_assert) instead of returning
 * an error.  Not thread-safe: call from the test's main thread.
 */
#ifndef SAMEPAGE_TESTS_LIB_CLONE_HARNESS_H
#define SAMEPAGE_TESTS_LIB_CLONE_HARNESS_H

#include "tests/lib/vm-harness.h"

/* memload writing and verifying forever, a round every 100 ms at least */
#define MEMLOAD "payload=memload,args=seed=11,rounds=0,interval=100"

/* Clone `src` n times into the harness (children named <prefix><i>). */
void clone_into(Harness *h, SpVm *src, const char *prefix, uint32_t n, SpVm **out,
                SpVmCloneTimes *t);
uint64_t rounds_of(SpVm *vm);
/* Each VM verifies `more` further full rounds with no integrity error. */
void wait_more_rounds(Harness *h, SpVm **vms, guint n, uint64_t more);
/* Remove `vm` from the harness and free it (its process ends). */
void drop_vm(Harness *h, SpVm *vm);
/* Physical frame numbers of a VM's RAM from its process's pagemap (0 = not
 * present), g_free them. */
uint64_t *ram_pfns(SpVm *vm, uint64_t *npages);
/* Distinct physical frames behind these VMs' RAM; present pages of the first. */
uint64_t distinct_frames(SpVm **vms, guint n, uint64_t *first_present);
/* Read every page through /proc/PID/mem: maps shared pages into the VM
 * process, writes nothing. */
void touch_read(SpVm *vm);
/* Add a 128 MiB, 2-vCPU memload VM (`extra` appended to its spec), start
 * every VM of the harness and wait for its first verified round. */
SpVm *start_template(Harness *h, const char *name, const char *extra);

#endif
