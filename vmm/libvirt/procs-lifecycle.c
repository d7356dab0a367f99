/* SPDX-License-Identifier: MIT */
/*
 * procs-lifecycle.c - the mutating domain procedures: define, undefine,
 * create from XML (transient), start, destroy, shutdown, suspend, resume,
 * reboot, reset, autostart.
 *
 * Every entry of this table is marked mutating, so the dispatcher answers
 * VIR_ERR_OPERATION_DENIED on read-only connections before a handler runs.
 * Handlers read all their arguments first, then resolve the domain, then
 * call the backend: a malformed call never reaches the backend.
 */
#include "vmm/libvirt/procs.h"

static bool need(bool present, const char *api, GError **error)
{
    if (!present)
        return sp_lv_unsupported(api, error);
    return true;
}

/* Reads {dom} (+ flags) and returns the UUID of an existing domain. */
static bool lc_dom_args(SpLvSession *s, SpXdrReader *args, bool with_flags, guint8 uuid[16],
                        guint32 *flags, GError **error)
{
    gint32 id;
    SpLvDomainInfo d = {0};
    *flags = 0;
    if (!sp_lv_read_dom(args, NULL, uuid, &id, error) ||
        (with_flags && !sp_xdr_read_u32(args, flags, error)) || !sp_lv_args_end(args, error))
        return false;
    if (!sp_lv_domain_get(s, uuid, &d, error))
        return false;
    sp_lv_domain_info_clear(&d);
    return true;
}

static bool do_start(SpLvSession *s, SpXdrReader *args, GByteArray *ret, bool with_flags,
                     GError **error)
{
    guint8 uuid[16];
    guint32 flags;
    const SpLvBackendOps *ops = s->backend->ops;
    if (!lc_dom_args(s, args, with_flags, uuid, &flags, error) ||
        !need(ops->domain_start != NULL, "virDomainCreate", error) ||
        !ops->domain_start(s->backend->opaque, uuid, flags, error))
        return false;
    if (with_flags) {
        /* CREATE_WITH_FLAGS returns the domain with its new id */
        SpLvDomainInfo d = {0};
        if (!sp_lv_domain_get(s, uuid, &d, error))
            return false;
        sp_lv_write_dom(ret, &d);
        sp_lv_domain_info_clear(&d);
    }
    return true;
}

static bool proc_create(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    return do_start(s, args, ret, false, error);
}

static bool proc_create_with_flags(SpLvSession *s, SpXdrReader *args, GByteArray *ret,
                                   GError **error)
{
    return do_start(s, args, ret, true, error);
}

static bool do_destroy(SpLvSession *s, SpXdrReader *args, bool with_flags, GError **error)
{
    guint8 uuid[16];
    guint32 flags;
    const SpLvBackendOps *ops = s->backend->ops;
    return lc_dom_args(s, args, with_flags, uuid, &flags, error) &&
           need(ops->domain_destroy != NULL, "virDomainDestroy", error) &&
           ops->domain_destroy(s->backend->opaque, uuid, flags, error);
}

static bool proc_destroy(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    return do_destroy(s, args, false, error);
}

static bool proc_destroy_flags(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    return do_destroy(s, args, true, error);
}

typedef bool (*DomOp)(void *opaque, const guint8 uuid[16], GError **error);

/* {dom} or {dom, u32 flags} -> op(uuid).  Flags select a shutdown or reboot
 * method (ACPI, guest agent, ...): samepage stops or resets the guest
 * itself and takes none. */
static bool do_dom_op(SpLvSession *s, SpXdrReader *args, bool with_flags, DomOp op, const char *api,
                      GError **error)
{
    guint8 uuid[16];
    guint32 flags;
    if (!lc_dom_args(s, args, with_flags, uuid, &flags, error) || !need(op != NULL, api, error))
        return false;
    if (flags) {
        g_set_error(error, SP_LV_ERROR, SP_LV_ERR_INVALID_ARG,
                    "invalid argument: %s: samepage has no shutdown or reboot methods to "
                    "choose from (flags 0x%x)",
                    api, flags);
        return false;
    }
    return op(s->backend->opaque, uuid, error);
}

static bool proc_shutdown(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    return do_dom_op(s, args, false, s->backend->ops->domain_shutdown, "virDomainShutdown", error);
}

static bool proc_shutdown_flags(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    return do_dom_op(s, args, true, s->backend->ops->domain_shutdown, "virDomainShutdownFlags",
                     error);
}

static bool proc_suspend(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    return do_dom_op(s, args, false, s->backend->ops->domain_suspend, "virDomainSuspend", error);
}

static bool proc_resume(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    return do_dom_op(s, args, false, s->backend->ops->domain_resume, "virDomainResume", error);
}

static bool proc_reboot(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    return do_dom_op(s, args, true, s->backend->ops->domain_reboot, "virDomainReboot", error);
}

static bool proc_reset(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    return do_dom_op(s, args, true, s->backend->ops->domain_reboot, "virDomainReset", error);
}

/* {dom, int autostart} */
static bool proc_set_autostart(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    guint8 uuid[16];
    gint32 id, on;
    SpLvDomainInfo d = {0};
    const SpLvBackendOps *ops = s->backend->ops;
    if (!sp_lv_read_dom(args, NULL, uuid, &id, error) || !sp_xdr_read_i32(args, &on, error) ||
        !sp_lv_args_end(args, error) || !sp_lv_domain_get(s, uuid, &d, error))
        return false;
    sp_lv_domain_info_clear(&d);
    return need(ops->domain_set_autostart != NULL, "virDomainSetAutostart", error) &&
           ops->domain_set_autostart(s->backend->opaque, uuid, on != 0, error);
}

static bool do_undefine(SpLvSession *s, SpXdrReader *args, bool with_flags, GError **error)
{
    guint8 uuid[16];
    guint32 flags;
    const SpLvBackendOps *ops = s->backend->ops;
    return lc_dom_args(s, args, with_flags, uuid, &flags, error) &&
           need(ops->domain_undefine != NULL, "virDomainUndefine", error) &&
           ops->domain_undefine(s->backend->opaque, uuid, flags, error);
}

static bool proc_undefine(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    return do_undefine(s, args, false, error);
}

static bool proc_undefine_flags(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    return do_undefine(s, args, true, error);
}

typedef bool (*XmlOp)(void *opaque, const char *xml, guint32 flags, SpLvDomainInfo *out,
                      GError **error);

static bool do_xml(SpLvSession *s, SpXdrReader *args, GByteArray *ret, bool with_flags, XmlOp op,
                   const char *api, GError **error)
{
    g_autofree char *xml = NULL;
    guint32 flags = 0;
    SpLvDomainInfo d = {0};
    if (!sp_xdr_read_string(args, &xml, SP_LV_STRING_MAX, error) ||
        (with_flags && !sp_xdr_read_u32(args, &flags, error)) || !sp_lv_args_end(args, error))
        return false;
    if (!op)
        return sp_lv_unsupported(api, error);
    if (!op(s->backend->opaque, xml, flags, &d, error)) {
        sp_lv_domain_info_clear(&d);
        return false;
    }
    sp_lv_write_dom(ret, &d);
    sp_lv_domain_info_clear(&d);
    return true;
}

static bool proc_create_xml(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    return do_xml(s, args, ret, true, s->backend->ops->domain_create_xml, "virDomainCreateXML",
                  error);
}

static bool proc_define_xml(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    return do_xml(s, args, ret, false, s->backend->ops->domain_define_xml, "virDomainDefineXML",
                  error);
}

static bool proc_define_xml_flags(SpLvSession *s, SpXdrReader *args, GByteArray *ret,
                                  GError **error)
{
    return do_xml(s, args, ret, true, s->backend->ops->domain_define_xml, "virDomainDefineXMLFlags",
                  error);
}

const SpLvProc sp_lv_procs_lifecycle[] = {
    {SP_LV_PROC_DOMAIN_CREATE, "virDomainCreate", true, false, proc_create},
    {SP_LV_PROC_DOMAIN_CREATE_WITH_FLAGS, "virDomainCreateWithFlags", true, false,
     proc_create_with_flags},
    {SP_LV_PROC_DOMAIN_DESTROY, "virDomainDestroy", true, false, proc_destroy},
    {SP_LV_PROC_DOMAIN_DESTROY_FLAGS, "virDomainDestroyFlags", true, false, proc_destroy_flags},
    {SP_LV_PROC_DOMAIN_SHUTDOWN, "virDomainShutdown", true, false, proc_shutdown},
    {SP_LV_PROC_DOMAIN_SHUTDOWN_FLAGS, "virDomainShutdownFlags", true, false, proc_shutdown_flags},
    {SP_LV_PROC_DOMAIN_SUSPEND, "virDomainSuspend", true, false, proc_suspend},
    {SP_LV_PROC_DOMAIN_RESUME, "virDomainResume", true, false, proc_resume},
    {SP_LV_PROC_DOMAIN_REBOOT, "virDomainReboot", true, false, proc_reboot},
    {SP_LV_PROC_DOMAIN_RESET, "virDomainReset", true, false, proc_reset},
    {SP_LV_PROC_DOMAIN_SET_AUTOSTART, "virDomainSetAutostart", true, false, proc_set_autostart},
    {SP_LV_PROC_DOMAIN_UNDEFINE, "virDomainUndefine", true, false, proc_undefine},
    {SP_LV_PROC_DOMAIN_UNDEFINE_FLAGS, "virDomainUndefineFlags", true, false, proc_undefine_flags},
    {SP_LV_PROC_DOMAIN_CREATE_XML, "virDomainCreateXML", true, false, proc_create_xml},
    {SP_LV_PROC_DOMAIN_DEFINE_XML, "virDomainDefineXML", true, false, proc_define_xml},
    {SP_LV_PROC_DOMAIN_DEFINE_XML_FLAGS, "virDomainDefineXMLFlags", true, false,
     proc_define_xml_flags},
};
const gsize sp_lv_procs_lifecycle_len = G_N_ELEMENTS(sp_lv_procs_lifecycle);
