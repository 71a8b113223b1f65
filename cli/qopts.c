/* cli/qopts.c — the options every command that quantizes a network shares:
 * the network's quantization (--preset, --weights, --acts, --bias, --layer)
 * and its calibration (--calib-data, --calib-images, --calib-seed), the step
 * that turns them into a calibrated qs_qnet_t (or reads a quantized model),
 * and the integer engine's --acc, --requant and --layer NAME:acc=|requant=. */
#include "config.h"

#include "cli/cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const qs_cli_qopts_help =
    "Network quantization (docs/quantization.md; SPEC in the grammar of docs/spec.md):\n"
    "  --preset P               w8a8 (default), w4a8, wNaM (N, M in 1..16, f = float), float\n"
    "  --weights SPEC           words on top of the preset's weight quantizer, or float\n"
    "                           (preset: symmetric, per output channel, minmax)\n"
    "  --acts SPEC              words on top of the activation quantizer, or float\n"
    "                           (preset: asymmetric, per tensor, minmax)\n"
    "  --bias SPEC              the bias quantizer (preset: int32 at s_w*s_x), or float\n"
    "  --layer NAME:OVERRIDE    per layer, repeatable, later wins: NAME:weights=SPEC,\n"
    "                           NAME:acts=SPEC, NAME:bias=SPEC, NAME:float, NAME:wNaM;\n"
    "                           NAME is a node, first or last (the first/last conv/linear)\n"
    "Calibration (activation ranges; on the training split):\n"
    "  --calib-data SPEC        fmnist:train (default) or FILE.h5\n"
    "  --calib-images N         a seeded subset of N images (default 1000)\n"
    "  --calib-seed S           the subset's seed (default 1)\n";

int qs_cli_qopts_parse(int argc, char **argv, int *i, qs_cli_qopts_t *o)
{
    static const char *const flags[] = {"--preset", "--weights", "--acts", "--bias", "--layer", "--calib-data",
                                        "--calib-images", "--calib-seed"};
    const char *v;
    for (size_t k = 0; k < sizeof flags / sizeof *flags; k++) {
        int m = qs_cli_opt(argc, argv, i, flags[k], &v);
        if (m == 0)
            continue;
        if (m < 0)
            return -1;
        o->any = true;
        switch (k) {
        case 0:
            if (o->preset)
                return qs_cli_error(QS_EXIT_USAGE, "--preset given twice"), -1;
            o->preset = v;
            break;
        case 1:
        case 2:
        case 3:
            if (o->spec[k - 1])
                return qs_cli_error(QS_EXIT_USAGE, "%s given twice", flags[k]), -1;
            o->spec[k - 1] = v;
            break;
        case 4:
            if (o->nlayers >= QS_QCONFIG_MAX_OVERRIDES)
                return qs_cli_error(QS_EXIT_USAGE, "more than %d --layer options", QS_QCONFIG_MAX_OVERRIDES), -1;
            o->layers[o->nlayers++] = v;
            break;
        case 5:
            if (o->calib_data)
                return qs_cli_error(QS_EXIT_USAGE, "--calib-data given twice"), -1;
            o->calib_data = v;
            break;
        case 6:
            if (qs_kv_int("--calib-images", NULL, v, 1, INT64_C(1) << 40, &o->calib_images) < 0)
                return qs_cli_fail(QS_EXIT_USAGE), -1;
            break;
        default: {
            int64_t s;
            if (qs_kv_int("--calib-seed", NULL, v, 0, INT64_MAX, &s) < 0)
                return qs_cli_fail(QS_EXIT_USAGE), -1;
            o->calib_seed = (uint64_t)s;
            o->calib_seed_set = true;
            break;
        }
        }
        return 1;
    }
    return 0;
}

int qs_cli_qopts_config(const qs_cli_qopts_t *o, qs_qconfig_t *c)
{
    qs_qconfig_default(c);
    if (o->preset && qs_qconfig_preset(c, o->preset, "--preset") < 0)
        return -1;
    static const char *const what[QS_QT_COUNT] = {"--weights", "--acts", "--bias"};
    for (int t = 0; t < QS_QT_COUNT; t++)
        if (o->spec[t] && qs_qconfig_set(c, (qs_qtarget_t)t, o->spec[t], what[t]) < 0)
            return -1;
    for (int k = 0; k < o->nlayers; k++)
        if (qs_qconfig_override(c, o->layers[k], "--layer") < 0)
            return -1;
    return 0;
}

/* "\rquasar: calibrate 512/1000 images" on a terminal's stderr */
static int on_progress(const qs_progress_t *p, void *user)
{
    (void)user;
    fprintf(stderr, "\rquasar: %s %" PRId64 "/%" PRId64 " images\033[K", p->task, p->done, p->total);
    fflush(stderr);
    return 0;
}

int qs_cli_quantize_net(const qs_graph_t *g, const qs_cli_qopts_t *o, qs_pool_t *pool, qs_qnet_t **out)
{
    qs_qconfig_t c;
    qs_dataset_t *d = NULL;
    *out = NULL;
    if (qs_cli_qopts_config(o, &c) < 0)
        return -1;
    qs_qnet_t *q = NULL;
    if (qs_qnet_create(g, &c, &q) < 0)
        return -1;
    if (qs_dataset_open(o->calib_data ? o->calib_data : "fmnist:train", &d) < 0) {
        qs_qnet_free(q);
        return -1;
    }
    qs_calib_opts_t co;
    qs_calib_opts_default(&co);
    if (o->calib_images > 0)
        co.images = o->calib_images;
    if (o->calib_seed_set)
        co.seed = o->calib_seed;
    co.pool = pool;
    co.reference = o->reference;
    bool tty = isatty(STDERR_FILENO);
    qs_progress_cb_t cb = {tty ? on_progress : NULL, NULL, 0};
    int rc = qs_qnet_calibrate(q, d, &co, &cb);
    if (tty)
        fputs("\r\033[K", stderr);
    qs_dataset_free(d);
    if (rc < 0) {
        qs_qnet_free(q);
        return -1;
    }
    *out = q;
    return 0;
}

int qs_cli_load_qnet(const char *cmd, const char *model, const qs_cli_qopts_t *o, qs_pool_t *pool, qs_qnet_t **out)
{
    *out = NULL;
    int quantized = qs_model_is_quantized(model);
    if (quantized < 0)
        return -1;
    if (quantized && o->any)
        return qs_error(QS_ERR_INVALID, "%s: '%s' is a quantized model: its calibrated quantizers are used as "
                        "they are; drop the quantization options, or quantize its float model", cmd, model);
    if (quantized)
        return qs_qnet_load(model, out) < 0 ? -1 : 0;
    qs_graph_t *g = NULL;
    int rc = qs_model_load(model, &g);
    if (rc >= 0)
        rc = qs_cli_quantize_net(g, o, pool, out);
    qs_graph_free(g);
    return rc < 0 ? -1 : 0;
}

int qs_cli_intopts_parse(int argc, char **argv, int *i, qs_int_config_t *c)
{
    const char *v;
    int m;
    if ((m = qs_cli_opt(argc, argv, i, "--acc", &v)) != 0)
        return m < 0 || qs_acc_parse(v, "--acc", &c->acc) < 0 ? (m < 0 ? -1 : (qs_cli_fail(QS_EXIT_USAGE), -1)) : 1;
    if ((m = qs_cli_opt(argc, argv, i, "--requant", &v)) != 0)
        return m < 0 || qs_requant_parse(v, "--requant", &c->rq) < 0 ? (m < 0 ? -1 : (qs_cli_fail(QS_EXIT_USAGE), -1))
                                                                       : 1;
    int j = *i;
    if ((m = qs_cli_opt(argc, argv, &j, "--layer", &v)) > 0) {
        const char *colon = strchr(v, ':');
        if (colon && (strncmp(colon + 1, "acc=", 4) == 0 || strncmp(colon + 1, "requant=", 8) == 0)) {
            *i = j;
            return qs_int_config_override(c, v, "--layer") < 0 ? (qs_cli_fail(QS_EXIT_USAGE), -1) : 1;
        }
    }
    return 0;
}
