/* SPDX-License-Identifier: MIT */
/*
 * cmd-client.h - what the `samepage` subcommands that talk to samepaged
 * share: the common options (--connect, --readonly, --json), option parsing
 * with one-line usage errors (exit 2), connecting with a clear message,
 * domain lookup by name, state names and JSON output (json-glib).
 *
 * Exit codes of every client command: 0 success, 1 failure (daemon error,
 * no daemon, unreadable file), 2 usage error.  Errors are one line on
 * stderr, "samepage: MESSAGE".  Single-threaded; no shared state.
 */
#ifndef SAMEPAGE_VMM_CMD_CLIENT_H
#define SAMEPAGE_VMM_CMD_CLIENT_H

#include <glib.h>
#include <stdbool.h>

#include "vmm/libvirt/backend.h" /* state, stats-group and error numbers */
#include "vmm/libvirt/client.h"
#include "vmm/metrics/json.h"

#define SP_CLI_SOCKET_DEFAULT    "/run/samepage/libvirt-sock"
#define SP_CLI_STATE_DIR_DEFAULT "/var/lib/samepage"

enum { SP_CLI_OK = 0, SP_CLI_FAIL = 1, SP_CLI_USAGE = 2 };

typedef struct {
    char *connect;     /* --connect PATH, or NULL for the default */
    gboolean readonly; /* --readonly */
    gboolean json;     /* --json (only where the command offers it) */
} SpCliOpts;

void sp_cli_opts_clear(SpCliOpts *o);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(SpCliOpts, sp_cli_opts_clear)

/*
 * Parses argv for command cmd ("list", ...): the common options, plus
 * --json when with_json, plus the command's own entries (may be NULL).
 * params names the positional arguments for --help ("NAME").  --help prints
 * the help (summary + description) and returns 0 with *done set.  Usage
 * errors print one line and return SP_CLI_USAGE with *done set.  On success
 * argv keeps only the command name and the positional arguments.
 */
int sp_cli_parse(const char *cmd, const char *params, const char *summary, const char *description,
                 const GOptionEntry *extra, bool with_json, SpCliOpts *o, int *argc, char ***argv,
                 bool *done);

/* Prints "samepage CMD: MESSAGE (see samepage CMD --help)"; returns 2. */
int sp_cli_usage_error(const char *cmd, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* Prints "samepage: MESSAGE" for error (daemon messages verbatim); returns 1. */
int sp_cli_fail(const GError *error);

/* The socket path o selects (default, or the -ro default with --readonly). */
const char *sp_cli_socket_path(const SpCliOpts *o);
/* Connects; on failure prints "samepage: cannot connect to samepaged at
 * PATH: ..." and returns NULL. */
SpLvClient *sp_cli_connect(const SpCliOpts *o);
/* Looks a domain up by name; prints the daemon's error on failure. */
bool sp_cli_lookup(SpLvClient *c, const char *name, SpLvClientDom *out);

/* virsh's words for a virDomainState ("running", "shut off", ...). */
const char *sp_cli_state_name(gint32 state);

/* JSON output (json-glib): a typed parameter's value (integers,
 * true/false, strings; non-finite doubles as null), and an object of
 * every parameter of a list, in its order. */
void sp_cli_json_param(JsonBuilder *b, const SpLvParam *p);
void sp_cli_json_params(JsonBuilder *b, const SpLvParams *params);
/* A typed parameter's value as text. */
char *sp_cli_param_text(const SpLvParam *p);

#endif
