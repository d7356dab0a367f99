/* SPDX-License-Identifier: MIT */
/*
 * test-memload-args.c - memload's argument parser, on the host.
 *
 * Defaults, every key, number syntax and bounds, and that every bad input
 * is refused with a message naming the offending item (the payload prints it
 * and exits with status 2).
 */
#include <glib.h>
#include <string.h>

#include "guest-tools/memload-args.h"

static bool parse(const char *s, MemloadArgs *a, char *err, size_t errlen)
{
    memload_args_defaults(a);
    return memload_args_parse(a, s, err, errlen);
}

static void test_defaults(void)
{
    MemloadArgs a;
    char err[256];
    g_assert_true(parse("", &a, err, sizeof(err)));
    g_assert_cmpuint(a.seed, ==, 1);
    g_assert_cmpuint(a.pct_shared, ==, 40);
    g_assert_cmpuint(a.pct_zero, ==, 10);
    g_assert_cmpuint(a.pct_image, ==, 10);
    g_assert_cmpuint(a.pages, ==, 0);
    g_assert_cmpuint(a.rate, ==, 0);
    g_assert_cmpuint(a.dup, ==, 50);
    g_assert_cmpuint(a.pool, ==, 1024);
    g_assert_cmpuint(a.rounds, ==, 0);
    g_assert_cmpuint(a.interval_ms, ==, 1000);
    g_assert_cmpint(a.fill, ==, -1);
    g_assert_false(a.mix_given);
    g_assert_true(parse(NULL, &a, err, sizeof(err)));
    g_assert_true(parse(",,", &a, err, sizeof(err)));
}

static void test_all_keys(void)
{
    MemloadArgs a;
    char err[256];
    g_assert_true(parse("seed=0x1F,shared=30,unique=20,zero=5,image=15,pages=1000,rate=250,"
                        "dup=75,pool=65536,rounds=3,interval=0,",
                        &a, err, sizeof(err)));
    g_assert_cmpstr(err, ==, "");
    g_assert_cmpuint(a.seed, ==, 31);
    g_assert_cmpuint(a.pct_shared, ==, 30);
    g_assert_cmpuint(a.pct_unique, ==, 20);
    g_assert_cmpuint(a.pct_zero, ==, 5);
    g_assert_cmpuint(a.pct_image, ==, 15);
    g_assert_cmpuint(a.pages, ==, 1000);
    g_assert_cmpuint(a.rate, ==, 250);
    g_assert_cmpuint(a.dup, ==, 75);
    g_assert_cmpuint(a.pool, ==, 65536);
    g_assert_cmpuint(a.rounds, ==, 3);
    g_assert_cmpuint(a.interval_ms, ==, 0);
    g_assert_true(a.mix_given);
    g_assert_true(parse("seed=18446744073709551615", &a, err, sizeof(err)));
    g_assert_cmpuint(a.seed, ==, G_MAXUINT64);
}

static void test_partial_mix(void)
{
    MemloadArgs a;
    char err[256];
    /* Naming one class zeroes the defaults of the others: shared=90 is valid. */
    g_assert_true(parse("shared=90", &a, err, sizeof(err)));
    g_assert_cmpuint(a.pct_shared, ==, 90);
    g_assert_cmpuint(a.pct_zero, ==, 0);
    g_assert_cmpuint(a.pct_image, ==, 0);
    g_assert_true(parse("shared=25,shared=100", &a, err, sizeof(err)));
    g_assert_cmpuint(a.pct_shared, ==, 100);
}

static void test_fill(void)
{
    MemloadArgs a;
    char err[256];
    g_assert_true(parse("fill=c", &a, err, sizeof(err)));
    g_assert_cmpint(a.fill, ==, 'c');
    g_assert_true(parse("fill=0", &a, err, sizeof(err)));
    g_assert_cmpint(a.fill, ==, 0);
    g_assert_true(parse("fill=7", &a, err, sizeof(err)));
    g_assert_cmpint(a.fill, ==, 7);
    g_assert_true(parse("fill=0xff", &a, err, sizeof(err)));
    g_assert_cmpint(a.fill, ==, 255);
    g_assert_true(parse("fill=255,rate=10", &a, err, sizeof(err)));
    g_assert_cmpint(a.fill, ==, 255);
}

static void test_bad(void)
{
    static const struct {
        const char *args;
        const char *in_message;
    } cases[] = {
        {"seed=abc", "'seed=abc'"},
        {"seed=", "'seed='"},
        {"seed=-1", "'seed=-1'"},
        {"seed=18446744073709551616", "'seed=18446744073709551616'"},
        {"seed=0x", "'seed=0x'"},
        {"shared=101", "'shared=101'"},
        {"zero=5x", "'zero=5x'"},
        {"shared=60,zero=30,image=20", "must not exceed 100"},
        {"unique=50,shared=51", "must not exceed 100"},
        {"rate=100000001", "'rate=100000001'"},
        {"dup=101", "'dup=101'"},
        {"pool=0", "'pool=0'"},
        {"pool=65537", "'pool=65537'"},
        {"interval=3600001", "'interval=3600001'"},
        {"pages=1099511627777", "'pages=1099511627777'"},
        {"fill=256", "'fill=256'"},
        {"fill=ab", "'fill=ab'"},
        {"fill=", "'fill='"},
        {"fill=c,shared=10", "fill= replaces the content mix"},
        {"bogus=1", "unknown key"},
        {"seed", "expected key=value"},
        {"rounds=3,interval", "'interval'"},
        {"=5", "unknown key"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        MemloadArgs a;
        char err[256];
        g_test_message("args: %s", cases[i].args);
        g_assert_false(parse(cases[i].args, &a, err, sizeof(err)));
        g_assert_true(g_str_has_prefix(err, "memload: bad argument"));
        g_assert_nonnull(strstr(err, cases[i].in_message));
        g_assert_null(strchr(err, '\n'));
    }
}

static void test_message_truncation(void)
{
    MemloadArgs a;
    char err[16];
    g_autofree char *longkey = g_strnfill(3000, 'k');
    g_assert_false(parse(longkey, &a, err, sizeof(err)));
    g_assert_cmpuint(strlen(err), ==, sizeof(err) - 1);
    char big[300];
    g_autofree char *longval = g_strconcat("seed=", longkey, NULL);
    g_assert_false(parse(longval, &a, big, sizeof(big)));
    g_assert_cmpuint(strlen(big), <, sizeof(big));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/memload/args/defaults", test_defaults);
    g_test_add_func("/memload/args/all-keys", test_all_keys);
    g_test_add_func("/memload/args/partial-mix", test_partial_mix);
    g_test_add_func("/memload/args/fill", test_fill);
    g_test_add_func("/memload/args/bad", test_bad);
    g_test_add_func("/memload/args/message-truncation", test_message_truncation);
    return g_test_run();
}
