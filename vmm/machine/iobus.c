/* SPDX-License-Identifier: MIT */
/* iobus.c - port I/O dispatch (see iobus.h). */
#include <string.h>

#include "vmm/machine/iobus.h"

bool sp_iobus_register(SpIoBus *bus, uint16_t base, uint16_t len, SpIoHandler h, void *opaque)
{
    if (bus->n >= SP_IOBUS_MAX_DEVICES || len == 0 || (uint32_t)base + len > 0x10000)
        return false;
    for (unsigned i = 0; i < bus->n; i++) {
        const SpIoRange *r = &bus->ranges[i];
        if (base < r->base + r->len && r->base < base + len)
            return false; /* overlap */
    }
    bus->ranges[bus->n++] = (SpIoRange){.base = base, .len = len, .handler = h, .opaque = opaque};
    return true;
}

bool sp_iobus_access(SpIoBus *bus, uint16_t port, uint8_t *data, uint32_t size, bool is_write)
{
    for (unsigned i = 0; i < bus->n; i++) {
        const SpIoRange *r = &bus->ranges[i];
        if (port >= r->base && port < r->base + r->len)
            return r->handler(r->opaque, port, data, size, is_write);
    }
    if (bus->strict)
        return false;
    if (!is_write)
        memset(data, 0xff, size);
    return true;
}
