/* cli/cmd_eval.c — `quasar eval MODEL [--data SPEC] [--json]`: runs a model
 * over a dataset and prints top-1/top-5 accuracy and the throughput (a
 * one-screen summary, or one JSON object with --json): with the float engine,
 * or, for a quantized-model file or with quantization options, with the
 * fake-quant engine against the float model (agreement, logit SQNR, per-layer
 * errors). The work is qs_eval's and qs_qeval's; this file parses, reports
 * progress on a terminal and prints. */
#include "config.h"

#include "cli/cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void qs_help_eval(FILE *out)
{
    fprintf(out,
            "Usage: quasar eval MODEL.h5 [--data SPEC] [--limit N] [--batch B] [--threads N]\n"
            "                            [--reference] [--json] [--layers]\n"
            "                            [--preset P] [--weights SPEC] [--acts SPEC] [--layer ...]\n"
            "                            [--engine float|fake|int] [--acc SPEC] [--requant SPEC]\n"
            "                            [--acc-trace] [--arithmetic TARGET [--unit U]]\n"
            "\n"
            "Runs MODEL with the float engine on every image of a dataset, normalized as\n"
            "the model file says, and prints top-1 and top-5 accuracy, the number of images,\n"
            "images per second and the time of the evaluation (loading the model and the\n"
            "dataset not included). A label is in the top k when fewer than k classes rank\n"
            "before it: those with a larger logit, and those with an equal logit and a\n"
            "smaller index (a tie goes to the first class, as argmax picks it).\n"
            "\n"
            "With a quantized model (quasar quantize-model) or with any quantization option\n"
            "below, MODEL is quantized (BatchNorm folded, weights quantized, activations\n"
            "calibrated on the training split) and run with the fake-quant engine; the\n"
            "float model runs on the same images, and the summary adds its top-1, the\n"
            "agreement of the top-1 classes and the SQNR of the logits. images/s is then\n"
            "the fake-quant engine's with per-point statistics on (bench/engine measures\n"
            "its plain speed).\n"
            "\n"
            "  --data SPEC              fmnist:test (default), fmnist:train, or FILE.h5 with\n"
            "                           /images (N x C x H x W, uint8 or float32) and /labels\n"
            "  --limit N                only the first N images\n"
            "  --batch B                images per batch (default 256)\n"
            "  --threads N              worker threads (default: $QUASAR_THREADS or all cores)\n"
            "  --reference              the BLAS-free reference path (slow: the arithmetic\n"
            "                           the tests pin, see docs/engine.md)\n"
            "  --json                   print one JSON object: top1, top5, img_s, seconds\n"
            "                           (metric names) and model, data, engine, threads, images;\n"
            "                           quantized: also float_top1, agreement, logit_sqnr_db,\n"
            "                           quantization, and layers (per-layer figures)\n"
            "  --layers                 quantized: a table per layer: weight and activation\n"
            "                           quantizers, weight SQNR, activation SQNR and clipped\n"
            "                           fraction at each quantization point\n"
            "\n"
            "  --engine E               float, fake (the default when quantized) or int: the\n"
            "                           bit-exact integer engine (docs/engine.md, \"The integer\n"
            "                           engine\"); a float MODEL is quantized first (W8A8 unless\n"
            "                           the options below say otherwise). The fake-quant engine\n"
            "                           and the float model run on the same images: the summary\n"
            "                           adds the fake-quant top-1, agreement and logit SQNR\n"
            "                           against it, and the overflows; --layers prints per\n"
            "                           conv2d/linear the accumulator, the share of outputs on\n"
            "                           the fast path, outputs that overflowed, overflow events,\n"
            "                           the largest |sum|, the width the data needed, the\n"
            "                           guaranteed widths (data type, A2Q, A2Q+) and the output\n"
            "                           codes that differ from fake-quant's\n"
            "  --acc SPEC               int: every conv2d/linear accumulator (docs/spec.md,\n"
            "                           \"Accumulators\"), e.g. int16,overflow=saturate;\n"
            "                           default int32,overflow=wrap\n"
            "  --requant SPEC           int: the requantizer (docs/spec.md, \"Requantizers\"):\n"
            "                           float64 (default), float32, fixed-point, shift, or the\n"
            "                           presets gemmlowp, qnnpack, onednn\n"
            "  --layer NAME:acc=SPEC    int: one layer's accumulator (repeatable; also\n"
            "  --layer NAME:requant=SPEC  NAME:requant=SPEC), on top of --acc/--requant\n"
            "  --arithmetic T           int: compute as target T does (docs/targets.md): each\n"
            "                           conv2d/linear accumulates in the native accumulator\n"
            "                           of the unit 'quasar cost' picks for it, and every\n"
            "                           rescale uses T's requantizer (instead of --acc,\n"
            "                           --requant)\n"
            "  --unit U                 with --arithmetic: the target's unit U wherever it can\n"
            "                           run a layer (optional units, such as cpu-avx512-vnni's\n"
            "                           avx512bw-pairwise, only so)\n"
            "  --acc-trace              int: every dot product on the order-exact path, so the\n"
            "                           largest partial sum is exact, not only the final one\n"
            "\n"
            "%s"
            "\n"
            "Fashion-MNIST is read from /usr/share/datasets/fashion-mnist (Debian's\n"
            "dataset-fashion-mnist) or from $QUASAR_FASHION_MNIST.\n"
            "Exit status: 0 success, 1 runtime error (bad model or data), 2 usage error.\n",
            qs_cli_qopts_help);
}

typedef struct {
    const char *model, *data;
    int64_t limit, batch, threads;
    bool reference, json, layers;
    qs_cli_qopts_t q;
    bool engine_int;
    qs_int_config_t ic;
    bool ic_any;                 /* --acc, --requant or a NAME:acc=/requant= override given */
    const char *arithmetic;      /* --arithmetic TARGET */
    const char *unit;            /* --unit U: the target's unit preferred (optional units only so) */
} opts_t;

/* --engine, --acc, --requant, --acc-trace and --layer NAME:acc=|requant=: 1 consumed, 0 not, -1 usage error */
static int parse_int_opt(int argc, char **argv, int *i, opts_t *o)
{
    const char *v;
    int m;
    if (strcmp(argv[*i], "--acc-trace") == 0) {
        o->ic.trace = true;
        return 1;
    }
    if ((m = qs_cli_opt(argc, argv, i, "--engine", &v)) != 0) {
        if (m < 0)
            return -1;
        if (strcmp(v, "int") != 0 && strcmp(v, "fake") != 0 && strcmp(v, "float") != 0)
            return qs_cli_error(QS_EXIT_USAGE, "--engine '%s': expected float, fake or int", v), -1;
        o->engine_int = strcmp(v, "int") == 0;
        return 1;
    }
    if ((m = qs_cli_opt(argc, argv, i, "--arithmetic", &v)) != 0) {
        if (m < 0)
            return -1;
        o->arithmetic = v;
        return 1;
    }
    if ((m = qs_cli_opt(argc, argv, i, "--unit", &v)) != 0) {
        if (m < 0)
            return -1;
        o->unit = v;
        return 1;
    }
    m = qs_cli_intopts_parse(argc, argv, i, &o->ic);
    o->ic_any = o->ic_any || m > 0;
    return m;
}

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
        if (strcmp(a, "--reference") == 0) {
            o->reference = true;
            continue;
        }
        if (strcmp(a, "--layers") == 0) {
            o->layers = true;
            continue;
        }
        if ((m = parse_int_opt(argc, argv, &i, o)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            continue;
        }
        if ((m = qs_cli_qopts_parse(argc, argv, &i, &o->q)) != 0) {
            if (m < 0)
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
            return qs_cli_error(QS_EXIT_USAGE, "eval: unknown option '%s' (see 'quasar help eval')", a);
        if (o->model)
            return qs_cli_error(QS_EXIT_USAGE, "eval: unexpected argument '%s' (see 'quasar help eval')", a);
        o->model = a;
    }
    if (!o->model)
        return qs_cli_error(QS_EXIT_USAGE, "eval: expected MODEL.h5 (see 'quasar help eval')");
    if (!o->data)
        o->data = "fmnist:test";
    if (o->arithmetic && !o->engine_int)
        return qs_cli_error(QS_EXIT_USAGE, "eval: --arithmetic %s is for the integer engine (add --engine int)",
                            o->arithmetic);
    if (o->unit && !o->arithmetic)
        return qs_cli_error(QS_EXIT_USAGE, "eval: --unit %s names a unit of the --arithmetic target; give "
                            "--arithmetic TARGET", o->unit);
    if (o->arithmetic && o->ic_any)
        return qs_cli_error(QS_EXIT_USAGE, "eval: --arithmetic %s sets every accumulator and requantizer: drop "
                            "--acc, --requant and --layer NAME:acc=/requant=", o->arithmetic);
    qs_qconfig_t c; /* a bad spec or preset is a usage error, found before any work */
    if (o->q.any && qs_cli_qopts_config(&o->q, &c) < 0)
        return qs_cli_fail(QS_EXIT_USAGE);
    return QS_EXIT_OK;
}

/* "\rquasar: eval 2560/10000 images" on a terminal's stderr */
static int on_progress(const qs_progress_t *p, void *user)
{
    (void)user;
    fprintf(stderr, "\rquasar: %s %" PRId64 "/%" PRId64 " images\033[K", p->task, p->done, p->total);
    fflush(stderr);
    return 0;
}

static void print_summary(const opts_t *o, const qs_graph_t *g, const qs_dataset_t *d, int64_t all, int threads,
                          const qs_eval_t *r)
{
    printf("model       %s (%s)\n", g->name[0] ? g->name : "unnamed", o->model);
    if (d->n < all)
        printf("data        %s (the first %" PRId64 " of %" PRId64 " images)\n", d->source, d->n, all);
    else
        printf("data        %s\n", d->source);
    printf("engine      float%s, %d thread%s\n", o->reference ? " (reference path)" : "", threads,
           threads == 1 ? "" : "s");
    printf("top-1       %.4f\n", r->top1);
    printf("top-5       %.4f\n", r->top5);
    printf("images      %" PRId64 "\n", r->images);
    printf("images/s    %.0f\n", r->img_s);
    printf("time        %.3f s\n", r->seconds);
}

static int print_json(const opts_t *o, const qs_graph_t *g, const qs_dataset_t *d, int threads, const qs_eval_t *r)
{
    qs_json_t j;
    qs_json_begin(&j, stdout);
    qs_json_str(&j, "model", o->model);
    qs_json_str(&j, "model_name", g->name);
    qs_json_str(&j, "data", d->source);
    qs_json_str(&j, "engine", o->reference ? "float-reference" : "float");
    qs_json_int(&j, "threads", threads);
    qs_json_int(&j, "images", r->images);
    int rc = qs_json_metric(&j, "top1", r->top1);
    if (rc == QS_OK)
        rc = qs_json_metric(&j, "top5", r->top5);
    if (rc == QS_OK)
        rc = qs_json_metric(&j, "img_s", r->img_s);
    if (rc == QS_OK)
        rc = qs_json_metric(&j, "seconds", r->seconds);
    qs_json_end(&j);
    return rc;
}

/* ---- quantized ---------------------------------------------------------------------------------- */

/* "int8 ch minmax" — the few words of a quantizer a table has room for */
static const char *brief(const qs_quantizer_t *q, bool on, char *buf, size_t n)
{
    static const char *const gran[] = {"tensor", "channel", "group"};
    static const char *const scheme[] = {"sym", "sym-narrow", "unsigned", "asym", "asym-signed"};
    if (!on) {
        snprintf(buf, n, "float");
        return buf;
    }
    char r[32];
    if (q->range.method == QS_RANGE_PERCENTILE)
        snprintf(r, sizeof r, "percentile:%g", q->range.percentile);
    else
        snprintf(r, sizeof r, "%s", (const char *[]){"minmax", "percentile", "mse", "sqnr", "kl", "aciq"}[q->range.method]);
    if (q->grid != QS_GRID_UNIFORM) {
        char g[32];
        qs_grid_name(q, g, sizeof g);
        if (qs_grid_is_block(q->grid))
            snprintf(buf, n, "%s block %lld", g, (long long)q->block);
        else
            snprintf(buf, n, "%.16s%s%.0d %s %s", g, qs_grid_takes_bits(q->grid) ? "-" : "",
                     qs_grid_takes_bits(q->grid) ? q->bits : 0, gran[q->gran.kind], r);
        return buf;
    }
    snprintf(buf, n, "%d-bit %s %s %s", q->bits, scheme[q->scheme], gran[q->gran.kind], r);
    return buf;
}

static void print_qsummary(const opts_t *o, const qs_qnet_t *q, const qs_dataset_t *d, int64_t all, int threads,
                           const qs_qeval_t *r)
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
    printf("top-1       %.4f (float %.4f, %+.2f points)\n", r->top1, r->float_top1, 100.0 * (r->top1 - r->float_top1));
    printf("top-5       %.4f\n", r->top5);
    printf("agreement   %.4f (top-1 class equal to the float model's)\n", r->agreement);
    printf("logit SQNR  %.2f dB\n", r->logit_sqnr_db);
    printf("images      %" PRId64 "\n", r->images);
    printf("images/s    %.0f\n", r->img_s);
}

static void print_qlayers(const qs_qnet_t *q, const qs_qeval_t *r)
{
    const qs_graph_t *g = q->g;
    char wb[64], ab[64];
    printf("\n%-14s %-8s %-30s %9s %-30s %9s %8s\n", "node", "op", "weights", "w-SQNR", "activations", "a-SQNR",
           "clipped");
    for (int i = 0; i < g->nnodes; i++) {
        const qs_qlayer_t *l = &q->layer[i];
        bool w = g->nodes[i].weight != NULL, a = l->point == i && l->ashare < 0;
        if (!w && !a)
            continue;
        const qs_qstats_t *as = &r->act[i];
        printf("%-14s %-8s %-30s", g->nodes[i].name, qs_op_name(g->nodes[i].op), w ? brief(&l->wquant, l->wq, wb, sizeof wb) : "");
        if (w && l->wq)
            printf(" %6.2f dB", qs_qstats_sqnr_db(&l->wstats));
        else
            printf(" %9s", "");
        printf(" %-30s", a ? brief(&l->aquant, l->aq, ab, sizeof ab) : "");
        if (a && l->aq && as->count)
            printf(" %6.2f dB %7.3f%%", qs_qstats_sqnr_db(as), 100.0 * qs_qstats_clipped_fraction(as));
        printf("\n");
    }
}

static int print_qjson(const opts_t *o, const qs_qnet_t *q, const qs_dataset_t *d, int threads, const qs_qeval_t *r)
{
    const qs_graph_t *g = q->g;
    char cfg[4096], buf[512];
    qs_json_t j;
    qs_json_begin(&j, stdout);
    qs_json_str(&j, "model", o->model);
    qs_json_str(&j, "model_name", g->name);
    qs_json_str(&j, "data", d->source);
    qs_json_str(&j, "engine", "fake");
    qs_json_int(&j, "threads", threads);
    qs_json_int(&j, "images", r->images);
    qs_json_str(&j, "quantization", qs_qconfig_str(&q->cfg, cfg, sizeof cfg));
    qs_json_str(&j, "calibration_data", q->calib.source);
    qs_json_int(&j, "calibration_images", q->calib.images);
    qs_json_int(&j, "folded_batchnorms", q->folded);
    static const char *const names[] = {"top1", "top5", "float_top1", "agreement", "logit_sqnr_db", "img_s", "seconds"};
    const double vals[] = {r->top1, r->top5, r->float_top1, r->agreement, r->logit_sqnr_db, r->img_s, r->seconds};
    int rc = QS_OK;
    for (size_t k = 0; k < sizeof vals / sizeof *vals && rc == QS_OK; k++)
        rc = qs_json_metric(&j, names[k], vals[k]);
    FILE *out = j.out;
    fputs(", \"layers\": [", out);
    int n = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const qs_qlayer_t *l = &q->layer[i];
        bool w = g->nodes[i].weight != NULL, a = l->point == i && l->ashare < 0;
        if (!w && !a)
            continue;
        qs_json_t e;
        fputs(n++ ? ", " : "", out);
        qs_json_begin(&e, out);
        qs_json_str(&e, "name", g->nodes[i].name);
        qs_json_str(&e, "op", qs_op_name(g->nodes[i].op));
        if (w) {
            qs_json_str(&e, "weights", l->wq ? qs_quantizer_str(&l->wquant, buf, sizeof buf) : "float");
            if (l->wq) {
                qs_json_num(&e, "weight_sqnr_db", qs_qstats_sqnr_db(&l->wstats));
                qs_json_num(&e, "weight_clipped_fraction", qs_qstats_clipped_fraction(&l->wstats));
            }
            qs_json_bool(&e, "bias_quantized", l->bcodes != NULL);
        }
        if (a) {
            qs_json_str(&e, "acts", l->aq ? qs_quantizer_str(&l->aquant, buf, sizeof buf) : "float");
            if (l->aq && r->act[i].count) {
                qs_json_num(&e, "act_sqnr_db", qs_qstats_sqnr_db(&r->act[i]));
                qs_json_num(&e, "act_clipped_fraction", qs_qstats_clipped_fraction(&r->act[i]));
                if (l->ap && l->ap->count == 1) {
                    qs_json_num(&e, "act_scale", l->ap->scale[0]);
                    qs_json_int(&e, "act_zero_point", l->ap->zero_point[0]);
                }
            }
        }
        fputs("}", out);
    }
    fputc(']', out);
    j.count++;
    qs_json_end(&j);
    return rc;
}

/* ---- the integer engine ------------------------------------------------------------------------------ */

static void print_isummary(const opts_t *o, const qs_qnet_t *q, const qs_dataset_t *d, int64_t all, int threads,
                           const qs_int_eval_t *r)
{
    const qs_graph_t *g = q->g;
    char cfg[4096], a[256], rq[256];
    printf("model       %s (%s)\n", g->name[0] ? g->name : "unnamed", o->model);
    if (d->n < all)
        printf("data        %s (the first %" PRId64 " of %" PRId64 " images)\n", d->source, d->n, all);
    else
        printf("data        %s\n", d->source);
    printf("engine      int, %d thread%s; %d batchnorm%s folded\n", threads, threads == 1 ? "" : "s", q->folded,
           q->folded == 1 ? "" : "s");
    qs_qconfig_str(&q->cfg, cfg, sizeof cfg);
    for (char *line = strtok(cfg, "\n"); line; line = strtok(NULL, "\n"))
        printf("  %s\n", line);
    printf("  acc %s\n  requant %s\n", qs_acc_str(&o->ic.acc, a, sizeof a), qs_requant_str(&o->ic.rq, rq, sizeof rq));
    for (int k = 0; k < o->ic.noverrides; k++)
        printf("  --layer %s:%s\n", o->ic.ov[k].layer, o->ic.ov[k].spec);
    printf("calibration %s, %" PRId64 " images (seed %" PRIu64 ")\n", q->calib.source, q->calib.images, q->calib.seed);
    printf("top-1       %.4f (float %.4f, fake-quant %.4f)\n", r->top1, r->float_top1, r->fake_top1);
    printf("top-5       %.4f\n", r->top5);
    printf("agreement   %.4f with float, %.4f with fake-quant (top-1 class)\n", r->agreement, r->fake_agreement);
    printf("logit SQNR  %.2f dB against float, %.2f dB against fake-quant\n", r->logit_sqnr_db, r->fake_logit_sqnr_db);
    printf("overflow    %" PRId64 " of %" PRId64 " accumulator values (%.4f%%)\n", r->overflowed, r->outputs,
           r->outputs ? 100.0 * (double)r->overflowed / (double)r->outputs : 0.0);
    printf("images      %" PRId64 "\n", r->images);
    printf("images/s    %.0f\n", r->img_s);
}

/* "int16 sat", "int32 wrap, 2 in int16 sat", "e5m10 +32", "exact expand": an accumulator in a table cell */
static const char *acc_brief(const qs_acc_t *a, char *buf, size_t n)
{
    static const char *const ov[] = {"wrap", "sat", "exact"};
    const char *form = a->zp_form == QS_ZP_EXPAND ? " expand" : "";
    if (a->kind == QS_ACC_FLOAT) {
        char p[16] = "";
        if (a->promote)
            snprintf(p, sizeof p, " +%d", a->promote);
        snprintf(buf, n, "e%dm%d%s%s", a->exp_bits, a->man_bits, p, form);
    } else if (a->overflow == QS_ACC_EXACT) {
        snprintf(buf, n, "exact%s", form);
    } else if (a->chunk > 0) {
        snprintf(buf, n, "int%d %s, %d in int%d %s%s", a->bits, ov[a->overflow], a->chunk, a->chunk_bits,
                 ov[a->chunk_overflow], form);
    } else {
        snprintf(buf, n, "int%d %s%s", a->bits, ov[a->overflow], form);
    }
    return buf;
}

static void print_ilayers(const qs_qnet_t *q, const qs_int_eval_t *r)
{
    const qs_graph_t *g = q->g;
    printf("\n%-14s %-7s %5s %-26s %9s %10s %12s %13s %6s %4s %4s %5s %9s\n", "node", "op", "K", "accumulator",
           "fast", "overflowed", "events", "max|sum|", "needed", "dt", "a2q", "a2q+", "mismatch");
    for (int i = 0; i < g->nnodes; i++) {
        const qs_int_layer_t *l = &r->layer[i];
        bool dot = g->nodes[i].op == QS_OP_CONV2D || g->nodes[i].op == QS_OP_LINEAR;
        int p = q->layer[i].point;
        bool pt = p == i && q->layer[i].ashare < 0 && r->compared[i] > 0;
        if (!dot && !pt)
            continue;
        int at = dot && p >= 0 ? p : i;
        char a[256], mm[32] = "";
        if (r->compared[at])
            snprintf(mm, sizeof mm, "%.4f%%", 100.0 * (double)r->mismatch[at] / (double)r->compared[at]);
        if (!dot) {
            printf("%-14s %-7s %5s %-26s %9s %10s %12s %13s %6s %4s %4s %5s %9s\n", g->nodes[i].name,
                   qs_op_name(g->nodes[i].op), "", "", "", "", "", "", "", "", "", "", mm);
            continue;
        }
        printf("%-14s %-7s %5" PRId64 " %-26s %8.1f%% %9.4f%% %12" PRId64 " %13" PRId64 " %6d %4d %4d %5d %9s\n",
               g->nodes[i].name, qs_op_name(g->nodes[i].op), l->k, acc_brief(&l->acc, a, sizeof a),
               l->outputs ? 100.0 * (double)l->fast / (double)l->outputs : 0.0,
               l->outputs ? 100.0 * (double)l->overflowed / (double)l->outputs : 0.0, l->events, l->max_abs,
               l->needed_bits, l->width_datatype, l->width_a2q, l->width_a2qplus, mm);
    }
    printf("\nfast: outputs a bound proved exact; max|sum|: largest final accumulator; needed: its width;\n"
           "dt, a2q, a2q+: guaranteed widths; mismatch: output codes unlike the fake-quant engine's.\n");
}

static int print_ijson(const opts_t *o, const qs_qnet_t *q, const qs_dataset_t *d, int threads, const qs_int_eval_t *r)
{
    const qs_graph_t *g = q->g;
    char cfg[4096], buf[512];
    qs_json_t j;
    qs_json_begin(&j, stdout);
    qs_json_str(&j, "model", o->model);
    qs_json_str(&j, "model_name", g->name);
    qs_json_str(&j, "data", d->source);
    qs_json_str(&j, "engine", "int");
    qs_json_int(&j, "threads", threads);
    qs_json_int(&j, "images", r->images);
    qs_json_str(&j, "quantization", qs_qconfig_str(&q->cfg, cfg, sizeof cfg));
    qs_json_str(&j, "acc", qs_acc_str(&o->ic.acc, buf, sizeof buf));
    qs_json_str(&j, "requant", qs_requant_str(&o->ic.rq, buf, sizeof buf));
    int64_t mis = 0, cmp = 0, ev = 0;
    for (int i = 0; i < g->nnodes; i++)
        mis += r->mismatch[i], cmp += r->compared[i], ev += r->layer[i].events;
    static const char *const names[] = {"top1", "top5", "float_top1", "fake_top1", "agreement", "fake_agreement",
                                        "logit_sqnr_db", "fake_logit_sqnr_db", "overflow_fraction", "overflow_events",
                                        "code_mismatch_fraction", "img_s", "seconds"};
    const double vals[] = {r->top1, r->top5, r->float_top1, r->fake_top1, r->agreement, r->fake_agreement,
                           r->logit_sqnr_db, r->fake_logit_sqnr_db,
                           r->outputs ? (double)r->overflowed / (double)r->outputs : 0.0, (double)ev,
                           cmp ? (double)mis / (double)cmp : 0.0, r->img_s, r->seconds};
    int rc = QS_OK;
    for (size_t k = 0; k < sizeof vals / sizeof *vals && rc == QS_OK; k++)
        rc = qs_json_metric(&j, names[k], vals[k]);
    FILE *out = j.out;
    fputs(", \"layers\": [", out);
    int n = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const qs_int_layer_t *l = &r->layer[i];
        if (g->nodes[i].op != QS_OP_CONV2D && g->nodes[i].op != QS_OP_LINEAR)
            continue;
        qs_json_t e;
        fputs(n++ ? ", " : "", out);
        qs_json_begin(&e, out);
        qs_json_str(&e, "name", g->nodes[i].name);
        qs_json_str(&e, "acc", qs_acc_str(&l->acc, buf, sizeof buf));
        qs_json_int(&e, "k", l->k);
        qs_json_int(&e, "outputs", l->outputs);
        qs_json_int(&e, "fast", l->fast);
        qs_json_int(&e, "overflowed", l->overflowed);
        qs_json_int(&e, "overflow_events", l->events);
        qs_json_int(&e, "max_abs", l->max_abs);
        qs_json_int(&e, "max_partial", l->max_partial);
        qs_json_int(&e, "acc_needed_bits", l->needed_bits);
        qs_json_int(&e, "acc_width_datatype", l->width_datatype);
        qs_json_int(&e, "acc_width_a2q", l->width_a2q);
        qs_json_int(&e, "acc_width_a2qplus", l->width_a2qplus);
        int p = q->layer[i].point;
        if (p >= 0 && r->compared[p]) {
            qs_json_int(&e, "codes_compared", r->compared[p]);
            qs_json_int(&e, "code_mismatch", r->mismatch[p]);
            qs_json_int(&e, "code_mismatch_far", r->mismatch_far[p]);
        }
        fputs("}", out);
    }
    fputc(']', out);
    j.count++;
    qs_json_end(&j);
    return rc;
}

static int run_quantized(const opts_t *o, qs_pool_t *pool, const qs_dataset_t *d, const qs_dataset_t *view)
{
    qs_qnet_t *q = NULL;
    qs_cli_qopts_t qo = o->q;
    qo.reference = o->reference;
    if (qs_cli_load_qnet("eval", o->model, &qo, pool, &q) < 0)
        return -1;
    qs_int_config_t ic = o->ic;
    if (o->arithmetic) { /* the target's accumulators and requantizer */
        qs_hw_target_t *t = NULL;
        int rc = qs_hw_target_find(o->arithmetic, &t);
        qs_hw_cost_opts_t co;
        qs_hw_cost_opts_default(&co);
        co.unit = o->unit;
        if (rc >= 0 && o->unit && !qs_hw_unit_find(t, o->unit))
            rc = qs_error(QS_ERR_INVALID, "--unit %s: %s has no such unit (see 'quasar targets %s')", o->unit,
                          t->name, o->arithmetic);
        if (rc >= 0)
            rc = qs_int_config_for_target(q, t, &co, &ic);
        if (rc < 0)
            qs_error_context("--arithmetic %s: ", o->arithmetic);
        qs_hw_target_free(t);
        if (rc < 0) {
            qs_qnet_free(q);
            return -1;
        }
    }
    bool tty = isatty(STDERR_FILENO);
    qs_progress_cb_t cb = {tty ? on_progress : NULL, NULL, 0};
    qs_engine_opts_t eo = {pool, o->reference};
    if (o->engine_int) {
        qs_int_eval_t ir;
        opts_t oc = *o; /* the printers show the configuration that ran */
        oc.ic = ic;
        o = &oc;
        int rc = qs_int_eval(q, &o->ic, view, &eo, o->batch, &cb, &ir);
        if (tty)
            fputs("\r\033[K", stderr);
        if (rc >= 0) {
            int threads = qs_pool_threads(pool);
            if (o->json) {
                rc = print_ijson(o, q, view, threads, &ir);
            } else {
                print_isummary(o, q, view, d->n, threads, &ir);
                print_ilayers(q, &ir);
            }
        }
        qs_int_eval_free(&ir);
        qs_qnet_free(q);
        return rc < 0 ? -1 : 0;
    }
    qs_qeval_t r;
    int rc = qs_qeval(q, view, &eo, NULL, o->batch, &cb, &r);
    if (tty)
        fputs("\r\033[K", stderr);
    if (rc >= 0) {
        int threads = qs_pool_threads(pool);
        if (o->json) {
            rc = print_qjson(o, q, view, threads, &r);
        } else {
            print_qsummary(o, q, view, d->n, threads, &r);
            if (o->layers)
                print_qlayers(q, &r);
        }
    }
    qs_qeval_free(&r);
    qs_qnet_free(q);
    return rc < 0 ? -1 : 0;
}

static int run(const opts_t *o)
{
    qs_graph_t *g = NULL;
    qs_dataset_t *d = NULL;
    qs_pool_t *pool = NULL;
    int ex, quantized = qs_model_is_quantized(o->model);
    if (quantized < 0)
        goto fail;
    if (o->layers && !quantized && !o->q.any && !o->engine_int)
        return qs_cli_error(QS_EXIT_USAGE, "eval: --layers is for a quantized evaluation (give a quantized model or "
                            "quantization options)");
    if (qs_dataset_open(o->data, &d) < 0)
        goto fail;
    if (!(pool = qs_pool_create((int)o->threads)))
        goto fail;
    /* --limit: the first N images, seen through a copy of the header */
    qs_dataset_t view = *d;
    if (o->limit > 0 && o->limit < view.n)
        view.n = o->limit;
    if (quantized || o->q.any || o->engine_int) {
        if (run_quantized(o, pool, d, &view) < 0)
            goto fail;
        qs_pool_free(pool);
        qs_dataset_free(d);
        return QS_EXIT_OK;
    }
    if (qs_model_load(o->model, &g) < 0)
        goto fail;
    bool tty = isatty(STDERR_FILENO);
    qs_progress_cb_t cb = {tty ? on_progress : NULL, NULL, 0};
    qs_engine_opts_t eo = {pool, o->reference};
    qs_eval_t r;
    int rc = qs_eval(g, &view, &eo, o->batch, &cb, &r);
    if (tty)
        fputs("\r\033[K", stderr);
    if (rc < 0)
        goto fail;
    int threads = qs_pool_threads(pool);
    if (o->json) {
        if (print_json(o, g, &view, threads, &r) < 0)
            goto fail;
    } else {
        print_summary(o, g, &view, d->n, threads, &r);
    }
    qs_pool_free(pool);
    qs_dataset_free(d);
    qs_graph_free(g);
    return QS_EXIT_OK;
fail:
    ex = qs_cli_fail(QS_EXIT_RUNTIME);
    qs_pool_free(pool);
    qs_dataset_free(d);
    qs_graph_free(g);
    return ex;
}

int qs_cmd_eval(int argc, char **argv)
{
    opts_t o;
    memset(&o, 0, sizeof o);
    qs_int_config_default(&o.ic);
    int ex = parse_args(argc, argv, &o);
    if (ex == QS_EXIT_OK)
        ex = run(&o);
    return ex;
}
