/* tests/test_results.c — the result store and what reads it: records and
 * tables, the journal (escapes, torn and malformed lines, re-runs), results.h5
 * (round trip, zero rows, a stale .part, foreign and truncated files), CSV,
 * statistics over repeats, Pareto fronts and figures (with and without
 * gnuplot). */
#include "quasar.h"
#include "testutil.h"

#include <math.h>
#include <string.h>

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static const char *cell(const qs_res_table_t *t, int row, const char *col)
{
    return qs_res_table_get(t, row, qs_res_table_col(t, col));
}

#define CELL_EQ(t, row, col, want)                                                                    \
    do {                                                                                              \
        const char *got_ = cell(t, row, col);                                                         \
        ck_assert_msg(got_ && strcmp(got_, want) == 0, "row %d %s: got '%s', want '%s'", row, col,    \
                      got_ ? got_ : "(missing)", want);                                               \
    } while (0)

START_TEST(test_record)
{
    qs_res_record_t r;
    qs_res_record_init(&r);
    ck_assert_int_eq(qs_res_record_set(&r, "w_bits", "8"), QS_OK);
    ck_assert_int_eq(qs_res_record_set(&r, "target", "asic-45nm"), QS_OK);
    ck_assert_int_eq(qs_res_record_set(&r, "w_bits", "4"), QS_OK); /* replaces, keeps its place */
    ck_assert_int_eq(r.n, 2);
    ck_assert_str_eq(r.key[0], "w_bits");
    ck_assert_str_eq(qs_res_record_get(&r, "w_bits"), "4");
    ck_assert_ptr_null(qs_res_record_get(&r, "nothere"));
    ck_assert_int_lt(qs_res_record_set(&r, "bad key", "x"), 0);
    ck_assert_int_lt(qs_res_record_set(&r, "a/b", "x"), 0);
    ck_assert_int_lt(qs_res_record_set(&r, "", "x"), 0);
    const double v[] = {0.1, 1.0 / 3.0, -2.5e-300, 6.02214076e23, 5e-324, NAN, INFINITY, -INFINITY, -0.0};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        ck_assert_int_eq(qs_res_record_num(&r, "x", v[i]), QS_OK);
        const char *s = qs_res_record_get(&r, "x");
        double back = strtod(s, NULL);
        if (isnan(v[i]))
            ck_assert_str_eq(s, "nan");
        else
            ck_assert_msg(memcmp(&back, &v[i], sizeof back) == 0, "%.17g came back as %s", v[i], s);
    }
    ck_assert_int_eq(qs_res_record_num(&r, "x", INFINITY), QS_OK);
    ck_assert_str_eq(qs_res_record_get(&r, "x"), "inf");
    ck_assert_int_eq(qs_res_record_num(&r, "x", -INFINITY), QS_OK);
    ck_assert_str_eq(qs_res_record_get(&r, "x"), "-inf");
    qs_res_record_clear(&r);
    ck_assert_int_eq(r.n, 0);
    qs_res_record_clear(&r); /* twice is fine */
}
END_TEST

START_TEST(test_table)
{
    qs_res_table_t *t = qs_res_table_create();
    ck_assert_ptr_nonnull(t);
    /* many columns and rows, so that both grow past their first allocation */
    for (int r = 0; r < 40; r++) {
        ck_assert_int_eq(qs_res_table_add_row(t), r);
        for (int c = 0; c < 20; c++) {
            char name[16], val[16];
            snprintf(name, sizeof name, "c%d", c);
            snprintf(val, sizeof val, "%d", r * 100 + c);
            if ((r + c) % 7 != 0)
                ck_assert_int_eq(qs_res_table_set(t, r, name, val), QS_OK);
        }
    }
    ck_assert_int_eq(t->ncols, 20);
    ck_assert_int_eq(t->nrows, 40);
    ck_assert_str_eq(qs_res_table_get(t, 39, qs_res_table_col(t, "c19")), "3919");
    int c0 = qs_res_table_col(t, "c0"), c2 = qs_res_table_col(t, "c2");
    ck_assert_int_eq(qs_res_table_col(t, "c1"), 0); /* row 0 has no c0: c1 came first */
    ck_assert_ptr_null(qs_res_table_get(t, 0, c0)); /* (0 + 0) % 7 == 0: missing */
    ck_assert(isnan(qs_res_table_num(t, 0, c0)));
    ck_assert(qs_res_table_num(t, 3, c2) == 302.0);
    ck_assert(qs_res_table_numeric(t, qs_res_table_col(t, "c5")));
    ck_assert_int_eq(qs_res_table_set(t, 3, "c5", "eight"), QS_OK);
    int c5 = qs_res_table_col(t, "c5");
    ck_assert(!qs_res_table_numeric(t, c5));
    ck_assert(isnan(qs_res_table_num(t, 3, c5)));
    ck_assert_int_eq(qs_res_table_set(t, 3, "c5", " 8"), QS_OK); /* a leading blank: text */
    ck_assert(!qs_res_table_numeric(t, c5));
    ck_assert_int_eq(qs_res_table_set(t, 3, "c5", "nan"), QS_OK);
    ck_assert(qs_res_table_numeric(t, c5));
    ck_assert_int_eq(qs_res_table_set(t, 3, "c5", NULL), QS_OK); /* missing again */
    ck_assert_ptr_null(qs_res_table_get(t, 3, c5));
    ck_assert_int_lt(qs_res_table_set(t, 40, "c1", "x"), 0);
    int c7 = qs_res_table_col(t, "c7");
    ck_assert_int_ge(c7, 0);
    ck_assert_int_eq(qs_res_table_col(t, "zz"), -1);
    ck_assert_int_eq(qs_res_table_add_col(t, "c7"), c7);
    qs_res_table_free(t);
    qs_res_table_free(NULL);

    /* filter */
    t = qs_res_table_create();
    const char *tg[] = {"cpu", "asic", "cpu", "asic"};
    const char *wb[] = {"8", "8.0", "4", "4"};
    for (int r = 0; r < 4; r++) {
        qs_res_record_t rec;
        qs_res_record_init(&rec);
        qs_res_record_set(&rec, "target", tg[r]);
        qs_res_record_set(&rec, "w_bits", wb[r]);
        if (r != 2)
            qs_res_record_set(&rec, "note", "x");
        ck_assert_int_eq(qs_res_table_add_record(t, &rec), r);
        qs_res_record_clear(&rec);
    }
    qs_res_table_t *f = NULL;
    ck_assert_int_eq(qs_res_table_filter(t, "w_bits=8", &f), QS_OK);
    ck_assert_int_eq(f->nrows, 2); /* "8" and "8.0" */
    ck_assert_int_eq(f->ncols, 3);
    qs_res_table_free(f);
    ck_assert_int_eq(qs_res_table_filter(t, " target = asic , w_bits=4", &f), QS_OK);
    ck_assert_int_eq(f->nrows, 1);
    CELL_EQ(f, 0, "note", "x");
    qs_res_table_free(f);
    ck_assert_int_eq(qs_res_table_filter(t, "note=", &f), QS_OK); /* missing cells */
    ck_assert_int_eq(f->nrows, 1);
    CELL_EQ(f, 0, "w_bits", "4");
    CELL_EQ(f, 0, "target", "cpu");
    qs_res_table_free(f);
    ck_assert_int_eq(qs_res_table_filter(t, NULL, &f), QS_OK);
    ck_assert_int_eq(f->nrows, 4);
    qs_res_table_free(f);
    ck_assert_int_lt(qs_res_table_filter(t, "a_bits=8", &f), 0);
    ck_assert_ptr_null(f);
    ck_assert_msg(strstr(qs_last_error(), "a_bits") && strstr(qs_last_error(), "target, w_bits, note"), "%s",
                  qs_last_error());
    ck_assert_int_lt(qs_res_table_filter(t, "target", &f), 0);
    qs_res_table_free(t);
}
END_TEST

/* a run record and its layers as a sweep would append them */
static void make_run(qs_res_record_t *run, qs_res_record_t *layers, int i, const char *extra)
{
    char b[64];
    qs_res_record_init(run);
    snprintf(b, sizeof b, "hash%02d", i);
    qs_res_record_set(run, "run", b);
    qs_res_record_set(run, "status", "ok");
    snprintf(b, sizeof b, "%d", 2 + 2 * i);
    qs_res_record_set(run, "w_bits", b);
    qs_res_record_num(run, "top1", 0.5 + 0.1 * i);
    if (extra)
        qs_res_record_set(run, "reason", extra);
    for (int l = 0; l < 2; l++) {
        qs_res_record_init(&layers[l]);
        qs_res_record_set(&layers[l], "layer", l ? "fc" : "conv1");
        qs_res_record_num(&layers[l], "energy_j", 1e-6 * (i + 1) * (l + 1));
    }
}

static void free_run(qs_res_record_t *run, qs_res_record_t *layers)
{
    qs_res_record_clear(run);
    qs_res_record_clear(&layers[0]);
    qs_res_record_clear(&layers[1]);
}

START_TEST(test_journal)
{
    char path[512];
    qs_test_path(path, sizeof path, "journal.tsv");
    unlink(path);
    qs_res_journal_t *j = NULL;
    ck_assert_int_eq(qs_res_journal_open(path, &j), QS_OK);
    static const char *const nasty = "tab\there\nnewline\\back\\\\slash\rcr=eq";
    for (int i = 0; i < 3; i++) {
        qs_res_record_t run, layers[2];
        make_run(&run, layers, i, i == 1 ? nasty : NULL);
        ck_assert_int_eq(qs_res_journal_append(j, &run, layers, 2), QS_OK);
        free_run(&run, layers);
    }
    qs_res_record_t norun;
    qs_res_record_init(&norun);
    qs_res_record_set(&norun, "top1", "1");
    ck_assert_int_lt(qs_res_journal_append(j, &norun, NULL, 0), 0);
    qs_res_record_clear(&norun);
    qs_res_journal_close(j);

    char *text = slurp(path);
    ck_assert_ptr_nonnull(text);
    ck_assert(strncmp(text, "# quasar journal 1\n", 19) == 0);
    ck_assert_msg(strstr(text, "layer\trun=hash00\tlayer=conv1\tenergy_j="), "%s", text);
    ck_assert_msg(strstr(text, "reason=tab\\there\\nnewline\\\\back\\\\\\\\slash\\rcr=eq\n"), "%s", text);
    free(text);

    qs_res_table_t *runs = NULL, *layers = NULL;
    ck_assert_msg(qs_res_journal_read(path, &runs, &layers) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(runs->nrows, 3);
    ck_assert_str_eq(runs->col[0], "run");
    CELL_EQ(runs, 0, "run", "hash00");
    CELL_EQ(runs, 2, "w_bits", "6");
    CELL_EQ(runs, 1, "reason", nasty);
    ck_assert_ptr_null(cell(runs, 0, "reason"));
    ck_assert(qs_res_table_num(runs, 2, qs_res_table_col(runs, "top1")) == 0.5 + 0.1 * 2);
    ck_assert_int_eq(layers->nrows, 6);
    ck_assert_str_eq(layers->col[0], "run");
    CELL_EQ(layers, 5, "run", "hash02");
    CELL_EQ(layers, 5, "layer", "fc");
    ck_assert(qs_res_table_num(layers, 3, qs_res_table_col(layers, "energy_j")) == 1e-6 * 2 * 2);
    qs_res_table_free(runs);
    qs_res_table_free(layers);

    char **h = NULL;
    int n = 0;
    ck_assert_int_eq(qs_res_journal_hashes(path, &h, &n), QS_OK);
    ck_assert_int_eq(n, 3);
    ck_assert_str_eq(h[2], "hash02");
    qs_res_strings_free(h, n);
    char missing[512];
    qs_test_path(missing, sizeof missing, "no-such-journal.tsv");
    unlink(missing);
    ck_assert_int_eq(qs_res_journal_hashes(missing, &h, &n), QS_OK);
    ck_assert_int_eq(n, 0);
    qs_res_strings_free(h, n);
    unlink(path);
}
END_TEST

START_TEST(test_journal_damage)
{
    char path[512];
    qs_test_path(path, sizeof path, "damaged.tsv");
    qs_res_table_t *runs = NULL, *layers = NULL;
    /* a torn last line (no newline), with its layer line before it */
    spit(path, "# quasar journal 1\n"
               "run\trun=a\ttop1=0.5\n"
               "layer\trun=b\tlayer=conv1\n"
               "run\trun=b\ttop");
    ck_assert_msg(qs_res_journal_read(path, &runs, &layers) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(runs->nrows, 1);
    ck_assert_int_eq(layers->nrows, 0); /* b's layer line has no run line */
    qs_res_table_free(runs);
    qs_res_table_free(layers);
    /* appending after a torn line: the tail is cut, the new run is readable */
    qs_res_journal_t *j = NULL;
    ck_assert_int_eq(qs_res_journal_open(path, &j), QS_OK);
    qs_res_record_t run, lay[2];
    make_run(&run, lay, 7, NULL);
    ck_assert_int_eq(qs_res_journal_append(j, &run, lay, 2), QS_OK);
    free_run(&run, lay);
    qs_res_journal_close(j);
    ck_assert_msg(qs_res_journal_read(path, &runs, &layers) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(runs->nrows, 2);
    CELL_EQ(runs, 1, "run", "hash07");
    ck_assert_int_eq(layers->nrows, 2);
    qs_res_table_free(runs);
    qs_res_table_free(layers);

    /* a malformed line before the last is an error naming file:line */
    const char *bad[] = {
        "# quasar journal 1\nrun\trun=a\n" "run\tnokey\n" "run\trun=b\n",
        "# quasar journal 1\nrun\trun=a\n" "result\trun=c\n" "run\trun=b\n",
        "# quasar journal 1\nrun\trun=a\n" "run\trun=c\tx=bad\\qescape\n" "run\trun=b\n",
        "# quasar journal 1\nrun\trun=a\n" "layer\tlayer=x\trun=c\n" "run\trun=b\n",
        "# quasar journal 1\nrun\trun=a\n" "run\tx=1\n" "run\trun=b\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        spit(path, bad[i]);
        ck_assert_int_lt(qs_res_journal_read(path, &runs, &layers), 0);
        ck_assert_ptr_null(runs);
        char want[600];
        snprintf(want, sizeof want, "%s:3:", path);
        ck_assert_msg(strstr(qs_last_error(), want), "case %zu: %s", i, qs_last_error());
    }
    /* not a journal */
    spit(path, "run\trun=a\n");
    ck_assert_int_lt(qs_res_journal_read(path, &runs, NULL), 0);
    ck_assert_msg(strstr(qs_last_error(), "not a quasar journal"), "%s", qs_last_error());
    ck_assert_int_lt(qs_res_journal_open(path, &j), 0);
    ck_assert_ptr_null(j);

    /* a run run again: the later line wins, in the earlier's place, with its layers */
    spit(path, "# quasar journal 1\n"
               "layer\trun=a\tlayer=old1\n"
               "layer\trun=a\tlayer=old2\n"
               "run\trun=a\ttop1=0.1\tstatus=error\n"
               "run\trun=b\ttop1=0.2\n"
               "layer\trun=a\tlayer=new\n"
               "run\trun=a\ttop1=0.3\n");
    ck_assert_msg(qs_res_journal_read(path, &runs, &layers) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(runs->nrows, 2);
    CELL_EQ(runs, 0, "run", "a");
    CELL_EQ(runs, 0, "top1", "0.3");
    ck_assert_ptr_null(cell(runs, 0, "status")); /* the whole row is replaced */
    CELL_EQ(runs, 1, "run", "b");
    ck_assert_int_eq(layers->nrows, 1);
    CELL_EQ(layers, 0, "layer", "new");
    qs_res_table_free(runs);
    qs_res_table_free(layers);
    unlink(path);
}
END_TEST

/* runs with numbers, text, NaN, missing cells and awkward column names */
static qs_res_table_t *mixed_table(void)
{
    qs_res_table_t *t = qs_res_table_create();
    for (int r = 0; r < 3; r++) {
        qs_res_record_t rec;
        qs_res_record_init(&rec);
        char b[32];
        snprintf(b, sizeof b, "h%d", r);
        qs_res_record_set(&rec, "run", b);
        qs_res_record_num(&rec, "top1", r == 1 ? NAN : 0.1 * (r + 1));
        qs_res_record_num(&rec, "energy_j", 1.5e-7 * (r + 1));
        qs_res_record_set(&rec, "target", r ? "asic-45nm" : "cpu, with \"quotes\"\nand a line");
        if (r != 2)
            qs_res_record_set(&rec, "layer:conv1.w_bits", "8");
        qs_res_record_set(&rec, "w-range", r == 0 ? "mse" : "minmax");
        qs_res_table_add_record(t, &rec);
        qs_res_record_clear(&rec);
    }
    return t;
}

START_TEST(test_store)
{
    char path[512];
    qs_test_path(path, sizeof path, "results.h5");
    qs_res_table_t *runs = mixed_table(), *layers = qs_res_table_create();
    qs_res_table_add_col(layers, "run");
    qs_res_table_add_col(layers, "layer"); /* columns, zero rows */
    qs_res_record_t prov, back;
    qs_res_record_init(&prov);
    qs_res_record_init(&back);
    qs_res_record_set(&prov, "quasar_version", "0.1");
    qs_res_record_set(&prov, "spec", "sweep:\n  w_bits: [2, 4]\n");
    ck_assert_msg(qs_res_store_write(path, runs, layers, &prov) == QS_OK, "%s", qs_last_error());

    qs_res_table_t *r2 = NULL, *l2 = NULL;
    ck_assert_msg(qs_res_store_read(path, &r2, &l2, &back) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(r2->nrows, 3);
    ck_assert_int_eq(r2->ncols, runs->ncols);
    for (int c = 0; c < runs->ncols; c++)
        ck_assert_str_eq(r2->col[c], runs->col[c]);
    /* every cell as written: text exactly, numbers to the bit (a missing
     * number comes back as NaN) */
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < runs->ncols; c++) {
            const char *a = qs_res_table_get(runs, r, c), *b = qs_res_table_get(r2, r, c);
            if (qs_res_table_numeric(runs, c)) {
                double u = a ? strtod(a, NULL) : NAN, v = qs_res_table_num(r2, r, c);
                ck_assert_msg(b && ((isnan(u) && isnan(v)) || memcmp(&u, &v, sizeof u) == 0),
                              "row %d %s: '%s' vs '%s'", r, runs->col[c], a ? a : "(missing)", b ? b : "(missing)");
                continue;
            }
            ck_assert_msg((!a && !b) || (a && b && strcmp(a, b) == 0), "row %d %s: '%s' vs '%s'", r, runs->col[c],
                          a ? a : "(missing)", b ? b : "(missing)");
        }
    CELL_EQ(r2, 0, "top1", "0.1");
    CELL_EQ(r2, 1, "energy_j", "3e-07");
    CELL_EQ(r2, 0, "w-range", "mse");
    CELL_EQ(r2, 1, "top1", "nan");
    ck_assert_int_eq(l2->nrows, 0);
    ck_assert_int_eq(l2->ncols, 2);
    ck_assert_str_eq(l2->col[1], "layer");
    ck_assert_int_eq(back.n, 2);
    ck_assert_str_eq(back.key[0], "quasar_version");
    ck_assert_str_eq(qs_res_record_get(&back, "spec"), "sweep:\n  w_bits: [2, 4]\n");
    qs_res_table_free(r2);
    qs_res_table_free(l2);

    /* qs_res_open on the file and on its folder */
    ck_assert_msg(qs_res_open(path, &r2, NULL, NULL) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(r2->nrows, 3);
    qs_res_table_free(r2);

    /* a column name with '/' is refused and the old store stays */
    qs_res_table_t *bad = qs_res_table_create();
    int row = qs_res_table_add_row(bad);
    qs_res_table_set(bad, row, "a/b", "1");
    ck_assert_int_lt(qs_res_store_write(path, bad, NULL, NULL), 0);
    ck_assert_msg(strstr(qs_last_error(), "a/b"), "%s", qs_last_error());
    qs_res_table_free(bad);
    char part[600];
    snprintf(part, sizeof part, "%s.part", path);
    ck_assert_int_ne(access(part, F_OK), 0);
    ck_assert_int_eq(qs_res_store_read(path, &r2, NULL, NULL), QS_OK);
    ck_assert_int_eq(r2->nrows, 3);
    qs_res_table_free(r2);

    /* zero runs, no layers, no provenance */
    qs_res_table_t *empty = qs_res_table_create();
    ck_assert_int_eq(qs_res_store_write(path, empty, NULL, NULL), QS_OK);
    ck_assert_int_eq(qs_res_store_read(path, &r2, &l2, &back), QS_OK);
    ck_assert_int_eq(r2->nrows, 0);
    ck_assert_int_eq(r2->ncols, 0);
    ck_assert_int_eq(l2->nrows, 0);
    ck_assert_int_eq(back.n, 0);
    qs_res_table_free(r2);
    qs_res_table_free(l2);
    qs_res_table_free(empty);
    qs_res_table_free(runs);
    qs_res_table_free(layers);
    qs_res_record_clear(&prov);
    qs_res_record_clear(&back);
    unlink(path);
}
END_TEST

START_TEST(test_store_stale_part)
{
    char path[512], part[600];
    qs_test_path(path, sizeof path, "stale.h5");
    snprintf(part, sizeof part, "%s.part", path);
    qs_res_table_t *runs = mixed_table();
    ck_assert_int_eq(qs_res_store_write(path, runs, NULL, NULL), QS_OK);
    /* a rebuild killed halfway left garbage beside the store */
    spit(part, "\x89HDF\r\n\x1a\n half a file");
    qs_res_table_t *r2 = NULL;
    ck_assert_msg(qs_res_store_read(path, &r2, NULL, NULL) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(r2->nrows, 3);
    qs_res_table_free(r2);
    /* the next rebuild replaces both */
    int row = qs_res_table_add_row(runs);
    qs_res_table_set(runs, row, "run", "h3");
    ck_assert_msg(qs_res_store_write(path, runs, NULL, NULL) == QS_OK, "%s", qs_last_error());
    ck_assert_int_ne(access(part, F_OK), 0);
    ck_assert_int_eq(qs_res_store_read(path, &r2, NULL, NULL), QS_OK);
    ck_assert_int_eq(r2->nrows, 4);
    CELL_EQ(r2, 3, "run", "h3");
    CELL_EQ(r2, 3, "top1", "nan");
    ck_assert_ptr_null(cell(r2, 3, "target")); /* a missing text cell stays missing */
    ck_assert(isnan(qs_res_table_num(r2, 3, qs_res_table_col(r2, "energy_j"))));
    qs_res_table_free(r2);
    qs_res_table_free(runs);
    unlink(path);
}
END_TEST

START_TEST(test_store_bad_files)
{
    char path[512], other[512];
    qs_test_path(path, sizeof path, "good.h5");
    qs_test_path(other, sizeof other, "other.h5");
    qs_res_table_t *runs = mixed_table(), *r2 = NULL;
    ck_assert_int_eq(qs_res_store_write(path, runs, NULL, NULL), QS_OK);
    qs_res_table_free(runs);

    /* an HDF5 file that is not a quasar store */
    qs_tensor_t *t = qs_tensor_create(QS_F32, 1, (int64_t[]){4});
    qs_h5_t *h = qs_h5_create(other);
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(qs_h5_write(h, "weights", t), QS_OK);
    ck_assert_int_eq(qs_h5_commit(h), QS_OK);
    qs_tensor_free(t);
    ck_assert_int_lt(qs_res_store_read(other, &r2, NULL, NULL), 0);
    ck_assert_ptr_null(r2);
    ck_assert_msg(strstr(qs_last_error(), other) && strstr(qs_last_error(), "not a quasar results file"), "%s",
                  qs_last_error());

    /* a truncated copy */
    char *full = NULL;
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    full = malloc((size_t)n);
    ck_assert_int_eq(fread(full, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    long cuts[] = {n / 2, 100, 4};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        f = fopen(other, "wb");
        fwrite(full, 1, (size_t)cuts[i], f);
        fclose(f);
        ck_assert_int_lt(qs_res_store_read(other, &r2, NULL, NULL), 0);
        ck_assert_ptr_null(r2);
        ck_assert_msg(strstr(qs_last_error(), other), "cut %ld: %s", cuts[i], qs_last_error());
    }
    free(full);

    /* a text file, a missing file, and qs_res_open on odd paths */
    spit(other, "hello\n");
    ck_assert_int_lt(qs_res_store_read(other, &r2, NULL, NULL), 0);
    ck_assert_msg(strstr(qs_last_error(), other), "%s", qs_last_error());
    unlink(other);
    ck_assert_int_lt(qs_res_store_read(other, &r2, NULL, NULL), 0);
    ck_assert_msg(strstr(qs_last_error(), other), "%s", qs_last_error());
    ck_assert_int_lt(qs_res_open(other, &r2, NULL, NULL), 0);
    ck_assert_msg(strstr(qs_last_error(), other), "%s", qs_last_error());
    char txt[512];
    qs_test_path(txt, sizeof txt, "notes.txt");
    spit(txt, "some notes\n");
    ck_assert_int_lt(qs_res_open(txt, &r2, NULL, NULL), 0);
    ck_assert_msg(strstr(qs_last_error(), txt) && strstr(qs_last_error(), "not a results file"), "%s",
                  qs_last_error());
    unlink(txt);
    unlink(path);
}
END_TEST

START_TEST(test_open_folder)
{
    char dir[512], p[700];
    qs_test_path(dir, sizeof dir, "outdir");
    mkdir(dir, 0777);
    snprintf(p, sizeof p, "%s/results.h5", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/journal.tsv", dir);
    unlink(p);
    qs_res_table_t *r = NULL, *l = NULL;
    ck_assert_int_lt(qs_res_open(dir, &r, &l, NULL), 0);
    ck_assert_msg(strstr(qs_last_error(), dir), "%s", qs_last_error());
    /* the journal when there is no results.h5 */
    qs_res_journal_t *j = NULL;
    ck_assert_int_eq(qs_res_journal_open(p, &j), QS_OK);
    qs_res_record_t run, lay[2];
    make_run(&run, lay, 1, NULL);
    ck_assert_int_eq(qs_res_journal_append(j, &run, lay, 2), QS_OK);
    free_run(&run, lay);
    qs_res_journal_close(j);
    ck_assert_msg(qs_res_open(dir, &r, &l, NULL) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(r->nrows, 1);
    ck_assert_int_eq(l->nrows, 2);
    /* results.h5 wins once it is there */
    qs_res_table_t *two = mixed_table();
    snprintf(p, sizeof p, "%s/results.h5", dir);
    ck_assert_int_eq(qs_res_store_write(p, two, l, NULL), QS_OK);
    qs_res_table_free(r);
    qs_res_table_free(l);
    ck_assert_int_eq(qs_res_open(dir, &r, &l, NULL), QS_OK);
    ck_assert_int_eq(r->nrows, 3);
    ck_assert_int_eq(l->nrows, 2);
    qs_res_table_free(r);
    qs_res_table_free(l);
    qs_res_table_free(two);
    unlink(p);
    snprintf(p, sizeof p, "%s/journal.tsv", dir);
    unlink(p);
    rmdir(dir);
}
END_TEST

START_TEST(test_csv)
{
    char path[512];
    qs_test_path(path, sizeof path, "runs.csv");
    qs_res_table_t *t = mixed_table(), *back = NULL;
    FILE *f = fopen(path, "w");
    ck_assert_int_eq(qs_res_csv_write(f, t), QS_OK);
    fclose(f);
    char *text = slurp(path);
    ck_assert_msg(strncmp(text, "run,top1,energy_j,target,layer:conv1.w_bits,w-range\n", 52) == 0, "%s", text);
    ck_assert_msg(strstr(text, ",\"cpu, with \"\"quotes\"\"\nand a line\","), "%s", text);
    ck_assert_msg(strstr(text, "h2,0.30000000000000004,4.4999999999999998e-07,asic-45nm,,minmax\n"), "%s", text);
    free(text);
    ck_assert_msg(qs_res_csv_read(path, &back) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(back->nrows, 3);
    ck_assert_int_eq(back->ncols, t->ncols);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < t->ncols; c++) {
            const char *a = qs_res_table_get(t, r, c), *b = qs_res_table_get(back, r, c);
            ck_assert_msg((!a && !b) || (a && b && strcmp(a, b) == 0), "row %d %s: '%s' vs '%s'", r, t->col[c],
                          a ? a : "(missing)", b ? b : "(missing)");
        }
    qs_res_table_free(back);
    ck_assert_int_eq(qs_res_open(path, &back, NULL, NULL), QS_OK);
    ck_assert_int_eq(back->nrows, 3);
    qs_res_table_free(back);
    qs_res_table_free(t);

    /* a one-column table with a missing cell survives */
    t = qs_res_table_create();
    for (int r = 0; r < 3; r++) {
        qs_res_table_add_row(t);
        qs_res_table_set(t, r, "only", r == 1 ? NULL : "v");
    }
    f = fopen(path, "w");
    ck_assert_int_eq(qs_res_csv_write(f, t), QS_OK);
    fclose(f);
    ck_assert_int_eq(qs_res_csv_read(path, &back), QS_OK);
    ck_assert_int_eq(back->nrows, 3);
    ck_assert_ptr_null(qs_res_table_get(back, 1, 0));
    qs_res_table_free(back);
    qs_res_table_free(t);

    /* what other tools write: CRLF, a BOM, no final newline */
    spit(path, "\xEF\xBB\xBF" "a,b\r\n1,\"x\r\ny\"\r\n2,z");
    ck_assert_msg(qs_res_csv_read(path, &back) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(back->nrows, 2);
    CELL_EQ(back, 0, "b", "x\r\ny");
    CELL_EQ(back, 1, "b", "z");
    qs_res_table_free(back);

    /* malformed */
    struct {
        const char *text;
        int line;
    } bad[] = {
        {"a,b\n1,2\n3\n", 3},
        {"a,b\n1,2\n3,\"open\n4,5\n", 3},
        {"a,b\n1,2,3\n", 2},
        {"a,a\n1,2\n", 1},
        {"a,b\n1,x\"y\n", 2},
        {"a,b\n1,\"q\"z\n", 2},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        spit(path, bad[i].text);
        ck_assert_int_lt(qs_res_csv_read(path, &back), 0);
        ck_assert_ptr_null(back);
        char want[600];
        snprintf(want, sizeof want, "%s:%d:", path, bad[i].line);
        ck_assert_msg(strstr(qs_last_error(), want), "case %zu: want '%s' in: %s", i, want, qs_last_error());
    }
    unlink(path);
}
END_TEST

static int front(const double *x, const double *y, int n, qs_direction_t dx, qs_direction_t dy, int *out)
{
    int k = qs_res_pareto(x, y, n, dx, dy, out);
    ck_assert_msg(k >= 0, "%s", qs_last_error());
    return k;
}

#define FRONT_EQ(got, k, ...)                                                                          \
    do {                                                                                               \
        const int want_[] = {__VA_ARGS__};                                                             \
        int nw_ = (int)(sizeof want_ / sizeof *want_);                                                 \
        ck_assert_int_eq(k, nw_);                                                                      \
        for (int i_ = 0; i_ < nw_; i_++)                                                               \
            ck_assert_msg(got[i_] == want_[i_], "front[%d] = %d, want %d", i_, got[i_], want_[i_]);    \
    } while (0)

START_TEST(test_pareto)
{
    const qs_direction_t L = QS_BETTER_LOWER, H = QS_BETTER_HIGHER;
    int f[16];
    /* energy (lower better) against accuracy (higher better) */
    const double x[] = {1, 2, 3, 4, 2.5, 5};
    const double y[] = {0.5, 0.7, 0.9, 0.85, 0.6, 0.95};
    FRONT_EQ(f, front(x, y, 6, L, H, f), 0, 1, 2, 5);
    /* all four direction combinations on the square's corners and centre */
    const double sx[] = {0, 0, 1, 1, 0.5};
    const double sy[] = {0, 1, 0, 1, 0.5};
    FRONT_EQ(f, front(sx, sy, 5, H, H, f), 3);
    FRONT_EQ(f, front(sx, sy, 5, L, L, f), 0);
    FRONT_EQ(f, front(sx, sy, 5, L, H, f), 1);
    FRONT_EQ(f, front(sx, sy, 5, H, L, f), 2);
    /* ties in x: only the best y of the tie */
    const double tx[] = {1, 1, 2, 1};
    const double ty[] = {0.5, 0.8, 0.9, 0.7};
    FRONT_EQ(f, front(tx, ty, 4, L, H, f), 1, 2);
    /* ties in y: only the best x of the tie */
    const double ux[] = {3, 1, 2, 4};
    const double uy[] = {0.9, 0.9, 0.9, 0.95};
    FRONT_EQ(f, front(ux, uy, 4, L, H, f), 1, 3);
    /* exact duplicates: both on (sorted by x, ties by index) ... */
    const double dx[] = {2, 1, 2, 3};
    const double dy[] = {0.9, 0.5, 0.9, 0.8};
    FRONT_EQ(f, front(dx, dy, 4, L, H, f), 1, 0, 2);
    /* ... or both off */
    const double ex[] = {2, 1, 2};
    const double ey[] = {0.5, 0.9, 0.5};
    FRONT_EQ(f, front(ex, ey, 3, L, H, f), 1);
    /* NaN is never on the front, and does not hide other points */
    const double nx[] = {NAN, 1, 2, 0.5};
    const double ny[] = {1.0, 0.5, 0.9, NAN};
    FRONT_EQ(f, front(nx, ny, 4, L, H, f), 1, 2);
    const double allnan[] = {NAN, NAN};
    ck_assert_int_eq(front(allnan, allnan, 2, L, H, f), 0);
    /* a single point, zero points */
    const double one = 3;
    FRONT_EQ(f, front(&one, &one, 1, L, H, f), 0);
    ck_assert_int_eq(qs_res_pareto(NULL, NULL, 0, L, H, NULL), 0);
    /* an axis without a direction */
    ck_assert_int_lt(qs_res_pareto(x, y, 6, QS_BETTER_NONE, H, f), 0);
    ck_assert_int_lt(qs_res_pareto(x, y, 6, L, QS_BETTER_NONE, f), 0);
    ck_assert_int_lt(qs_res_pareto(x, y, -1, L, H, f), 0);

    /* against the definition, on pseudo-random points with many ties */
    enum { N = 300 };
    double rx[N], ry[N];
    int rf[N];
    for (int i = 0; i < N; i++) {
        rx[i] = (double)(qs_rng_u32(7, 0, (uint64_t)i) % 20);
        ry[i] = (double)(qs_rng_u32(7, 1, (uint64_t)i) % 20);
    }
    for (int d = 0; d < 4; d++) {
        qs_direction_t ax = d & 1 ? H : L, ay = d & 2 ? H : L;
        int k = front(rx, ry, N, ax, ay, rf);
        bool on[N] = {false};
        for (int i = 0; i < k; i++)
            on[rf[i]] = true;
        for (int i = 1; i < k; i++)
            ck_assert(rx[rf[i - 1]] < rx[rf[i]] || (rx[rf[i - 1]] == rx[rf[i]] && rf[i - 1] < rf[i]));
        for (int i = 0; i < N; i++) {
            bool dominated = false;
            for (int j = 0; j < N && !dominated; j++) {
                double gx = ax == H ? rx[j] - rx[i] : rx[i] - rx[j];
                double gy = ay == H ? ry[j] - ry[i] : ry[i] - ry[j];
                dominated = gx >= 0 && gy >= 0 && (gx > 0 || gy > 0);
            }
            ck_assert_msg(on[i] == !dominated, "point %d (%g, %g), directions %d", i, rx[i], ry[i], d);
        }
    }
}
END_TEST

START_TEST(test_aggregate)
{
    qs_res_table_t *t = qs_res_table_create();
    /* point a: top1 1, 2, 3, 4 (mean 2.5, sample std sqrt(5/3)); point b: one value */
    const char *pt[] = {"a", "a", "b", "a", "a"};
    const char *top1[] = {"1", "2", "7", "3", "4"};
    const char *seed[] = {"1", "2", "1", "3", "4"};
    for (int r = 0; r < 5; r++) {
        qs_res_record_t rec;
        qs_res_record_init(&rec);
        qs_res_record_set(&rec, "point", pt[r]);
        qs_res_record_set(&rec, "seed", seed[r]);
        qs_res_record_set(&rec, "top1", top1[r]);
        qs_res_record_set(&rec, "energy_j", r == 3 ? "nan" : "2");
        qs_res_record_set(&rec, "model_bytes", r == 0 ? "100" : "200");
        qs_res_table_add_record(t, &rec);
        qs_res_record_clear(&rec);
    }
    const char *const metrics[] = {"top1", "energy_j", "latency_s"};
    qs_res_table_t *a = NULL;
    ck_assert_msg(qs_res_aggregate(t, "point", metrics, 3, &a) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(a->nrows, 2);
    CELL_EQ(a, 0, "point", "a");
    CELL_EQ(a, 1, "point", "b");
    CELL_EQ(a, 0, "seed", "1"); /* the first row's */
    CELL_EQ(a, 0, "model_bytes", "100"); /* not listed: the first row's */
    CELL_EQ(a, 0, "repeats", "4");
    CELL_EQ(a, 1, "repeats", "1");
    ck_assert(qs_res_table_num(a, 0, qs_res_table_col(a, "top1")) == 2.5);
    double sd = qs_res_table_num(a, 0, qs_res_table_col(a, "top1_std"));
    ck_assert_msg(fabs(sd - sqrt(5.0 / 3.0)) < 1e-15, "std %.17g", sd);
    ck_assert(qs_res_table_num(a, 1, qs_res_table_col(a, "top1")) == 7);
    CELL_EQ(a, 1, "top1_std", "0");
    /* NaN cells are left out of the statistics */
    ck_assert(qs_res_table_num(a, 0, qs_res_table_col(a, "energy_j")) == 2);
    CELL_EQ(a, 0, "energy_j_std", "0");
    ck_assert_int_eq(qs_res_table_col(a, "latency_s"), -1); /* listed but not in the table */
    ck_assert_int_eq(qs_res_table_col(a, "top1_std"), qs_res_table_col(a, "top1") + 1);
    qs_res_table_free(a);
    ck_assert_int_lt(qs_res_aggregate(t, "nokey", metrics, 3, &a), 0);
    ck_assert_msg(strstr(qs_last_error(), "nokey") && strstr(qs_last_error(), "point"), "%s", qs_last_error());
    qs_res_table_free(t);
}
END_TEST

static qs_res_table_t *sweep_table(void)
{
    qs_res_table_t *t = qs_res_table_create();
    const char *targets[] = {"asic-45nm", "cpu"};
    for (int k = 0; k < 2; k++)
        for (int b = 2; b <= 8; b += 2) {
            qs_res_record_t rec;
            qs_res_record_init(&rec);
            char s[32];
            snprintf(s, sizeof s, "r%d%d", k, b);
            qs_res_record_set(&rec, "run", s);
            qs_res_record_set(&rec, "status", b == 4 && k == 1 ? "error" : "ok");
            qs_res_record_set(&rec, "target", targets[k]);
            snprintf(s, sizeof s, "%d", b);
            qs_res_record_set(&rec, "w_bits", s);
            qs_res_record_set(&rec, "a_bits", b > 4 ? "8" : "4");
            qs_res_record_num(&rec, "top1", 0.5 + 0.05 * b);
            qs_res_record_num(&rec, "top1_std", 0.01);
            qs_res_record_num(&rec, "energy_j", 1e-6 * b * (k + 1));
            qs_res_table_add_record(t, &rec);
            qs_res_record_clear(&rec);
        }
    return t;
}

static bool has_png_magic(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    unsigned char b[8] = {0};
    size_t n = fread(b, 1, 8, f);
    fclose(f);
    return n == 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0;
}

START_TEST(test_plot)
{
    char base[512], p[600];
    qs_test_path(base, sizeof base, "fig-pareto");
    qs_res_table_t *t = sweep_table();
    qs_plot_t pl = {.kind = QS_PLOT_PARETO, .x = "energy_j", .y = "top1", .group_by = "target"};
    bool rendered = true;
    setenv("QUASAR_GNUPLOT", "/nonexistent", 1);
    ck_assert(!qs_res_have_gnuplot());
    ck_assert_msg(qs_res_plot(t, &pl, base, &rendered) == QS_OK, "%s", qs_last_error());
    ck_assert(!rendered);
    snprintf(p, sizeof p, "%s.dat", base);
    char *dat = slurp(p);
    ck_assert_ptr_nonnull(dat);
    ck_assert_msg(strstr(dat, "# series 0: target=asic-45nm\n") && strstr(dat, "# series 1: target=cpu\n"), "%s",
                  dat);
    ck_assert_msg(!strstr(dat, "8.0000000000000013e-06 0.69999999999999996"), "a failed run was drawn:\n%s", dat);
    snprintf(p, sizeof p, "%s.gp", base);
    char *gp = slurp(p);
    ck_assert_ptr_nonnull(gp);
    const char *name = strrchr(base, '/') + 1;
    char want[700];
    snprintf(want, sizeof want, "set output '%s.png'", name);
    ck_assert_msg(strstr(gp, want), "%s", gp);
    snprintf(want, sizeof want, "'%s.dat' index 1", name);
    ck_assert_msg(strstr(gp, want), "%s", gp);
    ck_assert_msg(strstr(gp, "set xlabel 'energy_j [J]'") && strstr(gp, "set ylabel 'top1 [fraction]'"), "%s", gp);
    ck_assert_msg(strstr(gp, "title 'target=cpu'") && strstr(gp, "with linespoints"), "%s", gp);
    ck_assert_msg(!strchr(gp, '/') || !strstr(gp, base), "the script names a folder:\n%s", gp);
    free(dat);
    free(gp);

    /* the other kinds, a quote in the title, unknown columns */
    qs_plot_t kinds[] = {
        {.kind = QS_PLOT_LINE, .x = "w_bits", .y = "top1", .group_by = "target", .title = "it's a line"},
        {.kind = QS_PLOT_HEATMAP, .x = "w_bits", .y = "a_bits", .z = "top1", .format = "svg"},
        {.kind = QS_PLOT_BARS, .x = "target", .y = "energy_j", .group_by = "a_bits", .format = "pdf"},
    };
    const char *expect[] = {"yerrorlines", "with image", "with boxes"};
    for (int k = 0; k < 3; k++) {
        char b2[512];
        qs_test_path(b2, sizeof b2, qs_plot_kind_name(kinds[k].kind));
        ck_assert_msg(qs_res_plot(t, &kinds[k], b2, &rendered) == QS_OK, "%s: %s", qs_plot_kind_name(kinds[k].kind),
                      qs_last_error());
        snprintf(p, sizeof p, "%s.gp", b2);
        gp = slurp(p);
        ck_assert_msg(gp && strstr(gp, expect[k]), "%s", gp);
        if (k == 0)
            ck_assert_msg(strstr(gp, "set title 'it''s a line'"), "%s", gp);
        if (k == 1)
            ck_assert_msg(strstr(gp, "set xtics ('2' 0, '4' 1, '6' 2, '8' 3)"), "%s", gp);
        free(gp);
    }
    qs_plot_t bad = {.kind = QS_PLOT_LINE, .x = "w_bits", .y = "nosuch"};
    ck_assert_int_lt(qs_res_plot(t, &bad, base, NULL), 0);
    ck_assert_msg(strstr(qs_last_error(), "nosuch") && strstr(qs_last_error(), "energy_j"), "%s", qs_last_error());
    qs_plot_kind_t kk;
    ck_assert_int_eq(qs_plot_kind_parse("heatmap", &kk), QS_OK);
    ck_assert_int_eq(kk, QS_PLOT_HEATMAP);
    ck_assert_int_lt(qs_plot_kind_parse("pie", &kk), 0);

    /* drawn, when gnuplot is installed */
    unsetenv("QUASAR_GNUPLOT");
    if (qs_res_have_gnuplot()) {
        snprintf(p, sizeof p, "%s.png", base);
        unlink(p);
        ck_assert_msg(qs_res_plot(t, &pl, base, &rendered) == QS_OK, "%s", qs_last_error());
        ck_assert(rendered);
        ck_assert_msg(has_png_magic(p), "%s is not a PNG", p);
        unlink(p);
        for (int k = 1; k < 3; k++) {
            char b2[512];
            qs_test_path(b2, sizeof b2, qs_plot_kind_name(kinds[k].kind));
            ck_assert_msg(qs_res_plot(t, &kinds[k], b2, &rendered) == QS_OK, "%s", qs_last_error());
            ck_assert(rendered);
            snprintf(p, sizeof p, "%s.%s", b2, kinds[k].format);
            ck_assert_int_eq(access(p, F_OK), 0);
            unlink(p);
        }
    }
    const char *names[] = {"fig-pareto", "line", "heatmap", "bars"};
    for (int k = 0; k < 4; k++) {
        char b2[512];
        qs_test_path(b2, sizeof b2, names[k]);
        snprintf(p, sizeof p, "%s.dat", b2);
        unlink(p);
        snprintf(p, sizeof p, "%s.gp", b2);
        unlink(p);
    }
    qs_res_table_free(t);
}
END_TEST

static Suite *results_suite(void)
{
    Suite *s = suite_create("results");
    TCase *tc = tcase_create("results");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_record);
    tcase_add_test(tc, test_table);
    tcase_add_test(tc, test_journal);
    tcase_add_test(tc, test_journal_damage);
    tcase_add_test(tc, test_store);
    tcase_add_test(tc, test_store_stale_part);
    tcase_add_test(tc, test_store_bad_files);
    tcase_add_test(tc, test_open_folder);
    tcase_add_test(tc, test_csv);
    tcase_add_test(tc, test_pareto);
    tcase_add_test(tc, test_aggregate);
    tcase_add_test(tc, test_plot);
    suite_add_tcase(s, tc);
    return s;
}

QS_TEST_MAIN(results_suite)
