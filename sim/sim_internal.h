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

#endif
