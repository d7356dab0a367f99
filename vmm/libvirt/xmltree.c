/* SPDX-License-Identifier: MIT */
/*
 * xmltree.c - build an SpXmlNode tree with GMarkup's SAX parser and write it
 * back canonically (see xmltree.h for the rules and bounds).
 *
 * Building: start_element appends a node under the open one, text is
 * collected per open element, end_element settles the text (whitespace
 * only -> none; text beside children -> error).  The element and depth
 * counters are checked before anything is allocated for a new element.
 */
#include "vmm/libvirt/xmltree.h"

#include <string.h>

typedef struct {
    SpXmlNode *root; /* the document element, once started */
    SpXmlNode *cur;  /* innermost open element */
    GString *text;   /* text of cur so far */
    guint depth;     /* open elements */
    guint nodes;     /* elements so far */
} TreeBuild;

static SpXmlNode *node_new(const char *name, const char **names, const char **values)
{
    SpXmlNode *n = g_new0(SpXmlNode, 1);
    n->name = g_strdup(name);
    n->attr_names = g_strdupv((char **)names);
    n->attr_values = g_strdupv((char **)values);
    n->children = g_ptr_array_new_with_free_func((GDestroyNotify)sp_xml_node_free);
    return n;
}

void sp_xml_node_free(SpXmlNode *n)
{
    if (!n)
        return;
    g_free(n->name);
    g_strfreev(n->attr_names);
    g_strfreev(n->attr_values);
    g_free(n->text);
    g_ptr_array_unref(n->children);
    g_free(n);
}

SpXmlNode *sp_xml_node_copy(const SpXmlNode *n)
{
    SpXmlNode *c = node_new(n->name, (const char **)n->attr_names, (const char **)n->attr_values);
    c->text = g_strdup(n->text);
    for (guint i = 0; i < n->children->len; i++) {
        SpXmlNode *k = sp_xml_node_copy(n->children->pdata[i]);
        k->parent = c;
        g_ptr_array_add(c->children, k);
    }
    return c;
}

const char *sp_xml_attr(const SpXmlNode *n, const char *name)
{
    for (guint i = 0; n->attr_names[i]; i++)
        if (strcmp(n->attr_names[i], name) == 0)
            return n->attr_values[i];
    return NULL;
}

const char *sp_xml_local_name(const SpXmlNode *n)
{
    const char *colon = strchr(n->name, ':');
    return colon ? colon + 1 : n->name;
}

char *sp_xml_path(const SpXmlNode *n)
{
    if (!n->parent)
        return g_strdup(n->name);
    g_autofree char *up = sp_xml_path(n->parent);
    return g_strconcat(up, "/", n->name, NULL);
}

static void on_start(GMarkupParseContext *ctx, const char *name, const char **names,
                     const char **values, gpointer data, GError **error)
{
    TreeBuild *b = data;
    if (b->root && !b->cur) {
        g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                    "a second top-level element <%s>", name);
        return;
    }
    if (b->depth >= SP_XML_DEPTH_MAX || b->nodes >= SP_XML_NODES_MAX) {
        g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                    "XML nested deeper than %d levels or with more than %d elements",
                    SP_XML_DEPTH_MAX, SP_XML_NODES_MAX);
        return;
    }
    if (b->cur && strspn(b->text->str, " \t\r\n") != b->text->len) {
        g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                    "text beside elements in <%s> is not supported", b->cur->name);
        return;
    }
    g_string_truncate(b->text, 0);
    SpXmlNode *n = node_new(name, names, values);
    n->parent = b->cur;
    if (b->cur)
        g_ptr_array_add(b->cur->children, n);
    else
        b->root = n;
    b->cur = n;
    b->depth++;
    b->nodes++;
}

static void on_end(GMarkupParseContext *ctx, const char *name, gpointer data, GError **error)
{
    TreeBuild *b = data;
    SpXmlNode *n = b->cur;
    bool blank = strspn(b->text->str, " \t\r\n") == b->text->len;
    if (!blank && n->children->len) {
        g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                    "text beside elements in <%s> is not supported", n->name);
        return;
    }
    if (!blank)
        n->text = g_strdup(b->text->str);
    g_string_truncate(b->text, 0);
    b->cur = n->parent;
    b->depth--;
}

static void on_text(GMarkupParseContext *ctx, const char *text, gsize len, gpointer data,
                    GError **error)
{
    TreeBuild *b = data;
    if (b->cur)
        g_string_append_len(b->text, text, len);
}

SpXmlNode *sp_xml_parse(const char *text, GError **error)
{
    static const GMarkupParser parser = {on_start, on_end, on_text, NULL, NULL};
    TreeBuild b = {.text = g_string_new(NULL)};
    GMarkupParseContext *ctx = g_markup_parse_context_new(&parser, 0, &b, NULL);
    bool ok = g_markup_parse_context_parse(ctx, text, -1, error) &&
              g_markup_parse_context_end_parse(ctx, error);
    g_markup_parse_context_free(ctx);
    g_string_free(b.text, TRUE);
    if (ok && !b.root) {
        g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_EMPTY, "no element in the document");
        ok = false;
    }
    if (!ok) {
        sp_xml_node_free(b.root);
        return NULL;
    }
    return b.root;
}

static void append_escaped(GString *out, const char *s)
{
    g_autofree char *esc = g_markup_escape_text(s, -1);
    g_string_append(out, esc);
}

void sp_xml_format(GString *out, const SpXmlNode *n, guint indent)
{
    g_string_append_printf(out, "%*s<%s", (int)indent, "", n->name);
    for (guint i = 0; n->attr_names[i]; i++) {
        g_string_append_printf(out, " %s='", n->attr_names[i]);
        append_escaped(out, n->attr_values[i]);
        g_string_append_c(out, '\'');
    }
    if (!n->text && !n->children->len) {
        g_string_append(out, "/>\n");
        return;
    }
    g_string_append_c(out, '>');
    if (n->text) {
        append_escaped(out, n->text);
    } else {
        g_string_append_c(out, '\n');
        for (guint i = 0; i < n->children->len; i++)
            sp_xml_format(out, n->children->pdata[i], indent + 2);
        g_string_append_printf(out, "%*s", (int)indent, "");
    }
    g_string_append_printf(out, "</%s>\n", n->name);
}
