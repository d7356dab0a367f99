/* SPDX-License-Identifier: MIT */
/* acpi.c - minimal hardware-reduced ACPI tables (see acpi.h).  Field offsets
 * are those of the ACPI 6.x specification (FADT: table 5.9). */
#include <string.h>

#include "vmm/linux/acpi.h"

#define RSDP_OFF            0x00  /* 36 bytes */
#define XSDT_OFF            0x40  /* 36 + 2 * 8 */
#define FADT_OFF            0x80  /* 276 */
#define DSDT_OFF            0x1a0 /* 36 + AML */
#define FACS_OFF            0x200 /* 64, 64-byte aligned */
#define MADT_OFF            0x240 /* 44 + 8 per CPU + 12 + 6 */
#define MADT_PCAT_COMPAT    1
#define IOAPIC_GPA          0xfec00000u
#define LAPIC_GPA           0xfee00000u
#define FADT_LEN            276
#define SCI_IRQ             9
#define FADT_RESET_REG_SUP  (1u << 10)
#define IAPC_LEGACY_DEVICES (1u << 0)
#define IAPC_NO_VGA         (1u << 2)
#define IAPC_NO_CMOS_RTC    (1u << 5)
#define SLP_EN              (1u << 13)

/* Name(_S5_, Package(4){0x05, 0x05, Zero, Zero}) */
static const uint8_t dsdt_aml[] = {
    0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0a, SP_ACPI_S5_TYPE, 0x0a, SP_ACPI_S5_TYPE,
    0x00, 0x00};

static uint8_t sum(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    while (n--)
        s += *p++;
    return s;
}

static void put16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, 2);
}
static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}
static void put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
    memcpy(t, sig, 4);
    put32(t + 4, len);
    t[8] = rev;
    memcpy(t + 10, "SMPAGE", 6);
    memcpy(t + 16, "SAMEPAGE", 8);
    put32(t + 24, 1);
    memcpy(t + 28, "SMPG", 4);
    put32(t + 32, 1);
}

/* Generic Address Structure: system I/O, `bits`-wide register. */
static void gas_io(uint8_t *g, uint16_t port, uint8_t bits)
{
    g[0] = 1;                         /* system I/O space */
    g[1] = bits;                      /* register bit width */
    g[2] = 0;                         /* bit offset */
    g[3] = bits >= 32 ? 3 : bits / 8; /* access size: 1 byte, 2 word, 3 dword */
    put64(g + 4, port);
}

size_t sp_acpi_tables_size(uint32_t ncpus)
{
    return MADT_OFF + 44 + 8 * (size_t)ncpus + 12 + 6;
}

uint64_t sp_acpi_tables_write(uint8_t *buf, size_t room, uint64_t gpa, uint32_t ncpus)
{
    uint32_t dsdt_len = 36 + sizeof dsdt_aml;
    size_t size = sp_acpi_tables_size(ncpus);
    if (ncpus < 1 || ncpus > 254 || room < size || DSDT_OFF + dsdt_len > MADT_OFF)
        return 0;
    memset(buf, 0, size);

    /* MADT: one enabled LAPIC per vCPU (APIC ID = index), the IOAPIC with
     * GSI base 0 and APIC ID ncpus, LINT1 = NMI on every processor. */
    uint8_t *m = buf + MADT_OFF;
    uint32_t madt_len = (uint32_t)(size - MADT_OFF);
    header(m, "APIC", madt_len, 4);
    put32(m + 36, LAPIC_GPA);
    put32(m + 40, MADT_PCAT_COMPAT);
    uint8_t *e = m + 44;
    for (uint32_t i = 0; i < ncpus; i++, e += 8) {
        e[0] = 0; /* processor local APIC */
        e[1] = 8;
        e[2] = (uint8_t)i; /* ACPI processor UID */
        e[3] = (uint8_t)i; /* APIC ID */
        put32(e + 4, 1);   /* enabled */
    }
    e[0] = 1; /* I/O APIC */
    e[1] = 12;
    e[2] = (uint8_t)ncpus;
    put32(e + 4, IOAPIC_GPA);
    put32(e + 8, 0); /* GSI base */
    e += 12;
    e[0] = 4; /* local APIC NMI */
    e[1] = 6;
    e[2] = 0xff;     /* all processors */
    put16(e + 3, 0); /* conforming */
    e[5] = 1;        /* LINT1 */
    m[9] = (uint8_t)-sum(m, madt_len);

    uint8_t *dsdt = buf + DSDT_OFF;
    header(dsdt, "DSDT", dsdt_len, 2);
    memcpy(dsdt + 36, dsdt_aml, sizeof dsdt_aml);
    dsdt[9] = (uint8_t)-sum(dsdt, dsdt_len);

    uint8_t *facs = buf + FACS_OFF;
    memcpy(facs, "FACS", 4);
    put32(facs + 4, 64);
    facs[32] = 2; /* version */

    uint8_t *f = buf + FADT_OFF;
    header(f, "FACP", FADT_LEN, 6);
    put32(f + 36, (uint32_t)(gpa + FACS_OFF)); /* FIRMWARE_CTRL */
    put32(f + 40, (uint32_t)(gpa + DSDT_OFF)); /* DSDT */
    put16(f + 46, SCI_IRQ);                    /* SCI_INT (never raised) */
    put32(f + 56, SP_ACPI_PM1A_EVT_PORT);      /* PM1a_EVT_BLK */
    put32(f + 64, SP_ACPI_PM1A_CNT_PORT);      /* PM1a_CNT_BLK */
    f[88] = 4;                                 /* PM1_EVT_LEN */
    f[89] = 2;                                 /* PM1_CNT_LEN */
    put16(f + 109, IAPC_LEGACY_DEVICES | IAPC_NO_VGA | IAPC_NO_CMOS_RTC); /* IAPC_BOOT_ARCH */
    put32(f + 112, FADT_RESET_REG_SUP);                                   /* Flags */
    gas_io(f + 116, SP_ACPI_RESET_PORT, 8);                               /* RESET_REG */
    f[128] = SP_ACPI_RESET_VALUE;                                         /* RESET_VALUE */
    f[131] = 4;                                 /* FADT minor version (6.4) */
    put64(f + 132, gpa + FACS_OFF);             /* X_FIRMWARE_CTRL */
    put64(f + 140, gpa + DSDT_OFF);             /* X_DSDT */
    gas_io(f + 148, SP_ACPI_PM1A_EVT_PORT, 32); /* X_PM1a_EVT_BLK */
    gas_io(f + 172, SP_ACPI_PM1A_CNT_PORT, 16); /* X_PM1a_CNT_BLK */
    memcpy(f + 268, "SAMEPAGE", 8);             /* hypervisor vendor */
    f[9] = (uint8_t)-sum(f, FADT_LEN);

    uint8_t *x = buf + XSDT_OFF;
    header(x, "XSDT", 36 + 16, 1);
    put64(x + 36, gpa + FADT_OFF);
    put64(x + 44, gpa + MADT_OFF);
    x[9] = (uint8_t)-sum(x, 52);

    uint8_t *r = buf + RSDP_OFF;
    memcpy(r, "RSD PTR ", 8);
    memcpy(r + 9, "SMPAGE", 6);
    r[15] = 2;         /* revision: ACPI 2.0+ */
    put32(r + 16, 0);  /* no RSDT */
    put32(r + 20, 36); /* length */
    put64(r + 24, gpa + XSDT_OFF);
    r[8] = (uint8_t)-sum(r, 20);  /* checksum of the ACPI 1.0 part */
    r[32] = (uint8_t)-sum(r, 36); /* extended checksum */
    return gpa + RSDP_OFF;
}

bool sp_acpi_pm1_cnt_is_poweroff(uint16_t value)
{
    return (value & SLP_EN) && ((value >> 10) & 7) == SP_ACPI_S5_TYPE;
}
