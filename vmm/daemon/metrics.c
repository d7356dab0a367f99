/* SPDX-License-Identifier: MIT */
/* metrics.c - samepaged's snapshots of figures and their endpoint (metrics.h). */
#include "vmm/daemon/metrics.h"

SpFigSnapshot *sp_daemon_metrics_collect(SpDomains *ds)
{
    g_autofree SpFigVmRef *refs = g_new0(SpFigVmRef, ds->list->len);
    for (guint i = 0; i < ds->list->len; i++) {
        SpDomain *d = ds->list->pdata[i];
        refs[i] = (SpFigVmRef){
            .vm = d->vm,
            .name = d->def->name,
            .uuid = d->def->uuid,
            .state = sp_lv_state_name(d->state),
        };
    }
    return sp_fig_collect(ds->engine, refs, ds->list->len, SP_METRICS_AGENT_MAX_AGE_S);
}

static SpFigSnapshot *metrics_collect(void *opaque)
{
    return sp_daemon_metrics_collect(opaque);
}

SpMetricsEndpoint *sp_daemon_metrics_new(SpDomains *ds, const char *listen, GError **error)
{
    return sp_metrics_endpoint_new(listen, metrics_collect, ds, error);
}
