/* cli/cmd_compress.c — `quasar compress MODEL.h5 -o OUT.h5 --prune METHOD
 * [--ratio R] [--finetune-epochs N ...]`: prunes a float model (sim/prune.c,
 * docs/compression.md), optionally fine-tunes it with its masks fixed, and
 * writes a new model file (aside, then renamed). */
#include "config.h"

#include "cli/cli.h"
#include "sim/lowrank.h"

#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void qs_help_compress(FILE *out)
{
    fprintf(out,
            "Usage: quasar compress MODEL.h5 -o OUT.h5 --prune METHOD [--ratio R]\n"
            "                       [--finetune-epochs N] [--lr LR] [--data SPEC] [--limit N]\n"
            "                       [--threads N] [--json]\n"
            "\n"
            "Prunes and/or factorizes a float model and writes the result (docs/compression.md):\n"
            "  --prune METHOD           magnitude   each conv/linear loses the fraction R of its\n"
            "                                       weights of smallest magnitude (masks)\n"
            "                           global      one magnitude threshold over all layers\n"
            "                           nm:N:M      N of every M consecutive weights along the\n"
            "                                       reduction dimension kept (e.g. nm:2:4)\n"
            "                           channel-l1, channel-l2\n"
            "                                       each layer loses the fraction R of its output\n"
            "                                       channels (smallest L1/L2 norm), removed with\n"
            "                                       their batchnorm entries, the depthwise channels\n"
            "                                       that follow and the readers' input channels;\n"
            "                                       layers tied at residual adds are pruned as one\n"
            "                           channel-act the channels whose values, as the next layers\n"
            "                                       receive them, are smallest on data\n"
            "  --ratio R                the fraction pruned, in [0, 1) (not for nm)\n"
            "  --refit                  channel pruning: re-solve each reader's weights by least\n"
            "                           squares to reproduce its unpruned output from the kept\n"
            "                           channels, on --calib-images (default 256) of --calib-data\n"
            "  --target-macs F          instead of --ratio (magnitude, channel-*): choose a ratio per\n"
            "                           layer so that the fraction F of the MACs stays (magnitude:\n"
            "                           MACs with a non-zero weight): each layer is pruned alone at\n"
            "                           0.1 .. 0.9 and evaluated on --select-images images (default\n"
            "                           500) of --select-data (default fmnist:train), then the highest\n"
            "                           accuracy threshold whose per-layer choice meets F is kept\n"
            "  --lowrank KIND           then factorize conv2d/linear layers into two (SVD): channel\n"
            "                           (a kh x kw conv to rank r, then 1x1) or spatial (kh x 1, then\n"
            "                           1 x kw); the rank by --rank-ratio R (of the full rank) or\n"
            "                           --energy E (the smallest rank discarding at most E of the\n"
            "                           squared singular values); layers that would not lose MACs\n"
            "                           are left whole\n"
            "  --bn-reestimate          then set every batchnorm's statistics to those of its\n"
            "                           input on --calib-images images of --calib-data\n"
            "  --calib-data SPEC        re-estimation data (default fmnist:train)\n"
            "  --calib-images N         images for it (default 1000, seed 1)\n"
            "  --finetune-epochs N      then train N epochs with the masks fixed (SGD, cosine\n"
            "                           schedule from --lr, default 0.01; batchnorm statistics\n"
            "                           re-estimated on the way)\n"
            "  --data SPEC              fine-tuning data (default fmnist:train)\n"
            "  --limit N                fine-tune on a seeded subset of N images\n"
            "  --threads N              worker threads (default: $QUASAR_THREADS or all cores)\n"
            "  --json                   one JSON object: params, macs (metric names) and method,\n"
            "                           ratio, macs_before, macs_nonzero, params_before, density\n"
            "\n"
            "Exit status: 0 success, 1 runtime error, 2 usage error.\n");
}

typedef struct {
    const char *model, *out, *prune, *data, *calib_data, *select_data, *lowrank;
    double ratio, lr, target, rank_ratio, energy;
    bool ratio_set, json, bn, energy_set, refit;
    int64_t threads, epochs, limit, calib_images, select_images;
} args_t;

static int parse_args(int argc, char **argv, args_t *a)
{
    const char *v;
    int m;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--json") == 0 || strcmp(s, "--bn-reestimate") == 0 || strcmp(s, "--refit") == 0) {
            *(s[2] == 'j' ? &a->json : s[2] == 'b' ? &a->bn : &a->refit) = true;
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "--calib-data", &v)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            a->calib_data = v;
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "-o", &v)) != 0 || (m = qs_cli_opt(argc, argv, &i, "--output", &v)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            if (a->out)
                return qs_cli_error(QS_EXIT_USAGE, "compress: -o/--output given twice");
            a->out = v;
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "--prune", &v)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            a->prune = v;
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "--data", &v)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            a->data = v;
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "--ratio", &v)) != 0) {
            if (m < 0 || qs_kv_double("--ratio", NULL, v, 0.0, 0.999999, &a->ratio) < 0)
                return m < 0 ? QS_EXIT_USAGE : qs_cli_fail(QS_EXIT_USAGE);
            a->ratio_set = true;
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "--lowrank", &v)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            a->lowrank = v;
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "--rank-ratio", &v)) != 0) {
            if (m < 0 || qs_kv_double("--rank-ratio", NULL, v, 1e-9, 1.0, &a->rank_ratio) < 0)
                return m < 0 ? QS_EXIT_USAGE : qs_cli_fail(QS_EXIT_USAGE);
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "--energy", &v)) != 0) {
            if (m < 0 || qs_kv_double("--energy", NULL, v, 0.0, 0.999999, &a->energy) < 0)
                return m < 0 ? QS_EXIT_USAGE : qs_cli_fail(QS_EXIT_USAGE);
            a->energy_set = true;
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "--target-macs", &v)) != 0) {
            if (m < 0 || qs_kv_double("--target-macs", NULL, v, 1e-6, 0.999999, &a->target) < 0)
                return m < 0 ? QS_EXIT_USAGE : qs_cli_fail(QS_EXIT_USAGE);
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "--select-data", &v)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            a->select_data = v;
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "--lr", &v)) != 0) {
            if (m < 0 || qs_kv_double("--lr", NULL, v, 1e-9, 10.0, &a->lr) < 0)
                return m < 0 ? QS_EXIT_USAGE : qs_cli_fail(QS_EXIT_USAGE);
            continue;
        }
        static const struct {
            const char *flag;
            int64_t lo, hi;
            size_t at;
        } nums[] = {
            {"--threads", 1, 1024, offsetof(args_t, threads)},
            {"--finetune-epochs", 0, 1000, offsetof(args_t, epochs)},
            {"--limit", 2, INT64_MAX, offsetof(args_t, limit)},
            {"--calib-images", 1, INT64_MAX, offsetof(args_t, calib_images)},
            {"--select-images", 1, INT64_MAX, offsetof(args_t, select_images)},
        };
        bool matched = false;
        for (size_t k = 0; k < sizeof nums / sizeof *nums && !matched; k++) {
            if ((m = qs_cli_opt(argc, argv, &i, nums[k].flag, &v)) == 0)
                continue;
            if (m < 0)
                return QS_EXIT_USAGE;
            if (qs_kv_int(nums[k].flag, NULL, v, nums[k].lo, nums[k].hi, (int64_t *)(void *)((char *)a + nums[k].at)) <
                0)
                return qs_cli_fail(QS_EXIT_USAGE);
            matched = true;
        }
        if (matched)
            continue;
        if (s[0] == '-' && s[1] != '\0')
            return qs_cli_error(QS_EXIT_USAGE, "compress: unknown option '%s' (see 'quasar help compress')", s);
        if (a->model)
            return qs_cli_error(QS_EXIT_USAGE, "compress: unexpected argument '%s' (see 'quasar help compress')", s);
        a->model = s;
    }
    if (!a->model)
        return qs_cli_error(QS_EXIT_USAGE, "compress: expected MODEL.h5 (see 'quasar help compress')");
    if (!a->out)
        return qs_cli_error(QS_EXIT_USAGE, "compress: expected -o OUT.h5 (see 'quasar help compress')");
    if (!a->prune && !a->lowrank)
        return qs_cli_error(QS_EXIT_USAGE, "compress: expected --prune METHOD and/or --lowrank KIND (see 'quasar help "
                            "compress')");
    if (!a->lowrank && (a->rank_ratio > 0 || a->energy_set))
        return qs_cli_error(QS_EXIT_USAGE, "compress: --rank-ratio and --energy go with --lowrank KIND");
    if (a->lowrank && (a->rank_ratio > 0) == a->energy_set)
        return qs_cli_error(QS_EXIT_USAGE, "compress: --lowrank needs one of --rank-ratio R or --energy E");
    return QS_EXIT_OK;
}

static void print_report(const args_t *a, const qs_prune_opts_t *po, const qs_graph_t *g, const qs_prune_report_t *r)
{
    double density = r->weights ? 1.0 - (double)r->masked / (double)r->weights : 1.0;
    if (a->json) {
        qs_json_t j;
        qs_json_begin(&j, stdout);
        qs_json_str(&j, "model", a->model);
        qs_json_str(&j, "method", a->prune);
        qs_json_num(&j, "ratio", po->method == QS_PRUNE_NM ? 1.0 - (double)po->n / po->m : po->ratio);
        qs_json_metric(&j, "params", (double)r->params_after);
        qs_json_metric(&j, "macs", (double)r->macs_after);
        qs_json_int(&j, "params_before", r->params_before);
        qs_json_int(&j, "macs_before", r->macs_before);
        qs_json_int(&j, "macs_nonzero", r->macs_nonzero);
        qs_json_num(&j, "density", density);
        qs_json_end(&j);
        return;
    }
    printf("model       %s (%s)\n", g->name, a->model);
    printf("pruning     %s", a->prune);
    if (po->layer_ratio)
        printf(", ratios per layer for %g of the MACs", a->target);
    else if (po->method != QS_PRUNE_NM && po->method != QS_PRUNE_NONE)
        printf(", ratio %g", po->ratio);
    printf("\nweights     %.2f%% of %" PRId64 " conv/linear weights masked (density %.4f)\n",
           r->weights ? 100.0 * (double)r->masked / (double)r->weights : 0.0, r->weights, density);
    printf("parameters  %" PRId64 " -> %" PRId64 "\n", r->params_before, r->params_after);
    printf("MACs        %" PRId64 " -> %" PRId64 " per image dense, %" PRId64 " with a non-zero weight (%.1f%% of "
           "the original)\n",
           r->macs_before, r->macs_after, r->macs_nonzero,
           r->macs_before ? 100.0 * (double)r->macs_nonzero / (double)r->macs_before : 0.0);
    for (int k = 0; k < r->nlayers; k++) {
        const qs_prune_layer_t *l = &r->layer[k];
        if (l->skipped)
            printf("  %-14s kept whole: %s\n", g->nodes[l->node].name, l->skipped);
        else if (l->with >= 0)
            printf("  %-14s %" PRId64 " -> %" PRId64 " channels, with %s (their channels meet at an add)\n",
                   g->nodes[l->node].name, l->before, l->after, g->nodes[l->with].name);
        else
            printf("  %-14s %" PRId64 " -> %" PRId64 " channels\n", g->nodes[l->node].name, l->before, l->after);
    }
}

static void on_epoch(const qs_train_epoch_t *e, void *ctx)
{
    const args_t *a = ctx;
    if (!a->json)
        printf("finetune    epoch %d: loss %.4f, train top-1 %.4f\n", e->epoch, e->loss, e->train_top1);
    fflush(stdout);
}

int qs_cmd_compress(int argc, char **argv)
{
    args_t a;
    memset(&a, 0, sizeof a);
    a.lr = 0.01;
    int ex = parse_args(argc, argv, &a);
    if (ex != QS_EXIT_OK)
        return ex;
    qs_prune_opts_t po;
    qs_prune_opts_default(&po);
    if (qs_prune_parse(a.prune ? a.prune : "none", "--prune", &po) < 0)
        return qs_cli_fail(QS_EXIT_USAGE);
    qs_lowrank_opts_t lo;
    qs_lowrank_opts_default(&lo);
    if (a.lowrank) {
        if (qs_lowrank_kind_parse(a.lowrank, "--lowrank", &lo.kind) < 0)
            return qs_cli_fail(QS_EXIT_USAGE);
        if (a.rank_ratio > 0)
            lo.ratio = a.rank_ratio;
        else
            lo.energy = a.energy;
        if (qs_lowrank_check(&lo) < 0)
            return qs_cli_fail(QS_EXIT_USAGE);
    }
    bool wants_ratio = po.method != QS_PRUNE_NM && po.method != QS_PRUNE_NONE;
    if (a.target > 0 && (a.ratio_set || (po.method != QS_PRUNE_MAGNITUDE && po.method != QS_PRUNE_CHANNEL_L1 &&
                                         po.method != QS_PRUNE_CHANNEL_L2)))
        return qs_cli_error(QS_EXIT_USAGE, "compress: --target-macs goes with --prune magnitude, channel-l1 or "
                            "channel-l2, instead of --ratio");
    if (a.target > 0)
        a.ratio_set = true, wants_ratio = true; /* the ratios are chosen per layer */
    if (wants_ratio && !a.ratio_set)
        return qs_cli_error(QS_EXIT_USAGE, "compress: --prune %s needs --ratio R (or --target-macs F)", a.prune);
    if (!wants_ratio && a.ratio_set)
        return qs_cli_error(QS_EXIT_USAGE, "compress: --ratio does not apply to --prune %s", a.prune);
    po.ratio = a.ratio;
    po.refit = a.refit;
    qs_dataset_t *pdata = NULL;
    if (a.refit || po.method == QS_PRUNE_CHANNEL_ACT) {
        if (qs_dataset_open(a.calib_data ? a.calib_data : "fmnist:train", &pdata) < 0)
            return qs_cli_fail(QS_EXIT_RUNTIME);
        po.data = pdata;
        po.images = a.calib_images ? a.calib_images : 256;
    }
    qs_graph_t *g = NULL, *p = NULL;
    qs_dataset_t *tr = NULL;
    qs_pool_t *pool = NULL;
    qs_prune_report_t *rep = calloc(1, sizeof *rep);
    ex = QS_EXIT_RUNTIME;
    if (!rep) {
        qs_error(QS_ERR_NOMEM, "compress: out of memory");
        goto fail;
    }
    if (qs_cli_same_file(a.model, a.out)) {
        qs_error(QS_ERR_INVALID, "compress: the output '%s' is the input model; write the pruned model to another file",
                 a.out);
        ex = QS_EXIT_USAGE;
        goto fail;
    }
    if (qs_model_load(a.model, &g) < 0)
        goto fail;
    double *lr = NULL;
    if (a.target > 0) {
        qs_prune_select_t *sel = calloc(1, sizeof *sel);
        qs_dataset_t *sd = NULL, *sub = NULL;
        qs_prune_select_opts_t so;
        qs_prune_select_opts_default(&so);
        so.target = a.target;
        int rc = sel && (pool = qs_pool_create((int)a.threads)) ? QS_OK : qs_error(QS_ERR_NOMEM, "compress: out of memory");
        so.engine.pool = pool;
        if (rc >= 0)
            rc = qs_dataset_open(a.select_data ? a.select_data : "fmnist:train", &sd);
        if (rc >= 0)
            rc = qs_dataset_subset(sd, a.select_images ? a.select_images : 500, 1, &sub);
        if (rc >= 0)
            rc = qs_prune_select(g, po.method, sub, &so, sel);
        if (rc >= 0 && !(lr = malloc((size_t)g->nnodes * sizeof *lr)))
            rc = qs_error(QS_ERR_NOMEM, "compress: out of memory");
        if (rc >= 0) {
            for (int i = 0; i < g->nnodes; i++)
                lr[i] = 0.0;
            if (!a.json) {
                printf("selection   %d layers x %d ratios on %" PRId64 " images of %s (%d evaluations): top-1 alone "
                       "at 0 and 0.1 .. 0.9\n",
                       sel->nlayers, so.ncand, sub->n, sub->source, sel->evaluations);
                for (int k = 0; k < sel->nlayers; k++) {
                    printf("  %-14s", g->nodes[sel->node[k]].name);
                    for (int c = 0; c <= so.ncand; c++)
                        printf(" %.3f", sel->top1[k][c]);
                    printf("  -> ratio %.1f\n", sel->ratio[k]);
                }
                printf("selected    threshold top-1 %.4f: %.1f%% of the MACs%s\n", sel->threshold,
                       100.0 * sel->macs_fraction, sel->met ? "" : " (the target is out of reach: the most aggressive choice)");
            }
            for (int k = 0; k < sel->nlayers; k++)
                lr[sel->node[k]] = sel->ratio[k];
            po.layer_ratio = lr;
        }
        free(sel);
        qs_dataset_free(sub);
        qs_dataset_free(sd);
        if (rc < 0)
            goto fail;
    }
    int prc = qs_graph_prune(g, &po, &p, rep);
    free(lr);
    if (prc < 0)
        goto fail;
    if (a.prune && !(a.json && a.lowrank)) /* with both, one JSON object below */
        print_report(&a, &po, p, rep);
    if (a.lowrank) {
        qs_lowrank_report_t *lrep = calloc(1, sizeof *lrep);
        qs_graph_t *f = NULL;
        int rc = lrep ? qs_graph_lowrank(p, &lo, &f, lrep) : qs_error(QS_ERR_NOMEM, "compress: out of memory");
        if (rc >= 0 && a.json) {
            qs_json_t j;
            qs_json_begin(&j, stdout);
            if (a.prune) {
                qs_json_str(&j, "method", a.prune);
                qs_json_int(&j, "macs_nonzero", rep->macs_nonzero);
                qs_json_num(&j, "density", rep->weights ? 1.0 - (double)rep->masked / (double)rep->weights : 1.0);
            }
            qs_json_str(&j, "lowrank", a.lowrank);
            qs_json_int(&j, "factorized", lrep->factorized);
            qs_json_metric(&j, "params", (double)lrep->params_after);
            qs_json_metric(&j, "macs", (double)lrep->macs_after);
            qs_json_int(&j, "macs_before", lrep->macs_before);
            qs_json_end(&j);
        } else if (rc >= 0) {
            printf("low-rank    %s split, %s %g: %d layers factorized, %d left whole\n", a.lowrank,
                   a.rank_ratio > 0 ? "rank ratio" : "energy", a.rank_ratio > 0 ? a.rank_ratio : a.energy,
                   lrep->factorized, lrep->skipped);
            for (int k = 0; k < lrep->nlayers; k++) {
                const qs_lowrank_layer_t *l = &lrep->layer[k];
                if (l->factorized)
                    printf("  %-14s rank %" PRId64 " of %" PRId64 " (%.2f%% of the energy discarded), %" PRId64
                           " -> %" PRId64 " MACs\n",
                           l->name, l->rank, l->full_rank, 100.0 * l->discarded, l->macs_before, l->macs_after);
                else
                    printf("  %-14s kept whole: %s\n", l->name, l->skipped);
            }
            printf("MACs        %" PRId64 " -> %" PRId64 " per image, parameters %" PRId64 " -> %" PRId64 "\n",
                   lrep->macs_before, lrep->macs_after, lrep->params_before, lrep->params_after);
        }
        free(lrep);
        if (rc < 0)
            goto fail;
        qs_graph_free(p);
        p = f;
    }
    if ((a.bn || a.epochs > 0) && !pool && !(pool = qs_pool_create((int)a.threads)))
        goto fail;
    if (a.bn) {
        qs_dataset_t *cd = NULL;
        int nbn = 0;
        int rc = qs_dataset_open(a.calib_data ? a.calib_data : "fmnist:train", &cd);
        if (rc >= 0)
            rc = qs_graph_bn_reestimate(p, cd, a.calib_images ? a.calib_images : 1000, 1, pool, &nbn);
        qs_dataset_free(cd);
        if (rc < 0)
            goto fail;
        if (!a.json)
            printf("batchnorm   %d re-estimated\n", nbn);
    }
    if (a.epochs > 0) {
        if (qs_dataset_open(a.data ? a.data : "fmnist:train", &tr) < 0)
            goto fail;
        qs_train_opts_t to;
        qs_train_opts_default(&to);
        to.epochs = (int)a.epochs;
        to.lr = a.lr;
        to.limit = a.limit;
        to.pool = pool;
        if (qs_train(p, tr, NULL, &to, NULL, on_epoch, &a) < 0)
            goto fail;
    }
    if (qs_model_save(p, a.out) < 0)
        goto fail;
    if (!a.json)
        printf("output      %s\n", a.out);
    ex = QS_EXIT_OK;
    goto done;
fail:
    ex = qs_cli_fail(ex);
done:
    qs_dataset_free(pdata);
    free(rep);
    qs_pool_free(pool);
    qs_dataset_free(tr);
    qs_graph_free(p);
    qs_graph_free(g);
    return ex;
}
