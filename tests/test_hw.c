/* tests/test_hw.c — hardware targets and the cost model: the source numbers
 * reproduced (Horowitz's 45 nm MACs, Bit Fusion's rate), monotonicity in
 * bits, sparsity and channels on every shipped target, verdicts, units,
 * target-file validation with file:line, node scaling, and a target's native
 * arithmetic as an integer-engine configuration. */
#include "quasar.h"
#include "hwmodels/hw_internal.h"
#include "testutil.h"

#include <math.h>
#include <string.h>

static qs_hw_target_t *target(const char *name)
{
    qs_hw_target_t *t = NULL;
    ck_assert_msg(qs_hw_target_find(name, &t) == QS_OK, "%s: %s", name, qs_last_error());
    return t;
}

static void fmt(qs_wl_format_t *f, const char *name, int bits, bool is_signed)
{
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    f->bits = bits;
    f->is_signed = is_signed;
}

/* A 3x3 conv2d, cin -> cout channels on an hw x hw map, int<bw> weights and int<bx> activations. */
static qs_wl_layer_t conv(int64_t cin, int64_t cout, int64_t hw, int bw, int bx)
{
    qs_wl_layer_t l;
    memset(&l, 0, sizeof l);
    snprintf(l.name, sizeof l.name, "conv");
    snprintf(l.op, sizeof l.op, "conv2d");
    char n[16];
    snprintf(n, sizeof n, "int%d", bw);
    fmt(&l.w, n, bw, true);
    snprintf(n, sizeof n, "int%d", bx);
    fmt(&l.x, n, bx, false);
    l.y = l.x;
    l.c_in = cin, l.c_out = cout, l.h_in = l.w_in = l.h_out = l.w_out = hw;
    l.kh = l.kw = 3, l.stride_h = l.stride_w = 1, l.groups = 1;
    l.k = cin * 9;
    l.macs = cout * hw * hw * l.k;
    l.w_elems = cout * l.k;
    l.b_elems = cout;
    l.bias_bits = 32;
    l.x_elems = cin * hw * hw;
    l.y_elems = cout * hw * hw;
    l.w_gran = QS_WL_GRAN_CHANNEL;
    l.scale_bytes = cout * 4;
    l.density = 1;
    return l;
}

/* One MAC: its energy as the model prices it. */
static double one_mac(const qs_hw_target_t *t, const char *w, int bw, const char *x, int bx, int acc_bits)
{
    qs_wl_layer_t l = conv(1, 1, 1, 8, 8);
    snprintf(l.op, sizeof l.op, "linear");
    l.kh = l.kw = 1;
    l.k = l.macs = l.w_elems = 1;
    fmt(&l.w, w, bw, true);
    fmt(&l.x, x, bx, true);
    l.y = l.x;
    l.acc_bits = acc_bits;
    qs_hw_layer_cost_t c;
    ck_assert_msg(qs_hw_cost_layer(t, &l, NULL, &c) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(c.verdict, QS_HW_OK);
    return c.mac_j;
}

#define PJ 1e-12
#define CLOSE(a, b) (fabs((double)(a) - (double)(b)) <= 1e-9 * fabs((double)(b)))

/* Horowitz ISSCC 2014 (45 nm): int8 mult 0.2 pJ + int8 add 0.03 pJ = 0.23 pJ; with a 32-bit
 * accumulator 0.2 + 0.1 = 0.30 pJ; fp32 mult 3.7 + add 0.9 = 4.6 pJ: 20x and 15.3x. */
START_TEST(test_horowitz)
{
    qs_hw_target_t *t = target("asic-45nm");
    double i8a8 = one_mac(t, "int8", 8, "int8", 8, 8), i8a32 = one_mac(t, "int8", 8, "int8", 8, 32);
    double f32 = one_mac(t, "fp32", 32, "fp32", 32, 0), f16 = one_mac(t, "fp16", 16, "fp16", 16, 0);
    double i32 = one_mac(t, "int32", 32, "int32", 32, 32);
    ck_assert_msg(CLOSE(i8a8, 0.23 * PJ), "int8, 8-bit adder: %g", i8a8);
    ck_assert_msg(CLOSE(i8a32, 0.30 * PJ), "int8, 32-bit adder: %g", i8a32);
    ck_assert_msg(CLOSE(f32, 4.6 * PJ), "fp32: %g", f32);
    ck_assert_msg(CLOSE(f16, 1.5 * PJ), "fp16: %g", f16);
    ck_assert_msg(CLOSE(i32, 3.2 * PJ), "int32: %g", i32);
    ck_assert(fabs(f32 / i8a8 - 20.0) < 1e-9);
    ck_assert(fabs(f32 / i8a32 - 15.333333333) < 1e-6);
    /* between the table's points: multiplier linear in b_w*b_x, adder in width */
    double i16 = one_mac(t, "int16", 16, "int16", 16, 16);
    double mul16 = 0.2 + (256.0 - 64) / (1024 - 64) * (3.1 - 0.2), add16 = 0.03 + (16.0 - 8) / 24 * 0.07;
    ck_assert_msg(CLOSE(i16, (mul16 + add16) * PJ), "int16: %g", i16);
    /* below the first point: proportional (an int4 x int4 multiplier is a quarter of int8's) */
    ck_assert(CLOSE(one_mac(t, "int4", 4, "int4", 4, 8), (0.05 + 0.03) * PJ));
    /* the network-wide accumulator 0: the unit's native int32 */
    ck_assert(CLOSE(one_mac(t, "int8", 8, "int8", 8, 0), i8a32));
    qs_hw_target_free(t);
}
END_TEST

/* Bit Fusion: throughput ∝ 1/(⌈b_w/2⌉·⌈b_x/2⌉), energy per MAC ∝ the bricks. */
START_TEST(test_bitfusion)
{
    qs_hw_target_t *t = target("bitfusion");
    static const struct {
        int bw, bx, bricks;
    } c[] = {{2, 2, 1}, {4, 2, 2}, {4, 4, 4}, {8, 4, 8}, {8, 8, 16}, {16, 8, 32}, {16, 16, 64}};
    double s1 = 0;
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        qs_wl_layer_t l = conv(64, 64, 8, c[i].bw, c[i].bx);
        qs_hw_layer_cost_t r;
        ck_assert_int_eq(qs_hw_cost_layer(t, &l, NULL, &r), QS_OK);
        ck_assert_int_eq(r.verdict, QS_HW_OK);
        if (i == 0)
            s1 = r.compute_s;
        ck_assert_msg(fabs(r.compute_s / s1 - c[i].bricks) < 1e-9, "%dx%d: %g", c[i].bw, c[i].bx, r.compute_s / s1);
    }
    /* 3 bits: computed as 4 */
    qs_wl_layer_t l = conv(64, 64, 8, 3, 8);
    qs_hw_layer_cost_t r3, r4;
    ck_assert_int_eq(qs_hw_cost_layer(t, &l, NULL, &r3), QS_OK);
    l = conv(64, 64, 8, 4, 8);
    ck_assert_int_eq(qs_hw_cost_layer(t, &l, NULL, &r4), QS_OK);
    ck_assert_int_eq(r3.verdict, QS_HW_MAPPED);
    ck_assert_str_eq(r3.wfmt.name, "int4");
    ck_assert(strstr(r3.reason, "int3") && strstr(r3.reason, "int4"));
    ck_assert(CLOSE(r3.compute_j, r4.compute_j));
    qs_hw_target_free(t);
}
END_TEST

/* A layer's energy; a layer no unit can run has none (0), and compares as the cheapest. */
static double energy(const qs_hw_target_t *t, const qs_wl_layer_t *l)
{
    qs_hw_layer_cost_t c;
    ck_assert_msg(qs_hw_cost_layer(t, l, NULL, &c) == QS_OK, "%s", qs_last_error());
    return c.unit < 0 ? 0 : c.energy_j;
}

/* Fewer bits, more sparsity or fewer channels never cost more energy, on every shipped target. */
START_TEST(test_monotone)
{
    char **names = NULL;
    ck_assert_int_eq(qs_hw_target_names(&names), QS_OK);
    int n = 0;
    for (; names[n]; n++) {
        qs_hw_target_t *t = target(names[n]);
        for (int hw = 4; hw <= 32; hw *= 2) {
            for (int bw = 2; bw <= 16; bw++)
                for (int bx = 2; bx <= 16; bx++) {
                    qs_wl_layer_t l = conv(32, 64, hw, bw, bx), lw = conv(32, 64, hw, bw - 1, bx),
                                  lx = conv(32, 64, hw, bw, bx - 1);
                    double e = energy(t, &l);
                    if (e == 0) /* no unit runs it: nothing to compare */
                        continue;
                    REQUIRE_MSG(energy(t, &lw) <= e * (1 + 1e-12), "%s: w %d -> %d bits costs more", names[n], bw,
                                bw - 1);
                    REQUIRE_MSG(energy(t, &lx) <= e * (1 + 1e-12), "%s: x %d -> %d bits costs more", names[n], bx,
                                bx - 1);
                }
            for (int64_t c = 2; c <= 128; c *= 2) {
                qs_wl_layer_t a = conv(32, c, hw, 8, 8), b = conv(32, c - 1, hw, 8, 8);
                REQUIRE_MSG(energy(t, &b) <= energy(t, &a), "%s: %lld -> %lld channels", names[n], (long long)c,
                            (long long)c - 1);
                a = conv(c, 32, hw, 8, 8), b = conv(c - 1, 32, hw, 8, 8);
                REQUIRE_MSG(energy(t, &b) <= energy(t, &a), "%s: %lld -> %lld input channels", names[n],
                            (long long)c, (long long)c - 1);
            }
            double prev = INFINITY;
            for (int k = 0; k <= 10; k++) {
                qs_wl_layer_t l = conv(32, 64, hw, 8, 8);
                l.sparsity = k ? QS_WL_SPARSE_UNSTRUCTURED : QS_WL_SPARSE_NONE;
                l.density = 1.0 - 0.09 * k;
                double e = energy(t, &l);
                REQUIRE_MSG(e <= prev, "%s: density %g costs more", names[n], l.density);
                prev = e;
            }
            qs_wl_layer_t d = conv(32, 64, hw, 8, 8), s = d;
            s.sparsity = QS_WL_SPARSE_NM, s.sparse_n = 2, s.sparse_m = 4, s.density = 0.5;
            ck_assert(energy(t, &s) <= energy(t, &d));
        }
        qs_hw_target_free(t);
    }
    ck_assert_int_eq(n, 5);
    qs_hw_names_free(names);
}
END_TEST

/* Sparsity counts only where the target says its units skip it. */
START_TEST(test_sparsity)
{
    qs_hw_target_t *gpu = target("gpu-ampere"), *asic = target("asic-45nm");
    qs_wl_layer_t d = conv(64, 64, 16, 8, 8), s = d;
    fmt(&d.x, "int8", 8, true), fmt(&s.x, "int8", 8, true);
    d.y = d.x, s.y = s.x;
    s.sparsity = QS_WL_SPARSE_NM, s.sparse_n = 2, s.sparse_m = 4, s.density = 0.5;
    qs_hw_layer_cost_t cd, cs;
    ck_assert_int_eq(qs_hw_cost_layer(gpu, &d, NULL, &cd), QS_OK);
    ck_assert_int_eq(qs_hw_cost_layer(gpu, &s, NULL, &cs), QS_OK);
    ck_assert(CLOSE(cs.macs, cd.macs / 2));
    ck_assert(cs.weight_bytes < cd.weight_bytes);
    ck_assert_int_eq(qs_hw_cost_layer(asic, &d, NULL, &cd), QS_OK);
    ck_assert_int_eq(qs_hw_cost_layer(asic, &s, NULL, &cs), QS_OK);
    ck_assert(CLOSE(cs.macs, cd.macs)); /* no sparsity support: every MAC runs */
    ck_assert(CLOSE(cs.energy_j, cd.energy_j));
    qs_hw_target_free(gpu);
    qs_hw_target_free(asic);
}
END_TEST

START_TEST(test_verdicts)
{
    qs_hw_target_t *dsp = target("dsp-hvx"), *gpu = target("gpu-ampere"), *cpu = target("cpu-avx512-vnni");
    qs_hw_layer_cost_t c;
    /* no floating point on the DSP: nothing can run it */
    qs_wl_layer_t l = conv(8, 8, 8, 8, 8);
    fmt(&l.w, "fp32", 32, true), fmt(&l.x, "fp32", 32, true);
    l.y = l.x;
    ck_assert_int_eq(qs_hw_cost_layer(dsp, &l, NULL, &c), QS_OK);
    ck_assert_int_eq(c.verdict, QS_HW_UNSUPPORTED);
    ck_assert_int_eq(c.unit, -1);
    ck_assert_msg(strstr(c.reason, "no unit computes fp32"), "%s", c.reason);
    /* per-channel weights on a per-tensor DSP: priced, flagged */
    l = conv(8, 8, 8, 8, 8);
    ck_assert_int_eq(qs_hw_cost_layer(dsp, &l, NULL, &c), QS_OK);
    ck_assert_int_eq(c.verdict, QS_HW_UNSUPPORTED);
    ck_assert(c.unit >= 0 && c.energy_j > 0);
    ck_assert_msg(strstr(c.reason, "per-channel"), "%s", c.reason);
    l.w_gran = QS_WL_GRAN_TENSOR;
    ck_assert_int_eq(qs_hw_cost_layer(dsp, &l, NULL, &c), QS_OK);
    ck_assert_int_eq(c.verdict, QS_HW_OK);
    /* asymmetric activations on the GPU's tensor cores */
    l = conv(8, 8, 8, 8, 8);
    l.x.asymmetric = true;
    ck_assert_int_eq(qs_hw_cost_layer(gpu, &l, NULL, &c), QS_OK);
    ck_assert_int_eq(c.verdict, QS_HW_UNSUPPORTED);
    ck_assert_msg(strstr(c.reason, "zero point"), "%s", c.reason);
    /* the CPU maps int4 up to its int8 units */
    l = conv(8, 8, 8, 4, 4);
    ck_assert_int_eq(qs_hw_cost_layer(cpu, &l, NULL, &c), QS_OK);
    ck_assert_int_eq(c.verdict, QS_HW_MAPPED);
    ck_assert_str_eq(cpu->unit[c.unit].name, "vnni");
    /* an optional unit only when named */
    qs_hw_cost_opts_t o;
    qs_hw_cost_opts_default(&o);
    l = conv(8, 8, 8, 8, 8);
    ck_assert_int_eq(qs_hw_cost_layer(cpu, &l, NULL, &c), QS_OK);
    ck_assert_str_eq(cpu->unit[c.unit].name, "vnni");
    o.unit = "avx512bw-pairwise";
    ck_assert_int_eq(qs_hw_cost_layer(cpu, &l, &o, &c), QS_OK);
    ck_assert_str_eq(cpu->unit[c.unit].name, "avx512bw-pairwise");
    /* a whole workload: the worst verdict, counts */
    qs_workload_t *w = qs_workload_alloc(2);
    w->layer[0] = conv(8, 8, 8, 8, 8);
    w->layer[0].w_gran = QS_WL_GRAN_TENSOR;
    w->layer[1] = conv(8, 8, 8, 8, 8);
    qs_hw_cost_t *r = NULL;
    ck_assert_int_eq(qs_hw_cost(dsp, w, NULL, &r), QS_OK);
    ck_assert_int_eq(r->verdict, QS_HW_UNSUPPORTED);
    ck_assert_int_eq(r->unsupported, 1);
    ck_assert(CLOSE(r->energy_j, r->layer[0].energy_j + r->layer[1].energy_j));
    ck_assert_int_eq(r->nformats, 1);
    ck_assert_str_eq(r->by_format[0].name, "int8xint8");
    qs_hw_cost_free(r);
    o.unit = "no-such-unit";
    ck_assert_int_eq(qs_hw_cost(dsp, w, &o, &r), QS_ERR_INVALID);
    ck_assert(strstr(qs_last_error(), "hvx-int8"));
    qs_workload_free(w);
    qs_hw_target_free(dsp);
    qs_hw_target_free(gpu);
    qs_hw_target_free(cpu);
}
END_TEST

/* Batching shares the weights: traffic per inference falls, compute does not. */
START_TEST(test_batch_and_traffic)
{
    qs_hw_target_t *t = target("asic-45nm");
    qs_wl_layer_t l = conv(256, 256, 4, 8, 8); /* 590 kB of weights: over the 32 KiB buffer */
    l.x_from_input = l.y_is_output = true;
    qs_hw_cost_opts_t o;
    qs_hw_cost_opts_default(&o);
    qs_hw_layer_cost_t a, b;
    ck_assert_int_eq(qs_hw_cost_layer(t, &l, &o, &a), QS_OK);
    o.batch = 16;
    ck_assert_int_eq(qs_hw_cost_layer(t, &l, &o, &b), QS_OK);
    ck_assert(CLOSE(a.compute_j, b.compute_j));
    ck_assert(b.bytes[2] < a.bytes[2]);
    /* the outermost level moves each tensor once: weights + bias + scales, input, output */
    double W = (double)l.w_elems + l.b_elems * 4 + l.scale_bytes;
    ck_assert_msg(CLOSE(a.bytes[2], W + l.x_elems + l.y_elems), "%g", a.bytes[2]);
    ck_assert(CLOSE(a.weight_bytes, W));
    /* latency: the slowest of compute and each level */
    double worst = a.compute_s;
    for (int k = 0; k < t->nlevels; k++)
        worst = fmax(worst, a.bytes[k] / t->level[k].bandwidth);
    ck_assert(CLOSE(a.latency_s, worst));
    ck_assert(CLOSE(a.static_j, t->static_w * a.latency_s));
    o.batch = 0;
    ck_assert_int_eq(qs_hw_cost_layer(t, &l, &o, &a), QS_ERR_INVALID);
    qs_hw_target_free(t);
}
END_TEST

START_TEST(test_quantities)
{
    static const struct {
        const char *text;
        qs_q_dim_t dim;
        double value;
        bool per_cycle;
    } ok[] = {
        {"1 GHz", QS_Q_FREQUENCY, 1e9, false},     {"500 MHz", QS_Q_FREQUENCY, 5e8, false},
        {"2 KiB", QS_Q_BYTES, 2048, false},        {"2 KB", QS_Q_BYTES, 2000, false},
        {"1 MiB", QS_Q_BYTES, 1048576, false},     {"0.2 pJ", QS_Q_ENERGY, 0.2e-12, false},
        {"3 nJ", QS_Q_ENERGY, 3e-9, false},        {"12.8 GB/s", QS_Q_BANDWIDTH, 12.8e9, false},
        {"64 B/cycle", QS_Q_BANDWIDTH, 64, true},  {"2.5 pJ/B", QS_Q_ENERGY_BYTE, 2.5e-12, false},
        {"1 pJ/bit", QS_Q_ENERGY_BYTE, 8e-12, false}, {"10 mW", QS_Q_POWER, 0.01, false},
        {"45 nm", QS_Q_LENGTH_NM, 45, false},      {"0.9 V", QS_Q_VOLTAGE, 0.9, false},
        {"256", QS_Q_NUMBER, 256, false},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        double v = -1;
        bool pc = false;
        ck_assert_msg(qs_hw_quantity(ok[i].text, ok[i].dim, &v, &pc) == QS_OK, "%s: %s", ok[i].text,
                      qs_last_error());
        ck_assert_msg(CLOSE(v, ok[i].value), "%s: %g", ok[i].text, v);
        ck_assert_int_eq(pc, ok[i].per_cycle);
    }
    static const struct {
        const char *text;
        qs_q_dim_t dim;
    } bad[] = {{"-1 pJ", QS_Q_ENERGY}, {"nan pJ", QS_Q_ENERGY}, {"1 GHz", QS_Q_ENERGY}, {"pJ", QS_Q_ENERGY},
               {"3 parsecs", QS_Q_BYTES}, {"1 pJ", QS_Q_BYTES}, {"inf W", QS_Q_POWER}, {"", QS_Q_NUMBER}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        double v;
        bool pc;
        ck_assert_msg(qs_hw_quantity(bad[i].text, bad[i].dim, &v, &pc) < 0, "'%s' accepted", bad[i].text);
    }
}
END_TEST

START_TEST(test_formats)
{
    qs_hw_format_t a, b;
    ck_assert_int_eq(qs_hw_format_parse("int4", &a), QS_OK);
    ck_assert_int_eq(a.bits, 4);
    ck_assert_int_eq(qs_hw_format_parse("int8", &b), QS_OK);
    ck_assert(qs_hw_format_fits(&a, &b) && !qs_hw_format_fits(&b, &a));
    ck_assert_int_eq(qs_hw_format_parse("fp8-e4m3", &a), QS_OK);
    ck_assert_int_eq(qs_hw_format_parse("fp16", &b), QS_OK);
    ck_assert(qs_hw_format_fits(&a, &b));
    ck_assert_int_eq(qs_hw_format_parse("fp8-e5m2", &a), QS_OK);
    ck_assert_int_eq(qs_hw_format_parse("bf16", &b), QS_OK);
    ck_assert(qs_hw_format_fits(&a, &b));
    ck_assert_int_eq(qs_hw_format_parse("fp16", &a), QS_OK);
    ck_assert(!qs_hw_format_fits(&a, &b) && !qs_hw_format_fits(&b, &a)); /* fp16 and bf16: neither holds the other */
    ck_assert_int_eq(qs_hw_format_parse("binary", &a), QS_OK);
    ck_assert_int_eq(qs_hw_format_parse("int2", &b), QS_OK);
    ck_assert(qs_hw_format_fits(&a, &b));
    /* integers in floats: the mantissa must hold them and the exponent reach them */
    static const struct {
        const char *i, *f;
        bool fits;
    } inf[] = {{"int9", "fp16", true},      {"int11", "fp16", true},    {"int12", "fp16", false},
               {"int8", "bf16", true},      {"int9", "bf16", false},    {"int4", "fp8-e4m3", true},
               {"int5", "fp8-e4m3", false}, {"int4", "fp6-e2m3", false}, {"int1", "fp6-e2m3", true},
               {"int24", "fp32", true},     {"int25", "fp32", false}};
    for (size_t i = 0; i < sizeof inf / sizeof *inf; i++) {
        ck_assert_int_eq(qs_hw_format_parse(inf[i].i, &a), QS_OK);
        ck_assert_int_eq(qs_hw_format_parse(inf[i].f, &b), QS_OK);
        ck_assert_msg(qs_hw_format_fits(&a, &b) == inf[i].fits, "%s in %s", inf[i].i, inf[i].f);
    }
    ck_assert_int_eq(qs_hw_format_parse("int0", &a), QS_ERR_INVALID);
    ck_assert_int_eq(qs_hw_format_parse("int33", &a), QS_ERR_INVALID);
    ck_assert_int_eq(qs_hw_format_parse("fp7", &a), QS_ERR_INVALID);
}
END_TEST

/* ---- target files ------------------------------------------------------------------------------------ */

static const char base[] = /* line numbers matter: the errors below name them */
    "target: tiny\n"                                 /* 1 */
    "kind: accelerator\n"                            /* 2 */
    "description: a test target\n"                   /* 3 */
    "technology:\n"                                  /* 4 */
    "  node: 45 nm\n"                                /* 5 */
    "  voltage: 0.9 V\n"                             /* 6 */
    "  source: test\n"                               /* 7 */
    "compute:\n"                                     /* 8 */
    "  clock: 1 GHz\n"                               /* 9 */
    "  utilization: 1.0\n"                           /* 10 */
    "  local: 1 KiB\n"                               /* 11 */
    "  source: test\n"                               /* 12 */
    "power:\n"                                       /* 13 */
    "  static: 1 mW\n"                               /* 14 */
    "  source: test\n"                               /* 15 */
    "requant: requant=fixed-point\n"                 /* 16 */
    "units:\n"                                       /* 17 */
    "  - name: mac\n"                                /* 18 */
    "    weights: [int8]\n"                          /* 19 */
    "    acts: [int8]\n"                             /* 20 */
    "    macs_per_cycle: 64\n"                       /* 21 */
    "    mac_energy: 0.5 pJ\n"                       /* 22 */
    "    acc: acc=int32\n"                           /* 23 */
    "    source: test\n"                             /* 24 */
    "memory:\n"                                      /* 25 */
    "  - name: sram\n"                               /* 26 */
    "    capacity: 64 KiB\n"                         /* 27 */
    "    bandwidth: 32 B/cycle\n"                    /* 28 */
    "    energy: 2 pJ/B\n"                           /* 29 */
    "    source: test\n"                             /* 30 */
    "  - name: dram\n"                               /* 31 */
    "    bandwidth: 10 GB/s\n"                       /* 32 */
    "    energy: 100 pJ/B\n"                         /* 33 */
    "    offchip: true\n"                            /* 34 */
    "    source: test\n";                            /* 35 */

/* base with the first `from` replaced by `to` */
static char *edit(const char *from, const char *to)
{
    const char *p = strstr(base, from);
    ck_assert_msg(p != NULL, "'%s' not in the base file", from);
    size_t n = strlen(base) - strlen(from) + strlen(to) + 1;
    char *s = malloc(n);
    snprintf(s, n, "%.*s%s%s", (int)(p - base), base, to, p + strlen(from));
    return s;
}

START_TEST(test_target_file)
{
    qs_hw_target_t *t = NULL;
    ck_assert_msg(qs_hw_target_parse(base, strlen(base), "tiny.yaml", &t) == QS_OK, "%s", qs_last_error());
    ck_assert_str_eq(t->name, "tiny");
    ck_assert_int_eq(t->nunits, 1);
    ck_assert_int_eq(t->nlevels, 2);
    ck_assert(CLOSE(t->level[0].bandwidth, 32e9)); /* B/cycle at the clock */
    ck_assert(CLOSE(t->level[0].capacity, 65536));
    ck_assert(CLOSE(t->local_bytes, 1024));
    ck_assert(t->level[1].offchip && !t->level[0].offchip);
    ck_assert_int_eq(t->unit[0].acc_bits, 32);
    ck_assert_int_eq(qs_target_check_arithmetic(t), QS_OK);
    qs_hw_target_free(t);

    static const struct {
        const char *from, *to;
        const char *want[3]; /* substrings of the error */
    } bad[] = {
        {"  clock: 1 GHz\n", "", {"tiny.yaml:9", "missing key 'clock'"}},                      /* missing key */
        {"clock: 1 GHz", "clock: [1, 2]", {"tiny.yaml:9", "clock"}},            /* wrong type */
        {"mac_energy: 0.5 pJ", "mac_energy: -0.5 pJ", {"tiny.yaml:22", "mac_energy"}}, /* negative */
        {"weights: [int8]", "weights: [int7x]", {"tiny.yaml:19", "int7x"}},     /* unknown format */
        {"    source: test\nmemory", "memory", {"tiny.yaml:21", "source"}},     /* a number without a source */
        {"  static: 1 mW\n", "  static: 1 mW\n  leakage: 2 mW\n", {"tiny.yaml:15", "leakage"}}, /* unknown key */
        {"energy: 2 pJ/B", "energy: 2 GHz", {"tiny.yaml:29", "energy"}},        /* wrong unit */
        {"kind: accelerator", "kind: toaster", {"tiny.yaml:2", "kind"}},
        {"bandwidth: 10 GB/s", "bandwidth: nan GB/s", {"tiny.yaml:32", "bandwidth"}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *s = edit(bad[i].from, bad[i].to);
        t = NULL;
        int rc = qs_hw_target_parse(s, strlen(s), "tiny.yaml", &t);
        ck_assert_msg(rc < 0 && t == NULL, "case %zu accepted", i);
        for (int k = 0; k < 3 && bad[i].want[k]; k++)
            ck_assert_msg(strstr(qs_last_error(), bad[i].want[k]), "case %zu: '%s' lacks '%s'", i, qs_last_error(),
                          bad[i].want[k]);
        free(s);
    }
    /* an accumulator the integer engine cannot read: found by the arithmetic check */
    char *s = edit("acc: acc=int32", "acc: acc=int32,overflow=sometimes");
    ck_assert_int_eq(qs_hw_target_parse(s, strlen(s), "tiny.yaml", &t), QS_OK);
    ck_assert(qs_target_check_arithmetic(t) < 0);
    ck_assert_msg(strstr(qs_last_error(), "tiny.yaml:18") && strstr(qs_last_error(), "acc"), "%s", qs_last_error());
    qs_hw_target_free(t);
    free(s);
    /* files: missing, and not YAML */
    ck_assert(qs_hw_target_load("/nonexistent/t.yaml", &t) < 0);
    ck_assert(strstr(qs_last_error(), "/nonexistent/t.yaml"));
    char path[256];
    qs_test_path(path, sizeof path, "garbage.yaml");
    FILE *f = fopen(path, "w");
    fputs("target: [unclosed\n  : :\n", f);
    fclose(f);
    ck_assert(qs_hw_target_load(path, &t) < 0);
    ck_assert(strstr(qs_last_error(), path));
    remove(path);
    ck_assert(qs_hw_target_find("no-such-target", &t) < 0);
    ck_assert(strstr(qs_last_error(), "asic-45nm"));
}
END_TEST

/* Every shipped target loads, its arithmetic parses, and node scaling behaves. */
START_TEST(test_shipped_and_nodes)
{
    char **names = NULL;
    ck_assert_int_eq(qs_hw_target_names(&names), QS_OK);
    for (int i = 0; names[i]; i++) {
        qs_hw_target_t *t = target(names[i]);
        ck_assert_msg(qs_target_check_arithmetic(t) == QS_OK, "%s: %s", names[i], qs_last_error());
        ck_assert_str_eq(t->name, names[i]);
        qs_hw_target_free(t);
    }
    qs_hw_names_free(names);
    double f;
    ck_assert_int_eq(qs_hw_node_factor(45, 45, 0.9, &f), QS_OK);
    ck_assert(CLOSE(f, 1));
    double prev = 1;
    for (double nm = 40; nm >= 7; nm -= 1) { /* smaller nodes: less energy */
        ck_assert_int_eq(qs_hw_node_factor(45, nm, 0.9, &f), QS_OK);
        ck_assert_msg(f < prev && f > 0, "%g nm: %g", nm, f);
        prev = f;
    }
    ck_assert(qs_hw_node_factor(45, 1, 0.9, &f) < 0);
    qs_hw_target_t *t = target("asic-45nm"), *u = target("asic-45nm");
    ck_assert_int_eq(qs_hw_target_scale_node(u, 7), QS_OK);
    ck_assert(CLOSE(u->node_nm, 7));
    double e45 = one_mac(t, "int8", 8, "int8", 8, 32), e7 = one_mac(u, "int8", 8, "int8", 8, 32);
    ck_assert(e7 < e45);
    ck_assert(u->level[0].energy < t->level[0].energy);
    ck_assert(CLOSE(u->level[2].energy, t->level[2].energy)); /* DRAM is off chip: kept */
    qs_hw_target_free(t);
    qs_hw_target_free(u);
}
END_TEST

/* ---- from a network ---------------------------------------------------------------------------------- */

static qs_qnet_t *dwsep(qs_graph_t **g, const char *weights, const char *acts)
{
    ck_assert_int_eq(qs_zoo_build("fmnist-dwsep", 3, g), QS_OK);
    qs_qconfig_t c;
    ck_assert_int_eq(qs_qconfig_preset(&c, "w8a8", "t"), QS_OK);
    if (weights)
        ck_assert_int_eq(qs_qconfig_set(&c, QS_QT_WEIGHTS, weights, "t"), QS_OK);
    if (acts)
        ck_assert_int_eq(qs_qconfig_set(&c, QS_QT_ACTS, acts, "t"), QS_OK);
    qs_qnet_t *q = NULL;
    ck_assert_msg(qs_qnet_create(*g, &c, &q) == QS_OK, "%s", qs_last_error());
    return q;
}

START_TEST(test_workload)
{
    qs_graph_t *g = NULL;
    qs_qnet_t *q = dwsep(&g, "bits=4", NULL);
    qs_workload_t *w = NULL;
    ck_assert_int_eq(qs_qnet_workload(q, NULL, &w), QS_OK);
    int64_t macs = 0;
    for (int i = 0; i < w->nlayers; i++) {
        const qs_wl_layer_t *l = &w->layer[i];
        macs += l->macs;
        if (l->macs > 0) {
            ck_assert_str_eq(l->w.name, "int4");
            ck_assert_int_eq(l->w.bits, 4);
            ck_assert_int_eq(l->x.bits, 8);
            ck_assert_int_eq(l->acc_bits, 0);
            ck_assert_int_eq(l->sparsity, QS_WL_SPARSE_NONE);
            ck_assert_int_eq(l->macs, l->k * l->y_elems);
        }
    }
    ck_assert_int_eq(macs, qs_graph_macs(q->g));
    ck_assert(w->layer[0].x_from_input && w->layer[w->nlayers - 1].y_is_output);
    qs_workload_free(w);
    /* the integer engine's accumulator sets the adders' width */
    qs_int_config_t ic;
    qs_int_config_default(&ic);
    ck_assert_int_eq(qs_acc_parse("int16", "t", &ic.acc), QS_OK);
    ck_assert_int_eq(qs_qnet_workload(q, &ic, &w), QS_OK);
    for (int i = 0; i < w->nlayers; i++)
        if (w->layer[i].macs > 0)
            ck_assert_int_eq(w->layer[i].acc_bits, 16);
    qs_workload_free(w);
    qs_qnet_free(q);
    qs_graph_free(g);
}
END_TEST

START_TEST(test_arithmetic_for_target)
{
    qs_graph_t *g = NULL;
    qs_qnet_t *q = dwsep(&g, NULL, NULL);
    qs_hw_target_t *cpu = target("cpu-avx512-vnni"), *dsp = target("dsp-hvx");
    qs_int_config_t c;
    qs_int_config_default(&c);
    c.trace = true;
    ck_assert_msg(qs_int_config_for_target(q, dsp, NULL, &c) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(c.rq.preset, QS_RQ_GEMMLOWP);
    ck_assert_int_eq(c.acc.bits, 32);
    ck_assert_int_eq(c.noverrides, 0);
    ck_assert(c.trace); /* kept */
    qs_hw_cost_opts_t o;
    qs_hw_cost_opts_default(&o);
    o.unit = "avx512bw-pairwise";
    ck_assert_int_eq(qs_int_config_for_target(q, cpu, &o, &c), QS_OK);
    ck_assert_int_eq(c.rq.preset, QS_RQ_ONEDNN);
    ck_assert_int_eq(c.acc.chunk, 2);
    ck_assert_int_eq(c.acc.chunk_bits, 16);
    ck_assert_int_eq(c.acc.chunk_overflow, QS_ACC_SATURATE);
    /* float weights: no integer arithmetic to reproduce */
    qs_qnet_free(q);
    qs_graph_free(g);
    q = dwsep(&g, "float", "float");
    ck_assert(qs_int_config_for_target(q, cpu, NULL, &c) < 0);
    ck_assert_msg(strstr(qs_last_error(), "float"), "%s", qs_last_error());
    qs_qnet_free(q);
    qs_graph_free(g);
    qs_hw_target_free(cpu);
    qs_hw_target_free(dsp);
}
END_TEST

/* A target file of three units with different registers: "wide" (int8 weights) accumulates in
 * chunks, "narrow" (int4 weights) in a plain saturating int16, "fpu" computes in fp32. */
static const char units3[] =
    "target: three\n"
    "kind: accelerator\n"
    "description: units with different accumulators\n"
    "technology:\n  node: 45 nm\n  voltage: 0.9 V\n  source: test\n"
    "compute:\n  clock: 1 GHz\n  utilization: 1.0\n  local: 1 KiB\n  source: test\n"
    "power:\n  static: 1 mW\n  source: test\n"
    "requant: requant=fixed-point\n"
    "features:\n  weight_granularity: [tensor, channel]\n  weight_zero_point: true\n  act_zero_point: true\n"
    "  storage: packed\n  missing_format: map-up\n  source: test\n"
    "units:\n"
    "  - name: wide\n    weights: [int8]\n    acts: [int8]\n    macs_per_cycle: 64\n    mac_energy: 0.5 pJ\n"
    "    acc: acc=int32,overflow=wrap,chunk=64,chunk-acc=int24,chunk-overflow=wrap,zp-form=expand\n"
    "    source: test\n"
    "  - name: narrow\n    weights: [int4]\n    acts: [int8]\n    macs_per_cycle: 64\n    mac_energy: 0.3 pJ\n"
    "    acc: int16,overflow=saturate\n    source: test\n"
    "  - name: twobit\n    weights: [int2]\n    acts: [int8]\n    macs_per_cycle: 64\n    mac_energy: 0.2 pJ\n"
    "    acc: acc=int24,overflow=saturate\n    source: test\n"
    "  - name: fpu\n    weights: [fp32]\n    acts: [fp32]\n    macs_per_cycle: 16\n    mac_energy: 4 pJ\n"
    "    acc: acc=int32\n    source: test\n"
    "memory:\n"
    "  - name: sram\n    capacity: 64 KiB\n    bandwidth: 32 B/cycle\n    energy: 2 pJ/B\n    source: test\n"
    "  - name: dram\n    bandwidth: 10 GB/s\n    energy: 100 pJ/B\n    offchip: true\n    source: test\n";

static qs_hw_target_t *units3_target(void)
{
    char path[256];
    qs_test_path(path, sizeof path, "three.yaml");
    FILE *f = fopen(path, "w");
    ck_assert(f != NULL);
    fputs(units3, f);
    fclose(f);
    qs_hw_target_t *t = NULL;
    ck_assert_msg(qs_hw_target_load(path, &t) == QS_OK, "%s", qs_last_error());
    remove(path);
    ck_assert_int_eq(t->nunits, 4);
    return t;
}

/* fmnist-dwsep at W8A8 with one layer's weights at `bits` */
static qs_qnet_t *dwsep_one(qs_graph_t **g, const char *layer, int bits)
{
    ck_assert_int_eq(qs_zoo_build("fmnist-dwsep", 3, g), QS_OK);
    qs_qconfig_t c;
    ck_assert_int_eq(qs_qconfig_preset(&c, "w8a8", "t"), QS_OK);
    char arg[96];
    snprintf(arg, sizeof arg, "%s:weights=bits=%d", layer, bits);
    ck_assert_msg(qs_qconfig_override(&c, arg, "t") == QS_OK, "%s", qs_last_error());
    qs_qnet_t *q = NULL;
    ck_assert_msg(qs_qnet_create(*g, &c, &q) == QS_OK, "%s", qs_last_error());
    return q;
}

/* A layer on a unit whose accumulator differs from the network-wide one gets that unit's whole
 * accumulator: nothing of the network-wide register (chunk=, chunk-acc=, zp-form=) leaks in. */
START_TEST(test_arithmetic_override_complete)
{
    qs_hw_target_t *t = units3_target();
    qs_graph_t *g = NULL;
    qs_qnet_t *q = dwsep_one(&g, "b2.pw", 4);
    qs_int_config_t c;
    qs_int_config_default(&c);
    ck_assert_msg(qs_int_config_for_target(q, t, NULL, &c) == QS_OK, "%s", qs_last_error());
    /* network-wide: the wide unit's chunked register */
    ck_assert_int_eq(c.acc.bits, 32);
    ck_assert_int_eq(c.acc.chunk, 64);
    ck_assert_int_eq(c.acc.chunk_bits, 24);
    ck_assert_int_eq(c.acc.zp_form, QS_ZP_EXPAND);
    ck_assert_int_eq(c.noverrides, 1);
    ck_assert_str_eq(c.ov[0].layer, "b2.pw");
    ck_assert(!c.ov[0].requant);
    ck_assert_msg(!strstr(c.ov[0].spec, "chunk=64") && !strstr(c.ov[0].spec, "int24") &&
                  !strstr(c.ov[0].spec, "expand"), "%s", c.ov[0].spec);
    /* what the engine resolves for b2.pw: exactly the narrow unit's accumulator read from the default */
    qs_acc_t got = c.acc, want;
    ck_assert_msg(qs_acc_parse(c.ov[0].spec, "t", &got) == QS_OK, "%s", qs_last_error());
    qs_acc_default(&want);
    ck_assert_int_eq(qs_acc_parse("int16,overflow=saturate", "t", &want), QS_OK);
    char a[160], b[160];
    ck_assert_str_eq(qs_acc_str(&got, a, sizeof a), qs_acc_str(&want, b, sizeof b));
    ck_assert_int_eq(got.kind, QS_ACC_INT);
    ck_assert_int_eq(got.bits, 16);
    ck_assert_int_eq(got.overflow, QS_ACC_SATURATE);
    ck_assert_int_eq(got.chunk, 0);
    ck_assert_int_eq(got.zp_form, QS_ZP_SUBTRACT);
    qs_qnet_free(q);
    qs_graph_free(g);

    /* an int12 layer only the float unit can run: the error names the formats */
    q = dwsep_one(&g, "b2.pw", 12);
    ck_assert(qs_int_config_for_target(q, t, NULL, &c) < 0);
    ck_assert_msg(strstr(qs_last_error(), "b2.pw") && strstr(qs_last_error(), "int12 x int8") &&
                  strstr(qs_last_error(), "fp32 x fp32") && strstr(qs_last_error(), "fpu"), "%s", qs_last_error());
    ck_assert_int_eq(c.noverrides, 1); /* *c unchanged on error */
    qs_qnet_free(q);
    qs_graph_free(g);
    qs_hw_target_free(t);
}
END_TEST

/* More layers needing a per-layer accumulator than the integer engine takes: an error naming the limit. */
START_TEST(test_arithmetic_override_limit)
{
    qs_hw_target_t *t = units3_target();
    enum { N = 3 * 30 }; /* a third on each of wide, narrow, twobit: 60 overrides, under the limit */
    for (int round = 0; round < 2; round++) {
        int nl = round ? 3 * (QS_INT_MAX_OVERRIDES / 2 + 1) : N; /* 66 + 33 layers: 66 overrides */
        qs_graph_t *g = qs_graph_create("many", 4, 1, 1);
        int in = 0;
        qs_node_t fl = qs_node_init(QS_OP_FLATTEN, "flat", 1, &in);
        in = qs_graph_add(g, &fl);
        ck_assert(in >= 0);
        for (int i = 0; i < nl; i++) {
            char name[32];
            snprintf(name, sizeof name, "fc%d", i);
            qs_node_t n = qs_node_init(QS_OP_LINEAR, name, 1, &in);
            int64_t ws[2] = {4, 4}, bs = 4;
            n.weight = qs_tensor_create(QS_F32, 2, ws);
            n.bias = qs_tensor_create(QS_F32, 1, &bs);
            for (int k = 0; k < 16; k++)
                qs_f32(n.weight)[k] = (float)((k * 7 + i) % 5) - 2.0f;
            for (int k = 0; k < 4; k++)
                qs_f32(n.bias)[k] = 0.25f * (float)k;
            in = qs_graph_add(g, &n);
            ck_assert_msg(in >= 0, "%s", qs_last_error());
        }
        ck_assert_msg(qs_graph_infer(g) == QS_OK, "%s", qs_last_error());
        qs_qconfig_t qc;
        ck_assert_int_eq(qs_qconfig_preset(&qc, "w8a8", "t"), QS_OK);
        qs_qnet_t *q = NULL;
        ck_assert_msg(qs_qnet_create(g, &qc, &q) == QS_OK, "%s", qs_last_error());
        /* the workload reads each layer's weight width: 8, 4, 2 in turn (wide, narrow, twobit) */
        int seen = 0;
        for (int i = 0; i < q->g->nnodes; i++)
            if (q->layer[i].wq) {
                q->layer[i].wquant.bits = seen % 3 == 0 ? 8 : seen % 3 == 1 ? 4 : 2;
                seen++;
            }
        ck_assert_int_eq(seen, nl);
        qs_int_config_t c;
        qs_int_config_default(&c);
        int rc = qs_int_config_for_target(q, t, NULL, &c);
        if (round == 0) {
            ck_assert_msg(rc == QS_OK, "%s", qs_last_error());
            ck_assert_int_eq(c.noverrides, 2 * nl / 3);
        } else {
            ck_assert(rc < 0);
            ck_assert_msg(strstr(qs_last_error(), "at most 64") && strstr(qs_last_error(), "QS_INT_MAX_OVERRIDES") &&
                          strstr(qs_last_error(), "66 layers"), "%s", qs_last_error());
            ck_assert_int_eq(c.noverrides, 0);
        }
        qs_qnet_free(q);
        qs_graph_free(g);
    }
    qs_hw_target_free(t);
}
END_TEST

static Suite *hw_suite(void)
{
    Suite *s = suite_create("hw");
    TCase *tc = tcase_create("hw");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_horowitz);
    tcase_add_test(tc, test_bitfusion);
    tcase_add_test(tc, test_monotone);
    tcase_add_test(tc, test_sparsity);
    tcase_add_test(tc, test_verdicts);
    tcase_add_test(tc, test_batch_and_traffic);
    tcase_add_test(tc, test_quantities);
    tcase_add_test(tc, test_formats);
    tcase_add_test(tc, test_target_file);
    tcase_add_test(tc, test_shipped_and_nodes);
    tcase_add_test(tc, test_workload);
    tcase_add_test(tc, test_arithmetic_for_target);
    tcase_add_test(tc, test_arithmetic_override_complete);
    tcase_add_test(tc, test_arithmetic_override_limit);
    suite_add_tcase(s, tc);
    return s;
}

QS_TEST_MAIN(hw_suite)
