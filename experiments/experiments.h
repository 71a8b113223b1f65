/* experiments/experiments.h — what runs a network on a target's terms: the
 * integer engine configured with the target's native arithmetic (each
 * layer's accumulator from the unit the cost model picks for it, the
 * target's requantizer everywhere). The sweeps of docs/spec.md build on
 * this ("arithmetic: target"). */
#ifndef QS_EXPERIMENTS_H
#define QS_EXPERIMENTS_H

#include "hwmodels/hw.h"
#include "sim/sim.h"

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

#ifdef __cplusplus
}
#endif
#endif
