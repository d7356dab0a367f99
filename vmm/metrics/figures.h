/* SPDX-License-Identifier: MIT */
/*
 * figures.h - every figure samepage shows, in one table per scope: the
 * node (the sharing engine), a VM, a clone group.
 *
 * An entry says where the figure comes from (an offset into the scope's
 * source struct below, which a supervisor fills from what it already has:
 * sp_engine_get_stats, sp_engine_get_vm_stats, sp_vm_get_info, the clone
 * figures, sp_rmap_group_stats) and every name it has: its JSON key (the
 * entry's name), its Prometheus metric, its libvirt typed-parameter name
 * (node-memory-tune, domstats, CLONE_GROUPS), its label on `samepage run`'s
 * status lines and its column in `samepage top`.  Every printer walks
 * these tables: the Prometheus endpoint (prom.c), `samepage run`'s status
 * lines and JSON, the libvirt endpoint's samepage.* and shm_* keys
 * (vmm/daemon/knobs.c), `samepage top` and docs/metrics.md (checked by
 * tests/metrics/dashboard.sh).  So a new figure is one entry here, plus its
 * field in a source struct when no source has it yet.
 *
 * Units: a figure is kept in its source's unit (pages, bytes, ns, ms,
 * seconds); the Prometheus endpoint converts to base units (seconds), the
 * rest show the source's value.  Page counts stay counts of 4 KiB pages,
 * as KSM's counters are.
 *
 * The tables are constant; nothing here locks or allocates.
 */
#ifndef SAMEPAGE_VMM_METRICS_FIGURES_H
#define SAMEPAGE_VMM_METRICS_FIGURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "rmap/rmap.h"
#include "sharing/engine.h"
#include "vmm/vm-state.h"

/* Where a node figure comes from. */
typedef struct SpFigNodeSrc {
    SpEngineStats eng;      /* sp_engine_get_stats */
    SpEngineKnobs knobs;    /* sp_engine_get_knobs */
    uint64_t engine_cpu_ns; /* sp_engine_cpu_ns: the index thread's CPU time */
    uint64_t mappings;      /* the sum of the VMs' mappings (0 where the VMs are not known) */
    uint64_t vms;           /* VMs with figures in the same snapshot */
    SpSwapStats swap;       /* sp_engine_get_swap_stats (all 0 while swap is off) */
} SpFigNodeSrc;

/* Where a VM figure comes from. */
typedef struct SpFigVmSrc {
    SpEngineVmStats eng;         /* sp_engine_get_vm_stats (or the VM's own, outside an engine) */
    SpVmInfo info;               /* sp_vm_get_info: what the guest reported */
    uint64_t clone_shared_pages; /* sp_vm_clone_shared_pages */
    uint64_t clone_generation;   /* sp_vm_clone_generation: 0 not a clone */
    uint64_t clone_group;        /* sp_vm_clone_group_id: 0 none */
    uint64_t memory_bytes;       /* guest RAM size (its config) */
} SpFigVmSrc;

/* Clone groups: SpCloneGroupStats (rmap/rmap.h) is their source. */

typedef enum { SP_FIG_NODE, SP_FIG_VM, SP_FIG_GROUP, SP_FIG_NSCOPES } SpFigScope;

typedef enum {
    SP_FIG_GAUGE,   /* goes up and down */
    SP_FIG_COUNTER, /* only grows while the supervisor runs (Prometheus: _total) */
    SP_FIG_LABEL,   /* identifies its object (a group's id): a label, not a metric */
} SpFigType;

/* The C type of the source field. */
typedef enum { SP_FIG_U32, SP_FIG_U64, SP_FIG_I64, SP_FIG_F64, SP_FIG_BOOL } SpFigCType;

/* The source's unit. */
typedef enum {
    SP_FIG_COUNT,    /* a number (pages, mappings, events, ids) */
    SP_FIG_BYTES,    /* bytes */
    SP_FIG_NS,       /* nanoseconds (Prometheus: seconds) */
    SP_FIG_MS,       /* milliseconds (Prometheus: seconds) */
    SP_FIG_US,       /* microseconds (Prometheus: seconds) */
    SP_FIG_SECONDS,  /* seconds */
    SP_FIG_PERMILLE, /* thousandths (Prometheus: a ratio) */
} SpFigUnit;

/* Which part of a `samepage run` status line shows a VM figure. */
typedef enum {
    SP_FIG_LINE_NONE,
    SP_FIG_LINE_GUEST,   /* what the guest reported: round, verified, ... */
    SP_FIG_LINE_SHARING, /* after " | ": merged, zero, private, mappings */
    SP_FIG_LINE_CLONE,   /* after another " | ", only for a VM in a clone family */
    SP_FIG_LINE_SWAP,    /* after another " | " while swap is on; node figures: the
                          * '[swap]' line instead of '[engine]' */
} SpFigLine;

typedef struct SpFigure {
    const char *name;    /* JSON key; snake_case */
    const char *metric;  /* Prometheus name (samepage_...), NULL: not exported there */
    SpFigType type;      /* gauge, counter or label */
    SpFigCType ctype;    /* the source field's type */
    size_t offset;       /* of the field in the scope's source struct */
    SpFigUnit unit;      /* the source field's unit */
    const char *libvirt; /* typed-parameter name, NULL: not sent */
    const char *text;    /* label on run's status lines, NULL: not shown there */
    SpFigLine line;      /* the part of the status line (node: NONE or SWAP) */
    bool mib;            /* text: add " (X.X MiB)" to a page count */
    const char *top;     /* samepage top: column header (VMs) or label (engine), NULL: none */
    int top_width;       /* its column width */
    const char *help;    /* one line, for # HELP and docs/metrics.md */
} SpFigure;

/* A figure's value, as its ctype says: u (U32, U64, BOOL), i (I64) or d (F64). */
typedef union SpFigValue {
    uint64_t u;
    int64_t i;
    double d;
} SpFigValue;

/* The table of a scope, and its length. */
const SpFigure *sp_fig_table(SpFigScope scope, size_t *n);
/* The entry of `scope` called `name` (its JSON key), or NULL; *index its position. */
const SpFigure *sp_fig_find(SpFigScope scope, const char *name, size_t *index);

/* Read every figure of a scope's table from its source struct into out[n]. */
void sp_fig_read(SpFigScope scope, const void *src, SpFigValue *out);

/* The value in the source's unit as a double (for sorting, history, the
 * Prometheus base unit: see sp_fig_base_value). */
double sp_fig_double(const SpFigure *f, SpFigValue v);
/* The value in the base unit: seconds for NS/MS, else as sp_fig_double. */
double sp_fig_base_value(const SpFigure *f, SpFigValue v);
/* Append d in the shortest decimal form that reads back the same
 * (NaN, +Inf, -Inf as Prometheus writes them). */
void sp_fig_append_double(GString *s, double d);
/* Append the value as JSON-ready text: an integer, a double, true/false. */
void sp_fig_append_text(GString *s, const SpFigure *f, SpFigValue v);
/* Human text for a terminal: bytes as KiB/MiB/GiB, pages as counts. */
char *sp_fig_human(const SpFigure *f, SpFigValue v);

#endif
