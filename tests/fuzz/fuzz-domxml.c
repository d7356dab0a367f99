/*
 * fuzz-domxml.c - libFuzzer target for the domain XML parser
 * (vmm/libvirt/domxml.c): clients send this XML in DEFINE_XML / CREATE_XML.
 * Whatever parses must format, and the formatted XML must parse again to
 * the same text (format -> parse -> format is the identity).
 */
#include <stdint.h>
#include <string.h>

#include "vmm/libvirt/domxml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *xml = g_strndup((const char *)data, size);
    g_autoptr(SpDomXml) d = sp_domxml_parse(xml, NULL);
    if (!d)
        return 0;
    g_autofree char *out = sp_domxml_format(d, 3);
    g_autoptr(SpDomXml) again = sp_domxml_parse(out, NULL);
    if (!again)
        __builtin_trap();
    g_autofree char *out2 = sp_domxml_format(again, 3);
    if (strcmp(out, out2) != 0)
        __builtin_trap();
    return 0;
}
