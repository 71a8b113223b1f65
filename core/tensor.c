/* core/tensor.c — the dense tensor type and aligned allocation. */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

#define QS_ALIGN 64

void *qs_alloc(size_t bytes)
{
    void *p = NULL;
    size_t n = (bytes + QS_ALIGN - 1) / QS_ALIGN * QS_ALIGN;
    if (n == 0)
        n = QS_ALIGN;
    if (posix_memalign(&p, QS_ALIGN, n) != 0) {
        qs_error(QS_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    return p;
}

void qs_free(void *p) { free(p); }

size_t qs_dtype_size(qs_dtype_t t)
{
    switch (t) {
    case QS_F32: return 4;
    case QS_I32: return 4;
    case QS_I64: return 8;
    }
    return 0;
}

const char *qs_dtype_name(qs_dtype_t t)
{
    switch (t) {
    case QS_F32: return "float32";
    case QS_I32: return "int32";
    case QS_I64: return "int64";
    }
    return "unknown";
}

qs_tensor_t *qs_tensor_create(qs_dtype_t dtype, int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > QS_MAX_DIMS) {
        qs_error(QS_ERR_SHAPE, "a tensor has 0 to %d dimensions, not %d", QS_MAX_DIMS, ndim);
        return NULL;
    }
    if (qs_dtype_size(dtype) == 0) {
        qs_error(QS_ERR_INVALID, "unknown tensor type %d", (int)dtype);
        return NULL;
    }
    int64_t size = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            qs_error(QS_ERR_SHAPE, "dimension %d of a tensor is negative (%lld)", i, (long long)shape[i]);
            return NULL;
        }
        if (shape[i] > 0 && size > INT64_MAX / 8 / shape[i]) {
            qs_error(QS_ERR_SHAPE, "tensor too large");
            return NULL;
        }
        size *= shape[i];
    }
    qs_tensor_t *t = calloc(1, sizeof *t);
    if (!t) {
        qs_error(QS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    size_t bytes = (size_t)size * qs_dtype_size(dtype);
    t->data = qs_alloc(bytes);
    if (!t->data) {
        free(t);
        return NULL;
    }
    memset(t->data, 0, bytes);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->size = size;
    return t;
}

qs_tensor_t *qs_tensor_clone(const qs_tensor_t *src)
{
    qs_tensor_t *t = qs_tensor_create(src->dtype, src->ndim, src->shape);
    if (t)
        memcpy(t->data, src->data, (size_t)src->size * qs_dtype_size(src->dtype));
    return t;
}

void qs_tensor_free(qs_tensor_t *t)
{
    if (!t)
        return;
    qs_free(t->data);
    free(t);
}

char *qs_shape_str(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t used = 0;
    if (n == 0)
        return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < n)
        snprintf(buf + used, n - used, "]");
    return buf;
}

bool qs_shape_equal(const qs_tensor_t *a, const qs_tensor_t *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}
