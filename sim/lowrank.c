/* sim/lowrank.c — low-rank factorization: a copy of a graph in which chosen
 * conv2d/linear layers become two (definitions in sim/lowrank.h). The graph
 * is rebuilt in topological order: a factorized layer's first factor is
 * inserted just before it and every input index is remapped. */
#include "sim/lowrank.h"
#include "sim/sim_internal.h"

#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_vector.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[QS_LOWRANK_COUNT] = {"channel", "spatial"};

const char *qs_lowrank_kind_name(qs_lowrank_kind_t k)
{
    return (int)k >= 0 && k < QS_LOWRANK_COUNT ? kind_names[k] : "?";
}

int qs_lowrank_kind_parse(const char *name, const char *what, qs_lowrank_kind_t *k)
{
    for (int i = 0; i < QS_LOWRANK_COUNT; i++)
        if (name && strcmp(name, kind_names[i]) == 0) {
            *k = (qs_lowrank_kind_t)i;
            return QS_OK;
        }
    return qs_error(QS_ERR_INVALID, "%s: unknown low-rank split '%s', expected channel or spatial", what,
                    name ? name : "(null)");
}

void qs_lowrank_opts_default(qs_lowrank_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->kind = QS_LOWRANK_CHANNEL;
    o->ratio = NAN;
    o->energy = NAN;
}

int qs_lowrank_check(const qs_lowrank_opts_t *o)
{
    if (!o)
        return qs_error(QS_ERR_INVALID, "lowrank: no options");
    if ((int)o->kind < 0 || o->kind >= QS_LOWRANK_COUNT)
        return qs_error(QS_ERR_INVALID, "lowrank: kind %d: expected channel or spatial", (int)o->kind);
    bool r = !isnan(o->ratio), e = !isnan(o->energy);
    if (r && e)
        return qs_error(QS_ERR_INVALID, "lowrank: both ratio (%g) and energy (%g) are set; give only one of them",
                        o->ratio, o->energy);
    if (!r && !e)
        return qs_error(QS_ERR_INVALID, "lowrank: neither ratio nor energy is set; give one of them");
    if (r && !(o->ratio > 0.0 && o->ratio <= 1.0))
        return qs_error(QS_ERR_INVALID, "lowrank: ratio %g: expected a fraction of the full rank in (0, 1]", o->ratio);
    if (e && !(o->energy >= 0.0 && o->energy < 1.0))
        return qs_error(QS_ERR_INVALID, "lowrank: energy %g: expected a discarded-energy fraction in [0, 1)",
                        o->energy);
    return QS_OK;
}

int64_t qs_lowrank_rank(const double *s, int64_t k, const qs_lowrank_opts_t *o, double *discarded)
{
    if (k < 1)
        return 0;
    /* tail[r] = Σ_{i>=r} σ_i², summed from the smallest up */
    double *tail = malloc((size_t)(k + 1) * sizeof *tail);
    if (!tail) {
        qs_error(QS_ERR_NOMEM, "lowrank: out of memory");
        return -1;
    }
    tail[k] = 0.0;
    for (int64_t i = k - 1; i >= 0; i--)
        tail[i] = tail[i + 1] + s[i] * s[i];
    double total = tail[0];
    int64_t r;
    if (!isnan(o->ratio)) {
        r = (int64_t)ceil(o->ratio * (double)k - 1e-9);
        r = r < 1 ? 1 : r > k ? k : r;
    } else {
        r = k;
        for (int64_t j = 1; j <= k; j++)
            if (total == 0.0 || tail[j] / total <= o->energy) {
                r = j;
                break;
            }
    }
    if (discarded)
        *discarded = total > 0.0 ? tail[r] / total : 0.0;
    free(tail);
    return r;
}

/* ---- the SVD ------------------------------------------------------------------------------- */

/* a (m×n, row-major) = U diag(s) Vᵀ with k = min(m, n): u m×k, s[k] descending, v n×k (row-major). */
static int svd(const double *a, int64_t m, int64_t n, double *u, double *s, double *v)
{
    bool tr = m < n; /* Jacobi wants rows >= columns: decompose aᵀ = V Σ Uᵀ */
    int64_t M = tr ? n : m, N = tr ? m : n;
    double *A = malloc((size_t)(M * N) * sizeof *A), *Q = malloc((size_t)(N * N) * sizeof *Q);
    double *S = malloc((size_t)N * sizeof *S);
    int64_t *idx = malloc((size_t)N * sizeof *idx);
    if (!A || !Q || !S || !idx) {
        free(A), free(Q), free(S), free(idx);
        return qs_error(QS_ERR_NOMEM, "lowrank: out of memory for a %lldx%lld SVD", (long long)m, (long long)n);
    }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++)
            A[tr ? j * N + i : i * N + j] = a[i * n + j];
    gsl_matrix_view Av = gsl_matrix_view_array(A, (size_t)M, (size_t)N);
    gsl_matrix_view Qv = gsl_matrix_view_array(Q, (size_t)N, (size_t)N);
    gsl_vector_view Sv = gsl_vector_view_array(S, (size_t)N);
    qs_sim_gsl_init();
    int st = gsl_linalg_SV_decomp_jacobi(&Av.matrix, &Qv.matrix, &Sv.vector);
    if (st) {
        free(A), free(Q), free(S), free(idx);
        return qs_error(QS_ERR_NUMERIC, "lowrank: the SVD of a %lldx%lld matrix failed (GSL status %d)", (long long)m,
                        (long long)n, st);
    }
    /* descending, ties by index (a stable insertion sort: GSL already sorts, this only makes sure) */
    for (int64_t i = 0; i < N; i++) {
        int64_t t = i, j = i;
        for (; j > 0 && S[idx[j - 1]] < S[t]; j--)
            idx[j] = idx[j - 1];
        idx[j] = t;
    }
    /* A holds the left vectors of the decomposed matrix (M×N), Q its right ones (N×N) */
    for (int64_t c = 0; c < N; c++) {
        int64_t p = idx[c];
        s[c] = S[p];
        for (int64_t i = 0; i < M; i++)
            (tr ? v : u)[i * N + c] = A[i * N + p];
        for (int64_t i = 0; i < N; i++)
            (tr ? u : v)[i * N + c] = Q[i * N + p];
    }
    free(A), free(Q), free(S), free(idx);
    return QS_OK;
}

/* ---- one layer ------------------------------------------------------------------------------ */

static bool is_layer(const qs_node_t *n) { return (n->op == QS_OP_CONV2D || n->op == QS_OP_LINEAR) && n->weight; }

/* The plan for one layer: the two factors' weights once computed. */
typedef struct {
    bool selected, factorize;
    qs_tensor_t *w1, *w2;
    qs_lowrank_layer_t rep;
} plan_t;

static int64_t layer_params(const qs_node_t *n) { return n->weight->size + (n->bias ? n->bias->size : 0); }

/* Chooses the rank of layer i and computes its factors (or says why it stays whole). */
static int plan_layer(const qs_graph_t *g, int i, const qs_lowrank_opts_t *o, plan_t *p)
{
    const qs_node_t *n = &g->nodes[i];
    qs_lowrank_layer_t *r = &p->rep;
    snprintf(r->name, sizeof r->name, "%s", n->name);
    r->op = n->op;
    r->kind = o->kind;
    r->macs_before = r->macs_after = qs_node_macs(g, i);
    r->params_before = r->params_after = layer_params(n);
    bool conv = n->op == QS_OP_CONV2D;
    if (conv && n->groups != 1) {
        bool dw = n->groups == n->weight->shape[0] && n->weight->shape[1] == 1;
        snprintf(r->skipped, sizeof r->skipped, "a %s convolution (groups %d)", dw ? "depthwise" : "grouped",
                 n->groups);
        return QS_OK;
    }
    bool spatial = o->kind == QS_LOWRANK_SPATIAL;
    if (spatial && !conv) {
        snprintf(r->skipped, sizeof r->skipped, "the spatial split applies to convolutions only");
        return QS_OK;
    }
    if (spatial && (n->kh < 2 || n->kw < 2)) {
        snprintf(r->skipped, sizeof r->skipped, "the spatial split needs a kernel of at least 2x2, not %dx%d", n->kh,
                 n->kw);
        return QS_OK;
    }
    const int64_t O = n->weight->shape[0], I = n->weight->shape[1];
    const int64_t kh = conv ? n->kh : 1, kw = conv ? n->kw : 1;
    const int64_t rows = spatial ? I * kh : O, cols = spatial ? O * kw : I * kh * kw;
    const int64_t full = rows < cols ? rows : cols;
    double *a = malloc((size_t)(rows * cols) * sizeof *a), *u = malloc((size_t)(rows * full) * sizeof *u);
    double *v = malloc((size_t)(cols * full) * sizeof *v), *s = malloc((size_t)full * sizeof *s);
    int rc = QS_OK;
    if (!a || !u || !v || !s) {
        rc = qs_error(QS_ERR_NOMEM, "lowrank: node '%s': out of memory", n->name);
        goto done;
    }
    const float *w = qs_f32(n->weight), *m = n->mask ? qs_f32(n->mask) : NULL;
    for (int64_t k = 0; k < n->weight->size; k++) {
        double x = m ? (double)(w[k] * m[k]) : (double)w[k];
        if (!spatial) {
            a[k] = x; /* [O, I·kh·kw] is the weight's own layout */
            continue;
        }
        int64_t xx = k % kw, y = k / kw % kh, ii = k / (kw * kh) % I, oo = k / (kw * kh * I);
        a[(ii * kh + y) * cols + oo * kw + xx] = x;
    }
    if ((rc = svd(a, rows, cols, u, s, v)) < 0) {
        qs_error_context("node '%s': ", n->name);
        goto done;
    }
    int64_t rank = qs_lowrank_rank(s, full, o, &r->discarded);
    if (rank < 0) {
        rc = qs_last_status();
        goto done;
    }
    r->full_rank = full;
    r->rank = rank;
    /* the factors' MACs and parameters (per sample; oh, ow: the layer's output) */
    int64_t macs;
    if (!conv)
        macs = rank * I + O * rank;
    else {
        int64_t oh = n->out_shape[1], ow = n->out_shape[2];
        if (spatial) {
            int64_t win = g->nodes[n->inputs[0]].out_shape[2]; /* the first factor keeps the input's width */
            macs = rank * oh * win * I * kh + O * oh * ow * rank * kw;
        } else
            macs = oh * ow * rank * I * kh * kw + oh * ow * O * rank;
    }
    int64_t params = spatial ? rank * I * kh + O * rank * kw : rank * I * kh * kw + O * rank;
    params += n->bias ? n->bias->size : 0;
    if (macs >= r->macs_before && !o->force) {
        snprintf(r->skipped, sizeof r->skipped, "rank %lld keeps %.1f%% of the MACs", (long long)rank,
                 r->macs_before > 0 ? 100.0 * (double)macs / (double)r->macs_before : 100.0);
        goto done;
    }
    /* the factors */
    int64_t s1[4], s2[4];
    int nd = conv ? 4 : 2;
    if (!conv) {
        s1[0] = rank, s1[1] = I;
        s2[0] = O, s2[1] = rank;
    } else if (spatial) {
        s1[0] = rank, s1[1] = I, s1[2] = kh, s1[3] = 1;
        s2[0] = O, s2[1] = rank, s2[2] = 1, s2[3] = kw;
    } else {
        s1[0] = rank, s1[1] = I, s1[2] = kh, s1[3] = kw;
        s2[0] = O, s2[1] = rank, s2[2] = 1, s2[3] = 1;
    }
    if (!(p->w1 = qs_tensor_create(QS_F32, nd, s1)) || !(p->w2 = qs_tensor_create(QS_F32, nd, s2))) {
        rc = qs_error_context("lowrank: node '%s': ", n->name);
        goto done;
    }
    float *w1 = qs_f32(p->w1), *w2 = qs_f32(p->w2);
    if (spatial) {
        /* A[j, i, y, 0] = U[(i, y), j] √σ_j; B[o, j, 0, x] = √σ_j V[(o, x), j] */
        for (int64_t j = 0; j < rank; j++) {
            double q = sqrt(s[j]);
            for (int64_t t = 0; t < rows; t++)
                w1[j * rows + t] = (float)(u[t * full + j] * q);
            for (int64_t oo = 0; oo < O; oo++)
                for (int64_t xx = 0; xx < kw; xx++)
                    w2[(oo * rank + j) * kw + xx] = (float)(v[(oo * kw + xx) * full + j] * q);
        }
    } else {
        /* first rows: √σ_j V[:, j]ᵀ; second: U[:, j] √σ_j */
        for (int64_t j = 0; j < rank; j++) {
            double q = sqrt(s[j]);
            for (int64_t t = 0; t < cols; t++)
                w1[j * cols + t] = (float)(v[t * full + j] * q);
            for (int64_t oo = 0; oo < O; oo++)
                w2[oo * rank + j] = (float)(u[oo * full + j] * q);
        }
    }
    p->factorize = true;
    r->factorized = true;
    r->macs_after = macs;
    r->params_after = params;
done:
    free(a), free(u), free(v), free(s);
    return rc;
}

/* Marks the layers named in o->layers (all conv2d/linear when none). */
static int select_layers(const qs_graph_t *g, const qs_lowrank_opts_t *o, plan_t *plan)
{
    if (!o->layers || !*o->layers) {
        for (int i = 0; i < g->nnodes; i++)
            plan[i].selected = is_layer(&g->nodes[i]);
        return QS_OK;
    }
    char *list = strdup(o->layers), *save = NULL;
    if (!list)
        return qs_error(QS_ERR_NOMEM, "lowrank: out of memory");
    int rc = QS_OK;
    for (char *t = strtok_r(list, ",", &save); t && rc >= 0; t = strtok_r(NULL, ",", &save)) {
        int i = qs_graph_find(g, t);
        if (i < 0)
            rc = qs_error(QS_ERR_INVALID, "lowrank: layers: graph '%s' has no node named '%s'", g->name, t);
        else if (!is_layer(&g->nodes[i]))
            rc = qs_error(QS_ERR_INVALID, "lowrank: layers: node '%s' is a %s, not a conv2d or linear", t,
                          qs_op_name(g->nodes[i].op));
        else
            plan[i].selected = true;
    }
    free(list);
    return rc;
}

/* The first factor's name: "L.lr1", else "L.lrK" with the smallest free K. */
static int first_name(const qs_graph_t *g, const qs_graph_t *c, const char *base, char *name)
{
    for (int k = 1; k < 1000; k++) {
        int len = snprintf(name, QS_NAME_MAX, "%s.lr%d", base, k);
        if (len >= QS_NAME_MAX)
            return qs_error(QS_ERR_INVALID,
                            "lowrank: node '%s': the name of its first factor '%s.lr%d' would be longer than %d "
                            "characters",
                            base, base, k, QS_NAME_MAX - 1);
        if (qs_graph_find(g, name) < 0 && qs_graph_find(c, name) < 0)
            return QS_OK;
    }
    return qs_error(QS_ERR_INVALID, "lowrank: node '%s': no free name for its first factor", base);
}

/* Clones node n's tensors into *d (NULL where n has none); false when out of memory. */
static bool clone_tensors(const qs_node_t *n, qs_node_t *d)
{
    const qs_tensor_t *src[] = {n->weight, n->bias, n->gamma, n->beta, n->mean, n->var, n->mask};
    qs_tensor_t **dst[] = {&d->weight, &d->bias, &d->gamma, &d->beta, &d->mean, &d->var, &d->mask};
    bool ok = true;
    for (size_t k = 0; k < sizeof src / sizeof *src; k++) {
        *dst[k] = NULL;
        if (src[k] && !(*dst[k] = qs_tensor_clone(src[k])))
            ok = false;
    }
    return ok;
}

int qs_graph_lowrank(const qs_graph_t *g, const qs_lowrank_opts_t *o, qs_graph_t **out, qs_lowrank_report_t *rep)
{
    if (out)
        *out = NULL;
    if (rep)
        memset(rep, 0, sizeof *rep);
    if (!g || !o || !out)
        return qs_error(QS_ERR_INVALID, "lowrank: no graph, options or output");
    int rc = qs_lowrank_check(o);
    if (rc < 0)
        return rc;
    const char *kname = qs_lowrank_kind_name(o->kind);
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i].out_ndim == 0)
            return qs_error(QS_ERR_INVALID, "lowrank: node '%s' has no shape: check the graph (qs_graph_infer) first",
                            g->nodes[i].name);
    plan_t *plan = calloc((size_t)g->nnodes, sizeof *plan);
    int *map = malloc((size_t)g->nnodes * sizeof *map);
    qs_graph_t *c = NULL;
    if (!plan || !map) {
        rc = qs_error(QS_ERR_NOMEM, "lowrank: out of memory");
        goto done;
    }
    if ((rc = select_layers(g, o, plan)) < 0)
        goto done;
    for (int i = 0; i < g->nnodes && rc >= 0; i++)
        if (plan[i].selected)
            rc = plan_layer(g, i, o, &plan[i]);
    if (rc < 0)
        goto done;
    /* rebuild in topological order, each first factor just before its layer */
    if (!(c = qs_graph_create(g->name, g->in_c, g->in_h, g->in_w))) {
        rc = qs_error_context("lowrank: ");
        goto done;
    }
    c->input_scale = g->input_scale;
    memcpy(c->norm_mean, g->norm_mean, sizeof c->norm_mean);
    memcpy(c->norm_std, g->norm_std, sizeof c->norm_std);
    snprintf(c->nodes[0].name, sizeof c->nodes[0].name, "%s", g->nodes[0].name);
    map[0] = 0;
    for (int i = 1; i < g->nnodes; i++) {
        const qs_node_t *n = &g->nodes[i];
        qs_node_t nd = *n;
        for (int k = 0; k < nd.ninputs; k++)
            nd.inputs[k] = map[n->inputs[k]];
        if (!plan[i].factorize) {
            if (!clone_tensors(n, &nd)) {
                qs_sim_node_free_tensors(&nd);
                rc = qs_error(QS_ERR_NOMEM, "lowrank: out of memory copying node '%s'", n->name);
                goto done;
            }
            if ((rc = qs_graph_add(c, &nd)) < 0)
                goto done;
            map[i] = rc;
            continue;
        }
        /* the first factor: the layer's input, no bias, no mask */
        char name[QS_NAME_MAX];
        if ((rc = first_name(g, c, n->name, name)) < 0)
            goto done;
        qs_node_t f = qs_node_init(n->op, name, 1, nd.inputs);
        qs_node_t sc = nd;
        sc.weight = sc.bias = sc.gamma = sc.beta = sc.mean = sc.var = sc.mask = NULL;
        if (n->op == QS_OP_CONV2D) {
            f.groups = sc.groups = 1;
            if (o->kind == QS_LOWRANK_SPATIAL) {
                f.kh = n->kh, f.kw = 1;
                f.stride_h = n->stride_h, f.stride_w = 1;
                f.dil_h = n->dil_h, f.dil_w = 1;
                f.pad_top = n->pad_top, f.pad_bottom = n->pad_bottom, f.pad_left = f.pad_right = 0;
                sc.kh = 1, sc.kw = n->kw;
                sc.stride_h = 1, sc.stride_w = n->stride_w;
                sc.dil_h = 1, sc.dil_w = n->dil_w;
                sc.pad_top = sc.pad_bottom = 0, sc.pad_left = n->pad_left, sc.pad_right = n->pad_right;
            } else {
                f.kh = n->kh, f.kw = n->kw;
                f.stride_h = n->stride_h, f.stride_w = n->stride_w;
                f.dil_h = n->dil_h, f.dil_w = n->dil_w;
                f.pad_top = n->pad_top, f.pad_left = n->pad_left, f.pad_bottom = n->pad_bottom;
                f.pad_right = n->pad_right;
                sc.kh = sc.kw = 1;
                sc.stride_h = sc.stride_w = 1;
                sc.dil_h = sc.dil_w = 1;
                sc.pad_top = sc.pad_left = sc.pad_bottom = sc.pad_right = 0;
            }
        }
        f.weight = plan[i].w1;
        plan[i].w1 = NULL; /* taken over by the graph */
        if ((rc = qs_graph_add(c, &f)) < 0) {
            qs_error_context("lowrank: node '%s': ", n->name);
            goto done;
        }
        sc.ninputs = 1;
        sc.inputs[0] = rc;
        sc.weight = plan[i].w2;
        plan[i].w2 = NULL;
        if (n->bias && !(sc.bias = qs_tensor_clone(n->bias))) {
            qs_sim_node_free_tensors(&sc);
            rc = qs_error(QS_ERR_NOMEM, "lowrank: out of memory copying node '%s'", n->name);
            goto done;
        }
        if ((rc = qs_graph_add(c, &sc)) < 0)
            goto done;
        map[i] = rc;
    }
    c->output = map[g->output];
    if ((rc = qs_graph_infer(c)) < 0) {
        qs_error_context("lowrank %s: the factorized graph does not check: ", kname);
        goto done;
    }
    if (rep) {
        rep->macs_before = qs_graph_macs(g);
        rep->macs_after = qs_graph_macs(c);
        rep->params_before = qs_graph_params(g);
        rep->params_after = qs_graph_params(c);
        for (int i = 0; i < g->nnodes; i++) {
            if (!plan[i].selected)
                continue;
            if (plan[i].rep.factorized)
                rep->factorized++;
            else
                rep->skipped++;
            if (rep->nlayers < QS_LOWRANK_MAX_REPORT)
                rep->layer[rep->nlayers++] = plan[i].rep;
        }
    }
    *out = c;
    c = NULL;
    rc = QS_OK;
done:
    for (int i = 0; plan && i < g->nnodes; i++) {
        qs_tensor_free(plan[i].w1);
        qs_tensor_free(plan[i].w2);
    }
    free(plan);
    free(map);
    qs_graph_free(c);
    return rc;
}
