/* bench/sweep.c — what a sweep run costs, against one float evaluation of
 * the same images.
 *
 * The cases run real sweeps (qs_exp_sweep, each into a fresh folder under
 * $TMPDIR, no figures) on the model argv[1] (default models/fmnist-dwsep.h5),
 * calibrating on 1000 Fashion-MNIST training images and evaluating on the
 * 10000 test images, as the default spec does:
 *   fake      the default spec's fake-quant points: w_bits {2,3,4,6,8} x
 *             a_bits {4,8} x w_gran {tensor,channel} x w_range {minmax,mse}
 *             (40 runs + the float baseline), not priced
 *   int       its integer-engine points: W8A8, acc {int12 .. int32} (7 runs + baseline)
 *   demo      experiments/specs/demo.yaml itself (every point on every target)
 * each with 1 and 2 jobs and sharing on, and fake and int with 2 jobs and
 * sharing off (--no-share: every run calibrates and computes its float
 * reference again). The reference, measured in the same run: one float
 * evaluation (qs_eval) of the same 10000 images on 1 thread.
 *
 * Output: one line per case, `bench=sweep case=<case> threads=<jobs>
 * share=<0|1> runs=<n> seconds=<s> runs_s=<r> s_run=<s> ratio_float_eval=<x>`
 * where s_run = seconds / runs (the float baseline runs are counted) and
 * ratio_float_eval = s_run over one float evaluation on 1 thread; then
 * `case=sharing` lines with speedup = no-share seconds / share seconds.
 * Nothing else on stdout. */
#include "quasar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *fake_axes = "axes:\n  w_bits: [2, 3, 4, 6, 8]\n  a_bits: [4, 8]\n  w_gran: [tensor, channel]\n"
                               "  w_range: [minmax, mse]\n";
static const char *int_axes = "fixed: {engine: int, preset: w8a8}\n"
                              "axes:\n  acc: [int12, int14, int16, int18, int20, int24, int32]\n";

static int run_case(const char *name, const char *text, const char *path, int jobs, bool share, double ref,
                    double *seconds)
{
    qs_exp_spec_t *s = NULL;
    int rc = text ? qs_exp_spec_parse(text, strlen(text), name, &s) : qs_exp_spec_load(path, &s);
    if (rc < 0) {
        fprintf(stderr, "bench/sweep: %s\n", qs_last_error());
        return rc;
    }
    char dir[512];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/quasar-bench-sweep-%d-%s-%d-%d", tmp && *tmp ? tmp : "/tmp", (int)getpid(), name,
             jobs, share);
    qs_exp_sweep_opts_t o;
    qs_exp_sweep_opts_default(&o);
    o.jobs = jobs;
    o.share = share;
    o.force = true;
    o.figures = false;
    o.output = dir;
    qs_exp_sweep_report_t rep;
    rc = qs_exp_sweep(s, &o, &rep);
    qs_exp_spec_free(s);
    if (rc < 0) {
        fprintf(stderr, "bench/sweep: %s: %s\n", name, qs_last_error());
        return rc;
    }
    int runs = rep.ran + rep.failed + rep.skipped;
    printf("bench=sweep case=%s threads=%d share=%d runs=%d seconds=%.3f runs_s=%.3f s_run=%.4f "
           "ratio_float_eval=%.3f\n",
           name, jobs, share ? 1 : 0, runs, rep.seconds, runs / rep.seconds, rep.seconds / runs,
           rep.seconds / runs / ref);
    fflush(stdout);
    *seconds = rep.seconds;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench/sweep: could not remove %s\n", dir);
    return QS_OK;
}

int main(int argc, char **argv)
{
    const char *model = argc > 1 ? argv[1] : "models/fmnist-dwsep.h5";
    const char *demo = argc > 2 ? argv[2] : "experiments/specs/demo.yaml";
    qs_graph_t *g = NULL;
    qs_dataset_t *d = NULL;
    if (qs_model_load(model, &g) < 0 || qs_dataset_open("fmnist:test", &d) < 0) {
        fprintf(stderr, "bench/sweep: %s\n", qs_last_error());
        return 1;
    }
    qs_eval_t ev;
    double best = 1e30;
    for (int i = 0; i < 2; i++) { /* the reference: the better of two float evaluations on 1 thread */
        if (qs_eval(g, d, NULL, 256, NULL, &ev) < 0) {
            fprintf(stderr, "bench/sweep: %s\n", qs_last_error());
            return 1;
        }
        if (ev.seconds < best)
            best = ev.seconds;
    }
    printf("bench=sweep case=float-eval threads=1 images=%lld seconds=%.3f\n", (long long)ev.images, best);
    qs_graph_free(g);
    qs_dataset_free(d);
    char head[1200];
    snprintf(head, sizeof head, "models: [%s]\ncalibration: {images: 1000}\nevaluation: {images: 10000}\n", model);
    char fake[2000], integer[2000];
    snprintf(fake, sizeof fake, "%s%s", head, fake_axes);
    snprintf(integer, sizeof integer, "%s%s", head, int_axes);
    double t[8] = {0};
    if (run_case("fake", fake, NULL, 1, true, best, &t[0]) < 0 || run_case("fake", fake, NULL, 2, true, best, &t[1]) < 0 ||
        run_case("fake", fake, NULL, 2, false, best, &t[2]) < 0 ||
        run_case("int", integer, NULL, 1, true, best, &t[3]) < 0 ||
        run_case("int", integer, NULL, 2, true, best, &t[4]) < 0 ||
        run_case("int", integer, NULL, 2, false, best, &t[5]) < 0 ||
        run_case("demo", NULL, demo, 1, true, best, &t[6]) < 0 || run_case("demo", NULL, demo, 2, true, best, &t[7]) < 0)
        return 1;
    printf("bench=sweep case=sharing-fake threads=2 speedup=%.3f\n", t[2] / t[1]);
    printf("bench=sweep case=sharing-int threads=2 speedup=%.3f\n", t[5] / t[4]);
    printf("bench=sweep case=jobs-demo threads=2 speedup=%.3f\n", t[6] / t[7]);
    return 0;
}
