/* hwmodels/hw_internal.h — what the files of hwmodels/ share: quantities with
 * units as target files write them ("2.3 GHz", "48 KiB", "20 pJ/bit"). */
#ifndef QS_HW_INTERNAL_H
#define QS_HW_INTERNAL_H

#include "hwmodels/hw.h"

typedef enum {
    QS_Q_NUMBER = 0,   /* a plain number */
    QS_Q_ENERGY,       /* J */
    QS_Q_ENERGY_BYTE,  /* J per byte (pJ/B, pJ/bit) */
    QS_Q_BYTES,        /* bytes */
    QS_Q_BANDWIDTH,    /* bytes/s, or bytes/cycle at the target's clock */
    QS_Q_FREQUENCY,    /* Hz */
    QS_Q_POWER,        /* W */
    QS_Q_LENGTH_NM,    /* nm */
    QS_Q_VOLTAGE       /* V */
} qs_q_dim_t;

/* text as "NUMBER [UNIT]" in dimension dim, into SI base units. A plain number
 * is taken in the base unit. *per_cycle is set for a bandwidth in B/cycle (the
 * caller multiplies by the clock). Errors say what was expected; the caller
 * adds file:line and key. */
int qs_hw_quantity(const char *text, qs_q_dim_t dim, double *out, bool *per_cycle);
const char *qs_hw_dim_example(qs_q_dim_t dim); /* "an energy (e.g. 0.2 pJ)" */

#endif
