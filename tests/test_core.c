/* tests/test_core.c — the core module: Philox known answers and stream
 * layout, the thread pool, spec words, metrics, progress, errors, tensors,
 * HDF5 (round trips, conversions, broken files, atomic commit) and YAML. */
#include "core/core.h"
#include "tests/testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/resource.h>

#include <hdf5.h>

#if defined(__SANITIZE_ADDRESS__)
/* An allocation too large to satisfy returns NULL, as in every other build
 * (the huge-dataset test): quasar's message, not an ASan abort. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }
#endif

/* Some tests write files with types quasar never writes (float64, uint8,
 * strings, rank 6) through HDF5 directly. */

#define ck_assert_msg_has(sub)                                                                            \
    ck_assert_msg(strstr(qs_last_error(), (sub)) != NULL, "message '%s' lacks '%s'", qs_last_error(), (sub))

static bool file_exists(const char *p) { return access(p, F_OK) == 0; }

/* ---- Philox ------------------------------------------------------------------------ */

/* Random123 tests/kat_vectors, the three "philox4x32 10" lines (ctr[4] key[2] -> out[4]). */
START_TEST(test_philox_kat)
{
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6,
         0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420,
         0x24126ea1},
    };
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        qs_philox4x32_10(kat[i], kat[i] + 4, out);
        for (int k = 0; k < 4; k++)
            ck_assert_msg(out[k] == kat[i][6 + k], "vector %d word %d: %08x != %08x", i, k, out[k], kat[i][6 + k]);
    }
}
END_TEST

START_TEST(test_rng_layout)
{
    /* word index of (seed, stream) is word index%4 of the block at counter
     * {index/4 lo, hi, stream lo, hi} with key {seed lo, hi} */
    uint64_t seed = 0x299f31d0a4093822ull, stream = 0x0370734413198a2eull;
    uint64_t block = 0x05a308d3243f6a88ull; /* index/4 < 2^62 */
    uint32_t ctr[4] = {0x243f6a88, 0x05a308d3, 0x13198a2e, 0x03707344}, key[2] = {0xa4093822, 0x299f31d0}, w[4];
    qs_philox4x32_10(ctr, key, w);
    for (unsigned k = 0; k < 4; k++)
        ck_assert_uint_eq(qs_rng_u32(seed, stream, 4 * block + k), w[k]);
    ck_assert_uint_eq(qs_rng_u32(0, 0, 0), 0x6627e8d5u);
    ck_assert_uint_eq(qs_rng_u32(0, 0, 3), 0x9b00dbd8u);
    /* different seeds and streams differ */
    ck_assert_uint_ne(qs_rng_u32(1, 0, 0), qs_rng_u32(0, 0, 0));
    ck_assert_uint_ne(qs_rng_u32(0, 1, 0), qs_rng_u32(0, 0, 0));
    ck_assert_uint_ne(qs_rng_u32(1ull << 32, 0, 0), qs_rng_u32(0, 0, 0));
}
END_TEST

START_TEST(test_rng_fill)
{
    uint32_t buf[64], ref[64];
    for (uint64_t first = 0; first < 9; first++) {
        for (size_t n = 0; n <= 37; n++) {
            uint64_t base = first + (1ull << 34) - 4; /* crosses a 2^32 block boundary */
            for (int pass = 0; pass < 2; pass++) {
                uint64_t f = pass ? base : first;
                memset(buf, 0xAB, sizeof buf);
                qs_rng_fill_u32(42, 7, f, n, buf);
                for (size_t i = 0; i < n; i++)
                    ref[i] = qs_rng_u32(42, 7, f + i);
                ck_assert_msg(memcmp(buf, ref, n * sizeof *buf) == 0, "fill differs at first=%llu n=%zu",
                              (unsigned long long)f, n);
                ck_assert_uint_eq(buf[n], 0xABABABABu); /* nothing written past n */
            }
        }
    }
}
END_TEST

START_TEST(test_rng_uniform)
{
    /* the definition: (word 2i << 21 | word 2i+1 >> 11) * 2^-53 */
    for (uint64_t i = 0; i < 8; i++) {
        uint64_t bits = ((uint64_t)qs_rng_u32(5, 9, 2 * i) << 21) | (qs_rng_u32(5, 9, 2 * i + 1) >> 11);
        ck_assert(qs_rng_uniform(5, 9, i) == (double)bits * 0x1p-53);
    }
    const int n = 200000;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        double u = qs_rng_uniform(123, 4, (uint64_t)i);
        ck_assert(u >= 0.0 && u < 1.0);
        sum += u;
    }
    /* mean 1/2, standard deviation of the mean sqrt(1/12/n) */
    double sigma = sqrt(1.0 / 12.0 / n);
    ck_assert_msg(fabs(sum / n - 0.5) < 5 * sigma, "mean %g", sum / n);
}
END_TEST

/* ---- thread pool ----------------------------------------------------------------------- */

typedef struct {
    const int64_t *v;
    int64_t partial[4 * 64];
    atomic_int calls;
    int64_t grain_seen_min;
    pthread_mutex_t mu;
    int nthreads;
    bool bad_thread;
} sum_ctx_t;

static int sum_fn(void *vctx, int64_t b, int64_t e, int thread)
{
    sum_ctx_t *c = vctx;
    int64_t s = 0;
    for (int64_t i = b; i < e; i++)
        s += c->v[i];
    pthread_mutex_lock(&c->mu);
    c->partial[0] += s;
    if (e - b < c->grain_seen_min)
        c->grain_seen_min = e - b;
    if (thread < 0 || thread >= c->nthreads)
        c->bad_thread = true;
    pthread_mutex_unlock(&c->mu);
    atomic_fetch_add(&c->calls, 1);
    return QS_OK;
}

START_TEST(test_pool_sum)
{
    const int64_t n = 1000000;
    int64_t *v = malloc((size_t)n * sizeof *v);
    int64_t serial = 0;
    for (int64_t i = 0; i < n; i++) {
        v[i] = (int64_t)(qs_rng_u32(1, 2, (uint64_t)i) % 1000);
        serial += v[i];
    }
    int counts[] = {1, 2, 4};
    for (int k = 0; k < 3; k++) {
        qs_pool_t *p = qs_pool_create(counts[k]);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(qs_pool_threads(p), counts[k]);
        for (int rep = 0; rep < 3; rep++) {
            sum_ctx_t c = {.v = v, .grain_seen_min = INT64_MAX, .nthreads = counts[k]};
            pthread_mutex_init(&c.mu, NULL);
            atomic_init(&c.calls, 0);
            ck_assert_int_eq(qs_pool_for(p, n, 1000, sum_fn, &c), QS_OK);
            ck_assert_int_eq(c.partial[0], serial);
            ck_assert_int_ge(c.grain_seen_min, 1000);
            ck_assert_int_le(atomic_load(&c.calls), 4 * counts[k]);
            ck_assert(!c.bad_thread);
            pthread_mutex_destroy(&c.mu);
        }
        /* grain larger than n: one chunk */
        sum_ctx_t c = {.v = v, .grain_seen_min = INT64_MAX, .nthreads = counts[k]};
        pthread_mutex_init(&c.mu, NULL);
        atomic_init(&c.calls, 0);
        ck_assert_int_eq(qs_pool_for(p, 10, 100, sum_fn, &c), QS_OK);
        ck_assert_int_eq(atomic_load(&c.calls), 1);
        /* an empty range calls nothing */
        ck_assert_int_eq(qs_pool_for(p, 0, 1, sum_fn, &c), QS_OK);
        ck_assert_int_eq(atomic_load(&c.calls), 1);
        pthread_mutex_destroy(&c.mu);
        qs_pool_free(p);
    }
    free(v);
}
END_TEST

typedef struct {
    int64_t fail_from; /* chunks whose begin is >= this fail */
    atomic_int calls;
} fail_ctx_t;

static int fail_fn(void *vctx, int64_t b, int64_t e, int thread)
{
    (void)e;
    (void)thread;
    fail_ctx_t *c = vctx;
    atomic_fetch_add(&c->calls, 1);
    if (b >= c->fail_from)
        return qs_error(b == c->fail_from ? QS_ERR_NUMERIC : QS_ERR_SHAPE, "chunk at %lld failed", (long long)b);
    return QS_OK;
}

START_TEST(test_pool_error)
{
    qs_pool_t *p = qs_pool_create(4);
    ck_assert_ptr_nonnull(p);
    for (int rep = 0; rep < 20; rep++) {
        /* 16 chunks of 100; chunks at 800 and above fail: the caller gets chunk 8's error */
        fail_ctx_t c = {.fail_from = 800};
        atomic_init(&c.calls, 0);
        qs_clear_error();
        int rc = qs_pool_for(p, 1600, 100, fail_fn, &c);
        ck_assert_int_eq(rc, QS_ERR_NUMERIC);
        ck_assert_int_eq(qs_last_status(), QS_ERR_NUMERIC);
        ck_assert_str_eq(qs_last_error(), "chunk at 800 failed");
        ck_assert_int_ge(atomic_load(&c.calls), 9);
    }
    /* the pool keeps working after an error */
    fail_ctx_t ok = {.fail_from = INT64_MAX};
    atomic_init(&ok.calls, 0);
    ck_assert_int_eq(qs_pool_for(p, 1600, 100, fail_fn, &ok), QS_OK);
    ck_assert_int_eq(atomic_load(&ok.calls), 16);
    /* a NULL pool runs serially and reports the same way */
    fail_ctx_t c = {.fail_from = 0};
    atomic_init(&c.calls, 0);
    ck_assert_int_eq(qs_pool_for(NULL, 50, 1, fail_fn, &c), QS_ERR_NUMERIC);
    ck_assert_str_eq(qs_last_error(), "chunk at 0 failed");
    ck_assert_int_eq(qs_pool_threads(NULL), 1);
    qs_pool_free(p);
    qs_pool_free(NULL);
}
END_TEST

typedef struct {
    qs_pool_t *pool;
    atomic_llong total;
} nest_ctx_t;

static int inner_fn(void *vctx, int64_t b, int64_t e, int thread)
{
    (void)thread;
    nest_ctx_t *c = vctx;
    atomic_fetch_add(&c->total, e - b);
    return QS_OK;
}

static int outer_fn(void *vctx, int64_t b, int64_t e, int thread)
{
    (void)thread;
    nest_ctx_t *c = vctx;
    for (int64_t i = b; i < e; i++) {
        int rc = qs_pool_for(c->pool, 1000, 10, inner_fn, c);
        if (rc < 0)
            return rc;
    }
    return QS_OK;
}

START_TEST(test_pool_nested)
{
    qs_pool_t *p = qs_pool_create(3);
    nest_ctx_t c = {.pool = p};
    atomic_init(&c.total, 0);
    ck_assert_int_eq(qs_pool_for(p, 64, 1, outer_fn, &c), QS_OK);
    ck_assert_int_eq(atomic_load(&c.total), 64 * 1000);
    qs_pool_free(p);

    /* NULL pool, and a pool sized by QUASAR_THREADS */
    atomic_store(&c.total, 0);
    c.pool = NULL;
    ck_assert_int_eq(qs_pool_for(NULL, 5, 1, outer_fn, &c), QS_OK);
    ck_assert_int_eq(atomic_load(&c.total), 5000);
    setenv("QUASAR_THREADS", "3", 1);
    p = qs_pool_create(0);
    ck_assert_int_eq(qs_pool_threads(p), 3);
    qs_pool_free(p);
    unsetenv("QUASAR_THREADS");
    p = qs_pool_create(0);
    ck_assert_int_ge(qs_pool_threads(p), 1);
    qs_pool_free(p);
}
END_TEST

/* ---- errors ------------------------------------------------------------------------------- */

static void *thread_err(void *arg)
{
    qs_error_state_t *st = arg;
    qs_error(QS_ERR_IO, "worker says %d", 7);
    qs_error_save(st);
    return NULL;
}

START_TEST(test_status)
{
    qs_clear_error();
    ck_assert_str_eq(qs_last_error(), "");
    ck_assert_int_eq(qs_last_status(), QS_OK);
    ck_assert_int_eq(qs_error(QS_ERR_INVALID, "bits must be 1..16, got %d", 40), QS_ERR_INVALID);
    ck_assert_str_eq(qs_last_error(), "bits must be 1..16, got 40");
    ck_assert_int_eq(qs_error_context("%s: ", "weights.h5"), QS_ERR_INVALID);
    ck_assert_str_eq(qs_last_error(), "weights.h5: bits must be 1..16, got 40");
    ck_assert_str_eq(qs_status_name(QS_ERR_INTERRUPTED), "interrupted");
    qs_clear_error();
    ck_assert_int_eq(qs_last_status(), QS_OK);

    /* another thread's error is its own until restored here */
    qs_error_state_t st;
    pthread_t th;
    pthread_create(&th, NULL, thread_err, &st);
    pthread_join(th, NULL);
    ck_assert_str_eq(qs_last_error(), "");
    qs_error_restore(&st);
    ck_assert_int_eq(qs_last_status(), QS_ERR_IO);
    ck_assert_str_eq(qs_last_error(), "worker says 7");
    qs_clear_error();
}
END_TEST

/* ---- tensors ---------------------------------------------------------------------------------- */

START_TEST(test_tensor)
{
    int64_t shape[] = {64, 3, 3, 3};
    qs_tensor_t *t = qs_tensor_create(QS_F32, 4, shape);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->size, 64 * 27);
    ck_assert_int_eq((uintptr_t)t->data % 64, 0);
    for (int64_t i = 0; i < t->size; i++)
        ck_assert(qs_f32(t)[i] == 0.0f);
    qs_f32(t)[5] = 2.5f;
    qs_tensor_t *c = qs_tensor_clone(t);
    ck_assert(qs_shape_equal(t, c));
    ck_assert(qs_f32(c)[5] == 2.5f);
    char buf[64];
    ck_assert_str_eq(qs_shape_str(t->ndim, t->shape, buf, sizeof buf), "[64, 3, 3, 3]");
    ck_assert_str_eq(qs_shape_str(0, NULL, buf, sizeof buf), "[]");
    qs_tensor_free(c);
    qs_tensor_free(t);
    qs_tensor_free(NULL);

    int64_t bad[] = {2, -1};
    ck_assert_ptr_null(qs_tensor_create(QS_I32, 2, bad));
    ck_assert_int_eq(qs_last_status(), QS_ERR_SHAPE);
    ck_assert_msg_has("negative");
    ck_assert_ptr_null(qs_tensor_create(QS_I32, 6, shape));
    ck_assert_int_eq(qs_last_status(), QS_ERR_SHAPE);
    qs_tensor_t *s = qs_tensor_create(QS_I64, 0, NULL);
    ck_assert_int_eq(s->size, 1);
    qs_tensor_free(s);
}
END_TEST

/* ---- spec words --------------------------------------------------------------------------------- */

START_TEST(test_kv_parse)
{
    qs_kv_t kv;
    ck_assert_int_eq(qs_kv_parse(" grid=uniform, bits = 4,w8a8 ,round=stochastic:42:8,range=percentile:99.9", "--quant",
                                 &kv),
                     QS_OK);
    ck_assert_int_eq(kv.count, 5);
    ck_assert_str_eq(kv.item[0].key, "grid");
    ck_assert_str_eq(kv.item[0].value, "uniform");
    ck_assert_str_eq(kv.item[1].key, "bits");
    ck_assert_str_eq(kv.item[1].value, "4");
    ck_assert(kv.item[2].bare);
    ck_assert_str_eq(kv.item[2].key, "w8a8");
    ck_assert_str_eq(kv.item[2].value, "");
    ck_assert(!kv.item[3].bare);
    ck_assert_str_eq(kv.item[3].value, "stochastic:42:8");
    ck_assert_str_eq(kv.item[4].value, "percentile:99.9");
    ck_assert_int_eq(qs_kv_find(&kv, "round"), 3);
    ck_assert_int_eq(qs_kv_find(&kv, "scale"), -1);

    ck_assert_int_eq(qs_kv_parse("", "--quant", &kv), QS_OK);
    ck_assert_int_eq(kv.count, 0);
    ck_assert_int_eq(qs_kv_parse(" \n ", "--quant", &kv), QS_OK);
    ck_assert_int_eq(kv.count, 0);
    ck_assert_int_eq(qs_kv_parse("bits=4,\n  chunk=a=b", "--acc", &kv), QS_OK);
    ck_assert_int_eq(kv.count, 2);
    ck_assert_str_eq(kv.item[1].key, "chunk");
    ck_assert_str_eq(kv.item[1].value, "a=b");

    ck_assert_int_eq(qs_kv_parse("bits=4,gran=channel,,round=floor", "--quant", &kv), QS_ERR_INVALID);
    ck_assert_str_eq(qs_last_error(), "--quant: empty word at position 3");
    ck_assert_int_eq(qs_kv_parse("bits=4,", "--quant", &kv), QS_ERR_INVALID);
    ck_assert_str_eq(qs_last_error(), "--quant: empty word at position 2");
    ck_assert_int_eq(qs_kv_parse("bits=4,round=floor,bits=8", "--quant", &kv), QS_ERR_INVALID);
    ck_assert_str_eq(qs_last_error(), "--quant: duplicate key 'bits'");
    ck_assert_int_eq(qs_kv_parse("bits=", "--acc", &kv), QS_ERR_INVALID);
    ck_assert_msg_has("--acc: key 'bits' has no value");
    ck_assert_int_eq(qs_kv_parse("=4", "--acc", &kv), QS_ERR_INVALID);
    ck_assert_msg_has("no key");
    ck_assert_int_eq(qs_kv_parse("bits=4 8", "--acc", &kv), QS_ERR_INVALID);
    ck_assert_msg_has("--acc: word 1");
    char longw[100];
    memset(longw, 'k', 80);
    longw[80] = '\0';
    ck_assert_int_eq(qs_kv_parse(longw, "--acc", &kv), QS_ERR_INVALID);
    ck_assert_msg_has("longer than 63");
    char many[200] = "";
    for (int i = 0; i <= QS_KV_MAX; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%sk%d", i ? "," : "", i);
    ck_assert_int_eq(qs_kv_parse(many, "--acc", &kv), QS_ERR_INVALID);
    ck_assert_msg_has("more than 32 words");
}
END_TEST

START_TEST(test_kv_values)
{
    static const char *const rounds[] = {"nearest-even", "nearest-away", "floor", NULL};
    int idx = -1;
    ck_assert_int_eq(qs_kv_choice("--quant", "round", "floor", rounds, &idx), QS_OK);
    ck_assert_int_eq(idx, 2);
    ck_assert_int_eq(qs_kv_choice("--quant", "round", "nearst", rounds, &idx), QS_ERR_INVALID);
    ck_assert_str_eq(qs_last_error(),
                     "--quant: key 'round': unknown value 'nearst', expected one of: nearest-even, nearest-away, floor");

    int64_t i64 = 0;
    ck_assert_int_eq(qs_kv_int("--quant", "bits", "8", 1, 16, &i64), QS_OK);
    ck_assert_int_eq(i64, 8);
    ck_assert_int_eq(qs_kv_int("--quant", "bits", "-3", -4, 16, &i64), QS_OK);
    ck_assert_int_eq(i64, -3);
    ck_assert_int_eq(qs_kv_int("--quant", "bits", "40", 1, 16, &i64), QS_ERR_INVALID);
    ck_assert_str_eq(qs_last_error(), "--quant: key 'bits': 40 is out of range 1..16");
    ck_assert_int_eq(i64, -3);
    ck_assert_int_eq(qs_kv_int("--quant", "bits", "eight", 1, 16, &i64), QS_ERR_INVALID);
    ck_assert_str_eq(qs_last_error(), "--quant: key 'bits': expected an integer, got 'eight'");
    const char *bad_ints[] = {"", "8x", " 8", "8 ", "+", "0x10", "99999999999999999999", "4.0"};
    for (size_t k = 0; k < sizeof bad_ints / sizeof *bad_ints; k++)
        ck_assert_msg(qs_kv_int("w", "k", bad_ints[k], INT64_MIN, INT64_MAX, &i64) == QS_ERR_INVALID, "'%s'",
                      bad_ints[k]);

    double d = 0;
    ck_assert_int_eq(qs_kv_double("--quant", "pct", "99.9", 0, 100, &d), QS_OK);
    ck_assert(d == 99.9);
    ck_assert_int_eq(qs_kv_double("--quant", "pct", "1e-3", 0, 100, &d), QS_OK);
    ck_assert(d == 1e-3);
    ck_assert_int_eq(qs_kv_double("--quant", "pct", "100.5", 0, 100, &d), QS_ERR_INVALID);
    ck_assert_msg_has("--quant: key 'pct': 100.5 is out of range 0..100");
    const char *bad_dbls[] = {"", "nan", "1.5x", " 1", "0x1p3", "inf"};
    for (size_t k = 0; k < sizeof bad_dbls / sizeof *bad_dbls; k++)
        ck_assert_msg(qs_kv_double("w", "k", bad_dbls[k], -1e300, 1e300, &d) == QS_ERR_INVALID, "'%s'", bad_dbls[k]);
}
END_TEST

/* ---- metrics and progress ------------------------------------------------------------------------ */

START_TEST(test_metrics)
{
    const qs_metric_t *m = qs_metric_find("sqnr_db");
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(m->unit, "dB");
    ck_assert_int_eq(m->direction, QS_BETTER_HIGHER);
    ck_assert_int_eq(qs_metric_find("energy_j")->direction, QS_BETTER_LOWER);
    ck_assert_str_eq(qs_metric_find("top1")->unit, "fraction");
    ck_assert_str_eq(qs_metric_find("latency_s")->unit, "s");
    ck_assert_str_eq(qs_metric_find("model_bytes")->unit, "bytes");
    ck_assert_int_eq(qs_metric_find("elements")->direction, QS_BETTER_NONE);
    ck_assert_ptr_null(qs_metric_find("top3"));
    ck_assert_ptr_null(qs_metric_find(NULL));
    size_t n = qs_metric_count();
    ck_assert_uint_ge(n, 15);
    ck_assert_ptr_null(qs_metric_at(n));
    for (size_t i = 0; i < n; i++) {
        ck_assert_ptr_eq(qs_metric_find(qs_metric_at(i)->name), qs_metric_at(i)); /* names are unique */
        ck_assert(qs_metric_at(i)->description && *qs_metric_at(i)->description);
    }
}
END_TEST

typedef struct {
    int calls;
    int64_t last_done;
    char task[32];
} prog_user_t;

static int prog_fn(const qs_progress_t *p, void *user)
{
    prog_user_t *u = user;
    u->calls++;
    u->last_done = p->done;
    snprintf(u->task, sizeof u->task, "%s", p->task);
    ck_assert(p->elapsed_s >= 0.0);
    return p->done >= 3; /* stop at 3 */
}

START_TEST(test_progress)
{
    prog_user_t u = {0};
    qs_progress_cb_t cb = {.fn = prog_fn, .user = &u};
    qs_progress_begin(&cb);
    double t0 = qs_now_s();
    ck_assert(qs_now_s() >= t0);
    for (int64_t i = 0; i < 3; i++)
        ck_assert_int_eq(qs_progress_report(&cb, "calibrate", i, 10, NULL), QS_OK);
    ck_assert_int_eq(qs_progress_report(&cb, "calibrate", 3, 10, "batch 3"), QS_ERR_INTERRUPTED);
    ck_assert_str_eq(qs_last_error(), "calibrate: interrupted");
    ck_assert_int_eq(u.calls, 4);
    ck_assert_int_eq(u.last_done, 3);
    ck_assert_str_eq(u.task, "calibrate");
    ck_assert_int_eq(qs_progress_report(NULL, "x", 5, 10, NULL), QS_OK);
    qs_progress_cb_t none = {0};
    ck_assert_int_eq(qs_progress_report(&none, "x", 5, 10, NULL), QS_OK);
}
END_TEST

/* ---- HDF5 ----------------------------------------------------------------------------------------- */

static qs_tensor_t *make_tensor(qs_dtype_t dt, int ndim, const int64_t *shape, uint64_t seed)
{
    qs_tensor_t *t = qs_tensor_create(dt, ndim, shape);
    ck_assert_ptr_nonnull(t);
    for (int64_t i = 0; i < t->size; i++) {
        uint32_t r = qs_rng_u32(seed, 0, (uint64_t)i);
        if (dt == QS_F32)
            qs_f32(t)[i] = (float)((int32_t)r) * 1e-6f;
        else if (dt == QS_I32)
            qs_i32(t)[i] = (int32_t)r;
        else
            qs_i64(t)[i] = ((int64_t)r << 31) ^ (int64_t)qs_rng_u32(seed, 1, (uint64_t)i);
    }
    return t;
}

static bool same_tensor(const qs_tensor_t *a, const qs_tensor_t *b)
{
    return a->dtype == b->dtype && qs_shape_equal(a, b) &&
           memcmp(a->data, b->data, (size_t)a->size * qs_dtype_size(a->dtype)) == 0;
}

START_TEST(test_h5_roundtrip)
{
    char path[512];
    qs_test_path(path, sizeof path, "core-roundtrip.h5");
    unlink(path);
    static const int64_t shapes[6][5] = {{0}, {7}, {3, 5}, {2, 3, 4}, {2, 1, 3, 2}, {2, 2, 1, 3, 2}};
    qs_dtype_t dts[3] = {QS_F32, QS_I32, QS_I64};
    qs_h5_t *h = qs_h5_create(path);
    ck_assert_ptr_nonnull(h);
    ck_assert_str_eq(qs_h5_path(h), path);
    ck_assert(!file_exists(path)); /* written aside until commit */
    qs_tensor_t *orig[3][6];
    for (int d = 0; d < 3; d++) {
        for (int r = 0; r <= 5; r++) {
            char name[64];
            snprintf(name, sizeof name, "/%s/rank%d", qs_dtype_name(dts[d]), r);
            orig[d][r] = make_tensor(dts[d], r, shapes[r], (uint64_t)(d * 10 + r));
            ck_assert_int_eq(qs_h5_write(h, name, orig[d][r]), QS_OK);
        }
    }
    /* a large tensor is chunked and compressed; a zero-sized one is fine */
    int64_t big_shape[] = {300, 400};
    qs_tensor_t *big = make_tensor(QS_F32, 2, big_shape, 99);
    ck_assert_int_eq(qs_h5_write(h, "layers/conv1/w", big), QS_OK);
    int64_t zshape[] = {0, 4};
    qs_tensor_t *zero = qs_tensor_create(QS_I32, 2, zshape);
    ck_assert_int_eq(qs_h5_write(h, "empty", zero), QS_OK);
    /* writing twice replaces */
    qs_tensor_t *first = make_tensor(QS_I32, 1, shapes[1], 5);
    ck_assert_int_eq(qs_h5_write(h, "replaced", first), QS_OK);
    ck_assert_int_eq(qs_h5_write(h, "replaced", orig[1][2]), QS_OK);
    qs_tensor_free(first);
    ck_assert(qs_h5_exists(h, "layers/conv1"));
    ck_assert(qs_h5_exists(h, "/layers/conv1/w"));
    ck_assert(!qs_h5_exists(h, "/layers/conv2/w"));
    ck_assert_int_eq(qs_h5_commit(h), QS_OK);
    ck_assert(file_exists(path));

    h = qs_h5_open(path);
    ck_assert_ptr_nonnull(h);
    for (int d = 0; d < 3; d++) {
        for (int r = 0; r <= 5; r++) {
            char name[64];
            snprintf(name, sizeof name, "%s/rank%d", qs_dtype_name(dts[d]), r);
            qs_tensor_t *t = NULL;
            ck_assert_int_eq(qs_h5_read(h, name, dts[d], &t), QS_OK);
            ck_assert_msg(same_tensor(t, orig[d][r]), "%s differs", name);
            qs_tensor_free(t);
        }
    }
    qs_tensor_t *t = NULL;
    ck_assert_int_eq(qs_h5_read(h, "/layers/conv1/w", QS_F32, &t), QS_OK);
    ck_assert(same_tensor(t, big));
    qs_tensor_free(t);
    ck_assert_int_eq(qs_h5_read(h, "/empty", QS_I32, &t), QS_OK);
    ck_assert(same_tensor(t, zero));
    qs_tensor_free(t);
    ck_assert_int_eq(qs_h5_read(h, "/replaced", QS_I32, &t), QS_OK);
    ck_assert(same_tensor(t, orig[1][2]));
    qs_tensor_free(t);
    /* integers read as float and as a wider integer */
    ck_assert_int_eq(qs_h5_read(h, "/int32/rank2", QS_F32, &t), QS_OK);
    for (int64_t i = 0; i < t->size; i++)
        ck_assert(qs_f32(t)[i] == (float)qs_i32(orig[1][2])[i]);
    qs_tensor_free(t);
    ck_assert_int_eq(qs_h5_read(h, "/int32/rank3", QS_I64, &t), QS_OK);
    for (int64_t i = 0; i < t->size; i++)
        ck_assert(qs_i64(t)[i] == qs_i32(orig[1][3])[i]);
    qs_tensor_free(t);
    /* a read-only file refuses writes */
    ck_assert_int_eq(qs_h5_write(h, "x", big), QS_ERR_INVALID);
    ck_assert_msg_has("reading only");
    qs_h5_close(h);

    /* the big dataset really is chunked with deflate */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, "/layers/conv1/w", H5P_DEFAULT);
    hid_t dcpl = H5Dget_create_plist(ds);
    ck_assert_int_eq(H5Pget_layout(dcpl), H5D_CHUNKED);
    ck_assert_int_eq(H5Pget_nfilters(dcpl), 2);
    H5Pclose(dcpl);
    H5Dclose(ds);
    ds = H5Dopen2(f, "/float32/rank0", H5P_DEFAULT);
    hid_t sp = H5Dget_space(ds);
    ck_assert_int_eq(H5Sget_simple_extent_type(sp), H5S_SCALAR);
    H5Sclose(sp);
    H5Dclose(ds);
    H5Fclose(f);

    for (int d = 0; d < 3; d++)
        for (int r = 0; r <= 5; r++)
            qs_tensor_free(orig[d][r]);
    qs_tensor_free(big);
    qs_tensor_free(zero);
    unlink(path);
}
END_TEST

START_TEST(test_h5_attrs)
{
    char path[512];
    qs_test_path(path, sizeof path, "core-attrs.h5");
    qs_h5_t *h = qs_h5_create(path);
    int64_t shape[] = {4};
    qs_tensor_t *t = make_tensor(QS_F32, 1, shape, 1);
    ck_assert_int_eq(qs_h5_write(h, "g/w", t), QS_OK);
    ck_assert_int_eq(qs_h5_set_attr_str(h, "/", "spec", "grid=uniform, bits=4 — µ"), QS_OK);
    ck_assert_int_eq(qs_h5_set_attr_double(h, "g/w", "scale", 0.00214854861), QS_OK);
    ck_assert_int_eq(qs_h5_set_attr_int(h, "g", "bits", 4), QS_OK);
    ck_assert_int_eq(qs_h5_set_attr_int(h, "g", "bits", -9007199254740993ll), QS_OK); /* replaces */
    ck_assert_int_eq(qs_h5_set_attr_str(h, "nowhere", "a", "b"), QS_ERR_INVALID);
    ck_assert_msg_has("nowhere");
    ck_assert_int_eq(qs_h5_commit(h), QS_OK);

    /* a fixed-length string written by another tool */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, 6);
    H5Tset_strpad(st, H5T_STR_NULLPAD);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "fixed", st, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, st, "abc\0\0\0");
    H5Aclose(a);
    float fl = 3.0f;
    a = H5Acreate2(f, "threef", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_FLOAT, &fl);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(st);
    H5Fclose(f);

    h = qs_h5_open(path);
    char *s = NULL;
    ck_assert_int_eq(qs_h5_get_attr_str(h, "/", "spec", &s), QS_OK);
    ck_assert_str_eq(s, "grid=uniform, bits=4 — µ");
    free(s);
    ck_assert_int_eq(qs_h5_get_attr_str(h, "/", "fixed", &s), QS_OK);
    ck_assert_str_eq(s, "abc");
    free(s);
    double d = 0;
    ck_assert_int_eq(qs_h5_get_attr_double(h, "/g/w", "scale", &d), QS_OK);
    ck_assert(d == 0.00214854861);
    int64_t i = 0;
    ck_assert_int_eq(qs_h5_get_attr_int(h, "g", "bits", &i), QS_OK);
    ck_assert_int_eq(i, -9007199254740993ll);
    ck_assert_int_eq(qs_h5_get_attr_double(h, "g", "bits", &d), QS_OK); /* int as double */
    ck_assert(d == -9007199254740992.0);
    ck_assert_int_eq(qs_h5_get_attr_int(h, "/", "threef", &i), QS_OK);
    ck_assert_int_eq(i, 3);
    /* wrong types and missing names */
    ck_assert_int_eq(qs_h5_get_attr_int(h, "g/w", "scale", &i), QS_ERR_FORMAT);
    ck_assert_msg_has("expected an integer");
    ck_assert_int_eq(qs_h5_get_attr_double(h, "/", "spec", &d), QS_ERR_FORMAT);
    ck_assert_msg_has("attribute 'spec' of '/' holds strings, expected a number");
    ck_assert_int_eq(qs_h5_get_attr_str(h, "g", "bits", &s), QS_ERR_FORMAT);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(qs_h5_get_attr_str(h, "g", "nope", &s), QS_ERR_FORMAT);
    ck_assert_msg_has("'/g' has no attribute 'nope'");
    ck_assert_msg_has(path);
    ck_assert_int_eq(qs_h5_get_attr_int(h, "zz", "bits", &i), QS_ERR_FORMAT);
    ck_assert_msg_has("no object '/zz'");
    qs_h5_close(h);
    qs_tensor_free(t);
    unlink(path);
}
END_TEST

/* A file with data written directly through HDF5, for types quasar never writes. */
static void write_raw(const char *path)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t n = 4;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    double frac[4] = {1, 2, 2.5, 4};
    hid_t ds = H5Dcreate2(f, "frac", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, frac);
    H5Dclose(ds);
    double whole[4] = {1, -2, 3, 4};
    ds = H5Dcreate2(f, "whole", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, whole);
    H5Dclose(ds);
    double huge[4] = {1, 2, 1e300, 4};
    ds = H5Dcreate2(f, "huge", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, huge);
    H5Dclose(ds);
    double inf[4] = {1, INFINITY, -INFINITY, NAN};
    ds = H5Dcreate2(f, "inf", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, inf);
    H5Dclose(ds);
    int64_t wide[4] = {1, 2, 3, 5000000000ll};
    ds = H5Dcreate2(f, "wide", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, wide);
    H5Dclose(ds);
    uint8_t u8[4] = {0, 1, 200, 255};
    ds = H5Dcreate2(f, "u8", H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, u8);
    H5Dclose(ds);
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, 4);
    ds = H5Dcreate2(f, "names", st, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, "abcdefghijklmnop");
    H5Dclose(ds);
    H5Tclose(st);
    H5Sclose(sp);
    hsize_t d6[6] = {1, 1, 1, 1, 1, 2};
    sp = H5Screate_simple(6, d6, NULL);
    ds = H5Dcreate2(f, "rank6", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(ds);
    H5Sclose(sp);
    hid_t g = H5Gcreate2(f, "grp", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
    H5Fclose(f);
}

START_TEST(test_h5_conversions)
{
    char path[512];
    qs_test_path(path, sizeof path, "core-raw.h5");
    write_raw(path);
    qs_h5_t *h = qs_h5_open(path);
    ck_assert_ptr_nonnull(h);
    qs_tensor_t *t = NULL;
    ck_assert_int_eq(qs_h5_read(h, "whole", QS_I32, &t), QS_OK);
    ck_assert_int_eq(qs_i32(t)[1], -2);
    qs_tensor_free(t);
    ck_assert_int_eq(qs_h5_read(h, "frac", QS_F32, &t), QS_OK);
    ck_assert(qs_f32(t)[2] == 2.5f);
    qs_tensor_free(t);
    ck_assert_int_eq(qs_h5_read(h, "u8", QS_I32, &t), QS_OK);
    ck_assert_int_eq(qs_i32(t)[3], 255);
    qs_tensor_free(t);
    ck_assert_int_eq(qs_h5_read(h, "inf", QS_F32, &t), QS_OK);
    ck_assert(isinf(qs_f32(t)[1]) && qs_f32(t)[1] > 0 && isinf(qs_f32(t)[2]) && isnan(qs_f32(t)[3]));
    qs_tensor_free(t);
    ck_assert_int_eq(qs_h5_read(h, "wide", QS_I64, &t), QS_OK);
    ck_assert_int_eq(qs_i64(t)[3], 5000000000ll);
    qs_tensor_free(t);

    /* lossy conversions are errors that name file, dataset and value */
    ck_assert_int_eq(qs_h5_read(h, "frac", QS_I32, &t), QS_ERR_FORMAT);
    ck_assert_ptr_null(t);
    ck_assert_msg_has("dataset '/frac'");
    ck_assert_msg_has("2.5 is not an integer");
    ck_assert_msg_has(path);
    ck_assert_int_eq(qs_h5_read(h, "inf", QS_I64, &t), QS_ERR_FORMAT);
    ck_assert_int_eq(qs_h5_read(h, "wide", QS_I32, &t), QS_ERR_FORMAT);
    ck_assert_msg_has("5000000000 is out of range");
    ck_assert_int_eq(qs_h5_read(h, "huge", QS_F32, &t), QS_ERR_FORMAT);
    ck_assert_msg_has("out of range");
    ck_assert_int_eq(qs_h5_read(h, "names", QS_F32, &t), QS_ERR_FORMAT);
    ck_assert_msg_has("'/names' holds strings, not numbers");
    ck_assert_int_eq(qs_h5_read(h, "rank6", QS_F32, &t), QS_ERR_SHAPE);
    ck_assert_msg_has("6 dimensions");
    ck_assert_int_eq(qs_h5_read(h, "grp", QS_F32, &t), QS_ERR_FORMAT);
    ck_assert_msg_has("'/grp' is a group");
    ck_assert_int_eq(qs_h5_read(h, "/w", QS_F32, &t), QS_ERR_FORMAT);
    ck_assert_msg_has("no dataset '/w' (datasets in the file: /frac, /grp/, /huge, /inf, /names, /rank6, /u8, "
                      "/whole, /wide)");
    ck_assert_int_eq(qs_h5_read(h, "/grp/w", QS_F32, &t), QS_ERR_FORMAT);
    ck_assert_msg_has("no dataset '/grp/w' (in group '/grp': nothing)");
    qs_h5_close(h);
    unlink(path);
}
END_TEST

START_TEST(test_h5_bad_files)
{
    char path[512], tmpl[600];
    qs_tensor_t *t = NULL;
    /* missing */
    qs_test_path(path, sizeof path, "core-missing.h5");
    unlink(path);
    ck_assert_ptr_null(qs_h5_open(path));
    ck_assert_int_eq(qs_last_status(), QS_ERR_IO);
    snprintf(tmpl, sizeof tmpl, "cannot open '%s': No such file or directory", path);
    ck_assert_str_eq(qs_last_error(), tmpl);
    ck_assert_int_eq(qs_h5_load(path, "w", QS_F32, &t), QS_ERR_IO);
    ck_assert_ptr_null(t);

    /* garbage */
    qs_test_path(path, sizeof path, "core-garbage.h5");
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < 5000; i++)
        fputc((int)(qs_rng_u32(3, 3, (uint64_t)i) & 0xff), f);
    fclose(f);
    ck_assert_ptr_null(qs_h5_open(path));
    ck_assert_int_eq(qs_last_status(), QS_ERR_FORMAT);
    snprintf(tmpl, sizeof tmpl, "'%s' is not a readable HDF5 file", path);
    ck_assert_msg_has(tmpl);
    unlink(path);

    /* truncated to half: a clean error, never a crash */
    qs_test_path(path, sizeof path, "core-trunc.h5");
    qs_h5_t *h = qs_h5_create(path);
    int64_t shape[] = {200, 300};
    qs_tensor_t *big = make_tensor(QS_F32, 2, shape, 8);
    ck_assert_int_eq(qs_h5_write(h, "a", big), QS_OK);
    ck_assert_int_eq(qs_h5_write(h, "b", big), QS_OK);
    ck_assert_int_eq(qs_h5_commit(h), QS_OK);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(truncate(path, st.st_size / 2), 0);
    int rc = qs_h5_load(path, "b", QS_F32, &t);
    ck_assert_msg(rc == QS_ERR_FORMAT || rc == QS_ERR_IO, "rc %d", rc);
    ck_assert_ptr_null(t);
    ck_assert_msg_has(path);
    qs_tensor_free(big);
    unlink(path);

    /* a folder */
    char dir[512];
    qs_test_path(dir, sizeof dir, "");
    ck_assert_ptr_null(qs_h5_open(getenv("QS_TEST_TMP") && *getenv("QS_TEST_TMP") ? getenv("QS_TEST_TMP") : "/tmp"));
    ck_assert_int_eq(qs_last_status(), QS_ERR_IO);
    /* a folder that does not exist */
    ck_assert_ptr_null(qs_h5_create("/nonexistent-quasar-dir/x.h5"));
    ck_assert_int_eq(qs_last_status(), QS_ERR_IO);
    ck_assert_msg_has("cannot create '/nonexistent-quasar-dir/x.h5'");

    /* a damaged link table: HDF5 cannot tell whether '/d07' exists. That is
     * reported as such, not as "no dataset" with a listing of the damaged
     * group (HDF5 1.10 corrupts its heap walking it: a crash under ASan). */
    qs_test_path(path, sizeof path, "core-links.h5");
    h = qs_h5_create(path);
    int64_t four[] = {4};
    qs_tensor_t *small = make_tensor(QS_F32, 1, four, 9);
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof name, "d%02d", i);
        ck_assert_int_eq(qs_h5_write(h, name, small), QS_OK);
    }
    ck_assert_int_eq(qs_h5_commit(h), QS_OK);
    f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fstat(fileno(f), &st), 0);
    unsigned char *bytes = malloc((size_t)st.st_size);
    ck_assert_int_eq(fread(bytes, 1, (size_t)st.st_size, f), (size_t)st.st_size);
    for (off_t i = 2048; i < st.st_size; i += 97)
        bytes[i] ^= 0x5a;
    rewind(f);
    ck_assert_int_eq(fwrite(bytes, 1, (size_t)st.st_size, f), (size_t)st.st_size);
    fclose(f);
    free(bytes);
    rc = qs_h5_load(path, "d07", QS_F32, &t);
    ck_assert_int_eq(rc, QS_ERR_FORMAT);
    ck_assert_ptr_null(t);
    ck_assert_msg_has(path);
    ck_assert_msg_has("'/d07'");
    ck_assert_msg(strstr(qs_last_error(), "no dataset") == NULL, "a damaged file is not a missing dataset: '%s'",
                  qs_last_error());
    unlink(path);

    /* a dataset that declares 2^46 elements (chunked, never written, as a
     * damaged header may claim): out of memory, naming the shape */
    qs_test_path(path, sizeof path, "core-huge.h5");
    hid_t hf = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(hf, 0);
    hsize_t hdims[2] = {(hsize_t)1 << 23, (hsize_t)1 << 23}, hchunk[2] = {64, 64};
    hid_t hsp = H5Screate_simple(2, hdims, NULL), hdcpl = H5Pcreate(H5P_DATASET_CREATE);
    ck_assert_int_ge(H5Pset_chunk(hdcpl, 2, hchunk), 0);
    hid_t hds = H5Dcreate2(hf, "/huge", H5T_IEEE_F32LE, hsp, H5P_DEFAULT, hdcpl, H5P_DEFAULT);
    ck_assert_int_ge(hds, 0);
    H5Dclose(hds);
    H5Pclose(hdcpl);
    H5Sclose(hsp);
    H5Fclose(hf);
    ck_assert_int_eq(qs_h5_load(path, "huge", QS_F32, &t), QS_ERR_NOMEM);
    ck_assert_ptr_null(t);
    ck_assert_msg_has("dataset '/huge' of shape [8388608, 8388608]: out of memory");
    unlink(path);

    /* a soft link to nothing exists as a name but leads nowhere */
    qs_test_path(path, sizeof path, "core-dangling.h5");
    h = qs_h5_create(path);
    ck_assert_int_eq(qs_h5_write(h, "d", small), QS_OK);
    ck_assert_int_eq(qs_h5_commit(h), QS_OK);
    hid_t fid = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(fid, 0);
    ck_assert_int_ge(H5Lcreate_soft("/nowhere", fid, "/dangling", H5P_DEFAULT, H5P_DEFAULT), 0);
    H5Fclose(fid);
    ck_assert_int_eq(qs_h5_load(path, "dangling", QS_F32, &t), QS_ERR_FORMAT);
    ck_assert_msg_has("'/dangling' is a link that leads nowhere");
    qs_tensor_free(small);
    unlink(path);
}
END_TEST

/* whether a PATH.tmp-XXXXXX file is left next to path */
static bool tmp_sibling_exists(const char *path)
{
    char dir[512], prefix[512];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    *slash = '\0';
    snprintf(prefix, sizeof prefix, "%s.tmp-", slash + 1);
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    bool found = false;
    for (struct dirent *e; (e = readdir(d));)
        found |= strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return found;
}

START_TEST(test_h5_commit)
{
    char path[512];
    qs_test_path(path, sizeof path, "core-commit.h5");
    unlink(path);
    int64_t shape[] = {3};
    qs_tensor_t *a = make_tensor(QS_I32, 1, shape, 1), *b = make_tensor(QS_I32, 1, shape, 2);

    /* close without commit: no file, no temporary left behind */
    qs_h5_t *h = qs_h5_create(path);
    ck_assert_int_eq(qs_h5_write(h, "x", a), QS_OK);
    ck_assert(tmp_sibling_exists(path));
    qs_h5_close(h);
    ck_assert(!file_exists(path));
    ck_assert(!tmp_sibling_exists(path));

    /* commit creates, a later aborted write leaves it untouched, a commit replaces it */
    h = qs_h5_create(path);
    ck_assert_int_eq(qs_h5_write(h, "x", a), QS_OK);
    ck_assert_int_eq(qs_h5_commit(h), QS_OK);
    h = qs_h5_create(path);
    ck_assert_int_eq(qs_h5_write(h, "x", b), QS_OK);
    qs_h5_close(h);
    qs_tensor_t *t = NULL;
    ck_assert_int_eq(qs_h5_load(path, "x", QS_I32, &t), QS_OK);
    ck_assert(same_tensor(t, a));
    qs_tensor_free(t);
    h = qs_h5_create(path);
    ck_assert_int_eq(qs_h5_write(h, "y", b), QS_OK);
    ck_assert_int_eq(qs_h5_commit(h), QS_OK);
    ck_assert_int_eq(qs_h5_load(path, "y", QS_I32, &t), QS_OK);
    ck_assert(same_tensor(t, b));
    qs_tensor_free(t);
    ck_assert_int_eq(qs_h5_load(path, "x", QS_I32, &t), QS_ERR_FORMAT); /* replaced, not merged */
    ck_assert_msg_has("no dataset '/x' (datasets in the file: /y)");
    ck_assert(!tmp_sibling_exists(path));
    qs_h5_close(NULL);
    qs_tensor_free(a);
    qs_tensor_free(b);
    unlink(path);
}
END_TEST

/* A write that fails (here past RLIMIT_FSIZE, as on a full disk) fails the
 * qs_h5_write that hit it, with a one-line message, and the file can no
 * longer be committed even once there is room again, so a damaged file never
 * replaces PATH. HDF5 writes a chunked dataset when the dataset is closed;
 * that failure used to be ignored, and a file of zeros was committed. */
START_TEST(test_h5_write_failure)
{
    char path[512];
    qs_test_path(path, sizeof path, "core-wfail.h5");
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("existing\n", f);
    fclose(f);
    int64_t shape[] = {200, 1024}, small_shape[] = {3}; /* one chunk, written when the dataset closes */
    qs_tensor_t *big = make_tensor(QS_F32, 2, shape, 5), *small = make_tensor(QS_I32, 1, small_shape, 6);
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 256 * 1024;
    if (old.rlim_max != RLIM_INFINITY && old.rlim_max < lim.rlim_cur)
        lim.rlim_cur = old.rlim_max;
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    qs_h5_t *h = qs_h5_create(path);
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = qs_h5_write(h, "a", big);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, oldsig);
    ck_assert_int_eq(rc, QS_ERR_IO);
    ck_assert_msg_has(path);
    ck_assert_msg_has("cannot write dataset '/a': ");
    ck_assert_msg_has("File too large");
    ck_assert_msg(strchr(qs_last_error(), '\n') == NULL, "message on several lines: '%s'", qs_last_error());
    /* the file is discarded: nothing more is written to it or read from it */
    ck_assert_int_eq(qs_h5_write(h, "b", small), QS_ERR_IO);
    ck_assert_msg_has("an earlier write to this file failed");
    ck_assert_int_eq(qs_h5_set_attr_int(h, "/", "n", 1), QS_ERR_IO);
    qs_tensor_t *t = NULL;
    ck_assert_int_eq(qs_h5_read(h, "a", QS_F32, &t), QS_ERR_IO);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(qs_h5_commit(h), QS_ERR_IO);
    ck_assert_msg_has("an earlier write to this file failed");
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[64] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    ck_assert_str_eq(line, "existing\n");
    ck_assert(!tmp_sibling_exists(path));
    qs_tensor_free(big);
    qs_tensor_free(small);
    unlink(path);
}
END_TEST

/* The commit renames over PATH, which must never replace a folder, a device
 * (as root, -o /dev/null replaced /dev/null with a regular file) or a pipe. */
START_TEST(test_h5_create_not_regular)
{
    char fifo[512], dir[512];
    qs_test_path(fifo, sizeof fifo, "core-fifo.h5");
    unlink(fifo);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_ptr_null(qs_h5_create(fifo));
    ck_assert_int_eq(qs_last_status(), QS_ERR_IO);
    ck_assert_msg_has(fifo);
    ck_assert_msg_has("not a regular file");
    struct stat st;
    ck_assert_int_eq(stat(fifo, &st), 0);
    ck_assert(S_ISFIFO(st.st_mode));
    ck_assert(!tmp_sibling_exists(fifo));
    unlink(fifo);

    qs_test_path(dir, sizeof dir, "core-dir.h5");
    rmdir(dir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    ck_assert_ptr_null(qs_h5_create(dir));
    ck_assert_int_eq(qs_last_status(), QS_ERR_IO);
    ck_assert_msg_has("Is a directory");
    ck_assert(!tmp_sibling_exists(dir));
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* ---- YAML ------------------------------------------------------------------------------------------- */

static const char *good_yaml = "# an experiment\n"        /* 1 */
                               "name: sweep-1\n"          /* 2 */
                               "quant:\n"                 /* 3 */
                               "  bits: 4\n"              /* 4 */
                               "  scale: 0.5\n"           /* 5 */
                               "  signed: yes\n"          /* 6 */
                               "  spec: 'grid=uniform'\n" /* 7 */
                               "axes:\n"                  /* 8 */
                               "  - bits: [2, 4, 8]\n"    /* 9 */
                               "  - round:\n"             /* 10 */
                               "      - floor\n"          /* 11 */
                               "      - ceil\n"           /* 12 */
                               "empty:\n"                 /* 13 */
                               "big: -9223372036854775808\n"; /* 14 */

START_TEST(test_yaml_good)
{
    qs_yaml_doc_t *d = qs_yaml_parse(good_yaml, strlen(good_yaml), "spec.yaml");
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(qs_yaml_name(d), "spec.yaml");
    const qs_yaml_node_t *root = qs_yaml_root(d);
    ck_assert_int_eq(qs_yaml_kind(root), QS_YAML_MAP);
    ck_assert_uint_eq(qs_yaml_len(root), 5);
    ck_assert_str_eq(qs_yaml_key_at(root, 2), "axes");
    ck_assert_str_eq(qs_yaml_scalar(qs_yaml_get(root, "name")), "sweep-1");
    ck_assert_int_eq(qs_yaml_line(qs_yaml_get(root, "name")), 2);
    const qs_yaml_node_t *q = qs_yaml_get(root, "quant");
    ck_assert_int_eq(qs_yaml_kind(q), QS_YAML_MAP);
    ck_assert_int_eq(qs_yaml_line(q), 4);
    int64_t bits = 0;
    double scale = 0;
    bool sgn = false;
    const char *spec = NULL;
    ck_assert_int_eq(qs_yaml_get_int(d, q, "bits", true, &bits), QS_OK);
    ck_assert_int_eq(bits, 4);
    ck_assert_int_eq(qs_yaml_get_double(d, q, "scale", true, &scale), QS_OK);
    ck_assert(scale == 0.5);
    ck_assert_int_eq(qs_yaml_get_bool(d, q, "signed", true, &sgn), QS_OK);
    ck_assert(sgn);
    ck_assert_int_eq(qs_yaml_get_str(d, q, "spec", true, &spec), QS_OK);
    ck_assert_str_eq(spec, "grid=uniform");
    /* absent, not required: untouched */
    bits = 77;
    ck_assert_int_eq(qs_yaml_get_int(d, q, "group", false, &bits), QS_OK);
    ck_assert_int_eq(bits, 77);
    ck_assert_int_eq(qs_yaml_get_int(d, NULL, "group", false, &bits), QS_OK);
    ck_assert_int_eq(qs_yaml_get_int(d, root, "big", true, &bits), QS_OK);
    ck_assert_int_eq(bits, INT64_MIN);

    const qs_yaml_node_t *axes = qs_yaml_get(root, "axes");
    ck_assert_int_eq(qs_yaml_kind(axes), QS_YAML_SEQ);
    ck_assert_uint_eq(qs_yaml_len(axes), 2);
    ck_assert_ptr_null(qs_yaml_key_at(axes, 0));
    const qs_yaml_node_t *b = qs_yaml_get(qs_yaml_at(axes, 0), "bits");
    ck_assert_int_eq(qs_yaml_kind(b), QS_YAML_SEQ);
    ck_assert_uint_eq(qs_yaml_len(b), 3);
    ck_assert_str_eq(qs_yaml_scalar(qs_yaml_at(b, 2)), "8");
    ck_assert_int_eq(qs_yaml_line(b), 9);
    const qs_yaml_node_t *r = qs_yaml_get(qs_yaml_at(axes, 1), "round");
    ck_assert_str_eq(qs_yaml_scalar(qs_yaml_at(r, 1)), "ceil");
    ck_assert_int_eq(qs_yaml_line(qs_yaml_at(r, 1)), 12);
    ck_assert_ptr_null(qs_yaml_at(r, 2));
    ck_assert_ptr_null(qs_yaml_scalar(r));
    ck_assert_str_eq(qs_yaml_scalar(qs_yaml_get(root, "empty")), "");

    static const char *const allowed[] = {"bits", "scale", "signed", "spec", NULL};
    ck_assert_int_eq(qs_yaml_check_keys(d, q, allowed), QS_OK);
    qs_yaml_free(d);
    qs_yaml_free(NULL);

    /* empty documents read as an empty map */
    const char *empties[] = {"", "# nothing\n", "---\n", "~\n"};
    for (size_t i = 0; i < 4; i++) {
        d = qs_yaml_parse(empties[i], strlen(empties[i]), "e.yaml");
        ck_assert_ptr_nonnull(d);
        ck_assert_int_eq(qs_yaml_kind(qs_yaml_root(d)), QS_YAML_MAP);
        ck_assert_uint_eq(qs_yaml_len(qs_yaml_root(d)), 0);
        qs_yaml_free(d);
    }
}
END_TEST

static void yaml_expect(const char *text, int code, const char *msg)
{
    qs_yaml_doc_t *d = qs_yaml_parse(text, strlen(text), "spec.yaml");
    ck_assert_msg(d == NULL, "'%s' parsed", text);
    ck_assert_int_eq(qs_last_status(), code);
    ck_assert_msg_has(msg);
}

START_TEST(test_yaml_errors)
{
    yaml_expect("a: 1\nb: [1, 2\nc: 3\n", QS_ERR_FORMAT, "spec.yaml:");
    yaml_expect("a: 1\nb:\n  c: 1\n d: 2\n", QS_ERR_FORMAT, "spec.yaml:4: ");
    yaml_expect("a: 1\nb: 2\na: 3\n", QS_ERR_FORMAT, "spec.yaml:3: duplicate key 'a' (first at line 1)");
    yaml_expect("a: &x 1\nb: *x\n", QS_ERR_FORMAT, "spec.yaml:2: aliases (*x) are not supported");
    yaml_expect("a: 1\n---\nb: 2\n", QS_ERR_FORMAT, "spec.yaml:2: a second document");
    yaml_expect("? [a, b]\n: 1\n", QS_ERR_FORMAT, "spec.yaml:1: a key must be");
    yaml_expect("a: \"\xff\"\n", QS_ERR_FORMAT, "spec.yaml: ");
    char deep[2000] = "";
    for (int i = 0; i < 300; i++)
        strcat(deep, "[");
    yaml_expect(deep, QS_ERR_FORMAT, "spec.yaml:1: ");

    char path[512], expect[700];
    qs_test_path(path, sizeof path, "core-missing.yaml");
    unlink(path);
    ck_assert_ptr_null(qs_yaml_load(path));
    ck_assert_int_eq(qs_last_status(), QS_ERR_IO);
    snprintf(expect, sizeof expect, "%s: cannot open the YAML file: No such file or directory", path);
    ck_assert_str_eq(qs_last_error(), expect);
    /* a folder is named as one */
    char dir[512];
    qs_test_path(dir, sizeof dir, "core-folder.yaml");
    mkdir(dir, 0777);
    ck_assert_ptr_null(qs_yaml_load(dir));
    snprintf(expect, sizeof expect, "%s: is a folder, not a YAML file", dir);
    ck_assert_str_eq(qs_last_error(), expect);
    rmdir(dir);

    /* a file: messages carry its name and line */
    qs_test_path(path, sizeof path, "core-spec.yaml");
    FILE *f = fopen(path, "w");
    fputs("quant:\n  bits: eight\n  bitz: 4\n  scale: 0.5x\n  on: maybe\n  seq: [1]\n  nil:\n  big: 99999999999999999999\n",
          f);
    fclose(f);
    qs_yaml_doc_t *d = qs_yaml_load(path);
    ck_assert_ptr_nonnull(d);
    const qs_yaml_node_t *q = qs_yaml_get(qs_yaml_root(d), "quant");
    int64_t i = 0;
    double x = 0;
    bool bo = false;
    const char *s = NULL;
    ck_assert_int_eq(qs_yaml_get_int(d, q, "bits", true, &i), QS_ERR_FORMAT);
    snprintf(expect, sizeof expect, "%s:2: key 'bits': expected an integer, got 'eight'", path);
    ck_assert_str_eq(qs_last_error(), expect);
    ck_assert_int_eq(qs_yaml_get_double(d, q, "scale", true, &x), QS_ERR_FORMAT);
    ck_assert_msg_has(":4: key 'scale': expected a number, got '0.5x'");
    ck_assert_int_eq(qs_yaml_get_bool(d, q, "on", true, &bo), QS_ERR_FORMAT);
    ck_assert_msg_has(":5: key 'on': expected true or false, got 'maybe'");
    ck_assert_int_eq(qs_yaml_get_str(d, q, "seq", true, &s), QS_ERR_FORMAT);
    ck_assert_msg_has(":6: key 'seq': expected a string, got a sequence");
    ck_assert_int_eq(qs_yaml_get_int(d, q, "nil", true, &i), QS_ERR_FORMAT);
    ck_assert_msg_has(":7: key 'nil': expected an integer, got no value");
    ck_assert_int_eq(qs_yaml_get_int(d, q, "big", true, &i), QS_ERR_FORMAT);
    ck_assert_msg_has(":8: key 'big': 99999999999999999999 is out of the range");
    ck_assert_int_eq(qs_yaml_get_int(d, q, "group", true, &i), QS_ERR_FORMAT);
    ck_assert_msg_has(":2: missing key 'group'");
    ck_assert_int_eq(qs_yaml_get_int(d, qs_yaml_get(q, "seq"), "x", true, &i), QS_ERR_FORMAT);
    ck_assert_msg_has("expected a map");
    static const char *const allowed[] = {"bits", "scale", "on", "seq", "nil", "big", NULL};
    ck_assert_int_eq(qs_yaml_check_keys(d, q, allowed), QS_ERR_FORMAT);
    snprintf(expect, sizeof expect,
             "%s:3: unknown key 'bitz' (expected one of: bits, scale, on, seq, nil, big); did you mean 'bits'?", path);
    ck_assert_str_eq(qs_last_error(), expect);
    static const char *const few[] = {"zzzzzz", NULL};
    ck_assert_int_eq(qs_yaml_check_keys(d, q, few), QS_ERR_FORMAT);
    ck_assert_msg_has(":2: unknown key 'bits' (expected one of: zzzzzz)");
    qs_yaml_free(d);

    /* a syntax error in a file names file:line */
    f = fopen(path, "w");
    fputs("a: 1\nb: 2\nc: [1, 2\nd: 4\n\n\nx: : :\n", f);
    fclose(f);
    ck_assert_ptr_null(qs_yaml_load(path));
    ck_assert_int_eq(qs_last_status(), QS_ERR_FORMAT);
    snprintf(expect, sizeof expect, "%s:", path);
    ck_assert_msg(strncmp(qs_last_error(), expect, strlen(expect)) == 0, "%s", qs_last_error());
    unlink(path);
}
END_TEST

START_TEST(test_yaml_bools)
{
    const char *text = "a: true\nb: False\nc: on\nd: OFF\ne: yes\nf: no\n";
    qs_yaml_doc_t *d = qs_yaml_parse(text, strlen(text), NULL);
    ck_assert_str_eq(qs_yaml_name(d), "<string>");
    const char *keys = "abcdef";
    for (int i = 0; i < 6; i++) {
        char k[2] = {keys[i], 0};
        bool v = i % 2 == 0 ? false : true;
        ck_assert_int_eq(qs_yaml_get_bool(d, qs_yaml_root(d), k, true, &v), QS_OK);
        ck_assert(v == (i % 2 == 0));
    }
    qs_yaml_free(d);
}
END_TEST

static Suite *mk(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("rng");
    tcase_add_test(tc, test_philox_kat);
    tcase_add_test(tc, test_rng_layout);
    tcase_add_test(tc, test_rng_fill);
    tcase_add_test(tc, test_rng_uniform);
    suite_add_tcase(s, tc);
    tc = tcase_create("pool");
    tcase_add_test(tc, test_pool_sum);
    tcase_add_test(tc, test_pool_error);
    tcase_add_test(tc, test_pool_nested);
    suite_add_tcase(s, tc);
    tc = tcase_create("basics");
    tcase_add_test(tc, test_status);
    tcase_add_test(tc, test_tensor);
    tcase_add_test(tc, test_kv_parse);
    tcase_add_test(tc, test_kv_values);
    tcase_add_test(tc, test_metrics);
    tcase_add_test(tc, test_progress);
    suite_add_tcase(s, tc);
    tc = tcase_create("h5");
    tcase_add_test(tc, test_h5_roundtrip);
    tcase_add_test(tc, test_h5_attrs);
    tcase_add_test(tc, test_h5_conversions);
    tcase_add_test(tc, test_h5_bad_files);
    tcase_add_test(tc, test_h5_commit);
    tcase_add_test(tc, test_h5_write_failure);
    tcase_add_test(tc, test_h5_create_not_regular);
    suite_add_tcase(s, tc);
    tc = tcase_create("yaml");
    tcase_add_test(tc, test_yaml_good);
    tcase_add_test(tc, test_yaml_errors);
    tcase_add_test(tc, test_yaml_bools);
    suite_add_tcase(s, tc);
    return s;
}

QS_TEST_MAIN(mk)
