/* SPDX-License-Identifier: MIT */
/*
 * cmd-run.c - `samepage run`: VMs from the command line, in the foreground.
 *
 * Starts every --vm, prefixes each console line with "[name] ", prints a
 * status line per VM every --status seconds (text, or JSON with --json;
 * run-status.c prints them from a snapshot of the figures), stops all VMs
 * on SIGINT/SIGTERM or after --timeout, and exits 0 only if no VM crashed,
 * reported an integrity error, exited with a non-zero status or had to be
 * killed.  A stop gives the guests RUN_STOP_WAIT_S to end; then (or at a
 * second SIGINT/SIGTERM) the VM processes still there are killed.  Guest
 * result lines go to per-VM logs (run-logs.c) unless --results.
 *
 * --top shows the live view of `samepage top` (top-view.c) instead: every
 * guest line goes to the logs, q stops the VMs.  --metrics-listen serves
 * the same figures to Prometheus (vmm/metrics/endpoint.h).
 *
 * --clone SRC,count=N[,after=SECONDS] clones the running VM SRC into N
 * children named SRC-c1, SRC-c2, ... (vm-clone.c) once SRC reported
 * phase 1 (memload: filled) or, with after=, SECONDS after the start;
 * the children then run and count like any --vm.  Status lines of a VM in
 * a clone family add its clone-shared pages, group and generation, and
 * each clone group gets a "[group N]" line (members, pages, saved).
 *
 * SIGUSR1 suspends every running VM (its vCPUs park; the VM process, its
 * memory agent and the sharing engine go on), SIGUSR2 resumes them: what
 * `samepage suspend`/`resume` do for samepaged's VMs, for a foreground run
 * (e.g. to let an engine converge on idle guests).
 *
 * --engine=ksm turns samepage's sharing engine off and marks every --vm's
 * guest RAM MADV_MERGEABLE instead, so the host kernel's KSM (if its
 * /sys/kernel/mm/ksm/run is 1) merges it; the status lines then show KSM's
 * own counters ("[ksm] ...").  Clone children map a file-backed layer that
 * KSM cannot merge (only their copied-on-write pages would be anonymous),
 * so they are not advised.
 *
 * Threads: the main thread runs a GMainLoop (signals, timers, the end of
 * VMs, the view, the metrics endpoint) and alone reads ctx->vms for
 * snapshots; vCPU threads print console lines directly under out_lock,
 * one whole line at a time (or append them to the logs), and tell the
 * main loop when a VM ends.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib-unix.h>
#include <numa.h>

#include "rmap/rmap.h"
#include "sharing/engine.h"
#include "sharing/knobs.h"
#include "vmm/cli/cmd.h"
#include "vmm/cli/run-logs.h"
#include "vmm/cli/run-status.h"
#include "vmm/cli/stop-signals.h"
#include "vmm/cli/top-view.h"
#include "vmm/metrics/endpoint.h"
#include "vmm/metrics/json.h"
#include "vmm/super/vm.h"

/* A --clone request, done from the main loop. */
typedef struct RunClone {
    char *src; /* source VM name */
    uint32_t count;
    double after; /* seconds after start; < 0 = at phase 1 */
    bool done;
} RunClone;

static void run_clone_free(RunClone *c)
{
    g_free(c->src);
    g_free(c);
}

typedef struct RunCtx {
    GPtrArray *vms;   /* SpVm*, in --vm order */
    SpEngine *engine; /* the sharing engine, or NULL with --engine=off|ksm */
    bool ksm;         /* --engine=ksm: guest RAM is MADV_MERGEABLE */
    bool swap;        /* the engine swaps (docs/swap.md) */
    GMainLoop *loop;
    gint running;               /* VMs still running (atomic) */
    bool quiet;                 /* no console echo */
    bool json;                  /* status as JSON lines */
    bool results;               /* --results: print memload's result lines */
    bool top;                   /* --top: the live view instead of lines */
    SpRunLogs *logs;            /* per-VM logs of the lines not printed */
    SpTopView *view;            /* --top's view while it runs, else NULL */
    SpMetricsEndpoint *metrics; /* --metrics-listen's endpoint, or NULL */
    gboolean stopping;          /* a stop was requested */
    GMutex out_lock;            /* one line at a time on stdout */
    GString *deferred;          /* lines kept while the view has the terminal (out_lock) */
    GPtrArray *clones;          /* RunClone*, pending and done */
    SpVmEvents ev;              /* events for every VM, clones included */
    gint64 start_us;            /* when the VMs were started */
    uint32_t next_child;        /* clone name suffix */
    bool clone_failed;          /* a --clone could not be done */
    guint clone_timer;          /* on_clone_timer's source while requests are pending */
    guint sig_usr1, sig_usr2;   /* ... suspend all, resume all */
    guint t_status, t_timeout;  /* --status and --timeout timers, 0: none */
    guint t_kill;               /* kills what a stop did not end, 0: none */
    bool killed;                /* a VM process was killed */
} RunCtx;

#define RUN_STOP_WAIT_S 10 /* a stop, before the VM processes are killed */

static void run_print(RunCtx *ctx, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void run_print(RunCtx *ctx, const char *fmt, ...)
{
    va_list ap;
    g_mutex_lock(&ctx->out_lock);
    va_start(ap, fmt);
    if (ctx->deferred) /* the view has the terminal: printed when it ends */
        g_string_append_vprintf(ctx->deferred, fmt, ap);
    else
        vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
    g_mutex_unlock(&ctx->out_lock);
}

/* A line of a VM: "[NAME] LINE" on stdout when shown, else in its log
 * (the first such line says where the logs are, unless the view runs). */
static void run_vm_line(RunCtx *ctx, SpVm *vm, bool shown, const char *line)
{
    if (shown) {
        run_print(ctx, "[%s] %s\n", sp_vm_name(vm), line);
        return;
    }
    g_autofree char *note = sp_run_logs_write(ctx->logs, sp_vm_name(vm), line);
    if (note && !ctx->top)
        run_print(ctx, "%s\n", note);
}

static void on_console(SpVm *vm, const char *line, void *opaque)
{
    RunCtx *ctx = opaque;
    if (!ctx->quiet)
        run_vm_line(ctx, vm, !ctx->top, line);
}

static void on_phase(SpVm *vm, uint64_t n, const char *label, void *opaque)
{
    RunCtx *ctx = opaque;
    if (ctx->quiet)
        return;
    g_autofree char *line =
        g_strdup_printf("phase %" G_GUINT64_FORMAT "%s%s", n, *label ? ": " : "", label);
    run_vm_line(ctx, vm, !ctx->top, line);
}

static void on_result(SpVm *vm, const char *key, uint64_t value, void *opaque)
{
    RunCtx *ctx = opaque;
    if (ctx->quiet)
        return;
    g_autofree char *line = g_strdup_printf("result %s=%" G_GUINT64_FORMAT, key, value);
    run_vm_line(ctx, vm, ctx->results && !ctx->top, line);
}

static void on_integrity(SpVm *vm, uint64_t gpa, uint64_t expected, uint64_t found, void *opaque)
{
    RunCtx *ctx = opaque;
    /* Always shown, even with --quiet: this is data loss (with --top: its
     * ERR column, the log, and the exit status). */
    g_autofree char *line =
        g_strdup_printf("INTEGRITY ERROR at guest address 0x%" G_GINT64_MODIFIER "x: expected "
                        "0x%016" G_GINT64_MODIFIER "x, found 0x%016" G_GINT64_MODIFIER "x",
                        gpa, expected, found);
    run_vm_line(ctx, vm, !ctx->top, line);
}

static gboolean run_vm_ended_idle(gpointer opaque)
{
    RunCtx *ctx = opaque;
    if (g_atomic_int_get(&ctx->running) == 0)
        g_main_loop_quit(ctx->loop);
    return G_SOURCE_REMOVE;
}

static void on_ended(SpVm *vm, SpVmState state, void *opaque)
{
    RunCtx *ctx = opaque;
    g_autofree char *reason = sp_vm_get_reason(vm);
    SpVmInfo info;
    sp_vm_get_info(vm, &info);
    g_autofree char *line = NULL;
    if (state == SP_VM_CRASHED)
        line = g_strdup_printf("CRASHED: %s", reason ? reason : "unknown");
    else if (state == SP_VM_EXITED)
        line =
            g_strdup_printf("exited with status %d after %.1f s", info.exit_status, info.seconds);
    else if (state == SP_VM_STOPPED && sp_vm_was_killed(vm))
        line = g_strdup_printf("STOPPED: %s", reason ? reason : "the VM process was killed");
    if (line)
        run_vm_line(ctx, vm, !ctx->top, line);
    g_atomic_int_dec_and_test(&ctx->running);
    g_idle_add(run_vm_ended_idle, ctx);
}

/* Kill every VM process whose guest has not ended (each VM's own line
 * then says "STOPPED: the VM process was killed: why"). */
static void run_kill_all(RunCtx *ctx, const char *why)
{
    guint n = 0;
    for (guint i = 0; i < ctx->vms->len; i++)
        n += sp_vm_kill(ctx->vms->pdata[i], why);
    if (n) {
        ctx->killed = true;
        run_print(ctx, "samepage: killing %u VM process%s: %s\n", n, n == 1 ? "" : "es", why);
    }
}

static gboolean on_stop_late(gpointer opaque)
{
    RunCtx *ctx = opaque;
    ctx->t_kill = 0;
    run_kill_all(ctx, "its guest did not stop within " G_STRINGIFY(RUN_STOP_WAIT_S) " s");
    return G_SOURCE_REMOVE;
}

/* Idempotent: the first call asks every guest to stop and sets the timer
 * that kills what is left after RUN_STOP_WAIT_S. */
static void run_stop_all(RunCtx *ctx)
{
    if (ctx->stopping)
        return;
    ctx->stopping = TRUE;
    for (guint i = 0; i < ctx->vms->len; i++)
        sp_vm_request_stop(ctx->vms->pdata[i]);
    ctx->t_kill = g_timeout_add_seconds(RUN_STOP_WAIT_S, on_stop_late, ctx);
}

/* SIGINT/SIGTERM: the first stops all VMs, a second one kills the VM
 * processes still there at once (Ctrl-C twice).  Each signal is counted
 * (stop-signals.h), also two that came while the main loop was busy. */
static void on_signal(int signum, gpointer opaque)
{
    (void)signum;
    RunCtx *ctx = opaque;
    if (ctx->stopping) {
        run_kill_all(ctx, "a second stop signal");
        return;
    }
    run_print(ctx, "samepage: stopping all VMs\n");
    run_stop_all(ctx);
}

/* SIGUSR1 / SIGUSR2: suspend / resume every running VM; one line says
 * how many, and each VM that refused says why (it goes on as it was). */
static void run_suspend_all(RunCtx *ctx, bool pause)
{
    guint n = 0;
    for (guint i = 0; i < ctx->vms->len && !ctx->stopping; i++) {
        SpVm *vm = ctx->vms->pdata[i];
        SpVmInfo info;
        sp_vm_get_info(vm, &info);
        if (info.state != SP_VM_RUNNING || sp_vm_suspended(vm) == pause)
            continue;
        g_autoptr(GError) err = NULL;
        if (pause ? sp_vm_pause(vm, &err) : sp_vm_resume(vm, &err))
            n++;
        else
            run_print(ctx, "samepage: %s %s: %s\n", pause ? "suspending" : "resuming",
                      sp_vm_name(vm), err->message);
    }
    run_print(ctx, "samepage: %s %u VM%s (%s)\n", pause ? "suspended" : "resumed", n,
              n == 1 ? "" : "s", pause ? "SIGUSR1" : "SIGUSR2");
}

static gboolean on_usr1(gpointer opaque)
{
    run_suspend_all(opaque, true);
    return G_SOURCE_CONTINUE;
}

static gboolean on_usr2(gpointer opaque)
{
    run_suspend_all(opaque, false);
    return G_SOURCE_CONTINUE;
}

static gboolean on_timeout(gpointer opaque)
{
    RunCtx *ctx = opaque;
    ctx->t_timeout = 0;
    run_print(ctx, "samepage: --timeout reached, stopping all VMs\n");
    run_stop_all(ctx);
    return G_SOURCE_REMOVE;
}

/* Every VM's figures, the engine's and the clone groups', now (main
 * thread); agent figures at most agent_max_age_s old (0: asked now). */
static SpFigSnapshot *run_snapshot(RunCtx *ctx, double agent_max_age_s)
{
    g_autofree SpFigVmRef *refs = g_new0(SpFigVmRef, ctx->vms->len);
    for (guint i = 0; i < ctx->vms->len; i++) {
        SpVm *vm = ctx->vms->pdata[i];
        SpVmInfo info;
        sp_vm_get_info(vm, &info);
        bool paused = info.state == SP_VM_RUNNING && sp_vm_suspended(vm); /* SIGUSR1 */
        refs[i] = (SpFigVmRef){.vm = vm,
                               .name = sp_vm_name(vm),
                               .state = paused ? "paused" : sp_vm_state_name(info.state)};
    }
    return sp_fig_collect(ctx->engine, refs, ctx->vms->len, agent_max_age_s);
}

static SpFigSnapshot *run_collect(void *opaque)
{
    return run_snapshot(opaque, SP_METRICS_AGENT_MAX_AGE_S);
}

static SpFigSnapshot *run_fetch(void *opaque, GError **error)
{
    return run_snapshot(opaque, 0);
}

/* The [status], [engine] and [group N] lines (or their JSON), at once. */
static void run_status_lines(RunCtx *ctx)
{
    g_autoptr(SpFigSnapshot) snap = run_snapshot(ctx, 0);
    g_autoptr(GString) out = g_string_new(NULL);
    sp_run_status(out, snap, ctx->json);
    run_print(ctx, "%s", out->str);
}

/* One counter of the host kernel's KSM (/sys/kernel/mm/ksm/NAME), or -1. */
static int64_t run_ksm_counter(const char *name)
{
    g_autofree char *path = g_strdup_printf("/sys/kernel/mm/ksm/%s", name);
    g_autofree char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return -1;
    return g_ascii_strtoll(text, NULL, 10);
}

/* --engine=ksm: the host KSM's counters, host-wide (other processes' merges
 * included), in the same units as the [engine] line. */
static void run_ksm_line(RunCtx *ctx)
{
    if (!ctx->ksm)
        return;
    int64_t run = run_ksm_counter("run"), shared = run_ksm_counter("pages_shared"),
            sharing = run_ksm_counter("pages_sharing"),
            unshared = run_ksm_counter("pages_unshared"),
            volatile_ = run_ksm_counter("pages_volatile"), scans = run_ksm_counter("full_scans");
    if (ctx->json) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "ksm");
        json_builder_begin_object(b);
        const struct {
            const char *key;
            int64_t v;
        } f[] = {{"run", run},
                 {"pages_shared", shared},
                 {"pages_sharing", sharing},
                 {"pages_unshared", unshared},
                 {"pages_volatile", volatile_},
                 {"full_scans", scans}};
        for (size_t i = 0; i < G_N_ELEMENTS(f); i++) {
            json_builder_set_member_name(b, f[i].key);
            json_builder_add_int_value(b, f[i].v);
        }
        json_builder_end_object(b);
        json_builder_end_object(b);
        g_autofree char *text = sp_json_to_string(b, false);
        run_print(ctx, "%s\n", text);
    } else {
        run_print(ctx,
                  "[ksm] run %" G_GINT64_FORMAT " shared %" G_GINT64_FORMAT
                  " sharing %" G_GINT64_FORMAT " unshared %" G_GINT64_FORMAT
                  " volatile %" G_GINT64_FORMAT " full_scans %" G_GINT64_FORMAT " saved %.1f MiB\n",
                  run, shared, sharing, unshared, volatile_, scans,
                  sharing > 0 ? sharing * 4096.0 / (1 << 20) : 0.0);
    }
}

static gboolean on_status(gpointer opaque)
{
    RunCtx *ctx = opaque;
    if (ctx->view) /* the view shows them */
        return G_SOURCE_CONTINUE;
    run_status_lines(ctx);
    run_ksm_line(ctx);
    return G_SOURCE_CONTINUE;
}

/* The view ended (q): stop the VMs, as Ctrl-C does. */
static void on_top_done(void *opaque)
{
    RunCtx *ctx = opaque;
    run_stop_all(ctx);
}

/* Parse SRC,count=N[,after=SECONDS]; one-line error on bad input. */
static RunClone *run_clone_parse(const char *spec, GPtrArray *cfgs, GError **error)
{
    g_auto(GStrv) parts = g_strsplit(spec, ",", -1);
    if (!parts[0] || !*parts[0]) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "needs SRC,count=N[,after=SECONDS]");
        return NULL;
    }
    /* a --vm, or a child of one (NAME-cK, possibly of a child: a chain) */
    g_autofree char *base = g_strdup(parts[0]);
    bool known = false;
    for (;;) {
        for (guint i = 0; i < cfgs->len; i++)
            known |= !g_strcmp0(((SpVmConfig *)cfgs->pdata[i])->name, base);
        char *dash = strrchr(base, '-');
        if (known || !dash || dash[1] != 'c' || !dash[2] ||
            strspn(dash + 2, "0123456789") != strlen(dash + 2))
            break;
        *dash = 0;
    }
    if (!known) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "no VM named '%s' (given with --vm)", parts[0]);
        return NULL;
    }
    g_autoptr(GError) e = NULL;
    uint64_t count = 0;
    double after = -1;
    for (char **p = parts + 1; *p; p++) {
        if (g_str_has_prefix(*p, "count=")) {
            if (!sp_parse_uint(*p + 6, 1, SP_VM_CLONE_MAX, &count, &e)) {
                g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                            "count must be 1..%d, not '%s'", SP_VM_CLONE_MAX, *p + 6);
                return NULL;
            }
        } else if (g_str_has_prefix(*p, "after=")) {
            char *end = NULL;
            after = g_ascii_strtod(*p + 6, &end);
            if (end == *p + 6 || *end || !(after >= 0 && after <= 86400)) {
                g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                            "after must be 0..86400 seconds, not '%s'", *p + 6);
                return NULL;
            }
        } else {
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        "unknown key '%s' (known: count, after)", *p);
            return NULL;
        }
    }
    if (!count) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "count=N (1..%d) is required",
                    SP_VM_CLONE_MAX);
        return NULL;
    }
    RunClone *c = g_new0(RunClone, 1);
    c->src = g_strdup(parts[0]);
    c->count = (uint32_t)count;
    c->after = after;
    return c;
}

static SpVm *run_find_vm(RunCtx *ctx, const char *name)
{
    for (guint i = 0; i < ctx->vms->len; i++)
        if (!strcmp(sp_vm_name(ctx->vms->pdata[i]), name))
            return ctx->vms->pdata[i];
    return NULL;
}

static void run_clone_do(RunCtx *ctx, RunClone *c, SpVm *src)
{
    c->done = true;
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    g_autofree uint64_t *ids = g_new(uint64_t, c->count);
    g_autofree SpVm **kids = g_new0(SpVm *, c->count);
    for (uint32_t i = 0; i < c->count; i++) {
        g_ptr_array_add(names, g_strdup_printf("%.50s-c%u", c->src, ++ctx->next_child));
        ids[i] = ctx->vms->len + 1 + i;
    }
    g_autoptr(GError) error = NULL;
    SpVmCloneTimes t;
    g_atomic_int_add(&ctx->running, (gint)c->count); /* before any child can end */
    if (!sp_vm_clone_many(src, c->count, (const char *const *)names->pdata, ids, &ctx->ev, kids, &t,
                          &error)) {
        g_atomic_int_add(&ctx->running, -(gint)c->count);
        run_print(ctx, "samepage run: --clone %s: %s\n", c->src, error->message);
        ctx->clone_failed = true;
        g_idle_add(run_vm_ended_idle, ctx);
        return;
    }
    for (uint32_t i = 0; i < c->count; i++)
        g_ptr_array_add(ctx->vms, kids[i]);
    run_print(ctx,
              "[%s] cloned into %u (%s..%s): paused %.1f ms, children running after %.1f ms "
              "(parking %.1f ms, copying %" G_GUINT64_FORMAT " pages %.1f ms, remapping %.1f ms)\n",
              c->src, c->count, (char *)names->pdata[0], (char *)names->pdata[c->count - 1],
              t.pause_ms, t.children_ms, t.park_ms, t.pages_copied, t.copy_ms, t.remap_ms);
}

/* Main loop, every 20 ms while --clone requests are pending. */
static gboolean on_clone_timer(gpointer opaque)
{
    RunCtx *ctx = opaque;
    bool pending = false;
    for (guint i = 0; i < ctx->clones->len; i++) {
        RunClone *c = ctx->clones->pdata[i];
        if (c->done)
            continue;
        SpVm *src = run_find_vm(ctx, c->src);
        if (!src) { /* a child that another --clone may still create */
            bool others = false;
            for (guint j = 0; j < ctx->clones->len; j++) {
                RunClone *o = ctx->clones->pdata[j];
                others |= o != c && !o->done;
            }
            if (others && !ctx->stopping) {
                pending = true;
                continue;
            }
            c->done = true;
            run_print(ctx, "samepage run: --clone %s: no VM named '%s' was created\n", c->src,
                      c->src);
            ctx->clone_failed = true;
            continue;
        }
        SpVmInfo info;
        sp_vm_get_info(src, &info);
        bool due = c->after >= 0
                       ? g_get_monotonic_time() - ctx->start_us >= (gint64)(c->after * 1e6)
                       : info.phase >= 1;
        if (ctx->stopping) {
            c->done = true;
        } else if (info.state != SP_VM_RUNNING || due) {
            run_clone_do(ctx, c, src); /* a VM that is not running gets its error */
        } else {
            pending = true;
        }
    }
    if (!pending)
        ctx->clone_timer = 0;
    return pending ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static const char run_description[] =
    "Starts one or more VMs in the foreground and runs them until they all\n"
    "end, a signal (Ctrl-C, SIGTERM) stops them, or --timeout passes.  A VM\n"
    "whose guest has not ended 10 s after the stop, or at a second signal, is\n"
    "killed (its line says so; exit status 1).\n"
    "SIGUSR1 suspends every running VM (vCPUs parked; memory sharing goes on),\n"
    "SIGUSR2 resumes them.\n"
    "\n"
    "VM SPEC is a comma-separated list of key=value:\n"
    "  name=NAME        required; letters, digits, '-', '_', '.' (max 63)\n"
    "  mem=SIZE         guest RAM, e.g. 256M, 4G (default 256M; multiples of 2M\n"
    "                   for payloads); allocated lazily as the guest touches it\n"
    "  vcpus=N          number of vCPUs (default 1)\n"
    "  payload=NAME     a guest-tools payload (memload, hello, crash) or a path\n"
    "                   to a static x86-64 ELF; see docs/guest-abi.md\n"
    "  image=F1[:F2..]  files placed in guest memory as the payload's image blob\n"
    "  kernel=PATH      a Linux bzImage instead of a payload\n"
    "  initrd=PATH      its initrd\n"
    "  domain=NAME      sharing domain (default: the VM's own)\n"
    "  share=yes|no     take part in memory sharing (default yes)\n"
    "  mem-limit=SIZE   memory its guest RAM may occupy; beyond it its cold pages\n"
    "                   are swapped (at least 16M; needs share=yes)\n"
    "  numa=MODE:NODES  host NUMA nodes its memory comes from: MODE strict (only\n"
    "                   those), preferred (those first) or interleave; NODES\n"
    "                   as 0, 0-1, 0,2 (docs/numa.md)\n"
    "  cpuset=CPUS      host CPUs every thread of its VM process may run on,\n"
    "                   as 1, 0-3, 0,2 (default: any)\n"
    "  cmdline=...      kernel command line; takes the REST of the spec\n"
    "  args=...         payload arguments; takes the REST of the spec, commas\n"
    "                   included, so it must come last\n"
    "\n"
    "--clone SRC,count=N[,after=SECONDS] clones the payload VM SRC into N\n"
    "children (1..64) named SRC-c1, SRC-c2, ... (numbered across all --clone\n"
    "options, in the order they happen) that go on from the same point\n"
    "and share SRC's memory copy-on-write; done when SRC reports phase 1\n"
    "(memload: filled), or SECONDS after the start with after=.  SRC may be\n"
    "a child made by another --clone (a chain of clones).  The [status] line\n"
    "of a VM in a clone family ends with '| clone-shared PAGES group G gen K'\n"
    "(pages still shared with the family, its clone group, its generation),\n"
    "and each clone group gets a line '[group G] parent P members M pages N\n"
    "mappings X shared S saved V (MiB)' (JSON: clone_* keys, clone_group).\n"
    "\n"
    "--engine=ksm turns samepage's engine off and marks the guest RAM of every\n"
    "--vm MADV_MERGEABLE, for the host kernel's KSM to merge (when\n"
    "/sys/kernel/mm/ksm/run is 1; like QEMU's mem-merge=on); status lines then\n"
    "show KSM's host-wide counters.  Clone children are not advised: their RAM\n"
    "maps a file-backed layer, which KSM cannot merge.\n"
    "\n"
    "--mem-limit SIZE (all VMs) and mem-limit= (one VM) turn swap on: cold guest\n"
    "pages go to a compressed tier in memory (--swap-cache) and then to a swap\n"
    "file (--swap-file, --swap-size), and come back when the guest touches them,\n"
    "with up to --swap-readahead neighbours of the same 16-page block.\n"
    "A frame shared by several VMs is swapped once and comes back once, for all\n"
    "of them.  A shared frame counts once against --mem-limit, and 1/N against\n"
    "the limit of each of its N sharers.  Status lines then add swap figures per\n"
    "VM and a '[swap]' line (JSON: swap_* keys, {\"swap\": {...}}).  Swap also\n"
    "reclaims when the host runs short of memory (PSI, MemAvailable).  See\n"
    "docs/swap.md.\n"
    "\n"
    "Output: console lines and phases as '[NAME] LINE', memload's result lines\n"
    "in per-VM logs (--log-dir; --results prints them), status lines every\n"
    "--status seconds (--json: JSON lines, schema in docs/cli.md).  --top shows\n"
    "the live view of `samepage top` instead (every guest line to the logs; q\n"
    "stops the VMs).  --metrics-listen 127.0.0.1:9477 serves the figures to\n"
    "Prometheus (docs/metrics.md).\n"
    "\n"
    "Exit status: 0 if every VM exited with status 0 or was stopped by the host\n"
    "without an integrity error; 1 if any VM crashed, exited non-zero or reported\n"
    "an integrity error; 2 for usage errors and VMs that could not be created.\n"
    "\n"
    "Example:\n"
    "  samepage run --vm name=a,mem=256M,vcpus=2,payload=memload,args=seed=1,rate=100 \\\n"
    "               --vm name=b,mem=256M,vcpus=2,payload=memload,args=seed=1,rate=100\n";

/* What the command line asks for (run_parse). */
typedef struct RunOptions {
    GPtrArray *cfgs;         /* SpVmConfig*, in --vm order */
    GPtrArray *clones;       /* RunClone*, in --clone order */
    char *kvm_path;          /* --kvm */
    gint timeout;            /* --timeout seconds, 0: none */
    gint status_interval;    /* --status seconds, 0: never */
    gboolean quiet, json;    /* --quiet, --json */
    gboolean results;        /* --results */
    gboolean top;            /* --top */
    char *log_dir;           /* --log-dir, or NULL */
    char *metrics_listen;    /* --metrics-listen, or NULL */
    bool engine_on;          /* --engine=on (the default) */
    bool host_ksm;           /* --engine=ksm */
    SpEngineKnobs knobs;     /* the defaults and the knob options */
    bool map_budget_given;   /* --map-budget (else none with swap: knobs.h) */
    char **allow;            /* --allow-share A:B, checked */
    bool swap;               /* swap on: a limit or a swap file was given */
    uint64_t mem_limit;      /* --mem-limit, 0: none */
    char *swap_file;         /* --swap-file, or NULL: a temporary one */
    uint64_t swap_size;      /* --swap-size, 0: all guest RAM */
    uint64_t swap_cache;     /* --swap-cache */
    uint32_t swap_readahead; /* --swap-readahead */
} RunOptions;

static void run_options_clear(RunOptions *o)
{
    if (o->cfgs)
        g_ptr_array_unref(o->cfgs);
    if (o->clones)
        g_ptr_array_unref(o->clones);
    g_free(o->kvm_path);
    g_free(o->log_dir);
    g_free(o->metrics_listen);
    g_strfreev(o->allow);
    g_free(o->swap_file);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(RunOptions, run_options_clear)

/* The engine's options: --engine, a --NAME-OF-KNOB per knob of the table
 * (sharing/knobs.h), --allow-share. */
typedef struct RunEngineArgs {
    char *mode;                        /* --engine */
    char *knob_opt[SP_ENGINE_NKNOBS];  /* option names: pages-to-scan */
    char *knob_text[SP_ENGINE_NKNOBS]; /* their values as given, or NULL */
    GOptionEntry entries[SP_ENGINE_NKNOBS + 3];
} RunEngineArgs;

static void run_engine_args_clear(RunEngineArgs *a)
{
    g_free(a->mode);
    for (size_t k = 0; k < SP_ENGINE_NKNOBS; k++) {
        g_free(a->knob_opt[k]);
        g_free(a->knob_text[k]);
    }
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(RunEngineArgs, run_engine_args_clear)

static void run_engine_args_init(RunEngineArgs *a, char ***allow)
{
    guint n = 0;
    a->entries[n++] =
        (GOptionEntry){"engine",
                       0,
                       0,
                       G_OPTION_ARG_STRING,
                       &a->mode,
                       "Memory sharing engine: on (default), off, or ksm (off, and guest RAM "
                       "MADV_MERGEABLE for the host kernel's KSM)",
                       "on|off|ksm"};
    for (size_t k = 0; k < SP_ENGINE_NKNOBS; k++) {
        const SpEngineKnobInfo *ki = &sp_engine_knob_info[k];
        a->knob_opt[k] = g_strdelimit(g_strdup(ki->name), "_", '-');
        a->entries[n++] = (GOptionEntry){a->knob_opt[k],   0,        0,      G_OPTION_ARG_STRING,
                                         &a->knob_text[k], ki->help, ki->arg};
    }
    a->entries[n++] =
        (GOptionEntry){"allow-share",
                       0,
                       0,
                       G_OPTION_ARG_STRING_ARRAY,
                       allow,
                       "Let sharing domains A and B share non-zero pages (repeatable)",
                       "A:B"};
    a->entries[n] = (GOptionEntry){NULL};
}

/* --engine and the knob options into o; false after printing a usage error. */
static bool run_parse_engine(const RunEngineArgs *a, RunOptions *o)
{
    const char *mode = a->mode;
    if (mode && strcmp(mode, "on") && strcmp(mode, "off") && strcmp(mode, "ksm")) {
        g_printerr("samepage run: --engine must be on, off or ksm, not '%s'\n", mode);
        return false;
    }
    o->engine_on = !mode || !strcmp(mode, "on");
    o->host_ksm = mode && !strcmp(mode, "ksm");
    sp_engine_default_knobs(&o->knobs);
    for (size_t k = 0; k < SP_ENGINE_NKNOBS; k++) {
        const SpEngineKnobInfo *ki = &sp_engine_knob_info[k];
        g_autoptr(GError) error = NULL;
        uint64_t v = 0;
        if (!a->knob_text[k])
            continue;
        if (!sp_parse_uint(a->knob_text[k], ki->min, ki->max, &v, &error)) {
            g_printerr("samepage run: --%s: %s\n", a->knob_opt[k], error->message);
            return false;
        }
        sp_engine_knob_set(&o->knobs, ki, (uint32_t)v);
        o->map_budget_given |= ki->offset == offsetof(SpEngineKnobs, map_budget);
    }
    if (o->knobs.advisor_mode == 1) {
        for (size_t k = 0; k < SP_ENGINE_NKNOBS; k++) {
            if (a->knob_text[k] && sp_engine_knob_info[k].advisor_sets) {
                g_printerr("samepage run: --%s: the engine sets it itself with --advisor-mode=1; "
                           "give --advisor-target-scan-time and --advisor-max-cpu instead\n",
                           a->knob_opt[k]);
                return false;
            }
        }
    }
    for (char **s = o->allow; s && *s; s++) {
        const char *colon = strchr(*s, ':');
        if (!colon || colon == *s || !colon[1]) {
            g_printerr("samepage run: --allow-share needs two domain names as A:B, not '%s'\n", *s);
            return false;
        }
    }
    return true;
}

/* The swap options: sizes, and what swap needs; false after a usage error. */
typedef struct RunSwapArgs {
    char *mem_limit, *swap_file, *swap_size, *swap_cache;
    gint readahead;
} RunSwapArgs;

static void run_swap_args_clear(RunSwapArgs *a)
{
    g_free(a->mem_limit);
    g_free(a->swap_file);
    g_free(a->swap_size);
    g_free(a->swap_cache);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(RunSwapArgs, run_swap_args_clear)

static bool run_size_opt(const char *opt, const char *text, bool zero_ok, uint64_t *out)
{
    g_autoptr(GError) error = NULL;
    if (sp_parse_size_option(opt, text, zero_ok, out, &error))
        return true;
    g_printerr("samepage run: %s\n", error->message);
    return false;
}

static bool run_parse_swap(RunSwapArgs *a, RunOptions *o)
{
    o->swap_cache = 64ULL << 20;
    if (!run_size_opt("mem-limit", a->mem_limit, false, &o->mem_limit) ||
        !run_size_opt("swap-size", a->swap_size, false, &o->swap_size) ||
        !run_size_opt("swap-cache", a->swap_cache, true, &o->swap_cache))
        return false;
    if (a->readahead < 0 || a->readahead > SP_SWAP_READAHEAD_MAX) {
        g_printerr("samepage run: --swap-readahead must be 0..%d, not %d\n", SP_SWAP_READAHEAD_MAX,
                   a->readahead);
        return false;
    }
    o->swap_readahead = (uint32_t)a->readahead;
    o->swap_file = g_steal_pointer(&a->swap_file);
    bool vm_limit = false;
    uint64_t ram = 0;
    for (guint i = 0; i < o->cfgs->len; i++) {
        const SpVmConfig *c = o->cfgs->pdata[i];
        vm_limit |= c->mem_limit != 0;
        ram += c->mem_size;
        if (c->mem_limit && c->no_share) {
            g_printerr("samepage run: VM '%s': mem-limit= needs share=yes (swap is the sharing "
                       "engine's)\n",
                       c->name);
            return false;
        }
    }
    o->swap = o->mem_limit || vm_limit || o->swap_file;
    if (!o->swap)
        return true;
    if (!o->engine_on) {
        g_printerr("samepage run: memory limits and swap need samepage's engine (--engine=on)\n");
        return false;
    }
    /* The compressed tier counts against the host limit (docs/swap.md). */
    uint64_t least = (uint64_t)o->cfgs->len * SP_VM_MEM_LIMIT_MIN + o->swap_cache;
    if (o->mem_limit && o->mem_limit < least) {
        g_printerr(
            "samepage run: --mem-limit %s is below the %" G_GUINT64_FORMAT
            " MiB that %u VMs need resident at least (%llu MiB each) with the %" G_GUINT64_FORMAT
            " MiB compressed tier (--swap-cache)\n",
            a->mem_limit, least >> 20, o->cfgs->len, SP_VM_MEM_LIMIT_MIN >> 20,
            o->swap_cache >> 20);
        return false;
    }
    if (!o->swap_size)
        o->swap_size = MAX(ram, 64ULL << 20);
    return true;
}

/* Every --vm spec, before touching KVM: a typo fails fast and harms nothing. */
static bool run_parse_vms(char **vm_specs, RunOptions *o)
{
    o->cfgs = g_ptr_array_new_with_free_func((GDestroyNotify)sp_vm_config_free);
    for (char **s = vm_specs; *s; s++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(SpVmConfig) cfg = sp_vm_config_parse(*s, &error);
        if (!cfg) {
            g_printerr("samepage run: --vm %s: %s\n", *s, error->message);
            return false;
        }
        for (guint i = 0; i < o->cfgs->len; i++) {
            if (cfg->name && !g_strcmp0(((SpVmConfig *)o->cfgs->pdata[i])->name, cfg->name)) {
                g_printerr("samepage run: two VMs are named '%s'\n", cfg->name);
                return false;
            }
        }
        g_ptr_array_add(o->cfgs, g_steal_pointer(&cfg));
    }
    return true;
}

static bool run_parse_clones(char **clone_specs, RunOptions *o)
{
    o->clones = g_ptr_array_new_with_free_func((GDestroyNotify)run_clone_free);
    for (char **s = clone_specs; s && *s; s++) {
        g_autoptr(GError) error = NULL;
        RunClone *c = run_clone_parse(*s, o->cfgs, &error);
        if (!c) {
            g_printerr("samepage run: --clone %s: %s\n", *s, error->message);
            return false;
        }
        g_ptr_array_add(o->clones, c);
    }
    return true;
}

/* Step 1: the command line into o; false after printing a usage error. */
static bool run_parse(int argc, char **argv, RunOptions *o)
{
    g_auto(GStrv) vm_specs = NULL;
    g_auto(GStrv) clone_specs = NULL;
    o->status_interval = 5;
    GOptionEntry entries[] = {
        {"clone", 0, 0, G_OPTION_ARG_STRING_ARRAY, &clone_specs,
         "Clone a running VM (repeatable); see below", "SRC,count=N[,after=SECONDS]"},
        {"vm", 0, 0, G_OPTION_ARG_STRING_ARRAY, &vm_specs, "Add a VM (repeatable); see below",
         "SPEC"},
        {"timeout", 't', 0, G_OPTION_ARG_INT, &o->timeout,
         "Stop all VMs after SECONDS (0 = no limit, the default)", "SECONDS"},
        {"status", 's', 0, G_OPTION_ARG_INT, &o->status_interval,
         "Print every VM's status each SECONDS (default 5; 0 = never)", "SECONDS"},
        {"json", 0, 0, G_OPTION_ARG_NONE, &o->json, "Print status lines as JSON objects", NULL},
        {"quiet", 'q', 0, G_OPTION_ARG_NONE, &o->quiet,
         "Do not echo guest consoles (integrity errors and crashes are still shown)", NULL},
        {"results", 0, 0, G_OPTION_ARG_NONE, &o->results,
         "Print the guests' result lines (default: to each VM's log, see --log-dir)", NULL},
        {"log-dir", 0, 0, G_OPTION_ARG_FILENAME, &o->log_dir,
         "Per-VM logs DIR/NAME.log of the lines not printed (default: a new "
         "samepage-run-XXXXXX under $TMPDIR, made when first needed)",
         "DIR"},
        {"top", 0, 0, G_OPTION_ARG_NONE, &o->top,
         "Show the live view of `samepage top` instead of lines (q stops the VMs); guest "
         "lines go to the logs",
         NULL},
        {"metrics-listen", 0, 0, G_OPTION_ARG_STRING, &o->metrics_listen,
         "Serve Prometheus metrics at http://ADDR:PORT/metrics (docs/metrics.md)", "ADDR:PORT"},
        {"kvm", 0, 0, G_OPTION_ARG_FILENAME, &o->kvm_path, "KVM device (default /dev/kvm)", "PATH"},
        {NULL},
    };
    g_auto(RunSwapArgs) sa = {.readahead = SP_SWAP_READAHEAD_DEFAULT};
    GOptionEntry swap_entries[] = {
        {"mem-limit", 0, 0, G_OPTION_ARG_STRING, &sa.mem_limit,
         "Memory all VMs' guest RAM may occupy; beyond it, cold pages are swapped (default: no "
         "limit)",
         "SIZE"},
        {"swap-file", 0, 0, G_OPTION_ARG_FILENAME, &sa.swap_file,
         "Swap file (created; default: an unlinked file in the temporary directory)", "PATH"},
        {"swap-size", 0, 0, G_OPTION_ARG_STRING, &sa.swap_size,
         "Most the swap file may hold (sparse; default: all guest RAM)", "SIZE"},
        {"swap-cache", 0, 0, G_OPTION_ARG_STRING, &sa.swap_cache,
         "Compressed swap tier in memory, in front of the file (default 64M; 0: none)", "SIZE"},
        {"swap-readahead", 0, 0, G_OPTION_ARG_INT, &sa.readahead,
         "Swapped pages of the same 16-page block brought back with a faulting one (0..14, "
         "default 7; 0: none)",
         "N"},
        {NULL},
    };
    g_auto(RunEngineArgs) ea = {0};
    run_engine_args_init(&ea, &o->allow);
    g_autoptr(GOptionContext) oc = g_option_context_new("--vm SPEC [--vm SPEC ...]");
    GOptionGroup *eg = g_option_group_new("engine", "Memory sharing engine options (KSM's knobs):",
                                          "Show the sharing engine options", NULL, NULL);
    g_option_group_add_entries(eg, ea.entries);
    g_option_context_add_group(oc, eg);
    GOptionGroup *sg = g_option_group_new("swap", "Memory limits and swap (docs/swap.md):",
                                          "Show the memory limit and swap options", NULL, NULL);
    g_option_group_add_entries(sg, swap_entries);
    g_option_context_add_group(oc, sg);
    g_option_context_set_summary(oc, "Run VMs in the foreground.");
    g_option_context_set_description(oc, run_description);
    g_option_context_add_main_entries(oc, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(oc, &argc, &argv, &error)) {
        g_printerr("samepage run: %s\n", error->message);
        return false;
    }
    if (argc > 1) {
        g_printerr("samepage run: unexpected argument '%s' (VMs are given with --vm)\n", argv[1]);
        return false;
    }
    if (!vm_specs || !vm_specs[0]) {
        g_printerr("samepage run: no VM given (use --vm SPEC; see samepage run --help)\n");
        return false;
    }
    if (!o->kvm_path)
        o->kvm_path = g_strdup("/dev/kvm");
    if (!run_parse_engine(&ea, o))
        return false;
    if (o->top && o->json) {
        g_printerr("samepage run: --top and --json do not go together\n");
        return false;
    }
    if (o->timeout < 0 || o->status_interval < 0) {
        g_printerr("samepage run: --timeout and --status must not be negative\n");
        return false;
    }
    if (!run_parse_vms(vm_specs, o) || !run_parse_clones(clone_specs, o) || !run_parse_swap(&sa, o))
        return false;
    if (o->swap && !o->map_budget_given)
        o->knobs.map_budget = SP_MAP_BUDGET_WITH_SWAP;
    return true;
}

/* The sharing engine of --engine=on, with --allow-share's pairs. */
static bool run_start_engine(RunCtx *ctx, const RunOptions *o)
{
    g_autoptr(GError) error = NULL;
    ctx->engine = sp_engine_new(&o->knobs, &error);
    if (!ctx->engine) {
        g_printerr("samepage run: sharing engine: %s\n", error->message);
        return false;
    }
    for (char **a = o->allow; a && *a; a++) {
        g_auto(GStrv) ab = g_strsplit(*a, ":", 2);
        sp_engine_allow_domains(ctx->engine, ab[0], ab[1]);
    }
    if (!o->swap)
        return true;
    g_autofree char *tmp =
        o->swap_file ? NULL
                     : g_strdup_printf("%s/samepage-swap-%d", g_get_tmp_dir(), (int)getpid());
    SpSwapConfig sc = {.path = o->swap_file ? o->swap_file : tmp,
                       .file_bytes = o->swap_size,
                       .cache_bytes = o->swap_cache,
                       .host_limit = o->mem_limit,
                       .pressure = true,
                       .readahead = o->swap_readahead};
    bool ok = sp_engine_enable_swap(ctx->engine, &sc, &error);
    if (tmp)
        unlink(tmp); /* ours alone: it goes with us */
    if (!ok) {
        g_printerr("samepage run: %s%s\n", o->swap_file ? "--swap-file: " : "", error->message);
        return false;
    }
    ctx->swap = true;
    return true;
}

/* Step 2: the engine and every VM, the signal handlers and timers, then
 * the VMs are started.  false after printing why (exit status 2). */
static bool run_start(RunCtx *ctx, const RunOptions *o, SpVmHost *host)
{
    g_autoptr(GError) error = NULL;
    if (o->engine_on && !run_start_engine(ctx, o))
        return false;
    for (guint i = 0; i < o->cfgs->len; i++) {
        SpVm *vm = sp_vm_new(host, o->cfgs->pdata[i], i + 1, &ctx->ev, &error);
        if (!vm) {
            g_printerr("samepage run: %s\n", error->message);
            return false;
        }
        g_ptr_array_add(ctx->vms, vm);
        if (ctx->engine)
            sp_vm_set_engine(vm, ctx->engine, 0, 0);
    }
    if (o->metrics_listen) {
        ctx->metrics = sp_metrics_endpoint_new(o->metrics_listen, run_collect, ctx, &error);
        if (!ctx->metrics) {
            g_printerr("samepage run: --metrics-listen: %s\n", error->message);
            return false;
        }
        run_print(ctx, "samepage: metrics at http://%s/metrics\n",
                  sp_metrics_endpoint_address(ctx->metrics));
    }
    if (o->top) {
        ctx->view = sp_top_view_new("samepage run", &error);
        if (!ctx->view) {
            g_printerr("samepage run: --top: %s\n", error->message);
            return false;
        }
        g_mutex_lock(&ctx->out_lock);
        ctx->deferred = g_string_new(NULL);
        g_mutex_unlock(&ctx->out_lock);
    }
    if (!sp_stop_signals_watch(on_signal, ctx, &error)) {
        g_printerr("samepage run: %s\n", error->message);
        return false;
    }
    ctx->sig_usr1 = g_unix_signal_add(SIGUSR1, on_usr1, ctx);
    ctx->sig_usr2 = g_unix_signal_add(SIGUSR2, on_usr2, ctx);
    if (o->status_interval)
        ctx->t_status = g_timeout_add_seconds(o->status_interval, on_status, ctx);
    if (o->timeout)
        ctx->t_timeout = g_timeout_add_seconds(o->timeout, on_timeout, ctx);
    g_atomic_int_set(&ctx->running, (gint)ctx->vms->len);
    ctx->start_us = g_get_monotonic_time();
    ctx->clone_timer = ctx->clones->len ? g_timeout_add(20, on_clone_timer, ctx) : 0;
    for (guint i = 0; i < ctx->vms->len; i++) {
        if (!sp_vm_start(ctx->vms->pdata[i], &error)) {
            g_printerr("samepage run: %s\n", error->message);
            g_clear_error(&error);
        }
    }
    if (ctx->view) /* every --status seconds, at most 2 */
        sp_top_view_run(ctx->view,
                        (guint)(o->status_interval ? MIN(o->status_interval, 2) : 2) * 1000,
                        run_fetch, on_top_done, ctx);
    return true;
}

/* Step 3: run the main loop until every VM ended, then a last status line
 * per VM and the engine, group and KSM lines.  Returns the exit status. */
static int run_wait_and_report(RunCtx *ctx)
{
    if (g_atomic_int_get(&ctx->running) > 0)
        g_main_loop_run(ctx->loop);

    if (ctx->clone_timer)
        g_source_remove(ctx->clone_timer);
    sp_stop_signals_unwatch();
    g_source_remove(ctx->sig_usr1);
    g_source_remove(ctx->sig_usr2);
    if (ctx->t_status)
        g_source_remove(ctx->t_status);
    if (ctx->t_timeout)
        g_source_remove(ctx->t_timeout);
    if (ctx->t_kill)
        g_source_remove(ctx->t_kill);

    g_clear_pointer(&ctx->view, sp_top_view_free); /* the terminal back for the last lines */
    g_mutex_lock(&ctx->out_lock);
    g_autoptr(GString) deferred = g_steal_pointer(&ctx->deferred);
    g_mutex_unlock(&ctx->out_lock);
    if (deferred)
        run_print(ctx, "%s", deferred->str);
    g_clear_pointer(&ctx->metrics, sp_metrics_endpoint_free);
    int rc = 0;
    for (guint i = 0; i < ctx->vms->len; i++) {
        SpVm *vm = ctx->vms->pdata[i];
        sp_vm_wait(vm);
        SpVmInfo info;
        sp_vm_get_info(vm, &info);
        if (info.state == SP_VM_CRASHED || info.integrity_errors ||
            (info.state == SP_VM_EXITED && info.exit_status != 0))
            rc = 1;
    }
    if (ctx->clone_failed || ctx->killed)
        rc = 1;
    run_status_lines(ctx);
    run_ksm_line(ctx);
    g_autofree char *dir = sp_run_logs_dir(ctx->logs);
    if (dir)
        run_print(ctx, "samepage: VM logs in %s\n", dir);
    return rc;
}

/* --engine=ksm on a host with several NUMA nodes and automatic NUMA
 * balancing on: measured in the emulated host (Debian 6.1), KSM then
 * merged almost nothing of guest RAM not bound to a node
 * (docs/emuhost.md); say so once, change nothing. */
static void run_warn_numa_balancing(void)
{
    g_autofree char *v = NULL;
    if (numa_available() < 0 || numa_num_configured_nodes() < 2 ||
        !g_file_get_contents("/proc/sys/kernel/numa_balancing", &v, NULL, NULL) ||
        g_ascii_strtoll(v, NULL, 10) == 0)
        return;
    g_printerr("samepage run: note: kernel.numa_balancing is on with %d NUMA nodes; the kernel's "
               "KSM may merge little of guest RAM that is not bound to a node "
               "(sysctl kernel.numa_balancing=0, or --vm ...,numa=strict:N; docs/emuhost.md)\n",
               numa_num_configured_nodes());
}

int sp_cmd_run(int argc, char **argv)
{
    g_auto(RunOptions) o = {0};
    if (!run_parse(argc, argv, &o))
        return 2;
    g_autoptr(GError) error = NULL;
    g_autoptr(SpVmHost) host = sp_vm_host_new(o.kvm_path, &error);
    if (!host) {
        g_printerr("samepage run: %s\n", error->message);
        return 2;
    }
    /* The VMs are this command's foreground children: they die with it. */
    host->die_with_supervisor = true;
    host->mergeable = o.host_ksm;
    if (o.host_ksm)
        run_warn_numa_balancing();
    RunCtx ctx = {
        .quiet = o.quiet,
        .json = o.json,
        .results = o.results,
        .top = o.top,
        .logs = sp_run_logs_new(o.log_dir),
        .ksm = o.host_ksm,
        .clones = o.clones,
        .vms = g_ptr_array_new_with_free_func((GDestroyNotify)sp_vm_free),
        .loop = g_main_loop_new(NULL, FALSE),
        .ev = {.console = on_console,
               .phase = on_phase,
               .result = on_result,
               .integrity = on_integrity,
               .ended = on_ended},
    };
    ctx.ev.opaque = &ctx;
    g_mutex_init(&ctx.out_lock);
    int rc = run_start(&ctx, &o, host) ? run_wait_and_report(&ctx) : 2;
    sp_top_view_free(ctx.view);
    if (ctx.deferred)
        g_string_free(ctx.deferred, TRUE);
    sp_metrics_endpoint_free(ctx.metrics);
    g_ptr_array_free(ctx.vms, TRUE);
    sp_engine_free(ctx.engine);
    sp_run_logs_free(ctx.logs);
    g_main_loop_unref(ctx.loop);
    g_mutex_clear(&ctx.out_lock);
    return rc;
}
