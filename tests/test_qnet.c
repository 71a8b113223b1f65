/* tests/test_qnet.c — network quantization: a tiny network whose W8A8
 * fake-quant output is pinned against an independent computation of the
 * documented arithmetic (BLAS-free path), presets and per-layer overrides,
 * the quantization points on the default architectures, calibration on the
 * given images only, the selection of quantized nodes, and evaluation
 * identical across thread counts. */
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

static void fill(float *v, int64_t n, float a, uint64_t stream)
{
    for (int64_t i = 0; i < n; i++)
        v[i] = (float)((2.0 * qs_rng_uniform(99, stream, (uint64_t)i) - 1.0) * a);
}

/* An in-memory float dataset of n random images of g's input shape. */
typedef struct {
    qs_dataset_t d;
    float *img;
    int32_t *lab;
} mem_data_t;

static void mem_data(mem_data_t *m, const qs_graph_t *g, int64_t n, uint64_t stream)
{
    memset(m, 0, sizeof *m);
    int64_t per = g->in_c * g->in_h * g->in_w;
    m->img = malloc((size_t)(n * per) * sizeof *m->img);
    m->lab = malloc((size_t)n * sizeof *m->lab);
    ck_assert(m->img && m->lab);
    for (int64_t i = 0; i < n * per; i++) /* pixel-like values in [0, 1) */
        m->img[i] = (float)qs_rng_uniform(5, stream, (uint64_t)i);
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

static bool reference; /* calibrate on the BLAS-free path */

static qs_qnet_t *quantize(const qs_graph_t *g, const qs_qconfig_t *c, const qs_dataset_t *d, int64_t images,
                           int64_t batch, qs_pool_t *pool)
{
    qs_qnet_t *q = NULL;
    int rc = qs_qnet_create(g, c, &q);
    ck_assert_msg(rc == QS_OK, "qs_qnet_create: %s", qs_last_error());
    qs_calib_opts_t o;
    qs_calib_opts_default(&o);
    o.images = images;
    o.batch = batch;
    o.pool = pool;
    o.reference = reference;
    rc = qs_qnet_calibrate(q, d, &o, NULL);
    ck_assert_msg(rc == QS_OK, "qs_qnet_calibrate: %s", qs_last_error());
    return q;
}

/* ---- the tiny network, pinned --------------------------------------------------------------- */

/* input 1x3x3 -> conv c1 (2 out, 2x2, bias) -> relu r1 -> flatten f -> linear fc (3 out, bias) */
static const float W1[8] = {0.50f, -0.25f, 0.75f, 1.00f, -0.30f, 0.20f, 0.10f, -0.60f};
static const float B1[2] = {0.05f, -0.10f};
static const float W2[24] = {0.3f,  -0.2f, 0.1f,  0.4f,  -0.5f, 0.6f,  0.2f,  -0.1f, -0.3f, 0.25f, 0.15f, -0.35f,
                             0.45f, 0.05f, -0.6f, 0.2f,  0.1f,  -0.2f, 0.3f,  0.05f, 0.7f,  -0.4f, 0.33f, -0.12f};
static const float B2[3] = {0.01f, -0.02f, 0.03f};

static qs_graph_t *tiny(void)
{
    qs_graph_t *g = qs_graph_create("tiny", 1, 3, 3);
    ck_assert_ptr_nonnull(g);
    g->input_scale = 1.0f;
    int in = 0;
    qs_node_t n = qs_node_init(QS_OP_CONV2D, "c1", 1, &in);
    n.kh = n.kw = 2;
    int64_t ws[4] = {2, 1, 2, 2}, bs = 2;
    n.weight = tens(4, ws, W1);
    n.bias = tens(1, &bs, B1);
    in = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_RELU, "r1", 1, &in);
    in = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_FLATTEN, "f", 1, &in);
    in = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_LINEAR, "fc", 1, &in);
    int64_t w2s[2] = {3, 8}, b2s = 3;
    n.weight = tens(2, w2s, W2);
    n.bias = tens(1, &b2s, B2);
    ck_assert_int_ge(qs_graph_add(g, &n), 0);
    g->num_classes = 3;
    ck_assert_int_eq(qs_graph_infer(g), QS_OK);
    return g;
}

/* The documented arithmetic, written out independently of the library. */
static float q_sym_scale(double a) { return a == 0.0 ? 1.0f : (float)(a / 127.0); }

static void q_asym(double lo, double hi, float *s, int32_t *z)
{
    lo = fmin(lo, 0.0);
    hi = fmax(hi, 0.0);
    *s = hi - lo == 0.0 ? 1.0f : (float)((hi - lo) / 255.0);
    double zz = 0.0 - nearbyint(lo / (double)*s);
    *z = (int32_t)fmin(fmax(zz, 0.0), 255.0);
}

static float fq(float x, float s, int32_t z, int64_t qmin, int64_t qmax)
{
    float v = x / s;
    double c = nearbyint((double)v) + z;
    c = fmin(fmax(c, (double)qmin), (double)qmax);
    return (float)((double)s * (c - z));
}

/* conv (reference order) + bias, relu, flatten: 8 values */
static void ref_conv(const float *x, const float *w, const float *b, float *y)
{
    for (int o = 0; o < 2; o++)
        for (int oy = 0; oy < 2; oy++)
            for (int ox = 0; ox < 2; ox++) {
                float acc = 0.0f;
                for (int ky = 0; ky < 2; ky++)
                    for (int kx = 0; kx < 2; kx++)
                        acc = acc + x[(oy + ky) * 3 + ox + kx] * w[o * 4 + ky * 2 + kx];
                float v = acc + b[o];
                y[o * 4 + oy * 2 + ox] = v < 0.0f ? 0.0f : v;
            }
}

static void ref_fc(const float *x, const float *w, const float *b, float *y)
{
    for (int o = 0; o < 3; o++) {
        float acc = 0.0f;
        for (int i = 0; i < 8; i++)
            acc = acc + w[o * 8 + i] * x[i];
        y[o] = acc + b[o];
    }
}

START_TEST(test_tiny_w8a8_exact)
{
    qs_graph_t *g = tiny();
    enum { NCAL = 6, NTEST = 4 };
    float cal[NCAL * 9], test[NTEST * 9];
    fill(cal, NCAL * 9, 1.0f, 1);
    fill(test, NTEST * 9, 1.2f, 2); /* wider than calibration: some inputs clip */
    int32_t lab[NCAL] = {0, 1, 2, 0, 1, 2};
    qs_dataset_t d;
    memset(&d, 0, sizeof d);
    d.n = NCAL;
    d.c = 1;
    d.h = d.w = 3;
    d.f32 = cal;
    d.labels = lab;
    d.num_classes = 3;
    snprintf(d.source, sizeof d.source, "cal");
    qs_qconfig_t c;
    qs_qconfig_default(&c);
    reference = true;
    qs_qnet_t *q = quantize(g, &c, &d, NCAL, 4, NULL); /* two batches: 4 + 2 */
    reference = false;

    /* --- the expected values --- */
    float w1[8], w2[24], s1[2], s2[3];
    for (int o = 0; o < 2; o++) {
        double a = 0;
        for (int k = 0; k < 4; k++)
            a = fmax(a, fabs(W1[o * 4 + k]));
        s1[o] = q_sym_scale(a);
        for (int k = 0; k < 4; k++)
            w1[o * 4 + k] = fq(W1[o * 4 + k], s1[o], 0, -128, 127);
    }
    for (int o = 0; o < 3; o++) {
        double a = 0;
        for (int k = 0; k < 8; k++)
            a = fmax(a, fabs(W2[o * 8 + k]));
        s2[o] = q_sym_scale(a);
        for (int k = 0; k < 8; k++)
            w2[o * 8 + k] = fq(W2[o * 8 + k], s2[o], 0, -128, 127);
    }
    /* calibration: weights quantized, float biases and activations */
    double lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
    for (int i = 0; i < NCAL; i++) {
        float h[8], y[3];
        for (int k = 0; k < 9; k++) {
            lo[0] = fmin(lo[0], cal[i * 9 + k]);
            hi[0] = fmax(hi[0], cal[i * 9 + k]);
        }
        ref_conv(cal + i * 9, w1, B1, h);
        for (int k = 0; k < 8; k++) {
            lo[1] = fmin(lo[1], h[k]);
            hi[1] = fmax(hi[1], h[k]);
        }
        ref_fc(h, w2, B2, y);
        for (int k = 0; k < 3; k++) {
            lo[2] = fmin(lo[2], y[k]);
            hi[2] = fmax(hi[2], y[k]);
        }
    }
    float sa[3];
    int32_t za[3];
    for (int k = 0; k < 3; k++)
        q_asym(lo[k], hi[k], &sa[k], &za[k]);
    /* biases: int32 codes at s_w * s_x */
    float b1[2], b2[3];
    for (int o = 0; o < 2; o++) {
        float bs = s1[o] * sa[0];
        b1[o] = (float)((double)bs * nearbyint((double)(B1[o] / bs)));
    }
    for (int o = 0; o < 3; o++) {
        float bs = s2[o] * sa[1];
        b2[o] = (float)((double)bs * nearbyint((double)(B2[o] / bs)));
    }

    /* the library's parameters */
    ck_assert_int_eq(q->layer[0].aq, 1);
    ck_assert_int_eq(q->layer[1].point, 2);
    ck_assert_int_eq(q->layer[3].ashare, 2);
    ck_assert(q->layer[0].ap->scale[0] == sa[0] && q->layer[0].ap->zero_point[0] == za[0]);
    ck_assert(q->layer[2].ap->scale[0] == sa[1] && q->layer[2].ap->zero_point[0] == za[1]);
    ck_assert_msg(q->layer[4].ap->scale[0] == sa[2] && q->layer[4].ap->zero_point[0] == za[2], "fc: %.9g %d, expected %.9g %d (range %g %g)", (double)q->layer[4].ap->scale[0], q->layer[4].ap->zero_point[0], (double)sa[2], za[2], lo[2], hi[2]);
    ck_assert(q->layer[1].wp->scale[0] == s1[0] && q->layer[1].wp->scale[1] == s1[1]);
    ck_assert_ptr_nonnull(q->layer[1].bcodes);
    ck_assert_ptr_nonnull(q->layer[4].bcodes);
    ck_assert(za[1] == 0); /* after a ReLU the asymmetric grid starts at 0 */

    /* the forward pass, BLAS-free */
    qs_engine_opts_t eo = {NULL, true};
    qs_fake_t *f = NULL;
    ck_assert_int_eq(qs_fake_create(q, &eo, NULL, &f), QS_OK);
    int64_t xs[4] = {NTEST, 1, 3, 3};
    qs_tensor_t *x = tens(4, xs, test);
    const qs_tensor_t *y;
    ck_assert_int_eq(qs_fake_forward(f, x, &y), QS_OK);
    for (int i = 0; i < NTEST; i++) {
        float xi[9], h[8], o[3];
        for (int k = 0; k < 9; k++)
            xi[k] = fq(test[i * 9 + k], sa[0], za[0], 0, 255);
        ref_conv(xi, w1, b1, h);
        for (int k = 0; k < 8; k++)
            h[k] = fq(h[k], sa[1], za[1], 0, 255);
        ref_fc(h, w2, b2, o);
        for (int k = 0; k < 3; k++) {
            float e = fq(o[k], sa[2], za[2], 0, 255);
            ck_assert_msg(qs_f32(y)[i * 3 + k] == e, "image %d logit %d: %.9g, expected %.9g", i, k,
                          (double)qs_f32(y)[i * 3 + k], (double)e);
        }
    }
    qs_tensor_free(x);
    qs_fake_free(f);
    qs_qnet_free(q);
    qs_graph_free(g);
}
END_TEST

/* ---- configuration ------------------------------------------------------------------------------ */

START_TEST(test_presets)
{
    qs_qconfig_t c;
    ck_assert_int_eq(qs_qconfig_preset(&c, "w4a8", "t"), QS_OK);
    ck_assert_int_eq(c.q[QS_QT_WEIGHTS].bits, 4);
    ck_assert_int_eq(c.q[QS_QT_ACTS].bits, 8);
    ck_assert_int_eq(c.q[QS_QT_WEIGHTS].gran.kind, QS_GRAN_CHANNEL);
    ck_assert_int_eq(c.q[QS_QT_ACTS].scheme, QS_SCHEME_ASYMMETRIC);
    ck_assert_int_eq(c.q[QS_QT_BIAS].bits, 32);
    ck_assert(c.on[0] && c.on[1] && c.on[2]);
    ck_assert_int_eq(qs_qconfig_preset(&c, "w16a2", "t"), QS_OK);
    ck_assert_int_eq(c.q[QS_QT_WEIGHTS].bits, 16);
    ck_assert_int_eq(qs_qconfig_preset(&c, "wfa8", "t"), QS_OK);
    ck_assert(!c.on[QS_QT_WEIGHTS] && c.on[QS_QT_ACTS] && !c.on[QS_QT_BIAS]);
    ck_assert_int_eq(qs_qconfig_preset(&c, "float", "t"), QS_OK);
    ck_assert(!c.on[0] && !c.on[1] && !c.on[2]);
    static const char *bad[] = {"w17a8", "w0a8", "w8", "a8w8", "w8a8x", "W8A8", "w08a8", ""};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        ck_assert_int_eq(qs_qconfig_preset(&c, bad[k], "--preset"), QS_ERR_INVALID);
        ck_assert_msg(strstr(qs_last_error(), "unknown preset") != NULL, "%s", qs_last_error());
    }
    /* words on top, float, and their errors */
    qs_qconfig_default(&c);
    ck_assert_int_eq(qs_qconfig_set(&c, QS_QT_WEIGHTS, "bits=4,gran=tensor,range=mse", "--weights"), QS_OK);
    ck_assert_int_eq(c.q[QS_QT_WEIGHTS].bits, 4);
    ck_assert_int_eq(c.q[QS_QT_WEIGHTS].scheme, QS_SCHEME_SYMMETRIC);
    ck_assert_int_eq(c.q[QS_QT_WEIGHTS].range.method, QS_RANGE_MSE);
    ck_assert_int_eq(qs_qconfig_set(&c, QS_QT_ACTS, "float", "--acts"), QS_OK);
    ck_assert(!c.on[QS_QT_ACTS]);
    ck_assert_int_eq(qs_qconfig_set(&c, QS_QT_ACTS, "bitz=4", "--acts"), QS_ERR_INVALID);
    ck_assert_msg(strstr(qs_last_error(), "--acts") && strstr(qs_last_error(), "bitz"), "%s", qs_last_error());
}
END_TEST

START_TEST(test_override_syntax)
{
    qs_qconfig_t c;
    qs_qconfig_default(&c);
    ck_assert_int_eq(qs_qconfig_override(&c, "first:weights=bits=8,gran=tensor", "--layer"), QS_OK);
    ck_assert_int_eq(qs_qconfig_override(&c, "last:float", "--layer"), QS_OK);
    ck_assert_int_eq(qs_qconfig_override(&c, "b1.pw:w6a4", "--layer"), QS_OK);
    ck_assert_int_eq(qs_qconfig_override(&c, "fc:acts=float", "--layer"), QS_OK);
    ck_assert_int_eq(c.noverrides, 6);
    ck_assert_str_eq(c.ov[0].layer, "first");
    ck_assert_str_eq(c.ov[0].spec, "bits=8,gran=tensor");
    ck_assert(!c.ov[1].on && c.ov[1].what == QS_QT_WEIGHTS && !c.ov[2].on && c.ov[2].what == QS_QT_ACTS);
    ck_assert_str_eq(c.ov[3].spec, "bits=6");
    ck_assert_str_eq(c.ov[4].spec, "bits=4");
    ck_assert(!c.ov[5].on);
    static const char *bad[] = {"conv1", ":float", "conv1:", "conv1:wieghts=bits=4", "conv1:weights=bitz=4", "conv1:w8"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        ck_assert_msg(qs_qconfig_override(&c, bad[k], "--layer") == QS_ERR_INVALID, "%s accepted", bad[k]);
        ck_assert_msg(strstr(qs_last_error(), "--layer") != NULL, "%s", qs_last_error());
    }
    ck_assert_int_eq(c.noverrides, 6); /* a refused override adds nothing */
    char buf[2048];
    qs_qconfig_str(&c, buf, sizeof buf);
    ck_assert_msg(strstr(buf, "layer first: weights=bits=8,gran=tensor") && strstr(buf, "layer fc: acts=float"), "%s",
                  buf);
}
END_TEST

START_TEST(test_override_resolution)
{
    qs_graph_t *g = NULL;
    ck_assert_int_eq(qs_zoo_build("fmnist-dwsep", 1, &g), QS_OK);
    qs_qconfig_t c;
    ck_assert_int_eq(qs_qconfig_preset(&c, "w4a4", "t"), QS_OK);
    ck_assert_int_eq(qs_qconfig_override(&c, "first:w8a8", "t"), QS_OK);
    ck_assert_int_eq(qs_qconfig_override(&c, "last:weights=bits=8", "t"), QS_OK);
    ck_assert_int_eq(qs_qconfig_override(&c, "last:weights=gran=tensor", "t"), QS_OK); /* accumulates */
    ck_assert_int_eq(qs_qconfig_override(&c, "b2.dw:float", "t"), QS_OK);
    ck_assert_int_eq(qs_qconfig_override(&c, "b3.pw:acts=range=mse", "t"), QS_OK);
    ck_assert_int_eq(qs_qconfig_override(&c, "b3.pw:acts=float", "t"), QS_OK); /* later wins */
    qs_qnet_t *q = NULL;
    ck_assert_msg(qs_qnet_create(g, &c, &q) == QS_OK, "%s", qs_last_error());
    const qs_graph_t *fg = q->g;
    int first = qs_qnet_first_layer(fg), last = qs_qnet_last_layer(fg);
    ck_assert_str_eq(fg->nodes[first].name, "stem");
    ck_assert_str_eq(fg->nodes[last].name, "fc");
    ck_assert_int_eq(q->layer[first].wquant.bits, 8);
    ck_assert_int_eq(q->layer[q->layer[first].point].aquant.bits, 8);
    ck_assert_int_eq(q->layer[last].wquant.bits, 8);
    ck_assert_int_eq(q->layer[last].wquant.gran.kind, QS_GRAN_TENSOR);
    int dw2 = qs_graph_find(fg, "b2.dw"), pw3 = qs_graph_find(fg, "b3.pw"), pw2 = qs_graph_find(fg, "b2.pw");
    ck_assert(!q->layer[dw2].wq && !q->layer[q->layer[dw2].point].aq);
    ck_assert(!q->layer[q->layer[pw3].point].aq);
    ck_assert(q->layer[pw2].wq && q->layer[pw2].wquant.bits == 4);
    ck_assert_int_eq(q->layer[q->layer[pw2].point].aquant.bits, 4);
    qs_qnet_free(q);

    /* errors name the override and list the layers */
    struct {
        const char *ov, *msg;
    } bad[] = {
        {"conv9:w8a8", "is not a layer of the model"},
        {"stem.relu6:weights=bits=4", "has no weights"},
        {"flatten:acts=bits=4", "keeps the grid"},
        {"stem:acts=gran=group:4", "gran=group is for weights"},
        {"stem:bias=bits=16,scheme=asymmetric", "scheme=symmetric"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        qs_qconfig_default(&c);
        ck_assert_int_eq(qs_qconfig_override(&c, bad[k].ov, "t"), QS_OK);
        ck_assert_msg(qs_qnet_create(g, &c, &q) < 0, "%s accepted", bad[k].ov);
        ck_assert_ptr_null(q);
        ck_assert_msg(strstr(qs_last_error(), bad[k].msg) != NULL, "%s: %s", bad[k].ov, qs_last_error());
    }
    qs_qconfig_default(&c);
    ck_assert_int_eq(qs_qconfig_override(&c, "conv9:w8a8", "t"), QS_OK);
    ck_assert_int_lt(qs_qnet_create(g, &c, &q), 0);
    ck_assert_msg(strstr(qs_last_error(), "stem, b1.dw, b1.pw"), "%s", qs_last_error());
    qs_graph_free(g);
}
END_TEST

/* ---- quantization points ----------------------------------------------------------------------------- */

static bool is_chain(qs_op_t op)
{
    return op == QS_OP_RELU || op == QS_OP_RELU6 || op == QS_OP_CLIP || op == QS_OP_BATCHNORM;
}

/* Walks a folded graph and checks every node against the documented rules. */
static void check_points(const qs_qnet_t *q)
{
    const qs_graph_t *g = q->g;
    int readers[256] = {0}, reader[256];
    ck_assert_int_le(g->nnodes, 256);
    for (int j = 0; j < g->nnodes; j++)
        for (int k = 0; k < g->nodes[j].ninputs; k++) {
            readers[g->nodes[j].inputs[k]]++;
            reader[g->nodes[j].inputs[k]] = j;
        }
    for (int i = 0; i < g->nnodes; i++) {
        const qs_node_t *n = &g->nodes[i];
        const qs_qlayer_t *l = &q->layer[i];
        ck_assert_int_ne(n->op, QS_OP_BATCHNORM); /* every BN folded in these nets */
        switch (n->op) {
        case QS_OP_CONV2D:
        case QS_OP_LINEAR:
        case QS_OP_ADD: {
            int e = i;
            while (e != g->output && readers[e] == 1 && is_chain(g->nodes[reader[e]].op))
                e = reader[e];
            ck_assert_msg(l->point == e, "node %s: point %d, expected %d", n->name, l->point, e);
            ck_assert(q->layer[e].point == e && q->layer[e].aq && q->layer[e].ashare < 0);
            if (e != i)
                ck_assert(!l->aq);
            break;
        }
        case QS_OP_FLATTEN:
        case QS_OP_MAXPOOL:
            ck_assert_int_ge(l->ashare, 0);
            ck_assert(!l->aq);
            break;
        case QS_OP_INPUT:
        case QS_OP_GAP:
        case QS_OP_AVGPOOL: ck_assert(l->point == i && l->aq && l->ashare < 0); break;
        case QS_OP_SOFTMAX: ck_assert_int_eq(l->point, -1); break;
        default: ck_assert_int_ge(l->point, 0); break;
        }
        if (n->weight)
            ck_assert(l->wq && l->wp && l->wcodes);
    }
}

START_TEST(test_points)
{
    for (const char *const *z = qs_zoo_names(); *z; z++) {
        qs_graph_t *g = NULL;
        ck_assert_int_eq(qs_zoo_build(*z, 2, &g), QS_OK);
        qs_qconfig_t c;
        qs_qconfig_default(&c);
        qs_qnet_t *q = NULL;
        ck_assert_int_eq(qs_qnet_create(g, &c, &q), QS_OK);
        ck_assert_int_gt(q->folded, 0);
        check_points(q);
        int adds = 0;
        for (int i = 0; i < q->g->nnodes; i++)
            adds += q->g->nodes[i].op == QS_OP_ADD && q->layer[i].point != i; /* add -> relu */
        if (strcmp(*z, "fmnist-resnet") == 0)
            ck_assert_int_gt(adds, 0);
        qs_qnet_free(q);
        qs_graph_free(g);
    }
}
END_TEST

/* ---- calibration, selection, threads ------------------------------------------------------------------ */

START_TEST(test_calibration_images)
{
    /* the ranges come from the seeded subset of the given images only */
    qs_graph_t *g = NULL;
    ck_assert_int_eq(qs_zoo_build("fmnist-dwsep", 3, &g), QS_OK);
    mem_data_t m;
    mem_data(&m, g, 16, 1);
    qs_qconfig_t c;
    qs_qconfig_default(&c);
    qs_qnet_t *a = quantize(g, &c, &m.d, 8, 3, NULL);
    ck_assert_int_eq(a->calib.images, 8);
    ck_assert_str_eq(a->calib.source, "memory:1");
    /* which 8 images: the subset's order */
    qs_dataset_t *sub = NULL;
    ck_assert_int_eq(qs_dataset_subset(&m.d, 8, 1, &sub), QS_OK);
    int64_t per = g->in_c * g->in_h * g->in_w, outside = -1, inside = -1;
    for (int64_t i = 0; i < m.d.n && (outside < 0 || inside < 0); i++) {
        bool used = false;
        for (int64_t k = 0; k < sub->n; k++)
            used |= memcmp(sub->f32 + k * per, m.img + i * per, (size_t)per * sizeof(float)) == 0;
        if (used && inside < 0)
            inside = i;
        if (!used && outside < 0)
            outside = i;
    }
    qs_dataset_free(sub);
    ck_assert(inside >= 0 && outside >= 0);
    m.img[outside * per + 5] = 1000.0f; /* an image calibration does not use */
    qs_qnet_t *b = quantize(g, &c, &m.d, 8, 3, NULL);
    m.img[inside * per + 5] = 1000.0f; /* an image it uses */
    qs_qnet_t *d = quantize(g, &c, &m.d, 8, 3, NULL);
    ck_assert(a->layer[0].ap->scale[0] == b->layer[0].ap->scale[0]);
    ck_assert(a->layer[0].ap->scale[0] != d->layer[0].ap->scale[0]);
    qs_qnet_free(a);
    qs_qnet_free(b);
    qs_qnet_free(d);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_select_none_is_float)
{
    qs_graph_t *g = NULL;
    ck_assert_int_eq(qs_zoo_build("fmnist-resnet", 4, &g), QS_OK);
    mem_data_t m;
    mem_data(&m, g, 10, 2);
    qs_qconfig_t c;
    qs_qconfig_preset(&c, "w4a4", "t");
    qs_qnet_t *q = quantize(g, &c, &m.d, 10, 10, NULL);
    bool *off = calloc((size_t)q->g->nnodes, sizeof *off);
    qs_qselect_t sel = {off, off};
    qs_fake_t *f = NULL;
    qs_engine_t *e = NULL;
    ck_assert_int_eq(qs_fake_create(q, NULL, &sel, &f), QS_OK);
    ck_assert_int_eq(qs_engine_create(q->g, NULL, &e), QS_OK);
    int64_t xs[4] = {10, 1, 28, 28};
    qs_tensor_t *x = tens(4, xs, NULL);
    ck_assert_int_eq(qs_dataset_batch(&m.d, q->g, 0, NULL, 10, x, NULL), QS_OK);
    const qs_tensor_t *y1, *y2;
    ck_assert_int_eq(qs_fake_forward(f, x, &y1), QS_OK);
    ck_assert_int_eq(qs_engine_forward(e, x, &y2), QS_OK);
    ck_assert_mem_eq(y1->data, y2->data, (size_t)y1->size * sizeof(float));
    /* everything on: different */
    qs_fake_free(f);
    ck_assert_int_eq(qs_fake_create(q, NULL, NULL, &f), QS_OK);
    ck_assert_int_eq(qs_fake_forward(f, x, &y1), QS_OK);
    ck_assert(memcmp(y1->data, y2->data, (size_t)y1->size * sizeof(float)) != 0);
    qs_tensor_free(x);
    qs_fake_free(f);
    qs_engine_free(e);
    free(off);
    qs_qnet_free(q);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

static void eval_threads(const char *zoo, const char *acts)
{
    qs_graph_t *g = NULL;
    ck_assert_int_eq(qs_zoo_build(zoo, 5, &g), QS_OK);
    mem_data_t cal, test;
    mem_data(&cal, g, 40, 3);
    mem_data(&test, g, 70, 4);
    qs_pool_t *p2 = qs_pool_create(2);
    qs_qconfig_t c;
    qs_qconfig_preset(&c, "w4a8", "t");
    ck_assert_int_eq(qs_qconfig_set(&c, QS_QT_ACTS, acts, "t"), QS_OK);
    qs_qnet_t *q1 = quantize(g, &c, &cal.d, 40, 16, NULL);
    qs_qnet_t *q2 = quantize(g, &c, &cal.d, 40, 16, p2);
    for (int i = 0; i < q1->g->nnodes; i++)
        if (q1->layer[i].ap) {
            ck_assert_int_eq(q1->layer[i].ap->count, q2->layer[i].ap->count);
            ck_assert_mem_eq(q1->layer[i].ap->scale, q2->layer[i].ap->scale, (size_t)q1->layer[i].ap->count * 4);
        }
    qs_engine_opts_t o1 = {NULL, false}, o2 = {p2, false};
    qs_qeval_t r1, r2;
    ck_assert_int_eq(qs_qeval(q1, &test.d, &o1, NULL, 32, NULL, &r1), QS_OK);
    ck_assert_int_eq(qs_qeval(q2, &test.d, &o2, NULL, 25, NULL, &r2), QS_OK);
    ck_assert_msg(r1.top1 == r2.top1 && r1.top5 == r2.top5 && r1.agreement == r2.agreement, "%s %s: top1 %g %g top5 %g %g agreement %g %g", zoo, acts, r1.top1, r2.top1, r1.top5, r2.top5, r1.agreement, r2.agreement);
    ck_assert(r1.logit_sqnr_db == r2.logit_sqnr_db);
    ck_assert(r1.float_top1 == r2.float_top1);
    ck_assert_mem_eq(r1.act, r2.act, (size_t)q1->g->nnodes * sizeof *r1.act);
    ck_assert(r1.agreement > 0.0 && r1.agreement <= 1.0);
    ck_assert(isfinite(r1.logit_sqnr_db) && r1.logit_sqnr_db > 0.0);
    int64_t counted = 0;
    for (int i = 0; i < q1->g->nnodes; i++)
        counted += r1.act[i].count > 0;
    ck_assert_int_gt(counted, 3);
    qs_qeval_free(&r1);
    qs_qeval_free(&r2);
    qs_qnet_free(q1);
    qs_qnet_free(q2);
    qs_pool_free(p2);
    mem_free(&cal);
    mem_free(&test);
    qs_graph_free(g);
}

START_TEST(test_eval_threads)
{
    eval_threads("fmnist-dwsep", "range=mse");
    eval_threads("fmnist-resnet", "gran=channel,range=percentile:99.9");
    eval_threads("fmnist-dwsep", "round=stochastic:7");
}
END_TEST

START_TEST(test_bias_rules)
{
    qs_graph_t *g = NULL;
    ck_assert_int_eq(qs_zoo_build("fmnist-dwsep", 6, &g), QS_OK);
    mem_data_t m;
    mem_data(&m, g, 8, 5);
    qs_qconfig_t c;
    qs_qconfig_default(&c);
    ck_assert_int_eq(qs_qconfig_set(&c, QS_QT_ACTS, "float", "t"), QS_OK);
    qs_qnet_t *q = quantize(g, &c, &m.d, 8, 8, NULL);
    for (int i = 0; i < q->g->nnodes; i++) /* no input scale: biases stay float */
        ck_assert_ptr_null(q->layer[i].bcodes);
    qs_qnet_free(q);
    qs_qconfig_default(&c);
    ck_assert_int_eq(qs_qconfig_set(&c, QS_QT_WEIGHTS, "gran=group:4", "t"), QS_OK);
    q = quantize(g, &c, &m.d, 8, 8, NULL);
    int pw = qs_graph_find(q->g, "b1.pw");
    const qs_node_t *n = &q->g->nodes[pw];
    int64_t k = n->weight->size / n->weight->shape[0];
    /* groups of 4 along K = I*kh*kw: ceil(K/4) per output channel */
    ck_assert_int_eq(q->layer[pw].wp->count, n->weight->shape[0] * ((k + 3) / 4));
    ck_assert_ptr_null(q->layer[pw].bcodes); /* no single s_w per channel */
    qs_qnet_free(q);
    /* per-channel weights: bias code = round(b / (s_w[o] s_x)) */
    qs_qconfig_default(&c);
    q = quantize(g, &c, &m.d, 8, 8, NULL);
    ck_assert_ptr_nonnull(q->layer[pw].bcodes);
    int src = qs_sim_input_point(q, pw);
    ck_assert_int_ge(src, 0);
    float sx = q->layer[src].ap->scale[0];
    for (int64_t o = 0; o < q->g->nodes[pw].bias->size; o++) {
        float bs = q->layer[pw].wp->scale[o] * sx;
        ck_assert(qs_f32(q->layer[pw].bscale)[o] == bs);
        ck_assert_int_eq(qs_i32(q->layer[pw].bcodes)[o],
                         (int32_t)nearbyint((double)(qs_f32(q->g->nodes[pw].bias)[o] / bs)));
    }
    qs_qnet_free(q);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_errors)
{
    qs_graph_t *g = NULL;
    ck_assert_int_eq(qs_zoo_build("fmnist-dwsep", 7, &g), QS_OK);
    qs_qconfig_t c;
    qs_qconfig_default(&c);
    qs_qnet_t *q = NULL;
    ck_assert_int_eq(qs_qnet_create(g, &c, &q), QS_OK);
    mem_data_t m;
    mem_data(&m, g, 8, 6);
    qs_qeval_t r;
    ck_assert_int_eq(qs_qeval(q, &m.d, NULL, NULL, 8, NULL, &r), QS_ERR_INVALID);
    ck_assert_msg(strstr(qs_last_error(), "not calibrated"), "%s", qs_last_error());
    qs_dataset_t bad = m.d;
    bad.h = 27;
    ck_assert_int_eq(qs_qnet_calibrate(q, &bad, NULL, NULL), QS_ERR_SHAPE);
    ck_assert_msg(strstr(qs_last_error(), "memory:6") && strstr(qs_last_error(), "27"), "%s", qs_last_error());
    m.img[3] = NAN;
    ck_assert_int_lt(qs_qnet_calibrate(q, &m.d, NULL, NULL), 0);
    ck_assert_msg(strstr(qs_last_error(), "calibration of node 'input'"), "%s", qs_last_error());
    ck_assert(!q->calibrated);
    qs_qnet_free(q);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

static Suite *qnet_suite(void)
{
    Suite *s = suite_create("qnet");
    TCase *tc = tcase_create("qnet");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_tiny_w8a8_exact);
    tcase_add_test(tc, test_presets);
    tcase_add_test(tc, test_override_syntax);
    tcase_add_test(tc, test_override_resolution);
    tcase_add_test(tc, test_points);
    tcase_add_test(tc, test_calibration_images);
    tcase_add_test(tc, test_select_none_is_float);
    tcase_add_test(tc, test_eval_threads);
    tcase_add_test(tc, test_bias_rules);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

QS_TEST_MAIN(qnet_suite)
