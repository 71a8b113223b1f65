/* tests/test_requant.c — requantization: gemmlowp's fixed-point primitives,
 * TFLite's QuantizeMultiplier, double and single rounding, shifts, float
 * multipliers and the library presets, with exact ties, negative
 * accumulators, the multiplier carry case and extreme shifts
 * (docs/arithmetic.md, "Requantization"; vectors from the reference notes
 * bit-accurate-arithmetic.md §2.1–2.3). */
#include "quant/quant.h"
#include "tests/testutil.h"

#include <math.h>
#include <string.h>

static qs_requant_t rq_of(const char *spec)
{
    qs_requant_t r;
    qs_requant_default(&r);
    ck_assert_msg(qs_requant_parse(spec, "test", &r) == QS_OK, "%s: %s", spec, qs_last_error());
    return r;
}

/* A channel of multiplier m = 1/(s_y) with s_x = s_w = 1 (exact for powers of two). */
static qs_rq_channel_t chan(const qs_requant_t *r, float s_y)
{
    qs_rq_channel_t c;
    ck_assert_int_eq(qs_requant_channel(r, 1.0f, 1.0f, s_y, 0, -100000, 100000, &c), QS_OK);
    return c;
}

START_TEST(test_srdhm)
{
    const struct {
        int32_t a, b, want;
    } v[] = {
        {1 << 30, 1 << 30, 536870912}, {INT32_MIN, INT32_MIN, INT32_MAX}, {INT32_MIN, INT32_MAX, -2147483647},
        {3, 1 << 30, 2}, {-3, 1 << 30, -1}, {5, 1 << 30, 3}, {-5, 1 << 30, -2}, {1000, 1717986918, 800},
        {-1000, 1717986918, -800}, {123456789, 1518500250, 87297133}, {INT32_MAX, INT32_MAX, 2147483646},
        {-1, 1, 0},
    };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        ck_assert_msg(qs_srdhm(v[i].a, v[i].b) == v[i].want, "SRDHM(%d, %d) = %d", v[i].a, v[i].b,
                      qs_srdhm(v[i].a, v[i].b));
    /* ties go toward +inf: floor((ab + 2^30) / 2^31) for every non-saturating pair */
    uint64_t s = 99;
    for (int i = 0; i < 200000; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        int32_t a = (int32_t)(s >> 32), b = (int32_t)s;
        if (a == INT32_MIN && b == INT32_MIN)
            continue;
        __int128 p = (__int128)a * b + ((__int128)1 << 30);
        __int128 f = p >> 31;
        REQUIRE(qs_srdhm(a, b) == (int32_t)f);
    }
}
END_TEST

START_TEST(test_rdbpot)
{
    const struct {
        int32_t x;
        int e;
        int32_t want;
    } v[] = {
        {5, 1, 3}, {-5, 1, -3}, {6, 2, 2}, {-6, 2, -2}, {7, 2, 2}, {-7, 2, -2}, {1, 1, 1}, {-1, 1, -1},
        {12345, 4, 772}, {-12345, 4, -772}, {INT32_MAX, 31, 1}, {INT32_MIN, 31, -1}, {-(1 << 30), 31, -1},
        {100, 0, 100},
    };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        ck_assert_msg(qs_rdbpot(v[i].x, v[i].e) == v[i].want, "RDBPOT(%d, %d) = %d", v[i].x, v[i].e,
                      qs_rdbpot(v[i].x, v[i].e));
    /* the exact shift with ties away from zero is the same function */
    uint64_t s = 7;
    for (int i = 0; i < 200000; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        int32_t x = (int32_t)(s >> 32);
        int e = (int)(s % 32);
        REQUIRE(qs_rdbpot(x, e) == qs_round_shift(x, e, QS_ROUND_NEAREST_AWAY));
    }
}
END_TEST

START_TEST(test_round_shift)
{
    /* -10 / 4 = -2.5 and 10 / 4 = 2.5 under every mode, as the rounding table of arithmetic.md */
    const qs_round_mode_t m[] = {QS_ROUND_NEAREST_EVEN, QS_ROUND_NEAREST_AWAY, QS_ROUND_NEAREST_UP,
                                 QS_ROUND_NEAREST_DOWN, QS_ROUND_NEAREST_ZERO, QS_ROUND_FLOOR,
                                 QS_ROUND_CEIL,         QS_ROUND_TOWARD_ZERO,  QS_ROUND_AWAY_FROM_ZERO,
                                 QS_ROUND_ODD};
    const int64_t neg[] = {-2, -3, -2, -3, -2, -3, -2, -2, -3, -3};
    const int64_t pos[] = {2, 3, 3, 2, 2, 2, 3, 2, 3, 3};
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(qs_round_shift(-10, 2, m[i]), neg[i]);
        ck_assert_int_eq(qs_round_shift(10, 2, m[i]), pos[i]);
        /* against the double reference on values that are exact in double */
        for (int64_t v = -300; v <= 300; v++)
            for (int e = 0; e < 6; e++)
                REQUIRE(qs_round_shift(v, e, m[i]) == (int64_t)qs_round_det(ldexp((double)v, -e), m[i]));
    }
    ck_assert_int_eq(qs_round_shift((__int128)1 << 100, 126, QS_ROUND_NEAREST_EVEN), 0);
    ck_assert_int_eq(qs_round_shift(-((__int128)1 << 100), 101, QS_ROUND_NEAREST_AWAY), -1);
}
END_TEST

START_TEST(test_quantize_multiplier)
{
    const struct {
        double m;
        int32_t m0;
        int shift;
    } v[] = {
        {0.25, 1073741824, -1},     {0.5, 1073741824, 0},      {0.75, 1610612736, 0},
        {0.1, 1717986918, -3},      {1.0 / 3, 1431655765, -1}, {0.0072474273, 1992157647, -7},
        {1.5, 1610612736, 1},       {0.9999999999, 1073741824, 1}, /* the 2^31 carry */
        {ldexp(1, -31), 1073741824, -30}, {ldexp(1, -32), 1073741824, -31},
        {ldexp(1, -33), 0, 0}, /* flushed */
        {0.0, 0, 0},
    };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        int32_t m0;
        int sh;
        qs_quantize_multiplier(v[i].m, false, &m0, &sh);
        ck_assert_msg(m0 == v[i].m0 && sh == v[i].shift, "%.17g -> (%d, %d)", v[i].m, m0, sh);
    }
    int32_t m0;
    int sh;
    qs_quantize_multiplier(ldexp(1, 40), true, &m0, &sh);
    ck_assert_int_eq(m0, INT32_MAX);
    ck_assert_int_eq(sh, 30);
    qs_quantize_multiplier(ldexp(1, 40), false, &m0, &sh);
    ck_assert_int_eq(m0, 1073741824);
    ck_assert_int_eq(sh, 41);
}
END_TEST

/* Multiplier 0.25: TFLite double and single rounding, QNNPACK-style float32. */
START_TEST(test_quarter)
{
    qs_requant_t dbl = rq_of("gemmlowp"), sgl = rq_of("requant=fixed-point,rounding=single"),
                 f32 = rq_of("requant=float32"), f64 = rq_of("requant=float64"), sh = rq_of("requant=shift");
    qs_rq_channel_t cd = chan(&dbl, 4.0f), cs = chan(&sgl, 4.0f), cf = chan(&f32, 4.0f), c6 = chan(&f64, 4.0f),
                    ch = chan(&sh, 4.0f);
    ck_assert_int_eq(cd.m0, 1073741824);
    ck_assert_int_eq(cd.shift, -1);
    ck_assert_int_eq(ch.shift, -2);
    const int64_t x[] = {5, -5, 2, -2, 6, -6, 10, -10};
    const int32_t d[] = {2, -1, 1, -1, 2, -2, 3, -3};
    const int32_t s[] = {1, -1, 1, 0, 2, -1, 3, -2};
    const int32_t f[] = {1, -1, 0, 0, 2, -2, 2, -2};
    for (int i = 0; i < 8; i++) {
        ck_assert_msg(qs_requant_apply(&cd, x[i], 0) == d[i], "double %lld", (long long)x[i]);
        ck_assert_msg(qs_requant_apply(&cs, x[i], 0) == s[i], "single %lld", (long long)x[i]);
        ck_assert_msg(qs_requant_apply(&cf, x[i], 0) == f[i], "float32 %lld", (long long)x[i]);
        ck_assert_msg(qs_requant_apply(&c6, x[i], 0) == f[i], "float64 %lld", (long long)x[i]);
        /* shift by 2 with ties up: the same as single rounding here */
        ck_assert_msg(qs_requant_apply(&ch, x[i], 0) == s[i], "shift %lld", (long long)x[i]);
    }
}
END_TEST

/* The realistic multiplier 0.0072474273 = 1992157647·2^-38: single rounding
 * is floor(exact + 1/2) of the effective multiplier everywhere; double
 * rounding lands more than 1/2 away for some x. */
START_TEST(test_realistic)
{
    qs_requant_t dbl = rq_of("gemmlowp"), sgl = rq_of("requant=fixed-point,rounding=single");
    qs_rq_channel_t cd, cs;
    memset(&cd, 0, sizeof cd);
    cd.r = &dbl;
    cd.qmin = INT32_MIN;
    cd.qmax = INT32_MAX;
    qs_quantize_multiplier(0.0072474273, false, &cd.m0, &cd.shift);
    cs = cd;
    cs.r = &sgl;
    ck_assert_int_eq(cd.m0, 1992157647);
    ck_assert_int_eq(cd.shift, -7);
    ck_assert_int_eq(qs_requant_apply(&cd, 3242, 0), 24);
    ck_assert_int_eq(qs_requant_apply(&cs, 3242, 0), 23);
    ck_assert_int_eq(qs_requant_apply(&cd, -96517, 0), -700);
    ck_assert_int_eq(qs_requant_apply(&cs, -96517, 0), -699);
    ck_assert_int_eq(qs_requant_apply(&cd, -99966, 0), -725);
    ck_assert_int_eq(qs_requant_apply(&cs, -99966, 0), -724);
    int differ = 0;
    for (int64_t x = -100000; x <= 100000; x++) {
        __int128 p = (__int128)x * cd.m0; /* exact value p / 2^38 */
        int64_t nearest = (int64_t)((p + ((__int128)1 << 37)) >> 38);
        int32_t ys = qs_requant_apply(&cs, x, 0), yd = qs_requant_apply(&cd, x, 0);
        REQUIRE(ys == nearest);
        differ += yd != ys;
    }
    ck_assert_int_eq(differ, 760);
}
END_TEST

START_TEST(test_extremes)
{
    qs_requant_t dbl = rq_of("gemmlowp"), sgl = rq_of("requant=fixed-point,rounding=single");
    /* 2^-32 keeps shift -31: a right shift of 31 */
    qs_rq_channel_t c = chan(&dbl, 4294967296.0f);
    ck_assert_int_eq(c.shift, -31);
    /* (2^31 - 1)·2^-32 = 0.4999999998: SRDHM gives 2^30, exactly half of 2^31, which rounds away: 1 */
    ck_assert_int_eq(qs_requant_apply(&c, INT32_MAX, 0), 1);
    /* accumulators beyond int32 saturate before the multiply */
    qs_rq_channel_t one = chan(&dbl, 1.0f);
    ck_assert_int_eq(one.shift, 1);
    ck_assert_int_eq(qs_requant_apply(&one, INT64_C(1) << 40, 0), 100000); /* clamped to qmax */
    ck_assert_int_eq(qs_requant_apply(&one, 77, 0), 77);
    ck_assert_int_eq(qs_requant_apply(&one, -77, 0), -77);
    qs_rq_channel_t s1 = chan(&sgl, 1.0f);
    ck_assert_int_eq(qs_requant_apply(&s1, -77, 0), -77);
    /* multiplier > 1 (left shift) */
    qs_rq_channel_t up = chan(&dbl, 0.125f);
    ck_assert_int_eq(qs_requant_apply(&up, -3, 0), -24);
    qs_requant_t sh = rq_of("requant=shift,round=floor");
    qs_rq_channel_t cs = chan(&sh, 0.125f);
    ck_assert_int_eq(cs.shift, 3);
    ck_assert_int_eq(qs_requant_apply(&cs, -3, 0), -24);
    /* zero point and code clamps */
    qs_rq_channel_t z;
    ck_assert_int_eq(qs_requant_channel(&dbl, 1.0f, 1.0f, 4.0f, 10, 0, 255, &z), QS_OK);
    ck_assert_int_eq(qs_requant_apply(&z, 5, 0), 12);
    ck_assert_int_eq(qs_requant_apply(&z, -100, 0), 0);
    ck_assert_int_eq(qs_requant_apply(&z, 10000, 0), 255);
    ck_assert_int_lt(qs_requant_channel(&dbl, 1.0f, 0.0f, 4.0f, 0, 0, 255, &z), 0);
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "positive and finite"));
    ck_assert_int_lt(qs_requant_channel(&dbl, NAN, 1.0f, 4.0f, 0, 0, 255, &z), 0);
}
END_TEST

/* float32 multipliers: QNNPACK's (s_w·s_x)·(1/s_y) against the division;
 * oneDNN's float bias in accumulator units and the zero point added in float. */
START_TEST(test_float_presets)
{
    qs_requant_t q = rq_of("qnnpack"), d = rq_of("requant=float32"), o = rq_of("onednn");
    ck_assert(q.reciprocal && !q.float_bias && !q.zp_before && q.round == QS_ROUND_NEAREST_EVEN);
    ck_assert(o.reciprocal && o.float_bias && o.zp_before);
    const float sx = 0.0123f, sw = 0.00456f, sy = 0.0789f;
    qs_rq_channel_t cq, cd, co;
    ck_assert_int_eq(qs_requant_channel(&q, sx, sw, sy, 3, -128, 127, &cq), QS_OK);
    ck_assert_int_eq(qs_requant_channel(&d, sx, sw, sy, 3, -128, 127, &cd), QS_OK);
    ck_assert_int_eq(qs_requant_channel(&o, sx, sw, sy, 3, -128, 127, &co), QS_OK);
    float sws = sw * sx;
    ck_assert(cq.m32 == sws * (1.0f / sy));
    ck_assert(cd.m32 == (float)((double)sw * sx / sy));
    for (int64_t acc = -200000; acc <= 200000; acc += 37) {
        float v = (float)acc * cq.m32;
        int64_t want = (int64_t)nearbyintf(v) + 3;
        want = want < -128 ? -128 : want > 127 ? 127 : want;
        REQUIRE(qs_requant_apply(&cq, acc, 0) == want);
        float fb = 0.37f;
        float vo = ((float)acc + fb * (1.0f / sws)) * co.m32 + 3.0f;
        int64_t wo = (int64_t)nearbyintf(vo);
        wo = wo < -128 ? -128 : wo > 127 ? 127 : wo;
        REQUIRE(qs_requant_apply(&co, acc, fb) == wo);
    }
    /* ties to even after the float32 product: 0.5 multiplier, 2.5 → 2, 3.5 → 4 */
    qs_rq_channel_t h = chan(&q, 2.0f);
    ck_assert_int_eq(qs_requant_apply(&h, 5, 0), 2);
    ck_assert_int_eq(qs_requant_apply(&h, 7, 0), 4);
    ck_assert_int_eq(qs_requant_apply(&h, -5, 0), -2);
    /* float32 of a large accumulator rounds it first: 2^24 + 1 → 2^24 */
    qs_rq_channel_t one = chan(&d, 1.0f);
    one.qmax = INT32_MAX;
    ck_assert_int_eq(qs_requant_apply(&one, 16777217, 0), 16777216);
}
END_TEST

START_TEST(test_grammar)
{
    char buf[256];
    const char *canon[] = {"requant=float64,round=nearest-even", "requant=gemmlowp", "requant=qnnpack",
                           "requant=onednn", "requant=fixed-point,rounding=single,round=nearest-up",
                           "requant=float32,round=nearest-away,mult=reciprocal,bias=int,out-zp=before",
                           "requant=shift,round=floor"};
    for (size_t i = 0; i < sizeof canon / sizeof *canon; i++) {
        qs_requant_t r = rq_of(canon[i]);
        ck_assert_str_eq(qs_requant_str(&r, buf, sizeof buf), canon[i]);
    }
    qs_requant_t r = rq_of("requant=fixed-point");
    ck_assert_int_eq(r.round, QS_ROUND_NEAREST_AWAY);
    r = rq_of("requant=gemmlowp,rounding=single");
    ck_assert(r.single && r.round == QS_ROUND_NEAREST_UP && r.preset == QS_RQ_CUSTOM);
    r = rq_of("requant=shift");
    ck_assert_int_eq(r.round, QS_ROUND_NEAREST_UP);
    const struct {
        const char *spec, *msg;
    } bad[] = {
        {"requant=int8", "--requant: key 'requant': unknown value 'int8', expected one of: float64, float32, "
                         "fixed-point, shift, gemmlowp, qnnpack, onednn"},
        {"requant=gemmlowp,mult=reciprocal", "key 'mult' applies to requant=float32 only"},
        {"rounding=single", "key 'rounding' applies to requant=fixed-point only"},
        {"round=stochastic", "unknown value 'stochastic'"},
        {"multiplier=2", "unknown key 'multiplier'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        qs_requant_default(&r);
        qs_requant_t before = r;
        ck_assert_int_lt(qs_requant_parse(bad[i].spec, "--requant", &r), 0);
        ck_assert_msg(strstr(qs_last_error(), bad[i].msg), "%s: %s", bad[i].spec, qs_last_error());
        ck_assert_int_eq(memcmp(&r, &before, sizeof r), 0);
    }
}
END_TEST

static Suite *requant_suite(void)
{
    Suite *s = suite_create("requant");
    TCase *tc = tcase_create("requant");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_srdhm);
    tcase_add_test(tc, test_rdbpot);
    tcase_add_test(tc, test_round_shift);
    tcase_add_test(tc, test_quantize_multiplier);
    tcase_add_test(tc, test_quarter);
    tcase_add_test(tc, test_realistic);
    tcase_add_test(tc, test_extremes);
    tcase_add_test(tc, test_float_presets);
    tcase_add_test(tc, test_grammar);
    suite_add_tcase(s, tc);
    return s;
}

QS_TEST_MAIN(requant_suite)
