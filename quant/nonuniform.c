/* quant/nonuniform.c — quantize and dequantize on the non-uniform grids
 * (docs/arithmetic.md, "Grids"):
 *  - codebooks: the nearest level of the slice's table (qs_codebook_index),
 *    or with stochastic rounding the level above with probability
 *    (x − below)/(above − below);
 *  - float: code = the format's code of x / s (in double: one rounding of
 *    the exact quotient to the format, since 53 ≥ 2·24 + 2), x̂ = fl32(s·decode);
 *  - block formats: per block of `block` elements along block_axis, the
 *    shared scale from the block's largest finite magnitude, then each
 *    element cast (saturating unless overflow=format):
 *      mx:    X = 2^(floor(log2 amax) − emax_elem), clamped to E8M0's
 *             2^−127 .. 2^127 (OCP Microscaling v1.0, section 6.3); rule up:
 *             X = 2^ceil(log2(amax / max_elem)), the smallest that never clips;
 *      bfp:   X = 2^floor(log2 amax) (up: the smallest 2^e with amax ≤
 *             max_elem·2^e), the element round(x / X · 2^(b−2)) clamped to
 *             ±(2^(b−1) − 1), exponent within ±(2^(E−1) − 1) (mxint8: E = 8, b = 8);
 *      nvfp4: with the tensor scale t (the parameters' scale[0]), the block
 *             scale is E4M3(amax / (6·t)) (up: the next E4M3 value when that
 *             clips), elements E2M1(x / (S·t)).
 *    Codes: the element in bits 0..15 (float: its bit pattern; bfp: two's
 *    complement), the scale code in bits 16..23 (E8M0: e + 127; bfp: e + bias;
 *    nvfp4: the E4M3 code). An all-zero block takes the smallest scale.
 * Stochastic rounding draws qs_rng_u32(seed, stream, flat index), as the
 * uniform grid does. NaN: codebooks take the level nearest 0, float formats
 * their NaN (finite formats have none: 0), blocks ignore NaN for the scale. */
#include "quant/quant_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ELEM_MASK 0xFFFF
#define SCALE_SHIFT 16

static double rand_unit(const qs_quantizer_t *q, uint64_t index)
{
    uint32_t r = qs_rng_u32(q->round.seed, q->round.stream, index);
    int b = q->round.rbits;
    return (double)(r >> (32 - b)) / ldexp(1.0, b);
}

static qs_mf_round_t mf_mode(const qs_quantizer_t *q)
{
    return q->round.mode == QS_ROUND_STOCHASTIC ? QS_MF_STOCHASTIC
           : q->round.mode == QS_ROUND_TOWARD_ZERO ? QS_MF_TOWARD_ZERO
                                                   : QS_MF_NEAREST_EVEN;
}

/* v rounded to nearest-even on format f's grid, saturating (|v| finite):
 * the quantum of v's binade (the subnormal quantum below emin), exactly as
 * qs_mf_encode rounds; *clip when the rounded magnitude passed the largest value. */
static inline double mf_rne_sat(const qs_mf_t *f, double v, bool *clip)
{
    if (v == 0)
        return f->conv == QS_MF_FNUZ ? 0.0 : v;
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    int e = (int)((b >> 52) & 0x7FF) - 1023; /* v is a normal double here */
    if (e < f->emin)
        e = f->emin;
    uint64_t qb = (uint64_t)(e - f->man_bits + 1023) << 52, ib = (uint64_t)(f->man_bits - e + 1023) << 52;
    double quantum, inv;
    memcpy(&quantum, &qb, sizeof quantum);
    memcpy(&inv, &ib, sizeof inv);
    double r = nearbyint(v * inv) * quantum; /* both products exact: powers of two */
    if (fabs(r) > f->max) {
        *clip = true;
        r = r > 0 ? f->max : -f->max;
    }
    return r == 0 && f->conv == QS_MF_FNUZ ? 0.0 : r; /* fnuz has no −0 */
}

/* Whether mf_rne_sat computes q's element rounding (and codes are not wanted). */
static bool fast_float(const qs_quantizer_t *q, const int32_t *codes)
{
    return !codes && q->round.mode == QS_ROUND_NEAREST_EVEN && q->overflow == QS_OVERFLOW_SATURATE;
}

/* Elements f .. f + run share one parameter (a run of the layout). */
static int64_t run_length(const qs_quantizer_t *q, const qs_qlayout_t *L, int64_t f, int64_t n)
{
    int64_t m;
    if (q->gran.kind == QS_GRAN_TENSOR)
        m = n - f;
    else if (L->inner > 1)
        m = q->gran.kind == QS_GRAN_CHANNEL ? L->inner - f % L->inner : 1;
    else if (q->gran.kind == QS_GRAN_CHANNEL)
        m = 1;
    else {
        int64_t a = f % L->len;
        int64_t gend = (a / L->group + 1) * L->group;
        m = (gend < L->len ? gend : L->len) - a;
    }
    return m < n - f ? m : n - f;
}

/* The parameter index of flat element f under layout L. */
static int64_t param_of(const qs_quantizer_t *q, const qs_qlayout_t *L, int64_t f)
{
    if (q->gran.kind == QS_GRAN_TENSOR)
        return 0;
    int64_t i = f % L->inner, row = f / L->inner, a = row % L->len;
    if (q->gran.kind == QS_GRAN_CHANNEL)
        return a;
    return ((row / L->len) * L->ngroups + a / L->group) * L->inner + i;
}

static void stat_add(qs_runstats_t *st, float x, float y, bool clip)
{
    if (!st)
        return;
    if (!isfinite(x)) {
        st->nonfinite++;
        return;
    }
    double d = (double)x - (double)y;
    st->sse += d * d;
    st->signal += (double)x * x;
    if (fabs(d) > st->max_abs_err)
        st->max_abs_err = fabs(d);
    st->clipped += clip;
}

static int32_t codebook_code(const qs_quantizer_t *q, const float *lv, int m, float x, uint64_t idx)
{
    int c = qs_codebook_index(lv, m, x);
    if (q->round.mode != QS_ROUND_STOCHASTIC || isnan(x) || x <= lv[0] || x >= lv[m - 1])
        return c;
    int a = lv[c] <= x ? c : c - 1; /* lv[a] <= x < lv[a + 1] */
    while (a + 1 < m && lv[a + 1] <= x)
        a++;
    double span = (double)lv[a + 1] - lv[a];
    double p = span > 0 ? ((double)x - lv[a]) / span : 0;
    return rand_unit(q, idx) < p ? a + 1 : a;
}

static int quant_elementwise(const qs_quantizer_t *q, const qs_qparams_t *p, const qs_tensor_t *x, int32_t *codes,
                             float *y, qs_runstats_t *st)
{
    qs_qlayout_t L;
    int rc = qs_qlayout(q, x->ndim, x->shape, &L);
    if (rc < 0)
        return rc;
    const float *xv = qs_f32(x);
    qs_mf_t f;
    bool fl = q->grid == QS_GRID_FLOAT;
    if (fl && (rc = qs_grid_format(q, &f)) < 0)
        return rc;
    bool sat = q->overflow == QS_OVERFLOW_SATURATE, fast = fl && fast_float(q, codes);
    qs_mf_round_t mode = mf_mode(q);
    for (int64_t i0 = 0; i0 < x->size;) {
        const int64_t k = param_of(q, &L, i0), i1 = i0 + run_length(q, &L, i0, x->size);
        if (fast) { /* nearest-even, saturating, no codes: the float arithmetic directly */
            const double s = p->scale[k];
            for (int64_t i = i0; i < i1; i++) {
                bool clip = false;
                float xi = xv[i];
                float yi = isnan(xi) ? NAN : (float)(s * mf_rne_sat(&f, isinf(xi) ? copysign(f.max, xi) : xi / s, &clip));
                if (isnan(xi) && f.conv == QS_MF_FINITE) /* finite formats: NaN casts to the largest value */
                    yi = (float)(s * qs_mf_decode(&f, qs_mf_encode(&f, xi, mode, 0, sat, NULL)));
                stat_add(st, xi, yi, clip);
                if (y)
                    y[i] = yi;
            }
            i0 = i1;
            continue;
        }
        if (!fl && p->nlevels <= 16 && q->round.mode != QS_ROUND_STOCHASTIC) {
            /* small codebooks: the code counts the thresholds below x (on a threshold, the
             * side qs_codebook_index takes), the same codes without a search */
            const float *lv = p->levels + k * p->nlevels;
            const int m = p->nlevels;
            double t[16];
            bool up[16];
            for (int j = 0; j + 1 < m; j++) {
                t[j] = ((double)lv[j] + (double)lv[j + 1]) / 2;
                up[j] = !(fabs((double)lv[j]) < fabs((double)lv[j + 1]));
            }
            for (int64_t i = i0; i < i1; i++) {
                float xi = xv[i];
                double xd = isnan(xi) ? 0.0 : (double)xi;
                int c = 0;
                for (int j = 0; j + 1 < m; j++)
                    c += xd > t[j] || (xd == t[j] && up[j]);
                if (codes)
                    codes[i] = c;
                stat_add(st, xi, lv[c], false);
                if (y)
                    y[i] = lv[c];
            }
            i0 = i1;
            continue;
        }
        for (int64_t i = i0; i < i1; i++) {
        float xi = xv[i], yi;
        int32_t c;
        bool clip = false;
        if (fl) {
            double s = p->scale[k];
            double u = mode == QS_MF_STOCHASTIC ? rand_unit(q, (uint64_t)i) : 0;
            uint32_t code = qs_mf_encode(&f, (double)xi / s, mode, u, sat, &clip);
            c = (int32_t)code;
            yi = (float)(s * qs_mf_decode(&f, code));
        } else {
            const float *lv = p->levels + k * p->nlevels;
            c = codebook_code(q, lv, p->nlevels, xi, (uint64_t)i);
            yi = lv[c];
        }
        if (codes)
            codes[i] = c;
        stat_add(st, xi, yi, clip);
        if (y)
            y[i] = yi;
        }
        i0 = i1;
    }
    return QS_OK;
}

/* ---- block formats ---------------------------------------------------------------------------- */

typedef struct {
    const qs_quantizer_t *q;
    qs_mf_t elem, e4m3;
    int emax;          /* mx: floor(log2 of the element's largest value) */
    int ebias;         /* bfp: the exponent bias 2^(E−1) − 1 (E8M0: 127) */
    double tscale;     /* nvfp4 */
    int64_t imax;      /* bfp: 2^(b−1) − 1 */
    bool fast;         /* float elements, nearest-even, saturating, no codes wanted */
} blk_t;

static int blk_init(blk_t *b, const qs_quantizer_t *q, const qs_qparams_t *p)
{
    memset(b, 0, sizeof *b);
    b->q = q;
    int rc;
    if (q->grid == QS_GRID_BFP) {
        b->ebias = (1 << (q->grid_k - 1)) - 1;
        b->imax = ((int64_t)1 << (q->bits - 1)) - 1;
        return QS_OK;
    }
    if ((rc = qs_grid_format(q, &b->elem)) < 0)
        return rc;
    int e;
    frexp(b->elem.max, &e);
    b->emax = e - 1;
    b->ebias = 127;
    if (q->grid == QS_GRID_NVFP4) {
        if ((rc = qs_mf_init(&b->e4m3, 4, 3, QS_MF_OCP_FN)) < 0)
            return rc;
        b->tscale = p && p->count >= 1 ? (double)p->scale[0] : 1.0;
        if (!(b->tscale > 0) || !isfinite(b->tscale))
            return qs_error(QS_ERR_NUMERIC, "nvfp4: tensor scale %g: expected a positive finite scale", b->tscale);
    }
    return QS_OK;
}

static int floor_log2(double a)
{
    int e;
    frexp(a, &e);
    return e - 1;
}

/* The smallest e with a <= m·2^e. */
static int up_exp(double a, double m)
{
    int e = floor_log2(a / m) - 1;
    while (ldexp(m, e) < a)
        e++;
    return e;
}

/* The block's scale code and value (the multiplier of the elements). */
static void blk_scale(const blk_t *b, double amax, uint32_t *code, double *val)
{
    const qs_quantizer_t *q = b->q;
    if (q->grid == QS_GRID_NVFP4) {
        double want = amax / (6.0 * b->tscale);
        uint32_t c = qs_mf_encode(&b->e4m3, want, QS_MF_NEAREST_EVEN, 0, true, NULL);
        if (q->block_rule == QS_BLOCK_UP && qs_mf_decode(&b->e4m3, c) < want && c < 0x7E)
            c++; /* positive codes are ordered by value */
        *code = c;
        *val = qs_mf_decode(&b->e4m3, c) * b->tscale;
        return;
    }
    int e;
    if (!(amax > 0)) {
        e = -b->ebias;
    } else if (q->grid == QS_GRID_BFP) {
        double mmax = (double)b->imax / ldexp(1.0, q->bits - 2);
        e = q->block_rule == QS_BLOCK_UP ? up_exp(amax, mmax) : floor_log2(amax);
    } else {
        e = q->block_rule == QS_BLOCK_UP ? up_exp(amax, b->elem.max) : floor_log2(amax) - b->emax;
    }
    if (e < -b->ebias)
        e = -b->ebias;
    if (e > b->ebias)
        e = b->ebias;
    *code = (uint32_t)(e + b->ebias);
    *val = q->grid == QS_GRID_BFP ? ldexp(1.0, e - (q->bits - 2)) : ldexp(1.0, e);
}

static int32_t blk_elem(const blk_t *b, double v, double u, bool *clip, double *deq)
{
    const qs_quantizer_t *q = b->q;
    if (b->fast && isfinite(v)) {
        *deq = mf_rne_sat(&b->elem, v, clip);
        return 0;
    }
    if (q->grid == QS_GRID_BFP) {
        qs_rounding_t r = q->round;
        double t = isnan(v) ? 0 : q->round.mode == QS_ROUND_STOCHASTIC ? qs_round_stoch(v, (uint32_t)(u * 4294967296.0), 32)
                                                                       : qs_round_det(v, r.mode);
        if (t > (double)b->imax || t < -(double)b->imax) {
            *clip = true;
            t = t > 0 ? (double)b->imax : -(double)b->imax;
        }
        t += 0.0; /* an integer element has no −0 */
        *deq = t;
        return (int32_t)((int64_t)t & ELEM_MASK);
    }
    uint32_t c = qs_mf_encode(&b->elem, v, mf_mode(q), u, q->overflow == QS_OVERFLOW_SATURATE, clip);
    *deq = qs_mf_decode(&b->elem, c);
    return (int32_t)c;
}

static int quant_blocks(const qs_quantizer_t *q, const qs_qparams_t *p, const qs_tensor_t *x, int32_t *codes,
                        float *y, qs_runstats_t *st)
{
    blk_t b;
    int rc = blk_init(&b, q, p);
    if (rc < 0)
        return rc;
    b.fast = q->grid != QS_GRID_BFP && fast_float(q, codes);
    qs_quantizer_t lq = *q; /* the block layout is a group layout along block_axis */
    lq.gran.kind = QS_GRAN_GROUP;
    lq.gran.axis = q->block_axis;
    lq.gran.group = q->block;
    qs_qlayout_t L;
    if ((rc = qs_qlayout(&lq, x->ndim, x->shape, &L)) < 0)
        return qs_error_context("grid blocks: ");
    const float *xv = qs_f32(x);
    bool stoch = q->round.mode == QS_ROUND_STOCHASTIC;
    for (int64_t o = 0; o < L.outer; o++)
        for (int64_t i = 0; i < L.inner; i++)
            for (int64_t a0 = 0; a0 < L.len; a0 += L.group) {
                int64_t a1 = a0 + L.group < L.len ? a0 + L.group : L.len;
                int64_t base = o * L.len * L.inner + i;
                double amax = 0;
                for (int64_t a = a0; a < a1; a++) {
                    double v = fabs((double)xv[base + a * L.inner]);
                    if (isfinite(v) && v > amax)
                        amax = v;
                }
                uint32_t sc;
                double sv;
                blk_scale(&b, amax, &sc, &sv);
                for (int64_t a = a0; a < a1; a++) {
                    int64_t f = base + a * L.inner;
                    bool clip = false;
                    double e;
                    double u = stoch ? rand_unit(q, (uint64_t)f) : 0;
                    /* a scale that underflowed to 0 (nvfp4) flushes the block */
                    int32_t c = blk_elem(&b, sv > 0 ? (double)xv[f] / sv : 0.0, u, &clip, &e);
                    float yf = (float)(e * sv); /* exact product in double, one rounding */
                    if (codes)
                        codes[f] = c | (int32_t)(sc << SCALE_SHIFT);
                    if (y)
                        y[f] = yf;
                    stat_add(st, xv[f], yf, clip);
                }
            }
    return QS_OK;
}

int qs_grid_quantize(const qs_quantizer_t *q, const qs_qparams_t *p, const qs_tensor_t *x, int32_t *codes,
                     float *y, qs_runstats_t *st)
{
    if (qs_grid_is_block(q->grid))
        return quant_blocks(q, p, x, codes, y, st);
    return quant_elementwise(q, p, x, codes, y, st);
}

int qs_grid_dequantize(const qs_quantizer_t *q, const qs_qparams_t *p, const qs_tensor_t *codes, float *y)
{
    const int32_t *c = qs_i32(codes);
    int rc;
    if (qs_grid_is_block(q->grid)) {
        blk_t b;
        if ((rc = blk_init(&b, q, p)) < 0)
            return rc;
        for (int64_t i = 0; i < codes->size; i++) {
            uint32_t sc = ((uint32_t)c[i] >> SCALE_SHIFT) & 0xFF, ec = (uint32_t)c[i] & ELEM_MASK;
            double sv, e;
            if (q->grid == QS_GRID_NVFP4) {
                sv = qs_mf_decode(&b.e4m3, sc) * b.tscale;
                e = qs_mf_decode(&b.elem, ec);
            } else if (q->grid == QS_GRID_BFP) {
                sv = ldexp(1.0, (int)sc - b.ebias - (q->bits - 2));
                e = (double)(int16_t)(uint16_t)ec;
            } else {
                sv = ldexp(1.0, (int)sc - b.ebias);
                e = qs_mf_decode(&b.elem, ec);
            }
            y[i] = (float)(e * sv);
        }
        return QS_OK;
    }
    qs_qlayout_t L;
    if ((rc = qs_qlayout(q, codes->ndim, codes->shape, &L)) < 0)
        return rc;
    qs_mf_t f;
    if (q->grid == QS_GRID_FLOAT && (rc = qs_grid_format(q, &f)) < 0)
        return rc;
    for (int64_t i = 0; i < codes->size; i++) {
        int64_t k = param_of(q, &L, i);
        if (q->grid == QS_GRID_FLOAT) {
            y[i] = (float)((double)p->scale[k] * qs_mf_decode(&f, (uint32_t)c[i]));
        } else {
            if (c[i] < 0 || c[i] >= p->nlevels)
                return qs_error(QS_ERR_INVALID, "dequantize: code %d of element %lld is not a level index 0..%d",
                                (int)c[i], (long long)i, p->nlevels - 1);
            y[i] = p->levels[k * p->nlevels + c[i]];
        }
    }
    return QS_OK;
}
