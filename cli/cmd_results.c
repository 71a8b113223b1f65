/* cli/cmd_results.c — `quasar results list|show|pareto|export` and `quasar
 * plot`: reading the runs of a sweep (its output folder, results.h5, the
 * journal or a CSV export) and printing, exporting or drawing them
 * (docs/results.md). The work is results/'s; this file parses and prints. */
#include "config.h"

#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void qs_help_results(FILE *out)
{
    fputs("Usage: quasar results list RESULTS [--where W]\n"
          "       quasar results show RESULTS RUN\n"
          "       quasar results pareto RESULTS [--x M] [--y M] [--per COL] [--where W] [--csv]\n"
          "       quasar results export --csv RESULTS [--layers] [-o FILE]\n"
          "\n"
          "Reads the runs of a sweep: RESULTS is its output folder (its results.h5, else\n"
          "its journal.tsv), a results.h5, a journal.tsv or a CSV export (docs/results.md).\n"
          "\n"
          "  list     one line per run: its index, run hash (first 12 characters), status,\n"
          "           the settings that vary between the runs, and top1, energy_j,\n"
          "           latency_s, model_bytes when present\n"
          "  show     every cell of one run, then its per-layer rows; RUN is a row index\n"
          "           (as 'list' prints it), a run hash or a unique prefix of one\n"
          "  pareto   the runs on the Pareto front of two metrics (whether higher or lower\n"
          "           is better comes from the metric registry), sorted by --x; runs\n"
          "           whose status is not ok are left out\n"
          "  export   the runs (or, with --layers, the per-layer rows) as CSV\n"
          "\n"
          "  --where W                only the runs whose cells match every COL=VALUE of\n"
          "                           the comma-separated list W (numbers compare as\n"
          "                           numbers: w_bits=8 matches 8.0)\n"
          "  --x M, --y M             the metrics of the front (default energy_j, top1)\n"
          "  --per COL                one front per value of COL (e.g. target)\n"
          "  --csv                    pareto: the front's runs, every column, as CSV;\n"
          "                           export: CSV (the only export format)\n"
          "  --layers                 export the per-layer rows instead of the runs\n"
          "  -o FILE                  write to FILE (written aside, then renamed) instead\n"
          "                           of standard output\n"
          "\n"
          "Exit status: 0 success, 1 runtime error (unreadable results, unknown column),\n"
          "2 usage error.\n",
          out);
}

void qs_help_plot(FILE *out)
{
    fputs("Usage: quasar plot RESULTS --x X --y Y [--kind pareto|line|heatmap|bars] [--z Z]\n"
          "                   [--group-by COL] [--where W] [--format png|pdf|svg]\n"
          "                   [--title T] [--layers] [-o BASE]\n"
          "\n"
          "Draws a figure of the runs in RESULTS (an output folder, results.h5, journal.tsv\n"
          "or CSV): BASE.dat holds the data, BASE.gp is a standalone gnuplot script that\n"
          "draws BASE.png (or .pdf, .svg) from it — run 'gnuplot BASE.gp' in its folder\n"
          "to redraw it after editing — and, when gnuplot is installed, the picture is\n"
          "drawn. Runs whose status is not ok are left out (docs/results.md).\n"
          "\n"
          "  --x X, --y Y             the columns on the axes (metric names get their unit)\n"
          "  --kind K                 pareto: every run, and the Pareto front of each group\n"
          "                           as a line (the default when X and Y are metrics);\n"
          "                           line: Y against X, one line per group, error bars\n"
          "                           from Y_std when there is such a column (the default\n"
          "                           otherwise); heatmap: the mean of Z over the grid of\n"
          "                           X and Y; bars: Y per X category, one bar per group\n"
          "  --z Z                    the heatmap's colour column\n"
          "  --group-by COL           one series per value of COL (e.g. target)\n"
          "  --where W                only the runs matching every COL=VALUE of W\n"
          "  --format F               png (default), pdf or svg\n"
          "  --title T                the figure's title (default: from the names)\n"
          "  --layers                 draw the per-layer rows (e.g. --kind bars --x layer)\n"
          "  -o BASE                  the files' path without extension (default:\n"
          "                           figures/plot-Y-vs-X in the results' folder)\n"
          "\n"
          "$QUASAR_GNUPLOT names the gnuplot program (default: gnuplot on PATH). Without\n"
          "gnuplot the .dat and .gp are still written, and the command says so.\n"
          "\n"
          "Exit status: 0 success, 1 runtime error (unreadable results, unknown column,\n"
          "gnuplot failed), 2 usage error.\n",
          out);
}

/* ---- shared helpers ---------------------------------------------------------------------------- */

static bool is_metric(const char *name)
{
    if (qs_metric_find(name))
        return true;
    /* the statistics over repeats of a metric M: M_std and M_mean */
    size_t n = strlen(name);
    static const char *const suffix[] = {"_std", "_mean"};
    for (int k = 0; k < 2; k++) {
        size_t m = strlen(suffix[k]);
        if (n > m && strcmp(name + n - m, suffix[k]) == 0) {
            char base[256];
            snprintf(base, sizeof base, "%.*s", (int)(n - m), name);
            return qs_metric_find(base) != NULL;
        }
    }
    return false;
}

static int need_col(const qs_res_table_t *t, const char *opt, const char *name)
{
    if (qs_res_table_col(t, name) >= 0)
        return 0;
    char list[1024];
    size_t used = 0;
    snprintf(list, sizeof list, "none");
    for (int c = 0; c < t->ncols; c++) {
        if (strcmp(t->col[c], "__row") == 0)
            continue;
        int w = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", t->col[c]);
        if (w < 0 || (size_t)w >= sizeof list - used)
            break;
        used += (size_t)w;
    }
    qs_error(QS_ERR_INVALID, "%s: unknown column '%s' (columns: %s)", opt, name, list);
    return -1;
}

/* The text a cell is shown as: hashes cut to 12 characters, metrics to 4
 * significant digits, line breaks as spaces; "-" when missing. */
static void show_cell(char *buf, size_t n, const qs_res_table_t *t, int r, int c)
{
    const char *s = qs_res_table_get(t, r, c);
    if (!s) {
        snprintf(buf, n, "-");
        return;
    }
    const char *name = t->col[c];
    double v = qs_res_table_num(t, r, c);
    if (strcmp(name, "run") == 0 || strcmp(name, "point") == 0)
        snprintf(buf, n, "%.12s", s);
    else if (is_metric(name) && !isnan(v))
        snprintf(buf, n, "%.4g", v);
    else
        snprintf(buf, n, "%.40s", s);
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
}

/* Prints rows x cols (columns cols[], rows rows[], plus an index column
 * taken from idx when given) aligned under a header. */
static void print_table(const qs_res_table_t *t, const int *rows, int nrows, const int *cols, int ncols,
                        const int *idx)
{
    enum { W = 48 };
    int *width = calloc((size_t)ncols + 1, sizeof *width);
    if (!width)
        return;
    char buf[W];
    int iw = 1;
    for (int i = 0; idx && i < nrows; i++) {
        int w = snprintf(buf, sizeof buf, "%d", idx[i]);
        iw = w > iw ? w : iw;
    }
    for (int j = 0; j < ncols; j++) {
        width[j] = (int)strlen(t->col[cols[j]]);
        for (int i = 0; i < nrows; i++) {
            show_cell(buf, sizeof buf, t, rows[i], cols[j]);
            int w = (int)strlen(buf);
            width[j] = w > width[j] ? w : width[j];
        }
    }
    if (idx)
        printf("%-*s  ", iw, "#");
    for (int j = 0; j < ncols; j++)
        printf(j + 1 < ncols ? "%-*s  " : "%-*s", j + 1 < ncols ? width[j] : 0, t->col[cols[j]]);
    putchar('\n');
    for (int i = 0; i < nrows; i++) {
        if (idx)
            printf("%-*d  ", iw, idx[i]);
        for (int j = 0; j < ncols; j++) {
            show_cell(buf, sizeof buf, t, rows[i], cols[j]);
            printf(j + 1 < ncols ? "%-*s  " : "%-*s", j + 1 < ncols ? width[j] : 0, buf);
        }
        putchar('\n');
    }
    free(width);
}

static bool same_cell(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

/* Whether column c holds more than one value among rows. */
static bool varies(const qs_res_table_t *t, int c, const int *rows, int nrows)
{
    for (int i = 1; i < nrows; i++)
        if (!same_cell(qs_res_table_get(t, rows[i], c), qs_res_table_get(t, rows[0], c)))
            return true;
    return false;
}

/* The settings worth showing: columns that are not metrics, hashes or
 * status and that vary between the rows (skip: one the caller shows itself). */
static int varying_cols(const qs_res_table_t *t, const int *rows, int nrows, const char *skip, int *cols)
{
    static const char *const hidden[] = {"run", "point", "status", "reason", "__row"};
    int n = 0;
    for (int c = 0; c < t->ncols; c++) {
        bool hide = is_metric(t->col[c]) || (skip && strcmp(t->col[c], skip) == 0);
        for (size_t k = 0; !hide && k < sizeof hidden / sizeof *hidden; k++)
            hide = strcmp(t->col[c], hidden[k]) == 0;
        if (!hide && varies(t, c, rows, nrows))
            cols[n++] = c;
    }
    return n;
}

/* What 'results list' shows: run and status, the varying settings, then
 * the main metrics. */
static int listing_cols(const qs_res_table_t *t, const int *rows, int nrows, int *cols)
{
    static const char *const metrics[] = {"top1", "energy_j", "latency_s", "model_bytes"};
    int n = 0, c;
    if ((c = qs_res_table_col(t, "run")) >= 0)
        cols[n++] = c;
    if ((c = qs_res_table_col(t, "status")) >= 0)
        cols[n++] = c;
    n += varying_cols(t, rows, nrows, NULL, cols + n);
    for (size_t k = 0; k < sizeof metrics / sizeof *metrics; k++)
        if ((c = qs_res_table_col(t, metrics[k])) >= 0)
            cols[n++] = c;
    return n;
}

/* The runs of path, each tagged with its row index (column "__row") so that
 * a filtered listing still shows the indices 'show' accepts, then filtered. */
static int load(const char *path, const char *where, qs_res_table_t **runs, qs_res_table_t **layers)
{
    qs_res_table_t *all = NULL;
    *runs = NULL;
    if (qs_res_open(path, &all, layers, NULL) < 0)
        return -1;
    /* the filter's columns are checked before the tag exists, so that a
     * message listing the columns does not show it */
    qs_res_table_t *check = NULL;
    if (qs_res_table_filter(all, where, &check) < 0) {
        qs_res_table_free(all);
        if (layers) {
            qs_res_table_free(*layers);
            *layers = NULL;
        }
        return -1;
    }
    qs_res_table_free(check);
    for (int r = 0; r < all->nrows; r++) {
        char b[24];
        snprintf(b, sizeof b, "%d", r);
        if (qs_res_table_set(all, r, "__row", b) < 0) {
            qs_res_table_free(all);
            return -1;
        }
    }
    int rc = qs_res_table_filter(all, where, runs);
    qs_res_table_free(all);
    if (rc < 0 && layers) {
        qs_res_table_free(*layers);
        *layers = NULL;
    }
    return rc < 0 ? -1 : 0;
}

static int *row_indices(const qs_res_table_t *t, const int *rows, int n)
{
    int *idx = malloc(((size_t)n + 1) * sizeof *idx);
    int c = qs_res_table_col(t, "__row");
    for (int i = 0; idx && i < n; i++)
        idx[i] = (int)qs_res_table_num(t, rows[i], c);
    return idx;
}

/* Writes t as CSV to path (aside, then renamed) or to stdout; without the
 * internal "__row" column. */
static int write_csv(const qs_res_table_t *t, const char *path)
{
    qs_res_table_t *clean = qs_res_table_create();
    if (!clean)
        return -1;
    for (int c = 0; c < t->ncols; c++)
        if (strcmp(t->col[c], "__row") != 0 && qs_res_table_add_col(clean, t->col[c]) < 0)
            return qs_res_table_free(clean), -1;
    for (int r = 0; r < t->nrows; r++) {
        int nr = qs_res_table_add_row(clean);
        if (nr < 0)
            return qs_res_table_free(clean), -1;
        for (int c = 0; c < t->ncols; c++)
            if (strcmp(t->col[c], "__row") != 0 && qs_res_table_get(t, r, c) &&
                qs_res_table_set(clean, nr, t->col[c], qs_res_table_get(t, r, c)) < 0)
                return qs_res_table_free(clean), -1;
    }
    int rc;
    if (!path) {
        rc = qs_res_csv_write(stdout, clean);
    } else {
        size_t n = strlen(path) + 16;
        char *tmp = malloc(n);
        if (!tmp) {
            qs_res_table_free(clean);
            return qs_error(QS_ERR_NOMEM, "out of memory"), -1;
        }
        snprintf(tmp, n, "%s.tmp-XXXXXX", path);
        int fd = mkstemp(tmp);
        FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!f) {
            rc = qs_error(QS_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
            if (fd >= 0)
                close(fd), unlink(tmp);
        } else {
            rc = qs_res_csv_write(f, clean);
            if (fclose(f) != 0 && rc == QS_OK)
                rc = qs_error(QS_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
            if (rc == QS_OK && rename(tmp, path) != 0)
                rc = qs_error(QS_ERR_IO, "%s: cannot rename: %s", path, strerror(errno));
            if (rc < 0)
                unlink(tmp);
        }
        free(tmp);
    }
    qs_res_table_free(clean);
    return rc < 0 ? -1 : 0;
}

/* ---- results list / show ------------------------------------------------------------------------- */

static int results_list(int argc, char **argv)
{
    const char *path = NULL, *where = NULL, *v;
    for (int i = 2; i < argc; i++) {
        int m;
        if ((m = qs_cli_opt(argc, argv, &i, "--where", &v)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            where = v;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return qs_cli_error(QS_EXIT_USAGE, "results list: unknown option '%s' (see 'quasar help results')", argv[i]);
        } else if (path) {
            return qs_cli_error(QS_EXIT_USAGE, "results list: unexpected argument '%s'", argv[i]);
        } else {
            path = argv[i];
        }
    }
    if (!path)
        return qs_cli_error(QS_EXIT_USAGE, "results list: expected RESULTS (see 'quasar help results')");
    qs_res_table_t *t = NULL;
    if (load(path, where, &t, NULL) < 0)
        return qs_cli_fail(QS_EXIT_RUNTIME);
    int *rows = malloc(((size_t)t->nrows + 1) * sizeof *rows), *cols = malloc(((size_t)t->ncols + 8) * sizeof *cols);
    if (!rows || !cols) {
        free(rows), free(cols), qs_res_table_free(t);
        return qs_cli_error(QS_EXIT_RUNTIME, "out of memory");
    }
    for (int r = 0; r < t->nrows; r++)
        rows[r] = r;
    int nc = listing_cols(t, rows, t->nrows, cols);
    int *idx = row_indices(t, rows, t->nrows);
    print_table(t, rows, t->nrows, cols, nc, idx);
    free(idx), free(rows), free(cols);
    qs_res_table_free(t);
    return QS_EXIT_OK;
}

/* RUN: a full hash, a row index, or a unique prefix of a hash */
static int find_run(const qs_res_table_t *t, const char *run, int *row)
{
    int hc = qs_res_table_col(t, "run");
    for (int r = 0; hc >= 0 && r < t->nrows; r++)
        if (same_cell(qs_res_table_get(t, r, hc), run)) {
            *row = r;
            return 0;
        }
    bool digits = *run != '\0';
    for (const char *p = run; *p; p++)
        digits &= isdigit((unsigned char)*p) != 0;
    if (digits) {
        long v = strtol(run, NULL, 10);
        if (v >= 0 && v < t->nrows) {
            *row = (int)v;
            return 0;
        }
    }
    int found = -1, count = 0;
    size_t n = strlen(run);
    for (int r = 0; hc >= 0 && n > 0 && r < t->nrows; r++) {
        const char *h = qs_res_table_get(t, r, hc);
        if (h && strncmp(h, run, n) == 0) {
            if (count == 0)
                found = r;
            count++;
        }
    }
    if (count == 1) {
        *row = found;
        return 0;
    }
    if (count > 1)
        qs_error(QS_ERR_INVALID, "run '%s' is the prefix of %d run hashes: give more of it", run, count);
    else
        qs_error(QS_ERR_INVALID, "no run '%s' (give a row index 0..%d, a run hash or a prefix of one)", run,
                 t->nrows - 1);
    return -1;
}

static int results_show(int argc, char **argv)
{
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    for (int i = 2; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1])
            return qs_cli_error(QS_EXIT_USAGE, "results show: unknown option '%s' (see 'quasar help results')", argv[i]);
        if (npos == 2)
            return qs_cli_error(QS_EXIT_USAGE, "results show: unexpected argument '%s'", argv[i]);
        pos[npos++] = argv[i];
    }
    if (npos < 2)
        return qs_cli_error(QS_EXIT_USAGE, "results show: expected RESULTS RUN (see 'quasar help results')");
    qs_res_table_t *t = NULL, *layers = NULL;
    if (load(pos[0], NULL, &t, &layers) < 0)
        return qs_cli_fail(QS_EXIT_RUNTIME);
    int row = -1;
    if (find_run(t, pos[1], &row) < 0) {
        qs_res_table_free(t), qs_res_table_free(layers);
        return qs_cli_fail(QS_EXIT_RUNTIME);
    }
    int kw = 0;
    for (int c = 0; c < t->ncols; c++)
        if (qs_res_table_get(t, row, c) && (int)strlen(t->col[c]) > kw)
            kw = (int)strlen(t->col[c]);
    for (int c = 0; c < t->ncols; c++) {
        const char *s = qs_res_table_get(t, row, c);
        if (s && strcmp(t->col[c], "__row") != 0)
            printf("%-*s  %s\n", kw, t->col[c], s);
    }
    const char *hash = qs_res_table_get(t, row, qs_res_table_col(t, "run"));
    int lc = layers ? qs_res_table_col(layers, "run") : -1;
    int n = 0;
    int *lrows = layers ? malloc(((size_t)layers->nrows + 1) * sizeof *lrows) : NULL;
    int *cols = layers ? malloc(((size_t)layers->ncols + 1) * sizeof *cols) : NULL;
    for (int r = 0; lrows && hash && lc >= 0 && r < layers->nrows; r++)
        if (same_cell(qs_res_table_get(layers, r, lc), hash))
            lrows[n++] = r;
    if (n > 0 && cols) {
        int nc = 0;
        for (int c = 0; c < layers->ncols; c++) {
            if (c == lc)
                continue;
            bool any = false;
            for (int i = 0; i < n && !any; i++)
                any = qs_res_table_get(layers, lrows[i], c) != NULL;
            if (any)
                cols[nc++] = c;
        }
        printf("\nlayers (%d):\n", n);
        print_table(layers, lrows, n, cols, nc, NULL);
    }
    free(lrows), free(cols);
    qs_res_table_free(t), qs_res_table_free(layers);
    return QS_EXIT_OK;
}

/* ---- results pareto ------------------------------------------------------------------------------ */

static int results_pareto(int argc, char **argv)
{
    const char *path = NULL, *where = NULL, *xs = "energy_j", *ys = "top1", *per = NULL, *v;
    bool csv = false;
    for (int i = 2; i < argc; i++) {
        int m;
        const char **dst = NULL;
        if ((m = qs_cli_opt(argc, argv, &i, "--where", &v)) != 0)
            dst = &where;
        else if ((m = qs_cli_opt(argc, argv, &i, "--x", &v)) != 0)
            dst = &xs;
        else if ((m = qs_cli_opt(argc, argv, &i, "--y", &v)) != 0)
            dst = &ys;
        else if ((m = qs_cli_opt(argc, argv, &i, "--per", &v)) != 0)
            dst = &per;
        if (m < 0)
            return QS_EXIT_USAGE;
        if (dst) {
            *dst = v;
            continue;
        }
        if (strcmp(argv[i], "--csv") == 0)
            csv = true;
        else if (argv[i][0] == '-' && argv[i][1])
            return qs_cli_error(QS_EXIT_USAGE, "results pareto: unknown option '%s' (see 'quasar help results')",
                                argv[i]);
        else if (path)
            return qs_cli_error(QS_EXIT_USAGE, "results pareto: unexpected argument '%s'", argv[i]);
        else
            path = argv[i];
    }
    if (!path)
        return qs_cli_error(QS_EXIT_USAGE, "results pareto: expected RESULTS (see 'quasar help results')");
    const qs_metric_t *mx = qs_metric_find(xs), *my = qs_metric_find(ys);
    if (!mx || mx->direction == QS_BETTER_NONE || !my || my->direction == QS_BETTER_NONE)
        return qs_cli_error(QS_EXIT_USAGE, "results pareto: '%s' is not a metric that is better higher or lower",
                            !mx || mx->direction == QS_BETTER_NONE ? xs : ys);
    qs_res_table_t *t = NULL;
    if (load(path, where, &t, NULL) < 0)
        return qs_cli_fail(QS_EXIT_RUNTIME);
    if (need_col(t, "--x", xs) < 0 || need_col(t, "--y", ys) < 0 || (per && need_col(t, "--per", per) < 0)) {
        qs_res_table_free(t);
        return qs_cli_fail(QS_EXIT_RUNTIME);
    }
    int cx = qs_res_table_col(t, xs), cy = qs_res_table_col(t, ys), cp = per ? qs_res_table_col(t, per) : -1;
    int sc = qs_res_table_col(t, "status");
    size_t n = (size_t)t->nrows + 1;
    int *grp = malloc(n * sizeof *grp), *first = malloc(n * sizeof *first), *rows = malloc(n * sizeof *rows);
    int *out = malloc(n * sizeof *out), *fr = malloc(n * sizeof *fr);
    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    int *cols = malloc(((size_t)t->ncols + 8) * sizeof *cols);
    int nout = 0, ng = 0, rc = QS_EXIT_OK;
    if (!grp || !first || !rows || !out || !fr || !x || !y || !cols) {
        rc = qs_cli_error(QS_EXIT_RUNTIME, "out of memory");
        goto done;
    }
    for (int r = 0; r < t->nrows; r++) {
        const char *st = sc >= 0 ? qs_res_table_get(t, r, sc) : NULL;
        grp[r] = -1;
        if (st && strcmp(st, "ok") != 0)
            continue;
        const char *g = cp >= 0 ? qs_res_table_get(t, r, cp) : NULL;
        int k = 0;
        while (k < ng && !(cp < 0 || same_cell(qs_res_table_get(t, first[k], cp), g)))
            k++;
        if (k == ng)
            first[ng++] = r;
        grp[r] = k;
    }
    for (int k = 0; k < ng; k++) {
        int m = 0;
        for (int r = 0; r < t->nrows; r++)
            if (grp[r] == k) {
                rows[m] = r;
                x[m] = qs_res_table_num(t, r, cx);
                y[m] = qs_res_table_num(t, r, cy);
                m++;
            }
        int nf = qs_res_pareto(x, y, m, mx->direction, my->direction, fr);
        if (nf < 0) {
            rc = qs_cli_fail(QS_EXIT_RUNTIME);
            goto done;
        }
        for (int i = 0; i < nf; i++)
            out[nout++] = rows[fr[i]];
    }
    if (csv) {
        qs_res_table_t *sel = qs_res_table_create();
        for (int c = 0; sel && c < t->ncols; c++)
            qs_res_table_add_col(sel, t->col[c]);
        for (int i = 0; sel && i < nout; i++) {
            int nr = qs_res_table_add_row(sel);
            for (int c = 0; nr >= 0 && c < t->ncols; c++)
                if (qs_res_table_get(t, out[i], c))
                    qs_res_table_set(sel, nr, t->col[c], qs_res_table_get(t, out[i], c));
        }
        if (!sel || write_csv(sel, NULL) < 0)
            rc = qs_cli_fail(QS_EXIT_RUNTIME);
        qs_res_table_free(sel);
        goto done;
    }
    /* run, [per], the settings that vary along the front, then x and y */
    int nc = 0, c;
    if ((c = qs_res_table_col(t, "run")) >= 0)
        cols[nc++] = c;
    if (cp >= 0)
        cols[nc++] = cp;
    nc += varying_cols(t, out, nout, per, cols + nc);
    cols[nc++] = cx;
    cols[nc++] = cy;
    int *idx = row_indices(t, out, nout);
    print_table(t, out, nout, cols, nc, idx);
    free(idx);
done:
    free(grp), free(first), free(rows), free(out), free(fr), free(x), free(y), free(cols);
    qs_res_table_free(t);
    return rc;
}

/* ---- results export ------------------------------------------------------------------------------ */

static int results_export(int argc, char **argv)
{
    const char *path = NULL, *outp = NULL, *v;
    bool csv = false, layers = false;
    for (int i = 2; i < argc; i++) {
        int m;
        if ((m = qs_cli_opt(argc, argv, &i, "-o", &v)) != 0 || (m = qs_cli_opt(argc, argv, &i, "--output", &v)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            if (!*v)
                return qs_cli_error(QS_EXIT_USAGE, "results export: -o: an empty file name");
            outp = v;
        } else if (strcmp(argv[i], "--csv") == 0) {
            csv = true;
        } else if (strcmp(argv[i], "--layers") == 0) {
            layers = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return qs_cli_error(QS_EXIT_USAGE, "results export: unknown option '%s' (see 'quasar help results')",
                                argv[i]);
        } else if (path) {
            return qs_cli_error(QS_EXIT_USAGE, "results export: unexpected argument '%s'", argv[i]);
        } else {
            path = argv[i];
        }
    }
    if (!path)
        return qs_cli_error(QS_EXIT_USAGE, "results export: expected RESULTS (see 'quasar help results')");
    if (!csv)
        return qs_cli_error(QS_EXIT_USAGE, "results export: give --csv (the only export format)");
    qs_res_table_t *runs = NULL, *lt = NULL;
    if (qs_res_open(path, &runs, layers ? &lt : NULL, NULL) < 0)
        return qs_cli_fail(QS_EXIT_RUNTIME);
    int rc = write_csv(layers ? lt : runs, outp);
    qs_res_table_free(runs);
    qs_res_table_free(lt);
    return rc < 0 ? qs_cli_fail(QS_EXIT_RUNTIME) : QS_EXIT_OK;
}

int qs_cmd_results(int argc, char **argv)
{
    if (argc < 2)
        return qs_cli_error(QS_EXIT_USAGE, "results: expected list, show, pareto or export (see 'quasar help results')");
    const char *sub = argv[1];
    if (strcmp(sub, "list") == 0)
        return results_list(argc, argv);
    if (strcmp(sub, "show") == 0)
        return results_show(argc, argv);
    if (strcmp(sub, "pareto") == 0)
        return results_pareto(argc, argv);
    if (strcmp(sub, "export") == 0)
        return results_export(argc, argv);
    return qs_cli_error(QS_EXIT_USAGE, "results: unknown subcommand '%s' (expected list, show, pareto or export)", sub);
}

/* ---- plot ---------------------------------------------------------------------------------------------- */

/* The folder a figure goes into by default: DIR/figures for an output folder
 * DIR, else figures/ beside the results file. */
static char *default_base(const char *results, const char *name)
{
    struct stat st;
    size_t n = strlen(results) + strlen(name) + 32;
    char *b = malloc(n);
    if (!b)
        return NULL;
    if (stat(results, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(b, n, "%s/figures", results);
    } else {
        const char *s = strrchr(results, '/');
        if (s)
            snprintf(b, n, "%.*s/figures", (int)(s - results), results);
        else
            snprintf(b, n, "figures");
    }
    if (mkdir(b, 0777) != 0 && errno != EEXIST) {
        qs_error(QS_ERR_IO, "%s: cannot create the folder: %s", b, strerror(errno));
        free(b);
        return NULL;
    }
    size_t used = strlen(b);
    snprintf(b + used, n - used, "/%s", name);
    return b;
}

int qs_cmd_plot(int argc, char **argv)
{
    qs_plot_t p;
    memset(&p, 0, sizeof p);
    const char *path = NULL, *kind = NULL, *base = NULL, *v;
    bool layers = false;
    struct {
        const char *flag;
        const char **dst;
    } opts[] = {{"--x", &p.x},       {"--y", &p.y},           {"--z", &p.z},           {"--kind", &kind},
                {"--group-by", &p.group_by}, {"--where", &p.where}, {"--format", &p.format}, {"--title", &p.title},
                {"-o", &base},        {"--output", &base}};
    for (int i = 1; i < argc; i++) {
        int m = 0;
        size_t k;
        for (k = 0; k < sizeof opts / sizeof *opts; k++)
            if ((m = qs_cli_opt(argc, argv, &i, opts[k].flag, &v)) != 0)
                break;
        if (m < 0)
            return QS_EXIT_USAGE;
        if (m > 0) {
            if (*opts[k].dst)
                return qs_cli_error(QS_EXIT_USAGE, "plot: %s given twice", opts[k].flag);
            *opts[k].dst = v;
            continue;
        }
        if (strcmp(argv[i], "--layers") == 0)
            layers = true;
        else if (argv[i][0] == '-' && argv[i][1])
            return qs_cli_error(QS_EXIT_USAGE, "plot: unknown option '%s' (see 'quasar help plot')", argv[i]);
        else if (path)
            return qs_cli_error(QS_EXIT_USAGE, "plot: unexpected argument '%s'", argv[i]);
        else
            path = argv[i];
    }
    if (!path)
        return qs_cli_error(QS_EXIT_USAGE, "plot: expected RESULTS (see 'quasar help plot')");
    if (!p.x || !p.y)
        return qs_cli_error(QS_EXIT_USAGE, "plot: give --x and --y");
    if (kind) {
        if (qs_plot_kind_parse(kind, &p.kind) < 0)
            return qs_cli_fail(QS_EXIT_USAGE);
    } else {
        p.kind = qs_metric_find(p.x) && qs_metric_find(p.y) ? QS_PLOT_PARETO : QS_PLOT_LINE;
    }
    if (p.kind == QS_PLOT_HEATMAP && !p.z)
        return qs_cli_error(QS_EXIT_USAGE, "plot: a heatmap needs --z");
    if (p.kind != QS_PLOT_HEATMAP && p.z)
        return qs_cli_error(QS_EXIT_USAGE, "plot: --z is for heatmaps (--kind heatmap)");
    if (p.format && strcmp(p.format, "png") != 0 && strcmp(p.format, "pdf") != 0 && strcmp(p.format, "svg") != 0)
        return qs_cli_error(QS_EXIT_USAGE, "plot: --format '%s': expected png, pdf or svg", p.format);
    if (base && !*base)
        return qs_cli_error(QS_EXIT_USAGE, "plot: -o: an empty name");
    qs_res_table_t *runs = NULL, *lt = NULL;
    if (qs_res_open(path, &runs, layers ? &lt : NULL, NULL) < 0)
        return qs_cli_fail(QS_EXIT_RUNTIME);
    char *own = NULL;
    int rc = QS_EXIT_OK;
    if (!base) {
        char name[512];
        if (p.kind == QS_PLOT_HEATMAP)
            snprintf(name, sizeof name, "plot-%s-over-%s-and-%s", p.z, p.x, p.y);
        else
            snprintf(name, sizeof name, "plot-%s-vs-%s", p.y, p.x);
        for (char *s = name; *s; s++)
            if (*s == '/' || *s == '\'')
                *s = '_';
        if (!(own = default_base(path, name)))
            rc = qs_cli_fail(QS_EXIT_RUNTIME);
        base = own;
    }
    bool rendered = false;
    if (rc == QS_EXIT_OK && qs_res_plot(layers ? lt : runs, &p, base, &rendered) < 0)
        rc = qs_cli_fail(QS_EXIT_RUNTIME);
    if (rc == QS_EXIT_OK) {
        printf("wrote %s.dat\nwrote %s.gp\n", base, base);
        if (rendered) {
            printf("wrote %s.%s\n", base, p.format ? p.format : "png");
        } else {
            const char *slash = strrchr(base, '/');
            fprintf(stderr,
                    "quasar: gnuplot not found: wrote %s.dat and %s.gp; install it with apt-get install "
                    "gnuplot-nox, then run gnuplot %s.gp%s%.*s\n",
                    base, base, slash ? slash + 1 : base, slash ? " in " : "", slash ? (int)(slash - base) : 0, base);
        }
    }
    free(own);
    qs_res_table_free(runs);
    qs_res_table_free(lt);
    return rc;
}
