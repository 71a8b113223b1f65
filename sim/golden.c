/* sim/golden.c — golden test vectors for RTL test benches (docs/golden.md):
 * one image through the integer engine with its accumulators kept, and for
 * each chosen conv2d/linear layer the input codes, weight codes, int32 bias,
 * accumulator values and output codes, with the grids, the accumulator and
 * the requantizer that relate them. They go to one HDF5 file (golden.h5) and
 * to $readmemh text files (NAME.input.hex, ...) with a description per layer
 * (NAME.txt).
 *
 * Everything is computed and checked before the first file is touched: the
 * engine run, the grids, the clamps, every value against its declared width.
 * Then every file is written aside (PATH.tmp-PID-N in the same folder),
 * golden.h5 is committed and the text files are renamed over their names, so
 * a run that fails leaves the folder as it was. */
#include "config.h"

#include "sim/sim_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool is_dot(qs_op_t op) { return op == QS_OP_CONV2D || op == QS_OP_LINEAR; }

/* ---- choosing layers ------------------------------------------------------------------------------ */

/* "stem, b1.dw, ..., fc" into buf (cut with "..." when it does not fit) */
static void layer_list(const qs_graph_t *g, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < g->nnodes; i++) {
        if (!is_dot(g->nodes[i].op))
            continue;
        int w = snprintf(buf + used, n - used, "%s%s", used ? ", " : "", g->nodes[i].name);
        if (w < 0 || (size_t)w >= n - used) {
            if (n > 4)
                snprintf(buf + (used < n - 4 ? used : n - 4), 4, "...");
            return;
        }
        used += (size_t)w;
    }
}

/* node i is no conv2d/linear: an error naming it and listing those there are */
static int not_a_layer(const qs_graph_t *g, int i)
{
    char list[1024];
    layer_list(g, list, sizeof list);
    return qs_error(QS_ERR_INVALID, "golden: node '%s' (%s) is not a conv2d or linear layer: golden vectors are "
                    "written for dot products (conv2d/linear layers of '%s': %s)", g->nodes[i].name,
                    qs_op_name(g->nodes[i].op), g->name, list);
}

int qs_golden_find(const qs_qnet_t *q, const char *name)
{
    if (!q || !q->g || !name)
        return qs_error(QS_ERR_INVALID, "qs_golden_find: no network or name");
    const qs_graph_t *g = q->g;
    int i = strcmp(name, "first") == 0 ? qs_qnet_first_layer(g)
            : strcmp(name, "last") == 0 ? qs_qnet_last_layer(g)
                                        : qs_graph_find(g, name);
    if (i >= 0 && is_dot(g->nodes[i].op))
        return i;
    if (i >= 0)
        return not_a_layer(g, i);
    char list[1024];
    layer_list(g, list, sizeof list);
    return qs_error(QS_ERR_INVALID, "golden: '%s' is not a layer of the model (conv2d/linear layers of '%s': %s; "
                    "or first, last)", name, g->name, list);
}

/* ---- one layer, computed before anything is written ---------------------------------------------- */

typedef struct {
    float s;
    int32_t z;
    int64_t qmin, qmax;
    const qs_quantizer_t *quant;
    int bits;
    bool is_signed;
    int node;                   /* the point whose parameters these are */
} grid_t;

typedef struct {
    qs_golden_layer_t info;
    const qs_node_t *nd;
    int in, point;
    grid_t x, y;
    int64_t ylo, yhi;           /* the output codes' range after the chain's clamps */
    int64_t wmin, wmax;
    int64_t O, P, cg;           /* output channels, positions, input channels per group */
    int64_t in_size, w_size;
    const int32_t *xc, *wc, *yc;
    const int64_t *acc;
    int32_t *bias, *zw;         /* [O] */
    float *sw;                  /* [O] */
    qs_rq_channel_t *rqc;       /* [O] */
    qs_acc_t a;
    qs_requant_t rq;
    qs_int_layer_t stats;
} lay_t;

static void lay_free(lay_t *l)
{
    free(l->bias);
    free(l->zw);
    free(l->sw);
    free(l->rqc);
}

/* The grid of node j's codes, as the integer engine reads it: its point's
 * parameters, or those of the point it shares (maxpool, flatten). */
static int grid_of(const qs_qnet_t *q, int j, grid_t *g)
{
    const qs_qlayer_t *L = q->layer;
    int p = L[j].point;
    if (p >= 0 && L[p].ashare >= 0)
        p = L[p].ashare;
    if (p < 0 || !L[p].aq || !L[p].ap || L[p].ap->count != 1)
        return qs_error(QS_ERR_INTERNAL, "golden: node '%s' has no per-tensor activation grid", q->g->nodes[j].name);
    g->node = p;
    g->s = L[p].ap->scale[0];
    g->z = L[p].ap->zero_point[0];
    g->quant = &L[p].aquant;
    qs_quantizer_code_range(g->quant, &g->qmin, &g->qmax);
    g->bits = g->quant->bits;
    g->is_signed = g->qmin < 0;
    return QS_OK;
}

static int32_t code_of(const qs_quantizer_t *q, float v, float s, int32_t z)
{
    qs_quantizer_t d = *q;
    if (d.round.mode == QS_ROUND_STOCHASTIC)
        d.round.mode = QS_ROUND_NEAREST_EVEN;
    return qs_quantize_one(&d, v, s, z, 0, NULL);
}

/* The output range of layer i's codes: the grid's code range narrowed by the
 * relu/relu6/clip nodes of its chain up to dst, as the engine clamps them. */
static void out_range(const qs_qnet_t *q, int i, int dst, const grid_t *y, int64_t *lo, int64_t *hi)
{
    *lo = y->qmin;
    *hi = y->qmax;
    for (int j = i + 1; j <= dst; j++) {
        const qs_node_t *nd = &q->g->nodes[j];
        if (q->layer[j].point != dst)
            continue;
        float a = -INFINITY, b = INFINITY;
        if (nd->op == QS_OP_RELU)
            a = 0.0f;
        else if (nd->op == QS_OP_RELU6)
            a = 0.0f, b = 6.0f;
        else if (nd->op == QS_OP_CLIP)
            a = nd->clip_min, b = nd->clip_max;
        else
            continue;
        if (a > -INFINITY) {
            int64_t c = code_of(y->quant, a, y->s, y->z);
            *lo = c > *lo ? c : *lo;
        }
        if (b < INFINITY) {
            int64_t c = code_of(y->quant, b, y->s, y->z);
            *hi = c < *hi ? c : *hi;
        }
    }
    if (*lo > *hi)
        *lo = *hi;
}

/* The register width the accumulator's values are written at: W for an
 * intW register that wraps or saturates, 64 for an exact one. */
static int acc_width(const qs_acc_t *a) { return a->overflow == QS_ACC_EXACT ? 64 : a->bits; }

static bool fits(int64_t v, int bits, bool is_signed)
{
    if (bits >= 64)
        return true;
    if (is_signed)
        return v >= -(INT64_C(1) << (bits - 1)) && v <= (INT64_C(1) << (bits - 1)) - 1;
    return v >= 0 && v <= (INT64_C(1) << bits) - 1;
}

static int check_fit32(const lay_t *l, const char *what, const int32_t *v, int64_t n, int bits, bool is_signed)
{
    for (int64_t k = 0; k < n; k++)
        if (!fits(v[k], bits, is_signed))
            return qs_error(QS_ERR_INTERNAL, "golden: layer '%s': %s value %" PRId64 " (element %" PRId64 ") does not "
                            "fit its declared %s %d-bit width", l->nd->name, what, (int64_t)v[k], k,
                            is_signed ? "signed" : "unsigned", bits);
    return QS_OK;
}

static int prepare_layer(const qs_qnet_t *q, const qs_int_t *e, int i, lay_t *l)
{
    const qs_graph_t *g = q->g;
    const qs_node_t *nd = &g->nodes[i];
    const qs_qlayer_t *L = &q->layer[i];
    qs_golden_layer_t *info = &l->info;
    if (L->wquant.grid != QS_GRID_UNIFORM) {
        char gname[32];
        return qs_error(QS_ERR_UNSUPPORTED, "golden: layer '%s': weights on grid %s; golden vectors hold uniform "
                        "integer weight codes (the sign-basis grids run as ±1 weights in the integer engine, "
                        "but their files store level indices)", nd->name, qs_grid_name(&L->wquant, gname, sizeof gname));
    }
    l->nd = nd;
    l->in = nd->inputs[0];
    l->point = L->point;
    info->node = i;
    snprintf(info->name, sizeof info->name, "%s", nd->name);
    info->op = nd->op;
    const qs_int_layer_t *ls = qs_int_layer(e, i);
    l->stats = *ls;
    l->a = ls->acc;
    l->rq = ls->rq;
    if (l->a.kind == QS_ACC_FLOAT) {
        char buf[256];
        return qs_error(QS_ERR_UNSUPPORTED, "golden: layer '%s': the float accumulator %s holds no integer of a "
                        "register width; golden vectors need an integer accumulator (acc=intW or exact)", nd->name,
                        qs_acc_str(&l->a, buf, sizeof buf));
    }
    if (l->rq.kind == QS_RQ_FLOAT32 && l->rq.float_bias)
        return qs_error(QS_ERR_UNSUPPORTED, "golden: layer '%s': requant bias=float adds the float bias after the "
                        "accumulator, so the output is no function of the integer vectors; use bias=int32 (e.g. "
                        "--requant float32,mult=reciprocal or qnnpack instead of onednn)", nd->name);
    int rc;
    if ((rc = grid_of(q, l->in, &l->x)) < 0 || (rc = grid_of(q, l->point, &l->y)) < 0)
        return rc;
    out_range(q, i, l->point, &l->y, &l->ylo, &l->yhi);
    if (!L->wcodes || !L->wp)
        return qs_error(QS_ERR_INTERNAL, "golden: layer '%s' has no weight codes", nd->name);
    qs_quantizer_code_range(&L->wquant, &l->wmin, &l->wmax);
    const qs_node_t *innd = &g->nodes[l->in];
    info->in_ndim = innd->out_ndim;
    l->in_size = 1;
    for (int d = 0; d < innd->out_ndim; d++)
        l->in_size *= info->in_shape[d] = innd->out_shape[d];
    info->w_ndim = L->wcodes->ndim;
    for (int d = 0; d < L->wcodes->ndim; d++)
        info->w_shape[d] = L->wcodes->shape[d];
    l->w_size = L->wcodes->size;
    info->out_ndim = nd->out_ndim;
    for (int d = 0; d < nd->out_ndim; d++)
        info->out_shape[d] = nd->out_shape[d];
    l->O = L->wcodes->shape[0];
    l->P = nd->op == QS_OP_CONV2D ? nd->out_shape[1] * nd->out_shape[2] : 1;
    l->cg = L->wcodes->shape[1];
    info->k = l->w_size / l->O;
    info->in_bits = l->x.bits;
    info->in_signed = l->x.is_signed;
    info->w_bits = L->wquant.bits;
    info->w_signed = l->wmin < 0;
    info->acc_bits = acc_width(&l->a);
    info->out_bits = l->y.bits;
    info->out_signed = l->y.is_signed;
    info->overflowed = ls->overflowed;

    const qs_tensor_t *X = qs_int_codes(e, l->in), *A = qs_int_accs(e, i), *Y = qs_int_codes(e, l->point);
    if (!X || !A || !Y || X->shape[1] != l->in_size || A->shape[1] != l->O * l->P || Y->shape[1] != l->O * l->P)
        return qs_error(QS_ERR_INTERNAL, "golden: layer '%s': the integer engine kept no codes or accumulators of "
                        "the expected size", nd->name);
    l->xc = qs_i32(X);
    l->acc = qs_i64(A);
    l->yc = qs_i32(Y);
    l->wc = qs_i32(L->wcodes);

    l->bias = calloc((size_t)l->O, sizeof *l->bias);
    l->zw = malloc((size_t)l->O * sizeof *l->zw);
    l->sw = malloc((size_t)l->O * sizeof *l->sw);
    l->rqc = calloc((size_t)l->O, sizeof *l->rqc);
    if (!l->bias || !l->zw || !l->sw || !l->rqc)
        return qs_error(QS_ERR_NOMEM, "golden: out of memory for layer '%s'", nd->name);
    for (int64_t o = 0; o < l->O; o++) {
        int64_t pi = L->wp->count == 1 ? 0 : o;
        l->zw[o] = L->wp->zero_point[pi];
        l->sw[o] = L->wp->scale[pi];
        if (L->bcodes)
            l->bias[o] = qs_i32(L->bcodes)[o];
        /* the multiplier the engine requantizes channel o with, for the description */
        if ((rc = qs_requant_channel(&l->rq, l->x.s, l->sw[o], l->y.s, l->y.z, (int32_t)l->ylo, (int32_t)l->yhi,
                                     &l->rqc[o])) < 0)
            return qs_error_context("golden: layer '%s', channel %" PRId64 ": ", nd->name, o);
    }
    if (nd->bias && !L->bcodes)
        return qs_error(QS_ERR_UNSUPPORTED, "golden: layer '%s': its bias is not quantized to int32", nd->name);

    /* every value inside its declared width, and the outputs inside the clamps */
    if ((rc = check_fit32(l, "input", l->xc, l->in_size, info->in_bits, info->in_signed)) < 0 ||
        (rc = check_fit32(l, "weight", l->wc, l->w_size, info->w_bits, info->w_signed)) < 0 ||
        (rc = check_fit32(l, "output", l->yc, l->O * l->P, info->out_bits, info->out_signed)) < 0)
        return rc;
    for (int64_t k = 0; k < l->O * l->P; k++) {
        if (!fits(l->acc[k], info->acc_bits, true))
            return qs_error(QS_ERR_INTERNAL, "golden: layer '%s': accumulator %" PRId64 " does not fit the %d-bit "
                            "register", nd->name, l->acc[k], info->acc_bits);
        if (l->yc[k] < l->ylo || l->yc[k] > l->yhi)
            return qs_error(QS_ERR_INTERNAL, "golden: layer '%s': output code %" PRId32 " outside the clamps "
                            "[%" PRId64 ", %" PRId64 "]", nd->name, l->yc[k], l->ylo, l->yhi);
    }
    return QS_OK;
}

/* ---- descriptions ------------------------------------------------------------------------------- */

static const char *const overflow_words[] = {"wrap", "saturate", "exact"};

/* "1x28x28" */
static char *dims(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int d = 0; d < ndim && used < n; d++)
        used += (size_t)snprintf(buf + used, n - used, "%s%" PRId64, d ? "x" : "", shape[d]);
    return buf;
}

/* The accumulation order in words (docs/arithmetic.md, "Accumulation order"). */
static char *order_words(const lay_t *l, char *buf, size_t n)
{
    const qs_node_t *nd = l->nd;
    const qs_acc_t *a = &l->a;
    char reg[160], chunk[200] = "", taps[200];
    if (a->overflow == QS_ACC_EXACT)
        snprintf(reg, sizeof reg, "an exact register (no overflow)");
    else
        snprintf(reg, sizeof reg, "a %d-bit two's complement register that %s on every addition", a->bits,
                 a->overflow == QS_ACC_WRAP ? "wraps" : "saturates");
    if (a->chunk > 0)
        snprintf(chunk, sizeof chunk, "; the products are summed %d at a time in a %d-bit register (overflow=%s, "
                 "starting at 0), and each chunk sum, the last one possibly shorter, is added to the outer register",
                 a->chunk, a->chunk_bits, overflow_words[a->chunk_overflow]);
    if (nd->op == QS_OP_CONV2D)
        snprintf(taps, sizeof taps, "k = (c*%d + i)*%d + j over the group's input channels c, kernel rows i and "
                 "columns j (OIHW order); a tap in the padding reads x = z_x", nd->kh, nd->kw);
    else
        snprintf(taps, sizeof taps, "k = 0..%" PRId64 " over the input features in order", l->info.k - 1);
    if (a->zp_form == QS_ZP_EXPAND)
        snprintf(buf, n, "zp-form=expand: the products x_k*w_k for k = 0..K-1, then -z_w*sum(x), then -z_x*sum(w), "
                 "then K*z_x*z_w (a correction whose zero point is 0 is left out), then the bias, each added to %s; "
                 "%s%s", reg, taps, chunk);
    else
        snprintf(buf, n, "zp-form=subtract: the products (x_k - z_x)*(w_k - z_w) for k = 0..K-1, then the bias, "
                 "each added to %s; %s%s", reg, taps, chunk);
    return buf;
}

/* What the requantizer does, in one formula (docs/arithmetic.md, "Requantization"). */
static const char *requant_words(const qs_requant_t *r, char *buf, size_t n)
{
    switch (r->kind) {
    case QS_RQ_FLOAT32:
        snprintf(buf, n, r->zp_before ? "output = clamp(round(fl32(fl32(acc)*M32[o] + z_y)), lo, hi)"
                                      : "output = clamp(round(fl32(fl32(acc)*M32[o])) + z_y, lo, hi)");
        break;
    case QS_RQ_FIXED:
        snprintf(buf, n, r->single ? "output = clamp(R(sat32(acc)*M0[o], 31 - n[o]) + z_y, lo, hi)"
                                   : "output = clamp(R(SRDHM(sat32(sat32(acc)*2^max(n[o],0)), M0[o]), max(-n[o],0)) "
                                     "+ z_y, lo, hi), M0[o]*2^(n[o]-31) ~ M[o]");
        break;
    case QS_RQ_SHIFT:
        snprintf(buf, n, "output = clamp(R(acc, -n[o]) + z_y, lo, hi) for n[o] < 0, clamp(acc*2^n[o] + z_y, lo, "
                 "hi) otherwise, n[o] = floor(log2 M[o] + 1/2)");
        break;
    default: snprintf(buf, n, "output = clamp(round(fl64(acc*M[o])) + z_y, lo, hi)"); break;
    }
    return buf;
}


/* ---- files written aside, renamed together --------------------------------------------------------- */

typedef struct {
    char *path, *tmp;
} aside_t;

typedef struct {
    aside_t *f;
    int n, cap;
} aside_set_t;

static char *join(const char *dir, const char *name, const char *suffix)
{
    size_t n = strlen(dir) + strlen(name) + strlen(suffix) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s%s", dir, name, suffix);
    else
        qs_error(QS_ERR_NOMEM, "golden: out of memory");
    return p;
}

/* A new file beside path (taken over), to be renamed over it by
 * aside_commit; the mode is 0666 less the umask, as for any new file. */
static FILE *aside_open(aside_set_t *s, char *path)
{
    if (!path)
        return NULL;
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        qs_error(QS_ERR_IO, "golden: cannot write '%s': it exists and is not a regular file", path);
        free(path);
        return NULL;
    }
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        aside_t *f = realloc(s->f, (size_t)cap * sizeof *f);
        if (!f) {
            qs_error(QS_ERR_NOMEM, "golden: out of memory");
            free(path);
            return NULL;
        }
        s->f = f, s->cap = cap;
    }
    size_t n = strlen(path) + 48;
    char *tmp = malloc(n);
    if (!tmp) {
        qs_error(QS_ERR_NOMEM, "golden: out of memory");
        free(path);
        return NULL;
    }
    int fd = -1;
    for (int k = 0; k < 1000 && fd < 0; k++) {
        snprintf(tmp, n, "%s.tmp-%ld-%d", path, (long)getpid(), k);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        qs_error(QS_ERR_IO, "golden: cannot create '%s': %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        free(tmp);
        free(path);
        return NULL;
    }
    s->f[s->n].path = path;
    s->f[s->n].tmp = tmp;
    s->n++;
    errno = 0;
    return f;
}

/* Completes the file aside_open opened last: on disk before it gets its name. */
static int aside_close(aside_set_t *s, FILE *f)
{
    const char *path = s->f[s->n - 1].path;
    int rc = QS_OK;
    if (fflush(f) != 0 || ferror(f))
        rc = qs_error(QS_ERR_IO, "golden: cannot write '%s': %s", path, strerror(errno ? errno : EIO));
    else if (fsync(fileno(f)) != 0 && errno != EINVAL)
        rc = qs_error(QS_ERR_IO, "golden: cannot write '%s': %s", path, strerror(errno));
    if (fclose(f) != 0 && rc == QS_OK)
        rc = qs_error(QS_ERR_IO, "golden: cannot write '%s': %s", path, strerror(errno));
    return rc;
}

/* Removes the files not renamed yet, and frees the set. */
static void aside_discard(aside_set_t *s)
{
    for (int k = 0; k < s->n; k++) {
        if (s->f[k].tmp)
            unlink(s->f[k].tmp);
        free(s->f[k].tmp);
        free(s->f[k].path);
    }
    free(s->f);
    memset(s, 0, sizeof *s);
}

static int aside_commit(aside_set_t *s)
{
    for (int k = 0; k < s->n; k++) {
        if (rename(s->f[k].tmp, s->f[k].path) != 0)
            return qs_error(QS_ERR_IO, "golden: cannot rename '%s' to '%s': %s", s->f[k].tmp, s->f[k].path,
                            strerror(errno));
        free(s->f[k].tmp);
        s->f[k].tmp = NULL;
    }
    return QS_OK;
}

/* ---- the text files -------------------------------------------------------------------------------- */

/* One value a line: ceil(bits/4) lowercase hex digits of its two's complement at bits. */
static int hex_file(aside_set_t *s, const char *dir, const lay_t *l, const char *suffix, const int32_t *v32,
                    const int64_t *v64, int64_t n, int bits)
{
    FILE *f = aside_open(s, join(dir, l->nd->name, suffix));
    if (!f)
        return qs_last_status();
    const int digits = (bits + 3) / 4;
    const uint64_t mask = bits >= 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
    static const char hexd[] = "0123456789abcdef";
    char line[24];
    for (int64_t k = 0; k < n; k++) {
        uint64_t u = (uint64_t)(v64 ? v64[k] : (int64_t)v32[k]) & mask;
        for (int d = digits - 1; d >= 0; d--, u >>= 4)
            line[d] = hexd[u & 15];
        line[digits] = '\n';
        if (fwrite(line, 1, (size_t)digits + 1, f) != (size_t)digits + 1)
            break;
    }
    return aside_close(s, f);
}

typedef struct {
    const qs_qnet_t *q;
    const char *source;
    int64_t index;
} ctx_t;

static const char *kind_words(int bits, bool is_signed, char *buf, size_t n)
{
    snprintf(buf, n, "%s %d-bit%s", is_signed ? "signed" : "unsigned", bits, is_signed ? " (two's complement)" : "");
    return buf;
}

/* the "s" of "N hex digits" for values of bits bits */
static const char *plural(int bits) { return bits > 4 ? "s" : ""; }

/* "C 1 x H 28 x W 28" */
static char *named_dims(const char *const *names, int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int d = 0; d < ndim && used < n; d++)
        used += (size_t)snprintf(buf + used, n - used, "%s%s %" PRId64, d ? " x " : "", names[d], shape[d]);
    return buf;
}

static int txt_file(aside_set_t *s, const char *dir, const ctx_t *c, const lay_t *l)
{
    FILE *f = aside_open(s, join(dir, l->nd->name, ".txt"));
    if (!f)
        return qs_last_status();
    const qs_graph_t *g = c->q->g;
    const qs_node_t *nd = l->nd;
    const qs_golden_layer_t *in = &l->info;
    const bool conv = nd->op == QS_OP_CONV2D;
    const char *name = nd->name;
    char a[256], b[256], t[256], buf[1024];
    static const char *const chw[] = {"C", "H", "W"}, *const f1[] = {"F"}, *const oihw[] = {"O", "I", "KH", "KW"},
                             *const oi[] = {"O", "I"}, *const ohw[] = {"O", "OH", "OW"}, *const o1[] = {"O"};
    fprintf(f, "quasar golden vectors: layer %s (%s) of model %s\n", name, qs_op_name(nd->op), g->name);
    fprintf(f, "image %" PRId64 " of %s; written by quasar %s; golden.h5 (format version %d) holds the same values\n\n",
            c->index, c->source && *c->source ? c->source : "(unnamed data)", PACKAGE_VERSION, QS_GOLDEN_VERSION);
    if (conv) {
        fprintf(f, "geometry     input %s (C x H x W, node '%s') -> output %s (O x OH x OW)\n",
                dims(in->in_ndim, in->in_shape, a, sizeof a), g->nodes[l->in].name,
                dims(in->out_ndim, in->out_shape, b, sizeof b));
        fprintf(f, "             kernel %dx%d, stride %dx%d, dilation %dx%d, padding top %d left %d bottom %d right "
                "%d, groups %d\n", nd->kh, nd->kw, nd->stride_h, nd->stride_w, nd->dil_h, nd->dil_w, nd->pad_top,
                nd->pad_left, nd->pad_bottom, nd->pad_right, nd->groups);
        fprintf(f, "             K = %" PRId64 " terms per dot product (%" PRId64 " input channel%s per group x %d x "
                "%d), %" PRId64 " positions per output channel\n", in->k, l->cg, l->cg == 1 ? "" : "s", nd->kh,
                nd->kw, l->P);
    } else {
        fprintf(f, "geometry     input %s (%s, node '%s') -> output %" PRId64 " (O)\n",
                dims(in->in_ndim, in->in_shape, a, sizeof a), in->in_ndim == 1 ? "F" : "C x H x W",
                g->nodes[l->in].name, l->O);
        fprintf(f, "             K = %" PRId64 " terms per dot product (the input features)\n", in->k);
    }
    const int64_t outs = l->O * l->P;
    fprintf(f, "\nfiles        one value per line, lowercase hex, two's complement at the width, row-major order\n");
    fprintf(f, "  %s.input.hex   %" PRId64 " values = %s; %s codes; %d hex digit%s\n", name, l->in_size,
            named_dims(in->in_ndim == 1 ? f1 : chw, in->in_ndim, in->in_shape, a, sizeof a),
            kind_words(in->in_bits, in->in_signed, b, sizeof b), (in->in_bits + 3) / 4, plural(in->in_bits));
    fprintf(f, "  %s.weight.hex  %" PRId64 " values = %s; %s codes; %d hex digit%s\n", name, l->w_size,
            named_dims(conv ? oihw : oi, in->w_ndim, in->w_shape, a, sizeof a),
            kind_words(in->w_bits, in->w_signed, b, sizeof b), (in->w_bits + 3) / 4, plural(in->w_bits));
    fprintf(f, "  %s.bias.hex    %" PRId64 " values = O %" PRId64 "; signed 32-bit (two's complement) at s_w*s_x; 8 "
            "hex digits%s\n", name, l->O, l->O, nd->bias ? "" : " (the layer has no bias: all 0)");
    fprintf(f, "  %s.acc.hex     %" PRId64 " values = %s; %s register values; %d hex digit%s\n", name, outs,
            named_dims(conv ? ohw : o1, in->out_ndim, in->out_shape, a, sizeof a),
            kind_words(in->acc_bits, true, b, sizeof b), (in->acc_bits + 3) / 4, plural(in->acc_bits));
    fprintf(f, "  %s.output.hex  %" PRId64 " values = %s; %s codes; %d hex digit%s\n", name, outs,
            named_dims(conv ? ohw : o1, in->out_ndim, in->out_shape, a, sizeof a),
            kind_words(in->out_bits, in->out_signed, b, sizeof b), (in->out_bits + 3) / 4, plural(in->out_bits));
    const qs_qlayer_t *L = &c->q->layer[in->node];
    fprintf(f, "\ninput        z_x = %" PRId32 ", s_x = %.9g (codes %" PRId64 "..%" PRId64 "; the grid of node '%s')\n",
            l->x.z, (double)l->x.s, l->x.qmin, l->x.qmax, g->nodes[l->x.node].name);
    fprintf(f, "weight       z_w and s_w %s (table below); codes %" PRId64 "..%" PRId64 "\n",
            L->wp->count == 1 ? "per tensor" : "per output channel", l->wmin, l->wmax);
    fprintf(f, "output       z_y = %" PRId32 ", s_y = %.9g (codes %" PRId64 "..%" PRId64 "; the grid of node '%s'); "
            "after the chain's clamps lo = %" PRId64 ", hi = %" PRId64 "\n", l->y.z, (double)l->y.s, l->y.qmin,
            l->y.qmax, g->nodes[l->y.node].name, l->ylo, l->yhi);
    fprintf(f, "accumulator  %s; acc.hex at %d bits (%s); %" PRId64 " of %" PRId64 " values overflowed on this "
            "image (%" PRId64 " events)\n", qs_acc_str(&l->a, a, sizeof a), in->acc_bits,
            l->a.overflow == QS_ACC_EXACT ? "exact: no overflow, 64-bit values" : "the register's width",
            l->stats.overflowed, outs, l->stats.events);
    fprintf(f, "requantizer  %s\n", qs_requant_str(&l->rq, a, sizeof a));
    fprintf(f, "\narithmetic (docs/arithmetic.md, \"Accumulators\", \"Accumulation order\", \"Requantization\")\n");
    if (conv) {
        fprintf(f, "  acc[o][oy][ox] = bias[o] + sum over k of (x_k - z_x)*(w[o][k] - z_w[o]), in the accumulator, "
                "where\n");
        fprintf(f, "  x_k = input[g*%" PRId64 " + c][oy*%d - %d + i*%d][ox*%d - %d + j*%d], g = o / %" PRId64
                ", k = (c*%d + i)*%d + j\n", l->cg, nd->stride_h, nd->pad_top, nd->dil_h, nd->stride_w, nd->pad_left,
                nd->dil_w, l->O / nd->groups, nd->kh, nd->kw);
    } else {
        fprintf(f, "  acc[o] = bias[o] + sum over k of (input[k] - z_x)*(w[o][k] - z_w[o]), in the accumulator\n");
    }
    fprintf(f, "  order: %s\n", order_words(l, buf, sizeof buf));
    fprintf(f, "  %s\n", requant_words(&l->rq, t, sizeof t));
    fprintf(f, "  with M[o] = fl64(s_w[o]*s_x/s_y) (the float32 product exact in float64), lo = %" PRId64 ", hi = %"
            PRId64 ", round = %s%s\n", l->ylo, l->yhi, qs_round_name(l->rq.round),
            l->rq.kind == QS_RQ_FIXED || l->rq.kind == QS_RQ_SHIFT ? ", R(v, s) = round(v / 2^s)" : "");
    fprintf(f, "\nper output channel\n%6s %8s %16s %24s", "o", "z_w", "s_w", "M");
    if (l->rq.kind == QS_RQ_FLOAT32)
        fprintf(f, " %16s", "M32");
    else if (l->rq.kind == QS_RQ_FIXED)
        fprintf(f, " %11s %4s", "M0", "n");
    else if (l->rq.kind == QS_RQ_SHIFT)
        fprintf(f, " %4s", "n");
    fprintf(f, " %11s\n", "bias");
    for (int64_t o = 0; o < l->O; o++) {
        const qs_rq_channel_t *r = &l->rqc[o];
        fprintf(f, "%6" PRId64 " %8" PRId32 " %16.9g %24.17g", o, l->zw[o], (double)l->sw[o], r->m64);
        if (l->rq.kind == QS_RQ_FLOAT32)
            fprintf(f, " %16.9g", (double)r->m32);
        else if (l->rq.kind == QS_RQ_FIXED)
            fprintf(f, " %11" PRId32 " %4d", r->m0, r->shift);
        else if (l->rq.kind == QS_RQ_SHIFT)
            fprintf(f, " %4d", r->shift);
        fprintf(f, " %11" PRId32 "\n", l->bias[o]);
    }
    return aside_close(s, f);
}

/* ---- golden.h5 --------------------------------------------------------------------------------------- */

static int h5_i32(qs_h5_t *h, const char *grp, const char *name, int ndim, const int64_t *shape, const int32_t *v)
{
    char path[QS_NAME_MAX + 64];
    snprintf(path, sizeof path, "/%s/%s", grp, name);
    qs_tensor_t *t = qs_tensor_create(QS_I32, ndim, shape);
    if (!t)
        return qs_last_status();
    memcpy(t->data, v, (size_t)t->size * sizeof(int32_t));
    int rc = qs_h5_write(h, path, t);
    qs_tensor_free(t);
    return rc;
}

static int h5_layer(qs_h5_t *h, const ctx_t *c, const lay_t *l)
{
    const qs_graph_t *g = c->q->g;
    const qs_node_t *nd = l->nd;
    const qs_golden_layer_t *in = &l->info;
    const char *grp = nd->name;
    char gpath[QS_NAME_MAX + 2], a[1024];
    snprintf(gpath, sizeof gpath, "/%s", grp);
    int rc;
    const int64_t O = l->O;
    if ((rc = h5_i32(h, grp, "input", in->in_ndim, in->in_shape, l->xc)) < 0 ||
        (rc = h5_i32(h, grp, "weight", in->w_ndim, in->w_shape, l->wc)) < 0 ||
        (rc = h5_i32(h, grp, "bias", 1, &O, l->bias)) < 0 ||
        (rc = h5_i32(h, grp, "output", in->out_ndim, in->out_shape, l->yc)) < 0 ||
        (rc = h5_i32(h, grp, "weight_zero_point", 1, &O, l->zw)) < 0)
        return rc;
    {
        qs_tensor_t *t = qs_tensor_create(QS_I64, in->out_ndim, in->out_shape);
        if (!t)
            return qs_last_status();
        memcpy(t->data, l->acc, (size_t)t->size * sizeof(int64_t));
        char path[QS_NAME_MAX + 64];
        snprintf(path, sizeof path, "/%s/acc", grp);
        rc = qs_h5_write(h, path, t);
        qs_tensor_free(t);
        if (rc < 0)
            return rc;
    }
    /* per channel: s_w, and the multiplier in the requantizer's own representation */
    qs_tensor_t *sw = qs_tensor_create(QS_F32, 1, &O), *m32 = qs_tensor_create(QS_F32, 1, &O);
    qs_tensor_t *m0 = qs_tensor_create(QS_I32, 1, &O), *sh = qs_tensor_create(QS_I32, 1, &O);
    if (!sw || !m32 || !m0 || !sh) {
        rc = qs_last_status();
    } else {
        for (int64_t o = 0; o < O; o++) {
            qs_f32(sw)[o] = l->sw[o];
            qs_f32(m32)[o] = l->rqc[o].m32;
            qs_i32(m0)[o] = l->rqc[o].m0;
            qs_i32(sh)[o] = l->rqc[o].shift;
        }
        char path[QS_NAME_MAX + 64];
        snprintf(path, sizeof path, "/%s/weight_scale", grp);
        rc = qs_h5_write(h, path, sw);
        if (rc >= 0 && l->rq.kind == QS_RQ_FLOAT32) {
            snprintf(path, sizeof path, "/%s/requant_multiplier", grp);
            rc = qs_h5_write(h, path, m32);
        }
        if (rc >= 0 && l->rq.kind == QS_RQ_FIXED) {
            snprintf(path, sizeof path, "/%s/requant_m0", grp);
            rc = qs_h5_write(h, path, m0);
        }
        if (rc >= 0 && (l->rq.kind == QS_RQ_FIXED || l->rq.kind == QS_RQ_SHIFT)) {
            snprintf(path, sizeof path, "/%s/requant_shift", grp);
            rc = qs_h5_write(h, path, sh);
        }
    }
    qs_tensor_free(sw);
    qs_tensor_free(m32);
    qs_tensor_free(m0);
    qs_tensor_free(sh);
    if (rc < 0)
        return rc;

    const struct {
        const char *attr;
        int64_t v;
    } ints[] = {
        {"K", in->k},
        {"positions", l->P},
        {"image_index", c->index},
        {"input_bits", in->in_bits},
        {"input_signed", in->in_signed},
        {"input_zero_point", l->x.z},
        {"input_qmin", l->x.qmin},
        {"input_qmax", l->x.qmax},
        {"weight_bits", in->w_bits},
        {"weight_signed", in->w_signed},
        {"weight_qmin", l->wmin},
        {"weight_qmax", l->wmax},
        {"bias_bits", 32},
        {"has_bias", nd->bias != NULL},
        {"acc_bits", in->acc_bits},
        {"output_bits", in->out_bits},
        {"output_signed", in->out_signed},
        {"output_zero_point", l->y.z},
        {"output_qmin", l->y.qmin},
        {"output_qmax", l->y.qmax},
        {"output_min", l->ylo},
        {"output_max", l->yhi},
        {"overflowed", l->stats.overflowed},
        {"overflow_events", l->stats.events},
        {"max_abs", l->stats.max_abs},
    };
    for (size_t k = 0; k < sizeof ints / sizeof *ints; k++)
        if ((rc = qs_h5_set_attr_int(h, gpath, ints[k].attr, ints[k].v)) < 0)
            return rc;
    if (nd->op == QS_OP_CONV2D) {
        const struct {
            const char *attr;
            int v;
        } geo[] = {{"kh", nd->kh},          {"kw", nd->kw},           {"stride_h", nd->stride_h},
                   {"stride_w", nd->stride_w}, {"dil_h", nd->dil_h},       {"dil_w", nd->dil_w},
                   {"pad_top", nd->pad_top},   {"pad_left", nd->pad_left}, {"pad_bottom", nd->pad_bottom},
                   {"pad_right", nd->pad_right}, {"groups", nd->groups}};
        for (size_t k = 0; k < sizeof geo / sizeof *geo; k++)
            if ((rc = qs_h5_set_attr_int(h, gpath, geo[k].attr, geo[k].v)) < 0)
                return rc;
    }
    char s1[64], s2[64], s3[64];
    const struct {
        const char *attr, *v;
    } strs[] = {
        {"op", qs_op_name(nd->op)},
        {"input_node", g->nodes[l->in].name},
        {"output_node", g->nodes[l->point].name},
        {"input_grid_node", g->nodes[l->x.node].name},
        {"output_grid_node", g->nodes[l->y.node].name},
        {"input_shape", dims(in->in_ndim, in->in_shape, s1, sizeof s1)},
        {"weight_shape", dims(in->w_ndim, in->w_shape, s2, sizeof s2)},
        {"output_shape", dims(in->out_ndim, in->out_shape, s3, sizeof s3)},
        {"weight_granularity", c->q->layer[in->node].wp->count == 1 ? "tensor" : "channel"},
        {"acc_overflow", overflow_words[l->a.overflow]},
    };
    for (size_t k = 0; k < sizeof strs / sizeof *strs; k++)
        if ((rc = qs_h5_set_attr_str(h, gpath, strs[k].attr, strs[k].v)) < 0)
            return rc;
    if ((rc = qs_h5_set_attr_double(h, gpath, "input_scale", l->x.s)) < 0 ||
        (rc = qs_h5_set_attr_double(h, gpath, "output_scale", l->y.s)) < 0 ||
        (rc = qs_h5_set_attr_str(h, gpath, "acc_spec", qs_acc_str(&l->a, a, sizeof a))) < 0 ||
        (rc = qs_h5_set_attr_str(h, gpath, "requant_spec", qs_requant_str(&l->rq, a, sizeof a))) < 0 ||
        (rc = qs_h5_set_attr_str(h, gpath, "accumulation_order", order_words(l, a, sizeof a))) < 0 ||
        (rc = qs_h5_set_attr_str(h, gpath, "requantization", requant_words(&l->rq, a, sizeof a))) < 0)
        return rc;
    return QS_OK;
}

static int h5_file(const char *dir, const ctx_t *c, const qs_int_config_t *cfg, const lay_t *lay, int n)
{
    char *path = join(dir, "golden", ".h5");
    if (!path)
        return qs_last_status();
    qs_h5_t *h = qs_h5_create(path);
    free(path);
    if (!h)
        return qs_last_status();
    const qs_qnet_t *q = c->q;
    char *list = malloc((size_t)n * QS_NAME_MAX + 1), a[4096];
    int rc = list ? QS_OK : qs_error(QS_ERR_NOMEM, "golden: out of memory");
    if (list) {
        size_t used = 0;
        list[0] = '\0';
        for (int k = 0; k < n; k++)
            used += (size_t)sprintf(list + used, "%s%s", k ? "," : "", lay[k].nd->name);
    }
    if (rc >= 0)
        rc = qs_h5_set_attr_str(h, "/", "format", "quasar-golden");
    if (rc >= 0)
        rc = qs_h5_set_attr_int(h, "/", "version", QS_GOLDEN_VERSION);
    if (rc >= 0)
        rc = qs_h5_set_attr_str(h, "/", "quasar_version", PACKAGE_VERSION);
    if (rc >= 0)
        rc = qs_h5_set_attr_str(h, "/", "model", q->g->name);
    if (rc >= 0)
        rc = qs_h5_set_attr_str(h, "/", "data", c->source ? c->source : "");
    if (rc >= 0)
        rc = qs_h5_set_attr_int(h, "/", "image_index", c->index);
    if (rc >= 0)
        rc = qs_h5_set_attr_str(h, "/", "layers", list);
    if (rc >= 0)
        rc = qs_h5_set_attr_str(h, "/", "acc", qs_acc_str(&cfg->acc, a, sizeof a));
    if (rc >= 0)
        rc = qs_h5_set_attr_str(h, "/", "requant", qs_requant_str(&cfg->rq, a, sizeof a));
    if (rc >= 0)
        rc = qs_h5_set_attr_str(h, "/", "quantization", qs_qconfig_str(&q->cfg, a, sizeof a));
    if (rc >= 0)
        rc = qs_h5_set_attr_str(h, "/", "calibration_data", q->calib.source);
    if (rc >= 0)
        rc = qs_h5_set_attr_int(h, "/", "calibration_images", q->calib.images);
    if (rc >= 0)
        rc = qs_h5_set_attr_int(h, "/", "calibration_seed", (int64_t)q->calib.seed);
    for (int k = 0; k < n && rc >= 0; k++)
        rc = h5_layer(h, c, &lay[k]);
    free(list);
    if (rc < 0) {
        qs_h5_close(h);
        return rc;
    }
    return qs_h5_commit(h);
}

/* ---- the whole run ----------------------------------------------------------------------------------- */

int qs_golden_write(const qs_qnet_t *q, const qs_int_config_t *cfg, const qs_tensor_t *image, int64_t image_index,
                    const char *source, const int *layers, int nlayers, const char *dir, qs_golden_layer_t *info)
{
    if (!q || !q->g || !image || !layers || !dir)
        return qs_error(QS_ERR_INVALID, "qs_golden_write: no network, image, layers or folder");
    const qs_graph_t *g = q->g;
    if (nlayers < 1)
        return qs_error(QS_ERR_INVALID, "golden: no layer chosen");
    if (!*dir)
        return qs_error(QS_ERR_INVALID, "golden: no output folder given");
    for (int k = 0; k < nlayers; k++) {
        int i = layers[k];
        if (i < 0 || i >= g->nnodes)
            return qs_error(QS_ERR_INVALID, "golden: node %d is not in model '%s' (%d nodes)", i, g->name, g->nnodes);
        if (!is_dot(g->nodes[i].op))
            return not_a_layer(g, i);
        if (strcmp(g->nodes[i].name, ".") == 0 || strcmp(g->nodes[i].name, "..") == 0)
            return qs_error(QS_ERR_UNSUPPORTED, "golden: a layer named '%s' cannot name files", g->nodes[i].name);
        for (int j = 0; j < k; j++)
            if (layers[j] == i)
                return qs_error(QS_ERR_INVALID, "golden: layer '%s' chosen twice", g->nodes[i].name);
    }
    if (image->dtype != QS_F32 || image->ndim != 4 || image->shape[0] != 1) {
        char s[96];
        return qs_error(QS_ERR_SHAPE, "golden: expected one image [1, %" PRId64 ", %" PRId64 ", %" PRId64 "] float32, "
                        "got %s %s", g->in_c, g->in_h, g->in_w, qs_dtype_name(image->dtype),
                        qs_shape_str(image->ndim, image->shape, s, sizeof s));
    }
    qs_int_config_t ic;
    if (cfg)
        ic = *cfg;
    else
        qs_int_config_default(&ic);
    ic.keep_acc = true;
    qs_int_t *e = NULL;
    lay_t *lay = NULL;
    char *d = NULL;
    aside_set_t files;
    memset(&files, 0, sizeof files);
    bool made = false;
    int rc = qs_int_create(q, &ic, NULL, &e);
    const qs_tensor_t *out;
    if (rc >= 0)
        rc = qs_int_forward(e, image, image_index, &out);
    if (rc < 0) {
        qs_error_context("golden: ");
        goto done;
    }
    if (!(lay = calloc((size_t)nlayers, sizeof *lay))) {
        rc = qs_error(QS_ERR_NOMEM, "golden: out of memory");
        goto done;
    }
    for (int k = 0; k < nlayers && rc >= 0; k++)
        rc = prepare_layer(q, e, layers[k], &lay[k]);
    if (rc < 0)
        goto done;

    /* the folder: DIR without trailing slashes, created when missing */
    if (!(d = strdup(dir))) {
        rc = qs_error(QS_ERR_NOMEM, "golden: out of memory");
        goto done;
    }
    for (size_t n = strlen(d); n > 1 && d[n - 1] == '/'; n--)
        d[n - 1] = '\0';
    struct stat st;
    if (stat(d, &st) != 0) {
        if (errno != ENOENT || mkdir(d, 0777) != 0) {
            rc = qs_error(QS_ERR_IO, "golden: cannot create the folder '%s': %s", d, strerror(errno));
            goto done;
        }
        made = true;
    } else if (!S_ISDIR(st.st_mode)) {
        rc = qs_error(QS_ERR_IO, "golden: '%s' exists and is not a folder", d);
        goto done;
    }

    ctx_t c = {q, source, image_index};
    for (int k = 0; k < nlayers && rc >= 0; k++) {
        const lay_t *l = &lay[k];
        const qs_golden_layer_t *in = &l->info;
        const int64_t outs = l->O * l->P;
        if ((rc = hex_file(&files, d, l, ".input.hex", l->xc, NULL, l->in_size, in->in_bits)) < 0 ||
            (rc = hex_file(&files, d, l, ".weight.hex", l->wc, NULL, l->w_size, in->w_bits)) < 0 ||
            (rc = hex_file(&files, d, l, ".bias.hex", l->bias, NULL, l->O, 32)) < 0 ||
            (rc = hex_file(&files, d, l, ".acc.hex", NULL, l->acc, outs, in->acc_bits)) < 0 ||
            (rc = hex_file(&files, d, l, ".output.hex", l->yc, NULL, outs, in->out_bits)) < 0)
            break;
        rc = txt_file(&files, d, &c, l);
    }
    if (rc >= 0)
        rc = h5_file(d, &c, &ic, lay, nlayers);
    if (rc >= 0)
        rc = aside_commit(&files);
    if (rc >= 0 && info)
        for (int k = 0; k < nlayers; k++)
            info[k] = lay[k].info;
done:
    aside_discard(&files);
    if (rc < 0 && made)
        rmdir(d);
    for (int k = 0; lay && k < nlayers; k++)
        lay_free(&lay[k]);
    free(lay);
    free(d);
    qs_int_free(e);
    return rc < 0 ? rc : QS_OK;
}
