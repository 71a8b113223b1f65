/* quant/round.c — the rounding modes of quasar (docs/arithmetic.md,
 * "Rounding modes"): deterministic rounding of any double to an integral
 * value, exact for every input, and stochastic rounding with a given number
 * of random bits.
 *
 * These scalar functions are the reference: the vectorised kernels of
 * quant/uniform.c are tested against them. Conventions kept by every mode:
 * NaN passes through, ±Inf and every |v| >= 2^52 (already integral) come back
 * unchanged, and a result of zero carries the sign of v (as IEEE rint, trunc
 * and ceil do), so -0.3 rounds to -0.0 under nearest-even. */
#include "quant/quant.h"

#include <math.h>

static const char *const round_names[QS_ROUND_COUNT] = {
    "nearest-even", "nearest-away", "nearest-up",     "nearest-down", "nearest-zero", "floor",
    "ceil",         "toward-zero",  "away-from-zero", "odd",          "stochastic",
};

const char *qs_round_name(qs_round_mode_t m)
{
    if ((int)m < 0 || m >= QS_ROUND_COUNT)
        return "unknown";
    return round_names[m];
}

/* Above 2^52 every double is an integer (its ulp is at least 1). */
#define TWO52 4503599627370496.0

static double signed_zero(double r, double v) { return r == 0.0 ? copysign(0.0, v) : r; }

double qs_round_det(double v, qs_round_mode_t m)
{
    if (isnan(v) || !(fabs(v) < TWO52))
        return v;
    /* floor is exact; fl + 0.5 and fl + 1 are exact for |v| < 2^52 (the ulp
     * there is at most 1/2), so every tie test below is an exact comparison.
     * (v - fl is not exact for tiny negative v, hence no subtraction.) */
    double fl = floor(v);
    double mid = fl + 0.5;
    double up = fl + 1.0;
    double r;
    switch (m) {
    case QS_ROUND_NEAREST_AWAY:
        r = v < mid ? fl : v > mid ? up : (v > 0 ? up : fl);
        break;
    case QS_ROUND_NEAREST_UP:
        r = v < mid ? fl : up;
        break;
    case QS_ROUND_NEAREST_DOWN:
        r = v > mid ? up : fl;
        break;
    case QS_ROUND_NEAREST_ZERO:
        r = v < mid ? fl : v > mid ? up : (v > 0 ? fl : up);
        break;
    case QS_ROUND_FLOOR:
        r = fl;
        break;
    case QS_ROUND_CEIL:
        r = fl == v ? fl : up;
        break;
    case QS_ROUND_TOWARD_ZERO:
        r = (fl == v || v > 0) ? fl : up;
        break;
    case QS_ROUND_AWAY_FROM_ZERO:
        r = (fl == v || v < 0) ? fl : up;
        break;
    case QS_ROUND_ODD:
        /* exact values stay; otherwise the odd one of the two neighbours,
         * which is "truncate the magnitude, then set its last bit" */
        if (fl == v)
            r = fl;
        else
            r = fmod(fl, 2.0) == 0.0 ? up : fl;
        break;
    case QS_ROUND_NEAREST_EVEN:
    default: /* stochastic is not deterministic: qs_round_det treats it as nearest-even */
        r = v < mid ? fl : v > mid ? up : (fmod(fl, 2.0) == 0.0 ? fl : up);
        break;
    }
    return signed_zero(r, v);
}

double qs_round_stoch(double v, uint32_t r, int rbits)
{
    if (isnan(v) || !(fabs(v) < TWO52))
        return v;
    if (rbits < 1 || rbits > 32)
        rbits = 32;
    double fl = floor(v);
    double scale = ldexp(1.0, rbits);
    /* thr = floor(frac(v) * 2^rbits), exactly. v - fl is exact unless
     * -1 < v < 0 (then 1 + v may need more than 53 bits); there
     * floor((1 + v) 2^k) = 2^k - ceil(-v 2^k), with -v 2^k an exact scaling. */
    double thr;
    if (v < 0 && v > -1.0)
        thr = scale - ceil(-v * scale);
    else
        thr = floor((v - fl) * scale);
    double u = (double)(r >> (32 - rbits));
    double res = u < thr ? fl + 1.0 : fl;
    return signed_zero(res, v);
}

double qs_round(const qs_rounding_t *r, double v, uint64_t index)
{
    if (r->mode == QS_ROUND_STOCHASTIC)
        return qs_round_stoch(v, qs_rng_u32(r->seed, r->stream, index), r->rbits);
    return qs_round_det(v, r->mode);
}
