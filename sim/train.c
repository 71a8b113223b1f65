/* sim/train.c — `qs_train`: SGD with momentum and per-group weight decay, a
 * cosine learning-rate schedule with linear warm-up, softmax cross-entropy,
 * seeded shuffling and random-crop/flip augmentation, on the executor of
 * backward.c; after each epoch the float engine evaluates the test set.
 * docs/training.md gives every definition used here. */
#include "sim/sim_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Philox streams of the trainer (key = the seed): word i of stream
 * SHUFFLE + epoch draws the shuffle's step i, word i of AUGMENT + epoch the
 * augmentation of dataset image i. Epochs are 1-based. */
#define STREAM_SHUFFLE (UINT64_C(1) << 32)
#define STREAM_AUGMENT (UINT64_C(2) << 32)

void qs_train_opts_default(qs_train_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->epochs = 15;
    o->batch = 128;
    o->lr = 0.1;
    o->lr_min = 0.0;
    o->warmup_epochs = 0;
    o->momentum = 0.9;
    o->weight_decay = 5e-4;
    o->wd_depthwise = true;
    o->wd_bn = true;
    o->wd_bias = true;
    o->bn_momentum = 0.1;
    o->augment = true;
    o->limit = 0;
    o->seed = 1;
    o->pool = NULL;
}

double qs_sim_xent(int64_t n, int64_t f, const float *logits, const int32_t *labels, float *dlogits, int64_t *correct)
{
    double total = 0.0;
    int64_t ok = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + i * f;
        int32_t y = labels[i];
        double mx = z[0];
        int64_t larger = 0;
        for (int64_t k = 1; k < f; k++)
            if (z[k] > mx)
                mx = z[k];
        double s = 0.0;
        for (int64_t k = 0; k < f; k++) {
            s += exp((double)z[k] - mx);
            if (z[k] > z[y])
                larger++;
        }
        ok += larger == 0;
        double lse = mx + log(s);
        total += lse - (double)z[y];
        if (dlogits)
            for (int64_t k = 0; k < f; k++) {
                double p = exp((double)z[k] - lse);
                dlogits[i * f + k] = (float)((p - (k == y ? 1.0 : 0.0)) / (double)n);
            }
    }
    if (correct)
        *correct = ok;
    return total / (double)n;
}

double qs_sim_lr_at(double lr, double lr_min, int64_t it, int64_t total, int64_t warm)
{
    if (it < warm)
        return lr * (double)(it + 1) / (double)warm;
    if (total <= warm)
        return lr;
    double p = (double)(it - warm) / (double)(total - warm);
    return lr_min + (lr - lr_min) * 0.5 * (1.0 + cos(3.14159265358979323846 * p));
}

double qs_sim_wd_for(const qs_node_t *n, int which, const qs_sim_sgd_t *s)
{
    bool on = true;
    if (which == 1)
        on = s->wd_bias;
    else if (which >= 2)
        on = s->wd_bn;
    else if (n->op == QS_OP_CONV2D && n->weight && n->weight->shape[1] == 1 && n->groups > 1)
        on = s->wd_depthwise; /* one input channel per group: depthwise (any multiplier) */
    return on ? s->weight_decay : 0.0;
}

static void sgd_one(float *w, float *v, const float *g, int64_t n, const qs_sim_sgd_t *s, double wd,
                    const float *mask)
{
    const float m = (float)s->momentum, lr = (float)s->lr, d = (float)wd;
    for (int64_t k = 0; k < n; k++) {
        v[k] = m * v[k] + g[k] + d * w[k];
        w[k] -= lr * v[k];
        if (mask && mask[k] == 0.0f)
            w[k] = 0.0f;
    }
}

int qs_sim_sgd_step(qs_sim_trainer_t *t, const qs_sim_sgd_t *s)
{
    if (!t || !s)
        return qs_error(QS_ERR_INVALID, "qs_sim_sgd_step: no trainer or settings");
    qs_graph_t *g = qs_sim_trainer_graph(t);
    for (int i = 1; i < g->nnodes; i++) {
        qs_node_t *nd = &g->nodes[i];
        const qs_sim_pgrad_t *gr = qs_sim_trainer_pgrad(t, i), *v = qs_sim_trainer_velocity(t, i);
        if (nd->weight && gr->weight)
            sgd_one(qs_f32(nd->weight), v->weight, gr->weight, nd->weight->size, s, qs_sim_wd_for(nd, 0, s),
                    nd->mask ? qs_f32(nd->mask) : NULL);
        if (nd->bias && gr->bias)
            sgd_one(qs_f32(nd->bias), v->bias, gr->bias, nd->bias->size, s, qs_sim_wd_for(nd, 1, s), NULL);
        if (nd->op == QS_OP_BATCHNORM && gr->gamma) {
            sgd_one(qs_f32(nd->gamma), v->gamma, gr->gamma, nd->gamma->size, s, qs_sim_wd_for(nd, 2, s), NULL);
            sgd_one(qs_f32(nd->beta), v->beta, gr->beta, nd->beta->size, s, qs_sim_wd_for(nd, 3, s), NULL);
        }
    }
    return QS_OK;
}

/* Random crop with zero padding 2 and horizontal flip, image by image: word
 * `index` (the image's index in the dataset) of stream AUGMENT + epoch gives
 * r; dx = r mod 5 - 2, dy = (r / 5) mod 5 - 2, flip = (r / 25) mod 2. Output
 * pixel (y, x) is input pixel (y + dy, x' + dx) with x' = W-1-x when flipped,
 * or the normalized value of a black (0) pixel outside the image. */
static void augment(const qs_graph_t *g, uint64_t seed, int epoch, const int64_t *idx, int64_t n, float *x,
                    float *tmp)
{
    const int64_t C = g->in_c, H = g->in_h, W = g->in_w, per = C * H * W;
    for (int64_t i = 0; i < n; i++) {
        uint32_t r = qs_rng_u32(seed, STREAM_AUGMENT + (uint64_t)epoch, (uint64_t)idx[i]);
        int dx = (int)(r % 5) - 2, dy = (int)((r / 5) % 5) - 2;
        bool flip = (r / 25) % 2;
        float *img = x + i * per;
        memcpy(tmp, img, (size_t)per * sizeof *tmp);
        for (int64_t c = 0; c < C; c++) {
            float fill = (0.0f * g->input_scale - g->norm_mean[c]) / g->norm_std[c];
            for (int64_t yy = 0; yy < H; yy++)
                for (int64_t xx = 0; xx < W; xx++) {
                    int64_t sy = yy + dy, sx = (flip ? W - 1 - xx : xx) + dx;
                    img[(c * H + yy) * W + xx] =
                        (sy < 0 || sy >= H || sx < 0 || sx >= W) ? fill : tmp[(c * H + sy) * W + sx];
                }
        }
    }
}

/* Fisher–Yates from the back: for i = n-1 .. 1, swap i with
 * j = floor(u (i + 1)), u = uniform(seed, SHUFFLE + epoch, i). */
static void shuffle(int64_t *perm, int64_t n, uint64_t seed, int epoch)
{
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    for (int64_t i = n - 1; i >= 1; i--) {
        int64_t j = (int64_t)(qs_rng_uniform(seed, STREAM_SHUFFLE + (uint64_t)epoch, (uint64_t)i) * (double)(i + 1));
        if (j > i)
            j = i;
        int64_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
}

static int check_opts(const qs_train_opts_t *o)
{
    if (o->epochs < 1 || o->epochs > 100000)
        return qs_error(QS_ERR_INVALID, "train: epochs must be 1..100000, got %d", o->epochs);
    if (o->batch < 2 || o->batch > 65536)
        return qs_error(QS_ERR_INVALID, "train: batch must be 2..65536 (batchnorm needs 2), got %lld",
                        (long long)o->batch);
    if (!(o->lr > 0.0) || !isfinite(o->lr) || !(o->lr_min >= 0.0) || o->lr_min > o->lr)
        return qs_error(QS_ERR_INVALID, "train: need 0 < lr (got %g) and 0 <= lr_min <= lr (got %g)", o->lr,
                        o->lr_min);
    if (o->warmup_epochs < 0 || o->warmup_epochs > o->epochs)
        return qs_error(QS_ERR_INVALID, "train: warmup_epochs must be 0..epochs, got %d", o->warmup_epochs);
    if (!(o->momentum >= 0.0 && o->momentum < 1.0))
        return qs_error(QS_ERR_INVALID, "train: momentum must be in [0, 1), got %g", o->momentum);
    if (!(o->weight_decay >= 0.0) || !isfinite(o->weight_decay))
        return qs_error(QS_ERR_INVALID, "train: weight_decay must be >= 0, got %g", o->weight_decay);
    if (!(o->bn_momentum >= 0.0 && o->bn_momentum <= 1.0))
        return qs_error(QS_ERR_INVALID, "train: bn_momentum must be in [0, 1], got %g", o->bn_momentum);
    if (o->limit < 0)
        return qs_error(QS_ERR_INVALID, "train: limit must be >= 0, got %lld", (long long)o->limit);
    return QS_OK;
}

int qs_train(qs_graph_t *g, const qs_dataset_t *train, const qs_dataset_t *test, const qs_train_opts_t *o,
             qs_progress_cb_t *progress, void (*epoch_fn)(const qs_train_epoch_t *e, void *ctx), void *ctx)
{
    qs_train_opts_t def;
    if (!o) {
        qs_train_opts_default(&def);
        o = &def;
    }
    if (!g || !train)
        return qs_error(QS_ERR_INVALID, "qs_train: no graph or training set");
    int rc = check_opts(o);
    if (rc < 0)
        return rc;
    if ((rc = qs_graph_infer(g)) < 0)
        return rc;
    if (train->c != g->in_c || train->h != g->in_h || train->w != g->in_w || !train->labels)
        return qs_error(QS_ERR_SHAPE, "train: dataset '%s' (%lldx%lldx%lld) does not fit model '%s' (%lldx%lldx%lld) "
                        "or has no labels", train->source, (long long)train->c, (long long)train->h,
                        (long long)train->w, g->name, (long long)g->in_c, (long long)g->in_h, (long long)g->in_w);
    if (train->num_classes > g->num_classes)
        return qs_error(QS_ERR_SHAPE, "train: dataset '%s' has %d classes but model '%s' has %d outputs",
                        train->source, train->num_classes, g->name, g->num_classes);
    qs_dataset_t *sub = NULL;
    const qs_dataset_t *d = train;
    if (o->limit > 0 && o->limit < train->n) {
        if ((rc = qs_dataset_subset(train, o->limit, o->seed, &sub)) < 0)
            return rc;
        d = sub;
    }
    const int64_t batch = o->batch < d->n ? o->batch : d->n;
    if (batch < 2) {
        qs_dataset_free(sub);
        return qs_error(QS_ERR_INVALID, "train: '%s' has fewer than 2 images", d->source);
    }
    /* the last partial batch of an epoch is dropped (a different one each
     * epoch, since the order is reshuffled): every step sees `batch` images */
    const int64_t steps = d->n / batch, total = steps * o->epochs, warm = steps * o->warmup_epochs;
    const int64_t per = g->in_c * g->in_h * g->in_w, F = g->num_classes;
    qs_sim_trainer_t *t = NULL;
    int64_t *perm = malloc((size_t)d->n * sizeof *perm);
    int32_t *labels = malloc((size_t)batch * sizeof *labels);
    float *dlog = malloc((size_t)(batch * F) * sizeof *dlog);
    float *tmp = malloc((size_t)per * sizeof *tmp);
    int64_t xs[4] = {batch, g->in_c, g->in_h, g->in_w};
    qs_tensor_t *x = qs_tensor_create(QS_F32, 4, xs);
    if (!perm || !labels || !dlog || !tmp || !x) {
        rc = qs_error(QS_ERR_NOMEM, "train: out of memory");
        goto done;
    }
    if ((rc = qs_sim_trainer_create(g, batch, o->pool, &t)) < 0)
        goto done;
    qs_sim_trainer_set_bn_momentum(t, o->bn_momentum);
    qs_sim_sgd_t sgd = {o->lr, o->momentum, o->weight_decay, o->wd_depthwise, o->wd_bn, o->wd_bias};
    int64_t it = 0;
    for (int epoch = 1; epoch <= o->epochs; epoch++) {
        double t0 = qs_now_s(), loss_sum = 0.0;
        int64_t correct_sum = 0;
        shuffle(perm, d->n, o->seed, epoch);
        for (int64_t s = 0; s < steps; s++, it++) {
            const int64_t *idx = perm + s * batch;
            if ((rc = qs_dataset_batch(d, g, 0, idx, batch, x, labels)) < 0)
                goto done;
            if (o->augment)
                augment(g, o->seed, epoch, idx, batch, qs_f32(x), tmp);
            if ((rc = qs_sim_trainer_forward(t, qs_f32(x), batch, true)) < 0)
                goto done;
            int64_t correct;
            double loss = qs_sim_xent(batch, F, qs_sim_trainer_act(t, g->output), labels, dlog, &correct);
            if (!isfinite(loss)) {
                rc = qs_error(QS_ERR_NUMERIC, "train: the loss became %g at epoch %d step %lld (lr %g too high?)",
                              loss, epoch, (long long)s + 1, o->lr);
                goto done;
            }
            loss_sum += loss;
            correct_sum += correct;
            if ((rc = qs_sim_trainer_backward(t, dlog)) < 0)
                goto done;
            sgd.lr = qs_sim_lr_at(o->lr, o->lr_min, it, total, warm);
            if ((rc = qs_sim_sgd_step(t, &sgd)) < 0)
                goto done;
        }
        qs_train_epoch_t e = {epoch, loss_sum / (double)steps, (double)correct_sum / (double)(steps * batch), NAN,
                              0.0};
        if (test) {
            qs_engine_opts_t eo = {o->pool, false};
            qs_eval_t r;
            if ((rc = qs_eval(g, test, &eo, 500, NULL, &r)) < 0)
                goto done;
            e.test_top1 = r.top1;
        }
        e.seconds = qs_now_s() - t0;
        if (epoch_fn)
            epoch_fn(&e, ctx);
        char detail[128];
        snprintf(detail, sizeof detail, "loss %.4f train %.4f test %.4f", e.loss, e.train_top1, e.test_top1);
        if ((rc = qs_progress_report(progress, "train", epoch, o->epochs, detail)) < 0)
            goto done;
    }
    rc = QS_OK;
done:
    qs_sim_trainer_free(t);
    qs_tensor_free(x);
    free(tmp);
    free(dlog);
    free(labels);
    free(perm);
    qs_dataset_free(sub);
    return rc;
}
