/* tests/test_round.c — the rounding modes (quant/round.c): truth tables on
 * ties and non-ties, the tie table of the reference notes, signed zeros,
 * large values, NaN, round-to-odd, and stochastic rounding (exact
 * thresholds, bias with few random bits, unbiasedness, determinism). */
#include "tests/testutil.h"

#include "quant/quant.h"

#include <math.h>
#include <string.h>

#define NV 12
static const double vals[NV] = {-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -1.75, -1.25, 1.25, 1.75, -2.0, 3.0};

/* Expected results, worked out by hand from the definitions. */
static const struct {
    qs_round_mode_t mode;
    double r[NV];
} truth[] = {
    {QS_ROUND_NEAREST_EVEN, {-2, -2, -0.0, 0, 2, 2, -2, -1, 1, 2, -2, 3}},
    {QS_ROUND_NEAREST_AWAY, {-3, -2, -1, 1, 2, 3, -2, -1, 1, 2, -2, 3}},
    {QS_ROUND_NEAREST_UP, {-2, -1, -0.0, 1, 2, 3, -2, -1, 1, 2, -2, 3}},
    {QS_ROUND_NEAREST_DOWN, {-3, -2, -1, 0, 1, 2, -2, -1, 1, 2, -2, 3}},
    {QS_ROUND_NEAREST_ZERO, {-2, -1, -0.0, 0, 1, 2, -2, -1, 1, 2, -2, 3}},
    {QS_ROUND_FLOOR, {-3, -2, -1, 0, 1, 2, -2, -2, 1, 1, -2, 3}},
    {QS_ROUND_CEIL, {-2, -1, -0.0, 1, 2, 3, -1, -1, 2, 2, -2, 3}},
    {QS_ROUND_TOWARD_ZERO, {-2, -1, -0.0, 0, 1, 2, -1, -1, 1, 1, -2, 3}},
    {QS_ROUND_AWAY_FROM_ZERO, {-3, -2, -1, 1, 2, 3, -2, -2, 2, 2, -2, 3}},
    {QS_ROUND_ODD, {-3, -1, -1, 1, 1, 3, -1, -1, 1, 1, -2, 3}},
};

/* Same value and same sign bit (so -0.0 != +0.0). */
static int same(double a, double b) { return a == b && signbit(a) == signbit(b); }

START_TEST(test_names)
{
    static const char *const names[] = {"nearest-even", "nearest-away", "nearest-up",     "nearest-down",
                                        "nearest-zero", "floor",        "ceil",           "toward-zero",
                                        "away-from-zero", "odd",        "stochastic"};
    for (int m = 0; m < QS_ROUND_COUNT; m++)
        ck_assert_str_eq(qs_round_name((qs_round_mode_t)m), names[m]);
    ck_assert_str_eq(qs_round_name(QS_ROUND_COUNT), "unknown");
    ck_assert_str_eq(qs_round_name((qs_round_mode_t)-1), "unknown");
}
END_TEST

START_TEST(test_truth_table)
{
    for (size_t t = 0; t < sizeof truth / sizeof *truth; t++)
        for (int i = 0; i < NV; i++) {
            double r = qs_round_det(vals[i], truth[t].mode);
            REQUIRE_MSG(same(r, truth[t].r[i]), "%s(%g) = %g, expected %g", qs_round_name(truth[t].mode),
                          vals[i], r, truth[t].r[i]);
        }
}
END_TEST

/* bit-accurate-arithmetic.md §1.2: one row per tie rule, columns
 * -2.5 -1.5 -0.5 0.5 1.5 2.5 -1.25 1.75 */
START_TEST(test_reference_tie_table)
{
    static const double cols[8] = {-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -1.25, 1.75};
    static const struct {
        qs_round_mode_t mode;
        double r[8];
    } rows[] = {
        {QS_ROUND_NEAREST_EVEN, {-2, -2, 0, 0, 2, 2, -1, 2}},   /* RNE: torch.round, nearbyint */
        {QS_ROUND_NEAREST_UP, {-2, -1, 0, 1, 2, 3, -1, 2}},     /* half-up: gemmlowp SRDHM, AP_RND */
        {QS_ROUND_NEAREST_AWAY, {-3, -2, -1, 1, 2, 3, -1, 2}},  /* half-away: std::round, RDBPOT */
        {QS_ROUND_NEAREST_ZERO, {-2, -1, 0, 0, 1, 2, -1, 2}},   /* AP_RND_ZERO */
        {QS_ROUND_NEAREST_DOWN, {-3, -2, -1, 0, 1, 2, -1, 2}},  /* AP_RND_MIN_INF */
        {QS_ROUND_FLOOR, {-3, -2, -1, 0, 1, 2, -2, 1}},         /* AP_TRN, arithmetic shift */
        {QS_ROUND_TOWARD_ZERO, {-2, -1, 0, 0, 1, 2, -1, 1}},    /* AP_TRN_ZERO */
        {QS_ROUND_CEIL, {-2, -1, 0, 1, 2, 3, -1, 2}},           /* Brevitas CEIL */
    };
    for (size_t t = 0; t < sizeof rows / sizeof *rows; t++)
        for (int i = 0; i < 8; i++)
            REQUIRE_MSG(qs_round_det(cols[i], rows[t].mode) == rows[t].r[i], "%s(%g)", qs_round_name(rows[t].mode),
                          cols[i]);
}
END_TEST

START_TEST(test_signed_zero)
{
    for (int m = 0; m < QS_ROUND_STOCHASTIC; m++) {
        REQUIRE(same(qs_round_det(-0.0, (qs_round_mode_t)m), -0.0));
        REQUIRE(same(qs_round_det(0.0, (qs_round_mode_t)m), 0.0));
    }
    REQUIRE(same(qs_round_det(-0.3, QS_ROUND_NEAREST_EVEN), -0.0));
    REQUIRE(same(qs_round_det(0.3, QS_ROUND_NEAREST_EVEN), 0.0));
    REQUIRE(same(qs_round_det(-0.7, QS_ROUND_TOWARD_ZERO), -0.0));
    REQUIRE(same(qs_round_det(-0.3, QS_ROUND_CEIL), -0.0));
    REQUIRE(same(qs_round_det(0.3, QS_ROUND_FLOOR), 0.0));
    REQUIRE(same(qs_round_det(-0.3, QS_ROUND_FLOOR), -1.0));
    REQUIRE(same(qs_round_det(-1e-300, QS_ROUND_NEAREST_DOWN), -0.0));
    REQUIRE(same(qs_round_det(-1e-300, QS_ROUND_ODD), -1.0));
    REQUIRE(same(qs_round_det(1e-300, QS_ROUND_AWAY_FROM_ZERO), 1.0));
    REQUIRE(same(qs_round_det(1e-300, QS_ROUND_CEIL), 1.0));
}
END_TEST

START_TEST(test_large_and_special)
{
    const double t51 = 0x1p51;
    /* 2^51 + 0.5 is a representable tie; 2^52 + 0.5 is not */
    static const struct {
        qs_round_mode_t mode;
        double pos, neg; /* offsets from ±2^51 for ±(2^51 + 0.5) */
    } tie[] = {
        {QS_ROUND_NEAREST_EVEN, 0, 0},   {QS_ROUND_NEAREST_AWAY, 1, -1}, {QS_ROUND_NEAREST_UP, 1, 0},
        {QS_ROUND_NEAREST_DOWN, 0, -1},  {QS_ROUND_NEAREST_ZERO, 0, 0},  {QS_ROUND_FLOOR, 0, -1},
        {QS_ROUND_CEIL, 1, 0},           {QS_ROUND_TOWARD_ZERO, 0, 0},   {QS_ROUND_AWAY_FROM_ZERO, 1, -1},
        {QS_ROUND_ODD, 1, -1},
    };
    for (size_t t = 0; t < sizeof tie / sizeof *tie; t++) {
        REQUIRE(qs_round_det(t51 + 0.5, tie[t].mode) == t51 + tie[t].pos);
        REQUIRE(qs_round_det(-(t51 + 0.5), tie[t].mode) == -t51 + tie[t].neg);
    }
    REQUIRE(qs_round_det(t51 + 1.5, QS_ROUND_NEAREST_EVEN) == t51 + 2);
    REQUIRE(qs_round_det(t51 + 1.5, QS_ROUND_ODD) == t51 + 1);
    for (int m = 0; m < QS_ROUND_STOCHASTIC; m++) {
        qs_round_mode_t md = (qs_round_mode_t)m;
        REQUIRE(qs_round_det(0x1p53, md) == 0x1p53);
        REQUIRE(qs_round_det(0x1p52 + 1, md) == 0x1p52 + 1);
        REQUIRE(qs_round_det(1e300, md) == 1e300);
        REQUIRE(qs_round_det(-1e300, md) == -1e300);
        REQUIRE(qs_round_det(INFINITY, md) == INFINITY);
        REQUIRE(qs_round_det(-INFINITY, md) == -INFINITY);
        REQUIRE(isnan(qs_round_det(NAN, md)));
    }
    REQUIRE(isnan(qs_round_stoch(NAN, 0, 32)));
    REQUIRE(qs_round_stoch(1e300, 0, 32) == 1e300);
    REQUIRE(qs_round_stoch(-INFINITY, 0, 32) == -INFINITY);
}
END_TEST

/* Ties decided by exact comparisons, not by v - floor(v), which is inexact
 * for tiny negative v. */
START_TEST(test_near_ties)
{
    double below = nextafter(0.5, 0.0); /* 0.49999999999999994 */
    REQUIRE(qs_round_det(below, QS_ROUND_NEAREST_AWAY) == 0.0); /* floor(x + 0.5) would give 1 */
    REQUIRE(qs_round_det(below, QS_ROUND_NEAREST_UP) == 0.0);
    double v = -0.5 + 0x1p-54; /* 1 + v rounds to exactly 0.5 in double */
    REQUIRE(same(qs_round_det(v, QS_ROUND_NEAREST_DOWN), -0.0));
    REQUIRE(same(qs_round_det(v, QS_ROUND_NEAREST_ZERO), -0.0));
    REQUIRE(same(qs_round_det(v, QS_ROUND_NEAREST_AWAY), -0.0));
    REQUIRE(qs_round_det(-0.5 - 0x1p-53, QS_ROUND_NEAREST_UP) == -1.0);
    REQUIRE(qs_round_det(2.5 + 0x1p-51, QS_ROUND_NEAREST_EVEN) == 3.0);
    REQUIRE(qs_round_det(2.5 - 0x1p-51, QS_ROUND_NEAREST_AWAY) == 2.0);
}
END_TEST

START_TEST(test_odd)
{
    /* the odd neighbour when inexact, the value itself when exact */
    static const double in[] = {0.1, 0.9, 1.1, 1.9, 2.1, 2.9, 4.0, 5.0, -0.1, -2.1, -2.9, -3.5, -4.0};
    static const double out[] = {1, 1, 1, 1, 3, 3, 4, 5, -1, -3, -3, -3, -4};
    for (size_t i = 0; i < sizeof in / sizeof *in; i++)
        REQUIRE_MSG(qs_round_det(in[i], QS_ROUND_ODD) == out[i], "odd(%g)", in[i]);
    /* why it exists: rounding to odd on a grid 4 times finer, then to nearest
     * even, equals one rounding to nearest even (no double-rounding error) */
    for (int i = -400; i <= 400; i++)
        for (int k = -2; k <= 2; k++) {
            double x = i / 16.0 + k * 1e-9;
            double twice = qs_round_det(qs_round_det(4 * x, QS_ROUND_ODD) / 4, QS_ROUND_NEAREST_EVEN);
            REQUIRE_MSG(twice == qs_round_det(x, QS_ROUND_NEAREST_EVEN), "x = %.12g", x);
        }
    /* while nearest-even twice gets 2.5 + 1e-9 wrong */
    double x = 2.5 + 1e-9;
    REQUIRE(qs_round_det(qs_round_det(4 * x, QS_ROUND_NEAREST_EVEN) / 4, QS_ROUND_NEAREST_EVEN) == 2.0);
    REQUIRE(qs_round_det(x, QS_ROUND_NEAREST_EVEN) == 3.0);
}
END_TEST

START_TEST(test_stochastic_mode_in_det)
{
    /* stochastic is not deterministic: qs_round_det documents nearest-even for it */
    REQUIRE(qs_round_det(2.5, QS_ROUND_STOCHASTIC) == 2.0);
    REQUIRE(qs_round_det(3.5, QS_ROUND_STOCHASTIC) == 4.0);
}
END_TEST

/* ---- stochastic ----------------------------------------------------------------------- */

START_TEST(test_stoch_thresholds)
{
    /* up iff (r >> (32 - k)) < floor(frac·2^k) */
    const double t = 2.3125; /* 2 + 5/16 */
    /* k = 2: floor(0.3125·4) = 1: only the top-bits value 0 goes up */
    for (uint32_t top = 0; top < 4; top++) {
        uint32_t r = top << 30 | 0x2fffffffu >> 2;
        REQUIRE(qs_round_stoch(t, r, 2) == (top < 1 ? 3.0 : 2.0));
    }
    /* k = 4: floor(0.3125·16) = 5 */
    for (uint32_t top = 0; top < 16; top++)
        REQUIRE(qs_round_stoch(t, top << 28, 4) == (top < 5 ? 3.0 : 2.0));
    /* k = 32, frac = 5·2^-32 */
    const double v = 7.0 + 5 * 0x1p-32;
    REQUIRE(qs_round_stoch(v, 4, 32) == 8.0);
    REQUIRE(qs_round_stoch(v, 5, 32) == 7.0);
    REQUIRE(qs_round_stoch(v, 0xffffffffu, 32) == 7.0);
    /* integers never move */
    REQUIRE(qs_round_stoch(3.0, 0, 32) == 3.0);
    REQUIRE(qs_round_stoch(-3.0, 0, 1) == -3.0);
    /* negative values: -0.75 has frac 0.25 */
    REQUIRE(same(qs_round_stoch(-0.75, 0, 2), -0.0));
    REQUIRE(qs_round_stoch(-0.75, 1u << 30, 2) == -1.0);
    REQUIRE(qs_round_stoch(-1.75, 0, 2) == -1.0);
    REQUIRE(qs_round_stoch(-1.75, 1u << 30, 2) == -2.0);
    /* tiny negative: frac = 1 - 1e-30, floor(frac·2^32) = 2^32 - 1 exactly
     * (1 + v in double would be 1.0 and send every word up) */
    REQUIRE(same(qs_round_stoch(-1e-30, 0xfffffffeu, 32), -0.0));
    REQUIRE(qs_round_stoch(-1e-30, 0xffffffffu, 32) == -1.0);
    /* tiny positive: frac·2^32 < 1, never up */
    REQUIRE(qs_round_stoch(1e-30, 0, 32) == 0.0);
}
END_TEST

START_TEST(test_stoch_few_bits_bias)
{
    /* bit-accurate-arithmetic.md §2.9: t = 2.3125 with 4 bits has P(up) = 5/16,
     * with 2 bits P(up) = 1/4, E = 2.25. Exact means over all 2^k top-bit values: */
    double sum4 = 0, sum2 = 0;
    for (uint32_t top = 0; top < 16; top++)
        sum4 += qs_round_stoch(2.3125, top << 28 | 0x0abcdefu, 4);
    for (uint32_t top = 0; top < 4; top++)
        sum2 += qs_round_stoch(2.3125, top << 30 | 0x1234567u, 2);
    REQUIRE(sum4 / 16 == 2.3125);
    REQUIRE(sum2 / 4 == 2.25);
    /* and over 10^5 Philox words through qs_round: the mean is 2.25 within
     * 5 sigma (sigma of the mean = sqrt(p(1-p)/n) = 0.00137), 2.3125 is 45 sigma away */
    qs_rounding_t r = {QS_ROUND_STOCHASTIC, 99, 2, 0};
    const int n = 100000;
    double s = 0;
    for (int i = 0; i < n; i++)
        s += qs_round(&r, 2.3125, (uint64_t)i);
    double sigma = sqrt(0.25 * 0.75 / n);
    REQUIRE_MSG(fabs(s / n - 2.25) < 5 * sigma, "mean %.6f", s / n);
}
END_TEST

START_TEST(test_stoch_unbiased)
{
    /* 10^6 draws of SR(2.3) and SR(-2.3) with all 32 bits: the mean is within
     * 5 sigma of the value, sigma = sqrt(0.3·0.7/10^6) = 4.58e-4 (the
     * remaining bias, below 2^-32, is far smaller). */
    qs_rounding_t r = {QS_ROUND_STOCHASTIC, 42, 32, 7};
    const int n = 1000000;
    double sp = 0, sn = 0;
    for (int i = 0; i < n; i++) {
        double a = qs_round(&r, 2.3, (uint64_t)i), b = qs_round(&r, -2.3, (uint64_t)i);
        REQUIRE(a == 2.0 || a == 3.0);
        REQUIRE(b == -2.0 || b == -3.0);
        sp += a;
        sn += b;
    }
    double sigma = sqrt(0.3 * 0.7 / n);
    REQUIRE_MSG(fabs(sp / n - 2.3) < 5 * sigma, "mean %.6f", sp / n);
    REQUIRE_MSG(fabs(sn / n + 2.3) < 5 * sigma, "mean %.6f", sn / n);
}
END_TEST

START_TEST(test_stoch_determinism)
{
    qs_rounding_t a = {QS_ROUND_STOCHASTIC, 1, 32, 0}, b = a, c = a, d = a;
    c.seed = 2;
    d.stream = 1;
    int diff_seed = 0, diff_stream = 0;
    for (uint64_t i = 0; i < 256; i++) {
        double v = 0.5 + (double)i / 512.0;
        REQUIRE(qs_round(&a, v, i) == qs_round(&b, v, i));
        /* the word is qs_rng_u32(seed, stream, index) */
        REQUIRE(qs_round(&a, v, i) == qs_round_stoch(v, qs_rng_u32(1, 0, i), 32));
        diff_seed += qs_round(&a, v, i) != qs_round(&c, v, i);
        diff_stream += qs_round(&a, v, i) != qs_round(&d, v, i);
    }
    ck_assert_int_gt(diff_seed, 0);
    ck_assert_int_gt(diff_stream, 0);
    /* deterministic modes ignore seed and index */
    qs_rounding_t e = {QS_ROUND_NEAREST_AWAY, 5, 32, 0};
    REQUIRE(qs_round(&e, 2.5, 12345) == 3.0);
}
END_TEST

static Suite *mk(void)
{
    Suite *s = suite_create("round");
    TCase *tc = tcase_create("det");
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_truth_table);
    tcase_add_test(tc, test_reference_tie_table);
    tcase_add_test(tc, test_signed_zero);
    tcase_add_test(tc, test_large_and_special);
    tcase_add_test(tc, test_near_ties);
    tcase_add_test(tc, test_odd);
    tcase_add_test(tc, test_stochastic_mode_in_det);
    suite_add_tcase(s, tc);
    tc = tcase_create("stochastic");
    tcase_add_test(tc, test_stoch_thresholds);
    tcase_add_test(tc, test_stoch_few_bits_bias);
    tcase_add_test(tc, test_stoch_unbiased);
    tcase_add_test(tc, test_stoch_determinism);
    suite_add_tcase(s, tc);
    return s;
}
QS_TEST_MAIN(mk)
