/* SPDX-License-Identifier: MIT */
/*
 * cmd-lifecycle.c - the commands that change one VM of samepaged:
 *   define FILE.xml    DOMAIN_DEFINE_XML
 *   undefine NAME      DOMAIN_UNDEFINE
 *   start NAME         DOMAIN_CREATE
 *   stop NAME          DOMAIN_SHUTDOWN, then wait (--timeout) until it is off
 *   destroy NAME       DOMAIN_DESTROY
 *   shutdown-all       DOMAIN_SHUTDOWN of every running VM, then wait until none runs
 * Each prints one confirmation line on success; a daemon error is printed
 * verbatim ("samepage: Domain not found: ...") with exit status 1.
 */
#include <stdio.h>

#include "vmm/cli/cmd-client.h"
#include "vmm/cli/cmd.h"
#include "vmm/libvirt/protocol.h"

/* Parses the options of a one-argument command; *arg is the argument. */
static int lc_parse(const char *cmd, const char *param, const char *summary, const char *desc,
                    const GOptionEntry *extra, SpCliOpts *o, int *argc, char ***argv,
                    const char **arg, bool *done)
{
    int rc = sp_cli_parse(cmd, param, summary, desc, extra, false, o, argc, argv, done);
    if (*done)
        return rc;
    *done = true;
    if (*argc < 2)
        return sp_cli_usage_error(cmd, "missing %s", param);
    if (*argc > 2)
        return sp_cli_usage_error(cmd, "unexpected argument '%s'", (*argv)[2]);
    *arg = (*argv)[1];
    *done = false;
    return SP_CLI_OK;
}

int sp_cmd_define(int argc, char **argv)
{
    g_auto(SpCliOpts) o = {0};
    const char *file = NULL;
    bool done;
    int rc =
        lc_parse("define", "FILE.xml", "Define (or redefine) a VM from a libvirt domain XML file.",
                 "The VM is kept in samepaged's state directory and survives daemon\n"
                 "restarts; it is not started (see samepage start).  docs/cli.md shows\n"
                 "the XML samepaged understands.",
                 NULL, &o, &argc, &argv, &file, &done);
    if (done)
        return rc;
    g_autofree char *xml = NULL;
    g_autoptr(GError) error = NULL;
    if (!g_file_get_contents(file, &xml, NULL, &error))
        return sp_cli_fail(error);
    g_autoptr(SpLvClient) c = sp_cli_connect(&o);
    if (!c)
        return SP_CLI_FAIL;
    g_auto(SpLvClientDom) d = {0};
    if (!sp_lv_client_define_xml(c, xml, &d, &error))
        return sp_cli_fail(error);
    printf("Domain '%s' defined from %s\n", d.name, file);
    return SP_CLI_OK;
}

/* Procedures whose arguments are {dom, unsigned flags} rather than {dom}. */
static bool lc_with_flags(gint32 proc)
{
    return proc == SP_LV_PROC_DOMAIN_REBOOT;
}

/* Connect, look NAME up into d and call proc with {dom} (flags 0 where it
 * takes them): the connection, or NULL after printing why (exit status
 * SP_CLI_FAIL). */
static SpLvClient *lc_call(const SpCliOpts *o, const char *name, gint32 proc, SpLvClientDom *d)
{
    g_autoptr(SpLvClient) c = sp_cli_connect(o);
    if (!c || !sp_cli_lookup(c, name, d))
        return NULL;
    g_autoptr(GError) error = NULL;
    if (!sp_lv_client_dom_void(c, proc, d, lc_with_flags(proc), 0, &error)) {
        sp_cli_fail(error);
        return NULL;
    }
    return g_steal_pointer(&c);
}

/* lookup NAME, call proc with {dom}, print "Domain 'NAME' <what>" on success. */
static int lc_simple(const char *cmd, const char *summary, const char *desc, gint32 proc,
                     const char *what, int argc, char **argv)
{
    g_auto(SpCliOpts) o = {0};
    const char *name = NULL;
    bool done;
    int rc = lc_parse(cmd, "NAME", summary, desc, NULL, &o, &argc, &argv, &name, &done);
    if (done)
        return rc;
    g_auto(SpLvClientDom) d = {0};
    g_autoptr(SpLvClient) c = lc_call(&o, name, proc, &d);
    if (!c)
        return SP_CLI_FAIL;
    printf("Domain '%s' %s\n", d.name, what);
    return SP_CLI_OK;
}

int sp_cmd_undefine(int argc, char **argv)
{
    return lc_simple("undefine", "Remove a VM's definition from samepaged.",
                     "A running VM keeps running and disappears once it stops.",
                     SP_LV_PROC_DOMAIN_UNDEFINE, "has been undefined", argc, argv);
}

int sp_cmd_start(int argc, char **argv)
{
    return lc_simple("start", "Start a defined VM.",
                     "Its console goes to STATE-DIR/console/NAME.log (see samepage console).",
                     SP_LV_PROC_DOMAIN_CREATE, "started", argc, argv);
}

int sp_cmd_destroy(int argc, char **argv)
{
    return lc_simple("destroy", "Stop a running VM at once (pull the plug).",
                     "The definition stays; start it again with samepage start.",
                     SP_LV_PROC_DOMAIN_DESTROY, "destroyed", argc, argv);
}

int sp_cmd_suspend(int argc, char **argv)
{
    return lc_simple("suspend", "Suspend a running VM.",
                     "Its vCPUs stop (state paused) until samepage resume; its memory stays.",
                     SP_LV_PROC_DOMAIN_SUSPEND, "suspended", argc, argv);
}

int sp_cmd_resume(int argc, char **argv)
{
    return lc_simple("resume", "Resume a suspended VM.", "Its vCPUs go on where they stopped.",
                     SP_LV_PROC_DOMAIN_RESUME, "resumed", argc, argv);
}

int sp_cmd_reboot(int argc, char **argv)
{
    return lc_simple("reboot", "Reboot a running VM.",
                     "samepaged starts its definition again in a new VM process with the same "
                     "id: a Linux guest boots its kernel again, a payload starts over.",
                     SP_LV_PROC_DOMAIN_REBOOT, "is being rebooted", argc, argv);
}

int sp_cmd_stop(int argc, char **argv)
{
    g_auto(SpCliOpts) o = {0};
    const char *name = NULL;
    gint timeout = 30;
    bool done;
    GOptionEntry entries[] = {
        {"timeout", 't', 0, G_OPTION_ARG_INT, &timeout,
         "Seconds to wait for the VM to be off (default 30; 0: do not wait)", "SECONDS"},
        {NULL},
    };
    int rc = lc_parse("stop", "NAME", "Shut a running VM down (libvirt's shutdown).",
                      "Then waits until samepaged reports it no longer running; exit status\n"
                      "1 if it is still running after --timeout seconds.  samepage payloads\n"
                      "have no ACPI, so samepaged stops them at once.",
                      entries, &o, &argc, &argv, &name, &done);
    if (done)
        return rc;
    if (timeout < 0)
        return sp_cli_usage_error("stop", "--timeout must not be negative");
    g_auto(SpLvClientDom) d = {0};
    g_autoptr(SpLvClient) c = lc_call(&o, name, SP_LV_PROC_DOMAIN_SHUTDOWN, &d);
    if (!c)
        return SP_CLI_FAIL;
    g_autoptr(GError) error = NULL;
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout * G_USEC_PER_SEC;
    for (;;) {
        gint32 state;
        if (!sp_lv_client_get_state(c, &d, &state, NULL, &error)) {
            if (error->domain == SP_LV_CLIENT_REMOTE_ERROR && error->code == SP_LV_ERR_NO_DOMAIN)
                break; /* a transient VM is gone once stopped */
            return sp_cli_fail(error);
        }
        if (state != SP_LV_DOMAIN_RUNNING && state != SP_LV_DOMAIN_SHUTDOWN &&
            state != SP_LV_DOMAIN_PAUSED && state != SP_LV_DOMAIN_BLOCKED)
            break;
        if (timeout == 0) {
            printf("Domain '%s' is being shut down\n", d.name);
            return SP_CLI_OK;
        }
        if (g_get_monotonic_time() >= deadline) {
            fprintf(stderr, "samepage: domain '%s' is still %s after %d s\n", d.name,
                    sp_cli_state_name(state), timeout);
            return SP_CLI_FAIL;
        }
        g_usleep(100 * 1000);
    }
    printf("Domain '%s' stopped\n", d.name);
    return SP_CLI_OK;
}

int sp_cmd_shutdown_all(int argc, char **argv)
{
    g_auto(SpCliOpts) o = {0};
    gint timeout = 60;
    bool done;
    GOptionEntry entries[] = {
        {"timeout", 't', 0, G_OPTION_ARG_INT, &timeout,
         "Seconds to wait for every VM to be off (default 60)", "SECONDS"},
        {NULL},
    };
    int rc =
        sp_cli_parse("shutdown-all", NULL, "Stop every running VM of samepaged (host shutdown).",
                     "VM processes outlive samepaged (it re-attaches to them when it\n"
                     "starts again), so stopping the daemon does not stop them.  At host\n"
                     "shutdown this command does, as libvirt-guests does for libvirtd:\n"
                     "each running VM gets libvirt's shutdown (payload VMs stop at once,\n"
                     "Linux guests power off), and the command waits until none runs.\n"
                     "samepage-guests.service runs it.  Exit status 1 if a VM is still\n"
                     "running after --timeout seconds.",
                     entries, false, &o, &argc, &argv, &done);
    if (done)
        return rc;
    if (argc > 1)
        return sp_cli_usage_error("shutdown-all", "unexpected argument '%s'", argv[1]);
    if (timeout < 0)
        return sp_cli_usage_error("shutdown-all", "--timeout must not be negative");
    g_autoptr(SpLvClient) c = sp_cli_connect(&o);
    if (!c)
        return SP_CLI_FAIL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) doms = sp_lv_client_list_all(c, SP_LV_LIST_ACTIVE, &error);
    if (!doms)
        return sp_cli_fail(error);
    for (guint i = 0; i < doms->len; i++) {
        SpLvClientDom *d = doms->pdata[i];
        g_clear_error(&error);
        if (!sp_lv_client_dom_void(c, SP_LV_PROC_DOMAIN_SHUTDOWN, d, false, 0, &error))
            fprintf(stderr, "samepage: %s: %s\n", d->name, error->message);
        else
            printf("Domain '%s' is being shut down\n", d->name);
    }
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout * G_USEC_PER_SEC;
    for (;;) {
        g_clear_error(&error);
        g_autoptr(GPtrArray) left = sp_lv_client_list_all(c, SP_LV_LIST_ACTIVE, &error);
        if (!left)
            return sp_cli_fail(error);
        if (left->len == 0)
            break;
        if (g_get_monotonic_time() >= deadline) {
            fprintf(stderr, "samepage: %u VMs still running after %d s\n", left->len, timeout);
            return SP_CLI_FAIL;
        }
        g_usleep(200 * 1000);
    }
    printf("All %u VMs are off\n", doms->len);
    return SP_CLI_OK;
}
