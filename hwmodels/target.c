/* hwmodels/target.c — target files (docs/targets.md): reading, validating
 * (every problem named by file, line and key), finding the shipped targets,
 * and rescaling a target to another technology node. */
#include "config.h"

#include "hwmodels/hw_internal.h"

#include <ctype.h>
#include <errno.h>
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    const qs_yaml_doc_t *d;
    const char *file;
} ctx_t;

static int at(const ctx_t *c, const qs_yaml_node_t *n, const char *key, const char *fmt, ...) QS_PRINTF(4, 5);
static int at(const ctx_t *c, const qs_yaml_node_t *n, const char *key, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (key)
        return qs_error(QS_ERR_FORMAT, "%s:%d: key '%s': %s", c->file, qs_yaml_line(n), key, msg);
    return qs_error(QS_ERR_FORMAT, "%s:%d: %s", c->file, qs_yaml_line(n), msg);
}

static int get_q(const ctx_t *c, const qs_yaml_node_t *map, const char *key, qs_q_dim_t dim, bool required,
                 double *out, bool *per_cycle)
{
    const char *s = NULL;
    int rc = qs_yaml_get_str(c->d, map, key, required, &s);
    if (rc < 0 || !s)
        return rc;
    if (qs_hw_quantity(s, dim, out, per_cycle) < 0) {
        char msg[QS_ERROR_MAX];
        snprintf(msg, sizeof msg, "%s", qs_last_error());
        return at(c, qs_yaml_get(map, key), key, "%s", msg);
    }
    return QS_OK;
}

static int get_positive(const ctx_t *c, const qs_yaml_node_t *map, const char *key, qs_q_dim_t dim, bool required,
                        double *out, bool *per_cycle)
{
    double v = -1;
    int rc = get_q(c, map, key, dim, required, &v, per_cycle);
    if (rc < 0)
        return rc;
    if (v == -1)
        return QS_OK;
    if (!(v > 0))
        return at(c, qs_yaml_get(map, key), key, "must be positive, got %g", v);
    *out = v;
    return QS_OK;
}

static int get_name(const ctx_t *c, const qs_yaml_node_t *map, const char *key, bool required, char *dst, size_t n)
{
    const char *s = NULL;
    int rc = qs_yaml_get_str(c->d, map, key, required, &s);
    if (rc < 0 || !s)
        return rc;
    if (strlen(s) >= n)
        return at(c, qs_yaml_get(map, key), key, "longer than %zu characters", n - 1);
    snprintf(dst, n, "%s", s);
    return QS_OK;
}

static int get_choice(const ctx_t *c, const qs_yaml_node_t *map, const char *key, const char *const *choices,
                      int *out)
{
    const char *s = NULL;
    int rc = qs_yaml_get_str(c->d, map, key, false, &s);
    if (rc < 0 || !s)
        return rc;
    for (int i = 0; choices[i]; i++)
        if (strcmp(s, choices[i]) == 0) {
            *out = i;
            return QS_OK;
        }
    char list[256] = "";
    for (int i = 0; choices[i]; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", choices[i]);
    return at(c, qs_yaml_get(map, key), key, "unknown value '%s', expected one of: %s", s, list);
}

static int need_kind(const ctx_t *c, const qs_yaml_node_t *n, const char *key, qs_yaml_kind_t kind)
{
    if (qs_yaml_kind(n) == kind)
        return QS_OK;
    return at(c, n, key, "expected %s", kind == QS_YAML_MAP ? "a map" : kind == QS_YAML_SEQ ? "a sequence" : "a value");
}

/* ---- the source rule: a map holding a number names its source ---------------------- */

static bool numeric(const char *s)
{
    if (!s)
        return false;
    if (*s == '+' || *s == '-')
        s++;
    if (*s == '.')
        s++;
    return isdigit((unsigned char)*s);
}

static bool holds_number(const qs_yaml_node_t *n)
{
    if (qs_yaml_kind(n) == QS_YAML_SCALAR)
        return numeric(qs_yaml_scalar(n));
    if (qs_yaml_kind(n) == QS_YAML_SEQ)
        for (size_t i = 0; i < qs_yaml_len(n); i++)
            if (holds_number(qs_yaml_at(n, i)))
                return true;
    return false;
}

static int check_sources(const ctx_t *c, const qs_yaml_node_t *n)
{
    if (qs_yaml_kind(n) == QS_YAML_SEQ) {
        for (size_t i = 0; i < qs_yaml_len(n); i++)
            if (check_sources(c, qs_yaml_at(n, i)) < 0)
                return qs_last_status();
        return QS_OK;
    }
    if (qs_yaml_kind(n) != QS_YAML_MAP)
        return QS_OK;
    static const char *const free_keys[] = {"target", "name", "description", "acc", "requant", "source", NULL};
    const char *first = NULL;
    const qs_yaml_node_t *first_node = NULL;
    for (size_t i = 0; i < qs_yaml_len(n); i++) {
        const char *k = qs_yaml_key_at(n, i);
        const qs_yaml_node_t *v = qs_yaml_at(n, i);
        bool skip = false;
        for (int j = 0; free_keys[j]; j++)
            skip |= strcmp(k, free_keys[j]) == 0;
        if (!skip && !first && holds_number(v)) {
            first = k;
            first_node = v;
        }
        if (check_sources(c, v) < 0)
            return qs_last_status();
    }
    if (first) {
        const char *s = NULL;
        if (qs_yaml_get_str(c->d, n, "source", false, &s) < 0)
            return qs_last_status();
        if (!s || !*s)
            return at(c, first_node, first, "a number without a source: give this map a 'source:' saying where "
                                            "its numbers come from (a paper, a datasheet, or 'assumption: ...')");
    }
    return QS_OK;
}

/* ---- pieces ---------------------------------------------------------------------------------- */

static int get_formats(const ctx_t *c, const qs_yaml_node_t *unit, const char *key, qs_hw_format_t *f, int *n)
{
    const qs_yaml_node_t *s = qs_yaml_get(unit, key);
    if (!s)
        return at(c, unit, NULL, "missing key '%s'", key);
    if (qs_yaml_kind(s) == QS_YAML_SCALAR) {
        *n = 1;
        if (qs_hw_format_parse(qs_yaml_scalar(s), &f[0]) < 0) {
            char msg[QS_ERROR_MAX];
            snprintf(msg, sizeof msg, "%s", qs_last_error());
            return at(c, s, key, "%s", msg);
        }
        return QS_OK;
    }
    if (need_kind(c, s, key, QS_YAML_SEQ) < 0)
        return qs_last_status();
    if (qs_yaml_len(s) == 0 || qs_yaml_len(s) > QS_HW_MAX_FORMATS)
        return at(c, s, key, "expected 1 to %d formats", QS_HW_MAX_FORMATS);
    *n = (int)qs_yaml_len(s);
    for (int i = 0; i < *n; i++) {
        const qs_yaml_node_t *e = qs_yaml_at(s, (size_t)i);
        if (qs_yaml_kind(e) != QS_YAML_SCALAR || qs_hw_format_parse(qs_yaml_scalar(e), &f[i]) < 0) {
            char msg[QS_ERROR_MAX];
            snprintf(msg, sizeof msg, "%s", qs_yaml_kind(e) == QS_YAML_SCALAR ? qs_last_error() : "expected a format");
            return at(c, e, key, "%s", msg);
        }
    }
    return QS_OK;
}

/* An energy: a quantity (a constant), or a table of [key..., energy] rows
 * with `nkeys` integer keys each (bits; two keys are multiplied). */
static int get_table(const ctx_t *c, const qs_yaml_node_t *map, const char *key, int nkeys, qs_hw_table_t *t)
{
    const qs_yaml_node_t *v = qs_yaml_get(map, key);
    memset(t, 0, sizeof *t);
    if (!v)
        return QS_OK;
    if (qs_yaml_kind(v) == QS_YAML_SCALAR) {
        t->n = 1;
        t->key[0] = 0;
        return get_q(c, map, key, QS_Q_ENERGY, true, &t->joule[0], NULL);
    }
    if (need_kind(c, v, key, QS_YAML_SEQ) < 0)
        return qs_last_status();
    if (qs_yaml_len(v) == 0 || qs_yaml_len(v) > QS_HW_TABLE_MAX)
        return at(c, v, key, "expected an energy or 1 to %d rows [%s, energy]", QS_HW_TABLE_MAX,
                  nkeys == 2 ? "bits_w, bits_x" : "bits");
    for (size_t i = 0; i < qs_yaml_len(v); i++) {
        const qs_yaml_node_t *row = qs_yaml_at(v, i);
        if (qs_yaml_kind(row) != QS_YAML_SEQ || qs_yaml_len(row) != (size_t)nkeys + 1)
            return at(c, row, key, "expected a row [%s, energy]", nkeys == 2 ? "bits_w, bits_x" : "bits");
        double k = 1;
        for (int j = 0; j < nkeys; j++) {
            const char *s = qs_yaml_scalar(qs_yaml_at(row, (size_t)j));
            char *end;
            long b = s ? strtol(s, &end, 10) : 0;
            if (!s || *end || b < 1 || b > 64)
                return at(c, row, key, "row %zu: expected bit widths 1..64 before the energy", i + 1);
            k *= (double)b;
        }
        double e;
        if (qs_hw_quantity(qs_yaml_scalar(qs_yaml_at(row, (size_t)nkeys)), QS_Q_ENERGY, &e, NULL) < 0) {
            char msg[QS_ERROR_MAX];
            snprintf(msg, sizeof msg, "%s", qs_last_error());
            return at(c, row, key, "row %zu: %s", i + 1, msg);
        }
        if (i && k <= t->key[i - 1])
            return at(c, row, key, "rows must be in increasing order of %s", nkeys == 2 ? "bits_w*bits_x" : "bits");
        t->key[i] = k;
        t->joule[i] = e;
        t->n++;
    }
    return QS_OK;
}

/* The register width of an acc= spec: intN -> N, exact -> 64, fpN/bf16 -> N, eXmY -> 1+X+Y. */
static int acc_bits(const char *spec)
{
    const char *p = strstr(spec, "acc=");
    p = p ? p + 4 : spec;
    char v[32];
    size_t n = strcspn(p, ",");
    if (n >= sizeof v)
        return 0;
    memcpy(v, p, n);
    v[n] = '\0';
    int a, b;
    if (sscanf(v, "int%d", &a) == 1)
        return a;
    if (strcmp(v, "exact") == 0)
        return 64;
    if (strcmp(v, "bf16") == 0)
        return 16;
    if (sscanf(v, "fp%d", &a) == 1)
        return a;
    if (sscanf(v, "e%dm%d", &a, &b) == 2)
        return 1 + a + b;
    return 0;
}

static int parse_unit(const ctx_t *c, const qs_yaml_node_t *m, qs_hw_unit_t *u)
{
    static const char *const keys[] = {"name", "weights", "acts", "rate", "brick_bits", "macs_per_cycle",
                                       "mac_energy", "mul_energy", "add_energy", "brick_energy", "acc", "optional",
                                       "source", NULL};
    if (need_kind(c, m, "units", QS_YAML_MAP) < 0 || qs_yaml_check_keys(c->d, m, keys) < 0)
        return qs_last_status();
    u->line = qs_yaml_line(m);
    if (get_name(c, m, "name", true, u->name, sizeof u->name) < 0 ||
        get_formats(c, m, "weights", u->wfmt, &u->nw) < 0 || get_formats(c, m, "acts", u->xfmt, &u->nx) < 0)
        return qs_last_status();
    static const char *const rates[] = {"fixed", "bitbrick", NULL};
    int r = 0;
    if (get_choice(c, m, "rate", rates, &r) < 0)
        return qs_last_status();
    u->rate = (qs_hw_rate_t)r;
    if (get_positive(c, m, "macs_per_cycle", QS_Q_NUMBER, true, &u->macs_per_cycle, NULL) < 0)
        return qs_last_status();
    int64_t bb = 0;
    if (qs_yaml_get_int(c->d, m, "brick_bits", u->rate == QS_HW_RATE_BITBRICK, &bb) < 0)
        return qs_last_status();
    if (u->rate == QS_HW_RATE_BITBRICK && (bb < 1 || bb > 16))
        return at(c, qs_yaml_get(m, "brick_bits"), "brick_bits", "expected 1..16, got %" PRId64, bb);
    if (u->rate != QS_HW_RATE_BITBRICK && qs_yaml_get(m, "brick_bits"))
        return at(c, qs_yaml_get(m, "brick_bits"), "brick_bits", "only for rate: bitbrick");
    u->brick_bits = (int)bb;
    if (get_table(c, m, "mac_energy", 2, &u->mac) < 0 || get_table(c, m, "mul_energy", 2, &u->mul) < 0 ||
        get_table(c, m, "add_energy", 1, &u->add) < 0)
        return qs_last_status();
    double bj = -1;
    if (get_q(c, m, "brick_energy", QS_Q_ENERGY, false, &bj, NULL) < 0)
        return qs_last_status();
    u->brick_j = bj < 0 ? 0 : bj;
    int forms = (u->mac.n > 0) + (u->mul.n > 0) + (bj >= 0);
    if (forms != 1)
        return at(c, m, NULL, "unit '%s': give exactly one of mac_energy, mul_energy (with add_energy) or "
                              "brick_energy", u->name);
    if ((bj >= 0) != (u->rate == QS_HW_RATE_BITBRICK))
        return at(c, m, NULL, "unit '%s': brick_energy goes with rate: bitbrick", u->name);
    if (u->mac.n && u->add.n)
        return at(c, m, NULL, "unit '%s': mac_energy already includes the addition; drop add_energy", u->name);
    const char *acc = "acc=int32";
    if (qs_yaml_get_str(c->d, m, "acc", false, &acc) < 0)
        return qs_last_status();
    if (strlen(acc) >= sizeof u->acc)
        return at(c, qs_yaml_get(m, "acc"), "acc", "too long");
    snprintf(u->acc, sizeof u->acc, "%s", acc);
    u->acc_bits = acc_bits(acc);
    if (u->acc_bits < 2 || u->acc_bits > 64)
        return at(c, qs_yaml_get(m, "acc"), "acc", "'%s': expected an accumulator spec such as acc=int32", acc);
    if (qs_yaml_get_bool(c->d, m, "optional", false, &u->optional) < 0)
        return qs_last_status();
    return QS_OK;
}

static int parse_level(const ctx_t *c, const qs_yaml_node_t *m, bool outermost, double clock, qs_hw_level_t *l)
{
    static const char *const keys[] = {"name", "capacity", "bandwidth", "energy", "offchip", "source", NULL};
    if (need_kind(c, m, "memory", QS_YAML_MAP) < 0 || qs_yaml_check_keys(c->d, m, keys) < 0)
        return qs_last_status();
    l->line = qs_yaml_line(m);
    bool pc = false;
    if (get_name(c, m, "name", true, l->name, sizeof l->name) < 0 ||
        get_positive(c, m, "capacity", QS_Q_BYTES, !outermost, &l->capacity, NULL) < 0 ||
        get_positive(c, m, "bandwidth", QS_Q_BANDWIDTH, true, &l->bandwidth, &pc) < 0 ||
        get_q(c, m, "energy", QS_Q_ENERGY_BYTE, true, &l->energy, NULL) < 0 ||
        qs_yaml_get_bool(c->d, m, "offchip", false, &l->offchip) < 0)
        return qs_last_status();
    if (pc)
        l->bandwidth *= clock;
    return QS_OK;
}

static int parse_features(const ctx_t *c, const qs_yaml_node_t *f, qs_hw_target_t *t)
{
    static const char *const keys[] = {"weight_granularity", "weight_zero_point", "act_zero_point", "storage",
                                       "missing_format", "sparsity", "sparse_index_bits", "source", NULL};
    t->gran_tensor = t->gran_channel = true;
    t->w_zero_point = t->x_zero_point = true;
    t->packed = true;
    if (!f)
        return QS_OK;
    if (need_kind(c, f, "features", QS_YAML_MAP) < 0 || qs_yaml_check_keys(c->d, f, keys) < 0)
        return qs_last_status();
    const qs_yaml_node_t *g = qs_yaml_get(f, "weight_granularity");
    if (g) {
        if (need_kind(c, g, "weight_granularity", QS_YAML_SEQ) < 0)
            return qs_last_status();
        t->gran_tensor = t->gran_channel = false;
        for (size_t i = 0; i < qs_yaml_len(g); i++) {
            const char *s = qs_yaml_scalar(qs_yaml_at(g, i));
            if (s && strcmp(s, "tensor") == 0)
                t->gran_tensor = true;
            else if (s && strcmp(s, "channel") == 0)
                t->gran_channel = true;
            else if (s && strcmp(s, "group") == 0)
                t->gran_group = true;
            else
                return at(c, qs_yaml_at(g, i), "weight_granularity", "unknown value '%s', expected tensor, channel or "
                                                                    "group", s ? s : "");
        }
    }
    if (qs_yaml_get_bool(c->d, f, "weight_zero_point", false, &t->w_zero_point) < 0 ||
        qs_yaml_get_bool(c->d, f, "act_zero_point", false, &t->x_zero_point) < 0)
        return qs_last_status();
    static const char *const storage[] = {"packed", "container", NULL};
    static const char *const missing[] = {"map-up", "unsupported", NULL};
    int s = 0, m = 0;
    if (get_choice(c, f, "storage", storage, &s) < 0 || get_choice(c, f, "missing_format", missing, &m) < 0)
        return qs_last_status();
    t->packed = s == 0;
    t->missing = (qs_hw_missing_t)m;
    const qs_yaml_node_t *sp = qs_yaml_get(f, "sparsity");
    if (sp) {
        if (need_kind(c, sp, "sparsity", QS_YAML_SEQ) < 0)
            return qs_last_status();
        for (size_t i = 0; i < qs_yaml_len(sp); i++) {
            const char *v = qs_yaml_scalar(qs_yaml_at(sp, i));
            int n, mm;
            char tail;
            if (v && strcmp(v, "unstructured") == 0) {
                t->sparse_unstructured = true;
            } else if (v && sscanf(v, "%d:%d%c", &n, &mm, &tail) == 2 && n >= 1 && mm > n && mm <= 64 &&
                       t->nsparse < 4) {
                t->sparse_n[t->nsparse] = n;
                t->sparse_m[t->nsparse++] = mm;
            } else {
                return at(c, qs_yaml_at(sp, i), "sparsity", "expected 'unstructured' or N:M with 1 <= N < M <= 64 "
                                                            "(at most 4 patterns), got '%s'", v ? v : "");
            }
        }
        if (qs_yaml_len(sp) && !qs_yaml_get(f, "sparse_index_bits"))
            return at(c, sp, "sparsity", "give sparse_index_bits too: the metadata stored per kept weight");
    }
    double ib = 0;
    if (get_q(c, f, "sparse_index_bits", QS_Q_NUMBER, false, &ib, NULL) < 0)
        return qs_last_status();
    t->sparse_index_bits = ib;
    return QS_OK;
}

static int parse_target(const ctx_t *c, const qs_yaml_node_t *root, qs_hw_target_t *t)
{
    static const char *const keys[] = {"target", "kind", "description", "technology", "compute", "power",
                                       "requant", "features", "units", "memory", NULL};
    if (need_kind(c, root, NULL, QS_YAML_MAP) < 0 || qs_yaml_check_keys(c->d, root, keys) < 0 ||
        check_sources(c, root) < 0)
        return qs_last_status();
    static const char *const kinds[] = {"cpu", "gpu", "dsp", "accelerator", "asic", NULL};
    int kind = 0;
    if (get_name(c, root, "target", true, t->name, sizeof t->name) < 0 || get_choice(c, root, "kind", kinds, &kind) < 0 ||
        get_name(c, root, "description", false, t->description, sizeof t->description) < 0)
        return qs_last_status();
    if (!qs_yaml_get(root, "kind"))
        return at(c, root, NULL, "missing key 'kind' (cpu, gpu, dsp, accelerator or asic)");
    snprintf(t->kind, sizeof t->kind, "%s", kinds[kind]);

    static const char *const tech_keys[] = {"node", "voltage", "source", NULL};
    const qs_yaml_node_t *tech = qs_yaml_get(root, "technology");
    if (!tech)
        return at(c, root, NULL, "missing key 'technology' (node, voltage, source)");
    if (need_kind(c, tech, "technology", QS_YAML_MAP) < 0 || qs_yaml_check_keys(c->d, tech, tech_keys) < 0 ||
        get_positive(c, tech, "node", QS_Q_LENGTH_NM, true, &t->node_nm, NULL) < 0 ||
        get_positive(c, tech, "voltage", QS_Q_VOLTAGE, true, &t->voltage, NULL) < 0)
        return qs_last_status();

    static const char *const comp_keys[] = {"clock", "utilization", "local", "source", NULL};
    const qs_yaml_node_t *comp = qs_yaml_get(root, "compute");
    if (!comp)
        return at(c, root, NULL, "missing key 'compute' (clock, utilization, local, source)");
    t->utilization = 1;
    if (need_kind(c, comp, "compute", QS_YAML_MAP) < 0 || qs_yaml_check_keys(c->d, comp, comp_keys) < 0 ||
        get_positive(c, comp, "clock", QS_Q_FREQUENCY, true, &t->clock_hz, NULL) < 0 ||
        get_positive(c, comp, "utilization", QS_Q_NUMBER, false, &t->utilization, NULL) < 0 ||
        get_positive(c, comp, "local", QS_Q_BYTES, true, &t->local_bytes, NULL) < 0)
        return qs_last_status();
    if (t->utilization > 1)
        return at(c, qs_yaml_get(comp, "utilization"), "utilization", "a fraction of peak, in (0, 1]; got %g",
                  t->utilization);

    static const char *const pow_keys[] = {"static", "source", NULL};
    const qs_yaml_node_t *pw = qs_yaml_get(root, "power");
    if (pw && (need_kind(c, pw, "power", QS_YAML_MAP) < 0 || qs_yaml_check_keys(c->d, pw, pow_keys) < 0 ||
               get_q(c, pw, "static", QS_Q_POWER, true, &t->static_w, NULL) < 0))
        return qs_last_status();

    const char *rq = "requant=float64";
    if (qs_yaml_get_str(c->d, root, "requant", false, &rq) < 0)
        return qs_last_status();
    if (strlen(rq) >= sizeof t->requant)
        return at(c, qs_yaml_get(root, "requant"), "requant", "too long");
    snprintf(t->requant, sizeof t->requant, "%s", rq);

    if (parse_features(c, qs_yaml_get(root, "features"), t) < 0)
        return qs_last_status();

    const qs_yaml_node_t *units = qs_yaml_get(root, "units");
    if (!units)
        return at(c, root, NULL, "missing key 'units' (the compute units)");
    if (need_kind(c, units, "units", QS_YAML_SEQ) < 0)
        return qs_last_status();
    if (qs_yaml_len(units) == 0 || qs_yaml_len(units) > QS_HW_MAX_UNITS)
        return at(c, units, "units", "expected 1 to %d units", QS_HW_MAX_UNITS);
    t->nunits = (int)qs_yaml_len(units);
    for (int i = 0; i < t->nunits; i++) {
        if (parse_unit(c, qs_yaml_at(units, (size_t)i), &t->unit[i]) < 0)
            return qs_last_status();
        for (int j = 0; j < i; j++)
            if (strcmp(t->unit[j].name, t->unit[i].name) == 0)
                return at(c, qs_yaml_at(units, (size_t)i), "name", "unit '%s' defined twice (line %d)", t->unit[i].name,
                          t->unit[j].line);
    }
    const qs_yaml_node_t *mem = qs_yaml_get(root, "memory");
    if (!mem)
        return at(c, root, NULL, "missing key 'memory' (the levels, innermost first)");
    if (need_kind(c, mem, "memory", QS_YAML_SEQ) < 0)
        return qs_last_status();
    if (qs_yaml_len(mem) == 0 || qs_yaml_len(mem) > QS_HW_MAX_LEVELS)
        return at(c, mem, "memory", "expected 1 to %d levels", QS_HW_MAX_LEVELS);
    t->nlevels = (int)qs_yaml_len(mem);
    for (int i = 0; i < t->nlevels; i++) {
        if (parse_level(c, qs_yaml_at(mem, (size_t)i), i == t->nlevels - 1, t->clock_hz, &t->level[i]) < 0)
            return qs_last_status();
        if (i && t->level[i].capacity && t->level[i].capacity < t->level[i - 1].capacity)
            return at(c, qs_yaml_at(mem, (size_t)i), "capacity", "levels go from the innermost to the outermost: "
                                                                "'%s' is smaller than '%s'", t->level[i].name,
                      t->level[i - 1].name);
    }
    return QS_OK;
}

int qs_hw_target_parse(const char *text, size_t len, const char *name, qs_hw_target_t **out)
{
    *out = NULL;
    qs_yaml_doc_t *d = qs_yaml_parse(text, len, name);
    if (!d)
        return qs_last_status();
    qs_hw_target_t *t = calloc(1, sizeof *t);
    if (!t) {
        qs_yaml_free(d);
        return qs_error(QS_ERR_NOMEM, "out of memory");
    }
    snprintf(t->path, sizeof t->path, "%s", name ? name : "");
    ctx_t c = {d, qs_yaml_name(d)};
    int rc = parse_target(&c, qs_yaml_root(d), t);
    qs_yaml_free(d);
    if (rc < 0) {
        free(t);
        return rc;
    }
    *out = t;
    return QS_OK;
}

int qs_hw_target_load(const char *path, qs_hw_target_t **out)
{
    *out = NULL;
    char *buf = NULL;
    size_t n = 0;
    if (qs_file_read(path, "target file (.yaml)", 16u << 20, &buf, &n) < 0)
        return qs_last_status();
    int rc = qs_hw_target_parse(buf, n, path, out);
    free(buf);
    return rc;
}

void qs_hw_target_free(qs_hw_target_t *t) { free(t); }

const qs_hw_unit_t *qs_hw_unit_find(const qs_hw_target_t *t, const char *name)
{
    for (int i = 0; name && i < t->nunits; i++)
        if (strcmp(t->unit[i].name, name) == 0)
            return &t->unit[i];
    return NULL;
}

/* ---- shipped targets --------------------------------------------------------------------------- */

/* Where shipped targets live, in search order; NULL entries skipped. */
static void target_dirs(const char *dirs[3])
{
    dirs[0] = getenv("QUASAR_TARGETS");
    if (dirs[0] && !*dirs[0])
        dirs[0] = NULL;
    /* the source tree first, so that a build uses its own files over an older installed copy */
#ifdef QS_TARGETS_SRCDIR
    dirs[1] = QS_TARGETS_SRCDIR;
#else
    dirs[1] = NULL;
#endif
#ifdef QS_TARGETS_INSTALLED
    dirs[2] = QS_TARGETS_INSTALLED;
#else
    dirs[2] = NULL;
#endif
}

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int qs_hw_target_find(const char *name, qs_hw_target_t **out)
{
    *out = NULL;
    if (!name || !*name)
        return qs_error(QS_ERR_INVALID, "no target named");
    if (strchr(name, '/') || strstr(name, ".yaml") || strstr(name, ".yml"))
        return qs_hw_target_load(name, out);
    const char *dirs[3];
    target_dirs(dirs);
    char path[1024];
    for (int i = 0; i < 3; i++) {
        if (!dirs[i])
            continue;
        snprintf(path, sizeof path, "%s/%s.yaml", dirs[i], name);
        if (is_file(path))
            return qs_hw_target_load(path, out);
    }
    char **names = NULL;
    char list[1024] = "";
    if (qs_hw_target_names(&names) == QS_OK)
        for (int i = 0; names[i]; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
    qs_hw_names_free(names);
    return qs_error(QS_ERR_INVALID, "unknown target '%s' (shipped: %s; or give a path to a .yaml file)", name,
                    *list ? list : "none found");
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int qs_hw_target_names(char ***out)
{
    *out = NULL;
    const char *dirs[3];
    target_dirs(dirs);
    size_t n = 0, cap = 16;
    char **v = calloc(cap + 1, sizeof *v);
    if (!v)
        return qs_error(QS_ERR_NOMEM, "out of memory");
    for (int i = 0; i < 3; i++) {
        DIR *dir = dirs[i] ? opendir(dirs[i]) : NULL;
        if (!dir)
            continue;
        struct dirent *e;
        while ((e = readdir(dir))) {
            size_t len = strlen(e->d_name);
            if (len <= 5 || strcmp(e->d_name + len - 5, ".yaml") != 0)
                continue;
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(len - 5), e->d_name);
            bool dup = false;
            for (size_t k = 0; k < n; k++)
                dup |= strcmp(v[k], name) == 0;
            if (dup)
                continue;
            if (n == cap) {
                char **nv = realloc(v, (2 * cap + 1) * sizeof *v);
                if (!nv)
                    break;
                v = nv;
                cap *= 2;
            }
            v[n] = strdup(name);
            if (v[n])
                n++;
        }
        closedir(dir);
    }
    v[n] = NULL;
    qsort(v, n, sizeof *v, cmp_str);
    *out = v;
    return QS_OK;
}

void qs_hw_names_free(char **names)
{
    for (size_t i = 0; names && names[i]; i++)
        free(names[i]);
    free(names);
}

/* ---- technology nodes ------------------------------------------------------------------------------- */

/* Energy relative to 45 nm at the same supply, from the Stillmaker–Baas
 * scaling equations (Integration 58, 2017) as Accelergy's hwcomponents
 * implements them (techscaling.py), with its sqrt(node ratio) extrapolation
 * below 7 nm; rows for 0.8 V and 1.0 V, interpolated linearly in between and
 * clamped outside (../shared/references/hardware-cost-numbers.md §1.4). */
static const double nodes[] = {65, 45, 32, 20, 16, 14, 10, 7, 5, 3};
static const double e08[] = {1.24, 1.0, 0.66, 0.22, 0.17, 0.14, 0.12, 0.094, 0.080, 0.062};
static const double e10[] = {1.31, 1.0, 0.63, 0.25, 0.20, 0.16, 0.14, 0.109, 0.092, 0.071};

static int node_energy(double nm, double v, double *e)
{
    int n = (int)(sizeof nodes / sizeof *nodes);
    if (!(nm >= nodes[n - 1] && nm <= nodes[0]))
        return qs_error(QS_ERR_UNSUPPORTED, "technology node %g nm: the scaling table covers %g..%g nm", nm,
                        nodes[n - 1], nodes[0]);
    double w = v <= 0.8 ? 0 : v >= 1.0 ? 1 : (v - 0.8) / 0.2;
    for (int i = 0; i + 1 < n; i++)
        if (nm <= nodes[i] && nm >= nodes[i + 1]) {
            /* log-log between the tabulated nodes */
            double f = log(nm / nodes[i]) / log(nodes[i + 1] / nodes[i]);
            double a = (1 - w) * e08[i] + w * e10[i], b = (1 - w) * e08[i + 1] + w * e10[i + 1];
            *e = exp(log(a) + f * (log(b) - log(a)));
            return QS_OK;
        }
    return qs_error(QS_ERR_INTERNAL, "node table");
}

int qs_hw_node_factor(double from_nm, double to_nm, double voltage, double *factor)
{
    double a, b;
    if (node_energy(from_nm, voltage, &a) < 0 || node_energy(to_nm, voltage, &b) < 0)
        return qs_last_status();
    *factor = b / a;
    return QS_OK;
}

static void scale_table(qs_hw_table_t *t, double f)
{
    for (int i = 0; i < t->n; i++)
        t->joule[i] *= f;
}

int qs_hw_target_scale_node(qs_hw_target_t *t, double nm)
{
    double f;
    if (qs_hw_node_factor(t->node_nm, nm, t->voltage, &f) < 0)
        return qs_error_context("target %s: ", t->name);
    for (int i = 0; i < t->nunits; i++) {
        qs_hw_unit_t *u = &t->unit[i];
        scale_table(&u->mac, f);
        scale_table(&u->mul, f);
        scale_table(&u->add, f);
        u->brick_j *= f;
    }
    for (int i = 0; i < t->nlevels; i++)
        if (!t->level[i].offchip)
            t->level[i].energy *= f;
    t->static_w *= f;
    t->node_nm = nm;
    return QS_OK;
}
