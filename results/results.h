/* results/results.h — the result store (an append-only journal, the source of
 * truth, and results.h5 rebuilt from it atomically), tables of runs, CSV,
 * statistics over repeats, Pareto fronts and figures through a gnuplot pipe
 * (docs/results.md). results/ depends on core/ only: a run is a record of
 * named cells (registry metric names and field names), whatever produced it. */
#ifndef QS_RESULTS_H
#define QS_RESULTS_H

#include "core/core.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- records: one run's (or one layer's) named cells ------------------------------------------ */

/* Keys and values are copied; setting a key twice replaces its value. Keys
 * are column names ([A-Za-z0-9_.:-]+); values any text without NUL. */
typedef struct {
    int n, cap;
    char **key, **val;
} qs_res_record_t;
void qs_res_record_init(qs_res_record_t *r);
void qs_res_record_clear(qs_res_record_t *r); /* frees, then as after init */
int qs_res_record_set(qs_res_record_t *r, const char *key, const char *val);
/* A number as text that reads back exactly ("%.17g"; "nan", "inf", "-inf"). */
int qs_res_record_num(qs_res_record_t *r, const char *key, double v);
const char *qs_res_record_get(const qs_res_record_t *r, const char *key); /* NULL if absent */

/* ---- tables --------------------------------------------------------------------------------------- */

/* Rows of text cells under named columns, in insertion order; a missing cell
 * is NULL. A column is numeric when every present cell parses whole as a
 * double (strtod), "nan"/"inf" included. */
typedef struct {
    int ncols, nrows;
    int cap_cols, cap_rows;
    char **col;  /* ncols names */
    char **cell; /* cell[r * cap_cols + c] */
} qs_res_table_t;
qs_res_table_t *qs_res_table_create(void);
void qs_res_table_free(qs_res_table_t *t); /* NULL is fine */
int qs_res_table_col(const qs_res_table_t *t, const char *name); /* index or -1 */
int qs_res_table_add_col(qs_res_table_t *t, const char *name);   /* index (existing or new), < 0 on error */
int qs_res_table_add_row(qs_res_table_t *t);                     /* new row index (all missing), < 0 on error */
/* Sets a cell, adding the column if it is new; value NULL makes it missing. */
int qs_res_table_set(qs_res_table_t *t, int row, const char *col, const char *value);
/* A new row holding every cell of r. Returns its index. */
int qs_res_table_add_record(qs_res_table_t *t, const qs_res_record_t *r);
const char *qs_res_table_get(const qs_res_table_t *t, int row, int col); /* NULL: missing */
double qs_res_table_num(const qs_res_table_t *t, int row, int col);     /* NaN: missing or not a number */
bool qs_res_table_numeric(const qs_res_table_t *t, int col);
/* The rows whose cells match every "col=value" word of where (comma
 * separated; NULL or "" keeps all), in order; an unknown column is an error
 * listing the columns. */
int qs_res_table_filter(const qs_res_table_t *t, const char *where, qs_res_table_t **out);

/* ---- the journal (the source of truth) -------------------------------------------------------- */

/* DIR/journal.tsv, format in docs/results.md: a header line, then per
 * finished run its layer lines and its run line, written with one write and
 * flushed (fflush + fsync) before qs_res_journal_append returns. A torn last
 * line (no newline: a crash mid-write) is ignored by the reader; so are
 * layer lines whose run line never came. */
typedef struct qs_res_journal qs_res_journal_t;
/* Opens path for appending (created with its header when missing; an
 * existing file must start with the header). */
int qs_res_journal_open(const char *path, qs_res_journal_t **out);
/* Thread safe. run must hold "run" (the run's hash); each layer record gets
 * run = that hash added. */
int qs_res_journal_append(qs_res_journal_t *j, const qs_res_record_t *run, const qs_res_record_t *layers, int nlayers);
void qs_res_journal_close(qs_res_journal_t *j); /* NULL is fine */
/* Every run (column "run" first, one row per hash: a later line for the same
 * hash replaces an earlier one, in its place) and every layer line of those
 * runs. A malformed line before the last is an error naming file:line. */
int qs_res_journal_read(const char *path, qs_res_table_t **runs, qs_res_table_t **layers);
/* The hashes of the runs in path (a missing file: none), for resuming. */
int qs_res_journal_hashes(const char *path, char ***hashes, int *n);
void qs_res_strings_free(char **s, int n);

/* ---- results.h5 ------------------------------------------------------------------------------- */

/* Layout (docs/results.md): /runs and /layers hold one 1-D dataset per column
 * (float64 for numeric columns, NaN where missing; variable-length UTF-8
 * strings otherwise, "" where missing), each group with a "columns"
 * attribute listing the column order and a "rows" attribute; /provenance
 * holds prov's cells as string attributes; the root has "format" =
 * "quasar-results" and "version" = QS_RES_VERSION. Written to path.part, then
 * renamed over path: a crash leaves the previous store readable. */
#define QS_RES_VERSION 1
int qs_res_store_write(const char *path, const qs_res_table_t *runs, const qs_res_table_t *layers,
                       const qs_res_record_t *prov);
/* Reads a results.h5 written by qs_res_store_write (NaN numeric cells come
 * back as "nan", "" text cells as missing); layers and prov may be NULL. */
int qs_res_store_read(const char *path, qs_res_table_t **runs, qs_res_table_t **layers, qs_res_record_t *prov);
/* path: a results.h5, a journal.tsv, a .csv (runs only) or an output folder
 * (its results.h5, else its journal.tsv). layers and prov may be NULL. */
int qs_res_open(const char *path, qs_res_table_t **runs, qs_res_table_t **layers, qs_res_record_t *prov);

/* ---- CSV -------------------------------------------------------------------------------------- */

/* RFC 4180: a header row, then the rows; a cell with a comma, quote or line
 * break is quoted (quotes doubled); a missing cell is empty. */
int qs_res_csv_write(FILE *out, const qs_res_table_t *t);
/* One cell as qs_res_csv_write writes it (quoted when it holds a comma, a
 * quote or a line break), for programs that write CSV rows themselves. */
void qs_res_csv_cell(FILE *out, const char *s);
/* Reads what qs_res_csv_write writes (empty cells become missing). */
int qs_res_csv_read(const char *path, qs_res_table_t **out);

/* ---- analysis --------------------------------------------------------------------------------- */

/* Statistics over repeats: one row per distinct value of the column key (in
 * order of first appearance), holding the first row's cells for every column
 * that is not a metric, and for every numeric column listed in metrics M its
 * mean as M, its sample standard deviation (n - 1; 0 for one value) as M_std,
 * over the rows whose cell is a number, plus "repeats" = rows in the group. */
int qs_res_aggregate(const qs_res_table_t *t, const char *key, const char *const *metrics, int nmetrics,
                     qs_res_table_t **out);

/* The Pareto front of the n points (x[i], y[i]) with the given directions
 * (QS_BETTER_HIGHER or QS_BETTER_LOWER for each): a point is on the front when
 * no other point is at least as good in both coordinates and strictly
 * better in one. Points equal in both coordinates are all on the front or all
 * off it. Points with a NaN coordinate are never on it. front gets the indices,
 * sorted by x ascending (ties by index); returns their count. */
int qs_res_pareto(const double *x, const double *y, int n, qs_direction_t dx, qs_direction_t dy, int *front);

/* ---- figures ---------------------------------------------------------------------------------- */

typedef enum {
    QS_PLOT_PARETO = 0, /* y against x for every row, one series per group, the front of each drawn as a line */
    QS_PLOT_LINE,       /* y against x (sorted), one line per group, error bars from yerr */
    QS_PLOT_HEATMAP,    /* z over the grid of x and y values (mean of the rows in a cell) */
    QS_PLOT_BARS,       /* y per x category (e.g. per layer), one bar series per group */
} qs_plot_kind_t;
const char *qs_plot_kind_name(qs_plot_kind_t k); /* "pareto", "line", "heatmap", "bars" */
int qs_plot_kind_parse(const char *name, qs_plot_kind_t *k);

typedef struct {
    qs_plot_kind_t kind;
    const char *x, *y, *z;   /* columns (z: heatmaps only) */
    const char *group_by;    /* a column: one series per value; NULL: one series */
    const char *yerr;        /* a column of error bars; NULL: y + "_std" when that column exists */
    const char *where;       /* a row filter as qs_res_table_filter; NULL: all rows */
    const char *title;       /* NULL: derived from the names */
    const char *xlabel, *ylabel; /* NULL: the column name, with the metric registry's unit in brackets */
    const char *format;      /* "png" (default), "pdf", "svg" */
} qs_plot_t;

/* Writes base.dat (the data, one gnuplot index block per series, commented
 * with the series name), base.gp (a standalone script that reads base.dat and
 * draws base.FORMAT) and, when gnuplot is on PATH, renders base.FORMAT
 * through a pipe to it. *rendered (may be NULL) says whether the picture was
 * drawn; without gnuplot the call still succeeds (the .dat and .gp are
 * there, *rendered is false, no error is set) and the caller says how to
 * install gnuplot (`quasar plot` does). Rows whose "status" cell is present
 * and not "ok" are left out. */
int qs_res_plot(const qs_res_table_t *t, const qs_plot_t *p, const char *base, bool *rendered);
/* Whether gnuplot can be run (on PATH, or $QUASAR_GNUPLOT). */
bool qs_res_have_gnuplot(void);

#ifdef __cplusplus
}
#endif
#endif
