/* SPDX-License-Identifier: MIT */
/* run-logs.c - `samepage run`'s per-VM log files (run-logs.h). */
#include "vmm/cli/run-logs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <glib/gstdio.h>

struct SpRunLogs {
    GMutex lock;       /* protects everything below */
    char *dir;         /* the directory, NULL until made (when not given) */
    bool given;        /* dir came from --log-dir */
    bool failed;       /* a write failed: drop the rest */
    GHashTable *files; /* VM name -> FILE* */
};

static void logs_close(gpointer f)
{
    fclose(f);
}

SpRunLogs *sp_run_logs_new(const char *dir)
{
    SpRunLogs *l = g_new0(SpRunLogs, 1);
    g_mutex_init(&l->lock);
    l->dir = g_strdup(dir);
    l->given = dir != NULL;
    l->files = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, logs_close);
    return l;
}

void sp_run_logs_free(SpRunLogs *l)
{
    if (!l)
        return;
    g_hash_table_unref(l->files);
    g_mutex_clear(&l->lock);
    g_free(l->dir);
    g_free(l);
}

char *sp_run_logs_dir(SpRunLogs *l)
{
    g_mutex_lock(&l->lock);
    char *d = g_hash_table_size(l->files) || l->given ? g_strdup(l->dir) : NULL;
    g_mutex_unlock(&l->lock);
    return d;
}

/* l->lock held: the VM's file, opened (and the directory made) if needed. */
static FILE *logs_file(SpRunLogs *l, const char *vm, char **note, GError **error)
{
    FILE *f = g_hash_table_lookup(l->files, vm);
    if (f)
        return f;
    bool made = false;
    if (!l->dir) {
        l->dir = g_dir_make_tmp("samepage-run-XXXXXX", error);
        if (!l->dir)
            return NULL;
        made = true;
    } else if (g_mkdir_with_parents(l->dir, 0755) < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", l->dir,
                    g_strerror(errno));
        return NULL;
    }
    g_autofree char *file = g_strconcat(vm, ".log", NULL);
    g_autofree char *path = g_build_filename(l->dir, file, NULL);
    f = fopen(path, "a");
    if (!f) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", path,
                    g_strerror(errno));
        return NULL;
    }
    setvbuf(f, NULL, _IOLBF, 0);
    g_hash_table_insert(l->files, g_strdup(vm), f);
    if (made)
        *note = g_strdup_printf("samepage: lines not shown here (memload's results) go to "
                                "%s/NAME.log",
                                l->dir);
    return f;
}

char *sp_run_logs_write(SpRunLogs *l, const char *vm, const char *line)
{
    char *note = NULL;
    g_autoptr(GError) error = NULL;
    g_mutex_lock(&l->lock);
    if (!l->failed) {
        FILE *f = logs_file(l, vm, &note, &error);
        if (f && fprintf(f, "%s\n", line) < 0)
            g_set_error(&error, G_FILE_ERROR, g_file_error_from_errno(errno),
                        "writing the log of %s: %s", vm, g_strerror(errno));
        if (error) {
            l->failed = true;
            g_free(note);
            note = g_strdup_printf("samepage: VM logs stopped: %s", error->message);
        }
    }
    g_mutex_unlock(&l->lock);
    return note;
}
