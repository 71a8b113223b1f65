/* hwmodels/hw.h — hardware targets and what a workload costs on them
 * (docs/targets.md): energy, latency, traffic per memory level, the support
 * verdict, and each target's native arithmetic (accumulator, requantizer).
 *
 * A target is a YAML file (hwmodels/targets/NAME.yaml for the shipped ones):
 * compute units with the operand formats they accept, their rate and energy,
 * a memory hierarchy, static power, a technology node and the quantization
 * features the target supports. Every number carries a `source:`. The cost
 * model is first order: energy = Σ operations × energy per operation + Σ
 * levels bytes × energy per byte + static power × time; latency = a roofline
 * per layer (the slowest of compute and each level's traffic over its
 * bandwidth). */
#ifndef QS_HW_H
#define QS_HW_H

#include "core/core.h"
#include "hwmodels/workload.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- formats ------------------------------------------------------------------ */

typedef enum { QS_HW_FMT_INT = 0, QS_HW_FMT_BINARY, QS_HW_FMT_FLOAT, QS_HW_FMT_BLOCK } qs_hw_fmt_kind_t;
typedef struct {
    char name[QS_WL_FORMAT_MAX];
    qs_hw_fmt_kind_t kind;
    int bits;              /* bits per element; 0 for the wildcard "int*" (any width 1..32) */
    int exp_bits, man_bits; /* float and block formats: the element's exponent and mantissa bits */
} qs_hw_format_t;
/* "int1".."int32", "int*", "binary", "fp32", "tf32", "fp16", "bf16", "fp8-e4m3", "fp8-e5m2",
 * "fp8-e4m3fnuz", "fp8-e5m2fnuz", "fp6-e3m2", "fp6-e2m3", "fp4-e2m1", "mxfp8-e4m3",
 * "mxfp8-e5m2", "mxfp6-e3m2", "mxfp6-e2m3", "mxfp4", "mxint8", "nvfp4". */
int qs_hw_format_parse(const char *name, qs_hw_format_t *f);
/* Every value of `from` is a value of `to`: an int in an int of as many bits
 * or in a float whose mantissa has at least bits - 1 bits and whose exponent
 * reaches 2^bits (int9 in fp16, int8 in bf16, int4 in fp8-e4m3 but not in
 * fp6-e2m3, whose largest value is 7.5); binary in an int of >= 2 bits or any float; a float in a
 * float with as many exponent and mantissa bits. */
bool qs_hw_format_fits(const qs_hw_format_t *from, const qs_hw_format_t *to);

/* ---- targets ------------------------------------------------------------------ */

#define QS_HW_MAX_UNITS 16
#define QS_HW_MAX_FORMATS 16
#define QS_HW_MAX_LEVELS 6
#define QS_HW_TABLE_MAX 8

/* An energy as a function of a key (b_w·b_x for multipliers and whole MACs,
 * the accumulator's bits for adders): piecewise linear through the points,
 * proportional to the key below the first and above the last point. One
 * point with key 0: a constant. */
typedef struct {
    int n;
    double key[QS_HW_TABLE_MAX];
    double joule[QS_HW_TABLE_MAX];
} qs_hw_table_t;
double qs_hw_table_eval(const qs_hw_table_t *t, double key);

typedef enum {
    QS_HW_RATE_FIXED = 0,   /* macs_per_cycle for every accepted format pair */
    QS_HW_RATE_BITBRICK     /* Bit Fusion: macs_per_cycle at brick×brick bits, divided by ⌈b_w/B⌉·⌈b_x/B⌉ */
} qs_hw_rate_t;

typedef struct {
    char name[32];
    int line;
    int nw, nx;
    qs_hw_format_t wfmt[QS_HW_MAX_FORMATS], xfmt[QS_HW_MAX_FORMATS];
    qs_hw_rate_t rate;
    int brick_bits;
    double macs_per_cycle;
    /* energy per MAC: mac(b_w·b_x) if set, else mul(b_w·b_x) + add(acc bits);
     * bitbrick: brick_j × ⌈b_w/B⌉·⌈b_x/B⌉ (+ add) */
    qs_hw_table_t mac, mul, add;
    double brick_j;
    char acc[128];          /* native accumulator, in the acc= grammar */
    int acc_bits;           /* its register width */
    bool optional;          /* used only when asked for by name */
} qs_hw_unit_t;

typedef struct {
    char name[32];
    int line;
    double capacity;        /* bytes; 0 for the outermost level (unbounded) */
    double bandwidth;       /* bytes/s */
    double energy;          /* J per byte */
    bool offchip;           /* not scaled with the technology node */
} qs_hw_level_t;

typedef enum { QS_HW_MISSING_MAP_UP = 0, QS_HW_MISSING_UNSUPPORTED } qs_hw_missing_t;

typedef struct {
    char name[64];
    char kind[16];           /* cpu, gpu, dsp, accelerator, asic */
    char description[256];
    char path[512];
    double node_nm, voltage;
    double clock_hz, utilization;
    double local_bytes;      /* operand storage next to the units (registers, PE buffers) */
    double static_w;
    int nunits;
    qs_hw_unit_t unit[QS_HW_MAX_UNITS];
    int nlevels;             /* innermost first; the last is the outermost (usually DRAM) */
    qs_hw_level_t level[QS_HW_MAX_LEVELS];
    /* quantization features */
    bool gran_tensor, gran_channel, gran_group;
    bool w_zero_point, x_zero_point; /* asymmetric weights / activations accepted */
    bool packed;             /* sub-byte data stored at its width (else in the unit's container) */
    qs_hw_missing_t missing;
    int nsparse;             /* N:M patterns the units skip */
    int sparse_n[4], sparse_m[4];
    bool sparse_unstructured;
    double sparse_index_bits; /* metadata per kept weight */
    char requant[128];       /* native requantizer, in the requant= grammar */
} qs_hw_target_t;

/* Reads and validates a target file; errors name the file, line and key. */
int qs_hw_target_load(const char *path, qs_hw_target_t **out);
int qs_hw_target_parse(const char *text, size_t len, const char *name, qs_hw_target_t **out);
void qs_hw_target_free(qs_hw_target_t *t);
/* A shipped target by name (or a path to a .yaml file): searched in
 * $QUASAR_TARGETS, then the source tree's and the installed hwmodels/targets. */
int qs_hw_target_find(const char *name_or_path, qs_hw_target_t **out);
/* The shipped target names, sorted, NULL-terminated; free with qs_hw_names_free. */
int qs_hw_target_names(char ***names);
void qs_hw_names_free(char **names);
/* The unit by name, or NULL. */
const qs_hw_unit_t *qs_hw_unit_find(const qs_hw_target_t *t, const char *name);

/* Energy factor of logic from node a to node b (nm, 3..65) at supply v:
 * Stillmaker–Baas scaling (docs/targets.md, "Technology nodes"). */
int qs_hw_node_factor(double from_nm, double to_nm, double voltage, double *factor);
/* Rescales t's compute, on-chip memory and static energies to another node. */
int qs_hw_target_scale_node(qs_hw_target_t *t, double nm);

/* ---- cost ------------------------------------------------------------------------ */

typedef enum { QS_HW_OK = 0, QS_HW_MAPPED, QS_HW_UNSUPPORTED } qs_hw_verdict_t;
const char *qs_hw_verdict_name(qs_hw_verdict_t v); /* "ok", "mapped", "unsupported" */

typedef struct {
    int64_t batch;           /* inferences sharing one read of the weights (default 1) */
    const char *unit;        /* prefer this unit wherever it can run a layer (NULL: the fastest) */
} qs_hw_cost_opts_t;
void qs_hw_cost_opts_default(qs_hw_cost_opts_t *o);

typedef struct {
    qs_hw_verdict_t verdict;
    char reason[192];        /* why mapped or unsupported */
    int unit;                /* index into the target's units, -1 when none */
    qs_hw_format_t wfmt, xfmt; /* the formats the unit computes in */
    double macs;             /* MACs the unit executes (after skipped zeros) */
    double ops;              /* other operations */
    double mac_j;            /* energy of one MAC */
    double compute_s, latency_s;
    int bound;               /* -1 compute, else the level whose traffic sets the latency */
    double compute_j, static_j, energy_j;
    double bytes[QS_HW_MAX_LEVELS], level_j[QS_HW_MAX_LEVELS];
    double weight_bytes;     /* weights, scales, zero points and bias as stored */
} qs_hw_layer_cost_t;

typedef struct {
    char name[QS_WL_FORMAT_MAX * 2 + 2]; /* "int8xint8" */
    double macs;
} qs_hw_format_ops_t;

typedef struct {
    int nlayers;
    qs_hw_layer_cost_t *layer;
    qs_hw_verdict_t verdict; /* the worst over the layers */
    int mapped, unsupported; /* layers */
    double energy_j, latency_s, compute_j, static_j, model_bytes;
    double bytes[QS_HW_MAX_LEVELS], level_j[QS_HW_MAX_LEVELS];
    int nformats;
    qs_hw_format_ops_t by_format[16];
} qs_hw_cost_t;

/* Prices w on t (per inference). Unsupported layers are priced where a unit
 * can run them and flagged; a layer no unit can run costs 0 and makes the
 * whole verdict unsupported. */
int qs_hw_cost(const qs_hw_target_t *t, const qs_workload_t *w, const qs_hw_cost_opts_t *o, qs_hw_cost_t **out);
void qs_hw_cost_free(qs_hw_cost_t *c);
/* One layer, into *out (no allocation): the building block of qs_hw_cost and of cost tables. */
int qs_hw_cost_layer(const qs_hw_target_t *t, const qs_wl_layer_t *l, const qs_hw_cost_opts_t *o,
                     qs_hw_layer_cost_t *out);

#ifdef __cplusplus
}
#endif
#endif
