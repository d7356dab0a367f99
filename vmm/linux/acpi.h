/* SPDX-License-Identifier: MIT */
/*
 * acpi.h - minimal ACPI tables: just enough for a Linux guest to find its
 * CPUs and to power off and reboot through I/O ports.
 *
 * Why: without ACPI, Linux turns `poweroff -f` into a halt (no pm_power_off
 * handler): every vCPU ends in cli; hlt, which the in-kernel LAPIC keeps
 * inside KVM, so the VMM never learns the guest is done.  With these tables
 * Linux's ACPI power-off writes SLP_TYP|SLP_EN to the FADT's sleep control
 * register and its reboot writes RESET_VALUE to the reset register, both
 * I/O ports the VMM traps (SP_ACPI_SLEEP_CTL_PORT, SP_ACPI_RESET_PORT).
 *
 * Tables, at SP_ACPI_GPA (inside the reserved BIOS area, where Linux scans
 * for the RSDP on legacy boots):
 *   RSDP (rev 2) -> XSDT -> FADT (rev 6, RESET_REG_SUP, PM1a event/control
 *   blocks and reset register in I/O space) -> FACS, and -> DSDT whose only
 *   content is Name(_S5_, Package(){5, 5, 0, 0}) (S5 sleep type 5);
 *   XSDT -> MADT: the vCPUs' LAPICs (APIC ID = vCPU index), the IOAPIC
 *   (APIC ID = vCPU count, GSI base 0), NMI on LINT1.  The MADT is required:
 *   when ACPI is present without one, Linux ignores the MP table ("No
 *   APIC-table, disabling MPS") and boots a single CPU.
 * zero_page.acpi_rsdp_addr points at the RSDP as well.
 *
 * The VMM's decoding (sp_acpi_pm1_cnt_is_poweroff): a write to PM1a_CNT with
 * SLP_EN (bit 13) set and SLP_TYP (bits 10..12) = 5 is a power-off; a write
 * of SP_ACPI_RESET_VALUE to the reset port is a reboot.
 *
 * Pure: writes into a caller buffer that represents guest memory at `gpa`.
 */
#ifndef SAMEPAGE_VMM_LINUX_ACPI_H
#define SAMEPAGE_VMM_LINUX_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP_ACPI_PORT_BASE     0x600 /* first of the ACPI ports */
#define SP_ACPI_PM1A_EVT_PORT 0x600 /* PM1a status (2) + enable (2): read 0 */
#define SP_ACPI_PM1A_CNT_PORT 0x604 /* PM1a control, 16 bits */
#define SP_ACPI_RESET_PORT    0x608 /* FADT RESET_REG, 1 byte */
#define SP_ACPI_PORT_COUNT    9
#define SP_ACPI_RESET_VALUE   0x0f
#define SP_ACPI_S5_TYPE       5

/* Bytes the tables take for `ncpus` vCPUs. */
size_t sp_acpi_tables_size(uint32_t ncpus);

/* Write RSDP, XSDT, FADT, DSDT and MADT at buf (= guest memory at `gpa`,
 * `room` bytes).  Returns the RSDP's guest address, or 0 if room is too
 * small or ncpus is outside 1..254. */
uint64_t sp_acpi_tables_write(uint8_t *buf, size_t room, uint64_t gpa, uint32_t ncpus);

/* Does this value written to PM1a_CNT ask for power-off (S5)? */
bool sp_acpi_pm1_cnt_is_poweroff(uint16_t value);

#endif
