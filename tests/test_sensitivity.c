/* tests/test_sensitivity.c — per-unit sensitivity (sim/sensitivity.c,
 * docs/sensitivity.md): the units of a graph with a maxpool, an add, an
 * avgpool and a flatten, and of the default architectures; every "only" and
 * "all but" run equal, bit for bit, to qs_qeval with the same selection (with
 * stochastic activation rounding and other batch sizes too); the ranking;
 * units the configuration leaves in float; 1 and 2 threads; progress and
 * interruption; errors. */
#include "sim/sim_internal.h"
#include "tests/testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------------------------- */

static qs_tensor_t *rand_tensor(int ndim, const int64_t *shape, float a, uint64_t stream)
{
    qs_tensor_t *t = qs_tensor_create(QS_F32, ndim, shape);
    ck_assert_ptr_nonnull(t);
    for (int64_t i = 0; i < t->size; i++)
        qs_f32(t)[i] = (float)((2.0 * qs_rng_uniform(77, stream, (uint64_t)i) - 1.0) * a);
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
    /* each image and channel with its own offset and contrast, so that
     * pooled features (and the classes) differ between images */
    const int64_t hw = g->in_h * g->in_w;
    for (int64_t i = 0; i < n * per; i++) {
        uint64_t ic = (uint64_t)(i / hw);
        double off = 2.0 * qs_rng_uniform(4, stream, 2 * ic) - 1.0, amp = 2.0 * qs_rng_uniform(4, stream, 2 * ic + 1);
        m->img[i] = (float)(off + amp * (qs_rng_uniform(5, stream, (uint64_t)i) - 0.5));
    }
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

/* Labels := the float model's classes, so that the float top-1 is exactly 1
 * and every drop is an image the quantization moved. */
static void label_by_float(mem_data_t *m, const qs_graph_t *g)
{
    qs_engine_t *e = NULL;
    ck_assert_int_eq(qs_engine_create(g, NULL, &e), QS_OK);
    int64_t xs[4] = {m->d.n, m->d.c, m->d.h, m->d.w};
    qs_tensor_t *x = qs_tensor_create(QS_F32, 4, xs);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(qs_dataset_batch(&m->d, g, 0, NULL, m->d.n, x, NULL), QS_OK);
    const qs_tensor_t *y;
    ck_assert_int_eq(qs_engine_forward(e, x, &y), QS_OK);
    for (int64_t i = 0; i < m->d.n; i++) {
        const float *l = qs_f32(y) + i * g->num_classes;
        int best = 0;
        for (int j = 1; j < g->num_classes; j++)
            if (l[j] > l[best])
                best = j;
        m->lab[i] = best;
    }
    qs_tensor_free(x);
    qs_engine_free(e);
}

static qs_qnet_t *quantize(const qs_graph_t *g, const qs_qconfig_t *c, const qs_dataset_t *d, qs_pool_t *pool)
{
    qs_qnet_t *q = NULL;
    int rc = qs_qnet_create(g, c, &q);
    ck_assert_msg(rc == QS_OK, "qs_qnet_create: %s", qs_last_error());
    qs_calib_opts_t o;
    qs_calib_opts_default(&o);
    o.images = d->n;
    o.batch = 16;
    o.pool = pool;
    rc = qs_qnet_calibrate(q, d, &o, NULL);
    ck_assert_msg(rc == QS_OK, "qs_qnet_calibrate: %s", qs_last_error());
    return q;
}

static qs_sensitivity_t *sensitivity(const qs_qnet_t *q, const qs_dataset_t *d, qs_pool_t *pool, int64_t batch)
{
    qs_engine_opts_t eo = {pool, false};
    qs_sensitivity_t *s = NULL;
    int rc = qs_sensitivity(q, d, &eo, batch, NULL, &s);
    ck_assert_msg(rc == QS_OK, "qs_sensitivity: %s", qs_last_error());
    ck_assert_ptr_nonnull(s);
    return s;
}

/* ---- a small graph with every kind of unit --------------------------------------------------- */

/* input 2x8x8 -> c1 conv 3x3 (6, bias) -> r1 relu -> mp maxpool 2x2 -> c2 conv 1x1 (6) -> bn2
 *   -> a1 add(bn2, mp) -> r2 relu -> ap avgpool 4x4 -> f flatten -> fc linear (5, bias) */
static qs_graph_t *small(void)
{
    qs_graph_t *g = qs_graph_create("small", 2, 8, 8);
    ck_assert_ptr_nonnull(g);
    int in = 0;
    qs_node_t n = qs_node_init(QS_OP_CONV2D, "c1", 1, &in);
    n.kh = n.kw = 3;
    n.pad_top = n.pad_left = n.pad_bottom = n.pad_right = 1;
    int64_t w1[4] = {6, 2, 3, 3}, b6 = 6, w2[4] = {6, 6, 1, 1}, w3[2] = {5, 6}, b5 = 5;
    n.weight = rand_tensor(4, w1, 0.5f, 1);
    n.bias = rand_tensor(1, &b6, 0.1f, 2);
    int c1 = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_RELU, "r1", 1, &c1);
    int r1 = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_MAXPOOL, "mp", 1, &r1);
    n.kh = n.kw = n.stride_h = n.stride_w = 2;
    int mp = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_CONV2D, "c2", 1, &mp);
    n.weight = rand_tensor(4, w2, 0.6f, 3);
    int c2 = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_BATCHNORM, "bn2", 1, &c2);
    n.gamma = rand_tensor(1, &b6, 0.3f, 4);
    n.beta = rand_tensor(1, &b6, 0.2f, 5);
    n.mean = rand_tensor(1, &b6, 0.1f, 6);
    n.var = rand_tensor(1, &b6, 0.0f, 7);
    for (int k = 0; k < 6; k++) {
        qs_f32(n.gamma)[k] += 1.0f;
        qs_f32(n.var)[k] = 1.0f + 0.1f * (float)k;
    }
    int bn2 = qs_graph_add(g, &n);
    int ins[2] = {bn2, mp};
    n = qs_node_init(QS_OP_ADD, "a1", 2, ins);
    int a1 = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_RELU, "r2", 1, &a1);
    int r2 = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_AVGPOOL, "ap", 1, &r2);
    n.kh = n.kw = n.stride_h = n.stride_w = 4;
    int ap = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_FLATTEN, "f", 1, &ap);
    int f = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_LINEAR, "fc", 1, &f);
    n.weight = rand_tensor(2, w3, 0.8f, 8);
    n.bias = rand_tensor(1, &b5, 0.1f, 9);
    ck_assert_int_ge(qs_graph_add(g, &n), 0);
    g->num_classes = 5;
    ck_assert_int_eq(qs_graph_infer(g), QS_OK);
    return g;
}

static int node(const qs_qnet_t *q, const char *name)
{
    int i = qs_graph_find(q->g, name);
    ck_assert_msg(i >= 0, "no node '%s'", name);
    return i;
}

typedef struct {
    const char *node, *point;
    bool weights, bias, acts;
} want_unit_t;

static void check_units(const qs_qnet_t *q, const want_unit_t *want, int nwant)
{
    qs_sens_unit_t *u = malloc((size_t)q->g->nnodes * sizeof *u);
    ck_assert_ptr_nonnull(u);
    int n = qs_sens_units(q, u);
    ck_assert_int_eq(n, nwant);
    for (int k = 0; k < n; k++) {
        ck_assert_msg(u[k].node == node(q, want[k].node), "unit %d: node '%s', expected '%s'", k,
                      q->g->nodes[u[k].node].name, want[k].node);
        ck_assert_msg(u[k].point == node(q, want[k].point), "unit %d (%s): point '%s', expected '%s'", k,
                      want[k].node, u[k].point >= 0 ? q->g->nodes[u[k].point].name : "-", want[k].point);
        ck_assert_msg(u[k].weights == want[k].weights && u[k].bias == want[k].bias && u[k].acts == want[k].acts,
                      "unit %s: w %d b %d a %d, expected %d %d %d", want[k].node, u[k].weights, u[k].bias, u[k].acts,
                      want[k].weights, want[k].bias, want[k].acts);
    }
    free(u);
}

START_TEST(test_units_small)
{
    qs_graph_t *g = small();
    mem_data_t m;
    mem_data(&m, g, 24, 1);
    qs_qconfig_t c;
    qs_qconfig_preset(&c, "w4a4", "t");
    qs_qnet_t *q = quantize(g, &c, &m.d, NULL);
    ck_assert_int_eq(q->folded, 1); /* bn2 into c2: c2 then feeds the add directly */
    /* mp and f keep their source's grid: no units; r1 and r2 end the chains of c1 and a1 */
    static const want_unit_t want[] = {
        {"input", "input", false, false, true}, {"c1", "r1", true, true, true}, {"c2", "c2", true, true, true},
        {"a1", "r2", false, false, true},       {"ap", "ap", false, false, true}, {"fc", "fc", true, true, true},
    };
    check_units(q, want, 6);
    qs_qnet_free(q);

    /* the configuration decides what a unit holds: c2's weights, a1's point and all of fc in float; the
     * bias of c1 stays float when its input is not quantized per tensor */
    qs_qconfig_preset(&c, "w4a4", "t");
    ck_assert_int_eq(qs_qconfig_override(&c, "c2:weights=float", "t"), QS_OK);
    ck_assert_int_eq(qs_qconfig_override(&c, "a1:acts=float", "t"), QS_OK);
    ck_assert_int_eq(qs_qconfig_override(&c, "fc:float", "t"), QS_OK);
    ck_assert_int_eq(qs_qconfig_override(&c, "input:acts=gran=channel", "t"), QS_OK);
    q = quantize(g, &c, &m.d, NULL);
    static const want_unit_t want2[] = {
        {"input", "input", false, false, true}, {"c1", "r1", true, false, true}, {"c2", "c2", false, false, true},
        {"a1", "r2", false, false, false},      {"ap", "ap", false, false, true}, {"fc", "fc", false, false, false},
    };
    check_units(q, want2, 6);

    /* selections */
    const int n = q->g->nnodes;
    bool *w = malloc((size_t)n), *a = malloc((size_t)n);
    qs_sens_unit_t *u = malloc((size_t)n * sizeof *u);
    ck_assert(w && a && u);
    ck_assert_int_eq(qs_sens_units(q, u), 6);
    qs_sens_select(q, NULL, false, w, a);
    for (int i = 0; i < n; i++)
        ck_assert(!w[i] && !a[i]);
    qs_sens_select(q, NULL, true, w, a);
    for (int i = 0; i < n; i++)
        ck_assert(w[i] && a[i]);
    qs_sens_select(q, &u[1], false, w, a); /* only c1 */
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(w[i], i == node(q, "c1"));
        ck_assert_int_eq(a[i], i == node(q, "r1"));
    }
    qs_sens_select(q, &u[3], true, w, a); /* all but a1 */
    for (int i = 0; i < n; i++) {
        ck_assert(w[i]);
        ck_assert_int_eq(a[i], i != node(q, "r2"));
    }
    free(w);
    free(a);
    free(u);
    qs_qnet_free(q);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_units_zoo)
{
    qs_graph_t *g = NULL;
    ck_assert_int_eq(qs_zoo_build("fmnist-dwsep", 1, &g), QS_OK);
    mem_data_t m;
    mem_data(&m, g, 16, 2);
    qs_qconfig_t c;
    qs_qconfig_default(&c);
    qs_qnet_t *q = quantize(g, &c, &m.d, NULL);
    /* the zoo's convs have no bias; folding gives them one */
    static const want_unit_t dw[] = {
        {"input", "input", false, false, true},        {"stem", "stem.relu6", true, true, true},
        {"b1.dw", "b1.dw.relu6", true, true, true},    {"b1.pw", "b1.pw.relu6", true, true, true},
        {"b2.dw", "b2.dw.relu6", true, true, true},    {"b2.pw", "b2.pw.relu6", true, true, true},
        {"b3.dw", "b3.dw.relu6", true, true, true},    {"b3.pw", "b3.pw.relu6", true, true, true},
        {"gap", "gap", false, false, true},            {"fc", "fc", true, true, true},
    };
    check_units(q, dw, 10);
    qs_qnet_free(q);
    qs_graph_free(g);

    ck_assert_int_eq(qs_zoo_build("fmnist-resnet", 1, &g), QS_OK);
    q = quantize(g, &c, &m.d, NULL);
    static const want_unit_t rn[] = {
        {"input", "input", false, false, true},           {"stem", "stem.relu", true, true, true},
        {"b1.conv1", "b1.conv1.relu", true, true, true},  {"b1.conv2", "b1.conv2", true, true, true},
        {"b1.add", "b1.relu", false, false, true},        {"b2.conv1", "b2.conv1.relu", true, true, true},
        {"b2.conv2", "b2.conv2", true, true, true},       {"b2.proj", "b2.proj", true, true, true},
        {"b2.add", "b2.relu", false, false, true},        {"b3.conv1", "b3.conv1.relu", true, true, true},
        {"b3.conv2", "b3.conv2", true, true, true},       {"b3.proj", "b3.proj", true, true, true},
        {"b3.add", "b3.relu", false, false, true},        {"gap", "gap", false, false, true},
        {"fc", "fc", true, true, true},
    };
    check_units(q, rn, 15);
    qs_qnet_free(q);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

/* ---- every run is a qs_qeval run ------------------------------------------------------------- */

static void same_run(const qs_sens_run_t *r, const qs_qeval_t *e, const char *what)
{
    ck_assert_msg(r->top1 == e->top1, "%s: top1 %.17g, qs_qeval %.17g", what, r->top1, e->top1);
    ck_assert_msg(r->agreement == e->agreement, "%s: agreement %.17g, qs_qeval %.17g", what, r->agreement,
                  e->agreement);
    ck_assert_msg(r->logit_sqnr_db == e->logit_sqnr_db || (isnan(r->logit_sqnr_db) && isnan(e->logit_sqnr_db)),
                  "%s: logit SQNR %.17g, qs_qeval %.17g", what, r->logit_sqnr_db, e->logit_sqnr_db);
    ck_assert_int_eq(r->correct, (int64_t)llround(e->top1 * (double)e->images));
}

/* Each row's runs against qs_qeval with the same selection (another batch size). */
static void check_against_qeval(const qs_qnet_t *q, const qs_dataset_t *d, const qs_sensitivity_t *s, int64_t batch)
{
    const int n = q->g->nnodes;
    bool *w = malloc((size_t)n), *a = malloc((size_t)n);
    ck_assert(w && a);
    qs_qselect_t sel = {w, a};
    qs_qeval_t e;
    char what[128];
    ck_assert_int_eq(qs_qeval(q, d, NULL, NULL, batch, NULL, &e), QS_OK);
    same_run(&s->all, &e, "all quantized");
    ck_assert(s->fp.top1 == e.float_top1);
    qs_qeval_free(&e);
    for (int k = 0; k < s->nrows; k++) {
        const qs_sens_row_t *r = &s->row[k];
        for (int allbut = 0; allbut < 2; allbut++) {
            qs_sens_select(q, &r->u, allbut, w, a);
            ck_assert_int_eq(qs_qeval(q, d, NULL, &sel, batch, NULL, &e), QS_OK);
            snprintf(what, sizeof what, "%s %s", allbut ? "all but" : "only", q->g->nodes[r->u.node].name);
            same_run(allbut ? &r->all_but : &r->only, &e, what);
            qs_qeval_free(&e);
        }
        ck_assert(r->only_drop == s->fp.top1 - r->only.top1);
        ck_assert(r->all_but_gain == r->all_but.top1 - s->all.top1);
    }
    free(w);
    free(a);
}

static void check_order(const qs_sensitivity_t *s)
{
    bool *seen = calloc((size_t)s->nrows, 1);
    ck_assert_ptr_nonnull(seen);
    for (int k = 0; k < s->nrows; k++) {
        int i = s->order[k];
        ck_assert(i >= 0 && i < s->nrows && !seen[i]);
        seen[i] = true;
        if (k == 0)
            continue;
        const qs_sens_row_t *p = &s->row[s->order[k - 1]], *r = &s->row[i];
        ck_assert_msg(p->only_drop > r->only_drop || (p->only_drop == r->only_drop && s->order[k - 1] < i),
                      "rank %d: drop %g (row %d) after %g (row %d)", k + 1, r->only_drop, i, p->only_drop,
                      s->order[k - 1]);
        ck_assert(p->only.correct <= r->only.correct);
    }
    for (int k = 1; k < s->nrows; k++) /* rows in node order */
        ck_assert_int_lt(s->row[k - 1].u.node, s->row[k].u.node);
    free(seen);
}

START_TEST(test_runs_equal_qeval)
{
    qs_graph_t *g = small();
    mem_data_t cal, m;
    mem_data(&cal, g, 32, 3);
    mem_data(&m, g, 57, 4);
    qs_qconfig_t c;
    qs_qconfig_preset(&c, "w3a3", "t");
    qs_qnet_t *q = quantize(g, &c, &cal.d, NULL);
    label_by_float(&m, q->g);
    qs_sensitivity_t *s = sensitivity(q, &m.d, NULL, 10);
    ck_assert_int_eq(s->images, 57);
    ck_assert_int_eq(s->nrows, 6);
    ck_assert(s->fp.top1 == 1.0 && s->fp.agreement == 1.0 && isinf(s->fp.logit_sqnr_db));
    ck_assert_int_eq(s->fp.correct, 57);
    ck_assert(s->all.top1 < 1.0); /* 3 bits move some images */
    ck_assert_int_eq(s->runs, 13);
    for (int k = 0; k < s->nrows; k++) {
        ck_assert(s->row[k].evaluated);
        /* labels are the float classes: top-1 and agreement are one figure */
        ck_assert_int_eq(s->row[k].only.correct, s->row[k].only.agree);
        ck_assert(isfinite(s->row[k].only.logit_sqnr_db));
    }
    check_against_qeval(q, &m.d, s, 16);
    check_order(s);
    qs_sensitivity_free(s);
    qs_qnet_free(q);

    /* stochastic activation rounding: each image draws its own bits, whatever the batching */
    ck_assert_int_eq(qs_qconfig_set(&c, QS_QT_ACTS, "round=stochastic", "t"), QS_OK);
    q = quantize(g, &c, &cal.d, NULL);
    s = sensitivity(q, &m.d, NULL, 7);
    check_against_qeval(q, &m.d, s, 57);
    qs_sensitivity_free(s);
    qs_qnet_free(q);
    mem_free(&cal);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_float_units)
{
    qs_graph_t *g = small();
    mem_data_t m;
    mem_data(&m, g, 40, 5);
    qs_qconfig_t c;
    qs_qconfig_preset(&c, "w3a4", "t");
    ck_assert_int_eq(qs_qconfig_override(&c, "fc:float", "t"), QS_OK);
    ck_assert_int_eq(qs_qconfig_override(&c, "a1:acts=float", "t"), QS_OK);
    qs_qnet_t *q = quantize(g, &c, &m.d, NULL);
    qs_sensitivity_t *s = sensitivity(q, &m.d, NULL, 0);
    ck_assert_int_eq(s->nrows, 6);
    int evaluated = 0;
    for (int k = 0; k < s->nrows; k++) {
        const qs_sens_row_t *r = &s->row[k];
        const char *name = q->g->nodes[r->u.node].name;
        bool flt = strcmp(name, "fc") == 0 || strcmp(name, "a1") == 0;
        ck_assert_int_eq(r->evaluated, !flt);
        evaluated += r->evaluated;
        if (flt) {
            ck_assert(memcmp(&r->only, &s->fp, sizeof r->only) == 0);
            ck_assert(memcmp(&r->all_but, &s->all, sizeof r->all_but) == 0);
            ck_assert(r->only_drop == 0.0 && r->all_but_gain == 0.0);
        }
    }
    ck_assert_int_eq(s->runs, 1 + 2 * evaluated);
    /* the shortcut is exact: those selections run through qs_qeval give the same figures */
    check_against_qeval(q, &m.d, s, 9);
    check_order(s);
    qs_sensitivity_free(s);
    qs_qnet_free(q);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_ranking)
{
    /* fc alone at 2 bits, everything else at 8: fc must rank first */
    qs_graph_t *g = small();
    mem_data_t cal, m;
    mem_data(&cal, g, 32, 6);
    mem_data(&m, g, 80, 7);
    qs_qconfig_t c;
    qs_qconfig_preset(&c, "w8a8", "t");
    ck_assert_int_eq(qs_qconfig_override(&c, "fc:w2a8", "t"), QS_OK);
    qs_qnet_t *q = quantize(g, &c, &cal.d, NULL);
    label_by_float(&m, q->g);
    qs_sensitivity_t *s = sensitivity(q, &m.d, NULL, 32);
    check_order(s);
    const qs_sens_row_t *first = &s->row[s->order[0]];
    ck_assert_str_eq(q->g->nodes[first->u.node].name, "fc");
    ck_assert(first->only_drop > 0.0);
    ck_assert(first->all_but_gain > 0.0);
    ck_assert(first->all_but.top1 > s->all.top1);
    /* rows that tie keep node order */
    for (int k = 1; k < s->nrows; k++)
        if (s->row[s->order[k - 1]].only.correct == s->row[s->order[k]].only.correct)
            ck_assert_int_lt(s->order[k - 1], s->order[k]);
    qs_sensitivity_free(s);
    qs_qnet_free(q);
    mem_free(&cal);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

/* ---- threads ----------------------------------------------------------------------------------- */

static void same_result(const qs_sensitivity_t *a, const qs_sensitivity_t *b)
{
    ck_assert_int_eq(a->nrows, b->nrows);
    ck_assert_int_eq(a->runs, b->runs);
    ck_assert(memcmp(&a->fp, &b->fp, sizeof a->fp) == 0);
    ck_assert(memcmp(&a->all, &b->all, sizeof a->all) == 0);
    for (int k = 0; k < a->nrows; k++) {
        const qs_sens_row_t *x = &a->row[k], *y = &b->row[k];
        ck_assert(memcmp(&x->u, &y->u, sizeof x->u) == 0);
        ck_assert(memcmp(&x->only, &y->only, sizeof x->only) == 0);
        ck_assert(memcmp(&x->all_but, &y->all_but, sizeof x->all_but) == 0);
        ck_assert_int_eq(a->order[k], b->order[k]);
    }
}

START_TEST(test_threads)
{
    qs_graph_t *g = NULL;
    ck_assert_int_eq(qs_zoo_build("fmnist-resnet", 3, &g), QS_OK);
    mem_data_t cal, m;
    mem_data(&cal, g, 24, 8);
    mem_data(&m, g, 45, 9);
    qs_pool_t *p2 = qs_pool_create(2);
    ck_assert_ptr_nonnull(p2);
    qs_qconfig_t c;
    qs_qconfig_preset(&c, "w4a4", "t");
    ck_assert_int_eq(qs_qconfig_set(&c, QS_QT_ACTS, "round=stochastic", "t"), QS_OK);
    qs_qnet_t *q = quantize(g, &c, &cal.d, NULL);
    label_by_float(&m, q->g);
    qs_sensitivity_t *s1 = sensitivity(q, &m.d, NULL, 16);
    qs_sensitivity_t *s2 = sensitivity(q, &m.d, p2, 16);
    qs_sensitivity_t *s3 = sensitivity(q, &m.d, p2, 45);
    ck_assert_int_eq(s1->nrows, 15);
    same_result(s1, s2);
    same_result(s1, s3);
    check_order(s1);
    qs_sensitivity_free(s1);
    qs_sensitivity_free(s2);
    qs_sensitivity_free(s3);
    qs_qnet_free(q);
    qs_pool_free(p2);
    mem_free(&cal);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

/* ---- progress and errors ----------------------------------------------------------------------- */

typedef struct {
    int calls;
    int64_t last, total;
    int stop_at; /* ask to stop at this call (0: never) */
    char names[16][QS_NAME_MAX];
    bool bad;
} prog_t;

static int on_progress(const qs_progress_t *p, void *user)
{
    prog_t *s = user;
    if (strcmp(p->task, "sensitivity") != 0 || p->done != s->calls || (s->calls && p->total != s->total))
        s->bad = true;
    s->total = p->total;
    s->last = p->done;
    if (p->done > 0 && p->done <= 16)
        snprintf(s->names[p->done - 1], QS_NAME_MAX, "%s", p->detail ? p->detail : "");
    s->calls++;
    return s->stop_at && s->calls == s->stop_at;
}

START_TEST(test_progress)
{
    qs_graph_t *g = small();
    mem_data_t m;
    mem_data(&m, g, 20, 10);
    qs_qconfig_t c;
    qs_qconfig_default(&c);
    qs_qnet_t *q = quantize(g, &c, &m.d, NULL);
    prog_t p;
    memset(&p, 0, sizeof p);
    qs_progress_cb_t cb = {on_progress, &p, 0};
    qs_sensitivity_t *s = NULL;
    ck_assert_int_eq(qs_sensitivity(q, &m.d, NULL, 8, &cb, &s), QS_OK);
    ck_assert(!p.bad);
    ck_assert_int_eq(p.calls, 7); /* 0, then one per unit */
    ck_assert_int_eq(p.total, 6);
    ck_assert_int_eq(p.last, 6);
    static const char *const names[] = {"input", "c1", "c2", "a1", "ap", "fc"};
    for (int k = 0; k < 6; k++)
        ck_assert_str_eq(p.names[k], names[k]);
    qs_sensitivity_free(s);

    memset(&p, 0, sizeof p);
    p.stop_at = 3;
    s = NULL;
    ck_assert_int_eq(qs_sensitivity(q, &m.d, NULL, 8, &cb, &s), QS_ERR_INTERRUPTED);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(p.calls, 3);
    qs_qnet_free(q);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_errors)
{
    qs_graph_t *g = small();
    mem_data_t m;
    mem_data(&m, g, 12, 11);
    qs_qconfig_t c;
    qs_qconfig_default(&c);
    qs_qnet_t *q = NULL;
    ck_assert_int_eq(qs_qnet_create(g, &c, &q), QS_OK);
    qs_sensitivity_t *s = (qs_sensitivity_t *)&c; /* must be cleared */
    ck_assert_int_eq(qs_sensitivity(q, &m.d, NULL, 0, NULL, &s), QS_ERR_INVALID);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(qs_last_error(), "model 'small' is not calibrated (node 'input' has no activation range)"),
                  "%s", qs_last_error());
    qs_calib_opts_t o;
    qs_calib_opts_default(&o);
    ck_assert_int_eq(qs_qnet_calibrate(q, &m.d, &o, NULL), QS_OK);

    /* images of another shape */
    qs_dataset_t bad = m.d;
    bad.h = bad.w = 4;
    snprintf(bad.source, sizeof bad.source, "bad.h5");
    ck_assert_int_eq(qs_sensitivity(q, &bad, NULL, 0, NULL, &s), QS_ERR_SHAPE);
    ck_assert_msg(
        strstr(qs_last_error(), "sensitivity: dataset 'bad.h5' has 2x4x4 images but model 'small' takes 2x8x8"), "%s",
        qs_last_error());
    /* labels out of range, no images, no labels */
    bad = m.d;
    m.lab[5] = 5;
    ck_assert_int_eq(qs_sensitivity(q, &bad, NULL, 0, NULL, &s), QS_ERR_INVALID);
    ck_assert_msg(strstr(qs_last_error(), "image 5"), "%s", qs_last_error());
    m.lab[5] = 0;
    bad.n = 0;
    ck_assert_int_eq(qs_sensitivity(q, &bad, NULL, 0, NULL, &s), QS_ERR_INVALID);
    ck_assert_msg(strstr(qs_last_error(), "no images"), "%s", qs_last_error());
    bad = m.d;
    bad.labels = NULL;
    ck_assert_int_eq(qs_sensitivity(q, &bad, NULL, 0, NULL, &s), QS_ERR_INVALID);
    ck_assert_msg(strstr(qs_last_error(), "no labels"), "%s", qs_last_error());
    /* missing arguments */
    ck_assert_int_eq(qs_sensitivity(NULL, &m.d, NULL, 0, NULL, &s), QS_ERR_INVALID);
    ck_assert_int_eq(qs_sensitivity(q, NULL, NULL, 0, NULL, &s), QS_ERR_INVALID);
    ck_assert_int_eq(qs_sensitivity(q, &m.d, NULL, 0, NULL, NULL), QS_ERR_INVALID);
    ck_assert_int_eq(qs_sens_units(NULL, NULL), QS_ERR_INVALID);
    ck_assert_ptr_null(s);
    /* and after all that, a good run; a batch larger than the data */
    s = sensitivity(q, &m.d, NULL, 1000);
    ck_assert_int_eq(s->images, 12);
    qs_sensitivity_free(s);
    qs_sensitivity_free(NULL);
    qs_qnet_free(q);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

static Suite *sensitivity_suite(void)
{
    Suite *s = suite_create("sensitivity");
    TCase *tc = tcase_create("sensitivity");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_units_small);
    tcase_add_test(tc, test_units_zoo);
    tcase_add_test(tc, test_runs_equal_qeval);
    tcase_add_test(tc, test_float_units);
    tcase_add_test(tc, test_ranking);
    tcase_add_test(tc, test_threads);
    tcase_add_test(tc, test_progress);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

QS_TEST_MAIN(sensitivity_suite)
