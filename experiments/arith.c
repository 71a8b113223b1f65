/* experiments/arith.c — a target's native arithmetic as an integer-engine
 * configuration (experiments/experiments.h). */
#include "experiments/experiments.h"

#include <stdio.h>
#include <string.h>

int qs_target_check_arithmetic(const qs_hw_target_t *t)
{
    qs_requant_t rq;
    qs_requant_default(&rq);
    if (qs_requant_parse(t->requant, "requant", &rq) < 0)
        return qs_error_context("%s: requant: ", t->path);
    for (int i = 0; i < t->nunits; i++) {
        qs_acc_t a;
        qs_acc_default(&a);
        if (qs_acc_parse(t->unit[i].acc, "acc", &a) < 0)
            return qs_error_context("%s:%d: units: %s: acc: ", t->path, t->unit[i].line, t->unit[i].name);
    }
    return QS_OK;
}

/* The complete accumulator of unit u: its acc spec read from the engine
 * default (qs_acc_default), written back with every field the engine reads —
 * qs_acc_str's canonical form, plus chunk=0 for an integer register without
 * chunks (which qs_acc_str leaves out). A per-layer override in this form
 * replaces the network-wide accumulator instead of adding words to it, so
 * nothing of another unit's register (chunk=, overflow=, ...) leaks in. */
static int unit_acc(const qs_hw_target_t *t, int u, qs_acc_t *a, char *spec, size_t n)
{
    qs_acc_default(a);
    if (qs_acc_parse(t->unit[u].acc, "acc", a) < 0)
        return qs_error_context("%s:%d: units: %s: acc: ", t->path, t->unit[u].line, t->unit[u].name);
    qs_acc_str(a, spec, n);
    if (a->kind == QS_ACC_INT && a->chunk == 0)
        snprintf(spec + strlen(spec), n - strlen(spec), ",chunk=0");
    return QS_OK;
}

int qs_int_config_for_target(const qs_qnet_t *q, const qs_hw_target_t *t, const qs_hw_cost_opts_t *o,
                             qs_int_config_t *c)
{
    if (qs_target_check_arithmetic(t) < 0)
        return qs_last_status();
    qs_workload_t *w = NULL;
    if (qs_qnet_workload(q, NULL, &w) < 0)
        return qs_last_status();
    /* the unit of every MAC layer; the accumulator most of them use goes network-wide */
    int *unit = calloc((size_t)(w->nlayers > 0 ? w->nlayers : 1), sizeof *unit);
    int count[QS_HW_MAX_UNITS] = {0};
    int rc = unit ? QS_OK : qs_error(QS_ERR_NOMEM, "out of memory");
    for (int i = 0; rc == QS_OK && i < w->nlayers; i++) {
        const qs_wl_layer_t *l = &w->layer[i];
        unit[i] = -1;
        if (l->macs <= 0)
            continue;
        qs_hw_layer_cost_t lc;
        if ((rc = qs_hw_cost_layer(t, l, o, &lc)) < 0)
            break;
        if (lc.unit < 0) {
            rc = qs_error(QS_ERR_INVALID, "layer %s: target %s cannot run it: %s", l->name, t->name, lc.reason);
            break;
        }
        if (lc.wfmt.kind == QS_HW_FMT_FLOAT || lc.xfmt.kind == QS_HW_FMT_FLOAT) {
            rc = qs_error(QS_ERR_INVALID, "layer %s (%s x %s): target %s computes it in %s x %s on its float unit %s: "
                          "no integer arithmetic to reproduce", l->name, l->w.name, l->x.name, t->name, lc.wfmt.name,
                          lc.xfmt.name, t->unit[lc.unit].name);
            break;
        }
        unit[i] = lc.unit;
        count[lc.unit]++;
    }
    int common = -1;
    for (int u = 0; u < t->nunits; u++)
        if (count[u] > 0 && (common < 0 || count[u] > count[common]))
            common = u;
    /* every unit's complete accumulator; a layer needs an override where its unit's differs from common's */
    char spec[QS_HW_MAX_UNITS][160];
    qs_acc_t acc[QS_HW_MAX_UNITS];
    for (int u = 0; rc == QS_OK && u < t->nunits; u++)
        if (count[u] > 0)
            rc = unit_acc(t, u, &acc[u], spec[u], sizeof spec[u]);
    int need = 0;
    for (int i = 0; rc == QS_OK && i < w->nlayers; i++)
        need += unit[i] >= 0 && strcmp(spec[unit[i]], spec[common]) != 0;
    if (rc == QS_OK && need > QS_INT_MAX_OVERRIDES)
        rc = qs_error(QS_ERR_INVALID, "target %s: %d layers run on units whose accumulator differs from the "
                      "network-wide one (%s, unit %s); the integer engine takes at most %d per-layer overrides "
                      "(QS_INT_MAX_OVERRIDES)", t->name, need, spec[common], t->unit[common].name,
                      QS_INT_MAX_OVERRIDES);
    qs_int_config_t n = *c;
    n.noverrides = 0;
    if (rc == QS_OK && qs_requant_parse(t->requant, "requant", &n.rq) < 0)
        rc = qs_error_context("%s: requant: ", t->path);
    if (rc == QS_OK && common >= 0)
        n.acc = acc[common];
    for (int i = 0; rc == QS_OK && i < w->nlayers; i++) {
        if (unit[i] < 0 || strcmp(spec[unit[i]], spec[common]) == 0)
            continue;
        char arg[QS_WL_NAME_MAX + 200];
        snprintf(arg, sizeof arg, "%s:%s", w->layer[i].name, spec[unit[i]]);
        rc = qs_int_config_override(&n, arg, t->name);
    }
    free(unit);
    qs_workload_free(w);
    if (rc == QS_OK)
        *c = n;
    return rc;
}
