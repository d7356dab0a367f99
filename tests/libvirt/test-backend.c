/*
 * test-backend.c - in-memory backend for tests (see test-backend.h).
 *
 * Fixed figures the tests check (KiB unless noted):
 *   alpha: uuid 11111111-2222-3333-4444-555555555551, 524288 max / 524288 cur,
 *          2 vCPUs, cpu time 1500000000 ns, running as id 1; disk vda, nic vnet0;
 *          dommemstat rss 123456, actual 524288, usable 400000, available
 *          524288, swap_in 7, swap_out 9; domstats samepage.merged_pages 4242,
 *          samepage.zero_pages 17, samepage.sharing_domain "tenant-a".
 *   beta:  uuid 11111111-2222-3333-4444-555555555552, 262144 / 131072, 1 vCPU,
 *          shut off.
 *   node:  x86_64, 8388608 KiB, 2 CPUs at 2400 MHz, 1 cell; nodememstats
 *          total 8388608, free 4194304, buffers 1024, cached 2048 (cell 0:
 *          total 8388608, free 4194304).
 */
#include "tests/libvirt/test-backend.h"

#include <string.h>

#include "vmm/libvirt/domxml.h"

typedef struct {
    SpDomXml *def;         /* definition */
    gint32 id;             /* -1 when shut off */
    SpLvDomainState state; /* RUNNING or SHUTOFF */
    gint32 reason;         /* state reason */
    bool persistent;       /* defined (not created from XML) */
} TbDomain;

struct SpLvTestBackend {
    GPtrArray *doms;                                            /* of TbDomain * */
    gint32 next_id;                                             /* id of the next started domain */
    guint32 pages_to_scan, sleep_millisecs, merge_across_nodes; /* shm knobs */
};

static void tb_domain_free(gpointer p)
{
    TbDomain *d = p;
    sp_domxml_free(d->def);
    g_free(d);
}

static bool tb_err(GError **error, int code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static bool tb_err(GError **error, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error_literal(error, SP_LV_ERROR, code, msg);
    return false;
}

static TbDomain *tb_find_uuid(SpLvTestBackend *tb, const guint8 uuid[16])
{
    for (guint i = 0; i < tb->doms->len; i++) {
        TbDomain *d = tb->doms->pdata[i];
        if (memcmp(d->def->uuid, uuid, 16) == 0)
            return d;
    }
    return NULL;
}

static TbDomain *tb_find_name(SpLvTestBackend *tb, const char *name)
{
    for (guint i = 0; i < tb->doms->len; i++) {
        TbDomain *d = tb->doms->pdata[i];
        if (strcmp(d->def->name, name) == 0)
            return d;
    }
    return NULL;
}

static TbDomain *tb_get(SpLvTestBackend *tb, const guint8 uuid[16], GError **error)
{
    TbDomain *d = tb_find_uuid(tb, uuid);
    if (!d) {
        char s[37];
        sp_domxml_uuid_format(uuid, s);
        tb_err(error, SP_LV_ERR_NO_DOMAIN, "Domain not found: no domain with matching uuid '%s'",
               s);
    }
    return d;
}

static void tb_info(const TbDomain *d, SpLvDomainInfo *out)
{
    *out = (SpLvDomainInfo){
        .name = g_strdup(d->def->name),
        .id = d->id,
        .state = d->state,
        .reason = d->reason,
        .max_mem_kib = d->def->memory_kib,
        .cur_mem_kib = d->def->current_memory_kib,
        .vcpus = d->def->vcpus,
        .cpu_time_ns = d->id >= 0 ? 1500000000ull : 0,
        .persistent = d->persistent,
        .autostart = false,
    };
    memcpy(out->uuid, d->def->uuid, 16);
}

static bool tb_domain_list(void *opaque, GPtrArray *out, GError **error)
{
    SpLvTestBackend *tb = opaque;
    for (guint i = 0; i < tb->doms->len; i++) {
        SpLvDomainInfo *info = g_new0(SpLvDomainInfo, 1);
        tb_info(tb->doms->pdata[i], info);
        g_ptr_array_add(out, info);
    }
    return true;
}

static bool tb_domain_get(void *opaque, const guint8 uuid[16], SpLvDomainInfo *out, GError **error)
{
    TbDomain *d = tb_get(opaque, uuid, error);
    if (!d)
        return false;
    tb_info(d, out);
    return true;
}

static bool tb_domain_get_xml(void *opaque, const guint8 uuid[16], guint32 flags, char **xml,
                              GError **error)
{
    TbDomain *d = tb_get(opaque, uuid, error);
    if (!d)
        return false;
    *xml = sp_domxml_format(d->def, d->id);
    return true;
}

static SpDomXml *tb_parse(const char *xml, GError **error)
{
    g_autoptr(GError) err = NULL;
    SpDomXml *def = sp_domxml_parse(xml, &err);
    if (!def) {
        tb_err(error, SP_LV_ERR_XML_ERROR, "XML error: %s", err->message);
        return NULL;
    }
    if (!def->has_uuid) {
        g_autofree char *u = g_uuid_string_random();
        sp_domxml_uuid_parse(u, def->uuid);
        def->has_uuid = true;
    }
    return def;
}

static bool tb_define(void *opaque, const char *xml, guint32 flags, SpLvDomainInfo *out,
                      GError **error)
{
    SpLvTestBackend *tb = opaque;
    g_autoptr(SpDomXml) def = tb_parse(xml, error);
    if (!def)
        return false;
    TbDomain *by_name = tb_find_name(tb, def->name);
    TbDomain *by_uuid = tb_find_uuid(tb, def->uuid);
    if (by_name && memcmp(by_name->def->uuid, def->uuid, 16) != 0) {
        /* a definition without <uuid> updates the existing one */
        if (!strstr(xml, "<uuid"))
            memcpy(def->uuid, by_name->def->uuid, 16);
        else
            return tb_err(error, SP_LV_ERR_DOM_EXIST,
                          "operation failed: domain '%s' already exists with another uuid",
                          def->name);
        by_uuid = by_name;
    }
    if (by_uuid && strcmp(by_uuid->def->name, def->name) != 0)
        return tb_err(error, SP_LV_ERR_DOM_EXIST,
                      "operation failed: domain '%s' already exists with this uuid",
                      by_uuid->def->name);
    TbDomain *d = by_uuid;
    if (d) {
        sp_domxml_free(d->def);
    } else {
        d = g_new0(TbDomain, 1);
        d->id = -1;
        d->state = SP_LV_DOMAIN_SHUTOFF;
        g_ptr_array_add(tb->doms, d);
    }
    d->def = g_steal_pointer(&def);
    d->persistent = true;
    tb_info(d, out);
    return true;
}

static bool tb_undefine(void *opaque, const guint8 uuid[16], guint32 flags, GError **error)
{
    SpLvTestBackend *tb = opaque;
    TbDomain *d = tb_get(tb, uuid, error);
    if (!d)
        return false;
    if (!d->persistent)
        return tb_err(error, SP_LV_ERR_OPERATION_INVALID,
                      "Requested operation is not valid: cannot undefine transient domain");
    if (d->id >= 0)
        d->persistent = false; /* lives on until destroyed, like libvirt */
    else
        g_ptr_array_remove(tb->doms, d);
    return true;
}

static bool tb_create_xml(void *opaque, const char *xml, guint32 flags, SpLvDomainInfo *out,
                          GError **error)
{
    SpLvTestBackend *tb = opaque;
    g_autoptr(SpDomXml) def = tb_parse(xml, error);
    if (!def)
        return false;
    if (tb_find_name(tb, def->name) || tb_find_uuid(tb, def->uuid))
        return tb_err(error, SP_LV_ERR_DOM_EXIST, "operation failed: domain '%s' already exists",
                      def->name);
    TbDomain *d = g_new0(TbDomain, 1);
    d->def = g_steal_pointer(&def);
    d->id = tb->next_id++;
    d->state = SP_LV_DOMAIN_RUNNING;
    d->reason = 1; /* VIR_DOMAIN_RUNNING_BOOTED */
    g_ptr_array_add(tb->doms, d);
    tb_info(d, out);
    return true;
}

static bool tb_start(void *opaque, const guint8 uuid[16], guint32 flags, GError **error)
{
    SpLvTestBackend *tb = opaque;
    TbDomain *d = tb_get(tb, uuid, error);
    if (!d)
        return false;
    if (d->id >= 0)
        return tb_err(error, SP_LV_ERR_OPERATION_INVALID,
                      "Requested operation is not valid: domain is already running");
    d->id = tb->next_id++;
    d->state = SP_LV_DOMAIN_RUNNING;
    d->reason = 1;
    return true;
}

static bool tb_destroy(void *opaque, const guint8 uuid[16], guint32 flags, GError **error)
{
    SpLvTestBackend *tb = opaque;
    TbDomain *d = tb_get(tb, uuid, error);
    if (!d)
        return false;
    if (d->id < 0)
        return tb_err(error, SP_LV_ERR_OPERATION_INVALID,
                      "Requested operation is not valid: domain is not running");
    if (!d->persistent) {
        g_ptr_array_remove(tb->doms, d);
        return true;
    }
    d->id = -1;
    d->state = SP_LV_DOMAIN_SHUTOFF;
    d->reason = 2; /* VIR_DOMAIN_SHUTOFF_DESTROYED */
    return true;
}

static TbDomain *tb_running(SpLvTestBackend *tb, const guint8 uuid[16], GError **error)
{
    TbDomain *d = tb_get(tb, uuid, error);
    if (d && d->id < 0) {
        tb_err(error, SP_LV_ERR_OPERATION_INVALID,
               "Requested operation is not valid: domain is not running");
        return NULL;
    }
    return d;
}

static bool tb_memory_stats(void *opaque, const guint8 uuid[16], GArray *out, GError **error)
{
    TbDomain *d = tb_running(opaque, uuid, error);
    if (!d)
        return false;
    SpLvMemStat st[] = {
        {SP_LV_MEMSTAT_SWAP_IN, 7},
        {SP_LV_MEMSTAT_SWAP_OUT, 9},
        {SP_LV_MEMSTAT_ACTUAL_BALLOON, d->def->current_memory_kib},
        {SP_LV_MEMSTAT_AVAILABLE, d->def->memory_kib},
        {SP_LV_MEMSTAT_USABLE, 400000},
        {SP_LV_MEMSTAT_RSS, 123456},
    };
    g_array_append_vals(out, st, G_N_ELEMENTS(st));
    return true;
}

static bool tb_domain_stats(void *opaque, const guint8 uuid[16], guint32 groups, SpLvParams *out,
                            GError **error)
{
    TbDomain *d = tb_get(opaque, uuid, error);
    if (!d)
        return false;
    bool ok = true;
    if (groups & SP_LV_STATS_BALLOON && d->id >= 0)
        ok = ok && sp_lv_params_add_ullong(out, "balloon.rss", 123456, error);
    if (groups & SP_LV_STATS_BLOCK) {
        ok = ok && sp_lv_params_add_uint(out, "block.count", d->def->disks->len, error);
        for (guint i = 0; ok && i < d->def->disks->len; i++) {
            g_autofree char *k = g_strdup_printf("block.%u.name", i);
            ok = sp_lv_params_add_string(
                out, k, ((SpDomXmlDevice *)d->def->disks->pdata[i])->target, error);
        }
    }
    if (groups & SP_LV_STATS_INTERFACE) {
        ok = ok && sp_lv_params_add_uint(out, "net.count", d->def->interfaces->len, error);
        for (guint i = 0; ok && i < d->def->interfaces->len; i++) {
            g_autofree char *k = g_strdup_printf("net.%u.name", i);
            ok = sp_lv_params_add_string(
                out, k, ((SpDomXmlDevice *)d->def->interfaces->pdata[i])->target, error);
        }
    }
    if (groups & SP_LV_STATS_MEMORY) {
        ok = ok &&
             sp_lv_params_add_ullong(out, "samepage.merged_pages", d->id >= 0 ? 4242 : 0, error);
        ok = ok && sp_lv_params_add_ullong(out, "samepage.zero_pages", d->id >= 0 ? 17 : 0, error);
        ok = ok &&
             sp_lv_params_add_string(out, "samepage.sharing_domain",
                                     d->def->sp_domain ? d->def->sp_domain : d->def->name, error);
    }
    return ok;
}

static bool tb_device_find(GPtrArray *devs, const char *name)
{
    for (guint i = 0; i < devs->len; i++) {
        SpDomXmlDevice *v = devs->pdata[i];
        if (g_strcmp0(v->target, name) == 0 || g_strcmp0(v->source, name) == 0)
            return true;
    }
    return false;
}

static bool tb_block_stats(void *opaque, const guint8 uuid[16], const char *path,
                           SpLvBlockStats *out, GError **error)
{
    TbDomain *d = tb_running(opaque, uuid, error);
    if (!d)
        return false;
    if (!tb_device_find(d->def->disks, path))
        return tb_err(error, SP_LV_ERR_INVALID_ARG, "invalid argument: invalid path: %s", path);
    *out = (SpLvBlockStats){
        .rd_req = 10, .rd_bytes = 40960, .wr_req = 5, .wr_bytes = 20480, .errs = 0};
    return true;
}

static bool tb_interface_stats(void *opaque, const guint8 uuid[16], const char *dev,
                               SpLvInterfaceStats *out, GError **error)
{
    TbDomain *d = tb_running(opaque, uuid, error);
    if (!d)
        return false;
    if (!tb_device_find(d->def->interfaces, dev))
        return tb_err(error, SP_LV_ERR_INVALID_ARG, "invalid argument: invalid interface: %s", dev);
    *out = (SpLvInterfaceStats){1000, 10, 0, 0, 2000, 20, 0, 0};
    return true;
}

static bool tb_node_get_info(void *opaque, SpLvNodeInfo *out, GError **error)
{
    *out = (SpLvNodeInfo){.memory_kib = 8388608,
                          .cpus = 2,
                          .mhz = 2400,
                          .nodes = 1,
                          .sockets = 1,
                          .cores = 2,
                          .threads = 1};
    g_strlcpy(out->model, "x86_64", sizeof(out->model));
    return true;
}

static bool tb_params_get(void *opaque, SpLvParams *out, GError **error)
{
    SpLvTestBackend *tb = opaque;
    return sp_lv_params_add_uint(out, "shm_pages_to_scan", tb->pages_to_scan, error) &&
           sp_lv_params_add_uint(out, "shm_sleep_millisecs", tb->sleep_millisecs, error) &&
           sp_lv_params_add_ullong(out, "shm_pages_shared", 300, error) &&
           sp_lv_params_add_ullong(out, "shm_pages_sharing", 1200, error) &&
           sp_lv_params_add_ullong(out, "shm_pages_unshared", 5000, error) &&
           sp_lv_params_add_ullong(out, "shm_pages_volatile", 40, error) &&
           sp_lv_params_add_ullong(out, "shm_full_scans", 12, error) &&
           sp_lv_params_add_uint(out, "shm_merge_across_nodes", tb->merge_across_nodes, error);
}

static bool tb_params_set(void *opaque, const SpLvParams *params, GError **error)
{
    SpLvTestBackend *tb = opaque;
    guint32 to_scan = tb->pages_to_scan, sleep = tb->sleep_millisecs,
            merge = tb->merge_across_nodes;
    for (guint i = 0; i < sp_lv_params_len(params); i++) {
        const SpLvParam *p = sp_lv_params_get(params, i);
        guint64 v;
        guint32 *dst = NULL;
        if (strcmp(p->field, "shm_pages_to_scan") == 0)
            dst = &to_scan;
        else if (strcmp(p->field, "shm_sleep_millisecs") == 0)
            dst = &sleep;
        else if (strcmp(p->field, "shm_merge_across_nodes") == 0)
            dst = &merge;
        else if (g_str_has_prefix(p->field, "shm_"))
            return tb_err(error, SP_LV_ERR_INVALID_ARG,
                          "invalid argument: parameter '%s' is read-only", p->field);
        else
            return tb_err(error, SP_LV_ERR_INVALID_ARG, "invalid argument: unknown parameter '%s'",
                          p->field);
        if (!sp_lv_param_get_u64(p, &v) || v > G_MAXUINT32 || (dst == &merge && v > 1))
            return tb_err(error, SP_LV_ERR_INVALID_ARG,
                          "invalid argument: bad value for parameter '%s'", p->field);
        *dst = v;
    }
    tb->pages_to_scan = to_scan;
    tb->sleep_millisecs = sleep;
    tb->merge_across_nodes = merge;
    return true;
}

static bool tb_node_memory_stats(void *opaque, gint32 cell, SpLvNodeMemStats *out, GError **error)
{
    if (cell > 0)
        return tb_err(error, SP_LV_ERR_INVALID_ARG,
                      "invalid argument: cell number %d exceeds the last cell 0", cell);
    *out = (SpLvNodeMemStats){.total_kib = 8388608,
                              .free_kib = 4194304,
                              .buffers_kib = 1024,
                              .cached_kib = 2048,
                              .has_buffers_cached = cell < 0};
    return true;
}

static const SpLvBackendOps tb_ops = {
    .domain_list = tb_domain_list,
    .domain_get = tb_domain_get,
    .domain_get_xml = tb_domain_get_xml,
    .domain_define_xml = tb_define,
    .domain_undefine = tb_undefine,
    .domain_create_xml = tb_create_xml,
    .domain_start = tb_start,
    .domain_destroy = tb_destroy,
    .domain_memory_stats = tb_memory_stats,
    .domain_stats = tb_domain_stats,
    .domain_block_stats = tb_block_stats,
    .domain_interface_stats = tb_interface_stats,
    .node_get_info = tb_node_get_info,
    .node_memory_params_get = tb_params_get,
    .node_memory_params_set = tb_params_set,
    .node_memory_stats = tb_node_memory_stats,
};

static const char *const tb_initial[] = {
    "<domain type='samepage'><name>alpha</name>"
    "<uuid>11111111-2222-3333-4444-555555555551</uuid>"
    "<memory unit='MiB'>512</memory><vcpu>2</vcpu>"
    "<os><type>hvm</type></os>"
    "<metadata><sp:samepage xmlns:sp='https://samepage.invalid/xmlns/1'>"
    "<sp:payload>memload</sp:payload><sp:domain>tenant-a</sp:domain>"
    "</sp:samepage></metadata>"
    "<devices><disk type='file' device='disk'><source file='/var/lib/sp/alpha.img'/>"
    "<target dev='vda' bus='virtio'/></disk>"
    "<interface type='bridge'><source bridge='br0'/><target dev='vnet0'/></interface>"
    "</devices></domain>",
    "<domain type='samepage'><name>beta</name>"
    "<uuid>11111111-2222-3333-4444-555555555552</uuid>"
    "<memory unit='KiB'>262144</memory><currentMemory unit='KiB'>131072</currentMemory>"
    "<vcpu>1</vcpu><os><type>hvm</type></os></domain>",
};

SpLvTestBackend *sp_lv_test_backend_new(void)
{
    SpLvTestBackend *tb = g_new0(SpLvTestBackend, 1);
    tb->doms = g_ptr_array_new_with_free_func(tb_domain_free);
    tb->next_id = 1;
    tb->pages_to_scan = 100;
    tb->sleep_millisecs = 20;
    tb->merge_across_nodes = 1;
    for (gsize i = 0; i < G_N_ELEMENTS(tb_initial); i++) {
        SpLvDomainInfo info = {0};
        g_autoptr(GError) err = NULL;
        if (!tb_define(tb, tb_initial[i], 0, &info, &err))
            g_error("test backend: %s", err->message);
        sp_lv_domain_info_clear(&info);
    }
    tb_start(tb, ((TbDomain *)tb->doms->pdata[0])->def->uuid, 0, NULL);
    return tb;
}

void sp_lv_test_backend_free(SpLvTestBackend *tb)
{
    if (!tb)
        return;
    g_ptr_array_unref(tb->doms);
    g_free(tb);
}

SpLvBackend sp_lv_test_backend_get(SpLvTestBackend *tb)
{
    return (SpLvBackend){.ops = &tb_ops, .opaque = tb};
}
