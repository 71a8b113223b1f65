/* quasar.h — the whole public interface of libquasar. */
#ifndef QUASAR_H
#define QUASAR_H
#include "core/core.h"
#include "quant/quant.h"
#include "sim/sim.h"
#include "sim/dfq.h"
#include "sim/lowrank.h"
#include "hwmodels/hw.h"
#include "results/results.h"
#include "experiments/experiments.h"
#endif
