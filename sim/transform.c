/* sim/transform.c — graph transforms of batchnorms: folding into the conv2d
 * or linear before them (DESIGN's transform order: after equalization,
 * before calibration), and re-estimating their statistics on data (after
 * pruning). */
#include "sim/sim_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A batchnorm b folds into its producer p when p is a conv2d or linear whose
 * output nothing else reads (and which is not the network output): per output
 * channel o, with s = fl32(gamma / sqrtf(var + eps)) as the engine computes
 * it,
 *     W'[o, ...] = W[o, ...] · s
 *     b'[o]      = (b[o] − mean[o]) · s + beta[o]      (b = 0 without a bias)
 * and the readers of b read p instead. */
static bool foldable(const qs_graph_t *g, const int *readers, int b)
{
    const qs_node_t *bn = &g->nodes[b];
    if (bn->op != QS_OP_BATCHNORM || bn->ninputs != 1)
        return false;
    int p = bn->inputs[0];
    const qs_node_t *pn = &g->nodes[p];
    return (pn->op == QS_OP_CONV2D || pn->op == QS_OP_LINEAR) && readers[p] == 1 && g->output != p && pn->weight;
}

static int fold_into(qs_node_t *p, const qs_node_t *bn)
{
    int64_t cout = p->weight->shape[0];
    if (bn->gamma->size != cout)
        return qs_error(QS_ERR_SHAPE, "node '%s': %lld channels, but '%s' produces %lld", bn->name,
                        (long long)bn->gamma->size, p->name, (long long)cout);
    if (!p->bias) {
        int64_t shape[1] = {cout};
        if (!(p->bias = qs_tensor_create(QS_F32, 1, shape)))
            return qs_last_status();
    }
    int64_t per = p->weight->size / cout;
    float *w = qs_f32(p->weight), *bias = qs_f32(p->bias);
    const float *gamma = qs_f32(bn->gamma), *beta = qs_f32(bn->beta), *mean = qs_f32(bn->mean),
                *var = qs_f32(bn->var);
    for (int64_t o = 0; o < cout; o++) {
        float s = gamma[o] / sqrtf(var[o] + bn->eps);
        for (int64_t k = 0; k < per; k++)
            w[o * per + k] *= s;
        bias[o] = (bias[o] - mean[o]) * s + beta[o];
    }
    return QS_OK;
}

int qs_graph_fold_bn(const qs_graph_t *g, qs_graph_t **out, int *folded)
{
    *out = NULL;
    if (folded)
        *folded = 0;
    qs_graph_t *c = qs_graph_clone(g);
    if (!c)
        return qs_last_status();
    int n = c->nnodes, rc = QS_OK, count = 0;
    int *readers = calloc((size_t)n, sizeof *readers), *map = malloc((size_t)n * sizeof *map);
    bool *drop = calloc((size_t)n, sizeof *drop);
    if (!readers || !map || !drop) {
        rc = qs_error(QS_ERR_NOMEM, "out of memory folding batchnorm in '%s'", g->name);
        goto done;
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < c->nodes[i].ninputs; k++)
            readers[c->nodes[i].inputs[k]]++;
    for (int i = 0; i < n; i++) {
        if (!foldable(c, readers, i))
            continue;
        rc = fold_into(&c->nodes[c->nodes[i].inputs[0]], &c->nodes[i]);
        if (rc < 0)
            goto done;
        drop[i] = true;
        count++;
    }
    /* compact: a dropped batchnorm maps to its producer, which comes earlier */
    int kept = 0;
    for (int i = 0; i < n; i++) {
        if (drop[i]) {
            map[i] = map[c->nodes[i].inputs[0]];
            qs_sim_node_free_tensors(&c->nodes[i]);
            continue;
        }
        qs_node_t nd = c->nodes[i];
        for (int k = 0; k < nd.ninputs; k++)
            nd.inputs[k] = map[nd.inputs[k]];
        map[i] = kept;
        c->nodes[kept++] = nd;
    }
    c->output = map[c->output];
    c->nnodes = kept;
    rc = qs_graph_infer(c);
done:
    free(readers);
    free(map);
    free(drop);
    if (rc < 0) {
        qs_graph_free(c);
        return rc;
    }
    *out = c;
    if (folded)
        *folded = count;
    return QS_OK;
}

/* ---- batchnorm re-estimation ------------------------------------------------------------------ */

/* Per-sample, per-channel sums of one node's output, summed in sample order afterwards. */
typedef struct {
    int node;
    int64_t c, per; /* channels and values per channel of one sample */
    double *s1, *s2; /* [batch][c] */
} bnacc_t;

static int bn_hook(void *ctx, int node, qs_tensor_t *y, int64_t sample0, int thread)
{
    (void)thread;
    bnacc_t *a = ctx;
    if (node != a->node)
        return QS_OK;
    const int64_t count = y->shape[0];
    const float *v = qs_f32(y);
    for (int64_t s = 0; s < count; s++)
        for (int64_t ch = 0; ch < a->c; ch++) {
            const float *x = v + (s * a->c + ch) * a->per;
            double t1 = 0, t2 = 0;
            for (int64_t k = 0; k < a->per; k++)
                t1 += x[k], t2 += (double)x[k] * x[k];
            a->s1[(sample0 + s) * a->c + ch] = t1;
            a->s2[(sample0 + s) * a->c + ch] = t2;
        }
    return QS_OK;
}

int qs_graph_bn_reestimate(qs_graph_t *g, const qs_dataset_t *d, int64_t images, uint64_t seed, qs_pool_t *pool,
                           int *count)
{
    if (count)
        *count = 0;
    if (!g || !d)
        return qs_error(QS_ERR_INVALID, "batchnorm re-estimation: no graph or data");
    qs_dataset_t *sub = NULL;
    int rc = qs_dataset_subset(d, images < d->n ? images : d->n, seed, &sub);
    if (rc < 0)
        return rc;
    const int64_t batch = 256;
    int64_t shape[4] = {batch, g->in_c, g->in_h, g->in_w};
    qs_tensor_t *x = qs_tensor_create(QS_F32, 4, shape);
    bool *at = calloc((size_t)g->nnodes, sizeof *at);
    bnacc_t a = {0};
    if (!x || !at) {
        rc = qs_error(QS_ERR_NOMEM, "batchnorm re-estimation: out of memory");
        goto done;
    }
    /* one batchnorm at a time, in graph order: each sees the re-estimated ones before it */
    for (int b = 0; b < g->nnodes && rc >= 0; b++) {
        qs_node_t *bn = &g->nodes[b];
        if (bn->op != QS_OP_BATCHNORM)
            continue;
        const qs_node_t *src = &g->nodes[bn->inputs[0]];
        a.node = bn->inputs[0];
        a.c = src->out_shape[0];
        a.per = src->out_ndim == 3 ? src->out_shape[1] * src->out_shape[2] : 1;
        free(a.s1), free(a.s2);
        a.s1 = malloc((size_t)(batch * a.c) * sizeof *a.s1);
        a.s2 = malloc((size_t)(batch * a.c) * sizeof *a.s2);
        double *t1 = calloc((size_t)a.c, sizeof *t1), *t2 = calloc((size_t)a.c, sizeof *t2);
        qs_engine_t *e = NULL;
        qs_engine_opts_t eo = {pool, false};
        memset(at, 0, (size_t)g->nnodes * sizeof *at);
        at[a.node] = true;
        if (!a.s1 || !a.s2 || !t1 || !t2)
            rc = qs_error(QS_ERR_NOMEM, "batchnorm re-estimation: out of memory");
        if (rc >= 0 && (rc = qs_engine_create(g, &eo, &e)) >= 0)
            rc = qs_engine_set_hook_at(e, bn_hook, &a, at);
        for (int64_t first = 0; rc >= 0 && first < sub->n; first += batch) {
            int64_t n = sub->n - first < batch ? sub->n - first : batch;
            qs_tensor_t view = *x;
            view.shape[0] = n;
            view.size = n * g->in_c * g->in_h * g->in_w;
            const qs_tensor_t *out;
            if ((rc = qs_dataset_batch(sub, g, first, NULL, n, &view, NULL)) < 0 ||
                (rc = qs_engine_forward(e, &view, &out)) < 0)
                break;
            for (int64_t s = 0; s < n; s++)
                for (int64_t ch = 0; ch < a.c; ch++)
                    t1[ch] += a.s1[s * a.c + ch], t2[ch] += a.s2[s * a.c + ch];
        }
        if (rc >= 0) {
            const double cnt = (double)sub->n * (double)a.per;
            float *mean = qs_f32(bn->mean), *var = qs_f32(bn->var);
            for (int64_t ch = 0; ch < a.c; ch++) {
                double m = t1[ch] / cnt, v = t2[ch] / cnt - m * m;
                mean[ch] = (float)m;
                var[ch] = (float)(v > 0 ? v : 0);
            }
            if (count)
                (*count)++;
        }
        qs_engine_free(e);
        free(t1), free(t2);
    }
done:
    if (rc < 0)
        qs_error_context("batchnorm re-estimation of '%s': ", g->name);
    free(a.s1), free(a.s2);
    free(at);
    qs_tensor_free(x);
    qs_dataset_free(sub);
    return rc < 0 ? rc : QS_OK;
}
