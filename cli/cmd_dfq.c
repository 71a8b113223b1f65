/* cli/cmd_dfq.c — `quasar dfq MODEL -o OUT`: the data-free quantization
 * transforms (sim/dfq.h: cross-layer equalization, high-bias absorption,
 * bias correction) on a float model, saved as a new float model (BN folded),
 * with a summary of what each step did or one JSON object. The work is
 * qs_dfq_apply's; this file parses, checks the output name and prints. */
#include "config.h"

#include "cli/cli.h"
#include "sim/dfq.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void qs_help_dfq(FILE *out)
{
    fprintf(out,
            "Usage: quasar dfq MODEL.h5 -o OUT.h5 [--method M] [--relu6 replace|skip]\n"
            "                  [--bc analytic|empirical] [--preset P] [--weights SPEC]\n"
            "                  [--layer NAME:weights=SPEC] [--calib-data SPEC]\n"
            "                  [--calib-images N] [--calib-seed S] [--threads N] [--json]\n"
            "\n"
            "Applies the data-free quantization transforms of Nagel et al. (ICCV 2019) to a\n"
            "float model and saves the result as a float model: BatchNorm folded (its\n"
            "statistics used by the transforms), then\n"
            "  cle     cross-layer equalization: for every pair of conv/linear layers with\n"
            "          only relu/relu6/pooling/flatten between (no branch, no residual),\n"
            "          output channel i of the first is divided by s_i and input channel i\n"
            "          of the second multiplied by it, s_i = sqrt(r1_i / r2_i) from the\n"
            "          channels' weight ranges, swept over all pairs until the scales\n"
            "          settle; the float network computes the same (with ReLU)\n"
            "  absorb  high-bias absorption: c_i = max(0, beta_i - 3 gamma_i) moves from\n"
            "          the first layer's bias into the second's, where a ReLU is between\n"
            "          and the folded BatchNorm gave beta, gamma (exact where every\n"
            "          pre-activation stays above c_i, away from the second layer's padding)\n"
            "  bc      bias correction: each layer's bias loses E[W_q x - W x], the mean\n"
            "          error that quantizing its weights (--weights) adds\n"
            "Quantize the result with the same weights spec (quasar quantize-model, eval).\n"
            "\n"
            "  -o, --output OUT.h5      the transformed float model (required; written aside\n"
            "                           and renamed when complete; not MODEL.h5 itself)\n"
            "  --method M               none, cle, cle+absorb (default), cle+absorb+bc, bc,\n"
            "                           or another '+'-joined set of cle, absorb and bc\n"
            "  --relu6 replace|skip     a ReLU6 between two layers: replace it by a ReLU, as\n"
            "                           the paper does (default: otherwise a MobileNet has\n"
            "                           nothing to equalize; activations above 6 are then no\n"
            "                           longer clipped), or leave such pairs alone\n"
            "  --bc analytic|empirical  where bias correction takes E[x]: from the BatchNorm\n"
            "                           statistics before each layer through its activation\n"
            "                           (default; data-free; a layer that reads the image or\n"
            "                           an add is left alone), or the float model's mean\n"
            "                           inputs over calibration images\n"
            "  --preset P, --weights SPEC, --layer NAME:weights=SPEC\n"
            "                           with bc: the weights quantizer whose error is\n"
            "                           corrected, as quantize-model takes it (default: the\n"
            "                           w8a8 preset's, symmetric per output channel, minmax)\n"
            "  --calib-data SPEC        --bc empirical: fmnist:train (default) or FILE.h5\n"
            "  --calib-images N         ... a seeded subset of N images (default 1000)\n"
            "  --calib-seed S           ... the subset's seed (default 1)\n"
            "  --threads N              worker threads (default: $QUASAR_THREADS or all\n"
            "                           cores); the result does not depend on them\n"
            "  --json                   print one JSON object: model, output, method, relu6,\n"
            "                           bc, folded_batchnorms, pairs, sweeps, converged,\n"
            "                           relu6_replaced, absorbed_channels, corrected_layers,\n"
            "                           bc_images, skipped, file_bytes, seconds, and the\n"
            "                           lists pair_list, corrected and left_alone\n"
            "\n"
            "Fashion-MNIST is read from /usr/share/datasets/fashion-mnist (Debian's\n"
            "dataset-fashion-mnist) or from $QUASAR_FASHION_MNIST.\n"
            "Exit status: 0 success, 1 runtime error (bad model or data, nothing to\n"
            "transform), 2 usage error.\n");
}

typedef struct {
    const char *model, *out, *method, *relu6, *bc;
    int64_t threads;
    bool json;
    qs_cli_qopts_t q;
    qs_dfq_opts_t d;
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
            if (m < 0)
                return QS_EXIT_USAGE;
            continue;
        }
        static const struct {
            const char *flag;
            size_t at;
        } words[] = {
            {"-o", offsetof(opts_t, out)},          {"--output", offsetof(opts_t, out)},
            {"--method", offsetof(opts_t, method)}, {"--relu6", offsetof(opts_t, relu6)},
            {"--bc", offsetof(opts_t, bc)},
        };
        bool matched = false;
        for (size_t k = 0; k < sizeof words / sizeof *words && !matched; k++) {
            if ((m = qs_cli_opt(argc, argv, &i, words[k].flag, &v)) == 0)
                continue;
            if (m < 0)
                return QS_EXIT_USAGE;
            const char **slot = (const char **)(void *)((char *)o + words[k].at);
            if (*slot)
                return qs_cli_error(QS_EXIT_USAGE, "dfq: %s given twice", words[k].flag);
            *slot = v;
            matched = true;
        }
        if (matched)
            continue;
        if ((m = qs_cli_opt(argc, argv, &i, "--threads", &v)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            if (qs_kv_int("--threads", NULL, v, 1, 1024, &o->threads) < 0)
                return qs_cli_fail(QS_EXIT_USAGE);
            continue;
        }
        if (a[0] == '-' && a[1] != '\0')
            return qs_cli_error(QS_EXIT_USAGE, "dfq: unknown option '%s' (see 'quasar help dfq')", a);
        if (o->model)
            return qs_cli_error(QS_EXIT_USAGE, "dfq: unexpected argument '%s' (see 'quasar help dfq')", a);
        o->model = a;
    }
    if (!o->model)
        return qs_cli_error(QS_EXIT_USAGE, "dfq: expected MODEL.h5 (see 'quasar help dfq')");
    if (!o->out || !*o->out)
        return qs_cli_error(QS_EXIT_USAGE, "dfq: expected -o OUT.h5 (see 'quasar help dfq')");
    if (qs_cli_same_file(o->model, o->out))
        return qs_cli_error(QS_EXIT_USAGE, "dfq: the output '%s' is the input model; write the transformed model to "
                            "another file (the model stays as it is)", o->out);

    qs_dfq_opts_default(&o->d);
    if (o->method && qs_dfq_method_parse(o->method, "dfq: --method", &o->d.steps) < 0)
        return qs_cli_fail(QS_EXIT_USAGE);
    if (o->relu6 && qs_dfq_relu6_parse(o->relu6, "dfq: --relu6", &o->d.relu6) < 0)
        return qs_cli_fail(QS_EXIT_USAGE);
    if (o->bc && qs_dfq_bc_parse(o->bc, "dfq: --bc", &o->d.bc) < 0)
        return qs_cli_fail(QS_EXIT_USAGE);
    bool bc = o->d.steps & QS_DFQ_BC, empirical = bc && o->d.bc == QS_DFQ_BC_EMPIRICAL;
    char name[64];
    qs_dfq_method_str(o->d.steps, name, sizeof name);
    if (o->bc && !bc)
        return qs_cli_error(QS_EXIT_USAGE, "dfq: --bc %s is for bias correction, which --method %s does not do "
                            "(add +bc)", o->bc, name);
    if (o->relu6 && !(o->d.steps & (QS_DFQ_CLE | QS_DFQ_ABSORB)))
        return qs_cli_error(QS_EXIT_USAGE, "dfq: --relu6 is for equalization and absorption, which --method %s does "
                            "not do", name);
    if (o->q.spec[QS_QT_ACTS] || o->q.spec[QS_QT_BIAS])
        return qs_cli_error(QS_EXIT_USAGE, "dfq: --%s has no effect here: bias correction compensates the weights' "
                            "quantization error only (give it to quantize-model or eval)",
                            o->q.spec[QS_QT_ACTS] ? "acts" : "bias");
    if (!bc && (o->q.preset || o->q.spec[QS_QT_WEIGHTS] || o->q.nlayers))
        return qs_cli_error(QS_EXIT_USAGE, "dfq: --preset, --weights and --layer choose the weights quantizer of "
                            "bias correction, which --method %s does not do (add +bc)", name);
    if (!empirical && (o->q.calib_data || o->q.calib_images || o->q.calib_seed_set))
        return qs_cli_error(QS_EXIT_USAGE, "dfq: --calib-data, --calib-images and --calib-seed are for --bc "
                            "empirical; %s needs no images", bc ? "the analytic bias correction" : name);
    qs_qconfig_t c;
    if (qs_cli_qopts_config(&o->q, &c) < 0)
        return qs_cli_fail(QS_EXIT_USAGE);
    return QS_EXIT_OK;
}

static const char *act_str(const qs_dfq_pair_t *p, char *buf, size_t n)
{
    if (!p->act[0])
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%s (%s%s)", p->act, qs_op_name(p->act_op), p->relu6_replaced ? " -> relu" : "");
    return buf;
}

static const char *step_word(unsigned step)
{
    return step == QS_DFQ_CLE ? "cle" : step == QS_DFQ_ABSORB ? "absorb" : "bc";
}

static void print_summary(const opts_t *o, const qs_graph_t *g, const qs_dfq_report_t *r, const qs_qconfig_t *c,
                          int threads, int64_t bytes, double seconds)
{
    char name[64], buf[512];
    unsigned s = o->d.steps;
    printf("model       %s (%s)\n", g->name[0] ? g->name : "unnamed", o->model);
    printf("method      %s", qs_dfq_method_str(s, name, sizeof name));
    if (s & (QS_DFQ_CLE | QS_DFQ_ABSORB))
        printf(", relu6 %s", o->d.relu6 == QS_DFQ_RELU6_REPLACE ? "replace" : "skip");
    if (s & QS_DFQ_BC)
        printf(", bias correction %s", o->d.bc == QS_DFQ_BC_ANALYTIC ? "analytic" : "empirical");
    printf(", %d thread%s\n", threads, threads == 1 ? "" : "s");
    printf("folded      %d batchnorm%s\n", r->folded, r->folded == 1 ? "" : "s");
    if (s & QS_DFQ_CLE) {
        printf("equalized   %d pair%s in %d sweep%s (%s, last max |s-1| %.2g)", r->npairs, r->npairs == 1 ? "" : "s",
               r->sweeps, r->sweeps == 1 ? "" : "s", r->converged ? "converged" : "not converged", r->last_change);
        if (r->relu6_replaced)
            printf("; %d relu6 replaced by relu", r->relu6_replaced);
        printf("\n");
    }
    if (s & QS_DFQ_ABSORB)
        printf("absorbed    %" PRId64 " channel%s into %d layer%s (c = beta - %g gamma > 0)\n", r->absorbed,
               r->absorbed == 1 ? "" : "s", r->absorb_pairs, r->absorb_pairs == 1 ? "" : "s", o->d.absorb_sigmas);
    if (r->npairs) {
        printf("\n  %-14s %-14s %-28s %8s %19s %8s\n", "first", "second", "between", "channels", "scales s_i",
               "absorbed");
        for (int k = 0; k < r->npairs; k++) {
            const qs_dfq_pair_t *p = &r->pair[k];
            char sc[40];
            if (s & QS_DFQ_CLE)
                snprintf(sc, sizeof sc, "%.3g .. %.3g", p->s_min, p->s_max);
            else
                snprintf(sc, sizeof sc, "-");
            printf("  %-14s %-14s %-28s %8" PRId64 " %19s %8" PRId64 "%s\n", p->first, p->second,
                   act_str(p, buf, sizeof buf), p->channels, sc, p->absorbed,
                   p->padded && p->absorbed ? " (padded: exact off the border)" : "");
        }
        printf("\n");
    }
    if (s & QS_DFQ_BC) {
        printf("corrected   %d layer%s against weights %s", r->ncorrected, r->ncorrected == 1 ? "" : "s",
               qs_quantizer_str(&c->q[QS_QT_WEIGHTS], buf, sizeof buf));
        if (c->noverrides)
            printf(" (and %d override%s)", c->noverrides, c->noverrides == 1 ? "" : "s");
        if (o->d.bc == QS_DFQ_BC_EMPIRICAL)
            printf("; E[x] over %" PRId64 " images", r->bc_images);
        printf("\n");
        for (int k = 0; k < r->ncorrected; k++)
            printf("  %-14s max |db| %.3g, mean |db| %.3g\n", r->corrected[k].node, r->corrected[k].max_abs,
                   r->corrected[k].mean_abs);
    }
    /* equalization and absorption meet the same obstacles: one line for both */
    int shown = 0;
    for (int k = 0; k < r->nskipped; k++) {
        const qs_dfq_skip_t *e = &r->skipped[k];
        bool seen = false;
        for (int j = 0; j < k && !seen; j++)
            seen = strcmp(r->skipped[j].node, e->node) == 0 && strcmp(r->skipped[j].reason, e->reason) == 0;
        if (seen)
            continue;
        char steps[32] = "";
        for (int j = k; j < r->nskipped; j++)
            if (strcmp(r->skipped[j].node, e->node) == 0 && strcmp(r->skipped[j].reason, e->reason) == 0)
                snprintf(steps + strlen(steps), sizeof steps - strlen(steps), "%s%s", steps[0] ? "+" : "",
                         step_word(r->skipped[j].step));
        if (!shown++)
            printf("left alone\n");
        printf("  %-11s %s: %s\n", steps, e->node, e->reason);
    }
    printf("output      %s (%" PRId64 " bytes)\n", o->out, bytes);
    printf("time        %.3f s\n", seconds);
}

static int print_json(const opts_t *o, const qs_graph_t *g, const qs_dfq_report_t *r, int threads, int64_t bytes,
                      double seconds)
{
    char name[64];
    qs_json_t j;
    qs_json_begin(&j, stdout);
    qs_json_str(&j, "model", o->model);
    qs_json_str(&j, "model_name", g->name);
    qs_json_str(&j, "output", o->out);
    qs_json_str(&j, "method", qs_dfq_method_str(o->d.steps, name, sizeof name));
    qs_json_str(&j, "relu6", o->d.relu6 == QS_DFQ_RELU6_REPLACE ? "replace" : "skip");
    qs_json_str(&j, "bc", (o->d.steps & QS_DFQ_BC) ? (o->d.bc == QS_DFQ_BC_ANALYTIC ? "analytic" : "empirical") : NULL);
    qs_json_int(&j, "threads", threads);
    qs_json_int(&j, "folded_batchnorms", r->folded);
    qs_json_int(&j, "pairs", r->npairs);
    qs_json_int(&j, "sweeps", r->sweeps);
    qs_json_bool(&j, "converged", r->converged);
    qs_json_int(&j, "relu6_replaced", r->relu6_replaced);
    qs_json_int(&j, "absorbed_channels", r->absorbed);
    qs_json_int(&j, "corrected_layers", r->ncorrected);
    qs_json_int(&j, "bc_images", r->bc_images);
    qs_json_int(&j, "skipped", r->nskipped);
    qs_json_int(&j, "file_bytes", bytes);
    int rc = qs_json_metric(&j, "seconds", seconds);
    FILE *out = j.out;
    fputs(", \"pair_list\": [", out);
    for (int k = 0; k < r->npairs; k++) {
        const qs_dfq_pair_t *p = &r->pair[k];
        qs_json_t e;
        fputs(k ? ", " : "", out);
        qs_json_begin(&e, out);
        qs_json_str(&e, "first", p->first);
        qs_json_str(&e, "second", p->second);
        qs_json_str(&e, "act", p->act[0] ? p->act : NULL);
        qs_json_bool(&e, "relu6_replaced", p->relu6_replaced);
        qs_json_int(&e, "channels", p->channels);
        qs_json_num(&e, "scale_min", p->s_min);
        qs_json_num(&e, "scale_max", p->s_max);
        qs_json_int(&e, "absorbed", p->absorbed);
        qs_json_bool(&e, "padded", p->padded);
        fputs("}", out);
    }
    fputs("], \"corrected\": [", out);
    for (int k = 0; k < r->ncorrected; k++) {
        qs_json_t e;
        fputs(k ? ", " : "", out);
        qs_json_begin(&e, out);
        qs_json_str(&e, "name", r->corrected[k].node);
        qs_json_num(&e, "max_abs", r->corrected[k].max_abs);
        qs_json_num(&e, "mean_abs", r->corrected[k].mean_abs);
        fputs("}", out);
    }
    fputs("], \"left_alone\": [", out);
    for (int k = 0; k < r->nskipped; k++) {
        qs_json_t e;
        fputs(k ? ", " : "", out);
        qs_json_begin(&e, out);
        qs_json_str(&e, "step", step_word(r->skipped[k].step));
        qs_json_str(&e, "name", r->skipped[k].node);
        qs_json_str(&e, "reason", r->skipped[k].reason);
        fputs("}", out);
    }
    fputc(']', out);
    j.count++;
    qs_json_end(&j);
    return rc;
}

static int run(opts_t *o)
{
    qs_graph_t *g = NULL, *t = NULL;
    qs_dataset_t *d = NULL;
    qs_pool_t *pool = NULL;
    qs_dfq_report_t rep;
    memset(&rep, 0, sizeof rep);
    double t0 = qs_now_s();
    qs_qconfig_t c;
    int quantized = qs_model_is_quantized(o->model);
    if (quantized < 0)
        goto fail;
    if (quantized) {
        qs_error(QS_ERR_INVALID, "dfq: '%s' is a quantized model; transform its float model instead", o->model);
        goto fail;
    }
    if (qs_cli_qopts_config(&o->q, &c) < 0 || qs_model_load(o->model, &g) < 0 ||
        !(pool = qs_pool_create((int)o->threads)))
        goto fail;
    o->d.qcfg = &c;
    o->d.pool = pool;
    if ((o->d.steps & QS_DFQ_BC) && o->d.bc == QS_DFQ_BC_EMPIRICAL) {
        if (qs_dataset_open(o->q.calib_data ? o->q.calib_data : "fmnist:train", &d) < 0)
            goto fail;
        if (o->q.calib_images > 0)
            o->d.images = o->q.calib_images;
        if (o->q.calib_seed_set)
            o->d.seed = o->q.calib_seed;
    }
    if (qs_dfq_apply(g, &o->d, d, &t, &rep) < 0 || qs_model_save(t, o->out) < 0)
        goto fail;
    double seconds = qs_now_s() - t0;
    struct stat st;
    int64_t bytes = stat(o->out, &st) == 0 ? (int64_t)st.st_size : -1;
    int threads = qs_pool_threads(pool);
    if (o->json) {
        if (print_json(o, g, &rep, threads, bytes, seconds) < 0)
            goto fail;
    } else {
        print_summary(o, g, &rep, &c, threads, bytes, seconds);
    }
    qs_dfq_report_free(&rep);
    qs_graph_free(t);
    qs_graph_free(g);
    qs_dataset_free(d);
    qs_pool_free(pool);
    return QS_EXIT_OK;
fail:;
    int ex = qs_cli_fail(QS_EXIT_RUNTIME);
    qs_dfq_report_free(&rep);
    qs_graph_free(t);
    qs_graph_free(g);
    qs_dataset_free(d);
    qs_pool_free(pool);
    return ex;
}

int qs_cmd_dfq(int argc, char **argv)
{
    opts_t o;
    memset(&o, 0, sizeof o);
    int ex = parse_args(argc, argv, &o);
    if (ex == QS_EXIT_OK)
        ex = run(&o);
    return ex;
}
