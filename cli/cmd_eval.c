/* cli/cmd_eval.c — `quasar eval MODEL [--data SPEC] [--json]`: runs a model
 * with the float engine over a dataset and prints top-1/top-5 accuracy and
 * the throughput (a one-screen summary, or one JSON object with --json).
 * All the work is qs_eval's; this file parses, reports progress on a
 * terminal and prints. */
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
            "                            [--reference] [--json]\n"
            "\n"
            "Runs MODEL with the float engine on every image of a dataset, normalized as\n"
            "the model file says, and prints top-1 and top-5 accuracy, the number of images,\n"
            "images per second and the time of the evaluation (loading the model and the\n"
            "dataset not included). A label counts as in the top k when fewer than k classes\n"
            "have a strictly larger logit (ties count as correct).\n"
            "\n"
            "  --data SPEC              fmnist:test (default), fmnist:train, or FILE.h5 with\n"
            "                           /images (N x C x H x W, uint8 or float32) and /labels\n"
            "  --limit N                only the first N images\n"
            "  --batch B                images per batch (default 256)\n"
            "  --threads N              worker threads (default: $QUASAR_THREADS or all cores)\n"
            "  --reference              the BLAS-free reference path (slow: the arithmetic\n"
            "                           the tests pin, see docs/engine.md)\n"
            "  --json                   print one JSON object: top1, top5, img_s, seconds\n"
            "                           (metric names) and model, data, engine, threads, images\n"
            "\n"
            "Fashion-MNIST is read from /usr/share/datasets/fashion-mnist (Debian's\n"
            "dataset-fashion-mnist) or from $QUASAR_FASHION_MNIST.\n"
            "Exit status: 0 success, 1 runtime error (bad model or data), 2 usage error.\n");
}

typedef struct {
    const char *model, *data;
    int64_t limit, batch, threads;
    bool reference, json;
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
        if (strcmp(a, "--reference") == 0) {
            o->reference = true;
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

static int run(const opts_t *o)
{
    qs_graph_t *g = NULL;
    qs_dataset_t *d = NULL;
    qs_pool_t *pool = NULL;
    int ex;
    if (qs_model_load(o->model, &g) < 0 || qs_dataset_open(o->data, &d) < 0)
        goto fail;
    if (!(pool = qs_pool_create((int)o->threads)))
        goto fail;
    /* --limit: the first N images, seen through a copy of the header */
    qs_dataset_t view = *d;
    if (o->limit > 0 && o->limit < view.n)
        view.n = o->limit;
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
    int ex = parse_args(argc, argv, &o);
    if (ex == QS_EXIT_OK)
        ex = run(&o);
    return ex;
}
