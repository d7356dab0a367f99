/* SPDX-License-Identifier: MIT */
/*
 * vm-harness.h - run real VMs inside a test process and observe them.
 *
 * A Harness owns an SpKvm and a set of VMs created from spec strings (the
 * same syntax as `samepage run --vm`), records every integrity report and
 * console line, and offers waits with deadlines so a broken guest fails a
 * test instead of hanging it.  Payloads are found in the build tree
 * ($top_builddir/guest-tools).
 */
#ifndef SAMEPAGE_TESTS_VM_HARNESS_H
#define SAMEPAGE_TESTS_VM_HARNESS_H

#include "vmm/vm.h"

typedef struct HarnessIntegrity {
    SpVm *vm;
    uint64_t gpa, expected, found;
} HarnessIntegrity;

typedef struct Harness {
    SpKvm *kvm;
    GPtrArray *vms;          /* SpVm* */
    GMutex lock;             /* protects the arrays below */
    GArray *integrity;       /* HarnessIntegrity */
    GPtrArray *console;      /* "name: line" strings */
    bool echo;               /* print console lines as TAP comments */
} Harness;

Harness *harness_new(void);
void harness_free(Harness *h);
/* Create (not start) a VM from a spec; fails the test on error. */
SpVm *harness_add(Harness *h, const char *spec_fmt, ...) G_GNUC_PRINTF(2, 3);
void harness_start_all(Harness *h);
/* Wait until every VM has left RUNNING, at most `seconds`; false on timeout. */
bool harness_wait_all(Harness *h, double seconds);
/* Wait until `vm` reports at least `rounds` rounds; false on timeout or end. */
bool harness_wait_rounds(Harness *h, SpVm *vm, uint64_t rounds, double seconds);
guint harness_integrity_count(Harness *h);
/* Pages of this process resident (from /proc/self/statm). */
uint64_t harness_rss_pages(void);

#endif
