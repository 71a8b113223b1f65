/* tests/test_stats.c — per-layer statistics (sim/stats.c, docs/statistics.md):
 * the figures of hand-made tensors (moments, Pearson kurtosis, outliers at
 * the threshold, histogram bins, per-channel ranges and the range spread
 * with its zero-range rules, masks, NaN/Inf, ±0), activation statistics of
 * a hand-made graph, bitwise independence of the thread count and batch on
 * the fmnist-dwsep zoo model with agreement against one-tensor statistics,
 * the HDF5 file read back with the HDF5 API, and the error paths. */
#include "tests/testutil.h"
#include "sim/sim.h"

#include <hdf5.h>
#include <math.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------------------ */

static qs_tensor_t *tens(int ndim, const int64_t *shape, const float *v)
{
    qs_tensor_t *t = qs_tensor_create(QS_F32, ndim, shape);
    ck_assert_ptr_nonnull(t);
    if (v)
        memcpy(t->data, v, (size_t)t->size * sizeof(float));
    return t;
}

static qs_tensor_t *vec(int64_t n, const float *v) { return tens(1, &n, v); }

static qs_stats_opts_t opts(int nbins, double k)
{
    qs_stats_opts_t o;
    qs_stats_opts_default(&o);
    o.nbins = nbins;
    o.outlier_k = k;
    return o;
}

static qs_tstats_t tstats(const qs_tensor_t *t, const qs_tensor_t *mask, int axis, const qs_stats_opts_t *o)
{
    qs_tstats_t s;
    int rc = qs_tstats_tensor(t, mask, axis, o, &s);
    ck_assert_msg(rc == QS_OK, "qs_tstats_tensor: %s", qs_last_error());
    return s;
}

static void hist_is(const qs_tstats_t *s, int n, const int64_t *want)
{
    ck_assert_int_eq(s->nbins, n);
    for (int k = 0; k < n; k++)
        ck_assert_msg(s->hist[k] == want[k], "bin %d: %lld, expected %lld", k, (long long)s->hist[k],
                      (long long)want[k]);
}

/* An in-memory dataset of float32 images (freed by qs_dataset_free). */
static qs_dataset_t *mem_dataset(int64_t n, int64_t c, int64_t h, int64_t w, const float *v)
{
    qs_dataset_t *d = calloc(1, sizeof *d);
    ck_assert_ptr_nonnull(d);
    d->n = n;
    d->c = c;
    d->h = h;
    d->w = w;
    d->num_classes = 10;
    snprintf(d->source, sizeof d->source, "memory");
    size_t per = (size_t)(c * h * w);
    d->labels = qs_alloc((size_t)n * sizeof(int32_t));
    d->f32 = qs_alloc((size_t)n * per * sizeof(float));
    ck_assert(d->labels && d->f32);
    for (int64_t i = 0; i < n; i++)
        d->labels[i] = (int32_t)(i % 10);
    for (size_t k = 0; k < (size_t)n * per; k++)
        d->f32[k] = v ? v[k] : (float)(2.0 * qs_rng_uniform(5, 1, k) - 1.0) * 2.5f;
    return d;
}

/* Two statistics are the same bit for bit. */
static void same_tstats(const qs_tstats_t *a, const qs_tstats_t *b, const char *what)
{
    ck_assert_msg(a->count == b->count && a->nonfinite == b->nonfinite && a->outliers == b->outliers, "%s: counts",
                  what);
    const double da[] = {a->min, a->max, a->mean, a->std, a->kurtosis, a->range_spread};
    const double db[] = {b->min, b->max, b->mean, b->std, b->kurtosis, b->range_spread};
    ck_assert_msg(memcmp(da, db, sizeof da) == 0, "%s: figures differ (mean %.17g vs %.17g, std %.17g vs %.17g)", what,
                  a->mean, b->mean, a->std, b->std);
    ck_assert_int_eq(a->nbins, b->nbins);
    ck_assert_msg(memcmp(a->hist, b->hist, (size_t)a->nbins * sizeof *a->hist) == 0, "%s: histograms differ", what);
    ck_assert_int_eq(a->channels, b->channels);
    ck_assert_int_eq(a->zero_range_channels, b->zero_range_channels);
    if (a->channels) {
        ck_assert_msg(memcmp(a->ch_min, b->ch_min, (size_t)a->channels * sizeof(float)) == 0, "%s: ch_min", what);
        ck_assert_msg(memcmp(a->ch_max, b->ch_max, (size_t)a->channels * sizeof(float)) == 0, "%s: ch_max", what);
    }
}

/* ---- one tensor ------------------------------------------------------------------------------- */

START_TEST(moments_of_a_known_vector)
{
    const float v[] = {-2, -1, 0, 1, 2};
    qs_tensor_t *t = vec(5, v);
    qs_stats_opts_t o = opts(4, 6.0);
    qs_tstats_t s = tstats(t, NULL, -1, &o);
    ck_assert_int_eq(s.count, 5);
    ck_assert_int_eq(s.nonfinite, 0);
    ck_assert_double_eq(s.min, -2.0);
    ck_assert_double_eq(s.max, 2.0);
    ck_assert_double_eq(s.mean, 0.0);
    ck_assert_double_eq(s.std, sqrt(2.0));             /* population: m2 = 10/5 */
    ck_assert_double_eq(s.kurtosis, (34.0 / 5.0) / 4.0); /* Pearson: m4/m2² = 6.8/4 = 1.7 */
    ck_assert_int_eq(s.outliers, 0);
    /* bins of width 1 over [-2, 2]; the maximum goes into the last bin */
    const int64_t want[] = {1, 1, 1, 2};
    hist_is(&s, 4, want);
    ck_assert_int_eq(s.channels, 0);
    ck_assert_ptr_null(s.ch_min);
    ck_assert(isnan(s.range_spread));
    qs_tstats_clear(&s);
    ck_assert_ptr_null(s.hist);
    qs_tensor_free(t);

    /* a uniform grid of 1001 points: Pearson kurtosis close to a uniform
     * distribution's 9/5 (a Gaussian's would be 3) */
    float u[1001];
    for (int i = 0; i < 1001; i++)
        u[i] = (float)(i - 500);
    t = vec(1001, u);
    s = tstats(t, NULL, -1, NULL);
    ck_assert_double_eq(s.mean, 0.0);
    ck_assert_double_eq_tol(s.kurtosis, 1.8, 0.01);
    ck_assert_int_eq(s.nbins, QS_STATS_BINS);
    int64_t total = 0;
    for (int k = 0; k < s.nbins; k++)
        total += s.hist[k];
    ck_assert_int_eq(total, 1001);
    qs_tstats_clear(&s);
    qs_tensor_free(t);
}
END_TEST

/* 99 zeros and one 1000: mean 10, m2 = (99·100 + 990²)/100 = 9900, std 99.498...;
 * |1000 − 10| = 990 is 9.95 std from the mean. */
START_TEST(outliers_at_the_threshold)
{
    float v[100] = {0};
    v[37] = 1000.0f;
    qs_tensor_t *t = vec(100, v);
    qs_stats_opts_t o = opts(10, 6.0);
    qs_tstats_t s = tstats(t, NULL, -1, &o);
    ck_assert_double_eq(s.mean, 10.0);
    ck_assert_double_eq(s.std, sqrt(9900.0));
    ck_assert_int_eq(s.outliers, 1);
    /* Bernoulli with p = 0.01: Pearson kurtosis (1 − 3p(1−p)) / (p(1−p)) */
    double p = 0.01;
    ck_assert_double_eq_tol(s.kurtosis, (1 - 3 * p * (1 - p)) / (p * (1 - p)), 1e-9);
    const int64_t want[] = {99, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    hist_is(&s, 10, want);
    qs_tstats_clear(&s);
    o.outlier_k = 9.9; /* 9.9 · 99.4987 = 985.0 < 990 */
    s = tstats(t, NULL, -1, &o);
    ck_assert_int_eq(s.outliers, 1);
    qs_tstats_clear(&s);
    o.outlier_k = 10.0; /* 994.99 > 990 */
    s = tstats(t, NULL, -1, &o);
    ck_assert_int_eq(s.outliers, 0);
    qs_tstats_clear(&s);
    qs_tensor_free(t);
}
END_TEST

START_TEST(histogram_bins)
{
    /* [0, 1] in 4 bins: the edges 0.25, 0.5, 0.75 open their bins */
    const float v[] = {0.0f, 0.2499f, 0.25f, 0.5f, 0.74f, 0.75f, 0.9f, 1.0f};
    qs_tensor_t *t = vec(8, v);
    qs_stats_opts_t o = opts(4, 6.0);
    qs_tstats_t s = tstats(t, NULL, -1, &o);
    const int64_t want[] = {2, 1, 2, 3};
    hist_is(&s, 4, want);
    qs_tstats_clear(&s);
    /* one bin: everything */
    o.nbins = 1;
    s = tstats(t, NULL, -1, &o);
    ck_assert_int_eq(s.hist[0], 8);
    qs_tstats_clear(&s);
    qs_tensor_free(t);

    /* a constant tensor: bin 0, std 0, kurtosis undefined, no outliers */
    const float c[] = {0.1f, 0.1f, 0.1f};
    t = vec(3, c);
    o.nbins = 3;
    s = tstats(t, NULL, -1, &o);
    ck_assert_double_eq(s.mean, (double)0.1f);
    ck_assert_double_eq(s.std, 0.0);
    ck_assert(isnan(s.kurtosis));
    ck_assert_int_eq(s.outliers, 0);
    const int64_t wc[] = {3, 0, 0};
    hist_is(&s, 3, wc);
    qs_tstats_clear(&s);
    qs_tensor_free(t);
}
END_TEST

START_TEST(nonfinite_and_signed_zero)
{
    const float v[] = {1.0f, NAN, 3.0f, INFINITY, -INFINITY};
    qs_tensor_t *t = vec(5, v);
    qs_tstats_t s = tstats(t, NULL, -1, NULL);
    ck_assert_int_eq(s.count, 2);
    ck_assert_int_eq(s.nonfinite, 3);
    ck_assert_double_eq(s.min, 1.0);
    ck_assert_double_eq(s.max, 3.0);
    ck_assert_double_eq(s.mean, 2.0);
    ck_assert_double_eq(s.std, 1.0);
    ck_assert_double_eq(s.kurtosis, 1.0);
    qs_tstats_clear(&s);
    qs_tensor_free(t);

    /* a NaN in one channel leaves the other channel's figures alone */
    const float c2[] = {1.0f, NAN, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f, 8.0f, 9.0f, 10.0f, 11.0f};
    int64_t sh2[2] = {1, 11};
    t = tens(2, sh2, c2);
    qs_tensor_t *t2 = vec(11, c2);
    t2->ndim = 2;
    t2->shape[0] = 11;
    t2->shape[1] = 1;
    s = tstats(t2, NULL, 0, NULL); /* 11 channels of one value */
    ck_assert_int_eq(s.count, 10);
    ck_assert_int_eq(s.nonfinite, 1);
    ck_assert(isnan(s.ch_min[1]) && isnan(s.ch_max[1]));
    ck_assert_float_eq(s.ch_min[2], 3.0f);
    ck_assert_double_eq(s.range_spread, 1.0); /* every channel with a value has range 0 */
    ck_assert_int_eq(s.zero_range_channels, 10);
    ck_assert_double_eq(s.mean, 64.0 / 10.0);
    qs_tstats_clear(&s);
    qs_stats_opts_t o4 = opts(5, 6.0);
    s = tstats(t, NULL, 0, &o4); /* one channel of 11 values */
    ck_assert_int_eq(s.count, 10);
    ck_assert_double_eq(s.mean, 64.0 / 10.0);
    ck_assert_float_eq(s.ch_min[0], 1.0f);
    ck_assert_float_eq(s.ch_max[0], 11.0f);
    const int64_t w5[] = {1, 2, 2, 2, 3}; /* bins of width 2 over [1, 11]: 1 | 3 4 | 5 6 | 7 8 | 9 10 11 */
    hist_is(&s, 5, w5);
    qs_tstats_clear(&s);
    qs_tensor_free(t2);
    qs_tensor_free(t);

    /* only NaN: no figures */
    const float n[] = {NAN, NAN};
    t = vec(2, n);
    s = tstats(t, NULL, 0, NULL);
    ck_assert_int_eq(s.count, 0);
    ck_assert_int_eq(s.nonfinite, 2);
    ck_assert(isnan(s.min) && isnan(s.max) && isnan(s.mean) && isnan(s.std) && isnan(s.kurtosis));
    ck_assert(isnan(s.ch_min[0]) && isnan(s.ch_max[1]));
    ck_assert(isnan(s.range_spread));
    qs_tstats_clear(&s);
    qs_tensor_free(t);

    /* zeros are +0 in min and max whatever the order of -0 and +0 */
    const float z1[] = {0.0f, -0.0f, 1.0f}, z2[] = {-0.0f, 0.0f, 1.0f}, z3[] = {-0.0f, -0.0f, -0.0f};
    const float *zs[] = {z1, z2, z3};
    for (int k = 0; k < 3; k++) {
        t = vec(3, zs[k]);
        s = tstats(t, NULL, 0, NULL);
        ck_assert(s.min == 0.0 && !signbit(s.min));
        ck_assert(!signbit(s.ch_min[0]) && !signbit(s.ch_max[0]));
        ck_assert(!signbit(s.max));
        qs_tstats_clear(&s);
        qs_tensor_free(t);
    }
}
END_TEST

/* A 3-channel conv weight [3, 1, 2, 2] (OIHW): ranges 2, 0.25 and 8. */
START_TEST(channel_range_spread)
{
    float w[12] = {0, 1, 0.5f, -1, /* channel 0: [-1, 1] */
                   0.25f, 0.5f, 0.25f, 0.5f, /* channel 1: [0.25, 0.5] */
                   -4, 4, 0, 0}; /* channel 2: [-4, 4] */
    int64_t shape[4] = {3, 1, 2, 2};
    qs_tensor_t *t = tens(4, shape, w);
    qs_tstats_t s = tstats(t, NULL, 0, NULL);
    ck_assert_int_eq(s.channels, 3);
    const float cmin[] = {-1, 0.25f, -4}, cmax[] = {1, 0.5f, 4};
    for (int c = 0; c < 3; c++) {
        ck_assert_float_eq(s.ch_min[c], cmin[c]);
        ck_assert_float_eq(s.ch_max[c], cmax[c]);
    }
    ck_assert_double_eq(s.range_spread, 32.0);
    ck_assert_int_eq(s.zero_range_channels, 0);
    qs_tstats_clear(&s);

    /* the mask leaves channel 2's -4 out: its range becomes [0, 4] */
    int64_t ms[4] = {3, 1, 2, 2};
    qs_tensor_t *mask = tens(4, ms, NULL);
    for (int k = 0; k < 12; k++)
        qs_f32(mask)[k] = k == 8 ? 0.0f : 1.0f;
    s = tstats(t, mask, 0, NULL);
    ck_assert_int_eq(s.count, 11);
    ck_assert_float_eq(s.ch_min[2], 0.0f);
    ck_assert_double_eq(s.min, -1.0);
    ck_assert_double_eq(s.range_spread, 16.0);
    qs_tstats_clear(&s);
    /* a channel pruned entirely has no range and does not count */
    for (int k = 4; k < 8; k++)
        qs_f32(mask)[k] = 0.0f;
    s = tstats(t, mask, 0, NULL);
    ck_assert(isnan(s.ch_min[1]) && isnan(s.ch_max[1]));
    ck_assert_double_eq(s.range_spread, 2.0); /* 4 / 2 */
    qs_tstats_clear(&s);

    /* a zero-range channel: spread +inf, counted */
    for (int k = 4; k < 8; k++)
        qs_f32(t)[k] = 0.5f;
    s = tstats(t, NULL, 0, NULL);
    ck_assert(isinf(s.range_spread) && s.range_spread > 0);
    ck_assert_int_eq(s.zero_range_channels, 1);
    qs_tstats_clear(&s);
    /* every channel constant: spread 1 */
    for (int k = 0; k < 12; k++)
        qs_f32(t)[k] = (float)(k / 4);
    s = tstats(t, NULL, 0, NULL);
    ck_assert_double_eq(s.range_spread, 1.0);
    ck_assert_int_eq(s.zero_range_channels, 3);
    qs_tstats_clear(&s);

    /* a channel axis in the middle: [2, 3, 2] with channels along axis 1 */
    int64_t s3[3] = {2, 3, 2};
    float v[12] = {1, 2, 10, 20, 5, 5, /* outer 0: channels (1,2) (10,20) (5,5) */
                   0, 1, 12, 11, 5, 6}; /* outer 1 */
    qs_tensor_t *t3 = tens(3, s3, v);
    s = tstats(t3, NULL, 1, NULL);
    ck_assert_int_eq(s.channels, 3);
    ck_assert_float_eq(s.ch_min[0], 0);
    ck_assert_float_eq(s.ch_max[0], 2);
    ck_assert_float_eq(s.ch_min[1], 10);
    ck_assert_float_eq(s.ch_max[1], 20);
    ck_assert_float_eq(s.ch_min[2], 5);
    ck_assert_float_eq(s.ch_max[2], 6);
    ck_assert_double_eq(s.range_spread, 10.0);
    ck_assert_double_eq(s.mean, 78.0 / 12.0);
    qs_tstats_clear(&s);
    qs_tensor_free(t3);
    qs_tensor_free(mask);
    qs_tensor_free(t);
}
END_TEST

START_TEST(tensor_errors)
{
    const float v[] = {1, 2, 3, 4};
    int64_t shape[2] = {2, 2};
    qs_tensor_t *t = tens(2, shape, v);
    qs_tstats_t s;
    ck_assert_int_eq(qs_tstats_tensor(t, NULL, 2, NULL, &s), QS_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "channel axis 2"));
    ck_assert_int_eq(qs_tstats_tensor(t, NULL, -2, NULL, &s), QS_ERR_INVALID);
    qs_tensor_t *m = vec(4, v);
    ck_assert_int_eq(qs_tstats_tensor(t, m, 0, NULL, &s), QS_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "mask"));
    qs_stats_opts_t o = opts(0, 6.0);
    ck_assert_int_eq(qs_tstats_tensor(t, NULL, 0, &o, &s), QS_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "bins"));
    o = opts(16, 0.0);
    ck_assert_int_eq(qs_tstats_tensor(t, NULL, 0, &o, &s), QS_ERR_INVALID);
    o = opts(16, NAN);
    ck_assert_int_eq(qs_tstats_tensor(t, NULL, 0, &o, &s), QS_ERR_INVALID);
    qs_tensor_t *i = qs_tensor_create(QS_I32, 2, shape);
    ck_assert_int_eq(qs_tstats_tensor(i, NULL, 0, NULL, &s), QS_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "float32"));
    ck_assert_ptr_null(s.hist);
    qs_tensor_free(i);
    qs_tensor_free(m);
    qs_tensor_free(t);
}
END_TEST

/* ---- a hand-made graph ------------------------------------------------------------------------ */

/* input (2, 1, 2) -> flatten (4) -> fc (3, no bias) -> relu: fc's rows pick
 * x0, x1 and sum all four. */
static qs_graph_t *tiny(void)
{
    qs_graph_t *g = qs_graph_create("tiny", 2, 1, 2);
    ck_assert_ptr_nonnull(g);
    int in0 = 0;
    qs_node_t n = qs_node_init(QS_OP_FLATTEN, "flat", 1, &in0);
    int f = qs_graph_add(g, &n);
    ck_assert_int_ge(f, 0);
    n = qs_node_init(QS_OP_LINEAR, "fc", 1, &f);
    int64_t ws[2] = {3, 4};
    const float w[12] = {1, 0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 1};
    n.weight = tens(2, ws, w);
    int fc = qs_graph_add(g, &n);
    ck_assert_int_ge(fc, 0);
    n = qs_node_init(QS_OP_RELU, "relu", 1, &fc);
    ck_assert_int_ge(qs_graph_add(g, &n), 0);
    g->input_scale = 1.0f;
    ck_assert_msg(qs_graph_infer(g) == QS_OK, "%s", qs_last_error());
    return g;
}

static const float tiny_images[12] = {1, -1, 2, 0, 0.5f, 0.5f, -3, 4, 0, 0, 0, 0};

START_TEST(graph_activations)
{
    qs_graph_t *g = tiny();
    qs_dataset_t *d = mem_dataset(3, 2, 1, 2, tiny_images);
    qs_stats_opts_t o = opts(4, 6.0);
    o.images = 100; /* more than the dataset holds: all 3 */
    qs_model_stats_t *s = NULL;
    int rc = qs_stats_model(g, d, &o, NULL, &s);
    ck_assert_msg(rc == QS_OK, "qs_stats_model: %s", qs_last_error());
    ck_assert_int_eq(s->images, 3);
    ck_assert_int_eq(s->nnodes, 4);
    ck_assert_str_eq(s->model, "tiny");
    ck_assert_str_eq(s->source, "memory");
    ck_assert_int_eq(s->folded, -1);

    /* the input: 12 values, per channel (C = 2) over H x W */
    const qs_tstats_t *a = &s->node[0].act;
    ck_assert_int_eq(a->count, 12);
    ck_assert_double_eq(a->min, -3.0);
    ck_assert_double_eq(a->max, 4.0);
    ck_assert_double_eq(a->mean, 4.0 / 12.0);
    ck_assert_int_eq(a->channels, 2);
    ck_assert_float_eq(a->ch_min[0], -1);
    ck_assert_float_eq(a->ch_max[0], 1);
    ck_assert_float_eq(a->ch_min[1], -3);
    ck_assert_float_eq(a->ch_max[1], 4);
    ck_assert_double_eq(a->range_spread, 3.5);
    double m2 = 0, m4 = 0;
    for (int k = 0; k < 12; k++) {
        double dd = tiny_images[k] - 1.0 / 3.0;
        m2 += dd * dd / 12;
        m4 += dd * dd * dd * dd / 12;
    }
    ck_assert_double_eq_tol(a->std, sqrt(m2), 1e-12);
    ck_assert_double_eq_tol(a->kurtosis, m4 / (m2 * m2), 1e-12);
    ck_assert(!s->node[0].has_weight);
    ck_assert_int_eq(s->node[0].andim, 3);

    /* relu(fc): rows [1, 0, 2], [0.5, 0.5, 2], [0, 0, 0] */
    a = &s->node[3].act;
    ck_assert_int_eq(a->count, 9);
    ck_assert_double_eq(a->min, 0.0);
    ck_assert_double_eq(a->max, 2.0);
    ck_assert_double_eq(a->mean, 6.0 / 9.0);
    const int64_t want[] = {4, 2, 1, 2};
    hist_is(a, 4, want);
    ck_assert_int_eq(a->channels, 3);
    ck_assert_double_eq(a->range_spread, 4.0); /* 2 / 0.5 */
    /* fc's output before the relu has the -1 */
    ck_assert_double_eq(s->node[2].act.min, -1.0);

    /* fc's weight: 0/1 values, half ones; row 2 is all ones (range 0) */
    ck_assert(s->node[2].has_weight);
    ck_assert_int_eq(s->node[2].wndim, 2);
    ck_assert_int_eq(s->node[2].wshape[0], 3);
    const qs_tstats_t *w = &s->node[2].weight;
    ck_assert_int_eq(w->count, 12);
    ck_assert_double_eq(w->mean, 0.5);
    ck_assert_double_eq(w->std, 0.5);
    ck_assert_double_eq(w->kurtosis, 1.0);
    ck_assert_int_eq(w->channels, 3);
    ck_assert_int_eq(w->zero_range_channels, 1);
    ck_assert(isinf(w->range_spread));
    qs_model_stats_free(s);

    /* weights only */
    ck_assert_int_eq(qs_stats_model(g, NULL, &o, NULL, &s), QS_OK);
    ck_assert_int_eq(s->images, 0);
    ck_assert_int_eq(s->node[3].act.count, 0);
    ck_assert_ptr_null(s->node[3].act.hist);
    ck_assert_int_eq(s->node[2].weight.count, 12);
    qs_model_stats_free(s);
    qs_dataset_free(d);
    qs_graph_free(g);
}
END_TEST

typedef struct {
    int calls, stop_at;
    int64_t last_done, total;
} prog_t;

static int on_progress(const qs_progress_t *p, void *user)
{
    prog_t *pr = user;
    pr->calls++;
    ck_assert_str_eq(p->task, "stats");
    ck_assert_int_gt(p->done, pr->last_done);
    pr->last_done = p->done;
    pr->total = p->total;
    return pr->calls == pr->stop_at;
}

START_TEST(model_errors_and_progress)
{
    qs_graph_t *g = tiny();
    qs_dataset_t *d = mem_dataset(3, 2, 1, 2, tiny_images);
    qs_model_stats_t *s = (qs_model_stats_t *)1;
    qs_stats_opts_t o = opts(8, 6.0);
    o.images = 0;
    ck_assert_int_eq(qs_stats_model(g, d, &o, NULL, &s), QS_ERR_INVALID);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "at least 1, got 0"));
    o.images = 3;
    o.batch = 0;
    ck_assert_int_eq(qs_stats_model(g, d, &o, NULL, &s), QS_ERR_INVALID);
    o.batch = 2;
    o.nbins = -1;
    ck_assert_int_eq(qs_stats_model(g, d, &o, NULL, &s), QS_ERR_INVALID);
    o.nbins = 8;
    /* a dataset whose images do not fit the model */
    qs_dataset_t *bad = mem_dataset(3, 1, 2, 2, tiny_images);
    snprintf(bad->source, sizeof bad->source, "bad.h5");
    ck_assert_int_eq(qs_stats_model(g, bad, &o, NULL, &s), QS_ERR_SHAPE);
    ck_assert_msg(strstr(qs_last_error(), "'bad.h5' has 1x2x2 images but model 'tiny' takes 2x1x2"), "%s",
                  qs_last_error());
    qs_dataset_free(bad);
    ck_assert_int_eq(qs_stats_model(NULL, d, &o, NULL, &s), QS_ERR_INVALID);
    ck_assert_int_eq(qs_stats_model(g, d, &o, NULL, NULL), QS_ERR_INVALID);

    /* progress: 3 passes of 2 batches (2 + 1 images) */
    prog_t pr = {0, -1, 0, 0};
    qs_progress_cb_t cb = {on_progress, &pr, 0};
    ck_assert_int_eq(qs_stats_model(g, d, &o, &cb, &s), QS_OK);
    ck_assert_int_eq(pr.calls, 6);
    ck_assert_int_eq(pr.last_done, 9);
    ck_assert_int_eq(pr.total, 9);
    qs_model_stats_free(s);
    /* cancelled in pass 2: an error, nothing returned, nothing leaked */
    pr = (prog_t){0, 3, 0, 0};
    ck_assert_int_eq(qs_stats_model(g, d, &o, &cb, &s), QS_ERR_INTERRUPTED);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(pr.calls, 3);
    qs_dataset_free(d);
    qs_graph_free(g);
}
END_TEST

/* ---- the zoo model: threads, batches and one-tensor agreement -------------------------------- */

START_TEST(dwsep_threads_and_batches)
{
    qs_graph_t *g0 = NULL, *g = NULL;
    ck_assert_int_eq(qs_zoo_build("fmnist-dwsep", 1, &g0), QS_OK);
    int folded = 0;
    ck_assert_int_eq(qs_graph_fold_bn(g0, &g, &folded), QS_OK);
    ck_assert_int_gt(folded, 0);
    qs_dataset_t *d = mem_dataset(50, 1, 28, 28, NULL);
    qs_pool_t *p2 = qs_pool_create(2);
    ck_assert_ptr_nonnull(p2);

    qs_stats_opts_t o = opts(64, 6.0);
    o.images = 37;
    o.seed = 9;
    qs_model_stats_t *s1 = NULL, *s2 = NULL;
    ck_assert_msg(qs_stats_model(g, d, &o, NULL, &s1) == QS_OK, "%s", qs_last_error());
    o.pool = p2;
    o.batch = 5;
    ck_assert_msg(qs_stats_model(g, d, &o, NULL, &s2) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(s1->nnodes, g->nnodes);
    int weights = 0;
    for (int i = 0; i < g->nnodes; i++) {
        same_tstats(&s1->node[i].act, &s2->node[i].act, g->nodes[i].name);
        ck_assert_int_eq(s1->node[i].has_weight, s2->node[i].has_weight);
        if (s1->node[i].has_weight) {
            same_tstats(&s1->node[i].weight, &s2->node[i].weight, g->nodes[i].name);
            weights++;
        }
        /* every value of every image is counted and binned */
        const qs_node_t *nd = &g->nodes[i];
        int64_t per = nd->out_shape[0] * (nd->out_ndim == 3 ? nd->out_shape[1] * nd->out_shape[2] : 1);
        const qs_tstats_t *a = &s1->node[i].act;
        ck_assert_int_eq(a->count, 37 * per);
        int64_t total = 0;
        for (int k = 0; k < a->nbins; k++)
            total += a->hist[k];
        ck_assert_int_eq(total, a->count);
        ck_assert(a->min <= a->mean && a->mean <= a->max && a->std >= 0);
    }
    ck_assert_int_eq(weights, 8); /* stem, 3 x (dw, pw) and fc */

    /* against one-tensor statistics: the weights, the network input (the
     * subset as a batch) and the logits (the network output) */
    for (int i = 0; i < g->nnodes; i++) {
        if (!s1->node[i].has_weight)
            continue;
        qs_tstats_t w = tstats(g->nodes[i].weight, NULL, 0, &o);
        same_tstats(&s1->node[i].weight, &w, g->nodes[i].name);
        qs_tstats_clear(&w);
    }
    qs_dataset_t *sub = NULL;
    ck_assert_int_eq(qs_dataset_subset(d, 37, 9, &sub), QS_OK);
    int64_t xs[4] = {37, 1, 28, 28};
    qs_tensor_t *x = tens(4, xs, NULL);
    ck_assert_int_eq(qs_dataset_batch(sub, g, 0, NULL, 37, x, NULL), QS_OK);
    qs_tstats_t in = tstats(x, NULL, 1, &o);
    same_tstats(&s1->node[0].act, &in, "input");
    qs_tstats_clear(&in);
    qs_engine_t *e = NULL;
    ck_assert_int_eq(qs_engine_create(g, NULL, &e), QS_OK);
    const qs_tensor_t *y;
    ck_assert_int_eq(qs_engine_forward(e, x, &y), QS_OK);
    qs_tstats_t out = tstats(y, NULL, 1, &o);
    same_tstats(&s1->node[g->output].act, &out, "logits");
    qs_tstats_clear(&out);
    qs_engine_free(e);
    qs_tensor_free(x);
    qs_dataset_free(sub);

    /* another seed draws other images */
    o.seed = 10;
    qs_model_stats_t *s3 = NULL;
    ck_assert_int_eq(qs_stats_model(g, d, &o, NULL, &s3), QS_OK);
    ck_assert(s3->node[g->output].act.mean != s1->node[g->output].act.mean);
    qs_model_stats_free(s3);

    qs_model_stats_free(s1);
    qs_model_stats_free(s2);
    qs_pool_free(p2);
    qs_dataset_free(d);
    qs_graph_free(g);
    qs_graph_free(g0);
}
END_TEST

/* ---- HDF5 -------------------------------------------------------------------------------------- */

static double attr_double(hid_t f, const char *obj, const char *name)
{
    double v = NAN;
    hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_msg(a >= 0, "attribute %s of %s", name, obj);
    ck_assert(H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0);
    H5Aclose(a);
    return v;
}

static int64_t attr_int(hid_t f, const char *obj, const char *name)
{
    int64_t v = -12345;
    hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_msg(a >= 0, "attribute %s of %s", name, obj);
    ck_assert(H5Aread(a, H5T_NATIVE_INT64, &v) >= 0);
    H5Aclose(a);
    return v;
}

/* Reads a 1-D dataset of n values as type mtype into buf. */
static void read_1d(hid_t f, const char *name, hid_t mtype, int64_t n, void *buf)
{
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    ck_assert_msg(ds >= 0, "dataset %s", name);
    hid_t sp = H5Dget_space(ds);
    hsize_t dims[2] = {0, 0};
    ck_assert_int_eq(H5Sget_simple_extent_ndims(sp), 1);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    ck_assert_int_eq((int64_t)dims[0], n);
    ck_assert(H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    H5Sclose(sp);
    H5Dclose(ds);
}

START_TEST(hdf5_round_trip)
{
    qs_graph_t *g = tiny();
    qs_dataset_t *d = mem_dataset(3, 2, 1, 2, tiny_images);
    qs_stats_opts_t o = opts(4, 6.0);
    o.seed = 42;
    qs_model_stats_t *s = NULL;
    ck_assert_int_eq(qs_stats_model(g, d, &o, NULL, &s), QS_OK);
    s->folded = 0;
    char path[512];
    qs_test_path(path, sizeof path, "stats.h5");
    int rc = qs_stats_save_h5(s, path);
    ck_assert_msg(rc == QS_OK, "qs_stats_save_h5: %s", qs_last_error());

    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert(f >= 0);
    ck_assert_int_eq(attr_int(f, "/", "images"), 3);
    ck_assert_int_eq(attr_int(f, "/", "seed"), 42);
    ck_assert_int_eq(attr_int(f, "/", "bins"), 4);
    ck_assert_int_eq(attr_int(f, "/", "folded"), 0);
    ck_assert_double_eq(attr_double(f, "/", "outlier_k"), 6.0);
    /* weights only where there is a weight; acts at every node */
    ck_assert(H5Lexists(f, "/weights/fc", H5P_DEFAULT) > 0);
    ck_assert(H5Lexists(f, "/weights/relu", H5P_DEFAULT) == 0);
    ck_assert(H5Lexists(f, "/acts/input", H5P_DEFAULT) > 0);
    ck_assert(H5Lexists(f, "/acts/flat", H5P_DEFAULT) > 0);

    int64_t hist[4];
    read_1d(f, "/acts/relu/hist", H5T_NATIVE_INT64, 4, hist);
    const int64_t want[] = {4, 2, 1, 2};
    ck_assert_int_eq(memcmp(hist, want, sizeof hist), 0);
    float edges[5];
    read_1d(f, "/acts/relu/edges", H5T_NATIVE_FLOAT, 5, edges);
    const float we[] = {0, 0.5f, 1, 1.5f, 2};
    ck_assert_int_eq(memcmp(edges, we, sizeof edges), 0);
    float cmin[3], cmax[3];
    read_1d(f, "/weights/fc/channel_min", H5T_NATIVE_FLOAT, 3, cmin);
    read_1d(f, "/weights/fc/channel_max", H5T_NATIVE_FLOAT, 3, cmax);
    ck_assert(cmin[0] == 0 && cmax[0] == 1 && cmin[2] == 1 && cmax[2] == 1);
    ck_assert_double_eq(attr_double(f, "/acts/relu", "mean"), s->node[3].act.mean);
    ck_assert_double_eq(attr_double(f, "/acts/relu", "std"), s->node[3].act.std);
    ck_assert_double_eq(attr_double(f, "/acts/input", "range_spread"), 3.5);
    ck_assert(isinf(attr_double(f, "/weights/fc", "range_spread")));
    ck_assert_int_eq(attr_int(f, "/weights/fc", "zero_range_channels"), 1);
    ck_assert_int_eq(attr_int(f, "/weights/fc", "index"), 2);
    ck_assert_int_eq(attr_int(f, "/acts/relu", "count"), 9);
    ck_assert_double_eq(attr_double(f, "/weights/fc", "kurtosis"), 1.0);
    H5Fclose(f);

    /* the quasar helpers read the strings */
    qs_h5_t *h = qs_h5_open(path);
    ck_assert_ptr_nonnull(h);
    char *str = NULL;
    ck_assert_int_eq(qs_h5_get_attr_str(h, "/", "format", &str), QS_OK);
    ck_assert_str_eq(str, "quasar-stats");
    free(str);
    ck_assert_int_eq(qs_h5_get_attr_str(h, "/weights/fc", "shape", &str), QS_OK);
    ck_assert_str_eq(str, "3x4");
    free(str);
    ck_assert_int_eq(qs_h5_get_attr_str(h, "/acts/input", "shape", &str), QS_OK);
    ck_assert_str_eq(str, "2x1x2");
    free(str);
    ck_assert_int_eq(qs_h5_get_attr_str(h, "/acts/fc", "op", &str), QS_OK);
    ck_assert_str_eq(str, "linear");
    free(str);
    qs_h5_close(h);

    /* a folder that does not exist: an error naming the file, nothing written */
    ck_assert_int_lt(qs_stats_save_h5(s, "/nonexistent-dir/x/stats.h5"), 0);
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "/nonexistent-dir/x/stats.h5"));
    unlink(path);
    qs_model_stats_free(s);
    qs_dataset_free(d);
    qs_graph_free(g);
}
END_TEST

static Suite *stats_suite(void)
{
    Suite *s = suite_create("stats");
    TCase *tc = tcase_create("tensor");
    tcase_add_test(tc, moments_of_a_known_vector);
    tcase_add_test(tc, outliers_at_the_threshold);
    tcase_add_test(tc, histogram_bins);
    tcase_add_test(tc, nonfinite_and_signed_zero);
    tcase_add_test(tc, channel_range_spread);
    tcase_add_test(tc, tensor_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("model");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, graph_activations);
    tcase_add_test(tc, model_errors_and_progress);
    tcase_add_test(tc, dwsep_threads_and_batches);
    tcase_add_test(tc, hdf5_round_trip);
    suite_add_tcase(s, tc);
    return s;
}

QS_TEST_MAIN(stats_suite)
