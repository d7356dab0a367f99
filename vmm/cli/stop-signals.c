/* SPDX-License-Identifier: MIT */
/*
 * stop-signals.c - SIGINT and SIGTERM, each one counted (stop-signals.h).
 *
 * Invariants: the handlers are installed only while `pipe_w` is open;
 * the handler touches nothing but `pipe_w`, `owner` and errno
 * (async-signal-safe: getpid(2) and write(2) only), and writes only in
 * the process that installed it: a VM process between fork and exec (a
 * Ctrl-C reaches the terminal's whole process group) shares the pipe but
 * is not counted.  Installing and removing happen on the main thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib-unix.h>

#include "vmm/cli/stop-signals.h"

static volatile int pipe_w = -1;
static pid_t owner; /* the process that watches: not a child between fork and exec */
static int pipe_r = -1;
static guint watch_id;
static SpStopSignalFunc watch_fn;
static gpointer watch_data;
static struct sigaction old_int, old_term;

static void on_stop_signal(int signum)
{
    int saved = errno;
    unsigned char b = (unsigned char)signum;
    if (pipe_w >= 0 && getpid() == owner && write(pipe_w, &b, 1) < 0) {
        /* full: see the header */
    }
    errno = saved;
}

static gboolean on_pipe(gint fd, GIOCondition cond, gpointer opaque)
{
    (void)cond;
    (void)opaque;
    unsigned char buf[64];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            watch_fn(buf[i], watch_data);
            if (!watch_id) /* the callback removed the watch (and closed fd) */
                return G_SOURCE_REMOVE;
        }
    }
    return G_SOURCE_CONTINUE;
}

bool sp_stop_signals_watch(SpStopSignalFunc fn, gpointer data, GError **err)
{
    if (watch_id) {
        g_set_error(err, G_IO_ERROR, G_IO_ERROR_EXISTS, "the stop signals are watched already");
        return false;
    }
    int fds[2];
    if (!g_unix_open_pipe(fds, FD_CLOEXEC, err))
        return false;
    if (!g_unix_set_fd_nonblocking(fds[0], TRUE, err) ||
        !g_unix_set_fd_nonblocking(fds[1], TRUE, err)) {
        close(fds[0]);
        close(fds[1]);
        return false;
    }
    owner = getpid();
    pipe_r = fds[0];
    pipe_w = fds[1];
    watch_fn = fn;
    watch_data = data;
    watch_id = g_unix_fd_add(pipe_r, G_IO_IN, on_pipe, NULL);

    struct sigaction sa = {.sa_handler = on_stop_signal, .sa_flags = SA_RESTART};
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    return true;
}

void sp_stop_signals_unwatch(void)
{
    if (pipe_w < 0)
        return;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (watch_id)
        g_source_remove(watch_id);
    watch_id = 0;
    int w = pipe_w;
    pipe_w = -1;
    close(w);
    close(pipe_r);
    pipe_r = -1;
}
