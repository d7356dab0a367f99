/* SPDX-License-Identifier: MIT */
/*
 * procs-connect.c - connection setup and teardown, authentication, feature
 * probes, type/version/hostname (libvirt-wire.md 2.1).
 *
 * AUTH_LIST offers only REMOTE_AUTH_NONE: access control is the socket's
 * file mode plus the peer-credential check in server.c.  CONNECT_OPEN
 * accepts the samepage driver name (and qemu:///..., so tools whose default
 * URI names qemu still work); VIR_CONNECT_RO makes the session read-only for
 * its lifetime.  All of these run on the protocol thread
 * (sp_lv_proc_is_session): they touch the connection's own state, never
 * the backend.
 */
#include <string.h>

#include "vmm/libvirt/procs.h"

/* What we claim as the daemon's libvirt protocol level (virsh "Running
 * against daemon"): the protocol of libvirt 9.0.0. */
#define SP_LV_COMPAT_LIB_VERSION 9000000ull

static bool proc_auth_list(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    if (!sp_lv_args_end(args, error))
        return false;
    sp_xdr_write_u32(ret, 1);
    sp_xdr_write_i32(ret, 0); /* REMOTE_AUTH_NONE */
    return true;
}

static bool proc_supports_feature(SpLvSession *s, SpXdrReader *args, GByteArray *ret,
                                  GError **error)
{
    gint32 feature;
    if (!sp_xdr_read_i32(args, &feature, error) || !sp_lv_args_end(args, error))
        return false;
    bool yes = false;
    switch (feature) {
    case SP_LV_FEATURE_TYPED_PARAM_STRING:
    case SP_LV_FEATURE_REMOTE_CLOSE_CALLBACK:
    case SP_LV_FEATURE_REMOTE_EVENT_CALLBACK: /* events as CALLBACK_* (procs-events.c) */
        yes = true;
        break;
    case SP_LV_FEATURE_PROGRAM_KEEPALIVE:
        yes = true;
        s->keepalive = true;
        break;
    default:
        break;
    }
    sp_xdr_write_i32(ret, yes);
    return true;
}

static bool uri_is_ours(const char *name)
{
    if (!name || !*name)
        return true;
    return g_str_has_prefix(name, "samepage:") || g_str_has_prefix(name, "qemu:");
}

static bool proc_connect_open(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    g_autofree char *name = NULL;
    guint32 flags;
    if (!sp_xdr_read_opt_string(args, &name, SP_LV_STRING_MAX, error) ||
        !sp_xdr_read_u32(args, &flags, error) || !sp_lv_args_end(args, error))
        return false;
    if (s->opened) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_OPERATION_INVALID,
                    "requested operation is not valid: connection already open");
        return false;
    }
    if (!uri_is_ours(name)) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG,
                    "invalid argument: this is samepaged, it serves samepage:///system, "
                    "not '%s'",
                    name);
        return false;
    }
    if (flags & SP_LV_CONNECT_RO)
        s->readonly = true;
    s->opened = true;
    return true;
}

static bool proc_void(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    return sp_lv_args_end(args, error);
}

static bool proc_connect_close(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    if (!sp_lv_args_end(args, error))
        return false;
    s->opened = false;
    return true;
}

static bool proc_get_uri(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    if (!sp_lv_args_end(args, error))
        return false;
    sp_xdr_write_string(ret, "samepage:///system");
    return true;
}

static bool proc_get_type(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    if (!sp_lv_args_end(args, error))
        return false;
    sp_xdr_write_string(ret, s->cfg->hv_type);
    return true;
}

static bool proc_get_version(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    if (!sp_lv_args_end(args, error))
        return false;
    sp_xdr_write_u64(ret, s->cfg->hv_version);
    return true;
}

static bool proc_get_lib_version(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    if (!sp_lv_args_end(args, error))
        return false;
    sp_xdr_write_u64(ret, SP_LV_COMPAT_LIB_VERSION);
    return true;
}

static bool proc_get_hostname(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    if (!sp_lv_args_end(args, error))
        return false;
    sp_xdr_write_string(ret, g_get_host_name());
    return true;
}

const SpLvProc sp_lv_procs_connect[] = {
    {SP_LV_PROC_AUTH_LIST, "virConnectAuthList", false, true, proc_auth_list},
    {SP_LV_PROC_CONNECT_SUPPORTS_FEATURE, "virConnectSupportsFeature", false, true,
     proc_supports_feature},
    {SP_LV_PROC_CONNECT_OPEN, "virConnectOpen", false, true, proc_connect_open},
    {SP_LV_PROC_CONNECT_CLOSE, "virConnectClose", false, false, proc_connect_close},
    {SP_LV_PROC_CONNECT_GET_URI, "virConnectGetURI", false, false, proc_get_uri},
    {SP_LV_PROC_CONNECT_REGISTER_CLOSE_CALLBACK, "virConnectRegisterCloseCallback", false, false,
     proc_void},
    {SP_LV_PROC_CONNECT_UNREGISTER_CLOSE_CALLBACK, "virConnectUnregisterCloseCallback", false,
     false, proc_void},
    {SP_LV_PROC_CONNECT_GET_TYPE, "virConnectGetType", false, false, proc_get_type},
    {SP_LV_PROC_CONNECT_GET_VERSION, "virConnectGetVersion", false, false, proc_get_version},
    {SP_LV_PROC_CONNECT_GET_LIB_VERSION, "virConnectGetLibVersion", false, false,
     proc_get_lib_version},
    {SP_LV_PROC_CONNECT_GET_HOSTNAME, "virConnectGetHostname", false, false, proc_get_hostname},
};
const gsize sp_lv_procs_connect_len = G_N_ELEMENTS(sp_lv_procs_connect);
