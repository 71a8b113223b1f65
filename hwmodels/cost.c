/* hwmodels/cost.c — the cost model (docs/targets.md, "The model"): which
 * unit runs a layer and in which formats, energy per MAC by format and
 * width, memory traffic per level under a tiling rule, a roofline per layer
 * and the support verdict. First order by design: a few multiplications per
 * layer, so that pricing a sweep costs nothing next to evaluating it. */
#include "hwmodels/hw.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *qs_hw_verdict_name(qs_hw_verdict_t v)
{
    return v == QS_HW_OK ? "ok" : v == QS_HW_MAPPED ? "mapped" : "unsupported";
}

void qs_hw_cost_opts_default(qs_hw_cost_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->batch = 1;
}

double qs_hw_table_eval(const qs_hw_table_t *t, double key)
{
    if (t->n == 0)
        return 0;
    if (t->n == 1 && t->key[0] == 0)
        return t->joule[0];
    if (key <= t->key[0])
        return t->joule[0] * key / t->key[0];
    for (int i = 0; i + 1 < t->n; i++)
        if (key <= t->key[i + 1]) {
            double f = (key - t->key[i]) / (t->key[i + 1] - t->key[i]);
            return t->joule[i] + f * (t->joule[i + 1] - t->joule[i]);
        }
    return t->joule[t->n - 1] * key / t->key[t->n - 1];
}

/* The layer's format from the workload's name and bits. */
static int wl_format(const qs_wl_format_t *w, qs_hw_format_t *f)
{
    if (qs_hw_format_parse(w->name, f) < 0)
        return qs_last_status();
    if (f->kind == QS_HW_FMT_INT && f->bits == 0)
        return qs_error(QS_ERR_INVALID, "workload format int* is only for targets");
    return QS_OK;
}

/* How unit u takes format f: 2 exactly, 1 mapped up to *out, 0 not at all. */
static int accepts(const qs_hw_format_t *list, int n, const qs_hw_format_t *f, bool map_up, qs_hw_format_t *out)
{
    for (int i = 0; i < n; i++) {
        bool wild = list[i].kind == QS_HW_FMT_INT && list[i].bits == 0;
        if (strcmp(list[i].name, f->name) == 0 || (wild && qs_hw_format_fits(f, &list[i]))) {
            *out = *f;
            return 2;
        }
    }
    if (!map_up)
        return 0;
    int best = -1;
    for (int i = 0; i < n; i++)
        if (qs_hw_format_fits(f, &list[i]) && (best < 0 || list[i].bits < list[best].bits))
            best = i;
    if (best < 0)
        return 0;
    *out = list[best];
    return 1;
}

static double unit_rate(const qs_hw_target_t *t, const qs_hw_unit_t *u, const qs_hw_format_t *w,
                        const qs_hw_format_t *x)
{
    double r = u->macs_per_cycle;
    if (u->rate == QS_HW_RATE_BITBRICK) {
        int b = u->brick_bits;
        r /= (double)((w->bits + b - 1) / b) * (double)((x->bits + b - 1) / b);
    }
    return r * t->clock_hz * t->utilization;
}

static double unit_mac_j(const qs_hw_unit_t *u, const qs_hw_format_t *w, const qs_hw_format_t *x, int acc_bits)
{
    double prod = (double)w->bits * (double)x->bits;
    int acc = acc_bits > 0 ? acc_bits : u->acc_bits;
    if (u->mac.n)
        return qs_hw_table_eval(&u->mac, prod);
    if (u->rate == QS_HW_RATE_BITBRICK) {
        int b = u->brick_bits;
        double bricks = (double)((w->bits + b - 1) / b) * (double)((x->bits + b - 1) / b);
        return u->brick_j * bricks + qs_hw_table_eval(&u->add, acc);
    }
    return qs_hw_table_eval(&u->mul, prod) + qs_hw_table_eval(&u->add, acc);
}

/* Bits one element occupies in memory. */
static double stored_bits(const qs_hw_target_t *t, const qs_hw_format_t *layer, const qs_hw_format_t *exec)
{
    if (t->packed)
        return layer->bits;
    int b = exec->bits > layer->bits ? exec->bits : layer->bits;
    return b <= 8 ? 8 : b <= 16 ? 16 : 32;
}

typedef struct {
    int unit, how;
    qs_hw_format_t w, x;
    double rate;
} choice_t;

/* The unit for formats (w, x): exact matches first, the fastest among them. */
static void choose(const qs_hw_target_t *t, const qs_hw_format_t *w, const qs_hw_format_t *x,
                   const qs_hw_cost_opts_t *o, choice_t *best)
{
    memset(best, 0, sizeof *best);
    best->unit = -1;
    bool map_up = t->missing == QS_HW_MISSING_MAP_UP;
    for (int i = 0; i < t->nunits; i++) {
        const qs_hw_unit_t *u = &t->unit[i];
        bool preferred = o->unit && strcmp(o->unit, u->name) == 0;
        if (u->optional && !preferred)
            continue;
        choice_t c;
        memset(&c, 0, sizeof c);
        c.unit = i;
        int hw = accepts(u->wfmt, u->nw, w, map_up, &c.w), hx = accepts(u->xfmt, u->nx, x, map_up, &c.x);
        if (!hw || !hx)
            continue;
        c.how = hw < hx ? hw : hx;
        c.rate = unit_rate(t, u, &c.w, &c.x);
        bool was_pref = best->unit >= 0 && o->unit && strcmp(o->unit, t->unit[best->unit].name) == 0;
        if (best->unit < 0 || (preferred && !was_pref) ||
            (!was_pref && (c.how > best->how || (c.how == best->how && c.rate > best->rate))))
            *best = c;
    }
}

static int fail_layer(qs_hw_layer_cost_t *out, const char *fmt, ...) QS_PRINTF(2, 3);
static int fail_layer(qs_hw_layer_cost_t *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof out->reason, fmt, ap);
    va_end(ap);
    out->verdict = QS_HW_UNSUPPORTED;
    return QS_OK;
}

/* Traffic at a level whose inner storage holds C bytes (docs/targets.md, "Traffic"). */
static double level_traffic(double W, double X, double Y, double C, const qs_wl_layer_t *l)
{
    bool fits = W + X + Y <= C;
    double p = fits ? 1 : ceil(W / (C / 2));
    bool resident = X + Y <= C;
    double rx = resident && !l->x_from_input ? 0 : (fits || X <= C / 2) ? 1 : p;
    double ry = resident && !l->y_is_output ? 0 : 1;
    return W + X * rx + Y * ry;
}

int qs_hw_cost_layer(const qs_hw_target_t *t, const qs_wl_layer_t *l, const qs_hw_cost_opts_t *opts,
                     qs_hw_layer_cost_t *out)
{
    qs_hw_cost_opts_t dflt;
    if (!opts) {
        qs_hw_cost_opts_default(&dflt);
        opts = &dflt;
    }
    memset(out, 0, sizeof *out);
    out->unit = -1;
    out->bound = -1;
    if (opts->batch < 1)
        return qs_error(QS_ERR_INVALID, "batch must be at least 1, got %lld", (long long)opts->batch);
    if (l->macs < 0 || l->ops < 0 || l->w_elems < 0 || l->x_elems < 0 || l->y_elems < 0 || l->b_elems < 0 ||
        l->scale_bytes < 0 || !(l->density > 0 && l->density <= 1))
        return qs_error(QS_ERR_INVALID, "layer %s: negative size or a density outside (0, 1]", l->name);
    bool mac_layer = l->macs > 0;
    qs_hw_format_t fw, fx, fy;
    if (wl_format(&l->x, &fx) < 0 || wl_format(&l->y, &fy) < 0 || (mac_layer && wl_format(&l->w, &fw) < 0))
        return qs_error_context("layer %s: ", l->name);
    if (!mac_layer)
        fw = fx;
    choice_t c;
    choose(t, &fw, &fx, opts, &c);
    if (c.unit < 0) {
        if (mac_layer)
            return fail_layer(out, "no unit computes %s weights x %s activations%s", fw.name, fx.name,
                              t->missing == QS_HW_MISSING_UNSUPPORTED ? " (this target maps no format up)" : "");
        return fail_layer(out, "no unit computes on %s activations%s", fx.name,
                          t->missing == QS_HW_MISSING_UNSUPPORTED ? " (this target maps no format up)" : "");
    }
    const qs_hw_unit_t *u = &t->unit[c.unit];
    out->unit = c.unit;
    out->wfmt = c.w;
    out->xfmt = c.x;
    if (c.how == 1) {
        out->verdict = QS_HW_MAPPED;
        if (mac_layer)
            snprintf(out->reason, sizeof out->reason, "%s x %s computed as %s x %s on %s", fw.name, fx.name, c.w.name,
                     c.x.name, u->name);
        else
            snprintf(out->reason, sizeof out->reason, "%s computed as %s on %s", fx.name, c.x.name, u->name);
    }
    /* quantization features the target lacks: priced, but unsupported */
    if (mac_layer && fw.kind != QS_HW_FMT_FLOAT) {
        const char *no = NULL;
        if (l->w_gran == QS_WL_GRAN_CHANNEL && !t->gran_channel)
            no = "per-channel weight scales";
        else if (l->w_gran == QS_WL_GRAN_GROUP && !t->gran_group)
            no = "per-group weight scales";
        else if (l->w_gran == QS_WL_GRAN_TENSOR && !t->gran_tensor)
            no = "per-tensor weight scales";
        else if (l->w.asymmetric && !t->w_zero_point)
            no = "asymmetric weights (a weight zero point)";
        if (no)
            fail_layer(out, "%s: not supported by %s", no, t->name);
    }
    if (out->verdict != QS_HW_UNSUPPORTED && fx.kind != QS_HW_FMT_FLOAT && l->x.asymmetric && !t->x_zero_point)
        fail_layer(out, "asymmetric activations (a zero point): not supported by %s", t->name);

    /* sparsity the units can skip: fewer MACs and fewer stored weights */
    double density = 1, wbits = mac_layer ? stored_bits(t, &fw, &c.w) : 0, index_bits = 0;
    if (mac_layer && l->sparsity == QS_WL_SPARSE_NM) {
        for (int i = 0; i < t->nsparse; i++) /* the tightest pattern the layer's mask satisfies */
            if (t->sparse_m[i] == l->sparse_m && l->sparse_n <= t->sparse_n[i] &&
                (double)t->sparse_n[i] / t->sparse_m[i] < density)
                density = (double)t->sparse_n[i] / t->sparse_m[i];
        if (density == 1 && t->sparse_unstructured)
            density = l->density;
    } else if (mac_layer && l->sparsity == QS_WL_SPARSE_UNSTRUCTURED && t->sparse_unstructured) {
        density = l->density;
    }
    if (density < 1) {
        index_bits = t->sparse_index_bits;
        if (density * (wbits + index_bits) >= wbits) { /* compression would not pay */
            density = 1;
            index_bits = 0;
        }
    }
    out->macs = (double)l->macs * density;
    out->ops = (double)l->ops;
    double xbits = stored_bits(t, &fx, &c.x), ybits = stored_bits(t, &fy, &fy);
    double W = mac_layer ? (double)l->w_elems * density * (wbits + index_bits) / 8 + (double)l->scale_bytes +
                               (double)l->b_elems * l->bias_bits / 8
                         : 0;
    out->weight_bytes = W;
    double B = (double)opts->batch;
    double X = (double)l->x_elems * xbits / 8 * B, Y = (double)l->y_elems * ybits / 8 * B;

    double rate = c.rate;
    out->mac_j = unit_mac_j(u, &c.w, &c.x, l->acc_bits);
    double op_j = mac_layer ? unit_mac_j(u, &c.x, &c.x, l->acc_bits) : out->mac_j;
    double op_rate = mac_layer ? unit_rate(t, u, &c.x, &c.x) : rate;
    out->compute_s = out->macs / rate + out->ops / op_rate;
    out->compute_j = out->macs * out->mac_j + out->ops * op_j;
    out->latency_s = out->compute_s;
    for (int i = 0; i < t->nlevels; i++) {
        double C = i == 0 ? t->local_bytes : t->level[i - 1].capacity;
        out->bytes[i] = level_traffic(W, X, Y, C, l) / B;
        out->level_j[i] = out->bytes[i] * t->level[i].energy;
        double s = out->bytes[i] / t->level[i].bandwidth;
        if (s > out->latency_s) {
            out->latency_s = s;
            out->bound = i;
        }
    }
    out->static_j = t->static_w * out->latency_s;
    out->energy_j = out->compute_j + out->static_j;
    for (int i = 0; i < t->nlevels; i++)
        out->energy_j += out->level_j[i];
    return QS_OK;
}

int qs_hw_cost(const qs_hw_target_t *t, const qs_workload_t *w, const qs_hw_cost_opts_t *o, qs_hw_cost_t **out)
{
    *out = NULL;
    if (o && o->unit && !qs_hw_unit_find(t, o->unit)) {
        char list[512] = "";
        for (int i = 0; i < t->nunits; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", t->unit[i].name);
        return qs_error(QS_ERR_INVALID, "target %s has no unit '%s' (units: %s)", t->name, o->unit, list);
    }
    qs_hw_cost_t *c = calloc(1, sizeof *c);
    if (!c || !(c->layer = calloc(w->nlayers > 0 ? (size_t)w->nlayers : 1, sizeof *c->layer))) {
        free(c);
        return qs_error(QS_ERR_NOMEM, "out of memory");
    }
    c->nlayers = w->nlayers;
    for (int i = 0; i < w->nlayers; i++) {
        qs_hw_layer_cost_t *L = &c->layer[i];
        if (qs_hw_cost_layer(t, &w->layer[i], o, L) < 0) {
            qs_hw_cost_free(c);
            return qs_last_status();
        }
        if (L->verdict > c->verdict)
            c->verdict = L->verdict;
        c->mapped += L->verdict == QS_HW_MAPPED;
        c->unsupported += L->verdict == QS_HW_UNSUPPORTED;
        c->energy_j += L->energy_j;
        c->latency_s += L->latency_s;
        c->compute_j += L->compute_j;
        c->static_j += L->static_j;
        c->model_bytes += L->weight_bytes;
        for (int k = 0; k < t->nlevels; k++) {
            c->bytes[k] += L->bytes[k];
            c->level_j[k] += L->level_j[k];
        }
        if (L->unit < 0 || L->macs <= 0)
            continue;
        char name[sizeof c->by_format[0].name];
        snprintf(name, sizeof name, "%sx%s", L->wfmt.name, L->xfmt.name);
        int k = 0;
        while (k < c->nformats && strcmp(c->by_format[k].name, name) != 0)
            k++;
        if (k == c->nformats && c->nformats < (int)(sizeof c->by_format / sizeof *c->by_format))
            snprintf(c->by_format[c->nformats++].name, sizeof name, "%s", name);
        if (k < c->nformats)
            c->by_format[k].macs += L->macs;
    }
    *out = c;
    return QS_OK;
}

void qs_hw_cost_free(qs_hw_cost_t *c)
{
    if (c)
        free(c->layer);
    free(c);
}
