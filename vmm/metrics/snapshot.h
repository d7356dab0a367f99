/* SPDX-License-Identifier: MIT */
/*
 * snapshot.h - one moment's figures of a supervisor: the node (engine),
 * every VM, every clone group, as values of the tables of figures.h.
 *
 * A supervisor (samepaged, `samepage run`) makes one with sp_fig_collect()
 * from what it already has: the engine's counters and knobs, each VM's
 * engine figures (the index's own, plus its agent's last report: an
 * M_STATS round trip only when that is older than the caller allows; no
 * /proc walk in the supervisor), what each guest reported, the clone figures and the
 * reverse map's group figures.  `samepage top` makes one from the libvirt
 * endpoint's replies (sp_fig_snapshot_from_libvirt).  Printers only read
 * a snapshot: Prometheus text (prom.h), JSON (json.h), status lines,
 * top.
 *
 * A snapshot is immutable once made and reference-counted, so any number
 * of readers (concurrent scrapes) may share one; sp_fig_collect() must run
 * on the thread that owns the VM list it is given (the supervisor's main
 * thread).
 */
#ifndef SAMEPAGE_VMM_METRICS_SNAPSHOT_H
#define SAMEPAGE_VMM_METRICS_SNAPSHOT_H

#include "vmm/metrics/figures.h"
#include "vmm/super/vm.h"

typedef struct SpFigVm {
    char *name;           /* the VM's (domain's) name */
    char *uuid;           /* its libvirt UUID as text, or NULL (samepage run) */
    char *state;          /* in words: libvirt's for samepaged, SpVmState's for run */
    char *sharing_domain; /* NULL: unknown */
    bool has_figures;     /* false: a stopped domain, only name, uuid and state */
    SpFigValue *v;        /* [n of the VM table] */
    bool *have;           /* [n]: false where the source did not send the figure */
} SpFigVm;

typedef struct SpFigSnapshot {
    gint64 taken_us;   /* g_get_monotonic_time() when made */
    bool has_node;     /* node figures known (an engine runs) */
    SpFigValue *node;  /* [n of the node table] */
    bool *node_have;   /* [n] */
    GPtrArray *vms;    /* SpFigVm*, in the supervisor's order */
    GPtrArray *groups; /* SpFigValue[n of the group table] each */
} SpFigSnapshot;

SpFigSnapshot *sp_fig_snapshot_new(void);
SpFigSnapshot *sp_fig_snapshot_ref(SpFigSnapshot *s);
void sp_fig_snapshot_unref(SpFigSnapshot *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpFigSnapshot, sp_fig_snapshot_unref)

/* A VM as the supervisor names it, for sp_fig_collect(). */
typedef struct SpFigVmRef {
    SpVm *vm;            /* NULL: a defined domain that does not run */
    const char *name;    /* its name */
    const uint8_t *uuid; /* 16 bytes, or NULL */
    const char *state;   /* in words */
} SpFigVmRef;

/* Fill a VM's source from the supervisor's figures (engine may be NULL).
 * agent_max_age_s: how old the figures only the VM's agent knows may be
 * (sp_engine_get_vm_stats_aged; 0: ask it now, a round trip). */
void sp_fig_vm_source(SpVm *vm, SpEngine *engine, double agent_max_age_s, SpFigVmSrc *out);
/* Fill the node's source (engine not NULL); mappings and vms are left 0. */
void sp_fig_node_source(SpEngine *engine, SpFigNodeSrc *out);

/* Everything a supervisor knows now: node figures when engine is not NULL,
 * each of refs[n], the clone groups of the process.  Runs on the thread
 * that owns the VMs; takes the engine's lock briefly per VM, and asks a
 * VM's agent (a round trip) only when its last figures are older than
 * agent_max_age_s. */
SpFigSnapshot *sp_fig_collect(SpEngine *engine, const SpFigVmRef *refs, size_t n,
                              double agent_max_age_s);

/* Add a VM with its values read from src (NULL: no figures). */
SpFigVm *sp_fig_snapshot_add_vm(SpFigSnapshot *s, const char *name, const uint8_t *uuid,
                                const char *state, const char *sharing_domain,
                                const SpFigVmSrc *src);
/* Set the node values from src. */
void sp_fig_snapshot_set_node(SpFigSnapshot *s, const SpFigNodeSrc *src);
void sp_fig_snapshot_add_group(SpFigSnapshot *s, const SpCloneGroupStats *g);

#endif
