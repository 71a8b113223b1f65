/* tests/test_train.c — the trainer: finite-difference gradient checks of
 * every op it trains, the SGD step and weight-decay groups, the schedule, the
 * straight-through fake-quant hook, a short deterministic training run, the
 * zoo's sizes, and strict training specs. */
#include "tests/testutil.h"

#include "sim/sim_internal.h"

#include <math.h>
#include <string.h>

/* the documented sizes of the zoo (docs/training.md) */
#define ZOO_DWSEP_PARAMS 10354
#define ZOO_DWSEP_MACS 818600
#define ZOO_RESNET_PARAMS 78426
#define ZOO_RESNET_MACS 2552000

/* ---- building tiny graphs ---------------------------------------------------------- */

static uint64_t fill_seed = 7;

static qs_tensor_t *rnd(int ndim, const int64_t *shape, float lo, float hi)
{
    qs_tensor_t *t = qs_tensor_create(QS_F32, ndim, shape);
    ck_assert_ptr_nonnull(t);
    for (int64_t i = 0; i < t->size; i++)
        qs_f32(t)[i] = lo + (hi - lo) * (float)qs_rng_uniform(fill_seed, 99, (uint64_t)fill_seed * 1000 + (uint64_t)i);
    fill_seed++;
    return t;
}

static int add_conv(qs_graph_t *g, const char *name, int in, int64_t cin, int64_t cout, int kh, int kw, int stride,
                    int groups, int pt, int pl, int pb, int pr, bool bias)
{
    qs_node_t n = qs_node_init(QS_OP_CONV2D, name, 1, &in);
    n.kh = kh;
    n.kw = kw;
    n.stride_h = n.stride_w = stride;
    n.pad_top = pt;
    n.pad_left = pl;
    n.pad_bottom = pb;
    n.pad_right = pr;
    n.groups = groups;
    int64_t s[4] = {cout, cin / groups, kh, kw};
    n.weight = rnd(4, s, -1.0f, 1.0f);
    if (bias) {
        int64_t b = cout;
        n.bias = rnd(1, &b, -0.5f, 0.5f);
    }
    int idx = qs_graph_add(g, &n);
    ck_assert_int_ge(idx, 0);
    return idx;
}

static int add_op(qs_graph_t *g, qs_op_t op, const char *name, int nin, const int *in)
{
    qs_node_t n = qs_node_init(op, name, nin, in);
    int idx = qs_graph_add(g, &n);
    ck_assert_int_ge(idx, 0);
    return idx;
}

static int add_bn(qs_graph_t *g, const char *name, int in, int64_t c)
{
    qs_node_t n = qs_node_init(QS_OP_BATCHNORM, name, 1, &in);
    n.gamma = rnd(1, &c, 0.5f, 1.5f);
    n.beta = rnd(1, &c, -0.5f, 0.5f);
    n.mean = rnd(1, &c, -0.1f, 0.1f);
    n.var = rnd(1, &c, 0.5f, 1.5f);
    int idx = qs_graph_add(g, &n);
    ck_assert_int_ge(idx, 0);
    return idx;
}

static int add_linear(qs_graph_t *g, const char *name, int in, int64_t fin, int64_t fout)
{
    qs_node_t n = qs_node_init(QS_OP_LINEAR, name, 1, &in);
    int64_t s[2] = {fout, fin};
    n.weight = rnd(2, s, -1.0f, 1.0f);
    n.bias = rnd(1, &fout, -0.5f, 0.5f);
    int idx = qs_graph_add(g, &n);
    ck_assert_int_ge(idx, 0);
    return idx;
}

/* ---- finite differences ------------------------------------------------------------- */

/* L = sum_k r_k y_k over the network output of a training-mode forward
 * (BN batch statistics; running statistics frozen), summed in double. */
static double loss_of(qs_sim_trainer_t *t, const qs_graph_t *g, const float *x, int64_t n, const float *r)
{
    ck_assert_int_eq(qs_sim_trainer_forward(t, x, n, true), QS_OK);
    const float *y = qs_sim_trainer_act(t, g->output);
    double l = 0.0;
    for (int64_t k = 0; k < n * g->num_classes; k++)
        l += (double)r[k] * y[k];
    return l;
}

/* Central differences with step 1e-2 against the analytic gradients of every
 * parameter. The forward is float32 but L is summed in double, so the
 * rounding noise of L is ~1e-6 relative and ~1e-4 absolute on the quotient;
 * the O(h^2) truncation error of smooth ops (BN's 1/sqrt) is ~1e-4 relative.
 * The tolerance |a - f| <= 2e-3 + 1e-2 max(|a|, |f|) is 10-100x above both,
 * while any wrong formula (a missing term, a transposed index) errs by O(1). */
static void gradcheck(qs_graph_t *g, int64_t n, int *checked)
{
    ck_assert_int_eq(qs_graph_infer(g), QS_OK);
    qs_sim_trainer_t *t = NULL;
    ck_assert_int_eq(qs_sim_trainer_create(g, n, NULL, &t), QS_OK);
    qs_sim_trainer_set_bn_momentum(t, 0.0);
    int64_t xs[4] = {n, g->in_c, g->in_h, g->in_w};
    qs_tensor_t *x = rnd(4, xs, -1.0f, 1.0f);
    int64_t rs[2] = {n, g->num_classes};
    qs_tensor_t *r = rnd(2, rs, -1.0f, 1.0f);
    loss_of(t, g, qs_f32(x), n, qs_f32(r));
    ck_assert_int_eq(qs_sim_trainer_backward(t, qs_f32(r)), QS_OK);
    /* keep the analytic gradients: the FD forwards do not touch them, but copy anyway */
    const double h = 1e-2;
    for (int i = 1; i < g->nnodes; i++) {
        qs_node_t *nd = &g->nodes[i];
        const qs_sim_pgrad_t *pg = qs_sim_trainer_pgrad(t, i);
        qs_tensor_t *ps[4] = {nd->weight, nd->bias, nd->op == QS_OP_BATCHNORM ? nd->gamma : NULL,
                              nd->op == QS_OP_BATCHNORM ? nd->beta : NULL};
        const float *gs[4] = {pg->weight, pg->bias, pg->gamma, pg->beta};
        for (int q = 0; q < 4; q++) {
            if (!ps[q])
                continue;
            ck_assert_ptr_nonnull(gs[q]);
            float *an = malloc((size_t)ps[q]->size * sizeof *an);
            memcpy(an, gs[q], (size_t)ps[q]->size * sizeof *an);
            for (int64_t k = 0; k < ps[q]->size; k++) {
                float *p = &qs_f32(ps[q])[k];
                float v = *p;
                *p = (float)(v + h);
                double lp = loss_of(t, g, qs_f32(x), n, qs_f32(r));
                *p = (float)(v - h);
                double lm = loss_of(t, g, qs_f32(x), n, qs_f32(r));
                *p = v;
                double fd = (lp - lm) / ((double)(float)(v + h) - (double)(float)(v - h));
                double a = an[k];
                REQUIRE_MSG(fabs(a - fd) <= 2e-3 + 1e-2 * fmax(fabs(a), fabs(fd)),
                            "graph '%s' node '%s' param %d element %lld: analytic %.6g, finite difference %.6g", g->name,
                            nd->name, q, (long long)k, a, fd);
                (*checked)++;
            }
            free(an);
        }
    }
    qs_tensor_free(x);
    qs_tensor_free(r);
    qs_sim_trainer_free(t);
}

START_TEST(grad_conv_groups)
{
    /* a 1x1 conv in front so that the tested conv's input gradient is checked
     * through the front conv's weight gradient */
    qs_graph_t *g = qs_graph_create("conv-groups", 4, 7, 6);
    int a = add_conv(g, "front", 0, 4, 4, 1, 1, 1, 1, 0, 0, 0, 0, false);
    int b = add_conv(g, "conv", a, 4, 6, 3, 2, 2, 2, 1, 0, 1, 1, true); /* groups 2, 3x2, stride 2, asymmetric pad */
    add_op(g, QS_OP_FLATTEN, "flat", 1, &b);
    int checked = 0;
    gradcheck(g, 3, &checked);
    ck_assert_int_eq(checked, 16 + 6 * 2 * 3 * 2 + 6);
    qs_graph_free(g);
}
END_TEST

START_TEST(grad_conv_depthwise)
{
    /* depthwise with channel multiplier 2, stride 2, pad 1; and a 1-channel
     * stem (the direct path with groups 1) */
    qs_graph_t *g = qs_graph_create("dw", 1, 6, 5);
    int a = add_conv(g, "stem", 0, 1, 3, 3, 3, 1, 1, 1, 1, 1, 1, true);
    int b = add_conv(g, "dw", a, 3, 6, 3, 3, 2, 3, 1, 1, 1, 1, false);
    int c = add_conv(g, "pw", b, 6, 2, 1, 1, 1, 1, 0, 0, 0, 0, false);
    add_op(g, QS_OP_FLATTEN, "flat", 1, &c);
    int checked = 0;
    gradcheck(g, 2, &checked);
    ck_assert_int_eq(checked, 27 + 3 + 54 + 12);
    qs_graph_free(g);
}
END_TEST

START_TEST(grad_batchnorm)
{
    qs_graph_t *g = qs_graph_create("bn", 2, 3, 3);
    int a = add_conv(g, "conv", 0, 2, 3, 3, 3, 1, 1, 1, 1, 1, 1, false);
    int b = add_bn(g, "bn", a, 3);
    int c = add_conv(g, "conv2", b, 3, 2, 1, 1, 1, 1, 0, 0, 0, 0, false);
    add_op(g, QS_OP_FLATTEN, "flat", 1, &c);
    int checked = 0;
    gradcheck(g, 4, &checked);
    ck_assert_int_eq(checked, 54 + 3 + 3 + 6);
    qs_graph_free(g);
}
END_TEST

START_TEST(grad_add_gap_linear)
{
    qs_graph_t *g = qs_graph_create("res", 2, 4, 4);
    int a = add_conv(g, "a", 0, 2, 3, 3, 3, 1, 1, 1, 1, 1, 1, true);
    int b = add_conv(g, "b", a, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, false);
    int p = add_conv(g, "proj", a, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, false);
    int in2[2] = {b, p};
    int s = add_op(g, QS_OP_ADD, "add", 2, in2);
    int gp = add_op(g, QS_OP_GAP, "gap", 1, &s);
    int f = add_op(g, QS_OP_FLATTEN, "flat", 1, &gp);
    add_linear(g, "fc", f, 3, 4);
    int checked = 0;
    gradcheck(g, 3, &checked);
    ck_assert_int_eq(checked, 54 + 3 + 81 + 9 + 12 + 4);
    qs_graph_free(g);
}
END_TEST

/* relu, relu6, clip: inputs placed so that a 1% change of the weight
 * (the finite-difference step) moves none of them across a kink, so the difference never
 * sees one */
START_TEST(grad_clamps)
{
    qs_op_t ops[3] = {QS_OP_RELU, QS_OP_RELU6, QS_OP_CLIP};
    for (int o = 0; o < 3; o++) {
        qs_graph_t *g = qs_graph_create("clamp", 1, 4, 5);
        qs_node_t n = qs_node_init(QS_OP_CONV2D, "scale", 1, (int[]){0});
        int64_t s[4] = {1, 1, 1, 1};
        n.weight = qs_tensor_create(QS_F32, 4, s);
        qs_f32(n.weight)[0] = 1.0f;
        int a = qs_graph_add(g, &n);
        qs_node_t c = qs_node_init(ops[o], "act", 1, &a);
        c.clip_min = -1.0f;
        c.clip_max = 2.5f;
        int b = qs_graph_add(g, &c);
        add_op(g, QS_OP_FLATTEN, "flat", 1, &b);
        ck_assert_int_eq(qs_graph_infer(g), QS_OK);
        qs_sim_trainer_t *t = NULL;
        ck_assert_int_eq(qs_sim_trainer_create(g, 2, NULL, &t), QS_OK);
        float x[40], r[40];
        for (int k = 0; k < 40; k++) {
            x[k] = -3.0f + 0.3f * (float)k + 0.15f; /* -2.85 .. 8.85: a 1% change of the weight crosses none of -1, 0, 2.5, 6 */
            r[k] = (float)((k * 7) % 5) - 2.0f;
        }
        double analytic = 0.0;
        float lo = ops[o] == QS_OP_CLIP ? -1.0f : 0.0f, hi = ops[o] == QS_OP_RELU ? INFINITY : ops[o] == QS_OP_RELU6 ? 6.0f : 2.5f;
        for (int k = 0; k < 40; k++)
            if (x[k] > lo && x[k] < hi)
                analytic += (double)r[k] * x[k];
        loss_of(t, g, x, 2, r);
        ck_assert_int_eq(qs_sim_trainer_backward(t, r), QS_OK);
        double got = qs_sim_trainer_pgrad(t, 1)->weight[0];
        ck_assert_double_eq_tol(got, analytic, 1e-4 * fabs(analytic) + 1e-4);
        float *w = qs_f32(g->nodes[1].weight);
        w[0] = 1.01f;
        double lp = loss_of(t, g, x, 2, r);
        w[0] = 0.99f;
        double lm = loss_of(t, g, x, 2, r);
        ck_assert_double_eq_tol((lp - lm) / (1.01 - 0.99), analytic, 1e-3 * fabs(analytic) + 1e-3);
        qs_sim_trainer_free(t);
        qs_graph_free(g);
    }
}
END_TEST

START_TEST(grad_xent)
{
    float z[2 * 4] = {0.5f, -1.0f, 2.0f, 0.0f, 3.0f, 3.0f, -2.0f, 1.0f};
    int32_t y[2] = {2, 1};
    float d[8];
    int64_t correct;
    double l = qs_sim_xent(2, 4, z, y, d, &correct);
    /* row 0: label 2 is the largest; row 1: label 1 ties with class 0 (counts as correct) */
    ck_assert_int_eq(correct, 2);
    double l0 = log(exp(0.5) + exp(-1.0) + exp(2.0) + exp(0.0)) - 2.0;
    double l1 = log(exp(3.0) + exp(3.0) + exp(-2.0) + exp(1.0)) - 3.0;
    ck_assert_double_eq_tol(l, (l0 + l1) / 2, 1e-12);
    for (int k = 0; k < 8; k++) {
        float v = z[k];
        z[k] = v + 1e-3f;
        double lp = qs_sim_xent(2, 4, z, y, NULL, NULL);
        z[k] = v - 1e-3f;
        double lm = qs_sim_xent(2, 4, z, y, NULL, NULL);
        z[k] = v;
        ck_assert_double_eq_tol(d[k], (lp - lm) / ((double)(v + 1e-3f) - (double)(v - 1e-3f)), 1e-5);
    }
}
END_TEST

/* ---- the straight-through estimator hook ----------------------------------------------- */

/* fake-quantize to a grid of 0.25 on [-1, 1]; the gradient passes inside */
static int fq_quarter(void *ctx, int node, float *y, uint8_t *pass, int64_t count, int64_t per)
{
    (void)node;
    (*(int *)ctx)++;
    for (int64_t k = 0; k < count * per; k++) {
        float v = y[k];
        pass[k] = v >= -1.0f && v <= 1.0f;
        v = v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v;
        y[k] = nearbyintf(v * 4.0f) / 4.0f;
    }
    return QS_OK;
}

START_TEST(ste_hook)
{
    qs_graph_t *g = qs_graph_create("ste", 1, 2, 3);
    qs_node_t n = qs_node_init(QS_OP_CONV2D, "scale", 1, (int[]){0});
    int64_t s[4] = {1, 1, 1, 1};
    n.weight = qs_tensor_create(QS_F32, 4, s);
    qs_f32(n.weight)[0] = 1.0f;
    int a = qs_graph_add(g, &n);
    add_op(g, QS_OP_FLATTEN, "flat", 1, &a);
    ck_assert_int_eq(qs_graph_infer(g), QS_OK);
    qs_sim_trainer_t *t = NULL;
    ck_assert_int_eq(qs_sim_trainer_create(g, 2, NULL, &t), QS_OK);
    int calls = 0;
    ck_assert_int_eq(qs_sim_trainer_set_fq(t, a, fq_quarter, &calls), QS_OK);
    float x[12] = {0.1f, -0.3f, 0.9f, 1.5f, -2.0f, 0.6f, 1.0f, -1.0f, 0.125f, 3.0f, -0.8f, 0.0f};
    float r[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    ck_assert_int_eq(qs_sim_trainer_forward(t, x, 2, true), QS_OK);
    ck_assert_int_eq(calls, 1);
    const float *y = qs_sim_trainer_act(t, g->output);
    const float want[12] = {0.0f, -0.25f, 1.0f, 1.0f, -1.0f, 0.5f, 1.0f, -1.0f, 0.0f, 1.0f, -0.75f, 0.0f};
    for (int k = 0; k < 12; k++)
        ck_assert_float_eq(y[k], want[k]);
    ck_assert_int_eq(qs_sim_trainer_backward(t, r), QS_OK);
    /* d/dw sum r q(w x) = sum over |x| <= 1 of r x (straight through) */
    double expect = 0.0;
    for (int k = 0; k < 12; k++)
        if (fabsf(x[k]) <= 1.0f)
            expect += (double)r[k] * x[k];
    ck_assert_double_eq_tol(qs_sim_trainer_pgrad(t, a)->weight[0], expect, 1e-5);
    /* the clipped positions got a zero gradient */
    const float *d = qs_sim_trainer_grad(t, a);
    ck_assert_float_eq(d[3], 0.0f);
    ck_assert_float_eq(d[4], 0.0f);
    ck_assert_float_eq(d[9], 0.0f);
    ck_assert_float_eq(d[2], 3.0f);
    qs_sim_trainer_free(t);
    qs_graph_free(g);
}
END_TEST

/* ---- SGD, weight-decay groups, schedule ------------------------------------------------------- */

START_TEST(sgd_step_groups)
{
    qs_graph_t *g = qs_graph_create("sgd", 2, 1, 1);
    int a = add_conv(g, "dw", 0, 2, 2, 1, 1, 1, 2, 0, 0, 0, 0, true); /* depthwise, with bias */
    int b = add_bn(g, "bn", a, 2);
    int f = add_op(g, QS_OP_FLATTEN, "flat", 1, &b);
    add_linear(g, "fc", f, 2, 1);
    ck_assert_int_eq(qs_graph_infer(g), QS_OK);
    qs_sim_trainer_t *t = NULL;
    ck_assert_int_eq(qs_sim_trainer_create(g, 2, NULL, &t), QS_OK);
    /* hand-set values: w = 0.5, g = 0.25 everywhere; lr 0.5, m 0.5, wd 0.5;
     * decay only on the linear weight (not depthwise, not BN, not bias) */
    for (int i = 1; i < g->nnodes; i++) {
        qs_node_t *nd = &g->nodes[i];
        const qs_sim_pgrad_t *pg = qs_sim_trainer_pgrad(t, i);
        qs_tensor_t *ps[4] = {nd->weight, nd->bias, nd->op == QS_OP_BATCHNORM ? nd->gamma : NULL,
                              nd->op == QS_OP_BATCHNORM ? nd->beta : NULL};
        float *gs[4] = {pg->weight, pg->bias, pg->gamma, pg->beta};
        for (int q = 0; q < 4; q++)
            for (int64_t k = 0; ps[q] && k < ps[q]->size; k++) {
                qs_f32(ps[q])[k] = 0.5f;
                gs[q][k] = 0.25f;
            }
    }
    qs_sim_sgd_t s = {0.5, 0.5, 0.5, false, false, false};
    ck_assert_int_eq(qs_sim_sgd_step(t, &s), QS_OK);
    /* no decay: v = 0.25, w = 0.5 - 0.125 = 0.375; decay: v = 0.25 + 0.25 = 0.5, w = 0.25 */
    ck_assert_float_eq(qs_f32(g->nodes[a].weight)[0], 0.375f);
    ck_assert_float_eq(qs_f32(g->nodes[a].bias)[1], 0.375f);
    ck_assert_float_eq(qs_f32(g->nodes[b].gamma)[0], 0.375f);
    ck_assert_float_eq(qs_f32(g->nodes[b].beta)[1], 0.375f);
    ck_assert_float_eq(qs_f32(g->nodes[4].weight)[1], 0.25f);
    ck_assert_float_eq(qs_f32(g->nodes[4].bias)[0], 0.375f);
    /* second step, same gradient: v = 0.5 v + g (+ wd w) */
    ck_assert_int_eq(qs_sim_sgd_step(t, &s), QS_OK);
    /* no decay: v = 0.125 + 0.25 = 0.375, w = 0.375 - 0.1875 = 0.1875;
     * decay: v = 0.25 + 0.25 + 0.125 = 0.625, w = 0.25 - 0.3125 = -0.0625 */
    ck_assert_float_eq(qs_f32(g->nodes[a].weight)[1], 0.1875f);
    ck_assert_float_eq(qs_f32(g->nodes[4].weight)[0], -0.0625f);
    /* the groups */
    qs_sim_sgd_t on = {0.1, 0.9, 0.01, true, true, true};
    ck_assert_double_eq(qs_sim_wd_for(&g->nodes[a], 0, &on), 0.01);
    ck_assert_double_eq(qs_sim_wd_for(&g->nodes[a], 0, &s), 0.0);
    ck_assert_double_eq(qs_sim_wd_for(&g->nodes[4], 0, &s), 0.5);
    ck_assert_double_eq(qs_sim_wd_for(&g->nodes[4], 1, &s), 0.0);
    ck_assert_double_eq(qs_sim_wd_for(&g->nodes[b], 2, &s), 0.0);
    ck_assert_double_eq(qs_sim_wd_for(&g->nodes[b], 3, &on), 0.01);
    qs_sim_trainer_free(t);
    qs_graph_free(g);
}
END_TEST

START_TEST(schedule)
{
    /* 10 warm-up iterations of 100, then cosine from 0.1 to 0.01 */
    ck_assert_double_eq_tol(qs_sim_lr_at(0.1, 0.01, 0, 100, 10), 0.01, 1e-15);
    ck_assert_double_eq_tol(qs_sim_lr_at(0.1, 0.01, 4, 100, 10), 0.05, 1e-15);
    ck_assert_double_eq_tol(qs_sim_lr_at(0.1, 0.01, 9, 100, 10), 0.1, 1e-15);
    ck_assert_double_eq_tol(qs_sim_lr_at(0.1, 0.01, 10, 100, 10), 0.1, 1e-15);
    ck_assert_double_eq_tol(qs_sim_lr_at(0.1, 0.01, 55, 100, 10), 0.055, 1e-15);
    ck_assert_double_eq_tol(qs_sim_lr_at(0.1, 0.01, 100, 100, 10), 0.01, 1e-15);
    /* no warm-up: a quarter of the way, 0.5 (1 + cos(pi/4)) */
    ck_assert_double_eq_tol(qs_sim_lr_at(1.0, 0.0, 25, 100, 0), 0.5 * (1.0 + sqrt(0.5)), 1e-15);
}
END_TEST

/* ---- the zoo ---------------------------------------------------------------------------------- */

START_TEST(zoo_sizes)
{
    const char *const *names = qs_zoo_names();
    ck_assert_str_eq(names[0], "fmnist-dwsep");
    ck_assert_str_eq(names[1], "fmnist-resnet");
    ck_assert_ptr_null(names[2]);
    qs_graph_t *g = NULL;
    ck_assert_int_eq(qs_zoo_build("fmnist-dwsep", 1, &g), QS_OK);
    ck_assert_int_eq(qs_graph_params(g), ZOO_DWSEP_PARAMS);
    ck_assert_int_eq(qs_graph_macs(g), ZOO_DWSEP_MACS);
    ck_assert_int_lt(qs_graph_params(g), 200000);
    ck_assert_int_ge(qs_graph_find(g, "b1.dw.relu6"), 0);
    ck_assert_int_ge(qs_graph_find(g, "b3.pw.bn"), 0);
    ck_assert_int_eq(g->nodes[qs_graph_find(g, "b2.dw")].groups, 32);
    ck_assert_float_eq(g->norm_mean[0], 0.2860f);
    ck_assert_float_eq(g->norm_std[0], 0.3530f);
    ck_assert_int_eq(g->num_classes, 10);
    /* He-normal: the stem's 144 weights have std near sqrt(2/9) */
    const qs_tensor_t *w = g->nodes[1].weight;
    double ss = 0.0;
    for (int64_t k = 0; k < w->size; k++)
        ss += (double)qs_f32(w)[k] * qs_f32(w)[k];
    ck_assert_double_eq_tol(sqrt(ss / (double)w->size), sqrt(2.0 / 9.0), 0.1);
    /* seeded: the same seed gives the same bits, another seed other bits */
    qs_graph_t *g2 = NULL, *g3 = NULL;
    ck_assert_int_eq(qs_zoo_build("fmnist-dwsep", 1, &g2), QS_OK);
    ck_assert_int_eq(qs_zoo_build("fmnist-dwsep", 2, &g3), QS_OK);
    ck_assert_int_eq(memcmp(w->data, g2->nodes[1].weight->data, (size_t)w->size * 4), 0);
    ck_assert_int_ne(memcmp(w->data, g3->nodes[1].weight->data, (size_t)w->size * 4), 0);
    qs_graph_free(g);
    qs_graph_free(g2);
    qs_graph_free(g3);
    ck_assert_int_eq(qs_zoo_build("fmnist-resnet", 1, &g), QS_OK);
    ck_assert_int_eq(qs_graph_params(g), ZOO_RESNET_PARAMS);
    ck_assert_int_eq(qs_graph_macs(g), ZOO_RESNET_MACS);
    ck_assert_int_lt(qs_graph_params(g), 200000);
    ck_assert_int_ge(qs_graph_find(g, "b2.proj.bn"), 0);
    ck_assert_int_lt(qs_graph_find(g, "b1.proj"), 0); /* identity shortcut where the shape is kept */
    qs_graph_free(g);
    ck_assert_int_lt(qs_zoo_build("mobilenet", 1, &g), 0);
    ck_assert_ptr_null(g);
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "fmnist-dwsep, fmnist-resnet"));
}
END_TEST


/* the executor in eval mode computes what the float engine computes (BN with
 * running statistics): a model trained here is evaluated as it was trained */
START_TEST(eval_matches_engine)
{
    const char *const *names = qs_zoo_names();
    for (int a = 0; names[a]; a++) {
        qs_graph_t *g = NULL;
        ck_assert_int_eq(qs_zoo_build(names[a], 4, &g), QS_OK);
        /* non-trivial BN statistics and parameters */
        for (int i = 1; i < g->nnodes; i++)
            if (g->nodes[i].op == QS_OP_BATCHNORM)
                for (int64_t c = 0; c < g->nodes[i].gamma->size; c++) {
                    qs_f32(g->nodes[i].gamma)[c] = 0.5f + (float)qs_rng_uniform(1, (uint64_t)i, (uint64_t)c);
                    qs_f32(g->nodes[i].beta)[c] = (float)qs_rng_uniform(2, (uint64_t)i, (uint64_t)c) - 0.5f;
                    qs_f32(g->nodes[i].mean)[c] = (float)qs_rng_uniform(3, (uint64_t)i, (uint64_t)c) - 0.5f;
                    qs_f32(g->nodes[i].var)[c] = 0.5f + (float)qs_rng_uniform(4, (uint64_t)i, (uint64_t)c);
                }
        int64_t xs[4] = {5, 1, 28, 28};
        qs_tensor_t *x = rnd(4, xs, -1.0f, 2.0f);
        qs_sim_trainer_t *t = NULL;
        ck_assert_int_eq(qs_sim_trainer_create(g, 5, NULL, &t), QS_OK);
        ck_assert_int_eq(qs_sim_trainer_forward(t, qs_f32(x), 5, false), QS_OK);
        qs_engine_t *e = NULL;
        qs_engine_opts_t eo = {NULL, true};
        ck_assert_int_eq(qs_engine_create(g, &eo, &e), QS_OK);
        const qs_tensor_t *y = NULL;
        ck_assert_int_eq(qs_engine_forward(e, x, &y), QS_OK);
        const float *yt = qs_sim_trainer_act(t, g->output);
        for (int64_t k = 0; k < 50; k++)
            REQUIRE_MSG(fabsf(yt[k] - qs_f32(y)[k]) <= 1e-4f * (1.0f + fabsf(qs_f32(y)[k])),
                        "%s output %lld: trainer %g, engine %g", names[a], (long long)k, yt[k], qs_f32(y)[k]);
        qs_engine_free(e);
        qs_sim_trainer_free(t);
        qs_tensor_free(x);
        qs_graph_free(g);
    }
}
END_TEST

/* ---- a short training run ------------------------------------------------------------------------- */

static void keep_epoch(const qs_train_epoch_t *e, void *ctx) { ((qs_train_epoch_t *)ctx)[e->epoch - 1] = *e; }

static qs_graph_t *short_run(const qs_dataset_t *d, int threads, qs_train_epoch_t *ep)
{
    qs_graph_t *g = NULL;
    ck_assert_int_eq(qs_zoo_build("fmnist-dwsep", 3, &g), QS_OK);
    qs_train_opts_t o;
    qs_train_opts_default(&o);
    o.epochs = 2;
    o.batch = 32;
    o.lr = 0.05;
    o.limit = 320;
    o.seed = 5;
    o.wd_depthwise = false;
    o.pool = qs_pool_create(threads);
    ck_assert_int_eq(qs_train(g, d, NULL, &o, NULL, keep_epoch, ep), QS_OK);
    qs_pool_free(o.pool);
    return g;
}

static void same_weights(const qs_graph_t *a, const qs_graph_t *b)
{
    ck_assert_int_eq(a->nnodes, b->nnodes);
    for (int i = 0; i < a->nnodes; i++) {
        const qs_tensor_t *ta[6] = {a->nodes[i].weight, a->nodes[i].bias, a->nodes[i].gamma,
                                    a->nodes[i].beta,   a->nodes[i].mean, a->nodes[i].var};
        const qs_tensor_t *tb[6] = {b->nodes[i].weight, b->nodes[i].bias, b->nodes[i].gamma,
                                    b->nodes[i].beta,   b->nodes[i].mean, b->nodes[i].var};
        for (int q = 0; q < 6; q++) {
            ck_assert_int_eq(ta[q] == NULL, tb[q] == NULL);
            if (ta[q])
                REQUIRE_MSG(memcmp(ta[q]->data, tb[q]->data, (size_t)ta[q]->size * 4) == 0,
                            "node '%s' tensor %d differs", a->nodes[i].name, q);
        }
    }
}

START_TEST(short_run_deterministic)
{
    qs_dataset_t *d = NULL;
    if (qs_dataset_fmnist(NULL, true, &d) < 0) {
        fprintf(stderr, "test_train: Fashion-MNIST not installed, short run skipped: %s\n", qs_last_error());
        return;
    }
    qs_train_epoch_t e1[2], e2[2], e3[2];
    qs_graph_t *g1 = short_run(d, 2, e1), *g2 = short_run(d, 2, e2), *g3 = short_run(d, 1, e3);
    same_weights(g1, g2);
    same_weights(g1, g3); /* the block decomposition does not depend on the thread count */
    ck_assert_double_eq(e1[1].loss, e2[1].loss);
    ck_assert_double_eq(e1[1].loss, e3[1].loss);
    ck_assert_double_lt(e1[1].loss, e1[0].loss);
    ck_assert_double_lt(e1[0].loss, 2.5);
    ck_assert(isnan(e1[0].test_top1));
    /* the trained weights are not the initial ones */
    qs_graph_t *g0 = NULL;
    ck_assert_int_eq(qs_zoo_build("fmnist-dwsep", 3, &g0), QS_OK);
    ck_assert_int_ne(memcmp(g0->nodes[1].weight->data, g1->nodes[1].weight->data, 4 * 144), 0);
    qs_graph_free(g0);
    qs_graph_free(g1);
    qs_graph_free(g2);
    qs_graph_free(g3);
    qs_dataset_free(d);
}
END_TEST

START_TEST(bad_options)
{
    qs_graph_t *g = NULL;
    ck_assert_int_eq(qs_zoo_build("fmnist-resnet", 1, &g), QS_OK);
    qs_dataset_t d = {0};
    qs_train_opts_t o;
    qs_train_opts_default(&o);
    o.batch = 1;
    ck_assert_int_eq(qs_train(g, &d, NULL, &o, NULL, NULL, NULL), QS_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "batch"));
    qs_train_opts_default(&o);
    o.momentum = 1.0;
    ck_assert_int_eq(qs_train(g, &d, NULL, &o, NULL, NULL, NULL), QS_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "momentum"));
    qs_graph_free(g);
}
END_TEST

/* ---- the training spec (through the command) ------------------------------------------------------- */

START_TEST(spec_unknown_key)
{
    if (access("./quasar", X_OK) != 0) {
        fprintf(stderr, "test_train: ./quasar not built, spec test skipped\n");
        return;
    }
    char spec[512], model[512], cmd[1200], line[2048] = "";
    qs_test_path(spec, sizeof spec, "bad-train.yaml");
    qs_test_path(model, sizeof model, "bad-train.h5");
    FILE *f = fopen(spec, "w");
    ck_assert_ptr_nonnull(f);
    fputs("arch: fmnist-dwsep\nseed: 1\nlearning_rate: 0.1\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "./quasar train %s -o %s 2>&1; echo \"exit=$?\"", spec, model);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t got = fread(line, 1, sizeof line - 1, p);
    line[got] = '\0';
    pclose(p);
    ck_assert_msg(strstr(line, "bad-train.yaml:3") != NULL, "no file:line in: %s", line);
    ck_assert_msg(strstr(line, "learning_rate") != NULL, "no key in: %s", line);
    ck_assert_msg(strstr(line, "exit=2") != NULL, "exit status: %s", line);
    ck_assert_int_ne(access(model, F_OK), 0);
    unlink(spec);
}
END_TEST

static Suite *mk(void)
{
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("train");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, grad_conv_groups);
    tcase_add_test(tc, grad_conv_depthwise);
    tcase_add_test(tc, grad_batchnorm);
    tcase_add_test(tc, grad_add_gap_linear);
    tcase_add_test(tc, grad_clamps);
    tcase_add_test(tc, grad_xent);
    tcase_add_test(tc, ste_hook);
    tcase_add_test(tc, sgd_step_groups);
    tcase_add_test(tc, schedule);
    tcase_add_test(tc, zoo_sizes);
    tcase_add_test(tc, eval_matches_engine);
    tcase_add_test(tc, short_run_deterministic);
    tcase_add_test(tc, bad_options);
    tcase_add_test(tc, spec_unknown_key);
    suite_add_tcase(s, tc);
    return s;
}

QS_TEST_MAIN(mk)
