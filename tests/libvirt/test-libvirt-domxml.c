/*
 * test-libvirt-domxml.c - unit tests of domain XML as samepage reads it
 * (vmm/libvirt/domxml.c): every honoured element, units, the samepage
 * namespace under any prefix, a definition in the shape virt-install writes
 * with its kept elements returned verbatim, format -> parse round trip, and
 * clear errors naming refused or unknown elements, attributes and bad values.
 */
#include <string.h>

#include "vmm/libvirt/domxml.h"

static const char full[] =
    "<domain type='samepage'>\n"
    "  <name>web1</name>\n"
    "  <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>\n"
    "  <title>Web &amp; co</title>\n"
    "  <memory unit='GiB'>1</memory>\n"
    "  <currentMemory unit='MiB'>512</currentMemory>\n"
    "  <vcpu>4</vcpu>\n"
    "  <os><type arch='x86_64'>hvm</type><kernel>/boot/vmlinuz</kernel>"
    "<initrd>/boot/initrd</initrd><cmdline>console=ttyS0 quiet</cmdline></os>\n"
    "  <metadata><x:samepage xmlns:x='https://samepage.invalid/xmlns/1'>"
    "<x:payload>/usr/lib/samepage/memload</x:payload><x:args>--pages 100</x:args>"
    "<x:domain>tenant-a</x:domain><x:share>zero</x:share></x:samepage></metadata>\n"
    "  <devices>\n"
    "    <disk type='file' device='disk'><driver name='samepage' type='raw'/>"
    "<source file='/var/lib/a.img'/><target dev='vda' bus='virtio'/><readonly/></disk>\n"
    "    <interface type='bridge'><mac address='52:54:00:00:00:01'/>"
    "<source bridge='br0'/><target dev='vnet3'/><model type='virtio'/></interface>\n"
    "  </devices>\n"
    "</domain>\n";

static void check_full(const SpDomXml *d)
{
    char uuid[37];
    g_assert_cmpstr(d->type, ==, "samepage");
    g_assert_cmpstr(d->name, ==, "web1");
    g_assert_true(d->has_uuid);
    sp_domxml_uuid_format(d->uuid, uuid);
    g_assert_cmpstr(uuid, ==, "c7a5fdbd-edaf-9455-926a-d65c16db1809");
    g_assert_cmpstr(d->title, ==, "Web & co");
    g_assert_cmpuint(d->memory_kib, ==, 1048576);
    g_assert_cmpuint(d->current_memory_kib, ==, 524288);
    g_assert_cmpuint(d->vcpus, ==, 4);
    g_assert_cmpstr(d->os_type, ==, "hvm");
    g_assert_cmpstr(d->os_arch, ==, "x86_64");
    g_assert_cmpstr(d->kernel, ==, "/boot/vmlinuz");
    g_assert_cmpstr(d->initrd, ==, "/boot/initrd");
    g_assert_cmpstr(d->cmdline, ==, "console=ttyS0 quiet");
    g_assert_cmpstr(d->sp_payload, ==, "/usr/lib/samepage/memload");
    g_assert_cmpstr(d->sp_args, ==, "--pages 100");
    g_assert_cmpstr(d->sp_domain, ==, "tenant-a");
    g_assert_cmpstr(d->sp_share, ==, "zero");
    g_assert_cmpuint(d->disks->len, ==, 1);
    const SpDomXmlDevice *disk = d->disks->pdata[0];
    g_assert_cmpstr(disk->target, ==, "vda");
    g_assert_cmpstr(disk->type, ==, "file");
    g_assert_cmpstr(disk->source, ==, "/var/lib/a.img");
    g_assert_cmpuint(d->interfaces->len, ==, 1);
    const SpDomXmlDevice *nic = d->interfaces->pdata[0];
    g_assert_cmpstr(nic->target, ==, "vnet3");
    g_assert_cmpstr(nic->source, ==, "br0");
    g_assert_cmpuint(d->devices->len, ==, 2);
}

static void test_full_roundtrip(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(SpDomXml) d = sp_domxml_parse(full, &err);
    g_assert_no_error(err);
    check_full(d);
    g_autofree char *xml = sp_domxml_format(d, 7);
    g_assert_nonnull(strstr(xml, "<domain type='samepage' id='7'>"));
    g_assert_nonnull(strstr(xml, "<target dev='vda' bus='virtio'/>"));
    g_assert_nonnull(strstr(xml, "<driver name='samepage' type='raw'/>"));
    g_assert_nonnull(strstr(xml, "<mac address='52:54:00:00:00:01'/>"));
    g_assert_nonnull(strstr(xml, "<readonly/>"));
    g_autoptr(SpDomXml) again = sp_domxml_parse(xml, &err);
    g_assert_no_error(err);
    check_full(again);
    g_autofree char *xml2 = sp_domxml_format(again, 7);
    g_assert_cmpstr(xml, ==, xml2);
}

static void test_defaults_and_units(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(SpDomXml) d =
        sp_domxml_parse("<domain><name>a</name><memory>1000</memory></domain>", &err);
    g_assert_no_error(err);
    g_assert_cmpuint(d->memory_kib, ==, 1000);
    g_assert_cmpuint(d->current_memory_kib, ==, 1000);
    g_assert_cmpuint(d->vcpus, ==, 1);
    g_assert_cmpstr(d->os_type, ==, "hvm");
    g_assert_false(d->has_uuid);
    const struct {
        const char *unit;
        const char *value;
        guint64 kib;
    } cases[] = {{"b", "1025", 2},    {"bytes", "2048", 2}, {"KB", "1024", 1000},
                 {"k", "3", 3},       {"MB", "1", 977},     {"M", "2", 2048},
                 {"GB", "1", 976563}, {"G", "1", 1048576},  {"TiB", "1", 1073741824ull}};
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *xml =
            g_strdup_printf("<domain><name>a</name><memory unit='%s'>%s</memory></domain>",
                            cases[i].unit, cases[i].value);
        g_autoptr(SpDomXml) u = sp_domxml_parse(xml, &err);
        g_assert_no_error(err);
        g_assert_cmpuint(u->memory_kib, ==, cases[i].kib);
    }
    /* default namespace form of the metadata */
    g_autoptr(SpDomXml) ns = sp_domxml_parse(
        "<domain><name>a</name><memory>1</memory><metadata>"
        "<samepage xmlns='https://samepage.invalid/xmlns/1'><domain>d</domain></samepage>"
        "</metadata></domain>",
        &err);
    g_assert_no_error(err);
    g_assert_cmpstr(ns->sp_domain, ==, "d");
}

static void expect_error(const char *xml, int code, const char *needle)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(SpDomXml) d = sp_domxml_parse(xml, &err);
    g_assert_null(d);
    g_assert_error(err, SP_DOMXML_ERROR, code);
    if (!strstr(err->message, needle))
        g_error("error '%s' does not mention '%s'", err->message, needle);
}

static void test_errors(void)
{
    expect_error("<domain><name>a</name><memory>1</memory><clockwork/></domain>",
                 SP_DOMXML_ERROR_UNSUPPORTED, "<clockwork> (at domain/clockwork)");
    expect_error("<domain><name>a</name><memory>1</memory><devices><console/></devices>"
                 "</domain>",
                 SP_DOMXML_ERROR_UNSUPPORTED, "<console type=''>");
    expect_error("<domain><name>a</name><memory slots='2'>1</memory></domain>",
                 SP_DOMXML_ERROR_UNSUPPORTED, "'slots'");
    expect_error("<domain><name>a</name><memory>1</memory><metadata>"
                 "<nova:instance/></metadata></domain>",
                 SP_DOMXML_ERROR_INVALID, "must declare its own namespace");
    expect_error("<domain><name>a</name><memory>1</memory><metadata>"
                 "<sp:samepage xmlns:sp='https://samepage.invalid/xmlns/1'><sp:bogus/>"
                 "</sp:samepage></metadata></domain>",
                 SP_DOMXML_ERROR_UNSUPPORTED, "bogus");
    expect_error("<domain><name>a</name><memory unit='parsecs'>1</memory></domain>",
                 SP_DOMXML_ERROR_INVALID, "parsecs");
    expect_error("<domain><name>a</name><memory>-1</memory></domain>", SP_DOMXML_ERROR_INVALID,
                 "memory");
    expect_error("<domain><name>a</name><memory unit='TiB'>99999999999</memory></domain>",
                 SP_DOMXML_ERROR_INVALID, "memory");
    expect_error("<domain><name>a</name></domain>", SP_DOMXML_ERROR_INVALID, "<memory>");
    expect_error("<domain><memory>1</memory></domain>", SP_DOMXML_ERROR_INVALID, "<name>");
    expect_error("<domain><name>a</name><memory>1</memory><currentMemory>2</currentMemory>"
                 "</domain>",
                 SP_DOMXML_ERROR_INVALID, "exceeds");
    expect_error("<domain><name>a</name><memory>1</memory><vcpu>0</vcpu></domain>",
                 SP_DOMXML_ERROR_INVALID, "vcpu");
    expect_error("<domain><name>a</name><memory>1</memory><uuid>zz</uuid></domain>",
                 SP_DOMXML_ERROR_INVALID, "uuid");
    expect_error("<domain><name>a</name><memory>1</memory><devices><disk type='file'>"
                 "<source file='x'/></disk></devices></domain>",
                 SP_DOMXML_ERROR_INVALID, "target");
    expect_error("<domain><name>a</name><memory>1</memory><devices>"
                 "<disk><target dev='vda'/></disk><disk><target dev='vda'/></disk>"
                 "</devices></domain>",
                 SP_DOMXML_ERROR_INVALID, "twice");
    expect_error("<domain><name>a</name><memory>1</memory>text</domain>", SP_DOMXML_ERROR_SYNTAX,
                 "text beside elements");
    expect_error("<domain><name>a</name>", SP_DOMXML_ERROR_SYNTAX, "malformed");
    expect_error("<domain><name>a</name><name>b</name><memory>1</memory></domain>",
                 SP_DOMXML_ERROR_INVALID, "more than once");
    expect_error("<domain><name>a</name><memory>1</memory><os><type arch='x86_64'>hvm</type>"
                 "<type>hvm</type></os></domain>",
                 SP_DOMXML_ERROR_INVALID, "<type>");
    expect_error("<vm/>", SP_DOMXML_ERROR_UNSUPPORTED, "<vm>");
    expect_error("<domain><name>a/b</name><memory>1</memory></domain>", SP_DOMXML_ERROR_INVALID,
                 "'/'");
}

/* What virt-install 4.1 writes for a Linux guest (plus the samepage bits a
 * samepage guest needs): every element is honoured or kept. */
static const char virt_install[] =
    "<domain type='kvm'>\n"
    "  <name>deb12</name>\n"
    "  <uuid>5e7f1c1a-3b7e-4a53-9d39-5a0d26e86c11</uuid>\n"
    "  <metadata>\n"
    "    <libosinfo:libosinfo xmlns:libosinfo='http://libosinfo.org/xmlns/libvirt/domain/1.0'>\n"
    "      <libosinfo:os id='http://debian.org/debian/12'/>\n"
    "    </libosinfo:libosinfo>\n"
    "  </metadata>\n"
    "  <memory unit='KiB'>131072</memory>\n"
    "  <currentMemory unit='KiB'>131072</currentMemory>\n"
    "  <memoryBacking><nosharepages/><source type='anonymous'/><access mode='private'/>"
    "</memoryBacking>\n"
    "  <memtune><hard_limit unit='MiB'>512</hard_limit><swap_hard_limit unit='GiB'>1"
    "</swap_hard_limit></memtune>\n"
    "  <numatune><memory mode='preferred' nodeset='0'/><memnode cellid='0' mode='strict' "
    "nodeset='0-1'/></numatune>\n"
    "  <vcpu placement='static' cpuset='0-1,^1' current='1'>2</vcpu>\n"
    "  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type><boot dev='hd'/>"
    "<kernel>/boot/vmlinuz</kernel><cmdline>console=ttyS0</cmdline></os>\n"
    "  <features><acpi/><apic/><vmport state='off'/></features>\n"
    "  <cpu mode='host-passthrough' check='none' migratable='on'/>\n"
    "  <clock offset='utc'><timer name='rtc' tickpolicy='catchup'/>"
    "<timer name='hpet' present='no'/></clock>\n"
    "  <on_poweroff>destroy</on_poweroff>\n"
    "  <on_reboot>restart</on_reboot>\n"
    "  <on_crash>preserve</on_crash>\n"
    "  <pm><suspend-to-mem enabled='no'/><suspend-to-disk enabled='no'/></pm>\n"
    "  <devices>\n"
    "    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
    "    <controller type='usb' index='0' model='qemu-xhci' ports='15'/>\n"
    "    <serial type='pty'><target type='isa-serial' port='0'><model name='isa-serial'/>"
    "</target></serial>\n"
    "    <console type='pty'><target type='serial' port='0'/></console>\n"
    "    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>\n"
    "    <input type='tablet' bus='usb'/>\n"
    "    <graphics type='vnc' port='-1'/>\n"
    "    <video><model type='virtio' heads='1' primary='yes'/></video>\n"
    "    <memballoon model='virtio'/>\n"
    "    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>\n"
    "  </devices>\n"
    "  <seclabel type='dynamic' model='dac' relabel='yes'/>\n"
    "</domain>\n";

static void test_virt_install(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(SpDomXml) d = sp_domxml_parse(virt_install, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(d->type, ==, "kvm");
    g_assert_true(d->nosharepages);
    g_assert_cmpuint(d->vcpus, ==, 2);
    g_assert_cmpuint(d->vcpus_current, ==, 1);
    g_assert_cmpuint(sp_domxml_vcpus_running(d), ==, 1);
    g_assert_cmpstr(d->vcpu_placement, ==, "static");
    g_assert_cmpstr(d->vcpu_cpuset, ==, "0-1,^1");
    g_assert_cmpstr(d->os_machine, ==, "pc-q35-7.2");
    g_assert_cmpint(d->on_poweroff, ==, SP_DOMXML_ACTION_DESTROY);
    g_assert_cmpint(d->on_reboot, ==, SP_DOMXML_ACTION_RESTART);
    g_assert_cmpint(d->on_crash, ==, SP_DOMXML_ACTION_PRESERVE);
    g_assert_cmpuint(d->memtune_hard_limit_kib, ==, 524288);
    g_assert_cmpuint(d->memtune_swap_hard_limit_kib, ==, 1048576);
    g_assert_cmpuint(d->memtune_soft_limit_kib, ==, 0);
    g_assert_cmpstr(d->numa_mode, ==, "preferred");
    g_assert_cmpstr(d->numa_nodeset, ==, "0");
    g_assert_cmpuint(d->numa_memnodes->len, ==, 1);
    g_assert_cmpstr(((SpDomXmlMemnode *)d->numa_memnodes->pdata[0])->mode, ==, "strict");
    g_assert_cmpstr(d->serial_type, ==, "pty");
    g_assert_null(d->serial_path);
    g_assert_cmpuint(d->kept->len, ==, 5); /* features cpu clock pm seclabel */
    g_assert_cmpuint(d->devices->len, ==, 10);
    g_assert_cmpuint(d->metadata_kept->len, ==, 1);

    /* dumpxml returns what it kept, verbatim, and the honoured elements */
    g_autofree char *xml = sp_domxml_format(d, -1);
    const char *want[] = {
        "<libosinfo:os id='http://debian.org/debian/12'/>",
        "xmlns:libosinfo='http://libosinfo.org/xmlns/libvirt/domain/1.0'",
        "<features>\n    <acpi/>\n    <apic/>\n    <vmport state='off'/>\n  </features>",
        "<cpu mode='host-passthrough' check='none' migratable='on'/>",
        "<timer name='hpet' present='no'/>",
        "<suspend-to-mem enabled='no'/>",
        "<emulator>/usr/bin/qemu-system-x86_64</emulator>",
        "<controller type='usb' index='0' model='qemu-xhci' ports='15'/>",
        "<model name='isa-serial'/>",
        "<console type='pty'>",
        "<backend model='random'>/dev/urandom</backend>",
        "<seclabel type='dynamic' model='dac' relabel='yes'/>",
        "<boot dev='hd'/>",
        "<vcpu placement='static' cpuset='0-1,^1' current='1'>2</vcpu>",
        "<nosharepages/>",
        "<hard_limit unit='KiB'>524288</hard_limit>",
        "<memnode cellid='0' mode='strict' nodeset='0-1'/>",
        "<on_crash>preserve</on_crash>",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(want); i++)
        if (!strstr(xml, want[i]))
            g_error("dumpxml lacks %s:\n%s", want[i], xml);
    g_autoptr(SpDomXml) again = sp_domxml_parse(xml, &err);
    g_assert_no_error(err);
    g_autofree char *xml2 = sp_domxml_format(again, -1);
    g_assert_cmpstr(xml, ==, xml2);
    g_autoptr(SpDomXml) copy = sp_domxml_copy(d);
    g_assert_nonnull(copy);
    g_assert_true(copy->nosharepages);
}

/* Each element samepage would get wrong is refused, naming it and why. */
static void test_refused(void)
{
    const struct {
        const char *inner; /* XML inside <domain> after name and memory */
        const char *needle;
    } cases[] = {
        {"<devices><hostdev mode='subsystem' type='pci'/></devices>",
         "<hostdev> (at domain/devices/hostdev): the guest would depend on a device"},
        {"<devices><filesystem type='mount'/></devices>", "<filesystem>"},
        {"<devices><watchdog model='i6300esb'/></devices>", "no watchdog device"},
        {"<devices><tpm model='tpm-crb'/></devices>", "<tpm>"},
        {"<devices><memory model='dimm'/></devices>", "fixed RAM"},
        {"<memoryBacking><hugepages/></memoryBacking>", "huge pages cannot be merged"},
        {"<memoryBacking><locked/></memoryBacking>", "<locked>"},
        {"<memoryBacking><access mode='shared'/></memoryBacking>", "mode='shared'"},
        {"<memoryBacking><source type='memfd'/></memoryBacking>", "type='memfd'"},
        {"<memoryBacking><allocation mode='immediate'/></memoryBacking>", "on demand"},
        {"<maxMemory slots='16' unit='KiB'>1</maxMemory>", "<maxMemory>"},
        {"<os><type>hvm</type><loader>/x</loader></os>", "no firmware"},
        {"<os firmware='efi'><type>hvm</type></os>", "no firmware"},
        {"<os><type arch='aarch64'>hvm</type></os>", "arch 'aarch64'"},
        {"<launchSecurity type='sev'/>", "<launchSecurity>"},
        {"<on_crash>coredump-destroy</on_crash>", "'coredump-destroy' in <on_crash>"},
        {"<on_reboot>preserve</on_reboot>", "'preserve' in <on_reboot>"},
        {"<devices><serial type='tcp'/></devices>", "<serial type='tcp'>"},
        {"<devices><serial type='pty'><target port='1'/></serial></devices>", "port 1"},
        {"<devices><serial type='pty'/><serial type='pty'/></devices>", "a second <serial>"},
        {"<devices><console type='pty'><target type='virtio'/></console></devices>",
         "console target type 'virtio'"},
        {"<devices><serial type='file'/></devices>", "source path"},
        {"<qemu:commandline xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'/>",
         "<qemu:commandline>"},
        {"<vcpu cpuset='0-'>2</vcpu>", "invalid cpuset '0-'"},
        {"<vcpu current='3'>2</vcpu>", "current='3'"},
        {"<vcpu placement='dynamic'>2</vcpu>", "placement"},
        {"<numatune><memory mode='strictly'/></numatune>", "numatune mode"},
        {"<numatune><memnode cellid='0'/><memnode cellid='0'/></numatune>", "given twice"},
        {"<memtune><hard_limit unit='parsec'>1</hard_limit></memtune>", "parsec"},
        {"<cputune><vcpupin vcpu='0' cpuset='1'/></cputune>", "<cputune>"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *xml = g_strdup_printf(
            "<domain><name>a</name><memory>1024</memory>%s</domain>", cases[i].inner);
        g_autoptr(GError) err = NULL;
        g_autoptr(SpDomXml) d = sp_domxml_parse(xml, &err);
        if (d || !strstr(err->message, cases[i].needle))
            g_error("%s: got '%s', want an error with '%s'", cases[i].inner,
                    err ? err->message : "success", cases[i].needle);
        g_assert_null(strchr(err->message, '\n'));
    }
    g_autoptr(GError) err = NULL;
    g_autoptr(SpDomXml) t =
        sp_domxml_parse("<domain type='xen'><name>a</name><memory>1</memory></domain>", &err);
    g_assert_null(t);
    g_assert_nonnull(strstr(err->message, "domain type 'xen'"));
}

static void test_serial_file_and_defaults(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(SpDomXml) d = sp_domxml_parse(
        "<domain><name>a</name><memory>1024</memory><devices><console type='pty'/>"
        "<serial type='file'><source path='/var/log/a.log'/></serial></devices></domain>",
        &err);
    g_assert_no_error(err);
    g_assert_cmpstr(d->serial_type, ==, "file");
    g_assert_cmpstr(d->serial_path, ==, "/var/log/a.log");
    g_assert_cmpint(sp_domxml_on_poweroff(d), ==, SP_DOMXML_ACTION_DESTROY);
    g_assert_cmpint(sp_domxml_on_reboot(d), ==, SP_DOMXML_ACTION_RESTART);
    g_assert_cmpint(sp_domxml_on_crash(d), ==, SP_DOMXML_ACTION_DESTROY);
    g_autofree char *xml = sp_domxml_format(d, -1);
    g_assert_null(strstr(xml, "on_poweroff")); /* absent stays absent */
}

static void test_cpuset(void)
{
    g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(guint));
    g_autoptr(GError) err = NULL;
    g_assert_true(sp_domxml_cpuset_parse("0-3,^2, 7", 8, ids, &err));
    g_assert_cmpuint(ids->len, ==, 4);
    g_assert_cmpuint(g_array_index(ids, guint, 2), ==, 3);
    g_assert_cmpuint(g_array_index(ids, guint, 3), ==, 7);
    const char *bad[] = {"", "8", "3-1", "^0", "a", "0,,1", "1-^2"};
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GArray) none = g_array_new(FALSE, FALSE, sizeof(guint));
        g_assert_false(sp_domxml_cpuset_parse(bad[i], 8, none, NULL));
    }
}

static void test_uuid(void)
{
    guint8 u[16];
    g_assert_true(sp_domxml_uuid_parse("c7a5fdbdedaf9455926ad65c16db1809", u));
    g_assert_false(sp_domxml_uuid_parse("c7a5fdbd-edaf-9455-926a-d65c16db180", u));
    g_assert_false(sp_domxml_uuid_parse("c7a5fdbd-edaf-9455-926a-d65c16db18099", u));
    g_assert_false(sp_domxml_uuid_parse("", u));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/libvirt/domxml/full-roundtrip", test_full_roundtrip);
    g_test_add_func("/libvirt/domxml/defaults-units", test_defaults_and_units);
    g_test_add_func("/libvirt/domxml/errors", test_errors);
    g_test_add_func("/libvirt/domxml/uuid", test_uuid);
    g_test_add_func("/libvirt/domxml/virt-install", test_virt_install);
    g_test_add_func("/libvirt/domxml/refused", test_refused);
    g_test_add_func("/libvirt/domxml/serial-file-defaults", test_serial_file_and_defaults);
    g_test_add_func("/libvirt/domxml/cpuset", test_cpuset);
    return g_test_run();
}
