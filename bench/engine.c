/* bench/engine.c — float engine throughput, in images/s and GMAC/s.
 *
 * Cases: the model files given with --model FILE.h5 (repeatable; the case is
 * the file's base name), or, without one, the default architectures built by
 * qs_zoo_build ("fmnist-dwsep", "fmnist-resnet"; --case NAME for one) with
 * their seeded random weights: the speed of a network does not depend on its
 * weights. Images: the Fashion-MNIST test split (--data SPEC to change it)
 * when it can be opened and matches the model, else uniform random inputs;
 * they are normalized once before timing, so the figure is the engine alone.
 * Every case runs --images (10000) images in batches of --batch (256) on a
 * pool of 1 and of 2 threads (--threads N, repeatable, to change that); the
 * time is the best of --reps (3) passes after one warm-up pass.
 *
 * Fake-quant cases (--fake PRESET, repeatable; default w8a8): the model
 * quantized with the preset (BN folded, activations calibrated on 1000
 * images of the training split, or of random images when it cannot be
 * opened), run by the fake-quant engine on the same images and threads;
 * ratio_float is its time over the float engine's on the same folded graph
 * in the same run (the fake-quant overhead; 1.0 = free). --fake none skips
 * them.
 *
 * Integer-engine cases (--int ACC, repeatable; default int32,
 * int16,overflow=saturate and int16,overflow=wrap): the model quantized
 * with the W8A8 preset, as above, run by the integer engine with that
 * accumulator and float64 requantization; ratio_float as for fake-quant.
 * --int none skips them.
 *
 * Output: one line per case and thread count, `bench=engine
 * case=<model>-float threads=<n> img_s=... gmac_s=... images=... batch=...`
 * (`-reference` with --reference), `case=<model>-fake-<preset> ...
 * ratio_float=...` and `case=<model>-int-<acc> ... ratio_float=...`;
 * nothing else on stdout. */
#include "sim/sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void fill(float *v, int64_t n, float a, uint64_t stream)
{
    for (int64_t i = 0; i < n; i++)
        v[i] = (float)((2.0 * qs_rng_uniform(2024, stream, (uint64_t)i) - 1.0) * a);
}

/* The images, normalized for g: the dataset if it opens and fits, else random. */
static qs_tensor_t *images(const qs_graph_t *g, const char *spec, int64_t n)
{
    qs_dataset_t *d = NULL;
    int64_t shape[4] = {n, g->in_c, g->in_h, g->in_w};
    qs_tensor_t *x = qs_tensor_create(QS_F32, 4, shape);
    if (!x)
        return NULL;
    if (qs_dataset_open(spec, &d) == QS_OK && d->c == g->in_c && d->h == g->in_h && d->w == g->in_w) {
        const int64_t chw = g->in_c * g->in_h * g->in_w;
        for (int64_t first = 0; first < n; first += d->n) {
            int64_t count = n - first < d->n ? n - first : d->n;
            qs_tensor_t v = *x;
            v.shape[0] = count;
            v.size = count * chw;
            v.data = qs_f32(x) + first * chw;
            if (qs_dataset_batch(d, g, 0, NULL, count, &v, NULL) < 0) {
                fill(qs_f32(x), x->size, 1.0f, 99);
                break;
            }
        }
    } else {
        fill(qs_f32(x), x->size, 1.0f, 99);
    }
    qs_dataset_free(d);
    qs_clear_error();
    return x;
}

/* One forward pass over the images, through the float, fake-quant or integer engine. */
typedef struct {
    qs_engine_t *e;
    qs_fake_t *f;
    qs_int_t *i;
} runner_t;

static int forward(runner_t *r, const qs_tensor_t *v, int64_t first)
{
    const qs_tensor_t *y;
    if (r->e)
        return qs_engine_forward(r->e, v, &y);
    return r->f ? qs_fake_forward_at(r->f, v, first, &y) : qs_int_forward(r->i, v, first, &y);
}

/* The best of reps passes over x after one warm-up pass, in seconds; < 0 on error. */
static double time_runs(runner_t *r, const qs_tensor_t *x, int64_t batch, int reps)
{
    const int64_t n = x->shape[0], chw = x->shape[1] * x->shape[2] * x->shape[3];
    double best = INFINITY;
    for (int k = 0; k <= reps; k++) { /* pass 0 warms up */
        double t0 = qs_now_s();
        for (int64_t first = 0; first < n; first += batch) {
            int64_t count = n - first < batch ? n - first : batch;
            qs_tensor_t v = *x;
            v.shape[0] = count;
            v.size = count * chw;
            v.data = qs_f32(x) + first * chw;
            if (forward(r, &v, first) < 0)
                return -1.0;
        }
        double t = qs_now_s() - t0;
        if (k > 0 && t < best)
            best = t;
    }
    return best;
}

static void report(const char *name, const char *kind, const qs_graph_t *g, int threads, int64_t n, int64_t batch,
                   double t, double ratio)
{
    double img_s = (double)n / t;
    printf("bench=engine case=%s-%s threads=%d img_s=%.0f gmac_s=%.2f images=%lld batch=%lld", name, kind, threads,
           img_s, img_s * (double)qs_graph_macs(g) * 1e-9, (long long)n, (long long)batch);
    if (ratio > 0.0)
        printf(" ratio_float=%.3f", ratio);
    printf("\n");
    fflush(stdout);
}

static int bench(const char *name, const qs_graph_t *g, const qs_tensor_t *x, int64_t batch, int threads, int reps,
                 bool reference)
{
    qs_pool_t *pool = qs_pool_create(threads);
    qs_engine_opts_t o = {pool, reference};
    runner_t r = {NULL, NULL, NULL};
    if (!pool || qs_engine_create(g, &o, &r.e) < 0) {
        qs_pool_free(pool);
        return -1;
    }
    double t = time_runs(&r, x, batch, reps);
    if (t > 0.0)
        report(name, reference ? "reference" : "float", g, threads, x->shape[0], batch, t, 0.0);
    qs_engine_free(r.e);
    qs_pool_free(pool);
    return t > 0.0 ? 0 : -1;
}

/* Calibration images: the training split if it fits the model, else random pixels. */
static qs_dataset_t *calib_data(const qs_graph_t *g)
{
    qs_dataset_t *d = NULL;
    if (qs_dataset_open("fmnist:train", &d) == QS_OK && d->c == g->in_c && d->h == g->in_h && d->w == g->in_w)
        return d;
    qs_dataset_free(d);
    qs_clear_error();
    if (!(d = calloc(1, sizeof *d)))
        return NULL;
    d->n = 1000;
    d->c = g->in_c;
    d->h = g->in_h;
    d->w = g->in_w;
    d->num_classes = g->num_classes;
    snprintf(d->source, sizeof d->source, "random");
    int64_t size = d->n * d->c * d->h * d->w;
    d->u8 = qs_alloc((size_t)size);
    d->labels = qs_alloc((size_t)d->n * sizeof *d->labels);
    if (!d->u8 || !d->labels) {
        qs_dataset_free(d);
        return NULL;
    }
    for (int64_t i = 0; i < size; i++)
        d->u8[i] = (uint8_t)(qs_rng_u32(2024, 7, (uint64_t)i) >> 24);
    memset(d->labels, 0, (size_t)d->n * sizeof *d->labels);
    return d;
}

/* A quantized engine against the float engine on the same folded graph:
 * fake-quant with the preset (acc NULL), or the integer engine at W8A8 with
 * the accumulator acc. */
static int bench_quant(const char *name, const char *preset, const char *acc, const qs_graph_t *g,
                       const qs_tensor_t *x, int64_t batch, int threads, int reps)
{
    qs_qconfig_t c;
    qs_qnet_t *q = NULL;
    qs_dataset_t *d = NULL;
    qs_pool_t *pool = qs_pool_create(threads);
    qs_engine_opts_t o = {pool, false};
    runner_t rf = {NULL, NULL, NULL}, rq = {NULL, NULL, NULL};
    int rc = -1;
    qs_calib_opts_t co;
    qs_calib_opts_default(&co);
    co.pool = pool;
    qs_int_config_t ic;
    qs_int_config_default(&ic);
    if (acc && qs_acc_parse(acc, "--int", &ic.acc) < 0)
        goto done;
    if (pool && qs_qconfig_preset(&c, acc ? "w8a8" : preset, "--fake") >= 0 && qs_qnet_create(g, &c, &q) >= 0 &&
        (d = calib_data(g)) && qs_qnet_calibrate(q, d, &co, NULL) >= 0 && qs_engine_create(q->g, &o, &rf.e) >= 0 &&
        (acc ? qs_int_create(q, &ic, &o, &rq.i) : qs_fake_create(q, &o, NULL, &rq.f)) >= 0) {
        double tf = time_runs(&rf, x, batch, reps), tq = time_runs(&rq, x, batch, reps);
        if (tf > 0.0 && tq > 0.0) {
            char kind[96];
            if (acc)
                snprintf(kind, sizeof kind, "int-%s", acc);
            else
                snprintf(kind, sizeof kind, "fake-%s", preset);
            report(name, kind, g, threads, x->shape[0], batch, tq, tq / tf);
            rc = 0;
        }
    }
done:
    qs_int_free(rq.i);
    qs_fake_free(rq.f);
    qs_engine_free(rf.e);
    qs_dataset_free(d);
    qs_qnet_free(q);
    qs_pool_free(pool);
    return rc;
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--model FILE.h5]... [--data SPEC] [--images N] [--batch B] [--reps R] [--threads N]... "
            "[--case ARCH] [--reference] [--fake PRESET|none]... [--int ACC|none]...\n",
            argv0);
    return 2;
}

int main(int argc, char **argv)
{
    const char *models[16], *fakes[8], *ints[8];
    int nfakes = 0, nints = 0;
    int nmodels = 0, nthreads = 0, threads[8];
    const char *data = "fmnist:test", *only = NULL;
    int64_t n = 10000, batch = 256;
    int reps = 3;
    bool reference = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc && nmodels < 16)
            models[nmodels++] = argv[++i];
        else if (!strcmp(argv[i], "--data") && i + 1 < argc)
            data = argv[++i];
        else if (!strcmp(argv[i], "--images") && i + 1 < argc)
            n = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc && nthreads < 8)
            threads[nthreads++] = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--case") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--reference"))
            reference = true;
        else if (!strcmp(argv[i], "--fake") && i + 1 < argc && nfakes < 8)
            fakes[nfakes++] = argv[++i];
        else if (!strcmp(argv[i], "--int") && i + 1 < argc && nints < 8)
            ints[nints++] = argv[++i];
        else
            return usage(argv[0]);
    }
    if (n < 1 || batch < 1 || reps < 1)
        return usage(argv[0]);
    if (nfakes == 0)
        fakes[nfakes++] = "w8a8";
    if (nfakes == 1 && !strcmp(fakes[0], "none"))
        nfakes = 0;
    if (nints == 0) {
        ints[nints++] = "int32";
        ints[nints++] = "int16,overflow=saturate";
        ints[nints++] = "int16,overflow=wrap";
    }
    if (nints == 1 && !strcmp(ints[0], "none"))
        nints = 0;
    if (nthreads == 0) {
        threads[0] = 1;
        threads[1] = 2;
        nthreads = 2;
    }
    const char *const *zoo = qs_zoo_names();
    int nzoo = 0;
    while (zoo[nzoo])
        nzoo++;
    int ncases = nmodels ? nmodels : nzoo;
    for (int c = 0; c < ncases; c++) {
        qs_graph_t *g = NULL;
        char name[QS_NAME_MAX];
        if (nmodels) {
            if (qs_model_load(models[c], &g) < 0) {
                fprintf(stderr, "bench/engine: %s\n", qs_last_error());
                return 1;
            }
            /* the case is the file's base name without .h5 */
            const char *b = strrchr(models[c], '/');
            snprintf(name, sizeof name, "%s", b ? b + 1 : models[c]);
            char *dot = strstr(name, ".h5");
            if (dot)
                *dot = '\0';
        } else {
            if (only && strcmp(only, zoo[c]) != 0)
                continue;
            if (qs_zoo_build(zoo[c], 1, &g) < 0) {
                fprintf(stderr, "bench/engine: %s\n", qs_last_error());
                return 1;
            }
            snprintf(name, sizeof name, "%s", zoo[c]);
        }
        qs_tensor_t *x = images(g, data, n);
        if (!x) {
            fprintf(stderr, "bench/engine: %s\n", qs_last_error());
            return 1;
        }
        for (int t = 0; t < nthreads; t++)
            if (bench(name, g, x, batch, threads[t], reps, reference) < 0) {
                fprintf(stderr, "bench/engine: %s: %s\n", name, qs_last_error());
                return 1;
            }
        for (int k = 0; k < nfakes && !reference; k++)
            for (int t = 0; t < nthreads; t++)
                if (bench_quant(name, fakes[k], NULL, g, x, batch, threads[t], reps) < 0) {
                    fprintf(stderr, "bench/engine: %s, fake-quant %s: %s\n", name, fakes[k], qs_last_error());
                    return 1;
                }
        for (int k = 0; k < nints && !reference; k++)
            for (int t = 0; t < nthreads; t++)
                if (bench_quant(name, NULL, ints[k], g, x, batch, threads[t], reps) < 0) {
                    fprintf(stderr, "bench/engine: %s, integer engine %s: %s\n", name, ints[k], qs_last_error());
                    return 1;
                }
        qs_tensor_free(x);
        qs_graph_free(g);
    }
    return 0;
}
