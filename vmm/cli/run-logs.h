/* SPDX-License-Identifier: MIT */
/*
 * run-logs.h - `samepage run`'s per-VM logs: DIR/NAME.log gets the lines
 * of a VM that are not printed (memload's result lines unless --results;
 * with --top, its console, phases and results too).  DIR is --log-dir, or
 * a new directory samepage-run-XXXXXX under the temporary directory, made
 * when the first line needs it.  Files are opened on first use and
 * appended to, one whole line at a time.
 *
 * Locking: any thread may write (VM event callbacks run on the VMs'
 * reader threads); one mutex serializes the files.  A write that fails
 * is reported once (the caller prints it) and later lines are dropped:
 * a full disk never stops a VM.
 */
#ifndef SAMEPAGE_VMM_CLI_RUN_LOGS_H
#define SAMEPAGE_VMM_CLI_RUN_LOGS_H

#include <stdbool.h>
#include <glib.h>

typedef struct SpRunLogs SpRunLogs;

/* dir NULL: a temporary directory, made when first needed. */
SpRunLogs *sp_run_logs_new(const char *dir);
void sp_run_logs_free(SpRunLogs *l);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpRunLogs, sp_run_logs_free)

/* Append "line\n" to VM's log.  Returns a message to print once (the
 * directory was just made: where the logs are; or the first failure), to
 * be g_free'd, or NULL. */
char *sp_run_logs_write(SpRunLogs *l, const char *vm, const char *line);
/* The directory, or NULL if none was made yet. */
char *sp_run_logs_dir(SpRunLogs *l);

#endif
