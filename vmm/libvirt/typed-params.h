/* SPDX-License-Identifier: MIT */
/*
 * typed-params.h - a list of libvirt typed parameters (virTypedParameter):
 * named values of type int, uint, llong, ullong, double, boolean or string.
 *
 * Backends fill such lists for domain statistics (domstats) and node memory
 * parameters; the endpoint encodes them as remote_typed_param arrays and
 * decodes the ones clients send (node-memory-tune writes).  Field names are
 * shorter than 80 bytes (libvirt clients copy them into char[80]); the
 * append functions refuse longer names with a GError instead of sending a
 * list that clients would reject.  Not thread-safe: one owner at a time.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "vmm/libvirt/xdr.h"

typedef enum {
    SP_LV_PARAM_INT = 1,
    SP_LV_PARAM_UINT = 2,
    SP_LV_PARAM_LLONG = 3,
    SP_LV_PARAM_ULLONG = 4,
    SP_LV_PARAM_DOUBLE = 5,
    SP_LV_PARAM_BOOLEAN = 6,
    SP_LV_PARAM_STRING = 7,
} SpLvParamType;

typedef struct {
    char *field;        /* name, < 80 bytes, owned */
    SpLvParamType type; /* which member of v is valid */
    union {
        gint32 i;   /* SP_LV_PARAM_INT */
        guint32 ui; /* SP_LV_PARAM_UINT */
        gint64 l;   /* SP_LV_PARAM_LLONG */
        guint64 ul; /* SP_LV_PARAM_ULLONG */
        double d;   /* SP_LV_PARAM_DOUBLE */
        bool b;     /* SP_LV_PARAM_BOOLEAN */
        char *s;    /* SP_LV_PARAM_STRING, owned */
    } v;
} SpLvParam;

typedef struct {
    GArray *items; /* of SpLvParam */
} SpLvParams;

SpLvParams *sp_lv_params_new(void);
void sp_lv_params_free(SpLvParams *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpLvParams, sp_lv_params_free)

guint sp_lv_params_len(const SpLvParams *p);
const SpLvParam *sp_lv_params_get(const SpLvParams *p, guint i);
/* NULL if absent. */
const SpLvParam *sp_lv_params_find(const SpLvParams *p, const char *field);

bool sp_lv_params_add_int(SpLvParams *p, const char *field, gint32 v, GError **error);
bool sp_lv_params_add_uint(SpLvParams *p, const char *field, guint32 v, GError **error);
bool sp_lv_params_add_llong(SpLvParams *p, const char *field, gint64 v, GError **error);
bool sp_lv_params_add_ullong(SpLvParams *p, const char *field, guint64 v, GError **error);
bool sp_lv_params_add_double(SpLvParams *p, const char *field, double v, GError **error);
bool sp_lv_params_add_boolean(SpLvParams *p, const char *field, bool v, GError **error);
bool sp_lv_params_add_string(SpLvParams *p, const char *field, const char *v, GError **error);

/* Reads a value as unsigned 64-bit whatever its integer type; fails for
 * negative values, doubles and strings. */
bool sp_lv_param_get_u64(const SpLvParam *prm, guint64 *out);

/* Wire codec: remote_typed_param params<max>. */
void sp_lv_params_encode(GByteArray *w, const SpLvParams *p);
/* Encodes items [first, first + n) only. */
void sp_lv_params_encode_range(GByteArray *w, const SpLvParams *p, guint first, guint n);
bool sp_lv_params_decode(SpXdrReader *r, SpLvParams *p, guint32 max, GError **error);
