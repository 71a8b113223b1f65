/* sim/dataset.c — datasets: Fashion-MNIST from the gzip IDX files of Debian's
 * dataset-fashion-mnist, HDF5 datasets (/images, /labels), seeded subsets,
 * and the normalized float32 batches the engines eat.
 *
 * docs/datasets.md is the user-facing description of every rule here: the
 * IDX checks, the HDF5 layout, the normalization formula and the exact
 * shuffle of a subset. Golden vectors and the engines depend on the last two,
 * so they are part of the contract, not implementation details. */
#include "sim/sim_internal.h"

#include <errno.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define FMNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define FMNIST_ENV "QUASAR_FASHION_MNIST"
#define FMNIST_HOWTO                                                                                        \
    "install Fashion-MNIST with: apt-get install dataset-fashion-mnist, or set " FMNIST_ENV                \
    " to a folder holding the IDX files"
#define FMNIST_SIDE 28
#define FMNIST_CLASSES 10
#define IDX_MAGIC_U8_3D 0x00000803u /* IDX: type 0x08 (unsigned byte), 3 dimensions */
#define IDX_MAGIC_U8_1D 0x00000801u /* IDX: type 0x08 (unsigned byte), 1 dimension */

/* deflate cannot expand data by more than 1032:1 (zlib's "technical
 * details"), so a header that declares more than this many bytes per
 * compressed byte cannot be honest; such files are counted, not allocated. */
#define DEFLATE_MAX_RATIO 1032

/* The Philox stream of subset shuffles ("subset" in ASCII); documented in
 * docs/datasets.md, and part of what makes a subset the same everywhere. */
#define QS_SUBSET_STREAM UINT64_C(0x737562736574)

#define H5_LAYOUT "an HDF5 dataset holds /images (N x C x H x W or N x H x W, uint8 or float32) and /labels (N integers)"

/* ---- allocation ------------------------------------------------------------------ */

static qs_dataset_t *dataset_new(int64_t n, int64_t c, int64_t h, int64_t w, bool real, const char *source)
{
    int64_t per = c * h * w; /* callers bound every dimension, so this cannot overflow */
    if (n > 0 && per > (int64_t)(SIZE_MAX / 8) / n) {
        qs_error(QS_ERR_NOMEM, "%s: %lld images of %lld x %lld x %lld are too large to hold in memory", source,
                 (long long)n, (long long)c, (long long)h, (long long)w);
        return NULL;
    }
    qs_dataset_t *d = calloc(1, sizeof *d);
    if (!d) {
        qs_error(QS_ERR_NOMEM, "%s: out of memory", source);
        return NULL;
    }
    d->n = n;
    d->c = c;
    d->h = h;
    d->w = w;
    snprintf(d->source, sizeof d->source, "%s", source);
    size_t elems = (size_t)(n * per);
    d->labels = qs_alloc((size_t)n * sizeof *d->labels);
    if (real)
        d->f32 = qs_alloc(elems * sizeof(float));
    else
        d->u8 = qs_alloc(elems);
    if (!d->labels || (real ? !d->f32 : !d->u8)) {
        qs_dataset_free(d);
        qs_error_context("%s: ", source);
        return NULL;
    }
    return d;
}

void qs_dataset_free(qs_dataset_t *d)
{
    if (!d)
        return;
    qs_free(d->u8);
    qs_free(d->f32);
    qs_free(d->labels);
    free(d);
}

/* ---- Fashion-MNIST: gzip IDX files -------------------------------------------------- */

typedef struct {
    gzFile gz;
    char path[PATH_MAX + 64];
    int64_t csize; /* compressed size in bytes */
} idx_file_t;

static void idx_close(idx_file_t *f)
{
    if (f->gz)
        gzclose(f->gz);
    f->gz = NULL;
}

static int idx_open(idx_file_t *f, const char *dir, const char *name)
{
    f->gz = NULL;
    int len = snprintf(f->path, sizeof f->path, "%s/%s", dir, name);
    if (len < 0 || (size_t)len >= sizeof f->path)
        return qs_error(QS_ERR_INVALID, "Fashion-MNIST folder name '%.60s...' is too long", dir);
    struct stat st;
    if (stat(f->path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return qs_error(QS_ERR_IO, "%s: no such file (" FMNIST_HOWTO ")", f->path);
        return qs_error(QS_ERR_IO, "cannot open %s: %s", f->path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode))
        return qs_error(QS_ERR_IO, "%s: is a folder, not a gzip IDX file", f->path);
    if (st.st_size == 0)
        return qs_error(QS_ERR_FORMAT, "%s: empty file, expected a gzip IDX file", f->path);
    f->csize = (int64_t)st.st_size;
    errno = 0;
    f->gz = gzopen(f->path, "rb");
    if (!f->gz)
        return qs_error(errno ? QS_ERR_IO : QS_ERR_NOMEM, "cannot open %s: %s", f->path,
                        errno ? strerror(errno) : "out of memory");
    gzbuffer(f->gz, 1u << 17); /* fewer, larger reads; must precede the first read */
    /* zlib reads a file without a gzip header "transparently", as it is;
     * Debian's files are always compressed, so that is a wrong file */
    if (gzdirect(f->gz)) {
        idx_close(f);
        return qs_error(QS_ERR_FORMAT, "%s: not a gzip file (the IDX files of dataset-fashion-mnist are gzip-compressed)",
                        f->path);
    }
    return QS_OK;
}

/* Decompresses up to n bytes into buf (or only counts them when buf is NULL).
 * *got is what arrived; *cut is set when the gzip stream itself ends early
 * (a partial download), as opposed to a complete stream that is too short. */
static int idx_read(idx_file_t *f, void *buf, int64_t n, int64_t *got, bool *cut)
{
    static const int64_t step = INT64_C(1) << 30;
    unsigned char scratch[1 << 16];
    *got = 0;
    if (cut)
        *cut = false;
    while (*got < n) {
        int64_t want = n - *got;
        if (!buf && want > (int64_t)sizeof scratch)
            want = (int64_t)sizeof scratch;
        if (want > step)
            want = step;
        int r = gzread(f->gz, buf ? (unsigned char *)buf + *got : scratch, (unsigned)want);
        if (r < 0) {
            int code;
            const char *why = gzerror(f->gz, &code);
            if (code == Z_MEM_ERROR)
                return qs_error(QS_ERR_NOMEM, "%s: out of memory decompressing", f->path);
            if (code == Z_ERRNO)
                return qs_error(QS_ERR_IO, "%s: read error: %s", f->path, strerror(errno));
            return qs_error(QS_ERR_FORMAT, "%s: corrupt gzip data (%s)", f->path, why && *why ? why : "zlib error");
        }
        if (r == 0) {
            int code;
            gzerror(f->gz, &code);
            if (cut)
                *cut = code == Z_BUF_ERROR;
            break;
        }
        *got += r;
    }
    return QS_OK;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Reads and checks an IDX header: magic, then ndim big-endian dimensions.
 * The magic first, so that a wrong file is called wrong, not short. */
static int idx_header(idx_file_t *f, uint32_t magic, int ndim, uint32_t *dims)
{
    unsigned char hdr[16];
    int64_t want = 4 + 4 * (int64_t)ndim, got;
    bool cut;
    int rc = idx_read(f, hdr, 4, &got, &cut);
    if (rc == QS_OK && got == 4) {
        uint32_t m = be32(hdr);
        if (m != magic)
            return qs_error(QS_ERR_FORMAT,
                            "%s: not an IDX %s file: magic number 0x%08x, expected 0x%08x (unsigned bytes, %d dimension%s)",
                            f->path, ndim == 3 ? "image" : "label", (unsigned)m, (unsigned)magic, ndim,
                            ndim == 1 ? "" : "s");
        int64_t more;
        rc = idx_read(f, hdr + 4, want - 4, &more, &cut);
        got += more;
    }
    if (rc < 0)
        return rc;
    if (got < want)
        return qs_error(QS_ERR_FORMAT, "%s: truncated: expected a %lld-byte IDX header, got %lld bytes%s", f->path,
                        (long long)want, (long long)got, cut ? " (the gzip stream is cut short)" : "");
    for (int i = 0; i < ndim; i++)
        dims[i] = be32(hdr + 4 + 4 * i);
    return QS_OK;
}

/* Reads exactly n declared bytes of `what` and checks that nothing follows. */
static int idx_body(idx_file_t *f, uint8_t *buf, int64_t n, const char *what)
{
    int64_t got;
    bool cut;
    int rc;
    if (n > f->csize * DEFLATE_MAX_RATIO + 4096) {
        /* cannot be there: count what is, for the message, without allocating n */
        rc = idx_read(f, NULL, n, &got, &cut);
    } else {
        rc = idx_read(f, buf, n, &got, &cut);
    }
    if (rc < 0)
        return rc;
    if (got < n)
        return qs_error(QS_ERR_FORMAT, "%s: truncated: expected %lld bytes of %s, got %lld%s", f->path, (long long)n,
                        what, (long long)got, cut ? " (the gzip stream is cut short)" : "");
    /* reading to the end also verifies the gzip trailer (CRC-32 and length) */
    int64_t extra;
    rc = idx_read(f, NULL, INT64_MAX, &extra, &cut);
    if (rc < 0)
        return rc;
    if (cut)
        return qs_error(QS_ERR_FORMAT, "%s: truncated: the gzip stream is cut short after the %lld bytes of %s", f->path,
                        (long long)n, what);
    if (extra > 0)
        return qs_error(QS_ERR_FORMAT, "%s: %lld bytes of trailing data after the %lld declared bytes of %s", f->path,
                        (long long)extra, (long long)n, what);
    return QS_OK;
}

int qs_dataset_fmnist(const char *dir, bool train, qs_dataset_t **out)
{
    if (!out)
        return qs_error(QS_ERR_INVALID, "qs_dataset_fmnist: no output");
    *out = NULL;
    if (!dir || !*dir) {
        dir = getenv(FMNIST_ENV);
        if (!dir || !*dir)
            dir = FMNIST_DEFAULT_DIR;
    }
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return qs_error(QS_ERR_IO, "%s: no such folder (" FMNIST_HOWTO ")", dir);
        return qs_error(QS_ERR_IO, "cannot open %s: %s", dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return qs_error(QS_ERR_IO, "%s: not a folder (" FMNIST_HOWTO ")", dir);

    const char *split = train ? "train" : "test";
    const char *prefix = train ? "train" : "t10k";
    char iname[64], lname[64], source[64];
    snprintf(iname, sizeof iname, "%s-images-idx3-ubyte.gz", prefix);
    snprintf(lname, sizeof lname, "%s-labels-idx1-ubyte.gz", prefix);
    snprintf(source, sizeof source, "fashion-mnist:%s", split);

    idx_file_t fi = {0}, fl = {0};
    qs_dataset_t *d = NULL;
    uint32_t idims[3] = {0}, ldims[1] = {0};
    int rc = idx_open(&fi, dir, iname);
    if (rc == QS_OK)
        rc = idx_open(&fl, dir, lname);
    /* both headers before any allocation: a corrupt count rarely agrees with the other file */
    if (rc == QS_OK)
        rc = idx_header(&fi, IDX_MAGIC_U8_3D, 3, idims);
    if (rc == QS_OK)
        rc = idx_header(&fl, IDX_MAGIC_U8_1D, 1, ldims);
    if (rc < 0)
        goto done;
    if (idims[0] == 0) {
        rc = qs_error(QS_ERR_FORMAT, "%s: holds no images", fi.path);
        goto done;
    }
    if (idims[1] != FMNIST_SIDE || idims[2] != FMNIST_SIDE) {
        rc = qs_error(QS_ERR_FORMAT, "%s: images are %u x %u, expected %d x %d", fi.path, (unsigned)idims[1],
                      (unsigned)idims[2], FMNIST_SIDE, FMNIST_SIDE);
        goto done;
    }
    if (ldims[0] != idims[0]) {
        rc = qs_error(QS_ERR_FORMAT, "%s holds %u images but %s holds %u labels", fi.path, (unsigned)idims[0], fl.path,
                      (unsigned)ldims[0]);
        goto done;
    }
    int64_t n = idims[0];
    int64_t pixels = n * FMNIST_SIDE * FMNIST_SIDE;
    if (pixels > fi.csize * DEFLATE_MAX_RATIO + 4096) {
        rc = idx_body(&fi, NULL, pixels, "pixels"); /* fails: reports how many bytes there are */
        if (rc == QS_OK)
            rc = qs_error(QS_ERR_INTERNAL, "%s: impossible compression ratio", fi.path);
        goto done;
    }
    d = dataset_new(n, 1, FMNIST_SIDE, FMNIST_SIDE, false, source);
    if (!d) {
        rc = qs_last_status();
        goto done;
    }
    d->num_classes = FMNIST_CLASSES;
    rc = idx_body(&fi, d->u8, pixels, "pixels");
    if (rc < 0)
        goto done;
    /* labels arrive as bytes; widen in place from the end of the int32 buffer */
    uint8_t *lb = (uint8_t *)d->labels;
    rc = idx_body(&fl, lb, n, "labels");
    if (rc < 0)
        goto done;
    for (int64_t i = n - 1; i >= 0; i--)
        d->labels[i] = lb[i];
    for (int64_t i = 0; i < n; i++) {
        if (d->labels[i] >= FMNIST_CLASSES) {
            rc = qs_error(QS_ERR_FORMAT, "%s: label %lld is %d, expected 0..%d", fl.path, (long long)i,
                          (int)d->labels[i], FMNIST_CLASSES - 1);
            goto done;
        }
    }
    *out = d;
    d = NULL;
    rc = QS_OK;
done:
    idx_close(&fi);
    idx_close(&fl);
    qs_dataset_free(d);
    return rc;
}

/* ---- HDF5 datasets ----------------------------------------------------------------- */

typedef struct {
    H5T_class_t cls;
    size_t size;
    H5T_sign_t sign;
    int ndim;
    int64_t dims[QS_MAX_DIMS];
    char type[32]; /* "uint8", "float32", ... */
} h5_info_t;

static int h5_probe(hid_t file, const char *path, const char *name, h5_info_t *info)
{
    int rc = QS_OK;
    hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
    if (ds < 0)
        return qs_error(QS_ERR_FORMAT, "'%s': cannot open dataset '%s' (%s)", path, name, H5_LAYOUT);
    hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
    if (type < 0 || space < 0) {
        rc = qs_error(QS_ERR_FORMAT, "'%s': dataset '%s' cannot be read", path, name);
        goto done;
    }
    info->cls = H5Tget_class(type);
    info->size = H5Tget_size(type);
    info->sign = info->cls == H5T_INTEGER ? H5Tget_sign(type) : H5T_SGN_ERROR;
    if (info->cls == H5T_INTEGER)
        snprintf(info->type, sizeof info->type, "%sint%zu", info->sign == H5T_SGN_NONE ? "u" : "", 8 * info->size);
    else if (info->cls == H5T_FLOAT)
        snprintf(info->type, sizeof info->type, "float%zu", 8 * info->size);
    else
        snprintf(info->type, sizeof info->type, "non-numeric data");
    if (H5Sget_simple_extent_type(space) != H5S_SIMPLE) {
        rc = qs_error(QS_ERR_SHAPE, "'%s': dataset '%s' is a scalar or empty; %s", path, name, H5_LAYOUT);
        goto done;
    }
    int nd = H5Sget_simple_extent_ndims(space);
    if (nd < 1 || nd > QS_MAX_DIMS) {
        rc = qs_error(QS_ERR_SHAPE, "'%s': dataset '%s' has %d dimensions; %s", path, name, nd, H5_LAYOUT);
        goto done;
    }
    hsize_t dims[QS_MAX_DIMS];
    H5Sget_simple_extent_dims(space, dims, NULL);
    info->ndim = nd;
    for (int i = 0; i < nd; i++) {
        if (dims[i] > (hsize_t)INT32_MAX) {
            rc = qs_error(QS_ERR_SHAPE, "'%s': dataset '%s' is too large (dimension %d is %llu)", path, name, i,
                          (unsigned long long)dims[i]);
            goto done;
        }
        info->dims[i] = (int64_t)dims[i];
    }
done:
    if (type >= 0)
        H5Tclose(type);
    if (space >= 0)
        H5Sclose(space);
    H5Dclose(ds);
    return rc;
}

typedef struct {
    int hit;
} u8_conv_t;

static H5T_conv_ret_t u8_conv_cb(H5T_conv_except_t kind, hid_t src, hid_t dst, void *sbuf, void *dbuf, void *user)
{
    (void)kind;
    (void)src;
    (void)dst;
    (void)sbuf;
    (void)dbuf;
    ((u8_conv_t *)user)->hit = 1; /* any exception to uint8 is a value outside 0..255 */
    return H5T_CONV_ABORT;
}

/* Reads integer /images straight into uint8 (no wider copy of a large
 * dataset); HDF5 converts other integer types, and a value outside 0..255
 * aborts the conversion through the callback. */
static int h5_read_u8(hid_t file, const char *path, const h5_info_t *info, uint8_t *buf)
{
    hid_t ds = H5Dopen2(file, "/images", H5P_DEFAULT);
    if (ds < 0)
        return qs_error(QS_ERR_FORMAT, "'%s': cannot open dataset '/images'", path);
    u8_conv_t st = {0};
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    int rc = QS_OK;
    if (dxpl < 0 || H5Pset_type_conv_cb(dxpl, u8_conv_cb, &st) < 0)
        rc = qs_error(QS_ERR_INTERNAL, "'%s': dataset '/images': cannot set up the type conversion", path);
    else if (H5Dread(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, dxpl, buf) < 0) {
        if (st.hit)
            rc = qs_error(QS_ERR_FORMAT,
                          "'%s': dataset '/images' holds %s values outside 0..255; integer images are 8-bit pixels "
                          "(store other ranges as float32)",
                          path, info->type);
        else
            rc = qs_error(QS_ERR_FORMAT, "'%s': cannot read dataset '/images' (corrupt or unreadable data)", path);
    }
    if (dxpl >= 0)
        H5Pclose(dxpl);
    H5Dclose(ds);
    return rc;
}

/* Where the num_classes attribute is: "/labels", "/" or NULL. */
static const char *h5_num_classes_owner(hid_t file)
{
    if (H5Aexists_by_name(file, "/labels", "num_classes", H5P_DEFAULT) > 0)
        return "/labels";
    if (H5Aexists_by_name(file, "/", "num_classes", H5P_DEFAULT) > 0)
        return "/";
    return NULL;
}

int qs_dataset_h5(const char *path, qs_dataset_t **out)
{
    if (!out)
        return qs_error(QS_ERR_INVALID, "qs_dataset_h5: no output");
    *out = NULL;
    /* core's helpers give the messages for a missing or non-HDF5 file and a
     * missing dataset; the stored type of /images, which decides between raw
     * pixels and real images, needs HDF5 itself */
    qs_h5_t *h = qs_h5_open(path);
    if (!h)
        return qs_last_status();
    const char *missing = !qs_h5_exists(h, "/images") ? "/images" : !qs_h5_exists(h, "/labels") ? "/labels" : NULL;
    qs_h5_close(h);
    h = NULL;
    if (missing)
        return qs_error(QS_ERR_FORMAT, "'%s': no dataset '%s' (%s)", path, missing, H5_LAYOUT);

    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    qs_dataset_t *d = NULL;
    qs_tensor_t *lab = NULL, *img = NULL;
    const char *nc_owner = NULL;
    h5_info_t ii = {0}, li = {0};
    int rc = QS_OK;
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0)
        return qs_error(QS_ERR_FORMAT, "'%s' is not a readable HDF5 file", path);
    rc = h5_probe(file, path, "/images", &ii);
    if (rc == QS_OK)
        rc = h5_probe(file, path, "/labels", &li);
    if (rc < 0)
        goto done;
    if (ii.cls != H5T_INTEGER && ii.cls != H5T_FLOAT) {
        rc = qs_error(QS_ERR_FORMAT, "'%s': dataset '/images' holds %s; expected uint8 or float32", path, ii.type);
        goto done;
    }
    if (li.cls != H5T_INTEGER) {
        rc = qs_error(QS_ERR_FORMAT, "'%s': dataset '/labels' holds %s; labels are integers", path, li.type);
        goto done;
    }
    char shape[96];
    if (ii.ndim != 3 && ii.ndim != 4) {
        rc = qs_error(QS_ERR_SHAPE, "'%s': dataset '/images' has shape %s; expected N x C x H x W (or N x H x W)", path,
                      qs_shape_str(ii.ndim, ii.dims, shape, sizeof shape));
        goto done;
    }
    int64_t n = ii.dims[0], c = ii.ndim == 4 ? ii.dims[1] : 1;
    int64_t hh = ii.dims[ii.ndim - 2], ww = ii.dims[ii.ndim - 1];
    if (n == 0 || c == 0 || hh == 0 || ww == 0) {
        rc = qs_error(QS_ERR_SHAPE, "'%s': dataset '/images' has shape %s: no images", path,
                      qs_shape_str(ii.ndim, ii.dims, shape, sizeof shape));
        goto done;
    }
    if (li.ndim != 1 || li.dims[0] != n) {
        rc = qs_error(QS_ERR_SHAPE, "'%s': dataset '/labels' has shape %s; expected [%lld], one label per image", path,
                      qs_shape_str(li.ndim, li.dims, shape, sizeof shape), (long long)n);
        goto done;
    }
    nc_owner = h5_num_classes_owner(file);
    bool real = ii.cls == H5T_FLOAT;
    d = dataset_new(n, c, hh, ww, real, path);
    if (!d) {
        rc = qs_last_status();
        goto done;
    }
    if (!real) {
        rc = h5_read_u8(file, path, &ii, d->u8);
        if (rc < 0)
            goto done;
    }
    H5Fclose(file);
    file = H5I_INVALID_HID;

    /* labels (any integer type, range-checked into int32), real images and
     * the attribute through core's converting readers */
    h = qs_h5_open(path);
    if (!h) {
        rc = qs_last_status();
        goto done;
    }
    rc = qs_h5_read(h, "/labels", QS_I32, &lab);
    if (rc < 0)
        goto done;
    memcpy(d->labels, lab->data, (size_t)n * sizeof *d->labels);
    if (real) {
        rc = qs_h5_read(h, "/images", QS_F32, &img);
        if (rc < 0)
            goto done;
        size_t per = (size_t)(c * hh * ww);
        const float *p = qs_f32(img);
        for (int64_t i = 0; i < n; i++) {
            for (size_t k = 0; k < per; k++) {
                if (!isfinite(p[(size_t)i * per + k])) {
                    rc = qs_error(QS_ERR_NUMERIC, "'%s': dataset '/images': image %lld holds %s", path, (long long)i,
                                  isnan(p[(size_t)i * per + k]) ? "NaN" : "an infinity");
                    goto done;
                }
            }
        }
        memcpy(d->f32, p, (size_t)n * per * sizeof(float));
    }
    int64_t maxl = -1, nc = -1;
    for (int64_t i = 0; i < n; i++) {
        if (d->labels[i] < 0) {
            rc = qs_error(QS_ERR_FORMAT, "'%s': dataset '/labels': label %lld is %d; labels are 0 or more", path,
                          (long long)i, (int)d->labels[i]);
            goto done;
        }
        if (d->labels[i] > maxl)
            maxl = d->labels[i];
    }
    if (nc_owner) {
        rc = qs_h5_get_attr_int(h, nc_owner, "num_classes", &nc);
        if (rc < 0)
            goto done;
        if (nc < 1 || nc > INT_MAX) {
            rc = qs_error(QS_ERR_FORMAT, "'%s': attribute 'num_classes' of '%s' is %lld; expected 1 or more", path,
                          nc_owner, (long long)nc);
            goto done;
        }
        for (int64_t i = 0; i < n; i++) {
            if (d->labels[i] >= nc) {
                rc = qs_error(QS_ERR_FORMAT, "'%s': dataset '/labels': label %lld is %d, outside [0, %lld) (num_classes of '%s')",
                              path, (long long)i, (int)d->labels[i], (long long)nc, nc_owner);
                goto done;
            }
        }
    } else {
        nc = maxl + 1; /* labels are int32, so this fits an int */
    }
    d->num_classes = (int)nc;
    *out = d;
    d = NULL;
    rc = QS_OK;
done:
    if (file >= 0)
        H5Fclose(file);
    qs_h5_close(h);
    qs_tensor_free(lab);
    qs_tensor_free(img);
    qs_dataset_free(d);
    return rc;
}

/* ---- opening by name -------------------------------------------------------------------- */

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcmp(s + n - m, suffix) == 0;
}

int qs_dataset_open(const char *spec, qs_dataset_t **out)
{
    if (!out)
        return qs_error(QS_ERR_INVALID, "qs_dataset_open: no output");
    *out = NULL;
    if (!spec)
        spec = "";
    if (strcmp(spec, "fmnist:train") == 0)
        return qs_dataset_fmnist(NULL, true, out);
    if (strcmp(spec, "fmnist:test") == 0 || strcmp(spec, "fmnist") == 0)
        return qs_dataset_fmnist(NULL, false, out);
    if (has_suffix(spec, ".h5") || has_suffix(spec, ".hdf5"))
        return qs_dataset_h5(spec, out);
    return qs_error(QS_ERR_INVALID,
                    "unknown dataset '%s': expected fmnist:train, fmnist:test, fmnist (the test split) or the path of "
                    "an HDF5 dataset file ending in .h5 or .hdf5",
                    spec);
}

/* ---- subsets ------------------------------------------------------------------------------- */

/* Draws from the subset stream of seed: words are consumed in order, one
 * counter for the whole shuffle, and refilled in blocks of the same words
 * qs_rng_u32(seed, QS_SUBSET_STREAM, k) would give one at a time. */
typedef struct {
    uint64_t seed, next; /* next: index of the word after those in buf */
    uint32_t buf[256];
    int pos, len;
} subset_rng_t;

static uint32_t subset_word(subset_rng_t *r)
{
    if (r->pos == r->len) {
        qs_rng_fill_u32(r->seed, QS_SUBSET_STREAM, r->next, 256, r->buf);
        r->next += 256;
        r->pos = 0;
        r->len = 256;
    }
    return r->buf[r->pos++];
}

/* An unbiased integer in [0, m), 1 <= m <= 2^32, by Lemire's multiply-shift
 * with rejection (D. Lemire, "Fast random integer generation in an
 * interval", ACM TOMACS 29(1), 2019): with a word x, p = x * m (64 bits);
 * reject while (p mod 2^32) < (2^32 mod m), drawing the next word; the
 * result is p >> 32. */
static uint32_t subset_below(subset_rng_t *r, uint64_t m)
{
    uint32_t threshold = (uint32_t)((UINT64_C(1) << 32) % m);
    for (;;) {
        uint64_t p = (uint64_t)subset_word(r) * m;
        if ((uint32_t)p >= threshold)
            return (uint32_t)(p >> 32);
    }
}

int qs_dataset_subset(const qs_dataset_t *d, int64_t count, uint64_t seed, qs_dataset_t **out)
{
    if (!out)
        return qs_error(QS_ERR_INVALID, "qs_dataset_subset: no output");
    *out = NULL;
    if (!d)
        return qs_error(QS_ERR_INVALID, "qs_dataset_subset: no dataset");
    if ((!d->u8 && !d->f32) || !d->labels)
        return qs_error(QS_ERR_INVALID, "%s: the dataset holds no images or no labels", d->source);
    if (count < 1 || count > d->n)
        return qs_error(QS_ERR_INVALID, "%s: cannot draw a subset of %lld images from %lld (expected 1..%lld)",
                        d->source, (long long)count, (long long)d->n, (long long)d->n);
    if (d->n > (int64_t)UINT32_MAX)
        return qs_error(QS_ERR_UNSUPPORTED, "%s: subsets of datasets of more than %lu images are not supported",
                        d->source, (unsigned long)UINT32_MAX);
    /* the first count steps of Fisher-Yates from the front: step i swaps
     * position i with i + below(n - i) */
    uint32_t *perm = malloc((size_t)d->n * sizeof *perm);
    if (!perm)
        return qs_error(QS_ERR_NOMEM, "%s: out of memory drawing a subset", d->source);
    for (int64_t i = 0; i < d->n; i++)
        perm[i] = (uint32_t)i;
    subset_rng_t r = {.seed = seed};
    for (int64_t i = 0; i < count; i++) {
        int64_t j = i + subset_below(&r, (uint64_t)(d->n - i));
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    char source[256];
    snprintf(source, sizeof source, "%.160s[subset %lld seed %llu]", d->source, (long long)count,
             (unsigned long long)seed);
    qs_dataset_t *s = dataset_new(count, d->c, d->h, d->w, d->f32 != NULL, source);
    if (!s) {
        free(perm);
        return qs_last_status();
    }
    s->num_classes = d->num_classes;
    size_t per = (size_t)(d->c * d->h * d->w);
    for (int64_t i = 0; i < count; i++) {
        size_t from = (size_t)perm[i];
        if (s->f32)
            memcpy(s->f32 + (size_t)i * per, d->f32 + from * per, per * sizeof(float));
        else
            memcpy(s->u8 + (size_t)i * per, d->u8 + from * per, per);
        s->labels[i] = d->labels[from];
    }
    free(perm);
    *out = s;
    return QS_OK;
}

/* ---- batches -------------------------------------------------------------------------------- */

int qs_dataset_batch(const qs_dataset_t *d, const qs_graph_t *g, int64_t first, const int64_t *idx, int64_t count,
                     qs_tensor_t *out, int32_t *labels)
{
    if (!d || !g || !out)
        return qs_error(QS_ERR_INVALID, "qs_dataset_batch: missing dataset, model or output");
    if ((!d->u8 && !d->f32) || !d->labels)
        return qs_error(QS_ERR_INVALID, "%s: the dataset holds no images or no labels", d->source);
    if (count < 0)
        return qs_error(QS_ERR_INVALID, "%s: batch of %lld images", d->source, (long long)count);
    if (d->c != g->in_c || d->h != g->in_h || d->w != g->in_w)
        return qs_error(QS_ERR_SHAPE, "%s: images are %lld x %lld x %lld (C x H x W) but model '%s' expects %lld x %lld x %lld",
                        d->source, (long long)d->c, (long long)d->h, (long long)d->w, g->name, (long long)g->in_c,
                        (long long)g->in_h, (long long)g->in_w);
    if (g->in_c < 1 || g->in_c > 8)
        return qs_error(QS_ERR_INVALID, "model '%s': %lld input channels; normalization handles 1 to 8", g->name,
                        (long long)g->in_c);
    int64_t want[4] = {count, d->c, d->h, d->w};
    if (out->dtype != QS_F32 || out->ndim != 4 || out->shape[0] != count || out->shape[1] != d->c ||
        out->shape[2] != d->h || out->shape[3] != d->w) {
        char got[96], exp[96];
        return qs_error(QS_ERR_SHAPE, "%s: batch tensor is %s %s, expected float32 %s", d->source,
                        qs_dtype_name(out->dtype), qs_shape_str(out->ndim, out->shape, got, sizeof got),
                        qs_shape_str(4, want, exp, sizeof exp));
    }
    int nc = (int)g->in_c;
    if (d->u8 && !isfinite(g->input_scale))
        return qs_error(QS_ERR_NUMERIC, "model '%s': input_scale is %g", g->name, (double)g->input_scale);
    for (int c = 0; c < nc; c++) {
        if (!isfinite(g->norm_mean[c]) || !isfinite(g->norm_std[c]) || g->norm_std[c] == 0.0f)
            return qs_error(QS_ERR_NUMERIC, "model '%s': input channel %d normalization mean %g, std %g; expected finite values and std != 0",
                            g->name, c, (double)g->norm_mean[c], (double)g->norm_std[c]);
    }
    /* every index before any output, so that an error leaves out untouched */
    if (idx) {
        for (int64_t i = 0; i < count; i++)
            if (idx[i] < 0 || idx[i] >= d->n)
                return qs_error(QS_ERR_INVALID, "%s: image index %lld (batch entry %lld) is outside [0, %lld)",
                                d->source, (long long)idx[i], (long long)i, (long long)d->n);
    } else if (first < 0 || first > d->n || count > d->n - first) {
        return qs_error(QS_ERR_INVALID, "%s: images %lld..%lld are outside [0, %lld)", d->source, (long long)first,
                        (long long)first + count - 1, (long long)d->n);
    }

    size_t hw = (size_t)(d->h * d->w), per = (size_t)nc * hw;
    float *dst = qs_f32(out);
    if (d->u8) {
        /* 256 values per channel, each computed by the documented formula,
         * so the lookup gives exactly the bits of the formula */
        float lut[8][256];
        for (int c = 0; c < nc; c++) {
            for (int p = 0; p < 256; p++) {
                float x = (float)p * g->input_scale;
                float y = x - g->norm_mean[c];
                lut[c][p] = y / g->norm_std[c];
            }
        }
        for (int64_t i = 0; i < count; i++) {
            int64_t k = idx ? idx[i] : first + i;
            const uint8_t *src = d->u8 + (size_t)k * per;
            float *o = dst + (size_t)i * per;
            for (int c = 0; c < nc; c++) {
                const float *l = lut[c];
                for (size_t p = 0; p < hw; p++)
                    o[c * hw + p] = l[src[c * hw + p]];
            }
            if (labels)
                labels[i] = d->labels[k];
        }
    } else {
        for (int64_t i = 0; i < count; i++) {
            int64_t k = idx ? idx[i] : first + i;
            const float *src = d->f32 + (size_t)k * per;
            float *o = dst + (size_t)i * per;
            for (int c = 0; c < nc; c++) {
                float m = g->norm_mean[c], s = g->norm_std[c];
                for (size_t p = 0; p < hw; p++)
                    o[c * hw + p] = (src[c * hw + p] - m) / s;
            }
            if (labels)
                labels[i] = d->labels[k];
        }
    }
    return QS_OK;
}
