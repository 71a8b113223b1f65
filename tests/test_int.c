/* tests/test_int.c — the integer engine: every conv2d/linear accumulator
 * of the fast, order-exact and scalar paths against the reference dot
 * product (qs_acc_dot) for wrap, saturate, chunked and expand-form
 * accumulators; a hand-computed int16 sequence where wrap and saturate
 * differ; add, concat and average-pool rescales against the documented
 * formula; agreement with the fake-quant engine; determinism across
 * thread counts and batchings; and the errors. */
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

static qs_tensor_t *rand_tens(int ndim, const int64_t *shape, float a, uint64_t stream)
{
    qs_tensor_t *t = tens(ndim, shape, NULL);
    for (int64_t i = 0; i < t->size; i++)
        qs_f32(t)[i] = (float)((2.0 * qs_rng_uniform(99, stream, (uint64_t)i) - 1.0) * a);
    return t;
}

typedef struct {
    qs_dataset_t d;
    float *img;
    int32_t *lab;
} mem_data_t;

/* n images of g's input shape, values lo + [0, 1) */
static void mem_data(mem_data_t *m, const qs_graph_t *g, int64_t n, uint64_t stream, float lo)
{
    memset(m, 0, sizeof *m);
    int64_t per = g->in_c * g->in_h * g->in_w;
    m->img = malloc((size_t)(n * per) * sizeof *m->img);
    m->lab = malloc((size_t)n * sizeof *m->lab);
    ck_assert(m->img && m->lab);
    for (int64_t i = 0; i < n * per; i++)
        m->img[i] = lo + (float)qs_rng_uniform(5, stream, (uint64_t)i);
    for (int64_t i = 0; i < n; i++)
        m->lab[i] = (int32_t)(qs_rng_u32(6, stream, (uint64_t)i) % (uint32_t)g->num_classes);
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

static qs_qnet_t *quantize(const qs_graph_t *g, const qs_qconfig_t *c, const qs_dataset_t *d, int64_t images)
{
    qs_qnet_t *q = NULL;
    ck_assert_msg(qs_qnet_create(g, c, &q) == QS_OK, "qs_qnet_create: %s", qs_last_error());
    qs_calib_opts_t o;
    qs_calib_opts_default(&o);
    o.images = images;
    o.batch = 16;
    ck_assert_msg(qs_qnet_calibrate(q, d, &o, NULL) == QS_OK, "calibrate: %s", qs_last_error());
    return q;
}

static qs_qnet_t *quantize_preset(const qs_graph_t *g, const char *preset, const char *wspec,
                                  const qs_dataset_t *d)
{
    qs_qconfig_t c;
    ck_assert_int_eq(qs_qconfig_preset(&c, preset, "t"), QS_OK);
    if (wspec)
        ck_assert_int_eq(qs_qconfig_set(&c, QS_QT_WEIGHTS, wspec, "t"), QS_OK);
    return quantize(g, &c, d, d->n);
}

/* the images [first, first + n) of d as a batch */
static qs_tensor_t *batch_of(const qs_dataset_t *d, const qs_graph_t *g, int64_t first, int64_t n)
{
    int64_t shape[4] = {n, g->in_c, g->in_h, g->in_w};
    qs_tensor_t *x = qs_tensor_create(QS_F32, 4, shape);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(qs_dataset_batch(d, g, first, NULL, n, x, NULL), QS_OK);
    return x;
}

/* The grid of node j's codes, as the engine documents it: its point's (or
 * the shared source's) parameters. */
static void grid(const qs_qnet_t *q, int j, float *s, int32_t *z)
{
    int p = q->layer[j].point;
    if (p >= 0 && q->layer[p].ashare >= 0)
        p = q->layer[p].ashare;
    ck_assert_int_ge(p, 0);
    ck_assert_ptr_nonnull(q->layer[p].ap);
    *s = q->layer[p].ap->scale[0];
    *z = q->layer[p].ap->zero_point[0];
}

static qs_int_t *engine(const qs_qnet_t *q, const char *acc, bool trace, qs_pool_t *pool)
{
    qs_int_config_t c;
    qs_int_config_default(&c);
    if (acc)
        ck_assert_msg(qs_acc_parse(acc, "t", &c.acc) == QS_OK, "%s: %s", acc, qs_last_error());
    c.trace = trace;
    c.keep_acc = true;
    qs_engine_opts_t o = {.pool = pool};
    qs_int_t *e = NULL;
    ck_assert_msg(qs_int_create(q, &c, &o, &e) == QS_OK, "qs_int_create: %s", qs_last_error());
    return e;
}

/* Every conv2d/linear accumulator of the last forward of e (n images)
 * against qs_acc_dot over the same input codes, weight codes, zero points
 * and bias, gathered here from the geometry (padding taps read z_x); and
 * the layer statistics against the reference's events and maxima.
 * Returns the outputs that overflowed. */
static int64_t check_accs(const qs_int_t *e, const qs_qnet_t *q, const qs_acc_t *a, int64_t n)
{
    const qs_graph_t *g = q->g;
    int64_t overflowed_all = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const qs_node_t *nd = &g->nodes[i];
        if (nd->op != QS_OP_CONV2D && nd->op != QS_OP_LINEAR)
            continue;
        const qs_tensor_t *A = qs_int_accs(e, i), *X = qs_int_codes(e, nd->inputs[0]);
        ck_assert_ptr_nonnull(A);
        ck_assert_ptr_nonnull(X);
        const qs_qlayer_t *L = &q->layer[i];
        float sx;
        int32_t zx;
        grid(q, nd->inputs[0], &sx, &zx);
        const qs_node_t *in = &g->nodes[nd->inputs[0]];
        int64_t C, H, W, O, OH, OW, kh, kw, sh, sw, pt, pl, G;
        if (nd->op == QS_OP_CONV2D) {
            C = in->out_shape[0], H = in->out_shape[1], W = in->out_shape[2];
            O = nd->out_shape[0], OH = nd->out_shape[1], OW = nd->out_shape[2];
            kh = nd->kh, kw = nd->kw, sh = nd->stride_h, sw = nd->stride_w, pt = nd->pad_top, pl = nd->pad_left;
            G = nd->groups;
        } else {
            C = nd->weight->shape[1], H = W = 1, O = nd->weight->shape[0], OH = OW = 1;
            kh = kw = sh = sw = 1, pt = pl = 0, G = 1;
        }
        const int64_t cg = C / G, K = cg * kh * kw, P = OH * OW;
        ck_assert_int_eq(A->shape[1], O * P);
        int32_t *col = malloc((size_t)K * sizeof *col);
        int64_t overflowed = 0, events = 0, max_abs = 0;
        for (int64_t s = 0; s < n; s++) {
            const int32_t *x = qs_i32(X) + s * X->shape[1];
            for (int64_t o = 0; o < O; o++) {
                const int64_t gi = o / (O / G);
                const int32_t zw = L->wp->zero_point[L->wp->count == 1 ? 0 : o];
                const int64_t bias = L->bcodes ? qs_i32(L->bcodes)[o] : 0;
                for (int64_t oy = 0; oy < OH; oy++)
                    for (int64_t ox = 0; ox < OW; ox++) {
                        for (int64_t c = 0; c < cg; c++)
                            for (int64_t ky = 0; ky < kh; ky++)
                                for (int64_t kx = 0; kx < kw; kx++) {
                                    int64_t iy = oy * sh - pt + ky * nd->dil_h, ix = ox * sw - pl + kx * nd->dil_w;
                                    bool pad = iy < 0 || iy >= H || ix < 0 || ix >= W;
                                    col[(c * kh + ky) * kw + kx] =
                                        pad ? zx : x[((gi * cg + c) * H + iy) * W + ix];
                                }
                        qs_acc_result_t r;
                        qs_acc_dot(a, col, 1, qs_i32(L->wcodes) + o * K, 1, K, zx, zw, bias, &r);
                        int64_t got = qs_i64(A)[s * A->shape[1] + o * P + oy * OW + ox];
                        REQUIRE_MSG(got == r.value, "node %s, image %lld, channel %lld, position %lld: "
                                    "accumulator %lld, reference %lld", nd->name, (long long)s, (long long)o,
                                    (long long)(oy * OW + ox), (long long)got, (long long)r.value);
                        overflowed += r.events > 0;
                        events += r.events;
                        int64_t m = r.exact < 0 ? -r.exact : r.exact;
                        max_abs = m > max_abs ? m : max_abs;
                    }
            }
        }
        free(col);
        const qs_int_layer_t *ls = qs_int_layer(e, i);
        ck_assert_int_eq(ls->outputs, n * O * P);
        ck_assert_int_eq(ls->overflowed, overflowed);
        ck_assert_int_eq(ls->events, events);
        ck_assert_int_eq(ls->max_abs, max_abs);
        ck_assert_int_eq(ls->needed_bits, qs_acc_bits_for(max_abs));
        overflowed_all += overflowed;
    }
    return overflowed_all;
}

/* every node's codes of two engines' last forwards equal */
static void same_codes(const qs_int_t *a, const qs_int_t *b, const qs_graph_t *g)
{
    for (int i = 0; i < g->nnodes; i++) {
        const qs_tensor_t *x = qs_int_codes(a, i), *y = qs_int_codes(b, i);
        ck_assert((x == NULL) == (y == NULL));
        if (!x)
            continue;
        ck_assert_int_eq(x->size, y->size);
        REQUIRE_MSG(memcmp(x->data, y->data, (size_t)x->size * sizeof(int32_t)) == 0, "node %s: codes differ",
                    g->nodes[i].name);
    }
}

/* ---- a network with every op the engine runs ---------------------------------------------------- */

/* input 2x6x6
 *   a: conv 3x3 pad 1 (4) -> ra: relu          b: conv 1x1 stride 1 (4) -> rb: relu6
 *   s: add(ra, rb) -> mp: maxpool 2x2/2               ap: avgpool 3x3/2 pad 1 of ra
 *   cat: concat(mp, ap) (8x3x3) -> dw: conv 3x3 groups 8 pad 1 -> cl: clip [0, 2]
 *   gap -> f: flatten -> fc: linear (3) */
static qs_graph_t *mixed(void)
{
    qs_graph_t *g = qs_graph_create("mixed", 2, 6, 6);
    ck_assert_ptr_nonnull(g);
    g->input_scale = 1.0f;
    int in = 0, ra, rb, x;
    qs_node_t n = qs_node_init(QS_OP_CONV2D, "a", 1, &in);
    n.kh = n.kw = 3;
    n.pad_top = n.pad_left = n.pad_bottom = n.pad_right = 1;
    int64_t wa[4] = {4, 2, 3, 3}, b4 = 4, b8 = 8, b3 = 3;
    n.weight = rand_tens(4, wa, 0.5f, 1);
    n.bias = rand_tens(1, &b4, 0.2f, 2);
    x = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_RELU, "ra", 1, &x);
    ra = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_CONV2D, "b", 1, &in);
    int64_t wb[4] = {4, 2, 1, 1};
    n.weight = rand_tens(4, wb, 1.0f, 3);
    n.bias = rand_tens(1, &b4, 0.2f, 4);
    x = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_RELU6, "rb", 1, &x);
    rb = qs_graph_add(g, &n);
    int two[2] = {ra, rb};
    n = qs_node_init(QS_OP_ADD, "s", 2, two);
    x = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_MAXPOOL, "mp", 1, &x);
    n.kh = n.kw = 2;
    n.stride_h = n.stride_w = 2;
    two[0] = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_AVGPOOL, "ap", 1, &ra);
    n.kh = n.kw = 3;
    n.stride_h = n.stride_w = 2;
    n.pad_top = n.pad_left = n.pad_bottom = n.pad_right = 1;
    two[1] = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_CONCAT, "cat", 2, two);
    x = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_CONV2D, "dw", 1, &x);
    n.kh = n.kw = 3;
    n.groups = 8;
    n.pad_top = n.pad_left = n.pad_bottom = n.pad_right = 1;
    int64_t wd[4] = {8, 1, 3, 3};
    n.weight = rand_tens(4, wd, 0.6f, 5);
    n.bias = rand_tens(1, &b8, 0.1f, 6);
    x = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_CLIP, "cl", 1, &x);
    n.clip_min = 0.0f;
    n.clip_max = 2.0f;
    x = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_GAP, "gap", 1, &x);
    x = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_FLATTEN, "f", 1, &x);
    x = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_LINEAR, "fc", 1, &x);
    int64_t wf[2] = {3, 8};
    n.weight = rand_tens(2, wf, 0.8f, 7);
    n.bias = rand_tens(1, &b3, 0.1f, 8);
    ck_assert_int_ge(qs_graph_add(g, &n), 0);
    g->num_classes = 3;
    ck_assert_int_eq(qs_graph_infer(g), QS_OK);
    return g;
}

/* ---- accumulators of every path against the reference ------------------------------------------ */

static const struct {
    const char *acc;
    bool overflows; /* on the mixed network at W8A8 */
} ACCS[] = {
    {"int32", false},
    {"exact", false},
    {"int16,overflow=wrap", true},
    {"int16,overflow=saturate", true},
    {"int12,overflow=saturate", true},
    {"int20,overflow=wrap", false},
    {"int32,chunk=2,chunk-acc=int16,chunk-overflow=saturate", true},
    {"int14,chunk=4,chunk-acc=int12,chunk-overflow=wrap", true},
    {"int16,overflow=saturate,zp-form=expand", true},
    {"int24,overflow=wrap,zp-form=expand", false},
};

START_TEST(test_paths_match_reference)
{
    qs_graph_t *g = mixed();
    mem_data_t m;
    mem_data(&m, g, 12, 1, -0.3f);
    /* asymmetric weights make the expand form differ from the subtract form */
    qs_qnet_t *q = quantize_preset(g, "w8a8", _i % 2 ? "scheme=asymmetric" : NULL, &m.d);
    qs_tensor_t *x = batch_of(&m.d, q->g, 0, 12);
    for (size_t k = 0; k < sizeof ACCS / sizeof ACCS[0]; k++)
        for (int trace = 0; trace < 3; trace++) {
            qs_int_use_simd(trace != 2); /* 2: the portable kernels */
            qs_int_t *e = engine(q, ACCS[k].acc, trace == 1, NULL);
            qs_int_use_simd(true);
            const qs_tensor_t *out;
            ck_assert_msg(qs_int_forward(e, x, 0, &out) == QS_OK, "%s", qs_last_error());
            qs_acc_t a;
            qs_acc_default(&a);
            ck_assert_int_eq(qs_acc_parse(ACCS[k].acc, "t", &a), QS_OK);
            int64_t ov = check_accs(e, q, &a, 12);
            /* the cases meant to overflow do, so wrap and saturate are exercised */
            ck_assert_msg((ov > 0) == ACCS[k].overflows, "%s: %lld outputs overflowed", ACCS[k].acc,
                          (long long)ov);
            if (trace == 1) { /* with every channel on the order-exact path: the same codes, no fast outputs */
                qs_int_t *f = engine(q, ACCS[k].acc, false, NULL);
                ck_assert_int_eq(qs_int_forward(f, x, 0, &out), QS_OK);
                same_codes(e, f, q->g);
                for (int i = 0; i < q->g->nnodes; i++)
                    ck_assert_int_eq(qs_int_layer(e, i)->fast, 0);
                qs_int_free(f);
            }
            qs_int_free(e);
        }
    qs_tensor_free(x);
    qs_qnet_free(q);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

/* The zoo networks (random weights) at W8A8 and W4A8: int16 saturating
 * and int32 accumulators against the reference, and the fast path taken
 * where the bound allows it. */
START_TEST(test_zoo_layers)
{
    const char *arch = _i < 2 ? "fmnist-dwsep" : "fmnist-resnet";
    const char *preset = _i % 2 ? "w4a8" : "w8a8";
    qs_graph_t *g = NULL;
    ck_assert_int_eq(qs_zoo_build(arch, 3, &g), QS_OK);
    mem_data_t m;
    mem_data(&m, g, 4, 2, 0.0f);
    qs_qnet_t *q = quantize_preset(g, preset, NULL, &m.d);
    qs_tensor_t *x = batch_of(&m.d, q->g, 0, 4);
    const char *accs[] = {"int32", "int16,overflow=saturate"};
    for (int k = 0; k < 2; k++) {
        qs_int_t *e = engine(q, accs[k], false, NULL);
        const qs_tensor_t *out;
        ck_assert_msg(qs_int_forward(e, x, 0, &out) == QS_OK, "%s", qs_last_error());
        qs_acc_t a;
        qs_acc_default(&a);
        ck_assert_int_eq(qs_acc_parse(accs[k], "t", &a), QS_OK);
        check_accs(e, q, &a, 4);
        int64_t fast = 0, outputs = 0;
        for (int i = 0; i < q->g->nnodes; i++) {
            fast += qs_int_layer(e, i)->fast;
            outputs += qs_int_layer(e, i)->outputs;
        }
        /* int32 always holds these layers' sums: the bound proves it, everything runs fast; at W4A8 the
         * depthwise sums (9 terms of at most 255·7) fit int16 too */
        if (k == 0)
            ck_assert_int_eq(fast, outputs);
        else if (_i == 1)
            ck_assert_int_gt(fast, 0);
        qs_int_free(e);
    }
    qs_tensor_free(x);
    qs_qnet_free(q);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

/* ---- a hand-computed int16 sequence -------------------------------------------------------------- */

/* input 1x1x4 -> f: flatten -> fc: linear (1 out, no bias), weights all 1
 * (codes 127 at s_w = 1/127) and an input of ones (codes 255 at s_x =
 * 1/255, z_x = 0): products 32385 each. In int16: wrap gives 32385, -766,
 * 31619, -1532; saturate 32385, 32767, 32767, 32767 with three events. */
START_TEST(test_hand_int16)
{
    qs_graph_t *g = qs_graph_create("hand", 1, 1, 4);
    g->input_scale = 1.0f;
    int in = 0;
    qs_node_t n = qs_node_init(QS_OP_FLATTEN, "f", 1, &in);
    in = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_LINEAR, "fc", 1, &in);
    int64_t ws[2] = {1, 4};
    const float ones[4] = {1, 1, 1, 1};
    n.weight = tens(2, ws, ones);
    int fc = qs_graph_add(g, &n);
    g->num_classes = 1;
    ck_assert_int_eq(qs_graph_infer(g), QS_OK);
    mem_data_t m;
    mem_data(&m, g, 1, 3, 0.0f);
    for (int k = 0; k < 4; k++)
        m.img[k] = 1.0f;
    qs_qnet_t *q = quantize_preset(g, "w8a8", NULL, &m.d);
    fc = qs_graph_find(q->g, "fc");
    ck_assert_int_eq(qs_i32(q->layer[fc].wcodes)[0], 127);
    qs_tensor_t *x = batch_of(&m.d, q->g, 0, 1);
    const struct {
        const char *acc;
        int64_t value, events;
    } cases[] = {
        {"int32", 4 * 32385, 0},
        {"int16,overflow=wrap", -1532, 2},
        {"int16,overflow=saturate", 32767, 3},
        {"int17,overflow=saturate", 65535, 2},
        /* pairs summed in int16 first: 64770 wraps to -766 per pair; the int32 sum -1532 */
        {"int32,chunk=2,chunk-acc=int16,chunk-overflow=wrap", -1532, 2},
        {"int32,chunk=2,chunk-acc=int16,chunk-overflow=saturate", 65534, 2},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        for (int trace = 0; trace < 2; trace++) {
            qs_int_t *e = engine(q, cases[k].acc, trace, NULL);
            const qs_tensor_t *out;
            ck_assert_int_eq(qs_int_forward(e, x, 0, &out), QS_OK);
            ck_assert_int_eq(qs_i32(qs_int_codes(e, 1))[0], 255);
            ck_assert_msg(qs_i64(qs_int_accs(e, fc))[0] == cases[k].value, "%s: %lld", cases[k].acc,
                          (long long)qs_i64(qs_int_accs(e, fc))[0]);
            ck_assert_int_eq(qs_int_layer(e, fc)->events, cases[k].events);
            ck_assert_int_eq(qs_int_layer(e, fc)->overflowed, cases[k].events > 0);
            ck_assert_int_eq(qs_int_layer(e, fc)->max_abs, 4 * 32385);
            qs_int_free(e);
        }
    qs_tensor_free(x);
    qs_qnet_free(q);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

/* ---- rescales --------------------------------------------------------------------------------------- */

/* float64 requantization of Σ (q_i − z_i)·(s_i / s_y), ties to even, plus z_y, clamped */
static int32_t rescale_ref(const double *v, const float *s, int n, float sy, int32_t zy, int64_t lo, int64_t hi)
{
    double a = 0.0;
    for (int i = 0; i < n; i++)
        a += v[i] * ((double)s[i] / (double)sy);
    double r = nearbyint(a) + zy;
    return (int32_t)(r < (double)lo ? (double)lo : r > (double)hi ? (double)hi : r);
}

START_TEST(test_rescales)
{
    qs_graph_t *g = mixed();
    mem_data_t m;
    mem_data(&m, g, 6, 4, -0.5f);
    qs_qnet_t *q = quantize_preset(g, "w8a8", NULL, &m.d);
    const qs_graph_t *fg = q->g;
    qs_tensor_t *x = batch_of(&m.d, fg, 0, 6);
    qs_int_t *e = engine(q, NULL, false, NULL);
    const qs_tensor_t *out;
    ck_assert_int_eq(qs_int_forward(e, x, 0, &out), QS_OK);
    const int sn = qs_graph_find(fg, "s"), cat = qs_graph_find(fg, "cat"), ap = qs_graph_find(fg, "ap");
    ck_assert(sn > 0 && cat > 0 && ap > 0);
    int64_t qmin, qmax;
    qs_quantizer_code_range(&q->layer[q->layer[sn].point].aquant, &qmin, &qmax);
    int64_t checked = 0;
    for (int64_t s = 0; s < 6; s++) {
        /* add: both inputs to the sum's grid */
        const qs_node_t *nd = &fg->nodes[sn];
        float sc[3], sy;
        int32_t zz[3], zy;
        grid(q, nd->inputs[0], &sc[0], &zz[0]);
        grid(q, nd->inputs[1], &sc[1], &zz[1]);
        grid(q, sn, &sy, &zy);
        const qs_tensor_t *A = qs_int_codes(e, nd->inputs[0]), *B = qs_int_codes(e, nd->inputs[1]),
                          *Y = qs_int_codes(e, sn);
        for (int64_t j = 0; j < Y->shape[1]; j++) {
            double v[2] = {qs_i32(A)[s * A->shape[1] + j] - zz[0], qs_i32(B)[s * B->shape[1] + j] - zz[1]};
            REQUIRE(qs_i32(Y)[s * Y->shape[1] + j] == rescale_ref(v, sc, 2, sy, zy, qmin, qmax));
            checked++;
        }
        /* concat: each input to the output grid, in order */
        nd = &fg->nodes[cat];
        grid(q, cat, &sy, &zy);
        Y = qs_int_codes(e, cat);
        int64_t off = 0;
        for (int k = 0; k < 2; k++) {
            grid(q, nd->inputs[k], &sc[0], &zz[0]);
            A = qs_int_codes(e, nd->inputs[k]);
            for (int64_t j = 0; j < A->shape[1]; j++) {
                double v = qs_i32(A)[s * A->shape[1] + j] - zz[0];
                REQUIRE(qs_i32(Y)[s * Y->shape[1] + off + j] == rescale_ref(&v, sc, 1, sy, zy, qmin, qmax));
                checked++;
            }
            off += A->shape[1];
        }
        ck_assert_int_eq(off, Y->shape[1]);
        /* avgpool 3x3/2 pad 1: the exact sum of (q − z) over the window inside the input, times
         * s_x / (count · s_y) */
        nd = &fg->nodes[ap];
        grid(q, nd->inputs[0], &sc[0], &zz[0]);
        grid(q, ap, &sy, &zy);
        A = qs_int_codes(e, nd->inputs[0]);
        Y = qs_int_codes(e, ap);
        for (int64_t c = 0; c < 4; c++)
            for (int oy = 0; oy < 3; oy++)
                for (int ox = 0; ox < 3; ox++) {
                    double sum = 0;
                    int cnt = 0;
                    for (int iy = 2 * oy - 1; iy <= 2 * oy + 1; iy++)
                        for (int ix = 2 * ox - 1; ix <= 2 * ox + 1; ix++)
                            if (iy >= 0 && iy < 6 && ix >= 0 && ix < 6) {
                                sum += qs_i32(A)[s * A->shape[1] + (c * 6 + iy) * 6 + ix] - zz[0];
                                cnt++;
                            }
                    double want = nearbyint(sum * ((double)sc[0] / ((double)sy * cnt))) + zy;
                    want = want < (double)qmin ? (double)qmin : want > (double)qmax ? (double)qmax : want;
                    REQUIRE(qs_i32(Y)[s * Y->shape[1] + (c * 3 + oy) * 3 + ox] == (int32_t)want);
                    checked++;
                }
    }
    ck_assert_int_eq(checked, 6 * (4 * 36 + 8 * 9 + 4 * 9));
    qs_int_free(e);
    qs_tensor_free(x);
    qs_qnet_free(q);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

/* ---- agreement with fake-quant, determinism ------------------------------------------------------- */

START_TEST(test_agrees_with_fake)
{
    qs_graph_t *g = NULL;
    ck_assert_int_eq(qs_zoo_build(_i ? "fmnist-resnet" : "fmnist-dwsep", 5, &g), QS_OK);
    mem_data_t m;
    mem_data(&m, g, 24, 5, 0.0f);
    qs_qnet_t *q = quantize_preset(g, "w8a8", NULL, &m.d);
    qs_int_config_t c;
    qs_int_config_default(&c);
    ck_assert_int_eq(qs_acc_parse("exact", "t", &c.acc), QS_OK);
    qs_int_eval_t r;
    ck_assert_msg(qs_int_eval(q, &c, &m.d, NULL, 8, NULL, &r) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(r.images, 24);
    int64_t mism = 0, comp = 0;
    for (int i = 0; i < q->g->nnodes; i++) {
        mism += r.mismatch[i];
        comp += r.compared[i];
        /* a tie broken the other way moves a code by one (a few in 10^4 of the sums, here); the
         * difference then propagates, growing with depth on the residual network */
        ck_assert_msg(r.mismatch[i] <= r.compared[i] / 50 + 2, "node %s: %lld of %lld codes differ",
                      q->g->nodes[i].name, (long long)r.mismatch[i], (long long)r.compared[i]);
    }
    ck_assert_int_gt(comp, 24 * 1000);
    ck_assert_msg(mism <= comp / 500, "%lld of %lld codes differ", (long long)mism, (long long)comp);
    ck_assert_int_eq(r.mismatch[0], 0); /* the input codes: one rounding, the same in both */
    ck_assert_int_eq(r.overflowed, 0);
    ck_assert(r.fake_logit_sqnr_db > 30.0);
    ck_assert(r.fake_agreement >= 0.95);
    qs_int_eval_free(&r);
    qs_qnet_free(q);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

/* Sign-basis weights (ls-1 binary, ls-t ternary) run on the bit-serial
 * popcount path: the same codes as the order-exact reference path, and the
 * fake-quant engine's codes but for float32 rounding ties (its convolutions
 * round; the weights themselves are v·(±1) exactly in both). */
START_TEST(test_sign_basis_popcount)
{
    qs_graph_t *g = NULL;
    ck_assert_int_eq(qs_zoo_build("fmnist-dwsep", 5, &g), QS_OK);
    /* an all-zero channel: its levels are all 0, and its integer weights must be 0 too */
    int b1 = qs_graph_find(g, "b1.pw");
    ck_assert_int_ge(b1, 0);
    qs_tensor_t *wb = g->nodes[b1].weight;
    memset(wb->data, 0, (size_t)(wb->size / wb->shape[0]) * sizeof(float));
    mem_data_t m;
    mem_data(&m, g, 16, 5, 0.0f);
    qs_qnet_t *q = quantize_preset(g, "w8a8", _i ? "grid=ls-t,gran=channel" : "grid=ls-1,gran=channel", &m.d);
    qs_tensor_t *x = batch_of(&m.d, q->g, 0, 16);
    qs_int_t *e = engine(q, "int32", false, NULL), *f = engine(q, "int32", true, NULL);
    const qs_tensor_t *out;
    ck_assert_msg(qs_int_forward(e, x, 0, &out) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(qs_int_forward(f, x, 0, &out), QS_OK);
    same_codes(e, f, q->g);
    int64_t fast = 0;
    for (int i = 0; i < q->g->nnodes; i++)
        fast += qs_int_layer(e, i)->fast;
    ck_assert_int_gt(fast, 0);
    qs_int_free(e);
    qs_int_free(f);
    qs_int_config_t c;
    qs_int_config_default(&c);
    qs_int_eval_t r;
    ck_assert_msg(qs_int_eval(q, &c, &m.d, NULL, 8, NULL, &r) == QS_OK, "%s", qs_last_error());
    for (int i = 0; i < q->g->nnodes; i++) {
        ck_assert_msg(r.mismatch[i] <= r.compared[i] / 1000 + 2, "node %s: %lld codes differ from fake-quant",
                      q->g->nodes[i].name, (long long)r.mismatch[i]);
        ck_assert_int_eq(r.mismatch_far[i], 0);
    }
    qs_int_eval_free(&r);
    /* a grid the integer engine cannot run is refused with the reason */
    qs_qnet_t *q2 = quantize_preset(g, "w8a8", "grid=ls-2,gran=channel", &m.d);
    qs_int_t *e2 = NULL;
    qs_int_config_default(&c);
    ck_assert_int_lt(qs_int_create(q2, &c, NULL, &e2), 0);
    ck_assert_msg(strstr(qs_last_error(), "weights on grid ls-2: the integer engine runs sign-basis grids of one basis"),
                  "%s", qs_last_error());
    qs_qnet_free(q2);
    qs_tensor_free(x);
    qs_qnet_free(q);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

/* Every requantizer preset computes the same network: none may drift far from
 * the fake-quant engine (rounding differences move a few percent of the codes,
 * more with depth as they propagate; bias=float once added the bias twice and
 * moved half). */
START_TEST(test_presets_agree)
{
    static const char *const rq[] = {"float32", "fixed-point", "gemmlowp", "qnnpack", "onednn"};
    qs_graph_t *g = NULL;
    ck_assert_int_eq(qs_zoo_build("fmnist-dwsep", 5, &g), QS_OK);
    for (int i = 0; i < g->nnodes; i++) /* biases after folding: an untrained BN has none */
        if (g->nodes[i].op == QS_OP_BATCHNORM)
            for (int64_t k = 0; k < g->nodes[i].beta->size; k++)
                qs_f32(g->nodes[i].beta)[k] = 0.3f * sinf((float)(i * 7 + k));
    mem_data_t m;
    mem_data(&m, g, 24, 5, 0.0f);
    qs_qnet_t *q = quantize_preset(g, "w8a8", NULL, &m.d);
    qs_int_config_t c;
    qs_int_config_default(&c);
    ck_assert_int_eq(qs_requant_parse(rq[_i], "t", &c.rq), QS_OK);
    qs_int_eval_t r;
    ck_assert_msg(qs_int_eval(q, &c, &m.d, NULL, 8, NULL, &r) == QS_OK, "%s", qs_last_error());
    int64_t mism = 0, comp = 0;
    for (int i = 0; i < q->g->nnodes; i++) {
        mism += r.mismatch[i];
        comp += r.compared[i];
    }
    ck_assert_msg(mism <= comp / 4, "%s: %lld of %lld codes differ", rq[_i], (long long)mism, (long long)comp);
    ck_assert_msg(r.fake_logit_sqnr_db > 25.0, "%s: logit SQNR %g dB", rq[_i], r.fake_logit_sqnr_db);
    qs_int_eval_free(&r);
    qs_qnet_free(q);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_threads_and_batches)
{
    qs_graph_t *g = NULL;
    ck_assert_int_eq(qs_zoo_build("fmnist-resnet", 6, &g), QS_OK);
    mem_data_t m;
    mem_data(&m, g, 6, 6, 0.0f);
    qs_qnet_t *q = quantize_preset(g, "w4a8", NULL, &m.d);
    qs_tensor_t *x = batch_of(&m.d, q->g, 0, 6);
    qs_pool_t *pool = qs_pool_create(2);
    const char *acc = "int14,overflow=saturate";
    qs_int_t *one = engine(q, acc, false, NULL), *two = engine(q, acc, false, pool);
    const qs_tensor_t *o1, *o2;
    ck_assert_int_eq(qs_int_forward(one, x, 0, &o1), QS_OK);
    ck_assert_int_eq(qs_int_forward(two, x, 0, &o2), QS_OK);
    same_codes(one, two, q->g);
    ck_assert_int_eq(memcmp(o1->data, o2->data, (size_t)o1->size * sizeof(float)), 0);
    for (int i = 0; i < q->g->nnodes; i++) {
        const qs_int_layer_t *a = qs_int_layer(one, i), *b = qs_int_layer(two, i);
        ck_assert_int_eq(a->events, b->events);
        ck_assert_int_eq(a->overflowed, b->overflowed);
        ck_assert_int_eq(a->max_abs, b->max_abs);
        ck_assert_int_eq(a->fast, b->fast);
    }
    /* image by image: the same codes as the batch of six */
    qs_int_t *single = engine(q, acc, false, NULL);
    for (int64_t s = 0; s < 6; s++) {
        qs_tensor_t *xi = batch_of(&m.d, q->g, s, 1);
        const qs_tensor_t *oi;
        ck_assert_int_eq(qs_int_forward(single, xi, s, &oi), QS_OK);
        ck_assert_int_eq(memcmp(oi->data, qs_f32(o1) + s * 10, 10 * sizeof(float)), 0);
        qs_tensor_free(xi);
    }
    qs_int_free(single);
    qs_int_free(one);
    qs_int_free(two);
    qs_pool_free(pool);
    qs_tensor_free(x);
    qs_qnet_free(q);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

/* ---- errors ------------------------------------------------------------------------------------------ */

START_TEST(test_errors)
{
    qs_graph_t *g = mixed();
    mem_data_t m;
    mem_data(&m, g, 4, 7, 0.0f);
    qs_int_config_t c;
    qs_int_config_default(&c);
    /* overrides: the grammar checked at once, the layer name by create */
    ck_assert_int_lt(qs_int_config_override(&c, "fc", "--layer"), 0);
    ck_assert_msg(strstr(qs_last_error(), "NAME:acc=SPEC"), "%s", qs_last_error());
    ck_assert_int_lt(qs_int_config_override(&c, "fc:bits=4", "--layer"), 0);
    ck_assert_int_lt(qs_int_config_override(&c, "fc:acc=int99", "--layer"), 0);
    ck_assert_msg(strstr(qs_last_error(), "width 99"), "%s", qs_last_error());
    ck_assert_int_lt(qs_int_config_override(&c, "fc:requant=fixed,round=sideways", "--layer"), 0);
    ck_assert_int_eq(c.noverrides, 0);
    ck_assert_int_eq(qs_int_config_override(&c, "nosuch:acc=int16", "--layer"), QS_OK);
    qs_qnet_t *q = quantize_preset(g, "w8a8", NULL, &m.d);
    qs_int_t *e = NULL;
    ck_assert_int_lt(qs_int_create(q, &c, NULL, &e), 0);
    ck_assert_ptr_null(e);
    ck_assert_msg(strstr(qs_last_error(), "no node 'nosuch'"), "%s", qs_last_error());
    /* an override on a real layer takes effect there only */
    qs_int_config_default(&c);
    ck_assert_int_eq(qs_int_config_override(&c, "fc:acc=int8,overflow=saturate", "--layer"), QS_OK);
    ck_assert_int_eq(qs_int_create(q, &c, NULL, &e), QS_OK);
    int fc = qs_graph_find(q->g, "fc"), a = qs_graph_find(q->g, "a");
    ck_assert_int_eq(qs_int_layer(e, fc)->acc.bits, 8);
    ck_assert_int_eq(qs_int_layer(e, a)->acc.bits, 32);
    /* a wrong input shape */
    int64_t shape[4] = {1, 3, 6, 6};
    qs_tensor_t *bad = qs_tensor_create(QS_F32, 4, shape);
    const qs_tensor_t *out;
    ck_assert_int_eq(qs_int_forward(e, bad, 0, &out), QS_ERR_SHAPE);
    ck_assert_msg(strstr(qs_last_error(), "[N, 2, 6, 6]"), "%s", qs_last_error());
    qs_tensor_free(bad);
    qs_int_free(e);
    qs_qnet_free(q);
    /* a layer left in float */
    qs_qconfig_t qc;
    ck_assert_int_eq(qs_qconfig_preset(&qc, "w8a8", "t"), QS_OK);
    ck_assert_int_eq(qs_qconfig_override(&qc, "dw:weights=float", "t"), QS_OK);
    q = quantize(g, &qc, &m.d, 4);
    ck_assert_int_lt(qs_int_create(q, NULL, NULL, &e), 0);
    ck_assert_msg(strstr(qs_last_error(), "node 'dw'") && strstr(qs_last_error(), "weights are in float"), "%s",
                  qs_last_error());
    qs_qnet_free(q);
    /* float activations */
    ck_assert_int_eq(qs_qconfig_preset(&qc, "w8af", "t"), QS_OK);
    q = quantize(g, &qc, &m.d, 4);
    ck_assert_int_lt(qs_int_create(q, NULL, NULL, &e), 0);
    ck_assert_msg(strstr(qs_last_error(), "not quantized"), "%s", qs_last_error());
    qs_qnet_free(q);
    /* per-channel activations */
    ck_assert_int_eq(qs_qconfig_preset(&qc, "w8a8", "t"), QS_OK);
    ck_assert_int_eq(qs_qconfig_set(&qc, QS_QT_ACTS, "gran=channel", "t"), QS_OK);
    if (qs_qnet_create(g, &qc, &q) == QS_OK) {
        qs_calib_opts_t o;
        qs_calib_opts_default(&o);
        ck_assert_int_eq(qs_qnet_calibrate(q, &m.d, &o, NULL), QS_OK);
        ck_assert_int_lt(qs_int_create(q, NULL, NULL, &e), 0);
        ck_assert_msg(strstr(qs_last_error(), "per-tensor activation"), "%s", qs_last_error());
        qs_qnet_free(q);
    }
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

static Suite *int_suite(void)
{
    Suite *s = suite_create("int");
    TCase *tc = tcase_create("int");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_paths_match_reference, 0, 2);
    tcase_add_loop_test(tc, test_zoo_layers, 0, 4);
    tcase_add_test(tc, test_hand_int16);
    tcase_add_test(tc, test_rescales);
    tcase_add_loop_test(tc, test_agrees_with_fake, 0, 2);
    tcase_add_loop_test(tc, test_sign_basis_popcount, 0, 2);
    tcase_add_loop_test(tc, test_presets_agree, 0, 5);
    tcase_add_test(tc, test_threads_and_batches);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

QS_TEST_MAIN(int_suite)
