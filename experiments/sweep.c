/* experiments/sweep.c — running a plan (docs/spec.md, "Running a sweep"):
 * the models, datasets, float references and targets are loaded once; the
 * runs that share an evaluation (equal quant and engine fields: they differ
 * only in their target) form a group that a worker thread takes whole, and
 * groups with equal quant fields share one calibrated network, calibrated
 * by the first group that needs it. Each run is priced on its target; each
 * finished run goes to the journal (the source of truth) before it counts
 * as done; results.h5 is rebuilt from the journal at the end, and the
 * spec's figures are drawn from it. */
#include "config.h"

#include "experiments/exp_internal.h"
#include "sim/dfq.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void qs_exp_sweep_opts_default(qs_exp_sweep_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->jobs = 1;
    o->share = true;
    o->figures = true;
}

/* ---- what every run reads: loaded once, read-only while runs execute ---- */

typedef struct {
    qs_graph_t *g;        /* as loaded */
    qs_evalset_t *eval;   /* the evaluation images and the folded float model's logits */
    char name[QS_NAME_MAX];
    int64_t params, macs;
} model_t;

typedef struct {
    char name[QS_EXP_VALUE_MAX];
    qs_hw_target_t *t;
} target_t;

/* A calibrated network that several groups (one per evaluation) use: the
 * first group to need it calibrates while the others wait; the last to
 * finish with it frees it. */
struct calib {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state;            /* 0: not started, 1: being calibrated, 2: done */
    int users;            /* groups still to use it */
    int nruns;            /* runs that share it (their time includes a share of it) */
    qs_qnet_t *q;
    int rc;
    char msg[QS_ERROR_MAX];
    double seconds;
    bool pruned;          /* the run's model is a pruned copy: these are its figures */
    int64_t params, macs, macs_nonzero;
    double density;
};

typedef struct {
    const qs_exp_spec_t *s;
    const qs_exp_sweep_opts_t *o;
    qs_exp_plan_t *plan;
    model_t *models;
    qs_dataset_t *calib, *evald;
    int ntargets;
    target_t *targets;
    const char *const *layers;
    /* the work: groups of run indices */
    int ngroups;
    int *group_start, *group_runs; /* group g: runs group_runs[group_start[g] .. group_start[g + 1]) */
    int ncalib;
    struct calib *calib_cache;   /* the calibrated networks, shared by the groups of equal quant settings */
    int *group_calib;            /* group -> its calibration */
    atomic_int next;
    atomic_int stop;
    qs_res_journal_t *journal;
    pthread_mutex_t mu;   /* progress and counters */
    int done, total, ran, failed, skipped, calibrations, evaluations;
    double best_top1;
    char best[64];
    qs_progress_cb_t *progress;
    int error;            /* a failure that stops the sweep (the journal could not be written) */
    qs_error_state_t err;
} sweep_t;

static const target_t *find_target(const sweep_t *w, const char *name)
{
    for (int i = 0; i < w->ntargets; i++)
        if (strcmp(w->targets[i].name, name) == 0)
            return &w->targets[i];
    return NULL;
}

/* ---- one run's record ---- */

static void set_num(qs_res_record_t *r, const char *metric, double v)
{
    /* metric names come from the registry: a name it does not know would be a column nothing documents */
    if (qs_metric_find(metric))
        qs_res_record_num(r, metric, v);
}

static void record_head(const sweep_t *w, const qs_exp_run_t *run, qs_res_record_t *r, const char *status,
                        const char *reason)
{
    qs_res_record_set(r, "run", run->hash);
    qs_res_record_set(r, "point", run->point);
    qs_res_record_set(r, "sweep", run->block >= 0 ? w->s->block[run->block].name : "baseline");
    qs_res_record_set(r, "status", status);
    if (reason && *reason)
        qs_res_record_set(r, "reason", reason);
    qs_res_record_set(r, "model", w->models[run->model].name);
    char buf[32];
    snprintf(buf, sizeof buf, "%d", run->repeat);
    qs_res_record_set(r, "repeat", buf);
    for (size_t f = 0; f < qs_exp_field_count(); f++)
        if (run->value[f][0])
            qs_res_record_set(r, qs_exp_field_at(f)->name, run->value[f]);
}

/* The spec's metrics list keeps only those (the bookkeeping cells stay). */
static void keep_metrics(const qs_exp_spec_t *s, qs_res_record_t *r)
{
    if (s->nmetrics == 0)
        return;
    int k = 0;
    for (int i = 0; i < r->n; i++) {
        bool keep = !qs_metric_find(r->key[i]) || strcmp(r->key[i], "seconds") == 0;
        for (int j = 0; j < s->nmetrics && !keep; j++)
            keep = strcmp(r->key[i], s->metric[j]) == 0;
        if (keep) {
            r->key[k] = r->key[i];
            r->val[k] = r->val[i];
            k++;
        } else {
            free(r->key[i]);
            free(r->val[i]);
        }
    }
    r->n = k;
}

/* ---- evaluation results shared inside a group ---- */

typedef struct {
    char key[17];
    int rc;                 /* < 0: the evaluation failed, msg says why */
    char msg[QS_ERROR_MAX];
    bool is_int;
    qs_qeval_t fq;
    qs_int_eval_t iq;
    qs_int_config_t icfg;
    double seconds;
} eval_t;

/* Asked between the batches of every calibration and evaluation. */
static int stop_cb(const qs_progress_t *p, void *user)
{
    (void)p;
    sweep_t *w = user;
    if (w->o->cancel && *w->o->cancel)
        atomic_store(&w->stop, 1);
    return atomic_load(&w->stop);
}

static void eval_free(eval_t *e)
{
    qs_qeval_free(&e->fq);
    qs_int_eval_free(&e->iq);
}

/* Evaluates run r of the calibrated network q. */
static void evaluate(sweep_t *w, const qs_exp_run_t *r, const qs_qnet_t *q, eval_t *e)
{
    memset(e, 0, sizeof *e);
    snprintf(e->key, sizeof e->key, "%s", r->engine_key);
    const model_t *m = &w->models[r->model];
    const qs_evalset_t *set = w->o->share ? m->eval : NULL;
    qs_progress_cb_t cb = {stop_cb, w, 0};
    double t0 = qs_now_s();
    e->is_int = strcmp(qs_exp_run_value(r, "engine"), "int") == 0;
    if (e->is_int) {
        int rc = qs_exp_apply_int(r, w->layers, w->s->nlayers, &e->icfg);
        if (rc >= 0 && strcmp(qs_exp_run_value(r, "arithmetic"), "target") == 0) {
            const target_t *t = find_target(w, qs_exp_run_value(r, "target"));
            qs_hw_cost_opts_t co;
            qs_hw_cost_opts_default(&co);
            const char *unit = qs_exp_run_value(r, "unit");
            co.unit = *unit ? unit : NULL;
            rc = qs_int_config_for_target(q, t->t, &co, &e->icfg);
        }
        if (rc >= 0)
            rc = qs_int_eval_set(q, &e->icfg, w->evald, set, NULL, 256, &cb, &e->iq);
        e->rc = rc;
    } else {
        e->rc = qs_qeval_set(q, w->evald, set, NULL, NULL, 256, &cb, &e->fq);
    }
    if (e->rc < 0)
        snprintf(e->msg, sizeof e->msg, "%s", qs_last_error());
    e->seconds = qs_now_s() - t0;
}

static void eval_metrics(const eval_t *e, const qs_qnet_t *q, qs_res_record_t *r)
{
    if (e->is_int) {
        const qs_int_eval_t *v = &e->iq;
        set_num(r, "top1", v->top1);
        set_num(r, "top5", v->top5);
        set_num(r, "float_top1", v->float_top1);
        set_num(r, "agreement", v->agreement);
        set_num(r, "logit_sqnr_db", v->logit_sqnr_db);
        set_num(r, "fake_top1", v->fake_top1);
        set_num(r, "fake_agreement", v->fake_agreement);
        set_num(r, "fake_logit_sqnr_db", v->fake_logit_sqnr_db);
        set_num(r, "overflow_fraction", v->outputs ? (double)v->overflowed / (double)v->outputs : 0.0);
        int64_t ev = 0, mis = 0, cmp = 0;
        int needed = 0;
        for (int i = 0; i < q->g->nnodes; i++) {
            ev += v->layer[i].events;
            mis += v->mismatch[i];
            cmp += v->compared[i];
            if (v->layer[i].outputs > 0 && v->layer[i].needed_bits > needed)
                needed = v->layer[i].needed_bits;
        }
        set_num(r, "overflow_events", (double)ev);
        set_num(r, "code_mismatch_fraction", cmp ? (double)mis / (double)cmp : 0.0);
        set_num(r, "acc_needed_bits", needed);
        set_num(r, "img_s", v->img_s);
    } else {
        const qs_qeval_t *v = &e->fq;
        set_num(r, "top1", v->top1);
        set_num(r, "top5", v->top5);
        set_num(r, "float_top1", v->float_top1);
        set_num(r, "agreement", v->agreement);
        set_num(r, "logit_sqnr_db", v->logit_sqnr_db);
        set_num(r, "img_s", v->img_s);
    }
}

/* Per-layer detail of an evaluation: the weights' and activations' SQNR
 * (fake) or the accumulator figures (int), per conv2d/linear. */
static int layer_records(const qs_exp_run_t *run, const char *sweep, const char *model, const eval_t *e,
                         const qs_qnet_t *q, qs_res_record_t **out, int *n)
{
    const qs_graph_t *g = q->g;
    *out = NULL;
    *n = 0;
    qs_res_record_t *L = calloc((size_t)g->nnodes + 1, sizeof *L);
    if (!L)
        return qs_error(QS_ERR_NOMEM, "sweep: out of memory");
    for (int i = 0; i < g->nnodes; i++) {
        const qs_node_t *nd = &g->nodes[i];
        if (nd->op != QS_OP_CONV2D && nd->op != QS_OP_LINEAR)
            continue;
        qs_res_record_t *r = &L[(*n)++];
        qs_res_record_init(r);
        qs_res_record_set(r, "layer", nd->name);
        qs_res_record_set(r, "op", qs_op_name(nd->op));
        /* the run's settings again, so that per-layer figures can select runs by them */
        qs_res_record_set(r, "sweep", sweep);
        qs_res_record_set(r, "model", model);
        char rep[16];
        snprintf(rep, sizeof rep, "%d", run->repeat);
        qs_res_record_set(r, "repeat", rep);
        for (size_t f = 0; f < qs_exp_field_count(); f++)
            if (run->value[f][0])
                qs_res_record_set(r, qs_exp_field_at(f)->name, run->value[f]);
        set_num(r, "macs", (double)qs_node_macs(g, i));
        const qs_qlayer_t *ql = &q->layer[i];
        if (ql->wq)
            set_num(r, "w_sqnr_db", qs_qstats_sqnr_db(&ql->wstats));
        int pt = ql->point;
        if (!e)
            continue;
        if (e->is_int) {
            const qs_int_layer_t *il = &e->iq.layer[i];
            set_num(r, "overflow_fraction", il->outputs ? (double)il->overflowed / (double)il->outputs : 0.0);
            set_num(r, "overflow_events", (double)il->events);
            set_num(r, "acc_needed_bits", il->needed_bits);
            set_num(r, "acc_width_a2q", il->width_a2q);
            char acc[160];
            /* the accumulator this layer used (the run's acc column is the setting as written) */
            qs_res_record_set(r, "acc_used", qs_acc_str(&il->acc, acc, sizeof acc));
            if (pt >= 0 && e->iq.compared[pt])
                set_num(r, "code_mismatch_fraction", (double)e->iq.mismatch[pt] / (double)e->iq.compared[pt]);
        } else if (pt >= 0 && e->fq.act && e->fq.act[pt].count > 0) {
            set_num(r, "a_sqnr_db", qs_qstats_sqnr_db(&e->fq.act[pt]));
        }
    }
    *out = L;
    return QS_OK;
}

static void layers_free(qs_res_record_t *L, int n)
{
    for (int i = 0; L && i < n; i++)
        qs_res_record_clear(&L[i]);
    free(L);
}

/* Prices run r (its network q, the integer configuration icfg or NULL) on its
 * target; per-layer energy and latency go into the layer records by name. */
static int price(const sweep_t *w, const qs_exp_run_t *r, const qs_qnet_t *q, const qs_int_config_t *icfg,
                 qs_res_record_t *rec, qs_res_record_t *L, int nl)
{
    const char *tn = qs_exp_run_value(r, "target");
    if (!*tn)
        return QS_OK;
    const target_t *t = find_target(w, tn);
    qs_workload_t *wl = NULL;
    qs_hw_cost_t *c = NULL;
    qs_hw_cost_opts_t co;
    qs_hw_cost_opts_default(&co);
    const char *unit = qs_exp_run_value(r, "unit"), *batch = qs_exp_run_value(r, "batch");
    co.unit = *unit ? unit : NULL;
    if (*batch)
        co.batch = strtoll(batch, NULL, 10);
    int rc = qs_qnet_workload(q, icfg, &wl);
    if (rc >= 0)
        rc = qs_hw_cost(t->t, wl, &co, &c);
    if (rc >= 0) {
        qs_res_record_set(rec, "verdict", qs_hw_verdict_name(c->verdict));
        set_num(rec, "model_bytes", c->model_bytes);
    }
    /* an unsupported run has no cost: a zero would win every Pareto front */
    if (rc >= 0 && c->verdict != QS_HW_UNSUPPORTED) {
        double mem = 0, off = 0;
        for (int k = 0; k < t->t->nlevels; k++) {
            mem += c->level_j[k];
            off += t->t->level[k].offchip ? c->bytes[k] : 0;
        }
        set_num(rec, "energy_j", c->energy_j);
        set_num(rec, "latency_s", c->latency_s);
        set_num(rec, "compute_energy_j", c->compute_j);
        set_num(rec, "memory_energy_j", mem);
        set_num(rec, "static_energy_j", c->static_j);
        set_num(rec, "offchip_bytes", off);
        for (int i = 0; i < c->nlayers; i++)
            for (int j = 0; j < nl; j++)
                if (strcmp(qs_res_record_get(&L[j], "layer"), wl->layer[i].name) == 0) {
                    set_num(&L[j], "energy_j", c->layer[i].energy_j);
                    set_num(&L[j], "latency_s", c->layer[i].latency_s);
                    qs_res_record_set(&L[j], "verdict", qs_hw_verdict_name(c->layer[i].verdict));
                    if (c->layer[i].unit >= 0)
                        qs_res_record_set(&L[j], "unit", t->t->unit[c->layer[i].unit].name);
                }
    }
    qs_hw_cost_free(c);
    qs_workload_free(wl);
    return rc;
}

/* ---- progress and the journal ---- */

static void finish(sweep_t *w, const qs_exp_run_t *r, qs_res_record_t *rec, qs_res_record_t *L, int nl,
                   const char *status)
{
    keep_metrics(w->s, rec);
    int rc = qs_res_journal_append(w->journal, rec, L, nl);
    pthread_mutex_lock(&w->mu);
    if (rc < 0) {
        if (!w->error) {
            w->error = rc;
            qs_error_save(&w->err);
        }
        atomic_store(&w->stop, 1);
        pthread_mutex_unlock(&w->mu);
        return;
    }
    w->done++;
    if (strcmp(status, "ok") == 0)
        w->ran++;
    else if (strcmp(status, "skipped") == 0)
        w->skipped++;
    else
        w->failed++;
    const char *t1 = qs_res_record_get(rec, "top1");
    if (t1 && strcmp(qs_exp_run_value(r, "engine"), "float") != 0) {
        double v = strtod(t1, NULL);
        if (v > w->best_top1) {
            w->best_top1 = v;
            snprintf(w->best, sizeof w->best, "best top1 %.4f (%.8s)", v, r->hash);
        }
    }
    if (w->progress && w->progress->fn &&
        qs_progress_report(w->progress, "sweep", w->done, w->total, w->best[0] ? w->best : NULL) < 0)
        atomic_store(&w->stop, 1);
    pthread_mutex_unlock(&w->mu);
}

/* A run that cannot produce metrics: skipped by the plan, or failed. */
static void finish_without(sweep_t *w, const qs_exp_run_t *r, const char *status, const char *reason)
{
    qs_res_record_t rec;
    qs_res_record_init(&rec);
    record_head(w, r, &rec, status, reason);
    finish(w, r, &rec, NULL, 0, status);
    qs_res_record_clear(&rec);
}

/* ---- a group: the runs sharing one calibrated network ---- */

/* The calibrated network of c, calibrating it if this is the first group to need it. */
static int get_calib(sweep_t *w, struct calib *c, const qs_exp_run_t *r0, bool is_float)
{
    pthread_mutex_lock(&c->mu);
    while (c->state == 1)
        pthread_cond_wait(&c->cv, &c->mu);
    if (c->state == 2) {
        int rc = c->rc;
        pthread_mutex_unlock(&c->mu);
        return rc;
    }
    c->state = 1;
    pthread_mutex_unlock(&c->mu);

    double t0 = qs_now_s();
    const model_t *m = &w->models[r0->model];
    qs_qconfig_t qc;
    qs_qnet_t *q = NULL;
    int rc = is_float ? qs_qconfig_preset(&qc, "float", "engine float") : qs_exp_apply_quant(r0, w->layers, w->s->nlayers, &qc);
    /* the transform order: pruning first, on the float model */
    qs_prune_opts_t po;
    qs_graph_t *pg = NULL;
    if (rc >= 0 && (rc = qs_exp_apply_prune(r0, &po)) >= 0 && po.method != QS_PRUNE_NONE) {
        po.data = w->calib; /* channel-act and the refit: the calibration images */
        po.images = w->s->calib_images;
        po.seed = w->s->calib_seed + (uint64_t)r0->repeat;
        qs_prune_report_t *rep = calloc(1, sizeof *rep);
        rc = rep ? qs_graph_prune(m->g, &po, &pg, rep) : qs_error(QS_ERR_NOMEM, "sweep: out of memory");
        c->pruned = rc >= 0;
        free(rep);
    }
    qs_lowrank_opts_t lo;
    bool lr_on = false;
    if (rc >= 0 && (rc = qs_exp_apply_lowrank(r0, &lo, &lr_on)) >= 0 && lr_on) {
        qs_lowrank_report_t *lrep = calloc(1, sizeof *lrep);
        qs_graph_t *f = NULL;
        rc = lrep ? qs_graph_lowrank(pg ? pg : m->g, &lo, &f, lrep) : qs_error(QS_ERR_NOMEM, "sweep: out of memory");
        if (rc >= 0) {
            qs_graph_free(pg);
            pg = f;
            c->pruned = true;
        }
        free(lrep);
    }
    if (rc >= 0 && strcmp(qs_exp_run_value(r0, "bn_reestimate"), "yes") == 0) {
        if (!pg && !(pg = qs_graph_clone(m->g)))
            rc = qs_last_status();
        if (rc >= 0)
            rc = qs_graph_bn_reestimate(pg, w->calib, w->s->calib_images, w->s->calib_seed + (uint64_t)r0->repeat, NULL,
                                        NULL);
        c->pruned = true; /* a changed model: evaluated, with its own figures */
    }
    const char *ft = qs_exp_run_value(r0, "finetune_epochs");
    if (rc >= 0 && *ft && atoi(ft) > 0) {
        if (!pg && !(pg = qs_graph_clone(m->g)))
            rc = qs_last_status();
        qs_train_opts_t to;
        qs_train_opts_default(&to);
        to.epochs = atoi(ft);
        to.lr = 0.01;
        to.seed = w->s->calib_seed + (uint64_t)r0->repeat;
        if (rc >= 0)
            rc = qs_train(pg, w->calib, NULL, &to, NULL, NULL, NULL);
        c->pruned = true;
    }
    if (rc >= 0 && c->pruned) { /* the figures of the changed float model (before DFQ folds its batchnorms) */
        int64_t wt, off;
        qs_graph_sparsity(pg, &wt, &off, &c->macs_nonzero);
        c->params = qs_graph_params(pg);
        c->macs = qs_graph_macs(pg);
        c->density = wt ? 1.0 - (double)off / (double)wt : 1.0;
    }
    /* then equalization, absorption and bias correction (against this run's weights) */
    const char *dfq = qs_exp_run_value(r0, "dfq");
    if (rc >= 0 && *dfq) {
        qs_dfq_opts_t dopt;
        qs_dfq_opts_default(&dopt);
        qs_dfq_report_t drep;
        memset(&drep, 0, sizeof drep);
        qs_graph_t *dg = NULL;
        dopt.qcfg = &qc;
        if ((rc = qs_dfq_method_parse(dfq, "dfq", &dopt.steps)) >= 0 &&
            (rc = qs_dfq_apply(pg ? pg : m->g, &dopt, w->calib, &dg, &drep)) >= 0) {
            qs_graph_free(pg);
            pg = dg;
        }
        qs_dfq_report_free(&drep);
    }
    if (rc >= 0)
        rc = qs_qnet_create(pg ? pg : m->g, &qc, &q);
    qs_graph_free(pg);
    if (rc >= 0 && !is_float) {
        qs_calib_opts_t co;
        qs_calib_opts_default(&co);
        co.images = w->s->calib_images;
        co.seed = w->s->calib_seed + (uint64_t)r0->repeat;
        qs_progress_cb_t cb = {stop_cb, w, 0};
        rc = qs_qnet_calibrate(q, w->calib, &co, &cb);
        pthread_mutex_lock(&w->mu);
        w->calibrations++;
        pthread_mutex_unlock(&w->mu);
    }
    pthread_mutex_lock(&c->mu);
    c->rc = rc < 0 ? rc : QS_OK;
    if (rc < 0) {
        snprintf(c->msg, sizeof c->msg, "%s", qs_last_error());
        qs_qnet_free(q);
        q = NULL;
    }
    c->q = q;
    c->seconds = qs_now_s() - t0;
    c->state = 2;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return c->rc;
}

static void release_calib(struct calib *c)
{
    pthread_mutex_lock(&c->mu);
    if (--c->users == 0) {
        qs_qnet_free(c->q);
        c->q = NULL;
    }
    pthread_mutex_unlock(&c->mu);
}

static void run_group(sweep_t *w, int gi)
{
    const int *idx = w->group_runs + w->group_start[gi];
    const int n = w->group_start[gi + 1] - w->group_start[gi];
    const qs_exp_run_t *r0 = &w->plan->run[idx[0]];
    const model_t *m = &w->models[r0->model];
    if (r0->skipped) {
        for (int k = 0; k < n && !atomic_load(&w->stop); k++)
            finish_without(w, &w->plan->run[idx[k]], "skipped", w->plan->run[idx[k]].reason);
        return;
    }
    const bool is_float = strcmp(qs_exp_run_value(r0, "engine"), "float") == 0;
    struct calib *cal = &w->calib_cache[w->group_calib[gi]];
    int rc = get_calib(w, cal, r0, is_float);
    qs_qnet_t *q = cal->q;
    const double calib_s = cal->seconds / (cal->nruns > 0 ? cal->nruns : 1);
    if (rc < 0) {
        if (rc != QS_ERR_INTERRUPTED)
            for (int k = 0; k < n; k++)
                finish_without(w, &w->plan->run[idx[k]], "error", cal->msg);
        release_calib(cal);
        return;
    }
    eval_t *evals = calloc((size_t)n, sizeof *evals);
    int nev = 0;
    if (!evals) {
        for (int k = 0; k < n; k++)
            finish_without(w, &w->plan->run[idx[k]], "error", "sweep: out of memory");
        release_calib(cal);
        return;
    }
    /* a pruned float model is evaluated (its fake-quant network quantizes nothing); the plain one is the reference */
    const bool reference = is_float && !cal->pruned;
    for (int k = 0; k < n && !atomic_load(&w->stop); k++) {
        const qs_exp_run_t *r = &w->plan->run[idx[k]];
        double tr = qs_now_s();
        eval_t *e = NULL;
        if (!reference) {
            for (int j = 0; j < nev && w->o->share; j++)
                if (strcmp(evals[j].key, r->engine_key) == 0)
                    e = &evals[j];
            if (!e) {
                e = &evals[nev++];
                evaluate(w, r, q, e);
                pthread_mutex_lock(&w->mu);
                w->evaluations++;
                pthread_mutex_unlock(&w->mu);
                if (e->rc == QS_ERR_INTERRUPTED)
                    break;
            }
        }
        qs_res_record_t rec, *L = NULL;
        int nl = 0;
        qs_res_record_init(&rec);
        if (e && e->rc < 0) {
            record_head(w, r, &rec, "error", e->msg);
            finish(w, r, &rec, NULL, 0, "error");
            qs_res_record_clear(&rec);
            continue;
        }
        record_head(w, r, &rec, "ok", NULL);
        if (reference) {
            set_num(&rec, "top1", m->eval->float_top1);
            set_num(&rec, "float_top1", m->eval->float_top1);
            set_num(&rec, "agreement", 1.0);
            set_num(&rec, "logit_sqnr_db", INFINITY);
        } else {
            eval_metrics(e, q, &rec);
        }
        set_num(&rec, "params", (double)(cal->pruned ? cal->params : m->params));
        set_num(&rec, "macs", (double)(cal->pruned ? cal->macs : m->macs));
        if (cal->pruned) {
            set_num(&rec, "macs_nonzero", (double)cal->macs_nonzero);
            set_num(&rec, "density", cal->density);
        }
        int prc = layer_records(r, qs_res_record_get(&rec, "sweep"), m->name, e, q, &L, &nl);
        if (prc >= 0)
            prc = price(w, r, q, e && e->is_int ? &e->icfg : NULL, &rec, L, nl);
        /* the run's time: its evaluation (once per shared evaluation), its pricing and its share of the calibration */
        set_num(&rec, "seconds", (qs_now_s() - tr) + calib_s / n);
        if (prc < 0) {
            char msg[QS_ERROR_MAX];
            snprintf(msg, sizeof msg, "%s", qs_last_error());
            qs_res_record_set(&rec, "status", "error");
            qs_res_record_set(&rec, "reason", msg);
        }
        finish(w, r, &rec, L, nl, prc < 0 ? "error" : "ok");
        qs_res_record_clear(&rec);
        layers_free(L, nl);
    }
    for (int j = 0; j < nev; j++)
        eval_free(&evals[j]);
    free(evals);
    release_calib(cal);
}

static void *worker(void *arg)
{
    sweep_t *w = arg;
    for (;;) {
        int g = atomic_fetch_add(&w->next, 1);
        if (g >= w->ngroups || stop_cb(NULL, w))
            break;
        run_group(w, g);
    }
    return NULL;
}

/* ---- setting up ---- */

static int mkdir_p(const char *path)
{
    char buf[1100];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0777) < 0 && errno != EEXIST)
                return qs_error(QS_ERR_IO, "%s: cannot create the folder: %s", buf, strerror(errno));
            *p = '/';
        }
    if (mkdir(buf, 0777) < 0 && errno != EEXIST)
        return qs_error(QS_ERR_IO, "%s: cannot create the folder: %s", buf, strerror(errno));
    struct stat st;
    if (stat(buf, &st) < 0 || !S_ISDIR(st.st_mode))
        return qs_error(QS_ERR_IO, "%s: not a folder", buf);
    return QS_OK;
}

static int load_models(sweep_t *w, qs_pool_t *pool)
{
    const qs_exp_spec_t *s = w->s;
    w->models = calloc((size_t)s->nmodels, sizeof *w->models);
    if (!w->models)
        return qs_error(QS_ERR_NOMEM, "sweep: out of memory");
    int rc;
    qs_dataset_t *ev = NULL, *ca = NULL;
    if ((rc = qs_dataset_open(s->calib_data, &ca)) < 0)
        return qs_error_context("%s: calibration: ", s->path[0] ? s->path : s->name);
    w->calib = ca;
    if ((rc = qs_dataset_open(s->eval_data, &ev)) < 0)
        return qs_error_context("%s: evaluation: ", s->path[0] ? s->path : s->name);
    if (s->eval_images < ev->n) {
        qs_dataset_t *sub = NULL;
        rc = qs_dataset_subset(ev, s->eval_images, s->eval_seed, &sub);
        qs_dataset_free(ev);
        if (rc < 0)
            return rc;
        ev = sub;
    }
    w->evald = ev;
    qs_engine_opts_t eo = {pool, false};
    for (int i = 0; i < s->nmodels; i++) {
        model_t *m = &w->models[i];
        if ((rc = qs_model_load(s->model[i], &m->g)) < 0)
            return rc;
        const char *base = strrchr(s->model[i], '/') ? strrchr(s->model[i], '/') + 1 : s->model[i];
        snprintf(m->name, sizeof m->name, "%.*s", (int)strcspn(base, "."), base);
        m->params = qs_graph_params(m->g);
        m->macs = qs_graph_macs(m->g);
        qs_graph_t *folded = NULL;
        if ((rc = qs_graph_fold_bn(m->g, &folded, NULL)) < 0)
            return rc;
        rc = qs_evalset_create(folded, ev, &eo, 256, &m->eval);
        qs_graph_free(folded);
        if (rc < 0)
            return qs_error_context("%s: ", s->model[i]);
    }
    return QS_OK;
}

static int load_targets(sweep_t *w)
{
    const int tf = qs_exp_field_index("target");
    w->targets = calloc((size_t)w->plan->nruns + 1, sizeof *w->targets);
    if (!w->targets)
        return qs_error(QS_ERR_NOMEM, "sweep: out of memory");
    for (int i = 0; i < w->plan->nruns; i++) {
        const char *name = w->plan->run[i].value[tf];
        if (!*name || find_target(w, name))
            continue;
        target_t *t = &w->targets[w->ntargets];
        snprintf(t->name, sizeof t->name, "%s", name);
        if (qs_hw_target_find(name, &t->t) < 0 || qs_target_check_arithmetic(t->t) < 0)
            return qs_last_status();
        w->ntargets++;
    }
    return QS_OK;
}

static void sweep_free(sweep_t *w)
{
    for (int i = 0; w->models && i < w->s->nmodels; i++) {
        qs_graph_free(w->models[i].g);
        qs_evalset_free(w->models[i].eval);
    }
    free(w->models);
    for (int i = 0; w->targets && i < w->ntargets; i++)
        qs_hw_target_free(w->targets[i].t);
    free(w->targets);
    qs_dataset_free(w->calib);
    qs_dataset_free(w->evald);
    for (int i = 0; w->calib_cache && i < w->ncalib; i++) {
        qs_qnet_free(w->calib_cache[i].q); /* left by groups an interruption never started */
        pthread_mutex_destroy(&w->calib_cache[i].mu);
        pthread_cond_destroy(&w->calib_cache[i].cv);
    }
    free(w->calib_cache);
    free(w->group_calib);
    free(w->group_start);
    free(w->group_runs);
    free((void *)w->layers);
    qs_res_journal_close(w->journal);
    qs_exp_plan_free(w->plan);
}

/* Groups the runs to do by their calibrated network (sharing), in plan order. */
static int make_groups(sweep_t *w, const bool *todo)
{
    const int n = w->plan->nruns;
    w->group_start = calloc((size_t)n + 2, sizeof *w->group_start);
    w->group_runs = calloc((size_t)n + 1, sizeof *w->group_runs);
    int *gid = calloc((size_t)n + 1, sizeof *gid), *count = calloc((size_t)n + 1, sizeof *count);
    if (!w->group_start || !w->group_runs || !gid || !count) {
        free(gid);
        free(count);
        return qs_error(QS_ERR_NOMEM, "sweep: out of memory");
    }
    int ng = 0;
    for (int i = 0; i < n; i++) {
        if (!todo[i])
            continue;
        const qs_exp_run_t *r = &w->plan->run[i];
        int g = -1;
        /* a group: the runs of one evaluation; without sharing every run is its own group */
        for (int j = 0; j < i && w->o->share && g < 0; j++)
            if (todo[j] && w->plan->run[j].skipped == r->skipped && strcmp(w->plan->run[j].engine_key, r->engine_key) == 0 &&
                w->plan->run[j].model == r->model)
                g = gid[j];
        gid[i] = g >= 0 ? g : ng++;
        count[gid[i]]++;
    }
    for (int g = 0; g < ng; g++)
        w->group_start[g + 1] = w->group_start[g] + count[g];
    memset(count, 0, (size_t)(ng + 1) * sizeof *count);
    for (int i = 0; i < n; i++)
        if (todo[i])
            w->group_runs[w->group_start[gid[i]] + count[gid[i]]++] = i;
    w->ngroups = ng;
    /* the calibrations: one per quant key (and model) among the groups' first runs */
    w->group_calib = calloc((size_t)ng + 1, sizeof *w->group_calib);
    w->calib_cache = calloc((size_t)ng + 1, sizeof *w->calib_cache);
    if (!w->group_calib || !w->calib_cache) {
        free(gid);
        free(count);
        return qs_error(QS_ERR_NOMEM, "sweep: out of memory");
    }
    for (int g = 0; g < ng; g++) {
        const qs_exp_run_t *r = &w->plan->run[w->group_runs[w->group_start[g]]];
        int c = -1;
        for (int h = 0; h < g && w->o->share && c < 0; h++) {
            const qs_exp_run_t *o = &w->plan->run[w->group_runs[w->group_start[h]]];
            if (o->model == r->model && o->skipped == r->skipped && strcmp(o->quant_key, r->quant_key) == 0)
                c = w->group_calib[h];
        }
        if (c < 0) {
            c = w->ncalib++;
            pthread_mutex_init(&w->calib_cache[c].mu, NULL);
            pthread_cond_init(&w->calib_cache[c].cv, NULL);
        }
        w->group_calib[g] = c;
        w->calib_cache[c].users++;
        w->calib_cache[c].nruns += w->group_start[g + 1] - w->group_start[g];
    }
    free(gid);
    free(count);
    return QS_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* The runs of the journal that need not run again: all but those that
 * failed (an error may be fixed by then: a target file, a missing model). */
static int finished_runs(const char *jpath, char ***out, int *n)
{
    *out = NULL;
    *n = 0;
    if (access(jpath, F_OK) != 0)
        return QS_OK;
    qs_res_table_t *runs = NULL;
    int rc = qs_res_journal_read(jpath, &runs, NULL);
    if (rc < 0)
        return rc;
    int rc_col = qs_res_table_col(runs, "run"), st = qs_res_table_col(runs, "status");
    char **h = calloc((size_t)runs->nrows + 1, sizeof *h);
    if (!h) {
        qs_res_table_free(runs);
        return qs_error(QS_ERR_NOMEM, "sweep: out of memory");
    }
    for (int r = 0; r < runs->nrows; r++) {
        const char *hash = qs_res_table_get(runs, r, rc_col), *status = st >= 0 ? qs_res_table_get(runs, r, st) : NULL;
        if (hash && !(status && strcmp(status, "error") == 0) && (h[*n] = strdup(hash)) != NULL)
            (*n)++;
    }
    qs_res_table_free(runs);
    *out = h;
    return QS_OK;
}

static const char *output_of(const qs_exp_spec_t *s, const char *o) { return o && *o ? o : s->output; }

int qs_exp_sweep(const qs_exp_spec_t *s, const qs_exp_sweep_opts_t *opts, qs_exp_sweep_report_t *rep)
{
    if (!s || !rep)
        return qs_error(QS_ERR_INVALID, "qs_exp_sweep: no spec or report");
    qs_exp_sweep_opts_t dflt;
    qs_exp_sweep_opts_default(&dflt);
    const qs_exp_sweep_opts_t *o = opts ? opts : &dflt;
    memset(rep, 0, sizeof *rep);
    double t0 = qs_now_s();
    const char *out = output_of(s, o->output);
    snprintf(rep->output, sizeof rep->output, "%s", out);
    snprintf(rep->results, sizeof rep->results, "%s/results.h5", out);
    if (o->jobs < 1 || o->jobs > 256)
        return qs_error(QS_ERR_INVALID, "sweep: jobs must be 1..256, got %d", o->jobs);

    sweep_t w;
    memset(&w, 0, sizeof w);
    w.s = s;
    w.o = o;
    w.progress = o->progress;
    w.best_top1 = -1;
    pthread_mutex_init(&w.mu, NULL);
    qs_pool_t *pool = NULL;
    bool *todo = NULL;
    char **done = NULL;
    int ndone = 0;
    char jpath[1100];
    snprintf(jpath, sizeof jpath, "%s/journal.tsv", out);
    int rc = qs_exp_plan_create(s, &w.plan);
    if (rc < 0)
        goto end;
    rep->total = w.plan->nruns;
    if ((rc = mkdir_p(out)) < 0 || (rc = qs_res_journal_open(jpath, &w.journal)) < 0)
        goto end;
    if (!o->force && (rc = finished_runs(jpath, &done, &ndone)) < 0)
        goto end;
    todo = calloc((size_t)w.plan->nruns + 1, sizeof *todo);
    w.layers = calloc((size_t)s->nlayers + 1, sizeof *w.layers);
    if (!todo || !w.layers) {
        rc = qs_error(QS_ERR_NOMEM, "sweep: out of memory");
        goto end;
    }
    for (int i = 0; i < s->nlayers; i++)
        ((const char **)w.layers)[i] = s->layer[i];
    if (ndone > 1)
        qsort(done, (size_t)ndone, sizeof *done, cmp_str);
    for (int i = 0; i < w.plan->nruns; i++) {
        const char *h = w.plan->run[i].hash;
        todo[i] = !done || !bsearch(&h, done, (size_t)ndone, sizeof *done, cmp_str);
        w.total += todo[i];
    }
    rep->resumed = w.plan->nruns - w.total;
    if (w.total > 0) {
        if ((pool = qs_pool_create(o->jobs)) == NULL && o->jobs > 1) {
            rc = qs_error(QS_ERR_NOMEM, "sweep: cannot start %d threads", o->jobs);
            goto end;
        }
        if ((rc = load_models(&w, pool)) < 0 || (rc = load_targets(&w)) < 0 || (rc = make_groups(&w, todo)) < 0)
            goto end;
        qs_pool_free(pool);
        pool = NULL;
        if (w.progress)
            qs_progress_begin(w.progress);
        int nthreads = o->jobs < w.ngroups ? o->jobs : w.ngroups;
        pthread_t th[256];
        int started = 0;
        for (int i = 1; i < nthreads; i++)
            if (pthread_create(&th[started], NULL, worker, &w) == 0)
                started++;
        worker(&w);
        for (int i = 0; i < started; i++)
            pthread_join(th[i], NULL);
    }
    rep->ran = w.ran;
    rep->failed = w.failed;
    rep->skipped = w.skipped;
    rep->calibrations = w.calibrations;
    rep->evaluations = w.evaluations;
    rep->interrupted = atomic_load(&w.stop) && !w.error && w.done < w.total;
    qs_res_journal_close(w.journal);
    w.journal = NULL;
    if (w.error) {
        qs_error_restore(&w.err);
        rc = w.error;
        goto end;
    }
    /* the store and the figures from the journal, even when interrupted: nothing finished is lost */
    if ((rc = qs_exp_rebuild_plan(s, out, w.plan, o->jobs)) < 0)
        goto end;
    if (o->figures && !rep->interrupted)
        rc = qs_exp_draw_figures(s, out, rep);
    if (rc >= 0 && rep->interrupted)
        rc = qs_error(QS_ERR_INTERRUPTED, "sweep: interrupted after %d of %d runs; the journal and %s keep them, "
                      "and running the spec again resumes", w.done, w.total, rep->results);
end:
    rep->seconds = qs_now_s() - t0;
    qs_pool_free(pool);
    qs_res_strings_free(done, ndone);
    free(todo);
    sweep_free(&w);
    pthread_mutex_destroy(&w.mu);
    return rc < 0 ? rc : QS_OK;
}
