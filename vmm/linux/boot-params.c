/* SPDX-License-Identifier: MIT */
/* boot-params.c - placement and zero page of a Linux boot (see boot-params.h). */
#include <string.h>

#include "vmm/linux/boot-params.h"
#include "vmm/linux/e820.h"
#include "vmm/linux/layout.h"
#include "vmm/vm-error.h"

#define MIB(x)       ((unsigned long long)((x) >> 20))
#define PAGE_DOWN(x) ((x) & ~0xfffULL)

bool sp_linux_plan(const SpBzImage *img, uint64_t ram_size, uint64_t cmdline_len,
                   uint64_t initrd_size, SpLinuxPlan *plan, GError **error)
{
    memset(plan, 0, sizeof *plan);
    if (ram_size > SP_LINUX_MEM_MAX) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_UNSUPPORTED,
                    "Linux guests can have at most %llu MiB of RAM (asked for %llu MiB)",
                    MIB(SP_LINUX_MEM_MAX), MIB(ram_size));
        return false;
    }
    uint64_t need = img->init_size > img->kernel_size ? img->init_size : img->kernel_size;
    uint64_t kernel_end = img->pref_address + need;
    if (kernel_end > ram_size) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_NO_SPACE,
                    "kernel needs RAM up to %llu MiB (load address %llu MiB + init_size), the VM "
                    "has %llu MiB",
                    MIB(kernel_end + 0xfffff), MIB(img->pref_address), MIB(ram_size));
        return false;
    }
    if (cmdline_len > img->cmdline_max || cmdline_len >= SP_LINUX_CMDLINE_ROOM) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_INVALID,
                    "kernel command line is %llu bytes, this kernel accepts at most %u",
                    (unsigned long long)cmdline_len,
                    (unsigned)MIN(img->cmdline_max, SP_LINUX_CMDLINE_ROOM - 1));
        return false;
    }
    plan->ram_size = ram_size;
    plan->kernel_gpa = img->pref_address;
    plan->kernel_end = kernel_end;
    plan->entry_gpa = img->pref_address + SP_BZIMAGE_ENTRY64_OFFSET;
    plan->cmdline_gpa = SP_LINUX_CMDLINE_GPA;
    plan->cmdline_len = cmdline_len;
    if (initrd_size > 0) {
        uint64_t limit = MIN(ram_size, (uint64_t)img->initrd_addr_max + 1);
        uint64_t lowest = (kernel_end + 0xfff) & ~0xfffULL;
        if (initrd_size > limit || PAGE_DOWN(limit - initrd_size) < lowest) {
            g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_NO_SPACE,
                        "initrd of %llu MiB does not fit between the kernel's end (%llu MiB) and "
                        "%llu MiB: give the VM more memory",
                        MIB(initrd_size + 0xfffff), MIB(lowest), MIB(limit));
            return false;
        }
        plan->initrd_gpa = PAGE_DOWN(limit - initrd_size);
        plan->initrd_size = initrd_size;
    }
    return true;
}

void sp_linux_boot_params_fill(struct boot_params *bp, const SpBzImage *img,
                               const SpLinuxPlan *plan)
{
    memset(bp, 0, sizeof *bp);
    bp->hdr = img->hdr;
    bp->hdr.type_of_loader = 0xff; /* undefined boot loader */
    bp->hdr.loadflags |= CAN_USE_HEAP;
    bp->hdr.heap_end_ptr = 0xfe00 - 0x200;
    bp->hdr.vid_mode = 0xffff; /* "normal" text mode; the console is ttyS0 */
    bp->hdr.code32_start = (uint32_t)plan->kernel_gpa;
    bp->hdr.cmd_line_ptr = (uint32_t)plan->cmdline_gpa;
    bp->ext_cmd_line_ptr = (uint32_t)(plan->cmdline_gpa >> 32);
    bp->hdr.ramdisk_image = (uint32_t)plan->initrd_gpa;
    bp->ext_ramdisk_image = (uint32_t)(plan->initrd_gpa >> 32);
    bp->hdr.ramdisk_size = (uint32_t)plan->initrd_size;
    bp->ext_ramdisk_size = (uint32_t)(plan->initrd_size >> 32);
    bp->e820_entries =
        (uint8_t)sp_linux_e820_build(plan->ram_size, bp->e820_table, G_N_ELEMENTS(bp->e820_table));
}
