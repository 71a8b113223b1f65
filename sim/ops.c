/* sim/ops.c — the op kernels of the float engine, one sample at a time.
 *
 * Two families live here. The reference kernels are plain C loops with the
 * accumulation order written next to them (docs/engine.md, "The float
 * engine"); tests pin their outputs exactly, so their order never changes.
 * The fast kernels are what the engine runs otherwise: im2col + OpenBLAS
 * sgemm for convolutions with several input channels per group, a direct
 * sgemm for 1x1 convolutions, sgemv for linear layers, and a dedicated loop
 * for convolutions with one input channel per group (depthwise, and stems on
 * one-channel images) that adds its products in the reference order, so it
 * gives the reference's bits. Every other op has one kernel, used by both
 * paths.
 *
 * Every kernel works on one sample with shapes fixed by the graph: no
 * dimension of any loop or GEMM depends on the batch, so a sample's result
 * does not depend on the batch it came in or on the thread that ran it. */
#include "sim/sim_internal.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* ---- convolution ------------------------------------------------------------------------------ */

/* Reference: for each output element, acc = 0; then for ci over the group's
 * input channels, ky, kx (in that order, each ascending) acc += x * w,
 * skipping taps that fall in the padding (they would add x = 0, which
 * changes nothing); then y = acc + bias (y = acc without a bias). */
void qs_sim_conv_ref(const qs_sim_conv_t *g, const float *x, const float *w, const float *b, float *y)
{
    const int64_t ig = g->c / g->groups, og = g->oc / g->groups;
    const int64_t hw = g->h * g->w;
    for (int64_t o = 0; o < g->oc; o++) {
        const int64_t grp = o / og;
        const float *xg = x + grp * ig * hw;
        const float *wo = w + o * ig * g->kh * g->kw;
        for (int64_t oy = 0; oy < g->oh; oy++) {
            for (int64_t ox = 0; ox < g->ow; ox++) {
                float acc = 0.0f;
                for (int64_t ci = 0; ci < ig; ci++) {
                    for (int ky = 0; ky < g->kh; ky++) {
                        int64_t iy = oy * g->sh + (int64_t)ky * g->dh - g->pt;
                        if (iy < 0 || iy >= g->h)
                            continue;
                        for (int kx = 0; kx < g->kw; kx++) {
                            int64_t ix = ox * g->sw + (int64_t)kx * g->dw - g->pl;
                            if (ix < 0 || ix >= g->w)
                                continue;
                            acc += xg[ci * hw + iy * g->w + ix] * wo[(ci * g->kh + ky) * g->kw + kx];
                        }
                    }
                }
                y[(o * g->oh + oy) * g->ow + ox] = b ? acc + b[o] : acc;
            }
        }
    }
}

/* The one-input-channel-per-group loop works on the zero-padded input plane
 * P (hp rows of wp = sw * wq floats) split by column phase: plane pc holds
 * P's columns pc, pc + sw, pc + 2 sw, ... (a flat deinterleave, since wp is
 * a multiple of sw). Outputs are computed on a flat buffer whose rows are
 * sh * wq apart: then for every tap (ky, kx) the input of output t is
 * plane[(kx dw) mod sw][t + ky dh wq + (kx dw) div sw], a fixed offset, and
 * the whole channel is one long vectorizable loop instead of many short
 * rows. The columns past ow of each buffer row (and, for stride_h 2, every
 * other row's worth) are computed and thrown away. */
typedef struct {
    int64_t hp, wp, wq;
    int64_t rs;       /* row stride of the output buffer: sh * wq */
    int64_t plane;    /* floats per phase plane, with slack for the thrown-away outputs */
    int64_t nout;     /* oh * rs, rounded up to the strip */
    int64_t pbuf;     /* floats of P when sw > 1 (else P is plane 0) */
    int ntaps;
} dw_layout_t;

#define DW_STRIP 16

static int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

static dw_layout_t dw_layout(const qs_sim_conv_t *g)
{
    dw_layout_t l;
    l.hp = g->h + g->pt + g->pb;
    l.wq = (g->w + g->pl + g->pr + g->sw - 1) / g->sw;
    l.wp = l.wq * g->sw;
    l.rs = (int64_t)g->sh * l.wq;
    l.ntaps = g->kh * g->kw;
    l.nout = round_up(g->oh * l.rs, DW_STRIP);
    int64_t maxoff = (int64_t)(g->kh - 1) * g->dh * l.wq + (int64_t)(g->kw - 1) * g->dw / g->sw;
    int64_t need = l.nout + maxoff;
    if (need < l.hp * l.wq)
        need = l.hp * l.wq;
    l.plane = round_up(need, 16);
    l.pbuf = g->sw > 1 ? round_up(l.hp * l.wp, 16) : 0;
    return l;
}

size_t qs_sim_conv_dw_scratch(const qs_sim_conv_t *g)
{
    dw_layout_t l = dw_layout(g);
    /* P, planes, outputs, then the int64 tap offsets */
    return (size_t)(l.pbuf + g->sw * l.plane + l.nout + 2 * (int64_t)l.ntaps + 32);
}

/* One channel's share of a fused epilogue. */
typedef struct {
    int kind;
    float m, s, bt, lo, hi;
} ep1_t;

static int ep_channel(const qs_sim_ep_t *ep, int64_t ch, ep1_t *e)
{
    int n = ep ? ep->n : 0;
    for (int q = 0; q < n; q++) {
        const qs_sim_ep_step_t *st = &ep->step[q];
        e[q].kind = st->kind;
        if (st->kind == QS_SIM_EP_BN) {
            e[q].m = st->mean[ch];
            e[q].s = st->scale[ch];
            e[q].bt = st->beta[ch];
        } else {
            e[q].lo = st->lo;
            e[q].hi = st->hi;
        }
    }
    return n;
}

/* The strip loop: out[t] = sum over taps k (in order) of wk[k] * src[k][t],
 * starting from 0, then + bias and the epilogue while still in registers.
 * Four strips of 16 run together so that four independent sums hide the
 * latency of the adds; each output still adds its own products in tap
 * order. Built for AVX2 and AVX-512 as well (the CPU picks at load time):
 * with contraction off every version does the same IEEE mul and add in the
 * same order, so all give the same bits. GCC's vector extension keeps the
 * 16 lanes in one register where the CPU has them. */
#if defined(__GNUC__)
typedef float v16_t __attribute__((vector_size(64)));
typedef int32_t v16i_t __attribute__((vector_size(64)));
typedef float v8_t __attribute__((vector_size(32)));
typedef int32_t v8i_t __attribute__((vector_size(32)));

/* by pointer, not by value: a 64-byte vector argument or result would
 * change the ABI in the clones built without AVX-512 */
#define QS_DEFINE_EPILOGUE(NAME, VT, VIT)                                                                  \
    static inline void NAME(VT *v, bool has_b, float b, const ep1_t *e, int ne)                            \
    {                                                                                                      \
        VT a = *v;                                                                                         \
        if (has_b)                                                                                         \
            a = a + b;                                                                                     \
        for (int q = 0; q < ne; q++) {                                                                     \
            if (e[q].kind == QS_SIM_EP_BN) {                                                               \
                a = (a - e[q].m) * e[q].s + e[q].bt;                                                       \
            } else {                                                                                       \
                /* v < lo ? lo : v, then v > hi ? hi : v (NaN passes), as qs_sim_clamp; */                 \
                /* s - 0 broadcasts s exactly (-0 and infinities included) */                              \
                const VT zero = {0};                                                                       \
                VT lo = e[q].lo - zero, hi = e[q].hi - zero;                                               \
                VIT m = a < lo;                                                                            \
                a = (VT)(((VIT)lo & m) | ((VIT)a & ~m));                                                   \
                m = a > hi;                                                                                \
                a = (VT)(((VIT)hi & m) | ((VIT)a & ~m));                                                   \
            }                                                                                              \
        }                                                                                                  \
        *v = a;                                                                                            \
    }
QS_DEFINE_EPILOGUE(v16_epilogue, v16_t, v16i_t)
QS_DEFINE_EPILOGUE(v8_epilogue, v8_t, v8i_t)

/* 64-byte vectors only where the CPU has 64-byte registers: elsewhere GCC
 * splits them through the stack, and 32-byte vectors (the same lanes, the
 * same operations, so the same bits) run several times faster. */
static bool wide_vectors(void)
{
#if defined(__AVX512F__)
    return true;
#elif defined(__x86_64__)
    static int have = -1;
    if (have < 0)
        have = __builtin_cpu_supports("avx512f") ? 1 : 0;
    return have == 1;
#else
    return false;
#endif
}

QS_TARGET_CLONES
static void dw_strips16(int64_t nout, int ntaps, const float *wk, const int64_t *off, const float *planes,
                        bool has_b, float b, const ep1_t *e, int ne, float *out)
{
    int64_t t = 0;
    for (; t + 4 * DW_STRIP <= nout; t += 4 * DW_STRIP) {
        v16_t a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, x0, x1, x2, x3;
        for (int k = 0; k < ntaps; k++) {
            const float w = wk[k];
            const float *s = planes + off[k] + t;
            memcpy(&x0, s, sizeof x0);
            memcpy(&x1, s + 16, sizeof x1);
            memcpy(&x2, s + 32, sizeof x2);
            memcpy(&x3, s + 48, sizeof x3);
            a0 += w * x0;
            a1 += w * x1;
            a2 += w * x2;
            a3 += w * x3;
        }
        v16_epilogue(&a0, has_b, b, e, ne);
        v16_epilogue(&a1, has_b, b, e, ne);
        v16_epilogue(&a2, has_b, b, e, ne);
        v16_epilogue(&a3, has_b, b, e, ne);
        memcpy(out + t, &a0, sizeof a0);
        memcpy(out + t + 16, &a1, sizeof a1);
        memcpy(out + t + 32, &a2, sizeof a2);
        memcpy(out + t + 48, &a3, sizeof a3);
    }
    for (; t < nout; t += DW_STRIP) {
        v16_t a = {0}, x;
        for (int k = 0; k < ntaps; k++) {
            memcpy(&x, planes + off[k] + t, sizeof x);
            a += wk[k] * x;
        }
        v16_epilogue(&a, has_b, b, e, ne);
        memcpy(out + t, &a, sizeof a);
    }
}

/* dw_strips16 in 32-byte vectors: eight of them cover the same 64 outputs */
QS_TARGET_CLONES
static void dw_strips8(int64_t nout, int ntaps, const float *wk, const int64_t *off, const float *planes,
                       bool has_b, float b, const ep1_t *e, int ne, float *out)
{
    int64_t t = 0;
    for (; t + 4 * DW_STRIP <= nout; t += 4 * DW_STRIP) {
        v8_t a[8] = {{0}}, x;
        for (int k = 0; k < ntaps; k++) {
            const float w = wk[k];
            const float *s = planes + off[k] + t;
            for (int j = 0; j < 8; j++) {
                memcpy(&x, s + 8 * j, sizeof x);
                a[j] += w * x;
            }
        }
        for (int j = 0; j < 8; j++) {
            v8_epilogue(&a[j], has_b, b, e, ne);
            memcpy(out + t + 8 * j, &a[j], sizeof a[j]);
        }
    }
    for (; t < nout; t += DW_STRIP) {
        v8_t a0 = {0}, a1 = {0}, x0, x1;
        for (int k = 0; k < ntaps; k++) {
            memcpy(&x0, planes + off[k] + t, sizeof x0);
            memcpy(&x1, planes + off[k] + t + 8, sizeof x1);
            a0 += wk[k] * x0;
            a1 += wk[k] * x1;
        }
        v8_epilogue(&a0, has_b, b, e, ne);
        v8_epilogue(&a1, has_b, b, e, ne);
        memcpy(out + t, &a0, sizeof a0);
        memcpy(out + t + 8, &a1, sizeof a1);
    }
}

static void dw_strips(int64_t nout, int ntaps, const float *wk, const int64_t *off, const float *planes, bool has_b,
                      float b, const ep1_t *e, int ne, float *out)
{
    if (wide_vectors())
        dw_strips16(nout, ntaps, wk, off, planes, has_b, b, e, ne, out);
    else
        dw_strips8(nout, ntaps, wk, off, planes, has_b, b, e, ne, out);
}
#else
QS_TARGET_CLONES
static void dw_strips(int64_t nout, int ntaps, const float *wk, const int64_t *off, const float *planes, bool has_b,
                      float b, const ep1_t *e, int ne, float *out)
{
    for (int64_t t = 0; t < nout; t += DW_STRIP) {
        float a[DW_STRIP];
        for (int j = 0; j < DW_STRIP; j++)
            a[j] = 0.0f;
        for (int k = 0; k < ntaps; k++) {
            const float w = wk[k];
            const float *s = planes + off[k] + t;
            for (int j = 0; j < DW_STRIP; j++)
                a[j] += w * s[j];
        }
        for (int j = 0; j < DW_STRIP; j++) {
            float v = has_b ? a[j] + b : a[j];
            for (int q = 0; q < ne; q++) {
                if (e[q].kind == QS_SIM_EP_BN) {
                    v = (v - e[q].m) * e[q].s + e[q].bt;
                } else {
                    v = v < e[q].lo ? e[q].lo : v;
                    v = v > e[q].hi ? e[q].hi : v;
                }
            }
            out[t + j] = v;
        }
    }
}
#endif

/* d[0..n) = s[0..n) without a call: rows here are a few dozen floats, and
 * a memcpy call per row costs as much as the copy. Two fixed-size moves,
 * the second overlapping the first, cover 4..32 floats; written without a
 * loop, which the compiler would turn back into a memcpy call. */
static inline void copy_row(float *restrict d, const float *restrict s, int64_t n)
{
    if (n > 32) {
        memcpy(d, s, (size_t)n * sizeof *d);
    } else if (n >= 16) {
        memcpy(d, s, 16 * sizeof *d);
        memcpy(d + n - 16, s + n - 16, 16 * sizeof *d);
    } else if (n >= 8) {
        memcpy(d, s, 8 * sizeof *d);
        memcpy(d + n - 8, s + n - 8, 8 * sizeof *d);
    } else if (n >= 4) {
        memcpy(d, s, 4 * sizeof *d);
        memcpy(d + n - 4, s + n - 4, 4 * sizeof *d);
    } else {
        for (int64_t k = 0; k < n; k++)
            d[k] = s[k];
    }
}

/* One channel into P (its padding stays zero) and P into the column-phase
 * planes: row copies and one long deinterleave, all vectorizable. */
QS_TARGET_CLONES
static void dw_fill(const qs_sim_conv_t *g, const dw_layout_t *l, const float *xc, float *pbuf, float *planes)
{
    float *p = g->sw > 1 ? pbuf : planes;
    for (int64_t iy = 0; iy < g->h; iy++)
        copy_row(p + (iy + g->pt) * l->wp + g->pl, xc + iy * g->w, g->w);
    const int64_t n = l->hp * l->wq;
    if (g->sw == 2) {
        float *restrict e = planes, *restrict o = planes + l->plane;
        const float *restrict src = pbuf;
        for (int64_t k = 0; k < n; k++) {
            e[k] = src[2 * k];
            o[k] = src[2 * k + 1];
        }
    } else if (g->sw > 2) {
        for (int pc = 0; pc < g->sw; pc++) {
            float *restrict d = planes + pc * l->plane;
            const float *restrict src = pbuf + pc;
            for (int64_t k = 0; k < n; k++)
                d[k] = src[k * g->sw];
        }
    }
}

/* Fast path for c/groups == 1 (depthwise with any channel multiplier, or a
 * stem on a one-channel image). Per output element it adds the products in
 * the reference order (ky, kx ascending, from 0; taps in the padding add an
 * exact zero, which leaves the sum unchanged since it never holds -0), then
 * the bias: the same bits as qs_sim_conv_ref. */
void qs_sim_conv_dw(const qs_sim_conv_t *g, const float *x, const float *w, const float *b, const qs_sim_ep_t *ep,
                    float *y, float *scratch)
{
    const dw_layout_t l = dw_layout(g);
    const int64_t mult = g->oc / g->groups;
    const int64_t hw = g->h * g->w, ohw = g->oh * g->ow;
    float *pbuf = scratch;
    float *planes = pbuf + l.pbuf;
    float *acc = planes + g->sw * l.plane;
    /* scratch is 64-byte aligned and nout a multiple of 16 */
    int64_t *off = (int64_t *)(void *)(acc + l.nout);
    for (int ky = 0; ky < g->kh; ky++)
        for (int kx = 0; kx < g->kw; kx++) {
            int64_t c = (int64_t)kx * g->dw;
            off[ky * g->kw + kx] = (c % g->sw) * l.plane + (int64_t)ky * g->dh * l.wq + c / g->sw;
        }
    /* every channel writes the same interior positions, so the padding and
     * the slack zeroed here stay zero */
    memset(scratch, 0, (size_t)(l.pbuf + g->sw * l.plane) * sizeof *scratch);
    for (int64_t ci = 0; ci < g->groups; ci++) {
        dw_fill(g, &l, x + ci * hw, pbuf, planes);
        for (int64_t m = 0; m < mult; m++) {
            const int64_t o = ci * mult + m;
            ep1_t e[QS_SIM_EP_MAX];
            int ne = ep_channel(ep, o, e);
            float *yo = y + o * ohw;
            if (l.rs == g->ow && l.nout == ohw) { /* no thrown-away outputs: straight into y */
                dw_strips(l.nout, l.ntaps, w + o * l.ntaps, off, planes, b != NULL, b ? b[o] : 0.0f, e, ne, yo);
                continue;
            }
            dw_strips(l.nout, l.ntaps, w + o * l.ntaps, off, planes, b != NULL, b ? b[o] : 0.0f, e, ne, acc);
            for (int64_t oy = 0; oy < g->oh; oy++)
                copy_row(yo + oy * g->ow, acc + oy * l.rs, g->ow);
        }
    }
}

size_t qs_sim_conv_gemm_scratch(const qs_sim_conv_t *g)
{
    if (qs_sim_conv_is_direct(g))
        return 0;
    /* the columns, then the padded plane, 64-byte aligned */
    int64_t cols = round_up((g->c / g->groups) * g->kh * g->kw * g->oh * g->ow, 16);
    return (size_t)(cols + (g->h + g->pt + g->pb) * (g->w + g->pl + g->pr));
}

bool qs_sim_conv_is_direct(const qs_sim_conv_t *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pl == 0 && g->pb == 0 &&
           g->pr == 0;
}

/* col[(ci * kh + ky) * kw + kx][oy * ow + ox] = x[ci][iy][ix], 0 in the
 * padding: the K index runs in the OIHW weight order. Each input channel is
 * first copied into a zero-padded plane p (hp x wp), so that every col row
 * is oh copies of ow floats (stride 1) or gathers (stride > 1) with no edge
 * cases; p's padding is zeroed once, since every channel writes the same
 * interior. */
static void im2col(const qs_sim_conv_t *g, const float *x, int64_t ig, float *col, float *p)
{
    const int64_t ohw = g->oh * g->ow;
    const int64_t hp = g->h + g->pt + g->pb, wp = g->w + g->pl + g->pr;
    memset(p, 0, (size_t)(hp * wp) * sizeof *p);
    for (int64_t ci = 0; ci < ig; ci++) {
        const float *xc = x + ci * g->h * g->w;
        for (int64_t iy = 0; iy < g->h; iy++)
            copy_row(p + (iy + g->pt) * wp + g->pl, xc + iy * g->w, g->w);
        for (int ky = 0; ky < g->kh; ky++) {
            for (int kx = 0; kx < g->kw; kx++) {
                float *row = col + ((ci * g->kh + ky) * g->kw + kx) * ohw;
                const float *src = p + (int64_t)ky * g->dh * wp + (int64_t)kx * g->dw;
                for (int64_t oy = 0; oy < g->oh; oy++) {
                    float *d = row + oy * g->ow;
                    const float *sr = src + oy * g->sh * wp;
                    if (g->sw == 1)
                        copy_row(d, sr, g->ow);
                    else
                        for (int64_t ox = 0; ox < g->ow; ox++)
                            d[ox] = sr[ox * g->sw];
                }
            }
        }
    }
}

/* Per group: y[o][t] = sum_k W[o][k] col[k][t] by sgemm (M = C_out/groups,
 * N = H_out*W_out, K = C_in/groups*kh*kw: the same shape for every sample),
 * then + bias. The order of the sum is OpenBLAS's. */
void qs_sim_conv_gemm(const qs_sim_conv_t *g, const float *x, const float *w, const float *b, const qs_sim_ep_t *ep,
                      float *y, float *scratch)
{
    const int64_t ig = g->c / g->groups, og = g->oc / g->groups;
    const int64_t ohw = g->oh * g->ow, k = ig * g->kh * g->kw;
    const bool direct = qs_sim_conv_is_direct(g);
    for (int64_t grp = 0; grp < g->groups; grp++) {
        const float *xg = x + grp * ig * g->h * g->w;
        const float *col = xg;
        if (!direct) {
            im2col(g, xg, ig, scratch, scratch + round_up(k * ohw, 16));
            col = scratch;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)og, (blasint)ohw, (blasint)k, 1.0f,
                    w + grp * og * k, (blasint)k, col, (blasint)ohw, 0.0f, y + grp * og * ohw, (blasint)ohw);
    }
    qs_sim_ep_apply(ep, g->oc, ohw, b, y);
}

/* ---- linear --------------------------------------------------------------------------------- */

/* Reference: y[o] = (sum over i ascending, from 0, of w[o][i] * x[i]) + bias[o]. */
void qs_sim_linear_ref(int64_t in, int64_t out, const float *x, const float *w, const float *b, float *y)
{
    for (int64_t o = 0; o < out; o++) {
        const float *wo = w + o * in;
        float acc = 0.0f;
        for (int64_t i = 0; i < in; i++)
            acc += wo[i] * x[i];
        y[o] = b ? acc + b[o] : acc;
    }
}

void qs_sim_linear_blas(int64_t in, int64_t out, const float *x, const float *w, const float *b, const qs_sim_ep_t *ep,
                        float *y)
{
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)out, (blasint)in, 1.0f, w, (blasint)in, x, 1, 0.0f, y, 1);
    qs_sim_ep_apply(ep, out, 1, b, y);
}

/* ---- elementwise and per-channel ops ---------------------------------------------------------- */

static inline float ep_scalar(float v, bool has_b, float b, const ep1_t *e, int ne)
{
    if (has_b)
        v = v + b;
    for (int q = 0; q < ne; q++) {
        if (e[q].kind == QS_SIM_EP_BN) {
            v = (v - e[q].m) * e[q].s + e[q].bt;
        } else {
            v = v < e[q].lo ? e[q].lo : v;
            v = v > e[q].hi ? e[q].hi : v;
        }
    }
    return v;
}

/* Channel by channel, in one pass (the channel is in cache right after its
 * producer wrote it), with the expressions of qs_sim_batchnorm and
 * qs_sim_clamp. */
QS_TARGET_CLONES
static void ep_rows(const qs_sim_ep_t *ep, int64_t c, int64_t hw, const float *b, float *y, bool wide)
{
    (void)wide; /* without GCC vectors: the scalar loop */
    for (int64_t ch = 0; ch < c; ch++) {
        ep1_t e[QS_SIM_EP_MAX];
        const int ne = ep_channel(ep, ch, e);
        const bool has_b = b != NULL;
        const float bc = has_b ? b[ch] : 0.0f;
        float *row = y + ch * hw;
        int64_t t = 0;
#if defined(__GNUC__)
        /* the last vector's values, computed first from the untouched row and
         * stored last, over values the loop computed identically */
        if (wide && hw >= 16) {
            v16_t tail;
            memcpy(&tail, row + hw - 16, sizeof tail);
            v16_epilogue(&tail, has_b, bc, e, ne);
            for (; t + 16 <= hw; t += 16) {
                v16_t a;
                memcpy(&a, row + t, sizeof a);
                v16_epilogue(&a, has_b, bc, e, ne);
                memcpy(row + t, &a, sizeof a);
            }
            memcpy(row + hw - 16, &tail, sizeof tail);
            continue;
        }
        if (!wide && hw >= 8) {
            v8_t tail;
            memcpy(&tail, row + hw - 8, sizeof tail);
            v8_epilogue(&tail, has_b, bc, e, ne);
            for (; t + 8 <= hw; t += 8) {
                v8_t a;
                memcpy(&a, row + t, sizeof a);
                v8_epilogue(&a, has_b, bc, e, ne);
                memcpy(row + t, &a, sizeof a);
            }
            memcpy(row + hw - 8, &tail, sizeof tail);
            continue;
        }
#endif
        for (; t < hw; t++)
            row[t] = ep_scalar(row[t], has_b, bc, e, ne);
    }
}

void qs_sim_ep_apply(const qs_sim_ep_t *ep, int64_t c, int64_t hw, const float *b, float *y)
{
    if (!b && (!ep || ep->n == 0))
        return;
#if defined(__GNUC__)
    ep_rows(ep, c, hw, b, y, wide_vectors());
#else
    ep_rows(ep, c, hw, b, y, false);
#endif
}

/* y = (x - mean[c]) * scale[c] + beta[c], scale = gamma / sqrtf(var + eps)
 * computed once in float (qs_sim_bn_scale). */
void qs_sim_bn_scale(int64_t c, const float *gamma, const float *var, float eps, float *scale)
{
    for (int64_t i = 0; i < c; i++)
        scale[i] = gamma[i] / sqrtf(var[i] + eps);
}

void qs_sim_batchnorm(int64_t c, int64_t hw, const float *x, const float *mean, const float *scale,
                      const float *beta, float *y)
{
    for (int64_t ch = 0; ch < c; ch++) {
        const float m = mean[ch], s = scale[ch], bt = beta[ch];
        const float *xc = x + ch * hw;
        float *yc = y + ch * hw;
        for (int64_t t = 0; t < hw; t++)
            yc[t] = (xc[t] - m) * s + bt;
    }
}

/* relu (lo 0, hi +inf), relu6 (0, 6) and clip: v < lo ? lo : v > hi ? hi : v,
 * so NaN passes through and -0 stays -0. */
void qs_sim_clamp(int64_t n, const float *x, float lo, float hi, float *y)
{
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        v = v < lo ? lo : v;
        y[i] = v > hi ? hi : v;
    }
}

/* y = ((x0 + x1) + x2) + ...: inputs added left to right. y may be x[0]. */
void qs_sim_add(int64_t n, int nin, const float *const *x, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[0][i] + x[1][i];
    for (int k = 2; k < nin; k++)
        for (int64_t i = 0; i < n; i++)
            y[i] += x[k][i];
}

/* ---- pooling ---------------------------------------------------------------------------------- */

/* Max over the window's elements inside the input (padding never wins);
 * a NaN in the window gives NaN. */
void qs_sim_maxpool(const qs_sim_conv_t *g, const float *x, float *y)
{
    for (int64_t ch = 0; ch < g->c; ch++) {
        const float *xc = x + ch * g->h * g->w;
        float *yc = y + ch * g->oh * g->ow;
        for (int64_t oy = 0; oy < g->oh; oy++) {
            int64_t y0 = oy * g->sh - g->pt;
            for (int64_t ox = 0; ox < g->ow; ox++) {
                int64_t x0 = ox * g->sw - g->pl;
                float m = -INFINITY;
                for (int ky = 0; ky < g->kh; ky++) {
                    int64_t iy = y0 + ky;
                    if (iy < 0 || iy >= g->h)
                        continue;
                    for (int kx = 0; kx < g->kw; kx++) {
                        int64_t ix = x0 + kx;
                        if (ix < 0 || ix >= g->w)
                            continue;
                        float v = xc[iy * g->w + ix];
                        if (v > m || v != v)
                            m = v; /* once NaN, m stays NaN */
                    }
                }
                yc[oy * g->ow + ox] = m;
            }
        }
    }
}

/* Sum (from 0, ky then kx ascending) of the window's elements inside the
 * input, divided by their count: padding is not counted. */
void qs_sim_avgpool(const qs_sim_conv_t *g, const float *x, float *y)
{
    for (int64_t ch = 0; ch < g->c; ch++) {
        const float *xc = x + ch * g->h * g->w;
        float *yc = y + ch * g->oh * g->ow;
        for (int64_t oy = 0; oy < g->oh; oy++) {
            int64_t y0 = oy * g->sh - g->pt;
            for (int64_t ox = 0; ox < g->ow; ox++) {
                int64_t x0 = ox * g->sw - g->pl;
                float s = 0.0f;
                int n = 0;
                for (int ky = 0; ky < g->kh; ky++) {
                    int64_t iy = y0 + ky;
                    if (iy < 0 || iy >= g->h)
                        continue;
                    for (int kx = 0; kx < g->kw; kx++) {
                        int64_t ix = x0 + kx;
                        if (ix < 0 || ix >= g->w)
                            continue;
                        s += xc[iy * g->w + ix];
                        n++;
                    }
                }
                yc[oy * g->ow + ox] = s / (float)n;
            }
        }
    }
}

/* y[c] = (float sum over the plane in memory order, from 0) / (float)(h * w). */
void qs_sim_gap(int64_t c, int64_t hw, const float *x, float *y)
{
    const float n = (float)hw;
    int64_t ch = 0;
    /* eight channels at a time: eight independent sums, each in its own order */
    for (; ch + 8 <= c; ch += 8) {
        float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        const float *xc = x + ch * hw;
        for (int64_t t = 0; t < hw; t++)
            for (int k = 0; k < 8; k++)
                s[k] += xc[k * hw + t];
        for (int k = 0; k < 8; k++)
            y[ch + k] = s[k] / n;
    }
    for (; ch < c; ch++) {
        const float *xc = x + ch * hw;
        float s = 0.0f;
        for (int64_t t = 0; t < hw; t++)
            s += xc[t];
        y[ch] = s / n;
    }
}

/* ---- concat, softmax ---------------------------------------------------------------------------- */

/* y = the inputs' channels one after another, in input order (one sample). */
void qs_sim_concat(int nin, const float *const *x, const int64_t *sizes, float *y)
{
    for (int k = 0; k < nin; k++) {
        memcpy(y, x[k], (size_t)sizes[k] * sizeof *y);
        y += sizes[k];
    }
}

/* m = max x, e_i = expf(x_i - m), s = sum of e_i in index order from 0,
 * y_i = e_i / s. A NaN or +Inf input makes every output NaN (through s).
 * y may be x. */
void qs_sim_softmax(int64_t n, const float *x, float *y)
{
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (x[i] > m)
            m = x[i];
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        y[i] = expf(x[i] - m);
        s += y[i];
    }
    for (int64_t i = 0; i < n; i++)
        y[i] = y[i] / s;
}
