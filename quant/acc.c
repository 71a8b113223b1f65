/* quant/acc.c — accumulator models (docs/arithmetic.md, "Accumulators"):
 * integer registers of 2..64 bits that wrap, saturate or never overflow,
 * chunked accumulation in an inner register, float accumulators in any ExMy
 * with promotion to float32, both zero-point forms of a dot product, the
 * accumulator grammar (docs/spec.md) and the guaranteed widths (A2Q, A2Q+).
 *
 * These functions are the reference of the integer engine: every term is
 * added one at a time, in the documented order. */
#include "quant/quant_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const acc_overflow_names[] = {"wrap", "saturate", "exact", NULL};
static const char *const zp_form_names[] = {"subtract", "expand", NULL};
static const char *const acc_forms[] = {"int2..int64", "exact", "fp32", "fp16", "bf16", "eXmY (E 2..8, M 1..23)",
                                        NULL};

void qs_acc_default(qs_acc_t *a)
{
    memset(a, 0, sizeof *a);
    a->kind = QS_ACC_INT;
    a->bits = 32;
    a->overflow = QS_ACC_WRAP;
    a->chunk = 0;
    a->chunk_bits = 16;
    a->chunk_overflow = QS_ACC_SATURATE;
    a->zp_form = QS_ZP_SUBTRACT;
    a->exp_bits = 8;
    a->man_bits = 23;
    a->promote = 0;
}

int qs_acc_validate(const qs_acc_t *a)
{
    if (!a)
        return qs_error(QS_ERR_INVALID, "accumulator: none given");
    if (a->kind == QS_ACC_INT) {
        if (a->bits < 2 || a->bits > 64)
            return qs_error(QS_ERR_INVALID, "accumulator: width %d out of range 2..64", a->bits);
        if (a->chunk < 0)
            return qs_error(QS_ERR_INVALID, "accumulator: chunk %d must be >= 0", a->chunk);
        if (a->chunk > 0 && (a->chunk_bits < 2 || a->chunk_bits > 64))
            return qs_error(QS_ERR_INVALID, "accumulator: chunk-acc width %d out of range 2..64", a->chunk_bits);
        if (a->promote)
            return qs_error(QS_ERR_INVALID, "accumulator: promote= applies to float accumulators (use chunk= "
                                            "for integer ones)");
    } else {
        if (a->exp_bits < 2 || a->exp_bits > 8 || a->man_bits < 1 || a->man_bits > 23)
            return qs_error(QS_ERR_INVALID, "accumulator: float e%dm%d out of range (E 2..8, M 1..23)", a->exp_bits,
                            a->man_bits);
        if (a->promote < 0)
            return qs_error(QS_ERR_INVALID, "accumulator: promote %d must be >= 0", a->promote);
        if (a->chunk)
            return qs_error(QS_ERR_INVALID, "accumulator: chunk= applies to integer accumulators (use promote= "
                                            "for float ones)");
    }
    return QS_OK;
}

/* "int16" -> 16; "e5m10" -> (5, 10); fp32/fp16/bf16. Returns 1 int, 2 float, 3 exact, 0 unknown. */
static int acc_type(const char *v, int *bits, int *e, int *m)
{
    char tail;
    if (strcmp(v, "exact") == 0)
        return 3;
    if (strcmp(v, "fp32") == 0)
        return *e = 8, *m = 23, 2;
    if (strcmp(v, "fp16") == 0)
        return *e = 5, *m = 10, 2;
    if (strcmp(v, "bf16") == 0)
        return *e = 8, *m = 7, 2;
    if (sscanf(v, "int%d%c", bits, &tail) == 1 && strncmp(v, "int", 3) == 0 && v[3] >= '0' && v[3] <= '9')
        return 1;
    if (sscanf(v, "e%dm%d%c", e, m, &tail) == 2 && v[1] >= '0' && v[1] <= '9')
        return 2;
    return 0;
}

int qs_acc_parse(const char *spec, const char *what, qs_acc_t *a)
{
    what = what && *what ? what : "accumulator";
    if (!a)
        return qs_error(QS_ERR_INVALID, "%s: no accumulator given", what);
    qs_kv_t kv;
    int rc = qs_kv_parse(spec ? spec : "", what, &kv);
    if (rc < 0)
        return rc;
    qs_acc_t t = *a;
    for (int i = 0; i < kv.count; i++) {
        const char *k = kv.item[i].key, *v = kv.item[i].value;
        int idx, bits = 0, e = 0, m = 0;
        int64_t n;
        if (kv.item[i].bare) {
            /* "int16" alone is acc=int16 */
            int ty = acc_type(k, &bits, &e, &m);
            if (!ty)
                return qs_error(QS_ERR_INVALID, "%s: unknown word '%s': write key=value (keys: acc, overflow, "
                                "chunk, chunk-acc, chunk-overflow, zp-form, promote)", what, k);
            v = k;
            k = "acc";
        }
        if (strcmp(k, "acc") == 0) {
            int ty = acc_type(v, &bits, &e, &m);
            if (ty == 1 && (bits < 2 || bits > 64))
                return qs_error(QS_ERR_INVALID, "%s: key 'acc': width %d out of range 2..64", what, bits);
            if (ty == 2 && (e < 2 || e > 8 || m < 1 || m > 23))
                return qs_error(QS_ERR_INVALID, "%s: key 'acc': float e%dm%d out of range (E 2..8, M 1..23)",
                                what, e, m);
            if (ty != 2)
                t.promote = 0;
            if (ty == 1)
                t.kind = QS_ACC_INT, t.bits = bits;
            else if (ty == 2)
                t.kind = QS_ACC_FLOAT, t.exp_bits = e, t.man_bits = m, t.chunk = 0;
            else if (ty == 3)
                t.kind = QS_ACC_INT, t.bits = 64, t.overflow = QS_ACC_EXACT;
            else
                return qs_spec_bad_value(what, k, v, acc_forms);
        } else if (strcmp(k, "overflow") == 0) {
            if ((rc = qs_kv_choice(what, k, v, acc_overflow_names, &idx)) < 0)
                return rc;
            t.overflow = (qs_acc_overflow_t)idx;
        } else if (strcmp(k, "chunk") == 0) {
            if ((rc = qs_kv_int(what, k, v, 0, INT32_MAX, &n)) < 0)
                return rc;
            t.chunk = (int)n;
        } else if (strcmp(k, "chunk-acc") == 0) {
            if (acc_type(v, &bits, &e, &m) != 1)
                return qs_spec_bad_value(what, k, v, (const char *const[]){"int2..int64", NULL});
            if (bits < 2 || bits > 64)
                return qs_error(QS_ERR_INVALID, "%s: key 'chunk-acc': width %d out of range 2..64", what, bits);
            t.chunk_bits = bits;
        } else if (strcmp(k, "chunk-overflow") == 0) {
            if ((rc = qs_kv_choice(what, k, v, acc_overflow_names, &idx)) < 0)
                return rc;
            t.chunk_overflow = (qs_acc_overflow_t)idx;
        } else if (strcmp(k, "zp-form") == 0) {
            if ((rc = qs_kv_choice(what, k, v, zp_form_names, &idx)) < 0)
                return rc;
            t.zp_form = (qs_zp_form_t)idx;
        } else if (strcmp(k, "promote") == 0) {
            if ((rc = qs_kv_int(what, k, v, 0, INT32_MAX, &n)) < 0)
                return rc;
            t.promote = (int)n;
        } else {
            return qs_error(QS_ERR_INVALID, "%s: unknown key '%s' (keys: acc, overflow, chunk, chunk-acc, "
                            "chunk-overflow, zp-form, promote)", what, k);
        }
    }
    if ((rc = qs_acc_validate(&t)) < 0)
        return qs_error_context("%s '%s': ", what, spec ? spec : "");
    *a = t;
    return QS_OK;
}

char *qs_acc_str(const qs_acc_t *a, char *buf, size_t n)
{
    if (!buf || !n)
        return buf;
    if (a->kind == QS_ACC_FLOAT) {
        snprintf(buf, n, "acc=e%dm%d,promote=%d,zp-form=%s", a->exp_bits, a->man_bits, a->promote,
                 zp_form_names[a->zp_form]);
    } else if (a->chunk > 0) {
        snprintf(buf, n, "acc=int%d,overflow=%s,chunk=%d,chunk-acc=int%d,chunk-overflow=%s,zp-form=%s", a->bits,
                 acc_overflow_names[a->overflow], a->chunk, a->chunk_bits, acc_overflow_names[a->chunk_overflow],
                 zp_form_names[a->zp_form]);
    } else {
        snprintf(buf, n, "acc=int%d,overflow=%s,zp-form=%s", a->bits, acc_overflow_names[a->overflow],
                 zp_form_names[a->zp_form]);
    }
    return buf;
}

/* ---- the integer register ---- */

int64_t qs_acc_add(int64_t acc, int64_t t, int bits, qs_acc_overflow_t ov, bool *overflowed)
{
    __int128 s = (__int128)acc + t;
    __int128 hi = ov == QS_ACC_EXACT || bits >= 64 ? (__int128)INT64_MAX : (((__int128)1 << (bits - 1)) - 1);
    __int128 lo = -hi - 1;
    bool out = s > hi || s < lo;
    if (overflowed)
        *overflowed = out;
    if (!out)
        return (int64_t)s;
    if (ov == QS_ACC_SATURATE || ov == QS_ACC_EXACT) /* exact past int64: the container saturates */
        return s > hi ? (int64_t)hi : (int64_t)lo;
    /* wrap: two's complement of `bits` */
    unsigned __int128 u = (unsigned __int128)s;
    int sh = 128 - bits;
    return (int64_t)((__int128)(u << sh) >> sh);
}

double qs_minifloat_round(double v, int e, int m)
{
    qs_mf_t f;
    if (qs_mf_init(&f, e, m, QS_MF_IEEE) < 0) /* the accumulator grammar keeps E, M in range */
        return NAN;
    return qs_mf_round(&f, v, QS_MF_NEAREST_EVEN, 0.0, false);
}

int qs_acc_bits_for(int64_t m)
{
    /* smallest b with -2^(b-1) <= -m and m <= 2^(b-1) - 1 */
    int b = 1;
    while (b < 64 && (uint64_t)m > (((uint64_t)1 << (b - 1)) - 1))
        b++;
    return b;
}

/* ---- one dot product, term by term ---- */

typedef struct {
    const qs_acc_t *a;
    __int128 exact;
    unsigned __int128 max_abs;
    int64_t events;
    int64_t outer, inner; /* integer registers */
    double fouter, finner; /* float: the float32 outer, the ExMy register */
    int64_t in_chunk;
} feed_t;

static void feed_init(feed_t *f, const qs_acc_t *a)
{
    memset(f, 0, sizeof *f);
    f->a = a;
}

static void track(feed_t *f, int64_t t)
{
    f->exact += t;
    unsigned __int128 m = f->exact < 0 ? (unsigned __int128)(-f->exact) : (unsigned __int128)f->exact;
    if (m > f->max_abs)
        f->max_abs = m;
}

static double float_add(feed_t *f, double acc, double t, int e, int m)
{
    double r = qs_minifloat_round(acc + t, e, m);
    if (!isfinite(r) && isfinite(acc) && isfinite(t))
        f->events++;
    return r;
}

/* The partial chunk (or promotion group) goes to the outer register. */
static void flush(feed_t *f)
{
    const qs_acc_t *a = f->a;
    if (!f->in_chunk)
        return;
    bool o;
    if (a->kind == QS_ACC_INT) {
        f->outer = qs_acc_add(f->outer, f->inner, a->bits, a->overflow, &o);
        f->events += o;
        f->inner = 0;
    } else if (a->promote > 0) {
        f->fouter = float_add(f, f->fouter, f->finner, 8, 23);
        f->finner = 0.0;
    }
    f->in_chunk = 0;
}

static void feed_product(feed_t *f, int64_t t)
{
    const qs_acc_t *a = f->a;
    bool o;
    track(f, t);
    if (a->kind == QS_ACC_INT) {
        if (a->chunk > 0) {
            f->inner = qs_acc_add(f->inner, t, a->chunk_bits, a->chunk_overflow, &o);
            f->events += o;
            if (++f->in_chunk == a->chunk)
                flush(f);
        } else {
            f->outer = qs_acc_add(f->outer, t, a->bits, a->overflow, &o);
            f->events += o;
        }
        return;
    }
    double p = qs_minifloat_round((double)t, a->exp_bits, a->man_bits);
    if (!isfinite(p))
        f->events++;
    f->finner = float_add(f, f->finner, p, a->exp_bits, a->man_bits);
    if (a->promote > 0 && ++f->in_chunk == a->promote)
        flush(f);
    else if (a->promote == 0)
        f->in_chunk = 1;
}

/* A correction or the bias: one term, straight into the outer register. */
static void feed_term(feed_t *f, int64_t t)
{
    const qs_acc_t *a = f->a;
    bool o;
    if (a->kind == QS_ACC_INT) {
        flush(f);
        track(f, t);
        f->outer = qs_acc_add(f->outer, t, a->bits, a->overflow, &o);
        f->events += o;
        return;
    }
    track(f, t);
    if (a->promote > 0) {
        flush(f);
        f->fouter = float_add(f, f->fouter, qs_minifloat_round((double)t, 8, 23), 8, 23);
    } else {
        f->finner = float_add(f, f->finner, qs_minifloat_round((double)t, a->exp_bits, a->man_bits), a->exp_bits,
                              a->man_bits);
    }
}

static void feed_finish(feed_t *f, qs_acc_result_t *r)
{
    const qs_acc_t *a = f->a;
    flush(f);
    r->events = f->events;
    r->exact = f->exact > INT64_MAX ? INT64_MAX : f->exact < INT64_MIN ? INT64_MIN : (int64_t)f->exact;
    r->max_abs = f->max_abs > (unsigned __int128)INT64_MAX ? INT64_MAX : (int64_t)f->max_abs;
    if (a->kind == QS_ACC_INT) {
        r->value = f->outer;
        r->fvalue = (double)f->outer;
        return;
    }
    double v = a->promote > 0 ? f->fouter : f->finner;
    r->fvalue = v;
    if (isnan(v))
        r->value = 0;
    else if (v >= 9223372036854775807.0)
        r->value = INT64_MAX;
    else if (v <= -9223372036854775808.0)
        r->value = INT64_MIN;
    else
        r->value = (int64_t)v; /* integral: sums of integer products stay integers */
}

void qs_acc_dot(const qs_acc_t *a, const int32_t *x, int64_t xs, const int32_t *w, int64_t ws, int64_t n,
                int32_t zx, int32_t zw, int64_t bias, qs_acc_result_t *r)
{
    feed_t f;
    feed_init(&f, a);
    if (a->zp_form == QS_ZP_SUBTRACT || (zx == 0 && zw == 0)) {
        for (int64_t k = 0; k < n; k++)
            feed_product(&f, ((int64_t)x[k * xs] - zx) * ((int64_t)w[k * ws] - zw));
    } else {
        int64_t sx = 0, sw = 0;
        for (int64_t k = 0; k < n; k++) {
            feed_product(&f, (int64_t)x[k * xs] * w[k * ws]);
            sx += x[k * xs];
            sw += w[k * ws];
        }
        if (zw)
            feed_term(&f, -(int64_t)zw * sx);
        if (zx)
            feed_term(&f, -(int64_t)zx * sw);
        if (zx && zw)
            feed_term(&f, n * (int64_t)zx * zw);
    }
    if (bias)
        feed_term(&f, bias);
    feed_finish(&f, r);
}

void qs_acc_sum(const qs_acc_t *a, const int64_t *t, int64_t n, qs_acc_result_t *r)
{
    feed_t f;
    feed_init(&f, a);
    for (int64_t k = 0; k < n; k++)
        feed_product(&f, t[k]);
    feed_finish(&f, r);
}

/* ---- guaranteed widths (Colbert et al., A2Q, ICCV 2023; A2Q+, ICML 2024) ---- */

/* P = ceil(alpha + log2(1 + 2^-alpha) + 1) with 2^alpha = v·2^e, computed
 * exactly: the smallest P with 2^(P-1) >= v·2^e + 1. */
static int width_pow(uint64_t v, int e)
{
    unsigned __int128 need = ((unsigned __int128)v << e) + 1;
    int p = 1;
    while (p < 127 && ((unsigned __int128)1 << (p - 1)) < need)
        p++;
    return p;
}

int qs_acc_width_datatype(int64_t k, int bx, int bw, bool x_signed)
{
    return width_pow((uint64_t)(k < 1 ? 1 : k), bx + bw - 1 - (x_signed ? 1 : 0));
}

int qs_acc_width_a2q(int64_t l1, int bx, bool x_signed)
{
    return l1 <= 0 ? 1 : width_pow((uint64_t)l1, bx - (x_signed ? 1 : 0));
}

int qs_acc_width_a2qplus(int64_t l1, int bx)
{
    if (l1 <= 0)
        return 1;
    /* P = ceil(log2(l1 (2^N - 1) + 2)), exactly: the smallest P with 2^P >= l1 (2^N - 1) + 2 */
    unsigned __int128 need = (unsigned __int128)l1 * (((unsigned __int128)1 << bx) - 1) + 2;
    int p = 0;
    while (p < 127 && ((unsigned __int128)1 << p) < need)
        p++;
    return p;
}
