/* bench/cost.c — what pricing a configuration costs next to evaluating it.
 *
 * A sweep prices every configuration it evaluates, so the cost model must be
 * negligible next to the evaluation. This program times both on one network
 * in the same run: the model file argv[1] (default models/fmnist-dwsep.h5),
 * quantized as `quasar cost` does it — the W8A8 default configuration
 * (qs_qconfig_default), qs_qnet_create, no calibration (the cost depends on
 * formats and shapes only) — and then:
 *   qnet      qs_qnet_create itself (BN folding and weight quantization);
 *             for context only: evaluating a configuration needs it too
 *   workload  qs_qnet_workload(q, NULL, &w) and qs_workload_free
 *   price     qs_hw_cost on each shipped target (qs_hw_target_names), with
 *             qs_hw_cost_free, the target loaded once beforehand
 *   haq       the HAQ-style table of `quasar cost --table` on each target:
 *             every MAC layer (conv2d, linear) at every weight and activation
 *             width 1..8, each through qs_hw_cost_layer on a copy of the
 *             layer with its formats rewritten to "int<w>"/"int<a>"
 *   forward   the reference: the float engine (a pool of 1 thread, the BLAS
 *             path, as bench/engine.c runs it) on the loaded graph, one
 *             forward of 1 image and one of a batch of 256, on uniform random
 *             inputs (the time does not depend on the values)
 * Everything is single-threaded. Every time is the best of 5 passes after a
 * warm-up pass; a pass repeats the call R times (argv[2], default 2000), the
 * HAQ table and the 1-image forward max(1, R/20) times, the 256-image forward
 * max(1, R/200) times, and the per-call time is the pass's time over its
 * count.
 *
 * Output: one line per measurement, `bench=cost case=<case> threads=1
 * <metric>=<value> ...`; nothing else on stdout (errors go to stderr):
 *   case=forward-1, case=forward-256   us_call (one forward), us_image
 *   case=qnet, case=workload           us_call, ratio_forward1
 *   case=price-<target>                us_call (one qs_hw_cost), layers,
 *                                      ratio_forward1
 *   case=haq-<target>                  us_table (one whole table), calls,
 *                                      us_call (one qs_hw_cost_layer),
 *                                      ratio_forward1 (of the whole table)
 *   case=total                         price_us = workload + every target's
 *                                      qs_hw_cost, ratio_forward1 and
 *                                      ratio_forward256 (price_us over one
 *                                      forward of 1 and of 256 images)
 * Every ratio_* is a time over the reference's time in the same run: 0.01
 * means pricing takes 1% of one float forward of one image. An evaluation
 * runs thousands of images through the fake-quant engine, which is slower
 * than the float engine, so ratio_forward1 bounds the cost model's share of a
 * sweep from above by a wide margin. */
#include "quasar.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PASSES 5
#define HAQ_MAX_BITS 8

static volatile double sink; /* keeps results observable */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fail(const char *what)
{
    fprintf(stderr, "bench/cost: %s: %s\n", what, qs_last_error());
    return 1;
}

/* ---- the measured calls: each returns < 0 on error ------------------------------------------- */

typedef struct {
    const qs_graph_t *g;
    const qs_qconfig_t *cfg;
    const qs_qnet_t *q;
    const qs_workload_t *w;
    const qs_hw_target_t *t;
    const qs_hw_cost_opts_t *co;
    qs_engine_t *e;
    const qs_tensor_t *x;
} ctx_t;

static int do_qnet(const ctx_t *c)
{
    qs_qnet_t *q = NULL;
    if (qs_qnet_create(c->g, c->cfg, &q) < 0)
        return -1;
    sink = q->g->nnodes;
    qs_qnet_free(q);
    return 0;
}

static int do_workload(const ctx_t *c)
{
    qs_workload_t *w = NULL;
    if (qs_qnet_workload(c->q, NULL, &w) < 0)
        return -1;
    sink = (double)w->layer[0].macs;
    qs_workload_free(w);
    return 0;
}

static int do_price(const ctx_t *c)
{
    qs_hw_cost_t *r = NULL;
    if (qs_hw_cost(c->t, c->w, c->co, &r) < 0)
        return -1;
    sink = r->energy_j + r->latency_s;
    qs_hw_cost_free(r);
    return 0;
}

/* The table as cli/cmd_cost.c writes it, without the file: the layer's
 * signedness and everything but the formats' names and bits kept. */
static int do_haq(const ctx_t *c)
{
    double s = 0;
    for (int i = 0; i < c->w->nlayers; i++) {
        if (c->w->layer[i].macs <= 0)
            continue;
        for (int bw = 1; bw <= HAQ_MAX_BITS; bw++)
            for (int ba = 1; ba <= HAQ_MAX_BITS; ba++) {
                qs_wl_layer_t l = c->w->layer[i];
                snprintf(l.w.name, sizeof l.w.name, "int%d", bw);
                l.w.bits = bw;
                snprintf(l.x.name, sizeof l.x.name, "int%d", ba);
                l.x.bits = ba;
                qs_hw_layer_cost_t L;
                if (qs_hw_cost_layer(c->t, &l, c->co, &L) < 0)
                    return -1;
                s += L.energy_j + L.latency_s;
            }
    }
    sink = s;
    return 0;
}

static int do_forward(const ctx_t *c)
{
    const qs_tensor_t *y;
    if (qs_engine_forward(c->e, c->x, &y) < 0)
        return -1;
    sink = qs_f32(y)[0];
    return 0;
}

/* The best over PASSES passes (after one warm-up pass) of n calls, in seconds per call; < 0 on error. */
static double time_call(int (*fn)(const ctx_t *), const ctx_t *c, long n)
{
    double best = INFINITY;
    for (int p = 0; p <= PASSES; p++) { /* pass 0 warms up */
        double t0 = now_s();
        for (long k = 0; k < n; k++)
            if (fn(c) < 0)
                return -1.0;
        double t = (now_s() - t0) / (double)n;
        if (p > 0 && t < best)
            best = t;
    }
    return best;
}

static void fill(qs_tensor_t *x)
{
    float *v = qs_f32(x);
    for (int64_t i = 0; i < x->size; i++)
        v[i] = (float)(2.0 * qs_rng_uniform(2024, 99, (uint64_t)i) - 1.0);
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "models/fmnist-dwsep.h5";
    long reps = argc > 2 ? strtol(argv[2], NULL, 10) : 2000;
    if (argc > 3 || reps < 1) {
        fprintf(stderr, "usage: %s [MODEL.h5] [REPETITIONS]\n", argv[0]);
        return 2;
    }
    long reps_haq = reps / 20 > 0 ? reps / 20 : 1, reps_fwd1 = reps_haq;
    long reps_fwd256 = reps / 200 > 0 ? reps / 200 : 1;

    qs_graph_t *g = NULL;
    qs_qnet_t *q = NULL;
    qs_workload_t *w = NULL;
    qs_qconfig_t cfg;
    qs_qconfig_default(&cfg);
    if (qs_model_load(path, &g) < 0)
        return fail(path);
    if (qs_qnet_create(g, &cfg, &q) < 0)
        return fail("qs_qnet_create");
    if (qs_qnet_workload(q, NULL, &w) < 0)
        return fail("qs_qnet_workload");
    int mac_layers = 0;
    for (int i = 0; i < w->nlayers; i++)
        mac_layers += w->layer[i].macs > 0;

    /* the reference: the float engine on the loaded graph, one thread */
    qs_pool_t *pool = qs_pool_create(1);
    qs_engine_opts_t eo = {pool, false};
    ctx_t c = {g, &cfg, q, w, NULL, NULL, NULL, NULL};
    if (!pool || qs_engine_create(g, &eo, &c.e) < 0)
        return fail("qs_engine_create");
    int64_t s1[4] = {1, g->in_c, g->in_h, g->in_w}, s256[4] = {256, g->in_c, g->in_h, g->in_w};
    qs_tensor_t *x1 = qs_tensor_create(QS_F32, 4, s1), *x256 = qs_tensor_create(QS_F32, 4, s256);
    if (!x1 || !x256)
        return fail("qs_tensor_create");
    fill(x1);
    fill(x256);
    c.x = x1;
    double t_f1 = time_call(do_forward, &c, reps_fwd1);
    c.x = x256;
    double t_f256 = t_f1 > 0 ? time_call(do_forward, &c, reps_fwd256) : -1.0;
    if (t_f1 < 0 || t_f256 < 0)
        return fail("qs_engine_forward");
    printf("bench=cost case=forward-1 threads=1 us_call=%.2f us_image=%.2f mmac_image=%.3f\n", t_f1 * 1e6, t_f1 * 1e6,
           (double)qs_graph_macs(g) * 1e-6);
    printf("bench=cost case=forward-256 threads=1 us_call=%.1f us_image=%.2f\n", t_f256 * 1e6, t_f256 / 256 * 1e6);
    fflush(stdout);

    double t_q = time_call(do_qnet, &c, reps_haq);
    if (t_q < 0)
        return fail("qs_qnet_create");
    printf("bench=cost case=qnet threads=1 us_call=%.2f ratio_forward1=%.4f\n", t_q * 1e6, t_q / t_f1);
    double t_w = time_call(do_workload, &c, reps);
    if (t_w < 0)
        return fail("qs_qnet_workload");
    printf("bench=cost case=workload threads=1 us_call=%.3f layers=%d ratio_forward1=%.5f\n", t_w * 1e6, w->nlayers,
           t_w / t_f1);
    fflush(stdout);

    char **names = NULL;
    if (qs_hw_target_names(&names) < 0)
        return fail("qs_hw_target_names");
    if (!names[0]) {
        fprintf(stderr, "bench/cost: no shipped targets found (set $QUASAR_TARGETS)\n");
        return 1;
    }
    qs_hw_cost_opts_t co;
    qs_hw_cost_opts_default(&co);
    c.co = &co;
    double t_price = t_w;
    for (int i = 0; names[i]; i++) {
        qs_hw_target_t *t = NULL;
        if (qs_hw_target_find(names[i], &t) < 0)
            return fail(names[i]);
        c.t = t;
        double t_c = time_call(do_price, &c, reps);
        if (t_c < 0)
            return fail(names[i]);
        t_price += t_c;
        printf("bench=cost case=price-%s threads=1 us_call=%.3f layers=%d ratio_forward1=%.5f\n", names[i], t_c * 1e6,
               w->nlayers, t_c / t_f1);
        double t_h = time_call(do_haq, &c, reps_haq);
        if (t_h < 0)
            return fail(names[i]);
        int calls = mac_layers * HAQ_MAX_BITS * HAQ_MAX_BITS;
        printf("bench=cost case=haq-%s threads=1 us_table=%.1f calls=%d us_call=%.3f ratio_forward1=%.4f\n", names[i],
               t_h * 1e6, calls, calls ? t_h * 1e6 / calls : 0.0, t_h / t_f1);
        fflush(stdout);
        qs_hw_target_free(t);
    }
    printf("bench=cost case=total threads=1 price_us=%.3f forward1_us=%.2f forward256_us=%.1f "
           "ratio_forward1=%.5f ratio_forward256=%.7f\n",
           t_price * 1e6, t_f1 * 1e6, t_f256 * 1e6, t_price / t_f1, t_price / t_f256);

    qs_hw_names_free(names);
    qs_tensor_free(x1);
    qs_tensor_free(x256);
    qs_engine_free(c.e);
    qs_pool_free(pool);
    qs_workload_free(w);
    qs_qnet_free(q);
    qs_graph_free(g);
    return 0;
}
