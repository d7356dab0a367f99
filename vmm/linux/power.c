/* SPDX-License-Identifier: MIT */
/* power.c - power-off and reboot ports of Linux guests (see power.h). */
#include <string.h>

#include "vmm/linux/acpi.h"
#include "vmm/linux/power.h"

bool sp_linux_power_io(void *opaque, uint16_t port, uint8_t *data, uint32_t size, bool is_write)
{
    SpLinuxPower *pw = opaque;

    uint16_t en_port = SP_ACPI_PM1A_EVT_PORT + 2;
    if (!is_write) {
        memset(data, 0, size);
        if (port == en_port || port == en_port + 1) {
            uint16_t en = __atomic_load_n(&pw->pm1_enable, __ATOMIC_RELAXED);
            data[0] = (uint8_t)(port == en_port ? en : en >> 8);
            if (port == en_port && size >= 2)
                data[1] = (uint8_t)(en >> 8);
        }
        return true;
    }
    if (port == en_port) {
        uint16_t v = size >= 2 ? (uint16_t)(data[0] | data[1] << 8) : data[0];
        if (size == 1)
            v |= __atomic_load_n(&pw->pm1_enable, __ATOMIC_RELAXED) & 0xff00;
        __atomic_store_n(&pw->pm1_enable, v, __ATOMIC_RELAXED);
        return true;
    }
    switch (port) {
    case SP_ACPI_PM1A_CNT_PORT:
        if (sp_acpi_pm1_cnt_is_poweroff(size >= 2 ? (uint16_t)(data[0] | data[1] << 8) : data[0]))
            pw->fn(pw->opaque, false);
        break;
    case SP_ACPI_PM1A_CNT_PORT + 1: /* byte access to the high half */
        if (size == 1 && sp_acpi_pm1_cnt_is_poweroff((uint16_t)(data[0] << 8)))
            pw->fn(pw->opaque, false);
        break;
    case SP_ACPI_RESET_PORT:
        if (data[0] == SP_ACPI_RESET_VALUE)
            pw->fn(pw->opaque, true);
        break;
    case SP_I8042_CMD_PORT:
        if (data[0] == SP_I8042_RESET_CMD)
            pw->fn(pw->opaque, true);
        break;
    default:
        break;
    }
    return true;
}
