/* SPDX-License-Identifier: MIT */
/*
 * domains-numa.c - virsh numatune for samepaged's domains (domains.h,
 * docs/numa.md): a running VM's memory policy changes by moving its RAM
 * (vmm/super/vm-numa.c); the definition's <numatune><memory> changes with
 * it when asked (--config).
 *
 * Locking: the domain's job is held over the whole change (the move can
 * take seconds; a stop or a clone of the same VM waits for it, as libvirt's
 * own jobs do); ds->lock only around the definition.
 */
#include <string.h>

#include "vmm/daemon/domains-priv.h"
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
    if (vm)
        sp_domain_vm_done(d);
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
