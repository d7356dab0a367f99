/* SPDX-License-Identifier: MIT */
/*
 * test-metrics.c - the tables of figures (vmm/metrics/figures.h) and what
 * the printers make of them: names that follow Prometheus's conventions
 * and are unique in every output, a VM name with a quote, a backslash and
 * a line feed escaped in the exposition text and parsed back from the
 * JSON, typed JSON values, and the status lines of `samepage run`.
 */
#include <string.h>

#include "vmm/cli/run-status.h"
#include "vmm/metrics/json.h"
#include "vmm/metrics/prom.h"

static const char weird[] = "we\"b\\1\nx";

/* Prometheus metric names: samepage_ prefix, [a-z0-9_], counters end in
 * _total and nothing else does, units are base units. */
static void test_names(void)
{
    g_autoptr(GHashTable) metrics = g_hash_table_new(g_str_hash, g_str_equal);
    for (int sc = 0; sc < SP_FIG_NSCOPES; sc++) {
        size_t n;
        const SpFigure *t = sp_fig_table(sc, &n);
        g_autoptr(GHashTable) keys = g_hash_table_new(g_str_hash, g_str_equal);
        g_autoptr(GHashTable) lv = g_hash_table_new(g_str_hash, g_str_equal);
        g_assert_cmpuint(n, >, 0);
        for (size_t i = 0; i < n; i++) {
            g_assert_true(g_hash_table_add(keys, (gpointer)t[i].name)); /* JSON keys unique */
            g_assert_true(t[i].help && *t[i].help && !strpbrk(t[i].help, "\n\\"));
            if (t[i].libvirt)
                g_assert_true(g_hash_table_add(lv, (gpointer)t[i].libvirt));
            if (!t[i].metric)
                continue;
            const char *m = t[i].metric;
            g_assert_true(g_str_has_prefix(m, "samepage_"));
            g_assert_cmpuint(strspn(m, "abcdefghijklmnopqrstuvwxyz0123456789_"), ==, strlen(m));
            g_assert_true(g_hash_table_add(metrics, (gpointer)m));
            g_assert_cmpint(g_str_has_suffix(m, "_total"), ==, t[i].type == SP_FIG_COUNTER);
            g_assert_false(g_str_has_suffix(m, "_milliseconds") || strstr(m, "_ns"));
            if (t[i].unit == SP_FIG_BYTES)
                g_assert_true(strstr(m, "_bytes") != NULL);
            if (t[i].unit == SP_FIG_NS || t[i].unit == SP_FIG_US || t[i].unit == SP_FIG_MS ||
                t[i].unit == SP_FIG_SECONDS)
                g_assert_true(strstr(m, "_seconds") != NULL);
        }
    }
}

static SpFigSnapshot *weird_snapshot(void)
{
    SpFigSnapshot *s = sp_fig_snapshot_new();
    SpFigNodeSrc node = {.eng = {.pages_sharing = 1234, .general_profit = -5},
                         .engine_cpu_ns = 1500000000,
                         .knobs = {.sleep_millisecs = 20}};
    sp_fig_snapshot_set_node(s, &node);
    SpFigVmSrc vm = {.eng = {.merged_pages = 42, .profit_bytes = -4096, .mappings = 3},
                     .info = {.seconds = 2.5, .rounds = 7},
                     .clone_group = 1,
                     .clone_shared_pages = 9};
    uint8_t uuid[16] = {0x12, 0x34, [15] = 0xff};
    sp_fig_snapshot_add_vm(s, weird, uuid, "running", "tenant \"a\"", &vm);
    sp_fig_snapshot_add_vm(s, "off", NULL, "shut off", NULL, NULL);
    SpCloneGroupStats g = {.id = 1, .members = 2, .pages_saved = 256, .file_open = true};
    sp_fig_snapshot_add_group(s, &g);
    return s;
}

static void test_prometheus(void)
{
    g_autoptr(SpFigSnapshot) s = weird_snapshot();
    g_autoptr(GBytes) b = sp_prom_render(s);
    g_autofree char *text = g_strndup(g_bytes_get_data(b, NULL), g_bytes_get_size(b));
    g_assert_nonnull(strstr(text, "\nsamepage_pages_sharing 1234\n"));
    g_assert_nonnull(strstr(text, "\nsamepage_general_profit_bytes -5\n"));
    g_assert_nonnull(strstr(text, "\nsamepage_engine_cpu_seconds_total 1.5\n"));
    g_assert_nonnull(strstr(text, "\nsamepage_knob_sleep_seconds 0.02\n"));
    g_assert_nonnull(strstr(text, "# TYPE samepage_full_scans_total counter\n"));
    g_assert_nonnull(strstr(
        text, "\nsamepage_vm_merged_pages{domain=\"we\\\"b\\\\1\\nx\",uuid=\"12340000-0000-0000-"
              "0000-0000000000ff\"} 42\n"));
    g_assert_nonnull(strstr(text, "sharing_domain=\"tenant \\\"a\\\"\",state=\"running\"} 1\n"));
    g_assert_nonnull(strstr(text, "samepage_vm_info{domain=\"off\",sharing_domain=\"\",state="
                                  "\"shut off\"} 1\n"));
    g_assert_null(strstr(text, "samepage_vm_merged_pages{domain=\"off\"")); /* no figures */
    g_assert_nonnull(strstr(text, "\nsamepage_clone_group_pages_saved{group=\"1\",parent=\"0\"} "
                                  "256\n"));
    g_assert_nonnull(
        strstr(text, "\nsamepage_clone_group_file_open{group=\"1\",parent=\"0\"} 1\n"));
    /* every line a comment or a sample; no raw line feed inside a sample */
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l && **l; l++)
        g_assert_true(g_str_has_prefix(*l, "# ") || g_str_has_prefix(*l, "samepage_"));
}

static void test_json(void)
{
    g_autoptr(SpFigSnapshot) s = weird_snapshot();
    g_autoptr(GString) out = g_string_new(NULL);
    sp_run_status(out, s, true);
    g_auto(GStrv) lines = g_strsplit(out->str, "\n", -1);
    g_assert_cmpuint(g_strv_length(lines), ==, 4); /* vm, engine, group, "" */
    g_autoptr(JsonParser) p = json_parser_new();
    g_assert_true(json_parser_load_from_data(p, lines[0], -1, NULL));
    JsonObject *o = json_node_get_object(json_parser_get_root(p));
    g_assert_cmpstr(json_object_get_string_member(o, "vm"), ==, weird);
    g_assert_cmpint(json_object_get_int_member(o, "merged_pages"), ==, 42);
    g_assert_cmpint(json_object_get_int_member(o, "profit_bytes"), ==, -4096);
    g_assert_cmpfloat(json_object_get_double_member(o, "seconds"), ==, 2.5);
    g_assert_true(json_object_has_member(o, "clone_shared_pages"));
    g_assert_true(json_parser_load_from_data(p, lines[2], -1, NULL));
    o = json_object_get_object_member(json_node_get_object(json_parser_get_root(p)), "clone_group");
    g_assert_true(json_object_get_boolean_member(o, "file_open"));
    g_assert_cmpint(json_object_get_int_member(o, "pages_saved"), ==, 256);
}

static void test_status_text(void)
{
    g_autoptr(SpFigSnapshot) s = weird_snapshot();
    g_autoptr(GString) out = g_string_new(NULL);
    sp_run_status(out, s, false);
    g_assert_true(g_str_has_prefix(out->str, "[status] "));
    g_assert_nonnull(strstr(out->str,
                            " round 7 verified 0 rewritten 0 integrity-errors 0 | merged "
                            "42 zero 0 private 0 mappings 3 map-skipped 0 | clone-shared 9 "
                            "group 1 gen "
                            "0\n"));
    g_assert_nonnull(strstr(out->str, "\n[engine] shared 0 sharing 1234 "));
    g_assert_nonnull(strstr(out->str, " full_scans 0 saved 0.0 MiB profit -0.0 MiB merges 0"));
    g_assert_nonnull(strstr(out->str, "\n[group 1] parent 0 members 2 pages 0 mappings 0 shared 0 "
                                      "saved 256 (1.0 MiB)\n"));
    g_assert_null(strstr(out->str, "[status] off")); /* no figures, no line */
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/metrics/names", test_names);
    g_test_add_func("/metrics/prometheus", test_prometheus);
    g_test_add_func("/metrics/json", test_json);
    g_test_add_func("/metrics/status-text", test_status_text);
    return g_test_run();
}
