/* SPDX-License-Identifier: MIT */
/*
 * top-view.h - the full-screen view of `samepage top` and `samepage run
 * --top` (ncurses): a title line, the engine's figures (the node figures
 * of vmm/metrics/figures.h that have a top label) with a history of the
 * saving, the clone groups in one line, and one row per VM (name, state
 * and the VM figures that have a top column), sorted like top.
 *
 * Keys: q quits; < and > (or the arrow keys) pick the sort column, r
 * reverses it, space refreshes now.
 *
 * The view lives on the thread that made it (ncurses is not thread-safe)
 * and is driven by that thread's default GMainContext: sp_top_view_run()
 * attaches a watch on standard input and a refresh timer that calls
 * `fetch` for a new snapshot.  ncurses is set up with newterm(), which
 * fails with an error instead of exiting; the terminal is restored by
 * sp_top_view_free().
 */
#ifndef SAMEPAGE_VMM_CLI_TOP_VIEW_H
#define SAMEPAGE_VMM_CLI_TOP_VIEW_H

#include "vmm/metrics/snapshot.h"

typedef struct SpTopView SpTopView;

/* A new snapshot, or NULL with an error (the view then ends: see
 * sp_top_view_error). */
typedef SpFigSnapshot *(*SpTopFetchFn)(void *opaque, GError **error);
/* The view ended (q, or a fetch error); called once, from the loop. */
typedef void (*SpTopDoneFn)(void *opaque);

/* Take over the terminal; NULL with a one-line error when standard
 * input and output are not a terminal ncurses can drive. */
SpTopView *sp_top_view_new(const char *source, GError **error);
/* Restores the terminal. */
void sp_top_view_free(SpTopView *v);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpTopView, sp_top_view_free)

/* Refresh every interval_ms (and now) from fetch; done when it ends. */
void sp_top_view_run(SpTopView *v, guint interval_ms, SpTopFetchFn fetch, SpTopDoneFn done,
                     void *opaque);
/* The fetch error that ended the view, or NULL (q). */
const GError *sp_top_view_error(const SpTopView *v);

#endif
