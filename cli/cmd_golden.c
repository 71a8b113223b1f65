/* cli/cmd_golden.c — `quasar golden MODEL (--layer NAME ... | --all) -o DIR`:
 * golden test vectors for RTL test benches (docs/golden.md). MODEL is
 * quantized as eval quantizes it (or read as a quantized model), one image of
 * the data runs through the integer engine, and the chosen conv2d/linear
 * layers' input codes, weight codes, bias, accumulators and output codes go
 * to DIR. The work is qs_golden_write's; this file parses, picks the image
 * and prints what was written. */
#include "config.h"

#include "cli/cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void qs_help_golden(FILE *out)
{
    fprintf(out,
            "Usage: quasar golden MODEL.h5 (--layer NAME ... | --all) -o DIR [--image I] [--data SPEC]\n"
            "                              [--threads N] [--reference] [--acc SPEC] [--requant SPEC]\n"
            "                              [--preset P] [--weights SPEC] [--acts SPEC] [--layer ...]\n"
            "\n"
            "Writes golden test vectors for RTL test benches of conv2d/linear layers. MODEL\n"
            "is quantized as 'quasar eval' quantizes it (BatchNorm folded, weights quantized,\n"
            "activations calibrated on the training split), or used as it is when it is a\n"
            "quantized-model file; one image runs through the bit-exact integer engine, and\n"
            "for each chosen layer NAME the folder DIR gets:\n"
            "  DIR/golden.h5            a group /NAME per layer with datasets input, weight,\n"
            "                           bias, acc and output, the weight zero points and\n"
            "                           scales, and the widths, grids, accumulator,\n"
            "                           requantizer and accumulation order as attributes\n"
            "  DIR/NAME.input.hex       for $readmemh: one value per line, lowercase hex,\n"
            "  DIR/NAME.weight.hex      two's complement at the declared width with\n"
            "  DIR/NAME.bias.hex        ceil(width/4) digits, row-major: the input codes\n"
            "  DIR/NAME.acc.hex         (C,H,W or F), the weight codes (O,I/groups,kh,kw or\n"
            "  DIR/NAME.output.hex      O,I), the int32 bias (O), the accumulator register\n"
            "                           before requantization and the output codes after it\n"
            "                           and the clamps of the layer's ReLU/clip (O,OH,OW or O)\n"
            "  DIR/NAME.txt             each file's width, signedness, shape and order, the\n"
            "                           zero points, scales and multipliers, and the formulas\n"
            "Widths: input and output codes at their quantizer's bits, weights at the\n"
            "weight bits, bias 32, acc the register's width (64 for acc=exact). Files of the\n"
            "same names are replaced only once every file was written; DIR is created when\n"
            "missing. The files are described in docs/golden.md.\n"
            "\n"
            "  --layer NAME             a conv2d/linear layer (repeatable; first and last name\n"
            "                           the first and last one); with a ':' it is an override:\n"
            "                           NAME:acc=SPEC, NAME:requant=SPEC or those below\n"
            "  --all                    every conv2d/linear layer\n"
            "  -o, --output DIR         the folder (required)\n"
            "  --image I                the image: index I of the data (default 0)\n"
            "  --data SPEC              fmnist:test (default), fmnist:train, or FILE.h5 with\n"
            "                           /images (N x C x H x W, uint8 or float32) and /labels\n"
            "  --threads N              worker threads for calibration (default: $QUASAR_THREADS\n"
            "                           or all cores); the vectors do not depend on it\n"
            "  --reference              calibrate on the BLAS-free reference path (slow; see\n"
            "                           docs/engine.md)\n"
            "  --acc SPEC               every conv2d/linear accumulator (docs/spec.md,\n"
            "                           \"Accumulators\"), e.g. int16,overflow=saturate; default\n"
            "                           int32,overflow=wrap; float accumulators are refused\n"
            "  --requant SPEC           the requantizer (docs/spec.md, \"Requantizers\"):\n"
            "                           float64 (default), float32, fixed-point, shift, or the\n"
            "                           presets gemmlowp, qnnpack (bias=float, as in onednn, is\n"
            "                           refused: its output is no function of the vectors)\n"
            "  --layer NAME:acc=SPEC    one layer's accumulator (repeatable; also\n"
            "  --layer NAME:requant=SPEC  NAME:requant=SPEC), on top of --acc/--requant\n"
            "\n"
            "%s"
            "\n"
            "Fashion-MNIST is read from /usr/share/datasets/fashion-mnist (Debian's\n"
            "dataset-fashion-mnist) or from $QUASAR_FASHION_MNIST.\n"
            "Exit status: 0 success, 1 runtime error (bad model or data, unknown layer, a\n"
            "file that cannot be written), 2 usage error.\n",
            qs_cli_qopts_help);
}

#define MAX_SELECT 1024

typedef struct {
    const char *model, *data, *out;
    int64_t image, threads;
    bool all, reference;
    int nsel;
    const char *sel[MAX_SELECT];
    qs_cli_qopts_t q;
    qs_int_config_t ic;
} opts_t;

static int parse_args(int argc, char **argv, opts_t *o)
{
    const char *v;
    int m;
    bool image_set = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--all") == 0) {
            o->all = true;
            continue;
        }
        if (strcmp(a, "--reference") == 0) {
            o->reference = true;
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "-o", &v)) != 0 || (m = qs_cli_opt(argc, argv, &i, "--output", &v)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            if (o->out)
                return qs_cli_error(QS_EXIT_USAGE, "-o/--output given twice");
            if (!*v)
                return qs_cli_error(QS_EXIT_USAGE, "-o/--output: an empty folder name");
            o->out = v;
            continue;
        }
        if ((m = qs_cli_intopts_parse(argc, argv, &i, &o->ic)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            continue;
        }
        /* --layer NAME without ':' chooses a layer; with one it is a quantization override */
        int j = i;
        if ((m = qs_cli_opt(argc, argv, &j, "--layer", &v)) > 0 && !strchr(v, ':')) {
            if (!*v)
                return qs_cli_error(QS_EXIT_USAGE, "--layer: an empty layer name");
            if (o->nsel >= MAX_SELECT)
                return qs_cli_error(QS_EXIT_USAGE, "more than %d --layer NAME options", MAX_SELECT);
            o->sel[o->nsel++] = v;
            i = j;
            continue;
        }
        if ((m = qs_cli_qopts_parse(argc, argv, &i, &o->q)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "--data", &v)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            if (o->data)
                return qs_cli_error(QS_EXIT_USAGE, "--data given twice");
            o->data = v;
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "--image", &v)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            if (image_set)
                return qs_cli_error(QS_EXIT_USAGE, "--image given twice");
            if (qs_kv_int("--image", NULL, v, 0, INT64_MAX, &o->image) < 0)
                return qs_cli_fail(QS_EXIT_USAGE);
            image_set = true;
            continue;
        }
        if ((m = qs_cli_opt(argc, argv, &i, "--threads", &v)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            if (qs_kv_int("--threads", NULL, v, 1, 1024, &o->threads) < 0)
                return qs_cli_fail(QS_EXIT_USAGE);
            continue;
        }
        if (a[0] == '-' && a[1] != '\0')
            return qs_cli_error(QS_EXIT_USAGE, "golden: unknown option '%s' (see 'quasar help golden')", a);
        if (o->model)
            return qs_cli_error(QS_EXIT_USAGE, "golden: unexpected argument '%s' (see 'quasar help golden')", a);
        o->model = a;
    }
    if (!o->model)
        return qs_cli_error(QS_EXIT_USAGE, "golden: expected MODEL.h5 (see 'quasar help golden')");
    if (!o->out)
        return qs_cli_error(QS_EXIT_USAGE, "golden: expected -o DIR, the folder to write (see 'quasar help golden')");
    if (!o->all && o->nsel == 0)
        return qs_cli_error(QS_EXIT_USAGE, "golden: choose layers with --layer NAME (repeatable) or --all (see "
                            "'quasar help golden')");
    if (o->all && o->nsel > 0)
        return qs_cli_error(QS_EXIT_USAGE, "golden: --all and --layer %s: give one or the other", o->sel[0]);
    if (!o->data)
        o->data = "fmnist:test";
    qs_qconfig_t c; /* a bad spec or preset is a usage error, found before any work */
    if (o->q.any && qs_cli_qopts_config(&o->q, &c) < 0)
        return qs_cli_fail(QS_EXIT_USAGE);
    return QS_EXIT_OK;
}

/* "u8", "s4", "s32": a width and signedness in a table cell */
static const char *wtype(int bits, bool is_signed, char *buf, size_t n)
{
    snprintf(buf, n, "%c%d", is_signed ? 's' : 'u', bits);
    return buf;
}

static const char *dims(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int d = 0; d < ndim && used < n; d++)
        used += (size_t)snprintf(buf + used, n - used, "%s%" PRId64, d ? "x" : "", shape[d]);
    return buf;
}

static void print_summary(const opts_t *o, const qs_qnet_t *q, const qs_dataset_t *d, int32_t label,
                          const qs_golden_layer_t *info, int n)
{
    const qs_graph_t *g = q->g;
    char cfg[4096], a[256], rq[256];
    printf("model       %s (%s)\n", g->name[0] ? g->name : "unnamed", o->model);
    printf("image       %" PRId64 " of %s (%" PRId64 " images), label %" PRId32 "\n", o->image, d->source, d->n, label);
    printf("engine      int; %d batchnorm%s folded\n", q->folded, q->folded == 1 ? "" : "s");
    qs_qconfig_str(&q->cfg, cfg, sizeof cfg);
    for (char *line = strtok(cfg, "\n"); line; line = strtok(NULL, "\n"))
        printf("  %s\n", line);
    printf("  acc %s\n  requant %s\n", qs_acc_str(&o->ic.acc, a, sizeof a), qs_requant_str(&o->ic.rq, rq, sizeof rq));
    for (int k = 0; k < o->ic.noverrides; k++)
        printf("  --layer %s:%s\n", o->ic.ov[k].layer, o->ic.ov[k].spec);
    printf("calibration %s, %" PRId64 " images (seed %" PRIu64 ")\n", q->calib.source, q->calib.images, q->calib.seed);
    size_t dl = strlen(o->out);
    while (dl > 1 && o->out[dl - 1] == '/')
        dl--;
    printf("wrote       %.*s/golden.h5 and %d text files\n", (int)dl, o->out, 6 * n);
    printf("\n%-14s %-7s %6s  %-14s %-16s %-14s %-14s %10s  %s\n", "layer", "op", "K", "input", "weight", "acc",
           "output", "overflowed", "files");
    for (int k = 0; k < n; k++) {
        const qs_golden_layer_t *l = &info[k];
        char s[64], t[16], in[96], w[96], ac[96], out[96];
        snprintf(in, sizeof in, "%s %s", dims(l->in_ndim, l->in_shape, s, sizeof s),
                 wtype(l->in_bits, l->in_signed, t, sizeof t));
        snprintf(w, sizeof w, "%s %s", dims(l->w_ndim, l->w_shape, s, sizeof s),
                 wtype(l->w_bits, l->w_signed, t, sizeof t));
        snprintf(ac, sizeof ac, "%s %s", dims(l->out_ndim, l->out_shape, s, sizeof s),
                 wtype(l->acc_bits, true, t, sizeof t));
        snprintf(out, sizeof out, "%s %s", dims(l->out_ndim, l->out_shape, s, sizeof s),
                 wtype(l->out_bits, l->out_signed, t, sizeof t));
        printf("%-14s %-7s %6" PRId64 "  %-14s %-16s %-14s %-14s %10" PRId64 "  %s.{input,weight,bias,acc,output}.hex "
               "%s.txt\n", l->name, qs_op_name(l->op), l->k, in, w, ac, out, l->overflowed, l->name, l->name);
    }
    printf("\nshapes per image, u/s: unsigned/signed and the width in bits of the hex values;\n"
           "acc: the register before requantization; overflowed: its values with an overflow event.\n");
}

static int run(const opts_t *o)
{
    qs_dataset_t *d = NULL;
    qs_pool_t *pool = NULL;
    qs_qnet_t *q = NULL;
    qs_tensor_t *x = NULL;
    int *layers = NULL;
    qs_golden_layer_t *info = NULL;
    int ex = QS_EXIT_OK, n = 0;
    if (qs_dataset_open(o->data, &d) < 0)
        goto fail;
    /* a wrong index is found before the calibration */
    if (o->image >= d->n) {
        ex = qs_cli_error(QS_EXIT_USAGE, "golden: --image %" PRId64 ": %s has %" PRId64 " image%s (0..%" PRId64 ")",
                          o->image, d->source, d->n, d->n == 1 ? "" : "s", d->n - 1);
        goto done;
    }
    if (!(pool = qs_pool_create((int)o->threads)))
        goto fail;
    qs_cli_qopts_t qo = o->q;
    qo.reference = o->reference;
    if (qs_cli_load_qnet("golden", o->model, &qo, pool, &q) < 0)
        goto fail;
    const qs_graph_t *g = q->g;
    int want = o->all ? g->nnodes : o->nsel;
    layers = calloc((size_t)want, sizeof *layers);
    info = calloc((size_t)want, sizeof *info);
    if (!layers || !info) {
        qs_error(QS_ERR_NOMEM, "golden: out of memory");
        goto fail;
    }
    if (o->all) {
        for (int i = 0; i < g->nnodes; i++)
            if (g->nodes[i].op == QS_OP_CONV2D || g->nodes[i].op == QS_OP_LINEAR)
                layers[n++] = i;
        if (n == 0) {
            qs_error(QS_ERR_INVALID, "golden: model '%s' has no conv2d or linear layer", g->name);
            goto fail;
        }
    } else {
        for (int k = 0; k < o->nsel; k++) {
            int i = qs_golden_find(q, o->sel[k]);
            if (i < 0)
                goto fail;
            bool dup = false;
            for (int j = 0; j < n; j++)
                dup |= layers[j] == i;
            if (!dup) /* --layer stem --layer first: one layer */
                layers[n++] = i;
        }
    }
    int64_t shape[4] = {1, g->in_c, g->in_h, g->in_w};
    int32_t label = 0;
    if (!(x = qs_tensor_create(QS_F32, 4, shape)) || qs_dataset_batch(d, g, o->image, NULL, 1, x, &label) < 0)
        goto fail;
    if (qs_golden_write(q, &o->ic, x, o->image, d->source, layers, n, o->out, info) < 0)
        goto fail;
    print_summary(o, q, d, label, info, n);
    goto done;
fail:
    ex = qs_cli_fail(QS_EXIT_RUNTIME);
done:
    free(layers);
    free(info);
    qs_tensor_free(x);
    qs_qnet_free(q);
    qs_pool_free(pool);
    qs_dataset_free(d);
    return ex;
}

int qs_cmd_golden(int argc, char **argv)
{
    opts_t o;
    memset(&o, 0, sizeof o);
    qs_int_config_default(&o.ic);
    int ex = parse_args(argc, argv, &o);
    if (ex == QS_EXIT_OK)
        ex = run(&o);
    return ex;
}
