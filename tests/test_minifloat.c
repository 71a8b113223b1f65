/* tests/test_minifloat.c — minifloat formats: every code of every format of
 * at most 8 bits decoded and encoded back, the largest finite values the
 * specifications give, the special codes of each convention, ties to even
 * at every midpoint, overflow by rule and saturating, subnormals, signed
 * zero, toward-zero and stochastic rounding, and fp32/fp16 against the
 * machine's own conversions. */
#include "quasar.h"
#include "testutil.h"

#include <math.h>
#include <string.h>

static qs_mf_t fmt(const char *name)
{
    qs_mf_t f;
    ck_assert_msg(qs_mf_named(name, &f) == QS_OK, "%s: %s", name, qs_last_error());
    return f;
}

static const char *small[] = {"fp8-e4m3", "fp8-e5m2", "fp8-e4m3fnuz", "fp8-e5m2fnuz", "fp6-e3m2", "fp6-e2m3", "fp4-e2m1"};

START_TEST(test_largest_values)
{
    /* OCP 8-bit FP spec v1.0 (E4M3 448, E5M2 57344), the FNUZ formats (240, 57344), OCP MX v1.0 (FP6 28 and 7.5, FP4 6) */
    static const struct {
        const char *name;
        double max, min_sub;
    } want[] = {
        {"fp8-e4m3", 448, 0x1p-9},     {"fp8-e5m2", 57344, 0x1p-16},     {"fp8-e4m3fnuz", 240, 0x1p-10},
        {"fp8-e5m2fnuz", 57344, 0x1p-17}, {"fp6-e3m2", 28, 0x1p-4},      {"fp6-e2m3", 7.5, 0x1p-3},
        {"fp4-e2m1", 6, 0.5},          {"fp16", 65504, 0x1p-24},         {"bf16", 0x1.fep127, 0x1p-133},
        {"fp32", FLT_MAX, 0x1p-149},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        qs_mf_t f = fmt(want[i].name);
        ck_assert_msg(f.max == want[i].max, "%s: max %.17g", want[i].name, f.max);
        ck_assert_msg(f.min_sub == want[i].min_sub, "%s: min_sub %.17g", want[i].name, f.min_sub);
    }
    qs_mf_t f;
    ck_assert_int_lt(qs_mf_named("fp8-e3m4x", &f), 0);
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "unknown format 'fp8-e3m4x'"));
    ck_assert_int_lt(qs_mf_init(&f, 9, 2, QS_MF_IEEE), 0);
    ck_assert_int_lt(qs_mf_init(&f, 4, 24, QS_MF_IEEE), 0);
    ck_assert_int_lt(qs_mf_init(&f, 1, 2, QS_MF_IEEE), 0);
}
END_TEST

/* Every code: decode, then encode back (NaN codes to the format's NaN). */
START_TEST(test_every_code_round_trips)
{
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
        qs_mf_t f = fmt(small[i]);
        int nans = 0, infs = 0, zeros = 0;
        for (uint32_t c = 0; c < (1u << f.bits); c++) {
            double v = qs_mf_decode(&f, c);
            uint32_t back = qs_mf_encode(&f, v, QS_MF_NEAREST_EVEN, 0, false, NULL);
            if (isnan(v)) {
                nans++;
                REQUIRE_MSG(back == qs_mf_nan(&f), "%s: NaN code 0x%x encodes to 0x%x", small[i], c, back);
                continue;
            }
            infs += isinf(v) != 0;
            zeros += v == 0;
            REQUIRE_MSG(back == c, "%s: code 0x%x (%.17g) encodes back to 0x%x", small[i], c, v, back);
            REQUIRE_MSG(isinf(v) || fabs(v) <= f.max, "%s: code 0x%x above max", small[i], c);
            /* saturating encoding of a finite value is the same code */
            if (!isinf(v))
                REQUIRE(qs_mf_encode(&f, v, QS_MF_NEAREST_EVEN, 0, true, NULL) == c);
        }
        int want_nans = f.conv == QS_MF_IEEE ? 2 * ((1 << f.man_bits) - 1) : f.conv == QS_MF_OCP_FN ? 2 : f.conv == QS_MF_FNUZ ? 1 : 0;
        ck_assert_msg(nans == want_nans, "%s: %d NaN codes, expected %d", small[i], nans, want_nans);
        ck_assert_int_eq(infs, f.conv == QS_MF_IEEE ? 2 : 0);
        ck_assert_int_eq(zeros, f.conv == QS_MF_FNUZ ? 1 : 2); /* +0 and -0, FNUZ has one zero */
    }
    /* the E4M3 and E5M2 codes the OCP specification lists */
    qs_mf_t e4 = fmt("fp8-e4m3"), e5 = fmt("fp8-e5m2"), fz = fmt("fp8-e4m3fnuz");
    ck_assert(qs_mf_decode(&e4, 0x7e) == 448 && qs_mf_decode(&e4, 0xfe) == -448);
    ck_assert(isnan(qs_mf_decode(&e4, 0x7f)) && isnan(qs_mf_decode(&e4, 0xff)));
    ck_assert(qs_mf_decode(&e4, 0x78) == 256); /* S.1111.000 is finite in E4M3 */
    ck_assert(qs_mf_decode(&e4, 0x01) == 0x1p-9 && qs_mf_decode(&e4, 0x08) == 0x1p-6);
    ck_assert(isinf(qs_mf_decode(&e5, 0x7c)) && isnan(qs_mf_decode(&e5, 0x7d)) && qs_mf_decode(&e5, 0x7b) == 57344);
    ck_assert(qs_mf_decode(&e5, 0x01) == 0x1p-16);
    ck_assert(isnan(qs_mf_decode(&fz, 0x80)) && qs_mf_decode(&fz, 0x7f) == 240 && qs_mf_decode(&fz, 0xff) == -240);
}
END_TEST

/* At the midpoint of two neighbours the even code wins; either side of it, the nearer one. */
START_TEST(test_ties_to_even)
{
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
        qs_mf_t f = fmt(small[i]);
        for (uint32_t c = 0; c + 1 < (1u << (f.bits - 1)); c++) {
            double lo = qs_mf_decode(&f, c), hi = qs_mf_decode(&f, c + 1);
            if (!isfinite(lo) || !isfinite(hi))
                continue;
            double mid = (lo + hi) / 2, eps = (hi - lo) / 1024;
            uint32_t even = (c & 1) ? c + 1 : c;
            REQUIRE_MSG(qs_mf_encode(&f, mid, QS_MF_NEAREST_EVEN, 0, false, NULL) == even, "%s: midpoint %.17g",
                        small[i], mid);
            REQUIRE(qs_mf_encode(&f, mid - eps, QS_MF_NEAREST_EVEN, 0, false, NULL) == c);
            REQUIRE(qs_mf_encode(&f, mid + eps, QS_MF_NEAREST_EVEN, 0, false, NULL) == c + 1);
            uint32_t neg = even == 0 && f.conv == QS_MF_FNUZ ? 0 : even | (1u << (f.bits - 1)); /* FNUZ: no -0 */
            REQUIRE(qs_mf_encode(&f, -mid, QS_MF_NEAREST_EVEN, 0, false, NULL) == neg);
            /* toward zero: everything in [lo, hi) goes to lo */
            REQUIRE(qs_mf_encode(&f, hi - eps, QS_MF_TOWARD_ZERO, 0, false, NULL) == c);
        }
    }
}
END_TEST

START_TEST(test_overflow_and_specials)
{
    qs_mf_t e4 = fmt("fp8-e4m3"), e5 = fmt("fp8-e5m2"), fz = fmt("fp8-e4m3fnuz"), f4 = fmt("fp4-e2m1");
    bool ov;
    /* E4M3: 464 is the midpoint of 448 and the missing 480: ties to even keep 448; above it overflows */
    ck_assert(qs_mf_encode(&e4, 464, QS_MF_NEAREST_EVEN, 0, false, &ov) == 0x7e && !ov);
    ck_assert(qs_mf_encode(&e4, 464.5, QS_MF_NEAREST_EVEN, 0, false, &ov) == 0x7f && ov); /* NaN by the rule */
    ck_assert(qs_mf_encode(&e4, 464.5, QS_MF_NEAREST_EVEN, 0, true, &ov) == 0x7e && ov);  /* saturating */
    ck_assert(qs_mf_encode(&e4, -1e9, QS_MF_NEAREST_EVEN, 0, true, NULL) == 0xfe);
    ck_assert(qs_mf_encode(&e4, INFINITY, QS_MF_NEAREST_EVEN, 0, false, NULL) == 0x7f);
    ck_assert(qs_mf_encode(&e4, NAN, QS_MF_NEAREST_EVEN, 0, false, NULL) == 0x7f);
    /* E5M2: 61440 is the midpoint of 57344 (odd mantissa) and 65536: to Inf */
    ck_assert(qs_mf_encode(&e5, 61440, QS_MF_NEAREST_EVEN, 0, false, &ov) == 0x7c && ov);
    ck_assert(qs_mf_encode(&e5, 61439, QS_MF_NEAREST_EVEN, 0, false, &ov) == 0x7b && !ov);
    ck_assert(qs_mf_encode(&e5, -INFINITY, QS_MF_NEAREST_EVEN, 0, false, NULL) == 0xfc);
    ck_assert(qs_mf_encode(&e5, 1e6, QS_MF_NEAREST_EVEN, 0, true, NULL) == 0x7b);
    /* FNUZ: overflow and NaN are 0x80; no negative zero */
    ck_assert(qs_mf_encode(&fz, 1000, QS_MF_NEAREST_EVEN, 0, false, NULL) == 0x80);
    ck_assert(qs_mf_encode(&fz, -0.0, QS_MF_NEAREST_EVEN, 0, false, NULL) == 0x00);
    ck_assert(qs_mf_encode(&fz, -1e-9, QS_MF_NEAREST_EVEN, 0, false, NULL) == 0x00);
    /* finite-only: overflow saturates whatever is asked; NaN has no code: the largest value */
    ck_assert(qs_mf_encode(&f4, 100, QS_MF_NEAREST_EVEN, 0, false, &ov) == 0x7 && ov);
    ck_assert(qs_mf_decode(&f4, qs_mf_encode(&f4, -7, QS_MF_NEAREST_EVEN, 0, false, NULL)) == -6);
    ck_assert(qs_mf_encode(&f4, NAN, QS_MF_NEAREST_EVEN, 0, false, NULL) == 0x7);
    /* signed zero and subnormals */
    ck_assert(qs_mf_encode(&e4, -0.0, QS_MF_NEAREST_EVEN, 0, false, NULL) == 0x80);
    ck_assert(qs_mf_encode(&e4, -0x1p-11, QS_MF_NEAREST_EVEN, 0, false, NULL) == 0x80); /* rounds to -0 */
    ck_assert(qs_mf_encode(&e4, 0x1p-10, QS_MF_NEAREST_EVEN, 0, false, NULL) == 0x00);  /* half the smallest: to even 0 */
    ck_assert(qs_mf_encode(&e4, 0x1.8p-9, QS_MF_NEAREST_EVEN, 0, false, NULL) == 0x02); /* 1.5 quanta: to even 2 */
    ck_assert(qs_mf_encode(&e4, 447, QS_MF_TOWARD_ZERO, 0, false, NULL) == 0x7d);        /* 416 */
    /* FP4 E2M1 values: 0, 0.5, 1, 1.5, 2, 3, 4, 6 */
    static const double v4[] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
    for (uint32_t c = 0; c < 8; c++)
        ck_assert(qs_mf_decode(&f4, c) == v4[c] && qs_mf_decode(&f4, c | 8) == -v4[c]);
}
END_TEST

START_TEST(test_stochastic)
{
    qs_mf_t e4 = fmt("fp8-e4m3");
    /* 1.03125 lies a quarter of the way from 1 to 1.125: over a uniform grid of u, a quarter round up */
    int up = 0;
    for (int k = 0; k < 1024; k++) {
        double r = qs_mf_round(&e4, 1.03125, QS_MF_STOCHASTIC, (k + 0.5) / 1024, false);
        ck_assert(r == 1.0 || r == 1.125);
        up += r == 1.125;
    }
    ck_assert_int_eq(up, 256);
    /* a representable value never moves */
    for (int k = 0; k < 16; k++)
        ck_assert(qs_mf_round(&e4, 1.125, QS_MF_STOCHASTIC, k / 16.0, false) == 1.125);
}
END_TEST

/* fp32 against the machine's double -> float conversion and fp16 against its double -> _Float16
 * conversion (round to nearest even, overflow to Inf, subnormals); bf16 against the integer
 * round-to-nearest-even of a float's top 16 bits. */
START_TEST(test_against_hardware)
{
    qs_mf_t f32 = fmt("fp32"), f16 = fmt("fp16"), b16 = fmt("bf16");
    for (uint64_t i = 0; i < 200000; i++) {
        double u = qs_rng_uniform(11, 1, i), s = qs_rng_uniform(11, 2, i);
        double x = ldexp(u + 0.5, (int)(s * 300) - 160) * (i & 1 ? -1 : 1);
        float h = (float)x;
        double r = qs_mf_round(&f32, x, QS_MF_NEAREST_EVEN, 0, false);
        REQUIRE_MSG(r == (double)h || (isinf(r) && isinf(h)), "fp32: %.17g -> %.17g, hardware %.9g", x, r, h);
        uint32_t bits;
        memcpy(&bits, &h, 4);
        if (isfinite(h))
            REQUIRE_MSG(qs_mf_encode(&f32, x, QS_MF_NEAREST_EVEN, 0, false, NULL) == bits, "fp32 code of %.17g", x);
        double y = ldexp(u + 0.5, (int)(s * 44) - 28) * (i & 2 ? -1 : 1);
        _Float16 yh = (_Float16)y;
        double ry = qs_mf_round(&f16, y, QS_MF_NEAREST_EVEN, 0, false);
        REQUIRE_MSG(ry == (double)yh || (isinf(ry) && isinf((double)yh)), "fp16: %.17g -> %.17g, hardware %.17g", y,
                    ry, (double)yh);
        REQUIRE(qs_minifloat_round(y, 5, 10) == ry || (isinf(ry) && isinf(qs_minifloat_round(y, 5, 10))));
        float z = (float)ldexp(u + 0.5, (int)(s * 250) - 125);
        uint32_t zb;
        memcpy(&zb, &z, 4);
        zb = (zb + 0x7fffu + ((zb >> 16) & 1u)) & 0xffff0000u; /* finite, far from overflow */
        float zr;
        memcpy(&zr, &zb, 4);
        REQUIRE_MSG(qs_mf_round(&b16, z, QS_MF_NEAREST_EVEN, 0, false) == (double)zr, "bf16: %.9g", z);
    }
}
END_TEST

static Suite *mf_suite(void)
{
    Suite *s = suite_create("minifloat");
    TCase *tc = tcase_create("minifloat");
    tcase_add_test(tc, test_largest_values);
    tcase_add_test(tc, test_every_code_round_trips);
    tcase_add_test(tc, test_ties_to_even);
    tcase_add_test(tc, test_overflow_and_specials);
    tcase_add_test(tc, test_stochastic);
    tcase_add_test(tc, test_against_hardware);
    suite_add_tcase(s, tc);
    return s;
}

QS_TEST_MAIN(mf_suite)
