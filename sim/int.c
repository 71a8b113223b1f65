/* sim/int.c — the bit-exact integer engine (docs/engine.md, "The integer
 * engine"): integer codes at every quantization point, conv2d/linear dot
 * products in a modelled accumulator (quant/acc.c) and requantization
 * (quant/requant.c), add/concat/pools rescaled to their output grid, and
 * relu/relu6/clip as clamps on codes.
 *
 * A conv2d/linear output channel takes one of four paths:
 *  - fast: a bound (|x - z_x|max · Σ|w - z_w| + |b|, or its expand-form
 *    counterpart) proves that no partial sum in any order can leave the
 *    register, so every overflow mode gives the exact sum: int16 x int16
 *    -> int32 multiply-adds over pairs of terms (vpmaddwd), four channels
 *    by sixteen output positions at a time;
 *  - narrow: registers of at most 31 bits without chunks in the subtract
 *    form, whose products and exact sums fit int32: the documented order
 *    with the register rule in int32 lanes across output positions;
 *  - order-exact: the documented term order (docs/arithmetic.md,
 *    "Accumulation order") with the register rules, vectorized across
 *    output positions in int64 lanes (chunks, the expand form, wider
 *    registers, --acc-trace);
 *  - scalar: qs_acc_dot one output at a time (float accumulators, registers
 *    past 62 bits, operands past int16).
 * All give what qs_acc_dot gives (tests/test_int.c checks it). */
#include "sim/sim_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define QS_INT_AVX2 1
#endif

typedef enum { K_NONE = 0, K_INPUT, K_DOT, K_RESCALE, K_MAXPOOL, K_AVG, K_COPY, K_SOFTMAX } kind_t;

/* the paths of an output channel (top of the file) */
/* PATH_POPCOUNT: sign-basis weights (ls-1 ±1, ls-t ±1/0) as bit masks, the
 * activation codes as bit planes, Σ_j 2^j (popcount(X_j & W+) − popcount(X_j & W−)):
 * how binary and bit-serial hardware computes them (XNOR-popcount is the
 * one-plane case); taken when the bound proves the sum exact. */
enum { PATH_FAST = 0, PATH_ORDERED = 1, PATH_SCALAR = 2, PATH_NARROW = 3, PATH_POPCOUNT = 4 };

/* one input of a rescale: its code minus z, times m */
typedef struct {
    double m64;
    float m32;
    int32_t m0;
    int shift;
    int32_t z;
} rs_in_t;

typedef struct {
    const qs_requant_t *rq;
    int32_t zy, lo, hi;
} rs_out_t;

typedef struct {
    kind_t kind;
    int node, dst;          /* dst: the node whose codes this step writes (a chain's last node) */
    int nin;
    int in[QS_MAX_INPUTS];  /* the nodes whose codes it reads */
    int64_t in_size[QS_MAX_INPUTS], out_size;
    qs_acc_t acc;
    qs_requant_t rq;
    /* K_DOT */
    qs_sim_conv_t geo;
    int64_t K, P, Ppad, KP, ocg, plane; /* plane: input codes of one group */
    int32_t *gidx;          /* [K][P]: index into the group's plane, plane for a padding tap */
    int16_t *w16;           /* [O][2 KP]: w - z_w (fast16 only) */
    const int32_t *wraw;    /* [O][K]: the weight codes */
    int32_t *wsign;         /* ls-1, ls-t: the codes as signs ±1 (0), which wraw points to */
    uint64_t *wpos, *wneg;  /* ls-1, ls-t: [O][KW] masks of the +1 and −1 weights */
    int64_t KW;             /* 64-bit words of K */
    int64_t *wsum;          /* [O]: Σ w */
    int32_t xmin;           /* the input's smallest code; planes hold x − xmin */
    int xplanes;            /* bits of x − xmin */
    int32_t *zw;            /* [O] */
    int64_t *bias;          /* [O] int32 codes, 0 without */
    float *fbias;           /* [O] the float bias for requant bias=float, or NULL */
    qs_rq_channel_t *rqc;   /* [O] */
    uint8_t *path;          /* [O]: PATH_* */
    int32_t zx;
    bool fast16;
    bool narrow;            /* some channel takes PATH_NARROW: the columns layout is built */
    bool pairs;             /* some channel takes PATH_FAST or PATH_ORDERED: the pairs layout is built */
    bool pointwise;         /* 1x1, stride 1, no padding: the padded plane is the columns layout */
    bool direct;            /* depthwise: fast channels read the padded plane directly */
    /* rescales and pools */
    rs_out_t out;
    rs_in_t rin[QS_MAX_INPUTS];
    rs_in_t *rcount;        /* K_AVG: per window count 1..kh·kw */
    /* K_INPUT */
    qs_quantizer_t aq;
    const qs_qparams_t *ap;
    /* every step: the output grid, for dequantizing the network output */
    float s_out;
    int32_t z_out;
} step_t;

typedef struct {
    int64_t outputs, overflowed, events, fast, max_abs, max_partial;
} lstat_t;

typedef struct {
    int16_t *xpad;  /* a group's plane of x - z_x with its padding (0) */
    int16_t *xp;    /* [KP][Ppad][2] */
    int16_t *xc;    /* [K][Ppad]: the columns, for the narrow path */
    const int16_t *cols; /* the columns of the current group: xc, xpad (pointwise) or xp (linear) */
    int64_t ld;     /* ... and their row stride */
    int32_t *acc32; /* [4][Ppad] */
    int32_t *n32;   /* narrow path lanes: register, exact sum, events [3][Ppad] */
    int *olist;     /* a group's fast channels */
    bool avx2;      /* the AVX2 kernels */
    int64_t *r, *e, *c, *mx, *ev, *sx; /* order-exact lanes [Ppad] */
    int64_t *row, *t; /* a channel's accumulators, the terms [Ppad] */
    int32_t *col;   /* scalar path: one column */
    lstat_t *st;    /* per node */
} scratch_t;

struct qs_int {
    const qs_qnet_t *q;
    const qs_graph_t *g;
    qs_int_config_t cfg;
    int n;
    step_t *step;
    qs_pool_t *pool;
    int nthreads;
    scratch_t *scr;
    qs_tensor_t **codes;    /* per node with a buffer: [cap, out_size] */
    qs_tensor_t **accs;     /* keep_acc: per conv2d/linear node, [cap, O·P] */
    int64_t cap;
    qs_tensor_t *out;
    const qs_tensor_t *x;
    int64_t index0, count;
    qs_int_layer_t *layer;
    float s_y;              /* the grid of the codes the output is read from */
    int32_t z_y;
};

/* ---- configuration ------------------------------------------------------------------------------ */

void qs_int_config_default(qs_int_config_t *c)
{
    memset(c, 0, sizeof *c);
    qs_acc_default(&c->acc);
    qs_requant_default(&c->rq);
}

int qs_int_config_override(qs_int_config_t *c, const char *arg, const char *what)
{
    what = what && *what ? what : "--layer";
    const char *colon = arg ? strchr(arg, ':') : NULL;
    if (!colon || colon == arg || (size_t)(colon - arg) >= QS_NAME_MAX)
        return qs_error(QS_ERR_INVALID, "%s '%s': expected NAME:acc=SPEC or NAME:requant=SPEC", what, arg ? arg : "");
    const char *spec = colon + 1;
    bool rq;
    if (strncmp(spec, "acc=", 4) == 0)
        rq = false;
    else if (strncmp(spec, "requant=", 8) == 0)
        rq = true;
    else
        return qs_error(QS_ERR_INVALID, "%s '%s': the spec after ':' starts with acc= or requant= for the integer "
                        "engine", what, arg);
    if (c->noverrides >= QS_INT_MAX_OVERRIDES)
        return qs_error(QS_ERR_INVALID, "%s: at most %d accumulator/requantizer overrides", what, QS_INT_MAX_OVERRIDES);
    if (strlen(spec) >= QS_QSPEC_MAX)
        return qs_error(QS_ERR_INVALID, "%s '%s': spec longer than %d characters", what, arg, QS_QSPEC_MAX - 1);
    char src[QS_NAME_MAX + 16];
    snprintf(src, sizeof src, "%s %.*s", what, (int)(colon - arg), arg);
    qs_acc_t a = c->acc;
    qs_requant_t r = c->rq;
    int rc = rq ? qs_requant_parse(spec, src, &r) : qs_acc_parse(spec, src, &a);
    if (rc < 0)
        return rc;
    qs_int_override_t *o = &c->ov[c->noverrides++];
    memset(o, 0, sizeof *o);
    memcpy(o->layer, arg, (size_t)(colon - arg));
    o->requant = rq;
    snprintf(o->spec, sizeof o->spec, "%s", spec);
    return QS_OK;
}

/* ---- preparation ------------------------------------------------------------------------------- */

static int node_error(const qs_int_t *e, int i, const char *fmt, const char *detail)
{
    char msg[256];
    snprintf(msg, sizeof msg, fmt, detail ? detail : "");
    return qs_error(QS_ERR_UNSUPPORTED, "integer engine: model '%s', node '%s' (%s): %s", e->g->name,
                    e->g->nodes[i].name, qs_op_name(e->g->nodes[i].op), msg);
}

/* The grid of node j's codes: its point's (or the shared source's) parameters. */
static int grid_of(const qs_int_t *e, int j, float *s, int32_t *z, int64_t *qmin, int64_t *qmax,
                   const qs_quantizer_t **qz)
{
    const qs_qlayer_t *L = e->q->layer;
    int p = L[j].point;
    if (p >= 0 && L[p].ashare >= 0)
        p = L[p].ashare;
    if (p < 0 || !L[p].aq || !L[p].ap)
        return node_error(e, j, "%sits output is not quantized: the integer engine needs every activation on a "
                          "grid (drop float activations for this node)", NULL);
    if (L[p].ap->count != 1)
        return node_error(e, j, "%sper-channel activations: the integer engine needs per-tensor activation grids",
                          NULL);
    if (L[p].aquant.grid != QS_GRID_UNIFORM)
        return node_error(e, j, "%sits output is on a non-uniform grid: the integer engine needs uniform activation "
                          "grids (non-uniform activations run in fake-quant)", NULL);
    *s = L[p].ap->scale[0];
    *z = L[p].ap->zero_point[0];
    qs_quantizer_code_range(&L[p].aquant, qmin, qmax);
    if (qz)
        *qz = &L[p].aquant;
    return QS_OK;
}

static int32_t code_of(const qs_quantizer_t *q, float v, float s, int32_t z)
{
    qs_quantizer_t d = *q;
    if (d.round.mode == QS_ROUND_STOCHASTIC)
        d.round.mode = QS_ROUND_NEAREST_EVEN;
    return qs_quantize_one(&d, v, s, z, 0, NULL);
}

/* The output grid of step st (node i, writing dst) and the clamps of the chain between. */
static int set_out(qs_int_t *e, step_t *st, int i)
{
    float s = 1.0f;
    int32_t z = 0;
    int64_t qmin, qmax;
    const qs_quantizer_t *qz;
    int rc = grid_of(e, st->dst, &s, &z, &qmin, &qmax, &qz);
    if (rc < 0)
        return rc;
    int64_t lo = qmin, hi = qmax;
    for (int j = i; j <= st->dst; j++) {
        const qs_node_t *nd = &e->g->nodes[j];
        if (j != i && e->q->layer[j].point != st->dst)
            continue;
        float a = -INFINITY, b = INFINITY;
        if (nd->op == QS_OP_RELU)
            a = 0.0f;
        else if (nd->op == QS_OP_RELU6)
            a = 0.0f, b = 6.0f;
        else if (nd->op == QS_OP_CLIP)
            a = nd->clip_min, b = nd->clip_max;
        else if (nd->op == QS_OP_BATCHNORM)
            return node_error(e, j, "%sa batchnorm that could not be folded has no integer form", NULL);
        else
            continue;
        if (a > -INFINITY) {
            int64_t c = code_of(qz, a, s, z);
            lo = c > lo ? c : lo;
        }
        if (b < INFINITY) {
            int64_t c = code_of(qz, b, s, z);
            hi = c < hi ? c : hi;
        }
    }
    if (lo > hi)
        lo = hi;
    st->out.rq = &st->rq;
    st->out.zy = z;
    st->out.lo = (int32_t)lo;
    st->out.hi = (int32_t)hi;
    st->s_out = s;
    st->z_out = z;
    return QS_OK;
}

static void rs_input(const qs_requant_t *rq, double m, rs_in_t *r, int32_t z)
{
    memset(r, 0, sizeof *r);
    r->z = z;
    r->m64 = m;
    r->m32 = (float)m;
    if (rq->kind == QS_RQ_FIXED)
        qs_quantize_multiplier(m, rq->single, &r->m0, &r->shift);
    else if (rq->kind == QS_RQ_SHIFT)
        r->shift = (int)floor(log2(m) + 0.5);
}

int qs_sim_int_resolve(const qs_int_config_t *c, const char *layer, qs_acc_t *acc, qs_requant_t *rq)
{
    *acc = c->acc;
    *rq = c->rq;
    for (int k = 0; k < c->noverrides; k++) {
        const qs_int_override_t *o = &c->ov[k];
        if (strcmp(o->layer, layer) != 0)
            continue;
        char src[QS_NAME_MAX + 16];
        snprintf(src, sizeof src, "--layer %s", o->layer);
        int rc = o->requant ? qs_requant_parse(o->spec, src, rq) : qs_acc_parse(o->spec, src, acc);
        if (rc < 0)
            return rc;
    }
    return QS_OK;
}

static int resolve_layer_cfg(qs_int_t *e, int i, step_t *st)
{
    return qs_sim_int_resolve(&e->cfg, e->g->nodes[i].name, &st->acc, &st->rq);
}

/* the widest |x - z_x| of the input grid */
static int64_t max_operand(int64_t qmin, int64_t qmax, int32_t z)
{
    int64_t a = llabs(qmin - z), b = llabs(qmax - z);
    return a > b ? a : b;
}

static int64_t sat_add(int64_t a, int64_t b) { return a > INT64_MAX - b ? INT64_MAX : a + b; }
static int64_t sat_mul(int64_t a, int64_t b) { return b != 0 && a > INT64_MAX / b ? INT64_MAX : a * b; }

static int prep_dot(qs_int_t *e, int i, step_t *st, qs_int_layer_t *ls)
{
    const qs_qlayer_t *L = &e->q->layer[i];
    const qs_node_t *nd = &e->g->nodes[i];
    int in = nd->inputs[0];
    if (!L->wq || !L->wp || !L->wcodes)
        return node_error(e, i, "%sits weights are in float: the integer engine needs quantized weights", NULL);
    if (L->wquant.gran.kind == QS_GRAN_GROUP)
        return node_error(e, i, "%sper-group weight scales have no single s_w per output channel to requantize with",
                          NULL);
    const char *why = qs_grid_int_reason(&L->wquant);
    if (why) {
        char g[32], msg[256];
        qs_grid_name(&L->wquant, g, sizeof g);
        snprintf(msg, sizeof msg, "weights on grid %s: %s", g, why);
        return node_error(e, i, "%s", msg);
    }
    float sx;
    int32_t zx;
    int64_t xmin, xmax;
    const qs_quantizer_t *xq;
    int rc = grid_of(e, in, &sx, &zx, &xmin, &xmax, &xq);
    if (rc < 0)
        return rc;
    st->kind = K_DOT;
    st->nin = 1;
    st->in[0] = in;
    st->dst = L->point;
    if ((rc = set_out(e, st, i)) < 0)
        return rc;
    qs_sim_conv_t *G = &st->geo;
    memset(G, 0, sizeof *G);
    const qs_node_t *innd = &e->g->nodes[in];
    if (nd->op == QS_OP_CONV2D) {
        G->c = innd->out_shape[0], G->h = innd->out_shape[1], G->w = innd->out_shape[2];
        G->oc = nd->out_shape[0], G->oh = nd->out_shape[1], G->ow = nd->out_shape[2];
        G->kh = nd->kh, G->kw = nd->kw, G->sh = nd->stride_h, G->sw = nd->stride_w;
        G->dh = nd->dil_h, G->dw = nd->dil_w, G->pt = nd->pad_top, G->pl = nd->pad_left;
        G->pb = nd->pad_bottom, G->pr = nd->pad_right, G->groups = nd->groups;
    } else {
        G->c = nd->weight->shape[1], G->h = G->w = 1, G->oc = nd->weight->shape[0], G->oh = G->ow = 1;
        G->kh = G->kw = G->sh = G->sw = G->dh = G->dw = 1, G->groups = 1;
    }
    const int64_t O = G->oc, cg = G->c / G->groups;
    st->ocg = O / G->groups;
    st->K = cg * G->kh * G->kw;
    st->P = G->oh * G->ow;
    st->Ppad = nd->op == QS_OP_LINEAR ? 1 : (st->P + 15) / 16 * 16;
    st->KP = (st->K + 1) / 2;
    st->plane = cg * G->h * G->w;
    st->zx = zx;
    if ((rc = resolve_layer_cfg(e, i, st)) < 0)
        return rc;
    const int64_t K = st->K, P = st->P;
    st->gidx = malloc((size_t)(K * P) * sizeof *st->gidx);
    st->w16 = calloc((size_t)(O * 2 * st->KP), sizeof *st->w16);
    st->zw = malloc((size_t)O * sizeof *st->zw);
    st->bias = calloc((size_t)O, sizeof *st->bias);
    st->rqc = calloc((size_t)O, sizeof *st->rqc);
    st->path = calloc((size_t)O, 1);
    if (!st->gidx || !st->w16 || !st->zw || !st->bias || !st->rqc || !st->path)
        return qs_error(QS_ERR_NOMEM, "integer engine: out of memory for node '%s'", nd->name);
    for (int64_t c = 0; c < cg; c++)
        for (int ky = 0; ky < G->kh; ky++)
            for (int kx = 0; kx < G->kw; kx++) {
                int64_t k = (c * G->kh + ky) * G->kw + kx;
                for (int64_t oy = 0; oy < G->oh; oy++)
                    for (int64_t ox = 0; ox < G->ow; ox++) {
                        int64_t iy = oy * G->sh - G->pt + ky * G->dh, ix = ox * G->sw - G->pl + kx * G->dw;
                        bool pad = iy < 0 || iy >= G->h || ix < 0 || ix >= G->w;
                        st->gidx[k * P + oy * G->ow + ox] = (int32_t)(pad ? st->plane : (c * G->h + iy) * G->w + ix);
                    }
            }
    /* weights, bias, requantization, bounds and guaranteed widths */
    st->wraw = qs_i32(L->wcodes);
    const qs_qparams_t *wp = L->wp;
    if (L->wquant.grid != QS_GRID_UNIFORM) { /* qs_grid_int_reason let through only one-scale sign bases */
        /* sign-basis levels ±v (and 0): integer weights ±1 (0) at scale v, zero point 0 */
        const int64_t n = L->wcodes->size;
        if (!(st->wsign = malloc((size_t)n * sizeof *st->wsign)))
            return qs_error(QS_ERR_NOMEM, "integer engine: out of memory for node '%s'", nd->name);
        /* from the level itself: ±v is ±1 and 0 is 0 (an all-zero channel has every level 0) */
        const int32_t *c = qs_i32(L->wcodes);
        const int64_t per = n / O;
        for (int64_t k = 0; k < n; k++) {
            const int64_t slice = wp->count == 1 ? 0 : k / per;
            const float lv = wp->levels[slice * wp->nlevels + c[k]];
            st->wsign[k] = (lv > 0) - (lv < 0);
        }
        st->wraw = st->wsign;
        st->KW = (K + 63) / 64;
        st->wpos = calloc((size_t)(O * st->KW), sizeof *st->wpos);
        st->wneg = calloc((size_t)(O * st->KW), sizeof *st->wneg);
        st->wsum = calloc((size_t)O, sizeof *st->wsum);
        if (!st->wpos || !st->wneg || !st->wsum)
            return qs_error(QS_ERR_NOMEM, "integer engine: out of memory for node '%s'", nd->name);
        for (int64_t o = 0; o < O; o++)
            for (int64_t k = 0; k < K; k++) {
                int32_t w = st->wsign[o * K + k];
                uint64_t bit = UINT64_C(1) << (k % 64);
                if (w > 0)
                    st->wpos[o * st->KW + k / 64] |= bit;
                else if (w < 0)
                    st->wneg[o * st->KW + k / 64] |= bit;
                st->wsum[o] += w;
            }
        st->xmin = (int32_t)xmin;
        st->xplanes = qs_acc_bits_for(xmax - xmin) - 1; /* unsigned bits of the span */
        if (st->xplanes < 1)
            st->xplanes = 1;
    }
    bool bias_float = st->rq.kind == QS_RQ_FLOAT32 && st->rq.float_bias;
    if (nd->bias && !bias_float && !L->bcodes)
        return node_error(e, i, "%sits bias is not quantized to int32 at s_w*s_x (quantize it, or requantize with "
                          "bias=float)", NULL);
    if (nd->bias && bias_float) {
        st->fbias = malloc((size_t)O * sizeof *st->fbias);
        if (!st->fbias)
            return qs_error(QS_ERR_NOMEM, "integer engine: out of memory for node '%s'", nd->name);
        memcpy(st->fbias, qs_f32(nd->bias), (size_t)O * sizeof *st->fbias);
    }
    float sy = st->s_out;
    const int64_t maxx = max_operand(xmin, xmax, zx), maxraw = llabs(xmin) > llabs(xmax) ? llabs(xmin) : llabs(xmax);
    bool x_signed = xmin < 0;
    int64_t wmin, wmax;
    qs_quantizer_code_range(&L->wquant, &wmin, &wmax);
    st->fast16 = maxx <= 32767;
    ls->k = K;
    ls->channels = (int)O;
    const qs_acc_t *a = &st->acc;
    bool fast_any = false;
    for (int64_t o = 0; o < O; o++) {
        int64_t pi = wp->count == 1 ? 0 : o;
        st->zw[o] = wp->zero_point[pi];
        const int32_t *wr = st->wraw + o * K;
        int64_t l1 = 0, l1raw = 0, sumw = 0, maxw = 0;
        for (int64_t k = 0; k < K; k++) {
            int64_t d = (int64_t)wr[k] - st->zw[o];
            l1 += llabs(d);
            maxw = llabs(d) > maxw ? llabs(d) : maxw;
            l1raw += llabs((int64_t)wr[k]);
            sumw += wr[k];
            if (d < -32767 || d > 32767)
                st->fast16 = false;
            else
                st->w16[o * 2 * st->KP + k] = (int16_t)d;
        }
        if (L->bcodes && !bias_float) /* bias=float: added at requantization, not in the accumulator */
            st->bias[o] = qs_i32(L->bcodes)[o];
        if ((rc = qs_requant_channel(&st->rq, sx, wp->scale[pi], sy, st->out.zy, st->out.lo, st->out.hi, &st->rqc[o])) < 0)
            return qs_error_context("integer engine, node '%s', channel %lld: ", nd->name, (long long)o);
        st->rqc[o].r = &st->rq;
        /* the bound on every partial sum, in any order */
        int64_t zwv = llabs((int64_t)st->zw[o]), zxv = llabs((int64_t)zx), bb = llabs(st->bias[o]);
        int64_t prods, bound;
        if (a->zp_form == QS_ZP_SUBTRACT || (zx == 0 && st->zw[o] == 0)) {
            prods = sat_mul(maxx, l1);
            bound = sat_add(prods, bb);
        } else {
            prods = sat_mul(maxraw, l1raw);
            bound = sat_add(sat_add(sat_add(prods, sat_mul(sat_mul(zwv, K), maxraw)), sat_mul(zxv, llabs(sumw))),
                            sat_add(sat_mul(K, zxv * zwv), bb));
        }
        bool safe;
        if (a->kind == QS_ACC_FLOAT) {
            int emax = (1 << (a->exp_bits - 1)) - 1;
            safe = a->man_bits + 1 <= emax && bound <= (INT64_C(1) << (a->man_bits + 1));
        } else {
            safe = a->overflow == QS_ACC_EXACT || a->bits >= 64 || bound <= (INT64_C(1) << (a->bits - 1)) - 1;
            if (a->chunk > 0 && a->chunk_overflow != QS_ACC_EXACT && a->chunk_bits < 64)
                safe = safe && prods <= (INT64_C(1) << (a->chunk_bits - 1)) - 1;
        }
        ls->safe_channels += safe;
        bool order_ok = a->kind == QS_ACC_INT && a->bits <= 62 && (a->chunk == 0 || a->chunk_bits <= 62) &&
                        bound <= (INT64_C(1) << 61) && st->fast16 && maxraw <= 32767 + 65536;
        /* the narrow path: every product, partial register value plus product and exact sum fit int32 */
        bool narrow_ok = a->kind == QS_ACC_INT && a->overflow != QS_ACC_EXACT && a->bits <= 31 && a->chunk == 0 &&
                         (a->zp_form == QS_ZP_SUBTRACT || (zx == 0 && st->zw[o] == 0)) && st->fast16 &&
                         sat_mul(maxx, maxw) <= (INT64_C(1) << 30) && prods <= INT32_MAX;
        if (st->wpos && safe && a->kind == QS_ACC_INT && !e->cfg.trace)
            st->path[o] = PATH_POPCOUNT;
        else if (safe && st->fast16 && bound <= INT32_MAX && !e->cfg.trace)
            st->path[o] = PATH_FAST;
        else if (narrow_ok && !e->cfg.trace)
            st->path[o] = PATH_NARROW;
        else
            st->path[o] = order_ok ? PATH_ORDERED : PATH_SCALAR;
        st->narrow |= st->path[o] == PATH_NARROW;
        st->pairs |= st->path[o] == PATH_ORDERED;
        fast_any |= st->path[o] == PATH_FAST;
        int wd = qs_acc_width_datatype(K, xq->bits, L->wquant.bits, x_signed);
        int wa = qs_acc_width_a2q(l1, xq->bits, x_signed);
        int wq = qs_acc_width_a2qplus(l1, xq->bits);
        ls->width_datatype = wd > ls->width_datatype ? wd : ls->width_datatype;
        ls->width_a2q = wa > ls->width_a2q ? wa : ls->width_a2q;
        ls->width_a2qplus = wq > ls->width_a2qplus ? wq : ls->width_a2qplus;
    }
    if (!st->fast16) {
        for (int64_t o = 0; o < O; o++)
            if (st->path[o] != PATH_POPCOUNT)
                st->path[o] = PATH_SCALAR;
        st->narrow = st->pairs = false;
    }
    st->direct = nd->op == QS_OP_CONV2D && cg == 1 && st->ocg == 1 && G->sw == 1; /* strided: pairs are faster */
    st->pairs |= fast_any && !st->direct;
    st->pointwise = G->kh == 1 && G->kw == 1 && G->sh == 1 && G->sw == 1 && G->pt == 0 && G->pl == 0 &&
                    G->pb == 0 && G->pr == 0 && nd->op == QS_OP_CONV2D;
    return QS_OK;
}

static int prep_rescale(qs_int_t *e, int i, step_t *st)
{
    const qs_node_t *nd = &e->g->nodes[i];
    st->kind = K_RESCALE;
    st->dst = e->q->layer[i].point;
    int rc;
    if ((rc = resolve_layer_cfg(e, i, st)) < 0 || (rc = set_out(e, st, i)) < 0)
        return rc;
    st->nin = nd->ninputs;
    for (int k = 0; k < nd->ninputs; k++) {
        float s = 1.0f;
        int32_t z = 0;
        int64_t a, b;
        st->in[k] = nd->inputs[k];
        if ((rc = grid_of(e, nd->inputs[k], &s, &z, &a, &b, NULL)) < 0)
            return rc;
        rs_input(&st->rq, (double)s / (double)st->s_out, &st->rin[k], z);
    }
    return QS_OK;
}

static int prepare(qs_int_t *e)
{
    const qs_graph_t *g = e->g;
    const qs_qlayer_t *L = e->q->layer;
    for (int i = 0; i < g->nnodes; i++) {
        const qs_node_t *nd = &g->nodes[i];
        step_t *st = &e->step[i];
        st->node = st->dst = i;
        st->nin = nd->ninputs;
        for (int k = 0; k < nd->ninputs; k++)
            st->in[k] = nd->inputs[k];
        int rc = QS_OK;
        /* a relu/clip whose input belongs to the same chain is done by the chain's head */
        bool chained = L[i].point >= 0 && nd->ninputs == 1 && L[nd->inputs[0]].point == L[i].point;
        switch (nd->op) {
        case QS_OP_INPUT: {
            float s = 1.0f;
            int32_t z = 0;
            int64_t a, b;
            if ((rc = grid_of(e, i, &s, &z, &a, &b, NULL)) < 0)
                return rc;
            st->kind = K_INPUT;
            qs_sim_act_batch_quantizer(&L[i].aquant, &st->aq);
            st->ap = L[i].ap;
            st->s_out = s, st->z_out = z;
            break;
        }
        case QS_OP_CONV2D:
        case QS_OP_LINEAR: rc = prep_dot(e, i, st, &e->layer[i]); break;
        case QS_OP_ADD:
        case QS_OP_CONCAT: rc = prep_rescale(e, i, st); break;
        case QS_OP_RELU:
        case QS_OP_RELU6:
        case QS_OP_CLIP:
        case QS_OP_BATCHNORM:
            if (!chained)
                rc = nd->op == QS_OP_BATCHNORM
                         ? node_error(e, i, "%sa batchnorm that could not be folded has no integer form", NULL)
                         : prep_rescale(e, i, st);
            break;
        case QS_OP_MAXPOOL:
        case QS_OP_FLATTEN:
        case QS_OP_RESHAPE: {
            float s = 1.0f;
            int32_t z = 0;
            int64_t a, b;
            if ((rc = grid_of(e, i, &s, &z, &a, &b, NULL)) < 0)
                return rc;
            st->kind = nd->op == QS_OP_MAXPOOL ? K_MAXPOOL : K_COPY;
            st->s_out = s, st->z_out = z;
            break;
        }
        case QS_OP_AVGPOOL:
        case QS_OP_GAP: {
            float s = 1.0f;
            int32_t z = 0;
            int64_t a, b;
            st->kind = K_AVG;
            if ((rc = resolve_layer_cfg(e, i, st)) < 0 || (rc = set_out(e, st, i)) < 0 ||
                (rc = grid_of(e, nd->inputs[0], &s, &z, &a, &b, NULL)) < 0)
                return rc;
            const qs_node_t *in = &g->nodes[nd->inputs[0]];
            int win = nd->op == QS_OP_GAP ? (int)(in->out_shape[1] * in->out_shape[2]) : nd->kh * nd->kw;
            if (!(st->rcount = calloc((size_t)win + 1, sizeof *st->rcount)))
                return qs_error(QS_ERR_NOMEM, "integer engine: out of memory");
            for (int n = 1; n <= win; n++)
                rs_input(&st->rq, (double)s / ((double)st->s_out * n), &st->rcount[n], z);
            break;
        }
        case QS_OP_SOFTMAX:
            if (i != g->output)
                return node_error(e, i, "%sa softmax inside the network has no integer form (only as the output)",
                                  NULL);
            st->kind = K_SOFTMAX;
            break;
        default: return node_error(e, i, "%sthis op has no integer form", NULL);
        }
        if (rc < 0)
            return rc;
        int64_t per = 1;
        for (int d = 0; d < nd->out_ndim; d++)
            per *= nd->out_shape[d];
        st->out_size = per;
        e->layer[i].acc = st->acc;
        e->layer[i].rq = st->rq;
    }
    for (int i = 0; i < g->nnodes; i++)
        for (int k = 0; k < e->step[i].nin; k++)
            e->step[i].in_size[k] = e->step[e->step[i].in[k]].out_size;
    return QS_OK;
}

/* ---- kernels ------------------------------------------------------------------------------------- */

/* acc[p] = Σ_kp xp[kp][p][0]·w[2kp] + xp[kp][p][1]·w[2kp+1], p < Ppad: int16 products summed in
 * pairs into int32 */
static void dot1_c(int64_t KP, int64_t Ppad, const int16_t *restrict xp, const int16_t *restrict w,
                   int32_t *restrict a)
{
    for (int64_t p = 0; p < Ppad; p++)
        a[p] = 0;
    for (int64_t kp = 0; kp < KP; kp++) {
        const int32_t w0 = w[2 * kp], w1 = w[2 * kp + 1];
        const int16_t *restrict x = xp + kp * Ppad * 2;
        for (int64_t p = 0; p < Ppad; p++)
            a[p] += (int32_t)x[2 * p] * w0 + (int32_t)x[2 * p + 1] * w1;
    }
}

/* dot1_c for four channels (the vector kernels share each load of x between them) */
static void dot4_c(int64_t KP, int64_t Ppad, const int16_t *restrict xp, const int16_t *const w[4],
                   int32_t *const acc[4])
{
    for (int j = 0; j < 4; j++)
        dot1_c(KP, Ppad, xp, w[j], acc[j]);
}

/* A depthwise channel straight from its padded plane xq (row stride PW): acc[oy·OW + ox]
 * = Σ_(ky,kx) xq[(oy·sh + ky·dh)·PW + ox·sw + kx·dw]·w[ky·kw + kx], exact in int32 (the bound), so the
 * order of the terms does not matter. */
QS_TARGET_CLONES
static void dw_direct(const int16_t *restrict xq, int64_t PW, const qs_sim_conv_t *G, const int16_t *restrict w,
                      int32_t *restrict acc)
{
    const int64_t OW = G->ow;
    for (int64_t oy = 0; oy < G->oh; oy++) {
        int32_t *restrict a = acc + oy * OW;
        for (int64_t ox = 0; ox < OW; ox++)
            a[ox] = 0;
        for (int ky = 0; ky < G->kh; ky++)
            for (int kx = 0; kx < G->kw; kx++) {
                const int16_t *restrict r = xq + (oy * G->sh + ky * G->dh) * PW + kx * G->dw;
                const int32_t wk = w[ky * G->kw + kx];
                if (G->sw == 1)
                    for (int64_t ox = 0; ox < OW; ox++)
                        a[ox] += (int32_t)r[ox] * wk;
                else
                    for (int64_t ox = 0; ox < OW; ox++)
                        a[ox] += (int32_t)r[ox * G->sw] * wk;
            }
    }
}

/* Σ_k x[k]·w[k] over n int16 terms, exactly in int32 (the caller's bound) */
static int32_t dotk_c(const int16_t *restrict x, const int16_t *restrict w, int64_t n)
{
    int32_t a = 0;
    for (int64_t k = 0; k < n; k++)
        a += (int32_t)x[k] * w[k];
    return a;
}

#ifdef QS_INT_AVX2
/* dot4_c with vpmaddwd: a block of 4 channels by 16 positions in 8 registers. */
__attribute__((target("avx2"))) static void dot4_avx2(int64_t KP, int64_t Ppad, const int16_t *restrict xp,
                                                      const int16_t *const w[4], int32_t *const acc[4])
{
    for (int64_t p = 0; p < Ppad; p += 16) {
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
        const int16_t *x = xp + p * 2;
        for (int64_t kp = 0; kp < KP; kp++, x += Ppad * 2) {
            const __m256i x0 = _mm256_loadu_si256((const __m256i *)x), x1 = _mm256_loadu_si256((const __m256i *)(x + 16));
            int32_t v[4];
            for (int j = 0; j < 4; j++)
                memcpy(&v[j], w[j] + 2 * kp, sizeof v[j]);
            __m256i wv = _mm256_set1_epi32(v[0]);
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(x0, wv));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(x1, wv));
            wv = _mm256_set1_epi32(v[1]);
            b0 = _mm256_add_epi32(b0, _mm256_madd_epi16(x0, wv));
            b1 = _mm256_add_epi32(b1, _mm256_madd_epi16(x1, wv));
            wv = _mm256_set1_epi32(v[2]);
            c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(x0, wv));
            c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(x1, wv));
            wv = _mm256_set1_epi32(v[3]);
            d0 = _mm256_add_epi32(d0, _mm256_madd_epi16(x0, wv));
            d1 = _mm256_add_epi32(d1, _mm256_madd_epi16(x1, wv));
        }
        _mm256_storeu_si256((__m256i *)(acc[0] + p), a0);
        _mm256_storeu_si256((__m256i *)(acc[0] + p + 8), a1);
        _mm256_storeu_si256((__m256i *)(acc[1] + p), b0);
        _mm256_storeu_si256((__m256i *)(acc[1] + p + 8), b1);
        _mm256_storeu_si256((__m256i *)(acc[2] + p), c0);
        _mm256_storeu_si256((__m256i *)(acc[2] + p + 8), c1);
        _mm256_storeu_si256((__m256i *)(acc[3] + p), d0);
        _mm256_storeu_si256((__m256i *)(acc[3] + p + 8), d1);
    }
}

__attribute__((target("avx2"))) static void dot1_avx2(int64_t KP, int64_t Ppad, const int16_t *restrict xp,
                                                      const int16_t *restrict w, int32_t *restrict acc)
{
    for (int64_t p = 0; p < Ppad; p += 16) {
        __m256i a0 = _mm256_setzero_si256(), a1 = a0;
        const int16_t *x = xp + p * 2;
        for (int64_t kp = 0; kp < KP; kp++, x += Ppad * 2) {
            int32_t v;
            memcpy(&v, w + 2 * kp, sizeof v);
            const __m256i wv = _mm256_set1_epi32(v);
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)x), wv));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(x + 16)), wv));
        }
        _mm256_storeu_si256((__m256i *)(acc + p), a0);
        _mm256_storeu_si256((__m256i *)(acc + p + 8), a1);
    }
}

__attribute__((target("avx2"))) static int32_t dotk_avx2(const int16_t *restrict x, const int16_t *restrict w,
                                                         int64_t n)
{
    __m256i a = _mm256_setzero_si256();
    int64_t k = 0;
    for (; k + 16 <= n; k += 16)
        a = _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(x + k)),
                                                  _mm256_loadu_si256((const __m256i *)(w + k))));
    int32_t v[8];
    _mm256_storeu_si256((__m256i *)v, a);
    uint32_t t = 0; /* the exact sum fits int32; lanes may not add in order without wrapping */
    for (int i = 0; i < 8; i++)
        t += (uint32_t)v[i];
    return (int32_t)(t + (uint32_t)dotk_c(x + k, w + k, n - k));
}
#endif

/* engines created while this is set run the portable kernels (tests) */
static bool simd_off;

void qs_int_use_simd(bool on) { simd_off = !on; }

/* avx2: the CPU has AVX2 (and the engine may use it) */
static void dot4(bool avx2, int64_t KP, int64_t Ppad, const int16_t *xp, const int16_t *const w[4],
                 int32_t *const acc[4])
{
#ifdef QS_INT_AVX2
    if (avx2) {
        dot4_avx2(KP, Ppad, xp, w, acc);
        return;
    }
#endif
    dot4_c(KP, Ppad, xp, w, acc);
}

static void dot1(bool avx2, int64_t KP, int64_t Ppad, const int16_t *xp, const int16_t *w, int32_t *acc)
{
#ifdef QS_INT_AVX2
    if (avx2) {
        dot1_avx2(KP, Ppad, xp, w, acc);
        return;
    }
#endif
    dot1_c(KP, Ppad, xp, w, acc);
}

static int32_t dotk(bool avx2, const int16_t *x, const int16_t *w, int64_t n)
{
#ifdef QS_INT_AVX2
    if (avx2)
        return dotk_avx2(x, w, n);
#endif
    return dotk_c(x, w, n);
}

/* The narrow path for one channel over n positions: the products (x - z_x)(w - z_w) of k = 0..K-1 in
 * order into a register of W <= 31 bits in int32 lanes (r), with their exact sums (ex) and overflow
 * events (ev); every value fits int32 (prep_dot's condition). xc: [K][ld] columns. Blocks of 16
 * positions keep their lanes in registers over all K terms. */
#define QS_NARROW_STEP(J, SAT)                                                                             \
    do {                                                                                                   \
        const int32_t t = (int32_t)x[J] * wk, v = rr[J] + t;                                               \
        ee[J] += (v > hi) | (v < lo);                                                                      \
        rr[J] = SAT ? (v > hi ? hi : v < lo ? lo : v) : (int32_t)((uint32_t)v << sh) >> sh;                \
        xx[J] += t;                                                                                        \
    } while (0)
QS_TARGET_CLONES
static void narrow_lanes(const int16_t *restrict xc, int64_t K, int64_t ld, const int16_t *restrict w, int64_t n,
                         int bits, bool saturate, int32_t *restrict r, int32_t *restrict ex, int32_t *restrict ev)
{
    const int32_t hi = (int32_t)((INT64_C(1) << (bits - 1)) - 1), lo = -hi - 1;
    const int sh = 32 - bits;
    int64_t p0 = 0;
    for (; p0 + 16 <= n; p0 += 16) {
        int32_t rr[16] = {0}, xx[16] = {0}, ee[16] = {0};
        if (saturate)
            for (int64_t k = 0; k < K; k++) {
                const int32_t wk = w[k];
                const int16_t *restrict x = xc + k * ld + p0;
                for (int j = 0; j < 16; j++)
                    QS_NARROW_STEP(j, true);
            }
        else
            for (int64_t k = 0; k < K; k++) {
                const int32_t wk = w[k];
                const int16_t *restrict x = xc + k * ld + p0;
                for (int j = 0; j < 16; j++)
                    QS_NARROW_STEP(j, false);
            }
        memcpy(r + p0, rr, sizeof rr);
        memcpy(ex + p0, xx, sizeof xx);
        memcpy(ev + p0, ee, sizeof ee);
    }
    for (; p0 < n; p0++) {
        int32_t rr[1] = {0}, xx[1] = {0}, ee[1] = {0};
        for (int64_t k = 0; k < K; k++) {
            const int32_t wk = w[k];
            const int16_t *restrict x = xc + k * ld + p0;
            QS_NARROW_STEP(0, saturate);
        }
        r[p0] = rr[0];
        ex[p0] = xx[0];
        ev[p0] = ee[0];
    }
}
#undef QS_NARROW_STEP

/* the register rule on int64 lanes (widths up to 62: a + t never overflows int64) */
static inline int64_t reg_add(int64_t a, int64_t t, int64_t lo, int64_t hi, int sh, qs_acc_overflow_t ov, int64_t *ev)
{
    int64_t s = a + t;
    int64_t out = (s > hi) | (s < lo);
    *ev += out;
    if (ov == QS_ACC_SATURATE)
        return s > hi ? hi : s < lo ? lo : s;
    if (ov == QS_ACC_WRAP)
        return (int64_t)((uint64_t)s << sh) >> sh;
    return s;
}

typedef struct {
    int64_t lo, hi, clo, chi;
    int sh, csh;
} regs_t;

static void regs_of(const qs_acc_t *a, regs_t *r)
{
    r->hi = a->overflow == QS_ACC_EXACT ? INT64_MAX / 4 : (INT64_C(1) << (a->bits - 1)) - 1;
    r->lo = -r->hi - 1;
    r->sh = 64 - a->bits;
    int cb = a->chunk > 0 ? a->chunk_bits : 62;
    r->chi = a->chunk_overflow == QS_ACC_EXACT ? INT64_MAX / 4 : (INT64_C(1) << (cb - 1)) - 1;
    r->clo = -r->chi - 1;
    r->csh = 64 - cb;
}

/* One term t[p] for every position, as feed_product (product) or feed_term. */
static void lanes_term(const qs_acc_t *a, const regs_t *R, scratch_t *s, int64_t n, const int64_t *t, bool product,
                       int64_t *in_chunk)
{
    int64_t *restrict r = s->r, *restrict e = s->e, *restrict c = s->c, *restrict mx = s->mx, *restrict ev = s->ev;
    if (!product || a->chunk == 0) {
        if (!product && *in_chunk) { /* flush the chunk in progress */
            for (int64_t p = 0; p < n; p++) {
                r[p] = reg_add(r[p], c[p], R->lo, R->hi, R->sh, a->overflow, &ev[p]);
                c[p] = 0;
            }
            *in_chunk = 0;
        }
        for (int64_t p = 0; p < n; p++) {
            e[p] += t[p];
            int64_t m = e[p] < 0 ? -e[p] : e[p];
            mx[p] = m > mx[p] ? m : mx[p];
            r[p] = reg_add(r[p], t[p], R->lo, R->hi, R->sh, a->overflow, &ev[p]);
        }
        return;
    }
    for (int64_t p = 0; p < n; p++) {
        e[p] += t[p];
        int64_t m = e[p] < 0 ? -e[p] : e[p];
        mx[p] = m > mx[p] ? m : mx[p];
        c[p] = reg_add(c[p], t[p], R->clo, R->chi, R->csh, a->chunk_overflow, &ev[p]);
    }
    if (++*in_chunk == a->chunk) {
        for (int64_t p = 0; p < n; p++) {
            r[p] = reg_add(r[p], c[p], R->lo, R->hi, R->sh, a->overflow, &ev[p]);
            c[p] = 0;
        }
        *in_chunk = 0;
    }
}

/* The order-exact path for output channel o over n positions: r gets the register values. */
static void dot_ordered(const step_t *st, int64_t o, scratch_t *s, int64_t n, int64_t *t)
{
    const qs_acc_t *a = &st->acc;
    regs_t R;
    regs_of(a, &R);
    for (int64_t p = 0; p < n; p++)
        s->r[p] = s->e[p] = s->c[p] = s->mx[p] = s->ev[p] = s->sx[p] = 0;
    const int32_t zx = st->zx, zw = st->zw[o];
    const bool expand = a->zp_form == QS_ZP_EXPAND && (zx != 0 || zw != 0);
    const int16_t *w = st->w16 + o * 2 * st->KP;
    int64_t in_chunk = 0;
    for (int64_t k = 0; k < st->K; k++) {
        const int16_t *x = st->Ppad == 1 ? s->xp + k : s->xp + ((k >> 1) * st->Ppad * 2 + (k & 1));
        const int64_t stride = st->Ppad == 1 ? 1 : 2;
        if (expand) {
            const int64_t wr = (int64_t)w[k] + zw;
            for (int64_t p = 0; p < n; p++) {
                int64_t xr = (int64_t)x[p * stride] + zx;
                t[p] = xr * wr;
                s->sx[p] += xr;
            }
        } else {
            const int64_t wv = w[k];
            for (int64_t p = 0; p < n; p++)
                t[p] = (int64_t)x[p * stride] * wv;
        }
        lanes_term(a, &R, s, n, t, true, &in_chunk);
    }
    if (expand) {
        int64_t sw = 0;
        for (int64_t k = 0; k < st->K; k++)
            sw += st->wraw[o * st->K + k];
        if (zw) {
            for (int64_t p = 0; p < n; p++)
                t[p] = -(int64_t)zw * s->sx[p];
            lanes_term(a, &R, s, n, t, false, &in_chunk);
        }
        if (zx) {
            for (int64_t p = 0; p < n; p++)
                t[p] = -(int64_t)zx * sw;
            lanes_term(a, &R, s, n, t, false, &in_chunk);
        }
        if (zx && zw) {
            for (int64_t p = 0; p < n; p++)
                t[p] = st->K * (int64_t)zx * zw;
            lanes_term(a, &R, s, n, t, false, &in_chunk);
        }
    }
    if (st->bias[o]) {
        for (int64_t p = 0; p < n; p++)
            t[p] = st->bias[o];
        lanes_term(a, &R, s, n, t, false, &in_chunk);
    }
    if (in_chunk)
        for (int64_t p = 0; p < n; p++)
            s->r[p] = reg_add(s->r[p], s->c[p], R.lo, R.hi, R.sh, a->overflow, &s->ev[p]);
}

static void requant_row(const step_t *st, int64_t o, const int64_t *acc, int64_t n, int32_t *y)
{
    const qs_rq_channel_t *c = &st->rqc[o];
    const float fb = st->fbias ? st->fbias[o] : 0.0f;
    if (st->rq.kind == QS_RQ_FLOAT64 && st->rq.round == QS_ROUND_NEAREST_EVEN) {
        const double m = c->m64, lo = c->qmin, hi = c->qmax, z = c->zp;
        for (int64_t p = 0; p < n; p++) {
            double v = rint((double)acc[p] * m) + z;
            y[p] = (int32_t)(v < lo ? lo : v > hi ? hi : v);
        }
        return;
    }
    for (int64_t p = 0; p < n; p++)
        y[p] = qs_requant_apply(c, acc[p], fb);
}

/* requant_row for int32 accumulators (the fast path's): float64 with ties to even vectorizes here */
QS_TARGET_CLONES
static void requant32_f64(const int32_t *restrict acc, int64_t n, double m, double z, double lo, double hi,
                          int32_t *restrict y)
{
    for (int64_t p = 0; p < n; p++) {
        double v = rint((double)acc[p] * m) + z;
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
        y[p] = (int32_t)v;
    }
}

static void requant_row32(const step_t *st, int64_t o, const int32_t *acc, int64_t n, int32_t *y)
{
    const qs_rq_channel_t *c = &st->rqc[o];
    if (st->rq.kind == QS_RQ_FLOAT64 && st->rq.round == QS_ROUND_NEAREST_EVEN) {
        requant32_f64(acc, n, c->m64, c->zp, c->qmin, c->qmax, y);
        return;
    }
    const float fb = st->fbias ? st->fbias[o] : 0.0f;
    for (int64_t p = 0; p < n; p++)
        y[p] = qs_requant_apply(c, acc[p], fb);
}

/* x - z_x of group gi as int16, in the pairs layout xp (and the columns xc for the narrow path):
 * through a zero-padded plane (0 = the input zero point), row by row. */
static void gather(const step_t *st, const int32_t *xg, scratch_t *s)
{
    const int64_t P = st->P, Ppad = st->Ppad, KP = st->KP, K = st->K;
    if (Ppad == 1) { /* linear: the columns are the pairs */
        for (int64_t k = 0; k < K; k++)
            s->xp[k] = (int16_t)(xg[k] - st->zx);
        for (int64_t k = K; k < 2 * KP; k++)
            s->xp[k] = 0;
        s->cols = s->xp;
        s->ld = 1;
        return;
    }
    const qs_sim_conv_t *G = &st->geo;
    const int64_t cg = G->c / G->groups, PH = G->h + G->pt + G->pb, PW = G->w + G->pl + G->pr;
    const int64_t OH = G->oh, OW = G->ow, sh = G->sh, sw = G->sw;
    int16_t *xq = s->xpad;
    if (PH != G->h || PW != G->w)
        memset(xq, 0, (size_t)(cg * PH * PW) * sizeof *xq);
    for (int64_t c = 0; c < cg; c++)
        for (int64_t iy = 0; iy < G->h; iy++) {
            const int32_t *src = xg + (c * G->h + iy) * G->w;
            int16_t *d = xq + (c * PH + iy + G->pt) * PW + G->pl;
            for (int64_t ix = 0; ix < G->w; ix++)
                d[ix] = (int16_t)(src[ix] - st->zx);
        }
#define QS_TAP(k) (xq + ((k) / (G->kh * G->kw)) * PH * PW + ((k) / G->kw % G->kh) * G->dh * PW + ((k) % G->kw) * G->dw)
    for (int64_t kp = 0; kp < KP && st->pairs; kp++) {
        int16_t *d = s->xp + kp * Ppad * 2;
        const int16_t *s0 = QS_TAP(2 * kp), *s1 = 2 * kp + 1 < K ? QS_TAP(2 * kp + 1) : NULL;
        for (int64_t oy = 0; oy < OH; oy++) {
            const int16_t *r0 = s0 + oy * sh * PW, *r1 = s1 ? s1 + oy * sh * PW : NULL;
            int16_t *dd = d + 2 * oy * OW;
            if (r1 && sw == 1)
                for (int64_t ox = 0; ox < OW; ox++) {
                    dd[2 * ox] = r0[ox];
                    dd[2 * ox + 1] = r1[ox];
                }
            else if (r1)
                for (int64_t ox = 0; ox < OW; ox++) {
                    dd[2 * ox] = r0[ox * sw];
                    dd[2 * ox + 1] = r1[ox * sw];
                }
            else
                for (int64_t ox = 0; ox < OW; ox++) {
                    dd[2 * ox] = r0[ox * sw];
                    dd[2 * ox + 1] = 0;
                }
        }
        for (int64_t p = P; p < Ppad; p++)
            d[2 * p] = d[2 * p + 1] = 0;
    }
    if (st->narrow && st->pointwise) {
        s->cols = xq;
        s->ld = P;
    } else if (st->narrow) {
        for (int64_t k = 0; k < K; k++) {
            int16_t *d = s->xc + k * Ppad;
            const int16_t *sk = QS_TAP(k);
            for (int64_t oy = 0; oy < OH; oy++) {
                if (sw == 1)
                    memcpy(d + oy * OW, sk + oy * sh * PW, (size_t)OW * sizeof *d);
                else
                    for (int64_t ox = 0; ox < OW; ox++)
                        d[oy * OW + ox] = sk[oy * sh * PW + ox * sw];
            }
        }
        s->cols = s->xc;
        s->ld = Ppad;
    }
#undef QS_TAP
}

/* Fast channels ol[0..n), n <= 4: the exact sums plus the bias (which the bound keeps in int32),
 * to rows (when kept) and requantized to y. */
static void run_fast(const step_t *st, const int *ol, int n, int64_t *const rows[4], int32_t *const y[4],
                     scratch_t *s, lstat_t *ls)
{
    const int64_t P = st->P, Ppad = st->Ppad, KP = st->KP;
    const int16_t *w[4];
    int32_t *acc[4];
    for (int j = 0; j < 4; j++) {
        w[j] = st->w16 + ol[j < n ? j : n - 1] * 2 * KP;
        acc[j] = s->acc32 + j * Ppad;
    }
    if (Ppad == 1)
        for (int j = 0; j < n; j++)
            acc[j][0] = dotk(s->avx2, s->xp, w[j], 2 * KP);
    else if (st->direct)
        dw_direct(s->xpad, st->geo.w + st->geo.pl + st->geo.pr, &st->geo, w[0], acc[0]);
    else if (n < 4)
        for (int j = 0; j < n; j++)
            dot1(s->avx2, KP, Ppad, s->xp, w[j], acc[j]);
    else
        dot4(s->avx2, KP, Ppad, s->xp, w, acc);
    for (int j = 0; j < n; j++) {
        const int64_t o = ol[j];
        const int32_t b = (int32_t)st->bias[o];
        int32_t *a = acc[j], m = 0;
        for (int64_t p = 0; p < P; p++) {
            a[p] += b;
            int32_t v = a[p] < 0 ? -a[p] : a[p];
            m = v > m ? v : m;
        }
        ls->max_abs = m > ls->max_abs ? m : ls->max_abs;
        if (rows[j])
            for (int64_t p = 0; p < P; p++)
                rows[j][p] = a[p];
        requant_row32(st, o, a, P, y[j]);
    }
    ls->fast += n * P;
    ls->outputs += n * P;
}

/* One sample: x the input codes, y the output codes, keep (or NULL) the accumulators. */
/* Bit planes of the columns of group xg: planes[(p·B + j)·KW + k/64] bit k%64 = bit j of x − xmin. */
static void bit_planes(const step_t *st, const int32_t *xg, uint64_t *planes)
{
    const int64_t P = st->P, K = st->K, KW = st->KW, B = st->xplanes;
    memset(planes, 0, (size_t)(P * B * KW) * sizeof *planes);
    for (int64_t k = 0; k < K; k++) {
        const uint64_t bit = UINT64_C(1) << (k % 64);
        const int32_t *gk = st->gidx + k * P;
        for (int64_t p = 0; p < P; p++) {
            uint32_t u = (uint32_t)((int64_t)(gk[p] == st->plane ? st->zx : xg[gk[p]]) - st->xmin);
            uint64_t *pl = planes + p * B * KW + k / 64;
            for (int64_t j = 0; u; j++, u >>= 1)
                if (u & 1)
                    pl[j * KW] |= bit;
        }
    }
}

/* Σ (x − zx)·w + bias of channel o at every position, from the planes; exact. */
static void popcount_row(const step_t *st, int64_t o, const uint64_t *planes, int64_t *acc, lstat_t *ls)
{
    const int64_t P = st->P, KW = st->KW, B = st->xplanes;
    const uint64_t *wp = st->wpos + o * KW, *wn = st->wneg + o * KW;
    const int64_t corr = ((int64_t)st->xmin - st->zx) * st->wsum[o] + st->bias[o];
    for (int64_t p = 0; p < P; p++) {
        const uint64_t *pl = planes + p * B * KW;
        int64_t sum = 0;
        for (int64_t j = 0; j < B; j++) {
            int64_t d = 0;
            for (int64_t w = 0; w < KW; w++)
                d += __builtin_popcountll(pl[j * KW + w] & wp[w]) - __builtin_popcountll(pl[j * KW + w] & wn[w]);
            sum += d * ((int64_t)1 << j);
        }
        acc[p] = sum + corr;
        int64_t m = llabs(acc[p]);
        ls->max_abs = m > ls->max_abs ? m : ls->max_abs;
    }
    ls->fast += P;
}

static void run_dot(const step_t *st, const int32_t *x, int32_t *y, int64_t *keep, scratch_t *s)
{
    const int64_t P = st->P, Ppad = st->Ppad, K = st->K, plane = st->plane;
    const int32_t zx = st->zx;
    lstat_t *ls = &s->st[st->node];
    uint64_t *planes = NULL;
    for (int64_t gi = 0; gi < st->geo.groups; gi++) {
        const int32_t *xg = x + gi * plane;
        if (st->fast16)
            gather(st, xg, s);
        bool any_pop = false;
        for (int64_t j = 0; j < st->ocg; j++)
            any_pop |= st->path[gi * st->ocg + j] == PATH_POPCOUNT;
        if (any_pop) {
            if (!planes && !(planes = malloc((size_t)(P * st->xplanes * st->KW) * sizeof *planes)))
                abort(); /* a few hundred KiB per layer: treated as the engine's other fixed scratch */
            bit_planes(st, xg, planes);
        }
        /* the fast channels, four at a time */
        int nf = 0;
        for (int64_t j = 0; j < st->ocg; j++)
            if (st->path[gi * st->ocg + j] == PATH_FAST)
                s->olist[nf++] = (int)(gi * st->ocg + j);
        for (int b = 0; b < nf; b += 4) {
            int n = nf - b < 4 ? nf - b : 4;
            int64_t *rows[4];
            int32_t *yo[4];
            for (int j = 0; j < 4; j++) {
                int o = s->olist[b + (j < n ? j : 0)];
                rows[j] = keep ? keep + o * P : NULL;
                yo[j] = y + o * P;
            }
            run_fast(st, s->olist + b, n, rows, yo, s, ls);
        }
        for (int64_t j = 0; j < st->ocg; j++) {
            const int64_t o = gi * st->ocg + j;
            int32_t *yo = y + o * P;
            int64_t *accrow = keep ? keep + o * P : s->row;
            switch (st->path[o]) {
            case PATH_FAST: continue;
            case PATH_POPCOUNT:
                popcount_row(st, o, planes, accrow, ls);
                break;
            case PATH_NARROW: {
                const qs_acc_t *a = &st->acc;
                int32_t *r = s->n32, *ex = r + Ppad, *ev = ex + Ppad;
                narrow_lanes(s->cols, K, s->ld, st->w16 + o * 2 * st->KP, P, a->bits, a->overflow == QS_ACC_SATURATE,
                             r, ex, ev);
                const int64_t hi = (INT64_C(1) << (a->bits - 1)) - 1, lo = -hi - 1, b = st->bias[o];
                int64_t events = 0, over = 0, mx = ls->max_abs;
                for (int64_t p = 0; p < P; p++) { /* the bias, last, through the register rule */
                    int64_t e1 = ev[p];
                    if (b)
                        r[p] = (int32_t)reg_add(r[p], b, lo, hi, 64 - a->bits, a->overflow, &e1);
                    events += e1;
                    over += e1 > 0;
                    int64_t m = llabs((int64_t)ex[p] + b);
                    mx = m > mx ? m : mx;
                }
                ls->events += events;
                ls->overflowed += over;
                ls->max_abs = mx;
                if (keep)
                    for (int64_t p = 0; p < P; p++)
                        accrow[p] = r[p];
                ls->outputs += P;
                requant_row32(st, o, r, P, yo);
                continue;
            }
            case PATH_ORDERED:
                dot_ordered(st, o, s, P, s->t);
                for (int64_t p = 0; p < P; p++) {
                    accrow[p] = s->r[p];
                    ls->events += s->ev[p];
                    ls->overflowed += s->ev[p] > 0;
                    ls->max_partial = s->mx[p] > ls->max_partial ? s->mx[p] : ls->max_partial;
                    int64_t m = llabs(s->e[p]);
                    ls->max_abs = m > ls->max_abs ? m : ls->max_abs;
                }
                break;
            default: /* scalar: one column at a time through the reference */
                for (int64_t p = 0; p < P; p++) {
                    for (int64_t k = 0; k < K; k++) {
                        int32_t gx = st->gidx[k * P + p];
                        s->col[k] = gx == plane ? zx : xg[gx];
                    }
                    qs_acc_result_t r;
                    qs_acc_dot(&st->acc, s->col, 1, st->wraw + o * K, 1, K, zx, st->zw[o], st->bias[o], &r);
                    accrow[p] = r.value;
                    ls->events += r.events;
                    ls->overflowed += r.events > 0;
                    ls->max_partial = r.max_abs > ls->max_partial ? r.max_abs : ls->max_partial;
                    int64_t m = r.exact < 0 ? -r.exact : r.exact;
                    ls->max_abs = m > ls->max_abs ? m : ls->max_abs;
                }
                break;
            }
            ls->outputs += P;
            requant_row(st, o, accrow, P, yo);
        }
    }
    free(planes);
}

/* Σ_i (q_i − z_i)·m_i to the output grid, by the requantizer's kind. */
static int32_t rescale(const rs_out_t *out, const rs_in_t *in, const int64_t *v, int nin)
{
    const qs_requant_t *rq = out->rq;
    double q;
    switch (rq->kind) {
    case QS_RQ_FLOAT32: {
        float a = 0.0f;
        for (int i = 0; i < nin; i++)
            a = a + (float)v[i] * in[i].m32;
        q = qs_round_det((double)a, rq->round) + out->zy;
        break;
    }
    case QS_RQ_FIXED:
    case QS_RQ_SHIFT: {
        /* each term with 20 fraction bits, summed, then rounded once */
        __int128 t = 0;
        for (int i = 0; i < nin; i++) {
            __int128 p = rq->kind == QS_RQ_FIXED ? (__int128)v[i] * in[i].m0 : (__int128)v[i];
            int sh = rq->kind == QS_RQ_FIXED ? 11 - in[i].shift : -20 - in[i].shift;
            if (sh > 0)
                t += qs_round_shift(p, sh > 126 ? 126 : sh, QS_ROUND_NEAREST_AWAY);
            else
                t += p * ((__int128)1 << (-sh > 60 ? 60 : -sh));
        }
        q = (double)qs_round_shift(t, 20, rq->round) + out->zy;
        break;
    }
    default: {
        double a = 0.0;
        for (int i = 0; i < nin; i++)
            a += (double)v[i] * in[i].m64;
        q = qs_round_det(a, rq->round) + out->zy;
        break;
    }
    }
    return q < out->lo ? out->lo : q > out->hi ? out->hi : (int32_t)q;
}

static int run_sample(qs_int_t *e, int64_t s, scratch_t *sc)
{
    const qs_graph_t *g = e->g;
    for (int i = 0; i < g->nnodes; i++) {
        const step_t *st = &e->step[i];
        if (st->kind == K_NONE)
            continue;
        int32_t *y = st->kind == K_SOFTMAX ? NULL : qs_i32(e->codes[st->dst]) + s * st->out_size;
        const int32_t *x[QS_MAX_INPUTS];
        for (int k = 0; k < st->nin; k++)
            x[k] = qs_i32(e->codes[st->in[k]]) + s * st->in_size[k];
        const qs_node_t *nd = &g->nodes[i];
        switch (st->kind) {
        case K_INPUT: {
            qs_tensor_t v = *e->x, c = *e->x;
            v.shape[0] = c.shape[0] = 1;
            v.size = c.size = st->out_size;
            v.data = qs_f32(e->x) + s * st->out_size;
            c.dtype = QS_I32;
            c.data = y;
            qs_quantizer_t q = st->aq;
            q.round.stream = (uint64_t)(e->index0 + s);
            int rc = qs_quantize(&q, st->ap, &v, &c, NULL, NULL, NULL);
            if (rc < 0)
                return rc;
            break;
        }
        case K_DOT: run_dot(st, x[0], y, e->accs ? qs_i64(e->accs[i]) + s * st->out_size : NULL, sc); break;
        case K_RESCALE: {
            int64_t v[QS_MAX_INPUTS];
            if (nd->op == QS_OP_CONCAT) {
                int32_t *d = y;
                for (int k = 0; k < st->nin; k++)
                    for (int64_t j = 0; j < st->in_size[k]; j++) {
                        v[0] = (int64_t)x[k][j] - st->rin[k].z;
                        *d++ = rescale(&st->out, &st->rin[k], v, 1);
                    }
            } else if (st->nin == 2 && st->out.rq->kind == QS_RQ_FLOAT64 &&
                       st->out.rq->round == QS_ROUND_NEAREST_EVEN) {
                /* rescale() for a two-input add at float64, ties to even, in one loop */
                const double m0 = st->rin[0].m64, m1 = st->rin[1].m64, zy = st->out.zy;
                const double lo = st->out.lo, hi = st->out.hi;
                const int32_t z0 = st->rin[0].z, z1 = st->rin[1].z;
                for (int64_t j = 0; j < st->out_size; j++) {
                    double a = (double)(x[0][j] - z0) * m0 + (double)(x[1][j] - z1) * m1;
                    double q = rint(a) + zy;
                    y[j] = (int32_t)(q < lo ? lo : q > hi ? hi : q);
                }
            } else {
                for (int64_t j = 0; j < st->out_size; j++) {
                    for (int k = 0; k < st->nin; k++)
                        v[k] = (int64_t)x[k][j] - st->rin[k].z;
                    y[j] = rescale(&st->out, st->rin, v, st->nin);
                }
            }
            break;
        }
        case K_MAXPOOL:
        case K_AVG: {
            const qs_node_t *in = &g->nodes[st->in[0]];
            const int64_t C = in->out_shape[0], H = in->out_shape[1], W = in->out_shape[2];
            const bool gap = nd->op == QS_OP_GAP;
            const int64_t OH = gap ? 1 : nd->out_shape[1], OW = gap ? 1 : nd->out_shape[2];
            const int kh = gap ? (int)H : nd->kh, kw = gap ? (int)W : nd->kw, sh = gap ? 1 : nd->stride_h,
                      sw = gap ? 1 : nd->stride_w, pt = gap ? 0 : nd->pad_top, pl = gap ? 0 : nd->pad_left;
            const int32_t z = st->kind == K_AVG ? st->rcount[1].z : 0;
            if (gap) { /* the whole plane: the same sum, without the window's bounds */
                for (int64_t c = 0; c < C; c++) {
                    int64_t sum = 0;
                    const int32_t *xc = x[0] + c * H * W;
                    for (int64_t j = 0; j < H * W; j++)
                        sum += xc[j];
                    sum -= (int64_t)z * H * W;
                    y[c] = rescale(&st->out, &st->rcount[H * W], &sum, 1);
                }
                break;
            }
            for (int64_t c = 0; c < C; c++)
                for (int64_t oy = 0; oy < OH; oy++)
                    for (int64_t ox = 0; ox < OW; ox++) {
                        int64_t sum = 0, cnt = 0;
                        int32_t mx = INT32_MIN;
                        for (int ky = 0; ky < kh; ky++) {
                            int64_t iy = oy * sh - pt + ky;
                            if (iy < 0 || iy >= H)
                                continue;
                            for (int kx = 0; kx < kw; kx++) {
                                int64_t ix = ox * sw - pl + kx;
                                if (ix < 0 || ix >= W)
                                    continue;
                                int32_t q = x[0][(c * H + iy) * W + ix];
                                sum += (int64_t)q - z;
                                cnt++;
                                mx = q > mx ? q : mx;
                            }
                        }
                        int32_t *d = &y[(c * OH + oy) * OW + ox];
                        *d = st->kind == K_MAXPOOL ? mx : rescale(&st->out, &st->rcount[cnt], &sum, 1);
                    }
            break;
        }
        case K_COPY: memcpy(y, x[0], (size_t)st->out_size * sizeof *y); break;
        default: break;
        }
    }
    /* the network output, dequantized */
    const int o = g->output;
    float *out = qs_f32(e->out) + s * g->num_classes;
    const step_t *so = &e->step[o];
    if (so->kind == K_SOFTMAX) {
        const step_t *si = &e->step[so->in[0]];
        const int32_t *c = qs_i32(e->codes[so->in[0]]) + s * si->out_size;
        for (int j = 0; j < g->num_classes; j++)
            out[j] = qs_dequantize_one(e->s_y, e->z_y, c[j]);
        qs_sim_softmax(g->num_classes, out, out);
    } else {
        const int32_t *c = qs_i32(e->codes[o]) + s * so->out_size;
        for (int j = 0; j < g->num_classes; j++)
            out[j] = qs_dequantize_one(e->s_y, e->z_y, c[j]);
    }
    return QS_OK;
}

static int run_range(void *ctx, int64_t b, int64_t end, int thread)
{
    qs_int_t *e = ctx;
    for (int64_t s = b; s < end; s++) {
        int rc = run_sample(e, s, &e->scr[thread]);
        if (rc < 0)
            return rc;
    }
    return QS_OK;
}

/* ---- the public side ----------------------------------------------------------------------------- */

void qs_int_free(qs_int_t *e)
{
    if (!e)
        return;
    for (int i = 0; e->step && i < e->n; i++) {
        step_t *st = &e->step[i];
        free(st->gidx);
        free(st->w16);
        free(st->wsign);
        free(st->wpos);
        free(st->wneg);
        free(st->wsum);
        free(st->zw);
        free(st->bias);
        free(st->fbias);
        free(st->rqc);
        free(st->path);
        free(st->rcount);
    }
    for (int t = 0; e->scr && t < e->nthreads; t++) {
        scratch_t *s = &e->scr[t];
        qs_free(s->xpad);
        qs_free(s->xp);
        qs_free(s->acc32);
        qs_free(s->n32);
        qs_free(s->xc);
        free(s->olist);
        qs_free(s->r);
        free(s->col);
        free(s->st);
    }
    for (int i = 0; e->codes && i < e->n; i++)
        qs_tensor_free(e->codes[i]);
    for (int i = 0; e->accs && i < e->n; i++)
        qs_tensor_free(e->accs[i]);
    free(e->codes);
    free(e->accs);
    free(e->scr);
    free(e->step);
    free(e->layer);
    qs_tensor_free(e->out);
    free(e);
}

int qs_int_create(const qs_qnet_t *q, const qs_int_config_t *cfg, const qs_engine_opts_t *opts, qs_int_t **out)
{
    if (!out)
        return qs_error(QS_ERR_INVALID, "qs_int_create: no place for the result");
    *out = NULL;
    if (!q || !q->g)
        return qs_error(QS_ERR_INVALID, "qs_int_create: no quantized network");
    qs_int_t *e = calloc(1, sizeof *e);
    if (!e)
        return qs_error(QS_ERR_NOMEM, "integer engine: out of memory");
    e->q = q;
    e->g = q->g;
    e->n = q->g->nnodes;
    if (cfg)
        e->cfg = *cfg;
    else
        qs_int_config_default(&e->cfg);
    e->pool = opts ? opts->pool : NULL;
    e->nthreads = qs_pool_threads(e->pool);
    int rc = QS_OK;
    if ((rc = qs_acc_validate(&e->cfg.acc)) < 0)
        goto fail;
    for (int k = 0; k < e->cfg.noverrides; k++)
        if (qs_graph_find(e->g, e->cfg.ov[k].layer) < 0) {
            rc = qs_error(QS_ERR_INVALID, "--layer %s:%s: model '%s' has no node '%s'", e->cfg.ov[k].layer,
                          e->cfg.ov[k].spec, e->g->name, e->cfg.ov[k].layer);
            goto fail;
        }
    e->step = calloc((size_t)e->n, sizeof *e->step);
    e->layer = calloc((size_t)e->n, sizeof *e->layer);
    e->codes = calloc((size_t)e->n, sizeof *e->codes);
    if (e->cfg.keep_acc && !(e->accs = calloc((size_t)e->n, sizeof *e->accs))) {
        rc = qs_error(QS_ERR_NOMEM, "integer engine: out of memory");
        goto fail;
    }
    e->scr = calloc((size_t)e->nthreads, sizeof *e->scr);
    if (!e->step || !e->layer || !e->codes || !e->scr) {
        rc = qs_error(QS_ERR_NOMEM, "integer engine: out of memory");
        goto fail;
    }
    if ((rc = prepare(e)) < 0)
        goto fail;
    {
        int o = e->g->output;
        int src = e->step[o].kind == K_SOFTMAX ? e->g->nodes[o].inputs[0] : o;
        int64_t a, b;
        if ((rc = grid_of(e, src, &e->s_y, &e->z_y, &a, &b, NULL)) < 0)
            goto fail;
    }
    int64_t plane = 1, xp = 2, xc = 1, ppad = 1, k = 1, ocg = 1;
    for (int i = 0; i < e->n; i++) {
        const step_t *st = &e->step[i];
        if (st->kind != K_DOT)
            continue;
        const qs_sim_conv_t *G = &st->geo;
        const int64_t pp = G->c / G->groups * (G->h + G->pt + G->pb) * (G->w + G->pl + G->pr);
        plane = pp > plane ? pp : plane;
        xp = st->KP * st->Ppad * 2 > xp ? st->KP * st->Ppad * 2 : xp;
        ppad = st->Ppad > ppad ? st->Ppad : ppad;
        k = st->K > k ? st->K : k;
        xc = st->K * st->Ppad > xc ? st->K * st->Ppad : xc;
        ocg = st->ocg > ocg ? st->ocg : ocg;
    }
    for (int t = 0; t < e->nthreads; t++) {
        scratch_t *s = &e->scr[t];
        s->xpad = qs_alloc((size_t)plane * sizeof *s->xpad);
        s->xp = qs_alloc((size_t)xp * sizeof *s->xp);
        s->acc32 = qs_alloc((size_t)(4 * ppad) * sizeof *s->acc32);
        s->n32 = qs_alloc((size_t)(3 * ppad) * sizeof *s->n32);
        s->xc = qs_alloc((size_t)xc * sizeof *s->xc);
        s->olist = malloc((size_t)ocg * sizeof *s->olist);
        s->r = qs_alloc((size_t)(11 * ppad) * sizeof *s->r);
        s->col = malloc((size_t)k * sizeof *s->col);
        s->st = calloc((size_t)e->n, sizeof *s->st);
#ifdef QS_INT_AVX2
        s->avx2 = !simd_off && __builtin_cpu_supports("avx2");
#endif
        if (!s->xpad || !s->xp || !s->acc32 || !s->n32 || !s->xc || !s->olist || !s->r || !s->col || !s->st) {
            rc = qs_error(QS_ERR_NOMEM, "integer engine: out of memory for scratch");
            goto fail;
        }
        s->e = s->r + ppad;
        s->c = s->r + 2 * ppad;
        s->mx = s->r + 3 * ppad;
        s->sx = s->r + 4 * ppad;
        s->ev = s->r + 5 * ppad;
        s->row = s->r + 6 * ppad;
        s->t = s->r + 10 * ppad;
    }
    *out = e;
    return QS_OK;
fail:
    qs_int_free(e);
    return rc;
}

int qs_int_forward(qs_int_t *e, const qs_tensor_t *x, int64_t index0, const qs_tensor_t **out)
{
    if (!e || !x || !out)
        return qs_error(QS_ERR_INVALID, "qs_int_forward: no engine, input or result");
    const qs_graph_t *g = e->g;
    if (x->dtype != QS_F32 || x->ndim != 4 || x->shape[1] != g->in_c || x->shape[2] != g->in_h ||
        x->shape[3] != g->in_w)
        return qs_error(QS_ERR_SHAPE, "integer engine: model '%s' takes [N, %lld, %lld, %lld] float32 input",
                        g->name, (long long)g->in_c, (long long)g->in_h, (long long)g->in_w);
    const int64_t n = x->shape[0];
    if (n > e->cap) {
        for (int i = 0; i < e->n; i++) {
            qs_tensor_free(e->codes[i]);
            e->codes[i] = NULL;
            if (e->accs) {
                qs_tensor_free(e->accs[i]);
                e->accs[i] = NULL;
            }
        }
        for (int i = 0; i < e->n; i++) {
            const step_t *st = &e->step[i];
            if (st->kind == K_NONE || st->kind == K_SOFTMAX || e->codes[st->dst])
                continue;
            int64_t shape[2] = {n, st->out_size};
            if (e->accs && st->kind == K_DOT && !(e->accs[i] = qs_tensor_create(QS_I64, 2, shape)))
                return qs_error(QS_ERR_NOMEM, "integer engine: out of memory for the accumulators of %lld images",
                                (long long)n);
            if (!(e->codes[st->dst] = qs_tensor_create(QS_I32, 2, shape)))
                return qs_error(QS_ERR_NOMEM, "integer engine: out of memory for the codes of %lld images",
                                (long long)n);
        }
        qs_tensor_free(e->out);
        int64_t shape[2] = {n, g->num_classes};
        if (!(e->out = qs_tensor_create(QS_F32, 2, shape)))
            return qs_error(QS_ERR_NOMEM, "integer engine: out of memory");
        e->cap = n;
    }
    e->x = x;
    e->index0 = index0;
    e->count = n;
    e->out->shape[0] = n;
    e->out->size = n * g->num_classes;
    for (int i = 0; i < e->n; i++) {
        qs_tensor_t *t[2] = {e->codes[i], e->accs ? e->accs[i] : NULL};
        for (int k = 0; k < 2; k++)
            if (t[k]) {
                t[k]->shape[0] = n;
                t[k]->size = n * t[k]->shape[1];
            }
    }
    int rc = qs_pool_for(e->pool, n, 1, run_range, e);
    /* per-thread counters merged: sums and maxima, so the result is independent of the split */
    for (int t = 0; t < e->nthreads; t++)
        for (int i = 0; i < e->n; i++) {
            lstat_t *s = &e->scr[t].st[i];
            qs_int_layer_t *l = &e->layer[i];
            l->outputs += s->outputs;
            l->overflowed += s->overflowed;
            l->events += s->events;
            l->fast += s->fast;
            l->max_abs = s->max_abs > l->max_abs ? s->max_abs : l->max_abs;
            l->max_partial = s->max_partial > l->max_partial ? s->max_partial : l->max_partial;
            l->needed_bits = l->outputs ? qs_acc_bits_for(l->max_abs) : 0;
            memset(s, 0, sizeof *s);
        }
    if (rc < 0)
        return rc;
    *out = e->out;
    return QS_OK;
}

const qs_tensor_t *qs_int_codes(const qs_int_t *e, int node)
{
    if (!e || node < 0 || node >= e->n)
        return NULL;
    int d = e->step[node].kind == K_NONE ? e->q->layer[node].point : node;
    return d >= 0 && d < e->n ? e->codes[d] : NULL;
}

const qs_tensor_t *qs_int_accs(const qs_int_t *e, int node)
{
    return e && e->accs && node >= 0 && node < e->n ? e->accs[node] : NULL;
}

const qs_int_layer_t *qs_int_layer(const qs_int_t *e, int node)
{
    static const qs_int_layer_t none;
    return e && node >= 0 && node < e->n ? &e->layer[node] : &none;
}

void qs_int_reset_stats(qs_int_t *e)
{
    if (!e)
        return;
    for (int i = 0; i < e->n; i++) {
        qs_int_layer_t *l = &e->layer[i];
        l->outputs = l->overflowed = l->events = l->fast = l->max_abs = l->max_partial = 0;
        l->needed_bits = 0;
    }
}
