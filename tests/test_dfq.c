/* tests/test_dfq.c — data-free quantization transforms: equalization keeps
 * a ReLU network's outputs and balances every pair's channel ranges (on the
 * default architectures, depthwise pairs included), residual branches and
 * ReLU6 are skipped or replaced as documented, absorption keeps outputs
 * where its assumption holds, bias correction removes a known injected mean
 * error and its analytic E[x] matches the empirical one, the clipped-normal
 * means match numerical integration, bad inputs are refused with messages
 * that say why, and the result survives the model file. */
#include "sim/dfq.h"
#include "sim/sim_internal.h"
#include "tests/testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------------------------- */

static qs_tensor_t *tens(int ndim, const int64_t *shape, const float *v)
{
    qs_tensor_t *t = qs_tensor_create(QS_F32, ndim, shape);
    ck_assert_ptr_nonnull(t);
    if (v)
        memcpy(t->data, v, (size_t)t->size * sizeof(float));
    return t;
}

static double uni(uint64_t stream, uint64_t i) { return qs_rng_uniform(77, stream, i); }

static double gauss(uint64_t stream, uint64_t i)
{
    double u1 = uni(stream, 2 * i), u2 = uni(stream, 2 * i + 1);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

static void fill(qs_tensor_t *t, double lo, double hi, uint64_t stream)
{
    for (int64_t i = 0; i < t->size; i++)
        qs_f32(t)[i] = (float)(lo + (hi - lo) * uni(stream, (uint64_t)i));
}

static qs_tensor_t *vec(int64_t n, double lo, double hi, uint64_t stream)
{
    qs_tensor_t *t = tens(1, &n, NULL);
    fill(t, lo, hi, stream);
    return t;
}

/* An in-memory float dataset: uniform [0, 1) pixels or standard normal values. */
typedef struct {
    qs_dataset_t d;
    float *img;
    int32_t *lab;
} mem_data_t;

static void mem_data(mem_data_t *m, const qs_graph_t *g, int64_t n, uint64_t stream, bool normal)
{
    memset(m, 0, sizeof *m);
    int64_t per = g->in_c * g->in_h * g->in_w;
    m->img = malloc((size_t)(n * per) * sizeof *m->img);
    m->lab = calloc((size_t)n, sizeof *m->lab);
    ck_assert(m->img && m->lab);
    for (int64_t i = 0; i < n * per; i++)
        m->img[i] = (float)(normal ? gauss(stream, (uint64_t)i) : uni(stream, (uint64_t)i));
    m->d.n = n;
    m->d.c = g->in_c;
    m->d.h = g->in_h;
    m->d.w = g->in_w;
    m->d.f32 = m->img;
    m->d.labels = m->lab;
    m->d.num_classes = g->num_classes;
    snprintf(m->d.source, sizeof m->d.source, "memory:%llu", (unsigned long long)stream);
}

static void mem_free(mem_data_t *m)
{
    free(m->img);
    free(m->lab);
}

/* g's outputs for the normalized images of d: [n, num_classes], malloc'd. */
static float *outputs(const qs_graph_t *g, const qs_dataset_t *d, int64_t n)
{
    int64_t shape[4] = {n, g->in_c, g->in_h, g->in_w};
    qs_tensor_t *x = tens(4, shape, NULL);
    ck_assert_int_eq(qs_dataset_batch(d, g, 0, NULL, n, x, NULL), QS_OK);
    qs_engine_t *e = NULL;
    qs_engine_opts_t eo = {NULL, true};
    ck_assert_msg(qs_engine_create(g, &eo, &e) == QS_OK, "%s", qs_last_error());
    const qs_tensor_t *y;
    ck_assert_msg(qs_engine_forward(e, x, &y) == QS_OK, "%s", qs_last_error());
    float *out = malloc((size_t)y->size * sizeof *out);
    ck_assert_ptr_nonnull(out);
    memcpy(out, y->data, (size_t)y->size * sizeof *out);
    qs_engine_free(e);
    qs_tensor_free(x);
    return out;
}

static double rel_l2(const float *a, const float *b, int64_t n)
{
    double s = 0.0, e = 0.0;
    for (int64_t i = 0; i < n; i++) {
        s += (double)a[i] * a[i];
        e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    }
    return sqrt(e / s);
}

/* Gives every batchnorm of g random statistics, so that channels differ. */
static void randomize_bn(qs_graph_t *g, uint64_t stream)
{
    for (int i = 0; i < g->nnodes; i++) {
        qs_node_t *n = &g->nodes[i];
        if (n->op != QS_OP_BATCHNORM)
            continue;
        fill(n->gamma, 0.1, 4.0, stream + 4 * (uint64_t)i);
        fill(n->beta, -1.0, 1.0, stream + 4 * (uint64_t)i + 1);
        fill(n->mean, -0.5, 0.5, stream + 4 * (uint64_t)i + 2);
        fill(n->var, 0.5, 2.0, stream + 4 * (uint64_t)i + 3);
    }
}

static int relu6_to_relu(qs_graph_t *g)
{
    int k = 0;
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i].op == QS_OP_RELU6) {
            g->nodes[i].op = QS_OP_RELU;
            k++;
        }
    return k;
}

static bool has_skip(const qs_dfq_report_t *r, unsigned step, const char *node, const char *words)
{
    for (int k = 0; k < r->nskipped; k++)
        if (r->skipped[k].step == step && strcmp(r->skipped[k].node, node) == 0 && strstr(r->skipped[k].reason, words))
            return true;
    return false;
}

/* The channel ranges of a pair, computed here from the layouts alone:
 * r1[i] = max |W1[i, ...]|, r2[i] = max |W2 entries that read channel i|. */
static void pair_ranges(const qs_graph_t *g, const char *first, const char *second, double *r1, double *r2,
                        int64_t *channels)
{
    int a = qs_graph_find(g, first), b = qs_graph_find(g, second);
    ck_assert(a > 0 && b > 0);
    const qs_node_t *l1 = &g->nodes[a], *l2 = &g->nodes[b];
    int64_t c = l1->weight->shape[0], per = l1->weight->size / c;
    *channels = c;
    for (int64_t i = 0; i < c; i++) {
        r1[i] = r2[i] = 0.0;
        for (int64_t k = 0; k < per; k++)
            r1[i] = fmax(r1[i], fabs(qs_f32(l1->weight)[i * per + k]));
    }
    const float *w = qs_f32(l2->weight);
    if (l2->op == QS_OP_CONV2D) {
        int64_t o = l2->weight->shape[0], in = l2->weight->shape[1], khw = l2->weight->shape[2] * l2->weight->shape[3];
        int64_t og = o / l2->groups;
        for (int64_t oo = 0; oo < o; oo++)
            for (int64_t li = 0; li < in; li++)
                for (int64_t t = 0; t < khw; t++) {
                    int64_t ch = (oo / og) * in + li;
                    r2[ch] = fmax(r2[ch], fabs(w[(oo * in + li) * khw + t]));
                }
    } else {
        int64_t o = l2->weight->shape[0], f = l2->weight->shape[1], k = f / c;
        for (int64_t oo = 0; oo < o; oo++)
            for (int64_t j = 0; j < f; j++)
                r2[j / k] = fmax(r2[j / k], fabs(w[oo * f + j]));
    }
}

/* max over i of r1[i] / r2[i], over min of the same */
static double ratio_spread(const double *r1, const double *r2, int64_t c)
{
    double lo = INFINITY, hi = 0.0;
    for (int64_t i = 0; i < c; i++) {
        double q = r1[i] / r2[i];
        lo = fmin(lo, q);
        hi = fmax(hi, q);
    }
    return hi / lo;
}

/* ---- clipped-normal means ---------------------------------------------------------------------- */

static double numeric_mean(double mu, double sigma, double lo, double hi)
{
    /* Simpson's rule over mu ± 14 sigma, split at the clip points so that
     * the integrand is smooth on every piece */
    double a = mu - 14.0 * sigma, b = mu + 14.0 * sigma;
    double cuts[4] = {a, fmax(a, fmin(b, lo)), fmax(a, fmin(b, hi)), b};
    double total = 0.0;
    for (int piece = 0; piece < 3; piece++) {
        double x0 = cuts[piece], x1 = cuts[piece + 1];
        if (!(x1 > x0))
            continue;
        const int n = 4000;
        double h = (x1 - x0) / n, s = 0.0;
        for (int k = 0; k <= n; k++) {
            double x = x0 + k * h;
            double v = fmin(fmax(x, lo), hi) * exp(-0.5 * ((x - mu) / sigma) * ((x - mu) / sigma)) /
                       (sigma * sqrt(2.0 * M_PI));
            s += v * (k == 0 || k == n ? 1.0 : k % 2 ? 4.0 : 2.0);
        }
        total += s * h / 3.0;
    }
    /* the mass beyond ±14 sigma is below 1e-44 */
    return total;
}

START_TEST(test_clipped_normal_mean)
{
    static const double mus[] = {-4.0, -1.0, -0.3, 0.0, 0.5, 2.0, 5.5, 7.0};
    static const double sigmas[] = {0.05, 0.5, 1.0, 3.0};
    static const double clips[][2] = {{0.0, INFINITY}, {0.0, 6.0}, {-1.0, 2.0}};
    for (size_t i = 0; i < sizeof mus / sizeof *mus; i++)
        for (size_t j = 0; j < sizeof sigmas / sizeof *sigmas; j++)
            for (size_t k = 0; k < sizeof clips / sizeof *clips; k++) {
                double lo = clips[k][0], hi = clips[k][1];
                double got = qs_dfq_clipped_normal_mean(mus[i], sigmas[j], lo, hi);
                double want = numeric_mean(mus[i], sigmas[j], lo, hi);
                REQUIRE_MSG(fabs(got - want) <= 1e-9 * fmax(1.0, fabs(want)),
                            "mu %g sigma %g clip [%g, %g]: %.15g, numerically %.15g", mus[i], sigmas[j], lo, hi, got,
                            want);
            }
    /* the ReLU closed form of the paper: mu (1 - Phi(-mu/sigma)) + sigma phi(-mu/sigma) */
    double mu = 0.7, s = 1.3, a = -mu / s;
    double relu = mu * (1.0 - 0.5 * erfc(-a / sqrt(2.0))) + s * exp(-0.5 * a * a) / sqrt(2.0 * M_PI);
    ck_assert_double_eq_tol(qs_dfq_clipped_normal_mean(mu, s, 0.0, INFINITY), relu, 1e-14);
    /* no clip: the mean; no spread: the clamped mean */
    ck_assert_double_eq_tol(qs_dfq_clipped_normal_mean(-2.5, 1.0, -INFINITY, INFINITY), -2.5, 1e-14);
    ck_assert_double_eq(qs_dfq_clipped_normal_mean(7.5, 0.0, 0.0, 6.0), 6.0);
    ck_assert_double_eq(qs_dfq_clipped_normal_mean(-1.0, 0.0, 0.0, 6.0), 0.0);
    /* far in the tails, no cancellation */
    ck_assert(qs_dfq_clipped_normal_mean(-40.0, 1.0, 0.0, INFINITY) >= 0.0);
    ck_assert_double_eq_tol(qs_dfq_clipped_normal_mean(40.0, 1.0, 0.0, 6.0), 6.0, 1e-12);
}
END_TEST

/* ---- equalization ------------------------------------------------------------------------------ */

START_TEST(test_cle_dwsep_relu)
{
    qs_graph_t *g = NULL;
    ck_assert_int_eq(qs_zoo_build("fmnist-dwsep", 3, &g), QS_OK);
    ck_assert_int_eq(relu6_to_relu(g), 7);
    randomize_bn(g, 100);
    mem_data_t m;
    mem_data(&m, g, 16, 1, false);
    float *before = outputs(g, &m.d, 16);

    /* the ranges of the folded network, before */
    qs_graph_t *folded = NULL;
    ck_assert_int_eq(qs_graph_fold_bn(g, &folded, NULL), QS_OK);
    double r1[128], r2[128];
    int64_t c;
    pair_ranges(folded, "b1.pw", "b2.dw", r1, r2, &c);
    ck_assert_msg(ratio_spread(r1, r2, c) > 4.0, "the test network is already balanced: %g",
                  ratio_spread(r1, r2, c));

    qs_dfq_opts_t o;
    qs_dfq_opts_default(&o);
    o.steps = QS_DFQ_CLE;
    qs_dfq_report_t rep;
    memset(&rep, 0, sizeof rep);
    qs_graph_t *t = NULL;
    ck_assert_msg(qs_dfq_apply(g, &o, NULL, &t, &rep) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(rep.folded, 7);
    ck_assert_int_eq(rep.npairs, 7); /* stem-dw, dw-pw, pw-dw, ..., b3.pw-fc through gap and flatten */
    ck_assert(rep.converged);
    ck_assert_int_gt(rep.sweeps, 1);
    ck_assert_int_eq(rep.relu6_replaced, 0);
    ck_assert_str_eq(rep.pair[0].first, "stem");
    ck_assert_str_eq(rep.pair[0].second, "b1.dw");
    ck_assert_str_eq(rep.pair[6].first, "b3.pw");
    ck_assert_str_eq(rep.pair[6].second, "fc");
    ck_assert(rep.pair[0].padded && !rep.pair[1].padded);

    float *after = outputs(t, &m.d, 16);
    double e = rel_l2(before, after, 16 * 10);
    ck_assert_msg(e <= 1e-5, "equalization changed the outputs: relative L2 %g", e);

    /* after equalization, r1_i = r2_i for every channel of every pair */
    for (int k = 0; k < rep.npairs; k++) {
        pair_ranges(t, rep.pair[k].first, rep.pair[k].second, r1, r2, &c);
        ck_assert_int_eq(c, rep.pair[k].channels);
        for (int64_t i = 0; i < c; i++)
            REQUIRE_MSG(fabs(r1[i] - r2[i]) <= 1e-4 * r2[i], "%s -> %s channel %lld: r1 %.9g r2 %.9g",
                        rep.pair[k].first, rep.pair[k].second, (long long)i, r1[i], r2[i]);
        ck_assert(rep.pair[k].s_min > 0.0 && rep.pair[k].s_min <= rep.pair[k].s_max);
    }
    /* the scales moved something */
    ck_assert(rep.pair[2].s_max / rep.pair[2].s_min > 1.5);
    free(before);
    free(after);
    mem_free(&m);
    qs_dfq_report_free(&rep);
    qs_graph_free(t);
    qs_graph_free(folded);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_cle_resnet_skips_residuals)
{
    qs_graph_t *g = NULL;
    ck_assert_int_eq(qs_zoo_build("fmnist-resnet", 5, &g), QS_OK);
    randomize_bn(g, 300);
    mem_data_t m;
    mem_data(&m, g, 16, 2, false);
    float *before = outputs(g, &m.d, 16);
    qs_dfq_opts_t o;
    qs_dfq_opts_default(&o);
    o.steps = QS_DFQ_CLE;
    qs_dfq_report_t rep;
    memset(&rep, 0, sizeof rep);
    qs_graph_t *t = NULL;
    ck_assert_msg(qs_dfq_apply(g, &o, NULL, &t, &rep) == QS_OK, "%s", qs_last_error());
    /* only conv1 -> conv2 inside each block: everything else meets an add or a branch */
    ck_assert_int_eq(rep.npairs, 3);
    for (int k = 0; k < 3; k++) {
        char a[16], b[16];
        snprintf(a, sizeof a, "b%d.conv1", k + 1);
        snprintf(b, sizeof b, "b%d.conv2", k + 1);
        ck_assert_str_eq(rep.pair[k].first, a);
        ck_assert_str_eq(rep.pair[k].second, b);
    }
    ck_assert(has_skip(&rep, QS_DFQ_CLE, "b1.conv2", "residual"));
    ck_assert(has_skip(&rep, QS_DFQ_CLE, "b2.proj", "'b2.add' (add)"));
    ck_assert(has_skip(&rep, QS_DFQ_CLE, "stem", "read by 2 nodes"));
    float *after = outputs(t, &m.d, 16);
    double e = rel_l2(before, after, 16 * 10);
    ck_assert_msg(e <= 1e-5, "equalization changed the outputs: relative L2 %g", e);
    free(before);
    free(after);
    mem_free(&m);
    qs_dfq_report_free(&rep);
    qs_graph_free(t);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_cle_relu6)
{
    qs_graph_t *g = NULL;
    ck_assert_int_eq(qs_zoo_build("fmnist-dwsep", 3, &g), QS_OK);
    randomize_bn(g, 500);
    qs_dfq_opts_t o;
    qs_dfq_opts_default(&o);
    o.steps = QS_DFQ_CLE;
    o.relu6 = QS_DFQ_RELU6_SKIP;
    qs_graph_t *t = NULL;
    ck_assert_int_eq(qs_dfq_apply(g, &o, NULL, &t, NULL), QS_ERR_INVALID);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(qs_last_error(), "no pair of layers to equalize") &&
                  strstr(qs_last_error(), "'b1.pw.relu6' (relu6) between"), "%s", qs_last_error());

    /* replace (the default): the network becomes the ReLU network, equalized */
    o.relu6 = QS_DFQ_RELU6_REPLACE;
    qs_dfq_report_t rep;
    memset(&rep, 0, sizeof rep);
    ck_assert_msg(qs_dfq_apply(g, &o, NULL, &t, &rep) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(rep.relu6_replaced, 7);
    for (int k = 0; k < rep.npairs; k++)
        ck_assert(rep.pair[k].relu6_replaced && rep.pair[k].act_op == QS_OP_RELU6);
    int i = qs_graph_find(t, "b2.dw.relu6");
    ck_assert_int_ge(i, 0);
    ck_assert_int_eq(t->nodes[i].op, QS_OP_RELU);
    qs_graph_t *relu = qs_graph_clone(g);
    ck_assert_ptr_nonnull(relu);
    relu6_to_relu(relu);
    mem_data_t m;
    mem_data(&m, g, 8, 3, false);
    float *want = outputs(relu, &m.d, 8), *got = outputs(t, &m.d, 8);
    ck_assert(rel_l2(want, got, 80) <= 1e-5);
    free(want);
    free(got);
    mem_free(&m);
    qs_dfq_report_free(&rep);
    qs_graph_free(relu);
    qs_graph_free(t);
    qs_graph_free(g);
}
END_TEST

/* ---- absorption ---------------------------------------------------------------------------------- */

/* input 3x8x8 in [0, 1) -> c1 (3x3, 3->4, |weights| small) -> bn -> relu -> c2 (k x k, 4->5, bias) -> flatten.
 * With |c1(x)| <= 0.5 and the batchnorm an affine map with std gamma, every
 * pre-activation of channel i lies in beta_i ± 0.5 gamma_i, above
 * beta_i − 3 gamma_i. Channel 3 has beta < 3 gamma: nothing to absorb. */
static const float ABS_BETA[4] = {3.0f, 2.5f, 4.0f, 0.5f};

static qs_graph_t *absorb_net(int k2, int pad2, bool with_bn)
{
    qs_graph_t *g = qs_graph_create("absorb", 3, 8, 8);
    ck_assert_ptr_nonnull(g);
    g->input_scale = 1.0f;
    int x = 0;
    qs_node_t n = qs_node_init(QS_OP_CONV2D, "c1", 1, &x);
    n.kh = n.kw = 3;
    int64_t w1s[4] = {4, 3, 3, 3};
    n.weight = tens(4, w1s, NULL);
    fill(n.weight, -0.5 / 27.0, 0.5 / 27.0, 11); /* |sum| <= 0.5 over 27 inputs in [0, 1) */
    x = qs_graph_add(g, &n);
    if (with_bn) {
        n = qs_node_init(QS_OP_BATCHNORM, "c1.bn", 1, &x);
        int64_t c = 4;
        n.gamma = tens(1, &c, (const float[]){0.5f, 0.4f, 1.0f, 0.5f});
        n.beta = tens(1, &c, ABS_BETA);
        n.mean = tens(1, &c, (const float[]){0, 0, 0, 0});
        n.var = tens(1, &c, (const float[]){1 - 1e-5f, 1 - 1e-5f, 1 - 1e-5f, 1 - 1e-5f});
        x = qs_graph_add(g, &n);
    }
    n = qs_node_init(QS_OP_RELU, "c1.relu", 1, &x);
    x = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_CONV2D, "c2", 1, &x);
    n.kh = n.kw = k2;
    n.pad_top = n.pad_left = n.pad_bottom = n.pad_right = pad2;
    int64_t w2s[4] = {5, 4, k2, k2};
    n.weight = tens(4, w2s, NULL);
    fill(n.weight, -1.0, 1.0, 12);
    n.bias = vec(5, -0.2, 0.2, 13);
    x = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_FLATTEN, "flat", 1, &x);
    ck_assert_int_ge(qs_graph_add(g, &n), 0);
    ck_assert_msg(qs_graph_infer(g) == QS_OK, "%s", qs_last_error());
    return g;
}

START_TEST(test_absorb_exact)
{
    qs_graph_t *g = absorb_net(1, 0, true);
    mem_data_t m;
    mem_data(&m, g, 32, 4, false);
    float *before = outputs(g, &m.d, 32);
    qs_dfq_opts_t o;
    qs_dfq_opts_default(&o);
    o.steps = QS_DFQ_ABSORB;
    qs_dfq_report_t rep;
    memset(&rep, 0, sizeof rep);
    qs_graph_t *t = NULL;
    ck_assert_msg(qs_dfq_apply(g, &o, NULL, &t, &rep) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(rep.absorbed, 3);
    ck_assert_int_eq(rep.absorb_pairs, 1);
    ck_assert_int_eq(rep.npairs, 1);
    ck_assert_int_eq(rep.pair[0].absorbed, 3);
    ck_assert(!rep.pair[0].padded);
    /* c1's folded bias was beta; it lost c = beta − 3 gamma where that is positive */
    const float gam[4] = {0.5f, 0.4f, 1.0f, 0.5f};
    int c1 = qs_graph_find(t, "c1");
    for (int i = 0; i < 4; i++) {
        double c = fmax(0.0, (double)ABS_BETA[i] - 3.0 * gam[i]);
        ck_assert_double_eq_tol(qs_f32(t->nodes[c1].bias)[i], ABS_BETA[i] - c, 1e-5);
    }
    ck_assert(qs_f32(t->nodes[c1].bias)[3] == ABS_BETA[3]);
    float *after = outputs(t, &m.d, 32);
    int64_t n = 32 * t->num_classes;
    double e = rel_l2(before, after, n);
    ck_assert_msg(e <= 1e-5, "absorption changed the outputs: relative L2 %g", e);
    free(before);
    free(after);
    qs_dfq_report_free(&rep);
    qs_graph_free(t);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_absorb_padding)
{
    /* a 3x3 padded c2: exact inside, off at the border, where the padding
     * feeds 0 instead of relu(z) − c */
    qs_graph_t *g = absorb_net(3, 1, true);
    mem_data_t m;
    mem_data(&m, g, 8, 5, false);
    float *before = outputs(g, &m.d, 8);
    qs_dfq_opts_t o;
    qs_dfq_opts_default(&o);
    o.steps = QS_DFQ_ABSORB;
    qs_dfq_report_t rep;
    memset(&rep, 0, sizeof rep);
    qs_graph_t *t = NULL;
    ck_assert_msg(qs_dfq_apply(g, &o, NULL, &t, &rep) == QS_OK, "%s", qs_last_error());
    ck_assert(rep.pair[0].padded);
    float *after = outputs(t, &m.d, 8);
    double inner = 0.0, border = 0.0, scale = 0.0;
    for (int s = 0; s < 8; s++)
        for (int ch = 0; ch < 5; ch++)
            for (int y = 0; y < 6; y++)
                for (int x = 0; x < 6; x++) {
                    int64_t k = ((int64_t)(s * 5 + ch) * 6 + y) * 6 + x;
                    double d = fabs((double)before[k] - after[k]);
                    scale = fmax(scale, fabs(before[k]));
                    if (y == 0 || x == 0 || y == 5 || x == 5)
                        border = fmax(border, d);
                    else
                        inner = fmax(inner, d);
                }
    ck_assert_msg(inner <= 1e-5 * scale, "inside: %g (scale %g)", inner, scale);
    ck_assert_msg(border > 1e-2 * scale, "the border should differ: %g (scale %g)", border, scale);
    free(before);
    free(after);
    qs_dfq_report_free(&rep);
    qs_graph_free(t);

    /* absorb_padded off: nothing left to absorb into, and the message says why */
    o.absorb_padded = false;
    memset(&rep, 0, sizeof rep);
    ck_assert_int_eq(qs_dfq_apply(g, &o, NULL, &t, &rep), QS_ERR_INVALID);
    ck_assert_msg(strstr(qs_last_error(), "absorption") && strstr(qs_last_error(), "'c2' pads"), "%s",
                  qs_last_error());
    ck_assert(has_skip(&rep, QS_DFQ_ABSORB, "c1", "pads"));
    qs_dfq_report_free(&rep);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

/* The steps one by one on the network they share: the statistics follow the
 * weights through equalization (divided by s_i) and absorption (less c_i). */
START_TEST(test_steps)
{
    qs_graph_t *g = absorb_net(1, 0, true);
    qs_dfq_net_t *n = NULL;
    ck_assert_int_eq(qs_dfq_net_create(g, &n), QS_OK);
    ck_assert_int_eq(n->folded, 1);
    int c1 = qs_graph_find(n->g, "c1"), c2 = qs_graph_find(n->g, "c2");
    ck_assert(c1 > 0 && c2 > 0);
    ck_assert_ptr_nonnull(n->mean[c1]);
    ck_assert_ptr_null(n->mean[c2]); /* no batchnorm after c2 */
    const float gam[4] = {0.5f, 0.4f, 1.0f, 0.5f};
    for (int i = 0; i < 4; i++) {
        ck_assert(n->mean[c1][i] == ABS_BETA[i]);
        ck_assert(n->std[c1][i] == gam[i]);
    }
    float w0[4];
    for (int i = 0; i < 4; i++)
        w0[i] = qs_f32(n->g->nodes[c1].weight)[i * 27];
    qs_dfq_report_t rep;
    memset(&rep, 0, sizeof rep);
    ck_assert_msg(qs_dfq_equalize(n, NULL, &rep) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(rep.npairs, 1);
    for (int i = 0; i < 4; i++) {
        double s = (double)w0[i] / qs_f32(n->g->nodes[c1].weight)[i * 27]; /* what channel i was divided by */
        ck_assert(s >= rep.pair[0].s_min * (1 - 1e-6) && s <= rep.pair[0].s_max * (1 + 1e-6));
        ck_assert_double_eq_tol(n->mean[c1][i] * s, ABS_BETA[i], 1e-5 * ABS_BETA[i]);
        ck_assert_double_eq_tol(n->std[c1][i] * s, gam[i], 1e-5 * gam[i]);
    }
    float m0[4];
    memcpy(m0, n->mean[c1], sizeof m0);
    ck_assert_msg(qs_dfq_absorb(n, NULL, &rep) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(rep.npairs, 1); /* the same pair, now with its absorbed channels */
    ck_assert_int_eq(rep.pair[0].absorbed, 3);
    for (int i = 0; i < 4; i++) {
        double c = fmax(0.0, (double)m0[i] - 3.0 * n->std[c1][i]);
        ck_assert_double_eq_tol(n->mean[c1][i], m0[i] - c, 1e-6);
    }
    qs_qconfig_t c;
    qs_qconfig_default(&c);
    ck_assert_int_eq(qs_qconfig_set(&c, QS_QT_WEIGHTS, "bits=4", "weights"), QS_OK);
    float b2[5];
    memcpy(b2, n->g->nodes[c2].bias->data, sizeof b2);
    ck_assert_msg(qs_dfq_bias_correct(n, &c, NULL, NULL, &rep) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(rep.ncorrected, 1);
    ck_assert_str_eq(rep.corrected[0].node, "c2");
    ck_assert_int_eq(rep.corrected[0].source, QS_DFQ_BC_ANALYTIC);
    ck_assert(rep.corrected[0].max_abs > 0.0);
    double moved = 0.0;
    for (int o = 0; o < 5; o++)
        moved = fmax(moved, fabs(qs_f32(n->g->nodes[c2].bias)[o] - b2[o]));
    ck_assert_double_eq_tol(moved, rep.corrected[0].max_abs, 1e-6);
    ck_assert(has_skip(&rep, QS_DFQ_BC, "c1", "network input"));
    qs_dfq_report_free(&rep);
    ck_assert_int_eq(rep.npairs, 0);
    qs_dfq_net_free(n);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_rejects)
{
    /* no batchnorm: absorption has no statistics, analytic correction no E[x] */
    qs_graph_t *g = absorb_net(1, 0, false);
    qs_dfq_opts_t o;
    qs_dfq_opts_default(&o);
    o.steps = QS_DFQ_ABSORB;
    qs_graph_t *t = NULL;
    ck_assert_int_eq(qs_dfq_apply(g, &o, NULL, &t, NULL), QS_ERR_INVALID);
    ck_assert_msg(strstr(qs_last_error(), "absorption") && strstr(qs_last_error(), "batchnorm statistics"), "%s",
                  qs_last_error());
    o.steps = QS_DFQ_BC;
    ck_assert_int_eq(qs_dfq_apply(g, &o, NULL, &t, NULL), QS_ERR_INVALID);
    ck_assert_msg(strstr(qs_last_error(), "no layer of graph 'absorb' could be corrected") &&
                  strstr(qs_last_error(), "network input") && strstr(qs_last_error(), "use empirical"), "%s",
                  qs_last_error());
    /* empirical without images */
    o.bc = QS_DFQ_BC_EMPIRICAL;
    ck_assert_int_eq(qs_dfq_apply(g, &o, NULL, &t, NULL), QS_ERR_INVALID);
    ck_assert_msg(strstr(qs_last_error(), "needs calibration images"), "%s", qs_last_error());
    /* images of another shape */
    mem_data_t m;
    mem_data(&m, g, 4, 6, false);
    m.d.h = 7;
    ck_assert_int_eq(qs_dfq_apply(g, &o, &m.d, &t, NULL), QS_ERR_SHAPE);
    ck_assert_msg(strstr(qs_last_error(), "memory:6"), "%s", qs_last_error());
    mem_free(&m);
    ck_assert_ptr_null(t);
    qs_graph_free(g);

    /* one layer: nothing to pair */
    g = qs_graph_create("single", 1, 4, 4);
    int x = 0;
    qs_node_t n = qs_node_init(QS_OP_CONV2D, "only", 1, &x);
    int64_t ws[4] = {2, 1, 1, 1};
    n.weight = tens(4, ws, (const float[]){1.0f, 2.0f});
    x = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_GAP, "gap", 1, &x);
    ck_assert_int_ge(qs_graph_add(g, &n), 0);
    ck_assert_int_eq(qs_graph_infer(g), QS_OK);
    o.steps = QS_DFQ_CLE;
    ck_assert_int_eq(qs_dfq_apply(g, &o, NULL, &t, NULL), QS_ERR_INVALID);
    ck_assert_msg(strstr(qs_last_error(), "graph 'single' has no pair of layers to equalize") &&
                  strstr(qs_last_error(), "only: its output reaches the network output 'gap'"), "%s",
                  qs_last_error());
    /* "none" folds and changes nothing */
    o.steps = 0;
    ck_assert_int_eq(qs_dfq_apply(g, &o, NULL, &t, NULL), QS_OK);
    ck_assert(qs_f32(t->nodes[1].weight)[1] == 2.0f);
    qs_graph_free(t);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_options)
{
    unsigned s = 99;
    ck_assert_int_eq(qs_dfq_method_parse("none", "--method", &s), QS_OK);
    ck_assert_uint_eq(s, 0);
    ck_assert_int_eq(qs_dfq_method_parse("cle+absorb+bc", "--method", &s), QS_OK);
    ck_assert_uint_eq(s, QS_DFQ_CLE | QS_DFQ_ABSORB | QS_DFQ_BC);
    ck_assert_int_eq(qs_dfq_method_parse("bc", "--method", &s), QS_OK);
    ck_assert_uint_eq(s, QS_DFQ_BC);
    char buf[64];
    ck_assert_str_eq(qs_dfq_method_str(QS_DFQ_BC | QS_DFQ_CLE, buf, sizeof buf), "cle+bc");
    ck_assert_str_eq(qs_dfq_method_str(0, buf, sizeof buf), "none");
    s = 99;
    ck_assert_int_eq(qs_dfq_method_parse("cle+foo", "--method", &s), QS_ERR_INVALID);
    ck_assert_msg(strstr(qs_last_error(), "--method 'cle+foo': unknown step 'foo'"), "%s", qs_last_error());
    ck_assert_uint_eq(s, 99);
    ck_assert_int_eq(qs_dfq_method_parse("cle+cle", "--method", &s), QS_ERR_INVALID);
    ck_assert_msg(strstr(qs_last_error(), "given twice"), "%s", qs_last_error());
    ck_assert_int_eq(qs_dfq_method_parse("cle+", "--method", &s), QS_ERR_INVALID);
    ck_assert_int_eq(qs_dfq_method_parse("", "--method", &s), QS_ERR_INVALID);
    qs_dfq_bc_t bc;
    ck_assert_int_eq(qs_dfq_bc_parse("empirical", "--bc", &bc), QS_OK);
    ck_assert_int_eq(bc, QS_DFQ_BC_EMPIRICAL);
    ck_assert_int_eq(qs_dfq_bc_parse("data", "--bc", &bc), QS_ERR_INVALID);
    ck_assert_msg(strstr(qs_last_error(), "--bc 'data'"), "%s", qs_last_error());
    qs_dfq_relu6_t r6;
    ck_assert_int_eq(qs_dfq_relu6_parse("skip", "--relu6", &r6), QS_OK);
    ck_assert_int_eq(r6, QS_DFQ_RELU6_SKIP);
    ck_assert_int_eq(qs_dfq_relu6_parse("clip", "--relu6", &r6), QS_ERR_INVALID);

    qs_graph_t *g = absorb_net(1, 0, true), *t = NULL;
    qs_dfq_opts_t o;
    qs_dfq_opts_default(&o);
    o.max_sweeps = 0;
    ck_assert_int_eq(qs_dfq_apply(g, &o, NULL, &t, NULL), QS_ERR_INVALID);
    ck_assert_msg(strstr(qs_last_error(), "0 equalization sweeps"), "%s", qs_last_error());
    qs_dfq_opts_default(&o);
    o.tol = 0.0;
    ck_assert_int_eq(qs_dfq_apply(g, &o, NULL, &t, NULL), QS_ERR_INVALID);
    ck_assert_msg(strstr(qs_last_error(), "tolerance"), "%s", qs_last_error());
    qs_dfq_opts_default(&o);
    o.absorb_sigmas = NAN;
    ck_assert_int_eq(qs_dfq_apply(g, &o, NULL, &t, NULL), QS_ERR_INVALID);
    qs_dfq_opts_default(&o);
    o.steps = 8;
    ck_assert_int_eq(qs_dfq_apply(g, &o, NULL, &t, NULL), QS_ERR_INVALID);
    qs_dfq_opts_default(&o);
    o.images = 0;
    ck_assert_int_eq(qs_dfq_apply(g, &o, NULL, &t, NULL), QS_ERR_INVALID);
    ck_assert_ptr_null(t);
    /* a bad weights spec reaches the caller with its context */
    qs_qconfig_t c;
    qs_qconfig_default(&c);
    ck_assert_int_eq(qs_qconfig_override(&c, "nosuch:weights=bits=4", "--layer"), QS_OK);
    qs_dfq_opts_default(&o);
    o.steps = QS_DFQ_BC;
    o.qcfg = &c;
    ck_assert_int_eq(qs_dfq_apply(g, &o, NULL, &t, NULL), QS_ERR_INVALID);
    ck_assert_msg(strstr(qs_last_error(), "bias correction: ") && strstr(qs_last_error(), "nosuch"), "%s",
                  qs_last_error());
    qs_graph_free(g);
}
END_TEST

/* ---- bias correction ------------------------------------------------------------------------------ */

/* input 2x6x6 -> L (3x3, 2->3, pad) -> flatten, with weights k·0.1 + 0.03
 * (k in -6..6) and one 0.7 per tensor: 4-bit symmetric per-tensor weights
 * get the scale 0.7 / 7 = 0.1 and round every other weight down by 0.03, so
 * ΔW = −0.03 and the injected mean error of an output is −0.03 Σ E[x]. */
static qs_graph_t *bc_net(int pad)
{
    qs_graph_t *g = qs_graph_create("bc", 2, 6, 6);
    ck_assert_ptr_nonnull(g);
    g->input_scale = 1.0f;
    int x = 0;
    qs_node_t n = qs_node_init(QS_OP_CONV2D, "L", 1, &x);
    n.kh = n.kw = 3;
    n.pad_top = n.pad_left = n.pad_bottom = n.pad_right = pad;
    int64_t ws[4] = {3, 2, 3, 3};
    n.weight = tens(4, ws, NULL);
    float *w = qs_f32(n.weight);
    for (int64_t k = 0; k < n.weight->size; k++)
        w[k] = (float)((double)((int)(qs_rng_u32(3, 3, (uint64_t)k) % 13) - 6) * 0.1 + 0.03);
    w[4] = 0.7f;
    n.bias = vec(3, -0.1, 0.1, 21);
    x = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_FLATTEN, "flat", 1, &x);
    ck_assert_int_ge(qs_graph_add(g, &n), 0);
    ck_assert_int_eq(qs_graph_infer(g), QS_OK);
    return g;
}

/* Per output channel, the mean over images and positions of g's outputs
 * with its weights quantized by c, less those of the float network ref. */
static void mean_error(const qs_graph_t *ref, const qs_graph_t *g, const qs_qconfig_t *c, const qs_dataset_t *d,
                       int64_t n, int nch, double *err)
{
    qs_qnet_t *q = NULL;
    ck_assert_msg(qs_qnet_create(g, c, &q) == QS_OK, "%s", qs_last_error());
    qs_graph_t *fg = NULL;
    ck_assert_int_eq(qs_sim_fake_graph(q, NULL, false, &fg), QS_OK);
    float *yf = outputs(ref, d, n), *yq = outputs(fg, d, n);
    int64_t per = g->num_classes / nch;
    for (int ch = 0; ch < nch; ch++) {
        double s = 0.0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t p = 0; p < per; p++) {
                int64_t k = i * g->num_classes + ch * per + p;
                s += (double)yq[k] - yf[k];
            }
        err[ch] = s / (double)(n * per);
    }
    free(yf);
    free(yq);
    qs_graph_free(fg);
    qs_qnet_free(q);
}

START_TEST(test_bc_removes_injected_bias)
{
    qs_qconfig_t c;
    qs_qconfig_default(&c);
    ck_assert_int_eq(qs_qconfig_set(&c, QS_QT_WEIGHTS, "bits=4,gran=tensor", "weights"), QS_OK);
    c.on[QS_QT_ACTS] = c.on[QS_QT_BIAS] = false;
    for (int pad = 0; pad <= 1; pad++) {
        qs_graph_t *g = bc_net(pad);
        mem_data_t cal, test;
        mem_data(&cal, g, 3000, 7, false);
        mem_data(&test, g, 3000, 8, false);
        double before[3], after[3];
        mean_error(g, g, &c, &test.d, 3000, 3, before);
        if (!pad) /* E[x] = 1/2 everywhere: the injected error is known */
            for (int ch = 0; ch < 3; ch++) {
                int others = ch == 0 ? 17 : 18; /* the 0.7 sits in channel 0 */
                double want = -0.03 * 0.5 * others;
                ck_assert_msg(fabs(before[ch] - want) <= 0.02 * fabs(want), "channel %d: %g, expected %g", ch,
                              before[ch], want);
            }
        qs_dfq_opts_t o;
        qs_dfq_opts_default(&o);
        o.steps = QS_DFQ_BC;
        o.bc = QS_DFQ_BC_EMPIRICAL;
        o.qcfg = &c;
        o.images = 3000;
        o.batch = 512;
        qs_dfq_report_t rep;
        memset(&rep, 0, sizeof rep);
        qs_graph_t *t = NULL;
        ck_assert_msg(qs_dfq_apply(g, &o, &cal.d, &t, &rep) == QS_OK, "%s", qs_last_error());
        ck_assert_int_eq(rep.ncorrected, 1);
        ck_assert_str_eq(rep.corrected[0].node, "L");
        ck_assert_int_eq(rep.bc_images, 3000);
        mean_error(g, t, &c, &test.d, 3000, 3, after);
        for (int ch = 0; ch < 3; ch++)
            ck_assert_msg(fabs(after[ch]) <= 0.01 * fabs(before[ch]), "pad %d channel %d: %g after, %g before", pad,
                          ch, after[ch], before[ch]);
        /* the same, bit for bit, on two threads */
        qs_pool_t *pool = qs_pool_create(2);
        o.pool = pool;
        qs_graph_t *t2 = NULL;
        ck_assert_int_eq(qs_dfq_apply(g, &o, &cal.d, &t2, NULL), QS_OK);
        ck_assert(memcmp(t->nodes[1].bias->data, t2->nodes[1].bias->data, 3 * sizeof(float)) == 0);
        qs_graph_free(t2);
        qs_pool_free(pool);
        qs_dfq_report_free(&rep);
        qs_graph_free(t);
        mem_free(&cal);
        mem_free(&test);
        qs_graph_free(g);
    }
}
END_TEST

/* input 3x8x8 N(0, 1) -> a (1x1 identity) -> bn (N(beta, gamma²) out) -> act -> L (3x3 pad 1, 3->4) -> flatten */
static qs_graph_t *gauss_net(qs_op_t act)
{
    qs_graph_t *g = qs_graph_create("gauss", 3, 8, 8);
    ck_assert_ptr_nonnull(g);
    g->input_scale = 1.0f;
    int x = 0;
    qs_node_t n = qs_node_init(QS_OP_CONV2D, "a", 1, &x);
    int64_t ws[4] = {3, 3, 1, 1};
    n.weight = tens(4, ws, (const float[]){1, 0, 0, 0, 1, 0, 0, 0, 1});
    x = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_BATCHNORM, "a.bn", 1, &x);
    int64_t c = 3;
    n.gamma = tens(1, &c, (const float[]){1.0f, 2.0f, 0.5f});
    n.beta = tens(1, &c, (const float[]){0.5f, 5.0f, -0.4f});
    n.mean = tens(1, &c, (const float[]){0, 0, 0});
    n.var = tens(1, &c, (const float[]){1 - 1e-5f, 1 - 1e-5f, 1 - 1e-5f});
    x = qs_graph_add(g, &n);
    n = qs_node_init(act, "a.act", 1, &x);
    x = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_CONV2D, "L", 1, &x);
    n.kh = n.kw = 3;
    n.pad_top = n.pad_left = n.pad_bottom = n.pad_right = 1;
    int64_t w2[4] = {4, 3, 3, 3};
    n.weight = tens(4, w2, NULL);
    fill(n.weight, -1.0, 1.0, 31);
    x = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_FLATTEN, "flat", 1, &x);
    ck_assert_int_ge(qs_graph_add(g, &n), 0);
    ck_assert_int_eq(qs_graph_infer(g), QS_OK);
    return g;
}

START_TEST(test_bc_analytic_matches_empirical)
{
    static const qs_op_t acts[] = {QS_OP_RELU, QS_OP_RELU6};
    qs_qconfig_t c;
    qs_qconfig_default(&c);
    ck_assert_int_eq(qs_qconfig_set(&c, QS_QT_WEIGHTS, "bits=3,gran=tensor", "weights"), QS_OK);
    for (size_t k = 0; k < sizeof acts / sizeof *acts; k++) {
        qs_graph_t *g = gauss_net(acts[k]);
        mem_data_t cal;
        mem_data(&cal, g, 4000, 9, true);
        qs_dfq_opts_t o;
        qs_dfq_opts_default(&o);
        o.steps = QS_DFQ_BC;
        o.qcfg = &c;
        o.relu6 = QS_DFQ_RELU6_SKIP;
        qs_dfq_report_t rep;
        memset(&rep, 0, sizeof rep);
        qs_graph_t *ta = NULL, *te = NULL;
        ck_assert_msg(qs_dfq_apply(g, &o, NULL, &ta, &rep) == QS_OK, "%s", qs_last_error());
        /* analytic: 'a' reads the network input, only L is corrected */
        ck_assert_int_eq(rep.ncorrected, 1);
        ck_assert_str_eq(rep.corrected[0].node, "L");
        ck_assert(has_skip(&rep, QS_DFQ_BC, "a", "network input"));
        qs_dfq_report_free(&rep);
        o.bc = QS_DFQ_BC_EMPIRICAL;
        o.images = 4000;
        ck_assert_msg(qs_dfq_apply(g, &o, &cal.d, &te, &rep) == QS_OK, "%s", qs_last_error());
        ck_assert_int_eq(rep.ncorrected, 2);
        int l = qs_graph_find(ta, "L");
        ck_assert_int_eq(l, qs_graph_find(te, "L"));
        /* L had no bias: the corrected one is −ΔW·E[x] */
        const float *ba = qs_f32(ta->nodes[l].bias), *be = qs_f32(te->nodes[l].bias);
        double big = 0.0;
        for (int o2 = 0; o2 < 4; o2++)
            big = fmax(big, fabs(be[o2]));
        ck_assert(big > 1e-2);
        for (int o2 = 0; o2 < 4; o2++)
            ck_assert_msg(fabs(ba[o2] - be[o2]) <= 0.02 * big, "%s, output %d: analytic %g, empirical %g",
                          qs_op_name(acts[k]), o2, (double)ba[o2], (double)be[o2]);
        qs_dfq_report_free(&rep);
        qs_graph_free(ta);
        qs_graph_free(te);
        mem_free(&cal);
        qs_graph_free(g);
    }
}
END_TEST

/* ---- the model file ------------------------------------------------------------------------------- */

START_TEST(test_round_trip)
{
    qs_graph_t *g = NULL;
    ck_assert_int_eq(qs_zoo_build("fmnist-dwsep", 4, &g), QS_OK);
    randomize_bn(g, 700);
    qs_dfq_opts_t o;
    qs_dfq_opts_default(&o);
    o.steps = QS_DFQ_CLE | QS_DFQ_ABSORB | QS_DFQ_BC;
    qs_graph_t *t = NULL;
    qs_dfq_report_t rep;
    memset(&rep, 0, sizeof rep);
    ck_assert_msg(qs_dfq_apply(g, &o, NULL, &t, &rep) == QS_OK, "%s", qs_last_error());
    ck_assert_int_gt(rep.absorbed, 0); /* betas up to 1 against gammas from 0.1: some channels qualify */
    ck_assert_int_eq(rep.ncorrected, 7); /* every layer but the stem, which reads the image */
    char path[256];
    qs_test_path(path, sizeof path, "dfq.h5");
    ck_assert_msg(qs_model_save(t, path) == QS_OK, "%s", qs_last_error());
    qs_graph_t *l = NULL;
    ck_assert_msg(qs_model_load(path, &l) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(l->nnodes, t->nnodes);
    for (int i = 0; i < t->nnodes; i++) {
        ck_assert_str_eq(l->nodes[i].name, t->nodes[i].name);
        ck_assert_int_eq(l->nodes[i].op, t->nodes[i].op);
    }
    mem_data_t m;
    mem_data(&m, g, 8, 10, false);
    float *a = outputs(t, &m.d, 8), *b = outputs(l, &m.d, 8);
    ck_assert(memcmp(a, b, 80 * sizeof *a) == 0);
    free(a);
    free(b);
    mem_free(&m);
    unlink(path);
    qs_dfq_report_free(&rep);
    qs_graph_free(l);
    qs_graph_free(t);
    qs_graph_free(g);
}
END_TEST

static Suite *dfq_suite(void)
{
    Suite *s = suite_create("dfq");
    TCase *tc = tcase_create("dfq");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_clipped_normal_mean);
    tcase_add_test(tc, test_cle_dwsep_relu);
    tcase_add_test(tc, test_cle_resnet_skips_residuals);
    tcase_add_test(tc, test_cle_relu6);
    tcase_add_test(tc, test_absorb_exact);
    tcase_add_test(tc, test_absorb_padding);
    tcase_add_test(tc, test_steps);
    tcase_add_test(tc, test_rejects);
    tcase_add_test(tc, test_options);
    tcase_add_test(tc, test_bc_removes_injected_bias);
    tcase_add_test(tc, test_bc_analytic_matches_empirical);
    tcase_add_test(tc, test_round_trip);
    suite_add_tcase(s, tc);
    return s;
}

QS_TEST_MAIN(dfq_suite)
