/* quant/spec.c — the quantizer spec grammar (docs/spec.md): reads words such
 * as "int4,gran=channel,range=mse,round=stochastic:7" into a qs_quantizer_t
 * and prints a quantizer back as its canonical string.  Every command, the
 * YAML experiment spec and the sweep axes go through these functions, so this
 * file is the single place where a key or a value name is spelt.  Rounding
 * names come from round.c (qs_round_name); the other name tables live here. */
#include "quant/quant_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Canonical key order: qs_quantizer_str prints them in this order. */
static const char *const spec_keys[] = {"grid", "bits", "scheme", "gran", "range",
                                        "round", "overflow", "scale", "div", "block", NULL};
enum { K_GRID, K_BITS, K_SCHEME, K_GRAN, K_RANGE, K_ROUND, K_OVERFLOW, K_SCALE, K_DIV, K_BLOCK };

/* One table per enum, indexed by the enum value. */
static const char *const scheme_names[] = {"symmetric", "symmetric-narrow", "unsigned", "asymmetric",
                                           "asymmetric-signed", NULL};
static const char *const range_names[] = {"minmax", "percentile", "mse", "sqnr", "kl", "aciq", NULL};
static const char *const aciq_names[] = {"laplace", "gauss", NULL};
static const char *const overflow_names[] = {"saturate", "wrap", "format", NULL};
static const char *const scale_names[] = {"float", "pow2", "fp16", "bf16", "e8m0", "none", NULL};
static const char *const div_names[] = {"divide", "reciprocal", NULL};
/* What a value of gran, range and round may look like, for messages. */
static const char *const gran_forms[] = {"tensor", "channel", "channel:AXIS", "group:SIZE", "group:AXIS:SIZE", NULL};
static const char *const range_forms[] = {"minmax", "percentile",  "percentile:P", "mse",          "sqnr",
                                          "kl",     "aciq",        "aciq:laplace", "aciq:gauss", NULL};

#define QS_DEFAULT_PERCENTILE 99.99
#define QS_DEFAULT_RBITS 32
#define QS_MAX_GROUP INT64_C(2147483647)
/* Shorthands intN / uintN cover these widths (docs/spec.md). */
#define QS_SHORT_MIN_BITS 2
#define QS_SHORT_MAX_BITS 16

_Static_assert(sizeof scheme_names / sizeof *scheme_names == QS_SCHEME_COUNT + 1, "one name per scheme");
_Static_assert(sizeof range_names / sizeof *range_names == QS_RANGE_COUNT + 1, "one name per range method");
_Static_assert(sizeof scale_names / sizeof *scale_names == QS_SCALE_COUNT + 1, "one name per scale type");

const char *const *qs_quantizer_keys(void) { return spec_keys; }

static const char *what_or_default(const char *what) { return what && *what ? what : "quantizer"; }

/* "a, b, c" into buf. */
static void join_names(const char *const *names, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; names[i]; i++) {
        int w = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", names[i]);
        if (w < 0 || (size_t)w >= n - used)
            return;
        used += (size_t)w;
    }
}

int qs_spec_bad_value(const char *what, const char *key, const char *value, const char *const *forms)
{
    char list[640];
    join_names(forms, list, sizeof list);
    return qs_error(QS_ERR_INVALID, "%s: key '%s': unknown value '%s', expected one of: %s", what, key, value, list);
}

/* Splits "a:b:c" into at most max parts (in place, in buf); returns the
 * count, or -1 if there are too many or value does not fit in buf (a value
 * cut short could read as a different, valid one). */
static int split_colon(const char *value, char *buf, size_t n, char **parts, int max)
{
    if (strlen(value) >= n)
        return -1;
    snprintf(buf, n, "%s", value);
    int count = 0;
    char *p = buf;
    for (;;) {
        if (count == max)
            return -1;
        parts[count++] = p;
        char *c = strchr(p, ':');
        if (!c)
            break;
        *c = '\0';
        p = c + 1;
    }
    return count;
}

/* The rounding names, from round.c's single table. */
static void round_names(const char *names[QS_ROUND_COUNT + 1])
{
    for (int i = 0; i < QS_ROUND_COUNT; i++)
        names[i] = qs_round_name((qs_round_mode_t)i);
    names[QS_ROUND_COUNT] = NULL;
}

static int set_gran(qs_quantizer_t *q, const char *value, const char *what)
{
    char buf[64], *part[4];
    int n = split_colon(value, buf, sizeof buf, part, 4);
    int64_t axis = 0, size = 0;
    int rc;
    qs_granularity_t g = {QS_GRAN_TENSOR, 0, 0};
    if (n == 1 && strcmp(part[0], "tensor") == 0) {
        /* fields stay zero, so equal quantizers compare equal */
    } else if (n >= 1 && n <= 2 && strcmp(part[0], "channel") == 0) {
        /* per-channel defaults to axis 0: the output channel of OIHW and [out, in] weights */
        if (n == 2 && (rc = qs_kv_int(what, "gran", part[1], -QS_MAX_DIMS, QS_MAX_DIMS - 1, &axis)) < 0)
            return rc;
        g.kind = QS_GRAN_CHANNEL;
        g.axis = (int)axis;
    } else if ((n == 2 || n == 3) && strcmp(part[0], "group") == 0) {
        /* groups run along the reduction dimension: for a raw tensor, its last axis */
        axis = -1;
        if (n == 3 && (rc = qs_kv_int(what, "gran", part[1], -QS_MAX_DIMS, QS_MAX_DIMS - 1, &axis)) < 0)
            return rc;
        if ((rc = qs_kv_int(what, "gran", part[n - 1], 1, QS_MAX_GROUP, &size)) < 0)
            return rc;
        g.kind = QS_GRAN_GROUP;
        g.axis = (int)axis;
        g.group = size;
    } else {
        return qs_spec_bad_value(what, "gran", value, gran_forms);
    }
    q->gran = g;
    return QS_OK;
}

static int set_range(qs_quantizer_t *q, const char *value, const char *what)
{
    char buf[64], *part[3];
    int n = split_colon(value, buf, sizeof buf, part, 3);
    int idx = -1;
    for (int i = 0; n >= 1 && range_names[i]; i++)
        if (strcmp(part[0], range_names[i]) == 0)
            idx = i;
    qs_range_t r = {QS_RANGE_MINMAX, QS_DEFAULT_PERCENTILE, QS_ACIQ_LAPLACE};
    if (idx < 0 || n > 2 || (n == 2 && idx != QS_RANGE_PERCENTILE && idx != QS_RANGE_ACIQ))
        return qs_spec_bad_value(what, "range", value, range_forms);
    r.method = (qs_range_method_t)idx;
    int rc;
    if (n == 2 && idx == QS_RANGE_PERCENTILE) {
        if ((rc = qs_kv_double(what, "range", part[1], 0.0, 100.0, &r.percentile)) < 0)
            return rc;
        if (!(r.percentile > 0.0))
            return qs_error(QS_ERR_INVALID, "%s: key 'range': percentile must be in (0, 100], got '%s'", what,
                            part[1]);
    } else if (n == 2) {
        int d;
        if ((rc = qs_kv_choice(what, "range", part[1], aciq_names, &d)) < 0)
            return rc;
        r.dist = (qs_aciq_dist_t)d;
    }
    q->range = r;
    return QS_OK;
}

static int set_round(qs_quantizer_t *q, const char *value, const char *what)
{
    const char *names[QS_ROUND_COUNT + 1];
    round_names(names);
    char buf[64], *part[4];
    int n = split_colon(value, buf, sizeof buf, part, 4);
    int idx = -1;
    for (int i = 0; n >= 1 && names[i]; i++)
        if (strcmp(part[0], names[i]) == 0)
            idx = i;
    if (idx < 0 || n > 3 || (n > 1 && idx != QS_ROUND_STOCHASTIC)) {
        char list[512];
        join_names(names, list, sizeof list);
        return qs_error(QS_ERR_INVALID,
                        "%s: key 'round': unknown value '%s', expected one of: %s, stochastic:SEED, "
                        "stochastic:SEED:BITS",
                        what, value, list);
    }
    int64_t seed = 0, rbits = QS_DEFAULT_RBITS;
    int rc;
    if (n >= 2 && (rc = qs_kv_int(what, "round", part[1], 0, INT64_MAX, &seed)) < 0)
        return rc;
    if (n == 3 && (rc = qs_kv_int(what, "round", part[2], 1, 32, &rbits)) < 0)
        return rc;
    /* stream is the caller's (which tensor draws which bits), so it survives */
    q->round.mode = (qs_round_mode_t)idx;
    q->round.seed = (uint64_t)seed;
    q->round.rbits = (int)rbits;
    return QS_OK;
}

static int find_key(const char *key)
{
    for (int i = 0; spec_keys[i]; i++)
        if (strcmp(key, spec_keys[i]) == 0)
            return i;
    return -1;
}

static int unknown_key(const char *what, const char *key)
{
    char list[256];
    join_names(spec_keys, list, sizeof list);
    return qs_error(QS_ERR_INVALID, "%s: unknown key '%s' (expected one of: %s)", what, key, list);
}

int qs_quantizer_set(qs_quantizer_t *q, const char *key, const char *value, const char *what)
{
    what = what_or_default(what);
    if (!q || !key)
        return qs_error(QS_ERR_INVALID, "%s: no quantizer or key given", what);
    int k = find_key(key);
    if (k < 0)
        return unknown_key(what, key);
    if (!value || !*value)
        return qs_error(QS_ERR_INVALID, "%s: key '%s' has no value", what, key);
    int idx, rc;
    int64_t v;
    switch (k) {
    case K_GRID:
        return qs_grid_parse(q, value, what);
    case K_BLOCK:
        return qs_block_parse(q, value, what);
    case K_BITS:
        if ((rc = qs_kv_int(what, key, value, 1, 32, &v)) < 0)
            return rc;
        q->bits = (int)v;
        return QS_OK;
    case K_SCHEME:
        if ((rc = qs_kv_choice(what, key, value, scheme_names, &idx)) < 0)
            return rc;
        q->scheme = (qs_scheme_t)idx;
        return QS_OK;
    case K_GRAN:
        return set_gran(q, value, what);
    case K_RANGE:
        return set_range(q, value, what);
    case K_ROUND:
        return set_round(q, value, what);
    case K_OVERFLOW:
        if ((rc = qs_kv_choice(what, key, value, overflow_names, &idx)) < 0)
            return rc;
        q->overflow = (qs_overflow_t)idx;
        return QS_OK;
    case K_SCALE:
        if ((rc = qs_kv_choice(what, key, value, scale_names, &idx)) < 0)
            return rc;
        q->scale_type = (qs_scale_type_t)idx;
        return QS_OK;
    case K_DIV:
        if ((rc = qs_kv_choice(what, key, value, div_names, &idx)) < 0)
            return rc;
        q->div = (qs_div_t)idx;
        return QS_OK;
    default:
        return qs_error(QS_ERR_INTERNAL, "%s: key '%s' has no parser", what, key);
    }
}

/* intN / uintN: returns the bits (and sets *is_unsigned), 0 if word is not
 * of that form, -1 if it is but N is out of range. */
static int shorthand_bits(const char *word, bool *is_unsigned)
{
    const char *p = word;
    *is_unsigned = false;
    if (*p == 'u') {
        *is_unsigned = true;
        p++;
    }
    if (strncmp(p, "int", 3) != 0)
        return 0;
    p += 3;
    if (*p < '0' || *p > '9' || (*p == '0' && p[1]))
        return 0;
    long n = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        if (n < 1000)
            n = n * 10 + (*p - '0');
    }
    return n >= QS_SHORT_MIN_BITS && n <= QS_SHORT_MAX_BITS ? (int)n : -1;
}

/* A bare word that is a value of some key: the hint "did you mean key=word?". */
static const char *key_of_value(const char *word)
{
    static const struct {
        const char *key;
        const char *const *names;
    } tables[] = {{"scheme", scheme_names},     {"range", range_names}, {"overflow", overflow_names},
                  {"scale", scale_names},       {"div", div_names}};
    qs_quantizer_t probe;
    qs_quantizer_default(&probe);
    qs_error_state_t saved;
    qs_error_save(&saved);
    bool is_grid = qs_grid_parse(&probe, word, "") == QS_OK;
    qs_error_restore(&saved);
    if (is_grid)
        return "grid";
    for (size_t t = 0; t < sizeof tables / sizeof *tables; t++)
        for (int i = 0; tables[t].names[i]; i++)
            if (strcmp(word, tables[t].names[i]) == 0)
                return tables[t].key;
    for (int i = 0; i < QS_ROUND_COUNT; i++)
        if (strcmp(word, qs_round_name((qs_round_mode_t)i)) == 0)
            return "round";
    if (strcmp(word, "tensor") == 0 || strcmp(word, "channel") == 0 || strncmp(word, "group:", 6) == 0 ||
        strncmp(word, "channel:", 8) == 0)
        return "gran";
    return NULL;
}

static int bare_word(qs_quantizer_t *q, const char *word, const char *what)
{
    bool is_unsigned;
    int b = shorthand_bits(word, &is_unsigned);
    if (b > 0) {
        q->bits = b;
        q->scheme = is_unsigned ? QS_SCHEME_UNSIGNED : QS_SCHEME_SYMMETRIC;
        return QS_OK;
    }
    if (b < 0)
        return qs_error(QS_ERR_INVALID,
                        "%s: shorthand '%s': widths %d..%d only (write bits=N,scheme=%s for other widths)", what,
                        word, QS_SHORT_MIN_BITS, QS_SHORT_MAX_BITS, is_unsigned ? "unsigned" : "symmetric");
    char list[256];
    join_names(spec_keys, list, sizeof list);
    const char *key = key_of_value(word);
    if (key)
        return qs_error(QS_ERR_INVALID, "%s: bare word '%s': did you mean %s=%s? (only int2..int16 and "
                        "uint2..uint16 may be written without a key)",
                        what, word, key, word);
    return qs_error(QS_ERR_INVALID,
                    "%s: unknown word '%s': write key=value (keys: %s) or a shorthand int2..int16, uint2..uint16",
                    what, word, list);
}

int qs_quantizer_parse(const char *spec, const char *what, qs_quantizer_t *q)
{
    what = what_or_default(what);
    if (!q)
        return qs_error(QS_ERR_INVALID, "%s: no quantizer given", what);
    qs_kv_t kv;
    int rc = qs_kv_parse(spec ? spec : "", what, &kv);
    if (rc < 0)
        return rc;
    /* Work on a copy: a bad spec leaves *q as it was. */
    qs_quantizer_t t = *q;
    int shorthand = -1, sets_bits = -1;
    /* the grid first: it sets its own bits and block, which the other keys may then refine */
    for (int i = 0; i < kv.count; i++)
        if (!kv.item[i].bare && strcmp(kv.item[i].key, "grid") == 0 &&
            (rc = qs_quantizer_set(&t, "grid", kv.item[i].value, what)) < 0)
            return rc;
    for (int i = 0; i < kv.count; i++) {
        if (!kv.item[i].bare && strcmp(kv.item[i].key, "grid") == 0)
            continue;
        if (kv.item[i].bare) {
            if ((rc = bare_word(&t, kv.item[i].key, what)) < 0)
                return rc;
            /* a shorthand sets bits and scheme: a second setter of either would be ambiguous */
            if (shorthand >= 0)
                return qs_error(QS_ERR_INVALID, "%s: '%s' and '%s' both set bits and scheme", what,
                                kv.item[shorthand].key, kv.item[i].key);
            shorthand = i;
        } else {
            if ((rc = qs_quantizer_set(&t, kv.item[i].key, kv.item[i].value, what)) < 0)
                return rc;
            if (strcmp(kv.item[i].key, "bits") == 0 || strcmp(kv.item[i].key, "scheme") == 0)
                sets_bits = i;
        }
        if (shorthand >= 0 && sets_bits >= 0)
            return qs_error(QS_ERR_INVALID,
                            "%s: '%s' sets bits and scheme, so '%s=%s' cannot be combined with it (write bits= "
                            "and scheme= instead of the shorthand)",
                            what, kv.item[shorthand].key, kv.item[sets_bits].key, kv.item[sets_bits].value);
    }
    if ((rc = qs_quantizer_validate(&t)) < 0) {
        /* name the source and the spec so the message stands on its own */
        return qs_error_context("%s '%s': ", what, spec ? spec : "");
    }
    *q = t;
    return QS_OK;
}

/* The shortest decimal that reads back to v exactly, without an exponent
 * for the integral magnitudes where %g would pick one ("100", not "1e+02"). */
static void shortest_double(double v, char *buf, size_t n)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v && !(strchr(buf, 'e') && fabs(v) >= 1.0 && fabs(v) < 1e17))
            return;
    }
    snprintf(buf, n, "%.17g", v);
}

static const char *name_or(const char *const *names, int count, int i)
{
    return i >= 0 && i < count ? names[i] : "?";
}

char *qs_quantizer_str(const qs_quantizer_t *q, char *buf, size_t n)
{
    if (!buf || n == 0)
        return buf;
    char gran[64], range[64], round[96];
    switch (q->gran.kind) {
    case QS_GRAN_CHANNEL: snprintf(gran, sizeof gran, "channel:%d", q->gran.axis); break;
    case QS_GRAN_GROUP: snprintf(gran, sizeof gran, "group:%d:%" PRId64, q->gran.axis, q->gran.group); break;
    default: snprintf(gran, sizeof gran, "tensor"); break;
    }
    const char *rname = name_or(range_names, QS_RANGE_COUNT, (int)q->range.method);
    if (q->range.method == QS_RANGE_PERCENTILE) {
        char p[32];
        shortest_double(q->range.percentile, p, sizeof p);
        snprintf(range, sizeof range, "%s:%s", rname, p);
    } else if (q->range.method == QS_RANGE_ACIQ) {
        snprintf(range, sizeof range, "%s:%s", rname, name_or(aciq_names, 2, (int)q->range.dist));
    } else {
        snprintf(range, sizeof range, "%s", rname);
    }
    const char *rd = (int)q->round.mode >= 0 && q->round.mode < QS_ROUND_COUNT ? qs_round_name(q->round.mode) : "?";
    if (q->round.mode == QS_ROUND_STOCHASTIC)
        snprintf(round, sizeof round, "%s:%" PRIu64 ":%d", rd, q->round.seed, q->round.rbits);
    else
        snprintf(round, sizeof round, "%s", rd);
    char grid[32], block[64] = "";
    qs_grid_name(q, grid, sizeof grid);
    if (qs_grid_is_block(q->grid))
        snprintf(block, sizeof block, ",block=%d:%" PRId64 ":%s", q->block_axis, q->block,
                 q->block_rule == QS_BLOCK_UP ? "up" : "floor");
    snprintf(buf, n, "grid=%s,bits=%d,scheme=%s,gran=%s,range=%s,round=%s,overflow=%s,scale=%s,div=%s%s",
             grid, q->bits,
             name_or(scheme_names, QS_SCHEME_COUNT, (int)q->scheme), gran, range, round,
             name_or(overflow_names, 3, (int)q->overflow), name_or(scale_names, QS_SCALE_COUNT, (int)q->scale_type),
             name_or(div_names, 2, (int)q->div), block);
    return buf;
}
