/* results/analysis.c — what is computed over a table of runs: statistics
 * over repeats (the same point run with several seeds) and Pareto fronts
 * (accuracy against energy, latency or size). */
#include "results/results.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void fmt_num(char *buf, size_t n, double v)
{
    if (isnan(v))
        snprintf(buf, n, "nan");
    else if (isinf(v))
        snprintf(buf, n, "%s", v > 0 ? "inf" : "-inf");
    else
        snprintf(buf, n, "%.17g", v);
}

/* ---- statistics over repeats -------------------------------------------------------------------- */

static bool listed(const char *const *metrics, int nmetrics, const char *name)
{
    for (int i = 0; i < nmetrics; i++)
        if (metrics[i] && strcmp(metrics[i], name) == 0)
            return true;
    return false;
}

static bool same(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

int qs_res_aggregate(const qs_res_table_t *t, const char *key, const char *const *metrics, int nmetrics,
                     qs_res_table_t **out)
{
    if (!out)
        return qs_error(QS_ERR_INVALID, "aggregate: no output given");
    *out = NULL;
    if (!t || !key || nmetrics < 0 || (nmetrics > 0 && !metrics))
        return qs_error(QS_ERR_INVALID, "aggregate: bad arguments");
    int kc = qs_res_table_col(t, key);
    if (kc < 0) {
        char list[768] = "none";
        size_t used = 0;
        for (int c = 0; c < t->ncols && used + 4 < sizeof list; c++) {
            int w = snprintf(list + used, sizeof list - used, "%s%s", c ? ", " : "", t->col[c]);
            used += w > 0 ? (size_t)w : 0;
        }
        return qs_error(QS_ERR_INVALID, "aggregate: unknown column '%s' (columns: %s)", key, list);
    }
    /* group[r]: the group of row r; first[g]: the row that opened group g */
    int *group = malloc(((size_t)t->nrows + 1) * sizeof *group);
    int *first = malloc(((size_t)t->nrows + 1) * sizeof *first);
    double *vals = malloc(((size_t)t->nrows + 1) * sizeof *vals);
    qs_res_table_t *o = qs_res_table_create();
    int ngroups = 0, rc = QS_OK;
    if (!group || !first || !vals || !o)
        rc = qs_error(QS_ERR_NOMEM, "out of memory");
    /* n is small (a sweep's runs): a linear search over the groups is enough */
    for (int r = 0; rc == QS_OK && r < t->nrows; r++) {
        const char *k = qs_res_table_get(t, r, kc);
        int g = 0;
        while (g < ngroups && !same(qs_res_table_get(t, first[g], kc), k))
            g++;
        if (g == ngroups)
            first[ngroups++] = r;
        group[r] = g;
    }
    for (int g = 0; rc == QS_OK && g < ngroups; g++)
        if (qs_res_table_add_row(o) < 0)
            rc = QS_ERR_NOMEM;
    for (int c = 0; rc == QS_OK && c < t->ncols; c++) {
        const char *name = t->col[c];
        size_t len = strlen(name);
        /* our own M_std and repeats replace any the table already had */
        if (strcmp(name, "repeats") == 0)
            continue;
        if (len > 4 && strcmp(name + len - 4, "_std") == 0) {
            char base[256];
            snprintf(base, sizeof base, "%.*s", (int)(len - 4), name);
            if (listed(metrics, nmetrics, base) && qs_res_table_col(t, base) >= 0)
                continue;
        }
        if (c != kc && listed(metrics, nmetrics, name)) {
            char sname[300];
            snprintf(sname, sizeof sname, "%s_std", name);
            if ((rc = qs_res_table_add_col(o, name)) < 0 || (rc = qs_res_table_add_col(o, sname)) < 0)
                break;
            rc = QS_OK;
            for (int g = 0; rc == QS_OK && g < ngroups; g++) {
                int n = 0;
                for (int r = first[g]; r < t->nrows; r++) {
                    double v = qs_res_table_num(t, r, c);
                    if (group[r] == g && !isnan(v))
                        vals[n++] = v;
                }
                if (n == 0)
                    continue; /* nothing measured: the cells stay missing */
                double sum = 0;
                for (int i = 0; i < n; i++)
                    sum += vals[i];
                double mean = sum / n, ss = 0;
                /* two passes: the deviations are summed after the mean is known,
                 * which keeps the variance accurate when it is small against the mean */
                for (int i = 0; i < n; i++)
                    ss += (vals[i] - mean) * (vals[i] - mean);
                double sd = n > 1 ? sqrt(ss / (n - 1)) : 0.0;
                char b1[40], b2[40];
                fmt_num(b1, sizeof b1, mean);
                fmt_num(b2, sizeof b2, sd);
                if ((rc = qs_res_table_set(o, g, name, b1)) == QS_OK)
                    rc = qs_res_table_set(o, g, sname, b2);
            }
        } else {
            if ((rc = qs_res_table_add_col(o, name)) < 0)
                break;
            rc = QS_OK;
            for (int g = 0; rc == QS_OK && g < ngroups; g++)
                rc = qs_res_table_set(o, g, name, qs_res_table_get(t, first[g], c));
        }
    }
    if (rc == QS_OK && (rc = qs_res_table_add_col(o, "repeats")) >= 0) {
        rc = QS_OK;
        for (int g = 0; rc == QS_OK && g < ngroups; g++) {
            int n = 0;
            for (int r = first[g]; r < t->nrows; r++)
                n += group[r] == g;
            char b[24];
            snprintf(b, sizeof b, "%d", n);
            rc = qs_res_table_set(o, g, "repeats", b);
        }
    }
    free(group);
    free(first);
    free(vals);
    if (rc < 0) {
        qs_res_table_free(o);
        return rc;
    }
    *out = o;
    return QS_OK;
}

/* ---- Pareto fronts ----------------------------------------------------------------------------- */

typedef struct {
    double a, b; /* both coordinates turned into "higher is better" */
    double x;    /* as given, for the output order */
    int i;
} pt_t;

/* a descending, then b descending: a point can then only be dominated by
 * points before it */
static int by_a_b(const void *p, const void *q)
{
    const pt_t *u = p, *v = q;
    if (u->a != v->a)
        return u->a > v->a ? -1 : 1;
    if (u->b != v->b)
        return u->b > v->b ? -1 : 1;
    return (u->i > v->i) - (u->i < v->i);
}

static int by_x_index(const void *p, const void *q)
{
    const pt_t *u = p, *v = q;
    if (u->x != v->x)
        return u->x < v->x ? -1 : 1;
    return (u->i > v->i) - (u->i < v->i);
}

static bool dir_ok(qs_direction_t d) { return d == QS_BETTER_HIGHER || d == QS_BETTER_LOWER; }

int qs_res_pareto(const double *x, const double *y, int n, qs_direction_t dx, qs_direction_t dy, int *front)
{
    if (!dir_ok(dx) || !dir_ok(dy))
        return qs_error(QS_ERR_INVALID, "pareto: each axis needs a direction (higher or lower is better)");
    if (n < 0 || (n > 0 && (!x || !y || !front)))
        return qs_error(QS_ERR_INVALID, "pareto: bad arguments");
    if (n == 0)
        return 0;
    pt_t *p = malloc((size_t)n * sizeof *p);
    if (!p)
        return qs_error(QS_ERR_NOMEM, "out of memory");
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (isnan(x[i]) || isnan(y[i]))
            continue;
        p[m].a = dx == QS_BETTER_HIGHER ? x[i] : -x[i];
        p[m].b = dy == QS_BETTER_HIGHER ? y[i] : -y[i];
        p[m].x = x[i];
        p[m].i = i;
        m++;
    }
    qsort(p, (size_t)m, sizeof *p, by_a_b);
    /* Sweep in groups of equal a. A point is dominated by a point of a
     * strictly better a with b at least as good (best_b of the groups
     * before), or by one of equal a with a strictly better b (the group's
     * first, its best). Points equal in both coordinates share their fate. */
    int k = 0;
    double best_b = -INFINITY;
    bool any_before = false;
    for (int s = 0; s < m;) {
        int e = s;
        while (e < m && p[e].a == p[s].a)
            e++;
        double gmax = p[s].b;
        for (int j = s; j < e; j++) {
            bool dominated = (any_before && best_b >= p[j].b) || gmax > p[j].b;
            if (!dominated)
                p[k++] = p[j]; /* k <= j: compacting in place is safe */
        }
        if (!any_before || gmax > best_b)
            best_b = gmax;
        any_before = true;
        s = e;
    }
    qsort(p, (size_t)k, sizeof *p, by_x_index);
    for (int j = 0; j < k; j++)
        front[j] = p[j].i;
    free(p);
    return k;
}
