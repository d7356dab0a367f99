/* SPDX-License-Identifier: MIT */
/*
 * cmd-numatune.c - `samepage numatune NAME [--mode MODE] [--nodeset NODES]
 * [--live|--config]`: a VM's NUMA memory policy, as virsh numatune shows
 * and sets it (DOMAIN_GET/SET_NUMA_PARAMETERS), plus where its memory is
 * now (the domstats keys samepage.numa.node<N>.pages, read by the VM
 * process from the kernel).  Setting it on a running VM moves its memory
 * and returns when the move is done (docs/numa.md).
 */
#include <stdio.h>
#include <string.h>

#include "vmm/cli/cmd-client.h"
#include "vmm/cli/cmd.h"
#include "vmm/libvirt/protocol.h"
#include "vmm/libvirt/xdr.h"

static const char *const mode_names[] = {"strict", "preferred", "interleave", "restrictive"};

static bool get_params(SpLvClient *c, const SpLvClientDom *d, guint32 flags, SpLvParams *out,
                       GError **error)
{
    gint32 n = 0;
    for (int step = 0; step < 2; step++) { /* the count, then the values (as virsh) */
        g_autoptr(GByteArray) args = g_byte_array_new();
        g_autoptr(GByteArray) reply = NULL;
        sp_lv_client_write_dom(args, d);
        sp_xdr_write_i32(args, n);
        sp_xdr_write_u32(args, flags | SP_LV_TYPED_PARAM_STRING_OKAY);
        if (!sp_lv_client_call(c, SP_LV_PROC_DOMAIN_GET_NUMA_PARAMETERS, args, &reply, error))
            return false;
        SpXdrReader r;
        sp_xdr_reader_init(&r, reply->data, reply->len);
        g_autoptr(SpLvParams) p = sp_lv_params_new();
        if (!sp_lv_params_decode(&r, p, SP_LV_DOMAIN_NUMA_PARAMETERS_MAX, error) ||
            !sp_xdr_read_i32(&r, &n, error))
            return false;
        if (step == 1)
            for (guint i = 0; i < sp_lv_params_len(p); i++) {
                const SpLvParam *prm = sp_lv_params_get(p, i);
                if (prm->type == SP_LV_PARAM_INT)
                    sp_lv_params_add_int(out, prm->field, prm->v.i, NULL);
                else if (prm->type == SP_LV_PARAM_STRING)
                    sp_lv_params_add_string(out, prm->field, prm->v.s, NULL);
            }
    }
    return true;
}

static bool set_params(SpLvClient *c, const SpLvClientDom *d, guint32 flags, const char *mode,
                       const char *nodeset, GError **error)
{
    g_autoptr(SpLvParams) p = sp_lv_params_new();
    if (mode) {
        gint32 m = -1;
        for (guint i = 0; i < G_N_ELEMENTS(mode_names); i++)
            if (!strcmp(mode, mode_names[i]))
                m = (gint32)i;
        if (m < 0) {
            g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG,
                        "unknown NUMA mode '%s' (known: strict, preferred, interleave)", mode);
            return false;
        }
        sp_lv_params_add_int(p, "numa_mode", m, NULL);
    }
    if (nodeset)
        sp_lv_params_add_string(p, "numa_nodeset", nodeset, NULL);
    g_autoptr(GByteArray) args = g_byte_array_new();
    g_autoptr(GByteArray) reply = NULL;
    sp_lv_client_write_dom(args, d);
    sp_lv_params_encode(args, p);
    sp_xdr_write_u32(args, flags);
    return sp_lv_client_call(c, SP_LV_PROC_DOMAIN_SET_NUMA_PARAMETERS, args, &reply, error);
}

/* The VM's samepage.numa.node<N>.pages, or NULL (not running); and its
 * samepage.numa.pages_migrated in *migrated. */
static SpLvParams *numa_pages(SpLvClient *c, SpLvClientDom *d, guint64 *migrated)
{
    g_autoptr(GPtrArray) doms = g_ptr_array_new();
    g_ptr_array_add(doms, d);
    g_autoptr(GPtrArray) st =
        sp_lv_client_get_all_domain_stats(c, doms, SP_LV_STATS_BALLOON, 0, NULL);
    if (!st || st->len != 1)
        return NULL;
    SpLvClientDomStats *s = st->pdata[0];
    SpLvParams *out = sp_lv_params_new();
    for (guint i = 0; i < sp_lv_params_len(s->params); i++) {
        const SpLvParam *prm = sp_lv_params_get(s->params, i);
        if (g_str_has_prefix(prm->field, "samepage.numa.node") && prm->type == SP_LV_PARAM_ULLONG)
            sp_lv_params_add_ullong(out, prm->field, prm->v.ul, NULL);
        else if (!strcmp(prm->field, "samepage.numa.pages_migrated"))
            sp_lv_param_get_u64(prm, migrated);
    }
    return out;
}

int sp_cmd_numatune(int argc, char **argv)
{
    g_auto(SpCliOpts) o = {0};
    g_autofree char *mode = NULL, *nodeset = NULL;
    gboolean live = FALSE, config = FALSE;
    const GOptionEntry extra[] = {
        {"mode", 0, 0, G_OPTION_ARG_STRING, &mode,
         "strict (only NODES), preferred (NODES first) or interleave (page by page over NODES)",
         "MODE"},
        {"nodeset", 0, 0, G_OPTION_ARG_STRING, &nodeset, "host NUMA nodes, e.g. 1 or 0-1", "NODES"},
        {"live", 0, 0, G_OPTION_ARG_NONE, &live, "the running VM (its memory moves)", NULL},
        {"config", 0, 0, G_OPTION_ARG_NONE, &config, "the definition (the next start)", NULL},
        {NULL},
    };
    bool done;
    int rc = sp_cli_parse(
        "numatune", "NAME", "Show or change a VM's NUMA memory policy.",
        "Without --mode or --nodeset: the policy and the VM's resident pages per host\n"
        "node (from the kernel).  With them: the new policy, for the running VM\n"
        "(--live: its private pages move to the new nodes while it runs; pages it\n"
        "shares with other VMs stay where they are) and/or its definition\n"
        "(--config); neither: the running VM if it runs, else the definition.\n"
        "virsh numatune does the same.  docs/numa.md has the details.",
        extra, true, &o, &argc, &argv, &done);
    if (done)
        return rc;
    if (argc != 2)
        return sp_cli_usage_error("numatune",
                                  argc < 2 ? "missing NAME" : "unexpected argument '%s'",
                                  argv[argc < 2 ? 0 : 2]);
    guint32 flags = (live ? SP_LV_AFFECT_LIVE : 0) | (config ? SP_LV_AFFECT_CONFIG : 0);
    g_autoptr(GError) error = NULL;
    g_autoptr(SpLvClient) c = sp_cli_connect(&o);
    g_auto(SpLvClientDom) d = {0};
    if (!c || !sp_cli_lookup(c, argv[1], &d))
        return SP_CLI_FAIL;
    if (mode || nodeset) {
        sp_lv_client_set_timeout(c, 3600 * 1000); /* a move takes as long as it takes */
        gint64 t0 = g_get_monotonic_time();
        if (!set_params(c, &d, flags, mode, nodeset, &error))
            return sp_cli_fail(error);
        if (!o.json)
            printf("Domain '%s': NUMA policy set (%.2f s)\n", d.name,
                   (g_get_monotonic_time() - t0) / 1e6);
    }
    g_autoptr(SpLvParams) p = sp_lv_params_new();
    if (!get_params(c, &d, flags & SP_LV_AFFECT_CONFIG, p, &error))
        return sp_cli_fail(error);
    guint64 migrated = 0;
    g_autoptr(SpLvParams) pages =
        (flags & SP_LV_AFFECT_CONFIG) ? NULL : numa_pages(c, &d, &migrated);
    const SpLvParam *m = sp_lv_params_find(p, "numa_mode");
    const SpLvParam *ns = sp_lv_params_find(p, "numa_nodeset");
    const char *mname =
        m && m->v.i >= 0 && m->v.i < (gint32)G_N_ELEMENTS(mode_names) ? mode_names[m->v.i] : "?";
    const char *nodes = ns ? ns->v.s : "";
    if (o.json) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, d.name);
        json_builder_set_member_name(b, "numa_mode");
        json_builder_add_string_value(b, *nodes ? mname : "default");
        json_builder_set_member_name(b, "numa_nodeset");
        json_builder_add_string_value(b, nodes);
        json_builder_set_member_name(b, "numa_pages");
        json_builder_begin_array(b);
        for (guint i = 0; pages && i < sp_lv_params_len(pages); i++)
            json_builder_add_int_value(b, (gint64)sp_lv_params_get(pages, i)->v.ul);
        json_builder_end_array(b);
        json_builder_set_member_name(b, "pages_migrated");
        json_builder_add_int_value(b, (gint64)migrated);
        json_builder_end_object(b);
        g_autoptr(JsonGenerator) g = json_generator_new();
        g_autoptr(JsonNode) root = json_builder_get_root(b);
        json_generator_set_root(g, root);
        g_autofree char *text = json_generator_to_data(g, NULL);
        printf("%s\n", text);
        return SP_CLI_OK;
    }
    printf("%-14s: %s\n", "numa_mode", *nodes ? mname : "default (no policy)");
    printf("%-14s: %s\n", "numa_nodeset", nodes);
    for (guint i = 0; pages && i < sp_lv_params_len(pages); i++) {
        const SpLvParam *prm = sp_lv_params_get(pages, i);
        printf("%-14s: %" G_GUINT64_FORMAT " resident pages (%.1f MiB)\n",
               prm->field + strlen("samepage.numa."), prm->v.ul, prm->v.ul * 4096.0 / 1048576);
    }
    if (pages)
        printf("%-14s: %" G_GUINT64_FORMAT " pages moved by NUMA changes since it started\n",
               "pages_migrated", migrated);
    return SP_CLI_OK;
}
