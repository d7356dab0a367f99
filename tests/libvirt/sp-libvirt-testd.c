/*
 * sp-libvirt-testd.c - the real libvirt endpoint server (vmm/libvirt/) over
 * the in-memory test backend, for the client tests of tests/libvirt/.
 *
 *   sp-libvirt-testd --rw PATH [--ro PATH] [--group GID] [--inbound-max BYTES]
 *
 * Runs until SIGTERM or SIGINT, then removes its sockets.  Writes "ready" on
 * stdout once both sockets listen.
 */
#include <glib-unix.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/libvirt/test-backend.h"
#include "vmm/libvirt/server.h"

static gboolean on_signal(gpointer data)
{
    g_main_loop_quit(data);
    return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
    g_autofree char *rw = NULL, *ro = NULL;
    gint group = -1, inbound_max = 0;
    GOptionEntry entries[] = {
        {"rw", 0, 0, G_OPTION_ARG_FILENAME, &rw, "read-write socket", "PATH"},
        {"ro", 0, 0, G_OPTION_ARG_FILENAME, &ro, "read-only socket", "PATH"},
        {"group", 0, 0, G_OPTION_ARG_INT, &group, "group allowed on the rw socket", "GID"},
        {"inbound-max", 0, 0, G_OPTION_ARG_INT, &inbound_max, "largest accepted packet", "BYTES"},
        {NULL},
    };
    g_autoptr(GOptionContext) oc = g_option_context_new("- libvirt endpoint test server");
    g_autoptr(GError) err = NULL;
    g_option_context_add_main_entries(oc, entries, NULL);
    if (!g_option_context_parse(oc, &argc, &argv, &err) || !rw) {
        fprintf(stderr, "sp-libvirt-testd: %s\n", err ? err->message : "--rw is required");
        return 2;
    }
    SpLvTestBackend *tb = sp_lv_test_backend_new();
    SpLvBackend backend = sp_lv_test_backend_get(tb);
    SpLvServerConfig cfg = {
        .rw_path = rw,
        .ro_path = ro,
        .rw_group = group < 0 ? (gid_t)-1 : (gid_t)group,
        .endpoint = {.hv_type = "samepage",
                     .hv_version = 1000, /* 0.1.0 */
                     .inbound_max = (guint32)inbound_max},
    };
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    SpLvServer *srv = sp_lv_server_new(&cfg, &backend, NULL, &err);
    if (!srv) {
        fprintf(stderr, "sp-libvirt-testd: %s\n", err->message);
        sp_lv_test_backend_free(tb);
        return 1;
    }
    g_unix_signal_add(SIGTERM, on_signal, loop);
    g_unix_signal_add(SIGINT, on_signal, loop);
    printf("ready\n");
    fflush(stdout);
    g_main_loop_run(loop);
    sp_lv_server_free(srv);
    sp_lv_test_backend_free(tb);
    return 0;
}
