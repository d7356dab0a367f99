/* SPDX-License-Identifier: MIT */
/* hello - the smallest payload: greets on the console and through the UART,
 * then exits with the status given as its argument ("status=N"), or with
 * "spin" keeps every vCPU busy until the host stops the VM. */
#include "guest-tools/rt/sp-rt.h"

static SpBarrier barrier;

int sp_main(const SpBootInfo *info, uint32_t vcpu)
{
    int status = 0;
    const char *a = (const char *)(uintptr_t)info->args_gpa;
    for (; *a; a++)
        if (a[0] == 's' && a[1] == 't' && a[2] == 'a' && a[3] == 't' && a[4] == 'u' &&
            a[5] == 's' && a[6] == '=')
            for (a += 7, status = 0; *a >= '0' && *a <= '9'; a++)
                status = status * 10 + (*a - '0');
    sp_printf("hello from vcpu %u of %u on %s, ram %lu MiB\n", vcpu, info->vcpu_count,
              info->vm_name, (unsigned long)(info->ram_size >> 20));
    sp_barrier_wait(&barrier, info->vcpu_count);
    const char *all = (const char *)(uintptr_t)info->args_gpa;
    bool spin = false;
    for (; *all; all++)
        if (all[0] == 's' && all[1] == 'p' && all[2] == 'i' && all[3] == 'n')
            spin = true;
    if (vcpu == 0 && !spin) {
        /* Also exercise the 8250: plain byte writes to the THR. */
        for (const char *s = "uart ok\n"; *s; s++)
            __asm__ volatile("outb %0, %1" : : "a"(*s), "Nd"((uint16_t)0x3f8));
        sp_exit(status);
    }
    for (uint32_t steps = 0;;)
        sp_spin_step(&steps);
}
