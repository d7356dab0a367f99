/* SPDX-License-Identifier: MIT */
/*
 * procs-node.c - host-wide procedures: node info, security model (none),
 * node memory parameters get/set (the shm_* knobs and counters of the
 * sharing engine), node memory stats and free memory per NUMA cell
 * (virsh nodememstats --cell, freecell), and the empty storage
 * pool list some exporters ask for.
 *
 * GET_MEMORY_PARAMETERS / GET_MEMORY_STATS follow libvirt's two-step
 * protocol: nparams = 0 asks for the count (empty array, nparams = count);
 * nparams = N returns at most N entries and nparams = entries returned.
 */
#include <string.h>

#include "vmm/libvirt/procs.h"

static bool proc_node_get_info(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    SpLvNodeInfo ni = {0};
    if (!sp_lv_args_end(args, error) ||
        !s->backend->ops->node_get_info(s->backend->opaque, &ni, error))
        return false;
    /* char model[32]: 32 XDR chars, 4 bytes each (128 bytes) */
    sp_xdr_write_char_vector(ret, ni.model, sizeof(ni.model));
    sp_xdr_write_u64(ret, ni.memory_kib);
    sp_xdr_write_i32(ret, ni.cpus);
    sp_xdr_write_i32(ret, ni.mhz);
    sp_xdr_write_i32(ret, ni.nodes);
    sp_xdr_write_i32(ret, ni.sockets);
    sp_xdr_write_i32(ret, ni.cores);
    sp_xdr_write_i32(ret, ni.threads);
    return true;
}

/* {char model<>, char doi<>}, both empty: no security driver, so virsh
 * skips DOMAIN_GET_SECURITY_LABEL. */
static bool proc_node_get_security_model(SpLvSession *s, SpXdrReader *args, GByteArray *ret,
                                         GError **error)
{
    if (!sp_lv_args_end(args, error))
        return false;
    sp_xdr_write_char_array(ret, "", 0);
    sp_xdr_write_char_array(ret, "", 0);
    return true;
}

static bool proc_node_get_memory_params(SpLvSession *s, SpXdrReader *args, GByteArray *ret,
                                        GError **error)
{
    gint32 nparams;
    guint32 flags;
    if (!sp_lv_args_int_flags(args, &nparams, &flags, error))
        return false;
    if (!sp_lv_nparams_bounded(nparams, SP_LV_NODE_MEMORY_PARAMETERS_MAX, error))
        return false;
    g_autoptr(SpLvParams) p = sp_lv_params_new();
    if (!s->backend->ops->node_memory_params_get(s->backend->opaque, p, error))
        return false;
    /* string parameters only for clients that said they understand them */
    for (guint i = sp_lv_params_len(p); i-- > 0;)
        if (sp_lv_params_get(p, i)->type == SP_LV_PARAM_STRING &&
            !(flags & SP_LV_TYPED_PARAM_STRING_OKAY))
            g_array_remove_index(p->items, i);
    if (sp_lv_params_len(p) > SP_LV_NODE_MEMORY_PARAMETERS_MAX) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INTERNAL_ERROR,
                    "internal error: too many node memory parameters");
        return false;
    }
    sp_lv_params_reply(ret, p, nparams);
    return true;
}

static bool proc_node_set_memory_params(SpLvSession *s, SpXdrReader *args, GByteArray *ret,
                                        GError **error)
{
    g_autoptr(SpLvParams) p = sp_lv_params_new();
    guint32 flags;
    if (!sp_lv_params_decode(args, p, SP_LV_NODE_MEMORY_PARAMETERS_MAX, error) ||
        !sp_xdr_read_u32(args, &flags, error) || !sp_lv_args_end(args, error))
        return false;
    if (flags != 0) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG,
                    "invalid argument: unsupported flags (0x%x)", flags);
        return false;
    }
    for (guint i = 0; i < sp_lv_params_len(p); i++)
        for (guint j = i + 1; j < sp_lv_params_len(p); j++)
            if (strcmp(sp_lv_params_get(p, i)->field, sp_lv_params_get(p, j)->field) == 0) {
                g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG,
                            "invalid argument: parameter '%s' given twice",
                            sp_lv_params_get(p, i)->field);
                return false;
            }
    return s->backend->ops->node_memory_params_set(s->backend->opaque, p, error);
}

static bool proc_node_get_memory_stats(SpLvSession *s, SpXdrReader *args, GByteArray *ret,
                                       GError **error)
{
    gint32 nparams, cell;
    guint32 flags;
    if (!sp_xdr_read_i32(args, &nparams, error) || !sp_xdr_read_i32(args, &cell, error) ||
        !sp_xdr_read_u32(args, &flags, error) || !sp_lv_args_end(args, error) ||
        !sp_lv_node_stats_bounded(nparams, error))
        return false;
    if (cell < SP_LV_NODE_MEMORY_STATS_ALL_CELLS) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG, "invalid argument: cell number %d",
                    cell);
        return false;
    }
    SpLvNodeMemStats st = {0};
    if (!s->backend->ops->node_memory_stats(s->backend->opaque, cell, &st, error))
        return false;
    const SpLvNodeStat f[] = {{"total", st.total_kib},
                              {"free", st.free_kib},
                              {"buffers", st.buffers_kib},
                              {"cached", st.cached_kib}};
    sp_lv_node_stats_write(ret, nparams, f, st.has_buffers_cached ? 4 : 2);
    return true;
}

/* virNodeGetCellsFreeMemory (virsh freecell): the free bytes of cells
 * startCell .. startCell + maxcells - 1 that exist, from the backend's
 * per-cell memory figures; a start beyond the last cell is an error, as
 * in libvirt. */
static bool proc_node_get_cells_free_memory(SpLvSession *s, SpXdrReader *args, GByteArray *ret,
                                            GError **error)
{
    gint32 start, max;
    if (!sp_xdr_read_i32(args, &start, error) || !sp_xdr_read_i32(args, &max, error) ||
        !sp_lv_args_end(args, error))
        return false;
    if (max < 0 || max > SP_LV_NODE_MAX_CELLS) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_RPC, "maxcells %d out of range 0..%d", max,
                    SP_LV_NODE_MAX_CELLS);
        return false;
    }
    if (start < 0) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG,
                    "invalid argument: start cell %d out of range", start);
        return false;
    }
    g_autoptr(GArray) free_b = g_array_new(FALSE, FALSE, sizeof(guint64));
    for (gint32 c = start; c < start + max; c++) {
        SpLvNodeMemStats st = {0};
        g_autoptr(GError) err = NULL;
        if (!s->backend->ops->node_memory_stats(s->backend->opaque, c, &st, &err)) {
            if (c == start) { /* no such cell */
                g_propagate_error(error, g_steal_pointer(&err));
                return false;
            }
            break; /* past the last cell */
        }
        guint64 b = st.free_kib * 1024;
        g_array_append_val(free_b, b);
    }
    sp_xdr_write_u32(ret, free_b->len);
    for (guint i = 0; i < free_b->len; i++)
        sp_xdr_write_u64(ret, g_array_index(free_b, guint64, i));
    return true;
}

/* virNodeGetFreeMemory: the host's free bytes (MemFree). */
static bool proc_node_get_free_memory(SpLvSession *s, SpXdrReader *args, GByteArray *ret,
                                      GError **error)
{
    SpLvNodeMemStats st = {0};
    if (!sp_lv_args_end(args, error) ||
        !s->backend->ops->node_memory_stats(s->backend->opaque, SP_LV_NODE_MEMORY_STATS_ALL_CELLS,
                                            &st, error))
        return false;
    sp_xdr_write_u64(ret, st.free_kib * 1024);
    return true;
}

static bool proc_list_all_storage_pools(SpLvSession *s, SpXdrReader *args, GByteArray *ret,
                                        GError **error)
{
    gint32 need_results;
    guint32 flags;
    if (!sp_lv_args_int_flags(args, &need_results, &flags, error))
        return false;
    sp_xdr_write_u32(ret, 0); /* pools<> */
    sp_xdr_write_u32(ret, 0); /* ret */
    return true;
}

const SpLvProc sp_lv_procs_node[] = {
    {SP_LV_PROC_NODE_GET_INFO, "virNodeGetInfo", false, false, proc_node_get_info},
    {SP_LV_PROC_NODE_GET_SECURITY_MODEL, "virNodeGetSecurityModel", false, false,
     proc_node_get_security_model},
    {SP_LV_PROC_NODE_GET_MEMORY_PARAMETERS, "virNodeGetMemoryParameters", false, false,
     proc_node_get_memory_params},
    {SP_LV_PROC_NODE_SET_MEMORY_PARAMETERS, "virNodeSetMemoryParameters", true, false,
     proc_node_set_memory_params},
    {SP_LV_PROC_NODE_GET_MEMORY_STATS, "virNodeGetMemoryStats", false, false,
     proc_node_get_memory_stats},
    {SP_LV_PROC_NODE_GET_CELLS_FREE_MEMORY, "virNodeGetCellsFreeMemory", false, false,
     proc_node_get_cells_free_memory},
    {SP_LV_PROC_NODE_GET_FREE_MEMORY, "virNodeGetFreeMemory", false, false,
     proc_node_get_free_memory},
    {SP_LV_PROC_CONNECT_LIST_ALL_STORAGE_POOLS, "virConnectListAllStoragePools", false, false,
     proc_list_all_storage_pools},
};
const gsize sp_lv_procs_node_len = G_N_ELEMENTS(sp_lv_procs_node);
