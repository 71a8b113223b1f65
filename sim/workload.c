/* sim/workload.c — the workload of a quantized network (DESIGN, "Contracts";
 * hwmodels/workload.h): per layer the op and geometry, MACs, the formats of
 * weights, inputs and outputs, granularity, the bytes of scales and zero
 * points, the accumulator width, sparsity from the pruning mask, and tensor
 * sizes. Needs no calibration: everything here follows from the graph and
 * the quantization configuration. */
#include "sim/sim_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int64_t elems(const qs_node_t *n)
{
    int64_t e = 1;
    for (int d = 0; d < n->out_ndim; d++)
        e *= n->out_shape[d];
    return e;
}

static void fmt_float(qs_wl_format_t *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "fp32");
    f->bits = 32;
    f->is_signed = true;
}

static void fmt_of(const qs_quantizer_t *q, bool on, qs_wl_format_t *f)
{
    if (!on) {
        fmt_float(f);
        return;
    }
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "int%d", q->bits);
    f->bits = q->bits;
    f->grid_bits = q->bits;
    qs_grid_name(q, f->grid, sizeof f->grid);
    f->is_signed = q->scheme != QS_SCHEME_UNSIGNED && q->scheme != QS_SCHEME_ASYMMETRIC;
    f->asymmetric = q->scheme == QS_SCHEME_ASYMMETRIC || q->scheme == QS_SCHEME_ASYMMETRIC_SIGNED;
    if (q->grid == QS_GRID_UNIFORM)
        return;
    /* The hardware operand: sign-basis binary as binary, float and block formats by
     * name, codebooks as their b-bit indices (the decode to the levels is not priced). */
    f->asymmetric = false;
    f->is_signed = true;
    if (q->grid == QS_GRID_LS1) {
        snprintf(f->name, sizeof f->name, "binary");
    } else if (qs_grid_is_float(q->grid)) {
        snprintf(f->name, sizeof f->name, "%s", f->grid);
        if (q->grid == QS_GRID_FLOAT && qs_mf_name_of(q->fexp, q->fman, q->fconv))
            snprintf(f->name, sizeof f->name, "%s", qs_mf_name_of(q->fexp, q->fman, q->fconv));
    } else if (q->grid == QS_GRID_BFP && q->grid_k == 8 && q->bits == 8 && q->block == 32) {
        snprintf(f->name, sizeof f->name, "mxint8");
    }
}

/* The activation format at the output of node j (the point covering it). */
static void act_fmt(const qs_qnet_t *q, int j, qs_wl_format_t *f)
{
    int p = q->layer[j].point;
    if (p >= 0 && q->layer[p].ashare >= 0)
        p = q->layer[p].ashare;
    if (p < 0 || !q->layer[p].aq)
        fmt_float(f);
    else
        fmt_of(&q->layer[p].aquant, true, f);
}

static int scale_bytes(qs_scale_type_t t)
{
    return t == QS_SCALE_FP16 || t == QS_SCALE_BF16 ? 2 : t == QS_SCALE_POW2 || t == QS_SCALE_E8M0 ? 1 : 4;
}

/* Sparsity of a pruning mask: N:M along the reduction dimension (the
 * largest count of kept weights in any M consecutive ones of a row, M = 4 or
 * 8) when that is below M, else unstructured with its density. */
static void mask_sparsity(const qs_node_t *n, qs_wl_layer_t *l)
{
    l->sparsity = QS_WL_SPARSE_NONE;
    l->density = 1;
    if (!n->mask || n->mask->size == 0)
        return;
    const float *m = qs_f32(n->mask);
    int64_t rows = n->mask->shape[0], k = n->mask->size / rows, kept = 0;
    for (int64_t i = 0; i < n->mask->size; i++)
        kept += m[i] != 0;
    if (kept == n->mask->size)
        return;
    l->density = kept ? (double)kept / (double)n->mask->size : 1e-9;
    static const int ms[] = {4, 8};
    for (size_t t = 0; t < sizeof ms / sizeof *ms; t++) {
        int M = ms[t], worst = 0;
        if (k % M)
            continue;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t g = 0; g < k; g += M) {
                int c = 0;
                for (int j = 0; j < M; j++)
                    c += m[r * k + g + j] != 0;
                if (c > worst)
                    worst = c;
            }
        if (worst < M) {
            l->sparsity = QS_WL_SPARSE_NM;
            l->sparse_n = worst;
            l->sparse_m = M;
            return;
        }
    }
    l->sparsity = QS_WL_SPARSE_UNSTRUCTURED;
}

/* node i's output is the network's: the output itself or reached through shape-only ops */
static bool is_output(const qs_graph_t *g, int i)
{
    int j = g->output;
    while (j > i && g->nodes[j].ninputs == 1 &&
           (g->nodes[j].op == QS_OP_FLATTEN || g->nodes[j].op == QS_OP_RESHAPE || g->nodes[j].op == QS_OP_SOFTMAX ||
            g->nodes[j].op == QS_OP_RELU || g->nodes[j].op == QS_OP_RELU6 || g->nodes[j].op == QS_OP_CLIP))
        j = g->nodes[j].inputs[0];
    return j == i;
}

/* node j is the network input, or only shape ops separate it from it */
static bool is_input(const qs_graph_t *g, int j)
{
    while (j > 0 && g->nodes[j].ninputs == 1 &&
           (g->nodes[j].op == QS_OP_FLATTEN || g->nodes[j].op == QS_OP_RESHAPE))
        j = g->nodes[j].inputs[0];
    return j == 0;
}

int qs_qnet_workload(const qs_qnet_t *q, const qs_int_config_t *cfg, qs_workload_t **out)
{
    *out = NULL;
    const qs_graph_t *g = q->g;
    int n = 0;
    for (int i = 1; i < g->nnodes; i++) {
        qs_op_t op = g->nodes[i].op;
        n += op == QS_OP_CONV2D || op == QS_OP_LINEAR || op == QS_OP_ADD || op == QS_OP_CONCAT ||
             op == QS_OP_MAXPOOL || op == QS_OP_AVGPOOL || op == QS_OP_GAP;
    }
    qs_workload_t *w = qs_workload_alloc(n);
    if (!w)
        return qs_error(QS_ERR_NOMEM, "out of memory");
    snprintf(w->model, sizeof w->model, "%s", g->name);
    int k = 0;
    for (int i = 1; i < g->nnodes; i++) {
        const qs_node_t *nd = &g->nodes[i];
        const qs_qlayer_t *L = &q->layer[i];
        qs_op_t op = nd->op;
        if (!(op == QS_OP_CONV2D || op == QS_OP_LINEAR || op == QS_OP_ADD || op == QS_OP_CONCAT ||
              op == QS_OP_MAXPOOL || op == QS_OP_AVGPOOL || op == QS_OP_GAP))
            continue;
        qs_wl_layer_t *l = &w->layer[k++];
        snprintf(l->name, sizeof l->name, "%s", nd->name);
        snprintf(l->op, sizeof l->op, "%s", qs_op_name(op));
        const qs_node_t *in = &g->nodes[nd->inputs[0]];
        l->c_in = in->out_shape[0];
        l->h_in = in->out_ndim == 3 ? in->out_shape[1] : 1;
        l->w_in = in->out_ndim == 3 ? in->out_shape[2] : 1;
        l->c_out = nd->out_shape[0];
        l->h_out = nd->out_ndim == 3 ? nd->out_shape[1] : 1;
        l->w_out = nd->out_ndim == 3 ? nd->out_shape[2] : 1;
        l->kh = nd->kh;
        l->kw = nd->kw;
        l->stride_h = nd->stride_h;
        l->stride_w = nd->stride_w;
        l->groups = op == QS_OP_CONV2D ? nd->groups : 1;
        l->y_elems = elems(nd);
        for (int j = 0; j < nd->ninputs; j++)
            l->x_elems += elems(&g->nodes[nd->inputs[j]]);
        act_fmt(q, nd->inputs[0], &l->x);
        act_fmt(q, i, &l->y);
        l->density = 1;
        l->x_from_input = is_input(g, nd->inputs[0]);
        l->y_is_output = is_output(g, i);
        if (op == QS_OP_ADD)
            l->ops = l->y_elems * (nd->ninputs - 1);
        else if (op == QS_OP_MAXPOOL || op == QS_OP_AVGPOOL)
            l->ops = l->y_elems * nd->kh * nd->kw;
        else if (op == QS_OP_GAP)
            l->ops = l->x_elems;
        if (op != QS_OP_CONV2D && op != QS_OP_LINEAR)
            continue;
        l->macs = qs_node_macs(g, i);
        l->k = nd->weight->size / nd->weight->shape[0];
        l->w_elems = nd->weight->size;
        l->b_elems = nd->bias ? nd->bias->size : 0;
        fmt_of(&L->wquant, L->wq, &l->w);
        l->bias_bits = !nd->bias ? 0 : L->bq && L->wq ? L->bquant.bits : 32;
        if (L->wq) {
            const qs_granularity_t *gr = &L->wquant.gran;
            int64_t nscales = 1;
            l->w_gran = gr->kind == QS_GRAN_CHANNEL ? QS_WL_GRAN_CHANNEL
                        : gr->kind == QS_GRAN_GROUP ? QS_WL_GRAN_GROUP
                                                     : QS_WL_GRAN_TENSOR;
            if (gr->kind == QS_GRAN_CHANNEL) {
                nscales = nd->weight->shape[0];
            } else if (gr->kind == QS_GRAN_GROUP) {
                l->w_group = gr->group;
                nscales = nd->weight->shape[0] * ((l->k + gr->group - 1) / gr->group);
            }
            int zp = l->w.asymmetric ? (L->wquant.bits + 7) / 8 : 0;
            l->scale_bytes = nscales * (scale_bytes(L->wquant.scale_type) + zp);
            if (L->wquant.grid != QS_GRID_UNIFORM) /* level tables, block scales, the nvfp4 tensor scale */
                l->scale_bytes = (int64_t)ceil(qs_grid_overhead_bits(&L->wquant, l->w_elems, nscales) *
                                               (double)l->w_elems / 8.0);
        }
        mask_sparsity(nd, l);
        if (cfg) {
            qs_acc_t acc;
            qs_requant_t rq;
            if (qs_sim_int_resolve(cfg, nd->name, &acc, &rq) < 0) {
                qs_workload_free(w);
                return qs_last_status();
            }
            l->acc_bits = acc.kind == QS_ACC_FLOAT ? 1 + acc.exp_bits + acc.man_bits : acc.bits;
        }
    }
    *out = w;
    return QS_OK;
}
