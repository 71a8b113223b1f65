/* tests/test_acc.c — accumulator models: hand-computed sequences where wrap
 * and saturate differ, chunked (pair-wise) accumulation, both zero-point
 * forms, float accumulators, the grammar and the guaranteed widths. The
 * vectors are those of docs/arithmetic.md "Accumulators". */
#include "quant/quant.h"
#include "tests/testutil.h"

#include <math.h>
#include <string.h>

static qs_acc_t acc_of(const char *spec)
{
    qs_acc_t a;
    qs_acc_default(&a);
    ck_assert_int_eq(qs_acc_parse(spec, "test", &a), QS_OK);
    return a;
}

static int64_t sum_of(const char *spec, const int64_t *t, int n, int64_t *events)
{
    qs_acc_t a = acc_of(spec);
    qs_acc_result_t r;
    qs_acc_sum(&a, t, n, &r);
    if (events)
        *events = r.events;
    return r.value;
}

START_TEST(test_int16_order)
{
    const int64_t t[] = {30000, 30000, -30000}, rev[] = {-30000, 30000, 30000};
    int64_t ev;
    ck_assert_int_eq(sum_of("acc=int16,overflow=exact", t, 3, &ev), 30000);
    ck_assert_int_eq(ev, 0);
    ck_assert_int_eq(sum_of("acc=int16,overflow=wrap", t, 3, &ev), 30000);
    ck_assert_int_eq(ev, 2); /* 60000 leaves int16, and so does coming back from -5536 - 30000 */
    ck_assert_int_eq(sum_of("acc=int16,overflow=saturate", t, 3, &ev), 2767);
    ck_assert_int_eq(ev, 1);
    ck_assert_int_eq(sum_of("acc=int16,overflow=saturate", rev, 3, &ev), 30000);
    ck_assert_int_eq(ev, 0);
    ck_assert_int_eq(sum_of("acc=int16,overflow=wrap", rev, 3, NULL), 30000);
    qs_acc_t a = acc_of("int16");
    qs_acc_result_t r;
    qs_acc_sum(&a, t, 3, &r);
    ck_assert_int_eq(r.max_abs, 60000);
    ck_assert_int_eq(r.exact, 30000);
    ck_assert_int_eq(qs_acc_bits_for(r.max_abs), 17);
}
END_TEST

START_TEST(test_dot_127)
{
    const int32_t x[] = {127, 127, 127, 127}, w[] = {127, 127, 127, 127};
    const char *spec[] = {"acc=int16,overflow=exact", "acc=int16,overflow=wrap", "acc=int16,overflow=saturate"};
    const int64_t want[] = {64516, -1020, 32767};
    for (int i = 0; i < 3; i++) {
        qs_acc_t a = acc_of(spec[i]);
        qs_acc_result_t r;
        qs_acc_dot(&a, x, 1, w, 1, 4, 0, 0, 0, &r);
        ck_assert_int_eq(r.value, want[i]);
        ck_assert_int_eq(r.exact, 64516);
    }
}
END_TEST

/* x86 vpmaddubsw: u8·s8 products summed in pairs with int16 saturation. */
START_TEST(test_pairwise)
{
    qs_acc_t a = acc_of("acc=int32,chunk=2,chunk-acc=int16,chunk-overflow=saturate");
    qs_acc_result_t r;
    const int32_t x1[] = {211, 171}, w1[] = {71, 107};
    qs_acc_dot(&a, x1, 1, w1, 1, 2, 0, 0, 0, &r);
    ck_assert_int_eq(r.value, 32767);
    ck_assert_int_eq(r.exact, 33278);
    ck_assert_int_eq(r.events, 1);
    const int32_t x2[] = {255, 255}, w2[] = {127, 127};
    qs_acc_dot(&a, x2, 1, w2, 1, 2, 0, 0, 0, &r);
    ck_assert_int_eq(r.value, 32767);
    /* s8·s8 as (x + 128)·w - 128·Σw (oneDNN's example): 255 instead of 32258 */
    a.zp_form = QS_ZP_EXPAND;
    const int32_t x3[] = {255, 255, 128, 128}, w3[] = {127, 127, 0, 0};
    qs_acc_dot(&a, x3, 1, w3, 1, 4, 128, 0, 0, &r);
    ck_assert_int_eq(r.value, 255);
    ck_assert_int_eq(r.exact, 32258);
    /* the subtract form never forms 255·127 */
    a.zp_form = QS_ZP_SUBTRACT;
    qs_acc_dot(&a, x3, 1, w3, 1, 4, 128, 0, 0, &r);
    ck_assert_int_eq(r.value, 32258);
    ck_assert_int_eq(r.events, 0);
    /* reduce-range (7-bit activations) keeps the worst pair inside int16 */
    const int32_t x4[] = {127, 127}, w4[] = {-128, -128};
    qs_acc_dot(&a, x4, 1, w4, 1, 2, 0, 0, 0, &r);
    ck_assert_int_eq(r.value, -32512);
    ck_assert_int_eq(r.events, 0);
}
END_TEST

/* Both zero-point forms in a narrow register: wrap agrees with the exact sum
 * whenever it fits (modular arithmetic), saturate does not. */
START_TEST(test_zp_forms)
{
    const int32_t x[] = {255, 255}, w[] = {127, 127};
    const struct {
        const char *spec;
        int64_t want;
    } c[] = {
        {"acc=int16,overflow=saturate,zp-form=subtract", 32258},
        {"acc=int16,overflow=saturate,zp-form=expand", 255},
        {"acc=int16,overflow=wrap,zp-form=expand", 32258},
        {"acc=int16,overflow=exact,zp-form=expand", 32258},
    };
    for (int i = 0; i < 4; i++) {
        qs_acc_t a = acc_of(c[i].spec);
        qs_acc_result_t r;
        qs_acc_dot(&a, x, 1, w, 1, 2, 128, 0, 0, &r);
        ck_assert_msg(r.value == c[i].want, "%s: %lld", c[i].spec, (long long)r.value);
    }
    /* with weight zero point too: Σxw - zw·Σx - zx·Σw + K·zx·zw + bias */
    qs_acc_t e = acc_of("acc=exact,zp-form=expand"), s = acc_of("acc=exact");
    const int32_t x2[] = {3, 9, 0}, w2[] = {1, 250, 7};
    qs_acc_result_t re, rs;
    qs_acc_dot(&e, x2, 1, w2, 1, 3, 5, 128, -17, &re);
    qs_acc_dot(&s, x2, 1, w2, 1, 3, 5, 128, -17, &rs);
    ck_assert_int_eq(rs.value, (3 - 5) * (1 - 128) + (9 - 5) * (250 - 128) + (0 - 5) * (7 - 128) - 17);
    ck_assert_int_eq(re.value, rs.value);
    /* the expand form's partial sums are larger: Σxw = 3 + 2250 = 2253, then -128·12 */
    ck_assert_int_eq(re.max_abs, 2253);
}
END_TEST

/* Wrap is order-independent and equals the exact sum modulo 2^W; a chunk
 * register as wide as the outer one changes nothing; exact and expand agree. */
START_TEST(test_properties)
{
    uint64_t s = 12345;
    for (int trial = 0; trial < 2000; trial++) {
        int32_t x[64], w[64];
        int n = 1 + (int)(trial % 64);
        for (int k = 0; k < n; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            x[k] = (int32_t)((s >> 33) % 256);
            w[k] = (int32_t)((s >> 13) % 256) - 128;
        }
        int bits = 4 + trial % 20;
        int32_t zx = trial % 3 ? 0 : 128;
        qs_acc_t ex = acc_of("acc=exact"), wr = acc_of("overflow=wrap");
        wr.bits = bits;
        qs_acc_t ch = wr;
        ch.chunk = 1 + trial % 5;
        ch.chunk_bits = bits;
        ch.chunk_overflow = QS_ACC_WRAP;
        qs_acc_t we = wr;
        we.zp_form = QS_ZP_EXPAND;
        qs_acc_result_t re, rw, rc, rx;
        qs_acc_dot(&ex, x, 1, w, 1, n, zx, 0, 3, &re);
        qs_acc_dot(&wr, x, 1, w, 1, n, zx, 0, 3, &rw);
        qs_acc_dot(&ch, x, 1, w, 1, n, zx, 0, 3, &rc);
        qs_acc_dot(&we, x, 1, w, 1, n, zx, 0, 3, &rx);
        int64_t mod = qs_acc_add(0, re.value, bits, QS_ACC_WRAP, NULL);
        REQUIRE(rw.value == mod);
        REQUIRE(rc.value == mod);
        REQUIRE(rx.value == mod);
        if (re.max_abs <= (INT64_C(1) << (bits - 1)) - 1)
            REQUIRE(rw.events == 0 && rw.value == re.value);
    }
}
END_TEST

START_TEST(test_register)
{
    bool o;
    ck_assert_int_eq(qs_acc_add(1, 1, 2, QS_ACC_WRAP, &o), -2);
    ck_assert(o);
    ck_assert_int_eq(qs_acc_add(1, 1, 2, QS_ACC_SATURATE, &o), 1);
    ck_assert_int_eq(qs_acc_add(-2, -1, 2, QS_ACC_SATURATE, &o), -2);
    ck_assert_int_eq(qs_acc_add(INT64_MAX, 1, 64, QS_ACC_WRAP, &o), INT64_MIN);
    ck_assert(o);
    ck_assert_int_eq(qs_acc_add(INT64_MAX, 1, 64, QS_ACC_SATURATE, NULL), INT64_MAX);
    ck_assert_int_eq(qs_acc_add(32767, 0, 16, QS_ACC_WRAP, &o), 32767);
    ck_assert(!o);
    ck_assert_int_eq(qs_acc_add(-32768, -1, 16, QS_ACC_WRAP, NULL), 32767);
    ck_assert_int_eq(qs_acc_add(100000, 0, 16, QS_ACC_EXACT, &o), 100000);
    ck_assert(!o);
    const int64_t m[] = {0, 1, 2, 127, 128, 32767, 32768, INT64_MAX};
    const int b[] = {1, 2, 3, 8, 9, 16, 17, 64};
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(qs_acc_bits_for(m[i]), b[i]);
}
END_TEST

START_TEST(test_minifloat)
{
    ck_assert(qs_minifloat_round(0.1, 5, 10) == 0.0999755859375);
    ck_assert(qs_minifloat_round(1.0 / 3.0, 8, 7) == 0.333984375);
    ck_assert(qs_minifloat_round(2049, 5, 10) == 2048);  /* a tie: to even */
    ck_assert(qs_minifloat_round(2051, 5, 10) == 2052);
    ck_assert(qs_minifloat_round(65504, 5, 10) == 65504);
    ck_assert(qs_minifloat_round(65519, 5, 10) == 65504);
    ck_assert(isinf(qs_minifloat_round(65520, 5, 10))); /* rounds past the maximum */
    ck_assert(qs_minifloat_round(ldexp(1, -25), 5, 10) == 0);            /* half the smallest subnormal */
    ck_assert(qs_minifloat_round(3 * ldexp(1, -26), 5, 10) == ldexp(1, -24));
    ck_assert(qs_minifloat_round(-240, 4, 3) == -240); /* IEEE-like e4m3: max 1.875·2^7 */
    ck_assert(isinf(qs_minifloat_round(248, 4, 3)));
    ck_assert(qs_minifloat_round(16777217.0, 8, 23) == 16777216.0);
}
END_TEST

START_TEST(test_float_acc)
{
    const int64_t t[] = {2048, 1, 1, 1, 1};
    ck_assert_int_eq(sum_of("acc=fp16", t, 5, NULL), 2048);
    ck_assert_int_eq(sum_of("acc=fp16,promote=1", t, 5, NULL), 2052);
    ck_assert_int_eq(sum_of("acc=fp16,promote=2", t, 5, NULL), 2051);
    ck_assert_int_eq(sum_of("acc=fp32", t, 5, NULL), 2052);
    const int64_t big[] = {60000, 60000};
    int64_t ev;
    ck_assert_int_eq(sum_of("acc=fp16", big, 2, &ev), INT64_MAX);
    ck_assert_int_eq(ev, 1);
    ck_assert_int_eq(sum_of("acc=fp16,promote=1", big, 2, &ev), 120000);
    ck_assert_int_eq(ev, 0);
    qs_acc_t a = acc_of("acc=bf16");
    qs_acc_result_t r;
    qs_acc_sum(&a, t, 5, &r);
    ck_assert(r.fvalue == 2048.0);
    ck_assert_int_eq(r.exact, 2052);
}
END_TEST

START_TEST(test_widths)
{
    /* bit-accurate-arithmetic.md §2.10 */
    ck_assert_int_eq(qs_acc_width_datatype(4608, 8, 8, false), 29);
    ck_assert_int_eq(qs_acc_width_datatype(4608, 4, 4, false), 21);
    ck_assert_int_eq(qs_acc_width_datatype(25088, 8, 8, false), 31);
    ck_assert_int_eq(qs_acc_width_datatype(25088, 4, 4, false), 23);
    ck_assert_int_eq(qs_acc_width_a2q(2047, 4, false), 16);
    ck_assert_int_eq(qs_acc_width_a2q(2048, 4, false), 17);
    ck_assert_int_eq(qs_acc_width_a2q(127, 8, false), 16);
    ck_assert_int_eq(qs_acc_width_a2q(128, 8, false), 17);
    ck_assert_int_eq(qs_acc_width_a2q(255, 8, true), 16);
    ck_assert_int_eq(qs_acc_width_a2q(256, 8, true), 17);
    ck_assert_int_eq(qs_acc_width_a2qplus(4368, 4), 16);
    ck_assert_int_eq(qs_acc_width_a2qplus(4369, 4), 17);
    ck_assert_int_eq(qs_acc_width_a2qplus(256, 8), 16);
    ck_assert_int_eq(qs_acc_width_a2qplus(257, 8), 17);
    /* the A2Q width really is enough: ‖w‖₁ = 2047, N = 4 unsigned, the worst input */
    ck_assert_int_le(2047 * 15, 32767);
}
END_TEST

START_TEST(test_grammar)
{
    qs_acc_t a;
    qs_acc_default(&a);
    char buf[256];
    ck_assert_str_eq(qs_acc_str(&a, buf, sizeof buf), "acc=int32,overflow=wrap,zp-form=subtract");
    ck_assert_int_eq(qs_acc_parse("acc=int16,overflow=saturate,chunk=2,chunk-acc=int16", "t", &a), QS_OK);
    ck_assert_str_eq(qs_acc_str(&a, buf, sizeof buf),
                     "acc=int16,overflow=saturate,chunk=2,chunk-acc=int16,chunk-overflow=saturate,zp-form=subtract");
    qs_acc_t b;
    qs_acc_default(&b);
    ck_assert_int_eq(qs_acc_parse(buf, "t", &b), QS_OK);
    ck_assert_int_eq(memcmp(&a, &b, sizeof a), 0);
    ck_assert_int_eq(qs_acc_parse("e5m2,promote=64", "t", &b), QS_OK);
    ck_assert_int_eq(b.kind, QS_ACC_FLOAT);
    ck_assert_str_eq(qs_acc_str(&b, buf, sizeof buf), "acc=e5m2,promote=64,zp-form=subtract");
    ck_assert_int_eq(qs_acc_parse("exact", "t", &b), QS_OK);
    ck_assert_int_eq(b.overflow, QS_ACC_EXACT);

    const struct {
        const char *spec, *msg;
    } bad[] = {
        {"acc=int65", "--acc: key 'acc': width 65 out of range 2..64"},
        {"acc=float", "--acc: key 'acc': unknown value 'float', expected one of: int2..int64, exact, fp32, fp16, "
                      "bf16, eXmY (E 2..8, M 1..23)"},
        {"acc=e9m3", "out of range (E 2..8, M 1..23)"},
        {"overflow=clamp", "expected one of: wrap, saturate, exact"},
        {"width=16", "--acc: unknown key 'width'"},
        {"acc=fp16,chunk=2", "chunk= applies to integer accumulators"},
        {"promote=4", "promote= applies to float accumulators"},
        {"chunk=-1", "chunk"},
        {"int16x", "unknown word 'int16x'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        qs_acc_default(&a);
        qs_acc_t before = a;
        ck_assert_int_lt(qs_acc_parse(bad[i].spec, "--acc", &a), 0);
        ck_assert_msg(strstr(qs_last_error(), bad[i].msg), "%s: %s", bad[i].spec, qs_last_error());
        ck_assert_int_eq(memcmp(&a, &before, sizeof a), 0);
    }
}
END_TEST

static Suite *acc_suite(void)
{
    Suite *s = suite_create("acc");
    TCase *tc = tcase_create("acc");
    tcase_add_test(tc, test_int16_order);
    tcase_add_test(tc, test_dot_127);
    tcase_add_test(tc, test_pairwise);
    tcase_add_test(tc, test_zp_forms);
    tcase_add_test(tc, test_properties);
    tcase_add_test(tc, test_register);
    tcase_add_test(tc, test_minifloat);
    tcase_add_test(tc, test_float_acc);
    tcase_add_test(tc, test_widths);
    tcase_add_test(tc, test_grammar);
    suite_add_tcase(s, tc);
    return s;
}

QS_TEST_MAIN(acc_suite)
