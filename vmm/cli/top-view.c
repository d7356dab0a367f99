/* SPDX-License-Identifier: MIT */
/*
 * top-view.c - the ncurses view of `samepage top` (top-view.h).
 *
 * State: the last snapshot shown (a reference), a ring of the last
 * TOP_HISTORY saved-bytes figures, the sort column and direction.  Every
 * draw starts from an erased screen and clips each line to the width, so
 * a resize only needs the next draw.  Single-threaded.
 */
#include "vmm/cli/top-view.h"

#include <curses.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib-unix.h>

#define TOP_HISTORY 64

struct SpTopView {
    SCREEN *screen;              /* ncurses' terminal */
    char *source;                /* what is shown: "samepaged at PATH", "samepage run" */
    SpFigSnapshot *snap;         /* the last snapshot, or NULL */
    double history[TOP_HISTORY]; /* saved bytes, oldest first once full */
    guint nhistory;              /* samples in history (<= TOP_HISTORY) */
    int sort;                    /* 0 name, 1 state, 2 + k: the k-th VM column */
    bool reverse;                /* sort ascending instead of descending (name: descending) */
    bool utf8;                   /* the terminal takes UTF-8 (block characters) */
    guint interval_ms;           /* refresh period */
    SpTopFetchFn fetch;          /* where snapshots come from */
    SpTopDoneFn done;            /* told when the view ends */
    void *opaque;                /* their argument */
    guint watch, timer;          /* stdin watch and refresh timer, 0: none */
    GError *error;               /* the fetch error that ended the view */
    bool ended;
};

/* The VM figures with a top column, in table order. */
static size_t top_columns(size_t *idx, size_t max)
{
    size_t n, k = 0;
    const SpFigure *t = sp_fig_table(SP_FIG_VM, &n);
    for (size_t i = 0; i < n && k < max; i++)
        if (t[i].top)
            idx[k++] = i;
    return k;
}

SpTopView *sp_top_view_new(const char *source, GError **error)
{
    const char *term = g_getenv("TERM");
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO) || !term || !*term) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "the top view needs a terminal (standard input and output, and TERM)");
        return NULL;
    }
    SCREEN *scr = newterm(NULL, stdout, stdin);
    if (!scr) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "cannot drive the terminal '%s' (ncurses)", term);
        return NULL;
    }
    set_term(scr);
    cbreak();
    noecho();
    nodelay(stdscr, TRUE);
    keypad(stdscr, TRUE);
    curs_set(0);
    SpTopView *v = g_new0(SpTopView, 1);
    v->screen = scr;
    v->source = g_strdup(source);
    const char *charset = NULL;
    v->utf8 = g_get_charset(&charset);
    size_t col[32], ncol = top_columns(col, 32), merged = 0; /* sorted by merged pages */
    sp_fig_find(SP_FIG_VM, "merged_pages", &merged);
    for (size_t k = 0; k < ncol; k++)
        if (col[k] == merged)
            v->sort = 2 + (int)k;
    return v;
}

void sp_top_view_free(SpTopView *v)
{
    if (!v)
        return;
    if (v->watch)
        g_source_remove(v->watch);
    if (v->timer)
        g_source_remove(v->timer);
    endwin();
    delscreen(v->screen);
    sp_fig_snapshot_unref(v->snap);
    g_clear_error(&v->error);
    g_free(v->source);
    g_free(v);
}

const GError *sp_top_view_error(const SpTopView *v)
{
    return v->error;
}

/* --- drawing --- */

static int top_row;

static void top_line(const char *text, int attr)
{
    if (top_row >= LINES)
        return;
    attron(attr);
    mvaddnstr(top_row, 0, text, COLS);
    attroff(attr);
    top_row++;
}

static double top_node(const SpFigSnapshot *s, const char *name)
{
    size_t i;
    const SpFigure *f = sp_fig_find(SP_FIG_NODE, name, &i);
    return f && s->has_node && s->node_have[i] ? sp_fig_double(f, s->node[i]) : 0;
}

/* The engine's figures with a top label, packed into lines of the width. */
static void top_draw_engine(const SpFigSnapshot *s)
{
    if (!s->has_node) {
        top_line("engine  (no sharing engine)", A_BOLD);
        return;
    }
    size_t n;
    const SpFigure *t = sp_fig_table(SP_FIG_NODE, &n);
    g_autoptr(GString) line = g_string_new("engine ");
    for (size_t i = 0; i < n; i++) {
        if (!t[i].top || !s->node_have[i])
            continue;
        g_autofree char *val = sp_fig_human(&t[i], s->node[i]);
        g_autofree char *field = g_strdup_printf("  %s %s", t[i].top, val);
        if (line->len + strlen(field) > (size_t)COLS && line->len > 7) {
            top_line(line->str, A_BOLD);
            g_string_assign(line, "       ");
        }
        g_string_append(line, field);
    }
    top_line(line->str, A_BOLD);
}

/* The saving over the last refreshes, one character per refresh. */
static void top_draw_history(const SpTopView *v)
{
    static const char *const blocks[] = {" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
    static const char ascii[] = " .:-=+*#%@";
    double max = 0;
    for (guint i = 0; i < v->nhistory; i++)
        max = MAX(max, v->history[i]);
    g_autoptr(GString) line = g_string_new("saved  ");
    for (guint i = 0; i < v->nhistory; i++) {
        double f = max > 0 ? v->history[i] / max : 0;
        if (v->utf8)
            g_string_append(line, blocks[(int)(f * 8 + 0.5)]);
        else
            g_string_append_c(line, ascii[(int)(f * 9 + 0.5)]);
    }
    g_string_append_printf(line, "  max %.1f MiB over the last %u refreshes", max / 1048576.0,
                           v->nhistory);
    top_line(line->str, A_NORMAL);
}

static void top_draw_groups(const SpFigSnapshot *s)
{
    size_t saved_i;
    const SpFigure *saved = sp_fig_find(SP_FIG_GROUP, "pages_saved", &saved_i);
    double pages = 0;
    for (guint k = 0; saved && k < s->groups->len; k++)
        pages += sp_fig_double(saved, ((SpFigValue *)s->groups->pdata[k])[saved_i]);
    g_autofree char *t = g_strdup_printf("clone groups %u  saved %.0f pages (%.1f MiB)",
                                         s->groups->len, pages, pages * 4096 / 1048576.0);
    top_line(t, A_NORMAL);
}

static const SpTopView *sort_view; /* for top_vm_cmp (single-threaded) */

static int top_vm_cmp(gconstpointer a, gconstpointer b)
{
    const SpFigVm *x = *(SpFigVm *const *)a, *y = *(SpFigVm *const *)b;
    int c;
    if (sort_view->sort == 0) {
        c = g_strcmp0(x->name, y->name);
    } else if (sort_view->sort == 1) {
        c = g_strcmp0(x->state, y->state);
    } else {
        size_t col[32];
        top_columns(col, 32);
        size_t i = col[sort_view->sort - 2];
        const SpFigure *f = &sp_fig_table(SP_FIG_VM, &(size_t){0})[i];
        double dx = x->has_figures ? sp_fig_double(f, x->v[i]) : -1;
        double dy = y->has_figures ? sp_fig_double(f, y->v[i]) : -1;
        c = dx < dy ? 1 : dx > dy ? -1 : g_strcmp0(x->name, y->name); /* biggest first */
    }
    return sort_view->reverse ? -c : c;
}

static void top_draw_vms(const SpTopView *v, const SpFigSnapshot *s)
{
    size_t col[32], ncol = top_columns(col, 32), n;
    const SpFigure *t = sp_fig_table(SP_FIG_VM, &n);
    int namew = 4;
    for (guint k = 0; k < s->vms->len; k++)
        namew = MAX(namew, (int)g_utf8_strlen(((SpFigVm *)s->vms->pdata[k])->name, -1));
    namew = MIN(namew, 32);
    /* header, the sort column highlighted */
    if (top_row < LINES) {
        move(top_row, 0);
        const char *names[2] = {"NAME", "STATE"};
        for (int c = 0; c < 2 + (int)ncol; c++) {
            g_autofree char *h =
                c == 0   ? g_strdup_printf("%-*s", namew, names[0])
                : c == 1 ? g_strdup_printf(" %-9s", names[1])
                         : g_strdup_printf(" %*s", t[col[c - 2]].top_width, t[col[c - 2]].top);
            attron(c == v->sort ? A_REVERSE : A_BOLD);
            addnstr(h, MAX(0, COLS - getcurx(stdscr)));
            attroff(c == v->sort ? A_REVERSE : A_BOLD);
        }
        top_row++;
    }
    g_autoptr(GPtrArray) rows = g_ptr_array_new();
    for (guint k = 0; k < s->vms->len; k++)
        g_ptr_array_add(rows, s->vms->pdata[k]);
    sort_view = v;
    g_ptr_array_sort(rows, top_vm_cmp);
    for (guint k = 0; k < rows->len; k++) {
        const SpFigVm *vm = rows->pdata[k];
        g_autoptr(GString) line = g_string_new(NULL);
        g_autofree char *name = g_utf8_substring(vm->name, 0, namew);
        g_string_append(line, name);
        for (int pad = (int)g_utf8_strlen(name, -1); pad < namew; pad++)
            g_string_append_c(line, ' ');
        g_string_append_printf(line, " %-9.9s", vm->state ? vm->state : "");
        for (size_t c = 0; c < ncol; c++) {
            size_t i = col[c];
            g_autofree char *val =
                vm->has_figures && vm->have[i] ? sp_fig_human(&t[i], vm->v[i]) : g_strdup("-");
            g_string_append_printf(line, " %*s", t[i].top_width, val);
        }
        top_line(line->str, A_NORMAL);
    }
    if (!rows->len)
        top_line("(no VMs)", A_NORMAL);
}

static void top_draw(SpTopView *v)
{
    erase();
    top_row = 0;
    g_autoptr(GDateTime) now = g_date_time_new_now_local();
    g_autofree char *clock = g_date_time_format(now, "%T");
    g_autofree char *title =
        g_strdup_printf("samepage top - %s - %s - every %.1fs   q quit  < > sort  r reverse",
                        v->source, clock, v->interval_ms / 1000.0);
    top_line(title, A_REVERSE);
    if (v->snap) {
        top_draw_engine(v->snap);
        top_draw_history(v);
        top_draw_groups(v->snap);
        top_row++;
        top_draw_vms(v, v->snap);
    }
    refresh();
}

/* --- the loop --- */

static void top_end(SpTopView *v)
{
    if (v->ended)
        return;
    v->ended = true;
    if (v->timer)
        g_source_remove(v->timer);
    if (v->watch)
        g_source_remove(v->watch);
    v->timer = v->watch = 0;
    v->done(v->opaque);
}

static void top_refresh(SpTopView *v)
{
    GError *err = NULL;
    SpFigSnapshot *s = v->fetch(v->opaque, &err);
    if (!s) {
        v->error = err;
        top_end(v);
        return;
    }
    sp_fig_snapshot_unref(v->snap);
    v->snap = s;
    if (v->nhistory == TOP_HISTORY) {
        memmove(v->history, v->history + 1, sizeof(v->history[0]) * (TOP_HISTORY - 1));
        v->nhistory--;
    }
    v->history[v->nhistory++] = top_node(s, "saved_bytes");
    top_draw(v);
}

/* The two sources below hide their own id while they run: top_end()
 * removes the others, and the running one ends by its return value. */
static gboolean top_on_timer(gpointer opaque)
{
    SpTopView *v = opaque;
    guint id = v->timer;
    v->timer = 0;
    top_refresh(v);
    if (v->ended)
        return G_SOURCE_REMOVE;
    v->timer = id;
    return G_SOURCE_CONTINUE;
}

/* Keys; false once the view ended. */
static bool top_keys(SpTopView *v)
{
    size_t col[32];
    int ncol = 2 + (int)top_columns(col, 32);
    int ch;
    bool redraw = false;
    while ((ch = getch()) != ERR) {
        switch (ch) {
        case 'q':
        case 'Q':
            top_end(v);
            return false;
        case '<':
        case KEY_LEFT:
            v->sort = (v->sort + ncol - 1) % ncol;
            redraw = true;
            break;
        case '>':
        case KEY_RIGHT:
            v->sort = (v->sort + 1) % ncol;
            redraw = true;
            break;
        case 'r':
            v->reverse = !v->reverse;
            redraw = true;
            break;
        case ' ':
            top_refresh(v);
            if (v->ended)
                return false;
            break;
        default: /* KEY_RESIZE and anything else: draw again */
            redraw = true;
        }
    }
    if (redraw)
        top_draw(v);
    return true;
}

static gboolean top_on_stdin(gint fd, GIOCondition cond, gpointer opaque)
{
    SpTopView *v = opaque;
    guint id = v->watch;
    v->watch = 0;
    if (cond & (G_IO_HUP | G_IO_ERR)) { /* the terminal went away */
        top_end(v);
        return G_SOURCE_REMOVE;
    }
    if (!top_keys(v))
        return G_SOURCE_REMOVE;
    v->watch = id;
    return G_SOURCE_CONTINUE;
}

void sp_top_view_run(SpTopView *v, guint interval_ms, SpTopFetchFn fetch, SpTopDoneFn done,
                     void *opaque)
{
    v->interval_ms = interval_ms;
    v->fetch = fetch;
    v->done = done;
    v->opaque = opaque;
    v->watch = g_unix_fd_add(STDIN_FILENO, G_IO_IN | G_IO_HUP | G_IO_ERR, top_on_stdin, v);
    v->timer = g_timeout_add(interval_ms, top_on_timer, v);
    top_refresh(v);
}
