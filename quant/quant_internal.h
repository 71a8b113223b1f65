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

/* Fills the layout; errors on an axis out of range or a group size < 1. */
int qs_qlayout(const qs_quantizer_t *q, int ndim, const int64_t *shape, qs_qlayout_t *out);

/* Statistics of a run, added to (not reset). */
typedef struct {
    int64_t clipped, nonfinite;
    double sse, signal, max_abs_err;
} qs_runstats_t;

/* The kernel: quantizes n contiguous values x[0..n) with one (scale, zp).
 * Writes codes and/or y (either may be NULL; y may alias x). index0 is the
 * flat index of x[0] (stochastic rounding). st may be NULL. */
void qs_quant_run(const qs_quantizer_t *q, float scale, int32_t zp, const float *x, int32_t *codes, float *y,
                  int64_t n, uint64_t index0, qs_runstats_t *st);

/* Sum of squared errors of quantizing x[0..n) with (scale, zp), rounding
 * included (what the mse range setter minimises). */
double qs_quant_sse(const qs_quantizer_t *q, float scale, int32_t zp, const float *x, int64_t n);

#endif
