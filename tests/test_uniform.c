/* tests/test_uniform.c — the uniform affine quantizer (quant/uniform.c):
 * code ranges, ranges to grids, scale constraints, division vs reciprocal,
 * overflow, NaN/Inf, the fast kernels against the element-wise reference,
 * granularity indexing against an independent naive loop, properties,
 * statistics, thread-count independence, dequantization and errors. */
#include "tests/testutil.h"

#include "quant/quant_internal.h"

#include <float.h>
#include <math.h>
#include <string.h>


static qs_quantizer_t qz(int bits, qs_scheme_t scheme)
{
    qs_quantizer_t q;
    qs_quantizer_default(&q);
    q.bits = bits;
    q.scheme = scheme;
    return q;
}

static float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static bool same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* Uniform in [-a, a), from Philox. */
static float rnd(uint64_t seed, uint64_t i, double a) { return (float)((qs_rng_uniform(seed, 0, i) * 2 - 1) * a); }

static qs_tensor_t *tensor_f32(int ndim, const int64_t *shape)
{
    qs_tensor_t *t = qs_tensor_create(QS_F32, ndim, shape);
    ck_assert_ptr_nonnull(t);
    return t;
}

/* ---- the quantizer ----------------------------------------------------------------------- */

START_TEST(test_defaults)
{
    qs_quantizer_t q;
    memset(&q, 0xab, sizeof q);
    qs_quantizer_default(&q);
    ck_assert_int_eq(q.grid, QS_GRID_UNIFORM);
    ck_assert_int_eq(q.bits, 8);
    ck_assert_int_eq(q.scheme, QS_SCHEME_SYMMETRIC);
    ck_assert_int_eq(q.gran.kind, QS_GRAN_TENSOR);
    ck_assert_int_eq(q.range.method, QS_RANGE_MINMAX);
    ck_assert_int_eq(q.round.mode, QS_ROUND_NEAREST_EVEN);
    ck_assert_int_eq(q.round.rbits, 32);
    ck_assert_int_eq(q.overflow, QS_OVERFLOW_SATURATE);
    ck_assert_int_eq(q.scale_type, QS_SCALE_FLOAT);
    ck_assert_int_eq(q.div, QS_DIV_DIVIDE);
    ck_assert_int_eq(qs_quantizer_validate(&q), QS_OK);
}
END_TEST

START_TEST(test_code_ranges)
{
    static const struct {
        qs_scheme_t s;
        int bits;
        int64_t lo, hi;
    } t[] = {
        {QS_SCHEME_SYMMETRIC, 8, -128, 127},
        {QS_SCHEME_SYMMETRIC_NARROW, 8, -127, 127},
        {QS_SCHEME_UNSIGNED, 8, 0, 255},
        {QS_SCHEME_ASYMMETRIC, 8, 0, 255},
        {QS_SCHEME_ASYMMETRIC_SIGNED, 8, -128, 127},
        {QS_SCHEME_SYMMETRIC, 1, -1, 0},
        {QS_SCHEME_SYMMETRIC_NARROW, 2, -1, 1},
        {QS_SCHEME_UNSIGNED, 1, 0, 1},
        {QS_SCHEME_SYMMETRIC, 4, -8, 7},
        {QS_SCHEME_ASYMMETRIC, 31, 0, INT32_MAX},
        {QS_SCHEME_SYMMETRIC, 32, INT32_MIN, INT32_MAX},
        {QS_SCHEME_SYMMETRIC_NARROW, 32, -INT32_MAX, INT32_MAX},
        {QS_SCHEME_ASYMMETRIC_SIGNED, 32, INT32_MIN, INT32_MAX},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        qs_quantizer_t q = qz(t[i].bits, t[i].s);
        ck_assert_int_eq(qs_quantizer_validate(&q), QS_OK);
        int64_t lo, hi;
        qs_quantizer_code_range(&q, &lo, &hi);
        ck_assert_int_eq(lo, t[i].lo);
        ck_assert_int_eq(hi, t[i].hi);
    }
}
END_TEST

static void expect_invalid(const qs_quantizer_t *q, const char *a, const char *b)
{
    int rc = qs_quantizer_validate(q);
    ck_assert_int_eq(rc, QS_ERR_INVALID);
    REQUIRE_MSG(strstr(qs_last_error(), a) != NULL, "message '%s' lacks '%s'", qs_last_error(), a);
    if (b)
        REQUIRE_MSG(strstr(qs_last_error(), b) != NULL, "message '%s' lacks '%s'", qs_last_error(), b);
}

START_TEST(test_validation)
{
    qs_quantizer_t q = qz(1, QS_SCHEME_SYMMETRIC_NARROW);
    expect_invalid(&q, "symmetric-narrow", "2..32");
    q = qz(32, QS_SCHEME_UNSIGNED);
    expect_invalid(&q, "bits=32", "1..31");
    q = qz(32, QS_SCHEME_ASYMMETRIC);
    expect_invalid(&q, "asymmetric", "int32");
    q = qz(0, QS_SCHEME_SYMMETRIC);
    expect_invalid(&q, "bits=0", "1..32");
    q = qz(33, QS_SCHEME_SYMMETRIC);
    expect_invalid(&q, "bits=33", "1..32");
    q = qz(8, QS_SCHEME_SYMMETRIC);
    q.gran.kind = QS_GRAN_GROUP;
    q.gran.group = 0;
    expect_invalid(&q, "group size 0", "1 or more");
    q = qz(8, QS_SCHEME_SYMMETRIC);
    q.round.mode = QS_ROUND_STOCHASTIC;
    q.round.rbits = 0;
    expect_invalid(&q, "random bits", "1..32");
    q.round.rbits = 33;
    expect_invalid(&q, "33", NULL);
    q.round.rbits = 1;
    ck_assert_int_eq(qs_quantizer_validate(&q), QS_OK);
    q = qz(8, QS_SCHEME_SYMMETRIC);
    q.scheme = QS_SCHEME_COUNT;
    expect_invalid(&q, "scheme", "symmetric-narrow");
    q = qz(8, QS_SCHEME_SYMMETRIC);
    q.range.method = QS_RANGE_PERCENTILE;
    q.range.percentile = 0;
    expect_invalid(&q, "percentile", "(0, 100]");
    /* widths that are fine */
    q = qz(31, QS_SCHEME_UNSIGNED);
    ck_assert_int_eq(qs_quantizer_validate(&q), QS_OK);
    q = qz(32, QS_SCHEME_ASYMMETRIC_SIGNED);
    ck_assert_int_eq(qs_quantizer_validate(&q), QS_OK);
    q = qz(2, QS_SCHEME_SYMMETRIC_NARROW);
    ck_assert_int_eq(qs_quantizer_validate(&q), QS_OK);
}
END_TEST

/* ---- ranges and scales ----------------------------------------------------------------- */

static void from_range(qs_quantizer_t q, double lo, double hi, float s, int32_t z)
{
    float sc;
    int32_t zp;
    ck_assert_int_eq(qs_qparams_from_range(&q, lo, hi, &sc, &zp), QS_OK);
    REQUIRE_MSG(sc == s, "bits %d scheme %d [%g, %g]: scale %.9g, expected %.9g", q.bits, q.scheme, lo, hi,
                  (double)sc, (double)s);
    REQUIRE_MSG(zp == z, "bits %d scheme %d [%g, %g]: zero point %d, expected %d", q.bits, q.scheme, lo, hi,
                  zp, z);
}

START_TEST(test_from_range)
{
    /* [-1, 3] with 8 bits, by hand */
    from_range(qz(8, QS_SCHEME_SYMMETRIC), -1, 3, 3.0f / 127, 0);
    from_range(qz(8, QS_SCHEME_SYMMETRIC_NARROW), -1, 3, 3.0f / 127, 0);
    from_range(qz(8, QS_SCHEME_UNSIGNED), -1, 3, 3.0f / 255, 0);
    /* asymmetric: s = 4/255, -1/s = -63.75 -> -64, z = 0 - (-64) = 64 */
    from_range(qz(8, QS_SCHEME_ASYMMETRIC), -1, 3, (float)(4.0 / 255), 64);
    from_range(qz(8, QS_SCHEME_ASYMMETRIC_SIGNED), -1, 3, (float)(4.0 / 255), -64);
    REQUIRE(3.0f / 127 == 0.023622047156095505f);
    REQUIRE((float)(4.0 / 255) == 0.01568627543747425f);
    /* zero always representable: [0.5, 2] becomes [0, 2]; [-2, -0.5] becomes [-2, 0] */
    from_range(qz(8, QS_SCHEME_ASYMMETRIC), 0.5, 2, (float)(2.0 / 255), 0);
    from_range(qz(8, QS_SCHEME_ASYMMETRIC), -2, -0.5, (float)(2.0 / 255), 255);
    from_range(qz(8, QS_SCHEME_SYMMETRIC), -6.35, 1, (float)(6.35 / 127), 0);
    /* 1 bit symmetric: A / max(1, 0) */
    from_range(qz(1, QS_SCHEME_SYMMETRIC), -1, 3, 3.0f, 0);
    /* 4-bit asymmetric on [-1, 2]: s = 3/15 = 0.2, -1/0.2 = -5 (in float 0.2 rounded), z = 5 */
    from_range(qz(4, QS_SCHEME_ASYMMETRIC), -1, 2, 0.2f, 5);
    /* zero range: scale 1 */
    from_range(qz(8, QS_SCHEME_SYMMETRIC), 0, 0, 1.0f, 0);
    from_range(qz(8, QS_SCHEME_UNSIGNED), -5, 0, 1.0f, 0);
    from_range(qz(8, QS_SCHEME_ASYMMETRIC), 0, 0, 1.0f, 0);
    from_range(qz(8, QS_SCHEME_ASYMMETRIC_SIGNED), 0, 0, 1.0f, -128);
    /* below the smallest normal float: raised to FLT_MIN */
    from_range(qz(8, QS_SCHEME_SYMMETRIC), -1e-45, 1e-45, FLT_MIN, 0);
    /* pow2: 3/127 = 0.0236 -> 2^-5; asymmetric 4/255 = 0.01569 > 2^-6 -> 2^-5, z = 32 */
    qs_quantizer_t q = qz(8, QS_SCHEME_SYMMETRIC);
    q.scale_type = QS_SCALE_POW2;
    from_range(q, -1, 3, 0.03125f, 0);
    q = qz(8, QS_SCHEME_ASYMMETRIC);
    q.scale_type = QS_SCALE_POW2;
    from_range(q, -1, 3, 0.03125f, 32);
    /* bf16 scale: 4/255 = (256/255)·2^-6 and 256/255 = 1 + 0.50196/128 rounds up to
     * 1 + 1/128: s = 1.0078125·2^-6 = 0.0157470703125; -1/s = -63.504 -> z = 64 */
    q.scale_type = QS_SCALE_BF16;
    from_range(q, -1, 3, 0.0157470703125f, 64);

    /* errors */
    float s;
    int32_t z;
    q = qz(8, QS_SCHEME_SYMMETRIC);
    ck_assert_int_eq(qs_qparams_from_range(&q, -INFINITY, 1, &s, &z), QS_ERR_NUMERIC);
    REQUIRE(strstr(qs_last_error(), "finite") != NULL);
    ck_assert_int_eq(qs_qparams_from_range(&q, 0, NAN, &s, &z), QS_ERR_NUMERIC);
    ck_assert_int_eq(qs_qparams_from_range(&q, 2, 1, &s, &z), QS_ERR_INVALID);
    q = qz(1, QS_SCHEME_ASYMMETRIC);
    ck_assert_int_eq(qs_qparams_from_range(&q, -3e38, 3e38, &s, &z), QS_ERR_NUMERIC);
}
END_TEST

START_TEST(test_scale_constrain)
{
    REQUIRE(qs_scale_constrain(QS_SCALE_FLOAT, 1.0 / 3) == 1.0f / 3);
    /* pow2: 2^ceil(log2 s), never smaller than s */
    REQUIRE(qs_scale_constrain(QS_SCALE_POW2, 0.3) == 0.5f);
    REQUIRE(qs_scale_constrain(QS_SCALE_POW2, 0.25) == 0.25f);
    REQUIRE(qs_scale_constrain(QS_SCALE_POW2, 0.25000001) == 0.5f);
    REQUIRE(qs_scale_constrain(QS_SCALE_POW2, 3) == 4.0f);
    REQUIRE(qs_scale_constrain(QS_SCALE_POW2, 1) == 1.0f);
    REQUIRE(qs_scale_constrain(QS_SCALE_POW2, 0x1p-130) == 0x1p-130f);
    REQUIRE(qs_scale_constrain(QS_SCALE_POW2, 1e-50) == 0x1p-149f);
    REQUIRE(isinf(qs_scale_constrain(QS_SCALE_POW2, 3e38)));
    /* e8m0: same, exponent clamped to [-127, 127] */
    REQUIRE(qs_scale_constrain(QS_SCALE_E8M0, 0.3) == 0.5f);
    REQUIRE(qs_scale_constrain(QS_SCALE_E8M0, 1e-40) == 0x1p-127f);
    REQUIRE(qs_scale_constrain(QS_SCALE_E8M0, 3e38) == 0x1p127f);
    REQUIRE(qs_scale_constrain(QS_SCALE_E8M0, 1e300) == 0x1p127f);
    /* fp16: nearest-even binary16 */
    REQUIRE(qs_scale_constrain(QS_SCALE_FP16, 1.0 / 3) == 0.333251953125f);
    REQUIRE(qs_scale_constrain(QS_SCALE_FP16, 0.1) == 0.0999755859375f);
    REQUIRE(qs_scale_constrain(QS_SCALE_FP16, 1 + 0x1p-11) == 1.0f);               /* tie, to even */
    REQUIRE(qs_scale_constrain(QS_SCALE_FP16, 1 + 3 * 0x1p-11) == 1.001953125f);   /* tie, to even */
    REQUIRE(qs_scale_constrain(QS_SCALE_FP16, 1e-6) == 1.0132789611816406e-06f);   /* subnormal: 17·2^-24 */
    REQUIRE(qs_scale_constrain(QS_SCALE_FP16, 70000) == 65504.0f);                 /* saturates */
    REQUIRE(qs_scale_constrain(QS_SCALE_FP16, 65519) == 65504.0f);
    REQUIRE(qs_scale_constrain(QS_SCALE_FP16, 0x1p-25) == 0x1p-24f);                /* would round to 0 */
    REQUIRE(qs_scale_constrain(QS_SCALE_FP16, 1e-10) == 0x1p-24f);
    /* bf16: nearest-even bfloat16 */
    REQUIRE(qs_scale_constrain(QS_SCALE_BF16, 1.0 / 3) == 0.333984375f);
    REQUIRE(qs_scale_constrain(QS_SCALE_BF16, 0.1) == 0.10009765625f);
    REQUIRE(qs_scale_constrain(QS_SCALE_BF16, 1 + 0x1p-8) == 1.0f);
    REQUIRE(qs_scale_constrain(QS_SCALE_BF16, 1 + 3 * 0x1p-8) == 1.015625f);
    REQUIRE(qs_scale_constrain(QS_SCALE_BF16, 255.5) == 256.0f);
}
END_TEST

/* ---- the arithmetic ------------------------------------------------------------------------ */

START_TEST(test_divide_vs_reciprocal)
{
    /* DESIGN.md: 0.273939937f / 0.00214854861f = 127.49999237 -> 127, but
     * 0.273939937f * fl32(1 / 0.00214854861f) = 127.5 -> 128 (ties to even) */
    const float x = 0.273939937f, s = 0.00214854861f;
    REQUIRE(x / s == 127.49999237060547f);
    REQUIRE(x * (1.0f / s) == 127.5f);
    qs_quantizer_t q = qz(16, QS_SCHEME_SYMMETRIC);
    ck_assert_int_eq(qs_quantize_one(&q, x, s, 0, 0, NULL), 127);
    float xs[3] = {x, -x, x};
    int32_t c[3];
    qs_quant_run(&q, s, 0, xs, c, NULL, 3, 0, NULL);
    ck_assert_int_eq(c[0], 127);
    ck_assert_int_eq(c[1], -127);
    q.div = QS_DIV_RECIPROCAL;
    ck_assert_int_eq(qs_quantize_one(&q, x, s, 0, 0, NULL), 128);
    qs_quant_run(&q, s, 0, xs, c, NULL, 3, 0, NULL);
    ck_assert_int_eq(c[0], 128);
    ck_assert_int_eq(c[1], -128);
    /* the generic (wide) path agrees */
    q = qz(32, QS_SCHEME_SYMMETRIC);
    qs_quant_run(&q, s, 0, xs, c, NULL, 3, 0, NULL);
    ck_assert_int_eq(c[0], 127);
    q.div = QS_DIV_RECIPROCAL;
    qs_quant_run(&q, s, 0, xs, c, NULL, 3, 0, NULL);
    ck_assert_int_eq(c[0], 128);
}
END_TEST

static int32_t q1(qs_quantizer_t q, float x, float s, int32_t z, bool *clip)
{
    int32_t a = qs_quantize_one(&q, x, s, z, 0, clip);
    /* the run kernel (fast or generic) gives the same code */
    int32_t b;
    qs_quant_run(&q, s, z, &x, &b, NULL, 1, 0, NULL);
    ck_assert_int_eq(a, b);
    return a;
}

START_TEST(test_overflow)
{
    bool clip;
    qs_quantizer_t sat = qz(8, QS_SCHEME_SYMMETRIC), wrap = sat;
    wrap.overflow = QS_OVERFLOW_WRAP;
    ck_assert_int_eq(q1(sat, 200, 1, 0, &clip), 127);
    REQUIRE(clip);
    ck_assert_int_eq(q1(wrap, 200, 1, 0, &clip), -56);
    REQUIRE(clip);
    ck_assert_int_eq(q1(sat, -200, 1, 0, NULL), -128);
    ck_assert_int_eq(q1(wrap, -200, 1, 0, NULL), 56);
    ck_assert_int_eq(q1(sat, 128, 1, 0, NULL), 127);
    ck_assert_int_eq(q1(wrap, 128, 1, 0, NULL), -128);
    ck_assert_int_eq(q1(wrap, 127, 1, 0, &clip), 127);
    REQUIRE(!clip);
    ck_assert_int_eq(q1(wrap, 1000000, 1, 0, NULL), 64); /* 1000000 = 3906·256 + 64 */
    ck_assert_int_eq(q1(wrap, 1e20f, 1, 0, NULL), 0);    /* a multiple of 2^43 */
    ck_assert_int_eq(q1(wrap, -1e20f, 1, 0, NULL), 0);
    ck_assert_int_eq(q1(sat, 1e20f, 1, 0, NULL), 127);
    ck_assert_int_eq(q1(wrap, 1e20f, 1, 5, NULL), 5); /* 1e20 + 5 = 5 modulo 256 */
    /* unsigned ranges wrap modulo 2^b into [0, 2^b - 1] */
    qs_quantizer_t usat = qz(8, QS_SCHEME_UNSIGNED), uwrap = usat;
    uwrap.overflow = QS_OVERFLOW_WRAP;
    ck_assert_int_eq(q1(usat, 300, 1, 0, NULL), 255);
    ck_assert_int_eq(q1(uwrap, 300, 1, 0, NULL), 44);
    ck_assert_int_eq(q1(usat, -1, 1, 0, NULL), 0);
    ck_assert_int_eq(q1(uwrap, -1, 1, 0, NULL), 255);
    /* asymmetric with a zero point: round(v) + z, then overflow */
    qs_quantizer_t awrap = qz(8, QS_SCHEME_ASYMMETRIC);
    awrap.overflow = QS_OVERFLOW_WRAP;
    ck_assert_int_eq(q1(awrap, 250, 1, 10, NULL), 4);
    awrap.overflow = QS_OVERFLOW_SATURATE;
    ck_assert_int_eq(q1(awrap, 250, 1, 10, NULL), 255);
    /* symmetric-narrow: two's complement wrap, and -2^(b-1) goes to qmin */
    qs_quantizer_t nwrap = qz(8, QS_SCHEME_SYMMETRIC_NARROW);
    nwrap.overflow = QS_OVERFLOW_WRAP;
    ck_assert_int_eq(q1(nwrap, 128, 1, 0, NULL), -127);
    ck_assert_int_eq(q1(nwrap, 129, 1, 0, NULL), -127);
    ck_assert_int_eq(q1(nwrap, 130, 1, 0, NULL), -126);
    ck_assert_int_eq(q1(nwrap, -128, 1, 0, &clip), -127);
    REQUIRE(clip);
    /* 32 bits: exact for huge values */
    qs_quantizer_t w32 = qz(32, QS_SCHEME_SYMMETRIC);
    w32.overflow = QS_OVERFLOW_WRAP;
    ck_assert_int_eq(q1(w32, 0x1p40f + 0x1p31f, 1, 0, NULL), INT32_MIN);
    ck_assert_int_eq(q1(w32, 0x1p40f + 0x1p31f + 0x1p20f, 1, 0, NULL), INT32_MIN + (1 << 20));
    ck_assert_int_eq(q1(w32, 3e38f, 1, 0, NULL), 0);
    w32.overflow = QS_OVERFLOW_SATURATE;
    ck_assert_int_eq(q1(w32, 0x1p40f, 1, 0, NULL), INT32_MAX);
    ck_assert_int_eq(q1(w32, -0x1p31f, 1, 0, &clip), INT32_MIN);
    REQUIRE(!clip);
    ck_assert_int_eq(q1(w32, -0x1p31f, 0.5f, 0, &clip), INT32_MIN);
    REQUIRE(clip);
}
END_TEST

START_TEST(test_nonfinite)
{
    for (int ov = 0; ov < 2; ov++) {
        qs_quantizer_t q = qz(8, QS_SCHEME_SYMMETRIC);
        q.overflow = (qs_overflow_t)ov;
        bool clip;
        ck_assert_int_eq(q1(q, NAN, 0.1f, 0, &clip), 0);
        REQUIRE(!clip);
        ck_assert_int_eq(q1(q, INFINITY, 0.1f, 0, &clip), 127);
        REQUIRE(!clip);
        ck_assert_int_eq(q1(q, -INFINITY, 0.1f, 0, NULL), -128);
        /* a finite x whose quotient overflows counts as clipped */
        ck_assert_int_eq(q1(q, 3e38f, 1e-3f, 0, &clip), 127);
        REQUIRE(clip);
        q = qz(8, QS_SCHEME_ASYMMETRIC);
        q.overflow = (qs_overflow_t)ov;
        ck_assert_int_eq(q1(q, NAN, 0.1f, 64, NULL), 64);
        ck_assert_int_eq(q1(q, -NAN, 0.1f, 64, NULL), 64);
        ck_assert_int_eq(q1(q, INFINITY, 0.1f, 64, NULL), 255);
        ck_assert_int_eq(q1(q, -INFINITY, 0.1f, 64, NULL), 0);
        q = qz(24, QS_SCHEME_SYMMETRIC); /* the generic path */
        q.overflow = (qs_overflow_t)ov;
        ck_assert_int_eq(q1(q, NAN, 0.1f, 7, NULL), 7);
        ck_assert_int_eq(q1(q, INFINITY, 0.1f, 7, NULL), (1 << 23) - 1);
        ck_assert_int_eq(q1(q, -INFINITY, 0.1f, 7, NULL), -(1 << 23));
    }
    /* stats over a tensor: NaN and Inf counted apart, excluded from sse */
    qs_quantizer_t q = qz(8, QS_SCHEME_SYMMETRIC);
    int64_t shape[1] = {6};
    qs_tensor_t *x = tensor_f32(1, shape), *y = tensor_f32(1, shape);
    float *xv = qs_f32(x);
    xv[0] = NAN;
    xv[1] = INFINITY;
    xv[2] = -INFINITY;
    xv[3] = 1.0f;
    xv[4] = 100.0f; /* clipped */
    xv[5] = 0.26f;
    qs_qparams_t *p;
    ck_assert_int_eq(qs_qparams_create(&q, 1, shape, &p), QS_OK);
    p->scale[0] = 0.5f;
    qs_qstats_t st;
    ck_assert_int_eq(qs_quantize(&q, p, x, NULL, y, NULL, &st), QS_OK);
    ck_assert_int_eq(st.count, 6);
    ck_assert_int_eq(st.nonfinite, 3);
    ck_assert_int_eq(st.clipped, 1);
    float *yv = qs_f32(y);
    REQUIRE(same_bits(yv[0], 0.0f));
    REQUIRE(yv[1] == 63.5f);
    REQUIRE(yv[2] == -64.0f);
    REQUIRE(yv[3] == 1.0f);
    REQUIRE(yv[4] == 63.5f);
    REQUIRE(yv[5] == 0.5f);
    double e4 = 100.0 - 63.5, e5 = 0.26f - 0.5;
    REQUIRE(fabs(st.sse - (e4 * e4 + e5 * e5)) < 1e-12);
    REQUIRE(st.max_abs_err == e4);
    REQUIRE(fabs(st.signal - (1.0 + 100.0 * 100.0 + (double)0.26f * 0.26f)) < 1e-9);
    qs_qparams_free(p);
    qs_tensor_free(x);
    qs_tensor_free(y);
}
END_TEST

/* Values that exercise every branch: ties for s a power of two, the clamp
 * bounds, tiny values of both signs, huge values, NaN and Inf. */
static void tricky_values(float *x, int n, float s, int64_t qmin, int64_t qmax, int32_t z, uint64_t seed)
{
    static const float special[] = {0.0f,  -0.0f,     1e-30f, -1e-30f,  1e-45f,  -1e-45f, 3e38f,
                                    -3e38f, INFINITY, -INFINITY, NAN,     0.5f,     -0.5f,  0.49999997f,
                                    -0.49999997f, 1.5f, -1.5f,  2.5f,    -2.5f};
    int k = 0;
    for (size_t i = 0; i < sizeof special / sizeof *special && k < n; i++)
        x[k++] = special[i] * (fabsf(special[i]) < 10 && special[i] != 0 ? s : 1.0f);
    double lo = (double)(qmin - z), hi = (double)(qmax - z);
    for (int d = -4; d <= 4 && k + 4 <= n; d++) {
        x[k++] = (float)((lo + d * 0.25) * s);
        x[k++] = (float)((hi + d * 0.25) * s);
        x[k++] = (float)((lo + d * 0.5) * s);
        x[k++] = (float)((hi + d * 0.5) * s);
    }
    for (uint64_t i = 0; k < n; i++) {
        double span = (hi - lo + 4) * s;
        switch (i % 4) {
        case 0: /* exact ties and integers on the grid */
            x[k++] = (float)((floor(qs_rng_uniform(seed, 1, i) * (hi - lo + 4) * 2) / 2 + lo - 2) * s);
            break;
        case 1:
            x[k++] = rnd(seed, i, span);
            break;
        case 2: /* small values, near zero */
            x[k++] = rnd(seed, i, 4 * s);
            break;
        default:
            x[k++] = rnd(seed, i, 2 * span);
            break;
        }
    }
}

/* qs_quant_run (fast or generic) against qs_quantize_one + qs_dequantize_one,
 * element by element, with and without statistics. */
static void check_run(const qs_quantizer_t *q, float s, int32_t z, uint64_t index0, int n, uint64_t seed)
{
    int64_t qmin, qmax;
    qs_quantizer_code_range(q, &qmin, &qmax);
    float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y), *y2 = malloc((size_t)n * sizeof *y2);
    int32_t *c = malloc((size_t)n * sizeof *c), *c2 = malloc((size_t)n * sizeof *c2);
    tricky_values(x, n, s, qmin, qmax, z, seed);
    qs_quant_run(q, s, z, x, c, y, n, index0, NULL);
    qs_runstats_t st;
    memset(&st, 0, sizeof st);
    qs_quant_run(q, s, z, x, c2, y2, n, index0, &st);
    int64_t clipped = 0, nonfin = 0;
    double sse = 0, mx = 0;
    for (int j = 0; j < n; j++) {
        bool clip;
        int32_t ref = qs_quantize_one(q, x[j], s, z, index0 + (uint64_t)j, &clip);
        float yr = qs_dequantize_one(s, z, ref);
        REQUIRE_MSG(c[j] == ref && c2[j] == ref,
                      "%s bits=%d scheme=%d div=%d s=%g z=%d x=%.9g: code %d/%d, expected %d",
                      qs_round_name(q->round.mode), q->bits, q->scheme, q->div, (double)s, z, (double)x[j], c[j],
                      c2[j], ref);
        REQUIRE_MSG(same_bits(y[j], yr) && same_bits(y2[j], yr), "%s x=%.9g: y %.9g, expected %.9g",
                      qs_round_name(q->round.mode), (double)x[j], (double)y[j], (double)yr);
        if (isfinite(x[j])) {
            clipped += clip;
            double e = (double)x[j] - yr;
            sse += e * e;
            mx = fabs(e) > mx ? fabs(e) : mx;
        } else {
            nonfin++;
        }
    }
    ck_assert_int_eq(st.clipped, clipped);
    ck_assert_int_eq(st.nonfinite, nonfin);
    REQUIRE(st.max_abs_err == mx);
    REQUIRE_MSG(fabs(st.sse - sse) <= 1e-12 * sse, "sse %.17g vs %.17g", st.sse, sse);
    if (q->round.mode != QS_ROUND_STOCHASTIC || index0 == 0) /* qs_quant_sse draws from index 0 */
        REQUIRE(qs_quant_sse(q, s, z, x, n) == st.sse);
    /* in place: y may be x */
    memcpy(y2, x, (size_t)n * sizeof *x);
    qs_quant_run(q, s, z, y2, NULL, y2, n, index0, NULL);
    REQUIRE(memcmp(y2, y, (size_t)n * sizeof *y) == 0);
    free(x);
    free(y);
    free(y2);
    free(c);
    free(c2);
}

START_TEST(test_kernels_match_reference)
{
    static const int bits[] = {1, 2, 4, 8, 12, 20, 21, 24};
    static const float scales[] = {0.25f, 0.1f, 0.0123f, 3.0f};
    static const int rbits[] = {32, 1, 2, 5, 13, 24, 31};
    uint64_t seed = 1;
    for (int m = 0; m < QS_ROUND_COUNT; m++)
        for (int d = 0; d < 2; d++)
            for (int sch = 0; sch < QS_SCHEME_COUNT; sch++)
                for (size_t b = 0; b < sizeof bits / sizeof *bits; b++)
                    for (int ov = 0; ov < 2; ov++) {
                        qs_quantizer_t q = qz(bits[b], (qs_scheme_t)sch);
                        if (qs_quantizer_validate(&q) < 0)
                            continue;
                        q.round.mode = (qs_round_mode_t)m;
                        q.round.seed = 77;
                        q.round.stream = 3;
                        q.round.rbits = rbits[(seed / 2) % 7];
                        q.div = (qs_div_t)d;
                        q.overflow = (qs_overflow_t)ov;
                        int64_t qmin, qmax;
                        qs_quantizer_code_range(&q, &qmin, &qmax);
                        float s = scales[seed % 4];
                        /* a zero point anywhere in the range */
                        int32_t z = sch == QS_SCHEME_ASYMMETRIC || sch == QS_SCHEME_ASYMMETRIC_SIGNED
                                        ? (int32_t)(qmin + (int64_t)(qs_rng_uniform(5, 0, seed) * (double)(qmax - qmin)))
                                        : 0;
                        check_run(&q, s, z, seed * 1001, 700, seed);
                        seed++;
                    }
}
END_TEST

/* ---- granularity ----------------------------------------------------------------------------- */

/* The parameter index of a multi-index, straight from the documented shape
 * of the parameters (independent of qs_qlayout). */
static int64_t naive_param(const qs_quantizer_t *q, int ndim, const int64_t *shape, const int64_t *idx)
{
    if (q->gran.kind == QS_GRAN_TENSOR)
        return 0;
    int axis = q->gran.axis < 0 ? q->gran.axis + ndim : q->gran.axis;
    if (q->gran.kind == QS_GRAN_CHANNEL)
        return idx[axis];
    int64_t ng = (shape[axis] + q->gran.group - 1) / q->gran.group;
    int64_t p = 0;
    for (int d = 0; d < ndim; d++)
        p = p * (d == axis ? ng : shape[d]) + (d == axis ? idx[d] / q->gran.group : idx[d]);
    return p;
}

static void check_gran(const qs_quantizer_t *q, int ndim, const int64_t *shape, qs_pool_t *pool)
{
    qs_qparams_t *p;
    ck_assert_int_eq(qs_qparams_create(q, ndim, shape, &p), QS_OK);
    int64_t qmin, qmax;
    qs_quantizer_code_range(q, &qmin, &qmax);
    for (int64_t i = 0; i < p->count; i++) {
        p->scale[i] = (float)(0.05 + 0.4 * qs_rng_uniform(3, 0, (uint64_t)i));
        p->zero_point[i] = q->scheme == QS_SCHEME_ASYMMETRIC
                               ? (int32_t)(qs_rng_uniform(4, 0, (uint64_t)i) * (double)(qmax + 1))
                               : 0;
    }
    qs_tensor_t *x = tensor_f32(ndim, shape), *y = tensor_f32(ndim, shape);
    qs_tensor_t *c = qs_tensor_create(QS_I32, ndim, shape);
    float *xv = qs_f32(x);
    for (int64_t i = 0; i < x->size; i++)
        xv[i] = rnd(9, (uint64_t)i, 4.0);
    qs_qstats_t st;
    ck_assert_int_eq(qs_quantize(q, p, x, c, y, pool, &st), QS_OK);
    int64_t clipped = 0;
    for (int64_t f = 0; f < x->size; f++) {
        int64_t idx[QS_MAX_DIMS], rem = f;
        for (int d = ndim - 1; d >= 0; d--) {
            idx[d] = rem % shape[d];
            rem /= shape[d];
        }
        int64_t pi = naive_param(q, ndim, shape, idx);
        REQUIRE(pi >= 0 && pi < p->count);
        bool clip;
        int32_t ref = qs_quantize_one(q, xv[f], p->scale[pi], p->zero_point[pi], (uint64_t)f, &clip);
        clipped += clip;
        REQUIRE_MSG(qs_i32(c)[f] == ref, "gran %d axis %d group %lld, element %lld: code %d, expected %d",
                      q->gran.kind, q->gran.axis, (long long)q->gran.group, (long long)f, qs_i32(c)[f], ref);
        REQUIRE(same_bits(qs_f32(y)[f], qs_dequantize_one(p->scale[pi], p->zero_point[pi], ref)));
    }
    ck_assert_int_eq(st.clipped, clipped);
    /* and back: dequantize(codes) is the fake-quantized tensor */
    qs_tensor_t *y2 = tensor_f32(ndim, shape);
    ck_assert_int_eq(qs_dequantize(q, p, c, y2), QS_OK);
    REQUIRE(memcmp(qs_f32(y2), qs_f32(y), (size_t)x->size * sizeof(float)) == 0);
    qs_tensor_free(y2);
    qs_tensor_free(x);
    qs_tensor_free(y);
    qs_tensor_free(c);
    qs_qparams_free(p);
}

START_TEST(test_granularity)
{
    static const int64_t s2[2] = {5, 7}, s4[4] = {2, 3, 4, 5};
    static const int64_t groups[] = {1, 2, 3, 4, 8};
    qs_pool_t *pool = qs_pool_create(2);
    ck_assert_ptr_nonnull(pool);
    for (int sch = 0; sch < 2; sch++)
        for (int rm = 0; rm < 2; rm++) {
            qs_quantizer_t q = qz(4, sch ? QS_SCHEME_ASYMMETRIC : QS_SCHEME_SYMMETRIC);
            q.round.mode = rm ? QS_ROUND_STOCHASTIC : QS_ROUND_NEAREST_EVEN;
            q.round.seed = 11;
            for (int nd = 2; nd <= 4; nd += 2) {
                const int64_t *shape = nd == 2 ? s2 : s4;
                q.gran.kind = QS_GRAN_TENSOR;
                check_gran(&q, nd, shape, NULL);
                for (int axis = -nd; axis < nd; axis++) {
                    q.gran.kind = QS_GRAN_CHANNEL;
                    q.gran.axis = axis;
                    check_gran(&q, nd, shape, NULL);
                    check_gran(&q, nd, shape, pool);
                    q.gran.kind = QS_GRAN_GROUP;
                    for (size_t g = 0; g < sizeof groups / sizeof *groups; g++) {
                        q.gran.group = groups[g];
                        check_gran(&q, nd, shape, g % 2 ? pool : NULL);
                    }
                }
            }
        }
    qs_pool_free(pool);
}
END_TEST

START_TEST(test_params_shape_and_layout)
{
    qs_quantizer_t q = qz(8, QS_SCHEME_SYMMETRIC);
    static const int64_t shape[3] = {2, 3, 4};
    qs_qparams_t *p;
    ck_assert_int_eq(qs_qparams_create(&q, 3, shape, &p), QS_OK);
    ck_assert_int_eq(p->count, 1);
    ck_assert_int_eq(p->ndim, 1);
    ck_assert_int_eq(p->shape[0], 1);
    REQUIRE(p->scale[0] == 1.0f && p->zero_point[0] == 0);
    qs_qparams_free(p);
    q.gran.kind = QS_GRAN_CHANNEL;
    q.gran.axis = -1;
    ck_assert_int_eq(qs_qparams_create(&q, 3, shape, &p), QS_OK);
    ck_assert_int_eq(p->count, 4);
    ck_assert_int_eq(p->ndim, 1);
    ck_assert_int_eq(p->shape[0], 4);
    qs_qparams_free(p);
    q.gran.kind = QS_GRAN_GROUP;
    q.gran.axis = 1;
    q.gran.group = 2; /* 3 -> 2 groups, the last one of 1 */
    ck_assert_int_eq(qs_qparams_create(&q, 3, shape, &p), QS_OK);
    ck_assert_int_eq(p->count, 16);
    ck_assert_int_eq(p->ndim, 3);
    ck_assert_int_eq(p->shape[0], 2);
    ck_assert_int_eq(p->shape[1], 2);
    ck_assert_int_eq(p->shape[2], 4);
    qs_qparams_free(p);
    qs_qlayout_t L;
    ck_assert_int_eq(qs_qlayout(&q, 3, shape, &L), QS_OK);
    ck_assert_int_eq(L.outer, 2);
    ck_assert_int_eq(L.len, 3);
    ck_assert_int_eq(L.inner, 4);
    ck_assert_int_eq(L.ngroups, 2);
    ck_assert_int_eq(L.nparams, 16);
    /* axes out of range */
    q.gran.kind = QS_GRAN_CHANNEL;
    q.gran.axis = 3;
    ck_assert_int_eq(qs_qlayout(&q, 3, shape, &L), QS_ERR_SHAPE);
    REQUIRE(strstr(qs_last_error(), "axis 3") && strstr(qs_last_error(), "rank 3"));
    REQUIRE(strstr(qs_last_error(), "-3..2"));
    q.gran.axis = -4;
    ck_assert_int_eq(qs_qparams_create(&q, 3, shape, &p), QS_ERR_SHAPE);
    ck_assert_ptr_null(p);
    REQUIRE(strstr(qs_last_error(), "axis -4"));
    q.gran.axis = 0;
    ck_assert_int_eq(qs_qlayout(&q, 0, shape, &L), QS_ERR_SHAPE);
    REQUIRE(strstr(qs_last_error(), "rank 0"));
    q.gran.kind = QS_GRAN_GROUP;
    q.gran.group = 0;
    ck_assert_int_eq(qs_qparams_create(&q, 3, shape, &p), QS_ERR_INVALID);
    /* shapes whose element count (or, beside a zero dimension, whose other
     * dimensions' product) passes 2^63: an error, not a signed overflow */
    static const int64_t huge[3] = {INT64_C(1) << 40, INT64_C(1) << 30, 16};
    static const int64_t huge0[3] = {0, INT64_C(1) << 40, INT64_C(1) << 40};
    q.gran.group = 4;
    for (int k = 0; k < 3; k++) {
        q.gran.kind = (qs_gran_kind_t)k;
        q.gran.axis = 0;
        ck_assert_int_eq(qs_qparams_create(&q, 3, huge, &p), QS_ERR_SHAPE);
        ck_assert_ptr_null(p);
        REQUIRE(strstr(qs_last_error(), "multiply past 2^63"));
        ck_assert_int_eq(qs_qlayout(&q, 3, huge0, &L), QS_ERR_SHAPE);
        qs_observer_t *o = NULL;
        ck_assert_int_eq(qs_observer_create(&q, 3, huge, &o), QS_ERR_SHAPE);
        ck_assert_ptr_null(o);
    }
}
END_TEST

/* ---- properties ------------------------------------------------------------------------------- */

START_TEST(test_properties)
{
    const int n = 20000;
    int64_t shape[1] = {n};
    qs_tensor_t *x = tensor_f32(1, shape), *y = tensor_f32(1, shape), *y2 = tensor_f32(1, shape);
    for (int i = 0; i < n; i++)
        qs_f32(x)[i] = rnd(21, (uint64_t)i, 3.0);
    for (int m = 0; m < QS_ROUND_STOCHASTIC; m++)
        for (int sch = 0; sch < QS_SCHEME_COUNT; sch++) {
            qs_quantizer_t q = qz(6, (qs_scheme_t)sch);
            q.round.mode = (qs_round_mode_t)m;
            q.div = (qs_div_t)(m % 2);
            qs_qparams_t *p;
            ck_assert_int_eq(qs_qparams_create(&q, 1, shape, &p), QS_OK);
            ck_assert_int_eq(qs_qparams_from_range(&q, -3, 3, &p->scale[0], &p->zero_point[0]), QS_OK);
            float s = p->scale[0];
            int32_t z = p->zero_point[0];
            int64_t qmin, qmax;
            qs_quantizer_code_range(&q, &qmin, &qmax);
            ck_assert_int_eq(qs_quantize(&q, p, x, NULL, y, NULL, NULL), QS_OK);
            ck_assert_int_eq(qs_quantize(&q, p, y, NULL, y2, NULL, NULL), QS_OK);
            bool nearest = m <= QS_ROUND_NEAREST_ZERO;
            for (int i = 0; i < n; i++) {
                double xi = qs_f32(x)[i], yi = qs_f32(y)[i];
                bool inside = xi >= (double)s * (double)(qmin - z) && xi <= (double)s * (double)(qmax - z);
                /* x̂ lies on the grid and inside the range */
                double k = yi / s;
                REQUIRE(k >= qmin - z - 1e-3 && k <= qmax - z + 1e-3);
                if (nearest) {
                    /* idempotent: fake-quantizing x̂ again gives x̂ */
                    REQUIRE_MSG(same_bits(qs_f32(y2)[i], qs_f32(y)[i]), "%s: %.9g -> %.9g -> %.9g",
                                  qs_round_name(q.round.mode), xi, yi, (double)qs_f32(y2)[i]);
                    if (inside)
                        REQUIRE_MSG(fabs(xi - yi) <= s * (0.5 + 0x1p-15), "%s: |%.9g - %.9g| > s/2 = %g",
                                      qs_round_name(q.round.mode), xi, yi, s / 2.0);
                }
                if (inside && m == QS_ROUND_FLOOR)
                    REQUIRE(yi <= xi + s * 0x1p-15 && xi - yi < s * (1 + 0x1p-15));
                if (inside && m == QS_ROUND_CEIL)
                    REQUIRE(yi >= xi - s * 0x1p-15 && yi - xi < s * (1 + 0x1p-15));
                if (inside && m == QS_ROUND_TOWARD_ZERO)
                    REQUIRE(fabs(yi) <= fabs(xi) + s * 0x1p-15);
                if (inside && m == QS_ROUND_AWAY_FROM_ZERO)
                    REQUIRE(fabs(yi) >= fabs(xi) - s * 0x1p-15);
            }
            qs_qparams_free(p);
        }
    qs_tensor_free(x);
    qs_tensor_free(y);
    qs_tensor_free(y2);
}
END_TEST

START_TEST(test_stochastic_tensor_unbiased)
{
    /* fake-quantizing a constant tensor with stochastic rounding: the mean of
     * x̂ is x within 5 sigma (sigma = s·sqrt(p(1-p)/n)) */
    const int n = 200000;
    int64_t shape[1] = {n};
    qs_tensor_t *x = tensor_f32(1, shape), *y = tensor_f32(1, shape);
    for (int i = 0; i < n; i++)
        qs_f32(x)[i] = 0.3f;
    qs_quantizer_t q = qz(8, QS_SCHEME_SYMMETRIC);
    q.round.mode = QS_ROUND_STOCHASTIC;
    q.round.seed = 5;
    qs_qparams_t *p;
    ck_assert_int_eq(qs_qparams_create(&q, 1, shape, &p), QS_OK);
    p->scale[0] = 0.25f; /* 0.3 / 0.25 = 1.2: P(up) = 0.2 */
    ck_assert_int_eq(qs_quantize(&q, p, x, NULL, y, NULL, NULL), QS_OK);
    double sum = 0;
    for (int i = 0; i < n; i++) {
        float v = qs_f32(y)[i];
        REQUIRE(v == 0.25f || v == 0.5f);
        sum += v;
    }
    double sigma = 0.25 * sqrt(0.2 * 0.8 / n);
    REQUIRE_MSG(fabs(sum / n - 0.3) < 5 * sigma, "mean %.6f", sum / n);
    qs_qparams_free(p);
    qs_tensor_free(x);
    qs_tensor_free(y);
}
END_TEST

/* ---- statistics and threads -------------------------------------------------------------------- */

START_TEST(test_stats_and_threads)
{
    static const struct {
        int ndim;
        int64_t shape[3];
        qs_gran_kind_t gran;
        int axis;
        int64_t group;
        qs_round_mode_t round;
        int bits;
        qs_overflow_t ov;
    } cases[] = {
        {1, {300001}, QS_GRAN_TENSOR, 0, 0, QS_ROUND_NEAREST_EVEN, 8, QS_OVERFLOW_SATURATE},
        {1, {300001}, QS_GRAN_TENSOR, 0, 0, QS_ROUND_STOCHASTIC, 8, QS_OVERFLOW_SATURATE},
        {2, {3, 70001}, QS_GRAN_CHANNEL, 1, 0, QS_ROUND_STOCHASTIC, 4, QS_OVERFLOW_SATURATE},
        {2, {3, 70001}, QS_GRAN_CHANNEL, 0, 0, QS_ROUND_NEAREST_AWAY, 4, QS_OVERFLOW_SATURATE},
        {3, {7, 301, 101}, QS_GRAN_GROUP, 1, 7, QS_ROUND_FLOOR, 8, QS_OVERFLOW_SATURATE},
        {2, {301, 1001}, QS_GRAN_GROUP, -1, 32, QS_ROUND_STOCHASTIC, 8, QS_OVERFLOW_SATURATE},
        /* rows longer than a chunk: chunks start inside rows */
        {3, {2, 3, 70001}, QS_GRAN_GROUP, 1, 2, QS_ROUND_STOCHASTIC, 8, QS_OVERFLOW_SATURATE},
        {3, {2, 3, 70001}, QS_GRAN_GROUP, -2, 2, QS_ROUND_NEAREST_EVEN, 8, QS_OVERFLOW_WRAP},
        {2, {2, 140001}, QS_GRAN_GROUP, 1, 50000, QS_ROUND_NEAREST_UP, 8, QS_OVERFLOW_SATURATE},
        {1, {200003}, QS_GRAN_TENSOR, 0, 0, QS_ROUND_NEAREST_EVEN, 24, QS_OVERFLOW_SATURATE},
        {1, {200003}, QS_GRAN_TENSOR, 0, 0, QS_ROUND_STOCHASTIC, 8, QS_OVERFLOW_WRAP},
    };
    qs_pool_t *pools[3] = {qs_pool_create(1), qs_pool_create(2), qs_pool_create(3)};
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        qs_quantizer_t q = qz(cases[ci].bits, QS_SCHEME_ASYMMETRIC);
        q.gran.kind = cases[ci].gran;
        q.gran.axis = cases[ci].axis;
        q.gran.group = cases[ci].group;
        q.round.mode = cases[ci].round;
        q.round.seed = 1234;
        q.overflow = cases[ci].ov;
        qs_qparams_t *p;
        ck_assert_int_eq(qs_qparams_create(&q, cases[ci].ndim, cases[ci].shape, &p), QS_OK);
        for (int64_t i = 0; i < p->count; i++)
            ck_assert_int_eq(qs_qparams_from_range(&q, -2.5 + 0.5 * qs_rng_uniform(8, 0, (uint64_t)i),
                                                   2 + qs_rng_uniform(8, 1, (uint64_t)i), &p->scale[i],
                                                   &p->zero_point[i]),
                             QS_OK);
        qs_tensor_t *x = tensor_f32(cases[ci].ndim, cases[ci].shape);
        for (int64_t i = 0; i < x->size; i++)
            qs_f32(x)[i] = i % 997 == 5 ? NAN : i % 1009 == 7 ? -INFINITY : rnd(31, (uint64_t)i, 3.0);
        qs_tensor_t *c[4], *y[4];
        qs_qstats_t st[4];
        for (int k = 0; k < 4; k++) {
            c[k] = qs_tensor_create(QS_I32, x->ndim, x->shape);
            y[k] = tensor_f32(x->ndim, x->shape);
            ck_assert_int_eq(qs_quantize(&q, p, x, c[k], y[k], k ? pools[k - 1] : NULL, &st[k]), QS_OK);
        }
        /* bit-identical whatever the thread count */
        for (int k = 1; k < 4; k++) {
            REQUIRE(memcmp(qs_i32(c[k]), qs_i32(c[0]), (size_t)x->size * 4) == 0);
            REQUIRE(memcmp(qs_f32(y[k]), qs_f32(y[0]), (size_t)x->size * 4) == 0);
            REQUIRE(memcmp(&st[k], &st[0], sizeof st[0]) == 0);
        }
        /* codes, values and statistics against a naive loop */
        {
            int64_t clipped = 0, nonfin = 0;
            double sse = 0, sig = 0, mx = 0;
            for (int64_t i = 0; i < x->size; i++) {
                int64_t idx[QS_MAX_DIMS], rem = i;
                for (int d = x->ndim - 1; d >= 0; d--) {
                    idx[d] = rem % x->shape[d];
                    rem /= x->shape[d];
                }
                int64_t pi = naive_param(&q, x->ndim, x->shape, idx);
                float xi = qs_f32(x)[i];
                bool clip;
                int32_t code = qs_quantize_one(&q, xi, p->scale[pi], p->zero_point[pi], (uint64_t)i, &clip);
                REQUIRE_MSG(code == qs_i32(c[0])[i], "element %lld: code %d, expected %d", (long long)i, qs_i32(c[0])[i], code);
                float yi = qs_dequantize_one(p->scale[pi], p->zero_point[pi], code);
                REQUIRE(same_bits(yi, qs_f32(y[0])[i]));
                if (!isfinite(xi)) {
                    nonfin++;
                    continue;
                }
                clipped += clip;
                double e = (double)xi - yi;
                sse += e * e;
                sig += (double)xi * xi;
                mx = fabs(e) > mx ? fabs(e) : mx;
            }
            ck_assert_int_eq(st[0].count, x->size);
            ck_assert_int_eq(st[0].clipped, clipped);
            ck_assert_int_gt(clipped, 0);
            ck_assert_int_eq(st[0].nonfinite, nonfin);
            REQUIRE(st[0].max_abs_err == mx);
            REQUIRE(fabs(st[0].sse - sse) <= 1e-10 * sse);
            REQUIRE(fabs(st[0].signal - sig) <= 1e-10 * sig);
        }
        /* in place gives the same */
        qs_tensor_t *xi = qs_tensor_clone(x);
        qs_qstats_t sti;
        ck_assert_int_eq(qs_quantize(&q, p, xi, NULL, xi, pools[1], &sti), QS_OK);
        REQUIRE(memcmp(qs_f32(xi), qs_f32(y[0]), (size_t)x->size * 4) == 0);
        REQUIRE(memcmp(&sti, &st[0], sizeof sti) == 0);
        qs_tensor_free(xi);
        for (int k = 0; k < 4; k++) {
            qs_tensor_free(c[k]);
            qs_tensor_free(y[k]);
        }
        qs_tensor_free(x);
        qs_qparams_free(p);
    }
    for (int k = 0; k < 3; k++)
        qs_pool_free(pools[k]);
}
END_TEST

START_TEST(test_qstats)
{
    qs_qstats_t s = {100, 5, 20, 8.0, 800.0, 1.0};
    REQUIRE(qs_qstats_mse(&s) == 0.1);
    REQUIRE(fabs(qs_qstats_sqnr_db(&s) - 20.0) < 1e-12);
    REQUIRE(qs_qstats_clipped_fraction(&s) == 0.05);
    s.sse = 0;
    REQUIRE(isinf(qs_qstats_sqnr_db(&s)) && qs_qstats_sqnr_db(&s) > 0);
    qs_qstats_t e = {0, 0, 0, 0, 0, 0};
    REQUIRE(qs_qstats_mse(&e) == 0);
    REQUIRE(qs_qstats_clipped_fraction(&e) == 0);
}
END_TEST

/* ---- dequantize and errors -------------------------------------------------------------------- */

START_TEST(test_dequantize)
{
    /* x̂ = fl32(s·(code - z)) with one rounding: s = 0x3fa16363 (1.26084554),
     * d = 1703622219: s·d = 2148004480 + 2^-23, just above a float midpoint;
     * rounding to double first lands on the midpoint and then on the even
     * neighbour 2148004352, the exact product rounds up to 2148004608. */
    float s = u2f(0x3fa16363u);
    REQUIRE(qs_dequantize_one(s, 0, 1703622219) == 2148004608.0f);
    REQUIRE(qs_dequantize_one(s, 0, -1703622219) == -2148004608.0f);
    REQUIRE((float)((double)s * 1703622219.0) == 2148004352.0f); /* the double-rounding trap */
    REQUIRE(qs_dequantize_one(s, -1, 1703622218) == 2148004608.0f);
    REQUIRE(qs_dequantize_one(0.5f, 3, 7) == 2.0f);
    REQUIRE(qs_dequantize_one(0.1f, 0, 3) == 0.1f * 3);
    /* the same through qs_dequantize */
    qs_quantizer_t q = qz(32, QS_SCHEME_ASYMMETRIC_SIGNED);
    int64_t shape[1] = {4};
    qs_qparams_t *p;
    ck_assert_int_eq(qs_qparams_create(&q, 1, shape, &p), QS_OK);
    p->scale[0] = s;
    qs_tensor_t *c = qs_tensor_create(QS_I32, 1, shape), *y = tensor_f32(1, shape);
    int32_t *cv = qs_i32(c);
    cv[0] = 1703622219;
    cv[1] = -1703622219;
    cv[2] = 5;
    cv[3] = INT32_MIN;
    ck_assert_int_eq(qs_dequantize(&q, p, c, y), QS_OK);
    REQUIRE(qs_f32(y)[0] == 2148004608.0f);
    REQUIRE(qs_f32(y)[1] == -2148004608.0f);
    REQUIRE(qs_f32(y)[2] == s * 5);
    REQUIRE(qs_f32(y)[3] == qs_dequantize_one(s, 0, INT32_MIN));
    /* wrong output type */
    qs_tensor_t *bad = qs_tensor_create(QS_I32, 1, shape);
    ck_assert_int_eq(qs_dequantize(&q, p, c, bad), QS_ERR_SHAPE);
    qs_tensor_free(bad);
    qs_tensor_free(c);
    qs_tensor_free(y);
    qs_qparams_free(p);
}
END_TEST

START_TEST(test_quantize_errors)
{
    qs_quantizer_t q = qz(8, QS_SCHEME_ASYMMETRIC);
    q.gran.kind = QS_GRAN_CHANNEL;
    int64_t shape[2] = {7, 3}, other[2] = {3, 7};
    qs_qparams_t *p, *p2;
    ck_assert_int_eq(qs_qparams_create(&q, 2, shape, &p), QS_OK);
    ck_assert_int_eq(qs_qparams_create(&q, 2, other, &p2), QS_OK);
    qs_tensor_t *x = tensor_f32(2, shape), *xi = qs_tensor_create(QS_I32, 2, shape);
    qs_tensor_t *codes_bad = qs_tensor_create(QS_I32, 2, other), *y_bad = qs_tensor_create(QS_I32, 2, shape);
    ck_assert_int_eq(qs_quantize(&q, p, xi, NULL, NULL, NULL, NULL), QS_ERR_INVALID);
    REQUIRE(strstr(qs_last_error(), "float32"));
    ck_assert_int_eq(qs_quantize(&q, p, x, codes_bad, NULL, NULL, NULL), QS_ERR_SHAPE);
    REQUIRE(strstr(qs_last_error(), "[3, 7]") && strstr(qs_last_error(), "[7, 3]"));
    ck_assert_int_eq(qs_quantize(&q, p, x, NULL, y_bad, NULL, NULL), QS_ERR_SHAPE);
    ck_assert_int_eq(qs_quantize(&q, p2, x, NULL, x, NULL, NULL), QS_ERR_SHAPE);
    REQUIRE_MSG(strstr(qs_last_error(), "expected shape [7]"), "%s", qs_last_error());
    p->scale[2] = 0;
    ck_assert_int_eq(qs_quantize(&q, p, x, NULL, x, NULL, NULL), QS_ERR_NUMERIC);
    REQUIRE(strstr(qs_last_error(), "scale[2]"));
    p->scale[2] = NAN;
    ck_assert_int_eq(qs_quantize(&q, p, x, NULL, x, NULL, NULL), QS_ERR_NUMERIC);
    p->scale[2] = 1;
    p->zero_point[4] = 300;
    ck_assert_int_eq(qs_quantize(&q, p, x, NULL, x, NULL, NULL), QS_ERR_INVALID);
    REQUIRE(strstr(qs_last_error(), "zero_point[4] = 300") && strstr(qs_last_error(), "[0, 255]"));
    p->zero_point[4] = 0;
    q.bits = 40;
    ck_assert_int_eq(qs_quantize(&q, p, x, NULL, x, NULL, NULL), QS_ERR_INVALID);
    q.bits = 8;
    qs_qstats_t st;
    ck_assert_int_eq(qs_quantize(&q, p, x, NULL, NULL, NULL, &st), QS_OK); /* stats only */
    ck_assert_int_eq(st.count, 21);
    qs_tensor_free(x);
    qs_tensor_free(xi);
    qs_tensor_free(codes_bad);
    qs_tensor_free(y_bad);
    qs_qparams_free(p);
    qs_qparams_free(p2);
}
END_TEST

/* docs/arithmetic.md, "Dequantization": data at the end of the float32 range
 * can dequantize past it. 8-bit minmax on FLT_MAX rounds s = FLT_MAX/127 up,
 * so s * 127 overflows to +inf, and the error statistics are +inf. */
START_TEST(test_huge_values)
{
    int64_t shape[1] = {3};
    qs_tensor_t *x = tensor_f32(1, shape), *y = tensor_f32(1, shape);
    qs_tensor_t *c = qs_tensor_create(QS_I32, 1, shape);
    qs_f32(x)[0] = FLT_MAX;
    qs_f32(x)[1] = -FLT_MAX;
    qs_f32(x)[2] = 1.0f;
    qs_quantizer_t q = qz(8, QS_SCHEME_SYMMETRIC);
    qs_qparams_t *p;
    ck_assert_int_eq(qs_calibrate(&q, x, &p), QS_OK);
    REQUIRE(p->scale[0] == (float)(FLT_MAX / 127.0) && (double)p->scale[0] * 127.0 > FLT_MAX);
    qs_qstats_t st;
    ck_assert_int_eq(qs_quantize(&q, p, x, c, y, NULL, &st), QS_OK);
    ck_assert_int_eq(qs_i32(c)[0], 127);
    ck_assert_int_eq(qs_i32(c)[1], -127);
    ck_assert_int_eq(qs_i32(c)[2], 0);
    REQUIRE(isinf(qs_f32(y)[0]) && qs_f32(y)[0] > 0 && isinf(qs_f32(y)[1]) && qs_f32(y)[1] < 0);
    REQUIRE(qs_f32(y)[2] == 0.0f);
    ck_assert_int_eq(st.nonfinite, 0);
    ck_assert_int_eq(st.clipped, 0);
    REQUIRE(isinf(st.sse) && isinf(qs_qstats_mse(&st)) && isinf(st.max_abs_err));
    qs_qparams_free(p);
    qs_tensor_free(x);
    qs_tensor_free(y);
    qs_tensor_free(c);
}
END_TEST

static Suite *mk(void)
{
    Suite *s = suite_create("uniform");
    TCase *tc = tcase_create("quantizer");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_code_ranges);
    tcase_add_test(tc, test_validation);
    tcase_add_test(tc, test_from_range);
    tcase_add_test(tc, test_scale_constrain);
    suite_add_tcase(s, tc);
    tc = tcase_create("arithmetic");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_divide_vs_reciprocal);
    tcase_add_test(tc, test_overflow);
    tcase_add_test(tc, test_nonfinite);
    tcase_add_test(tc, test_kernels_match_reference);
    tcase_add_test(tc, test_properties);
    tcase_add_test(tc, test_stochastic_tensor_unbiased);
    suite_add_tcase(s, tc);
    tc = tcase_create("tensors");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_granularity);
    tcase_add_test(tc, test_params_shape_and_layout);
    tcase_add_test(tc, test_stats_and_threads);
    tcase_add_test(tc, test_qstats);
    tcase_add_test(tc, test_dequantize);
    tcase_add_test(tc, test_quantize_errors);
    tcase_add_test(tc, test_huge_values);
    suite_add_tcase(s, tc);
    return s;
}
QS_TEST_MAIN(mk)
