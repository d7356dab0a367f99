/* SPDX-License-Identifier: MIT */
/*
 * cmd-top.c - `samepage top [--interval SECONDS] [CONNECTION]`: the live
 * view (top-view.h) of a running samepaged, over its libvirt socket (the
 * read-only one with --readonly: it only reads).
 *
 * Each refresh makes three calls: CONNECT_GET_ALL_DOMAIN_STATS (every
 * domain: state and the samepage.* keys), NODE_GET_MEMORY_PARAMETERS (the
 * shm_* figures) and the samepage program's CLONE_GROUPS; their keys are
 * mapped back onto the tables of vmm/metrics/figures.h by libvirt name,
 * so the view shows exactly the figures the daemon sends.  A daemon that
 * cannot be reached is a one-line error before the terminal is taken; a
 * daemon lost while the view runs ends it with a one-line error after
 * the terminal is restored.  Single-threaded.
 */
#include <stdio.h>
#include <string.h>

#include "vmm/cli/cmd-client.h"
#include "vmm/cli/cmd.h"
#include "vmm/cli/top-view.h"

typedef struct TopClient {
    SpLvClient *client;
    GMainLoop *loop;
} TopClient;

/* A typed parameter's value as the figure's type wants it; false if its
 * wire type is not a number. */
static bool top_param_value(const SpLvParam *p, const SpFigure *f, SpFigValue *out)
{
    double d;
    switch (p->type) {
    case SP_LV_PARAM_INT:
        d = p->v.i;
        break;
    case SP_LV_PARAM_UINT:
        d = p->v.ui;
        break;
    case SP_LV_PARAM_LLONG:
        d = (double)p->v.l;
        break;
    case SP_LV_PARAM_ULLONG:
        d = (double)p->v.ul;
        break;
    case SP_LV_PARAM_DOUBLE:
        d = p->v.d;
        break;
    case SP_LV_PARAM_BOOLEAN:
        d = p->v.b;
        break;
    default:
        return false;
    }
    if (f->ctype == SP_FIG_F64)
        out->d = d;
    else if (f->ctype == SP_FIG_I64)
        out->i = p->type == SP_LV_PARAM_LLONG ? p->v.l : (int64_t)d;
    else
        out->u = p->type == SP_LV_PARAM_ULLONG ? p->v.ul : (uint64_t)MAX(d, 0);
    return true;
}

/* The figures of `scope` found in params by their libvirt names. */
static bool top_read_params(SpFigScope scope, const SpLvParams *params, SpFigValue *v, bool *have)
{
    size_t n;
    const SpFigure *t = sp_fig_table(scope, &n);
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        const SpLvParam *p = t[i].libvirt ? sp_lv_params_find(params, t[i].libvirt) : NULL;
        have[i] = p && top_param_value(p, &t[i], &v[i]);
        any |= have[i];
    }
    return any;
}

static void top_add_domain(SpFigSnapshot *s, const SpLvClientDomStats *r)
{
    const SpLvParam *st = sp_lv_params_find(r->params, "state.state");
    const SpLvParam *sd = sp_lv_params_find(r->params, "samepage.sharing_domain");
    SpFigVm *vm =
        sp_fig_snapshot_add_vm(s, r->dom.name, r->dom.uuid,
                               sp_cli_state_name(st && st->type == SP_LV_PARAM_INT ? st->v.i : -1),
                               sd && sd->type == SP_LV_PARAM_STRING ? sd->v.s : NULL, NULL);
    vm->has_figures = top_read_params(SP_FIG_VM, r->params, vm->v, vm->have);
}

static SpFigSnapshot *top_fetch(void *opaque, GError **error)
{
    TopClient *tc = opaque;
    g_autoptr(GPtrArray) recs = sp_lv_client_get_all_domain_stats(
        tc->client, NULL, SP_LV_STATS_STATE | SP_LV_STATS_BALLOON, 0, error);
    if (!recs)
        return NULL;
    g_autoptr(SpLvParams) node = sp_lv_client_node_memory_params(tc->client, error);
    if (!node)
        return NULL;
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GPtrArray) groups = sp_lv_client_clone_groups(tc->client, &gerr);
    if (!groups && (gerr->domain != SP_LV_CLIENT_REMOTE_ERROR ||
                    (gerr->code != SP_LV_ERR_NO_SUPPORT && gerr->code != SP_LV_ERR_RPC))) {
        g_propagate_error(error, g_steal_pointer(&gerr));
        return NULL;
    }
    g_autoptr(SpFigSnapshot) s = sp_fig_snapshot_new();
    for (guint i = 0; i < recs->len; i++)
        top_add_domain(s, recs->pdata[i]);
    s->has_node = top_read_params(SP_FIG_NODE, node, s->node, s->node_have);
    size_t ng;
    sp_fig_table(SP_FIG_GROUP, &ng);
    for (guint i = 0; groups && i < groups->len; i++) {
        SpFigValue *v = g_new0(SpFigValue, ng);
        g_autofree bool *have = g_new0(bool, ng);
        top_read_params(SP_FIG_GROUP, groups->pdata[i], v, have);
        g_ptr_array_add(s->groups, v);
    }
    return g_steal_pointer(&s);
}

static void top_done(void *opaque)
{
    g_main_loop_quit(((TopClient *)opaque)->loop);
}

int sp_cmd_top(int argc, char **argv)
{
    g_auto(SpCliOpts) o = {0};
    double interval = 2;
    bool done;
    GOptionEntry entries[] = {
        {"interval", 'i', 0, G_OPTION_ARG_DOUBLE, &interval,
         "Seconds between refreshes (0.2..3600, default 2)", "SECONDS"},
        {NULL},
    };
    int rc =
        sp_cli_parse("top", NULL, "A live full-screen view of samepaged's VMs and sharing engine.",
                     "One row per VM (state, RAM, guest rounds and integrity errors, merged,\n"
                     "zero, private and clone-shared pages, mappings, profit), the engine's\n"
                     "counters and saving with its history over the last refreshes, and the\n"
                     "clone groups.  Keys: q quits, < and > (or the arrow keys) pick the sort\n"
                     "column, r reverses it, space refreshes now.  It only reads: --readonly\n"
                     "(the read-only socket) is enough.  `samepage run --top` shows the same\n"
                     "view of its own VMs.",
                     entries, false, &o, &argc, &argv, &done);
    if (done)
        return rc;
    if (argc > 1)
        return sp_cli_usage_error("top", "unexpected argument '%s'", argv[1]);
    if (!(interval >= 0.2 && interval <= 3600))
        return sp_cli_usage_error("top", "--interval must be 0.2..3600 seconds");
    g_autoptr(SpLvClient) c = sp_cli_connect(&o);
    if (!c)
        return SP_CLI_FAIL;
    sp_lv_client_set_timeout(c, 15000);
    g_autoptr(GError) error = NULL;
    g_autofree char *source = g_strdup_printf("samepaged at %s", sp_cli_socket_path(&o));
    g_autoptr(SpTopView) view = sp_top_view_new(source, &error);
    if (!view)
        return sp_cli_fail(error);
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    TopClient tc = {.client = c, .loop = loop};
    sp_top_view_run(view, (guint)(interval * 1000), top_fetch, top_done, &tc);
    if (!sp_top_view_error(view))
        g_main_loop_run(loop);
    if (sp_top_view_error(view)) {
        g_autoptr(GError) lost = g_error_copy(sp_top_view_error(view));
        g_clear_pointer(&view, sp_top_view_free); /* the terminal back first */
        g_prefix_error(&lost, "lost samepaged at %s: ", sp_cli_socket_path(&o));
        return sp_cli_fail(lost);
    }
    return SP_CLI_OK;
}
