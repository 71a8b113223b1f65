/* sim/qnet.c — a quantized network: the configuration resolved against a
 * BN-folded graph (which tensor is quantized how), the quantization points,
 * the weights' codes, and calibration of activations and biases
 * (docs/quantization.md). The fake-quant engine (fake.c), the evaluation
 * (qeval.c) and the quantized-model file (qmodel.c) all read a qs_qnet_t, so
 * they use identical parameters. */
#include "sim/sim_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool has_weights(qs_op_t op) { return op == QS_OP_CONV2D || op == QS_OP_LINEAR; }

int qs_qnet_first_layer(const qs_graph_t *g)
{
    for (int i = 0; g && i < g->nnodes; i++)
        if (has_weights(g->nodes[i].op))
            return i;
    return -1;
}

int qs_qnet_last_layer(const qs_graph_t *g)
{
    for (int i = g ? g->nnodes - 1 : -1; i >= 0; i--)
        if (has_weights(g->nodes[i].op))
            return i;
    return -1;
}

void qs_calib_opts_default(qs_calib_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->images = 1000;
    o->batch = 256;
    o->seed = 1;
}

void qs_qnet_free(qs_qnet_t *q)
{
    if (!q)
        return;
    for (int i = 0; q->layer && q->g && i < q->g->nnodes; i++) {
        qs_qlayer_t *l = &q->layer[i];
        qs_qparams_free(l->wp);
        qs_tensor_free(l->wcodes);
        qs_tensor_free(l->bcodes);
        qs_tensor_free(l->bscale);
        qs_qparams_free(l->ap);
    }
    free(q->layer);
    qs_graph_free(q->g);
    free(q);
}

/* ---- resolution ---------------------------------------------------------------------------------- */

static bool chain_op(qs_op_t op)
{
    return op == QS_OP_RELU || op == QS_OP_RELU6 || op == QS_OP_CLIP || op == QS_OP_BATCHNORM;
}

/* The quantization points (DESIGN, "Contracts"): every tensor an integer
 * engine materializes. A conv2d/linear/add/concat is followed through the
 * relu/relu6/clip/batchnorm nodes that are the sole readers of its output:
 * the end of that chain is the point. maxpool, flatten and reshape keep their
 * input's grid (a max of grid values is a grid value): they share its point.
 * softmax stays in float. Every other node is a point of its own. */
void qs_sim_find_points(const qs_graph_t *g, qs_qlayer_t *L)
{
    const int n = g->nnodes;
    int *readers = calloc((size_t)n, sizeof *readers), *reader = malloc((size_t)n * sizeof *reader);
    for (int i = 0; i < n; i++) {
        L[i].point = -2; /* not yet decided */
        L[i].ashare = -1;
    }
    if (readers && reader)
        for (int j = 0; j < n; j++)
            for (int k = 0; k < g->nodes[j].ninputs; k++) {
                readers[g->nodes[j].inputs[k]]++;
                reader[g->nodes[j].inputs[k]] = j;
            }
    for (int i = 0; i < n; i++) {
        if (L[i].point != -2)
            continue;
        const qs_node_t *nd = &g->nodes[i];
        switch (nd->op) {
        case QS_OP_CONV2D:
        case QS_OP_LINEAR:
        case QS_OP_ADD:
        case QS_OP_CONCAT: {
            int end = i;
            while (readers && reader && end != g->output && readers[end] == 1 &&
                   chain_op(g->nodes[reader[end]].op) && g->nodes[reader[end]].ninputs == 1)
                end = reader[end];
            for (int j = i; j != end; j = reader[j])
                L[j].point = end;
            L[end].point = end;
            break;
        }
        case QS_OP_MAXPOOL:
        case QS_OP_FLATTEN:
        case QS_OP_RESHAPE: {
            int src = L[nd->inputs[0]].point;
            L[i].point = i;
            L[i].ashare = src >= 0 ? (L[src].ashare >= 0 ? L[src].ashare : src) : -1;
            if (src < 0)
                L[i].point = -1;
            break;
        }
        case QS_OP_SOFTMAX: L[i].point = -1; break;
        default: L[i].point = i; break;
        }
    }
    free(readers);
    free(reader);
}

static int layer_list_error(const qs_graph_t *g, const char *what, const char *name, const char *problem)
{
    char list[1024];
    size_t used = 0;
    list[0] = '\0';
    for (int i = 1; i < g->nnodes && used < sizeof list; i++)
        if (has_weights(g->nodes[i].op))
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", g->nodes[i].name);
    return qs_error(QS_ERR_INVALID, "%s: '%s' %s (layers of '%s': %s; or first, last)", what, name, problem, g->name,
                    list);
}

static int resolve_node(const qs_graph_t *g, const char *name)
{
    if (strcmp(name, "first") == 0)
        return qs_qnet_first_layer(g);
    if (strcmp(name, "last") == 0)
        return qs_qnet_last_layer(g);
    return qs_graph_find(g, name);
}

/* The activation quantizers apply to one sample's tensor: channels are axis
 * 0 of (C, H, W) or (F). Group granularity runs along an op's reduction
 * dimension, which activations do not have. */
static int check_act_quantizer(const qs_quantizer_t *q, const char *what)
{
    if (q->gran.kind == QS_GRAN_GROUP)
        return qs_error(QS_ERR_INVALID, "%s: gran=group is for weights (groups run along a layer's reduction "
                        "dimension); activations are quantized per tensor or per channel", what);
    if (q->gran.kind == QS_GRAN_CHANNEL && q->gran.axis != 0 && q->gran.axis != -3)
        return qs_error(QS_ERR_INVALID, "%s: activations are quantized per channel on axis 0 (C of C,H,W); "
                        "gran=channel:%d is not supported", what, q->gran.axis);
    return QS_OK;
}

static int check_bias_quantizer(const qs_quantizer_t *q, const char *what)
{
    if (q->scheme != QS_SCHEME_SYMMETRIC && q->scheme != QS_SCHEME_SYMMETRIC_NARROW)
        return qs_error(QS_ERR_INVALID, "%s: biases are quantized with zero point 0 at s_w*s_x: use "
                        "scheme=symmetric or symmetric-narrow", what);
    return QS_OK;
}

/* Applies the configuration: the network-wide quantizers, then every
 * override in order. */
static int resolve(qs_qnet_t *q)
{
    const qs_graph_t *g = q->g;
    const qs_qconfig_t *c = &q->cfg;
    for (int i = 0; i < g->nnodes; i++) {
        qs_qlayer_t *l = &q->layer[i];
        const qs_node_t *nd = &g->nodes[i];
        l->wquant = c->q[QS_QT_WEIGHTS];
        l->bquant = c->q[QS_QT_BIAS];
        l->aquant = c->q[QS_QT_ACTS];
        l->wq = has_weights(nd->op) && c->on[QS_QT_WEIGHTS];
        l->bq = has_weights(nd->op) && nd->bias && c->on[QS_QT_BIAS];
        l->aq = l->point == i && l->ashare < 0 && c->on[QS_QT_ACTS];
    }
    for (int k = 0; k < c->noverrides; k++) {
        const qs_qoverride_t *o = &c->ov[k];
        char src[QS_NAME_MAX + 48];
        snprintf(src, sizeof src, "--layer %s:%s", o->layer, qs_qtarget_name(o->what));
        int i = resolve_node(g, o->layer);
        if (i < 0)
            return layer_list_error(g, src, o->layer, "is not a layer of the model");
        const qs_node_t *nd = &g->nodes[i];
        qs_qlayer_t *l = &q->layer[i];
        int rc = QS_OK;
        if (o->what == QS_QT_WEIGHTS || o->what == QS_QT_BIAS) {
            if (!has_weights(nd->op))
                return layer_list_error(g, src, o->layer, "has no weights");
            if (o->what == QS_QT_WEIGHTS) {
                l->wq = o->on;
                if (o->on)
                    rc = qs_quantizer_parse(o->spec, src, &l->wquant);
            } else {
                l->bq = o->on && nd->bias;
                if (o->on)
                    rc = qs_quantizer_parse(o->spec, src, &l->bquant);
            }
        } else {
            int p = l->point;
            if (p < 0)
                return qs_error(QS_ERR_INVALID, "%s: node '%s' (%s) has no activation quantization point", src,
                                nd->name, qs_op_name(nd->op));
            if (q->layer[p].ashare >= 0)
                return qs_error(QS_ERR_INVALID, "%s: node '%s' (%s) keeps the grid of '%s' (a max or a reshape of "
                                "quantized values); override that node instead", src, nd->name,
                                qs_op_name(nd->op), g->nodes[q->layer[p].ashare].name);
            q->layer[p].aq = o->on;
            if (o->on)
                rc = qs_quantizer_parse(o->spec, src, &q->layer[p].aquant);
        }
        if (rc < 0)
            return rc;
    }
    for (int i = 0; i < g->nnodes; i++) {
        qs_qlayer_t *l = &q->layer[i];
        char src[QS_NAME_MAX + 32];
        int rc = QS_OK;
        snprintf(src, sizeof src, "node '%s' acts", g->nodes[i].name);
        if (l->aq && (rc = check_act_quantizer(&l->aquant, src)) < 0)
            return rc;
        snprintf(src, sizeof src, "node '%s' bias", g->nodes[i].name);
        if (l->bq && (rc = check_bias_quantizer(&l->bquant, src)) < 0)
            return rc;
        /* distinct tensors draw distinct random bits under stochastic rounding */
        l->wquant.round.stream = 2 * (uint64_t)i;
        l->bquant.round.stream = 2 * (uint64_t)i + 1;
    }
    return QS_OK;
}

/* ---- weights ------------------------------------------------------------------------------------- */

qs_tensor_t qs_sim_weight_view(const qs_node_t *n, const qs_quantizer_t *q, void *data, qs_dtype_t dtype)
{
    qs_tensor_t v = *n->weight;
    v.dtype = dtype;
    v.data = data;
    /* groups run along the reduction dimension K = I·kh·kw of OIHW */
    if (((q->gran.kind == QS_GRAN_GROUP && q->gran.axis == -1) || (qs_grid_is_block(q->grid) && q->block_axis == -1)) &&
        v.ndim == 4) {
        v.ndim = 2;
        v.shape[1] = v.size / v.shape[0];
    }
    return v;
}

static int quantize_weights(qs_qnet_t *q, int i)
{
    qs_qlayer_t *l = &q->layer[i];
    const qs_node_t *nd = &q->g->nodes[i];
    char src[QS_NAME_MAX + 40];
    snprintf(src, sizeof src, "node '%s' weights", nd->name);
    int rc = qs_quantizer_validate(&l->wquant);
    if (rc < 0)
        return qs_error_context("%s: ", src);
    qs_tensor_t *w = qs_tensor_clone(nd->weight);
    if (!w || !(l->wcodes = qs_tensor_create(QS_I32, nd->weight->ndim, nd->weight->shape))) {
        qs_tensor_free(w);
        return qs_error_context("%s: ", src);
    }
    if (nd->mask) { /* pruned weights are zeros, and take part in the range as zeros */
        float *wv = qs_f32(w);
        const float *m = qs_f32(nd->mask);
        for (int64_t k = 0; k < w->size; k++)
            if (m[k] == 0.0f)
                wv[k] = 0.0f;
    }
    qs_tensor_t wv = qs_sim_weight_view(nd, &l->wquant, w->data, QS_F32);
    qs_tensor_t cv = qs_sim_weight_view(nd, &l->wquant, l->wcodes->data, QS_I32);
    if ((rc = qs_calibrate(&l->wquant, &wv, &l->wp)) >= 0)
        rc = qs_quantize(&l->wquant, l->wp, &wv, &cv, NULL, NULL, &l->wstats);
    qs_tensor_free(w);
    if (rc < 0)
        return qs_error_context("%s: ", src);
    return QS_OK;
}

int qs_qnet_create(const qs_graph_t *g, const qs_qconfig_t *cfg, qs_qnet_t **out)
{
    if (!out)
        return qs_error(QS_ERR_INVALID, "qs_qnet_create: no place for the result");
    *out = NULL;
    if (!g || !cfg)
        return qs_error(QS_ERR_INVALID, "qs_qnet_create: no graph or configuration");
    qs_qnet_t *q = calloc(1, sizeof *q);
    if (!q)
        return qs_error(QS_ERR_NOMEM, "quantize: out of memory");
    q->cfg = *cfg;
    int rc = qs_graph_fold_bn(g, &q->g, &q->folded);
    if (rc < 0) {
        free(q);
        return rc;
    }
    if (!(q->layer = calloc((size_t)q->g->nnodes, sizeof *q->layer))) {
        qs_qnet_free(q);
        return qs_error(QS_ERR_NOMEM, "quantize: out of memory");
    }
    qs_sim_find_points(q->g, q->layer);
    if ((rc = resolve(q)) < 0) {
        qs_qnet_free(q);
        return rc;
    }
    for (int i = 0; i < q->g->nnodes; i++)
        if (q->layer[i].wq && (rc = quantize_weights(q, i)) < 0) {
            qs_qnet_free(q);
            return rc;
        }
    *out = q;
    return QS_OK;
}

/* ---- calibration --------------------------------------------------------------------------------- */

void qs_sim_act_batch_quantizer(const qs_quantizer_t *q, qs_quantizer_t *out)
{
    *out = *q;
    if (out->gran.kind == QS_GRAN_CHANNEL)
        out->gran.axis = 1; /* axis 0 of a sample is axis 1 of [n, C, H, W] or [n, F] */
    if (qs_grid_is_block(out->grid))
        out->block_axis = 1; /* blocks of channels: the next layer's reduction dimension */
}

/* The calibration batch: the outputs of every point, copied by the hook at
 * their sample offsets, then given to the observers serially in point order
 * (observers are not thread-safe, and the order keeps results independent
 * of the thread count). */
typedef struct {
    const qs_qnet_t *q;
    int npoints;
    int *node;          /* point k is node node[k] */
    int *index;         /* node -> k, or -1 */
    int64_t *size;      /* per-sample elements of point k */
    float **buf;        /* [batch, size[k]] */
    qs_observer_t **obs;
    int64_t count;      /* samples in the current batch */
} calib_t;

static int calib_hook(void *ctx, int node, qs_tensor_t *y, int64_t sample0, int thread)
{
    (void)thread;
    calib_t *c = ctx;
    int k = c->index[node];
    if (k >= 0)
        memcpy(c->buf[k] + sample0 * c->size[k], y->data, (size_t)y->size * sizeof(float));
    return QS_OK;
}

static int calib_update(void *ctx, int64_t k0, int64_t k1, int thread)
{
    (void)thread;
    calib_t *c = ctx;
    for (int64_t k = k0; k < k1; k++) {
        const qs_node_t *nd = &c->q->g->nodes[c->node[k]];
        qs_tensor_t v;
        memset(&v, 0, sizeof v);
        v.dtype = QS_F32;
        v.ndim = 1 + nd->out_ndim;
        v.shape[0] = c->count;
        for (int d = 0; d < nd->out_ndim; d++)
            v.shape[1 + d] = nd->out_shape[d];
        v.size = c->count * c->size[k];
        v.data = c->buf[k];
        if (qs_observer_update(c->obs[k], &v) < 0)
            return qs_error_context("calibration of node '%s': ", nd->name);
    }
    return QS_OK;
}

static void calib_free(calib_t *c)
{
    for (int k = 0; k < c->npoints; k++) {
        if (c->buf)
            qs_free(c->buf[k]);
        if (c->obs)
            qs_observer_free(c->obs[k]);
    }
    free(c->buf);
    free(c->obs);
    free(c->node);
    free(c->index);
    free(c->size);
}

static int calib_setup(calib_t *c, const qs_qnet_t *q, int64_t batch)
{
    const qs_graph_t *g = q->g;
    memset(c, 0, sizeof *c);
    c->q = q;
    c->node = malloc((size_t)g->nnodes * sizeof *c->node);
    c->index = malloc((size_t)g->nnodes * sizeof *c->index);
    c->size = malloc((size_t)g->nnodes * sizeof *c->size);
    c->buf = calloc((size_t)g->nnodes, sizeof *c->buf);
    c->obs = calloc((size_t)g->nnodes, sizeof *c->obs);
    if (!c->node || !c->index || !c->size || !c->buf || !c->obs)
        return qs_error(QS_ERR_NOMEM, "calibration: out of memory");
    for (int i = 0; i < g->nnodes; i++) {
        c->index[i] = -1;
        if (!q->layer[i].aq)
            continue;
        const qs_node_t *nd = &g->nodes[i];
        int k = c->npoints++;
        c->index[i] = k;
        c->node[k] = i;
        c->size[k] = nd->out_shape[0] * (nd->out_ndim == 3 ? nd->out_shape[1] * nd->out_shape[2] : 1);
        if (!(c->buf[k] = qs_alloc((size_t)(batch * c->size[k]) * sizeof(float))))
            return qs_error(QS_ERR_NOMEM, "calibration: out of memory for node '%s' (%lld values per batch)",
                            nd->name, (long long)(batch * c->size[k]));
        qs_quantizer_t bq;
        qs_sim_act_batch_quantizer(&q->layer[i].aquant, &bq);
        int64_t shape[4] = {batch, nd->out_shape[0], nd->out_shape[1], nd->out_shape[2]};
        if (qs_observer_create(&bq, 1 + nd->out_ndim, shape, &c->obs[k]) < 0)
            return qs_error_context("calibration of node '%s': ", nd->name);
    }
    return QS_OK;
}

/* Copies point src's parameters into a new set. */
static qs_qparams_t *params_copy(const qs_qparams_t *p)
{
    qs_qparams_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    *c = *p;
    c->scale = malloc((size_t)p->count * sizeof *c->scale);
    c->zero_point = malloc((size_t)p->count * sizeof *c->zero_point);
    if (!c->scale || !c->zero_point) {
        free(c->scale);
        free(c->zero_point);
        free(c);
        return NULL;
    }
    memcpy(c->scale, p->scale, (size_t)p->count * sizeof *c->scale);
    memcpy(c->zero_point, p->zero_point, (size_t)p->count * sizeof *c->zero_point);
    c->levels = NULL;
    if (p->nlevels > 0) {
        size_t n = (size_t)p->count * (size_t)p->nlevels;
        if (!(c->levels = malloc(n * sizeof *c->levels))) {
            qs_qparams_free(c);
            return NULL;
        }
        memcpy(c->levels, p->levels, n * sizeof *c->levels);
    }
    return c;
}

/* The quantization point that feeds node i's first input, or -1. */
int qs_sim_input_point(const qs_qnet_t *q, int i)
{
    int in = q->g->nodes[i].inputs[0];
    int p = q->layer[in].point;
    if (p < 0)
        return -1;
    if (q->layer[p].ashare >= 0)
        p = q->layer[p].ashare;
    return q->layer[p].aq && q->layer[p].ap ? p : -1;
}

/* Bias codes at s_w·s_x (DESIGN, "Normative arithmetic"): needs a
 * per-tensor input scale; otherwise the bias stays in float. */
static int quantize_bias(qs_qnet_t *q, int i)
{
    qs_qlayer_t *l = &q->layer[i];
    const qs_node_t *nd = &q->g->nodes[i];
    qs_tensor_free(l->bcodes);
    qs_tensor_free(l->bscale);
    l->bcodes = l->bscale = NULL;
    int p = l->bq && l->wq ? qs_sim_input_point(q, i) : -1;
    if (p < 0 || q->layer[p].ap->count != 1)
        return QS_OK;
    bool signs = qs_grid_sign_weight(&l->wquant, 0) != INT32_MIN; /* ±v = v·(±1): s_w = v */
    if ((l->wquant.grid != QS_GRID_UNIFORM && !signs) || q->layer[p].aquant.grid != QS_GRID_UNIFORM)
        return QS_OK; /* s_w·s_x is an integer product's scale only on these grids: the bias stays in float */
    const float sx = q->layer[p].ap->scale[0];
    const int64_t o = nd->bias->size;
    if (l->wp->count != 1 && l->wp->count != o)
        return QS_OK; /* per-group weights: no single s_w per output channel; the bias stays in float */
    if (!(l->bcodes = qs_tensor_create(QS_I32, 1, &o)) || !(l->bscale = qs_tensor_create(QS_F32, 1, &o)))
        return qs_error_context("node '%s' bias: ", nd->name);
    const float *b = qs_f32(nd->bias);
    float *bs = qs_f32(l->bscale);
    int32_t *bc = qs_i32(l->bcodes);
    const int64_t per = l->wp->count == 1 ? 0 : 1; /* per-tensor or per-output-channel weight scale */
    for (int64_t k = 0; k < o; k++) {
        bs[k] = l->wp->scale[k * per] * sx;
        if (!(bs[k] > 0.0f) || bs[k] == INFINITY) {
            qs_tensor_free(l->bcodes);
            qs_tensor_free(l->bscale);
            l->bcodes = l->bscale = NULL;
            return qs_error(QS_ERR_NUMERIC, "node '%s' bias: the scale s_w*s_x of channel %lld is %g (s_w %g, "
                            "s_x %g), not a positive finite float32", nd->name, (long long)k, (double)bs[k],
                            (double)l->wp->scale[k * per], (double)sx);
        }
        bc[k] = qs_quantize_one(&l->bquant, b[k], bs[k], 0, (uint64_t)k, NULL);
    }
    return QS_OK;
}

int qs_qnet_calibrate(qs_qnet_t *q, const qs_dataset_t *d, const qs_calib_opts_t *o, qs_progress_cb_t *progress)
{
    if (!q || !d)
        return qs_error(QS_ERR_INVALID, "qs_qnet_calibrate: no network or dataset");
    qs_calib_opts_t def;
    if (!o) {
        qs_calib_opts_default(&def);
        o = &def;
    }
    const qs_graph_t *g = q->g;
    if (d->c != g->in_c || d->h != g->in_h || d->w != g->in_w)
        return qs_error(QS_ERR_SHAPE, "calibration: dataset '%s' has %lldx%lldx%lld images but model '%s' takes "
                        "%lldx%lldx%lld", d->source, (long long)d->c, (long long)d->h, (long long)d->w, g->name,
                        (long long)g->in_c, (long long)g->in_h, (long long)g->in_w);
    if (o->images < 1 || o->batch < 1)
        return qs_error(QS_ERR_INVALID, "calibration: %lld images in batches of %lld: both must be at least 1",
                        (long long)o->images, (long long)o->batch);
    const int64_t images = o->images < d->n ? o->images : d->n;
    const int64_t batch = o->batch < images ? o->batch : images;
    qs_dataset_t *sub = NULL;
    qs_graph_t *fg = NULL;
    qs_engine_t *e = NULL;
    qs_tensor_t *x = NULL;
    calib_t c;
    memset(&c, 0, sizeof c);
    int rc = qs_dataset_subset(d, images, o->seed, &sub);
    if (rc < 0)
        return rc;
    qs_progress_begin(progress);
    for (int i = 0; i < g->nnodes; i++) {
        qs_qparams_free(q->layer[i].ap);
        q->layer[i].ap = NULL;
    }
    q->calibrated = false;
    if ((rc = calib_setup(&c, q, batch)) < 0)
        goto done;
    /* weights fake-quantized, biases and activations in float */
    if ((rc = qs_sim_fake_graph(q, NULL, false, &fg)) < 0)
        goto done;
    qs_engine_opts_t eo = {o->pool, o->reference};
    if ((rc = qs_engine_create(fg, &eo, &e)) < 0)
        goto done;
    bool *hooked = calloc((size_t)g->nnodes, sizeof *hooked);
    if (!hooked) {
        rc = qs_error(QS_ERR_NOMEM, "calibration: out of memory");
        goto done;
    }
    for (int i = 0; i < g->nnodes; i++)
        hooked[i] = c.index[i] >= 0;
    rc = qs_engine_set_hook_at(e, calib_hook, &c, hooked);
    free(hooked);
    if (rc < 0)
        goto done;
    int64_t shape[4] = {batch, g->in_c, g->in_h, g->in_w};
    if (!(x = qs_tensor_create(QS_F32, 4, shape))) {
        rc = qs_error_context("calibration: ");
        goto done;
    }
    for (int64_t first = 0; first < images; first += batch) {
        int64_t count = images - first < batch ? images - first : batch;
        qs_tensor_t view = *x;
        view.shape[0] = count;
        view.size = count * g->in_c * g->in_h * g->in_w;
        const qs_tensor_t *y;
        c.count = count;
        if ((rc = qs_dataset_batch(sub, g, first, NULL, count, &view, NULL)) < 0 ||
            (rc = qs_engine_forward(e, &view, &y)) < 0 ||
            (rc = qs_pool_for(o->pool, c.npoints, 1, calib_update, &c)) < 0 ||
            (rc = qs_progress_report(progress, "calibrate", first + count, images, NULL)) < 0)
            goto done;
    }
    for (int k = 0; k < c.npoints; k++) {
        qs_qlayer_t *l = &q->layer[c.node[k]];
        qs_qparams_t *bp = NULL;
        if ((rc = qs_observer_finish(c.obs[k], &bp)) < 0) {
            rc = qs_error_context("calibration of node '%s': ", g->nodes[c.node[k]].name);
            goto done;
        }
        l->ap = bp;
    }
    for (int i = 0; i < g->nnodes; i++) {
        qs_qlayer_t *l = &q->layer[i];
        int s = l->ashare;
        if (s < 0 || l->point != i)
            continue;
        l->aq = q->layer[s].aq;
        l->aquant = q->layer[s].aquant;
        if (l->aq && q->layer[s].ap && !(l->ap = params_copy(q->layer[s].ap))) {
            rc = qs_error(QS_ERR_NOMEM, "calibration: out of memory");
            goto done;
        }
    }
    for (int i = 0; i < g->nnodes; i++)
        if (has_weights(g->nodes[i].op) && (rc = quantize_bias(q, i)) < 0)
            goto done;
    q->calibrated = true;
    snprintf(q->calib.source, sizeof q->calib.source, "%s", d->source);
    q->calib.images = images;
    q->calib.batch = batch;
    q->calib.seed = o->seed;
done:
    calib_free(&c);
    qs_tensor_free(x);
    qs_engine_free(e);
    qs_graph_free(fg);
    qs_dataset_free(sub);
    return rc < 0 ? rc : QS_OK;
}
