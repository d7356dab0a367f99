/* SPDX-License-Identifier: MIT */
/*
 * guest-abi.h - the contract between samepage and guest-tools payloads.
 *
 * Shared by the VMM (vmm/) and the freestanding payloads (guest-tools/), so
 * it uses only fixed-width integer types and no libc.  docs/guest-abi.md is
 * the prose version of this file; keep them in step.
 *
 * Boot: every vCPU starts at the ELF entry point in 64-bit user mode (CPL 3,
 * IOPL 3, interrupts off) with
 *   rdi = guest address of the SpBootInfo block (same for every vCPU)
 *   rsi = this vCPU's index (0 .. vcpu_count-1)
 *   rsp = top of this vCPU's stack (16-byte aligned, SP_STACK_SIZE bytes)
 * Guest virtual addresses equal guest physical addresses (identity map over
 * all of RAM, user-accessible, writable, 2 MiB pages).
 *
 * Control port: the guest builds an SpCtlRequest in its own memory (below
 * 4 GiB, 8-byte aligned, not crossing a page boundary) and executes
 *   outl %eax, $SP_CTL_PORT      with eax = guest address of the request.
 * The VMM handles it synchronously on that vCPU's thread and writes `ret`
 * (and for queries `arg*`) back before the guest resumes.  A malformed
 * request (bad address, unknown op, oversized length) sets ret to a negative
 * SP_CTL_E* code; it never stops the VM.
 */
#ifndef SAMEPAGE_GUEST_ABI_H
#define SAMEPAGE_GUEST_ABI_H

#include <stdint.h>

#define SP_BOOT_MAGIC   0x5350424f4f543031ULL /* "SPBOOT01" */
#define SP_BOOT_VERSION 1

/* Fixed guest-physical layout of a payload VM. */
#define SP_BOOTINFO_GPA    0x1000ULL     /* SpBootInfo, one page */
#define SP_ARGS_GPA        0x2000ULL     /* argument string, NUL-terminated */
#define SP_ARGS_MAX        4095          /* longest argument string */
#define SP_TSS_GPA         0x4000ULL     /* 64-bit TSS + all-allowing I/O bitmap */
#define SP_PGTABLE_GPA     0x10000ULL    /* PML4, PDPT, then one PD per GiB */
#define SP_PGTABLE_END     0x100000ULL   /* => at most 238 GiB of guest RAM */
#define SP_STACKS_GPA      0x100000ULL   /* vCPU i stack: [base+i*size, +size) */
#define SP_STACK_SIZE      0x8000ULL     /* 32 KiB per vCPU */
#define SP_MAX_VCPUS       64            /* stacks end at SP_PAYLOAD_MIN_GPA */
#define SP_PAYLOAD_MIN_GPA 0x400000ULL   /* lowest address a PT_LOAD may use */
#define SP_PAYLOAD_MAX_GPA 0x40000000ULL /* PT_LOADs end below 1 GiB */

#define SP_CTL_PORT 0x5e0

typedef struct SpBootInfo {
    uint64_t magic;      /* SP_BOOT_MAGIC */
    uint32_t version;    /* SP_BOOT_VERSION */
    uint32_t vcpu_count; /* number of vCPUs started at the entry point */
    uint64_t ram_size;   /* bytes of guest RAM, from GPA 0 */
    uint64_t args_gpa;   /* NUL-terminated argument string */
    uint64_t args_len;   /* its length without the NUL */
    uint64_t blob_gpa;   /* image blob placed by the VMM (0 if none) */
    uint64_t blob_size;  /* its size in bytes, a multiple of 4096 */
    uint64_t free_gpa;   /* first byte the payload may use freely (2 MiB aligned) */
    uint64_t free_end;   /* end of usable RAM (== ram_size) */
    uint64_t vm_id;      /* per-VM number, distinct among running VMs */
    char vm_name[64];    /* the VM's name, NUL-terminated */
} SpBootInfo;

/* Control-port operations. */
enum {
    SP_CTL_CONSOLE = 1,   /* arg0 = gpa of text, arg1 = length (<= 4096) */
    SP_CTL_PHASE = 2,     /* arg0 = phase number, arg1/arg2 = gpa/len of a label */
    SP_CTL_RESULT = 3,    /* arg0 = gpa of key, arg1 = key length (<= 64), arg2 = value */
    SP_CTL_INTEGRITY = 4, /* arg0 = failing guest address, arg1 = expected, arg2 = found */
    SP_CTL_EXIT = 5,      /* arg0 = exit status (0 = success) */
    SP_CTL_TIME = 6,      /* returns arg0 = host monotonic time in ns */
    SP_CTL_ROUND = 7, /* arg0 = round number done, arg1 = pages verified, arg2 = pages rewritten */
    SP_CTL_QUERY = 8, /* arg0 = SP_Q_* key; returns arg1 = value */
};

/* Keys for SP_CTL_QUERY. */
enum {
    SP_Q_CLONE_GENERATION = 1, /* 0 = not a clone; n = clone of a clone... */
    SP_Q_CLONE_ID = 2,         /* per-clone number, distinct within a family */
    SP_Q_PAUSE_REQUESTED = 3,  /* 1 if the VMM wants the payload to stop writing */
    SP_Q_COMMAND = 4,          /* the host's latest command word (0 = none), see below */
};

/* Command word (SP_Q_COMMAND): bits 63..32 a sequence number the host bumps
 * for every command (never 0), 31..24 an opcode, 23..0 an argument.  The
 * meaning of opcodes is the payload's (memload: docs/memload.md). */
#define SP_CMD_WORD(seq, op, arg)                                                                  \
    (((uint64_t)(seq) << 32) | ((uint64_t)((op)&0xff) << 24) | ((uint64_t)(arg)&0xffffff))

#define SP_CTL_OK     0
#define SP_CTL_EFAULT (-1) /* an address is outside guest RAM */
#define SP_CTL_EINVAL (-2) /* unknown op or key, length too large */

typedef struct SpCtlRequest {
    uint32_t op; /* SP_CTL_* */
    int32_t ret; /* written by the VMM: SP_CTL_OK or SP_CTL_E* */
    uint64_t arg0;
    uint64_t arg1;
    uint64_t arg2;
} SpCtlRequest;

#endif /* SAMEPAGE_GUEST_ABI_H */
