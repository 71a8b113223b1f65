/* sim/sim_internal.h — what the files of sim/ share. */
#ifndef QS_SIM_INTERNAL_H
#define QS_SIM_INTERNAL_H
#include "sim/sim.h"

/* ---- graph.c ---- */
/* Frees a node's tensors and sets the pointers to NULL. */
void qs_sim_node_free_tensors(qs_node_t *n);
/* A node name usable in the model file: 1..QS_NAME_MAX-1 printable
 * ASCII characters without spaces, ',' and '/'; what prefixes the message. */
int qs_sim_check_name(const char *name, const char *what);

/* ---- ops.c: the float engine's kernels, one sample at a time ---- */
/* Geometry of a conv2d, maxpool or avgpool on one sample. */
typedef struct {
    int64_t c, h, w;    /* input */
    int64_t oc, oh, ow; /* output */
    int kh, kw, sh, sw, dh, dw;
    int pt, pl, pb, pr; /* padding: top, left, bottom, right */
    int groups;
} qs_sim_conv_t;
/* Batchnorm/relu-like nodes fused into the kernel that produces their input
 * (the engine's chains): per channel, v = acc + bias, then each step in
 * order, with exactly the float operations of the separate nodes, so fusing
 * never changes a bit. */
enum { QS_SIM_EP_BN = 1, QS_SIM_EP_CLAMP = 2 };
#define QS_SIM_EP_MAX 4
typedef struct {
    int kind;
    const float *mean, *scale, *beta; /* QS_SIM_EP_BN: per channel */
    float lo, hi;                     /* QS_SIM_EP_CLAMP */
} qs_sim_ep_step_t;
typedef struct {
    int n;
    qs_sim_ep_step_t step[QS_SIM_EP_MAX];
} qs_sim_ep_t;
/* y[c][t] = steps(y[c][t] + b[c]) on a (c, hw) sample; b and ep may be NULL. */
void qs_sim_ep_apply(const qs_sim_ep_t *ep, int64_t c, int64_t hw, const float *b, float *y);
/* Reference conv (documented order; BLAS-free). b may be NULL. */
void qs_sim_conv_ref(const qs_sim_conv_t *g, const float *x, const float *w, const float *b, float *y);
/* c/groups == 1 (depthwise, any multiplier): the reference's bits, vectorized.
 * scratch: qs_sim_conv_dw_scratch(g) floats, 64-byte aligned. */
size_t qs_sim_conv_dw_scratch(const qs_sim_conv_t *g);
void qs_sim_conv_dw(const qs_sim_conv_t *g, const float *x, const float *w, const float *b, const qs_sim_ep_t *ep,
                    float *y, float *scratch);
/* im2col (or, for 1x1 stride 1 unpadded, nothing) + OpenBLAS sgemm per group. */
bool qs_sim_conv_is_direct(const qs_sim_conv_t *g);
size_t qs_sim_conv_gemm_scratch(const qs_sim_conv_t *g);
void qs_sim_conv_gemm(const qs_sim_conv_t *g, const float *x, const float *w, const float *b, const qs_sim_ep_t *ep,
                      float *y, float *scratch);
void qs_sim_linear_ref(int64_t in, int64_t out, const float *x, const float *w, const float *b, float *y);
void qs_sim_linear_blas(int64_t in, int64_t out, const float *x, const float *w, const float *b, const qs_sim_ep_t *ep,
                        float *y);
/* scale[i] = gamma[i] / sqrtf(var[i] + eps) */
void qs_sim_bn_scale(int64_t c, const float *gamma, const float *var, float eps, float *scale);
/* y = (x - mean[c]) * scale[c] + beta[c]; y may be x */
void qs_sim_batchnorm(int64_t c, int64_t hw, const float *x, const float *mean, const float *scale,
                      const float *beta, float *y);
/* y = x < lo ? lo : x > hi ? hi : x (relu: 0, +inf; relu6: 0, 6); y may be x */
void qs_sim_clamp(int64_t n, const float *x, float lo, float hi, float *y);
/* y = ((x0 + x1) + x2) + ...; nin >= 2; y may be x[0] */
void qs_sim_add(int64_t n, int nin, const float *const *x, float *y);
void qs_sim_maxpool(const qs_sim_conv_t *g, const float *x, float *y);
void qs_sim_avgpool(const qs_sim_conv_t *g, const float *x, float *y);
void qs_sim_gap(int64_t c, int64_t hw, const float *x, float *y);
void qs_sim_concat(int nin, const float *const *x, const int64_t *sizes, float *y);
void qs_sim_softmax(int64_t n, const float *x, float *y); /* y may be x */

/* ---- backward.c: the training executor (docs/training.md) ---- */
/* A whole batch, layer by layer: every node's output and gradient are kept
 * for all samples, BN uses batch statistics. */
typedef struct qs_sim_trainer qs_sim_trainer_t;
/* Straight-through fake quantization of node `node`'s output: called after
 * the node computed y (count samples of per_sample floats, contiguous) in
 * forward; quantizes y in place and sets pass[k] = 1 where the gradient
 * passes (the input was inside the clipping range), 0 where it is clipped.
 * Backward multiplies the node's output gradient by pass before the node's
 * own backward. Runs on the calling thread; returns QS_OK or an error. */
typedef int (*qs_sim_fq_fn)(void *ctx, int node, float *y, uint8_t *pass, int64_t count, int64_t per_sample);
/* Parameter gradients of a node (NULL where the node has none). */
typedef struct {
    float *weight, *bias, *gamma, *beta;
} qs_sim_pgrad_t;
/* g must stay alive and is trained in place; batches of up to max_batch. */
int qs_sim_trainer_create(qs_graph_t *g, int64_t max_batch, qs_pool_t *pool, qs_sim_trainer_t **out);
void qs_sim_trainer_free(qs_sim_trainer_t *t);
int qs_sim_trainer_set_fq(qs_sim_trainer_t *t, int node, qs_sim_fq_fn fn, void *ctx);
/* bn_momentum: running statistics r = (1-m) r + m batch (var unbiased) in
 * training-mode forwards; 0 leaves them unchanged. */
void qs_sim_trainer_set_bn_momentum(qs_sim_trainer_t *t, double m);
/* x: n samples [n, C, H, W]. train: BN in training mode (batch statistics,
 * running statistics updated); else BN uses the running statistics. */
int qs_sim_trainer_forward(qs_sim_trainer_t *t, const float *x, int64_t n, bool train);
const float *qs_sim_trainer_act(const qs_sim_trainer_t *t, int node); /* [n, per-sample] */
float *qs_sim_trainer_grad(const qs_sim_trainer_t *t, int node);      /* d loss / d output of node */
const qs_sim_pgrad_t *qs_sim_trainer_pgrad(const qs_sim_trainer_t *t, int node);
/* dout: d loss / d network output, [n, num_classes] of the last forward
 * (which must have been a training-mode forward). Fills every gradient. */
int qs_sim_trainer_backward(qs_sim_trainer_t *t, const float *dout);
/* SGD velocity buffers of a node's parameters (zero at creation). */
const qs_sim_pgrad_t *qs_sim_trainer_velocity(const qs_sim_trainer_t *t, int node);
qs_graph_t *qs_sim_trainer_graph(const qs_sim_trainer_t *t);

/* ---- train.c ---- */
/* Mean softmax cross-entropy of n rows of f logits; dlogits (may be NULL)
 * gets (softmax - onehot) / n; *correct (may be NULL) counts rows whose label
 * has no strictly larger logit. Computed in double. */
double qs_sim_xent(int64_t n, int64_t f, const float *logits, const int32_t *labels, float *dlogits,
                   int64_t *correct);
/* The learning rate of iteration it (0-based) of total, with warm iterations
 * of linear warm-up: lr (it+1)/warm, then lr_min + (lr - lr_min)(1 + cos(pi
 * (it - warm)/(total - warm)))/2. */
double qs_sim_lr_at(double lr, double lr_min, int64_t it, int64_t total, int64_t warm);
typedef struct {
    double lr, momentum, weight_decay;
    bool wd_depthwise, wd_bn, wd_bias;
} qs_sim_sgd_t;
/* One SGD step on every parameter of the trainer's graph, PyTorch form:
 * v = m v + g + wd w; w -= lr v (v starts at 0). Pruned weights (mask 0)
 * stay 0. */
int qs_sim_sgd_step(qs_sim_trainer_t *t, const qs_sim_sgd_t *s);
/* The weight-decay group rule: wd for a node's weight/bias/gamma/beta. */
double qs_sim_wd_for(const qs_node_t *n, int which, const qs_sim_sgd_t *s); /* which: 0 w, 1 b, 2 gamma, 3 beta */

/* ---- engine.c ---- */
/* The rank of label among ncls logits (docs/engine.md, "Evaluation"): 0 is top-1. */
int64_t qs_sim_rank(const float *logits, int ncls, int label);
/* What an evaluation of g on d needs: images, g's input shape, labels in
 * [0, num_classes); errors name the dataset and the image. */
int qs_sim_check_eval_data(const qs_graph_t *g, const qs_dataset_t *d);
int qs_sim_check_evalset(const qs_graph_t *g, const qs_evalset_t *s);
/* One batch's images, labels and float logits: pointed into set, or computed
 * from d with the float engine fe into view, *labels and *ref (sim/qeval.c). */
int qs_sim_ref_batch(const qs_dataset_t *d, const qs_evalset_t *set, const qs_graph_t *g, qs_engine_t *fe,
                     int64_t first, int64_t count, qs_tensor_t *view, int32_t **labels, float **ref);

/* One network's logits y against reference logits ref, summed over
 * batches (sim/qeval.c): y's top-1/top-5 hits, ref's top-1 hits, images
 * whose top-1 classes agree, and the logit signal and error energies. */
typedef struct {
    int64_t top1, top5, ref_top1, agree;
    double signal, noise;
} qs_logit_cmp_t;
void qs_logit_cmp_add(qs_logit_cmp_t *c, const float *ref, const float *y, const int32_t *labels, int64_t count,
                      int ncls);
/* 10 log10(signal / noise): +Inf for identical logits, NaN when one was NaN */
double qs_logit_cmp_sqnr_db(const qs_logit_cmp_t *c);

/* ---- int.c ---- */
/* false: engines created from now on run the portable C kernels, not the
 * CPU's vector ones (tests compare the two). */
void qs_int_use_simd(bool on);

/* ---- qnet.c, fake.c: network quantization ---- */
/* The weight of n as the weight quantizer q sees it, over data of dtype:
 * conv weights are [O, I·kh·kw] for gran=group along the last axis (groups
 * run along the reduction dimension K), else the weight's own shape. */
qs_tensor_t qs_sim_weight_view(const qs_node_t *n, const qs_quantizer_t *q, void *data, qs_dtype_t dtype);
/* Sets point and ashare of every node of g (docs/quantization.md,
 * "Quantization points"); everything else in L is left alone. */
void qs_sim_find_points(const qs_graph_t *g, qs_qlayer_t *L);
/* q, with a channel axis of one sample moved to axis 1 of a [n, ...] batch. */
void qs_sim_act_batch_quantizer(const qs_quantizer_t *q, qs_quantizer_t *out);
/* The quantization point feeding node i's first input (sharing resolved),
 * when it is quantized and calibrated; else -1. */
int qs_sim_input_point(const qs_qnet_t *q, int i);
/* The accumulator and requantizer of the layer named `layer` under c: the
 * network-wide settings with that layer's overrides applied in order. */
int qs_sim_int_resolve(const qs_int_config_t *c, const char *layer, qs_acc_t *acc, qs_requant_t *rq);
/* A clone of q->g with the weights of the nodes selected by wsel (NULL: all)
 * replaced by their fake-quantized values, and, with bias, the quantized
 * biases. */
int qs_sim_fake_graph(const qs_qnet_t *q, const bool *wsel, bool bias, qs_graph_t **out);

/* ---- model.c: the model file's pieces that the quantized model (qmodel.c) builds on ---- */
#include <hdf5.h>

/* GSL reports errors by status here, never by its default abort: set once, for every thread (sim/prune.c). */
void qs_sim_gsl_init(void);
/* More content in an open model file: called after the graph g is written
 * (before the file is closed, flushed and renamed) or read. */
typedef int (*qs_sim_model_extra_fn)(void *ctx, hid_t file, const char *path, const qs_graph_t *g);
/* qs_model_save writing format_version `version`, then extra (may be NULL). */
int qs_sim_model_write(const qs_graph_t *g, const char *path, int version, qs_sim_model_extra_fn extra, void *ctx);
/* qs_model_load; *version (may be NULL) gets format_version; then extra (may be NULL). */
int qs_sim_model_read(const char *path, qs_graph_t **out, int *version, qs_sim_model_extra_fn extra, void *ctx);
/* Opens path and reads only what the file is (the loader's checks and
 * messages): its format_version, and whether a root group quant exists. */
int qs_sim_model_probe(const char *path, int *version, bool *quant);
/* The innermost message of HDF5's error stack (call right after the failing call). */
const char *qs_sim_h5_detail(char buf[200]);

#endif
