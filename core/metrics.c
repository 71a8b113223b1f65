/* core/metrics.c — the metric registry: one table of every metric quasar
 * reports. The names are the keys of --json, the columns of results.h5 and
 * CSV, and the axes of `quasar plot`, so a metric is added here (one line)
 * before any module reports it. Units: "fraction" for ratios in [0, 1], SI
 * base units otherwise (J, s), "bytes", "count", "dB", or "" when the
 * metric has the unit of the data. */
#include "core/core.h"

#include <string.h>

static const qs_metric_t metrics[] = {
    /* tensor quantization error */
    {"mse", "", QS_BETTER_LOWER, "mean squared error of x - x_hat"},
    {"sqnr_db", "dB", QS_BETTER_HIGHER, "signal-to-quantization-noise ratio, 10 log10(sum x^2 / sum (x - x_hat)^2)"},
    {"max_abs_error", "", QS_BETTER_LOWER, "largest |x - x_hat|"},
    {"clipped_fraction", "fraction", QS_BETTER_LOWER, "fraction of elements outside the representable range"},
    {"nonfinite", "count", QS_BETTER_NONE, "number of NaN or infinite inputs"},
    {"elements", "count", QS_BETTER_NONE, "number of elements"},
    {"scale_min", "", QS_BETTER_NONE, "smallest quantization scale"},
    {"scale_max", "", QS_BETTER_NONE, "largest quantization scale"},
    {"w_sqnr_db", "dB", QS_BETTER_HIGHER, "SQNR of a layer's quantized weights, 10 log10(sum w^2 / sum (w - w_hat)^2)"},
    {"a_sqnr_db", "dB", QS_BETTER_HIGHER, "SQNR of a layer's quantized output activations over the evaluation images"},
    /* network accuracy */
    {"top1", "fraction", QS_BETTER_HIGHER, "top-1 accuracy on the test split"},
    {"loss", "", QS_BETTER_LOWER, "mean softmax cross-entropy over a training epoch"},
    {"train_top1", "fraction", QS_BETTER_HIGHER, "top-1 accuracy on the (augmented) training batches of an epoch"},
    {"top5", "fraction", QS_BETTER_HIGHER, "top-5 accuracy on the test split"},
    {"agreement", "fraction", QS_BETTER_HIGHER, "fraction of inputs whose top-1 class matches the float reference"},
    {"float_top1", "fraction", QS_BETTER_HIGHER, "top-1 accuracy of the float model on the same images"},
    {"logit_sqnr_db", "dB", QS_BETTER_HIGHER, "SQNR of the logits against the float model's, 10 log10(sum l^2 / sum (l - l_q)^2)"},
    /* the integer engine */
    {"fake_top1", "fraction", QS_BETTER_HIGHER, "top-1 accuracy of the fake-quant engine on the same images"},
    {"fake_agreement", "fraction", QS_BETTER_HIGHER, "fraction of inputs whose top-1 class matches the fake-quant engine's"},
    {"fake_logit_sqnr_db", "dB", QS_BETTER_HIGHER, "SQNR of the integer engine's logits against the fake-quant engine's"},
    {"overflow_fraction", "fraction", QS_BETTER_LOWER, "fraction of accumulator values whose accumulation overflowed"},
    {"overflow_events", "count", QS_BETTER_LOWER, "additions whose exact result left the accumulator register"},
    {"code_mismatch_fraction", "fraction", QS_BETTER_LOWER, "fraction of activation codes that differ from the fake-quant engine's"},
    {"acc_needed_bits", "count", QS_BETTER_LOWER, "accumulator width every final sum of the data fits"},
    {"acc_width_datatype", "count", QS_BETTER_LOWER, "guaranteed accumulator width over the data type"},
    {"acc_width_a2q", "count", QS_BETTER_LOWER, "guaranteed accumulator width by the A2Q bound on the weights' L1 norm"},
    {"acc_width_a2qplus", "count", QS_BETTER_LOWER, "guaranteed accumulator width by the A2Q+ bound"},
    /* hardware cost */
    {"energy_j", "J", QS_BETTER_LOWER, "energy of one inference on the target"},
    {"latency_s", "s", QS_BETTER_LOWER, "latency of one inference on the target"},
    {"model_bytes", "bytes", QS_BETTER_LOWER, "size of the quantized weights, scales and zero points"},
    {"offchip_bytes", "bytes", QS_BETTER_LOWER, "bytes moved to and from off-chip memory in one inference on the target"},
    {"compute_energy_j", "J", QS_BETTER_LOWER, "energy of the arithmetic of one inference on the target"},
    {"memory_energy_j", "J", QS_BETTER_LOWER, "energy of the memory traffic of one inference on the target"},
    {"static_energy_j", "J", QS_BETTER_LOWER, "static (leakage, idle) energy over the latency of one inference"},
    /* network size */
    {"params", "count", QS_BETTER_LOWER, "parameters of the network (weights, biases, batchnorm gamma, beta, mean, var)"},
    {"macs", "count", QS_BETTER_LOWER, "multiply-accumulates of one inference (conv2d and linear), per image"},
    {"macs_nonzero", "count", QS_BETTER_LOWER, "multiply-accumulates with a non-zero (unpruned) weight, per image"},
    {"density", "fraction", QS_BETTER_LOWER, "fraction of conv2d/linear weights a pruning mask keeps"},
    /* the run itself */
    {"seconds", "s", QS_BETTER_LOWER, "wall time of the run"},
    {"img_s", "1/s", QS_BETTER_HIGHER, "images per second of an evaluation"},
};

size_t qs_metric_count(void) { return sizeof metrics / sizeof metrics[0]; }

const qs_metric_t *qs_metric_at(size_t i) { return i < qs_metric_count() ? &metrics[i] : NULL; }

const qs_metric_t *qs_metric_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < qs_metric_count(); i++)
        if (strcmp(metrics[i].name, name) == 0)
            return &metrics[i];
    return NULL;
}
