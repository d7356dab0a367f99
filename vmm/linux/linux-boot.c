/* SPDX-License-Identifier: MIT */
/*
 * linux-boot.c - read a bzImage and initrd into guest RAM and set up the
 * vCPUs for the 64-bit entry (see linux-boot.h).  The decisions live in the
 * pure helpers (bzimage.c, boot-params.c, e820.c, entry.c, mptable.c,
 * cpuid.c); this file does the I/O and the KVM ioctls.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/linux/acpi.h"
#include "vmm/linux/boot-params.h"
#include "vmm/linux/bzimage.h"
#include "vmm/linux/cpuid.h"
#include "vmm/linux/entry.h"
#include "vmm/linux/layout.h"
#include "vmm/linux/linux-boot.h"
#include "vmm/linux/mptable.h"
#include "vmm/vm-error.h"

/* LAPIC register offsets and LVT delivery modes. */
#define APIC_LVT0        0x350
#define APIC_LVT1        0x360
#define APIC_DM_NMI      0x400
#define APIC_DM_EXTINT   0x700
#define APIC_LVT_DM_MASK 0x700

static bool file_size(int fd, const char *path, uint64_t max, uint64_t *size, GError **error)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "%s: %s", path,
                    g_strerror(errno));
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_IMAGE, "%s: not a regular file", path);
        return false;
    }
    if ((uint64_t)st.st_size > max) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_IMAGE, "%s: too large (%llu bytes)", path,
                    (unsigned long long)st.st_size);
        return false;
    }
    *size = (uint64_t)st.st_size;
    return true;
}

static bool read_full(int fd, const char *path, uint8_t *dst, uint64_t len, GError **error)
{
    while (len > 0) {
        ssize_t n = read(fd, dst, MIN(len, (uint64_t)1 << 30));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            g_set_error(error, G_IO_ERROR, n < 0 ? g_io_error_from_errno(errno) : G_IO_ERROR_FAILED,
                        "%s: %s", path, n < 0 ? g_strerror(errno) : "file shrank while reading");
            return false;
        }
        dst += n;
        len -= (uint64_t)n;
    }
    return true;
}

static int open_ro(const char *path, const char *what, GError **error)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "%s %s: %s", what, path,
                    g_strerror(errno));
    return fd;
}

bool sp_linux_boot_prepare(const SpVmConfig *cfg, SpGuestMem *mem, SpLinuxBootState *out,
                           GError **error)
{
    g_autofree uint8_t *kimg = NULL;
    uint64_t ksize = 0, isize = 0;
    int kfd = -1, ifd = -1;
    bool ok = false;
    SpBzImage img;
    SpLinuxPlan plan;
    const char *cmdline = cfg->cmdline ? cfg->cmdline : SP_LINUX_DEFAULT_CMDLINE;

    memset(out, 0, sizeof *out);
    if (!cfg->kernel) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_INVALID, "no kernel= given");
        return false;
    }
    if (cfg->vcpus < 1 || cfg->vcpus > SP_MPTABLE_MAX_CPUS) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_INVALID,
                    "Linux guests support 1 to %d vCPUs (asked for %u)", SP_MPTABLE_MAX_CPUS,
                    cfg->vcpus);
        return false;
    }
    kfd = open_ro(cfg->kernel, "kernel", error);
    if (kfd < 0)
        goto out;
    if (!file_size(kfd, cfg->kernel, SP_BZIMAGE_MAX_SIZE, &ksize, error))
        goto out;
    kimg = g_try_malloc(ksize ? ksize : 1);
    if (!kimg) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_FAILED, "%s: out of memory", cfg->kernel);
        goto out;
    }
    if (!read_full(kfd, cfg->kernel, kimg, ksize, error))
        goto out;
    if (!sp_bzimage_parse(kimg, ksize, cfg->kernel, &img, error))
        goto out;
    if (cfg->initrd) {
        ifd = open_ro(cfg->initrd, "initrd", error);
        if (ifd < 0)
            goto out;
        if (!file_size(ifd, cfg->initrd, SP_LINUX_MEM_MAX, &isize, error))
            goto out;
        if (isize == 0) {
            g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_IMAGE, "initrd %s is empty", cfg->initrd);
            goto out;
        }
    }
    if (!sp_linux_plan(&img, mem->size, strlen(cmdline), isize, &plan, error))
        goto out;

    /* Everything fits: write the guest's memory. */
    memcpy(mem->host + plan.kernel_gpa, kimg + img.kernel_offset, img.kernel_size);
    if (isize && !read_full(ifd, cfg->initrd, mem->host + plan.initrd_gpa, isize, error))
        goto out;
    memcpy(mem->host + plan.cmdline_gpa, cmdline, plan.cmdline_len + 1);
    struct boot_params *bp = (struct boot_params *)(mem->host + SP_LINUX_ZERO_PAGE_GPA);
    sp_linux_boot_params_fill(bp, &img, &plan);
    bp->acpi_rsdp_addr = sp_acpi_tables_write(mem->host + SP_LINUX_ACPI_GPA, SP_LINUX_ACPI_ROOM,
                                              SP_LINUX_ACPI_GPA, cfg->vcpus);
    if (!sp_linux_entry_tables_write(mem->host, mem->size, error))
        goto out;
    if (!sp_mptable_write(mem->host + SP_LINUX_MPTABLE_GPA, SP_LINUX_MPTABLE_ROOM,
                          SP_LINUX_MPTABLE_GPA, cfg->vcpus, error))
        goto out;

    *out = (SpLinuxBootState){
        .entry_gpa = plan.entry_gpa,
        .zero_page_gpa = SP_LINUX_ZERO_PAGE_GPA,
        .kernel_gpa = plan.kernel_gpa,
        .kernel_end = plan.kernel_end,
        .initrd_gpa = plan.initrd_gpa,
        .initrd_size = plan.initrd_size,
        .vcpu_count = cfg->vcpus,
        .boot_version = img.version,
    };
    ok = true;
out:
    if (kfd >= 0)
        close(kfd);
    if (ifd >= 0)
        close(ifd);
    return ok;
}

static bool vcpu_ioctl(int fd, unsigned long req, void *arg, const char *name, GError **error)
{
    if (ioctl(fd, req, arg) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "%s: %s", name,
                    g_strerror(errno));
        return false;
    }
    return true;
}

static bool vcpu_lapic_lint(int fd, GError **error)
{
    struct kvm_lapic_state lapic;
    uint32_t v;

    if (!vcpu_ioctl(fd, KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC", error))
        return false;
    memcpy(&v, lapic.regs + APIC_LVT0, 4);
    v = (v & ~(uint32_t)APIC_LVT_DM_MASK) | APIC_DM_EXTINT;
    memcpy(lapic.regs + APIC_LVT0, &v, 4);
    memcpy(&v, lapic.regs + APIC_LVT1, 4);
    v = (v & ~(uint32_t)APIC_LVT_DM_MASK) | APIC_DM_NMI;
    memcpy(lapic.regs + APIC_LVT1, &v, 4);
    return vcpu_ioctl(fd, KVM_SET_LAPIC, &lapic, "KVM_SET_LAPIC", error);
}

bool sp_linux_vcpu_setup(int vcpu_fd, const SpKvm *kvm, const SpLinuxBootState *st,
                         uint32_t vcpu_index, struct kvm_sregs *sregs, struct kvm_regs *regs,
                         GError **error)
{
    g_autofree struct kvm_cpuid2 *cpuid =
        sp_linux_cpuid_for_vcpu(kvm->cpuid, vcpu_index, st->vcpu_count);
    if (!vcpu_ioctl(vcpu_fd, KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2", error))
        return false;
    struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
    if (!vcpu_ioctl(vcpu_fd, KVM_SET_FPU, &fpu, "KVM_SET_FPU", error))
        return false;
    if (kvm->has_irqchip && !vcpu_lapic_lint(vcpu_fd, error))
        return false;
    if (!vcpu_ioctl(vcpu_fd, KVM_GET_SREGS, sregs, "KVM_GET_SREGS", error) ||
        !vcpu_ioctl(vcpu_fd, KVM_GET_REGS, regs, "KVM_GET_REGS", error))
        return false;
    if (vcpu_index == 0) {
        sp_linux_entry_sregs(sregs);
        sp_linux_entry_regs(regs, st->entry_gpa, st->zero_page_gpa);
    }
    return true;
}
