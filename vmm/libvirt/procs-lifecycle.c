/* SPDX-License-Identifier: MIT */
/*
 * procs-lifecycle.c - the mutating domain procedures: define, undefine,
 * create from XML (transient), start, destroy, shutdown.
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

static bool proc_shutdown(SpLvSession *s, SpXdrReader *args, GByteArray *ret, GError **error)
{
    guint8 uuid[16];
    guint32 flags;
    const SpLvBackendOps *ops = s->backend->ops;
    return lc_dom_args(s, args, false, uuid, &flags, error) &&
           need(ops->domain_shutdown != NULL, "virDomainShutdown", error) &&
           ops->domain_shutdown(s->backend->opaque, uuid, error);
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
    {SP_LV_PROC_DOMAIN_UNDEFINE, "virDomainUndefine", true, false, proc_undefine},
    {SP_LV_PROC_DOMAIN_UNDEFINE_FLAGS, "virDomainUndefineFlags", true, false, proc_undefine_flags},
    {SP_LV_PROC_DOMAIN_CREATE_XML, "virDomainCreateXML", true, false, proc_create_xml},
    {SP_LV_PROC_DOMAIN_DEFINE_XML, "virDomainDefineXML", true, false, proc_define_xml},
    {SP_LV_PROC_DOMAIN_DEFINE_XML_FLAGS, "virDomainDefineXMLFlags", true, false,
     proc_define_xml_flags},
};
const gsize sp_lv_procs_lifecycle_len = G_N_ELEMENTS(sp_lv_procs_lifecycle);
