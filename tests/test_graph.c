/* tests/test_graph.c — the graph (building, shapes, parameter and MAC counts
 * against hand-computed values, every validation error) and the model file
 * (bitwise round trip, and broken files edited through HDF5 directly: each
 * rejected with a message naming the file, the node and the problem). */
#include "sim/sim.h"
#include "tests/testutil.h"

#include <math.h>
#include <string.h>

#include <hdf5.h>

#define HAS(sub) ck_assert_msg(strstr(qs_last_error(), (sub)) != NULL, "message '%s' lacks '%s'", qs_last_error(), (sub))

/* A tensor of deterministic values in (-1, 1). */
static qs_tensor_t *tens(int ndim, int64_t a, int64_t b, int64_t c, int64_t d, uint32_t seed)
{
    int64_t shape[4] = {a, b, c, d};
    qs_tensor_t *t = qs_tensor_create(QS_F32, ndim, shape);
    ck_assert_ptr_nonnull(t);
    uint32_t x = seed * 2654435761u + 12345u;
    for (int64_t i = 0; i < t->size; i++) {
        x = x * 1664525u + 1013904223u;
        qs_f32(t)[i] = (float)((int32_t)(x >> 8) - (1 << 23)) / (float)(1 << 23);
    }
    return t;
}

static qs_tensor_t *ones(int64_t c, float v)
{
    qs_tensor_t *t = qs_tensor_create(QS_F32, 1, &c);
    for (int64_t i = 0; i < c; i++)
        qs_f32(t)[i] = v;
    return t;
}

static int add_conv(qs_graph_t *g, const char *name, int in, int64_t o, int64_t cin_per_group, int k, int stride,
                    int pad, int groups, bool bias)
{
    qs_node_t n = qs_node_init(QS_OP_CONV2D, name, 1, &in);
    n.kh = n.kw = k;
    n.stride_h = n.stride_w = stride;
    n.pad_top = n.pad_left = n.pad_bottom = n.pad_right = pad;
    n.groups = groups;
    n.weight = tens(4, o, cin_per_group, k, k, (uint32_t)o * 7u + (uint32_t)k);
    n.bias = bias ? tens(1, o, 0, 0, 0, (uint32_t)o) : NULL;
    return qs_graph_add(g, &n);
}

static int add_bn(qs_graph_t *g, const char *name, int in, int64_t c)
{
    qs_node_t n = qs_node_init(QS_OP_BATCHNORM, name, 1, &in);
    n.gamma = tens(1, c, 0, 0, 0, 1);
    n.beta = tens(1, c, 0, 0, 0, 2);
    n.mean = tens(1, c, 0, 0, 0, 3);
    n.var = ones(c, 0.5f);
    return qs_graph_add(g, &n);
}

static int add_simple(qs_graph_t *g, qs_op_t op, const char *name, int ninputs, const int *inputs)
{
    qs_node_t n = qs_node_init(op, name, ninputs, inputs);
    return qs_graph_add(g, &n);
}

static int add1(qs_graph_t *g, qs_op_t op, const char *name, int in) { return add_simple(g, op, name, 1, &in); }

/* The reference network of these tests, on a 1x8x8 input:
 *   conv1 k3 p1 (8 ch, bias) -> bn1 -> relu1 (relu6) -> dw1 k3 s2 p1 g8 (no bias) -> pw1 k1 (bias)
 *   relu1 -> pool1 (maxpool k2 s2);  add1 = pw1 + pool1;  cat1 = concat(add1, dw1)
 *   -> gap -> flat -> fc (10, bias)
 * Hand-computed: conv1 (8,8,8) 8*8*8*1*9 = 4608 MACs, 72+8 params; bn1 32 params;
 * dw1 (8,4,4) [H = (8+2-3)/2+1 = 4] 8*4*4*1*9 = 1152 MACs, 72 params; pw1 (8,4,4)
 * 8*4*4*8 = 1024 MACs, 64+8 params; cat1 (16,4,4); fc 10*16 = 160 MACs, 170 params.
 * Totals: 426 parameters, 6944 MACs. */
static qs_graph_t *reference_graph(void)
{
    qs_graph_t *g = qs_graph_create("ref", 1, 8, 8);
    ck_assert_ptr_nonnull(g);
    int c1 = add_conv(g, "conv1", 0, 8, 1, 3, 1, 1, 1, true);
    int b1 = add_bn(g, "bn1", c1, 8);
    int r1 = add1(g, QS_OP_RELU6, "relu1", b1);
    int dw = add_conv(g, "dw1", r1, 8, 1, 3, 2, 1, 8, false);
    int pw = add_conv(g, "pw1", dw, 8, 8, 1, 1, 0, 1, true);
    qs_node_t p = qs_node_init(QS_OP_MAXPOOL, "pool1", 1, &r1);
    p.kh = p.kw = 2;
    p.stride_h = p.stride_w = 2;
    int pl = qs_graph_add(g, &p);
    int ad = add_simple(g, QS_OP_ADD, "add1", 2, (int[]){pw, pl});
    int ct = add_simple(g, QS_OP_CONCAT, "cat1", 2, (int[]){ad, dw});
    int gp = add1(g, QS_OP_GAP, "gap", ct);
    int fl = add1(g, QS_OP_FLATTEN, "flat", gp);
    qs_node_t fc = qs_node_init(QS_OP_LINEAR, "fc", 1, &fl);
    fc.weight = tens(2, 10, 16, 0, 0, 9);
    fc.bias = tens(1, 10, 0, 0, 0, 10);
    ck_assert_int_eq(qs_graph_add(g, &fc), 11);
    /* a mask on pw1, pruning every third weight */
    qs_node_t *n = &g->nodes[pw];
    n->mask = qs_tensor_create(QS_F32, 4, n->weight->shape);
    for (int64_t i = 0; i < n->mask->size; i++)
        qs_f32(n->mask)[i] = i % 3 ? 1.0f : 0.0f;
    g->input_scale = 1.0f / 255.0f;
    g->norm_mean[0] = 0.2860f;
    g->norm_std[0] = 0.3530f;
    return g;
}

/* ---- ops and building ------------------------------------------------------------------ */

START_TEST(test_op_names)
{
    for (int i = 0; i < QS_OP_COUNT; i++) {
        qs_op_t op;
        ck_assert_int_eq(qs_op_parse(qs_op_name((qs_op_t)i), &op), QS_OK);
        ck_assert_int_eq(op, i);
    }
    ck_assert_str_eq(qs_op_name(QS_OP_CONV2D), "conv2d");
    ck_assert_str_eq(qs_op_name(QS_OP_GAP), "gap");
    ck_assert_str_eq(qs_op_name(QS_OP_RELU6), "relu6");
    ck_assert_str_eq(qs_op_name(QS_OP_COUNT), "unknown");
    qs_op_t op;
    ck_assert_int_eq(qs_op_parse("conv3d", &op), QS_ERR_FORMAT);
    HAS("unknown op 'conv3d'");
    HAS("conv2d, linear");
}
END_TEST

START_TEST(test_node_defaults)
{
    int in = 0;
    qs_node_t n = qs_node_init(QS_OP_CONV2D, "c", 1, &in);
    ck_assert_str_eq(n.name, "c");
    ck_assert_int_eq(n.ninputs, 1);
    ck_assert_int_eq(n.stride_h, 1);
    ck_assert_int_eq(n.stride_w, 1);
    ck_assert_int_eq(n.dil_h, 1);
    ck_assert_int_eq(n.dil_w, 1);
    ck_assert_int_eq(n.groups, 1);
    ck_assert_int_eq(n.kh, 1);
    ck_assert_int_eq(n.kw, 1);
    ck_assert_int_eq(n.pad_top + n.pad_left + n.pad_bottom + n.pad_right, 0);
    ck_assert(n.eps == 1e-5f);
    ck_assert(n.clip_min == 0.0f && n.clip_max == 6.0f);
    ck_assert_ptr_null(n.weight);
    ck_assert_ptr_null(n.mask);

    qs_graph_t *g = qs_graph_create("g", 3, 32, 32);
    ck_assert_int_eq(g->nnodes, 1);
    ck_assert_int_eq(g->nodes[0].op, QS_OP_INPUT);
    ck_assert_str_eq(g->nodes[0].name, "input");
    ck_assert(g->input_scale == 1.0f / 255.0f);
    ck_assert(g->norm_mean[2] == 0.0f && g->norm_std[2] == 1.0f);
    ck_assert_int_eq(qs_graph_find(g, "input"), 0);
    ck_assert_int_eq(qs_graph_find(g, "nope"), -1);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_reference_shapes)
{
    qs_graph_t *g = reference_graph();
    ck_assert_int_eq(g->nnodes, 12);
    ck_assert_int_eq(qs_graph_infer(g), QS_OK);
    static const struct {
        const char *name;
        int ndim;
        int64_t s[3];
        int64_t macs;
    } want[] = {
        {"input", 3, {1, 8, 8}, 0},  {"conv1", 3, {8, 8, 8}, 4608}, {"bn1", 3, {8, 8, 8}, 0},
        {"relu1", 3, {8, 8, 8}, 0},  {"dw1", 3, {8, 4, 4}, 1152},   {"pw1", 3, {8, 4, 4}, 1024},
        {"pool1", 3, {8, 4, 4}, 0},  {"add1", 3, {8, 4, 4}, 0},     {"cat1", 3, {16, 4, 4}, 0},
        {"gap", 3, {16, 1, 1}, 0},   {"flat", 1, {16, 0, 0}, 0},    {"fc", 1, {10, 0, 0}, 160},
    };
    for (int i = 0; i < 12; i++) {
        const qs_node_t *n = &g->nodes[i];
        ck_assert_str_eq(n->name, want[i].name);
        ck_assert_int_eq(n->out_ndim, want[i].ndim);
        for (int k = 0; k < want[i].ndim; k++)
            ck_assert_int_eq(n->out_shape[k], want[i].s[k]);
        ck_assert_int_eq(qs_node_macs(g, i), want[i].macs);
    }
    ck_assert_int_eq(g->output, 11);
    ck_assert_int_eq(g->num_classes, 10);
    ck_assert_int_eq(qs_graph_params(g), 426);
    ck_assert_int_eq(qs_graph_macs(g), 6944);
    ck_assert_int_eq(qs_node_macs(g, 99), 0);
    qs_graph_free(g);
}
END_TEST

/* Rectangular kernels, dilation, asymmetric padding and stride, avgpool, reshape, clip, softmax. */
START_TEST(test_geometry)
{
    qs_graph_t *g = qs_graph_create("geo", 3, 10, 9);
    int in = 0;
    qs_node_t c = qs_node_init(QS_OP_CONV2D, "k3x1", 1, &in);
    c.kh = 3;
    c.kw = 1;
    c.dil_h = 2;
    c.dil_w = 2;
    c.stride_h = 2;
    c.pad_top = 1;
    c.pad_bottom = 2;
    c.pad_right = 1;
    c.weight = tens(4, 4, 3, 3, 1, 1);
    int k = qs_graph_add(g, &c);
    /* H = (10 + 1 + 2 - 2*2 - 1)/2 + 1 = 5, W = (9 + 0 + 1 - 0 - 1)/1 + 1 = 10 */
    qs_node_t a = qs_node_init(QS_OP_AVGPOOL, "avg", 1, &k);
    a.kh = 3;
    a.kw = 2;
    a.stride_h = 2;
    a.stride_w = 3;
    a.pad_top = a.pad_bottom = 1;
    int av = qs_graph_add(g, &a);
    /* H = (5 + 2 - 3)/2 + 1 = 3, W = (10 - 2)/3 + 1 = 3 */
    qs_node_t r = qs_node_init(QS_OP_RESHAPE, "rs", 1, &av);
    r.reshape_ndim = 1;
    r.reshape[0] = 36;
    int rs = qs_graph_add(g, &r);
    qs_node_t cl = qs_node_init(QS_OP_CLIP, "clip", 1, &rs);
    cl.clip_min = -1.0f;
    cl.clip_max = 1.5f;
    int cp = qs_graph_add(g, &cl);
    add1(g, QS_OP_SOFTMAX, "sm", cp);
    ck_assert_int_eq(qs_graph_infer(g), QS_OK);
    ck_assert_int_eq(g->nodes[k].out_shape[0], 4);
    ck_assert_int_eq(g->nodes[k].out_shape[1], 5);
    ck_assert_int_eq(g->nodes[k].out_shape[2], 10);
    ck_assert_int_eq(qs_node_macs(g, k), 4 * 5 * 10 * 3 * 3 * 1);
    ck_assert_int_eq(g->nodes[av].out_shape[1], 3);
    ck_assert_int_eq(g->nodes[av].out_shape[2], 3);
    ck_assert_int_eq(g->nodes[rs].out_ndim, 1);
    ck_assert_int_eq(g->num_classes, 36);
    ck_assert_int_eq(qs_graph_params(g), 36);
    /* linear straight on a (C,1,1) input; the output may be (F,1,1) */
    qs_graph_t *h = qs_graph_create("gap-linear", 2, 3, 3);
    int gp = add1(h, QS_OP_GAP, "gap", 0);
    qs_node_t l = qs_node_init(QS_OP_LINEAR, "fc", 1, &gp);
    l.weight = tens(2, 5, 2, 0, 0, 3);
    qs_graph_add(h, &l);
    ck_assert_int_eq(qs_graph_infer(h), QS_OK);
    ck_assert_int_eq(h->num_classes, 5);
    ck_assert_int_eq(qs_graph_macs(h), 10);
    h->output = gp;
    ck_assert_int_eq(qs_graph_infer(h), QS_OK);
    ck_assert_int_eq(h->num_classes, 2);
    qs_graph_free(h);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_clone)
{
    qs_graph_t *g = reference_graph();
    ck_assert_int_eq(qs_graph_infer(g), QS_OK);
    qs_graph_t *c = qs_graph_clone(g);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(c->nnodes, g->nnodes);
    ck_assert_ptr_ne(c->nodes, g->nodes);
    for (int i = 0; i < g->nnodes; i++) {
        ck_assert_str_eq(c->nodes[i].name, g->nodes[i].name);
        if (g->nodes[i].weight) {
            ck_assert_ptr_ne(c->nodes[i].weight, g->nodes[i].weight);
            ck_assert(memcmp(c->nodes[i].weight->data, g->nodes[i].weight->data, (size_t)g->nodes[i].weight->size * 4) == 0);
        }
    }
    ck_assert_ptr_nonnull(c->nodes[5].mask);
    ck_assert_ptr_ne(c->nodes[5].mask, g->nodes[5].mask);
    qs_f32(c->nodes[1].weight)[0] = 42.0f;
    ck_assert(qs_f32(g->nodes[1].weight)[0] != 42.0f);
    /* the clone keeps growing on its own */
    int r = add1(c, QS_OP_SOFTMAX, "sm", 11);
    ck_assert_int_eq(r, 12);
    ck_assert_int_eq(qs_graph_infer(c), QS_OK);
    ck_assert_int_eq(c->output, 12);
    ck_assert_int_eq(g->nnodes, 12);
    qs_graph_free(c);
    qs_graph_free(g);
}
END_TEST

/* ---- validation ------------------------------------------------------------------------- */

START_TEST(test_add_errors)
{
    qs_graph_t *g = qs_graph_create("g", 1, 4, 4);
    int in = 0;
    ck_assert_int_eq(add1(g, QS_OP_RELU, "", 0), QS_ERR_INVALID);
    HAS("the name is empty");
    ck_assert_int_eq(add1(g, QS_OP_RELU, "a b", 0), QS_ERR_INVALID);
    HAS("name 'a b' has character 2 that is not allowed");
    ck_assert_int_eq(add1(g, QS_OP_RELU, "a,b", 0), QS_ERR_INVALID);
    ck_assert_int_eq(add1(g, QS_OP_RELU, "a/b", 0), QS_ERR_INVALID);
    ck_assert_int_eq(add1(g, QS_OP_RELU, "r1", 0), 1);
    ck_assert_int_eq(add1(g, QS_OP_RELU, "r1", 0), QS_ERR_INVALID);
    HAS("node 'r1' (relu): the name is already used by node 1");
    ck_assert_int_eq(add1(g, QS_OP_RELU, "input", 0), QS_ERR_INVALID);
    HAS("already used by node 0");
    ck_assert_int_eq(add1(g, QS_OP_RELU, "r2", 2), QS_ERR_INVALID);
    HAS("node 'r2' (relu): input 0 is node 2, but only nodes 0..1 come before it");
    ck_assert_int_eq(add1(g, QS_OP_RELU, "r2", -1), QS_ERR_INVALID);
    ck_assert_int_eq(add1(g, QS_OP_INPUT, "in2", 0), QS_ERR_INVALID);
    HAS("only node 0 is an input");
    /* too many inputs; the tensors are taken over (and freed) even on failure */
    qs_node_t n = qs_node_init(QS_OP_ADD, "big", QS_MAX_INPUTS + 1, (int[QS_MAX_INPUTS + 1]){0});
    n.weight = tens(1, 3, 0, 0, 0, 1);
    ck_assert_int_eq(qs_graph_add(g, &n), QS_ERR_INVALID);
    HAS("9 inputs; a node has 0..8");
    qs_node_t bad = qs_node_init((qs_op_t)99, "x", 1, &in);
    ck_assert_int_eq(qs_graph_add(g, &bad), QS_ERR_INVALID);
    HAS("op 99 is not a valid op");
    char longname[QS_NAME_MAX + 8];
    memset(longname, 'a', sizeof longname);
    longname[QS_NAME_MAX] = '\0';
    qs_node_t ln = qs_node_init(QS_OP_RELU, "x", 1, &in);
    memcpy(ln.name, longname, QS_NAME_MAX); /* not terminated inside the array */
    ck_assert_int_eq(qs_graph_add(g, &ln), QS_ERR_INVALID);
    HAS("longer than 63 characters");
    ck_assert_int_eq(g->nnodes, 2);
    /* growth past the initial capacity keeps the earlier nodes */
    char name[16];
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "r%d", i + 10);
        ck_assert_int_eq(add1(g, QS_OP_RELU, name, g->nnodes - 1), i + 2);
    }
    ck_assert_int_eq(qs_graph_find(g, "r1"), 1);
    ck_assert_int_eq(qs_graph_find(g, "r49"), 41);
    qs_graph_free(g);
}
END_TEST

/* Builds the reference graph, lets edit() break it, and expects qs_graph_infer to fail with code and substrings. */
static void expect_infer(void (*edit)(qs_graph_t *), int code, const char *s1, const char *s2)
{
    qs_graph_t *g = reference_graph();
    edit(g);
    int rc = qs_graph_infer(g);
    ck_assert_msg(rc == code, "infer gave %d (%s), expected %d", rc, qs_last_error(), code);
    HAS(s1);
    if (s2)
        HAS(s2);
    qs_graph_free(g);
}

static void replace(qs_tensor_t **t, qs_tensor_t *n)
{
    qs_tensor_free(*t);
    *t = n;
}

/* conv1 gets a [8, 2, 3, 3] weight on a 1-channel input */
static void e_conv_weight(qs_graph_t *g) { replace(&g->nodes[1].weight, tens(4, 8, 2, 3, 3, 1)); }
static void e_conv_weight_kernel(qs_graph_t *g) { replace(&g->nodes[1].weight, tens(4, 8, 1, 3, 2, 1)); }
static void e_conv_weight_rank(qs_graph_t *g) { replace(&g->nodes[1].weight, tens(2, 8, 9, 0, 0, 1)); }
static void e_conv_no_weight(qs_graph_t *g) { replace(&g->nodes[1].weight, NULL); }
static void e_groups_in(qs_graph_t *g) { g->nodes[4].groups = 3; }
static void e_groups_out(qs_graph_t *g)
{
    /* pw1: 8 input channels, groups 2 -> [O, 4, 1, 1] with O = 7 */
    g->nodes[5].groups = 2;
    replace(&g->nodes[5].weight, tens(4, 7, 4, 1, 1, 1));
    replace(&g->nodes[5].bias, tens(1, 7, 0, 0, 0, 1));
    replace(&g->nodes[5].mask, NULL);
}
static void e_groups_zero(qs_graph_t *g) { g->nodes[4].groups = 0; }
static void e_bias(qs_graph_t *g) { replace(&g->nodes[1].bias, tens(1, 7, 0, 0, 0, 1)); }
static void e_mask_shape(qs_graph_t *g)
{
    qs_tensor_t *m = tens(4, 8, 8, 1, 2, 1);
    for (int64_t i = 0; i < m->size; i++)
        qs_f32(m)[i] = 1.0f;
    replace(&g->nodes[5].mask, m);
}
static void e_mask_value(qs_graph_t *g) { qs_f32(g->nodes[5].mask)[4] = 0.5f; }
static void e_too_small(qs_graph_t *g)
{
    /* dw1 with a 9x9 kernel on an 8x8 map padded by 0 */
    g->nodes[4].kh = g->nodes[4].kw = 9;
    g->nodes[4].pad_top = g->nodes[4].pad_left = g->nodes[4].pad_bottom = g->nodes[4].pad_right = 0;
    replace(&g->nodes[4].weight, tens(4, 8, 1, 9, 9, 1));
}
static void e_dilated_too_big(qs_graph_t *g) { g->nodes[4].dil_h = g->nodes[4].dil_w = 5; }
static void e_stride(qs_graph_t *g) { g->nodes[4].stride_w = 0; }
static void e_dilation(qs_graph_t *g) { g->nodes[4].dil_h = 0; }
static void e_padding(qs_graph_t *g) { g->nodes[4].pad_left = -1; }
static void e_nan(qs_graph_t *g) { qs_f32(g->nodes[1].weight)[5] = NAN; }
static void e_inf(qs_graph_t *g) { qs_f32(g->nodes[11].bias)[2] = -INFINITY; }
static void e_bn_missing(qs_graph_t *g) { replace(&g->nodes[2].var, NULL); }
static void e_bn_shape(qs_graph_t *g) { replace(&g->nodes[2].gamma, tens(1, 4, 0, 0, 0, 1)); }
static void e_bn_var(qs_graph_t *g) { qs_f32(g->nodes[2].var)[3] = -0.25f; }
static void e_bn_eps(qs_graph_t *g) { g->nodes[2].eps = 0.0f; }
static void e_relu_weight(qs_graph_t *g) { g->nodes[3].weight = tens(1, 3, 0, 0, 0, 1); }
static void e_relu_inputs(qs_graph_t *g)
{
    g->nodes[3].ninputs = 2;
    g->nodes[3].inputs[1] = 1;
}
static void e_later_input(qs_graph_t *g) { g->nodes[3].inputs[0] = 7; }
static void e_clip(qs_graph_t *g)
{
    g->nodes[3].op = QS_OP_CLIP;
    g->nodes[3].clip_min = 2.0f;
    g->nodes[3].clip_max = 1.0f;
}
static void e_add_shape(qs_graph_t *g) { g->nodes[7].inputs[1] = 3; /* (8,8,8) + (8,4,4) */ }
static void e_add_one(qs_graph_t *g) { g->nodes[7].ninputs = 1; }
static void e_concat(qs_graph_t *g) { g->nodes[8].inputs[1] = 2; /* (8,4,4) with (8,8,8) */ }
static void e_concat_1d(qs_graph_t *g)
{
    qs_node_t *n = &g->nodes[11]; /* fc becomes concat(flat, flat) */
    n->op = QS_OP_CONCAT;
    n->ninputs = 2;
    n->inputs[1] = 10;
    replace(&n->weight, NULL);
    replace(&n->bias, NULL);
}
static void e_pool_pad(qs_graph_t *g) { g->nodes[6].pad_bottom = 2; }
static void e_pool_big(qs_graph_t *g)
{
    g->nodes[6].kh = 10;
    g->nodes[6].pad_top = 1;
}
static void e_linear_3d(qs_graph_t *g) { g->nodes[11].inputs[0] = 8; }
static void e_linear_weight(qs_graph_t *g) { replace(&g->nodes[11].weight, tens(2, 10, 15, 0, 0, 1)); }
static void e_gap_1d(qs_graph_t *g)
{
    g->nodes[11].op = QS_OP_GAP; /* fc becomes gap(flat) */
    replace(&g->nodes[11].weight, NULL);
    replace(&g->nodes[11].bias, NULL);
}
static void e_reshape_count(qs_graph_t *g)
{
    g->nodes[10].op = QS_OP_RESHAPE;
    g->nodes[10].reshape_ndim = 3;
    g->nodes[10].reshape[0] = 4;
    g->nodes[10].reshape[1] = 2;
    g->nodes[10].reshape[2] = 3;
}
static void e_reshape_2d(qs_graph_t *g)
{
    g->nodes[10].op = QS_OP_RESHAPE;
    g->nodes[10].reshape_ndim = 2;
    g->nodes[10].reshape[0] = 4;
    g->nodes[10].reshape[1] = 4;
}
static void e_softmax(qs_graph_t *g) { g->nodes[10].op = QS_OP_SOFTMAX; }
static void e_output(qs_graph_t *g) { g->output = 8; }
static void e_output_range(qs_graph_t *g) { g->output = 12; }
static void e_dup_name(qs_graph_t *g) { strcpy(g->nodes[4].name, "conv1"); }
static void e_input_shape(qs_graph_t *g) { g->in_h = 0; }
static void e_norm(qs_graph_t *g) { g->norm_std[0] = 0.0f; }
static void e_scale(qs_graph_t *g) { g->input_scale = NAN; }
static void e_dtype(qs_graph_t *g)
{
    qs_tensor_t *t = g->nodes[11].bias;
    t->dtype = QS_I32; /* same byte size: the tensor stays valid to free */
}

START_TEST(test_infer_errors)
{
    expect_infer(e_conv_weight, QS_ERR_SHAPE,
                 "node 'conv1' (conv2d): weight has shape [8, 2, 3, 3] but the input has 1 channels (groups 1)",
                 "expected [8, 1, 3, 3]");
    expect_infer(e_conv_weight_kernel, QS_ERR_SHAPE, "weight has shape [8, 1, 3, 2]", "kernel is 3x3");
    expect_infer(e_conv_weight_rank, QS_ERR_SHAPE, "weight has shape [8, 9]", "expected [8, 1, 3, 3]");
    expect_infer(e_conv_no_weight, QS_ERR_INVALID, "node 'conv1' (conv2d): has no weight", NULL);
    expect_infer(e_groups_in, QS_ERR_SHAPE, "node 'dw1' (conv2d): the input 'relu1' has 8 channels, not a multiple of groups 3",
                 NULL);
    expect_infer(e_groups_out, QS_ERR_SHAPE, "node 'pw1' (conv2d): weight has 7 output channels, not a multiple of groups 2",
                 NULL);
    expect_infer(e_groups_zero, QS_ERR_INVALID, "node 'dw1' (conv2d): groups 0", NULL);
    expect_infer(e_bias, QS_ERR_SHAPE, "node 'conv1' (conv2d): bias has shape [7]", "expected [8]");
    expect_infer(e_mask_shape, QS_ERR_SHAPE, "node 'pw1' (conv2d): mask has shape [8, 8, 1, 2] but the weight has shape [8, 8, 1, 1]",
                 NULL);
    expect_infer(e_mask_value, QS_ERR_INVALID, "node 'pw1' (conv2d): mask[4] is 0.5; a mask holds only 0 and 1", NULL);
    expect_infer(e_too_small, QS_ERR_SHAPE, "node 'dw1' (conv2d): the height window spans 9", "input height is 8");
    expect_infer(e_dilated_too_big, QS_ERR_SHAPE, "window spans 11 (kernel 3, dilation 5)", "(10 with padding 1+1)");
    expect_infer(e_stride, QS_ERR_INVALID, "node 'dw1' (conv2d): stride 2x0", NULL);
    expect_infer(e_dilation, QS_ERR_INVALID, "dilation 0x1", NULL);
    expect_infer(e_padding, QS_ERR_INVALID, "padding [1, -1, 1, 1]", "cannot be negative");
    expect_infer(e_nan, QS_ERR_NUMERIC, "node 'conv1' (conv2d): weight[5] is NaN", NULL);
    expect_infer(e_inf, QS_ERR_NUMERIC, "node 'fc' (linear): bias[2] is -Inf", NULL);
    expect_infer(e_bn_missing, QS_ERR_INVALID, "node 'bn1' (batchnorm): has no var", NULL);
    expect_infer(e_bn_shape, QS_ERR_SHAPE, "node 'bn1' (batchnorm): gamma has shape [4] but the input 'conv1' has 8 channels",
                 "expected [8]");
    expect_infer(e_bn_var, QS_ERR_INVALID, "var[3] is -0.25", NULL);
    expect_infer(e_bn_eps, QS_ERR_INVALID, "node 'bn1' (batchnorm): eps is 0", NULL);
    expect_infer(e_relu_weight, QS_ERR_INVALID, "node 'relu1' (relu6): has a weight tensor, but relu6 takes no weight", NULL);
    expect_infer(e_relu_inputs, QS_ERR_INVALID, "node 'relu1' (relu6): has 2 inputs; relu6 takes exactly 1", NULL);
    expect_infer(e_later_input, QS_ERR_INVALID, "node 'relu1' (relu6): input 0 is node 7, but only nodes 0..2 come before it",
                 NULL);
    expect_infer(e_clip, QS_ERR_INVALID, "node 'relu1' (clip): clip range [2, 1]", NULL);
    expect_infer(e_add_shape, QS_ERR_SHAPE, "node 'add1' (add): input 'pw1' has shape [8, 4, 4] but input 'relu1' has shape [8, 8, 8]",
                 NULL);
    expect_infer(e_add_one, QS_ERR_INVALID, "node 'add1' (add): has 1 input; add takes 2 or more", NULL);
    expect_infer(e_concat, QS_ERR_SHAPE, "node 'cat1' (concat): input 'add1' has shape [8, 4, 4] but input 'bn1'",
                 "equal H and W");
    expect_infer(e_concat_1d, QS_ERR_SHAPE, "input 'flat' has shape [16], but concat needs a (C, H, W) feature map", NULL);
    expect_infer(e_pool_pad, QS_ERR_INVALID, "node 'pool1' (maxpool): padding [0, 0, 2, 0]", "entirely in the padding");
    expect_infer(e_pool_big, QS_ERR_SHAPE, "node 'pool1' (maxpool): the height window spans 10", "(9 with padding 1+0)");
    expect_infer(e_linear_3d, QS_ERR_SHAPE, "node 'fc' (linear): input 'cat1' has shape [16, 4, 4]", "add a flatten");
    expect_infer(e_linear_weight, QS_ERR_SHAPE, "node 'fc' (linear): weight has shape [10, 15] but the input has 16 features",
                 "expected [10, 16]");
    expect_infer(e_gap_1d, QS_ERR_SHAPE, "node 'fc' (gap): input 'flat' has shape [16], but gap needs a (C, H, W)", NULL);
    expect_infer(e_reshape_count, QS_ERR_SHAPE, "node 'flat' (reshape): input 'gap' has shape [16, 1, 1] (16 elements)",
                 "[4, 2, 3] holds 24");
    expect_infer(e_reshape_2d, QS_ERR_INVALID, "reshape to 2 dimensions", NULL);
    expect_infer(e_softmax, QS_ERR_SHAPE, "node 'flat' (softmax): input 'gap' has shape [16, 1, 1], but softmax needs (F)", NULL);
    expect_infer(e_output, QS_ERR_SHAPE, "the output node 'cat1' (concat) has shape [16, 4, 4]", "(F) or (F, 1, 1)");
    expect_infer(e_output_range, QS_ERR_INVALID, "the output is node 12, but there are 12 nodes", NULL);
    expect_infer(e_dup_name, QS_ERR_INVALID, "nodes 1 and 4 are both named 'conv1'", NULL);
    expect_infer(e_input_shape, QS_ERR_SHAPE, "node 'input' (input): input shape (1, 0, 8)", NULL);
    expect_infer(e_norm, QS_ERR_INVALID, "normalization of channel 0 is mean 0.286, std 0", NULL);
    expect_infer(e_scale, QS_ERR_INVALID, "input_scale is nan", NULL);
    expect_infer(e_dtype, QS_ERR_INVALID, "node 'fc' (linear): bias is int32, expected float32", NULL);
}
END_TEST

/* ---- model files ------------------------------------------------------------------------- */

static bool same_tensor(const qs_tensor_t *a, const qs_tensor_t *b)
{
    if (!a || !b)
        return a == b;
    return a->dtype == b->dtype && qs_shape_equal(a, b) &&
           memcmp(a->data, b->data, (size_t)a->size * qs_dtype_size(a->dtype)) == 0;
}

static void assert_same_graph(const qs_graph_t *a, const qs_graph_t *b)
{
    ck_assert_str_eq(a->name, b->name);
    ck_assert_int_eq(a->nnodes, b->nnodes);
    ck_assert_int_eq(a->output, b->output);
    ck_assert_int_eq(a->num_classes, b->num_classes);
    ck_assert(a->in_c == b->in_c && a->in_h == b->in_h && a->in_w == b->in_w);
    ck_assert(memcmp(&a->input_scale, &b->input_scale, 4) == 0);
    ck_assert(memcmp(a->norm_mean, b->norm_mean, (size_t)a->in_c * 4) == 0);
    ck_assert(memcmp(a->norm_std, b->norm_std, (size_t)a->in_c * 4) == 0);
    for (int i = 0; i < a->nnodes; i++) {
        const qs_node_t *x = &a->nodes[i], *y = &b->nodes[i];
        ck_assert_str_eq(x->name, y->name);
        ck_assert_int_eq(x->op, y->op);
        ck_assert_int_eq(x->ninputs, y->ninputs);
        for (int k = 0; k < x->ninputs; k++)
            ck_assert_int_eq(x->inputs[k], y->inputs[k]);
        ck_assert_int_eq(x->out_ndim, y->out_ndim);
        for (int k = 0; k < x->out_ndim; k++)
            ck_assert_int_eq(x->out_shape[k], y->out_shape[k]);
        if (x->op == QS_OP_CONV2D || x->op == QS_OP_MAXPOOL || x->op == QS_OP_AVGPOOL) {
            ck_assert(x->kh == y->kh && x->kw == y->kw && x->stride_h == y->stride_h && x->stride_w == y->stride_w);
            ck_assert(x->pad_top == y->pad_top && x->pad_left == y->pad_left && x->pad_bottom == y->pad_bottom &&
                      x->pad_right == y->pad_right);
        }
        if (x->op == QS_OP_CONV2D)
            ck_assert(x->dil_h == y->dil_h && x->dil_w == y->dil_w && x->groups == y->groups);
        if (x->op == QS_OP_BATCHNORM)
            ck_assert(memcmp(&x->eps, &y->eps, 4) == 0);
        if (x->op == QS_OP_CLIP)
            ck_assert(memcmp(&x->clip_min, &y->clip_min, 4) == 0 && memcmp(&x->clip_max, &y->clip_max, 4) == 0);
        if (x->op == QS_OP_RESHAPE) {
            ck_assert_int_eq(x->reshape_ndim, y->reshape_ndim);
            for (int k = 0; k < x->reshape_ndim; k++)
                ck_assert_int_eq(x->reshape[k], y->reshape[k]);
        }
        ck_assert_msg(same_tensor(x->weight, y->weight), "node %s: weight differs", x->name);
        ck_assert_msg(same_tensor(x->bias, y->bias), "node %s: bias differs", x->name);
        ck_assert(same_tensor(x->gamma, y->gamma) && same_tensor(x->beta, y->beta));
        ck_assert(same_tensor(x->mean, y->mean) && same_tensor(x->var, y->var));
        ck_assert_msg(same_tensor(x->mask, y->mask), "node %s: mask differs", x->name);
    }
}

/* The reference graph extended with every attribute kind: dilation, asymmetric
 * padding, avgpool, clip, reshape, softmax, an explicit (non-last) output. */
static qs_graph_t *full_graph(void)
{
    qs_graph_t *g = reference_graph();
    /* conv1 dilated 2x2 with padding [2, 1, 2, 3] keeps 8x8: (8 + 4 - 4 - 1) + 1 = 8 */
    qs_node_t *c1 = &g->nodes[1];
    c1->dil_h = c1->dil_w = 2;
    c1->pad_top = c1->pad_bottom = 2;
    c1->pad_left = 1;
    c1->pad_right = 3;
    g->nodes[2].eps = 1e-3f;
    /* the tail after fc is unused by the output but must survive the trip */
    int fc = 11;
    qs_node_t c = qs_node_init(QS_OP_CLIP, "clip", 1, &fc);
    c.clip_min = -0.1f;
    c.clip_max = 3.3f;
    int cl = qs_graph_add(g, &c);
    qs_node_t r = qs_node_init(QS_OP_RESHAPE, "rs", 1, &cl);
    r.reshape_ndim = 3;
    r.reshape[0] = 10;
    r.reshape[1] = r.reshape[2] = 1;
    int rs = qs_graph_add(g, &r);
    int r1 = 3;
    qs_node_t a = qs_node_init(QS_OP_AVGPOOL, "avg", 1, &r1);
    a.kh = 3;
    a.kw = 2;
    a.pad_top = 2;
    a.stride_h = 2;
    qs_graph_add(g, &a);
    add1(g, QS_OP_RELU, "relu", rs);
    add1(g, QS_OP_SOFTMAX, "prob", 11);
    g->output = rs;
    return g;
}

static const char *saved_model(char *buf, size_t n, const char *name)
{
    qs_test_path(buf, n, name);
    qs_graph_t *g = full_graph();
    ck_assert_msg(qs_model_save(g, buf) == QS_OK, "%s", qs_last_error());
    qs_graph_free(g);
    return buf;
}

START_TEST(test_round_trip)
{
    char path[512];
    qs_test_path(path, sizeof path, "model-rt.h5");
    qs_graph_t *g = full_graph();
    ck_assert_int_eq(qs_graph_infer(g), QS_OK);
    ck_assert_int_eq(g->output, 13);
    ck_assert_int_eq(g->nodes[1].out_shape[1], 8);
    ck_assert_int_eq(g->nodes[1].out_shape[2], 8);
    ck_assert_int_eq(g->nodes[14].out_shape[1], 4); /* avg: (8 + 2 - 3)/2 + 1 */
    ck_assert_int_eq(g->nodes[14].out_shape[2], 7);
    ck_assert_int_eq(qs_model_save(g, path), QS_OK);
    qs_graph_t *h = NULL;
    ck_assert_msg(qs_model_load(path, &h) == QS_OK, "%s", qs_last_error());
    ck_assert_ptr_nonnull(h);
    assert_same_graph(g, h);
    ck_assert_ptr_null(h->nodes[4].bias);  /* the bias-less conv stays bias-less */
    ck_assert_ptr_nonnull(h->nodes[5].mask);
    ck_assert(qs_f32(h->nodes[5].mask)[3] == 0.0f && qs_f32(h->nodes[5].mask)[4] == 1.0f);
    /* and again: a loaded model saves to an equal one */
    ck_assert_int_eq(qs_model_save(h, path), QS_OK);
    qs_graph_t *h2 = NULL;
    ck_assert_int_eq(qs_model_load(path, &h2), QS_OK);
    assert_same_graph(h, h2);
    qs_graph_free(h2);
    qs_graph_free(h);
    qs_graph_free(g);
    unlink(path);
}
END_TEST

START_TEST(test_save_invalid)
{
    char path[512];
    qs_test_path(path, sizeof path, "model-invalid.h5");
    unlink(path);
    qs_graph_t *g = reference_graph();
    qs_f32(g->nodes[1].weight)[0] = NAN;
    ck_assert_int_eq(qs_model_save(g, path), QS_ERR_NUMERIC);
    HAS("cannot save '");
    HAS("node 'conv1' (conv2d): weight[0] is NaN");
    ck_assert_int_eq(access(path, F_OK), -1); /* nothing written, no temporary left */
    qs_f32(g->nodes[1].weight)[0] = 0.5f;
    ck_assert_int_eq(qs_model_save(g, "/nonexistent-dir/m.h5"), QS_ERR_IO);
    HAS("cannot create '/nonexistent-dir/m.h5'");
    qs_graph_free(g);
}
END_TEST

/* ---- broken files, edited through HDF5 ------------------------------------------------ */

static hid_t edit_open(const char *path)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    return f;
}

static void set_str(hid_t f, const char *obj, const char *attr, const char *v)
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

static void set_int(hid_t f, const char *obj, const char *attr, int64_t v)
{
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    if (H5Aexists(o, attr) > 0)
        H5Adelete(o, attr);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(o, attr, H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(H5Awrite(a, H5T_NATIVE_INT64, &v), 0);
    H5Aclose(a);
    H5Sclose(s);
    H5Oclose(o);
}

static void del_attr(hid_t f, const char *obj, const char *attr)
{
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    ck_assert_int_ge(H5Adelete(o, attr), 0);
    H5Oclose(o);
}

/* Replaces dataset name with a float32 one of the given shape filled with fill (element bad gets badv). */
static void put_ds(hid_t f, const char *name, int ndim, const hsize_t *dims, float fill, int64_t bad, float badv)
{
    if (H5Lexists(f, name, H5P_DEFAULT) > 0)
        H5Ldelete(f, name, H5P_DEFAULT);
    hsize_t n = 1;
    for (int k = 0; k < ndim; k++)
        n *= dims[k];
    float *v = malloc(n * sizeof *v);
    for (hsize_t i = 0; i < n; i++)
        v[i] = (int64_t)i == bad ? badv : fill;
    hid_t s = H5Screate_simple(ndim, dims, NULL);
    hid_t d = H5Dcreate2(f, name, H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    H5Dclose(d);
    H5Sclose(s);
    free(v);
}

static void expect_load(const char *path, int code, const char *s1, const char *s2)
{
    qs_graph_t *g = (qs_graph_t *)1;
    int rc = qs_model_load(path, &g);
    ck_assert_msg(rc == code, "load gave %d (%s), expected %d", rc, qs_last_error(), code);
    ck_assert_ptr_null(g);
    HAS(path);
    HAS(s1);
    if (s2)
        HAS(s2);
}

START_TEST(test_load_truncated)
{
    char path[512];
    saved_model(path, sizeof path, "model-trunc.h5");
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(truncate(path, st.st_size / 2), 0);
    expect_load(path, QS_ERR_FORMAT, "is not a readable HDF5 file, or it is truncated or corrupt", NULL);
    ck_assert_int_eq(truncate(path, 0), 0);
    expect_load(path, QS_ERR_FORMAT, "truncated or corrupt", NULL);
    unlink(path);
    expect_load(path, QS_ERR_IO, "cannot open model", "No such file");
}
END_TEST

START_TEST(test_load_format)
{
    char path[512];
    saved_model(path, sizeof path, "model-fmt.h5");
    hid_t f = edit_open(path);
    set_str(f, "/", "format", "quasar-dataset");
    H5Fclose(f);
    expect_load(path, QS_ERR_FORMAT, "is not a quasar model: its format attribute is 'quasar-dataset', expected 'quasar-model'",
                NULL);
    f = edit_open(path);
    del_attr(f, "/", "format");
    H5Fclose(f);
    expect_load(path, QS_ERR_FORMAT, "is not a quasar model: the root group has no attribute 'format'", NULL);
    unlink(path);
}
END_TEST

START_TEST(test_load_version)
{
    char path[512];
    saved_model(path, sizeof path, "model-ver.h5");
    hid_t f = edit_open(path);
    set_int(f, "/", "format_version", 3);
    /* a newer version is reported before anything else it might change */
    del_attr(f, "/", "input_shape");
    H5Fclose(f);
    expect_load(path, QS_ERR_UNSUPPORTED, "has model format version 3; this quasar reads version 2 and older", NULL);
    f = edit_open(path);
    set_int(f, "/", "format_version", 0);
    H5Fclose(f);
    expect_load(path, QS_ERR_FORMAT, "format_version is 0", NULL);
    unlink(path);
}
END_TEST

START_TEST(test_load_unknown_op)
{
    char path[512];
    saved_model(path, sizeof path, "model-op.h5");
    hid_t f = edit_open(path);
    set_str(f, "/nodes/0001_conv1", "op", "conv3d");
    H5Fclose(f);
    expect_load(path, QS_ERR_FORMAT, "node 'conv1' (/nodes/0001_conv1): unknown op 'conv3d'", NULL);
    unlink(path);
}
END_TEST

START_TEST(test_load_weight_shape)
{
    char path[512];
    saved_model(path, sizeof path, "model-shape.h5");
    hid_t f = edit_open(path);
    hsize_t dims[4] = {16, 3, 3, 3};
    put_ds(f, "/nodes/0001_conv1/weight", 4, dims, 0.5f, -1, 0.0f);
    H5Fclose(f);
    expect_load(path, QS_ERR_SHAPE,
                "node 'conv1' (conv2d): weight has shape [16, 3, 3, 3] but the input has 1 channels (groups 1)",
                "expected [16, 1, 3, 3]");
    unlink(path);
}
END_TEST

START_TEST(test_load_nan)
{
    char path[512];
    saved_model(path, sizeof path, "model-nan.h5");
    hid_t f = edit_open(path);
    hsize_t dims[2] = {10, 16};
    put_ds(f, "/nodes/0011_fc/weight", 2, dims, 0.25f, 37, NAN);
    H5Fclose(f);
    expect_load(path, QS_ERR_NUMERIC, "node 'fc' (linear): weight[37] is NaN", NULL);
    unlink(path);
}
END_TEST

/* Missing attributes and inputs, inconsistent names and counts, members that do not belong. */
START_TEST(test_load_inconsistent)
{
    char path[512];
    saved_model(path, sizeof path, "model-inc.h5");
    hid_t f;
#define EDIT(stmt, code, s1, s2)           \
    saved_model(path, sizeof path, "model-inc.h5"); \
    f = edit_open(path);                   \
    stmt;                                  \
    H5Fclose(f);                           \
    expect_load(path, code, s1, s2)

    EDIT(del_attr(f, "/nodes/0004_dw1", "kernel"), QS_ERR_FORMAT, "node 'dw1' (/nodes/0004_dw1): attribute 'kernel' is missing",
         NULL);
    EDIT(del_attr(f, "/nodes/0002_bn1", "inputs"), QS_ERR_FORMAT, "node 'bn1' (/nodes/0002_bn1): attribute 'inputs' is missing",
         NULL);
    EDIT(set_str(f, "/nodes/0002_bn1", "inputs", "conv9"), QS_ERR_FORMAT,
         "node 'bn1' (/nodes/0002_bn1): input 'conv9' is not a node before this one", NULL);
    EDIT(set_str(f, "/nodes/0002_bn1", "inputs", "relu1"), QS_ERR_FORMAT, "input 'relu1' is not a node before this one",
         NULL);
    EDIT(set_str(f, "/nodes/0007_add1", "inputs", "pw1,,pool1"), QS_ERR_FORMAT, "not a comma-separated list", NULL);
    EDIT(set_str(f, "/nodes/0007_add1", "inputs", "pw1"), QS_ERR_INVALID, "node 'add1' (add): has 1 input; add takes 2 or more",
         NULL);
    EDIT(set_str(f, "/nodes/0003_relu1", "name", "relu9"), QS_ERR_FORMAT,
         "the group is named '0003_relu1' but the node's name is 'relu9'", NULL);
    EDIT(set_str(f, "/", "output", "nope"), QS_ERR_FORMAT, "root group: the output is 'nope', which is not a node", NULL);
    EDIT(set_int(f, "/", "num_classes", 11), QS_ERR_FORMAT, "num_classes is 11 but the output 'rs' has 10 features", NULL);
    EDIT(set_int(f, "/nodes/0005_pw1", "groups", 3), QS_ERR_SHAPE, "node 'pw1' (conv2d): the input 'dw1' has 8 channels, not a multiple of groups 3",
         NULL);
    EDIT(set_int(f, "/nodes/0005_pw1", "groups", -1), QS_ERR_FORMAT, "attribute 'groups' holds -1", NULL);
    EDIT(set_int(f, "/nodes/0003_relu1", "groups", 2), QS_ERR_FORMAT,
         "node 'relu1' (/nodes/0003_relu1): unexpected attribute 'groups'", NULL);
    EDIT(set_str(f, "/nodes/0004_dw1", "stride", "2"), QS_ERR_FORMAT, "attribute 'stride' is not an integer", NULL);
    EDIT(set_int(f, "/nodes/0004_dw1", "stride", 2), QS_ERR_FORMAT, "attribute 'stride' holds 1 values, expected 2", NULL);
    EDIT(H5Ldelete(f, "/nodes/0002_bn1/var", H5P_DEFAULT), QS_ERR_INVALID, "node 'bn1' (batchnorm): has no var", NULL);
    EDIT(put_ds(f, "/nodes/0003_relu1/weight", 1, (hsize_t[]){3}, 1.0f, -1, 0.0f), QS_ERR_INVALID,
         "node 'relu1' (relu6): has a weight tensor, but relu6 takes no weight", NULL);
    EDIT(put_ds(f, "/nodes/0003_relu1/extra", 1, (hsize_t[]){3}, 1.0f, -1, 0.0f), QS_ERR_FORMAT,
         "node 'relu1' (/nodes/0003_relu1): unexpected dataset 'extra'", NULL);
    EDIT(put_ds(f, "/nodes/0005_pw1/mask", 4, ((hsize_t[]){8, 8, 1, 1}), 1.0f, 9, 2.0f), QS_ERR_INVALID,
         "node 'pw1' (conv2d): mask[9] is 2", NULL);
    EDIT(set_int(f, "/nodes/0003_relu1", "out_shape", 8), QS_ERR_FORMAT, "node 'relu1' (relu6): out_shape says [8] but the graph gives [8, 8, 8]",
         NULL);
    EDIT(H5Ldelete(f, "/nodes/0003_relu1", H5P_DEFAULT), QS_ERR_FORMAT, "/nodes holds 16 groups but node_count is 17", NULL);
    EDIT((H5Ldelete(f, "/nodes/0003_relu1", H5P_DEFAULT), set_int(f, "/", "node_count", 16)), QS_ERR_FORMAT,
         "not a node group (expected groups NNNN_NAME numbered 0000 to 0015)", NULL);
    EDIT(H5Lmove(f, "/nodes/0003_relu1", f, "/nodes/0001_relu1", H5P_DEFAULT, H5P_DEFAULT), QS_ERR_FORMAT,
         "have the same order number 1", NULL);
    EDIT(H5Lmove(f, "/nodes", f, "/layers", H5P_DEFAULT, H5P_DEFAULT), QS_ERR_FORMAT, "the group /nodes is missing", NULL);
    EDIT(set_str(f, "/nodes/0000_input", "op", "relu"), QS_ERR_FORMAT, "node 0 is a relu; node 0 must be the input", NULL);
    EDIT(set_str(f, "/nodes/0003_relu1", "op", "input"), QS_ERR_FORMAT,
         "node 'relu1' (/nodes/0003_relu1): only node 0 is an input", NULL);
    EDIT(set_str(f, "/nodes/0002_bn1", "op", "relu"), QS_ERR_FORMAT,
         "node 'bn1' (/nodes/0002_bn1): unexpected attribute 'eps'", NULL);
    EDIT(del_attr(f, "/", "norm_std"), QS_ERR_FORMAT, "root group: attribute 'norm_std' is missing", NULL);
    EDIT(set_int(f, "/", "input_shape", 3), QS_ERR_FORMAT, "attribute 'input_shape' holds 1 values, expected 3", NULL);
#undef EDIT
    unlink(path);
}
END_TEST

/* Groups named quant (the quantized-model file of a later version) and unknown
 * root attributes are ignored. */
START_TEST(test_load_ignores_quant)
{
    char path[512];
    saved_model(path, sizeof path, "model-quant.h5");
    hid_t f = edit_open(path);
    hid_t q = H5Gcreate2(f, "/nodes/0001_conv1/quant", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(q);
    q = H5Gcreate2(f, "/quant", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(q);
    put_ds(f, "/nodes/0001_conv1/quant/scale", 1, (hsize_t[]){8}, 0.1f, -1, 0.0f);
    set_str(f, "/", "trained_by", "quasar train");
    H5Fclose(f);
    qs_graph_t *g = NULL;
    ck_assert_msg(qs_model_load(path, &g) == QS_OK, "%s", qs_last_error());
    qs_graph_t *ref = full_graph();
    ck_assert_int_eq(qs_graph_infer(ref), QS_OK);
    assert_same_graph(ref, g);
    qs_graph_free(ref);
    qs_graph_free(g);
    unlink(path);
}
END_TEST

/* ---- batchnorm folding ------------------------------------------------------------------------- */

/* max |a - b| / max |a| over the outputs of g and f (reference engine) on x */
static double fold_error(const qs_graph_t *g, const qs_graph_t *f, const qs_tensor_t *x)
{
    qs_engine_opts_t o = {NULL, true};
    qs_engine_t *e1 = NULL, *e2 = NULL;
    ck_assert_msg(qs_engine_create(g, &o, &e1) == QS_OK, "%s", qs_last_error());
    ck_assert_msg(qs_engine_create(f, &o, &e2) == QS_OK, "%s", qs_last_error());
    const qs_tensor_t *y1, *y2;
    ck_assert_msg(qs_engine_forward(e1, x, &y1) == QS_OK, "%s", qs_last_error());
    ck_assert_msg(qs_engine_forward(e2, x, &y2) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(y1->size, y2->size);
    double num = 0, den = 0;
    for (int64_t i = 0; i < y1->size; i++) {
        num = fmax(num, fabs((double)qs_f32(y1)[i] - qs_f32(y2)[i]));
        den = fmax(den, fabs((double)qs_f32(y1)[i]));
    }
    qs_engine_free(e1);
    qs_engine_free(e2);
    ck_assert(den > 0);
    return num / den;
}

START_TEST(test_fold_bn)
{
    qs_graph_t *g = reference_graph(), *f = NULL;
    ck_assert_int_eq(qs_graph_infer(g), QS_OK);
    int folded = -1;
    ck_assert_msg(qs_graph_fold_bn(g, &f, &folded) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(folded, 1);
    ck_assert_int_eq(f->nnodes, g->nnodes - 1);
    ck_assert_int_eq(qs_graph_find(f, "bn1"), -1);
    int c1 = qs_graph_find(f, "conv1"), r1 = qs_graph_find(f, "relu1");
    ck_assert_int_eq(f->nodes[r1].inputs[0], c1);
    ck_assert_str_eq(f->nodes[f->output].name, "fc");
    ck_assert_int_eq(qs_graph_macs(f), qs_graph_macs(g));
    qs_tensor_t *x = tens(4, 3, 1, 8, 8, 77);
    double err = fold_error(g, f, x);
    ck_assert_msg(err <= 1e-5, "relative error %g", err);
    qs_graph_free(f);

    /* a conv read by another node as well keeps its batchnorm */
    int pool = qs_graph_find(g, "pool1");
    g->nodes[pool].inputs[0] = qs_graph_find(g, "conv1");
    ck_assert_int_eq(qs_graph_infer(g), QS_OK);
    ck_assert_int_eq(qs_graph_fold_bn(g, &f, &folded), QS_OK);
    ck_assert_int_eq(folded, 0);
    ck_assert_int_ge(qs_graph_find(f, "bn1"), 0);
    qs_graph_free(f);
    qs_tensor_free(x);
    qs_graph_free(g);
}
END_TEST

/* The shipped models: every batchnorm follows a conv and folds; outputs keep. */
START_TEST(test_fold_bn_models)
{
    const char *names[] = {"fmnist-dwsep", "fmnist-resnet"};
    for (int m = 0; m < 2; m++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/../models/%s.h5", QS_TEST_SRCDIR, names[m]);
        qs_graph_t *g = NULL, *f = NULL;
        ck_assert_msg(qs_model_load(path, &g) == QS_OK, "%s", qs_last_error());
        int bns = 0, folded = 0;
        for (int i = 0; i < g->nnodes; i++)
            bns += g->nodes[i].op == QS_OP_BATCHNORM;
        ck_assert_msg(qs_graph_fold_bn(g, &f, &folded) == QS_OK, "%s", qs_last_error());
        ck_assert_int_eq(folded, bns);
        ck_assert_int_gt(folded, 0);
        qs_tensor_t *x = tens(4, 8, 1, 28, 28, 5);
        double err = fold_error(g, f, x);
        ck_assert_msg(err <= 1e-5, "%s: relative error %g", names[m], err);
        qs_tensor_free(x);
        qs_graph_free(f);
        qs_graph_free(g);
    }
}
END_TEST

static Suite *graph_suite(void)
{
    Suite *s = suite_create("graph");
    TCase *tc = tcase_create("graph");
    tcase_add_test(tc, test_op_names);
    tcase_add_test(tc, test_node_defaults);
    tcase_add_test(tc, test_reference_shapes);
    tcase_add_test(tc, test_geometry);
    tcase_add_test(tc, test_clone);
    tcase_add_test(tc, test_add_errors);
    tcase_add_test(tc, test_infer_errors);
    tcase_add_test(tc, test_fold_bn);
    tcase_add_test(tc, test_fold_bn_models);
    suite_add_tcase(s, tc);
    tc = tcase_create("model");
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_save_invalid);
    tcase_add_test(tc, test_load_truncated);
    tcase_add_test(tc, test_load_format);
    tcase_add_test(tc, test_load_version);
    tcase_add_test(tc, test_load_unknown_op);
    tcase_add_test(tc, test_load_weight_shape);
    tcase_add_test(tc, test_load_nan);
    tcase_add_test(tc, test_load_inconsistent);
    tcase_add_test(tc, test_load_ignores_quant);
    suite_add_tcase(s, tc);
    return s;
}

QS_TEST_MAIN(graph_suite)
