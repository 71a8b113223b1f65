/* cli/cmd_cost.c — `quasar cost MODEL --target T [--quant ...]` and `quasar
 * targets [NAME]`: what a quantization configuration costs on hardware
 * targets (docs/targets.md). MODEL is quantized without calibration — the
 * cost depends on formats and shapes, not on data — or read as a quantized
 * model; sim builds the workload, hwmodels prices it, this file prints. */
#include "config.h"

#include "cli/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void qs_help_cost(FILE *out)
{
    fprintf(out,
            "Usage: quasar cost MODEL.h5 [--target T[,T...]|all] [--csv | --json] [--layers]\n"
            "                            [--unit U] [--batch N] [--node NM] [--table FILE]\n"
            "                            [--preset P] [--weights SPEC] [--acts SPEC] [--layer ...]\n"
            "                            [--acc SPEC] [--layer NAME:acc=SPEC]\n"
            "\n"
            "Prices one inference of MODEL, quantized as the options say (W8A8 by default,\n"
            "as 'quasar eval'; no calibration is needed: the cost depends on formats and\n"
            "shapes only) or as a quantized-model file says, on hardware targets\n"
            "(docs/targets.md): per layer the unit that runs it, the formats it computes\n"
            "in, MACs, energy, latency, what bounds the latency (compute or a memory level)\n"
            "and the verdict — ok, mapped (a format the target lacks, computed in a wider\n"
            "one) or unsupported (with the reason); in total the energy per inference\n"
            "(compute, each memory level, static), the latency, the bytes moved at each\n"
            "level, the MACs by format pair and the model's stored bytes.\n"
            "\n"
            "  --target T               a shipped target (see 'quasar targets'), a target\n"
            "                           file (.yaml), a comma-separated list, or all (default)\n"
            "  --layers                 the per-layer table for every target (the default\n"
            "                           when there is one target; with several, one line\n"
            "                           per target)\n"
            "  --csv                    CSV on stdout: one row per layer and one 'total' row\n"
            "                           per target (columns in docs/targets.md)\n"
            "  --json                   JSON Lines on stdout: one object per layer\n"
            "                           (\"record\": \"layer\") and one per target (\"record\":\n"
            "                           \"total\"); energy_j, latency_s, model_bytes,\n"
            "                           offchip_bytes, ... are metric names\n"
            "  --unit U                 run every layer it can on the target's unit U\n"
            "                           (optional units, such as cpu-avx512-vnni's\n"
            "                           avx512bw-pairwise, run only when named)\n"
            "  --batch N                inferences sharing one read of the weights (default\n"
            "                           1); figures stay per inference\n"
            "  --node NM                rescale the targets to another technology node\n"
            "                           (3..65 nm, Stillmaker-Baas; off-chip memory is kept)\n"
            "  --table FILE             also write the HAQ-style cost table: for every\n"
            "                           conv2d/linear layer and every weight and activation\n"
            "                           width 1..8, its energy, latency and verdict (CSV)\n"
            "  --acc SPEC               the accumulator whose width the adders are priced\n"
            "                           at (docs/spec.md, \"Accumulators\"); by default each\n"
            "                           unit's native one\n"
            "  --layer NAME:acc=SPEC    one layer's accumulator (repeatable)\n"
            "\n"
            "%s"
            "  (--calib-* are accepted and ignored: nothing is calibrated)\n"
            "\n"
            "Exit status: 0 success (whatever the verdicts), 1 runtime error (bad model or\n"
            "target file), 2 usage error.\n",
            qs_cli_qopts_help);
}

void qs_help_targets(FILE *out)
{
    fprintf(out,
            "Usage: quasar targets [all | T[,T...]] [--csv | --json]\n"
            "\n"
            "Lists the hardware targets: the .yaml files of the folder $QUASAR_TARGETS\n"
            "names (when set), of the source tree's hwmodels/targets and of the installed\n"
            "targets folder (a name found twice: the first wins): name, kind, technology\n"
            "node, clock, units and description ('all' lists them too). With T (a name or\n"
            "a target file; a comma-separated list shows each in turn), shows that target:\n"
            "every unit with its formats, rate, energy per MAC at its formats and native\n"
            "accumulator; every memory level; the quantization features; the native\n"
            "requantizer. The file format is described in docs/targets.md.\n"
            "\n"
            "  --csv                    CSV, one row per target (or per unit, with T)\n"
            "  --json                   JSON Lines, one object per target (or per unit)\n"
            "\n"
            "Exit status: 0 success, 1 a target file is invalid, 2 usage error.\n");
}

/* ---- shared helpers ---------------------------------------------------------------------------- */

/* "2.74 µJ": three significant digits with an SI prefix */
static const char *si(double v, const char *unit, char *buf, size_t n)
{
    static const char *const pre[] = {"p", "n", "µ", "m", "", "k", "M", "G", "T"};
    if (v == 0 || !isfinite(v)) {
        snprintf(buf, n, "%g %s", v, unit);
        return buf;
    }
    int e = (int)floor(log10(fabs(v)) / 3);
    e = e < -4 ? -4 : e > 4 ? 4 : e;
    snprintf(buf, n, "%.3g %s%s", v / pow(10, 3 * e), pre[e + 4], unit);
    return buf;
}

/* "1.2M" for counts */
static const char *count(double v, char *buf, size_t n)
{
    if (v >= 1e9)
        snprintf(buf, n, "%.3gG", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, n, "%.3gM", v / 1e6);
    else if (v >= 1e4)
        snprintf(buf, n, "%.3gk", v / 1e3);
    else
        snprintf(buf, n, "%.0f", v);
    return buf;
}

/* n text cells, each through qs_res_csv_cell, separated by commas */
static void csv_cells(FILE *out, int n, ...)
{
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        if (i)
            fputc(',', out);
        qs_res_csv_cell(out, va_arg(ap, const char *));
    }
    va_end(ap);
}

/* The names of a comma-separated list ("a,b"), each strdup'ed, NULL-terminated
 * (free with qs_hw_names_free). An empty name (",", "a,,b", "a,") is an
 * error: QS_ERR_INVALID, "WHAT: empty target name in 'LIST'". */
static int split_names(const char *list, const char *what, char ***out, int *n)
{
    *out = NULL;
    *n = 0;
    char **names = calloc(strlen(list) + 2, sizeof *names);
    if (!names)
        return qs_error(QS_ERR_NOMEM, "out of memory");
    int k = 0;
    for (const char *s = list;; s++) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 0) {
            qs_hw_names_free(names);
            return qs_error(QS_ERR_INVALID, "%s: empty target name in '%s'", what, list);
        }
        if (!(names[k] = strndup(s, len))) {
            qs_hw_names_free(names);
            return qs_error(QS_ERR_NOMEM, "out of memory");
        }
        k++;
        if (!e)
            break;
        s = e;
    }
    *out = names;
    *n = k;
    return QS_OK;
}

/* A --target list's syntax, for the usage check before any work. */
static int check_names(const char *list, const char *what)
{
    if (!list || strcmp(list, "all") == 0)
        return QS_OK;
    char **names = NULL;
    int n = 0;
    int rc = split_names(list, what, &names, &n);
    qs_hw_names_free(names);
    return rc;
}

/* Every target named by a --target list ("all": the shipped ones), loaded, checked and rescaled. */
static int load_targets(const char *list, double node, qs_hw_target_t ***out, int *n)
{
    *out = NULL;
    *n = 0;
    char **names = NULL;
    int count_ = 0, rc = QS_OK;
    qs_hw_target_t **t = NULL;
    if (!list || strcmp(list, "all") == 0) {
        if (qs_hw_target_names(&names) < 0)
            return -1;
        while (names[count_])
            count_++;
        if (count_ == 0) {
            qs_hw_names_free(names);
            return qs_error(QS_ERR_IO, "no target files found (set $QUASAR_TARGETS to a folder of .yaml files)");
        }
    } else if (split_names(list, "--target", &names, &count_) < 0) {
        return -1;
    }
    if (rc == QS_OK && !(t = calloc((size_t)count_, sizeof *t)))
        rc = qs_error(QS_ERR_NOMEM, "out of memory");
    for (int i = 0; rc == QS_OK && i < count_; i++) {
        if ((rc = qs_hw_target_find(names[i], &t[i])) < 0)
            break;
        *n = i + 1;
        if ((rc = qs_target_check_arithmetic(t[i])) < 0)
            break;
        if (node > 0 && (rc = qs_hw_target_scale_node(t[i], node)) < 0)
            rc = qs_error_context("%s: --node: ", t[i]->name);
    }
    qs_hw_names_free(names);
    if (rc < 0) {
        for (int i = 0; i < *n; i++)
            qs_hw_target_free(t[i]);
        free(t);
        *n = 0;
        return -1;
    }
    *out = t;
    return 0;
}

static void free_targets(qs_hw_target_t **t, int n)
{
    for (int i = 0; i < n; i++)
        qs_hw_target_free(t[i]);
    free(t);
}

/* ---- quasar cost ------------------------------------------------------------------------------- */

typedef struct {
    const char *model, *targets, *unit, *table;
    bool csv, json, layers;
    int64_t batch;
    double node;
    qs_cli_qopts_t q;
    qs_int_config_t ic;
    bool ic_any;
} cost_opts_t;

static int parse_cost(int argc, char **argv, cost_opts_t *o)
{
    const char *v;
    int m;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--csv") == 0 || strcmp(a, "--json") == 0 || strcmp(a, "--layers") == 0) {
            bool *flag = a[2] == 'c' ? &o->csv : a[2] == 'j' ? &o->json : &o->layers;
            *flag = true;
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "--target", &v)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            if (o->targets)
                return qs_cli_error(QS_EXIT_USAGE, "--target given twice (give a comma-separated list)");
            if (check_names(v, "--target") < 0)
                return qs_cli_fail(QS_EXIT_USAGE);
            o->targets = v;
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "--unit", &v)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            o->unit = v;
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "--table", &v)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            if (!*v)
                return qs_cli_error(QS_EXIT_USAGE, "--table: an empty file name");
            o->table = v;
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "--batch", &v)) != 0) {
            if (m < 0 || qs_kv_int("--batch", NULL, v, 1, INT64_C(1) << 30, &o->batch) < 0)
                return m < 0 ? QS_EXIT_USAGE : qs_cli_fail(QS_EXIT_USAGE);
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "--node", &v)) != 0) {
            if (m < 0 || qs_kv_double("--node", NULL, v, 3, 65, &o->node) < 0)
                return m < 0 ? QS_EXIT_USAGE : qs_cli_fail(QS_EXIT_USAGE);
            continue;
        }
        if ((m = qs_cli_intopts_parse(argc, argv, &i, &o->ic)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            o->ic_any = true;
            continue;
        }
        if ((m = qs_cli_qopts_parse(argc, argv, &i, &o->q)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            continue;
        }
        if (a[0] == '-' && a[1] != '\0')
            return qs_cli_error(QS_EXIT_USAGE, "cost: unknown option '%s' (see 'quasar help cost')", a);
        if (o->model)
            return qs_cli_error(QS_EXIT_USAGE, "cost: unexpected argument '%s' (see 'quasar help cost')", a);
        o->model = a;
    }
    if (!o->model)
        return qs_cli_error(QS_EXIT_USAGE, "cost: expected MODEL.h5 (see 'quasar help cost')");
    if (o->csv && o->json)
        return qs_cli_error(QS_EXIT_USAGE, "cost: --csv and --json: give one or the other");
    qs_qconfig_t c;
    if (o->q.any && qs_cli_qopts_config(&o->q, &c) < 0)
        return qs_cli_fail(QS_EXIT_USAGE);
    return QS_EXIT_OK;
}

/* The network as quantized (no calibration: formats and shapes are all the cost needs). */
static int cost_qnet(const cost_opts_t *o, qs_qnet_t **q)
{
    *q = NULL;
    int quantized = qs_model_is_quantized(o->model);
    if (quantized < 0)
        return -1;
    if (quantized && o->q.any)
        return qs_error(QS_ERR_INVALID, "cost: '%s' is a quantized model: its quantizers are priced as they are; "
                        "drop the quantization options, or give its float model", o->model);
    if (quantized)
        return qs_qnet_load(o->model, q);
    qs_graph_t *g = NULL;
    qs_qconfig_t c;
    int rc = qs_cli_qopts_config(&o->q, &c);
    if (rc >= 0)
        rc = qs_model_load(o->model, &g);
    if (rc >= 0)
        rc = qs_qnet_create(g, &c, q);
    qs_graph_free(g);
    return rc < 0 ? -1 : 0;
}

static double onchip_bytes(const qs_hw_target_t *t, const double *bytes)
{
    double s = 0;
    for (int k = 0; k < t->nlevels; k++)
        s += t->level[k].offchip ? 0 : bytes[k];
    return s;
}

static double offchip_bytes(const qs_hw_target_t *t, const double *bytes)
{
    double s = 0;
    for (int k = 0; k < t->nlevels; k++)
        s += t->level[k].offchip ? bytes[k] : 0;
    return s;
}

static double memory_j(const qs_hw_target_t *t, const double *level_j)
{
    double s = 0;
    for (int k = 0; k < t->nlevels; k++)
        s += level_j[k];
    return s;
}

static const char *bound_name(const qs_hw_target_t *t, int bound)
{
    return bound < 0 ? "compute" : t->level[bound].name;
}

static const char *unit_name(const qs_hw_target_t *t, int unit)
{
    return unit < 0 ? "-" : t->unit[unit].name;
}

static void print_layers(const qs_hw_target_t *t, const qs_workload_t *w, const qs_hw_cost_t *c)
{
    char b1[32], b2[32], b3[32], fm[64];
    printf("%-16s %-8s %-18s %-18s %8s %10s %10s %-8s %s\n", "layer", "op", "unit", "formats (w x a)", "MACs",
           "energy", "latency", "bound", "verdict");
    for (int i = 0; i < c->nlayers; i++) {
        const qs_wl_layer_t *l = &w->layer[i];
        const qs_hw_layer_cost_t *L = &c->layer[i];
        if (L->unit < 0)
            snprintf(fm, sizeof fm, "-");
        else if (l->macs > 0)
            snprintf(fm, sizeof fm, "%s x %s", L->wfmt.name, L->xfmt.name);
        else
            snprintf(fm, sizeof fm, "%s", L->xfmt.name);
        printf("%-16s %-8s %-18s %-18s %8s %10s %10s %-8s %s\n", l->name, l->op, unit_name(t, L->unit), fm,
               count(l->macs > 0 ? L->macs : L->ops, b1, sizeof b1), si(L->energy_j, "J", b2, sizeof b2),
               si(L->latency_s, "s", b3, sizeof b3), bound_name(t, L->bound), qs_hw_verdict_name(L->verdict));
    }
    for (int i = 0; i < c->nlayers; i++)
        if (c->layer[i].verdict != QS_HW_OK)
            printf("  %s: %s: %s\n", w->layer[i].name, qs_hw_verdict_name(c->layer[i].verdict), c->layer[i].reason);
}

static void print_total(const qs_hw_target_t *t, const qs_hw_cost_t *c)
{
    char b1[32], b2[32], b3[32], b4[32];
    printf("energy      %s per inference: compute %s, memory %s, static %s\n", si(c->energy_j, "J", b1, sizeof b1),
           si(c->compute_j, "J", b2, sizeof b2), si(memory_j(t, c->level_j), "J", b3, sizeof b3),
           si(c->static_j, "J", b4, sizeof b4));
    printf("latency     %s per inference (sum of the layers' rooflines)\n", si(c->latency_s, "s", b1, sizeof b1));
    printf("traffic    ");
    for (int k = 0; k < t->nlevels; k++)
        printf(" %s %s (%s)%s", t->level[k].name, si(c->bytes[k], "B", b1, sizeof b1),
               si(c->level_j[k], "J", b2, sizeof b2), k + 1 < t->nlevels ? "," : "\n");
    printf("MACs       ");
    for (int k = 0; k < c->nformats; k++)
        printf(" %s %s%s", c->by_format[k].name, count(c->by_format[k].macs, b1, sizeof b1),
               k + 1 < c->nformats ? "," : "");
    printf("%s\n", c->nformats ? "" : " none");
    printf("model       %s stored (weights, scales, zero points, bias)\n", si(c->model_bytes, "B", b1, sizeof b1));
    printf("verdict     %s (%d layer%s mapped, %d unsupported)\n", qs_hw_verdict_name(c->verdict), c->mapped,
           c->mapped == 1 ? "" : "s", c->unsupported);
}

static void csv_header(void)
{
    puts("target,layer,op,unit,w_format,x_format,macs,ops,mac_j,energy_j,compute_energy_j,memory_energy_j,"
         "static_energy_j,latency_s,bound,model_bytes,onchip_bytes,offchip_bytes,level_bytes,verdict,reason");
}

static void csv_row(const qs_hw_target_t *t, const char *layer, const char *op, int unit, const char *wf,
                    const char *xf, double macs, double ops, double mac_j, double e, double ce, double me, double se,
                    double lat, const char *bound, double mb, const double *bytes, const char *verdict,
                    const char *reason)
{
    char lb[QS_HW_MAX_LEVELS * 64] = "";
    for (int k = 0; k < t->nlevels; k++)
        snprintf(lb + strlen(lb), sizeof lb - strlen(lb), "%s%s=%.17g", k ? ";" : "", t->level[k].name, bytes[k]);
    csv_cells(stdout, 6, t->name, layer, op, unit_name(t, unit), wf, xf);
    printf(",%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,", macs, ops, mac_j, e, ce, me, se, lat);
    qs_res_csv_cell(stdout, bound);
    printf(",%.17g,%.17g,%.17g,", mb, onchip_bytes(t, bytes), offchip_bytes(t, bytes));
    csv_cells(stdout, 3, lb, verdict, reason);
    putchar('\n');
}

static void print_csv(const qs_hw_target_t *t, const qs_workload_t *w, const qs_hw_cost_t *c)
{
    for (int i = 0; i < c->nlayers; i++) {
        const qs_wl_layer_t *l = &w->layer[i];
        const qs_hw_layer_cost_t *L = &c->layer[i];
        bool mac = l->macs > 0 && L->unit >= 0;
        csv_row(t, l->name, l->op, L->unit, mac ? L->wfmt.name : "", L->unit >= 0 ? L->xfmt.name : "", L->macs,
                L->ops, mac ? L->mac_j : 0, L->energy_j, L->compute_j, memory_j(t, L->level_j), L->static_j,
                L->latency_s, bound_name(t, L->bound), L->weight_bytes, L->bytes, qs_hw_verdict_name(L->verdict),
                L->reason);
    }
    double macs = 0, ops = 0;
    for (int i = 0; i < c->nlayers; i++) {
        macs += c->layer[i].macs;
        ops += c->layer[i].ops;
    }
    csv_row(t, "total", "", -1, "", "", macs, ops, 0, c->energy_j, c->compute_j, memory_j(t, c->level_j), c->static_j,
            c->latency_s, "", c->model_bytes, c->bytes, qs_hw_verdict_name(c->verdict), "");
}

static int json_levels(qs_json_t *j, const qs_hw_target_t *t, const double *bytes, const double *level_j)
{
    char key[64];
    for (int k = 0; k < t->nlevels; k++) {
        snprintf(key, sizeof key, "bytes.%s", t->level[k].name);
        qs_json_num(j, key, bytes[k]);
        snprintf(key, sizeof key, "energy_j.%s", t->level[k].name);
        qs_json_num(j, key, level_j[k]);
    }
    int rc = qs_json_metric(j, "offchip_bytes", offchip_bytes(t, bytes));
    if (rc >= 0)
        rc = qs_json_metric(j, "memory_energy_j", memory_j(t, level_j));
    return rc;
}

static int print_json(const cost_opts_t *o, const qs_hw_target_t *t, const qs_workload_t *w, const qs_hw_cost_t *c)
{
    int rc = 0;
    for (int i = 0; rc >= 0 && i < c->nlayers; i++) {
        const qs_wl_layer_t *l = &w->layer[i];
        const qs_hw_layer_cost_t *L = &c->layer[i];
        qs_json_t j;
        qs_json_begin(&j, stdout);
        qs_json_str(&j, "record", "layer");
        qs_json_str(&j, "target", t->name);
        qs_json_str(&j, "layer", l->name);
        qs_json_str(&j, "op", l->op);
        qs_json_str(&j, "unit", L->unit < 0 ? NULL : t->unit[L->unit].name);
        qs_json_str(&j, "w_format", l->macs > 0 && L->unit >= 0 ? L->wfmt.name : NULL);
        qs_json_str(&j, "x_format", L->unit >= 0 ? L->xfmt.name : NULL);
        qs_json_num(&j, "ops", L->ops);
        qs_json_num(&j, "mac_j", l->macs > 0 && L->unit >= 0 ? L->mac_j : 0); /* as in --csv */
        qs_json_str(&j, "bound", bound_name(t, L->bound));
        qs_json_str(&j, "verdict", qs_hw_verdict_name(L->verdict));
        qs_json_str(&j, "reason", L->reason);
        rc = qs_json_metric(&j, "macs", L->macs);
        if (rc >= 0)
            rc = qs_json_metric(&j, "energy_j", L->energy_j);
        if (rc >= 0)
            rc = qs_json_metric(&j, "compute_energy_j", L->compute_j);
        if (rc >= 0)
            rc = qs_json_metric(&j, "static_energy_j", L->static_j);
        if (rc >= 0)
            rc = qs_json_metric(&j, "latency_s", L->latency_s);
        if (rc >= 0)
            rc = qs_json_metric(&j, "model_bytes", L->weight_bytes);
        if (rc >= 0)
            rc = json_levels(&j, t, L->bytes, L->level_j);
        qs_json_end(&j);
    }
    if (rc < 0)
        return rc;
    qs_json_t j;
    qs_json_begin(&j, stdout);
    qs_json_str(&j, "record", "total");
    qs_json_str(&j, "target", t->name);
    qs_json_str(&j, "model", o->model);
    qs_json_str(&j, "model_name", w->model);
    qs_json_int(&j, "batch", o->batch);
    qs_json_num(&j, "node_nm", t->node_nm);
    qs_json_str(&j, "verdict", qs_hw_verdict_name(c->verdict));
    qs_json_int(&j, "mapped", c->mapped);
    qs_json_int(&j, "unsupported", c->unsupported);
    char key[80];
    double macs = 0;
    for (int k = 0; k < c->nformats; k++) {
        snprintf(key, sizeof key, "macs.%s", c->by_format[k].name);
        qs_json_num(&j, key, c->by_format[k].macs);
        macs += c->by_format[k].macs;
    }
    rc = qs_json_metric(&j, "macs", macs);
    if (rc >= 0)
        rc = qs_json_metric(&j, "energy_j", c->energy_j);
    if (rc >= 0)
        rc = qs_json_metric(&j, "compute_energy_j", c->compute_j);
    if (rc >= 0)
        rc = qs_json_metric(&j, "static_energy_j", c->static_j);
    if (rc >= 0)
        rc = qs_json_metric(&j, "latency_s", c->latency_s);
    if (rc >= 0)
        rc = qs_json_metric(&j, "model_bytes", c->model_bytes);
    if (rc >= 0)
        rc = json_levels(&j, t, c->bytes, c->level_j);
    qs_json_end(&j);
    return rc;
}

/* The HAQ-style table: every MAC layer at every (w, a) width 1..8, the
 * layer's signedness kept. Written aside, into a file of its own made next
 * to FILE (FILE.part-XXXXXX: never someone else's FILE.part), and renamed
 * over FILE, so a failure leaves no half table and FILE as it was. FILE
 * must be a regular file or not exist (the rename must not replace a folder,
 * a device such as /dev/null, or a pipe). */
#define TABLE_MAX_BITS 8
static int write_table(const cost_opts_t *o, qs_hw_target_t **t, int nt, const qs_workload_t *w,
                       const qs_hw_cost_opts_t *co)
{
    struct stat st;
    if (stat(o->table, &st) == 0 && !S_ISREG(st.st_mode))
        return qs_error(QS_ERR_IO, "--table %s: cannot be written: %s", o->table,
                        S_ISDIR(st.st_mode) ? strerror(EISDIR) : "it exists and is not a regular file");
    size_t n = strlen(o->table) + sizeof ".part-XXXXXX";
    char *tmp = malloc(n);
    if (!tmp)
        return qs_error(QS_ERR_NOMEM, "out of memory");
    snprintf(tmp, n, "%s.part-XXXXXX", o->table);
    int fd = mkstemp(tmp);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
    if (!f) {
        qs_error(QS_ERR_IO, "--table %s: cannot be written (as '%s'): %s", o->table, tmp, strerror(errno));
        if (fd >= 0) {
            close(fd);
            remove(tmp);
        }
        free(tmp);
        return -1;
    }
    /* mkstemp makes 0600: give the table the permissions a file fopen creates would have */
    mode_t mask = umask(022);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0) {
        /* not fatal: the table is still complete, just more private */
    }
    int rc = QS_OK;
    fprintf(f, "target,layer,op,w_bits,a_bits,macs,energy_j,latency_s,compute_energy_j,memory_energy_j,unit,"
               "verdict,reason\n");
    for (int ti = 0; rc == QS_OK && ti < nt; ti++)
        for (int i = 0; rc == QS_OK && i < w->nlayers; i++) {
            if (w->layer[i].macs <= 0)
                continue;
            for (int bw = 1; rc == QS_OK && bw <= TABLE_MAX_BITS; bw++)
                for (int ba = 1; rc == QS_OK && ba <= TABLE_MAX_BITS; ba++) {
                    qs_wl_layer_t l = w->layer[i];
                    snprintf(l.w.name, sizeof l.w.name, "int%d", bw);
                    l.w.bits = bw;
                    snprintf(l.x.name, sizeof l.x.name, "int%d", ba);
                    l.x.bits = ba;
                    qs_hw_layer_cost_t L;
                    if ((rc = qs_hw_cost_layer(t[ti], &l, co, &L)) < 0) {
                        rc = qs_error_context("--table %s: ", o->table);
                        break;
                    }
                    csv_cells(f, 3, t[ti]->name, l.name, l.op);
                    fprintf(f, ",%d,%d,%.17g,%.17g,%.17g,%.17g,%.17g,", bw, ba, L.macs, L.energy_j, L.latency_s,
                            L.compute_j, memory_j(t[ti], L.level_j));
                    csv_cells(f, 3, unit_name(t[ti], L.unit), qs_hw_verdict_name(L.verdict), L.reason);
                    fputc('\n', f);
                }
        }
    if (fflush(f) != 0 && rc == QS_OK)
        rc = qs_error(QS_ERR_IO, "--table %s: write failed: %s", o->table, strerror(errno));
    if (rc == QS_OK && fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
        rc = qs_error(QS_ERR_IO, "--table %s: write failed: %s", o->table, strerror(errno));
    if (fclose(f) != 0 && rc == QS_OK)
        rc = qs_error(QS_ERR_IO, "--table %s: write failed: %s", o->table, strerror(errno));
    if (rc == QS_OK && rename(tmp, o->table) != 0)
        rc = qs_error(QS_ERR_IO, "--table %s: cannot be written: %s", o->table, strerror(errno));
    if (rc != QS_OK)
        remove(tmp);
    free(tmp);
    return rc;
}

static int run_cost(const cost_opts_t *o)
{
    qs_qnet_t *q = NULL;
    qs_workload_t *w = NULL;
    qs_hw_target_t **t = NULL;
    qs_hw_cost_t **cost = NULL;
    int nt = 0, rc = cost_qnet(o, &q);
    if (rc >= 0)
        rc = qs_qnet_workload(q, o->ic_any ? &o->ic : NULL, &w);
    if (rc >= 0)
        rc = load_targets(o->targets, o->node, &t, &nt);
    qs_hw_cost_opts_t co;
    qs_hw_cost_opts_default(&co);
    co.batch = o->batch > 0 ? o->batch : 1;
    co.unit = o->unit;
    if (rc >= 0 && o->unit) { /* a unit some target has, and checked against each by qs_hw_cost */
        bool found = false;
        for (int i = 0; i < nt; i++)
            found = found || qs_hw_unit_find(t[i], o->unit);
        if (!found)
            rc = qs_error(QS_ERR_INVALID, "--unit %s: no such unit in %s", o->unit, nt == 1 ? t[0]->name : "any target");
    }
    /* everything that can fail — the costs, then the table, committed — before the first byte on stdout */
    if (rc >= 0 && !(cost = calloc((size_t)(nt > 0 ? nt : 1), sizeof *cost)))
        rc = qs_error(QS_ERR_NOMEM, "out of memory");
    for (int i = 0; rc >= 0 && i < nt; i++) {
        qs_hw_cost_opts_t ci = co;
        if (o->unit && !qs_hw_unit_find(t[i], o->unit))
            ci.unit = NULL;
        rc = qs_hw_cost(t[i], w, &ci, &cost[i]);
    }
    if (rc >= 0 && o->table)
        rc = write_table(o, t, nt, w, &co);
    bool per_layer = o->layers || nt == 1;
    if (rc >= 0 && o->csv)
        csv_header();
    if (rc >= 0 && !o->csv && !o->json && !per_layer)
        printf("%-18s %10s %10s %10s %10s %-12s %s\n", "target", "energy", "latency", "off-chip", "model", "verdict",
               "mapped/unsupported layers");
    for (int i = 0; rc >= 0 && i < nt; i++) {
        const qs_hw_cost_t *c = cost[i];
        if (o->csv) {
            print_csv(t[i], w, c);
        } else if (o->json) {
            rc = print_json(o, t[i], w, c);
        } else if (per_layer) {
            printf("%starget      %s (%s, %g nm, %s): %s\n", i ? "\n" : "", t[i]->name, t[i]->kind, t[i]->node_nm,
                   t[i]->path, t[i]->description);
            printf("model       %s (%s)%s\n\n", o->model, w->model, co.batch > 1 ? ", per inference of a batch" : "");
            print_layers(t[i], w, c);
            putchar('\n');
            print_total(t[i], c);
        } else {
            char b1[32], b2[32], b3[32], b4[32];
            printf("%-18s %10s %10s %10s %10s %-12s %d/%d\n", t[i]->name, si(c->energy_j, "J", b1, sizeof b1),
                   si(c->latency_s, "s", b2, sizeof b2), si(offchip_bytes(t[i], c->bytes), "B", b3, sizeof b3),
                   si(c->model_bytes, "B", b4, sizeof b4), qs_hw_verdict_name(c->verdict), c->mapped, c->unsupported);
        }
    }
    if (rc >= 0 && o->table && !o->csv && !o->json)
        printf("%stable       %s: %d target%s x MAC layers x w,a in 1..%d\n", per_layer ? "\n" : "", o->table, nt,
               nt == 1 ? "" : "s", TABLE_MAX_BITS);
    for (int i = 0; cost && i < nt; i++)
        qs_hw_cost_free(cost[i]);
    free(cost);
    free_targets(t, nt);
    qs_workload_free(w);
    qs_qnet_free(q);
    return rc < 0 ? qs_cli_fail(QS_EXIT_RUNTIME) : QS_EXIT_OK;
}

int qs_cmd_cost(int argc, char **argv)
{
    cost_opts_t o;
    memset(&o, 0, sizeof o);
    qs_int_config_default(&o.ic);
    o.batch = 1;
    int ex = parse_cost(argc, argv, &o);
    return ex == QS_EXIT_OK ? run_cost(&o) : ex;
}

/* ---- quasar targets ---------------------------------------------------------------------------- */

static void formats(const qs_hw_format_t *f, int n, char *buf, size_t size)
{
    buf[0] = '\0';
    for (int i = 0; i < n; i++)
        snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? "/" : "", f[i].name);
}

static void unit_rate_str(const qs_hw_unit_t *u, char *buf, size_t n)
{
    if (u->rate == QS_HW_RATE_BITBRICK)
        snprintf(buf, n, "%g MAC/cycle at %dx%d bits, / ceil(bw/%d)*ceil(bx/%d)", u->macs_per_cycle, u->brick_bits,
                 u->brick_bits, u->brick_bits, u->brick_bits);
    else
        snprintf(buf, n, "%g MAC/cycle", u->macs_per_cycle);
}

/* Energy of one MAC at the unit's first formats, as the cost model prices it. */
static double unit_mac_energy(const qs_hw_target_t *t, int ui)
{
    const qs_hw_unit_t *u = &t->unit[ui];
    qs_wl_layer_t l;
    memset(&l, 0, sizeof l);
    snprintf(l.name, sizeof l.name, "probe");
    snprintf(l.op, sizeof l.op, "linear");
    qs_hw_format_t fw = u->wfmt[0], fx = u->xfmt[0];
    int bw = fw.bits ? fw.bits : 8, bx = fx.bits ? fx.bits : 8;
    if (fw.bits)
        snprintf(l.w.name, sizeof l.w.name, "%s", fw.name);
    else
        snprintf(l.w.name, sizeof l.w.name, "int%d", bw);
    if (fx.bits)
        snprintf(l.x.name, sizeof l.x.name, "%s", fx.name);
    else
        snprintf(l.x.name, sizeof l.x.name, "int%d", bx);
    l.y = l.x;
    l.w.bits = bw;
    l.x.bits = l.y.bits = bx;
    l.macs = l.k = l.w_elems = l.x_elems = l.y_elems = 1;
    l.density = 1;
    qs_hw_cost_opts_t o;
    qs_hw_cost_opts_default(&o);
    o.unit = u->name;
    qs_hw_layer_cost_t L;
    if (qs_hw_cost_layer(t, &l, &o, &L) < 0 || L.unit != ui)
        return NAN;
    return L.mac_j;
}

/* One target in full; with --csv, its unit rows (the caller prints the header once). */
static int show_target(const qs_hw_target_t *t, bool csv, bool json)
{
    char f1[256], f2[256], r[128], b1[32], b2[32], b3[32];
    if (!csv && !json) {
        printf("target      %s (%s): %s\n", t->name, t->kind, t->description);
        printf("file        %s\n", t->path);
        printf("technology  %g nm, %g V; clock %s, utilization %g; static %s\n", t->node_nm, t->voltage,
               si(t->clock_hz, "Hz", b1, sizeof b1), t->utilization, si(t->static_w, "W", b2, sizeof b2));
        printf("requant     %s\n", t->requant);
        printf("features    weights per-%s%s%s; zero points: weights %s, activations %s; storage %s; missing "
               "formats %s\n",
               t->gran_tensor ? "tensor" : "", t->gran_channel ? (t->gran_tensor ? "/channel" : "channel") : "",
               t->gran_group ? "/group" : "", t->w_zero_point ? "yes" : "no", t->x_zero_point ? "yes" : "no",
               t->packed ? "packed" : "container", t->missing == QS_HW_MISSING_MAP_UP ? "mapped up" : "unsupported");
        printf("sparsity   ");
        for (int i = 0; i < t->nsparse; i++)
            printf(" %d:%d", t->sparse_n[i], t->sparse_m[i]);
        printf("%s%s\n\n", t->sparse_unstructured ? " unstructured" : "",
               t->nsparse || t->sparse_unstructured ? "" : " none");
        printf("%-18s %-28s %-28s %-14s %10s %s\n", "unit", "weights", "acts", "rate", "MAC energy", "acc");
    }
    for (int i = 0; i < t->nunits; i++) {
        const qs_hw_unit_t *u = &t->unit[i];
        formats(u->wfmt, u->nw, f1, sizeof f1);
        formats(u->xfmt, u->nx, f2, sizeof f2);
        unit_rate_str(u, r, sizeof r);
        double e = unit_mac_energy(t, i);
        if (csv) {
            csv_cells(stdout, 5, t->name, u->name, f1, f2, u->rate == QS_HW_RATE_BITBRICK ? "bitbrick" : "fixed");
            printf(",%.17g,%.17g,", u->macs_per_cycle, e);
            qs_res_csv_cell(stdout, u->acc);
            printf(",%s\n", u->optional ? "true" : "false");
        } else if (json) {
            qs_json_t j;
            qs_json_begin(&j, stdout);
            qs_json_str(&j, "target", t->name);
            qs_json_str(&j, "unit", u->name);
            qs_json_str(&j, "weights", f1);
            qs_json_str(&j, "acts", f2);
            qs_json_str(&j, "rate", u->rate == QS_HW_RATE_BITBRICK ? "bitbrick" : "fixed");
            qs_json_num(&j, "macs_per_cycle", u->macs_per_cycle);
            qs_json_num(&j, "mac_j", e);
            qs_json_str(&j, "acc", u->acc);
            qs_json_bool(&j, "optional", u->optional);
            qs_json_end(&j);
        } else {
            printf("%-18s %-28s %-28s %-14s %10s %s%s\n", u->name, f1, f2,
                   u->rate == QS_HW_RATE_BITBRICK ? "bitbrick" : r, si(e, "J", b1, sizeof b1), u->acc,
                   u->optional ? " (optional)" : "");
            if (u->rate == QS_HW_RATE_BITBRICK)
                printf("%-18s   %s\n", "", r);
        }
    }
    if (!csv && !json) {
        printf("\n%-18s %12s %14s %12s\n", "memory", "capacity", "bandwidth", "energy");
        printf("%-18s %12s %14s %12s\n", "(operands)", si(t->local_bytes, "B", b1, sizeof b1), "-", "-");
        for (int k = 0; k < t->nlevels; k++) {
            const qs_hw_level_t *L = &t->level[k];
            printf("%-18s %12s %14s %10s/B%s\n", L->name, L->capacity > 0 ? si(L->capacity, "B", b1, sizeof b1) : "-",
                   si(L->bandwidth, "B/s", b2, sizeof b2), si(L->energy, "J", b3, sizeof b3),
                   L->offchip ? " (off-chip)" : "");
        }
    }
    return 0;
}

int qs_cmd_targets(int argc, char **argv)
{
    bool csv = false, json = false;
    const char *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--csv") == 0)
            csv = true;
        else if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (argv[i][0] == '-' && argv[i][1])
            return qs_cli_error(QS_EXIT_USAGE, "targets: unknown option '%s' (see 'quasar help targets')", argv[i]);
        else if (name)
            return qs_cli_error(QS_EXIT_USAGE, "targets: unexpected argument '%s'", argv[i]);
        else
            name = argv[i];
    }
    if (csv && json)
        return qs_cli_error(QS_EXIT_USAGE, "targets: --csv and --json: give one or the other");
    if (name && strcmp(name, "all") == 0)
        name = NULL; /* every target: the list, as without NAME */
    if (check_names(name, "targets") < 0)
        return qs_cli_fail(QS_EXIT_USAGE);
    qs_hw_target_t **t = NULL;
    int nt = 0;
    if (load_targets(name, 0, &t, &nt) < 0)
        return qs_cli_fail(QS_EXIT_RUNTIME);
    if (name) { /* NAME or a list NAME,NAME...: each target in turn */
        if (csv)
            puts("target,unit,weights,acts,rate,macs_per_cycle,mac_j,acc,optional");
        for (int i = 0; i < nt; i++) {
            if (i && !csv && !json)
                putchar('\n');
            show_target(t[i], csv, json);
        }
        free_targets(t, nt);
        return QS_EXIT_OK;
    }
    char b1[32];
    if (csv)
        puts("target,kind,node_nm,clock_hz,units,levels,path,description");
    else if (!json)
        printf("%-18s %-12s %6s %10s  %-44s %s\n", "target", "kind", "node", "clock", "units", "description");
    for (int i = 0; i < nt; i++) {
        char units[512] = "", levels[256] = "";
        for (int k = 0; k < t[i]->nunits; k++)
            snprintf(units + strlen(units), sizeof units - strlen(units), "%s%s", k ? " " : "", t[i]->unit[k].name);
        for (int k = 0; k < t[i]->nlevels; k++)
            snprintf(levels + strlen(levels), sizeof levels - strlen(levels), "%s%s", k ? " " : "",
                     t[i]->level[k].name);
        if (csv) {
            csv_cells(stdout, 2, t[i]->name, t[i]->kind);
            printf(",%g,%.17g,", t[i]->node_nm, t[i]->clock_hz);
            qs_res_csv_cell(stdout, units);
            putchar(',');
            qs_res_csv_cell(stdout, levels);
            putchar(',');
            qs_res_csv_cell(stdout, t[i]->path);
            putchar(',');
            qs_res_csv_cell(stdout, t[i]->description);
            putchar('\n');
        } else if (json) {
            qs_json_t j;
            qs_json_begin(&j, stdout);
            qs_json_str(&j, "target", t[i]->name);
            qs_json_str(&j, "kind", t[i]->kind);
            qs_json_num(&j, "node_nm", t[i]->node_nm);
            qs_json_num(&j, "clock_hz", t[i]->clock_hz);
            qs_json_str(&j, "units", units);
            qs_json_str(&j, "levels", levels);
            qs_json_str(&j, "requant", t[i]->requant);
            qs_json_str(&j, "path", t[i]->path);
            qs_json_str(&j, "description", t[i]->description);
            qs_json_end(&j);
        } else {
            printf("%-18s %-12s %4g nm %10s  %-44s %s\n", t[i]->name, t[i]->kind, t[i]->node_nm,
                   si(t[i]->clock_hz, "Hz", b1, sizeof b1), units, t[i]->description);
        }
    }
    free_targets(t, nt);
    return QS_EXIT_OK;
}
