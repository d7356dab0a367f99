/* SPDX-License-Identifier: MIT */
/* metrics.c - samepaged's snapshots of figures and their endpoint (metrics.h). */
#include "vmm/daemon/metrics.h"

/* libvirt calls change the registry on worker threads meanwhile
 * (domains.h): the collection holds a reference to each domain, a copy of
 * its name, UUID and state, and a use of its VM, so that neither an
 * undefine, a redefinition nor a VM's end frees what it reads. */
SpFigSnapshot *sp_daemon_metrics_collect(SpDomains *ds)
{
    g_autoptr(GPtrArray) doms = sp_domains_list_refs(ds);
    guint n = doms->len;
    g_autofree SpFigVmRef *refs = g_new0(SpFigVmRef, n);
    g_autofree SpLvDomainInfo *infos = g_new0(SpLvDomainInfo, n);
    for (guint i = 0; i < n; i++) {
        SpDomain *d = doms->pdata[i];
        SpVm *vm = sp_domain_vm_use(d);
        sp_domain_fill_info(d, &infos[i]);
        refs[i] = (SpFigVmRef){
            .vm = vm,
            .name = infos[i].name,
            .uuid = infos[i].uuid,
            .state = sp_lv_state_name(infos[i].state),
        };
    }
    SpFigSnapshot *snap = sp_fig_collect(ds->engine, refs, n, SP_METRICS_AGENT_MAX_AGE_S);
    for (guint i = 0; i < n; i++) {
        if (refs[i].vm)
            sp_domain_vm_done(doms->pdata[i]);
        sp_lv_domain_info_clear(&infos[i]);
    }
    return snap;
}

static SpFigSnapshot *metrics_collect(void *opaque)
{
    return sp_daemon_metrics_collect(opaque);
}

SpMetricsEndpoint *sp_daemon_metrics_new(SpDomains *ds, const char *listen, GError **error)
{
    return sp_metrics_endpoint_new(listen, metrics_collect, ds, error);
}
