/* cli/cmd_sensitivity.c — `quasar sensitivity MODEL [quantization options]`:
 * which layers and activation points cost accuracy when quantized
 * (docs/sensitivity.md). Each unit is evaluated quantized alone and left in
 * float alone; the table ranks units by the drop they cause alone. The work
 * is qs_sensitivity's; this file parses, reports progress on a terminal and
 * prints. */
#include "config.h"

#include "cli/cli.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void qs_help_sensitivity(FILE *out)
{
    fprintf(out,
            "Usage: quasar sensitivity MODEL.h5 [--data SPEC] [--limit N] [--batch B] [--threads N]\n"
            "                                   [--json] [--preset P] [--weights SPEC] [--acts SPEC]\n"
            "                                   [--layer ...] [--calib-data SPEC] [--calib-images N]\n"
            "\n"
            "Quantizes MODEL (BatchNorm folded, weights quantized, activations calibrated\n"
            "once on the training split) and measures what each unit costs:\n"
            "  a unit is a conv2d/linear layer (its weights, its bias and the activation\n"
            "  point at its output, after its ReLU) or an activation point of its own\n"
            "  (the network input, an add with its ReLU, a pooling output, ...).\n"
            "For every unit, two fake-quant runs over the evaluation images:\n"
            "  only     the unit quantized, everything else float: its drop is the float\n"
            "           model's top-1 minus this one (in points, 100 x fraction)\n"
            "  all but  everything quantized except the unit: its gain is this top-1\n"
            "           minus that of the fully quantized network\n"
            "The table is sorted by the drop of 'only' (largest first; ties in node order).\n"
            "A unit of which the configuration quantizes nothing ('float') is not run.\n"
            "MODEL may be a quantized-model file (quasar quantize-model): its calibrated\n"
            "quantizers are used as they are.\n"
            "\n"
            "  --data SPEC              fmnist:test (default), fmnist:train, or FILE.h5 with\n"
            "                           /images (N x C x H x W, uint8 or float32) and /labels\n"
            "  --limit N                only the first N images\n"
            "  --batch B                images per batch (default 256)\n"
            "  --threads N              worker threads (default: $QUASAR_THREADS or all cores);\n"
            "                           the results do not depend on it\n"
            "  --json                   print one JSON object: float_top1, top1, agreement,\n"
            "                           logit_sqnr_db (everything quantized), seconds, and\n"
            "                           units (in rank order) with only_* and all_but_* figures\n"
            "\n"
            "%s"
            "\n"
            "Exit status: 0 success, 1 runtime error (bad model or data), 2 usage error.\n",
            qs_cli_qopts_help);
}

typedef struct {
    const char *model, *data;
    int64_t limit, batch, threads;
    bool json;
    qs_cli_qopts_t q;
} opts_t;

static int parse_args(int argc, char **argv, opts_t *o)
{
    const char *v;
    int m;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        }
        if ((m = qs_cli_qopts_parse(argc, argv, &i, &o->q)) != 0) {
            if (m != 1) /* -1, or the exit code 2 some of its messages return */
                return QS_EXIT_USAGE;
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "--data", &v)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            if (o->data)
                return qs_cli_error(QS_EXIT_USAGE, "--data given twice");
            o->data = v;
            continue;
        }
        static const struct {
            const char *flag;
            int64_t lo, hi;
            size_t at;
        } nums[] = {
            {"--limit", 1, INT64_MAX, offsetof(opts_t, limit)},
            {"--batch", 1, INT64_C(1) << 20, offsetof(opts_t, batch)},
            {"--threads", 1, 1024, offsetof(opts_t, threads)},
        };
        bool matched = false;
        for (size_t k = 0; k < sizeof nums / sizeof *nums && !matched; k++) {
            if ((m = qs_cli_opt(argc, argv, &i, nums[k].flag, &v)) == 0)
                continue;
            if (m < 0)
                return QS_EXIT_USAGE;
            if (qs_kv_int(nums[k].flag, NULL, v, nums[k].lo, nums[k].hi, (int64_t *)(void *)((char *)o + nums[k].at)) <
                0)
                return qs_cli_fail(QS_EXIT_USAGE);
            matched = true;
        }
        if (matched)
            continue;
        if (a[0] == '-' && a[1] != '\0')
            return qs_cli_error(QS_EXIT_USAGE, "sensitivity: unknown option '%s' (see 'quasar help sensitivity')", a);
        if (o->model)
            return qs_cli_error(QS_EXIT_USAGE, "sensitivity: unexpected argument '%s' (see 'quasar help sensitivity')",
                                a);
        o->model = a;
    }
    if (!o->model)
        return qs_cli_error(QS_EXIT_USAGE, "sensitivity: expected MODEL.h5 (see 'quasar help sensitivity')");
    if (!o->data)
        o->data = "fmnist:test";
    qs_qconfig_t c; /* a bad spec or preset is a usage error, found before any work */
    if (o->q.any && qs_cli_qopts_config(&o->q, &c) < 0)
        return qs_cli_fail(QS_EXIT_USAGE);
    return QS_EXIT_OK;
}

/* "\rquasar: sensitivity 3/10 units (b1.pw)" on a terminal's stderr */
static int on_progress(const qs_progress_t *p, void *user)
{
    (void)user;
    fprintf(stderr, "\rquasar: %s %" PRId64 "/%" PRId64 " units%s%s%s\033[K", p->task, p->done, p->total,
            p->detail ? " (" : "", p->detail ? p->detail : "", p->detail ? ")" : "");
    fflush(stderr);
    return 0;
}

/* "w+a", "w", "a" or "float": what the configuration quantizes in the unit */
static const char *contents(const qs_sens_unit_t *u)
{
    if (u->weights && u->acts)
        return "w+a";
    if (u->weights)
        return "w";
    if (u->acts)
        return "a";
    return "float";
}

static void print_sqnr(double db)
{
    if (isinf(db) && db > 0)
        printf(" %7s", "inf");
    else
        printf(" %7.2f", db);
}

static void print_table(const opts_t *o, const qs_qnet_t *q, const qs_dataset_t *d, int64_t all, int threads,
                        const qs_sensitivity_t *s)
{
    const qs_graph_t *g = q->g;
    char cfg[4096];
    printf("model       %s (%s)\n", g->name[0] ? g->name : "unnamed", o->model);
    if (d->n < all)
        printf("data        %s (the first %" PRId64 " of %" PRId64 " images)\n", d->source, d->n, all);
    else
        printf("data        %s\n", d->source);
    printf("engine      fake-quant, %d thread%s; %d batchnorm%s folded\n", threads, threads == 1 ? "" : "s", q->folded,
           q->folded == 1 ? "" : "s");
    qs_qconfig_str(&q->cfg, cfg, sizeof cfg);
    for (char *line = strtok(cfg, "\n"); line; line = strtok(NULL, "\n"))
        printf("  %s\n", line);
    printf("calibration %s, %" PRId64 " images (seed %" PRIu64 ")\n", q->calib.source, q->calib.images, q->calib.seed);
    printf("float       top-1 %.4f\n", s->fp.top1);
    printf("quantized   top-1 %.4f (%+.2f points), agreement %.4f, logit SQNR %.2f dB\n", s->all.top1,
           100.0 * (s->all.top1 - s->fp.top1), s->all.agreement, s->all.logit_sqnr_db);
    printf("units       %d, %d fake-quant runs of %" PRId64 " images, %.1f s\n", s->nrows, s->runs, s->images,
           s->seconds);
    printf("\n%4s  %-14s %-8s %-5s %-14s | %-30s | %s\n", "", "", "", "", "", "only this unit quantized",
           "all but this unit");
    printf("%4s  %-14s %-8s %-5s %-14s | %7s %6s %7s %7s | %7s %6s\n", "rank", "node", "op", "unit", "act point",
           "top-1", "drop", "agree", "SQNR dB", "top-1", "gain");
    for (int k = 0; k < s->nrows; k++) {
        const qs_sens_row_t *r = &s->row[s->order[k]];
        const qs_sens_unit_t *u = &r->u;
        printf("%4d  %-14s %-8s %-5s %-14s | %7.4f %+6.2f %7.4f", k + 1, g->nodes[u->node].name,
               qs_op_name(g->nodes[u->node].op), contents(u), u->point >= 0 ? g->nodes[u->point].name : "-",
               r->only.top1, 100.0 * r->only_drop, r->only.agreement);
        print_sqnr(r->only.logit_sqnr_db);
        printf(" | %7.4f %+6.2f\n", r->all_but.top1, 100.0 * r->all_but_gain);
    }
}

static int print_json(const opts_t *o, const qs_qnet_t *q, const qs_dataset_t *d, int threads,
                      const qs_sensitivity_t *s)
{
    const qs_graph_t *g = q->g;
    char cfg[4096];
    qs_json_t j;
    qs_json_begin(&j, stdout);
    qs_json_str(&j, "model", o->model);
    qs_json_str(&j, "model_name", g->name);
    qs_json_str(&j, "data", d->source);
    qs_json_str(&j, "engine", "fake");
    qs_json_int(&j, "threads", threads);
    qs_json_int(&j, "images", s->images);
    qs_json_str(&j, "quantization", qs_qconfig_str(&q->cfg, cfg, sizeof cfg));
    qs_json_str(&j, "calibration_data", q->calib.source);
    qs_json_int(&j, "calibration_images", q->calib.images);
    qs_json_int(&j, "folded_batchnorms", q->folded);
    qs_json_int(&j, "runs", s->runs);
    static const char *const names[] = {"float_top1", "top1", "agreement", "logit_sqnr_db", "seconds"};
    const double vals[] = {s->fp.top1, s->all.top1, s->all.agreement, s->all.logit_sqnr_db, s->seconds};
    int rc = QS_OK;
    for (size_t k = 0; k < sizeof vals / sizeof *vals && rc == QS_OK; k++)
        rc = qs_json_metric(&j, names[k], vals[k]);
    FILE *out = j.out;
    fputs(", \"units\": [", out);
    for (int k = 0; k < s->nrows; k++) {
        const qs_sens_row_t *r = &s->row[s->order[k]];
        const qs_sens_unit_t *u = &r->u;
        qs_json_t e;
        fputs(k ? ", " : "", out);
        qs_json_begin(&e, out);
        qs_json_int(&e, "rank", k + 1);
        qs_json_str(&e, "name", g->nodes[u->node].name);
        qs_json_str(&e, "op", qs_op_name(g->nodes[u->node].op));
        qs_json_str(&e, "point", u->point >= 0 ? g->nodes[u->point].name : NULL);
        qs_json_str(&e, "unit", contents(u));
        qs_json_bool(&e, "weights", u->weights);
        qs_json_bool(&e, "bias", u->bias);
        qs_json_bool(&e, "acts", u->acts);
        qs_json_num(&e, "only_top1", r->only.top1);
        qs_json_num(&e, "only_drop", r->only_drop);
        qs_json_num(&e, "only_agreement", r->only.agreement);
        qs_json_num(&e, "only_logit_sqnr_db", r->only.logit_sqnr_db);
        qs_json_num(&e, "all_but_top1", r->all_but.top1);
        qs_json_num(&e, "all_but_gain", r->all_but_gain);
        qs_json_num(&e, "all_but_agreement", r->all_but.agreement);
        qs_json_num(&e, "all_but_logit_sqnr_db", r->all_but.logit_sqnr_db);
        fputs("}", out);
    }
    fputc(']', out);
    j.count++;
    qs_json_end(&j);
    return rc;
}

static int run(const opts_t *o)
{
    qs_graph_t *g = NULL;
    qs_qnet_t *q = NULL;
    qs_dataset_t *d = NULL;
    qs_pool_t *pool = NULL;
    qs_sensitivity_t *s = NULL;
    int quantized = qs_model_is_quantized(o->model);
    if (quantized < 0)
        goto fail;
    if (quantized && o->q.any) {
        qs_error(QS_ERR_INVALID, "sensitivity: '%s' is a quantized model: its calibrated quantizers are used as "
                 "they are; drop the quantization options, or give its float model", o->model);
        goto fail;
    }
    if (qs_dataset_open(o->data, &d) < 0)
        goto fail;
    if (!(pool = qs_pool_create((int)o->threads)))
        goto fail;
    if (quantized) {
        if (qs_qnet_load(o->model, &q) < 0)
            goto fail;
    } else {
        if (qs_model_load(o->model, &g) < 0 || qs_cli_quantize_net(g, &o->q, pool, &q) < 0)
            goto fail;
    }
    /* --limit: the first N images, seen through a copy of the header */
    qs_dataset_t view = *d;
    if (o->limit > 0 && o->limit < view.n)
        view.n = o->limit;
    bool tty = isatty(STDERR_FILENO);
    qs_progress_cb_t cb = {tty ? on_progress : NULL, NULL, 0};
    qs_engine_opts_t eo = {pool, false};
    int rc = qs_sensitivity(q, &view, &eo, o->batch, &cb, &s);
    if (tty)
        fputs("\r\033[K", stderr);
    if (rc < 0)
        goto fail;
    int threads = qs_pool_threads(pool);
    if (o->json) {
        if (print_json(o, q, &view, threads, s) < 0)
            goto fail;
    } else {
        print_table(o, q, &view, d->n, threads, s);
    }
    qs_sensitivity_free(s);
    qs_qnet_free(q);
    qs_graph_free(g);
    qs_pool_free(pool);
    qs_dataset_free(d);
    return QS_EXIT_OK;
fail:;
    int ex = qs_cli_fail(QS_EXIT_RUNTIME);
    qs_sensitivity_free(s);
    qs_qnet_free(q);
    qs_graph_free(g);
    qs_pool_free(pool);
    qs_dataset_free(d);
    return ex;
}

int qs_cmd_sensitivity(int argc, char **argv)
{
    opts_t o;
    memset(&o, 0, sizeof o);
    int ex = parse_args(argc, argv, &o);
    if (ex == QS_EXIT_OK)
        ex = run(&o);
    return ex;
}
