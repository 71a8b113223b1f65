/* sim/engine.c — the float engine: runs a validated graph on a batch of
 * NCHW images, on a thread pool, and evaluates top-1/top-5 on a dataset.
 *
 * The plan (built once by qs_engine_create): the graph's nodes in their
 * stored (topological) order, each with its kernel, its per-sample shape and
 * an activation slot. Slots are reused once a value has no reader left, and
 * elementwise ops (batchnorm, relu, relu6, clip, add, softmax) and
 * flatten/reshape work in place on their input's slot when they are its last
 * reader, so a MobileNet needs a few slots, not one per node.
 *
 * Execution: the batch is cut into blocks of a fixed number of samples (a
 * function of the graph only); blocks are spread over the pool, and each
 * thread runs its blocks node by node in its own workspace (slots + im2col
 * scratch). Every kernel works on one sample with shapes fixed by the graph,
 * so a sample's output is the same whatever N, its block, its place in the
 * block or the thread count — OpenBLAS included, since no GEMM dimension
 * depends on the batch. Batchnorm/relu-like nodes that are the only reader
 * of a conv/linear/add output run right after it on each sample (while it is
 * in cache): the same operations on the same values, so fusion changes
 * speed, never bits. A hook sees the outputs of the nodes it asked for (all
 * by default); a hooked node ends its chain, so the hook sees its output
 * before its reader runs.
 *
 * docs/engine.md ("The float engine") defines every op's arithmetic. */
#include "sim/sim_internal.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Workspace per thread that the block size aims at: small enough to stay in
 * L2 with the weights, large enough to amortize a hook call over samples. */
#define QS_ENGINE_WS_BUDGET (512 * 1024)
#define QS_ENGINE_MAX_BLOCK 64
#define QS_ENGINE_MAX_CHAIN QS_SIM_EP_MAX

enum { KIND_NONE = 0, KIND_REF, KIND_DW, KIND_GEMM, KIND_LINEAR_REF, KIND_LINEAR_BLAS };

typedef struct {
    const qs_node_t *node;
    qs_op_t op;
    int nin;
    int in[QS_MAX_INPUTS];
    int ndim;           /* 1 or 3 */
    int64_t shape[3];   /* per sample */
    int64_t c, hw, size; /* channels (features), plane, elements per sample */
    int slot;
    int kind;
    qs_sim_conv_t geo;  /* conv2d, maxpool, avgpool */
    const float *w, *b; /* conv2d/linear: weight (masked if there is a mask), bias */
    const float *mean, *beta;
    float *own;         /* masked weight copy, or batchnorm scale */
    float lo, hi;       /* relu, relu6, clip */
    int readers;        /* nodes that read this one's output */
    int last;           /* the last of them (n: the network output; -1: none) */
    bool fused;         /* runs in its producer's chain */
    int nchain;
    int chain[QS_ENGINE_MAX_CHAIN];
    qs_sim_ep_t ep;     /* the chain, as the kernels' epilogue */
} step_t;

struct qs_engine {
    const qs_graph_t *g;
    qs_pool_t *pool;
    bool reference;
    int nthreads;
    int nsteps;
    step_t *steps;
    int nslots;
    int64_t *slot_off;  /* floats from the workspace start */
    int64_t scratch_off;
    int64_t ws_floats;
    int block;
    float **ws;         /* one workspace per thread */
    int64_t in_size;
    qs_engine_hook_fn hook;
    void *hook_ctx;
    bool *hooked;       /* the nodes the hook sees (every node when the hook is set without a list) */
    qs_tensor_t *out;
    int64_t out_cap;
};

static int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }

static int node_error(const qs_graph_t *g, int i, int code, const char *what)
{
    const qs_node_t *n = &g->nodes[i];
    return qs_error(code, "engine: graph '%s', node '%s' (%s): %s", g->name, n->name, qs_op_name(n->op), what);
}

/* The engine trusts qs_graph_infer for everything else; this only refuses a
 * graph that was never validated, whose shapes would be zeros. */
static int check_graph(const qs_graph_t *g)
{
    if (!g || !g->nodes || g->nnodes < 2)
        return qs_error(QS_ERR_INVALID, "engine: %s", !g ? "no graph" : "the graph has no node after its input");
    for (int i = 0; i < g->nnodes; i++) {
        const qs_node_t *n = &g->nodes[i];
        bool ok = n->out_ndim == 1 || n->out_ndim == 3;
        for (int k = 0; ok && k < n->out_ndim; k++)
            ok = n->out_shape[k] >= 1;
        if (!ok)
            return node_error(g, i, QS_ERR_INVALID, "no output shape (validate the graph with qs_graph_infer first)");
        for (int k = 0; k < n->ninputs; k++)
            if (n->inputs[k] < 0 || n->inputs[k] >= i)
                return node_error(g, i, QS_ERR_INVALID, "an input is not an earlier node");
    }
    if (g->output < 1 || g->output >= g->nnodes)
        return qs_error(QS_ERR_INVALID, "engine: graph '%s': output node %d is not one of nodes 1..%d", g->name,
                        g->output, g->nnodes - 1);
    const qs_node_t *o = &g->nodes[g->output];
    int64_t f = o->out_shape[0] * (o->out_ndim == 3 ? o->out_shape[1] * o->out_shape[2] : 1);
    if (f != g->num_classes || g->num_classes < 1)
        return qs_error(QS_ERR_INVALID, "engine: graph '%s': the output node '%s' has %lld values but num_classes is %d "
                        "(validate the graph with qs_graph_infer first)", g->name, o->name, (long long)f,
                        g->num_classes);
    return QS_OK;
}

static void set_geo(step_t *st, const step_t *in)
{
    const qs_node_t *n = st->node;
    qs_sim_conv_t *q = &st->geo;
    q->c = in->shape[0];
    q->h = in->shape[1];
    q->w = in->shape[2];
    q->oc = st->shape[0];
    q->oh = st->shape[1];
    q->ow = st->shape[2];
    q->kh = n->kh;
    q->kw = n->kw;
    q->sh = n->stride_h;
    q->sw = n->stride_w;
    q->dh = n->op == QS_OP_CONV2D ? n->dil_h : 1;
    q->dw = n->op == QS_OP_CONV2D ? n->dil_w : 1;
    q->pt = n->pad_top;
    q->pl = n->pad_left;
    q->pb = n->pad_bottom;
    q->pr = n->pad_right;
    q->groups = n->op == QS_OP_CONV2D ? n->groups : 1;
}

/* Weight with its mask applied (pruned weights become +0), or the graph's own data. */
static int weight_of(qs_engine_t *e, step_t *st)
{
    const qs_node_t *n = st->node;
    if (!n->mask) {
        st->w = qs_f32(n->weight);
        return QS_OK;
    }
    if (!(st->own = qs_alloc((size_t)n->weight->size * sizeof(float))))
        return node_error(e->g, (int)(st - e->steps), QS_ERR_NOMEM, "out of memory for the masked weight");
    const float *w = qs_f32(n->weight), *m = qs_f32(n->mask);
    for (int64_t i = 0; i < n->weight->size; i++)
        st->own[i] = m[i] != 0.0f ? w[i] : 0.0f;
    st->w = st->own;
    return QS_OK;
}

static int build_steps(qs_engine_t *e)
{
    const qs_graph_t *g = e->g;
    for (int i = 0; i < g->nnodes; i++) {
        step_t *st = &e->steps[i];
        const qs_node_t *n = &g->nodes[i];
        st->node = n;
        st->op = n->op;
        st->nin = n->ninputs;
        memcpy(st->in, n->inputs, sizeof st->in);
        st->ndim = n->out_ndim;
        st->shape[0] = n->out_shape[0];
        st->shape[1] = n->out_ndim == 3 ? n->out_shape[1] : 1;
        st->shape[2] = n->out_ndim == 3 ? n->out_shape[2] : 1;
        st->c = st->shape[0];
        st->hw = st->shape[1] * st->shape[2];
        st->size = st->c * st->hw;
        st->slot = -1;
        const step_t *in = i > 0 && st->nin > 0 ? &e->steps[st->in[0]] : NULL;
        int rc = QS_OK;
        switch (n->op) {
        case QS_OP_CONV2D:
            set_geo(st, in);
            if ((rc = weight_of(e, st)) < 0)
                return rc;
            st->b = n->bias ? qs_f32(n->bias) : NULL;
            if (e->reference)
                st->kind = KIND_REF;
            else if (st->geo.c == st->geo.groups)
                st->kind = KIND_DW;
            else
                st->kind = KIND_GEMM;
            break;
        case QS_OP_LINEAR:
            if ((rc = weight_of(e, st)) < 0)
                return rc;
            st->b = n->bias ? qs_f32(n->bias) : NULL;
            st->kind = e->reference ? KIND_LINEAR_REF : KIND_LINEAR_BLAS;
            break;
        case QS_OP_MAXPOOL:
        case QS_OP_AVGPOOL: set_geo(st, in); break;
        case QS_OP_BATCHNORM:
            if (!(st->own = qs_alloc((size_t)st->c * sizeof(float))))
                return node_error(g, i, QS_ERR_NOMEM, "out of memory");
            qs_sim_bn_scale(st->c, qs_f32(n->gamma), qs_f32(n->var), n->eps, st->own);
            st->mean = qs_f32(n->mean);
            st->beta = qs_f32(n->beta);
            break;
        case QS_OP_RELU:
            st->lo = 0.0f;
            st->hi = INFINITY;
            break;
        case QS_OP_RELU6:
            st->lo = 0.0f;
            st->hi = 6.0f;
            break;
        case QS_OP_CLIP:
            st->lo = n->clip_min;
            st->hi = n->clip_max;
            break;
        default: break;
        }
    }
    return QS_OK;
}

static bool in_place_op(qs_op_t op)
{
    switch (op) {
    case QS_OP_BATCHNORM:
    case QS_OP_RELU:
    case QS_OP_RELU6:
    case QS_OP_CLIP:
    case QS_OP_ADD:
    case QS_OP_FLATTEN:
    case QS_OP_RESHAPE:
    case QS_OP_SOFTMAX: return true;
    default: return false;
    }
}

static bool chain_op(qs_op_t op)
{
    return op == QS_OP_BATCHNORM || op == QS_OP_RELU || op == QS_OP_RELU6 || op == QS_OP_CLIP;
}

/* Chains: an elementwise node that is the only reader of its producer's
 * output and works in place on it runs inside the producer, unless the hook
 * must see the producer's output first (a hooked node ends its chain). */
static void plan_chains(qs_engine_t *e)
{
    const int n = e->nsteps;
    for (int i = 0; i < n; i++) {
        e->steps[i].fused = false;
        e->steps[i].nchain = 0;
        e->steps[i].ep.n = 0;
    }
    for (int i = 1; i < n; i++) {
        step_t *st = &e->steps[i];
        if (st->fused || !(st->op == QS_OP_CONV2D || st->op == QS_OP_LINEAR || st->op == QS_OP_ADD))
            continue;
        int cur = i;
        while (st->nchain < QS_ENGINE_MAX_CHAIN && cur != e->g->output && e->steps[cur].readers == 1 &&
               !(e->hook && e->hooked[cur])) {
            int j = e->steps[cur].last;
            step_t *nx = &e->steps[j];
            if (j <= cur || j >= n || !chain_op(nx->op) || nx->nin != 1 || nx->slot != st->slot)
                break;
            nx->fused = true;
            qs_sim_ep_step_t *es = &st->ep.step[st->nchain];
            es->kind = nx->op == QS_OP_BATCHNORM ? QS_SIM_EP_BN : QS_SIM_EP_CLAMP;
            es->mean = nx->mean;
            es->scale = nx->own;
            es->beta = nx->beta;
            es->lo = nx->lo;
            es->hi = nx->hi;
            st->chain[st->nchain++] = j;
            st->ep.n = st->nchain;
            cur = j;
        }
    }
}

/* Slots (liveness-based reuse), fusion chains, workspace layout. */
static int plan_memory(qs_engine_t *e)
{
    const int n = e->nsteps;
    int *last = malloc((size_t)n * sizeof *last);
    int *readers = calloc((size_t)n, sizeof *readers);
    int64_t *cap = calloc((size_t)n, sizeof *cap);
    bool *busy = calloc((size_t)n, sizeof *busy);
    if (!last || !readers || !cap || !busy) {
        free(last);
        free(readers);
        free(cap);
        free(busy);
        return qs_error(QS_ERR_NOMEM, "engine: out of memory planning graph '%s'", e->g->name);
    }
    for (int i = 0; i < n; i++)
        last[i] = -1;
    for (int j = 0; j < n; j++)
        for (int k = 0; k < e->steps[j].nin; k++) {
            last[e->steps[j].in[k]] = j;
            readers[e->steps[j].in[k]]++;
        }
    last[e->g->output] = n; /* copied out after the last node */

    int nslots = 0;
    for (int j = 0; j < n; j++) {
        step_t *st = &e->steps[j];
        if (j > 0 && st->nin > 0 && in_place_op(st->op) && last[st->in[0]] == j) {
            st->slot = e->steps[st->in[0]].slot;
        } else {
            /* best fit among the free slots, else grow the largest free one, else a new one */
            int best = -1;
            for (int s = 0; s < nslots; s++) {
                if (busy[s])
                    continue;
                if (best < 0)
                    best = s;
                else if (cap[s] >= st->size && (cap[best] < st->size || cap[s] < cap[best]))
                    best = s;
                else if (cap[best] < st->size && cap[s] > cap[best])
                    best = s;
            }
            if (best < 0)
                best = nslots++;
            if (cap[best] < st->size)
                cap[best] = st->size;
            busy[best] = true;
            st->slot = best;
        }
        for (int k = 0; k < st->nin; k++) {
            int src = st->in[k];
            if (last[src] == j && e->steps[src].slot != st->slot)
                busy[e->steps[src].slot] = false;
        }
        if (last[j] < 0) /* nobody reads it: free once it ran (and its hook saw it) */
            busy[st->slot] = false;
    }

    for (int i = 0; i < n; i++) {
        e->steps[i].readers = readers[i];
        e->steps[i].last = last[i];
    }
    plan_chains(e);

    int64_t per_sample = 0;
    for (int s = 0; s < nslots; s++)
        per_sample += cap[s];
    int64_t b = QS_ENGINE_WS_BUDGET / (int64_t)sizeof(float) / (per_sample > 0 ? per_sample : 1);
    e->block = (int)(b < 1 ? 1 : b > QS_ENGINE_MAX_BLOCK ? QS_ENGINE_MAX_BLOCK : b);

    int64_t scratch = 0;
    for (int i = 0; i < n; i++) {
        const step_t *st = &e->steps[i];
        int64_t need = 0;
        if (st->kind == KIND_DW)
            need = (int64_t)qs_sim_conv_dw_scratch(&st->geo);
        else if (st->kind == KIND_GEMM)
            need = (int64_t)qs_sim_conv_gemm_scratch(&st->geo);
        if (need > scratch)
            scratch = need;
    }
    e->nslots = nslots;
    e->slot_off = malloc((size_t)(nslots > 0 ? nslots : 1) * sizeof *e->slot_off);
    if (!e->slot_off) {
        free(last);
        free(readers);
        free(cap);
        free(busy);
        return qs_error(QS_ERR_NOMEM, "engine: out of memory planning graph '%s'", e->g->name);
    }
    int64_t off = 0;
    for (int s = 0; s < nslots; s++) {
        e->slot_off[s] = off;
        off += round16(cap[s] * e->block);
    }
    e->scratch_off = off;
    e->ws_floats = off + round16(scratch) + 16;
    free(last);
    free(readers);
    free(cap);
    free(busy);
    return QS_OK;
}

/* Our threads are the parallelism: OpenBLAS must not start its own inside
 * them. Set once per process (the setting is global, and changing it while
 * another thread is inside OpenBLAS is not safe). */
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_single_thread(void) { openblas_set_num_threads(1); }

int qs_engine_create(const qs_graph_t *g, const qs_engine_opts_t *opts, qs_engine_t **out)
{
    if (!out)
        return qs_error(QS_ERR_INVALID, "qs_engine_create: no place for the result");
    *out = NULL;
    int rc = check_graph(g);
    if (rc < 0)
        return rc;
    qs_engine_t *e = calloc(1, sizeof *e);
    if (!e)
        return qs_error(QS_ERR_NOMEM, "engine: out of memory");
    e->g = g;
    e->pool = opts ? opts->pool : NULL;
    e->reference = opts ? opts->reference : false;
    e->nthreads = qs_pool_threads(e->pool);
    e->nsteps = g->nnodes;
    e->in_size = g->nodes[0].out_shape[0] * g->nodes[0].out_shape[1] * g->nodes[0].out_shape[2];
    if (!(e->steps = calloc((size_t)e->nsteps, sizeof *e->steps))) {
        free(e);
        return qs_error(QS_ERR_NOMEM, "engine: out of memory");
    }
    if ((rc = build_steps(e)) < 0 || (rc = plan_memory(e)) < 0)
        goto fail;
    if (!(e->ws = calloc((size_t)e->nthreads, sizeof *e->ws))) {
        rc = qs_error(QS_ERR_NOMEM, "engine: out of memory");
        goto fail;
    }
    for (int t = 0; t < e->nthreads; t++)
        if (!(e->ws[t] = qs_alloc((size_t)e->ws_floats * sizeof(float)))) {
            rc = qs_error(QS_ERR_NOMEM, "engine: out of memory for a %lld-byte workspace",
                          (long long)e->ws_floats * (long long)sizeof(float));
            goto fail;
        }
    if (!e->reference)
        pthread_once(&blas_once, blas_single_thread);
    *out = e;
    return QS_OK;
fail:
    qs_engine_free(e);
    return rc;
}

void qs_engine_free(qs_engine_t *e)
{
    if (!e)
        return;
    for (int i = 0; e->steps && i < e->nsteps; i++)
        qs_free(e->steps[i].own);
    for (int t = 0; e->ws && t < e->nthreads; t++)
        qs_free(e->ws[t]);
    free(e->ws);
    free(e->steps);
    free(e->slot_off);
    free(e->hooked);
    qs_tensor_free(e->out);
    free(e);
}

void qs_engine_set_hook(qs_engine_t *e, qs_engine_hook_fn fn, void *ctx)
{
    qs_engine_set_hook_at(e, fn, ctx, NULL);
}

int qs_engine_set_hook_at(qs_engine_t *e, qs_engine_hook_fn fn, void *ctx, const bool *nodes)
{
    if (!e)
        return qs_error(QS_ERR_INVALID, "qs_engine_set_hook_at: no engine");
    if (!e->hooked && !(e->hooked = malloc((size_t)e->nsteps * sizeof *e->hooked)))
        return qs_error(QS_ERR_NOMEM, "engine: out of memory");
    for (int i = 0; i < e->nsteps; i++)
        e->hooked[i] = fn && (!nodes || nodes[i]);
    e->hook = fn;
    e->hook_ctx = ctx;
    plan_chains(e);
    return QS_OK;
}

/* ---- forward -------------------------------------------------------------------------------- */

/* An elementwise node on sample s (x, y: the sample's input and output). */
static void run_elementwise(const step_t *st, const float *x, float *y)
{
    if (st->op == QS_OP_BATCHNORM)
        qs_sim_batchnorm(st->c, st->hw, x, st->mean, st->own, st->beta, y);
    else
        qs_sim_clamp(st->size, x, st->lo, st->hi, y);
}

/* Node st on sample s of the block, then its chain if asked (inside the
 * fast kernels, as their epilogue, or as separate passes). */
static void run_sample(const qs_engine_t *e, const step_t *st, float *ws, int64_t s, bool chain)
{
    const qs_sim_ep_t *ep = chain && st->nchain ? &st->ep : NULL;
    bool chain_done = false;
    float *y = ws + e->slot_off[st->slot] + s * st->size;
    float *scratch = ws + e->scratch_off;
    const step_t *i0 = &e->steps[st->in[0]];
    const float *x = ws + e->slot_off[i0->slot] + s * i0->size;
    switch (st->op) {
    case QS_OP_CONV2D:
        chain_done = st->kind != KIND_REF;
        if (st->kind == KIND_DW)
            qs_sim_conv_dw(&st->geo, x, st->w, st->b, ep, y, scratch);
        else if (st->kind == KIND_GEMM)
            qs_sim_conv_gemm(&st->geo, x, st->w, st->b, ep, y, scratch);
        else
            qs_sim_conv_ref(&st->geo, x, st->w, st->b, y);
        break;
    case QS_OP_LINEAR:
        chain_done = st->kind == KIND_LINEAR_BLAS;
        if (st->kind == KIND_LINEAR_BLAS)
            qs_sim_linear_blas(i0->size, st->size, x, st->w, st->b, ep, y);
        else
            qs_sim_linear_ref(i0->size, st->size, x, st->w, st->b, y);
        break;
    case QS_OP_BATCHNORM:
    case QS_OP_RELU:
    case QS_OP_RELU6:
    case QS_OP_CLIP: run_elementwise(st, x, y); break;
    case QS_OP_ADD:
    case QS_OP_CONCAT: {
        const float *xs[QS_MAX_INPUTS];
        int64_t sizes[QS_MAX_INPUTS];
        for (int k = 0; k < st->nin; k++) {
            const step_t *ik = &e->steps[st->in[k]];
            xs[k] = ws + e->slot_off[ik->slot] + s * ik->size;
            sizes[k] = ik->size;
        }
        if (st->op == QS_OP_ADD)
            qs_sim_add(st->size, st->nin, xs, y);
        else
            qs_sim_concat(st->nin, xs, sizes, y);
        break;
    }
    case QS_OP_MAXPOOL: qs_sim_maxpool(&st->geo, x, y); break;
    case QS_OP_AVGPOOL: qs_sim_avgpool(&st->geo, x, y); break;
    case QS_OP_GAP: qs_sim_gap(i0->c, i0->hw, x, y); break;
    case QS_OP_SOFTMAX: qs_sim_softmax(st->size, x, y); break;
    case QS_OP_FLATTEN:
    case QS_OP_RESHAPE:
        if (y != x)
            memcpy(y, x, (size_t)st->size * sizeof *y);
        break;
    default: break;
    }
    for (int c = 0; ep && !chain_done && c < st->nchain; c++)
        run_elementwise(&e->steps[st->chain[c]], y, y);
}

static int call_hook(const qs_engine_t *e, int i, float *y, int64_t sample0, int64_t count, int thread)
{
    const step_t *st = &e->steps[i];
    qs_tensor_t v;
    memset(&v, 0, sizeof v);
    v.dtype = QS_F32;
    v.ndim = 1 + st->ndim;
    v.shape[0] = count;
    for (int k = 0; k < st->ndim; k++)
        v.shape[1 + k] = st->shape[k];
    v.size = count * st->size;
    v.data = y;
    qs_clear_error();
    int rc = e->hook(e->hook_ctx, i, &v, sample0, thread);
    if (rc < 0 && qs_last_status() == QS_OK)
        node_error(e->g, i, rc, "the engine hook failed without a message");
    return rc < 0 ? rc : QS_OK;
}

/* Samples [s0, s0 + count) of x through the graph in workspace ws. */
static int run_block(qs_engine_t *e, const float *x, int64_t s0, int64_t count, int thread)
{
    float *ws = e->ws[thread];
    for (int i = 0; i < e->nsteps; i++) {
        const step_t *st = &e->steps[i];
        if (st->fused)
            continue;
        float *y = ws + e->slot_off[st->slot];
        if (i == 0)
            memcpy(y, x + s0 * st->size, (size_t)(count * st->size) * sizeof *y);
        else
            for (int64_t s = 0; s < count; s++)
                run_sample(e, st, ws, s, true);
        /* the value now in y is the chain's last node's output */
        int end = st->nchain ? st->chain[st->nchain - 1] : i;
        if (e->hook && e->hooked[end]) {
            int rc = call_hook(e, end, y, s0, count, thread);
            if (rc < 0)
                return rc;
        }
    }
    const step_t *o = &e->steps[e->g->output];
    memcpy(qs_f32(e->out) + s0 * o->size, ws + e->slot_off[o->slot], (size_t)(count * o->size) * sizeof(float));
    return QS_OK;
}

typedef struct {
    qs_engine_t *e;
    const float *x;
    int64_t n;
} fwd_ctx_t;

static int run_blocks(void *ctx, int64_t b0, int64_t b1, int thread)
{
    fwd_ctx_t *f = ctx;
    for (int64_t b = b0; b < b1; b++) {
        int64_t s0 = b * f->e->block;
        int64_t count = f->n - s0 < f->e->block ? f->n - s0 : f->e->block;
        int rc = run_block(f->e, f->x, s0, count, thread);
        if (rc < 0)
            return rc;
    }
    return QS_OK;
}

int qs_engine_forward(qs_engine_t *e, const qs_tensor_t *x, const qs_tensor_t **out)
{
    if (!e || !x || !out)
        return qs_error(QS_ERR_INVALID, "qs_engine_forward: no engine, input or output");
    *out = NULL;
    const qs_graph_t *g = e->g;
    const int64_t *is = g->nodes[0].out_shape;
    if (x->dtype != QS_F32 || x->ndim != 4 || x->shape[1] != is[0] || x->shape[2] != is[1] || x->shape[3] != is[2]) {
        char s[128];
        return qs_error(QS_ERR_SHAPE, "engine: the input is %s %s, but model '%s' takes float32 [N, %lld, %lld, %lld]",
                        qs_dtype_name(x->dtype), qs_shape_str(x->ndim, x->shape, s, sizeof s), g->name,
                        (long long)is[0], (long long)is[1], (long long)is[2]);
    }
    const int64_t n = x->shape[0];
    const int64_t ncls = g->num_classes;
    if (!e->out || n > e->out_cap) {
        int64_t cap = n > 1 ? n : 1;
        int64_t shape[2] = {cap, ncls};
        qs_tensor_t *t = qs_tensor_create(QS_F32, 2, shape);
        if (!t)
            return qs_error_context("engine: output of %lld samples: ", (long long)n);
        qs_tensor_free(e->out);
        e->out = t;
        e->out_cap = cap;
    }
    e->out->shape[0] = n;
    e->out->size = n * ncls;
    if (n > 0) {
        fwd_ctx_t f = {e, qs_f32(x), n};
        int64_t nblocks = (n + e->block - 1) / e->block;
        int rc = qs_pool_for(e->pool, nblocks, 1, run_blocks, &f);
        if (rc < 0)
            return rc;
    }
    *out = e->out;
    return QS_OK;
}

/* ---- evaluation ----------------------------------------------------------------------------- */

/* The rank of label l among the logits: the classes with a larger logit,
 * plus those with an equal logit and a smaller index (a stable descending
 * sort, so a tie goes to the first class, as argmax picks it); a NaN logit
 * for l ranks last, a NaN elsewhere is never larger. l is in the top k when
 * its rank is below k. */
int64_t qs_sim_rank(const float *logits, int ncls, int label)
{
    const float v = logits[label];
    if (v != v)
        return ncls;
    int64_t r = 0;
    for (int j = 0; j < ncls; j++)
        r += logits[j] > v || (j < label && logits[j] == v);
    return r;
}

int qs_sim_check_eval_data(const qs_graph_t *g, const qs_dataset_t *d)
{
    if (d->n < 1)
        return qs_error(QS_ERR_INVALID, "eval: dataset '%s' has no images", d->source);
    if (d->c != g->in_c || d->h != g->in_h || d->w != g->in_w)
        return qs_error(QS_ERR_SHAPE, "eval: dataset '%s' has %lldx%lldx%lld images but model '%s' takes %lldx%lldx%lld",
                        d->source, (long long)d->c, (long long)d->h, (long long)d->w, g->name, (long long)g->in_c,
                        (long long)g->in_h, (long long)g->in_w);
    if (!d->labels)
        return qs_error(QS_ERR_INVALID, "eval: dataset '%s' has no labels", d->source);
    for (int64_t i = 0; i < d->n; i++)
        if (d->labels[i] < 0 || d->labels[i] >= g->num_classes)
            return qs_error(QS_ERR_INVALID, "eval: image %lld of '%s' has label %d, but model '%s' has %d classes",
                            (long long)i, d->source, (int)d->labels[i], g->name, g->num_classes);
    return QS_OK;
}

int qs_eval(const qs_graph_t *g, const qs_dataset_t *d, const qs_engine_opts_t *opts, int64_t batch,
            qs_progress_cb_t *progress, qs_eval_t *out)
{
    if (!g || !d || !out)
        return qs_error(QS_ERR_INVALID, "qs_eval: no graph, dataset or result");
    memset(out, 0, sizeof *out);
    if (batch <= 0)
        batch = 256;
    int rc = qs_sim_check_eval_data(g, d);
    if (rc < 0)
        return rc;
    if (batch > d->n)
        batch = d->n;

    double t0 = qs_now_s();
    qs_progress_begin(progress);
    qs_engine_t *e = NULL;
    rc = qs_engine_create(g, opts, &e);
    if (rc < 0)
        return rc;
    int64_t shape[4] = {batch, d->c, d->h, d->w};
    qs_tensor_t *x = qs_tensor_create(QS_F32, 4, shape);
    int32_t *labels = malloc((size_t)batch * sizeof *labels);
    if (!x || !labels) {
        rc = qs_error(QS_ERR_NOMEM, "eval: out of memory for a batch of %lld images", (long long)batch);
        goto done;
    }
    int64_t top1 = 0, top5 = 0;
    for (int64_t first = 0; first < d->n; first += batch) {
        int64_t count = d->n - first < batch ? d->n - first : batch;
        qs_tensor_t view = *x; /* the batch buffer seen as [count, C, H, W] */
        view.shape[0] = count;
        view.size = count * d->c * d->h * d->w;
        if ((rc = qs_dataset_batch(d, g, first, NULL, count, &view, labels)) < 0)
            goto done;
        const qs_tensor_t *y;
        if ((rc = qs_engine_forward(e, &view, &y)) < 0)
            goto done;
        const float *l = qs_f32(y);
        for (int64_t s = 0; s < count; s++) {
            int64_t r = qs_sim_rank(l + s * g->num_classes, g->num_classes, labels[s]);
            top1 += r < 1;
            top5 += r < 5;
        }
        if ((rc = qs_progress_report(progress, "eval", first + count, d->n, NULL)) < 0)
            goto done;
    }
    out->images = d->n;
    out->top1 = (double)top1 / (double)d->n;
    out->top5 = (double)top5 / (double)d->n;
    out->seconds = qs_now_s() - t0;
    out->img_s = out->seconds > 0.0 ? (double)d->n / out->seconds : 0.0;
done:
    qs_engine_free(e);
    qs_tensor_free(x);
    free(labels);
    return rc < 0 ? rc : QS_OK;
}
