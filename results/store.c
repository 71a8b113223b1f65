/* results/store.c — results.h5, the store other tools read (h5py, h5dump,
 * MATLAB): the runs and layers tables as one 1-D dataset per column, and the
 * provenance as attributes (layout in docs/results.md). It is rebuilt from
 * the journal whenever a sweep adds runs, so it is written aside (PATH.part)
 * and renamed over PATH: a crash or a full disk leaves the previous store
 * whole. Also qs_res_open, which reads whichever form of results it is given.
 *
 * The HDF5 C API is used directly rather than core's helpers because the
 * store needs string datasets, groups of attributes and zero-length
 * datasets, which core's tensor-shaped helpers do not offer. */
#define _POSIX_C_SOURCE 200809L
#include "results/results.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FORMAT_NAME "quasar-results"

/* HDF5's error printing is per thread in a threadsafe build: every entry
 * point turns it off on the calling thread. */
static void quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static herr_t walk_first(unsigned n, const H5E_error2_t *e, void *data)
{
    char *d = data;
    if (n == 0 && e->desc && *e->desc)
        snprintf(d, 200, "%s", e->desc);
    return 0;
}

/* The innermost message on HDF5's error stack, on one line; call right after
 * the failing call (the next HDF5 call clears the stack). */
static const char *detail(char *d)
{
    d[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_first, d);
    if (!d[0])
        snprintf(d, 200, "HDF5 error");
    for (char *p = d; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    return d;
}

static hid_t vlen_str_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0)
        return t;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

/* ---- writing ----------------------------------------------------------------------------------- */

static int set_str_attr(hid_t obj, const char *name, const char *value, const char *path)
{
    char d[200];
    hid_t t = vlen_str_type(), s = H5Screate(H5S_SCALAR), a = H5I_INVALID_HID;
    int rc = QS_OK;
    if (t < 0 || s < 0 || (a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(a, t, &value) < 0)
        rc = qs_error(QS_ERR_IO, "%s: cannot write attribute '%s': %s", path, name, detail(d));
    if (a >= 0)
        H5Aclose(a);
    if (s >= 0)
        H5Sclose(s);
    if (t >= 0)
        H5Tclose(t);
    return rc;
}

static int set_int_attr(hid_t obj, const char *name, int64_t value, const char *path)
{
    char d[200];
    hid_t s = H5Screate(H5S_SCALAR), a = H5I_INVALID_HID;
    int rc = QS_OK;
    if (s < 0 || (a = H5Acreate2(obj, name, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(a, H5T_NATIVE_INT64, &value) < 0)
        rc = qs_error(QS_ERR_IO, "%s: cannot write attribute '%s': %s", path, name, detail(d));
    if (a >= 0)
        H5Aclose(a);
    if (s >= 0)
        H5Sclose(s);
    return rc;
}

/* A column is stored as float64 when it holds numbers; a column with no
 * cell at all is stored as text, so that it reads back as missing cells
 * rather than as NaNs. */
static bool store_numeric(const qs_res_table_t *t, int c)
{
    if (!qs_res_table_numeric(t, c))
        return false;
    for (int r = 0; r < t->nrows; r++)
        if (qs_res_table_get(t, r, c))
            return true;
    return false;
}

/* One group: a dataset per column plus the "columns" and "rows" attributes. */
static int write_table(hid_t file, const char *group, const qs_res_table_t *t, const char *path)
{
    char d[200];
    static const qs_res_table_t empty = {0};
    if (!t)
        t = &empty;
    for (int c = 0; c < t->ncols; c++) {
        const char *n = t->col[c];
        if (strchr(n, '/') || strchr(n, ',') || strcmp(n, ".") == 0)
            return qs_error(QS_ERR_INVALID, "%s: column '%s' of /%s: a column name cannot hold '/' or ',' or be '.'",
                            path, n, group);
    }
    hid_t g = H5Gcreate2(file, group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return qs_error(QS_ERR_IO, "%s: cannot create group /%s: %s", path, group, detail(d));
    int rc = QS_OK;
    hsize_t dims[1] = {(hsize_t)t->nrows};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t st = vlen_str_type();
    size_t nrows = (size_t)t->nrows;
    double *num = malloc((nrows ? nrows : 1) * sizeof *num);
    const char **str = malloc((nrows ? nrows : 1) * sizeof *str);
    size_t joined_len = 1;
    for (int c = 0; c < t->ncols; c++)
        joined_len += strlen(t->col[c]) + 1;
    char *joined = malloc(joined_len);
    if (space < 0 || st < 0)
        rc = qs_error(QS_ERR_IO, "%s: /%s: %s", path, group, detail(d));
    else if (!num || !str || !joined)
        rc = qs_error(QS_ERR_NOMEM, "out of memory");
    for (int c = 0; rc == QS_OK && c < t->ncols; c++) {
        bool isnum = store_numeric(t, c);
        hid_t type = isnum ? H5T_IEEE_F64LE : st;
        hid_t ds = H5Dcreate2(g, t->col[c], type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (ds < 0) {
            rc = qs_error(QS_ERR_IO, "%s: cannot create dataset /%s/%s: %s", path, group, t->col[c], detail(d));
            break;
        }
        for (size_t r = 0; r < nrows; r++) {
            const char *s = qs_res_table_get(t, (int)r, c);
            if (isnum)
                num[r] = s ? strtod(s, NULL) : NAN;
            else
                str[r] = s ? s : "";
        }
        herr_t w = 0;
        if (nrows > 0)
            w = isnum ? H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, num)
                      : H5Dwrite(ds, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, str);
        if (w < 0)
            rc = qs_error(QS_ERR_IO, "%s: cannot write dataset /%s/%s: %s", path, group, t->col[c], detail(d));
        if (H5Dclose(ds) < 0 && rc == QS_OK)
            rc = qs_error(QS_ERR_IO, "%s: cannot write dataset /%s/%s: %s", path, group, t->col[c], detail(d));
    }
    if (rc == QS_OK) {
        joined[0] = '\0';
        for (int c = 0; c < t->ncols; c++) {
            if (c)
                strcat(joined, ",");
            strcat(joined, t->col[c]);
        }
        rc = set_str_attr(g, "columns", joined, path);
    }
    if (rc == QS_OK)
        rc = set_int_attr(g, "rows", t->nrows, path);
    free(num);
    free(str);
    free(joined);
    if (st >= 0)
        H5Tclose(st);
    if (space >= 0)
        H5Sclose(space);
    if (H5Gclose(g) < 0 && rc == QS_OK)
        rc = qs_error(QS_ERR_IO, "%s: /%s: %s", path, group, detail(d));
    return rc;
}

static int write_prov(hid_t file, const qs_res_record_t *prov, const char *path)
{
    char d[200];
    /* attributes come back in the order they were written only if HDF5
     * tracks their creation order */
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    if (gcpl < 0 || H5Pset_attr_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0) {
        if (gcpl >= 0)
            H5Pclose(gcpl);
        return qs_error(QS_ERR_IO, "%s: /provenance: %s", path, detail(d));
    }
    hid_t g = H5Gcreate2(file, "provenance", H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    if (g < 0)
        return qs_error(QS_ERR_IO, "%s: cannot create group /provenance: %s", path, detail(d));
    int rc = QS_OK;
    for (int i = 0; rc == QS_OK && prov && i < prov->n; i++)
        rc = set_str_attr(g, prov->key[i], prov->val[i], path);
    if (H5Gclose(g) < 0 && rc == QS_OK)
        rc = qs_error(QS_ERR_IO, "%s: /provenance: %s", path, detail(d));
    return rc;
}

/* The rename is only as durable as the data behind it. */
static int sync_file(const char *p)
{
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

int qs_res_store_write(const char *path, const qs_res_table_t *runs, const qs_res_table_t *layers,
                       const qs_res_record_t *prov)
{
    quiet();
    if (!path || !*path)
        return qs_error(QS_ERR_INVALID, "results store: no path given");
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return qs_error(QS_ERR_IO, "%s: exists and is not a regular file", path);
    size_t n = strlen(path);
    char *part = malloc(n + 6);
    if (!part)
        return qs_error(QS_ERR_NOMEM, "out of memory");
    memcpy(part, path, n);
    memcpy(part + n, ".part", 6);
    unlink(part); /* what a killed rebuild left behind */
    char d[200];
    int rc = QS_OK;
    hid_t f = H5Fcreate(part, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        rc = qs_error(QS_ERR_IO, "%s: cannot create: %s", part, detail(d));
        free(part);
        return rc;
    }
    rc = set_str_attr(f, "format", FORMAT_NAME, path);
    if (rc == QS_OK)
        rc = set_int_attr(f, "version", QS_RES_VERSION, path);
    if (rc == QS_OK)
        rc = write_table(f, "runs", runs, path);
    if (rc == QS_OK)
        rc = write_table(f, "layers", layers, path);
    if (rc == QS_OK)
        rc = write_prov(f, prov, path);
    /* HDF5 may only find out that the disk is full when it flushes */
    if (H5Fclose(f) < 0 && rc == QS_OK)
        rc = qs_error(QS_ERR_IO, "%s: cannot write: %s", path, detail(d));
    if (rc == QS_OK && sync_file(part) != 0)
        rc = qs_error(QS_ERR_IO, "%s: cannot flush to disk: %s", part, strerror(errno));
    if (rc == QS_OK && rename(part, path) != 0)
        rc = qs_error(QS_ERR_IO, "%s: cannot rename %s over it: %s", path, part, strerror(errno));
    if (rc < 0)
        unlink(part);
    free(part);
    return rc;
}

/* ---- reading ----------------------------------------------------------------------------------- */

/* A string attribute (variable-length or fixed, as other writers may use)
 * into a malloc'ed string; NULL with the message set. */
static char *get_str_attr(hid_t obj, const char *objname, const char *name, const char *path)
{
    char d[200];
    if (H5Aexists(obj, name) <= 0) {
        qs_error(QS_ERR_FORMAT, "%s: %s has no '%s' attribute", path, objname, name);
        return NULL;
    }
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t ft = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
    hid_t sp = a >= 0 ? H5Aget_space(a) : H5I_INVALID_HID;
    char *out = NULL;
    if (a < 0 || ft < 0 || sp < 0) {
        qs_error(QS_ERR_FORMAT, "%s: cannot read attribute '%s' of %s: %s", path, name, objname, detail(d));
    } else if (H5Tget_class(ft) != H5T_STRING || H5Sget_simple_extent_npoints(sp) != 1) {
        qs_error(QS_ERR_FORMAT, "%s: attribute '%s' of %s is not a string", path, name, objname);
    } else if (H5Tis_variable_str(ft) > 0) {
        hid_t mt = vlen_str_type();
        char *s = NULL;
        if (mt < 0 || H5Aread(a, mt, &s) < 0)
            qs_error(QS_ERR_FORMAT, "%s: cannot read attribute '%s' of %s: %s", path, name, objname, detail(d));
        else if (!(out = strdup(s ? s : "")))
            qs_error(QS_ERR_NOMEM, "out of memory");
        if (s)
            H5free_memory(s);
        if (mt >= 0)
            H5Tclose(mt);
    } else {
        size_t size = H5Tget_size(ft);
        hid_t mt = H5Tcopy(ft);
        out = calloc(1, size + 1);
        if (!out)
            qs_error(QS_ERR_NOMEM, "out of memory");
        else if (mt < 0 || H5Aread(a, mt, out) < 0) {
            qs_error(QS_ERR_FORMAT, "%s: cannot read attribute '%s' of %s: %s", path, name, objname, detail(d));
            free(out);
            out = NULL;
        } else {
            size_t len = strlen(out);
            while (len > 0 && out[len - 1] == ' ')
                out[--len] = '\0';
        }
        if (mt >= 0)
            H5Tclose(mt);
    }
    if (sp >= 0)
        H5Sclose(sp);
    if (ft >= 0)
        H5Tclose(ft);
    if (a >= 0)
        H5Aclose(a);
    return out;
}

static int get_int_attr(hid_t obj, const char *objname, const char *name, const char *path, int64_t *v)
{
    char d[200];
    if (H5Aexists(obj, name) <= 0)
        return qs_error(QS_ERR_FORMAT, "%s: %s has no '%s' attribute", path, objname, name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t ft = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
    hid_t sp = a >= 0 ? H5Aget_space(a) : H5I_INVALID_HID;
    int rc = QS_OK;
    if (a < 0 || ft < 0 || sp < 0)
        rc = qs_error(QS_ERR_FORMAT, "%s: cannot read attribute '%s' of %s: %s", path, name, objname, detail(d));
    else if (H5Tget_class(ft) != H5T_INTEGER || H5Sget_simple_extent_npoints(sp) != 1)
        rc = qs_error(QS_ERR_FORMAT, "%s: attribute '%s' of %s is not an integer", path, name, objname);
    else if (H5Aread(a, H5T_NATIVE_INT64, v) < 0)
        rc = qs_error(QS_ERR_FORMAT, "%s: cannot read attribute '%s' of %s: %s", path, name, objname, detail(d));
    if (sp >= 0)
        H5Sclose(sp);
    if (ft >= 0)
        H5Tclose(ft);
    if (a >= 0)
        H5Aclose(a);
    return rc;
}

/* The shortest text that reads back as v (0.1, not 0.10000000000000001):
 * exact, and what people expect to see of a number they stored. */
static void fmt_num(char *buf, size_t n, double v)
{
    if (isnan(v)) {
        snprintf(buf, n, "nan");
    } else if (isinf(v)) {
        snprintf(buf, n, "%s", v > 0 ? "inf" : "-inf");
    } else {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, n, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
}

/* One column's dataset into column c of t (rows already added). */
static int read_column(hid_t g, const char *group, const char *name, int64_t rows, qs_res_table_t *t,
                       const char *path)
{
    char d[200];
    if (H5Lexists(g, name, H5P_DEFAULT) <= 0)
        return qs_error(QS_ERR_FORMAT, "%s: /%s lists column '%s' but has no such dataset", path, group, name);
    hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
    if (ds < 0)
        return qs_error(QS_ERR_FORMAT, "%s: cannot open dataset /%s/%s: %s", path, group, name, detail(d));
    hid_t sp = H5Dget_space(ds), ft = H5Dget_type(ds);
    int rc = QS_OK;
    hsize_t dims[1] = {0};
    if (sp < 0 || ft < 0) {
        rc = qs_error(QS_ERR_FORMAT, "%s: dataset /%s/%s: %s", path, group, name, detail(d));
        goto done;
    }
    if (H5Sget_simple_extent_ndims(sp) != 1 || H5Sget_simple_extent_dims(sp, dims, NULL) < 0 ||
        (int64_t)dims[0] != rows) {
        rc = qs_error(QS_ERR_FORMAT, "%s: dataset /%s/%s: expected 1-D with %lld rows (the group's 'rows')", path,
                      group, name, (long long)rows);
        goto done;
    }
    size_t n = (size_t)rows;
    H5T_class_t cls = H5Tget_class(ft);
    if (cls == H5T_FLOAT || cls == H5T_INTEGER) {
        double *v = malloc((n ? n : 1) * sizeof *v);
        if (!v) {
            rc = qs_error(QS_ERR_NOMEM, "out of memory");
            goto done;
        }
        if (n > 0 && H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
            rc = qs_error(QS_ERR_FORMAT, "%s: cannot read dataset /%s/%s: %s", path, group, name, detail(d));
        for (size_t r = 0; rc == QS_OK && r < n; r++) {
            char buf[40];
            fmt_num(buf, sizeof buf, v[r]);
            rc = qs_res_table_set(t, (int)r, name, buf);
        }
        free(v);
    } else if (cls == H5T_STRING && H5Tis_variable_str(ft) > 0) {
        hid_t mt = vlen_str_type();
        char **v = calloc(n ? n : 1, sizeof *v);
        if (!v || mt < 0) {
            rc = qs_error(QS_ERR_NOMEM, "out of memory");
        } else if (n > 0 && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
            rc = qs_error(QS_ERR_FORMAT, "%s: cannot read dataset /%s/%s: %s", path, group, name, detail(d));
        } else {
            for (size_t r = 0; rc == QS_OK && r < n; r++)
                if (v[r] && *v[r])
                    rc = qs_res_table_set(t, (int)r, name, v[r]);
#if H5_VERSION_GE(1, 12, 0)
            H5Treclaim(mt, sp, H5P_DEFAULT, v);
#else
            H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, v);
#endif
        }
        free(v);
        if (mt >= 0)
            H5Tclose(mt);
    } else if (cls == H5T_STRING) {
        size_t size = H5Tget_size(ft);
        hid_t mt = H5Tcopy(ft);
        char *v = malloc((n ? n : 1) * size + 1), *cellbuf = malloc(size + 1);
        if (!v || !cellbuf || mt < 0) {
            rc = qs_error(QS_ERR_NOMEM, "out of memory");
        } else if (n > 0 && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
            rc = qs_error(QS_ERR_FORMAT, "%s: cannot read dataset /%s/%s: %s", path, group, name, detail(d));
        } else {
            for (size_t r = 0; rc == QS_OK && r < n; r++) {
                memcpy(cellbuf, v + r * size, size);
                cellbuf[size] = '\0';
                size_t len = strlen(cellbuf);
                while (len > 0 && cellbuf[len - 1] == ' ')
                    cellbuf[--len] = '\0';
                if (len > 0)
                    rc = qs_res_table_set(t, (int)r, name, cellbuf);
            }
        }
        free(v);
        free(cellbuf);
        if (mt >= 0)
            H5Tclose(mt);
    } else {
        rc = qs_error(QS_ERR_FORMAT, "%s: dataset /%s/%s holds neither numbers nor strings", path, group, name);
    }
done:
    if (ft >= 0)
        H5Tclose(ft);
    if (sp >= 0)
        H5Sclose(sp);
    H5Dclose(ds);
    return rc;
}

static int read_table(hid_t file, const char *group, const char *path, qs_res_table_t **out)
{
    char d[200], objname[64];
    snprintf(objname, sizeof objname, "/%s", group);
    *out = NULL;
    if (H5Lexists(file, group, H5P_DEFAULT) <= 0)
        return qs_error(QS_ERR_FORMAT, "%s: no /%s group", path, group);
    hid_t g = H5Gopen2(file, group, H5P_DEFAULT);
    if (g < 0)
        return qs_error(QS_ERR_FORMAT, "%s: cannot open /%s: %s", path, group, detail(d));
    int64_t rows = 0;
    int rc = get_int_attr(g, objname, "rows", path, &rows);
    char *cols = rc == QS_OK ? get_str_attr(g, objname, "columns", path) : NULL;
    if (rc == QS_OK && !cols)
        rc = qs_last_status();
    if (rc == QS_OK && (rows < 0 || rows > INT32_MAX / 2))
        rc = qs_error(QS_ERR_FORMAT, "%s: /%s: bad 'rows' attribute %lld", path, group, (long long)rows);
    qs_res_table_t *t = rc == QS_OK ? qs_res_table_create() : NULL;
    if (rc == QS_OK && !t)
        rc = QS_ERR_NOMEM;
    /* every column first, so that a table without rows keeps its columns */
    char *save = NULL;
    for (char *c = rc == QS_OK ? strtok_r(cols, ",", &save) : NULL; c && rc == QS_OK; c = strtok_r(NULL, ",", &save))
        if ((rc = qs_res_table_add_col(t, c)) > 0)
            rc = QS_OK;
    for (int64_t r = 0; rc == QS_OK && r < rows; r++)
        if ((rc = qs_res_table_add_row(t)) > 0)
            rc = QS_OK;
    for (int c = 0; rc == QS_OK && c < t->ncols; c++)
        rc = read_column(g, group, t->col[c], rows, t, path);
    free(cols);
    H5Gclose(g);
    if (rc < 0) {
        qs_res_table_free(t);
        return rc;
    }
    *out = t;
    return QS_OK;
}

typedef struct {
    qs_res_record_t *prov;
    const char *path;
    int rc;
} prov_ctx_t;

static herr_t prov_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
    (void)info;
    prov_ctx_t *c = data;
    char *v = get_str_attr(loc, "/provenance", name, c->path);
    if (!v) {
        c->rc = qs_last_status();
        return -1;
    }
    c->rc = qs_res_record_set(c->prov, name, v);
    free(v);
    return c->rc < 0 ? -1 : 0;
}

static int read_prov(hid_t file, const char *path, qs_res_record_t *prov)
{
    char d[200];
    if (H5Lexists(file, "provenance", H5P_DEFAULT) <= 0)
        return qs_error(QS_ERR_FORMAT, "%s: no /provenance group", path);
    hid_t g = H5Gopen2(file, "provenance", H5P_DEFAULT);
    if (g < 0)
        return qs_error(QS_ERR_FORMAT, "%s: cannot open /provenance: %s", path, detail(d));
    /* creation order when the writer tracked it (ours does), else by name */
    hid_t gcpl = H5Gget_create_plist(g);
    unsigned flags = 0;
    if (gcpl >= 0) {
        H5Pget_attr_creation_order(gcpl, &flags);
        H5Pclose(gcpl);
    }
    H5_index_t idx = (flags & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
    prov_ctx_t c = {prov, path, QS_OK};
    hsize_t at = 0;
    herr_t e = H5Aiterate2(g, idx, H5_ITER_INC, &at, prov_attr, &c);
    int rc = c.rc;
    if (e < 0 && rc == QS_OK)
        rc = qs_error(QS_ERR_FORMAT, "%s: cannot list /provenance: %s", path, detail(d));
    H5Gclose(g);
    return rc;
}

int qs_res_store_read(const char *path, qs_res_table_t **runs, qs_res_table_t **layers, qs_res_record_t *prov)
{
    quiet();
    if (!runs)
        return qs_error(QS_ERR_INVALID, "results store: no output given");
    *runs = NULL;
    if (layers)
        *layers = NULL;
    if (!path)
        return qs_error(QS_ERR_INVALID, "results store: no path given");
    struct stat st;
    if (stat(path, &st) != 0)
        return qs_error(QS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return qs_error(QS_ERR_IO, "%s: not a regular file", path);
    char d[200];
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0)
        return qs_error(QS_ERR_FORMAT, "%s: not an HDF5 file (or a truncated one)", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return qs_error(QS_ERR_FORMAT, "%s: cannot open as HDF5 (a truncated or damaged file?): %s", path, detail(d));
    int rc = QS_OK;
    qs_res_table_t *rt = NULL, *lt = NULL;
    if (H5Aexists(f, "format") <= 0)
        rc = qs_error(QS_ERR_FORMAT, "%s: not a quasar results file (no 'format' attribute)", path);
    if (rc == QS_OK) {
        char *fmt = get_str_attr(f, "the root", "format", path);
        if (!fmt)
            rc = qs_last_status();
        else if (strcmp(fmt, FORMAT_NAME) != 0)
            rc = qs_error(QS_ERR_FORMAT, "%s: not a quasar results file (format '%s', expected '%s')", path, fmt,
                          FORMAT_NAME);
        free(fmt);
    }
    int64_t version = 0;
    if (rc == QS_OK)
        rc = get_int_attr(f, "the root", "version", path, &version);
    if (rc == QS_OK && (version < 1 || version > QS_RES_VERSION))
        rc = qs_error(QS_ERR_UNSUPPORTED, "%s: results format version %lld; this quasar reads version %d", path,
                      (long long)version, QS_RES_VERSION);
    if (rc == QS_OK)
        rc = read_table(f, "runs", path, &rt);
    if (rc == QS_OK && layers)
        rc = read_table(f, "layers", path, &lt);
    if (rc == QS_OK && prov) {
        qs_res_record_clear(prov);
        rc = read_prov(f, path, prov);
    }
    if (H5Fclose(f) < 0 && rc == QS_OK)
        rc = qs_error(QS_ERR_FORMAT, "%s: %s", path, detail(d));
    if (rc < 0) {
        qs_res_table_free(rt);
        qs_res_table_free(lt);
        if (prov)
            qs_res_record_clear(prov);
        return rc;
    }
    *runs = rt;
    if (layers)
        *layers = lt;
    return QS_OK;
}

/* ---- any form of results ----------------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* What the first bytes say: 1 results.h5, 2 journal, 0 neither. */
static int sniff(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    unsigned char b[32] = {0};
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    static const unsigned char h5sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    if (n >= 8 && memcmp(b, h5sig, 8) == 0)
        return 1;
    if (n >= 16 && memcmp(b, "# quasar journal", 16) == 0)
        return 2;
    return 0;
}

/* Opening a CSV or a journal leaves no provenance and, for a CSV, no layers:
 * the outputs are still valid (empty) so callers need no special case. */
static int open_file(const char *path, int kind, qs_res_table_t **runs, qs_res_table_t **layers,
                     qs_res_record_t *prov)
{
    int rc;
    if (kind == 1)
        return qs_res_store_read(path, runs, layers, prov);
    if (prov)
        qs_res_record_clear(prov);
    if (kind == 2)
        return qs_res_journal_read(path, runs, layers);
    rc = qs_res_csv_read(path, runs);
    if (rc < 0 || !layers)
        return rc;
    if (!(*layers = qs_res_table_create())) {
        qs_res_table_free(*runs);
        *runs = NULL;
        return QS_ERR_NOMEM;
    }
    return QS_OK;
}

int qs_res_open(const char *path, qs_res_table_t **runs, qs_res_table_t **layers, qs_res_record_t *prov)
{
    if (!runs)
        return qs_error(QS_ERR_INVALID, "results: no output given");
    *runs = NULL;
    if (layers)
        *layers = NULL;
    if (!path || !*path)
        return qs_error(QS_ERR_INVALID, "results: no path given");
    struct stat st;
    if (stat(path, &st) != 0)
        return qs_error(QS_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        size_t n = strlen(path) + 32;
        char *p = malloc(n);
        if (!p)
            return qs_error(QS_ERR_NOMEM, "out of memory");
        int rc;
        snprintf(p, n, "%s/results.h5", path);
        if (is_file(p)) {
            rc = open_file(p, 1, runs, layers, prov);
        } else {
            snprintf(p, n, "%s/journal.tsv", path);
            if (is_file(p))
                rc = open_file(p, 2, runs, layers, prov);
            else
                rc = qs_error(QS_ERR_IO, "%s: no results.h5 or journal.tsv in this folder", path);
        }
        free(p);
        return rc;
    }
    if (ends_with(path, ".h5") || ends_with(path, ".hdf5"))
        return open_file(path, 1, runs, layers, prov);
    if (ends_with(path, ".tsv"))
        return open_file(path, 2, runs, layers, prov);
    if (ends_with(path, ".csv"))
        return open_file(path, 3, runs, layers, prov);
    int kind = sniff(path);
    if (kind == 0)
        return qs_error(QS_ERR_FORMAT,
                        "%s: not a results file (expected a results.h5, a journal.tsv, a .csv or an output folder)",
                        path);
    return open_file(path, kind, runs, layers, prov);
}
