/* SPDX-License-Identifier: MIT */
/*
 * events.c - samepaged's domain events: the registry reports each change
 * of a domain's state here (dom_emit, from whichever thread made it, with
 * the domain's job held so that one domain's events keep their order), and
 * this hands libvirt's (event, detail) numbers with a snapshot of the
 * domain's identity to the emit hook, which the daemon points at the
 * libvirt server (sp_lv_server_emit: queued for every registered
 * connection).  Which change sends which event: domains-run.c's table.
 * Calls the hook with ds->lock held (a snapshot, and no event after the
 * hook is unset): the hook only queues, and never calls back.
 */
#include <string.h>

#include "vmm/daemon/domains-priv.h"

static void emit(SpDomain *d, gint32 event_id, gint32 event, gint32 detail)
{
    SpDomains *ds = d->owner;
    SpLvDomainInfo dom = {0};
    g_mutex_lock(&ds->lock);
    dom.name = g_strdup(d->def->name);
    memcpy(dom.uuid, d->def->uuid, 16);
    dom.id = d->id;
    /* under the lock, so that once sp_domains_set_emit(NULL) returns no
     * event reaches the old hook (the server being freed) */
    if (ds->emit)
        ds->emit(ds->emit_opaque, &dom, event_id, event, detail);
    g_mutex_unlock(&ds->lock);
    sp_lv_domain_info_clear(&dom);
}

void dom_emit(SpDomain *d, gint32 event, gint32 detail)
{
    emit(d, SP_LV_EVENT_ID_LIFECYCLE, event, detail);
}

void dom_emit_reboot(SpDomain *d)
{
    emit(d, SP_LV_EVENT_ID_REBOOT, 0, 0);
}
