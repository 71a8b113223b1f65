/* experiments/registry.c — the field registry: one table naming every
 * setting a spec can fix or sweep (docs/spec.md, "Fields"). The table says
 * the type, the default, the engines a field applies to and the stage whose
 * cache its value enters; the spec reader, the planner, the sweep and the
 * results columns all read it, so a new sweepable setting is one line here
 * (plus the code that applies it in experiments/sweep.c). */
#include "experiments/exp_internal.h"
#include "sim/dfq.h"
#include "sim/lowrank.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const engine_names[] = {"float", "fake", "int", NULL};
static const char *const arithmetic_names[] = {"none", "target", NULL};

#define QF (QS_ENG_FAKE | QS_ENG_INT)
static const qs_exp_field_t fields[] = {
    {"engine", QS_FIELD_CHOICE, "fake", engine_names, 0, 0, QS_ENG_ALL, QS_STAGE_ENGINE,
     "float (reference), fake (fake quantization) or int (bit-exact integer engine)"},
    {"prune_method", QS_FIELD_TEXT, "", NULL, 0, 0, QS_ENG_ALL, QS_STAGE_MODEL,
     "pruning before quantization: none (the default, also when empty), magnitude, global, nm:N:M, channel-l1, "
     "channel-l2, channel-act (docs/compression.md)"},
    {"prune_ratio", QS_FIELD_TEXT, "", NULL, 0, 0, QS_ENG_ALL, QS_STAGE_MODEL,
     "the fraction pruned, in [0, 1) (magnitude, global: of the weights; channel-*: of each layer's channels)"},
    {"prune_refit", QS_FIELD_TEXT, "", NULL, 0, 0, QS_ENG_ALL, QS_STAGE_MODEL,
     "yes: channel pruning re-solves each reader's weights by least squares on the calibration images"},
    {"lowrank", QS_FIELD_TEXT, "", NULL, 0, 0, QS_ENG_ALL, QS_STAGE_MODEL,
     "low-rank factorization after pruning: channel or spatial (SVD; docs/compression.md)"},
    {"lowrank_ratio", QS_FIELD_TEXT, "", NULL, 0, 0, QS_ENG_ALL, QS_STAGE_MODEL,
     "the kept rank as a fraction of the full rank, in (0, 1]"},
    {"lowrank_energy", QS_FIELD_TEXT, "", NULL, 0, 0, QS_ENG_ALL, QS_STAGE_MODEL,
     "the largest fraction of squared singular values the rank may discard, in [0, 1)"},
    {"bn_reestimate", QS_FIELD_TEXT, "", NULL, 0, 0, QS_ENG_ALL, QS_STAGE_MODEL,
     "yes: after pruning, every batchnorm's statistics re-estimated on the calibration images (no: the default)"},
    {"finetune_epochs", QS_FIELD_INT, "", NULL, 0, 1000, QS_ENG_ALL, QS_STAGE_MODEL,
     "after pruning: epochs of training on the calibration split's data with the masks fixed (SGD, cosine from 0.01)"},
    {"dfq", QS_FIELD_TEXT, "", NULL, 0, 0, QF, QS_STAGE_QUANT,
     "data-free quantization (Nagel et al. 2019) before calibration: none (the default), cle, cle+absorb, "
     "cle+absorb+bc, bc (analytic bias correction against the run's weights)"},
    {"preset", QS_FIELD_TEXT, "w8a8", NULL, 0, 0, QF, QS_STAGE_QUANT,
     "the starting quantization, wNaM (docs/quantization.md, \"Presets\"); the fields below apply on top"},
    {"weights", QS_FIELD_TEXT, "", NULL, 0, 0, QF, QS_STAGE_QUANT, "quantizer spec words for every layer's weights"},
    {"acts", QS_FIELD_TEXT, "", NULL, 0, 0, QF, QS_STAGE_QUANT, "quantizer spec words for every activation point"},
    {"w_grid", QS_FIELD_TEXT, "", NULL, 0, 0, QF, QS_STAGE_QUANT, "grid of the weights (grid=)"},
    {"w_bits", QS_FIELD_INT, "", NULL, 1, 16, QF, QS_STAGE_QUANT, "bits of the weights"},
    {"w_scheme", QS_FIELD_TEXT, "", NULL, 0, 0, QF, QS_STAGE_QUANT, "scheme of the weights (symmetric, asymmetric, ...)"},
    {"w_gran", QS_FIELD_TEXT, "", NULL, 0, 0, QF, QS_STAGE_QUANT, "granularity of the weights (tensor, channel, group:G)"},
    {"w_range", QS_FIELD_TEXT, "", NULL, 0, 0, QF, QS_STAGE_QUANT, "range method of the weights (minmax, mse, ...)"},
    {"w_round", QS_FIELD_TEXT, "", NULL, 0, 0, QF, QS_STAGE_QUANT, "rounding of the weights (nearest-even, ...)"},
    {"a_grid", QS_FIELD_TEXT, "", NULL, 0, 0, QF, QS_STAGE_QUANT, "grid of the activations"},
    {"a_bits", QS_FIELD_INT, "", NULL, 1, 16, QF, QS_STAGE_QUANT, "bits of the activations"},
    {"a_scheme", QS_FIELD_TEXT, "", NULL, 0, 0, QF, QS_STAGE_QUANT, "scheme of the activations"},
    {"a_range", QS_FIELD_TEXT, "", NULL, 0, 0, QF, QS_STAGE_QUANT, "range method of the activations (minmax, percentile, mse, kl, ...)"},
    {"a_round", QS_FIELD_TEXT, "", NULL, 0, 0, QF, QS_STAGE_QUANT, "rounding of the activations (nearest-even, stochastic, ...)"},
    {"acc", QS_FIELD_TEXT, "", NULL, 0, 0, QS_ENG_INT, QS_STAGE_ENGINE,
     "the integer engine's accumulator (acc= grammar: int16, int16,overflow=saturate, ...)"},
    {"requant", QS_FIELD_TEXT, "", NULL, 0, 0, QS_ENG_INT, QS_STAGE_ENGINE, "the integer engine's requantizer (requant= grammar)"},
    {"arithmetic", QS_FIELD_CHOICE, "none", arithmetic_names, 0, 0, QS_ENG_INT, QS_STAGE_ENGINE,
     "target: the integer engine computes with the target's native accumulators and requantizer"},
    {"target", QS_FIELD_TEXT, "", NULL, 0, 0, QS_ENG_ALL, QS_STAGE_COST,
     "the hardware target that prices the run (a shipped name or a target file; all: every shipped one)"},
    {"unit", QS_FIELD_TEXT, "", NULL, 0, 0, QS_ENG_ALL, QS_STAGE_COST, "the target's compute unit preferred where it can run a layer"},
    {"batch", QS_FIELD_INT, "1", NULL, 1, 1 << 20, QS_ENG_ALL, QS_STAGE_COST,
     "inferences sharing one read of the weights, for the cost"},
};
#undef QF

_Static_assert(sizeof fields / sizeof fields[0] <= QS_EXP_MAX_FIELDS, "raise QS_EXP_MAX_FIELDS");

size_t qs_exp_field_count(void) { return sizeof fields / sizeof fields[0]; }

const qs_exp_field_t *qs_exp_field_at(size_t i) { return i < qs_exp_field_count() ? &fields[i] : NULL; }

int qs_exp_field_index(const char *name)
{
    for (size_t i = 0; name && i < qs_exp_field_count(); i++)
        if (strcmp(fields[i].name, name) == 0)
            return (int)i;
    return -1;
}

const char *qs_exp_stage_name(qs_field_stage_t s)
{
    static const char *const n[] = {"model", "quant", "engine", "cost"};
    return s >= 0 && s <= QS_STAGE_COST ? n[s] : "?";
}

/* The quantizer key a w_/a_ field sets. */
static const char *quant_key(const char *name) { return name + 2; }

int qs_exp_field_canon(const qs_exp_field_t *f, const char *value, char *buf, size_t n)
{
    if (!value)
        value = "";
    while (*value == ' ')
        value++;
    if (strlen(value) >= n || strlen(value) >= QS_EXP_VALUE_MAX)
        return qs_error(QS_ERR_INVALID, "%s: the value is longer than %d characters", f->name, QS_EXP_VALUE_MAX - 1);
    switch (f->type) {
    case QS_FIELD_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (!*value || *end || errno || v < f->lo || v > f->hi)
            return qs_error(QS_ERR_INVALID, "%s: expected an integer in %lld..%lld, got '%s'", f->name,
                            (long long)f->lo, (long long)f->hi, value);
        snprintf(buf, n, "%lld", v);
        if (v == 0 && strcmp(f->name, "finetune_epochs") == 0)
            buf[0] = '\0'; /* no fine-tuning, as when unset: one point */
        return QS_OK;
    }
    case QS_FIELD_CHOICE:
        for (int i = 0; f->choices[i]; i++)
            if (strcmp(value, f->choices[i]) == 0) {
                snprintf(buf, n, "%s", value);
                return QS_OK;
            }
        {
            char list[256] = "";
            for (int i = 0; f->choices[i]; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", f->choices[i]);
            return qs_error(QS_ERR_INVALID, "%s: unknown value '%s', expected one of: %s", f->name, value, list);
        }
    case QS_FIELD_TEXT:
        break;
    }
    if (!*value)
        return qs_error(QS_ERR_INVALID, "%s: empty value", f->name);
    char what[80];
    snprintf(what, sizeof what, "%s", f->name);
    /* acc and requant are checked but kept as written: they are the labels of figures */
    if (strcmp(f->name, "acc") == 0) {
        qs_acc_t a;
        qs_acc_default(&a);
        if (qs_acc_parse(value, what, &a) < 0)
            return qs_last_status();
    }
    if (strcmp(f->name, "requant") == 0) {
        qs_requant_t r;
        qs_requant_default(&r);
        if (qs_requant_parse(value, what, &r) < 0)
            return qs_last_status();
    }
    if (strcmp(f->name, "prune_method") == 0) {
        qs_prune_opts_t po;
        qs_prune_opts_default(&po);
        if (*value && qs_prune_parse(value, what, &po) < 0)
            return qs_last_status();
        if (strcmp(value, "none") == 0) { /* the default, spelt as the default is: runs stay one point */
            buf[0] = '\0';
            return QS_OK;
        }
        if (po.method == QS_PRUNE_NM) { /* nm is nm:2:4 */
            snprintf(buf, n, "nm:%d:%d", po.n, po.m);
            return QS_OK;
        }
    }
    if (strcmp(f->name, "dfq") == 0) {
        unsigned steps = 0;
        if (*value && qs_dfq_method_parse(value, what, &steps) < 0)
            return qs_last_status();
        char name[64];
        snprintf(buf, n, "%s", steps ? qs_dfq_method_str(steps, name, sizeof name) : ""); /* none: the default, "" */
        return QS_OK;
    }
    if (strcmp(f->name, "bn_reestimate") == 0 || strcmp(f->name, "prune_refit") == 0) {
        static const char *const yn[] = {"no", "yes", NULL};
        int k;
        if (*value && qs_kv_choice(what, NULL, value, yn, &k) < 0)
            return qs_last_status();
        snprintf(buf, n, "%s", *value && k == 1 ? "yes" : ""); /* no is the default, spelt as the default is */
        return QS_OK;
    }
    if (strcmp(f->name, "lowrank") == 0 && *value) {
        qs_lowrank_kind_t k;
        if (qs_lowrank_kind_parse(value, what, &k) < 0)
            return qs_last_status();
    }
    bool fraction = strcmp(f->name, "prune_ratio") == 0 || strcmp(f->name, "lowrank_ratio") == 0 ||
                    strcmp(f->name, "lowrank_energy") == 0;
    if (fraction && *value) {
        double d;
        bool lr = strcmp(f->name, "lowrank_ratio") == 0;
        if (qs_kv_double(what, NULL, value, lr ? 1e-9 : 0.0, lr ? 1.0 : 0.999999, &d) < 0)
            return qs_last_status();
        /* canonical: the shortest form that reads back, so 0.5 and 0.50 are one value */
        char b[40];
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(b, sizeof b, "%.*g", prec, d);
            if (strtod(b, NULL) == d)
                break;
        }
        snprintf(buf, n, "%s", b);
        return QS_OK;
    }
    if (strcmp(f->name, "preset") == 0) {
        qs_qconfig_t c;
        if (qs_qconfig_preset(&c, value, what) < 0)
            return qs_last_status();
    } else if (strcmp(f->name, "weights") == 0 || strcmp(f->name, "acts") == 0) {
        qs_quantizer_t q;
        qs_quantizer_default(&q);
        if (strcmp(value, "float") != 0 && qs_quantizer_parse(value, what, &q) < 0)
            return qs_last_status();
    } else if (f->name[0] && f->name[1] == '_' && (f->name[0] == 'w' || f->name[0] == 'a')) {
        char word[QS_EXP_VALUE_MAX + 16];
        snprintf(word, sizeof word, "%s=%s", quant_key(f->name), value);
        qs_quantizer_t q;
        qs_quantizer_default(&q);
        if (qs_quantizer_parse(word, what, &q) < 0)
            return qs_last_status();
    }
    snprintf(buf, n, "%s", value);
    return QS_OK;
}

int qs_exp_apply_quant(const qs_exp_run_t *r, const char *const *layers, int nlayers, qs_qconfig_t *c)
{
    const char *preset = qs_exp_run_value(r, "preset");
    if (qs_qconfig_preset(c, *preset ? preset : "w8a8", "preset") < 0)
        return qs_last_status();
    const char *ws = qs_exp_run_value(r, "weights"), *as = qs_exp_run_value(r, "acts");
    if (*ws && qs_qconfig_set(c, QS_QT_WEIGHTS, ws, "weights") < 0)
        return qs_last_status();
    if (*as && qs_qconfig_set(c, QS_QT_ACTS, as, "acts") < 0)
        return qs_last_status();
    for (size_t i = 0; i < qs_exp_field_count(); i++) {
        const char *name = fields[i].name, *v = r->value[i];
        if (!*v || name[1] != '_' || (name[0] != 'w' && name[0] != 'a'))
            continue;
        char word[QS_EXP_VALUE_MAX + 16];
        snprintf(word, sizeof word, "%s=%s", quant_key(name), v);
        if (qs_qconfig_set(c, name[0] == 'w' ? QS_QT_WEIGHTS : QS_QT_ACTS, word, name) < 0)
            return qs_last_status();
    }
    c->on[QS_QT_BIAS] = c->on[QS_QT_WEIGHTS] && c->on[QS_QT_ACTS];
    for (int i = 0; i < nlayers; i++)
        if (!qs_exp_layer_is_int(layers[i]) && qs_qconfig_override(c, layers[i], "layers") < 0)
            return qs_last_status();
    return QS_OK;
}

int qs_exp_apply_lowrank(const qs_exp_run_t *r, qs_lowrank_opts_t *o, bool *on)
{
    qs_lowrank_opts_default(o);
    const char *k = qs_exp_run_value(r, "lowrank"), *ra = qs_exp_run_value(r, "lowrank_ratio"),
               *en = qs_exp_run_value(r, "lowrank_energy");
    *on = *k != '\0';
    if (!*on) {
        if (*ra || *en)
            return qs_error(QS_ERR_INVALID, "lowrank_%s applies only with lowrank: channel or spatial",
                            *ra ? "ratio" : "energy");
        return QS_OK;
    }
    if (qs_lowrank_kind_parse(k, "lowrank", &o->kind) < 0)
        return qs_last_status();
    if (*ra)
        o->ratio = strtod(ra, NULL);
    if (*en)
        o->energy = strtod(en, NULL);
    return qs_lowrank_check(o) < 0 ? qs_last_status() : QS_OK;
}

int qs_exp_apply_prune(const qs_exp_run_t *r, qs_prune_opts_t *o)
{
    qs_prune_opts_default(o);
    const char *m = qs_exp_run_value(r, "prune_method"), *ratio = qs_exp_run_value(r, "prune_ratio");
    if (*m && qs_prune_parse(m, "prune_method", o) < 0)
        return qs_last_status();
    bool wants = o->method != QS_PRUNE_NONE && o->method != QS_PRUNE_NM;
    if (wants && !*ratio)
        return qs_error(QS_ERR_INVALID, "prune_method %s needs a prune_ratio", m);
    if (!wants && *ratio)
        return qs_error(QS_ERR_INVALID, "prune_ratio does not apply to prune_method %s", *m ? m : "none");
    o->ratio = *ratio ? strtod(ratio, NULL) : 0.0;
    o->refit = strcmp(qs_exp_run_value(r, "prune_refit"), "yes") == 0;
    bool channels = o->method == QS_PRUNE_CHANNEL_L1 || o->method == QS_PRUNE_CHANNEL_L2 ||
                    o->method == QS_PRUNE_CHANNEL_ACT;
    if (o->refit && !channels)
        return qs_error(QS_ERR_INVALID, "prune_refit applies to channel pruning, not prune_method %s", *m ? m : "none");
    return QS_OK;
}

bool qs_exp_layer_is_int(const char *layer)
{
    return strstr(layer, ":acc=") != NULL || strstr(layer, ":requant=") != NULL;
}

int qs_exp_apply_int(const qs_exp_run_t *r, const char *const *layers, int nlayers, qs_int_config_t *c)
{
    qs_int_config_default(c);
    const char *acc = qs_exp_run_value(r, "acc"), *rq = qs_exp_run_value(r, "requant");
    if (*acc && qs_acc_parse(acc, "acc", &c->acc) < 0)
        return qs_last_status();
    if (*rq && qs_requant_parse(rq, "requant", &c->rq) < 0)
        return qs_last_status();
    for (int i = 0; i < nlayers; i++)
        if (qs_exp_layer_is_int(layers[i]) && qs_int_config_override(c, layers[i], "layers") < 0)
            return qs_last_status();
    return QS_OK;
}
