/* SPDX-License-Identifier: MIT */
/*
 * stop-signals.h - SIGINT and SIGTERM, each one counted.
 *
 * g_unix_signal_add() folds every signal that arrives before the main
 * loop dispatches into one call: two Ctrl-C pressed while the main thread
 * is busy (a status line waiting for the engine's figures on a loaded
 * host) would be one stop, not "stop, then kill".  Here the handler
 * writes one byte per delivery to a non-blocking pipe and the main loop
 * calls back once per byte, in order: every signal is seen.
 *
 * Only one watch may exist at a time (the handler is process-wide); the
 * previous dispositions come back when it is removed.  The callback runs
 * on the thread of the GMainContext the watch was added to (the default
 * one).  A pipe that is full (65,536 signals not yet dispatched) drops
 * the rest: they could not change what the first ones do.
 */
#ifndef SAMEPAGE_VMM_CLI_STOP_SIGNALS_H
#define SAMEPAGE_VMM_CLI_STOP_SIGNALS_H

#include <stdbool.h>
#include <glib.h>

/* Called once per SIGINT/SIGTERM delivered, with its number. */
typedef void (*SpStopSignalFunc)(int signum, gpointer data);

/* Install the handlers and the watch; false (err set) if they could not
 * be (a watch exists already, or no pipe). */
bool sp_stop_signals_watch(SpStopSignalFunc fn, gpointer data, GError **err);
/* Remove the watch, restore the previous dispositions.  Signals not yet
 * dispatched are dropped.  Idempotent. */
void sp_stop_signals_unwatch(void);

#endif
