/* SPDX-License-Identifier: MIT */
/*
 * capabilities.c - capabilities and domcapabilities XML (capabilities.h).
 * Values come from SpLvHostCaps; text is escaped; the element order follows
 * libvirt's schemas (capability.rng, domaincaps.rng).
 */
#include "vmm/libvirt/capabilities.h"

static void cell_free(gpointer p)
{
    SpLvCell *c = p;
    if (c->cpus)
        g_array_unref(c->cpus);
    g_free(c);
}

void sp_lv_host_caps_clear(SpLvHostCaps *c)
{
    g_clear_pointer(&c->arch, g_free);
    g_clear_pointer(&c->cpu_vendor, g_free);
    g_clear_pointer(&c->cpu_model, g_free);
    g_clear_pointer(&c->host_uuid, g_free);
    g_clear_pointer(&c->emulator, g_free);
    if (c->cells) {
        g_ptr_array_set_free_func(c->cells, cell_free);
        g_clear_pointer(&c->cells, g_ptr_array_unref);
    }
}

static void elem(GString *s, const char *indent, const char *name, const char *v)
{
    if (!v)
        return;
    g_autofree char *esc = g_markup_escape_text(v, -1);
    g_string_append_printf(s, "%s<%s>%s</%s>\n", indent, name, esc, name);
}

static void host_topology(GString *s, const SpLvHostCaps *c)
{
    guint ncells = c->cells ? c->cells->len : 0;
    g_string_append_printf(s, "    <topology>\n      <cells num='%u'>\n", ncells);
    for (guint i = 0; i < ncells; i++) {
        const SpLvCell *cell = c->cells->pdata[i];
        guint ncpus = cell->cpus ? cell->cpus->len : 0;
        g_string_append_printf(s,
                               "        <cell id='%d'>\n"
                               "          <memory unit='KiB'>%" G_GUINT64_FORMAT "</memory>\n"
                               "          <cpus num='%u'>\n",
                               cell->id, cell->memory_kib, ncpus);
        for (guint k = 0; k < ncpus; k++)
            g_string_append_printf(s, "            <cpu id='%u'/>\n",
                                   g_array_index(cell->cpus, guint, k));
        g_string_append(s, "          </cpus>\n        </cell>\n");
    }
    g_string_append(s, "      </cells>\n    </topology>\n");
}

char *sp_lv_capabilities_xml(const SpLvHostCaps *c)
{
    GString *s = g_string_new("<capabilities>\n\n  <host>\n");
    elem(s, "    ", "uuid", c->host_uuid);
    g_string_append(s, "    <cpu>\n");
    elem(s, "      ", "arch", c->arch);
    elem(s, "      ", "vendor", c->cpu_vendor);
    g_string_append_printf(s,
                           "      <topology sockets='%u' dies='1' cores='%u' threads='%u'/>\n"
                           "      <pages unit='KiB' size='4'/>\n"
                           "    </cpu>\n"
                           "    <power_management/>\n"
                           "    <iommu support='no'/>\n",
                           c->sockets, c->cores, c->threads);
    host_topology(s, c);
    g_string_append(s, "    <secmodel>\n      <model>none</model>\n      <doi>0</doi>\n"
                       "    </secmodel>\n  </host>\n\n");
    g_string_append(s, "  <guest>\n    <os_type>hvm</os_type>\n");
    g_autofree char *arch = g_markup_escape_text(c->arch ? c->arch : "x86_64", -1);
    g_string_append_printf(s, "    <arch name='%s'>\n      <wordsize>64</wordsize>\n", arch);
    elem(s, "      ", "emulator", c->emulator);
    g_string_append(s, "      <domain type='samepage'/>\n      <domain type='kvm'/>\n"
                       "    </arch>\n"
                       "    <features>\n"
                       "      <acpi default='on' toggle='no'/>\n"
                       "      <apic default='on' toggle='no'/>\n"
                       "    </features>\n  </guest>\n\n</capabilities>\n");
    return g_string_free(s, FALSE);
}

char *sp_lv_domcapabilities_xml(const SpLvHostCaps *c, const char *virttype)
{
    GString *s = g_string_new("<domainCapabilities>\n");
    elem(s, "  ", "path", c->emulator);
    elem(s, "  ", "domain", virttype ? virttype : "samepage");
    elem(s, "  ", "arch", c->arch ? c->arch : "x86_64");
    g_string_append_printf(s,
                           "  <vcpu max='%u'/>\n"
                           "  <iothreads supported='no'/>\n"
                           "  <os supported='yes'>\n"
                           "    <enum name='firmware'/>\n"
                           "    <loader supported='no'/>\n"
                           "  </os>\n"
                           "  <cpu>\n"
                           "    <mode name='host-passthrough' supported='no'/>\n"
                           "    <mode name='maximum' supported='no'/>\n"
                           "    <mode name='host-model' supported='no'/>\n"
                           "    <mode name='custom' supported='no'/>\n"
                           "  </cpu>\n"
                           "  <memoryBacking supported='yes'>\n"
                           "    <enum name='sourceType'>\n"
                           "      <value>anonymous</value>\n"
                           "    </enum>\n"
                           "  </memoryBacking>\n"
                           "  <devices>\n"
                           "    <disk supported='no'/>\n"
                           "    <graphics supported='no'/>\n"
                           "    <video supported='no'/>\n"
                           "    <hostdev supported='no'/>\n"
                           "    <rng supported='no'/>\n"
                           "    <filesystem supported='no'/>\n"
                           "    <tpm supported='no'/>\n"
                           "    <redirdev supported='no'/>\n"
                           "    <channel supported='no'/>\n"
                           "  </devices>\n"
                           "  <features>\n"
                           "    <gic supported='no'/>\n"
                           "    <vmcoreinfo supported='no'/>\n"
                           "    <genid supported='no'/>\n"
                           "    <backingStoreInput supported='no'/>\n"
                           "    <backup supported='no'/>\n"
                           "    <sev supported='no'/>\n"
                           "  </features>\n"
                           "</domainCapabilities>\n",
                           c->max_vcpus);
    return g_string_free(s, FALSE);
}
