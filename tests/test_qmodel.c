/* tests/test_qmodel.c — quantized-model files (sim/qmodel.c,
 * docs/model-format.md "Quantized models"): save then load gives a
 * qs_qnet_t identical field by field (graph, configuration, quantizers,
 * scales, zero points, codes, bias codes, statistics, calibration
 * provenance) whose fake-quant logits and evaluation are bitwise those of
 * the network saved, for per-channel, per-tensor and per-group weights,
 * asymmetric and per-channel activations, stochastic rounding, layers and
 * biases left in float and an uncalibrated network; the file read as a float
 * model is the folded graph; corrupt, truncated and inconsistent files and
 * invalid networks are refused with messages naming the file, the node and
 * the problem. */
#include "sim/sim_internal.h"
#include "tests/testutil.h"

#include <glob.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HAS(s) ck_assert_msg(strstr(qs_last_error(), (s)) != NULL, "message '%s' lacks '%s'", qs_last_error(), (s))

/* ---- helpers -------------------------------------------------------------------------------- */

static qs_tensor_t *rand_tensor(int ndim, const int64_t *shape, float lo, float hi, uint64_t stream)
{
    qs_tensor_t *t = qs_tensor_create(QS_F32, ndim, shape);
    ck_assert_ptr_nonnull(t);
    for (int64_t i = 0; i < t->size; i++)
        qs_f32(t)[i] = lo + (hi - lo) * (float)qs_rng_uniform(17, stream, (uint64_t)i);
    return t;
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
    for (int64_t i = 0; i < n * per; i++)
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

/* input 2x8x8 -> c1 conv (4, 3x3, pad 1, bias) -> bn1 -> r1 relu -> mp maxpool 2x2 -> dw depthwise
 * 3x3 (no bias) -> r2 relu6 -> pw conv 1x1 (6, bias, mask) -> fl flatten -> fc linear (5, bias).
 * After folding: the points input, r1 (c1's), mp and fl sharing r1 and pw, r2 (dw's), pw, fc. */
static qs_graph_t *mixed(void)
{
    qs_graph_t *g = qs_graph_create("mixed", 2, 8, 8);
    ck_assert_ptr_nonnull(g);
    g->norm_mean[0] = 0.25f;
    g->norm_std[1] = 0.5f;
    int in = 0;
    qs_node_t n = qs_node_init(QS_OP_CONV2D, "c1", 1, &in);
    n.kh = n.kw = 3;
    n.pad_top = n.pad_left = n.pad_bottom = n.pad_right = 1;
    int64_t w1[4] = {4, 2, 3, 3}, c4 = 4, c6 = 6, c5 = 5;
    n.weight = rand_tensor(4, w1, -0.5f, 0.5f, 1);
    n.bias = rand_tensor(1, &c4, -0.1f, 0.1f, 2);
    in = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_BATCHNORM, "bn1", 1, &in);
    n.gamma = rand_tensor(1, &c4, 0.5f, 1.5f, 3);
    n.beta = rand_tensor(1, &c4, -0.2f, 0.2f, 4);
    n.mean = rand_tensor(1, &c4, -0.1f, 0.1f, 5);
    n.var = rand_tensor(1, &c4, 0.5f, 2.0f, 6);
    in = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_RELU, "r1", 1, &in);
    in = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_MAXPOOL, "mp", 1, &in);
    n.kh = n.kw = 2;
    n.stride_h = n.stride_w = 2;
    in = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_CONV2D, "dw", 1, &in);
    n.kh = n.kw = 3;
    n.pad_top = n.pad_left = n.pad_bottom = n.pad_right = 1;
    n.groups = 4;
    int64_t w2[4] = {4, 1, 3, 3};
    n.weight = rand_tensor(4, w2, -0.6f, 0.6f, 7);
    in = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_RELU6, "r2", 1, &in);
    in = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_CONV2D, "pw", 1, &in);
    n.kh = n.kw = 1;
    int64_t w3[4] = {6, 4, 1, 1};
    n.weight = rand_tensor(4, w3, -0.7f, 0.7f, 8);
    n.bias = rand_tensor(1, &c6, -0.1f, 0.1f, 9);
    n.mask = qs_tensor_create(QS_F32, 4, w3);
    for (int64_t k = 0; k < n.mask->size; k++)
        qs_f32(n.mask)[k] = k % 5 != 2;
    in = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_FLATTEN, "fl", 1, &in);
    in = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_LINEAR, "fc", 1, &in);
    int64_t w4[2] = {5, 96};
    n.weight = rand_tensor(2, w4, -0.2f, 0.2f, 10);
    n.bias = rand_tensor(1, &c5, -0.1f, 0.1f, 11);
    ck_assert_int_ge(qs_graph_add(g, &n), 0);
    ck_assert_int_eq(qs_graph_infer(g), QS_OK);
    ck_assert_int_eq(g->num_classes, 5);
    return g;
}

static qs_qnet_t *quantize(const qs_graph_t *g, const qs_qconfig_t *c, const qs_dataset_t *d, bool calibrate,
                           bool reference)
{
    qs_qnet_t *q = NULL;
    ck_assert_msg(qs_qnet_create(g, c, &q) == QS_OK, "qs_qnet_create: %s", qs_last_error());
    if (!calibrate)
        return q;
    qs_calib_opts_t o;
    qs_calib_opts_default(&o);
    o.images = 40;
    o.batch = 16;
    o.seed = 12345678901234567ULL;
    o.reference = reference;
    ck_assert_msg(qs_qnet_calibrate(q, d, &o, NULL) == QS_OK, "qs_qnet_calibrate: %s", qs_last_error());
    return q;
}

/* ---- deep comparison ------------------------------------------------------------------------------ */

static void same_tensor(const qs_tensor_t *a, const qs_tensor_t *b, const char *what, int node)
{
    REQUIRE_MSG((a == NULL) == (b == NULL), "node %d %s: present in one only", node, what);
    if (!a)
        return;
    REQUIRE_MSG(a->dtype == b->dtype && a->ndim == b->ndim && a->size == b->size, "node %d %s: type or shape", node,
                what);
    for (int d = 0; d < a->ndim; d++)
        REQUIRE_MSG(a->shape[d] == b->shape[d], "node %d %s: shape", node, what);
    REQUIRE_MSG(memcmp(a->data, b->data, (size_t)a->size * qs_dtype_size(a->dtype)) == 0, "node %d %s: values", node,
                what);
}

static void same_graph(const qs_graph_t *a, const qs_graph_t *b)
{
    ck_assert_str_eq(a->name, b->name);
    ck_assert_int_eq(a->nnodes, b->nnodes);
    ck_assert_int_eq(a->output, b->output);
    ck_assert_int_eq(a->num_classes, b->num_classes);
    ck_assert(a->in_c == b->in_c && a->in_h == b->in_h && a->in_w == b->in_w);
    ck_assert(memcmp(&a->input_scale, &b->input_scale, sizeof a->input_scale) == 0);
    ck_assert(memcmp(a->norm_mean, b->norm_mean, sizeof a->norm_mean) == 0);
    ck_assert(memcmp(a->norm_std, b->norm_std, sizeof a->norm_std) == 0);
    for (int i = 0; i < a->nnodes; i++) {
        const qs_node_t *x = &a->nodes[i], *y = &b->nodes[i];
        ck_assert_str_eq(x->name, y->name);
        ck_assert_int_eq(x->op, y->op);
        ck_assert_int_eq(x->ninputs, y->ninputs);
        for (int k = 0; k < x->ninputs; k++)
            ck_assert_int_eq(x->inputs[k], y->inputs[k]);
        ck_assert(x->kh == y->kh && x->kw == y->kw && x->stride_h == y->stride_h && x->stride_w == y->stride_w);
        ck_assert(x->pad_top == y->pad_top && x->pad_left == y->pad_left && x->pad_bottom == y->pad_bottom &&
                  x->pad_right == y->pad_right && x->dil_h == y->dil_h && x->dil_w == y->dil_w && x->groups == y->groups);
        ck_assert(x->out_ndim == y->out_ndim && memcmp(x->out_shape, y->out_shape, sizeof x->out_shape) == 0);
        same_tensor(x->weight, y->weight, "weight", i);
        same_tensor(x->bias, y->bias, "bias", i);
        same_tensor(x->gamma, y->gamma, "gamma", i);
        same_tensor(x->beta, y->beta, "beta", i);
        same_tensor(x->mean, y->mean, "mean", i);
        same_tensor(x->var, y->var, "var", i);
        same_tensor(x->mask, y->mask, "mask", i);
    }
}

static void same_quantizer(const qs_quantizer_t *a, const qs_quantizer_t *b, const char *what, int node)
{
    char x[512], y[512];
    REQUIRE_MSG(a->grid == b->grid && a->bits == b->bits && a->scheme == b->scheme && a->gran.kind == b->gran.kind &&
                    a->gran.axis == b->gran.axis && a->gran.group == b->gran.group &&
                    a->range.method == b->range.method && a->range.percentile == b->range.percentile &&
                    a->range.dist == b->range.dist && a->round.mode == b->round.mode && a->round.seed == b->round.seed &&
                    a->round.rbits == b->round.rbits && a->round.stream == b->round.stream &&
                    a->overflow == b->overflow && a->scale_type == b->scale_type && a->div == b->div,
                "node %d %s: %s (stream %llu) vs %s (stream %llu)", node, what, qs_quantizer_str(a, x, sizeof x),
                (unsigned long long)a->round.stream, qs_quantizer_str(b, y, sizeof y),
                (unsigned long long)b->round.stream);
}

static void same_params(const qs_qparams_t *a, const qs_qparams_t *b, const char *what, int node)
{
    REQUIRE_MSG((a == NULL) == (b == NULL), "node %d %s: present in one only", node, what);
    if (!a)
        return;
    REQUIRE_MSG(a->count == b->count && a->ndim == b->ndim, "node %d %s: count or rank", node, what);
    for (int d = 0; d < a->ndim; d++)
        REQUIRE_MSG(a->shape[d] == b->shape[d], "node %d %s: shape", node, what);
    REQUIRE_MSG(memcmp(a->scale, b->scale, (size_t)a->count * sizeof *a->scale) == 0, "node %d %s: scales", node, what);
    REQUIRE_MSG(memcmp(a->zero_point, b->zero_point, (size_t)a->count * sizeof *a->zero_point) == 0,
                "node %d %s: zero points", node, what);
}

static void same_stats(const qs_qstats_t *a, const qs_qstats_t *b, const char *what, int node)
{
    REQUIRE_MSG(a->count == b->count && a->clipped == b->clipped && a->nonfinite == b->nonfinite &&
                    memcmp(&a->sse, &b->sse, sizeof a->sse) == 0 && memcmp(&a->signal, &b->signal, sizeof a->signal) == 0 &&
                    memcmp(&a->max_abs_err, &b->max_abs_err, sizeof a->max_abs_err) == 0,
                "node %d %s statistics differ", node, what);
}

static void same_qnet(const qs_qnet_t *a, const qs_qnet_t *b)
{
    same_graph(a->g, b->g);
    ck_assert_int_eq(a->folded, b->folded);
    ck_assert_int_eq(a->calibrated, b->calibrated);
    ck_assert_str_eq(a->calib.source, b->calib.source);
    ck_assert(a->calib.images == b->calib.images && a->calib.batch == b->calib.batch && a->calib.seed == b->calib.seed);
    for (int t = 0; t < QS_QT_COUNT; t++) {
        ck_assert_int_eq(a->cfg.on[t], b->cfg.on[t]);
        same_quantizer(&a->cfg.q[t], &b->cfg.q[t], "configuration", -1);
    }
    ck_assert_int_eq(a->cfg.noverrides, b->cfg.noverrides);
    for (int k = 0; k < a->cfg.noverrides; k++) {
        ck_assert_str_eq(a->cfg.ov[k].layer, b->cfg.ov[k].layer);
        ck_assert_int_eq(a->cfg.ov[k].what, b->cfg.ov[k].what);
        ck_assert_int_eq(a->cfg.ov[k].on, b->cfg.ov[k].on);
        ck_assert_str_eq(a->cfg.ov[k].spec, b->cfg.ov[k].spec);
    }
    for (int i = 0; i < a->g->nnodes; i++) {
        const qs_qlayer_t *x = &a->layer[i], *y = &b->layer[i];
        REQUIRE_MSG(x->wq == y->wq && x->bq == y->bq && x->aq == y->aq, "node %d: flags", i);
        REQUIRE_MSG(x->point == y->point && x->ashare == y->ashare, "node %d: points", i);
        same_quantizer(&x->wquant, &y->wquant, "wquant", i);
        same_quantizer(&x->bquant, &y->bquant, "bquant", i);
        same_quantizer(&x->aquant, &y->aquant, "aquant", i);
        same_params(x->wp, y->wp, "wp", i);
        same_params(x->ap, y->ap, "ap", i);
        same_tensor(x->wcodes, y->wcodes, "wcodes", i);
        same_tensor(x->bcodes, y->bcodes, "bcodes", i);
        same_tensor(x->bscale, y->bscale, "bscale", i);
        same_stats(&x->wstats, &y->wstats, "weight", i);
    }
}

/* The fake-quant logits of a and b on n random inputs are bitwise equal. */
static void same_logits(const qs_qnet_t *a, const qs_qnet_t *b, int64_t n, bool reference)
{
    const qs_graph_t *g = a->g;
    int64_t shape[4] = {n, g->in_c, g->in_h, g->in_w};
    qs_tensor_t *x = rand_tensor(4, shape, -2.0f, 2.0f, 77);
    qs_engine_opts_t eo = {NULL, reference};
    qs_fake_t *fa = NULL, *fb = NULL;
    ck_assert_msg(qs_fake_create(a, &eo, NULL, &fa) == QS_OK, "%s", qs_last_error());
    ck_assert_msg(qs_fake_create(b, &eo, NULL, &fb) == QS_OK, "%s", qs_last_error());
    const qs_tensor_t *ya, *yb;
    ck_assert_msg(qs_fake_forward(fa, x, &ya) == QS_OK, "%s", qs_last_error());
    ck_assert_msg(qs_fake_forward(fb, x, &yb) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(ya->size, n * g->num_classes);
    ck_assert(memcmp(ya->data, yb->data, (size_t)ya->size * sizeof(float)) == 0);
    /* and quantization changes something: the comparison is not vacuous */
    qs_engine_t *fe = NULL;
    ck_assert_int_eq(qs_engine_create(g, &eo, &fe), QS_OK);
    const qs_tensor_t *yf;
    ck_assert_int_eq(qs_engine_forward(fe, x, &yf), QS_OK);
    bool differs = memcmp(yf->data, ya->data, (size_t)ya->size * sizeof(float)) != 0;
    bool any = false;
    for (int i = 0; i < g->nnodes; i++)
        any |= a->layer[i].wq || (a->layer[i].aq && a->layer[i].ap);
    ck_assert(differs == any);
    qs_engine_free(fe);
    qs_fake_free(fa);
    qs_fake_free(fb);
    qs_tensor_free(x);
}

static void same_qeval(const qs_qnet_t *a, const qs_qnet_t *b, const qs_dataset_t *d)
{
    qs_engine_opts_t eo = {NULL, false};
    qs_qeval_t ra, rb;
    ck_assert_msg(qs_qeval(a, d, &eo, NULL, 32, NULL, &ra) == QS_OK, "%s", qs_last_error());
    ck_assert_msg(qs_qeval(b, d, &eo, NULL, 32, NULL, &rb) == QS_OK, "%s", qs_last_error());
    ck_assert(ra.images == rb.images && ra.top1 == rb.top1 && ra.top5 == rb.top5 && ra.float_top1 == rb.float_top1 &&
              ra.agreement == rb.agreement);
    ck_assert(memcmp(&ra.logit_sqnr_db, &rb.logit_sqnr_db, sizeof(double)) == 0);
    for (int i = 0; i < a->g->nnodes; i++)
        same_stats(&ra.act[i], &rb.act[i], "activation", i);
    qs_qeval_free(&ra);
    qs_qeval_free(&rb);
}

/* No PATH.tmp-* left next to path. */
static void no_temporaries(const char *path)
{
    char pat[600];
    snprintf(pat, sizeof pat, "%s.tmp-*", path);
    glob_t gl;
    int rc = glob(pat, 0, NULL, &gl);
    ck_assert_msg(rc == GLOB_NOMATCH, "temporary files left next to %s", path);
    if (rc == 0)
        globfree(&gl);
}

/* Saves q, loads it back, and checks everything. */
static void round_trip(const qs_qnet_t *q, const char *name, const qs_dataset_t *d, int64_t logits, bool reference)
{
    char path[512];
    qs_test_path(path, sizeof path, name);
    ck_assert_msg(qs_qnet_save(q, path) == QS_OK, "save: %s", qs_last_error());
    no_temporaries(path);
    ck_assert_int_eq(qs_model_is_quantized(path), 1);
    qs_qnet_t *r = (qs_qnet_t *)1;
    ck_assert_msg(qs_qnet_load(path, &r) == QS_OK, "load: %s", qs_last_error());
    same_qnet(q, r);
    /* the float reader sees the folded graph */
    qs_graph_t *g = NULL;
    ck_assert_msg(qs_model_load(path, &g) == QS_OK, "%s", qs_last_error());
    same_graph(q->g, g);
    qs_graph_free(g);
    if (q->calibrated && logits > 0) {
        same_logits(q, r, logits, reference);
        same_qeval(q, r, d);
    }
    /* saving what was loaded gives the same network again */
    ck_assert_msg(qs_qnet_save(r, path) == QS_OK, "%s", qs_last_error());
    qs_qnet_t *r2 = NULL;
    ck_assert_msg(qs_qnet_load(path, &r2) == QS_OK, "%s", qs_last_error());
    same_qnet(q, r2);
    qs_qnet_free(r2);
    qs_qnet_free(r);
    unlink(path);
}

/* ---- round trips -------------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *preset, *weights, *acts, *bias;
    const char *ov[6];
    bool calibrate;
} case_t;

static const case_t cases[] = {
    {"w8a8 (per-channel weights, asymmetric acts)", "w8a8", NULL, NULL, NULL, {NULL}, true},
    {"per-tensor narrow weights", "w8a8", "gran=tensor,scheme=symmetric-narrow", "scheme=asymmetric-signed", NULL,
     {NULL}, true},
    {"per-group weights (biases stay float)", "w4a8", "gran=group:4", NULL, NULL, {NULL}, true},
    {"asymmetric weights, per-channel acts", "w6a8", "scheme=asymmetric,range=mse", "gran=channel,bits=7", NULL, {NULL},
     true},
    {"overrides: a float layer, a float bias, int16 codes, unsigned acts", "w8a8", NULL, NULL, NULL,
     {"c1:float", "fc:bias=float", "pw:weights=bits=16,round=nearest-away", "dw:acts=bits=4,scheme=unsigned",
      "last:w4a8", NULL},
     true},
    {"stochastic rounding", "w4a4", "round=stochastic:7:8", "round=stochastic:3", NULL, {NULL}, true},
    {"activations in float", "w8af", NULL, NULL, NULL, {NULL}, true},
    {"32-bit weights, 16-bit acts, narrow bias", "w8a16", "bits=32", NULL, "scheme=symmetric-narrow,bits=24", {NULL},
     true},
    {"percentile and pow2 scales", "w5a6", "scale=pow2", "range=percentile:99.5,scale=fp16", NULL, {NULL}, true},
    {"not calibrated", "w8a8", NULL, NULL, NULL, {NULL}, false},
    {"float preset", "float", NULL, NULL, NULL, {NULL}, true},
};

static void config_of(const case_t *c, qs_qconfig_t *cfg)
{
    qs_qconfig_default(cfg);
    ck_assert_msg(qs_qconfig_preset(cfg, c->preset, "test") == QS_OK, "%s", qs_last_error());
    const char *spec[QS_QT_COUNT] = {c->weights, c->acts, c->bias};
    for (int t = 0; t < QS_QT_COUNT; t++)
        if (spec[t])
            ck_assert_msg(qs_qconfig_set(cfg, (qs_qtarget_t)t, spec[t], "test") == QS_OK, "%s", qs_last_error());
    for (int k = 0; c->ov[k]; k++)
        ck_assert_msg(qs_qconfig_override(cfg, c->ov[k], "test") == QS_OK, "%s", qs_last_error());
}

START_TEST(test_round_trip_mixed)
{
    const case_t *c = &cases[_i];
    qs_graph_t *g = mixed();
    mem_data_t m;
    mem_data(&m, g, 48, 3);
    qs_qconfig_t cfg;
    config_of(c, &cfg);
    qs_qnet_t *q = quantize(g, &cfg, &m.d, c->calibrate, true);
    ck_assert_int_eq(q->folded, 1);
    char name[64];
    snprintf(name, sizeof name, "qm-mixed-%d.h5", _i);
    round_trip(q, name, &m.d, 300, true);
    qs_qnet_free(q);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

/* The cases reach what they claim to: the round trips above are not vacuous. */
START_TEST(test_cases_cover)
{
    qs_graph_t *g = mixed();
    mem_data_t m;
    mem_data(&m, g, 48, 3);
    qs_qconfig_t cfg;
    const int c1 = 1, r1 = 2, mp = 3, dw = 4, r2 = 5, pw = 6, fl = 7, fc = 8;
    config_of(&cases[0], &cfg);
    qs_qnet_t *q = quantize(g, &cfg, &m.d, true, true);
    ck_assert_str_eq(q->g->nodes[c1].name, "c1");
    ck_assert_str_eq(q->g->nodes[fc].name, "fc");
    ck_assert(q->layer[mp].ashare == r1 && q->layer[mp].aq && q->layer[fl].ashare == pw && q->layer[fl].aq);
    ck_assert(q->layer[c1].bcodes && q->layer[pw].bcodes && q->layer[fc].bcodes && !q->layer[dw].bq);
    ck_assert_int_eq(q->layer[c1].point, r1);
    ck_assert_int_eq(q->layer[dw].point, r2);
    qs_qnet_free(q);
    config_of(&cases[2], &cfg); /* per group: c1 has 5 groups per row (K = 18): no bias codes; pw one (K = 4) */
    q = quantize(g, &cfg, &m.d, true, true);
    ck_assert(q->layer[c1].wp->ndim == 2 && q->layer[c1].wp->shape[1] == 5 && !q->layer[c1].bcodes);
    ck_assert(q->layer[pw].bcodes != NULL);
    qs_qnet_free(q);
    config_of(&cases[3], &cfg); /* per-channel acts: no bias codes; asymmetric weights: zero points */
    q = quantize(g, &cfg, &m.d, true, true);
    ck_assert(q->layer[r1].ap->count == 4 && !q->layer[fc].bcodes && q->layer[fl].ap->count == 6);
    bool nonzero = false;
    for (int64_t k = 0; k < q->layer[fc].wp->count; k++)
        nonzero |= q->layer[fc].wp->zero_point[k] != 0;
    ck_assert(nonzero);
    qs_qnet_free(q);
    config_of(&cases[4], &cfg);
    q = quantize(g, &cfg, &m.d, true, true);
    ck_assert(!q->layer[c1].wq && !q->layer[r1].aq && q->layer[fc].bq == false && q->layer[pw].wquant.bits == 16);
    ck_assert(q->layer[r2].aquant.bits == 4 && q->layer[fc].wquant.bits == 4 && !q->layer[c1].bcodes);
    ck_assert(!q->layer[0].aq || q->layer[0].ap);
    qs_qnet_free(q);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_round_trip_zoo)
{
    static const char *const cfgs[][3] = {{"w8a8", NULL, NULL}, {"w4a8", "gran=group:8", "gran=channel"}};
    for (const char *const *z = qs_zoo_names(); *z; z++)
        for (size_t k = 0; k < sizeof cfgs / sizeof *cfgs; k++) {
            qs_graph_t *g = NULL;
            ck_assert_int_eq(qs_zoo_build(*z, 5, &g), QS_OK);
            mem_data_t m;
            mem_data(&m, g, 40, 4);
            qs_qconfig_t cfg;
            qs_qconfig_default(&cfg);
            ck_assert_int_eq(qs_qconfig_preset(&cfg, cfgs[k][0], "test"), QS_OK);
            if (cfgs[k][1])
                ck_assert_int_eq(qs_qconfig_set(&cfg, QS_QT_WEIGHTS, cfgs[k][1], "test"), QS_OK);
            if (cfgs[k][2])
                ck_assert_int_eq(qs_qconfig_set(&cfg, QS_QT_ACTS, cfgs[k][2], "test"), QS_OK);
            qs_qnet_t *q = quantize(g, &cfg, &m.d, true, false);
            ck_assert_int_gt(q->folded, 0);
            char name[64];
            snprintf(name, sizeof name, "qm-%s-%zu.h5", *z, k);
            round_trip(q, name, &m.d, 200, false);
            qs_qnet_free(q);
            mem_free(&m);
            qs_graph_free(g);
        }
}
END_TEST

/* ---- the file ----------------------------------------------------------------------------------------- */

static qs_qnet_t *mixed_w8a8(mem_data_t *m, qs_graph_t **gout)
{
    qs_graph_t *g = mixed();
    mem_data(m, g, 48, 3);
    qs_qconfig_t cfg;
    config_of(&cases[0], &cfg);
    qs_qnet_t *q = quantize(g, &cfg, &m->d, true, true);
    *gout = g;
    return q;
}

static hid_t h5_edit(const char *path)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    return f;
}

START_TEST(test_layout)
{
    mem_data_t m;
    qs_graph_t *g;
    qs_qnet_t *q = mixed_w8a8(&m, &g);
    char path[512];
    qs_test_path(path, sizeof path, "qm-layout.h5");
    ck_assert_int_eq(qs_qnet_save(q, path), QS_OK);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    int64_t v = 0;
    hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
    ck_assert_int_ge(H5Aread(a, H5T_NATIVE_INT64, &v), 0);
    H5Aclose(a);
    ck_assert_int_eq(v, 2);
    /* weights codes in the narrowest type: int8 for 8 bits */
    hid_t d = H5Dopen2(f, "/nodes/0001_c1/quant/weights/codes", H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    hid_t t = H5Dget_type(d);
    ck_assert(H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 1);
    H5Tclose(t);
    int8_t codes[72];
    ck_assert_int_ge(H5Dread(d, H5T_NATIVE_INT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, codes), 0);
    H5Dclose(d);
    for (int k = 0; k < 72; k++)
        ck_assert_int_eq(codes[k], qs_i32(q->layer[1].wcodes)[k]);
    /* the groups present where something is quantized, and nowhere else */
    ck_assert(H5Lexists(f, "/quant", H5P_DEFAULT) > 0);
    ck_assert(H5Lexists(f, "/nodes/0001_c1/quant/bias", H5P_DEFAULT) > 0);
    ck_assert(H5Lexists(f, "/nodes/0001_c1/quant/acts", H5P_DEFAULT) == 0); /* c1's point is r1 */
    ck_assert(H5Lexists(f, "/nodes/0002_r1/quant/acts/scale", H5P_DEFAULT) > 0);
    ck_assert(H5Lexists(f, "/nodes/0004_dw/quant/bias", H5P_DEFAULT) == 0);  /* no bias */
    ck_assert(H5Aexists_by_name(f, "/nodes/0003_mp/quant/acts", "shares", H5P_DEFAULT) > 0);
    ck_assert(H5Aexists_by_name(f, "/quant", "quasar_version", H5P_DEFAULT) > 0);
    H5Fclose(f);
    qs_qnet_free(q);
    mem_free(&m);
    qs_graph_free(g);
    unlink(path);
}
END_TEST

/* A copy of src at dst, then edited by fn; loading must fail with code and the messages. */
typedef void (*edit_fn)(hid_t f);

static void copy_file(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    ck_assert(in && out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
}

static void expect_bad(const char *good, edit_fn fn, int code, const char *s1, const char *s2)
{
    char path[512];
    qs_test_path(path, sizeof path, "qm-bad.h5");
    copy_file(good, path);
    if (fn) {
        hid_t f = h5_edit(path);
        fn(f);
        ck_assert_int_ge(H5Fclose(f), 0);
    }
    qs_qnet_t *q = (qs_qnet_t *)1;
    int rc = qs_qnet_load(path, &q);
    ck_assert_msg(rc == code, "load gave %d (%s), expected %d", rc, qs_last_error(), code);
    ck_assert_ptr_null(q);
    HAS(path);
    HAS(s1);
    if (s2)
        HAS(s2);
    unlink(path);
}

/* Replaces dataset name with one of type ftype and the given shape, from int64 or double values. */
static void put_ints(hid_t f, const char *name, hid_t ftype, int ndim, const hsize_t *dims, const int64_t *v)
{
    if (H5Lexists(f, name, H5P_DEFAULT) > 0)
        ck_assert_int_ge(H5Ldelete(f, name, H5P_DEFAULT), 0);
    hid_t s = H5Screate_simple(ndim, dims, NULL);
    hid_t d = H5Dcreate2(f, name, ftype, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    ck_assert_int_ge(H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    H5Dclose(d);
    H5Sclose(s);
}

static void put_floats(hid_t f, const char *name, int ndim, const hsize_t *dims, const float *v)
{
    if (H5Lexists(f, name, H5P_DEFAULT) > 0)
        ck_assert_int_ge(H5Ldelete(f, name, H5P_DEFAULT), 0);
    hid_t s = H5Screate_simple(ndim, dims, NULL);
    hid_t d = H5Dcreate2(f, name, H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    ck_assert_int_ge(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    H5Dclose(d);
    H5Sclose(s);
}

/* Element k of an existing float or integer dataset set to v. */
static void poke(hid_t f, const char *name, hsize_t k, double v)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    hid_t s = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    double *buf = malloc((size_t)n * sizeof *buf);
    ck_assert_int_ge(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), 0);
    buf[k] = v;
    ck_assert_int_ge(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), 0);
    free(buf);
    H5Sclose(s);
    H5Dclose(d);
}

static void set_attr_str(hid_t f, const char *obj, const char *attr, const char *v)
{
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    ck_assert_int_ge(o, 0);
    if (H5Aexists(o, attr) > 0)
        H5Adelete(o, attr);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(o, attr, t, s, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(H5Awrite(a, t, v), 0);
    H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
    H5Oclose(o);
}

static void set_attr_int(hid_t f, const char *obj, const char *attr, int64_t v)
{
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    ck_assert_int_ge(o, 0);
    if (H5Aexists(o, attr) > 0)
        H5Adelete(o, attr);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(o, attr, H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(H5Awrite(a, H5T_NATIVE_INT64, &v), 0);
    H5Aclose(a);
    H5Sclose(s);
    H5Oclose(o);
}

#define W1 "/nodes/0001_c1/quant/weights"
static void e_code_range(hid_t f)
{
    int64_t v[72] = {0};
    v[3] = 200;
    put_ints(f, W1 "/codes", H5T_STD_I32LE, 4, (hsize_t[]){4, 2, 3, 3}, v);
}
static void e_code_int32(hid_t f)
{
    int64_t v[72] = {0};
    v[70] = INT64_C(5000000000);
    put_ints(f, W1 "/codes", H5T_STD_I64LE, 4, (hsize_t[]){4, 2, 3, 3}, v);
}
static void e_code_float(hid_t f) { put_floats(f, W1 "/codes", 4, (hsize_t[]){4, 2, 3, 3}, (float[72]){0}); }
static void e_code_shape(hid_t f) { put_ints(f, W1 "/codes", H5T_STD_I8LE, 2, (hsize_t[]){4, 18}, (int64_t[72]){0}); }
static void e_neg_scale(hid_t f) { poke(f, "/nodes/0002_r1/quant/acts/scale", 0, -0.5); }
static void e_nan_scale(hid_t f) { poke(f, W1 "/scale", 2, NAN); }
static void e_bad_spec(hid_t f) { set_attr_str(f, W1, "spec", "bitz=4"); }
static void e_bad_spec_value(hid_t f) { set_attr_str(f, "/nodes/0002_r1/quant/acts", "spec", "bits=99"); }
static void e_missing_zp(hid_t f) { ck_assert_int_ge(H5Ldelete(f, "/nodes/0006_pw/quant/weights/zero_point", H5P_DEFAULT), 0); }
static void e_version3(hid_t f) { set_attr_int(f, "/", "format_version", 3); }
static void e_zp_range(hid_t f) { poke(f, "/nodes/0000_input/quant/acts/zero_point", 0, 300); }
static void e_zp_symmetric(hid_t f) { poke(f, W1 "/zero_point", 1, 1); }
static void e_scale_shape(hid_t f)
{
    put_floats(f, W1 "/scale", 1, (hsize_t[]){3}, (float[]){0.1f, 0.1f, 0.1f});
    put_ints(f, W1 "/zero_point", H5T_STD_I32LE, 1, (hsize_t[]){3}, (int64_t[]){0, 0, 0});
}
static void e_zp_shape(hid_t f) { put_ints(f, W1 "/zero_point", H5T_STD_I32LE, 1, (hsize_t[]){3}, (int64_t[]){0, 0, 0}); }
static void e_bias_scale(hid_t f) { poke(f, "/nodes/0008_fc/quant/bias/scale", 4, 0.125); }
static void e_bias_half(hid_t f) { ck_assert_int_ge(H5Ldelete(f, "/nodes/0008_fc/quant/bias/scale", H5P_DEFAULT), 0); }
static void e_bias_code_range(hid_t f)
{
    /* the bias quantizer of an 8-bit bias: its codes must fit */
    set_attr_str(f, "/nodes/0008_fc/quant/bias", "spec", "bits=8,gran=channel");
    poke(f, "/nodes/0008_fc/quant/bias/codes", 0, 1000);
}
static void e_acts_not_point(hid_t f)
{
    hid_t g = H5Gcreate2(f, "/nodes/0001_c1/quant/acts", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
    set_attr_str(f, "/nodes/0001_c1/quant/acts", "spec", "bits=8");
}
static void e_extra_dataset(hid_t f) { put_floats(f, W1 "/extra", 1, (hsize_t[]){1}, (float[]){1}); }
static void e_extra_attr(hid_t f) { set_attr_int(f, W1, "accumulator", 32); }
static void e_extra_group(hid_t f)
{
    hid_t g = H5Gcreate2(f, "/nodes/0001_c1/quant/requant", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
}
static void e_calibrated(hid_t f) { set_attr_int(f, "/quant", "calibrated", 2); }
static void e_shares(hid_t f) { set_attr_str(f, "/nodes/0003_mp/quant/acts", "shares", "c1"); }
static void e_shares_missing(hid_t f) { ck_assert_int_ge(H5Adelete_by_name(f, "/nodes/0003_mp/quant/acts", "shares", H5P_DEFAULT), 0); }
static void e_share_params(hid_t f) { poke(f, "/nodes/0003_mp/quant/acts/scale", 0, 0.75); }
static void e_override(hid_t f)
{
    set_attr_int(f, "/quant", "override_count", 1);
    set_attr_str(f, "/quant", "override_layer", "nope");
    set_attr_str(f, "/quant", "override_target", "weights");
    set_attr_str(f, "/quant", "override_spec", "bits=4");
}
static void e_override_count(hid_t f) { set_attr_int(f, "/quant", "override_count", 2); }
static void e_missing_cfg(hid_t f) { ck_assert_int_ge(H5Adelete_by_name(f, "/quant", "weights", H5P_DEFAULT), 0); }
static void e_no_act_scale(hid_t f)
{
    ck_assert_int_ge(H5Ldelete(f, "/nodes/0005_r2/quant/acts/scale", H5P_DEFAULT), 0);
    ck_assert_int_ge(H5Ldelete(f, "/nodes/0005_r2/quant/acts/zero_point", H5P_DEFAULT), 0);
}
static void e_no_quant(hid_t f) { ck_assert_int_ge(H5Ldelete(f, "/quant", H5P_DEFAULT), 0); }
static void e_weights_float_node(hid_t f)
{
    hid_t g = H5Gcreate2(f, "/nodes/0002_r1/quant/weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
}
static void e_stats(hid_t f) { set_attr_int(f, W1, "stats_count", -1); }
static void e_uncalibrated(hid_t f) { set_attr_int(f, "/quant", "calibrated", 0); }

START_TEST(test_bad_files)
{
    mem_data_t m;
    qs_graph_t *g;
    qs_qnet_t *q = mixed_w8a8(&m, &g);
    char good[512];
    qs_test_path(good, sizeof good, "qm-good.h5");
    ck_assert_int_eq(qs_qnet_save(q, good), QS_OK);
    const int F = QS_ERR_FORMAT;
    const char *c1 = "node 'c1' (/nodes/0001_c1/quant/weights)";
    expect_bad(good, e_code_range, F, c1, "codes[3] is 200, outside the code range -128..127 of bits=8, scheme=symmetric");
    expect_bad(good, e_code_int32, F, c1, "codes[70] is 5000000000, outside the int32 range");
    expect_bad(good, e_code_float, F, c1, "dataset 'codes' does not hold integers");
    expect_bad(good, e_code_shape, F, c1, "codes have shape [4, 18], but the weight has shape [4, 2, 3, 3]");
    expect_bad(good, e_neg_scale, F, "node 'r1' (/nodes/0002_r1/quant/acts)", "scale[0] is -0.5; scales must be positive and finite");
    expect_bad(good, e_nan_scale, F, c1, "scale[2] is nan");
    expect_bad(good, e_bad_spec, F, c1, "attribute 'spec': unknown key 'bitz'");
    expect_bad(good, e_bad_spec_value, F, "node 'r1'", "attribute 'spec'");
    expect_bad(good, e_missing_zp, F, "node 'pw' (/nodes/0006_pw/quant/weights)", "dataset 'zero_point' is missing");
    expect_bad(good, e_version3, QS_ERR_UNSUPPORTED, "has model format version 3; this quasar reads version 2 and older",
               NULL);
    expect_bad(good, e_zp_range, F, "node 'input'", "zero_point[0] is 300, outside the code range 0..255 of bits=8, scheme=asymmetric");
    expect_bad(good, e_zp_symmetric, F, c1, "zero_point[1] is 1; scheme=symmetric has zero point 0");
    expect_bad(good, e_scale_shape, F, c1,
               "scale and zero_point have shape [3], but gran=channel on a tensor of shape [4, 2, 3, 3] gives [4]");
    expect_bad(good, e_zp_shape, F, c1, "scale has shape [4] but zero_point has shape [3]");
    expect_bad(good, e_bias_scale, F, "node 'fc' (/nodes/0008_fc/quant/bias)", "scale[4] is 0.125, but s_w*s_x is");
    expect_bad(good, e_bias_half, F, "node 'fc'", "dataset 'scale' is missing (a quantized bias has codes and scale)");
    expect_bad(good, e_bias_code_range, F, "node 'fc'", "codes[0] is 1000, outside the code range -128..127");
    expect_bad(good, e_acts_not_point, F, "node 'c1' (/nodes/0001_c1/quant/acts)",
               "not a quantization point: the output of this conv2d is quantized at node 'r1'");
    expect_bad(good, e_extra_dataset, F, c1, "unexpected dataset 'extra'");
    expect_bad(good, e_extra_attr, F, c1, "unexpected attribute 'accumulator'");
    expect_bad(good, e_extra_group, F, "node 'c1' (/nodes/0001_c1/quant)", "unexpected group 'requant'");
    expect_bad(good, e_calibrated, F, "/quant", "attribute 'calibrated' is 2, expected 0..1");
    expect_bad(good, e_shares, F, "node 'mp'", "shares is 'c1', but this maxpool keeps the grid of node 'r1'");
    expect_bad(good, e_shares_missing, F, "node 'mp'", "attribute 'shares' is missing");
    expect_bad(good, e_share_params, F, "node 'mp'", "keeps the grid of node 'r1', but its activation quantizer or parameters differ");
    expect_bad(good, e_override, F, "/quant", "override 0 names layer 'nope', which is not a node of the model");
    expect_bad(good, e_override_count, F, "/quant", "attribute 'override_layer' is missing");
    expect_bad(good, e_missing_cfg, F, "/quant", "attribute 'weights' is missing");
    expect_bad(good, e_no_act_scale, F, "node 'r2'", "the model is calibrated, but this quantization point has no scale");
    expect_bad(good, e_no_quant, F, "is a float model, not a quantized one (make one with quasar quantize-model)", NULL);
    expect_bad(good, e_weights_float_node, F, "node 'r1' (/nodes/0002_r1/quant/weights)", "attribute 'spec' is missing");
    expect_bad(good, e_stats, F, c1, "attribute 'stats_count' is -1");
    expect_bad(good, e_uncalibrated, F, "the model is not calibrated (calibrated = 0), but this node has calibrated", NULL);

    /* truncated: the model loader's message */
    char path[512];
    qs_test_path(path, sizeof path, "qm-trunc.h5");
    copy_file(good, path);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(truncate(path, st.st_size / 2), 0);
    qs_qnet_t *r = (qs_qnet_t *)1;
    ck_assert_int_eq(qs_qnet_load(path, &r), QS_ERR_FORMAT);
    ck_assert_ptr_null(r);
    HAS("truncated or corrupt");
    ck_assert_int_lt(qs_model_is_quantized(path), 0);
    HAS("truncated or corrupt");
    unlink(path);
    unlink(good);
    qs_qnet_free(q);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_float_models)
{
    qs_graph_t *g = mixed();
    char path[512];
    qs_test_path(path, sizeof path, "qm-float.h5");
    ck_assert_int_eq(qs_model_save(g, path), QS_OK);
    ck_assert_int_eq(qs_model_is_quantized(path), 0);
    qs_qnet_t *q = (qs_qnet_t *)1;
    ck_assert_int_eq(qs_qnet_load(path, &q), QS_ERR_FORMAT);
    ck_assert_ptr_null(q);
    char want[600];
    snprintf(want, sizeof want, "'%s' is a float model, not a quantized one (make one with quasar quantize-model)", path);
    ck_assert_str_eq(qs_last_error(), want);
    /* a version 1 file with a /quant group is still a float model */
    hid_t f = h5_edit(path);
    hid_t grp = H5Gcreate2(f, "/quant", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(grp);
    H5Fclose(f);
    ck_assert_int_eq(qs_model_is_quantized(path), 0);
    unlink(path);
    /* files that are not models */
    ck_assert_int_lt(qs_model_is_quantized(path), 0);
    HAS("cannot open model");
    HAS("No such file");
    ck_assert_int_eq(qs_qnet_load(path, &q), QS_ERR_IO);
    FILE *fp = fopen(path, "w");
    fputs("not hdf5\n", fp);
    fclose(fp);
    ck_assert_int_lt(qs_model_is_quantized(path), 0);
    HAS("is not a readable HDF5 file");
    unlink(path);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_save_refuses)
{
    mem_data_t m;
    qs_graph_t *g;
    qs_qnet_t *q = mixed_w8a8(&m, &g);
    char path[512];
    qs_test_path(path, sizeof path, "qm-refuse.h5");
    ck_assert_int_eq(qs_qnet_save(q, path), QS_OK);
    struct stat before;
    ck_assert_int_eq(stat(path, &before), 0);
    /* an inconsistent network is not written, and the file there stays */
    int32_t keep = qs_i32(q->layer[1].wcodes)[0];
    qs_i32(q->layer[1].wcodes)[0] = 500;
    ck_assert_int_eq(qs_qnet_save(q, path), QS_ERR_INVALID);
    HAS("cannot save '");
    HAS("node 'c1' (/nodes/0001_c1/quant/weights): codes[0] is 500, outside the code range -128..127");
    qs_i32(q->layer[1].wcodes)[0] = keep;
    float s = q->layer[2].ap->scale[0];
    q->layer[2].ap->scale[0] = 0.0f;
    ck_assert_int_eq(qs_qnet_save(q, path), QS_ERR_INVALID);
    HAS("node 'r1' (/nodes/0002_r1/quant/acts): scale[0] is 0; scales must be positive and finite");
    q->layer[2].ap->scale[0] = s;
    struct stat after;
    ck_assert_int_eq(stat(path, &after), 0);
    ck_assert(before.st_ino == after.st_ino && before.st_size == after.st_size);
    no_temporaries(path);
    ck_assert_int_eq(qs_qnet_save(q, "/nonexistent-dir/q.h5"), QS_ERR_IO);
    HAS("/nonexistent-dir/q.h5");
    ck_assert_int_eq(qs_qnet_save(NULL, path), QS_ERR_INVALID);
    /* a save over an existing file replaces it */
    qs_qconfig_t cfg;
    config_of(&cases[2], &cfg);
    qs_qnet_t *q2 = quantize(g, &cfg, &m.d, true, true);
    ck_assert_int_eq(qs_qnet_save(q2, path), QS_OK);
    qs_qnet_t *r = NULL;
    ck_assert_int_eq(qs_qnet_load(path, &r), QS_OK);
    same_qnet(q2, r);
    qs_qnet_free(r);
    qs_qnet_free(q2);
    unlink(path);
    qs_qnet_free(q);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

static Suite *qmodel_suite(void)
{
    Suite *s = suite_create("qmodel");
    TCase *tc = tcase_create("qmodel");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_round_trip_mixed, 0, (int)(sizeof cases / sizeof *cases));
    tcase_add_test(tc, test_cases_cover);
    tcase_add_test(tc, test_round_trip_zoo);
    tcase_add_test(tc, test_layout);
    tcase_add_test(tc, test_bad_files);
    tcase_add_test(tc, test_float_models);
    tcase_add_test(tc, test_save_refuses);
    suite_add_tcase(s, tc);
    return s;
}

QS_TEST_MAIN(qmodel_suite)
