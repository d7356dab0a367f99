/* SPDX-License-Identifier: MIT */
/* vm-config.c - VM specs from the command line, sizes and payload lookup. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "vmm/vm-config.h"
#include "vmm/vm-error.h"

/* A spec or value on the command line that does not parse. */
#define CFG_ERROR(error, ...)                                                                      \
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, __VA_ARGS__)
/* A parsed configuration that no VM can have (from a spec or domain XML). */
#define CFG_INVALID(error, ...) g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_INVALID, __VA_ARGS__)

SpVmConfig *sp_vm_config_new(void)
{
    SpVmConfig *cfg = g_new0(SpVmConfig, 1);
    cfg->mem_size = 256ULL << 20;
    cfg->vcpus = 1;
    return cfg;
}

void sp_vm_config_free(SpVmConfig *cfg)
{
    if (!cfg)
        return;
    g_free(cfg->name);
    g_free(cfg->payload);
    g_free(cfg->args);
    g_strfreev(cfg->images);
    g_free(cfg->kernel);
    g_free(cfg->initrd);
    g_free(cfg->cmdline);
    g_free(cfg->domain);
    g_free(cfg->numa_nodes);
    g_free(cfg->cpuset);
    g_free(cfg);
}

SpVmConfig *sp_vm_config_copy(const SpVmConfig *c)
{
    SpVmConfig *n = g_new0(SpVmConfig, 1);
    *n = *c;
    n->name = g_strdup(c->name);
    n->payload = g_strdup(c->payload);
    n->args = g_strdup(c->args);
    n->images = g_strdupv(c->images);
    n->kernel = g_strdup(c->kernel);
    n->initrd = g_strdup(c->initrd);
    n->cmdline = g_strdup(c->cmdline);
    n->domain = g_strdup(c->domain);
    n->numa_nodes = g_strdup(c->numa_nodes);
    n->cpuset = g_strdup(c->cpuset);
    return n;
}

bool sp_parse_size_option(const char *opt, const char *text, bool zero_ok, uint64_t *out,
                          GError **error)
{
    if (!text)
        return true;
    if (zero_ok && !strcmp(text, "0")) {
        *out = 0;
        return true;
    }
    if (sp_parse_size(text, out, error))
        return true;
    g_prefix_error(error, "--%s: ", opt);
    return false;
}

bool sp_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, GError **error)
{
    if (!s || !*s || !g_ascii_isdigit(*s)) {
        CFG_ERROR(error, "'%s' is not a non-negative integer", s ? s : "");
        return false;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) {
        CFG_ERROR(error, "'%s' is not a non-negative integer", s);
        return false;
    }
    if (v < min || v > max) {
        CFG_ERROR(error, "%s is out of range (%" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT ")", s,
                  min, max);
        return false;
    }
    *out = v;
    return true;
}

bool sp_parse_size(const char *s, uint64_t *out, GError **error)
{
    if (!s || !g_ascii_isdigit(*s)) {
        CFG_ERROR(error, "'%s' is not a size (examples: 4096, 64K, 256M, 4G)", s ? s : "");
        return false;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) {
        CFG_ERROR(error, "size '%s' is too large", s);
        return false;
    }
    unsigned shift = 0;
    switch (g_ascii_toupper(*end)) {
    case 0:
        break;
    case 'K':
        shift = 10;
        break;
    case 'M':
        shift = 20;
        break;
    case 'G':
        shift = 30;
        break;
    case 'T':
        shift = 40;
        break;
    default:
        CFG_ERROR(error, "'%s' is not a size (unknown unit '%s'; use K, M, G or T)", s, end);
        return false;
    }
    if (*end) {
        end++;
        if (g_ascii_toupper(*end) == 'I' && g_ascii_toupper(end[1]) == 'B')
            end += 2;
        else if (g_ascii_toupper(*end) == 'B')
            end++;
        if (*end) {
            CFG_ERROR(error, "'%s' is not a size (trailing '%s')", s, end);
            return false;
        }
    }
    if (v == 0) {
        CFG_ERROR(error, "size must not be zero");
        return false;
    }
    if (v > (UINT64_MAX >> shift)) {
        CFG_ERROR(error, "size '%s' is too large", s);
        return false;
    }
    *out = (uint64_t)v << shift;
    return true;
}

char *sp_payload_find(const char *name, GError **error)
{
    if (!name || !*name) {
        CFG_ERROR(error, "empty payload name");
        return NULL;
    }
    if (strchr(name, '/'))
        return g_strdup(name);
    g_autofree char *file =
        g_str_has_suffix(name, ".elf") ? g_strdup(name) : g_strconcat(name, ".elf", NULL);
    g_autoptr(GPtrArray) dirs = g_ptr_array_new_with_free_func(g_free);
    const char *env = g_getenv("SAMEPAGE_PAYLOAD_DIR");
    if (env)
        g_ptr_array_add(dirs, g_strdup(env));
    /* In the build tree the binary sits at the top and payloads in guest-tools/. */
    g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
    if (self) {
        g_autofree char *dir = g_path_get_dirname(self);
        g_ptr_array_add(dirs, g_build_filename(dir, "guest-tools", NULL));
        g_ptr_array_add(dirs, g_build_filename(dir, "..", "guest-tools", NULL));
    }
    g_ptr_array_add(dirs, g_build_filename(PKGLIBEXECDIR, "payloads", NULL));
    for (guint i = 0; i < dirs->len; i++) {
        g_autofree char *path = g_build_filename(dirs->pdata[i], file, NULL);
        if (g_file_test(path, G_FILE_TEST_IS_REGULAR))
            return g_steal_pointer(&path);
    }
    CFG_ERROR(error,
              "payload '%s' not found (looked for %s in $SAMEPAGE_PAYLOAD_DIR, the build "
              "tree and %s/payloads)",
              name, file, PKGLIBEXECDIR);
    return NULL;
}

static bool set_string(char **field, const char *key, const char *val, GError **error)
{
    if (!*val) {
        CFG_ERROR(error, "%s= needs a value", key);
        return false;
    }
    g_free(*field);
    *field = g_strdup(val);
    return true;
}

static bool parse_bool(const char *key, const char *val, bool *out, GError **error)
{
    if (!g_strcmp0(val, "1") || !g_ascii_strcasecmp(val, "yes") || !g_ascii_strcasecmp(val, "on") ||
        !g_ascii_strcasecmp(val, "true")) {
        *out = true;
        return true;
    }
    if (!g_strcmp0(val, "0") || !g_ascii_strcasecmp(val, "no") || !g_ascii_strcasecmp(val, "off") ||
        !g_ascii_strcasecmp(val, "false")) {
        *out = false;
        return true;
    }
    CFG_ERROR(error, "%s=%s: expected yes or no", key, val);
    return false;
}

static bool apply_pair(SpVmConfig *cfg, const char *key, const char *val, GError **error)
{
    g_autoptr(GError) err = NULL;
    uint64_t n = 0;
    if (!strcmp(key, "name")) {
        if (!*val || strlen(val) > SP_VM_NAME_MAX) {
            CFG_ERROR(error, "name must be 1 to %d characters", SP_VM_NAME_MAX);
            return false;
        }
        for (const char *p = val; *p; p++) {
            if (!g_ascii_isalnum(*p) && !strchr("-_.", *p)) {
                CFG_ERROR(error, "name '%s': only letters, digits, '-', '_' and '.' are allowed",
                          val);
                return false;
            }
        }
        return set_string(&cfg->name, key, val, error);
    }
    if (!strcmp(key, "mem")) {
        if (!sp_parse_size(val, &n, &err)) {
            CFG_ERROR(error, "mem=%s: %s", val, err->message);
            return false;
        }
        cfg->mem_size = n;
        return true;
    }
    if (!strcmp(key, "mem-limit")) {
        if (!sp_parse_size(val, &n, &err)) {
            CFG_ERROR(error, "mem-limit=%s: %s", val, err->message);
            return false;
        }
        cfg->mem_limit = n;
        return true;
    }
    if (!strcmp(key, "numa"))
        return sp_numa_spec_parse(val, &cfg->numa_mode, &cfg->numa_nodes, error);
    if (!strcmp(key, "cpuset")) {
        cpu_set_t set;
        if (!sp_cpuset_parse(val, &set, &err)) {
            CFG_ERROR(error, "cpuset=%s: %s", val, err->message);
            return false;
        }
        return set_string(&cfg->cpuset, key, val, error);
    }
    if (!strcmp(key, "vcpus")) {
        if (!sp_parse_uint(val, 1, 4096, &n, &err)) {
            CFG_ERROR(error, "vcpus=%s: %s", val, err->message);
            return false;
        }
        cfg->vcpus = (uint32_t)n;
        return true;
    }
    if (!strcmp(key, "payload")) {
        g_autofree char *path = sp_payload_find(val, error);
        if (!path)
            return false;
        g_free(cfg->payload);
        cfg->payload = g_steal_pointer(&path);
        return true;
    }
    if (!strcmp(key, "image")) {
        if (!*val) {
            CFG_ERROR(error, "image= needs one or more file paths separated by ':'");
            return false;
        }
        g_auto(GStrv) parts = g_strsplit(val, ":", -1);
        g_autoptr(GStrvBuilder) b = g_strv_builder_new();
        if (cfg->images)
            g_strv_builder_addv(b, (const char **)cfg->images);
        g_strv_builder_addv(b, (const char **)parts);
        g_strfreev(cfg->images);
        cfg->images = g_strv_builder_end(b);
        return true;
    }
    if (!strcmp(key, "kernel"))
        return set_string(&cfg->kernel, key, val, error);
    if (!strcmp(key, "initrd"))
        return set_string(&cfg->initrd, key, val, error);
    if (!strcmp(key, "cmdline")) {
        g_free(cfg->cmdline);
        cfg->cmdline = g_strdup(val);
        return true;
    }
    if (!strcmp(key, "domain"))
        return set_string(&cfg->domain, key, val, error);
    if (!strcmp(key, "share")) {
        bool share = true;
        if (!parse_bool(key, val, &share, error))
            return false;
        cfg->no_share = !share;
        return true;
    }
    CFG_ERROR(error,
              "unknown VM option '%s' (known: name, mem, mem-limit, vcpus, numa, cpuset, payload, "
              "image, kernel, initrd, cmdline, domain, share, args)",
              key);
    return false;
}

SpVmConfig *sp_vm_config_parse(const char *spec, GError **error)
{
    g_autoptr(SpVmConfig) cfg = sp_vm_config_new();
    const char *p = spec;
    while (p && *p) {
        /* args= and cmdline= swallow the rest of the spec: their values contain commas and
         * spaces of their own. */
        if (g_str_has_prefix(p, "args=")) {
            cfg->args = g_strdup(p + 5);
            break;
        }
        if (g_str_has_prefix(p, "cmdline=")) {
            cfg->cmdline = g_strdup(p + 8);
            break;
        }
        const char *comma = strchr(p, ',');
        g_autofree char *item = comma ? g_strndup(p, comma - p) : g_strdup(p);
        p = comma ? comma + 1 : NULL;
        if (!*item)
            continue;
        char *eq = strchr(item, '=');
        if (!eq) {
            CFG_ERROR(error, "VM option '%s' needs a value (key=value)", item);
            return NULL;
        }
        *eq = 0;
        if (!apply_pair(cfg, item, eq + 1, error))
            return NULL;
    }
    return g_steal_pointer(&cfg);
}

bool sp_vm_config_validate(const SpVmConfig *cfg, int max_vcpus, GError **error)
{
    if (!cfg->name) {
        CFG_INVALID(error, "every VM needs a name= ");
        return false;
    }
    if (!!cfg->payload == !!cfg->kernel) {
        CFG_INVALID(error, "VM '%s': give exactly one of payload= or kernel=", cfg->name);
        return false;
    }
    if (cfg->mem_limit && cfg->mem_limit < SP_VM_MEM_LIMIT_MIN) {
        CFG_INVALID(error,
                    "VM '%s': mem-limit=%" G_GUINT64_FORMAT " KiB is below the %llu MiB a guest "
                    "needs resident to make progress",
                    cfg->name, cfg->mem_limit >> 10, SP_VM_MEM_LIMIT_MIN >> 20);
        return false;
    }
    g_autoptr(GError) nerr = NULL;
    if (cfg->numa_mode != SP_NUMA_DEFAULT && !sp_numa_nodes_check(cfg->numa_nodes, &nerr)) {
        CFG_INVALID(error, "VM '%s': numa=%s:%s: %s", cfg->name, sp_numa_mode_name(cfg->numa_mode),
                    cfg->numa_nodes, nerr->message);
        return false;
    }
    if (cfg->mem_size < SP_VM_MEM_MIN || cfg->mem_size > SP_VM_MEM_MAX || cfg->mem_size % 4096) {
        CFG_INVALID(error, "VM '%s': mem must be a multiple of 4 KiB between %llu MiB and %llu GiB",
                    cfg->name, SP_VM_MEM_MIN >> 20, SP_VM_MEM_MAX >> 30);
        return false;
    }
    if (cfg->vcpus < 1 || (int)cfg->vcpus > max_vcpus) {
        CFG_INVALID(error, "VM '%s': vcpus=%u, this host allows 1 to %d", cfg->name, cfg->vcpus,
                    max_vcpus);
        return false;
    }
    if (cfg->payload && cfg->initrd) {
        CFG_INVALID(error, "VM '%s': initrd= is for kernel= VMs only", cfg->name);
        return false;
    }
    return true;
}

/* --- the config as the supervisor hands it to the VM process --- */

static void text_put(GString *s, const char *key, const char *val)
{
    if (!val)
        return;
    g_autofree char *esc = g_strescape(val, NULL);
    g_string_append_printf(s, "%s=%s\n", key, esc);
}

char *sp_vm_config_to_text(const SpVmConfig *cfg, bool clone_child, bool mergeable)
{
    GString *s = g_string_new(NULL);
    text_put(s, "name", cfg->name);
    g_string_append_printf(s, "mem_size=%" G_GUINT64_FORMAT "\nvcpus=%u\n", cfg->mem_size,
                           cfg->vcpus);
    text_put(s, "payload", cfg->payload);
    text_put(s, "args", cfg->args);
    for (char **i = cfg->images; i && *i; i++)
        text_put(s, "image", *i);
    text_put(s, "kernel", cfg->kernel);
    text_put(s, "initrd", cfg->initrd);
    text_put(s, "cmdline", cfg->cmdline);
    text_put(s, "domain", cfg->domain);
    if (cfg->numa_mode != SP_NUMA_DEFAULT) {
        g_autofree char *numa =
            g_strdup_printf("%s:%s", sp_numa_mode_name(cfg->numa_mode), cfg->numa_nodes);
        text_put(s, "numa", numa);
    }
    g_string_append_printf(s, "no_share=%d\nclone_child=%d\nmergeable=%d\n", cfg->no_share,
                           clone_child, mergeable);
    return g_string_free(s, FALSE);
}

static void replace_str(char **field, const char *val)
{
    g_free(*field);
    *field = g_strdup(val);
}

SpVmConfig *sp_vm_config_from_text(const char *text, bool *clone_child, bool *mergeable,
                                   GError **error)
{
    g_autoptr(SpVmConfig) cfg = sp_vm_config_new();
    g_autoptr(GStrvBuilder) images = g_strv_builder_new();
    g_auto(GStrv) lines = g_strsplit(text, "\n", 256);
    *clone_child = *mergeable = false;
    for (char **l = lines; *l; l++) {
        if (!**l)
            continue;
        char *eq = strchr(*l, '=');
        if (!eq) {
            CFG_INVALID(error, "bad config line");
            return NULL;
        }
        *eq = 0;
        const char *key = *l;
        g_autofree char *val = g_strcompress(eq + 1);
        uint64_t n = 0;
        if (!strcmp(key, "name"))
            replace_str(&cfg->name, val);
        else if (!strcmp(key, "mem_size") && sp_parse_uint(val, 0, UINT64_MAX, &n, NULL))
            cfg->mem_size = n;
        else if (!strcmp(key, "vcpus") && sp_parse_uint(val, 1, 4096, &n, NULL))
            cfg->vcpus = (uint32_t)n;
        else if (!strcmp(key, "payload"))
            replace_str(&cfg->payload, val);
        else if (!strcmp(key, "args"))
            replace_str(&cfg->args, val);
        else if (!strcmp(key, "image"))
            g_strv_builder_add(images, val);
        else if (!strcmp(key, "kernel"))
            replace_str(&cfg->kernel, val);
        else if (!strcmp(key, "initrd"))
            replace_str(&cfg->initrd, val);
        else if (!strcmp(key, "cmdline"))
            replace_str(&cfg->cmdline, val);
        else if (!strcmp(key, "domain"))
            replace_str(&cfg->domain, val);
        else if (!strcmp(key, "numa")) {
            if (!sp_numa_spec_parse(val, &cfg->numa_mode, &cfg->numa_nodes, error))
                return NULL;
        } else if (!strcmp(key, "no_share"))
            cfg->no_share = !strcmp(val, "1");
        else if (!strcmp(key, "clone_child"))
            *clone_child = !strcmp(val, "1");
        else if (!strcmp(key, "mergeable"))
            *mergeable = !strcmp(val, "1");
        else {
            CFG_INVALID(error, "bad config line '%s'", key);
            return NULL;
        }
    }
    g_auto(GStrv) imgs = g_strv_builder_end(images);
    if (imgs[0]) {
        cfg->images = g_steal_pointer(&imgs);
    }
    /* The VM process checks against what KVM allows when it builds the machine. */
    if (!sp_vm_config_validate(cfg, 4096, error))
        return NULL;
    return g_steal_pointer(&cfg);
}
