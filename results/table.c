/* results/table.c — tables of runs: text cells under named columns, rows in
 * insertion order, a missing cell NULL. Every reader (journal, results.h5,
 * CSV) builds one, and analysis, figures and the command read them; keeping
 * cells as text means nothing is lost between formats and a column's type is
 * decided only where a format needs one (results.h5, plots). */
#include "results/results.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

qs_res_table_t *qs_res_table_create(void)
{
    qs_res_table_t *t = calloc(1, sizeof *t);
    if (!t)
        qs_error(QS_ERR_NOMEM, "out of memory");
    return t;
}

void qs_res_table_free(qs_res_table_t *t)
{
    if (!t)
        return;
    for (int r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++)
            free(t->cell[(size_t)r * (size_t)t->cap_cols + (size_t)c]);
    for (int c = 0; c < t->ncols; c++)
        free(t->col[c]);
    free(t->col);
    free(t->cell);
    free(t);
}

int qs_res_table_col(const qs_res_table_t *t, const char *name)
{
    if (!t || !name)
        return -1;
    for (int c = 0; c < t->ncols; c++)
        if (strcmp(t->col[c], name) == 0)
            return c;
    return -1;
}

/* The cell array is laid out with cap_cols per row, so growing the columns
 * re-lays every row; columns are added rarely (a table's columns settle
 * after its first rows), rows often. */
static int reserve(qs_res_table_t *t, int cols, int rows)
{
    int cc = t->cap_cols, cr = t->cap_rows;
    while (cc < cols)
        cc = cc ? 2 * cc : 8;
    while (cr < rows)
        cr = cr ? 2 * cr : 16;
    if (cc == t->cap_cols && cr == t->cap_rows)
        return QS_OK;
    if ((size_t)cc * (size_t)cr > ((size_t)1 << 40) / sizeof(char *))
        return qs_error(QS_ERR_NOMEM, "table: too many cells (%d columns x %d rows)", cols, rows);
    if (cc != t->cap_cols) {
        /* the names first: a failure then leaves the table as it was */
        char **col = realloc(t->col, (size_t)cc * sizeof *col);
        if (!col)
            return qs_error(QS_ERR_NOMEM, "out of memory");
        t->col = col;
        char **cell = calloc((size_t)cc * (size_t)cr, sizeof *cell);
        if (!cell)
            return qs_error(QS_ERR_NOMEM, "out of memory");
        for (int r = 0; r < t->nrows; r++)
            memcpy(cell + (size_t)r * (size_t)cc, t->cell + (size_t)r * (size_t)t->cap_cols,
                   (size_t)t->ncols * sizeof *cell);
        free(t->cell);
        t->cell = cell;
        t->cap_cols = cc;
        t->cap_rows = cr;
    } else {
        char **cell = realloc(t->cell, (size_t)cc * (size_t)cr * sizeof *cell);
        if (!cell)
            return qs_error(QS_ERR_NOMEM, "out of memory");
        memset(cell + (size_t)cc * (size_t)t->cap_rows, 0, (size_t)cc * (size_t)(cr - t->cap_rows) * sizeof *cell);
        t->cell = cell;
        t->cap_rows = cr;
    }
    return QS_OK;
}

int qs_res_table_add_col(qs_res_table_t *t, const char *name)
{
    if (!t || !name || !*name)
        return qs_error(QS_ERR_INVALID, "table: empty column name");
    int c = qs_res_table_col(t, name);
    if (c >= 0)
        return c;
    /* cap_rows is at least 1 so that the column names have room even in a
     * table without rows */
    int rc = reserve(t, t->ncols + 1, t->nrows > 0 ? t->nrows : 1);
    if (rc < 0)
        return rc;
    char *n = strdup(name);
    if (!n)
        return qs_error(QS_ERR_NOMEM, "out of memory");
    t->col[t->ncols] = n;
    return t->ncols++;
}

int qs_res_table_add_row(qs_res_table_t *t)
{
    if (!t)
        return qs_error(QS_ERR_INVALID, "table: no table given");
    int rc = reserve(t, t->ncols > 0 ? t->ncols : 1, t->nrows + 1);
    if (rc < 0)
        return rc;
    return t->nrows++;
}

int qs_res_table_set(qs_res_table_t *t, int row, const char *col, const char *value)
{
    if (!t || row < 0 || row >= (t ? t->nrows : 0))
        return qs_error(QS_ERR_INVALID, "table: row %d out of range", row);
    int c = qs_res_table_add_col(t, col);
    if (c < 0)
        return c;
    char *v = NULL;
    if (value && !(v = strdup(value)))
        return qs_error(QS_ERR_NOMEM, "out of memory");
    char **slot = &t->cell[(size_t)row * (size_t)t->cap_cols + (size_t)c];
    free(*slot);
    *slot = v;
    return QS_OK;
}

int qs_res_table_add_record(qs_res_table_t *t, const qs_res_record_t *r)
{
    int row = qs_res_table_add_row(t);
    if (row < 0)
        return row;
    for (int i = 0; r && i < r->n; i++) {
        int rc = qs_res_table_set(t, row, r->key[i], r->val[i]);
        if (rc < 0)
            return rc;
    }
    return row;
}

const char *qs_res_table_get(const qs_res_table_t *t, int row, int col)
{
    if (!t || row < 0 || row >= t->nrows || col < 0 || col >= t->ncols)
        return NULL;
    return t->cell[(size_t)row * (size_t)t->cap_cols + (size_t)col];
}

/* Whole-string strtod; leading blanks are refused (strtod would skip them)
 * so that " 8" stays text, as it would in any other reader. */
static bool parse_num(const char *s, double *v)
{
    if (!s || !*s || isspace((unsigned char)*s))
        return false;
    char *end;
    double d = strtod(s, &end);
    if (*end != '\0')
        return false;
    *v = d;
    return true;
}

double qs_res_table_num(const qs_res_table_t *t, int row, int col)
{
    double v;
    return parse_num(qs_res_table_get(t, row, col), &v) ? v : NAN;
}

bool qs_res_table_numeric(const qs_res_table_t *t, int col)
{
    if (!t || col < 0 || col >= t->ncols)
        return false;
    for (int r = 0; r < t->nrows; r++) {
        const char *s = qs_res_table_get(t, r, col);
        double v;
        if (s && !parse_num(s, &v))
            return false;
    }
    return true;
}

/* "run, point, status, ..." for messages about unknown columns */
static void col_list(const qs_res_table_t *t, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int c = 0; c < t->ncols; c++) {
        int w = snprintf(buf + used, n - used, "%s%s", c ? ", " : "", t->col[c]);
        if (w < 0 || (size_t)w >= n - used) {
            if (n > 4)
                snprintf(buf + n - 4, 4, "...");
            return;
        }
        used += (size_t)w;
    }
    if (t->ncols == 0)
        snprintf(buf, n, "none");
}

/* A cell matches a wanted value when the text is equal or both read as the
 * same number, so that w_bits=8 finds "8" and "8.0"; an empty value matches a
 * missing cell. */
static bool cell_matches(const char *cell, const char *want)
{
    if (!cell)
        return *want == '\0';
    if (strcmp(cell, want) == 0)
        return true;
    double a, b;
    return parse_num(cell, &a) && parse_num(want, &b) && a == b;
}

typedef struct {
    int col;
    char *value;
} cond_t;

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int qs_res_table_filter(const qs_res_table_t *t, const char *where, qs_res_table_t **out)
{
    if (!out)
        return qs_error(QS_ERR_INVALID, "filter: no output given");
    *out = NULL;
    if (!t)
        return qs_error(QS_ERR_INVALID, "filter: no table given");
    char *copy = strdup(where ? where : "");
    size_t nmax = 1;
    for (const char *p = where ? where : ""; *p; p++)
        nmax += *p == ',';
    cond_t *cond = calloc(nmax, sizeof *cond);
    int ncond = 0, rc = QS_OK;
    if (!copy || !cond) {
        free(copy);
        free(cond);
        return qs_error(QS_ERR_NOMEM, "out of memory");
    }
    char *save = NULL;
    for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        w = trim(w);
        if (!*w)
            continue;
        char *eq = strchr(w, '=');
        if (!eq) {
            rc = qs_error(QS_ERR_INVALID, "where: '%s': expected COLUMN=VALUE", w);
            break;
        }
        *eq = '\0';
        char *name = trim(w), *value = trim(eq + 1);
        int c = qs_res_table_col(t, name);
        if (c < 0) {
            char list[768];
            col_list(t, list, sizeof list);
            rc = qs_error(QS_ERR_INVALID, "where: unknown column '%s' (columns: %s)", name, list);
            break;
        }
        cond[ncond].col = c;
        cond[ncond].value = value;
        ncond++;
    }
    qs_res_table_t *o = rc == QS_OK ? qs_res_table_create() : NULL;
    if (rc == QS_OK && !o)
        rc = QS_ERR_NOMEM;
    for (int c = 0; rc == QS_OK && c < t->ncols; c++)
        if ((rc = qs_res_table_add_col(o, t->col[c])) > 0)
            rc = QS_OK;
    for (int r = 0; rc == QS_OK && r < t->nrows; r++) {
        bool keep = true;
        for (int k = 0; keep && k < ncond; k++)
            keep = cell_matches(qs_res_table_get(t, r, cond[k].col), cond[k].value);
        if (!keep)
            continue;
        int nr = qs_res_table_add_row(o);
        if (nr < 0) {
            rc = nr;
            break;
        }
        for (int c = 0; rc == QS_OK && c < t->ncols; c++) {
            const char *s = qs_res_table_get(t, r, c);
            if (s)
                rc = qs_res_table_set(o, nr, t->col[c], s);
        }
    }
    free(copy);
    free(cond);
    if (rc < 0) {
        qs_res_table_free(o);
        return rc;
    }
    *out = o;
    return QS_OK;
}
