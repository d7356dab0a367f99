/* SPDX-License-Identifier: MIT */
/* run-status.c - `samepage run`'s status lines from a snapshot (run-status.h). */
#include "vmm/cli/run-status.h"

#include <string.h>

#include "vmm/metrics/json.h"

/* " label value" for each figure of `scope` with a status label (and, for
 * VM figures, on `line`). */
static void status_fields(GString *out, SpFigScope scope, const SpFigValue *v, SpFigLine line)
{
    size_t n;
    const SpFigure *t = sp_fig_table(scope, &n);
    for (size_t i = 0; i < n; i++) {
        if (!t[i].text || ((scope == SP_FIG_VM || scope == SP_FIG_NODE) && t[i].line != line))
            continue;
        g_string_append_printf(out, " %s ", t[i].text);
        if (t[i].unit == SP_FIG_BYTES) {
            g_string_append_printf(out, "%.1f MiB", sp_fig_double(&t[i], v[i]) / 1048576.0);
        } else {
            sp_fig_append_text(out, &t[i], v[i]);
            if (t[i].mib)
                g_string_append_printf(out, " (%.1f MiB)",
                                       sp_fig_double(&t[i], v[i]) * 4096.0 / 1048576.0);
        }
    }
}

static double status_value(SpFigScope scope, const char *name, const SpFigValue *v)
{
    size_t i;
    const SpFigure *f = sp_fig_find(scope, name, &i);
    return f ? sp_fig_double(f, v[i]) : 0;
}

static void status_text(GString *out, const SpFigSnapshot *s)
{
    bool swap = s->has_node && status_value(SP_FIG_NODE, "swap_enabled", s->node);
    for (guint k = 0; k < s->vms->len; k++) {
        const SpFigVm *vm = s->vms->pdata[k];
        if (!vm->has_figures)
            continue;
        g_string_append_printf(out, "[status] %-12s %-8s %7.1fs", vm->name, vm->state,
                               status_value(SP_FIG_VM, "seconds", vm->v));
        status_fields(out, SP_FIG_VM, vm->v, SP_FIG_LINE_GUEST);
        g_string_append(out, " |");
        status_fields(out, SP_FIG_VM, vm->v, SP_FIG_LINE_SHARING);
        if (status_value(SP_FIG_VM, "clone_group", vm->v)) { /* in a clone family */
            g_string_append(out, " |");
            status_fields(out, SP_FIG_VM, vm->v, SP_FIG_LINE_CLONE);
        }
        if (swap) {
            g_string_append(out, " | swap");
            status_fields(out, SP_FIG_VM, vm->v, SP_FIG_LINE_SWAP);
        }
        g_string_append_c(out, '\n');
    }
    if (s->has_node) {
        g_string_append(out, "[engine]");
        status_fields(out, SP_FIG_NODE, s->node, SP_FIG_LINE_NONE);
        g_string_append_c(out, '\n');
    }
    if (swap) {
        g_string_append(out, "[swap]");
        status_fields(out, SP_FIG_NODE, s->node, SP_FIG_LINE_SWAP);
        g_string_append_c(out, '\n');
    }
    for (guint k = 0; k < s->groups->len; k++) {
        const SpFigValue *g = s->groups->pdata[k];
        g_string_append_printf(out, "[group %.0f]", status_value(SP_FIG_GROUP, "id", g));
        status_fields(out, SP_FIG_GROUP, g, SP_FIG_LINE_NONE);
        g_string_append_c(out, '\n');
    }
}

static void status_json_line(GString *out, JsonBuilder *b)
{
    g_autofree char *text = sp_json_to_string(b, false);
    g_string_append_printf(out, "%s\n", text);
}

/* {"KEY": {<figures of scope>}} (only those with have[i], if have) */
static void status_json_object(GString *out, const char *key, SpFigScope scope, const SpFigValue *v,
                               const bool *have)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, key);
    json_builder_begin_object(b);
    sp_fig_json_members(b, scope, v, have);
    json_builder_end_object(b);
    json_builder_end_object(b);
    status_json_line(out, b);
}

static void status_json(GString *out, const SpFigSnapshot *s)
{
    for (guint k = 0; k < s->vms->len; k++) {
        const SpFigVm *vm = s->vms->pdata[k];
        if (!vm->has_figures)
            continue;
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_builder_begin_object(b);
        sp_json_add_string_member(b, "vm", vm->name);
        sp_json_add_string_member(b, "state", vm->state);
        sp_json_add_string_member(b, "sharing_domain", vm->sharing_domain);
        sp_fig_json_members(b, SP_FIG_VM, vm->v, vm->have);
        json_builder_end_object(b);
        status_json_line(out, b);
    }
    if (s->has_node) { /* the engine's figures, and swap's in their own line */
        size_t n;
        const SpFigure *t = sp_fig_table(SP_FIG_NODE, &n);
        g_autofree bool *engine = g_new0(bool, n), *swap = g_new0(bool, n);
        for (size_t i = 0; i < n; i++) {
            swap[i] = t[i].line == SP_FIG_LINE_SWAP && strcmp(t[i].name, "swap_enabled") != 0;
            engine[i] = !swap[i];
        }
        status_json_object(out, "engine", SP_FIG_NODE, s->node, engine);
        if (status_value(SP_FIG_NODE, "swap_enabled", s->node))
            status_json_object(out, "swap", SP_FIG_NODE, s->node, swap);
    }
    for (guint k = 0; k < s->groups->len; k++)
        status_json_object(out, "clone_group", SP_FIG_GROUP, s->groups->pdata[k], NULL);
}

void sp_run_status(GString *out, const SpFigSnapshot *s, bool json)
{
    if (json)
        status_json(out, s);
    else
        status_text(out, s);
}
