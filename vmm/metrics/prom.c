/* SPDX-License-Identifier: MIT */
/*
 * prom.c - Prometheus text exposition of a snapshot (prom.h).  Families
 * come out in table order, each once with all its samples, as the format
 * requires; a family with no sample (no VM, no group) still gets its HELP
 * and TYPE, so the set of names does not depend on what runs.
 */
#include "vmm/metrics/prom.h"

/* A label value: backslash, double quote and line feed escaped. */
static void prom_label_value(GString *s, const char *v)
{
    g_autofree char *valid = g_utf8_make_valid(v ? v : "", -1);
    for (const char *p = valid; *p; p++) {
        if (*p == '\\')
            g_string_append(s, "\\\\");
        else if (*p == '"')
            g_string_append(s, "\\\"");
        else if (*p == '\n')
            g_string_append(s, "\\n");
        else
            g_string_append_c(s, *p);
    }
}

static void prom_label(GString *s, bool first, const char *name, const char *value)
{
    g_string_append_printf(s, "%s%s=\"", first ? "" : ",", name);
    prom_label_value(s, value);
    g_string_append_c(s, '"');
}

/* Help texts are one line without backslashes (test-metrics checks the
 * tables), so they need no escape. */
static void prom_family(GString *s, const char *name, const char *type, const char *help)
{
    g_string_append_printf(s, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_value(GString *s, const SpFigure *f, SpFigValue v)
{
    if (f->unit == SP_FIG_NS || f->unit == SP_FIG_US || f->unit == SP_FIG_MS ||
        f->unit == SP_FIG_PERMILLE || f->ctype == SP_FIG_F64) {
        sp_fig_append_double(s, sp_fig_base_value(f, v));
    } else if (f->ctype == SP_FIG_BOOL) {
        g_string_append(s, v.u ? "1" : "0");
    } else {
        sp_fig_append_text(s, f, v);
    }
    g_string_append_c(s, '\n');
}

/* The labels of object k of a scope, without the closing brace. */
static void prom_labels(GString *s, SpFigScope scope, const SpFigSnapshot *snap, guint k)
{
    if (scope == SP_FIG_VM) {
        const SpFigVm *vm = snap->vms->pdata[k];
        g_string_append_c(s, '{');
        prom_label(s, true, "domain", vm->name);
        if (vm->uuid)
            prom_label(s, false, "uuid", vm->uuid);
        return;
    }
    size_t id = 0, parent = 0;
    sp_fig_find(SP_FIG_GROUP, "id", &id);
    sp_fig_find(SP_FIG_GROUP, "parent", &parent);
    const SpFigValue *v = snap->groups->pdata[k];
    g_string_append_printf(s, "{group=\"%" G_GUINT64_FORMAT "\",parent=\"%" G_GUINT64_FORMAT "\"",
                           v[id].u, v[parent].u);
}

/* Every family of a scope's table, a sample per object that has the figure. */
static void prom_scope(GString *s, SpFigScope scope, const SpFigSnapshot *snap)
{
    size_t n;
    const SpFigure *t = sp_fig_table(scope, &n);
    guint objects = scope == SP_FIG_VM ? snap->vms->len : snap->groups->len;
    for (size_t i = 0; i < n; i++) {
        if (!t[i].metric)
            continue;
        prom_family(s, t[i].metric, t[i].type == SP_FIG_COUNTER ? "counter" : "gauge", t[i].help);
        for (guint k = 0; k < objects; k++) {
            const SpFigVm *vm = scope == SP_FIG_VM ? snap->vms->pdata[k] : NULL;
            if (vm && (!vm->has_figures || !vm->have[i]))
                continue;
            g_string_append(s, t[i].metric);
            prom_labels(s, scope, snap, k);
            g_string_append(s, "} ");
            prom_value(s, &t[i], vm ? vm->v[i] : ((const SpFigValue *)snap->groups->pdata[k])[i]);
        }
    }
}

static void prom_vm_info(GString *s, const SpFigSnapshot *snap)
{
    prom_family(s, "samepage_vm_info", "gauge",
                "1 for every VM; labels: domain, uuid, sharing_domain, state");
    for (guint k = 0; k < snap->vms->len; k++) {
        const SpFigVm *vm = snap->vms->pdata[k];
        g_string_append(s, "samepage_vm_info");
        prom_labels(s, SP_FIG_VM, snap, k);
        prom_label(s, false, "sharing_domain", vm->sharing_domain ? vm->sharing_domain : "");
        prom_label(s, false, "state", vm->state ? vm->state : "");
        g_string_append(s, "} 1\n");
    }
}

GBytes *sp_prom_render(const SpFigSnapshot *snap)
{
    GString *s = g_string_sized_new(16384);
    size_t n;
    const SpFigure *t = sp_fig_table(SP_FIG_NODE, &n);
    for (size_t i = 0; snap->has_node && i < n; i++) {
        if (!t[i].metric || !snap->node_have[i])
            continue;
        prom_family(s, t[i].metric, t[i].type == SP_FIG_COUNTER ? "counter" : "gauge", t[i].help);
        g_string_append_printf(s, "%s ", t[i].metric);
        prom_value(s, &t[i], snap->node[i]);
    }
    prom_vm_info(s, snap);
    prom_scope(s, SP_FIG_VM, snap);
    prom_scope(s, SP_FIG_GROUP, snap);
    return g_string_free_to_bytes(s);
}
