/* SPDX-License-Identifier: MIT */
/* mptable.c - MP specification 1.4 tables (see mptable.h). */
#include <string.h>

#include "vmm/linux/layout.h"
#include "vmm/linux/mptable.h"
#include "vmm/vm-error.h"

#define MP_SPEC_REV    4
#define LAPIC_VERSION  0x14
#define IOAPIC_VERSION 0x11
#define ISA_IRQS       16

struct mp_floating {
    char signature[4];   /* "_MP_" */
    uint32_t config_gpa; /* configuration table */
    uint8_t length;      /* in 16-byte units: 1 */
    uint8_t spec_rev;
    uint8_t checksum;
    uint8_t feature[5]; /* 0: a configuration table is present */
} __attribute__((packed));

struct mp_config {
    char signature[4]; /* "PCMP" */
    uint16_t length;   /* base table, header included */
    uint8_t spec_rev;
    uint8_t checksum;
    char oem[8];
    char product[12];
    uint32_t oem_table;
    uint16_t oem_size;
    uint16_t entry_count;
    uint32_t lapic_gpa;
    uint16_t ext_length;
    uint8_t ext_checksum;
    uint8_t reserved;
} __attribute__((packed));

struct mp_cpu {
    uint8_t type; /* 0 */
    uint8_t apic_id;
    uint8_t apic_version;
    uint8_t flags;      /* 1 = enabled, 2 = bootstrap processor */
    uint32_t signature; /* family/model/stepping */
    uint32_t features;  /* CPUID.1:EDX */
    uint32_t reserved[2];
} __attribute__((packed));

struct mp_bus {
    uint8_t type; /* 1 */
    uint8_t bus_id;
    char bus_type[6]; /* "ISA   " */
} __attribute__((packed));

struct mp_ioapic {
    uint8_t type; /* 2 */
    uint8_t apic_id;
    uint8_t version;
    uint8_t flags; /* 1 = usable */
    uint32_t gpa;
} __attribute__((packed));

struct mp_irq {
    uint8_t type;     /* 3 = I/O interrupt, 4 = local interrupt */
    uint8_t irq_type; /* 0 INT, 1 NMI, 2 SMI, 3 ExtINT */
    uint16_t flags;   /* 0 = conforming polarity/trigger */
    uint8_t src_bus;
    uint8_t src_irq;
    uint8_t dst_apic; /* 0xff = all LAPICs (local entries) */
    uint8_t dst_pin;
} __attribute__((packed));

G_STATIC_ASSERT(sizeof(struct mp_floating) == 16);
G_STATIC_ASSERT(sizeof(struct mp_config) == 44);
G_STATIC_ASSERT(sizeof(struct mp_cpu) == 20);
G_STATIC_ASSERT(sizeof(struct mp_bus) == 8);
G_STATIC_ASSERT(sizeof(struct mp_ioapic) == 8);
G_STATIC_ASSERT(sizeof(struct mp_irq) == 8);

static uint8_t checksum(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    while (n--)
        s += *p++;
    return (uint8_t)-s;
}

size_t sp_mptable_size(uint32_t ncpus)
{
    return sizeof(struct mp_floating) + sizeof(struct mp_config) + ncpus * sizeof(struct mp_cpu) +
           sizeof(struct mp_bus) + sizeof(struct mp_ioapic) + ISA_IRQS * sizeof(struct mp_irq) +
           2 * sizeof(struct mp_irq);
}

bool sp_mptable_write(uint8_t *buf, size_t room, uint64_t gpa, uint32_t ncpus, GError **error)
{
    if (ncpus < 1 || ncpus > SP_MPTABLE_MAX_CPUS) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_INVALID,
                    "Linux guests support 1 to %d vCPUs (asked for %u)", SP_MPTABLE_MAX_CPUS,
                    ncpus);
        return false;
    }
    size_t size = sp_mptable_size(ncpus);
    if (size > room || gpa + size > 0x100000000ULL) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_NO_SPACE, "MP table does not fit");
        return false;
    }
    memset(buf, 0, size);
    struct mp_floating *mpf = (struct mp_floating *)buf;
    struct mp_config *cfg = (struct mp_config *)(mpf + 1);
    uint8_t *p = (uint8_t *)(cfg + 1);
    uint8_t ioapic_id = (uint8_t)ncpus;
    uint16_t entries = 0;

    for (uint32_t i = 0; i < ncpus; i++) {
        struct mp_cpu c = {
            .type = 0,
            .apic_id = (uint8_t)i,
            .apic_version = LAPIC_VERSION,
            .flags = 1 | (i == 0 ? 2 : 0),
            .signature = 0x600,
            .features = 0x201,
        };
        memcpy(p, &c, sizeof c);
        p += sizeof c;
        entries++;
    }
    struct mp_bus bus = {.type = 1, .bus_id = 0, .bus_type = {'I', 'S', 'A', ' ', ' ', ' '}};
    memcpy(p, &bus, sizeof bus);
    p += sizeof bus;
    entries++;
    struct mp_ioapic io = {.type = 2,
                           .apic_id = ioapic_id,
                           .version = IOAPIC_VERSION,
                           .flags = 1,
                           .gpa = (uint32_t)SP_LINUX_IOAPIC_GPA};
    memcpy(p, &io, sizeof io);
    p += sizeof io;
    entries++;
    for (uint8_t irq = 0; irq < ISA_IRQS; irq++) {
        struct mp_irq e = {.type = 3,
                           .irq_type = 0,
                           .flags = 0,
                           .src_bus = 0,
                           .src_irq = irq,
                           .dst_apic = ioapic_id,
                           .dst_pin = irq};
        memcpy(p, &e, sizeof e);
        p += sizeof e;
        entries++;
    }
    struct mp_irq lint0 = {
        .type = 4, .irq_type = 3, .src_bus = 0, .src_irq = 0, .dst_apic = 0xff, .dst_pin = 0};
    struct mp_irq lint1 = {
        .type = 4, .irq_type = 1, .src_bus = 0, .src_irq = 0, .dst_apic = 0xff, .dst_pin = 1};
    memcpy(p, &lint0, sizeof lint0);
    p += sizeof lint0;
    memcpy(p, &lint1, sizeof lint1);
    p += sizeof lint1;
    entries += 2;

    memcpy(cfg->signature, "PCMP", 4);
    cfg->length = (uint16_t)(p - (uint8_t *)cfg);
    cfg->spec_rev = MP_SPEC_REV;
    memcpy(cfg->oem, "SAMEPAGE", 8);
    memcpy(cfg->product, "SAMEPAGE-VMM", 12);
    cfg->entry_count = entries;
    cfg->lapic_gpa = (uint32_t)SP_LINUX_LAPIC_GPA;
    cfg->checksum = checksum((const uint8_t *)cfg, cfg->length);

    memcpy(mpf->signature, "_MP_", 4);
    mpf->config_gpa = (uint32_t)(gpa + sizeof *mpf);
    mpf->length = 1;
    mpf->spec_rev = MP_SPEC_REV;
    mpf->checksum = checksum((const uint8_t *)mpf, sizeof *mpf);
    return true;
}
