/* SPDX-License-Identifier: MIT */
/*
 * main.c - `samepage-vm`: the process of one VM (vmproc.h).
 *
 * Started by a supervisor (samepaged, samepage run) with the VM's ends of
 * two channels as descriptors; never by hand.  Setup, in order:
 *   1. HELLO (who we are) and CONFIG (the VM's spec; the console log) from
 *      the supervisor;
 *   2. the VM's NUMA memory policy (vm-placement.h) for this process, then
 *      open /dev/kvm, build the machine: RAM and its userfaultfd, vCPUs,
 *      devices, the payload or kernel loaded (a clone child waits for its
 *      layout instead: CLONE_LOAD); guest RAM gets the policy too;
 *   3. open the re-attach socket (daemon only);
 *   4. drop privileges and install the seccomp filter (sandbox.c);
 *   5. answer CONFIG: ready (or the error that stopped us, then exit 1).
 * Then the main loop serves the control channel until QUIT.
 *
 * Without a supervisor (it died), the guest keeps running and we wait on
 * the re-attach socket; without one (samepage run), the guest is stopped:
 * nobody could ever collect it.  After the guest ended we linger at most
 * ORPHAN_LINGER_S for a supervisor to collect its end.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "config.h"
#include "vmm/vm-heap.h"
#include "vmm/vmproc/sandbox.h"
#include "vmm/vmproc/vmproc.h"

#define SETUP_TIMEOUT_MS 30000

#ifdef SP_SANITIZERS
/* LeakSanitizer's exit check stops the world with clone() and ptrace(),
 * which the sandbox forbids: a VM process of a sanitizer build checks
 * memory errors (ASan, UBSan), not leaks. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "detect_leaks=0";
}
#endif
#define ORPHAN_LINGER_S 600

static void vm_log(const char *domain, GLogLevelFlags level, const char *msg, gpointer data)
{
    SpVmProc *p = data;
    const char *lv = (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) ? "ERROR"
                     : (level & G_LOG_LEVEL_WARNING)                      ? "WARNING"
                     : (level & G_LOG_LEVEL_MESSAGE)                      ? "INFO"
                                                                          : "DEBUG";
    if (level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO))
        return;
    fprintf(stderr, "samepage-vm[%d] %s: %s %s\n", (int)getpid(), p->name ? p->name : "?", lv, msg);
    fflush(stderr);
}

/* Receive one message of `type` during setup; false with an error. */
static bool setup_recv(int fd, uint16_t type, SpProtoMsg *m, GError **error)
{
    if (!sp_proto_recv(fd, m, SETUP_TIMEOUT_MS, error))
        return false;
    if (m->hdr.type != type || (m->hdr.flags & SP_PROTO_F_REPLY)) { /* replies, errors too */
        g_set_error(error, SP_PROTO_ERROR, SP_PROTO_ERR_MALFORMED, "expected %s, got %s",
                    sp_proto_type_name(type), sp_proto_type_name(m->hdr.type));
        sp_proto_msg_clear(m);
        return false;
    }
    return true;
}

static void hello_fill(SpVmProc *p, SpProtoHello *h, uint32_t channel)
{
    memset(h, 0, sizeof(*h));
    h->channel = channel;
    h->pid = (uint32_t)getpid();
    h->vm_id = p->vm_id;
    h->lv_id = p->lv_id;
    memcpy(h->uuid, p->uuid, 16);
    g_strlcpy(h->name, p->name ? p->name : "", sizeof(h->name));
    if (p->m) {
        SpVmInfo info;
        sp_machine_get_info(p->m, &info);
        h->state = info.state;
    }
}

static bool take_hello(SpVmProc *p, SpProtoMsg *m, GError **error)
{
    SpProtoHello h;
    SpProtoReader r = sp_proto_reader(m);
    sp_proto_read(&r, &h, sizeof(h));
    if (h.channel != SP_PROTO_CH_CONTROL || !memchr(h.name, 0, sizeof(h.name)) || !h.name[0]) {
        g_set_error(error, SP_PROTO_ERROR, SP_PROTO_ERR_MALFORMED, "bad HELLO");
        return false;
    }
    p->vm_id = h.vm_id;
    p->lv_id = h.lv_id;
    memcpy(p->uuid, h.uuid, 16);
    p->name = g_strdup(h.name);
    return true;
}

/* The re-attach socket: RUNTIME/vms/NAME.sock, root only (the supervisor).
 * Made before privileges are dropped; a stale one (a dead VM of the same
 * name) is replaced. */
static int listen_open(const char *path, GError **error)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        g_set_error(error, SP_PROTO_ERROR, SP_PROTO_ERR_IO, "socket path too long: %s", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        g_set_error(error, SP_PROTO_ERROR, SP_PROTO_ERR_IO, "socket: %s", g_strerror(errno));
        return -1;
    }
    g_unlink(path);
    mode_t old = umask(0077);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || listen(fd, 4) < 0) {
        g_set_error(error, SP_PROTO_ERROR, SP_PROTO_ERR_IO, "cannot listen on %s: %s", path,
                    g_strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Steps 2-4 of the setup; the CONFIG request is answered by the caller. */
/* The agent's thread takes the process's NUMA policy before each request
 * (its private copies are guest memory). */
static void agent_numa_sync(void)
{
    static __thread unsigned seen;
    sp_numa_thread_sync(&seen);
}

/* The agent's swap thread: a page the guest waits for is lost (after a
 * crash of samepaged).  The VM ends as crashed, with the reason, which the
 * supervisor gets as it gets any crash; never zeros in the guest. */
static void agent_lost(const char *reason, void *opaque)
{
    SpVmProc *p = opaque;
    sp_machine_fail(p->m, reason);
}

static bool setup_machine(SpVmProc *p, SpProtoMsg *cfgmsg, int *off_fd, GError **error)
{
    SpProtoReader r = sp_proto_reader(cfgmsg);
    g_autofree char *text =
        g_strndup((const char *)sp_proto_read_ptr(&r, cfgmsg->hdr.len), cfgmsg->hdr.len);
    bool clone_child = false;
    p->cfg = sp_vm_config_from_text(text, &clone_child, &p->mergeable, error);
    if (!p->cfg)
        return false;
    if (g_strcmp0(p->cfg->name, p->name)) {
        g_set_error(error, SP_PROTO_ERROR, SP_PROTO_ERR_MALFORMED,
                    "CONFIG names VM '%s', HELLO '%s'", p->cfg->name, p->name);
        return false;
    }
    int cfd = sp_proto_msg_take_fd(cfgmsg, 0);
    if (cfd >= 0) {
        p->console = fdopen(cfd, "a");
        if (!p->console)
            close(cfd);
    }
    /* numa=: this thread's policy, inherited by every thread started below */
    if (!sp_numa_apply_task(p->cfg->numa_mode, p->cfg->numa_nodes, error))
        return false;
    p->kvm = sp_kvm_open(p->kvm_path, error);
    if (!p->kvm)
        return false;
    SpMachineEvents ev = sp_vmproc_machine_events(p);
    p->m = clone_child ? sp_machine_new_unbooted(p->kvm, p->cfg, p->vm_id, &ev, error)
                       : sp_machine_new(p->kvm, p->cfg, p->vm_id, &ev, error);
    if (!p->m)
        return false;
    if (p->mergeable && !sp_guest_mem_set_mergeable(sp_machine_mem(p->m), error))
        return false;
    /* ... and guest RAM's, moving what the loader wrote before; but not a
     * clone's: its RAM maps its family's layer file, and mbind there would
     * set the file's own policy (vmproc/numa.c, move_guest_ram); what the
     * clone allocates itself follows the process's policy. */
    SpGuestMem *ram = sp_machine_mem(p->m);
    if (!clone_child &&
        !sp_numa_apply_range(p->cfg->numa_mode, p->cfg->numa_nodes, ram->host, ram->size, error))
        return false;
    *off_fd = sp_machine_rmap_off_fd(p->m);
    if (p->listen_path && (p->listen_fd = listen_open(p->listen_path, error)) < 0)
        return false;
    SpAgentVm av = {
        .thread_sync = agent_numa_sync,
        .lost = agent_lost,
        .opaque = p,
        .name = p->cfg->name,
        .mem = sp_machine_mem(p->m),
        .kvm_vm_fd = p->cfg->no_share ? -1 : sp_machine_kvm_fd(p->m),
        .slot = SP_MACHINE_RAM_SLOT,
        .rmap = sp_machine_rmap(p->m),
    };
    p->agent = sp_agent_new(&av, error);
    if (!p->agent)
        return false;
    sp_machine_set_agent(p->m, p->agent);
    sp_rmap_prepare();
    if (geteuid() == 0 && !sp_sandbox_drop_privileges(p->uid, p->gid, error))
        return false;
    if (geteuid() != 0 && !sp_sandbox_drop_privileges(geteuid(), getegid(), error))
        return false;
    if (p->seccomp && !sp_sandbox_seccomp(p->seccomp == 2, error))
        return false;
    return true;
}

/* A supervisor connected to the re-attach socket: its HELLO says which
 * channel this is. */
static void accept_channel(SpVmProc *p)
{
    int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    SpProtoMsg m;
    g_autoptr(GError) err = NULL;
    SpProtoHello h = {0}, mine;
    if (!setup_recv(fd, SP_PROTO_HELLO, &m, &err)) {
        g_warning("event=reattach-refused error=\"%s\"", err->message);
        close(fd);
        return;
    }
    SpProtoReader r = sp_proto_reader(&m);
    sp_proto_read(&r, &h, sizeof(h));
    hello_fill(p, &mine, h.channel);
    bool ok = sp_proto_reply(fd, &m.hdr, &mine, sizeof(mine), NULL, 0, &err);
    sp_proto_msg_clear(&m);
    if (!ok) {
        close(fd);
        return;
    }
    if (h.channel == SP_PROTO_CH_MEMORY) {
        g_message("event=reattached channel=memory");
        sp_agent_set_channel(p->agent, fd); /* takes it */
        return;
    }
    if (h.channel != SP_PROTO_CH_CONTROL) {
        close(fd);
        return;
    }
    g_mutex_lock(&p->send_lock);
    if (p->control >= 0)
        close(p->control);
    p->control = fd;
    g_mutex_unlock(&p->send_lock);
    g_message("event=reattached channel=control");
}

static void control_lost(SpVmProc *p, const char *why)
{
    g_mutex_lock(&p->send_lock);
    if (p->control >= 0)
        close(p->control);
    p->control = -1;
    g_mutex_unlock(&p->send_lock);
    if (p->listen_fd >= 0) {
        g_message("event=supervisor-lost reason=\"%s\" (the guest goes on; waiting to be "
                  "re-attached)",
                  why);
        return;
    }
    g_message("event=supervisor-lost reason=\"%s\" (no re-attach socket: stopping)", why);
    if (p->m && !p->ended)
        sp_machine_request_stop(p->m);
    p->quit = true;
}

/* The guest ended: wait for the vCPU threads, then report. */
static void guest_ended(SpVmProc *p)
{
    uint64_t v;
    if (read(p->wake_fd, &v, sizeof(v)) < 0 || p->ended)
        return;
    sp_machine_wait(p->m);
    sp_agent_stop(p->agent); /* no more merges: RAM goes soon */
    p->ended = true;
    p->ended_us = g_get_monotonic_time();
    g_autoptr(GByteArray) buf = g_byte_array_new();
    SpProtoWriter w = {.buf = buf};
    sp_vmproc_status(p, &w);
    g_mutex_lock(&p->send_lock);
    if (p->control >= 0)
        sp_proto_send(p->control, SP_PROTO_EV_ENDED, 0, 0, buf->data, buf->len, NULL, 0, 0, NULL);
    g_mutex_unlock(&p->send_lock);
}

static void main_loop(SpVmProc *p)
{
    while (!p->quit) {
        struct pollfd pf[3];
        int n = 0, ic = -1, il = -1;
        pf[n++] = (struct pollfd){.fd = p->wake_fd, .events = POLLIN};
        if (p->control >= 0) {
            ic = n;
            pf[n++] = (struct pollfd){.fd = p->control, .events = POLLIN};
        }
        if (p->listen_fd >= 0) {
            il = n;
            pf[n++] = (struct pollfd){.fd = p->listen_fd, .events = POLLIN};
        }
        int r = poll(pf, (nfds_t)n, 1000);
        if (r < 0 && errno != EINTR)
            break;
        if (pf[0].revents & POLLIN)
            guest_ended(p);
        if (ic >= 0 && pf[ic].revents) {
            SpProtoMsg m;
            g_autoptr(GError) err = NULL;
            if (!sp_proto_recv(p->control, &m, 0, &err)) {
                if (!g_error_matches(err, SP_PROTO_ERROR, SP_PROTO_ERR_CLOSED))
                    g_warning("event=protocol-error channel=control error=\"%s\"", err->message);
                control_lost(p, err->message);
            } else {
                sp_vmproc_handle(p, &m);
                sp_proto_msg_clear(&m);
            }
        }
        if (il >= 0 && pf[il].revents & POLLIN)
            accept_channel(p);
        if (p->ended && p->control < 0 &&
            (p->listen_fd < 0 ||
             g_get_monotonic_time() - p->ended_us > ORPHAN_LINGER_S * G_USEC_PER_SEC))
            p->quit = true;
    }
}

int main(int argc, char **argv)
{
    /* Heap settings (docs/process-model.md, "Memory of the processes"):
     * large blocks always mmap'd and returned when freed, and no
     * transparent huge pages (guest RAM has none anyway). */
    sp_vm_heap_settings();
    SpVmProc p = {.control = -1, .listen_fd = -1, .lv_id = -1, .seccomp = 1};
    gint control_fd = -1, memory_fd = -1;
    g_autofree char *user = NULL, *seccomp = NULL, *probe = NULL, *name = NULL;
    gboolean test_hooks = FALSE, pdeathsig = FALSE;
    GOptionEntry entries[] = {
        {"name", 0, 0, G_OPTION_ARG_STRING, &name,
         "The VM's name, for ps and pgrep (the VM's setup comes on the control channel)", "NAME"},
        {"control-fd", 0, 0, G_OPTION_ARG_INT, &control_fd, "Control channel descriptor", "FD"},
        {"memory-fd", 0, 0, G_OPTION_ARG_INT, &memory_fd, "Memory channel descriptor", "FD"},
        {"kvm", 0, 0, G_OPTION_ARG_FILENAME, &p.kvm_path, "KVM device (default /dev/kvm)", "PATH"},
        {"listen", 0, 0, G_OPTION_ARG_FILENAME, &p.listen_path,
         "Re-attach socket for a restarted supervisor", "PATH"},
        {"vm-user", 0, 0, G_OPTION_ARG_STRING, &user,
         "Unprivileged user to run as after setup (default nobody)", "USER"},
        {"seccomp", 0, 0, G_OPTION_ARG_STRING, &seccomp,
         "System-call filter: on (default), log, off", "MODE"},
        {"die-with-parent", 0, 0, G_OPTION_ARG_NONE, &pdeathsig,
         "Be killed when the supervisor exits (samepage run)", NULL},
        {"test-hooks", 0, 0, G_OPTION_ARG_NONE, &test_hooks, "Accept TEST_HOOK (tests only)", NULL},
        {"probe-open", 0, 0, G_OPTION_ARG_FILENAME, &probe,
         "Tests: drop privileges as a VM process does, try to open PATH, print the result", "PATH"},
        {NULL},
    };
    g_autoptr(GOptionContext) oc = g_option_context_new(NULL);
    g_option_context_set_summary(oc, "The process of one samepage VM.  Started by samepaged or "
                                     "`samepage run`, never by hand.");
    g_option_context_add_main_entries(oc, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(oc, &argc, &argv, &error)) {
        g_printerr("samepage-vm: %s\n", error->message);
        return 2;
    }
    if (pdeathsig) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1)
            return 1; /* the supervisor is gone already */
    }
    if (!sp_sandbox_lookup_user(user ? user : "nobody", &p.uid, &p.gid, &error)) {
        g_printerr("samepage-vm: %s\n", error->message);
        return 2;
    }
    if (probe)
        return sp_vmproc_probe_open(&p, probe);
    if (seccomp)
        p.seccomp = !strcmp(seccomp, "off") ? 0 : !strcmp(seccomp, "log") ? 2 : 1;
    p.test_hooks = test_hooks;
    if (!p.kvm_path)
        p.kvm_path = g_strdup("/dev/kvm");
    if (control_fd < 0 || memory_fd < 0 || fcntl(control_fd, F_GETFD) < 0 ||
        fcntl(memory_fd, F_GETFD) < 0) {
        g_printerr("samepage-vm: needs --control-fd and --memory-fd (it is started by "
                   "samepaged or samepage run)\n");
        return 2;
    }
    fcntl(control_fd, F_SETFD, FD_CLOEXEC);
    fcntl(memory_fd, F_SETFD, FD_CLOEXEC);
    signal(SIGPIPE, SIG_IGN);
    g_mutex_init(&p.send_lock);
    g_mutex_init(&p.console_lock);
    g_log_set_default_handler(vm_log, &p);
    p.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

    SpProtoMsg hello, cfg;
    if (!setup_recv(control_fd, SP_PROTO_HELLO, &hello, &error) ||
        !take_hello(&p, &hello, &error)) {
        g_warning("event=setup-failed error=\"%s\"", error->message);
        return 1;
    }
    SpProtoHello mine;
    hello_fill(&p, &mine, SP_PROTO_CH_CONTROL);
    sp_proto_reply(control_fd, &hello.hdr, &mine, sizeof(mine), NULL, 0, NULL);
    sp_proto_msg_clear(&hello);
    if (!setup_recv(control_fd, SP_PROTO_CONFIG, &cfg, &error)) {
        g_warning("event=setup-failed error=\"%s\"", error->message);
        return 1;
    }
    int off_fd = -1;
    if (!setup_machine(&p, &cfg, &off_fd, &error)) {
        sp_proto_reply_error(control_fd, &cfg.hdr, error->message);
        sp_proto_msg_clear(&cfg);
        return 1;
    }
    p.control = control_fd;
    g_autoptr(GByteArray) buf = g_byte_array_new();
    SpProtoWriter w = {.buf = buf};
    sp_vmproc_status(&p, &w);
    if (!sp_proto_reply(control_fd, &cfg.hdr, buf->data, buf->len, &off_fd, 1, &error)) {
        g_warning("event=setup-failed error=\"%s\"", error->message);
        return 1;
    }
    sp_proto_msg_clear(&cfg);
    sp_agent_set_channel(p.agent, memory_fd);
    main_loop(&p);

    sp_agent_free(p.agent); /* before the RAM goes */
    sp_machine_free(p.m);
    if (p.listen_fd >= 0)
        close(p.listen_fd); /* the supervisor removes the socket file */
    g_mutex_lock(&p.send_lock);
    if (p.control >= 0)
        close(p.control);
    g_mutex_unlock(&p.send_lock);
    return 0;
}
