/* experiments/exp_internal.h — what the files of experiments/ share: how a
 * run's field values become the engines' configurations, and the hash. */
#ifndef QS_EXP_INTERNAL_H
#define QS_EXP_INTERNAL_H

#include "experiments/experiments.h"
#include "sim/lowrank.h"

/* A per-layer override for the integer engine (NAME:acc=…, NAME:requant=…)
 * rather than for the quantization. */
bool qs_exp_layer_is_int(const char *layer);
/* The network quantization of run r: preset, then the weights/acts words,
 * then the w_ and a_ fields, then the quantization overrides of layers. */
int qs_exp_apply_quant(const qs_exp_run_t *r, const char *const *layers, int nlayers, qs_qconfig_t *c);
/* The run's pruning (prune_method, prune_ratio); an error when they do not go together. */
int qs_exp_apply_prune(const qs_exp_run_t *r, qs_prune_opts_t *o);
/* The run's low-rank factorization (lowrank, lowrank_ratio, lowrank_energy); *on is false without one. */
int qs_exp_apply_lowrank(const qs_exp_run_t *r, qs_lowrank_opts_t *o, bool *on);
/* The integer engine's configuration of run r (acc, requant, int overrides). */
int qs_exp_apply_int(const qs_exp_run_t *r, const char *const *layers, int nlayers, qs_int_config_t *c);

/* 64-bit FNV-1a, continued from h (start with QS_FNV_INIT). */
#define QS_FNV_INIT 0xcbf29ce484222325ULL
uint64_t qs_exp_fnv(uint64_t h, const void *data, size_t n);
void qs_exp_hex(uint64_t h, char out[17]);

/* results.h5 of OUT from its journal, the rows in the plan's order (experiments/output.c). */
int qs_exp_rebuild_plan(const qs_exp_spec_t *s, const char *out, const qs_exp_plan_t *p, int jobs);
/* The spec's figures (or the default one) from OUT/results.h5 into OUT/figures. */
int qs_exp_draw_figures(const qs_exp_spec_t *s, const char *out, qs_exp_sweep_report_t *rep);

#endif
