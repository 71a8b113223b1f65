/* quant/grid.c — the grid families beyond the uniform grid: their names in
 * the spec grammar, which of them fix their own bit count, their validation,
 * the power-of-two level sets, side-information overhead, and the per-slice
 * fit an observer finishes with (docs/arithmetic.md, "Grids").
 *
 * Three kinds of grid:
 *  - codebooks (ls-1, ls-2, ls-t, gf-k, pot, apot, kmeans, lloyd): each slice
 *    (tensor, channel or group) has an ascending table of levels and a code
 *    is a level's index;
 *  - float (a minifloat ExMy): a code is the format's bit pattern of x / s,
 *    with one scale s per slice (scale=none: s = 1, a plain cast);
 *  - block formats (mx*, nvfp4, bfp): blocks of consecutive elements along
 *    one axis share a scale computed from the block itself whenever a tensor
 *    is quantized, as the hardware does; a code holds the element in bits
 *    0..15 and the block's scale code in bits 16..23. */
#include "quant/quant_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LEVELS 256 /* codebooks: 8 bits */

bool qs_grid_is_codebook(qs_grid_t g) { return g >= QS_GRID_LS1 && g <= QS_GRID_LLOYD; }
bool qs_grid_is_block(qs_grid_t g) { return g == QS_GRID_MX || g == QS_GRID_NVFP4 || g == QS_GRID_BFP; }
bool qs_grid_is_float(qs_grid_t g) { return g == QS_GRID_FLOAT || g == QS_GRID_MX || g == QS_GRID_NVFP4; }
bool qs_grid_takes_bits(qs_grid_t g)
{
    return g == QS_GRID_UNIFORM || g == QS_GRID_POT || g == QS_GRID_APOT || g == QS_GRID_KMEANS ||
           g == QS_GRID_LLOYD || g == QS_GRID_BFP;
}
static bool fitted(qs_grid_t g) { return qs_grid_is_codebook(g) && g != QS_GRID_POT && g != QS_GRID_APOT; }
static bool is_unsigned_scheme(qs_scheme_t s) { return s == QS_SCHEME_UNSIGNED || s == QS_SCHEME_ASYMMETRIC; }

int qs_grid_format(const qs_quantizer_t *q, qs_mf_t *f)
{
    return qs_mf_init(f, q->fexp, q->fman, q->fconv);
}

/* ---- names -------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int e, m;
    qs_mf_conv_t conv;
} mx_names[] = {
    {"mxfp8-e4m3", 4, 3, QS_MF_OCP_FN}, {"mxfp8-e5m2", 5, 2, QS_MF_IEEE},  {"mxfp6-e3m2", 3, 2, QS_MF_FINITE},
    {"mxfp6-e2m3", 2, 3, QS_MF_FINITE}, {"mxfp4", 2, 1, QS_MF_FINITE},     {"mxfp8", 4, 3, QS_MF_OCP_FN},
    {"mxfp6", 3, 2, QS_MF_FINITE},
};
static const char *const conv_suffix[] = {"", "-fn", "-fnuz", "-finite"};

static const char *const grid_forms[] = {
    "uniform", "ls-1", "ls-2", "ls-t", "gf-K", "pot[-B]", "apot[-B]", "kmeans[-B]", "lloyd[-B]",
    "fp32", "fp16", "bf16", "fp8-e4m3", "fp8-e5m2", "fp8-e4m3fnuz", "fp8-e5m2fnuz", "fp6-e3m2", "fp6-e2m3",
    "fp4-e2m1", "eXmY[-fn|-fnuz|-finite]", "mxfp8[-e4m3|-e5m2]", "mxfp6[-e3m2|-e2m3]", "mxfp4", "mxint8",
    "nvfp4", "bfp[-E]", NULL};

/* "PREFIX" or "PREFIX-N": 0 (no N), N, or -1 if not this prefix or N is malformed. */
static int prefix_num(const char *v, const char *prefix, int *num)
{
    size_t k = strlen(prefix);
    *num = 0;
    if (strncmp(v, prefix, k) != 0)
        return -1;
    if (v[k] == '\0')
        return 0;
    if (v[k] != '-' || v[k + 1] < '1' || v[k + 1] > '9')
        return -1;
    char *end;
    long n = strtol(v + k + 1, &end, 10);
    if (*end || n > 64)
        return -1;
    *num = (int)n;
    return 1;
}

static void reset_grid(qs_quantizer_t *q, qs_grid_t g)
{
    q->grid = g;
    q->grid_k = 0;
    q->fexp = q->fman = 0;
    q->fconv = QS_MF_IEEE;
    q->block = 0;
    q->block_axis = 0;
    q->block_rule = QS_BLOCK_FLOOR;
}

static void set_float(qs_quantizer_t *q, qs_grid_t g, int e, int m, qs_mf_conv_t conv)
{
    reset_grid(q, g);
    q->fexp = e;
    q->fman = m;
    q->fconv = conv;
    q->bits = 1 + e + m;
}

/* A block grid is its own granularity: gran goes back to tensor (a later gran= in the spec is checked). */
static void set_block(qs_quantizer_t *q, int64_t size)
{
    q->block = size;
    q->block_axis = -1;
    memset(&q->gran, 0, sizeof q->gran);
}

int qs_grid_parse(qs_quantizer_t *q, const char *v, const char *what)
{
    int n;
    qs_mf_t f;
    if (strcmp(v, "uniform") == 0) {
        reset_grid(q, QS_GRID_UNIFORM);
        return QS_OK;
    }
    static const struct {
        const char *name;
        qs_grid_t g;
        int bits;
    } ls[] = {{"ls-1", QS_GRID_LS1, 1}, {"ls-2", QS_GRID_LS2, 2}, {"ls-t", QS_GRID_LST, 2}};
    for (size_t i = 0; i < sizeof ls / sizeof *ls; i++)
        if (strcmp(v, ls[i].name) == 0) {
            reset_grid(q, ls[i].g);
            q->bits = ls[i].bits;
            return QS_OK;
        }
    if (prefix_num(v, "gf", &n) == 1) {
        if (n > QS_LSQ_MAX_BASIS)
            return qs_error(QS_ERR_INVALID, "%s: key 'grid': '%s': gf-K takes K = 1..%d rounds", what, v,
                            QS_LSQ_MAX_BASIS);
        reset_grid(q, QS_GRID_GF);
        q->grid_k = n;
        q->bits = n;
        return QS_OK;
    }
    static const struct {
        const char *name;
        qs_grid_t g;
    } coded[] = {{"pot", QS_GRID_POT}, {"apot", QS_GRID_APOT}, {"kmeans", QS_GRID_KMEANS}, {"lloyd", QS_GRID_LLOYD}};
    for (size_t i = 0; i < sizeof coded / sizeof *coded; i++) {
        int r = prefix_num(v, coded[i].name, &n);
        if (r >= 0) {
            reset_grid(q, coded[i].g);
            if (r == 1)
                q->bits = n;
            return QS_OK;
        }
    }
    if (strcmp(v, "mxint8") == 0) {
        reset_grid(q, QS_GRID_BFP);
        q->grid_k = 8;
        q->bits = 8;
        set_block(q, 32);
        return QS_OK;
    }
    if (prefix_num(v, "bfp", &n) >= 0) {
        reset_grid(q, QS_GRID_BFP);
        q->grid_k = n ? n : 8;
        set_block(q, 32);
        return QS_OK;
    }
    if (strcmp(v, "nvfp4") == 0) {
        set_float(q, QS_GRID_NVFP4, 2, 1, QS_MF_FINITE);
        set_block(q, 16);
        return QS_OK;
    }
    for (size_t i = 0; i < sizeof mx_names / sizeof *mx_names; i++)
        if (strcmp(v, mx_names[i].name) == 0) {
            set_float(q, QS_GRID_MX, mx_names[i].e, mx_names[i].m, mx_names[i].conv);
            set_block(q, 32);
            return QS_OK;
        }
    if (qs_mf_named(v, &f) == QS_OK) {
        set_float(q, QS_GRID_FLOAT, f.exp_bits, f.man_bits, f.conv);
        return QS_OK;
    }
    int e, m, len = 0;
    if (sscanf(v, "e%dm%d%n", &e, &m, &len) == 2 && v[0] == 'e' && len > 0) {
        const char *suf = v + len;
        int conv = -1;
        for (int c = 0; c < 4; c++)
            if (strcmp(suf, conv_suffix[c]) == 0)
                conv = c;
        if (conv >= 0) {
            if (qs_mf_init(&f, e, m, (qs_mf_conv_t)conv) < 0)
                return qs_error_context("%s: key 'grid': '%s': ", what, v);
            set_float(q, QS_GRID_FLOAT, e, m, (qs_mf_conv_t)conv);
            return QS_OK;
        }
    }
    return qs_spec_bad_value(what, "grid", v, grid_forms);
}

int qs_block_parse(qs_quantizer_t *q, const char *value, const char *what)
{
    char buf[64];
    if (strlen(value) >= sizeof buf)
        return qs_error(QS_ERR_INVALID, "%s: key 'block': value too long", what);
    snprintf(buf, sizeof buf, "%s", value);
    char *part[4];
    int np = 0;
    for (char *p = buf; np < 4;) {
        part[np++] = p;
        char *c = strchr(p, ':');
        if (!c)
            break;
        *c = '\0';
        p = c + 1;
    }
    int64_t axis = -1, size;
    qs_block_rule_t rule = QS_BLOCK_FLOOR;
    int rc, si = np == 1 ? 0 : 1;
    if (np > 3 || (np == 1 && strchr(value, ':')))
        goto bad;
    if (np >= 2 && (rc = qs_kv_int(what, "block", part[0], -QS_MAX_DIMS, QS_MAX_DIMS - 1, &axis)) < 0)
        return rc;
    if ((rc = qs_kv_int(what, "block", part[si], 1, 1 << 20, &size)) < 0)
        return rc;
    if (np == 3) {
        static const char *const rules[] = {"floor", "up", NULL};
        int r;
        if ((rc = qs_kv_choice(what, "block", part[2], rules, &r)) < 0)
            return rc;
        rule = (qs_block_rule_t)r;
    }
    q->block = size;
    q->block_axis = (int)axis;
    q->block_rule = rule;
    return QS_OK;
bad:;
    static const char *const forms[] = {"SIZE", "AXIS:SIZE", "AXIS:SIZE:floor", "AXIS:SIZE:up", NULL};
    return qs_spec_bad_value(what, "block", value, forms);
}

char *qs_grid_name(const qs_quantizer_t *q, char *buf, size_t n)
{
    const char *name = NULL;
    switch (q->grid) {
    case QS_GRID_UNIFORM: name = "uniform"; break;
    case QS_GRID_LS1: name = "ls-1"; break;
    case QS_GRID_LS2: name = "ls-2"; break;
    case QS_GRID_LST: name = "ls-t"; break;
    case QS_GRID_GF: snprintf(buf, n, "gf-%d", q->grid_k); return buf;
    case QS_GRID_POT: name = "pot"; break;
    case QS_GRID_APOT: name = "apot"; break;
    case QS_GRID_KMEANS: name = "kmeans"; break;
    case QS_GRID_LLOYD: name = "lloyd"; break;
    case QS_GRID_NVFP4: name = "nvfp4"; break;
    case QS_GRID_BFP: snprintf(buf, n, "bfp-%d", q->grid_k); return buf;
    case QS_GRID_MX:
        for (size_t i = 0; i < sizeof mx_names / sizeof *mx_names; i++)
            if (mx_names[i].e == q->fexp && mx_names[i].m == q->fman && mx_names[i].conv == q->fconv) {
                name = mx_names[i].name;
                break;
            }
        break;
    case QS_GRID_FLOAT:
        if ((name = qs_mf_name_of(q->fexp, q->fman, q->fconv)))
            break;
        snprintf(buf, n, "e%dm%d%s", q->fexp, q->fman,
                 (int)q->fconv >= 0 && q->fconv <= QS_MF_FINITE ? conv_suffix[q->fconv] : "-?");
        return buf;
    default: break;
    }
    snprintf(buf, n, "%s", name ? name : "?");
    return buf;
}

/* ---- validation ------------------------------------------------------------------------------- */

static int fixed_bits(const qs_quantizer_t *q)
{
    switch (q->grid) {
    case QS_GRID_LS1: return 1;
    case QS_GRID_LS2:
    case QS_GRID_LST: return 2;
    case QS_GRID_GF: return q->grid_k;
    case QS_GRID_FLOAT:
    case QS_GRID_MX:
    case QS_GRID_NVFP4: return 1 + q->fexp + q->fman;
    default: return 0;
    }
}

/* Inclusive bit ranges of the grids that take bits. */
static void bits_range(const qs_quantizer_t *q, int *lo, int *hi)
{
    bool u = is_unsigned_scheme(q->scheme);
    switch (q->grid) {
    case QS_GRID_POT: *lo = u ? 1 : 2, *hi = 8; break;
    case QS_GRID_APOT: *lo = u ? 1 : 2, *hi = u ? 6 : 7; break;
    case QS_GRID_BFP: *lo = 2, *hi = 16; break;
    default: *lo = 1, *hi = 8; break;
    }
}

int qs_grid_validate(const qs_quantizer_t *q)
{
    char g[32];
    qs_grid_name(q, g, sizeof g);
    if ((int)q->grid <= QS_GRID_UNIFORM || q->grid >= QS_GRID_COUNT)
        return qs_error(QS_ERR_INVALID, "grid %d: unknown grid", (int)q->grid);
    int fb = fixed_bits(q);
    if (q->grid == QS_GRID_GF && (q->grid_k < 1 || q->grid_k > QS_LSQ_MAX_BASIS))
        return qs_error(QS_ERR_INVALID, "grid=gf-%d: expected 1..%d rounds", q->grid_k, QS_LSQ_MAX_BASIS);
    if (fb && q->bits != fb)
        return qs_error(QS_ERR_INVALID,
                        "grid=%s is a %d-bit grid, so bits=%d conflicts with it (leave bits out, or pick a grid "
                        "that takes bits: uniform, pot, apot, kmeans, lloyd, bfp)",
                        g, fb, q->bits);
    if (!fb) {
        int lo, hi;
        bits_range(q, &lo, &hi);
        if (q->bits < lo || q->bits > hi)
            return qs_error(QS_ERR_INVALID, "grid=%s with bits=%d: expected bits %d..%d%s", g, q->bits, lo, hi,
                            q->grid == QS_GRID_POT || q->grid == QS_GRID_APOT
                                ? (is_unsigned_scheme(q->scheme) ? " (unsigned)" : " (a sign bit and the magnitude)")
                                : "");
    }
    if (q->grid == QS_GRID_BFP && (q->grid_k < 1 || q->grid_k > 8))
        return qs_error(QS_ERR_INVALID, "grid=%s: the shared exponent has 1..8 bits", g);
    if (qs_grid_is_float(q->grid)) {
        qs_mf_t f;
        if (qs_grid_format(q, &f) < 0)
            return qs_error_context("grid=%s: ", g);
    }
    if (qs_grid_is_block(q->grid)) {
        if (q->block < 1 || (q->block_rule != QS_BLOCK_FLOOR && q->block_rule != QS_BLOCK_UP))
            return qs_error(QS_ERR_INVALID, "grid=%s: block size %lld: expected 1 or more", g, (long long)q->block);
        if (q->gran.kind != QS_GRAN_TENSOR)
            return qs_error(QS_ERR_INVALID,
                            "grid=%s has its own blocks (block=AXIS:SIZE), so gran must be tensor, not %s", g,
                            q->gran.kind == QS_GRAN_CHANNEL ? "channel" : "group");
    } else if (q->block || q->block_axis || q->block_rule) {
        return qs_error(QS_ERR_INVALID, "key 'block' applies to the block grids (mxfp*, mxint8, nvfp4, bfp), not grid=%s",
                        g);
    }
    /* range setting: fitted and block grids set their own levels or scales */
    qs_range_method_t r = q->range.method;
    if ((fitted(q->grid) || qs_grid_is_block(q->grid)) && r != QS_RANGE_MINMAX)
        return qs_error(QS_ERR_INVALID, "grid=%s %s, so range must be minmax (the default)", g,
                        fitted(q->grid) ? "fits its levels to the data" : "takes each block's scale from its maximum");
    if (r != QS_RANGE_MINMAX && r != QS_RANGE_PERCENTILE && r != QS_RANGE_MSE)
        return qs_error(QS_ERR_INVALID, "grid=%s: range must be minmax, percentile or mse (the histogram methods "
                        "sqnr, kl and aciq model a uniform grid)", g);
    qs_round_mode_t m = q->round.mode;
    bool tz_ok = qs_grid_is_float(q->grid) || q->grid == QS_GRID_BFP;
    if (m != QS_ROUND_NEAREST_EVEN && m != QS_ROUND_STOCHASTIC && !(tz_ok && m == QS_ROUND_TOWARD_ZERO))
        return qs_error(QS_ERR_INVALID, "grid=%s: round must be nearest-even, stochastic%s", g,
                        tz_ok ? " or toward-zero" : "");
    if (m == QS_ROUND_STOCHASTIC && (q->round.rbits < 1 || q->round.rbits > 32))
        return qs_error(QS_ERR_INVALID, "round=stochastic with %d random bits: expected 1..32", q->round.rbits);
    bool fmt_ok = qs_grid_is_float(q->grid);
    if (q->overflow != QS_OVERFLOW_SATURATE && !(fmt_ok && q->overflow == QS_OVERFLOW_FORMAT))
        return qs_error(QS_ERR_INVALID, "grid=%s: overflow must be saturate%s", g, fmt_ok ? " or format" : "");
    bool scaled = q->grid == QS_GRID_FLOAT || q->grid == QS_GRID_POT || q->grid == QS_GRID_APOT;
    if ((int)q->scale_type < 0 || q->scale_type >= QS_SCALE_COUNT || (!scaled && q->scale_type != QS_SCALE_FLOAT))
        return qs_error(QS_ERR_INVALID, "grid=%s: scale must be float (scale constraints apply to the float, pot and "
                        "apot grids)", g);
    if (q->div != QS_DIV_DIVIDE)
        return qs_error(QS_ERR_INVALID, "grid=%s: div must be divide (div=reciprocal applies to uniform grids)", g);
    if (q->gran.kind == QS_GRAN_GROUP && q->gran.group < 1)
        return qs_error(QS_ERR_INVALID, "gran=group: group size %lld: expected 1 or more", (long long)q->gran.group);
    return QS_OK;
}

int qs_grid_levels(const qs_quantizer_t *q)
{
    bool u = is_unsigned_scheme(q->scheme);
    switch (q->grid) {
    case QS_GRID_LS1: return 2;
    case QS_GRID_LS2: return 4;
    case QS_GRID_LST: return 3;
    case QS_GRID_GF: return q->grid_k >= 1 && q->grid_k <= QS_LSQ_MAX_BASIS ? 1 << q->grid_k : 0;
    case QS_GRID_POT:
    case QS_GRID_APOT: {
        double lv[MAX_LEVELS];
        int n = qs_log_levels(q->grid, q->bits, u, lv, MAX_LEVELS);
        return n > 0 ? n : 0;
    }
    case QS_GRID_KMEANS:
    case QS_GRID_LLOYD: return q->bits >= 1 && q->bits <= 8 ? 1 << q->bits : 0;
    default: return 0;
    }
}

double qs_grid_overhead_bits(const qs_quantizer_t *q, int64_t elements, int64_t slices)
{
    if (elements <= 0)
        return 0.0;
    double e = (double)elements;
    switch (q->grid) {
    case QS_GRID_UNIFORM: {
        bool zp = q->scheme == QS_SCHEME_ASYMMETRIC || q->scheme == QS_SCHEME_ASYMMETRIC_SIGNED;
        double sbits = q->scale_type == QS_SCALE_NONE ? 0 : q->scale_type == QS_SCALE_FP16 || q->scale_type == QS_SCALE_BF16 ? 16
                       : q->scale_type == QS_SCALE_POW2 || q->scale_type == QS_SCALE_E8M0                              ? 8
                                                                                                                     : 32;
        return (double)slices * (sbits + (zp ? q->bits : 0)) / e;
    }
    case QS_GRID_FLOAT: return q->scale_type == QS_SCALE_NONE ? 0.0 : (double)slices * 32.0 / e;
    case QS_GRID_MX: return 8.0 / (double)q->block;
    case QS_GRID_BFP: return (double)q->grid_k / (double)q->block;
    case QS_GRID_NVFP4: return 8.0 / (double)q->block + 32.0 / e;
    case QS_GRID_POT:
    case QS_GRID_APOT: return (double)slices * 32.0 / e; /* α; the unit levels are fixed */
    case QS_GRID_LS1:
    case QS_GRID_LST: return (double)slices * 32.0 / e;
    case QS_GRID_LS2: return (double)slices * 64.0 / e;
    case QS_GRID_GF: return (double)slices * 32.0 * q->grid_k / e;
    default: return (double)slices * 32.0 * qs_grid_levels(q) / e; /* a table of float32 levels */
    }
}

const char *qs_grid_int_reason(const qs_quantizer_t *q)
{
    switch (q->grid) {
    case QS_GRID_UNIFORM:
    case QS_GRID_LS1:
    case QS_GRID_LST: return NULL;
    case QS_GRID_GF:
        if (q->grid_k == 1)
            return NULL; /* gf-1 is ls-1 */
        return "the integer engine runs sign-basis grids of one basis (ls-1, gf-1, ls-t); this grid has several";
    case QS_GRID_LS2: return "the integer engine runs sign-basis grids of one basis (ls-1, gf-1, ls-t); this grid has several";
    case QS_GRID_POT:
    case QS_GRID_APOT:
    case QS_GRID_KMEANS:
    case QS_GRID_LLOYD: return "the integer engine has no shift-add or lookup-table datapath for codebook grids";
    default: return "the integer engine has no floating-point datapath (float and block grids run in fake-quant)";
    }
}

int32_t qs_grid_sign_weight(const qs_quantizer_t *q, int32_t code)
{
    if (q->grid == QS_GRID_LS1 || (q->grid == QS_GRID_GF && q->grid_k == 1))
        return 2 * code - 1;
    if (q->grid == QS_GRID_LST)
        return code - 1;
    return INT32_MIN;
}

/* ---- power-of-two levels ---------------------------------------------------------------------- */

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Magnitudes of a B-bit additive power-of-two grid, before normalization: the
 * sums of one term from each base set. B even: B/2 terms, term i in {0} ∪
 * {2^−(i+1+j·B/2) : j = 0, 1, 2} (Li, Dong, Wang, ICLR 2020, Eq. 5 with k = 2).
 * B odd: the construction of the paper's reference implementation (B = 1, 3, 5). */
static int apot_magnitudes(int B, double *mag)
{
    double base[3][4];
    int nb = 0, cnt[3] = {0, 0, 0};
    for (int t = 0; t < 3; t++)
        base[t][cnt[t]++] = 0.0;
    switch (B) {
    case 1: base[0][cnt[0]++] = 1.0; nb = 1; break;
    case 3:
        base[0][cnt[0]++] = 0.5, base[0][cnt[0]++] = 0.25, base[0][cnt[0]++] = 0.0625;
        base[1][cnt[1]++] = 0.125;
        nb = 2;
        break;
    case 5:
        base[0][cnt[0]++] = ldexp(1, -1), base[0][cnt[0]++] = ldexp(1, -3), base[0][cnt[0]++] = ldexp(1, -6);
        base[1][cnt[1]++] = ldexp(1, -2), base[1][cnt[1]++] = ldexp(1, -4), base[1][cnt[1]++] = ldexp(1, -7);
        base[2][cnt[2]++] = ldexp(1, -5);
        nb = 3;
        break;
    default: /* even */
        nb = B / 2;
        for (int i = 0; i < nb; i++)
            for (int j = 0; j < 3; j++)
                base[i][cnt[i]++] = ldexp(1.0, -(i + 1 + j * nb));
        break;
    }
    int n = 0;
    for (int a = 0; a < cnt[0]; a++)
        for (int b = 0; b < (nb > 1 ? cnt[1] : 1); b++)
            for (int c = 0; c < (nb > 2 ? cnt[2] : 1); c++)
                mag[n++] = base[0][a] + (nb > 1 ? base[1][b] : 0) + (nb > 2 ? base[2][c] : 0);
    qsort(mag, (size_t)n, sizeof *mag, cmp_dbl);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (m == 0 || mag[i] != mag[m - 1])
            mag[m++] = mag[i];
    return m;
}

int qs_log_levels(qs_grid_t g, int bits, bool is_unsigned, double *lv, int max)
{
    int B = is_unsigned ? bits : bits - 1; /* magnitude bits */
    double mag[MAX_LEVELS];
    int m;
    if (g == QS_GRID_POT) {
        if (B < 1 || B > 8)
            return qs_error(QS_ERR_INVALID, "pot: %d magnitude bits: expected 1..8", B);
        /* magnitude codes 0 (zero) and 1..2^B−1: 2^−(2^B−1−c) (Miyashita et al. 2016) */
        m = 1 << B;
        mag[0] = 0.0;
        for (int c = 1; c < m; c++)
            mag[c] = ldexp(1.0, -((1 << B) - 1 - c));
    } else if (g == QS_GRID_APOT) {
        if (B < 1 || B > 6)
            return qs_error(QS_ERR_INVALID, "apot: %d magnitude bits: expected 1..6", B);
        m = apot_magnitudes(B, mag);
        for (int i = 0; i < m; i++)
            mag[i] /= mag[m - 1];
    } else {
        return qs_error(QS_ERR_INVALID, "power-of-two levels: grid %d is neither pot nor apot", (int)g);
    }
    int n = is_unsigned ? m : 2 * m - 1;
    if (n > max)
        return qs_error(QS_ERR_INVALID, "power-of-two levels: %d levels do not fit in %d", n, max);
    int k = 0;
    if (!is_unsigned)
        for (int i = m - 1; i >= 1; i--)
            lv[k++] = -mag[i];
    for (int i = 0; i < m; i++)
        lv[k++] = mag[i];
    return n;
}

/* ---- the per-slice fit ------------------------------------------------------------------------------ */

bool qs_grid_wants_store(const qs_quantizer_t *q)
{
    return fitted(q->grid) || (q->grid != QS_GRID_UNIFORM && q->range.method == QS_RANGE_MSE);
}

/* Levels of a sign-basis grid, ascending. */
static int lsq_levels(const qs_quantizer_t *q, const float *x, int64_t n, float *scale, double *lv, int nl)
{
    static const qs_lsq_kind_t kind[] = {[QS_GRID_LS1] = QS_LSQ_1, [QS_GRID_LS2] = QS_LSQ_2,
                                         [QS_GRID_LST] = QS_LSQ_T, [QS_GRID_GF] = QS_LSQ_GF};
    qs_lsq_grid_t g;
    int rc = qs_lsq_fit(kind[q->grid], q->grid_k, x, n, &g);
    if (rc < 0)
        return rc;
    *scale = (float)g.v[0];
    if (q->grid == QS_GRID_LST) {
        lv[0] = -g.v[0], lv[1] = 0, lv[2] = g.v[0];
    } else if (q->grid == QS_GRID_LS2) {
        lv[0] = -(g.v[0] + g.v[1]), lv[1] = -(g.v[0] - g.v[1]), lv[2] = g.v[0] - g.v[1], lv[3] = g.v[0] + g.v[1];
    } else { /* every sign pattern of the bases */
        for (int c = 0; c < nl; c++) {
            double s = 0;
            for (int j = 0; j < g.nbasis; j++)
                s += (c >> (g.nbasis - 1 - j) & 1) ? g.v[j] : -g.v[j];
            lv[c] = s;
        }
        qsort(lv, (size_t)nl, sizeof *lv, cmp_dbl);
    }
    return QS_OK;
}

/* x̂ of one value on a scaled grid (pot, apot: unit levels u; float: format f), for the mse search. */
static double scaled_sse(const qs_quantizer_t *q, double s, const double *u, int nu, const qs_mf_t *f,
                         const float *x, int64_t n)
{
    double e = 0;
    float lv[MAX_LEVELS];
    for (int i = 0; i < nu; i++)
        lv[i] = (float)(s * u[i]);
    for (int64_t i = 0; i < n; i++) {
        double y = q->grid == QS_GRID_FLOAT ? (double)(float)(s * qs_mf_round(f, x[i] / s, QS_MF_NEAREST_EVEN, 0,
                                                                              q->overflow == QS_OVERFLOW_SATURATE))
                                            : lv[qs_codebook_index(lv, nu, x[i])];
        double d = x[i] - y;
        e += d * d;
    }
    return e;
}

#define MSE_CANDIDATES 100

int qs_grid_fit_slice(const qs_quantizer_t *q, const float *x, int64_t n, double mn, double mx,
                      const struct qs_hist *h, float *scale, float *levels)
{
    int nl = qs_grid_levels(q);
    double lv[MAX_LEVELS];
    double amax = fmax(fabs(mn), fabs(mx));
    if (!isfinite(amax))
        amax = 0;
    int rc = QS_OK;
    *scale = 1.0f;
    if (qs_grid_is_block(q->grid)) {
        /* the block scales are the data's own; nvfp4's tensor scale maps the
         * tensor maximum to 6 x 448, the largest element times the largest block scale */
        if (q->grid == QS_GRID_NVFP4 && amax > 0)
            *scale = (float)(amax / (6.0 * 448.0));
        return QS_OK;
    }
    if (fitted(q->grid)) {
        if (n == 0 || amax == 0) {
            for (int i = 0; i < nl; i++)
                levels[i] = 0;
            return QS_OK;
        }
        if (q->grid == QS_GRID_KMEANS)
            rc = qs_kmeans_fit(x, n, nl, lv);
        else if (q->grid == QS_GRID_LLOYD)
            rc = qs_lloyd_fit(x, n, nl, NULL, lv);
        else
            rc = lsq_levels(q, x, n, scale, lv, nl);
        if (rc < 0)
            return rc;
        if (q->grid == QS_GRID_KMEANS || q->grid == QS_GRID_LLOYD)
            *scale = (float)fmax(fabs(lv[0]), fabs(lv[nl - 1]));
        for (int i = 0; i < nl; i++)
            levels[i] = (float)lv[i];
        return QS_OK;
    }
    /* scaled grids: pot, apot (α = the largest level) and float (amax → the format's largest value) */
    qs_mf_t f;
    memset(&f, 0, sizeof f);
    double top = 1.0;
    if (q->grid == QS_GRID_FLOAT) {
        if ((rc = qs_grid_format(q, &f)) < 0)
            return rc;
        top = f.max;
    } else if ((nl = qs_log_levels(q->grid, q->bits, is_unsigned_scheme(q->scheme), lv, MAX_LEVELS)) < 0) {
        return nl;
    }
    double t = amax;
    if (q->range.method == QS_RANGE_PERCENTILE && h) {
        qs_quantizer_t u;
        qs_quantizer_default(&u);
        u.range = q->range;
        double lo, hi;
        if ((rc = qs_range_percentile(&u, h, mn, mx, &lo, &hi)) < 0)
            return rc;
        t = fmax(fabs(lo), fabs(hi));
    } else if (q->range.method == QS_RANGE_MSE && n > 0 && amax > 0) {
        double best = INFINITY;
        for (int c = MSE_CANDIDATES; c >= 1; c--) { /* from the largest: ties keep the larger range */
            double tc = amax * c / MSE_CANDIDATES;
            double s = q->scale_type == QS_SCALE_NONE ? 1.0 : (double)qs_scale_constrain(q->scale_type, tc / top);
            double e = scaled_sse(q, s, lv, nl, &f, x, n);
            if (e < best) {
                best = e;
                t = tc;
            }
        }
    }
    double s = q->scale_type == QS_SCALE_NONE || !(t > 0) ? 1.0 : (double)qs_scale_constrain(q->scale_type, t / top);
    if (!(s > 0) || !isfinite(s))
        s = 1.0;
    *scale = (float)s;
    if (q->grid != QS_GRID_FLOAT)
        for (int i = 0; i < nl; i++)
            levels[i] = (float)(s * lv[i]);
    return QS_OK;
}
