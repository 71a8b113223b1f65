/* cli/cmd_quantize_model.c — `quasar quantize-model MODEL -o QMODEL`: folds
 * BatchNorm, quantizes the weights, calibrates activations and biases (the
 * options of cli/qopts.c) and saves the result as a quantized-model file
 * (docs/model-format.md, format version 2), then prints a short summary or
 * one JSON object. The work is the library's (qs_cli_quantize_net,
 * qs_qnet_save); this file parses, checks the output name and prints. */
#include "config.h"

#include "cli/cli.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void qs_help_quantize_model(FILE *out)
{
    fprintf(out,
            "Usage: quasar quantize-model MODEL.h5 -o QMODEL.h5 [--threads N] [--layers] [--json]\n"
            "                             [--preset P] [--weights SPEC] [--acts SPEC] [--layer ...]\n"
            "                             [--calib-data SPEC] [--calib-images N] [--calib-seed S]\n"
            "\n"
            "Quantizes a float model: folds its BatchNorms, quantizes the weights,\n"
            "calibrates the activation ranges on a seeded subset of the training split and\n"
            "rounds the biases to int32 at s_w*s_x, then saves a quantized model: the\n"
            "folded float graph plus every calibrated quantizer (spec, scales, zero points,\n"
            "integer codes, weight error statistics; docs/model-format.md, \"Quantized\n"
            "models\"). 'quasar eval QMODEL.h5' runs it with exactly these parameters, and\n"
            "any HDF5 reader (h5dump, h5py) can read them.\n"
            "\n"
            "  -o, --output QMODEL.h5   the quantized model (required; written aside and renamed\n"
            "                           when complete, so a failed run leaves no file behind;\n"
            "                           it may not be MODEL.h5 itself)\n"
            "  --threads N              worker threads (default: $QUASAR_THREADS or all cores)\n"
            "  --layers                 a table per layer: weight and activation quantizers,\n"
            "                           weight SQNR and clipped fraction, activation scale\n"
            "  --json                   print one JSON object: model, output, quantization,\n"
            "                           calibration_*, folded_batchnorms, layers_quantized,\n"
            "                           biases_quantized, points_calibrated, weight_sqnr_db_min,\n"
            "                           file_bytes, seconds, and layers (per-layer figures)\n"
            "\n"
            "%s"
            "\n"
            "Fashion-MNIST is read from /usr/share/datasets/fashion-mnist (Debian's\n"
            "dataset-fashion-mnist) or from $QUASAR_FASHION_MNIST.\n"
            "Exit status: 0 success, 1 runtime error (bad model or data), 2 usage error.\n",
            qs_cli_qopts_help);
}

typedef struct {
    const char *model, *out;
    int64_t threads;
    bool json, layers;
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
        if (strcmp(a, "--layers") == 0) {
            o->layers = true;
            continue;
        }
        if ((m = qs_cli_qopts_parse(argc, argv, &i, &o->q)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "-o", &v)) != 0 || (m = qs_cli_opt(argc, argv, &i, "--output", &v)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            if (o->out)
                return qs_cli_error(QS_EXIT_USAGE, "-o/--output given twice");
            o->out = v;
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "--threads", &v)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            if (qs_kv_int("--threads", NULL, v, 1, 1024, &o->threads) < 0)
                return qs_cli_fail(QS_EXIT_USAGE);
            continue;
        }
        if (a[0] == '-' && a[1] != '\0')
            return qs_cli_error(QS_EXIT_USAGE, "quantize-model: unknown option '%s' (see 'quasar help quantize-model')",
                                a);
        if (o->model)
            return qs_cli_error(QS_EXIT_USAGE,
                                "quantize-model: unexpected argument '%s' (see 'quasar help quantize-model')", a);
        o->model = a;
    }
    if (!o->model)
        return qs_cli_error(QS_EXIT_USAGE, "quantize-model: expected MODEL.h5 (see 'quasar help quantize-model')");
    if (!o->out || !*o->out)
        return qs_cli_error(QS_EXIT_USAGE, "quantize-model: expected -o QMODEL.h5 (see 'quasar help quantize-model')");
    /* the quantized model replaces its output atomically: never the float model it comes from */
    if (qs_cli_same_file(o->model, o->out))
        return qs_cli_error(QS_EXIT_USAGE, "quantize-model: the output '%s' is the input model; write the quantized "
                            "model to another file (the float model stays as it is)", o->out);
    /* a typo in a spec is a usage error, found before any work; layer names
     * are checked against the model later */
    qs_qconfig_t c;
    if (qs_cli_qopts_config(&o->q, &c) < 0)
        return qs_cli_fail(QS_EXIT_USAGE);
    return QS_EXIT_OK;
}

/* "8-bit sym channel minmax" — the words of a quantizer a table has room for */
static const char *brief(const qs_quantizer_t *q, bool on, char *buf, size_t n)
{
    static const char *const gran[] = {"tensor", "channel", "group"};
    static const char *const scheme[] = {"sym", "sym-narrow", "unsigned", "asym", "asym-signed"};
    static const char *const range[] = {"minmax", "percentile", "mse", "sqnr", "kl", "aciq"};
    if (!on)
        snprintf(buf, n, "float");
    else if (q->range.method == QS_RANGE_PERCENTILE)
        snprintf(buf, n, "%d-bit %s %s percentile:%g", q->bits, scheme[q->scheme], gran[q->gran.kind],
                 q->range.percentile);
    else
        snprintf(buf, n, "%d-bit %s %s %s", q->bits, scheme[q->scheme], gran[q->gran.kind], range[q->range.method]);
    return buf;
}

static bool has_weights(const qs_node_t *n) { return n->op == QS_OP_CONV2D || n->op == QS_OP_LINEAR; }

/* A point that carries its own calibrated parameters (not a copy of another's). */
static bool own_point(const qs_qlayer_t *l, int i) { return l->point == i && l->ashare < 0; }

typedef struct {
    int layers, wq, bq, points;
    int worst;        /* the layer with the lowest weight SQNR, or -1 */
    double worst_db;
    double seconds, calib_s;
    int64_t bytes;
} summary_t;

static void summarize(const qs_qnet_t *q, summary_t *s)
{
    const qs_graph_t *g = q->g;
    s->worst = -1;
    s->worst_db = INFINITY;
    for (int i = 0; i < g->nnodes; i++) {
        const qs_qlayer_t *l = &q->layer[i];
        s->layers += has_weights(&g->nodes[i]);
        s->bq += l->bcodes != NULL;
        s->points += own_point(l, i) && l->aq && l->ap;
        if (!l->wq)
            continue;
        s->wq++;
        double db = qs_qstats_sqnr_db(&l->wstats);
        if (s->worst < 0 || db < s->worst_db) {
            s->worst = i;
            s->worst_db = db;
        }
    }
}

static void print_summary(const opts_t *o, const qs_qnet_t *q, int threads, const summary_t *s)
{
    const qs_graph_t *g = q->g;
    char cfg[4096];
    printf("model       %s (%s)\n", g->name[0] ? g->name : "unnamed", o->model);
    printf("folded      %d batchnorm%s\n", q->folded, q->folded == 1 ? "" : "s");
    printf("quantizers\n");
    qs_qconfig_str(&q->cfg, cfg, sizeof cfg);
    for (char *line = strtok(cfg, "\n"); line; line = strtok(NULL, "\n"))
        printf("  %s\n", line);
    printf("calibration %s, %" PRId64 " images in batches of %" PRId64 " (seed %" PRIu64 "), %d thread%s\n",
           q->calib.source, q->calib.images, q->calib.batch, q->calib.seed, threads, threads == 1 ? "" : "s");
    printf("weights     %d of %d conv/linear layers quantized", s->wq, s->layers);
    if (s->worst >= 0)
        printf("; lowest SQNR %.2f dB (%s)", s->worst_db, g->nodes[s->worst].name);
    printf("\nbiases      %d quantized to integers at s_w*s_x\n", s->bq);
    printf("activations %d quantization point%s calibrated\n", s->points, s->points == 1 ? "" : "s");
    printf("output      %s (%" PRId64 " bytes)\n", o->out, s->bytes);
    printf("time        %.3f s (calibration %.3f s)\n", s->seconds, s->calib_s);
}

static void print_layers(const qs_qnet_t *q)
{
    const qs_graph_t *g = q->g;
    char wb[64], ab[64];
    printf("\n%-14s %-8s %-28s %9s %8s %-28s %11s %5s\n", "node", "op", "weights", "w-SQNR", "clipped", "activations",
           "scale", "zp");
    for (int i = 0; i < g->nnodes; i++) {
        const qs_qlayer_t *l = &q->layer[i];
        bool w = has_weights(&g->nodes[i]), a = own_point(l, i);
        if (!w && !a)
            continue;
        printf("%-14s %-8s %-28s", g->nodes[i].name, qs_op_name(g->nodes[i].op), w ? brief(&l->wquant, l->wq, wb, sizeof wb) : "");
        if (w && l->wq)
            printf(" %6.2f dB %7.3f%%", qs_qstats_sqnr_db(&l->wstats), 100.0 * qs_qstats_clipped_fraction(&l->wstats));
        else
            printf(" %9s %8s", "", "");
        printf(" %-28s", a ? brief(&l->aquant, l->aq, ab, sizeof ab) : "");
        if (a && l->aq && l->ap && l->ap->count == 1)
            printf(" %11.5g %5" PRId32, (double)l->ap->scale[0], l->ap->zero_point[0]);
        else if (a && l->aq && l->ap)
            printf(" %11s", "per channel");
        printf("\n");
    }
}

static int print_json(const opts_t *o, const qs_qnet_t *q, int threads, const summary_t *s)
{
    const qs_graph_t *g = q->g;
    char cfg[4096], buf[512];
    qs_json_t j;
    qs_json_begin(&j, stdout);
    qs_json_str(&j, "model", o->model);
    qs_json_str(&j, "model_name", g->name);
    qs_json_str(&j, "output", o->out);
    qs_json_int(&j, "threads", threads);
    qs_json_str(&j, "quantization", qs_qconfig_str(&q->cfg, cfg, sizeof cfg));
    qs_json_str(&j, "calibration_data", q->calib.source);
    qs_json_int(&j, "calibration_images", q->calib.images);
    qs_json_int(&j, "calibration_batch", q->calib.batch);
    qs_json_int(&j, "calibration_seed", (int64_t)q->calib.seed); /* the options allow 0 .. INT64_MAX */
    qs_json_int(&j, "folded_batchnorms", q->folded);
    qs_json_int(&j, "layers_quantized", s->wq);
    qs_json_int(&j, "biases_quantized", s->bq);
    qs_json_int(&j, "points_calibrated", s->points);
    qs_json_num(&j, "weight_sqnr_db_min", s->worst >= 0 ? s->worst_db : NAN);
    qs_json_int(&j, "file_bytes", s->bytes);
    int rc = qs_json_metric(&j, "seconds", s->seconds);
    FILE *out = j.out;
    fputs(", \"layers\": [", out);
    int n = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const qs_qlayer_t *l = &q->layer[i];
        bool w = has_weights(&g->nodes[i]), a = own_point(l, i);
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
            if (l->aq && l->ap && l->ap->count == 1) {
                qs_json_num(&e, "act_scale", l->ap->scale[0]);
                qs_json_int(&e, "act_zero_point", l->ap->zero_point[0]);
            }
        }
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
    qs_pool_t *pool = NULL;
    summary_t s;
    memset(&s, 0, sizeof s);
    double t0 = qs_now_s();
    int quantized = qs_model_is_quantized(o->model);
    if (quantized < 0)
        goto fail;
    if (quantized) {
        qs_error(QS_ERR_INVALID, "quantize-model: '%s' is already a quantized model; quantize its float model instead",
                 o->model);
        goto fail;
    }
    if (qs_model_load(o->model, &g) < 0 || !(pool = qs_pool_create((int)o->threads)))
        goto fail;
    double t1 = qs_now_s();
    if (qs_cli_quantize_net(g, &o->q, pool, &q) < 0)
        goto fail;
    s.calib_s = qs_now_s() - t1;
    if (qs_qnet_save(q, o->out) < 0)
        goto fail;
    s.seconds = qs_now_s() - t0;
    struct stat st;
    s.bytes = stat(o->out, &st) == 0 ? (int64_t)st.st_size : -1;
    summarize(q, &s);
    int threads = qs_pool_threads(pool);
    if (o->json) {
        if (print_json(o, q, threads, &s) < 0)
            goto fail;
    } else {
        print_summary(o, q, threads, &s);
        if (o->layers)
            print_layers(q);
    }
    qs_qnet_free(q);
    qs_graph_free(g);
    qs_pool_free(pool);
    return QS_EXIT_OK;
fail:;
    int ex = qs_cli_fail(QS_EXIT_RUNTIME);
    qs_qnet_free(q);
    qs_graph_free(g);
    qs_pool_free(pool);
    return ex;
}

int qs_cmd_quantize_model(int argc, char **argv)
{
    opts_t o;
    memset(&o, 0, sizeof o);
    int ex = parse_args(argc, argv, &o);
    if (ex == QS_EXIT_OK)
        ex = run(&o);
    return ex;
}
