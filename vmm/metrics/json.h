/* SPDX-License-Identifier: MIT */
/*
 * json.h - JSON output through json-glib, for every JSON the `samepage`
 * commands print (run --json, stats, list, clone): strings are escaped by
 * the library (quotes, backslashes, control characters), numbers keep
 * their type.  sp_fig_json_members() adds the figures of a table as
 * members named by their JSON keys (figures.h), so a new figure appears
 * in every JSON output by its table entry alone.
 */
#ifndef SAMEPAGE_VMM_METRICS_JSON_H
#define SAMEPAGE_VMM_METRICS_JSON_H

#include <stdio.h>
#include <json-glib/json-glib.h>

#include "vmm/metrics/figures.h"

/* Members "NAME": value for each figure of scope (have[i] false: left out;
 * have NULL: all).  Integers stay integers, booleans true/false. */
void sp_fig_json_members(JsonBuilder *b, SpFigScope scope, const SpFigValue *v, const bool *have);
/* A string member; invalid UTF-8 is replaced (U+FFFD), NULL is null. */
void sp_json_add_string_member(JsonBuilder *b, const char *member, const char *s);
void sp_json_add_string(JsonBuilder *b, const char *s);
/* The builder's root as text (pretty: indented, several lines). */
char *sp_json_to_string(JsonBuilder *b, bool pretty);
/* Print the builder's root to f and a newline; pretty: indented on
 * several lines, else one line (JSON lines). */
void sp_json_print(JsonBuilder *b, bool pretty, FILE *f);

#endif
