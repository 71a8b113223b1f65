/* quant/minifloat.c — minifloat formats ExMy with their special-value
 * conventions, and exact encoding, decoding and rounding of doubles into
 * them (docs/arithmetic.md, "Minifloats").
 *
 * A code has 1 sign bit, E exponent bits and M mantissa bits (sign highest).
 * With exponent field f and mantissa field m, a finite code's magnitude is
 * (1 + m/2^M) · 2^(f − bias) for f ≥ 1 and (m/2^M) · 2^(1 − bias) for f = 0
 * (subnormals). The conventions differ only in which codes are special:
 *  - ieee:   f = 2^E − 1 is Inf (m = 0) or NaN (m ≠ 0); bias 2^(E−1) − 1.
 *  - ocp-fn: OCP 8-bit FP (E4M3): no Inf; only S.1…1.1…1 is NaN, the rest of
 *            the top binade is finite (E4M3's largest value is 448).
 *  - fnuz:   no Inf, no −0: the code 1.0…0.0…0 is the only NaN; every
 *            exponent field is finite; bias 2^(E−1) (E4M3FNUZ: 240,
 *            E5M2FNUZ: 57344).
 *  - finite: OCP FP6/FP4 (Microscaling v1.0): no Inf, no NaN, every code
 *            finite (E2M1: 6, E3M2: 28, E2M3: 7.5).
 * Rounding is to the quantum of the value's binade (subnormal quantum below
 * the normal range), so results are exact in double for every E ≤ 8,
 * M ≤ 23. Overflow (a rounded magnitude above the largest finite value):
 * saturating gives the largest finite value; the format's rule gives Inf
 * (ieee), NaN (ocp-fn, fnuz) or the largest finite value (finite, which has
 * nothing else). NaN inputs give the format's NaN, or for finite formats
 * the largest finite value with the input's sign bit (there is no code for
 * NaN: callers that care count non-finite inputs themselves). */
#include "quant/quant_internal.h"

#include <math.h>
#include <string.h>

static const struct {
    const char *name;
    int e, m;
    qs_mf_conv_t conv;
} named[] = {
    {"fp32", 8, 23, QS_MF_IEEE},         {"fp16", 5, 10, QS_MF_IEEE},     {"bf16", 8, 7, QS_MF_IEEE},
    {"fp8-e4m3", 4, 3, QS_MF_OCP_FN},   {"fp8-e5m2", 5, 2, QS_MF_IEEE},  {"fp8-e4m3fnuz", 4, 3, QS_MF_FNUZ},
    {"fp8-e5m2fnuz", 5, 2, QS_MF_FNUZ}, {"fp6-e3m2", 3, 2, QS_MF_FINITE}, {"fp6-e2m3", 2, 3, QS_MF_FINITE},
    {"fp4-e2m1", 2, 1, QS_MF_FINITE},
};

int qs_mf_init(qs_mf_t *f, int exp_bits, int man_bits, qs_mf_conv_t conv)
{
    if (exp_bits < 1 || exp_bits > 8 || man_bits < 0 || man_bits > 23)
        return qs_error(QS_ERR_INVALID, "minifloat: E%dM%d: E must be 1..8 and M 0..23", exp_bits, man_bits);
    if (conv < QS_MF_IEEE || conv > QS_MF_FINITE)
        return qs_error(QS_ERR_INVALID, "minifloat: unknown special-value convention %d", (int)conv);
    if (conv == QS_MF_IEEE && exp_bits < 2)
        return qs_error(QS_ERR_INVALID, "minifloat: E%dM%d: an IEEE-like format needs E >= 2 (one exponent is Inf/NaN)",
                        exp_bits, man_bits);
    if (conv == QS_MF_OCP_FN && exp_bits + man_bits < 2)
        return qs_error(QS_ERR_INVALID, "minifloat: E%dM%d: too small for a NaN code", exp_bits, man_bits);
    memset(f, 0, sizeof *f);
    f->exp_bits = exp_bits;
    f->man_bits = man_bits;
    f->conv = conv;
    f->bias = conv == QS_MF_FNUZ ? 1 << (exp_bits - 1) : (1 << (exp_bits - 1)) - 1;
    f->bits = 1 + exp_bits + man_bits;
    f->emin = 1 - f->bias;
    const int ftop = (1 << exp_bits) - 1;
    const double mfull = 2.0 - ldexp(1.0, -man_bits); /* 1.1…1 */
    switch (conv) {
    case QS_MF_IEEE:
        f->max = ldexp(mfull, ftop - 1 - f->bias);
        break;
    case QS_MF_OCP_FN: /* the top binade lacks only its last code (NaN) */
        f->max = man_bits > 0 ? ldexp(mfull - ldexp(1.0, -man_bits), ftop - f->bias) : ldexp(1.0, ftop - 1 - f->bias);
        break;
    case QS_MF_FNUZ:
    case QS_MF_FINITE:
        f->max = ldexp(mfull, ftop - f->bias);
        break;
    }
    f->min_sub = ldexp(1.0, f->emin - man_bits);
    return QS_OK;
}

int qs_mf_named(const char *name, qs_mf_t *f)
{
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (strcmp(name, named[i].name) == 0) {
            qs_mf_init(f, named[i].e, named[i].m, named[i].conv);
            snprintf(f->name, sizeof f->name, "%s", name);
            return QS_OK;
        }
    return qs_error(QS_ERR_INVALID, "minifloat: unknown format '%s' (known: fp32, fp16, bf16, fp8-e4m3, fp8-e5m2, "
                    "fp8-e4m3fnuz, fp8-e5m2fnuz, fp6-e3m2, fp6-e2m3, fp4-e2m1)", name);
}

uint32_t qs_mf_nan(const qs_mf_t *f)
{
    const uint32_t sign = 1u << (f->bits - 1);
    switch (f->conv) {
    case QS_MF_IEEE: /* the quiet NaN: top mantissa bit (the only one when M = 1); E≥2, M=0 has none */
        return ((uint32_t)((1 << f->exp_bits) - 1) << f->man_bits) | (f->man_bits ? 1u << (f->man_bits - 1) : 0);
    case QS_MF_OCP_FN:
        return (sign << 1) - 1 - sign; /* S=0, every other bit set */
    case QS_MF_FNUZ:
        return sign;
    case QS_MF_FINITE:
        break;
    }
    return 0;
}

double qs_mf_decode(const qs_mf_t *f, uint32_t code)
{
    const int M = f->man_bits;
    const uint32_t sign = (code >> (f->bits - 1)) & 1u;
    const uint32_t fe = (code >> M) & ((1u << f->exp_bits) - 1);
    const uint32_t fm = code & ((1u << M) - 1);
    const uint32_t ftop = (1u << f->exp_bits) - 1;
    const double s = sign ? -1.0 : 1.0;
    switch (f->conv) {
    case QS_MF_IEEE:
        if (fe == ftop)
            return fm ? NAN : s * INFINITY;
        break;
    case QS_MF_OCP_FN:
        if (fe == ftop && fm == (1u << M) - 1)
            return NAN;
        break;
    case QS_MF_FNUZ:
        if (sign && fe == 0 && fm == 0)
            return NAN;
        break;
    case QS_MF_FINITE:
        break;
    }
    if (fe == 0)
        return s * ldexp((double)fm, f->emin - M);
    return s * ldexp((double)((1u << M) | fm), (int)fe - f->bias - M);
}

/* The finite magnitude a (>= 0) as a code without its sign. */
static uint32_t encode_mag(const qs_mf_t *f, double a)
{
    const int M = f->man_bits;
    if (a == 0.0)
        return 0;
    if (a < ldexp(1.0, f->emin))
        return (uint32_t)ldexp(a, M - f->emin); /* exact: a is a multiple of the subnormal quantum */
    int ex;
    frexp(a, &ex); /* a in [2^(ex-1), 2^ex) */
    const int e = ex - 1;
    const uint32_t man = (uint32_t)ldexp(a, M - e) - (1u << M);
    return ((uint32_t)(e + f->bias) << M) | man;
}

uint32_t qs_mf_encode(const qs_mf_t *f, double x, qs_mf_round_t mode, double u, bool saturate, bool *overflowed)
{
    if (overflowed)
        *overflowed = false;
    const uint32_t sign = signbit(x) ? 1u << (f->bits - 1) : 0;
    const bool has_nan = f->conv != QS_MF_FINITE;
    if (isnan(x))
        return has_nan ? qs_mf_nan(f) : (sign | encode_mag(f, f->max));
    double a = fabs(x);
    double r;
    if (isinf(a)) {
        r = INFINITY;
    } else {
        int ex;
        frexp(a, &ex);
        int k = ex - 1 < f->emin ? f->emin : ex - 1;
        double q = ldexp(1.0, k - f->man_bits); /* the quantum of a's binade */
        double t = a / q;                        /* exact: a power-of-two scaling */
        switch (mode) {
        case QS_MF_TOWARD_ZERO:
            t = floor(t);
            break;
        case QS_MF_STOCHASTIC: /* rounds up with probability frac(t): u in [0, 1) */
            t = floor(t + u) > floor(t) ? floor(t) + 1.0 : floor(t);
            break;
        case QS_MF_NEAREST_EVEN:
        default:
            t = nearbyint(t); /* the default rounding mode: ties to even */
            break;
        }
        r = t * q;
    }
    if (r > f->max) {
        if (overflowed)
            *overflowed = true;
        if (saturate || f->conv == QS_MF_FINITE)
            return sign | encode_mag(f, f->max);
        if (f->conv == QS_MF_IEEE)
            return sign | ((uint32_t)((1 << f->exp_bits) - 1) << f->man_bits);
        return qs_mf_nan(f);
    }
    if (r == 0.0 && f->conv == QS_MF_FNUZ)
        return 0; /* no negative zero: 1.0…0 is NaN */
    return sign | encode_mag(f, r);
}

double qs_mf_round(const qs_mf_t *f, double x, qs_mf_round_t mode, double u, bool saturate)
{
    return qs_mf_decode(f, qs_mf_encode(f, x, mode, u, saturate, NULL));
}

const char *qs_mf_name_of(int exp_bits, int man_bits, qs_mf_conv_t conv)
{
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (named[i].e == exp_bits && named[i].m == man_bits && named[i].conv == conv)
            return named[i].name;
    return NULL;
}
