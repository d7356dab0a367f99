/* SPDX-License-Identifier: MIT */
/*
 * client.h - a small synchronous client of the libvirt remote protocol, for
 * the `samepage` CLI talking to samepaged over its UNIX socket.
 *
 * It reuses the endpoint's codecs (xdr.h, message.h, typed-params.h): a call
 * is one CALL packet, answered by one REPLY packet with the same serial.
 * Every reply is decoded with the same bounds checks as the server's input;
 * a reply that is truncated, oversized (over SP_LV_MESSAGE_MAX), for another
 * program/procedure/serial, or with trailing bytes is an error
 * (SP_LV_CLIENT_ERROR_PROTOCOL) and the connection is unusable afterwards;
 * it never aborts.  Every read waits at most the client's timeout.
 *
 * Errors: local failures are SP_LV_CLIENT_ERROR (connect, I/O, protocol);
 * an error REPLY from the daemon is SP_LV_CLIENT_REMOTE_ERROR whose code is
 * the libvirt virErrorNumber and whose message is the daemon's text.
 *
 * Not thread-safe: one SpLvClient belongs to one thread.  Keepalive is not
 * requested, so the daemon never sends unsolicited packets; any MESSAGE
 * packet that arrives anyway is skipped.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "vmm/libvirt/typed-params.h"

#define SP_LV_CLIENT_ERROR (sp_lv_client_error_quark())
GQuark sp_lv_client_error_quark(void);
#define SP_LV_CLIENT_REMOTE_ERROR (sp_lv_client_remote_error_quark())
GQuark sp_lv_client_remote_error_quark(void);

typedef enum {
    SP_LV_CLIENT_ERROR_CONNECT,  /* socket() / connect() failed */
    SP_LV_CLIENT_ERROR_IO,       /* send/recv failed, EOF, timeout */
    SP_LV_CLIENT_ERROR_PROTOCOL, /* a malformed or unexpected reply */
} SpLvClientErrorCode;

typedef struct SpLvClient SpLvClient;

/* A remote_nonnull_domain as the daemon sent it. */
typedef struct {
    char *name; /* owned */
    guint8 uuid[16];
    gint32 id; /* -1 when inactive */
} SpLvClientDom;

void sp_lv_client_dom_clear(SpLvClientDom *d);
void sp_lv_client_dom_free(SpLvClientDom *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpLvClientDom, sp_lv_client_dom_free)
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(SpLvClientDom, sp_lv_client_dom_clear)

/* Connects to the UNIX socket at path and opens the connection
 * (CONNECT_OPEN "samepage:///system", VIR_CONNECT_RO if readonly). */
SpLvClient *sp_lv_client_connect(const char *path, bool readonly, GError **error);
/* CONNECT_CLOSE (best effort), then closes the socket.  NULL is fine. */
void sp_lv_client_close(SpLvClient *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpLvClient, sp_lv_client_close)

/* Milliseconds to wait for each reply (default 60000). */
void sp_lv_client_set_timeout(SpLvClient *c, int timeout_ms);

/* One call of the REMOTE program: args are the encoded arguments (may be
 * NULL for none).  On success *reply holds the reply payload (owned). */
bool sp_lv_client_call(SpLvClient *c, gint32 proc, const GByteArray *args, GByteArray **reply,
                       GError **error);

/* The same for any program: SP_LV_SAMEPAGE_PROGRAM's calls use this. */
bool sp_lv_client_call_program(SpLvClient *c, guint32 prog, guint32 vers, gint32 proc,
                               const GByteArray *args, GByteArray **reply, GError **error);

/* --- typed calls used by the CLI --- */

/* remote_nonnull_domain codec. */
void sp_lv_client_write_dom(GByteArray *w, const SpLvClientDom *d);
bool sp_lv_client_read_dom(SpXdrReader *r, SpLvClientDom *d, GError **error);

bool sp_lv_client_lookup_by_name(SpLvClient *c, const char *name, SpLvClientDom *out,
                                 GError **error);
/* CONNECT_LIST_ALL_DOMAINS: a GPtrArray of SpLvClientDom*. */
GPtrArray *sp_lv_client_list_all(SpLvClient *c, guint32 flags, GError **error);
/* DOMAIN_GET_STATE: virDomainState and reason. */
bool sp_lv_client_get_state(SpLvClient *c, const SpLvClientDom *d, gint32 *state, gint32 *reason,
                            GError **error);
/* A call whose arguments are just {dom} (+ u32 flags when with_flags) and
 * whose reply is empty: DOMAIN_CREATE, DESTROY, SHUTDOWN, UNDEFINE. */
bool sp_lv_client_dom_void(SpLvClient *c, gint32 proc, const SpLvClientDom *d, bool with_flags,
                           guint32 flags, GError **error);
/* DOMAIN_DEFINE_XML: the defined domain in *out. */
bool sp_lv_client_define_xml(SpLvClient *c, const char *xml, SpLvClientDom *out, GError **error);

/* One record of CONNECT_GET_ALL_DOMAIN_STATS. */
typedef struct {
    SpLvClientDom dom;
    SpLvParams *params; /* owned */
} SpLvClientDomStats;

void sp_lv_client_dom_stats_free(SpLvClientDomStats *s);
/* doms may be NULL/empty (then flags filter all domains); groups 0 = all.
 * Returns a GPtrArray of SpLvClientDomStats*. */
GPtrArray *sp_lv_client_get_all_domain_stats(SpLvClient *c, GPtrArray *doms, guint32 groups,
                                             guint32 flags, GError **error);
/* NODE_GET_MEMORY_PARAMETERS, all of them (count query, then fetch). */
SpLvParams *sp_lv_client_node_memory_params(SpLvClient *c, GError **error);

/* One NUMA cell of the host: its id, memory and CPUs from
 * CONNECT_GET_CAPABILITIES (<topology><cells>), its free memory from
 * NODE_GET_CELLS_FREE_MEMORY. */
typedef struct {
    gint32 id;
    guint64 memory_kib, free_kib;
    char *cpus; /* "0-3,8" style list */
} SpLvClientCell;
void sp_lv_client_cell_free(SpLvClientCell *cell);
/* The host's cells (SpLvClientCell *, owned), in the capabilities' order. */
GPtrArray *sp_lv_client_node_cells(SpLvClient *c, GError **error);

/* --- samepage program (docs/libvirt.md, "The samepage program") --- */

/* CLONE: the children's names (g_free'd strings) in order, or NULL. */
GPtrArray *sp_lv_client_clone(SpLvClient *c, const char *name, guint32 count,
                              const char *const *names, guint32 n_names, GError **error);
/* CLONE_GROUPS: one SpLvParams * per clone group. */
GPtrArray *sp_lv_client_clone_groups(SpLvClient *c, GError **error);
