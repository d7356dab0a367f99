/* SPDX-License-Identifier: MIT */
/*
 * vm-config.h - what a VM is made of, and parsing it from the command line.
 *
 * A VM spec is a comma-separated list of key=value pairs, for example
 *   name=a,mem=256M,vcpus=2,numa=strict:0,payload=memload,args=seed=7,rate=100
 * `args=` must come last: it takes the rest of the spec verbatim, commas
 * included, because payload arguments use commas themselves.
 */
#ifndef SAMEPAGE_VMM_VM_CONFIG_H
#define SAMEPAGE_VMM_VM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <gio/gio.h>

#include "vmm/vm-placement.h"

#define SP_VM_NAME_MAX 63
#define SP_VM_MEM_MIN  (4ULL << 20)   /* payload layout needs at least 4 MiB + image */
#define SP_VM_MEM_MAX  (238ULL << 30) /* limit of the payload page tables */
/* The least a memory limit may give a VM: what a guest needs resident to
 * make progress at all (its code, stack, page tables and the pages a
 * vCPU touches in one instruction), with room; docs/swap.md. */
#define SP_VM_MEM_LIMIT_MIN (16ULL << 20)

typedef struct SpVmConfig {
    char *name;           /* unique among the VMs of one process */
    uint64_t mem_size;    /* bytes of guest RAM */
    uint32_t vcpus;       /* number of vCPUs */
    char *payload;        /* guest-tools payload path (resolved), or NULL for a kernel */
    char *args;           /* payload argument string, or NULL */
    char **images;        /* files concatenated into the image blob, or NULL */
    char *kernel;         /* Linux bzImage path, or NULL */
    char *initrd;         /* Linux initrd path, or NULL */
    char *cmdline;        /* Linux command line, or NULL */
    char *domain;         /* sharing domain; NULL = the VM's own */
    bool no_share;        /* opt this VM out of the sharing engine */
    uint64_t mem_limit;   /* bytes its guest RAM may occupy (swap beyond), 0 = none;
                           * the supervisor's alone (not in the VM process's text) */
    SpNumaMode numa_mode; /* memory policy (vm-placement.h), with */
    char *numa_nodes;     /* its host nodes ("0-1"), NULL for SP_NUMA_DEFAULT */
    char *cpuset;         /* host CPUs its VM process's threads may run on ("0-1"), NULL:
                           * any; the supervisor's alone (it pins them: sp_vm_start) */
} SpVmConfig;

SpVmConfig *sp_vm_config_new(void);
void sp_vm_config_free(SpVmConfig *cfg);
SpVmConfig *sp_vm_config_copy(const SpVmConfig *cfg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpVmConfig, sp_vm_config_free)

/* Parse a VM spec (see above).  Payload names without a '/' are looked up
 * with sp_payload_find().  On error nothing is allocated. */
SpVmConfig *sp_vm_config_parse(const char *spec, GError **error);

/* Check a config for consistency (sizes, vCPU count against `max_vcpus`,
 * exactly one of payload or kernel). */
bool sp_vm_config_validate(const SpVmConfig *cfg, int max_vcpus, GError **error);

/* The config as a supervisor hands it to its VM process (key=value lines,
 * values escaped), with the VM process's own flags: made unbooted for a
 * clone, guest RAM MADV_MERGEABLE (--engine=ksm).  _from_text checks it
 * like a spec (bounded: at most 256 lines). */
char *sp_vm_config_to_text(const SpVmConfig *cfg, bool clone_child, bool mergeable);
SpVmConfig *sp_vm_config_from_text(const char *text, bool *clone_child, bool *mergeable,
                                   GError **error);

/* Parse a size such as 4096, 64K, 256M, 4G, 1T (binary units).  Rejects
 * zero, negatives, overflow and trailing junk. */
bool sp_parse_size(const char *s, uint64_t *out, GError **error);

/* A size option of a command (--mem-limit, --swap-size, --swap-cache):
 * unset (NULL) leaves *out alone; "0" is 0 when zero_ok, else refused;
 * otherwise sp_parse_size, its error prefixed with "--OPT: ". */
bool sp_parse_size_option(const char *opt, const char *text, bool zero_ok, uint64_t *out,
                          GError **error);

/* Parse an unsigned decimal integer in [min, max]. */
bool sp_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, GError **error);

/* Find a payload by name ("memload" -> memload.elf) in $SAMEPAGE_PAYLOAD_DIR,
 * next to the running binary (build tree) and the install directory. */
char *sp_payload_find(const char *name, GError **error);

#endif
