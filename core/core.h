/* core/core.h — what every quasar module needs: status codes and per-thread
 * error messages, the tensor type, HDF5 and YAML helpers that name the file,
 * dataset, line and key of every problem, the counter-based random generator,
 * the thread pool, progress callbacks, the spec-word tokenizer and the metric
 * registry.
 *
 * Conventions: functions that can fail return int, QS_OK (0) or a negative
 * qs_status_t, and set a message for the calling thread (qs_last_error()).
 * Functions that return a pointer return NULL on failure, with the message
 * set.  Nothing in the library prints or exits. */
#ifndef QS_CORE_H
#define QS_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define QS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define QS_PRINTF(a, b)
#endif

/* For library internals: a hot function also built for AVX2 and AVX-512,
 * the CPU choosing at load time (GCC, x86-64, glibc ifunc). Only for exact
 * integer and IEEE code without contraction, so every version gives the same
 * bits; off under ASan and when the build already targets AVX-512. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(__AVX512F__) && !defined(__SANITIZE_ADDRESS__)
#define QS_TARGET_CLONES __attribute__((target_clones("default", "avx2", "arch=x86-64-v4")))
#else
#define QS_TARGET_CLONES
#endif

/* ---- status and errors ----------------------------------------------------- */

typedef enum {
    QS_OK = 0,
    QS_ERR_NOMEM = -1,       /* allocation failed */
    QS_ERR_INVALID = -2,     /* bad argument, spec word or setting */
    QS_ERR_IO = -3,          /* a file cannot be opened, read or written */
    QS_ERR_FORMAT = -4,      /* a file's content is corrupt or not what was expected */
    QS_ERR_SHAPE = -5,       /* wrong rank, shape or size */
    QS_ERR_NUMERIC = -6,     /* NaN or infinity where a finite number is needed */
    QS_ERR_UNSUPPORTED = -7, /* valid, but not something quasar (or a target) can do */
    QS_ERR_INTERRUPTED = -8, /* cancelled through a progress callback */
    QS_ERR_INTERNAL = -9     /* a bug in quasar */
} qs_status_t;

#define QS_ERROR_MAX 1024 /* longest message kept, including the NUL */

/* Sets the calling thread's error and returns code, so that
 * `return qs_error(QS_ERR_INVALID, "bits must be 1..16, got %d", b);` works. */
int qs_error(int code, const char *fmt, ...) QS_PRINTF(2, 3);
/* Prepends context ("weights.h5: ") to the current message; returns the current code. */
int qs_error_context(const char *fmt, ...) QS_PRINTF(1, 2);
const char *qs_last_error(void); /* "" when there is none */
int qs_last_status(void);        /* QS_OK when there is none */
void qs_clear_error(void);
const char *qs_status_name(int code); /* "invalid argument", ... */

/* How an error raised in a worker thread reaches its caller: the worker saves
 * its thread's error into a qs_error_state_t, the caller restores it. The
 * thread pool does this for you. */
typedef struct {
    int code;
    char msg[QS_ERROR_MAX];
} qs_error_state_t;
void qs_error_save(qs_error_state_t *st);
void qs_error_restore(const qs_error_state_t *st);

/* ---- tensors ----------------------------------------------------------------- */

typedef enum { QS_F32 = 0, QS_I32 = 1, QS_I64 = 2 } qs_dtype_t;

#define QS_MAX_DIMS 5

/* A dense row-major tensor. data is 64-byte aligned and owned by the tensor. */
typedef struct {
    qs_dtype_t dtype;
    int ndim; /* 0 (scalar) .. QS_MAX_DIMS */
    int64_t shape[QS_MAX_DIMS];
    int64_t size; /* number of elements */
    void *data;
} qs_tensor_t;

size_t qs_dtype_size(qs_dtype_t t);
const char *qs_dtype_name(qs_dtype_t t);
/* Zero-filled. Fails (NULL) on a bad rank, a negative dimension or overflow. */
qs_tensor_t *qs_tensor_create(qs_dtype_t dtype, int ndim, const int64_t *shape);
qs_tensor_t *qs_tensor_clone(const qs_tensor_t *t);
void qs_tensor_free(qs_tensor_t *t);
/* "[64, 3, 3, 3]" into buf; returns buf. */
char *qs_shape_str(int ndim, const int64_t *shape, char *buf, size_t n);
/* true when both have the same rank and dimensions */
bool qs_shape_equal(const qs_tensor_t *a, const qs_tensor_t *b);
static inline float *qs_f32(const qs_tensor_t *t) { return (float *)t->data; }
static inline int32_t *qs_i32(const qs_tensor_t *t) { return (int32_t *)t->data; }
static inline int64_t *qs_i64(const qs_tensor_t *t) { return (int64_t *)t->data; }
/* Aligned allocation used for every large buffer (free with qs_free). */
void *qs_alloc(size_t bytes);
void qs_free(void *p);

/* ---- HDF5 ---------------------------------------------------------------------- */

/* HDF5's own error printing is switched off by every helper; its errors become
 * quasar messages that name the file and the dataset. */
typedef struct qs_h5 qs_h5_t;

qs_h5_t *qs_h5_open(const char *path); /* existing file, read-only */
/* A new file, written aside (PATH.tmp-XXXXXX in the same folder) until
 * qs_h5_commit() renames it over PATH; qs_h5_close() without a commit removes
 * it, so a failed run never leaves a partial file and never harms an existing one. */
qs_h5_t *qs_h5_create(const char *path);
int qs_h5_commit(qs_h5_t *h); /* flushes, closes, renames; frees h */
void qs_h5_close(qs_h5_t *h); /* closes (and discards an uncommitted new file); NULL is fine */
const char *qs_h5_path(const qs_h5_t *h);
bool qs_h5_exists(qs_h5_t *h, const char *name); /* a dataset or group */
/* Reads a numeric dataset of any stored integer or float type, converting to
 * dtype. Rank 0..QS_MAX_DIMS. Errors name file and dataset. */
int qs_h5_read(qs_h5_t *h, const char *name, qs_dtype_t dtype, qs_tensor_t **out);
/* Writes a dataset (intermediate groups are created). */
int qs_h5_write(qs_h5_t *h, const char *name, const qs_tensor_t *t);
/* Attributes on an object ("/" for the file, or a dataset/group name). */
int qs_h5_set_attr_double(qs_h5_t *h, const char *obj, const char *attr, double v);
int qs_h5_set_attr_int(qs_h5_t *h, const char *obj, const char *attr, int64_t v);
int qs_h5_set_attr_str(qs_h5_t *h, const char *obj, const char *attr, const char *v);
int qs_h5_get_attr_double(qs_h5_t *h, const char *obj, const char *attr, double *v);
int qs_h5_get_attr_int(qs_h5_t *h, const char *obj, const char *attr, int64_t *v);
/* *v is malloc'ed; free() it */
int qs_h5_get_attr_str(qs_h5_t *h, const char *obj, const char *attr, char **v);
/* One-shot convenience: open, read one dataset, close. */
int qs_h5_load(const char *path, const char *name, qs_dtype_t dtype, qs_tensor_t **out);

/* ---- files ------------------------------------------------------------------------ */

/* The whole of path (at most max bytes) into *text, NUL-terminated (free
 * with free), its length in *len; what names the kind of file in messages
 * ("spec", "target file", ...). A folder, a missing file or a larger file is
 * an error naming path. */
int qs_file_read(const char *path, const char *what, size_t max, char **text, size_t *len);

/* ---- YAML ------------------------------------------------------------------------ */

/* A parsed YAML document as a tree. Every node remembers its line, so that
 * messages read "spec.yaml:12: key 'bits': expected an integer, got 'eight'". */
typedef struct qs_yaml_doc qs_yaml_doc_t;
typedef struct qs_yaml_node qs_yaml_node_t;
typedef enum { QS_YAML_SCALAR, QS_YAML_MAP, QS_YAML_SEQ } qs_yaml_kind_t;

qs_yaml_doc_t *qs_yaml_load(const char *path);
qs_yaml_doc_t *qs_yaml_parse(const char *text, size_t len, const char *name);
void qs_yaml_free(qs_yaml_doc_t *doc);
const char *qs_yaml_name(const qs_yaml_doc_t *doc); /* file name used in messages */
const qs_yaml_node_t *qs_yaml_root(const qs_yaml_doc_t *doc);
qs_yaml_kind_t qs_yaml_kind(const qs_yaml_node_t *n);
int qs_yaml_line(const qs_yaml_node_t *n);               /* 1-based */
const char *qs_yaml_scalar(const qs_yaml_node_t *n);     /* NULL unless a scalar */
size_t qs_yaml_len(const qs_yaml_node_t *n);             /* entries of a map or sequence */
const qs_yaml_node_t *qs_yaml_at(const qs_yaml_node_t *n, size_t i);   /* i-th value */
const char *qs_yaml_key_at(const qs_yaml_node_t *n, size_t i);         /* i-th key of a map */
const qs_yaml_node_t *qs_yaml_get(const qs_yaml_node_t *map, const char *key); /* NULL if absent */
/* Typed getters on a map entry. Absent key: QS_OK with *out untouched unless
 * required, then an error. Wrong type: error with file:line and the key. */
int qs_yaml_get_str(const qs_yaml_doc_t *d, const qs_yaml_node_t *map, const char *key, bool required, const char **out);
int qs_yaml_get_int(const qs_yaml_doc_t *d, const qs_yaml_node_t *map, const char *key, bool required, int64_t *out);
int qs_yaml_get_double(const qs_yaml_doc_t *d, const qs_yaml_node_t *map, const char *key, bool required, double *out);
int qs_yaml_get_bool(const qs_yaml_doc_t *d, const qs_yaml_node_t *map, const char *key, bool required, bool *out);
/* Every key of map must be in allowed (NULL-terminated); otherwise an error
 * naming file:line, the unknown key and the keys expected. */
int qs_yaml_check_keys(const qs_yaml_doc_t *d, const qs_yaml_node_t *map, const char *const *allowed);

/* ---- counter-based random numbers ---------------------------------------------- */

/* Philox4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as easy
 * as 1, 2, 3", SC'11). Word i of stream (seed, stream) is a pure function of
 * (seed, stream, i), so element i of a stochastic operation gets the same
 * random bits whatever the thread count or chunking. */
void qs_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
/* Word `index` of the stream: block index/4 of counter (index/4 lo, hi, stream lo, hi), key = seed. */
uint32_t qs_rng_u32(uint64_t seed, uint64_t stream, uint64_t index);
/* Words first .. first+n-1 of the stream, as n calls of qs_rng_u32 would give. */
void qs_rng_fill_u32(uint64_t seed, uint64_t stream, uint64_t first, size_t n, uint32_t *out);
/* A double in [0, 1) from words 2*index and 2*index+1 (53 random bits). */
double qs_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index);

/* ---- thread pool ------------------------------------------------------------------- */

typedef struct qs_pool qs_pool_t;
/* nthreads <= 0: the QUASAR_THREADS environment variable, else the number of cores. */
qs_pool_t *qs_pool_create(int nthreads);
void qs_pool_free(qs_pool_t *p);
int qs_pool_threads(const qs_pool_t *p); /* 1 for a NULL pool */
/* Work on [begin, end) of an index range; thread is 0..threads-1. Returns QS_OK or an error. */
typedef int (*qs_range_fn)(void *ctx, int64_t begin, int64_t end, int thread);
/* Splits [0, n) into chunks of at least grain indices and runs fn on them in
 * parallel (serially for a NULL pool or a call from inside a worker). Returns
 * when all are done; if chunks fail, the error of the lowest-indexed failing
 * chunk is returned and its message is set on the calling thread. Results must
 * not depend on how [0, n) was split (the callers' contract). */
int qs_pool_for(qs_pool_t *p, int64_t n, int64_t grain, qs_range_fn fn, void *ctx);

/* ---- progress --------------------------------------------------------------------------- */

typedef struct {
    const char *task;   /* "calibrate", "sweep", ... */
    int64_t done, total;
    double elapsed_s;   /* since the task started */
    const char *detail; /* optional, e.g. "best top1 0.912"; may be NULL */
} qs_progress_t;
/* Return non-zero to ask the work to stop: it then returns QS_ERR_INTERRUPTED. */
typedef int (*qs_progress_fn)(const qs_progress_t *p, void *user);
typedef struct {
    qs_progress_fn fn; /* NULL: no reporting */
    void *user;
    double start_s;    /* set by qs_progress_begin */
} qs_progress_cb_t;
double qs_now_s(void); /* monotonic clock, seconds */
void qs_progress_begin(qs_progress_cb_t *cb);
/* Calls the callback (if any); QS_ERR_INTERRUPTED (with a message) if it asks to stop. */
int qs_progress_report(qs_progress_cb_t *cb, const char *task, int64_t done, int64_t total, const char *detail);

/* ---- spec words --------------------------------------------------------------------------- */

/* The one tokenizer of the spec grammar (docs/spec.md): "key=value" words
 * separated by commas; spaces around words are ignored; a bare word (no '=')
 * is kept as its key with `bare` set, so that shorthands such as "w8a8" can be
 * recognised by the caller. Keys and values are at most 63 characters. */
#define QS_KV_MAX 32
typedef struct {
    int count;
    struct {
        char key[64];
        char value[64]; /* "" for a bare word */
        bool bare;      /* no '=' in the word */
    } item[QS_KV_MAX];
} qs_kv_t;
/* what names the source in messages (e.g. "--quant"); errors say what is wrong and where. */
int qs_kv_parse(const char *text, const char *what, qs_kv_t *out);
/* Index of key, or -1. Duplicate keys are rejected by qs_kv_parse. */
int qs_kv_find(const qs_kv_t *kv, const char *key);
/* Matches value against a NULL-terminated list; returns the index, or an error
 * "what: key 'round': unknown value 'nearest', expected one of: nearest-even, ..." */
int qs_kv_choice(const char *what, const char *key, const char *value, const char *const *choices, int *index);
int qs_kv_int(const char *what, const char *key, const char *value, int64_t lo, int64_t hi, int64_t *out);
int qs_kv_double(const char *what, const char *key, const char *value, double lo, double hi, double *out);

/* ---- metric registry ------------------------------------------------------------------------ */

typedef enum { QS_BETTER_HIGHER, QS_BETTER_LOWER, QS_BETTER_NONE } qs_direction_t;
typedef struct {
    const char *name;  /* key in --json, column in results.h5/CSV, axis name in plots */
    const char *unit;  /* "fraction", "dB", "J", "s", "bytes", "count", "" */
    qs_direction_t direction;
    const char *description;
} qs_metric_t;
const qs_metric_t *qs_metric_find(const char *name); /* NULL if unknown */
size_t qs_metric_count(void);
const qs_metric_t *qs_metric_at(size_t i);

#ifdef __cplusplus
}
#endif
#endif
