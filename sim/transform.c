/* sim/transform.c — graph transforms that keep what a network computes:
 * BatchNorm folding (DESIGN's transform order: after equalization, before
 * calibration). */
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
