/* SPDX-License-Identifier: MIT */
/*
 * sandbox.c - what a VM process keeps after setup (docs/process-model.md,
 * "The VM process's sandbox").
 *
 * sp_sandbox_drop_privileges(): switch to the unprivileged VM user, with
 * no supplementary groups and no capabilities, no_new_privs, and not
 * dumpable (so that no process of the same user can open our /proc/PID/mem
 * or ptrace us, and we cannot do it to another VM: every VM process is
 * non-dumpable).  sp_sandbox_seccomp(): the system-call filter; anything not
 * listed is refused and kills the whole process (SIGSYS, after a line on
 * stderr that names the call and where it came from), which the supervisor
 * reports as a crash of that VM.
 *
 * The list is what a running VM needs: KVM and userfaultfd ioctls on the
 * descriptors it opened during setup, memory mapping (merges, clone
 * layers), its two channels and its listening socket, threads (vCPUs are
 * started after the filter is in place: clone() must carry CLONE_THREAD),
 * futexes, clocks and sleeps, and memfd_create/ftruncate/pwrite for clone
 * layer files.  No open, no exec, no new sockets, no ptrace, no
 * process_vm_readv, no signals to other processes.
 */
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <ucontext.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "vmm/vmproc/sandbox.h"

GQuark sp_sandbox_error_quark(void)
{
    return g_quark_from_static_string("sp-sandbox-error-quark");
}

bool sp_sandbox_lookup_user(const char *name, uid_t *uid, gid_t *gid, GError **error)
{
    struct passwd *pw = getpwnam(name);
    if (!pw) {
        g_set_error(error, SP_SANDBOX_ERROR, 0, "no such user '%s' (--vm-user)", name);
        return false;
    }
    if (pw->pw_uid == 0) {
        g_set_error(error, SP_SANDBOX_ERROR, 0,
                    "--vm-user '%s' is root: VM processes must run unprivileged", name);
        return false;
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return true;
}

bool sp_sandbox_drop_privileges(uid_t uid, gid_t gid, GError **error)
{
    const char *what = NULL;
    /* The kernel clears the parent-death signal on a change of credentials:
     * keep --die-with-parent's across the switch. */
    int pdeathsig = 0;
    prctl(PR_GET_PDEATHSIG, &pdeathsig, 0, 0, 0);
    if (geteuid() == 0) {
        /* Order matters: groups and gid while we may still change them. */
        if (setgroups(0, NULL) < 0)
            what = "setgroups";
        else if (setresgid(gid, gid, gid) < 0)
            what = "setresgid";
        else if (setresuid(uid, uid, uid) < 0)
            what = "setresuid";
    }
    /* A non-root uid has no capabilities after setresuid (no keepcaps). */
    if (!what && pdeathsig && prctl(PR_SET_PDEATHSIG, pdeathsig, 0, 0, 0) < 0)
        what = "PR_SET_PDEATHSIG";
    if (!what && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        what = "PR_SET_NO_NEW_PRIVS";
    if (!what && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        what = "PR_SET_DUMPABLE";
    if (what) {
        g_set_error(error, SP_SANDBOX_ERROR, 0, "cannot drop privileges (%s): %s", what,
                    g_strerror(errno));
        return false;
    }
    if (geteuid() == 0 || getegid() == 0) {
        g_set_error(error, SP_SANDBOX_ERROR, 0, "still root after dropping privileges");
        return false;
    }
    return true;
}

/* System calls allowed with any arguments. */
static const int allowed[] = {
    SCMP_SYS(read),
    SCMP_SYS(write),
    SCMP_SYS(readv),
    SCMP_SYS(writev),
    SCMP_SYS(pread64),
    SCMP_SYS(pwrite64),
    SCMP_SYS(lseek),
    SCMP_SYS(close),
    SCMP_SYS(ioctl), /* only on descriptors opened during setup: KVM, userfaultfd */
    SCMP_SYS(mmap),
    SCMP_SYS(munmap),
    SCMP_SYS(mremap),
    SCMP_SYS(mprotect),
    SCMP_SYS(madvise),
    SCMP_SYS(mbind),         /* NUMA: a running VM's RAM moves (vm-placement.h) */
    SCMP_SYS(set_mempolicy), /* ... and its threads' policy follows */
    SCMP_SYS(get_mempolicy),
    SCMP_SYS(mincore),
    SCMP_SYS(brk),
    SCMP_SYS(process_madvise), /* only on pidfds, which it cannot open */
    SCMP_SYS(memfd_create),
    SCMP_SYS(ftruncate),
    SCMP_SYS(fallocate),
    SCMP_SYS(fstat),
    SCMP_SYS(fcntl),
    SCMP_SYS(dup),
    SCMP_SYS(sendmsg),
    SCMP_SYS(recvmsg),
    SCMP_SYS(sendto),
    SCMP_SYS(recvfrom),
    SCMP_SYS(accept4),
    SCMP_SYS(shutdown),
    SCMP_SYS(poll),
    SCMP_SYS(ppoll),
    SCMP_SYS(eventfd2),
    SCMP_SYS(futex),
    SCMP_SYS(set_robust_list),
    SCMP_SYS(get_robust_list),
    SCMP_SYS(rseq),
    SCMP_SYS(sched_yield),
    SCMP_SYS(sched_getaffinity),
    SCMP_SYS(nanosleep),
    SCMP_SYS(clock_nanosleep),
    SCMP_SYS(clock_gettime),
    SCMP_SYS(clock_getres),
    SCMP_SYS(gettimeofday),
    SCMP_SYS(getpid),
    SCMP_SYS(gettid),
    SCMP_SYS(getuid),
    SCMP_SYS(geteuid),
    SCMP_SYS(getgid),
    SCMP_SYS(getegid),
    SCMP_SYS(getrandom),
    SCMP_SYS(getrusage),
    SCMP_SYS(rt_sigaction),
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(rt_sigreturn),
    SCMP_SYS(sigaltstack),
    SCMP_SYS(restart_syscall),
    SCMP_SYS(exit),
    SCMP_SYS(exit_group),
    SCMP_SYS(membarrier),
};

/* A system call outside the filter traps here (SIGSYS), in the thread that
 * made it: the call is refused either way.  Said on stderr with where it
 * came from (backtrace: addresses in the binary, for addr2line), so that a
 * VM that dies of it says why.  Then, normally, the process dies of SIGSYS
 * (the handler is reset and the signal raised: it is delivered as soon as
 * the handler returns, before the thread runs on); in log mode the call
 * fails with ENOSYS and the process goes on, for finding what a change
 * needs.  Async-signal-safe: write(2), backtrace (loaded before the
 * filter), sigaction, tgkill. */
static bool sigsys_log_only;

static void sigsys_report(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    char buf[96] = "samepage-vm: seccomp: system call ";
    size_t n = strlen(buf);
    long nums[2] = {si->si_syscall, (long)gettid()};
    for (int k = 0; k < 2; k++) {
        char digits[20];
        int d = 0;
        long v = nums[k];
        do
            digits[d++] = (char)('0' + v % 10);
        while ((v /= 10) && d < 19);
        while (d)
            buf[n++] = digits[--d];
        const char *mid = k == 0 ? " refused in thread " : ", called from:\n";
        memcpy(buf + n, mid, strlen(mid));
        n += strlen(mid);
    }
    if (write(2, buf, n) < 0)
        return;
    void *frames[32];
    backtrace_symbols_fd(frames, backtrace(frames, G_N_ELEMENTS(frames)), 2);
    if (!sigsys_log_only) {
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigaction(SIGSYS, &dfl, NULL);
        raise(SIGSYS);
        return;
    }
    ((ucontext_t *)uc)->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
}

bool sp_sandbox_seccomp(bool log_only, GError **error)
{
    void *warm[2];
    (void)backtrace(warm, 2); /* its first call loads libgcc_s: not in the handler */
    sigsys_log_only = log_only;
    struct sigaction sa = {.sa_sigaction = sigsys_report, .sa_flags = SA_SIGINFO};
    sigaction(SIGSYS, &sa, NULL);
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
    int rc = ctx ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < G_N_ELEMENTS(allowed); i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
    /* Threads only: a new process could escape the sandbox's accounting. */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
    /* clone3 passes its flags in memory, which a filter cannot read: make
     * glibc fall back to clone(). */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    /* Signals only to our own threads (vCPU kicks) and ourselves. */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                              SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
    /* move_pages on this process only (pid 0): the per-node page counts. */
    if (rc == 0)
        rc =
            seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(move_pages), 1, SCMP_A0(SCMP_CMP_EQ, 0));
    /* prctl for thread names only. */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                              SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
    /* Opening a file fails (EACCES) rather than killing: glibc's malloc
     * opens /proc/sys/vm/overcommit_memory the first time it shrinks a
     * thread arena's heap (seen under load, from realloc in the agent
     * thread), and on failure assumes "do not shrink", which is harmless.
     * Nothing the VM process does after setup needs a path. */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 0);
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 0);
    /* fstat through newfstatat(fd, "", AT_EMPTY_PATH) (glibc's fstat). */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 1,
                              SCMP_A3(SCMP_CMP_EQ, AT_EMPTY_PATH));
    if (rc == 0)
        rc = seccomp_load(ctx);
    if (ctx)
        seccomp_release(ctx);
    if (rc < 0) {
        g_set_error(error, SP_SANDBOX_ERROR, 0, "cannot install the seccomp filter: %s",
                    g_strerror(-rc));
        return false;
    }
    return true;
}
