/* SPDX-License-Identifier: MIT */
/*
 * mptable.h - Intel MultiProcessor Specification 1.4 table for Linux guests.
 *
 * Without ACPI, Linux learns its CPUs, the IOAPIC and the ISA interrupt
 * routing from the MP table.  samepage writes a floating pointer ("_MP_") at
 * SP_LINUX_MPTABLE_GPA (inside the BIOS area Linux scans, 0xf0000-0xfffff,
 * reserved in the e820 map) followed by the configuration table ("PCMP"):
 *   - one processor entry per vCPU, APIC ID = vCPU index, vCPU 0 is the BSP;
 *   - one ISA bus (id 0);
 *   - the in-kernel IOAPIC at 0xfec00000 with APIC ID = vcpu_count;
 *   - ISA IRQ n -> IOAPIC pin n for n = 0..15 (KVM's default GSI routing;
 *     the 8250 on COM1 is IRQ 4, pin 4);
 *   - ExtINT on LINT0 and NMI on LINT1 of every LAPIC.
 * Checksums make each structure's bytes sum to zero.
 *
 * Pure: writes into a caller buffer that represents guest memory at `gpa`.
 */
#ifndef SAMEPAGE_VMM_LINUX_MPTABLE_H
#define SAMEPAGE_VMM_LINUX_MPTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <gio/gio.h>

#define SP_MPTABLE_MAX_CPUS 254 /* 8-bit APIC IDs, one left for the IOAPIC */

/* Bytes the table needs for `ncpus`. */
size_t sp_mptable_size(uint32_t ncpus);

/* Write it to buf (which is guest memory at `gpa`, `room` bytes long). */
bool sp_mptable_write(uint8_t *buf, size_t room, uint64_t gpa, uint32_t ncpus, GError **error);

#endif
