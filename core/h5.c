/* core/h5.c — the HDF5 helpers: read and write tensors and attributes, with
 * HDF5's own error printing off and its errors turned into quasar messages
 * that name the file, the dataset and the attribute.
 *
 * New files are written aside (PATH.tmp-XXXXXX in the same folder, so that
 * rename() is atomic) and renamed over PATH by qs_h5_commit(); closing
 * without a commit removes the temporary file. A crash or a failed run thus
 * never leaves a partial file at PATH and never harms the file already there.
 * A write that fails (a full disk) fails the call that made it, even when
 * HDF5 only notices while closing a dataset, and such a file can no longer
 * be committed. PATH must be a regular file or absent: a rename must never
 * replace a folder, a device or a pipe.
 *
 * Reading converts any stored integer or float type to the requested one
 * through HDF5's conversion, with a conversion-exception callback that
 * refuses lossy cases: a non-integral, NaN or infinite float read as an
 * integer, an integer out of the destination's range, a finite float64 too
 * large for float32. Integers read as float32 are rounded as HDF5 does
 * (to nearest), which is fine for the sizes quasar stores. */
#define _GNU_SOURCE 1 /* memfd_create */
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct qs_h5 {
    hid_t file;
    char *path; /* as given by the caller: used in messages */
    char *tmp;  /* temporary name of a created file, NULL for an opened one */
    bool writable;
    bool failed; /* a write to this new file failed: it is discarded, never committed */
};

/* HDF5 keeps one error-printing setting per thread (threadsafe build), so
 * every entry point switches it off on the calling thread. */
static void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

typedef struct {
    char desc[256];
} h5_detail_t;

static herr_t detail_walk(unsigned n, const H5E_error2_t *e, void *data)
{
    h5_detail_t *d = data;
    if (n == 0 && e->desc && *e->desc)
        snprintf(d->desc, sizeof d->desc, "%s", e->desc);
    return 0;
}

/* HDF5's descriptions of system errors span lines and carry a time stamp,
 * buffer addresses and byte counts ("file write failed: time = ...\n,
 * filename = ..., errno = 28, error message = 'No space left on device', buf
 * = 0x..."); keep what a user needs, on one line: "file write failed: No
 * space left on device". */
static void tidy_detail(char *desc, size_t n)
{
    static const char tag[] = "error message = '";
    const char *em = strstr(desc, tag);
    if (em) {
        char what[256], why[128];
        const char *b = em + sizeof tag - 1, *e = strchr(b, '\'');
        int wlen = (int)(e ? (size_t)(e - b) : strlen(b));
        snprintf(why, sizeof why, "%.*s", wlen, b);
        snprintf(what, sizeof what, "%.*s", (int)strcspn(desc, ":,"), desc);
        snprintf(desc, n, "%.120s: %.120s", what, why);
    }
    for (char *p = desc; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
}

/* The most specific message on the calling thread's HDF5 error stack; call
 * right after the failing call, since any HDF5 call clears the stack. */
static const char *h5_detail(h5_detail_t *d)
{
    d->desc[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, detail_walk, d);
    if (!d->desc[0])
        snprintf(d->desc, sizeof d->desc, "unknown HDF5 error");
    tidy_detail(d->desc, sizeof d->desc);
    return d->desc;
}

/* "/a/b" for "a/b" or "/a/b" */
static int norm_name(const qs_h5_t *h, const char *name, char *buf, size_t n)
{
    if (!name || !*name)
        return qs_error(QS_ERR_INVALID, "'%s': empty dataset name", h->path);
    int len = snprintf(buf, n, "%s%s", name[0] == '/' ? "" : "/", name);
    if (len < 0 || (size_t)len >= n)
        return qs_error(QS_ERR_INVALID, "'%s': name '%.40s...' is too long", h->path, name);
    return QS_OK;
}

enum { LOOKUP_ERROR = -1, LOOKUP_MISSING = 0, LOOKUP_FOUND = 1, LOOKUP_DANGLING = 2 };

/* Whether each link along an absolute path exists and resolves: FOUND;
 * MISSING; DANGLING when the last link exists but leads nowhere (a soft link
 * to a missing object, an external link to a missing file); ERROR when HDF5
 * cannot tell (a corrupt file, a loop of soft links), with the reason on
 * HDF5's error stack. A corrupt group must not be listed afterwards: HDF5
 * 1.10 can crash walking it. */
static int path_lookup(hid_t file, const char *path)
{
    if (strcmp(path, "/") == 0)
        return LOOKUP_FOUND;
    char buf[1024];
    size_t len = strlen(path);
    if (len >= sizeof buf)
        return LOOKUP_MISSING;
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char save = buf[i];
        buf[i] = '\0';
        htri_t link = H5Lexists(file, buf, H5P_DEFAULT);
        htri_t obj = link > 0 ? H5Oexists_by_name(file, buf, H5P_DEFAULT) : link;
        buf[i] = save;
        if (link < 0 || obj < 0)
            return LOOKUP_ERROR;
        if (obj == 0)
            return link > 0 && i == len ? LOOKUP_DANGLING : LOOKUP_MISSING;
    }
    return LOOKUP_FOUND;
}

static bool path_exists(hid_t file, const char *path) { return path_lookup(file, path) == LOOKUP_FOUND; }

/* The error for a path whose lookup did not find an object (other than MISSING). */
static int lookup_error(const qs_h5_t *h, const char *path, int how)
{
    if (how == LOOKUP_DANGLING)
        return qs_error(QS_ERR_FORMAT,
                        "'%s': '%s' is a link that leads nowhere (a soft link to a missing object or an external "
                        "link to a missing file)",
                        h->path, path);
    h5_detail_t d;
    h5_detail(&d);
    return qs_error(QS_ERR_FORMAT, "'%s': cannot look up '%s' (%s); the file may be corrupt", h->path, path, d.desc);
}

/* Up to 10 member names of the group at `group`, for "no dataset" messages. */
static void list_members(hid_t file, const char *group, char *out, size_t n)
{
    out[0] = '\0';
    hid_t g = H5Gopen2(file, group, H5P_DEFAULT);
    if (g < 0)
        return;
    H5G_info_t info;
    if (H5Gget_info(g, &info) >= 0) {
        size_t used = 0;
        hsize_t shown = info.nlinks < 10 ? info.nlinks : 10;
        for (hsize_t i = 0; i < shown && used < n; i++) {
            char name[256];
            if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT) < 0)
                break;
            const char *sep = strcmp(group, "/") == 0 ? "" : "/";
            H5O_type_t type = H5O_TYPE_UNKNOWN;
            hid_t o = H5Oopen(g, name, H5P_DEFAULT);
            if (o >= 0) {
                H5I_type_t it = H5Iget_type(o);
                type = it == H5I_GROUP ? H5O_TYPE_GROUP : it == H5I_DATASET ? H5O_TYPE_DATASET : H5O_TYPE_UNKNOWN;
                H5Oclose(o);
            }
            used += (size_t)snprintf(out + used, n - used, "%s%s%s%s%s", i ? ", " : "", group, sep, name,
                                     type == H5O_TYPE_GROUP ? "/" : "");
        }
        if (info.nlinks > shown && used > 0 && used < n)
            snprintf(out + used, n - used, ", ... (%llu in all)", (unsigned long long)info.nlinks);
    }
    H5Gclose(g);
}

/* The error for a name that is not in the file, listing what is there. */
static int missing_error(const qs_h5_t *h, const char *what, const char *path)
{
    /* list the deepest existing parent group, which is where the typo is */
    char parent[1024], names[600];
    snprintf(parent, sizeof parent, "%s", path);
    for (;;) {
        char *slash = strrchr(parent, '/');
        if (!slash || slash == parent) {
            strcpy(parent, "/");
            break;
        }
        *slash = '\0';
        if (path_exists(h->file, parent))
            break;
    }
    list_members(h->file, parent, names, sizeof names);
    if (strcmp(parent, "/") == 0) {
        if (!names[0])
            return qs_error(QS_ERR_FORMAT, "'%s': no %s '%s' (the file is empty)", h->path, what, path);
        return qs_error(QS_ERR_FORMAT, "'%s': no %s '%s' (datasets in the file: %s)", h->path, what, path, names);
    }
    return qs_error(QS_ERR_FORMAT, "'%s': no %s '%s' (in group '%s': %s)", h->path, what, path, parent,
                    names[0] ? names : "nothing");
}

static qs_h5_t *handle_new(const char *path)
{
    qs_h5_t *h = calloc(1, sizeof *h);
    if (!h || !(h->path = strdup(path))) {
        free(h);
        qs_error(QS_ERR_NOMEM, "out of memory opening '%s'", path);
        return NULL;
    }
    h->file = H5I_INVALID_HID;
    return h;
}

static void handle_free(qs_h5_t *h)
{
    free(h->path);
    free(h->tmp);
    free(h);
}

/* Closing for real: with the strong degree every object of the file is closed
 * with it, so nothing keeps the file open behind a rename or an unlink. */
static hid_t fapl_strong(void)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0)
        H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    return fapl;
}

/* HDF5 writes what it holds when a file is closed, and when that write
 * fails (a full disk) HDF5 1.10 keeps a handle to freed memory that crashes
 * the process at exit; a failed H5Fflush also leaves its cache unable to
 * flush again. So a new file that will be discarded sends the rest to memory:
 * the descriptor of HDF5's (default, sec2) driver is made to refer to an
 * anonymous memory file, where writes and the final resize succeed; short of
 * that, the file is truncated to release its space. (A file size limit,
 * RLIMIT_FSIZE, applies to memory files too: there a close can still fail.) */
static void discard_writes(qs_h5_t *h)
{
    if (!h->tmp || h->file < 0)
        return;
    bool moved = false;
    hid_t fapl = H5Fget_access_plist(h->file);
    void *handle = NULL;
    if (fapl >= 0 && H5Pget_driver(fapl) == H5FD_SEC2 && H5Fget_vfd_handle(h->file, fapl, &handle) >= 0 &&
        handle) {
        int mem = memfd_create("quasar-discarded", MFD_CLOEXEC);
        if (mem >= 0) {
            moved = dup2(mem, *(int *)handle) >= 0;
            close(mem);
        }
    }
    if (fapl >= 0)
        H5Pclose(fapl);
    if (!moved && truncate(h->tmp, 0) != 0) {
        /* nothing more can be done: the close may then fail as well */
    }
}

/* After a failed write a new file is doomed: it is discarded, never
 * committed, and nothing is read from it any more. */
static void write_failed(qs_h5_t *h)
{
    if (!h->failed)
        discard_writes(h);
    h->failed = true;
}

/* The flush of a commit must not fail for want of space (see above), so the
 * blocks it writes into, up to the end of the allocated address space (which
 * a flush does not move up: it gives back the unused end of its metadata
 * block) and a page of margin, are reserved first, without changing the
 * file's size. Returns 0 or the errno of a full disk; a file system that
 * cannot reserve space is not an error (the flush then runs as it would have
 * without this). */
#define QS_H5_FLUSH_MARGIN 4096
static int reserve_flush_space(const qs_h5_t *h)
{
    haddr_t eoa = 0;
    if (H5Fget_eoa(h->file, &eoa) < 0 || eoa == HADDR_UNDEF || eoa > (haddr_t)(INT64_MAX - QS_H5_FLUSH_MARGIN))
        return 0;
    int fd = open(h->tmp, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int e = fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)eoa + QS_H5_FLUSH_MARGIN) == 0 ? 0 : errno;
    close(fd);
    return e == ENOSPC || e == EFBIG || e == EDQUOT || e == EIO ? e : 0;
}

static int failed_error(const qs_h5_t *h)
{
    return qs_error(QS_ERR_IO, "'%s': an earlier write to this file failed, so it will not be written", h->path);
}

qs_h5_t *qs_h5_open(const char *path)
{
    h5_quiet();
    if (!path || !*path) {
        qs_error(QS_ERR_INVALID, "no HDF5 file name given");
        return NULL;
    }
    /* the system says best why a file cannot be opened */
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        qs_error(QS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    int is_dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    close(fd);
    if (is_dir) {
        qs_error(QS_ERR_IO, "cannot open '%s': %s", path, strerror(EISDIR));
        return NULL;
    }
    qs_h5_t *h = handle_new(path);
    if (!h)
        return NULL;
    hid_t fapl = fapl_strong();
    h->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (h->file < 0) {
        h5_detail_t d;
        h5_detail(&d);
        H5Pclose(fapl);
        qs_error(QS_ERR_FORMAT, "'%s' is not a readable HDF5 file (%s)", path, d.desc);
        handle_free(h);
        return NULL;
    }
    H5Pclose(fapl);
    return h;
}

/* The permissions a file created with open(0666) would get: mkstemp makes
 * 0600, which would surprise whoever shares the results folder. */
static mode_t default_mode(void)
{
    mode_t mask = 022;
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            unsigned m;
            if (sscanf(line, "Umask: %o", &m) == 1) {
                mask = (mode_t)m;
                break;
            }
        }
        fclose(f);
    }
    return 0666 & ~mask;
}

qs_h5_t *qs_h5_create(const char *path)
{
    h5_quiet();
    if (!path || !*path) {
        qs_error(QS_ERR_INVALID, "no HDF5 file name given");
        return NULL;
    }
    /* the commit renames over PATH: that must not replace a folder, a device
     * such as /dev/null, or a pipe (stat follows symbolic links) */
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        qs_error(QS_ERR_IO, "cannot create '%s': %s", path,
                 S_ISDIR(st.st_mode) ? strerror(EISDIR) : "it exists and is not a regular file");
        return NULL;
    }
    qs_h5_t *h = handle_new(path);
    if (!h)
        return NULL;
    size_t n = strlen(path) + sizeof ".tmp-XXXXXX";
    h->tmp = malloc(n);
    if (!h->tmp) {
        handle_free(h);
        qs_error(QS_ERR_NOMEM, "out of memory creating '%s'", path);
        return NULL;
    }
    snprintf(h->tmp, n, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(h->tmp);
    if (fd < 0) {
        qs_error(QS_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
        handle_free(h);
        return NULL;
    }
    if (fchmod(fd, default_mode()) != 0) {
        /* not fatal: the file is still ours and complete, just more private */
    }
    close(fd);
    hid_t fapl = fapl_strong();
    h->file = H5Fcreate(h->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (h->file < 0) {
        h5_detail_t d;
        h5_detail(&d);
        H5Pclose(fapl);
        qs_error(QS_ERR_IO, "cannot create '%s' (as '%s'): %s", path, h->tmp, d.desc);
        unlink(h->tmp);
        handle_free(h);
        return NULL;
    }
    H5Pclose(fapl);
    h->writable = true;
    return h;
}

int qs_h5_commit(qs_h5_t *h)
{
    h5_quiet();
    if (!h)
        return qs_error(QS_ERR_INVALID, "qs_h5_commit: no file");
    if (!h->tmp) {
        int rc = qs_error(QS_ERR_INVALID, "'%s' was opened for reading: nothing to commit", h->path);
        qs_h5_close(h);
        return rc;
    }
    if (h->failed) {
        int rc = failed_error(h);
        qs_h5_close(h);
        return rc;
    }
    int rc = QS_OK, full = reserve_flush_space(h);
    if (full) {
        rc = qs_error(QS_ERR_IO, "cannot write '%s': %s", h->path, strerror(full));
        discard_writes(h);
    } else if (H5Fflush(h->file, H5F_SCOPE_GLOBAL) < 0) {
        h5_detail_t d;
        h5_detail(&d);
        rc = qs_error(QS_ERR_IO, "cannot write '%s': %s", h->path, d.desc);
    }
    if (H5Fclose(h->file) < 0 && rc == QS_OK) {
        h5_detail_t d;
        h5_detail(&d);
        rc = qs_error(QS_ERR_IO, "cannot write '%s': %s", h->path, d.desc);
    }
    h->file = H5I_INVALID_HID;
    if (rc == QS_OK) {
        /* the data must be on disk before the name points at it; truncating
         * to its own size gives back reserved blocks the flush did not use */
        int fd = open(h->tmp, O_RDWR | O_CLOEXEC);
        struct stat st;
        if (fd >= 0) {
            if (fstat(fd, &st) == 0 && ftruncate(fd, st.st_size) != 0) {
                /* only space is lost */
            }
            if (fsync(fd) != 0 && errno != EINVAL)
                rc = qs_error(QS_ERR_IO, "cannot write '%s': %s", h->path, strerror(errno));
            close(fd);
        }
    }
    if (rc == QS_OK && rename(h->tmp, h->path) != 0)
        rc = qs_error(QS_ERR_IO, "cannot rename '%s' to '%s': %s", h->tmp, h->path, strerror(errno));
    if (rc != QS_OK)
        unlink(h->tmp);
    handle_free(h);
    return rc;
}

void qs_h5_close(qs_h5_t *h)
{
    if (!h)
        return;
    h5_quiet();
    discard_writes(h); /* a new file closed without a commit is thrown away */
    if (h->file >= 0)
        H5Fclose(h->file);
    if (h->tmp)
        unlink(h->tmp);
    handle_free(h);
}

const char *qs_h5_path(const qs_h5_t *h) { return h ? h->path : ""; }

bool qs_h5_exists(qs_h5_t *h, const char *name)
{
    h5_quiet();
    char path[1024];
    if (!h || !name || !*name || h->failed)
        return false;
    snprintf(path, sizeof path, "%s%s", name[0] == '/' ? "" : "/", name);
    return path_exists(h->file, path);
}

/* ---- reading ------------------------------------------------------------------ */

typedef struct {
    int hit; /* an exception was refused */
    H5T_conv_except_t kind;
    double value; /* the source value, when it could be decoded */
    bool have_value;
} conv_state_t;

static bool source_value(hid_t src, const void *buf, double *v)
{
    H5T_class_t cls = H5Tget_class(src);
    size_t size = H5Tget_size(src);
    if (cls == H5T_FLOAT && H5Tequal(src, H5T_NATIVE_DOUBLE) > 0) {
        memcpy(v, buf, sizeof(double));
        return true;
    }
    if (cls == H5T_FLOAT && H5Tequal(src, H5T_NATIVE_FLOAT) > 0) {
        float f;
        memcpy(&f, buf, sizeof f);
        *v = f;
        return true;
    }
    if (cls == H5T_INTEGER && size <= 8 && H5Tget_order(src) == H5T_ORDER_LE) {
        /* conversion buffers hold source values in native (little-endian) order */
        uint64_t u = 0;
        memcpy(&u, buf, size);
        if (H5Tget_sign(src) == H5T_SGN_2 && size < 8 && (u >> (8 * size - 1)) & 1)
            u |= ~(uint64_t)0 << (8 * size);
        *v = H5Tget_sign(src) == H5T_SGN_2 ? (double)(int64_t)u : (double)u;
        return true;
    }
    return false;
}

static H5T_conv_ret_t conv_cb(H5T_conv_except_t kind, hid_t src, hid_t dst, void *src_buf, void *dst_buf,
                              void *user)
{
    (void)dst_buf;
    conv_state_t *st = user;
    if (H5Tget_class(dst) == H5T_FLOAT) {
        /* integers rounded to float, infinities and NaN stay what they are */
        if (kind == H5T_CONV_EXCEPT_PRECISION || kind == H5T_CONV_EXCEPT_PINF || kind == H5T_CONV_EXCEPT_NINF ||
            kind == H5T_CONV_EXCEPT_NAN)
            return H5T_CONV_UNHANDLED;
        double v;
        if ((kind == H5T_CONV_EXCEPT_RANGE_HI || kind == H5T_CONV_EXCEPT_RANGE_LOW) && source_value(src, src_buf, &v) &&
            isinf(v))
            return H5T_CONV_UNHANDLED;
    } else if (kind == H5T_CONV_EXCEPT_PRECISION) {
        return H5T_CONV_UNHANDLED;
    }
    if (!st->hit) {
        st->hit = 1;
        st->kind = kind;
        st->have_value = source_value(src, src_buf, &st->value);
    }
    return H5T_CONV_ABORT;
}

static const char *class_name(H5T_class_t c)
{
    switch (c) {
    case H5T_INTEGER: return "integers";
    case H5T_FLOAT: return "floats";
    case H5T_TIME: return "times";
    case H5T_STRING: return "strings";
    case H5T_BITFIELD: return "bit fields";
    case H5T_OPAQUE: return "opaque data";
    case H5T_COMPOUND: return "compound records";
    case H5T_REFERENCE: return "references";
    case H5T_ENUM: return "enumeration values";
    case H5T_VLEN: return "variable-length sequences";
    case H5T_ARRAY: return "arrays";
    default: return "an unknown type";
    }
}

static hid_t native_type(qs_dtype_t t)
{
    switch (t) {
    case QS_F32: return H5T_NATIVE_FLOAT;
    case QS_I32: return H5T_NATIVE_INT32;
    case QS_I64: return H5T_NATIVE_INT64;
    }
    return H5I_INVALID_HID;
}

static hid_t file_type(qs_dtype_t t)
{
    switch (t) {
    case QS_F32: return H5T_IEEE_F32LE;
    case QS_I32: return H5T_STD_I32LE;
    case QS_I64: return H5T_STD_I64LE;
    }
    return H5I_INVALID_HID;
}

/* A short description of a stored type: "float64", "uint8", ... */
static void type_str(hid_t t, char *buf, size_t n)
{
    H5T_class_t c = H5Tget_class(t);
    size_t bits = 8 * H5Tget_size(t);
    if (c == H5T_FLOAT)
        snprintf(buf, n, "float%zu", bits);
    else if (c == H5T_INTEGER)
        snprintf(buf, n, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", bits);
    else
        snprintf(buf, n, "%s", class_name(c));
}

static int conv_error(const qs_h5_t *h, const char *path, qs_dtype_t dtype, const char *stored,
                      const conv_state_t *st)
{
    char val[64] = "";
    if (st->have_value)
        snprintf(val, sizeof val, " %.17g", st->value);
    const char *why;
    switch (st->kind) {
    case H5T_CONV_EXCEPT_TRUNCATE: why = "is not an integer"; break;
    case H5T_CONV_EXCEPT_NAN: why = "is NaN"; break;
    case H5T_CONV_EXCEPT_PINF:
    case H5T_CONV_EXCEPT_NINF: why = "is infinite"; break;
    default: why = "is out of range"; break;
    }
    return qs_error(QS_ERR_FORMAT, "'%s': dataset '%s': cannot read %s data as %s: a value%s %s", h->path, path,
                    stored, qs_dtype_name(dtype), val, why);
}

int qs_h5_read(qs_h5_t *h, const char *name, qs_dtype_t dtype, qs_tensor_t **out)
{
    h5_quiet();
    *out = NULL;
    if (!h)
        return qs_error(QS_ERR_INVALID, "qs_h5_read: no file");
    if (h->failed)
        return failed_error(h);
    char path[1024];
    int rc = norm_name(h, name, path, sizeof path);
    if (rc < 0)
        return rc;
    hid_t mtype = native_type(dtype);
    if (mtype < 0)
        return qs_error(QS_ERR_INVALID, "'%s': dataset '%s': unknown tensor type %d", h->path, path, (int)dtype);
    int found = path_lookup(h->file, path);
    if (found == LOOKUP_MISSING)
        return missing_error(h, "dataset", path);
    if (found != LOOKUP_FOUND)
        return lookup_error(h, path, found);

    hid_t obj = H5Oopen(h->file, path, H5P_DEFAULT);
    if (obj < 0) {
        h5_detail_t d;
        h5_detail(&d);
        return qs_error(QS_ERR_FORMAT, "'%s': cannot open '%s': %s", h->path, path, d.desc);
    }
    if (H5Iget_type(obj) != H5I_DATASET) {
        H5Oclose(obj);
        return qs_error(QS_ERR_FORMAT, "'%s': '%s' is a group, not a dataset", h->path, path);
    }
    hid_t ds = obj, ftype = H5I_INVALID_HID, space = H5I_INVALID_HID, dxpl = H5I_INVALID_HID;
    qs_tensor_t *t = NULL;
    char stored[64] = "?";

    ftype = H5Dget_type(ds);
    space = H5Dget_space(ds);
    if (ftype < 0 || space < 0) {
        h5_detail_t d;
        h5_detail(&d);
        rc = qs_error(QS_ERR_FORMAT, "'%s': dataset '%s' cannot be read: %s", h->path, path, d.desc);
        goto done;
    }
    type_str(ftype, stored, sizeof stored);
    H5T_class_t cls = H5Tget_class(ftype);
    if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
        rc = qs_error(QS_ERR_FORMAT, "'%s': dataset '%s' holds %s, not numbers", h->path, path, class_name(cls));
        goto done;
    }
    H5S_class_t sc = H5Sget_simple_extent_type(space);
    int64_t shape[QS_MAX_DIMS] = {0};
    int ndim = 0;
    if (sc == H5S_NULL) {
        rc = qs_error(QS_ERR_FORMAT, "'%s': dataset '%s' has no data (empty dataspace)", h->path, path);
        goto done;
    } else if (sc == H5S_SIMPLE) {
        ndim = H5Sget_simple_extent_ndims(space);
        if (ndim < 0) {
            rc = qs_error(QS_ERR_FORMAT, "'%s': dataset '%s': unreadable dataspace", h->path, path);
            goto done;
        }
        if (ndim > QS_MAX_DIMS) {
            rc = qs_error(QS_ERR_SHAPE, "'%s': dataset '%s' has %d dimensions; quasar handles at most %d", h->path,
                          path, ndim, QS_MAX_DIMS);
            goto done;
        }
        hsize_t dims[QS_MAX_DIMS];
        H5Sget_simple_extent_dims(space, dims, NULL);
        for (int i = 0; i < ndim; i++) {
            if (dims[i] > (hsize_t)INT64_MAX) {
                rc = qs_error(QS_ERR_SHAPE, "'%s': dataset '%s' is too large", h->path, path);
                goto done;
            }
            shape[i] = (int64_t)dims[i];
        }
    } else if (sc != H5S_SCALAR) {
        rc = qs_error(QS_ERR_FORMAT, "'%s': dataset '%s': unreadable dataspace", h->path, path);
        goto done;
    }
    t = qs_tensor_create(dtype, ndim, shape);
    if (!t) {
        /* the shape shows when a damaged file claims an absurd size */
        char sh[160];
        rc = qs_error_context("'%s': dataset '%s' of shape %s: ", h->path, path,
                              qs_shape_str(ndim, shape, sh, sizeof sh));
        goto done;
    }
    if (t->size > 0) {
        conv_state_t st = {0};
        dxpl = H5Pcreate(H5P_DATASET_XFER);
        if (dxpl < 0 || H5Pset_type_conv_cb(dxpl, conv_cb, &st) < 0) {
            rc = qs_error(QS_ERR_INTERNAL, "'%s': dataset '%s': cannot set up the type conversion", h->path, path);
            goto done;
        }
        if (H5Dread(ds, mtype, H5S_ALL, H5S_ALL, dxpl, t->data) < 0) {
            h5_detail_t d;
            h5_detail(&d);
            if (st.hit)
                rc = conv_error(h, path, dtype, stored, &st);
            else
                rc = qs_error(QS_ERR_FORMAT, "'%s': cannot read dataset '%s' (%s)", h->path, path, d.desc);
            goto done;
        }
    }
    *out = t;
    t = NULL;
    rc = QS_OK;
done:
    qs_tensor_free(t);
    if (dxpl >= 0)
        H5Pclose(dxpl);
    if (space >= 0)
        H5Sclose(space);
    if (ftype >= 0)
        H5Tclose(ftype);
    H5Dclose(ds);
    return rc;
}

int qs_h5_load(const char *path, const char *name, qs_dtype_t dtype, qs_tensor_t **out)
{
    *out = NULL;
    qs_h5_t *h = qs_h5_open(path);
    if (!h)
        return qs_last_status();
    int rc = qs_h5_read(h, name, dtype, out);
    qs_h5_close(h);
    return rc;
}

/* ---- writing ------------------------------------------------------------------- */

#define QS_H5_CHUNK_ABOVE 65536        /* elements: larger tensors are chunked and compressed */
#define QS_H5_CHUNK_BYTES (1024 * 1024) /* fits HDF5's default chunk cache */

static int check_writable(const qs_h5_t *h)
{
    if (!h)
        return qs_error(QS_ERR_INVALID, "no HDF5 file");
    if (!h->writable)
        return qs_error(QS_ERR_INVALID, "'%s' is open for reading only", h->path);
    if (h->failed)
        return failed_error(h);
    return QS_OK;
}

int qs_h5_write(qs_h5_t *h, const char *name, const qs_tensor_t *t)
{
    h5_quiet();
    int rc = check_writable(h);
    if (rc < 0)
        return rc;
    char path[1024];
    rc = norm_name(h, name, path, sizeof path);
    if (rc < 0)
        return rc;
    if (strcmp(path, "/") == 0)
        return qs_error(QS_ERR_INVALID, "'%s': '/' is the root group, not a dataset name", h->path);
    if (!t || t->ndim < 0 || t->ndim > QS_MAX_DIMS || native_type(t->dtype) < 0)
        return qs_error(QS_ERR_INVALID, "'%s': dataset '%s': not a valid tensor", h->path, path);

    if (path_exists(h->file, path)) {
        hid_t o = H5Oopen(h->file, path, H5P_DEFAULT);
        bool is_ds = o >= 0 && H5Iget_type(o) == H5I_DATASET;
        if (o >= 0)
            H5Oclose(o);
        if (!is_ds)
            return qs_error(QS_ERR_INVALID, "'%s': '%s' is a group; it cannot be replaced by a dataset", h->path,
                            path);
        /* replacing: the old dataset's space is not reclaimed until the file
         * is rewritten, which is fine for files written once */
        if (H5Ldelete(h->file, path, H5P_DEFAULT) < 0) {
            h5_detail_t d;
            h5_detail(&d);
            return qs_error(QS_ERR_IO, "'%s': cannot replace dataset '%s': %s", h->path, path, d.desc);
        }
    }

    hid_t space = H5I_INVALID_HID, lcpl = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, ds = H5I_INVALID_HID;
    hsize_t dims[QS_MAX_DIMS], chunk[QS_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++)
        dims[i] = chunk[i] = (hsize_t)t->shape[i];
    space = t->ndim == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(t->ndim, dims, NULL);
    lcpl = H5Pcreate(H5P_LINK_CREATE);
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (space < 0 || lcpl < 0 || dcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0) {
        rc = qs_error(QS_ERR_INTERNAL, "'%s': dataset '%s': cannot set up HDF5 properties", h->path, path);
        goto done;
    }
    if (t->ndim > 0 && t->size > QS_H5_CHUNK_ABOVE) {
        /* halve leading dimensions first, so that a chunk keeps whole rows */
        size_t esize = qs_dtype_size(t->dtype);
        for (;;) {
            hsize_t elems = 1;
            for (int i = 0; i < t->ndim; i++)
                elems *= chunk[i];
            if (elems * esize <= QS_H5_CHUNK_BYTES)
                break;
            int i = 0;
            while (i < t->ndim - 1 && chunk[i] == 1)
                i++;
            chunk[i] = (chunk[i] + 1) / 2;
        }
        if (H5Pset_chunk(dcpl, t->ndim, chunk) < 0 || H5Pset_shuffle(dcpl) < 0 ||
            (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0 && H5Pset_deflate(dcpl, 4) < 0)) {
            rc = qs_error(QS_ERR_INTERNAL, "'%s': dataset '%s': cannot set up compression", h->path, path);
            goto done;
        }
    }
    ds = H5Dcreate2(h->file, path, file_type(t->dtype), space, lcpl, dcpl, H5P_DEFAULT);
    if (ds < 0) {
        h5_detail_t d;
        h5_detail(&d);
        rc = qs_error(QS_ERR_IO, "'%s': cannot create dataset '%s': %s", h->path, path, d.desc);
        goto done;
    }
    if (t->size > 0 && H5Dwrite(ds, native_type(t->dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, t->data) < 0) {
        h5_detail_t d;
        h5_detail(&d);
        rc = qs_error(QS_ERR_IO, "'%s': cannot write dataset '%s': %s", h->path, path, d.desc);
        write_failed(h);
        goto done;
    }
    rc = QS_OK;
done:
    /* closing writes what the chunk cache holds: a failure here is a lost write */
    if (ds >= 0 && H5Dclose(ds) < 0 && rc == QS_OK) {
        h5_detail_t d;
        h5_detail(&d);
        rc = qs_error(QS_ERR_IO, "'%s': cannot write dataset '%s': %s", h->path, path, d.desc);
        write_failed(h);
    }
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (lcpl >= 0)
        H5Pclose(lcpl);
    if (space >= 0)
        H5Sclose(space);
    return rc;
}

/* ---- attributes ------------------------------------------------------------------ */

/* Opens obj ("/" or a name) for its attributes; *path gets the normalized name. */
static hid_t attr_owner(qs_h5_t *h, const char *obj, const char *attr, char *path, size_t n, int missing_code)
{
    if (!attr || !*attr) {
        qs_error(QS_ERR_INVALID, "'%s': empty attribute name", h->path);
        return H5I_INVALID_HID;
    }
    if (!obj || !*obj)
        obj = "/";
    if (norm_name(h, obj, path, n) < 0)
        return H5I_INVALID_HID;
    int found = path_lookup(h->file, path);
    if (found != LOOKUP_FOUND) {
        if (found != LOOKUP_MISSING)
            lookup_error(h, path, found);
        else if (missing_code == QS_ERR_FORMAT)
            missing_error(h, "object", path);
        else
            qs_error(missing_code, "'%s': no object '%s' to hold attribute '%s'", h->path, path, attr);
        return H5I_INVALID_HID;
    }
    hid_t o = H5Oopen(h->file, path, H5P_DEFAULT);
    if (o < 0) {
        h5_detail_t d;
        h5_detail(&d);
        qs_error(QS_ERR_FORMAT, "'%s': cannot open '%s': %s", h->path, path, d.desc);
    }
    return o;
}

static int set_attr(qs_h5_t *h, const char *obj, const char *attr, hid_t ftype, hid_t mtype, const void *buf)
{
    h5_quiet();
    int rc = check_writable(h);
    if (rc < 0)
        return rc;
    char path[1024];
    hid_t o = attr_owner(h, obj, attr, path, sizeof path, QS_ERR_INVALID);
    if (o < 0)
        return qs_last_status();
    hid_t space = H5I_INVALID_HID, a = H5I_INVALID_HID;
    rc = QS_OK;
    htri_t ex = H5Aexists(o, attr);
    if (ex > 0 && H5Adelete(o, attr) < 0)
        ex = -1;
    if (ex < 0) {
        h5_detail_t d;
        h5_detail(&d);
        rc = qs_error(QS_ERR_IO, "'%s': cannot replace attribute '%s' of '%s': %s", h->path, attr, path, d.desc);
        goto done;
    }
    space = H5Screate(H5S_SCALAR);
    a = H5Acreate2(o, attr, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, mtype, buf) < 0) {
        h5_detail_t d;
        h5_detail(&d);
        rc = qs_error(QS_ERR_IO, "'%s': cannot write attribute '%s' of '%s': %s", h->path, attr, path, d.desc);
        if (a >= 0) /* a refused attribute (too large, say) leaves the file as it was */
            write_failed(h);
    }
done:
    if (a >= 0 && H5Aclose(a) < 0 && rc == QS_OK) {
        h5_detail_t d;
        h5_detail(&d);
        rc = qs_error(QS_ERR_IO, "'%s': cannot write attribute '%s' of '%s': %s", h->path, attr, path, d.desc);
        write_failed(h);
    }
    if (space >= 0)
        H5Sclose(space);
    H5Oclose(o);
    return rc;
}

int qs_h5_set_attr_double(qs_h5_t *h, const char *obj, const char *attr, double v)
{
    return set_attr(h, obj, attr, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

int qs_h5_set_attr_int(qs_h5_t *h, const char *obj, const char *attr, int64_t v)
{
    return set_attr(h, obj, attr, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}

int qs_h5_set_attr_str(qs_h5_t *h, const char *obj, const char *attr, const char *v)
{
    if (!v)
        v = "";
    hid_t st = H5Tcopy(H5T_C_S1);
    if (st < 0 || H5Tset_size(st, H5T_VARIABLE) < 0 || H5Tset_cset(st, H5T_CSET_UTF8) < 0) {
        if (st >= 0)
            H5Tclose(st);
        return qs_error(QS_ERR_INTERNAL, "'%s': cannot make a string type", h ? h->path : "?");
    }
    int rc = set_attr(h, obj, attr, st, st, &v);
    H5Tclose(st);
    return rc;
}

/* Opens attribute attr of obj for reading, checking it holds one value. */
static hid_t get_attr(qs_h5_t *h, const char *obj, const char *attr, char *path, size_t n, hid_t *ftype)
{
    h5_quiet();
    *ftype = H5I_INVALID_HID;
    if (!h) {
        qs_error(QS_ERR_INVALID, "no HDF5 file");
        return H5I_INVALID_HID;
    }
    if (h->failed) {
        failed_error(h);
        return H5I_INVALID_HID;
    }
    hid_t o = attr_owner(h, obj, attr, path, n, QS_ERR_FORMAT);
    if (o < 0)
        return H5I_INVALID_HID;
    hid_t a = H5I_INVALID_HID;
    if (H5Aexists(o, attr) <= 0) {
        qs_error(QS_ERR_FORMAT, "'%s': '%s' has no attribute '%s'", h->path, path, attr);
        goto done;
    }
    a = H5Aopen(o, attr, H5P_DEFAULT);
    if (a < 0) {
        h5_detail_t d;
        h5_detail(&d);
        qs_error(QS_ERR_FORMAT, "'%s': cannot open attribute '%s' of '%s': %s", h->path, attr, path, d.desc);
        goto done;
    }
    hid_t space = H5Aget_space(a);
    hssize_t npoints = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    if (space >= 0)
        H5Sclose(space);
    if (npoints != 1) {
        qs_error(QS_ERR_FORMAT, "'%s': attribute '%s' of '%s' holds %lld values, expected one", h->path, attr, path,
                 (long long)npoints);
        H5Aclose(a);
        a = H5I_INVALID_HID;
        goto done;
    }
    *ftype = H5Aget_type(a);
done:
    H5Oclose(o);
    return a;
}

int qs_h5_get_attr_double(qs_h5_t *h, const char *obj, const char *attr, double *v)
{
    char path[1024];
    hid_t ftype;
    hid_t a = get_attr(h, obj, attr, path, sizeof path, &ftype);
    if (a < 0)
        return qs_last_status();
    int rc = QS_OK;
    H5T_class_t cls = H5Tget_class(ftype);
    double x;
    if (cls != H5T_FLOAT && cls != H5T_INTEGER)
        rc = qs_error(QS_ERR_FORMAT, "'%s': attribute '%s' of '%s' holds %s, expected a number", h->path, attr, path,
                      class_name(cls));
    else if (H5Aread(a, H5T_NATIVE_DOUBLE, &x) < 0)
        rc = qs_error(QS_ERR_FORMAT, "'%s': cannot read attribute '%s' of '%s'", h->path, attr, path);
    else
        *v = x;
    H5Tclose(ftype);
    H5Aclose(a);
    return rc;
}

int qs_h5_get_attr_int(qs_h5_t *h, const char *obj, const char *attr, int64_t *v)
{
    char path[1024];
    hid_t ftype;
    hid_t a = get_attr(h, obj, attr, path, sizeof path, &ftype);
    if (a < 0)
        return qs_last_status();
    int rc = QS_OK;
    H5T_class_t cls = H5Tget_class(ftype);
    if (cls == H5T_INTEGER) {
        /* every signed and every unsigned type narrower than 8 bytes fits int64 */
        bool u64 = H5Tget_sign(ftype) == H5T_SGN_NONE && H5Tget_size(ftype) >= 8;
        int64_t x;
        uint64_t ux;
        if (H5Tget_size(ftype) > 8)
            rc = qs_error(QS_ERR_FORMAT, "'%s': attribute '%s' of '%s' is a %zu-byte integer; at most 8 bytes are read",
                          h->path, attr, path, H5Tget_size(ftype));
        else if (H5Aread(a, u64 ? H5T_NATIVE_UINT64 : H5T_NATIVE_INT64, u64 ? (void *)&ux : (void *)&x) < 0)
            rc = qs_error(QS_ERR_FORMAT, "'%s': cannot read attribute '%s' of '%s'", h->path, attr, path);
        else if (u64 && ux > (uint64_t)INT64_MAX)
            rc = qs_error(QS_ERR_FORMAT, "'%s': attribute '%s' of '%s' is %llu, out of the range of int64", h->path,
                          attr, path, (unsigned long long)ux);
        else
            *v = u64 ? (int64_t)ux : x;
    } else if (cls == H5T_FLOAT) {
        /* a float that holds an integer exactly is accepted (some writers store every number as a double) */
        double x;
        if (H5Aread(a, H5T_NATIVE_DOUBLE, &x) < 0)
            rc = qs_error(QS_ERR_FORMAT, "'%s': cannot read attribute '%s' of '%s'", h->path, attr, path);
        else if (!(x == floor(x) && x >= -0x1p63 && x < 0x1p63))
            rc = qs_error(QS_ERR_FORMAT, "'%s': attribute '%s' of '%s' is %.17g, expected an integer", h->path, attr,
                          path, x);
        else
            *v = (int64_t)x;
    } else {
        rc = qs_error(QS_ERR_FORMAT, "'%s': attribute '%s' of '%s' holds %s, expected an integer", h->path, attr,
                      path, class_name(cls));
    }
    H5Tclose(ftype);
    H5Aclose(a);
    return rc;
}

int qs_h5_get_attr_str(qs_h5_t *h, const char *obj, const char *attr, char **v)
{
    *v = NULL;
    char path[1024];
    hid_t ftype;
    hid_t a = get_attr(h, obj, attr, path, sizeof path, &ftype);
    if (a < 0)
        return qs_last_status();
    int rc = QS_OK;
    H5T_class_t cls = H5Tget_class(ftype);
    hid_t mem = H5I_INVALID_HID;
    if (cls != H5T_STRING) {
        rc = qs_error(QS_ERR_FORMAT, "'%s': attribute '%s' of '%s' holds %s, expected a string", h->path, attr, path,
                      class_name(cls));
        goto done;
    }
    mem = H5Tcopy(ftype); /* same size, padding and character set: no conversion */
    if (H5Tis_variable_str(ftype) > 0) {
        char *s = NULL;
        if (mem < 0 || H5Aread(a, mem, &s) < 0) {
            rc = qs_error(QS_ERR_FORMAT, "'%s': cannot read attribute '%s' of '%s'", h->path, attr, path);
            goto done;
        }
        *v = strdup(s ? s : "");
        if (s)
            H5free_memory(s);
    } else {
        size_t size = H5Tget_size(ftype);
        char *buf = calloc(1, size + 1);
        if (!buf) {
            rc = qs_error(QS_ERR_NOMEM, "'%s': out of memory reading attribute '%s' of '%s'", h->path, attr, path);
            goto done;
        }
        if (mem < 0 || H5Aread(a, mem, buf) < 0) {
            free(buf);
            rc = qs_error(QS_ERR_FORMAT, "'%s': cannot read attribute '%s' of '%s'", h->path, attr, path);
            goto done;
        }
        if (H5Tget_strpad(ftype) == H5T_STR_SPACEPAD) {
            size_t n = strlen(buf);
            while (n > 0 && buf[n - 1] == ' ')
                buf[--n] = '\0';
        }
        *v = buf;
    }
    if (!*v)
        rc = qs_error(QS_ERR_NOMEM, "'%s': out of memory reading attribute '%s' of '%s'", h->path, attr, path);
done:
    if (mem >= 0)
        H5Tclose(mem);
    H5Tclose(ftype);
    H5Aclose(a);
    return rc;
}
