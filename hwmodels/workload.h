/* hwmodels/workload.h — the workload: what one run of a network asks of
 * hardware (DESIGN, "Contracts between modules"). sim/ builds it from a
 * network and its quantization (qs_qnet_workload); hwmodels/ prices it
 * (qs_hw_cost). It depends on nothing but the C library, so that the two
 * modules meet here and nowhere else. All counts are per sample (one
 * inference); the cost model multiplies by the batch where it matters. */
#ifndef QS_WORKLOAD_H
#define QS_WORKLOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QS_WL_NAME_MAX 64
#define QS_WL_FORMAT_MAX 24

/* The operand format of a tensor as hardware sees it: a name in the format
 * vocabulary of docs/targets.md ("int8", "int4", "binary", "fp32", "fp16",
 * "bf16", "fp8-e4m3", "mxfp4", ...) and the bits one element occupies. */
typedef struct {
    char name[QS_WL_FORMAT_MAX];
    int bits;
    bool is_signed;   /* integer formats: codes below zero exist */
    bool asymmetric;  /* a non-zero zero point */
    char grid[QS_WL_FORMAT_MAX]; /* the quantizer's grid ("uniform", "ls-2", "kmeans", "mxfp4", ...; "" in float) */
    int grid_bits;    /* the grid's bits per element (a codebook's index width) */
} qs_wl_format_t;

typedef enum { QS_WL_SPARSE_NONE = 0, QS_WL_SPARSE_UNSTRUCTURED, QS_WL_SPARSE_NM } qs_wl_sparsity_kind_t;

typedef enum {
    QS_WL_GRAN_TENSOR = 0,
    QS_WL_GRAN_CHANNEL,
    QS_WL_GRAN_GROUP
} qs_wl_gran_t;

/* One layer: a conv2d or linear (MACs), or an elementwise/pooling op whose
 * cost is its `ops` (additions, comparisons) and its memory traffic. */
typedef struct {
    char name[QS_WL_NAME_MAX];
    char op[16];                 /* "conv2d", "linear", "add", "concat", "maxpool", "avgpool", "gap" */
    int64_t c_in, h_in, w_in, c_out, h_out, w_out;
    int kh, kw, stride_h, stride_w, groups;
    int64_t macs;                /* multiply-accumulates (conv2d, linear) */
    int64_t k;                   /* terms of one dot product (reduction length) */
    int64_t ops;                 /* other operations: additions of add/avgpool/gap, comparisons of maxpool */
    qs_wl_format_t w, x, y;      /* weights (name "" when none), input activations, output activations */
    int bias_bits;               /* 0: no bias */
    qs_wl_gran_t w_gran;
    int64_t w_group;             /* per-group: elements sharing a scale */
    int64_t scale_bytes;         /* the weights' scales and zero points as stored */
    int acc_bits;                /* accumulator register width: the integer engine's when a run sets one
                                  * (--acc), else 0 = the native accumulator of the unit that runs it */
    qs_wl_sparsity_kind_t sparsity;
    double density;              /* fraction of weights kept (1 when dense) */
    int sparse_n, sparse_m;      /* N:M: N kept in every M along the reduction dimension */
    int64_t w_elems, b_elems, x_elems, y_elems; /* tensor sizes in elements (x: every input together) */
    bool x_from_input;           /* the input is the network input (read from memory, not produced on chip) */
    bool y_is_output;            /* the output is the network output */
} qs_wl_layer_t;

typedef struct {
    char model[QS_WL_NAME_MAX];
    int nlayers;
    qs_wl_layer_t *layer;
} qs_workload_t;

static inline qs_workload_t *qs_workload_alloc(int nlayers)
{
    qs_workload_t *w = (qs_workload_t *)calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->layer = (qs_wl_layer_t *)calloc(nlayers > 0 ? (size_t)nlayers : 1, sizeof *w->layer);
    if (!w->layer) {
        free(w);
        return NULL;
    }
    w->nlayers = nlayers;
    return w;
}

static inline void qs_workload_free(qs_workload_t *w)
{
    if (w)
        free(w->layer);
    free(w);
}

#ifdef __cplusplus
}
#endif
#endif
