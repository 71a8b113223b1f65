/* sim/prune.c — pruning: a copy of a graph with weights removed
 * (docs/compression.md).
 *
 *  - magnitude: per layer, the round(ratio·n) weights of smallest magnitude
 *    of every conv2d/linear get mask 0 (weights already masked count among
 *    them); global: one threshold over all layers' weights together;
 *  - nm:N:M: in every run of M consecutive weights along the reduction
 *    dimension (a row of K = I·kh·kw of an output channel) the N largest
 *    magnitudes are kept (a row's shorter last run keeps min(N, its length));
 *  - channel-l1, channel-l2: the output channels of a layer with the smallest
 *    L1/L2 norms are removed from the graph, with what depends on them: the
 *    batchnorm entries, the channels of depthwise convolutions downstream
 *    (and their own batchnorms), and the input channels (or features) of
 *    every conv2d/linear that reads them. A layer whose channels reach an
 *    add, a concat, a grouped convolution, a reshape or the network output
 *    is left whole (its channels are tied to another layer's).
 * Ordering is exact: magnitudes sort ascending with ties broken by position
 * (the earlier weight or channel goes first), so results do not depend on
 * the platform's sort. */
#include "sim/sim_internal.h"

#include <gsl/gsl_errno.h>
#include <pthread.h>
#include <gsl/gsl_linalg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const method_names[] = {"none", "magnitude", "global", "nm", "channel-l1", "channel-l2",
                                           "channel-act"};

const char *qs_prune_method_name(qs_prune_method_t m)
{
    return (int)m >= 0 && m < QS_PRUNE_COUNT ? method_names[m] : "?";
}

void qs_prune_opts_default(qs_prune_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->method = QS_PRUNE_NONE;
    o->n = 2;
    o->m = 4;
    o->seed = 1;
}

int qs_prune_parse(const char *spec, const char *what, qs_prune_opts_t *o)
{
    qs_prune_opts_t t = *o;
    if (!spec || !*spec)
        return qs_error(QS_ERR_INVALID, "%s: no pruning method given", what);
    int n, m;
    char tail;
    if (strncmp(spec, "nm", 2) == 0 && (spec[2] == '\0' || spec[2] == ':')) {
        t.method = QS_PRUNE_NM;
        if (spec[2] == ':') {
            if (sscanf(spec + 3, "%d:%d%c", &n, &m, &tail) != 2 || m < 2 || m > 16 || n < 1 || n >= m)
                return qs_error(QS_ERR_INVALID, "%s: '%s': expected nm:N:M with 1 <= N < M <= 16 (e.g. nm:2:4)", what,
                                spec);
            t.n = n;
            t.m = m;
        }
        *o = t;
        return QS_OK;
    }
    for (int i = 0; i < QS_PRUNE_COUNT; i++)
        if (i != QS_PRUNE_NM && strcmp(spec, method_names[i]) == 0) {
            t.method = (qs_prune_method_t)i;
            *o = t;
            return QS_OK;
        }
    return qs_error(QS_ERR_INVALID,
                    "%s: unknown pruning method '%s', expected one of: none, magnitude, global, nm:N:M, channel-l1, "
                    "channel-l2, channel-act",
                    what, spec);
}

static bool is_layer(const qs_node_t *n) { return (n->op == QS_OP_CONV2D || n->op == QS_OP_LINEAR) && n->weight; }

/* A weight's magnitude and position, sorted ascending (ties: the earlier first). */
typedef struct {
    float a;
    int32_t layer;
    int64_t k;
} mag_t;

static int cmp_mag(const void *x, const void *y)
{
    const mag_t *a = x, *b = y;
    if (a->a != b->a)
        return a->a < b->a ? -1 : 1;
    if (a->layer != b->layer)
        return a->layer < b->layer ? -1 : 1;
    return (a->k > b->k) - (a->k < b->k);
}

/* The node's mask, created all ones if it has none. */
static float *mask_of(qs_node_t *n)
{
    if (!n->mask) {
        if (!(n->mask = qs_tensor_create(QS_F32, n->weight->ndim, n->weight->shape)))
            return NULL;
        float *m = qs_f32(n->mask);
        for (int64_t k = 0; k < n->mask->size; k++)
            m[k] = 1.0f;
    }
    return qs_f32(n->mask);
}

/* Prunes the round(ratio·n) smallest of the n weights of layers[0..nl) together (one layer, or all for global). */
static int prune_smallest(qs_graph_t *g, const int *layers, int nl, double ratio)
{
    int64_t total = 0;
    for (int j = 0; j < nl; j++)
        total += g->nodes[layers[j]].weight->size;
    mag_t *v = malloc((size_t)(total > 0 ? total : 1) * sizeof *v);
    if (!v)
        return qs_error(QS_ERR_NOMEM, "prune: out of memory for %lld weights", (long long)total);
    int64_t t = 0;
    for (int j = 0; j < nl; j++) {
        qs_node_t *n = &g->nodes[layers[j]];
        const float *w = qs_f32(n->weight), *m = n->mask ? qs_f32(n->mask) : NULL;
        for (int64_t k = 0; k < n->weight->size; k++) {
            /* a weight already pruned counts as zero: it goes first */
            v[t].a = m && m[k] == 0.0f ? -1.0f : fabsf(w[k]);
            v[t].layer = layers[j];
            v[t].k = k;
            t++;
        }
    }
    qsort(v, (size_t)total, sizeof *v, cmp_mag);
    int64_t count = (int64_t)llround(ratio * (double)total);
    for (int64_t i = 0; i < count; i++) {
        float *m = mask_of(&g->nodes[v[i].layer]);
        if (!m) {
            free(v);
            return qs_last_status();
        }
        m[v[i].k] = 0.0f;
    }
    free(v);
    return QS_OK;
}

static int prune_nm(qs_graph_t *g, int i, int N, int M)
{
    qs_node_t *n = &g->nodes[i];
    const int64_t O = n->weight->shape[0], K = n->weight->size / O;
    float *m = mask_of(n);
    if (!m)
        return qs_last_status();
    const float *w = qs_f32(n->weight);
    mag_t run[16];
    for (int64_t o = 0; o < O; o++)
        for (int64_t k0 = 0; k0 < K; k0 += M) {
            int len = (int)(K - k0 < M ? K - k0 : M);
            for (int j = 0; j < len; j++) {
                int64_t k = o * K + k0 + j;
                run[j].a = m[k] == 0.0f ? -1.0f : fabsf(w[k]);
                run[j].layer = 0;
                run[j].k = -(k0 + j); /* ties: among equals the later goes first, so the earlier is kept */
            }
            qsort(run, (size_t)len, sizeof *run, cmp_mag);
            int keep = N < len ? N : len;
            for (int j = 0; j < len - keep; j++)
                m[o * K - run[j].k] = 0.0f;
        }
    return QS_OK;
}

/* ---- channel pruning ------------------------------------------------------------------------- */


/* What removing output channels of layer i touches: per-channel nodes (batchnorm, depthwise convs) and the
 * consumers whose input channels go; flatten: the consumer's features are c·hw + p. */
typedef struct {
    int perch[64];  /* batchnorms and depthwise convs whose channels follow */
    int nperch;
    int cons[16];   /* conv2d (groups 1) and linear readers */
    int64_t hw[16]; /* features per channel at each consumer (1 but after a flatten of a C×H×W map) */
    int ncons;
    int prod[16];   /* the layers whose output channels are tied together (at adds), the pruned layer first */
    int nprod;
} reach_t;

static int readers_of(const qs_graph_t *g, int j, int *r, int max)
{
    int c = 0;
    for (int k = j + 1; k < g->nnodes; k++)
        for (int t = 0; t < g->nodes[k].ninputs; t++)
            if (g->nodes[k].inputs[t] == j) {
                if (c < max)
                    r[c] = k;
                c++;
                break;
            }
    return c;
}

/* The channel group of layer `seed`: every tensor whose channels are the seed's channels, found by following
 * the seed's output down through per-channel nodes and depthwise convolutions to its readers, and across
 * adds (whose inputs are tied: each is followed up to the layer producing it, which joins the group).
 * False, with *why, when a channel-mixing node other than a conv2d/linear reader is met, or when the channels
 * reach the network input or output. */
typedef struct {
    const qs_graph_t *g;
    reach_t *R;
    bool *vis;
    int *queue;
    int64_t *hw;
    int nq;
    const char **why;
} closure_t;

static bool push(closure_t *c, int j, int64_t hw)
{
    if (c->vis[j])
        return true;
    c->vis[j] = true;
    c->hw[j] = hw;
    c->queue[c->nq++] = j;
    return true;
}

static bool add_perch(closure_t *c, int j)
{
    if (c->R->nperch == 64)
        return (*c->why = "too many nodes in its channel group", false);
    c->R->perch[c->R->nperch++] = j;
    return true;
}

/* Node k feeds an add with the group's channels: the group extends up to what produces them. */
static bool up(closure_t *c, int k, int64_t hw)
{
    for (;;) {
        if (c->vis[k])
            return true;
        const qs_node_t *n = &c->g->nodes[k];
        if ((n->op == QS_OP_CONV2D && n->groups == 1) || n->op == QS_OP_LINEAR) {
            if (c->R->nprod == 16)
                return (*c->why = "too many layers tied at adds", false);
            c->R->prod[c->R->nprod++] = k;
            return push(c, k, hw);
        }
        switch (n->op) {
        case QS_OP_BATCHNORM:
        case QS_OP_RELU:
        case QS_OP_RELU6:
        case QS_OP_CLIP:
        case QS_OP_MAXPOOL:
        case QS_OP_AVGPOOL:
            if (n->op == QS_OP_BATCHNORM && !add_perch(c, k))
                return false;
            push(c, k, hw);
            k = n->inputs[0];
            continue;
        case QS_OP_CONV2D: /* depthwise: its channels follow its input's */
            if (n->groups != n->weight->shape[0] || n->weight->shape[1] != 1)
                return (*c->why = "a grouped convolution produces channels tied to them", false);
            if (!add_perch(c, k))
                return false;
            push(c, k, hw);
            k = n->inputs[0];
            continue;
        case QS_OP_ADD:
            push(c, k, hw);
            for (int t = 0; t < n->ninputs; t++)
                if (!up(c, n->inputs[t], hw))
                    return false;
            return true;
        case QS_OP_INPUT: return (*c->why = "they are tied at an add to the network input", false);
        default: return (*c->why = "they are tied at an add to a concat or a reshape", false);
        }
    }
}

/* A conv2d (groups 1) or linear reading the group's channels (hw features each): its input channels go. */
static bool add_reader(closure_t *c, int r, int64_t hw)
{
    for (int k = 0; k < c->R->ncons; k++)
        if (c->R->cons[k] == r)
            return true;
    if (c->R->ncons == 16)
        return (*c->why = "too many readers", false);
    c->R->hw[c->R->ncons] = hw;
    c->R->cons[c->R->ncons++] = r;
    return true;
}

static bool closure(const qs_graph_t *g, int seed, reach_t *R, const char **why)
{
    int rd[16];
    bool ok = true;
    closure_t c = {g, R, calloc((size_t)g->nnodes, sizeof(bool)), malloc((size_t)g->nnodes * sizeof(int)),
                   malloc((size_t)g->nnodes * sizeof(int64_t)), 0, why};
    if (!c.vis || !c.queue || !c.hw) {
        *why = "out of memory";
        ok = false;
        goto done;
    }
    R->prod[R->nprod++] = seed;
    push(&c, seed, 1);
    for (int q = 0; ok && q < c.nq; q++) {
        int j = c.queue[q];
        int64_t hw = c.hw[j];
        if (g->output == j) {
            *why = "its channels are the network output";
            ok = false;
            break;
        }
        int nr = readers_of(g, j, rd, 16);
        if (nr > 16) {
            *why = "too many readers";
            ok = false;
            break;
        }
        for (int t = 0; ok && t < nr; t++) {
            const qs_node_t *n = &g->nodes[rd[t]];
            switch (n->op) {
            case QS_OP_BATCHNORM:
            case QS_OP_RELU:
            case QS_OP_RELU6:
            case QS_OP_CLIP:
            case QS_OP_MAXPOOL:
            case QS_OP_AVGPOOL:
            case QS_OP_GAP:
                if (!c.vis[rd[t]] && n->op == QS_OP_BATCHNORM)
                    ok = add_perch(&c, rd[t]);
                push(&c, rd[t], n->op == QS_OP_GAP ? 1 : hw);
                break;
            case QS_OP_FLATTEN: {
                const qs_node_t *src = &g->nodes[j];
                push(&c, rd[t], hw * (src->out_ndim == 3 ? src->out_shape[1] * src->out_shape[2] : 1));
                break;
            }
            case QS_OP_ADD:
                if (!c.vis[rd[t]]) {
                    push(&c, rd[t], hw);
                    for (int k = 0; ok && k < n->ninputs; k++)
                        ok = up(&c, n->inputs[k], hw);
                }
                break;
            case QS_OP_CONV2D:
                if (n->groups != 1) {
                    if (n->groups != n->weight->shape[0] || n->weight->shape[1] != 1) {
                        *why = "a grouped convolution reads them";
                        ok = false;
                    } else if (!c.vis[rd[t]]) {
                        ok = add_perch(&c, rd[t]);
                        push(&c, rd[t], hw);
                    }
                    break;
                }
                ok = add_reader(&c, rd[t], 1);
                break;
            case QS_OP_LINEAR:
                ok = add_reader(&c, rd[t], hw);
                break;
            default:
                *why = n->op == QS_OP_CONCAT ? "they are concatenated with another layer's"
                                             : "an operation that mixes channels reads them";
                ok = false;
            }
        }
    }
    if (ok && R->ncons == 0) {
        *why = "nothing reads them";
        ok = false;
    }
done:
    free(c.vis), free(c.queue), free(c.hw);
    return ok;
}

/* t with entries keep[0..nk) along axis (0 or 1), each `span` wide along that axis's flattened tail. */
static qs_tensor_t *take(const qs_tensor_t *t, int axis, const int64_t *keep, int64_t nk, int64_t span)
{
    int64_t shape[QS_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++)
        shape[d] = t->shape[d];
    int64_t outer = axis == 0 ? 1 : t->shape[0];
    int64_t inner = 1;
    for (int d = axis + 1; d < t->ndim; d++)
        inner *= t->shape[d];
    shape[axis] = nk * span;
    qs_tensor_t *r = qs_tensor_create(t->dtype, t->ndim, shape);
    if (!r)
        return NULL;
    const float *s = qs_f32(t);
    float *d = qs_f32(r);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < nk; c++)
            memcpy(d + (o * nk * span + c * span) * inner, s + (o * t->shape[axis] + keep[c] * span) * inner,
                   (size_t)(span * inner) * sizeof *d);
    return r;
}

static int replace(qs_tensor_t **slot, qs_tensor_t *t)
{
    if (!t)
        return qs_last_status();
    qs_tensor_free(*slot);
    *slot = t;
    return QS_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static pthread_once_t gsl_once = PTHREAD_ONCE_INIT;
static void gsl_off(void) { gsl_set_error_handler_off(); }
void qs_sim_gsl_init(void) { pthread_once(&gsl_once, gsl_off); }

/* What channel pruning on data needs: the unpruned graph and the images, with the captured input of a node. */
typedef struct {
    const qs_graph_t *orig;
    qs_dataset_t *sub; /* the seeded subset */
    bool refit;
} pdata_t;

typedef struct {
    int node;
    int64_t per;
    float *buf; /* [n][per] */
} cap_t;

static int cap_hook(void *ctx, int node, qs_tensor_t *y, int64_t sample0, int thread)
{
    (void)thread;
    cap_t *c = ctx;
    if (node == c->node)
        memcpy(c->buf + sample0 * c->per, y->data, (size_t)y->size * sizeof(float));
    return QS_OK;
}

/* The output of node j of the unpruned graph on every image of the subset: [n][per] (the caller frees). */
static int capture(const pdata_t *d, int j, float **out, int64_t *per)
{
    const qs_graph_t *g = d->orig;
    const qs_node_t *nd = &g->nodes[j];
    cap_t c = {j, nd->out_ndim == 3 ? nd->out_shape[0] * nd->out_shape[1] * nd->out_shape[2] : nd->out_shape[0], NULL};
    const int64_t n = d->sub->n;
    int64_t shape[4] = {n, g->in_c, g->in_h, g->in_w};
    qs_tensor_t *x = qs_tensor_create(QS_F32, 4, shape);
    bool *at = calloc((size_t)g->nnodes, sizeof *at);
    c.buf = malloc((size_t)(n * c.per) * sizeof *c.buf);
    qs_engine_t *e = NULL;
    int rc = x && at && c.buf ? QS_OK : qs_error(QS_ERR_NOMEM, "prune: out of memory for the activations of '%s'",
                                                 nd->name);
    if (rc >= 0) {
        at[j] = true;
        const qs_tensor_t *y;
        if ((rc = qs_dataset_batch(d->sub, g, 0, NULL, n, x, NULL)) >= 0 && (rc = qs_engine_create(g, NULL, &e)) >= 0 &&
            (rc = qs_engine_set_hook_at(e, cap_hook, &c, at)) >= 0)
            rc = qs_engine_forward(e, x, &y);
    }
    qs_engine_free(e);
    qs_tensor_free(x);
    free(at);
    if (rc < 0) {
        free(c.buf);
        return rc;
    }
    *out = c.buf;
    *per = c.per;
    return QS_OK;
}

/* Per channel of the producer: the mean |value| its first reader receives (its input, channel-aligned). */
static int act_scores(const pdata_t *d, const qs_graph_t *g, const reach_t *R, int64_t O, double *score)
{
    const qs_node_t *c = &g->nodes[R->cons[0]];
    float *X;
    int64_t per;
    int rc = capture(d, c->inputs[0], &X, &per);
    if (rc < 0)
        return rc;
    const int64_t span = per / O; /* values of one channel in one sample */
    for (int64_t o = 0; o < O; o++) {
        double s = 0;
        for (int64_t k = 0; k < d->sub->n; k++)
            for (int64_t j = 0; j < span; j++)
                s += fabsf(X[k * per + o * span + j]);
        score[o] = s / (double)(d->sub->n * span);
    }
    free(X);
    return QS_OK;
}

#define REFIT_POSITIONS 32 /* output positions sampled per image */

/* Least-squares refit of reader c (conv2d groups 1, or linear) to the kept input channels keep[0..nk) (each
 * `hw` features of a linear's input): the weights W' minimizing Σ ||W x − W' x_keep||² over the unpruned
 * network's inputs to c on the data (ridge 1e-6 of the mean diagonal), written as c's new weight. */
static int refit(const pdata_t *d, qs_node_t *c, const int64_t *keep, int64_t nk, int64_t hw)
{
    float *X;
    int64_t per;
    int rc = capture(d, c->inputs[0], &X, &per);
    if (rc < 0)
        return rc;
    const qs_node_t *in = &d->orig->nodes[c->inputs[0]];
    const int64_t O = c->weight->shape[0], K = c->weight->size / O;
    const bool conv = c->op == QS_OP_CONV2D;
    const int kh = conv ? c->kh : 1, kw = conv ? c->kw : 1;
    const int64_t C = conv ? in->out_shape[0] : K, H = conv ? in->out_shape[1] : 1, W = conv ? in->out_shape[2] : 1;
    const int64_t OH = conv ? c->out_shape[1] : 1, OW = conv ? c->out_shape[2] : 1, P = OH * OW;
    const int64_t span = conv ? (int64_t)kh * kw : hw, Kp = nk * span;
    double *A = calloc((size_t)(Kp * Kp), sizeof *A), *B = calloc((size_t)(Kp * O), sizeof *B);
    double *x = malloc((size_t)K * sizeof *x), *y = malloc((size_t)O * sizeof *y);
    int64_t *col = malloc((size_t)Kp * sizeof *col);
    if (!A || !B || !x || !y || !col) {
        rc = qs_error(QS_ERR_NOMEM, "prune refit of '%s': out of memory", c->name);
        goto done;
    }
    for (int64_t t = 0; t < nk; t++)
        for (int64_t j = 0; j < span; j++)
            col[t * span + j] = keep[t] * span + j;
    const float *w = qs_f32(c->weight), *mk = c->mask ? qs_f32(c->mask) : NULL;
    const int64_t npos = P < REFIT_POSITIONS ? P : REFIT_POSITIONS;
    for (int64_t s = 0; s < d->sub->n; s++) {
        const float *xs = X + s * per;
        for (int64_t q = 0; q < npos; q++) {
            int64_t p = q * P / npos, oy = p / OW, ox = p % OW;
            if (conv) { /* the receptive field of output (oy, ox), zero padding */
                for (int64_t ci = 0; ci < C; ci++)
                    for (int ky = 0; ky < kh; ky++)
                        for (int kx = 0; kx < kw; kx++) {
                            int64_t iy = oy * c->stride_h - c->pad_top + ky * c->dil_h;
                            int64_t ix = ox * c->stride_w - c->pad_left + kx * c->dil_w;
                            x[(ci * kh + ky) * kw + kx] =
                                iy < 0 || iy >= H || ix < 0 || ix >= W ? 0.0 : xs[(ci * H + iy) * W + ix];
                        }
            } else {
                for (int64_t k = 0; k < K; k++)
                    x[k] = xs[k];
            }
            for (int64_t o = 0; o < O; o++) { /* the reader as it computes: masked weights are zeros */
                double t = 0;
                for (int64_t k = 0; k < K; k++)
                    t += (mk && mk[o * K + k] == 0.0f ? 0.0 : (double)w[o * K + k]) * x[k];
                y[o] = t;
            }
            for (int64_t a = 0; a < Kp; a++) {
                double xa = x[col[a]];
                if (xa == 0.0)
                    continue;
                for (int64_t b = 0; b < Kp; b++)
                    A[a * Kp + b] += xa * x[col[b]];
                for (int64_t o = 0; o < O; o++)
                    B[a * O + o] += xa * y[o];
            }
        }
    }
    double tr = 0;
    for (int64_t a = 0; a < Kp; a++)
        tr += A[a * Kp + a];
    double lam = 1e-6 * tr / (double)Kp + 1e-12;
    for (int64_t a = 0; a < Kp; a++)
        A[a * Kp + a] += lam;
    gsl_matrix_view Av = gsl_matrix_view_array(A, (size_t)Kp, (size_t)Kp);
    qs_sim_gsl_init();
    int grc = gsl_linalg_cholesky_decomp1(&Av.matrix);
    qs_tensor_t *nw = NULL;
    if (grc == 0) {
        int64_t shape[QS_MAX_DIMS];
        for (int dd = 0; dd < c->weight->ndim; dd++)
            shape[dd] = c->weight->shape[dd];
        shape[1] = conv ? nk : Kp;
        nw = qs_tensor_create(QS_F32, c->weight->ndim, shape);
        if (!nw)
            grc = -1;
        for (int64_t o = 0; nw && o < O && grc == 0; o++) {
            gsl_vector_view bv = gsl_vector_view_array_with_stride(B + o, (size_t)O, (size_t)Kp);
            gsl_vector *sol = gsl_vector_alloc((size_t)Kp);
            grc = sol ? gsl_linalg_cholesky_solve(&Av.matrix, &bv.vector, sol) : -1;
            for (int64_t a = 0; sol && grc == 0 && a < Kp; a++)
                qs_f32(nw)[o * Kp + a] = (float)gsl_vector_get(sol, (size_t)a);
            gsl_vector_free(sol);
        }
    }
    if (grc != 0) {
        qs_tensor_free(nw);
        rc = qs_error(QS_ERR_NUMERIC, "prune refit of '%s': the least-squares system is singular", c->name);
        goto done;
    }
    qs_tensor_free(c->weight);
    c->weight = nw;
    if (c->mask) { /* a pruned reader keeps its pattern */
        qs_tensor_t *m = take(c->mask, 1, keep, nk, conv ? 1 : hw);
        if (!m) {
            rc = qs_last_status();
            goto done;
        }
        for (int64_t k = 0; k < m->size; k++)
            if (qs_f32(m)[k] == 0.0f)
                qs_f32(nw)[k] = 0.0f;
        qs_tensor_free(c->mask);
        c->mask = m;
    }
done:
    free(A), free(B), free(x), free(y), free(col);
    free(X);
    return rc;
}

static int prune_channels(qs_graph_t *g, int i, double ratio, qs_prune_method_t method, const pdata_t *pd,
                          int *grouped, qs_prune_layer_t *rep)
{
    qs_node_t *n = &g->nodes[i];
    const int64_t O = n->weight->shape[0];
    memset(rep, 0, sizeof *rep);
    rep->node = i;
    rep->before = O;
    rep->after = O;
    rep->with = -1;
    reach_t R;
    memset(&R, 0, sizeof R);
    const char *why = NULL;
    if (n->op == QS_OP_CONV2D && n->groups != 1) {
        rep->skipped = "a depthwise or grouped convolution's channels follow its input's";
        return QS_OK;
    }
    if (grouped && grouped[i]) { /* already pruned, with the layer it is tied to */
        rep->with = grouped[i] - 1; /* the caller copies `before` from that layer's report */
        return QS_OK;
    }
    if (!closure(g, i, &R, &why)) {
        rep->skipped = why;
        return QS_OK;
    }
    for (int t = 1; grouped && t < R.nprod; t++)
        grouped[R.prod[t]] = i + 1;
    for (int t = 0; t < R.nprod; t++)
        if (g->nodes[R.prod[t]].weight->shape[0] != O)
            return qs_error(QS_ERR_INTERNAL, "prune: layers '%s' and '%s' meet at an add with different channels",
                            n->name, g->nodes[R.prod[t]].name);
    int64_t remove = (int64_t)floor(ratio * (double)O);
    if (remove >= O)
        remove = O - 1; /* a layer keeps one channel */
    if (remove <= 0)
        return QS_OK;
    mag_t *v = malloc((size_t)O * sizeof *v);
    int64_t *keep = malloc((size_t)O * sizeof *keep);
    if (!v || !keep) {
        free(v), free(keep);
        return qs_error(QS_ERR_NOMEM, "prune: out of memory");
    }
    const bool l2 = method == QS_PRUNE_CHANNEL_L2;
    double *score = method == QS_PRUNE_CHANNEL_ACT ? malloc((size_t)O * sizeof *score) : NULL;
    if (method == QS_PRUNE_CHANNEL_ACT) {
        int rc0 = score ? act_scores(pd, g, &R, O, score) : qs_error(QS_ERR_NOMEM, "prune: out of memory");
        if (rc0 < 0) {
            free(v), free(keep), free(score);
            return rc0;
        }
    }
    for (int64_t o = 0; o < O; o++) { /* a group's channel: its norms summed over the tied layers */
        double tot = 0;
        for (int t = 0; !score && t < R.nprod; t++) {
            const qs_node_t *pn = &g->nodes[R.prod[t]];
            const int64_t Kt = pn->weight->size / O;
            const float *wt = qs_f32(pn->weight), *mt = pn->mask ? qs_f32(pn->mask) : NULL;
            double s = 0;
            for (int64_t k = 0; k < Kt; k++) {
                double x = mt && mt[o * Kt + k] == 0.0f ? 0.0 : wt[o * Kt + k];
                s += l2 ? x * x : fabs(x);
            }
            tot += l2 ? sqrt(s) : s;
        }
        v[o].a = (float)(score ? score[o] : tot);
        v[o].layer = 0;
        v[o].k = o;
    }
    free(score);
    qsort(v, (size_t)O, sizeof *v, cmp_mag);
    int64_t nk = 0;
    for (int64_t r = remove; r < O; r++)
        keep[nk++] = v[r].k;
    qsort(keep, (size_t)nk, sizeof *keep, cmp_i64);
    int rc = QS_OK;
    for (int t = 0; rc >= 0 && t < R.nprod; t++) {
        qs_node_t *pn = &g->nodes[R.prod[t]];
        rc = replace(&pn->weight, take(pn->weight, 0, keep, nk, 1));
        if (rc >= 0 && pn->bias)
            rc = replace(&pn->bias, take(pn->bias, 0, keep, nk, 1));
        if (rc >= 0 && pn->mask)
            rc = replace(&pn->mask, take(pn->mask, 0, keep, nk, 1));
    }
    for (int t = 0; rc >= 0 && t < R.nperch; t++) {
        qs_node_t *p = &g->nodes[R.perch[t]];
        if (p->op == QS_OP_BATCHNORM) {
            qs_tensor_t **bn[4] = {&p->gamma, &p->beta, &p->mean, &p->var};
            for (int b = 0; rc >= 0 && b < 4; b++)
                rc = replace(bn[b], take(*bn[b], 0, keep, nk, 1));
        } else { /* depthwise */
            rc = replace(&p->weight, take(p->weight, 0, keep, nk, 1));
            if (rc >= 0 && p->bias)
                rc = replace(&p->bias, take(p->bias, 0, keep, nk, 1));
            if (rc >= 0 && p->mask)
                rc = replace(&p->mask, take(p->mask, 0, keep, nk, 1));
            p->groups = (int)nk;
        }
    }
    for (int t = 0; rc >= 0 && t < R.ncons; t++) {
        qs_node_t *c = &g->nodes[R.cons[t]];
        if (pd && pd->refit) {
            rc = refit(pd, c, keep, nk, R.hw[t]);
            continue;
        }
        rc = replace(&c->weight, take(c->weight, 1, keep, nk, R.hw[t]));
        if (rc >= 0 && c->mask)
            rc = replace(&c->mask, take(c->mask, 1, keep, nk, R.hw[t]));
    }
    rep->after = nk;
    free(v), free(keep);
    return rc;
}

static double ratio_of(const qs_prune_opts_t *o, int node)
{
    return o->layer_ratio && o->layer_ratio[node] >= 0 ? o->layer_ratio[node] : o->ratio;
}

void qs_graph_sparsity(const qs_graph_t *g, int64_t *weights, int64_t *masked, int64_t *macs_nonzero)
{
    *weights = *masked = *macs_nonzero = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const qs_node_t *n = &g->nodes[i];
        if (!is_layer(n))
            continue;
        int64_t off = 0;
        for (int64_t k = 0; n->mask && k < n->mask->size; k++)
            off += qs_f32(n->mask)[k] == 0.0f;
        *weights += n->weight->size;
        *masked += off;
        *macs_nonzero += (int64_t)llround((double)qs_node_macs(g, i) * (double)(n->weight->size - off) /
                                          (double)n->weight->size);
    }
}

int qs_graph_prune(const qs_graph_t *g, const qs_prune_opts_t *o, qs_graph_t **out, qs_prune_report_t *rep)
{
    *out = NULL;
    if (rep)
        memset(rep, 0, sizeof *rep);
    if (!g || !o)
        return qs_error(QS_ERR_INVALID, "prune: no graph or options");
    if ((int)o->method < 0 || o->method >= QS_PRUNE_COUNT)
        return qs_error(QS_ERR_INVALID, "prune: unknown method %d", (int)o->method);
    bool ratio_used = o->method != QS_PRUNE_NONE && o->method != QS_PRUNE_NM;
    if (ratio_used && !(o->ratio >= 0.0 && o->ratio < 1.0))
        return qs_error(QS_ERR_INVALID, "prune %s: ratio %g: expected a fraction in [0, 1)",
                        qs_prune_method_name(o->method), o->ratio);
    for (int i = 0; ratio_used && o->layer_ratio && i < g->nnodes; i++)
        if (!(o->layer_ratio[i] < 1.0))
            return qs_error(QS_ERR_INVALID, "prune %s: the ratio of node '%s' is %g: expected a fraction below 1",
                            qs_prune_method_name(o->method), g->nodes[i].name, o->layer_ratio[i]);
    bool channels = o->method == QS_PRUNE_CHANNEL_L1 || o->method == QS_PRUNE_CHANNEL_L2 ||
                    o->method == QS_PRUNE_CHANNEL_ACT;
    if (o->refit && !channels)
        return qs_error(QS_ERR_INVALID, "prune %s: the least-squares refit applies to channel pruning",
                        qs_prune_method_name(o->method));
    if ((o->refit || o->method == QS_PRUNE_CHANNEL_ACT) && !o->data)
        return qs_error(QS_ERR_INVALID, "prune %s%s: needs data (calibration images)", qs_prune_method_name(o->method),
                        o->refit ? " with refit" : "");
    if (o->method == QS_PRUNE_NM && (o->m < 2 || o->m > 16 || o->n < 1 || o->n >= o->m))
        return qs_error(QS_ERR_INVALID, "prune nm:%d:%d: expected 1 <= N < M <= 16", o->n, o->m);
    qs_graph_t *c = qs_graph_clone(g);
    if (!c)
        return qs_error_context("prune: ");
    int *layers = malloc((size_t)c->nnodes * sizeof *layers), nl = 0;
    if (!layers) {
        qs_graph_free(c);
        return qs_error(QS_ERR_NOMEM, "prune: out of memory");
    }
    for (int i = 0; i < c->nnodes; i++)
        if (is_layer(&c->nodes[i]))
            layers[nl++] = i;
    int rc = QS_OK;
    pdata_t pd = {g, NULL, o->refit}, *pdp = NULL;
    if (o->data && channels) {
        if ((rc = qs_dataset_subset(o->data, o->images > 0 ? o->images : 256, o->seed, &pd.sub)) >= 0)
            pdp = &pd;
    }
    switch (rc < 0 ? QS_PRUNE_NONE : o->method) {
    case QS_PRUNE_NONE: break;
    case QS_PRUNE_GLOBAL: rc = prune_smallest(c, layers, nl, o->ratio); break;
    case QS_PRUNE_MAGNITUDE:
        for (int j = 0; rc >= 0 && j < nl; j++)
            rc = prune_smallest(c, &layers[j], 1, ratio_of(o, layers[j]));
        break;
    case QS_PRUNE_NM:
        for (int j = 0; rc >= 0 && j < nl; j++)
            rc = prune_nm(c, layers[j], o->n, o->m);
        break;
    default: { /* channels: every layer, in order; the later ones see the earlier's removals */
        int *grouped = calloc((size_t)c->nnodes, sizeof *grouped);
        if (!grouped)
            rc = qs_error(QS_ERR_NOMEM, "prune: out of memory");
        for (int j = 0; rc >= 0 && j < nl; j++) {
            qs_prune_layer_t lr;
            rc = prune_channels(c, layers[j], ratio_of(o, layers[j]), o->method, pdp, grouped, &lr);
            for (int k = 0; rc >= 0 && rep && lr.with >= 0 && k < rep->nlayers; k++)
                if (rep->layer[k].node == lr.with)
                    lr.before = rep->layer[k].before;
            if (rc >= 0 && rep && rep->nlayers < QS_PRUNE_MAX_REPORT)
                rep->layer[rep->nlayers++] = lr;
        }
        free(grouped);
        break;
    }
    }
    free(layers);
    qs_dataset_free(pd.sub);
    if (rc >= 0 && (rc = qs_graph_infer(c)) < 0)
        qs_error_context("prune %s: the pruned graph does not check: ", qs_prune_method_name(o->method));
    if (rc < 0) {
        qs_graph_free(c);
        return rc;
    }
    if (rep) {
        qs_graph_sparsity(c, &rep->weights, &rep->masked, &rep->macs_nonzero);
        rep->macs_before = qs_graph_macs(g);
        rep->macs_after = qs_graph_macs(c);
        rep->params_before = qs_graph_params(g);
        rep->params_after = qs_graph_params(c);
    }
    *out = c;
    return QS_OK;
}

/* ---- per-layer ratio selection ------------------------------------------------------------------ */

void qs_prune_select_opts_default(qs_prune_select_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->target = 0.5;
    o->ncand = 9;
    for (int c = 0; c < 9; c++)
        o->cand[c] = 0.1 * (c + 1);
}

/* Prunes g with per-layer ratios lr and evaluates it: top-1 and the MACs the target counts. */
static int try_ratios(const qs_graph_t *g, qs_prune_method_t method, const double *lr, const qs_dataset_t *d,
                      const qs_prune_select_opts_t *o, double *top1, double *macs)
{
    qs_prune_opts_t po;
    qs_prune_opts_default(&po);
    po.method = method;
    po.layer_ratio = lr;
    qs_prune_report_t *rep = calloc(1, sizeof *rep);
    qs_graph_t *p = NULL;
    if (!rep)
        return qs_error(QS_ERR_NOMEM, "prune select: out of memory");
    int rc = qs_graph_prune(g, &po, &p, rep);
    if (rc >= 0)
        *macs = (double)(method == QS_PRUNE_MAGNITUDE ? rep->macs_nonzero : rep->macs_after);
    free(rep);
    if (rc >= 0 && top1) {
        qs_eval_t ev;
        if ((rc = qs_eval(p, d, &o->engine, 256, NULL, &ev)) >= 0)
            *top1 = ev.top1;
    }
    qs_graph_free(p);
    return rc;
}

int qs_prune_select(const qs_graph_t *g, qs_prune_method_t method, const qs_dataset_t *d,
                    const qs_prune_select_opts_t *o, qs_prune_select_t *out)
{
    memset(out, 0, sizeof *out);
    if (method != QS_PRUNE_MAGNITUDE && method != QS_PRUNE_CHANNEL_L1 && method != QS_PRUNE_CHANNEL_L2)
        return qs_error(QS_ERR_INVALID, "prune select: per-layer ratios apply to magnitude, channel-l1 and channel-l2, "
                        "not %s", qs_prune_method_name(method));
    if (!(o->target > 0 && o->target < 1))
        return qs_error(QS_ERR_INVALID, "prune select: target %g: expected the fraction of MACs to keep, in (0, 1)",
                        o->target);
    if (o->ncand < 1 || o->ncand > QS_PRUNE_MAX_CANDIDATES)
        return qs_error(QS_ERR_INVALID, "prune select: %d candidate ratios: expected 1..%d", o->ncand,
                        QS_PRUNE_MAX_CANDIDATES);
    for (int c = 0; c < o->ncand; c++)
        if (!(o->cand[c] > 0 && o->cand[c] < 1) || (c && o->cand[c] <= o->cand[c - 1]))
            return qs_error(QS_ERR_INVALID, "prune select: candidate ratios must be ascending fractions in (0, 1)");
    double *lr = malloc((size_t)g->nnodes * sizeof *lr);
    if (!lr)
        return qs_error(QS_ERR_NOMEM, "prune select: out of memory");
    for (int i = 0; i < g->nnodes; i++)
        lr[i] = 0.0;
    int rc = QS_OK;
    double base_top1 = 0, base_macs = 0;
    if ((rc = try_ratios(g, method, lr, d, o, &base_top1, &base_macs)) < 0)
        goto done;
    out->evaluations = 1;
    /* each layer alone at each candidate (channel pruning: layers it keeps whole are left out) */
    for (int i = 0; i < g->nnodes && rc >= 0; i++) {
        const qs_node_t *n = &g->nodes[i];
        if (!is_layer(n) || out->nlayers == QS_PRUNE_MAX_REPORT)
            continue;
        if (method != QS_PRUNE_MAGNITUDE) {
            qs_graph_t *tmp = qs_graph_clone(g);
            qs_prune_layer_t pl;
            if (!tmp) {
                rc = qs_last_status();
                break;
            }
            rc = prune_channels(tmp, i, o->cand[0], QS_PRUNE_CHANNEL_L1, NULL, NULL, &pl);
            qs_graph_free(tmp);
            if (rc < 0)
                break;
            if (pl.skipped)
                continue;
            /* a layer tied at an add to an earlier one takes that layer's ratio: no curve of its own */
            reach_t R;
            memset(&R, 0, sizeof R);
            const char *why;
            bool tied = false;
            if (closure(g, i, &R, &why))
                for (int t = 0; t < R.nprod; t++)
                    tied |= R.prod[t] < i;
            if (tied)
                continue;
        }
        int k = out->nlayers++;
        out->node[k] = i;
        out->top1[k][0] = base_top1;
        out->macs[k][0] = base_macs;
        for (int c = 0; c < o->ncand && rc >= 0; c++) {
            lr[i] = o->cand[c];
            rc = try_ratios(g, method, lr, d, o, &out->top1[k][1 + c], &out->macs[k][1 + c]);
            out->evaluations++;
        }
        lr[i] = 0.0;
    }
    if (rc < 0)
        goto done;
    /* bisect the threshold over the measured accuracies, highest first */
    int nt = 0;
    double *th = malloc((size_t)(out->nlayers * (o->ncand + 1) + 1) * sizeof *th);
    if (!th) {
        rc = qs_error(QS_ERR_NOMEM, "prune select: out of memory");
        goto done;
    }
    for (int k = 0; k < out->nlayers; k++)
        for (int c = 0; c <= o->ncand; c++)
            th[nt++] = out->top1[k][c];
    th[nt++] = -1.0; /* every layer at its most aggressive candidate */
    for (int a = 1; a < nt; a++) /* descending */
        for (int b = a; b > 0 && th[b - 1] < th[b]; b--) {
            double t = th[b];
            th[b] = th[b - 1];
            th[b - 1] = t;
        }
    /* the choice for a threshold: per layer, the largest candidate at or above it; its MACs fall as the
     * threshold falls, so the first threshold meeting the target is found by bisection */
    int lo = 0, hi = nt - 1, best = -1;
    double best_macs = 0;
    while (lo <= hi && rc >= 0) {
        int mid = (lo + hi) / 2;
        for (int k = 0; k < out->nlayers; k++) {
            double r = 0;
            for (int c = 0; c < o->ncand; c++)
                if (out->top1[k][1 + c] >= th[mid])
                    r = o->cand[c];
            lr[out->node[k]] = r;
        }
        double macs;
        if ((rc = try_ratios(g, method, lr, d, o, NULL, &macs)) < 0)
            break;
        if (macs <= o->target * base_macs) {
            best = mid, best_macs = macs;
            hi = mid - 1;
        } else {
            lo = mid + 1;
        }
    }
    int pick = best >= 0 ? best : nt - 1;
    out->met = best >= 0;
    out->threshold = th[pick];
    for (int k = 0; k < out->nlayers; k++) {
        double r = 0;
        for (int c = 0; c < o->ncand; c++)
            if (out->top1[k][1 + c] >= th[pick])
                r = o->cand[c];
        out->ratio[k] = r;
        lr[out->node[k]] = r;
    }
    if (rc >= 0 && best < 0)
        rc = try_ratios(g, method, lr, d, o, NULL, &best_macs);
    out->macs_fraction = base_macs > 0 ? best_macs / base_macs : 1.0;
    free(th);
done:
    free(lr);
    return rc < 0 ? rc : QS_OK;
}
