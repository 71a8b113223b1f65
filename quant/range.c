/* quant/range.c — range setting: the observer that accumulates a slice's
 * statistics over many batches (extrema, moments, histograms or the values
 * themselves), and the minmax, mse and aciq setters. The histogram-based
 * setters (percentile, sqnr, kl) are in quant/histogram.c. Every definition
 * here is normative (docs/arithmetic.md, "Range setting") and restated by
 * brute force in tests/test_range.c. */
#include "quant/quant_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The mse candidate grid: thresholds amax k/100 (symmetric, unsigned) and
 * pairs (min i/20, max j/20) (asymmetric). */
#define MSE_STEPS_SYM 100
#define MSE_STEPS_ASYM 20
#define MSE_MAX_CAND (1 + MSE_STEPS_ASYM * MSE_STEPS_ASYM)

/* Work (in element operations) above which finish runs on a thread pool. */
#define PARALLEL_WORK ((double)(1 << 22))

static bool is_sym(qs_scheme_t s) { return s == QS_SCHEME_SYMMETRIC || s == QS_SCHEME_SYMMETRIC_NARROW; }
static bool is_asym(qs_scheme_t s) { return s == QS_SCHEME_ASYMMETRIC || s == QS_SCHEME_ASYMMETRIC_SIGNED; }

static inline bool better(double cost, double width, double best_cost, double best_width)
{
    return cost < best_cost || (cost == best_cost && width > best_width);
}

/* ---- minmax ------------------------------------------------------------------------- */

int qs_range_minmax(const qs_quantizer_t *q, double mn, double mx, double *lo, double *hi)
{
    (void)q;
    *lo = mn;
    *hi = mx;
    return QS_OK;
}

/* ---- mse ---------------------------------------------------------------------------- */

/* Candidate 0 is the minmax range, so mse is never worse than minmax. */
static int mse_candidates(const qs_quantizer_t *q, double mn, double mx, double *clo, double *chi)
{
    int n = 0;
    clo[n] = mn;
    chi[n++] = mx;
    if (is_sym(q->scheme) || q->scheme == QS_SCHEME_UNSIGNED) {
        double top = is_sym(q->scheme) ? fmax(fabs(mn), fabs(mx)) : fmax(mx, 0.0);
        if (top > 0.0)
            for (int k = 1; k <= MSE_STEPS_SYM; k++) {
                double t = top * k / (double)MSE_STEPS_SYM;
                clo[n] = is_sym(q->scheme) ? -t : 0.0;
                chi[n++] = t;
            }
        return n;
    }
    double zmn = fmin(mn, 0.0), zmx = fmax(mx, 0.0);
    if (!(zmx > zmn))
        return n;
    /* a zero end gives the same limit for every i (or j): keep one */
    for (int i = zmn == 0.0 ? MSE_STEPS_ASYM : 1; i <= MSE_STEPS_ASYM; i++)
        for (int j = zmx == 0.0 ? MSE_STEPS_ASYM : 1; j <= MSE_STEPS_ASYM; j++) {
            clo[n] = zmn * i / (double)MSE_STEPS_ASYM;
            chi[n++] = zmx * j / (double)MSE_STEPS_ASYM;
        }
    return n;
}

/* The squared error of x[0..n) sorted ascending, with one (s, z). With a
 * rounding that is a non-decreasing function of x/s (every mode but
 * stochastic) and saturation, the code is non-decreasing along sorted x, so
 * equal codes form runs whose ends a galloping search finds with the
 * reference arithmetic (qs_quantize_one); each run is then summed with its
 * one dequantized value. Exact per element, summed in sorted order. */
double qs_mse_sse_sorted(const qs_quantizer_t *q, float s, int32_t z, const float *xs, int64_t n)
{
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    int64_t i = 0;
    while (i < n) {
        int32_t c = qs_quantize_one(q, xs[i], s, z, 0, NULL);
        /* xs[lo] has code c; xs[hi] (hi < n) has a larger one */
        int64_t lo = i, hi = n, step = 1;
        while (lo + step < n && qs_quantize_one(q, xs[lo + step], s, z, 0, NULL) == c) {
            lo += step;
            step *= 2;
        }
        if (lo + step < n)
            hi = lo + step;
        while (hi - lo > 1) {
            int64_t mid = lo + (hi - lo) / 2;
            if (qs_quantize_one(q, xs[mid], s, z, 0, NULL) == c)
                lo = mid;
            else
                hi = mid;
        }
        double xh = (double)qs_dequantize_one(s, z, c);
        /* element k goes to accumulator k mod 4: a fixed order, and four
         * independent chains of additions */
        double a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
        int64_t k = i;
        for (; k < hi && (k & 3); k++) {
            double d = (double)xs[k] - xh;
            if ((k & 3) == 1)
                a1 += d * d;
            else if ((k & 3) == 2)
                a2 += d * d;
            else
                a3 += d * d;
        }
        for (; k + 4 <= hi; k += 4) {
            double d0 = (double)xs[k] - xh, d1 = (double)xs[k + 1] - xh;
            double d2 = (double)xs[k + 2] - xh, d3 = (double)xs[k + 3] - xh;
            a0 += d0 * d0;
            a1 += d1 * d1;
            a2 += d2 * d2;
            a3 += d3 * d3;
        }
        for (; k < hi; k++) {
            double d = (double)xs[k] - xh;
            if ((k & 3) == 0)
                a0 += d * d;
            else if ((k & 3) == 1)
                a1 += d * d;
            else
                a2 += d * d;
        }
        acc[0] = a0;
        acc[1] = a1;
        acc[2] = a2;
        acc[3] = a3;
        i = hi;
    }
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

/* Sorts floats ascending (LSD radix on order-preserving keys, 3 x 11 bits). */
static int sort_floats(const float *x, int64_t n, float **out)
{
    uint32_t *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
    if (!a || !b) {
        free(a);
        free(b);
        return qs_error(QS_ERR_NOMEM, "out of memory sorting %lld values for range=mse", (long long)n);
    }
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        a[i] = (u & 0x80000000u) ? ~u : u | 0x80000000u;
    }
    for (int shift = 0; shift < 33; shift += 11) {
        int64_t cnt[2049] = {0};
        for (int64_t i = 0; i < n; i++)
            cnt[((a[i] >> shift) & 2047) + 1]++;
        for (int k = 0; k < 2048; k++)
            cnt[k + 1] += cnt[k];
        for (int64_t i = 0; i < n; i++)
            b[cnt[(a[i] >> shift) & 2047]++] = a[i];
        uint32_t *t = a;
        a = b;
        b = t;
    }
    float *f = (float *)b;
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = (a[i] & 0x80000000u) ? a[i] & 0x7fffffffu : ~a[i];
        memcpy(&f[i], &u, sizeof u);
    }
    free(a);
    *out = f;
    return QS_OK;
}

typedef struct {
    const qs_quantizer_t *q;
    const float *x; /* sorted when `sorted` */
    int64_t n;
    bool sorted;
    const float *s;
    const int32_t *z;
    double *sse;
} mse_job_t;

static int mse_eval(void *ctx, int64_t begin, int64_t end, int thread)
{
    (void)thread;
    mse_job_t *j = ctx;
    for (int64_t c = begin; c < end; c++)
        j->sse[c] = j->sorted ? qs_mse_sse_sorted(j->q, j->s[c], j->z[c], j->x, j->n)
                              : qs_quant_sse(j->q, j->s[c], j->z[c], j->x, j->n);
    return QS_OK;
}

int qs_range_mse(const qs_quantizer_t *q, const float *x, int64_t n, double mn, double mx, qs_pool_t *pool,
                 double *lo, double *hi)
{
    double clo[MSE_MAX_CAND], chi[MSE_MAX_CAND], sse[MSE_MAX_CAND];
    float s[MSE_MAX_CAND];
    int32_t z[MSE_MAX_CAND];
    int nc = mse_candidates(q, mn, mx, clo, chi);
    int rc;
    for (int c = 0; c < nc; c++)
        if ((rc = qs_qparams_from_range(q, clo[c], chi[c], &s[c], &z[c])) < 0)
            return rc;
    /* Large slices on grids with few codes: evaluate on sorted values (runs of
     * equal codes); otherwise element by element in stored order. */
    int64_t qmin, qmax;
    qs_quantizer_code_range(q, &qmin, &qmax);
    bool sorted = nc > 1 && n >= QS_MSE_SORTED_MIN && q->round.mode != QS_ROUND_STOCHASTIC &&
                  q->overflow == QS_OVERFLOW_SATURATE && (qmax - qmin) < n / 8;
    float *xs = NULL;
    if (sorted && (rc = sort_floats(x, n, &xs)) < 0)
        return rc;
    mse_job_t job = {q, sorted ? xs : x, n, sorted, s, z, sse};
    rc = qs_pool_for(nc > 1 && n > 4096 ? pool : NULL, nc, 1, mse_eval, &job);
    free(xs);
    if (rc < 0)
        return rc;
    int best = 0;
    for (int c = 1; c < nc; c++)
        if (better(sse[c], chi[c] - clo[c], sse[best], chi[best] - clo[best]))
            best = c;
    *lo = clo[best];
    *hi = chi[best];
    return QS_OK;
}

/* ---- aciq ------------------------------------------------------------------------------ */

/* d/da of Banner et al.'s expected MSE for a unit-spread distribution clipped
 * at +-a and quantized with 2^M levels: clipping term + a^2 / (3 4^M).
 *   Laplace(0, 1): 2 e^-a                                          -> -2 e^-a
 *   Gauss(0, 1):   (1 + a^2) erfc(a/sqrt2) - a sqrt(2/pi) e^(-a^2/2) -> 2a erfc(a/sqrt2) - 2 sqrt(2/pi) e^(-a^2/2)
 * Both are convex in a, so the root of the derivative is the minimum. */
static double aciq_slope(qs_aciq_dist_t d, double a, double levels_term)
{
    double rounding = 2.0 * a / levels_term;
    if (d == QS_ACIQ_LAPLACE)
        return -2.0 * exp(-a) + rounding;
    return 2.0 * a * erfc(a / sqrt(2.0)) - 2.0 * sqrt(2.0 / M_PI) * exp(-0.5 * a * a) + rounding;
}

double qs_aciq_solve(qs_aciq_dist_t d, int bits)
{
    double c = ldexp(3.0, 2 * bits); /* 3 * 4^M */
    double lo = 0.0, hi = 128.0;
    for (int it = 0; it < 200 && hi - lo > 0.0; it++) {
        double mid = 0.5 * (lo + hi);
        if (mid == lo || mid == hi)
            break;
        if (aciq_slope(d, mid, c) < 0.0)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

double qs_aciq_ratio(qs_aciq_dist_t d, int bits)
{
    /* Banner, Nahshan, Soudry, "Post training 4-bit quantization of
     * convolutional networks for rapid-deployment", NeurIPS 2019, section 3:
     * alpha* = 2.83 b, 3.89 b, 5.03 b (Laplace) and 1.71 s, 2.15 s, 2.55 s
     * (Gauss) for M = 2, 3, 4 bits. */
    static const double laplace[] = {2.83, 3.89, 5.03};
    static const double gauss[] = {1.71, 2.15, 2.55};
    if (bits >= 2 && bits <= 4)
        return d == QS_ACIQ_LAPLACE ? laplace[bits - 2] : gauss[bits - 2];
    return qs_aciq_solve(d, bits);
}

int qs_range_aciq(const qs_quantizer_t *q, double mean, double spread, double mn, double mx, double *lo, double *hi)
{
    double alpha = qs_aciq_ratio(q->range.dist, q->bits) * spread;
    if (is_sym(q->scheme)) {
        double t = fmin(fabs(mean) + alpha, fmax(fabs(mn), fabs(mx)));
        *lo = -t;
        *hi = t;
    } else if (q->scheme == QS_SCHEME_UNSIGNED) {
        *lo = 0.0;
        *hi = fmax(0.0, fmin(mean + alpha, mx));
    } else {
        *lo = fmax(mn, mean - alpha);
        *hi = fmin(mx, mean + alpha);
    }
    return QS_OK;
}

/* ---- the observer ------------------------------------------------------------------------- */

typedef struct {
    int64_t count;
    double min, max;
    double mean, m2; /* aciq:gauss: running mean and sum of squared deviations */
} slice_stats_t;

/* The values of one slice (mse, aciq:laplace): the stream of its values in
 * batch order, or, once more than cap arrived, every stride-th of them. */
typedef struct {
    float *v;
    int64_t len, alloc;
    int64_t seen;   /* values offered so far */
    int64_t stride; /* a power of two */
} store_t;

struct qs_observer {
    qs_quantizer_t q;
    int ndim;
    int64_t shape[QS_MAX_DIMS];
    int axis; /* channel, group: the axis, counted from 0 */
    qs_qlayout_t lay;
    int64_t nslices;
    slice_stats_t *st;
    qs_hist_t *hist;  /* percentile, sqnr, kl */
    store_t *store;   /* mse, aciq:laplace */
    bool moments;     /* aciq:gauss */
    int64_t store_cap;
    float *scratch;
    int64_t scratch_len;
};

static bool wants_hist(const qs_quantizer_t *q)
{
    return q->range.method == QS_RANGE_PERCENTILE || q->range.method == QS_RANGE_SQNR ||
           q->range.method == QS_RANGE_KL;
}

static bool wants_store(const qs_quantizer_t *q)
{
    if (q->grid != QS_GRID_UNIFORM)
        return qs_grid_wants_store(q);
    return q->range.method == QS_RANGE_MSE || (q->range.method == QS_RANGE_ACIQ && q->range.dist == QS_ACIQ_LAPLACE);
}

void qs_observer_free(qs_observer_t *o)
{
    if (!o)
        return;
    if (o->store)
        for (int64_t k = 0; k < o->nslices; k++)
            free(o->store[k].v);
    free(o->store);
    qs_free(o->hist);
    free(o->st);
    free(o->scratch);
    free(o);
}

int qs_observer_create(const qs_quantizer_t *q, int ndim, const int64_t *shape, qs_observer_t **out)
{
    int rc;
    *out = NULL;
    if ((rc = qs_quantizer_validate(q)) < 0)
        return rc;
    if (q->range.method < 0 || q->range.method >= QS_RANGE_COUNT)
        return qs_error(QS_ERR_INVALID, "unknown range method %d", (int)q->range.method);
    if (q->range.method == QS_RANGE_PERCENTILE && !(q->range.percentile > 0.0 && q->range.percentile <= 100.0))
        return qs_error(QS_ERR_INVALID, "range=percentile:%g: the percentile must be in (0, 100]",
                        q->range.percentile);
    if (ndim < 0 || ndim > QS_MAX_DIMS)
        return qs_error(QS_ERR_SHAPE, "an observer's shape has 0 to %d dimensions, not %d", QS_MAX_DIMS, ndim);
    qs_qlayout_t lay;
    if ((rc = qs_qlayout(q, ndim, shape, &lay)) < 0)
        return rc;
    qs_observer_t *o = calloc(1, sizeof *o);
    if (!o)
        return qs_error(QS_ERR_NOMEM, "out of memory creating an observer");
    o->q = *q;
    o->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        o->shape[i] = shape[i];
    o->axis = q->gran.kind == QS_GRAN_TENSOR ? -1 : (q->gran.axis < 0 ? q->gran.axis + ndim : q->gran.axis);
    o->lay = lay;
    o->nslices = lay.nparams;
    int64_t ns = o->nslices > 0 ? o->nslices : 1;
    o->st = calloc((size_t)ns, sizeof *o->st);
    if (!o->st)
        goto nomem;
    for (int64_t k = 0; k < ns; k++) {
        o->st[k].min = INFINITY;
        o->st[k].max = -INFINITY;
    }
    if (wants_hist(q)) {
        if ((uint64_t)ns > SIZE_MAX / sizeof *o->hist)
            goto nomem;
        o->hist = qs_alloc((size_t)ns * sizeof *o->hist);
        if (!o->hist)
            goto nomem;
        qs_hist_kind_t kind = qs_hist_kind_for(q);
        for (int64_t k = 0; k < ns; k++)
            qs_hist_init(&o->hist[k], kind);
    }
    if (wants_store(q)) {
        o->store = calloc((size_t)ns, sizeof *o->store);
        if (!o->store)
            goto nomem;
        for (int64_t k = 0; k < ns; k++)
            o->store[k].stride = 1;
        o->store_cap = QS_STORE_CAP / ns;
        if (o->store_cap < QS_STORE_MIN)
            o->store_cap = QS_STORE_MIN;
    }
    o->moments = q->range.method == QS_RANGE_ACIQ && q->range.dist == QS_ACIQ_GAUSS;
    *out = o;
    return QS_OK;
nomem:
    qs_observer_free(o);
    return qs_error(QS_ERR_NOMEM, "out of memory creating an observer for %lld slices%s", (long long)ns,
                    wants_hist(q) ? " (a 2048-bin histogram, 16 KiB, per slice)" : "");
}

/* Values the store will hold after offering n more (an upper bound is enough:
 * it only sizes the allocation made before anything changes). */
static int store_reserve(store_t *s, int64_t n, int64_t cap)
{
    int64_t need = s->len + (n + s->stride - 1) / s->stride;
    if (need > cap)
        need = cap;
    if (need <= s->alloc)
        return QS_OK;
    int64_t a = s->alloc ? s->alloc : 1024;
    while (a < need)
        a *= 2;
    if (a > cap)
        a = cap;
    float *v = realloc(s->v, (size_t)a * sizeof *v);
    if (!v)
        return qs_error(QS_ERR_NOMEM, "out of memory keeping %lld values for range setting", (long long)a);
    s->v = v;
    s->alloc = a;
    return QS_OK;
}

static void store_add(store_t *s, const float *x, int64_t n, int64_t cap)
{
    for (int64_t t = 0; t < n; t++) {
        int64_t idx = s->seen + t;
        if (idx & (s->stride - 1))
            continue;
        if (s->len == cap) {
            /* keep the values whose stream index is a multiple of 2 stride:
             * the even positions */
            int64_t m = 0;
            for (int64_t i = 0; i < s->len; i += 2)
                s->v[m++] = s->v[i];
            s->len = m;
            s->stride *= 2;
            if (idx & (s->stride - 1))
                continue;
        }
        s->v[s->len++] = x[t];
    }
    s->seen += n;
}

static void stats_add(slice_stats_t *st, const float *x, int64_t n, bool moments)
{
    if (n <= 0)
        return;
    float mn = x[0], mx = x[0];
    for (int64_t i = 1; i < n; i++) {
        if (x[i] < mn)
            mn = x[i];
        if (x[i] > mx)
            mx = x[i];
    }
    if (mn < st->min)
        st->min = mn;
    if (mx > st->max)
        st->max = mx;
    if (moments) {
        /* this batch's mean and squared deviations, then Chan, Golub and
         * LeVeque's pairwise merge */
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++)
            sum += x[i];
        double mb = sum / (double)n, m2b = 0.0;
        for (int64_t i = 0; i < n; i++) {
            double d = x[i] - mb;
            m2b += d * d;
        }
        double na = (double)st->count, nb = (double)n, nt = na + nb;
        double delta = mb - st->mean;
        st->mean += delta * nb / nt;
        st->m2 += m2b + delta * delta * na * nb / nt;
    }
    st->count += n;
}

/* Values of slice k of batch x (layout lay), contiguous: either a pointer into
 * x or the scratch buffer. */
static const float *gather(qs_observer_t *o, const float *x, const qs_qlayout_t *lay, int64_t k, int64_t *n)
{
    int64_t len = lay->len, inner = lay->inner, outer = lay->outer;
    if (o->q.gran.kind == QS_GRAN_TENSOR) {
        *n = outer * len * inner;
        return x;
    }
    if (o->q.gran.kind == QS_GRAN_CHANNEL) {
        *n = outer * inner;
        if (outer == 1)
            return x + k * inner;
        float *d = o->scratch;
        for (int64_t a = 0; a < outer; a++)
            memcpy(d + a * inner, x + (a * len + k) * inner, (size_t)inner * sizeof *d);
        return d;
    }
    /* group: k = (outer index * ngroups + g) * inner + i */
    int64_t i = k % inner, og = k / inner, g = og % lay->ngroups, a0 = og / lay->ngroups;
    int64_t b = g * lay->group, e = b + lay->group < len ? b + lay->group : len;
    *n = e - b;
    const float *base = x + (a0 * len) * inner + i;
    if (inner == 1)
        return base + b;
    float *d = o->scratch;
    for (int64_t a = b; a < e; a++)
        d[a - b] = base[a * inner];
    return d;
}

int qs_observer_update(qs_observer_t *o, const qs_tensor_t *x)
{
    char b1[96], b2[96];
    if (!o || !x)
        return qs_error(QS_ERR_INVALID, "observer update: no observer or no tensor");
    if (x->dtype != QS_F32)
        return qs_error(QS_ERR_INVALID, "observer update: expected a float32 tensor, got %s", qs_dtype_name(x->dtype));
    const qs_quantizer_t *q = &o->q;
    if (q->gran.kind == QS_GRAN_CHANNEL) {
        if (x->ndim != o->ndim || x->shape[o->axis] != o->shape[o->axis])
            return qs_error(QS_ERR_SHAPE,
                            "observer update: per-channel on axis %d expects a batch of rank %d with %lld channels, "
                            "got shape %s (the observer was created for %s)",
                            o->axis, o->ndim, (long long)o->shape[o->axis], qs_shape_str(x->ndim, x->shape, b1, sizeof b1),
                            qs_shape_str(o->ndim, o->shape, b2, sizeof b2));
    } else if (q->gran.kind == QS_GRAN_GROUP) {
        bool same = x->ndim == o->ndim;
        for (int i = 0; same && i < o->ndim; i++)
            same = x->shape[i] == o->shape[i];
        if (!same)
            return qs_error(QS_ERR_SHAPE, "observer update: per-group expects every batch to have shape %s, got %s",
                            qs_shape_str(o->ndim, o->shape, b2, sizeof b2),
                            qs_shape_str(x->ndim, x->shape, b1, sizeof b1));
    }
    const float *xv = qs_f32(x);
    for (int64_t i = 0; i < x->size; i++)
        if (!isfinite(xv[i]))
            return qs_error(QS_ERR_NUMERIC,
                            "observer update: element %lld is %s (flat index in the batch of shape %s); "
                            "range setting needs finite values",
                            (long long)i, isnan(xv[i]) ? "NaN" : xv[i] > 0 ? "+Inf" : "-Inf",
                            qs_shape_str(x->ndim, x->shape, b1, sizeof b1));
    if (x->size == 0)
        return QS_OK;
    qs_qlayout_t lay;
    int rc;
    if ((rc = qs_qlayout(q, x->ndim, x->shape, &lay)) < 0)
        return rc;
    if (lay.nparams != o->nslices)
        return qs_error(QS_ERR_INTERNAL, "observer update: %lld slices in a batch, %lld at creation",
                        (long long)lay.nparams, (long long)o->nslices);
    /* size the buffers first, so that a failure leaves the observer as it was */
    int64_t per_slice = x->size / (o->nslices > 0 ? o->nslices : 1) + lay.group;
    if (q->gran.kind != QS_GRAN_TENSOR && per_slice > o->scratch_len) {
        float *s = realloc(o->scratch, (size_t)per_slice * sizeof *s);
        if (!s)
            return qs_error(QS_ERR_NOMEM, "out of memory in an observer update");
        o->scratch = s;
        o->scratch_len = per_slice;
    }
    if (o->store)
        for (int64_t k = 0; k < o->nslices; k++)
            if ((rc = store_reserve(&o->store[k], per_slice, o->store_cap)) < 0)
                return rc;
    for (int64_t k = 0; k < o->nslices; k++) {
        int64_t n;
        const float *v = gather(o, xv, &lay, k, &n);
        stats_add(&o->st[k], v, n, o->moments);
        if (o->hist)
            qs_hist_add(&o->hist[k], v, n);
        if (o->store)
            store_add(&o->store[k], v, n, o->store_cap);
    }
    return QS_OK;
}

typedef struct {
    const qs_observer_t *o;
    qs_pool_t *pool;
    qs_qparams_t *p;
} finish_job_t;

static int slice_range(const qs_observer_t *o, int64_t k, qs_pool_t *pool, double *lo, double *hi)
{
    const qs_quantizer_t *q = &o->q;
    const slice_stats_t *st = &o->st[k];
    if (st->count == 0) {
        *lo = *hi = 0.0;
        return QS_OK;
    }
    double mn = st->min, mx = st->max;
    switch (q->range.method) {
    case QS_RANGE_MINMAX: return qs_range_minmax(q, mn, mx, lo, hi);
    case QS_RANGE_PERCENTILE: return qs_range_percentile(q, &o->hist[k], mn, mx, lo, hi);
    case QS_RANGE_SQNR: return qs_range_sqnr(q, &o->hist[k], mn, mx, lo, hi);
    case QS_RANGE_KL: return qs_range_kl(q, &o->hist[k], mn, mx, lo, hi);
    case QS_RANGE_MSE: return qs_range_mse(q, o->store[k].v, o->store[k].len, mn, mx, pool, lo, hi);
    case QS_RANGE_ACIQ:
        if (q->range.dist == QS_ACIQ_GAUSS) {
            double sd = sqrt(st->m2 / (double)st->count);
            return qs_range_aciq(q, st->mean, sd, mn, mx, lo, hi);
        } else {
            const store_t *s = &o->store[k];
            double sum = 0.0, dev = 0.0;
            for (int64_t i = 0; i < s->len; i++)
                sum += s->v[i];
            double mean = sum / (double)s->len;
            for (int64_t i = 0; i < s->len; i++)
                dev += fabs(s->v[i] - mean);
            return qs_range_aciq(q, mean, dev / (double)s->len, mn, mx, lo, hi);
        }
    default: break;
    }
    return qs_error(QS_ERR_INVALID, "unknown range method %d", (int)q->range.method);
}

static int finish_slices(void *ctx, int64_t begin, int64_t end, int thread)
{
    (void)thread;
    finish_job_t *j = ctx;
    const qs_observer_t *o = j->o;
    if (o->q.grid != QS_GRID_UNIFORM) {
        for (int64_t k = begin; k < end; k++) {
            const slice_stats_t *st = &o->st[k];
            int rc = qs_grid_fit_slice(&o->q, o->store ? o->store[k].v : NULL, o->store ? o->store[k].len : 0,
                                       st->count ? st->min : 0, st->count ? st->max : 0,
                                       o->hist ? &o->hist[k] : NULL, &j->p->scale[k],
                                       j->p->levels ? j->p->levels + k * j->p->nlevels : NULL);
            if (rc < 0)
                return rc;
        }
        return QS_OK;
    }
    for (int64_t k = begin; k < end; k++) {
        double lo, hi;
        int rc = slice_range(j->o, k, j->pool, &lo, &hi);
        if (rc < 0)
            return rc;
        if ((rc = qs_qparams_from_range(&j->o->q, lo, hi, &j->p->scale[k], &j->p->zero_point[k])) < 0)
            return rc;
    }
    return QS_OK;
}

/* A rough count of element operations, to decide whether threads pay. */
static double finish_work(const qs_observer_t *o)
{
    double w = 0.0;
    if (o->q.grid != QS_GRID_UNIFORM) {
        for (int64_t k = 0; o->store && k < o->nslices; k++)
            w += (double)o->store[k].len * 100.0;
        return w;
    }
    switch (o->q.range.method) {
    case QS_RANGE_MSE:
        for (int64_t k = 0; k < o->nslices; k++)
            w += (double)o->store[k].len * (is_asym(o->q.scheme) ? MSE_MAX_CAND : MSE_STEPS_SYM + 1);
        return w;
    case QS_RANGE_SQNR: return (double)o->nslices * 358.0 * QS_HIST_BINS;
    case QS_RANGE_KL: return (double)o->nslices * QS_HIST_BINS * QS_HIST_BINS;
    default: return 0.0;
    }
}

int qs_observer_finish(qs_observer_t *o, qs_qparams_t **out)
{
    *out = NULL;
    if (!o)
        return qs_error(QS_ERR_INVALID, "observer finish: no observer");
    int64_t total = 0;
    for (int64_t k = 0; k < o->nslices; k++)
        total += o->st[k].count;
    if (total == 0)
        return qs_error(QS_ERR_INVALID, "observer finish: no values were observed, so no range can be set");
    qs_qparams_t *p;
    int rc = qs_qparams_create(&o->q, o->ndim, o->shape, &p);
    if (rc < 0)
        return rc;
    if (p->count != o->nslices) {
        qs_qparams_free(p);
        return qs_error(QS_ERR_INTERNAL, "observer finish: %lld parameters for %lld slices", (long long)p->count,
                        (long long)o->nslices);
    }
    qs_pool_t *pool = NULL;
    if (finish_work(o) > PARALLEL_WORK) {
        qs_error_state_t saved;
        qs_error_save(&saved);
        pool = qs_pool_create(0);
        if (!pool) /* threads are an optimisation: go on serially */
            qs_error_restore(&saved);
    }
    finish_job_t job = {o, pool, p};
    /* one slice: called directly, so that its own search may use the pool
     * (a parallel for inside another runs serially) */
    if (o->nslices == 1)
        rc = finish_slices(&job, 0, 1, 0);
    else
        rc = qs_pool_for(pool, o->nslices, 1, finish_slices, &job);
    qs_pool_free(pool);
    if (rc < 0) {
        qs_qparams_free(p);
        return rc;
    }
    *out = p;
    return QS_OK;
}

int qs_calibrate(const qs_quantizer_t *q, const qs_tensor_t *x, qs_qparams_t **out)
{
    qs_observer_t *o;
    *out = NULL;
    if (!x)
        return qs_error(QS_ERR_INVALID, "calibrate: no tensor");
    int rc = qs_observer_create(q, x->ndim, x->shape, &o);
    if (rc < 0)
        return rc;
    if ((rc = qs_observer_update(o, x)) >= 0)
        rc = qs_observer_finish(o, out);
    qs_observer_free(o);
    return rc;
}

void qs_observer_set_store_cap(qs_observer_t *o, int64_t cap)
{
    /* only before the first update: the stores assume a fixed cap */
    if (o && o->store && cap >= 2 && o->store[0].seen == 0)
        o->store_cap = cap;
}

int64_t qs_observer_values(const qs_observer_t *o, int64_t slice, const float **values)
{
    if (!o || !o->store || slice < 0 || slice >= o->nslices) {
        *values = NULL;
        return 0;
    }
    *values = o->store[slice].v;
    return o->store[slice].len;
}
