/* cli/cmd_info.c — `quasar info MODEL [--stats ...] [--json]`: what a model
 * file holds — its name, input and normalization, one row per node (inputs,
 * output shape, parameters, MACs, attributes) and the totals; with --stats,
 * per-layer weight and activation statistics (sim/stats.c,
 * docs/statistics.md). The model is loaded and validated by the library, so
 * a bad file gets the loader's message.
 *
 * Every per-node figure is computed once into a layer_t, which the text
 * table and the JSON printer both read; a new per-layer column is a field
 * there, filled in describe() and printed by both. */
#include "config.h"

#include "cli/cli.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void qs_help_info(FILE *out)
{
    fprintf(out,
            "Usage: quasar info MODEL.h5 [--json]\n"
            "       quasar info MODEL.h5 --stats [--data SPEC] [--images N] [--seed S] [--threads N]\n"
            "                            [--no-fold] [--bins B] [--outlier-k K] [--hist-out FILE.h5] [--json]\n"
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
            "                           num_classes, nodes, and layers (one object per node);\n"
            "                           with --stats also \"stats\", with \"weights\" and \"acts\"\n"
            "                           objects keyed by layer name\n"
            "\n"
            "Statistics (docs/statistics.md), what to look at before quantizing:\n"
            "  --stats                  per-layer tables: weights of every conv2d/linear (shape,\n"
            "                           min, max, std, kurtosis, outliers, channel range spread)\n"
            "                           and activations at every node's output (min, max, mean,\n"
            "                           std, kurtosis, outliers, channel range spread), computed\n"
            "                           with the float engine over a seeded subset of images\n"
            "  --data SPEC              fmnist:train (default: statistics, like calibration, use\n"
            "                           the training split), fmnist:test, or FILE.h5\n"
            "  --images N               images of the subset (default 1000; all when fewer)\n"
            "  --seed S                 the subset's seed (default 1)\n"
            "  --threads N              worker threads (default: $QUASAR_THREADS or all cores);\n"
            "                           the figures do not depend on it\n"
            "  --no-fold                the model as stored; by default batchnorms are folded\n"
            "                           into their conv2d/linear first, since folded weights are\n"
            "                           what gets quantized\n"
            "  --bins B                 histogram bins over each tensor's [min, max] (default 256)\n"
            "  --outlier-k K            outliers are values with |x - mean| > K std (default 6)\n"
            "  --hist-out FILE.h5       write histograms, per-channel ranges and every figure to\n"
            "                           HDF5: /weights/LAYER/{hist,edges,channel_min,channel_max}\n"
            "                           and /acts/NODE/..., figures as attributes\n"
            "\n"
            "std is the population std, kurtosis Pearson's m4/m2^2 (3 for a Gaussian), channel\n"
            "range spread max/min over channels of (max - min) (Nagel et al. 2019; inf when a\n"
            "channel has range 0); '-' marks a figure that is undefined (a constant tensor).\n"
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

/* ---- --stats -------------------------------------------------------------------------------- */

typedef struct {
    bool stats, no_fold;
    const char *data, *hist_out;
    int64_t images, seed, threads, bins;
    double outlier_k;
    bool images_set, seed_set, threads_set, bins_set, k_set;
} stats_opts_t;

/* What --stats computed, for both printers. */
typedef struct {
    const stats_opts_t *o;
    qs_model_stats_t *s;
    int folded;     /* batchnorms folded (0 with --no-fold) */
    int threads;
    double seconds;
} stats_run_t;

/* "\rquasar: stats 1200/3000 images (pass 2/3)" on a terminal's stderr */
static int on_progress(const qs_progress_t *p, void *user)
{
    (void)user;
    fprintf(stderr, "\rquasar: %s %" PRId64 "/%" PRId64 " images%s%s%s\033[K", p->task, p->done, p->total,
            p->detail ? " (" : "", p->detail ? p->detail : "", p->detail ? ")" : "");
    fflush(stderr);
    return 0;
}

static int run_stats(const qs_graph_t *g, const stats_opts_t *o, stats_run_t *r)
{
    qs_graph_t *f = NULL;
    qs_dataset_t *d = NULL;
    qs_pool_t *pool = NULL;
    int rc;
    memset(r, 0, sizeof *r);
    r->o = o;
    if (!o->no_fold && (rc = qs_graph_fold_bn(g, &f, &r->folded)) < 0)
        goto done;
    if ((rc = qs_dataset_open(o->data, &d)) < 0)
        goto done;
    if (!(pool = qs_pool_create((int)o->threads))) {
        rc = qs_last_status();
        goto done;
    }
    qs_stats_opts_t so;
    qs_stats_opts_default(&so);
    so.images = o->images;
    so.seed = (uint64_t)o->seed;
    so.nbins = (int)o->bins;
    so.outlier_k = o->outlier_k;
    so.pool = pool;
    bool tty = isatty(STDERR_FILENO);
    qs_progress_cb_t cb = {tty ? on_progress : NULL, NULL, 0};
    double t0 = qs_now_s();
    rc = qs_stats_model(f ? f : g, d, &so, &cb, &r->s);
    r->seconds = qs_now_s() - t0;
    if (tty)
        fputs("\r\033[K", stderr);
    if (rc < 0)
        goto done;
    r->s->folded = r->folded;
    r->threads = qs_pool_threads(pool);
    if (o->hist_out)
        rc = qs_stats_save_h5(r->s, o->hist_out);
done:
    qs_pool_free(pool);
    qs_dataset_free(d);
    qs_graph_free(f);
    return rc;
}

/* "-" for an undefined figure */
static const char *fig(double v, char *buf, size_t n)
{
    if (isnan(v))
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%.4g", v);
    return buf;
}

static const char *spread(const qs_tstats_t *t, char *buf, size_t n)
{
    if (isnan(t->range_spread))
        snprintf(buf, n, "-");
    else if (isinf(t->range_spread))
        snprintf(buf, n, "inf (%" PRId64 " zero)", t->zero_range_channels);
    else
        snprintf(buf, n, "%.1f", t->range_spread);
    return buf;
}

#define CELL (QS_NAME_MAX + 16)
#define MAX_COLS 10

/* Prints rows of cells with column widths from the content: column 0 and
 * those in left[] left-aligned, the others right-aligned; no trailing spaces. */
static void print_table(int ncols, const char *const *head, const bool *left, int nrows, char (*cells)[MAX_COLS][CELL])
{
    int w[MAX_COLS];
    for (int c = 0; c < ncols; c++) {
        w[c] = (int)strlen(head[c]);
        for (int r = 0; r < nrows; r++)
            if ((int)strlen(cells[r][c]) > w[c])
                w[c] = (int)strlen(cells[r][c]);
    }
    for (int r = -1; r < nrows; r++) {
        char line[1024];
        size_t used = 0;
        for (int c = 0; c < ncols && used < sizeof line; c++) {
            const char *v = r < 0 ? head[c] : cells[r][c];
            used += (size_t)snprintf(line + used, sizeof line - used, "  %*s", left[c] ? -w[c] : w[c],
                                     v);
        }
        size_t len = strlen(line);
        while (len > 0 && line[len - 1] == ' ')
            line[--len] = '\0';
        puts(line);
    }
}

static void print_stats(const stats_run_t *r)
{
    const qs_model_stats_t *s = r->s;
    char a[CELL], b[CELL];
    printf("\nstatistics  %s", r->o->no_fold ? "the model as stored (--no-fold)" : "the BN-folded graph");
    if (!r->o->no_fold)
        printf(" (%d batchnorm%s folded)", r->folded, r->folded == 1 ? "" : "s");
    printf("\n            activations over %" PRId64 " images of %s, seed %" PRIu64 ", float engine, %d thread%s, %.2f s\n",
           s->images, s->source, s->seed, r->threads, r->threads == 1 ? "" : "s", r->seconds);
    printf("            std: population; kurtosis: Pearson m4/m2^2 (3 = Gaussian); outliers: |x - mean| > %g std;\n"
           "            ch.spread: max/min over channels of (max - min)\n",
           s->outlier_k);
    if (r->o->hist_out)
        printf("            histograms (%d bins) written to %s\n", s->nbins, r->o->hist_out);

    char(*cells)[MAX_COLS][CELL] = calloc((size_t)s->nnodes, sizeof *cells);
    if (!cells)
        return;
    int n = 0;
    for (int i = 0; i < s->nnodes; i++) {
        const qs_node_stats_t *ns = &s->node[i];
        if (!ns->has_weight)
            continue;
        const qs_tstats_t *t = &ns->weight;
        snprintf(cells[n][0], CELL, "%s", ns->name);
        join_shape(ns->wndim, ns->wshape, cells[n][1], CELL);
        snprintf(cells[n][2], CELL, "%s", fig(t->min, a, sizeof a));
        snprintf(cells[n][3], CELL, "%s", fig(t->max, a, sizeof a));
        snprintf(cells[n][4], CELL, "%s", fig(t->std, a, sizeof a));
        snprintf(cells[n][5], CELL, "%s", isnan(t->kurtosis) ? "-" : (snprintf(b, sizeof b, "%.2f", t->kurtosis), b));
        snprintf(cells[n][6], CELL, "%" PRId64, t->outliers);
        snprintf(cells[n][7], CELL, "%s", spread(t, a, sizeof a));
        n++;
    }
    static const char *const wh[] = {"layer", "shape", "min", "max", "std", "kurtosis", "outliers", "ch.spread"};
    static const bool wl[] = {true, true, false, false, false, false, false, false};
    printf("\nweights\n");
    print_table(8, wh, wl, n, cells);

    n = 0;
    for (int i = 0; i < s->nnodes; i++) {
        const qs_node_stats_t *ns = &s->node[i];
        const qs_tstats_t *t = &ns->act;
        snprintf(cells[n][0], CELL, "%d", i);
        snprintf(cells[n][1], CELL, "%s", ns->name);
        snprintf(cells[n][2], CELL, "%s", fig(t->min, a, sizeof a));
        snprintf(cells[n][3], CELL, "%s", fig(t->max, a, sizeof a));
        snprintf(cells[n][4], CELL, "%s", fig(t->mean, a, sizeof a));
        snprintf(cells[n][5], CELL, "%s", fig(t->std, a, sizeof a));
        snprintf(cells[n][6], CELL, "%s", isnan(t->kurtosis) ? "-" : (snprintf(b, sizeof b, "%.2f", t->kurtosis), b));
        snprintf(cells[n][7], CELL, "%" PRId64, t->outliers);
        snprintf(cells[n][8], CELL, "%s", spread(t, a, sizeof a));
        if (t->nonfinite)
            snprintf(cells[n][9], CELL, "%" PRId64 " NaN/Inf", t->nonfinite);
        n++;
    }
    static const char *const ah[] = {"#", "node", "min", "max", "mean", "std", "kurtosis", "outliers", "ch.spread", ""};
    static const bool al[] = {false, true, false, false, false, false, false, false, false, true};
    printf("\nactivations\n");
    print_table(10, ah, al, n, cells);
    free(cells);
}

static void json_tstats(FILE *out, const char *name, int ndim, const int64_t *shape, const qs_tstats_t *t, bool first)
{
    fputs(first ? "" : ", ", out);
    qs_json_write_string(out, name);
    fputs(": {\"shape\": [", out);
    for (int k = 0; k < ndim; k++)
        fprintf(out, "%s%" PRId64, k ? ", " : "", shape[k]);
    fputc(']', out);
    qs_json_t j = {out, 1};
    qs_json_int(&j, "count", t->count);
    qs_json_int(&j, "nonfinite", t->nonfinite);
    qs_json_num(&j, "min", t->min);
    qs_json_num(&j, "max", t->max);
    qs_json_num(&j, "mean", t->mean);
    qs_json_num(&j, "std", t->std);
    qs_json_num(&j, "kurtosis", t->kurtosis);
    qs_json_int(&j, "outliers", t->outliers);
    qs_json_int(&j, "channels", t->channels);
    qs_json_num(&j, "range_spread", t->range_spread);
    qs_json_int(&j, "zero_range_channels", t->zero_range_channels);
    fputc('}', out);
}

/* "stats": {settings..., "weights": {LAYER: {...}}, "acts": {NODE: {...}}} */
static void json_stats(qs_json_t *parent, const stats_run_t *r)
{
    const qs_model_stats_t *s = r->s;
    FILE *out = parent->out;
    fputs(", \"stats\": ", out);
    parent->count++;
    qs_json_t j;
    qs_json_begin(&j, out);
    qs_json_str(&j, "graph", r->o->no_fold ? "stored" : "folded");
    qs_json_int(&j, "folded", r->folded);
    qs_json_str(&j, "data", s->source);
    qs_json_int(&j, "images", s->images);
    qs_json_int(&j, "seed", (int64_t)s->seed);
    qs_json_int(&j, "bins", s->nbins);
    qs_json_num(&j, "outlier_k", s->outlier_k);
    qs_json_int(&j, "threads", r->threads);
    qs_json_num(&j, "seconds", r->seconds);
    qs_json_str(&j, "hist_out", r->o->hist_out);
    fputs(", \"weights\": {", out);
    bool first = true;
    for (int i = 0; i < s->nnodes; i++)
        if (s->node[i].has_weight) {
            json_tstats(out, s->node[i].name, s->node[i].wndim, s->node[i].wshape, &s->node[i].weight, first);
            first = false;
        }
    fputs("}, \"acts\": {", out);
    for (int i = 0; i < s->nnodes; i++)
        json_tstats(out, s->node[i].name, s->node[i].andim, s->node[i].ashape, &s->node[i].act, i == 0);
    fputs("}}", out);
}

static int print_json(const char *path, const qs_graph_t *g, const layer_t *L, const stats_run_t *st)
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
    if (st)
        json_stats(&j, st);
    qs_json_end(&j);
    return rc;
}

/* Options of --stats; returns 1 when argv[*i] was one, 0 if not, or -1
 * (message printed) on a bad value. */
static int stats_option(int argc, char **argv, int *i, stats_opts_t *o)
{
    const char *a = argv[*i], *v;
    int m;
    if (strcmp(a, "--stats") == 0)
        return o->stats = true, 1;
    if (strcmp(a, "--no-fold") == 0)
        return o->no_fold = true, 1;
    const struct {
        const char *flag;
        const char **at;
    } strs[] = {{"--data", &o->data}, {"--hist-out", &o->hist_out}};
    for (size_t k = 0; k < sizeof strs / sizeof *strs; k++) {
        if ((m = qs_cli_opt(argc, argv, i, strs[k].flag, &v)) == 0)
            continue;
        if (m < 0)
            return -1;
        if (*strs[k].at) {
            qs_cli_error(QS_EXIT_USAGE, "%s given twice", strs[k].flag);
            return -1;
        }
        if (!*v) {
            qs_cli_error(QS_EXIT_USAGE, "%s needs a value", strs[k].flag);
            return -1;
        }
        *strs[k].at = v;
        return 1;
    }
    const struct {
        const char *flag;
        int64_t lo, hi;
        int64_t *at;
        bool *set;
    } nums[] = {
        {"--images", 1, INT64_MAX, &o->images, &o->images_set},
        {"--seed", 0, INT64_MAX, &o->seed, &o->seed_set},
        {"--threads", 1, 1024, &o->threads, &o->threads_set},
        {"--bins", 1, 65536, &o->bins, &o->bins_set},
    };
    for (size_t k = 0; k < sizeof nums / sizeof *nums; k++) {
        if ((m = qs_cli_opt(argc, argv, i, nums[k].flag, &v)) == 0)
            continue;
        if (m < 0)
            return -1;
        if (qs_kv_int(nums[k].flag, NULL, v, nums[k].lo, nums[k].hi, nums[k].at) < 0) {
            qs_cli_fail(QS_EXIT_USAGE);
            return -1;
        }
        *nums[k].set = true;
        return 1;
    }
    if ((m = qs_cli_opt(argc, argv, i, "--outlier-k", &v)) != 0) {
        if (m < 0)
            return -1;
        if (qs_kv_double("--outlier-k", NULL, v, 1e-3, 1e6, &o->outlier_k) < 0) {
            qs_cli_fail(QS_EXIT_USAGE);
            return -1;
        }
        o->k_set = true;
        return 1;
    }
    return 0;
}

int qs_cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false, options = true;
    stats_opts_t so;
    memset(&so, 0, sizeof so);
    so.images = 1000;
    so.seed = 1;
    so.bins = QS_STATS_BINS;
    so.outlier_k = QS_STATS_OUTLIER_K;
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
        if (options && a[0] == '-' && a[1] != '\0') {
            int m = stats_option(argc, argv, &i, &so);
            if (m < 0)
                return QS_EXIT_USAGE;
            if (m > 0)
                continue;
            return qs_cli_error(QS_EXIT_USAGE, "info: unknown option '%s' (see 'quasar help info')", a);
        }
        if (path)
            return qs_cli_error(QS_EXIT_USAGE, "info: unexpected argument '%s' (see 'quasar help info')", a);
        path = a;
    }
    if (!path)
        return qs_cli_error(QS_EXIT_USAGE, "info: expected a model file (see 'quasar help info')");
    if (!so.stats) {
        const char *given = so.data ? "--data" : so.hist_out ? "--hist-out" : so.no_fold ? "--no-fold"
                          : so.images_set ? "--images" : so.seed_set ? "--seed" : so.threads_set ? "--threads"
                          : so.bins_set ? "--bins" : so.k_set ? "--outlier-k" : NULL;
        if (given)
            return qs_cli_error(QS_EXIT_USAGE, "info: %s applies only with --stats (see 'quasar help info')", given);
    }
    if (!so.data)
        so.data = "fmnist:train";

    qs_graph_t *g = NULL;
    if (qs_model_load(path, &g) < 0)
        return qs_cli_fail(QS_EXIT_RUNTIME);
    stats_run_t st;
    memset(&st, 0, sizeof st);
    if (so.stats && run_stats(g, &so, &st) < 0) {
        qs_model_stats_free(st.s);
        qs_graph_free(g);
        return qs_cli_fail(QS_EXIT_RUNTIME);
    }
    layer_t *L = calloc((size_t)g->nnodes, sizeof *L);
    if (!L) {
        qs_model_stats_free(st.s);
        qs_graph_free(g);
        return qs_cli_error(QS_EXIT_RUNTIME, "out of memory");
    }
    for (int i = 0; i < g->nnodes; i++)
        describe(g, i, L + i);
    int ex = QS_EXIT_OK;
    if (json) {
        if (print_json(path, g, L, so.stats ? &st : NULL) < 0)
            ex = qs_cli_fail(QS_EXIT_RUNTIME);
    } else {
        print_text(path, g, L);
        if (so.stats)
            print_stats(&st);
    }
    free(L);
    qs_model_stats_free(st.s);
    qs_graph_free(g);
    return ex;
}
