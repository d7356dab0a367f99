/* SPDX-License-Identifier: MIT */
/*
 * id-list.h - lists of CPU or node ids in libvirt's set syntax, "0-3,5,^2":
 * ranges and single ids, ^N excludes one.  Used by numa= of a VM spec and
 * by the domain XML's cpuset and nodeset attributes.  Stateless.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

/* The ids of `text`, ascending and unique, each below `limit`, appended
 * to `ids` (guint); an empty result or a malformed list is an error
 * (G_OPTION_ERROR_BAD_VALUE) quoting the text. */
bool sp_id_list_parse(const char *text, guint limit, GArray *ids, GError **error);
