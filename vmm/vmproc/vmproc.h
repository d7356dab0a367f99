/* SPDX-License-Identifier: MIT */
/*
 * vmproc.h - the VM process (`samepage-vm`): one VM, its devices and the VM
 * side of the sharing engine, supervised over two channels
 * (docs/process-model.md; protocol: vmm/proto/proto.h).
 *
 * Threads:
 *   main     serves the control channel and the listening socket (a new
 *            supervisor re-attaches there), in one poll loop;
 *   agent    serves the memory channel (sharing/agent.h), when attached;
 *   vCPUs    run the guest; they send events on the control channel with
 *            sp_vmproc_event() (never blocking for long: a slow or absent
 *            supervisor costs events, not guest progress).
 *
 * Locking: send_lock serializes sends on the control channel (the main
 * thread's replies, the vCPUs' events); `control` changes only on the main
 * thread, under send_lock.  The machine has its own locks.
 */
#ifndef SAMEPAGE_VMM_VMPROC_VMPROC_H
#define SAMEPAGE_VMM_VMPROC_VMPROC_H

#include <stdio.h>

#include "rmap/rmap.h"
#include "sharing/agent.h"
#include "vmm/machine/machine.h"
#include "sharing/proto.h"

typedef struct SpVmProc {
    /* identity, from the supervisor's HELLO */
    uint64_t vm_id;
    int32_t lv_id;
    uint8_t uuid[16];
    char *name;
    /* options */
    char *kvm_path;
    char *listen_path; /* re-attach socket, or NULL (samepage run) */
    uid_t uid;         /* VM user */
    gid_t gid;
    int seccomp; /* 0 off, 1 on, 2 log */
    bool test_hooks;
    bool mergeable; /* --engine=ksm: madvise(MADV_MERGEABLE) */
    /* channels */
    GMutex send_lock;
    int control;             /* -1 while no supervisor is attached */
    int listen_fd;           /* -1 without listen_path */
    int wake_fd;             /* eventfd: the guest ended (vCPU thread -> main) */
    uint64_t events_dropped; /* events a slow supervisor did not take */
    /* the VM */
    SpKvm *kvm;
    SpMachine *m;
    SpVmConfig *cfg;
    SpAgent *agent; /* the VM side of the engine */
    FILE *console;  /* console log, or NULL */
    GMutex console_lock;
    bool ended; /* the guest left RUNNING (main thread) */
    gint64 ended_us;
    bool quit;
    bool deaf_stop; /* tests (SP_VMPROC_HOOK_DEAF_STOP): STOP does nothing */
} SpVmProc;

/* control.c: handle one request from the control channel (main thread). */
void sp_vmproc_handle(SpVmProc *p, SpProtoMsg *req);
/* Fill a status message (STATUS reply, EV_ENDED) into w. */
void sp_vmproc_status(SpVmProc *p, SpProtoWriter *w);

/* Answer a request (if a supervisor is attached), or with an error. */
void sp_vmproc_reply(SpVmProc *p, SpProtoMsg *req, const void *payload, uint32_t len,
                     const int *fds, uint32_t nfds);
void sp_vmproc_reply_error(SpVmProc *p, SpProtoMsg *req, const GError *err);
/* --probe-open: drop privileges as after setup, try to open path. */
int sp_vmproc_probe_open(SpVmProc *p, const char *path);
/* TEST_HOOK numbers (tests only, --test-hooks). */
#define SP_VMPROC_HOOK_OPEN  1 /* open fails, then a call outside the filter */
#define SP_VMPROC_HOOK_CRASH 2 /* a wild write: SIGSEGV */
/* ... and a hostile VM process talking garbage on its control channel: */
#define SP_VMPROC_HOOK_BAD_VERSION 3 /* a header of another protocol version */
#define SP_VMPROC_HOOK_OVERSIZED   4 /* a packet larger than any message */
#define SP_VMPROC_HOOK_TRUNCATED   5 /* a packet shorter than a header */
#define SP_VMPROC_HOOK_BAD_LENGTH  6 /* a header whose length is not the packet's */
/* ... and a guest that does not stop: STOP answered, not acted on. */
#define SP_VMPROC_HOOK_DEAF_STOP 7

/* clone.c: CLONE_SAVE (source), CLONE_GROUP and CLONE_LOAD (child). */
void sp_vmproc_clone(SpVmProc *p, SpProtoMsg *req);

/* numa.c: NUMA_SET (a move, on a thread of its own) and NUMA_PAGES. */
void sp_vmproc_numa(SpVmProc *p, SpProtoMsg *req);

/* events.c: the machine's event callbacks, and sending an event. */
SpMachineEvents sp_vmproc_machine_events(SpVmProc *p);
void sp_vmproc_event(SpVmProc *p, uint16_t type, const void *payload, uint32_t len);

#endif
