/* SPDX-License-Identifier: MIT */
/*
 * samepaged.c - the host daemon: runs every VM of the host and the memory
 * engine in one process, keeps VM definitions in a state directory, and
 * serves libvirt's remote protocol on a read-write and a read-only UNIX
 * socket (vmm/libvirt/).
 *
 * Besides libvirt's program the sockets serve samepage's own (CLONE,
 * CLONE_GROUPS: vmm/libvirt/procs-samepage.c, vmm/daemon/domains-clone.c).
 * With --metrics-listen it also serves Prometheus metrics over HTTP
 * (vmm/daemon/metrics.c), on the same main loop.
 *
 * Threads: the main thread runs the GMainLoop that serves the sockets and
 * handles signals; libvirt calls run on the server's workers (8 for state
 * changes, 4 for queries), the registry's tasks (VM ends, autostart) on its
 * own pool (vmm/daemon/domains.h has the locking); each VM is a process of
 * its own.  SIGTERM/SIGINT remove the sockets and exit 0, leaving the VMs
 * running.
 *
 * Logs go to stderr, one line per event, "samepaged[pid]: LEVEL event=...
 * key=value": easy to grep, and journald adds timestamps under systemd.
 */
#include <errno.h>
#include <grp.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib-unix.h>
#include <glib/gstdio.h>

#include "config.h"
#include "rmap/guest-mem.h"
#include "sharing/engine.h"
#include "sharing/knobs.h"
#include "vmm/daemon/backend.h"
#include "vmm/daemon/knobs.h"
#include "vmm/daemon/metrics.h"
#include "vmm/libvirt/server.h"
#include "vmm/vm-config.h"

static void log_handler(const char *domain, GLogLevelFlags level, const char *msg, gpointer data)
{
    const char *lv = (level & G_LOG_LEVEL_ERROR)      ? "ERROR"
                     : (level & G_LOG_LEVEL_CRITICAL) ? "CRITICAL"
                     : (level & G_LOG_LEVEL_WARNING)  ? "WARNING"
                     : (level & G_LOG_LEVEL_MESSAGE)  ? "INFO"
                                                      : "DEBUG";
    if ((level & G_LOG_LEVEL_DEBUG) && !data)
        return;
    g_autoptr(GDateTime) now = g_date_time_new_now_local();
    g_autofree char *ts = g_date_time_format(now, "%F %T");
    fprintf(stderr, "%s samepaged[%d]: %s %s\n", ts, (int)getpid(), lv, msg);
    fflush(stderr);
}

typedef struct Daemon {
    GMainLoop *loop;
    bool stopping;
} Daemon;

static gboolean on_signal(gpointer opaque)
{
    Daemon *d = opaque;
    if (!d->stopping)
        g_message("event=shutdown (signal received; the VMs go on running, to be re-attached)");
    d->stopping = true;
    g_main_loop_quit(d->loop);
    return G_SOURCE_CONTINUE;
}

/* SpDomainsEmit: the registry's events go to every registered client. */
static void daemon_emit(void *srv, const SpLvDomainInfo *dom, gint32 event_id, gint32 event,
                        gint32 detail)
{
    sp_lv_server_emit(srv, dom, event_id, event, detail);
}

/* What main() parsed and defaulted, for daemon_serve(). */
typedef struct DaemonConfig {
    const char *state_dir, *sock, *ro_sock, *kvm_path, *runtime_dir, *vm_user;
    const char *metrics_listen; /* ADDR:PORT of the Prometheus endpoint, or NULL */
    gid_t rw_gid;               /* group of the read-write socket, (gid_t)-1: root only */
    bool swap;                  /* swap guest memory (docs/swap.md) */
    const char *swap_marker;    /* swap_mark */
    SpSwapConfig swap_cfg;      /* its store and host limit, if swap */
    guint32 clone_max;
} DaemonConfig;

static gboolean rehome_tick(gpointer ds)
{
    sp_domains_numa_tick(ds);
    return G_SOURCE_CONTINUE;
}

/* The swap marker (runtime directory, which goes with a reboot, as the VM
 * processes do): there while a samepaged with swap runs, and left behind
 * by one that crashed or let VMs go with pages out.  A samepaged started
 * without swap that finds it turns swap on (main): the VMs it re-attaches
 * may have pages out in the store they kept, which only a samepaged with
 * swap can take over and answer (docs/swap.md "After a crash"). */
static void swap_mark(const DaemonConfig *c, bool on)
{
    g_autoptr(GError) err = NULL;
    if (!on) {
        if (unlink(c->swap_marker) < 0 && errno != ENOENT)
            g_warning("event=swap-marker-failed path=%s error=\"%s\"", c->swap_marker,
                      g_strerror(errno));
        return;
    }
    g_autofree char *text =
        g_strdup_printf("pid=%d swap_file=%s\n", (int)getpid(), c->swap_cfg.path);
    if (!g_file_set_contents(c->swap_marker, text, -1, &err))
        g_warning(
            "event=swap-marker-failed path=%s error=\"%s\" (a samepaged started after a crash "
            "of this one needs --swap to answer the pages out)",
            c->swap_marker, err->message);
}

/* Serve until SIGTERM or SIGINT.  One cleanup path: everything made here
 * goes in the reverse order on return (server, then the domains and their
 * VMs, then the knobs and the engine), whether it failed or stopped.
 * Returns the exit status; *stopped_vms = VMs running at the stop. */
static int daemon_serve(const DaemonConfig *c, guint *stopped_vms)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpVmHost) host = sp_vm_host_new(c->kvm_path, &error);
    if (!host) {
        g_printerr("samepaged: %s\n", error->message);
        return 1;
    }
    host->runtime_dir = g_strdup(c->runtime_dir);
    if (c->vm_user) {
        g_free(host->vm_user);
        host->vm_user = g_strdup(c->vm_user);
    }
    GMainContext *ctx = g_main_context_default();
    g_autoptr(GMainLoop) loop = g_main_loop_new(ctx, FALSE);
    SpEngineKnobs kn;
    sp_engine_default_knobs(&kn);
    if (c->swap) /* (node-memory-tune sets it otherwise, live) */
        kn.map_budget = SP_MAP_BUDGET_WITH_SWAP;
    g_autoptr(SpEngine) engine = sp_engine_new(&kn, &error);
    if (!engine) {
        g_printerr("samepaged: sharing engine: %s\n", error->message);
        return 1;
    }
    if (c->swap) {
        g_mkdir_with_parents(c->state_dir, 0700); /* the default swap file's home */
        if (!sp_engine_enable_swap(engine, &c->swap_cfg, &error)) {
            g_printerr("samepaged: swap: %s\n", error->message);
            return 1;
        }
        g_message("event=swap file=%s file_bytes=%" G_GUINT64_FORMAT
                  " cache_bytes=%" G_GUINT64_FORMAT " mem_limit=%" G_GUINT64_FORMAT,
                  c->swap_cfg.path, c->swap_cfg.file_bytes, c->swap_cfg.cache_bytes,
                  c->swap_cfg.host_limit);
        swap_mark(c, true);
    }
    g_autoptr(SpHostKnobs) knobs = sp_knobs_new(engine);
    g_autoptr(SpDomains) domains = sp_domains_new(host, engine, c->state_dir, &error);
    if (!domains) {
        g_printerr("samepaged: %s\n", error->message);
        return 1;
    }
    domains->clone_max = c->clone_max;
    SpDaemon dm = {.domains = domains, .knobs = knobs};
    SpLvBackend backend = {.ops = &sp_daemon_backend_ops, .opaque = &dm};
    SpLvServerConfig scfg = {
        .rw_path = c->sock,
        .ro_path = c->ro_sock,
        .rw_group = c->rw_gid,
        .job_workers = 8,
        .query_workers = 4,
        .endpoint = {.hv_type = "samepage", .hv_version = 1000},
    };
    g_autoptr(SpLvServer) srv = sp_lv_server_new(&scfg, &backend, ctx, &error);
    if (!srv) {
        g_printerr("samepaged: %s\n", error->message);
        return 1;
    }
    g_autoptr(SpMetricsEndpoint) metrics = NULL;
    if (c->metrics_listen) {
        metrics = sp_daemon_metrics_new(domains, c->metrics_listen, &error);
        if (!metrics) {
            g_printerr("samepaged: %s\n", error->message);
            return 1;
        }
        g_message("event=metrics-listen address=%s path=/metrics",
                  sp_metrics_endpoint_address(metrics));
    }
    sp_domains_set_emit(domains, daemon_emit, srv); /* unset before srv goes */
    Daemon d = {.loop = loop};
    guint s1 = g_unix_signal_add(SIGTERM, on_signal, &d);
    guint s2 = g_unix_signal_add(SIGINT, on_signal, &d);
    g_message("event=ready socket=%s ro-socket=%s state-dir=%s domains=%u", c->sock, c->ro_sock,
              c->state_dir, domains->list->len);
    sp_domains_autostart(domains);
    guint rehome = g_timeout_add_seconds(SP_DOMAINS_REHOME_S, rehome_tick, domains);
    g_main_loop_run(loop);
    g_source_remove(rehome);
    /* No event may reach the server from here on: it goes first. */
    sp_domains_set_emit(domains, NULL, NULL);
    g_clear_pointer(&srv, sp_lv_server_free);

    g_source_remove(s1);
    g_source_remove(s2);
    *stopped_vms = sp_domains_running(domains); /* left running */
    /* The VMs let go first (metrics read the domains): then the engine
     * knows whether any kept pages out for the next samepaged. */
    g_clear_pointer(&metrics, sp_metrics_endpoint_free);
    g_clear_pointer(&domains, sp_domains_free);
    if (c->swap && sp_engine_swap_left_out(engine))
        g_warning("event=swap-kept marker=%s (VMs left running keep pages in the swap store: "
                  "the next samepaged turns swap on to answer them)",
                  c->swap_marker);
    else if (c->swap)
        swap_mark(c, false);
    return 0;
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    g_autofree char *state_dir = NULL; /* defaults set after parsing: */
    g_autofree char *sock = NULL;
    g_autofree char *ro_sock = NULL;
    g_autofree char *group = NULL;
    g_autofree char *kvm_path = NULL; /* GOption does not free them */
    g_autofree char *runtime_dir = NULL, *vm_user = NULL, *metrics_listen = NULL;
    gboolean verbose = FALSE, version = FALSE, swap = FALSE;
    g_autofree char *mem_limit = NULL, *swap_file = NULL, *swap_size = NULL, *swap_cache = NULL;
    gint clone_max = SP_VM_CLONE_MAX, readahead = SP_SWAP_READAHEAD_DEFAULT;
    GOptionEntry entries[] = {
        {"state-dir", 'd', 0, G_OPTION_ARG_FILENAME, &state_dir,
         "Where VM definitions, console logs and run markers live (default /var/lib/samepage)",
         "DIR"},
        {"socket", 's', 0, G_OPTION_ARG_FILENAME, &sock,
         "Read-write libvirt socket (default /run/samepage/libvirt-sock)", "PATH"},
        {"ro-socket", 'r', 0, G_OPTION_ARG_FILENAME, &ro_sock,
         "Read-only libvirt socket (default: the read-write path + '-ro')", "PATH"},
        {"group", 'g', 0, G_OPTION_ARG_STRING, &group,
         "Let members of GROUP use the read-write socket (default: root only)", "GROUP"},
        {"kvm", 0, 0, G_OPTION_ARG_FILENAME, &kvm_path, "KVM device (default /dev/kvm)", "PATH"},
        {"runtime-dir", 0, 0, G_OPTION_ARG_FILENAME, &runtime_dir,
         "Where VM processes listen for a restarted samepaged (default: the socket's "
         "directory, /run/samepage)",
         "DIR"},
        {"vm-user", 0, 0, G_OPTION_ARG_STRING, &vm_user,
         "Unprivileged user VM processes run as after their setup (default nobody)", "USER"},
        {"clone-max", 0, 0, G_OPTION_ARG_INT, &clone_max,
         "Most children one `samepage clone` may make (1..64, default 64)", "N"},
        {"metrics-listen", 0, 0, G_OPTION_ARG_STRING, &metrics_listen,
         "Serve Prometheus metrics at http://ADDR:PORT/metrics (default: off; see "
         "docs/metrics.md)",
         "ADDR:PORT"},
        {"swap", 0, 0, G_OPTION_ARG_NONE, &swap,
         "Swap guest memory: honour <memtune><hard_limit> and virsh memtune, reclaim on host "
         "memory pressure (docs/swap.md; also on with --mem-limit or --swap-file)",
         NULL},
        {"mem-limit", 0, 0, G_OPTION_ARG_STRING, &mem_limit,
         "Memory all VMs' guest RAM may occupy; beyond it cold pages are swapped (default: none)",
         "SIZE"},
        {"swap-file", 0, 0, G_OPTION_ARG_FILENAME, &swap_file,
         "Swap file (created, truncated; default DIR/swap)", "PATH"},
        {"swap-size", 0, 0, G_OPTION_ARG_STRING, &swap_size,
         "Most the swap file may hold (sparse; default: the host's RAM)", "SIZE"},
        {"swap-cache", 0, 0, G_OPTION_ARG_STRING, &swap_cache,
         "Compressed swap tier in memory, in front of the file (default 64M; 0: none)", "SIZE"},
        {"swap-readahead", 0, 0, G_OPTION_ARG_INT, &readahead,
         "Swapped pages of the same 16-page block brought back with a faulting one (0..14, "
         "default 7; 0: none)",
         "N"},
        {"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log debug messages too", NULL},
        {"version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) oc = g_option_context_new(NULL);
    g_option_context_set_summary(
        oc, "The samepage host daemon: runs VMs and shares their memory, managed through\n"
            "libvirt's remote protocol.  Connect with\n"
            "  virsh -c 'samepage+unix:///system?socket=/run/samepage/libvirt-sock'");
    g_option_context_set_description(
        oc, "Every VM runs in a process of its own (samepage-vm), which samepaged\n"
            "supervises.  Signals: SIGTERM or SIGINT remove the sockets and exit,\n"
            "leaving the VMs running, as libvirtd does; a new samepaged re-attaches to\n"
            "them (RUNTIME-DIR/vms/NAME.sock) and sharing resumes.  To stop the VMs\n"
            "(host shutdown) use `samepage shutdown-all` (samepage-guests.service).\n"
            "Defined VMs are kept in DIR/domains and survive restarts; a VM whose\n"
            "process died while samepaged was down is reported shut off (reason: crashed).\n"
            "VMs marked with `virsh autostart` (DIR/autostart) start when samepaged starts.\n"
            "Domain XML as virt-install writes it is accepted: what samepage acts on is\n"
            "honoured, what it has no choice about is kept for dumpxml, what it would get\n"
            "wrong is refused with the element's name (docs/libvirt.md has the table).\n"
            "Clients may register for domain lifecycle events (virsh event); calls run on\n"
            "worker threads, so a long operation (a clone, a stop) blocks no other client;\n"
            "two state changes of one VM run one after the other (30 s wait at most).\n"
            "`samepage clone NAME` clones a running VM into up to --clone-max running\n"
            "transient VMs (samepage's own RPC program on the same sockets).\n"
            "With --swap (or --mem-limit, --swap-file) cold guest pages go to samepaged's\n"
            "own swap store, a shared frame once for all its sharers: <memtune><hard_limit>\n"
            "and `virsh memtune --hard-limit` limit a VM, --mem-limit all of them, and\n"
            "host memory pressure reclaims.  Swapped pages survive a crash of samepaged:\n"
            "the VM processes keep the store, the next samepaged takes it over (and turns\n"
            "swap on if started without it); a graceful stop brings them back first\n"
            "(docs/swap.md).\n");
    g_option_context_add_main_entries(oc, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(oc, &argc, &argv, &error)) {
        g_printerr("samepaged: %s\n", error->message);
        return 2;
    }
    if (version) {
        printf("samepaged %s\n", PACKAGE_VERSION);
        return 0;
    }
    if (clone_max < 1 || clone_max > SP_VM_CLONE_MAX) {
        g_printerr("samepaged: --clone-max must be 1..%d, not %d\n", SP_VM_CLONE_MAX, clone_max);
        return 2;
    }
    if (readahead < 0 || readahead > SP_SWAP_READAHEAD_MAX) {
        g_printerr("samepaged: --swap-readahead must be 0..%d, not %d\n", SP_SWAP_READAHEAD_MAX,
                   readahead);
        return 2;
    }
    if (argc > 1) {
        g_printerr("samepaged: unexpected argument '%s'\n", argv[1]);
        return 2;
    }
    g_log_set_default_handler(log_handler, verbose ? GINT_TO_POINTER(1) : NULL);
    if (!state_dir)
        state_dir = g_strdup("/var/lib/samepage");
    if (!kvm_path)
        kvm_path = g_strdup("/dev/kvm");
    if (!sock)
        sock = g_strdup("/run/samepage/libvirt-sock");
    if (!ro_sock)
        ro_sock = g_strconcat(sock, "-ro", NULL);
    gid_t gid = (gid_t)-1;
    if (group) {
        struct group *gr = getgrnam(group);
        if (!gr) {
            g_printerr("samepaged: no such group '%s'\n", group);
            return 2;
        }
        gid = gr->gr_gid;
    }
    g_autofree char *sock_dir = g_path_get_dirname(sock);
    g_mkdir_with_parents(sock_dir, 0755);
    if (!runtime_dir)
        runtime_dir = g_strdup(sock_dir);

    g_autofree char *swap_marker = g_build_filename(runtime_dir, "samepaged-swap", NULL);
    g_autofree char *marked = NULL;
    if (!swap && !mem_limit && !swap_file &&
        g_file_get_contents(swap_marker, &marked, NULL, NULL)) {
        g_message("event=swap-on-for-takeover marker=%s (%s): the samepaged before this one "
                  "ran with swap and did not stop cleanly, or let VMs go with pages out; swap "
                  "is on so that their pages can be answered",
                  swap_marker, g_strchomp(marked));
        swap = TRUE;
    }
    SpSwapConfig swap_cfg = {
        .cache_bytes = 64ULL << 20, .pressure = true, .readahead = (uint32_t)readahead};
    g_autoptr(GError) serr = NULL;
    if (!sp_parse_size_option("mem-limit", mem_limit, false, &swap_cfg.host_limit, &serr) ||
        !sp_parse_size_option("swap-size", swap_size, false, &swap_cfg.file_bytes, &serr) ||
        !sp_parse_size_option("swap-cache", swap_cache, true, &swap_cfg.cache_bytes, &serr)) {
        g_printerr("samepaged: %s\n", serr->message);
        return 2;
    }
    if (swap_cfg.host_limit && swap_cfg.host_limit < SP_VM_MEM_LIMIT_MIN + swap_cfg.cache_bytes) {
        g_printerr("samepaged: --mem-limit %s is below the %llu MiB one VM and the compressed tier "
                   "(--swap-cache) need\n",
                   mem_limit, (SP_VM_MEM_LIMIT_MIN + swap_cfg.cache_bytes) >> 20);
        return 2;
    }
    g_autofree char *swap_path =
        swap_file ? g_strdup(swap_file) : g_build_filename(state_dir, "swap", NULL);
    swap_cfg.path = swap_path;
    if (!swap_cfg.file_bytes) { /* the host's RAM */
        long pages = sysconf(_SC_PHYS_PAGES);
        swap_cfg.file_bytes = pages > 0 ? (uint64_t)pages * SP_PAGE_SIZE : 1ULL << 30;
    }
    DaemonConfig cfg = {
        .state_dir = state_dir,
        .sock = sock,
        .ro_sock = ro_sock,
        .kvm_path = kvm_path,
        .runtime_dir = runtime_dir,
        .vm_user = vm_user,
        .rw_gid = gid,
        .clone_max = (guint32)clone_max,
        .metrics_listen = metrics_listen,
        .swap = swap || mem_limit || swap_file,
        .swap_marker = swap_marker,
        .swap_cfg = swap_cfg,
    };
    guint stopped = 0;
    int rc = daemon_serve(&cfg, &stopped);
    if (rc == 0)
        g_message("event=exit running_vms=%u (left running, to be re-attached)", stopped);
    return rc;
}
