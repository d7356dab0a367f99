/* SPDX-License-Identifier: MIT */
/* json.c - json-glib helpers for the JSON outputs (json.h). */
#include "vmm/metrics/json.h"

#include <math.h>

void sp_fig_json_members(JsonBuilder *b, SpFigScope scope, const SpFigValue *v, const bool *have)
{
    size_t n;
    const SpFigure *t = sp_fig_table(scope, &n);
    for (size_t i = 0; i < n; i++) {
        if (have && !have[i])
            continue;
        json_builder_set_member_name(b, t[i].name);
        switch (t[i].ctype) {
        case SP_FIG_I64:
            json_builder_add_int_value(b, v[i].i);
            break;
        case SP_FIG_F64:
            if (isfinite(v[i].d)) /* one decimal is all these carry (seconds) */
                json_builder_add_double_value(b, round(v[i].d * 10) / 10);
            else
                json_builder_add_null_value(b);
            break;
        case SP_FIG_BOOL:
            json_builder_add_boolean_value(b, v[i].u != 0);
            break;
        default:
            json_builder_add_int_value(b, (gint64)MIN(v[i].u, (uint64_t)G_MAXINT64));
        }
    }
}

void sp_json_add_string(JsonBuilder *b, const char *s)
{
    if (!s) {
        json_builder_add_null_value(b);
        return;
    }
    g_autofree char *valid = g_utf8_make_valid(s, -1);
    json_builder_add_string_value(b, valid);
}

void sp_json_add_string_member(JsonBuilder *b, const char *member, const char *s)
{
    json_builder_set_member_name(b, member);
    sp_json_add_string(b, s);
}

char *sp_json_to_string(JsonBuilder *b, bool pretty)
{
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    g_autoptr(JsonGenerator) gen = json_generator_new();
    json_generator_set_root(gen, root);
    json_generator_set_pretty(gen, pretty);
    json_generator_set_indent(gen, 2);
    return json_generator_to_data(gen, NULL);
}

void sp_json_print(JsonBuilder *b, bool pretty, FILE *f)
{
    g_autofree char *text = sp_json_to_string(b, pretty);
    fputs(text, f);
    fputc('\n', f);
    fflush(f);
}
