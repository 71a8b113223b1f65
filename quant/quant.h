/* quant/quant.h — number formats and the maps from one tensor to another:
 * rounding, uniform affine grids, granularity, range setting, overflow and
 * scale constraints, and the quantizer spec grammar (docs/spec.md).
 *
 * The arithmetic is normative (docs/arithmetic.md): for a quantizer q with
 * scale s and zero point z, element x becomes
 *     v    = fl32(x / s)            (div=divide, the default)
 *            fl32(x * fl32(1 / s))  (div=reciprocal, as PyTorch and FBGEMM do)
 *     code = overflow(round(v) + z, qmin, qmax)
 *     x̂    = fl32(s * (code - z))  (the product formed exactly, rounded once)
 * NaN quantizes to the code of 0.0 (code z); +Inf and -Inf to qmax and qmin,
 * under either overflow mode. */
#ifndef QS_QUANT_H
#define QS_QUANT_H

#include "core/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- rounding ---------------------------------------------------------------- */

typedef enum {
    QS_ROUND_NEAREST_EVEN = 0, /* ties to even (default) */
    QS_ROUND_NEAREST_AWAY,     /* ties away from zero, C round() */
    QS_ROUND_NEAREST_UP,       /* ties toward +inf, floor(x + 1/2) */
    QS_ROUND_NEAREST_DOWN,     /* ties toward -inf */
    QS_ROUND_NEAREST_ZERO,     /* ties toward zero */
    QS_ROUND_FLOOR,
    QS_ROUND_CEIL,
    QS_ROUND_TOWARD_ZERO,
    QS_ROUND_AWAY_FROM_ZERO,
    QS_ROUND_ODD,        /* toward zero, then set the last bit if inexact */
    QS_ROUND_STOCHASTIC, /* up with probability frac(x), seeded, counter-based */
    QS_ROUND_COUNT
} qs_round_mode_t;

typedef struct {
    qs_round_mode_t mode;
    uint64_t seed;   /* stochastic only */
    int rbits;       /* stochastic only: random bits, 1..32 (32 = full, the default) */
    uint64_t stream; /* stochastic only: set by callers so that distinct tensors draw distinct bits */
} qs_rounding_t;

const char *qs_round_name(qs_round_mode_t m); /* "nearest-even", ... */
/* Rounds v to an integral value with a deterministic mode (any mode but stochastic). */
double qs_round_det(double v, qs_round_mode_t m);
/* Stochastic rounding with one random word r: round up iff
 * (r >> (32 - rbits)) < floor(frac(v) * 2^rbits), i.e. with probability
 * floor(frac(v)·2^rbits)/2^rbits — unbiased for rbits = 32 up to 2^-32, and
 * biased downward with few bits as hardware that keeps few random bits is. */
double qs_round_stoch(double v, uint32_t r, int rbits);
/* Rounds element `index` of a tensor: the random word is
 * qs_rng_u32(seed, stream, index). */
double qs_round(const qs_rounding_t *r, double v, uint64_t index);

/* ---- the quantizer ----------------------------------------------------------- */

typedef enum { QS_GRID_UNIFORM = 0, QS_GRID_COUNT } qs_grid_t;

typedef enum {
    QS_SCHEME_SYMMETRIC = 0,    /* z = 0, q in [-2^(b-1), 2^(b-1)-1] */
    QS_SCHEME_SYMMETRIC_NARROW, /* z = 0, q in [-(2^(b-1)-1), 2^(b-1)-1]; b >= 2 */
    QS_SCHEME_UNSIGNED,         /* z = 0, q in [0, 2^b-1] */
    QS_SCHEME_ASYMMETRIC,       /* q in [0, 2^b-1], integer z puts 0.0 on the grid */
    QS_SCHEME_ASYMMETRIC_SIGNED,/* q in [-2^(b-1), 2^(b-1)-1], integer z */
    QS_SCHEME_COUNT
} qs_scheme_t;

typedef enum { QS_GRAN_TENSOR = 0, QS_GRAN_CHANNEL, QS_GRAN_GROUP } qs_gran_kind_t;
typedef struct {
    qs_gran_kind_t kind;
    int axis;      /* channel and group: the axis (negative counts from the end) */
    int64_t group; /* group: consecutive elements along axis sharing a scale; the last group may be shorter */
} qs_granularity_t;

typedef enum {
    QS_RANGE_MINMAX = 0,
    QS_RANGE_PERCENTILE, /* percentile:P */
    QS_RANGE_MSE,        /* grid search minimising the squared error of this quantizer */
    QS_RANGE_SQNR,       /* "TF-enhanced": quantization noise + 3 x saturation noise on a histogram */
    QS_RANGE_KL,         /* entropy calibration, TensorRT style, 2048-bin histogram */
    QS_RANGE_ACIQ,       /* analytic clipping (Banner et al. 2019), aciq:laplace or aciq:gauss */
    QS_RANGE_COUNT
} qs_range_method_t;
typedef enum { QS_ACIQ_LAPLACE = 0, QS_ACIQ_GAUSS } qs_aciq_dist_t;
typedef struct {
    qs_range_method_t method;
    double percentile;   /* percentile: in (0, 100], default 99.99 */
    qs_aciq_dist_t dist; /* aciq */
} qs_range_t;

typedef enum { QS_OVERFLOW_SATURATE = 0, QS_OVERFLOW_WRAP } qs_overflow_t;
typedef enum { QS_SCALE_FLOAT = 0, QS_SCALE_POW2, QS_SCALE_FP16, QS_SCALE_BF16, QS_SCALE_E8M0, QS_SCALE_COUNT } qs_scale_type_t;
typedef enum { QS_DIV_DIVIDE = 0, QS_DIV_RECIPROCAL } qs_div_t;

typedef struct {
    qs_grid_t grid;
    int bits;                /* 1..32; unsigned code ranges at most 31 (codes are int32) */
    qs_scheme_t scheme;
    qs_granularity_t gran;
    qs_range_t range;
    qs_rounding_t round;
    qs_overflow_t overflow;
    qs_scale_type_t scale_type;
    qs_div_t div;
} qs_quantizer_t;

/* grid=uniform, bits=8, scheme=symmetric, gran=tensor, range=minmax,
 * round=nearest-even, overflow=saturate, scale=float, div=divide */
void qs_quantizer_default(qs_quantizer_t *q);
int qs_quantizer_validate(const qs_quantizer_t *q);
void qs_quantizer_code_range(const qs_quantizer_t *q, int64_t *qmin, int64_t *qmax);
/* Applies the words of spec (docs/spec.md) on top of *q; what names the source
 * in messages ("--quant"). Unknown keys or values are errors listing what is expected. */
int qs_quantizer_parse(const char *spec, const char *what, qs_quantizer_t *q);
/* Sets one field by its spec key ("bits", "round", ...); the same parser as above. */
int qs_quantizer_set(qs_quantizer_t *q, const char *key, const char *value, const char *what);
/* The complete canonical spec string (every key), which qs_quantizer_parse reads back. */
char *qs_quantizer_str(const qs_quantizer_t *q, char *buf, size_t n);
/* The spec keys, NULL-terminated, for help texts and error messages. */
const char *const *qs_quantizer_keys(void);

/* ---- quantization parameters ---------------------------------------------------- */

/* One (scale, zero point) per slice. shape is [1] per tensor, [C] per channel,
 * and for groups the data shape with the axis dimension replaced by the number
 * of groups ceil(len / G); parameters are stored row-major in that shape. */
typedef struct {
    int64_t count;
    float *scale;
    int32_t *zero_point;
    int ndim;
    int64_t shape[QS_MAX_DIMS];
} qs_qparams_t;

/* Parameters (scale 1, zero point 0) shaped for data of the given shape. */
int qs_qparams_create(const qs_quantizer_t *q, int ndim, const int64_t *shape, qs_qparams_t **out);
void qs_qparams_free(qs_qparams_t *p);
/* Scale and zero point for a real range [lo, hi] under q's scheme and scale
 * constraint (docs/arithmetic.md, "From a range to a grid"). */
int qs_qparams_from_range(const qs_quantizer_t *q, double lo, double hi, float *scale, int32_t *zero_point);
/* The scale constraint applied to a positive finite scale. */
float qs_scale_constrain(qs_scale_type_t t, double s);

/* ---- range setting ---------------------------------------------------------------- */

/* Accumulates the statistics q's range method needs over any number of
 * batches (minmax: extrema; aciq: moments; percentile/sqnr/kl: histograms;
 * mse: the values), then picks the parameters. Per channel, every batch must
 * have the channel count of the shape given at creation; per group, the whole shape. */
typedef struct qs_observer qs_observer_t;
int qs_observer_create(const qs_quantizer_t *q, int ndim, const int64_t *shape, qs_observer_t **out);
/* NaN or infinite values are an error naming the element. */
int qs_observer_update(qs_observer_t *o, const qs_tensor_t *x);
int qs_observer_finish(qs_observer_t *o, qs_qparams_t **out);
void qs_observer_free(qs_observer_t *o);
/* One batch: create, update, finish. */
int qs_calibrate(const qs_quantizer_t *q, const qs_tensor_t *x, qs_qparams_t **out);

/* ---- quantize ------------------------------------------------------------------------ */

typedef struct {
    int64_t count;     /* elements */
    int64_t clipped;   /* finite elements whose rounded code fell outside [qmin, qmax] */
    int64_t nonfinite; /* NaN and infinite elements */
    double sse;        /* sum of (x - x̂)² over finite elements */
    double signal;     /* sum of x² over finite elements */
    double max_abs_err;
} qs_qstats_t;
double qs_qstats_mse(const qs_qstats_t *s);
double qs_qstats_sqnr_db(const qs_qstats_t *s); /* 10 log10(signal / sse); +inf when sse = 0 */
double qs_qstats_clipped_fraction(const qs_qstats_t *s);

/* Quantizes x (F32) with parameters p into codes (I32, x's shape, may be NULL)
 * and/or the dequantized values deq (F32, x's shape, may be NULL, may be x).
 * stats may be NULL (the fast path). Results do not depend on the pool. */
int qs_quantize(const qs_quantizer_t *q, const qs_qparams_t *p, const qs_tensor_t *x, qs_tensor_t *codes,
                qs_tensor_t *deq, qs_pool_t *pool, qs_qstats_t *stats);
int qs_dequantize(const qs_quantizer_t *q, const qs_qparams_t *p, const qs_tensor_t *codes, qs_tensor_t *out);
/* Element by element, the same arithmetic (the reference the kernels are tested against).
 * index is the element's flat index (stochastic rounding). *clipped may be NULL. */
int32_t qs_quantize_one(const qs_quantizer_t *q, float x, float scale, int32_t zero_point, uint64_t index,
                        bool *clipped);
float qs_dequantize_one(float scale, int32_t zero_point, int32_t code);

#ifdef __cplusplus
}
#endif
#endif
