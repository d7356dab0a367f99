/* SPDX-License-Identifier: MIT */
/*
 * vm.c - starting, watching and stopping a VM process (vm.h).
 *
 * Each SpVm has a reader thread on its control channel: replies go to the
 * request waiting for them (matched by seq), events update the status
 * mirror and call the SpVmEvents callbacks.  When the channel closes
 * without EV_ENDED, the VM process died: the reader waits (briefly) for the
 * process to be gone, reports the VM crashed with what the kernel says of
 * its end, and the engine drops its frames when the VM is freed.  A
 * malformed message from the VM process is treated the same way, after
 * killing it: the VM process is not trusted (process-model.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "rmap/rmap.h"
#include "sharing/engine.h"
#include "vmm/machine/kvm.h"
#include "vmm/super/vm-priv.h"
#include "vmm/vm-heap.h"

#define SETUP_TIMEOUT_S   60.0  /* building a machine: loading a kernel image */
#define REQUEST_TIMEOUT_S 30.0  /* any other request */
#define EXIT_WAIT_MS      5000  /* a VM process told to quit, before SIGKILL */
#define STOP_WAIT_S       10    /* a guest told to stop, before its process is killed */
#define REAP_WAIT_MS      10000 /* a killed VM process, before it is reaped in the background */
#define STOP_TIMEOUT_WHY  "its guest did not stop within " G_STRINGIFY(STOP_WAIT_S) " s"

/* --- the host --- */

static char *find_vm_binary(void)
{
    const char *env = g_getenv("SAMEPAGE_VM");
    if (env && *env)
        return g_strdup(env);
    g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
    if (self) {
        g_autofree char *dir = g_path_get_dirname(self);
        const char *rel[] = {"samepage-vm", "../samepage-vm", "../../samepage-vm"};
        for (size_t i = 0; i < G_N_ELEMENTS(rel); i++) {
            g_autofree char *p = g_build_filename(dir, rel[i], NULL);
            if (g_file_test(p, G_FILE_TEST_IS_EXECUTABLE))
                return g_canonicalize_filename(p, NULL);
        }
    }
    return g_build_filename(PKGLIBEXECDIR, "samepage-vm", NULL);
}

SpVmHost *sp_vm_host_new(const char *kvm_path, GError **error)
{
    sp_vm_heap_settings(); /* the supervisor's own heap, like a VM process's */
    g_autoptr(SpKvm) kvm = sp_kvm_open(kvm_path ? kvm_path : "/dev/kvm", error);
    if (!kvm)
        return NULL;
    SpVmHost *h = g_new0(SpVmHost, 1);
    h->vm_binary = find_vm_binary();
    h->kvm_path = g_strdup(kvm_path ? kvm_path : "/dev/kvm");
    h->vm_user = g_strdup("nobody");
    /* SAMEPAGE_SECCOMP=log: report system calls outside the filter in the
     * kernel log instead of killing (for finding what a change needs). */
    const char *sc = g_getenv("SAMEPAGE_SECCOMP");
    h->seccomp = g_strdup(sc && *sc ? sc : "on");
    h->max_vcpus = kvm->max_vcpus;
    if (!g_file_test(h->vm_binary, G_FILE_TEST_IS_EXECUTABLE)) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_SETUP,
                    "the VM process program %s is missing (set SAMEPAGE_VM?)", h->vm_binary);
        sp_vm_host_free(h);
        return NULL;
    }
    return h;
}

void sp_vm_host_free(SpVmHost *h)
{
    if (!h)
        return;
    g_free(h->vm_binary);
    g_free(h->kvm_path);
    g_free(h->runtime_dir);
    g_free(h->vm_user);
    g_free(h->seccomp);
    g_free(h);
}

static SpVm *vm_alloc(SpVmHost *host, const SpVmEvents *events);

/* --- status mirror --- */

static void mirror_status(SpVm *vm, const SpProtoMsg *m)
{
    SpProtoReader r = sp_proto_reader(m);
    SpProtoStatus st;
    if (!sp_proto_read(&r, &st, sizeof(st)))
        return;
    g_mutex_lock(&vm->lock);
    if (st.state <= SP_VM_STOPPED && !vm->ended)
        vm->state = (SpVmState)st.state;
    vm->exit_status = st.exit_status;
    vm->rounds = MAX(vm->rounds, st.rounds);
    vm->pages_verified = st.pages_verified;
    vm->pages_rewritten = st.pages_rewritten;
    vm->integrity_errors = MAX(vm->integrity_errors, st.integrity_errors);
    vm->phase = st.phase;
    vm->cpu_ns = st.cpu_ns;
    vm->run_ns = st.run_ns;
    vm->clone_generation = st.clone_generation;
    vm->ram_base = st.ram_base;
    vm->ram_size = st.ram_size;
    vm->resident_pages = st.resident_pages;
    vm->suspended = st.suspended != 0;
    for (uint32_t i = 0; i < st.nresults && i < 4096; i++) {
        uint64_t v;
        uint8_t l = 0;
        sp_proto_read(&r, &v, 8);
        sp_proto_read(&r, &l, 1);
        g_autofree char *key = sp_proto_read_text(&r, MIN(l, 64));
        if (r.bad)
            break;
        g_hash_table_insert(vm->results, g_steal_pointer(&key), g_memdup2(&v, 8));
    }
    g_autofree char *reason =
        st.reason_len ? sp_proto_read_text(&r, MIN(st.reason_len, 2048)) : NULL;
    if (reason) {
        g_free(vm->reason);
        vm->reason = g_steal_pointer(&reason);
    }
    g_mutex_unlock(&vm->lock);
}

static void set_ended(SpVm *vm, SpVmState state, const char *reason)
{
    bool first = false;
    g_mutex_lock(&vm->lock);
    if (!vm->ended) {
        first = true;
        vm->ended = true;
        if (state != (SpVmState)-1)
            vm->state = state;
        if (vm->state == SP_VM_RUNNING || vm->state == SP_VM_CREATED)
            vm->state = SP_VM_CRASHED;
        if (reason) {
            g_free(vm->reason);
            vm->reason = g_strdup(reason);
        }
        vm->end_us = g_get_monotonic_time();
    }
    SpVmState final = vm->state;
    g_cond_broadcast(&vm->cond);
    g_mutex_unlock(&vm->lock);
    if (first && vm->ev.ended)
        vm->ev.ended(vm, final, vm->ev.opaque);
}

/* --- events --- */

static void on_event(SpVm *vm, SpProtoMsg *m)
{
    SpProtoReader r = sp_proto_reader(m);
    uint64_t v[3] = {0};
    switch (m->hdr.type) {
    case SP_PROTO_EV_CONSOLE: {
        g_autofree char *line = sp_proto_read_text(&r, m->hdr.len);
        if (vm->ev.console && line)
            vm->ev.console(vm, line, vm->ev.opaque);
        break;
    }
    case SP_PROTO_EV_PHASE: {
        sp_proto_read(&r, v, 8);
        g_autofree char *label = sp_proto_read_text(&r, r.left);
        __atomic_store_n(&vm->phase, v[0], __ATOMIC_RELAXED);
        if (vm->ev.phase)
            vm->ev.phase(vm, v[0], label ? label : "", vm->ev.opaque);
        break;
    }
    case SP_PROTO_EV_RESULT: {
        sp_proto_read(&r, v, 8);
        g_autofree char *key = sp_proto_read_text(&r, r.left);
        g_mutex_lock(&vm->lock);
        if (g_hash_table_size(vm->results) < 4096 || g_hash_table_contains(vm->results, key))
            g_hash_table_insert(vm->results, g_strdup(key), g_memdup2(&v[0], 8));
        g_mutex_unlock(&vm->lock);
        if (vm->ev.result)
            vm->ev.result(vm, key, v[0], vm->ev.opaque);
        break;
    }
    case SP_PROTO_EV_INTEGRITY:
        sp_proto_read(&r, v, 24);
        __atomic_fetch_add(&vm->integrity_errors, 1, __ATOMIC_RELAXED);
        if (vm->ev.integrity)
            vm->ev.integrity(vm, v[0], v[1], v[2], vm->ev.opaque);
        break;
    case SP_PROTO_EV_ROUND:
        sp_proto_read(&r, v, 24);
        g_mutex_lock(&vm->lock);
        vm->rounds = MAX(vm->rounds, v[0]);
        vm->pages_verified = v[1];
        vm->pages_rewritten = v[2];
        g_cond_broadcast(&vm->cond);
        g_mutex_unlock(&vm->lock);
        if (vm->ev.round)
            vm->ev.round(vm, v[0], v[1], v[2], vm->ev.opaque);
        break;
    case SP_PROTO_EV_ENDED:
        mirror_status(vm, m);
        set_ended(vm, (SpVmState)-1, NULL);
        break;
    default:
        break;
    }
}

/* --- the process's end --- */

static int pidfd_open_(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static void kill_process(SpVm *vm)
{
    if (vm->pidfd >= 0)
        syscall(SYS_pidfd_send_signal, vm->pidfd, SIGKILL, NULL, 0);
}

/* Wait until the VM process is gone, at most ms; false if it is not (true
 * without a pidfd: nothing to wait on). */
static bool process_gone(SpVm *vm, int ms)
{
    struct pollfd p = {.fd = vm->pidfd, .events = POLLIN};
    return vm->pidfd < 0 || poll(&p, 1, ms) > 0;
}

/* Wait until the VM process is gone (at most ms); its end, as text. */
static char *process_end(SpVm *vm, int ms)
{
    if (!process_gone(vm, ms))
        return NULL;
    if (!vm->is_child || vm->reaped)
        return g_strdup("the VM process ended");
    int status = 0;
    if (waitpid(vm->pid, &status, WNOHANG) != vm->pid)
        return g_strdup("the VM process ended");
    vm->reaped = true;
    if (WIFSIGNALED(status))
        return g_strdup_printf("the VM process was killed by signal %d (%s)", WTERMSIG(status),
                               strsignal(WTERMSIG(status)));
    return g_strdup_printf("the VM process exited with status %d", WEXITSTATUS(status));
}

static void channel_died(SpVm *vm, const GError *err)
{
    bool malformed = g_error_matches(err, SP_PROTO_ERROR, SP_PROTO_ERR_MALFORMED);
    if (malformed) {
        g_warning("event=vm-protocol-error vm=%s error=\"%s\" (VM process killed)", vm->name,
                  err->message);
        kill_process(vm);
    }
    g_mutex_lock(&vm->lock);
    vm->dead = true;
    bool ended = vm->ended, killed = vm->killed;
    g_cond_broadcast(&vm->cond);
    g_mutex_unlock(&vm->lock);
    if (ended || vm->setting_up)
        return; /* a setup failure is the creator's error, not an end */
    if (killed) {
        set_ended(vm, SP_VM_STOPPED, vm->kill_reason); /* sp_vm_kill's: an end we made */
        return;
    }
    g_autofree char *how = process_end(vm, 2000);
    g_autofree char *reason =
        malformed ? g_strdup_printf("protocol error from the VM process: %s", err->message)
                  : g_strdup_printf("%s", how ? how : "the VM process closed its channel");
    g_warning("event=vm-process-died vm=%s reason=\"%s\"", vm->name, reason);
    vm->process_died = true;
    set_ended(vm, SP_VM_CRASHED, reason);
}

static gpointer reader_thread(gpointer opaque)
{
    SpVm *vm = opaque;
    for (;;) {
        SpProtoMsg m;
        g_autoptr(GError) err = NULL;
        bool ok = sp_proto_recv(vm->control, &m, -1, &err);
        if (!ok) {
            if (!vm->closing)
                channel_died(vm, err);
            break;
        }
        if (m.hdr.flags & SP_PROTO_F_REPLY) {
            SpProtoMsg *copy = g_memdup2(&m, sizeof(m));
            g_mutex_lock(&vm->lock);
            g_hash_table_insert(vm->replies, GUINT_TO_POINTER(m.hdr.seq), copy);
            g_cond_broadcast(&vm->cond);
            g_mutex_unlock(&vm->lock);
            continue; /* owned by the table now */
        }
        on_event(vm, &m);
        sp_proto_msg_clear(&m);
    }
    return NULL;
}

static void reply_free(gpointer p)
{
    sp_proto_msg_clear(p);
    g_free(p);
}

/* Fuzzing: feed one packet to a VM that has no process, as its reader
 * would; true if the decoder accepted it. */
bool sp_vm_feed_packet(SpVm *vm, const void *data, size_t len)
{
    int sv[2];
    if (!sp_proto_socketpair(sv, NULL))
        return false;
    bool ok = send(sv[1], data, len, MSG_NOSIGNAL) == (ssize_t)len;
    SpProtoMsg m;
    ok = ok && sp_proto_recv(sv[0], &m, 0, NULL);
    close(sv[0]);
    close(sv[1]);
    if (!ok)
        return false;
    if (m.hdr.flags & SP_PROTO_F_REPLY)
        mirror_status(vm, &m); /* the replies whose payload the supervisor reads alone */
    else
        on_event(vm, &m);
    sp_proto_msg_clear(&m);
    return true;
}

SpVm *sp_vm_new_unattached(const char *name)
{
    SpVm *vm = vm_alloc(NULL, NULL);
    vm->name = g_strdup(name);
    vm->dead = true;
    return vm;
}

/* --- requests --- */

bool sp_vm_request(SpVm *vm, uint16_t type, const void *payload, uint32_t len, const int *fds,
                   uint32_t nfds, double timeout_s, SpProtoMsg *out, GError **error)
{
    g_mutex_lock(&vm->lock);
    uint32_t seq = ++vm->next_seq;
    bool dead = vm->dead;
    g_mutex_unlock(&vm->lock);
    if (dead) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_GONE, "VM '%s': its process is gone", vm->name);
        return false;
    }
    g_mutex_lock(&vm->send_lock);
    bool sent = sp_proto_send(vm->control, type, seq, 0, payload, len, fds, nfds, 0, error);
    g_mutex_unlock(&vm->send_lock);
    if (!sent)
        return false;
    gint64 deadline = g_get_monotonic_time() + (gint64)(timeout_s * G_USEC_PER_SEC);
    SpProtoMsg *r = NULL;
    g_mutex_lock(&vm->lock);
    while (!(r = g_hash_table_lookup(vm->replies, GUINT_TO_POINTER(seq))) && !vm->dead)
        if (!g_cond_wait_until(&vm->cond, &vm->lock, deadline))
            break;
    if (r)
        g_hash_table_steal(vm->replies, GUINT_TO_POINTER(seq));
    g_mutex_unlock(&vm->lock);
    if (!r) {
        g_set_error(error, SP_VM_ERROR, vm->dead ? SP_VM_ERROR_GONE : SP_VM_ERROR_TIMEOUT,
                    "VM '%s': %s", vm->name,
                    vm->dead ? "its process is gone" : "no answer from its process");
        return false;
    }
    bool ok = !(r->hdr.flags & SP_PROTO_F_ERROR);
    if (!ok)
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_REFUSED, "%.*s", (int)r->hdr.len,
                    (const char *)r->payload);
    if (ok && out)
        *out = *r;
    else
        sp_proto_msg_clear(r);
    g_free(r);
    return ok;
}

static bool request_simple(SpVm *vm, uint16_t type, GError **error)
{
    return sp_vm_request(vm, type, NULL, 0, NULL, 0, REQUEST_TIMEOUT_S, NULL, error);
}

/* --- creation --- */

static SpVm *vm_alloc(SpVmHost *host, const SpVmEvents *events)
{
    SpVm *vm = g_new0(SpVm, 1);
    vm->host = host;
    vm->control = vm->memory = vm->pidfd = -1;
    vm->lv_id = -1;
    vm->state = SP_VM_CREATED;
    if (events)
        vm->ev = *events;
    g_mutex_init(&vm->lock);
    g_mutex_init(&vm->send_lock);
    g_cond_init(&vm->cond);
    vm->replies = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, reply_free);
    vm->results = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return vm;
}

static bool hello_exchange(SpVm *vm, int fd, uint32_t channel, SpProtoHello *out, GError **error)
{
    SpProtoHello h = {.channel = channel, .vm_id = vm->id, .lv_id = vm->lv_id};
    memcpy(h.uuid, vm->uuid, 16);
    g_strlcpy(h.name, vm->name ? vm->name : "", sizeof(h.name));
    if (!sp_proto_send(fd, SP_PROTO_HELLO, 1, 0, &h, sizeof(h), NULL, 0, 0, error))
        return false;
    SpProtoMsg m;
    if (!sp_proto_recv(fd, &m, (int)(SETUP_TIMEOUT_S * 1000), error))
        return false;
    if (sp_proto_is_error(&m, error)) {
        sp_proto_msg_clear(&m);
        return false;
    }
    bool ok = m.hdr.type == SP_PROTO_HELLO && (m.hdr.flags & SP_PROTO_F_REPLY) &&
              m.hdr.len == sizeof(*out);
    if (ok) {
        memcpy(out, m.payload, sizeof(*out));
        out->name[sizeof(out->name) - 1] = 0;
    } else {
        g_set_error(error, SP_PROTO_ERROR, SP_PROTO_ERR_MALFORMED, "bad HELLO reply");
    }
    sp_proto_msg_clear(&m);
    return ok;
}

static bool spawn_process(SpVm *vm, int vm_ctl, int vm_mem, GError **error)
{
    SpVmHost *h = vm->host;
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(argv, g_strdup(h->vm_binary));
    g_ptr_array_add(argv, g_strdup_printf("--name=%s", vm->name)); /* for ps and pgrep */
    g_ptr_array_add(argv, g_strdup("--control-fd=3"));
    g_ptr_array_add(argv, g_strdup("--memory-fd=4"));
    g_ptr_array_add(argv, g_strdup_printf("--kvm=%s", h->kvm_path));
    g_ptr_array_add(argv, g_strdup_printf("--vm-user=%s", h->vm_user));
    g_ptr_array_add(argv, g_strdup_printf("--seccomp=%s", h->seccomp));
    if (h->runtime_dir)
        g_ptr_array_add(argv, g_strdup_printf("--listen=%s/vms/%s.sock", h->runtime_dir, vm->name));
    if (h->die_with_supervisor)
        g_ptr_array_add(argv, g_strdup("--die-with-parent"));
    if (h->test_hooks)
        g_ptr_array_add(argv, g_strdup("--test-hooks"));
    g_ptr_array_add(argv, NULL);
    int src[2] = {vm_ctl, vm_mem}, dst[2] = {3, 4};
    GPid pid = 0;
    g_auto(GStrv) envp = g_get_environ();
#ifdef SP_SANITIZERS
    /* LeakSanitizer cannot run in the VM process's sandbox (vmproc/main.c). */
    const char *asan = g_environ_getenv(envp, "ASAN_OPTIONS");
    g_autofree char *opts =
        g_strdup_printf("%s%sdetect_leaks=0", asan ? asan : "", asan ? ":" : "");
    envp = g_environ_setenv(envp, "ASAN_OPTIONS", opts, TRUE);
#endif
    if (!g_spawn_async_with_pipes_and_fds(
            NULL, (const char *const *)argv->pdata, (const char *const *)envp,
            G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL, -1, -1, -1, src,
            dst, 2, &pid, NULL, NULL, NULL, error)) {
        g_prefix_error(error, "cannot start %s: ", h->vm_binary);
        return false;
    }
    vm->pid = pid;
    vm->is_child = true;
    vm->pidfd = pidfd_open_(pid);
    return true;
}

static SpVm *vm_create(SpVmHost *host, const SpVmConfig *cfg, uint64_t vm_id, int32_t lv_id,
                       const uint8_t *uuid, int console_fd, bool clone_child,
                       const SpVmEvents *events, GError **error)
{
    if (!sp_vm_config_validate(cfg, cfg->payload ? MIN(host->max_vcpus, 64) : host->max_vcpus,
                               error))
        return NULL;
    SpVm *vm = vm_alloc(host, events);
    vm->cfg = sp_vm_config_copy(cfg);
    vm->name = g_strdup(cfg->name);
    vm->id = vm_id;
    vm->lv_id = lv_id;
    vm->clone_child = clone_child;
    if (uuid)
        memcpy(vm->uuid, uuid, 16);
    int ctl[2] = {-1, -1}, mem[2] = {-1, -1};
    SpProtoHello hello;
    SpProtoMsg reply = {0};
    g_autofree char *text = NULL;
    if (!sp_proto_socketpair(ctl, error) || !sp_proto_socketpair(mem, error))
        goto fail;
    if (!spawn_process(vm, ctl[1], mem[1], error))
        goto fail;
    close(ctl[1]);
    close(mem[1]);
    ctl[1] = mem[1] = -1;
    vm->control = ctl[0];
    vm->memory = mem[0];
    vm->setting_up = true;
    if (!hello_exchange(vm, vm->control, SP_PROTO_CH_CONTROL, &hello, error))
        goto fail;
    vm->thread = g_thread_new("sp-vm-reader", reader_thread, vm);
    text = sp_vm_config_to_text(cfg, vm->clone_child, host->mergeable);
    int fds[1] = {console_fd};
    if (!sp_vm_request(vm, SP_PROTO_CONFIG, text, (uint32_t)strlen(text), fds,
                       console_fd >= 0 ? 1 : 0, SETUP_TIMEOUT_S, &reply, error))
        goto fail;
    mirror_status(vm, &reply);
    int off_fd = sp_proto_msg_take_fd(&reply, 0);
    sp_proto_msg_clear(&reply);
    bool rm = sp_vm_rmap_setup(vm, off_fd, error);
    if (off_fd >= 0)
        close(off_fd);
    if (!rm)
        goto fail;
    vm->setting_up = false;
    return vm;
fail:
    for (int i = 0; i < 2; i++) {
        if (ctl[i] >= 0 && ctl[i] != vm->control)
            close(ctl[i]);
        if (mem[i] >= 0 && mem[i] != vm->memory)
            close(mem[i]);
    }
    /* The VM process's own messages name the VM already. */
    if (*error && !g_str_has_prefix((*error)->message, "VM '"))
        g_prefix_error(error, "VM '%s': ", cfg->name);
    sp_vm_free(vm);
    return NULL;
}

SpVm *sp_vm_new_full(SpVmHost *host, const SpVmConfig *cfg, uint64_t vm_id, int32_t lv_id,
                     const uint8_t *uuid, int console_fd, const SpVmEvents *events, GError **error)
{
    return vm_create(host, cfg, vm_id, lv_id, uuid, console_fd, false, events, error);
}

SpVm *sp_vm_new(SpVmHost *host, const SpVmConfig *cfg, uint64_t vm_id, const SpVmEvents *events,
                GError **error)
{
    return vm_create(host, cfg, vm_id, -1, NULL, -1, false, events, error);
}

SpVm *sp_vm_new_clone_child(SpVmHost *host, const SpVmConfig *cfg, uint64_t vm_id,
                            const SpVmEvents *events, GError **error)
{
    return vm_create(host, cfg, vm_id, -1, NULL, -1, true, events, error);
}

static int connect_socket(const char *path, GError **error)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_GONE, "cannot connect to %s: %s", path,
                    g_strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

SpVm *sp_vm_attach(SpVmHost *host, const char *path, const SpVmConfig *cfg,
                   const SpVmEvents *events, GError **error)
{
    SpVm *vm = vm_alloc(host, events);
    vm->cfg = sp_vm_config_copy(cfg);
    vm->name = g_strdup(cfg->name);
    SpProtoHello hello, mh;
    SpProtoMsg st = {0};
    vm->control = connect_socket(path, error);
    if (vm->control < 0 || !hello_exchange(vm, vm->control, SP_PROTO_CH_CONTROL, &hello, error))
        goto fail;
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    if (getsockopt(vm->control, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_GONE, "SO_PEERCRED: %s", g_strerror(errno));
        goto fail;
    }
    if (g_strcmp0(hello.name, cfg->name)) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_SETUP, "the VM process at %s is '%s'", path,
                    hello.name);
        goto fail;
    }
    vm->pid = cred.pid;
    vm->pidfd = pidfd_open_(cred.pid);
    vm->id = hello.vm_id;
    vm->lv_id = hello.lv_id;
    memcpy(vm->uuid, hello.uuid, 16);
    vm->thread = g_thread_new("sp-vm-reader", reader_thread, vm);
    if (!sp_vm_request(vm, SP_PROTO_STATUS, NULL, 0, NULL, 0, REQUEST_TIMEOUT_S, &st, error))
        goto fail;
    mirror_status(vm, &st);
    sp_proto_msg_clear(&st);
    vm->start_us = g_get_monotonic_time() - (gint64)(vm->run_ns / 1000);
    vm->memory = connect_socket(path, error);
    if (vm->memory < 0 || !hello_exchange(vm, vm->memory, SP_PROTO_CH_MEMORY, &mh, error))
        goto fail;
    if (!sp_vm_rmap_reattach(vm, error))
        goto fail;
    if (vm->state != SP_VM_RUNNING)
        set_ended(vm, (SpVmState)-1, NULL);
    return vm;
fail:
    g_prefix_error(error, "re-attaching VM '%s': ", cfg->name);
    sp_vm_free(vm);
    return NULL;
}

/* --- lifecycle --- */

void sp_vm_set_engine(SpVm *vm, SpEngine *engine, uint64_t share_start, uint64_t share_end)
{
    vm->engine = engine;
    vm->share_start = share_start;
    vm->share_end = share_end;
}

SpEngineVm *sp_vm_engine_handle(SpVm *vm)
{
    return vm->shvm;
}

bool sp_vm_set_mem_limit(SpVm *vm, uint64_t bytes, GError **error)
{
    if (bytes && bytes < SP_VM_MEM_LIMIT_MIN) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_INVALID,
                    "a memory limit of %" G_GUINT64_FORMAT
                    " KiB is below the %llu MiB a guest needs resident to make progress",
                    bytes >> 10, SP_VM_MEM_LIMIT_MIN >> 20);
        return false;
    }
    if (!vm->shvm || !vm->engine) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_INVALID,
                    "a memory limit needs the sharing engine's swap, and this VM does not share "
                    "(share=no)");
        return false;
    }
    if (!sp_engine_vm_set_mem_limit(vm->engine, vm->shvm, bytes, error))
        return false;
    vm->cfg->mem_limit = bytes; /* clones inherit it; figures read it */
    return true;
}

bool sp_vm_engine_attach(SpVm *vm, GError **error)
{
    if (!vm->engine || vm->cfg->no_share || vm->shvm)
        return true;
    SpEngineVmDesc d = {
        .id = vm->id,
        .name = vm->name,
        .channel = vm->memory,
        .pid = (int)vm->pid,
        .domain = vm->cfg->domain,
        .npages = vm->cfg->mem_size / SP_PAGE_SIZE,
        .share_start = vm->share_start,
        .share_end = vm->share_end,
        .rmap = vm->rmap,
        .reattach = vm->reattached,
    };
    vm->shvm = sp_engine_attach(vm->engine, &d, error);
    if (vm->shvm && vm->cfg->mem_limit &&
        !sp_engine_vm_set_mem_limit(vm->engine, vm->shvm, vm->cfg->mem_limit, error)) {
        sp_engine_detach(vm->engine, vm->shvm);
        vm->shvm = NULL;
    }
    return vm->shvm != NULL;
}

bool sp_vm_start(SpVm *vm, GError **error)
{
    if (!sp_vm_engine_attach(vm, error))
        return false;
    g_mutex_lock(&vm->lock);
    SpVmState st = vm->state;
    g_mutex_unlock(&vm->lock);
    if (st != SP_VM_CREATED) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_STATE, "VM '%s' is %s, cannot start it",
                    vm->name, sp_vm_state_name(st));
        return false;
    }
    /* cpuset=: before START, so the vCPU threads start pinned */
    if (vm->cfg->cpuset) {
        cpu_set_t set;
        if (!sp_cpuset_parse(vm->cfg->cpuset, &set, error) ||
            !sp_vm_set_affinity(vm, &set, error)) {
            g_prefix_error(error, "VM '%s': cpuset=%s: ", vm->name, vm->cfg->cpuset);
            return false;
        }
    }
    g_mutex_lock(&vm->lock);
    vm->state = SP_VM_RUNNING;
    vm->start_us = g_get_monotonic_time();
    g_mutex_unlock(&vm->lock);
    if (!request_simple(vm, SP_PROTO_START, error)) {
        set_ended(vm, SP_VM_CRASHED, (*error)->message);
        return false;
    }
    return true;
}

void sp_vm_request_stop(SpVm *vm)
{
    g_mutex_lock(&vm->lock);
    bool skip = vm->ended || vm->dead || vm->stop_sent;
    vm->stop_sent = true;
    g_mutex_unlock(&vm->lock);
    if (skip)
        return;
    /* Asynchronous: the reply, and then EV_ENDED, arrive on the reader. */
    g_mutex_lock(&vm->lock);
    uint32_t seq = ++vm->next_seq;
    g_mutex_unlock(&vm->lock);
    g_mutex_lock(&vm->send_lock);
    bool sent = sp_proto_send(vm->control, SP_PROTO_STOP, seq, 0, NULL, 0, NULL, 0, 0, NULL);
    g_mutex_unlock(&vm->send_lock);
    if (!sent)
        kill_process(vm);
}

bool sp_vm_wait_timeout(SpVm *vm, double timeout_s)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)(timeout_s * G_USEC_PER_SEC);
    g_mutex_lock(&vm->lock);
    while (!vm->ended && vm->state != SP_VM_CREATED) {
        if (timeout_s < 0)
            g_cond_wait(&vm->cond, &vm->lock);
        else if (!g_cond_wait_until(&vm->cond, &vm->lock, deadline))
            break;
    }
    bool ended = vm->ended || vm->state == SP_VM_CREATED;
    g_mutex_unlock(&vm->lock);
    return ended;
}

void sp_vm_wait(SpVm *vm)
{
    sp_vm_wait_timeout(vm, -1);
}

/* Killed while still attached: neither the engine (until the detach) nor
 * the reader may take the channel the kill closes for a lost VM or a
 * crash.  quiet: nobody waits for the end (sp_vm_free), the reader ignores
 * it; else it reports the end as STOPPED, "the VM process was killed: why". */
static bool kill_stopping(SpVm *vm, const char *why, bool quiet)
{
    g_mutex_lock(&vm->lock);
    bool go = !vm->ended && !vm->killed;
    if (go) {
        vm->killed = true;
        vm->kill_reason = g_strdup_printf("the VM process was killed: %s", why);
    }
    g_mutex_unlock(&vm->lock);
    if (!go)
        return false;
    g_message("event=vm-killed vm=%s reason=\"%s\"", vm->name, why);
    if (vm->shvm)
        sp_engine_vm_going(vm->engine, vm->shvm);
    if (quiet)
        vm->closing = true;
    kill_process(vm);
    return true;
}

bool sp_vm_kill(SpVm *vm, const char *why)
{
    sp_vm_request_stop(vm); /* the stop comes first, whatever the caller did */
    return kill_stopping(vm, why, false);
}

static gpointer reap_thread(gpointer pid)
{
    waitpid(GPOINTER_TO_INT(pid), NULL, 0);
    return NULL;
}

/* Reap the VM process (sp_vm_free, after its QUIT or kill).  One that has
 * not ended REAP_WAIT_MS after SIGKILL is stuck in the kernel (SIGKILL
 * takes effect when it leaves an uninterruptible sleep): a thread of its
 * own reaps it when it ends, so that freeing the VM never hangs the
 * supervisor (the guest is gone already: its channels are closed). */
static void reap(SpVm *vm)
{
    if (!process_gone(vm, REAP_WAIT_MS)) {
        g_warning("event=vm-process-stuck vm=%s pid=%d (not ended %d s after SIGKILL: reaped "
                  "when it ends)",
                  vm->name, (int)vm->pid, REAP_WAIT_MS / 1000);
        g_thread_unref(g_thread_new("sp-reap", reap_thread, GINT_TO_POINTER(vm->pid)));
        return;
    }
    waitpid(vm->pid, NULL, 0);
}

bool sp_vm_was_killed(SpVm *vm)
{
    g_mutex_lock(&vm->lock);
    bool k = vm->killed;
    g_mutex_unlock(&vm->lock);
    return k;
}

/* STOP, and up to STOP_WAIT_S for the guest's end; else the process is
 * killed (kill_stopping). */
static bool stop_or_kill(SpVm *vm, bool quiet)
{
    sp_vm_request_stop(vm);
    if (sp_vm_wait_timeout(vm, STOP_WAIT_S))
        return true;
    kill_stopping(vm, STOP_TIMEOUT_WHY, quiet);
    return false;
}

bool sp_vm_stop(SpVm *vm)
{
    if (stop_or_kill(vm, false))
        return true;
    /* A process the kill cannot end at once (stuck in the kernel): its
     * end is reported all the same (sp_vm_free still reaps it). */
    if (!sp_vm_wait_timeout(vm, EXIT_WAIT_MS / 1000.0))
        set_ended(vm, SP_VM_STOPPED, vm->kill_reason);
    return false;
}

void sp_vm_free(SpVm *vm)
{
    if (!vm)
        return;
    if (vm->control >= 0 && !vm->dead)
        stop_or_kill(vm, true);
    /* The guest is gone or going: its frames may be freed. */
    if (vm->shvm)
        sp_engine_detach(vm->engine, vm->shvm);
    vm->shvm = NULL;
    if (vm->control >= 0 && !vm->dead) {
        /* Never blocking: a VM process that reads nothing more (or a send
         * stuck on it) gets no QUIT, and is killed below after EXIT_WAIT_MS. */
        gint64 until = g_get_monotonic_time() + G_USEC_PER_SEC;
        bool locked;
        while (!(locked = g_mutex_trylock(&vm->send_lock)) && g_get_monotonic_time() < until)
            g_usleep(1000);
        if (locked) {
            sp_proto_send(vm->control, SP_PROTO_QUIT, 0, 0, NULL, 0, NULL, 0, MSG_DONTWAIT, NULL);
            g_mutex_unlock(&vm->send_lock);
        }
    }
    if (!process_gone(vm, EXIT_WAIT_MS))
        kill_process(vm); /* (reap waits for it) */
    vm->closing = true;
    if (vm->control >= 0)
        shutdown(vm->control, SHUT_RDWR);
    if (vm->thread)
        g_thread_join(vm->thread);
    if (vm->is_child && !vm->reaped)
        reap(vm);
    if (vm->control >= 0)
        close(vm->control);
    if (vm->memory >= 0)
        close(vm->memory);
    if (vm->pidfd >= 0)
        close(vm->pidfd);
    sp_rmap_vm_free(vm->rmap);
    g_hash_table_destroy(vm->replies);
    g_hash_table_destroy(vm->results);
    g_free(vm->reason);
    g_free(vm->kill_reason);
    g_free(vm->name);
    sp_vm_config_free(vm->cfg);
    g_mutex_clear(&vm->lock);
    g_mutex_clear(&vm->send_lock);
    g_cond_clear(&vm->cond);
    g_free(vm);
}

void sp_vm_release(SpVm *vm)
{
    if (!vm)
        return;
    if (vm->shvm)
        sp_engine_forget(vm->engine, vm->shvm); /* its frames stay: it maps them */
    vm->shvm = NULL;
    vm->closing = true;
    if (vm->control >= 0)
        shutdown(vm->control, SHUT_RDWR);
    if (vm->thread)
        g_thread_join(vm->thread);
    vm->thread = NULL;
    if (vm->control >= 0)
        close(vm->control);
    if (vm->memory >= 0)
        close(vm->memory);
    vm->control = vm->memory = -1;
    vm->dead = true;
    vm->reaped = true; /* not ours to wait for any more */
    if (vm->pidfd >= 0)
        close(vm->pidfd);
    vm->pidfd = -1;
    sp_vm_free(vm);
}

bool sp_vm_set_identity(SpVm *vm, int32_t lv_id, const uint8_t *uuid, int console_fd,
                        GError **error)
{
    SpProtoIdentity id = {.lv_id = lv_id};
    if (uuid)
        memcpy(id.uuid, uuid, 16);
    if (!sp_vm_request(vm, SP_PROTO_IDENTITY, &id, sizeof(id), &console_fd, console_fd >= 0,
                       REQUEST_TIMEOUT_S, NULL, error))
        return false;
    vm->lv_id = lv_id;
    memcpy(vm->uuid, id.uuid, 16);
    return true;
}

/* --- accessors --- */

const char *sp_vm_name(const SpVm *vm)
{
    return vm->name;
}

uint64_t sp_vm_id(const SpVm *vm)
{
    return vm->id;
}

int32_t sp_vm_lv_id(const SpVm *vm)
{
    return vm->lv_id;
}

const uint8_t *sp_vm_uuid(const SpVm *vm)
{
    return vm->uuid;
}

const SpVmConfig *sp_vm_config(const SpVm *vm)
{
    return vm->cfg;
}

pid_t sp_vm_pid(const SpVm *vm)
{
    return vm->pid;
}

uint64_t sp_vm_ram_base(const SpVm *vm)
{
    return vm->ram_base;
}

bool sp_vm_read_ram(SpVm *vm, uint64_t gpa, void *buf, uint64_t len, GError **error)
{
    if (gpa > vm->ram_size || len > vm->ram_size - gpa) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_STATE, "outside guest RAM");
        return false;
    }
    g_autofree char *path = g_strdup_printf("/proc/%d/mem", (int)vm->pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? pread(fd, buf, len, (off_t)(vm->ram_base + gpa)) : -1;
    int e = errno;
    if (fd >= 0)
        close(fd);
    if (n != (ssize_t)len) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_GONE, "cannot read %s: %s", path,
                    n < 0 ? g_strerror(e) : "short read");
        return false;
    }
    return true;
}

void sp_vm_get_info(SpVm *vm, SpVmInfo *info)
{
    g_mutex_lock(&vm->lock);
    info->state = vm->state;
    info->exit_status = vm->exit_status;
    gint64 end = vm->ended ? vm->end_us : g_get_monotonic_time();
    info->seconds = vm->start_us ? (end - vm->start_us) / 1e6 : 0;
    info->rounds = vm->rounds;
    info->pages_verified = vm->pages_verified;
    info->pages_rewritten = vm->pages_rewritten;
    info->integrity_errors = __atomic_load_n(&vm->integrity_errors, __ATOMIC_RELAXED);
    info->phase = __atomic_load_n(&vm->phase, __ATOMIC_RELAXED);
    g_mutex_unlock(&vm->lock);
}

uint64_t sp_vm_cpu_time_ns(SpVm *vm)
{
    SpProtoMsg st = {0};
    g_mutex_lock(&vm->lock);
    bool live = !vm->ended && !vm->dead;
    g_mutex_unlock(&vm->lock);
    if (live && sp_vm_request(vm, SP_PROTO_STATUS, NULL, 0, NULL, 0, 2.0, &st, NULL)) {
        mirror_status(vm, &st);
        sp_proto_msg_clear(&st);
    }
    g_mutex_lock(&vm->lock);
    uint64_t ns = vm->cpu_ns;
    g_mutex_unlock(&vm->lock);
    return ns;
}

uint64_t sp_vm_resident_pages(SpVm *vm)
{
    sp_vm_cpu_time_ns(vm); /* one STATUS refreshes both */
    g_mutex_lock(&vm->lock);
    uint64_t n = vm->resident_pages;
    g_mutex_unlock(&vm->lock);
    return n;
}

uint32_t sp_vm_send_command(SpVm *vm, uint8_t opcode, uint32_t arg)
{
    uint32_t p[2] = {opcode, arg}, seq = 0;
    SpProtoMsg r = {0};
    if (!sp_vm_request(vm, SP_PROTO_COMMAND, p, sizeof(p), NULL, 0, REQUEST_TIMEOUT_S, &r, NULL))
        return 0;
    SpProtoReader rd = sp_proto_reader(&r);
    sp_proto_read(&rd, &seq, 4);
    sp_proto_msg_clear(&r);
    return seq;
}

char *sp_vm_get_reason(SpVm *vm)
{
    g_mutex_lock(&vm->lock);
    char *r = g_strdup(vm->reason);
    g_mutex_unlock(&vm->lock);
    return r;
}

static bool result_lookup(SpVm *vm, const char *key, uint64_t *value)
{
    g_mutex_lock(&vm->lock);
    uint64_t *v = g_hash_table_lookup(vm->results, key);
    if (v)
        *value = *v;
    g_mutex_unlock(&vm->lock);
    return v != NULL;
}

bool sp_vm_get_result(SpVm *vm, const char *key, uint64_t *value)
{
    if (result_lookup(vm, key, value))
        return true;
    /* Not reported (yet), or its event was lost on a loaded host: the VM
     * process's status has every result. */
    sp_vm_cpu_time_ns(vm);
    return result_lookup(vm, key, value);
}

bool sp_vm_test_hook(SpVm *vm, uint32_t hook, GError **error)
{
    return sp_vm_request(vm, SP_PROTO_TEST_HOOK, &hook, 4, NULL, 0, REQUEST_TIMEOUT_S, NULL, error);
}

/* PAUSE / RESUME, and the mirror of the suspend they set or end. */
static bool suspend_request(SpVm *vm, uint16_t type, GError **error)
{
    if (!request_simple(vm, type, error))
        return false;
    g_mutex_lock(&vm->lock);
    vm->suspended = type == SP_PROTO_PAUSE;
    g_mutex_unlock(&vm->lock);
    return true;
}

bool sp_vm_pause(SpVm *vm, GError **error)
{
    return suspend_request(vm, SP_PROTO_PAUSE, error);
}

bool sp_vm_resume(SpVm *vm, GError **error)
{
    return suspend_request(vm, SP_PROTO_RESUME, error);
}

bool sp_vm_suspended(SpVm *vm)
{
    g_mutex_lock(&vm->lock);
    bool s = vm->suspended;
    g_mutex_unlock(&vm->lock);
    return s;
}

bool sp_vm_process_died(const SpVm *vm)
{
    return vm->process_died;
}

struct SpRmapVm *sp_vm_rmap(SpVm *vm)
{
    return vm->rmap;
}
