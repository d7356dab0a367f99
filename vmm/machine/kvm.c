/* SPDX-License-Identifier: MIT */
/* kvm.c - opening /dev/kvm and checking capabilities from one table. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/machine/kvm.h"

typedef struct KvmCapCheck {
    int cap;
    const char *name;
    const char *why;
} KvmCapCheck;

/* Everything samepage cannot work without. */
static const KvmCapCheck required_caps[] = {
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest RAM in VMM memory"},
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "x86 VM set-up"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "guest CPUID"},
    {KVM_CAP_NR_MEMSLOTS, "KVM_CAP_NR_MEMSLOTS", "memory slots"},
    {KVM_CAP_SYNC_MMU, "KVM_CAP_SYNC_MMU", "remapping guest RAM while the guest runs"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "stopping vCPUs without races"},
};

SpKvm *sp_kvm_open(const char *path, GError **error)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "cannot open %s: %s%s", path,
                    g_strerror(errno),
                    errno == ENOENT ? " (no KVM on this host: load kvm-intel/kvm-amd or "
                                      "enable virtualization)"
                                    : "");
        return NULL;
    }
    g_autoptr(SpKvm) kvm = g_new0(SpKvm, 1);
    kvm->fd = fd;

    int version = ioctl(fd, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "%s: KVM API version %d, samepage needs %d", path, version, KVM_API_VERSION);
        return NULL;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(required_caps); i++) {
        if (ioctl(fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "%s lacks %s (needed for %s)",
                        path, required_caps[i].name, required_caps[i].why);
            return NULL;
        }
    }
    kvm->run_size = ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (kvm->run_size <= 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: KVM_GET_VCPU_MMAP_SIZE failed",
                    path);
        return NULL;
    }
    kvm->max_vcpus = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
    if (kvm->max_vcpus <= 0)
        kvm->max_vcpus = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
    if (kvm->max_vcpus <= 0)
        kvm->max_vcpus = 4;
    kvm->has_irqchip = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQCHIP) > 0;
    kvm->has_pit2 = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_PIT2) > 0;
    kvm->has_manual_dirty_protect =
        ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) > 0;

    /* KVM_GET_SUPPORTED_CPUID wants a buffer large enough; grow until it is. */
    for (int n = 64; n <= 4096; n *= 2) {
        struct kvm_cpuid2 *c = g_malloc0(sizeof(*c) + n * sizeof(c->entries[0]));
        c->nent = n;
        if (ioctl(fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
            kvm->cpuid = c;
            break;
        }
        int err = errno;
        g_free(c);
        if (err != E2BIG) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
                        "%s: KVM_GET_SUPPORTED_CPUID: %s", path, g_strerror(err));
            return NULL;
        }
    }
    if (!kvm->cpuid) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: KVM_GET_SUPPORTED_CPUID too large",
                    path);
        return NULL;
    }
    return g_steal_pointer(&kvm);
}

void sp_kvm_close(SpKvm *kvm)
{
    if (!kvm)
        return;
    if (kvm->fd >= 0)
        close(kvm->fd);
    g_free(kvm->cpuid);
    g_free(kvm);
}
