/* SPDX-License-Identifier: MIT */
/*
 * cmd-client.c - helpers shared by the samepaged client commands
 * (cmd-client.h): option parsing, connecting, errors, state names, JSON.
 *
 * GOption does the parsing; its own --help would exit() from inside the
 * parser, so help is disabled there and handled here (printed to stdout,
 * status 0).  JSON is written with json-glib (vmm/metrics/json.h), which
 * escapes strings per RFC 8259; invalid UTF-8 from the daemon is replaced
 * by U+FFFD.
 */
#include "vmm/cli/cmd-client.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vmm/libvirt/protocol.h"

void sp_cli_opts_clear(SpCliOpts *o)
{
    g_clear_pointer(&o->connect, g_free);
}

int sp_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    fprintf(stderr, "samepage %s: %s (see samepage %s --help)\n", cmd, msg, cmd);
    return SP_CLI_USAGE;
}

int sp_cli_fail(const GError *error)
{
    fprintf(stderr, "samepage: %s\n", error ? error->message : "unknown error");
    return SP_CLI_FAIL;
}

int sp_cli_parse(const char *cmd, const char *params, const char *summary, const char *description,
                 const GOptionEntry *extra, bool with_json, SpCliOpts *o, int *argc, char ***argv,
                 bool *done)
{
    gboolean help = FALSE;
    GOptionEntry common[] = {
        {"connect", 'c', 0, G_OPTION_ARG_FILENAME, &o->connect,
         "samepaged's socket (default " SP_CLI_SOCKET_DEFAULT ", or its -ro twin with --readonly)",
         "PATH"},
        {"readonly", 'r', 0, G_OPTION_ARG_NONE, &o->readonly,
         "Open a read-only connection (the -ro socket by default)", NULL},
        {"json", 0, 0, G_OPTION_ARG_NONE, &o->json, "Print JSON instead of text", NULL},
        {"help", 'h', 0, G_OPTION_ARG_NONE, &help, "Show this help", NULL},
        {NULL},
    };
    if (!with_json) /* drop --json by moving --help over it */
        common[2] = common[3], common[3] = (GOptionEntry){NULL};
    g_autofree char *prg = g_strdup_printf("samepage %s", cmd);
    g_set_prgname(prg);
    g_autoptr(GOptionContext) oc = g_option_context_new(params);
    g_option_context_set_help_enabled(oc, FALSE);
    g_option_context_set_summary(oc, summary);
    if (description)
        g_option_context_set_description(oc, description);
    if (extra)
        g_option_context_add_main_entries(oc, extra, NULL);
    g_option_context_add_main_entries(oc, common, NULL);
    g_autoptr(GError) error = NULL;
    *done = true;
    if (!g_option_context_parse(oc, argc, argv, &error))
        return sp_cli_usage_error(cmd, "%s", error->message);
    if (help) {
        g_autofree char *text = g_option_context_get_help(oc, TRUE, NULL);
        fputs(text, stdout);
        if (*text && !g_str_has_suffix(text, "\n"))
            putchar('\n');
        return SP_CLI_OK;
    }
    *done = false;
    return SP_CLI_OK;
}

const char *sp_cli_socket_path(const SpCliOpts *o)
{
    if (o->connect)
        return o->connect;
    return o->readonly ? SP_CLI_SOCKET_DEFAULT "-ro" : SP_CLI_SOCKET_DEFAULT;
}

SpLvClient *sp_cli_connect(const SpCliOpts *o)
{
    const char *path = sp_cli_socket_path(o);
    g_autoptr(GError) error = NULL;
    SpLvClient *c = sp_lv_client_connect(path, o->readonly, &error);
    if (!c) {
        if (error->domain == SP_LV_CLIENT_ERROR)
            fprintf(stderr, "samepage: cannot connect to samepaged at %s: %s\n", path,
                    error->message);
        else
            fprintf(stderr, "samepage: samepaged at %s refused the connection: %s\n", path,
                    error->message);
    }
    return c;
}

bool sp_cli_lookup(SpLvClient *c, const char *name, SpLvClientDom *out)
{
    g_autoptr(GError) error = NULL;
    if (!sp_lv_client_lookup_by_name(c, name, out, &error)) {
        sp_cli_fail(error);
        return false;
    }
    return true;
}

const char *sp_cli_state_name(gint32 state)
{
    return sp_lv_state_name(state);
}

void sp_cli_json_param(JsonBuilder *b, const SpLvParam *p)
{
    switch (p->type) {
    case SP_LV_PARAM_INT:
        json_builder_add_int_value(b, p->v.i);
        break;
    case SP_LV_PARAM_UINT:
        json_builder_add_int_value(b, p->v.ui);
        break;
    case SP_LV_PARAM_LLONG:
        json_builder_add_int_value(b, p->v.l);
        break;
    case SP_LV_PARAM_ULLONG:
        if (p->v.ul <= G_MAXINT64)
            json_builder_add_int_value(b, (gint64)p->v.ul);
        else /* beyond JSON-glib's integers: the nearest double */
            json_builder_add_double_value(b, (double)p->v.ul);
        break;
    case SP_LV_PARAM_DOUBLE:
        if (isfinite(p->v.d))
            json_builder_add_double_value(b, p->v.d);
        else
            json_builder_add_null_value(b);
        break;
    case SP_LV_PARAM_BOOLEAN:
        json_builder_add_boolean_value(b, p->v.b);
        break;
    case SP_LV_PARAM_STRING:
        sp_json_add_string(b, p->v.s ? p->v.s : "");
        break;
    default:
        json_builder_add_null_value(b);
    }
}

void sp_cli_json_params(JsonBuilder *b, const SpLvParams *params)
{
    json_builder_begin_object(b);
    for (guint k = 0; k < sp_lv_params_len(params); k++) {
        const SpLvParam *p = sp_lv_params_get(params, k);
        json_builder_set_member_name(b, p->field);
        sp_cli_json_param(b, p);
    }
    json_builder_end_object(b);
}

char *sp_cli_param_text(const SpLvParam *p)
{
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    switch (p->type) {
    case SP_LV_PARAM_INT:
        return g_strdup_printf("%" G_GINT32_FORMAT, p->v.i);
    case SP_LV_PARAM_UINT:
        return g_strdup_printf("%" G_GUINT32_FORMAT, p->v.ui);
    case SP_LV_PARAM_LLONG:
        return g_strdup_printf("%" G_GINT64_FORMAT, p->v.l);
    case SP_LV_PARAM_ULLONG:
        return g_strdup_printf("%" G_GUINT64_FORMAT, p->v.ul);
    case SP_LV_PARAM_DOUBLE:
        return g_strdup(g_ascii_dtostr(buf, sizeof(buf), p->v.d));
    case SP_LV_PARAM_BOOLEAN:
        return g_strdup(p->v.b ? "yes" : "no");
    case SP_LV_PARAM_STRING:
        return g_strdup(p->v.s ? p->v.s : "");
    default:
        return g_strdup("?");
    }
}
