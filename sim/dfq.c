/* sim/dfq.c — data-free quantization transforms (Nagel et al., ICCV 2019):
 * cross-layer equalization, high-bias absorption and bias correction, on
 * the BN-folded float graph, with the folded batchnorms' statistics kept
 * beside it (sim/dfq.h says what each step keeps).
 *
 * Layout facts the code relies on (DESIGN, "Contracts"): conv weights OIHW
 * with I = input channels per group, linear weights [out, in], and a flatten
 * of (C, H, W) puts channel c at features [c·H·W, (c+1)·H·W). Channel i of a
 * layer's output therefore reaches, in the next layer L2:
 *  - conv2d with groups G (I per group, O/G outputs per group): the
 *    elements W2[o, i mod I, :, :] for the outputs o of group i / I
 *    (depthwise: W2[i·m .. i·m + m) for a multiplier m);
 *  - linear with F inputs after C channels: the columns [i·k, (i+1)·k) of
 *    every row, k = F / C (1 after a global average pool). */
#include "sim/dfq.h"
#include "sim/sim_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- options ------------------------------------------------------------------------------------ */

void qs_dfq_opts_default(qs_dfq_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->steps = QS_DFQ_CLE | QS_DFQ_ABSORB;
    o->relu6 = QS_DFQ_RELU6_REPLACE;
    o->max_sweeps = 100;
    o->tol = 1e-6;
    o->absorb_sigmas = 3.0;
    o->absorb_padded = true;
    o->bc = QS_DFQ_BC_ANALYTIC;
    o->images = 1000;
    o->batch = 256;
    o->seed = 1;
}

static const char *const step_names[3] = {"cle", "absorb", "bc"};

int qs_dfq_method_parse(const char *text, const char *what, unsigned *steps)
{
    if (!what)
        what = "method";
    if (!text || !*text)
        return qs_error(QS_ERR_INVALID, "%s: empty; expected none, cle, cle+absorb, cle+absorb+bc or bc", what);
    if (strcmp(text, "none") == 0) {
        *steps = 0;
        return QS_OK;
    }
    unsigned s = 0;
    const char *p = text;
    while (*p) {
        const char *end = strchr(p, '+');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        int k = -1;
        for (int j = 0; j < 3; j++)
            if (strlen(step_names[j]) == len && strncmp(p, step_names[j], len) == 0)
                k = j;
        if (k < 0)
            return qs_error(QS_ERR_INVALID, "%s '%s': unknown step '%.*s' (steps: cle, absorb, bc joined by '+', e.g. "
                            "cle+absorb+bc; or none)", what, text, (int)len, p);
        if (s & (1u << k))
            return qs_error(QS_ERR_INVALID, "%s '%s': step '%s' given twice", what, text, step_names[k]);
        s |= 1u << k;
        if (!end)
            break;
        p = end + 1;
        if (!*p)
            return qs_error(QS_ERR_INVALID, "%s '%s': a step is missing after the last '+'", what, text);
    }
    *steps = s;
    return QS_OK;
}

const char *qs_dfq_method_str(unsigned steps, char *buf, size_t n)
{
    size_t used = 0;
    if (n)
        buf[0] = '\0';
    for (int k = 0; k < 3; k++)
        if (steps & (1u << k) && used < n)
            used += (size_t)snprintf(buf + used, n - used, "%s%s", used ? "+" : "", step_names[k]);
    if (used == 0 && n)
        snprintf(buf, n, "none");
    return buf;
}

int qs_dfq_relu6_parse(const char *text, const char *what, qs_dfq_relu6_t *out)
{
    if (text && strcmp(text, "replace") == 0)
        *out = QS_DFQ_RELU6_REPLACE;
    else if (text && strcmp(text, "skip") == 0)
        *out = QS_DFQ_RELU6_SKIP;
    else
        return qs_error(QS_ERR_INVALID, "%s '%s': expected replace (a ReLU6 between two layers becomes a ReLU) or "
                        "skip (such pairs are left alone)", what ? what : "relu6", text ? text : "");
    return QS_OK;
}

int qs_dfq_bc_parse(const char *text, const char *what, qs_dfq_bc_t *out)
{
    if (text && strcmp(text, "analytic") == 0)
        *out = QS_DFQ_BC_ANALYTIC;
    else if (text && strcmp(text, "empirical") == 0)
        *out = QS_DFQ_BC_EMPIRICAL;
    else
        return qs_error(QS_ERR_INVALID, "%s '%s': expected analytic (from batchnorm statistics) or empirical (from "
                        "calibration images)", what ? what : "bias correction", text ? text : "");
    return QS_OK;
}

static int check_opts(const qs_dfq_opts_t *o)
{
    if (o->steps & ~(unsigned)(QS_DFQ_CLE | QS_DFQ_ABSORB | QS_DFQ_BC))
        return qs_error(QS_ERR_INVALID, "dfq: steps 0x%x: only cle (1), absorb (2) and bc (4) exist", o->steps);
    if (o->relu6 != QS_DFQ_RELU6_REPLACE && o->relu6 != QS_DFQ_RELU6_SKIP)
        return qs_error(QS_ERR_INVALID, "dfq: relu6 handling %d is neither replace nor skip", (int)o->relu6);
    if (o->bc != QS_DFQ_BC_ANALYTIC && o->bc != QS_DFQ_BC_EMPIRICAL)
        return qs_error(QS_ERR_INVALID, "dfq: bias correction mode %d is neither analytic nor empirical", (int)o->bc);
    if (o->max_sweeps < 1)
        return qs_error(QS_ERR_INVALID, "dfq: %d equalization sweeps; at least 1", o->max_sweeps);
    if (!(o->tol > 0.0) || !isfinite(o->tol))
        return qs_error(QS_ERR_INVALID, "dfq: equalization tolerance %g; expected a finite value > 0", o->tol);
    if (!(o->absorb_sigmas >= 0.0) || !isfinite(o->absorb_sigmas))
        return qs_error(QS_ERR_INVALID, "dfq: absorption threshold of %g standard deviations; expected a finite "
                        "value >= 0", o->absorb_sigmas);
    if (o->images < 1 || o->batch < 1)
        return qs_error(QS_ERR_INVALID, "dfq: %lld calibration images in batches of %lld: both must be at least 1",
                        (long long)o->images, (long long)o->batch);
    return QS_OK;
}

/* ---- the report --------------------------------------------------------------------------------- */

void qs_dfq_report_free(qs_dfq_report_t *r)
{
    if (!r)
        return;
    free(r->pair);
    free(r->skipped);
    free(r->corrected);
    memset(r, 0, sizeof *r);
}

static bool grow(void **arr, int n, size_t size)
{
    void *p = realloc(*arr, (size_t)(n + 1) * size);
    if (!p)
        return false;
    *arr = p;
    return true;
}

QS_PRINTF(4, 5) static int add_skip(qs_dfq_report_t *rep, unsigned step, const char *node, const char *fmt, ...)
{
    if (!rep)
        return QS_OK;
    if (!grow((void **)&rep->skipped, rep->nskipped, sizeof *rep->skipped))
        return qs_error(QS_ERR_NOMEM, "dfq: out of memory for the report");
    qs_dfq_skip_t *s = &rep->skipped[rep->nskipped++];
    memset(s, 0, sizeof *s);
    s->step = step;
    snprintf(s->node, sizeof s->node, "%s", node);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->reason, sizeof s->reason, fmt, ap);
    va_end(ap);
    return QS_OK;
}

/* The report's entry of the pair (first, second), added if new; NULL without a report. */
static qs_dfq_pair_t *report_pair(qs_dfq_report_t *rep, const char *first, const char *second)
{
    if (!rep)
        return NULL;
    for (int k = 0; k < rep->npairs; k++)
        if (strcmp(rep->pair[k].first, first) == 0 && strcmp(rep->pair[k].second, second) == 0)
            return &rep->pair[k];
    if (!grow((void **)&rep->pair, rep->npairs, sizeof *rep->pair)) {
        qs_error(QS_ERR_NOMEM, "dfq: out of memory for the report");
        return NULL;
    }
    qs_dfq_pair_t *p = &rep->pair[rep->npairs++];
    memset(p, 0, sizeof *p);
    snprintf(p->first, sizeof p->first, "%s", first);
    snprintf(p->second, sizeof p->second, "%s", second);
    p->act_op = QS_OP_INPUT;
    p->s_min = p->s_max = 1.0;
    return p;
}

/* "stem: why; b1.dw: why; ..." for a message, from the entries of step */
static const char *skip_list(const qs_dfq_report_t *rep, unsigned step, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int k = 0; rep && k < rep->nskipped && used < n; k++)
        if (rep->skipped[k].step == step)
            used += (size_t)snprintf(buf + used, n - used, "%s%s: %s", used ? "; " : "", rep->skipped[k].node,
                                     rep->skipped[k].reason);
    return used ? buf : "no conv2d or linear layer";
}

/* ---- the network --------------------------------------------------------------------------------- */

static bool is_layer(const qs_node_t *n) { return (n->op == QS_OP_CONV2D || n->op == QS_OP_LINEAR) && n->weight; }

void qs_dfq_net_free(qs_dfq_net_t *n)
{
    if (!n)
        return;
    for (int i = 0; n->g && i < n->g->nnodes; i++) {
        if (n->mean)
            free(n->mean[i]);
        if (n->std)
            free(n->std[i]);
    }
    free(n->mean);
    free(n->std);
    qs_graph_free(n->g);
    free(n);
}

/* The only reader of node i in g, or -1 (none or several). */
static int sole_reader(const qs_graph_t *g, int i)
{
    int r = -1;
    for (int j = i + 1; j < g->nnodes; j++)
        for (int k = 0; k < g->nodes[j].ninputs; k++)
            if (g->nodes[j].inputs[k] == i) {
                if (r >= 0)
                    return -1;
                r = j;
            }
    return r;
}

/* The statistics of a folded layer: in the original graph, follow the
 * batchnorms that read it alone and that are gone from the folded graph;
 * the last one's output is the layer's pre-activation, N(β, γ²) per channel
 * under the batchnorm's own assumption. */
static int record_stats(qs_dfq_net_t *n, const qs_graph_t *orig, int i)
{
    const qs_node_t *nd = &n->g->nodes[i];
    int src = qs_graph_find(orig, nd->name);
    if (src < 0 || !is_layer(nd))
        return QS_OK;
    int bn = -1;
    for (int r = sole_reader(orig, src); r >= 0 && orig->nodes[r].op == QS_OP_BATCHNORM &&
                                         qs_graph_find(n->g, orig->nodes[r].name) < 0;
         r = sole_reader(orig, r))
        bn = r;
    if (bn < 0)
        return QS_OK;
    const qs_node_t *b = &orig->nodes[bn];
    int64_t c = nd->weight->shape[0];
    if (!b->gamma || !b->beta || b->gamma->size != c || b->beta->size != c)
        return QS_OK;
    if (!(n->mean[i] = malloc((size_t)c * sizeof(float))) || !(n->std[i] = malloc((size_t)c * sizeof(float))))
        return qs_error(QS_ERR_NOMEM, "dfq: out of memory for the statistics of '%s'", nd->name);
    for (int64_t k = 0; k < c; k++) {
        n->mean[i][k] = qs_f32(b->beta)[k];
        n->std[i][k] = fabsf(qs_f32(b->gamma)[k]);
    }
    return QS_OK;
}

int qs_dfq_net_create(const qs_graph_t *g, qs_dfq_net_t **out)
{
    if (!out)
        return qs_error(QS_ERR_INVALID, "qs_dfq_net_create: no place for the result");
    *out = NULL;
    if (!g)
        return qs_error(QS_ERR_INVALID, "qs_dfq_net_create: no graph");
    qs_dfq_net_t *n = calloc(1, sizeof *n);
    if (!n)
        return qs_error(QS_ERR_NOMEM, "dfq: out of memory");
    /* folding again until nothing is left to fold: a batchnorm after a
     * batchnorm becomes foldable once the first is gone */
    qs_graph_t *cur = NULL;
    int rc = qs_graph_fold_bn(g, &cur, &n->folded);
    for (int more = n->folded; rc >= 0 && more > 0;) {
        qs_graph_t *next = NULL;
        if ((rc = qs_graph_fold_bn(cur, &next, &more)) < 0)
            break;
        qs_graph_free(cur);
        cur = next;
        n->folded += more;
    }
    if (rc < 0) {
        qs_graph_free(cur);
        free(n);
        return rc;
    }
    n->g = cur;
    n->mean = calloc((size_t)cur->nnodes, sizeof *n->mean);
    n->std = calloc((size_t)cur->nnodes, sizeof *n->std);
    if (!n->mean || !n->std) {
        qs_dfq_net_free(n);
        return qs_error(QS_ERR_NOMEM, "dfq: out of memory");
    }
    for (int i = 0; i < cur->nnodes; i++)
        if ((rc = record_stats(n, g, i)) < 0) {
            qs_dfq_net_free(n);
            return rc;
        }
    *out = n;
    return QS_OK;
}

/* ---- pairs --------------------------------------------------------------------------------------- */

typedef struct {
    int l1, l2;
    int act;            /* the activation node, or -1 */
    int64_t c;          /* channels of L1's output */
    int64_t k;          /* L2 (linear): inputs per channel */
    bool padded;        /* L2 pads */
} pair_t;

/* Where channel i of L1's output sits in L2's weight: for o in [o0, o1),
 * the run of `run` contiguous elements at o·stride + off. */
typedef struct {
    int64_t o0, o1, stride, off, run;
} cols_t;

static cols_t l2_cols(const qs_graph_t *g, const pair_t *p, int64_t i)
{
    const qs_node_t *n = &g->nodes[p->l2];
    const qs_tensor_t *w = n->weight;
    cols_t c;
    if (n->op == QS_OP_CONV2D) {
        int64_t per_in = w->shape[1], khw = w->shape[2] * w->shape[3], og = w->shape[0] / n->groups;
        int64_t grp = i / per_in;
        c.o0 = grp * og;
        c.o1 = c.o0 + og;
        c.stride = per_in * khw;
        c.off = (i % per_in) * khw;
        c.run = khw;
    } else {
        c.o0 = 0;
        c.o1 = w->shape[0];
        c.stride = w->shape[1];
        c.off = i * p->k;
        c.run = p->k;
    }
    return c;
}

static float masked(const qs_node_t *n, int64_t k)
{
    return n->mask && qs_f32(n->mask)[k] == 0.0f ? 0.0f : qs_f32(n->weight)[k];
}

static double r1_of(const qs_graph_t *g, const pair_t *p, int64_t i)
{
    const qs_node_t *n = &g->nodes[p->l1];
    int64_t per = n->weight->size / n->weight->shape[0];
    double r = 0.0;
    for (int64_t k = i * per; k < (i + 1) * per; k++)
        r = fmax(r, fabs((double)masked(n, k)));
    return r;
}

static double r2_of(const qs_graph_t *g, const pair_t *p, int64_t i)
{
    const qs_node_t *n = &g->nodes[p->l2];
    cols_t c = l2_cols(g, p, i);
    double r = 0.0;
    for (int64_t o = c.o0; o < c.o1; o++)
        for (int64_t k = o * c.stride + c.off; k < o * c.stride + c.off + c.run; k++)
            r = fmax(r, fabs((double)masked(n, k)));
    return r;
}

/* Follows L1's output to the next layer. Returns 1 with *p set for a pair,
 * 0 when a1 starts none (the reason added to rep under step, unless a1 is
 * the network output), < 0 on error. */
static int follow(const qs_graph_t *g, const int *readers, const int *reader, int a, const qs_dfq_opts_t *o,
                  unsigned step, pair_t *p, qs_dfq_report_t *rep)
{
    const qs_node_t *l1 = &g->nodes[a];
    memset(p, 0, sizeof *p);
    p->l1 = a;
    p->act = -1;
    p->c = l1->weight->shape[0];
    if (a == g->output)
        return 0;
    int cur = a;
    for (;;) {
        const qs_node_t *cn = &g->nodes[cur];
        if (cur == g->output)
            return add_skip(rep, step, l1->name, "its output reaches the network output '%s' with no layer after it",
                            cn->name);
        if (readers[cur] == 0)
            return add_skip(rep, step, l1->name, "the output of '%s' is not read by any node", cn->name);
        if (readers[cur] > 1)
            return add_skip(rep, step, l1->name, "the output of '%s' is read by %d nodes (a branch: the pair would "
                            "need every reader scaled alike)", cn->name, readers[cur]);
        int r = reader[cur];
        const qs_node_t *rn = &g->nodes[r];
        switch (rn->op) {
        case QS_OP_CONV2D:
        case QS_OP_LINEAR:
            if (!rn->weight)
                return add_skip(rep, step, l1->name, "'%s' (%s) has no weight", rn->name, qs_op_name(rn->op));
            p->l2 = r;
            break;
        case QS_OP_RELU:
        case QS_OP_RELU6:
            if (p->act >= 0)
                return add_skip(rep, step, l1->name, "two activations ('%s', '%s') between it and the next layer",
                                g->nodes[p->act].name, rn->name);
            if (rn->op == QS_OP_RELU6 && o->relu6 == QS_DFQ_RELU6_SKIP)
                return add_skip(rep, step, l1->name, "'%s' (relu6) between: %s (relu6=skip)", rn->name,
                                step == QS_DFQ_ABSORB ? "relu6(z - c) = relu6(z) - c fails above 6"
                                                      : "its clip at 6 does not commute with channel scaling");
            p->act = r;
            cur = r;
            continue;
        case QS_OP_MAXPOOL:
        case QS_OP_AVGPOOL:
        case QS_OP_GAP:
        case QS_OP_FLATTEN:
            cur = r;
            continue;
        case QS_OP_ADD:
        case QS_OP_CONCAT:
            return add_skip(rep, step, l1->name, "its output goes into '%s' (%s): a residual or concatenation "
                            "between it and the next layer", rn->name, qs_op_name(rn->op));
        default:
            return add_skip(rep, step, l1->name, "'%s' (%s) between: only relu, relu6, maxpool, avgpool, gap and "
                            "flatten commute with channel scaling", rn->name, qs_op_name(rn->op));
        }
        break;
    }
    const qs_node_t *l2 = &g->nodes[p->l2];
    const qs_node_t *in = &g->nodes[l2->inputs[0]];
    if (l2->op == QS_OP_CONV2D) {
        if (l2->weight->shape[1] * l2->groups != p->c)
            return add_skip(rep, step, l1->name, "'%s' takes %lld channels but it produces %lld", l2->name,
                            (long long)(l2->weight->shape[1] * l2->groups), (long long)p->c);
        p->padded = l2->pad_top || l2->pad_left || l2->pad_bottom || l2->pad_right;
    } else {
        int64_t f = l2->weight->shape[1];
        int64_t feats = in->out_shape[0] * (in->out_ndim == 3 ? in->out_shape[1] * in->out_shape[2] : 1);
        if (f != feats || f % p->c != 0)
            return add_skip(rep, step, l1->name, "'%s' takes %lld features, not a multiple of its %lld channels",
                            l2->name, (long long)f, (long long)p->c);
        p->k = f / p->c;
    }
    return 1;
}

/* Every pair of n's graph, in node order; the layers that start none are
 * reported under step. *out (free it) gets the pairs. */
static int find_pairs(const qs_graph_t *g, const qs_dfq_opts_t *o, unsigned step, pair_t **out, int *npairs,
                      qs_dfq_report_t *rep)
{
    const int nn = g->nnodes;
    *out = NULL;
    *npairs = 0;
    int *readers = calloc((size_t)nn, sizeof *readers), *reader = malloc((size_t)nn * sizeof *reader);
    pair_t *pairs = calloc((size_t)nn, sizeof *pairs);
    int rc = QS_OK, np = 0;
    if (!readers || !reader || !pairs) {
        rc = qs_error(QS_ERR_NOMEM, "dfq: out of memory");
        goto done;
    }
    for (int j = 0; j < nn; j++)
        for (int k = 0; k < g->nodes[j].ninputs; k++) {
            readers[g->nodes[j].inputs[k]]++;
            reader[g->nodes[j].inputs[k]] = j;
        }
    for (int a = 1; a < nn; a++) {
        if (!is_layer(&g->nodes[a]))
            continue;
        int m = follow(g, readers, reader, a, o, step, &pairs[np], rep);
        if (m < 0) {
            rc = m;
            goto done;
        }
        np += m;
    }
done:
    free(readers);
    free(reader);
    if (rc < 0) {
        free(pairs);
        return rc;
    }
    *out = pairs;
    *npairs = np;
    return QS_OK;
}

static void fill_pair_report(const qs_graph_t *g, const pair_t *p, qs_dfq_pair_t *r)
{
    if (!r)
        return;
    r->channels = p->c;
    r->padded = p->padded;
    if (p->act >= 0 && !r->act[0]) {
        snprintf(r->act, sizeof r->act, "%s", g->nodes[p->act].name);
        r->act_op = g->nodes[p->act].op;
    }
}

/* Turns a ReLU6 between a pair into a ReLU (relu6=replace). */
static void replace_relu6(qs_graph_t *g, const pair_t *p, qs_dfq_pair_t *r, qs_dfq_report_t *rep)
{
    if (p->act < 0 || g->nodes[p->act].op != QS_OP_RELU6)
        return;
    g->nodes[p->act].op = QS_OP_RELU;
    if (r)
        r->relu6_replaced = true;
    if (rep)
        rep->relu6_replaced++;
}

/* ---- cross-layer equalization ---------------------------------------------------------------------- */

/* Scales channel i of the pair: W1[i] /= s, b1[i] /= s, the statistics of
 * L1's pre-activation /= s, W2[:, i] *= s. With ReLU between, relu(z / s) =
 * relu(z) / s for s > 0, so L2 sees s·(x / s) = x. */
static void scale_channel(qs_dfq_net_t *n, const pair_t *p, int64_t i, double s)
{
    qs_node_t *l1 = &n->g->nodes[p->l1], *l2 = &n->g->nodes[p->l2];
    int64_t per = l1->weight->size / l1->weight->shape[0];
    float *w1 = qs_f32(l1->weight), *w2 = qs_f32(l2->weight);
    for (int64_t k = i * per; k < (i + 1) * per; k++)
        w1[k] = (float)(w1[k] / s);
    if (l1->bias)
        qs_f32(l1->bias)[i] = (float)(qs_f32(l1->bias)[i] / s);
    if (n->mean[p->l1]) {
        n->mean[p->l1][i] = (float)(n->mean[p->l1][i] / s);
        n->std[p->l1][i] = (float)(n->std[p->l1][i] / s);
    }
    cols_t c = l2_cols(n->g, p, i);
    for (int64_t o = c.o0; o < c.o1; o++)
        for (int64_t k = o * c.stride + c.off; k < o * c.stride + c.off + c.run; k++)
            w2[k] = (float)(w2[k] * s);
}

int qs_dfq_equalize(qs_dfq_net_t *n, const qs_dfq_opts_t *o, qs_dfq_report_t *rep)
{
    qs_dfq_opts_t def;
    if (!o) {
        qs_dfq_opts_default(&def);
        o = &def;
    }
    if (!n || !n->g)
        return qs_error(QS_ERR_INVALID, "qs_dfq_equalize: no network");
    int rc = check_opts(o);
    if (rc < 0)
        return rc;
    qs_graph_t *g = n->g;
    pair_t *pairs = NULL;
    int np = 0;
    qs_dfq_report_t local;
    memset(&local, 0, sizeof local);
    qs_dfq_report_t *r = rep ? rep : &local; /* the reasons go into the message even without a report */
    if ((rc = find_pairs(g, o, QS_DFQ_CLE, &pairs, &np, r)) < 0)
        goto done;
    if (np == 0) {
        char list[768];
        rc = qs_error(QS_ERR_INVALID, "equalization: graph '%s' has no pair of layers to equalize (%s)", g->name,
                      skip_list(r, QS_DFQ_CLE, list, sizeof list));
        goto done;
    }
    double **total = calloc((size_t)np, sizeof *total);
    if (!total) {
        rc = qs_error(QS_ERR_NOMEM, "equalization: out of memory");
        goto done;
    }
    for (int k = 0; k < np && rc >= 0; k++) {
        if (!(total[k] = malloc((size_t)pairs[k].c * sizeof **total)))
            rc = qs_error(QS_ERR_NOMEM, "equalization: out of memory");
        for (int64_t i = 0; total[k] && i < pairs[k].c; i++)
            total[k][i] = 1.0;
        if (rep) {
            qs_dfq_pair_t *pr = report_pair(rep, g->nodes[pairs[k].l1].name, g->nodes[pairs[k].l2].name);
            if (!pr)
                rc = qs_last_status();
            fill_pair_report(g, &pairs[k], pr);
            if (o->relu6 == QS_DFQ_RELU6_REPLACE)
                replace_relu6(g, &pairs[k], pr, rep);
        } else if (o->relu6 == QS_DFQ_RELU6_REPLACE) {
            replace_relu6(g, &pairs[k], NULL, NULL);
        }
    }
    /* Pairwise equalization swept over all pairs until the scales stop
     * changing (the paper's iteration): a layer shared by two pairs, such
     * as the depthwise conv of pw -> dw -> pw, settles at the range that
     * balances both. s_i = sqrt(r1_i / r2_i) = (1/r2_i) sqrt(r1_i r2_i)
     * leaves both channels with range sqrt(r1_i r2_i). */
    int sweeps = 0;
    bool converged = false;
    double change = 0.0;
    for (int sweep = 0; sweep < o->max_sweeps && rc >= 0; sweep++) {
        change = 0.0;
        bool changed = false;
        for (int k = 0; k < np; k++) {
            const pair_t *p = &pairs[k];
            double pmax = 0.0;
            for (int64_t i = 0; i < p->c; i++) {
                double r1 = r1_of(g, p, i), r2 = r2_of(g, p, i);
                if (r1 > 0.0 && r2 > 0.0)
                    pmax = fmax(pmax, fabs(sqrt(r1 / r2) - 1.0));
            }
            change = fmax(change, pmax);
            if (pmax < o->tol)
                continue;
            for (int64_t i = 0; i < p->c; i++) {
                double r1 = r1_of(g, p, i), r2 = r2_of(g, p, i);
                if (!(r1 > 0.0 && r2 > 0.0))
                    continue; /* a dead channel on either side: nothing to balance */
                double s = sqrt(r1 / r2);
                scale_channel(n, p, i, s);
                total[k][i] *= s;
            }
            changed = true;
        }
        if (!changed) {
            converged = true;
            break;
        }
        sweeps++;
    }
    if (rc >= 0 && rep) {
        rep->sweeps += sweeps;
        rep->converged = converged;
        rep->last_change = change;
        for (int k = 0; k < np; k++) {
            qs_dfq_pair_t *pr = report_pair(rep, g->nodes[pairs[k].l1].name, g->nodes[pairs[k].l2].name);
            if (!pr) {
                rc = qs_last_status();
                break;
            }
            pr->s_min = INFINITY;
            pr->s_max = 0.0;
            for (int64_t i = 0; i < pairs[k].c; i++) {
                pr->s_min = fmin(pr->s_min, total[k][i]);
                pr->s_max = fmax(pr->s_max, total[k][i]);
            }
        }
    }
    for (int k = 0; k < np; k++)
        free(total[k]);
    free(total);
done:
    free(pairs);
    qs_dfq_report_free(&local);
    return rc;
}

/* ---- high-bias absorption --------------------------------------------------------------------------- */

/* With pre-activation z_i ≥ c_i, relu(z_i − c_i) = relu(z_i) − c_i, and
 * max/average pooling and flatten pass a per-channel constant through
 * (average pooling divides by the window's area inside the input, so the
 * mean of a constant is the constant; padding never wins a max). So L1's
 * bias loses c_i and L2 gets W2[:, i]·c_i summed over the elements channel
 * i meets — exact wherever each of L2's windows lies inside its input:
 * zero padding feeds 0 where the untransformed network had relu(z) − c_i
 * + c_i, so border outputs of a padded L2 are off by the padded taps'
 * weights times c_i. */
int qs_dfq_absorb(qs_dfq_net_t *n, const qs_dfq_opts_t *o, qs_dfq_report_t *rep)
{
    qs_dfq_opts_t def;
    if (!o) {
        qs_dfq_opts_default(&def);
        o = &def;
    }
    if (!n || !n->g)
        return qs_error(QS_ERR_INVALID, "qs_dfq_absorb: no network");
    int rc = check_opts(o);
    if (rc < 0)
        return rc;
    qs_graph_t *g = n->g;
    pair_t *pairs = NULL;
    int np = 0, usable = 0;
    qs_dfq_report_t local;
    memset(&local, 0, sizeof local);
    qs_dfq_report_t *r = rep ? rep : &local;
    double *cs = NULL;
    if ((rc = find_pairs(g, o, QS_DFQ_ABSORB, &pairs, &np, r)) < 0)
        goto done;
    for (int k = 0; k < np; k++) {
        const pair_t *p = &pairs[k];
        const qs_node_t *l1 = &g->nodes[p->l1], *l2 = &g->nodes[p->l2];
        if (p->act < 0) {
            if ((rc = add_skip(r, QS_DFQ_ABSORB, l1->name, "no ReLU between it and '%s': nothing clips, so "
                               "nothing to absorb", l2->name)) < 0)
                goto done;
            continue;
        }
        if (!n->mean[p->l1]) {
            if ((rc = add_skip(r, QS_DFQ_ABSORB, l1->name, "no batchnorm statistics (it had no batchnorm, or its "
                               "batchnorm could not be folded)")) < 0)
                goto done;
            continue;
        }
        if (p->padded && !o->absorb_padded) {
            if ((rc = add_skip(r, QS_DFQ_ABSORB, l1->name, "'%s' pads its input, where absorption is not exact "
                               "(absorb_padded off)", l2->name)) < 0)
                goto done;
            continue;
        }
        usable++;
        free(cs);
        if (!(cs = malloc((size_t)p->c * sizeof *cs))) {
            rc = qs_error(QS_ERR_NOMEM, "absorption: out of memory");
            goto done;
        }
        int64_t absorbed = 0;
        const float *mu = n->mean[p->l1], *sd = n->std[p->l1];
        for (int64_t i = 0; i < p->c; i++) {
            double c = (double)mu[i] - o->absorb_sigmas * (double)sd[i];
            cs[i] = c > 0.0 ? (double)(float)c : 0.0;
            absorbed += cs[i] > 0.0;
        }
        qs_dfq_pair_t *pr = NULL;
        if (rep && absorbed > 0) {
            if (!(pr = report_pair(rep, l1->name, l2->name))) {
                rc = qs_last_status();
                goto done;
            }
            fill_pair_report(g, p, pr);
        }
        if (absorbed == 0)
            continue;
        /* the ReLU the assumption is about; a ReLU6 becomes one (relu6=replace) */
        replace_relu6(g, p, pr, rep);
        qs_node_t *w1n = &g->nodes[p->l1], *w2n = &g->nodes[p->l2];
        int64_t o2 = w2n->weight->shape[0];
        if (!w1n->bias && !(w1n->bias = qs_tensor_create(QS_F32, 1, &p->c))) {
            rc = qs_error_context("absorption, node '%s': ", w1n->name);
            goto done;
        }
        if (!w2n->bias && !(w2n->bias = qs_tensor_create(QS_F32, 1, &o2))) {
            rc = qs_error_context("absorption, node '%s': ", w2n->name);
            goto done;
        }
        double *add2 = calloc((size_t)o2, sizeof *add2);
        if (!add2) {
            rc = qs_error(QS_ERR_NOMEM, "absorption: out of memory");
            goto done;
        }
        for (int64_t i = 0; i < p->c; i++) {
            if (cs[i] == 0.0)
                continue;
            cols_t cc = l2_cols(g, p, i);
            for (int64_t oo = cc.o0; oo < cc.o1; oo++) {
                double sum = 0.0;
                for (int64_t e = oo * cc.stride + cc.off; e < oo * cc.stride + cc.off + cc.run; e++)
                    sum += (double)masked(w2n, e);
                add2[oo] += sum * cs[i];
            }
            qs_f32(w1n->bias)[i] = (float)((double)qs_f32(w1n->bias)[i] - cs[i]);
            n->mean[p->l1][i] = (float)((double)n->mean[p->l1][i] - cs[i]);
        }
        for (int64_t oo = 0; oo < o2; oo++)
            qs_f32(w2n->bias)[oo] = (float)((double)qs_f32(w2n->bias)[oo] + add2[oo]);
        free(add2);
        if (pr)
            pr->absorbed += absorbed;
        if (rep) {
            rep->absorb_pairs++;
            rep->absorbed += absorbed;
        }
    }
    if (usable == 0) {
        char list[768];
        rc = qs_error(QS_ERR_INVALID, "absorption: graph '%s' has no pair of layers with a ReLU between and "
                      "batchnorm statistics before it (%s)", g->name, skip_list(r, QS_DFQ_ABSORB, list, sizeof list));
    }
done:
    free(cs);
    free(pairs);
    qs_dfq_report_free(&local);
    return rc;
}

/* ---- bias correction ------------------------------------------------------------------------------- */

double qs_dfq_clipped_normal_mean(double mu, double sigma, double lo, double hi)
{
    if (!(sigma > 0.0))
        return mu < lo ? lo : mu > hi ? hi : mu;
    /* with α = (lo − μ)/σ and ω = (hi − μ)/σ:
     * E = σ(φ(α) − φ(ω)) + μ(Φ(ω) − Φ(α)) + lo·Φ(α) + hi·(1 − Φ(ω)),
     * Φ from erfc (accurate in both tails), the infinite ends' terms 0 */
    const double rs2 = 0.70710678118654752440, rs2pi = 0.39894228040143267794;
    double pa = 0.0, Pa = 0.0, pw = 0.0, Pw = 1.0, tail_w = 0.0;
    if (isfinite(lo)) {
        double a = (lo - mu) / sigma;
        pa = rs2pi * exp(-0.5 * a * a);
        Pa = 0.5 * erfc(-a * rs2);
    }
    if (isfinite(hi)) {
        double w = (hi - mu) / sigma;
        pw = rs2pi * exp(-0.5 * w * w);
        Pw = 0.5 * erfc(-w * rs2);
        tail_w = 0.5 * erfc(w * rs2); /* 1 − Φ(ω) without cancellation */
    }
    double e = sigma * (pa - pw) + mu * (Pw - Pa);
    if (isfinite(lo))
        e += lo * Pa;
    if (isfinite(hi))
        e += hi * tail_w;
    return e;
}

/* E[x] of one layer: per tap of its weight's rows (conv: I_total·kh·kw in
 * (channel, kh, kw) order, the channel counted over all groups; linear: F). */
typedef struct {
    int layer;
    int src;            /* the node whose output the layer reads */
    int64_t taps;
    double *ex;         /* [taps] */
    /* empirical */
    double *acc;        /* [batch][taps]: per-sample means, reduced in sample order */
    bool ok;
} expect_t;

/* Output positions of a conv at which tap (kh, kw) reads inside the input:
 * counts along one axis. */
static int64_t valid_along(int64_t in, int64_t out, int stride, int pad, int k, int dil)
{
    int64_t c = 0;
    for (int64_t p = 0; p < out; p++) {
        int64_t x = p * stride - pad + (int64_t)k * dil;
        c += x >= 0 && x < in;
    }
    return c;
}

/* The analytic E[x] of layer L: back through mean-preserving nodes (average
 * pools, gap, flatten) to one activation (relu, relu6, clip, or none) and a
 * layer with statistics. Padding is counted: tap (kh, kw) reads the input
 * at the fraction of output positions where its window lies inside. Returns
 * 1 with e->ex filled, 0 with a reason when L's input has no statistics. */
static int analytic_expect(const qs_dfq_net_t *n, expect_t *e, char *why, size_t nwhy)
{
    const qs_graph_t *g = n->g;
    const qs_node_t *L = &g->nodes[e->layer];
    int p = L->inputs[0];
    while (g->nodes[p].op == QS_OP_AVGPOOL || g->nodes[p].op == QS_OP_GAP || g->nodes[p].op == QS_OP_FLATTEN)
        p = g->nodes[p].inputs[0];
    double lo = -INFINITY, hi = INFINITY;
    const qs_node_t *pn = &g->nodes[p];
    if (pn->op == QS_OP_RELU || pn->op == QS_OP_RELU6 || pn->op == QS_OP_CLIP) {
        lo = pn->op == QS_OP_CLIP ? pn->clip_min : 0.0;
        hi = pn->op == QS_OP_RELU ? INFINITY : pn->op == QS_OP_RELU6 ? 6.0 : pn->clip_max;
        p = pn->inputs[0];
        pn = &g->nodes[p];
    }
    if (p == 0) {
        snprintf(why, nwhy, "its input is the network input, which has no batchnorm statistics (use empirical)");
        return 0;
    }
    if (!is_layer(pn) || !n->mean[p]) {
        snprintf(why, nwhy, "its input comes from '%s' (%s) without batchnorm statistics before it (use empirical)",
                 pn->name, qs_op_name(pn->op));
        return 0;
    }
    int64_t c = pn->weight->shape[0];
    int64_t khw = L->op == QS_OP_CONV2D ? (int64_t)L->kh * L->kw : 1;
    if (L->op == QS_OP_CONV2D ? e->taps != c * khw : e->taps % c != 0) {
        snprintf(why, nwhy, "its %lld inputs do not split into the %lld channels of '%s'", (long long)(e->taps / khw),
                 (long long)c, pn->name);
        return 0;
    }
    double *chan = malloc((size_t)c * sizeof *chan);
    if (!chan)
        return qs_error(QS_ERR_NOMEM, "bias correction: out of memory");
    for (int64_t i = 0; i < c; i++)
        chan[i] = qs_dfq_clipped_normal_mean(n->mean[p][i], n->std[p][i], lo, hi);
    if (L->op == QS_OP_LINEAR) {
        int64_t k = e->taps / c;
        for (int64_t f = 0; f < e->taps; f++)
            e->ex[f] = chan[f / k];
    } else {
        const qs_node_t *in = &g->nodes[L->inputs[0]];
        int64_t ih = in->out_shape[1], iw = in->out_shape[2], oh = L->out_shape[1], ow = L->out_shape[2];
        for (int64_t ci = 0; ci < c; ci++)
            for (int a = 0; a < L->kh; a++)
                for (int b = 0; b < L->kw; b++) {
                    double frac = (double)(valid_along(ih, oh, L->stride_h, L->pad_top, a, L->dil_h) *
                                           valid_along(iw, ow, L->stride_w, L->pad_left, b, L->dil_w)) /
                                  (double)(oh * ow);
                    e->ex[ci * khw + a * L->kw + b] = chan[ci] * frac;
                }
    }
    free(chan);
    return 1;
}

/* Empirical means: a hook on every node some layer reads; per sample, per
 * tap, the mean over output positions of what the tap multiplies (0 where
 * it falls in the padding). */
typedef struct {
    const qs_graph_t *g;
    expect_t *e;
    int ne;
} emp_t;

static void tap_means(const qs_node_t *L, const qs_node_t *in, const float *x, double *out)
{
    if (L->op == QS_OP_LINEAR) {
        int64_t f = L->weight->shape[1];
        for (int64_t k = 0; k < f; k++)
            out[k] = x[k];
        return;
    }
    int64_t c = in->out_shape[0], ih = in->out_shape[1], iw = in->out_shape[2];
    int64_t oh = L->out_shape[1], ow = L->out_shape[2];
    double inv = 1.0 / (double)(oh * ow);
    for (int64_t ci = 0; ci < c; ci++) {
        const float *xc = x + ci * ih * iw;
        for (int a = 0; a < L->kh; a++)
            for (int b = 0; b < L->kw; b++) {
                double s = 0.0;
                for (int64_t y = 0; y < oh; y++) {
                    int64_t iy = y * L->stride_h - L->pad_top + (int64_t)a * L->dil_h;
                    if (iy < 0 || iy >= ih)
                        continue;
                    for (int64_t xx = 0; xx < ow; xx++) {
                        int64_t ix = xx * L->stride_w - L->pad_left + (int64_t)b * L->dil_w;
                        if (ix >= 0 && ix < iw)
                            s += (double)xc[iy * iw + ix];
                    }
                }
                out[(ci * L->kh + a) * L->kw + b] = s * inv;
            }
    }
}

static int emp_hook(void *ctx, int node, qs_tensor_t *y, int64_t sample0, int thread)
{
    (void)thread;
    emp_t *m = ctx;
    const int64_t count = y->shape[0], per = y->size / (count > 0 ? count : 1);
    for (int k = 0; k < m->ne; k++) {
        expect_t *e = &m->e[k];
        if (e->src != node)
            continue;
        const qs_node_t *L = &m->g->nodes[e->layer], *in = &m->g->nodes[node];
        for (int64_t s = 0; s < count; s++)
            tap_means(L, in, qs_f32(y) + s * per, e->acc + (sample0 + s) * e->taps);
    }
    return QS_OK;
}

static int empirical_expect(const qs_dfq_net_t *n, const qs_dfq_opts_t *o, const qs_dataset_t *d, expect_t *e,
                            int ne, int64_t *images_out)
{
    const qs_graph_t *g = n->g;
    if (d->c != g->in_c || d->h != g->in_h || d->w != g->in_w)
        return qs_error(QS_ERR_SHAPE, "bias correction: dataset '%s' has %lldx%lldx%lld images but model '%s' takes "
                        "%lldx%lldx%lld", d->source, (long long)d->c, (long long)d->h, (long long)d->w, g->name,
                        (long long)g->in_c, (long long)g->in_h, (long long)g->in_w);
    const int64_t images = o->images < d->n ? o->images : d->n;
    if (images < 1)
        return qs_error(QS_ERR_INVALID, "bias correction: dataset '%s' has no images", d->source);
    const int64_t batch = o->batch < images ? o->batch : images;
    qs_dataset_t *sub = NULL;
    qs_engine_t *eng = NULL;
    qs_tensor_t *x = NULL;
    bool *hooked = calloc((size_t)g->nnodes, sizeof *hooked);
    int rc = hooked ? QS_OK : qs_error(QS_ERR_NOMEM, "bias correction: out of memory");
    for (int k = 0; k < ne && rc >= 0; k++) {
        hooked[e[k].src] = true;
        if (!(e[k].acc = malloc((size_t)(batch * e[k].taps) * sizeof *e[k].acc)))
            rc = qs_error(QS_ERR_NOMEM, "bias correction: out of memory for the inputs of '%s'",
                          g->nodes[e[k].layer].name);
        else
            memset(e[k].ex, 0, (size_t)e[k].taps * sizeof *e[k].ex);
    }
    if (rc >= 0)
        rc = qs_dataset_subset(d, images, o->seed, &sub);
    qs_engine_opts_t eo = {o->pool, false};
    if (rc >= 0)
        rc = qs_engine_create(g, &eo, &eng);
    emp_t m = {g, e, ne};
    if (rc >= 0)
        rc = qs_engine_set_hook_at(eng, emp_hook, &m, hooked);
    int64_t shape[4] = {batch, g->in_c, g->in_h, g->in_w};
    if (rc >= 0 && !(x = qs_tensor_create(QS_F32, 4, shape)))
        rc = qs_error_context("bias correction: ");
    for (int64_t first = 0; rc >= 0 && first < images; first += batch) {
        int64_t count = images - first < batch ? images - first : batch;
        qs_tensor_t view = *x;
        view.shape[0] = count;
        view.size = count * g->in_c * g->in_h * g->in_w;
        const qs_tensor_t *yo;
        if ((rc = qs_dataset_batch(sub, g, first, NULL, count, &view, NULL)) < 0 ||
            (rc = qs_engine_forward(eng, &view, &yo)) < 0)
            break;
        /* in sample order, so that the sums do not depend on the threads */
        for (int k = 0; k < ne; k++)
            for (int64_t s = 0; s < count; s++)
                for (int64_t t = 0; t < e[k].taps; t++)
                    e[k].ex[t] += e[k].acc[s * e[k].taps + t];
    }
    for (int k = 0; k < ne && rc >= 0; k++)
        for (int64_t t = 0; t < e[k].taps; t++)
            e[k].ex[t] /= (double)images;
    for (int k = 0; k < ne; k++) {
        free(e[k].acc);
        e[k].acc = NULL;
    }
    *images_out = images;
    qs_tensor_free(x);
    qs_engine_free(eng);
    qs_dataset_free(sub);
    free(hooked);
    return rc;
}

int qs_dfq_bias_correct(qs_dfq_net_t *n, const qs_qconfig_t *cfg, const qs_dfq_opts_t *o, const qs_dataset_t *calib,
                        qs_dfq_report_t *rep)
{
    qs_dfq_opts_t def;
    if (!o) {
        qs_dfq_opts_default(&def);
        o = &def;
    }
    if (!n || !n->g)
        return qs_error(QS_ERR_INVALID, "qs_dfq_bias_correct: no network");
    int rc = check_opts(o);
    if (rc < 0)
        return rc;
    if (o->bc == QS_DFQ_BC_EMPIRICAL && !calib)
        return qs_error(QS_ERR_INVALID, "bias correction: the empirical mode needs calibration images (a training "
                        "split); the analytic mode needs none");
    qs_qconfig_t w8a8;
    if (!cfg)
        cfg = o->qcfg;
    if (!cfg) {
        qs_qconfig_default(&w8a8);
        cfg = &w8a8;
    }
    qs_graph_t *g = n->g;
    qs_qnet_t *q = NULL;
    qs_graph_t *fg = NULL;
    expect_t *e = calloc((size_t)g->nnodes, sizeof *e);
    qs_dfq_report_t local;
    memset(&local, 0, sizeof local);
    qs_dfq_report_t *r = rep ? rep : &local;
    int ne = 0;
    if (!e) {
        rc = qs_error(QS_ERR_NOMEM, "bias correction: out of memory");
        goto done;
    }
    /* W_q exactly as a quantized run of this graph gets it */
    if ((rc = qs_qnet_create(g, cfg, &q)) < 0 || (rc = qs_sim_fake_graph(q, NULL, false, &fg)) < 0) {
        rc = qs_error_context("bias correction: ");
        goto done;
    }
    for (int i = 1; i < g->nnodes; i++) {
        const qs_node_t *L = &g->nodes[i];
        if (!is_layer(L))
            continue;
        int qi = qs_graph_find(q->g, L->name);
        if (qi < 0 || !q->layer[qi].wq) {
            if ((rc = add_skip(r, QS_DFQ_BC, L->name, "its weights are not quantized")) < 0)
                goto done;
            continue;
        }
        expect_t *x = &e[ne];
        x->layer = i;
        x->src = L->inputs[0];
        x->taps = L->op == QS_OP_LINEAR ? L->weight->shape[1]
                                        : L->weight->shape[1] * L->groups * L->weight->shape[2] * L->weight->shape[3];
        if (!(x->ex = calloc((size_t)x->taps, sizeof *x->ex))) {
            rc = qs_error(QS_ERR_NOMEM, "bias correction: out of memory");
            goto done;
        }
        ne++;
        if (o->bc == QS_DFQ_BC_ANALYTIC) {
            char why[160];
            int m = analytic_expect(n, x, why, sizeof why);
            if (m < 0) {
                rc = m;
                goto done;
            }
            if (m == 0 && (rc = add_skip(r, QS_DFQ_BC, L->name, "%s", why)) < 0)
                goto done;
            x->ok = m == 1;
        } else {
            x->ok = true;
        }
    }
    if (o->bc == QS_DFQ_BC_EMPIRICAL && ne > 0) {
        int64_t images = 0;
        if ((rc = empirical_expect(n, o, calib, e, ne, &images)) < 0)
            goto done;
        if (rep)
            rep->bc_images = images;
    }
    int corrected = 0;
    for (int k = 0; k < ne; k++) {
        if (!e[k].ok)
            continue;
        qs_node_t *L = &g->nodes[e[k].layer];
        int qi = qs_graph_find(q->g, L->name);
        const qs_node_t *Lq = &fg->nodes[qi];
        const int64_t out = L->weight->shape[0], per = L->weight->size / out;
        const int64_t og = L->op == QS_OP_CONV2D ? out / L->groups : out;
        if (!L->bias && !(L->bias = qs_tensor_create(QS_F32, 1, &out))) {
            rc = qs_error_context("bias correction, node '%s': ", L->name);
            goto done;
        }
        double maxabs = 0.0, sumabs = 0.0;
        for (int64_t oo = 0; oo < out; oo++) {
            /* output oo of group grp reads taps [grp·per, (grp+1)·per) */
            const double *ex = e[k].ex + (oo / og) * per;
            double corr = 0.0;
            for (int64_t t = 0; t < per; t++) {
                int64_t at = oo * per + t;
                double dw = (double)masked(Lq, at) - (double)masked(L, at);
                corr += dw * ex[t];
            }
            qs_f32(L->bias)[oo] = (float)((double)qs_f32(L->bias)[oo] - corr);
            maxabs = fmax(maxabs, fabs(corr));
            sumabs += fabs(corr);
        }
        corrected++;
        if (rep) {
            if (!grow((void **)&rep->corrected, rep->ncorrected, sizeof *rep->corrected)) {
                rc = qs_error(QS_ERR_NOMEM, "dfq: out of memory for the report");
                goto done;
            }
            qs_dfq_corr_t *c = &rep->corrected[rep->ncorrected++];
            memset(c, 0, sizeof *c);
            snprintf(c->node, sizeof c->node, "%s", L->name);
            c->source = o->bc;
            c->max_abs = maxabs;
            c->mean_abs = sumabs / (double)out;
        }
    }
    if (corrected == 0) {
        char list[768];
        rc = qs_error(QS_ERR_INVALID, "bias correction (%s): no layer of graph '%s' could be corrected (%s)",
                      o->bc == QS_DFQ_BC_ANALYTIC ? "analytic" : "empirical", g->name,
                      skip_list(r, QS_DFQ_BC, list, sizeof list));
    }
done:
    for (int k = 0; e && k < ne; k++) {
        free(e[k].ex);
        free(e[k].acc);
    }
    free(e);
    qs_graph_free(fg);
    qs_qnet_free(q);
    qs_dfq_report_free(&local);
    return rc;
}

/* ---- all steps --------------------------------------------------------------------------------------- */

int qs_dfq_apply(const qs_graph_t *g, const qs_dfq_opts_t *o, const qs_dataset_t *calib, qs_graph_t **out,
                 qs_dfq_report_t *rep)
{
    if (!out)
        return qs_error(QS_ERR_INVALID, "qs_dfq_apply: no place for the result");
    *out = NULL;
    qs_dfq_opts_t def;
    if (!o) {
        qs_dfq_opts_default(&def);
        o = &def;
    }
    int rc = check_opts(o);
    if (rc < 0)
        return rc;
    if ((o->steps & QS_DFQ_BC) && o->bc == QS_DFQ_BC_EMPIRICAL && !calib)
        return qs_error(QS_ERR_INVALID, "bias correction: the empirical mode needs calibration images (a training "
                        "split); the analytic mode needs none");
    qs_dfq_net_t *n = NULL;
    if ((rc = qs_dfq_net_create(g, &n)) < 0)
        return rc;
    if (rep)
        rep->folded = n->folded;
    if ((o->steps & QS_DFQ_CLE) && (rc = qs_dfq_equalize(n, o, rep)) < 0)
        goto fail;
    if ((o->steps & QS_DFQ_ABSORB) && (rc = qs_dfq_absorb(n, o, rep)) < 0)
        goto fail;
    if ((o->steps & QS_DFQ_BC) && (rc = qs_dfq_bias_correct(n, NULL, o, calib, rep)) < 0)
        goto fail;
    if ((rc = qs_graph_infer(n->g)) < 0)
        goto fail;
    *out = n->g;
    n->g = NULL;
    for (int i = 0; i < (*out)->nnodes; i++) {
        free(n->mean[i]);
        free(n->std[i]);
    }
    free(n->mean);
    free(n->std);
    free(n);
    return QS_OK;
fail:
    qs_dfq_net_free(n);
    return rc;
}
