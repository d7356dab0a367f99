/* SPDX-License-Identifier: MIT */
/* test-vm-config.c - sizes, integers and VM specs as the command line gives them. */
#include <string.h>

#include "vmm/vm-config.h"

static void test_size_good(void)
{
    struct {
        const char *s;
        uint64_t v;
    } cases[] = {
        {"4096", 4096},     {"64K", 64 << 10},  {"256M", 256ULL << 20},   {"256m", 256ULL << 20},
        {"4G", 4ULL << 30}, {"1T", 1ULL << 40}, {"512MiB", 512ULL << 20}, {"2GB", 2ULL << 30},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) err = NULL;
        uint64_t v = 0;
        g_assert_true(sp_parse_size(cases[i].s, &v, &err));
        g_assert_no_error(err);
        g_assert_cmpuint(v, ==, cases[i].v);
    }
}

static void test_size_bad(void)
{
    const char *bad[] = {
        "",    "0",   "-1", "12Q", "M", "1.5G", "99999999999999999999", "17179869184T",
        "4G4", " 4G", "4 G"};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;
        uint64_t v = 77;
        g_assert_false(sp_parse_size(bad[i], &v, &err));
        g_assert_nonnull(err);
        g_assert_null(strchr(err->message, '\n')); /* one line */
        g_assert_cmpuint(v, ==, 77);               /* untouched */
    }
}

static void test_uint(void)
{
    g_autoptr(GError) err = NULL;
    uint64_t v = 0;
    g_assert_true(sp_parse_uint("12", 1, 64, &v, &err));
    g_assert_cmpuint(v, ==, 12);
    g_assert_false(sp_parse_uint("0", 1, 64, &v, &err));
    g_clear_error(&err);
    g_assert_false(sp_parse_uint("65", 1, 64, &v, &err));
    g_clear_error(&err);
    g_assert_false(sp_parse_uint("-3", 0, 64, &v, &err));
    g_clear_error(&err);
    g_assert_false(sp_parse_uint("3x", 0, 64, &v, &err));
}

static void test_spec_full(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(SpVmConfig) c =
        sp_vm_config_parse("name=vm-1,mem=512M,vcpus=3,payload=/bin/x,domain=blue,share=no,"
                           "image=/a:/b,args=seed=7,rate=100,x=y",
                           &err);
    g_assert_no_error(err);
    g_assert_cmpstr(c->name, ==, "vm-1");
    g_assert_cmpuint(c->mem_size, ==, 512ULL << 20);
    g_assert_cmpuint(c->vcpus, ==, 3);
    g_assert_cmpstr(c->payload, ==, "/bin/x");
    g_assert_cmpstr(c->domain, ==, "blue");
    g_assert_true(c->no_share);
    g_assert_cmpuint(g_strv_length(c->images), ==, 2);
    g_assert_cmpstr(c->images[1], ==, "/b");
    /* args= takes the rest verbatim, commas included */
    g_assert_cmpstr(c->args, ==, "seed=7,rate=100,x=y");
    g_assert_true(sp_vm_config_validate(c, 8, &err));
}

static void test_spec_bad(void)
{
    const char *bad[] = {
        "name=a,mem=0,payload=/x",
        "name=a,mem=lots,payload=/x",
        "name=a,vcpus=0,payload=/x",
        "name=a,bogus=1,payload=/x",
        "name=a,payload",
        "name=a b,payload=/x",
        "name=,payload=/x",
        "name=a,share=maybe,payload=/x",
        "name=a,payload=no-such-payload",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;
        g_autoptr(SpVmConfig) c = sp_vm_config_parse(bad[i], &err);
        g_assert_null(c);
        g_assert_nonnull(err);
        g_assert_null(strchr(err->message, '\n'));
    }
}

static void test_validate(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(SpVmConfig) c = sp_vm_config_parse("name=a,vcpus=9,payload=/x", &err);
    g_assert_no_error(err);
    g_assert_false(sp_vm_config_validate(c, 8, &err)); /* too many vCPUs */
    g_assert_nonnull(strstr(err->message, "vcpus"));
    g_clear_error(&err);
    c->vcpus = 2;
    c->mem_size = 1 << 20; /* below the minimum */
    g_assert_false(sp_vm_config_validate(c, 8, &err));
    g_clear_error(&err);
    c->mem_size = 64 << 20;
    g_free(c->kernel);
    c->kernel = g_strdup("/k"); /* payload and kernel both */
    g_assert_false(sp_vm_config_validate(c, 8, &err));
    g_clear_error(&err);
    g_clear_pointer(&c->kernel, g_free);
    g_clear_pointer(&c->name, g_free); /* no name */
    g_assert_false(sp_vm_config_validate(c, 8, &err));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vm-config/size/good", test_size_good);
    g_test_add_func("/vm-config/size/bad", test_size_bad);
    g_test_add_func("/vm-config/uint", test_uint);
    g_test_add_func("/vm-config/spec/full", test_spec_full);
    g_test_add_func("/vm-config/spec/bad", test_spec_bad);
    g_test_add_func("/vm-config/validate", test_validate);
    return g_test_run();
}
