/* SPDX-License-Identifier: MIT */
/*
 * domxml.c - read libvirt domain XML into SpDomXml (domxml.h lists the
 * classes; docs/libvirt.md has the element table).
 *
 * The document is parsed into a tree (xmltree.c), then walked from <domain>
 * down: every child is looked up in a table of rules for its parent
 * (domain_rules, devices_rules, os_rules, backing_rules).  A rule says
 * whether the element is honoured (a handler fills fields), kept (a copy of
 * its tree goes to a list for dumpxml) or refused (the error says why);
 * an element no table lists is refused as unknown.  Honoured elements check
 * their attributes against a list and their text; kept ones are taken as
 * they are.  Formatting is in domxml-format.c.
 */
#include "vmm/libvirt/domxml.h"

#include <string.h>

#include "vmm/id-list.h"

GQuark sp_domxml_error_quark(void)
{
    return g_quark_from_static_string("sp-domxml-error-quark");
}

typedef enum { HONOURED, KEPT, REFUSED } RuleClass;

typedef bool (*RuleFn)(SpDomXml *d, const SpXmlNode *n, GError **error);

typedef struct {
    const char *name; /* element name (unprefixed: domain XML has no namespace) */
    RuleClass cls;    /* what samepage does with it */
    bool multi;       /* may appear more than once */
    RuleFn fn;        /* honoured: fills d (NULL: handled by the caller) */
    const char *why;  /* refused: the reason given to the user */
} Rule;

static bool fail(GError **error, SpDomXmlErrorCode code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static bool fail(GError **error, SpDomXmlErrorCode code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error_literal(error, SP_DOMXML_ERROR, code, msg);
    return false;
}

static bool refuse(const SpXmlNode *n, const char *why, GError **error)
{
    g_autofree char *path = sp_xml_path(n);
    return fail(error, SP_DOMXML_ERROR_UNSUPPORTED, "unsupported element <%s> (at %s): %s", n->name,
                path, why ? why : "samepage does not understand it");
}

static bool invalid(const SpXmlNode *n, const char *what, const char *value, GError **error)
{
    g_autofree char *path = sp_xml_path(n);
    return fail(error, SP_DOMXML_ERROR_INVALID, "invalid %s '%s' in <%s> (at %s)", what,
                value ? value : "", n->name, path);
}

/* Every attribute of n is in the space-separated list (namespace
 * declarations always are). */
static bool check_attrs(const SpXmlNode *n, const char *allowed, GError **error)
{
    g_auto(GStrv) names = g_strsplit(allowed, " ", -1);
    for (guint i = 0; n->attr_names[i]; i++) {
        const char *a = n->attr_names[i];
        if (g_str_has_prefix(a, "xmlns") || g_strv_contains((const char *const *)names, a))
            continue;
        g_autofree char *path = sp_xml_path(n);
        return fail(error, SP_DOMXML_ERROR_UNSUPPORTED,
                    "unsupported attribute '%s' of <%s> (at %s): samepage does not understand it",
                    a, n->name, path);
    }
    return true;
}

/* A leaf: no child elements; *text is its stripped text ("" if none). */
static bool leaf(const SpXmlNode *n, char **text, GError **error)
{
    if (n->children->len)
        return refuse(n->children->pdata[0], NULL, error);
    *text = g_strstrip(g_strdup(n->text ? n->text : ""));
    return true;
}

/* A container: no text of its own. */
static bool no_text(const SpXmlNode *n, GError **error)
{
    if (!n->text)
        return true;
    g_autofree char *path = sp_xml_path(n);
    return fail(error, SP_DOMXML_ERROR_UNSUPPORTED, "unexpected text '%s' in <%s> (at %s)", n->text,
                n->name, path);
}

static void set_str(char **dst, const char *v)
{
    g_free(*dst);
    *dst = g_strdup(v);
}

/* Converts value * unit to KiB, rounding up; false for unknown units or
 * overflow. */
static bool memory_to_kib(const char *text, const char *unit, guint64 *kib)
{
    static const struct {
        const char *name;
        guint64 bytes;
    } units[] = {
        {"b", 1},
        {"bytes", 1},
        {"KB", 1000},
        {"k", 1024},
        {"KiB", 1024},
        {"MB", 1000000},
        {"M", 1048576},
        {"MiB", 1048576},
        {"GB", 1000000000},
        {"G", 1073741824},
        {"GiB", 1073741824},
        {"TB", 1000000000000ull},
        {"T", 1099511627776ull},
        {"TiB", 1099511627776ull},
    };
    guint64 v, mult = 0;
    if (!g_ascii_string_to_unsigned(text, 10, 0, G_MAXUINT64, &v, NULL))
        return false;
    if (!unit)
        unit = "KiB";
    for (gsize i = 0; i < G_N_ELEMENTS(units); i++)
        if (strcmp(units[i].name, unit) == 0)
            mult = units[i].bytes;
    if (!mult || (v && mult > G_MAXUINT64 / v))
        return false;
    guint64 bytes = v * mult;
    *kib = bytes / 1024 + (bytes % 1024 != 0);
    return true;
}

/* <x unit='...'>N</x> in KiB. */
static bool size_leaf(const SpXmlNode *n, guint64 *kib, GError **error)
{
    g_autofree char *text = NULL;
    if (!check_attrs(n, "unit", error) || !leaf(n, &text, error))
        return false;
    if (!memory_to_kib(text, sp_xml_attr(n, "unit"), kib)) {
        const char *unit = sp_xml_attr(n, "unit");
        return fail(error, SP_DOMXML_ERROR_INVALID, "invalid memory size '%s' unit '%s' in <%s>",
                    text, unit ? unit : "KiB", n->name);
    }
    return true;
}

bool sp_domxml_cpuset_parse(const char *s, guint max, GArray *ids, GError **error)
{
    g_autoptr(GError) err = NULL;
    if (sp_id_list_parse(s, max, ids, &err))
        return true;
    return fail(error, SP_DOMXML_ERROR_INVALID, "%s", err->message);
}

static bool set_valid(const SpXmlNode *n, const char *what, const char *s, guint max,
                      GError **error)
{
    g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(guint));
    if (!s || sp_domxml_cpuset_parse(s, max, ids, NULL))
        return true;
    return invalid(n, what, s, error);
}

/* --- honoured top-level elements --- */

static bool text_field(const SpXmlNode *n, char **field, GError **error)
{
    g_autofree char *text = NULL;
    if (!check_attrs(n, "", error) || !leaf(n, &text, error))
        return false;
    set_str(field, text);
    return true;
}

/* Elements whose text is a string field of d (under <domain> or <os>). */
static bool el_text(SpDomXml *d, const SpXmlNode *n, GError **error)
{
    const struct {
        const char *name;
        char **field;
    } f[] = {{"name", &d->name},     {"title", &d->title},   {"description", &d->description},
             {"kernel", &d->kernel}, {"initrd", &d->initrd}, {"cmdline", &d->cmdline}};
    for (gsize i = 0; i < G_N_ELEMENTS(f); i++)
        if (strcmp(f[i].name, n->name) == 0)
            return text_field(n, f[i].field, error);
    return refuse(n, NULL, error);
}

static bool el_uuid(SpDomXml *d, const SpXmlNode *n, GError **error)
{
    g_autofree char *text = NULL;
    if (!text_field(n, &text, error))
        return false;
    if (!sp_domxml_uuid_parse(text, d->uuid))
        return fail(error, SP_DOMXML_ERROR_INVALID, "malformed uuid '%s'", text);
    d->has_uuid = true;
    return true;
}

/* Elements whose text is a size in KiB: <memory>, <currentMemory>, and
 * <memtune>'s limits (kept; honoured with the swap issue). */
static bool el_size(SpDomXml *d, const SpXmlNode *n, GError **error)
{
    const struct {
        const char *name;
        guint64 *field;
    } f[] = {{"memory", &d->memory_kib},
             {"currentMemory", &d->current_memory_kib},
             {"hard_limit", &d->memtune_hard_limit_kib},
             {"soft_limit", &d->memtune_soft_limit_kib},
             {"swap_hard_limit", &d->memtune_swap_hard_limit_kib},
             {"min_guarantee", &d->memtune_min_guarantee_kib}};
    for (gsize i = 0; i < G_N_ELEMENTS(f); i++)
        if (strcmp(f[i].name, n->name) == 0)
            return size_leaf(n, f[i].field, error);
    return refuse(n, NULL, error);
}

static bool el_vcpu(SpDomXml *d, const SpXmlNode *n, GError **error)
{
    g_autofree char *text = NULL;
    guint64 v, cur = 0;
    if (!check_attrs(n, "placement cpuset current", error) || !leaf(n, &text, error))
        return false;
    if (!g_ascii_string_to_unsigned(text, 10, 1, 4096, &v, NULL))
        return fail(error, SP_DOMXML_ERROR_INVALID, "invalid vcpu count '%s' (1..4096)", text);
    const char *current = sp_xml_attr(n, "current");
    if (current && !g_ascii_string_to_unsigned(current, 10, 1, v, &cur, NULL))
        return fail(error, SP_DOMXML_ERROR_INVALID,
                    "invalid vcpu current='%s' (1..%" G_GUINT64_FORMAT ", the maximum)", current,
                    v);
    const char *placement = sp_xml_attr(n, "placement");
    if (placement && strcmp(placement, "static") && strcmp(placement, "auto"))
        return invalid(n, "vcpu placement (static or auto)", placement, error);
    if (!set_valid(n, "cpuset", sp_xml_attr(n, "cpuset"), 8192, error))
        return false;
    d->vcpus = v;
    d->vcpus_current = cur;
    set_str(&d->vcpu_placement, placement);
    set_str(&d->vcpu_cpuset, sp_xml_attr(n, "cpuset"));
    return true;
}

static bool el_action(SpDomXml *d, const SpXmlNode *n, GError **error)
{
    g_autofree char *text = NULL;
    if (!check_attrs(n, "", error) || !leaf(n, &text, error))
        return false;
    bool crash = strcmp(n->name, "on_crash") == 0;
    SpDomXmlAction a;
    if (strcmp(text, "destroy") == 0)
        a = SP_DOMXML_ACTION_DESTROY;
    else if (strcmp(text, "restart") == 0)
        a = SP_DOMXML_ACTION_RESTART;
    else if (strcmp(text, "preserve") == 0 && crash)
        a = SP_DOMXML_ACTION_PRESERVE;
    else if (!strcmp(text, "preserve") || !strcmp(text, "rename-restart") ||
             !strcmp(text, "coredump-destroy") || !strcmp(text, "coredump-restart"))
        return fail(error, SP_DOMXML_ERROR_UNSUPPORTED,
                    "unsupported action '%s' in <%s>: samepage can destroy or restart%s", text,
                    n->name, crash ? " or preserve" : "");
    else
        return invalid(n, "action", text, error);
    if (crash)
        d->on_crash = a;
    else if (strcmp(n->name, "on_reboot") == 0)
        d->on_reboot = a;
    else
        d->on_poweroff = a;
    return true;
}

/* --- <os> --- */

static bool os_type(SpDomXml *d, const SpXmlNode *n, GError **error)
{
    g_autofree char *text = NULL;
    if (!check_attrs(n, "arch machine", error) || !leaf(n, &text, error))
        return false;
    if (strcmp(text, "hvm") != 0)
        return fail(error, SP_DOMXML_ERROR_UNSUPPORTED,
                    "unsupported os type '%s': samepage runs hvm guests", text);
    const char *arch = sp_xml_attr(n, "arch");
    if (arch && strcmp(arch, "x86_64") != 0)
        return fail(error, SP_DOMXML_ERROR_UNSUPPORTED,
                    "unsupported arch '%s': samepage runs x86_64 guests", arch);
    set_str(&d->os_type, text);
    set_str(&d->os_arch, arch);
    set_str(&d->os_machine, sp_xml_attr(n, "machine"));
    return true;
}

static const char no_firmware[] =
    "samepage boots the kernel or payload directly; it has no firmware to load";

static const Rule os_rules[] = {
    {"type", HONOURED, false, os_type, NULL},
    {"kernel", HONOURED, false, el_text, NULL},
    {"initrd", HONOURED, false, el_text, NULL},
    {"cmdline", HONOURED, false, el_text, NULL},
    {"boot", KEPT, true, NULL, NULL},
    {"bootmenu", KEPT, false, NULL, NULL},
    {"smbios", KEPT, false, NULL, NULL},
    {"bios", KEPT, false, NULL, NULL},
    {"loader", REFUSED, false, NULL, no_firmware},
    {"nvram", REFUSED, false, NULL, no_firmware},
    {NULL},
};

/* --- <memoryBacking> --- */

static bool mb_mode(const SpXmlNode *n, const char *attr, const char *ok, const char *why,
                    GError **error)
{
    const char *v = sp_xml_attr(n, attr);
    if (!check_attrs(n, attr, error))
        return false;
    if (v && strcmp(v, ok) != 0) {
        g_autofree char *path = sp_xml_path(n);
        return fail(error, SP_DOMXML_ERROR_UNSUPPORTED, "unsupported %s='%s' of <%s> (at %s): %s",
                    attr, v, n->name, path, why);
    }
    return true;
}

static bool mb_nosharepages(SpDomXml *d, const SpXmlNode *n, GError **error)
{
    d->nosharepages = true;
    return check_attrs(n, "", error);
}

static bool mb_source(SpDomXml *d, const SpXmlNode *n, GError **error)
{
    return mb_mode(n, "type", "anonymous", "guest RAM is anonymous memory", error);
}

static bool mb_access(SpDomXml *d, const SpXmlNode *n, GError **error)
{
    return mb_mode(n, "mode", "private",
                   "guest RAM is private to its VM process; shared access (vhost-user) is not "
                   "possible",
                   error);
}

static bool mb_allocation(SpDomXml *d, const SpXmlNode *n, GError **error)
{
    return mb_mode(n, "mode", "ondemand", "samepage allocates guest RAM on demand", error);
}

static const Rule backing_rules[] = {
    {"nosharepages", HONOURED, false, mb_nosharepages, NULL},
    {"source", HONOURED, false, mb_source, NULL},
    {"access", HONOURED, false, mb_access, NULL},
    {"allocation", HONOURED, false, mb_allocation, NULL},
    {"discard", KEPT, false, NULL, NULL},
    {"hugepages", REFUSED, false, NULL,
     "samepage shares guest RAM in 4 KiB pages; huge pages cannot be merged"},
    {"locked", REFUSED, false, NULL,
     "samepage remaps and swaps guest RAM; it cannot lock it in host memory"},
    {NULL},
};

/* --- <memtune>, <numatune> (parsed and kept; behaviour with swap/NUMA) --- */

static const Rule memtune_rules[] = {
    {"hard_limit", HONOURED, false, el_size, NULL},
    {"soft_limit", HONOURED, false, el_size, NULL},
    {"swap_hard_limit", HONOURED, false, el_size, NULL},
    {"min_guarantee", HONOURED, false, el_size, NULL},
    {NULL},
};

static bool numa_mode_valid(const SpXmlNode *n, const char *mode, GError **error)
{
    const char *modes[] = {"strict", "preferred", "interleave", "restrictive", NULL};
    if (!mode || g_strv_contains(modes, mode))
        return true;
    return invalid(n, "numatune mode", mode, error);
}

static bool nt_memory(SpDomXml *d, const SpXmlNode *n, GError **error)
{
    const char *mode = sp_xml_attr(n, "mode"), *placement = sp_xml_attr(n, "placement");
    if (!check_attrs(n, "mode nodeset placement", error) || !numa_mode_valid(n, mode, error) ||
        !set_valid(n, "nodeset", sp_xml_attr(n, "nodeset"), 1024, error))
        return false;
    if (placement && strcmp(placement, "static") && strcmp(placement, "auto"))
        return invalid(n, "numatune placement (static or auto)", placement, error);
    set_str(&d->numa_mode, mode);
    set_str(&d->numa_nodeset, sp_xml_attr(n, "nodeset"));
    set_str(&d->numa_placement, placement);
    return true;
}

static bool nt_memnode(SpDomXml *d, const SpXmlNode *n, GError **error)
{
    const char *mode = sp_xml_attr(n, "mode"), *cell = sp_xml_attr(n, "cellid");
    guint64 id;
    if (!check_attrs(n, "cellid mode nodeset", error) || !numa_mode_valid(n, mode, error) ||
        !set_valid(n, "nodeset", sp_xml_attr(n, "nodeset"), 1024, error))
        return false;
    if (!cell || !g_ascii_string_to_unsigned(cell, 10, 0, 1023, &id, NULL))
        return invalid(n, "cellid", cell, error);
    for (guint i = 0; i < d->numa_memnodes->len; i++)
        if (((SpDomXmlMemnode *)d->numa_memnodes->pdata[i])->cellid == id)
            return invalid(n, "cellid (given twice)", cell, error);
    SpDomXmlMemnode *m = g_new0(SpDomXmlMemnode, 1);
    m->cellid = (guint32)id;
    m->mode = g_strdup(mode);
    m->nodeset = g_strdup(sp_xml_attr(n, "nodeset"));
    g_ptr_array_add(d->numa_memnodes, m);
    return true;
}

static const Rule numatune_rules[] = {
    {"memory", HONOURED, false, nt_memory, NULL},
    {"memnode", HONOURED, true, nt_memnode, NULL},
    {NULL},
};

/* --- <devices> --- */

static const char *first_attr_of_child(const SpXmlNode *n, const char *child, const char *attrs)
{
    g_auto(GStrv) names = g_strsplit(attrs, " ", -1);
    for (guint i = 0; i < n->children->len; i++) {
        const SpXmlNode *c = n->children->pdata[i];
        if (strcmp(c->name, child) != 0)
            continue;
        for (char **a = names; *a; a++)
            if (sp_xml_attr(c, *a))
                return sp_xml_attr(c, *a);
    }
    return NULL;
}

/* A disk or interface: kept as it is; its target names its statistics. */
static bool dev_kept_view(SpDomXml *d, const SpXmlNode *n, GError **error)
{
    bool disk = strcmp(n->name, "disk") == 0;
    SpDomXmlDevice *v = g_new0(SpDomXmlDevice, 1);
    v->node = (SpXmlNode *)n;
    v->type = sp_xml_attr(n, "type");
    v->source =
        first_attr_of_child(n, "source", disk ? "file dev name volume" : "bridge network dev");
    v->target = first_attr_of_child(n, "target", "dev");
    GPtrArray *list = disk ? d->disks : d->interfaces;
    g_ptr_array_add(list, v);
    if (!v->target || !*v->target)
        return fail(error, SP_DOMXML_ERROR_INVALID, "<%s> needs <target dev='...'/>", n->name);
    for (guint i = 0; i + 1 < list->len; i++)
        if (strcmp(((SpDomXmlDevice *)list->pdata[i])->target, v->target) == 0)
            return fail(error, SP_DOMXML_ERROR_INVALID, "%s target '%s' is used twice", n->name,
                        v->target);
    return true;
}

/* <serial> and <console>: samepage's one 8250 UART (COM1), whose output
 * goes to the console log (type pty) or to the file of type file. */
static bool dev_uart(SpDomXml *d, const SpXmlNode *n, GError **error)
{
    bool console = strcmp(n->name, "console") == 0;
    const char *type = sp_xml_attr(n, "type");
    const char *port = first_attr_of_child(n, "target", "port");
    const char *ttype = first_attr_of_child(n, "target", "type");
    const char *path = first_attr_of_child(n, "source", "path");
    if (!type || (strcmp(type, "pty") && strcmp(type, "file")))
        return fail(error, SP_DOMXML_ERROR_UNSUPPORTED,
                    "unsupported <%s type='%s'>: samepage's serial port writes its console log "
                    "(type 'pty') or a file (type 'file')",
                    n->name, type ? type : "");
    if (port && strcmp(port, "0") != 0)
        return fail(error, SP_DOMXML_ERROR_UNSUPPORTED,
                    "unsupported <%s> port %s: samepage has one serial port (port 0)", n->name,
                    port);
    if (console && ttype && strcmp(ttype, "serial") != 0)
        return fail(error, SP_DOMXML_ERROR_UNSUPPORTED,
                    "unsupported console target type '%s': samepage's console is its serial port",
                    ttype);
    if (!console && ttype && strcmp(ttype, "isa-serial") != 0)
        return fail(error, SP_DOMXML_ERROR_UNSUPPORTED,
                    "unsupported serial target type '%s': samepage has an ISA 8250 UART", ttype);
    if (strcmp(type, "file") == 0 && (!path || !g_path_is_absolute(path)))
        return fail(error, SP_DOMXML_ERROR_INVALID,
                    "<%s type='file'> needs <source path='/absolute/file'/>", n->name);
    guint same = 0;
    for (guint i = 0; i < d->devices->len; i++)
        same += strcmp(((SpXmlNode *)d->devices->pdata[i])->name, n->name) == 0;
    if (same > 1)
        return fail(error, SP_DOMXML_ERROR_UNSUPPORTED,
                    "a second <%s>: samepage has one serial port", n->name);
    if (!console || !d->serial_type) { /* <serial> describes the port; <console> names it */
        set_str(&d->serial_type, type);
        set_str(&d->serial_path, strcmp(type, "file") == 0 ? path : NULL);
    }
    return true;
}

static const char guest_depends[] = "the guest would depend on a device samepage does not provide";

static const Rule devices_rules[] = {
    {"emulator", KEPT, false, NULL, NULL},
    {"disk", KEPT, true, dev_kept_view, NULL},
    {"interface", KEPT, true, dev_kept_view, NULL},
    {"serial", HONOURED, true, dev_uart, NULL},
    {"console", HONOURED, true, dev_uart, NULL},
    {"controller", KEPT, true, NULL, NULL},
    {"input", KEPT, true, NULL, NULL},
    {"graphics", KEPT, true, NULL, NULL},
    {"video", KEPT, true, NULL, NULL},
    {"sound", KEPT, true, NULL, NULL},
    {"audio", KEPT, true, NULL, NULL},
    {"memballoon", KEPT, false, NULL, NULL},
    {"rng", KEPT, true, NULL, NULL},
    {"channel", KEPT, true, NULL, NULL},
    {"panic", KEPT, true, NULL, NULL},
    {"hub", KEPT, true, NULL, NULL},
    {"redirdev", KEPT, true, NULL, NULL},
    {"smartcard", KEPT, true, NULL, NULL},
    {"lease", KEPT, true, NULL, NULL},
    {"hostdev", REFUSED, true, NULL, guest_depends},
    {"filesystem", REFUSED, true, NULL, guest_depends},
    {"shmem", REFUSED, true, NULL, guest_depends},
    {"vsock", REFUSED, true, NULL, guest_depends},
    {"tpm", REFUSED, true, NULL, guest_depends},
    {"iommu", REFUSED, true, NULL, guest_depends},
    {"crypto", REFUSED, true, NULL, guest_depends},
    {"nvram", REFUSED, true, NULL, guest_depends},
    {"parallel", REFUSED, true, NULL, guest_depends},
    {"memory", REFUSED, true, NULL, "samepage VMs have fixed RAM: no memory devices"},
    {"watchdog", REFUSED, true, NULL,
     "samepage has no watchdog device: a guest that arms one would never be reset"},
    {NULL},
};

/* --- <metadata> --- */

/* Runs fn on each child of n named `local` in the samepage namespace; other
 * children of <sp:samepage> are refused. */
static bool sp_leaf(SpDomXml *d, const SpXmlNode *c, GError **error)
{
    char **fields[] = {&d->sp_payload, &d->sp_args, &d->sp_domain, &d->sp_share};
    const char *names[] = {"payload", "args", "domain", "share"};
    const char *local = sp_xml_local_name(c);
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++)
        if (strcmp(local, names[i]) == 0) {
            if (*fields[i])
                return fail(error, SP_DOMXML_ERROR_INVALID,
                            "element <%s> (at domain/metadata/samepage) given more than once",
                            c->name);
            return text_field(c, fields[i], error);
        }
    return refuse(c, "not a samepage metadata element", error);
}

/* The namespace a metadata child declares on itself, or NULL. */
static const char *own_namespace(const SpXmlNode *n)
{
    const char *colon = strchr(n->name, ':');
    g_autofree char *decl =
        colon ? g_strdup_printf("xmlns:%.*s", (int)(colon - n->name), n->name) : g_strdup("xmlns");
    return sp_xml_attr(n, decl);
}

static bool el_metadata(SpDomXml *d, const SpXmlNode *n, GError **error)
{
    bool seen_sp = false;
    if (!check_attrs(n, "", error) || !no_text(n, error))
        return false;
    for (guint i = 0; i < n->children->len; i++) {
        const SpXmlNode *c = n->children->pdata[i];
        const char *ns = own_namespace(c);
        if (!ns) {
            g_autofree char *path = sp_xml_path(c);
            return fail(error, SP_DOMXML_ERROR_INVALID,
                        "metadata element <%s> (at %s) must declare its own namespace", c->name,
                        path);
        }
        if (strcmp(ns, SP_DOMXML_NS) != 0) {
            g_ptr_array_add(d->metadata_kept, sp_xml_node_copy(c));
            continue;
        }
        if (strcmp(sp_xml_local_name(c), "samepage") != 0)
            return refuse(c, "the samepage namespace has one metadata element, <samepage>", error);
        if (seen_sp)
            return fail(error, SP_DOMXML_ERROR_INVALID, "more than one samepage metadata element");
        seen_sp = true;
        if (!check_attrs(c, "", error) || !no_text(c, error))
            return false;
        for (guint k = 0; k < c->children->len; k++)
            if (!sp_leaf(d, c->children->pdata[k], error))
                return false;
    }
    return true;
}

/* --- the walk --- */

static bool walk(SpDomXml *d, const SpXmlNode *parent, const Rule *rules, GPtrArray *kept,
                 bool keep_all, GError **error);

static bool el_os(SpDomXml *d, const SpXmlNode *n, GError **error)
{
    if (sp_xml_attr(n, "firmware"))
        return refuse(n, no_firmware, error);
    return check_attrs(n, "", error) && walk(d, n, os_rules, d->os_kept, false, error);
}

static bool el_memory_backing(SpDomXml *d, const SpXmlNode *n, GError **error)
{
    d->memory_backing = sp_xml_node_copy(n);
    return check_attrs(n, "", error) && walk(d, n, backing_rules, NULL, false, error);
}

static bool el_memtune(SpDomXml *d, const SpXmlNode *n, GError **error)
{
    d->has_memtune = true;
    return check_attrs(n, "", error) && walk(d, n, memtune_rules, NULL, false, error);
}

static bool el_numatune(SpDomXml *d, const SpXmlNode *n, GError **error)
{
    d->has_numatune = true;
    return check_attrs(n, "", error) && walk(d, n, numatune_rules, NULL, false, error);
}

static bool el_devices(SpDomXml *d, const SpXmlNode *n, GError **error)
{
    return check_attrs(n, "", error) && walk(d, n, devices_rules, d->devices, true, error);
}

static const Rule domain_rules[] = {
    {"name", HONOURED, false, el_text, NULL},
    {"uuid", HONOURED, false, el_uuid, NULL},
    {"title", HONOURED, false, el_text, NULL},
    {"description", HONOURED, false, el_text, NULL},
    {"metadata", HONOURED, false, el_metadata, NULL},
    {"memory", HONOURED, false, el_size, NULL},
    {"currentMemory", HONOURED, false, el_size, NULL},
    {"vcpu", HONOURED, false, el_vcpu, NULL},
    {"os", HONOURED, false, el_os, NULL},
    {"memoryBacking", HONOURED, false, el_memory_backing, NULL},
    {"memtune", HONOURED, false, el_memtune, NULL},
    {"numatune", HONOURED, false, el_numatune, NULL},
    {"on_poweroff", HONOURED, false, el_action, NULL},
    {"on_reboot", HONOURED, false, el_action, NULL},
    {"on_crash", HONOURED, false, el_action, NULL},
    {"devices", HONOURED, false, el_devices, NULL},
    {"features", KEPT, false, NULL, NULL},
    {"cpu", KEPT, false, NULL, NULL},
    {"clock", KEPT, false, NULL, NULL},
    {"pm", KEPT, false, NULL, NULL},
    {"sysinfo", KEPT, true, NULL, NULL},
    {"seclabel", KEPT, true, NULL, NULL},
    {"resource", KEPT, false, NULL, NULL},
    {"iothreads", KEPT, false, NULL, NULL},
    {"blkiotune", KEPT, false, NULL, NULL},
    {"perf", KEPT, false, NULL, NULL},
    {"on_lockfailure", KEPT, false, NULL, NULL},
    {"maxMemory", REFUSED, false, NULL, "samepage VMs have fixed RAM (no memory hotplug)"},
    {"cputune", REFUSED, false, NULL,
     "per-vCPU pinning and scheduler tuning are not supported (<vcpu cpuset='...'> is)"},
    {"launchSecurity", REFUSED, false, NULL,
     "samepage cannot encrypt guest memory (and sharing would defeat it)"},
    {NULL},
};

static const Rule *rule_find(const Rule *rules, const char *name)
{
    for (const Rule *r = rules; r->name; r++)
        if (strcmp(r->name, name) == 0)
            return r;
    return NULL;
}

/* Applies `rules` to the children of parent: honoured ones to their
 * handler, kept ones copied to `kept` (if given; with keep_all, every
 * child, so that <devices> keeps its order), refused or unknown ones are an
 * error.  An element that is not `multi` may appear once.  A handler gets
 * the copy when there is one (device views point into it). */
static bool walk(SpDomXml *d, const SpXmlNode *parent, const Rule *rules, GPtrArray *kept,
                 bool keep_all, GError **error)
{
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    if (!no_text(parent, error))
        return false;
    for (guint i = 0; i < parent->children->len; i++) {
        const SpXmlNode *c = parent->children->pdata[i];
        const Rule *r = rule_find(rules, c->name);
        if (!r || r->cls == REFUSED)
            return refuse(c, r ? r->why : NULL, error);
        if (!r->multi && !g_hash_table_add(seen, c->name)) {
            g_autofree char *path = sp_xml_path(c);
            return fail(error, SP_DOMXML_ERROR_INVALID, "element <%s> (at %s) given more than once",
                        c->name, path);
        }
        const SpXmlNode *at = c;
        if (kept && (keep_all || r->cls == KEPT)) {
            SpXmlNode *copy = sp_xml_node_copy(c);
            g_ptr_array_add(kept, copy);
            at = copy;
        }
        if (r->fn && !r->fn(d, at, error))
            return false;
    }
    return true;
}

static void device_view_free(gpointer p)
{
    g_free(p);
}

static void memnode_free(gpointer p)
{
    SpDomXmlMemnode *m = p;
    g_free(m->mode);
    g_free(m->nodeset);
    g_free(m);
}

SpDomXml *sp_domxml_new(void)
{
    SpDomXml *d = g_new0(SpDomXml, 1);
    d->os_kept = g_ptr_array_new_with_free_func((GDestroyNotify)sp_xml_node_free);
    d->metadata_kept = g_ptr_array_new_with_free_func((GDestroyNotify)sp_xml_node_free);
    d->kept = g_ptr_array_new_with_free_func((GDestroyNotify)sp_xml_node_free);
    d->devices = g_ptr_array_new_with_free_func((GDestroyNotify)sp_xml_node_free);
    d->disks = g_ptr_array_new_with_free_func(device_view_free);
    d->interfaces = g_ptr_array_new_with_free_func(device_view_free);
    d->numa_memnodes = g_ptr_array_new_with_free_func(memnode_free);
    return d;
}

void sp_domxml_free(SpDomXml *d)
{
    if (!d)
        return;
    char *strs[] = {d->type,           d->name,         d->title,          d->description,
                    d->vcpu_placement, d->vcpu_cpuset,  d->os_type,        d->os_arch,
                    d->os_machine,     d->kernel,       d->initrd,         d->cmdline,
                    d->sp_payload,     d->sp_args,      d->sp_domain,      d->sp_share,
                    d->numa_mode,      d->numa_nodeset, d->numa_placement, d->serial_type,
                    d->serial_path};
    for (gsize i = 0; i < G_N_ELEMENTS(strs); i++)
        g_free(strs[i]);
    sp_xml_node_free(d->memory_backing);
    g_ptr_array_unref(d->disks); /* views into devices: before them */
    g_ptr_array_unref(d->interfaces);
    g_ptr_array_unref(d->devices);
    g_ptr_array_unref(d->os_kept);
    g_ptr_array_unref(d->metadata_kept);
    g_ptr_array_unref(d->kept);
    g_ptr_array_unref(d->numa_memnodes);
    g_free(d);
}

bool sp_domxml_uuid_parse(const char *s, guint8 out[16])
{
    int n = 0;
    for (const char *p = s; *p && n < 32; p++) {
        if (*p == '-')
            continue;
        int v = g_ascii_xdigit_value(*p);
        if (v < 0)
            return false;
        if (n % 2 == 0)
            out[n / 2] = v << 4;
        else
            out[n / 2] |= v;
        n++;
    }
    if (n != 32)
        return false;
    /* nothing but the 32 digits and dashes */
    gsize digits = 0;
    for (const char *p = s; *p; p++)
        digits += *p != '-';
    return digits == 32;
}

void sp_domxml_uuid_format(const guint8 u[16], char out[37])
{
    g_snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
               u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
               u[13], u[14], u[15]);
}

/* Checks that need the whole definition; fills the defaults. */
static bool domxml_finish(SpDomXml *d, GError **error)
{
    if (!d->name || !*d->name)
        return fail(error, SP_DOMXML_ERROR_INVALID, "missing <name> in domain XML");
    if (strchr(d->name, '/'))
        return fail(error, SP_DOMXML_ERROR_INVALID, "domain name '%s' contains '/'", d->name);
    if (!d->memory_kib)
        return fail(error, SP_DOMXML_ERROR_INVALID, "missing or zero <memory> in domain XML");
    if (!d->current_memory_kib)
        d->current_memory_kib = d->memory_kib;
    if (d->current_memory_kib > d->memory_kib)
        return fail(error, SP_DOMXML_ERROR_INVALID,
                    "<currentMemory> (%" G_GUINT64_FORMAT " KiB) exceeds <memory> "
                    "(%" G_GUINT64_FORMAT " KiB)",
                    d->current_memory_kib, d->memory_kib);
    if (!d->vcpus)
        d->vcpus = 1;
    if (!d->os_type)
        d->os_type = g_strdup("hvm");
    return true;
}

SpDomXml *sp_domxml_parse(const char *xml, GError **error)
{
    g_autoptr(GError) perr = NULL;
    g_autoptr(SpXmlNode) root = sp_xml_parse(xml, &perr);
    if (!root) {
        fail(error, SP_DOMXML_ERROR_SYNTAX, "malformed domain XML: %s", perr->message);
        return NULL;
    }
    if (strcmp(root->name, "domain") != 0) {
        refuse(root, "the document must be a <domain>", error);
        return NULL;
    }
    g_autoptr(SpDomXml) d = sp_domxml_new();
    const char *type = sp_xml_attr(root, "type");
    if (!check_attrs(root, "type id", error))
        return NULL;
    if (type && strcmp(type, "samepage") && strcmp(type, "kvm")) {
        fail(error, SP_DOMXML_ERROR_UNSUPPORTED,
             "unsupported domain type '%s': samepage runs KVM guests (type 'samepage' or 'kvm')",
             type);
        return NULL;
    }
    d->type = g_strdup(type);
    if (!walk(d, root, domain_rules, d->kept, false, error) || !domxml_finish(d, error))
        return NULL;
    return g_steal_pointer(&d);
}

SpDomXml *sp_domxml_copy(const SpDomXml *d)
{
    g_autofree char *xml = sp_domxml_format(d, -1);
    return sp_domxml_parse(xml, NULL);
}

guint32 sp_domxml_vcpus_running(const SpDomXml *d)
{
    return d->vcpus_current ? d->vcpus_current : d->vcpus;
}

SpDomXmlAction sp_domxml_on_poweroff(const SpDomXml *d)
{
    return d->on_poweroff ? d->on_poweroff : SP_DOMXML_ACTION_DESTROY;
}

SpDomXmlAction sp_domxml_on_reboot(const SpDomXml *d)
{
    return d->on_reboot ? d->on_reboot : SP_DOMXML_ACTION_RESTART;
}

SpDomXmlAction sp_domxml_on_crash(const SpDomXml *d)
{
    return d->on_crash ? d->on_crash : SP_DOMXML_ACTION_DESTROY;
}
