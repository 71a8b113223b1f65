/* tests/test_exp.c — experiment specs, the field registry and the planner:
 * good specs read as written, each kind of bad spec refused with file:line
 * and what was expected, run counts per combination mode, hashes that do not
 * depend on how a spec is written, skipped points kept with their reason,
 * and the shared float reference (qs_evalset_t) equal to qs_qeval bit for bit. */
#include "quasar.h"
#include "testutil.h"

#include <math.h>
#include <string.h>

#define MODEL QS_TEST_SRCDIR "/../models/fmnist-dwsep.h5"
#define PINNED_HASH "45cabdfe8d9c3d53"

static qs_exp_spec_t *parse_ok(const char *text)
{
    qs_exp_spec_t *s = NULL;
    int rc = qs_exp_spec_parse(text, strlen(text), "t.yaml", &s);
    ck_assert_msg(rc == QS_OK, "%s", qs_last_error());
    return s;
}

static void parse_bad(const char *text, const char *msg)
{
    qs_exp_spec_t *s = NULL;
    int rc = qs_exp_spec_parse(text, strlen(text), "t.yaml", &s);
    ck_assert_msg(rc < 0, "accepted:\n%s", text);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(qs_last_error(), msg), "expected '%s' in '%s'", msg, qs_last_error());
}

static qs_exp_plan_t *plan(const qs_exp_spec_t *s)
{
    qs_exp_plan_t *p = NULL;
    ck_assert_msg(qs_exp_plan_create(s, &p) == QS_OK, "%s", qs_last_error());
    return p;
}

static int count_runs(const char *text, int *skipped)
{
    qs_exp_spec_t *s = parse_ok(text);
    qs_exp_plan_t *p = plan(s);
    int n = p->nruns, k = 0;
    for (int i = 0; i < n; i++)
        k += p->run[i].skipped;
    if (skipped)
        *skipped = k;
    qs_exp_plan_free(p);
    qs_exp_spec_free(s);
    return n;
}

START_TEST(test_registry)
{
    ck_assert_int_gt((int)qs_exp_field_count(), 15);
    for (size_t i = 0; i < qs_exp_field_count(); i++) {
        const qs_exp_field_t *f = qs_exp_field_at(i);
        ck_assert_int_eq(qs_exp_field_index(f->name), (int)i);
        ck_assert_ptr_nonnull(f->description);
        ck_assert_msg(!qs_metric_find(f->name), "field %s is also a metric", f->name);
        if (f->def[0]) { /* every default is a valid value */
            char buf[QS_EXP_VALUE_MAX];
            ck_assert_msg(qs_exp_field_canon(f, f->def, buf, sizeof buf) == QS_OK, "%s: %s", f->name, qs_last_error());
        }
    }
    ck_assert_int_eq(qs_exp_field_index("no-such"), -1);
    char buf[QS_EXP_VALUE_MAX];
    const qs_exp_field_t *wb = qs_exp_field_at((size_t)qs_exp_field_index("w_bits"));
    ck_assert_int_eq(qs_exp_field_canon(wb, "08", buf, sizeof buf), QS_OK);
    ck_assert_str_eq(buf, "8");
    ck_assert_int_lt(qs_exp_field_canon(wb, "17", buf, sizeof buf), 0);
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "w_bits: expected an integer in 1..16, got '17'"));
    const qs_exp_field_t *acc = qs_exp_field_at((size_t)qs_exp_field_index("acc"));
    ck_assert_int_eq(qs_exp_field_canon(acc, "int16,overflow=saturate", buf, sizeof buf), QS_OK);
    ck_assert_int_lt(qs_exp_field_canon(acc, "int99", buf, sizeof buf), 0);
    const qs_exp_field_t *wr = qs_exp_field_at((size_t)qs_exp_field_index("w_range"));
    ck_assert_int_lt(qs_exp_field_canon(wr, "maxmin", buf, sizeof buf), 0);
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "minmax"));
    const qs_exp_field_t *eng = qs_exp_field_at((size_t)qs_exp_field_index("engine"));
    ck_assert_int_lt(qs_exp_field_canon(eng, "fast", buf, sizeof buf), 0);
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "expected one of: float, fake, int"));
}
END_TEST

START_TEST(test_spec_good)
{
    qs_exp_spec_t *s = parse_ok("name: good\n"
                                "models: [" MODEL "]\n"
                                "calibration: {images: 200, seed: 3}\n"
                                "evaluation: {images: 500}\n"
                                "repeats: 2\n"
                                "layers: [first:w8a8, 'last:acc=int32']\n"
                                "metrics: [top1, energy_j]\n"
                                "fixed: {a_bits: 8}\n"
                                "axes:\n"
                                "  w_bits: {from: 2, to: 8, step: 2}\n"
                                "  w_gran: [tensor, channel]\n"
                                "  target: asic-45nm\n"
                                "figures:\n"
                                "  - {x: energy_j, y: top1, group_by: target}\n"
                                "  - {name: bits, x: w_bits, y: top1, format: svg}\n");
    ck_assert_str_eq(s->name, "good");
    ck_assert_str_eq(s->output, "out/good");
    ck_assert_int_eq(s->nmodels, 1);
    ck_assert_int_eq((int)s->calib_images, 200);
    ck_assert_int_eq((int)s->calib_seed, 3);
    ck_assert_int_eq((int)s->eval_images, 500);
    ck_assert_str_eq(s->calib_data, "fmnist:train");
    ck_assert_int_eq(s->repeats, 2);
    ck_assert_int_eq(s->nlayers, 2);
    ck_assert_int_eq(s->nmetrics, 2);
    ck_assert_int_eq(s->nblocks, 1);
    const qs_exp_block_t *b = &s->block[0];
    ck_assert_str_eq(b->name, "main");
    ck_assert_int_eq(b->nfixed, 1);
    ck_assert_str_eq(b->fixed[0], "8");
    ck_assert_int_eq(b->naxes, 3);
    ck_assert_int_eq(b->axis[0].nvalues, 4);
    ck_assert_str_eq(b->axis[0].value[0], "2");
    ck_assert_str_eq(b->axis[0].value[3], "8");
    ck_assert_int_eq(b->axis[2].nvalues, 1);
    ck_assert_int_eq(s->nfigures, 2);
    ck_assert_str_eq(s->figure[0].kind, "pareto"); /* two metrics: a trade-off */
    ck_assert_str_eq(s->figure[0].name, "pareto-top1-vs-energy_j");
    ck_assert_str_eq(s->figure[1].kind, "line");
    ck_assert_str_eq(s->figure[1].format, "svg");
    qs_exp_spec_free(s);

    /* the demo spec reads, and names all five shipped targets */
    ck_assert_int_eq(qs_exp_spec_load(QS_TEST_SRCDIR "/../experiments/specs/demo.yaml", &s), QS_OK);
    ck_assert_int_eq(s->nblocks, 3);
    int tf = qs_exp_field_index("target");
    for (int i = 0; i < s->nblocks; i++) {
        bool found = false;
        for (int a = 0; a < s->block[i].naxes; a++)
            if (s->block[i].axis[a].field == tf) {
                ck_assert_int_eq(s->block[i].axis[a].nvalues, 5);
                found = true;
            }
        ck_assert(found);
    }
    qs_exp_spec_free(s);
}
END_TEST

START_TEST(test_spec_bad)
{
    const char *M = "models: [" MODEL "]\n";
    struct {
        const char *text, *msg;
    } cases[] = {
        {"modles: [a.h5]\n", "t.yaml:1: unknown key 'modles'"},
        {"name: x\n", "missing key 'models'"},
        {"models: []\n", "t.yaml:1: models: empty list"},
        {NULL, "t.yaml:3: axes: unknown field 'w_bit'"},
        {NULL, "t.yaml:2: key 'repeats': expected an integer, got 'many'"},
        {NULL, "t.yaml:3: axes: w_bits: empty list"},
        {NULL, "t.yaml:3: axes: w_bits: value '4' appears twice"},
        {NULL, "w_bits: expected an integer in 1..16, got '40'"},
        {NULL, "t.yaml:4: fixed: field 'acc' does not apply to engine fake (fixed at line 3)"},
        {NULL, "t.yaml:5: axes: field 'w_bits' is already set (line 3, fixed)"},
        {NULL, "field 'acc' conflicts with arithmetic: target"},
        {NULL, "arithmetic: target needs a target"},
        {NULL, "mode zip needs axes of one length, but 'w_bits' has 2 values and 'a_bits' has 3"},
        {NULL, "count 9 is more than the 4 points of the axes"},
        {NULL, "mode random needs count"},
        {NULL, "unknown metric 'top-1'"},
        {NULL, "a heatmap needs z"},
        {NULL, "t.yaml:3: fixed: target: unknown target"},
        {NULL, "acc: "},
        {NULL, "with sweeps, each sweep has its own axes"},
        {NULL, "t.yaml:4: sweeps: two sweeps named 'a'"},
        {NULL, "expected one value (a list is an axis"},
        {NULL, "layers: "},
        {NULL, "t.yaml:3: fixed: field 'acc' does not apply to engine fake, the default: set engine"},
        {NULL, "the range from 0 to 8 leaves 1..16"},
        {NULL, "t.yaml:3: sweeps: name: 'a/b' may hold letters"},
        {NULL, "field 'acc' conflicts with arithmetic: target"},
        {NULL, "t.yaml:2: layers: 'fc:acc=int16': with arithmetic: target (line 5) the target sets"},
    };
    const char *bodies[] = {
        NULL, NULL, NULL,
        "axes:\n  w_bit: [2, 4]\n",
        "repeats: many\n",
        "axes:\n  w_bits: []\n",
        "axes:\n  w_bits: [4, 4]\n",
        "axes:\n  w_bits: [4, 40]\n",
        "fixed:\n  engine: fake\n  acc: int16\n",
        "fixed:\n  w_bits: 4\naxes:\n  w_bits: [2, 4]\n",
        "fixed:\n  engine: int\n  arithmetic: target\n  acc: int16\n  target: asic-45nm\n",
        "fixed:\n  engine: int\n  arithmetic: target\n",
        "mode: zip\naxes:\n  w_bits: [2, 4]\n  a_bits: [4, 6, 8]\n",
        "mode: random\ncount: 9\naxes:\n  w_bits: [2, 4]\n  a_bits: [4, 8]\n",
        "mode: random\naxes:\n  w_bits: [2, 4]\n",
        "metrics: [top-1]\n",
        "figures:\n  - {kind: heatmap, x: w_bits, y: a_bits}\n",
        "fixed:\n  target: no-such-target\n",
        "fixed:\n  engine: int\n  acc: int99\n",
        "axes:\n  w_bits: [2]\nsweeps:\n  - {axes: {a_bits: [8]}}\n",
        "sweeps:\n  - name: a\n  - name: a\n",
        "fixed:\n  w_bits: [2, 4]\n",
        "layers: ['nolayer:w9a99']\n",
        "fixed:\n  acc: int16\n",
        "axes:\n  w_bits: {from: 0, to: 8}\n",
        "sweeps:\n  - name: a/b\n",
        "fixed:\n  engine: int\n  target: asic-45nm\naxes:\n  arithmetic: [none, target]\n  acc: [int16]\n",
        "layers: ['fc:acc=int16']\nfixed:\n  engine: int\n  arithmetic: target\n  target: asic-45nm\n",
    };
    ck_assert_int_eq(sizeof cases / sizeof cases[0], sizeof bodies / sizeof bodies[0]);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024];
        if (cases[i].text)
            snprintf(text, sizeof text, "%s", cases[i].text);
        else
            snprintf(text, sizeof text, "%s%s", M, bodies[i]);
        parse_bad(text, cases[i].msg);
    }
    /* not YAML, not a map, a missing file */
    parse_bad("a: [b\n", "t.yaml");
    parse_bad("- a\n- b\n", "an experiment spec is a YAML map");
    qs_exp_spec_t *s = NULL;
    ck_assert_int_lt(qs_exp_spec_load("/nonexistent/spec.yaml", &s), 0);
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "/nonexistent/spec.yaml: cannot open the spec"));
}
END_TEST

START_TEST(test_expansion_counts)
{
    const char *M = "models: [" MODEL "]\n";
    char t[1024];
    int sk;
    /* cartesian: 2 x 3 points + the float baseline */
    snprintf(t, sizeof t, "%saxes:\n  w_bits: [2, 4]\n  a_bits: [4, 6, 8]\n", M);
    ck_assert_int_eq(count_runs(t, &sk), 7);
    ck_assert_int_eq(sk, 0);
    /* zip: 3 points */
    snprintf(t, sizeof t, "%smode: zip\naxes:\n  w_bits: [2, 4, 8]\n  a_bits: [4, 6, 8]\n", M);
    ck_assert_int_eq(count_runs(t, NULL), 4);
    /* random: count points, distinct */
    snprintf(t, sizeof t, "%smode: random\ncount: 5\nseed: 7\naxes:\n  w_bits: [2, 3, 4, 5]\n  a_bits: [4, 6, 8]\n", M);
    ck_assert_int_eq(count_runs(t, NULL), 6);
    /* repeats multiply the quantized runs, not the float baseline */
    snprintf(t, sizeof t, "%srepeats: 3\naxes:\n  w_bits: [2, 4]\n", M);
    ck_assert_int_eq(count_runs(t, NULL), 7);
    /* targets: every point on each, and the baseline on each */
    snprintf(t, sizeof t, "%stargets: [asic-45nm, bitfusion]\naxes:\n  w_bits: [2, 4]\n", M);
    ck_assert_int_eq(count_runs(t, NULL), 6);
    /* target all: the five shipped targets */
    snprintf(t, sizeof t, "%stargets: all\n", M);
    ck_assert_int_eq(count_runs(t, NULL), 10);
    /* sweeps: each block's points; a point reached twice is one run */
    snprintf(t, sizeof t, "%ssweeps:\n  - axes: {w_bits: [4, 8]}\n  - axes: {w_bits: [8, 6]}\n", M);
    ck_assert_int_eq(count_runs(t, NULL), 4);
    /* a field of the integer engine on fake-quant points: kept, skipped, with the reason */
    snprintf(t, sizeof t, "%saxes:\n  engine: [fake, int]\n  acc: [int16, int32]\n", M);
    ck_assert_int_eq(count_runs(t, &sk), 5);
    ck_assert_int_eq(sk, 2);
    /* the spec's targets cross a zip or a random draw instead of joining it */
    snprintf(t, sizeof t, "%stargets: [asic-45nm, bitfusion]\nmode: random\ncount: 2\naxes:\n  w_bits: [2, 3, 4]\n", M);
    ck_assert_int_eq(count_runs(t, NULL), 6);
    snprintf(t, sizeof t, "%stargets: [asic-45nm, bitfusion]\nmode: zip\naxes:\n  w_bits: [2, 4]\n  a_bits: [4, 4]\n", M);
    ck_assert_int_eq(count_runs(t, NULL), 6);
    /* a plan too large to run is refused before it is expanded */
    snprintf(t, sizeof t, "%saxes:\n  w_bits: {from: 1, to: 16}\n  a_bits: {from: 1, to: 16}\n  batch: {from: 1, to: 100}\n", M);
    qs_exp_spec_t *big = parse_ok(t);
    qs_exp_plan_t *bp = NULL;
    ck_assert_int_lt(qs_exp_plan_create(big, &bp), 0);
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "expands into 25600 runs, more than 20000"));
    qs_exp_spec_free(big);
    /* the float engine as a point is the baseline */
    snprintf(t, sizeof t, "%saxes:\n  engine: [float, fake]\n", M);
    ck_assert_int_eq(count_runs(t, &sk), 2);
    ck_assert_int_eq(sk, 0);
}
END_TEST

START_TEST(test_skipped_reason)
{
    qs_exp_spec_t *s = parse_ok("models: [" MODEL "]\naxes:\n  engine: [fake, int]\n  acc: [int16]\n");
    qs_exp_plan_t *p = plan(s);
    int found = 0;
    for (int i = 0; i < p->nruns; i++)
        if (p->run[i].skipped) {
            ck_assert_str_eq(p->run[i].reason, "acc does not apply to engine fake");
            found++;
        } else if (p->run[i].block == 0) {
            ck_assert_str_eq(qs_exp_run_value(&p->run[i], "engine"), "int");
            ck_assert_str_eq(qs_exp_run_value(&p->run[i], "acc"), "int16");
            ck_assert_str_eq(qs_exp_run_value(&p->run[i], "preset"), "w8a8"); /* the default */
            ck_assert_str_eq(qs_exp_run_value(&p->run[i], "arithmetic"), "none");
            ck_assert_str_eq(qs_exp_run_value(&p->run[i], "batch"), ""); /* no target: no cost fields */
        } else {
            ck_assert_str_eq(qs_exp_run_value(&p->run[i], "engine"), "float");
            ck_assert_str_eq(qs_exp_run_value(&p->run[i], "preset"), ""); /* does not apply */
        }
    ck_assert_int_eq(found, 1);
    qs_exp_plan_free(p);
    qs_exp_spec_free(s);
}
END_TEST

/* The hashes of a plan, sorted, as one string. */
static void hashes(const char *text, char *out, size_t n)
{
    qs_exp_spec_t *s = parse_ok(text);
    qs_exp_plan_t *p = plan(s);
    char (*h)[17] = malloc((size_t)p->nruns * sizeof *h);
    for (int i = 0; i < p->nruns; i++)
        memcpy(h[i], p->run[i].hash, 17);
    for (int i = 0; i < p->nruns; i++) /* insertion sort: a few runs */
        for (int j = i; j > 0 && strcmp(h[j - 1], h[j]) > 0; j--) {
            char tmp[17];
            memcpy(tmp, h[j], 17);
            memcpy(h[j], h[j - 1], 17);
            memcpy(h[j - 1], tmp, 17);
        }
    out[0] = '\0';
    for (int i = 0; i < p->nruns; i++)
        snprintf(out + strlen(out), n - strlen(out), "%s ", h[i]);
    free(h);
    qs_exp_plan_free(p);
    qs_exp_spec_free(s);
}

START_TEST(test_stable_hashes)
{
    char a[4096], b[4096], c[4096];
    hashes("models: [" MODEL "]\nfixed: {a_bits: 8, w_range: mse}\naxes:\n  w_bits: [2, 4]\n  w_gran: [tensor, channel]\n",
           a, sizeof a);
    /* keys in another order, values in another order, a fixed setting as a one-value axis, 08 for 8 */
    hashes("axes:\n  w_gran: [channel, tensor]\n  w_bits: [4, 2]\n  w_range: [mse]\nfixed: {a_bits: 08}\nmodels: [" MODEL "]\n",
           b, sizeof b);
    ck_assert_str_eq(a, b);
    /* one value changed: different runs (the baseline stays) */
    hashes("models: [" MODEL "]\nfixed: {a_bits: 6, w_range: mse}\naxes:\n  w_bits: [2, 4]\n  w_gran: [tensor, channel]\n",
           c, sizeof c);
    ck_assert_str_ne(a, c);
    /* the calibration enters the hash of quantized runs but not the baseline's */
    qs_exp_spec_t *s1 = parse_ok("models: [" MODEL "]\naxes: {w_bits: [4]}\n");
    qs_exp_spec_t *s2 = parse_ok("models: [" MODEL "]\ncalibration: {seed: 2}\naxes: {w_bits: [4]}\n");
    qs_exp_plan_t *p1 = plan(s1), *p2 = plan(s2);
    ck_assert_int_eq(p1->nruns, 2);
    ck_assert_str_eq(p1->run[0].hash, p2->run[0].hash); /* the float baseline */
    ck_assert_str_ne(p1->run[1].hash, p2->run[1].hash);
    /* stage keys: equal quant settings share the calibration, not across w_bits */
    qs_exp_spec_t *s3 = parse_ok("models: [" MODEL "]\ntargets: [asic-45nm, bitfusion]\naxes: {w_bits: [4, 8]}\n");
    qs_exp_plan_t *p3 = plan(s3);
    ck_assert_int_eq(p3->nruns, 6);
    const qs_exp_run_t *r = p3->run;
    ck_assert_str_eq(r[2].quant_key, r[3].quant_key); /* w4 on two targets */
    ck_assert_str_eq(r[2].engine_key, r[3].engine_key);
    ck_assert_str_ne(r[2].hash, r[3].hash);
    ck_assert_str_ne(r[2].quant_key, r[4].quant_key);
    qs_exp_plan_free(p1);
    qs_exp_plan_free(p2);
    qs_exp_plan_free(p3);
    qs_exp_spec_free(s1);
    qs_exp_spec_free(s2);
    qs_exp_spec_free(s3);
}
END_TEST

/* The hash of a run is part of the journal's format: a change would re-run
 * every finished sweep. Pinned on a model file of known bytes (the planner
 * only checksums it). */
START_TEST(test_pinned_hash)
{
    char path[512], text[1024];
    qs_test_path(path, sizeof path, "pinned-model.bin");
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs("quasar", f);
    fclose(f);
    snprintf(text, sizeof text, "models: [%s]\nfixed: {engine: int, acc: int16}\naxes: {w_bits: [4]}\n", path);
    qs_exp_spec_t *s = parse_ok(text);
    qs_exp_plan_t *p = plan(s);
    ck_assert_int_eq(p->nruns, 2);
    ck_assert_str_eq(p->run[1].hash, PINNED_HASH);
    qs_exp_plan_free(p);
    qs_exp_spec_free(s);
    remove(path);
}
END_TEST

/* Files named by a spec are relative to its folder: models, target files, .h5 datasets. */
START_TEST(test_spec_relative_paths)
{
    char dir[512], path[700], cmd[1600];
    qs_test_path(dir, sizeof dir, "specdir");
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s/t' && cp '%s' '%s/m.h5' && cp '%s' '%s/t/mine.yaml'", dir, dir,
             MODEL, dir, QS_TEST_SRCDIR "/../hwmodels/targets/bitfusion.yaml", dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("models: [m.h5]\ncalibration: {data: cal.h5}\ntargets: [t/mine.yaml, asic-45nm]\n", f);
    fclose(f);
    qs_exp_spec_t *s = NULL;
    ck_assert_msg(qs_exp_spec_load(path, &s) == QS_OK, "%s", qs_last_error());
    char want[800];
    snprintf(want, sizeof want, "%s/m.h5", dir);
    ck_assert_str_eq(s->model[0], want);
    snprintf(want, sizeof want, "%s/cal.h5", dir);
    ck_assert_str_eq(s->calib_data, want);
    ck_assert_str_eq(s->eval_data, "fmnist:test"); /* a name, not a file */
    snprintf(want, sizeof want, "%s/t/mine.yaml", dir);
    ck_assert_str_eq(s->block[0].axis[0].value[0], want);
    ck_assert_str_eq(s->block[0].axis[0].value[1], "asic-45nm"); /* a shipped name */
    qs_exp_spec_free(s);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_repeat_points)
{
    qs_exp_spec_t *s = parse_ok("models: [" MODEL "]\nrepeats: 3\naxes: {w_bits: [4]}\n");
    qs_exp_plan_t *p = plan(s);
    ck_assert_int_eq(p->nruns, 4);
    for (int i = 2; i < 4; i++) {
        ck_assert_str_eq(p->run[i].point, p->run[1].point); /* one point, three runs */
        ck_assert_str_ne(p->run[i].hash, p->run[1].hash);
        ck_assert_str_ne(p->run[i].quant_key, p->run[1].quant_key); /* each repeat calibrates on its seed */
        ck_assert_int_eq(p->run[i].repeat, i - 1);
    }
    qs_exp_plan_free(p);
    qs_exp_spec_free(s);
}
END_TEST

/* qs_qeval_set on a shared evaluation set gives exactly what qs_qeval gives. */
START_TEST(test_evalset_equal)
{
    qs_graph_t *g = NULL, *folded = NULL;
    ck_assert_int_eq(qs_zoo_build("fmnist-dwsep", 5, &g), QS_OK);
    qs_dataset_t d;
    memset(&d, 0, sizeof d);
    const int64_t n = 40, per = 28 * 28;
    uint8_t *px = malloc((size_t)(n * per));
    int32_t *lab = malloc((size_t)n * sizeof *lab);
    for (int64_t i = 0; i < n * per; i++)
        px[i] = (uint8_t)(qs_rng_u32(9, 1, (uint64_t)i) & 0xff);
    for (int64_t i = 0; i < n; i++)
        lab[i] = (int32_t)(qs_rng_u32(9, 2, (uint64_t)i) % 10);
    d.n = n, d.c = 1, d.h = 28, d.w = 28, d.u8 = px, d.labels = lab, d.num_classes = 10;
    snprintf(d.source, sizeof d.source, "memory");
    qs_qconfig_t c;
    qs_qconfig_preset(&c, "w4a8", "test");
    qs_qnet_t *q = NULL;
    ck_assert_int_eq(qs_qnet_create(g, &c, &q), QS_OK);
    qs_calib_opts_t co;
    qs_calib_opts_default(&co);
    co.images = n;
    ck_assert_int_eq(qs_qnet_calibrate(q, &d, &co, NULL), QS_OK);
    ck_assert_int_eq(qs_graph_fold_bn(g, &folded, NULL), QS_OK);
    qs_evalset_t *set = NULL;
    ck_assert_int_eq(qs_evalset_create(folded, &d, NULL, 16, &set), QS_OK);
    qs_qeval_t a, b;
    ck_assert_int_eq(qs_qeval(q, &d, NULL, NULL, 16, NULL, &a), QS_OK);
    ck_assert_int_eq(qs_qeval_set(q, NULL, set, NULL, NULL, 16, NULL, &b), QS_OK);
    ck_assert(a.top1 == b.top1 && a.agreement == b.agreement && a.float_top1 == b.float_top1);
    ck_assert(a.logit_sqnr_db == b.logit_sqnr_db);
    ck_assert(set->float_top1 == a.float_top1);
    qs_int_config_t ic;
    qs_int_config_default(&ic);
    qs_int_eval_t ia, ib;
    ck_assert_int_eq(qs_int_eval(q, &ic, &d, NULL, 16, NULL, &ia), QS_OK);
    ck_assert_int_eq(qs_int_eval_set(q, &ic, NULL, set, NULL, 16, NULL, &ib), QS_OK);
    ck_assert(ia.top1 == ib.top1 && ia.fake_top1 == ib.fake_top1 && ia.logit_sqnr_db == ib.logit_sqnr_db);
    ck_assert(ia.fake_logit_sqnr_db == ib.fake_logit_sqnr_db && ia.overflowed == ib.overflowed);
    qs_qeval_free(&a);
    qs_qeval_free(&b);
    qs_int_eval_free(&ia);
    qs_int_eval_free(&ib);
    qs_evalset_free(set);
    qs_qnet_free(q);
    qs_graph_free(g);
    qs_graph_free(folded);
    free(px);
    free(lab);
}
END_TEST

static Suite *exp_suite(void)
{
    Suite *s = suite_create("experiments");
    TCase *tc = tcase_create("spec");
    tcase_add_test(tc, test_registry);
    tcase_add_test(tc, test_spec_good);
    tcase_add_test(tc, test_spec_bad);
    tcase_add_test(tc, test_expansion_counts);
    tcase_add_test(tc, test_skipped_reason);
    tcase_add_test(tc, test_stable_hashes);
    tcase_add_test(tc, test_pinned_hash);
    tcase_add_test(tc, test_spec_relative_paths);
    tcase_add_test(tc, test_repeat_points);
    tcase_add_test(tc, test_evalset_equal);
    suite_add_tcase(s, tc);
    return s;
}

QS_TEST_MAIN(exp_suite)
