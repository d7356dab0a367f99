/* SPDX-License-Identifier: MIT */
/*
 * typed-params.c - typed parameter lists and their remote_typed_param codec.
 *
 * Wire form: { string field; int type; union by type: int | u_int | hyper |
 * u_hyper | double | int (boolean) | string }.  Decoding bounds the field at
 * SP_LV_FIELD_READ_MAX, string values at SP_LV_STRING_MAX and the count at
 * the caller's max (checked against the bytes left) before allocating.
 */
#include "vmm/libvirt/typed-params.h"

#include <gio/gio.h>
#include <string.h>

#include "vmm/libvirt/protocol.h"

static void param_clear(gpointer data)
{
    SpLvParam *prm = data;
    g_free(prm->field);
    if (prm->type == SP_LV_PARAM_STRING)
        g_free(prm->v.s);
}

SpLvParams *sp_lv_params_new(void)
{
    SpLvParams *p = g_new0(SpLvParams, 1);
    p->items = g_array_new(FALSE, TRUE, sizeof(SpLvParam));
    g_array_set_clear_func(p->items, param_clear);
    return p;
}

void sp_lv_params_free(SpLvParams *p)
{
    if (!p)
        return;
    g_array_unref(p->items);
    g_free(p);
}

guint sp_lv_params_len(const SpLvParams *p)
{
    return p->items->len;
}

const SpLvParam *sp_lv_params_get(const SpLvParams *p, guint i)
{
    g_return_val_if_fail(i < p->items->len, NULL);
    return &g_array_index(p->items, SpLvParam, i);
}

const SpLvParam *sp_lv_params_find(const SpLvParams *p, const char *field)
{
    for (guint i = 0; i < p->items->len; i++) {
        const SpLvParam *prm = &g_array_index(p->items, SpLvParam, i);
        if (strcmp(prm->field, field) == 0)
            return prm;
    }
    return NULL;
}

static SpLvParam *params_push(SpLvParams *p, const char *field, SpLvParamType type, GError **error)
{
    if (!field || !*field || strlen(field) >= SP_LV_TYPED_PARAM_FIELD_LENGTH) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "typed parameter name '%s' is empty or not shorter than %u bytes",
                    field ? field : "(null)", SP_LV_TYPED_PARAM_FIELD_LENGTH);
        return NULL;
    }
    SpLvParam prm = {.field = g_strdup(field), .type = type};
    g_array_append_val(p->items, prm);
    return &g_array_index(p->items, SpLvParam, p->items->len - 1);
}

#define PARAMS_ADD(fn, ctype, tag, member)                                                         \
    bool fn(SpLvParams *p, const char *field, ctype v, GError **error)                             \
    {                                                                                              \
        SpLvParam *prm = params_push(p, field, tag, error);                                        \
        if (!prm)                                                                                  \
            return false;                                                                          \
        prm->v.member = v;                                                                         \
        return true;                                                                               \
    }

PARAMS_ADD(sp_lv_params_add_int, gint32, SP_LV_PARAM_INT, i)
PARAMS_ADD(sp_lv_params_add_uint, guint32, SP_LV_PARAM_UINT, ui)
PARAMS_ADD(sp_lv_params_add_llong, gint64, SP_LV_PARAM_LLONG, l)
PARAMS_ADD(sp_lv_params_add_ullong, guint64, SP_LV_PARAM_ULLONG, ul)
PARAMS_ADD(sp_lv_params_add_double, double, SP_LV_PARAM_DOUBLE, d)
PARAMS_ADD(sp_lv_params_add_boolean, bool, SP_LV_PARAM_BOOLEAN, b)

bool sp_lv_params_add_string(SpLvParams *p, const char *field, const char *v, GError **error)
{
    if (!v) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "typed parameter '%s' has a NULL string value", field);
        return false;
    }
    SpLvParam *prm = params_push(p, field, SP_LV_PARAM_STRING, error);
    if (!prm)
        return false;
    prm->v.s = g_strdup(v);
    return true;
}

bool sp_lv_param_get_u64(const SpLvParam *prm, guint64 *out)
{
    switch (prm->type) {
    case SP_LV_PARAM_INT:
        if (prm->v.i < 0)
            return false;
        *out = (guint64)prm->v.i;
        return true;
    case SP_LV_PARAM_UINT:
        *out = prm->v.ui;
        return true;
    case SP_LV_PARAM_LLONG:
        if (prm->v.l < 0)
            return false;
        *out = (guint64)prm->v.l;
        return true;
    case SP_LV_PARAM_ULLONG:
        *out = prm->v.ul;
        return true;
    case SP_LV_PARAM_BOOLEAN:
        *out = prm->v.b;
        return true;
    default:
        return false;
    }
}

static void param_encode(GByteArray *w, const SpLvParam *prm)
{
    sp_xdr_write_string(w, prm->field);
    sp_xdr_write_i32(w, prm->type);
    switch (prm->type) {
    case SP_LV_PARAM_INT:
        sp_xdr_write_i32(w, prm->v.i);
        break;
    case SP_LV_PARAM_UINT:
        sp_xdr_write_u32(w, prm->v.ui);
        break;
    case SP_LV_PARAM_LLONG:
        sp_xdr_write_i64(w, prm->v.l);
        break;
    case SP_LV_PARAM_ULLONG:
        sp_xdr_write_u64(w, prm->v.ul);
        break;
    case SP_LV_PARAM_DOUBLE:
        sp_xdr_write_double(w, prm->v.d);
        break;
    case SP_LV_PARAM_BOOLEAN:
        sp_xdr_write_i32(w, prm->v.b);
        break;
    case SP_LV_PARAM_STRING:
        sp_xdr_write_string(w, prm->v.s);
        break;
    }
}

void sp_lv_params_encode_range(GByteArray *w, const SpLvParams *p, guint first, guint n)
{
    if (first > p->items->len)
        first = p->items->len;
    if (n > p->items->len - first)
        n = p->items->len - first;
    sp_xdr_write_u32(w, n);
    for (guint i = first; i < first + n; i++)
        param_encode(w, &g_array_index(p->items, SpLvParam, i));
}

void sp_lv_params_encode(GByteArray *w, const SpLvParams *p)
{
    sp_lv_params_encode_range(w, p, 0, p->items->len);
}

static bool param_decode(SpXdrReader *r, SpLvParams *p, GError **error)
{
    g_autofree char *field = NULL;
    gint32 type;
    if (!sp_xdr_read_string(r, &field, SP_LV_FIELD_READ_MAX, error) ||
        !sp_xdr_read_i32(r, &type, error))
        return false;
    if (!*field || strlen(field) >= SP_LV_TYPED_PARAM_FIELD_LENGTH) {
        g_set_error(error, SP_XDR_ERROR, SP_XDR_ERROR_INVALID, "typed parameter name of %zu bytes",
                    strlen(field));
        return false;
    }
    SpLvParam prm = {.type = type};
    bool ok;
    switch (type) {
    case SP_LV_PARAM_INT:
    case SP_LV_PARAM_BOOLEAN: {
        gint32 v;
        ok = sp_xdr_read_i32(r, &v, error);
        if (type == SP_LV_PARAM_INT)
            prm.v.i = v;
        else
            prm.v.b = v != 0;
        break;
    }
    case SP_LV_PARAM_UINT:
        ok = sp_xdr_read_u32(r, &prm.v.ui, error);
        break;
    case SP_LV_PARAM_LLONG:
        ok = sp_xdr_read_i64(r, &prm.v.l, error);
        break;
    case SP_LV_PARAM_ULLONG:
        ok = sp_xdr_read_u64(r, &prm.v.ul, error);
        break;
    case SP_LV_PARAM_DOUBLE:
        ok = sp_xdr_read_double(r, &prm.v.d, error);
        break;
    case SP_LV_PARAM_STRING:
        ok = sp_xdr_read_string(r, &prm.v.s, SP_LV_STRING_MAX, error);
        break;
    default:
        g_set_error(error, SP_XDR_ERROR, SP_XDR_ERROR_INVALID,
                    "typed parameter '%s' has unknown type %d", field, type);
        return false;
    }
    if (!ok)
        return false;
    prm.field = g_steal_pointer(&field);
    g_array_append_val(p->items, prm);
    return true;
}

bool sp_lv_params_decode(SpXdrReader *r, SpLvParams *p, guint32 max, GError **error)
{
    guint32 n;
    /* smallest element: empty field (4) + type (4) + int (4) */
    if (!sp_xdr_read_count(r, &n, max, 12, error))
        return false;
    for (guint32 i = 0; i < n; i++)
        if (!param_decode(r, p, error))
            return false;
    return true;
}
