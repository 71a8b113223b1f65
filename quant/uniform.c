/* quant/uniform.c — the uniform affine quantizer: validation, code ranges,
 * the slice layout of a granularity, quantization parameters, scale
 * constraints, and the quantize/dequantize kernels (docs/arithmetic.md).
 *
 * Two paths compute the same function, bit for bit:
 *  - a generic exact path, one element at a time, for every configuration
 *    (the reference qs_quantize_one is built on it);
 *  - a fast path for saturating quantizers whose clamp bounds fit in ±2^20
 *    (every code range up to 20 bits): it clamps x/s into
 *    [qmin - z - 1, qmax - z + 1] first, so every rounding mode has a short
 *    branch-free form that the compiler vectorises, and the clipping test is
 *    a comparison with the clamp bounds.
 * Work is done in blocks of QS_BLK elements that stay in L1: stage A rounds
 * a block into a float buffer, stage S (statistics) and stage B (codes,
 * dequantized values) read it back. The block buffers are what keeps x and
 * y apart when they are the same array.
 *
 * qs_quantize splits a tensor into chunks whose boundaries depend only on its
 * shape, so statistics (added per chunk in chunk order) and stochastic
 * rounding (random word = flat element index) do not depend on threads. */
#include "quant/quant_internal.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
#define QS_AI static inline __attribute__((always_inline))
#else
#define QS_AI static inline
#endif

/* The fast path's stages are also built for AVX2 and AVX-512 (see
 * QS_TARGET_CLONES in core/core.h), picked when the library loads; every
 * version gives the same bits (no FMA contraction, the same operations in
 * the same order, only wider). */
#define QS_CLONES QS_TARGET_CLONES

#define QS_BLK 512                          /* elements per block (2 KiB of floats) */
#define QS_FAST_LIMIT 1048576.0f            /* 2^20: clamp bounds of the fast path */
#define QS_CHUNK (INT64_C(1) << 16)         /* elements per chunk of qs_quantize */
#define QS_TWO62 4611686018427387904.0      /* 2^62 */
#define QS_TWO29 536870912                  /* 2^29 */

static const char *const scheme_names[QS_SCHEME_COUNT] = {"symmetric", "symmetric-narrow", "unsigned",
                                                          "asymmetric", "asymmetric-signed"};
static const char *scheme_name(qs_scheme_t s)
{
    return (int)s >= 0 && s < QS_SCHEME_COUNT ? scheme_names[s] : "unknown";
}
static const char *gran_name(qs_gran_kind_t k)
{
    return k == QS_GRAN_TENSOR ? "tensor" : k == QS_GRAN_CHANNEL ? "channel" : "group";
}

/* ---- the quantizer --------------------------------------------------------------- */

void qs_quantizer_default(qs_quantizer_t *q)
{
    memset(q, 0, sizeof *q);
    q->grid = QS_GRID_UNIFORM;
    q->bits = 8;
    q->scheme = QS_SCHEME_SYMMETRIC;
    q->gran.kind = QS_GRAN_TENSOR;
    q->gran.axis = 0;
    q->gran.group = 0;
    q->range.method = QS_RANGE_MINMAX;
    q->range.percentile = 99.99;
    q->range.dist = QS_ACIQ_LAPLACE;
    q->round.mode = QS_ROUND_NEAREST_EVEN;
    q->round.seed = 0;
    q->round.rbits = 32;
    q->round.stream = 0;
    q->overflow = QS_OVERFLOW_SATURATE;
    q->scale_type = QS_SCALE_FLOAT;
    q->div = QS_DIV_DIVIDE;
}

static bool scheme_is_unsigned(qs_scheme_t s) { return s == QS_SCHEME_UNSIGNED || s == QS_SCHEME_ASYMMETRIC; }

int qs_quantizer_validate(const qs_quantizer_t *q)
{
    if (!q)
        return qs_error(QS_ERR_INVALID, "no quantizer given");
    if (q->grid != QS_GRID_UNIFORM)
        return qs_grid_validate(q);
    if (q->block || q->block_axis || q->block_rule || q->grid_k || q->fexp || q->fman || q->fconv)
        return qs_error(QS_ERR_INVALID, "grid=uniform takes no grid parameters (key 'block' applies to block grids)");
    if ((int)q->scheme < 0 || q->scheme >= QS_SCHEME_COUNT)
        return qs_error(QS_ERR_INVALID,
                        "scheme %d: expected one of symmetric, symmetric-narrow, unsigned, asymmetric, "
                        "asymmetric-signed",
                        (int)q->scheme);
    if (q->bits < 1 || q->bits > 32)
        return qs_error(QS_ERR_INVALID, "bits=%d: expected 1..32", q->bits);
    if (q->scheme == QS_SCHEME_SYMMETRIC_NARROW && q->bits < 2)
        return qs_error(QS_ERR_INVALID,
                        "bits=%d with scheme=symmetric-narrow: expected bits 2..32 "
                        "(the narrow range of 1 bit holds only the code 0)",
                        q->bits);
    if (scheme_is_unsigned(q->scheme) && q->bits > 31)
        return qs_error(QS_ERR_INVALID,
                        "bits=%d with scheme=%s: expected bits 1..31 "
                        "(codes are int32, so an unsigned code range has at most 31 bits)",
                        q->bits, scheme_name(q->scheme));
    switch (q->gran.kind) {
    case QS_GRAN_TENSOR:
    case QS_GRAN_CHANNEL:
        break;
    case QS_GRAN_GROUP:
        if (q->gran.group < 1)
            return qs_error(QS_ERR_INVALID, "gran=group: group size %" PRId64 ": expected 1 or more",
                            q->gran.group);
        break;
    default:
        return qs_error(QS_ERR_INVALID, "gran %d: expected tensor, channel or group", (int)q->gran.kind);
    }
    if ((int)q->range.method < 0 || q->range.method >= QS_RANGE_COUNT)
        return qs_error(QS_ERR_INVALID, "range %d: expected one of minmax, percentile, mse, sqnr, kl, aciq",
                        (int)q->range.method);
    if (q->range.method == QS_RANGE_PERCENTILE && !(q->range.percentile > 0 && q->range.percentile <= 100))
        return qs_error(QS_ERR_INVALID, "range=percentile:%g: expected a percentile in (0, 100]",
                        q->range.percentile);
    if (q->range.method == QS_RANGE_ACIQ && q->range.dist != QS_ACIQ_LAPLACE && q->range.dist != QS_ACIQ_GAUSS)
        return qs_error(QS_ERR_INVALID, "range=aciq: distribution %d: expected laplace or gauss",
                        (int)q->range.dist);
    if ((int)q->round.mode < 0 || q->round.mode >= QS_ROUND_COUNT)
        return qs_error(QS_ERR_INVALID,
                        "round %d: expected one of nearest-even, nearest-away, nearest-up, nearest-down, "
                        "nearest-zero, floor, ceil, toward-zero, away-from-zero, odd, stochastic",
                        (int)q->round.mode);
    if (q->round.mode == QS_ROUND_STOCHASTIC && (q->round.rbits < 1 || q->round.rbits > 32))
        return qs_error(QS_ERR_INVALID, "round=stochastic with %d random bits: expected 1..32 random bits",
                        q->round.rbits);
    if (q->overflow != QS_OVERFLOW_SATURATE && q->overflow != QS_OVERFLOW_WRAP)
        return qs_error(QS_ERR_INVALID, "overflow %s: expected saturate or wrap (overflow=format applies to float grids)",
                        q->overflow == QS_OVERFLOW_FORMAT ? "format" : "?");
    if ((int)q->scale_type < 0 || q->scale_type >= QS_SCALE_COUNT)
        return qs_error(QS_ERR_INVALID, "scale %d: expected one of float, pow2, fp16, bf16, e8m0, none",
                        (int)q->scale_type);
    if (q->div != QS_DIV_DIVIDE && q->div != QS_DIV_RECIPROCAL)
        return qs_error(QS_ERR_INVALID, "div %d: expected divide or reciprocal", (int)q->div);
    return QS_OK;
}

void qs_quantizer_code_range(const qs_quantizer_t *q, int64_t *qmin, int64_t *qmax)
{
    /* tolerate an unvalidated width rather than shifting out of range */
    int b = q->bits < 1 ? 1 : q->bits > 32 ? 32 : q->bits;
    if (q->grid != QS_GRID_UNIFORM) { /* level indices, format bit patterns, or element | scale << 16 */
        int nl = qs_grid_levels(q);
        *qmin = b == 32 && !nl ? INT32_MIN : 0;
        *qmax = nl ? nl - 1 : qs_grid_is_block(q->grid) ? (1 << 24) - 1 : b == 32 ? INT32_MAX : (INT64_C(1) << b) - 1;
        return;
    }
    int64_t half = INT64_C(1) << (b - 1);
    switch (q->scheme) {
    case QS_SCHEME_SYMMETRIC_NARROW:
        *qmin = -(half - 1);
        *qmax = half - 1;
        break;
    case QS_SCHEME_UNSIGNED:
    case QS_SCHEME_ASYMMETRIC:
        *qmin = 0;
        *qmax = b > 31 ? INT32_MAX : (INT64_C(1) << b) - 1;
        break;
    case QS_SCHEME_SYMMETRIC:
    case QS_SCHEME_ASYMMETRIC_SIGNED:
    default:
        *qmin = -half;
        *qmax = half - 1;
        break;
    }
}

/* ---- layout and parameters ---------------------------------------------------------- */

int qs_qlayout(const qs_quantizer_t *q, int ndim, const int64_t *shape, qs_qlayout_t *out)
{
    if (ndim < 0 || ndim > QS_MAX_DIMS)
        return qs_error(QS_ERR_SHAPE, "rank %d: expected 0..%d", ndim, QS_MAX_DIMS);
    int64_t size = 1, span = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return qs_error(QS_ERR_SHAPE, "dimension %d is negative (%" PRId64 ")", d, shape[d]);
        /* every product below (outer, inner, parameter counts) divides the
         * product of the non-zero dimensions: it must fit in int64 */
        int64_t m = shape[d] > 0 ? shape[d] : 1;
        if (span > INT64_MAX / m) {
            char b[128];
            return qs_error(QS_ERR_SHAPE, "shape %s: its dimensions multiply past 2^63",
                            qs_shape_str(ndim, shape, b, sizeof b));
        }
        span *= m;
        size *= shape[d];
    }
    memset(out, 0, sizeof *out);
    if (q->gran.kind == QS_GRAN_TENSOR) {
        out->outer = out->inner = 1;
        out->len = size;
        out->group = size;
        out->ngroups = 1;
        out->nparams = 1;
        return QS_OK;
    }
    if (q->gran.kind != QS_GRAN_CHANNEL && q->gran.kind != QS_GRAN_GROUP)
        return qs_error(QS_ERR_INVALID, "gran %d: expected tensor, channel or group", (int)q->gran.kind);
    int axis = q->gran.axis < 0 ? q->gran.axis + ndim : q->gran.axis;
    if (ndim == 0 || axis < 0 || axis >= ndim) {
        if (ndim == 0)
            return qs_error(QS_ERR_SHAPE,
                            "gran=%s: axis %d is out of range for a tensor of rank 0 (a scalar has no axis)",
                            gran_name(q->gran.kind), q->gran.axis);
        return qs_error(QS_ERR_SHAPE, "gran=%s: axis %d is out of range for a tensor of rank %d (expected %d..%d)",
                        gran_name(q->gran.kind), q->gran.axis, ndim, -ndim, ndim - 1);
    }
    out->outer = 1;
    for (int d = 0; d < axis; d++)
        out->outer *= shape[d];
    out->len = shape[axis];
    out->inner = 1;
    for (int d = axis + 1; d < ndim; d++)
        out->inner *= shape[d];
    if (q->gran.kind == QS_GRAN_CHANNEL) {
        out->group = out->len;
        out->ngroups = 1;
        out->nparams = out->len;
        return QS_OK;
    }
    if (q->gran.group < 1)
        return qs_error(QS_ERR_INVALID, "gran=group: group size %" PRId64 ": expected 1 or more", q->gran.group);
    out->group = q->gran.group;
    out->ngroups = (out->len + out->group - 1) / out->group;
    out->nparams = out->outer * out->ngroups * out->inner;
    return QS_OK;
}

/* The shape of the parameters for data of a given shape (quant.h). */
static int params_shape(const qs_quantizer_t *q, int ndim, const int64_t *shape, const qs_qlayout_t *L,
                        int *pndim, int64_t *pshape)
{
    if (q->gran.kind == QS_GRAN_TENSOR) {
        *pndim = 1;
        pshape[0] = 1;
    } else if (q->gran.kind == QS_GRAN_CHANNEL) {
        *pndim = 1;
        pshape[0] = L->len;
    } else {
        int axis = q->gran.axis < 0 ? q->gran.axis + ndim : q->gran.axis;
        *pndim = ndim;
        for (int d = 0; d < ndim; d++)
            pshape[d] = d == axis ? L->ngroups : shape[d];
    }
    return QS_OK;
}

int qs_qparams_create(const qs_quantizer_t *q, int ndim, const int64_t *shape, qs_qparams_t **out)
{
    *out = NULL;
    int rc = qs_quantizer_validate(q);
    if (rc < 0)
        return rc;
    qs_qlayout_t L;
    if ((rc = qs_qlayout(q, ndim, shape, &L)) < 0)
        return rc;
    qs_qparams_t *p = calloc(1, sizeof *p);
    if (!p)
        return qs_error(QS_ERR_NOMEM, "out of memory for quantization parameters");
    size_t n = L.nparams > 0 ? (size_t)L.nparams : 1;
    p->count = L.nparams;
    p->scale = malloc(n * sizeof *p->scale);
    p->zero_point = calloc(n, sizeof *p->zero_point);
    if (!p->scale || !p->zero_point) {
        qs_qparams_free(p);
        return qs_error(QS_ERR_NOMEM, "out of memory for %" PRId64 " quantization parameters", L.nparams);
    }
    for (size_t i = 0; i < n; i++)
        p->scale[i] = 1.0f;
    if ((p->nlevels = qs_grid_levels(q)) > 0 && !(p->levels = calloc(n * (size_t)p->nlevels, sizeof *p->levels))) {
        qs_qparams_free(p);
        return qs_error(QS_ERR_NOMEM, "out of memory for %" PRId64 " level tables", L.nparams);
    }
    params_shape(q, ndim, shape, &L, &p->ndim, p->shape);
    *out = p;
    return QS_OK;
}

void qs_qparams_free(qs_qparams_t *p)
{
    if (!p)
        return;
    free(p->scale);
    free(p->zero_point);
    free(p->levels);
    free(p);
}

/* ---- scale constraints and ranges ----------------------------------------------------------- */

/* s rounded to nearest-even on a grid of 2^(floor(log2 s) - mant) steps, with
 * the exponent not below emin (subnormals below it): exact, through frexp. */
static double round_to_format(double s, int mant, int emin)
{
    int e;
    frexp(s, &e); /* s = m 2^e, m in [0.5, 1): floor(log2 s) = e - 1 */
    int ex = e - 1 < emin ? emin : e - 1;
    double quantum = ldexp(1.0, ex - mant);
    return qs_round_det(s / quantum, QS_ROUND_NEAREST_EVEN) * quantum;
}

/* 2^ceil(log2 s), exactly. */
static int ceil_log2(double s)
{
    int e;
    double m = frexp(s, &e);
    return m == 0.5 ? e - 1 : e;
}

float qs_scale_constrain(qs_scale_type_t t, double s)
{
    if (!(s > 0) || isinf(s) || isnan(s))
        return (float)s;
    switch (t) {
    case QS_SCALE_POW2: {
        int e = ceil_log2(s);
        if (e < -149) /* below the smallest float: the smallest positive float still covers s */
            e = -149;
        return ldexpf(1.0f, e); /* +inf beyond 2^127 */
    }
    case QS_SCALE_E8M0: {
        int e = ceil_log2(s);
        e = e < -127 ? -127 : e > 127 ? 127 : e; /* OCP MX E8M0: 2^-127 .. 2^127 */
        return ldexpf(1.0f, e);
    }
    case QS_SCALE_FP16: {
        /* IEEE binary16: 10 mantissa bits, normal exponents from -14, max 65504 */
        if (s >= 65504.0)
            return 65504.0f;
        double r = round_to_format(s, 10, -14);
        return r == 0.0 ? 0x1p-24f : (float)r;
    }
    case QS_SCALE_BF16: {
        /* bfloat16: 7 mantissa bits, the exponent range of float32 */
        double r = round_to_format(s, 7, -126);
        return r == 0.0 ? 0x1p-133f : (float)r; /* (float) of a value above the bf16 max is +inf */
    }
    case QS_SCALE_NONE: return 1.0f;
    case QS_SCALE_FLOAT:
    default:
        return (float)s;
    }
}

int qs_qparams_from_range(const qs_quantizer_t *q, double lo, double hi, float *scale, int32_t *zero_point)
{
    int rc = qs_quantizer_validate(q);
    if (rc < 0)
        return rc;
    if (!isfinite(lo) || !isfinite(hi))
        return qs_error(QS_ERR_NUMERIC, "range [%g, %g]: expected finite bounds", lo, hi);
    if (lo > hi)
        return qs_error(QS_ERR_INVALID, "range [%g, %g]: the lower bound is above the upper bound", lo, hi);
    int64_t qmin, qmax;
    qs_quantizer_code_range(q, &qmin, &qmax);
    /* 0.0 must be representable */
    lo = lo < 0 ? lo : 0.0;
    hi = hi > 0 ? hi : 0.0;
    double s;
    bool asym = q->scheme == QS_SCHEME_ASYMMETRIC || q->scheme == QS_SCHEME_ASYMMETRIC_SIGNED;
    switch (q->scheme) {
    case QS_SCHEME_SYMMETRIC:
    case QS_SCHEME_SYMMETRIC_NARROW: {
        double a = -lo > hi ? -lo : hi;
        double steps = ldexp(1.0, q->bits - 1) - 1.0;
        s = a / (steps < 1.0 ? 1.0 : steps);
        break;
    }
    case QS_SCHEME_UNSIGNED:
        s = hi / (double)qmax;
        break;
    default:
        s = (hi - lo) / (double)(qmax - qmin);
        break;
    }
    if (s == 0.0)
        s = 1.0; /* a zero range: any finite scale represents it; 1 is the plain choice */
    if (s < FLT_MIN)
        s = FLT_MIN;
    float sc = qs_scale_constrain(q->scale_type, s);
    if (!isfinite(sc))
        return qs_error(QS_ERR_NUMERIC, "range [%g, %g] needs a scale of %g, beyond the %s scale range", lo, hi, s,
                        q->scale_type == QS_SCALE_FLOAT ? "float" : "constrained");
    int64_t z = 0;
    if (asym) {
        double r = qs_round_det(lo / (double)sc, QS_ROUND_NEAREST_EVEN);
        double zd = (double)qmin - r;
        z = zd < (double)qmin ? qmin : zd > (double)qmax ? qmax : (int64_t)zd;
    }
    *scale = sc;
    *zero_point = (int32_t)z;
    return QS_OK;
}

/* ---- element arithmetic (the exact reference) -------------------------------------------------------- */

typedef struct {
    int mode, div;
    bool wrap;
    int64_t qmin, qmax;
    int64_t wrap_lo;    /* wrap: codes are taken modulo 2^b into [wrap_lo, wrap_lo + 2^b) */
    uint64_t wrap_mask; /* 2^b - 1 */
    uint64_t seed, stream;
    int rbits;
} kcfg_t;

static void kcfg_init(kcfg_t *c, const qs_quantizer_t *q)
{
    memset(c, 0, sizeof *c);
    c->mode = (int)q->round.mode >= 0 && q->round.mode < QS_ROUND_COUNT ? (int)q->round.mode : 0;
    c->div = q->div == QS_DIV_RECIPROCAL;
    c->wrap = q->overflow == QS_OVERFLOW_WRAP;
    qs_quantizer_code_range(q, &c->qmin, &c->qmax);
    int b = q->bits < 1 ? 1 : q->bits > 32 ? 32 : q->bits;
    c->wrap_lo = scheme_is_unsigned(q->scheme) ? 0 : -(INT64_C(1) << (b - 1));
    c->wrap_mask = (UINT64_C(1) << b) - 1;
    c->seed = q->round.seed;
    c->stream = q->round.stream;
    c->rbits = q->round.rbits < 1 || q->round.rbits > 32 ? 32 : q->round.rbits;
}

static int32_t wrap_code(const kcfg_t *c, int64_t v)
{
    /* two's complement: the residue modulo 2^b (unsigned arithmetic wraps, no UB) */
    int64_t w = (int64_t)(((uint64_t)v - (uint64_t)c->wrap_lo) & c->wrap_mask) + c->wrap_lo;
    /* symmetric-narrow: the one code below the narrow range goes to its end */
    return (int32_t)(w < c->qmin ? c->qmin : w);
}

/* The code of an integral finite r plus z; *clip when outside [qmin, qmax]. */
static int32_t code_of(const kcfg_t *c, double r, int32_t z, bool *clip)
{
    if (fabs(r) < QS_TWO62) {
        int64_t v = (int64_t)r + z;
        *clip = v < c->qmin || v > c->qmax;
        if (!*clip)
            return (int32_t)v;
        if (!c->wrap)
            return (int32_t)(v < c->qmin ? c->qmin : c->qmax);
        return wrap_code(c, v);
    }
    /* |r| >= 2^62 comes from a float, whose ulp there is 2^39: r is 0 modulo 2^b */
    *clip = true;
    if (!c->wrap)
        return (int32_t)(r > 0 ? c->qmax : c->qmin);
    return wrap_code(c, z);
}

static int32_t quant_elem(const kcfg_t *c, float x, float s, float inv, int32_t z, uint32_t rword, bool *clip)
{
    float v = c->div ? x * inv : x / s;
    if (isnan(v)) {
        bool dummy;
        *clip = false;
        return code_of(c, 0.0, z, &dummy); /* the code of 0.0 */
    }
    if (isinf(v)) {
        *clip = isfinite(x); /* a finite x whose quotient overflowed is clipped */
        return (int32_t)(v > 0 ? c->qmax : c->qmin);
    }
    double r = c->mode == QS_ROUND_STOCHASTIC ? qs_round_stoch(v, rword, c->rbits)
                                              : qs_round_det(v, (qs_round_mode_t)c->mode);
    return code_of(c, r, z, clip);
}

/* fl32(s * d), the product formed exactly and rounded once. Below 2^29 the
 * double product is exact; above, a round-to-odd double (Boldo & Melquiond,
 * "Emulation of FMA and correctly rounded sums: proved algorithms using
 * rounding to odd", IEEE TC 2008: rounding to odd with 2 extra bits, then to
 * nearest, equals one rounding to nearest) makes the conversion exact. */
static float deq_exact(float s, int64_t d)
{
    double p = (double)s * (double)d;
    if ((d > -QS_TWO29 && d < QS_TWO29) || !isfinite(p))
        return (float)p;
    double e = fma((double)s, (double)d, -p);
    if (e != 0.0) {
        uint64_t bits;
        memcpy(&bits, &p, sizeof bits);
        if ((bits & 1) == 0)
            p = nextafter(p, e > 0 ? INFINITY : -INFINITY);
    }
    return (float)p;
}

int32_t qs_quantize_one(const qs_quantizer_t *q, float x, float scale, int32_t zero_point, uint64_t index,
                        bool *clipped)
{
    kcfg_t c;
    kcfg_init(&c, q);
    uint32_t rw = c.mode == QS_ROUND_STOCHASTIC ? qs_rng_u32(c.seed, c.stream, index) : 0;
    bool clip;
    int32_t code = quant_elem(&c, x, scale, 1.0f / scale, zero_point, rw, &clip);
    if (clipped)
        *clipped = clip;
    return code;
}

float qs_dequantize_one(float scale, int32_t zero_point, int32_t code)
{
    return deq_exact(scale, (int64_t)code - zero_point);
}

/* ---- the fast path --------------------------------------------------------------------------------- */

/* Round to nearest even for |w| <= 2^22: adding 1.5·2^23 leaves an ulp of 1. */
QS_AI float rne_small(float w)
{
    const float magic = 12582912.0f;
    return (w + magic) - magic;
}
QS_AI float trunc_small(float w) { return (float)(int32_t)w; }
QS_AI float floor_small(float w)
{
    float r = rne_small(w);
    return r + (r > w ? -1.0f : 0.0f);
}

/* Every deterministic mode for |w| <= 2^21. w - trunc(w) is exact (Sterbenz),
 * and f + 0.5 is exact, so every tie test is exact. Conditions select
 * constants that are added (f + (c ? -1 : 0), not c ? f - 1 : f, nor f - (c ? 1 : 0),
 * which GCC turns into the former): under -ftrapping-math GCC will not
 * if-convert, hence not vectorise, a conditional float operation. */
QS_AI float round_small(float w, int mode)
{
    switch (mode) {
    case QS_ROUND_NEAREST_AWAY: {
        float t = trunc_small(w), d = w - t;
        return t + (d >= 0.5f ? 1.0f : 0.0f) + (d <= -0.5f ? -1.0f : 0.0f);
    }
    case QS_ROUND_NEAREST_UP: {
        float f = floor_small(w);
        return f + (w >= f + 0.5f ? 1.0f : 0.0f);
    }
    case QS_ROUND_NEAREST_DOWN: {
        float f = floor_small(w);
        return f + (w > f + 0.5f ? 1.0f : 0.0f);
    }
    case QS_ROUND_NEAREST_ZERO: {
        float t = trunc_small(w), d = w - t;
        return t + (d > 0.5f ? 1.0f : 0.0f) + (d < -0.5f ? -1.0f : 0.0f);
    }
    case QS_ROUND_FLOOR:
        return floor_small(w);
    case QS_ROUND_CEIL: {
        float r = rne_small(w);
        return r + (r < w ? 1.0f : 0.0f);
    }
    case QS_ROUND_TOWARD_ZERO:
        return trunc_small(w);
    case QS_ROUND_AWAY_FROM_ZERO: {
        float t = trunc_small(w);
        return t + (w > t ? 1.0f : 0.0f) + (w < t ? -1.0f : 0.0f);
    }
    case QS_ROUND_ODD: {
        int32_t ti = (int32_t)w;
        float t = (float)ti;
        float step = (w > t ? 1.0f : 0.0f) + (w < t ? -1.0f : 0.0f);
        return t + ((ti & 1) ? 0.0f : step);
    }
    case QS_ROUND_NEAREST_EVEN:
    default:
        return rne_small(w);
    }
}

typedef struct {
    float s, inv, lo, hi;                   /* one parameter for the run */
    const float *S, *INV, *LO, *HI;         /* or one per element */
    const uint32_t *rw;                     /* stochastic: the block's random words */
    int sh;                                 /* 32 - rbits */
} stage_a_t;

/* Stage A: r = round(clamp(x / s, lo, hi)) with NaN quotients taken as 0. */
QS_AI void stage_a_impl(int mode, int div, int vec, const stage_a_t *a, const float *restrict x,
                        float *restrict r, int n)
{
    const float s = a->s, inv = a->inv, lo = a->lo, hi = a->hi;
    const float *restrict S = a->S;
    const float *restrict INV = a->INV;
    const float *restrict LO = a->LO;
    const float *restrict HI = a->HI;
    const uint32_t *restrict rw = a->rw;
    const int sh = a->sh;
    for (int j = 0; j < n; j++) {
        float v;
        if (div)
            v = x[j] * (vec ? INV[j] : inv);
        else
            v = x[j] / (vec ? S[j] : s);
        v = v == v ? v : 0.0f;
        float l = vec ? LO[j] : lo, h = vec ? HI[j] : hi;
        v = v < l ? l : v;
        v = v > h ? h : v;
        if (mode == QS_ROUND_STOCHASTIC) {
            /* up iff (r >> (32 - k)) < floor(frac(v)·2^32) >> (32 - k), and
             * floor(frac(v)·2^32) = floor(v·2^32) mod 2^32: the low word of
             * v in fixed point with 32 fraction bits, shifted out of the
             * bits of v = ±m·2^(e - 32) (no subtraction, so exact for tiny
             * negative v too). Right shifts are arithmetic (floor) and
             * capped at 31, where only the sign is left: that also covers
             * subnormals, so the implicit bit is set unconditionally, and
             * -0.0 becomes +0.0 first. (A float version, frac = v - f with a
             * separate exact case for -1 < v < 0, runs twice as long.)
             * >> of a negative int is arithmetic in GCC and Clang
             * (implementation-defined in C; checked below). */
            float vz = v + 0.0f;
            uint32_t bits;
            memcpy(&bits, &vz, sizeof bits);
            int32_t e = (int32_t)((bits >> 23) & 0xffu) - 118;
            int32_t m = (int32_t)((bits & 0x7fffffu) | 0x800000u);
            int32_t sg = -(int32_t)(bits >> 31);
            int32_t sm = (m ^ sg) - sg;
            int32_t el = e > 0 ? e : 0; /* e <= 29 for |v| < 2^21 */
            uint32_t er = 0u - (uint32_t)e;
            er = er < 31u ? er : 31u;
            uint32_t thr = e >= 0 ? (uint32_t)sm << el : (uint32_t)(sm >> er);
            float f = floor_small(v);
            r[j] = f + ((rw[j] >> sh) < (thr >> sh) ? 1.0f : 0.0f);
        } else {
            r[j] = round_small(v, mode);
        }
    }
}

_Static_assert((-3 >> 1) == -2, "right shifts of negative integers must be arithmetic");

typedef void (*stage_a_fn)(const stage_a_t *, const float *restrict, float *restrict, int);

#define STAGE_A(M, D, V)                                                                                   \
    QS_CLONES static void stage_a_##M##_##D##_##V(const stage_a_t *a, const float *restrict x,         \
                                                         float *restrict r, int n)                         \
    {                                                                                                      \
        stage_a_impl(M, D, V, a, x, r, n);                                                                 \
    }
#define STAGE_A_MODE(M) STAGE_A(M, 0, 0) STAGE_A(M, 0, 1) STAGE_A(M, 1, 0) STAGE_A(M, 1, 1)
#define STAGE_A_ENTRY(M) {{stage_a_##M##_0_0, stage_a_##M##_0_1}, {stage_a_##M##_1_0, stage_a_##M##_1_1}}
STAGE_A_MODE(0)
STAGE_A_MODE(1)
STAGE_A_MODE(2)
STAGE_A_MODE(3)
STAGE_A_MODE(4)
STAGE_A_MODE(5)
STAGE_A_MODE(6)
STAGE_A_MODE(7)
STAGE_A_MODE(8)
STAGE_A_MODE(9)
STAGE_A_MODE(10)
_Static_assert(QS_ROUND_COUNT == 11, "one stage A per rounding mode");
static const stage_a_fn stage_a_tab[QS_ROUND_COUNT][2][2] = {
    STAGE_A_ENTRY(0), STAGE_A_ENTRY(1), STAGE_A_ENTRY(2), STAGE_A_ENTRY(3), STAGE_A_ENTRY(4),  STAGE_A_ENTRY(5),
    STAGE_A_ENTRY(6), STAGE_A_ENTRY(7), STAGE_A_ENTRY(8), STAGE_A_ENTRY(9), STAGE_A_ENTRY(10),
};

/* Stage S: statistics of a block rounded with the clamp [a - 1, b + 1];
 * clamps r to [a, b] on the way. Per-element terms go to small arrays
 * (one vectorised loop), then to 8 lanes of sums, element j to lane j % 8:
 * a fixed order, so the result does not depend on the vector width. */
#define QS_LANES 8
QS_AI void stage_s_impl(int vec, const stage_a_t *a, const float *restrict x, float *restrict r, int n,
                        qs_runstats_t *st)
{
    const float s = a->s;
    const float lo = a->lo + 1.0f, hi = a->hi - 1.0f;
    const float *restrict S = a->S;
    const float *restrict LO = a->LO;
    const float *restrict HI = a->HI;
    double e2[QS_BLK + QS_LANES], x2[QS_BLK + QS_LANES], ae[QS_BLK + QS_LANES];
    int32_t clipped = 0, nonfin = 0;
    for (int j = 0; j < n; j++) {
        float xf = x[j];
        int fin = fabsf(xf) <= FLT_MAX;
        float l1 = vec ? LO[j] + 1.0f : lo, h1 = vec ? HI[j] - 1.0f : hi;
        float rv = r[j];
        float rc = rv < l1 ? l1 : rv;
        rc = rc > h1 ? h1 : rc;
        clipped += fin & (rc != rv);
        nonfin += !fin;
        r[j] = rc;
        float yv = (vec ? S[j] : s) * rc;
        /* non-finite elements contribute 0: masked to +0.0 bit by bit
         * (selects on one shared condition make GCC thread jumps) */
        uint32_t fm = 0u - (uint32_t)fin, xb, yb;
        memcpy(&xb, &xf, sizeof xb);
        memcpy(&yb, &yv, sizeof yb);
        xb &= fm;
        yb &= fm;
        float xm, ym;
        memcpy(&xm, &xb, sizeof xm);
        memcpy(&ym, &yb, sizeof ym);
        double e = (double)xm - (double)ym;
        e2[j] = e * e;
        x2[j] = (double)xm * (double)xm;
        ae[j] = fabs(e);
    }
    int np = (n + QS_LANES - 1) / QS_LANES * QS_LANES;
    for (int j = n; j < np; j++)
        e2[j] = x2[j] = ae[j] = 0.0;
    double sse[QS_LANES] = {0}, sig[QS_LANES] = {0}, mx[QS_LANES] = {0};
#if defined(__GNUC__)
    /* the same lane sums with 2-wide vector types (native on every x86-64
     * and arm64): GCC does not vectorise the plain loop below, where it sees
     * ordered reductions */
    typedef double v2d __attribute__((vector_size(16)));
    typedef int64_t v2l __attribute__((vector_size(16)));
    v2d s0 = {0, 0}, s1 = s0, s2 = s0, s3 = s0, q0 = s0, q1 = s0, q2 = s0, q3 = s0;
    v2d m0 = s0, m1 = s0, m2 = s0, m3 = s0;
#define QS_LANE_LOAD(v, p) memcpy(&(v), (p), sizeof(v))
#define QS_LANE_MAX(m, w)                                                                                  \
    do {                                                                                                   \
        v2l gt = (w) > (m);                                                                                \
        (m) = (v2d)(((v2l)(w) & gt) | ((v2l)(m) & ~gt));                                                   \
    } while (0)
    for (int j0 = 0; j0 < np; j0 += QS_LANES) {
        v2d t0, t1, t2, t3;
        QS_LANE_LOAD(t0, e2 + j0);
        QS_LANE_LOAD(t1, e2 + j0 + 2);
        QS_LANE_LOAD(t2, e2 + j0 + 4);
        QS_LANE_LOAD(t3, e2 + j0 + 6);
        s0 += t0;
        s1 += t1;
        s2 += t2;
        s3 += t3;
        QS_LANE_LOAD(t0, x2 + j0);
        QS_LANE_LOAD(t1, x2 + j0 + 2);
        QS_LANE_LOAD(t2, x2 + j0 + 4);
        QS_LANE_LOAD(t3, x2 + j0 + 6);
        q0 += t0;
        q1 += t1;
        q2 += t2;
        q3 += t3;
        QS_LANE_LOAD(t0, ae + j0);
        QS_LANE_LOAD(t1, ae + j0 + 2);
        QS_LANE_LOAD(t2, ae + j0 + 4);
        QS_LANE_LOAD(t3, ae + j0 + 6);
        QS_LANE_MAX(m0, t0);
        QS_LANE_MAX(m1, t1);
        QS_LANE_MAX(m2, t2);
        QS_LANE_MAX(m3, t3);
    }
#undef QS_LANE_LOAD
#undef QS_LANE_MAX
    v2d all[12] = {s0, s1, s2, s3, q0, q1, q2, q3, m0, m1, m2, m3};
    memcpy(sse, all, sizeof sse);
    memcpy(sig, all + 4, sizeof sig);
    memcpy(mx, all + 8, sizeof mx);
#else
    for (int j0 = 0; j0 < np; j0 += QS_LANES)
        for (int l = 0; l < QS_LANES; l++) {
            sse[l] += e2[j0 + l];
            sig[l] += x2[j0 + l];
            mx[l] = ae[j0 + l] > mx[l] ? ae[j0 + l] : mx[l];
        }
#endif
    double tsse = 0, tsig = 0, tmx = st->max_abs_err;
    for (int l = 0; l < QS_LANES; l++) {
        tsse += sse[l];
        tsig += sig[l];
        tmx = mx[l] > tmx ? mx[l] : tmx;
    }
    st->sse += tsse;
    st->signal += tsig;
    st->max_abs_err = tmx;
    st->clipped += clipped;
    st->nonfinite += nonfin;
}
QS_CLONES static void stage_s_scalar(const stage_a_t *a, const float *restrict x, float *restrict r, int n, qs_runstats_t *st)
{
    stage_s_impl(0, a, x, r, n, st);
}
QS_CLONES static void stage_s_vec(const stage_a_t *a, const float *restrict x, float *restrict r, int n, qs_runstats_t *st)
{
    stage_s_impl(1, a, x, r, n, st);
}

/* Stage B: codes and dequantized values from a block of clamped r. */
QS_CLONES static void stage_b_scalar(float s, int32_t z, const float *restrict r, int32_t *restrict codes,
                           float *restrict y, int n)
{
    if (codes)
        for (int j = 0; j < n; j++)
            codes[j] = (int32_t)r[j] + z;
    if (y)
        for (int j = 0; j < n; j++)
            y[j] = s * r[j]; /* |r| < 2^24: the float product is the exact product rounded once */
}
QS_CLONES static void stage_b_vec(const float *restrict S, const int32_t *restrict Z, const float *restrict r,
                        int32_t *restrict codes, float *restrict y, int n)
{
    if (codes)
        for (int j = 0; j < n; j++)
            codes[j] = (int32_t)r[j] + Z[j];
    if (y)
        for (int j = 0; j < n; j++)
            y[j] = S[j] * r[j];
}

static void stoch_setup(const kcfg_t *c, stage_a_t *a)
{
    a->sh = 32 - c->rbits;
}

/* One parameter for x[0..n): blocks through stages A, S, B. */
static void fast_run_scalar(const kcfg_t *c, float s, int32_t z, const float *x, int32_t *codes, float *y,
                            int64_t n, uint64_t index0, qs_runstats_t *st)
{
    float rbuf[QS_BLK];
    uint32_t rw[QS_BLK];
    stage_a_t a;
    memset(&a, 0, sizeof a);
    a.s = s;
    a.inv = 1.0f / s;
    /* with statistics, clamp one step outside the range so that clipping shows */
    float wide = st ? 1.0f : 0.0f;
    a.lo = (float)(c->qmin - z) - wide;
    a.hi = (float)(c->qmax - z) + wide;
    a.rw = rw;
    stoch_setup(c, &a);
    stage_a_fn fa = stage_a_tab[c->mode][c->div][0];
    for (int64_t off = 0; off < n; off += QS_BLK) {
        int m = n - off < QS_BLK ? (int)(n - off) : QS_BLK;
        if (c->mode == QS_ROUND_STOCHASTIC)
            qs_rng_fill_u32(c->seed, c->stream, index0 + (uint64_t)off, (size_t)m, rw);
        fa(&a, x + off, rbuf, m);
        if (st)
            stage_s_scalar(&a, x + off, rbuf, m, st);
        stage_b_scalar(s, z, rbuf, codes ? codes + off : NULL, y ? y + off : NULL, m);
    }
}

/* Per-element parameters S, INV, LO, HI, Z for x[0..n). */
static void fast_run_vec(const kcfg_t *c, const float *S, const float *INV, const float *LO, const float *HI,
                         const int32_t *Z, const float *x, int32_t *codes, float *y, int64_t n, uint64_t index0,
                         qs_runstats_t *st)
{
    float rbuf[QS_BLK];
    uint32_t rw[QS_BLK];
    stage_a_t a;
    memset(&a, 0, sizeof a);
    a.rw = rw;
    stoch_setup(c, &a);
    stage_a_fn fa = stage_a_tab[c->mode][c->div][1];
    for (int64_t off = 0; off < n; off += QS_BLK) {
        int m = n - off < QS_BLK ? (int)(n - off) : QS_BLK;
        if (c->mode == QS_ROUND_STOCHASTIC)
            qs_rng_fill_u32(c->seed, c->stream, index0 + (uint64_t)off, (size_t)m, rw);
        a.S = S + off;
        a.INV = INV + off;
        a.LO = LO + off;
        a.HI = HI + off;
        fa(&a, x + off, rbuf, m);
        if (st)
            stage_s_vec(&a, x + off, rbuf, m, st);
        stage_b_vec(S + off, Z + off, rbuf, codes ? codes + off : NULL, y ? y + off : NULL, m);
    }
}

/* ---- the generic path ------------------------------------------------------------------------------- */

/* Element j uses S[j * ps], Z[j * ps] (ps = 0: one parameter). */
static void generic_run(const kcfg_t *c, const float *S, const int32_t *Z, int64_t ps, const float *x,
                        int32_t *codes, float *y, int64_t n, uint64_t index0, qs_runstats_t *st)
{
    uint32_t rw[QS_BLK];
    double sse = 0, sig = 0, mx = st ? st->max_abs_err : 0;
    int64_t clipped = 0, nonfin = 0;
    for (int64_t off = 0; off < n; off += QS_BLK) {
        int m = n - off < QS_BLK ? (int)(n - off) : QS_BLK;
        if (c->mode == QS_ROUND_STOCHASTIC)
            qs_rng_fill_u32(c->seed, c->stream, index0 + (uint64_t)off, (size_t)m, rw);
        for (int j = 0; j < m; j++) {
            int64_t k = (off + j) * ps;
            float s = S[k];
            int32_t z = Z[k];
            float xf = x[off + j];
            bool clip;
            uint32_t word = c->mode == QS_ROUND_STOCHASTIC ? rw[j] : 0;
            int32_t code = quant_elem(c, xf, s, 1.0f / s, z, word, &clip);
            if (codes)
                codes[off + j] = code;
            if (y || st) {
                float yv = deq_exact(s, (int64_t)code - z);
                if (st) {
                    if (isfinite(xf)) {
                        double e = (double)xf - (double)yv;
                        sse += e * e;
                        sig += (double)xf * (double)xf;
                        mx = fabs(e) > mx ? fabs(e) : mx;
                        clipped += clip;
                    } else {
                        nonfin++;
                    }
                }
                if (y)
                    y[off + j] = yv; /* after x[off + j] was read: y may be x */
            }
        }
    }
    if (st) {
        st->sse += sse;
        st->signal += sig;
        st->max_abs_err = mx;
        st->clipped += clipped;
        st->nonfinite += nonfin;
    }
}

static bool fast_ok(const kcfg_t *c, int32_t z)
{
    return !c->wrap && (double)(c->qmin - z) - 1.0 >= -QS_FAST_LIMIT && (double)(c->qmax - z) + 1.0 <= QS_FAST_LIMIT;
}

static void run_scalar(const kcfg_t *c, float s, int32_t z, const float *x, int32_t *codes, float *y, int64_t n,
                       uint64_t index0, qs_runstats_t *st)
{
    if (n <= 0 || (!codes && !y && !st))
        return;
    if (fast_ok(c, z))
        fast_run_scalar(c, s, z, x, codes, y, n, index0, st);
    else
        generic_run(c, &s, &z, 0, x, codes, y, n, index0, st);
}

void qs_quant_run(const qs_quantizer_t *q, float scale, int32_t zp, const float *x, int32_t *codes, float *y,
                  int64_t n, uint64_t index0, qs_runstats_t *st)
{
    kcfg_t c;
    kcfg_init(&c, q);
    run_scalar(&c, scale, zp, x, codes, y, n, index0, st);
}

double qs_quant_sse(const qs_quantizer_t *q, float scale, int32_t zp, const float *x, int64_t n)
{
    qs_runstats_t st;
    memset(&st, 0, sizeof st);
    qs_quant_run(q, scale, zp, x, NULL, NULL, n, 0, &st);
    return st.sse;
}

/* ---- whole tensors ---------------------------------------------------------------------------------- */

typedef enum {
    WALK_TENSOR,     /* one parameter */
    WALK_ROWS,       /* channel, inner > 1: row (o, a) of inner elements uses parameter a */
    WALK_CHANNEL_LAST, /* channel, inner == 1: element (o, a) uses parameter a */
    WALK_GROUP_LAST, /* group, inner == 1: runs of G along the last axis */
    WALK_GROUP_ROWS  /* group, inner > 1: row (o, a) uses parameters (o·ngroups + a/G)·inner + [0, inner) */
} walk_t;

typedef struct {
    kcfg_t c;
    qs_qlayout_t L;
    walk_t walk;
    bool fast;   /* per-element parameters go through the fast path (all z validated) */
    const float *x;
    int32_t *codes;
    float *y;
    const float *S;
    const int32_t *Z;
    float *INV, *LO, *HI; /* per parameter, for the fast per-element path */
    int64_t n, chunk, nchunks;
    qs_runstats_t *chunk_st;
} qctx_t;

static void run_vec(const qctx_t *t, int64_t p0, int64_t f, int64_t m, qs_runstats_t *st)
{
    if (t->fast)
        fast_run_vec(&t->c, t->S + p0, t->INV + p0, t->LO + p0, t->HI + p0, t->Z + p0, t->x + f,
                     t->codes ? t->codes + f : NULL, t->y ? t->y + f : NULL, m, (uint64_t)f, st);
    else
        generic_run(&t->c, t->S + p0, t->Z + p0, 1, t->x + f, t->codes ? t->codes + f : NULL,
                    t->y ? t->y + f : NULL, m, (uint64_t)f, st);
}

static void run_param(const qctx_t *t, int64_t p, int64_t f, int64_t m, qs_runstats_t *st)
{
    run_scalar(&t->c, t->S[p], t->Z[p], t->x + f, t->codes ? t->codes + f : NULL, t->y ? t->y + f : NULL, m,
               (uint64_t)f, st);
}

/* Elements [b, e) in flat order, cut where the parameter layout changes. */
static void process_range(const qctx_t *t, int64_t b, int64_t e, qs_runstats_t *st)
{
    const qs_qlayout_t *L = &t->L;
    int64_t f = b;
    while (f < e) {
        int64_t m, row, o, a;
        switch (t->walk) {
        case WALK_TENSOR:
            run_param(t, 0, f, e - f, st);
            return;
        case WALK_ROWS:
            row = f / L->inner;
            m = (row + 1) * L->inner;
            m = (m < e ? m : e) - f;
            run_param(t, row % L->len, f, m, st);
            break;
        case WALK_CHANNEL_LAST:
            o = f / L->len;
            a = f % L->len;
            m = (o + 1) * L->len;
            m = (m < e ? m : e) - f;
            run_vec(t, a, f, m, st);
            break;
        case WALK_GROUP_LAST: {
            o = f / L->len;
            a = f % L->len;
            int64_t g = a / L->group;
            int64_t gend = (g + 1) * L->group < L->len ? (g + 1) * L->group : L->len;
            m = gend - a < e - f ? gend - a : e - f;
            run_param(t, o * L->ngroups + g, f, m, st);
            break;
        }
        case WALK_GROUP_ROWS:
        default: {
            row = f / L->inner;
            int64_t i = f % L->inner;
            o = row / L->len;
            a = row % L->len;
            m = (row + 1) * L->inner;
            m = (m < e ? m : e) - f;
            run_vec(t, (o * L->ngroups + a / L->group) * L->inner + i, f, m, st);
            break;
        }
        }
        f += m;
    }
}

static int chunk_fn(void *ctx, int64_t begin, int64_t end, int thread)
{
    (void)thread;
    const qctx_t *t = ctx;
    for (int64_t c = begin; c < end; c++) {
        int64_t b = c * t->chunk;
        int64_t e = b + t->chunk < t->n ? b + t->chunk : t->n;
        process_range(t, b, e, t->chunk_st ? &t->chunk_st[c] : NULL);
    }
    return QS_OK;
}

static int check_params(const qs_quantizer_t *q, const qs_qparams_t *p, const qs_tensor_t *x, qs_qlayout_t *L)
{
    int rc = qs_qlayout(q, x->ndim, x->shape, L);
    if (rc < 0)
        return rc;
    if (qs_grid_is_block(q->grid)) /* the block scales are the data's own; scale[0] is nvfp4's tensor scale */
        return p->count >= 1 ? QS_OK : qs_error(QS_ERR_SHAPE, "block grid: no parameters");
    int nl = qs_grid_levels(q);
    if (nl != p->nlevels || (nl > 0 && !p->levels))
        return qs_error(QS_ERR_INVALID, "quantization parameters hold %d levels per slice, but this grid has %d",
                        p->levels ? p->nlevels : 0, nl);
    int pndim;
    int64_t pshape[QS_MAX_DIMS];
    params_shape(q, x->ndim, x->shape, L, &pndim, pshape);
    bool same = p->count == L->nparams && p->ndim == pndim;
    for (int d = 0; same && d < pndim; d++)
        same = p->shape[d] == pshape[d];
    if (!same) {
        char a[96], b[96], c[96];
        return qs_error(QS_ERR_SHAPE,
                        "quantization parameters of shape %s (%" PRId64 " values) do not fit data of shape %s "
                        "with gran=%s: expected shape %s",
                        qs_shape_str(p->ndim, p->shape, a, sizeof a), p->count,
                        qs_shape_str(x->ndim, x->shape, b, sizeof b), gran_name(q->gran.kind),
                        qs_shape_str(pndim, pshape, c, sizeof c));
    }
    int64_t qmin, qmax;
    qs_quantizer_code_range(q, &qmin, &qmax);
    if (q->grid != QS_GRID_UNIFORM)
        qmin = qmax = 0; /* no zero points */
    for (int64_t i = 0; i < p->count; i++) {
        if (!(p->scale[i] > 0) || !isfinite(p->scale[i]))
            return qs_error(QS_ERR_NUMERIC, "scale[%" PRId64 "] = %g: expected a positive finite scale", i,
                            (double)p->scale[i]);
        if (p->zero_point[i] < qmin || p->zero_point[i] > qmax)
            return qs_error(QS_ERR_INVALID,
                            "zero_point[%" PRId64 "] = %" PRId32 ": expected a code in [%" PRId64 ", %" PRId64
                            "] (%d-bit %s)",
                            i, p->zero_point[i], qmin, qmax, q->bits, scheme_name(q->scheme));
    }
    return QS_OK;
}

static void stats_finish(qs_qstats_t *stats, int64_t count, const qs_runstats_t *rs)
{
    stats->count = count;
    stats->clipped = rs->clipped;
    stats->nonfinite = rs->nonfinite;
    stats->sse = rs->sse;
    stats->signal = rs->signal;
    stats->max_abs_err = rs->max_abs_err;
}

int qs_quantize(const qs_quantizer_t *q, const qs_qparams_t *p, const qs_tensor_t *x, qs_tensor_t *codes,
                qs_tensor_t *deq, qs_pool_t *pool, qs_qstats_t *stats)
{
    int rc;
    if (stats)
        memset(stats, 0, sizeof *stats);
    if (!q || !p || !x)
        return qs_error(QS_ERR_INVALID, "qs_quantize: quantizer, parameters and input are required");
    if ((rc = qs_quantizer_validate(q)) < 0)
        return rc;
    if (x->dtype != QS_F32)
        return qs_error(QS_ERR_INVALID, "quantize: input is %s, expected float32", qs_dtype_name(x->dtype));
    char a[96], b[96];
    if (codes && (codes->dtype != QS_I32 || !qs_shape_equal(codes, x)))
        return qs_error(QS_ERR_SHAPE, "quantize: codes are %s %s, expected int32 %s", qs_dtype_name(codes->dtype),
                        qs_shape_str(codes->ndim, codes->shape, a, sizeof a),
                        qs_shape_str(x->ndim, x->shape, b, sizeof b));
    if (deq && (deq->dtype != QS_F32 || !qs_shape_equal(deq, x)))
        return qs_error(QS_ERR_SHAPE, "quantize: output is %s %s, expected float32 %s", qs_dtype_name(deq->dtype),
                        qs_shape_str(deq->ndim, deq->shape, a, sizeof a),
                        qs_shape_str(x->ndim, x->shape, b, sizeof b));
    qctx_t t;
    memset(&t, 0, sizeof t);
    if ((rc = check_params(q, p, x, &t.L)) < 0)
        return rc;
    if (q->grid != QS_GRID_UNIFORM) {
        qs_runstats_t rs;
        memset(&rs, 0, sizeof rs);
        if ((rc = qs_grid_quantize(q, p, x, codes ? qs_i32(codes) : NULL, deq ? qs_f32(deq) : NULL, stats ? &rs : NULL)) < 0)
            return rc;
        if (stats)
            stats_finish(stats, x->size, &rs);
        return QS_OK;
    }
    kcfg_init(&t.c, q);
    t.x = qs_f32(x);
    t.codes = codes ? qs_i32(codes) : NULL;
    t.y = deq ? qs_f32(deq) : NULL;
    t.S = p->scale;
    t.Z = p->zero_point;
    t.n = x->size;
    if (t.n == 0 || (!codes && !deq && !stats)) {
        if (stats)
            stats->count = t.n;
        return QS_OK;
    }

    const qs_qlayout_t *L = &t.L;
    int64_t row; /* elements that share a parameter pattern, to align chunks on */
    if (q->gran.kind == QS_GRAN_TENSOR) {
        t.walk = WALK_TENSOR;
        row = 1;
    } else if (q->gran.kind == QS_GRAN_CHANNEL) {
        t.walk = L->inner > 1 ? WALK_ROWS : WALK_CHANNEL_LAST;
        row = L->inner > 1 ? L->inner : L->len;
    } else {
        t.walk = L->inner > 1 ? WALK_GROUP_ROWS : WALK_GROUP_LAST;
        row = L->inner > 1 ? L->inner : L->len;
    }
    t.chunk = QS_CHUNK;
    if (row > 1 && row < QS_CHUNK)
        t.chunk = QS_CHUNK / row * row;
    t.nchunks = (t.n + t.chunk - 1) / t.chunk;

    /* per-element parameters: precompute what stage A needs once per parameter */
    bool vec = t.walk == WALK_CHANNEL_LAST || t.walk == WALK_GROUP_ROWS;
    t.fast = vec && !t.c.wrap && (double)(t.c.qmax - t.c.qmin) + 1.0 <= QS_FAST_LIMIT;
    float *pbuf = NULL;
    if (t.fast) {
        size_t np = (size_t)L->nparams;
        pbuf = malloc(3 * np * sizeof *pbuf);
        if (!pbuf)
            return qs_error(QS_ERR_NOMEM, "out of memory for %" PRId64 " quantization parameters", L->nparams);
        t.INV = pbuf;
        t.LO = pbuf + np;
        t.HI = pbuf + 2 * np;
        float wide = stats ? 1.0f : 0.0f;
        for (size_t i = 0; i < np; i++) {
            t.INV[i] = 1.0f / p->scale[i];
            t.LO[i] = (float)(t.c.qmin - p->zero_point[i]) - wide;
            t.HI[i] = (float)(t.c.qmax - p->zero_point[i]) + wide;
        }
    }
    if (stats) {
        t.chunk_st = calloc((size_t)t.nchunks, sizeof *t.chunk_st);
        if (!t.chunk_st) {
            free(pbuf);
            return qs_error(QS_ERR_NOMEM, "out of memory for quantization statistics");
        }
    }
    rc = qs_pool_for(pool, t.nchunks, 1, chunk_fn, &t);
    if (rc == QS_OK && stats) {
        qs_runstats_t tot;
        memset(&tot, 0, sizeof tot);
        for (int64_t c = 0; c < t.nchunks; c++) {
            tot.clipped += t.chunk_st[c].clipped;
            tot.nonfinite += t.chunk_st[c].nonfinite;
            tot.sse += t.chunk_st[c].sse;
            tot.signal += t.chunk_st[c].signal;
            tot.max_abs_err = t.chunk_st[c].max_abs_err > tot.max_abs_err ? t.chunk_st[c].max_abs_err
                                                                            : tot.max_abs_err;
        }
        stats_finish(stats, t.n, &tot);
    }
    free(t.chunk_st);
    free(pbuf);
    return rc;
}

/* ---- dequantize --------------------------------------------------------------------------------------- */

static void deq_run(float s, int32_t z, const int32_t *restrict c, float *restrict y, int64_t n)
{
    const double sd = (double)s, zd = (double)z;
    for (int64_t j = 0; j < n; j++)
        y[j] = (float)(sd * ((double)c[j] - zd)); /* the difference is exact in double */
    /* differences of 2^29 or more need the exact product (rare: wide codes) */
    for (int64_t j = 0; j < n; j++) {
        int64_t d = (int64_t)c[j] - z;
        if (d <= -QS_TWO29 || d >= QS_TWO29)
            y[j] = deq_exact(s, d);
    }
}

int qs_dequantize(const qs_quantizer_t *q, const qs_qparams_t *p, const qs_tensor_t *codes, qs_tensor_t *out)
{
    int rc;
    if (!q || !p || !codes || !out)
        return qs_error(QS_ERR_INVALID, "qs_dequantize: quantizer, parameters, codes and output are required");
    if ((rc = qs_quantizer_validate(q)) < 0)
        return rc;
    char a[96], b[96];
    if (codes->dtype != QS_I32)
        return qs_error(QS_ERR_INVALID, "dequantize: codes are %s, expected int32", qs_dtype_name(codes->dtype));
    if (out->dtype != QS_F32 || !qs_shape_equal(out, codes))
        return qs_error(QS_ERR_SHAPE, "dequantize: output is %s %s, expected float32 %s", qs_dtype_name(out->dtype),
                        qs_shape_str(out->ndim, out->shape, a, sizeof a),
                        qs_shape_str(codes->ndim, codes->shape, b, sizeof b));
    qs_qlayout_t L;
    if ((rc = check_params(q, p, codes, &L)) < 0)
        return rc;
    if (q->grid != QS_GRID_UNIFORM)
        return qs_grid_dequantize(q, p, codes, qs_f32(out));
    const int32_t *c = qs_i32(codes);
    float *y = qs_f32(out);
    const float *S = p->scale;
    const int32_t *Z = p->zero_point;
    if (q->gran.kind == QS_GRAN_TENSOR) {
        deq_run(S[0], Z[0], c, y, codes->size);
        return QS_OK;
    }
    /* rows of inner elements; element (o, a, i) */
    for (int64_t o = 0; o < L.outer; o++)
        for (int64_t a2 = 0; a2 < L.len; a2++) {
            int64_t f = (o * L.len + a2) * L.inner;
            if (q->gran.kind == QS_GRAN_CHANNEL) {
                deq_run(S[a2], Z[a2], c + f, y + f, L.inner);
            } else {
                int64_t p0 = (o * L.ngroups + a2 / L.group) * L.inner;
                for (int64_t i = 0; i < L.inner; i++)
                    y[f + i] = deq_exact(S[p0 + i], (int64_t)c[f + i] - Z[p0 + i]);
            }
        }
    return QS_OK;
}

/* ---- statistics ----------------------------------------------------------------------------------------- */

double qs_qstats_mse(const qs_qstats_t *s)
{
    int64_t n = s->count - s->nonfinite;
    return n > 0 ? s->sse / (double)n : 0.0;
}

double qs_qstats_sqnr_db(const qs_qstats_t *s)
{
    if (s->sse == 0.0)
        return INFINITY;
    return 10.0 * log10(s->signal / s->sse);
}

double qs_qstats_clipped_fraction(const qs_qstats_t *s)
{
    return s->count > 0 ? (double)s->clipped / (double)s->count : 0.0;
}
