/* SPDX-License-Identifier: MIT */
/* main.c - the `samepage` command: dispatch to subcommands. */
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include <glib.h>
#include "vmm/cli/cmd.h"

typedef struct SpCommand {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} SpCommand;

static const SpCommand commands[] = {
    {"run", sp_cmd_run, "run VMs in the foreground (the embedded default)"},
    {"list", sp_cmd_list, "list samepaged's VMs (id, name, state)"},
    {"define", sp_cmd_define, "define a VM in samepaged from a domain XML file"},
    {"undefine", sp_cmd_undefine, "remove a VM's definition from samepaged"},
    {"start", sp_cmd_start, "start a defined VM"},
    {"stop", sp_cmd_stop, "shut a running VM down and wait until it is off"},
    {"destroy", sp_cmd_destroy, "stop a running VM at once"},
    {"suspend", sp_cmd_suspend, "suspend a running VM (paused)"},
    {"resume", sp_cmd_resume, "resume a suspended VM"},
    {"reboot", sp_cmd_reboot, "reboot a running VM (a new VM process, the same id)"},
    {"numatune", sp_cmd_numatune, "show or change a VM's NUMA memory policy (moves it live)"},
    {"shutdown-all", sp_cmd_shutdown_all, "stop every running VM of samepaged (host shutdown)"},
    {"clone", sp_cmd_clone, "clone a running VM into N running children"},
    {"stats", sp_cmd_stats, "memory and sharing statistics of VMs and of the host"},
    {"top", sp_cmd_top, "a live full-screen view of the VMs and the sharing engine"},
    {"console", sp_cmd_console, "print (or --follow) a VM's console log"},
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: samepage COMMAND [OPTIONS]\n"
               "\n"
               "samepage is a KVM virtual machine monitor that shares identical guest memory\n"
               "across VMs from the VMM side.\n"
               "\n"
               "Commands:\n");
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n"
               "Run 'samepage COMMAND --help' for the options of a command.  The commands\n"
               "after 'run' manage a running samepaged (see docs/cli.md); they take\n"
               "--connect PATH (default /run/samepage/libvirt-sock) and --readonly.\n"
               "Options: -h, --help  show this help;  --version  show the version\n");
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("samepage %s\n", PACKAGE_VERSION);
        return 0;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "samepage: unknown command '%s' (see samepage --help)\n", argv[1]);
    return 2;
}
