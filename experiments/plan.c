/* experiments/plan.c — a spec expanded into runs (docs/spec.md, "How a spec
 * becomes runs"): per model the float baseline, then each sweep's points
 * (cartesian product, zip or a seeded random draw of the axes) times the
 * repeats. Every run's fields are resolved (the spec's value, else the
 * registry's default, else nothing where the field does not apply) and
 * hashed in registry order, so a run's hash does not depend on how the spec
 * is written; the hashes of the shared stages (calibration, evaluation) say
 * which runs share work. */
#include "experiments/exp_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t qs_exp_fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* FNV-1a mixes its last bytes weakly (runs differing only in their repeat
 * would get hashes alike in most digits): a final avalanche step (the
 * splitmix64 finalizer) spreads every input bit over the whole hash. */
void qs_exp_hex(uint64_t h, char out[17])
{
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static uint64_t fnv_str(uint64_t h, const char *s) { return qs_exp_fnv(h, s, strlen(s) + 1); }

static int file_sum(const char *path, char out[17])
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return qs_error(QS_ERR_IO, "%s: cannot open the model: %s", path, strerror(errno));
    uint64_t h = QS_FNV_INIT;
    unsigned char buf[65536];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, f)) > 0)
        h = qs_exp_fnv(h, buf, r);
    bool err = ferror(f);
    fclose(f);
    if (err)
        return qs_error(QS_ERR_IO, "%s: cannot read the model (a folder?)", path);
    qs_exp_hex(h, out);
    return QS_OK;
}

const char *qs_exp_run_value(const qs_exp_run_t *r, const char *field)
{
    int f = qs_exp_field_index(field);
    return f >= 0 ? r->value[f] : "";
}

static unsigned engine_mask(const char *engine)
{
    return strcmp(engine, "float") == 0 ? QS_ENG_FLOAT : strcmp(engine, "int") == 0 ? QS_ENG_INT : QS_ENG_FAKE;
}

/* Resolves the run's fields: defaults, what does not apply, what cannot run. */
static void resolve(qs_exp_run_t *r, const bool *from_axis)
{
    const size_t nf = qs_exp_field_count();
    const int ef = qs_exp_field_index("engine");
    if (!r->value[ef][0])
        snprintf(r->value[ef], QS_EXP_VALUE_MAX, "%s", qs_exp_field_at((size_t)ef)->def);
    unsigned mask = engine_mask(r->value[ef]);
    for (size_t f = 0; f < nf; f++) {
        const qs_exp_field_t *fd = qs_exp_field_at(f);
        if (!(fd->engines & mask)) {
            if (r->set[f] && from_axis[f] && !r->skipped) {
                r->skipped = true;
                snprintf(r->reason, sizeof r->reason, "%s does not apply to engine %s", fd->name, r->value[ef]);
            }
            if (!r->skipped)
                r->value[f][0] = '\0';
            continue;
        }
        if (!r->set[f])
            snprintf(r->value[f], QS_EXP_VALUE_MAX, "%s", fd->def);
    }
    const char *target = qs_exp_run_value(r, "target");
    if (!target[0]) /* nothing prices the run: its cost fields mean nothing */
        for (size_t f = 0; f < nf; f++)
            if (qs_exp_field_at(f)->stage == QS_STAGE_COST && !(r->set[f] && from_axis[f]))
                r->value[f][0] = '\0';
    if (!r->skipped && strcmp(qs_exp_run_value(r, "arithmetic"), "target") == 0 && !target[0]) {
        r->skipped = true;
        snprintf(r->reason, sizeof r->reason, "arithmetic: target needs a target");
    }
    if (r->skipped)
        return;
    qs_prune_opts_t po;
    qs_error_state_t saved0;
    qs_error_save(&saved0);
    qs_lowrank_opts_t lo;
    bool lr_on;
    if (qs_exp_apply_prune(r, &po) < 0 || qs_exp_apply_lowrank(r, &lo, &lr_on) < 0) {
        r->skipped = true;
        snprintf(r->reason, sizeof r->reason, "%s", qs_last_error());
    }
    qs_error_restore(&saved0);
    if (r->skipped || mask == QS_ENG_FLOAT)
        return;
    /* settings that each parse but do not combine (a fixed-width grid with other bits, a block grid
     * with per-channel scales, ...), and grids the integer engine cannot run: skipped, with the reason */
    qs_qconfig_t c;
    qs_error_state_t saved;
    qs_error_save(&saved);
    if (qs_exp_apply_quant(r, NULL, 0, &c) < 0) {
        r->skipped = true;
        snprintf(r->reason, sizeof r->reason, "%s", qs_last_error());
    } else if (mask == QS_ENG_INT) {
        int t = QS_QT_WEIGHTS;
        const char *why = c.on[t] ? qs_grid_int_reason(&c.q[t]) : NULL;
        if (!why && c.on[QS_QT_ACTS] && c.q[QS_QT_ACTS].grid != QS_GRID_UNIFORM) {
            t = QS_QT_ACTS;
            why = "the integer engine needs uniform activation grids";
        }
        if (why) {
            char g[32];
            r->skipped = true;
            snprintf(r->reason, sizeof r->reason, "engine int, %s grid %s: %s", t == QS_QT_WEIGHTS ? "weight" : "activation",
                     qs_grid_name(&c.q[t], g, sizeof g), why);
        }
    }
    qs_error_restore(&saved);
}

static void hash_run(const qs_exp_spec_t *s, const qs_exp_plan_t *p, qs_exp_run_t *r)
{
    const size_t nf = qs_exp_field_count();
    const bool quantized = strcmp(qs_exp_run_value(r, "engine"), "float") != 0;
    char line[1400];
    uint64_t h = fnv_str(QS_FNV_INIT, "quasar-run 1");
    snprintf(line, sizeof line, "model=%s", p->model_sum[r->model]);
    h = fnv_str(h, line);
    snprintf(line, sizeof line, "eval=%s,%lld,%llu", s->eval_data, (long long)s->eval_images,
             (unsigned long long)s->eval_seed);
    h = fnv_str(h, line);
    uint64_t hq = h; /* the calibrated network's key */
    /* a float run reads the calibration images too when its model is changed on data */
    const char *pm = qs_exp_run_value(r, "prune_method"), *ft = qs_exp_run_value(r, "finetune_epochs");
    const bool on_data = *qs_exp_run_value(r, "bn_reestimate") || *qs_exp_run_value(r, "prune_refit") ||
                         strcmp(pm, "channel-act") == 0 || (*ft && strcmp(ft, "0") != 0);
    if (quantized || on_data) {
        snprintf(line, sizeof line, "calib=%s,%lld,%llu", s->calib_data, (long long)s->calib_images,
                 (unsigned long long)s->calib_seed);
        h = fnv_str(h, line);
        for (int i = 0; quantized && i < s->nlayers; i++) {
            snprintf(line, sizeof line, "layer=%s", s->layer[i]);
            h = fnv_str(h, line);
        }
        hq = h;
    }
    uint64_t point = h;
    for (size_t f = 0; f < nf; f++)
        if (r->value[f][0]) {
            snprintf(line, sizeof line, "%s=%s", qs_exp_field_at(f)->name, r->value[f]);
            point = fnv_str(point, line);
        }
    if (r->skipped)
        point = fnv_str(point, "skipped");
    uint64_t run = point;
    uint64_t rep = QS_FNV_INIT;
    if (quantized && s->repeats > 1) {
        snprintf(line, sizeof line, "repeat=%d", r->repeat);
        run = fnv_str(run, line);
        rep = fnv_str(rep, line);
    }
    /* the stage keys: the fields of the stage and those before it */
    const bool arith_target = strcmp(qs_exp_run_value(r, "arithmetic"), "target") == 0;
    uint64_t kq = qs_exp_fnv(hq, &rep, sizeof rep), ke;
    for (size_t f = 0; f < nf; f++)
        if (r->value[f][0] && qs_exp_field_at(f)->stage <= QS_STAGE_QUANT) {
            snprintf(line, sizeof line, "%s=%s", qs_exp_field_at(f)->name, r->value[f]);
            kq = fnv_str(kq, line);
        }
    ke = kq;
    for (size_t f = 0; f < nf; f++) {
        qs_field_stage_t st = qs_exp_field_at(f)->stage;
        /* with the target's arithmetic, the target (and its preferred unit) decide the evaluation */
        if (r->value[f][0] && (st == QS_STAGE_ENGINE || (st == QS_STAGE_COST && arith_target &&
                                                         strcmp(qs_exp_field_at(f)->name, "batch") != 0))) {
            snprintf(line, sizeof line, "%s=%s", qs_exp_field_at(f)->name, r->value[f]);
            ke = fnv_str(ke, line);
        }
    }
    qs_exp_hex(run, r->hash);
    qs_exp_hex(point, r->point);
    qs_exp_hex(kq, r->quant_key);
    qs_exp_hex(ke, r->engine_key);
}

static int add_run(qs_exp_plan_t *p, int *cap, const qs_exp_run_t *r)
{
    for (int i = 0; i < p->nruns; i++)
        if (strcmp(p->run[i].hash, r->hash) == 0)
            return QS_OK; /* the same run reached twice (another sweep, or the float engine as a point) */
    if (p->nruns == *cap) {
        int nc = *cap ? *cap * 2 : 64;
        qs_exp_run_t *nr = realloc(p->run, (size_t)nc * sizeof *nr);
        if (!nr)
            return qs_error(QS_ERR_NOMEM, "plan: out of memory for %d runs", nc);
        p->run = nr;
        *cap = nc;
    }
    p->run[p->nruns++] = *r;
    return QS_OK;
}

void qs_exp_plan_free(qs_exp_plan_t *p)
{
    if (!p)
        return;
    free(p->run);
    free(p->model_sum);
    free(p);
}

/* Whether axis a is combined by the block's mode (else crossed with every point). */
static bool by_mode(const qs_exp_block_t *b, int a) { return b->mode == QS_COMBINE_CARTESIAN || !b->axis[a].cross; }

/* The axes' value indices of point k (the mode's axes) crossed with c (the
 * crossed axes) of block b; the first axis varies slowest. */
static void point_values(const qs_exp_block_t *b, uint64_t k, uint64_t c, int *idx)
{
    for (int a = b->naxes - 1; a >= 0; a--) {
        uint64_t *v = by_mode(b, a) ? &k : &c;
        if (by_mode(b, a) && b->mode == QS_COMBINE_ZIP) {
            idx[a] = (int)k;
            continue;
        }
        idx[a] = (int)(*v % (uint64_t)b->axis[a].nvalues);
        *v /= (uint64_t)b->axis[a].nvalues;
    }
}

int qs_exp_plan_create(const qs_exp_spec_t *s, qs_exp_plan_t **out)
{
    if (!s || !out)
        return qs_error(QS_ERR_INVALID, "qs_exp_plan_create: no spec or result");
    *out = NULL;
    qs_exp_plan_t *p = calloc(1, sizeof *p);
    if (!p || !(p->model_sum = calloc((size_t)s->nmodels + 1, sizeof *p->model_sum))) {
        free(p);
        return qs_error(QS_ERR_NOMEM, "plan: out of memory");
    }
    int cap = 0, rc = QS_OK;
    for (int m = 0; m < s->nmodels && rc >= 0; m++) {
        rc = file_sum(s->model[m], p->model_sum[m]);
        /* runs are keyed by the model's contents: two copies would be one model's runs */
        for (int k = 0; k < m && rc >= 0; k++)
            if (strcmp(p->model_sum[k], p->model_sum[m]) == 0)
                rc = qs_error(QS_ERR_INVALID, "%s: models: '%s' and '%s' are the same file contents",
                              s->path[0] ? s->path : s->name, s->model[k], s->model[m]);
    }
    const int tf = qs_exp_field_index("target"), ef = qs_exp_field_index("engine");
    qs_exp_run_t *r = malloc(sizeof *r);
    if (!r && rc >= 0)
        rc = qs_error(QS_ERR_NOMEM, "plan: out of memory");
    for (int m = 0; m < s->nmodels && rc >= 0; m++) {
        /* the float baseline on every target a sweep prices on, and unpriced if a sweep is */
        bool unpriced = false;
        for (int b = 0; b < s->nblocks; b++) {
            bool has = false;
            for (int a = 0; a < s->block[b].naxes; a++)
                has |= s->block[b].axis[a].field == tf;
            for (int i = 0; i < s->block[b].nfixed; i++)
                has |= s->block[b].fixed_field[i] == tf;
            unpriced |= !has;
        }
        for (int b = unpriced ? -1 : 0; b < s->nblocks && rc >= 0; b++) {
            const qs_exp_block_t *bl = b >= 0 ? &s->block[b] : NULL;
            int nt = 1;
            const qs_exp_axis_t *ta = NULL;
            const char *tfixed = NULL;
            for (int a = 0; bl && a < bl->naxes; a++)
                if (bl->axis[a].field == tf)
                    ta = &bl->axis[a], nt = ta->nvalues;
            for (int i = 0; bl && i < bl->nfixed; i++)
                if (bl->fixed_field[i] == tf)
                    tfixed = bl->fixed[i];
            if (bl && !ta && !tfixed)
                continue;
            for (int t = 0; t < nt && rc >= 0; t++) {
                memset(r, 0, sizeof *r);
                r->block = -1;
                r->model = m;
                snprintf(r->value[ef], QS_EXP_VALUE_MAX, "float");
                r->set[ef] = true;
                if (bl) {
                    snprintf(r->value[tf], QS_EXP_VALUE_MAX, "%s", ta ? ta->value[t] : tfixed);
                    r->set[tf] = true;
                }
                bool none[QS_EXP_MAX_FIELDS] = {false};
                resolve(r, none);
                hash_run(s, p, r);
                rc = add_run(p, &cap, r);
            }
        }
        for (int b = 0; b < s->nblocks && rc >= 0; b++) {
            const qs_exp_block_t *bl = &s->block[b];
            uint64_t total = 1, ncross = 1;
            double runs = 1; /* checked before anything is expanded */
            for (int a = 0; a < bl->naxes; a++) {
                if (!by_mode(bl, a))
                    ncross *= (uint64_t)bl->axis[a].nvalues;
                else
                    total = bl->mode == QS_COMBINE_ZIP ? (uint64_t)bl->axis[a].nvalues
                                                       : total * (uint64_t)bl->axis[a].nvalues;
                runs *= bl->mode == QS_COMBINE_ZIP && by_mode(bl, a) ? 1 : bl->axis[a].nvalues;
            }
            if (bl->mode == QS_COMBINE_ZIP && bl->naxes > 0)
                runs *= (double)total;
            uint64_t npoints = bl->mode == QS_COMBINE_RANDOM ? (uint64_t)bl->count : total;
            if (bl->mode == QS_COMBINE_RANDOM)
                runs = (double)npoints * (double)ncross;
            runs *= s->repeats * (double)s->nmodels;
            if (runs > QS_EXP_MAX_RUNS) {
                rc = qs_error(QS_ERR_INVALID, "%s:%d: sweep '%s' expands into %.0f runs, more than %d: split it, or "
                              "draw points with mode: random", s->path[0] ? s->path : s->name, bl->line, bl->name,
                              runs, QS_EXP_MAX_RUNS);
                break;
            }
            uint64_t *drawn = NULL;
            if (bl->mode == QS_COMBINE_RANDOM) {
                /* count distinct points of the product, drawn by a seeded stream in a fixed order */
                drawn = malloc((size_t)npoints * sizeof *drawn);
                if (!drawn) {
                    rc = qs_error(QS_ERR_NOMEM, "plan: out of memory");
                    break;
                }
                uint64_t got = 0;
                for (uint64_t j = 0; got < npoints; j++) {
                    uint64_t k = (uint64_t)(qs_rng_uniform(bl->seed, 0x5eed, j) * (double)total);
                    if (k >= total)
                        k = total - 1;
                    bool dup = false;
                    for (uint64_t q = 0; q < got && !dup; q++)
                        dup = drawn[q] == k;
                    if (!dup)
                        drawn[got++] = k;
                }
            }
            for (uint64_t k = 0; k < npoints * ncross && rc >= 0; k++) {
                int idx[QS_EXP_MAX_FIELDS];
                point_values(bl, drawn ? drawn[k / ncross] : k / ncross, k % ncross, idx);
                for (int rep = 0; rep < s->repeats && rc >= 0; rep++) {
                    memset(r, 0, sizeof *r);
                    r->block = b;
                    r->model = m;
                    r->repeat = rep;
                    bool from_axis[QS_EXP_MAX_FIELDS] = {false};
                    for (int i = 0; i < bl->nfixed; i++) {
                        snprintf(r->value[bl->fixed_field[i]], QS_EXP_VALUE_MAX, "%s", bl->fixed[i]);
                        r->set[bl->fixed_field[i]] = true;
                    }
                    for (int a = 0; a < bl->naxes; a++) {
                        snprintf(r->value[bl->axis[a].field], QS_EXP_VALUE_MAX, "%s", bl->axis[a].value[idx[a]]);
                        r->set[bl->axis[a].field] = true;
                        from_axis[bl->axis[a].field] = true;
                    }
                    resolve(r, from_axis);
                    if (strcmp(r->value[ef], "float") == 0 && !r->skipped) {
                        r->repeat = 0; /* the float engine has nothing to repeat */
                        const char *pm = qs_exp_run_value(r, "prune_method");
                        const char *ft = qs_exp_run_value(r, "finetune_epochs");
                        if ((!*pm || strcmp(pm, "none") == 0) && !*qs_exp_run_value(r, "bn_reestimate") &&
                            !*qs_exp_run_value(r, "lowrank") &&
                            (!*ft || strcmp(ft, "0") == 0))
                            r->block = -1; /* the unpruned float model: the baseline */
                    }
                    hash_run(s, p, r);
                    rc = add_run(p, &cap, r);
                }
            }
            free(drawn);
        }
    }
    free(r);
    if (rc < 0) {
        qs_exp_plan_free(p);
        return rc;
    }
    *out = p;
    return QS_OK;
}
