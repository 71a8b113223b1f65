/* sim/fake.c — the fake-quant engine: the float engine run on the folded
 * graph with fake-quantized weights and biases, and an engine hook that
 * quantizes and dequantizes activations in place at the quantization points
 * (docs/quantization.md). Only the hooked nodes lose their fusion, so the
 * cost over the float engine is one quantization pass per point. */
#include "sim/sim_internal.h"

#include <stdlib.h>
#include <string.h>

struct qs_fake {
    const qs_qnet_t *q;
    qs_graph_t *g;        /* the fake graph the engine runs */
    qs_engine_t *e;
    int n;                /* nodes */
    bool *on;             /* activation quantization at node i */
    qs_quantizer_t *bq;   /* per node: the activation quantizer on a [count, ...] batch */
    bool stats;
    int64_t index0;       /* dataset index of the current forward's first image */
    int64_t cap;          /* samples the per-sample statistics hold */
    qs_qstats_t *sstat;   /* [cap][n] per-sample statistics of the current forward */
    qs_qstats_t *total;   /* [n] */
    qs_engine_hook_fn tap;
    void *tap_ctx;
};

/* x̂ = s (q − z) as qs_dequantize computes it, written over the weight. */
static int fake_weight(const qs_qnet_t *q, int i, qs_node_t *nd)
{
    const qs_qlayer_t *l = &q->layer[i];
    qs_tensor_t cv = qs_sim_weight_view(nd, &l->wquant, l->wcodes->data, QS_I32);
    qs_tensor_t wv = qs_sim_weight_view(nd, &l->wquant, nd->weight->data, QS_F32);
    return qs_dequantize(&l->wquant, l->wp, &cv, &wv);
}

int qs_sim_fake_graph(const qs_qnet_t *q, const bool *wsel, bool bias, qs_graph_t **out)
{
    *out = NULL;
    qs_graph_t *g = qs_graph_clone(q->g);
    if (!g)
        return qs_error_context("fake-quant graph: ");
    for (int i = 0; i < g->nnodes; i++) {
        const qs_qlayer_t *l = &q->layer[i];
        qs_node_t *nd = &g->nodes[i];
        if (wsel && !wsel[i])
            continue;
        int rc = l->wq && l->wcodes ? fake_weight(q, i, nd) : QS_OK;
        if (rc >= 0 && bias && l->bcodes) {
            float *b = qs_f32(nd->bias);
            const float *s = qs_f32(l->bscale);
            const int32_t *c = qs_i32(l->bcodes);
            for (int64_t k = 0; k < nd->bias->size; k++)
                b[k] = qs_dequantize_one(s[k], 0, c[k]);
        }
        if (rc < 0) {
            qs_graph_free(g);
            return qs_error_context("fake-quant graph, node '%s': ", nd->name);
        }
    }
    *out = g;
    return QS_OK;
}

static int fake_hook(void *ctx, int node, qs_tensor_t *y, int64_t sample0, int thread)
{
    qs_fake_t *f = ctx;
    const qs_qlayer_t *l = &f->q->layer[node];
    qs_quantizer_t *bq = &f->bq[node];
    const int64_t count = y->shape[0], per = y->size / (count > 0 ? count : 1);
    /* Stochastic rounding draws from a stream per (node, sample), so a
     * sample's bits do not depend on which block or thread it ran in; the
     * statistics are kept per sample and summed in sample order. */
    if (!f->stats && bq->round.mode != QS_ROUND_STOCHASTIC) {
        int rc = qs_quantize(bq, l->ap, y, NULL, y, NULL, NULL);
        return rc < 0 || !f->tap ? rc : f->tap(f->tap_ctx, node, y, sample0, thread);
    }
    for (int64_t s = 0; s < count; s++) {
        qs_tensor_t v = *y;
        v.shape[0] = 1;
        v.size = per;
        v.data = qs_f32(y) + s * per;
        qs_quantizer_t qs = *bq;
        qs.round.stream = ((uint64_t)node << 40) + (uint64_t)(f->index0 + sample0 + s);
        int rc = qs_quantize(&qs, l->ap, &v, NULL, &v, NULL, f->stats ? &f->sstat[(sample0 + s) * f->n + node] : NULL);
        if (rc < 0)
            return rc;
    }
    return f->tap ? f->tap(f->tap_ctx, node, y, sample0, thread) : QS_OK;
}

void qs_fake_set_tap(qs_fake_t *f, qs_engine_hook_fn fn, void *ctx)
{
    if (f) {
        f->tap = fn;
        f->tap_ctx = ctx;
    }
}

int qs_fake_create(const qs_qnet_t *q, const qs_engine_opts_t *opts, const qs_qselect_t *sel, qs_fake_t **out)
{
    if (!out)
        return qs_error(QS_ERR_INVALID, "qs_fake_create: no place for the result");
    *out = NULL;
    if (!q)
        return qs_error(QS_ERR_INVALID, "qs_fake_create: no quantized network");
    qs_fake_t *f = calloc(1, sizeof *f);
    if (!f)
        return qs_error(QS_ERR_NOMEM, "fake-quant engine: out of memory");
    f->q = q;
    f->n = q->g->nnodes;
    int rc = QS_OK;
    f->on = calloc((size_t)f->n, sizeof *f->on);
    f->bq = calloc((size_t)f->n, sizeof *f->bq);
    f->total = calloc((size_t)f->n, sizeof *f->total);
    if (!f->on || !f->bq || !f->total) {
        rc = qs_error(QS_ERR_NOMEM, "fake-quant engine: out of memory");
        goto fail;
    }
    bool any = false;
    for (int i = 0; i < f->n; i++) {
        const qs_qlayer_t *l = &q->layer[i];
        /* a shared point (maxpool, flatten) is already on its source's grid */
        f->on[i] = l->aq && l->ap && l->ashare < 0 && l->point == i && (!sel || !sel->acts || sel->acts[i]);
        qs_sim_act_batch_quantizer(&l->aquant, &f->bq[i]);
        any |= f->on[i];
    }
    if ((rc = qs_sim_fake_graph(q, sel ? sel->weights : NULL, true, &f->g)) < 0 ||
        (rc = qs_engine_create(f->g, opts, &f->e)) < 0)
        goto fail;
    if (any && (rc = qs_engine_set_hook_at(f->e, fake_hook, f, f->on)) < 0)
        goto fail;
    *out = f;
    return QS_OK;
fail:
    qs_fake_free(f);
    return rc;
}

void qs_fake_free(qs_fake_t *f)
{
    if (!f)
        return;
    qs_engine_free(f->e);
    qs_graph_free(f->g);
    free(f->on);
    free(f->bq);
    free(f->sstat);
    free(f->total);
    free(f);
}

void qs_fake_collect_stats(qs_fake_t *f, bool on)
{
    if (f)
        f->stats = on;
}

int qs_fake_forward(qs_fake_t *f, const qs_tensor_t *x, const qs_tensor_t **out)
{
    return qs_fake_forward_at(f, x, 0, out);
}

int qs_fake_forward_at(qs_fake_t *f, const qs_tensor_t *x, int64_t index0, const qs_tensor_t **out)
{
    if (!f || !x)
        return qs_error(QS_ERR_INVALID, "qs_fake_forward: no engine or input");
    f->index0 = index0;
    const int64_t n = x->ndim >= 1 ? x->shape[0] : 0;
    if (f->stats) {
        if (n > f->cap) {
            qs_qstats_t *s = realloc(f->sstat, (size_t)(n * f->n) * sizeof *s);
            if (!s)
                return qs_error(QS_ERR_NOMEM, "fake-quant engine: out of memory for statistics");
            f->sstat = s;
            f->cap = n;
        }
        memset(f->sstat, 0, (size_t)(n * f->n) * sizeof *f->sstat);
    }
    int rc = qs_engine_forward(f->e, x, out);
    if (rc < 0 || !f->stats)
        return rc;
    for (int64_t s = 0; s < n; s++)
        for (int i = 0; i < f->n; i++) {
            const qs_qstats_t *a = &f->sstat[s * f->n + i];
            qs_qstats_t *t = &f->total[i];
            if (!a->count)
                continue;
            t->count += a->count;
            t->clipped += a->clipped;
            t->nonfinite += a->nonfinite;
            t->sse += a->sse;
            t->signal += a->signal;
            if (a->max_abs_err > t->max_abs_err)
                t->max_abs_err = a->max_abs_err;
        }
    return QS_OK;
}

const qs_qstats_t *qs_fake_stats(const qs_fake_t *f, int node)
{
    static const qs_qstats_t none;
    return f && node >= 0 && node < f->n ? &f->total[node] : &none;
}

void qs_fake_reset_stats(qs_fake_t *f)
{
    if (f)
        memset(f->total, 0, (size_t)f->n * sizeof *f->total);
}
