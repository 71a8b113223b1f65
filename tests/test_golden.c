/* tests/test_golden.c — golden test vectors (sim/golden.c, docs/golden.md):
 * every dataset of golden.h5 against an integer-engine run on the same
 * image; every .hex file parsed back (line count, digit count, lowercase,
 * two's complement at the declared width); the accumulators recomputed
 * from the files alone with the reference dot product and the outputs with
 * the requantizer the attributes name; int16 saturating, chunked, exact and
 * expand-form accumulators, signed input codes, 4-bit weights and the
 * requantizers' multipliers; and the errors: a layer that is no dot
 * product, an unknown name, float accumulators, bias=float, folders that
 * cannot be written, and a write that fails half-way leaving the old files. */
#include "sim/sim_internal.h"
#include "tests/testutil.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* ---- helpers (as in tests/test_int.c) ---------------------------------------------------------- */

static qs_tensor_t *rand_tens(int ndim, const int64_t *shape, float a, uint64_t stream)
{
    qs_tensor_t *t = qs_tensor_create(QS_F32, ndim, shape);
    ck_assert_ptr_nonnull(t);
    for (int64_t i = 0; i < t->size; i++)
        qs_f32(t)[i] = (float)((2.0 * qs_rng_uniform(99, stream, (uint64_t)i) - 1.0) * a);
    return t;
}

typedef struct {
    qs_dataset_t d;
    float *img;
    int32_t *lab;
} mem_data_t;

/* n images of g's input shape, values lo + [0, 1) */
static void mem_data(mem_data_t *m, const qs_graph_t *g, int64_t n, uint64_t stream, float lo)
{
    memset(m, 0, sizeof *m);
    int64_t per = g->in_c * g->in_h * g->in_w;
    m->img = malloc((size_t)(n * per) * sizeof *m->img);
    m->lab = malloc((size_t)n * sizeof *m->lab);
    ck_assert(m->img && m->lab);
    for (int64_t i = 0; i < n * per; i++)
        m->img[i] = lo + (float)qs_rng_uniform(5, stream, (uint64_t)i);
    for (int64_t i = 0; i < n; i++)
        m->lab[i] = (int32_t)(qs_rng_u32(6, stream, (uint64_t)i) % (uint32_t)g->num_classes);
    m->d.n = n;
    m->d.c = g->in_c;
    m->d.h = g->in_h;
    m->d.w = g->in_w;
    m->d.f32 = m->img;
    m->d.labels = m->lab;
    m->d.num_classes = g->num_classes;
    snprintf(m->d.source, sizeof m->d.source, "memory:%llu", (unsigned long long)stream);
}

static void mem_free(mem_data_t *m)
{
    free(m->img);
    free(m->lab);
}

/* quantized with preset, then the weight and activation words (may be NULL), calibrated on all of d */
static qs_qnet_t *quantize(const qs_graph_t *g, const char *preset, const char *wspec, const char *aspec,
                           const qs_dataset_t *d)
{
    qs_qconfig_t c;
    ck_assert_int_eq(qs_qconfig_preset(&c, preset, "t"), QS_OK);
    if (wspec)
        ck_assert_int_eq(qs_qconfig_set(&c, QS_QT_WEIGHTS, wspec, "t"), QS_OK);
    if (aspec)
        ck_assert_int_eq(qs_qconfig_set(&c, QS_QT_ACTS, aspec, "t"), QS_OK);
    qs_qnet_t *q = NULL;
    ck_assert_msg(qs_qnet_create(g, &c, &q) == QS_OK, "qs_qnet_create: %s", qs_last_error());
    qs_calib_opts_t o;
    qs_calib_opts_default(&o);
    o.images = d->n;
    o.batch = 16;
    ck_assert_msg(qs_qnet_calibrate(q, d, &o, NULL) == QS_OK, "calibrate: %s", qs_last_error());
    return q;
}

/* image `index` of d as a [1, C, H, W] batch */
static qs_tensor_t *image_of(const qs_dataset_t *d, const qs_graph_t *g, int64_t index)
{
    int64_t shape[4] = {1, g->in_c, g->in_h, g->in_w};
    qs_tensor_t *x = qs_tensor_create(QS_F32, 4, shape);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(qs_dataset_batch(d, g, index, NULL, 1, x, NULL), QS_OK);
    return x;
}

/* input 2x6x6
 *   a: conv 3x3 pad 1 (4) -> ra: relu          b: conv 1x1 stride 1 (4) -> rb: relu6
 *   s: add(ra, rb) -> mp: maxpool 2x2/2               ap: avgpool 3x3/2 pad 1 of ra
 *   cat: concat(mp, ap) (8x3x3) -> dw: conv 3x3 groups 8 pad 1 -> cl: clip [0, 2]
 *   gap -> f: flatten -> fc: linear (3) */
static qs_graph_t *mixed(void)
{
    qs_graph_t *g = qs_graph_create("mixed", 2, 6, 6);
    ck_assert_ptr_nonnull(g);
    g->input_scale = 1.0f;
    int in = 0, ra, rb, x;
    qs_node_t n = qs_node_init(QS_OP_CONV2D, "a", 1, &in);
    n.kh = n.kw = 3;
    n.pad_top = n.pad_left = n.pad_bottom = n.pad_right = 1;
    int64_t wa[4] = {4, 2, 3, 3}, b4 = 4, b8 = 8, b3 = 3;
    n.weight = rand_tens(4, wa, 0.5f, 1);
    n.bias = rand_tens(1, &b4, 0.2f, 2);
    x = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_RELU, "ra", 1, &x);
    ra = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_CONV2D, "b", 1, &in);
    int64_t wb[4] = {4, 2, 1, 1};
    n.weight = rand_tens(4, wb, 1.0f, 3);
    n.bias = rand_tens(1, &b4, 0.2f, 4);
    x = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_RELU6, "rb", 1, &x);
    rb = qs_graph_add(g, &n);
    int two[2] = {ra, rb};
    n = qs_node_init(QS_OP_ADD, "s", 2, two);
    x = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_MAXPOOL, "mp", 1, &x);
    n.kh = n.kw = 2;
    n.stride_h = n.stride_w = 2;
    two[0] = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_AVGPOOL, "ap", 1, &ra);
    n.kh = n.kw = 3;
    n.stride_h = n.stride_w = 2;
    n.pad_top = n.pad_left = n.pad_bottom = n.pad_right = 1;
    two[1] = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_CONCAT, "cat", 2, two);
    x = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_CONV2D, "dw", 1, &x);
    n.kh = n.kw = 3;
    n.groups = 8;
    n.pad_top = n.pad_left = n.pad_bottom = n.pad_right = 1;
    int64_t wd[4] = {8, 1, 3, 3};
    n.weight = rand_tens(4, wd, 0.6f, 5);
    n.bias = rand_tens(1, &b8, 0.1f, 6);
    x = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_CLIP, "cl", 1, &x);
    n.clip_min = 0.0f;
    n.clip_max = 2.0f;
    x = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_GAP, "gap", 1, &x);
    x = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_FLATTEN, "f", 1, &x);
    x = qs_graph_add(g, &n);
    n = qs_node_init(QS_OP_LINEAR, "fc", 1, &x);
    int64_t wf[2] = {3, 8};
    n.weight = rand_tens(2, wf, 0.8f, 7);
    n.bias = rand_tens(1, &b3, 0.1f, 8);
    ck_assert_int_ge(qs_graph_add(g, &n), 0);
    g->num_classes = 3;
    ck_assert_int_eq(qs_graph_infer(g), QS_OK);
    return g;
}

/* the conv2d/linear nodes of q's graph into layers; their count */
static int dot_layers(const qs_qnet_t *q, int *layers)
{
    int n = 0;
    for (int i = 0; i < q->g->nnodes; i++)
        if (q->g->nodes[i].op == QS_OP_CONV2D || q->g->nodes[i].op == QS_OP_LINEAR)
            layers[n++] = i;
    return n;
}

/* a fresh, empty folder path under the test folder (nothing created) */
static const char *fresh_dir(char *buf, size_t n, const char *name)
{
    qs_test_path(buf, n, name);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", buf);
    ck_assert_int_eq(system(cmd), 0);
    return buf;
}

static char *file_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return s;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* DIR/NAME.SUFFIX parsed as the hex file of n values at bits: every line
 * exactly ceil(bits/4) lowercase hex digits, decoded as two's complement
 * (signed) or as it is; the values go to out (n). The digits beyond bits
 * are those of the value's sign extension cut to the width: they are 0. */
static void read_hex(const char *dir, const char *name, const char *suffix, int bits, bool is_signed, int64_t n,
                     int64_t *out)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s%s", dir, name, suffix);
    size_t len;
    char *s = file_text(path, &len);
    const int digits = (bits + 3) / 4;
    ck_assert_msg(len == (size_t)n * (size_t)(digits + 1), "%s: %zu bytes, expected %lld lines of %d digits", path,
                  len, (long long)n, digits);
    for (int64_t k = 0; k < n; k++) {
        const char *line = s + k * (digits + 1);
        uint64_t u = 0;
        for (int d = 0; d < digits; d++) {
            char c = line[d];
            REQUIRE_MSG((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'), "%s line %lld: '%c' is no lowercase hex "
                        "digit", path, (long long)k + 1, c);
            u = u << 4 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
        }
        REQUIRE_MSG(line[digits] == '\n', "%s line %lld: not %d digits", path, (long long)k + 1, digits);
        if (bits < 64)
            REQUIRE_MSG(u >> bits == 0, "%s line %lld: %llx has bits above %d", path, (long long)k + 1,
                        (unsigned long long)u, bits);
        int64_t v;
        if (is_signed && bits < 64 && (u >> (bits - 1)) & 1)
            v = (int64_t)(u - (UINT64_C(1) << bits));
        else
            v = (int64_t)u;
        out[k] = v;
    }
    free(s);
}

static int64_t attr_int(qs_h5_t *h, const char *grp, const char *name)
{
    int64_t v;
    ck_assert_msg(qs_h5_get_attr_int(h, grp, name, &v) == QS_OK, "%s %s: %s", grp, name, qs_last_error());
    return v;
}

static double attr_double(qs_h5_t *h, const char *grp, const char *name)
{
    double v;
    ck_assert_msg(qs_h5_get_attr_double(h, grp, name, &v) == QS_OK, "%s %s: %s", grp, name, qs_last_error());
    return v;
}

static char *attr_str(qs_h5_t *h, const char *grp, const char *name)
{
    char *v = NULL;
    ck_assert_msg(qs_h5_get_attr_str(h, grp, name, &v) == QS_OK, "%s %s: %s", grp, name, qs_last_error());
    return v;
}

static qs_tensor_t *dataset(qs_h5_t *h, const char *grp, const char *name, qs_dtype_t t)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", grp, name);
    qs_tensor_t *x = NULL;
    ck_assert_msg(qs_h5_read(h, path, t, &x) == QS_OK, "%s: %s", path, qs_last_error());
    return x;
}

/* the rank and dimensions of t are ndim, shape */
static void same_shape(const qs_tensor_t *t, int ndim, const int64_t *shape, const char *what)
{
    ck_assert_msg(t->ndim == ndim, "%s: rank %d, expected %d", what, t->ndim, ndim);
    for (int d = 0; d < ndim; d++)
        ck_assert_msg(t->shape[d] == shape[d], "%s: dimension %d is %lld, expected %lld", what, d,
                      (long long)t->shape[d], (long long)shape[d]);
}

static void same_i32(const qs_tensor_t *t, const int32_t *v, int64_t n, const char *what)
{
    ck_assert_int_eq(t->size, n);
    for (int64_t k = 0; k < n; k++)
        REQUIRE_MSG(qs_i32(t)[k] == v[k], "%s[%lld]: %d, expected %d", what, (long long)k, qs_i32(t)[k], v[k]);
}

/* no NAME.tmp-* file is left in dir; returns the number of entries */
static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "opendir %s: %s", dir, strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        ck_assert_msg(!strstr(e->d_name, ".tmp-"), "%s: a temporary file '%s' was left", dir, e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

/* ---- what each layer's files say --------------------------------------------------------------------- */

typedef struct {
    int64_t neg_acc, neg_input, sat_acc, overflowed, values;
    int acc_bits, w_bits, in_bits;
} seen_t;

/* Every file of layer i in dir against engine e's last forward (one image),
 * then the accumulators recomputed from the files alone (qs_acc_dot over
 * the taps the geometry attributes give, padding reading z_x) and the
 * outputs from them with the requantizer the attributes name. */
static void check_layer(const char *dir, qs_h5_t *h, const qs_qnet_t *q, const qs_int_t *e, int i,
                        const qs_golden_layer_t *info, seen_t *seen)
{
    const qs_graph_t *g = q->g;
    const qs_node_t *nd = &g->nodes[i];
    const qs_qlayer_t *L = &q->layer[i];
    char grp[80];
    snprintf(grp, sizeof grp, "/%s", nd->name);
    ck_assert_str_eq(info->name, nd->name);
    ck_assert_int_eq(info->node, i);
    const int in = nd->inputs[0], pt = L->point;
    const qs_tensor_t *X = qs_int_codes(e, in), *A = qs_int_accs(e, i), *Y = qs_int_codes(e, pt);
    ck_assert(X && A && Y);
    const int64_t O = L->wcodes->shape[0], K = L->wcodes->size / O, OP = A->shape[1], P = OP / O;
    const int64_t nin = X->shape[1], nw = L->wcodes->size;
    ck_assert_int_eq(info->k, K);

    /* golden.h5 */
    char *op = attr_str(h, grp, "op");
    ck_assert_str_eq(op, qs_op_name(nd->op));
    free(op);
    ck_assert_int_eq(attr_int(h, grp, "K"), K);
    ck_assert_int_eq(attr_int(h, grp, "positions"), P);
    const int in_bits = (int)attr_int(h, grp, "input_bits"), w_bits = (int)attr_int(h, grp, "weight_bits");
    const int acc_bits = (int)attr_int(h, grp, "acc_bits"), out_bits = (int)attr_int(h, grp, "output_bits");
    const bool in_signed = attr_int(h, grp, "input_signed"), w_signed = attr_int(h, grp, "weight_signed");
    const bool out_signed = attr_int(h, grp, "output_signed");
    ck_assert_int_eq(in_bits, info->in_bits);
    ck_assert_int_eq(w_bits, L->wquant.bits);
    ck_assert_int_eq(acc_bits, info->acc_bits);
    ck_assert_int_eq(out_bits, info->out_bits);
    ck_assert_int_eq(attr_int(h, grp, "bias_bits"), 32);
    ck_assert_int_eq(attr_int(h, grp, "has_bias"), nd->bias != NULL);
    const qs_int_layer_t *ls = qs_int_layer(e, i);
    ck_assert_int_eq(attr_int(h, grp, "overflowed"), ls->overflowed);
    ck_assert_int_eq(info->overflowed, ls->overflowed);
    ck_assert_int_eq(attr_int(h, grp, "overflow_events"), ls->events);
    char buf[512], *s = attr_str(h, grp, "acc_spec");
    ck_assert_str_eq(s, qs_acc_str(&ls->acc, buf, sizeof buf));
    qs_acc_t acc;
    qs_acc_default(&acc);
    ck_assert_int_eq(qs_acc_parse(s, "t", &acc), QS_OK);
    free(s);
    ck_assert_int_eq(acc_bits, acc.overflow == QS_ACC_EXACT ? 64 : acc.bits);
    s = attr_str(h, grp, "requant_spec");
    ck_assert_str_eq(s, qs_requant_str(&ls->rq, buf, sizeof buf));
    qs_requant_t rq;
    qs_requant_default(&rq);
    ck_assert_int_eq(qs_requant_parse(s, "t", &rq), QS_OK);
    free(s);
    s = attr_str(h, grp, "accumulation_order");
    ck_assert_msg(strstr(s, acc.zp_form == QS_ZP_EXPAND ? "zp-form=expand" : "zp-form=subtract"), "%s", s);
    free(s);
    s = attr_str(h, grp, "output_node");
    ck_assert_str_eq(s, g->nodes[pt].name);
    free(s);
    s = attr_str(h, grp, "input_node");
    ck_assert_str_eq(s, g->nodes[in].name);
    free(s);
    s = attr_str(h, grp, "input_grid_node"); /* fc reads the flatten of gap, on gap's grid */
    ck_assert_str_eq(s, strcmp(nd->name, "fc") == 0 ? "gap" : g->nodes[in].name);
    free(s);

    qs_tensor_t *gx = dataset(h, grp, "input", QS_I32), *gw = dataset(h, grp, "weight", QS_I32);
    qs_tensor_t *gb = dataset(h, grp, "bias", QS_I32), *ga = dataset(h, grp, "acc", QS_I64);
    qs_tensor_t *gy = dataset(h, grp, "output", QS_I32), *gzw = dataset(h, grp, "weight_zero_point", QS_I32);
    qs_tensor_t *gsw = dataset(h, grp, "weight_scale", QS_F32);
    same_shape(gx, g->nodes[in].out_ndim, g->nodes[in].out_shape, "input");
    same_shape(gw, L->wcodes->ndim, L->wcodes->shape, "weight");
    same_shape(gb, 1, &O, "bias");
    same_shape(ga, nd->out_ndim, nd->out_shape, "acc");
    same_shape(gy, nd->out_ndim, nd->out_shape, "output");
    same_i32(gx, qs_i32(X), nin, "input");
    same_i32(gw, qs_i32(L->wcodes), nw, "weight");
    same_i32(gy, qs_i32(Y), OP, "output");
    ck_assert_int_eq(ga->size, OP);
    for (int64_t k = 0; k < OP; k++)
        REQUIRE_MSG(qs_i64(ga)[k] == qs_i64(A)[k], "acc[%lld]: %lld, expected %lld", (long long)k,
                    (long long)qs_i64(ga)[k], (long long)qs_i64(A)[k]);
    for (int64_t o = 0; o < O; o++) {
        int64_t pi = L->wp->count == 1 ? 0 : o;
        ck_assert_int_eq(qs_i32(gb)[o], L->bcodes ? qs_i32(L->bcodes)[o] : 0);
        ck_assert_int_eq(qs_i32(gzw)[o], L->wp->zero_point[pi]);
        ck_assert(qs_f32(gsw)[o] == L->wp->scale[pi]);
    }
    /* the multipliers the requantizer uses */
    if (rq.kind == QS_RQ_FIXED || rq.kind == QS_RQ_SHIFT) {
        qs_tensor_t *sh = dataset(h, grp, "requant_shift", QS_I32);
        ck_assert_int_eq(sh->size, O);
        qs_tensor_free(sh);
    }

    /* the .hex files */
    int64_t *hx = malloc((size_t)nin * sizeof *hx), *hw = malloc((size_t)nw * sizeof *hw);
    int64_t *hb = malloc((size_t)O * sizeof *hb), *ha = malloc((size_t)OP * sizeof *ha);
    int64_t *hy = malloc((size_t)OP * sizeof *hy);
    ck_assert(hx && hw && hb && ha && hy);
    read_hex(dir, nd->name, ".input.hex", in_bits, in_signed, nin, hx);
    read_hex(dir, nd->name, ".weight.hex", w_bits, w_signed, nw, hw);
    read_hex(dir, nd->name, ".bias.hex", 32, true, O, hb);
    read_hex(dir, nd->name, ".acc.hex", acc_bits, true, OP, ha);
    read_hex(dir, nd->name, ".output.hex", out_bits, out_signed, OP, hy);
    for (int64_t k = 0; k < nin; k++) {
        REQUIRE(hx[k] == qs_i32(X)[k]);
        seen->neg_input += hx[k] < 0;
    }
    for (int64_t k = 0; k < nw; k++)
        REQUIRE(hw[k] == qs_i32(L->wcodes)[k]);
    for (int64_t o = 0; o < O; o++)
        REQUIRE(hb[o] == qs_i32(gb)[o]);
    const int64_t amax = acc_bits >= 64 ? INT64_MAX : (INT64_C(1) << (acc_bits - 1)) - 1;
    for (int64_t k = 0; k < OP; k++) {
        REQUIRE(ha[k] == qs_i64(A)[k]);
        REQUIRE(hy[k] == qs_i32(Y)[k]);
        seen->neg_acc += ha[k] < 0;
        seen->sat_acc += ha[k] == amax || ha[k] == -amax - 1;
    }
    seen->overflowed += ls->overflowed;
    seen->values += OP;
    seen->acc_bits = acc_bits;
    seen->w_bits = w_bits;
    seen->in_bits = in_bits;

    /* the accumulators from the files alone, in the order the accumulator documents */
    const int32_t zx = (int32_t)attr_int(h, grp, "input_zero_point");
    int64_t C, H, W, OH, OW, kh = 1, kw = 1, sh = 1, sw = 1, pt0 = 0, pl = 0, dh = 1, dw = 1, G = 1;
    if (nd->op == QS_OP_CONV2D) {
        C = gx->shape[0], H = gx->shape[1], W = gx->shape[2], OH = ga->shape[1], OW = ga->shape[2];
        kh = attr_int(h, grp, "kh"), kw = attr_int(h, grp, "kw"), sh = attr_int(h, grp, "stride_h");
        sw = attr_int(h, grp, "stride_w"), pt0 = attr_int(h, grp, "pad_top"), pl = attr_int(h, grp, "pad_left");
        dh = attr_int(h, grp, "dil_h"), dw = attr_int(h, grp, "dil_w"), G = attr_int(h, grp, "groups");
    } else {
        C = nin, H = W = OH = OW = 1;
    }
    const int64_t cg = C / G;
    ck_assert_int_eq(cg * kh * kw, K);
    int32_t *col = malloc((size_t)K * sizeof *col), *wrow = malloc((size_t)K * sizeof *wrow);
    ck_assert(col && wrow);
    const float sx = (float)attr_double(h, grp, "input_scale"), sy = (float)attr_double(h, grp, "output_scale");
    const int32_t zy = (int32_t)attr_int(h, grp, "output_zero_point");
    const int32_t lo = (int32_t)attr_int(h, grp, "output_min"), hi = (int32_t)attr_int(h, grp, "output_max");
    for (int64_t o = 0; o < O; o++) {
        const int64_t gi = o / (O / G);
        for (int64_t k = 0; k < K; k++)
            wrow[k] = (int32_t)hw[o * K + k];
        qs_rq_channel_t rc;
        ck_assert_int_eq(qs_requant_channel(&rq, sx, qs_f32(gsw)[o], sy, zy, lo, hi, &rc), QS_OK);
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++) {
                for (int64_t c = 0; c < cg; c++)
                    for (int64_t ky = 0; ky < kh; ky++)
                        for (int64_t kx = 0; kx < kw; kx++) {
                            int64_t iy = oy * sh - pt0 + ky * dh, ix = ox * sw - pl + kx * dw;
                            bool pad = iy < 0 || iy >= H || ix < 0 || ix >= W;
                            col[(c * kh + ky) * kw + kx] = pad ? zx : (int32_t)hx[((gi * cg + c) * H + iy) * W + ix];
                        }
                qs_acc_result_t r;
                qs_acc_dot(&acc, col, 1, wrow, 1, K, zx, qs_i32(gzw)[o], hb[o], &r);
                const int64_t p = o * OH * OW + oy * OW + ox;
                REQUIRE_MSG(r.value == ha[p], "%s: acc[%lld] recomputed %lld, file %lld", nd->name, (long long)p,
                            (long long)r.value, (long long)ha[p]);
                REQUIRE_MSG(qs_requant_apply(&rc, ha[p], 0.0f) == hy[p], "%s: output[%lld] recomputed %d, file %lld",
                            nd->name, (long long)p, qs_requant_apply(&rc, ha[p], 0.0f), (long long)hy[p]);
                REQUIRE(hy[p] >= lo && hy[p] <= hi);
            }
    }
    free(col);
    free(wrow);

    /* the description */
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.txt", dir, nd->name);
    char *txt = file_text(path, NULL), want[160];
    snprintf(want, sizeof want, "K = %lld terms", (long long)K);
    ck_assert_msg(strstr(txt, want), "%s lacks '%s'", path, want);
    snprintf(want, sizeof want, "%s.acc.hex     %lld values", nd->name, (long long)OP);
    ck_assert_msg(strstr(txt, want), "%s lacks '%s'", path, want);
    snprintf(want, sizeof want, "%d hex digits", (acc_bits + 3) / 4);
    ck_assert_msg(strstr(txt, want), "%s lacks '%s'", path, want);
    ck_assert_msg(strstr(txt, qs_acc_str(&ls->acc, buf, sizeof buf)), "%s lacks the accumulator", path);
    ck_assert_msg(strstr(txt, qs_requant_str(&ls->rq, buf, sizeof buf)), "%s lacks the requantizer", path);
    free(txt);

    free(hx);
    free(hw);
    free(hb);
    free(ha);
    free(hy);
    qs_tensor_free(gx);
    qs_tensor_free(gw);
    qs_tensor_free(gb);
    qs_tensor_free(ga);
    qs_tensor_free(gy);
    qs_tensor_free(gzw);
    qs_tensor_free(gsw);
}

/* ---- every layer of the mixed network ------------------------------------------------------------ */

static const struct {
    const char *wspec, *aspec, *acc, *requant;
} CASES[] = {
    {NULL, NULL, NULL, NULL},                                                          /* int32 wrap, float64 */
    {"scheme=asymmetric", NULL, "int16,overflow=saturate", NULL},                      /* saturated, 4 digits */
    {NULL, "scheme=asymmetric-signed", "int16,overflow=wrap", "gemmlowp"},             /* signed inputs */
    {"bits=4", "scheme=symmetric", "exact,zp-form=expand", "qnnpack"},                 /* 4-bit weights, 64 bits */
    {"scheme=asymmetric", NULL, "int14,chunk=4,chunk-acc=int12,chunk-overflow=wrap,zp-form=expand", "shift"},
};

START_TEST(test_all_layers)
{
    qs_graph_t *g = mixed();
    mem_data_t m;
    mem_data(&m, g, 8, 1, _i == 2 || _i == 3 ? -0.6f : -0.3f);
    qs_qnet_t *q = quantize(g, "w8a8", CASES[_i].wspec, CASES[_i].aspec, &m.d);
    qs_int_config_t c;
    qs_int_config_default(&c);
    if (CASES[_i].acc)
        ck_assert_int_eq(qs_acc_parse(CASES[_i].acc, "t", &c.acc), QS_OK);
    if (CASES[_i].requant)
        ck_assert_int_eq(qs_requant_parse(CASES[_i].requant, "t", &c.rq), QS_OK);
    /* the dot product of fc keeps its own accumulator */
    ck_assert_int_eq(qs_int_config_override(&c, "fc:acc=int32,overflow=wrap", "t"), QS_OK);
    int layers[16];
    const int n = dot_layers(q, layers);
    ck_assert_int_eq(n, 4);
    const int64_t index = 5;
    qs_tensor_t *x = image_of(&m.d, q->g, index);
    char dir[1024], name[64];
    snprintf(name, sizeof name, "golden-%d", _i);
    fresh_dir(dir, sizeof dir, name);
    qs_golden_layer_t info[16];
    ck_assert_msg(qs_golden_write(q, &c, x, index, m.d.source, layers, n, dir, info) == QS_OK, "%s",
                  qs_last_error());
    ck_assert_int_eq(dir_entries(dir), 1 + 6 * n);

    /* the engine on the same image */
    qs_int_config_t ce = c;
    ce.keep_acc = true;
    qs_int_t *e = NULL;
    ck_assert_int_eq(qs_int_create(q, &ce, NULL, &e), QS_OK);
    const qs_tensor_t *out;
    ck_assert_int_eq(qs_int_forward(e, x, index, &out), QS_OK);

    char path[1200];
    snprintf(path, sizeof path, "%s/golden.h5", dir);
    qs_h5_t *h = qs_h5_open(path);
    ck_assert_msg(h != NULL, "%s", qs_last_error());
    char *s = attr_str(h, "/", "format");
    ck_assert_str_eq(s, "quasar-golden");
    free(s);
    ck_assert_int_eq(attr_int(h, "/", "version"), QS_GOLDEN_VERSION);
    ck_assert_int_eq(attr_int(h, "/", "image_index"), index);
    s = attr_str(h, "/", "model");
    ck_assert_str_eq(s, "mixed");
    free(s);
    s = attr_str(h, "/", "layers");
    ck_assert_str_eq(s, "a,b,dw,fc");
    free(s);
    s = attr_str(h, "/", "data");
    ck_assert_str_eq(s, m.d.source);
    free(s);
    s = attr_str(h, "/", "quasar_version");
    ck_assert(*s);
    free(s);
    seen_t seen[16];
    memset(seen, 0, sizeof seen);
    for (int k = 0; k < n; k++)
        check_layer(dir, h, q, e, layers[k], &info[k], &seen[k]);
    qs_h5_close(h);

    /* each case shows what it is there for */
    int64_t neg_acc = 0, neg_in = 0, sat = 0, ov = 0;
    for (int k = 0; k < n - 1; k++) /* fc has its own int32 accumulator */
        neg_acc += seen[k].neg_acc, neg_in += seen[k].neg_input, sat += seen[k].sat_acc, ov += seen[k].overflowed;
    ck_assert_int_eq(seen[n - 1].acc_bits, 32);
    switch (_i) {
    case 1:
        ck_assert_int_eq(seen[0].acc_bits, 16);
        ck_assert_msg(sat > 0 && ov > 0 && neg_acc > 0, "int16 saturate: %lld saturated, %lld overflowed, %lld "
                      "negative", (long long)sat, (long long)ov, (long long)neg_acc);
        break;
    case 2:
        ck_assert_msg(neg_in > 0, "signed inputs: no negative input code");
        ck_assert_msg(neg_acc > 0, "no negative accumulator");
        ck_assert_int_eq(seen[0].in_bits, 8);
        break;
    case 3:
        ck_assert_int_eq(seen[0].acc_bits, 64);
        ck_assert_int_eq(seen[0].w_bits, 4);
        ck_assert_int_eq(ov, 0);
        ck_assert_msg(neg_acc > 0, "no negative accumulator");
        break;
    case 4:
        ck_assert_int_eq(seen[0].acc_bits, 14);
        break;
    default:
        ck_assert_int_eq(seen[0].acc_bits, 32);
        ck_assert_int_eq(ov, 0);
        break;
    }
    /* a second run into the same folder replaces the files and golden.h5 */
    int one = layers[2];
    ck_assert_int_eq(qs_golden_write(q, &c, x, index, NULL, &one, 1, dir, NULL), QS_OK);
    h = qs_h5_open(path);
    ck_assert_ptr_nonnull(h);
    ck_assert(qs_h5_exists(h, "/dw/acc"));
    ck_assert(!qs_h5_exists(h, "/a"));
    qs_h5_close(h);
    ck_assert_int_eq(dir_entries(dir), 1 + 6 * n);

    qs_int_free(e);
    qs_tensor_free(x);
    qs_qnet_free(q);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

/* ---- errors ------------------------------------------------------------------------------------------ */

START_TEST(test_errors)
{
    qs_graph_t *g = mixed();
    mem_data_t m;
    mem_data(&m, g, 4, 7, -0.3f);
    qs_qnet_t *q = quantize(g, "w8a8", NULL, NULL, &m.d);
    qs_tensor_t *x = image_of(&m.d, q->g, 1);
    const qs_graph_t *qg = q->g;
    const int a = qs_graph_find(qg, "a"), fc = qs_graph_find(qg, "fc"), add = qs_graph_find(qg, "s");
    char dir[1024], path[1200];
    fresh_dir(dir, sizeof dir, "golden-err");

    /* names */
    ck_assert_int_eq(qs_golden_find(q, "dw"), qs_graph_find(qg, "dw"));
    ck_assert_int_eq(qs_golden_find(q, "first"), a);
    ck_assert_int_eq(qs_golden_find(q, "last"), fc);
    ck_assert_int_eq(qs_golden_find(q, "conv9"), QS_ERR_INVALID);
    ck_assert_msg(strstr(qs_last_error(), "'conv9' is not a layer") && strstr(qs_last_error(), "a, b, dw, fc"), "%s",
                  qs_last_error());
    ck_assert_int_eq(qs_golden_find(q, "gap"), QS_ERR_INVALID);
    ck_assert_msg(strstr(qs_last_error(), "not a conv2d or linear") && strstr(qs_last_error(), "a, b, dw, fc"), "%s",
                  qs_last_error());

    /* a node that is no dot product, a layer twice, no layer, a bad image: nothing is created */
    ck_assert_int_eq(qs_golden_write(q, NULL, x, 1, NULL, &add, 1, dir, NULL), QS_ERR_INVALID);
    ck_assert_msg(strstr(qs_last_error(), "node 's' (add) is not a conv2d or linear layer"), "%s", qs_last_error());
    int twice[2] = {fc, fc};
    ck_assert_int_eq(qs_golden_write(q, NULL, x, 1, NULL, twice, 2, dir, NULL), QS_ERR_INVALID);
    ck_assert_msg(strstr(qs_last_error(), "'fc' chosen twice"), "%s", qs_last_error());
    ck_assert_int_eq(qs_golden_write(q, NULL, x, 1, NULL, &fc, 0, dir, NULL), QS_ERR_INVALID);
    int64_t shape[4] = {2, 2, 6, 6};
    qs_tensor_t *two = qs_tensor_create(QS_F32, 4, shape);
    ck_assert_int_eq(qs_golden_write(q, NULL, two, 1, NULL, &fc, 1, dir, NULL), QS_ERR_SHAPE);
    ck_assert_msg(strstr(qs_last_error(), "[1, 2, 6, 6]"), "%s", qs_last_error());
    qs_tensor_free(two);
    /* a float accumulator; the float bias of requant bias=float */
    qs_int_config_t c;
    qs_int_config_default(&c);
    ck_assert_int_eq(qs_acc_parse("fp16", "t", &c.acc), QS_OK);
    ck_assert_int_eq(qs_golden_write(q, &c, x, 1, NULL, &a, 1, dir, NULL), QS_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(qs_last_error(), "layer 'a'") && strstr(qs_last_error(), "float accumulator"), "%s",
                  qs_last_error());
    qs_int_config_default(&c);
    ck_assert_int_eq(qs_int_config_override(&c, "fc:requant=onednn", "t"), QS_OK);
    ck_assert_int_eq(qs_golden_write(q, &c, x, 1, NULL, &a, 1, dir, NULL), QS_OK); /* fc not chosen */
    ck_assert_int_eq(qs_golden_write(q, &c, x, 1, NULL, &fc, 1, dir, NULL), QS_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(qs_last_error(), "layer 'fc'") && strstr(qs_last_error(), "bias=float"), "%s",
                  qs_last_error());
    ck_assert_int_eq(dir_entries(dir), 7); /* a's files only */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(qs_golden_write(q, &c, x, 1, NULL, &fc, 1, dir, NULL), QS_ERR_UNSUPPORTED);
    ck_assert_int_ne(access(dir, F_OK), 0); /* the folder is not even created */

    /* folders that cannot be written: under a regular file, a regular file itself */
    snprintf(path, sizeof path, "%s.file", dir);
    write_text(path, "not a folder\n");
    ck_assert_int_eq(qs_golden_write(q, NULL, x, 1, NULL, &fc, 1, path, NULL), QS_ERR_IO);
    ck_assert_msg(strstr(qs_last_error(), "is not a folder") && strstr(qs_last_error(), path), "%s", qs_last_error());
    char sub[1300];
    snprintf(sub, sizeof sub, "%s/sub", path);
    ck_assert_int_eq(qs_golden_write(q, NULL, x, 1, NULL, &fc, 1, sub, NULL), QS_ERR_IO);
    ck_assert_msg(strstr(qs_last_error(), "cannot create the folder") && strstr(qs_last_error(), sub), "%s",
                  qs_last_error());
    unlink(path);

    /* a target that is a folder: refused before anything is renamed, nothing else changes */
    ck_assert_int_eq(mkdir(dir, 0777), 0);
    snprintf(path, sizeof path, "%s/golden.h5", dir);
    write_text(path, "old golden\n");
    snprintf(path, sizeof path, "%s/fc.acc.hex", dir);
    write_text(path, "old acc\n");
    snprintf(path, sizeof path, "%s/fc.txt", dir);
    ck_assert_int_eq(mkdir(path, 0777), 0);
    ck_assert_int_eq(qs_golden_write(q, NULL, x, 1, NULL, &fc, 1, dir, NULL), QS_ERR_IO);
    ck_assert_msg(strstr(qs_last_error(), "fc.txt") && strstr(qs_last_error(), "not a regular file"), "%s",
                  qs_last_error());
    ck_assert_int_eq(dir_entries(dir), 3);
    rmdir(path);

    /* a write that fails half-way (files limited to 1000 bytes, less than some of these files need)
     * leaves the old files as they were and no temporary file */
    snprintf(path, sizeof path, "%s/a.acc.hex", dir);
    write_text(path, "old a\n");
    struct rlimit old, small;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = 1000;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    int both[2] = {fc, a};
    int rc = qs_golden_write(q, NULL, x, 1, NULL, both, 2, dir, NULL);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    ck_assert_int_eq(rc, QS_ERR_IO);
    ck_assert_msg(strstr(qs_last_error(), "cannot write") && strstr(qs_last_error(), dir), "%s", qs_last_error());
    ck_assert_int_eq(dir_entries(dir), 3);
    char *t = file_text(path, NULL);
    ck_assert_str_eq(t, "old a\n");
    free(t);
    snprintf(path, sizeof path, "%s/golden.h5", dir);
    t = file_text(path, NULL);
    ck_assert_str_eq(t, "old golden\n");
    free(t);
    snprintf(path, sizeof path, "%s/fc.acc.hex", dir);
    t = file_text(path, NULL);
    ck_assert_str_eq(t, "old acc\n");
    free(t);
    /* and with room, everything is replaced */
    ck_assert_int_eq(qs_golden_write(q, NULL, x, 1, NULL, both, 2, dir, NULL), QS_OK);
    ck_assert_int_eq(dir_entries(dir), 13);
    t = file_text(path, NULL);
    ck_assert_str_ne(t, "old acc\n");
    free(t);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);

    qs_tensor_free(x);
    qs_qnet_free(q);
    mem_free(&m);
    qs_graph_free(g);
}
END_TEST

static Suite *golden_suite(void)
{
    Suite *s = suite_create("golden");
    TCase *tc = tcase_create("golden");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_all_layers, 0, (int)(sizeof CASES / sizeof CASES[0]));
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

QS_TEST_MAIN(golden_suite)
