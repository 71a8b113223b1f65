/* quant/histogram.c — the 2048-bin histograms the percentile, sqnr and kl
 * range setters accumulate over many batches, and those three setters.
 * The definitions are normative (docs/arithmetic.md, "Range setting"); the
 * tests in tests/test_range.c restate each of them by brute force. */
#include "quant/quant_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NB QS_HIST_BINS

/* The weight of clipped bins in the sqnr cost: AIMET's TF-enhanced gamma. */
#define SQNR_GAMMA 3.0
/* The smoothing of zero bins in kl, as MXNet's and TVM's ports of the
 * TensorRT calibrator do. */
#define KL_EPS 1e-4

static bool is_sym(qs_scheme_t s) { return s == QS_SCHEME_SYMMETRIC || s == QS_SCHEME_SYMMETRIC_NARROW; }
static bool is_asym(qs_scheme_t s) { return s == QS_SCHEME_ASYMMETRIC || s == QS_SCHEME_ASYMMETRIC_SIGNED; }

qs_hist_kind_t qs_hist_kind_for(const qs_quantizer_t *q)
{
    if (q->grid != QS_GRID_UNIFORM) /* the scaled grids take a percentile of |x| whatever the scheme */
        return QS_HIST_ABS;
    if (q->scheme == QS_SCHEME_UNSIGNED)
        return QS_HIST_POS;
    if (is_asym(q->scheme) && q->range.method != QS_RANGE_KL)
        return QS_HIST_SIGNED;
    return QS_HIST_ABS;
}

void qs_hist_init(qs_hist_t *h, qs_hist_kind_t kind)
{
    memset(h, 0, sizeof *h);
    h->kind = kind;
}

static inline double fold(qs_hist_kind_t k, float v)
{
    switch (k) {
    case QS_HIST_ABS: return fabs((double)v);
    case QS_HIST_POS: return v > 0.0f ? (double)v : 0.0;
    default: return (double)v;
    }
}

static inline int bin_of(const qs_hist_t *h, double v)
{
    if (h->width == 0.0)
        return 0;
    double d = (v - h->lo) / h->width;
    if (!(d > 0.0))
        return 0;
    if (d >= NB)
        return NB - 1;
    return (int)d;
}

/* Doubles the range upward: bins 2j and 2j+1 become bin j. */
static void grow_up(qs_hist_t *h)
{
    for (int j = 0; j < NB / 2; j++)
        h->count[j] = h->count[2 * j] + h->count[2 * j + 1];
    memset(h->count + NB / 2, 0, sizeof h->count[0] * (NB / 2));
    h->width *= 2.0;
}

/* Doubles the range downward: bins 2j and 2j+1 become bin NB/2 + j. */
static void grow_down(qs_hist_t *h)
{
    for (int j = NB / 2 - 1; j >= 0; j--)
        h->count[NB / 2 + j] = h->count[2 * j] + h->count[2 * j + 1];
    memset(h->count, 0, sizeof h->count[0] * (NB / 2));
    h->lo -= NB * h->width;
    h->width *= 2.0;
}

void qs_hist_add(qs_hist_t *h, const float *x, int64_t n)
{
    if (n <= 0)
        return;
    double vmin = fold(h->kind, x[0]), vmax = vmin;
    for (int64_t i = 1; i < n; i++) {
        double v = fold(h->kind, x[i]);
        if (v < vmin)
            vmin = v;
        if (v > vmax)
            vmax = v;
    }
    if (h->total == 0) {
        h->lo = h->kind == QS_HIST_SIGNED ? vmin : 0.0;
        h->width = (vmax - h->lo) / NB;
    } else if (h->width == 0.0) {
        /* Every value so far equals lo and sits in bin 0; set the range now
         * and move that count to the bin lo falls in (exact). */
        double old = h->lo;
        double nlo = h->kind == QS_HIST_SIGNED ? fmin(old, vmin) : 0.0;
        double nhi = fmax(old, vmax);
        if (nhi > nlo) {
            uint64_t c = h->count[0];
            h->count[0] = 0;
            h->lo = nlo;
            h->width = (nhi - nlo) / NB;
            h->count[bin_of(h, old)] += c;
        }
    } else {
        while (vmin < h->lo)
            grow_down(h);
        while (vmax > h->lo + NB * h->width)
            grow_up(h);
    }
    for (int64_t i = 0; i < n; i++)
        h->count[bin_of(h, fold(h->kind, x[i]))]++;
    h->total += n;
}

double qs_hist_mid(const qs_hist_t *h, int k) { return h->lo + ((double)k + 0.5) * h->width; }

/* The range a threshold T on |x| (or on x >= 0) stands for under q's scheme. */
static void threshold_range(const qs_quantizer_t *q, double t, double mn, double mx, double *lo, double *hi)
{
    if (is_sym(q->scheme)) {
        *lo = -t;
        *hi = t;
    } else if (q->scheme == QS_SCHEME_UNSIGNED) {
        *lo = 0.0;
        *hi = t;
    } else {
        *lo = fmax(mn, -t);
        *hi = fmin(mx, t);
    }
}

/* The largest folded value of a slice with extremes mn, mx. */
static double folded_max(qs_hist_kind_t k, double mn, double mx)
{
    if (k == QS_HIST_POS)
        return fmax(mx, 0.0);
    return fmax(fabs(mn), fabs(mx));
}

/* ---- percentile:P ------------------------------------------------------------------ */

int qs_range_percentile(const qs_quantizer_t *q, const qs_hist_t *h, double mn, double mx, double *lo, double *hi)
{
    double p = q->range.percentile;
    if (!(p > 0.0 && p <= 100.0))
        return qs_error(QS_ERR_INVALID, "range=percentile:%g: the percentile must be in (0, 100]", p);
    if (h->total == 0) {
        *lo = *hi = 0.0;
        return QS_OK;
    }
    /* "cum >= P% of n" as 100 cum >= P n: exact for P = 100 */
    double need = p * (double)h->total;
    if (h->kind != QS_HIST_SIGNED) {
        uint64_t cum = 0;
        int k = 0;
        for (; k < NB; k++) {
            cum += h->count[k];
            if (100.0 * (double)cum >= need)
                break;
        }
        if (k == NB)
            k = NB - 1;
        double t = fmin((double)(k + 1) * h->width, folded_max(h->kind, mn, mx));
        threshold_range(q, t, mn, mx, lo, hi);
        return QS_OK;
    }
    uint64_t cum = 0;
    int khi = 0;
    for (; khi < NB; khi++) {
        cum += h->count[khi];
        if (100.0 * (double)cum >= need)
            break;
    }
    if (khi == NB)
        khi = NB - 1;
    cum = 0;
    int klo = NB - 1;
    for (; klo >= 0; klo--) {
        cum += h->count[klo];
        if (100.0 * (double)cum >= need)
            break;
    }
    if (klo < 0)
        klo = 0;
    double a = fmax(h->lo + (double)klo * h->width, mn);
    double b = fmin(h->lo + (double)(khi + 1) * h->width, mx);
    if (a > b) /* only for P < 50: the two points crossed */
        a = b = 0.5 * (a + b);
    *lo = a;
    *hi = b;
    return QS_OK;
}

/* ---- sqnr (TF-enhanced) -------------------------------------------------------------- */

/* Sum over bins of count x (midpoint - its fake-quantized value)^2, with the
 * squared error of bins whose midpoint clips weighted by gamma. */
static double sqnr_cost(const qs_quantizer_t *q, const qs_hist_t *h, float s, int32_t z)
{
    double cost = 0.0;
    for (int k = 0; k < NB; k++) {
        if (h->count[k] == 0)
            continue;
        double m = qs_hist_mid(h, k);
        bool clipped = false;
        int32_t code = qs_quantize_one(q, (float)m, s, z, (uint64_t)k, &clipped);
        double e = m - (double)qs_dequantize_one(s, z, code);
        cost += (double)h->count[k] * (clipped ? SQNR_GAMMA : 1.0) * e * e;
    }
    return cost;
}

static inline bool better(double cost, double width, double best_cost, double best_width)
{
    return cost < best_cost || (cost == best_cost && width > best_width);
}

int qs_range_sqnr(const qs_quantizer_t *q, const qs_hist_t *h, double mn, double mx, double *lo, double *hi)
{
    double best = INFINITY, best_w = -1.0, blo = 0.0, bhi = 0.0;
    float s;
    int32_t z;
    int rc;
    if (h->total == 0 || h->width == 0.0) {
        /* a single value: nothing to search */
        return qs_range_minmax(q, mn, mx, lo, hi);
    }
    if (!is_asym(q->scheme)) {
        double amax = folded_max(h->kind, mn, mx);
        for (int k = 1; k <= 101; k++) {
            double t = amax * k / 100.0, a, b;
            threshold_range(q, t, mn, mx, &a, &b);
            if ((rc = qs_qparams_from_range(q, a, b, &s, &z)) < 0)
                return rc;
            double c = sqnr_cost(q, h, s, z);
            if (better(c, b - a, best, best_w)) {
                best = c;
                best_w = b - a;
                blo = a;
                bhi = b;
            }
        }
        *lo = blo;
        *hi = bhi;
        return QS_OK;
    }
    /* Asymmetric: AIMET's 17 step sizes x 21 splits of the levels around
     * zero, each intersected with the observed range (zero included), after
     * the plain min-max candidate. */
    int64_t qmin, qmax;
    qs_quantizer_code_range(q, &qmin, &qmax);
    double steps = (double)(qmax - qmin);
    double zmn = fmin(mn, 0.0), zmx = fmax(mx, 0.0);
    if ((rc = qs_qparams_from_range(q, mn, mx, &s, &z)) < 0)
        return rc;
    best = sqnr_cost(q, h, s, z);
    best_w = mx - mn;
    blo = mn;
    bhi = mx;
    double dmax = (zmx - zmn) / steps;
    for (int f = 1; f <= 17; f++) {
        double d = dmax * f / 16.0;
        for (int i = 0; i <= 20; i++) {
            double t = trunc((double)i * steps / 20.0); /* levels below zero */
            double a = fmax(-t * d, zmn), b = fmin((steps - t) * d, zmx);
            if (!(b > a))
                continue;
            if ((rc = qs_qparams_from_range(q, a, b, &s, &z)) < 0)
                return rc;
            double c = sqnr_cost(q, h, s, z);
            if (better(c, b - a, best, best_w)) {
                best = c;
                best_w = b - a;
                blo = a;
                bhi = b;
            }
        }
    }
    *lo = blo;
    *hi = bhi;
    return QS_OK;
}

/* ---- kl (TensorRT entropy calibration) ------------------------------------------------ */

int64_t qs_kl_levels(const qs_quantizer_t *q, double mn, double mx)
{
    int64_t qmin, qmax;
    qs_quantizer_code_range(q, &qmin, &qmax);
    if (is_asym(q->scheme) && !(mn >= 0.0 || mx <= 0.0))
        return (qmax - qmin + 1) / 2; /* two-sided data: half the codes per side */
    if (is_asym(q->scheme))
        return qmax - qmin + 1;
    return qmax + 1; /* the non-negative codes: 128 for int8, 256 for uint8 */
}

/* KL(P || Q) for keeping the first i of the bins (TensorRT; the smoothing
 * of MXNet's and TVM's ports):
 *   P_j = h_j (j < i-1), P_{i-1} = h_{i-1} + sum_{j >= i} h_j;
 *   the first i bins split into nq groups of floor(i/nq) bins (the last group
 *   takes the rest); Q_j = (sum of h over j's group) / (bins of the group
 *   with P > 0) where P_j > 0, else 0;
 *   smoothing: zero entries become eps, the others lose eps * zeros/nonzeros,
 *   which keeps the totals, n for P and n - outliers for Q;
 *   KL = sum_j p_j ln(p_j / q_j), p = P / n, q = Q / (n - outliers).
 * Infinite when Q is all zero or smoothing leaves an entry <= 0. Bins empty
 * in P contribute one common term, so the cost is O(nonzero bins + nq) per i. */
typedef struct {
    const uint64_t *h;
    const uint64_t *pc; /* pc[j] = sum of h[0..j) */
    const int32_t *pn;  /* pn[j] = number of non-empty bins in [0, j) */
    const int32_t *nzl; /* the non-empty bins, ascending */
    int nnz;
    double n;
} kl_ctx_t;

static double kl_divergence(const kl_ctx_t *c, int i, int64_t nq)
{
    double nqt = (double)c->pc[i]; /* total of Q */
    double outl = c->n - nqt;
    if (nqt == 0.0)
        return INFINITY;
    int64_t merged = i / nq;
    bool extra = c->h[i - 1] == 0 && outl > 0.0; /* bin i-1 is non-empty in P only */
    int64_t nzp = c->pn[i] + extra, zp = i - nzp;
    int64_t glast = (nq - 1) * merged;
    double sum_last = (double)(c->pc[i] - c->pc[glast]);
    int64_t zq = zp + (extra && sum_last == 0.0);
    if (zq == i)
        return INFINITY;
    double e1p = KL_EPS * (double)zp / (double)nzp, e1q = KL_EPS * (double)zq / (double)(i - zq);
    double pz = KL_EPS / c->n;
    double kl = (double)zp * (pz * log(pz / (KL_EPS / nqt)));
    for (int t = 0; t <= c->nnz; t++) {
        int j;
        if (t < c->nnz && c->nzl[t] < i)
            j = c->nzl[t];
        else if (extra)
            j = i - 1; /* empty in h, so after every listed bin below i */
        else
            break;
        double pj = (double)c->h[j] + (j == i - 1 ? outl : 0.0);
        int64_t g = j / merged < nq - 1 ? j / merged : nq - 1;
        int64_t a = g * merged, b = g == nq - 1 ? i : a + merged;
        double sum = (double)(c->pc[b] - c->pc[a]);
        int64_t nz = c->pn[b] - c->pn[a] + (g == nq - 1 && extra);
        double qj = sum > 0.0 ? sum / (double)nz - e1q : KL_EPS;
        pj -= e1p;
        if (!(pj > 0.0) || !(qj > 0.0))
            return INFINITY;
        pj /= c->n;
        qj /= nqt;
        kl += pj * log(pj / qj);
        if (j == i - 1)
            break;
    }
    return kl;
}

int qs_range_kl(const qs_quantizer_t *q, const qs_hist_t *h, double mn, double mx, double *lo, double *hi)
{
    double amax = folded_max(h->kind, mn, mx);
    int64_t nq = qs_kl_levels(q, mn, mx);
    if (h->total == 0 || h->width == 0.0 || nq >= NB) {
        threshold_range(q, amax, mn, mx, lo, hi);
        return QS_OK;
    }
    if (nq < 1)
        nq = 1;
    uint64_t *pc = malloc((NB + 1) * sizeof *pc);
    int32_t *pn = malloc((NB + 1) * sizeof *pn), *nzl = malloc(NB * sizeof *nzl);
    if (!pc || !pn || !nzl) {
        free(pc);
        free(pn);
        free(nzl);
        return qs_error(QS_ERR_NOMEM, "out of memory in the kl range setter");
    }
    kl_ctx_t c = {h->count, pc, pn, nzl, 0, (double)h->total};
    pc[0] = 0;
    pn[0] = 0;
    for (int j = 0; j < NB; j++) {
        pc[j + 1] = pc[j] + h->count[j];
        pn[j + 1] = pn[j] + (h->count[j] != 0);
        if (h->count[j])
            nzl[c.nnz++] = j;
    }
    double best = INFINITY;
    int best_i = NB;
    for (int i = (int)nq; i <= NB; i++) {
        double d = kl_divergence(&c, i, nq);
        if (d <= best) { /* ties to the larger threshold */
            best = d;
            best_i = i;
        }
    }
    free(pc);
    free(pn);
    free(nzl);
    double t = fmin(((double)best_i + 0.5) * h->width, amax);
    threshold_range(q, t, mn, mx, lo, hi);
    return QS_OK;
}
