/* SPDX-License-Identifier: MIT */
/*
 * message.h - packets of the libvirt remote protocol: framing, the 24-byte
 * header, and the remote_error payload of error replies.
 *
 * A packet is [u32 length][header][payload] where length counts the whole
 * packet INCLUDING the length word itself (libvirt-wire.md 1.1).  The
 * inbound limit is the caller's (the server uses 1 MiB by default); a
 * length under 28 or over the limit is a framing error that closes only the
 * connection it came on.  Stateless helpers, no locking.
 */
#pragma once

#include "vmm/libvirt/xdr.h"

typedef struct {
    guint32 prog;   /* program number */
    guint32 vers;   /* program version */
    gint32 proc;    /* procedure number (signed on the wire) */
    gint32 type;    /* SP_LV_CALL, SP_LV_REPLY, SP_LV_MESSAGE, ... */
    guint32 serial; /* chosen by the caller, echoed in the reply */
    gint32 status;  /* SP_LV_STATUS_OK / _ERROR / _CONTINUE */
} SpLvHeader;

/* The decoded remote_error (only what clients print or match on). */
typedef struct {
    gint32 code;   /* virErrorNumber */
    gint32 domain; /* virErrorDomain */
    char *message; /* may be NULL */
    gint32 level;  /* SP_LV_ERR_LEVEL_ERROR */
    char *str1;    /* may be NULL */
    gint32 int1;
} SpLvRemoteError;

/* Validates the length word in buf[0..4): 28 <= length <= max_len.
 * On success *total is the whole packet size including the length word. */
bool sp_lv_frame_length(const guint8 *buf, guint32 max_len, guint32 *total, GError **error);

bool sp_lv_header_decode(SpXdrReader *r, SpLvHeader *h, GError **error);
void sp_lv_header_encode(GByteArray *w, const SpLvHeader *h);

/* Starts a packet in out (placeholder length, then the header) and returns
 * the offset of its length word; sp_lv_packet_end patches the length. */
gsize sp_lv_packet_begin(GByteArray *out, const SpLvHeader *h);
void sp_lv_packet_end(GByteArray *out, gsize start);

/* Encodes a remote_error with level ERROR and the unused dom/net absent. */
void sp_lv_error_encode(GByteArray *w, gint32 code, gint32 domain, const char *message);
bool sp_lv_error_decode(SpXdrReader *r, SpLvRemoteError *e, GError **error);
void sp_lv_remote_error_clear(SpLvRemoteError *e);

/* Appends a complete error REPLY to call h (prog/vers/proc/serial echoed). */
void sp_lv_reply_error_append(GByteArray *out, const SpLvHeader *call, gint32 code, gint32 domain,
                              const char *message);
