/* sim/lowrank.h — low-rank factorization of conv2d/linear layers: a layer
 * replaced by two whose composition is its best rank-r approximation
 * (truncated SVD, Eckart–Young), the second step of a run's transform order
 * (prune → low-rank → equalization → BN folding → ...).
 *
 * A factorized layer L becomes two nodes, in this order:
 *  - "L.lr1" (or "L.lrK" with the smallest K >= 2 whose name is free, when
 *    factorizing a graph already factorized): the first factor, no bias;
 *  - "L": the second factor, with L's bias; it keeps L's name so that later
 *    references, per-layer overrides and the aliases first/last still work,
 *    and a batchnorm that read L reads it.
 *
 * Splits (W the layer's weight, times its pruning mask when it has one; the
 * new nodes have no mask):
 *  - channel (conv2d and linear): W as the matrix [O, I·kh·kw] = U Σ Vᵀ.
 *    First: a kh×kw conv I → r with L's stride, padding and dilation, weight
 *    (Σ^½ Vᵀ)[0..r) as [r, I, kh, kw]; second: a 1×1 conv r → O (stride 1,
 *    no padding) with weight U[:, 0..r) Σ^½. A linear becomes linears
 *    [r, in] and [out, r].
 *  - spatial (conv2d with kh > 1 and kw > 1): W[o, i, y, x] as the matrix
 *    M[(i, y), (o, x)] of shape [I·kh, O·kw] = U Σ Vᵀ. First: a kh×1 conv
 *    I → r, stride (sh, 1), padding (top, 0, bottom, 0), dilation (dh, 1),
 *    weight A[r, i, y, 0] = (U Σ^½)[(i, y), r]; second: a 1×kw conv r → O,
 *    stride (1, sw), padding (0, left, 0, right), dilation (1, dw), weight
 *    B[o, r, 0, x] = (Σ^½ Vᵀ)[r, (o, x)]. Padding and stride act on separate
 *    axes, so the composition is exact at full rank.
 * The SVD is one-sided Jacobi (GSL) in double; factors are stored as float32.
 *
 * Rank (full = min of the matrix's sides):
 *  - ratio R in (0, 1]: r = max(1, ceil(R·full − 1e-9)) (the 1e-9 keeps a
 *    product such as 0.07·100 = 7.000000000000001 at 7);
 *  - energy E in [0, 1): the smallest r >= 1 whose discarded energy
 *    Σ_{i>r} σ_i² / Σ σ_i² is <= E (a zero weight: r = 1).
 *
 * Layers: every conv2d/linear with groups == 1 (or those named in `layers`).
 * Left whole and reported with the reason: depthwise and grouped convs; for
 * the spatial split, linears and kernels without both sides > 1; unless
 * `force` is set, layers whose factorization would not lower their MACs
 * ("rank r keeps X% of the MACs"). */
#ifndef QS_SIM_LOWRANK_H
#define QS_SIM_LOWRANK_H

#include "sim/sim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { QS_LOWRANK_CHANNEL = 0, QS_LOWRANK_SPATIAL, QS_LOWRANK_COUNT } qs_lowrank_kind_t;

const char *qs_lowrank_kind_name(qs_lowrank_kind_t k); /* "channel", "spatial" */
/* "channel" or "spatial"; what prefixes the message. */
int qs_lowrank_kind_parse(const char *name, const char *what, qs_lowrank_kind_t *k);

typedef struct {
    qs_lowrank_kind_t kind;
    double ratio;       /* the kept rank as a fraction of full rank, in (0, 1]; NaN: unset */
    double energy;      /* the largest discarded energy fraction, in [0, 1); NaN: unset */
    const char *layers; /* comma-separated node names (conv2d/linear) to factorize; NULL or "": all */
    bool force;         /* factorize even where the MACs would not go down (default false: such layers are skipped) */
} qs_lowrank_opts_t;

/* kind channel, ratio and energy unset (NaN: exactly one must be set), all layers, force off. */
void qs_lowrank_opts_default(qs_lowrank_opts_t *o);

#define QS_LOWRANK_MAX_REPORT 256
#define QS_LOWRANK_WHY_MAX 96
typedef struct {
    char name[QS_NAME_MAX];       /* the layer (the second factor's name in the new graph) */
    qs_op_t op;
    qs_lowrank_kind_t kind;
    bool factorized;
    char skipped[QS_LOWRANK_WHY_MAX]; /* why the layer was left whole; "" when factorized */
    int64_t full_rank, rank;      /* 0 when no rank was chosen (depthwise, ...) */
    double discarded;             /* Σ_{i>r} σ_i² / Σ σ_i² at the chosen rank */
    int64_t macs_before, macs_after;     /* per sample; after = before when left whole */
    int64_t params_before, params_after; /* weight + bias */
} qs_lowrank_layer_t;

typedef struct {
    int factorized, skipped;
    int64_t macs_before, macs_after;     /* the whole graph, per sample */
    int64_t params_before, params_after; /* the whole graph (qs_graph_params) */
    int nlayers;                         /* every selected conv2d/linear, in graph order */
    qs_lowrank_layer_t layer[QS_LOWRANK_MAX_REPORT];
} qs_lowrank_report_t;

/* Checks o: exactly one of ratio/energy set and in range, a known kind; errors name the option. */
int qs_lowrank_check(const qs_lowrank_opts_t *o);
/* The rank o chooses for singular values s[0..k) (descending); *discarded (may be NULL) gets the
 * discarded energy fraction. o must pass qs_lowrank_check. */
int64_t qs_lowrank_rank(const double *s, int64_t k, const qs_lowrank_opts_t *o, double *discarded);
/* A copy of g with the selected layers factorized, checked by qs_graph_infer; rep may be NULL. */
int qs_graph_lowrank(const qs_graph_t *g, const qs_lowrank_opts_t *o, qs_graph_t **out, qs_lowrank_report_t *rep);

#ifdef __cplusplus
}
#endif
#endif
