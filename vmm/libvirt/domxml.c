/* SPDX-License-Identifier: MIT */
/*
 * domxml.c - parse and format samepage's subset of libvirt domain XML
 * (domxml.h lists it).
 *
 * The parser is a GMarkup SAX walk that keeps the path of open elements
 * ("domain/devices/disk/target").  Each path has a row in the allowed table
 * with the attributes it accepts and whether it holds text; anything not in
 * the table is an error naming its path.  Elements in the samepage namespace
 * are matched by namespace URI, not by prefix.
 */
#include "vmm/libvirt/domxml.h"

#include <string.h>

GQuark sp_domxml_error_quark(void)
{
    return g_quark_from_static_string("sp-domxml-error-quark");
}

typedef struct {
    const char *path;  /* canonical path (samepage elements without prefix) */
    const char *attrs; /* space-separated attribute names allowed */
    bool text;         /* holds a text value */
} AllowedElem;

static const AllowedElem allowed[] = {
    {"domain", "type id", false},
    {"domain/name", "", true},
    {"domain/uuid", "", true},
    {"domain/title", "", true},
    {"domain/description", "", true},
    {"domain/memory", "unit", true},
    {"domain/currentMemory", "unit", true},
    {"domain/vcpu", "", true},
    {"domain/os", "", false},
    {"domain/os/type", "arch machine", true},
    {"domain/os/kernel", "", true},
    {"domain/os/initrd", "", true},
    {"domain/os/cmdline", "", true},
    {"domain/metadata", "", false},
    {"domain/metadata/samepage", "", false},
    {"domain/metadata/samepage/payload", "", true},
    {"domain/metadata/samepage/args", "", true},
    {"domain/metadata/samepage/domain", "", true},
    {"domain/metadata/samepage/share", "", true},
    {"domain/devices", "", false},
    {"domain/devices/disk", "type device", false},
    {"domain/devices/disk/source", "file dev name", false},
    {"domain/devices/disk/target", "dev bus", false},
    {"domain/devices/disk/driver", "name type", false},
    {"domain/devices/disk/readonly", "", false},
    {"domain/devices/interface", "type", false},
    {"domain/devices/interface/source", "bridge network dev", false},
    {"domain/devices/interface/target", "dev", false},
    {"domain/devices/interface/mac", "address", false},
    {"domain/devices/interface/model", "type", false},
};

typedef struct {
    SpDomXml *d;         /* being filled */
    GPtrArray *stack;    /* canonical element names */
    GString *text;       /* text of the current leaf */
    char *sp_prefix;     /* prefix bound to SP_DOMXML_NS inside sp:samepage ("" = default ns) */
    bool seen_samepage;  /* only one sp:samepage block */
    SpDomXmlDevice *dev; /* device being parsed */
    char *unit;          /* unit attribute of the open memory element */
    GHashTable *seen;    /* "path#device" of every element seen: no repeats */
    guint dev_serial;    /* number of disk/interface elements so far */
} ParseState;

static void set_str(char **dst, const char *v)
{
    g_free(*dst);
    *dst = g_strdup(v);
}

static void device_free(gpointer p)
{
    SpDomXmlDevice *v = p;
    g_free(v->type);
    g_free(v->device);
    g_free(v->source);
    g_free(v->source_attr);
    g_free(v->target);
    g_free(v->bus);
    g_free(v->driver_name);
    g_free(v->driver_type);
    g_free(v->mac);
    g_free(v->model);
    g_free(v);
}

SpDomXml *sp_domxml_new(void)
{
    SpDomXml *d = g_new0(SpDomXml, 1);
    d->disks = g_ptr_array_new_with_free_func(device_free);
    d->interfaces = g_ptr_array_new_with_free_func(device_free);
    return d;
}

void sp_domxml_free(SpDomXml *d)
{
    if (!d)
        return;
    g_free(d->type);
    g_free(d->name);
    g_free(d->title);
    g_free(d->description);
    g_free(d->os_type);
    g_free(d->os_arch);
    g_free(d->os_machine);
    g_free(d->kernel);
    g_free(d->initrd);
    g_free(d->cmdline);
    g_free(d->sp_payload);
    g_free(d->sp_args);
    g_free(d->sp_domain);
    g_free(d->sp_share);
    g_ptr_array_unref(d->disks);
    g_ptr_array_unref(d->interfaces);
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

static char *state_path(ParseState *st)
{
    GString *s = g_string_new(NULL);
    for (guint i = 0; i < st->stack->len; i++) {
        if (i)
            g_string_append_c(s, '/');
        g_string_append(s, st->stack->pdata[i]);
    }
    return g_string_free(s, FALSE);
}

static const AllowedElem *allowed_find(const char *path)
{
    for (gsize i = 0; i < G_N_ELEMENTS(allowed); i++)
        if (strcmp(allowed[i].path, path) == 0)
            return &allowed[i];
    return NULL;
}

static bool attr_allowed(const AllowedElem *a, const char *attr)
{
    if (g_str_has_prefix(attr, "xmlns"))
        return true;
    g_auto(GStrv) names = g_strsplit(a->attrs, " ", -1);
    return g_strv_contains((const char *const *)names, attr);
}

static const char *attr_get(const char **names, const char **values, const char *name)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], name) == 0)
            return values[i];
    return NULL;
}

/* Canonical name of an element: samepage-namespace elements lose their
 * prefix; returns NULL (error set) for a foreign namespace. */
static char *elem_canonical(ParseState *st, const char *name, const char **names,
                            const char **values, GError **error)
{
    g_autofree char *parent = state_path(st);
    const char *colon = strchr(name, ':');
    if (strcmp(parent, "domain/metadata") == 0) {
        g_autofree char *prefix = colon ? g_strndup(name, colon - name) : g_strdup("");
        const char *local = colon ? colon + 1 : name;
        g_autofree char *xmlns = *prefix ? g_strdup_printf("xmlns:%s", prefix) : g_strdup("xmlns");
        const char *ns = attr_get(names, values, xmlns);
        if (!ns || strcmp(ns, SP_DOMXML_NS) != 0 || strcmp(local, "samepage") != 0) {
            g_set_error(error, SP_DOMXML_ERROR, SP_DOMXML_ERROR_UNSUPPORTED,
                        "unsupported metadata element <%s>: only <samepage xmlns='%s'> "
                        "is understood",
                        name, SP_DOMXML_NS);
            return NULL;
        }
        if (st->seen_samepage) {
            g_set_error(error, SP_DOMXML_ERROR, SP_DOMXML_ERROR_INVALID,
                        "more than one samepage metadata element");
            return NULL;
        }
        st->seen_samepage = true;
        g_free(st->sp_prefix);
        st->sp_prefix = g_steal_pointer(&prefix);
        return g_strdup("samepage");
    }
    if (g_str_has_prefix(parent, "domain/metadata/samepage")) {
        const char *local = name;
        if (*st->sp_prefix) {
            if (!colon || (gsize)(colon - name) != strlen(st->sp_prefix) ||
                strncmp(name, st->sp_prefix, colon - name) != 0) {
                g_set_error(error, SP_DOMXML_ERROR, SP_DOMXML_ERROR_UNSUPPORTED,
                            "unsupported element <%s> in %s", name, parent);
                return NULL;
            }
            local = colon + 1;
        } else if (colon) {
            g_set_error(error, SP_DOMXML_ERROR, SP_DOMXML_ERROR_UNSUPPORTED,
                        "unsupported element <%s> in %s", name, parent);
            return NULL;
        }
        return g_strdup(local);
    }
    return g_strdup(name);
}

static void on_start(GMarkupParseContext *ctx, const char *name, const char **names,
                     const char **values, gpointer data, GError **error)
{
    ParseState *st = data;
    char *canon = elem_canonical(st, name, names, values, error);
    if (!canon)
        return;
    g_ptr_array_add(st->stack, canon);
    g_autofree char *path = state_path(st);
    const AllowedElem *a = allowed_find(path);
    if (!a) {
        g_set_error(error, SP_DOMXML_ERROR, SP_DOMXML_ERROR_UNSUPPORTED,
                    "unsupported element <%s> (at %s): samepage does not understand it", name,
                    path);
        return;
    }
    for (int i = 0; names[i]; i++) {
        if (!attr_allowed(a, names[i])) {
            g_set_error(error, SP_DOMXML_ERROR, SP_DOMXML_ERROR_UNSUPPORTED,
                        "unsupported attribute '%s' of <%s> (at %s)", names[i], name, path);
            return;
        }
    }
    bool is_dev =
        strcmp(path, "domain/devices/disk") == 0 || strcmp(path, "domain/devices/interface") == 0;
    if (is_dev)
        st->dev_serial++;
    else {
        bool in_dev = g_str_has_prefix(path, "domain/devices/disk/") ||
                      g_str_has_prefix(path, "domain/devices/interface/");
        char *key = g_strdup_printf("%s#%u", path, in_dev ? st->dev_serial : 0);
        if (!g_hash_table_add(st->seen, key)) {
            g_set_error(error, SP_DOMXML_ERROR, SP_DOMXML_ERROR_INVALID,
                        "element <%s> (at %s) given more than once", name, path);
            return;
        }
    }
    g_string_truncate(st->text, 0);
    SpDomXml *d = st->d;
    if (strcmp(path, "domain") == 0) {
        g_free(d->type);
        d->type = g_strdup(attr_get(names, values, "type"));
    } else if (strcmp(path, "domain/devices/disk") == 0 ||
               strcmp(path, "domain/devices/interface") == 0) {
        st->dev = g_new0(SpDomXmlDevice, 1);
        st->dev->type = g_strdup(attr_get(names, values, "type"));
        st->dev->device = g_strdup(attr_get(names, values, "device"));
        g_ptr_array_add(strstr(path, "disk") ? d->disks : d->interfaces, st->dev);
    } else if (g_str_has_suffix(path, "/source") && st->dev) {
        if (names[0] && !names[1]) {
            g_free(st->dev->source_attr);
            g_free(st->dev->source);
            st->dev->source_attr = g_strdup(names[0]);
            st->dev->source = g_strdup(values[0]);
        } else if (names[0]) {
            g_set_error(error, SP_DOMXML_ERROR, SP_DOMXML_ERROR_INVALID,
                        "<source> at %s needs exactly one attribute", path);
        }
    } else if (g_str_has_suffix(path, "/target") && st->dev) {
        g_free(st->dev->target);
        g_free(st->dev->bus);
        st->dev->target = g_strdup(attr_get(names, values, "dev"));
        st->dev->bus = g_strdup(attr_get(names, values, "bus"));
    } else if (g_str_has_suffix(path, "/driver") && st->dev) {
        set_str(&st->dev->driver_name, attr_get(names, values, "name"));
        set_str(&st->dev->driver_type, attr_get(names, values, "type"));
    } else if (g_str_has_suffix(path, "/readonly") && st->dev) {
        st->dev->readonly = true;
    } else if (g_str_has_suffix(path, "/mac") && st->dev) {
        g_free(st->dev->mac);
        st->dev->mac = g_strdup(attr_get(names, values, "address"));
    } else if (g_str_has_suffix(path, "/model") && st->dev) {
        g_free(st->dev->model);
        st->dev->model = g_strdup(attr_get(names, values, "type"));
    } else if (strcmp(path, "domain/os/type") == 0) {
        set_str(&d->os_arch, attr_get(names, values, "arch"));
        set_str(&d->os_machine, attr_get(names, values, "machine"));
    } else if (strcmp(path, "domain/memory") == 0 || strcmp(path, "domain/currentMemory") == 0) {
        g_free(st->unit);
        st->unit = g_strdup(attr_get(names, values, "unit"));
    }
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

/* The string of d that keeps the text of element `path` as it is, or NULL
 * (the text of the other elements is parsed in on_end). */
static char **text_field(SpDomXml *d, const char *path)
{
    const struct {
        const char *path;
        char **field;
    } fields[] = {
        {"domain/name", &d->name},
        {"domain/title", &d->title},
        {"domain/description", &d->description},
        {"domain/os/type", &d->os_type},
        {"domain/os/kernel", &d->kernel},
        {"domain/os/initrd", &d->initrd},
        {"domain/os/cmdline", &d->cmdline},
        {"domain/metadata/samepage/payload", &d->sp_payload},
        {"domain/metadata/samepage/args", &d->sp_args},
        {"domain/metadata/samepage/domain", &d->sp_domain},
        {"domain/metadata/samepage/share", &d->sp_share},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(fields); i++)
        if (strcmp(fields[i].path, path) == 0)
            return fields[i].field;
    return NULL;
}

static void on_end(GMarkupParseContext *ctx, const char *name, gpointer data, GError **error)
{
    ParseState *st = data;
    g_autofree char *path = state_path(st);
    g_autofree char *text = g_strstrip(g_strdup(st->text->str));
    SpDomXml *d = st->d;
    const AllowedElem *a = allowed_find(path);
    g_string_truncate(st->text, 0);
    g_ptr_array_remove_index(st->stack, st->stack->len - 1);
    if (!a)
        return;
    if (!a->text && *text) {
        g_set_error(error, SP_DOMXML_ERROR, SP_DOMXML_ERROR_UNSUPPORTED,
                    "unexpected text '%s' in <%s> (at %s)", text, name, path);
        return;
    }
    char **field = text_field(d, path);
    if (field) {
        set_str(field, text);
    } else if (strcmp(path, "domain/uuid") == 0) {
        if (!sp_domxml_uuid_parse(text, d->uuid)) {
            g_set_error(error, SP_DOMXML_ERROR, SP_DOMXML_ERROR_INVALID, "malformed uuid '%s'",
                        text);
            return;
        }
        d->has_uuid = true;
    } else if (strcmp(path, "domain/memory") == 0 || strcmp(path, "domain/currentMemory") == 0) {
        guint64 kib;
        if (!memory_to_kib(text, st->unit, &kib)) {
            g_set_error(error, SP_DOMXML_ERROR, SP_DOMXML_ERROR_INVALID,
                        "invalid memory size '%s' unit '%s' in <%s>", text,
                        st->unit ? st->unit : "KiB", name);
            return;
        }
        if (strcmp(name, "memory") == 0)
            d->memory_kib = kib;
        else
            d->current_memory_kib = kib;
        g_clear_pointer(&st->unit, g_free);
    } else if (strcmp(path, "domain/vcpu") == 0) {
        guint64 n;
        if (!g_ascii_string_to_unsigned(text, 10, 1, 4096, &n, NULL)) {
            g_set_error(error, SP_DOMXML_ERROR, SP_DOMXML_ERROR_INVALID,
                        "invalid vcpu count '%s' (1..4096)", text);
            return;
        }
        d->vcpus = n;
    } else if (strcmp(path, "domain/devices/disk") == 0 ||
               strcmp(path, "domain/devices/interface") == 0) {
        if (!st->dev->target || !*st->dev->target) {
            g_set_error(error, SP_DOMXML_ERROR, SP_DOMXML_ERROR_INVALID,
                        "<%s> needs <target dev='...'/>", name);
            return;
        }
        st->dev = NULL;
    }
}

static void on_text(GMarkupParseContext *ctx, const char *text, gsize len, gpointer data,
                    GError **error)
{
    ParseState *st = data;
    g_string_append_len(st->text, text, len);
}

static bool device_targets_unique(GPtrArray *devs, const char *what, GError **error)
{
    for (guint i = 0; i < devs->len; i++)
        for (guint j = i + 1; j < devs->len; j++)
            if (strcmp(((SpDomXmlDevice *)devs->pdata[i])->target,
                       ((SpDomXmlDevice *)devs->pdata[j])->target) == 0) {
                g_set_error(error, SP_DOMXML_ERROR, SP_DOMXML_ERROR_INVALID,
                            "%s target '%s' is used twice", what,
                            ((SpDomXmlDevice *)devs->pdata[i])->target);
                return false;
            }
    return true;
}

SpDomXml *sp_domxml_parse(const char *xml, GError **error)
{
    static const GMarkupParser parser = {on_start, on_end, on_text, NULL, NULL};
    g_autoptr(SpDomXml) d = sp_domxml_new();
    ParseState st = {.d = d,
                     .stack = g_ptr_array_new_with_free_func(g_free),
                     .text = g_string_new(NULL),
                     .sp_prefix = g_strdup(""),
                     .seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL)};
    GMarkupParseContext *ctx = g_markup_parse_context_new(&parser, 0, &st, NULL);
    g_autoptr(GError) err = NULL;
    bool ok = g_markup_parse_context_parse(ctx, xml, -1, &err) &&
              g_markup_parse_context_end_parse(ctx, &err);
    g_markup_parse_context_free(ctx);
    g_ptr_array_unref(st.stack);
    g_string_free(st.text, TRUE);
    g_free(st.sp_prefix);
    g_free(st.unit);
    g_hash_table_unref(st.seen);
    if (!ok) {
        if (err->domain == SP_DOMXML_ERROR)
            g_propagate_error(error, g_steal_pointer(&err));
        else
            g_set_error(error, SP_DOMXML_ERROR, SP_DOMXML_ERROR_SYNTAX, "malformed domain XML: %s",
                        err->message);
        return NULL;
    }
    if (!d->name || !*d->name) {
        g_set_error(error, SP_DOMXML_ERROR, SP_DOMXML_ERROR_INVALID,
                    "missing <name> in domain XML");
        return NULL;
    }
    if (strchr(d->name, '/')) {
        g_set_error(error, SP_DOMXML_ERROR, SP_DOMXML_ERROR_INVALID,
                    "domain name '%s' contains '/'", d->name);
        return NULL;
    }
    if (!d->memory_kib) {
        g_set_error(error, SP_DOMXML_ERROR, SP_DOMXML_ERROR_INVALID,
                    "missing or zero <memory> in domain XML");
        return NULL;
    }
    if (!d->current_memory_kib)
        d->current_memory_kib = d->memory_kib;
    if (d->current_memory_kib > d->memory_kib) {
        g_set_error(error, SP_DOMXML_ERROR, SP_DOMXML_ERROR_INVALID,
                    "<currentMemory> (%" G_GUINT64_FORMAT " KiB) exceeds <memory> "
                    "(%" G_GUINT64_FORMAT " KiB)",
                    d->current_memory_kib, d->memory_kib);
        return NULL;
    }
    if (!d->vcpus)
        d->vcpus = 1;
    if (!d->os_type)
        d->os_type = g_strdup("hvm");
    if (!device_targets_unique(d->disks, "disk", error) ||
        !device_targets_unique(d->interfaces, "interface", error))
        return NULL;
    return g_steal_pointer(&d);
}

static void fmt_elem(GString *s, const char *indent, const char *elem, const char *v)
{
    if (!v)
        return;
    g_autofree char *esc = g_markup_escape_text(v, -1);
    g_string_append_printf(s, "%s<%s>%s</%s>\n", indent, elem, esc, elem);
}

/* Appends ' name="value"' when v is set. */
static void fmt_attr(GString *s, const char *name, const char *v)
{
    if (!v)
        return;
    g_autofree char *esc = g_markup_escape_text(v, -1);
    g_string_append_printf(s, " %s='%s'", name, esc);
}

/* A device's empty element on a line of its own: <NAME A1='V1' A2='V2'/>
 * (an attribute whose value is NULL is left out). */
static void fmt_device_elem(GString *s, const char *name, const char *a1, const char *v1,
                            const char *a2, const char *v2)
{
    g_string_append_printf(s, "      <%s", name);
    fmt_attr(s, a1, v1);
    fmt_attr(s, a2, v2);
    g_string_append(s, "/>\n");
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
    if (d->sp_payload || d->sp_args || d->sp_domain || d->sp_share) {
        g_string_append_printf(s, "  <metadata>\n    <sp:samepage xmlns:sp='%s'>\n", SP_DOMXML_NS);
        fmt_elem(s, "      ", "sp:payload", d->sp_payload);
        fmt_elem(s, "      ", "sp:args", d->sp_args);
        fmt_elem(s, "      ", "sp:domain", d->sp_domain);
        fmt_elem(s, "      ", "sp:share", d->sp_share);
        g_string_append(s, "    </sp:samepage>\n  </metadata>\n");
    }
    g_string_append_printf(s, "  <memory unit='KiB'>%" G_GUINT64_FORMAT "</memory>\n",
                           d->memory_kib);
    g_string_append_printf(s, "  <currentMemory unit='KiB'>%" G_GUINT64_FORMAT "</currentMemory>\n",
                           d->current_memory_kib);
    g_string_append_printf(s, "  <vcpu>%u</vcpu>\n  <os>\n    <type", d->vcpus);
    fmt_attr(s, "arch", d->os_arch);
    fmt_attr(s, "machine", d->os_machine);
    {
        g_autofree char *esc = g_markup_escape_text(d->os_type ? d->os_type : "hvm", -1);
        g_string_append_printf(s, ">%s</type>\n", esc);
    }
    fmt_elem(s, "    ", "kernel", d->kernel);
    fmt_elem(s, "    ", "initrd", d->initrd);
    fmt_elem(s, "    ", "cmdline", d->cmdline);
    g_string_append(s, "  </os>\n");
    if (d->disks->len || d->interfaces->len) {
        g_string_append(s, "  <devices>\n");
        for (guint i = 0; i < d->disks->len; i++) {
            const SpDomXmlDevice *v = d->disks->pdata[i];
            g_string_append(s, "    <disk");
            fmt_attr(s, "type", v->type);
            fmt_attr(s, "device", v->device);
            g_string_append(s, ">\n");
            if (v->driver_name || v->driver_type)
                fmt_device_elem(s, "driver", "name", v->driver_name, "type", v->driver_type);
            if (v->source)
                fmt_device_elem(s, "source", v->source_attr, v->source, NULL, NULL);
            fmt_device_elem(s, "target", "dev", v->target, "bus", v->bus);
            if (v->readonly)
                g_string_append(s, "      <readonly/>\n");
            g_string_append(s, "    </disk>\n");
        }
        for (guint i = 0; i < d->interfaces->len; i++) {
            const SpDomXmlDevice *v = d->interfaces->pdata[i];
            g_string_append(s, "    <interface");
            fmt_attr(s, "type", v->type);
            g_string_append(s, ">\n");
            if (v->mac)
                fmt_device_elem(s, "mac", "address", v->mac, NULL, NULL);
            if (v->source)
                fmt_device_elem(s, "source", v->source_attr, v->source, NULL, NULL);
            fmt_device_elem(s, "target", "dev", v->target, NULL, NULL);
            if (v->model)
                fmt_device_elem(s, "model", "type", v->model, NULL, NULL);
            g_string_append(s, "    </interface>\n");
        }
        g_string_append(s, "  </devices>\n");
    }
    g_string_append(s, "</domain>\n");
    return g_string_free(s, FALSE);
}
