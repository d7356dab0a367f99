/* SPDX-License-Identifier: MIT */
/*
 * cmd-stats.c - `samepage stats [NAME...] [--json]`: per-VM figures from
 * CONNECT_GET_ALL_DOMAIN_STATS (state.*, balloon.*, cpu.time, vcpu.* and
 * every samepage.* key the daemon sends), the node-wide sharing knobs and
 * counters from NODE_GET_MEMORY_PARAMETERS (shm_*), and the clone groups
 * from the samepage program's CLONE_GROUPS, and the host's NUMA cells (id,
 * memory, free memory, CPUs: CONNECT_GET_CAPABILITIES and
 * NODE_GET_CELLS_FREE_MEMORY) (docs/libvirt.md).
 *
 * Text: one table with a row per statistic and a column per VM (a VM that
 * lacks a key, e.g. a stopped one, shows "-"), then the node table, then
 * the clone groups table (a row per group), then the NUMA cells table.
 * JSON (json-glib; schema in docs/cli.md): {"domains": [{"name", "uuid",
 * "id", "state", "stats": {key: value}}], "node": {key: value},
 * "clone_groups": [{key: value}], "numa_cells": [{"id", "memory_bytes",
 * "free_bytes", "cpus"}]} with the values in their wire types.
 */
#include <stdio.h>
#include <string.h>

#include "vmm/cli/cmd-client.h"
#include "vmm/cli/cmd.h"
#include "vmm/libvirt/domxml.h"

#define STATS_GROUPS                                                                               \
    (SP_LV_STATS_STATE | SP_LV_STATS_CPU_TOTAL | SP_LV_STATS_BALLOON | SP_LV_STATS_VCPU)

static const char *stats_state_name(const SpLvParams *p)
{
    const SpLvParam *st = sp_lv_params_find(p, "state.state");
    return st && st->type == SP_LV_PARAM_INT ? sp_cli_state_name(st->v.i) : "unknown";
}

static void stats_print_json(GPtrArray *recs, const SpLvParams *node, GPtrArray *groups,
                             GPtrArray *cells)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "domains");
    json_builder_begin_array(b);
    for (guint i = 0; i < recs->len; i++) {
        const SpLvClientDomStats *r = recs->pdata[i];
        char uuid[37];
        sp_domxml_uuid_format(r->dom.uuid, uuid);
        json_builder_begin_object(b);
        sp_json_add_string_member(b, "name", r->dom.name);
        sp_json_add_string_member(b, "uuid", uuid);
        json_builder_set_member_name(b, "id");
        if (r->dom.id >= 0)
            json_builder_add_int_value(b, r->dom.id);
        else
            json_builder_add_null_value(b);
        sp_json_add_string_member(b, "state", stats_state_name(r->params));
        json_builder_set_member_name(b, "stats");
        sp_cli_json_params(b, r->params);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_set_member_name(b, "node");
    sp_cli_json_params(b, node);
    json_builder_set_member_name(b, "clone_groups");
    json_builder_begin_array(b);
    for (guint i = 0; i < groups->len; i++)
        sp_cli_json_params(b, groups->pdata[i]);
    json_builder_end_array(b);
    json_builder_set_member_name(b, "numa_cells");
    json_builder_begin_array(b);
    for (guint i = 0; i < cells->len; i++) {
        const SpLvClientCell *c = cells->pdata[i];
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "id");
        json_builder_add_int_value(b, c->id);
        json_builder_set_member_name(b, "memory_bytes");
        json_builder_add_int_value(b, (gint64)(c->memory_kib * 1024));
        json_builder_set_member_name(b, "free_bytes");
        json_builder_add_int_value(b, (gint64)(c->free_kib * 1024));
        sp_json_add_string_member(b, "cpus", c->cpus);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    sp_json_print(b, true, stdout);
}

/* One row per clone group, one column per key (union, in order). */
static void stats_print_groups(GPtrArray *groups)
{
    putchar('\n');
    if (!groups->len) {
        printf("clone groups: none\n");
        return;
    }
    g_autoptr(GPtrArray) keys = g_ptr_array_new();
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < groups->len; i++)
        for (guint k = 0; k < sp_lv_params_len(groups->pdata[i]); k++) {
            const char *f = sp_lv_params_get(groups->pdata[i], k)->field;
            if (g_hash_table_add(seen, (gpointer)f))
                g_ptr_array_add(keys, (gpointer)f);
        }
    g_autofree int *w = g_new0(int, keys->len);
    g_autoptr(GPtrArray) cells = g_ptr_array_new_with_free_func(g_free);
    for (guint k = 0; k < keys->len; k++)
        w[k] = (int)strlen(keys->pdata[k]);
    for (guint i = 0; i < groups->len; i++)
        for (guint k = 0; k < keys->len; k++) {
            const SpLvParam *p = sp_lv_params_find(groups->pdata[i], keys->pdata[k]);
            char *t = !p                               ? g_strdup("-")
                      : p->type == SP_LV_PARAM_BOOLEAN ? g_strdup(p->v.b ? "yes" : "no")
                                                       : sp_cli_param_text(p);
            w[k] = MAX(w[k], (int)strlen(t));
            g_ptr_array_add(cells, t);
        }
    printf("clone groups\n");
    for (guint k = 0; k < keys->len; k++)
        printf(k ? "  %*s" : "%*s", w[k], (const char *)keys->pdata[k]);
    putchar('\n');
    for (guint i = 0; i < groups->len; i++) {
        for (guint k = 0; k < keys->len; k++)
            printf(k ? "  %*s" : "%*s", w[k], (const char *)cells->pdata[i * keys->len + k]);
        putchar('\n');
    }
}

static void stats_print_cells(GPtrArray *cells)
{
    printf("\n%-6s  %12s  %12s  %s\n", "cell", "memory MiB", "free MiB", "CPUs");
    for (guint i = 0; i < cells->len; i++) {
        const SpLvClientCell *c = cells->pdata[i];
        printf("%-6d  %12" G_GUINT64_FORMAT "  %12" G_GUINT64_FORMAT "  %s\n", c->id,
               c->memory_kib / 1024, c->free_kib / 1024, c->cpus);
    }
}

static void stats_print_text(GPtrArray *recs, const SpLvParams *node, GPtrArray *groups,
                             GPtrArray *numa_cells)
{
    /* the union of keys, in order of first appearance */
    g_autoptr(GPtrArray) keys = g_ptr_array_new();
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    int kw = (int)strlen("statistic");
    for (guint i = 0; i < recs->len; i++) {
        const SpLvClientDomStats *r = recs->pdata[i];
        for (guint k = 0; k < sp_lv_params_len(r->params); k++) {
            const char *f = sp_lv_params_get(r->params, k)->field;
            if (g_hash_table_add(seen, (gpointer)f)) {
                g_ptr_array_add(keys, (gpointer)f);
                kw = MAX(kw, (int)strlen(f));
            }
        }
    }
    if (!recs->len) {
        printf("No VMs.\n");
    } else {
        /* cells[i][k]: text of key k for VM i */
        g_autoptr(GPtrArray) cells = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
        g_autofree int *w = g_new0(int, recs->len);
        for (guint i = 0; i < recs->len; i++) {
            const SpLvClientDomStats *r = recs->pdata[i];
            char **col = g_new0(char *, keys->len + 1);
            w[i] = MAX((int)strlen(r->dom.name), (int)strlen("shut off"));
            for (guint k = 0; k < keys->len; k++) {
                const SpLvParam *p = sp_lv_params_find(r->params, keys->pdata[k]);
                if (!p)
                    col[k] = g_strdup("-");
                else if (!strcmp(p->field, "state.state"))
                    col[k] = g_strdup(stats_state_name(r->params));
                else
                    col[k] = sp_cli_param_text(p);
                w[i] = MAX(w[i], (int)strlen(col[k]));
            }
            g_ptr_array_add(cells, col);
        }
        printf("%-*s", kw, "statistic");
        for (guint i = 0; i < recs->len; i++)
            printf("  %*s", w[i], ((SpLvClientDomStats *)recs->pdata[i])->dom.name);
        putchar('\n');
        for (guint k = 0; k < keys->len; k++) {
            printf("%-*s", kw, (const char *)keys->pdata[k]);
            for (guint i = 0; i < recs->len; i++)
                printf("  %*s", w[i], ((char **)cells->pdata[i])[k]);
            putchar('\n');
        }
    }
    putchar('\n');
    int nw = (int)strlen("node (sharing engine)");
    for (guint k = 0; k < sp_lv_params_len(node); k++)
        nw = MAX(nw, (int)strlen(sp_lv_params_get(node, k)->field));
    printf("%-*s  %s\n", nw, "node (sharing engine)", "value");
    for (guint k = 0; k < sp_lv_params_len(node); k++) {
        const SpLvParam *p = sp_lv_params_get(node, k);
        g_autofree char *v = sp_cli_param_text(p);
        printf("%-*s  %s\n", nw, p->field, v);
    }
    stats_print_groups(groups);
    stats_print_cells(numa_cells);
}

int sp_cmd_stats(int argc, char **argv)
{
    g_auto(SpCliOpts) o = {0};
    bool done;
    int rc = sp_cli_parse(
        "stats", "[NAME...]", "Show memory and sharing statistics of VMs and of the host.",
        "Per VM (all VMs, or the NAMEs given): the state, balloon.* (KiB), cpu.time (ns),\n"
        "vcpu.* and every samepage.* figure of the memory engine (pages unless the key\n"
        "says otherwise).  Node-wide: the engine's knobs and counters (shm_*), as\n"
        "`virsh node-memory-tune` shows them.  Clone groups (samepage clone): one row\n"
        "per group: id, parent group, members (VMs), pages its frame file holds,\n"
        "mappings of them now, pages_shared (mapped by 2+ members), pages_saved\n"
        "(copies avoided), file_open.  NUMA cells: one row per host node: its memory,\n"
        "its free memory and its CPUs.  --json prints one JSON object\n"
        "{\"domains\": [{name, uuid, id, state, stats: {...}}], \"node\": {...},\n"
        " \"clone_groups\": [{id, parent, members, ...}],\n"
        " \"numa_cells\": [{id, memory_bytes, free_bytes, cpus}]}.",
        NULL, true, &o, &argc, &argv, &done);
    if (done)
        return rc;
    g_autoptr(SpLvClient) c = sp_cli_connect(&o);
    if (!c)
        return SP_CLI_FAIL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) doms =
        g_ptr_array_new_with_free_func((GDestroyNotify)sp_lv_client_dom_free);
    for (int i = 1; i < argc; i++) {
        g_autoptr(SpLvClientDom) d = g_new0(SpLvClientDom, 1);
        if (!sp_cli_lookup(c, argv[i], d))
            return SP_CLI_FAIL;
        g_ptr_array_add(doms, g_steal_pointer(&d));
    }
    g_autoptr(GPtrArray) recs = sp_lv_client_get_all_domain_stats(c, doms, STATS_GROUPS, 0, &error);
    if (!recs)
        return sp_cli_fail(error);
    g_autoptr(SpLvParams) node = sp_lv_client_node_memory_params(c, &error);
    if (!node)
        return sp_cli_fail(error);
    g_autoptr(GPtrArray) groups = sp_lv_client_clone_groups(c, &error);
    if (!groups) {
        /* A daemon (or test endpoint) without the samepage program's
         * CLONE_GROUPS: no groups to show, not a failure of the command. */
        if (error->domain != SP_LV_CLIENT_REMOTE_ERROR ||
            (error->code != SP_LV_ERR_NO_SUPPORT && error->code != SP_LV_ERR_RPC))
            return sp_cli_fail(error);
        groups = g_ptr_array_new_with_free_func((GDestroyNotify)sp_lv_params_free);
    }
    g_autoptr(GPtrArray) cells = sp_lv_client_node_cells(c, &error);
    if (!cells) { /* as for CLONE_GROUPS: an endpoint without capabilities has no cells to show */
        if (error->domain != SP_LV_CLIENT_REMOTE_ERROR ||
            (error->code != SP_LV_ERR_NO_SUPPORT && error->code != SP_LV_ERR_RPC))
            return sp_cli_fail(error);
        g_clear_error(&error);
        cells = g_ptr_array_new();
    }
    if (o.json)
        stats_print_json(recs, node, groups, cells);
    else
        stats_print_text(recs, node, groups, cells);
    return SP_CLI_OK;
}
