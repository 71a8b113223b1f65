/* sim/sensitivity.c — which parts of a quantized network cost accuracy
 * (docs/sensitivity.md): every unit (a layer with its weights, bias and
 * output point, or an activation point of its own) quantized alone and left
 * out alone, against the float model and the fully quantized one.
 *
 * Everything runs on the one calibration of q: a selection (qs_qselect_t)
 * only turns quantization on and off, so each run is what qs_qeval gives
 * for that selection, bit for bit. The float logits are computed once and
 * kept (images x classes floats), so a run costs one fake-quant pass. */
#include "sim/sim_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool has_weights(qs_op_t op) { return op == QS_OP_CONV2D || op == QS_OP_LINEAR; }

int qs_sens_units(const qs_qnet_t *q, qs_sens_unit_t *units)
{
    if (!q || !units)
        return qs_error(QS_ERR_INVALID, "qs_sens_units: no network or place for the units");
    const qs_graph_t *g = q->g;
    const int n = g->nnodes;
    bool *covered = calloc((size_t)n, sizeof *covered);
    if (!covered)
        return qs_error(QS_ERR_NOMEM, "sensitivity: out of memory");
    for (int i = 0; i < n; i++)
        if (has_weights(g->nodes[i].op) && q->layer[i].point >= 0)
            covered[q->layer[i].point] = true;
    int count = 0;
    for (int i = 0; i < n; i++) {
        const qs_qlayer_t *l = &q->layer[i];
        int p = l->point;
        bool layer = has_weights(g->nodes[i].op);
        /* a point's chain starts at its lowest node (topological order), so
         * the first node met that leads to an uncovered point names it */
        if (!layer && (p < 0 || covered[p] || q->layer[p].ashare >= 0 || q->layer[p].point != p))
            continue;
        qs_sens_unit_t *u = &units[count++];
        memset(u, 0, sizeof *u); /* padding too: results are compared bytewise */
        u->node = i;
        u->point = p;
        u->weights = layer && l->wq && l->wcodes;
        u->bias = u->weights && l->bcodes;
        u->acts = p >= 0 && q->layer[p].aq && q->layer[p].ap && q->layer[p].ashare < 0;
        if (p >= 0)
            covered[p] = true;
    }
    free(covered);
    return count;
}

void qs_sens_select(const qs_qnet_t *q, const qs_sens_unit_t *u, bool all_but, bool *weights, bool *acts)
{
    for (int i = 0; i < q->g->nnodes; i++)
        weights[i] = acts[i] = all_but;
    if (!u)
        return;
    if (has_weights(q->g->nodes[u->node].op))
        weights[u->node] = !all_but;
    if (u->point >= 0)
        acts[u->point] = !all_but;
}

void qs_sensitivity_free(qs_sensitivity_t *s)
{
    if (!s)
        return;
    free(s->row);
    free(s->order);
    free(s);
}

/* The first class with the largest logit, NaN never winning (qs_qeval's
 * agreement rule). */
static int top_class(const float *l, int n)
{
    int best = 0;
    for (int j = 1; j < n; j++)
        if (l[j] > l[best] || l[best] != l[best])
            best = j;
    return best;
}

static double sqnr_db(double signal, double noise)
{
    if (noise > 0.0)
        return 10.0 * log10(signal / noise);
    return noise == noise ? INFINITY : NAN;
}

typedef struct {
    const qs_qnet_t *q;
    const qs_dataset_t *d;
    const qs_engine_opts_t *opts;
    int64_t batch;
    int ncls;
    qs_tensor_t *x;   /* the batch buffer [batch, C, H, W] */
    int32_t *labels;  /* [images] */
    float *flog;      /* float logits [images, ncls] */
    int *fclass;      /* the float model's top-1 class per image */
    double signal;    /* Σ float logits², in image order */
} sens_ctx_t;

static qs_tensor_t batch_view(const sens_ctx_t *c, int64_t count)
{
    qs_tensor_t v = *c->x;
    v.shape[0] = count;
    v.size = count * c->d->c * c->d->h * c->d->w;
    return v;
}

/* The float model once: its logits, classes and correctness are what every
 * quantized run is compared with. */
static int float_pass(sens_ctx_t *c, qs_sens_run_t *r)
{
    const qs_dataset_t *d = c->d;
    qs_engine_t *e = NULL;
    int rc = qs_engine_create(c->q->g, c->opts, &e);
    if (rc < 0)
        return rc;
    int64_t correct = 0;
    double signal = 0.0;
    for (int64_t first = 0; first < d->n; first += c->batch) {
        int64_t count = d->n - first < c->batch ? d->n - first : c->batch;
        qs_tensor_t view = batch_view(c, count);
        const qs_tensor_t *y;
        if ((rc = qs_dataset_batch(d, c->q->g, first, NULL, count, &view, c->labels + first)) < 0 ||
            (rc = qs_engine_forward(e, &view, &y)) < 0)
            break;
        float *dst = c->flog + first * c->ncls;
        memcpy(dst, y->data, (size_t)(count * c->ncls) * sizeof *dst);
        for (int64_t s = 0; s < count; s++) {
            const float *a = dst + s * c->ncls;
            correct += qs_sim_rank(a, c->ncls, c->labels[first + s]) < 1;
            c->fclass[first + s] = top_class(a, c->ncls);
            for (int j = 0; j < c->ncls; j++)
                signal += (double)a[j] * a[j];
        }
    }
    qs_engine_free(e);
    if (rc < 0)
        return rc;
    c->signal = signal;
    r->correct = correct;
    r->agree = d->n;
    r->top1 = (double)correct / (double)d->n;
    r->agreement = 1.0;
    r->logit_sqnr_db = INFINITY;
    return QS_OK;
}

/* One fake-quant pass with a selection; the figures as qs_qeval computes
 * them (same images, same order of sums). */
static int fake_pass(const sens_ctx_t *c, const bool *weights, const bool *acts, qs_sens_run_t *r)
{
    const qs_dataset_t *d = c->d;
    qs_qselect_t sel = {weights, acts};
    qs_fake_t *f = NULL;
    int rc = qs_fake_create(c->q, c->opts, &sel, &f);
    if (rc < 0)
        return rc;
    int64_t correct = 0, agree = 0;
    double noise = 0.0;
    for (int64_t first = 0; first < d->n; first += c->batch) {
        int64_t count = d->n - first < c->batch ? d->n - first : c->batch;
        qs_tensor_t view = batch_view(c, count);
        const qs_tensor_t *y;
        if ((rc = qs_dataset_batch(d, c->q->g, first, NULL, count, &view, NULL)) < 0 ||
            (rc = qs_fake_forward_at(f, &view, first, &y)) < 0)
            break;
        const float *lq = qs_f32(y);
        for (int64_t s = 0; s < count; s++) {
            const float *a = c->flog + (first + s) * c->ncls, *b = lq + s * c->ncls;
            correct += qs_sim_rank(b, c->ncls, c->labels[first + s]) < 1;
            agree += c->fclass[first + s] == top_class(b, c->ncls);
            for (int j = 0; j < c->ncls; j++) {
                double e = (double)a[j] - (double)b[j];
                noise += e * e;
            }
        }
    }
    qs_fake_free(f);
    if (rc < 0)
        return rc;
    r->correct = correct;
    r->agree = agree;
    r->top1 = (double)correct / (double)d->n;
    r->agreement = (double)agree / (double)d->n;
    r->logit_sqnr_db = sqnr_db(c->signal, noise);
    return QS_OK;
}

/* What an evaluation needs (as qs_sim_check_eval_data, with this command's name in the messages). */
static int check_data(const qs_graph_t *g, const qs_dataset_t *d)
{
    if (d->c != g->in_c || d->h != g->in_h || d->w != g->in_w)
        return qs_error(QS_ERR_SHAPE, "sensitivity: dataset '%s' has %lldx%lldx%lld images but model '%s' takes "
                        "%lldx%lldx%lld", d->source, (long long)d->c, (long long)d->h, (long long)d->w, g->name,
                        (long long)g->in_c, (long long)g->in_h, (long long)g->in_w);
    if (d->n < 1)
        return qs_error(QS_ERR_INVALID, "sensitivity: dataset '%s' has no images", d->source);
    if (!d->labels)
        return qs_error(QS_ERR_INVALID, "sensitivity: dataset '%s' has no labels", d->source);
    for (int64_t i = 0; i < d->n; i++)
        if (d->labels[i] < 0 || d->labels[i] >= g->num_classes)
            return qs_error(QS_ERR_INVALID, "sensitivity: image %lld of '%s' has label %d, but model '%s' has %d "
                            "classes", (long long)i, d->source, (int)d->labels[i], g->name, g->num_classes);
    return QS_OK;
}

typedef struct {
    int64_t correct;
    int index;
} rank_key_t;

/* fewer correct images with the unit alone = a larger drop; then node order */
static int by_drop(const void *pa, const void *pb)
{
    const rank_key_t *a = pa, *b = pb;
    if (a->correct != b->correct)
        return a->correct < b->correct ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

int qs_sensitivity(const qs_qnet_t *q, const qs_dataset_t *d, const qs_engine_opts_t *opts, int64_t batch,
                   qs_progress_cb_t *progress, qs_sensitivity_t **out)
{
    if (!out)
        return qs_error(QS_ERR_INVALID, "qs_sensitivity: no place for the result");
    *out = NULL;
    if (!q || !d)
        return qs_error(QS_ERR_INVALID, "qs_sensitivity: no network or dataset");
    const qs_graph_t *g = q->g;
    int rc = check_data(g, d);
    if (rc < 0)
        return rc;
    for (int i = 0; i < g->nnodes; i++)
        if (q->layer[i].aq && !q->layer[i].ap)
            return qs_error(QS_ERR_INVALID, "sensitivity: model '%s' is not calibrated (node '%s' has no activation "
                            "range): calibrate it first", g->name, g->nodes[i].name);
    if (batch <= 0)
        batch = 256;
    if (batch > d->n)
        batch = d->n;

    const double t0 = qs_now_s();
    const int n = g->nnodes;
    sens_ctx_t c;
    memset(&c, 0, sizeof c);
    c.q = q;
    c.d = d;
    c.opts = opts;
    c.batch = batch;
    c.ncls = g->num_classes;
    qs_sensitivity_t *s = calloc(1, sizeof *s);
    qs_sens_unit_t *units = malloc((size_t)n * sizeof *units);
    bool *wsel = malloc((size_t)n * sizeof *wsel), *asel = malloc((size_t)n * sizeof *asel);
    rank_key_t *keys = NULL;
    int64_t shape[4] = {batch, d->c, d->h, d->w};
    c.x = qs_tensor_create(QS_F32, 4, shape);
    c.labels = malloc((size_t)d->n * sizeof *c.labels);
    c.flog = malloc((size_t)(d->n * c.ncls) * sizeof *c.flog);
    c.fclass = malloc((size_t)d->n * sizeof *c.fclass);
    if (!s || !units || !wsel || !asel || !c.x || !c.labels || !c.flog || !c.fclass) {
        rc = qs_error(QS_ERR_NOMEM, "sensitivity: out of memory for %lld images of %d classes", (long long)d->n,
                      c.ncls);
        goto done;
    }
    int nunits = qs_sens_units(q, units);
    if (nunits < 0) {
        rc = nunits;
        goto done;
    }
    s->images = d->n;
    s->nrows = nunits;
    s->row = calloc((size_t)nunits, sizeof *s->row);
    s->order = malloc((size_t)nunits * sizeof *s->order);
    keys = malloc((size_t)nunits * sizeof *keys);
    if (!s->row || !s->order || !keys) {
        rc = qs_error(QS_ERR_NOMEM, "sensitivity: out of memory");
        goto done;
    }

    qs_progress_begin(progress);
    if ((rc = float_pass(&c, &s->fp)) < 0) {
        qs_error_context("sensitivity, the float model: ");
        goto done;
    }
    qs_sens_select(q, NULL, true, wsel, asel);
    if ((rc = fake_pass(&c, wsel, asel, &s->all)) < 0) {
        qs_error_context("sensitivity, everything quantized: ");
        goto done;
    }
    s->runs = 1;
    if ((rc = qs_progress_report(progress, "sensitivity", 0, nunits, NULL)) < 0)
        goto done;
    for (int k = 0; k < nunits; k++) {
        qs_sens_row_t *r = &s->row[k];
        const char *name = g->nodes[units[k].node].name;
        r->u = units[k];
        /* a unit with nothing quantized has the baselines' selections */
        r->evaluated = r->u.weights || r->u.acts;
        if (!r->evaluated) {
            r->only = s->fp;
            r->all_but = s->all;
        } else {
            qs_sens_select(q, &r->u, false, wsel, asel);
            if ((rc = fake_pass(&c, wsel, asel, &r->only)) < 0) {
                qs_error_context("sensitivity, only '%s': ", name);
                goto done;
            }
            qs_sens_select(q, &r->u, true, wsel, asel);
            if ((rc = fake_pass(&c, wsel, asel, &r->all_but)) < 0) {
                qs_error_context("sensitivity, all but '%s': ", name);
                goto done;
            }
            s->runs += 2;
        }
        r->only_drop = s->fp.top1 - r->only.top1;
        r->all_but_gain = r->all_but.top1 - s->all.top1;
        keys[k].correct = r->only.correct;
        keys[k].index = k;
        if ((rc = qs_progress_report(progress, "sensitivity", k + 1, nunits, name)) < 0)
            goto done;
    }
    qsort(keys, (size_t)nunits, sizeof *keys, by_drop);
    for (int k = 0; k < nunits; k++)
        s->order[k] = keys[k].index;
    s->seconds = qs_now_s() - t0;
    *out = s;
    s = NULL;
done:
    qs_sensitivity_free(s);
    free(units);
    free(wsel);
    free(asel);
    free(keys);
    qs_tensor_free(c.x);
    free(c.labels);
    free(c.flog);
    free(c.fclass);
    return rc < 0 ? rc : QS_OK;
}
