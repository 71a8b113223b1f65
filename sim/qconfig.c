/* sim/qconfig.c — a network's quantization configuration: the weights,
 * activations and bias quantizers, presets such as w4a8, and per-layer
 * overrides (docs/quantization.md). Only the words are checked here; names
 * are resolved against a graph by qs_qnet_create. */
#include "sim/sim_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const target_names[QS_QT_COUNT] = {"weights", "acts", "bias"};

const char *qs_qtarget_name(qs_qtarget_t t) { return t >= 0 && t < QS_QT_COUNT ? target_names[t] : "?"; }

/* The presets' quantizers (docs/quantization.md, "Presets"): weights
 * symmetric per output channel, activations asymmetric per tensor, both
 * min/max — the common post-training default of TFLite and PyTorch — and
 * bias int32 at s_w·s_x. */
static void preset_weights(qs_quantizer_t *q, int bits)
{
    qs_quantizer_default(q);
    q->bits = bits;
    q->scheme = QS_SCHEME_SYMMETRIC;
    q->gran.kind = QS_GRAN_CHANNEL;
    q->gran.axis = 0;
}

static void preset_acts(qs_quantizer_t *q, int bits)
{
    qs_quantizer_default(q);
    q->bits = bits;
    q->scheme = QS_SCHEME_ASYMMETRIC;
}

static void preset_bias(qs_quantizer_t *q)
{
    qs_quantizer_default(q);
    q->bits = 32;
    q->gran.kind = QS_GRAN_CHANNEL;
    q->gran.axis = 0;
}

void qs_qconfig_default(qs_qconfig_t *c)
{
    memset(c, 0, sizeof *c);
    preset_weights(&c->q[QS_QT_WEIGHTS], 8);
    preset_acts(&c->q[QS_QT_ACTS], 8);
    preset_bias(&c->q[QS_QT_BIAS]);
    for (int t = 0; t < QS_QT_COUNT; t++)
        c->on[t] = true;
}

/* "wNaM" with N, M in 1..16 or f (float): *wbits and *abits, 0 for float. */
static bool parse_preset(const char *name, int *wbits, int *abits)
{
    const char *p = name;
    int v[2];
    for (int k = 0; k < 2; k++) {
        if (*p++ != (k ? 'a' : 'w'))
            return false;
        if (*p == 'f') {
            v[k] = 0;
            p++;
            continue;
        }
        if (*p < '1' || *p > '9')
            return false;
        int n = 0;
        while (*p >= '0' && *p <= '9' && n <= 16)
            n = n * 10 + (*p++ - '0');
        if (n < 1 || n > 16)
            return false;
        v[k] = n;
    }
    if (*p)
        return false;
    *wbits = v[0];
    *abits = v[1];
    return true;
}

int qs_qconfig_preset(qs_qconfig_t *c, const char *name, const char *what)
{
    int wb, ab;
    if (!name)
        return qs_error(QS_ERR_INVALID, "%s: no preset", what);
    if (strcmp(name, "float") == 0) {
        qs_qconfig_default(c);
        for (int t = 0; t < QS_QT_COUNT; t++)
            c->on[t] = false;
        return QS_OK;
    }
    if (!parse_preset(name, &wb, &ab))
        return qs_error(QS_ERR_INVALID,
                        "%s: unknown preset '%s' (expected wNaM with N, M in 1..16, or f for float: w8a8, w4a8, "
                        "w4af, ...; or float)", what, name);
    qs_qconfig_default(c);
    if (wb)
        c->q[QS_QT_WEIGHTS].bits = wb;
    if (ab)
        c->q[QS_QT_ACTS].bits = ab;
    c->on[QS_QT_WEIGHTS] = wb > 0;
    c->on[QS_QT_ACTS] = ab > 0;
    c->on[QS_QT_BIAS] = wb > 0 && ab > 0;
    return QS_OK;
}

int qs_qconfig_set(qs_qconfig_t *c, qs_qtarget_t t, const char *spec, const char *what)
{
    if (t < 0 || t >= QS_QT_COUNT || !spec)
        return qs_error(QS_ERR_INVALID, "%s: no spec", what);
    if (strcmp(spec, "float") == 0) {
        c->on[t] = false;
        return QS_OK;
    }
    int rc = qs_quantizer_parse(spec, what, &c->q[t]);
    if (rc < 0)
        return rc;
    c->on[t] = true;
    return QS_OK;
}

static int add_override(qs_qconfig_t *c, const char *layer, qs_qtarget_t t, bool on, const char *spec,
                        const char *what)
{
    if (c->noverrides >= QS_QCONFIG_MAX_OVERRIDES)
        return qs_error(QS_ERR_INVALID, "%s: more than %d layer overrides", what, QS_QCONFIG_MAX_OVERRIDES);
    if (strlen(spec) >= QS_QSPEC_MAX)
        return qs_error(QS_ERR_INVALID, "%s: the spec is longer than %d characters", what, QS_QSPEC_MAX - 1);
    qs_qoverride_t *o = &c->ov[c->noverrides];
    memset(o, 0, sizeof *o);
    snprintf(o->layer, sizeof o->layer, "%s", layer);
    o->what = t;
    o->on = on;
    snprintf(o->spec, sizeof o->spec, "%s", spec);
    c->noverrides++;
    return QS_OK;
}

int qs_qconfig_override(qs_qconfig_t *c, const char *arg, const char *what)
{
    static const char *expect = "expected NAME:weights=SPEC, NAME:acts=SPEC, NAME:bias=SPEC, NAME:float or NAME:wNaM "
                                "(NAME a layer, first or last)";
    if (!arg)
        return qs_error(QS_ERR_INVALID, "%s: no override", what);
    const char *colon = strchr(arg, ':');
    if (!colon || colon == arg)
        return qs_error(QS_ERR_INVALID, "%s: '%s': %s", what, arg, expect);
    char layer[QS_NAME_MAX];
    size_t nl = (size_t)(colon - arg);
    if (nl >= sizeof layer)
        return qs_error(QS_ERR_INVALID, "%s: '%s': the layer name is longer than %d characters", what, arg,
                        QS_NAME_MAX - 1);
    memcpy(layer, arg, nl);
    layer[nl] = '\0';
    const char *rest = colon + 1;
    int wb, ab, n0 = c->noverrides, rc = QS_OK;
    if (strcmp(rest, "float") == 0) {
        if ((rc = add_override(c, layer, QS_QT_WEIGHTS, false, "", what)) >= 0)
            rc = add_override(c, layer, QS_QT_ACTS, false, "", what);
    } else if (parse_preset(rest, &wb, &ab)) {
        char spec[32];
        snprintf(spec, sizeof spec, "bits=%d", wb);
        rc = add_override(c, layer, QS_QT_WEIGHTS, wb > 0, wb ? spec : "", what);
        snprintf(spec, sizeof spec, "bits=%d", ab);
        if (rc >= 0)
            rc = add_override(c, layer, QS_QT_ACTS, ab > 0, ab ? spec : "", what);
    } else {
        const char *eq = strchr(rest, '=');
        qs_qtarget_t t = QS_QT_COUNT;
        for (int k = 0; eq && k < QS_QT_COUNT; k++)
            if (strlen(target_names[k]) == (size_t)(eq - rest) && strncmp(rest, target_names[k], (size_t)(eq - rest)) == 0)
                t = (qs_qtarget_t)k;
        if (t == QS_QT_COUNT)
            return qs_error(QS_ERR_INVALID, "%s: '%s': %s", what, arg, expect);
        const char *spec = eq + 1;
        bool on = strcmp(spec, "float") != 0;
        if (on) { /* check the words now, so that a typo is reported where it was written */
            qs_quantizer_t probe = c->q[t];
            char src[QS_NAME_MAX + 48];
            snprintf(src, sizeof src, "%s (%s %s)", what, layer, target_names[t]);
            if ((rc = qs_quantizer_parse(spec, src, &probe)) < 0)
                return rc;
        }
        rc = add_override(c, layer, t, on, on ? spec : "", what);
    }
    if (rc < 0)
        c->noverrides = n0;
    return rc;
}

char *qs_qconfig_str(const qs_qconfig_t *c, char *buf, size_t n)
{
    size_t used = 0;
    if (!buf || n == 0)
        return buf;
    buf[0] = '\0';
    for (int t = 0; t < QS_QT_COUNT && used < n; t++) {
        char q[512];
        used += (size_t)snprintf(buf + used, n - used, "%s%s: %s", t ? "\n" : "", target_names[t],
                                 c->on[t] ? qs_quantizer_str(&c->q[t], q, sizeof q) : "float");
    }
    for (int i = 0; i < c->noverrides && used < n; i++) {
        const qs_qoverride_t *o = &c->ov[i];
        used += (size_t)snprintf(buf + used, n - used, "\nlayer %s: %s=%s", o->layer, target_names[o->what],
                                 o->on ? o->spec : "float");
    }
    return buf;
}
