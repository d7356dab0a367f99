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
 * Threads: the main thread runs the GMainLoop that serves the sockets,
 * owns the domain registry and handles signals; each VM has its vCPU
 * threads.  SIGTERM/SIGINT stop every VM, remove the sockets and exit 0.
 *
 * Logs go to stderr, one line per event, "samepaged[pid]: LEVEL event=...
 * key=value": easy to grep, and journald adds timestamps under systemd.
 */
#include <grp.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib-unix.h>
#include <glib/gstdio.h>

#include "config.h"
#include "sharing/engine.h"
#include "vmm/daemon/backend.h"
#include "vmm/daemon/knobs.h"
#include "vmm/daemon/metrics.h"
#include "vmm/libvirt/server.h"

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
        g_message("event=shutdown (signal received; stopping all VMs)");
    d->stopping = true;
    g_main_loop_quit(d->loop);
    return G_SOURCE_CONTINUE;
}

/* What main() parsed and defaulted, for daemon_serve(). */
typedef struct DaemonConfig {
    const char *state_dir, *sock, *ro_sock, *kvm_path, *runtime_dir, *vm_user;
    const char *metrics_listen; /* ADDR:PORT of the Prometheus endpoint, or NULL */
    gid_t rw_gid;               /* group of the read-write socket, (gid_t)-1: root only */
    guint32 clone_max;
} DaemonConfig;

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
    g_autoptr(SpEngine) engine = sp_engine_new(NULL, &error);
    if (!engine) {
        g_printerr("samepaged: sharing engine: %s\n", error->message);
        return 1;
    }
    g_autoptr(SpHostKnobs) knobs = sp_knobs_new(engine);
    g_autoptr(SpDomains) domains = sp_domains_new(host, engine, c->state_dir, ctx, &error);
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
    Daemon d = {.loop = loop};
    guint s1 = g_unix_signal_add(SIGTERM, on_signal, &d);
    guint s2 = g_unix_signal_add(SIGINT, on_signal, &d);
    g_message("event=ready socket=%s ro-socket=%s state-dir=%s domains=%u", c->sock, c->ro_sock,
              c->state_dir, domains->list->len);
    g_main_loop_run(loop);

    g_source_remove(s1);
    g_source_remove(s2);
    *stopped_vms = sp_domains_running(domains); /* left running */
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
    gboolean verbose = FALSE, version = FALSE;
    gint clone_max = SP_VM_CLONE_MAX;
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
            "`samepage clone NAME` clones a running VM into up to --clone-max running\n"
            "transient VMs (samepage's own RPC program on the same sockets).\n");
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
    };
    guint stopped = 0;
    int rc = daemon_serve(&cfg, &stopped);
    if (rc == 0)
        g_message("event=exit running_vms=%u (left running, to be re-attached)", stopped);
    return rc;
}
