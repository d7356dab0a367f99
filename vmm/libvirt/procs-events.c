/* SPDX-License-Identifier: MIT */
/*
 * procs-events.c - domain events over the remote protocol: a connection
 * registers callbacks (CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, 316) and
 * deregisters them (317); the server then sends it, for every event that
 * matches a callback, a MESSAGE packet (type 2, serial 0) of procedure
 * DOMAIN_EVENT_CALLBACK_LIFECYCLE (318: {int callbackID; dom; int event;
 * int detail}) or DOMAIN_EVENT_CALLBACK_REBOOT (319: {int callbackID;
 * dom}).  Clients use this form because feature 14 (REMOTE_EVENT_CALLBACK)
 * answers yes (procs-connect.c).
 *
 * Any event ID libvirt 9.0 knows may be registered (virsh event --all
 * registers them all); samepaged sends lifecycle and reboot events.  A
 * callback may name a domain: it then gets that domain's events only.
 * Registration is not a change of anything, so read-only connections may
 * register, as in libvirt.  At most SP_LV_EVENT_CALLBACKS_MAX callbacks per
 * connection.  State: the session's callbacks array, used on the protocol
 * thread only (sp_lv_proc_is_session: these run there, and the server
 * appends events there).
 */
#include <string.h>

#include "vmm/libvirt/message.h"
#include "vmm/libvirt/procs.h"

/* {int eventID; remote_domain dom (optional)} -> {int callbackID} */
static bool proc_register_any(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    gint32 event_id, id;
    guint32 has_dom;
    SpLvEventCallback cb = {0};
    if (!sp_xdr_read_i32(args, &event_id, error) || !sp_xdr_read_u32(args, &has_dom, error))
        return false;
    if (has_dom > 1) {
        g_set_error(error, SP_XDR_ERROR, SP_XDR_ERROR_INVALID, "optional domain flag %u", has_dom);
        return false;
    }
    if ((has_dom && !sp_lv_read_dom(args, NULL, cb.uuid, &id, error)) ||
        !sp_lv_args_end(args, error))
        return false;
    if (event_id < 0 || event_id >= SP_LV_EVENT_ID_LAST) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG,
                    "invalid argument: unsupported event ID %d", event_id);
        return false;
    }
    if (s->callbacks->len >= SP_LV_EVENT_CALLBACKS_MAX) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_OPERATION_FAILED,
                    "operation failed: %u event callbacks on this connection already",
                    SP_LV_EVENT_CALLBACKS_MAX);
        return false;
    }
    cb.id = s->next_callback++;
    cb.event_id = event_id;
    cb.has_dom = has_dom;
    g_array_append_val(s->callbacks, cb);
    sp_xdr_write_i32(ret, cb.id);
    return true;
}

/* {int callbackID} -> void */
static bool proc_deregister_any(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    gint32 id;
    if (!sp_xdr_read_i32(args, &id, error) || !sp_lv_args_end(args, error))
        return false;
    for (guint i = 0; i < s->callbacks->len; i++)
        if (g_array_index(s->callbacks, SpLvEventCallback, i).id == id) {
            g_array_remove_index(s->callbacks, i);
            return true;
        }
    g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG,
                "invalid argument: event callback %d is not registered", id);
    return false;
}

void sp_lv_session_event_append(SpLvSession *s, GByteArray *out, const SpLvDomainInfo *dom,
                                gint32 event_id, gint32 event, gint32 detail)
{
    if (!s->opened || s->deny_reason)
        return;
    for (guint i = 0; i < s->callbacks->len; i++) {
        const SpLvEventCallback *cb = &g_array_index(s->callbacks, SpLvEventCallback, i);
        if (cb->event_id != event_id || (cb->has_dom && memcmp(cb->uuid, dom->uuid, 16) != 0))
            continue;
        bool lifecycle = event_id == SP_LV_EVENT_ID_LIFECYCLE;
        SpLvHeader h = {.prog = SP_LV_REMOTE_PROGRAM,
                        .vers = SP_LV_REMOTE_VERSION,
                        .proc = lifecycle ? SP_LV_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE
                                          : SP_LV_PROC_DOMAIN_EVENT_CALLBACK_REBOOT,
                        .type = SP_LV_MESSAGE,
                        .serial = 0,
                        .status = SP_LV_STATUS_OK};
        gsize start = sp_lv_packet_begin(out, &h);
        sp_xdr_write_i32(out, cb->id);
        sp_lv_write_dom(out, dom);
        if (lifecycle) {
            sp_xdr_write_i32(out, event);
            sp_xdr_write_i32(out, detail);
        }
        sp_lv_packet_end(out, start);
    }
}

const SpLvProc sp_lv_procs_events[] = {
    {SP_LV_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, "virConnectDomainEventRegisterAny",
     false, false, proc_register_any},
    {SP_LV_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY, "virConnectDomainEventDeregisterAny",
     false, false, proc_deregister_any},
};
const gsize sp_lv_procs_events_len = G_N_ELEMENTS(sp_lv_procs_events);
