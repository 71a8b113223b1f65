/* sim/zoo.c — the default architectures, built in code: "fmnist-dwsep"
 * (MobileNet-style, depthwise-separable) and "fmnist-resnet" (a small
 * residual network). Weights are drawn He-normal from Philox so that the same
 * seed always gives the same network, bit for bit, on every machine that has
 * the same libm (log/cos/sqrt); docs/training.md states the exact rule. */
#include "sim/sim_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const zoo_names[] = {"fmnist-dwsep", "fmnist-resnet", NULL};

const char *const *qs_zoo_names(void) { return zoo_names; }

/* Fashion-MNIST training-set pixel statistics (on p/255): mean 0.2860,
 * std 0.3530 (computed over the 60,000 training images). */
#define FMNIST_MEAN 0.2860f
#define FMNIST_STD 0.3530f

typedef struct {
    qs_graph_t *g;
    uint64_t seed;
    int rc;
} builder_t;

/* He-normal (Kaiming, fan_in, gain sqrt 2): element k of the weight of node
 * i is std * z with z = sqrt(-2 ln(1 - u1)) cos(2 pi u2), u1 = uniform(seed,
 * stream i, 2k), u2 = uniform(seed, stream i, 2k + 1) (Box–Muller; 1 - u1 is
 * in (0, 1], so the log is finite). */
static void he_normal(qs_tensor_t *t, int64_t fan_in, uint64_t seed, uint64_t stream)
{
    float *w = qs_f32(t);
    double std = sqrt(2.0 / (double)fan_in);
    for (int64_t k = 0; k < t->size; k++) {
        double u1 = qs_rng_uniform(seed, stream, (uint64_t)(2 * k));
        double u2 = qs_rng_uniform(seed, stream, (uint64_t)(2 * k + 1));
        double z = sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
        w[k] = (float)(std * z);
    }
}

static qs_tensor_t *vec(int64_t n, float v)
{
    qs_tensor_t *t = qs_tensor_create(QS_F32, 1, &n);
    if (t)
        for (int64_t i = 0; i < n; i++)
            qs_f32(t)[i] = v;
    return t;
}

static int add(builder_t *b, qs_node_t *n)
{
    if (b->rc < 0) {
        qs_sim_node_free_tensors(n);
        return b->rc;
    }
    int idx = qs_graph_add(b->g, n);
    if (idx < 0)
        b->rc = idx;
    return idx;
}

/* conv without bias (a BN follows every conv) */
static int conv(builder_t *b, const char *name, int in, int64_t cin, int64_t cout, int k, int stride, int groups)
{
    qs_node_t n = qs_node_init(QS_OP_CONV2D, name, 1, &in);
    n.kh = n.kw = k;
    n.stride_h = n.stride_w = stride;
    n.pad_top = n.pad_left = n.pad_bottom = n.pad_right = k / 2;
    n.groups = groups;
    int64_t shape[4] = {cout, cin / groups, k, k};
    n.weight = qs_tensor_create(QS_F32, 4, shape);
    if (!n.weight) {
        b->rc = qs_last_status();
        return b->rc;
    }
    he_normal(n.weight, cin / groups * k * k, b->seed, (uint64_t)b->g->nnodes);
    return add(b, &n);
}

static int bn(builder_t *b, const char *name, int in, int64_t c)
{
    qs_node_t n = qs_node_init(QS_OP_BATCHNORM, name, 1, &in);
    n.gamma = vec(c, 1.0f);
    n.beta = vec(c, 0.0f);
    n.mean = vec(c, 0.0f);
    n.var = vec(c, 1.0f);
    if (!n.gamma || !n.beta || !n.mean || !n.var) {
        qs_sim_node_free_tensors(&n);
        b->rc = QS_ERR_NOMEM;
        return b->rc;
    }
    return add(b, &n);
}

static int act(builder_t *b, qs_op_t op, const char *name, int in)
{
    qs_node_t n = qs_node_init(op, name, 1, &in);
    return add(b, &n);
}

/* conv + BN + activation named base, base.bn, base.<act> */
static int cba(builder_t *b, const char *base, int in, int64_t cin, int64_t cout, int k, int stride, int groups,
               qs_op_t op)
{
    char nm[QS_NAME_MAX];
    int x = conv(b, base, in, cin, cout, k, stride, groups);
    snprintf(nm, sizeof nm, "%.50s.bn", base);
    x = bn(b, nm, x, cout);
    if (op == QS_OP_INPUT)
        return x;
    snprintf(nm, sizeof nm, "%.50s.%s", base, qs_op_name(op));
    return act(b, op, nm, x);
}

static int head(builder_t *b, int in, int64_t c)
{
    int x = act(b, QS_OP_GAP, "gap", in);
    x = act(b, QS_OP_FLATTEN, "flatten", x);
    qs_node_t n = qs_node_init(QS_OP_LINEAR, "fc", 1, &x);
    int64_t shape[2] = {10, c};
    n.weight = qs_tensor_create(QS_F32, 2, shape);
    n.bias = vec(10, 0.0f);
    if (!n.weight || !n.bias) {
        qs_sim_node_free_tensors(&n);
        b->rc = QS_ERR_NOMEM;
        return b->rc;
    }
    he_normal(n.weight, c, b->seed, (uint64_t)b->g->nnodes);
    return add(b, &n);
}

/* stem 1->16 (28x28), then dw+pw blocks 16->32 s2 (14x14), 32->40,
 * 40->128 s2 (7x7): 0.82 MMAC, most of it in the pointwise convs. */
static void build_dwsep(builder_t *b)
{
    static const struct {
        int64_t cin, cout;
        int stride;
    } blocks[] = {{16, 32, 2}, {32, 40, 1}, {40, 128, 2}};
    int x = cba(b, "stem", 0, 1, 16, 3, 1, 1, QS_OP_RELU6);
    for (size_t i = 0; i < sizeof blocks / sizeof *blocks; i++) {
        char nm[QS_NAME_MAX];
        snprintf(nm, sizeof nm, "b%zu.dw", i + 1);
        x = cba(b, nm, x, blocks[i].cin, blocks[i].cin, 3, blocks[i].stride, (int)blocks[i].cin, QS_OP_RELU6);
        snprintf(nm, sizeof nm, "b%zu.pw", i + 1);
        x = cba(b, nm, x, blocks[i].cin, blocks[i].cout, 1, 1, 1, QS_OP_RELU6);
    }
    head(b, x, 128);
}

/* stem 1->16 s2 (14x14), basic blocks 16->16 (14x14), 16->32 s2 (7x7),
 * 32->64 s2 (4x4), with 1x1 conv + BN projection shortcuts where the shape
 * changes. */
static void build_resnet(builder_t *b)
{
    static const struct {
        int64_t cin, cout;
        int stride;
    } blocks[] = {{16, 16, 1}, {16, 32, 2}, {32, 64, 2}};
    int x = cba(b, "stem", 0, 1, 16, 3, 2, 1, QS_OP_RELU);
    for (size_t i = 0; i < sizeof blocks / sizeof *blocks; i++) {
        char nm[QS_NAME_MAX];
        int s = blocks[i].stride;
        snprintf(nm, sizeof nm, "b%zu.conv1", i + 1);
        int y = cba(b, nm, x, blocks[i].cin, blocks[i].cout, 3, s, 1, QS_OP_RELU);
        snprintf(nm, sizeof nm, "b%zu.conv2", i + 1);
        y = cba(b, nm, y, blocks[i].cout, blocks[i].cout, 3, 1, 1, QS_OP_INPUT);
        int sc = x;
        if (s != 1 || blocks[i].cin != blocks[i].cout) {
            snprintf(nm, sizeof nm, "b%zu.proj", i + 1);
            sc = cba(b, nm, x, blocks[i].cin, blocks[i].cout, 1, s, 1, QS_OP_INPUT);
        }
        snprintf(nm, sizeof nm, "b%zu.add", i + 1);
        int in2[2] = {y, sc};
        qs_node_t n = qs_node_init(QS_OP_ADD, nm, 2, in2);
        int a = add(b, &n);
        snprintf(nm, sizeof nm, "b%zu.relu", i + 1);
        x = act(b, QS_OP_RELU, nm, a);
    }
    head(b, x, 64);
}

int qs_zoo_build(const char *arch, uint64_t seed, qs_graph_t **out)
{
    if (!out)
        return qs_error(QS_ERR_INVALID, "qs_zoo_build: no output");
    *out = NULL;
    int which = -1;
    for (int i = 0; zoo_names[i]; i++)
        if (arch && strcmp(arch, zoo_names[i]) == 0)
            which = i;
    if (which < 0)
        return qs_error(QS_ERR_INVALID, "unknown architecture '%s' (known: fmnist-dwsep, fmnist-resnet)",
                        arch ? arch : "(null)");
    builder_t b = {qs_graph_create(arch, 1, 28, 28), seed, QS_OK};
    if (!b.g)
        return qs_last_status();
    b.g->input_scale = 1.0f / 255.0f;
    b.g->norm_mean[0] = FMNIST_MEAN;
    b.g->norm_std[0] = FMNIST_STD;
    if (which == 0)
        build_dwsep(&b);
    else
        build_resnet(&b);
    int rc = b.rc;
    if (rc >= 0)
        rc = qs_graph_infer(b.g);
    if (rc < 0) {
        qs_graph_free(b.g);
        return rc;
    }
    *out = b.g;
    return QS_OK;
}
