/* tests/test_lowrank.c — low-rank factorization: at full rank both splits
 * reproduce the networks (stride, padding and dilation included), the rank
 * follows the ratio and energy rules exactly on a known spectrum, the
 * truncation error is the discarded energy (Eckart–Young), MACs and
 * parameters follow the formulas, the factorized graph round-trips through a
 * model file, and depthwise layers and bad options are reported. */
#include "quasar.h"
#include "sim/lowrank.h"
#include "testnet.h"

#include <math.h>
#include <string.h>

static qs_graph_t *zoo(const char *name)
{
    qs_graph_t *g = NULL;
    ck_assert_msg(qs_zoo_build(name, 3, &g) == QS_OK, "%s", qs_last_error());
    return g;
}

/* n random inputs of g's shape (normal-ish values, already normalized) */
static qs_tensor_t *inputs(const qs_graph_t *g, int64_t n, uint64_t seed)
{
    int64_t shape[4] = {n, g->in_c, g->in_h, g->in_w};
    qs_tensor_t *x = qs_tensor_create(QS_F32, 4, shape);
    ck_assert_ptr_nonnull(x);
    for (int64_t i = 0; i < x->size; i++)
        qs_f32(x)[i] = (float)(2.0 * qs_rng_uniform(seed, 1, (uint64_t)i) - 1.0);
    return x;
}

static void opts_ratio(qs_lowrank_opts_t *o, qs_lowrank_kind_t kind, double ratio)
{
    qs_lowrank_opts_default(o);
    o->kind = kind;
    o->ratio = ratio;
}

static void expect_same(const qs_graph_t *g, const qs_graph_t *f, double tol)
{
    qs_tensor_t *x = inputs(g, 8, 11);
    qs_tensor_t *y0 = qs_test_forward(g, x), *y1 = qs_test_forward(f, x);
    double e = qs_test_rel_l2(y0, y1);
    ck_assert_msg(e < tol, "relative L2 error %g", e);
    qs_tensor_free(x), qs_tensor_free(y0), qs_tensor_free(y1);
}

/* Full rank (ratio 1, forced) reproduces both networks, for both splits. */
START_TEST(test_full_rank)
{
    const char *net = _i / 2 ? "fmnist-resnet" : "fmnist-dwsep";
    qs_lowrank_kind_t kind = _i % 2 ? QS_LOWRANK_SPATIAL : QS_LOWRANK_CHANNEL;
    qs_graph_t *g = zoo(net), *f = NULL;
    qs_lowrank_opts_t o;
    opts_ratio(&o, kind, 1.0);
    o.force = true;
    qs_lowrank_report_t r;
    ck_assert_msg(qs_graph_lowrank(g, &o, &f, &r) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(f->nnodes, g->nnodes + r.factorized);
    int strided_padded = 0;
    for (int k = 0; k < r.nlayers; k++) {
        const qs_lowrank_layer_t *l = &r.layer[k];
        const qs_node_t *n = &g->nodes[qs_graph_find(g, l->name)];
        bool square = n->op == QS_OP_CONV2D && n->kh > 1 && n->kw > 1;
        bool expect = n->groups == 1 && (kind == QS_LOWRANK_CHANNEL || square);
        ck_assert_msg(l->factorized == expect, "%s: factorized %d (%s)", l->name, l->factorized, l->skipped);
        if (!l->factorized)
            continue;
        ck_assert_int_eq(l->rank, l->full_rank);
        ck_assert(l->discarded < 1e-12);
        char nm[QS_NAME_MAX];
        snprintf(nm, sizeof nm, "%s.lr1", l->name);
        int a = qs_graph_find(f, nm), b = qs_graph_find(f, l->name);
        ck_assert_int_ge(a, 0);
        ck_assert_int_eq(b, a + 1);
        ck_assert_ptr_null(f->nodes[a].bias);
        ck_assert_ptr_null(f->nodes[a].mask);
        strided_padded += n->stride_h == 2 && n->pad_top > 0;
    }
    if (_i / 2)
        ck_assert_int_ge(strided_padded, 2); /* the stem and b2.conv1, b3.conv1 */
    ck_assert_int_ge(r.factorized, kind == QS_LOWRANK_CHANNEL ? 5 : 1);
    expect_same(g, f, 1e-5);
    qs_graph_free(f);
    qs_graph_free(g);
}
END_TEST

/* One conv with odd geometry: kernel 3x5, stride 2x3, asymmetric padding, dilation 2x1, bias; a linear head. */
static qs_graph_t *odd_conv(void)
{
    qs_graph_t *g = qs_graph_create("odd", 3, 17, 19);
    ck_assert_ptr_nonnull(g);
    int in0 = 0;
    qs_node_t n = qs_node_init(QS_OP_CONV2D, "c", 1, &in0);
    n.kh = 3, n.kw = 5, n.stride_h = 2, n.stride_w = 3, n.dil_h = 2, n.dil_w = 1;
    n.pad_top = 1, n.pad_left = 2, n.pad_bottom = 0, n.pad_right = 3;
    int64_t ws[4] = {7, 3, 3, 5}, bs[1] = {7};
    n.weight = qs_tensor_create(QS_F32, 4, ws);
    n.bias = qs_tensor_create(QS_F32, 1, bs);
    for (int64_t k = 0; k < n.weight->size; k++)
        qs_f32(n.weight)[k] = (float)(qs_rng_uniform(21, 2, (uint64_t)k) - 0.5);
    for (int64_t k = 0; k < 7; k++)
        qs_f32(n.bias)[k] = (float)k * 0.1f;
    int c = qs_graph_add(g, &n);
    ck_assert_int_ge(c, 0);
    qs_node_t fl = qs_node_init(QS_OP_FLATTEN, "flatten", 1, &c);
    int f = qs_graph_add(g, &fl);
    ck_assert_int_eq(qs_graph_infer(g), QS_OK);
    qs_node_t l = qs_node_init(QS_OP_LINEAR, "fc", 1, &f);
    int64_t ls[2] = {4, g->nodes[f].out_shape[0]};
    l.weight = qs_tensor_create(QS_F32, 2, ls);
    for (int64_t k = 0; k < l.weight->size; k++)
        qs_f32(l.weight)[k] = (float)(qs_rng_uniform(22, 2, (uint64_t)k) - 0.5);
    ck_assert_int_ge(qs_graph_add(g, &l), 0);
    ck_assert_msg(qs_graph_infer(g) == QS_OK, "%s", qs_last_error());
    return g;
}

START_TEST(test_geometry)
{
    qs_graph_t *g = odd_conv(), *f = NULL;
    qs_lowrank_opts_t o;
    opts_ratio(&o, _i ? QS_LOWRANK_SPATIAL : QS_LOWRANK_CHANNEL, 1.0);
    o.force = true;
    o.layers = "c";
    qs_lowrank_report_t r;
    ck_assert_msg(qs_graph_lowrank(g, &o, &f, &r) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(r.factorized, 1);
    ck_assert_int_eq(r.nlayers, 1);
    ck_assert_int_eq(r.layer[0].full_rank, _i ? 9 : 7); /* min(3·3, 7·5) or min(7, 3·3·5) */
    const qs_node_t *a = &f->nodes[1], *b = &f->nodes[2];
    ck_assert_str_eq(a->name, "c.lr1");
    ck_assert_str_eq(b->name, "c");
    ck_assert_ptr_nonnull(b->bias);
    if (_i) {
        ck_assert_int_eq(a->kh, 3);
        ck_assert_int_eq(a->kw, 1);
        ck_assert_int_eq(a->stride_h, 2);
        ck_assert_int_eq(a->stride_w, 1);
        ck_assert_int_eq(a->pad_left + a->pad_right, 0);
        ck_assert_int_eq(b->kh, 1);
        ck_assert_int_eq(b->kw, 5);
        ck_assert_int_eq(b->stride_w, 3);
        ck_assert_int_eq(b->pad_top + b->pad_bottom, 0);
        ck_assert_int_eq(b->pad_right, 3);
    }
    for (int d = 0; d < 3; d++)
        ck_assert_int_eq(b->out_shape[d], g->nodes[1].out_shape[d]);
    expect_same(g, f, 1e-5);
    qs_graph_free(f);
    qs_graph_free(g);
}
END_TEST

/* A pruned layer is factorized from its masked weights; the factors carry no mask. */
START_TEST(test_mask)
{
    qs_graph_t *g = zoo("fmnist-resnet"), *p = NULL, *f = NULL;
    qs_prune_opts_t po;
    qs_prune_opts_default(&po);
    ck_assert_int_eq(qs_prune_parse("magnitude", "t", &po), QS_OK);
    po.ratio = 0.5;
    ck_assert_int_eq(qs_graph_prune(g, &po, &p, NULL), QS_OK);
    qs_lowrank_opts_t o;
    opts_ratio(&o, QS_LOWRANK_CHANNEL, 1.0);
    o.force = true;
    ck_assert_msg(qs_graph_lowrank(p, &o, &f, NULL) == QS_OK, "%s", qs_last_error());
    for (int i = 0; i < f->nnodes; i++)
        ck_assert_ptr_null(f->nodes[i].mask);
    expect_same(p, f, 1e-5);
    qs_graph_free(f);
    qs_graph_free(p);
    qs_graph_free(g);
}
END_TEST

/* A Householder reflection H = I − 2 vvᵀ / vᵀv (n×n, row-major) times m on the left, in place. */
static void householder(double *m, int n, int cols, const double *v)
{
    double vv = 0;
    for (int i = 0; i < n; i++)
        vv += v[i] * v[i];
    for (int c = 0; c < cols; c++) {
        double d = 0;
        for (int i = 0; i < n; i++)
            d += v[i] * m[i * cols + c];
        for (int i = 0; i < n; i++)
            m[i * cols + c] -= 2.0 * v[i] * d / vv;
    }
}

static const double sigma[5] = {10, 5, 1, 0.1, 0.01};

/* fc: a linear [6, 5] with weight U diag(sigma) Vᵀ, U 6×5 and V 5×5 orthonormal (products of reflections). */
static qs_graph_t *known_spectrum(void)
{
    double U[36], V[25];
    for (int i = 0; i < 36; i++)
        U[i] = i % 7 == 0;
    for (int i = 0; i < 25; i++)
        V[i] = i % 6 == 0;
    const double u1[6] = {1, 2, -1, 0.5, 3, -2}, u2[6] = {-0.3, 1, 1, 2, -1, 0.7};
    const double v1[5] = {2, -1, 0.5, 1, 1}, v2[5] = {0.2, 0.4, -3, 1, 0.1};
    householder(U, 6, 6, u1), householder(U, 6, 6, u2);
    householder(V, 5, 5, v1), householder(V, 5, 5, v2);
    qs_graph_t *g = qs_graph_create("spectrum", 5, 1, 1);
    int in0 = 0;
    qs_node_t n = qs_node_init(QS_OP_LINEAR, "fc", 1, &in0);
    int64_t ws[2] = {6, 5};
    n.weight = qs_tensor_create(QS_F32, 2, ws);
    for (int o = 0; o < 6; o++)
        for (int i = 0; i < 5; i++) {
            double s = 0;
            for (int j = 0; j < 5; j++)
                s += U[o * 6 + j] * sigma[j] * V[i * 5 + j];
            qs_f32(n.weight)[o * 5 + i] = (float)s;
        }
    ck_assert_int_ge(qs_graph_add(g, &n), 0);
    ck_assert_msg(qs_graph_infer(g) == QS_OK, "%s", qs_last_error());
    return g;
}

static int64_t rank_of(const qs_graph_t *g, const qs_lowrank_opts_t *o, double *discarded)
{
    qs_graph_t *f = NULL;
    qs_lowrank_report_t r;
    ck_assert_msg(qs_graph_lowrank(g, o, &f, &r) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(r.nlayers, 1);
    ck_assert_int_eq(r.layer[0].full_rank, 5);
    if (discarded)
        *discarded = r.layer[0].discarded;
    qs_graph_free(f);
    return r.layer[0].rank;
}

START_TEST(test_energy_rank)
{
    qs_graph_t *g = known_spectrum();
    double total = 0, tail[6] = {0};
    for (int i = 0; i < 5; i++)
        total += sigma[i] * sigma[i];
    for (int r = 4; r >= 0; r--)
        tail[r] = tail[r + 1] + sigma[r] * sigma[r] / total; /* discarded energy at rank r */
    qs_lowrank_opts_t o;
    qs_lowrank_opts_default(&o);
    o.force = true;
    for (int r = 1; r <= 4; r++) {
        double d;
        o.energy = tail[r] * 1.01;
        ck_assert_int_eq(rank_of(g, &o, &d), r);
        ck_assert_msg(fabs(d - tail[r]) <= 1e-3 * tail[r], "rank %d: discarded %g, expected %g", r, d, tail[r]);
        o.energy = tail[r] * 0.99;
        ck_assert_int_eq(rank_of(g, &o, NULL), r + 1);
    }
    o.energy = 0.0;
    ck_assert_int_eq(rank_of(g, &o, NULL), 5);
    o.energy = 0.999;
    ck_assert_int_eq(rank_of(g, &o, NULL), 1);
    /* a discarded energy equal to the threshold is kept under it: {3, 2, 1} discards 1/14 at rank 2 */
    const double s3[3] = {3, 2, 1};
    qs_lowrank_opts_default(&o);
    o.energy = 1.0 / 14.0;
    double d3;
    ck_assert_int_eq(qs_lowrank_rank(s3, 3, &o, &d3), 2);
    ck_assert(d3 == 1.0 / 14.0);
    o.energy = nextafter(1.0 / 14.0, 0.0);
    ck_assert_int_eq(qs_lowrank_rank(s3, 3, &o, NULL), 3);
    /* the truncation error at rank 2 is σ_3² + σ_4² + σ_5² (Eckart–Young) */
    qs_graph_t *f = NULL;
    qs_lowrank_opts_default(&o);
    o.ratio = 0.4;
    o.force = true;
    ck_assert_int_eq(qs_graph_lowrank(g, &o, &f, NULL), QS_OK);
    const float *w1 = qs_f32(f->nodes[1].weight), *w2 = qs_f32(f->nodes[2].weight), *w = qs_f32(g->nodes[1].weight);
    ck_assert_int_eq(f->nodes[1].weight->shape[0], 2);
    double e2 = 0;
    for (int oo = 0; oo < 6; oo++)
        for (int i = 0; i < 5; i++) {
            double s = 0;
            for (int j = 0; j < 2; j++)
                s += (double)w2[oo * 2 + j] * w1[j * 5 + i];
            e2 += (w[oo * 5 + i] - s) * (w[oo * 5 + i] - s);
        }
    double want = 1.0 + 0.01 + 0.0001;
    ck_assert_msg(fabs(e2 - want) <= 1e-5 * want, "||W - W_2||² = %.9g, expected %.9g", e2, want);
    qs_graph_free(f);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_ratio_rounding)
{
    static const struct {
        double ratio;
        int64_t full, rank;
    } cases[] = {{0.01, 10, 1}, {0.25, 10, 3}, {0.5, 10, 5}, {0.07, 100, 7}, {0.34, 3, 2},
                 {1.0, 64, 64}, {0.3, 64, 20}, {0.999, 9, 9}, {1e-6, 576, 1}};
    double s[576];
    for (int i = 0; i < 576; i++)
        s[i] = 576 - i;
    qs_lowrank_opts_t o;
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        opts_ratio(&o, QS_LOWRANK_CHANNEL, cases[c].ratio);
        ck_assert_int_eq(qs_lowrank_check(&o), QS_OK);
        int64_t r = qs_lowrank_rank(s, cases[c].full, &o, NULL);
        ck_assert_msg(r == cases[c].rank, "ratio %g of %lld: rank %lld, expected %lld", cases[c].ratio,
                      (long long)cases[c].full, (long long)r, (long long)cases[c].rank);
    }
    /* in a graph: b3.conv2 is [64, 64, 3, 3], full rank 64; 0.3 keeps 20 */
    qs_graph_t *g = zoo("fmnist-resnet"), *f = NULL;
    opts_ratio(&o, QS_LOWRANK_CHANNEL, 0.3);
    o.layers = "b3.conv2";
    qs_lowrank_report_t r;
    ck_assert_int_eq(qs_graph_lowrank(g, &o, &f, &r), QS_OK);
    ck_assert_int_eq(r.layer[0].full_rank, 64);
    ck_assert_int_eq(r.layer[0].rank, 20);
    ck_assert_int_eq(f->nodes[qs_graph_find(f, "b3.conv2.lr1")].weight->shape[0], 20);
    qs_graph_free(f);
    qs_graph_free(g);
}
END_TEST

/* The recomposed weight of a truncated factorization misses exactly the discarded energy. */
START_TEST(test_eckart_young)
{
    bool spatial = _i;
    qs_graph_t *g = zoo("fmnist-resnet"), *f = NULL;
    qs_lowrank_opts_t o;
    opts_ratio(&o, spatial ? QS_LOWRANK_SPATIAL : QS_LOWRANK_CHANNEL, 0.25);
    o.force = true;
    qs_lowrank_report_t r;
    ck_assert_msg(qs_graph_lowrank(g, &o, &f, &r) == QS_OK, "%s", qs_last_error());
    int checked = 0;
    for (int k = 0; k < r.nlayers; k++) {
        const qs_lowrank_layer_t *l = &r.layer[k];
        if (!l->factorized)
            continue;
        char nm[QS_NAME_MAX];
        snprintf(nm, sizeof nm, "%s.lr1", l->name);
        const qs_node_t *n = &g->nodes[qs_graph_find(g, l->name)];
        const qs_tensor_t *A = f->nodes[qs_graph_find(f, nm)].weight, *B = f->nodes[qs_graph_find(f, l->name)].weight;
        int64_t O = n->weight->shape[0], I = n->weight->shape[1], kh = n->kh, kw = n->kw, R = l->rank;
        ck_assert_int_eq(A->shape[0], R);
        double e2 = 0, w2 = 0;
        for (int64_t oo = 0; oo < O; oo++)
            for (int64_t i = 0; i < I; i++)
                for (int64_t y = 0; y < kh; y++)
                    for (int64_t x = 0; x < kw; x++) {
                        double s = 0;
                        for (int64_t j = 0; j < R; j++)
                            s += spatial ? (double)qs_f32(A)[(j * I + i) * kh + y] * qs_f32(B)[(oo * R + j) * kw + x]
                                         : (double)qs_f32(B)[oo * R + j] * qs_f32(A)[((j * I + i) * kh + y) * kw + x];
                        double w = qs_f32(n->weight)[((oo * I + i) * kh + y) * kw + x];
                        e2 += (w - s) * (w - s);
                        w2 += w * w;
                    }
        ck_assert(l->discarded > 0.01);
        REQUIRE_MSG(fabs(e2 / w2 - l->discarded) <= 1e-6 * l->discarded,
                    "%s: ||W - W_r||²/||W||² = %.9g, discarded %.9g", l->name, e2 / w2, l->discarded);
        checked++;
    }
    ck_assert_int_ge(checked, spatial ? 7 : 8);
    qs_graph_free(f);
    qs_graph_free(g);
}
END_TEST

/* MACs and parameters follow the formulas; the factorized graph round-trips through a model file. */
START_TEST(test_macs_params)
{
    bool spatial = _i;
    qs_graph_t *g = zoo("fmnist-resnet"), *f = NULL;
    qs_lowrank_opts_t o;
    opts_ratio(&o, spatial ? QS_LOWRANK_SPATIAL : QS_LOWRANK_CHANNEL, 0.5);
    qs_lowrank_report_t r;
    ck_assert_msg(qs_graph_lowrank(g, &o, &f, &r) == QS_OK, "%s", qs_last_error());
    ck_assert_int_gt(r.factorized, 0);
    int64_t dmacs = 0, dparams = 0;
    for (int k = 0; k < r.nlayers; k++) {
        const qs_lowrank_layer_t *l = &r.layer[k];
        int i = qs_graph_find(g, l->name);
        const qs_node_t *n = &g->nodes[i];
        ck_assert_int_eq(l->macs_before, qs_node_macs(g, i));
        if (!l->factorized) {
            ck_assert_int_eq(l->macs_after, l->macs_before);
            continue;
        }
        ck_assert_int_lt(l->macs_after, l->macs_before);
        int64_t R = l->rank, O = n->weight->shape[0], I = n->weight->shape[1], bias = n->bias ? O : 0, macs, params;
        if (n->op == QS_OP_LINEAR) {
            macs = R * I + O * R;
            params = R * I + O * R + bias;
        } else {
            int64_t oh = n->out_shape[1], ow = n->out_shape[2], win = g->nodes[n->inputs[0]].out_shape[2];
            if (spatial) {
                macs = R * I * n->kh * oh * win + O * R * n->kw * oh * ow;
                params = R * I * n->kh + O * R * n->kw + bias;
            } else {
                macs = R * I * n->kh * n->kw * oh * ow + O * R * oh * ow;
                params = R * I * n->kh * n->kw + O * R + bias;
            }
        }
        char nm[QS_NAME_MAX];
        snprintf(nm, sizeof nm, "%s.lr1", l->name);
        int a = qs_graph_find(f, nm), b = qs_graph_find(f, l->name);
        ck_assert_int_eq(l->macs_after, macs);
        ck_assert_int_eq(qs_node_macs(f, a) + qs_node_macs(f, b), macs);
        ck_assert_int_eq(l->params_after, params);
        ck_assert_int_eq(f->nodes[a].weight->size + f->nodes[b].weight->size + bias, params);
        dmacs += l->macs_before - macs;
        dparams += l->params_before - params;
    }
    ck_assert_int_eq(r.macs_before, qs_graph_macs(g));
    ck_assert_int_eq(r.macs_after, qs_graph_macs(f));
    ck_assert_int_eq(r.macs_after, r.macs_before - dmacs);
    ck_assert_int_eq(r.params_after, qs_graph_params(f));
    ck_assert_int_eq(r.params_after, r.params_before - dparams);
    /* a batchnorm still follows each factorized conv's second factor */
    int bn = qs_graph_find(f, "b1.conv1.bn");
    ck_assert_int_eq(f->nodes[bn].inputs[0], qs_graph_find(f, "b1.conv1"));
    char path[256];
    qs_test_path(path, sizeof path, spatial ? "lowrank-s.h5" : "lowrank-c.h5");
    ck_assert_msg(qs_model_save(f, path) == QS_OK, "%s", qs_last_error());
    qs_graph_t *back = NULL;
    ck_assert_msg(qs_model_load(path, &back) == QS_OK, "%s", qs_last_error());
    unlink(path);
    ck_assert_int_eq(back->nnodes, f->nnodes);
    ck_assert_int_eq(qs_graph_macs(back), r.macs_after);
    ck_assert_int_eq(qs_graph_params(back), r.params_after);
    qs_tensor_t *x = inputs(g, 4, 5);
    qs_tensor_t *y0 = qs_test_forward(f, x), *y1 = qs_test_forward(back, x);
    ck_assert(memcmp(y0->data, y1->data, (size_t)y0->size * sizeof(float)) == 0);
    qs_tensor_free(x), qs_tensor_free(y0), qs_tensor_free(y1);
    /* factorizing again: the second factor's first factor takes the next free name */
    const char *again = NULL;
    for (int k = 0; k < r.nlayers && !again; k++)
        if (r.layer[k].factorized && r.layer[k].op == QS_OP_CONV2D)
            again = r.layer[k].name;
    ck_assert_ptr_nonnull(again);
    char lr1[QS_NAME_MAX], lr2[QS_NAME_MAX];
    snprintf(lr1, sizeof lr1, "%s.lr1", again);
    snprintf(lr2, sizeof lr2, "%s.lr2", again);
    qs_graph_t *f2 = NULL;
    opts_ratio(&o, QS_LOWRANK_CHANNEL, 0.5);
    o.layers = again;
    o.force = true;
    qs_lowrank_report_t r2;
    ck_assert_msg(qs_graph_lowrank(f, &o, &f2, &r2) == QS_OK, "%s", qs_last_error());
    ck_assert_int_ge(qs_graph_find(f2, lr2), 0);
    ck_assert_int_eq(qs_graph_find(f2, lr1) + 1, qs_graph_find(f2, lr2));
    ck_assert_int_eq(qs_graph_find(f2, lr2) + 1, qs_graph_find(f2, again));
    qs_graph_free(f2);
    qs_graph_free(back);
    qs_graph_free(f);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_skips)
{
    qs_graph_t *g = zoo("fmnist-dwsep"), *f = NULL;
    qs_lowrank_opts_t o;
    opts_ratio(&o, QS_LOWRANK_CHANNEL, 0.5);
    qs_lowrank_report_t r;
    ck_assert_int_eq(qs_graph_lowrank(g, &o, &f, &r), QS_OK);
    int dw = 0;
    for (int k = 0; k < r.nlayers; k++)
        if (strstr(r.layer[k].name, ".dw")) {
            ck_assert(!r.layer[k].factorized);
            ck_assert_msg(strstr(r.layer[k].skipped, "depthwise convolution"), "%s", r.layer[k].skipped);
            dw++;
        }
    ck_assert_int_eq(dw, 3);
    ck_assert_int_eq(r.skipped, 3);
    qs_graph_free(f);
    /* spatial: 1x1 convs and the linear head are left whole */
    opts_ratio(&o, QS_LOWRANK_SPATIAL, 0.5);
    ck_assert_int_eq(qs_graph_lowrank(g, &o, &f, &r), QS_OK);
    for (int k = 0; k < r.nlayers; k++) {
        const char *why = r.layer[k].skipped;
        if (strstr(r.layer[k].name, ".pw"))
            ck_assert_msg(strstr(why, "at least 2x2, not 1x1"), "%s", why);
        if (strcmp(r.layer[k].name, "fc") == 0)
            ck_assert_msg(strstr(why, "convolutions only"), "%s", why);
    }
    qs_graph_free(f);
    qs_graph_free(g);
    /* no gain: resnet's stem [16, 1, 3, 3] at rank 7 of 9 costs 7·9 + 16·7 = 175 > 144 MACs a pixel */
    g = zoo("fmnist-resnet");
    opts_ratio(&o, QS_LOWRANK_CHANNEL, 0.75);
    o.layers = "stem";
    ck_assert_int_eq(qs_graph_lowrank(g, &o, &f, &r), QS_OK);
    ck_assert(!r.layer[0].factorized);
    ck_assert_int_eq(r.layer[0].rank, 7);
    ck_assert_msg(strcmp(r.layer[0].skipped, "rank 7 keeps 121.5% of the MACs") == 0, "%s", r.layer[0].skipped);
    ck_assert_int_eq(f->nnodes, g->nnodes);
    ck_assert_int_eq(r.macs_after, r.macs_before);
    qs_graph_free(f);
    o.force = true;
    ck_assert_int_eq(qs_graph_lowrank(g, &o, &f, &r), QS_OK);
    ck_assert(r.layer[0].factorized);
    ck_assert_int_gt(r.macs_after, r.macs_before);
    qs_graph_free(f);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_errors)
{
    qs_graph_t *g = zoo("fmnist-dwsep"), *f = NULL;
    static const struct {
        double ratio, energy;
        const char *msg;
    } bad[] = {
        {0.5, 0.05, "both ratio (0.5) and energy (0.05) are set"},
        {NAN, NAN, "neither ratio nor energy is set"},
        {0.0, NAN, "ratio 0: expected a fraction of the full rank in (0, 1]"},
        {1.5, NAN, "ratio 1.5: expected a fraction of the full rank in (0, 1]"},
        {-0.2, NAN, "ratio -0.2: expected"},
        {NAN, 1.0, "energy 1: expected a discarded-energy fraction in [0, 1)"},
        {NAN, -0.1, "energy -0.1: expected"},
    };
    qs_lowrank_opts_t o;
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        qs_lowrank_opts_default(&o);
        o.ratio = bad[k].ratio;
        o.energy = bad[k].energy;
        ck_assert_int_lt(qs_graph_lowrank(g, &o, &f, NULL), 0);
        ck_assert_msg(strstr(qs_last_error(), bad[k].msg), "%s", qs_last_error());
        ck_assert_ptr_null(f);
    }
    opts_ratio(&o, QS_LOWRANK_CHANNEL, 0.5);
    o.layers = "b1.pw,nope";
    ck_assert_int_lt(qs_graph_lowrank(g, &o, &f, NULL), 0);
    ck_assert_msg(strstr(qs_last_error(), "layers: graph 'fmnist-dwsep' has no node named 'nope'"), "%s",
                  qs_last_error());
    o.layers = "b1.pw.bn";
    ck_assert_int_lt(qs_graph_lowrank(g, &o, &f, NULL), 0);
    ck_assert_msg(strstr(qs_last_error(), "node 'b1.pw.bn' is a batchnorm, not a conv2d or linear"), "%s",
                  qs_last_error());
    qs_lowrank_kind_t kd;
    ck_assert_int_lt(qs_lowrank_kind_parse("rows", "--lowrank", &kd), 0);
    ck_assert_msg(strstr(qs_last_error(), "--lowrank: unknown low-rank split 'rows'"), "%s", qs_last_error());
    ck_assert_int_eq(qs_lowrank_kind_parse("spatial", "--lowrank", &kd), QS_OK);
    ck_assert_int_eq(kd, QS_LOWRANK_SPATIAL);
    qs_graph_free(g);
}
END_TEST

static Suite *lowrank_suite(void)
{
    Suite *s = suite_create("lowrank");
    TCase *tc = tcase_create("lowrank");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_full_rank, 0, 4);
    tcase_add_loop_test(tc, test_geometry, 0, 2);
    tcase_add_test(tc, test_mask);
    tcase_add_test(tc, test_energy_rank);
    tcase_add_test(tc, test_ratio_rounding);
    tcase_add_loop_test(tc, test_eckart_young, 0, 2);
    tcase_add_loop_test(tc, test_macs_params, 0, 2);
    tcase_add_test(tc, test_skips);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

QS_TEST_MAIN(lowrank_suite)
