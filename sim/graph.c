/* sim/graph.c — the network graph: named nodes in topological order, built
 * in code or by the model loader, and the one place that validates a graph
 * and derives its shapes, parameter counts and MACs. Every engine, the model
 * loader and `quasar info` trust qs_graph_infer(): whatever it accepts, they
 * can run without further checks, so every message it gives names the node,
 * its op and what was expected instead. */
#include "sim/sim_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[QS_OP_COUNT] = {
    [QS_OP_INPUT] = "input",     [QS_OP_CONV2D] = "conv2d",   [QS_OP_LINEAR] = "linear",
    [QS_OP_BATCHNORM] = "batchnorm", [QS_OP_RELU] = "relu",   [QS_OP_RELU6] = "relu6",
    [QS_OP_CLIP] = "clip",       [QS_OP_ADD] = "add",         [QS_OP_CONCAT] = "concat",
    [QS_OP_MAXPOOL] = "maxpool", [QS_OP_AVGPOOL] = "avgpool", [QS_OP_GAP] = "gap",
    [QS_OP_FLATTEN] = "flatten", [QS_OP_RESHAPE] = "reshape", [QS_OP_SOFTMAX] = "softmax",
};

const char *qs_op_name(qs_op_t op)
{
    if ((int)op < 0 || op >= QS_OP_COUNT)
        return "unknown";
    return op_names[op];
}

int qs_op_parse(const char *name, qs_op_t *op)
{
    char list[256];
    size_t used = 0;
    list[0] = '\0';
    for (int i = 0; i < QS_OP_COUNT; i++) {
        if (name && strcmp(name, op_names[i]) == 0) {
            *op = (qs_op_t)i;
            return QS_OK;
        }
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", op_names[i]);
    }
    return qs_error(QS_ERR_FORMAT, "unknown op '%s' (ops: %s)", name ? name : "(null)", list);
}

/* ---- building ------------------------------------------------------------------------ */

void qs_sim_node_free_tensors(qs_node_t *n)
{
    qs_tensor_t **t[] = {&n->weight, &n->bias, &n->gamma, &n->beta, &n->mean, &n->var, &n->mask};
    for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
        qs_tensor_free(*t[k]);
        *t[k] = NULL;
    }
}

qs_node_t qs_node_init(qs_op_t op, const char *name, int ninputs, const int *inputs)
{
    qs_node_t n;
    memset(&n, 0, sizeof n);
    if (name)
        snprintf(n.name, sizeof n.name, "%s", name);
    n.op = op;
    /* a count out of range is kept so that qs_graph_add can report it */
    n.ninputs = ninputs;
    for (int i = 0; i < ninputs && i < QS_MAX_INPUTS && inputs; i++)
        n.inputs[i] = inputs[i];
    n.kh = n.kw = 1;
    n.stride_h = n.stride_w = 1;
    n.dil_h = n.dil_w = 1;
    n.groups = 1;
    n.eps = 1e-5f;
    n.clip_min = 0.0f;
    n.clip_max = 6.0f;
    return n;
}

/* Names become HDF5 group names ("/nodes/0003_conv1") and the comma-separated
 * `inputs` attribute of the model file, and are printed in aligned tables. */
int qs_sim_check_name(const char *name, const char *what)
{
    if (!name || !*name)
        return qs_error(QS_ERR_INVALID, "%s: the name is empty", what);
    size_t len = strnlen(name, QS_NAME_MAX);
    if (len >= QS_NAME_MAX)
        return qs_error(QS_ERR_INVALID, "%s: name '%.20s...' is longer than %d characters", what, name,
                        QS_NAME_MAX - 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c >= 0x7f || c == ',' || c == '/')
            return qs_error(QS_ERR_INVALID,
                            "%s: name '%s' has character %zu that is not allowed (names are printable ASCII "
                            "without spaces, ',' and '/')",
                            what, name, i + 1);
    }
    return QS_OK;
}

qs_graph_t *qs_graph_create(const char *name, int64_t c, int64_t h, int64_t w)
{
    if (!name)
        name = "";
    if (strlen(name) >= QS_NAME_MAX) {
        qs_error(QS_ERR_INVALID, "graph name '%.20s...' is longer than %d characters", name, QS_NAME_MAX - 1);
        return NULL;
    }
    qs_graph_t *g = calloc(1, sizeof *g);
    if (!g || !(g->nodes = calloc(8, sizeof *g->nodes))) {
        free(g);
        qs_error(QS_ERR_NOMEM, "out of memory creating graph '%s'", name);
        return NULL;
    }
    g->cap = 8;
    snprintf(g->name, sizeof g->name, "%s", name);
    g->in_c = c;
    g->in_h = h;
    g->in_w = w;
    g->input_scale = 1.0f / 255.0f;
    for (int i = 0; i < 8; i++) {
        g->norm_mean[i] = 0.0f;
        g->norm_std[i] = 1.0f;
    }
    qs_node_t *in = &g->nodes[0];
    *in = qs_node_init(QS_OP_INPUT, "input", 0, NULL);
    in->out_ndim = 3;
    in->out_shape[0] = c;
    in->out_shape[1] = h;
    in->out_shape[2] = w;
    g->nnodes = 1;
    g->output = 0;
    return g;
}

void qs_graph_free(qs_graph_t *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->nnodes; i++)
        qs_sim_node_free_tensors(&g->nodes[i]);
    free(g->nodes);
    free(g);
}

int qs_graph_find(const qs_graph_t *g, const char *name)
{
    if (!g || !name)
        return -1;
    for (int i = 0; i < g->nnodes; i++)
        if (strcmp(g->nodes[i].name, name) == 0)
            return i;
    return -1;
}

/* The graph takes the node's tensors over whether the call succeeds or not,
 * so that a caller building a graph never has to free them on an error path. */
int qs_graph_add(qs_graph_t *g, const qs_node_t *node)
{
    if (!g || !node)
        return qs_error(QS_ERR_INVALID, "qs_graph_add: no graph or no node");
    qs_node_t n = *node;
    int rc = QS_OK;
    char what[QS_NAME_MAX + 64];
    snprintf(what, sizeof what, "node %d (%s)", g->nnodes, qs_op_name(n.op));
    if ((int)n.op < 0 || n.op >= QS_OP_COUNT) {
        rc = qs_error(QS_ERR_INVALID, "%s: op %d is not a valid op", what, (int)n.op);
        goto fail;
    }
    rc = qs_sim_check_name(n.name, what);
    if (rc < 0)
        goto fail;
    snprintf(what, sizeof what, "node '%s' (%s)", n.name, qs_op_name(n.op));
    if (qs_graph_find(g, n.name) >= 0) {
        rc = qs_error(QS_ERR_INVALID, "%s: the name is already used by node %d", what, qs_graph_find(g, n.name));
        goto fail;
    }
    if (n.op == QS_OP_INPUT) {
        rc = qs_error(QS_ERR_INVALID, "%s: only node 0 is an input", what);
        goto fail;
    }
    if (n.ninputs < 0 || n.ninputs > QS_MAX_INPUTS) {
        rc = qs_error(QS_ERR_INVALID, "%s: %d inputs; a node has 0..%d", what, n.ninputs, QS_MAX_INPUTS);
        goto fail;
    }
    for (int k = 0; k < n.ninputs; k++)
        if (n.inputs[k] < 0 || n.inputs[k] >= g->nnodes) {
            rc = qs_error(QS_ERR_INVALID, "%s: input %d is node %d, but only nodes 0..%d come before it", what, k,
                          n.inputs[k], g->nnodes - 1);
            goto fail;
        }
    if (g->nnodes == g->cap) {
        int cap = g->cap * 2;
        qs_node_t *nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes) {
            rc = qs_error(QS_ERR_NOMEM, "%s: out of memory growing the graph", what);
            goto fail;
        }
        g->nodes = nodes;
        g->cap = cap;
    }
    n.out_ndim = 0;
    memset(n.out_shape, 0, sizeof n.out_shape);
    /* the output follows the last node unless it was pointed elsewhere */
    if (g->output == g->nnodes - 1)
        g->output = g->nnodes;
    g->nodes[g->nnodes] = n;
    return g->nnodes++;
fail:
    qs_sim_node_free_tensors(&n);
    return rc;
}

qs_graph_t *qs_graph_clone(const qs_graph_t *g)
{
    if (!g) {
        qs_error(QS_ERR_INVALID, "qs_graph_clone: no graph");
        return NULL;
    }
    qs_graph_t *c = calloc(1, sizeof *c);
    if (!c || !(c->nodes = calloc((size_t)g->cap, sizeof *c->nodes))) {
        free(c);
        qs_error(QS_ERR_NOMEM, "out of memory copying graph '%s'", g->name);
        return NULL;
    }
    qs_node_t *nodes = c->nodes;
    *c = *g;
    c->nodes = nodes;
    c->nnodes = 0;
    for (int i = 0; i < g->nnodes; i++) {
        qs_node_t n = g->nodes[i];
        qs_tensor_t *src[] = {n.weight, n.bias, n.gamma, n.beta, n.mean, n.var, n.mask};
        qs_tensor_t **dst[] = {&n.weight, &n.bias, &n.gamma, &n.beta, &n.mean, &n.var, &n.mask};
        bool ok = true;
        for (size_t k = 0; k < sizeof src / sizeof *src; k++) {
            *dst[k] = NULL;
            if (src[k] && !(*dst[k] = qs_tensor_clone(src[k])))
                ok = false;
        }
        c->nodes[c->nnodes++] = n; /* counted first, so that a failure frees what was cloned */
        if (!ok) {
            qs_graph_free(c);
            qs_error(QS_ERR_NOMEM, "out of memory copying graph '%s'", g->name);
            return NULL;
        }
    }
    return c;
}

/* ---- validation and shapes ------------------------------------------------------------ */

/* "node 'conv3' (conv2d): " + the message */
QS_PRINTF(3, 4) static int node_error(const qs_node_t *n, int code, const char *fmt, ...)
{
    char msg[QS_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return qs_error(code, "node '%s' (%s): %s", n->name, qs_op_name(n->op), msg);
}
#define NERR node_error

static char *shape_of(const qs_tensor_t *t, char *buf, size_t len)
{
    return qs_shape_str(t->ndim, t->shape, buf, len);
}

static char *out_shape_str(const qs_node_t *n, char *buf, size_t len)
{
    return qs_shape_str(n->out_ndim, n->out_shape, buf, len);
}

static const char *tensor_names[] = {"weight", "bias", "gamma", "beta", "mean", "var", "mask"};

static void node_tensors(const qs_node_t *n, const qs_tensor_t *t[7])
{
    t[0] = n->weight;
    t[1] = n->bias;
    t[2] = n->gamma;
    t[3] = n->beta;
    t[4] = n->mean;
    t[5] = n->var;
    t[6] = n->mask;
}

/* Which tensors an op may hold: bit k for tensor_names[k]. */
static unsigned allowed_tensors(qs_op_t op)
{
    switch (op) {
    case QS_OP_CONV2D:
    case QS_OP_LINEAR: return 1u | 2u | 64u;
    case QS_OP_BATCHNORM: return 4u | 8u | 16u | 32u;
    default: return 0;
    }
}

static int check_tensors(const qs_node_t *n)
{
    const qs_tensor_t *t[7];
    node_tensors(n, t);
    unsigned allowed = allowed_tensors(n->op);
    for (int k = 0; k < 7; k++) {
        if (!t[k])
            continue;
        if (!(allowed & (1u << k)))
            return NERR(n, QS_ERR_INVALID, "has a %s tensor, but %s takes no %s", tensor_names[k], qs_op_name(n->op),
                        tensor_names[k]);
        if (t[k]->dtype != QS_F32)
            return NERR(n, QS_ERR_INVALID, "%s is %s, expected float32", tensor_names[k], qs_dtype_name(t[k]->dtype));
        if (t[k]->size == 0) {
            char s[96];
            return NERR(n, QS_ERR_SHAPE, "%s has shape %s, which holds no elements", tensor_names[k],
                        shape_of(t[k], s, sizeof s));
        }
        const float *v = qs_f32(t[k]);
        for (int64_t i = 0; i < t[k]->size; i++) {
            if (!isfinite(v[i]))
                return NERR(n, QS_ERR_NUMERIC, "%s[%lld] is %s (parameters must be finite)", tensor_names[k],
                            (long long)i, isnan(v[i]) ? "NaN" : v[i] > 0 ? "+Inf" : "-Inf");
            if (k == 6 && v[i] != 0.0f && v[i] != 1.0f)
                return NERR(n, QS_ERR_INVALID, "mask[%lld] is %.9g; a mask holds only 0 and 1", (long long)i,
                            (double)v[i]);
            if (k == 5 && v[i] < 0.0f)
                return NERR(n, QS_ERR_INVALID, "var[%lld] is %.9g; a variance cannot be negative", (long long)i,
                            (double)v[i]);
        }
    }
    return QS_OK;
}

/* A vector parameter of length c, or an error "bias has shape [8] but ... expected [16]". */
static int check_vector(const qs_node_t *n, const qs_tensor_t *t, const char *tname, int64_t c, const char *why)
{
    if (t->ndim == 1 && t->shape[0] == c)
        return QS_OK;
    char s[96];
    return NERR(n, QS_ERR_SHAPE, "%s has shape %s but %s — expected [%lld]", tname, shape_of(t, s, sizeof s), why,
                (long long)c);
}

/* Output length of a sliding window, or an error naming the axis. */
static int window_out(const qs_node_t *n, const char *axis, int64_t in, int pad0, int pad1, int k, int dil,
                      int stride, int64_t *out)
{
    int64_t span = (int64_t)dil * (k - 1) + 1;
    int64_t padded = in + pad0 + pad1;
    if (padded < span)
        return NERR(n, QS_ERR_SHAPE,
                    "the %s window spans %lld (kernel %d, dilation %d) but the input %s is %lld (%lld with padding "
                    "%d+%d)",
                    axis, (long long)span, k, dil, axis, (long long)in, (long long)padded, pad0, pad1);
    *out = (padded - span) / stride + 1;
    return QS_OK;
}

static int check_window_attrs(const qs_node_t *n, bool conv)
{
    if (n->kh < 1 || n->kw < 1)
        return NERR(n, QS_ERR_INVALID, "kernel %dx%d; both sides must be at least 1", n->kh, n->kw);
    if (n->stride_h < 1 || n->stride_w < 1)
        return NERR(n, QS_ERR_INVALID, "stride %dx%d; both must be at least 1", n->stride_h, n->stride_w);
    if (n->pad_top < 0 || n->pad_left < 0 || n->pad_bottom < 0 || n->pad_right < 0)
        return NERR(n, QS_ERR_INVALID, "padding [%d, %d, %d, %d] (top, left, bottom, right); padding cannot be negative",
                    n->pad_top, n->pad_left, n->pad_bottom, n->pad_right);
    if (conv) {
        if (n->dil_h < 1 || n->dil_w < 1)
            return NERR(n, QS_ERR_INVALID, "dilation %dx%d; both must be at least 1", n->dil_h, n->dil_w);
        if (n->groups < 1)
            return NERR(n, QS_ERR_INVALID, "groups %d; must be at least 1", n->groups);
    } else {
        /* a window lying entirely in the padding would have no max and an
         * empty average: PyTorch's rule (padding at most half the kernel) is
         * stricter than needed; this is the exact condition */
        if (n->pad_top >= n->kh || n->pad_bottom >= n->kh || n->pad_left >= n->kw || n->pad_right >= n->kw)
            return NERR(n, QS_ERR_INVALID,
                        "padding [%d, %d, %d, %d] (top, left, bottom, right) with kernel %dx%d: each padding must be "
                        "smaller than the kernel side, or a window could lie entirely in the padding",
                        n->pad_top, n->pad_left, n->pad_bottom, n->pad_right, n->kh, n->kw);
    }
    return QS_OK;
}

static int need_3d(const qs_node_t *n, const qs_node_t *in, const char *what)
{
    if (in->out_ndim == 3)
        return QS_OK;
    char s[96];
    return NERR(n, QS_ERR_SHAPE, "input '%s' has shape %s, but %s needs a (C, H, W) feature map", in->name,
                out_shape_str(in, s, sizeof s), what);
}

static int infer_conv(qs_node_t *n, const qs_node_t *in)
{
    int rc = need_3d(n, in, "conv2d");
    if (rc < 0 || (rc = check_window_attrs(n, true)) < 0)
        return rc;
    if (!n->weight)
        return NERR(n, QS_ERR_INVALID, "has no weight");
    int64_t c = in->out_shape[0], g = n->groups;
    const qs_tensor_t *w = n->weight;
    char s[96];
    if (c % g != 0)
        return NERR(n, QS_ERR_SHAPE, "the input '%s' has %lld channels, not a multiple of groups %lld", in->name,
                    (long long)c, (long long)g);
    int64_t o = w->ndim >= 1 ? w->shape[0] : 0;
    if (w->ndim != 4 || w->shape[1] != c / g || w->shape[2] != n->kh || w->shape[3] != n->kw)
        return NERR(n, QS_ERR_SHAPE,
                    "weight has shape %s but the input has %lld channels (groups %lld) and the kernel is %dx%d — "
                    "expected [%lld, %lld, %d, %d]",
                    shape_of(w, s, sizeof s), (long long)c, (long long)g, n->kh, n->kw, (long long)o,
                    (long long)(c / g), n->kh, n->kw);
    if (o % g != 0)
        return NERR(n, QS_ERR_SHAPE, "weight has %lld output channels, not a multiple of groups %lld", (long long)o,
                    (long long)g);
    if (n->bias && (rc = check_vector(n, n->bias, "bias", o, "the weight has that many output channels")) < 0)
        return rc;
    if (n->mask && !qs_shape_equal(n->mask, w)) {
        char s2[96];
        return NERR(n, QS_ERR_SHAPE, "mask has shape %s but the weight has shape %s — they must match",
                    shape_of(n->mask, s2, sizeof s2), shape_of(w, s, sizeof s));
    }
    int64_t ho = 0, wo = 0;
    if ((rc = window_out(n, "height", in->out_shape[1], n->pad_top, n->pad_bottom, n->kh, n->dil_h, n->stride_h,
                         &ho)) < 0 ||
        (rc = window_out(n, "width", in->out_shape[2], n->pad_left, n->pad_right, n->kw, n->dil_w, n->stride_w,
                         &wo)) < 0)
        return rc;
    n->out_ndim = 3;
    n->out_shape[0] = o;
    n->out_shape[1] = ho;
    n->out_shape[2] = wo;
    return QS_OK;
}

static int infer_pool(qs_node_t *n, const qs_node_t *in)
{
    int rc = need_3d(n, in, qs_op_name(n->op));
    if (rc < 0 || (rc = check_window_attrs(n, false)) < 0)
        return rc;
    int64_t ho = 0, wo = 0;
    if ((rc = window_out(n, "height", in->out_shape[1], n->pad_top, n->pad_bottom, n->kh, 1, n->stride_h, &ho)) < 0 ||
        (rc = window_out(n, "width", in->out_shape[2], n->pad_left, n->pad_right, n->kw, 1, n->stride_w, &wo)) < 0)
        return rc;
    n->out_ndim = 3;
    n->out_shape[0] = in->out_shape[0];
    n->out_shape[1] = ho;
    n->out_shape[2] = wo;
    return QS_OK;
}

/* Features of a (F) or (F, 1, 1) shape, or -1. */
static int64_t features_of(const qs_node_t *n)
{
    if (n->out_ndim == 1)
        return n->out_shape[0];
    if (n->out_ndim == 3 && n->out_shape[1] == 1 && n->out_shape[2] == 1)
        return n->out_shape[0];
    return -1;
}

static int infer_linear(qs_node_t *n, const qs_node_t *in)
{
    char s[96], s2[96];
    int64_t f = features_of(in);
    if (f < 0)
        return NERR(n, QS_ERR_SHAPE, "input '%s' has shape %s, but linear needs (F) or (C, 1, 1) (add a flatten)",
                    in->name, out_shape_str(in, s, sizeof s));
    if (!n->weight)
        return NERR(n, QS_ERR_INVALID, "has no weight");
    const qs_tensor_t *w = n->weight;
    int64_t o = w->ndim >= 1 ? w->shape[0] : 0;
    if (w->ndim != 2 || w->shape[1] != f)
        return NERR(n, QS_ERR_SHAPE, "weight has shape %s but the input has %lld features — expected [%lld, %lld]",
                    shape_of(w, s, sizeof s), (long long)f, (long long)o, (long long)f);
    int rc;
    if (n->bias && (rc = check_vector(n, n->bias, "bias", o, "the weight has that many outputs")) < 0)
        return rc;
    if (n->mask && !qs_shape_equal(n->mask, w))
        return NERR(n, QS_ERR_SHAPE, "mask has shape %s but the weight has shape %s — they must match",
                    shape_of(n->mask, s2, sizeof s2), shape_of(w, s, sizeof s));
    n->out_ndim = 1;
    n->out_shape[0] = o;
    return QS_OK;
}

static int infer_batchnorm(qs_node_t *n, const qs_node_t *in)
{
    if (in->out_ndim != 3 && in->out_ndim != 1) {
        char s[96];
        return NERR(n, QS_ERR_SHAPE, "input '%s' has shape %s, expected (C, H, W) or (F)", in->name,
                    out_shape_str(in, s, sizeof s));
    }
    int64_t c = in->out_shape[0];
    const qs_tensor_t *t[] = {n->gamma, n->beta, n->mean, n->var};
    const char *tn[] = {"gamma", "beta", "mean", "var"};
    char why[QS_NAME_MAX + 64];
    snprintf(why, sizeof why, "the input '%s' has %lld channels", in->name, (long long)c);
    for (int k = 0; k < 4; k++) {
        if (!t[k])
            return NERR(n, QS_ERR_INVALID, "has no %s (batchnorm needs gamma, beta, mean and var)", tn[k]);
        int rc = check_vector(n, t[k], tn[k], c, why);
        if (rc < 0)
            return rc;
    }
    if (!(isfinite(n->eps) && n->eps > 0.0f))
        return NERR(n, QS_ERR_INVALID, "eps is %g; it must be positive and finite", (double)n->eps);
    n->out_ndim = in->out_ndim;
    memcpy(n->out_shape, in->out_shape, sizeof n->out_shape);
    return QS_OK;
}

static bool same_shape(const qs_node_t *a, const qs_node_t *b)
{
    if (a->out_ndim != b->out_ndim)
        return false;
    for (int k = 0; k < a->out_ndim; k++)
        if (a->out_shape[k] != b->out_shape[k])
            return false;
    return true;
}

static int infer_node(qs_graph_t *g, int i)
{
    qs_node_t *n = &g->nodes[i];
    char s[96], s2[96];
    if ((int)n->op < 0 || n->op >= QS_OP_COUNT)
        return qs_error(QS_ERR_INVALID, "node '%s': op %d is not a valid op", n->name, (int)n->op);
    if (n->op == QS_OP_INPUT) {
        if (i != 0)
            return NERR(n, QS_ERR_INVALID, "only node 0 is an input (this is node %d)", i);
        if (n->ninputs != 0)
            return NERR(n, QS_ERR_INVALID, "the input node takes no inputs, has %d", n->ninputs);
        if (g->in_c < 1 || g->in_h < 1 || g->in_w < 1 || g->in_c > 8)
            return NERR(n, QS_ERR_SHAPE, "input shape (%lld, %lld, %lld): every side must be at least 1 and C at most 8",
                        (long long)g->in_c, (long long)g->in_h, (long long)g->in_w);
        if (!(isfinite(g->input_scale) && g->input_scale > 0.0f))
            return NERR(n, QS_ERR_INVALID, "input_scale is %g; it must be positive and finite", (double)g->input_scale);
        for (int c = 0; c < g->in_c; c++)
            if (!isfinite(g->norm_mean[c]) || !(isfinite(g->norm_std[c]) && g->norm_std[c] > 0.0f))
                return NERR(n, QS_ERR_INVALID,
                            "normalization of channel %d is mean %g, std %g; the mean must be finite and the std "
                            "positive and finite",
                            c, (double)g->norm_mean[c], (double)g->norm_std[c]);
        n->out_ndim = 3;
        n->out_shape[0] = g->in_c;
        n->out_shape[1] = g->in_h;
        n->out_shape[2] = g->in_w;
        return check_tensors(n);
    }
    if (i == 0)
        return NERR(n, QS_ERR_INVALID, "node 0 must be the input");
    int rc = check_tensors(n);
    if (rc < 0)
        return rc;

    /* inputs: earlier nodes, as many as the op takes */
    bool multi = n->op == QS_OP_ADD || n->op == QS_OP_CONCAT;
    if (n->ninputs < 0 || n->ninputs > QS_MAX_INPUTS)
        return NERR(n, QS_ERR_INVALID, "%d inputs; a node has 0..%d", n->ninputs, QS_MAX_INPUTS);
    if (multi ? n->ninputs < 2 : n->ninputs != 1)
        return NERR(n, QS_ERR_INVALID, "has %d input%s; %s takes %s", n->ninputs, n->ninputs == 1 ? "" : "s",
                    qs_op_name(n->op), multi ? "2 or more" : "exactly 1");
    for (int k = 0; k < n->ninputs; k++)
        if (n->inputs[k] < 0 || n->inputs[k] >= i)
            return NERR(n, QS_ERR_INVALID, "input %d is node %d, but only nodes 0..%d come before it", k, n->inputs[k],
                        i - 1);
    const qs_node_t *in = &g->nodes[n->inputs[0]];

    switch (n->op) {
    case QS_OP_CONV2D: return infer_conv(n, in);
    case QS_OP_MAXPOOL:
    case QS_OP_AVGPOOL: return infer_pool(n, in);
    case QS_OP_LINEAR: return infer_linear(n, in);
    case QS_OP_BATCHNORM: return infer_batchnorm(n, in);
    case QS_OP_CLIP:
        if (!(isfinite(n->clip_min) && isfinite(n->clip_max) && n->clip_min <= n->clip_max))
            return NERR(n, QS_ERR_INVALID, "clip range [%g, %g]; both ends must be finite and min <= max",
                        (double)n->clip_min, (double)n->clip_max);
        /* fall through */
    case QS_OP_RELU:
    case QS_OP_RELU6:
        n->out_ndim = in->out_ndim;
        memcpy(n->out_shape, in->out_shape, sizeof n->out_shape);
        return QS_OK;
    case QS_OP_ADD:
        for (int k = 1; k < n->ninputs; k++) {
            const qs_node_t *b = &g->nodes[n->inputs[k]];
            if (!same_shape(in, b))
                return NERR(n, QS_ERR_SHAPE, "input '%s' has shape %s but input '%s' has shape %s — add needs one shape",
                            in->name, out_shape_str(in, s, sizeof s), b->name, out_shape_str(b, s2, sizeof s2));
        }
        n->out_ndim = in->out_ndim;
        memcpy(n->out_shape, in->out_shape, sizeof n->out_shape);
        return QS_OK;
    case QS_OP_CONCAT: {
        int64_t c = 0;
        for (int k = 0; k < n->ninputs; k++) {
            const qs_node_t *b = &g->nodes[n->inputs[k]];
            if ((rc = need_3d(n, b, "concat")) < 0)
                return rc;
            if (b->out_shape[1] != in->out_shape[1] || b->out_shape[2] != in->out_shape[2])
                return NERR(n, QS_ERR_SHAPE,
                            "input '%s' has shape %s but input '%s' has shape %s — concat needs equal H and W",
                            in->name, out_shape_str(in, s, sizeof s), b->name, out_shape_str(b, s2, sizeof s2));
            c += b->out_shape[0];
        }
        n->out_ndim = 3;
        n->out_shape[0] = c;
        n->out_shape[1] = in->out_shape[1];
        n->out_shape[2] = in->out_shape[2];
        return QS_OK;
    }
    case QS_OP_GAP:
        if ((rc = need_3d(n, in, "gap")) < 0)
            return rc;
        n->out_ndim = 3;
        n->out_shape[0] = in->out_shape[0];
        n->out_shape[1] = n->out_shape[2] = 1;
        return QS_OK;
    case QS_OP_FLATTEN: {
        int64_t f = 1;
        for (int k = 0; k < in->out_ndim; k++)
            f *= in->out_shape[k];
        n->out_ndim = 1;
        n->out_shape[0] = f;
        n->out_shape[1] = n->out_shape[2] = 0;
        return QS_OK;
    }
    case QS_OP_RESHAPE: {
        /* per-sample shapes are (F) or (C, H, W) everywhere in sim/, so a
         * 2-D target would give a shape no op consumes */
        if (n->reshape_ndim != 1 && n->reshape_ndim != 3)
            return NERR(n, QS_ERR_INVALID, "reshape to %d dimensions; the target must be (F) or (C, H, W)",
                        n->reshape_ndim);
        int64_t count = 1, f = 1;
        for (int k = 0; k < n->reshape_ndim; k++) {
            if (n->reshape[k] < 1)
                return NERR(n, QS_ERR_SHAPE, "reshape target %s has a side smaller than 1",
                            qs_shape_str(n->reshape_ndim, n->reshape, s, sizeof s));
            count *= n->reshape[k];
        }
        for (int k = 0; k < in->out_ndim; k++)
            f *= in->out_shape[k];
        if (count != f)
            return NERR(n, QS_ERR_SHAPE, "input '%s' has shape %s (%lld elements) but the target %s holds %lld",
                        in->name, out_shape_str(in, s2, sizeof s2), (long long)f,
                        qs_shape_str(n->reshape_ndim, n->reshape, s, sizeof s), (long long)count);
        n->out_ndim = n->reshape_ndim;
        memset(n->out_shape, 0, sizeof n->out_shape);
        memcpy(n->out_shape, n->reshape, (size_t)n->reshape_ndim * sizeof *n->reshape);
        return QS_OK;
    }
    case QS_OP_SOFTMAX:
        if (in->out_ndim != 1)
            return NERR(n, QS_ERR_SHAPE, "input '%s' has shape %s, but softmax needs (F) (add a flatten)", in->name,
                        out_shape_str(in, s, sizeof s));
        n->out_ndim = 1;
        n->out_shape[0] = in->out_shape[0];
        n->out_shape[1] = n->out_shape[2] = 0;
        return QS_OK;
    default: return NERR(n, QS_ERR_INTERNAL, "op not handled by qs_graph_infer");
    }
}

int qs_graph_infer(qs_graph_t *g)
{
    if (!g || g->nnodes < 1 || !g->nodes)
        return qs_error(QS_ERR_INVALID, "qs_graph_infer: no graph or a graph without nodes");
    for (int i = 0; i < g->nnodes; i++) {
        int rc = qs_sim_check_name(g->nodes[i].name, "node");
        if (rc < 0)
            return qs_error_context("graph '%s', node %d: ", g->name, i);
        for (int j = 0; j < i; j++)
            if (strcmp(g->nodes[i].name, g->nodes[j].name) == 0)
                return qs_error(QS_ERR_INVALID, "nodes %d and %d are both named '%s'", j, i, g->nodes[i].name);
        if ((rc = infer_node(g, i)) < 0)
            return rc;
    }
    if (g->output < 0)
        g->output = g->nnodes - 1;
    if (g->output >= g->nnodes)
        return qs_error(QS_ERR_INVALID, "graph '%s': the output is node %d, but there are %d nodes", g->name, g->output,
                        g->nnodes);
    const qs_node_t *o = &g->nodes[g->output];
    int64_t f = features_of(o);
    if (f < 1 || f > INT32_MAX) {
        char s[96];
        return qs_error(QS_ERR_SHAPE, "graph '%s': the output node '%s' (%s) has shape %s; the output must be (F) or (F, 1, 1)",
                        g->name, o->name, qs_op_name(o->op), out_shape_str(o, s, sizeof s));
    }
    g->num_classes = (int)f;
    return QS_OK;
}

/* ---- counts ------------------------------------------------------------------------------ */

int64_t qs_graph_params(const qs_graph_t *g)
{
    if (!g)
        return 0;
    int64_t p = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const qs_tensor_t *t[7];
        node_tensors(&g->nodes[i], t);
        for (int k = 0; k < 6; k++) /* the mask selects parameters, it is not one */
            if (t[k])
                p += t[k]->size;
    }
    return p;
}

int64_t qs_node_macs(const qs_graph_t *g, int i)
{
    if (!g || i < 0 || i >= g->nnodes)
        return 0;
    const qs_node_t *n = &g->nodes[i];
    if (n->op == QS_OP_CONV2D && n->weight && n->weight->ndim == 4 && n->out_ndim == 3)
        return n->out_shape[0] * n->out_shape[1] * n->out_shape[2] * n->weight->shape[1] * n->weight->shape[2] *
               n->weight->shape[3];
    if (n->op == QS_OP_LINEAR && n->weight && n->weight->ndim == 2)
        return n->weight->shape[0] * n->weight->shape[1];
    return 0;
}

int64_t qs_graph_macs(const qs_graph_t *g)
{
    int64_t m = 0;
    for (int i = 0; g && i < g->nnodes; i++)
        m += qs_node_macs(g, i);
    return m;
}
