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

int qs_qeval(const qs_qnet_t *q, const qs_dataset_t *d, const qs_engine_opts_t *opts, const qs_qselect_t *sel,
             int64_t batch, qs_progress_cb_t *progress, qs_qeval_t *out)
{
    if (!q || !d || !out)
        return qs_error(QS_ERR_INVALID, "qs_qeval: no network, dataset or result");
    memset(out, 0, sizeof *out);
    const qs_graph_t *g = q->g;
    if (batch <= 0)
        batch = 256;
    int rc = qs_sim_check_eval_data(g, d);
    if (rc < 0)
        return rc;
    for (int i = 0; i < g->nnodes; i++)
        if (q->layer[i].aq && !q->layer[i].ap)
            return qs_error(QS_ERR_INVALID, "eval: model '%s' is not calibrated (node '%s' has no activation "
                            "range): calibrate it first", g->name, g->nodes[i].name);
    if (batch > d->n)
        batch = d->n;

    qs_progress_begin(progress);
    qs_fake_t *f = NULL;
    qs_engine_t *fe = NULL;
    qs_tensor_t *x = NULL;
    int32_t *labels = NULL;
    float *ref = NULL;
    if ((rc = qs_fake_create(q, opts, sel, &f)) < 0 || (rc = qs_engine_create(g, opts, &fe)) < 0)
        goto done;
    qs_fake_collect_stats(f, true);
    const int ncls = g->num_classes;
    int64_t shape[4] = {batch, d->c, d->h, d->w};
    x = qs_tensor_create(QS_F32, 4, shape);
    labels = malloc((size_t)batch * sizeof *labels);
    ref = malloc((size_t)(batch * ncls) * sizeof *ref);
    out->act = calloc((size_t)g->nnodes, sizeof *out->act);
    if (!x || !labels || !ref || !out->act) {
        rc = qs_error(QS_ERR_NOMEM, "eval: out of memory for a batch of %lld images", (long long)batch);
        goto done;
    }
    qs_logit_cmp_t cmp = {0};
    double seconds = 0.0;
    for (int64_t first = 0; first < d->n; first += batch) {
        int64_t count = d->n - first < batch ? d->n - first : batch;
        qs_tensor_t view = *x;
        view.shape[0] = count;
        view.size = count * d->c * d->h * d->w;
        const qs_tensor_t *yf, *yq;
        if ((rc = qs_dataset_batch(d, g, first, NULL, count, &view, labels)) < 0 ||
            (rc = qs_engine_forward(fe, &view, &yf)) < 0)
            goto done;
        memcpy(ref, yf->data, (size_t)(count * ncls) * sizeof *ref);
        double t0 = qs_now_s();
        if ((rc = qs_fake_forward_at(f, &view, first, &yq)) < 0)
            goto done;
        seconds += qs_now_s() - t0;
        qs_logit_cmp_add(&cmp, ref, qs_f32(yq), labels, count, ncls);
        if ((rc = qs_progress_report(progress, "eval", first + count, d->n, NULL)) < 0)
            goto done;
    }
    out->images = d->n;
    out->top1 = (double)cmp.top1 / (double)d->n;
    out->top5 = (double)cmp.top5 / (double)d->n;
    out->float_top1 = (double)cmp.ref_top1 / (double)d->n;
    out->agreement = (double)cmp.agree / (double)d->n;
    out->logit_sqnr_db = qs_logit_cmp_sqnr_db(&cmp);
    out->seconds = seconds;
    out->img_s = seconds > 0.0 ? (double)d->n / seconds : 0.0;
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
