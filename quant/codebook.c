/* quant/codebook.c — codebooks of levels fitted to data: the optimal 1-D
 * k-means by dynamic programming, and Lloyd-Max iterations; and the
 * nearest-level rule every codebook grid quantizes with.
 *
 * Optimal k-means. With the distinct values u_0 < … < u_{m−1} (counts w_i),
 * an optimal clustering is a split into k contiguous runs, each quantized to
 * its mean. D[c][j] = min_i D[c−1][i−1] + cost(i, j), cost from prefix sums
 * of w, w·u and w·u². The optimal i is monotone in j (Wang and Song,
 * "Ckmeans.1d.dp", The R Journal 2011; Grønlund et al., "Fast exact k-means,
 * k-medians and Bregman divergence clustering in 1D", 2017), so each row is
 * filled by divide and conquer in O(m log m): O(k·m·log m) in all. Values are
 * centred on their mean first, so the prefix sums lose little to cancellation. */
#include "quant/quant_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Entries of the split table (int32, 256 MiB) the exact DP may use. */
#define QS_KMEANS_MAX_TABLE 67108864.0

int qs_codebook_index(const float *lv, int m, float x)
{
    if (isnan(x))
        x = 0.0f;
    /* the first level above x: lo = count of levels <= x */
    int lo = 0, hi = m;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (lv[mid] <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return 0;
    if (lo == m)
        return m - 1;
    int a = lo - 1, b = lo; /* lv[a] <= x < lv[b] */
    double t = ((double)lv[a] + (double)lv[b]) / 2; /* exact in double */
    if ((double)x < t)
        return a;
    if ((double)x > t)
        return b;
    double ma = fabs((double)lv[a]), mb = fabs((double)lv[b]);
    return ma < mb ? a : b; /* on the midpoint: the smaller magnitude; equal magnitudes: the positive level */
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The distinct values of x (sorted) with their counts, centred on the mean. */
typedef struct {
    int64_t m;
    double mean;
    double *u, *w;
    double *p0, *p1, *p2; /* prefix sums of w, w·u, w·u², [m + 1] */
} distinct_t;

static void distinct_free(distinct_t *d)
{
    free(d->u), free(d->w), free(d->p0), free(d->p1), free(d->p2);
}

static int distinct_make(const float *x, int64_t n, distinct_t *d)
{
    memset(d, 0, sizeof *d);
    float *s = malloc((size_t)n * sizeof *s);
    d->u = malloc((size_t)n * sizeof *d->u);
    d->w = malloc((size_t)n * sizeof *d->w);
    d->p0 = malloc((size_t)(n + 1) * sizeof *d->p0);
    d->p1 = malloc((size_t)(n + 1) * sizeof *d->p1);
    d->p2 = malloc((size_t)(n + 1) * sizeof *d->p2);
    if (!s || !d->u || !d->w || !d->p0 || !d->p1 || !d->p2) {
        free(s);
        distinct_free(d);
        return qs_error(QS_ERR_NOMEM, "codebook: out of memory for %lld values", (long long)n);
    }
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) {
            free(s);
            distinct_free(d);
            return qs_error(QS_ERR_NUMERIC, "codebook: value %lld is not finite", (long long)i);
        }
        s[i] = x[i];
        sum += x[i];
    }
    qsort(s, (size_t)n, sizeof *s, cmp_float);
    d->mean = sum / (double)n;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        if (m > 0 && s[i] == s[i - 1]) {
            d->w[m - 1] += 1;
            continue;
        }
        d->u[m] = (double)s[i] - d->mean;
        d->w[m] = 1;
        m++;
    }
    d->m = m;
    d->p0[0] = d->p1[0] = d->p2[0] = 0;
    for (int64_t i = 0; i < m; i++) {
        d->p0[i + 1] = d->p0[i] + d->w[i];
        d->p1[i + 1] = d->p1[i] + d->w[i] * d->u[i];
        d->p2[i + 1] = d->p2[i] + d->w[i] * d->u[i] * d->u[i];
    }
    free(s);
    return QS_OK;
}

/* Squared error of the run u[i..j] around its mean. */
static inline double run_cost(const distinct_t *d, int64_t i, int64_t j)
{
    double w = d->p0[j + 1] - d->p0[i], s = d->p1[j + 1] - d->p1[i], q = d->p2[j + 1] - d->p2[i];
    double c = q - s * s / w;
    return c > 0 ? c : 0;
}

typedef struct {
    const distinct_t *d;
    const double *prev; /* D[c−1][·], prev[j] = best for u[0..j] in c−1 runs */
    double *cur;
    int32_t *arg;       /* the start of the last run */
    int c;              /* runs − 1: the first run index allowed is c */
} dc_t;

/* cur[j] for j in [jl, jr], the optimal start in [il, ir]. */
static void dc_fill(const dc_t *t, int64_t jl, int64_t jr, int64_t il, int64_t ir)
{
    while (jl <= jr) {
        int64_t j = (jl + jr) / 2, best_i = il;
        double best = INFINITY;
        int64_t hi = ir < j ? ir : j;
        for (int64_t i = il; i <= hi; i++) {
            double v = t->prev[i - 1] + run_cost(t->d, i, j);
            if (v < best) {
                best = v;
                best_i = i;
            }
        }
        t->cur[j] = best;
        t->arg[j] = (int32_t)best_i;
        /* left half recursively, right half by iteration */
        if (jl <= j - 1)
            dc_fill(t, jl, j - 1, il, best_i);
        jl = j + 1;
        il = best_i;
    }
}

int qs_kmeans_fit(const float *x, int64_t n, int k, double *levels)
{
    if (n < 1 || k < 1)
        return qs_error(QS_ERR_INVALID, "kmeans: %lld values into %d levels: expected at least one of each",
                        (long long)n, k);
    if (n > INT32_MAX)
        return qs_error(QS_ERR_INVALID, "kmeans: %lld values: at most 2^31 - 1", (long long)n);
    distinct_t d;
    int rc = distinct_make(x, n, &d);
    if (rc < 0)
        return rc;
    int64_t m = d.m;
    int runs = k < m ? k : (int)m;
    if ((double)runs * (double)m > QS_KMEANS_MAX_TABLE) {
        distinct_free(&d);
        return qs_error(QS_ERR_INVALID,
                        "kmeans: %d levels over %lld distinct values need a %.3g-entry split table (at most 2^26): use "
                        "lloyd, fewer bits, or a finer granularity (per channel or per group)",
                        runs, (long long)m, (double)runs * (double)m);
    }
    double *rows = malloc((size_t)(2 * m) * sizeof *rows);
    int32_t *arg = malloc((size_t)runs * (size_t)m * sizeof *arg);
    if (!rows || !arg) {
        free(rows), free(arg);
        distinct_free(&d);
        return qs_error(QS_ERR_NOMEM, "kmeans: out of memory for %d x %lld split table", runs, (long long)m);
    }
    double *prev = rows, *cur = rows + m;
    for (int64_t j = 0; j < m; j++) {
        prev[j] = run_cost(&d, 0, j);
        arg[j] = 0;
    }
    for (int c = 1; c < runs; c++) {
        for (int64_t j = 0; j < c; j++)
            cur[j] = INFINITY; /* fewer values than runs */
        dc_t t = {&d, prev, cur, arg + (size_t)c * (size_t)m, c};
        dc_fill(&t, c, m - 1, c, m - 1);
        double *sw = prev;
        prev = cur;
        cur = sw;
    }
    /* backtrack the runs from the top */
    int64_t j = m - 1;
    for (int c = runs - 1; c >= 0; c--) {
        int64_t i = arg[(size_t)c * (size_t)m + (size_t)j];
        double w = d.p0[j + 1] - d.p0[i], s = d.p1[j + 1] - d.p1[i];
        levels[c] = s / w + d.mean;
        j = i - 1;
    }
    for (int c = runs; c < k; c++)
        levels[c] = levels[runs - 1];
    free(rows), free(arg);
    distinct_free(&d);
    return QS_OK;
}

int qs_lloyd_fit(const float *x, int64_t n, int k, const double *init, double *levels)
{
    if (n < 1 || k < 1)
        return qs_error(QS_ERR_INVALID, "lloyd: %lld values into %d levels: expected at least one of each",
                        (long long)n, k);
    distinct_t d;
    int rc = distinct_make(x, n, &d);
    if (rc < 0)
        return rc;
    double *lv = malloc((size_t)k * sizeof *lv);
    if (!lv) {
        distinct_free(&d);
        return qs_error(QS_ERR_NOMEM, "lloyd: out of memory");
    }
    double lo = d.u[0], hi = d.u[d.m - 1];
    for (int c = 0; c < k; c++)
        lv[c] = init ? init[c] - d.mean : (k == 1 ? (lo + hi) / 2 : lo + (hi - lo) * c / (k - 1));
    for (int iter = 0; iter < 1000; iter++) {
        /* sort the levels, then each cell (values nearest each level) takes its mean */
        for (int a = 1; a < k; a++)
            for (int b = a; b > 0 && lv[b - 1] > lv[b]; b--) {
                double t = lv[b];
                lv[b] = lv[b - 1];
                lv[b - 1] = t;
            }
        bool moved = false;
        int64_t i = 0;
        for (int c = 0; c < k; c++) {
            double t = c + 1 < k ? (lv[c] + lv[c + 1]) / 2 : INFINITY;
            int64_t b = i;
            while (i < d.m && (d.u[i] < t || (d.u[i] == t && fabs(lv[c]) <= fabs(lv[c + 1]))))
                i++;
            if (i > b) { /* an empty cell keeps its level */
                double w = d.p0[i] - d.p0[b], s = d.p1[i] - d.p1[b];
                double nv = s / w;
                if (nv != lv[c])
                    moved = true;
                lv[c] = nv;
            }
        }
        if (!moved)
            break;
    }
    for (int c = 0; c < k; c++)
        levels[c] = lv[c] + d.mean;
    free(lv);
    distinct_free(&d);
    return QS_OK;
}

double qs_codebook_sse(const double *levels, int k, const float *x, int64_t n)
{
    double e = 0;
    for (int64_t i = 0; i < n; i++) {
        double best = INFINITY;
        for (int c = 0; c < k; c++) {
            double dd = (double)x[i] - levels[c];
            if (dd * dd < best)
                best = dd * dd;
        }
        e += best;
    }
    return e;
}
