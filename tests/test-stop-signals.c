/* SPDX-License-Identifier: MIT */
/*
 * test-stop-signals.c - SIGINT/SIGTERM counted one by one
 * (vmm/cli/stop-signals.c), the "Ctrl-C twice" of `samepage run`: two
 * signals that arrive while the main loop is busy (here: not iterating)
 * are two callbacks, in order, not one as g_unix_signal_add() makes them;
 * after the watch is removed the previous disposition is back; a second
 * watch is refused while one exists.
 */
#include <signal.h>
#include <unistd.h>
#include <glib.h>

#include "vmm/cli/stop-signals.h"

typedef struct Seen {
    GArray *sigs;
} Seen;

static void on_sig(int signum, gpointer data)
{
    Seen *s = data;
    g_array_append_val(s->sigs, signum);
}

/* Iterate the default context until nothing is pending, at most 1 s. */
static void drain(void)
{
    gint64 end = g_get_monotonic_time() + G_USEC_PER_SEC;
    while (g_get_monotonic_time() < end) {
        if (!g_main_context_iteration(NULL, FALSE))
            g_usleep(10000);
    }
}

static void test_counted(void)
{
    Seen s = {.sigs = g_array_new(FALSE, FALSE, sizeof(int))};
    g_autoptr(GError) err = NULL;
    g_assert_true(sp_stop_signals_watch(on_sig, &s, &err));
    g_assert_no_error(err);
    /* each raise() is delivered (the handler has run) before it returns;
     * the main loop runs only after all three */
    raise(SIGTERM);
    raise(SIGTERM);
    raise(SIGINT);
    g_assert_cmpuint(s.sigs->len, ==, 0);
    drain();
    g_assert_cmpuint(s.sigs->len, ==, 3);
    g_assert_cmpint(g_array_index(s.sigs, int, 0), ==, SIGTERM);
    g_assert_cmpint(g_array_index(s.sigs, int, 1), ==, SIGTERM);
    g_assert_cmpint(g_array_index(s.sigs, int, 2), ==, SIGINT);

    /* one watch at a time */
    Seen other = {.sigs = g_array_new(FALSE, FALSE, sizeof(int))};
    g_assert_false(sp_stop_signals_watch(on_sig, &other, &err));
    g_assert_nonnull(err);
    g_clear_error(&err);

    sp_stop_signals_unwatch();
    sp_stop_signals_unwatch(); /* idempotent */
    g_array_free(other.sigs, TRUE);
    g_array_free(s.sigs, TRUE);
}

/* After unwatch the disposition before the watch is back: here SIG_IGN,
 * so a raise() is harmless and calls nobody. */
static void test_restored(void)
{
    Seen s = {.sigs = g_array_new(FALSE, FALSE, sizeof(int))};
    signal(SIGTERM, SIG_IGN);
    g_assert_true(sp_stop_signals_watch(on_sig, &s, NULL));
    raise(SIGTERM);
    drain();
    g_assert_cmpuint(s.sigs->len, ==, 1);
    sp_stop_signals_unwatch();
    raise(SIGTERM);
    drain();
    g_assert_cmpuint(s.sigs->len, ==, 1);
    struct sigaction now;
    sigaction(SIGTERM, NULL, &now);
    g_assert_true(now.sa_handler == SIG_IGN);
    signal(SIGTERM, SIG_DFL);
    g_array_free(s.sigs, TRUE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/stop-signals/counted", test_counted);
    g_test_add_func("/stop-signals/restored", test_restored);
    return g_test_run();
}
