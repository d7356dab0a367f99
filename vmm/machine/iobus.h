/* SPDX-License-Identifier: MIT */
/*
 * iobus.h - x86 port I/O dispatch for one VM.
 *
 * Devices register a port range and a handler at VM creation; the table is
 * immutable once vCPUs run, so lookups take no lock.  Handlers run on the
 * vCPU thread that exited and do their own locking.
 *
 * An access to a port nobody registered is, on a *strict* bus (payload VMs),
 * an unexpected exit that crashes the VM; on a lenient bus (Linux guests,
 * which probe many legacy ports) reads return all-ones and writes vanish.
 */
#ifndef SAMEPAGE_VMM_IOBUS_H
#define SAMEPAGE_VMM_IOBUS_H

#include <stdbool.h>
#include <stdint.h>

/* `data` holds `size` bytes (1, 2 or 4), little-endian.  Return false if the
 * access is not acceptable (the VM then crashes with `why`, if set). */
typedef bool (*SpIoHandler)(void *opaque, uint16_t port, uint8_t *data, uint32_t size,
                            bool is_write);

#define SP_IOBUS_MAX_DEVICES 16

typedef struct SpIoRange {
    uint16_t base; /* first port */
    uint16_t len;  /* number of ports */
    SpIoHandler handler;
    void *opaque;
} SpIoRange;

typedef struct SpIoBus {
    SpIoRange ranges[SP_IOBUS_MAX_DEVICES];
    unsigned n;  /* ranges in use */
    bool strict; /* unknown ports crash the VM */
} SpIoBus;

bool sp_iobus_register(SpIoBus *bus, uint16_t base, uint16_t len, SpIoHandler h, void *opaque);

/* Dispatch one access.  Returns false when it must crash the VM. */
bool sp_iobus_access(SpIoBus *bus, uint16_t port, uint8_t *data, uint32_t size, bool is_write);

#endif
