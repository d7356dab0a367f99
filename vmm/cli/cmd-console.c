/* SPDX-License-Identifier: MIT */
/*
 * cmd-console.c - `samepage console NAME [--follow] [--state-dir DIR]`:
 * prints the console log samepaged keeps for a VM, STATE-DIR/console/
 * NAME.log (appended to by every run of the VM).
 *
 * Without --follow the file is read directly (no daemon needed).  With
 * --follow the command also connects to samepaged, prints what the file
 * holds, then keeps printing what is appended (checking every 200 ms) until
 * the daemon reports the VM no longer running (the rest of the file is
 * printed first), the VM is undefined, or SIGINT/SIGTERM (exit status 0).
 * A file that shrinks (recreated) is read again from its start.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <glib/gstdio.h>

#include "vmm/cli/cmd-client.h"
#include "vmm/cli/cmd.h"

static volatile sig_atomic_t console_stop;

static void console_on_signal(int sig)
{
    (void)sig;
    console_stop = 1;
}

/* Copies whatever f holds from its current position to stdout. */
static bool console_drain(FILE *f)
{
    char buf[65536];
    size_t n;
    clearerr(f);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        if (fwrite(buf, 1, n, stdout) != n)
            return false;
    return fflush(stdout) == 0 && !ferror(f);
}

/* Reopens path when it was replaced or truncated; f may become NULL. */
static void console_reopen_if_replaced(const char *path, FILE **f)
{
    GStatBuf st;
    if (g_stat(path, &st) != 0)
        return;
    if (*f) {
        long pos = ftell(*f);
        if (pos >= 0 && st.st_size >= pos)
            return;
        fclose(*f);
    }
    *f = fopen(path, "r");
}

int sp_cmd_console(int argc, char **argv)
{
    g_auto(SpCliOpts) o = {0};
    g_autofree char *state_dir = NULL;
    gboolean follow = FALSE;
    bool done;
    GOptionEntry entries[] = {
        {"follow", 'f', 0, G_OPTION_ARG_NONE, &follow,
         "Keep printing new console output until the VM stops (or Ctrl-C)", NULL},
        {"state-dir", 'd', 0, G_OPTION_ARG_FILENAME, &state_dir,
         "samepaged's state directory (default " SP_CLI_STATE_DIR_DEFAULT ")", "DIR"},
        {NULL},
    };
    int rc = sp_cli_parse(
        "console", "NAME", "Print a VM's console output.",
        "samepaged writes the console of each VM to STATE-DIR/console/NAME.log, one\n"
        "line per guest line, appending across runs.  This prints that file; with\n"
        "--follow it then waits for new lines until samepaged reports the VM no longer\n"
        "running.  Reading the log needs read access to STATE-DIR (root by default).",
        entries, false, &o, &argc, &argv, &done);
    if (done)
        return rc;
    if (argc < 2)
        return sp_cli_usage_error("console", "missing NAME");
    if (argc > 2)
        return sp_cli_usage_error("console", "unexpected argument '%s'", argv[2]);
    const char *name = argv[1];
    if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
        return sp_cli_usage_error("console", "'%s' is not a valid VM name", name);
    g_autofree char *path = g_strdup_printf("%s/console/%s.log",
                                            state_dir ? state_dir : SP_CLI_STATE_DIR_DEFAULT, name);

    g_autoptr(SpLvClient) c = NULL;
    g_auto(SpLvClientDom) d = {0};
    if (follow) {
        c = sp_cli_connect(&o);
        if (!c || !sp_cli_lookup(c, name, &d))
            return SP_CLI_FAIL;
    }
    FILE *f = fopen(path, "r");
    if (!f && (!follow || errno != ENOENT)) {
        int e = errno;
        fprintf(stderr, "samepage: cannot read the console log of '%s' (%s): %s\n", name, path,
                g_strerror(e));
        return SP_CLI_FAIL;
    }
    if (f && !console_drain(f)) {
        fclose(f);
        fprintf(stderr, "samepage: error copying %s\n", path);
        return SP_CLI_FAIL;
    }
    if (!follow) {
        fclose(f);
        return SP_CLI_OK;
    }

    struct sigaction sa = {.sa_handler = console_on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rc = SP_CLI_OK;
    for (guint tick = 0; !console_stop; tick++) {
        bool last = false;
        if (tick % 2 == 0) { /* ask about the state every 400 ms */
            g_autoptr(GError) error = NULL;
            gint32 state;
            if (!sp_lv_client_get_state(c, &d, &state, NULL, &error)) {
                if (error->domain != SP_LV_CLIENT_REMOTE_ERROR ||
                    error->code != SP_LV_ERR_NO_DOMAIN)
                    rc = sp_cli_fail(error);
                last = true;
            } else if (state != SP_LV_DOMAIN_RUNNING && state != SP_LV_DOMAIN_PAUSED &&
                       state != SP_LV_DOMAIN_BLOCKED && state != SP_LV_DOMAIN_SHUTDOWN) {
                last = true;
            }
        }
        console_reopen_if_replaced(path, &f);
        if (f && !console_drain(f)) {
            fprintf(stderr, "samepage: error copying %s\n", path);
            rc = SP_CLI_FAIL;
            break;
        }
        if (last)
            break;
        g_usleep(200 * 1000);
    }
    if (f)
        fclose(f);
    return rc;
}
