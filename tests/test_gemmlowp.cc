// tests/test_gemmlowp.cc — the `gemmlowp` requantization preset against the
// real gemmlowp fixed-point functions (Debian's libgemmlowp-dev headers):
// SaturatingRoundingDoublingHighMul, RoundingDivideByPOT, and TFLite's
// reference MultiplyByQuantizedMultiplier written from them, on many random
// inputs and on the edges of int32.
#include <gemmlowp/fixedpoint/fixedpoint.h>

#include <cmath>
#include <cstdint>

extern "C" {
#include "quant/quant.h"
#include "tests/testutil.h"
}

static std::uint64_t lcg(std::uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 16;
}

static const std::int32_t edges[] = {INT32_MIN, INT32_MIN + 1, -(1 << 30), -65536, -3, -2, -1, 0,
                                     1, 2, 3, 65535, 1 << 30, INT32_MAX - 1, INT32_MAX};

START_TEST(test_primitives)
{
    std::uint64_t s = 1;
    for (std::int32_t a : edges)
        for (std::int32_t b : edges)
            REQUIRE_MSG(qs_srdhm(a, b) == gemmlowp::SaturatingRoundingDoublingHighMul(a, b), "SRDHM(%d, %d)", a,
                        b);
    for (int i = 0; i < 2000000; i++) {
        std::int32_t a = (std::int32_t)lcg(&s), b = (std::int32_t)lcg(&s);
        if (i & 1) /* small values too, where ties are common */
            a >>= (int)(lcg(&s) % 31);
        REQUIRE_MSG(qs_srdhm(a, b) == gemmlowp::SaturatingRoundingDoublingHighMul(a, b), "SRDHM(%d, %d)", a, b);
        int e = (int)(lcg(&s) % 32);
        REQUIRE_MSG(qs_rdbpot(a, e) == gemmlowp::RoundingDivideByPOT(a, e), "RDBPOT(%d, %d)", a, e);
    }
    for (std::int32_t a : edges)
        for (int e = 0; e < 32; e++)
            REQUIRE_MSG(qs_rdbpot(a, e) == gemmlowp::RoundingDivideByPOT(a, e), "RDBPOT(%d, %d)", a, e);
}
END_TEST

// TFLite's reference (tensorflow/lite/kernels/internal/common.h, the default
// double-rounding build), from gemmlowp's functions.
static std::int32_t tflite_mbqm(std::int32_t x, std::int32_t m, int shift)
{
    int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    return gemmlowp::RoundingDivideByPOT(
        gemmlowp::SaturatingRoundingDoublingHighMul(x * (1 << left), m), right);
}

START_TEST(test_preset)
{
    qs_requant_t r;
    qs_requant_default(&r);
    ck_assert_int_eq(qs_requant_parse("requant=gemmlowp", "test", &r), QS_OK);
    std::uint64_t s = 2;
    long checked = 0;
    for (int t = 0; t < 2000; t++) {
        /* scales as calibration produces them: float32, multiplier mostly below 1 */
        float sx = (float)std::ldexp(1.0 + (double)(lcg(&s) % 1000000) / 1e6, -(int)(lcg(&s) % 12));
        float sw = (float)std::ldexp(1.0 + (double)(lcg(&s) % 1000000) / 1e6, -(int)(lcg(&s) % 12));
        float sy = (float)std::ldexp(1.0 + (double)(lcg(&s) % 1000000) / 1e6, -(int)(lcg(&s) % 8));
        std::int32_t zp = (std::int32_t)(lcg(&s) % 256) - 128;
        qs_rq_channel_t c;
        ck_assert_int_eq(qs_requant_channel(&r, sx, sw, sy, zp, -128, 127, &c), QS_OK);
        if (c.shift > 0 && c.shift > 20)
            continue;
        for (int i = 0; i < 500; i++) {
            std::int32_t acc = (std::int32_t)lcg(&s) >> (int)(lcg(&s) % 32);
            if (c.shift > 0) /* TFLite's x·2^left must not overflow int32 */
                acc >>= c.shift;
            std::int64_t want = (std::int64_t)tflite_mbqm(acc, c.m0, c.shift) + zp;
            want = want < -128 ? -128 : want > 127 ? 127 : want;
            REQUIRE_MSG(qs_requant_apply(&c, acc, 0) == want, "acc %d, M0 %d, shift %d", acc, c.m0, c.shift);
            checked++;
        }
    }
    ck_assert_int_gt(checked, 500000);
}
END_TEST

static Suite *gemmlowp_suite(void)
{
    Suite *s = suite_create("gemmlowp");
    TCase *tc = tcase_create("gemmlowp");
    tcase_add_test(tc, test_primitives);
    tcase_add_test(tc, test_preset);
    suite_add_tcase(s, tc);
    return s;
}

QS_TEST_MAIN(gemmlowp_suite)
