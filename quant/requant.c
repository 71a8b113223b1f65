/* quant/requant.c — requantization (docs/arithmetic.md, "Requantization"):
 * from an accumulator at scale s_w·s_x to an output code at s_y, with the
 * multiplier and the rounding of a target: float64 (ideal), float32,
 * gemmlowp/TFLite fixed point (double or single rounding), power-of-two
 * shifts, and presets reproducing gemmlowp, QNNPACK and oneDNN. */
#include "quant/quant.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const kind_names[] = {"float64", "float32", "fixed-point", "shift", NULL};
static const char *const preset_names[] = {"custom", "gemmlowp", "qnnpack", "onednn", NULL};
static const char *const requant_forms[] = {"float64", "float32", "fixed-point", "shift",
                                            "gemmlowp", "qnnpack", "onednn", NULL};
static const char *const rounding_names[] = {"double", "single", NULL};
static const char *const mult_names[] = {"divide", "reciprocal", NULL};
static const char *const bias_names[] = {"int", "float", NULL};
static const char *const zp_names[] = {"after", "before", NULL};
#define REQUANT_KEYS "requant, round, rounding, mult, bias, out-zp"

static qs_round_mode_t default_round(qs_rq_kind_t k, bool single)
{
    switch (k) {
    case QS_RQ_FIXED: return single ? QS_ROUND_NEAREST_UP : QS_ROUND_NEAREST_AWAY;
    case QS_RQ_SHIFT: return QS_ROUND_NEAREST_UP;
    default: return QS_ROUND_NEAREST_EVEN;
    }
}

static void set_preset(qs_requant_t *r, qs_rq_preset_t p)
{
    memset(r, 0, sizeof *r);
    r->preset = p;
    switch (p) {
    case QS_RQ_GEMMLOWP: r->kind = QS_RQ_FIXED; break;
    case QS_RQ_QNNPACK: r->kind = QS_RQ_FLOAT32, r->reciprocal = true; break;
    case QS_RQ_ONEDNN: r->kind = QS_RQ_FLOAT32, r->reciprocal = r->float_bias = r->zp_before = true; break;
    default: r->kind = QS_RQ_FLOAT64; break;
    }
    r->round = default_round(r->kind, false);
}

void qs_requant_default(qs_requant_t *r) { set_preset(r, QS_RQ_CUSTOM); }

int qs_requant_parse(const char *spec, const char *what, qs_requant_t *r)
{
    what = what && *what ? what : "requantizer";
    if (!r)
        return qs_error(QS_ERR_INVALID, "%s: no requantizer given", what);
    qs_kv_t kv;
    int rc = qs_kv_parse(spec ? spec : "", what, &kv);
    if (rc < 0)
        return rc;
    qs_requant_t t = *r;
    int round_at = -1, float_only = -1;
    for (int i = 0; i < kv.count; i++) {
        const char *k = kv.item[i].key, *v = kv.item[i].value;
        int idx;
        if (kv.item[i].bare) { /* "gemmlowp" alone is requant=gemmlowp */
            v = k;
            k = "requant";
        }
        if (strcmp(k, "requant") == 0) {
            if ((rc = qs_kv_choice(what, k, v, requant_forms, &idx)) < 0)
                return rc;
            if (idx < QS_RQ_COUNT) {
                set_preset(&t, QS_RQ_CUSTOM);
                t.kind = (qs_rq_kind_t)idx;
                t.round = default_round(t.kind, false);
            } else {
                set_preset(&t, (qs_rq_preset_t)(idx - QS_RQ_COUNT + 1));
            }
            continue;
        }
        t.preset = QS_RQ_CUSTOM; /* a key after a preset makes a variant of it */
        if (strcmp(k, "round") == 0) {
            const char *names[QS_ROUND_COUNT];
            for (int m = 0; m < QS_ROUND_STOCHASTIC; m++)
                names[m] = qs_round_name((qs_round_mode_t)m);
            names[QS_ROUND_STOCHASTIC] = NULL;
            if ((rc = qs_kv_choice(what, k, v, names, &idx)) < 0)
                return rc;
            t.round = (qs_round_mode_t)idx;
            round_at = i;
        } else if (strcmp(k, "rounding") == 0) {
            if ((rc = qs_kv_choice(what, k, v, rounding_names, &idx)) < 0)
                return rc;
            if (t.kind != QS_RQ_FIXED)
                return qs_error(QS_ERR_INVALID, "%s: key 'rounding' applies to requant=fixed-point only", what);
            t.single = idx == 1;
            if (round_at < 0)
                t.round = default_round(t.kind, t.single);
        } else if (strcmp(k, "mult") == 0) {
            if ((rc = qs_kv_choice(what, k, v, mult_names, &idx)) < 0)
                return rc;
            t.reciprocal = idx == 1;
            float_only = i;
        } else if (strcmp(k, "bias") == 0) {
            if ((rc = qs_kv_choice(what, k, v, bias_names, &idx)) < 0)
                return rc;
            t.float_bias = idx == 1;
            float_only = i;
        } else if (strcmp(k, "out-zp") == 0) {
            if ((rc = qs_kv_choice(what, k, v, zp_names, &idx)) < 0)
                return rc;
            t.zp_before = idx == 1;
            float_only = i;
        } else {
            return qs_error(QS_ERR_INVALID, "%s: unknown key '%s' (keys: " REQUANT_KEYS ")", what, k);
        }
    }
    if (float_only >= 0 && t.kind != QS_RQ_FLOAT32)
        return qs_error(QS_ERR_INVALID, "%s: key '%s' applies to requant=float32 only", what,
                        kv.item[float_only].key);
    *r = t;
    return QS_OK;
}

char *qs_requant_str(const qs_requant_t *r, char *buf, size_t n)
{
    if (!buf || !n)
        return buf;
    if (r->preset != QS_RQ_CUSTOM)
        snprintf(buf, n, "requant=%s", preset_names[r->preset]);
    else if (r->kind == QS_RQ_FIXED)
        snprintf(buf, n, "requant=fixed-point,rounding=%s,round=%s", rounding_names[r->single],
                 qs_round_name(r->round));
    else if (r->kind == QS_RQ_FLOAT32)
        snprintf(buf, n, "requant=float32,round=%s,mult=%s,bias=%s,out-zp=%s", qs_round_name(r->round),
                 mult_names[r->reciprocal], bias_names[r->float_bias], zp_names[r->zp_before]);
    else
        snprintf(buf, n, "requant=%s,round=%s", kind_names[r->kind], qs_round_name(r->round));
    return buf;
}

/* ---- fixed point ---- */

void qs_quantize_multiplier(double m, bool single, int32_t *m0, int *shift)
{
    *m0 = 0;
    *shift = 0;
    if (!(m > 0.0) || !isfinite(m))
        return;
    int s;
    double q = frexp(m, &s); /* m = q·2^s, q in [0.5, 1) */
    double f = round(q * 2147483648.0); /* ties away from zero */
    if (f == 2147483648.0) {
        f /= 2;
        s++;
    }
    if (s < -31) {
        f = 0;
        s = 0;
    }
    if (single && s > 30) {
        s = 30;
        f = 2147483647.0;
    }
    *m0 = (int32_t)f;
    *shift = s;
}

int32_t qs_srdhm(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN)
        return INT32_MAX;
    int64_t ab = (int64_t)a * b;
    int64_t nudge = ab >= 0 ? (INT64_C(1) << 30) : 1 - (INT64_C(1) << 30);
    return (int32_t)((ab + nudge) / (INT64_C(1) << 31)); /* C division truncates toward zero */
}

int32_t qs_rdbpot(int32_t x, int e)
{
    int64_t mask = (INT64_C(1) << e) - 1;
    int64_t rem = (int64_t)x & mask;
    int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (int32_t)(((int64_t)x >> e) + (rem > threshold ? 1 : 0));
}

int64_t qs_round_shift(__int128 v, int e, qs_round_mode_t m)
{
    __int128 r;
    if (e <= 0) {
        r = v;
    } else {
        __int128 fl = v >> e; /* arithmetic: floor */
        __int128 rem = v - fl * ((__int128)1 << e), half = (__int128)1 << (e - 1);
        bool neg = v < 0, odd = (fl & 1) != 0;
        switch (m) {
        case QS_ROUND_FLOOR: r = fl; break;
        case QS_ROUND_CEIL: r = rem ? fl + 1 : fl; break;
        case QS_ROUND_TOWARD_ZERO: r = rem && neg ? fl + 1 : fl; break;
        case QS_ROUND_AWAY_FROM_ZERO: r = rem && !neg ? fl + 1 : fl; break;
        case QS_ROUND_ODD: r = rem && !odd ? fl + 1 : fl; break;
        default: /* nearest: below, above, or a tie */
            if (rem < half)
                r = fl;
            else if (rem > half)
                r = fl + 1;
            else {
                switch (m) {
                case QS_ROUND_NEAREST_AWAY: r = neg ? fl : fl + 1; break;
                case QS_ROUND_NEAREST_UP: r = fl + 1; break;
                case QS_ROUND_NEAREST_DOWN: r = fl; break;
                case QS_ROUND_NEAREST_ZERO: r = neg ? fl + 1 : fl; break;
                default: r = odd ? fl + 1 : fl; break; /* nearest-even */
                }
            }
        }
    }
    return r > INT64_MAX ? INT64_MAX : r < INT64_MIN ? INT64_MIN : (int64_t)r;
}

/* ---- one channel ---- */

int qs_requant_channel(const qs_requant_t *r, float s_x, float s_w, float s_y, int32_t zp, int32_t qmin,
                       int32_t qmax, qs_rq_channel_t *c)
{
    memset(c, 0, sizeof *c);
    if (!(s_x > 0) || !(s_w > 0) || !(s_y > 0) || !isfinite(s_x) || !isfinite(s_w) || !isfinite(s_y))
        return qs_error(QS_ERR_INVALID, "requantization: scales must be positive and finite (s_x %g, s_w %g, s_y %g)",
                        (double)s_x, (double)s_w, (double)s_y);
    c->r = r;
    c->zp = zp;
    c->qmin = qmin;
    c->qmax = qmax;
    /* the product of two float32 is exact in float64: M is rounded once */
    c->m64 = (double)s_w * (double)s_x / (double)s_y;
    float sws = (float)((double)s_w * (double)s_x);
    if (r->reciprocal)
        c->m32 = sws * (1.0f / s_y);
    else
        c->m32 = (float)c->m64;
    c->bias_mul = 1.0f / sws;
    if (r->kind == QS_RQ_FIXED)
        qs_quantize_multiplier(c->m64, r->single, &c->m0, &c->shift);
    else if (r->kind == QS_RQ_SHIFT)
        c->shift = (int)floor(log2(c->m64) + 0.5);
    return QS_OK;
}

static int32_t clamp_code(const qs_rq_channel_t *c, int64_t q)
{
    return q < c->qmin ? c->qmin : q > c->qmax ? c->qmax : (int32_t)q;
}

/* round(v) + z (or round(v) when z is already in), clamped; NaN gives z. */
static int32_t from_real(const qs_rq_channel_t *c, double v, bool zp_in)
{
    if (isnan(v))
        return clamp_code(c, c->zp);
    double q = qs_round_det(v, c->r->round) + (zp_in ? 0.0 : (double)c->zp);
    if (q <= (double)c->qmin)
        return c->qmin;
    if (q >= (double)c->qmax)
        return c->qmax;
    return (int32_t)q;
}

static int32_t sat32(int64_t v) { return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v; }

int32_t qs_requant_apply(const qs_rq_channel_t *c, int64_t acc, float fbias)
{
    const qs_requant_t *r = c->r;
    switch (r->kind) {
    case QS_RQ_FLOAT32: {
        float a = (float)acc;
        if (r->float_bias)
            a = a + fbias * c->bias_mul;
        float v = a * c->m32;
        if (r->zp_before)
            v = v + (float)c->zp;
        return from_real(c, (double)v, r->zp_before);
    }
    case QS_RQ_FIXED: {
        int32_t x = sat32(acc), y;
        if (r->single) {
            y = sat32(qs_round_shift((__int128)x * c->m0, 31 - c->shift, r->round));
        } else {
            int left = c->shift > 0 ? c->shift : 0, right = c->shift > 0 ? 0 : -c->shift;
            int32_t h = qs_srdhm(sat32((int64_t)x * ((int64_t)1 << left)), c->m0);
            y = right <= 31 ? sat32(qs_round_shift(h, right, r->round)) : 0;
        }
        return clamp_code(c, (int64_t)y + c->zp);
    }
    case QS_RQ_SHIFT: {
        int64_t y;
        if (c->shift >= 0) {
            __int128 p = (__int128)acc * ((__int128)1 << (c->shift > 62 ? 62 : c->shift));
            y = p > INT64_MAX ? INT64_MAX : p < INT64_MIN ? INT64_MIN : (int64_t)p;
        } else {
            y = qs_round_shift(acc, -c->shift > 126 ? 126 : -c->shift, r->round);
        }
        return clamp_code(c, (int64_t)sat32(y) + c->zp);
    }
    default:
        return from_real(c, (double)acc * c->m64, false);
    }
}
