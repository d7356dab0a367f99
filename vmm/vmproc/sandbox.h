/* SPDX-License-Identifier: MIT */
/*
 * sandbox.h - credentials and system-call filter of a VM process after its
 * setup (sandbox.c; the threat model is in docs/process-model.md).
 */
#ifndef SAMEPAGE_VMM_VMPROC_SANDBOX_H
#define SAMEPAGE_VMM_VMPROC_SANDBOX_H

#include <stdbool.h>
#include <sys/types.h>
#include <gio/gio.h>

#define SP_SANDBOX_ERROR (sp_sandbox_error_quark())
GQuark sp_sandbox_error_quark(void);

/* The uid and gid of `name`; refuses root. */
bool sp_sandbox_lookup_user(const char *name, uid_t *uid, gid_t *gid, GError **error);
/* Become uid:gid with no groups or capabilities, no_new_privs, not dumpable
 * (as a non-root caller: only no_new_privs and not dumpable). */
bool sp_sandbox_drop_privileges(uid_t uid, gid_t gid, GError **error);
/* Install the filter (log_only: log violations instead of killing, for
 * debugging with --seccomp=log). */
bool sp_sandbox_seccomp(bool log_only, GError **error);

#endif
