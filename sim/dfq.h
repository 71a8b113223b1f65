/* sim/dfq.h — data-free quantization transforms (Nagel, van Baalen,
 * Blankevoort, Welling, "Data-Free Quantization Through Weight Equalization
 * and Bias Correction", ICCV 2019): cross-layer equalization, high-bias
 * absorption and bias correction, on the BN-folded float graph.
 *
 * What each step keeps:
 *  - equalization scales output channel i of a layer by 1/s_i and input
 *    channel i of the next by s_i: exact for ReLU and for no activation
 *    (positive scaling commutes with them and with max/average pooling);
 *  - absorption moves c_i = max(0, β_i − 3γ_i) from a layer's bias into the
 *    next layer's: exact where every pre-activation of channel i is at least
 *    c_i and the next layer reads no zero padding;
 *  - bias correction changes what the network computes in float, on purpose:
 *    it subtracts the expected error that quantizing the weights adds.
 *
 * A pair is two conv2d/linear layers L1 → [relu | relu6] → [maxpool |
 * avgpool | gap | flatten]* → L2 where every node between has one reader:
 * no branch, no residual connection. */
#ifndef QS_SIM_DFQ_H
#define QS_SIM_DFQ_H

#include "sim/sim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The steps, applied in this order whatever the order of the words. */
enum { QS_DFQ_CLE = 1, QS_DFQ_ABSORB = 2, QS_DFQ_BC = 4 };

/* ReLU6 between two layers: min(max(z, 0), 6) scaled by 1/s_i would need a
 * clip at 6/s_i per channel, which the graph (and every integer engine's
 * fused clamp) cannot express. REPLACE turns that ReLU6 into a ReLU, as the
 * paper does for MobileNets, which changes the float network wherever a
 * pre-activation exceeded 6; SKIP leaves the pair alone, which on a
 * MobileNet-style network leaves nothing to equalize. */
typedef enum { QS_DFQ_RELU6_REPLACE = 0, QS_DFQ_RELU6_SKIP } qs_dfq_relu6_t;

/* Where bias correction takes E[x], a layer's expected input. ANALYTIC: from
 * the batchnorm statistics of the layer before, through its activation (the
 * mean of a clipped normal); EMPIRICAL: the float network's mean input over
 * calibration images. */
typedef enum { QS_DFQ_BC_ANALYTIC = 0, QS_DFQ_BC_EMPIRICAL } qs_dfq_bc_t;

typedef struct {
    unsigned steps;          /* QS_DFQ_CLE | QS_DFQ_ABSORB | QS_DFQ_BC (0: BN folding only) */
    qs_dfq_relu6_t relu6;    /* default QS_DFQ_RELU6_REPLACE */
    int max_sweeps;          /* equalization sweeps over all pairs, default 100 */
    double tol;              /* converged when every |s_i − 1| of a sweep is below it, default 1e-6 */
    double absorb_sigmas;    /* c_i = max(0, β_i − k·γ_i), k default 3 */
    bool absorb_padded;      /* also absorb into a layer that pads (exact only away from its borders), default true */
    qs_dfq_bc_t bc;          /* default analytic */
    const qs_qconfig_t *qcfg;/* the weights quantizer bias correction compensates (NULL: the w8a8 preset) */
    int64_t images;          /* empirical: calibration images, a seeded subset (default 1000) */
    int64_t batch;           /* empirical: images per forward pass (default 256) */
    uint64_t seed;           /* empirical: the subset (default 1) */
    qs_pool_t *pool;         /* NULL: one thread; results do not depend on it */
} qs_dfq_opts_t;
void qs_dfq_opts_default(qs_dfq_opts_t *o);

/* "none", "cle", "cle+absorb", "cle+absorb+bc", "bc", or any other
 * '+'-joined set of cle, absorb and bc; what prefixes the message. */
int qs_dfq_method_parse(const char *text, const char *what, unsigned *steps);
/* The canonical name of steps ("cle+absorb+bc", "none"). */
const char *qs_dfq_method_str(unsigned steps, char *buf, size_t n);
int qs_dfq_relu6_parse(const char *text, const char *what, qs_dfq_relu6_t *out); /* "replace", "skip" */
int qs_dfq_bc_parse(const char *text, const char *what, qs_dfq_bc_t *out);       /* "analytic", "empirical" */

/* ---- what the transforms did --------------------------------------------------------------------- */

typedef struct {
    char first[QS_NAME_MAX], second[QS_NAME_MAX]; /* L1, L2 */
    char act[QS_NAME_MAX];   /* the activation node between ("" for none) */
    qs_op_t act_op;          /* QS_OP_RELU or QS_OP_RELU6 as found; QS_OP_INPUT for none */
    bool relu6_replaced;     /* the ReLU6 between is now a ReLU */
    int64_t channels;
    double s_min, s_max;     /* the equalization scales s_i (products over the sweeps) */
    int64_t absorbed;        /* channels with c_i > 0 moved into L2's bias */
    bool padded;             /* L2 reads zero padding: absorption is exact only away from its borders */
} qs_dfq_pair_t;

typedef struct {
    unsigned step;           /* the step that left the layer alone: QS_DFQ_CLE, QS_DFQ_ABSORB or QS_DFQ_BC */
    char node[QS_NAME_MAX];  /* the layer concerned */
    char reason[192];
} qs_dfq_skip_t;

typedef struct {
    char node[QS_NAME_MAX];
    qs_dfq_bc_t source;      /* where E[x] came from */
    double max_abs;          /* largest |correction| over the output channels */
    double mean_abs;
} qs_dfq_corr_t;

typedef struct {
    int folded;              /* batchnorms folded */
    int npairs;              /* pairs equalized and/or absorbed */
    qs_dfq_pair_t *pair;
    int nskipped;            /* layers a step left alone, and why */
    qs_dfq_skip_t *skipped;
    int sweeps;              /* equalization sweeps that changed weights */
    bool converged;
    double last_change;      /* max |s_i − 1| of the last sweep */
    int relu6_replaced;
    int absorb_pairs;        /* pairs whose L2 received a bias */
    int64_t absorbed;        /* channels, over all pairs */
    int ncorrected;          /* layers whose bias was corrected */
    qs_dfq_corr_t *corrected;
    int64_t bc_images;       /* empirical: images the means were taken over */
} qs_dfq_report_t;
void qs_dfq_report_free(qs_dfq_report_t *r); /* frees the arrays and zeroes *r */

/* ---- the network the steps work on ------------------------------------------------------------- */

/* The BN-folded graph and, per conv2d/linear whose batchnorm was folded, the
 * statistics of its pre-activation (the batchnorm's output): per output
 * channel the mean β and the standard deviation |γ|, kept in step with the
 * weights (equalization divides both by s_i, absorption shifts the mean by
 * −c_i). */
typedef struct {
    qs_graph_t *g;
    int folded;
    float **mean, **std;     /* g->nnodes entries, NULL where a node has no statistics */
} qs_dfq_net_t;

/* Folds g's batchnorms (qs_graph_fold_bn) and records their statistics. */
int qs_dfq_net_create(const qs_graph_t *g, qs_dfq_net_t **out);
void qs_dfq_net_free(qs_dfq_net_t *n);

/* Each step changes n in place and appends to rep (may be NULL); a network
 * the step cannot apply to (no pair, no statistics) is an error that says
 * why, listing what was skipped. o NULL: defaults. */
int qs_dfq_equalize(qs_dfq_net_t *n, const qs_dfq_opts_t *o, qs_dfq_report_t *rep);
int qs_dfq_absorb(qs_dfq_net_t *n, const qs_dfq_opts_t *o, qs_dfq_report_t *rep);
/* Bias correction against the weight quantizer of cfg (NULL: o->qcfg, then
 * the w8a8 preset): ΔW = W_q − W with W_q the weights qs_qnet_create
 * quantizes and the fake-quant engine runs; every conv2d/linear gets
 * b −= Σ ΔW·E[x] per output channel. Only the float biases change and the
 * weights' codes do not depend on them, so a run may quantize n->g with cfg
 * afterwards and calibrate its activations on the corrected network.
 * calib: the images of the empirical mode (a training split; NULL in the
 * analytic mode). */
int qs_dfq_bias_correct(qs_dfq_net_t *n, const qs_qconfig_t *cfg, const qs_dfq_opts_t *o, const qs_dataset_t *calib,
                        qs_dfq_report_t *rep);

/* The steps of o on a copy of g: *out is the BN-folded, transformed float
 * graph (the caller frees it). calib as for qs_dfq_bias_correct. */
int qs_dfq_apply(const qs_graph_t *g, const qs_dfq_opts_t *o, const qs_dataset_t *calib, qs_graph_t **out,
                 qs_dfq_report_t *rep);

/* E[min(max(X, lo), hi)] for X ~ N(mu, sigma²); lo may be -INFINITY and hi
 * INFINITY (ReLU: 0, INFINITY; ReLU6: 0, 6). sigma 0: the clamped mu. */
double qs_dfq_clipped_normal_mean(double mu, double sigma, double lo, double hi);

#ifdef __cplusplus
}
#endif
#endif
