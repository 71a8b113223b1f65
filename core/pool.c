/* core/pool.c — the thread pool: persistent workers and a parallel for.
 *
 * Workers are created once (qs_pool_create) and sleep on a condition
 * variable between jobs; nothing busy-waits. qs_pool_for splits [0, n) into
 * at most 4·threads chunks of at least `grain` indices with boundaries that
 * depend only on (n, grain, threads); chunks are claimed in increasing order
 * by the workers and by the calling thread, which works too (as thread 0).
 *
 * Errors: when a chunk fails, the chunks not yet claimed are skipped. Since
 * chunks are claimed in order, every chunk below the lowest failing one has
 * run, so the error returned (and the message restored on the caller) is
 * the one of the lowest-indexed failing chunk, whatever the timing.
 *
 * A call made from inside a chunk (a nested parallel for, on this pool or
 * another) runs serially on the calling thread, as does a call on a NULL
 * pool or a 1-thread pool: fn is then called once on [0, n) with thread 0. */
#include "core/core.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QS_POOL_MAX_THREADS 1024

typedef struct {
    qs_range_fn fn;
    void *ctx;
    int64_t n, nchunks, chunk_size, chunk_rem;
    atomic_llong next;      /* next chunk to claim */
    atomic_llong fail_min;  /* lowest failing chunk so far, or nchunks */
    int rc;                 /* status of chunk fail_min (under the pool mutex) */
    qs_error_state_t err;   /* its message (under the pool mutex) */
} pool_job_t;

typedef struct {
    struct qs_pool *pool;
    int tid;
} worker_arg_t;

struct qs_pool {
    int nthreads; /* including the calling thread */
    int nworkers; /* nthreads - 1 started threads */
    pthread_t *threads;
    worker_arg_t *args;
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* a new job or stop */
    pthread_cond_t done_cv; /* a worker finished the job */
    pthread_mutex_t call_mu; /* one qs_pool_for at a time per pool */
    uint64_t generation;
    int active;              /* workers still on the current job */
    pool_job_t *job;
    bool stop;
};

/* > 0 while this thread runs a chunk: parallel fors called from there run serially */
static _Thread_local int tls_depth;

static int64_t chunk_begin(const pool_job_t *j, int64_t c)
{
    return c * j->chunk_size + (c < j->chunk_rem ? c : j->chunk_rem);
}

static void run_chunks(qs_pool_t *p, pool_job_t *j, int tid)
{
    tls_depth++;
    for (;;) {
        int64_t c = atomic_fetch_add(&j->next, 1);
        if (c >= j->nchunks || c > atomic_load(&j->fail_min))
            break;
        if (tid != 0)
            qs_clear_error(); /* a stale message must not stand in for a missing one */
        int rc = j->fn(j->ctx, chunk_begin(j, c), chunk_begin(j, c + 1), tid);
        if (rc < 0) {
            qs_error_state_t st;
            qs_error_save(&st);
            if (st.code == QS_OK) {
                /* fn failed without a message: still say something useful */
                st.code = rc;
                snprintf(st.msg, sizeof st.msg, "a parallel task failed (%s)", qs_status_name(rc));
            }
            pthread_mutex_lock(&p->mu);
            if (c < atomic_load(&j->fail_min)) {
                atomic_store(&j->fail_min, c);
                j->rc = rc;
                j->err = st;
                j->err.code = rc;
            }
            pthread_mutex_unlock(&p->mu);
        }
    }
    tls_depth--;
}

static void *worker_main(void *arg)
{
    worker_arg_t *a = arg;
    qs_pool_t *p = a->pool;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->generation == seen)
            pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->stop)
            break;
        seen = p->generation;
        pool_job_t *j = p->job;
        pthread_mutex_unlock(&p->mu);
        run_chunks(p, j, a->tid);
        pthread_mutex_lock(&p->mu);
        if (--p->active == 0)
            pthread_cond_signal(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int threads_from_env(void)
{
    const char *s = getenv("QUASAR_THREADS");
    if (s && *s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno == 0 && *end == '\0' && v > 0)
            return v > QS_POOL_MAX_THREADS ? QS_POOL_MAX_THREADS : (int)v;
        /* an unusable value falls back to the core count rather than failing */
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    return n > QS_POOL_MAX_THREADS ? QS_POOL_MAX_THREADS : (int)n;
}

qs_pool_t *qs_pool_create(int nthreads)
{
    if (nthreads <= 0)
        nthreads = threads_from_env();
    if (nthreads > QS_POOL_MAX_THREADS)
        nthreads = QS_POOL_MAX_THREADS;
    qs_pool_t *p = calloc(1, sizeof *p);
    if (!p) {
        qs_error(QS_ERR_NOMEM, "out of memory creating a thread pool");
        return NULL;
    }
    p->nthreads = nthreads;
    p->nworkers = nthreads - 1;
    if (p->nworkers > 0) {
        p->threads = calloc((size_t)p->nworkers, sizeof *p->threads);
        p->args = calloc((size_t)p->nworkers, sizeof *p->args);
        if (!p->threads || !p->args) {
            free(p->threads);
            free(p->args);
            free(p);
            qs_error(QS_ERR_NOMEM, "out of memory creating a thread pool");
            return NULL;
        }
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->call_mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    for (int i = 0; i < p->nworkers; i++) {
        p->args[i].pool = p;
        p->args[i].tid = i + 1;
        int e = pthread_create(&p->threads[i], NULL, worker_main, &p->args[i]);
        if (e != 0) {
            p->nworkers = i;
            qs_pool_free(p);
            qs_error(QS_ERR_INTERNAL, "cannot start thread %d of %d for the thread pool: %s", i + 2, nthreads,
                     strerror(e));
            return NULL;
        }
    }
    return p;
}

void qs_pool_free(qs_pool_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nworkers; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->call_mu);
    free(p->threads);
    free(p->args);
    free(p);
}

int qs_pool_threads(const qs_pool_t *p) { return p ? p->nthreads : 1; }

int qs_pool_for(qs_pool_t *p, int64_t n, int64_t grain, qs_range_fn fn, void *ctx)
{
    if (!fn)
        return qs_error(QS_ERR_INVALID, "qs_pool_for: no function given");
    if (n <= 0)
        return QS_OK;
    if (grain < 1)
        grain = 1;
    int64_t max_chunks = p ? 4 * (int64_t)p->nthreads : 1;
    int64_t nchunks = n / grain;
    if (nchunks > max_chunks)
        nchunks = max_chunks;
    if (nchunks < 1)
        nchunks = 1;
    if (!p || p->nworkers == 0 || tls_depth > 0 || nchunks == 1) {
        tls_depth++;
        int rc = fn(ctx, 0, n, 0);
        tls_depth--;
        return rc < 0 ? rc : QS_OK;
    }

    pool_job_t j;
    memset(&j, 0, sizeof j);
    j.fn = fn;
    j.ctx = ctx;
    j.n = n;
    j.nchunks = nchunks;
    j.chunk_size = n / nchunks;
    j.chunk_rem = n % nchunks;
    atomic_init(&j.next, 0);
    atomic_init(&j.fail_min, nchunks);
    j.rc = QS_OK;

    pthread_mutex_lock(&p->call_mu);
    pthread_mutex_lock(&p->mu);
    p->job = &j;
    p->active = p->nworkers;
    p->generation++;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);

    run_chunks(p, &j, 0);

    /* the job lives on this stack: wait until no worker can touch it */
    pthread_mutex_lock(&p->mu);
    while (p->active > 0)
        pthread_cond_wait(&p->done_cv, &p->mu);
    p->job = NULL;
    int rc = j.rc;
    if (rc < 0)
        qs_error_restore(&j.err);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->call_mu);
    return rc;
}
