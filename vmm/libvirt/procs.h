/* SPDX-License-Identifier: MIT */
/*
 * procs.h - internal interface between the dispatcher (session.c) and the
 * procedure implementations (procs-*.c), plus helpers they share
 * (procs-common.c).
 *
 * A handler decodes its arguments from args, calls sp_lv_args_end() before
 * acting (so trailing bytes are refused before any side effect), and writes
 * its ret structure to ret.  A decode failure is an error in SP_XDR_ERROR
 * (the dispatcher then closes the connection); any other failure is an
 * SP_LV_ERROR carrying the libvirt error code sent to the client.
 */
#pragma once

#include "vmm/libvirt/session.h"

struct SpLvSession {
    const SpLvBackend *backend;    /* domain and node answers */
    const SpLvEndpointConfig *cfg; /* type, version, limits */
    GByteArray *inbuf;             /* bytes of the incomplete next packet */
    char *deny_reason;             /* non-NULL: refuse everything */
    bool readonly;                 /* RO socket or VIR_CONNECT_RO */
    bool opened;                   /* CONNECT_OPEN succeeded */
    bool keepalive;                /* client asked for feature 10 */
    GArray *callbacks;             /* SpLvEventCallback: registered domain events */
    gint32 next_callback;          /* the next callbackID */
    SpLvDeferFn defer;             /* hands calls to workers, or NULL: inline */
    void *defer_opaque;
};

/* One CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY (procs-events.c). */
typedef struct {
    gint32 id;       /* callbackID the client got */
    gint32 event_id; /* virDomainEventID */
    bool has_dom;    /* only events of the domain with this UUID: */
    guint8 uuid[16];
} SpLvEventCallback;

typedef bool (*SpLvProcFn)(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error);

typedef struct {
    gint32 proc;      /* REMOTE_PROC_* */
    const char *api;  /* libvirt API name, for messages */
    bool mutating;    /* refused on read-only connections */
    bool before_open; /* allowed before CONNECT_OPEN */
    SpLvProcFn fn;    /* handler */
} SpLvProc;

extern const SpLvProc sp_lv_procs_connect[];
extern const gsize sp_lv_procs_connect_len;
extern const SpLvProc sp_lv_procs_domain[];
extern const gsize sp_lv_procs_domain_len;
extern const SpLvProc sp_lv_procs_stats[];
extern const gsize sp_lv_procs_stats_len;
extern const SpLvProc sp_lv_procs_node[];
extern const gsize sp_lv_procs_node_len;
extern const SpLvProc sp_lv_procs_lifecycle[];
extern const gsize sp_lv_procs_lifecycle_len;
extern const SpLvProc sp_lv_procs_vcpu[];
extern const gsize sp_lv_procs_vcpu_len;
extern const SpLvProc sp_lv_procs_host[];
extern const gsize sp_lv_procs_host_len;
extern const SpLvProc sp_lv_procs_events[];
extern const gsize sp_lv_procs_events_len;
extern const SpLvProc sp_lv_procs_memtune[]; /* procs-memtune.c */
extern const gsize sp_lv_procs_memtune_len;
extern const SpLvProc sp_lv_procs_numatune[]; /* procs-numatune.c */
extern const gsize sp_lv_procs_numatune_len;

/* samepage's private program (procs-samepage.c). */
extern const SpLvProc sp_lv_procs_samepage[];
extern const gsize sp_lv_procs_samepage_len;

/* Whether p is a connection-level procedure (the connect and events
 * tables): it uses this connection's state and never the backend, so it
 * runs on the protocol thread, in order, even with workers. */
bool sp_lv_proc_is_session(const SpLvProc *p);
/* Finds the handler of proc, or NULL: remote program / samepage program. */
const SpLvProc *sp_lv_proc_find(gint32 proc);
const SpLvProc *sp_lv_samepage_proc_find(gint32 proc);

/* --- helpers (procs-common.c) --- */
bool sp_lv_args_end(SpXdrReader *args, GError **error);
/* The last arguments are {int n, unsigned int flags} (a count, or
 * need_results, then flags). */
bool sp_lv_args_int_flags(SpXdrReader *args, gint32 *n, guint32 *flags, GError **error);
/* remote_nonnull_domain */
bool sp_lv_read_dom(SpXdrReader *r, char **name, guint8 uuid[16], gint32 *id, GError **error);
void sp_lv_write_dom(GByteArray *w, const SpLvDomainInfo *d);
/* Reads {dom} or {dom, u32 flags} (flags may be NULL then) and resolves
 * the domain. */
bool sp_lv_dom_args(SpLvSession *s, SpXdrReader *args, guint32 *flags, SpLvDomainInfo *d,
                    GError **error);
/* INVALID_ARG "unsupported flags" unless flags & ~allowed == 0. */
bool sp_lv_flags_check(guint32 flags, guint32 allowed, GError **error);
/* Reads a dom argument and resolves it through the backend. */
bool sp_lv_read_dom_lookup(SpLvSession *s, SpXdrReader *args, SpLvDomainInfo *out, GError **error);
bool sp_lv_domain_get(SpLvSession *s, const guint8 uuid[16], SpLvDomainInfo *out, GError **error);
/* All domains (owned SpLvDomainInfo *). */
GPtrArray *sp_lv_domain_list(SpLvSession *s, GError **error);
/* NODE_GET_MEMORY_STATS / NODE_GET_CPU_STATS: {field, u64 value} lists
 * with libvirt's two steps (nparams 0 asks for the count; both lists have
 * the same bound, 16). */
typedef struct {
    const char *field;
    guint64 value;
} SpLvNodeStat;
bool sp_lv_node_stats_bounded(gint32 nparams, GError **error);
void sp_lv_node_stats_write(GByteArray *ret, gint32 nparams, const SpLvNodeStat *f, guint avail);
/* GET_*_PARAMETERS: nparams must lie in 0..max (an RPC error if not). */
bool sp_lv_nparams_bounded(gint32 nparams, guint max, GError **error);
/* The arguments of a domain's typed-parameter calls, read and checked:
 * GET (dom, nparams in 0..max, flags within `allowed`) and SET (dom, at
 * most max parameters into p, flags within `allowed`, nothing after). */
bool sp_lv_dom_params_get_args(SpXdrReader *args, guint8 uuid[16], gint32 *nparams, guint32 *flags,
                               guint32 allowed, guint max, GError **error);
bool sp_lv_dom_params_set_args(SpXdrReader *args, guint8 uuid[16], SpLvParams *p, guint32 *flags,
                               guint32 allowed, guint max, GError **error);
/* The reply of a typed-parameter GET in libvirt's two steps: nparams 0
 * writes an empty array and the count, nparams N the first N parameters
 * (or all, if fewer) and how many were written. */
void sp_lv_params_reply(GByteArray *ret, const SpLvParams *p, gint32 nparams);
/* An SP_LV_ERROR for a missing optional callback. */
bool sp_lv_unsupported(const char *api, GError **error);
