/* cli/cmd_sweep.c — `quasar sweep SPEC`: runs an experiment spec
 * (docs/spec.md, "Experiment specs") with progress on stderr, and stops
 * cleanly on Ctrl-C after keeping what finished. */
#include "cli/cli.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void qs_help_sweep(FILE *out)
{
    fputs("usage: quasar sweep SPEC [--jobs N] [--force] [-o DIR] [--no-share] [--no-figures] [--dry-run]\n"
          "\n"
          "Runs every point of the experiment spec SPEC (docs/spec.md, \"Experiment specs\"): each\n"
          "network is quantized, calibrated, evaluated with its engine and priced on its target. Every\n"
          "finished run is appended to DIR/journal.tsv before it counts as done; DIR/results.h5 is\n"
          "rebuilt from the journal at the end, and the spec's figures are drawn into DIR/figures.\n"
          "Running the spec again skips the runs the journal already has, so an interrupted sweep\n"
          "(Ctrl-C, a crash, kill -9) resumes where it stopped.\n"
          "\n"
          "  --jobs N       runs at once, each on one thread (default 1)\n"
          "  --force        run again the runs the journal already has\n"
          "  -o DIR         the output folder (default: the spec's output, else out/NAME)\n"
          "  --no-share     recompute calibrations and float references for every run (slower;\n"
          "                 the results are the same)\n"
          "  --no-figures   write results.h5 but draw no figures\n"
          "  --dry-run      print the runs the spec expands into and exit\n"
          "\n"
          "Progress (runs done/total, rate, ETA, best top-1 so far) goes to stderr: one updating line\n"
          "on a terminal, plain lines otherwise. Ctrl-C stops starting runs; a second Ctrl-C quits.\n",
          out);
}

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
    signal(SIGINT, SIG_DFL); /* a second Ctrl-C quits at once */
}

typedef struct {
    bool tty;
    double last;
    int64_t last_done;
} prog_t;

static int on_progress(const qs_progress_t *p, void *user)
{
    prog_t *g = user;
    double rate = p->elapsed_s > 0 ? (double)p->done / p->elapsed_s : 0;
    double eta = rate > 0 ? (double)(p->total - p->done) / rate : 0;
    bool last = p->done >= p->total;
    if (g->tty) {
        fprintf(stderr, "\rsweep: %lld/%lld runs, %.2f runs/s, ETA %.0f s%s%s\033[K%s", (long long)p->done,
                (long long)p->total, rate, eta, p->detail ? ", " : "", p->detail ? p->detail : "", last ? "\n" : "");
    } else if (last || qs_now_s() - g->last >= 10.0 || (p->done - g->last_done) * 10 >= p->total) {
        /* a log: a line every 10% or 10 s */
        fprintf(stderr, "sweep: %lld/%lld runs, %.2f runs/s, ETA %.0f s%s%s\n", (long long)p->done,
                (long long)p->total, rate, eta, p->detail ? ", " : "", p->detail ? p->detail : "");
        g->last = qs_now_s();
        g->last_done = p->done;
    }
    return interrupted;
}

static int dry_run(const qs_exp_spec_t *s)
{
    qs_exp_plan_t *p = NULL;
    if (qs_exp_plan_create(s, &p) < 0)
        return qs_cli_fail(QS_EXIT_RUNTIME);
    for (int i = 0; i < p->nruns; i++) {
        const qs_exp_run_t *r = &p->run[i];
        const char *model = strrchr(s->model[r->model], '/') ? strrchr(s->model[r->model], '/') + 1 : s->model[r->model];
        printf("%s %-10s %s", r->hash, r->block >= 0 ? s->block[r->block].name : "baseline",
               r->skipped ? "skipped" : "run");
        if (s->nmodels > 1)
            printf(" model=%s", model);
        for (size_t f = 0; f < qs_exp_field_count(); f++)
            if (r->value[f][0] && (r->set[f] || f == 0))
                printf(" %s=%s", qs_exp_field_at(f)->name, r->value[f]);
        if (s->repeats > 1)
            printf(" repeat=%d", r->repeat);
        if (r->skipped)
            printf(" (%s)", r->reason);
        putchar('\n');
    }
    printf("%d runs\n", p->nruns);
    qs_exp_plan_free(p);
    return QS_EXIT_OK;
}

int qs_cmd_sweep(int argc, char **argv)
{
    const char *spec = NULL, *v;
    qs_exp_sweep_opts_t o;
    qs_exp_sweep_opts_default(&o);
    bool dry = false;
    for (int i = 1; i < argc; i++) {
        int m;
        if ((m = qs_cli_opt(argc, argv, &i, "--jobs", &v)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            char *end;
            long j = strtol(v, &end, 10);
            if (*end || j < 1 || j > 256)
                return qs_cli_error(QS_EXIT_USAGE, "--jobs: expected 1..256, got '%s'", v);
            o.jobs = (int)j;
        } else if ((m = qs_cli_opt(argc, argv, &i, "-o", &v)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            o.output = v;
        } else if (strcmp(argv[i], "--force") == 0) {
            o.force = true;
        } else if (strcmp(argv[i], "--no-share") == 0) {
            o.share = false;
        } else if (strcmp(argv[i], "--no-figures") == 0) {
            o.figures = false;
        } else if (strcmp(argv[i], "--dry-run") == 0) {
            dry = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            qs_help_sweep(stdout);
            return QS_EXIT_OK;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return qs_cli_error(QS_EXIT_USAGE, "sweep: unknown option '%s' (see quasar sweep --help)", argv[i]);
        } else if (!spec) {
            spec = argv[i];
        } else {
            return qs_cli_error(QS_EXIT_USAGE, "sweep: one SPEC at a time (got '%s' and '%s')", spec, argv[i]);
        }
    }
    if (!spec)
        return qs_cli_error(QS_EXIT_USAGE, "sweep: no SPEC (usage: quasar sweep SPEC [--jobs N] [--force] [-o DIR])");
    qs_exp_spec_t *s = NULL;
    if (qs_exp_spec_load(spec, &s) < 0)
        return qs_cli_fail(QS_EXIT_RUNTIME);
    if (dry) {
        int code = dry_run(s);
        qs_exp_spec_free(s);
        return code;
    }
    prog_t pg = {isatty(2) != 0, 0, 0};
    qs_progress_cb_t cb = {on_progress, &pg, 0};
    o.progress = &cb;
    o.cancel = &interrupted;
    signal(SIGINT, on_sigint);
    qs_exp_sweep_report_t rep;
    int rc = qs_exp_sweep(s, &o, &rep);
    signal(SIGINT, SIG_DFL);
    int code = QS_EXIT_OK;
    if (rc < 0)
        code = qs_cli_fail(rc == QS_ERR_INTERRUPTED ? 130 : QS_EXIT_RUNTIME);
    /* a summary once runs were attempted (not when the spec or the folder was refused) */
    if (rep.total > 0 && (rc >= 0 || rep.ran + rep.skipped + rep.failed + rep.resumed > 0 || rep.interrupted)) {
        printf("sweep %s: %d runs (%d ran, %d skipped, %d failed, %d already in the journal) in %.1f s, "
               "%d calibrations, %d evaluations, %d jobs\n",
               s->name, rep.total, rep.ran, rep.skipped, rep.failed, rep.resumed, rep.seconds, rep.calibrations,
               rep.evaluations, o.jobs);
        if (access(rep.results, F_OK) == 0)
            printf("results  %s\njournal  %s/journal.tsv\n", rep.results, rep.output);
        for (int i = 0; i < rep.nfigures; i++)
            printf("figure   %s\n", rep.figure[i]);
        if (rep.nfigures > 0 && !rep.gnuplot)
            printf("gnuplot was not found: the figures' .dat and .gp files are written; install it with "
                   "`apt-get install gnuplot-nox`, then run `gnuplot FILE.gp` in %s/figures\n", rep.output);
    }
    qs_exp_spec_free(s);
    return code;
}
