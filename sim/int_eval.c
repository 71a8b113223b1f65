/* sim/int_eval.c — evaluation of the integer engine against the float model
 * and the fake-quant engine on the same images: accuracy, agreement, logit
 * SQNR, per-point code mismatches against fake quantization and the
 * per-layer accumulator figures (docs/engine.md, "The integer engine"). */
#include "sim/sim_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const qs_qnet_t *q;
    const qs_int_t *ie;
    int n, threads;
    int64_t *mis, *far, *cmp; /* [threads][n] */
} tap_t;

/* The fake-quant engine's value at a point, back to its code: x̂ = fl32(s (c − z)) is
 * monotone in c and |x̂/s − (c − z)| is far below 1/2, so rounding x̂/s recovers c. */
static int tap_fn(void *ctx, int node, qs_tensor_t *y, int64_t sample0, int thread)
{
    tap_t *t = ctx;
    const qs_tensor_t *codes = qs_int_codes(t->ie, node);
    const qs_qparams_t *p = t->q->layer[node].ap;
    if (!codes || !p || p->count != 1)
        return QS_OK;
    const int64_t per = codes->size / (codes->shape[0] ? codes->shape[0] : 1);
    const int32_t *c = qs_i32(codes) + sample0 * per;
    const float *v = qs_f32(y);
    const double s = p->scale[0];
    const int32_t z = p->zero_point[0];
    int64_t m = 0, f = 0;
    for (int64_t k = 0; k < y->size; k++) {
        int64_t fc = (int64_t)rint((double)v[k] / s) + z;
        int64_t d = fc - c[k];
        m += d != 0;
        f += d > 1 || d < -1;
    }
    t->mis[thread * t->n + node] += m;
    t->far[thread * t->n + node] += f;
    t->cmp[thread * t->n + node] += y->size;
    return QS_OK;
}

void qs_int_eval_free(qs_int_eval_t *r)
{
    if (!r)
        return;
    free(r->mismatch);
    free(r->mismatch_far);
    free(r->compared);
    free(r->layer);
    memset(r, 0, sizeof *r);
}

int qs_int_eval(const qs_qnet_t *q, const qs_int_config_t *cfg, const qs_dataset_t *d, const qs_engine_opts_t *opts,
                int64_t batch, qs_progress_cb_t *progress, qs_int_eval_t *out)
{
    if (!d)
        return qs_error(QS_ERR_INVALID, "qs_int_eval: no network, dataset or result");
    return qs_int_eval_set(q, cfg, d, NULL, opts, batch, progress, out);
}

int qs_int_eval_set(const qs_qnet_t *q, const qs_int_config_t *cfg, const qs_dataset_t *d, const qs_evalset_t *set,
                    const qs_engine_opts_t *opts, int64_t batch, qs_progress_cb_t *progress, qs_int_eval_t *out)
{
    if (!q || (!d && !set) || !out)
        return qs_error(QS_ERR_INVALID, "qs_int_eval: no network, dataset or result");
    memset(out, 0, sizeof *out);
    const qs_graph_t *g = q->g;
    int rc = set ? qs_sim_check_evalset(g, set) : qs_sim_check_eval_data(g, d);
    if (rc < 0)
        return rc;
    const int64_t nimg = set ? set->n : d->n;
    const int64_t dc = set ? set->x->shape[1] : d->c, dh = set ? set->x->shape[2] : d->h,
                  dw = set ? set->x->shape[3] : d->w;
    if (batch <= 0)
        batch = 256;
    if (batch > nimg)
        batch = nimg;
    const int n = g->nnodes, ncls = g->num_classes;
    qs_int_t *ie = NULL;
    qs_fake_t *fk = NULL;
    qs_engine_t *fe = NULL;
    qs_tensor_t *x = NULL;
    int32_t *labels = NULL;
    float *ref = NULL, *fref = NULL;
    tap_t tap = {q, NULL, n, qs_pool_threads(opts ? opts->pool : NULL), NULL, NULL, NULL};
    qs_progress_begin(progress);
    if ((rc = qs_int_create(q, cfg, opts, &ie)) < 0 || (rc = qs_fake_create(q, opts, NULL, &fk)) < 0 ||
        (!set && (rc = qs_engine_create(g, opts, &fe)) < 0))
        goto done;
    tap.ie = ie;
    qs_fake_set_tap(fk, tap_fn, &tap);
    int64_t shape[4] = {batch, dc, dh, dw};
    x = qs_tensor_create(QS_F32, 4, shape);
    labels = set ? NULL : malloc((size_t)batch * sizeof *labels);
    ref = set ? NULL : malloc((size_t)(batch * ncls) * sizeof *ref);
    fref = malloc((size_t)(batch * ncls) * sizeof *fref);
    tap.mis = calloc((size_t)(tap.threads * n), sizeof *tap.mis);
    tap.far = calloc((size_t)(tap.threads * n), sizeof *tap.far);
    tap.cmp = calloc((size_t)(tap.threads * n), sizeof *tap.cmp);
    out->mismatch = calloc((size_t)n, sizeof *out->mismatch);
    out->mismatch_far = calloc((size_t)n, sizeof *out->mismatch_far);
    out->compared = calloc((size_t)n, sizeof *out->compared);
    out->layer = calloc((size_t)n, sizeof *out->layer);
    if (!x || (!set && (!labels || !ref)) || !fref || !tap.mis || !tap.far || !tap.cmp || !out->mismatch || !out->mismatch_far ||
        !out->compared || !out->layer) {
        rc = qs_error(QS_ERR_NOMEM, "eval: out of memory for a batch of %lld images", (long long)batch);
        goto done;
    }
    qs_logit_cmp_t vf = {0}, vq = {0}; /* against the float model, against fake-quant */
    double seconds = 0.0;
    for (int64_t first = 0; first < nimg; first += batch) {
        int64_t count = nimg - first < batch ? nimg - first : batch;
        qs_tensor_t view = *x;
        view.shape[0] = count;
        view.size = count * dc * dh * dw;
        const qs_tensor_t *yq, *yi;
        int32_t *lab = labels;
        float *rf = ref;
        if ((rc = qs_sim_ref_batch(d, set, g, fe, first, count, &view, &lab, &rf)) < 0)
            goto done;
        double t0 = qs_now_s();
        if ((rc = qs_int_forward(ie, &view, first, &yi)) < 0)
            goto done;
        seconds += qs_now_s() - t0;
        if ((rc = qs_fake_forward_at(fk, &view, first, &yq)) < 0) /* the tap compares codes here */
            goto done;
        memcpy(fref, yq->data, (size_t)(count * ncls) * sizeof *fref);
        qs_logit_cmp_add(&vf, rf, qs_f32(yi), lab, count, ncls);
        qs_logit_cmp_add(&vq, fref, qs_f32(yi), lab, count, ncls);
        if ((rc = qs_progress_report(progress, "eval", first + count, nimg, NULL)) < 0)
            goto done;
    }
    const double N = (double)nimg;
    out->images = nimg;
    out->top1 = (double)vf.top1 / N;
    out->top5 = (double)vf.top5 / N;
    out->float_top1 = (double)vf.ref_top1 / N;
    out->fake_top1 = (double)vq.ref_top1 / N;
    out->agreement = (double)vf.agree / N;
    out->fake_agreement = (double)vq.agree / N;
    out->logit_sqnr_db = qs_logit_cmp_sqnr_db(&vf);
    out->fake_logit_sqnr_db = qs_logit_cmp_sqnr_db(&vq);
    out->seconds = seconds;
    out->img_s = seconds > 0.0 ? N / seconds : 0.0;
    for (int i = 0; i < n; i++) {
        for (int t = 0; t < tap.threads; t++) {
            out->mismatch[i] += tap.mis[t * n + i];
            out->mismatch_far[i] += tap.far[t * n + i];
            out->compared[i] += tap.cmp[t * n + i];
        }
        out->layer[i] = *qs_int_layer(ie, i);
        out->outputs += out->layer[i].outputs;
        out->overflowed += out->layer[i].overflowed;
    }
done:
    if (rc < 0)
        qs_int_eval_free(out);
    qs_int_free(ie);
    qs_fake_free(fk);
    qs_engine_free(fe);
    qs_tensor_free(x);
    free(labels);
    free(ref);
    free(fref);
    free(tap.mis);
    free(tap.far);
    free(tap.cmp);
    return rc < 0 ? rc : QS_OK;
}
