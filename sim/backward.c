/* sim/backward.c — the training executor: forward and backward of a whole
 * batch, one layer at a time, for the ops the trainer supports (conv2d with
 * any groups/stride/padding/dilation, linear, batchnorm in training mode,
 * relu, relu6, clip, add, gap, flatten, reshape). Every node keeps its output
 * and its gradient for all samples of the batch, because batchnorm in
 * training mode needs the statistics of the whole batch before any sample
 * can go on.
 *
 * Determinism (docs/training.md): per-sample work is independent of how the
 * pool splits the batch; per-channel sums (BN statistics and gradients, bias
 * gradients) are computed by one thread per channel, in sample order, in
 * double; weight gradients of convolutions are summed over fixed blocks of
 * QS_TRAIN_BLOCK samples (whatever the thread count) and then the blocks in
 * order. So a given seed gives the same bits for any thread count on the
 * same machine (OpenBLAS runs single-threaded inside our threads). */
#include "sim/sim_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define QS_TRAIN_BLOCK 8

struct qs_sim_trainer {
    qs_graph_t *g;
    qs_pool_t *pool;
    int nthreads;
    int64_t max_batch, n;
    bool train_fwd; /* the last forward was in training mode */
    double bn_m;
    int64_t *per; /* per-sample elements of each node's output */
    float **act, **grad;
    qs_sim_pgrad_t *pg, *vel;
    float **bmean, **binv; /* batchnorm: batch mean and 1/sqrt(var + eps) */
    uint8_t **pass;
    qs_sim_fq_fn *fq;
    void **fqctx;
    bool *need_grad; /* does any path from a parameter lead through this node's output? */
    float *scratch;
    size_t scratch_per;
    float *partial;
    int64_t partial_per;
};

/* ---- helpers ------------------------------------------------------------------ */

static float *falloc(int64_t n)
{
    if (n <= 0)
        n = 1;
    return calloc((size_t)n, sizeof(float));
}

static qs_sim_conv_t conv_geom(const qs_graph_t *g, const qs_node_t *nd)
{
    const qs_node_t *in = &g->nodes[nd->inputs[0]];
    qs_sim_conv_t c;
    c.c = in->out_shape[0];
    c.h = in->out_shape[1];
    c.w = in->out_shape[2];
    c.oc = nd->out_shape[0];
    c.oh = nd->out_shape[1];
    c.ow = nd->out_shape[2];
    c.kh = nd->kh;
    c.kw = nd->kw;
    c.sh = nd->stride_h;
    c.sw = nd->stride_w;
    c.dh = nd->dil_h;
    c.dw = nd->dil_w;
    c.pt = nd->pad_top;
    c.pl = nd->pad_left;
    c.pb = nd->pad_bottom;
    c.pr = nd->pad_right;
    c.groups = nd->groups;
    return c;
}

static bool conv_is_1x1(const qs_sim_conv_t *c)
{
    return c->kh == 1 && c->kw == 1 && c->sh == 1 && c->sw == 1 && c->pt == 0 && c->pl == 0 && c->pb == 0 &&
           c->pr == 0;
}

/* col[(ci kh + ky) kw + kx][oy ow + ox] for the ig channels starting at x */
static void im2col(const qs_sim_conv_t *c, int64_t ig, const float *x, float *col)
{
    const int64_t ohw = c->oh * c->ow;
    for (int64_t ci = 0; ci < ig; ci++)
        for (int ky = 0; ky < c->kh; ky++)
            for (int kx = 0; kx < c->kw; kx++) {
                float *row = col + ((ci * c->kh + ky) * c->kw + kx) * ohw;
                const float *xc = x + ci * c->h * c->w;
                for (int64_t oy = 0; oy < c->oh; oy++) {
                    int64_t iy = oy * c->sh + (int64_t)ky * c->dh - c->pt;
                    float *r = row + oy * c->ow;
                    if (iy < 0 || iy >= c->h) {
                        memset(r, 0, (size_t)c->ow * sizeof *r);
                        continue;
                    }
                    for (int64_t ox = 0; ox < c->ow; ox++) {
                        int64_t ix = ox * c->sw + (int64_t)kx * c->dw - c->pl;
                        r[ox] = (ix < 0 || ix >= c->w) ? 0.0f : xc[iy * c->w + ix];
                    }
                }
            }
}

/* dx += col2im(colgrad) */
static void col2im_add(const qs_sim_conv_t *c, int64_t ig, const float *col, float *dx)
{
    const int64_t ohw = c->oh * c->ow;
    for (int64_t ci = 0; ci < ig; ci++)
        for (int ky = 0; ky < c->kh; ky++)
            for (int kx = 0; kx < c->kw; kx++) {
                const float *row = col + ((ci * c->kh + ky) * c->kw + kx) * ohw;
                float *xc = dx + ci * c->h * c->w;
                for (int64_t oy = 0; oy < c->oh; oy++) {
                    int64_t iy = oy * c->sh + (int64_t)ky * c->dh - c->pt;
                    if (iy < 0 || iy >= c->h)
                        continue;
                    for (int64_t ox = 0; ox < c->ow; ox++) {
                        int64_t ix = ox * c->sw + (int64_t)kx * c->dw - c->pl;
                        if (ix >= 0 && ix < c->w)
                            xc[iy * c->w + ix] += row[oy * c->ow + ox];
                    }
                }
            }
}

/* ---- creation ------------------------------------------------------------------ */

void qs_sim_trainer_free(qs_sim_trainer_t *t)
{
    if (!t)
        return;
    if (t->g)
        for (int i = 0; i < t->g->nnodes; i++) {
            if (t->act)
                free(t->act[i]);
            if (t->grad)
                free(t->grad[i]);
            if (t->pg) {
                free(t->pg[i].weight);
                free(t->pg[i].bias);
                free(t->pg[i].gamma);
                free(t->pg[i].beta);
            }
            if (t->vel) {
                free(t->vel[i].weight);
                free(t->vel[i].bias);
                free(t->vel[i].gamma);
                free(t->vel[i].beta);
            }
            if (t->bmean)
                free(t->bmean[i]);
            if (t->binv)
                free(t->binv[i]);
            if (t->pass)
                free(t->pass[i]);
        }
    free(t->per);
    free(t->act);
    free(t->grad);
    free(t->pg);
    free(t->vel);
    free(t->bmean);
    free(t->binv);
    free(t->pass);
    free(t->fq);
    free(t->fqctx);
    free(t->need_grad);
    free(t->scratch);
    free(t->partial);
    free(t);
}

static int alloc_pgrad(qs_sim_pgrad_t *p, const qs_node_t *nd)
{
    if (nd->weight && !(p->weight = falloc(nd->weight->size)))
        return -1;
    if (nd->bias && !(p->bias = falloc(nd->bias->size)))
        return -1;
    if (nd->op == QS_OP_BATCHNORM && (!(p->gamma = falloc(nd->gamma->size)) || !(p->beta = falloc(nd->beta->size))))
        return -1;
    return 0;
}

int qs_sim_trainer_create(qs_graph_t *g, int64_t max_batch, qs_pool_t *pool, qs_sim_trainer_t **out)
{
    if (!out)
        return qs_error(QS_ERR_INVALID, "qs_sim_trainer_create: no output");
    *out = NULL;
    if (!g || max_batch < 1)
        return qs_error(QS_ERR_INVALID, "qs_sim_trainer_create: no graph or a batch of %lld", (long long)max_batch);
    int rc = qs_graph_infer(g);
    if (rc < 0)
        return rc;
    for (int i = 1; i < g->nnodes; i++) {
        qs_op_t op = g->nodes[i].op;
        if (op == QS_OP_CONCAT || op == QS_OP_MAXPOOL || op == QS_OP_AVGPOOL || op == QS_OP_SOFTMAX)
            return qs_error(QS_ERR_UNSUPPORTED,
                            "graph '%s': node '%s' (%s): the trainer does not support this op (it trains conv2d, "
                            "linear, batchnorm, relu, relu6, clip, add, gap, flatten and reshape)",
                            g->name, g->nodes[i].name, qs_op_name(op));
    }
    qs_sim_trainer_t *t = calloc(1, sizeof *t);
    if (!t)
        return qs_error(QS_ERR_NOMEM, "out of memory creating a trainer");
    int nn = g->nnodes;
    t->g = g;
    t->pool = pool;
    t->nthreads = qs_pool_threads(pool);
    t->max_batch = max_batch;
    t->bn_m = 0.1;
    t->per = calloc((size_t)nn, sizeof *t->per);
    t->act = calloc((size_t)nn, sizeof *t->act);
    t->grad = calloc((size_t)nn, sizeof *t->grad);
    t->pg = calloc((size_t)nn, sizeof *t->pg);
    t->vel = calloc((size_t)nn, sizeof *t->vel);
    t->bmean = calloc((size_t)nn, sizeof *t->bmean);
    t->binv = calloc((size_t)nn, sizeof *t->binv);
    t->pass = calloc((size_t)nn, sizeof *t->pass);
    t->fq = calloc((size_t)nn, sizeof *t->fq);
    t->fqctx = calloc((size_t)nn, sizeof *t->fqctx);
    t->need_grad = calloc((size_t)nn, sizeof *t->need_grad);
    if (!t->per || !t->act || !t->grad || !t->pg || !t->vel || !t->bmean || !t->binv || !t->pass || !t->fq ||
        !t->fqctx || !t->need_grad)
        goto nomem;
    size_t scratch = 1;
    int64_t partial = 1;
    for (int i = 0; i < nn; i++) {
        const qs_node_t *nd = &g->nodes[i];
        int64_t per = 1;
        for (int d = 0; d < nd->out_ndim; d++)
            per *= nd->out_shape[d];
        t->per[i] = per;
        if (!(t->act[i] = falloc(per * max_batch)) || !(t->grad[i] = falloc(per * max_batch)))
            goto nomem;
        if (alloc_pgrad(&t->pg[i], nd) < 0 || alloc_pgrad(&t->vel[i], nd) < 0)
            goto nomem;
        if (nd->op == QS_OP_BATCHNORM &&
            (!(t->bmean[i] = falloc(nd->out_shape[0])) || !(t->binv[i] = falloc(nd->out_shape[0]))))
            goto nomem;
        bool ng = nd->weight || nd->bias || nd->gamma;
        for (int k = 0; k < nd->ninputs; k++)
            ng = ng || t->need_grad[nd->inputs[k]];
        t->need_grad[i] = ng;
        if (nd->op == QS_OP_CONV2D) {
            qs_sim_conv_t c = conv_geom(g, nd);
            size_t k = (size_t)(c.c / c.groups * c.kh * c.kw);
            size_t s = 2 * k * (size_t)(c.oh * c.ow);
            if (s > scratch)
                scratch = s;
            if (nd->weight->size > partial)
                partial = nd->weight->size;
        }
    }
    t->scratch_per = scratch;
    t->partial_per = partial;
    int64_t nblocks = (max_batch + QS_TRAIN_BLOCK - 1) / QS_TRAIN_BLOCK;
    if (!(t->scratch = falloc((int64_t)scratch * t->nthreads)) || !(t->partial = falloc(partial * nblocks)))
        goto nomem;
    /* OpenBLAS must not start its own threads inside ours (DESIGN, "Determinism") */
    openblas_set_num_threads(1);
    *out = t;
    return QS_OK;
nomem:
    qs_sim_trainer_free(t);
    return qs_error(QS_ERR_NOMEM, "out of memory creating a trainer for '%s' (batch %lld)", g->name,
                    (long long)max_batch);
}

int qs_sim_trainer_set_fq(qs_sim_trainer_t *t, int node, qs_sim_fq_fn fn, void *ctx)
{
    if (!t || node <= 0 || node >= t->g->nnodes)
        return qs_error(QS_ERR_INVALID, "qs_sim_trainer_set_fq: no trainer or node %d out of range", node);
    if (fn && !t->pass[node]) {
        t->pass[node] = calloc((size_t)(t->per[node] * t->max_batch), 1);
        if (!t->pass[node])
            return qs_error(QS_ERR_NOMEM, "out of memory for the fake-quant mask of node '%s'",
                            t->g->nodes[node].name);
    }
    t->fq[node] = fn;
    t->fqctx[node] = ctx;
    return QS_OK;
}

void qs_sim_trainer_set_bn_momentum(qs_sim_trainer_t *t, double m)
{
    if (t)
        t->bn_m = m;
}

const float *qs_sim_trainer_act(const qs_sim_trainer_t *t, int node) { return t->act[node]; }
float *qs_sim_trainer_grad(const qs_sim_trainer_t *t, int node) { return t->grad[node]; }
const qs_sim_pgrad_t *qs_sim_trainer_pgrad(const qs_sim_trainer_t *t, int node) { return &t->pg[node]; }
const qs_sim_pgrad_t *qs_sim_trainer_velocity(const qs_sim_trainer_t *t, int node) { return &t->vel[node]; }
qs_graph_t *qs_sim_trainer_graph(const qs_sim_trainer_t *t) { return t->g; }

/* ---- per-node work ---------------------------------------------------------------- */

typedef struct {
    qs_sim_trainer_t *t;
    int node;
    bool train;
} job_t;

static float *thread_scratch(const qs_sim_trainer_t *t, int thread)
{
    return t->scratch + (size_t)thread * t->scratch_per;
}

/* conv forward, samples [b, e) */
static int conv_fwd(void *ctx, int64_t b, int64_t e, int thread)
{
    job_t *j = ctx;
    qs_sim_trainer_t *t = j->t;
    const qs_node_t *nd = &t->g->nodes[j->node];
    const qs_sim_conv_t c = conv_geom(t->g, nd);
    const int64_t ig = c.c / c.groups, og = c.oc / c.groups, ohw = c.oh * c.ow, K = ig * c.kh * c.kw;
    const float *w = qs_f32(nd->weight), *bias = nd->bias ? qs_f32(nd->bias) : NULL;
    float *col = thread_scratch(t, thread);
    for (int64_t s = b; s < e; s++) {
        const float *x = t->act[nd->inputs[0]] + s * t->per[nd->inputs[0]];
        float *y = t->act[j->node] + s * t->per[j->node];
        if (ig == 1) {
            for (int64_t o = 0; o < c.oc; o++) {
                const float *xc = x + (o / og) * c.h * c.w;
                float *yo = y + o * ohw;
                memset(yo, 0, (size_t)ohw * sizeof *yo);
                for (int ky = 0; ky < c.kh; ky++)
                    for (int kx = 0; kx < c.kw; kx++) {
                        float wv = w[(o * c.kh + ky) * c.kw + kx];
                        for (int64_t oy = 0; oy < c.oh; oy++) {
                            int64_t iy = oy * c.sh + (int64_t)ky * c.dh - c.pt;
                            if (iy < 0 || iy >= c.h)
                                continue;
                            const float *xr = xc + iy * c.w;
                            float *yr = yo + oy * c.ow;
                            for (int64_t ox = 0; ox < c.ow; ox++) {
                                int64_t ix = ox * c.sw + (int64_t)kx * c.dw - c.pl;
                                if (ix >= 0 && ix < c.w)
                                    yr[ox] += xr[ix] * wv;
                            }
                        }
                    }
            }
        } else {
            for (int gi = 0; gi < c.groups; gi++) {
                const float *xg = x + gi * ig * c.h * c.w;
                const float *src = xg;
                if (!conv_is_1x1(&c)) {
                    im2col(&c, ig, xg, col);
                    src = col;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)og, (blasint)ohw, (blasint)K, 1.0f,
                            w + gi * og * K, (blasint)K, src, (blasint)ohw, 0.0f, y + gi * og * ohw, (blasint)ohw);
            }
        }
        if (bias)
            for (int64_t o = 0; o < c.oc; o++)
                for (int64_t k = 0; k < ohw; k++)
                    y[o * ohw + k] += bias[o];
    }
    return QS_OK;
}

/* conv backward over fixed blocks [b, e) of QS_TRAIN_BLOCK samples: the
 * block's weight-gradient partial and every sample's input gradient */
static int conv_bwd(void *ctx, int64_t b, int64_t e, int thread)
{
    job_t *j = ctx;
    qs_sim_trainer_t *t = j->t;
    const qs_node_t *nd = &t->g->nodes[j->node];
    const int in = nd->inputs[0];
    const qs_sim_conv_t c = conv_geom(t->g, nd);
    const int64_t ig = c.c / c.groups, og = c.oc / c.groups, ohw = c.oh * c.ow, K = ig * c.kh * c.kw;
    const float *w = qs_f32(nd->weight);
    const bool need_dx = t->need_grad[in];
    float *col = thread_scratch(t, thread), *colg = col + K * ohw;
    for (int64_t blk = b; blk < e; blk++) {
        float *pw = t->partial + blk * t->partial_per;
        memset(pw, 0, (size_t)nd->weight->size * sizeof *pw);
        int64_t s1 = (blk + 1) * QS_TRAIN_BLOCK;
        if (s1 > t->n)
            s1 = t->n;
        for (int64_t s = blk * QS_TRAIN_BLOCK; s < s1; s++) {
            const float *x = t->act[in] + s * t->per[in];
            float *dx = t->grad[in] + s * t->per[in];
            const float *dy = t->grad[j->node] + s * t->per[j->node];
            if (ig == 1) {
                for (int64_t o = 0; o < c.oc; o++) {
                    const int64_t cix = (o / og) * c.h * c.w;
                    const float *dyo = dy + o * ohw;
                    for (int ky = 0; ky < c.kh; ky++)
                        for (int kx = 0; kx < c.kw; kx++) {
                            const int64_t wi = (o * c.kh + ky) * c.kw + kx;
                            const float wv = w[wi];
                            float acc = 0.0f;
                            for (int64_t oy = 0; oy < c.oh; oy++) {
                                int64_t iy = oy * c.sh + (int64_t)ky * c.dh - c.pt;
                                if (iy < 0 || iy >= c.h)
                                    continue;
                                const float *xr = x + cix + iy * c.w;
                                float *dxr = dx + cix + iy * c.w;
                                const float *dyr = dyo + oy * c.ow;
                                for (int64_t ox = 0; ox < c.ow; ox++) {
                                    int64_t ix = ox * c.sw + (int64_t)kx * c.dw - c.pl;
                                    if (ix < 0 || ix >= c.w)
                                        continue;
                                    acc += dyr[ox] * xr[ix];
                                    if (need_dx)
                                        dxr[ix] += dyr[ox] * wv;
                                }
                            }
                            pw[wi] += acc;
                        }
                }
                continue;
            }
            for (int gi = 0; gi < c.groups; gi++) {
                const float *xg = x + gi * ig * c.h * c.w;
                float *dxg = dx + gi * ig * c.h * c.w;
                const float *dyg = dy + gi * og * ohw;
                const float *wg = w + gi * og * K;
                const bool direct = conv_is_1x1(&c);
                const float *src = xg;
                if (!direct) {
                    im2col(&c, ig, xg, col);
                    src = col;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)og, (blasint)K, (blasint)ohw, 1.0f, dyg,
                            (blasint)ohw, src, (blasint)ohw, 1.0f, pw + gi * og * K, (blasint)K);
                if (!need_dx)
                    continue;
                if (direct) {
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)K, (blasint)ohw, (blasint)og, 1.0f,
                                wg, (blasint)K, dyg, (blasint)ohw, 1.0f, dxg, (blasint)ohw);
                } else {
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)K, (blasint)ohw, (blasint)og, 1.0f,
                                wg, (blasint)K, dyg, (blasint)ohw, 0.0f, colg, (blasint)ohw);
                    col2im_add(&c, ig, colg, dxg);
                }
            }
        }
    }
    return QS_OK;
}

/* weight gradient = the block partials summed in block order, elements [b, e) */
static int conv_reduce(void *ctx, int64_t b, int64_t e, int thread)
{
    (void)thread;
    job_t *j = ctx;
    qs_sim_trainer_t *t = j->t;
    int64_t nblocks = (t->n + QS_TRAIN_BLOCK - 1) / QS_TRAIN_BLOCK;
    float *dw = t->pg[j->node].weight;
    for (int64_t k = b; k < e; k++) {
        float s = t->partial[k];
        for (int64_t blk = 1; blk < nblocks; blk++)
            s += t->partial[blk * t->partial_per + k];
        dw[k] = s;
    }
    return QS_OK;
}

/* per output channel [b, e): bias gradient of a conv, in sample order, in double */
static int conv_bias_bwd(void *ctx, int64_t b, int64_t e, int thread)
{
    (void)thread;
    job_t *j = ctx;
    qs_sim_trainer_t *t = j->t;
    const qs_node_t *nd = &t->g->nodes[j->node];
    int64_t hw = nd->out_shape[1] * nd->out_shape[2];
    for (int64_t o = b; o < e; o++) {
        double s = 0.0;
        for (int64_t i = 0; i < t->n; i++) {
            const float *dy = t->grad[j->node] + i * t->per[j->node] + o * hw;
            for (int64_t k = 0; k < hw; k++)
                s += dy[k];
        }
        t->pg[j->node].bias[o] = (float)s;
    }
    return QS_OK;
}

/* batchnorm forward, channels [b, e) */
static int bn_fwd(void *ctx, int64_t b, int64_t e, int thread)
{
    (void)thread;
    job_t *j = ctx;
    qs_sim_trainer_t *t = j->t;
    qs_node_t *nd = &t->g->nodes[j->node];
    const int in = nd->inputs[0];
    const int64_t C = nd->out_shape[0], hw = t->per[j->node] / C, per = t->per[j->node];
    const double M = (double)(t->n * hw);
    float *gamma = qs_f32(nd->gamma), *beta = qs_f32(nd->beta), *rm = qs_f32(nd->mean), *rv = qs_f32(nd->var);
    for (int64_t c = b; c < e; c++) {
        float m, inv;
        if (j->train) {
            double s = 0.0;
            for (int64_t i = 0; i < t->n; i++) {
                const float *x = t->act[in] + i * per + c * hw;
                for (int64_t k = 0; k < hw; k++)
                    s += x[k];
            }
            double mean = s / M, v = 0.0;
            for (int64_t i = 0; i < t->n; i++) {
                const float *x = t->act[in] + i * per + c * hw;
                for (int64_t k = 0; k < hw; k++)
                    v += (x[k] - mean) * (x[k] - mean);
            }
            double var = v / M;
            m = (float)mean;
            inv = (float)(1.0 / sqrt(var + (double)nd->eps));
            t->bmean[j->node][c] = m;
            t->binv[j->node][c] = inv;
            if (t->bn_m > 0.0) {
                double unbiased = M > 1.0 ? var * M / (M - 1.0) : var;
                rm[c] = (float)((1.0 - t->bn_m) * rm[c] + t->bn_m * mean);
                rv[c] = (float)((1.0 - t->bn_m) * rv[c] + t->bn_m * unbiased);
            }
        } else {
            m = rm[c];
            inv = 1.0f / sqrtf(rv[c] + nd->eps);
        }
        for (int64_t i = 0; i < t->n; i++) {
            const float *x = t->act[in] + i * per + c * hw;
            float *y = t->act[j->node] + i * per + c * hw;
            for (int64_t k = 0; k < hw; k++)
                y[k] = (x[k] - m) * inv * gamma[c] + beta[c];
        }
    }
    return QS_OK;
}

/* batchnorm backward through the batch statistics, channels [b, e):
 * dx = gamma inv / M (M dy - sum dy - xhat sum(dy xhat)) */
static int bn_bwd(void *ctx, int64_t b, int64_t e, int thread)
{
    (void)thread;
    job_t *j = ctx;
    qs_sim_trainer_t *t = j->t;
    const qs_node_t *nd = &t->g->nodes[j->node];
    const int in = nd->inputs[0];
    const int64_t C = nd->out_shape[0], hw = t->per[j->node] / C, per = t->per[j->node];
    const double M = (double)(t->n * hw);
    const float *gamma = qs_f32(nd->gamma);
    const bool need_dx = t->need_grad[in];
    for (int64_t c = b; c < e; c++) {
        const float m = t->bmean[j->node][c], inv = t->binv[j->node][c];
        double sdy = 0.0, sdyx = 0.0;
        for (int64_t i = 0; i < t->n; i++) {
            const float *x = t->act[in] + i * per + c * hw;
            const float *dy = t->grad[j->node] + i * per + c * hw;
            for (int64_t k = 0; k < hw; k++) {
                float xh = (x[k] - m) * inv;
                sdy += dy[k];
                sdyx += (double)dy[k] * xh;
            }
        }
        t->pg[j->node].gamma[c] = (float)sdyx;
        t->pg[j->node].beta[c] = (float)sdy;
        if (!need_dx)
            continue;
        const double k0 = (double)gamma[c] * inv / M;
        for (int64_t i = 0; i < t->n; i++) {
            const float *x = t->act[in] + i * per + c * hw;
            const float *dy = t->grad[j->node] + i * per + c * hw;
            float *dx = t->grad[in] + i * per + c * hw;
            for (int64_t k = 0; k < hw; k++) {
                float xh = (x[k] - m) * inv;
                dx[k] += (float)(k0 * (M * dy[k] - sdy - xh * sdyx));
            }
        }
    }
    return QS_OK;
}

static void clamp_bounds(const qs_node_t *nd, float *lo, float *hi)
{
    *lo = 0.0f;
    *hi = INFINITY;
    if (nd->op == QS_OP_RELU6)
        *hi = 6.0f;
    else if (nd->op == QS_OP_CLIP) {
        *lo = nd->clip_min;
        *hi = nd->clip_max;
    }
}

/* elementwise ops, samples [b, e) */
static int elem_fwd(void *ctx, int64_t b, int64_t e, int thread)
{
    (void)thread;
    job_t *j = ctx;
    qs_sim_trainer_t *t = j->t;
    const qs_node_t *nd = &t->g->nodes[j->node];
    const int64_t per = t->per[j->node];
    for (int64_t s = b; s < e; s++) {
        float *y = t->act[j->node] + s * per;
        const float *x = t->act[nd->inputs[0]] + s * t->per[nd->inputs[0]];
        switch (nd->op) {
        case QS_OP_RELU:
        case QS_OP_RELU6:
        case QS_OP_CLIP: {
            float lo, hi;
            clamp_bounds(nd, &lo, &hi);
            for (int64_t k = 0; k < per; k++)
                y[k] = x[k] < lo ? lo : x[k] > hi ? hi : x[k];
            break;
        }
        case QS_OP_ADD:
            memcpy(y, x, (size_t)per * sizeof *y);
            for (int q = 1; q < nd->ninputs; q++) {
                const float *x2 = t->act[nd->inputs[q]] + s * per;
                for (int64_t k = 0; k < per; k++)
                    y[k] += x2[k];
            }
            break;
        case QS_OP_GAP: {
            int64_t C = nd->out_shape[0], hw = t->per[nd->inputs[0]] / C;
            for (int64_t c = 0; c < C; c++) {
                float acc = 0.0f;
                for (int64_t k = 0; k < hw; k++)
                    acc += x[c * hw + k];
                y[c] = acc / (float)hw;
            }
            break;
        }
        default: /* flatten, reshape */
            memcpy(y, x, (size_t)per * sizeof *y);
            break;
        }
    }
    return QS_OK;
}

static int elem_bwd(void *ctx, int64_t b, int64_t e, int thread)
{
    (void)thread;
    job_t *j = ctx;
    qs_sim_trainer_t *t = j->t;
    const qs_node_t *nd = &t->g->nodes[j->node];
    const int64_t per = t->per[j->node];
    for (int64_t s = b; s < e; s++) {
        const float *dy = t->grad[j->node] + s * per;
        const int in = nd->inputs[0];
        const float *x = t->act[in] + s * t->per[in];
        float *dx = t->grad[in] + s * t->per[in];
        switch (nd->op) {
        case QS_OP_RELU:
        case QS_OP_RELU6:
        case QS_OP_CLIP: {
            /* the gradient passes strictly inside (lo, hi), as PyTorch's hardtanh/relu */
            float lo, hi;
            clamp_bounds(nd, &lo, &hi);
            for (int64_t k = 0; k < per; k++)
                if (x[k] > lo && x[k] < hi)
                    dx[k] += dy[k];
            break;
        }
        case QS_OP_ADD:
            for (int q = 0; q < nd->ninputs; q++) {
                int iq = nd->inputs[q];
                if (!t->need_grad[iq])
                    continue;
                float *dq = t->grad[iq] + s * per;
                for (int64_t k = 0; k < per; k++)
                    dq[k] += dy[k];
            }
            break;
        case QS_OP_GAP: {
            int64_t C = nd->out_shape[0], hw = t->per[in] / C;
            for (int64_t c = 0; c < C; c++) {
                float d = dy[c] / (float)hw;
                for (int64_t k = 0; k < hw; k++)
                    dx[c * hw + k] += d;
            }
            break;
        }
        default:
            for (int64_t k = 0; k < per; k++)
                dx[k] += dy[k];
            break;
        }
    }
    return QS_OK;
}

/* linear on the whole batch: one small sgemm each way, single-threaded */
static void linear_fwd(qs_sim_trainer_t *t, int node)
{
    const qs_node_t *nd = &t->g->nodes[node];
    const int64_t out = nd->weight->shape[0], in = nd->weight->shape[1];
    float *y = t->act[node];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)t->n, (blasint)out, (blasint)in, 1.0f,
                t->act[nd->inputs[0]], (blasint)in, qs_f32(nd->weight), (blasint)in, 0.0f, y, (blasint)out);
    if (nd->bias)
        for (int64_t s = 0; s < t->n; s++)
            for (int64_t o = 0; o < out; o++)
                y[s * out + o] += qs_f32(nd->bias)[o];
}

static void linear_bwd(qs_sim_trainer_t *t, int node)
{
    const qs_node_t *nd = &t->g->nodes[node];
    const int in_node = nd->inputs[0];
    const int64_t out = nd->weight->shape[0], in = nd->weight->shape[1];
    const float *dy = t->grad[node];
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)out, (blasint)in, (blasint)t->n, 1.0f, dy,
                (blasint)out, t->act[in_node], (blasint)in, 0.0f, t->pg[node].weight, (blasint)in);
    if (nd->bias)
        for (int64_t o = 0; o < out; o++) {
            double s = 0.0;
            for (int64_t i = 0; i < t->n; i++)
                s += dy[i * out + o];
            t->pg[node].bias[o] = (float)s;
        }
    if (t->need_grad[in_node])
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)t->n, (blasint)in, (blasint)out, 1.0f, dy,
                    (blasint)out, qs_f32(nd->weight), (blasint)in, 1.0f, t->grad[in_node], (blasint)in);
}

/* ---- the passes ---------------------------------------------------------------------- */

int qs_sim_trainer_forward(qs_sim_trainer_t *t, const float *x, int64_t n, bool train)
{
    if (!t || !x || n < 1 || n > t->max_batch)
        return qs_error(QS_ERR_INVALID, "trainer forward: no trainer or input, or a batch of %lld (at most %lld)",
                        (long long)n, t ? (long long)t->max_batch : 0LL);
    if (train && n < 2)
        return qs_error(QS_ERR_INVALID, "trainer forward: batchnorm in training mode needs at least 2 samples");
    qs_graph_t *g = t->g;
    t->n = n;
    t->train_fwd = train;
    memcpy(t->act[0], x, (size_t)(n * t->per[0]) * sizeof(float));
    for (int i = 1; i < g->nnodes; i++) {
        const qs_node_t *nd = &g->nodes[i];
        job_t j = {t, i, train};
        int rc = QS_OK;
        switch (nd->op) {
        case QS_OP_CONV2D:
            rc = qs_pool_for(t->pool, n, 1, conv_fwd, &j);
            break;
        case QS_OP_BATCHNORM:
            rc = qs_pool_for(t->pool, nd->out_shape[0], 1, bn_fwd, &j);
            break;
        case QS_OP_LINEAR:
            linear_fwd(t, i);
            break;
        default:
            rc = qs_pool_for(t->pool, n, 1, elem_fwd, &j);
            break;
        }
        if (rc == QS_OK && t->fq[i])
            rc = t->fq[i](t->fqctx[i], i, t->act[i], t->pass[i], n, t->per[i]);
        if (rc < 0)
            return rc;
    }
    return QS_OK;
}

int qs_sim_trainer_backward(qs_sim_trainer_t *t, const float *dout)
{
    if (!t || !dout)
        return qs_error(QS_ERR_INVALID, "trainer backward: no trainer or output gradient");
    if (!t->train_fwd)
        return qs_error(QS_ERR_INVALID, "trainer backward: the last forward was not in training mode");
    qs_graph_t *g = t->g;
    const int64_t n = t->n;
    for (int i = 0; i < g->nnodes; i++)
        if (t->need_grad[i])
            memset(t->grad[i], 0, (size_t)(n * t->per[i]) * sizeof(float));
    memcpy(t->grad[g->output], dout, (size_t)(n * t->per[g->output]) * sizeof(float));
    for (int i = g->output; i >= 1; i--) {
        const qs_node_t *nd = &g->nodes[i];
        if (!t->need_grad[i])
            continue;
        if (t->fq[i]) {
            float *d = t->grad[i];
            const uint8_t *p = t->pass[i];
            for (int64_t k = 0; k < n * t->per[i]; k++)
                if (!p[k])
                    d[k] = 0.0f;
        }
        job_t j = {t, i, true};
        int rc = QS_OK;
        switch (nd->op) {
        case QS_OP_CONV2D: {
            int64_t nblocks = (n + QS_TRAIN_BLOCK - 1) / QS_TRAIN_BLOCK;
            rc = qs_pool_for(t->pool, nblocks, 1, conv_bwd, &j);
            if (rc == QS_OK)
                rc = qs_pool_for(t->pool, nd->weight->size, 1024, conv_reduce, &j);
            if (rc == QS_OK && nd->bias)
                rc = qs_pool_for(t->pool, nd->out_shape[0], 1, conv_bias_bwd, &j);
            break;
        }
        case QS_OP_BATCHNORM:
            rc = qs_pool_for(t->pool, nd->out_shape[0], 1, bn_bwd, &j);
            break;
        case QS_OP_LINEAR:
            linear_bwd(t, i);
            break;
        default:
            if (nd->op == QS_OP_ADD || t->need_grad[nd->inputs[0]])
                rc = qs_pool_for(t->pool, n, 1, elem_bwd, &j);
            break;
        }
        if (rc < 0)
            return rc;
    }
    return QS_OK;
}
