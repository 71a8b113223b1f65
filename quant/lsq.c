/* quant/lsq.c — least-squares sign-basis grids (Pouransari, Tu, Tuzel,
 * "Least squares binary quantization of neural networks", CVPR-W 2020) on
 * one slice of values (a tensor, a channel or a group):
 *  - ls-1: x ≈ v·sign(x), v = mean |x| (the least-squares binary scale);
 *  - gf-k: k greedy rounds, each binarizing the residual of the previous ones;
 *  - ls-2: the optimal x ≈ v1·b1 + v2·b2 (b in {±1}), i.e. the best symmetric
 *    4-level grid {±(v1 − v2), ±(v1 + v2)}: |x| sorted once, then every split
 *    of the sorted magnitudes into an inner and an outer group is scored from
 *    prefix sums (the levels are the groups' mean magnitudes), O(n log n);
 *  - ls-t: the optimal ternary grid {−v, 0, v}, by the same scan (the inner
 *    group goes to 0, v is the outer group's mean magnitude).
 * The scans are exact: every split is scored, where the reference
 * implementation subsamples candidates and skips some splits. For optimal
 * levels the optimal assignment is a split of the sorted magnitudes, so the
 * best split is the optimum. Ties: a magnitude exactly on a threshold (the
 * midpoint of two levels) goes to the smaller magnitude level. */
#include "quant/quant_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The magnitudes of x sorted ascending, and prefix sums of them and of their squares. */
static int sorted_prefix(const float *x, int64_t n, double **mag, double **s1, double **s2)
{
    *mag = malloc((size_t)n * sizeof **mag);
    *s1 = malloc((size_t)(n + 1) * sizeof **s1);
    *s2 = malloc((size_t)(n + 1) * sizeof **s2);
    if (!*mag || !*s1 || !*s2) {
        free(*mag), free(*s1), free(*s2);
        return qs_error(QS_ERR_NOMEM, "least-squares grid: out of memory for %lld values", (long long)n);
    }
    for (int64_t i = 0; i < n; i++)
        (*mag)[i] = fabs((double)x[i]);
    qsort(*mag, (size_t)n, sizeof **mag, cmp_double);
    (*s1)[0] = (*s2)[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        (*s1)[i + 1] = (*s1)[i] + (*mag)[i];
        (*s2)[i + 1] = (*s2)[i] + (*mag)[i] * (*mag)[i];
    }
    return QS_OK;
}

int qs_lsq_fit(qs_lsq_kind_t kind, int k, const float *x, int64_t n, qs_lsq_grid_t *g)
{
    memset(g, 0, sizeof *g);
    g->kind = kind;
    if (n < 1)
        return qs_error(QS_ERR_INVALID, "least-squares grid: no values");
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return qs_error(QS_ERR_INVALID, "least-squares grid: value %lld is not finite", (long long)i);
    if (kind == QS_LSQ_1 || kind == QS_LSQ_GF) {
        int rounds = kind == QS_LSQ_1 ? 1 : k;
        if (rounds < 1 || rounds > QS_LSQ_MAX_BASIS)
            return qs_error(QS_ERR_INVALID, "least-squares grid: gf-k needs k in 1..%d, got %d", QS_LSQ_MAX_BASIS, rounds);
        double *r = malloc((size_t)n * sizeof *r);
        if (!r)
            return qs_error(QS_ERR_NOMEM, "least-squares grid: out of memory");
        for (int64_t i = 0; i < n; i++)
            r[i] = x[i];
        for (int j = 0; j < rounds; j++) {
            double s = 0;
            for (int64_t i = 0; i < n; i++)
                s += fabs(r[i]);
            double v = s / (double)n;
            g->v[j] = v;
            for (int64_t i = 0; i < n; i++)
                r[i] -= r[i] >= 0 ? v : -v; /* sign(0) = +1 */
        }
        g->nbasis = rounds;
        free(r);
        return QS_OK;
    }
    if (kind != QS_LSQ_2 && kind != QS_LSQ_T)
        return qs_error(QS_ERR_INVALID, "least-squares grid: unknown kind %d", (int)kind);
    double *mag, *s1, *s2;
    int rc = sorted_prefix(x, n, &mag, &s1, &s2);
    if (rc < 0)
        return rc;
    /* split m: mag[0..m) inner, mag[m..n) outer; error of a group with mean mu = Σa² − (Σa)²/count */
    double best = INFINITY;
    int64_t bm = 0;
    for (int64_t m = 0; m <= n; m++) {
        double in1 = s1[m], in2 = s2[m], out1 = s1[n] - s1[m], out2 = s2[n] - s2[m];
        double e_in = kind == QS_LSQ_T ? in2 : (m ? in2 - in1 * in1 / (double)m : 0);
        double e_out = m < n ? out2 - out1 * out1 / (double)(n - m) : 0;
        double e = e_in + e_out;
        if (e < best) { /* the first (smallest) split of equal error */
            best = e;
            bm = m;
        }
    }
    double inner = bm ? s1[bm] / (double)bm : 0, outer = bm < n ? (s1[n] - s1[bm]) / (double)(n - bm) : 0;
    if (kind == QS_LSQ_T) {
        g->v[0] = outer;
        g->nbasis = 1;
    } else {
        /* levels ±inner, ±outer = ±(v1 − v2), ±(v1 + v2) */
        g->v[0] = (outer + inner) / 2;
        g->v[1] = (outer - inner) / 2;
        g->nbasis = 2;
    }
    free(mag), free(s1), free(s2);
    return QS_OK;
}

double qs_lsq_quantize(const qs_lsq_grid_t *g, double x)
{
    double a = fabs(x), s = x < 0 ? -1.0 : 1.0;
    switch (g->kind) {
    case QS_LSQ_T:
        return a <= g->v[0] / 2 ? 0.0 : s * g->v[0]; /* on the threshold: the smaller level */
    case QS_LSQ_2: {
        double inner = g->v[0] - g->v[1], outer = g->v[0] + g->v[1];
        return s * (a <= (inner + outer) / 2 ? inner : outer);
    }
    default: { /* sign basis: b_j = sign of the residual */
        double r = x, y = 0;
        for (int j = 0; j < g->nbasis; j++) {
            double b = r >= 0 ? g->v[j] : -g->v[j];
            y += b;
            r -= b;
        }
        return y;
    }
    }
}

double qs_lsq_mse(const qs_lsq_grid_t *g, const float *x, int64_t n)
{
    double e = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - qs_lsq_quantize(g, x[i]);
        e += d * d;
    }
    return n ? e / (double)n : 0;
}
