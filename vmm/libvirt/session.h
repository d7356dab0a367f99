/* SPDX-License-Identifier: MIT */
/*
 * session.h - one client connection's protocol state, independent of the
 * transport: bytes in, reply bytes out.
 *
 * The server (server.c) owns the socket and feeds whatever it reads into
 * sp_lv_session_feed(); the session reassembles packets, answers keepalive
 * PINGs, dispatches CALLs to the procedure tables (procs-*.c) and appends
 * complete reply packets to the caller's output buffer.  The fuzz target
 * drives the same function directly.
 *
 * A session ends (feed returns false) on anything that breaks framing or the
 * protocol: a length under 28 or over the inbound limit, a message type a
 * client never sends, a wrong program, arguments that do not decode.  Where
 * the client can still read it, an error reply explaining why is appended
 * first; the server flushes it and closes that one connection.
 *
 * Threading: a session is used by the protocol thread; with a deferral
 * function set, the calls it hands out run on workers, which read only the
 * session's backend and configuration (set at creation, never changed).
 */
#pragma once

#include "vmm/libvirt/backend.h"

typedef struct {
    const char *hv_type; /* CONNECT_GET_TYPE, e.g. "samepage" */
    guint64 hv_version;  /* CONNECT_GET_VERSION, major*1000000+minor*1000+micro */
    guint32 inbound_max; /* largest accepted packet incl. length word */
} SpLvEndpointConfig;

typedef struct SpLvSession SpLvSession;

/* A call handed to a worker (server.c), with everything it needs. */
typedef struct SpLvCall SpLvCall;
/* Receives the calls that reach the backend (mutating: a state change,
 * for the job workers; else a query); called on the protocol thread. */
typedef void (*SpLvDeferFn)(void *opaque, SpLvCall *call, bool mutating);

/* readonly: the connection came in on the read-only socket.  deny_reason:
 * non-NULL refuses every call with ACCESS_DENIED and this text, then ends the
 * session (peer credentials failed).  backend and cfg must outlive it. */
SpLvSession *sp_lv_session_new(const SpLvBackend *backend, const SpLvEndpointConfig *cfg,
                               bool readonly, const char *deny_reason);
void sp_lv_session_free(SpLvSession *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpLvSession, sp_lv_session_free)

/* Consumes data; appends reply packets to out.  Returns false when the
 * connection must be closed after out is flushed (error says why). */
bool sp_lv_session_feed(SpLvSession *s, const guint8 *data, gsize len, GByteArray *out,
                        GError **error);

/* Bytes the session needs to complete the packet it is reading (the
 * length word first): feeding exactly that processes at most one packet. */
gsize sp_lv_session_wanted(const SpLvSession *s);

/* Hands calls that reach the backend to fn instead of running them inline.
 * Connection-level calls (open, features, keepalive, event registration)
 * always run inline, in order. */
void sp_lv_session_set_defer(SpLvSession *s, SpLvDeferFn fn, void *opaque);
/* On a worker: runs the call and appends its reply to out.  False when the
 * connection must be closed after out is sent (error says why).  The
 * session must outlive the call. */
bool sp_lv_call_run(SpLvCall *call, GByteArray *out, GError **error);
void sp_lv_call_free(SpLvCall *call);

/* Appends an event MESSAGE for every callback of this connection that
 * wants it (procs-events.c): event_id SP_LV_EVENT_ID_LIFECYCLE (event,
 * detail) or SP_LV_EVENT_ID_REBOOT.  Nothing before CONNECT_OPEN. */
void sp_lv_session_event_append(SpLvSession *s, GByteArray *out, const SpLvDomainInfo *dom,
                                gint32 event_id, gint32 event, gint32 detail);

/* Whether CONNECT_OPEN succeeded, and whether the connection is read-only
 * (socket or VIR_CONNECT_RO). */
bool sp_lv_session_is_open(const SpLvSession *s);
bool sp_lv_session_is_readonly(const SpLvSession *s);
