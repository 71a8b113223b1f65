/* cli/cmd_train.c — `quasar train SPEC.yaml -o MODEL.h5`: builds a zoo
 * architecture, trains it with qs_train as the spec says (docs/training.md),
 * prints one line per epoch as it happens, and saves the model atomically.
 * All the work is the library's; this file parses the spec and prints. */
#include "config.h"

#include "cli/cli.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void qs_help_train(FILE *out)
{
    fprintf(out,
            "Usage: quasar train SPEC.yaml -o MODEL.h5 [--threads N] [--epochs E] [--limit N] [--json]\n"
            "\n"
            "Builds the architecture SPEC names, trains it on the training split with SGD\n"
            "(momentum, per-group weight decay, cosine schedule, batch norm in training mode,\n"
            "random crop/flip), evaluates the test split after every epoch with the float\n"
            "engine, prints one line per epoch and saves the model (written aside, then\n"
            "renamed). Bitwise reproducible for a given spec, thread count and machine.\n"
            "\n"
            "SPEC.yaml keys (docs/training.md): arch (fmnist-dwsep, fmnist-resnet), seed,\n"
            "data (map: train, test; fmnist:train, fmnist:test or FILE.h5), epochs, batch, lr,\n"
            "lr_min, warmup_epochs, momentum, weight_decay, wd_depthwise, wd_bn, wd_bias,\n"
            "bn_momentum, augment. Unknown keys are errors.\n"
            "\n"
            "  -o, --output MODEL.h5    where to save the trained model (required)\n"
            "  --threads N              worker threads (default: $QUASAR_THREADS or all cores);\n"
            "                           results are bitwise identical for the same N\n"
            "  --epochs E               override the spec's epochs\n"
            "  --limit N                train on a seeded subset of N training images\n"
            "  --json                   one JSON object per epoch (epoch, loss, train_top1,\n"
            "                           top1, seconds) instead of the table\n"
            "Exit status: 0 success, 1 runtime error, 2 usage or spec error.\n");
}

typedef struct {
    const char *spec, *out;
    int64_t threads, epochs, limit;
    bool json;
} args_t;

typedef struct {
    const char *arch, *train, *test;
    qs_train_opts_t o;
} spec_t;

static int parse_args(int argc, char **argv, args_t *a)
{
    const char *v;
    int m;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--json") == 0) {
            a->json = true;
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "-o", &v)) != 0 || (m = qs_cli_opt(argc, argv, &i, "--output", &v)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            a->out = v;
            continue;
        }
        static const struct {
            const char *flag;
            int64_t lo, hi;
            size_t at;
        } nums[] = {
            {"--threads", 1, 1024, offsetof(args_t, threads)},
            {"--epochs", 1, 100000, offsetof(args_t, epochs)},
            {"--limit", 2, INT64_MAX, offsetof(args_t, limit)},
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
            return qs_cli_error(QS_EXIT_USAGE, "train: unknown option '%s' (see 'quasar help train')", s);
        if (a->spec)
            return qs_cli_error(QS_EXIT_USAGE, "train: unexpected argument '%s' (see 'quasar help train')", s);
        a->spec = s;
    }
    if (!a->spec)
        return qs_cli_error(QS_EXIT_USAGE, "train: expected SPEC.yaml (see 'quasar help train')");
    if (!a->out)
        return qs_cli_error(QS_EXIT_USAGE, "train: expected -o MODEL.h5 (see 'quasar help train')");
    return QS_EXIT_OK;
}

/* Strict: every key is known, every value has the right type and range. */
static int read_spec(const qs_yaml_doc_t *d, spec_t *s)
{
    static const char *const keys[] = {"arch",     "seed",         "data",         "epochs",       "batch",
                                       "lr",       "lr_min",       "warmup_epochs", "momentum",    "weight_decay",
                                       "wd_depthwise", "wd_bn",    "wd_bias",      "bn_momentum",  "augment",
                                       NULL};
    static const char *const data_keys[] = {"train", "test", NULL};
    const qs_yaml_node_t *root = qs_yaml_root(d);
    if (!root || qs_yaml_kind(root) != QS_YAML_MAP)
        return qs_error(QS_ERR_FORMAT, "%s:%d: expected a map of training settings", qs_yaml_name(d),
                        root ? qs_yaml_line(root) : 1);
    int rc = qs_yaml_check_keys(d, root, keys);
    if (rc < 0)
        return rc;
    qs_train_opts_default(&s->o);
    s->train = "fmnist:train";
    s->test = "fmnist:test";
    int64_t v;
    if ((rc = qs_yaml_get_str(d, root, "arch", true, &s->arch)) < 0)
        return rc;
    v = (int64_t)s->o.seed;
    if ((rc = qs_yaml_get_int(d, root, "seed", false, &v)) < 0)
        return rc;
    if (v < 0)
        return qs_error(QS_ERR_INVALID, "%s:%d: key 'seed': must be >= 0, got %" PRId64, qs_yaml_name(d),
                        qs_yaml_line(qs_yaml_get(root, "seed")), v);
    s->o.seed = (uint64_t)v;
    const qs_yaml_node_t *data = qs_yaml_get(root, "data");
    if (data) {
        if ((rc = qs_yaml_check_keys(d, data, data_keys)) < 0)
            return rc;
        if ((rc = qs_yaml_get_str(d, data, "train", false, &s->train)) < 0 ||
            (rc = qs_yaml_get_str(d, data, "test", false, &s->test)) < 0)
            return rc;
    }
    v = s->o.epochs;
    if ((rc = qs_yaml_get_int(d, root, "epochs", false, &v)) < 0)
        return rc;
    s->o.epochs = v < 0 || v > 100000 ? -1 : (int)v;
    if ((rc = qs_yaml_get_int(d, root, "batch", false, &s->o.batch)) < 0)
        return rc;
    v = s->o.warmup_epochs;
    if ((rc = qs_yaml_get_int(d, root, "warmup_epochs", false, &v)) < 0)
        return rc;
    s->o.warmup_epochs = v < 0 || v > 100000 ? -1 : (int)v;
    static const struct {
        const char *key;
        size_t at;
    } dbl[] = {{"lr", offsetof(qs_train_opts_t, lr)},
               {"lr_min", offsetof(qs_train_opts_t, lr_min)},
               {"momentum", offsetof(qs_train_opts_t, momentum)},
               {"weight_decay", offsetof(qs_train_opts_t, weight_decay)},
               {"bn_momentum", offsetof(qs_train_opts_t, bn_momentum)}};
    for (size_t k = 0; k < sizeof dbl / sizeof *dbl; k++)
        if ((rc = qs_yaml_get_double(d, root, dbl[k].key, false, (double *)(void *)((char *)&s->o + dbl[k].at))) < 0)
            return rc;
    static const struct {
        const char *key;
        size_t at;
    } bools[] = {{"wd_depthwise", offsetof(qs_train_opts_t, wd_depthwise)},
                 {"wd_bn", offsetof(qs_train_opts_t, wd_bn)},
                 {"wd_bias", offsetof(qs_train_opts_t, wd_bias)},
                 {"augment", offsetof(qs_train_opts_t, augment)}};
    for (size_t k = 0; k < sizeof bools / sizeof *bools; k++)
        if ((rc = qs_yaml_get_bool(d, root, bools[k].key, false, (bool *)((char *)&s->o + bools[k].at))) < 0)
            return rc;
    return QS_OK;
}

typedef struct {
    bool json;
} print_ctx_t;

static void on_epoch(const qs_train_epoch_t *e, void *ctx)
{
    const print_ctx_t *p = ctx;
    if (p->json) {
        qs_json_t j;
        qs_json_begin(&j, stdout);
        qs_json_int(&j, "epoch", e->epoch);
        qs_json_metric(&j, "loss", e->loss);
        qs_json_metric(&j, "train_top1", e->train_top1);
        qs_json_metric(&j, "top1", e->test_top1);
        qs_json_metric(&j, "seconds", e->seconds);
        qs_json_end(&j);
    } else {
        if (e->epoch == 1)
            printf("%5s  %8s  %9s  %8s  %8s\n", "epoch", "loss", "train-top1", "test-top1", "seconds");
        printf("%5d  %8.4f  %9.4f  %8.4f  %8.1f\n", e->epoch, e->loss, e->train_top1, e->test_top1, e->seconds);
    }
    fflush(stdout);
}

static int run(const args_t *a)
{
    qs_yaml_doc_t *doc = NULL;
    qs_graph_t *g = NULL;
    qs_dataset_t *tr = NULL, *te = NULL;
    qs_pool_t *pool = NULL;
    spec_t s;
    memset(&s, 0, sizeof s);
    int ex = QS_EXIT_USAGE;
    if (!(doc = qs_yaml_load(a->spec)) || read_spec(doc, &s) < 0)
        goto fail;
    if (a->epochs > 0)
        s.o.epochs = (int)a->epochs;
    if (a->limit > 0)
        s.o.limit = a->limit;
    ex = QS_EXIT_RUNTIME;
    if (qs_zoo_build(s.arch, s.o.seed, &g) < 0)
        goto fail;
    if (qs_dataset_open(s.train, &tr) < 0 || qs_dataset_open(s.test, &te) < 0)
        goto fail;
    if (!(pool = qs_pool_create((int)a->threads)))
        goto fail;
    s.o.pool = pool;
    if (!a->json)
        printf("train %s: %" PRId64 " parameters, %.3f MMAC/image, %s, %d thread%s\n", s.arch, qs_graph_params(g),
               (double)qs_graph_macs(g) / 1e6, tr->source, qs_pool_threads(pool),
               qs_pool_threads(pool) == 1 ? "" : "s");
    fflush(stdout);
    print_ctx_t pc = {a->json};
    double t0 = qs_now_s();
    if (qs_train(g, tr, te, &s.o, NULL, on_epoch, &pc) < 0)
        goto fail;
    if (qs_model_save(g, a->out) < 0)
        goto fail;
    if (!a->json)
        printf("saved %s (%.1f s)\n", a->out, qs_now_s() - t0);
    qs_pool_free(pool);
    qs_dataset_free(tr);
    qs_dataset_free(te);
    qs_graph_free(g);
    qs_yaml_free(doc);
    return QS_EXIT_OK;
fail:
    ex = qs_cli_fail(ex);
    qs_pool_free(pool);
    qs_dataset_free(tr);
    qs_dataset_free(te);
    qs_graph_free(g);
    qs_yaml_free(doc);
    return ex;
}

int qs_cmd_train(int argc, char **argv)
{
    args_t a;
    memset(&a, 0, sizeof a);
    int ex = parse_args(argc, argv, &a);
    if (ex == QS_EXIT_OK)
        ex = run(&a);
    return ex;
}
