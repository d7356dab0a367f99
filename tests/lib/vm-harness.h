/* SPDX-License-Identifier: MIT */
/*
 * vm-harness.h - run real VMs from a test process and observe them.
 *
 * The test process is the VMs' supervisor (docs/process-model.md): each VM
 * is a `samepage-vm` process that dies with the test, and the sharing
 * engine's index and pools live in the test process.  A Harness owns a VM
 * host and a set of VMs created from spec strings (the same syntax as
 * `samepage run --vm`), records every integrity report and console line,
 * and offers waits with deadlines so a broken guest fails a test instead of
 * hanging it.  Guest RAM lives in the VM processes: tests see it as root
 * through /proc/PID/{pagemap,mem,statm} (harness_vm_*).  Payloads are found
 * in the build tree ($top_builddir/guest-tools).
 */
#ifndef SAMEPAGE_TESTS_LIB_VM_HARNESS_H
#define SAMEPAGE_TESTS_LIB_VM_HARNESS_H

#include "sharing/engine.h"
#include "vmm/super/vm.h"

/* How long a test waits for a guest or engine event (a round, a result, a
 * command's acknowledgement, full scans, the end of VMs) before it fails:
 * generous, for a loaded 2-core CI host.  Every harness wait takes
 * harness_slow() times as long as it is asked. */
#define HARNESS_DEADLINE_S 60

/* 4 inside the emulated host (SAMEPAGE_IN_EMUHOST, scripts/in-emuhost.sh:
 * TCG runs everything several times slower), else 1. */
double harness_slow(void);
/* sp_engine_wait_scans, for harness_slow() times as long. */
bool harness_wait_scans(SpEngine *eng, uint64_t n, double seconds);

typedef struct HarnessIntegrity {
    SpVm *vm;
    uint64_t gpa, expected, found;
} HarnessIntegrity;

typedef struct Harness {
    SpVmHost *host;          /* VM processes: die with the test, accept test hooks */
    SpEngine *engine;        /* NULL unless harness_use_engine() */
    GPtrArray *vms;          /* SpVm* */
    GMutex lock;             /* protects the arrays below */
    GArray *integrity;       /* HarnessIntegrity */
    GPtrArray *console;      /* "name: line" strings */
    bool echo;               /* print console lines as TAP comments */
    uint32_t swap_readahead; /* harness_use_swap's read-ahead (default: samepage's) */
} Harness;

Harness *harness_new(void);
void harness_free(Harness *h);
/* Create (not start) a VM from a spec; fails the test on error. */
SpVm *harness_add(Harness *h, const char *spec_fmt, ...) G_GNUC_PRINTF(2, 3);
void harness_start_all(Harness *h);
/* The callbacks harness_add gives its VMs (console, integrity, crashes). */
SpVmEvents harness_events(Harness *h);
/* A VM id unique in the process (as the VMM's are), across harnesses. */
uint64_t harness_new_vm_id(void);
/* Wait until every VM has left RUNNING, at most `seconds`; false on timeout. */
bool harness_wait_all(Harness *h, double seconds);
/* Wait until `vm` reports at least `rounds` rounds; false on timeout or end. */
bool harness_wait_rounds(Harness *h, SpVm *vm, uint64_t rounds, double seconds);
guint harness_integrity_count(Harness *h);
/* Every VM completes two more verify rounds, and no integrity error was
 * reported (asserts both). */
void harness_expect_bytes_intact(Harness *h);
/* Pages of this process resident (from /proc/self/statm). */
uint64_t harness_rss_pages(void);

/* Create a sharing engine with these knobs; VMs added later attach to it. */
void harness_use_engine(Harness *h, const SpEngineKnobs *knobs);
/* The same with KSM's defaults but full speed: sleep 0, 20000 pages a batch. */
void harness_use_fast_engine(Harness *h);
/* Wait for a result key from the guest; false on timeout. */
bool harness_wait_result(SpVm *vm, const char *key, uint64_t *value, double seconds);
/* Send a memload command and wait for its acknowledgement (cmd_seq). */
bool harness_command(SpVm *vm, uint8_t op, uint32_t arg, double seconds);
/* Limit sharing to memload's managed pages (after it reported them). */
void harness_share_managed(Harness *h, SpVm *vm);
/* Physical frame number behind a host address (0 if not present). */
uint64_t harness_pfn(const void *addr);
/* The same for page gpa of a VM (its process's pagemap, as root); 0 if not present. */
uint64_t harness_vm_pfn(SpVm *vm, uint64_t gpa);
/* Pagemap entries of n pages of a VM's RAM from page `first`. */
bool harness_vm_pagemap(SpVm *vm, uint64_t first, uint64_t n, uint64_t *ent);
/* Read a VM's guest RAM (its process's /proc/PID/mem); fails the test on error. */
void harness_vm_read(SpVm *vm, uint64_t gpa, void *buf, uint64_t len);
/* Write a VM's guest RAM from outside the guest, as root could (its
 * process's /proc/PID/mem); fails the test on error. */
void harness_vm_write(SpVm *vm, uint64_t gpa, const void *buf, uint64_t len);
/* Resident pages of a VM process (/proc/PID/statm). */
uint64_t harness_vm_rss_pages(SpVm *vm);
/* PFN of the kernel's shared zero page (what untouched memory reads map). */
uint64_t harness_zero_pfn(void);
/* Set the engine's run knob. */
void harness_engine_run(Harness *h, uint32_t run);
/* Wait until every VM wrote and verified its memory once, then until a
 * scan saw no volatile page and sharing stopped changing (fails the test
 * otherwise). */
void harness_converge(Harness *h);
/* Turn swap on in the harness's engine: an unlinked swap file in the
 * temporary directory, a compressed tier of cache_bytes, a host limit (0:
 * none); no pressure reclaim (tests decide what leaves). */
void harness_use_swap(Harness *h, uint64_t cache_bytes, uint64_t limit);

/* memload's managed pages of a VM: guest RAM lives in the VM's process,
 * so they are named by (VM, guest-physical address). */
typedef struct HarnessManaged {
    SpVm *vm;
    uint64_t gpa; /* first managed page */
    uint64_t pages;
} HarnessManaged;
HarnessManaged harness_managed(SpVm *vm);
/* The PFN of every managed page (0: not present), from the VM process's
 * pagemap in one read; g_free it. */
uint64_t *harness_managed_pfns(const HarnessManaged *m);

#endif
