/* SPDX-License-Identifier: MIT */
/*
 * vcpu.c - one thread per vCPU running KVM_RUN and dispatching its exits.
 *
 * Exits the VMM expects: port I/O (to the bus), and KVM_EXIT_INTR when the
 * host kicks the vCPU.  Everything else (shutdown = triple fault, internal
 * error, failed entry, MMIO with no device, a handler that rejects an
 * access) crashes *this VM* with a reason and a register dump; the thread
 * then returns and the process goes on.
 *
 * Stopping: sp_vcpu_kick() sets kvm_run.immediate_exit and sends
 * SIG_VCPU_KICK to the thread, so a vCPU inside KVM_RUN leaves it with EINTR
 * and one about to enter it does not enter.  The signal handler does nothing.
 *
 * Pausing (sp_machine_pause: clones, the supervisor's suspend): the same
 * kick, after vm->pause_req is raised; the thread completes the pending exit inside KVM (vcpu_park)
 * and waits on vm->pause_cond.  Nothing is saved: the registers stay in KVM.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vmm/machine/machine-priv.h"
#include "vmm/vm-placement.h"

#define SIG_VCPU_KICK SIGUSR1

static void vcpu_kick_handler(int sig)
{
    (void)sig;
}

static void vcpu_install_kick_handler(void)
{
    static gsize once;
    if (g_once_init_enter(&once)) {
        struct sigaction sa = {.sa_handler = vcpu_kick_handler};
        sigemptyset(&sa.sa_mask);
        sigaction(SIG_VCPU_KICK, &sa, NULL); /* no SA_RESTART: KVM_RUN must return */
        g_once_init_leave(&once, 1);
    }
}

bool sp_vcpu_create(SpMachine *vm, SpVcpu *vcpu, uint32_t index, GError **error)
{
    vcpu_install_kick_handler();
    *vcpu = (SpVcpu){.vm = vm, .index = index, .fd = -1};
    vcpu->fd = ioctl(vm->fd, KVM_CREATE_VCPU, (unsigned long)index);
    if (vcpu->fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "VM '%s': cannot create vCPU %u: %s", vm->cfg->name, index, g_strerror(errno));
        return false;
    }
    void *run = mmap(NULL, vm->kvm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
    if (run == MAP_FAILED) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "VM '%s': cannot map vCPU %u state: %s", vm->cfg->name, index,
                    g_strerror(errno));
        return false;
    }
    vcpu->run = run;
    if (ioctl(vcpu->fd, KVM_SET_CPUID2, vm->kvm->cpuid) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "VM '%s': KVM_SET_CPUID2 on vCPU %u: %s", vm->cfg->name, index,
                    g_strerror(errno));
        return false;
    }
    return true;
}

void sp_vcpu_destroy(SpVcpu *vcpu)
{
    if (vcpu->run)
        munmap(vcpu->run, vcpu->vm->kvm->run_size);
    if (vcpu->fd >= 0)
        close(vcpu->fd);
    vcpu->run = NULL;
    vcpu->fd = -1;
}

bool sp_vcpu_set_initial_state(SpVcpu *vcpu, GError **error)
{
    if (ioctl(vcpu->fd, KVM_SET_SREGS, &vcpu->init_sregs) < 0 ||
        ioctl(vcpu->fd, KVM_SET_REGS, &vcpu->init_regs) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "VM '%s': cannot set vCPU %u registers: %s", vcpu->vm->cfg->name, vcpu->index,
                    g_strerror(errno));
        return false;
    }
    /* With an in-kernel LAPIC, every vCPU but 0 starts waiting for INIT/SIPI;
     * payload VMs start them all at the entry point instead. */
    if (vcpu->start_runnable) {
        struct kvm_mp_state mp = {.mp_state = KVM_MP_STATE_RUNNABLE};
        if (ioctl(vcpu->fd, KVM_SET_MP_STATE, &mp) < 0) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                        "VM '%s': cannot make vCPU %u runnable: %s", vcpu->vm->cfg->name,
                        vcpu->index, g_strerror(errno));
            return false;
        }
    }
    return true;
}

void sp_vcpu_kick(SpVcpu *vcpu)
{
    if (vcpu->run)
        __atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&vcpu->tid_valid, __ATOMIC_ACQUIRE))
        pthread_kill(vcpu->tid, SIG_VCPU_KICK);
}

char *sp_vcpu_dump_regs(SpVcpu *vcpu)
{
    struct kvm_regs r;
    struct kvm_sregs s;
    if (ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0)
        return g_strdup_printf("vCPU %u: registers unavailable: %s", vcpu->index,
                               g_strerror(errno));
    return g_strdup_printf("vCPU %u registers:\n"
                           "  rip %016llx rsp %016llx rflags %016llx\n"
                           "  rax %016llx rbx %016llx rcx %016llx rdx %016llx\n"
                           "  rsi %016llx rdi %016llx rbp %016llx\n"
                           "  r8  %016llx r9  %016llx r10 %016llx r11 %016llx\n"
                           "  r12 %016llx r13 %016llx r14 %016llx r15 %016llx\n"
                           "  cr0 %016llx cr2 %016llx cr3 %016llx cr4 %016llx efer %016llx\n"
                           "  cs %04x (dpl %u, l %u) ss %04x",
                           vcpu->index, r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi,
                           r.rdi, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15,
                           s.cr0, s.cr2, s.cr3, s.cr4, s.efer, s.cs.selector, s.cs.dpl, s.cs.l,
                           s.ss.selector);
}

/* Crash the VM from this vCPU: reason plus register dump. */
static void vcpu_crash(SpVcpu *vcpu, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void vcpu_crash(SpVcpu *vcpu, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_autofree char *regs = sp_vcpu_dump_regs(vcpu);
    g_autofree char *reason = g_strdup_printf("%s\n%s", what, regs);
    sp_machine_end(vcpu->vm, SP_VM_CRASHED, -1, reason);
}

static bool vcpu_handle_io(SpVcpu *vcpu)
{
    struct kvm_run *run = vcpu->run;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
    for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
        if (!sp_iobus_access(&vcpu->vm->io, run->io.port, data, run->io.size, is_write)) {
            vcpu_crash(vcpu, "unexpected I/O port %s 0x%x (size %u)", is_write ? "write" : "read",
                       run->io.port, run->io.size);
            return false;
        }
    }
    return true;
}

/* Act on the exit KVM_RUN just returned; false when the vCPU must end. */
static bool vcpu_dispatch_exit(SpVcpu *vcpu)
{
    SpMachine *vm = vcpu->vm;
    struct kvm_run *run = vcpu->run;
    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        return vcpu_handle_io(vcpu);
    case KVM_EXIT_INTR:
        return true;
    case KVM_EXIT_HLT:
        vcpu_crash(vcpu, "guest halted with no way to wake it");
        return false;
    case KVM_EXIT_SHUTDOWN:
        vcpu_crash(vcpu, "guest crashed: triple fault (shutdown)");
        return false;
    case KVM_EXIT_FAIL_ENTRY:
        vcpu_crash(vcpu, "VM entry failed (hardware reason 0x%llx)",
                   (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        return false;
    case KVM_EXIT_INTERNAL_ERROR:
        vcpu_crash(vcpu, "KVM internal error (suberror %u)", run->internal.suberror);
        return false;
    case KVM_EXIT_MMIO:
        vcpu_crash(vcpu, "guest %s of %u bytes at 0x%llx: no device there",
                   run->mmio.is_write ? "write" : "read", run->mmio.len,
                   (unsigned long long)run->mmio.phys_addr);
        return false;
    case KVM_EXIT_SYSTEM_EVENT:
        if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
            sp_machine_end(vm, SP_VM_EXITED, 0, NULL);
        else
            vcpu_crash(vcpu, "guest system event %u", run->system_event.type);
        return false;
    default:
        vcpu_crash(vcpu, "unexpected vCPU exit reason %u", run->exit_reason);
        return false;
    }
}

/* The VM is being paused: first let KVM finish what the last exit left
 * pending (the result of an IN, the skip of an OUT) by entering KVM_RUN
 * with immediate_exit set, so the registers in KVM are complete; then wait
 * until the pause ends or the VM stops.  False when the vCPU must end. */
static bool vcpu_park(SpVcpu *vcpu)
{
    SpMachine *vm = vcpu->vm;
    for (;;) {
        __atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
        int r = ioctl(vcpu->fd, KVM_RUN, 0);
        int e = errno;
        __atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
        if (r < 0) {
            if (e == EINTR || e == EAGAIN)
                break;
            vcpu_crash(vcpu, "KVM_RUN failed: %s", g_strerror(e));
            return false;
        }
        if (!vcpu_dispatch_exit(vcpu)) /* completing it caused another exit */
            return false;
    }
    g_mutex_lock(&vm->pause_lock);
    vm->parked++;
    g_cond_broadcast(&vm->pause_cond);
    while (__atomic_load_n(&vm->pause_req, __ATOMIC_ACQUIRE) &&
           !__atomic_load_n(&vm->stop, __ATOMIC_ACQUIRE))
        g_cond_wait(&vm->pause_cond, &vm->pause_lock);
    vm->parked--;
    g_mutex_unlock(&vm->pause_lock);
    return true;
}

gpointer sp_vcpu_thread(gpointer opaque)
{
    SpVcpu *vcpu = opaque;
    SpMachine *vm = vcpu->vm;
    vcpu->tid = pthread_self();
    __atomic_store_n(&vcpu->tid_valid, 1, __ATOMIC_RELEASE);
    g_autofree char *tname = g_strdup_printf("%.8s/vcpu%u", vm->cfg->name, vcpu->index);
    pthread_setname_np(pthread_self(), tname);

    unsigned numa_seen = 0;
    while (!__atomic_load_n(&vm->stop, __ATOMIC_ACQUIRE)) {
        if (__atomic_load_n(&vm->pause_req, __ATOMIC_ACQUIRE)) {
            if (!vcpu_park(vcpu))
                break;
            continue;
        }
        /* a NUMA policy changed while the VM runs (sp_machine_kick_all) */
        sp_numa_thread_sync(&numa_seen);
        if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                __atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
                continue;
            }
            vcpu_crash(vcpu, "KVM_RUN failed: %s", g_strerror(errno));
            break;
        }
        if (!vcpu_dispatch_exit(vcpu))
            break;
    }
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
        __atomic_add_fetch(&vm->cpu_ns_done,
                           (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec,
                           __ATOMIC_RELAXED);
    __atomic_store_n(&vcpu->tid_valid, 0, __ATOMIC_RELEASE);
    g_mutex_lock(&vm->pause_lock);
    vm->alive--;
    g_cond_broadcast(&vm->pause_cond);
    g_mutex_unlock(&vm->pause_lock);
    return NULL;
}
