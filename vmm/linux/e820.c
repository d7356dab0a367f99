/* SPDX-License-Identifier: MIT */
/* e820.c - the guest's e820 memory map (see e820.h). */
#include "vmm/linux/e820.h"
#include "vmm/linux/layout.h"

size_t sp_linux_e820_build(uint64_t ram_size, struct boot_e820_entry *out, size_t max)
{
    if (max < 3 || ram_size <= SP_LINUX_HIMEM_GPA)
        return 0;
    out[0] = (struct boot_e820_entry){.addr = 0, .size = SP_LINUX_EBDA_GPA, .type = SP_E820_RAM};
    out[1] = (struct boot_e820_entry){.addr = SP_LINUX_EBDA_GPA,
                                      .size = SP_LINUX_HIMEM_GPA - SP_LINUX_EBDA_GPA,
                                      .type = SP_E820_RESERVED};
    out[2] = (struct boot_e820_entry){
        .addr = SP_LINUX_HIMEM_GPA, .size = ram_size - SP_LINUX_HIMEM_GPA, .type = SP_E820_RAM};
    return 3;
}
