/* quant/quant_internal.h — what the files of quant/ share and tests may use:
 * the slice layout of a granularity, the contiguous-run kernel every
 * quantize path goes through, and the range-setter internals. */
#ifndef QS_QUANT_INTERNAL_H
#define QS_QUANT_INTERNAL_H

#include "quant/quant.h"

/* A tensor seen as [outer, len, inner] around the granularity's axis
 * (per tensor: outer = inner = 1, len = size). Element (o, a, i) uses
 * parameter index
 *   tensor:  0
 *   channel: a
 *   group:   (o * ngroups + a / group) * inner + i */
typedef struct {
    int64_t outer, len, inner;
    int64_t group;   /* group size (len for channel/tensor) */
    int64_t ngroups; /* ceil(len / group) */
    int64_t nparams;
} qs_qlayout_t;

/* "WHAT: key 'KEY': unknown value 'VALUE', expected one of: A, B, ..." (forms: NULL-terminated);
 * the message of every spec parser (quant/spec.c). */
int qs_spec_bad_value(const char *what, const char *key, const char *value, const char *const *forms);

/* Fills the layout; errors on an axis out of range or a group size < 1. */
int qs_qlayout(const qs_quantizer_t *q, int ndim, const int64_t *shape, qs_qlayout_t *out);

/* Statistics of a run, added to (not reset). */
struct qs_hist;
typedef struct qs_runstats qs_runstats_t;
struct qs_runstats {
    int64_t clipped, nonfinite;
    double sse, signal, max_abs_err;
};

/* The kernel: quantizes n contiguous values x[0..n) with one (scale, zp).
 * Writes codes and/or y (either may be NULL; y may alias x). index0 is the
 * flat index of x[0] (stochastic rounding). st may be NULL. */
void qs_quant_run(const qs_quantizer_t *q, float scale, int32_t zp, const float *x, int32_t *codes, float *y,
                  int64_t n, uint64_t index0, qs_runstats_t *st);

/* Sum of squared errors of quantizing x[0..n) with (scale, zp), rounding
 * included (what the mse range setter minimises). */
double qs_quant_sse(const qs_quantizer_t *q, float scale, int32_t zp, const float *x, int64_t n);


/* ==== grids (quant/grid.c, quant/nonuniform.c) ==== */

/* The element format of a float, mx or nvfp4 grid. */
int qs_grid_format(const qs_quantizer_t *q, qs_mf_t *f);
/* Reads a grid name into q (grid, its parameters, fixed bits, default block). */
int qs_grid_parse(qs_quantizer_t *q, const char *value, const char *what);
/* The block key: SIZE, AXIS:SIZE or AXIS:SIZE:RULE. */
int qs_block_parse(qs_quantizer_t *q, const char *value, const char *what);
/* The non-uniform part of qs_quantizer_validate. */
int qs_grid_validate(const qs_quantizer_t *q);
/* Whether an observer of q keeps the values (fitted grids and range=mse). */
bool qs_grid_wants_store(const qs_quantizer_t *q);
/* One slice's parameters: the scale and (codebook grids) its nlevels levels, from the
 * slice's values (x[0..n), when kept), extremes and histogram (percentile, or NULL). */
int qs_grid_fit_slice(const qs_quantizer_t *q, const float *x, int64_t n, double mn, double mx,
                      const struct qs_hist *h, float *scale, float *levels);

/* qs_quantize and qs_dequantize of the non-uniform grids (checked arguments; codes, y may be NULL). */
int qs_grid_quantize(const qs_quantizer_t *q, const qs_qparams_t *p, const qs_tensor_t *x, int32_t *codes,
                     float *y, qs_runstats_t *st);
int qs_grid_dequantize(const qs_quantizer_t *q, const qs_qparams_t *p, const qs_tensor_t *codes, float *y);

/* ==== range setting internals (quant/range.c, quant/histogram.c) ==========
 * Appended by the range-setting part; the definitions are in
 * docs/arithmetic.md, "Range setting". Each per-slice setter returns the real
 * range it chose, as handed to qs_qparams_from_range: [-T, T] for the
 * symmetric schemes, [0, T] for unsigned, a pair (lo, hi) for asymmetric. */

#define QS_HIST_BINS 2048

typedef enum {
    QS_HIST_ABS = 0, /* |x| over [0, 2048 w): symmetric schemes, and kl */
    QS_HIST_POS,     /* max(x, 0) over [0, 2048 w): the unsigned scheme */
    QS_HIST_SIGNED   /* x over [lo, lo + 2048 w): asymmetric percentile and sqnr */
} qs_hist_kind_t;

/* One slice's histogram. The range is set by the first values added and
 * doubles (merging pairs of bins, exact for counts) when later values fall
 * beyond it. */
typedef struct qs_hist {
    qs_hist_kind_t kind;
    double lo;     /* lower edge of bin 0 (0 unless signed) */
    double width;  /* bin width; 0 while every value seen equals lo */
    int64_t total; /* values counted */
    uint64_t count[QS_HIST_BINS];
} qs_hist_t;

/* The histogram kind q's range method keeps. */
qs_hist_kind_t qs_hist_kind_for(const qs_quantizer_t *q);
void qs_hist_init(qs_hist_t *h, qs_hist_kind_t kind);
/* Adds n finite values (folded as the kind says). */
void qs_hist_add(qs_hist_t *h, const float *x, int64_t n);
double qs_hist_mid(const qs_hist_t *h, int k); /* midpoint of bin k */

/* Per-slice range setters; mn and mx are the slice's exact extremes. */
int qs_range_minmax(const qs_quantizer_t *q, double mn, double mx, double *lo, double *hi);
/* x[0..n) are the slice's values (or its documented subsample); the pool may be NULL. */
int qs_range_mse(const qs_quantizer_t *q, const float *x, int64_t n, double mn, double mx, qs_pool_t *pool,
                 double *lo, double *hi);
int qs_range_percentile(const qs_quantizer_t *q, const qs_hist_t *h, double mn, double mx, double *lo, double *hi);
int qs_range_sqnr(const qs_quantizer_t *q, const qs_hist_t *h, double mn, double mx, double *lo, double *hi);
int qs_range_kl(const qs_quantizer_t *q, const qs_hist_t *h, double mn, double mx, double *lo, double *hi);
/* spread: mean |x - mean| (Laplace) or the standard deviation (Gauss). */
int qs_range_aciq(const qs_quantizer_t *q, double mean, double spread, double mn, double mx, double *lo, double *hi);
/* The alpha/spread ratio minimising Banner et al.'s expected MSE for M bits
 * (solved numerically), and the ratio quasar uses (the published constants for
 * 2, 3 and 4 bits, the solved ones otherwise). */
double qs_aciq_solve(qs_aciq_dist_t d, int bits);
double qs_aciq_ratio(qs_aciq_dist_t d, int bits);
/* The number of quantization levels kl merges the histogram into. */
int64_t qs_kl_levels(const qs_quantizer_t *q, double mn, double mx);

/* Values an mse or aciq:laplace observer keeps per slice at most: the larger of
 * QS_STORE_CAP / slices and QS_STORE_MIN; beyond it a stride subsample. */
#define QS_STORE_CAP ((int64_t)1 << 24)
#define QS_STORE_MIN ((int64_t)4096)
/* From this many values on, mse evaluates its candidates on the sorted values
 * (runs of equal codes) unless the rounding is stochastic, overflow wraps or
 * qmax - qmin >= n / 8. */
#define QS_MSE_SORTED_MIN ((int64_t)4096)
/* That path's squared error of sorted x[0..n) (deterministic rounding, saturation). */
double qs_mse_sse_sorted(const qs_quantizer_t *q, float s, int32_t z, const float *xs, int64_t n);

/* For tests: a smaller per-slice store cap, and the values a slice keeps. */
void qs_observer_set_store_cap(qs_observer_t *o, int64_t cap);
int64_t qs_observer_values(const qs_observer_t *o, int64_t slice, const float **values);

#endif
