/* experiments/spec.c — experiment specs: the YAML file of docs/spec.md
 * ("Experiment specs") read into a qs_exp_spec_t, with every key validated
 * (unknown keys, wrong types, empty axes, bad values, settings given twice or
 * that contradict each other are errors naming file:line and the key). */
#include "experiments/exp_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const qs_yaml_doc_t *d;
    const char *file;
    char dir[1024]; /* the spec's folder, for relative model paths */
    int nlayers_int; /* per-layer integer-engine overrides in layers: (the first, for messages) */
    int layer_int_line;
    const char *layer_int;
} ctx_t;

static int at(const ctx_t *c, const qs_yaml_node_t *n, const char *key)
{
    return qs_error_context("%s:%d: %s: ", c->file, n ? qs_yaml_line(n) : 0, key);
}

static int expect(const ctx_t *c, const qs_yaml_node_t *n, const char *key, qs_yaml_kind_t kind)
{
    static const char *const names[] = {"a value", "a map", "a list"};
    if (qs_yaml_kind(n) == kind)
        return QS_OK;
    return qs_error(QS_ERR_FORMAT, "%s:%d: %s: expected %s", c->file, qs_yaml_line(n), key, names[kind]);
}

/* Names that become file names and row labels: letters, digits, '-', '_', '.'; not "." or "..". */
static int check_name(const ctx_t *c, const qs_yaml_node_t *n, const char *key, const char *v)
{
    bool ok = *v && strcmp(v, ".") && strcmp(v, "..") && strlen(v) < 64;
    for (const char *p = v; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
             *p == '_' || *p == '.';
    if (ok)
        return QS_OK;
    return qs_error(QS_ERR_INVALID, "%s:%d: %s: '%s' may hold letters, digits, '-', '_' and '.' only (up to 63)",
                    c->file, qs_yaml_line(n), key, v);
}

/* A scalar, or a list of scalars, as a list: calls fn for each. */
typedef int (*item_fn)(const ctx_t *c, const qs_yaml_node_t *n, const char *key, const char *v, void *arg);
static int each_scalar(const ctx_t *c, const qs_yaml_node_t *n, const char *key, item_fn fn, void *arg)
{
    if (qs_yaml_kind(n) == QS_YAML_SCALAR)
        return fn(c, n, key, qs_yaml_scalar(n), arg);
    if (qs_yaml_kind(n) != QS_YAML_SEQ)
        return qs_error(QS_ERR_FORMAT, "%s:%d: %s: expected a value or a list of values", c->file, qs_yaml_line(n), key);
    if (qs_yaml_len(n) == 0)
        return qs_error(QS_ERR_FORMAT, "%s:%d: %s: empty list", c->file, qs_yaml_line(n), key);
    for (size_t i = 0; i < qs_yaml_len(n); i++) {
        const qs_yaml_node_t *e = qs_yaml_at(n, i);
        if (qs_yaml_kind(e) != QS_YAML_SCALAR)
            return qs_error(QS_ERR_FORMAT, "%s:%d: %s: expected a value, got a %s", c->file, qs_yaml_line(e), key,
                            qs_yaml_kind(e) == QS_YAML_MAP ? "map" : "list");
        int rc = fn(c, e, key, qs_yaml_scalar(e), arg);
        if (rc < 0)
            return rc;
    }
    return QS_OK;
}

/* ---- growing arrays of fixed-size strings ---- */
static int push(void *arr, int *n, size_t size, const char *v, const ctx_t *c, const qs_yaml_node_t *node,
                const char *key)
{
    char **a = arr;
    if (strlen(v) >= size)
        return qs_error(QS_ERR_INVALID, "%s:%d: %s: '%s' is longer than %zu characters", c->file,
                        qs_yaml_line(node), key, v, size - 1);
    char *p = realloc(*a, (size_t)(*n + 1) * size);
    if (!p)
        return qs_error(QS_ERR_NOMEM, "out of memory reading %s", c->file);
    *a = p;
    snprintf(p + (size_t)*n * size, size, "%s", v);
    (*n)++;
    return QS_OK;
}

/* A file named by the spec: a relative path is relative to the spec's folder
 * (models, target files, .h5 datasets alike). */
static void spec_path(const ctx_t *c, const char *v, char *out, size_t n)
{
    char joined[2200], real[PATH_MAX];
    if (v[0] == '/' || !c->dir[0])
        snprintf(joined, sizeof joined, "%s", v);
    else
        snprintf(joined, sizeof joined, "%s/%s", c->dir, v);
    /* the absolute path of a file that exists: the same file gives the same run hash
     * however the spec was named on the command line */
    const char *src = realpath(joined, real) ? real : joined;
    size_t len = strlen(src);
    if (len >= n) /* the callers check the length of what they keep */
        len = n - 1;
    memcpy(out, src, len);
    out[len] = '\0';
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

typedef struct {
    qs_exp_spec_t *s;
} specarg_t;

static int add_model(const ctx_t *c, const qs_yaml_node_t *n, const char *key, const char *v, void *arg)
{
    qs_exp_spec_t *s = ((specarg_t *)arg)->s;
    if (!*v)
        return qs_error(QS_ERR_INVALID, "%s:%d: %s: an empty path", c->file, qs_yaml_line(n), key);
    char path[2200];
    spec_path(c, v, path, sizeof path);
    for (int i = 0; i < s->nmodels; i++)
        if (strcmp(s->model[i], path) == 0)
            return qs_error(QS_ERR_INVALID, "%s:%d: %s: '%s' is listed twice", c->file, qs_yaml_line(n), key, v);
    return push(&s->model, &s->nmodels, sizeof *s->model, path, c, n, key);
}

static int add_layer(const ctx_t *c, const qs_yaml_node_t *n, const char *key, const char *v, void *arg)
{
    qs_exp_spec_t *s = ((specarg_t *)arg)->s;
    /* checked here so that a bad override is reported with its line, not at run time */
    int rc;
    if (qs_exp_layer_is_int(v)) {
        ctx_t *cc = (ctx_t *)c; /* remembered for the check against arithmetic: target */
        if (cc->nlayers_int++ == 0) {
            cc->layer_int = v;
            cc->layer_int_line = qs_yaml_line(n);
        }
        qs_int_config_t ic;
        qs_int_config_default(&ic);
        rc = qs_int_config_override(&ic, v, "layers");
    } else {
        qs_qconfig_t qc;
        qs_qconfig_default(&qc);
        rc = qs_qconfig_override(&qc, v, "layers");
    }
    if (rc < 0)
        return at(c, n, key);
    return push(&s->layer, &s->nlayers, sizeof *s->layer, v, c, n, key);
}

static int add_metric(const ctx_t *c, const qs_yaml_node_t *n, const char *key, const char *v, void *arg)
{
    qs_exp_spec_t *s = ((specarg_t *)arg)->s;
    if (!qs_metric_find(v)) {
        char list[1024] = "";
        for (size_t i = 0; i < qs_metric_count(); i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", qs_metric_at(i)->name);
        return qs_error(QS_ERR_INVALID, "%s:%d: %s: unknown metric '%s' (expected one of: %s)", c->file,
                        qs_yaml_line(n), key, v, list);
    }
    return push(&s->metric, &s->nmetrics, sizeof *s->metric, v, c, n, key);
}

/* ---- values of fields ---- */

typedef struct {
    int field;
    qs_exp_axis_t *axis;
} axisarg_t;

static int axis_value(const ctx_t *c, const qs_yaml_node_t *n, const char *key, const char *v, void *arg);

/* "all" as a target: every shipped target. */
static int add_canon(const ctx_t *c, const qs_yaml_node_t *n, const char *key, int field, const char *v,
                     qs_exp_axis_t *a)
{
    char buf[QS_EXP_VALUE_MAX];
    if (qs_exp_field_canon(qs_exp_field_at((size_t)field), v, buf, sizeof buf) < 0)
        return at(c, n, key);
    return push(&a->value, &a->nvalues, sizeof *a->value, buf, c, n, key);
}

static int axis_value(const ctx_t *c, const qs_yaml_node_t *n, const char *key, const char *v, void *arg)
{
    axisarg_t *aa = arg;
    if (strcmp(qs_exp_field_at((size_t)aa->field)->name, "target") == 0 && strcmp(v, "all") == 0) {
        char **names = NULL;
        if (qs_hw_target_names(&names) < 0)
            return at(c, n, key);
        int rc = QS_OK;
        for (int i = 0; names[i] && rc >= 0; i++)
            rc = add_canon(c, n, key, aa->field, names[i], aa->axis);
        qs_hw_names_free(names);
        return rc;
    }
    char file[2200];
    if (strcmp(qs_exp_field_at((size_t)aa->field)->name, "target") == 0) {
        /* a target file (not a shipped name) is relative to the spec */
        if (strchr(v, '/') || ends_with(v, ".yaml") || ends_with(v, ".yml")) {
            spec_path(c, v, file, sizeof file);
            v = file;
        }
        qs_hw_target_t *t = NULL;
        if (qs_hw_target_find(v, &t) < 0 || qs_target_check_arithmetic(t) < 0) {
            qs_hw_target_free(t);
            return at(c, n, key);
        }
        qs_hw_target_free(t);
    }
    return add_canon(c, n, key, aa->field, v, aa->axis);
}

/* {from: A, to: B, step: S} for an integer field. */
static int axis_range(const ctx_t *c, const qs_yaml_node_t *n, const char *key, axisarg_t *aa)
{
    static const char *const keys[] = {"from", "to", "step", NULL};
    const qs_exp_field_t *f = qs_exp_field_at((size_t)aa->field);
    if (f->type != QS_FIELD_INT)
        return qs_error(QS_ERR_INVALID, "%s:%d: %s: a range (from/to/step) needs an integer field; give a list",
                        c->file, qs_yaml_line(n), key);
    int64_t from = 0, to = 0, step = 1;
    if (qs_yaml_check_keys(c->d, n, keys) < 0 || qs_yaml_get_int(c->d, n, "from", true, &from) < 0 ||
        qs_yaml_get_int(c->d, n, "to", true, &to) < 0 || qs_yaml_get_int(c->d, n, "step", false, &step) < 0)
        return qs_last_status();
    if (from < f->lo || from > f->hi || to < f->lo || to > f->hi)
        return qs_error(QS_ERR_INVALID, "%s:%d: %s: the range from %lld to %lld leaves %lld..%lld", c->file,
                        qs_yaml_line(n), key, (long long)from, (long long)to, (long long)f->lo, (long long)f->hi);
    if (step == 0 || (to - from) / step < 0)
        return qs_error(QS_ERR_INVALID, "%s:%d: %s: the range from %lld to %lld by %lld is empty", c->file,
                        qs_yaml_line(n), key, (long long)from, (long long)to, (long long)step);
    if ((to - from) / step >= 4096)
        return qs_error(QS_ERR_INVALID, "%s:%d: %s: the range has more than 4096 values", c->file, qs_yaml_line(n),
                        key);
    for (int64_t v = from; step > 0 ? v <= to : v >= to; v += step) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)v);
        int rc = add_canon(c, n, key, aa->field, buf, aa->axis);
        if (rc < 0)
            return rc;
    }
    return QS_OK;
}

static int field_of(const ctx_t *c, const qs_yaml_node_t *map, size_t i, const char *section)
{
    const char *k = qs_yaml_key_at(map, i);
    int f = qs_exp_field_index(k);
    if (f >= 0)
        return f;
    char list[1024] = "";
    for (size_t j = 0; j < qs_exp_field_count(); j++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", j ? ", " : "", qs_exp_field_at(j)->name);
    return qs_error(QS_ERR_INVALID, "%s:%d: %s: unknown field '%s' (the fields: %s)", c->file,
                    qs_yaml_line(qs_yaml_at(map, i)), section, k, list);
}

static int find_setting(const qs_exp_block_t *b, int field, int *line, bool *axis)
{
    for (int i = 0; i < b->nfixed; i++)
        if (b->fixed_field[i] == field) {
            *line = b->fixed_line[i];
            *axis = false;
            return i;
        }
    for (int i = 0; i < b->naxes; i++)
        if (b->axis[i].field == field) {
            *line = b->axis[i].line;
            *axis = true;
            return i;
        }
    return -1;
}

static int twice(const ctx_t *c, const qs_exp_block_t *b, int field, int line, const char *section)
{
    int l0;
    bool ax;
    if (find_setting(b, field, &l0, &ax) < 0)
        return QS_OK;
    return qs_error(QS_ERR_INVALID, "%s:%d: %s: field '%s' is already set (line %d, %s): set each field once",
                    c->file, line, section, qs_exp_field_at((size_t)field)->name, l0, ax ? "an axis" : "fixed");
}

static int read_fixed(const ctx_t *c, const qs_yaml_node_t *map, qs_exp_block_t *b, const char *section)
{
    if (expect(c, map, section, QS_YAML_MAP) < 0)
        return qs_last_status();
    for (size_t i = 0; i < qs_yaml_len(map); i++) {
        int f = field_of(c, map, i, section);
        if (f < 0)
            return f;
        const qs_yaml_node_t *v = qs_yaml_at(map, i);
        char key[256];
        snprintf(key, sizeof key, "%s: %s", section, qs_exp_field_at((size_t)f)->name);
        if (qs_yaml_kind(v) != QS_YAML_SCALAR)
            return qs_error(QS_ERR_FORMAT, "%s:%d: %s: expected one value (a list is an axis: put it under axes)",
                            c->file, qs_yaml_line(v), key);
        if (twice(c, b, f, qs_yaml_line(v), section) < 0)
            return qs_last_status();
        if (b->nfixed >= QS_EXP_MAX_FIELDS)
            return qs_error(QS_ERR_INVALID, "%s:%d: %s: too many fields", c->file, qs_yaml_line(v), section);
        qs_exp_axis_t tmp = {.field = f};
        axisarg_t aa = {f, &tmp};
        int rc = axis_value(c, v, key, qs_yaml_scalar(v), &aa);
        if (rc >= 0 && tmp.nvalues != 1)
            rc = qs_error(QS_ERR_INVALID, "%s:%d: %s: one value expected ('all' is for axes)", c->file,
                          qs_yaml_line(v), key);
        if (rc >= 0) {
            b->fixed_field[b->nfixed] = f;
            b->fixed_line[b->nfixed] = qs_yaml_line(v);
            snprintf(b->fixed[b->nfixed], QS_EXP_VALUE_MAX, "%s", tmp.value[0]);
            b->nfixed++;
        }
        free(tmp.value);
        if (rc < 0)
            return rc;
    }
    return QS_OK;
}

static int read_axes(const ctx_t *c, const qs_yaml_node_t *map, qs_exp_block_t *b, const char *section)
{
    if (expect(c, map, section, QS_YAML_MAP) < 0)
        return qs_last_status();
    if (qs_yaml_len(map) == 0)
        return qs_error(QS_ERR_FORMAT, "%s:%d: %s: no axes", c->file, qs_yaml_line(map), section);
    for (size_t i = 0; i < qs_yaml_len(map); i++) {
        int f = field_of(c, map, i, section);
        if (f < 0)
            return f;
        const qs_yaml_node_t *v = qs_yaml_at(map, i);
        char key[256];
        snprintf(key, sizeof key, "%s: %s", section, qs_exp_field_at((size_t)f)->name);
        if (twice(c, b, f, qs_yaml_line(v), section) < 0)
            return qs_last_status();
        if (b->naxes >= QS_EXP_MAX_FIELDS)
            return qs_error(QS_ERR_INVALID, "%s:%d: %s: too many axes", c->file, qs_yaml_line(v), section);
        qs_exp_axis_t *a = &b->axis[b->naxes++];
        memset(a, 0, sizeof *a);
        a->field = f;
        a->line = qs_yaml_line(v);
        axisarg_t aa = {f, a};
        int rc = qs_yaml_kind(v) == QS_YAML_MAP ? axis_range(c, v, key, &aa) : each_scalar(c, v, key, axis_value, &aa);
        if (rc < 0)
            return rc;
    }
    return QS_OK;
}

static int read_mode(const ctx_t *c, const qs_yaml_node_t *map, qs_exp_block_t *b, const char *section)
{
    const char *mode = "cartesian";
    int64_t count = 0, seed = 1;
    if (qs_yaml_get_str(c->d, map, "mode", false, &mode) < 0 || qs_yaml_get_int(c->d, map, "count", false, &count) < 0 ||
        qs_yaml_get_int(c->d, map, "seed", false, &seed) < 0)
        return qs_last_status();
    static const char *const modes[] = {"cartesian", "zip", "random", NULL};
    int m = -1;
    for (int i = 0; modes[i]; i++)
        if (strcmp(mode, modes[i]) == 0)
            m = i;
    const qs_yaml_node_t *mn = qs_yaml_get(map, "mode");
    if (m < 0)
        return qs_error(QS_ERR_INVALID, "%s:%d: %s: mode: unknown value '%s', expected one of: cartesian, zip, random",
                        c->file, qs_yaml_line(mn), section, mode);
    b->mode = (qs_combine_t)m;
    const qs_yaml_node_t *cn = qs_yaml_get(map, "count");
    if (b->mode == QS_COMBINE_RANDOM && count < 1)
        return qs_error(QS_ERR_INVALID, "%s:%d: %s: mode random needs count: N (N >= 1)", c->file,
                        qs_yaml_line(cn ? cn : (mn ? mn : map)), section);
    if (b->mode != QS_COMBINE_RANDOM && (cn || qs_yaml_get(map, "seed")))
        return qs_error(QS_ERR_INVALID, "%s:%d: %s: count and seed belong to mode random", c->file,
                        qs_yaml_line(cn ? cn : qs_yaml_get(map, "seed")), section);
    if (seed < 0)
        return qs_error(QS_ERR_INVALID, "%s:%d: %s: seed must be >= 0", c->file, qs_yaml_line(qs_yaml_get(map, "seed")),
                        section);
    b->count = count;
    b->seed = (uint64_t)seed;

    if (b->mode == QS_COMBINE_ZIP)
        for (int i = 1; i < b->naxes; i++)
            if (b->axis[i].nvalues != b->axis[0].nvalues)
                return qs_error(QS_ERR_INVALID, "%s:%d: %s: mode zip needs axes of one length, but '%s' has %d values "
                                "and '%s' has %d", c->file, b->axis[i].line, section,
                                qs_exp_field_at((size_t)b->axis[0].field)->name, b->axis[0].nvalues,
                                qs_exp_field_at((size_t)b->axis[i].field)->name, b->axis[i].nvalues);
    if (b->mode == QS_COMBINE_RANDOM) {
        double total = 1;
        for (int i = 0; i < b->naxes; i++)
            total *= b->axis[i].nvalues;
        if ((double)count > total)
            return qs_error(QS_ERR_INVALID, "%s:%d: %s: count %lld is more than the %.0f points of the axes",
                            c->file, qs_yaml_line(cn), section, (long long)count, total);
    }
    return QS_OK;
}

/* Settings that contradict each other within a block: a field that does not
 * apply to the engine the block fixes, or accumulators set by hand where the
 * target sets them. */
static int check_block(const ctx_t *c, const qs_exp_block_t *b, const char *section)
{
    int line, eline;
    bool ax, eax;
    int ef = qs_exp_field_index("engine");
    int ei = find_setting(b, ef, &eline, &eax);
    if (ei < 0 || !eax) {
        /* a fixed engine, or the default one for every point */
        const char *engine = ei >= 0 ? b->fixed[ei] : qs_exp_field_at((size_t)ef)->def;
        if (ei < 0)
            eline = 0;
        unsigned mask = strcmp(engine, "float") == 0 ? QS_ENG_FLOAT : strcmp(engine, "int") == 0 ? QS_ENG_INT : QS_ENG_FAKE;
        for (size_t f = 0; f < qs_exp_field_count(); f++)
            if (find_setting(b, (int)f, &line, &ax) >= 0 && !(qs_exp_field_at(f)->engines & mask))
            {
                if (eline)
                    return qs_error(QS_ERR_INVALID, "%s:%d: %s%s: field '%s' does not apply to engine %s (fixed at "
                                    "line %d)", c->file, line, section, ax ? "axes" : "fixed",
                                    qs_exp_field_at(f)->name, engine, eline);
                return qs_error(QS_ERR_INVALID, "%s:%d: %s%s: field '%s' does not apply to engine %s, the default: "
                                "set engine", c->file, line, section, ax ? "axes" : "fixed",
                                qs_exp_field_at(f)->name, engine);
            }
    }
    int ai = find_setting(b, qs_exp_field_index("arithmetic"), &line, &ax);
    bool arith_target = ai >= 0 && !ax && strcmp(b->fixed[ai], "target") == 0;
    for (int k = 0; ai >= 0 && ax && k < b->axis[ai].nvalues; k++)
        arith_target |= strcmp(b->axis[ai].value[k], "target") == 0;
    if (arith_target) {
        if (c->nlayers_int > 0)
            return qs_error(QS_ERR_INVALID, "%s:%d: layers: '%s': with arithmetic: target (line %d) the target "
                            "sets every layer's accumulator and requantizer", c->file, c->layer_int_line, c->layer_int,
                            line);
        static const char *const own[] = {"acc", "requant"};
        for (int k = 0; k < 2; k++) {
            int l2;
            if (find_setting(b, qs_exp_field_index(own[k]), &l2, &ax) >= 0)
                return qs_error(QS_ERR_INVALID, "%s:%d: %s%s: field '%s' conflicts with arithmetic: target (line %d), "
                                "which takes it from each target", c->file, l2, section, ax ? "axes" : "fixed", own[k],
                                line);
        }
        int l3;
        if (find_setting(b, qs_exp_field_index("target"), &l3, &ax) < 0)
            return qs_error(QS_ERR_INVALID, "%s:%d: %sfixed: arithmetic: target needs a target (a field or the spec's "
                            "targets)", c->file, line, section);
    }
    return QS_OK;
}

static const char *const top_keys[] = {"name", "output", "models", "calibration", "evaluation", "repeats", "layers",
                                       "metrics", "figures", "fixed", "axes", "mode", "count", "seed", "targets",
                                       "sweeps", NULL};
static const char *const block_keys[] = {"name", "fixed", "axes", "mode", "count", "seed", NULL};
static const char *const data_keys[] = {"data", "images", "seed", NULL};
static const char *const figure_keys[] = {"name", "kind", "x", "y", "z", "group_by", "where", "title", "format", NULL};

static int read_data(const ctx_t *c, const qs_yaml_node_t *root, const char *key, char *data, size_t n,
                     int64_t *images, uint64_t *seed)
{
    const qs_yaml_node_t *m = qs_yaml_get(root, key);
    if (!m)
        return QS_OK;
    if (expect(c, m, key, QS_YAML_MAP) < 0 || qs_yaml_check_keys(c->d, m, data_keys) < 0)
        return qs_last_status();
    const char *dv = NULL;
    int64_t s = (int64_t)*seed;
    if (qs_yaml_get_str(c->d, m, "data", false, &dv) < 0 || qs_yaml_get_int(c->d, m, "images", false, images) < 0 ||
        qs_yaml_get_int(c->d, m, "seed", false, &s) < 0)
        return qs_last_status();
    if (dv) {
        if (ends_with(dv, ".h5")) { /* a dataset file, relative to the spec; fmnist:train and the like are names */
            char file[2200];
            spec_path(c, dv, file, sizeof file);
            if (strlen(file) >= n)
                return qs_error(QS_ERR_INVALID, "%s:%d: %s: data: the path is longer than %zu characters", c->file,
                                qs_yaml_line(qs_yaml_get(m, "data")), key, n - 1);
            snprintf(data, n, "%s", file);
        } else {
            snprintf(data, n, "%s", dv);
        }
    }
    if (*images < 1)
        return qs_error(QS_ERR_INVALID, "%s:%d: %s: images must be >= 1", c->file,
                        qs_yaml_line(qs_yaml_get(m, "images")), key);
    if (s < 0)
        return qs_error(QS_ERR_INVALID, "%s:%d: %s: seed must be >= 0", c->file, qs_yaml_line(qs_yaml_get(m, "seed")),
                        key);
    *seed = (uint64_t)s;
    return QS_OK;
}

static int read_figures(const ctx_t *c, const qs_yaml_node_t *root, qs_exp_spec_t *s)
{
    const qs_yaml_node_t *fl = qs_yaml_get(root, "figures");
    if (!fl)
        return QS_OK;
    if (expect(c, fl, "figures", QS_YAML_SEQ) < 0)
        return qs_last_status();
    s->figure = calloc(qs_yaml_len(fl) + 1, sizeof *s->figure);
    if (!s->figure)
        return qs_error(QS_ERR_NOMEM, "out of memory reading %s", c->file);
    for (size_t i = 0; i < qs_yaml_len(fl); i++) {
        const qs_yaml_node_t *m = qs_yaml_at(fl, i);
        if (expect(c, m, "figures", QS_YAML_MAP) < 0 || qs_yaml_check_keys(c->d, m, figure_keys) < 0)
            return qs_last_status();
        qs_exp_figure_t *f = &s->figure[s->nfigures++];
        f->line = qs_yaml_line(m);
        const char *v[9] = {NULL};
        static const char *const k[] = {"name", "kind", "x", "y", "z", "group_by", "where", "title", "format"};
        for (int j = 0; j < 9; j++)
            if (qs_yaml_get_str(c->d, m, k[j], j == 2 || j == 3, &v[j]) < 0)
                return qs_last_status();
        qs_plot_kind_t kind = QS_PLOT_PARETO;
        if (v[1] && qs_plot_kind_parse(v[1], &kind) < 0)
            return at(c, qs_yaml_get(m, "kind"), "figures: kind");
        if (!v[1])
            kind = qs_metric_find(v[2]) && qs_metric_find(v[3]) ? QS_PLOT_PARETO : QS_PLOT_LINE; /* as quasar plot */
        if (kind == QS_PLOT_HEATMAP && !v[4])
            return qs_error(QS_ERR_INVALID, "%s:%d: figures: a heatmap needs z (the metric to colour by)", c->file,
                            f->line);
        if (v[8] && strcmp(v[8], "png") && strcmp(v[8], "pdf") && strcmp(v[8], "svg"))
            return qs_error(QS_ERR_INVALID, "%s:%d: figures: format: unknown value '%s', expected one of: png, pdf, svg",
                            c->file, qs_yaml_line(qs_yaml_get(m, "format")), v[8]);
        /* columns are checked when the figure is drawn (the rows decide which exist) */
        for (int j = 2; j <= 5; j++)
            if (v[j] && !qs_metric_find(v[j]) && qs_exp_field_index(v[j]) < 0 && strcmp(v[j], "model") &&
                strcmp(v[j], "sweep") && strcmp(v[j], "repeat") && strcmp(v[j], "status") &&
                strcmp(v[j], "layer") && strcmp(v[j], "op") && strcmp(v[j], "unit") && strcmp(v[j], "verdict") &&
                !(strlen(v[j]) > 4 && strcmp(v[j] + strlen(v[j]) - 4, "_std") == 0) &&
                !(strlen(v[j]) > 5 && strcmp(v[j] + strlen(v[j]) - 5, "_mean") == 0))
                return qs_error(QS_ERR_INVALID, "%s:%d: figures: %s: '%s' is neither a metric nor a field", c->file,
                                qs_yaml_line(qs_yaml_get(m, k[j])), k[j], v[j]);
        snprintf(f->kind, sizeof f->kind, "%s", qs_plot_kind_name(kind));
        snprintf(f->x, sizeof f->x, "%s", v[2]);
        snprintf(f->y, sizeof f->y, "%s", v[3]);
        snprintf(f->z, sizeof f->z, "%s", v[4] ? v[4] : "");
        snprintf(f->group_by, sizeof f->group_by, "%s", v[5] ? v[5] : "");
        snprintf(f->where, sizeof f->where, "%s", v[6] ? v[6] : "");
        snprintf(f->title, sizeof f->title, "%s", v[7] ? v[7] : "");
        snprintf(f->format, sizeof f->format, "%s", v[8] ? v[8] : "png");
        if (v[0] && check_name(c, qs_yaml_get(m, "name"), "figures: name", v[0]) < 0)
            return qs_last_status();
        if (v[0])
            snprintf(f->name, sizeof f->name, "%s", v[0]);
        else
            snprintf(f->name, sizeof f->name, "%s-%s-vs-%s", f->kind, f->y, f->x);
        for (int j = 0; j < s->nfigures - 1; j++)
            if (strcmp(s->figure[j].name, f->name) == 0)
                return qs_error(QS_ERR_INVALID, "%s:%d: figures: two figures named '%s' (give each a name)", c->file,
                                f->line, f->name);
    }
    return QS_OK;
}

static int read_block(const ctx_t *c, const qs_yaml_node_t *m, const qs_exp_block_t *top, const char *name,
                      qs_exp_block_t *b)
{
    /* top: the spec's fixed settings under sweeps; NULL: m is the spec itself */
    if (top)
        *b = *top;
    else
        memset(b, 0, sizeof *b);
    b->naxes = 0;
    snprintf(b->name, sizeof b->name, "%s", name);
    b->line = qs_yaml_line(m);
    char fsec[160], asec[160];
    snprintf(fsec, sizeof fsec, top ? "sweep '%s': fixed" : "fixed", name);
    snprintf(asec, sizeof asec, top ? "sweep '%s': axes" : "axes", name);
    const qs_yaml_node_t *fx = qs_yaml_get(m, "fixed"), *ax = qs_yaml_get(m, "axes");
    if (fx && read_fixed(c, fx, b, fsec) < 0)
        return qs_last_status();
    if (ax && read_axes(c, ax, b, asec) < 0)
        return qs_last_status();
    char section[128];
    snprintf(section, sizeof section, top ? "sweep '%s'" : "mode", name);
    if (read_mode(c, m, b, section) < 0)
        return qs_last_status();
    /* a value twice on an axis is a mistake, except in a zip, where the axes are columns */
    for (int i = 0; b->mode != QS_COMBINE_ZIP && i < b->naxes; i++)
        for (int j = 0; j < b->axis[i].nvalues; j++)
            for (int k = 0; k < j; k++)
                if (strcmp(b->axis[i].value[j], b->axis[i].value[k]) == 0)
                    return qs_error(QS_ERR_INVALID, "%s:%d: %s: %s: value '%s' appears twice", c->file,
                                    b->axis[i].line, asec, qs_exp_field_at((size_t)b->axis[i].field)->name,
                                    b->axis[i].value[j]);
    return QS_OK;
}

void qs_exp_spec_free(qs_exp_spec_t *s)
{
    if (!s)
        return;
    free(s->text);
    free(s->model);
    free(s->layer);
    free(s->metric);
    free(s->figure);
    for (int i = 0; s->block && i < s->nblocks; i++)
        for (int j = 0; j < s->block[i].naxes; j++)
            free(s->block[i].axis[j].value);
    free(s->block);
    free(s);
}

/* Every block gets the spec's targets as an axis unless it sets target itself. */
static int add_targets(const ctx_t *c, const qs_yaml_node_t *tn, qs_exp_spec_t *s)
{
    int tf = qs_exp_field_index("target");
    for (int i = 0; i < s->nblocks; i++) {
        qs_exp_block_t *b = &s->block[i];
        int line;
        bool ax;
        if (find_setting(b, tf, &line, &ax) >= 0)
            continue;
        if (b->naxes >= QS_EXP_MAX_FIELDS)
            return qs_error(QS_ERR_INVALID, "%s:%d: targets: too many axes", c->file, qs_yaml_line(tn));
        qs_exp_axis_t *a = &b->axis[b->naxes++];
        memset(a, 0, sizeof *a);
        a->field = tf;
        a->line = qs_yaml_line(tn);
        a->cross = true;
        axisarg_t aa = {tf, a};
        if (each_scalar(c, tn, "targets", axis_value, &aa) < 0)
            return qs_last_status();
    }
    return QS_OK;
}

static int parse_doc(const ctx_t *c, const qs_yaml_node_t *root, qs_exp_spec_t *s)
{
    if (!root || qs_yaml_kind(root) != QS_YAML_MAP)
        return qs_error(QS_ERR_FORMAT, "%s: an experiment spec is a YAML map (docs/spec.md, \"Experiment specs\")",
                        c->file);
    if (qs_yaml_check_keys(c->d, root, top_keys) < 0)
        return qs_last_status();
    const char *name = NULL, *output = NULL;
    int64_t repeats = 1;
    if (qs_yaml_get_str(c->d, root, "name", false, &name) < 0 || qs_yaml_get_str(c->d, root, "output", false, &output) < 0 ||
        qs_yaml_get_int(c->d, root, "repeats", false, &repeats) < 0)
        return qs_last_status();
    if (name) {
        if (check_name(c, qs_yaml_get(root, "name"), "name", name) < 0)
            return qs_last_status();
        snprintf(s->name, sizeof s->name, "%s", name);
    }
    if (repeats < 1 || repeats > 1000)
        return qs_error(QS_ERR_INVALID, "%s:%d: repeats: expected 1..1000, got %lld", c->file,
                        qs_yaml_line(qs_yaml_get(root, "repeats")), (long long)repeats);
    s->repeats = (int)repeats;
    snprintf(s->output, sizeof s->output, "%s", output ? output : "");
    if (!output)
        snprintf(s->output, sizeof s->output, "out/%s", s->name);
    specarg_t sa = {s};
    const qs_yaml_node_t *n;
    if (!(n = qs_yaml_get(root, "models")))
        return qs_error(QS_ERR_INVALID, "%s: missing key 'models' (the model files to quantize)", c->file);
    if (each_scalar(c, n, "models", add_model, &sa) < 0)
        return qs_last_status();
    snprintf(s->calib_data, sizeof s->calib_data, "fmnist:train");
    snprintf(s->eval_data, sizeof s->eval_data, "fmnist:test");
    s->calib_images = 1000;
    s->calib_seed = 1;
    s->eval_images = 10000;
    s->eval_seed = 1;
    if (read_data(c, root, "calibration", s->calib_data, sizeof s->calib_data, &s->calib_images, &s->calib_seed) < 0 ||
        read_data(c, root, "evaluation", s->eval_data, sizeof s->eval_data, &s->eval_images, &s->eval_seed) < 0)
        return qs_last_status();
    if ((n = qs_yaml_get(root, "layers")) && each_scalar(c, n, "layers", add_layer, &sa) < 0)
        return qs_last_status();
    if ((n = qs_yaml_get(root, "metrics")) && each_scalar(c, n, "metrics", add_metric, &sa) < 0)
        return qs_last_status();
    if (read_figures(c, root, s) < 0)
        return qs_last_status();

    qs_exp_block_t top;
    memset(&top, 0, sizeof top);
    const qs_yaml_node_t *sw = qs_yaml_get(root, "sweeps");
    if (sw && (n = qs_yaml_get(root, "fixed")) && read_fixed(c, n, &top, "fixed") < 0)
        return qs_last_status();
    if (sw) {
        static const char *const own[] = {"axes", "mode", "count", "seed"};
        for (int k = 0; k < 4; k++)
            if ((n = qs_yaml_get(root, own[k])))
                return qs_error(QS_ERR_INVALID, "%s:%d: %s: with sweeps, each sweep has its own %s", c->file,
                                qs_yaml_line(n), own[k], own[k]);
        if (expect(c, sw, "sweeps", QS_YAML_SEQ) < 0)
            return qs_last_status();
        if (qs_yaml_len(sw) == 0)
            return qs_error(QS_ERR_FORMAT, "%s:%d: sweeps: empty list", c->file, qs_yaml_line(sw));
        s->block = calloc(qs_yaml_len(sw), sizeof *s->block);
        if (!s->block)
            return qs_error(QS_ERR_NOMEM, "out of memory reading %s", c->file);
        for (size_t i = 0; i < qs_yaml_len(sw); i++) {
            const qs_yaml_node_t *m = qs_yaml_at(sw, i);
            if (expect(c, m, "sweeps", QS_YAML_MAP) < 0 || qs_yaml_check_keys(c->d, m, block_keys) < 0)
                return qs_last_status();
            const char *bn = NULL;
            if (qs_yaml_get_str(c->d, m, "name", false, &bn) < 0 ||
                (bn && check_name(c, qs_yaml_get(m, "name"), "sweeps: name", bn) < 0))
                return qs_last_status();
            char def[32];
            snprintf(def, sizeof def, "sweep%zu", i + 1);
            for (size_t j = 0; bn && j < i; j++)
                if (strcmp(s->block[j].name, bn) == 0)
                    return qs_error(QS_ERR_INVALID, "%s:%d: sweeps: two sweeps named '%s'", c->file,
                                    qs_yaml_line(qs_yaml_get(m, "name")), bn);
            s->nblocks++; /* counted before it is read: qs_exp_spec_free frees what a failed read kept */
            if (read_block(c, m, &top, bn ? bn : def, &s->block[i]) < 0)
                return qs_last_status();
        }
    } else {
        s->block = calloc(1, sizeof *s->block);
        if (!s->block)
            return qs_error(QS_ERR_NOMEM, "out of memory reading %s", c->file);
        s->nblocks = 1;
        if (read_block(c, root, NULL, "main", &s->block[0]) < 0)
            return qs_last_status();
        s->block[0].line = 1;
    }
    if ((n = qs_yaml_get(root, "targets")) && add_targets(c, n, s) < 0)
        return qs_last_status();
    for (int i = 0; i < s->nblocks; i++) {
        char section[128] = ""; /* the prefix of the messages */
        if (sw)
            snprintf(section, sizeof section, "sweep '%s': ", s->block[i].name);
        if (check_block(c, &s->block[i], section) < 0)
            return qs_last_status();
    }
    return QS_OK;
}

static int parse(const char *text, size_t len, const char *file, const char *path, qs_exp_spec_t **out)
{
    *out = NULL;
    qs_exp_spec_t *s = calloc(1, sizeof *s);
    if (!s || !(s->text = malloc(len + 1))) {
        free(s);
        return qs_error(QS_ERR_NOMEM, "out of memory reading %s", file);
    }
    memcpy(s->text, text, len);
    s->text[len] = '\0';
    snprintf(s->path, sizeof s->path, "%s", path ? path : "");
    ctx_t c = {NULL, file, "", 0, 0, NULL};
    if (path) {
        const char *slash = strrchr(path, '/');
        if (slash)
            snprintf(c.dir, sizeof c.dir, "%.*s", (int)(slash - path), path);
    }
    /* the default name: the file's, without folder and extension */
    const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
    snprintf(s->name, sizeof s->name, "%.*s", (int)(strcspn(base, ".")), base);
    if (!s->name[0])
        snprintf(s->name, sizeof s->name, "sweep");
    qs_yaml_doc_t *d = qs_yaml_parse(text, len, file);
    int rc;
    if (!d)
        rc = qs_last_status() < 0 ? qs_last_status() : qs_error(QS_ERR_FORMAT, "%s: not a YAML document", file);
    else {
        c.d = d;
        rc = parse_doc(&c, qs_yaml_root(d), s);
    }
    qs_yaml_free(d);
    if (rc < 0) {
        qs_exp_spec_free(s);
        return rc;
    }
    *out = s;
    return QS_OK;
}

int qs_exp_spec_parse(const char *text, size_t len, const char *name, qs_exp_spec_t **out)
{
    if (!out)
        return qs_error(QS_ERR_INVALID, "qs_exp_spec_parse: no result");
    if (!text)
        return qs_error(QS_ERR_INVALID, "qs_exp_spec_parse: no text");
    return parse(text, len, name ? name : "spec", NULL, out);
}

int qs_exp_spec_load(const char *path, qs_exp_spec_t **out)
{
    if (!out || !path)
        return qs_error(QS_ERR_INVALID, "qs_exp_spec_load: no path or result");
    *out = NULL;
    char *buf = NULL;
    size_t len = 0;
    if (qs_file_read(path, "spec", 64u << 20, &buf, &len) < 0)
        return qs_last_status();
    int rc = parse(buf, len, path, path, out);
    free(buf);
    return rc;
}
