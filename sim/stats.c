/* sim/stats.c — per-layer weight and activation statistics (`quasar info
 * --stats`, docs/statistics.md): range, moments, kurtosis, outliers, a
 * histogram and per-channel ranges, what a researcher looks at before
 * choosing a quantizer.
 *
 * Every tensor is measured in three passes over its values: (1) count,
 * min, max, per-channel min/max and the sum; (2) the central moments about
 * the mean of pass 1 and the histogram over [min, max]; (3) the outliers,
 * which need the std of pass 2. Activations are never stored: each pass is
 * a forward of the images with an engine hook that measures every node's
 * output as it appears.
 *
 * Determinism: the hook runs on worker threads, so everything it
 * accumulates across samples is either exact and order-free (counts,
 * histograms, min/max with -0 read as +0) in a per-thread part, or a
 * floating-point sum kept per sample (summed over the sample's values in an
 * order fixed by the layout, see LANES) and added up afterwards, on the
 * calling thread, in sample order. The figures are thus the same whatever
 * the pool, the batch size or the engine's block split. */
#include "sim/sim_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STATS_MAX_BINS 65536 /* per node and thread: a histogram of int64 counts */

void qs_stats_opts_default(qs_stats_opts_t *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->images = 1000;
    o->batch = 256;
    o->seed = 1;
    o->nbins = QS_STATS_BINS;
    o->outlier_k = QS_STATS_OUTLIER_K;
}

static int check_opts(const qs_stats_opts_t *o)
{
    if (o->nbins < 1 || o->nbins > STATS_MAX_BINS)
        return qs_error(QS_ERR_INVALID, "stats: histogram bins must be 1..%d, got %d", STATS_MAX_BINS, o->nbins);
    if (!(o->outlier_k > 0.0) || !isfinite(o->outlier_k))
        return qs_error(QS_ERR_INVALID, "stats: the outlier threshold k must be a positive number, got %g",
                        o->outlier_k);
    return QS_OK;
}

/* Values enter min/max as v + 0.0f, which reads -0 as +0: with plain `<`,
 * the sign of a zero minimum would depend on which zero came first, and
 * threads change that. Zeros are thus reported as +0. Never NaN here. */
static inline float lesser(float a, float b) { return b < a ? b : a; }
static inline float greater(float a, float b) { return b > a ? b : a; }

/* Sums run in LANES interleaved partial sums (value k of a run goes to
 * lane k mod LANES, the lanes are added as (0 + 1) + (2 + 3)): a fixed
 * order that depends on the layout only, and four times the throughput of
 * one serial chain. Histograms count in up to LANES interleaved copies, so
 * that a run of values in one bin (ReLU zeros) is not one serial chain of
 * increments. */
#define LANES 4
#define HIST_LANES_MAX_BINS 4096

/* The exact, order-free figures of one tensor seen by one thread. */
typedef struct {
    int64_t count, nonfinite, outliers;
    float min, max;
    float *ch_min, *ch_max; /* NULL without per-channel figures */
    int64_t *hist;          /* hlanes x nbins */
} part_t;

static void part_free(part_t *p)
{
    free(p->ch_min);
    free(p->ch_max);
    free(p->hist);
    memset(p, 0, sizeof *p);
}

static int part_init(part_t *p, int64_t channels, int nbins, int hlanes)
{
    memset(p, 0, sizeof *p);
    p->min = INFINITY;
    p->max = -INFINITY;
    if (channels > 0) {
        p->ch_min = malloc((size_t)channels * sizeof *p->ch_min);
        p->ch_max = malloc((size_t)channels * sizeof *p->ch_max);
    }
    p->hist = calloc((size_t)nbins * (size_t)hlanes, sizeof *p->hist);
    if (!p->hist || (channels > 0 && (!p->ch_min || !p->ch_max))) {
        part_free(p);
        return qs_error(QS_ERR_NOMEM, "stats: out of memory");
    }
    for (int64_t c = 0; c < channels; c++) {
        p->ch_min[c] = INFINITY;
        p->ch_max[c] = -INFINITY;
    }
    return QS_OK;
}

/* One tensor being measured: slices of chans x inner values, channel-major
 * (a weight, or one sample of an activation). */
typedef struct {
    int64_t chans, inner;
    int64_t channels;       /* per-channel figures: chans, or 0 */
    int nbins, hlanes;
    bool masked;            /* some values may be masked out */
    bool clean;             /* after pass 1: no NaN/Inf and no mask, so passes 2 and 3 check nothing */
    part_t all;             /* the parts merged */
    double sum, s2, s4;     /* added slice by slice, in slice order */
    double mean, lo, inv, thr;
} tacc_t;

static inline double lanes_total(const double *s) { return (s[0] + s[1]) + (s[2] + s[3]); }

/* ---- the three passes over one slice ----------------------------------------------------------- */

/* A run without mask: its sum, min and max, or false when it holds a NaN
 * or an infinity (the sum is then not finite; a float32 sum in double
 * cannot overflow) and nothing it computed is valid. */
static bool run_fast(const float *x, int64_t n, double *sum, float *lo, float *hi)
{
    double s[LANES] = {0.0, 0.0, 0.0, 0.0};
    float l[LANES] = {INFINITY, INFINITY, INFINITY, INFINITY}, h[LANES] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int64_t k = 0;
    for (; k + LANES <= n; k += LANES)
        for (int j = 0; j < LANES; j++) {
            float v = x[k + j] + 0.0f;
            s[j] += (double)v;
            l[j] = lesser(l[j], v);
            h[j] = greater(h[j], v);
        }
    for (; k < n; k++) {
        float v = x[k] + 0.0f;
        s[0] += (double)v;
        l[0] = lesser(l[0], v);
        h[0] = greater(h[0], v);
    }
    double t = lanes_total(s);
    if (!isfinite(t))
        return false;
    *sum = t;
    *lo = lesser(lesser(l[0], l[1]), lesser(l[2], l[3]));
    *hi = greater(greater(h[0], h[1]), greater(h[2], h[3]));
    return true;
}

/* A run with a mask or with NaN/Inf: in order, checking every value. */
static double run_careful(const float *x, const float *m, int64_t n, float *lo, float *hi, int64_t *count,
                          int64_t *bad)
{
    double sum = 0.0;
    for (int64_t k = 0; k < n; k++) {
        if (m && m[k] == 0.0f)
            continue;
        float v = x[k] + 0.0f;
        if (!isfinite(v)) {
            ++*bad;
            continue;
        }
        ++*count;
        sum += (double)v;
        *lo = lesser(*lo, v);
        *hi = greater(*hi, v);
    }
    return sum;
}

static double pass1(const tacc_t *a, const float *x, const float *m, part_t *p)
{
    double sum = 0.0;
    int64_t count = 0, bad = 0;
    float lo = p->min, hi = p->max;
    for (int64_t c = 0; c < a->chans; c++) {
        const float *xc = x + c * a->inner;
        float cl, ch;
        double cs;
        if (!m && run_fast(xc, a->inner, &cs, &cl, &ch)) {
            count += a->inner;
        } else {
            cl = INFINITY;
            ch = -INFINITY;
            cs = run_careful(xc, m ? m + c * a->inner : NULL, a->inner, &cl, &ch, &count, &bad);
        }
        sum += cs;
        if (p->ch_min) {
            p->ch_min[c] = lesser(p->ch_min[c], cl);
            p->ch_max[c] = greater(p->ch_max[c], ch);
        }
        lo = lesser(lo, cl);
        hi = greater(hi, ch);
    }
    p->min = lo;
    p->max = hi;
    p->count += count;
    p->nonfinite += bad;
    return sum;
}

/* min(nbins − 1, floor((v − min) · nbins / (max − min))); inv = 0 for a
 * constant tensor puts everything in bin 0. The clamps also keep a value
 * that should not be here (NaN) inside the histogram rather than outside
 * the array. */
static inline int64_t bin_of(const tacc_t *a, float v)
{
    /* clamped in double (maxsd/minsd, no branch: ReLU outputs make a branch
     * on the sign unpredictable), then truncated */
    double t = ((double)v - a->lo) * a->inv, last = (double)(a->nbins - 1);
    t = t > 0.0 ? t : 0.0;
    t = t < last ? t : last;
    return (int64_t)t;
}

static void pass2(const tacc_t *a, const float *x, const float *m, part_t *p, double *s2, double *s4)
{
    const int64_t n = a->chans * a->inner;
    const int nb = a->nbins, hmask = a->hlanes - 1;
    double a2[LANES] = {0.0, 0.0, 0.0, 0.0}, a4[LANES] = {0.0, 0.0, 0.0, 0.0};
    int64_t *h = p->hist;
    if (a->clean) {
        int64_t i = 0;
        for (; i + LANES <= n; i += LANES)
            for (int j = 0; j < LANES; j++) {
                double d = (double)x[i + j] - a->mean, d2 = d * d;
                a2[j] += d2;
                a4[j] += d2 * d2;
                h[(j & hmask) * nb + bin_of(a, x[i + j])]++;
            }
        for (; i < n; i++) {
            double d = (double)x[i] - a->mean, d2 = d * d;
            a2[0] += d2;
            a4[0] += d2 * d2;
            h[bin_of(a, x[i])]++;
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            if ((m && m[i] == 0.0f) || !isfinite(x[i]))
                continue;
            double d = (double)x[i] - a->mean, d2 = d * d;
            a2[0] += d2;
            a4[0] += d2 * d2;
            h[bin_of(a, x[i])]++;
        }
    }
    *s2 = lanes_total(a2);
    *s4 = lanes_total(a4);
}

static void pass3(const tacc_t *a, const float *x, const float *m, part_t *p)
{
    const int64_t n = a->chans * a->inner;
    int64_t out = 0;
    if (a->clean) {
        for (int64_t i = 0; i < n; i++)
            out += fabs((double)x[i] - a->mean) > a->thr;
    } else {
        for (int64_t i = 0; i < n; i++)
            if (!(m && m[i] == 0.0f) && isfinite(x[i]) && fabs((double)x[i] - a->mean) > a->thr)
                out++;
    }
    p->outliers += out;
}

/* ---- between passes ---------------------------------------------------------------------------- */

static void merge_pass1(tacc_t *a, const part_t *p)
{
    a->all.count += p->count;
    a->all.nonfinite += p->nonfinite;
    a->all.min = lesser(a->all.min, p->min);
    a->all.max = greater(a->all.max, p->max);
    for (int64_t c = 0; c < a->channels; c++) {
        a->all.ch_min[c] = lesser(a->all.ch_min[c], p->ch_min[c]);
        a->all.ch_max[c] = greater(a->all.ch_max[c], p->ch_max[c]);
    }
}

static void merge_rest(tacc_t *a, const part_t *p)
{
    for (int l = 0; l < a->hlanes; l++)
        for (int k = 0; k < a->nbins; k++)
            a->all.hist[k] += p->hist[(size_t)l * (size_t)a->nbins + (size_t)k];
    a->all.outliers += p->outliers;
}

/* After pass 1 (a->sum complete): the mean and the histogram's grid. */
static void after_pass1(tacc_t *a)
{
    a->clean = a->all.nonfinite == 0 && !a->masked;
    if (a->all.count == 0)
        return;
    a->lo = a->all.min;
    bool constant = a->all.min == a->all.max;
    /* a constant tensor's mean is its value, not sum/count rounded */
    a->mean = constant ? (double)a->all.min : a->sum / (double)a->all.count;
    a->inv = constant ? 0.0 : (double)a->nbins / ((double)a->all.max - (double)a->all.min);
}

/* After pass 2 (a->s2 complete): the outlier threshold. */
static void after_pass2(tacc_t *a, double k)
{
    double std = a->all.count ? sqrt(a->s2 / (double)a->all.count) : 0.0;
    a->thr = k * std;
}

static int acc_init(tacc_t *a, int64_t chans, int64_t inner, bool per_channel, bool masked, int nbins)
{
    memset(a, 0, sizeof *a);
    a->chans = chans;
    a->inner = inner;
    a->channels = per_channel ? chans : 0;
    a->nbins = nbins;
    a->hlanes = nbins <= HIST_LANES_MAX_BINS ? LANES : 1;
    a->masked = masked;
    return part_init(&a->all, a->channels, nbins, 1);
}

/* Moves the figures into out (which takes the arrays over). */
static void acc_finish(tacc_t *a, qs_tstats_t *out)
{
    memset(out, 0, sizeof *out);
    const int64_t n = a->all.count;
    out->count = n;
    out->nonfinite = a->all.nonfinite;
    out->outliers = a->all.outliers;
    out->nbins = a->nbins;
    out->hist = a->all.hist;
    a->all.hist = NULL;
    if (n > 0) {
        double m2 = a->s2 / (double)n, m4 = a->s4 / (double)n;
        out->min = a->all.min;
        out->max = a->all.max;
        out->mean = a->mean;
        out->std = sqrt(m2);
        out->kurtosis = m2 > 0.0 ? m4 / (m2 * m2) : NAN;
    } else {
        out->min = out->max = out->mean = out->std = out->kurtosis = NAN;
    }
    out->channels = a->channels;
    out->ch_min = a->all.ch_min;
    out->ch_max = a->all.ch_max;
    a->all.ch_min = a->all.ch_max = NULL;
    /* range spread over the channels that hold values */
    double rmin = INFINITY, rmax = -INFINITY;
    int64_t zero = 0, used = 0;
    for (int64_t c = 0; c < out->channels; c++) {
        if (!(out->ch_min[c] <= out->ch_max[c])) { /* no value in this channel */
            out->ch_min[c] = out->ch_max[c] = NAN;
            continue;
        }
        double r = (double)out->ch_max[c] - (double)out->ch_min[c];
        used++;
        zero += r == 0.0;
        rmin = r < rmin ? r : rmin;
        rmax = r > rmax ? r : rmax;
    }
    out->zero_range_channels = zero;
    if (used == 0)
        out->range_spread = NAN;
    else if (rmax == 0.0)
        out->range_spread = 1.0;
    else if (rmin == 0.0)
        out->range_spread = INFINITY;
    else
        out->range_spread = rmax / rmin;
    part_free(&a->all);
}

void qs_tstats_clear(qs_tstats_t *s)
{
    if (!s)
        return;
    free(s->hist);
    free(s->ch_min);
    free(s->ch_max);
    memset(s, 0, sizeof *s);
}

/* ---- one tensor -------------------------------------------------------------------------------- */

int qs_tstats_tensor(const qs_tensor_t *t, const qs_tensor_t *mask, int axis, const qs_stats_opts_t *o,
                     qs_tstats_t *out)
{
    if (!out)
        return qs_error(QS_ERR_INVALID, "qs_tstats_tensor: no output");
    memset(out, 0, sizeof *out);
    if (!t)
        return qs_error(QS_ERR_INVALID, "qs_tstats_tensor: no tensor");
    qs_stats_opts_t def;
    if (!o) {
        qs_stats_opts_default(&def);
        o = &def;
    }
    int rc = check_opts(o);
    if (rc < 0)
        return rc;
    char s1[96], s2[96];
    if (t->dtype != QS_F32)
        return qs_error(QS_ERR_INVALID, "stats: the tensor is %s; statistics take float32", qs_dtype_name(t->dtype));
    if (axis < -1 || axis >= t->ndim)
        return qs_error(QS_ERR_INVALID, "stats: channel axis %d of a tensor %s (expected -1 .. %d)", axis,
                        qs_shape_str(t->ndim, t->shape, s1, sizeof s1), t->ndim - 1);
    if (mask && (mask->dtype != QS_F32 || !qs_shape_equal(t, mask)))
        return qs_error(QS_ERR_SHAPE, "stats: the mask is %s %s, but the tensor is float32 %s",
                        qs_dtype_name(mask->dtype), qs_shape_str(mask->ndim, mask->shape, s1, sizeof s1),
                        qs_shape_str(t->ndim, t->shape, s2, sizeof s2));
    /* a view [outer, chans, inner]; each outer index is one slice */
    int64_t outer = 1, chans = 1, inner = 1;
    for (int k = 0; k < t->ndim; k++) {
        if (k < axis)
            outer *= t->shape[k];
        else if (k == axis)
            chans = t->shape[k];
        else
            inner *= t->shape[k];
    }
    if (axis < 0) {
        outer = 1;
        inner = t->size;
    }
    tacc_t a;
    if ((rc = acc_init(&a, chans, inner, axis >= 0, mask != NULL, o->nbins)) < 0)
        return rc;
    part_t p;
    if ((rc = part_init(&p, a.channels, o->nbins, a.hlanes)) < 0) {
        part_free(&a.all);
        return rc;
    }
    const int64_t slice = chans * inner;
    const float *x = qs_f32(t), *m = mask ? qs_f32(mask) : NULL;
    for (int64_t s = 0; s < outer && slice > 0; s++)
        a.sum += pass1(&a, x + s * slice, m ? m + s * slice : NULL, &p);
    merge_pass1(&a, &p);
    after_pass1(&a);
    for (int64_t s = 0; s < outer && slice > 0; s++) {
        double v2, v4;
        pass2(&a, x + s * slice, m ? m + s * slice : NULL, &p, &v2, &v4);
        a.s2 += v2;
        a.s4 += v4;
    }
    after_pass2(&a, o->outlier_k);
    for (int64_t s = 0; s < outer && slice > 0; s++)
        pass3(&a, x + s * slice, m ? m + s * slice : NULL, &p);
    merge_rest(&a, &p);
    part_free(&p);
    acc_finish(&a, out);
    return QS_OK;
}

/* ---- a model ----------------------------------------------------------------------------------- */

typedef struct {
    int nnodes, threads, pass;
    tacc_t *acc;      /* per node */
    part_t *parts;    /* [thread][node] */
    double *psum;     /* [sample of the batch][node][2]: this pass's sums of one sample */
} run_t;

static int hook(void *ctx, int node, qs_tensor_t *y, int64_t sample0, int thread)
{
    run_t *r = ctx;
    const tacc_t *a = &r->acc[node];
    part_t *p = &r->parts[(size_t)thread * (size_t)r->nnodes + (size_t)node];
    const int64_t count = y->shape[0], per = a->chans * a->inner;
    for (int64_t s = 0; s < count; s++) {
        const float *x = qs_f32(y) + s * per;
        double *ps = r->psum + ((size_t)(sample0 + s) * (size_t)r->nnodes + (size_t)node) * 2;
        if (r->pass == 1)
            ps[0] = pass1(a, x, NULL, p);
        else if (r->pass == 2)
            pass2(a, x, NULL, p, &ps[0], &ps[1]);
        else
            pass3(a, x, NULL, p);
    }
    return QS_OK;
}

static void run_free(run_t *r)
{
    if (r->parts)
        for (size_t k = 0; k < (size_t)r->threads * (size_t)r->nnodes; k++)
            part_free(&r->parts[k]);
    if (r->acc)
        for (int i = 0; i < r->nnodes; i++)
            part_free(&r->acc[i].all);
    free(r->parts);
    free(r->acc);
    free(r->psum);
}

/* Three forwards of the subset sub, measuring every node's output. */
static int measure_acts(const qs_graph_t *g, const qs_dataset_t *sub, const qs_stats_opts_t *o,
                        qs_progress_cb_t *progress, qs_model_stats_t *s)
{
    run_t r;
    memset(&r, 0, sizeof r);
    r.nnodes = g->nnodes;
    r.threads = qs_pool_threads(o->pool);
    const int64_t batch = o->batch < sub->n ? o->batch : sub->n;
    qs_engine_t *e = NULL;
    qs_tensor_t *x = NULL;
    int rc = QS_OK;
    r.acc = calloc((size_t)r.nnodes, sizeof *r.acc);
    r.parts = calloc((size_t)r.threads * (size_t)r.nnodes, sizeof *r.parts);
    r.psum = malloc((size_t)batch * (size_t)r.nnodes * 2 * sizeof *r.psum);
    if (!r.acc || !r.parts || !r.psum) {
        rc = qs_error(QS_ERR_NOMEM, "stats: out of memory");
        goto done;
    }
    for (int i = 0; i < r.nnodes && rc == QS_OK; i++) {
        const qs_node_t *nd = &g->nodes[i];
        int64_t chans = nd->out_shape[0], inner = nd->out_ndim == 3 ? nd->out_shape[1] * nd->out_shape[2] : 1;
        rc = acc_init(&r.acc[i], chans, inner, true, false, o->nbins);
    }
    for (int t = 0; t < r.threads && rc == QS_OK; t++)
        for (int i = 0; i < r.nnodes && rc == QS_OK; i++)
            rc = part_init(&r.parts[(size_t)t * (size_t)r.nnodes + (size_t)i], r.acc[i].channels, o->nbins,
                           r.acc[i].hlanes);
    if (rc < 0)
        goto done;
    qs_engine_opts_t eo = {o->pool, false};
    if ((rc = qs_engine_create(g, &eo, &e)) < 0)
        goto done;
    qs_engine_set_hook(e, hook, &r);
    int64_t shape[4] = {batch, sub->c, sub->h, sub->w};
    if (!(x = qs_tensor_create(QS_F32, 4, shape))) {
        rc = qs_error_context("stats: a batch of %lld images: ", (long long)batch);
        goto done;
    }
    const int64_t total = 3 * sub->n;
    for (r.pass = 1; r.pass <= 3; r.pass++) {
        for (int64_t first = 0; first < sub->n; first += batch) {
            int64_t count = sub->n - first < batch ? sub->n - first : batch;
            qs_tensor_t v = *x;
            v.shape[0] = count;
            v.size = count * sub->c * sub->h * sub->w;
            const qs_tensor_t *y;
            if ((rc = qs_dataset_batch(sub, g, first, NULL, count, &v, NULL)) < 0 ||
                (rc = qs_engine_forward(e, &v, &y)) < 0)
                goto done;
            /* the sums, in sample order */
            for (int i = 0; i < r.nnodes && r.pass < 3; i++) {
                tacc_t *a = &r.acc[i];
                for (int64_t k = 0; k < count; k++) {
                    const double *ps = r.psum + ((size_t)k * (size_t)r.nnodes + (size_t)i) * 2;
                    if (r.pass == 1) {
                        a->sum += ps[0];
                    } else {
                        a->s2 += ps[0];
                        a->s4 += ps[1];
                    }
                }
            }
            char detail[32];
            snprintf(detail, sizeof detail, "pass %d/3", r.pass);
            if ((rc = qs_progress_report(progress, "stats", (r.pass - 1) * sub->n + first + count, total, detail)) <
                0)
                goto done;
        }
        for (int i = 0; i < r.nnodes; i++) {
            tacc_t *a = &r.acc[i];
            if (r.pass == 1) {
                for (int t = 0; t < r.threads; t++)
                    merge_pass1(a, &r.parts[(size_t)t * (size_t)r.nnodes + (size_t)i]);
                after_pass1(a);
            } else if (r.pass == 2) {
                after_pass2(a, o->outlier_k);
            }
        }
    }
    for (int i = 0; i < r.nnodes; i++) {
        for (int t = 0; t < r.threads; t++)
            merge_rest(&r.acc[i], &r.parts[(size_t)t * (size_t)r.nnodes + (size_t)i]);
        acc_finish(&r.acc[i], &s->node[i].act);
    }
done:
    qs_tensor_free(x);
    qs_engine_free(e);
    run_free(&r);
    return rc;
}

void qs_model_stats_free(qs_model_stats_t *s)
{
    if (!s)
        return;
    for (int i = 0; s->node && i < s->nnodes; i++) {
        qs_tstats_clear(&s->node[i].weight);
        qs_tstats_clear(&s->node[i].act);
    }
    free(s->node);
    free(s);
}

int qs_stats_model(const qs_graph_t *g, const qs_dataset_t *d, const qs_stats_opts_t *o, qs_progress_cb_t *progress,
                   qs_model_stats_t **out)
{
    if (!out)
        return qs_error(QS_ERR_INVALID, "qs_stats_model: no output");
    *out = NULL;
    if (!g || g->nnodes < 1)
        return qs_error(QS_ERR_INVALID, "qs_stats_model: no graph");
    qs_stats_opts_t def;
    if (!o) {
        qs_stats_opts_default(&def);
        o = &def;
    }
    int rc = check_opts(o);
    if (rc < 0)
        return rc;
    if (d) {
        if (o->images < 1)
            return qs_error(QS_ERR_INVALID, "stats: the number of images must be at least 1, got %lld",
                            (long long)o->images);
        if (o->batch < 1)
            return qs_error(QS_ERR_INVALID, "stats: the batch must be at least 1 image, got %lld",
                            (long long)o->batch);
        if (d->n < 1)
            return qs_error(QS_ERR_INVALID, "stats: dataset '%s' has no images", d->source);
        if (d->c != g->in_c || d->h != g->in_h || d->w != g->in_w)
            return qs_error(QS_ERR_SHAPE,
                            "stats: dataset '%s' has %lldx%lldx%lld images but model '%s' takes %lldx%lldx%lld",
                            d->source, (long long)d->c, (long long)d->h, (long long)d->w, g->name, (long long)g->in_c,
                            (long long)g->in_h, (long long)g->in_w);
    }
    qs_model_stats_t *s = calloc(1, sizeof *s);
    if (!s || !(s->node = calloc((size_t)g->nnodes, sizeof *s->node))) {
        free(s);
        return qs_error(QS_ERR_NOMEM, "stats: out of memory");
    }
    s->nnodes = g->nnodes;
    snprintf(s->model, sizeof s->model, "%s", g->name);
    s->nbins = o->nbins;
    s->outlier_k = o->outlier_k;
    s->seed = o->seed;
    s->folded = -1;
    qs_progress_begin(progress);
    for (int i = 0; i < g->nnodes && rc == QS_OK; i++) {
        const qs_node_t *nd = &g->nodes[i];
        qs_node_stats_t *ns = &s->node[i];
        snprintf(ns->name, sizeof ns->name, "%s", nd->name);
        ns->op = nd->op;
        ns->andim = nd->out_ndim;
        memcpy(ns->ashape, nd->out_shape, sizeof ns->ashape);
        if ((nd->op == QS_OP_CONV2D || nd->op == QS_OP_LINEAR) && nd->weight) {
            ns->has_weight = true;
            ns->wndim = nd->weight->ndim;
            memcpy(ns->wshape, nd->weight->shape, sizeof ns->wshape);
            if ((rc = qs_tstats_tensor(nd->weight, nd->mask, 0, o, &ns->weight)) < 0)
                qs_error_context("node '%s': ", nd->name);
        }
    }
    if (rc == QS_OK && d) {
        qs_dataset_t *sub = NULL;
        int64_t images = o->images < d->n ? o->images : d->n;
        if ((rc = qs_dataset_subset(d, images, o->seed, &sub)) == QS_OK) {
            snprintf(s->source, sizeof s->source, "%s", d->source);
            s->images = images;
            rc = measure_acts(g, sub, o, progress, s);
        }
        qs_dataset_free(sub);
    }
    if (rc < 0) {
        qs_model_stats_free(s);
        return rc;
    }
    *out = s;
    return QS_OK;
}

/* ---- HDF5 -------------------------------------------------------------------------------------- */

static void shape_str(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int k = 0; k < ndim && used < n; k++)
        used += (size_t)snprintf(buf + used, n - used, "%s%lld", k ? "x" : "", (long long)shape[k]);
}

static int write_tstats(qs_h5_t *h, const char *grp, int index, const qs_node_stats_t *ns, const qs_tstats_t *t,
                        int ndim, const int64_t *shape)
{
    char name[QS_NAME_MAX + 64];
    int rc = QS_OK;
    int64_t n = t->nbins;
    qs_tensor_t *hist = qs_tensor_create(QS_I64, 1, &n);
    int64_t ne = n + 1;
    qs_tensor_t *edges = qs_tensor_create(QS_F32, 1, &ne);
    qs_tensor_t *cmin = NULL, *cmax = NULL;
    if (t->channels > 0) {
        cmin = qs_tensor_create(QS_F32, 1, &t->channels);
        cmax = qs_tensor_create(QS_F32, 1, &t->channels);
    }
    if (!hist || !edges || (t->channels > 0 && (!cmin || !cmax))) {
        rc = qs_last_status() < 0 ? qs_last_status() : qs_error(QS_ERR_NOMEM, "stats: out of memory");
        goto done;
    }
    if (t->hist)
        memcpy(hist->data, t->hist, (size_t)n * sizeof(int64_t));
    for (int64_t k = 0; k <= n; k++)
        qs_f32(edges)[k] = (float)(t->min + (t->max - t->min) * (double)k / (double)n);
    if (t->channels > 0) {
        memcpy(cmin->data, t->ch_min, (size_t)t->channels * sizeof(float));
        memcpy(cmax->data, t->ch_max, (size_t)t->channels * sizeof(float));
    }
    char shp[96];
    shape_str(ndim, shape, shp, sizeof shp);
    const struct {
        const char *attr;
        double v;
    } dbl[] = {{"min", t->min},   {"max", t->max},           {"mean", t->mean},
               {"std", t->std},   {"kurtosis", t->kurtosis}, {"range_spread", t->range_spread}};
    const struct {
        const char *attr;
        int64_t v;
    } ints[] = {{"index", index},
                {"count", t->count},
                {"nonfinite", t->nonfinite},
                {"outliers", t->outliers},
                {"channels", t->channels},
                {"zero_range_channels", t->zero_range_channels}};
#define WRITE(ds, tensor)                                                                                       \
    do {                                                                                                        \
        snprintf(name, sizeof name, "%s/%s", grp, ds);                                                          \
        if ((rc = qs_h5_write(h, name, tensor)) < 0)                                                            \
            goto done;                                                                                          \
    } while (0)
    WRITE("hist", hist);
    WRITE("edges", edges);
    if (t->channels > 0) {
        WRITE("channel_min", cmin);
        WRITE("channel_max", cmax);
    }
#undef WRITE
    if ((rc = qs_h5_set_attr_str(h, grp, "op", qs_op_name(ns->op))) < 0 ||
        (rc = qs_h5_set_attr_str(h, grp, "shape", shp)) < 0)
        goto done;
    for (size_t k = 0; k < sizeof dbl / sizeof *dbl; k++)
        if ((rc = qs_h5_set_attr_double(h, grp, dbl[k].attr, dbl[k].v)) < 0)
            goto done;
    for (size_t k = 0; k < sizeof ints / sizeof *ints; k++)
        if ((rc = qs_h5_set_attr_int(h, grp, ints[k].attr, ints[k].v)) < 0)
            goto done;
done:
    qs_tensor_free(hist);
    qs_tensor_free(edges);
    qs_tensor_free(cmin);
    qs_tensor_free(cmax);
    return rc;
}

int qs_stats_save_h5(const qs_model_stats_t *s, const char *path)
{
    if (!s || !path)
        return qs_error(QS_ERR_INVALID, "qs_stats_save_h5: no statistics or path");
    for (int i = 0; i < s->nnodes; i++)
        if (strcmp(s->node[i].name, ".") == 0) /* HDF5 would read "/acts/." as "/acts" */
            return qs_error(QS_ERR_INVALID, "'%s': node %d is named '.', which cannot name an HDF5 group", path, i);
    qs_h5_t *h = qs_h5_create(path);
    if (!h)
        return qs_last_status();
    int rc;
    if ((rc = qs_h5_set_attr_str(h, "/", "format", "quasar-stats")) < 0 ||
        (rc = qs_h5_set_attr_int(h, "/", "version", 1)) < 0 ||
        (rc = qs_h5_set_attr_str(h, "/", "model", s->model)) < 0 ||
        (rc = qs_h5_set_attr_str(h, "/", "data", s->source)) < 0 ||
        (rc = qs_h5_set_attr_int(h, "/", "images", s->images)) < 0 ||
        (rc = qs_h5_set_attr_int(h, "/", "seed", (int64_t)s->seed)) < 0 ||
        (rc = qs_h5_set_attr_int(h, "/", "bins", s->nbins)) < 0 ||
        (rc = qs_h5_set_attr_double(h, "/", "outlier_k", s->outlier_k)) < 0 ||
        (rc = qs_h5_set_attr_int(h, "/", "folded", s->folded)) < 0)
        goto fail;
    for (int i = 0; i < s->nnodes; i++) {
        const qs_node_stats_t *ns = &s->node[i];
        char grp[QS_NAME_MAX + 16];
        if (ns->has_weight) {
            snprintf(grp, sizeof grp, "/weights/%s", ns->name);
            if ((rc = write_tstats(h, grp, i, ns, &ns->weight, ns->wndim, ns->wshape)) < 0)
                goto fail;
        }
        if (s->images > 0) {
            snprintf(grp, sizeof grp, "/acts/%s", ns->name);
            if ((rc = write_tstats(h, grp, i, ns, &ns->act, ns->andim, ns->ashape)) < 0)
                goto fail;
        }
    }
    return qs_h5_commit(h);
fail:
    qs_h5_close(h);
    return rc;
}
