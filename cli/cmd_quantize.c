/* cli/cmd_quantize.c — `quasar quantize IN.h5 DATASET -o OUT.h5 --quant SPEC`:
 * reads one tensor, sets its grid (calibrated by the range method, or given
 * with --scale/--zero-point), quantizes it and writes codes, dequantized
 * values and parameters to a new HDF5 file, then prints the error metrics
 * (a summary, or one JSON object with --json). */
#include "config.h"

#include "cli/cli.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The flags that set one quantizer key each; they apply after --quant, in
 * command-line order. */
static const struct {
    const char *flag;
    const char *key;
} field_flags[] = {
    {"--grid", "grid"},         {"--bits", "bits"},         {"--scheme", "scheme"},
    {"--granularity", "gran"},  {"--range", "range"},       {"--round", "round"},
    {"--overflow", "overflow"}, {"--scale-type", "scale"},  {"--div", "div"},
    {"--block", "block"},
};
#define NFIELD_FLAGS (sizeof field_flags / sizeof *field_flags)

/* Tensors at least this large get progress lines on a terminal. */
#define QS_PROGRESS_MIN_ELEMENTS (INT64_C(1) << 24)

void qs_help_quantize(FILE *out)
{
    fprintf(out,
            "Usage: quasar quantize IN.h5 DATASET -o OUT.h5 [--quant SPEC] [FLAGS]\n"
            "\n"
            "Quantizes dataset DATASET of IN.h5 (any numeric type, read as float32) and\n"
            "writes OUT.h5 with /dequantized (float32), /codes (int32), /scale and\n"
            "/zero_point (and /levels for codebook grids), and the attributes mse, sqnr_db,\n"
            "clipped_fraction, nonfinite, quant, source and quasar_version on the root group.\n"
            "\n"
            "  -o, --output OUT.h5      output file (written aside, renamed when complete)\n"
            "  --quant SPEC             quantizer spec, e.g. int4,gran=channel,range=mse\n"
            "                           (keys: grid bits scheme gran range round overflow scale div block)\n"
            "  --grid NAME              uniform; ls-1, ls-2, ls-t, gf-K; pot, apot, kmeans, lloyd\n"
            "                           (with --bits, or pot-B ...); fp32, fp16, bf16, fp8-e4m3,\n"
            "                           fp8-e5m2, fp8-e4m3fnuz, fp8-e5m2fnuz, fp6-e3m2, fp6-e2m3,\n"
            "                           fp4-e2m1, eXmY[-fn|-fnuz|-finite]; mxfp8[-e4m3|-e5m2],\n"
            "                           mxfp6[-e3m2|-e2m3], mxfp4, mxint8, nvfp4, bfp[-E]\n"
            "                           (docs/spec.md, \"Grids\")\n"
            "  --block [AXIS:]SIZE[:floor|up]  block grids: the blocks and the shared-scale rule\n"
            "  --bits N                 1..32\n"
            "  --scheme NAME            symmetric, symmetric-narrow, unsigned, asymmetric,\n"
            "                           asymmetric-signed\n"
            "  --granularity G          tensor, channel[:AXIS], group:[AXIS:]SIZE\n"
            "  --range METHOD           minmax, percentile[:P], mse, sqnr, kl, aciq[:laplace|:gauss]\n"
            "  --round MODE             nearest-even, nearest-away, nearest-up, nearest-down,\n"
            "                           nearest-zero, floor, ceil, toward-zero, away-from-zero,\n"
            "                           odd, stochastic[:SEED[:BITS]]\n"
            "  --overflow MODE          saturate, wrap; format (float grids: Inf/NaN by the format)\n"
            "  --scale-type T           float, pow2, fp16, bf16, e8m0, none (scale constraint)\n"
            "  --div D                  divide, reciprocal\n"
            "  --scale S                fix the scale instead of a range method: a number, or\n"
            "                           FILE.h5:/dataset (:/dataset for IN.h5), one value per slice\n"
            "  --zero-point Z           with --scale: an integer, or a dataset as for --scale\n"
            "  --threads N              worker threads (default: $QUASAR_THREADS or all cores)\n"
            "  --json                   print one JSON object instead of the summary\n"
            "\n"
            "Flags apply after --quant, so '--quant int4 --round floor' is int4 with floor.\n"
            "With a range method, NaN or Inf in the input is an error; with --scale, NaN\n"
            "becomes the zero point and +/-Inf saturate, and their count is reported.\n"
            "Exit status: 0 success, 1 runtime error, 2 usage error. See docs/spec.md.\n");
}

typedef struct {
    const char *in, *dataset, *out, *quant, *scale, *zero_point;
    int64_t threads;
    bool json;
    int nsets;
    struct {
        const char *flag, *key, *value;
    } *sets;
} opts_t;

/* One number given for --scale (positive, finite as a float32) or --zero-point
 * (an integer), written as the spec grammar writes numbers: decimal, no
 * spaces, no hex, and integers without an exponent or a fraction. */
static int number_arg(const char *flag, const char *arg, bool integer, double *out)
{
    char *end;
    double d = strtod(arg, &end);
    bool bad_form = *arg == '\0' || *end != '\0' || isnan(d) || strpbrk(arg, "xX") || isspace((unsigned char)*arg);
    if (integer && !bad_form) {
        const char *p = arg + (*arg == '+' || *arg == '-');
        bad_form = !*p || strspn(p, "0123456789") != strlen(p);
    }
    if (bad_form)
        return qs_error(QS_ERR_INVALID, "%s: expected %s or FILE.h5:/dataset, got '%s'", flag,
                        integer ? "an integer" : "a number", arg);
    if (!integer && !(d > 0.0 && isfinite((float)d) && (float)d > 0.0f))
        return qs_error(QS_ERR_INVALID, "%s: %s is not a positive finite float32 scale", flag, arg);
    if (integer && fabs(d) > 2147483647.0)
        return qs_error(QS_ERR_INVALID, "%s: %s is outside the int32 range", flag, arg);
    *out = d;
    return QS_OK;
}

static int parse_args(int argc, char **argv, opts_t *o)
{
    const char *pos[2];
    int npos = 0;
    const char *v;
    int m;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        }
        if (strcmp(a, "-o") == 0) {
            if (i + 1 >= argc)
                return qs_cli_error(QS_EXIT_USAGE, "-o needs a value");
            if (o->out)
                return qs_cli_error(QS_EXIT_USAGE, "-o/--output given twice");
            o->out = argv[++i];
            continue;
        }
#define OPT(name, dst)                                                                       \
    if ((m = qs_cli_opt(argc, argv, &i, name, &v)) != 0) {                                   \
        if (m < 0)                                                                           \
            return QS_EXIT_USAGE;                                                            \
        if (dst)                                                                             \
            return qs_cli_error(QS_EXIT_USAGE, "%s given twice",                             \
                                strcmp(name, "--output") == 0 ? "-o/--output" : name);       \
        dst = v;                                                                             \
        continue;                                                                            \
    }
        OPT("--output", o->out)
        OPT("--quant", o->quant)
        OPT("--scale", o->scale)
        OPT("--zero-point", o->zero_point)
#undef OPT
        if ((m = qs_cli_opt(argc, argv, &i, "--threads", &v)) != 0) {
            if (m < 0)
                return QS_EXIT_USAGE;
            if (qs_kv_int("--threads", NULL, v, 1, 1024, &o->threads) < 0)
                return qs_cli_fail(QS_EXIT_USAGE);
            continue;
        }
        bool matched = false;
        for (size_t f = 0; f < NFIELD_FLAGS && !matched; f++) {
            if ((m = qs_cli_opt(argc, argv, &i, field_flags[f].flag, &v)) == 0)
                continue;
            if (m < 0)
                return QS_EXIT_USAGE;
            o->sets[o->nsets].flag = field_flags[f].flag;
            o->sets[o->nsets].key = field_flags[f].key;
            o->sets[o->nsets].value = v;
            o->nsets++;
            matched = true;
        }
        if (matched)
            continue;
        if (a[0] == '-' && a[1] != '\0')
            return qs_cli_error(QS_EXIT_USAGE, "quantize: unknown option '%s' (see 'quasar help quantize')", a);
        if (npos == 2)
            return qs_cli_error(QS_EXIT_USAGE, "quantize: unexpected argument '%s' (see 'quasar help quantize')", a);
        pos[npos++] = a;
    }
    if (npos < 2)
        return qs_cli_error(QS_EXIT_USAGE, "quantize: expected IN.h5 and DATASET (see 'quasar help quantize')");
    if (!o->out)
        return qs_cli_error(QS_EXIT_USAGE, "quantize: no output file (-o OUT.h5)");
    if (o->zero_point && !o->scale)
        return qs_cli_error(QS_EXIT_USAGE, "--zero-point needs --scale");
    /* a plain number is checked here (a usage error); dataset values when read */
    double d;
    if (o->scale && !strstr(o->scale, ":/") && number_arg("--scale", o->scale, false, &d) < 0)
        return qs_cli_fail(QS_EXIT_USAGE);
    if (o->zero_point && !strstr(o->zero_point, ":/") && number_arg("--zero-point", o->zero_point, true, &d) < 0)
        return qs_cli_fail(QS_EXIT_USAGE);
    o->in = pos[0];
    o->dataset = pos[1];
    return QS_EXIT_OK;
}

/* The quantizer: --quant, then the field flags in order. */
static int build_quantizer(const opts_t *o, qs_quantizer_t *q)
{
    qs_quantizer_default(q);
    if (o->quant && qs_quantizer_parse(o->quant, "--quant", q) < 0)
        return qs_cli_fail(QS_EXIT_USAGE);
    for (int i = 0; i < o->nsets; i++)
        if (qs_quantizer_set(q, o->sets[i].key, o->sets[i].value, o->sets[i].flag) < 0)
            return qs_cli_fail(QS_EXIT_USAGE);
    if (qs_quantizer_validate(q) < 0) {
        char spec[256];
        qs_error_context("quantizer %s: ", qs_quantizer_str(q, spec, sizeof spec));
        return qs_cli_fail(QS_EXIT_USAGE);
    }
    if (o->scale) {
        /* a fixed grid has no range method: refuse one that was asked for */
        qs_quantizer_t d;
        qs_quantizer_default(&d);
        bool range_flag = false;
        for (int i = 0; i < o->nsets; i++)
            range_flag |= strcmp(o->sets[i].key, "range") == 0;
        if (range_flag || q->range.method != d.range.method)
            return qs_cli_error(QS_EXIT_USAGE, "--scale fixes the grid: it cannot be combined with a range method");
    }
    return QS_EXIT_OK;
}

/* Values of --scale/--zero-point: one number for every slice, or a dataset
 * with one value per slice. On success *vals (count doubles) is malloc'ed. */
static int explicit_values(const char *flag, const char *arg, bool integer, qs_h5_t *in, const qs_tensor_t *x,
                           const qs_qparams_t *p, const char *spec, double **vals)
{
    double *v = malloc((size_t)p->count * sizeof *v);
    if (!v)
        return qs_error(QS_ERR_NOMEM, "out of memory");
    const char *ref = strstr(arg, ":/");
    if (!ref) {
        double d;
        if (number_arg(flag, arg, integer, &d) < 0) {
            free(v);
            return qs_last_status();
        }
        for (int64_t i = 0; i < p->count; i++)
            v[i] = d;
        *vals = v;
        return QS_OK;
    }
    /* FILE.h5:/dataset, or :/dataset inside IN.h5 */
    char file[4096];
    size_t flen = (size_t)(ref - arg);
    if (flen >= sizeof file) {
        free(v);
        return qs_error(QS_ERR_INVALID, "%s: file name too long", flag);
    }
    memcpy(file, arg, flen);
    file[flen] = '\0';
    const char *dset = ref + 1;
    qs_h5_t *h = flen ? qs_h5_open(file) : in;
    qs_tensor_t *t = NULL;
    int rc = h ? qs_h5_read(h, dset, integer ? QS_I64 : QS_F32, &t) : qs_last_status();
    if (h && h != in)
        qs_h5_close(h);
    if (rc < 0) {
        free(v);
        return qs_error_context("%s: ", flag);
    }
    const char *fname = flen ? file : qs_h5_path(in);
    /* the parameter shape itself, or the same values flat */
    bool fits = t->size == p->count && (t->ndim <= 1 || t->ndim == p->ndim);
    for (int d = 0; fits && t->ndim > 1 && d < t->ndim; d++)
        fits = t->shape[d] == p->shape[d];
    if (!fits) {
        char ts[128], ps[128], xs[128];
        qs_shape_str(t->ndim, t->shape, ts, sizeof ts);
        qs_shape_str(p->ndim, p->shape, ps, sizeof ps);
        qs_shape_str(x->ndim, x->shape, xs, sizeof xs);
        rc = qs_error(QS_ERR_SHAPE,
                      "%s: %s:%s has shape %s (%" PRId64 " values) but the quantizer (%s) on data of shape %s needs %"
                      PRId64 " values (shape %s)",
                      flag, fname, dset, ts, t->size, spec, xs, p->count, ps);
        qs_tensor_free(t);
        free(v);
        return rc;
    }
    for (int64_t i = 0; i < p->count; i++)
        v[i] = integer ? (double)qs_i64(t)[i] : (double)qs_f32(t)[i];
    qs_tensor_free(t);
    *vals = v;
    return QS_OK;
}

/* Parameters from --scale / --zero-point. */
static int fixed_qparams(const qs_quantizer_t *q, const opts_t *o, qs_h5_t *in, const qs_tensor_t *x,
                         qs_qparams_t **out)
{
    char spec[256];
    qs_quantizer_str(q, spec, sizeof spec);
    qs_qparams_t *p = NULL;
    int rc = qs_qparams_create(q, x->ndim, x->shape, &p);
    if (rc < 0) /* the granularity does not fit the data */
        return qs_error_context("%s:%s: ", o->in, o->dataset);
    double *s = NULL, *z = NULL;
    if ((rc = explicit_values("--scale", o->scale, false, in, x, p, spec, &s)) < 0)
        goto fail;
    if (o->zero_point && (rc = explicit_values("--zero-point", o->zero_point, true, in, x, p, spec, &z)) < 0)
        goto fail;
    bool zero_fixed = q->scheme != QS_SCHEME_ASYMMETRIC && q->scheme != QS_SCHEME_ASYMMETRIC_SIGNED;
    for (int64_t i = 0; i < p->count; i++) {
        if (!(s[i] > 0.0) || !isfinite((float)s[i]) || (float)s[i] == 0.0f) {
            rc = qs_error(QS_ERR_INVALID, "--scale: value %" PRId64 " is %g, not a positive finite float32 scale", i,
                          s[i]);
            goto fail;
        }
        p->scale[i] = qs_scale_constrain(q->scale_type, s[i]);
        if (!isfinite(p->scale[i])) {
            rc = qs_error(QS_ERR_INVALID, "--scale: value %" PRId64 " is %g, which the scale constraint of %s turns "
                          "into %g, beyond the float32 range",
                          i, s[i], spec, (double)p->scale[i]);
            goto fail;
        }
        double zi = z ? z[i] : 0.0;
        if (zero_fixed && zi != 0.0) {
            rc = qs_error(QS_ERR_INVALID, "--zero-point: value %" PRId64 " is %g, but the zero point of %s is 0 "
                          "(only asymmetric schemes take one)",
                          i, zi, spec);
            goto fail;
        }
        /* the code range is checked by qs_quantize; only keep the cast defined */
        if (zi < (double)INT32_MIN || zi > (double)INT32_MAX) {
            rc = qs_error(QS_ERR_INVALID, "--zero-point: value %" PRId64 " is %g, outside the int32 range", i, zi);
            goto fail;
        }
        p->zero_point[i] = (int32_t)zi;
    }
    free(s);
    free(z);
    *out = p;
    return QS_OK;
fail:
    free(s);
    free(z);
    qs_qparams_free(p);
    return rc;
}

static bool show_progress;
static void step(const char *what)
{
    if (show_progress)
        fprintf(stderr, "\rquasar: %s...\033[K", what);
}
static void step_done(void)
{
    if (show_progress)
        fputs("\r\033[K", stderr);
}

typedef struct {
    double scale_min, scale_max;
    int64_t zp_min, zp_max;
} param_range_t;

static param_range_t param_range(const qs_qparams_t *p)
{
    param_range_t r = {INFINITY, -INFINITY, INT64_MAX, INT64_MIN};
    for (int64_t i = 0; i < p->count; i++) {
        r.scale_min = fmin(r.scale_min, p->scale[i]);
        r.scale_max = fmax(r.scale_max, p->scale[i]);
        if (p->zero_point[i] < r.zp_min)
            r.zp_min = p->zero_point[i];
        if (p->zero_point[i] > r.zp_max)
            r.zp_max = p->zero_point[i];
    }
    return r;
}

/* Writes OUT.h5 (aside, renamed on success). */
static int write_output(const opts_t *o, const char *spec, const qs_qparams_t *p, const qs_tensor_t *codes,
                        const qs_tensor_t *deq, const qs_qstats_t *st)
{
    qs_tensor_t *ts = qs_tensor_create(QS_F32, p->ndim, p->shape);
    qs_tensor_t *tz = qs_tensor_create(QS_I32, p->ndim, p->shape);
    if (!ts || !tz) {
        qs_tensor_free(ts);
        qs_tensor_free(tz);
        return qs_last_status();
    }
    memcpy(ts->data, p->scale, (size_t)p->count * sizeof *p->scale);
    memcpy(tz->data, p->zero_point, (size_t)p->count * sizeof *p->zero_point);
    char source[8192];
    snprintf(source, sizeof source, "%s:%s", o->in, o->dataset);
    int rc = QS_OK;
    qs_h5_t *h = qs_h5_create(o->out);
    if (!h)
        rc = qs_last_status();
    if (rc == QS_OK)
        rc = qs_h5_write(h, "/dequantized", deq);
    if (rc == QS_OK)
        rc = qs_h5_write(h, "/codes", codes);
    if (rc == QS_OK)
        rc = qs_h5_write(h, "/scale", ts);
    if (rc == QS_OK)
        rc = qs_h5_write(h, "/zero_point", tz);
    if (rc == QS_OK && p->nlevels > 0) { /* codebook grids: each slice's levels, ascending */
        int64_t ls[2] = {p->count, p->nlevels};
        qs_tensor_t *tl = qs_tensor_create(QS_F32, 2, ls);
        if (!tl)
            rc = qs_last_status();
        else {
            memcpy(tl->data, p->levels, (size_t)(p->count * p->nlevels) * sizeof *p->levels);
            rc = qs_h5_write(h, "/levels", tl);
            qs_tensor_free(tl);
        }
    }
    if (rc == QS_OK)
        rc = qs_h5_set_attr_double(h, "/", "mse", qs_qstats_mse(st));
    if (rc == QS_OK)
        rc = qs_h5_set_attr_double(h, "/", "sqnr_db", qs_qstats_sqnr_db(st));
    if (rc == QS_OK)
        rc = qs_h5_set_attr_double(h, "/", "clipped_fraction", qs_qstats_clipped_fraction(st));
    if (rc == QS_OK)
        rc = qs_h5_set_attr_int(h, "/", "nonfinite", st->nonfinite);
    if (rc == QS_OK)
        rc = qs_h5_set_attr_str(h, "/", "quant", spec);
    if (rc == QS_OK)
        rc = qs_h5_set_attr_str(h, "/", "source", source);
    if (rc == QS_OK)
        rc = qs_h5_set_attr_str(h, "/", "quasar_version", PACKAGE_VERSION);
    if (rc == QS_OK) {
        rc = qs_h5_commit(h); /* frees h */
        h = NULL;
    }
    qs_h5_close(h);
    qs_tensor_free(ts);
    qs_tensor_free(tz);
    return rc;
}

static void print_summary(const opts_t *o, const char *spec, const qs_tensor_t *x, const qs_qparams_t *p,
                          const qs_qstats_t *st, double seconds)
{
    char shape[128], pshape[128];
    qs_shape_str(x->ndim, x->shape, shape, sizeof shape);
    qs_shape_str(p->ndim, p->shape, pshape, sizeof pshape);
    param_range_t r = param_range(p);
    printf("input       %s:%s\n", o->in, o->dataset);
    printf("shape       %s (%" PRId64 " elements)\n", shape, x->size);
    printf("quantizer   %s\n", spec);
    printf("grid        %s\n", o->scale ? "fixed by --scale" : "calibrated");
    printf("scale       %.9g .. %.9g (%" PRId64 " value%s, shape %s)\n", r.scale_min, r.scale_max, p->count,
           p->count == 1 ? "" : "s", pshape);
    printf("zero point  %" PRId64 " .. %" PRId64 "\n", r.zp_min, r.zp_max);
    printf("mse         %.6g\n", qs_qstats_mse(st));
    printf("SQNR        %.4g dB\n", qs_qstats_sqnr_db(st));
    printf("max |error| %.6g\n", st->max_abs_err);
    printf("clipped     %.6g (%" PRId64 " elements)\n", qs_qstats_clipped_fraction(st), st->clipped);
    printf("non-finite  %" PRId64 "%s\n", st->nonfinite,
           st->nonfinite ? " (NaN -> zero point, +/-Inf -> saturated)" : "");
    printf("output      %s\n", o->out);
    printf("time        %.3f s\n", seconds);
}

static int print_json(const opts_t *o, const char *spec, const qs_tensor_t *x, const qs_qparams_t *p,
                      const qs_qstats_t *st, double seconds)
{
    char source[8192];
    snprintf(source, sizeof source, "%s:%s", o->in, o->dataset);
    param_range_t r = param_range(p);
    qs_json_t j;
    qs_json_begin(&j, stdout);
    qs_json_str(&j, "input", source);
    qs_json_str(&j, "output", o->out);
    qs_json_str(&j, "quant", spec);
    int rc = QS_OK;
    if (rc == QS_OK)
        rc = qs_json_metric(&j, "elements", (double)x->size);
    if (rc == QS_OK)
        rc = qs_json_metric(&j, "nonfinite", (double)st->nonfinite);
    if (rc == QS_OK)
        rc = qs_json_metric(&j, "mse", qs_qstats_mse(st));
    if (rc == QS_OK)
        rc = qs_json_metric(&j, "sqnr_db", qs_qstats_sqnr_db(st));
    if (rc == QS_OK)
        rc = qs_json_metric(&j, "max_abs_error", st->max_abs_err);
    if (rc == QS_OK)
        rc = qs_json_metric(&j, "clipped_fraction", qs_qstats_clipped_fraction(st));
    if (rc == QS_OK)
        rc = qs_json_metric(&j, "scale_min", r.scale_min);
    if (rc == QS_OK)
        rc = qs_json_metric(&j, "scale_max", r.scale_max);
    if (rc == QS_OK)
        rc = qs_json_metric(&j, "seconds", seconds);
    qs_json_end(&j);
    return rc;
}

static int run(const opts_t *o)
{
    qs_quantizer_t q;
    int ex = build_quantizer(o, &q);
    if (ex != QS_EXIT_OK)
        return ex;
    char spec[256];
    qs_quantizer_str(&q, spec, sizeof spec);

    double t0 = qs_now_s();
    qs_h5_t *in = NULL;
    qs_tensor_t *x = NULL, *codes = NULL, *deq = NULL;
    qs_qparams_t *p = NULL;
    qs_pool_t *pool = NULL;
    qs_qstats_t st;
    memset(&st, 0, sizeof st);
    int rc = QS_OK;

    in = qs_h5_open(o->in);
    if (!in)
        goto fail;
    if (qs_h5_read(in, o->dataset, QS_F32, &x) < 0)
        goto fail;
    if (x->size == 0) {
        char shape[128];
        qs_error(QS_ERR_SHAPE, "%s:%s is empty (shape %s)", o->in, o->dataset,
                 qs_shape_str(x->ndim, x->shape, shape, sizeof shape));
        goto fail;
    }
    show_progress = isatty(STDERR_FILENO) && x->size >= QS_PROGRESS_MIN_ELEMENTS;
    if (!(pool = qs_pool_create((int)o->threads)))
        goto fail;
    if (o->scale && (qs_grid_levels(&q) > 0 || qs_grid_is_block(q.grid))) {
        char g[32];
        qs_error(QS_ERR_INVALID, "--scale: grid=%s sets its own %s; --scale applies to the uniform and float grids",
                 qs_grid_name(&q, g, sizeof g), qs_grid_is_block(q.grid) ? "block scales" : "levels");
        goto fail;
    }
    if (o->scale) {
        if (fixed_qparams(&q, o, in, x, &p) < 0)
            goto fail;
    } else {
        step("calibrating");
        rc = qs_calibrate(&q, x, &p);
        step_done();
        if (rc < 0) {
            qs_error_context("%s:%s: ", o->in, o->dataset);
            goto fail;
        }
    }
    qs_h5_close(in);
    in = NULL;
    codes = qs_tensor_create(QS_I32, x->ndim, x->shape);
    deq = qs_tensor_create(QS_F32, x->ndim, x->shape);
    if (!codes || !deq)
        goto fail;
    step("quantizing");
    rc = qs_quantize(&q, p, x, codes, deq, pool, &st);
    step_done();
    if (rc < 0) {
        qs_error_context("%s:%s: ", o->in, o->dataset);
        goto fail;
    }
    step("writing");
    rc = write_output(o, spec, p, codes, deq, &st);
    step_done();
    if (rc < 0)
        goto fail;
    double seconds = qs_now_s() - t0;
    if (o->json)
        rc = print_json(o, spec, x, p, &st, seconds);
    else
        print_summary(o, spec, x, p, &st, seconds);
    qs_tensor_free(x);
    qs_tensor_free(codes);
    qs_tensor_free(deq);
    qs_qparams_free(p);
    qs_pool_free(pool);
    return rc < 0 ? qs_cli_fail(QS_EXIT_RUNTIME) : QS_EXIT_OK;
fail:
    ex = qs_cli_fail(QS_EXIT_RUNTIME);
    qs_h5_close(in);
    qs_tensor_free(x);
    qs_tensor_free(codes);
    qs_tensor_free(deq);
    qs_qparams_free(p);
    qs_pool_free(pool);
    return ex;
}

int qs_cmd_quantize(int argc, char **argv)
{
    opts_t o;
    memset(&o, 0, sizeof o);
    o.sets = calloc((size_t)argc + 1, sizeof *o.sets);
    if (!o.sets)
        return qs_cli_error(QS_EXIT_RUNTIME, "out of memory");
    int ex = parse_args(argc, argv, &o);
    if (ex == QS_EXIT_OK)
        ex = run(&o);
    free(o.sets);
    return ex;
}
