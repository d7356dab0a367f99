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

#endif
