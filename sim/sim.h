/* sim/sim.h — networks: the graph of named nodes, model files, datasets and
 * the float engine (the reference every quantized engine is compared with).
 *
 * Layouts (DESIGN, "Contracts between modules"): activations NCHW; conv
 * weights OIHW with I = input channels per group; linear weights [out, in].
 * A node's output shape is per sample: (C, H, W) for feature maps, (F) after
 * flatten/linear. */
#ifndef QS_SIM_H
#define QS_SIM_H

#include "core/core.h"
#include "quant/quant.h"
#include "hwmodels/workload.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the graph ------------------------------------------------------------------ */

typedef enum {
    QS_OP_INPUT = 0,  /* the network input, always node 0 */
    QS_OP_CONV2D,     /* stride, padding, dilation, groups (depthwise: groups = C_in = C_out) */
    QS_OP_LINEAR,     /* on a (F) input, or on (C,1,1) */
    QS_OP_BATCHNORM,  /* y = gamma (x - mean) / sqrt(var + eps) + beta, per channel */
    QS_OP_RELU,
    QS_OP_RELU6,
    QS_OP_CLIP,       /* clamp to [clip_min, clip_max] */
    QS_OP_ADD,        /* elementwise sum of 2+ inputs of one shape */
    QS_OP_CONCAT,     /* along channels */
    QS_OP_MAXPOOL,    /* kh x kw window, stride, padding (padding never wins a max) */
    QS_OP_AVGPOOL,    /* divides by the window area inside the input (padding not counted) */
    QS_OP_GAP,        /* global average pool: (C,H,W) -> (C,1,1) */
    QS_OP_FLATTEN,    /* (C,H,W) -> (C*H*W) */
    QS_OP_RESHAPE,    /* to reshape[0..reshape_ndim), same element count */
    QS_OP_SOFTMAX,    /* over the features of a (F) input */
    QS_OP_COUNT
} qs_op_t;

const char *qs_op_name(qs_op_t op); /* "conv2d", "linear", "batchnorm", ... (the model-file names) */
int qs_op_parse(const char *name, qs_op_t *op);

#define QS_NAME_MAX 64
#define QS_MAX_INPUTS 8

typedef struct {
    char name[QS_NAME_MAX];
    qs_op_t op;
    int ninputs;
    int inputs[QS_MAX_INPUTS]; /* indices of earlier nodes: nodes are in topological order */
    /* conv2d, maxpool, avgpool */
    int kh, kw, stride_h, stride_w;
    int pad_top, pad_left, pad_bottom, pad_right;
    int dil_h, dil_w; /* conv2d */
    int groups;       /* conv2d */
    /* clip */
    float clip_min, clip_max;
    /* batchnorm */
    float eps;
    /* reshape: the per-sample target shape */
    int reshape_ndim;
    int64_t reshape[3];
    /* parameters, owned by the graph; NULL where the op has none */
    qs_tensor_t *weight; /* conv2d [O, I/groups, kh, kw]; linear [out, in] */
    qs_tensor_t *bias;   /* conv2d/linear [O], optional */
    qs_tensor_t *gamma, *beta, *mean, *var; /* batchnorm [C] */
    qs_tensor_t *mask;   /* optional, weight's shape: 1 keeps a weight, 0 prunes it */
    /* derived by qs_graph_infer */
    int out_ndim;          /* 3 (C,H,W) or 1 (F) */
    int64_t out_shape[3];
} qs_node_t;

typedef struct {
    char name[QS_NAME_MAX];
    int nnodes, cap;
    qs_node_t *nodes;
    int output;      /* the node whose output is the network's (the last node unless set) */
    int num_classes; /* features of the output */
    /* input and its normalization: a raw image (uint8 pixels p) enters as
     * x = (p * input_scale - mean[c]) / std[c] */
    int64_t in_c, in_h, in_w;
    float input_scale; /* 1/255 for 8-bit images */
    float norm_mean[8], norm_std[8]; /* per input channel (in_c <= 8) */
} qs_graph_t;

/* An empty graph whose node 0 is the input (C, H, W); normalization
 * input_scale 1/255, mean 0, std 1 until set. */
qs_graph_t *qs_graph_create(const char *name, int64_t c, int64_t h, int64_t w);
void qs_graph_free(qs_graph_t *g);
/* Appends a copy of *node (tensors are taken over by the graph: the caller
 * must not free them); node->inputs must name earlier nodes. Returns the new
 * node's index (>= 0) or a negative status. Names must be unique. */
int qs_graph_add(qs_graph_t *g, const qs_node_t *node);
/* A node with defaults for op (stride 1, dilation 1, groups 1, eps 1e-5, ...), for building graphs in code. */
qs_node_t qs_node_init(qs_op_t op, const char *name, int ninputs, const int *inputs);
int qs_graph_find(const qs_graph_t *g, const char *name); /* index or -1 */
/* Validates every node (inputs, attributes, parameter shapes, finite
 * parameters) and computes output shapes; errors name the node and the problem. */
int qs_graph_infer(qs_graph_t *g);
qs_graph_t *qs_graph_clone(const qs_graph_t *g);
int64_t qs_graph_params(const qs_graph_t *g);         /* parameters (weights, biases, BN) */
int64_t qs_node_macs(const qs_graph_t *g, int i);     /* per sample */
int64_t qs_graph_macs(const qs_graph_t *g);           /* per sample */

/* ---- transforms ----------------------------------------------------------------------------- */

/* BatchNorm folding: a copy of g in which every batchnorm whose input is a
 * conv2d or linear read by nothing else is folded into it (W' = W·s,
 * b' = (b − mean)·s + beta, s = gamma / sqrt(var + eps) per output channel)
 * and removed. *folded (may be NULL) gets the number folded. */
int qs_graph_fold_bn(const qs_graph_t *g, qs_graph_t **out, int *folded);

/* ---- pruning (sim/prune.c, docs/compression.md) ----------------------------------------------- */

typedef enum {
    QS_PRUNE_NONE = 0,
    QS_PRUNE_MAGNITUDE,  /* per layer: the ratio of each layer's weights of smallest magnitude */
    QS_PRUNE_GLOBAL,     /* one magnitude threshold over every layer */
    QS_PRUNE_NM,         /* N:M along the reduction dimension */
    QS_PRUNE_CHANNEL_L1, /* output channels of smallest L1 norm, removed from the graph */
    QS_PRUNE_CHANNEL_L2,
    QS_PRUNE_CHANNEL_ACT, /* output channels whose values (as their readers receive them) are smallest on data */
    QS_PRUNE_COUNT
} qs_prune_method_t;

typedef struct {
    qs_prune_method_t method;
    double ratio; /* magnitude, global: fraction of weights; channel-*: of each layer's output channels */
    int n, m;     /* nm */
    const double *layer_ratio; /* magnitude, channel-*: per node (g->nnodes entries; < 0: the ratio above), or NULL */
    /* channel pruning on data (images of `data`, a seeded subset; the float engine on the unpruned graph):
     * channel-act ranks channels by the mean |value| the readers receive; refit re-solves every reader's
     * weights by least squares so that it reproduces its unpruned output from the kept channels */
    const struct qs_dataset *data;
    int64_t images;            /* default 256 */
    uint64_t seed;             /* the subset's, default 1 */
    bool refit;
} qs_prune_opts_t;

#define QS_PRUNE_MAX_REPORT 256
typedef struct {
    int node;
    int64_t before, after; /* output channels */
    const char *skipped;   /* why the layer was left whole, or NULL */
    int with;              /* pruned together with this earlier layer (their channels meet at an add), or -1 */
} qs_prune_layer_t;

typedef struct {
    int64_t weights, masked;         /* conv/linear weights after pruning, and those masked to zero */
    int64_t macs_before, macs_after; /* dense MACs per sample (channel pruning lowers them) */
    int64_t macs_nonzero;            /* MACs with a non-zero weight (masks lower them) */
    int64_t params_before, params_after;
    int nlayers;                     /* channel pruning: every conv/linear, in order */
    qs_prune_layer_t layer[QS_PRUNE_MAX_REPORT];
} qs_prune_report_t;

void qs_prune_opts_default(qs_prune_opts_t *o); /* none; nm 2:4 */
const char *qs_prune_method_name(qs_prune_method_t m);
/* "none", "magnitude", "global", "nm" or "nm:N:M", "channel-l1", "channel-l2" (the ratio is set apart). */
int qs_prune_parse(const char *spec, const char *what, qs_prune_opts_t *o);
/* Of g's conv2d/linear layers: their weights, those a mask zeroes, and the MACs with a non-zero weight. */
void qs_graph_sparsity(const qs_graph_t *g, int64_t *weights, int64_t *masked, int64_t *macs_nonzero);
/* A pruned copy of g (masks, or fewer channels), checked by qs_graph_infer; rep may be NULL. */
int qs_graph_prune(const qs_graph_t *g, const qs_prune_opts_t *o, qs_graph_t **out, qs_prune_report_t *rep);



/* ---- model files (docs/model-format.md) -------------------------------------------------- */

/* Loads and validates (qs_graph_infer) a model; a bad file is an error naming
 * the file, the node and the problem. */
int qs_model_load(const char *path, qs_graph_t **out);
/* Writes aside and renames (qs_h5_create/qs_h5_commit). */
int qs_model_save(const qs_graph_t *g, const char *path);

/* ---- datasets --------------------------------------------------------------------------------- */

typedef struct qs_dataset {
    int64_t n, c, h, w;
    uint8_t *u8;     /* raw pixels, or NULL */
    float *f32;      /* already-real images (HDF5 float32), or NULL */
    int32_t *labels; /* n labels in [0, num_classes) */
    int num_classes;
    char source[256]; /* "fashion-mnist:test" or the file name, for messages and provenance */
} qs_dataset_t;

/* Fashion-MNIST from the gzip IDX files of Debian's dataset-fashion-mnist.
 * dir NULL: $QUASAR_FASHION_MNIST, else /usr/share/datasets/fashion-mnist.
 * A missing folder is an error that says how to install the package. */
int qs_dataset_fmnist(const char *dir, bool train, qs_dataset_t **out);
/* An HDF5 dataset: /images (uint8 or float32, N x C x H x W) and /labels (N). */
int qs_dataset_h5(const char *path, qs_dataset_t **out);
/* "fmnist:train", "fmnist:test" or an .h5 path. */
int qs_dataset_open(const char *spec, qs_dataset_t **out);
void qs_dataset_free(qs_dataset_t *d);
/* count images drawn without replacement by a seeded shuffle (Philox); the
 * same (count, seed) always gives the same images in the same order. */
int qs_dataset_subset(const qs_dataset_t *d, int64_t count, uint64_t seed, qs_dataset_t **out);
/* Images idx[0..count) (or first..first+count when idx is NULL) as a float32
 * NCHW batch normalized as g says (u8: p * input_scale; then (x - mean) / std),
 * labels into labels (may be NULL). out must be [count, C, H, W]. */
int qs_dataset_batch(const qs_dataset_t *d, const qs_graph_t *g, int64_t first, const int64_t *idx, int64_t count,
                     qs_tensor_t *out, int32_t *labels);

/* ---- batchnorm re-estimation (sim/transform.c) ---- */

/* Sets every batchnorm's mean and variance (population variance) to those of its input over `images`
 * images of d (a seeded subset), one batchnorm at a time in graph order with the float engine, so each
 * sees the ones before it re-estimated: what pruning needs before its numbers mean anything.
 * *count (may be NULL) gets the number re-estimated. */
int qs_graph_bn_reestimate(qs_graph_t *g, const qs_dataset_t *d, int64_t images, uint64_t seed, qs_pool_t *pool,
                           int *count);

/* ---- the float engine -------------------------------------------------------------------------- */

typedef struct {
    qs_pool_t *pool; /* samples of a batch are split over its threads; NULL: one thread */
    bool reference;  /* the BLAS-free path whose outputs tests pin exactly */
} qs_engine_opts_t;

typedef struct qs_engine qs_engine_t;
/* Called after node i computed its output y (count samples, node's shape);
 * may modify y in place (how the fake-quant engine quantizes activations).
 * Runs on worker threads (thread: 0 .. pool threads - 1): sample0 is the
 * index of y's first sample in the batch given to qs_engine_forward. */
typedef int (*qs_engine_hook_fn)(void *ctx, int node, qs_tensor_t *y, int64_t sample0, int thread);

int qs_engine_create(const qs_graph_t *g, const qs_engine_opts_t *opts, qs_engine_t **out);
void qs_engine_free(qs_engine_t *e);
/* The hook sees every node's output (fn NULL: no hook). */
void qs_engine_set_hook(qs_engine_t *e, qs_engine_hook_fn fn, void *ctx);
/* The hook sees the outputs of the nodes i with nodes[i] (g->nnodes flags;
 * NULL: all); the other nodes keep their fusion, so a hook on a few nodes
 * costs only what it does. */
int qs_engine_set_hook_at(qs_engine_t *e, qs_engine_hook_fn fn, void *ctx, const bool *nodes);
/* x: [N, C, H, W] float32. *out: [N, num_classes], owned by the engine until
 * the next forward or free. Each sample's result does not depend on N or on
 * the pool. */
int qs_engine_forward(qs_engine_t *e, const qs_tensor_t *x, const qs_tensor_t **out);

typedef struct {
    int64_t images;
    double top1, top5; /* fractions */
    double seconds, img_s;
} qs_eval_t;
/* Evaluates g on d in batches; progress reports once per batch. */
int qs_eval(const qs_graph_t *g, const qs_dataset_t *d, const qs_engine_opts_t *opts, int64_t batch,
            qs_progress_cb_t *progress, qs_eval_t *out);

/* ---- pruning: per-layer ratio selection (sim/prune.c) ---- */

/* Per-layer ratio selection for a global MAC target, in the spirit of AIMET's greedy compression-ratio
 * selection: every prunable layer is pruned alone at each candidate ratio and evaluated (float top-1 on
 * d); then, for an accuracy threshold, each layer takes its largest candidate whose top-1 stays at or above
 * it, and the threshold is bisected (over the measured accuracies) to the highest one whose choice meets
 * the target. method: magnitude (target: MACs with a non-zero weight) or channel-l1/-l2 (dense MACs). Layers
 * tied at an add to an earlier layer are pruned with it, at its ratio, and get no curve of their own. */
#define QS_PRUNE_MAX_CANDIDATES 16
typedef struct {
    double target;                 /* the MACs to keep, as a fraction of the model's (e.g. 0.5) */
    int ncand;
    double cand[QS_PRUNE_MAX_CANDIDATES]; /* candidate ratios, ascending (default 0.1 .. 0.9) */
    qs_engine_opts_t engine;
} qs_prune_select_opts_t;
typedef struct {
    int nlayers;
    int node[QS_PRUNE_MAX_REPORT];
    double ratio[QS_PRUNE_MAX_REPORT];                              /* chosen */
    double top1[QS_PRUNE_MAX_REPORT][QS_PRUNE_MAX_CANDIDATES + 1];  /* [0]: unpruned; [1 + c]: candidate c */
    double macs[QS_PRUNE_MAX_REPORT][QS_PRUNE_MAX_CANDIDATES + 1];  /* the model's MACs with only this layer pruned */
    double threshold;        /* the accuracy threshold chosen */
    double macs_fraction;    /* the choice's MACs over the model's */
    bool met;                /* the target is reached (false: the most aggressive choice is returned) */
    int evaluations;
} qs_prune_select_t;
void qs_prune_select_opts_default(qs_prune_select_opts_t *o);
int qs_prune_select(const qs_graph_t *g, qs_prune_method_t method, const qs_dataset_t *d,
                    const qs_prune_select_opts_t *o, qs_prune_select_t *out);

/* ---- network quantization (docs/quantization.md) ---------------------------------------------- */

/* A network's quantization (DESIGN, "Contracts"): a quantizer for the weights
 * of every conv2d/linear, one for the activations at every quantization
 * point, one for biases (rounded at s_w·s_x), with per-layer overrides. */
typedef enum { QS_QT_WEIGHTS = 0, QS_QT_ACTS, QS_QT_BIAS, QS_QT_COUNT } qs_qtarget_t;
const char *qs_qtarget_name(qs_qtarget_t t); /* "weights", "acts", "bias" */

#define QS_QCONFIG_MAX_OVERRIDES 64
#define QS_QSPEC_MAX 256
typedef struct {
    char layer[QS_NAME_MAX]; /* a node name, or "first"/"last": the first/last conv2d or linear */
    qs_qtarget_t what;
    bool on;                 /* false: left in float */
    char spec[QS_QSPEC_MAX]; /* words applied on top of the network's quantizer for `what` */
} qs_qoverride_t;

typedef struct {
    bool on[QS_QT_COUNT];           /* false: that kind of tensor stays float */
    qs_quantizer_t q[QS_QT_COUNT];
    int noverrides;                 /* applied in order; a later one wins */
    qs_qoverride_t ov[QS_QCONFIG_MAX_OVERRIDES];
} qs_qconfig_t;

/* The w8a8 preset (docs/quantization.md, "Presets"). */
void qs_qconfig_default(qs_qconfig_t *c);
/* "w8a8", "w4a8", "wNaM" (N, M in 1..16; "wNaf"/"wfaM" leave one side in
 * float), "float": sets weights, acts and bias, clears overrides. */
int qs_qconfig_preset(qs_qconfig_t *c, const char *name, const char *what);
/* spec words on top of the current quantizer of t, or "float". */
int qs_qconfig_set(qs_qconfig_t *c, qs_qtarget_t t, const char *spec, const char *what);
/* "NAME:weights=SPEC", "NAME:acts=SPEC", "NAME:bias=SPEC", "NAME:float"
 * (weights and acts in float), "NAME:wNaM" (a preset's bit widths for that
 * layer's weights and acts). Checked against a graph only by qs_qnet_create. */
int qs_qconfig_override(qs_qconfig_t *c, const char *arg, const char *what);
/* One line per target and override, for reports and provenance. */
char *qs_qconfig_str(const qs_qconfig_t *c, char *buf, size_t n);

/* The quantization of one node of the folded graph. */
typedef struct {
    /* weights: conv2d/linear */
    bool wq;
    qs_quantizer_t wquant;
    qs_qparams_t *wp;     /* after qs_qnet_create */
    qs_tensor_t *wcodes;  /* I32, the weight's shape */
    qs_qstats_t wstats;   /* the weight's quantization error */
    /* bias: conv2d/linear with a bias whose input is quantized per tensor */
    bool bq;
    qs_quantizer_t bquant;
    qs_tensor_t *bcodes;  /* I32 [O], after calibration */
    qs_tensor_t *bscale;  /* F32 [O]: fl32(s_w[o] · s_x) */
    /* activations: this node's output */
    int point;            /* the node whose output quantization covers this one: itself for a
                           * quantization point, the end of its chain for a conv/linear/add
                           * whose activation follows, -1 when none (flatten of ..., softmax) */
    bool aq;              /* a quantization point with a quantizer */
    int ashare;           /* the point whose parameters it reuses (maxpool, flatten/reshape), or -1 */
    qs_quantizer_t aquant;
    qs_qparams_t *ap;     /* after calibration */
} qs_qlayer_t;

typedef struct {
    char source[256];     /* the calibration dataset */
    int64_t images, batch;
    uint64_t seed;
} qs_calib_info_t;

typedef struct {
    qs_graph_t *g;        /* the BN-folded float graph every parameter refers to */
    int folded;           /* batchnorms folded */
    qs_qconfig_t cfg;
    qs_qlayer_t *layer;   /* g->nnodes entries */
    bool calibrated;
    qs_calib_info_t calib;
} qs_qnet_t;

/* Folds BN, resolves the configuration against the graph (unknown layer
 * names and weights overrides on nodes without weights are errors listing
 * the layers), finds the quantization points and quantizes the weights. */
int qs_qnet_create(const qs_graph_t *g, const qs_qconfig_t *cfg, qs_qnet_t **out);
void qs_qnet_free(qs_qnet_t *q);
int qs_qnet_first_layer(const qs_graph_t *g); /* the first conv2d/linear node, or -1 */
int qs_qnet_last_layer(const qs_graph_t *g);

typedef struct {
    int64_t images;       /* default 1000 */
    int64_t batch;        /* default 256 */
    uint64_t seed;        /* the subset of the training split, default 1 */
    qs_pool_t *pool;
    bool reference;       /* run the BLAS-free engine path (exact, slow) */
} qs_calib_opts_t;
void qs_calib_opts_default(qs_calib_opts_t *o);
/* Activation ranges over o->images images of d (a seeded subset), batch by
 * batch, with the weights fake-quantized and activations in float; then
 * the biases. d should be a training split: the caller says which. */
int qs_qnet_calibrate(qs_qnet_t *q, const qs_dataset_t *d, const qs_calib_opts_t *o, qs_progress_cb_t *progress);

/* The fake-quant engine: the float engine on the folded graph with
 * fake-quantized weights and biases, and a hook that quantizes activations
 * at the quantization points. sel (NULL: everything) turns weights/bias and
 * activation quantization on per node. */
typedef struct {
    const bool *weights; /* per node: quantize this layer's weights and bias (NULL: all) */
    const bool *acts;    /* per node: quantize this quantization point (NULL: all) */
} qs_qselect_t;
typedef struct qs_fake qs_fake_t;
int qs_fake_create(const qs_qnet_t *q, const qs_engine_opts_t *opts, const qs_qselect_t *sel, qs_fake_t **out);
void qs_fake_free(qs_fake_t *f);
/* As qs_engine_forward. With stats on, per-point quantization statistics
 * accumulate (qs_fake_stats). Stochastic activation rounding draws its bits
 * from (node, image index, element): index0 is the index of x's first image
 * in the dataset, so an image gets the same bits whatever the batching
 * (qs_fake_forward: index0 = 0). */
int qs_fake_forward(qs_fake_t *f, const qs_tensor_t *x, const qs_tensor_t **out);
int qs_fake_forward_at(qs_fake_t *f, const qs_tensor_t *x, int64_t index0, const qs_tensor_t **out);
void qs_fake_collect_stats(qs_fake_t *f, bool on);
/* Statistics of node i's activation quantization since the last reset (count 0 if none). */
const qs_qstats_t *qs_fake_stats(const qs_fake_t *f, int node);
void qs_fake_reset_stats(qs_fake_t *f);

typedef struct {
    int64_t images;
    double top1, top5;      /* the quantized network */
    double float_top1;      /* the float model, same images */
    double agreement;       /* fraction of images whose top-1 class equals the float model's */
    double logit_sqnr_db;   /* 10 log10(Σ float logits² / Σ (float − quantized)²) */
    double seconds, img_s;  /* the quantized network's forward passes */
    qs_qstats_t *act;       /* per node (g->nnodes): activation quantization statistics, count 0 where none */
} qs_qeval_t;
/* Evaluates the quantized network (and the float folded graph for agreement
 * and logit SQNR) on d. */
int qs_qeval(const qs_qnet_t *q, const qs_dataset_t *d, const qs_engine_opts_t *opts, const qs_qselect_t *sel,
             int64_t batch, qs_progress_cb_t *progress, qs_qeval_t *out);
void qs_qeval_free(qs_qeval_t *r);

/* An evaluation set: the images of d normalized for g and g's float logits,
 * computed once so that many quantized networks of the same (folded) graph
 * are evaluated without recomputing the reference (what sweeps share).
 * qs_qeval_set and qs_int_eval_set with a set give bit for bit what
 * qs_qeval and qs_int_eval give on d with q->g equal to g. */
typedef struct {
    int64_t n;
    int ncls;
    qs_tensor_t *x;       /* [n, C, H, W] float32 */
    int32_t *labels;      /* n */
    float *logits;        /* [n, ncls]: the float model's */
    double float_top1;
    char source[256];
} qs_evalset_t;
int qs_evalset_create(const qs_graph_t *g, const qs_dataset_t *d, const qs_engine_opts_t *opts, int64_t batch,
                      qs_evalset_t **out);
void qs_evalset_free(qs_evalset_t *s);
/* As qs_qeval, on set when it is not NULL (d is then not used), else on d. */
int qs_qeval_set(const qs_qnet_t *q, const qs_dataset_t *d, const qs_evalset_t *set, const qs_engine_opts_t *opts,
                 const qs_qselect_t *sel, int64_t batch, qs_progress_cb_t *progress, qs_qeval_t *out);

/* Quantized-model files (docs/model-format.md, format version 2): the folded
 * graph plus every calibrated quantizer. qs_model_load reads such a file as
 * its (folded) float model. */
int qs_qnet_save(const qs_qnet_t *q, const char *path);
int qs_qnet_load(const char *path, qs_qnet_t **out);
/* 1 when path holds a quantized model, 0 for a float model, < 0 on error. */
int qs_model_is_quantized(const char *path);

/* A tap sees the quantized (dequantized) values y of every activation point
 * the fake-quant engine rounds (fn NULL: none), right after rounding; same
 * arguments and threads as an engine hook. y must not be modified. */
void qs_fake_set_tap(qs_fake_t *f, qs_engine_hook_fn fn, void *ctx);

/* ---- the integer engine (sim/int.c, docs/engine.md "The integer engine") ----------------------- */

/* How the integer engine computes: the accumulator of every conv2d/linear
 * and the requantizer of every rescale (conv2d/linear outputs, add, concat,
 * pools, a standalone relu), with per-layer overrides "NAME:acc=SPEC" and
 * "NAME:requant=SPEC" (the words on top of the network-wide setting). */
#define QS_INT_MAX_OVERRIDES 64
typedef struct {
    char layer[QS_NAME_MAX];
    bool requant;            /* false: an accumulator spec */
    char spec[QS_QSPEC_MAX];
} qs_int_override_t;
typedef struct {
    qs_acc_t acc;            /* default int32, wrap, subtract */
    qs_requant_t rq;         /* default float64 */
    int noverrides;
    qs_int_override_t ov[QS_INT_MAX_OVERRIDES];
    bool trace;              /* every dot product through the order-exact path (exact partial-sum maxima) */
    bool keep_acc;           /* keep the accumulator values of the last forward (qs_int_accs) */
} qs_int_config_t;
void qs_int_config_default(qs_int_config_t *c);
/* "NAME:acc=SPEC" or "NAME:requant=SPEC"; the spec is checked here, the
 * name against the graph by qs_int_create. */
int qs_int_config_override(qs_int_config_t *c, const char *arg, const char *what);

/* What one layer's accumulations did (conv2d/linear; other nodes count 0). */
typedef struct {
    int64_t outputs;        /* accumulator values computed */
    int64_t overflowed;     /* ... whose accumulation had at least one overflow event */
    int64_t events;         /* overflow events (inner and outer registers) */
    int64_t fast;           /* outputs through the fast path (a bound proved them exact) */
    int64_t max_abs;        /* largest |exact final sum| (bias included) */
    int64_t max_partial;    /* largest |exact partial sum| over the outputs of the order-exact path */
    int needed_bits;        /* register width every final sum fits: qs_acc_bits_for(max_abs) */
    int64_t k;              /* terms of one dot product */
    int width_datatype, width_a2q, width_a2qplus; /* guaranteed widths, largest over the channels */
    int safe_channels, channels; /* channels the bound proves overflow-free under this accumulator */
    qs_acc_t acc;           /* what the layer used */
    qs_requant_t rq;
} qs_int_layer_t;

typedef struct qs_int qs_int_t;
/* Prepares every node of q (calibrated): integer codes, per-tensor
 * activation grids, per-tensor or per-channel weights, int32 biases; an op,
 * a grid or a layer name the engine cannot take is an error naming the node. */
int qs_int_create(const qs_qnet_t *q, const qs_int_config_t *cfg, const qs_engine_opts_t *opts, qs_int_t **out);
void qs_int_free(qs_int_t *e);
/* As qs_fake_forward_at: x [N, C, H, W] float32, index0 the dataset index of
 * its first image (stochastic input rounding); *out: the output node's codes
 * dequantized, [N, num_classes], owned by the engine until the next call.
 * Results do not depend on N or the pool. */
int qs_int_forward(qs_int_t *e, const qs_tensor_t *x, int64_t index0, const qs_tensor_t **out);
/* Node i's output codes of the last forward, [N, per-sample] I32 (a chain's
 * codes are its last node's); NULL when the node has none. */
const qs_tensor_t *qs_int_codes(const qs_int_t *e, int node);
/* With keep_acc: conv2d/linear node i's accumulator values of the last
 * forward, before requantization, [N, O·P] I64 in (channel, position) order
 * (qs_acc_result_t.value); NULL for other nodes or without keep_acc. */
const qs_tensor_t *qs_int_accs(const qs_int_t *e, int node);
/* Accumulated since creation or the last reset. */
const qs_int_layer_t *qs_int_layer(const qs_int_t *e, int node);
void qs_int_reset_stats(qs_int_t *e);

typedef struct {
    int64_t images;
    double top1, top5;        /* the integer engine */
    double float_top1, fake_top1;
    double agreement;         /* top-1 class equal to the float model's */
    double fake_agreement;    /* top-1 class equal to the fake-quant engine's */
    double logit_sqnr_db;     /* against the float model */
    double fake_logit_sqnr_db;/* against the fake-quant engine */
    double seconds, img_s;    /* the integer engine's forward passes */
    int64_t *mismatch;        /* per node: output codes that differ from the fake-quant engine's */
    int64_t *mismatch_far;    /* ... by more than one code */
    int64_t *compared;        /* ... codes compared */
    qs_int_layer_t *layer;    /* per node */
    int64_t overflowed, outputs; /* totals over the layers */
} qs_int_eval_t;
/* Runs the integer engine, the fake-quant engine and the float model on d. */
int qs_int_eval(const qs_qnet_t *q, const qs_int_config_t *cfg, const qs_dataset_t *d, const qs_engine_opts_t *opts,
                int64_t batch, qs_progress_cb_t *progress, qs_int_eval_t *out);
/* As qs_int_eval, on set when it is not NULL (see qs_evalset_t). */
int qs_int_eval_set(const qs_qnet_t *q, const qs_int_config_t *cfg, const qs_dataset_t *d, const qs_evalset_t *set,
                    const qs_engine_opts_t *opts, int64_t batch, qs_progress_cb_t *progress, qs_int_eval_t *out);
void qs_int_eval_free(qs_int_eval_t *r);

/* ---- golden test vectors (sim/golden.c, docs/golden.md) ---------------------------------------- */

/* What RTL test benches of a conv2d/linear layer compare against: one image
 * through the integer engine, and per chosen layer its input codes, weight
 * codes, int32 bias, accumulators (the register's value before
 * requantization) and output codes (after requantization and the chain's
 * clamps), in DIR/golden.h5 (format version QS_GOLDEN_VERSION) and as
 * $readmemh files DIR/NAME.{input,weight,bias,acc,output}.hex (one value a
 * line, two's complement at the declared width, ceil(width/4) lowercase hex
 * digits) described by DIR/NAME.txt. */
#define QS_GOLDEN_VERSION 1

/* One layer as written (widths in bits; shapes per sample). */
typedef struct {
    int node;
    char name[QS_NAME_MAX];
    qs_op_t op;
    int64_t k;                      /* terms per dot product */
    int in_ndim, w_ndim, out_ndim;
    int64_t in_shape[3];            /* C, H, W or F */
    int64_t w_shape[4];             /* O, I/groups, kh, kw or O, I */
    int64_t out_shape[3];           /* O, OH, OW or O: the accumulators' and the output codes' */
    int in_bits, w_bits, acc_bits, out_bits;
    bool in_signed, w_signed, out_signed;
    int64_t overflowed;             /* accumulators of this image whose accumulation overflowed */
} qs_golden_layer_t;

/* The node of a conv2d/linear layer named name ("first"/"last": the
 * first/last conv2d or linear) in q's (folded) graph; an unknown name or
 * another op is an error listing the conv2d/linear layers. */
int qs_golden_find(const qs_qnet_t *q, const char *name);
/* Runs the integer engine (cfg with keep_acc on; NULL: defaults) on image
 * ([1, C, H, W] float32, normalized as qs_dataset_batch does; image_index,
 * its index in the dataset source, drives stochastic input rounding as in
 * qs_int_forward and is recorded with source, which may be NULL) and writes
 * the vectors of layers[0..nlayers) (conv2d/linear nodes of q->g, each once)
 * into the folder dir (created if missing, one level). Float accumulators
 * and requant bias=float are refused: their values are not integers of the
 * layer. Every file is written aside and renamed once all are complete; on
 * failure existing files are left as they were. info (NULL, or room for
 * nlayers) gets what was written. */
int qs_golden_write(const qs_qnet_t *q, const qs_int_config_t *cfg, const qs_tensor_t *image, int64_t image_index,
                    const char *source, const int *layers, int nlayers, const char *dir, qs_golden_layer_t *info);

/* ---- the workload (sim/workload.c) ------------------------------------------------------------ */

/* What one inference of q asks of hardware (hwmodels/workload.h): a layer per
 * conv2d, linear, add, concat and pool of the folded graph, with the formats
 * q's configuration gives (float where it leaves a tensor in float), the
 * sparsity of pruning masks, and the accumulator width cfg gives each layer
 * (cfg NULL: 0, the target's native width). q need not be calibrated.
 * Free with qs_workload_free. */
int qs_qnet_workload(const qs_qnet_t *q, const qs_int_config_t *cfg, qs_workload_t **out);

/* ---- sensitivity (sim/sensitivity.c) -------------------------------------------------------- */

/* Which parts of a quantized network cost accuracy (docs/sensitivity.md).
 * A unit is what a selection (qs_qselect_t) turns on and off together:
 *  - every conv2d/linear node: its weights and bias (weights[node]) and the
 *    activation point at the end of its chain (acts[q->layer[node].point]);
 *  - every other quantization point (point == i, ashare < 0) that is no
 *    layer's: the network input, an add/concat (named by the add, the point
 *    being the end of its chain: the relu after it), an avgpool, a gap, ...
 * Maxpool/flatten/reshape keep their source's grid and are no units.
 * Units are listed in the order of their node. */
typedef struct {
    int node;        /* the conv2d/linear, or the first node of the point's chain (input, add, gap, ...) */
    int point;       /* its activation quantization point */
    bool weights;    /* q quantizes this layer's weights (the bias goes with them) */
    bool bias;       /* ... and its bias at s_w·s_x */
    bool acts;       /* q quantizes the point (calibrated) */
} qs_sens_unit_t;

/* The units of q into units (room for q->g->nnodes); returns their count
 * or a negative status. */
int qs_sens_units(const qs_qnet_t *q, qs_sens_unit_t *units);
/* The selection of a unit: all_but false, "only": u quantized, everything
 * else float; all_but true: everything but u. u NULL: nothing (the float
 * network) or, with all_but, everything. weights and acts: g->nnodes flags,
 * for qs_qselect_t. */
void qs_sens_select(const qs_qnet_t *q, const qs_sens_unit_t *u, bool all_but, bool *weights, bool *acts);

typedef struct {
    int64_t correct;      /* images whose label is the top-1 class (qs_qeval's rule) */
    int64_t agree;        /* images whose top-1 class equals the float model's */
    double top1;          /* correct / images */
    double agreement;     /* agree / images */
    double logit_sqnr_db; /* 10 log10(Σ float logits² / Σ (float − this)²), +inf when equal */
} qs_sens_run_t;

typedef struct {
    qs_sens_unit_t u;
    qs_sens_run_t only;    /* this unit quantized, everything else float */
    qs_sens_run_t all_but; /* everything quantized but this unit */
    double only_drop;      /* float top1 − only.top1 (points are 100×) */
    double all_but_gain;   /* all_but.top1 − all.top1 */
    bool evaluated;        /* false: nothing of the unit is quantized, its runs are the baselines */
} qs_sens_row_t;

typedef struct {
    int64_t images;
    qs_sens_run_t fp;      /* the float (folded) model: agreement 1, SQNR +inf */
    qs_sens_run_t all;     /* everything quantized (qs_qeval with no selection) */
    int nrows;
    qs_sens_row_t *row;    /* one per unit, in node order */
    int *order;            /* row indices by only_drop, largest first; ties in node order */
    int runs;              /* fake-quant passes over the data (2 per evaluated unit + 1) */
    double seconds;
} qs_sensitivity_t;

/* Evaluates q (calibrated) on d: the float model once (its logits kept),
 * everything quantized, and each unit "only" and "all but", each with
 * qs_fake_create/qs_fake_forward_at on the one calibration of q. Every run
 * equals qs_qeval with the same selection, bit for bit, and nothing depends
 * on the pool. batch <= 0: 256. Progress: task "sensitivity", done/total
 * units, detail the unit's node name. */
int qs_sensitivity(const qs_qnet_t *q, const qs_dataset_t *d, const qs_engine_opts_t *opts, int64_t batch,
                   qs_progress_cb_t *progress, qs_sensitivity_t **out);
void qs_sensitivity_free(qs_sensitivity_t *s);

/* ---- statistics (sim/stats.c) ---------------------------------------------------------------- */

/* What researchers look at before quantizing (docs/statistics.md): per
 * tensor the range, the moments, the tails and a histogram, and per channel
 * the ranges (Nagel et al. 2019, "Data-free quantization through weight
 * equalization and bias correction", Fig. 2). Definitions:
 *  - NaN and ±Inf values are counted in nonfinite and left out of every
 *    other figure; masked (pruned) weights are left out of all of them.
 *  - min, max: zeros reported as +0 (so that no figure depends on order).
 *  - mean, std: population (divide by count), in double; the mean first,
 *    then central moments, then outliers (three passes).
 *  - kurtosis: Pearson's, m4 / m2² with central moments m_k (3 for a
 *    Gaussian, not the excess); NaN when m2 = 0 (a constant tensor).
 *  - outliers: values with |x − mean| > outlier_k · std (k = 6 by default).
 *  - histogram: nbins bins over [min, max]: x goes to bin
 *    min(nbins − 1, floor((x − min) · (nbins / (max − min)))) in double;
 *    every value in bin 0 when max = min.
 *  - per channel (the output channel of a weight, C or F of an activation):
 *    ch_min, ch_max (NaN for a channel without values); range_spread =
 *    max over channels of (ch_max − ch_min) / min over channels of the same:
 *    1 when every channel has range 0, +inf when some (zero_range_channels
 *    of them) have range 0 and others not, NaN without channels. */
#define QS_STATS_BINS 256
#define QS_STATS_OUTLIER_K 6.0

typedef struct {
    int64_t count;      /* values that enter the figures */
    int64_t nonfinite;  /* NaN/±Inf values left out */
    double min, max;    /* NaN when count = 0 */
    double mean, std;   /* population std */
    double kurtosis;    /* Pearson m4/m2² */
    int64_t outliers;   /* |x − mean| > outlier_k · std */
    int nbins;
    int64_t *hist;      /* nbins counts over [min, max] */
    int64_t channels;   /* 0: no per-channel figures */
    float *ch_min, *ch_max;
    int64_t zero_range_channels;
    double range_spread;
} qs_tstats_t;

typedef struct {
    int64_t images;     /* activation statistics over this many images of a seeded subset (default 1000;
                         * the whole dataset when it has fewer) */
    int64_t batch;      /* images per forward pass (default 256) */
    uint64_t seed;      /* the subset (default 1) */
    int nbins;          /* histogram bins (default QS_STATS_BINS) */
    double outlier_k;   /* default QS_STATS_OUTLIER_K */
    qs_pool_t *pool;    /* NULL: one thread; the results do not depend on it */
} qs_stats_opts_t;
void qs_stats_opts_default(qs_stats_opts_t *o);

/* Statistics of t (F32, any shape) with channels along axis (-1: none);
 * mask (NULL, or t's shape: 0 leaves a value out). out is owned by the
 * caller: release with qs_tstats_clear. o NULL: defaults. */
int qs_tstats_tensor(const qs_tensor_t *t, const qs_tensor_t *mask, int axis, const qs_stats_opts_t *o,
                     qs_tstats_t *out);
void qs_tstats_clear(qs_tstats_t *s); /* frees the arrays and zeroes *s */

typedef struct {
    char name[QS_NAME_MAX];
    qs_op_t op;
    bool has_weight;       /* conv2d/linear */
    int wndim;
    int64_t wshape[QS_MAX_DIMS];
    qs_tstats_t weight;    /* channels: the output channels */
    int andim;             /* per-sample output shape */
    int64_t ashape[3];
    qs_tstats_t act;       /* the node's output over the images (count 0 without data); channels: C or F */
} qs_node_stats_t;

typedef struct {
    char model[QS_NAME_MAX];
    char source[256];      /* the dataset, "" without activation statistics */
    int64_t images;        /* 0: weights only */
    uint64_t seed;
    int nbins;
    double outlier_k;
    int folded;            /* batchnorms folded before, as the caller says (-1: unknown) */
    int nnodes;
    qs_node_stats_t *node; /* one per node of the graph, in its order */
} qs_model_stats_t;

/* Weight statistics of every conv2d/linear of g (as given: fold BN first
 * for what gets quantized) and, when d is not NULL, activation statistics
 * at every node's output (the input included) over o->images images of a
 * seeded subset of d (a training split, as for calibration), with the
 * float engine. Bitwise the same for any pool and batch. Progress: task
 * "stats", done/total counting images over the three passes. */
int qs_stats_model(const qs_graph_t *g, const qs_dataset_t *d, const qs_stats_opts_t *o, qs_progress_cb_t *progress,
                   qs_model_stats_t **out);
void qs_model_stats_free(qs_model_stats_t *s);
/* HDF5 (written aside, then renamed; layout in docs/statistics.md):
 * /weights/NODE and /acts/NODE groups with hist, edges, channel_min,
 * channel_max and the figures as attributes. */
int qs_stats_save_h5(const qs_model_stats_t *s, const char *path);

/* ---- the model zoo ---------------------------------------------------------------------------- */

/* The default architectures, built in code with seeded initialisation
 * (He-normal for conv/linear weights from Philox stream `seed`, BN gamma 1,
 * beta 0, mean 0, var 1): "fmnist-dwsep" (MobileNet-style) and
 * "fmnist-resnet" (small residual network), both 1x28x28 -> 10 classes with
 * Fashion-MNIST normalization. Unknown names list the known ones. */
int qs_zoo_build(const char *arch, uint64_t seed, qs_graph_t **out);
const char *const *qs_zoo_names(void); /* NULL-terminated */

/* ---- training ------------------------------------------------------------------------------------ */

typedef struct {
    int epochs;            /* default 15 */
    int64_t batch;         /* default 128 */
    double lr;             /* peak learning rate, default 0.1 */
    double lr_min;         /* cosine floor, default 0 */
    int warmup_epochs;     /* linear warm-up, default 0 */
    double momentum;       /* default 0.9 */
    double weight_decay;   /* default 5e-4 */
    bool wd_depthwise;     /* apply weight decay to depthwise conv weights (default true) */
    bool wd_bn;            /* apply weight decay to BN gamma/beta (default true) */
    bool wd_bias;          /* apply weight decay to biases (default true) */
    double bn_momentum;    /* running statistics: r = (1-m) r + m batch, default 0.1 */
    bool augment;          /* random crop (pad 2) and horizontal flip, default true */
    int64_t limit;         /* train on the first `limit` images of a seeded subset; 0 = all */
    uint64_t seed;         /* shuffling, augmentation, initialisation (default 1) */
    qs_pool_t *pool;
} qs_train_opts_t;

void qs_train_opts_default(qs_train_opts_t *o);

typedef struct {
    int epoch;            /* 1-based */
    double loss;          /* mean cross-entropy over the epoch */
    double train_top1;    /* on the (augmented) training batches */
    double test_top1;     /* on the evaluation set after the epoch, or NaN without one */
    double seconds;
} qs_train_epoch_t;

/* Trains g in place (SGD with momentum, per-parameter-group weight decay,
 * cosine schedule, BN in training mode, cross-entropy). Bitwise
 * deterministic for a given seed, thread count and machine. After each
 * epoch, progress is reported (task "train", done = epoch) with a detail
 * string "loss 0.31 train 0.89 test 0.90", and epoch_fn (if not NULL) gets
 * the epoch's figures. test may be NULL. */
int qs_train(qs_graph_t *g, const qs_dataset_t *train, const qs_dataset_t *test, const qs_train_opts_t *o,
             qs_progress_cb_t *progress, void (*epoch_fn)(const qs_train_epoch_t *e, void *ctx), void *ctx);

#ifdef __cplusplus
}
#endif
#endif
