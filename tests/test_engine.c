/* tests/test_engine.c — the float engine: every op on hand-computed values
 * (reference and fast path), the fast path against the reference on random
 * MobileNet- and ResNet-style graphs, bitwise independence of the batch and
 * the thread count, the hook, and qs_eval's top-1/top-5. */
#include "tests/testutil.h"
#include "sim/sim.h"

#include <math.h>
#include <stdatomic.h>
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

static qs_tensor_t *t4(int64_t a, int64_t b, int64_t c, int64_t d, const float *v)
{
    int64_t s[4] = {a, b, c, d};
    return tens(4, s, v);
}

/* Uniform in [-a, a) from Philox stream `stream`. */
static void fill(float *v, int64_t n, float a, uint64_t stream)
{
    for (int64_t i = 0; i < n; i++)
        v[i] = (float)((2.0 * qs_rng_uniform(77, stream, (uint64_t)i) - 1.0) * a);
}

static qs_tensor_t *rnd(int ndim, const int64_t *shape, float a, uint64_t stream)
{
    qs_tensor_t *t = tens(ndim, shape, NULL);
    fill(qs_f32(t), t->size, a, stream);
    return t;
}

static int add(qs_graph_t *g, qs_node_t *n)
{
    int i = qs_graph_add(g, n);
    ck_assert_msg(i >= 0, "qs_graph_add(%s): %s", n->name, qs_last_error());
    return i;
}

static void infer(qs_graph_t *g)
{
    int rc = qs_graph_infer(g);
    ck_assert_msg(rc == QS_OK, "qs_graph_infer: %s", qs_last_error());
}

/* A conv with random He-uniform weights and a small random bias. */
static int conv(qs_graph_t *g, const char *name, int in, int64_t cin, int64_t cout, int kh, int kw, int stride, int pad,
                int groups, bool bias, uint64_t seed)
{
    qs_node_t n = qs_node_init(QS_OP_CONV2D, name, 1, &in);
    n.kh = kh;
    n.kw = kw;
    n.stride_h = n.stride_w = stride;
    n.pad_top = n.pad_bottom = pad;
    n.pad_left = n.pad_right = pad;
    n.groups = groups;
    int64_t ws[4] = {cout, cin / groups, kh, kw};
    n.weight = rnd(4, ws, sqrtf(6.0f / (float)(cin / groups * kh * kw)), seed);
    if (bias)
        n.bias = rnd(1, &cout, 0.1f, seed + 1000);
    return add(g, &n);
}

static int bn(qs_graph_t *g, const char *name, int in, int64_t c, uint64_t seed)
{
    qs_node_t n = qs_node_init(QS_OP_BATCHNORM, name, 1, &in);
    n.gamma = rnd(1, &c, 0.5f, seed);
    n.beta = rnd(1, &c, 0.1f, seed + 1);
    n.mean = rnd(1, &c, 0.1f, seed + 2);
    n.var = rnd(1, &c, 0.5f, seed + 3);
    float *g_ = qs_f32(n.gamma), *v = qs_f32(n.var);
    for (int64_t i = 0; i < c; i++) {
        g_[i] += 1.0f;
        v[i] += 1.0f;
    }
    return add(g, &n);
}

static int unary(qs_graph_t *g, qs_op_t op, const char *name, int in)
{
    qs_node_t n = qs_node_init(op, name, 1, &in);
    return add(g, &n);
}

static int linear(qs_graph_t *g, const char *name, int in, int64_t fin, int64_t fout, uint64_t seed)
{
    qs_node_t n = qs_node_init(QS_OP_LINEAR, name, 1, &in);
    int64_t ws[2] = {fout, fin};
    n.weight = rnd(2, ws, sqrtf(6.0f / (float)fin), seed);
    n.bias = rnd(1, &fout, 0.1f, seed + 1000);
    return add(g, &n);
}

/* Runs g on x and returns a copy of the logits (caller frees). */
static qs_tensor_t *run(const qs_graph_t *g, bool reference, qs_pool_t *pool, const qs_tensor_t *x)
{
    qs_engine_opts_t o = {pool, reference};
    qs_engine_t *e = NULL;
    int rc = qs_engine_create(g, &o, &e);
    ck_assert_msg(rc == QS_OK, "qs_engine_create: %s", qs_last_error());
    const qs_tensor_t *y = NULL;
    rc = qs_engine_forward(e, x, &y);
    ck_assert_msg(rc == QS_OK, "qs_engine_forward: %s", qs_last_error());
    ck_assert_int_eq(y->ndim, 2);
    ck_assert_int_eq(y->shape[0], x->shape[0]);
    ck_assert_int_eq(y->shape[1], g->num_classes);
    qs_tensor_t *c = qs_tensor_clone(y);
    ck_assert_ptr_nonnull(c);
    qs_engine_free(e);
    return c;
}

static bool same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* g's output on x equals want exactly, on both paths (the hand-computed
 * cases use values every summation order gets exactly right). */
static void expect(const qs_graph_t *g, const qs_tensor_t *x, const float *want, int64_t n)
{
    for (int ref = 1; ref >= 0; ref--) {
        qs_tensor_t *y = run(g, ref, NULL, x);
        ck_assert_int_eq(y->size, n);
        for (int64_t i = 0; i < n; i++) {
            float v = qs_f32(y)[i];
            REQUIRE_MSG(same_bits(v, want[i]) || (isnan(v) && isnan(want[i])),
                        "%s path, output %lld: got %.9g, want %.9g", ref ? "reference" : "fast", (long long)i,
                        (double)v, (double)want[i]);
        }
        qs_tensor_free(y);
    }
}

/* input (c, h, w) -> node built by the caller -> flatten: the output is the node's values in NCHW order. */
static qs_graph_t *graph(int64_t c, int64_t h, int64_t w) { return qs_graph_create("t", c, h, w); }

static void finish(qs_graph_t *g, int last)
{
    unary(g, QS_OP_FLATTEN, "flat", last);
    infer(g);
}

static qs_tensor_t *iota(int64_t c, int64_t h, int64_t w, float start, float step)
{
    qs_tensor_t *x = t4(1, c, h, w, NULL);
    for (int64_t i = 0; i < x->size; i++)
        qs_f32(x)[i] = start + step * (float)i;
    return x;
}

/* ---- each op on hand-computed values ------------------------------------------------------- */

START_TEST(conv_plain_bias)
{
    qs_graph_t *g = graph(1, 3, 3);
    int in = 0;
    qs_node_t n = qs_node_init(QS_OP_CONV2D, "c", 1, &in);
    n.kh = n.kw = 2;
    n.weight = t4(1, 1, 2, 2, (float[]){1, 2, 3, 4});
    n.bias = vec(1, (float[]){0.5f});
    finish(g, add(g, &n));
    qs_tensor_t *x = iota(1, 3, 3, 1, 1); /* 1..9 */
    expect(g, x, (float[]){37.5f, 47.5f, 67.5f, 77.5f}, 4);
    qs_tensor_free(x);
    qs_graph_free(g);
}
END_TEST

START_TEST(conv_stride_padding)
{
    qs_graph_t *g = graph(1, 4, 4);
    int in = 0;
    qs_node_t n = qs_node_init(QS_OP_CONV2D, "c", 1, &in);
    n.kh = n.kw = 3;
    n.stride_h = n.stride_w = 2;
    n.pad_top = n.pad_left = n.pad_bottom = n.pad_right = 1;
    n.weight = t4(1, 1, 3, 3, (float[]){1, 1, 1, 1, 1, 1, 1, 1, 1});
    finish(g, add(g, &n));
    qs_tensor_t *x = iota(1, 4, 4, 0, 1); /* x[r][c] = 4r + c */
    expect(g, x, (float[]){10, 24, 51, 90}, 4);
    qs_tensor_free(x);
    qs_graph_free(g);
}
END_TEST

START_TEST(conv_dilation)
{
    qs_graph_t *g = graph(1, 5, 5);
    int in = 0;
    qs_node_t n = qs_node_init(QS_OP_CONV2D, "c", 1, &in);
    n.kh = n.kw = 3;
    n.dil_h = n.dil_w = 2;
    n.weight = t4(1, 1, 3, 3, (float[]){1, 2, 3, 4, 5, 6, 7, 8, 9});
    finish(g, add(g, &n));
    qs_tensor_t *x = iota(1, 5, 5, 0, 1);
    /* sum over ky, kx of (3ky + kx + 1) * x[2ky][2kx] = 16 + 184 + 532 */
    expect(g, x, (float[]){732}, 1);
    qs_tensor_free(x);
    qs_graph_free(g);
}
END_TEST

START_TEST(conv_rectangular)
{
    /* a 3x1 kernel, padding top/bottom only */
    qs_graph_t *g = graph(1, 3, 2);
    int in = 0;
    qs_node_t n = qs_node_init(QS_OP_CONV2D, "c", 1, &in);
    n.kh = 3;
    n.kw = 1;
    n.pad_top = n.pad_bottom = 1;
    n.weight = t4(1, 1, 3, 1, (float[]){1, 10, 100});
    finish(g, add(g, &n));
    qs_tensor_t *x = iota(1, 3, 2, 1, 1);
    expect(g, x, (float[]){310, 420, 531, 642, 53, 64}, 6);
    qs_tensor_free(x);
    qs_graph_free(g);
}
END_TEST

START_TEST(conv_groups)
{
    /* 4 channels in 2 groups, 1x1 output of a 2x2 input with a 2x2 kernel,
     * plus a 1x1 grouped conv (the direct-GEMM path) on a 2x2 map */
    qs_graph_t *g = graph(4, 2, 2);
    int in = 0;
    qs_node_t n = qs_node_init(QS_OP_CONV2D, "c", 1, &in);
    n.kh = n.kw = 2;
    n.groups = 2;
    float w[2 * 2 * 4];
    for (int i = 0; i < 16; i++)
        w[i] = (float)(i % 4 + 1) * (i < 8 ? 1.0f : 10.0f);
    n.weight = t4(2, 2, 2, 2, w);
    n.bias = vec(2, (float[]){1, -1});
    finish(g, add(g, &n));
    qs_tensor_t *x = iota(4, 2, 2, 0, 1); /* channel k holds 4k .. 4k+3 */
    /* out0 = sum_j (j+1) x0[j] + (j+1) x1[j] + 1 = (0+2+6+12) + (4+10+18+28) + 1 = 81
     * out1 = 10 * [(8+18+30+44) + (12+26+42+60)] - 1 = 2399 */
    expect(g, x, (float[]){81, 2399}, 2);
    qs_graph_free(g);

    g = graph(4, 2, 2);
    n = qs_node_init(QS_OP_CONV2D, "c", 1, &in);
    n.groups = 2;
    n.weight = t4(2, 2, 1, 1, (float[]){1, 2, 3, 4});
    finish(g, add(g, &n));
    /* out0 = x0 + 2 x1, out1 = 3 x2 + 4 x3 */
    expect(g, x, (float[]){8, 11, 14, 17, 72, 79, 86, 93}, 8);
    qs_tensor_free(x);
    qs_graph_free(g);
}
END_TEST

START_TEST(conv_depthwise)
{
    qs_graph_t *g = graph(2, 3, 3);
    int in = 0;
    qs_node_t n = qs_node_init(QS_OP_CONV2D, "dw", 1, &in);
    n.kh = n.kw = 3;
    n.pad_top = n.pad_left = n.pad_bottom = n.pad_right = 1;
    n.groups = 2;
    n.weight = t4(2, 1, 3, 3, (float[]){1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0});
    n.bias = vec(2, (float[]){0, 0.5f});
    finish(g, add(g, &n));
    qs_tensor_t *x = iota(2, 3, 3, 1, 1); /* ch0 1..9, ch1 10..18 */
    float want[18] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
    for (int i = 0; i < 9; i++)
        want[9 + i] = 2.0f * (float)(10 + i) + 0.5f;
    expect(g, x, want, 18);
    qs_tensor_free(x);
    qs_graph_free(g);

    /* channel multiplier 2 with stride 2: one input channel, two outputs */
    g = graph(1, 3, 3);
    n = qs_node_init(QS_OP_CONV2D, "dw", 1, &in);
    n.kh = n.kw = 3;
    n.stride_h = n.stride_w = 2;
    n.pad_top = n.pad_left = n.pad_bottom = n.pad_right = 1;
    n.weight = t4(2, 1, 3, 3, (float[]){1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, -1, 0, 0, 0, 0});
    finish(g, add(g, &n));
    x = iota(1, 3, 3, 1, 1);
    expect(g, x, (float[]){12, 16, 24, 28, -1, -3, -7, -9}, 8);
    qs_tensor_free(x);
    qs_graph_free(g);
}
END_TEST

START_TEST(linear_op)
{
    qs_graph_t *g = graph(3, 1, 1);
    int in = 0;
    qs_node_t n = qs_node_init(QS_OP_LINEAR, "fc", 1, &in);
    n.weight = tens(2, (int64_t[]){2, 3}, (float[]){1, 2, 3, 4, 5, 6});
    n.bias = vec(2, (float[]){0.5f, -1});
    add(g, &n);
    infer(g);
    qs_tensor_t *x = t4(1, 3, 1, 1, (float[]){1, 1, 2});
    expect(g, x, (float[]){9.5f, 20}, 2);
    qs_tensor_free(x);
    qs_graph_free(g);
}
END_TEST

START_TEST(batchnorm_op)
{
    qs_graph_t *g = graph(2, 1, 2);
    int in = 0;
    qs_node_t n = qs_node_init(QS_OP_BATCHNORM, "bn", 1, &in);
    n.eps = 0.25f;
    n.gamma = vec(2, (float[]){2, 2});
    n.beta = vec(2, (float[]){1, 0});
    n.mean = vec(2, (float[]){1, -1});
    n.var = vec(2, (float[]){3.75f, 15.75f}); /* sqrt(var + eps) = 2, 4 */
    finish(g, add(g, &n));
    qs_tensor_t *x = t4(1, 2, 1, 2, (float[]){3, -1, 5, -1});
    expect(g, x, (float[]){3, -1, 3, 0}, 4);
    qs_tensor_free(x);
    qs_graph_free(g);

    /* the documented formula, bit for bit, where it rounds */
    g = graph(1, 1, 3);
    n = qs_node_init(QS_OP_BATCHNORM, "bn", 1, &in);
    n.gamma = vec(1, (float[]){0.7f});
    n.beta = vec(1, (float[]){0.3f});
    n.mean = vec(1, (float[]){0.1f});
    n.var = vec(1, (float[]){1.3f});
    finish(g, add(g, &n));
    float xs[3] = {0.2f, -1.7f, 3.3f}, want[3];
    volatile float s = 0.7f / sqrtf(1.3f + 1e-5f);
    for (int i = 0; i < 3; i++) {
        volatile float d = xs[i] - 0.1f;
        volatile float p = d * s;
        want[i] = p + 0.3f;
    }
    x = t4(1, 1, 1, 3, xs);
    expect(g, x, want, 3);
    qs_tensor_free(x);
    qs_graph_free(g);
}
END_TEST

START_TEST(activations)
{
    float xs[7] = {-3, -1, 0, 0.5f, 2, 6, 7};
    qs_tensor_t *x = t4(1, 7, 1, 1, xs);
    int in = 0;

    qs_graph_t *g = graph(7, 1, 1);
    finish(g, unary(g, QS_OP_RELU, "r", 0));
    expect(g, x, (float[]){0, 0, 0, 0.5f, 2, 6, 7}, 7);
    qs_graph_free(g);

    g = graph(7, 1, 1);
    finish(g, unary(g, QS_OP_RELU6, "r6", 0));
    expect(g, x, (float[]){0, 0, 0, 0.5f, 2, 6, 6}, 7);
    qs_graph_free(g);

    g = graph(7, 1, 1);
    qs_node_t n = qs_node_init(QS_OP_CLIP, "clip", 1, &in);
    n.clip_min = -1;
    n.clip_max = 2;
    finish(g, add(g, &n));
    expect(g, x, (float[]){-1, -1, 0, 0.5f, 2, 2, 2}, 7);
    qs_graph_free(g);
    qs_tensor_free(x);

    /* NaN passes through relu6 */
    g = graph(2, 1, 1);
    finish(g, unary(g, QS_OP_RELU6, "r6", 0));
    x = t4(1, 2, 1, 1, (float[]){NAN, -2});
    expect(g, x, (float[]){NAN, 0}, 2);
    qs_tensor_free(x);
    qs_graph_free(g);
}
END_TEST

START_TEST(add_concat)
{
    /* add of three inputs: x + relu(x) + clip(x) */
    qs_graph_t *g = graph(1, 1, 3);
    int r = unary(g, QS_OP_RELU, "r", 0);
    int in = 0;
    qs_node_t c = qs_node_init(QS_OP_CLIP, "clip", 1, &in);
    c.clip_min = -1;
    c.clip_max = 1;
    int cl = add(g, &c);
    qs_node_t a = qs_node_init(QS_OP_ADD, "add", 3, (int[]){0, r, cl});
    finish(g, add(g, &a));
    qs_tensor_t *x = t4(1, 1, 1, 3, (float[]){-2, 0.5f, 3});
    expect(g, x, (float[]){-3, 1.5f, 7}, 3);
    qs_tensor_free(x);
    qs_graph_free(g);

    /* concat of (1,1,2) and relu of it... along channels: [x ; relu(x) ; x] */
    g = graph(1, 1, 2);
    r = unary(g, QS_OP_RELU, "r", 0);
    qs_node_t k = qs_node_init(QS_OP_CONCAT, "cat", 3, (int[]){0, r, 0});
    finish(g, add(g, &k));
    x = t4(1, 1, 1, 2, (float[]){-1, 2});
    expect(g, x, (float[]){-1, 2, 0, 2, -1, 2}, 6);
    qs_tensor_free(x);
    qs_graph_free(g);
}
END_TEST

START_TEST(pools)
{
    int in = 0;
    qs_graph_t *g = graph(1, 3, 3);
    qs_node_t n = qs_node_init(QS_OP_MAXPOOL, "mp", 1, &in);
    n.kh = n.kw = 2;
    n.stride_h = n.stride_w = 2;
    n.pad_top = n.pad_left = n.pad_bottom = n.pad_right = 1;
    finish(g, add(g, &n));
    qs_tensor_t *x = iota(1, 3, 3, -1, -1); /* -1 .. -9: padding must never win */
    expect(g, x, (float[]){-1, -2, -4, -5}, 4);
    qs_tensor_free(x);
    qs_graph_free(g);

    g = graph(1, 3, 3);
    n.op = QS_OP_AVGPOOL;
    snprintf(n.name, sizeof n.name, "ap");
    finish(g, add(g, &n));
    x = iota(1, 3, 3, 1, 1);
    expect(g, x, (float[]){1, 2.5f, 5.5f, 7}, 4); /* padding not counted */
    qs_graph_free(g);

    /* 3x3 stride 1 avgpool, padding 1: the centre divides by 9, a corner by 4 */
    g = graph(1, 3, 3);
    n = qs_node_init(QS_OP_AVGPOOL, "ap", 1, &in);
    n.kh = n.kw = 3;
    n.pad_top = n.pad_left = n.pad_bottom = n.pad_right = 1;
    finish(g, add(g, &n));
    expect(g, x, (float[]){3, 3.5f, 4, 4.5f, 5, 5.5f, 6, 6.5f, 7}, 9);
    qs_tensor_free(x);
    qs_graph_free(g);

    g = graph(2, 2, 2);
    finish(g, unary(g, QS_OP_GAP, "gap", 0));
    x = t4(1, 2, 2, 2, (float[]){1, 2, 3, 4, -1, 0.5f, 0.25f, 8});
    expect(g, x, (float[]){2.5f, 7.75f / 4.0f}, 2);
    qs_tensor_free(x);
    qs_graph_free(g);
}
END_TEST

START_TEST(reshape_softmax)
{
    /* flatten -> reshape (8, 1, 1): order kept */
    qs_graph_t *g = graph(2, 2, 2);
    int f = unary(g, QS_OP_FLATTEN, "flat", 0);
    qs_node_t r = qs_node_init(QS_OP_RESHAPE, "rs", 1, &f);
    r.reshape_ndim = 3;
    r.reshape[0] = 8;
    r.reshape[1] = r.reshape[2] = 1;
    add(g, &r);
    infer(g);
    qs_tensor_t *x = iota(2, 2, 2, 3, 0.5f);
    expect(g, x, qs_f32(x), 8);
    qs_tensor_free(x);
    qs_graph_free(g);

    g = graph(4, 1, 1);
    f = unary(g, QS_OP_FLATTEN, "flat", 0);
    unary(g, QS_OP_SOFTMAX, "sm", f);
    infer(g);
    float xs[4] = {1, 2, 3, -1}, want[4];
    volatile float e[4], s = 0.0f;
    for (int i = 0; i < 4; i++) {
        e[i] = expf(xs[i] - 3.0f);
        s = s + e[i];
    }
    for (int i = 0; i < 4; i++)
        want[i] = e[i] / s;
    x = t4(1, 4, 1, 1, xs);
    expect(g, x, want, 4);
    ck_assert_float_eq_tol(want[2], 0.6572330, 1e-6); /* e^0 / (e^-2 + e^-1 + 1 + e^-4) */
    qs_tensor_free(x);
    qs_graph_free(g);
}
END_TEST

/* +-Inf and NaN through conv + batchnorm + relu6, where the fast path runs
 * the batchnorm and relu6 inside the conv kernel: the same results as the
 * separate nodes of the reference (rows of 20 reach the vector code and its
 * tail). */
START_TEST(nonfinite_fused)
{
    for (int groups = 1; groups <= 2; groups++) {
        /* groups 2: depthwise kernel; groups 1 with 2 channels: the GEMM kernel */
        qs_graph_t *g = graph(2, 1, 20);
        int in = 0;
        qs_node_t n = qs_node_init(QS_OP_CONV2D, "c", 1, &in);
        n.groups = groups;
        n.weight = groups == 2 ? t4(2, 1, 1, 1, (float[]){1, 2}) : t4(2, 2, 1, 1, (float[]){1, 0, 0, 2});
        n.bias = vec(2, (float[]){0.5f, -0.5f});
        int c = add(g, &n);
        qs_node_t b = qs_node_init(QS_OP_BATCHNORM, "bn", 1, &c);
        b.eps = 0.25f;
        b.gamma = vec(2, (float[]){2, 1});
        b.beta = vec(2, (float[]){0, 1});
        b.mean = vec(2, (float[]){0.5f, 0});
        b.var = vec(2, (float[]){3.75f, 0.75f}); /* scale 1 and 1 */
        int bn_ = add(g, &b);
        finish(g, unary(g, QS_OP_RELU6, "act", bn_));
        qs_tensor_t *x = t4(1, 2, 1, 20, NULL);
        float want[40];
        for (int i = 0; i < 40; i++) {
            float v = (float)(i % 9) - 4.0f;
            if (i % 7 == 3)
                v = INFINITY;
            if (i % 11 == 5)
                v = -INFINITY;
            if (i == 19 || i == 30)
                v = NAN;
            qs_f32(x)[i] = v;
        }
        for (int i = 0; i < 40; i++) {
            /* acc as the reference adds it (for groups 1, 0 * Inf is NaN);
             * channel 0: relu6(acc + 0.5 - 0.5), channel 1: relu6(acc - 0.5 + 1) */
            const float *xv = qs_f32(x);
            int p = i % 20;
            float acc = i < 20 ? (groups == 2 ? xv[p] : xv[p] * 1.0f + xv[20 + p] * 0.0f)
                               : (groups == 2 ? 2.0f * xv[20 + p] : xv[p] * 0.0f + xv[20 + p] * 2.0f);
            float u = i < 20 ? acc : acc + 0.5f;
            want[i] = u != u ? u : u < 0 ? 0.0f : u > 6 ? 6.0f : u;
        }
        expect(g, x, want, 40);
        qs_tensor_free(x);
        qs_graph_free(g);
    }
}
END_TEST

START_TEST(mask_applied)
{
    qs_graph_t *g = graph(3, 1, 1);
    int in = 0;
    qs_node_t n = qs_node_init(QS_OP_LINEAR, "fc", 1, &in);
    n.weight = tens(2, (int64_t[]){2, 3}, (float[]){1, 2, 3, 4, 5, 6});
    n.mask = tens(2, (int64_t[]){2, 3}, (float[]){1, 0, 1, 0, 1, 1});
    add(g, &n);
    infer(g);
    qs_tensor_t *x = t4(1, 3, 1, 1, (float[]){1, 1, 2});
    expect(g, x, (float[]){7, 17}, 2);
    qs_tensor_free(x);
    qs_graph_free(g);
}
END_TEST

/* ---- random graphs --------------------------------------------------------------------------- */

/* MobileNet-style: stem conv3x3 + BN + ReLU6, depthwise-separable blocks
 * (dw3x3 + BN + ReLU6 -> pw1x1 + BN + ReLU6), GAP, linear. */
static qs_graph_t *mobilenet(void)
{
    qs_graph_t *g = qs_graph_create("dwsep", 1, 28, 28);
    uint64_t s = 1;
    int x = conv(g, "stem", 0, 1, 8, 3, 3, 1, 1, 1, false, s++);
    x = unary(g, QS_OP_RELU6, "stem_act", bn(g, "stem_bn", x, 8, s += 10));
    static const struct {
        int64_t cin, cout;
        int stride;
    } blocks[] = {{8, 16, 2}, {16, 16, 1}, {16, 32, 2}, {32, 32, 1}};
    for (int b = 0; b < 4; b++) {
        char nm[32];
        snprintf(nm, sizeof nm, "b%d_dw", b);
        x = conv(g, nm, x, blocks[b].cin, blocks[b].cin, 3, 3, blocks[b].stride, 1, (int)blocks[b].cin, false, s++);
        snprintf(nm, sizeof nm, "b%d_dwbn", b);
        x = bn(g, nm, x, blocks[b].cin, s += 10);
        snprintf(nm, sizeof nm, "b%d_dwact", b);
        x = unary(g, QS_OP_RELU6, nm, x);
        snprintf(nm, sizeof nm, "b%d_pw", b);
        x = conv(g, nm, x, blocks[b].cin, blocks[b].cout, 1, 1, 1, 0, 1, false, s++);
        snprintf(nm, sizeof nm, "b%d_pwbn", b);
        x = bn(g, nm, x, blocks[b].cout, s += 10);
        snprintf(nm, sizeof nm, "b%d_pwact", b);
        x = unary(g, QS_OP_RELU6, nm, x);
    }
    x = unary(g, QS_OP_GAP, "gap", x);
    x = unary(g, QS_OP_FLATTEN, "flat", x);
    linear(g, "fc", x, 32, 10, s++);
    infer(g);
    return g;
}

/* ResNet-style: conv + BN + ReLU, a stride-2 residual block with a 1x1
 * projection shortcut, an identity block, maxpool, avgpool, a concat, GAP,
 * linear, softmax; plus a dilated conv, a grouped conv, a 1x1 stride-2 conv
 * and a rectangular kernel with asymmetric padding. */
static qs_graph_t *resnet(bool softmax)
{
    qs_graph_t *g = qs_graph_create("res", 2, 20, 18);
    uint64_t s = 500;
    int x = conv(g, "stem", 0, 2, 8, 3, 3, 1, 1, 1, true, s++);
    x = unary(g, QS_OP_RELU, "stem_relu", bn(g, "stem_bn", x, 8, s += 10));
    /* block 1: stride 2, projection */
    int a = conv(g, "b1_c1", x, 8, 16, 3, 3, 2, 1, 1, false, s++);
    a = unary(g, QS_OP_RELU, "b1_r1", bn(g, "b1_bn1", a, 16, s += 10));
    a = conv(g, "b1_c2", a, 16, 16, 3, 3, 1, 1, 1, false, s++);
    a = bn(g, "b1_bn2", a, 16, s += 10);
    int p = conv(g, "b1_proj", x, 8, 16, 1, 1, 2, 0, 1, false, s++);
    p = bn(g, "b1_pbn", p, 16, s += 10);
    qs_node_t ad = qs_node_init(QS_OP_ADD, "b1_add", 2, (int[]){a, p});
    x = unary(g, QS_OP_RELU, "b1_out", add(g, &ad));
    /* block 2: identity */
    a = conv(g, "b2_c1", x, 16, 16, 3, 3, 1, 1, 2, false, s++); /* grouped, non-depthwise */
    a = unary(g, QS_OP_RELU, "b2_r1", bn(g, "b2_bn1", a, 16, s += 10));
    {
        qs_node_t n = qs_node_init(QS_OP_CONV2D, "b2_dil", 1, &a);
        n.kh = n.kw = 3;
        n.dil_h = n.dil_w = 2;
        n.pad_top = n.pad_left = n.pad_bottom = n.pad_right = 2;
        n.weight = rnd(4, (int64_t[]){16, 16, 3, 3}, 0.2f, s++);
        a = add(g, &n);
    }
    ad = qs_node_init(QS_OP_ADD, "b2_add", 2, (int[]){a, x});
    x = unary(g, QS_OP_RELU, "b2_out", add(g, &ad));
    /* branches: rectangular conv with asymmetric padding, maxpool, avgpool -> concat */
    qs_node_t r = qs_node_init(QS_OP_CONV2D, "rect", 1, &x);
    r.kh = 3;
    r.kw = 1;
    r.pad_top = 2;
    r.pad_bottom = 0;
    r.weight = rnd(4, (int64_t[]){8, 16, 3, 1}, 0.3f, s++);
    r.bias = rnd(1, (int64_t[]){8}, 0.1f, s++);
    int rc_ = add(g, &r);
    qs_node_t mp = qs_node_init(QS_OP_MAXPOOL, "mp", 1, &x);
    mp.kh = mp.kw = 3;
    mp.pad_top = mp.pad_left = mp.pad_bottom = mp.pad_right = 1;
    int m = add(g, &mp);
    qs_node_t ap = qs_node_init(QS_OP_AVGPOOL, "ap", 1, &x);
    ap.kh = ap.kw = 3;
    ap.pad_top = ap.pad_left = ap.pad_bottom = ap.pad_right = 1;
    int av = add(g, &ap);
    qs_node_t cat = qs_node_init(QS_OP_CONCAT, "cat", 3, (int[]){rc_, m, av});
    x = add(g, &cat);
    x = conv(g, "down", x, 40, 24, 1, 1, 2, 0, 1, true, s++); /* 1x1 stride 2: im2col path */
    x = unary(g, QS_OP_GAP, "gap", x);
    x = unary(g, QS_OP_FLATTEN, "flat", x);
    linear(g, "fc", x, 24, 10, s++);
    if (softmax)
        unary(g, QS_OP_SOFTMAX, "prob", g->nnodes - 1);
    infer(g);
    return g;
}

/* Per-sample sizes that are not multiples of 16 floats, so that the samples
 * of a batch sit at every alignment: 1x1 convs read the input directly
 * (the direct sgemm path) and a linear layer reads a 35-feature vector. */
static qs_graph_t *odd_sizes(void)
{
    qs_graph_t *g = qs_graph_create("odd", 3, 7, 5);
    int x = conv(g, "pw1", 0, 3, 6, 1, 1, 1, 0, 1, true, 70);
    x = unary(g, QS_OP_RELU, "r1", x);
    x = conv(g, "pw2", x, 6, 7, 1, 1, 1, 0, 1, false, 71);
    x = conv(g, "k3", x, 7, 7, 3, 3, 2, 1, 1, false, 72); /* 7x4x3: 84 floats */
    x = unary(g, QS_OP_FLATTEN, "flat", x);
    linear(g, "fc", x, 84, 9, 73);
    infer(g);
    return g;
}

static qs_tensor_t *inputs(const qs_graph_t *g, int64_t n, uint64_t stream)
{
    qs_tensor_t *x = t4(n, g->in_c, g->in_h, g->in_w, NULL);
    fill(qs_f32(x), x->size, 1.0f, stream);
    return x;
}

/* max |a - b| / max |b| */
static double rel_err(const qs_tensor_t *a, const qs_tensor_t *b)
{
    double m = 0, d = 0;
    for (int64_t i = 0; i < b->size; i++) {
        m = fmax(m, fabs(qs_f32(b)[i]));
        d = fmax(d, fabs((double)qs_f32(a)[i] - qs_f32(b)[i]));
    }
    return m > 0 ? d / m : d;
}

static void fast_vs_ref(qs_graph_t *g)
{
    qs_tensor_t *x = inputs(g, 9, 3);
    qs_tensor_t *r = run(g, true, NULL, x), *f = run(g, false, NULL, x);
    double e = rel_err(f, r);
    REQUIRE_MSG(e <= 1e-5, "graph %s: fast path differs from the reference by %.3g (relative to the largest output)",
                g->name, e);
    /* the logits are not degenerate: the samples differ */
    REQUIRE(qs_f32(r)[0] != qs_f32(r)[g->num_classes]);
    qs_tensor_free(x);
    qs_tensor_free(r);
    qs_tensor_free(f);
}

START_TEST(fast_matches_reference)
{
    qs_graph_t *g = mobilenet();
    fast_vs_ref(g);
    qs_graph_free(g);
    g = resnet(false);
    fast_vs_ref(g);
    qs_graph_free(g);
    g = resnet(true);
    fast_vs_ref(g);
    qs_graph_free(g);
    /* the default architectures (seeded random weights) */
    for (const char *const *z = qs_zoo_names(); *z; z++) {
        ck_assert_int_eq(qs_zoo_build(*z, 3, &g), QS_OK);
        fast_vs_ref(g);
        qs_graph_free(g);
    }
}
END_TEST

/* The fast path gives the reference's bits where it promises them: convs
 * with one input channel per group (depthwise with a multiplier, strided,
 * dilated, rectangular, asymmetric padding; a stem on a one-channel image). */
START_TEST(depthwise_fast_is_exact)
{
    qs_graph_t *g = qs_graph_create("dw", 6, 11, 9);
    int x = conv(g, "dw", 0, 6, 12, 3, 5, 2, 2, 6, true, 9); /* multiplier 2, stride 2, 3x5 */
    finish(g, x);
    qs_tensor_t *in = inputs(g, 3, 4);
    qs_tensor_t *r = run(g, true, NULL, in), *f = run(g, false, NULL, in);
    ck_assert_int_eq(memcmp(r->data, f->data, (size_t)r->size * sizeof(float)), 0);
    qs_tensor_free(in);
    qs_tensor_free(r);
    qs_tensor_free(f);
    qs_graph_free(g);

    /* dilation 2, stride 3 by 2, asymmetric padding, no bias */
    g = qs_graph_create("dw2", 4, 13, 10);
    {
        int in0 = 0;
        qs_node_t n = qs_node_init(QS_OP_CONV2D, "dw", 1, &in0);
        n.kh = 3;
        n.kw = 2;
        n.stride_h = 3;
        n.stride_w = 2;
        n.dil_h = n.dil_w = 2;
        n.pad_top = 2;
        n.pad_left = 0;
        n.pad_bottom = 1;
        n.pad_right = 3;
        n.groups = 4;
        n.weight = rnd(4, (int64_t[]){4, 1, 3, 2}, 0.5f, 11);
        finish(g, add(g, &n));
    }
    in = inputs(g, 3, 6);
    r = run(g, true, NULL, in);
    f = run(g, false, NULL, in);
    ck_assert_int_eq(memcmp(r->data, f->data, (size_t)r->size * sizeof(float)), 0);
    qs_tensor_free(in);
    qs_tensor_free(r);
    qs_tensor_free(f);
    qs_graph_free(g);

    g = qs_graph_create("stem", 1, 28, 28);
    finish(g, conv(g, "stem", 0, 1, 16, 3, 3, 1, 1, 1, true, 10));
    in = inputs(g, 2, 5);
    r = run(g, true, NULL, in);
    f = run(g, false, NULL, in);
    ck_assert_int_eq(memcmp(r->data, f->data, (size_t)r->size * sizeof(float)), 0);
    qs_tensor_free(in);
    qs_tensor_free(r);
    qs_tensor_free(f);
    qs_graph_free(g);
}
END_TEST

/* Same sample, same bits: whatever N, the position in the batch and the pool. */
static void batch_independent(qs_graph_t *g, bool reference)
{
    const int64_t n = 37;
    qs_tensor_t *x = inputs(g, n, 8);
    qs_tensor_t *base = run(g, reference, NULL, x);
    qs_pool_t *p1 = qs_pool_create(1), *p2 = qs_pool_create(2);
    ck_assert_ptr_nonnull(p1);
    ck_assert_ptr_nonnull(p2);
    qs_tensor_t *y1 = run(g, reference, p1, x), *y2 = run(g, reference, p2, x);
    ck_assert_int_eq(memcmp(base->data, y1->data, (size_t)base->size * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(base->data, y2->data, (size_t)base->size * sizeof(float)), 0);
    const int64_t nc = g->num_classes, chw = g->in_c * g->in_h * g->in_w;
    /* each sample alone, and a batch of 5 taken from the middle */
    qs_tensor_t *one = t4(1, g->in_c, g->in_h, g->in_w, NULL);
    for (int64_t s = 0; s < n; s += (s < 4 ? 1 : 7)) {
        memcpy(one->data, qs_f32(x) + s * chw, (size_t)chw * sizeof(float));
        qs_tensor_t *y = run(g, reference, s % 2 ? p2 : NULL, one);
        REQUIRE_MSG(memcmp(y->data, qs_f32(base) + s * nc, (size_t)nc * sizeof(float)) == 0,
                    "sample %lld alone differs from sample %lld of a batch of %lld", (long long)s, (long long)s,
                    (long long)n);
        qs_tensor_free(y);
    }
    qs_tensor_t *five = t4(5, g->in_c, g->in_h, g->in_w, NULL);
    memcpy(five->data, qs_f32(x) + 30 * chw, (size_t)(5 * chw) * sizeof(float));
    qs_tensor_t *y = run(g, reference, p2, five);
    ck_assert_int_eq(memcmp(y->data, qs_f32(base) + 30 * nc, (size_t)(5 * nc) * sizeof(float)), 0);
    qs_tensor_free(y);
    qs_tensor_free(five);
    qs_tensor_free(one);
    qs_tensor_free(x);
    qs_tensor_free(base);
    qs_tensor_free(y1);
    qs_tensor_free(y2);
    qs_pool_free(p1);
    qs_pool_free(p2);
}

START_TEST(bitwise_batch_and_threads)
{
    qs_graph_t *g = mobilenet();
    batch_independent(g, false);
    batch_independent(g, true);
    qs_graph_free(g);
    g = resnet(true);
    batch_independent(g, false);
    qs_graph_free(g);
    ck_assert_int_eq(qs_zoo_build("fmnist-dwsep", 4, &g), QS_OK);
    batch_independent(g, false);
    qs_graph_free(g);
    g = odd_sizes();
    batch_independent(g, false);
    fast_vs_ref(g);
    qs_graph_free(g);
}
END_TEST

/* One engine, forwards of growing and shrinking N, and N = 0. */
START_TEST(engine_reuse)
{
    qs_graph_t *g = resnet(false);
    qs_tensor_t *x = inputs(g, 40, 12);
    qs_tensor_t *want = run(g, false, NULL, x);
    qs_engine_t *e = NULL;
    ck_assert_int_eq(qs_engine_create(g, NULL, &e), QS_OK);
    const int64_t chw = g->in_c * g->in_h * g->in_w;
    int64_t ns[] = {3, 40, 1, 0, 17};
    for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
        qs_tensor_t v = *x;
        v.shape[0] = ns[k];
        v.size = ns[k] * chw;
        const qs_tensor_t *y;
        ck_assert_int_eq(qs_engine_forward(e, &v, &y), QS_OK);
        ck_assert_int_eq(y->shape[0], ns[k]);
        ck_assert_int_eq(memcmp(y->data, want->data, (size_t)(ns[k] * g->num_classes) * sizeof(float)), 0);
    }
    qs_engine_free(e);
    qs_tensor_free(want);
    qs_tensor_free(x);
    qs_graph_free(g);
}
END_TEST

START_TEST(bad_input)
{
    qs_graph_t *g = mobilenet();
    qs_engine_t *e = NULL;
    ck_assert_int_eq(qs_engine_create(g, NULL, &e), QS_OK);
    qs_tensor_t *x = t4(2, 1, 28, 27, NULL);
    const qs_tensor_t *y;
    ck_assert_int_eq(qs_engine_forward(e, x, &y), QS_ERR_SHAPE);
    ck_assert_msg(strstr(qs_last_error(), "[2, 1, 28, 27]") && strstr(qs_last_error(), "[N, 1, 28, 28]"), "%s",
                  qs_last_error());
    qs_tensor_free(x);
    qs_engine_free(e);
    qs_graph_free(g);

    /* a graph that was never validated */
    g = qs_graph_create("raw", 1, 4, 4);
    unary(g, QS_OP_RELU, "r", 0);
    e = NULL;
    ck_assert_int_eq(qs_engine_create(g, NULL, &e), QS_ERR_INVALID);
    ck_assert_ptr_null(e);
    ck_assert_msg(strstr(qs_last_error(), "'r'") && strstr(qs_last_error(), "qs_graph_infer"), "%s",
                  qs_last_error());
    qs_graph_free(g);
}
END_TEST

/* ---- the hook ---------------------------------------------------------------------------------- */

typedef struct {
    const qs_graph_t *g;
    _Atomic int calls;
    int order_ok;
    int next;          /* node expected next (serial runs), -1: unchecked */
    _Atomic int64_t samples; /* samples seen at node 0 */
    int fail_node;     /* fail here, or -1 */
    int zero_node;     /* zero this node's output, or -1 */
    char bad[256];
} hook_ctx_t;

static void hook_reset(hook_ctx_t *h, const qs_graph_t *g, int next, int fail_node, int zero_node)
{
    h->g = g;
    atomic_store(&h->calls, 0);
    h->order_ok = 1;
    h->next = next;
    atomic_store(&h->samples, 0);
    h->fail_node = fail_node;
    h->zero_node = zero_node;
    h->bad[0] = '\0';
}

static int hook(void *ctx, int node, qs_tensor_t *y, int64_t sample0, int thread)
{
    hook_ctx_t *h = ctx;
    (void)thread;
    h->calls++;
    if (h->next >= 0) {
        if (node != h->next && !h->bad[0])
            snprintf(h->bad, sizeof h->bad, "hook: node %d came where node %d was expected", node, h->next);
        h->next = (node + 1) % h->g->nnodes;
    }
    const qs_node_t *n = &h->g->nodes[node];
    bool shape_ok = y->dtype == QS_F32 && y->ndim == 1 + n->out_ndim && y->shape[0] >= 1;
    for (int k = 0; shape_ok && k < n->out_ndim; k++)
        shape_ok = y->shape[1 + k] == n->out_shape[k];
    if (!shape_ok && !h->bad[0])
        snprintf(h->bad, sizeof h->bad, "hook: node %d: view of rank %d does not have the node's shape", node,
                 y->ndim);
    if (node == 0)
        h->samples += y->shape[0];
    (void)sample0;
    if (node == h->fail_node)
        return qs_error(QS_ERR_NUMERIC, "hook refuses node %d ('%s')", node, n->name);
    if (node == h->zero_node)
        memset(y->data, 0, (size_t)y->size * sizeof(float));
    return QS_OK;
}

START_TEST(hook_sees_every_node)
{
    qs_graph_t *g = mobilenet();
    qs_tensor_t *x = inputs(g, 70, 21);
    qs_tensor_t *want = run(g, false, NULL, x);
    qs_engine_t *e = NULL;
    ck_assert_int_eq(qs_engine_create(g, NULL, &e), QS_OK);
    hook_ctx_t h;
    hook_reset(&h, g, 0, -1, -1);
    qs_engine_set_hook(e, hook, &h);
    const qs_tensor_t *y;
    ck_assert_int_eq(qs_engine_forward(e, x, &y), QS_OK);
    ck_assert_msg(!h.bad[0], "%s", h.bad);
    ck_assert_int_eq(h.samples, 70);
    ck_assert_int_eq(h.calls % g->nnodes, 0);
    ck_assert_int_eq(h.next, 0); /* every block saw the last node */
    /* a hook that changes nothing changes no bit (the hook-less run fuses) */
    ck_assert_int_eq(memcmp(y->data, want->data, (size_t)want->size * sizeof(float)), 0);

    /* zero the GAP output: the logits become the linear bias */
    hook_reset(&h, g, 0, -1, qs_graph_find(g, "gap"));
    ck_assert_int_eq(qs_engine_forward(e, x, &y), QS_OK);
    const float *bias = qs_f32(g->nodes[qs_graph_find(g, "fc")].bias);
    for (int64_t s = 0; s < 70; s++)
        for (int c = 0; c < 10; c++)
            REQUIRE(qs_f32(y)[s * 10 + c] == bias[c]);

    /* hook removed: back to the plain result */
    qs_engine_set_hook(e, NULL, NULL);
    ck_assert_int_eq(qs_engine_forward(e, x, &y), QS_OK);
    ck_assert_int_eq(memcmp(y->data, want->data, (size_t)want->size * sizeof(float)), 0);
    qs_engine_free(e);

    /* on two threads every sample passes every node once */
    qs_pool_t *p = qs_pool_create(2);
    qs_engine_opts_t o = {p, false};
    ck_assert_int_eq(qs_engine_create(g, &o, &e), QS_OK);
    hook_reset(&h, g, -1, -1, -1);
    qs_engine_set_hook(e, hook, &h);
    ck_assert_int_eq(qs_engine_forward(e, x, &y), QS_OK);
    ck_assert_msg(!h.bad[0], "%s", h.bad);
    ck_assert_int_eq(memcmp(y->data, want->data, (size_t)want->size * sizeof(float)), 0);
    qs_engine_free(e);
    qs_pool_free(p);
    qs_tensor_free(want);
    qs_tensor_free(x);
    qs_graph_free(g);
}
END_TEST

/* The hook sees node outputs in order within a block, on a graph whose
 * values are known: relu then a modification visible downstream. */
static int double_relu(void *ctx, int node, qs_tensor_t *y, int64_t sample0, int thread)
{
    (void)sample0;
    (void)thread;
    int *seen = ctx;
    seen[node]++;
    if (node == 1)
        for (int64_t i = 0; i < y->size; i++)
            qs_f32(y)[i] *= 2.0f;
    return QS_OK;
}

START_TEST(hook_modifies)
{
    qs_graph_t *g = graph(3, 1, 1);
    int r = unary(g, QS_OP_RELU, "r", 0);
    int in = 0;
    qs_node_t a = qs_node_init(QS_OP_ADD, "add", 2, (int[]){r, in});
    finish(g, add(g, &a));
    qs_tensor_t *x = t4(2, 3, 1, 1, (float[]){-1, 2, 3, 4, -5, 0.5f});
    qs_engine_t *e = NULL;
    ck_assert_int_eq(qs_engine_create(g, NULL, &e), QS_OK);
    int seen[4] = {0};
    qs_engine_set_hook(e, double_relu, seen);
    const qs_tensor_t *y;
    ck_assert_int_eq(qs_engine_forward(e, x, &y), QS_OK);
    float want[6] = {-1, 6, 9, 12, -5, 1.5f}; /* 2 relu(x) + x */
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(qs_f32(y)[i], want[i]);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(seen[i], 1);
    qs_engine_free(e);
    qs_tensor_free(x);
    qs_graph_free(g);
}
END_TEST

START_TEST(hook_error_propagates)
{
    qs_graph_t *g = resnet(false);
    qs_tensor_t *x = inputs(g, 50, 2);
    int node = qs_graph_find(g, "b1_add");
    qs_pool_t *pl[2] = {NULL, qs_pool_create(2)};
    for (int k = 0; k < 2; k++) {
        qs_engine_opts_t o = {pl[k], false};
        qs_engine_t *e = NULL;
        ck_assert_int_eq(qs_engine_create(g, &o, &e), QS_OK);
        hook_ctx_t h;
        hook_reset(&h, g, -1, node, -1);
        qs_engine_set_hook(e, hook, &h);
        const qs_tensor_t *y = NULL;
        qs_clear_error();
        ck_assert_int_eq(qs_engine_forward(e, x, &y), QS_ERR_NUMERIC);
        ck_assert_ptr_null(y);
        char want[64];
        snprintf(want, sizeof want, "hook refuses node %d ('b1_add')", node);
        ck_assert_str_eq(qs_last_error(), want);
        qs_engine_free(e);
    }
    qs_pool_free(pl[1]);
    qs_tensor_free(x);
    qs_graph_free(g);
}
END_TEST

/* ---- qs_eval ----------------------------------------------------------------------------------- */

/* The logits are the images themselves: input (1, 1, 6) -> flatten. */
static const float eval_images[8][6] = {
    {0, 0, 5, 0, 0, 0}, /* label 2: rank 0 */
    {1, 2, 3, 4, 5, 6}, /* label 0: rank 5 */
    {6, 5, 4, 3, 2, 1}, /* label 1: rank 1 */
    {1, 1, 1, 1, 1, 1}, /* label 3: all tied, three before it, rank 3 */
    {2, 2, 1, 1, 1, 0}, /* label 4: two larger, two tied before it, rank 4 */
    {3, 4, 4, 4, 4, 4}, /* label 0: five larger, rank 5 */
    {3, 4, 4, 4, 4, 3}, /* label 0: rank 4 */
    {9, 9, 0, 0, 0, 0}, /* label 1: tied for first with class 0, which comes first: rank 1 */
};
static int32_t eval_labels[8] = {2, 0, 1, 3, 4, 0, 0, 1};

typedef struct {
    int calls;
    int64_t last_done, total;
    int stop_at;
} prog_t;

static int on_progress(const qs_progress_t *p, void *user)
{
    prog_t *pr = user;
    pr->calls++;
    ck_assert_str_eq(p->task, "eval");
    ck_assert_int_gt(p->done, pr->last_done);
    pr->last_done = p->done;
    pr->total = p->total;
    return pr->calls == pr->stop_at;
}

START_TEST(eval_top1_top5)
{
    qs_graph_t *g = graph(1, 1, 6);
    finish(g, 0);
    ck_assert_int_eq(g->num_classes, 6);
    float px[48];
    memcpy(px, eval_images, sizeof px);
    qs_dataset_t d;
    memset(&d, 0, sizeof d);
    d.n = 8;
    d.c = 1;
    d.h = 1;
    d.w = 6;
    d.f32 = px;
    d.labels = eval_labels;
    d.num_classes = 6;
    snprintf(d.source, sizeof d.source, "synthetic");
    qs_pool_t *p = qs_pool_create(2);
    int64_t batches[] = {0, 3, 8, 100};
    for (size_t k = 0; k < sizeof batches / sizeof *batches; k++) {
        qs_engine_opts_t o = {k % 2 ? p : NULL, k == 2};
        prog_t pr = {0, 0, 0, -1};
        qs_progress_cb_t cb = {on_progress, &pr, 0};
        qs_eval_t r;
        int rc = qs_eval(g, &d, &o, batches[k], &cb, &r);
        ck_assert_msg(rc == QS_OK, "qs_eval: %s", qs_last_error());
        ck_assert_int_eq(r.images, 8);
        ck_assert_double_eq(r.top1, 1.0 / 8.0);
        ck_assert_double_eq(r.top5, 6.0 / 8.0);
        ck_assert(r.seconds > 0 && r.img_s > 0);
        ck_assert_int_eq(pr.calls, batches[k] == 3 ? 3 : 1);
        ck_assert_int_eq(pr.last_done, 8);
        ck_assert_int_eq(pr.total, 8);
    }
    /* cancellation at the second batch */
    prog_t pr = {0, 0, 0, 2};
    qs_progress_cb_t cb = {on_progress, &pr, 0};
    qs_eval_t r;
    ck_assert_int_eq(qs_eval(g, &d, NULL, 3, &cb, &r), QS_ERR_INTERRUPTED);
    ck_assert_int_eq(pr.calls, 2);

    /* a label the model cannot produce */
    eval_labels[5] = 6;
    ck_assert_int_eq(qs_eval(g, &d, NULL, 0, NULL, &r), QS_ERR_INVALID);
    ck_assert_msg(strstr(qs_last_error(), "image 5") && strstr(qs_last_error(), "label 6"), "%s", qs_last_error());
    eval_labels[5] = 0;

    /* images of the wrong size */
    d.w = 5;
    ck_assert_int_lt(qs_eval(g, &d, NULL, 0, NULL, &r), 0);
    qs_pool_free(p);
    qs_graph_free(g);
}
END_TEST

static Suite *mk(void)
{
    Suite *s = suite_create("engine");
    TCase *t = tcase_create("ops");
    tcase_add_test(t, conv_plain_bias);
    tcase_add_test(t, conv_stride_padding);
    tcase_add_test(t, conv_dilation);
    tcase_add_test(t, conv_rectangular);
    tcase_add_test(t, conv_groups);
    tcase_add_test(t, conv_depthwise);
    tcase_add_test(t, linear_op);
    tcase_add_test(t, batchnorm_op);
    tcase_add_test(t, activations);
    tcase_add_test(t, add_concat);
    tcase_add_test(t, pools);
    tcase_add_test(t, reshape_softmax);
    tcase_add_test(t, mask_applied);
    tcase_add_test(t, nonfinite_fused);
    suite_add_tcase(s, t);
    t = tcase_create("graphs");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, fast_matches_reference);
    tcase_add_test(t, depthwise_fast_is_exact);
    tcase_add_test(t, bitwise_batch_and_threads);
    tcase_add_test(t, engine_reuse);
    tcase_add_test(t, bad_input);
    suite_add_tcase(s, t);
    t = tcase_create("hook");
    tcase_add_test(t, hook_sees_every_node);
    tcase_add_test(t, hook_modifies);
    tcase_add_test(t, hook_error_propagates);
    suite_add_tcase(s, t);
    t = tcase_create("eval");
    tcase_add_test(t, eval_top1_top5);
    suite_add_tcase(s, t);
    return s;
}

QS_TEST_MAIN(mk)
