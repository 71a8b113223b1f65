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

/* ---- minifloats (quant/minifloat.c, docs/arithmetic.md "Minifloats") ---- */

typedef enum {
    QS_MF_IEEE = 0, /* all-ones exponent: Inf and NaN */
    QS_MF_OCP_FN,   /* OCP FP8 E4M3: no Inf, one NaN pattern (S.1111.111) */
    QS_MF_FNUZ,     /* no Inf, no -0, NaN = 1.0…0, bias 2^(E-1) */
    QS_MF_FINITE,   /* OCP FP6/FP4: no Inf, no NaN */
} qs_mf_conv_t;
typedef enum { QS_MF_NEAREST_EVEN = 0, QS_MF_TOWARD_ZERO, QS_MF_STOCHASTIC } qs_mf_round_t;
typedef struct {
    char name[24];          /* the named format, "" for a bare ExMy */
    int exp_bits, man_bits, bits, bias, emin;
    qs_mf_conv_t conv;
    double max;             /* largest finite magnitude */
    double min_sub;         /* smallest subnormal */
} qs_mf_t;
/* E in 1..8, M in 0..23 (IEEE-like needs E >= 2). */
int qs_mf_init(qs_mf_t *f, int exp_bits, int man_bits, qs_mf_conv_t conv);
/* fp32, fp16, bf16, fp8-e4m3, fp8-e5m2, fp8-e4m3fnuz, fp8-e5m2fnuz, fp6-e3m2, fp6-e2m3, fp4-e2m1. */
int qs_mf_named(const char *name, qs_mf_t *f);
double qs_mf_decode(const qs_mf_t *f, uint32_t code);
/* x as a code: rounded (u in [0, 1) draws stochastic rounding), overflow
 * saturating or by the format's rule; *overflowed (may be NULL) says
 * whether the rounded magnitude exceeded the largest finite value. */
uint32_t qs_mf_encode(const qs_mf_t *f, double x, qs_mf_round_t mode, double u, bool saturate, bool *overflowed);
double qs_mf_round(const qs_mf_t *f, double x, qs_mf_round_t mode, double u, bool saturate);
uint32_t qs_mf_nan(const qs_mf_t *f);
/* The named format with these parameters ("fp8-e4m3"), or NULL. */
const char *qs_mf_name_of(int exp_bits, int man_bits, qs_mf_conv_t conv); /* the format's NaN code (0 for finite-only formats) */

/* ---- the quantizer ----------------------------------------------------------- */

/* Grid families (docs/arithmetic.md, "Grids"; docs/spec.md, "grid"). */
typedef enum {
    QS_GRID_UNIFORM = 0, /* integer affine grid */
    QS_GRID_LS1,         /* ls-1: least-squares binary, v·sign(x) */
    QS_GRID_LS2,         /* ls-2: optimal 2-bit sign basis ±(v1 ± v2) */
    QS_GRID_LST,         /* ls-t: optimal ternary {−v, 0, v} */
    QS_GRID_GF,          /* gf-k: k greedy sign bases */
    QS_GRID_POT,         /* pot: α·{0, ±2^−j} */
    QS_GRID_APOT,        /* apot: additive powers of two (Li et al. 2020) */
    QS_GRID_KMEANS,      /* kmeans: 2^b levels, optimal 1-D k-means */
    QS_GRID_LLOYD,       /* lloyd: 2^b levels by Lloyd-Max iterations */
    QS_GRID_FLOAT,       /* a minifloat ExMy behind a per-slice scale */
    QS_GRID_MX,          /* OCP Microscaling float elements, E8M0 block scale */
    QS_GRID_NVFP4,       /* E2M1 elements, E4M3 block scale, float32 tensor scale */
    QS_GRID_BFP,         /* block floating point: signed integer elements, shared exponent (mxint8) */
    QS_GRID_COUNT
} qs_grid_t;

/* How a block's shared scale is chosen: the OCP MX rule, 2^(floor(log2 amax) − emax)
 * (may clip the block maximum), or the smallest scale that never clips it. */
typedef enum { QS_BLOCK_FLOOR = 0, QS_BLOCK_UP } qs_block_rule_t;

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

/* format: float grids only, the format's own overflow (Inf, NaN or saturation, see qs_mf_encode). */
typedef enum { QS_OVERFLOW_SATURATE = 0, QS_OVERFLOW_WRAP, QS_OVERFLOW_FORMAT } qs_overflow_t;
typedef enum { QS_SCALE_FLOAT = 0, QS_SCALE_POW2, QS_SCALE_FP16, QS_SCALE_BF16, QS_SCALE_E8M0, QS_SCALE_NONE, QS_SCALE_COUNT } qs_scale_type_t;
/* none: the scale is 1 (a plain cast for float grids). */
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
    /* grid parameters, set by the grid name (zero for uniform) */
    int grid_k;             /* gf-k: rounds; bfp: shared-exponent bits */
    int fexp, fman;         /* float, mx, nvfp4: the element format ExMy */
    qs_mf_conv_t fconv;
    int64_t block;          /* block grids: elements per block */
    int block_axis;         /* block grids: the axis blocks run along (negative counts from the end) */
    qs_block_rule_t block_rule;
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
    float *scale;       /* codebook grids: the grid's scale (α, v, v1); nvfp4: the float32 tensor scale */
    int32_t *zero_point;
    int nlevels;        /* codebook grids: levels per slice (0 otherwise) */
    float *levels;      /* [count][nlevels], ascending: the code of a value is its level's index */
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
/* Element by element, the same arithmetic (the reference the kernels are tested against), for the uniform
 * grid. index is the element's flat index (stochastic rounding). *clipped may be NULL. */
int32_t qs_quantize_one(const qs_quantizer_t *q, float x, float scale, int32_t zero_point, uint64_t index,
                        bool *clipped);
float qs_dequantize_one(float scale, int32_t zero_point, int32_t code);

/* ---- accumulators (quant/acc.c, docs/arithmetic.md "Accumulators") ------------------------------ */

typedef enum { QS_ACC_INT = 0, QS_ACC_FLOAT } qs_acc_kind_t;
typedef enum { QS_ACC_WRAP = 0, QS_ACC_SATURATE, QS_ACC_EXACT } qs_acc_overflow_t;
typedef enum { QS_ZP_SUBTRACT = 0, QS_ZP_EXPAND } qs_zp_form_t;

/* The register that sums a dot product's terms. Integer: two's complement of
 * `bits` (2..64) with an overflow rule; with chunk > 0 the products are
 * summed C at a time in an inner register (chunk_bits, chunk_overflow), and
 * each chunk sum is added to the outer one. Float: ExMy (IEEE-like: bias
 * 2^(E-1)-1, subnormals, overflow to ±Inf; E 2..8, M 1..23), every addition
 * rounded to nearest-even; with promote = N > 0 the ExMy partial sum is
 * added to a float32 accumulator every N products and restarts at zero. */
typedef struct {
    qs_acc_kind_t kind;
    int bits;
    qs_acc_overflow_t overflow;
    int chunk;
    int chunk_bits;
    qs_acc_overflow_t chunk_overflow;
    qs_zp_form_t zp_form;
    int exp_bits, man_bits; /* float */
    int promote;            /* float */
} qs_acc_t;

/* acc=int32,overflow=wrap,zp-form=subtract (no chunks). */
void qs_acc_default(qs_acc_t *a);
int qs_acc_validate(const qs_acc_t *a);
/* Words of the accumulator grammar (docs/spec.md, "Accumulators") on top of *a;
 * a bad spec leaves *a unchanged and the error lists the expected values. */
int qs_acc_parse(const char *spec, const char *what, qs_acc_t *a);
char *qs_acc_str(const qs_acc_t *a, char *buf, size_t n);

/* The width-W register: acc + t under the overflow rule (exact: no limit).
 * *overflowed (may be NULL) is set when the exact sum left the range. */
int64_t qs_acc_add(int64_t acc, int64_t t, int bits, qs_acc_overflow_t ov, bool *overflowed);
/* v rounded to the IEEE-like ExMy (nearest-even; overflow to ±Inf): qs_mf_round on QS_MF_IEEE. */
double qs_minifloat_round(double v, int exp_bits, int man_bits);

/* ---- least-squares sign-basis grids (quant/lsq.c) ---- */

typedef enum { QS_LSQ_1 = 0, QS_LSQ_GF, QS_LSQ_2, QS_LSQ_T } qs_lsq_kind_t; /* ls-1, gf-k, ls-2, ls-t */
#define QS_LSQ_MAX_BASIS 8
typedef struct {
    qs_lsq_kind_t kind;
    int nbasis;
    double v[QS_LSQ_MAX_BASIS]; /* ls-1/gf-k: the scales of the sign bases; ls-2: v1 >= v2 >= 0
                                 * (levels ±(v1 ± v2)); ls-t: v (levels 0, ±v) */
} qs_lsq_grid_t;
/* The least-squares grid of kind (k: rounds of gf-k) for x[0..n), one slice. */
int qs_lsq_fit(qs_lsq_kind_t kind, int k, const float *x, int64_t n, qs_lsq_grid_t *g);
double qs_lsq_quantize(const qs_lsq_grid_t *g, double x); /* the nearest level (ties: the smaller magnitude) */
double qs_lsq_mse(const qs_lsq_grid_t *g, const float *x, int64_t n);

/* ---- grids (quant/grid.c, quant/codebook.c, quant/nonuniform.c; docs/arithmetic.md "Grids") ---- */

/* Levels per slice of a codebook grid (ls-*, gf-k, pot, apot, kmeans, lloyd), 0 for the others. */
int qs_grid_levels(const qs_quantizer_t *q);
bool qs_grid_is_codebook(qs_grid_t g);
bool qs_grid_is_block(qs_grid_t g);
bool qs_grid_is_float(qs_grid_t g); /* float, mx, nvfp4 */
/* Whether bits is the user's choice (uniform, pot, apot, kmeans, lloyd, bfp) or the grid's own. */
bool qs_grid_takes_bits(qs_grid_t g);
/* The grid's name as the spec writes it ("uniform", "ls-2", "gf-3", "fp8-e4m3", "e3m4", "mxfp4", "bfp-8", ...). */
char *qs_grid_name(const qs_quantizer_t *q, char *buf, size_t n);
/* Bits of side information per element for data of `elements` values in
 * `slices` slices: scales and zero points (32 bits each unless a block
 * scale), level tables, block scales and the nvfp4 tensor scale. */
double qs_grid_overhead_bits(const qs_quantizer_t *q, int64_t elements, int64_t slices);
/* NULL if the integer engine executes q's weights (uniform, ls-1 = gf-1, ls-t),
 * else why it cannot. */
const char *qs_grid_int_reason(const qs_quantizer_t *q);
/* The integer weight of a sign-basis code whose grid has one scale (ls-1, gf-1: 2c − 1; ls-t: c − 1), or
 * INT32_MIN for other grids. */
int32_t qs_grid_sign_weight(const qs_quantizer_t *q, int32_t code);
/* pot and apot: the unit levels (ascending, largest 1) for `bits` bits, signed
 * (one sign bit) or unsigned; returns their count, or an error below 0. */
int qs_log_levels(qs_grid_t g, int bits, bool is_unsigned, double *lv, int max);
/* The index of the level of sorted levels[0..m) nearest to x; exactly between
 * two levels, the smaller magnitude (the positive one when equal). NaN: the level nearest 0. */
int qs_codebook_index(const float *levels, int m, float x);
/* Optimal 1-D k-means of x[0..n) into k levels (exact dynamic programming
 * over the distinct values, divide and conquer: O(k·m·log m) for m distinct
 * values); levels ascending, repeated at the top when fewer than k values are distinct. */
int qs_kmeans_fit(const float *x, int64_t n, int k, double *levels);
/* Lloyd-Max iterations from init (NULL: k levels evenly over [min, max]) until
 * no level moves (at most 1000 rounds); levels ascending. */
int qs_lloyd_fit(const float *x, int64_t n, int k, const double *init, double *levels);
/* Σ (x − nearest level)² over x[0..n). */
double qs_codebook_sse(const double *levels, int k, const float *x, int64_t n);

/* What one dot product did. */
typedef struct {
    int64_t value;        /* the accumulator (float accumulators: their integral value, ±Inf as
                           * INT64_MAX/INT64_MIN, NaN as 0) */
    double fvalue;        /* float accumulators: the value itself; integer: (double)value */
    int64_t events;       /* additions whose exact result left the register (inner or outer) */
    int64_t max_abs;      /* largest |exact partial sum| of the term sequence */
    int64_t exact;        /* the exact sum */
} qs_acc_result_t;

/* Σ_k (x_k - zx)(w_k - zw) + bias in the accumulator, in the documented order
 * (docs/arithmetic.md, "Accumulation order"): subtract form, the products of
 * k = 0..n-1, then the bias; expand form, the products x_k·w_k, then
 * -zw·Σx, -zx·Σw, n·zx·zw, then the bias, each correction one term.
 * x and w step by xs and ws elements. */
void qs_acc_dot(const qs_acc_t *a, const int32_t *x, int64_t xs, const int32_t *w, int64_t ws, int64_t n,
                int32_t zx, int32_t zw, int64_t bias, qs_acc_result_t *r);
/* Adds a sequence of terms (a sum that is no dot product: pooling); chunks
 * and promotion apply as for products. */
void qs_acc_sum(const qs_acc_t *a, const int64_t *t, int64_t n, qs_acc_result_t *r);
/* Bits a signed register needs for every value in [-m, m] (m >= 0): 1 for 0. */
int qs_acc_bits_for(int64_t m);

/* Guaranteed widths of a K-term dot product (DESIGN, docs/arithmetic.md
 * "Guaranteed widths"): over the data type (b_x-bit inputs, b_w-bit signed
 * weights), by the A2Q bound on the channel's ‖q_w‖₁, and by the A2Q+ bound. */
int qs_acc_width_datatype(int64_t k, int bx, int bw, bool x_signed);
int qs_acc_width_a2q(int64_t l1, int bx, bool x_signed);
int qs_acc_width_a2qplus(int64_t l1, int bx);

/* ---- requantization (quant/requant.c, docs/arithmetic.md "Requantization") ------------------------- */

typedef enum { QS_RQ_FLOAT64 = 0, QS_RQ_FLOAT32, QS_RQ_FIXED, QS_RQ_SHIFT, QS_RQ_COUNT } qs_rq_kind_t;
typedef enum { QS_RQ_CUSTOM = 0, QS_RQ_GEMMLOWP, QS_RQ_QNNPACK, QS_RQ_ONEDNN } qs_rq_preset_t;

typedef struct {
    qs_rq_kind_t kind;
    qs_rq_preset_t preset;   /* the library reproduced, or custom */
    qs_round_mode_t round;   /* the final rounding (deterministic modes) */
    bool single;             /* fixed-point: one rounding (TFLITE_SINGLE_ROUNDING) instead of two */
    bool reciprocal;         /* float32: M = fl32(fl32(s_w·s_x)·fl32(1/s_y)) */
    bool float_bias;         /* float32: the float bias, in accumulator units, added in float32 */
    bool zp_before;          /* float32: z_y added in float32 before rounding */
} qs_requant_t;

/* requant=float64 (round=nearest-even). */
void qs_requant_default(qs_requant_t *r);
int qs_requant_parse(const char *spec, const char *what, qs_requant_t *r);
char *qs_requant_str(const qs_requant_t *r, char *buf, size_t n);

/* TFLite QuantizeMultiplier: m = M0·2^(shift-31), M0 in [2^30, 2^31) (0 when
 * m is 0 or below 2^-32: flushed); single rounding caps shift at 30. */
void qs_quantize_multiplier(double m, bool single, int32_t *m0, int *shift);
/* gemmlowp SaturatingRoundingDoublingHighMul and RoundingDivideByPOT. */
int32_t qs_srdhm(int32_t a, int32_t b);
int32_t qs_rdbpot(int32_t x, int e);
/* round(v / 2^e) by a deterministic mode, exactly (e 0..126). */
int64_t qs_round_shift(__int128 v, int e, qs_round_mode_t m);

/* One output channel's requantization, prepared once. */
typedef struct {
    const qs_requant_t *r;
    double m64;        /* s_w·s_x / s_y in float64 */
    float m32;         /* float32 multiplier */
    float bias_mul;    /* onednn: fl32(1 / fl32(s_w·s_x)), the float bias to accumulator units */
    int32_t m0;        /* fixed-point */
    int shift;         /* fixed-point: M0·2^(shift-31); shift: M = 2^shift */
    int32_t zp, qmin, qmax;
} qs_rq_channel_t;

/* Prepares a channel: scales s_x, s_w (its channel's), s_y, the output zero
 * point and code range. Errors on non-positive or non-finite scales. */
int qs_requant_channel(const qs_requant_t *r, float s_x, float s_w, float s_y, int32_t zp, int32_t qmin,
                       int32_t qmax, qs_rq_channel_t *c);
/* The output code of an accumulator (which holds the int32 bias, except with
 * float_bias, when fbias is the float bias added as the preset defines). */
int32_t qs_requant_apply(const qs_rq_channel_t *c, int64_t acc, float fbias);

#ifdef __cplusplus
}
#endif
#endif
