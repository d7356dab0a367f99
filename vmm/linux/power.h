/* SPDX-License-Identifier: MIT */
/*
 * power.h - the ports through which a Linux guest powers off or reboots.
 *
 *   SP_ACPI_PM1A_CNT_PORT   write with SLP_EN and SLP_TYP = S5: power off
 *                           (Linux's ACPI power-off, what `poweroff -f` does)
 *   SP_ACPI_PM1A_EVT_PORT   PM1 status (+0, reads 0: no event is ever pending)
 *                           and enable (+2, keeps what the guest writes, so
 *                           ACPICA's read-back check of GBL_EN succeeds)
 *   SP_ACPI_RESET_PORT      write of SP_ACPI_RESET_VALUE: reboot (Linux's
 *                           default reboot method is the ACPI reset register)
 *   0x64 (i8042 command)    write of 0xfe (pulse reset line): reboot, the
 *                           fallback Linux tries next; reads return 0 (input
 *                           buffer empty) so its kb_wait() does not spin
 * The handler calls `fn(opaque, reboot)` once per request; the VMM ends the
 * VM (samepage maps both to "exited with status 0"; a reboot is reported as
 * such in the reason).
 *
 * State: the PM1 enable word, accessed atomically: safe on any vCPU thread.
 */
#ifndef SAMEPAGE_VMM_LINUX_POWER_H
#define SAMEPAGE_VMM_LINUX_POWER_H

#include <stdbool.h>
#include <stdint.h>

#define SP_I8042_CMD_PORT  0x64
#define SP_I8042_RESET_CMD 0xfe

typedef struct SpLinuxPower {
    void (*fn)(void *opaque, bool reboot); /* called on power-off or reboot */
    void *opaque;
    uint16_t pm1_enable; /* PM1 enable register (atomic) */
} SpLinuxPower;

/* SpIoHandler for [SP_ACPI_PORT_BASE, +SP_ACPI_PORT_COUNT) and SP_I8042_CMD_PORT. */
bool sp_linux_power_io(void *power, uint16_t port, uint8_t *data, uint32_t size, bool is_write);

#endif
