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

/* ---- model files (docs/model-format.md) -------------------------------------------------- */

/* Loads and validates (qs_graph_infer) a model; a bad file is an error naming
 * the file, the node and the problem. */
int qs_model_load(const char *path, qs_graph_t **out);
/* Writes aside and renames (qs_h5_create/qs_h5_commit). */
int qs_model_save(const qs_graph_t *g, const char *path);

/* ---- datasets --------------------------------------------------------------------------------- */

typedef struct {
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

/* ---- the float engine -------------------------------------------------------------------------- */

typedef struct {
    qs_pool_t *pool; /* samples of a batch are split over its threads; NULL: one thread */
    bool reference;  /* the BLAS-free path whose outputs tests pin exactly */
} qs_engine_opts_t;

typedef struct qs_engine qs_engine_t;
/* Called after node i computed its output y (count samples, node's shape);
 * may modify y in place (how the fake-quant engine quantizes activations).
 * Runs on worker threads: sample0 is the index of y's first sample in the batch. */
typedef int (*qs_engine_hook_fn)(void *ctx, int node, qs_tensor_t *y, int64_t sample0, int thread);

int qs_engine_create(const qs_graph_t *g, const qs_engine_opts_t *opts, qs_engine_t **out);
void qs_engine_free(qs_engine_t *e);
void qs_engine_set_hook(qs_engine_t *e, qs_engine_hook_fn fn, void *ctx);
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
