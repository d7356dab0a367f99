/* SPDX-License-Identifier: MIT */
/*
 * run-status.h - `samepage run`'s status lines, from a snapshot of its
 * figures (vmm/metrics/snapshot.h), walking the tables of figures.h:
 *
 *   [status] NAME STATE SECONDSs <guest figures> | <sharing figures>[ | <clone figures>]
 *   [engine] <node figures with a status label>
 *   [group ID] <group figures with a status label>
 *
 * (clone figures only for a VM in a clone family; bytes in MiB), or with
 * --json one JSON object per line: {"vm": NAME, "state": STATE, <every VM
 * figure>}, {"engine": {<every node figure>}}, {"clone_group": {<every
 * group figure>}} (docs/cli.md).  Pure functions of the snapshot.
 */
#ifndef SAMEPAGE_VMM_CLI_RUN_STATUS_H
#define SAMEPAGE_VMM_CLI_RUN_STATUS_H

#include "vmm/metrics/snapshot.h"

/* Append every status line of s (text, or JSON lines) to out. */
void sp_run_status(GString *out, const SpFigSnapshot *s, bool json);

#endif
