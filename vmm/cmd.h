/* SPDX-License-Identifier: MIT */
/* cmd.h - the `samepage` CLI's subcommands; each returns the process exit code. */
#ifndef SAMEPAGE_VMM_CMD_H
#define SAMEPAGE_VMM_CMD_H

int sp_cmd_run(int argc, char **argv);

#endif
