/* tests/testnet.h — what the suites that run whole networks share: an
 * in-memory dataset of a graph's input shape, the float engine's logits on
 * a batch or a dataset, and the relative L2 distance of two outputs. */
#ifndef QS_TESTNET_H
#define QS_TESTNET_H

#include "quasar.h"
#include "testutil.h"

#include <math.h>
#include <string.h>

/* n images of g's input shape with pixels uniform in [0, 1), labels i mod the class count. */
typedef struct {
    qs_dataset_t d;
    float *img;
    int32_t *lab;
} qs_test_data_t;

static inline void qs_test_data(qs_test_data_t *m, const qs_graph_t *g, int64_t n, uint64_t stream)
{
    memset(m, 0, sizeof *m);
    int64_t per = g->in_c * g->in_h * g->in_w;
    m->img = malloc((size_t)(n * per) * sizeof *m->img);
    m->lab = malloc((size_t)n * sizeof *m->lab);
    ck_assert(m->img && m->lab);
    for (int64_t i = 0; i < n * per; i++)
        m->img[i] = (float)qs_rng_uniform(5, stream, (uint64_t)i);
    for (int64_t i = 0; i < n; i++)
        m->lab[i] = (int32_t)(i % g->num_classes);
    m->d.n = n, m->d.c = g->in_c, m->d.h = g->in_h, m->d.w = g->in_w;
    m->d.f32 = m->img;
    m->d.labels = m->lab;
    m->d.num_classes = g->num_classes;
    snprintf(m->d.source, sizeof m->d.source, "memory:%llu", (unsigned long long)stream);
}

static inline void qs_test_data_free(qs_test_data_t *m)
{
    free(m->img);
    free(m->lab);
}

/* The float engine's outputs for the batch x (a copy the caller frees). */
static inline qs_tensor_t *qs_test_forward(const qs_graph_t *g, const qs_tensor_t *x)
{
    qs_engine_t *e = NULL;
    ck_assert_msg(qs_engine_create(g, NULL, &e) == QS_OK, "%s", qs_last_error());
    const qs_tensor_t *y;
    ck_assert_msg(qs_engine_forward(e, x, &y) == QS_OK, "%s", qs_last_error());
    qs_tensor_t *r = qs_tensor_clone(y);
    ck_assert_ptr_nonnull(r);
    qs_engine_free(e);
    return r;
}

/* The float engine's outputs for every image of d, normalized as g says. */
static inline qs_tensor_t *qs_test_logits(const qs_graph_t *g, const qs_dataset_t *d)
{
    int64_t shape[4] = {d->n, g->in_c, g->in_h, g->in_w};
    qs_tensor_t *x = qs_tensor_create(QS_F32, 4, shape);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(qs_dataset_batch(d, g, 0, NULL, d->n, x, NULL), QS_OK);
    qs_tensor_t *y = qs_test_forward(g, x);
    qs_tensor_free(x);
    return y;
}

/* ||a − b|| / ||a|| over two float32 tensors of one size. */
static inline double qs_test_rel_l2(const qs_tensor_t *a, const qs_tensor_t *b)
{
    ck_assert_int_eq(a->size, b->size);
    double num = 0, den = 0;
    for (int64_t k = 0; k < a->size; k++) {
        double e = (double)qs_f32(a)[k] - qs_f32(b)[k];
        num += e * e;
        den += (double)qs_f32(a)[k] * qs_f32(a)[k];
    }
    return sqrt(num / den);
}

#endif
