/* sim/qeval.c — evaluation of a quantized network against its float model
 * on the same images: top-1/top-5, agreement of the top-1 classes, logit
 * SQNR and the per-point activation quantization statistics
 * (docs/quantization.md, "Metrics"). */
#include "sim/sim_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The first class with the largest logit (NaN never wins): the class of rank 0. */
static int argmax(const float *l, int n)
{
    int best = 0;
    for (int j = 1; j < n; j++)
        if (l[j] > l[best] || l[best] != l[best])
            best = j;
    return best;
}

void qs_logit_cmp_add(qs_logit_cmp_t *c, const float *ref, const float *y, const int32_t *labels, int64_t count,
                      int ncls)
{
    for (int64_t s = 0; s < count; s++) {
        const float *a = ref + s * ncls, *b = y + s * ncls;
        int64_t r = qs_sim_rank(b, ncls, labels[s]);
        c->top1 += r < 1;
        c->top5 += r < 5;
        c->ref_top1 += qs_sim_rank(a, ncls, labels[s]) < 1;
        c->agree += argmax(a, ncls) == argmax(b, ncls);
        for (int j = 0; j < ncls; j++) {
            double e = (double)a[j] - (double)b[j];
            c->signal += (double)a[j] * a[j];
            c->noise += e * e;
        }
    }
}

double qs_logit_cmp_sqnr_db(const qs_logit_cmp_t *c)
{
    return c->noise > 0.0 ? 10.0 * log10(c->signal / c->noise) : (c->noise == c->noise ? INFINITY : NAN);
}

void qs_qeval_free(qs_qeval_t *r)
{
    if (!r)
        return;
    free(r->act);
    r->act = NULL;
}

/* The images and float logits of one batch: from the evaluation set when
 * there is one (nothing computed), else normalized from d and run through
 * the float engine fe into ref. */
int qs_sim_ref_batch(const qs_dataset_t *d, const qs_evalset_t *set, const qs_graph_t *g, qs_engine_t *fe,
                     int64_t first, int64_t count, qs_tensor_t *view, int32_t **labels, float **ref)
{
    int ncls = g->num_classes;
    if (set) {
        view->data = qs_f32(set->x) + first * (set->x->size / set->n);
        *labels = set->labels + first;
        *ref = set->logits + first * ncls;
        return QS_OK;
    }
    const qs_tensor_t *yf;
    int rc = qs_dataset_batch(d, g, first, NULL, count, view, *labels);
    if (rc >= 0)
        rc = qs_engine_forward(fe, view, &yf);
    if (rc >= 0)
        memcpy(*ref, yf->data, (size_t)(count * ncls) * sizeof **ref);
    return rc;
}

void qs_evalset_free(qs_evalset_t *s)
{
    if (!s)
        return;
    qs_tensor_free(s->x);
    free(s->labels);
    free(s->logits);
    free(s);
}

int qs_evalset_create(const qs_graph_t *g, const qs_dataset_t *d, const qs_engine_opts_t *opts, int64_t batch,
                      qs_evalset_t **out)
{
    *out = NULL;
    int rc = qs_sim_check_eval_data(g, d);
    if (rc < 0)
        return rc;
    if (batch <= 0)
        batch = 256;
    qs_evalset_t *s = calloc(1, sizeof *s);
    int64_t shape[4] = {d->n, d->c, d->h, d->w};
    qs_engine_t *fe = NULL;
    if (!s || !(s->x = qs_tensor_create(QS_F32, 4, shape)) ||
        !(s->labels = malloc((size_t)d->n * sizeof *s->labels)) ||
        !(s->logits = malloc((size_t)(d->n * g->num_classes) * sizeof *s->logits))) {
        qs_evalset_free(s);
        return qs_error(QS_ERR_NOMEM, "eval: out of memory for %lld images of '%s'", (long long)d->n, d->source);
    }
    s->n = d->n;
    s->ncls = g->num_classes;
    snprintf(s->source, sizeof s->source, "%s", d->source);
    if ((rc = qs_engine_create(g, opts, &fe)) < 0)
        goto done;
    const int64_t per = d->c * d->h * d->w;
    int64_t correct = 0;
    for (int64_t first = 0; first < d->n && rc >= 0; first += batch) {
        int64_t count = d->n - first < batch ? d->n - first : batch;
        qs_tensor_t view = *s->x;
        view.shape[0] = count;
        view.size = count * per;
        view.data = qs_f32(s->x) + first * per;
        const qs_tensor_t *yf;
        if ((rc = qs_dataset_batch(d, g, first, NULL, count, &view, s->labels + first)) < 0 ||
            (rc = qs_engine_forward(fe, &view, &yf)) < 0)
            break;
        memcpy(s->logits + first * s->ncls, yf->data, (size_t)(count * s->ncls) * sizeof *s->logits);
        for (int64_t k = 0; k < count; k++)
            correct += qs_sim_rank(qs_f32(yf) + k * s->ncls, s->ncls, s->labels[first + k]) < 1;
    }
    s->float_top1 = (double)correct / (double)d->n;
done:
    qs_engine_free(fe);
    if (rc < 0) {
        qs_evalset_free(s);
        return rc;
    }
    *out = s;
    return QS_OK;
}

/* The evaluation set must be of the graph's input and classes. */
int qs_sim_check_evalset(const qs_graph_t *g, const qs_evalset_t *s)
{
    if (s->x->shape[1] != g->in_c || s->x->shape[2] != g->in_h || s->x->shape[3] != g->in_w ||
        s->ncls != g->num_classes)
        return qs_error(QS_ERR_SHAPE, "eval: the evaluation set of '%s' does not fit model '%s'", s->source, g->name);
    return QS_OK;
}

int qs_qeval(const qs_qnet_t *q, const qs_dataset_t *d, const qs_engine_opts_t *opts, const qs_qselect_t *sel,
             int64_t batch, qs_progress_cb_t *progress, qs_qeval_t *out)
{
    if (!d)
        return qs_error(QS_ERR_INVALID, "qs_qeval: no network, dataset or result");
    return qs_qeval_set(q, d, NULL, opts, sel, batch, progress, out);
}

int qs_qeval_set(const qs_qnet_t *q, const qs_dataset_t *d, const qs_evalset_t *set, const qs_engine_opts_t *opts,
                 const qs_qselect_t *sel, int64_t batch, qs_progress_cb_t *progress, qs_qeval_t *out)
{
    if (!q || (!d && !set) || !out)
        return qs_error(QS_ERR_INVALID, "qs_qeval: no network, dataset or result");
    memset(out, 0, sizeof *out);
    const qs_graph_t *g = q->g;
    if (batch <= 0)
        batch = 256;
    int rc = set ? qs_sim_check_evalset(g, set) : qs_sim_check_eval_data(g, d);
    if (rc < 0)
        return rc;
    const int64_t nimg = set ? set->n : d->n;
    const int64_t dc = set ? set->x->shape[1] : d->c, dh = set ? set->x->shape[2] : d->h,
                  dw = set ? set->x->shape[3] : d->w;
    for (int i = 0; i < g->nnodes; i++)
        if (q->layer[i].aq && !q->layer[i].ap)
            return qs_error(QS_ERR_INVALID, "eval: model '%s' is not calibrated (node '%s' has no activation "
                            "range): calibrate it first", g->name, g->nodes[i].name);
    if (batch > nimg)
        batch = nimg;

    qs_progress_begin(progress);
    qs_fake_t *f = NULL;
    qs_engine_t *fe = NULL;
    qs_tensor_t *x = NULL;
    int32_t *labels = NULL;
    float *ref = NULL;
    if ((rc = qs_fake_create(q, opts, sel, &f)) < 0 || (!set && (rc = qs_engine_create(g, opts, &fe)) < 0))
        goto done;
    qs_fake_collect_stats(f, true);
    const int ncls = g->num_classes;
    int64_t shape[4] = {batch, dc, dh, dw};
    x = qs_tensor_create(QS_F32, 4, shape);
    labels = set ? NULL : malloc((size_t)batch * sizeof *labels);
    ref = set ? NULL : malloc((size_t)(batch * ncls) * sizeof *ref);
    out->act = calloc((size_t)g->nnodes, sizeof *out->act);
    if (!x || (!set && (!labels || !ref)) || !out->act) {
        rc = qs_error(QS_ERR_NOMEM, "eval: out of memory for a batch of %lld images", (long long)batch);
        goto done;
    }
    qs_logit_cmp_t cmp = {0};
    double seconds = 0.0;
    for (int64_t first = 0; first < nimg; first += batch) {
        int64_t count = nimg - first < batch ? nimg - first : batch;
        qs_tensor_t view = *x;
        view.shape[0] = count;
        view.size = count * dc * dh * dw;
        const qs_tensor_t *yq;
        int32_t *lab = labels;
        float *rf = ref;
        if ((rc = qs_sim_ref_batch(d, set, g, fe, first, count, &view, &lab, &rf)) < 0)
            goto done;
        double t0 = qs_now_s();
        if ((rc = qs_fake_forward_at(f, &view, first, &yq)) < 0)
            goto done;
        seconds += qs_now_s() - t0;
        qs_logit_cmp_add(&cmp, rf, qs_f32(yq), lab, count, ncls);
        if ((rc = qs_progress_report(progress, "eval", first + count, nimg, NULL)) < 0)
            goto done;
    }
    out->images = nimg;
    out->top1 = (double)cmp.top1 / (double)nimg;
    out->top5 = (double)cmp.top5 / (double)nimg;
    out->float_top1 = (double)cmp.ref_top1 / (double)nimg;
    out->agreement = (double)cmp.agree / (double)nimg;
    out->logit_sqnr_db = qs_logit_cmp_sqnr_db(&cmp);
    out->seconds = seconds;
    out->img_s = seconds > 0.0 ? (double)nimg / seconds : 0.0;
    for (int i = 0; i < g->nnodes; i++)
        out->act[i] = *qs_fake_stats(f, i);
done:
    if (rc < 0)
        qs_qeval_free(out);
    qs_fake_free(f);
    qs_engine_free(fe);
    qs_tensor_free(x);
    free(labels);
    free(ref);
    return rc < 0 ? rc : QS_OK;
}
