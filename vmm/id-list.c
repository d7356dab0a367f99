/* SPDX-License-Identifier: MIT */
/* id-list.c - lists of CPU or node ids in libvirt's set syntax (id-list.h). */
#include <string.h>

#include "vmm/id-list.h"

bool sp_id_list_parse(const char *s, guint max, GArray *ids, GError **error)
{
    g_autofree gboolean *set = g_new0(gboolean, max);
    g_auto(GStrv) parts = g_strsplit(s, ",", -1);
    bool any = false;
    for (char **p = parts; *p; p++) {
        g_autofree char *t = g_strstrip(g_strdup(*p));
        bool neg = t[0] == '^';
        const char *r = t + neg;
        const char *dash = strchr(r, '-');
        g_autofree char *lo_s = dash ? g_strndup(r, dash - r) : g_strdup(r);
        guint64 lo, hi;
        if (!g_ascii_string_to_unsigned(lo_s, 10, 0, max - 1, &lo, NULL) ||
            !g_ascii_string_to_unsigned(dash ? dash + 1 : lo_s, 10, lo, max - 1, &hi, NULL) ||
            (neg && dash)) {
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        "invalid CPU or node set '%s' (ranges of ids below %u, ^N excludes)", s,
                        max);
            return false;
        }
        for (guint64 i = lo; i <= hi; i++)
            set[i] = !neg;
        any |= !neg;
    }
    for (guint i = 0; i < max; i++)
        if (set[i])
            g_array_append_val(ids, i);
    if (!any || ids->len == 0) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "CPU or node set '%s' is empty", s);
        return false;
    }
    return true;
}
