/* experiments/output.c — what a sweep leaves in its output folder besides
 * the journal: results.h5, rebuilt from the journal in plan order (so the
 * rows do not depend on which thread finished first), with the statistics
 * over repeats and the provenance; and the spec's figures, drawn from it. */
#define _GNU_SOURCE /* qsort_r */
#include "config.h"

#include "experiments/exp_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int copy_row(const qs_res_table_t *from, int row, qs_res_table_t *to)
{
    int r = qs_res_table_add_row(to);
    if (r < 0)
        return r;
    for (int c = 0; c < from->ncols; c++) {
        const char *v = qs_res_table_get(from, row, c);
        if (v && qs_res_table_set(to, r, from->col[c], v) < 0)
            return qs_last_status();
    }
    return r;
}

/* Metric columns of t (registry names). */
static int metric_cols(const qs_res_table_t *t, const char **names, int max)
{
    int n = 0;
    for (int c = 0; c < t->ncols && n < max; c++)
        if (qs_metric_find(t->col[c]) && qs_res_table_numeric(t, c))
            names[n++] = t->col[c];
    return n;
}

/* With repeats, every row gets M_mean and M_std of its point for each metric M. */
static int add_repeat_stats(qs_res_table_t *runs)
{
    const char *m[64];
    int nm = metric_cols(runs, m, 64);
    char *names[64];
    for (int i = 0; i < nm; i++)
        names[i] = strdup(m[i]); /* the table may move its column names as it grows */
    qs_res_table_t *agg = NULL;
    int rc = qs_res_aggregate(runs, "point", (const char *const *)names, nm, &agg);
    int pc = qs_res_table_col(runs, "point"), apc = agg ? qs_res_table_col(agg, "point") : -1;
    for (int r = 0; rc >= 0 && r < runs->nrows; r++) {
        const char *pt = qs_res_table_get(runs, r, pc);
        for (int a = 0; pt && a < agg->nrows; a++) {
            if (strcmp(qs_res_table_get(agg, a, apc), pt) != 0)
                continue;
            for (int i = 0; i < nm && rc >= 0; i++) {
                char col[96], sd[96];
                snprintf(col, sizeof col, "%s_mean", names[i]);
                snprintf(sd, sizeof sd, "%s_std", names[i]);
                int c1 = qs_res_table_col(agg, names[i]), c2 = qs_res_table_col(agg, sd);
                if ((c1 >= 0 && qs_res_table_set(runs, r, col, qs_res_table_get(agg, a, c1)) < 0) ||
                    (c2 >= 0 && qs_res_table_set(runs, r, sd, qs_res_table_get(agg, a, c2)) < 0))
                    rc = qs_last_status();
            }
            break;
        }
    }
    for (int i = 0; i < nm; i++)
        free(names[i]);
    qs_res_table_free(agg);
    return rc < 0 ? rc : QS_OK;
}

static void provenance(const qs_exp_spec_t *s, const qs_exp_plan_t *p, int jobs, qs_res_record_t *prov)
{
    char buf[2200];
    qs_res_record_set(prov, "quasar_version", PACKAGE_VERSION);
    qs_res_record_set(prov, "spec_name", s->name);
    qs_res_record_set(prov, "spec_path", s->path);
    qs_res_record_set(prov, "spec", s->text ? s->text : "");
    for (int i = 0; i < s->nmodels; i++) {
        char key[32];
        snprintf(key, sizeof key, "model%d", i);
        snprintf(buf, sizeof buf, "%s fnv1a64=%s", s->model[i], p->model_sum[i]);
        qs_res_record_set(prov, key, buf);
    }
    snprintf(buf, sizeof buf, "%s, %lld images, seed %llu (+ repeat)", s->calib_data, (long long)s->calib_images,
             (unsigned long long)s->calib_seed);
    qs_res_record_set(prov, "calibration", buf);
    snprintf(buf, sizeof buf, "%s, %lld images, seed %llu", s->eval_data, (long long)s->eval_images,
             (unsigned long long)s->eval_seed);
    qs_res_record_set(prov, "evaluation", buf);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    qs_res_record_set(prov, "date", buf);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    qs_res_record_set(prov, "host", host);
    snprintf(buf, sizeof buf, "%d", jobs);
    qs_res_record_set(prov, "jobs", buf);
}

typedef struct {
    const qs_res_table_t *t;
    int col;
} sort_ctx_t;

static int by_run_hash(const void *a, const void *b, void *ctx)
{
    const sort_ctx_t *c = ctx;
    const char *x = qs_res_table_get(c->t, *(const int *)a, c->col), *y = qs_res_table_get(c->t, *(const int *)b, c->col);
    return strcmp(x ? x : "", y ? y : "");
}

/* The journal row of hash h, by binary search over by_hash; -1 if absent. */
static int find_run(const qs_res_table_t *t, int col, const int *by_hash, int n, const char *h)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const char *v = qs_res_table_get(t, by_hash[mid], col);
        int c = strcmp(v ? v : "", h);
        if (c == 0)
            return by_hash[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

int qs_exp_rebuild_plan(const qs_exp_spec_t *s, const char *out, const qs_exp_plan_t *p, int jobs)
{
    char jpath[1100], hpath[1100];
    snprintf(jpath, sizeof jpath, "%s/journal.tsv", out);
    snprintf(hpath, sizeof hpath, "%s/results.h5", out);
    qs_res_table_t *jr = NULL, *jl = NULL, *runs = qs_res_table_create(), *layers = qs_res_table_create();
    qs_res_record_t prov;
    qs_res_record_init(&prov);
    int rc = runs && layers ? qs_res_journal_read(jpath, &jr, &jl) : qs_error(QS_ERR_NOMEM, "out of memory");
    int jrun = jr ? qs_res_table_col(jr, "run") : -1, lrun = jl ? qs_res_table_col(jl, "run") : -1;
    const int nj = jr && jrun >= 0 ? jr->nrows : 0;
    /* the journal's runs sorted by hash, and each one's layer rows: the reader gives a run's
     * layers together, in the order of the runs, so one pass finds every range */
    int *by_hash = malloc(((size_t)nj + 1) * sizeof *by_hash), *lfirst = malloc(((size_t)nj + 1) * sizeof *lfirst),
        *lend = malloc(((size_t)nj + 1) * sizeof *lend);
    if (rc >= 0 && (!by_hash || !lfirst || !lend))
        rc = qs_error(QS_ERR_NOMEM, "out of memory");
    for (int r = 0, l = 0; rc >= 0 && r < nj; r++) {
        by_hash[r] = r;
        const char *h = qs_res_table_get(jr, r, jrun);
        lfirst[r] = l;
        while (jl && lrun >= 0 && l < jl->nrows && h && strcmp(qs_res_table_get(jl, l, lrun), h) == 0)
            l++;
        lend[r] = l;
    }
    if (rc >= 0) {
        sort_ctx_t sc = {jr, jrun};
        qsort_r(by_hash, (size_t)nj, sizeof *by_hash, by_run_hash, &sc);
    }
    /* the journal may hold runs of an earlier version of the spec: the store holds this plan's */
    for (int i = 0; rc >= 0 && i < p->nruns; i++) {
        int r = find_run(jr, jrun, by_hash, nj, p->run[i].hash);
        if (r < 0)
            continue;
        /* the sweep as the spec names it now (a run reached by two sweeps is the first's) */
        const char *sweep = p->run[i].block >= 0 ? s->block[p->run[i].block].name : "baseline";
        if ((rc = copy_row(jr, r, runs)) >= 0)
            rc = qs_res_table_set(runs, rc, "sweep", sweep);
        for (int l = lfirst[r]; rc >= 0 && l < lend[r]; l++)
            if ((rc = copy_row(jl, l, layers)) >= 0)
                rc = qs_res_table_set(layers, rc, "sweep", sweep);
    }
    free(by_hash);
    free(lfirst);
    free(lend);
    if (rc >= 0 && s->repeats > 1)
        rc = add_repeat_stats(runs);
    if (rc >= 0) {
        provenance(s, p, jobs, &prov);
        rc = qs_res_store_write(hpath, runs, layers, &prov);
    }
    qs_res_record_clear(&prov);
    qs_res_table_free(jr);
    qs_res_table_free(jl);
    qs_res_table_free(runs);
    qs_res_table_free(layers);
    return rc < 0 ? rc : QS_OK;
}

int qs_exp_rebuild(const qs_exp_spec_t *s, const char *output)
{
    qs_exp_plan_t *p = NULL;
    int rc = qs_exp_plan_create(s, &p);
    if (rc >= 0)
        rc = qs_exp_rebuild_plan(s, output && *output ? output : s->output, p, 1);
    qs_exp_plan_free(p);
    return rc;
}

int qs_exp_draw_figures(const qs_exp_spec_t *s, const char *out, qs_exp_sweep_report_t *rep)
{
    char hpath[1100], dir[1100];
    snprintf(hpath, sizeof hpath, "%s/results.h5", out);
    snprintf(dir, sizeof dir, "%s/figures", out);
    qs_res_table_t *runs = NULL, *layers = NULL;
    int rc = qs_res_store_read(hpath, &runs, &layers, NULL);
    if (rc < 0)
        return rc;
    qs_exp_figure_t dflt;
    const qs_exp_figure_t *figs = s->figure;
    int nfig = s->nfigures;
    if (nfig == 0 && qs_res_table_col(runs, "energy_j") >= 0) {
        /* no figures asked for: the accuracy/energy trade-off on each target */
        memset(&dflt, 0, sizeof dflt);
        snprintf(dflt.name, sizeof dflt.name, "pareto-top1-vs-energy_j");
        snprintf(dflt.kind, sizeof dflt.kind, "pareto");
        snprintf(dflt.x, sizeof dflt.x, "energy_j");
        snprintf(dflt.y, sizeof dflt.y, "top1");
        snprintf(dflt.group_by, sizeof dflt.group_by, "target");
        snprintf(dflt.format, sizeof dflt.format, "png");
        figs = &dflt;
        nfig = 1;
    }
    if (nfig > 0 && mkdir(dir, 0777) < 0 && access(dir, F_OK) != 0)
        rc = qs_error(QS_ERR_IO, "%s: cannot create the folder", dir);
    rep->gnuplot = qs_res_have_gnuplot();
    for (int i = 0; i < nfig && rc >= 0; i++) {
        const qs_exp_figure_t *f = &figs[i];
        qs_plot_t pl;
        memset(&pl, 0, sizeof pl);
        if (qs_plot_kind_parse(f->kind, &pl.kind) < 0) {
            rc = qs_last_status();
            break;
        }
        pl.x = f->x;
        pl.y = f->y;
        pl.z = f->z[0] ? f->z : NULL;
        pl.group_by = f->group_by[0] ? f->group_by : NULL;
        pl.where = f->where[0] ? f->where : NULL;
        pl.title = f->title[0] ? f->title : NULL;
        pl.format = f->format[0] ? f->format : "png";
        /* per-layer figures read the layers table */
        const qs_res_table_t *t = qs_res_table_col(runs, f->x) < 0 && qs_res_table_col(layers, f->x) >= 0 ? layers : runs;
        char base[1400];
        snprintf(base, sizeof base, "%s/%s", dir, f->name);
        bool drawn = false;
        rc = qs_res_plot(t, &pl, base, &drawn);
        if (rc < 0) {
            qs_error_context("%s: figure '%s': ", s->path[0] ? s->path : s->name, f->name);
            break;
        }
        if (rep->nfigures < 16)
            snprintf(rep->figure[rep->nfigures++], sizeof rep->figure[0], "%s.%s", base, drawn ? pl.format : "gp");
    }
    qs_res_table_free(runs);
    qs_res_table_free(layers);
    return rc;
}
