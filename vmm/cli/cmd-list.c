/* SPDX-License-Identifier: MIT */
/*
 * cmd-list.c - `samepage list [--all] [--json]`: samepaged's VMs with their
 * id, name and state (CONNECT_LIST_ALL_DOMAINS, then DOMAIN_GET_STATE for
 * each).  Running VMs come first by id, then the others by name, as virsh
 * lists them.  A VM undefined between the two calls is left out.
 */
#include <stdio.h>
#include <string.h>

#include "vmm/cli/cmd-client.h"
#include "vmm/cli/cmd.h"
#include "vmm/libvirt/domxml.h"
#include "vmm/libvirt/protocol.h"

typedef struct {
    SpLvClientDom *dom; /* borrowed from the list */
    gint32 state;
    gint32 reason;
} ListRow;

static gint list_row_cmp(gconstpointer a, gconstpointer b)
{
    const ListRow *x = a, *y = b;
    bool xa = x->dom->id >= 0, ya = y->dom->id >= 0;
    if (xa != ya)
        return xa ? -1 : 1;
    if (xa && x->dom->id != y->dom->id)
        return x->dom->id < y->dom->id ? -1 : 1;
    return g_strcmp0(x->dom->name, y->dom->name);
}

static void list_print_text(GArray *rows)
{
    int w = 4;
    for (guint i = 0; i < rows->len; i++)
        w = MAX(w, (int)strlen(g_array_index(rows, ListRow, i).dom->name));
    printf(" %-4s %-*s   %s\n", "Id", w, "Name", "State");
    for (int i = 0; i < w + 18; i++)
        putchar('-');
    putchar('\n');
    for (guint i = 0; i < rows->len; i++) {
        const ListRow *r = &g_array_index(rows, ListRow, i);
        char id[16] = "-";
        if (r->dom->id >= 0)
            g_snprintf(id, sizeof(id), "%d", r->dom->id);
        printf(" %-4s %-*s   %s\n", id, w, r->dom->name, sp_cli_state_name(r->state));
    }
}

static void list_print_json(GArray *rows)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_array(b);
    for (guint i = 0; i < rows->len; i++) {
        const ListRow *r = &g_array_index(rows, ListRow, i);
        char uuid[37];
        sp_domxml_uuid_format(r->dom->uuid, uuid);
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "id");
        if (r->dom->id >= 0)
            json_builder_add_int_value(b, r->dom->id);
        else
            json_builder_add_null_value(b);
        sp_json_add_string_member(b, "name", r->dom->name);
        sp_json_add_string_member(b, "uuid", uuid);
        sp_json_add_string_member(b, "state", sp_cli_state_name(r->state));
        json_builder_set_member_name(b, "state_code");
        json_builder_add_int_value(b, r->state);
        json_builder_set_member_name(b, "reason_code");
        json_builder_add_int_value(b, r->reason);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    sp_json_print(b, true, stdout);
}

int sp_cmd_list(int argc, char **argv)
{
    g_auto(SpCliOpts) o = {0};
    gboolean all = FALSE;
    bool done;
    GOptionEntry entries[] = {
        {"all", 'a', 0, G_OPTION_ARG_NONE, &all, "List inactive VMs too", NULL},
        {NULL},
    };
    int rc = sp_cli_parse("list", NULL, "List samepaged's VMs: id, name and state.",
                          "Without --all only running VMs are listed.  With --json the output\n"
                          "is one JSON array of objects {id (null when not running), name,\n"
                          "uuid, state, state_code, reason_code} (libvirt's virDomainState\n"
                          "and reason numbers).",
                          entries, true, &o, &argc, &argv, &done);
    if (done)
        return rc;
    if (argc > 1)
        return sp_cli_usage_error("list", "unexpected argument '%s'", argv[1]);

    g_autoptr(SpLvClient) c = sp_cli_connect(&o);
    if (!c)
        return SP_CLI_FAIL;
    g_autoptr(GError) error = NULL;
    guint32 flags = all ? SP_LV_LIST_ACTIVE | SP_LV_LIST_INACTIVE : SP_LV_LIST_ACTIVE;
    g_autoptr(GPtrArray) doms = sp_lv_client_list_all(c, flags, &error);
    if (!doms)
        return sp_cli_fail(error);
    g_autoptr(GArray) rows = g_array_new(FALSE, TRUE, sizeof(ListRow));
    for (guint i = 0; i < doms->len; i++) {
        ListRow r = {.dom = doms->pdata[i]};
        if (!sp_lv_client_get_state(c, r.dom, &r.state, &r.reason, &error)) {
            if (error->domain == SP_LV_CLIENT_REMOTE_ERROR && error->code == SP_LV_ERR_NO_DOMAIN) {
                g_clear_error(&error); /* undefined meanwhile */
                continue;
            }
            return sp_cli_fail(error);
        }
        g_array_append_val(rows, r);
    }
    g_array_sort(rows, list_row_cmp);
    if (o.json)
        list_print_json(rows);
    else
        list_print_text(rows);
    return SP_CLI_OK;
}
