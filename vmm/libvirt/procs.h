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
};

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

/* samepage's private program (procs-samepage.c). */
extern const SpLvProc sp_lv_procs_samepage[];
extern const gsize sp_lv_procs_samepage_len;

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
/* Reads a dom argument and resolves it through the backend. */
bool sp_lv_read_dom_lookup(SpLvSession *s, SpXdrReader *args, SpLvDomainInfo *out, GError **error);
bool sp_lv_domain_get(SpLvSession *s, const guint8 uuid[16], SpLvDomainInfo *out, GError **error);
/* All domains (owned SpLvDomainInfo *). */
GPtrArray *sp_lv_domain_list(SpLvSession *s, GError **error);
/* An SP_LV_ERROR for a missing optional callback. */
bool sp_lv_unsupported(const char *api, GError **error);
