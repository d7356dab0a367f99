/* SPDX-License-Identifier: MIT */
/*
 * test-linux-tables.c - the firmware-ish structures a Linux guest reads:
 * MP table (signatures, checksums, one processor entry per vCPU with the
 * BSP flag on vCPU 0, IOAPIC, ISA IRQ 4 -> pin 4 for the 8250), the ACPI
 * tables (checksums, links, PM1a/reset ports, _S5, one MADT LAPIC per vCPU)
 * and the power-off/reboot port decoding, the boot
 * GDT (flat 64-bit __BOOT_CS, flat __BOOT_DS), the per-vCPU CPUID, and the
 * vCPU state that sp_linux_vcpu_setup() gives a real KVM vCPU, read back
 * with KVM_GET_SREGS/KVM_GET_REGS/KVM_GET_CPUID2.
 */
#include <fcntl.h>
#include <glib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/machine/kvm.h"
#include "vmm/linux/acpi.h"
#include "vmm/linux/cpuid.h"
#include "vmm/linux/entry.h"
#include "vmm/linux/layout.h"
#include "vmm/linux/linux-boot.h"
#include "vmm/linux/mptable.h"
#include "vmm/linux/power.h"

static uint8_t sum(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    while (n--)
        s += *p++;
    return s;
}

static void test_mptable(void)
{
    for (uint32_t ncpus = 1; ncpus <= 64; ncpus *= 4) {
        guint8 *buf = g_malloc0(SP_LINUX_MPTABLE_ROOM);
        g_autoptr(GError) err = NULL;
        g_assert_true(
            sp_mptable_write(buf, SP_LINUX_MPTABLE_ROOM, SP_LINUX_MPTABLE_GPA, ncpus, &err));
        g_assert_cmpmem(buf, 4, "_MP_", 4);
        g_assert_cmpuint(sum(buf, 16), ==, 0);
        uint32_t cfg_gpa;
        memcpy(&cfg_gpa, buf + 4, 4);
        g_assert_cmpuint(cfg_gpa, ==, SP_LINUX_MPTABLE_GPA + 16);
        const guint8 *cfg = buf + (cfg_gpa - SP_LINUX_MPTABLE_GPA);
        g_assert_cmpmem(cfg, 4, "PCMP", 4);
        uint16_t len, count;
        memcpy(&len, cfg + 4, 2);
        memcpy(&count, cfg + 34, 2);
        g_assert_cmpuint(sum(cfg, len), ==, 0);
        g_assert_cmpuint(len + 16, ==, sp_mptable_size(ncpus));
        /* Walk the entries. */
        const guint8 *e = cfg + 44;
        uint32_t cpus = 0, bsp = 0, ioapics = 0, irq4_pin = 0xff;
        for (uint16_t i = 0; i < count; i++) {
            switch (e[0]) {
            case 0:
                g_assert_cmpuint(e[1], ==, cpus); /* APIC ID = vCPU index */
                g_assert_true(e[3] & 1);
                if (e[3] & 2) {
                    bsp++;
                    g_assert_cmpuint(e[1], ==, 0);
                }
                cpus++;
                e += 20;
                break;
            case 2:
                g_assert_cmpuint(e[1], ==, ncpus); /* distinct from every LAPIC */
                ioapics++;
                e += 8;
                break;
            case 3:
                if (e[5] == 4)
                    irq4_pin = e[7];
                e += 8;
                break;
            default:
                e += 8;
                break;
            }
        }
        g_assert_cmpuint(e - cfg, ==, len);
        g_assert_cmpuint(cpus, ==, ncpus);
        g_assert_cmpuint(bsp, ==, 1);
        g_assert_cmpuint(ioapics, ==, 1);
        g_assert_cmpuint(irq4_pin, ==, 4);
        g_free(buf);
    }
    guint8 small[64];
    g_autoptr(GError) err = NULL;
    g_assert_false(sp_mptable_write(small, sizeof small, SP_LINUX_MPTABLE_GPA, 2, &err));
    g_assert_false(sp_mptable_write(small, sizeof small, SP_LINUX_MPTABLE_GPA, 0, NULL));
}

static void test_gdt_and_pagetables(void)
{
    guint8 *ram = g_malloc0(2 << 20);
    g_assert_true(sp_linux_entry_tables_write(ram, 2 << 20, NULL));
    uint64_t cs, ds;
    memcpy(&cs, ram + SP_LINUX_GDT_GPA + SP_LINUX_BOOT_CS, 8);
    memcpy(&ds, ram + SP_LINUX_GDT_GPA + SP_LINUX_BOOT_DS, 8);
    g_assert_cmphex(cs, ==, 0x00af9b000000ffffull); /* flat, 64-bit, exec/read */
    g_assert_cmphex(ds, ==, 0x00cf93000000ffffull); /* flat, read/write */
    /* 4 GiB identity map with 2 MiB pages: the last PD entry maps 4 GiB - 2 MiB. */
    uint64_t pdpt3, last;
    memcpy(&pdpt3, ram + SP_LINUX_PDPT_GPA + 3 * 8, 8);
    memcpy(&last, ram + SP_LINUX_PD_GPA + 3 * 4096 + 511 * 8, 8);
    g_assert_cmphex(pdpt3 & ~0xfffull, ==, SP_LINUX_PD_GPA + 3 * 4096);
    g_assert_cmphex(last, ==, (4ull << 30) - (2 << 20) + 0x83);
    g_free(ram);
}

static struct kvm_cpuid2 *synthetic_cpuid(void)
{
    struct kvm_cpuid2 *c = g_malloc0(sizeof *c + 4 * sizeof(struct kvm_cpuid_entry2));
    c->nent = 4;
    c->entries[0] = (struct kvm_cpuid_entry2){.function = 0, .eax = 0xd};
    c->entries[1] = (struct kvm_cpuid_entry2){
        .function = 1, .eax = 0x806f8, .ebx = 0xff0b0800, .ecx = 0x00001234, .edx = 0x178bfbff};
    c->entries[2] = (struct kvm_cpuid_entry2){.function = 6, .eax = 4, .ecx = 1};
    c->entries[3] = (struct kvm_cpuid_entry2){.function = 0xb, .index = 0, .edx = 0x33};
    return c;
}

static void test_cpuid(void)
{
    g_autofree struct kvm_cpuid2 *sup = synthetic_cpuid();
    g_autofree struct kvm_cpuid2 *c = sp_linux_cpuid_for_vcpu(sup, 3, 4);
    g_assert_cmpuint(c->nent, ==, 4);
    g_assert_cmphex(c->entries[1].ebx >> 24, ==, 3);          /* APIC ID */
    g_assert_cmphex((c->entries[1].ebx >> 16) & 0xff, ==, 4); /* logical CPUs */
    g_assert_cmphex(c->entries[1].ebx & 0xffff, ==, 0x0800);  /* CLFLUSH etc kept */
    g_assert_true(c->entries[1].ecx & (1u << 31));            /* hypervisor */
    g_assert_cmphex(c->entries[1].ecx & 0xffff, ==, 0x1234);
    g_assert_cmphex(c->entries[1].edx, ==, 0x178bfbff);
    g_assert_cmpuint(c->entries[2].eax | c->entries[2].ecx, ==, 0);
    g_assert_cmphex(c->entries[3].edx, ==, 3);
    /* The input is not modified. */
    g_assert_cmphex(sup->entries[1].ebx, ==, 0xff0b0800);
}

/* A real KVM vCPU set up for the 64-bit entry. */
static void test_vcpu_setup_kvm(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(SpKvm) kvm = sp_kvm_open("/dev/kvm", &err);
    if (!kvm)
        g_error("this test needs /dev/kvm: %s", err->message);
    int vm = ioctl(kvm->fd, KVM_CREATE_VM, 0);
    g_assert_cmpint(vm, >=, 0);
    g_assert_cmpint(ioctl(vm, KVM_CREATE_IRQCHIP, 0), ==, 0);
    int vcpu0 = ioctl(vm, KVM_CREATE_VCPU, 0);
    int vcpu1 = ioctl(vm, KVM_CREATE_VCPU, 1);
    g_assert_cmpint(vcpu0, >=, 0);
    g_assert_cmpint(vcpu1, >=, 0);
    SpLinuxBootState st = {
        .entry_gpa = 0x1000200, .zero_page_gpa = SP_LINUX_ZERO_PAGE_GPA, .vcpu_count = 2};
    struct kvm_sregs s, s1;
    struct kvm_regs r, r1;
    g_assert_true(sp_linux_vcpu_setup(vcpu0, kvm, &st, 0, &s, &r, &err));
    g_assert_no_error(err);
    g_assert_true(sp_linux_vcpu_setup(vcpu1, kvm, &st, 1, &s1, &r1, &err));
    g_assert_no_error(err);
    /* vCPU 1 keeps its reset state (it waits for INIT/SIPI). */
    g_assert_cmphex(r1.rip, ==, 0xfff0);
    g_assert_cmphex(s1.cr0 & 1, ==, 0);
    g_assert_cmpint(ioctl(vcpu0, KVM_SET_SREGS, &s), ==, 0);
    g_assert_cmpint(ioctl(vcpu0, KVM_SET_REGS, &r), ==, 0);
    g_assert_cmpint(ioctl(vcpu0, KVM_GET_SREGS, &s), ==, 0);
    g_assert_cmpint(ioctl(vcpu0, KVM_GET_REGS, &r), ==, 0);
    g_assert_cmphex(r.rip, ==, 0x1000200);
    g_assert_cmphex(r.rsi, ==, SP_LINUX_ZERO_PAGE_GPA);
    g_assert_cmphex(r.rflags & 0x200, ==, 0); /* interrupts off */
    g_assert_cmphex(s.cs.selector, ==, SP_LINUX_BOOT_CS);
    g_assert_cmpuint(s.cs.l, ==, 1);
    g_assert_cmphex(s.ds.selector, ==, SP_LINUX_BOOT_DS);
    g_assert_cmphex(s.ss.selector, ==, SP_LINUX_BOOT_DS);
    g_assert_cmphex(s.cr0 & 0x80000001, ==, 0x80000001);
    g_assert_cmphex(s.cr4 & SP_X86_CR4_PAE, ==, SP_X86_CR4_PAE);
    g_assert_cmphex(s.efer & 0x500, ==, 0x500);
    g_assert_cmphex(s.cr3, ==, SP_LINUX_PML4_GPA);
    g_assert_cmphex(s.gdt.base, ==, SP_LINUX_GDT_GPA);

    /* vCPU 1 got its own APIC ID in CPUID leaf 1. */
    struct kvm_cpuid2 *c = g_malloc0(sizeof *c + 256 * sizeof(struct kvm_cpuid_entry2));
    c->nent = 256;
    g_assert_cmpint(ioctl(vcpu1, KVM_GET_CPUID2, c), ==, 0);
    gboolean seen = FALSE;
    for (uint32_t i = 0; i < c->nent; i++)
        if (c->entries[i].function == 1) {
            g_assert_cmphex(c->entries[i].ebx >> 24, ==, 1);
            seen = TRUE;
        }
    g_assert_true(seen);
    g_free(c);

    /* LINT0 = ExtINT, LINT1 = NMI on the in-kernel LAPIC. */
    struct kvm_lapic_state lapic;
    uint32_t lvt0, lvt1;
    g_assert_cmpint(ioctl(vcpu1, KVM_GET_LAPIC, &lapic), ==, 0);
    memcpy(&lvt0, lapic.regs + 0x350, 4);
    memcpy(&lvt1, lapic.regs + 0x360, 4);
    g_assert_cmphex(lvt0 & 0x700, ==, 0x700);
    g_assert_cmphex(lvt1 & 0x700, ==, 0x400);
    close(vcpu0);
    close(vcpu1);
    close(vm);
}

static uint64_t get64(const guint8 *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void test_acpi(void)
{
    const uint64_t gpa = SP_LINUX_ACPI_GPA;
    guint8 *buf = g_malloc0(SP_LINUX_ACPI_ROOM);
    g_assert_cmphex(sp_acpi_tables_write(buf, SP_LINUX_ACPI_ROOM, gpa, 3), ==, gpa);
    /* RSDP: both checksums, revision 2, XSDT pointer. */
    g_assert_cmpmem(buf, 8, "RSD PTR ", 8);
    g_assert_cmpuint(sum(buf, 20), ==, 0);
    g_assert_cmpuint(sum(buf, 36), ==, 0);
    g_assert_cmpuint(buf[15], ==, 2);
    const guint8 *xsdt = buf + (get64(buf + 24) - gpa);
    g_assert_cmpmem(xsdt, 4, "XSDT", 4);
    uint32_t xlen;
    memcpy(&xlen, xsdt + 4, 4);
    g_assert_cmpuint(sum(xsdt, xlen), ==, 0);
    g_assert_cmpuint((xlen - 36) / 8, ==, 2);
    const guint8 *fadt = buf + (get64(xsdt + 36) - gpa);
    const guint8 *madt = buf + (get64(xsdt + 44) - gpa);
    g_assert_cmpmem(fadt, 4, "FACP", 4);
    g_assert_cmpuint(sum(fadt, 276), ==, 0);
    uint32_t pm1a_cnt;
    memcpy(&pm1a_cnt, fadt + 64, 4);
    g_assert_cmphex(pm1a_cnt, ==, SP_ACPI_PM1A_CNT_PORT);
    g_assert_cmphex(get64(fadt + 172 + 4), ==, SP_ACPI_PM1A_CNT_PORT); /* X_PM1a_CNT_BLK */
    g_assert_cmphex(get64(fadt + 116 + 4), ==, SP_ACPI_RESET_PORT);    /* RESET_REG */
    g_assert_cmphex(fadt[128], ==, SP_ACPI_RESET_VALUE);
    const guint8 *dsdt = buf + (get64(fadt + 140) - gpa);
    g_assert_cmpmem(dsdt, 4, "DSDT", 4);
    uint32_t dlen;
    memcpy(&dlen, dsdt + 4, 4);
    g_assert_cmpuint(sum(dsdt, dlen), ==, 0);
    g_assert_nonnull(memmem(dsdt + 36, dlen - 36, "_S5_", 4));
    const guint8 *facs = buf + (get64(fadt + 132) - gpa);
    g_assert_cmpmem(facs, 4, "FACS", 4);
    g_assert_cmpuint((get64(fadt + 132) & 63), ==, 0);
    /* MADT: 3 enabled LAPICs with IDs 0..2, one IOAPIC with ID 3. */
    g_assert_cmpmem(madt, 4, "APIC", 4);
    uint32_t mlen;
    memcpy(&mlen, madt + 4, 4);
    g_assert_cmpuint(sum(madt, mlen), ==, 0);
    uint32_t lapics = 0, ioapics = 0;
    for (const guint8 *e = madt + 44; e < madt + mlen; e += e[1]) {
        g_assert_cmpuint(e[1], >, 0);
        if (e[0] == 0) {
            g_assert_cmpuint(e[3], ==, lapics);
            g_assert_cmpuint(e[4] & 1, ==, 1);
            lapics++;
        } else if (e[0] == 1) {
            g_assert_cmpuint(e[2], ==, 3);
            ioapics++;
        }
    }
    g_assert_cmpuint(lapics, ==, 3);
    g_assert_cmpuint(ioapics, ==, 1);
    /* Too little room, or no vCPU: nothing. */
    g_assert_cmphex(sp_acpi_tables_write(buf, 64, gpa, 3), ==, 0);
    g_assert_cmphex(sp_acpi_tables_write(buf, SP_LINUX_ACPI_ROOM, gpa, 0), ==, 0);
    g_free(buf);
}

typedef struct {
    int poweroffs, reboots;
} PowerLog;

static void power_cb(void *opaque, bool reboot)
{
    PowerLog *l = opaque;
    if (reboot)
        l->reboots++;
    else
        l->poweroffs++;
}

static void power_write(SpLinuxPower *pw, uint16_t port, uint32_t v, uint32_t size)
{
    uint8_t d[4];
    memcpy(d, &v, 4);
    g_assert_true(sp_linux_power_io(pw, port, d, size, true));
}

static void test_power_ports(void)
{
    PowerLog log = {0};
    SpLinuxPower pw = {.fn = power_cb, .opaque = &log};
    /* ACPICA first writes SLP_TYP alone, then SLP_TYP|SLP_EN. */
    power_write(&pw, SP_ACPI_PM1A_CNT_PORT, 5 << 10, 2);
    g_assert_cmpint(log.poweroffs, ==, 0);
    power_write(&pw, SP_ACPI_PM1A_CNT_PORT, (5 << 10) | (1 << 13), 2);
    g_assert_cmpint(log.poweroffs, ==, 1);
    /* Another sleep type (S3 = 1, not offered by the DSDT) is no power-off. */
    power_write(&pw, SP_ACPI_PM1A_CNT_PORT, (1 << 10) | (1 << 13), 2);
    g_assert_cmpint(log.poweroffs, ==, 1);
    /* Byte write to the high half. */
    power_write(&pw, SP_ACPI_PM1A_CNT_PORT + 1, ((5 << 10) | (1 << 13)) >> 8, 1);
    g_assert_cmpint(log.poweroffs, ==, 2);
    power_write(&pw, SP_ACPI_RESET_PORT, 0x01, 1);
    g_assert_cmpint(log.reboots, ==, 0);
    power_write(&pw, SP_ACPI_RESET_PORT, SP_ACPI_RESET_VALUE, 1);
    g_assert_cmpint(log.reboots, ==, 1);
    power_write(&pw, SP_I8042_CMD_PORT, 0xd1, 1);
    g_assert_cmpint(log.reboots, ==, 1);
    power_write(&pw, SP_I8042_CMD_PORT, SP_I8042_RESET_CMD, 1);
    g_assert_cmpint(log.reboots, ==, 2);
    /* Reads: PM1 status and the i8042 status are 0 (nothing pending). */
    uint8_t d[4] = {0xaa, 0xaa, 0xaa, 0xaa};
    g_assert_true(sp_linux_power_io(&pw, SP_ACPI_PM1A_EVT_PORT, d, 2, false));
    g_assert_cmpuint(d[0] | d[1], ==, 0);
    g_assert_true(sp_linux_power_io(&pw, SP_I8042_CMD_PORT, d, 1, false));
    g_assert_cmpuint(d[0], ==, 0);
    /* The PM1 enable register keeps what is written (GBL_EN = bit 5). */
    power_write(&pw, SP_ACPI_PM1A_EVT_PORT + 2, 0x0120, 2);
    g_assert_true(sp_linux_power_io(&pw, SP_ACPI_PM1A_EVT_PORT + 2, d, 2, false));
    g_assert_cmphex(d[0] | d[1] << 8, ==, 0x0120);
    g_assert_true(sp_linux_power_io(&pw, SP_ACPI_PM1A_EVT_PORT, d, 2, false));
    g_assert_cmphex(d[0] | d[1] << 8, ==, 0); /* status stays clear */
    g_assert_cmpint(log.poweroffs + log.reboots, ==, 4);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/linux/mptable", test_mptable);
    g_test_add_func("/linux/entry/gdt-pagetables", test_gdt_and_pagetables);
    g_test_add_func("/linux/cpuid/per-vcpu", test_cpuid);
    g_test_add_func("/linux/acpi/tables", test_acpi);
    g_test_add_func("/linux/power/ports", test_power_ports);
    g_test_add_func("/linux/entry/kvm-vcpu", test_vcpu_setup_kvm);
    return g_test_run();
}
