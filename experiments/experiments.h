/* experiments/experiments.h — experiment specs and sweeps (docs/spec.md,
 * "Experiment specs"): the field registry of sweepable settings, specs read
 * from YAML, their expansion into runs with stable hashes, and the sweep
 * that runs them over threads, sharing what runs have in common, into a
 * result store (results/results.h). Also what runs a network on a target's
 * terms: the integer engine with the target's native arithmetic. */
#ifndef QS_EXPERIMENTS_H
#define QS_EXPERIMENTS_H

#include "hwmodels/hw.h"
#include "results/results.h"
#include "sim/sim.h"

#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Checks that every unit's `acc` and the target's `requant` are specs the
 * integer engine reads; the error names the file, line and key. (hwmodels
 * stores them as text: it does not depend on quant/.) */
int qs_target_check_arithmetic(const qs_hw_target_t *t);

/* c := the integer engine's configuration for running q as t computes it:
 * requant = t's requantizer, and each conv2d/linear layer's accumulator = the
 * acc of the unit that qs_hw_cost_layer picks for it (o: the unit preference,
 * NULL for none). The most common accumulator becomes the network-wide one,
 * the others per-layer overrides. A layer no integer unit of t can run is an
 * error naming it and the reason. c's other fields (trace, keep_acc) are kept. */
int qs_int_config_for_target(const qs_qnet_t *q, const qs_hw_target_t *t, const qs_hw_cost_opts_t *o,
                             qs_int_config_t *c);


/* ---- the field registry (experiments/registry.c) ------------------------------------------------ */

/* Every setting a spec may fix or sweep is one entry here: its name (the
 * spec key and the results column), type, default, the engines it applies
 * to and the stage whose cache its value enters. Every field enters the run
 * hash. A later capability adds its fields here and nowhere else. */
typedef enum { QS_FIELD_INT = 0, QS_FIELD_CHOICE, QS_FIELD_TEXT } qs_field_type_t;
enum { QS_ENG_FLOAT = 1, QS_ENG_FAKE = 2, QS_ENG_INT = 4, QS_ENG_ALL = 7 };
typedef enum {
    QS_STAGE_MODEL = 0, /* which network: everything depends on it */
    QS_STAGE_QUANT,     /* the quantized, calibrated network: shared by every run with equal quant fields */
    QS_STAGE_ENGINE,    /* the evaluation: shared by every run with equal quant and engine fields */
    QS_STAGE_COST,      /* pricing only: runs differing here share their evaluation */
} qs_field_stage_t;
typedef struct {
    const char *name;
    qs_field_type_t type;
    const char *def;              /* default value ("" : unset) */
    const char *const *choices;   /* QS_FIELD_CHOICE */
    int64_t lo, hi;               /* QS_FIELD_INT */
    unsigned engines;             /* QS_ENG_* mask */
    qs_field_stage_t stage;
    const char *description;
} qs_exp_field_t;
size_t qs_exp_field_count(void);
const qs_exp_field_t *qs_exp_field_at(size_t i);
int qs_exp_field_index(const char *name); /* -1 if unknown */
/* Checks value for field f and writes its canonical form (what enters the
 * hash: an integer in decimal; text as written, once checked against its
 * grammar) into buf. Errors say what was expected. */
int qs_exp_field_canon(const qs_exp_field_t *f, const char *value, char *buf, size_t n);
const char *qs_exp_stage_name(qs_field_stage_t s); /* "model", "quant", "engine", "cost" */

/* ---- experiment specs (experiments/spec.c) ------------------------------------------------------- */

#define QS_EXP_MAX_FIELDS 32
#define QS_EXP_MAX_RUNS 20000      /* runs one sweep of a spec may expand into */
#define QS_EXP_VALUE_MAX 256
typedef enum { QS_COMBINE_CARTESIAN = 0, QS_COMBINE_ZIP, QS_COMBINE_RANDOM } qs_combine_t;
typedef struct {
    int field;                  /* registry index */
    int line;
    int nvalues;
    char (*value)[QS_EXP_VALUE_MAX]; /* canonical values */
    bool cross;                 /* the spec's targets: crossed with the points whatever the mode */
} qs_exp_axis_t;
typedef struct {
    char name[64];
    int line;
    int nfixed;
    int fixed_field[QS_EXP_MAX_FIELDS];
    int fixed_line[QS_EXP_MAX_FIELDS];
    char fixed[QS_EXP_MAX_FIELDS][QS_EXP_VALUE_MAX];
    int naxes;
    qs_exp_axis_t axis[QS_EXP_MAX_FIELDS];
    qs_combine_t mode;
    int64_t count;              /* random: points drawn */
    uint64_t seed;              /* random */
} qs_exp_block_t;
typedef struct {
    char name[160];
    char kind[16];              /* qs_plot_kind_name */
    char x[64], y[64], z[64], group_by[64], where[256], title[256], format[8];
    int line;
} qs_exp_figure_t;
typedef struct {
    char path[1024];            /* the spec file ("" when parsed from text) */
    char *text;                 /* the spec as read (provenance) */
    char name[64];
    char output[1024];          /* the output folder */
    int nmodels;
    char (*model)[1024];        /* paths, relative ones resolved against the spec's folder */
    char calib_data[256], eval_data[256];
    int64_t calib_images, eval_images;
    uint64_t calib_seed, eval_seed;
    int repeats;
    int nlayers;
    char (*layer)[QS_EXP_VALUE_MAX]; /* per-layer overrides: NAME:wNaM, NAME:weights=..., NAME:acc=..., ... */
    int nmetrics;
    char (*metric)[64];         /* metrics kept in the rows (none listed: all) */
    int nfigures;
    qs_exp_figure_t *figure;
    int nblocks;
    qs_exp_block_t *block;
} qs_exp_spec_t;
/* Reads and validates a spec (docs/spec.md); errors name file:line and key. */
int qs_exp_spec_load(const char *path, qs_exp_spec_t **out);
int qs_exp_spec_parse(const char *text, size_t len, const char *name, qs_exp_spec_t **out);
void qs_exp_spec_free(qs_exp_spec_t *s);

/* ---- the plan (experiments/plan.c) ------------------------------------------------------------- */

typedef struct {
    char hash[17];              /* of the full resolved configuration (field order, not spec order) */
    char point[17];             /* ... without the repeat: the runs averaged over */
    char quant_key[17];         /* equal for runs sharing a calibrated network */
    char engine_key[17];        /* equal for runs sharing an evaluation */
    int block;                  /* -1: the float baseline */
    int model;
    int repeat;
    bool set[QS_EXP_MAX_FIELDS];        /* fields given by the spec (fixed or axis) */
    char value[QS_EXP_MAX_FIELDS][QS_EXP_VALUE_MAX]; /* resolved value per registry field; "" when it does not apply */
    bool skipped;
    char reason[256];
} qs_exp_run_t;
typedef struct {
    int nruns;
    qs_exp_run_t *run;
    char (*model_sum)[17];      /* per model: checksum of its file */
} qs_exp_plan_t;
/* Expands s: per model, the float baseline, then every block's points
 * (cartesian, zip or random) × repeats; a point that cannot run is kept,
 * marked skipped with the reason; equal hashes are listed once. */
int qs_exp_plan_create(const qs_exp_spec_t *s, qs_exp_plan_t **out);
void qs_exp_plan_free(qs_exp_plan_t *p);
/* The run's value of a field by name ("" when it does not apply). */
const char *qs_exp_run_value(const qs_exp_run_t *r, const char *field);

/* ---- sweeps (experiments/sweep.c) --------------------------------------------------------------- */

typedef struct {
    int jobs;                   /* runs at once (default 1); each run single-threaded */
    bool force;                 /* re-run runs the journal already has */
    bool share;                 /* share calibrations and evaluations between runs (default true) */
    bool figures;               /* draw the spec's figures (default true) */
    const char *output;         /* overrides the spec's output folder */
    qs_progress_cb_t *progress; /* task "sweep", done/total runs, detail: the best so far; non-zero stops */
    const volatile sig_atomic_t *cancel; /* non-zero (e.g. set by a SIGINT handler): stop, also inside a run */
} qs_exp_sweep_opts_t;
void qs_exp_sweep_opts_default(qs_exp_sweep_opts_t *o);
typedef struct {
    int total;                  /* runs in the plan */
    int resumed;                /* found in the journal, not re-run */
    int ran, failed, skipped;   /* this time: run, failed with an error (row kept), skipped (row kept) */
    bool interrupted;
    double seconds;
    int calibrations, evaluations; /* work done this time (what sharing saves) */
    char output[1024];
    char results[1100];         /* OUTPUT/results.h5 */
    int nfigures;
    char figure[16][1500];      /* files drawn (or .gp written without gnuplot) */
    bool gnuplot;               /* gnuplot was found */
} qs_exp_sweep_report_t;
/* Runs every run of s not yet in OUTPUT/journal.tsv (all with force),
 * appending each to the journal as it finishes, then rebuilds
 * OUTPUT/results.h5 from the journal and draws the figures. Interrupted (by
 * the progress callback), it stops starting runs, keeps what finished,
 * rebuilds the store and returns QS_ERR_INTERRUPTED. */
int qs_exp_sweep(const qs_exp_spec_t *s, const qs_exp_sweep_opts_t *o, qs_exp_sweep_report_t *rep);
/* Rebuilds OUTPUT/results.h5 from OUTPUT/journal.tsv (provenance from s). */
int qs_exp_rebuild(const qs_exp_spec_t *s, const char *output);

#ifdef __cplusplus
}
#endif
#endif
