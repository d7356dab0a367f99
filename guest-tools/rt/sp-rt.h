/* SPDX-License-Identifier: MIT */
/*
 * sp-rt.h - the tiny runtime every guest-tools payload links with.
 *
 * Payloads run in 64-bit user mode with no OS: there is no libc, no
 * interrupts and no exception handler (a fault ends the VM as crashed).
 * Everything they need from the outside world goes through the control port
 * (vmm/guest-abi.h).  These helpers are reentrant: each vCPU builds its
 * request on its own stack.
 */
#ifndef SP_RT_H
#define SP_RT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "vmm/guest-abi.h"

int sp_main(const SpBootInfo *info, uint32_t vcpu);

int32_t sp_ctl(uint32_t op, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t *out0, uint64_t *out1);
void sp_puts(const char *s);
void sp_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sp_phase(uint64_t n, const char *label);
void sp_result(const char *key, uint64_t value);
void sp_integrity(uint64_t gpa, uint64_t expected, uint64_t found);
void sp_round(uint64_t round, uint64_t verified, uint64_t rewritten);
uint64_t sp_time_ns(void);
uint64_t sp_query(uint64_t key);
__attribute__((noreturn)) void sp_exit(int status);

size_t sp_strlen(const char *s);
int sp_snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* gcc may emit calls to these even with -ffreestanding. */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);

/* A spin barrier over all vCPUs (guest memory is coherent; no OS needed). */
typedef struct SpBarrier {
    volatile uint32_t count;
    volatile uint32_t generation;
} SpBarrier;
void sp_barrier_wait(SpBarrier *b, uint32_t nvcpus);

static inline void sp_cpu_relax(void)
{
    __asm__ volatile("pause");
}

/* A guest exit that the host's kernel handles itself (KVM intercepts
 * CPUID, at any privilege level), about a microsecond on a KVM host. */
static inline void sp_cpu_exit(void)
{
    uint32_t a = 0, b, c = 0, d;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
}

/* One step of a spin-wait (*steps: the wait's count, from 0): a pause,
 * and every 1024th step an exit, so that a long spin gives its host CPU
 * back to the host's kernel now and then, whatever its interrupts do.
 * Inside the emulated host (a KVM host under QEMU's TCG) a vCPU spun in
 * sp_barrier_wait for minutes without one: that CPU's timer never took
 * it out of the guest, and the host's processes waiting on it never ran
 * again (a frozen emulated host, seen in CI). */
static inline void sp_spin_step(uint32_t *steps)
{
    sp_cpu_relax();
    if ((++*steps & 1023) == 0)
        sp_cpu_exit();
}

#endif
