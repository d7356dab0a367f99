/*
 * test-libvirt-domxml.c - unit tests of the domain XML subset
 * (vmm/libvirt/domxml.c): every understood element, units, the samepage
 * namespace under any prefix, format -> parse round trip, and clear errors
 * for unknown elements/attributes, foreign metadata and bad values.
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
    g_assert_cmpstr(disk->bus, ==, "virtio");
    g_assert_cmpstr(disk->source_attr, ==, "file");
    g_assert_cmpstr(disk->source, ==, "/var/lib/a.img");
    g_assert_cmpstr(disk->driver_type, ==, "raw");
    g_assert_true(disk->readonly);
    g_assert_cmpuint(d->interfaces->len, ==, 1);
    const SpDomXmlDevice *nic = d->interfaces->pdata[0];
    g_assert_cmpstr(nic->target, ==, "vnet3");
    g_assert_cmpstr(nic->source_attr, ==, "bridge");
    g_assert_cmpstr(nic->source, ==, "br0");
    g_assert_cmpstr(nic->mac, ==, "52:54:00:00:00:01");
    g_assert_cmpstr(nic->model, ==, "virtio");
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
    expect_error("<domain><name>a</name><memory>1</memory><clock offset='utc'/></domain>",
                 SP_DOMXML_ERROR_UNSUPPORTED, "<clock>");
    expect_error("<domain><name>a</name><memory>1</memory><devices><console/></devices>"
                 "</domain>",
                 SP_DOMXML_ERROR_UNSUPPORTED, "domain/devices/console");
    expect_error("<domain><name>a</name><memory slots='2'>1</memory></domain>",
                 SP_DOMXML_ERROR_UNSUPPORTED, "'slots'");
    expect_error("<domain><name>a</name><memory>1</memory><metadata>"
                 "<nova:instance xmlns:nova='http://openstack.org/xmlns/libvirt/nova/1.1'/>"
                 "</metadata></domain>",
                 SP_DOMXML_ERROR_UNSUPPORTED, "nova:instance");
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
    expect_error("<domain><name>a</name><memory>1</memory>text</domain>",
                 SP_DOMXML_ERROR_UNSUPPORTED, "text");
    expect_error("<domain><name>a</name>", SP_DOMXML_ERROR_SYNTAX, "malformed");
    expect_error("<domain><name>a</name><name>b</name><memory>1</memory></domain>",
                 SP_DOMXML_ERROR_INVALID, "more than once");
    expect_error("<domain><name>a</name><memory>1</memory><os><type arch='x'>hvm</type>"
                 "<type>hvm</type></os></domain>",
                 SP_DOMXML_ERROR_INVALID, "<type>");
    expect_error("<domain><name>a</name><memory>1</memory><devices><disk>"
                 "<driver name='x'/><driver name='y'/><target dev='vda'/></disk></devices>"
                 "</domain>",
                 SP_DOMXML_ERROR_INVALID, "more than once");
    expect_error("<vm/>", SP_DOMXML_ERROR_UNSUPPORTED, "<vm>");
    expect_error("<domain><name>a/b</name><memory>1</memory></domain>", SP_DOMXML_ERROR_INVALID,
                 "'/'");
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
    return g_test_run();
}
