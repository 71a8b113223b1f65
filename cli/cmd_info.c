/* cli/cmd_info.c — `quasar info MODEL [--json]`: what a model file holds —
 * its name, input and normalization, one row per node (inputs, output
 * shape, parameters, MACs, attributes) and the totals. The model is loaded
 * and validated by the library, so a bad file gets the loader's message.
 *
 * Every per-node figure is computed once into a layer_t, which the text
 * table and the JSON printer both read; a new per-layer column is a field
 * there, filled in describe() and printed by both. */
#include "config.h"

#include "cli/cli.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void qs_help_info(FILE *out)
{
    fprintf(out,
            "Usage: quasar info MODEL.h5 [--json]\n"
            "\n"
            "Loads and validates a model file (docs/model-format.md) and prints its name,\n"
            "input shape and normalization, one row per node (index, name, op, inputs,\n"
            "output shape, parameters, MACs per image, attributes such as k3x3 s2 p1 g16)\n"
            "and the totals: parameters, MACs per image and the size of the parameters\n"
            "as float32.\n"
            "\n"
            "Attributes: kKHxKW kernel, sS stride (sSHxSW), pP padding (pT,L,B,R when the\n"
            "sides differ), dD dilation, gG groups, no-bias, sparsity F (fraction of weights\n"
            "a mask prunes), eps E, clip [A, B], to SHAPE (reshape).\n"
            "\n"
            "  --json                   print one JSON object: params, macs, model_bytes\n"
            "                           (metric names) and name, file, input_shape,\n"
            "                           input_scale, norm_mean, norm_std, output,\n"
            "                           num_classes, nodes, and layers (one object per node)\n"
            "\n"
            "Exit status: 0 success, 1 runtime error (e.g. a bad model file), 2 usage error.\n");
}

typedef struct {
    char inputs[QS_MAX_INPUTS * QS_NAME_MAX + 8]; /* "conv1,bn1" */
    char shape[64];                               /* "16x14x14" or "10" */
    char attrs[160];                              /* "k3x3 s2 p1 g16" */
    int64_t params, macs;
} layer_t;

static void join_shape(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int k = 0; k < ndim && used < n; k++)
        used += (size_t)snprintf(buf + used, n - used, "%s%" PRId64, k ? "x" : "", shape[k]);
}

/* Appends " word" (or "word" at the start) to buf. */
QS_PRINTF(3, 4) static void add_attr(char *buf, size_t n, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used + 1 >= n)
        return;
    if (used) {
        buf[used++] = ' ';
        buf[used] = '\0';
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, n - used, fmt, ap);
    va_end(ap);
}

static void window_attrs(const qs_node_t *nd, char *a, size_t n)
{
    add_attr(a, n, "k%dx%d", nd->kh, nd->kw);
    if (nd->stride_h != 1 || nd->stride_w != 1) {
        if (nd->stride_h == nd->stride_w)
            add_attr(a, n, "s%d", nd->stride_h);
        else
            add_attr(a, n, "s%dx%d", nd->stride_h, nd->stride_w);
    }
    int t = nd->pad_top, l = nd->pad_left, b = nd->pad_bottom, r = nd->pad_right;
    if (t == l && l == b && b == r) {
        if (t)
            add_attr(a, n, "p%d", t);
    } else {
        add_attr(a, n, "p%d,%d,%d,%d", t, l, b, r);
    }
}

static void describe(const qs_graph_t *g, int i, layer_t *L)
{
    const qs_node_t *nd = &g->nodes[i];
    memset(L, 0, sizeof *L);
    size_t used = 0;
    for (int k = 0; k < nd->ninputs; k++)
        used += (size_t)snprintf(L->inputs + used, sizeof L->inputs - used, "%s%s", k ? "," : "",
                                 g->nodes[nd->inputs[k]].name);
    join_shape(nd->out_ndim, nd->out_shape, L->shape, sizeof L->shape);
    const qs_tensor_t *t[] = {nd->weight, nd->bias, nd->gamma, nd->beta, nd->mean, nd->var};
    for (size_t k = 0; k < sizeof t / sizeof *t; k++)
        if (t[k])
            L->params += t[k]->size;
    L->macs = qs_node_macs(g, i);
    char *a = L->attrs;
    size_t n = sizeof L->attrs;
    switch (nd->op) {
    case QS_OP_CONV2D:
        window_attrs(nd, a, n);
        if (nd->dil_h != 1 || nd->dil_w != 1) {
            if (nd->dil_h == nd->dil_w)
                add_attr(a, n, "d%d", nd->dil_h);
            else
                add_attr(a, n, "d%dx%d", nd->dil_h, nd->dil_w);
        }
        if (nd->groups != 1)
            add_attr(a, n, "g%d", nd->groups);
        break;
    case QS_OP_MAXPOOL:
    case QS_OP_AVGPOOL: window_attrs(nd, a, n); break;
    case QS_OP_BATCHNORM: add_attr(a, n, "eps %g", (double)nd->eps); break;
    case QS_OP_CLIP: add_attr(a, n, "clip [%g, %g]", (double)nd->clip_min, (double)nd->clip_max); break;
    case QS_OP_RESHAPE: {
        char s[64];
        join_shape(nd->reshape_ndim, nd->reshape, s, sizeof s);
        add_attr(a, n, "to %s", s);
        break;
    }
    default: break;
    }
    if ((nd->op == QS_OP_CONV2D || nd->op == QS_OP_LINEAR) && !nd->bias)
        add_attr(a, n, "no-bias");
    if (nd->mask) {
        int64_t zeros = 0;
        for (int64_t k = 0; k < nd->mask->size; k++)
            zeros += qs_f32(nd->mask)[k] == 0.0f;
        add_attr(a, n, "sparsity %.3f", (double)zeros / (double)nd->mask->size);
    }
}

/* The shortest decimal that reads back as the same float32 ("0.286", not
 * "0.286000013"); as a double, so that JSON prints it the same way. */
static double short_float(float v)
{
    char buf[32];
    for (int prec = 1; prec < 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)v);
        if ((float)strtod(buf, NULL) == v)
            return strtod(buf, NULL);
    }
    return (double)v;
}

static void print_floats(FILE *out, const float *v, int64_t n)
{
    fputc('[', out);
    for (int64_t k = 0; k < n; k++)
        fprintf(out, "%s%.9g", k ? ", " : "", short_float(v[k]));
    fputc(']', out);
}

static void print_text(const char *path, const qs_graph_t *g, const layer_t *L)
{
    printf("model       %s (%s)\n", g->name[0] ? g->name : "(unnamed)", path);
    printf("input       %" PRId64 "x%" PRId64 "x%" PRId64 " (C x H x W), x = (p * %.9g - mean) / std\n", g->in_c,
           g->in_h, g->in_w, short_float(g->input_scale));
    printf("            mean ");
    print_floats(stdout, g->norm_mean, g->in_c);
    printf(", std ");
    print_floats(stdout, g->norm_std, g->in_c);
    printf("\noutput      %s (%d classes)\n\n", g->nodes[g->output].name, g->num_classes);

    /* column widths from the content, with the headers as minimum */
    int wname = 4, wop = 2, win = 6, wshape = 6, wpar = 6, wmac = 4;
    for (int i = 0; i < g->nnodes; i++) {
        char num[32];
        int w;
        if ((w = (int)strlen(g->nodes[i].name)) > wname)
            wname = w;
        if ((w = (int)strlen(qs_op_name(g->nodes[i].op))) > wop)
            wop = w;
        if ((w = (int)strlen(L[i].inputs)) > win)
            win = w;
        if ((w = (int)strlen(L[i].shape)) > wshape)
            wshape = w;
        if ((w = snprintf(num, sizeof num, "%" PRId64, L[i].params)) > wpar)
            wpar = w;
        if ((w = snprintf(num, sizeof num, "%" PRId64, L[i].macs)) > wmac)
            wmac = w;
    }
    int widx = g->nnodes > 1000 ? 5 : 3;
    printf("%*s  %-*s  %-*s  %-*s  %-*s  %*s  %*s  %s\n", widx, "#", wname, "name", wop, "op", win, "inputs", wshape,
           "output", wpar, "params", wmac, "MACs", "attributes");
    for (int i = 0; i < g->nnodes; i++) {
        char line[1024];
        snprintf(line, sizeof line, "%*d  %-*s  %-*s  %-*s  %-*s  %*" PRId64 "  %*" PRId64 "  %s", widx, i, wname,
                 g->nodes[i].name, wop, qs_op_name(g->nodes[i].op), win, L[i].inputs, wshape, L[i].shape, wpar,
                 L[i].params, wmac, L[i].macs, L[i].attrs);
        size_t len = strlen(line); /* no trailing spaces when attrs is empty */
        while (len > 0 && line[len - 1] == ' ')
            line[--len] = '\0';
        puts(line);
    }
    int64_t params = qs_graph_params(g);
    printf("\nparameters  %" PRId64 " (%.1f KiB as float32)\n", params, (double)params * 4.0 / 1024.0);
    printf("MACs        %" PRId64 " per image\n", qs_graph_macs(g));
}

static int print_json(const char *path, const qs_graph_t *g, const layer_t *L)
{
    qs_json_t j;
    qs_json_begin(&j, stdout);
    qs_json_str(&j, "file", path);
    qs_json_str(&j, "name", g->name);
    int64_t params = qs_graph_params(g);
    int rc = qs_json_metric(&j, "params", (double)params);
    if (rc == QS_OK)
        rc = qs_json_metric(&j, "macs", (double)qs_graph_macs(g));
    if (rc == QS_OK)
        rc = qs_json_metric(&j, "model_bytes", (double)params * 4.0);
    qs_json_num(&j, "input_scale", short_float(g->input_scale));
    qs_json_str(&j, "output", g->nodes[g->output].name);
    qs_json_int(&j, "num_classes", g->num_classes);
    qs_json_int(&j, "nodes", g->nnodes);
    /* the arrays are written by hand: the flat writer has scalar values only */
    FILE *out = j.out;
    fprintf(out, ", \"input_shape\": [%" PRId64 ", %" PRId64 ", %" PRId64 "]", g->in_c, g->in_h, g->in_w);
    fputs(", \"norm_mean\": ", out);
    print_floats(out, g->norm_mean, g->in_c);
    fputs(", \"norm_std\": ", out);
    print_floats(out, g->norm_std, g->in_c);
    fputs(", \"layers\": [", out);
    for (int i = 0; i < g->nnodes; i++) {
        const qs_node_t *nd = &g->nodes[i];
        fprintf(out, "%s{\"index\": %d, \"name\": ", i ? ", " : "", i);
        qs_json_write_string(out, nd->name);
        fputs(", \"op\": ", out);
        qs_json_write_string(out, qs_op_name(nd->op));
        fputs(", \"inputs\": [", out);
        for (int k = 0; k < nd->ninputs; k++) {
            fputs(k ? ", " : "", out);
            qs_json_write_string(out, g->nodes[nd->inputs[k]].name);
        }
        fputs("], \"output_shape\": [", out);
        for (int k = 0; k < nd->out_ndim; k++)
            fprintf(out, "%s%" PRId64, k ? ", " : "", nd->out_shape[k]);
        fprintf(out, "], \"params\": %" PRId64 ", \"macs\": %" PRId64 ", \"attributes\": ", L[i].params, L[i].macs);
        qs_json_write_string(out, L[i].attrs);
        fputc('}', out);
    }
    fputc(']', out);
    j.count += 5;
    qs_json_end(&j);
    return rc;
}

int qs_cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false, options = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options && strcmp(a, "--") == 0) {
            options = false;
            continue;
        }
        if (options && strcmp(a, "--json") == 0) {
            json = true;
            continue;
        }
        if (options && a[0] == '-' && a[1] != '\0')
            return qs_cli_error(QS_EXIT_USAGE, "info: unknown option '%s' (see 'quasar help info')", a);
        if (path)
            return qs_cli_error(QS_EXIT_USAGE, "info: unexpected argument '%s' (see 'quasar help info')", a);
        path = a;
    }
    if (!path)
        return qs_cli_error(QS_EXIT_USAGE, "info: expected a model file (see 'quasar help info')");

    qs_graph_t *g = NULL;
    if (qs_model_load(path, &g) < 0)
        return qs_cli_fail(QS_EXIT_RUNTIME);
    layer_t *L = calloc((size_t)g->nnodes, sizeof *L);
    if (!L) {
        qs_graph_free(g);
        return qs_cli_error(QS_EXIT_RUNTIME, "out of memory");
    }
    for (int i = 0; i < g->nnodes; i++)
        describe(g, i, L + i);
    int ex = QS_EXIT_OK;
    if (json) {
        if (print_json(path, g, L) < 0)
            ex = qs_cli_fail(QS_EXIT_RUNTIME);
    } else {
        print_text(path, g, L);
    }
    free(L);
    qs_graph_free(g);
    return ex;
}
