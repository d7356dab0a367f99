/* SPDX-License-Identifier: MIT */
/*
 * cmd-clone.c - `samepage clone NAME [--count N] [--names A,B,...]`: ask
 * samepaged to clone a running VM (the samepage program's CLONE call,
 * docs/libvirt.md).  The daemon pauses NAME once, and each child runs on
 * from that point as a running transient domain.  Prints one line naming
 * the children (or, with --json, {"source": NAME, "children": [...]}).
 * Errors are the daemon's one line, exit status 1; nothing was made then.
 */
#include <stdio.h>
#include <string.h>

#include "vmm/cli/cmd-client.h"
#include "vmm/cli/cmd.h"

int sp_cmd_clone(int argc, char **argv)
{
    g_auto(SpCliOpts) o = {0};
    gint count = -1;
    g_autofree char *names_arg = NULL;
    bool done;
    GOptionEntry entries[] = {
        {"count", 'n', 0, G_OPTION_ARG_INT, &count,
         "Number of children (default: the number of --names, else 1; at most samepaged's "
         "--clone-max, 64 by default)",
         "N"},
        {"names", 0, 0, G_OPTION_ARG_STRING, &names_arg,
         "Comma-separated names of the first children (default NAME-c1, NAME-c2, ... "
         "skipping names in use)",
         "A,B,..."},
        {NULL},
    };
    int rc = sp_cli_parse(
        "clone", "NAME", "Clone a running VM into N children that run on from the same point.",
        "samepaged pauses NAME once (milliseconds), turns its RAM into frames the\n"
        "clone family maps copy-on-write, and starts each child as a running\n"
        "transient domain (a copy of NAME's definition with a new name and UUID):\n"
        "`samepage list` and `virsh list` show them, `samepage destroy` or\n"
        "`virsh destroy` stops them, `samepage console CHILD` shows their console.\n"
        "NAME keeps running.  Cloning a clone works (a chain of clone groups).\n"
        "Only running payload VMs can be cloned, not Linux guests.  On any error\n"
        "(unknown or stopped VM, count 0 or over the maximum, a name in use)\n"
        "nothing is created and the exit status is 1.  samepage stats shows the\n"
        "clone-shared pages (samepage.clone.*) and the clone groups.",
        entries, true, &o, &argc, &argv, &done);
    if (done)
        return rc;
    if (argc < 2)
        return sp_cli_usage_error("clone", "missing NAME");
    if (argc > 2)
        return sp_cli_usage_error("clone", "unexpected argument '%s'", argv[2]);
    g_auto(GStrv) names = names_arg ? g_strsplit(names_arg, ",", -1) : g_new0(char *, 1);
    guint n_names = g_strv_length(names);
    for (guint i = 0; i < n_names; i++)
        if (!*names[i])
            return sp_cli_usage_error("clone", "--names has an empty name");
    if (n_names > SP_LV_CLONE_NAMES_MAX)
        return sp_cli_usage_error("clone", "--names gives more than %u names",
                                  SP_LV_CLONE_NAMES_MAX);
    if (count == -1) /* not given */
        count = n_names ? (gint)n_names : 1;
    else if (count < 0)
        return sp_cli_usage_error("clone", "--count must not be negative");
    g_autoptr(SpLvClient) c = sp_cli_connect(&o);
    if (!c)
        return SP_CLI_FAIL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) kids =
        sp_lv_client_clone(c, argv[1], (guint32)count, (const char *const *)names, n_names, &error);
    if (!kids)
        return sp_cli_fail(error);
    if (o.json) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_builder_begin_object(b);
        sp_json_add_string_member(b, "source", argv[1]);
        json_builder_set_member_name(b, "children");
        json_builder_begin_array(b);
        for (guint i = 0; i < kids->len; i++)
            sp_json_add_string(b, kids->pdata[i]);
        json_builder_end_array(b);
        json_builder_end_object(b);
        sp_json_print(b, false, stdout);
        return SP_CLI_OK;
    }
    g_ptr_array_add(kids, NULL);
    g_autofree char *list = g_strjoinv(", ", (char **)kids->pdata);
    printf("Domain '%s' cloned into %s\n", argv[1], list);
    return SP_CLI_OK;
}
