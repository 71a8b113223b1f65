/* results/csv.c — tables as CSV (RFC 4180, with "\n" line ends) for
 * spreadsheets, pandas and R: a header row of column names, then one row
 * per table row. Reading accepts what writing produces and what the usual
 * tools write (CRLF line ends, a UTF-8 byte order mark, no newline at the
 * end), and names file:line on anything else. */
#define _POSIX_C_SOURCE 200809L
#include "results/results.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void put_cell(FILE *out, const char *s, bool force_quotes)
{
    if (!force_quotes && !strpbrk(s, ",\"\r\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

void qs_res_csv_cell(FILE *out, const char *s) { put_cell(out, s ? s : "", false); }

int qs_res_csv_write(FILE *out, const qs_res_table_t *t)
{
    if (!out || !t)
        return qs_error(QS_ERR_INVALID, "CSV: no output or table given");
    if (t->ncols == 0)
        return QS_OK; /* an empty file reads back as an empty table */
    for (int c = 0; c < t->ncols; c++) {
        if (c)
            fputc(',', out);
        put_cell(out, t->col[c], false);
    }
    fputc('\n', out);
    for (int r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            if (c)
                fputc(',', out);
            const char *s = qs_res_table_get(t, r, c);
            /* a lone missing cell would make a blank line, which readers skip */
            put_cell(out, s ? s : "", t->ncols == 1 && (!s || !*s));
        }
        fputc('\n', out);
    }
    if (ferror(out))
        return qs_error(QS_ERR_IO, "CSV: cannot write: %s", strerror(errno ? errno : EIO));
    return QS_OK;
}

/* ---- reading ----------------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
} str_t;

static bool str_put(str_t *s, char c)
{
    if (s->n + 2 > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        char *p = realloc(s->p, cap);
        if (!p)
            return false;
        s->p = p;
        s->cap = cap;
    }
    s->p[s->n++] = c;
    s->p[s->n] = '\0';
    return true;
}

typedef struct {
    char **cell;
    int n, cap;
} row_t;

static void row_clear(row_t *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->cell[i]);
    r->n = 0;
}

static bool row_push(row_t *r, str_t *s)
{
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 16;
        char **c = realloc(r->cell, (size_t)cap * sizeof *c);
        if (!c)
            return false;
        r->cell = c;
        r->cap = cap;
    }
    char *v = strdup(s->p ? s->p : "");
    if (!v)
        return false;
    r->cell[r->n++] = v;
    s->n = 0;
    if (s->p)
        s->p[0] = '\0';
    return true;
}

/* Reads one record starting at text[*pos]: its cells into row. Returns 1
 * for a record, 0 at the end of the text, < 0 on an error (line numbers in
 * the message are those of the file; *line is advanced past the record). */
static int read_row(const char *path, const char *text, size_t len, size_t *pos, int *line, row_t *row)
{
    row_clear(row);
    if (*pos >= len)
        return 0;
    str_t cell = {0};
    int rc = 1;
    size_t i = *pos;
    for (;;) {
        bool quoted = false;
        if (i < len && text[i] == '"') {
            quoted = true;
            int qline = *line;
            i++;
            for (;;) {
                if (i >= len) {
                    rc = qs_error(QS_ERR_FORMAT, "%s:%d: a quoted cell is never closed", path, qline);
                    goto out;
                }
                char c = text[i++];
                if (c == '"') {
                    if (i < len && text[i] == '"') {
                        i++;
                    } else {
                        break;
                    }
                }
                if (c == '\n')
                    (*line)++;
                if (!str_put(&cell, c)) {
                    rc = qs_error(QS_ERR_NOMEM, "out of memory");
                    goto out;
                }
            }
        }
        for (; i < len && text[i] != ',' && text[i] != '\n' && !(text[i] == '\r' && i + 1 < len && text[i + 1] == '\n');
             i++) {
            if (quoted) {
                rc = qs_error(QS_ERR_FORMAT, "%s:%d: text after a quoted cell's closing quote", path, *line);
                goto out;
            }
            if (text[i] == '"') {
                rc = qs_error(QS_ERR_FORMAT, "%s:%d: a quote inside an unquoted cell", path, *line);
                goto out;
            }
            if (text[i] == '\0') {
                rc = qs_error(QS_ERR_FORMAT, "%s:%d: a NUL byte", path, *line);
                goto out;
            }
            if (!str_put(&cell, text[i])) {
                rc = qs_error(QS_ERR_NOMEM, "out of memory");
                goto out;
            }
        }
        if (!row_push(row, &cell)) {
            rc = qs_error(QS_ERR_NOMEM, "out of memory");
            goto out;
        }
        if (i >= len)
            break;
        if (text[i] == ',') {
            i++;
            continue;
        }
        i += text[i] == '\r' ? 2 : 1; /* the record's line end */
        (*line)++;
        break;
    }
out:
    free(cell.p);
    *pos = i;
    return rc;
}

int qs_res_csv_read(const char *path, qs_res_table_t **out)
{
    if (!out)
        return qs_error(QS_ERR_INVALID, "CSV: no output given");
    *out = NULL;
    if (!path)
        return qs_error(QS_ERR_INVALID, "CSV: no path given");
    str_t text = {0};
    int rc = qs_file_read(path, "CSV file", (size_t)1 << 34, &text.p, &text.n);
    text.cap = text.n + 1;
    qs_res_table_t *t = rc == QS_OK ? qs_res_table_create() : NULL;
    if (rc == QS_OK && !t)
        rc = QS_ERR_NOMEM;
    size_t pos = 0;
    if (text.n >= 3 && memcmp(text.p, "\xEF\xBB\xBF", 3) == 0)
        pos = 3; /* the byte order mark spreadsheets put first */
    int line = 1;
    row_t row = {0};
    int r = rc == QS_OK ? read_row(path, text.p, text.n, &pos, &line, &row) : 0;
    if (r < 0)
        rc = r;
    for (int c = 0; rc == QS_OK && r > 0 && c < row.n; c++) {
        if (!*row.cell[c]) {
            rc = qs_error(QS_ERR_FORMAT, "%s:1: column %d has an empty name", path, c + 1);
        } else if (qs_res_table_col(t, row.cell[c]) >= 0) {
            rc = qs_error(QS_ERR_FORMAT, "%s:1: column '%s' appears twice", path, row.cell[c]);
        } else if ((rc = qs_res_table_add_col(t, row.cell[c])) > 0) {
            rc = QS_OK;
        }
    }
    while (rc == QS_OK && r > 0) {
        /* a blank line is no record, except in a one-column table (where
         * the writer quotes an empty cell anyway) */
        if (t->ncols != 1 && pos < text.n &&
            (text.p[pos] == '\n' || (text.p[pos] == '\r' && pos + 1 < text.n && text.p[pos + 1] == '\n'))) {
            pos += text.p[pos] == '\r' ? 2 : 1;
            line++;
            continue;
        }
        int at = line;
        r = read_row(path, text.p, text.n, &pos, &line, &row);
        if (r < 0) {
            rc = r;
            break;
        }
        if (r == 0)
            break;
        if (row.n != t->ncols) {
            rc = qs_error(QS_ERR_FORMAT, "%s:%d: %d cells, expected %d (as in the header)", path, at, row.n, t->ncols);
            break;
        }
        int nr = qs_res_table_add_row(t);
        if (nr < 0) {
            rc = nr;
            break;
        }
        for (int c = 0; rc == QS_OK && c < row.n; c++)
            if (*row.cell[c])
                rc = qs_res_table_set(t, nr, t->col[c], row.cell[c]);
    }
    row_clear(&row);
    free(row.cell);
    free(text.p);
    if (rc < 0) {
        qs_res_table_free(t);
        return rc;
    }
    *out = t;
    return QS_OK;
}
