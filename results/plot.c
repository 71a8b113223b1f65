/* results/plot.c — figures: every figure is a data file (base.dat) and a
 * standalone gnuplot script (base.gp) that draws base.png/.pdf/.svg from
 * it, so that a figure can be restyled for a paper without re-running
 * anything; when gnuplot is installed the script is also run, through a
 * pipe to gnuplot's standard input.
 *
 * The script names the data and the picture by their file names only, with
 * no folder: `gnuplot base.gp` run in the figure's folder redraws it, and the
 * three files can be moved together. To render, gnuplot is started here and
 * told to `cd` into that folder before it loads the script. */
#define _GNU_SOURCE 1 /* posix_spawn file actions, pthread_sigmask */
#include "results/results.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *const kind_names[] = {"pareto", "line", "heatmap", "bars"};

const char *qs_plot_kind_name(qs_plot_kind_t k)
{
    return (unsigned)k < sizeof kind_names / sizeof *kind_names ? kind_names[k] : "unknown";
}

int qs_plot_kind_parse(const char *name, qs_plot_kind_t *k)
{
    for (size_t i = 0; name && i < sizeof kind_names / sizeof *kind_names; i++)
        if (strcmp(name, kind_names[i]) == 0) {
            *k = (qs_plot_kind_t)i;
            return QS_OK;
        }
    return qs_error(QS_ERR_INVALID, "plot kind '%s': expected pareto, line, heatmap or bars", name ? name : "");
}

/* ---- finding gnuplot ----------------------------------------------------------------------------- */

static const char *gnuplot_program(void)
{
    const char *p = getenv("QUASAR_GNUPLOT");
    return p && *p ? p : "gnuplot";
}

static bool executable(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

bool qs_res_have_gnuplot(void)
{
    const char *prog = gnuplot_program();
    if (strchr(prog, '/'))
        return executable(prog);
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    size_t np = strlen(prog);
    for (const char *s = path;;) {
        const char *e = strchr(s, ':');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        char *cand = malloc(n + np + 3);
        if (cand) {
            snprintf(cand, n + np + 3, "%.*s/%s", (int)n, n ? s : ".", prog);
            bool ok = executable(cand);
            free(cand);
            if (ok)
                return true;
        }
        if (!e)
            return false;
        s = e + 1;
    }
}

/* ---- the figure's data --------------------------------------------------------------------------- */

typedef struct {
    char *name;   /* "target=asic-45nm", or the y column for a single series */
    int *rows;    /* rows of the filtered table, in table order */
    int nrows;
} series_t;

typedef struct {
    const qs_res_table_t *t; /* filtered, status=ok */
    int cx, cy, cz, cerr;    /* column indices (-1: none) */
    series_t *s;
    int ns;
    char **cats;             /* categories of x (categorical axes) */
    int ncats;
    char **ycats;            /* categories of y (heatmaps) */
    int nycats;
} fig_t;

static void fig_free(fig_t *f)
{
    for (int i = 0; i < f->ns; i++) {
        free(f->s[i].name);
        free(f->s[i].rows);
    }
    free(f->s);
    free(f->cats);
    free(f->ycats);
}

static void col_list(const qs_res_table_t *t, char *buf, size_t n)
{
    size_t used = 0;
    snprintf(buf, n, "none");
    for (int c = 0; c < t->ncols; c++) {
        int w = snprintf(buf + used, n - used, "%s%s", c ? ", " : "", t->col[c]);
        if (w < 0 || (size_t)w >= n - used)
            return;
        used += (size_t)w;
    }
}

static int need_col(const qs_res_table_t *t, const char *what, const char *name, int *c)
{
    if (!name || !*name)
        return qs_error(QS_ERR_INVALID, "plot: no %s column given", what);
    if ((*c = qs_res_table_col(t, name)) < 0) {
        char list[768];
        col_list(t, list, sizeof list);
        return qs_error(QS_ERR_INVALID, "plot: unknown %s column '%s' (columns: %s)", what, name, list);
    }
    return QS_OK;
}

/* One series per value of group_by (in order of first appearance). */
static int make_series(fig_t *f, const char *group_by, const char *yname)
{
    const qs_res_table_t *t = f->t;
    int gc = group_by ? qs_res_table_col(t, group_by) : -1;
    f->s = calloc((size_t)t->nrows + 1, sizeof *f->s);
    if (!f->s)
        return qs_error(QS_ERR_NOMEM, "out of memory");
    for (int r = 0; r < t->nrows; r++) {
        const char *g = gc >= 0 ? qs_res_table_get(t, r, gc) : NULL;
        int k = 0;
        if (gc >= 0) {
            while (k < f->ns) {
                const char *h = qs_res_table_get(t, f->s[k].rows[0], gc);
                if ((g == h) || (g && h && strcmp(g, h) == 0))
                    break;
                k++;
            }
        } else if (f->ns == 0) {
            k = 0;
        }
        series_t *s = &f->s[k];
        if (k == f->ns) {
            size_t n = (group_by ? strlen(group_by) : 0) + (g ? strlen(g) : 1) + strlen(yname) + 4;
            if (!(s->name = malloc(n)) || !(s->rows = malloc((size_t)t->nrows * sizeof *s->rows)))
                return qs_error(QS_ERR_NOMEM, "out of memory");
            if (gc >= 0)
                snprintf(s->name, n, "%s=%s", group_by, g ? g : "-");
            else
                snprintf(s->name, n, "%s", yname);
            f->ns++;
        }
        s->rows[s->nrows++] = r;
    }
    return QS_OK;
}

static bool column_numeric(const qs_res_table_t *t, int c)
{
    bool any = false;
    for (int r = 0; r < t->nrows; r++) {
        const char *s = qs_res_table_get(t, r, c);
        if (!s)
            continue;
        if (isnan(qs_res_table_num(t, r, c)) && strcmp(s, "nan") != 0)
            return false;
        any = true;
    }
    return any;
}

/* qsort has no context argument: the table and column it sorts rows by */
static _Thread_local const qs_res_table_t *tl_table;
static _Thread_local int tl_col;

/* rows by the number in column tl_col, then by row (a stable order) */
static int by_x_then_row(const void *a, const void *b)
{
    double u = qs_res_table_num(tl_table, *(const int *)a, tl_col);
    double v = qs_res_table_num(tl_table, *(const int *)b, tl_col);
    if (u != v)
        return u < v ? -1 : 1;
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

/* The categories of column c among the table's rows: numerically sorted when
 * every present cell is a number, else in order of first appearance. Cells
 * point into the table. */
static int categories(const qs_res_table_t *t, int c, char ***out, int *n)
{
    int *rows = malloc(((size_t)t->nrows + 1) * sizeof *rows);
    char **cats = malloc(((size_t)t->nrows + 1) * sizeof *cats);
    if (!rows || !cats) {
        free(rows);
        free(cats);
        return qs_error(QS_ERR_NOMEM, "out of memory");
    }
    int m = 0;
    for (int r = 0; r < t->nrows; r++)
        if (qs_res_table_get(t, r, c))
            rows[m++] = r;
    bool numeric = column_numeric(t, c);
    if (numeric) {
        tl_table = t;
        tl_col = c;
        qsort(rows, (size_t)m, sizeof *rows, by_x_then_row);
    }
    int k = 0;
    for (int i = 0; i < m; i++) {
        const char *s = qs_res_table_get(t, rows[i], c);
        bool seen = false;
        for (int j = 0; j < k && !seen; j++)
            seen = strcmp(cats[j], s) == 0 ||
                   (numeric && qs_res_table_num(t, rows[i], c) == strtod(cats[j], NULL));
        if (!seen)
            cats[k++] = (char *)s;
    }
    free(rows);
    *out = cats;
    *n = k;
    return QS_OK;
}

static int cat_index(char **cats, int n, const char *s, bool numeric)
{
    if (!s)
        return -1;
    for (int i = 0; i < n; i++)
        if (strcmp(cats[i], s) == 0)
            return i;
    if (numeric) {
        double v = strtod(s, NULL);
        for (int i = 0; i < n; i++)
            if (strtod(cats[i], NULL) == v)
                return i;
    }
    return -1;
}

/* ---- gnuplot text ----------------------------------------------------------------------------------- */

/* A gnuplot single-quoted string: no escapes but '' for a quote; a line
 * break would end the command, so it becomes a space. */
static void gp_str(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("''", f);
        else if (*s == '\n' || *s == '\r')
            fputc(' ', f);
        else
            fputc(*s, f);
    }
    fputc('\'', f);
}

/* a category label as one column of base.dat: double quotes, none inside */
static void dat_label(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++)
        fputc(*s == '"' ? '\'' : (*s == '\n' || *s == '\r') ? ' ' : *s, f);
    fputc('"', f);
}

/* "energy_j [J]": the name and the registry's unit, if any */
static void axis_label(char *buf, size_t n, const char *given, const char *col)
{
    if (given) {
        snprintf(buf, n, "%s", given);
        return;
    }
    const qs_metric_t *m = qs_metric_find(col);
    size_t len = strlen(col);
    if (!m && len > 4 && strcmp(col + len - 4, "_std") == 0) {
        char base[256];
        snprintf(base, sizeof base, "%.*s", (int)(len - 4), col);
        m = qs_metric_find(base);
    }
    if (m && m->unit && *m->unit)
        snprintf(buf, n, "%s [%s]", col, m->unit);
    else
        snprintf(buf, n, "%s", col);
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* The shortest text that reads back as v: the .dat is meant to be read and
 * edited by people, and 0.59999999999999998 helps no one. */
static void num(FILE *f, double v)
{
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    fputs(buf, f);
}

static void set_tics(FILE *g, const char *axis, char **cats, int n)
{
    fprintf(g, "set %stics (", axis);
    for (int i = 0; i < n; i++) {
        if (i)
            fputs(", ", g);
        gp_str(g, cats[i]);
        fprintf(g, " %d", i);
    }
    fputs(")\n", g);
}

static void gp_header(FILE *g, const qs_plot_t *p, const char *name, const char *fmt, const char *title,
                      const char *xl, const char *yl)
{
    fprintf(g, "# %s.gp — written by quasar; draws %s.%s from %s.dat.\n", name, name, fmt, name);
    fprintf(g, "# Run it in this folder (gnuplot %s.gp) to redraw the figure after editing.\n", name);
    fprintf(g, "# kind: %s\n", qs_plot_kind_name(p->kind));
    if (strcmp(fmt, "pdf") == 0)
        fputs("set terminal pdfcairo size 7in,4.9in noenhanced font 'sans,10'\n", g);
    else if (strcmp(fmt, "svg") == 0)
        fputs("set terminal svg size 1000,700 noenhanced font 'sans,14' background '#ffffff'\n", g);
    else /* pngcairo draws better; plain png (libgd) is there when gnuplot lacks cairo */
        fputs("if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
              "    set terminal pngcairo size 1000,700 noenhanced font 'sans,11'\n"
              "} else {\n"
              "    set terminal png size 1000,700 noenhanced\n"
              "}\n",
              g);
    fprintf(g, "set output '%s.%s'\n", name, fmt);
    fputs("set title ", g);
    gp_str(g, title);
    fputs("\nset xlabel ", g);
    gp_str(g, xl);
    fputs("\nset ylabel ", g);
    gp_str(g, yl);
    /* %g rather than gnuplot's default: energies of 1e-7 J read as 1e-07, not 0.0000001 */
    fputs("\nset grid\nset key below\nset format x '%g'\nset format y '%g'\n", g);
}

/* ---- the four kinds ---------------------------------------------------------------------------- */

static int write_pareto(fig_t *f, const qs_plot_t *p, FILE *d, FILE *g, const char *name)
{
    const qs_res_table_t *t = f->t;
    const qs_metric_t *mx = qs_metric_find(p->x), *my = qs_metric_find(p->y);
    /* a column the registry gives no direction: cost on x, quality on y */
    qs_direction_t dx = mx && mx->direction != QS_BETTER_NONE ? mx->direction : QS_BETTER_LOWER;
    qs_direction_t dy = my && my->direction != QS_BETTER_NONE ? my->direction : QS_BETTER_HIGHER;
    fprintf(d, "# %s.dat — written by quasar: %s against %s, one index block per series.\n", name, p->y, p->x);
    fprintf(d, "# In each block: the Pareto front (%s is better in %s, %s in %s), sorted by %s;\n",
            dx == QS_BETTER_HIGHER ? "higher" : "lower", p->x, dy == QS_BETTER_HIGHER ? "higher" : "lower", p->y,
            p->x);
    fputs("# a blank line; then every point. Columns: x y\n", d);
    int nt = t->nrows;
    double *x = malloc(((size_t)nt + 1) * sizeof *x), *y = malloc(((size_t)nt + 1) * sizeof *y);
    int *front = malloc(((size_t)nt + 1) * sizeof *front), *rows = malloc(((size_t)nt + 1) * sizeof *rows);
    if (!x || !y || !front || !rows) {
        free(x), free(y), free(front), free(rows);
        return qs_error(QS_ERR_NOMEM, "out of memory");
    }
    int block = 0, rc = QS_OK;
    double xmin = INFINITY, xmax = 0; /* over every series: decides a logarithmic x axis */
    char *plot = NULL;
    size_t plen = 0;
    FILE *pl = open_memstream(&plot, &plen);
    if (!pl)
        rc = qs_error(QS_ERR_NOMEM, "out of memory");
    for (int k = 0; rc == QS_OK && k < f->ns; k++) {
        series_t *s = &f->s[k];
        int n = 0;
        for (int i = 0; i < s->nrows; i++) {
            double xv = qs_res_table_num(t, s->rows[i], f->cx), yv = qs_res_table_num(t, s->rows[i], f->cy);
            if (!isnan(xv) && !isnan(yv))
                rows[n++] = s->rows[i];
        }
        if (n == 0)
            continue;
        tl_table = t;
        tl_col = f->cx;
        qsort(rows, (size_t)n, sizeof *rows, by_x_then_row);
        for (int i = 0; i < n; i++) {
            x[i] = qs_res_table_num(t, rows[i], f->cx);
            y[i] = qs_res_table_num(t, rows[i], f->cy);
            xmin = x[i] < xmin ? x[i] : xmin;
            xmax = x[i] > xmax ? x[i] : xmax;
        }
        int nf = qs_res_pareto(x, y, n, dx, dy, front);
        if (nf < 0) {
            rc = nf;
            break;
        }
        fprintf(d, "%s# series %d: %s\n", block ? "\n\n" : "", block, s->name);
        for (int i = 0; i < nf; i++) {
            num(d, x[front[i]]);
            fputc(' ', d);
            num(d, y[front[i]]);
            fputc('\n', d);
        }
        fputc('\n', d);
        for (int i = 0; i < n; i++) {
            num(d, x[i]);
            fputc(' ', d);
            num(d, y[i]);
            fputc('\n', d);
        }
        fprintf(pl, "%s'%s.dat' index %d every :::1::1 using 1:2 with points pt 7 ps 1.2 lt %d title ", block ? ", \\\n     " : "plot ",
                name, block, block + 1);
        gp_str(pl, s->name);
        fprintf(pl, ", \\\n     '' index %d every :::0::0 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lt %d notitle", block,
                block + 1);
        block++;
    }
    if (pl && fclose(pl) != 0 && rc == QS_OK)
        rc = qs_error(QS_ERR_NOMEM, "out of memory");
    if (rc == QS_OK && block == 0)
        rc = qs_error(QS_ERR_INVALID, "plot: nothing to draw: no run (with status ok) has numbers in both %s and %s",
                      p->x, p->y);
    /* costs of different targets span decades: a linear axis would crowd the cheap ones into a corner */
    if (rc == QS_OK && xmin > 0 && xmax / xmin > 30)
        fputs("set logscale x\n", g);
    if (rc == QS_OK)
        fprintf(g, "%s\n", plot);
    free(plot);
    free(x), free(y), free(front), free(rows);
    return rc;
}

static int write_line(fig_t *f, const qs_plot_t *p, FILE *d, FILE *g, const char *name)
{
    const qs_res_table_t *t = f->t;
    bool numeric = column_numeric(t, f->cx);
    if (!numeric) {
        int rc = categories(t, f->cx, &f->cats, &f->ncats);
        if (rc < 0)
            return rc;
        set_tics(g, "x", f->cats, f->ncats);
    }
    const char *err = f->cerr >= 0 ? t->col[f->cerr] : NULL;
    fprintf(d, "# %s.dat — written by quasar: %s against %s, one index block per series, sorted by %s.\n", name,
            p->y, p->x, p->x);
    fprintf(d, "# Columns: %s y%s%s\n", numeric ? "x" : "x_position", err ? " yerr" : "", numeric ? "" : " x_label");
    if (err)
        fprintf(d, "# yerr is %s\n", err);
    int *rows = malloc(((size_t)t->nrows + 1) * sizeof *rows);
    if (!rows)
        return qs_error(QS_ERR_NOMEM, "out of memory");
    int block = 0;
    for (int k = 0; k < f->ns; k++) {
        series_t *s = &f->s[k];
        int n = 0;
        for (int i = 0; i < s->nrows; i++) {
            int r = s->rows[i];
            bool has_x = numeric ? !isnan(qs_res_table_num(t, r, f->cx)) : qs_res_table_get(t, r, f->cx) != NULL;
            if (has_x && !isnan(qs_res_table_num(t, r, f->cy)))
                rows[n++] = r;
        }
        if (n == 0)
            continue;
        if (numeric) {
            tl_table = t;
            tl_col = f->cx;
            qsort(rows, (size_t)n, sizeof *rows, by_x_then_row);
        } else { /* by category position, stable */
            for (int i = 1; i < n; i++) {
                int r = rows[i], j = i;
                int ci = cat_index(f->cats, f->ncats, qs_res_table_get(t, r, f->cx), false);
                while (j > 0 && cat_index(f->cats, f->ncats, qs_res_table_get(t, rows[j - 1], f->cx), false) > ci) {
                    rows[j] = rows[j - 1];
                    j--;
                }
                rows[j] = r;
            }
        }
        fprintf(d, "%s# series %d: %s\n", block ? "\n\n" : "", block, s->name);
        for (int i = 0; i < n; i++) {
            int r = rows[i];
            if (numeric)
                num(d, qs_res_table_num(t, r, f->cx));
            else
                fprintf(d, "%d", cat_index(f->cats, f->ncats, qs_res_table_get(t, r, f->cx), false));
            fputc(' ', d);
            num(d, qs_res_table_num(t, r, f->cy));
            if (err) {
                double e = qs_res_table_num(t, r, f->cerr);
                fputc(' ', d);
                num(d, isnan(e) ? 0.0 : e);
            }
            if (!numeric) {
                fputc(' ', d);
                dat_label(d, qs_res_table_get(t, r, f->cx));
            }
            fputc('\n', d);
        }
        fprintf(g, "%s'%s.dat' index %d using 1:2%s with %s pt 7 lw 2 lt %d title ", block ? ", \\\n     " : "plot ",
                name, block, err ? ":3" : "", err ? "yerrorlines" : "linespoints", block + 1);
        gp_str(g, s->name);
        block++;
    }
    free(rows);
    if (block == 0)
        return qs_error(QS_ERR_INVALID, "plot: nothing to draw: no run (with status ok) has a %s and a number in %s",
                        p->x, p->y);
    fputc('\n', g);
    return QS_OK;
}

static int write_heatmap(fig_t *f, const qs_plot_t *p, FILE *d, FILE *g, const char *name)
{
    const qs_res_table_t *t = f->t;
    int rc = categories(t, f->cx, &f->cats, &f->ncats);
    if (rc == QS_OK)
        rc = categories(t, f->cy, &f->ycats, &f->nycats);
    if (rc < 0)
        return rc;
    bool xnum = column_numeric(t, f->cx), ynum = column_numeric(t, f->cy);
    size_t cells = (size_t)f->ncats * (size_t)f->nycats;
    double *sum = calloc(cells + 1, sizeof *sum);
    int *cnt = calloc(cells + 1, sizeof *cnt);
    if (!sum || !cnt) {
        free(sum);
        free(cnt);
        return qs_error(QS_ERR_NOMEM, "out of memory");
    }
    int filled = 0;
    for (int r = 0; r < t->nrows; r++) {
        int ix = cat_index(f->cats, f->ncats, qs_res_table_get(t, r, f->cx), xnum);
        int iy = cat_index(f->ycats, f->nycats, qs_res_table_get(t, r, f->cy), ynum);
        double z = qs_res_table_num(t, r, f->cz);
        if (ix < 0 || iy < 0 || isnan(z))
            continue;
        size_t i = (size_t)ix * (size_t)f->nycats + (size_t)iy;
        filled += cnt[i] == 0;
        sum[i] += z;
        cnt[i]++;
    }
    if (filled == 0) {
        free(sum);
        free(cnt);
        return qs_error(QS_ERR_INVALID, "plot: nothing to draw: no run (with status ok) has %s, %s and a number in %s",
                        p->x, p->y, p->z);
    }
    fprintf(d, "# %s.dat — written by quasar: the mean %s over the grid of %s and %s.\n", name, p->z, p->x, p->y);
    fputs("# Columns: x_position y_position z (NaN: no run); the labels are the tics of the .gp\n", d);
    fprintf(d, "# series 0: %s\n", p->z);
    for (int ix = 0; ix < f->ncats; ix++) {
        for (int iy = 0; iy < f->nycats; iy++) {
            size_t i = (size_t)ix * (size_t)f->nycats + (size_t)iy;
            fprintf(d, "%d %d ", ix, iy);
            if (cnt[i])
                num(d, sum[i] / cnt[i]);
            else
                fputs("NaN", d);
            fputc('\n', d);
        }
        fputc('\n', d);
    }
    free(sum);
    free(cnt);
    char zl[300];
    axis_label(zl, sizeof zl, NULL, p->z);
    set_tics(g, "x", f->cats, f->ncats);
    set_tics(g, "y", f->ycats, f->nycats);
    fprintf(g, "set xrange [-0.5:%g]\nset yrange [-0.5:%g]\nunset grid\nunset key\n", f->ncats - 0.5,
            f->nycats - 0.5);
    fputs("set cblabel ", g);
    gp_str(g, zl);
    fputs("\nset palette defined (0 '#440154', 1 '#3b528b', 2 '#21918c', 3 '#5ec962', 4 '#fde725')\n", g);
    fprintf(g,
            "plot '%s.dat' index 0 using 1:2:3 with image notitle, \\\n"
            "     '' index 0 using 1:2:($3 == $3 ? sprintf('%%.3g', $3) : '') with labels notitle\n",
            name);
    return QS_OK;
}

static int write_bars(fig_t *f, const qs_plot_t *p, FILE *d, FILE *g, const char *name)
{
    const qs_res_table_t *t = f->t;
    int rc = categories(t, f->cx, &f->cats, &f->ncats);
    if (rc < 0)
        return rc;
    bool xnum = column_numeric(t, f->cx);
    size_t cells = (size_t)f->ncats * (size_t)(f->ns ? f->ns : 1);
    double *sum = calloc(cells + 1, sizeof *sum);
    int *cnt = calloc(cells + 1, sizeof *cnt);
    if (!sum || !cnt) {
        free(sum);
        free(cnt);
        return qs_error(QS_ERR_NOMEM, "out of memory");
    }
    int any = 0;
    bool neg = false, pos = false;
    for (int k = 0; k < f->ns; k++)
        for (int i = 0; i < f->s[k].nrows; i++) {
            int r = f->s[k].rows[i];
            int c = cat_index(f->cats, f->ncats, qs_res_table_get(t, r, f->cx), xnum);
            double v = qs_res_table_num(t, r, f->cy);
            if (c < 0 || isnan(v))
                continue;
            neg |= v < 0;
            pos |= v > 0;
            sum[(size_t)k * (size_t)f->ncats + (size_t)c] += v;
            cnt[(size_t)k * (size_t)f->ncats + (size_t)c]++;
            any++;
        }
    if (!any) {
        free(sum);
        free(cnt);
        return qs_error(QS_ERR_INVALID, "plot: nothing to draw: no run (with status ok) has a %s and a number in %s",
                        p->x, p->y);
    }
    fprintf(d, "# %s.dat — written by quasar: the mean %s per %s, one index block per series.\n", name, p->y, p->x);
    fputs("# Columns: x_position y x_label\n", d);
    int block = 0, nb = 0;
    for (int k = 0; k < f->ns; k++) {
        bool has = false;
        for (int c = 0; c < f->ncats; c++)
            has |= cnt[(size_t)k * (size_t)f->ncats + (size_t)c] > 0;
        nb += has;
    }
    double w = 0.8 / nb;
    set_tics(g, "x", f->cats, f->ncats);
    /* bars grow from zero: the axis must show it */
    if (!neg)
        fputs("set yrange [0:*]\n", g);
    else if (!pos)
        fputs("set yrange [*:0]\n", g);
    fprintf(g, "set xrange [-0.6:%g]\nset style fill solid 0.85 border -1\nset boxwidth %g absolute\nset grid noxtics ytics\n",
            f->ncats - 0.4, w);
    for (int k = 0; k < f->ns; k++) {
        bool has = false;
        for (int c = 0; c < f->ncats; c++)
            has |= cnt[(size_t)k * (size_t)f->ncats + (size_t)c] > 0;
        if (!has)
            continue;
        fprintf(d, "%s# series %d: %s\n", block ? "\n\n" : "", block, f->s[k].name);
        for (int c = 0; c < f->ncats; c++) {
            size_t i = (size_t)k * (size_t)f->ncats + (size_t)c;
            if (!cnt[i])
                continue;
            double m = sum[i] / cnt[i];
            fprintf(d, "%d ", c);
            num(d, m);
            fputc(' ', d);
            dat_label(d, f->cats[c]);
            fputc('\n', d);
        }
        fprintf(g, "%s'%s.dat' index %d using ($1 + %.6g):2 with boxes lt %d title ", block ? ", \\\n     " : "__PLOT__",
                name, block, -0.4 + (block + 0.5) * w, block + 1);
        gp_str(g, f->s[k].name);
        block++;
    }
    fputc('\n', g);
    free(sum);
    free(cnt);
    return QS_OK;
}

/* ---- rendering ----------------------------------------------------------------------------------- */

/* Feeds gnuplot "cd DIR; load NAME.gp" on its standard input, with its
 * output and errors collected for the message. SIGPIPE (gnuplot dying
 * before it reads) is held on this thread for the write, so a library call
 * never kills its program. */
static int run_gnuplot(const char *dir, const char *gp_name, char *msg, size_t msgn, int *status)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    msg[0] = '\0';
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
        int e = errno;
        if (in[0] >= 0)
            close(in[0]), close(in[1]);
        return qs_error(QS_ERR_IO, "plot: cannot make a pipe to gnuplot: %s", strerror(e));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, out[1], 2);
    const char *prog = gnuplot_program();
    char *argv[] = {(char *)prog, NULL};
    pid_t pid;
    int e = strchr(prog, '/') ? posix_spawn(&pid, prog, &fa, NULL, argv, environ)
                              : posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (e != 0) {
        close(in[1]);
        close(out[0]);
        return qs_error(QS_ERR_IO, "plot: cannot run %s: %s", prog, strerror(e));
    }
    /* the commands, as gnuplot reads them: single-quoted strings */
    size_t cap = 2 * (strlen(dir) + strlen(gp_name)) + 64, n = 0;
    char *cmd = malloc(cap);
    if (cmd) {
        const char *parts[2] = {dir, gp_name};
        const char *pre[2] = {"cd '", "load '"};
        for (int k = 0; k < 2; k++) {
            n += (size_t)snprintf(cmd + n, cap - n, "%s", pre[k]);
            for (const char *s = parts[k]; *s; s++) {
                if (*s == '\'')
                    cmd[n++] = '\'';
                cmd[n++] = *s;
            }
            n += (size_t)snprintf(cmd + n, cap - n, "'\n");
        }
    }
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    sigset_t pending;
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE);
    bool epipe = false;
    for (size_t off = 0; cmd && off < n;) {
        ssize_t w = write(in[1], cmd + off, n - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            epipe = errno == EPIPE;
            break;
        }
        off += (size_t)w;
    }
    close(in[1]);
    if (epipe && !was_pending) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe_set, NULL, &zero); /* the SIGPIPE our write raised */
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    free(cmd);
    size_t used = 0;
    char chunk[4096];
    for (;;) {
        ssize_t r = read(out[0], chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        /* keep the last part: gnuplot's error comes at the end */
        for (ssize_t i = 0; i < r; i++) {
            if (used + 1 >= msgn) {
                memmove(msg, msg + msgn / 2, used - msgn / 2);
                used -= msgn / 2;
            }
            msg[used++] = chunk[i];
        }
    }
    msg[used] = '\0';
    close(out[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    *status = st;
    return QS_OK;
}

/* gnuplot's messages on one line, without the echo of the failing command
 * and its caret */
static void tidy(char *m)
{
    char *w = m;
    bool space = false;
    for (char *r = m; *r; r++) {
        if (*r == '^' || *r == '\n' || *r == '\r' || *r == '\t' || *r == ' ') {
            space = w != m;
            continue;
        }
        if (space)
            *w++ = ' ';
        space = false;
        *w++ = *r;
    }
    *w = '\0';
    const char *g = strstr(m, "gnuplot> ");
    if (g) {
        /* "gnuplot> set foo bar "x.gp" line 1: ..." — keep from the file name on */
        const char *q = strchr(g, '"');
        if (q)
            memmove(m, q, strlen(q) + 1);
    }
}

/* ---- the figure ---------------------------------------------------------------------------------- */

static char *cat3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

/* Writes what writer produces into path.part and renames it over path. */
static int finish_file(FILE *f, const char *part, const char *path)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        unlink(part);
        return qs_error(QS_ERR_IO, "%s: cannot write: %s", path, strerror(errno ? errno : EIO));
    }
    if (rename(part, path) != 0) {
        int e = errno;
        unlink(part);
        return qs_error(QS_ERR_IO, "%s: cannot rename %s over it: %s", path, part, strerror(e));
    }
    return QS_OK;
}

int qs_res_plot(const qs_res_table_t *t, const qs_plot_t *p, const char *base, bool *rendered)
{
    if (rendered)
        *rendered = false;
    if (!t || !p || !base || !*base)
        return qs_error(QS_ERR_INVALID, "plot: no table, figure or output name given");
    if ((unsigned)p->kind > QS_PLOT_BARS)
        return qs_error(QS_ERR_INVALID, "plot: unknown kind %d", (int)p->kind);
    const char *fmt = p->format ? p->format : "png";
    if (strcmp(fmt, "png") != 0 && strcmp(fmt, "pdf") != 0 && strcmp(fmt, "svg") != 0)
        return qs_error(QS_ERR_INVALID, "plot: format '%s': expected png, pdf or svg", fmt);
    const char *name = base_name(base);
    if (!*name || strchr(name, '\'') || strchr(name, '\n'))
        return qs_error(QS_ERR_INVALID, "plot: '%s': a figure name must be a file name without quotes", base);
    int c;
    int rc = need_col(t, "x", p->x, &c);
    if (rc == QS_OK)
        rc = need_col(t, "y", p->y, &c);
    if (rc == QS_OK && p->kind == QS_PLOT_HEATMAP)
        rc = need_col(t, "z", p->z, &c);
    if (rc == QS_OK && p->group_by)
        rc = need_col(t, "group-by", p->group_by, &c);
    if (rc == QS_OK && p->yerr)
        rc = need_col(t, "error-bar", p->yerr, &c);
    if (rc == QS_OK && p->kind == QS_PLOT_HEATMAP && p->group_by)
        rc = qs_error(QS_ERR_INVALID, "plot: a heatmap has one series: drop the group-by column (or filter with where)");
    if (rc < 0)
        return rc;
    /* the rows to draw: those of the filter whose run succeeded */
    qs_res_table_t *ft = NULL, *ok = NULL;
    if ((rc = qs_res_table_filter(t, p->where, &ft)) < 0)
        return rc;
    int sc = qs_res_table_col(ft, "status");
    if (sc >= 0) {
        /* skipped and failed runs have no figures to show; a row without a status is kept */
        ok = qs_res_table_create();
        for (int cc = 0; ok && cc < ft->ncols; cc++)
            if (qs_res_table_add_col(ok, ft->col[cc]) < 0)
                rc = QS_ERR_NOMEM;
        for (int r = 0; ok && rc == QS_OK && r < ft->nrows; r++) {
            const char *st = qs_res_table_get(ft, r, sc);
            if (st && strcmp(st, "ok") != 0)
                continue;
            int nr = qs_res_table_add_row(ok);
            if (nr < 0)
                rc = nr;
            for (int cc = 0; rc == QS_OK && cc < ft->ncols; cc++)
                if (qs_res_table_get(ft, r, cc))
                    rc = qs_res_table_set(ok, nr, ft->col[cc], qs_res_table_get(ft, r, cc));
        }
        qs_res_table_free(ft);
        if (!ok || rc < 0) {
            qs_res_table_free(ok);
            return qs_error(QS_ERR_NOMEM, "out of memory");
        }
    } else {
        ok = ft;
    }
    fig_t f;
    memset(&f, 0, sizeof f);
    f.t = ok;
    f.cx = qs_res_table_col(ok, p->x);
    f.cy = qs_res_table_col(ok, p->y);
    f.cz = p->z ? qs_res_table_col(ok, p->z) : -1;
    f.cerr = -1;
    if (p->kind == QS_PLOT_LINE) {
        if (p->yerr) {
            f.cerr = qs_res_table_col(ok, p->yerr);
        } else {
            char *e = cat3(p->y, "_std", "");
            f.cerr = e ? qs_res_table_col(ok, e) : -1;
            free(e);
        }
    }
    char *dat = cat3(base, ".dat", ""), *gp = cat3(base, ".gp", ""), *dpart = cat3(base, ".dat", ".part"),
         *gpart = cat3(base, ".gp", ".part"), *img = cat3(base, ".", fmt);
    FILE *d = NULL, *g = NULL;
    if (!dat || !gp || !dpart || !gpart || !img)
        rc = qs_error(QS_ERR_NOMEM, "out of memory");
    if (rc == QS_OK)
        rc = make_series(&f, p->group_by, p->y);
    if (rc == QS_OK && !(d = fopen(dpart, "w")))
        rc = qs_error(QS_ERR_IO, "%s: cannot create: %s", dpart, strerror(errno));
    if (rc == QS_OK && !(g = fopen(gpart, "w")))
        rc = qs_error(QS_ERR_IO, "%s: cannot create: %s", gpart, strerror(errno));
    char title[512], xl[300], yl[300];
    if (rc == QS_OK) {
        if (p->title)
            snprintf(title, sizeof title, "%s", p->title);
        else if (p->kind == QS_PLOT_PARETO)
            snprintf(title, sizeof title, "%s vs %s (Pareto front%s%s)", p->y, p->x, p->group_by ? " per " : "",
                     p->group_by ? p->group_by : "");
        else if (p->kind == QS_PLOT_LINE)
            snprintf(title, sizeof title, "%s vs %s", p->y, p->x);
        else if (p->kind == QS_PLOT_HEATMAP)
            snprintf(title, sizeof title, "%s over %s and %s", p->z, p->x, p->y);
        else
            snprintf(title, sizeof title, "%s per %s", p->y, p->x);
        axis_label(xl, sizeof xl, p->xlabel, p->x);
        axis_label(yl, sizeof yl, p->ylabel, p->y);
        gp_header(g, p, name, fmt, title, xl, yl);
        switch (p->kind) {
        case QS_PLOT_PARETO: rc = write_pareto(&f, p, d, g, name); break;
        case QS_PLOT_LINE: rc = write_line(&f, p, d, g, name); break;
        case QS_PLOT_HEATMAP: rc = write_heatmap(&f, p, d, g, name); break;
        default: {
            /* bars: "plot" goes before the first series, which write_bars marks */
            char *body = NULL;
            size_t blen = 0;
            FILE *mb = open_memstream(&body, &blen);
            if (!mb) {
                rc = qs_error(QS_ERR_NOMEM, "out of memory");
                break;
            }
            rc = write_bars(&f, p, d, mb, name);
            fclose(mb);
            if (rc == QS_OK) {
                char *mark = strstr(body, "__PLOT__");
                if (mark) {
                    fwrite(body, 1, (size_t)(mark - body), g);
                    fputs("plot ", g);
                    fputs(mark + 8, g);
                } else {
                    fputs(body, g);
                }
            }
            free(body);
        }
        }
        if (rc == QS_OK)
            fputs("unset output\n", g);
    }
    if (rc < 0) {
        if (d)
            fclose(d), unlink(dpart);
        if (g)
            fclose(g), unlink(gpart);
    } else {
        rc = finish_file(d, dpart, dat);
        if (rc == QS_OK)
            rc = finish_file(g, gpart, gp);
        else
            fclose(g), unlink(gpart);
    }
    if (rc == QS_OK && qs_res_have_gnuplot()) {
        size_t blen = strlen(base) - strlen(name);
        char *dir = blen ? strndup(base, blen) : strdup(".");
        char *gpn = cat3(name, ".gp", "");
        char msg[1024];
        int status = 0;
        if (!dir || !gpn)
            rc = qs_error(QS_ERR_NOMEM, "out of memory");
        else
            rc = run_gnuplot(dir, gpn, msg, sizeof msg, &status);
        if (rc == QS_OK) {
            struct stat st;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || stat(img, &st) != 0 || st.st_size == 0) {
                tidy(msg);
                unlink(img); /* a half-drawn picture must not pass for the figure */
                if (WIFSIGNALED(status))
                    rc = qs_error(QS_ERR_IO, "plot: gnuplot was killed by signal %d drawing %s", WTERMSIG(status),
                                  img);
                else
                    rc = qs_error(QS_ERR_IO, "plot: gnuplot failed drawing %s from %s: %s", img, gp,
                                  *msg ? msg : "no picture written");
            } else if (rendered) {
                *rendered = true;
            }
        }
        free(dir);
        free(gpn);
    }
    free(dat), free(gp), free(dpart), free(gpart), free(img);
    fig_free(&f);
    qs_res_table_free(ok);
    return rc;
}
