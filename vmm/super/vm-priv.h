/* SPDX-License-Identifier: MIT */
/*
 * vm-priv.h - SpVm's insides (vm.c, vm-clone.c, vm-reattach.c).  See vm.h
 * for the lifecycle and locking.
 */
#ifndef SAMEPAGE_VMM_SUPER_VM_PRIV_H
#define SAMEPAGE_VMM_SUPER_VM_PRIV_H

#include "rmap/clone-layout.h"
#include "sharing/proto.h"
#include "vmm/super/vm.h"
#include "vmm/vm-error.h"

struct SpVm {
    SpVmHost *host;  /* not owned */
    SpVmConfig *cfg; /* owned copy */
    char *name;
    uint64_t id;
    int32_t lv_id;
    uint8_t uuid[16];
    SpVmEvents ev;
    /* the process */
    pid_t pid;
    int pidfd;     /* -1 if pidfd_open failed */
    bool is_child; /* we started it: waitpid() reaps it */
    bool reaped;
    bool reattached;  /* taken over from an earlier supervisor */
    bool clone_child; /* made unbooted, for a clone (vm-clone.c) */
    /* channels */
    int control;      /* control channel; the reader thread reads it */
    int memory;       /* memory channel; the engine uses it */
    GThread *thread;  /* reader */
    GMutex send_lock; /* sends on `control` */
    bool closing;     /* sp_vm_free: the reader's end is expected */
    bool setting_up;  /* sp_vm_new: a dying process is a setup error */
    /* under lock */
    GMutex lock;
    GCond cond; /* replies, rounds, the end */
    uint32_t next_seq;
    GHashTable *replies; /* seq -> SpProtoMsg*, until taken */
    bool dead;           /* the control channel closed */
    bool ended;          /* left RUNNING (EV_ENDED, or the process died) */
    bool stop_sent;
    bool killed;       /* sp_vm_kill: its guest was told to stop, its process was killed */
    char *kill_reason; /* ... the end's reason then ("the VM process was killed: ...") */
    bool process_died; /* the VM process ended without reporting its guest's end */
    SpVmState state;
    int exit_status;
    char *reason;
    GHashTable *results; /* key -> uint64 (boxed) */
    uint64_t rounds, pages_verified, pages_rewritten;
    uint64_t integrity_errors; /* atomic */
    uint64_t phase;            /* atomic */
    uint64_t cpu_ns, run_ns;   /* last STATUS / EV_ENDED */
    uint64_t clone_generation;
    uint64_t ram_base, ram_size;
    uint64_t resident_pages; /* last STATUS */
    bool suspended;          /* its vCPUs are held by our PAUSE (STATUS, PAUSE/RESUME) */
    uint64_t numa_pages[SP_PROTO_NUMA_NODES]; /* last NUMA_PAGES (vm-numa.c) ... */
    guint numa_nodes;                         /* ... its length ... */
    gint64 numa_us;                           /* ... and when (0: never) */
    uint64_t numa_migrated;                   /* pages NUMA moves brought to their nodes */
    gint64 start_us, end_us;
    /* sharing */
    SpEngine *engine;
    SpEngineVm *shvm; /* our handle in it while attached */
    uint64_t share_start, share_end;
    struct SpRmapVm *rmap; /* our entry in the supervisor's reverse map (and its layout) */
};

/* A request on the control channel; *out (may be NULL) gets the reply. */
bool sp_vm_request(SpVm *vm, uint16_t type, const void *payload, uint32_t len, const int *fds,
                   uint32_t nfds, double timeout_s, SpProtoMsg *out, GError **error);

/* The fuzzer (tests/fuzz/fuzz-vmproto.c): a VM with no process, and one
 * packet fed to it as its control channel's reader would handle it. */
SpVm *sp_vm_new_unattached(const char *name);
bool sp_vm_feed_packet(SpVm *vm, const void *data, size_t len);

/* vm-clone.c: a VM process made unbooted, for a clone. */
SpVm *sp_vm_new_clone_child(SpVmHost *host, const SpVmConfig *cfg, uint64_t vm_id,
                            const SpVmEvents *events, GError **error);
/* vm-reattach.c: the VM's reverse-map entry over its off bits (off_fd, not
 * taken); for a re-attached VM, with the layout it reports. */
bool sp_vm_rmap_setup(SpVm *vm, int off_fd, GError **error);
bool sp_vm_rmap_reattach(SpVm *vm, GError **error);

#endif
