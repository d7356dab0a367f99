/* SPDX-License-Identifier: MIT */
/*
 * boot-payload.c - starting a guest-tools payload in 64-bit user mode.
 *
 * Guest RAM layout (vmm/guest-abi.h): boot info at 0x1000, the argument
 * string at 0x2000, page tables from 0x10000, one 32 KiB stack per vCPU from
 * 0x100000, the payload's segments from 0x400000, then the image blob
 * (page-aligned), then free RAM from the next 2 MiB boundary.
 *
 * Every vCPU starts at the entry point at CPL 3 with IOPL 3 (so it can use
 * the control port and the UART), interrupts off, no IDT: any exception
 * is a triple fault, which the VMM reports as a crash.  This is the setup
 * host-facts.md found to run natively on the development hosts, and it is
 * plain x86-64, so the same payload runs on any KVM host.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/machine/elf-load.h"
#include "vmm/guest-abi.h"
#include "vmm/machine/pagetable.h"
#include "vmm/machine/machine-priv.h"

#define CR0_PE          0x1ULL
#define CR0_ET          0x10ULL
#define CR0_PG          0x80000000ULL
#define CR4_PAE         0x20ULL
#define EFER_LME        0x100ULL
#define EFER_LMA        0x400ULL
#define RFLAGS_IOPL3    0x3000ULL
#define RFLAGS_RESERVED 0x2ULL
#define SEL_USER_CODE   0x1b
#define SEL_USER_DATA   0x23
#define SEL_TSS         0x28

#define MIB2           (2ULL << 20)
#define TSS_HEADER     104                     /* the 64-bit TSS proper */
#define TSS_SIZE       (TSS_HEADER + 8192 + 1) /* + I/O bitmap + terminating 0xff */
#define ALIGN_UP(x, a) (((x) + (a)-1) & ~((uint64_t)(a)-1))

/* Concatenate the image files into guest RAM at `gpa`, each padded to a page. */
static bool payload_load_images(SpMachine *vm, uint64_t gpa, uint64_t *end, GError **error)
{
    uint64_t at = gpa;
    for (char **p = vm->cfg->images; p && *p; p++) {
        g_autofree char *data = NULL;
        gsize len = 0;
        if (!g_file_get_contents(*p, &data, &len, error)) {
            g_prefix_error(error, "VM '%s': image: ", vm->cfg->name);
            return false;
        }
        uint64_t padded = ALIGN_UP((uint64_t)len, SP_PAGE_SIZE);
        uint8_t *dst = sp_guest_mem_ptr(&vm->mem, at, padded + MIB2);
        if (!dst) {
            g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_NO_SPACE,
                        "VM '%s': image files do not fit in %llu MiB of RAM (at %s)", vm->cfg->name,
                        (unsigned long long)(vm->mem.size >> 20), *p);
            return false;
        }
        memcpy(dst, data, len);
        memset(dst + len, 0, padded - len);
        at += padded;
    }
    *end = at;
    return true;
}

static void payload_user_sregs(struct kvm_sregs *s, uint64_t cr3)
{
    struct kvm_segment code = {
        .base = 0,
        .limit = 0xffffffff,
        .selector = SEL_USER_CODE,
        .type = 11,
        .present = 1,
        .dpl = 3,
        .db = 0,
        .s = 1,
        .l = 1,
        .g = 1,
    };
    struct kvm_segment data = {
        .base = 0,
        .limit = 0xffffffff,
        .selector = SEL_USER_DATA,
        .type = 3,
        .present = 1,
        .dpl = 3,
        .db = 1,
        .s = 1,
        .l = 0,
        .g = 1,
    };
    struct kvm_segment tss = {
        .base = SP_TSS_GPA,
        .limit = TSS_SIZE - 1,
        .selector = SEL_TSS,
        .type = 11,
        .present = 1,
        .s = 0,
    };
    s->cs = code;
    s->ss = s->ds = s->es = s->fs = s->gs = data;
    s->tr = tss;
    s->ldt = (struct kvm_segment){.unusable = 1, .type = 2, .present = 1};
    s->idt = (struct kvm_dtable){.base = 0, .limit = 0};
    s->cr0 = CR0_PE | CR0_ET | CR0_PG;
    s->cr3 = cr3;
    s->cr4 = CR4_PAE;
    s->efer = EFER_LME | EFER_LMA;
}

/* A TSS whose I/O permission bitmap allows every port.  With IOPL 3 the
 * bitmap is never consulted on hardware, but paravirtual KVM (PVM) runs the
 * guest at a real IOPL of 0 and emulates IN/OUT, checking the guest's TSS
 * bitmap: this makes the control port and UART reachable there too. */
static void payload_write_tss(SpGuestMem *mem)
{
    uint8_t *tss = sp_guest_mem_ptr(mem, SP_TSS_GPA, TSS_SIZE);
    memset(tss, 0, TSS_SIZE);
    uint16_t iomap = TSS_HEADER;
    memcpy(tss + 102, &iomap, sizeof(iomap));
    tss[TSS_SIZE - 1] = 0xff;
}

bool sp_boot_payload(SpMachine *vm, GError **error)
{
    const SpVmConfig *cfg = vm->cfg;
    g_autofree uint8_t *file = NULL;
    gsize file_len = 0;
    SpElfImage img;

    if (!g_file_get_contents(cfg->payload, (char **)&file, &file_len, error)) {
        g_prefix_error(error, "VM '%s': ", cfg->name);
        return false;
    }
    if (!sp_elf_parse(file, file_len, &img, error)) {
        g_prefix_error(error, "VM '%s': %s: ", cfg->name, cfg->payload);
        return false;
    }
    if (!sp_elf_load(&img, file, &vm->mem, error)) {
        g_prefix_error(error, "VM '%s': ", cfg->name);
        return false;
    }

    size_t args_len = cfg->args ? strlen(cfg->args) : 0;
    if (args_len > SP_ARGS_MAX) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_INVALID,
                    "VM '%s': payload arguments are %zu bytes, at most %d are allowed", cfg->name,
                    args_len, SP_ARGS_MAX);
        return false;
    }
    uint64_t cr3 = 0;
    if (!sp_pagetable_build(&vm->mem, SP_PGTABLE_GPA, SP_PGTABLE_END, &cr3, error)) {
        g_prefix_error(error, "VM '%s': ", cfg->name);
        return false;
    }

    uint64_t blob_gpa = ALIGN_UP(img.end, SP_PAGE_SIZE), blob_end = blob_gpa;
    if (!payload_load_images(vm, blob_gpa, &blob_end, error))
        return false;
    uint64_t free_gpa = ALIGN_UP(blob_end, MIB2);
    if (free_gpa >= vm->mem.size) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_NO_SPACE,
                    "VM '%s': the payload and images leave no free RAM (%llu MiB needed at least)",
                    cfg->name, (unsigned long long)((free_gpa + MIB2) >> 20));
        return false;
    }

    payload_write_tss(&vm->mem);
    char *args = sp_guest_mem_ptr(&vm->mem, SP_ARGS_GPA, SP_ARGS_MAX + 1);
    if (args_len)
        memcpy(args, cfg->args, args_len);
    args[args_len] = 0;

    SpBootInfo *bi = sp_guest_mem_ptr(&vm->mem, SP_BOOTINFO_GPA, sizeof(SpBootInfo));
    *bi = (SpBootInfo){
        .magic = SP_BOOT_MAGIC,
        .version = SP_BOOT_VERSION,
        .vcpu_count = vm->nvcpus,
        .ram_size = vm->mem.size,
        .args_gpa = SP_ARGS_GPA,
        .args_len = args_len,
        .blob_gpa = blob_end > blob_gpa ? blob_gpa : 0,
        .blob_size = blob_end - blob_gpa,
        .free_gpa = free_gpa,
        .free_end = vm->mem.size,
        .vm_id = vm->id,
    };
    g_strlcpy(bi->vm_name, cfg->name, sizeof(bi->vm_name));

    for (uint32_t i = 0; i < vm->nvcpus; i++) {
        SpVcpu *v = &vm->vcpus[i];
        if (ioctl(v->fd, KVM_GET_SREGS, &v->init_sregs) < 0) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                        "VM '%s': KVM_GET_SREGS: %s", cfg->name, g_strerror(errno));
            return false;
        }
        payload_user_sregs(&v->init_sregs, cr3);
        v->start_runnable = true;
        v->init_regs = (struct kvm_regs){
            .rip = img.entry,
            .rdi = SP_BOOTINFO_GPA,
            .rsi = i,
            .rsp = SP_STACKS_GPA + (uint64_t)(i + 1) * SP_STACK_SIZE,
            .rflags = RFLAGS_IOPL3 | RFLAGS_RESERVED,
        };
    }
    return true;
}
