/* tests/test_grid.c — the non-uniform grids through the quantizer API: the
 * grammar (names, canonical strings that read back, fixed bit counts and the
 * conflicts they make), the pot and apot level sets, optimal k-means against
 * brute force and never worse than Lloyd-Max from any start, the nearest-level
 * rule at midpoints, float grids as casts, the OCP Microscaling conversion
 * rule (floor and round-up), MXINT8, NVFP4's two-level scale, and codes that
 * dequantize to exactly what quantize wrote, for every grid and granularity. */
#include "quasar.h"
#include "quant/quant_internal.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static qs_quantizer_t parse_ok(const char *spec)
{
    qs_quantizer_t q;
    qs_quantizer_default(&q);
    ck_assert_msg(qs_quantizer_parse(spec, "t", &q) == QS_OK, "%s: %s", spec, qs_last_error());
    return q;
}

static void parse_err(const char *spec, const char *msg)
{
    qs_quantizer_t q;
    qs_quantizer_default(&q);
    ck_assert_msg(qs_quantizer_parse(spec, "t", &q) < 0, "%s parsed", spec);
    ck_assert_msg(strstr(qs_last_error(), msg), "%s: '%s' lacks '%s'", spec, qs_last_error(), msg);
}

static void gauss(float *x, int64_t n, uint64_t seed, double sd)
{
    for (int64_t i = 0; i < n; i++) {
        double u = qs_rng_uniform(seed, 1, (uint64_t)i), v = qs_rng_uniform(seed, 2, (uint64_t)i);
        x[i] = (float)(sd * sqrt(-2 * log(1 - u)) * cos(2 * M_PI * v));
    }
}

START_TEST(test_grammar)
{
    static const struct {
        const char *spec, *grid;
        int bits;
    } ok[] = {{"grid=ls-1", "ls-1", 1},         {"grid=ls-2", "ls-2", 2},         {"grid=ls-t", "ls-t", 2},
              {"grid=gf-3", "gf-3", 3},         {"grid=pot-4", "pot", 4},         {"grid=apot,bits=5", "apot", 5},
              {"grid=kmeans-3", "kmeans", 3},   {"grid=lloyd", "lloyd", 8},       {"grid=fp8-e4m3", "fp8-e4m3", 8},
              {"grid=e4m3-fn", "fp8-e4m3", 8},  {"grid=e3m4", "e3m4", 8},         {"grid=e2m5-finite", "e2m5-finite", 8},
              {"grid=bf16", "bf16", 16},        {"grid=mxfp8", "mxfp8-e4m3", 8}, {"grid=mxfp6-e2m3", "mxfp6-e2m3", 6},
              {"grid=mxfp4", "mxfp4", 4},       {"grid=mxint8", "bfp-8", 8},     {"grid=nvfp4", "nvfp4", 4},
              {"grid=bfp-5,bits=6", "bfp-5", 6}, {"grid=uniform,bits=3", "uniform", 3}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        qs_quantizer_t q = parse_ok(ok[i].spec);
        char name[32], s1[512], s2[512];
        ck_assert_str_eq(qs_grid_name(&q, name, sizeof name), ok[i].grid);
        ck_assert_int_eq(q.bits, ok[i].bits);
        qs_quantizer_str(&q, s1, sizeof s1);
        qs_quantizer_t r = parse_ok(s1);
        ck_assert_str_eq(qs_quantizer_str(&r, s2, sizeof s2), s1);
    }
    qs_quantizer_t m = parse_ok("grid=mxfp4");
    ck_assert_int_eq(m.block, 32);
    ck_assert_int_eq(m.block_axis, -1);
    m = parse_ok("block=1:16:up,grid=mxfp4"); /* the grid applies first, wherever it is written */
    ck_assert_int_eq(m.block, 16);
    ck_assert_int_eq(m.block_axis, 1);
    ck_assert_int_eq(m.block_rule, QS_BLOCK_UP);
    char s[512];
    ck_assert_ptr_nonnull(strstr(qs_quantizer_str(&m, s, sizeof s), ",block=1:16:up"));
    ck_assert_ptr_null(strstr(qs_quantizer_str(&(qs_quantizer_t){0}, s, sizeof s), "block"));

    parse_err("grid=ls-2,bits=4", "grid=ls-2 is a 2-bit grid, so bits=4 conflicts with it");
    parse_err("bits=4,grid=ls-2", "conflicts");
    parse_err("grid=fp8-e4m3,bits=4", "grid=fp8-e4m3 is a 8-bit grid");
    parse_err("grid=mxfp4,gran=channel", "so gran must be tensor");
    parse_err("grid=ls-t,range=mse", "fits its levels to the data, so range must be minmax");
    parse_err("grid=fp8-e4m3,range=kl", "range must be minmax, percentile or mse");
    parse_err("grid=pot,round=floor", "round must be nearest-even, stochastic");
    parse_err("grid=kmeans,overflow=format", "overflow must be saturate");
    parse_err("overflow=format", "overflow=format applies to float grids");
    parse_err("block=32", "key 'block' applies to block grids");
    parse_err("grid=gf-9", "gf-K takes K = 1..8");
    parse_err("grid=e1m2", "an IEEE-like format needs E >= 2");
    parse_err("grid=pot,bits=9", "grid=pot with bits=9: expected bits 2..8");
    parse_err("grid=mxfp3", "key 'grid': unknown value 'mxfp3', expected one of: uniform, ls-1");
    parse_err("ls-2", "did you mean grid=ls-2?");
}
END_TEST

START_TEST(test_log_levels)
{
    double lv[64];
    int n = qs_log_levels(QS_GRID_POT, 4, false, lv, 64);
    ck_assert_int_eq(n, 15);
    for (int i = 0; i < 7; i++) {
        ck_assert(lv[7 + 1 + i] == ldexp(1.0, i - 6)); /* 1/64 .. 1 */
        ck_assert(lv[6 - i] == -lv[8 + i]);
    }
    ck_assert(lv[7] == 0.0);
    ck_assert_int_eq(qs_log_levels(QS_GRID_POT, 3, true, lv, 64), 8); /* 0, 2^-6 .. 1 */
    ck_assert(lv[1] == ldexp(1.0, -6));
    /* apot, 4 bits signed: 3 magnitude bits, {0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1} */
    static const double apot3[] = {0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1};
    ck_assert_int_eq(qs_log_levels(QS_GRID_APOT, 4, false, lv, 64), 15);
    for (int i = 0; i < 8; i++)
        ck_assert_msg(fabs(lv[7 + i] - apot3[i]) < 1e-12, "apot level %d: %g", i, lv[7 + i]);
    /* apot, 4 magnitude bits (unsigned): two terms {0, 2^0, 2^-2, 2^-4} + {0, 2^-1, 2^-3, 2^-5}, all distinct */
    ck_assert_int_eq(qs_log_levels(QS_GRID_APOT, 4, true, lv, 64), 16);
    ck_assert(fabs(lv[15] - 1.0) < 1e-15);
    ck_assert(fabs(lv[1] - (1.0 / 32) / 1.5) < 1e-15); /* the smallest term over the largest sum 1 + 1/2 */
}
END_TEST

/* The least squared error over every split of sorted x into k contiguous runs. */
static double brute_kmeans(const float *x, int n, int k)
{
    float s[12];
    memcpy(s, x, (size_t)n * sizeof *s);
    for (int a = 1; a < n; a++)
        for (int b = a; b > 0 && s[b - 1] > s[b]; b--) {
            float t = s[b];
            s[b] = s[b - 1];
            s[b - 1] = t;
        }
    double best = INFINITY;
    for (unsigned cut = 0; cut < (1u << (n - 1)); cut++) { /* bit i: a run ends after s[i] */
        if (__builtin_popcount(cut) > k - 1)
            continue;
        double e = 0, sum = 0, sq = 0;
        int c = 0;
        for (int i = 0; i < n; i++) {
            sum += s[i], sq += (double)s[i] * s[i], c++;
            if (i == n - 1 || (cut >> i & 1)) {
                e += sq - sum * sum / c;
                sum = sq = 0, c = 0;
            }
        }
        best = e < best ? e : best;
    }
    return best;
}

START_TEST(test_kmeans)
{
    float x[12];
    double lv[16], ll[16], init[16];
    for (uint64_t seed = 1; seed <= 400; seed++) {
        int n = 1 + (int)(seed % 12), k = 1 + (int)(seed % 4);
        gauss(x, n, seed, 1.0);
        if (seed % 7 == 0)
            x[n / 2] = x[0]; /* repeated values */
        ck_assert(qs_kmeans_fit(x, n, k, lv) == QS_OK);
        for (int c = 1; c < k; c++)
            REQUIRE(lv[c - 1] <= lv[c]);
        double e = qs_codebook_sse(lv, k, x, n), b = brute_kmeans(x, n, k);
        REQUIRE_MSG(fabs(e - b) <= 1e-9 * (1 + b), "seed %llu n %d k %d: %.17g vs brute %.17g",
                    (unsigned long long)seed, n, k, e, b);
    }
    /* never worse than Lloyd-Max, from its default start and from random starts */
    const int64_t n = 5000;
    float *y = malloc((size_t)n * sizeof *y);
    ck_assert_ptr_nonnull(y);
    for (uint64_t seed = 1; seed <= 12; seed++) {
        gauss(y, n, seed, 1.0);
        for (int64_t i = 0; i < n; i += 3)
            y[i] = fabsf(y[i]) * 3; /* skewed, so starts matter */
        int k = 2 + (int)(seed % 15);
        ck_assert(qs_kmeans_fit(y, n, k, lv) == QS_OK);
        double e = qs_codebook_sse(lv, k, y, n);
        for (int start = 0; start < 6; start++) {
            for (int c = 0; c < k; c++)
                init[c] = y[qs_rng_u32(seed, 100 + (uint64_t)start, (uint64_t)c) % n];
            ck_assert(qs_lloyd_fit(y, n, k, start ? init : NULL, ll) == QS_OK);
            double el = qs_codebook_sse(ll, k, y, n);
            ck_assert_msg(e <= el * (1 + 1e-12), "seed %llu k %d start %d: kmeans %.9g > lloyd %.9g",
                          (unsigned long long)seed, k, start, e, el);
        }
    }
    /* 4 levels on a Gaussian: within 1% of the optimal 4-level quantizer (Max 1960: 0.1175) */
    gauss(y, n, 99, 1.0);
    ck_assert(qs_kmeans_fit(y, n, 4, lv) == QS_OK);
    double var = 0;
    for (int64_t i = 0; i < n; i++)
        var += (double)y[i] * y[i];
    ck_assert_msg(fabs(qs_codebook_sse(lv, 4, y, n) / var / 0.1175 - 1) < 0.03, "kmeans-2 nmse");
    free(y);
}
END_TEST

START_TEST(test_nearest_level)
{
    const float a[] = {-1.0f, 1.0f};
    ck_assert_int_eq(qs_codebook_index(a, 2, 0.0f), 1); /* equal magnitudes: the positive level */
    ck_assert_int_eq(qs_codebook_index(a, 2, -1e-30f), 0);
    const float b[] = {-3.0f, -1.0f, 0.0f, 2.0f};
    ck_assert_int_eq(qs_codebook_index(b, 4, -2.0f), 1); /* midpoint: the smaller magnitude */
    ck_assert_int_eq(qs_codebook_index(b, 4, 1.0f), 2);
    ck_assert_int_eq(qs_codebook_index(b, 4, -0.5f), 2);
    ck_assert_int_eq(qs_codebook_index(b, 4, 1e9f), 3);
    ck_assert_int_eq(qs_codebook_index(b, 4, -1e9f), 0);
    ck_assert_int_eq(qs_codebook_index(b, 4, NAN), 2);
    /* qs_quantize's small-codebook path gives qs_codebook_index's codes: levels with
     * duplicates and symmetric pairs, values on every midpoint and on every level */
    qs_quantizer_t q = parse_ok("grid=kmeans-3");
    const float lv[8] = {-2.0f, -1.0f, -1.0f, -0.5f, 0.5f, 0.5f, 1.0f, 3.0f};
    float x[64];
    int nx = 0;
    for (int j = 0; j < 8; j++) {
        x[nx++] = lv[j];
        if (j < 7)
            x[nx++] = (lv[j] + lv[j + 1]) / 2;
    }
    x[nx++] = NAN, x[nx++] = -7.0f, x[nx++] = 9.0f, x[nx++] = 0.0f, x[nx++] = 0.7499999f, x[nx++] = 0.75f;
    const int64_t sh[1] = {nx};
    qs_tensor_t *t = qs_tensor_create(QS_F32, 1, sh), *c = qs_tensor_create(QS_I32, 1, sh);
    memcpy(t->data, x, (size_t)nx * sizeof *x);
    qs_qparams_t *p;
    ck_assert(qs_qparams_create(&q, 1, sh, &p) == QS_OK);
    memcpy(p->levels, lv, sizeof lv);
    ck_assert(qs_quantize(&q, p, t, c, NULL, NULL, NULL) == QS_OK);
    for (int i = 0; i < nx; i++)
        ck_assert_msg(qs_i32(c)[i] == qs_codebook_index(lv, 8, x[i]), "x = %g: code %d, nearest-level index %d",
                      (double)x[i], qs_i32(c)[i], qs_codebook_index(lv, 8, x[i]));
    qs_qparams_free(p);
    qs_tensor_free(t), qs_tensor_free(c);
}
END_TEST

/* Quantizes x with spec; codes and deq returned (the caller frees). */
static void run(const char *spec, int ndim, const int64_t *shape, const float *x, int32_t *codes, float *deq,
                qs_qparams_t **pp)
{
    qs_quantizer_t q = parse_ok(spec);
    qs_tensor_t *t = qs_tensor_create(QS_F32, ndim, shape), *c = qs_tensor_create(QS_I32, ndim, shape);
    qs_tensor_t *d = qs_tensor_create(QS_F32, ndim, shape), *d2 = qs_tensor_create(QS_F32, ndim, shape);
    memcpy(t->data, x, (size_t)t->size * sizeof(float));
    qs_qparams_t *p;
    qs_qstats_t st;
    ck_assert_msg(qs_calibrate(&q, t, &p) == QS_OK, "%s: %s", spec, qs_last_error());
    ck_assert_msg(qs_quantize(&q, p, t, c, d, NULL, &st) == QS_OK, "%s: %s", spec, qs_last_error());
    ck_assert_msg(qs_dequantize(&q, p, c, d2) == QS_OK, "%s: %s", spec, qs_last_error());
    ck_assert_msg(memcmp(d->data, d2->data, (size_t)t->size * sizeof(float)) == 0, "%s: dequantize differs", spec);
    int64_t lo, hi;
    qs_quantizer_code_range(&q, &lo, &hi);
    const int32_t *cv = qs_i32(c);
    for (int64_t i = 0; i < t->size; i++)
        REQUIRE_MSG(cv[i] >= lo && cv[i] <= hi, "%s: code %d outside %lld..%lld", spec, cv[i], (long long)lo,
                    (long long)hi);
    if (codes)
        memcpy(codes, c->data, (size_t)t->size * sizeof(int32_t));
    if (deq)
        memcpy(deq, d->data, (size_t)t->size * sizeof(float));
    if (pp)
        *pp = p;
    else
        qs_qparams_free(p);
    qs_tensor_free(t), qs_tensor_free(c), qs_tensor_free(d), qs_tensor_free(d2);
}

/* Scaled grids take their percentile of |x| whatever the scheme, and the exact k-means refuses a table it
 * cannot hold, saying what to use instead. */
START_TEST(test_percentile_and_limits)
{
    const int64_t n[1] = {4096};
    float *x = malloc(300000 * sizeof *x);
    ck_assert_ptr_nonnull(x);
    gauss(x, 4096, 21, 1.0);
    static const char *const schemes[] = {"symmetric", "unsigned", "asymmetric"};
    float s0 = 0;
    for (int k = 0; k < 3; k++) {
        char spec[96];
        snprintf(spec, sizeof spec, "grid=fp8-e4m3,range=percentile:99,scheme=%s", schemes[k]);
        qs_qparams_t *p;
        run(spec, 1, n, x, NULL, NULL, &p);
        if (k == 0)
            s0 = p->scale[0];
        ck_assert_msg(p->scale[0] == s0, "%s: scale %g, symmetric %g", schemes[k], (double)p->scale[0], (double)s0);
        qs_qparams_free(p);
    }
    for (int i = 0; i < 300000; i++)
        x[i] = (float)i;
    double lv[256];
    ck_assert_int_lt(qs_kmeans_fit(x, 300000, 256, lv), 0);
    ck_assert_msg(strstr(qs_last_error(), "use lloyd, fewer bits, or a finer granularity"), "%s", qs_last_error());
    ck_assert_int_eq(qs_kmeans_fit(x, 300000, 16, lv), QS_OK); /* 16 x 300000 fits */
    free(x);
}
END_TEST

START_TEST(test_every_grid_round_trip)
{
    static const char *const grids[] = {"ls-1",     "ls-2",     "ls-t",     "gf-2",  "gf-3",     "pot-4",
                                        "apot-4",   "kmeans-4", "lloyd-3",  "fp8-e4m3", "fp8-e5m2", "fp6-e3m2",
                                        "fp4-e2m1", "bf16",     "fp32",     "mxfp8", "mxfp6",    "mxfp4",
                                        "mxint8",   "nvfp4",    "bfp-4"};
    static const char *const grans[] = {"tensor", "channel", "group:2:7"};
    const int64_t shape[3] = {6, 10, 12};
    float x[720];
    gauss(x, 720, 5, 0.3);
    x[17] = 0.0f;
    for (size_t g = 0; g < sizeof grids / sizeof *grids; g++)
        for (size_t k = 0; k < 3; k++) {
            bool block = strncmp(grids[g], "mx", 2) == 0 || strncmp(grids[g], "nv", 2) == 0 ||
                         strncmp(grids[g], "bfp", 3) == 0;
            if (block && k)
                continue;
            char spec[96];
            snprintf(spec, sizeof spec, "grid=%s,gran=%s%s", grids[g], grans[k],
                     strcmp(grids[g], "bfp-4") == 0 ? ",bits=6,block=1:5" : "");
            run(spec, 3, shape, x, NULL, NULL, NULL);
        }
    /* fp32 with scale none is the identity */
    float y[720];
    run("grid=fp32,scale=none", 3, shape, x, NULL, y, NULL);
    ck_assert(memcmp(x, y, sizeof x) == 0);
}
END_TEST

/* The fast element rounding (nearest-even, saturating, no codes asked for) equals the exact encoder's. */
START_TEST(test_fast_path_exact)
{
    static const char *const specs[] = {"grid=fp8-e4m3", "grid=fp8-e5m2", "grid=fp8-e4m3fnuz", "grid=fp6-e2m3",
                                        "grid=fp4-e2m1", "grid=bf16,gran=channel", "grid=e3m4,scale=none",
                                        "grid=mxfp4", "grid=mxfp8-e5m2", "grid=nvfp4", "grid=mxfp6,block=1:7"};
    const int64_t shape[2] = {40, 96};
    float x[3840];
    gauss(x, 3840, 11, 1.0);
    for (int i = 0; i < 3840; i += 7)
        x[i] *= ldexpf(1.0f, -(i % 40)); /* down into the subnormal ranges */
    x[5] = 0.0f, x[6] = -0.0f, x[8] = 1e30f;
    for (size_t k = 0; k < sizeof specs / sizeof *specs; k++) {
        qs_quantizer_t q = parse_ok(specs[k]);
        qs_tensor_t *t = qs_tensor_create(QS_F32, 2, shape), *c = qs_tensor_create(QS_I32, 2, shape);
        qs_tensor_t *d1 = qs_tensor_create(QS_F32, 2, shape), *d2 = qs_tensor_create(QS_F32, 2, shape);
        memcpy(t->data, x, sizeof x);
        qs_qparams_t *p;
        qs_qstats_t s1, s2;
        ck_assert(qs_calibrate(&q, t, &p) == QS_OK);
        ck_assert(qs_quantize(&q, p, t, c, d1, NULL, &s1) == QS_OK);
        ck_assert(qs_quantize(&q, p, t, NULL, d2, NULL, &s2) == QS_OK);
        ck_assert_msg(memcmp(d1->data, d2->data, sizeof x) == 0, "%s: fast path differs", specs[k]);
        ck_assert_int_eq(s1.clipped, s2.clipped);
        ck_assert(s1.sse == s2.sse);
        qs_qparams_free(p);
        qs_tensor_free(t), qs_tensor_free(c), qs_tensor_free(d1), qs_tensor_free(d2);
    }
}
END_TEST

START_TEST(test_float_cast)
{
    const int64_t n[1] = {6};
    const float x[6] = {448.0f, 500.0f, -1e6f, 0.0f, -0.0f, 0.01953125f};
    int32_t c[6];
    float y[6];
    run("grid=fp8-e4m3,scale=none", 1, n, x, c, y, NULL);
    ck_assert_int_eq(c[0], 0x7E);
    ck_assert_int_eq(c[1], 0x7E); /* saturates */
    ck_assert_int_eq(c[2], 0xFE);
    ck_assert_int_eq(c[3], 0x00);
    ck_assert_int_eq(c[4], 0x80);
    ck_assert_int_eq(c[5], 0x0A); /* 1.25 · 2^-6: exponent field 1, mantissa 010 */
    run("grid=fp8-e4m3,scale=none,overflow=format", 1, n, x, c, y, NULL);
    ck_assert_int_eq(c[1], 0x7F); /* the OCP rule: NaN */
    ck_assert(isnan(y[1]));
    /* a per-tensor scale maps the largest magnitude to the largest value */
    qs_qparams_t *p;
    run("grid=fp8-e4m3", 1, n, x, c, y, &p);
    ck_assert(p->scale[0] == (float)(1e6 / 448.0));
    ck_assert_int_eq(c[2], 0xFE);
    qs_qparams_free(p);
}
END_TEST

/* One MX block of 32 values: all zero but x0 and x1 (the block maximum). */
static void mx_block(const char *spec, float x0, float xmax, int32_t *c, float *y)
{
    float x[32] = {0};
    x[0] = x0;
    x[1] = xmax;
    const int64_t n[1] = {32};
    run(spec, 1, n, x, c, y, NULL);
}

/* Worked examples of the OCP MX v1.0 conversion (shared_exp = floor(log2 amax) − emax_elem, elements
 * rounded to nearest-even and saturated), computed independently with exact arithmetic in quasar's
 * reference notes on bit-accurate arithmetic (section "OCP MX"): block, shared exponent, dequantized values. */
static const struct {
    const char *grid;
    float v[4];
    int n, e;
    float want[4];
} mx_examples[] = {
    {"mxfp8-e4m3", {100, 3, -0.5f, 0.02f}, 4, -2, {96, 3, -0.5f, 0.01953125f}},
    {"mxfp8-e5m2", {100, 3, -0.5f, 0.02f}, 4, -9, {96, 3, -0.5f, 0.01953125f}},
    {"mxfp4", {100, 3, -0.5f, 0.02f}, 4, 4, {96, 0, 0, 0}},
    {"mxint8", {100, 3, -0.5f, 0.02f}, 4, 6, {100, 3, 0, 0}},
    {"mxfp8-e4m3", {127, 1, -1}, 3, -2, {112, 1, -1}},
    {"mxfp8-e5m2", {127, 1, -1}, 3, -9, {112, 1, -1}},
    {"mxfp4", {127, 1, -1}, 3, 4, {96, 0, 0}},
    {"mxint8", {127, 1, -1}, 3, 6, {127, 1, -1}},
    {"mxfp8-e4m3", {7, 0.3f, -2.5f}, 3, -6, {7, 0.3125f, -2.5f}},
    {"mxfp8-e5m2", {7, 0.3f, -2.5f}, 3, -13, {7, 0.3125f, -2.5f}},
    {"mxfp4", {7, 0.3f, -2.5f}, 3, 0, {6, 0.5f, -2}},
    {"mxint8", {7, 0.3f, -2.5f}, 3, 2, {7, 0.3125f, -2.5f}},
    {"mxfp8-e4m3", {255, -3, 0.7f}, 3, -1, {224, -3, 0.6875f}},
    {"mxfp8-e5m2", {255, -3, 0.7f}, 3, -8, {224, -3, 0.75f}},
    {"mxfp4", {255, -3, 0.7f}, 3, 5, {192, 0, 0}},
    {"mxint8", {255, -3, 0.7f}, 3, 7, {254, -4, 0}},
};

START_TEST(test_microscaling)
{
    int32_t c[32];
    float y[32];
    for (size_t k = 0; k < sizeof mx_examples / sizeof *mx_examples; k++) {
        float x[32] = {0};
        memcpy(x, mx_examples[k].v, (size_t)mx_examples[k].n * sizeof *x);
        char spec[64];
        snprintf(spec, sizeof spec, "grid=%s", mx_examples[k].grid);
        const int64_t n[1] = {32};
        run(spec, 1, n, x, c, y, NULL);
        ck_assert_msg((c[0] >> 16) - 127 == mx_examples[k].e, "%s example %zu: shared exponent %d, expected %d",
                      mx_examples[k].grid, k, (c[0] >> 16) - 127, mx_examples[k].e);
        for (int i = 0; i < mx_examples[k].n; i++)
            ck_assert_msg(y[i] == mx_examples[k].want[i], "%s example %zu, element %d: %g, expected %g",
                          mx_examples[k].grid, k, i, (double)y[i], (double)mx_examples[k].want[i]);
    }
    /* MXFP4 (E2M1, emax 2): amax 6 → X = 2^(2 − 2) = 1, 6 exact */
    mx_block("grid=mxfp4", 1.5f, 6.0f, c, y);
    ck_assert_int_eq(c[1] >> 16, 127);
    ck_assert(y[1] == 6.0f && y[0] == 1.5f);
    ck_assert_int_eq(c[1] & 0xFFFF, 0x7); /* E2M1 0.11.1 = 6 */
    /* amax 7: the floor rule keeps X = 1, so 7 clips to 6; the round-up rule picks X = 2: 3.5 → 4 (ties to
     * even) → 8 */
    mx_block("grid=mxfp4", 1.0f, 7.0f, c, y);
    ck_assert(y[1] == 6.0f && y[0] == 1.0f);
    mx_block("grid=mxfp4,block=-1:32:up", 1.0f, 7.0f, c, y);
    ck_assert_int_eq(c[1] >> 16, 128);
    ck_assert(y[1] == 8.0f && y[0] == 1.0f);
    /* MXFP8 E4M3 (emax 8): amax 1 → X = 2^-8, 1 → 256 */
    mx_block("grid=mxfp8", 0.3f, 1.0f, c, y);
    ck_assert_int_eq(c[1] >> 16, 127 - 8);
    ck_assert(y[1] == 1.0f);
    ck_assert(fabsf(y[0] - 0.3f) <= 0.3f / 16); /* 3 mantissa bits */
    /* MXFP8 E5M2 (emax 15), MXFP6 E3M2 (emax 4) and E2M3 (emax 2) */
    mx_block("grid=mxfp8-e5m2", 0.0f, 1.0f, c, y);
    ck_assert_int_eq(c[1] >> 16, 127 - 15);
    mx_block("grid=mxfp6-e3m2", 0.0f, 1.0f, c, y);
    ck_assert_int_eq(c[1] >> 16, 127 - 4);
    mx_block("grid=mxfp6-e2m3", 0.0f, 1.0f, c, y);
    ck_assert_int_eq(c[1] >> 16, 127 - 2);
    /* E8M0 clamps: 2^-140 → 2^-127, code 0; an all-zero block takes code 0 */
    mx_block("grid=mxfp4", 0.0f, ldexpf(1.0f, -140), c, y);
    ck_assert_int_eq(c[1] >> 16, 0);
    mx_block("grid=mxfp4", 0.0f, 0.0f, c, y);
    ck_assert_int_eq(c[1] >> 16, 0);
    ck_assert(y[1] == 0.0f);
    /* MXINT8: X = 2^floor(log2 amax), elements with 6 fraction bits, ±127 */
    mx_block("grid=mxint8", 0.5f, 1.99f, c, y);
    ck_assert_int_eq(c[1] >> 16, 127);
    ck_assert_int_eq(c[1] & 0xFFFF, 127); /* 1.99 · 64 = 127.36 */
    ck_assert_int_eq(c[0] & 0xFFFF, 32);
    ck_assert(y[1] == 127.0f / 64);
    mx_block("grid=mxint8", -0.75f, -1.0f, c, y);
    ck_assert_int_eq((int16_t)(c[1] & 0xFFFF), -64);
    ck_assert(y[0] == -0.75f);
    /* blocks are independent: a large value in one block does not coarsen the next */
    float x[64];
    for (int i = 0; i < 64; i++)
        x[i] = i < 32 ? 1000.0f : 0.001f * (float)(i - 31);
    const int64_t n[1] = {64};
    int32_t c2[64];
    float y2[64];
    run("grid=mxfp8", 1, n, x, c2, y2, NULL);
    ck_assert(fabsf(y2[63] - 0.032f) < 0.032f / 8);
}
END_TEST

START_TEST(test_nvfp4)
{
    float x[32];
    for (int i = 0; i < 32; i++)
        x[i] = i < 16 ? 0.25f * (float)(i % 5) : 0.01f * (float)(i - 15);
    x[3] = 12.0f; /* the tensor maximum, in block 0 */
    const int64_t n[1] = {32};
    int32_t c[32];
    float y[32];
    qs_qparams_t *p;
    run("grid=nvfp4", 1, n, x, c, y, &p);
    double ts = p->scale[0];
    ck_assert(p->scale[0] == (float)(12.0 / (6.0 * 448.0)));
    ck_assert_int_eq(c[3] >> 16, 0x7E); /* block 0's scale: E4M3 448 */
    ck_assert_int_eq(c[3] & 0xF, 0x7);  /* E2M1 6 */
    ck_assert(y[3] == (float)(6.0 * 448.0 * ts));
    /* block 1: amax 0.16 → scale E4M3(0.16 / (6 ts)), elements on its E2M1 grid */
    qs_mf_t e4m3;
    qs_mf_named("fp8-e4m3", &e4m3);
    double s1 = qs_mf_round(&e4m3, 0.16 / (6.0 * ts), QS_MF_NEAREST_EVEN, 0, true);
    ck_assert(qs_mf_decode(&e4m3, (uint32_t)(c[31] >> 16)) == s1);
    ck_assert(fabs(y[31] - 0.16) <= 0.16 / 6);
    qs_qparams_free(p);
}
END_TEST

START_TEST(test_stochastic_codebook)
{
    /* pot-2 with scale none: levels {-1, 0, 1}; 0.3 rounds to 0, or stochastically up with probability 0.3 */
    const int64_t n[1] = {20000};
    float *x = malloc(20000 * sizeof *x), *y = malloc(20000 * sizeof *y);
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(y);
    for (int i = 0; i < 20000; i++)
        x[i] = 0.3f;
    run("grid=pot-2,scale=none", 1, n, x, NULL, y, NULL);
    ck_assert(y[0] == 0.0f && y[19999] == 0.0f);
    run("grid=pot-2,scale=none,round=stochastic:7", 1, n, x, NULL, y, NULL);
    double mean = 0;
    for (int i = 0; i < 20000; i++) {
        REQUIRE(y[i] == 0.0f || y[i] == 1.0f);
        mean += y[i];
    }
    mean /= 20000;
    ck_assert_msg(fabs(mean - 0.3) < 0.02, "stochastic pot mean %g", mean);
    /* and a float grid: 1 + 2^-4 in E4M3 (3 mantissa bits) rounds up to 1.125 half the time */
    for (int i = 0; i < 20000; i++)
        x[i] = 1.0625f;
    run("grid=fp8-e4m3,scale=none,round=stochastic:9", 1, n, x, NULL, y, NULL);
    mean = 0;
    for (int i = 0; i < 20000; i++)
        mean += y[i];
    ck_assert_msg(fabs(mean / 20000 - 1.0625) < 0.003, "stochastic e4m3 mean %g", mean / 20000);
    free(x), free(y);
}
END_TEST

static Suite *grid_suite(void)
{
    Suite *s = suite_create("grid");
    TCase *tc = tcase_create("grid");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_grammar);
    tcase_add_test(tc, test_log_levels);
    tcase_add_test(tc, test_kmeans);
    tcase_add_test(tc, test_nearest_level);
    tcase_add_test(tc, test_percentile_and_limits);
    tcase_add_test(tc, test_every_grid_round_trip);
    tcase_add_test(tc, test_fast_path_exact);
    tcase_add_test(tc, test_float_cast);
    tcase_add_test(tc, test_microscaling);
    tcase_add_test(tc, test_nvfp4);
    tcase_add_test(tc, test_stochastic_codebook);
    suite_add_tcase(s, tc);
    return s;
}

QS_TEST_MAIN(grid_suite)
