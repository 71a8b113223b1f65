/* sim/model.c — the HDF5 model file (docs/model-format.md): a graph of named
 * nodes with their attributes and parameters, readable by h5dump and h5py
 * without quasar.
 *
 * This file talks to HDF5 directly: the core helpers hide the file handle and
 * offer neither empty groups (most nodes hold no dataset), nor array
 * attributes, nor a listing of a group, which the format needs. It keeps
 * their conventions: HDF5's error printing off, every error translated into a
 * message naming the file, the node and the problem, and a new file written
 * aside (PATH.tmp-XXXXXX in the same folder) and renamed over PATH only when
 * complete, so a failed save never harms the file already there. */
#include "sim/sim_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QS_MODEL_FORMAT "quasar-model"
/* qs_model_save writes version 1; version 2 is the quantized model
 * (sim/qmodel.c), whose float part is the same: this loader reads both. */
#define QS_MODEL_VERSION 1
#define QS_MODEL_VERSION_MAX 2

static void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* The innermost message of HDF5's error stack (call right after the failing call). */
static herr_t detail_walk(unsigned n, const H5E_error2_t *e, void *data)
{
    if (n == 0 && e->desc && *e->desc)
        snprintf(data, 200, "%s", e->desc);
    return 0;
}

static const char *h5_detail(char buf[200]) { return qs_sim_h5_detail(buf); }

const char *qs_sim_h5_detail(char buf[200])
{
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, detail_walk, buf);
    if (!buf[0])
        snprintf(buf, 200, "unknown HDF5 error");
    return buf;
}

/* Which attributes each op keeps in its node group, besides op, name,
 * inputs and the informative out_shape. Writer and reader share this table. */
enum { A_KERNEL = 1, A_STRIDE = 2, A_PADDING = 4, A_DILATION = 8, A_GROUPS = 16, A_EPS = 32, A_CLIP = 64, A_SHAPE = 128 };

static unsigned op_attrs(qs_op_t op)
{
    switch (op) {
    case QS_OP_CONV2D: return A_KERNEL | A_STRIDE | A_PADDING | A_DILATION | A_GROUPS;
    case QS_OP_MAXPOOL:
    case QS_OP_AVGPOOL: return A_KERNEL | A_STRIDE | A_PADDING;
    case QS_OP_BATCHNORM: return A_EPS;
    case QS_OP_CLIP: return A_CLIP;
    case QS_OP_RESHAPE: return A_SHAPE;
    default: return 0;
    }
}

static const char *const tensor_names[] = {"weight", "bias", "gamma", "beta", "mean", "var", "mask"};
#define NTENSORS 7

static qs_tensor_t **node_tensor(qs_node_t *n, int k)
{
    qs_tensor_t **t[NTENSORS] = {&n->weight, &n->bias, &n->gamma, &n->beta, &n->mean, &n->var, &n->mask};
    return t[k];
}

/* ---- writing ---------------------------------------------------------------------------- */

typedef struct {
    hid_t file;
    const char *path; /* the final name, for messages */
} writer_t;

static int put_attr(const writer_t *w, hid_t obj, const char *where, const char *name, hid_t ftype, hid_t mtype,
                    int n, const void *buf)
{
    hsize_t dims = (hsize_t)n;
    hid_t space = n > 0 ? H5Screate_simple(1, &dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t a = space >= 0 ? H5Acreate2(obj, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT) : H5I_INVALID_HID;
    int rc = QS_OK;
    if (a < 0 || H5Awrite(a, mtype, buf) < 0) {
        char d[200];
        rc = qs_error(QS_ERR_IO, "cannot write '%s': attribute '%s' of '%s': %s", w->path, name, where, h5_detail(d));
    }
    if (a >= 0)
        H5Aclose(a);
    if (space >= 0)
        H5Sclose(space);
    return rc;
}

static int put_ints(const writer_t *w, hid_t obj, const char *where, const char *name, int n, const int64_t *v)
{
    return put_attr(w, obj, where, name, H5T_STD_I64LE, H5T_NATIVE_INT64, n, v);
}

static int put_int(const writer_t *w, hid_t obj, const char *where, const char *name, int64_t v)
{
    return put_ints(w, obj, where, name, 0, &v);
}

/* float32 on disk: the values round-trip exactly and h5dump shows 1e-05, not 9.99999974737875e-06 */
static int put_float(const writer_t *w, hid_t obj, const char *where, const char *name, float v)
{
    return put_attr(w, obj, where, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 0, &v);
}

static int put_str(const writer_t *w, hid_t obj, const char *where, const char *name, const char *v)
{
    hid_t st = H5Tcopy(H5T_C_S1);
    if (st < 0 || H5Tset_size(st, H5T_VARIABLE) < 0 || H5Tset_cset(st, H5T_CSET_UTF8) < 0) {
        if (st >= 0)
            H5Tclose(st);
        return qs_error(QS_ERR_INTERNAL, "cannot write '%s': cannot make a string type", w->path);
    }
    int rc = put_attr(w, obj, where, name, st, st, 0, &v);
    H5Tclose(st);
    return rc;
}

static int put_tensor(const writer_t *w, hid_t grp, const char *where, const char *name, const qs_tensor_t *t,
                      bool mask)
{
    hsize_t dims[QS_MAX_DIMS];
    for (int k = 0; k < t->ndim; k++)
        dims[k] = (hsize_t)t->shape[k];
    void *buf = t->data;
    uint8_t *bytes = NULL;
    if (mask) {
        /* masks hold 0 and 1 (qs_graph_infer checked): one byte each on disk */
        bytes = malloc((size_t)t->size ? (size_t)t->size : 1);
        if (!bytes)
            return qs_error(QS_ERR_NOMEM, "cannot write '%s': out of memory for '%s/%s'", w->path, where, name);
        for (int64_t i = 0; i < t->size; i++)
            bytes[i] = qs_f32(t)[i] != 0.0f;
        buf = bytes;
    }
    hid_t space = H5Screate_simple(t->ndim, dims, NULL);
    hid_t ds = space >= 0 ? H5Dcreate2(grp, name, mask ? H5T_STD_U8LE : H5T_IEEE_F32LE, space, H5P_DEFAULT,
                                       H5P_DEFAULT, H5P_DEFAULT)
                          : H5I_INVALID_HID;
    int rc = QS_OK;
    if (ds < 0 || H5Dwrite(ds, mask ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        char d[200];
        rc = qs_error(QS_ERR_IO, "cannot write '%s': dataset '%s/%s': %s", w->path, where, name, h5_detail(d));
    }
    if (ds >= 0)
        H5Dclose(ds);
    if (space >= 0)
        H5Sclose(space);
    free(bytes);
    return rc;
}

static int write_node(const writer_t *w, hid_t nodes, const qs_graph_t *g, int i)
{
    const qs_node_t *n = &g->nodes[i];
    char where[QS_NAME_MAX + 32], gname[QS_NAME_MAX + 16];
    snprintf(gname, sizeof gname, "%04d_%s", i, n->name);
    snprintf(where, sizeof where, "/nodes/%s", gname);
    hid_t grp = H5Gcreate2(nodes, gname, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (grp < 0) {
        char d[200];
        return qs_error(QS_ERR_IO, "cannot write '%s': group '%s': %s", w->path, where, h5_detail(d));
    }
    char inputs[QS_MAX_INPUTS * QS_NAME_MAX + 8];
    size_t used = 0;
    inputs[0] = '\0';
    for (int k = 0; k < n->ninputs; k++)
        used += (size_t)snprintf(inputs + used, sizeof inputs - used, "%s%s", k ? "," : "",
                                 g->nodes[n->inputs[k]].name);
    unsigned attrs = op_attrs(n->op);
    int rc;
    if ((rc = put_str(w, grp, where, "op", qs_op_name(n->op))) < 0 || (rc = put_str(w, grp, where, "name", n->name)) < 0 ||
        (rc = put_str(w, grp, where, "inputs", inputs)) < 0 ||
        (rc = put_ints(w, grp, where, "out_shape", n->out_ndim, n->out_shape)) < 0)
        goto done;
    if (attrs & A_KERNEL) {
        int64_t v[2] = {n->kh, n->kw};
        if ((rc = put_ints(w, grp, where, "kernel", 2, v)) < 0)
            goto done;
    }
    if (attrs & A_STRIDE) {
        int64_t v[2] = {n->stride_h, n->stride_w};
        if ((rc = put_ints(w, grp, where, "stride", 2, v)) < 0)
            goto done;
    }
    if (attrs & A_PADDING) {
        int64_t v[4] = {n->pad_top, n->pad_left, n->pad_bottom, n->pad_right};
        if ((rc = put_ints(w, grp, where, "padding", 4, v)) < 0)
            goto done;
    }
    if (attrs & A_DILATION) {
        int64_t v[2] = {n->dil_h, n->dil_w};
        if ((rc = put_ints(w, grp, where, "dilation", 2, v)) < 0)
            goto done;
    }
    if ((attrs & A_GROUPS) && (rc = put_int(w, grp, where, "groups", n->groups)) < 0)
        goto done;
    if ((attrs & A_EPS) && (rc = put_float(w, grp, where, "eps", n->eps)) < 0)
        goto done;
    if ((attrs & A_CLIP) && ((rc = put_float(w, grp, where, "clip_min", n->clip_min)) < 0 ||
                             (rc = put_float(w, grp, where, "clip_max", n->clip_max)) < 0))
        goto done;
    if ((attrs & A_SHAPE) && (rc = put_ints(w, grp, where, "shape", n->reshape_ndim, n->reshape)) < 0)
        goto done;
    for (int k = 0; k < NTENSORS; k++) {
        const qs_tensor_t *t = *node_tensor((qs_node_t *)n, k);
        if (t && (rc = put_tensor(w, grp, where, tensor_names[k], t, k == 6)) < 0)
            goto done;
    }
done:
    H5Gclose(grp);
    return rc;
}

static int write_file(const writer_t *w, const qs_graph_t *g, int version)
{
    hid_t root = w->file;
    int64_t shape[3] = {g->in_c, g->in_h, g->in_w};
    int rc;
    if ((rc = put_str(w, root, "/", "format", QS_MODEL_FORMAT)) < 0 ||
        (rc = put_int(w, root, "/", "format_version", version)) < 0 ||
        (rc = put_str(w, root, "/", "name", g->name)) < 0 || (rc = put_ints(w, root, "/", "input_shape", 3, shape)) < 0 ||
        (rc = put_float(w, root, "/", "input_scale", g->input_scale)) < 0 ||
        (rc = put_attr(w, root, "/", "norm_mean", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, (int)g->in_c, g->norm_mean)) < 0 ||
        (rc = put_attr(w, root, "/", "norm_std", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, (int)g->in_c, g->norm_std)) < 0 ||
        (rc = put_int(w, root, "/", "num_classes", g->num_classes)) < 0 ||
        (rc = put_str(w, root, "/", "output", g->nodes[g->output].name)) < 0 ||
        (rc = put_int(w, root, "/", "node_count", g->nnodes)) < 0)
        return rc;
    hid_t nodes = H5Gcreate2(root, "nodes", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (nodes < 0) {
        char d[200];
        return qs_error(QS_ERR_IO, "cannot write '%s': group '/nodes': %s", w->path, h5_detail(d));
    }
    for (int i = 0; i < g->nnodes && rc == QS_OK; i++)
        rc = write_node(w, nodes, g, i);
    H5Gclose(nodes);
    return rc;
}

/* The permissions open(0666) would give: mkstemp makes 0600. */
static mode_t default_mode(void)
{
    mode_t mask = umask(022);
    umask(mask);
    return 0666 & ~mask;
}

int qs_model_save(const qs_graph_t *g, const char *path)
{
    if (!g || !path || !*path)
        return qs_error(QS_ERR_INVALID, "qs_model_save: no graph or no file name");
    return qs_sim_model_write(g, path, QS_MODEL_VERSION, NULL, NULL);
}

int qs_sim_model_write(const qs_graph_t *g, const char *path, int version, qs_sim_model_extra_fn extra, void *ctx)
{
    h5_quiet();
    if (!g || !path || !*path)
        return qs_error(QS_ERR_INVALID, "cannot save a model: no graph or no file name");
    /* only a valid graph is written, so that every file quasar writes loads;
     * infer works on a copy because g is const */
    qs_graph_t *c = qs_graph_clone(g);
    if (!c)
        return qs_last_status();
    int rc = qs_graph_infer(c);
    if (rc < 0) {
        qs_graph_free(c);
        return qs_error_context("cannot save '%s': ", path);
    }
    size_t n = strlen(path) + sizeof ".tmp-XXXXXX";
    char *tmp = malloc(n);
    if (!tmp) {
        qs_graph_free(c);
        return qs_error(QS_ERR_NOMEM, "out of memory saving '%s'", path);
    }
    snprintf(tmp, n, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rc = qs_error(QS_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
        free(tmp);
        qs_graph_free(c);
        return rc;
    }
    if (fchmod(fd, default_mode()) != 0) {
        /* not fatal: the file is complete, just more private */
    }
    close(fd);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0)
        H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    writer_t w = {H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl), path};
    char d[200];
    h5_detail(d); /* before any other HDF5 call clears the stack */
    if (fapl >= 0)
        H5Pclose(fapl);
    if (w.file < 0) {
        rc = qs_error(QS_ERR_IO, "cannot create '%s' (as '%s'): %s", path, tmp, d);
    } else {
        rc = write_file(&w, c, version);
        if (rc == QS_OK && extra)
            rc = extra(ctx, w.file, path, c);
        if (H5Fclose(w.file) < 0 && rc == QS_OK)
            rc = qs_error(QS_ERR_IO, "cannot write '%s': %s", path, h5_detail(d));
    }
    if (rc == QS_OK) {
        /* the data must be on disk before the name points at it */
        fd = open(tmp, O_RDONLY);
        if (fd >= 0) {
            if (fsync(fd) != 0 && errno != EINVAL)
                rc = qs_error(QS_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
            close(fd);
        }
    }
    if (rc == QS_OK && rename(tmp, path) != 0)
        rc = qs_error(QS_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    if (rc != QS_OK)
        unlink(tmp);
    free(tmp);
    qs_graph_free(c);
    return rc;
}

/* ---- reading ------------------------------------------------------------------------------ */

typedef struct {
    hid_t file;
    const char *path;
    char where[QS_NAME_MAX + 96]; /* "node 'conv1' (/nodes/0001_conv1)" or "root group" */
} reader_t;

static int bad(const reader_t *r, int code, const char *fmt, ...) QS_PRINTF(3, 4);
static int bad(const reader_t *r, int code, const char *fmt, ...)
{
    char msg[QS_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return qs_error(code, "'%s': %s: %s", r->path, r->where, msg);
}

/* Opens attribute name of obj; *n gets its number of values (1 for a scalar). */
static hid_t open_attr(const reader_t *r, hid_t obj, const char *name, bool required, hssize_t *n, int *rc)
{
    *rc = QS_OK;
    htri_t ex = H5Aexists(obj, name);
    if (ex <= 0) {
        if (ex < 0 || required)
            *rc = bad(r, QS_ERR_FORMAT, "attribute '%s' is missing", name);
        return H5I_INVALID_HID;
    }
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t space = a >= 0 ? H5Aget_space(a) : H5I_INVALID_HID;
    *n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    if (space >= 0)
        H5Sclose(space);
    if (a < 0 || *n < 0) {
        char d[200];
        *rc = bad(r, QS_ERR_FORMAT, "cannot read attribute '%s': %s", name, h5_detail(d));
        if (a >= 0)
            H5Aclose(a);
        return H5I_INVALID_HID;
    }
    return a;
}

static H5T_class_t attr_class(hid_t a)
{
    hid_t t = H5Aget_type(a);
    H5T_class_t c = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    if (t >= 0)
        H5Tclose(t);
    return c;
}

/* An integer attribute of min_n..max_n values (max_n 0: a scalar); *count gets the number read. */
static int get_ints(const reader_t *r, hid_t obj, const char *name, bool required, int min_n, int max_n,
                    int64_t *v, int *count)
{
    hssize_t n;
    int rc;
    hid_t a = open_attr(r, obj, name, required, &n, &rc);
    if (a < 0)
        return rc;
    int lo = max_n ? min_n : 1, hi = max_n ? max_n : 1;
    if (attr_class(a) != H5T_INTEGER)
        rc = bad(r, QS_ERR_FORMAT, "attribute '%s' is not an integer", name);
    else if (n < lo || n > hi)
        rc = lo == hi ? bad(r, QS_ERR_FORMAT, "attribute '%s' holds %lld values, expected %d", name, (long long)n, lo)
                      : bad(r, QS_ERR_FORMAT, "attribute '%s' holds %lld values, expected %d to %d", name,
                            (long long)n, lo, hi);
    else if (H5Aread(a, H5T_NATIVE_INT64, v) < 0)
        rc = bad(r, QS_ERR_FORMAT, "cannot read attribute '%s' (out of the range of int64?)", name);
    else if (count)
        *count = (int)n;
    H5Aclose(a);
    return rc;
}

/* Integer attributes that become int fields (counts, sides): 0..2^31-1. */
static int get_small_ints(const reader_t *r, hid_t obj, const char *name, int n, int *out)
{
    int64_t v[4];
    int rc = get_ints(r, obj, name, true, n, n > 1 ? n : 0, v, NULL);
    for (int k = 0; rc == QS_OK && k < n; k++) {
        if (v[k] < 0 || v[k] > INT32_MAX)
            return bad(r, QS_ERR_FORMAT, "attribute '%s' holds %lld, out of the range 0..%d", name, (long long)v[k],
                       INT32_MAX);
        out[k] = (int)v[k];
    }
    return rc;
}

/* Float attribute(s), any integer or float type: n values (0: a scalar). */
static int get_floats(const reader_t *r, hid_t obj, const char *name, int n, float *v)
{
    hssize_t count;
    int rc;
    hid_t a = open_attr(r, obj, name, true, &count, &rc);
    if (a < 0)
        return rc;
    H5T_class_t c = attr_class(a);
    int want = n ? n : 1;
    if (c != H5T_FLOAT && c != H5T_INTEGER)
        rc = bad(r, QS_ERR_FORMAT, "attribute '%s' is not a number", name);
    else if (count != want)
        rc = bad(r, QS_ERR_FORMAT, "attribute '%s' holds %lld values, expected %d", name, (long long)count, want);
    else if (H5Aread(a, H5T_NATIVE_FLOAT, v) < 0)
        rc = bad(r, QS_ERR_FORMAT, "cannot read attribute '%s'", name);
    for (int k = 0; rc == QS_OK && k < want; k++)
        if (!isfinite(v[k]))
            rc = bad(r, QS_ERR_NUMERIC, "attribute '%s'%s is %s; it must be finite", name, n ? " has a value that" : "",
                     isnan(v[k]) ? "NaN" : "infinite");
    H5Aclose(a);
    return rc;
}

/* A string attribute (variable or fixed length) into a malloc'ed *out. */
static int get_str(const reader_t *r, hid_t obj, const char *name, char **out)
{
    *out = NULL;
    hssize_t n;
    int rc;
    hid_t a = open_attr(r, obj, name, true, &n, &rc);
    if (a < 0)
        return rc;
    hid_t ft = H5Aget_type(a);
    hid_t mem = H5I_INVALID_HID;
    if (ft < 0 || H5Tget_class(ft) != H5T_STRING) {
        rc = bad(r, QS_ERR_FORMAT, "attribute '%s' is not a string", name);
        goto done;
    }
    if (n != 1) {
        rc = bad(r, QS_ERR_FORMAT, "attribute '%s' holds %lld strings, expected one", name, (long long)n);
        goto done;
    }
    mem = H5Tcopy(ft);
    if (H5Tis_variable_str(ft) > 0) {
        char *s = NULL;
        if (mem < 0 || H5Aread(a, mem, &s) < 0) {
            rc = bad(r, QS_ERR_FORMAT, "cannot read attribute '%s'", name);
            goto done;
        }
        *out = strdup(s ? s : "");
        if (s)
            H5free_memory(s);
    } else {
        size_t size = H5Tget_size(ft);
        char *buf = calloc(1, size + 1);
        if (buf && (mem < 0 || H5Aread(a, mem, buf) < 0)) {
            free(buf);
            rc = bad(r, QS_ERR_FORMAT, "cannot read attribute '%s'", name);
            goto done;
        }
        if (buf && H5Tget_strpad(ft) == H5T_STR_SPACEPAD)
            for (size_t k = strlen(buf); k > 0 && buf[k - 1] == ' '; k--)
                buf[k - 1] = '\0';
        *out = buf;
    }
    if (!*out)
        rc = qs_error(QS_ERR_NOMEM, "'%s': out of memory reading attribute '%s'", r->path, name);
done:
    if (mem >= 0)
        H5Tclose(mem);
    if (ft >= 0)
        H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

static int read_tensor(const reader_t *r, hid_t grp, const char *name, qs_tensor_t **out)
{
    *out = NULL;
    hid_t ds = H5Dopen2(grp, name, H5P_DEFAULT);
    if (ds < 0) {
        char d[200];
        return bad(r, QS_ERR_FORMAT, "cannot open dataset '%s': %s", name, h5_detail(d));
    }
    int rc = QS_OK;
    hid_t space = H5Dget_space(ds), type = H5Dget_type(ds);
    H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    int ndim = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    hsize_t dims[QS_MAX_DIMS];
    int64_t shape[QS_MAX_DIMS];
    if (cls != H5T_FLOAT && cls != H5T_INTEGER) {
        rc = bad(r, QS_ERR_FORMAT, "dataset '%s' does not hold numbers", name);
        goto done;
    }
    if (ndim < 1 || ndim > QS_MAX_DIMS) {
        rc = bad(r, QS_ERR_FORMAT, "dataset '%s' has rank %d, expected 1..%d", name, ndim, QS_MAX_DIMS);
        goto done;
    }
    H5Sget_simple_extent_dims(space, dims, NULL);
    for (int k = 0; k < ndim; k++)
        shape[k] = (int64_t)dims[k];
    *out = qs_tensor_create(QS_F32, ndim, shape);
    if (!*out) {
        rc = qs_error_context("'%s': %s: dataset '%s': ", r->path, r->where, name);
        goto done;
    }
    if ((*out)->size > 0 && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, (*out)->data) < 0) {
        char d[200];
        rc = bad(r, QS_ERR_FORMAT, "cannot read dataset '%s' (corrupt file?): %s", name, h5_detail(d));
    }
done:
    if (rc < 0) {
        qs_tensor_free(*out);
        *out = NULL;
    }
    if (type >= 0)
        H5Tclose(type);
    if (space >= 0)
        H5Sclose(space);
    H5Dclose(ds);
    return rc;
}

/* Every attribute of a node group must be one this version knows for the op. */
typedef struct {
    const reader_t *r;
    unsigned attrs;
    int rc;
} attr_walk_t;

static herr_t check_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
    (void)loc;
    (void)info;
    attr_walk_t *w = data;
    static const struct {
        const char *name;
        unsigned bit;
    } known[] = {{"op", 0},           {"name", 0},           {"inputs", 0},          {"out_shape", 0},
                 {"kernel", A_KERNEL}, {"stride", A_STRIDE},  {"padding", A_PADDING}, {"dilation", A_DILATION},
                 {"groups", A_GROUPS}, {"eps", A_EPS},        {"clip_min", A_CLIP},   {"clip_max", A_CLIP},
                 {"shape", A_SHAPE}};
    for (size_t k = 0; k < sizeof known / sizeof *known; k++)
        if (strcmp(name, known[k].name) == 0) {
            if (known[k].bit == 0 || (w->attrs & known[k].bit))
                return 0;
            break;
        }
    w->rc = bad(w->r, QS_ERR_FORMAT, "unexpected attribute '%s' (not one of this op's attributes)", name);
    return 1;
}

/* Object type of a group member: H5I_GROUP, H5I_DATASET, or H5I_BADID. */
static H5I_type_t member_type(hid_t grp, const char *name)
{
    hid_t o = H5Oopen(grp, name, H5P_DEFAULT);
    if (o < 0)
        return H5I_BADID;
    H5I_type_t t = H5Iget_type(o);
    H5Oclose(o);
    return t;
}

/* Reads node group gname of /nodes into *n (tensors and attributes; inputs as names). */
static int read_node(reader_t *r, hid_t nodes, const char *gname, int index, qs_node_t *n, char *inputs_out,
                     size_t inputs_n, int64_t out_shape[3], int *out_ndim)
{
    snprintf(r->where, sizeof r->where, "node %d (/nodes/%s)", index, gname);
    hid_t grp = H5Gopen2(nodes, gname, H5P_DEFAULT);
    if (grp < 0) {
        char d[200];
        return bad(r, QS_ERR_FORMAT, "cannot open the group: %s", h5_detail(d));
    }
    char *s = NULL;
    int rc = get_str(r, grp, "name", &s);
    if (rc < 0)
        goto done;
    char what[64];
    snprintf(what, sizeof what, "node %d", index);
    if ((rc = qs_sim_check_name(s, what)) < 0) {
        rc = qs_error_context("'%s': /nodes/%s: ", r->path, gname);
        goto done;
    }
    *n = qs_node_init(QS_OP_RELU, s, 0, NULL);
    snprintf(r->where, sizeof r->where, "node '%s' (/nodes/%s)", n->name, gname);
    /* the group name repeats the node name after the order prefix */
    const char *us = strchr(gname, '_');
    if (!us || strcmp(us + 1, n->name) != 0) {
        rc = bad(r, QS_ERR_FORMAT, "the group is named '%s' but the node's name is '%s' (expected group '%04d_%s')",
                 gname, n->name, index, n->name);
        goto done;
    }
    free(s);
    s = NULL;
    if ((rc = get_str(r, grp, "op", &s)) < 0)
        goto done;
    if ((rc = qs_op_parse(s, &n->op)) < 0) {
        rc = qs_error_context("'%s': %s: ", r->path, r->where);
        goto done;
    }
    free(s);
    s = NULL;
    if ((rc = get_str(r, grp, "inputs", &s)) < 0)
        goto done;
    snprintf(inputs_out, inputs_n, "%s", s);
    free(s);
    s = NULL;

    unsigned attrs = op_attrs(n->op);
    attr_walk_t aw = {r, attrs, QS_OK};
    hsize_t idx = 0;
    if (H5Aiterate2(grp, H5_INDEX_NAME, H5_ITER_INC, &idx, check_attr, &aw) < 0 && aw.rc == QS_OK) {
        char d[200];
        rc = bad(r, QS_ERR_FORMAT, "cannot list the attributes: %s", h5_detail(d));
        goto done;
    }
    if ((rc = aw.rc) < 0)
        goto done;
    int v[4];
    if (attrs & A_KERNEL) {
        if ((rc = get_small_ints(r, grp, "kernel", 2, v)) < 0)
            goto done;
        n->kh = v[0];
        n->kw = v[1];
    }
    if (attrs & A_STRIDE) {
        if ((rc = get_small_ints(r, grp, "stride", 2, v)) < 0)
            goto done;
        n->stride_h = v[0];
        n->stride_w = v[1];
    }
    if (attrs & A_PADDING) {
        if ((rc = get_small_ints(r, grp, "padding", 4, v)) < 0)
            goto done;
        n->pad_top = v[0];
        n->pad_left = v[1];
        n->pad_bottom = v[2];
        n->pad_right = v[3];
    }
    if (attrs & A_DILATION) {
        if ((rc = get_small_ints(r, grp, "dilation", 2, v)) < 0)
            goto done;
        n->dil_h = v[0];
        n->dil_w = v[1];
    }
    if ((attrs & A_GROUPS) && (rc = get_small_ints(r, grp, "groups", 1, &n->groups)) < 0)
        goto done;
    if ((attrs & A_EPS) && (rc = get_floats(r, grp, "eps", 0, &n->eps)) < 0)
        goto done;
    if ((attrs & A_CLIP) &&
        ((rc = get_floats(r, grp, "clip_min", 0, &n->clip_min)) < 0 || (rc = get_floats(r, grp, "clip_max", 0, &n->clip_max)) < 0))
        goto done;
    if (attrs & A_SHAPE) {
        int cnt = 0;
        if ((rc = get_ints(r, grp, "shape", true, 1, 3, n->reshape, &cnt)) < 0)
            goto done;
        n->reshape_ndim = cnt;
    }
    *out_ndim = 0;
    if ((rc = get_ints(r, grp, "out_shape", false, 1, 3, out_shape, out_ndim)) < 0)
        goto done;

    /* members: the op's datasets, and `quant` groups a later version fills */
    H5G_info_t info;
    if (H5Gget_info(grp, &info) < 0) {
        char d[200];
        rc = bad(r, QS_ERR_FORMAT, "cannot list the group: %s", h5_detail(d));
        goto done;
    }
    for (hsize_t m = 0; m < info.nlinks; m++) {
        char name[256];
        if (H5Lget_name_by_idx(grp, ".", H5_INDEX_NAME, H5_ITER_INC, m, name, sizeof name, H5P_DEFAULT) < 0) {
            char d[200];
            rc = bad(r, QS_ERR_FORMAT, "cannot list the group: %s", h5_detail(d));
            goto done;
        }
        H5I_type_t t = member_type(grp, name);
        if (strcmp(name, "quant") == 0 && t == H5I_GROUP)
            continue;
        int k = 0;
        while (k < NTENSORS && strcmp(name, tensor_names[k]) != 0)
            k++;
        if (k == NTENSORS || t != H5I_DATASET) {
            rc = bad(r, QS_ERR_FORMAT,
                     "unexpected %s '%s' (a node holds the datasets weight, bias, gamma, beta, mean, var, mask and a "
                     "group quant)",
                     t == H5I_GROUP ? "group" : t == H5I_DATASET ? "dataset" : "object", name);
            goto done;
        }
        if ((rc = read_tensor(r, grp, name, node_tensor(n, k))) < 0)
            goto done;
    }
done:
    free(s);
    H5Gclose(grp);
    return rc;
}

/* "0012_conv3" -> 12, or -1 */
static int order_prefix(const char *gname)
{
    int i = 0;
    long v = 0;
    while (gname[i] >= '0' && gname[i] <= '9' && i < 9)
        v = v * 10 + (gname[i++] - '0');
    if (i < 4 || gname[i] != '_')
        return -1;
    return (int)v;
}

/* Resolves "a,b" against the nodes before node i. */
static int resolve_inputs(const reader_t *r, const qs_graph_t *g, const char *list, qs_node_t *n)
{
    n->ninputs = 0;
    if (!*list)
        return QS_OK;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char name[QS_NAME_MAX];
        if (len == 0 || len >= sizeof name)
            return bad(r, QS_ERR_FORMAT, "attribute 'inputs' is '%s', not a comma-separated list of node names", list);
        memcpy(name, p, len);
        name[len] = '\0';
        if (n->ninputs == QS_MAX_INPUTS)
            return bad(r, QS_ERR_FORMAT, "more than %d inputs ('%s')", QS_MAX_INPUTS, list);
        int j = qs_graph_find(g, name);
        if (j < 0)
            return bad(r, QS_ERR_FORMAT, "input '%s' is not a node before this one (inputs '%s')", name, list);
        n->inputs[n->ninputs++] = j;
        if (!comma)
            return QS_OK;
        p = comma + 1;
    }
}

/* What the file is, before anything else: a newer file must say so, not
 * fail on a detail. */
static int read_identity(reader_t *r, int64_t *version)
{
    hid_t root = r->file;
    char *s = NULL;
    snprintf(r->where, sizeof r->where, "root group");
    int rc = H5Aexists(root, "format") > 0 ? get_str(r, root, "format", &s)
                                            : qs_error(QS_ERR_FORMAT, "'%s' is not a quasar model: the root group has "
                                                                      "no attribute 'format'",
                                                       r->path);
    if (rc < 0)
        goto done;
    if (strcmp(s, QS_MODEL_FORMAT) != 0) {
        rc = qs_error(QS_ERR_FORMAT, "'%s' is not a quasar model: its format attribute is '%s', expected '%s'", r->path,
                      s, QS_MODEL_FORMAT);
        goto done;
    }
    if ((rc = get_ints(r, root, "format_version", true, 1, 0, version, NULL)) < 0)
        goto done;
    if (*version > QS_MODEL_VERSION_MAX) {
        rc = qs_error(QS_ERR_UNSUPPORTED,
                      "'%s' has model format version %lld; this quasar reads version %d and older (update quasar)",
                      r->path, (long long)*version, QS_MODEL_VERSION_MAX);
        goto done;
    }
    if (*version < 1)
        rc = bad(r, QS_ERR_FORMAT, "format_version is %lld; versions start at 1", (long long)*version);
done:
    free(s);
    return rc;
}

static int read_model(reader_t *r, qs_graph_t **out, int *version_out)
{
    hid_t root = r->file;
    snprintf(r->where, sizeof r->where, "root group");
    char *name = NULL, *output = NULL;
    qs_graph_t *g = NULL;
    qs_node_t node;
    memset(&node, 0, sizeof node);
    int64_t (*shapes)[3] = NULL;
    int *ndims = NULL;
    char **names = NULL;
    int count = 0;
    hid_t nodes = H5I_INVALID_HID;

    int64_t version, shape[3];
    int rc = read_identity(r, &version);
    if (rc < 0)
        goto done;
    if (version_out)
        *version_out = (int)version;
    if ((rc = get_str(r, root, "name", &name)) < 0 || (rc = get_ints(r, root, "input_shape", true, 3, 3, shape, NULL)) < 0)
        goto done;
    if (shape[0] < 1 || shape[0] > 8 || shape[1] < 1 || shape[2] < 1 || shape[1] > INT32_MAX || shape[2] > INT32_MAX) {
        rc = bad(r, QS_ERR_FORMAT, "input_shape is [%lld, %lld, %lld]; C must be 1..8 and H, W at least 1",
                 (long long)shape[0], (long long)shape[1], (long long)shape[2]);
        goto done;
    }
    if (strlen(name) >= QS_NAME_MAX) {
        rc = bad(r, QS_ERR_FORMAT, "the model name is longer than %d characters", QS_NAME_MAX - 1);
        goto done;
    }
    g = qs_graph_create(name, shape[0], shape[1], shape[2]);
    if (!g) {
        rc = qs_last_status();
        goto done;
    }
    int64_t num_classes, node_count;
    if ((rc = get_floats(r, root, "input_scale", 0, &g->input_scale)) < 0 ||
        (rc = get_floats(r, root, "norm_mean", (int)shape[0], g->norm_mean)) < 0 ||
        (rc = get_floats(r, root, "norm_std", (int)shape[0], g->norm_std)) < 0 ||
        (rc = get_ints(r, root, "num_classes", true, 1, 0, &num_classes, NULL)) < 0 ||
        (rc = get_ints(r, root, "node_count", true, 1, 0, &node_count, NULL)) < 0 ||
        (rc = get_str(r, root, "output", &output)) < 0)
        goto done;

    if (H5Lexists(root, "nodes", H5P_DEFAULT) <= 0 || member_type(root, "nodes") != H5I_GROUP) {
        rc = qs_error(QS_ERR_FORMAT, "'%s': the group /nodes is missing", r->path);
        goto done;
    }
    nodes = H5Gopen2(root, "nodes", H5P_DEFAULT);
    H5G_info_t info;
    if (nodes < 0 || H5Gget_info(nodes, &info) < 0) {
        char d[200];
        rc = qs_error(QS_ERR_FORMAT, "'%s': cannot read the group /nodes: %s", r->path, h5_detail(d));
        goto done;
    }
    if (info.nlinks > 100000 || (int64_t)info.nlinks != node_count) {
        rc = qs_error(QS_ERR_FORMAT, "'%s': /nodes holds %llu groups but node_count is %lld", r->path,
                      (unsigned long long)info.nlinks, (long long)node_count);
        goto done;
    }
    count = (int)info.nlinks;
    if (count < 1) {
        rc = qs_error(QS_ERR_FORMAT, "'%s': /nodes is empty (node 0, the input, is missing)", r->path);
        goto done;
    }
    names = calloc((size_t)count, sizeof *names);
    shapes = calloc((size_t)count, sizeof *shapes);
    ndims = calloc((size_t)count, sizeof *ndims);
    if (!names || !shapes || !ndims) {
        rc = qs_error(QS_ERR_NOMEM, "out of memory reading '%s'", r->path);
        goto done;
    }
    /* order comes from the prefixes, not from HDF5's name order (which puts
     * 10000_x before 9999_y) */
    for (int m = 0; m < count; m++) {
        char gname[QS_NAME_MAX + 32];
        ssize_t len = H5Lget_name_by_idx(nodes, ".", H5_INDEX_NAME, H5_ITER_INC, (hsize_t)m, gname, sizeof gname,
                                         H5P_DEFAULT);
        if (len < 0 || (size_t)len >= sizeof gname) {
            rc = qs_error(QS_ERR_FORMAT, "'%s': /nodes has a member with an unreadable or too long name", r->path);
            goto done;
        }
        int k = order_prefix(gname);
        if (k < 0 || k >= count || member_type(nodes, gname) != H5I_GROUP) {
            rc = qs_error(QS_ERR_FORMAT,
                          "'%s': /nodes/%s is not a node group (expected groups NNNN_NAME numbered 0000 to %04d)",
                          r->path, gname, count - 1);
            goto done;
        }
        if (names[k]) {
            rc = qs_error(QS_ERR_FORMAT, "'%s': /nodes/%s and /nodes/%s have the same order number %d", r->path,
                          names[k], gname, k);
            goto done;
        }
        if (!(names[k] = strdup(gname))) {
            rc = qs_error(QS_ERR_NOMEM, "out of memory reading '%s'", r->path);
            goto done;
        }
    }
    for (int i = 0; i < count; i++) {
        char inputs[QS_MAX_INPUTS * (QS_NAME_MAX + 1) + 64];
        memset(&node, 0, sizeof node);
        if ((rc = read_node(r, nodes, names[i], i, &node, inputs, sizeof inputs, shapes[i], &ndims[i])) < 0)
            goto done;
        if (i == 0) {
            if (node.op != QS_OP_INPUT) {
                rc = bad(r, QS_ERR_FORMAT, "node 0 is a %s; node 0 must be the input", qs_op_name(node.op));
                goto done;
            }
            if (*inputs) {
                rc = bad(r, QS_ERR_FORMAT, "the input node has inputs ('%s')", inputs);
                goto done;
            }
            for (int k = 0; k < NTENSORS; k++)
                if (*node_tensor(&node, k)) {
                    rc = bad(r, QS_ERR_FORMAT, "the input node holds a dataset '%s'; it takes none", tensor_names[k]);
                    goto done;
                }
            snprintf(g->nodes[0].name, sizeof g->nodes[0].name, "%s", node.name);
            continue;
        }
        if (node.op == QS_OP_INPUT) {
            rc = bad(r, QS_ERR_FORMAT, "only node 0 is an input");
            goto done;
        }
        if ((rc = resolve_inputs(r, g, inputs, &node)) < 0)
            goto done;
        rc = qs_graph_add(g, &node);
        memset(&node, 0, sizeof node); /* taken over, even on failure */
        if (rc < 0) {
            rc = qs_error_context("'%s': ", r->path);
            goto done;
        }
    }
    snprintf(r->where, sizeof r->where, "root group");
    g->output = qs_graph_find(g, output);
    if (g->output < 0) {
        rc = bad(r, QS_ERR_FORMAT, "the output is '%s', which is not a node", output);
        goto done;
    }
    if ((rc = qs_graph_infer(g)) < 0) {
        rc = qs_error_context("'%s': ", r->path);
        goto done;
    }
    for (int i = 0; i < count; i++) {
        const qs_node_t *n = &g->nodes[i];
        bool same = ndims[i] == 0 || ndims[i] == n->out_ndim;
        for (int k = 0; same && k < ndims[i]; k++)
            same = shapes[i][k] == n->out_shape[k];
        if (!same) {
            char a[96], b[96];
            rc = qs_error(QS_ERR_FORMAT, "'%s': node '%s' (%s): out_shape says %s but the graph gives %s", r->path,
                          n->name, qs_op_name(n->op), qs_shape_str(ndims[i], shapes[i], a, sizeof a),
                          qs_shape_str(n->out_ndim, n->out_shape, b, sizeof b));
            goto done;
        }
    }
    if (num_classes != g->num_classes) {
        rc = bad(r, QS_ERR_FORMAT, "num_classes is %lld but the output '%s' has %d features", (long long)num_classes,
                 output, g->num_classes);
        goto done;
    }
    *out = g;
    g = NULL;
done:
    qs_sim_node_free_tensors(&node);
    if (names)
        for (int i = 0; i < count; i++)
            free(names[i]);
    free(names);
    free(shapes);
    free(ndims);
    if (nodes >= 0)
        H5Gclose(nodes);
    free(name);
    free(output);
    qs_graph_free(g);
    return rc;
}

/* Opens path read-only with the messages every model reader gives: the
 * system's reason for a file that cannot be opened, HDF5's for one that is
 * not HDF5. */
static int open_model(const char *path, hid_t *file)
{
    h5_quiet();
    *file = H5I_INVALID_HID;
    /* the system says best why a file cannot be opened */
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return qs_error(QS_ERR_IO, "cannot open model '%s': %s", path, strerror(errno));
    struct stat st;
    bool dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    close(fd);
    if (dir)
        return qs_error(QS_ERR_IO, "cannot open model '%s': %s", path, strerror(EISDIR));
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0)
        H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    *file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    char d[200];
    h5_detail(d); /* before any other HDF5 call clears the stack */
    if (fapl >= 0)
        H5Pclose(fapl);
    if (*file < 0)
        return qs_error(QS_ERR_FORMAT, "'%s' is not a readable HDF5 file, or it is truncated or corrupt (%s)", path, d);
    return QS_OK;
}

int qs_model_load(const char *path, qs_graph_t **out)
{
    if (out)
        *out = NULL;
    if (!path || !*path || !out)
        return qs_error(QS_ERR_INVALID, "qs_model_load: no file name or no output");
    return qs_sim_model_read(path, out, NULL, NULL, NULL);
}

int qs_sim_model_read(const char *path, qs_graph_t **out, int *version, qs_sim_model_extra_fn extra, void *ctx)
{
    *out = NULL;
    reader_t r = {H5I_INVALID_HID, path, ""};
    int rc = open_model(path, &r.file);
    if (rc < 0)
        return rc;
    if ((rc = read_model(&r, out, version)) == QS_OK && extra && (rc = extra(ctx, r.file, path, *out)) < 0) {
        qs_graph_free(*out);
        *out = NULL;
    }
    H5Fclose(r.file);
    return rc;
}

int qs_sim_model_probe(const char *path, int *version, bool *quant)
{
    reader_t r = {H5I_INVALID_HID, path, ""};
    int rc = open_model(path, &r.file);
    if (rc < 0)
        return rc;
    int64_t v = 0;
    if ((rc = read_identity(&r, &v)) == QS_OK) {
        *version = (int)v;
        *quant = H5Lexists(r.file, "quant", H5P_DEFAULT) > 0 && member_type(r.file, "quant") == H5I_GROUP;
    }
    H5Fclose(r.file);
    return rc;
}
