/* SPDX-License-Identifier: MIT */
/*
 * xmltree.h - a small element tree for domain XML: parse (GMarkup, bounded)
 * and format (canonical, indented).
 *
 * The domain XML reader (domxml.c) interprets the elements it honours and
 * keeps the others it accepts verbatim, as trees, to return them in
 * dumpxml.  Formatting is canonical so that format -> parse -> format is
 * the identity: attributes in the order written, values and text escaped,
 * two spaces of indent per level, an element with neither text nor
 * children written as <x/>.
 *
 * What a node keeps: its name as written (a namespace prefix included),
 * its attributes in order (namespace declarations too: a kept element that
 * declares its namespace carries it along), and either text or children.
 * Whitespace-only text is dropped; text beside child elements (mixed
 * content, never used in domain XML) is refused.  Leaf text is kept exactly,
 * surrounding spaces included.
 *
 * Bounds (the XML comes from clients): at most SP_XML_DEPTH_MAX levels and
 * SP_XML_NODES_MAX elements; the input size itself is bounded by the
 * protocol's inbound limit.  Stateless; a tree has one owner; no locking.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#define SP_XML_DEPTH_MAX 32
#define SP_XML_NODES_MAX 20000

typedef struct SpXmlNode {
    char *name;               /* element name as written (prefix:local) */
    GStrv attr_names;         /* attribute names in document order (NULL-terminated) */
    GStrv attr_values;        /* their values, same order */
    char *text;               /* leaf text, NULL if none or whitespace only */
    GPtrArray *children;      /* SpXmlNode *, document order (owned) */
    struct SpXmlNode *parent; /* NULL for the root */
} SpXmlNode;

/* Parses one document; the root is the single top-level element.  Errors:
 * G_MARKUP_ERROR for malformed XML or a broken bound. */
SpXmlNode *sp_xml_parse(const char *text, GError **error);
void sp_xml_node_free(SpXmlNode *n);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpXmlNode, sp_xml_node_free)
SpXmlNode *sp_xml_node_copy(const SpXmlNode *n);

/* The value of attribute `name`, or NULL. */
const char *sp_xml_attr(const SpXmlNode *n, const char *name);
/* The local part of the name (after the prefix). */
const char *sp_xml_local_name(const SpXmlNode *n);
/* The path of n from the root, "domain/devices/disk". */
char *sp_xml_path(const SpXmlNode *n);

/* Appends n and its subtree at `indent` spaces, ending with a newline. */
void sp_xml_format(GString *out, const SpXmlNode *n, guint indent);
