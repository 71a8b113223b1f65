/* tests/test_range.c — range setting: every setter against a brute force
 * over its documented candidate set (docs/arithmetic.md, "Range setting"),
 * the observer over many batches, per-channel and per-group against
 * per-tensor on hand-extracted slices, and the errors. */
#include <unistd.h>

#include "tests/testutil.h"

#include "quant/quant_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NB QS_HIST_BINS

static const qs_scheme_t SCHEMES[] = {QS_SCHEME_SYMMETRIC, QS_SCHEME_SYMMETRIC_NARROW, QS_SCHEME_UNSIGNED,
                                      QS_SCHEME_ASYMMETRIC, QS_SCHEME_ASYMMETRIC_SIGNED};
#define NSCHEMES ((int)(sizeof SCHEMES / sizeof SCHEMES[0]))
static const int SIZES[] = {1, 2, 3, 5, 8, 13, 21, 34, 50};
#define NSIZES ((int)(sizeof SIZES / sizeof SIZES[0]))

/* ---- helpers -------------------------------------------------------------------------- */

static uint64_t rs;
static uint64_t next64(void)
{
    uint64_t z = (rs += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static double urand(void) { return (double)(next64() >> 11) * 0x1.0p-53; }
static double nrand(void)
{
    double u = urand(), v = urand();
    return sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v);
}
static double lrand(void) /* Laplace(0, 1) */
{
    double u = urand() - 0.5;
    return u < 0 ? log(1.0 + 2.0 * u) : -log(1.0 - 2.0 * u);
}

/* Data of several shapes: Gaussian, with outliers, one-sided, heavy-tailed,
 * with zeros and repeated values. */
static void gen(float *x, int n, int kind, uint64_t seed)
{
    rs = seed * 7919 + (uint64_t)kind * 104729 + 1;
    double scale = 0.1 + 3.0 * urand(), shift = (kind == 5) ? 0.7 * scale : 0.0;
    for (int i = 0; i < n; i++) {
        double v;
        switch (kind) {
        case 0: v = nrand(); break;
        case 1: v = nrand() * (urand() < 0.1 ? 8.0 : 1.0); break;
        case 2: v = fabs(nrand()); break;
        case 3: v = -fabs(nrand()); break;
        case 4: v = lrand(); break;
        default: v = urand() < 0.3 ? 0.0 : (double)(int)(4.0 * nrand()) / 4.0; break;
        }
        x[i] = (float)(v * scale + shift);
    }
}
#define NKINDS 6

static qs_quantizer_t mkq(int bits, qs_scheme_t sc, qs_range_method_t m)
{
    qs_quantizer_t q;
    qs_quantizer_default(&q);
    q.bits = bits;
    q.scheme = sc;
    q.range.method = m;
    q.range.percentile = 99.99;
    q.range.dist = QS_ACIQ_LAPLACE;
    return q;
}

static qs_tensor_t *vec(const float *x, int64_t n)
{
    qs_tensor_t *t = qs_tensor_create(QS_F32, 1, &n);
    ck_assert_ptr_nonnull(t);
    if (n)
        memcpy(t->data, x, (size_t)n * sizeof *x);
    return t;
}

/* Per-tensor calibration of x[0..n). */
static void calib1(const qs_quantizer_t *q, const float *x, int64_t n, float *s, int32_t *z)
{
    qs_tensor_t *t = vec(x, n);
    qs_qparams_t *p = NULL;
    int rc = qs_calibrate(q, t, &p);
    ck_assert_msg(rc == QS_OK, "calibrate: %s", qs_last_error());
    ck_assert_int_eq(p->count, 1);
    *s = p->scale[0];
    *z = p->zero_point[0];
    qs_qparams_free(p);
    qs_tensor_free(t);
}

static void grid(const qs_quantizer_t *q, double lo, double hi, float *s, int32_t *z)
{
    int rc = qs_qparams_from_range(q, lo, hi, s, z);
    ck_assert_msg(rc == QS_OK, "from_range(%g, %g): %s", lo, hi, qs_last_error());
}

static double brute_sse(const qs_quantizer_t *q, const float *x, int64_t n, float s, int32_t z)
{
    double e = 0.0;
    for (int64_t i = 0; i < n; i++) {
        int32_t c = qs_quantize_one(q, x[i], s, z, (uint64_t)i, NULL);
        double d = (double)x[i] - (double)qs_dequantize_one(s, z, c);
        e += d * d;
    }
    return e;
}

static void minmax_of(const float *x, int64_t n, double *mn, double *mx)
{
    *mn = INFINITY;
    *mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        *mn = fmin(*mn, x[i]);
        *mx = fmax(*mx, x[i]);
    }
}

static bool sym(qs_scheme_t s) { return s == QS_SCHEME_SYMMETRIC || s == QS_SCHEME_SYMMETRIC_NARROW; }
static bool asym(qs_scheme_t s) { return s == QS_SCHEME_ASYMMETRIC || s == QS_SCHEME_ASYMMETRIC_SIGNED; }

static void thr_range(qs_scheme_t sc, double t, double mn, double mx, double *lo, double *hi)
{
    if (sym(sc)) {
        *lo = -t;
        *hi = t;
    } else if (sc == QS_SCHEME_UNSIGNED) {
        *lo = 0;
        *hi = t;
    } else {
        *lo = fmax(mn, -t);
        *hi = fmin(mx, t);
    }
}

/* The test's own histogram, built from one batch as the docs say. */
typedef struct {
    double lo, w;
    int64_t n;
    uint64_t c[NB];
} th_t;

static int kind_of(const qs_quantizer_t *q) /* 0 |x|, 1 max(x,0), 2 signed */
{
    if (q->scheme == QS_SCHEME_UNSIGNED)
        return 1;
    if (asym(q->scheme) && q->range.method != QS_RANGE_KL)
        return 2;
    return 0;
}
static double fold(int kind, float v) { return kind == 0 ? fabs((double)v) : kind == 1 ? fmax(v, 0.0) : v; }
static int binof(const th_t *h, double v)
{
    if (h->w == 0)
        return 0;
    double k = floor((v - h->lo) / h->w);
    return k < 0 ? 0 : k > NB - 1 ? NB - 1 : (int)k;
}
static void th_build(th_t *h, int kind, const float *x, int64_t n)
{
    memset(h, 0, sizeof *h);
    double a = INFINITY, b = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        a = fmin(a, fold(kind, x[i]));
        b = fmax(b, fold(kind, x[i]));
    }
    h->lo = kind == 2 ? a : 0.0;
    h->w = (b - h->lo) / NB;
    for (int64_t i = 0; i < n; i++)
        h->c[binof(h, fold(kind, x[i]))]++;
    h->n = n;
}

static int cmp_f(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* ---- minmax ---------------------------------------------------------------------------------- */

START_TEST(test_minmax)
{
    float x[50];
    for (int si = 0; si < NSCHEMES; si++)
        for (int kind = 0; kind < NKINDS; kind++)
            for (int ni = 0; ni < NSIZES; ni++) {
                int n = SIZES[ni];
                gen(x, n, kind, (uint64_t)ni);
                qs_quantizer_t q = mkq(8, SCHEMES[si], QS_RANGE_MINMAX);
                double mn, mx;
                minmax_of(x, n, &mn, &mx);
                float s, es;
                int32_t z, ez;
                calib1(&q, x, n, &s, &z);
                grid(&q, mn, mx, &es, &ez);
                ck_assert_float_eq(s, es);
                ck_assert_int_eq(z, ez);
            }
}
END_TEST

/* ---- mse -------------------------------------------------------------------------------------- */

/* Candidate 0 is (min, max); then amax k/100 (k = 1..100) or the pairs
 * (min i/20, max j/20), zero included in the extremes. */
static int brute_mse_candidates(const qs_quantizer_t *q, double mn, double mx, double *lo, double *hi)
{
    int n = 0;
    lo[n] = mn;
    hi[n++] = mx;
    if (!asym(q->scheme)) {
        double top = sym(q->scheme) ? fmax(fabs(mn), fabs(mx)) : fmax(mx, 0.0);
        if (top > 0)
            for (int k = 1; k <= 100; k++) {
                hi[n] = top * k / 100.0;
                lo[n] = sym(q->scheme) ? -hi[n] : 0.0;
                n++;
            }
    } else {
        double a = fmin(mn, 0.0), b = fmax(mx, 0.0);
        if (b > a)
            for (int i = 1; i <= 20; i++)
                for (int j = 1; j <= 20; j++) {
                    lo[n] = a * i / 20.0;
                    hi[n++] = b * j / 20.0;
                }
    }
    return n;
}

static void check_mse(const qs_quantizer_t *q, const float *x, int n, const char *what)
{
    double mn, mx, clo[401], chi[401];
    minmax_of(x, n, &mn, &mx);
    int nc = brute_mse_candidates(q, mn, mx, clo, chi);
    double best = INFINITY, bw = -1;
    float bs = 0, s;
    int32_t bz = 0, z;
    for (int c = 0; c < nc; c++) {
        grid(q, clo[c], chi[c], &s, &z);
        double e = brute_sse(q, x, n, s, z);
        if (e < best || (e == best && chi[c] - clo[c] > bw)) {
            best = e;
            bw = chi[c] - clo[c];
            bs = s;
            bz = z;
        }
    }
    calib1(q, x, n, &s, &z);
    if (s != bs || z != bz) {
        /* only a tie broken differently by the order of summation may differ */
        double e = brute_sse(q, x, n, s, z);
        ck_assert_msg(e <= best * (1 + 1e-12) + 1e-300, "%s: mse picked s=%.9g z=%d (sse %.17g), brute force s=%.9g z=%d (sse %.17g)",
                      what, s, z, e, bs, bz, best);
    }
}

START_TEST(test_mse_brute)
{
    float x[50];
    char what[128];
    int bits[] = {2, 4, 8};
    for (int si = 0; si < NSCHEMES; si++)
        for (int bi = 0; bi < 3; bi++)
            for (int kind = 0; kind < NKINDS; kind++)
                for (int ni = 0; ni < NSIZES; ni++) {
                    int n = SIZES[ni];
                    gen(x, n, kind, (uint64_t)(ni + 10 * bi));
                    qs_quantizer_t q = mkq(bits[bi], SCHEMES[si], QS_RANGE_MSE);
                    snprintf(what, sizeof what, "scheme %d bits %d kind %d n %d", (int)SCHEMES[si], bits[bi], kind, n);
                    check_mse(&q, x, n, what);
                }
}
END_TEST

/* Large slices take the sorted-runs path (deterministic monotone roundings,
 * saturation); stochastic rounding and wrapping take the element path. */
START_TEST(test_mse_brute_large)
{
    enum { N = 6000 };
    static float x[N];
    char what[128];
    qs_round_mode_t modes[] = {QS_ROUND_NEAREST_EVEN, QS_ROUND_NEAREST_AWAY, QS_ROUND_FLOOR, QS_ROUND_ODD,
                               QS_ROUND_STOCHASTIC};
    for (int m = 0; m < 5; m++)
        for (int si = 0; si < NSCHEMES; si += 2)
            for (int w = 0; w < 2; w++) {
                gen(x, N, m % 2 ? 4 : 1, (uint64_t)(m * 7 + si));
                qs_quantizer_t q = mkq(si == 2 ? 8 : 4, SCHEMES[si], QS_RANGE_MSE);
                q.round.mode = modes[m];
                q.round.seed = 5;
                q.overflow = w ? QS_OVERFLOW_WRAP : QS_OVERFLOW_SATURATE;
                q.div = m == 1 ? QS_DIV_RECIPROCAL : QS_DIV_DIVIDE;
                snprintf(what, sizeof what, "large: round %d scheme %d wrap %d", (int)modes[m], (int)SCHEMES[si], w);
                check_mse(&q, x, N, what);
            }
}
END_TEST

/* The sorted-runs error equals the element-by-element one. */
START_TEST(test_mse_sse_sorted)
{
    static float x[3001];
    for (int c = 0; c < 40; c++) {
        int n = 1 + (c * 577) % 3001;
        gen(x, n, c % NKINDS, (uint64_t)c);
        qsort(x, (size_t)n, sizeof *x, cmp_f);
        qs_quantizer_t q = mkq(c % 3 == 0 ? 2 : c % 3 == 1 ? 4 : 8, SCHEMES[c % NSCHEMES], QS_RANGE_MSE);
        q.round.mode = (qs_round_mode_t)(c % QS_ROUND_STOCHASTIC);
        double mn, mx;
        minmax_of(x, n, &mn, &mx);
        float s;
        int32_t z;
        grid(&q, mn * 0.6, mx * 0.7, &s, &z);
        double e = qs_mse_sse_sorted(&q, s, z, x, n), b = brute_sse(&q, x, n, s, z);
        ck_assert_msg(fabs(e - b) <= 1e-12 * b, "case %d: %.17g vs %.17g", c, e, b);
    }
}
END_TEST

/* Every candidate gives the same error: the widest wins. On a 1-bit
 * symmetric grid (codes -1, 0) positive values all become 0. */
START_TEST(test_mse_tie_widest)
{
    float x[2] = {0.3f, 0.7f};
    qs_quantizer_t q = mkq(1, QS_SCHEME_SYMMETRIC, QS_RANGE_MSE);
    if (qs_quantizer_validate(&q) < 0)
        return;
    float s, es;
    int32_t z, ez;
    calib1(&q, x, 2, &s, &z);
    grid(&q, -0.7, 0.7, &es, &ez);
    ck_assert_float_eq(s, es);
}
END_TEST

START_TEST(test_mse_not_worse_than_minmax)
{
    float x[2000];
    for (int si = 0; si < NSCHEMES; si++)
        for (int bits = 2; bits <= 8; bits++)
            for (int kind = 0; kind < NKINDS; kind++) {
                gen(x, 2000, kind, (uint64_t)bits);
                qs_quantizer_t qm = mkq(bits, SCHEMES[si], QS_RANGE_MSE);
                qs_quantizer_t q0 = mkq(bits, SCHEMES[si], QS_RANGE_MINMAX);
                float s, s0;
                int32_t z, z0;
                calib1(&qm, x, 2000, &s, &z);
                calib1(&q0, x, 2000, &s0, &z0);
                double e = brute_sse(&qm, x, 2000, s, z), e0 = brute_sse(&q0, x, 2000, s0, z0);
                ck_assert_msg(e <= e0 * (1 + 1e-12), "scheme %d bits %d kind %d: mse sse %g > minmax sse %g",
                              (int)SCHEMES[si], bits, kind, e, e0);
            }
}
END_TEST

/* ---- percentile -------------------------------------------------------------------------------- */

/* From the sorted values: the r-th smallest with r the least rank holding
 * P% of the values, and its bin's upper edge (lower edge from the top). */
static void brute_percentile(const qs_quantizer_t *q, const float *x, int n, double *lo, double *hi)
{
    int kind = kind_of(q);
    double mn, mx;
    minmax_of(x, n, &mn, &mx);
    th_t *h = malloc(sizeof *h);
    th_build(h, kind, x, n);
    float *v = malloc((size_t)n * sizeof *v);
    for (int i = 0; i < n; i++)
        v[i] = (float)fold(kind, x[i]);
    qsort(v, (size_t)n, sizeof *v, cmp_f);
    double P = q->range.percentile;
    int r = 1;
    while (100.0 * r < P * n)
        r++;
    if (kind != 2) {
        double t = fmin((binof(h, v[r - 1]) + 1) * h->w, kind == 0 ? fmax(fabs(mn), fabs(mx)) : fmax(mx, 0.0));
        thr_range(q->scheme, t, mn, mx, lo, hi);
    } else {
        *hi = fmin(h->lo + (binof(h, v[r - 1]) + 1) * h->w, mx);
        *lo = fmax(h->lo + binof(h, v[n - r]) * h->w, mn);
        if (*lo > *hi)
            *lo = *hi = 0.5 * (*lo + *hi);
    }
    free(v);
    free(h);
}

START_TEST(test_percentile_brute)
{
    float x[50];
    double ps[] = {100.0, 99.99, 99.0, 90.0, 75.0, 50.0, 10.0};
    for (int si = 0; si < NSCHEMES; si++)
        for (int pi = 0; pi < 7; pi++)
            for (int kind = 0; kind < NKINDS; kind++)
                for (int ni = 0; ni < NSIZES; ni++) {
                    int n = SIZES[ni];
                    gen(x, n, kind, (uint64_t)(ni + pi));
                    qs_quantizer_t q = mkq(pi % 2 ? 4 : 8, SCHEMES[si], QS_RANGE_PERCENTILE);
                    q.range.percentile = ps[pi];
                    double lo, hi;
                    brute_percentile(&q, x, n, &lo, &hi);
                    float s, es;
                    int32_t z, ez;
                    calib1(&q, x, n, &s, &z);
                    grid(&q, lo, hi, &es, &ez);
                    ck_assert_msg(s == es && z == ez,
                                  "scheme %d P %g kind %d n %d: got s=%.9g z=%d, expected [%g, %g] -> s=%.9g z=%d",
                                  (int)SCHEMES[si], ps[pi], kind, n, s, z, lo, hi, es, ez);
                }
}
END_TEST

/* P = 100 on a symmetric scheme is the threshold max|x|. */
START_TEST(test_percentile_100)
{
    float x[37];
    gen(x, 37, 1, 3);
    qs_quantizer_t q = mkq(8, QS_SCHEME_SYMMETRIC, QS_RANGE_PERCENTILE);
    q.range.percentile = 100.0;
    double mn, mx;
    minmax_of(x, 37, &mn, &mx);
    double a = fmax(fabs(mn), fabs(mx));
    float s, es;
    int32_t z, ez;
    calib1(&q, x, 37, &s, &z);
    grid(&q, -a, a, &es, &ez);
    ck_assert_float_eq(s, es);
    ck_assert_int_eq(z, ez);
}
END_TEST

/* ---- sqnr ----------------------------------------------------------------------------------------- */

static double brute_sqnr_cost(const qs_quantizer_t *q, const th_t *h, float s, int32_t z)
{
    double cost = 0;
    for (int k = 0; k < NB; k++) {
        if (!h->c[k])
            continue;
        double m = h->lo + (k + 0.5) * h->w;
        bool clipped = false;
        int32_t c = qs_quantize_one(q, (float)m, s, z, (uint64_t)k, &clipped);
        double e = m - (double)qs_dequantize_one(s, z, c);
        cost += (double)h->c[k] * (clipped ? 3.0 : 1.0) * e * e;
    }
    return cost;
}

static void brute_sqnr(const qs_quantizer_t *q, const float *x, int n, double *blo, double *bhi)
{
    th_t *h = malloc(sizeof *h);
    th_build(h, kind_of(q), x, n);
    double mn, mx;
    minmax_of(x, n, &mn, &mx);
    double lo[400], hi[400];
    int nc = 0;
    if (h->w == 0) {
        lo[nc] = mn;
        hi[nc++] = mx;
    } else if (!asym(q->scheme)) {
        double top = sym(q->scheme) ? fmax(fabs(mn), fabs(mx)) : fmax(mx, 0.0);
        for (int k = 1; k <= 101; k++) {
            double t = top * k / 100.0;
            thr_range(q->scheme, t, mn, mx, &lo[nc], &hi[nc]);
            nc++;
        }
    } else {
        int64_t qmin, qmax;
        qs_quantizer_code_range(q, &qmin, &qmax);
        double N = (double)(qmax - qmin), a = fmin(mn, 0), b = fmax(mx, 0);
        lo[nc] = mn;
        hi[nc++] = mx;
        for (int f = 1; f <= 17; f++)
            for (int i = 0; i <= 20; i++) {
                double d = (b - a) / N * f / 16.0;
                double t = trunc(i * N / 20.0);
                double l = fmax(-t * d, a), u = fmin((N - t) * d, b);
                if (u > l) {
                    lo[nc] = l;
                    hi[nc++] = u;
                }
            }
    }
    double best = INFINITY, bw = -1;
    for (int c = 0; c < nc; c++) {
        float s;
        int32_t z;
        grid(q, lo[c], hi[c], &s, &z);
        double e = brute_sqnr_cost(q, h, s, z);
        if (e < best || (e == best && hi[c] - lo[c] > bw)) {
            best = e;
            bw = hi[c] - lo[c];
            *blo = lo[c];
            *bhi = hi[c];
        }
    }
    free(h);
}

START_TEST(test_sqnr_brute)
{
    float x[50];
    int bits[] = {4, 8};
    for (int si = 0; si < NSCHEMES; si++)
        for (int bi = 0; bi < 2; bi++)
            for (int kind = 0; kind < NKINDS; kind++)
                for (int ni = 0; ni < NSIZES; ni += 2) {
                    int n = SIZES[ni];
                    gen(x, n, kind, (uint64_t)(ni + 3 * bi));
                    qs_quantizer_t q = mkq(bits[bi], SCHEMES[si], QS_RANGE_SQNR);
                    double lo, hi;
                    brute_sqnr(&q, x, n, &lo, &hi);
                    float s, es;
                    int32_t z, ez;
                    calib1(&q, x, n, &s, &z);
                    grid(&q, lo, hi, &es, &ez);
                    ck_assert_msg(s == es && z == ez,
                                  "scheme %d bits %d kind %d n %d: got s=%.9g z=%d, expected [%g, %g] -> s=%.9g z=%d",
                                  (int)SCHEMES[si], bits[bi], kind, n, s, z, lo, hi, es, ez);
                }
}
END_TEST

/* ---- kl --------------------------------------------------------------------------------------------- */

/* The TensorRT calibration written out as Migacz's slides and MXNet's port do it. */
static double brute_kl_one(const th_t *h, int i, int64_t nq)
{
    static double P[NB], Q[NB];
    uint64_t outl = 0;
    for (int j = i; j < NB; j++)
        outl += h->c[j];
    for (int j = 0; j < i; j++)
        P[j] = (double)h->c[j];
    P[i - 1] += (double)outl;
    int64_t m = i / nq;
    for (int64_t g = 0; g < nq; g++) {
        int64_t a = g * m, b = g == nq - 1 ? i : a + m;
        double sum = 0;
        int64_t nz = 0;
        for (int64_t j = a; j < b; j++) {
            sum += (double)h->c[j];
            nz += P[j] != 0;
        }
        for (int64_t j = a; j < b; j++)
            Q[j] = P[j] != 0 ? sum / (double)nz : 0;
    }
    double *vs[2] = {P, Q};
    for (int t = 0; t < 2; t++) {
        double *v = vs[t];
        int zeros = 0;
        for (int j = 0; j < i; j++)
            zeros += v[j] == 0;
        if (zeros == i)
            return INFINITY;
        double e1 = 1e-4 * zeros / (i - zeros);
        for (int j = 0; j < i; j++) {
            v[j] = v[j] == 0 ? 1e-4 : v[j] - e1;
            if (v[j] <= 0)
                return INFINITY;
        }
    }
    double sp = 0, sq = 0, kl = 0;
    for (int j = 0; j < i; j++) {
        sp += P[j];
        sq += Q[j];
    }
    /* bins where both are eps all have one term: compute it once (only for speed) */
    double tz = 1e-4 / sp * log((1e-4 / sp) / (1e-4 / sq));
    for (int j = 0; j < i; j++)
        kl += (P[j] == 1e-4 && Q[j] == 1e-4) ? tz : P[j] / sp * log((P[j] / sp) / (Q[j] / sq));
    return kl;
}

/* The brute force's divergences (kl[i] for i = nq..2048) and threshold. */
typedef struct {
    double kl[NB + 1], w, amax, t;
    int64_t nq;
} bkl_t;

static void brute_kl(const qs_quantizer_t *q, const float *x, int n, bkl_t *r, double *lo, double *hi)
{
    double mn, mx;
    minmax_of(x, n, &mn, &mx);
    th_t *h = malloc(sizeof *h);
    th_build(h, kind_of(q), x, n);
    r->amax = q->scheme == QS_SCHEME_UNSIGNED ? fmax(mx, 0) : fmax(fabs(mn), fabs(mx));
    r->w = h->w;
    int64_t qmin, qmax;
    qs_quantizer_code_range(q, &qmin, &qmax);
    if (sym(q->scheme))
        r->nq = qmax + 1;
    else if (q->scheme == QS_SCHEME_UNSIGNED || mn >= 0 || mx <= 0)
        r->nq = qmax - qmin + 1;
    else
        r->nq = (qmax - qmin + 1) / 2;
    r->t = r->amax;
    if (h->w > 0 && r->nq < NB) {
        double best = INFINITY;
        int bi = NB;
        for (int i = (int)r->nq; i <= NB; i++) {
            double d = r->kl[i] = brute_kl_one(h, i, r->nq);
            if (d <= best) {
                best = d;
                bi = i;
            }
        }
        r->t = fmin((bi + 0.5) * h->w, r->amax);
    }
    thr_range(q->scheme, r->t, mn, mx, lo, hi);
    free(h);
}

/* The library normalises by exact totals, the brute force by floating sums:
 * where they pick different thresholds, the library's must be as good to 1e-9. */
static void check_kl(const qs_quantizer_t *q, const float *x, int n, const char *what)
{
    static bkl_t r;
    double lo, hi, mn, mx;
    minmax_of(x, n, &mn, &mx);
    brute_kl(q, x, n, &r, &lo, &hi);
    float s, es;
    int32_t z, ez;
    calib1(q, x, n, &s, &z);
    grid(q, lo, hi, &es, &ez);
    if (s == es && z == ez)
        return;
    ck_assert_msg(r.w > 0 && r.nq < NB, "%s: got s=%.9g z=%d, expected [%g, %g] -> s=%.9g z=%d", what, s, z, lo, hi, es, ez);
    double best = INFINITY, mine = INFINITY;
    for (int i = (int)r.nq; i <= NB; i++) {
        best = fmin(best, r.kl[i]);
        double l, u;
        float si;
        int32_t zi;
        thr_range(q->scheme, fmin((i + 0.5) * r.w, r.amax), mn, mx, &l, &u);
        grid(q, l, u, &si, &zi);
        if (si == s && zi == z)
            mine = fmin(mine, r.kl[i]);
    }
    ck_assert_msg(mine <= best * (1 + 1e-9) + 1e-15, "%s: kl picked s=%.9g z=%d (divergence %.17g), brute force %.17g",
                  what, s, z, mine, best);
}

START_TEST(test_kl_brute)
{
    float x[50];
    char what[128];
    int bits[] = {4, 8};
    for (int si = 0; si < NSCHEMES; si++)
        for (int bi = 0; bi < 2; bi++)
            for (int kind = 0; kind < NKINDS; kind++)
                for (int ni = 0; ni < NSIZES; ni += 4) {
                    int n = SIZES[ni];
                    gen(x, n, kind, (uint64_t)(ni + 5 * bi));
                    qs_quantizer_t q = mkq(bits[bi], SCHEMES[si], QS_RANGE_KL);
                    snprintf(what, sizeof what, "scheme %d bits %d kind %d n %d", (int)SCHEMES[si], bits[bi], kind, n);
                    check_kl(&q, x, n, what);
                }
}
END_TEST

/* Dense histograms (most bins non-empty). */
START_TEST(test_kl_brute_dense)
{
    enum { N = 20000 };
    static float x[N];
    char what[128];
    for (int c = 0; c < 6; c++) {
        gen(x, N, c % 2 ? 4 : 1, (uint64_t)c);
        qs_quantizer_t q = mkq(c < 3 ? 8 : 4, SCHEMES[(c * 2) % NSCHEMES], QS_RANGE_KL);
        snprintf(what, sizeof what, "dense case %d", c);
        check_kl(&q, x, N, what);
    }
}
END_TEST

/* Every width and signedness gives a finite positive scale; wide grids keep max|x|. */
START_TEST(test_kl_all_widths)
{
    float x[300];
    gen(x, 300, 4, 11);
    for (int si = 0; si < NSCHEMES; si++)
        for (int bits = 1; bits <= 16; bits++) {
            qs_quantizer_t q = mkq(bits, SCHEMES[si], QS_RANGE_KL);
            if (qs_quantizer_validate(&q) < 0)
                continue;
            float s;
            int32_t z;
            calib1(&q, x, 300, &s, &z);
            ck_assert_msg(isfinite(s) && s > 0, "scheme %d bits %d: s = %g", (int)SCHEMES[si], bits, s);
            if (bits >= 12 && sym(SCHEMES[si])) {
                double mn, mx;
                minmax_of(x, 300, &mn, &mx);
                double a = fmax(fabs(mn), fabs(mx));
                float es;
                int32_t ez;
                grid(&q, -a, a, &es, &ez);
                ck_assert_float_eq(s, es);
            }
        }
}
END_TEST

/* ---- aciq -------------------------------------------------------------------------------------------- */

START_TEST(test_aciq_constants)
{
    /* Banner et al. 2019: 2.83, 3.89, 5.03 (Laplace) and 1.71, 2.15, 2.55 (Gauss) for 2, 3, 4 bits */
    const double lap[] = {2.83, 3.89, 5.03}, gau[] = {1.71, 2.15, 2.55};
    for (int b = 2; b <= 4; b++) {
        ck_assert_double_eq_tol(qs_aciq_solve(QS_ACIQ_LAPLACE, b), lap[b - 2], 0.01);
        ck_assert_double_eq_tol(qs_aciq_solve(QS_ACIQ_GAUSS, b), gau[b - 2], 0.01);
        ck_assert_double_eq(qs_aciq_ratio(QS_ACIQ_LAPLACE, b), lap[b - 2]);
        ck_assert_double_eq(qs_aciq_ratio(QS_ACIQ_GAUSS, b), gau[b - 2]);
    }
    /* the solved ratio satisfies the optimality condition a e^a = 3 4^M (Laplace) */
    for (int b = 1; b <= 16; b++) {
        double a = qs_aciq_ratio(QS_ACIQ_LAPLACE, b);
        if (b < 2 || b > 4)
            ck_assert_double_eq_tol(a * exp(a) / (3.0 * pow(4.0, b)), 1.0, 1e-9);
        ck_assert(qs_aciq_ratio(QS_ACIQ_GAUSS, b) < a);
        if (b > 1)
            ck_assert(a > qs_aciq_ratio(QS_ACIQ_LAPLACE, b - 1));
    }
    /* 8 bits, Gauss: 3.92 (the solved value the ACIQ reference code tabulates) */
    ck_assert_double_eq_tol(qs_aciq_ratio(QS_ACIQ_GAUSS, 8), 3.924, 0.001);
    ck_assert_double_eq_tol(qs_aciq_ratio(QS_ACIQ_LAPLACE, 8), 9.897, 0.001);
}
END_TEST

START_TEST(test_aciq_brute)
{
    float x[50];
    for (int si = 0; si < NSCHEMES; si++)
        for (int d = 0; d < 2; d++)
            for (int bits = 2; bits <= 8; bits += 2)
                for (int kind = 0; kind < NKINDS; kind++)
                    for (int ni = 0; ni < NSIZES; ni++) {
                        int n = SIZES[ni];
                        gen(x, n, kind, (uint64_t)(ni + bits));
                        qs_quantizer_t q = mkq(bits, SCHEMES[si], QS_RANGE_ACIQ);
                        q.range.dist = d ? QS_ACIQ_GAUSS : QS_ACIQ_LAPLACE;
                        double mn, mx, sum = 0, dev = 0;
                        minmax_of(x, n, &mn, &mx);
                        for (int i = 0; i < n; i++)
                            sum += x[i];
                        double mean = sum / n;
                        for (int i = 0; i < n; i++)
                            dev += d ? (x[i] - mean) * (x[i] - mean) : fabs(x[i] - mean);
                        double spread = d ? sqrt(dev / n) : dev / n;
                        double alpha = qs_aciq_ratio(q.range.dist, bits) * spread, lo, hi;
                        if (sym(q.scheme)) {
                            hi = fmin(fabs(mean) + alpha, fmax(fabs(mn), fabs(mx)));
                            lo = -hi;
                        } else if (q.scheme == QS_SCHEME_UNSIGNED) {
                            lo = 0;
                            hi = fmax(0, fmin(mean + alpha, mx));
                        } else {
                            lo = fmax(mn, mean - alpha);
                            hi = fmin(mx, mean + alpha);
                        }
                        float s, es;
                        int32_t z, ez;
                        calib1(&q, x, n, &s, &z);
                        grid(&q, lo, hi, &es, &ez);
                        ck_assert_msg(s == es && z == ez, "scheme %d %s bits %d kind %d n %d: s=%.9g z=%d, expected %.9g %d",
                                      (int)SCHEMES[si], d ? "gauss" : "laplace", bits, kind, n, s, z, es, ez);
                    }
}
END_TEST

/* ---- long tails, zeros --------------------------------------------------------------------------------- */

START_TEST(test_long_tail_clips)
{
    enum { N = 20000 };
    static float x[N];
    rs = 99;
    for (int i = 0; i < N; i++)
        x[i] = (float)lrand();
    x[100] = 60.0f;
    x[2000] = -55.0f;
    x[3000] = 58.0f;
    struct {
        qs_range_method_t m;
        double p;
        qs_aciq_dist_t d;
        int bits;
    } cases[] = {{QS_RANGE_PERCENTILE, 99.9, 0, 8}, {QS_RANGE_PERCENTILE, 99.9, 0, 4}, {QS_RANGE_MSE, 0, 0, 4},
                 {QS_RANGE_SQNR, 0, 0, 4},         {QS_RANGE_KL, 0, 0, 8},           {QS_RANGE_KL, 0, 0, 4},
                 {QS_RANGE_ACIQ, 0, QS_ACIQ_LAPLACE, 4}, {QS_RANGE_ACIQ, 0, QS_ACIQ_GAUSS, 4},
                 {QS_RANGE_ACIQ, 0, QS_ACIQ_LAPLACE, 8}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int si = 0; si < NSCHEMES; si++) {
            if (SCHEMES[si] == QS_SCHEME_UNSIGNED)
                continue;
            qs_quantizer_t q = mkq(cases[c].bits, SCHEMES[si], cases[c].m);
            q.range.percentile = cases[c].p ? cases[c].p : 99.99;
            q.range.dist = cases[c].d;
            qs_quantizer_t q0 = mkq(cases[c].bits, SCHEMES[si], QS_RANGE_MINMAX);
            float s, s0;
            int32_t z, z0;
            calib1(&q, x, N, &s, &z);
            calib1(&q0, x, N, &s0, &z0);
            ck_assert_msg(s < 0.5f * s0, "method %d bits %d scheme %d: s=%g does not clip (minmax s=%g)", (int)cases[c].m,
                          cases[c].bits, (int)SCHEMES[si], s, s0);
        }
}
END_TEST

START_TEST(test_zero_tensor)
{
    float x[16] = {0};
    qs_range_method_t ms[] = {QS_RANGE_MINMAX, QS_RANGE_PERCENTILE, QS_RANGE_MSE, QS_RANGE_SQNR, QS_RANGE_KL, QS_RANGE_ACIQ};
    for (int si = 0; si < NSCHEMES; si++)
        for (int m = 0; m < 6; m++)
            for (int d = 0; d < 2; d++) {
                qs_quantizer_t q = mkq(8, SCHEMES[si], ms[m]);
                q.range.dist = d ? QS_ACIQ_GAUSS : QS_ACIQ_LAPLACE;
                float s, es;
                int32_t z, ez;
                calib1(&q, x, 16, &s, &z);
                grid(&q, 0.0, 0.0, &es, &ez);
                ck_assert_float_eq(s, es);
                ck_assert_int_eq(z, ez);
                ck_assert_float_eq(s, 1.0f);
                /* and a constant tensor keeps its value on the grid for every method */
                float c[9];
                for (int i = 0; i < 9; i++)
                    c[i] = 0.75f;
                calib1(&q, c, 9, &s, &z);
                ck_assert(isfinite(s) && s > 0);
                int32_t code = qs_quantize_one(&q, 0.75f, s, z, 0, NULL);
                ck_assert_float_eq_tol(qs_dequantize_one(s, z, code), 0.75f, 0.51f * s);
            }
}
END_TEST

/* ---- multi-batch ----------------------------------------------------------------------------------------- */

static void observe_batches(const qs_quantizer_t *q, const float *x, int n, const int *cuts, int ncuts, float *s, int32_t *z)
{
    int64_t shape[1] = {n};
    qs_observer_t *o;
    ck_assert_int_eq(qs_observer_create(q, 1, shape, &o), QS_OK);
    int at = 0;
    for (int c = 0; c <= ncuts; c++) {
        int end = c < ncuts ? cuts[c] : n;
        qs_tensor_t *t = vec(x + at, end - at);
        ck_assert_msg(qs_observer_update(o, t) == QS_OK, "%s", qs_last_error());
        qs_tensor_free(t);
        at = end;
    }
    qs_qparams_t *p;
    ck_assert_msg(qs_observer_finish(o, &p) == QS_OK, "%s", qs_last_error());
    *s = p->scale[0];
    *z = p->zero_point[0];
    qs_qparams_free(p);
    qs_observer_free(o);
}

START_TEST(test_multibatch_exact)
{
    float x[240];
    int cuts[] = {37, 100, 101, 199};
    qs_range_method_t ms[] = {QS_RANGE_MINMAX, QS_RANGE_MSE, QS_RANGE_ACIQ, QS_RANGE_PERCENTILE, QS_RANGE_SQNR, QS_RANGE_KL};
    for (int si = 0; si < NSCHEMES; si++)
        for (int kind = 0; kind < NKINDS; kind++)
            for (int m = 0; m < 6; m++) {
                gen(x, 240, kind, 5);
                /* the histogram methods: the first batch holds both extremes, so the range never grows */
                int imn = 0, imx = 0;
                for (int i = 0; i < 240; i++) {
                    if (x[i] < x[imn])
                        imn = i;
                    if (x[i] > x[imx])
                        imx = i;
                }
                float t = x[0];
                x[0] = x[imn];
                x[imn] = t;
                if (imx == 0)
                    imx = imn;
                t = x[1];
                x[1] = x[imx];
                x[imx] = t;
                qs_quantizer_t q = mkq(4, SCHEMES[si], ms[m]);
                q.range.percentile = 95.0;
                float s1, s2;
                int32_t z1, z2;
                observe_batches(&q, x, 240, NULL, 0, &s1, &z1);
                observe_batches(&q, x, 240, cuts, 4, &s2, &z2);
                ck_assert_msg(s1 == s2 && z1 == z2, "method %d scheme %d kind %d: one batch s=%.9g z=%d, five s=%.9g z=%d",
                              (int)ms[m], (int)SCHEMES[si], kind, s1, z1, s2, z2);
            }
}
END_TEST

/* aciq:gauss merges per-batch moments (Chan et al.): equal to one batch up to rounding. */
START_TEST(test_multibatch_gauss)
{
    float x[240];
    int cuts[] = {37, 100, 101, 199};
    for (int si = 0; si < NSCHEMES; si++)
        for (int kind = 0; kind < NKINDS; kind++) {
            gen(x, 240, kind, 9);
            for (int i = 0; i < 100; i++) /* batches with different means */
                x[i] += 2.0f;
            qs_quantizer_t q = mkq(4, SCHEMES[si], QS_RANGE_ACIQ);
            q.range.dist = QS_ACIQ_GAUSS;
            float s1, s2;
            int32_t z1, z2;
            observe_batches(&q, x, 240, NULL, 0, &s1, &z1);
            observe_batches(&q, x, 240, cuts, 4, &s2, &z2);
            ck_assert_float_eq_tol(s1, s2, 1e-5f * s1);
            ck_assert_int_le(abs(z1 - z2), 1);
        }
}
END_TEST

/* The histogram doubles its range and keeps every count; for the folded
 * kinds the merged counts equal binning everything at the final width. */
START_TEST(test_hist_growth)
{
    float a[100], b[100];
    for (int kind = 0; kind < 3; kind++)
        for (int seed = 0; seed < 5; seed++) {
            gen(a, 100, 0, (uint64_t)seed);
            gen(b, 100, 1, (uint64_t)seed + 50);
            for (int i = 0; i < 100; i++)
                b[i] *= 7.0f;
            qs_hist_t *h = qs_alloc(sizeof *h);
            qs_hist_init(h, (qs_hist_kind_t)kind);
            qs_hist_add(h, a, 100);
            double w0 = h->width, lo0 = h->lo;
            qs_hist_add(h, b, 100);
            ck_assert_int_eq(h->total, 200);
            uint64_t sum = 0;
            for (int k = 0; k < NB; k++)
                sum += h->count[k];
            ck_assert_uint_eq(sum, 200);
            double r = h->width / w0;
            ck_assert_double_eq(r, exp2(round(log2(r)))); /* a power of two */
            for (int i = 0; i < 100; i++) {
                double va = fold(kind, a[i]), vb = fold(kind, b[i]);
                ck_assert(va >= h->lo && va <= h->lo + NB * h->width);
                ck_assert(vb >= h->lo && vb <= h->lo + NB * h->width);
            }
            if (kind != 2) {
                ck_assert_double_eq(h->lo, 0.0);
                /* the first batch's bins merged pairwise log2(r) times; the
                 * second batch binned at the final width */
                th_t *e = malloc(sizeof *e), *e0 = malloc(sizeof *e0);
                memset(e, 0, sizeof *e);
                memset(e0, 0, sizeof *e0);
                e->w = h->width;
                e0->w = w0;
                int sh = (int)round(log2(r));
                for (int i = 0; i < 100; i++) {
                    e->c[binof(e0, fold(kind, a[i])) >> sh]++;
                    e->c[binof(e, fold(kind, b[i]))]++;
                }
                free(e0);
                for (int k = 0; k < NB; k++)
                    ck_assert_uint_eq(h->count[k], e->c[k]);
                free(e);
            } else {
                ck_assert(h->lo <= lo0);
            }
            qs_free(h);
        }
    /* a first batch of zeros, then values: the zeros stay in bin 0 */
    qs_hist_t *h = qs_alloc(sizeof *h);
    float zeros[5] = {0}, v[3] = {1.0f, 2.0f, 4.0f};
    qs_hist_init(h, QS_HIST_ABS);
    qs_hist_add(h, zeros, 5);
    ck_assert_double_eq(h->width, 0.0);
    qs_hist_add(h, v, 3);
    ck_assert_double_eq(h->width, 4.0 / NB);
    ck_assert_uint_eq(h->count[0], 5);
    ck_assert_uint_eq(h->count[NB / 4], 1);
    ck_assert_uint_eq(h->count[NB / 2], 1);
    ck_assert_uint_eq(h->count[NB - 1], 1);
    /* signed, constant first batch: its count moves to the bin of its value */
    float c3[3] = {1.0f, 1.0f, 1.0f}, w2[2] = {-1.0f, 3.0f};
    qs_hist_init(h, QS_HIST_SIGNED);
    qs_hist_add(h, c3, 3);
    qs_hist_add(h, w2, 2);
    ck_assert_double_eq(h->lo, -1.0);
    ck_assert_double_eq(h->width, 4.0 / NB);
    ck_assert_uint_eq(h->count[0], 1);
    ck_assert_uint_eq(h->count[NB / 2], 3);
    ck_assert_uint_eq(h->count[NB - 1], 1);
    /* growing downward then upward */
    float d1[2] = {0.0f, 1.0f}, d2[1] = {-1.5f}, d3[1] = {5.0f};
    qs_hist_init(h, QS_HIST_SIGNED);
    qs_hist_add(h, d1, 2);
    qs_hist_add(h, d2, 1);
    ck_assert_double_eq(h->lo, -3.0);
    ck_assert_double_eq(h->width, 4.0 / NB);
    ck_assert_uint_eq(h->count[NB * 3 / 4], 1);
    ck_assert_uint_eq(h->count[NB - 1], 1);
    qs_hist_add(h, d3, 1);
    ck_assert_double_eq(h->lo, -3.0);
    ck_assert_double_eq(h->width, 8.0 / NB);
    ck_assert_uint_eq(h->count[NB * 3 / 8], 1);  /* 0 */
    ck_assert_uint_eq(h->count[NB / 2 - 1], 1);   /* 1, merged from the old last bin */
    ck_assert_uint_eq(h->count[NB * 3 / 16], 1); /* -1.5 */
    ck_assert_uint_eq(h->count[NB - 1], 1);      /* 5 */
    qs_free(h);
}
END_TEST

/* When the range grows, the observer still counts every value and the result is sane. */
START_TEST(test_multibatch_growth)
{
    float a[200], b[200];
    gen(a, 200, 0, 1);
    gen(b, 200, 4, 2);
    for (int i = 0; i < 200; i++)
        b[i] *= 5.0f;
    qs_range_method_t ms[] = {QS_RANGE_PERCENTILE, QS_RANGE_SQNR, QS_RANGE_KL};
    for (int si = 0; si < NSCHEMES; si++)
        for (int m = 0; m < 3; m++) {
            qs_quantizer_t q = mkq(8, SCHEMES[si], ms[m]);
            q.range.percentile = 100.0;
            int64_t shape[1] = {200};
            qs_observer_t *o;
            ck_assert_int_eq(qs_observer_create(&q, 1, shape, &o), QS_OK);
            qs_tensor_t *ta = vec(a, 200), *tb = vec(b, 200);
            ck_assert_int_eq(qs_observer_update(o, ta), QS_OK);
            ck_assert_int_eq(qs_observer_update(o, tb), QS_OK);
            qs_qparams_t *p;
            ck_assert_int_eq(qs_observer_finish(o, &p), QS_OK);
            ck_assert(isfinite(p->scale[0]) && p->scale[0] > 0);
            float s1 = p->scale[0];
            qs_qparams_free(p);
            /* finishing twice gives the same */
            ck_assert_int_eq(qs_observer_finish(o, &p), QS_OK);
            ck_assert_float_eq(p->scale[0], s1);
            qs_qparams_free(p);
            if (ms[m] == QS_RANGE_PERCENTILE && sym(q.scheme)) {
                /* P = 100: the threshold is max|x| over both batches */
                double mn, mx, m2n, m2x;
                minmax_of(a, 200, &mn, &mx);
                minmax_of(b, 200, &m2n, &m2x);
                double am = fmax(fmax(fabs(mn), fabs(mx)), fmax(fabs(m2n), fabs(m2x)));
                float es;
                int32_t ez;
                grid(&q, -am, am, &es, &ez);
                ck_assert_float_eq(s1, es);
            }
            qs_tensor_free(ta);
            qs_tensor_free(tb);
            qs_observer_free(o);
        }
}
END_TEST

/* The mse store keeps every stride-th value of the stream, whatever the batches. */
START_TEST(test_store_subsample)
{
    float x[30];
    for (int i = 0; i < 30; i++)
        x[i] = (float)i;
    int splits[3][3] = {{30, 0, 0}, {7, 11, 12}, {1, 1, 28}};
    for (int sp = 0; sp < 3; sp++) {
        qs_quantizer_t q = mkq(8, QS_SCHEME_SYMMETRIC, QS_RANGE_MSE);
        int64_t shape[1] = {30};
        qs_observer_t *o;
        ck_assert_int_eq(qs_observer_create(&q, 1, shape, &o), QS_OK);
        qs_observer_set_store_cap(o, 8);
        int at = 0;
        for (int k = 0; k < 3 && at < 30; k++) {
            qs_tensor_t *t = vec(x + at, splits[sp][k]);
            ck_assert_int_eq(qs_observer_update(o, t), QS_OK);
            at += splits[sp][k];
            qs_tensor_free(t);
        }
        const float *v;
        int64_t n = qs_observer_values(o, 0, &v);
        ck_assert_int_eq(n, 8);
        for (int i = 0; i < 8; i++)
            ck_assert_float_eq(v[i], 4.0f * i);
        qs_observer_free(o);
    }
}
END_TEST

/* ---- per channel and per group -------------------------------------------------------------------------- */

/* Calibrates x (shape) with gran, then each slice extracted by hand (in flat
 * order) per tensor, and compares the parameters. */
static void check_slices(qs_quantizer_t q, int ndim, const int64_t *shape, const float *x)
{
    int64_t size = 1;
    for (int i = 0; i < ndim; i++)
        size *= shape[i];
    int ax = q.gran.axis < 0 ? q.gran.axis + ndim : q.gran.axis;
    int64_t outer = 1, inner = 1, len = shape[ax];
    for (int i = 0; i < ax; i++)
        outer *= shape[i];
    for (int i = ax + 1; i < ndim; i++)
        inner *= shape[i];
    qs_tensor_t *t = qs_tensor_create(QS_F32, ndim, shape);
    memcpy(t->data, x, (size_t)size * sizeof *x);
    qs_qparams_t *p;
    ck_assert_msg(qs_calibrate(&q, t, &p) == QS_OK, "%s", qs_last_error());
    qs_tensor_free(t);
    float *sl = malloc((size_t)size * sizeof *sl);
    qs_quantizer_t qt = q;
    qt.gran.kind = QS_GRAN_TENSOR;
    if (q.gran.kind == QS_GRAN_CHANNEL) {
        ck_assert_int_eq(p->count, len);
        ck_assert_int_eq(p->ndim, 1);
        ck_assert_int_eq(p->shape[0], len);
        for (int64_t c = 0; c < len; c++) {
            int64_t n = 0;
            for (int64_t o = 0; o < outer; o++)
                for (int64_t i = 0; i < inner; i++)
                    sl[n++] = x[(o * len + c) * inner + i];
            float s;
            int32_t z;
            calib1(&qt, sl, n, &s, &z);
            ck_assert_msg(s == p->scale[c] && z == p->zero_point[c], "method %d axis %d channel %lld: %.9g/%d vs %.9g/%d",
                          (int)q.range.method, ax, (long long)c, p->scale[c], p->zero_point[c], s, z);
        }
    } else {
        int64_t G = q.gran.group, ng = (len + G - 1) / G;
        ck_assert_int_eq(p->count, outer * ng * inner);
        ck_assert_int_eq(p->ndim, ndim);
        ck_assert_int_eq(p->shape[ax], ng);
        for (int64_t o = 0; o < outer; o++)
            for (int64_t g = 0; g < ng; g++)
                for (int64_t i = 0; i < inner; i++) {
                    int64_t n = 0;
                    for (int64_t a = g * G; a < len && a < (g + 1) * G; a++)
                        sl[n++] = x[(o * len + a) * inner + i];
                    float s;
                    int32_t z;
                    calib1(&qt, sl, n, &s, &z);
                    int64_t k = (o * ng + g) * inner + i;
                    ck_assert_msg(s == p->scale[k] && z == p->zero_point[k], "method %d axis %d group param %lld",
                                  (int)q.range.method, ax, (long long)k);
                }
    }
    free(sl);
    qs_qparams_free(p);
}

START_TEST(test_per_slice)
{
    static const int64_t s2[2] = {5, 7}, s4[4] = {3, 4, 2, 5};
    float x[120];
    qs_range_method_t ms[] = {QS_RANGE_MINMAX, QS_RANGE_PERCENTILE, QS_RANGE_MSE, QS_RANGE_SQNR, QS_RANGE_KL, QS_RANGE_ACIQ, QS_RANGE_ACIQ};
    qs_scheme_t scs[] = {QS_SCHEME_SYMMETRIC, QS_SCHEME_ASYMMETRIC, QS_SCHEME_UNSIGNED};
    for (int m = 0; m < 7; m++)
        for (int sc = 0; sc < 3; sc++)
            for (int nd = 0; nd < 2; nd++) {
                int ndim = nd ? 4 : 2;
                const int64_t *shape = nd ? s4 : s2;
                gen(x, 120, 1, (uint64_t)(m * 3 + sc));
                for (int ax = -1; ax < ndim; ax++) {
                    qs_quantizer_t q = mkq(8, scs[sc], ms[m]);
                    q.range.percentile = 90.0;
                    q.range.dist = m == 6 ? QS_ACIQ_GAUSS : QS_ACIQ_LAPLACE;
                    q.gran.kind = QS_GRAN_CHANNEL;
                    q.gran.axis = ax;
                    check_slices(q, ndim, shape, x);
                    q.gran.kind = QS_GRAN_GROUP;
                    q.gran.group = 2;
                    check_slices(q, ndim, shape, x);
                    q.gran.group = 3;
                    check_slices(q, ndim, shape, x);
                }
            }
}
END_TEST

/* Per channel, batches of several sizes equal the concatenation along the batch axis. */
START_TEST(test_per_channel_batches)
{
    float x[3 * 4 * 5];
    gen(x, 60, 1, 77);
    qs_range_method_t ms[] = {QS_RANGE_MINMAX, QS_RANGE_MSE, QS_RANGE_ACIQ};
    for (int m = 0; m < 3; m++) {
        qs_quantizer_t q = mkq(4, QS_SCHEME_ASYMMETRIC, ms[m]);
        q.gran.kind = QS_GRAN_CHANNEL;
        q.gran.axis = 1;
        int64_t full[3] = {3, 4, 5}, b1[3] = {2, 4, 5}, b2[3] = {1, 4, 5};
        qs_tensor_t *t = qs_tensor_create(QS_F32, 3, full);
        memcpy(t->data, x, sizeof x);
        qs_qparams_t *p1, *p2;
        ck_assert_int_eq(qs_calibrate(&q, t, &p1), QS_OK);
        qs_observer_t *o;
        ck_assert_int_eq(qs_observer_create(&q, 3, b1, &o), QS_OK);
        qs_tensor_t *u = qs_tensor_create(QS_F32, 3, b1), *v = qs_tensor_create(QS_F32, 3, b2);
        memcpy(u->data, x, 40 * sizeof *x);
        memcpy(v->data, x + 40, 20 * sizeof *x);
        ck_assert_int_eq(qs_observer_update(o, u), QS_OK);
        ck_assert_int_eq(qs_observer_update(o, v), QS_OK);
        ck_assert_int_eq(qs_observer_finish(o, &p2), QS_OK);
        ck_assert_int_eq(p2->count, 4);
        for (int c = 0; c < 4; c++) {
            ck_assert_float_eq(p1->scale[c], p2->scale[c]);
            ck_assert_int_eq(p1->zero_point[c], p2->zero_point[c]);
        }
        qs_qparams_free(p1);
        qs_qparams_free(p2);
        qs_observer_free(o);
        qs_tensor_free(t);
        qs_tensor_free(u);
        qs_tensor_free(v);
    }
}
END_TEST

/* ---- errors ------------------------------------------------------------------------------------------------------ */

START_TEST(test_nonfinite)
{
    float x[40];
    gen(x, 40, 0, 1);
    float bad[3] = {NAN, INFINITY, -INFINITY};
    const char *names[3] = {"element 17 is NaN", "element 17 is +Inf", "element 17 is -Inf"};
    qs_range_method_t ms[] = {QS_RANGE_MINMAX, QS_RANGE_MSE, QS_RANGE_KL};
    for (int b = 0; b < 3; b++)
        for (int m = 0; m < 3; m++) {
            qs_quantizer_t q = mkq(8, QS_SCHEME_ASYMMETRIC, ms[m]);
            int64_t shape[2] = {4, 10};
            qs_tensor_t *good = qs_tensor_create(QS_F32, 2, shape), *t = qs_tensor_create(QS_F32, 2, shape);
            memcpy(good->data, x, sizeof x);
            memcpy(t->data, x, sizeof x);
            qs_f32(t)[17] = bad[b];
            qs_f32(t)[30] = NAN;
            qs_qparams_t *p;
            ck_assert_int_eq(qs_calibrate(&q, t, &p), QS_ERR_NUMERIC);
            ck_assert_ptr_null(p);
            ck_assert_msg(strstr(qs_last_error(), names[b]) != NULL, "message: %s", qs_last_error());
            /* a rejected batch leaves the observer as it was */
            qs_observer_t *o;
            ck_assert_int_eq(qs_observer_create(&q, 2, shape, &o), QS_OK);
            ck_assert_int_eq(qs_observer_update(o, good), QS_OK);
            ck_assert_int_eq(qs_observer_update(o, t), QS_ERR_NUMERIC);
            ck_assert_int_eq(qs_observer_finish(o, &p), QS_OK);
            qs_qparams_t *p0;
            ck_assert_int_eq(qs_calibrate(&q, good, &p0), QS_OK);
            ck_assert_float_eq(p->scale[0], p0->scale[0]);
            ck_assert_int_eq(p->zero_point[0], p0->zero_point[0]);
            qs_qparams_free(p);
            qs_qparams_free(p0);
            qs_observer_free(o);
            qs_tensor_free(t);
            qs_tensor_free(good);
        }
}
END_TEST

START_TEST(test_shape_errors)
{
    qs_quantizer_t q = mkq(8, QS_SCHEME_SYMMETRIC, QS_RANGE_MSE);
    q.gran.kind = QS_GRAN_CHANNEL;
    q.gran.axis = 1;
    int64_t s0[3] = {2, 4, 3}, s1[3] = {5, 4, 1}, s2[3] = {2, 5, 3}, s3[2] = {2, 4};
    qs_observer_t *o;
    qs_qparams_t *p;
    ck_assert_int_eq(qs_observer_create(&q, 3, s0, &o), QS_OK);
    qs_tensor_t *a = qs_tensor_create(QS_F32, 3, s1), *b = qs_tensor_create(QS_F32, 3, s2),
                *c = qs_tensor_create(QS_F32, 2, s3), *d = qs_tensor_create(QS_I32, 3, s0);
    ck_assert_int_eq(qs_observer_update(o, a), QS_OK); /* other dims may differ */
    ck_assert_int_eq(qs_observer_update(o, b), QS_ERR_SHAPE);
    ck_assert_msg(strstr(qs_last_error(), "4 channels") && strstr(qs_last_error(), "[2, 5, 3]"), "%s", qs_last_error());
    ck_assert_int_eq(qs_observer_update(o, c), QS_ERR_SHAPE);
    ck_assert_int_eq(qs_observer_update(o, d), QS_ERR_INVALID);
    ck_assert_int_eq(qs_observer_finish(o, &p), QS_OK);
    ck_assert_int_eq(p->count, 4);
    qs_qparams_free(p);
    qs_observer_free(o);
    /* per group: the whole shape */
    q.gran.kind = QS_GRAN_GROUP;
    q.gran.group = 2;
    ck_assert_int_eq(qs_observer_create(&q, 3, s0, &o), QS_OK);
    ck_assert_int_eq(qs_observer_update(o, a), QS_ERR_SHAPE);
    ck_assert_msg(strstr(qs_last_error(), "[2, 4, 3]") && strstr(qs_last_error(), "[5, 4, 1]"), "%s", qs_last_error());
    /* nothing observed yet */
    ck_assert_int_eq(qs_observer_finish(o, &p), QS_ERR_INVALID);
    ck_assert_ptr_null(p);
    qs_observer_free(o);
    /* per tensor: any shape */
    q.gran.kind = QS_GRAN_TENSOR;
    ck_assert_int_eq(qs_observer_create(&q, 3, s0, &o), QS_OK);
    ck_assert_int_eq(qs_observer_update(o, a), QS_OK);
    ck_assert_int_eq(qs_observer_update(o, b), QS_OK);
    ck_assert_int_eq(qs_observer_update(o, c), QS_OK);
    ck_assert_int_eq(qs_observer_finish(o, &p), QS_OK);
    ck_assert_int_eq(p->count, 1);
    qs_qparams_free(p);
    qs_observer_free(o);
    qs_tensor_free(a);
    qs_tensor_free(b);
    qs_tensor_free(c);
    qs_tensor_free(d);
    /* a bad percentile */
    q.range.method = QS_RANGE_PERCENTILE;
    q.range.percentile = 0.0;
    ck_assert_int_lt(qs_observer_create(&q, 3, s0, &o), 0);
}
END_TEST

/* ---- threads -------------------------------------------------------------------------------------------------------- */

START_TEST(test_threads_do_not_matter)
{
    enum { N = 60000 };
    float *x = malloc(N * sizeof *x);
    gen(x, N, 4, 123);
    struct {
        qs_range_method_t m;
        qs_scheme_t sc;
        int chan;
    } cases[] = {{QS_RANGE_MSE, QS_SCHEME_SYMMETRIC, 0}, {QS_RANGE_MSE, QS_SCHEME_ASYMMETRIC, 1},
                 {QS_RANGE_KL, QS_SCHEME_SYMMETRIC, 1}, {QS_RANGE_SQNR, QS_SCHEME_ASYMMETRIC, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        qs_quantizer_t q = mkq(4, cases[c].sc, cases[c].m);
        int64_t shape[2] = {cases[c].chan ? 6 : 1, N / 6 * (cases[c].chan ? 1 : 6)};
        if (cases[c].chan) {
            q.gran.kind = QS_GRAN_CHANNEL;
            q.gran.axis = 0;
        }
        qs_tensor_t *t = qs_tensor_create(QS_F32, 2, shape);
        memcpy(t->data, x, (size_t)t->size * sizeof *x);
        qs_qparams_t *p1, *p3;
        setenv("QUASAR_THREADS", "1", 1);
        ck_assert_int_eq(qs_calibrate(&q, t, &p1), QS_OK);
        setenv("QUASAR_THREADS", "3", 1);
        ck_assert_int_eq(qs_calibrate(&q, t, &p3), QS_OK);
        unsetenv("QUASAR_THREADS");
        for (int64_t k = 0; k < p1->count; k++) {
            ck_assert_float_eq(p1->scale[k], p3->scale[k]);
            ck_assert_int_eq(p1->zero_point[k], p3->zero_point[k]);
        }
        qs_qparams_free(p1);
        qs_qparams_free(p3);
        qs_tensor_free(t);
    }
    free(x);
}
END_TEST

static Suite *range_suite(void)
{
    Suite *s = suite_create("range");
    TCase *tc = tcase_create("setters");
    tcase_add_test(tc, test_minmax);
    tcase_add_test(tc, test_mse_brute);
    tcase_add_test(tc, test_mse_brute_large);
    tcase_add_test(tc, test_mse_tie_widest);
    tcase_add_test(tc, test_mse_sse_sorted);
    tcase_add_test(tc, test_mse_not_worse_than_minmax);
    tcase_add_test(tc, test_percentile_brute);
    tcase_add_test(tc, test_percentile_100);
    tcase_add_test(tc, test_sqnr_brute);
    tcase_add_test(tc, test_kl_brute);
    tcase_add_test(tc, test_kl_brute_dense);
    tcase_add_test(tc, test_kl_all_widths);
    tcase_add_test(tc, test_aciq_constants);
    tcase_add_test(tc, test_aciq_brute);
    tcase_add_test(tc, test_long_tail_clips);
    tcase_add_test(tc, test_zero_tensor);
    suite_add_tcase(s, tc);
    TCase *to = tcase_create("observer");
    tcase_add_test(to, test_multibatch_exact);
    tcase_add_test(to, test_multibatch_gauss);
    tcase_add_test(to, test_hist_growth);
    tcase_add_test(to, test_multibatch_growth);
    tcase_add_test(to, test_store_subsample);
    tcase_add_test(to, test_per_slice);
    tcase_add_test(to, test_per_channel_batches);
    tcase_add_test(to, test_nonfinite);
    tcase_add_test(to, test_shape_errors);
    tcase_add_test(to, test_threads_do_not_matter);
    suite_add_tcase(s, to);
    return s;
}

QS_TEST_MAIN(range_suite)
