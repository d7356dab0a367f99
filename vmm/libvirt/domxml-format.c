/* SPDX-License-Identifier: MIT */
/*
 * domxml-format.c - write an SpDomXml back as domain XML (dumpxml, the
 * state directory, run files).
 *
 * Honoured elements are written from their fields, kept ones from their
 * trees (xmltree.c), in one fixed order: name, uuid, title, description,
 * metadata, memory, currentMemory, memoryBacking, memtune, numatune, vcpu,
 * os, the kept top-level elements in document order, on_poweroff,
 * on_reboot, on_crash, devices in document order.  An element absent from
 * the input stays absent (its default is not written), so format -> parse
 * -> format is the identity.  Stateless.
 */
#include "vmm/libvirt/domxml.h"

static void fmt_elem(GString *s, const char *indent, const char *elem, const char *v)
{
    if (!v)
        return;
    g_autofree char *esc = g_markup_escape_text(v, -1);
    g_string_append_printf(s, "%s<%s>%s</%s>\n", indent, elem, esc, elem);
}

/* Appends " name='value'" when v is set. */
static void fmt_attr(GString *s, const char *name, const char *v)
{
    if (!v)
        return;
    g_autofree char *esc = g_markup_escape_text(v, -1);
    g_string_append_printf(s, " %s='%s'", name, esc);
}

static void fmt_nodes(GString *s, GPtrArray *nodes, guint indent)
{
    for (guint i = 0; i < nodes->len; i++)
        sp_xml_format(s, nodes->pdata[i], indent);
}

static void fmt_size(GString *s, const char *indent, const char *elem, guint64 kib)
{
    if (kib)
        g_string_append_printf(s, "%s<%s unit='KiB'>%" G_GUINT64_FORMAT "</%s>\n", indent, elem,
                               kib, elem);
}

static void fmt_metadata(GString *s, const SpDomXml *d)
{
    bool sp = d->sp_payload || d->sp_args || d->sp_domain || d->sp_share;
    if (!sp && !d->metadata_kept->len)
        return;
    g_string_append(s, "  <metadata>\n");
    if (sp) {
        g_string_append_printf(s, "    <sp:samepage xmlns:sp='%s'>\n", SP_DOMXML_NS);
        fmt_elem(s, "      ", "sp:payload", d->sp_payload);
        fmt_elem(s, "      ", "sp:args", d->sp_args);
        fmt_elem(s, "      ", "sp:domain", d->sp_domain);
        fmt_elem(s, "      ", "sp:share", d->sp_share);
        g_string_append(s, "    </sp:samepage>\n");
    }
    fmt_nodes(s, d->metadata_kept, 4);
    g_string_append(s, "  </metadata>\n");
}

static void fmt_tuning(GString *s, const SpDomXml *d)
{
    if (d->memory_backing)
        sp_xml_format(s, d->memory_backing, 2);
    if (d->has_memtune) {
        g_string_append(s, "  <memtune>\n");
        fmt_size(s, "    ", "hard_limit", d->memtune_hard_limit_kib);
        fmt_size(s, "    ", "soft_limit", d->memtune_soft_limit_kib);
        fmt_size(s, "    ", "swap_hard_limit", d->memtune_swap_hard_limit_kib);
        fmt_size(s, "    ", "min_guarantee", d->memtune_min_guarantee_kib);
        g_string_append(s, "  </memtune>\n");
    }
    if (d->has_numatune) {
        g_string_append(s, "  <numatune>\n");
        if (d->numa_mode || d->numa_nodeset || d->numa_placement) {
            g_string_append(s, "    <memory");
            fmt_attr(s, "mode", d->numa_mode);
            fmt_attr(s, "nodeset", d->numa_nodeset);
            fmt_attr(s, "placement", d->numa_placement);
            g_string_append(s, "/>\n");
        }
        for (guint i = 0; i < d->numa_memnodes->len; i++) {
            const SpDomXmlMemnode *m = d->numa_memnodes->pdata[i];
            g_string_append_printf(s, "    <memnode cellid='%u'", m->cellid);
            fmt_attr(s, "mode", m->mode);
            fmt_attr(s, "nodeset", m->nodeset);
            g_string_append(s, "/>\n");
        }
        g_string_append(s, "  </numatune>\n");
    }
}

static void fmt_vcpu_os(GString *s, const SpDomXml *d)
{
    g_string_append(s, "  <vcpu");
    fmt_attr(s, "placement", d->vcpu_placement);
    fmt_attr(s, "cpuset", d->vcpu_cpuset);
    if (d->vcpus_current)
        g_string_append_printf(s, " current='%u'", d->vcpus_current);
    g_string_append_printf(s, ">%u</vcpu>\n  <os>\n    <type", d->vcpus);
    fmt_attr(s, "arch", d->os_arch);
    fmt_attr(s, "machine", d->os_machine);
    g_autofree char *esc = g_markup_escape_text(d->os_type ? d->os_type : "hvm", -1);
    g_string_append_printf(s, ">%s</type>\n", esc);
    fmt_elem(s, "    ", "kernel", d->kernel);
    fmt_elem(s, "    ", "initrd", d->initrd);
    fmt_elem(s, "    ", "cmdline", d->cmdline);
    fmt_nodes(s, d->os_kept, 4);
    g_string_append(s, "  </os>\n");
}

static const char *action_name(SpDomXmlAction a)
{
    switch (a) {
    case SP_DOMXML_ACTION_DESTROY:
        return "destroy";
    case SP_DOMXML_ACTION_RESTART:
        return "restart";
    case SP_DOMXML_ACTION_PRESERVE:
        return "preserve";
    default:
        return NULL;
    }
}

char *sp_domxml_format(const SpDomXml *d, gint32 id)
{
    GString *s = g_string_new("<domain");
    char uuid[37];
    fmt_attr(s, "type", d->type ? d->type : "samepage");
    if (id >= 0)
        g_string_append_printf(s, " id='%d'", id);
    g_string_append(s, ">\n");
    fmt_elem(s, "  ", "name", d->name);
    if (d->has_uuid) {
        sp_domxml_uuid_format(d->uuid, uuid);
        fmt_elem(s, "  ", "uuid", uuid);
    }
    fmt_elem(s, "  ", "title", d->title);
    fmt_elem(s, "  ", "description", d->description);
    fmt_metadata(s, d);
    g_string_append_printf(s, "  <memory unit='KiB'>%" G_GUINT64_FORMAT "</memory>\n",
                           d->memory_kib);
    g_string_append_printf(s, "  <currentMemory unit='KiB'>%" G_GUINT64_FORMAT "</currentMemory>\n",
                           d->current_memory_kib);
    fmt_tuning(s, d);
    fmt_vcpu_os(s, d);
    fmt_nodes(s, d->kept, 2);
    fmt_elem(s, "  ", "on_poweroff", action_name(d->on_poweroff));
    fmt_elem(s, "  ", "on_reboot", action_name(d->on_reboot));
    fmt_elem(s, "  ", "on_crash", action_name(d->on_crash));
    if (d->devices->len) {
        g_string_append(s, "  <devices>\n");
        fmt_nodes(s, d->devices, 4);
        g_string_append(s, "  </devices>\n");
    }
    g_string_append(s, "</domain>\n");
    return g_string_free(s, FALSE);
}
