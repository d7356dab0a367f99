/* SPDX-License-Identifier: MIT */
/* vm.c - VM creation, start, stop and teardown (see vm.h for the lifecycle). */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "rmap/rmap.h"
#include "vmm/guest-abi.h"
#include "sharing/agent.h"
#include "vmm/linux/acpi.h"
#include "vmm/linux/linux-boot.h"
#include "vmm/linux/power.h"
#include "vmm/machine/machine-priv.h"

#define TSS_ADDR 0xfffbd000ULL

static void vm_uart_line(void *opaque, const char *line)
{
    SpMachine *vm = opaque;
    if (vm->ev.console)
        vm->ev.console(vm, line, vm->ev.opaque);
}

static void vm_uart_irq(void *opaque, int level)
{
    SpMachine *vm = opaque;
    struct kvm_irq_level irq = {.irq = SP_UART_COM1_IRQ, .level = level};
    if (vm->irqchip)
        ioctl(vm->fd, KVM_IRQ_LINE, &irq);
}

/* A Linux guest powered off (ACPI S5) or rebooted: both end the VM cleanly. */
static void vm_linux_power(void *opaque, bool reboot)
{
    SpMachine *vm = opaque;
    sp_machine_end(vm, SP_VM_EXITED, 0, reboot ? SP_VM_REASON_REBOOT : NULL);
}

/* Load the bzImage and initrd and set every vCPU up for the 64-bit entry. */
static bool vm_boot_linux(SpMachine *vm, GError **error)
{
    SpLinuxBootState st;
    if (!sp_linux_boot_prepare(vm->cfg, &vm->mem, &st, error)) {
        g_prefix_error(error, "VM '%s': ", vm->cfg->name);
        return false;
    }
    for (uint32_t i = 0; i < vm->nvcpus; i++) {
        SpVcpu *v = &vm->vcpus[i];
        if (!sp_linux_vcpu_setup(v->fd, vm->kvm, &st, i, &v->init_sregs, &v->init_regs, error)) {
            g_prefix_error(error, "VM '%s': vCPU %u: ", vm->cfg->name, i);
            return false;
        }
    }
    vm->power = (SpLinuxPower){.fn = vm_linux_power, .opaque = vm};
    sp_iobus_register(&vm->io, SP_ACPI_PORT_BASE, SP_ACPI_PORT_COUNT, sp_linux_power_io,
                      &vm->power);
    sp_iobus_register(&vm->io, SP_I8042_CMD_PORT, 1, sp_linux_power_io, &vm->power);
    return true;
}

static bool vm_create_kvm(SpMachine *vm, GError **error)
{
    vm->fd = ioctl(vm->kvm->fd, KVM_CREATE_VM, 0);
    if (vm->fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "VM '%s': KVM_CREATE_VM: %s",
                    vm->cfg->name, g_strerror(errno));
        return false;
    }
    if (ioctl(vm->fd, KVM_SET_TSS_ADDR, (unsigned long)TSS_ADDR) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "VM '%s': KVM_SET_TSS_ADDR: %s", vm->cfg->name, g_strerror(errno));
        return false;
    }
    /* The in-kernel irqchip and PIT are what a Linux guest needs; payload
     * VMs run with interrupts off and do not care, so failure is not fatal. */
    vm->irqchip = vm->kvm->has_irqchip && ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0) == 0;
    if (vm->irqchip && vm->kvm->has_pit2) {
        struct kvm_pit_config pit = {.flags = 0};
        ioctl(vm->fd, KVM_CREATE_PIT2, &pit);
    }
    return true;
}

static bool vm_create_ram(SpMachine *vm, GError **error)
{
    if (!sp_guest_mem_init(&vm->mem, vm->cfg->mem_size, error))
        return false;
    struct kvm_userspace_memory_region slot = {
        .slot = SP_MACHINE_RAM_SLOT,
        .flags = vm->cfg->no_share ? 0 : KVM_MEM_LOG_DIRTY_PAGES,
        .guest_phys_addr = 0,
        .memory_size = vm->mem.size,
        .userspace_addr = (uintptr_t)vm->mem.host,
    };
    if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "VM '%s': cannot give %llu MiB of RAM to KVM: %s", vm->cfg->name,
                    (unsigned long long)(vm->mem.size >> 20), g_strerror(errno));
        return false;
    }
    vm->rmap = sp_rmap_vm_new(vm->id, vm->cfg->name, &vm->mem, error);
    if (!vm->rmap)
        return false;
    return true;
}

SpMachine *sp_machine_new(SpKvm *kvm, const SpVmConfig *cfg, uint64_t vm_id,
                          const SpMachineEvents *events, GError **error)
{
    return sp_machine_new_internal(kvm, cfg, vm_id, events, true, error);
}

SpMachine *sp_machine_new_unbooted(SpKvm *kvm, const SpVmConfig *cfg, uint64_t vm_id,
                                   const SpMachineEvents *events, GError **error)
{
    return sp_machine_new_internal(kvm, cfg, vm_id, events, false, error);
}

SpMachine *sp_machine_new_internal(SpKvm *kvm, const SpVmConfig *cfg, uint64_t vm_id,
                                   const SpMachineEvents *events, bool boot, GError **error)
{
    int max_vcpus = cfg->payload ? MIN(kvm->max_vcpus, SP_MAX_VCPUS) : kvm->max_vcpus;
    if (!sp_vm_config_validate(cfg, max_vcpus, error))
        return NULL;
    SpMachine *vm = g_new0(SpMachine, 1);
    vm->kvm = kvm;
    vm->cfg = sp_vm_config_copy(cfg);
    vm->id = vm_id;
    vm->fd = -1;
    vm->mem.uffd = -1;
    if (events)
        vm->ev = *events;
    g_mutex_init(&vm->lock);
    g_mutex_init(&vm->pause_lock);
    g_cond_init(&vm->pause_cond);
    vm->results = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    vm->state = SP_VM_CREATED;
    vm->io.strict = cfg->payload != NULL;

    if (!vm_create_kvm(vm, error) || !vm_create_ram(vm, error))
        goto fail;

    vm->uart = sp_uart_new(vm_uart_line, vm_uart_irq, vm);
    sp_iobus_register(&vm->io, SP_UART_COM1_BASE, 8, sp_uart_io, vm->uart);
    sp_iobus_register(&vm->io, SP_CTL_PORT, 4, sp_ctlport_io, vm);

    vm->vcpus = g_new0(SpVcpu, cfg->vcpus);
    for (uint32_t i = 0; i < cfg->vcpus; i++) {
        if (!sp_vcpu_create(vm, &vm->vcpus[i], i, error)) {
            vm->nvcpus = i + 1;
            goto fail;
        }
        vm->nvcpus = i + 1;
    }
    if (!boot)
        return vm;
    if (cfg->payload) {
        if (!sp_boot_payload(vm, error))
            goto fail;
    } else if (!vm_boot_linux(vm, error)) {
        goto fail;
    }
    for (uint32_t i = 0; i < vm->nvcpus; i++)
        if (!sp_vcpu_set_initial_state(&vm->vcpus[i], error))
            goto fail;
    return vm;

fail:
    sp_machine_free(vm);
    return NULL;
}

void sp_machine_set_agent(SpMachine *vm, struct SpAgent *agent)
{
    vm->agent = agent;
}

bool sp_machine_start(SpMachine *vm, GError **error)
{
    g_mutex_lock(&vm->lock);
    if (vm->state != SP_VM_CREATED) {
        g_mutex_unlock(&vm->lock);
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_STATE, "VM '%s' is %s, cannot start it",
                    vm->cfg->name, sp_vm_state_name(vm->state));
        return false;
    }
    vm->state = SP_VM_RUNNING;
    vm->start_us = g_get_monotonic_time();
    g_mutex_unlock(&vm->lock);
    for (uint32_t i = 0; i < vm->nvcpus; i++) {
        g_autofree char *name = g_strdup_printf("vcpu%u", i);
        g_mutex_lock(&vm->pause_lock);
        vm->alive++;
        g_mutex_unlock(&vm->pause_lock);
        vm->vcpus[i].thread = g_thread_try_new(name, sp_vcpu_thread, &vm->vcpus[i], error);
        if (!vm->vcpus[i].thread) {
            g_mutex_lock(&vm->pause_lock);
            vm->alive--;
            g_cond_broadcast(&vm->pause_cond);
            g_mutex_unlock(&vm->pause_lock);
            sp_machine_end(vm, SP_VM_CRASHED, -1, "cannot start a vCPU thread");
            return false;
        }
    }
    return true;
}

void sp_machine_end(SpMachine *vm, SpVmState state, int status, const char *reason)
{
    bool first = false;
    g_mutex_lock(&vm->lock);
    if (vm->state == SP_VM_RUNNING || vm->state == SP_VM_CREATED) {
        first = true;
        vm->state = state;
        vm->exit_status = status;
        vm->reason = g_strdup(reason);
        vm->end_us = g_get_monotonic_time();
    }
    g_mutex_unlock(&vm->lock);
    __atomic_store_n(&vm->stop, 1, __ATOMIC_RELEASE);
    g_mutex_lock(&vm->pause_lock); /* parked vCPUs must see `stop` */
    g_cond_broadcast(&vm->pause_cond);
    g_mutex_unlock(&vm->pause_lock);
    for (uint32_t i = 0; i < vm->nvcpus; i++)
        sp_vcpu_kick(&vm->vcpus[i]);
    if (first) {
        sp_uart_flush(vm->uart);
        if (vm->ev.ended)
            vm->ev.ended(vm, state, vm->ev.opaque);
    }
}

bool sp_machine_pause(SpMachine *vm, GError **error)
{
    g_mutex_lock(&vm->lock);
    SpVmState st = vm->state;
    g_mutex_unlock(&vm->lock);
    if (st != SP_VM_RUNNING) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_STATE, "VM '%s' is %s, not running",
                    vm->cfg->name, sp_vm_state_name(st));
        return false;
    }
    g_mutex_lock(&vm->pause_lock);
    __atomic_add_fetch(&vm->pause_req, 1, __ATOMIC_SEQ_CST);
    g_mutex_unlock(&vm->pause_lock);
    for (uint32_t i = 0; i < vm->nvcpus; i++)
        sp_vcpu_kick(&vm->vcpus[i]);
    /* Parking takes microseconds; the margin is for a host so loaded that
     * the vCPU threads wait seconds for a CPU. */
    gint64 deadline = g_get_monotonic_time() + 10 * G_TIME_SPAN_SECOND;
    bool ok = true;
    g_mutex_lock(&vm->pause_lock);
    while (vm->parked < vm->alive && !__atomic_load_n(&vm->stop, __ATOMIC_ACQUIRE)) {
        if (!g_cond_wait_until(&vm->pause_cond, &vm->pause_lock, deadline)) {
            ok = vm->parked >= vm->alive;
            break;
        }
    }
    if (__atomic_load_n(&vm->stop, __ATOMIC_ACQUIRE))
        ok = false;
    g_mutex_unlock(&vm->pause_lock);
    if (!ok) {
        sp_machine_resume(vm);
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_FAILED, "VM '%s' could not be paused%s",
                    vm->cfg->name,
                    __atomic_load_n(&vm->stop, __ATOMIC_ACQUIRE) ? ": it stopped" : "");
    }
    return ok;
}

void sp_machine_resume(SpMachine *vm)
{
    g_mutex_lock(&vm->pause_lock);
    if (__atomic_load_n(&vm->pause_req, __ATOMIC_SEQ_CST) > 0)
        __atomic_sub_fetch(&vm->pause_req, 1, __ATOMIC_SEQ_CST);
    g_cond_broadcast(&vm->pause_cond);
    g_mutex_unlock(&vm->pause_lock);
}

bool sp_machine_suspend(SpMachine *vm, GError **error)
{
    if (__atomic_load_n(&vm->suspended, __ATOMIC_ACQUIRE))
        return true;
    if (!sp_machine_pause(vm, error))
        return false;
    __atomic_store_n(&vm->suspended, 1, __ATOMIC_RELEASE);
    return true;
}

bool sp_machine_unsuspend(SpMachine *vm, GError **error)
{
    if (!__atomic_load_n(&vm->suspended, __ATOMIC_ACQUIRE)) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_STATE, "VM '%s' is not suspended",
                    vm->cfg->name);
        return false;
    }
    __atomic_store_n(&vm->suspended, 0, __ATOMIC_RELEASE);
    sp_machine_resume(vm);
    return true;
}

bool sp_machine_suspended(SpMachine *vm)
{
    return __atomic_load_n(&vm->suspended, __ATOMIC_ACQUIRE);
}

void sp_machine_kick_all(SpMachine *vm)
{
    for (uint32_t i = 0; i < vm->nvcpus; i++)
        sp_vcpu_kick(&vm->vcpus[i]);
}

void sp_machine_request_stop(SpMachine *vm)
{
    sp_machine_end(vm, SP_VM_STOPPED, 0, "stopped by the host");
}

void sp_machine_fail(SpMachine *vm, const char *reason)
{
    sp_machine_end(vm, SP_VM_CRASHED, -1, reason);
}

void sp_machine_wait(SpMachine *vm)
{
    for (uint32_t i = 0; i < vm->nvcpus; i++) {
        if (vm->vcpus[i].thread) {
            g_thread_join(vm->vcpus[i].thread);
            vm->vcpus[i].thread = NULL;
        }
    }
}

void sp_machine_free(SpMachine *vm)
{
    if (!vm)
        return;
    if (vm->vcpus) {
        sp_machine_end(vm, SP_VM_STOPPED, 0, "stopped by the host");
        sp_machine_wait(vm);
        for (uint32_t i = 0; i < vm->nvcpus; i++)
            sp_vcpu_destroy(&vm->vcpus[i]);
        g_free(vm->vcpus);
    }
    sp_uart_free(vm->uart);
    if (vm->fd >= 0)
        close(vm->fd);
    sp_guest_mem_destroy(&vm->mem);
    sp_rmap_vm_free(vm->rmap); /* leaves its groups, then its layout lets them go */
    g_hash_table_destroy(vm->results);
    g_free(vm->reason);
    g_mutex_clear(&vm->lock);
    g_mutex_clear(&vm->pause_lock);
    g_cond_clear(&vm->pause_cond);
    sp_vm_config_free(vm->cfg);
    g_free(vm);
}

const char *sp_machine_name(const SpMachine *vm)
{
    return vm->cfg->name;
}

uint64_t sp_machine_id(const SpMachine *vm)
{
    return vm->id;
}

const SpVmConfig *sp_machine_config(const SpMachine *vm)
{
    return vm->cfg;
}

SpGuestMem *sp_machine_mem(SpMachine *vm)
{
    return &vm->mem;
}

int sp_machine_kvm_fd(const SpMachine *vm)
{
    return vm->fd;
}

void sp_machine_get_info(SpMachine *vm, SpVmInfo *info)
{
    g_mutex_lock(&vm->lock);
    info->state = vm->state;
    info->exit_status = vm->exit_status;
    gint64 end = vm->state == SP_VM_RUNNING ? g_get_monotonic_time() : vm->end_us;
    info->seconds = vm->start_us ? (end - vm->start_us) / 1e6 : 0;
    g_mutex_unlock(&vm->lock);
    info->rounds = __atomic_load_n(&vm->rounds, __ATOMIC_RELAXED);
    info->pages_verified = __atomic_load_n(&vm->pages_verified, __ATOMIC_RELAXED);
    info->pages_rewritten = __atomic_load_n(&vm->pages_rewritten, __ATOMIC_RELAXED);
    info->integrity_errors = __atomic_load_n(&vm->integrity_errors, __ATOMIC_RELAXED);
    info->phase = __atomic_load_n(&vm->phase, __ATOMIC_RELAXED);
}

uint64_t sp_machine_cpu_time_ns(SpMachine *vm)
{
    uint64_t total = __atomic_load_n(&vm->cpu_ns_done, __ATOMIC_RELAXED);
    for (uint32_t i = 0; i < vm->nvcpus; i++) {
        SpVcpu *v = &vm->vcpus[i];
        clockid_t cid;
        struct timespec ts;
        if (__atomic_load_n(&v->tid_valid, __ATOMIC_ACQUIRE) &&
            pthread_getcpuclockid(v->tid, &cid) == 0 && clock_gettime(cid, &ts) == 0)
            total += (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
    }
    return total;
}

uint32_t sp_machine_send_command(SpMachine *vm, uint8_t opcode, uint32_t arg)
{
    g_mutex_lock(&vm->lock);
    uint32_t seq = (uint32_t)(__atomic_load_n(&vm->command, __ATOMIC_RELAXED) >> 32) + 1;
    if (seq == 0)
        seq = 1;
    __atomic_store_n(&vm->command, SP_CMD_WORD(seq, opcode, arg), __ATOMIC_RELEASE);
    g_mutex_unlock(&vm->lock);
    return seq;
}

char *sp_machine_get_reason(SpMachine *vm)
{
    g_mutex_lock(&vm->lock);
    char *r = g_strdup(vm->reason);
    g_mutex_unlock(&vm->lock);
    return r;
}

bool sp_machine_get_result(SpMachine *vm, const char *key, uint64_t *value)
{
    g_mutex_lock(&vm->lock);
    uint64_t *v = g_hash_table_lookup(vm->results, key);
    if (v)
        *value = *v;
    g_mutex_unlock(&vm->lock);
    return v != NULL;
}

uint64_t sp_machine_command_word(SpMachine *vm)
{
    return __atomic_load_n(&vm->command, __ATOMIC_ACQUIRE);
}

GHashTable *sp_machine_results(SpMachine *vm)
{
    GHashTable *t = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_mutex_lock(&vm->lock);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, vm->results);
    while (g_hash_table_iter_next(&it, &k, &v))
        g_hash_table_insert(t, g_strdup(k), g_memdup2(v, sizeof(uint64_t)));
    g_mutex_unlock(&vm->lock);
    return t;
}
