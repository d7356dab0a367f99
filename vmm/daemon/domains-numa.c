/* SPDX-License-Identifier: MIT */
/*
 * domains-numa.c - virsh numatune for samepaged's domains (domains.h,
 * docs/numa.md): a running VM's memory policy changes by moving its RAM
 * (vmm/super/vm-numa.c); the definition's <numatune><memory> changes with
 * it when asked (--config).
 *
 * After a VM moved, and every SP_DOMAINS_REHOME_S seconds on a host with
 * several nodes, the shared frames follow their sharers: the engine moves
 * each frame that most of the pages mapping it want on another node
 * (sharing/numa-rehome.c), voting with every running VM's policy.  With
 * merge_across_nodes=0 a moved VM instead leaves the frames of nodes it
 * left (sp_engine_numa_split) and merges again on its new nodes.
 *
 * Locking: the domain's job is held over the whole change (the move can
 * take seconds; a stop or a clone of the same VM waits for it, as libvirt's
 * own jobs do); ds->lock only around the definition.  The votes are taken
 * from a table made before the engine is called: the engine's callback
 * runs under its own lock and must not take ds->lock.
 */
#include <numa.h>
#include <string.h>

#include "sharing/engine.h"
#include "vmm/daemon/domains-priv.h"
#include "vmm/id-list.h"
#include "vmm/vm-placement.h"

static bool mode_check(const char *mode, SpNumaMode *out, GError **error)
{
    g_autoptr(GError) err = NULL;
    if (!g_strcmp0(mode, "restrictive")) {
        DOM_ERROR(error, SP_LV_ERR_CONFIG_UNSUPPORTED,
                  "argument unsupported: NUMA mode 'restrictive' needs cgroups' cpuset.mems: "
                  "use strict, preferred or interleave");
        return false;
    }
    if (!sp_numa_mode_parse(mode, out, &err)) {
        DOM_ERROR(error, SP_LV_ERR_INVALID_ARG, "invalid argument: %s", err->message);
        return false;
    }
    return true;
}

/* vm id -> node mask of its policy (0: none), for the engine's vote */
static uint64_t vm_nodes(uint64_t vm_id, void *opaque)
{
    gpointer v = g_hash_table_lookup(opaque, &vm_id);
    return v ? *(uint64_t *)v : 0;
}

static uint64_t policy_mask(SpNumaMode mode, const char *nodes)
{
    g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(guint));
    uint64_t mask = 0;
    if (mode == SP_NUMA_DEFAULT || !nodes || !sp_id_list_parse(nodes, 64, ids, NULL))
        return 0;
    for (guint i = 0; i < ids->len; i++)
        mask |= 1ULL << g_array_index(ids, guint, i);
    return mask;
}

/* Shared frames to the node their sharers want, after a VM moved (moved:
 * its name) or periodically (moved NULL: logged only when a frame moved or
 * stayed misplaced). */
static void rehome_frames(SpDomains *ds, const char *moved)
{
    if (!ds->engine)
        return;
    g_autoptr(GHashTable) masks =
        g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
    g_autoptr(GPtrArray) doms = sp_domains_list_refs(ds);
    for (guint i = 0; i < doms->len; i++) {
        SpDomain *d = doms->pdata[i];
        SpVm *vm = sp_domain_vm_use(d);
        if (!vm)
            continue;
        SpNumaMode mode;
        g_autofree char *nodes = NULL;
        sp_vm_numa_policy(vm, &mode, &nodes);
        uint64_t *key = g_new(uint64_t, 1), *mask = g_new(uint64_t, 1);
        *key = sp_vm_id(vm);
        *mask = policy_mask(mode, nodes);
        g_hash_table_insert(masks, key, mask);
        sp_domain_vm_done(d);
    }
    SpEngineRehome rh;
    g_autoptr(GError) err = NULL;
    gint64 t0 = g_get_monotonic_time();
    if (!sp_engine_numa_rehome(ds->engine, vm_nodes, masks, &rh, &err))
        g_warning("event=numa-rehome-failed after=%s error=\"%s\"", moved ? moved : "(periodic)",
                  err->message);
    else if (moved || rh.frames_moved || rh.frames_misplaced)
        g_message("event=numa-rehome after=%s frames_checked=%" G_GUINT64_FORMAT
                  " frames_moved=%" G_GUINT64_FORMAT " frames_misplaced=%" G_GUINT64_FORMAT
                  " seconds=%.3f",
                  moved ? moved : "(periodic)", rh.frames_checked, rh.frames_moved,
                  rh.frames_misplaced, (g_get_monotonic_time() - t0) / 1e6);
    /* moved frames are every sharer's pages: no VM's last count holds */
    for (guint i = 0; rh.frames_moved && i < doms->len; i++) {
        SpVm *vm = sp_domain_vm_use(doms->pdata[i]);
        if (!vm)
            continue;
        sp_vm_numa_pages_stale(vm);
        sp_domain_vm_done(doms->pdata[i]);
    }
}

/* merge_across_nodes=0: the moved VM leaves the frames of nodes it left. */
static void split_pages(SpDomains *ds, SpVm *vm, const char *name, uint64_t mask)
{
    SpEngineKnobs k;
    if (!ds->engine || !sp_vm_engine_handle(vm))
        return;
    sp_engine_get_knobs(ds->engine, &k);
    if (k.merge_across_nodes)
        return;
    uint64_t split = 0;
    g_autoptr(GError) err = NULL;
    if (!sp_engine_numa_split(ds->engine, sp_vm_engine_handle(vm), mask, &split, &err))
        g_warning("event=numa-split-failed domain=%s error=\"%s\"", name, err->message);
    else
        g_message("event=numa-split domain=%s pages=%" G_GUINT64_FORMAT, name, split);
}

bool sp_domains_set_numa(SpDomains *ds, SpDomain *d, guint32 flags, const char *mode,
                         const char *nodeset, GError **error)
{
    if (!dom_job_begin(d, "virDomainSetNumaParameters", JOB_WAIT_S, error))
        return false;
    SpVm *vm = sp_domain_vm_use(d);
    bool live = (flags & SP_LV_AFFECT_LIVE) || (!(flags & SP_LV_AFFECT_CONFIG) && vm);
    bool config = (flags & SP_LV_AFFECT_CONFIG) || (!(flags & SP_LV_AFFECT_LIVE) && !vm);
    SpNumaMode cur_mode = SP_NUMA_DEFAULT, new_mode = SP_NUMA_STRICT;
    g_autofree char *cur_nodes = NULL;
    g_autoptr(GError) err = NULL;
    bool ok = true;
    /* what it has now: the running VM's, else the definition's */
    if (live && vm) {
        sp_vm_numa_policy(vm, &cur_mode, &cur_nodes);
    } else {
        g_mutex_lock(&ds->lock);
        if (d->def->numa_nodeset)
            sp_numa_mode_parse(d->def->numa_mode ? d->def->numa_mode : "strict", &cur_mode, NULL);
        cur_nodes = g_strdup(d->def->numa_nodeset);
        g_mutex_unlock(&ds->lock);
    }
    const char *nodes = nodeset ? nodeset : cur_nodes;
    if (live && !vm) {
        DOM_ERROR(error, SP_LV_ERR_OPERATION_INVALID, "domain '%s' is not running", d->def->name);
        ok = false;
    } else if (mode && !mode_check(mode, &new_mode, error)) {
        ok = false;
    } else if (!nodes || !*nodes) {
        DOM_ERROR(error, SP_LV_ERR_INVALID_ARG,
                  "invalid argument: domain '%s' has no NUMA node set: give one (--nodeset)",
                  d->def->name);
        ok = false;
    } else if (!sp_numa_nodes_check(nodes, &err)) {
        DOM_ERROR(error, SP_LV_ERR_INVALID_ARG, "invalid argument: nodeset '%s': %s", nodes,
                  err->message);
        ok = false;
    }
    if (ok && !mode && cur_mode != SP_NUMA_DEFAULT)
        new_mode = cur_mode;
    if (ok && live && !sp_vm_set_numa(vm, new_mode, nodes, error)) {
        g_prefix_error(error, "domain '%s': ", d->def->name);
        ok = false;
    }
    if (ok && live)
        split_pages(ds, vm, d->def->name, policy_mask(new_mode, nodes));
    if (vm)
        sp_domain_vm_done(d);
    if (ok && live)
        rehome_frames(ds, d->def->name);
    if (ok && config) {
        g_mutex_lock(&ds->lock);
        g_free(d->def->numa_mode);
        d->def->numa_mode = g_strdup(sp_numa_mode_name(new_mode));
        g_free(d->def->numa_nodeset);
        d->def->numa_nodeset = g_strdup(nodes);
        d->def->has_numatune = true;
        ok = !d->persistent || dom_write_definition(ds, d, error);
        g_mutex_unlock(&ds->lock);
    }
    if (ok)
        g_message("event=numatune domain=%s numa=%s:%s live=%d config=%d", d->def->name,
                  sp_numa_mode_name(new_mode), nodes, live, config);
    dom_job_end(d);
    return ok;
}

void sp_domains_get_numa(SpDomains *ds, SpDomain *d, guint32 flags, char **mode, char **nodeset)
{
    SpVm *vm = (flags & SP_LV_AFFECT_CONFIG) ? NULL : sp_domain_vm_use(d);
    SpNumaMode m = SP_NUMA_DEFAULT;
    char *nodes = NULL;
    if (vm) {
        sp_vm_numa_policy(vm, &m, &nodes);
        sp_domain_vm_done(d);
    } else {
        g_mutex_lock(&ds->lock);
        if (d->def->numa_nodeset)
            sp_numa_mode_parse(d->def->numa_mode ? d->def->numa_mode : "strict", &m, NULL);
        nodes = g_strdup(d->def->numa_nodeset);
        g_mutex_unlock(&ds->lock);
    }
    *mode = g_strdup(m == SP_NUMA_DEFAULT ? "strict" : sp_numa_mode_name(m));
    *nodeset = nodes ? nodes : g_strdup("");
}

void dom_rehome_task(SpDomains *ds)
{
    SpEngineKnobs k;
    if (ds->engine && numa_available() >= 0 && numa_max_node() > 0) {
        sp_engine_get_knobs(ds->engine, &k);
        if (k.merge_across_nodes && k.run == 1)
            rehome_frames(ds, NULL);
    }
    g_atomic_int_set(&ds->rehome_queued, 0);
}

void sp_domains_numa_tick(SpDomains *ds)
{
    if (!ds->engine || !g_atomic_int_compare_and_exchange(&ds->rehome_queued, 0, 1))
        return;
    DomTask *t = g_new0(DomTask, 1);
    t->kind = DOM_TASK_REHOME;
    g_thread_pool_push(ds->tasks, t, NULL);
}
