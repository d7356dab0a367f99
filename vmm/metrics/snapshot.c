/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c - making snapshots of figures (snapshot.h).  The only place
 * that asks a supervisor's objects for figures: the printers read
 * snapshots.  Reference counts are atomic (g_atomic_rc_box); a snapshot
 * is never changed once handed out.
 */
#include "vmm/metrics/snapshot.h"

#include <string.h>

static void snapshot_vm_free(SpFigVm *v)
{
    g_free(v->name);
    g_free(v->uuid);
    g_free(v->state);
    g_free(v->sharing_domain);
    g_free(v->v);
    g_free(v->have);
    g_free(v);
}

SpFigSnapshot *sp_fig_snapshot_new(void)
{
    SpFigSnapshot *s = g_atomic_rc_box_new0(SpFigSnapshot);
    size_t n;
    sp_fig_table(SP_FIG_NODE, &n);
    s->taken_us = g_get_monotonic_time();
    s->node = g_new0(SpFigValue, n);
    s->node_have = g_new0(bool, n);
    s->vms = g_ptr_array_new_with_free_func((GDestroyNotify)snapshot_vm_free);
    s->groups = g_ptr_array_new_with_free_func(g_free);
    return s;
}

SpFigSnapshot *sp_fig_snapshot_ref(SpFigSnapshot *s)
{
    return g_atomic_rc_box_acquire(s);
}

static void snapshot_clear(SpFigSnapshot *s)
{
    g_free(s->node);
    g_free(s->node_have);
    g_ptr_array_unref(s->vms);
    g_ptr_array_unref(s->groups);
}

void sp_fig_snapshot_unref(SpFigSnapshot *s)
{
    if (s)
        g_atomic_rc_box_release_full(s, (GDestroyNotify)snapshot_clear);
}

void sp_fig_vm_source(SpVm *vm, SpEngine *engine, double agent_max_age_s, SpFigVmSrc *out)
{
    memset(out, 0, sizeof(*out));
    SpEngineVm *ev = engine ? sp_vm_engine_handle(vm) : NULL;
    if (ev) {
        sp_engine_get_vm_stats_aged(engine, ev, agent_max_age_s, &out->eng);
    } else { /* not in the engine: every resident page is its own, in one mapping */
        uint64_t resident = sp_vm_resident_pages(vm);
        out->eng =
            (SpEngineVmStats){.rss_pages = resident, .private_pages = resident, .mappings = 1};
    }
    sp_vm_get_info(vm, &out->info);
    out->clone_shared_pages = sp_vm_clone_shared_pages(vm);
    out->clone_generation = sp_vm_clone_generation(vm);
    out->clone_group = sp_vm_clone_group_id(vm);
    out->memory_bytes = sp_vm_config(vm)->mem_size;
}

void sp_fig_node_source(SpEngine *engine, SpFigNodeSrc *out)
{
    memset(out, 0, sizeof(*out));
    sp_engine_get_stats(engine, &out->eng);
    sp_engine_get_knobs(engine, &out->knobs);
    out->engine_cpu_ns = sp_engine_cpu_ns(engine);
    sp_engine_get_swap_stats(engine, &out->swap);
}

SpFigVm *sp_fig_snapshot_add_vm(SpFigSnapshot *s, const char *name, const uint8_t *uuid,
                                const char *state, const char *sharing_domain,
                                const SpFigVmSrc *src)
{
    size_t n;
    sp_fig_table(SP_FIG_VM, &n);
    SpFigVm *v = g_new0(SpFigVm, 1);
    v->name = g_strdup(name);
    if (uuid) { /* 8-4-4-4-12 hex digits, as libvirt writes it */
        GString *t = g_string_new(NULL);
        for (int i = 0; i < 16; i++)
            g_string_append_printf(t, (i == 4 || i == 6 || i == 8 || i == 10) ? "-%02x" : "%02x",
                                   uuid[i]);
        v->uuid = g_string_free(t, FALSE);
    }
    v->state = g_strdup(state);
    v->sharing_domain = g_strdup(sharing_domain);
    v->v = g_new0(SpFigValue, n);
    v->have = g_new0(bool, n);
    if (src) {
        v->has_figures = true;
        sp_fig_read(SP_FIG_VM, src, v->v);
        for (size_t i = 0; i < n; i++)
            v->have[i] = true;
    }
    g_ptr_array_add(s->vms, v);
    return v;
}

void sp_fig_snapshot_set_node(SpFigSnapshot *s, const SpFigNodeSrc *src)
{
    size_t n;
    sp_fig_table(SP_FIG_NODE, &n);
    sp_fig_read(SP_FIG_NODE, src, s->node);
    for (size_t i = 0; i < n; i++)
        s->node_have[i] = true;
    s->has_node = true;
}

void sp_fig_snapshot_add_group(SpFigSnapshot *s, const SpCloneGroupStats *g)
{
    size_t n;
    sp_fig_table(SP_FIG_GROUP, &n);
    SpFigValue *v = g_new0(SpFigValue, n);
    sp_fig_read(SP_FIG_GROUP, g, v);
    g_ptr_array_add(s->groups, v);
}

static bool uuid_known(const uint8_t *uuid)
{
    static const uint8_t zero[16];
    return uuid && memcmp(uuid, zero, sizeof(zero)) != 0;
}

SpFigSnapshot *sp_fig_collect(SpEngine *engine, const SpFigVmRef *refs, size_t n,
                              double agent_max_age_s)
{
    SpFigSnapshot *s = sp_fig_snapshot_new();
    SpFigNodeSrc node = {0};
    for (size_t i = 0; i < n; i++) {
        const SpFigVmRef *r = &refs[i];
        if (!r->vm) {
            sp_fig_snapshot_add_vm(s, r->name, uuid_known(r->uuid) ? r->uuid : NULL, r->state, NULL,
                                   NULL);
            continue;
        }
        SpFigVmSrc src;
        sp_fig_vm_source(r->vm, engine, agent_max_age_s, &src);
        const SpVmConfig *cfg = sp_vm_config(r->vm);
        sp_fig_snapshot_add_vm(s, r->name, uuid_known(r->uuid) ? r->uuid : NULL, r->state,
                               cfg->domain ? cfg->domain : cfg->name, &src);
        node.mappings += src.eng.mappings;
        node.vms++;
    }
    if (engine) {
        SpFigNodeSrc es;
        sp_fig_node_source(engine, &es);
        es.mappings = node.mappings;
        es.vms = node.vms;
        sp_fig_snapshot_set_node(s, &es);
    }
    g_autofree SpCloneGroupStats *gs = NULL;
    uint32_t ng = sp_rmap_group_stats(&gs);
    for (uint32_t i = 0; i < ng; i++)
        sp_fig_snapshot_add_group(s, &gs[i]);
    return s;
}
