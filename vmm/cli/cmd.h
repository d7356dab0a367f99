/* SPDX-License-Identifier: MIT */
/* cmd.h - the `samepage` CLI's subcommands; each returns the process exit code. */
#ifndef SAMEPAGE_VMM_CMD_H
#define SAMEPAGE_VMM_CMD_H

int sp_cmd_run(int argc, char **argv);

/* Clients of a running samepaged (cmd-list.c, cmd-lifecycle.c, cmd-stats.c,
 * cmd-console.c): exit 0 ok, 1 failure, 2 usage error. */
int sp_cmd_list(int argc, char **argv);
int sp_cmd_define(int argc, char **argv);
int sp_cmd_undefine(int argc, char **argv);
int sp_cmd_start(int argc, char **argv);
int sp_cmd_stop(int argc, char **argv);
int sp_cmd_destroy(int argc, char **argv);
int sp_cmd_suspend(int argc, char **argv);
int sp_cmd_resume(int argc, char **argv);
int sp_cmd_reboot(int argc, char **argv);
int sp_cmd_numatune(int argc, char **argv);
int sp_cmd_shutdown_all(int argc, char **argv);
int sp_cmd_stats(int argc, char **argv);
int sp_cmd_console(int argc, char **argv);
int sp_cmd_clone(int argc, char **argv); /* cmd-clone.c */
int sp_cmd_top(int argc, char **argv);   /* cmd-top.c */

#endif
