/* tests/test_dataset.c — datasets: Fashion-MNIST gzip IDX files (synthetic
 * ones written here, and Debian's when installed), HDF5 datasets, seeded
 * subsets and normalized batches. */
#include "tests/testutil.h"
#include "sim/sim.h"

#include <hdf5.h>
#include <math.h>
#include <string.h>
#include <time.h>

#define SIDE 28
#define PIX (SIDE * SIDE)
#define DEBIAN_DIR "/usr/share/datasets/fashion-mnist"

/* ---- helpers -------------------------------------------------------------------- */

static const char *tmp_dir(char *buf, size_t n, const char *name)
{
    qs_test_path(buf, n, name);
    mkdir(buf, 0777);
    return buf;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* The test links without zlib (libtool does not pass the library's own
 * dependencies to programs), so files are gzipped here, RFC 1952 around
 * RFC 1951 "stored" blocks: what zlib reads is the same as for compressed
 * blocks, and the trailer's CRC-32 and length are checked all the same. */
static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static void write_gz(const char *path, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    static const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    fwrite(hdr, 1, sizeof hdr, f);
    size_t done = 0;
    do {
        size_t len = n - done > 65535 ? 65535 : n - done;
        unsigned char b[5] = {(unsigned char)(done + len == n), (unsigned char)len, (unsigned char)(len >> 8),
                              (unsigned char)~len, (unsigned char)(~len >> 8)};
        fwrite(b, 1, 5, f);
        if (len)
            fwrite(p + done, 1, len, f);
        done += len;
    } while (done < n);
    uint32_t crc = crc32_of(p, n), size = (uint32_t)n;
    unsigned char tr[8] = {(unsigned char)crc, (unsigned char)(crc >> 8), (unsigned char)(crc >> 16),
                           (unsigned char)(crc >> 24), (unsigned char)size, (unsigned char)(size >> 8),
                           (unsigned char)(size >> 16), (unsigned char)(size >> 24)};
    fwrite(tr, 1, 8, f);
    ck_assert_int_eq(fclose(f), 0);
}

static void write_raw(const char *path, const void *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
    fclose(f);
}

static unsigned char *read_raw(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n);
    ck_assert_uint_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static uint8_t pixel(int i, int k) { return (uint8_t)((i * 31 + k * 7 + (k >> 5)) & 255); }
static uint8_t label_of(int i) { return (uint8_t)((i * 3 + 1) % 10); }

/* An IDX image file's bytes: header (magic, n, rows, cols) then `pixels` bytes of pixel(). */
static unsigned char *idx_images(uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols, size_t pixels,
                                 size_t *len)
{
    *len = 16 + pixels;
    unsigned char *b = malloc(*len);
    put_be32(b, magic);
    put_be32(b + 4, n);
    put_be32(b + 8, rows);
    put_be32(b + 12, cols);
    for (size_t p = 0; p < pixels; p++)
        b[16 + p] = pixel((int)(p / PIX), (int)(p % PIX));
    return b;
}

static unsigned char *idx_labels(uint32_t magic, uint32_t n, size_t count, size_t *len)
{
    *len = 8 + count;
    unsigned char *b = malloc(*len);
    put_be32(b, magic);
    put_be32(b + 4, n);
    for (size_t i = 0; i < count; i++)
        b[8 + i] = label_of((int)i);
    return b;
}

static void file_in(char *buf, size_t n, const char *dir, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

/* Removes a split folder made by these tests (the four IDX names, then the folder). */
static void clean_dir(const char *dir)
{
    static const char *const names[] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
    char path[600];
    for (int i = 0; i < 4; i++) {
        file_in(path, sizeof path, dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* A well-formed split ("train" or "t10k") of n images in dir. */
static void write_split(const char *dir, const char *prefix, uint32_t n)
{
    char path[600], name[64];
    size_t len;
    unsigned char *b = idx_images(0x803, n, SIDE, SIDE, (size_t)n * PIX, &len);
    snprintf(name, sizeof name, "%s-images-idx3-ubyte.gz", prefix);
    file_in(path, sizeof path, dir, name);
    write_gz(path, b, len);
    free(b);
    b = idx_labels(0x801, n, n, &len);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte.gz", prefix);
    file_in(path, sizeof path, dir, name);
    write_gz(path, b, len);
    free(b);
}

/* Loading the train split of dir must fail with code and a message containing each of the strings. */
static void expect_fmnist_error(const char *dir, bool train, int code, const char *s1, const char *s2)
{
    qs_dataset_t *d = (qs_dataset_t *)1;
    int rc = qs_dataset_fmnist(dir, train, &d);
    ck_assert_ptr_null(d);
    ck_assert_msg(rc == code, "expected %d, got %d (%s)", code, rc, qs_last_error());
    ck_assert_msg(strstr(qs_last_error(), s1), "message '%s' lacks '%s'", qs_last_error(), s1);
    if (s2)
        ck_assert_msg(strstr(qs_last_error(), s2), "message '%s' lacks '%s'", qs_last_error(), s2);
}

/* A dataset made in memory: image i has pixel 0 = i & 255, pixel 1 = i >> 8, label i % 10. */
static qs_dataset_t *mem_dataset(int64_t n, int64_t c, int64_t h, int64_t w, bool real)
{
    qs_dataset_t *d = calloc(1, sizeof *d);
    d->n = n;
    d->c = c;
    d->h = h;
    d->w = w;
    d->num_classes = 10;
    snprintf(d->source, sizeof d->source, "memory");
    size_t per = (size_t)(c * h * w);
    d->labels = qs_alloc((size_t)n * sizeof(int32_t));
    if (real)
        d->f32 = qs_alloc((size_t)n * per * sizeof(float));
    else
        d->u8 = qs_alloc((size_t)n * per);
    for (int64_t i = 0; i < n; i++) {
        d->labels[i] = (int32_t)(i % 10);
        for (size_t k = 0; k < per; k++) {
            uint8_t v = k == 0 ? (uint8_t)(i & 255) : k == 1 ? (uint8_t)(i >> 8) : (uint8_t)((i * 7 + (int64_t)k * 13) & 255);
            if (real)
                d->f32[(size_t)i * per + k] = (float)v * 0.5f - 3.0f;
            else
                d->u8[(size_t)i * per + k] = v;
        }
    }
    return d;
}

static int64_t image_id(const qs_dataset_t *d, int64_t i)
{
    size_t per = (size_t)(d->c * d->h * d->w);
    if (d->u8)
        return d->u8[(size_t)i * per] | (int64_t)d->u8[(size_t)i * per + 1] << 8;
    return (int64_t)((d->f32[(size_t)i * per] + 3.0f) * 2.0f) | (int64_t)((d->f32[(size_t)i * per + 1] + 3.0f) * 2.0f)
                                                                      << 8;
}

static void graph_for(qs_graph_t *g, int64_t c, int64_t h, int64_t w)
{
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "toy");
    g->in_c = c;
    g->in_h = h;
    g->in_w = w;
    g->input_scale = 1.0f / 255.0f;
    for (int i = 0; i < 8; i++) {
        g->norm_mean[i] = 0.0f;
        g->norm_std[i] = 1.0f;
    }
}

/* ---- Fashion-MNIST IDX ------------------------------------------------------------- */

START_TEST(t_idx_roundtrip)
{
    char dir[512];
    tmp_dir(dir, sizeof dir, "fm-ok");
    write_split(dir, "train", 5);
    write_split(dir, "t10k", 3);
    for (int train = 0; train < 2; train++) {
        qs_dataset_t *d = NULL;
        ck_assert_msg(qs_dataset_fmnist(dir, train, &d) == QS_OK, "%s", qs_last_error());
        int n = train ? 5 : 3;
        ck_assert_int_eq(d->n, n);
        ck_assert_int_eq(d->c, 1);
        ck_assert_int_eq(d->h, SIDE);
        ck_assert_int_eq(d->w, SIDE);
        ck_assert_int_eq(d->num_classes, 10);
        ck_assert_ptr_null(d->f32);
        ck_assert_ptr_nonnull(d->u8);
        ck_assert_str_eq(d->source, train ? "fashion-mnist:train" : "fashion-mnist:test");
        for (int i = 0; i < n; i++) {
            ck_assert_int_eq(d->labels[i], label_of(i));
            for (int k = 0; k < PIX; k++)
                REQUIRE_MSG(d->u8[i * PIX + k] == pixel(i, k), "image %d pixel %d", i, k);
        }
        qs_dataset_free(d);
    }
    clean_dir(dir);
}
END_TEST

START_TEST(t_idx_env_and_open)
{
    char dir[512];
    tmp_dir(dir, sizeof dir, "fm-env");
    write_split(dir, "train", 4);
    write_split(dir, "t10k", 2);
    char *old = getenv("QUASAR_FASHION_MNIST") ? strdup(getenv("QUASAR_FASHION_MNIST")) : NULL;
    setenv("QUASAR_FASHION_MNIST", dir, 1);
    qs_dataset_t *d = NULL;
    ck_assert_int_eq(qs_dataset_fmnist(NULL, true, &d), QS_OK);
    ck_assert_int_eq(d->n, 4);
    qs_dataset_free(d);
    ck_assert_int_eq(qs_dataset_open("fmnist:train", &d), QS_OK);
    ck_assert_int_eq(d->n, 4);
    ck_assert_str_eq(d->source, "fashion-mnist:train");
    qs_dataset_free(d);
    ck_assert_int_eq(qs_dataset_open("fmnist:test", &d), QS_OK);
    ck_assert_int_eq(d->n, 2);
    qs_dataset_free(d);
    ck_assert_int_eq(qs_dataset_open("fmnist", &d), QS_OK);
    ck_assert_int_eq(d->n, 2);
    ck_assert_str_eq(d->source, "fashion-mnist:test");
    qs_dataset_free(d);
    /* an explicit folder wins over the variable */
    char other[512];
    tmp_dir(other, sizeof other, "fm-env-other");
    write_split(other, "t10k", 7);
    ck_assert_int_eq(qs_dataset_fmnist(other, false, &d), QS_OK);
    ck_assert_int_eq(d->n, 7);
    qs_dataset_free(d);
    /* a missing folder named by the variable says how to install */
    setenv("QUASAR_FASHION_MNIST", "/nonexistent/quasar-fmnist", 1);
    ck_assert_int_eq(qs_dataset_open("fmnist", &d), QS_ERR_IO);
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "/nonexistent/quasar-fmnist"));
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "apt-get install dataset-fashion-mnist"));
    if (old) {
        setenv("QUASAR_FASHION_MNIST", old, 1);
        free(old);
    } else {
        unsetenv("QUASAR_FASHION_MNIST");
    }
    clean_dir(dir);
    clean_dir(other);
}
END_TEST

START_TEST(t_idx_missing)
{
    expect_fmnist_error("/nonexistent/quasar-test-folder", true, QS_ERR_IO, "/nonexistent/quasar-test-folder",
                        "apt-get install dataset-fashion-mnist");
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "QUASAR_FASHION_MNIST"));
    /* the folder is there, the labels are not */
    char dir[512], path[600];
    tmp_dir(dir, sizeof dir, "fm-nolabels");
    write_split(dir, "train", 2);
    file_in(path, sizeof path, dir, "train-labels-idx1-ubyte.gz");
    unlink(path);
    expect_fmnist_error(dir, true, QS_ERR_IO, "train-labels-idx1-ubyte.gz: no such file",
                        "apt-get install dataset-fashion-mnist");
    /* and the test split is not there at all */
    expect_fmnist_error(dir, false, QS_ERR_IO, "t10k-images-idx3-ubyte.gz: no such file", "dataset-fashion-mnist");
    /* a file where the folder should be */
    file_in(path, sizeof path, dir, "train-images-idx3-ubyte.gz");
    expect_fmnist_error(path, true, QS_ERR_IO, "not a folder", NULL);
    clean_dir(dir);
}
END_TEST

START_TEST(t_idx_truncated)
{
    char dir[512], path[600];
    tmp_dir(dir, sizeof dir, "fm-trunc");
    write_split(dir, "train", 60); /* labels for 60 */
    size_t len;
    unsigned char *b = idx_images(0x803, 60, SIDE, SIDE, 1234, &len);
    file_in(path, sizeof path, dir, "train-images-idx3-ubyte.gz");
    write_gz(path, b, len);
    free(b);
    expect_fmnist_error(dir, true, QS_ERR_FORMAT, "train-images-idx3-ubyte.gz: truncated: expected 47040 bytes of pixels, got 1234",
                        dir);
    /* a header cut short */
    b = idx_images(0x803, 60, SIDE, SIDE, 0, &len);
    write_gz(path, b, 9);
    free(b);
    expect_fmnist_error(dir, true, QS_ERR_FORMAT, "truncated: expected a 16-byte IDX header, got 9 bytes", NULL);
    /* labels short */
    write_split(dir, "train", 60);
    b = idx_labels(0x801, 60, 59, &len);
    file_in(path, sizeof path, dir, "train-labels-idx1-ubyte.gz");
    write_gz(path, b, len);
    free(b);
    expect_fmnist_error(dir, true, QS_ERR_FORMAT, "train-labels-idx1-ubyte.gz: truncated: expected 60 bytes of labels, got 59",
                        NULL);
    clean_dir(dir);
}
END_TEST

START_TEST(t_idx_cut_gzip)
{
    /* a partial download: the compressed file itself cut in the middle */
    char dir[512], path[600];
    tmp_dir(dir, sizeof dir, "fm-cut");
    write_split(dir, "train", 40);
    file_in(path, sizeof path, dir, "train-images-idx3-ubyte.gz");
    size_t n;
    unsigned char *b = read_raw(path, &n);
    write_raw(path, b, n / 2);
    expect_fmnist_error(dir, true, QS_ERR_FORMAT, "truncated", "gzip stream is cut short");
    /* only the 8-byte gzip trailer missing: every pixel is there, the check is not */
    write_raw(path, b, n - 8);
    expect_fmnist_error(dir, true, QS_ERR_FORMAT, "truncated", "cut short");
    /* a flipped bit in the compressed data: corrupt, never a crash or a silent success */
    b[n / 2] ^= 0x10;
    write_raw(path, b, n);
    qs_dataset_t *d = NULL;
    int rc = qs_dataset_fmnist(dir, true, &d);
    ck_assert_ptr_null(d);
    ck_assert_msg(rc == QS_ERR_FORMAT, "%d %s", rc, qs_last_error());
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "train-images-idx3-ubyte.gz"));
    /* a wrong CRC in the trailer */
    b[n / 2] ^= 0x10;
    b[n - 6] ^= 0xff;
    write_raw(path, b, n);
    expect_fmnist_error(dir, true, QS_ERR_FORMAT, "corrupt gzip data", NULL);
    free(b);
    clean_dir(dir);
}
END_TEST

START_TEST(t_idx_bad_header)
{
    char dir[512], path[600];
    tmp_dir(dir, sizeof dir, "fm-magic");
    write_split(dir, "train", 3);
    size_t len;
    file_in(path, sizeof path, dir, "train-images-idx3-ubyte.gz");
    unsigned char *b = idx_images(0x804, 3, SIDE, SIDE, 3 * PIX, &len);
    write_gz(path, b, len);
    free(b);
    expect_fmnist_error(dir, true, QS_ERR_FORMAT, "magic number 0x00000804, expected 0x00000803", "train-images");
    /* the label file given where the images go */
    b = idx_labels(0x801, 3, 3, &len);
    write_gz(path, b, len);
    free(b);
    expect_fmnist_error(dir, true, QS_ERR_FORMAT, "not an IDX image file", "0x00000801");
    /* and the other way round */
    write_split(dir, "train", 3);
    b = idx_images(0x803, 3, SIDE, SIDE, 3 * PIX, &len);
    file_in(path, sizeof path, dir, "train-labels-idx1-ubyte.gz");
    write_gz(path, b, len);
    free(b);
    expect_fmnist_error(dir, true, QS_ERR_FORMAT, "train-labels-idx1-ubyte.gz: not an IDX label file", "0x00000803");
    /* images that are not 28 x 28 */
    write_split(dir, "train", 3);
    file_in(path, sizeof path, dir, "train-images-idx3-ubyte.gz");
    b = idx_images(0x803, 3, 27, SIDE, 3 * 27 * SIDE, &len);
    write_gz(path, b, len);
    free(b);
    expect_fmnist_error(dir, true, QS_ERR_FORMAT, "images are 27 x 28, expected 28 x 28", NULL);
    /* no images */
    b = idx_images(0x803, 0, SIDE, SIDE, 0, &len);
    write_gz(path, b, len);
    free(b);
    expect_fmnist_error(dir, true, QS_ERR_FORMAT, "holds no images", NULL);
    /* a count far beyond what the compressed file could hold: an error, not a huge allocation */
    write_split(dir, "train", 3);
    b = idx_images(0x803, 3000000, SIDE, SIDE, 3 * PIX, &len);
    write_gz(path, b, len);
    free(b);
    unsigned char *l = idx_labels(0x801, 3000000, 3, &len);
    file_in(path, sizeof path, dir, "train-labels-idx1-ubyte.gz");
    write_gz(path, l, len);
    free(l);
    expect_fmnist_error(dir, true, QS_ERR_FORMAT, "truncated: expected 2352000000 bytes of pixels, got 2352", NULL);
    clean_dir(dir);
}
END_TEST

START_TEST(t_idx_counts_labels_trailing)
{
    char dir[512], path[600];
    tmp_dir(dir, sizeof dir, "fm-count");
    write_split(dir, "t10k", 3);
    size_t len;
    unsigned char *b = idx_labels(0x801, 2, 2, &len);
    file_in(path, sizeof path, dir, "t10k-labels-idx1-ubyte.gz");
    write_gz(path, b, len);
    free(b);
    expect_fmnist_error(dir, false, QS_ERR_FORMAT, "t10k-images-idx3-ubyte.gz holds 3 images but", "t10k-labels-idx1-ubyte.gz holds 2 labels");
    /* a label of 10 */
    b = idx_labels(0x801, 3, 3, &len);
    b[8 + 1] = 10;
    write_gz(path, b, len);
    expect_fmnist_error(dir, false, QS_ERR_FORMAT, "label 1 is 10, expected 0..9", "t10k-labels");
    b[8 + 1] = 255;
    write_gz(path, b, len);
    expect_fmnist_error(dir, false, QS_ERR_FORMAT, "label 1 is 255", NULL);
    free(b);
    /* trailing data after the declared pixels and after the labels */
    write_split(dir, "t10k", 3);
    b = idx_images(0x803, 3, SIDE, SIDE, 3 * PIX + 5, &len);
    file_in(path, sizeof path, dir, "t10k-images-idx3-ubyte.gz");
    write_gz(path, b, len);
    free(b);
    expect_fmnist_error(dir, false, QS_ERR_FORMAT, "5 bytes of trailing data after the 2352 declared bytes of pixels", NULL);
    write_split(dir, "t10k", 3);
    b = idx_labels(0x801, 3, 4, &len);
    file_in(path, sizeof path, dir, "t10k-labels-idx1-ubyte.gz");
    write_gz(path, b, len);
    free(b);
    expect_fmnist_error(dir, false, QS_ERR_FORMAT, "1 bytes of trailing data after the 3 declared bytes of labels", NULL);
    clean_dir(dir);
}
END_TEST

START_TEST(t_idx_not_gzip)
{
    char dir[512], path[600];
    tmp_dir(dir, sizeof dir, "fm-raw");
    write_split(dir, "train", 2);
    size_t len;
    unsigned char *b = idx_images(0x803, 2, SIDE, SIDE, 2 * PIX, &len);
    file_in(path, sizeof path, dir, "train-images-idx3-ubyte.gz");
    write_raw(path, b, len); /* a valid IDX file, but not compressed */
    free(b);
    expect_fmnist_error(dir, true, QS_ERR_FORMAT, "train-images-idx3-ubyte.gz: not a gzip file", NULL);
    write_raw(path, "", 0);
    expect_fmnist_error(dir, true, QS_ERR_FORMAT, "empty file", NULL);
    /* a folder in place of a file */
    unlink(path);
    mkdir(path, 0777);
    expect_fmnist_error(dir, true, QS_ERR_IO, "is a folder", NULL);
    rmdir(path);
    clean_dir(dir);
}
END_TEST

static uint32_t fnv1a(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

START_TEST(t_idx_debian)
{
    char path[256];
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", DEBIAN_DIR);
    if (access(path, R_OK) != 0) {
        printf("test_dataset: %s absent (apt-get install dataset-fashion-mnist): real-file checks skipped\n", DEBIAN_DIR);
        return;
    }
    qs_dataset_t *d = NULL;
    double t0 = (double)clock() / CLOCKS_PER_SEC;
    ck_assert_msg(qs_dataset_fmnist(DEBIAN_DIR, false, &d) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(d->n, 10000);
    ck_assert_int_eq(d->c, 1);
    ck_assert_int_eq(d->h, 28);
    ck_assert_int_eq(d->w, 28);
    /* the first ten test labels (ankle boot, pullover, trouser, ...) and the first image */
    const int32_t first[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(d->labels[i], first[i]);
    ck_assert_uint_eq(fnv1a(d->u8, PIX), 0x993077dbu);
    int64_t counts[10] = {0};
    for (int64_t i = 0; i < d->n; i++)
        counts[d->labels[i]]++;
    for (int c = 0; c < 10; c++)
        ck_assert_int_eq(counts[c], 1000); /* the test split is balanced */
    qs_dataset_free(d);
    ck_assert_msg(qs_dataset_fmnist(DEBIAN_DIR, true, &d) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(d->n, 60000);
    const int32_t tfirst[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(d->labels[i], tfirst[i]);
    /* the subset docs/datasets.md quotes */
    qs_dataset_t *s = NULL;
    ck_assert_int_eq(qs_dataset_subset(d, 5, 1, &s), QS_OK);
    const int64_t pick[5] = {56051, 22392, 41975, 43218, 43807};
    for (int i = 0; i < 5; i++) {
        ck_assert_mem_eq(s->u8 + i * PIX, d->u8 + pick[i] * PIX, PIX);
        ck_assert_int_eq(s->labels[i], d->labels[pick[i]]);
    }
    ck_assert_str_eq(s->source, "fashion-mnist:train[subset 5 seed 1]");
    qs_dataset_free(s);
    qs_dataset_free(d);
    printf("test_dataset: both Debian Fashion-MNIST splits read in %.2f s of CPU\n",
           (double)clock() / CLOCKS_PER_SEC - t0);

    /* the real (deflate-compressed) test images cut after 100000 bytes, as a failed copy leaves them */
    char dir[512], dst[600];
    tmp_dir(dir, sizeof dir, "fm-debian-cut");
    size_t n;
    unsigned char *b = read_raw(path, &n);
    file_in(dst, sizeof dst, dir, "t10k-images-idx3-ubyte.gz");
    write_raw(dst, b, 100000);
    free(b);
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte.gz", DEBIAN_DIR);
    b = read_raw(path, &n);
    file_in(dst, sizeof dst, dir, "t10k-labels-idx1-ubyte.gz");
    write_raw(dst, b, n);
    free(b);
    expect_fmnist_error(dir, false, QS_ERR_FORMAT, "t10k-images-idx3-ubyte.gz: truncated: expected 7840000 bytes of pixels, got ",
                        "cut short");
    clean_dir(dir);
}
END_TEST

/* ---- HDF5 datasets ----------------------------------------------------------------- */

static void h5_put(hid_t f, const char *name, hid_t ftype, hid_t mtype, int ndim, const hsize_t *dims, const void *buf)
{
    hid_t s = H5Screate_simple(ndim, dims, NULL);
    hid_t ds = H5Dcreate2(f, name, ftype, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(ds, 0);
    ck_assert_int_ge(H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), 0);
    H5Dclose(ds);
    H5Sclose(s);
}

static void h5_attr_int(hid_t f, const char *obj, const char *name, int v)
{
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate_by_name(f, obj, name, H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(a, 0);
    H5Awrite(a, H5T_NATIVE_INT, &v);
    H5Aclose(a);
    H5Sclose(s);
}

/* A file with /images of type ftype (from mtype data) of shape dims, and n uint8 labels label_of(i). */
static void h5_dataset_file(const char *path, hid_t ftype, hid_t mtype, int ndim, const hsize_t *dims, const void *img,
                            hid_t ltype, int nlabels, const void *labels)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    if (img)
        h5_put(f, "/images", ftype, mtype, ndim, dims, img);
    if (nlabels >= 0) {
        hsize_t ld = (hsize_t)nlabels;
        if (labels) {
            h5_put(f, "/labels", ltype, ltype == H5T_IEEE_F32LE ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT32, 1, &ld, labels);
        } else {
            int32_t *l = malloc((size_t)(nlabels ? nlabels : 1) * sizeof *l);
            for (int i = 0; i < nlabels; i++)
                l[i] = label_of(i);
            h5_put(f, "/labels", ltype, H5T_NATIVE_INT32, 1, &ld, l);
            free(l);
        }
    }
    H5Fclose(f);
}

static void expect_h5_error(const char *path, int code, const char *s1, const char *s2)
{
    qs_dataset_t *d = (qs_dataset_t *)1;
    int rc = qs_dataset_h5(path, &d);
    ck_assert_ptr_null(d);
    ck_assert_msg(rc == code, "expected %d, got %d (%s)", code, rc, qs_last_error());
    ck_assert_msg(strstr(qs_last_error(), path), "message '%s' lacks the file name", qs_last_error());
    ck_assert_msg(strstr(qs_last_error(), s1), "message '%s' lacks '%s'", qs_last_error(), s1);
    if (s2)
        ck_assert_msg(strstr(qs_last_error(), s2), "message '%s' lacks '%s'", qs_last_error(), s2);
}

START_TEST(t_h5_uint8)
{
    char path[512];
    qs_test_path(path, sizeof path, "ds-u8.h5");
    enum { N = 4, C = 2, H = 3, W = 5 };
    uint8_t img[N * C * H * W];
    for (int i = 0; i < N * C * H * W; i++)
        img[i] = (uint8_t)(i * 37 + 11);
    hsize_t dims[4] = {N, C, H, W};
    h5_dataset_file(path, H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, dims, img, H5T_STD_U8LE, N, NULL);
    qs_dataset_t *d = NULL;
    ck_assert_msg(qs_dataset_h5(path, &d) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(d->n, N);
    ck_assert_int_eq(d->c, C);
    ck_assert_int_eq(d->h, H);
    ck_assert_int_eq(d->w, W);
    ck_assert_ptr_null(d->f32);
    ck_assert_mem_eq(d->u8, img, sizeof img);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(d->labels[i], label_of(i));
    /* labels 1, 4, 7, 0: no attribute, so max + 1 */
    ck_assert_int_eq(d->num_classes, 8);
    ck_assert_str_eq(d->source, path);
    qs_dataset_free(d);

    /* rank 3: N x H x W is one channel; int32 pixels 0..255 are pixels too */
    int32_t wide[N * H * W];
    for (int i = 0; i < N * H * W; i++)
        wide[i] = (i * 53) % 256;
    hsize_t d3[3] = {N, H, W};
    h5_dataset_file(path, H5T_STD_I32LE, H5T_NATIVE_INT32, 3, d3, wide, H5T_STD_I64LE, N, NULL);
    ck_assert_msg(qs_dataset_open(path, &d) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(d->c, 1);
    ck_assert_int_eq(d->h, H);
    ck_assert_ptr_nonnull(d->u8);
    for (int i = 0; i < N * H * W; i++)
        ck_assert_int_eq(d->u8[i], wide[i]);
    qs_dataset_free(d);

    /* an int32 pixel of 300 (or -1) cannot be a uint8 pixel */
    wide[7] = 300;
    h5_dataset_file(path, H5T_STD_I32LE, H5T_NATIVE_INT32, 3, d3, wide, H5T_STD_I64LE, N, NULL);
    expect_h5_error(path, QS_ERR_FORMAT, "'/images' holds int32 values outside 0..255", NULL);
    wide[7] = -1;
    h5_dataset_file(path, H5T_STD_I32BE, H5T_NATIVE_INT32, 3, d3, wide, H5T_STD_I64LE, N, NULL);
    expect_h5_error(path, QS_ERR_FORMAT, "outside 0..255", NULL);
    unlink(path);
}
END_TEST

START_TEST(t_h5_float)
{
    char path[512];
    qs_test_path(path, sizeof path, "ds-f32.h5");
    enum { N = 3, C = 3, H = 2, W = 2 };
    float img[N * C * H * W];
    for (int i = 0; i < N * C * H * W; i++)
        img[i] = (float)i * 0.25f - 1.5f;
    hsize_t dims[4] = {N, C, H, W};
    h5_dataset_file(path, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, dims, img, H5T_STD_I32LE, N, NULL);
    qs_dataset_t *d = NULL;
    ck_assert_msg(qs_dataset_h5(path, &d) == QS_OK, "%s", qs_last_error());
    ck_assert_ptr_null(d->u8);
    ck_assert_ptr_nonnull(d->f32);
    ck_assert_int_eq(d->c, C);
    ck_assert_mem_eq(d->f32, img, sizeof img);
    qs_dataset_free(d);
    /* float64 is read as float32 */
    double dimg[N * C * H * W];
    for (int i = 0; i < N * C * H * W; i++)
        dimg[i] = 0.1 * i;
    h5_dataset_file(path, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 4, dims, dimg, H5T_STD_I32LE, N, NULL);
    ck_assert_msg(qs_dataset_h5(path, &d) == QS_OK, "%s", qs_last_error());
    for (int i = 0; i < N * C * H * W; i++)
        ck_assert_float_eq(d->f32[i], (float)dimg[i]);
    qs_dataset_free(d);
    /* written by quasar itself: large enough to be chunked and compressed */
    {
        int64_t shape[4] = {100, 1, 28, 28}, ls = 100;
        qs_tensor_t *t = qs_tensor_create(QS_F32, 4, shape), *l = qs_tensor_create(QS_I64, 1, &ls);
        for (int64_t i = 0; i < t->size; i++)
            qs_f32(t)[i] = (float)(i % 1001) / 7.0f;
        for (int64_t i = 0; i < 100; i++)
            qs_i64(l)[i] = i % 10;
        qs_h5_t *h = qs_h5_create(path);
        ck_assert_int_eq(qs_h5_write(h, "/images", t), QS_OK);
        ck_assert_int_eq(qs_h5_write(h, "/labels", l), QS_OK);
        ck_assert_int_eq(qs_h5_set_attr_int(h, "/labels", "num_classes", 10), QS_OK);
        ck_assert_int_eq(qs_h5_commit(h), QS_OK);
        ck_assert_msg(qs_dataset_h5(path, &d) == QS_OK, "%s", qs_last_error());
        ck_assert_int_eq(d->n, 100);
        ck_assert_int_eq(d->num_classes, 10);
        ck_assert_mem_eq(d->f32, t->data, (size_t)t->size * sizeof(float));
        for (int64_t i = 0; i < 100; i++)
            ck_assert_int_eq(d->labels[i], i % 10);
        qs_dataset_free(d);
        qs_tensor_free(t);
        qs_tensor_free(l);
    }
    /* NaN in an image */
    img[C * H * W + 1] = NAN;
    h5_dataset_file(path, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, dims, img, H5T_STD_I32LE, N, NULL);
    expect_h5_error(path, QS_ERR_NUMERIC, "image 1 holds NaN", NULL);
    unlink(path);
}
END_TEST

START_TEST(t_h5_num_classes)
{
    char path[512];
    qs_test_path(path, sizeof path, "ds-nc.h5");
    uint8_t img[3 * 4] = {0};
    hsize_t dims[3] = {3, 2, 2};
    int32_t lab[3] = {0, 2, 1};
    h5_dataset_file(path, H5T_STD_U8LE, H5T_NATIVE_UINT8, 3, dims, img, H5T_STD_I32LE, 3, lab);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    h5_attr_int(f, "/", "num_classes", 7);
    H5Fclose(f);
    qs_dataset_t *d = NULL;
    ck_assert_msg(qs_dataset_h5(path, &d) == QS_OK, "%s", qs_last_error());
    ck_assert_int_eq(d->num_classes, 7);
    ck_assert_int_eq(d->labels[1], 2);
    qs_dataset_free(d);
    /* on /labels it wins over the root */
    f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    h5_attr_int(f, "/labels", "num_classes", 12);
    H5Fclose(f);
    ck_assert_int_eq(qs_dataset_h5(path, &d), QS_OK);
    ck_assert_int_eq(d->num_classes, 12);
    qs_dataset_free(d);
    /* too small for the labels */
    h5_dataset_file(path, H5T_STD_U8LE, H5T_NATIVE_UINT8, 3, dims, img, H5T_STD_I32LE, 3, lab);
    f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    h5_attr_int(f, "/labels", "num_classes", 2);
    H5Fclose(f);
    expect_h5_error(path, QS_ERR_FORMAT, "label 1 is 2, outside [0, 2)", "num_classes");
    h5_dataset_file(path, H5T_STD_U8LE, H5T_NATIVE_UINT8, 3, dims, img, H5T_STD_I32LE, 3, lab);
    f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    h5_attr_int(f, "/", "num_classes", 0);
    H5Fclose(f);
    expect_h5_error(path, QS_ERR_FORMAT, "attribute 'num_classes' of '/' is 0", NULL);
    unlink(path);
}
END_TEST

START_TEST(t_h5_bad)
{
    char path[512];
    qs_test_path(path, sizeof path, "ds-bad.h5");
    uint8_t img[2 * 3 * 4 * 5 * 2] = {0};
    /* rank 2 and rank 5 */
    hsize_t d2[2] = {4, 5};
    h5_dataset_file(path, H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, d2, img, H5T_STD_I32LE, 4, NULL);
    expect_h5_error(path, QS_ERR_SHAPE, "'/images' has shape [4, 5]; expected N x C x H x W", NULL);
    hsize_t d5[5] = {2, 3, 4, 5, 2};
    h5_dataset_file(path, H5T_STD_U8LE, H5T_NATIVE_UINT8, 5, d5, img, H5T_STD_I32LE, 2, NULL);
    expect_h5_error(path, QS_ERR_SHAPE, "[2, 3, 4, 5, 2]", NULL);
    /* no images at all */
    hsize_t d0[4] = {0, 1, 2, 2};
    h5_dataset_file(path, H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, d0, img, H5T_STD_I32LE, 0, NULL);
    expect_h5_error(path, QS_ERR_SHAPE, "no images", NULL);
    /* labels: wrong length, wrong rank, negative, floats, missing */
    hsize_t d4[4] = {3, 1, 2, 2};
    h5_dataset_file(path, H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, d4, img, H5T_STD_I32LE, 2, NULL);
    expect_h5_error(path, QS_ERR_SHAPE, "'/labels' has shape [2]; expected [3]", NULL);
    int32_t neg[3] = {0, -4, 1};
    h5_dataset_file(path, H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, d4, img, H5T_STD_I32LE, 3, neg);
    expect_h5_error(path, QS_ERR_FORMAT, "label 1 is -4", NULL);
    float fl[3] = {0, 1, 2};
    h5_dataset_file(path, H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, d4, img, H5T_IEEE_F32LE, 3, fl);
    expect_h5_error(path, QS_ERR_FORMAT, "'/labels' holds float32; labels are integers", NULL);
    h5_dataset_file(path, H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, d4, img, H5T_STD_I32LE, -1, NULL);
    expect_h5_error(path, QS_ERR_FORMAT, "no dataset '/labels'", "/images");
    h5_dataset_file(path, 0, 0, 0, NULL, NULL, H5T_STD_I32LE, 3, NULL);
    expect_h5_error(path, QS_ERR_FORMAT, "no dataset '/images'", NULL);
    /* a label too large for int32 */
    {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        h5_put(f, "/images", H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, d4, img);
        int64_t big[3] = {0, INT64_C(1) << 40, 1};
        hsize_t n3 = 3;
        h5_put(f, "/labels", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &n3, big);
        H5Fclose(f);
        expect_h5_error(path, QS_ERR_FORMAT, "'/labels'", NULL);
    }
    /* not HDF5 at all, and no file */
    write_raw(path, "hello, world\n", 13);
    expect_h5_error(path, QS_ERR_FORMAT, "not a readable HDF5 file", NULL);
    unlink(path);
    expect_h5_error(path, QS_ERR_IO, "cannot open", NULL);
}
END_TEST

START_TEST(t_open_forms)
{
    qs_dataset_t *d = (qs_dataset_t *)1;
    ck_assert_int_eq(qs_dataset_open("mnist", &d), QS_ERR_INVALID);
    ck_assert_ptr_null(d);
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "unknown dataset 'mnist'"));
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "fmnist:train"));
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "fmnist:test"));
    ck_assert_ptr_nonnull(strstr(qs_last_error(), ".h5"));
    ck_assert_int_eq(qs_dataset_open("fmnist:valid", &d), QS_ERR_INVALID);
    ck_assert_int_eq(qs_dataset_open("", &d), QS_ERR_INVALID);
    ck_assert_int_eq(qs_dataset_open(NULL, &d), QS_ERR_INVALID);
    ck_assert_int_eq(qs_dataset_open("/nonexistent/x.h5", &d), QS_ERR_IO);
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "/nonexistent/x.h5"));
}
END_TEST

/* ---- subsets ----------------------------------------------------------------------- */

/* docs/datasets.md's rule, written again from the text with one word at a time */
static void doc_subset(int64_t n, int64_t count, uint64_t seed, int64_t *pick)
{
    const uint64_t stream = UINT64_C(0x737562736574);
    int64_t *perm = malloc((size_t)n * sizeof *perm);
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    uint64_t k = 0;
    for (int64_t i = 0; i < count; i++) {
        uint64_t m = (uint64_t)(n - i), j;
        for (;;) {
            uint64_t p = (uint64_t)qs_rng_u32(seed, stream, k++) * m;
            if ((p & 0xffffffffu) >= ((UINT64_C(1) << 32) % m)) {
                j = p >> 32;
                break;
            }
        }
        int64_t t = perm[i];
        perm[i] = perm[i + (int64_t)j];
        perm[i + (int64_t)j] = t;
    }
    memcpy(pick, perm, (size_t)count * sizeof *pick);
    free(perm);
}

START_TEST(t_subset)
{
    qs_dataset_t *d = mem_dataset(1000, 1, 4, 4, false);
    qs_dataset_t *a = NULL, *b = NULL;
    ck_assert_int_eq(qs_dataset_subset(d, 300, 42, &a), QS_OK);
    ck_assert_int_eq(qs_dataset_subset(d, 300, 42, &b), QS_OK);
    ck_assert_int_eq(a->n, 300);
    ck_assert_int_eq(a->c, 1);
    ck_assert_int_eq(a->h, 4);
    ck_assert_int_eq(a->num_classes, 10);
    ck_assert_ptr_nonnull(strstr(a->source, "memory"));
    ck_assert_mem_eq(a->u8, b->u8, 300 * 16);
    ck_assert_mem_eq(a->labels, b->labels, 300 * sizeof(int32_t));
    /* whole images moved with their labels, no image twice, all in range */
    char seen[1000] = {0};
    int64_t want[300];
    doc_subset(1000, 300, 42, want);
    for (int64_t i = 0; i < 300; i++) {
        int64_t id = image_id(a, i);
        ck_assert_int_lt(id, 1000);
        ck_assert_int_eq(seen[id], 0);
        seen[id] = 1;
        ck_assert_int_eq(a->labels[i], id % 10);
        ck_assert_mem_eq(a->u8 + i * 16, d->u8 + id * 16, 16);
        ck_assert_int_eq(id, want[i]);
    }
    /* a smaller count is a prefix of the same shuffle */
    qs_dataset_t *c = NULL;
    ck_assert_int_eq(qs_dataset_subset(d, 7, 42, &c), QS_OK);
    ck_assert_mem_eq(c->u8, a->u8, 7 * 16);
    /* pinned (and reproduced by the Python of docs/datasets.md): the same images on every machine */
    const int64_t fixed[7] = {946, 881, 601, 897, 458, 935, 670};
    for (int i = 0; i < 7; i++)
        ck_assert_int_eq(image_id(c, i), fixed[i]);
    qs_dataset_free(c);
    /* another seed gives another subset */
    ck_assert_int_eq(qs_dataset_subset(d, 300, 43, &c), QS_OK);
    int same = 0;
    for (int64_t i = 0; i < 300; i++)
        same += image_id(c, i) == image_id(a, i);
    ck_assert_int_lt(same, 10);
    qs_dataset_free(c);
    /* all of them: a permutation */
    ck_assert_int_eq(qs_dataset_subset(d, 1000, 1, &c), QS_OK);
    memset(seen, 0, sizeof seen);
    for (int64_t i = 0; i < 1000; i++)
        seen[image_id(c, i)]++;
    for (int64_t i = 0; i < 1000; i++)
        ck_assert_int_eq(seen[i], 1);
    qs_dataset_free(c);
    /* bad counts */
    c = (qs_dataset_t *)1;
    ck_assert_int_eq(qs_dataset_subset(d, 1001, 42, &c), QS_ERR_INVALID);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(strstr(qs_last_error(), "cannot draw a subset of 1001 images from 1000"));
    ck_assert_int_eq(qs_dataset_subset(d, 0, 42, &c), QS_ERR_INVALID);
    ck_assert_int_eq(qs_dataset_subset(d, -3, 42, &c), QS_ERR_INVALID);
    qs_dataset_free(a);
    qs_dataset_free(b);
    qs_dataset_free(d);
}
END_TEST

START_TEST(t_subset_uniform)
{
    /* the first pick over 3000 seeds: each of 3 images about 1000 times
     * (deterministic seeds, so this cannot be flaky); a biased index draw or a
     * stuck stream would show */
    qs_dataset_t *d = mem_dataset(3, 1, 1, 2, false);
    int counts[3] = {0};
    for (uint64_t s = 0; s < 3000; s++) {
        qs_dataset_t *c = NULL;
        ck_assert_int_eq(qs_dataset_subset(d, 1, s, &c), QS_OK);
        counts[image_id(c, 0)]++;
        qs_dataset_free(c);
    }
    for (int i = 0; i < 3; i++)
        ck_assert_msg(counts[i] > 900 && counts[i] < 1100, "image %d picked %d times of 3000", i, counts[i]);
    qs_dataset_free(d);
    /* real images are copied too */
    d = mem_dataset(50, 2, 3, 3, true);
    qs_dataset_t *c = NULL;
    ck_assert_int_eq(qs_dataset_subset(d, 20, 9, &c), QS_OK);
    ck_assert_ptr_null(c->u8);
    int64_t want[20];
    doc_subset(50, 20, 9, want);
    for (int i = 0; i < 20; i++) {
        ck_assert_mem_eq(c->f32 + i * 18, d->f32 + want[i] * 18, 18 * sizeof(float));
        ck_assert_int_eq(c->labels[i], d->labels[want[i]]);
    }
    qs_dataset_free(c);
    qs_dataset_free(d);
}
END_TEST

/* ---- batches ------------------------------------------------------------------------ */

START_TEST(t_batch_u8)
{
    qs_dataset_t *d = mem_dataset(300, 3, 16, 16, false);
    /* every pixel value appears */
    for (int p = 0; p < 256; p++)
        d->u8[5 * 768 + 3 * p] = (uint8_t)p;
    qs_graph_t g;
    graph_for(&g, 3, 16, 16);
    g.norm_mean[0] = 0.2860f;
    g.norm_std[0] = 0.3530f;
    g.norm_mean[1] = 0.5f;
    g.norm_std[1] = 0.25f;
    g.norm_mean[2] = -1.0f;
    g.norm_std[2] = 3.0f;
    int64_t shape[4] = {4, 3, 16, 16};
    qs_tensor_t *x = qs_tensor_create(QS_F32, 4, shape);
    int64_t idx[4] = {5, 0, 299, 5};
    int32_t lab[4];
    ck_assert_msg(qs_dataset_batch(d, &g, 0, idx, 4, x, lab) == QS_OK, "%s", qs_last_error());
    const float *o = qs_f32(x);
    for (int b = 0; b < 4; b++) {
        ck_assert_int_eq(lab[b], d->labels[idx[b]]);
        for (int c = 0; c < 3; c++) {
            for (int k = 0; k < 256; k++) {
                uint8_t p = d->u8[idx[b] * 768 + c * 256 + k];
                float x0 = (float)p * g.input_scale;
                float want = (x0 - g.norm_mean[c]) / g.norm_std[c];
                float got = o[b * 768 + c * 256 + k];
                REQUIRE_MSG(memcmp(&got, &want, 4) == 0, "image %d channel %d pixel %d (%d): %a, want %a", b, c, k, p,
                            got, want);
            }
        }
    }
    /* exact values: 255 * fl32(1/255) rounds to 1.0, so channel 1 maps 255 to 2 and 0 to -2 */
    d->u8[1 * 768 + 256 + 0] = 255;
    d->u8[1 * 768 + 256 + 1] = 0;
    ck_assert_int_eq(qs_dataset_batch(d, &g, 1, NULL, 4, x, NULL), QS_OK);
    ck_assert_float_eq(o[256 + 0], 2.0f);
    ck_assert_float_eq(o[256 + 1], -2.0f);
    /* first..first+count without idx equals the same indices listed */
    qs_tensor_t *y = qs_tensor_create(QS_F32, 4, shape);
    int64_t seq[4] = {1, 2, 3, 4};
    ck_assert_int_eq(qs_dataset_batch(d, &g, 0, seq, 4, y, NULL), QS_OK);
    ck_assert_mem_eq(x->data, y->data, 4 * 768 * sizeof(float));
    /* multiply by input_scale, not divide by 255: they differ for some pixels, and the formula is the product */
    int differ = 0;
    for (int p = 0; p < 256; p++)
        differ += (float)p * (1.0f / 255.0f) != (float)p / 255.0f;
    ck_assert_int_gt(differ, 0);
    qs_tensor_free(x);
    qs_tensor_free(y);
    qs_dataset_free(d);
}
END_TEST

START_TEST(t_batch_f32)
{
    qs_dataset_t *d = mem_dataset(10, 2, 3, 3, true);
    qs_graph_t g;
    graph_for(&g, 2, 3, 3);
    g.input_scale = 1000.0f; /* not applied to real images */
    g.norm_mean[0] = 0.1f;
    g.norm_std[0] = 0.3f;
    g.norm_mean[1] = -2.0f;
    g.norm_std[1] = 7.0f;
    int64_t shape[4] = {3, 2, 3, 3};
    qs_tensor_t *x = qs_tensor_create(QS_F32, 4, shape);
    int32_t lab[3];
    ck_assert_int_eq(qs_dataset_batch(d, &g, 7, NULL, 3, x, lab), QS_OK);
    for (int b = 0; b < 3; b++) {
        ck_assert_int_eq(lab[b], (7 + b) % 10);
        for (int c = 0; c < 2; c++)
            for (int k = 0; k < 9; k++) {
                float v = d->f32[(7 + b) * 18 + c * 9 + k];
                float want = (v - g.norm_mean[c]) / g.norm_std[c];
                float got = qs_f32(x)[b * 18 + c * 9 + k];
                ck_assert_int_eq(memcmp(&got, &want, 4), 0);
            }
    }
    qs_tensor_free(x);
    qs_dataset_free(d);
}
END_TEST

static void expect_batch_error(const qs_dataset_t *d, const qs_graph_t *g, int64_t first, const int64_t *idx,
                               int64_t count, qs_tensor_t *x, int code, const char *s1, const char *s2)
{
    int rc = qs_dataset_batch(d, g, first, idx, count, x, NULL);
    ck_assert_msg(rc == code, "expected %d, got %d (%s)", code, rc, qs_last_error());
    ck_assert_msg(strstr(qs_last_error(), s1), "message '%s' lacks '%s'", qs_last_error(), s1);
    if (s2)
        ck_assert_msg(strstr(qs_last_error(), s2), "message '%s' lacks '%s'", qs_last_error(), s2);
}

START_TEST(t_batch_errors)
{
    qs_dataset_t *d = mem_dataset(10, 1, 28, 28, false);
    qs_graph_t g;
    graph_for(&g, 3, 32, 32);
    int64_t shape[4] = {2, 1, 28, 28};
    qs_tensor_t *x = qs_tensor_create(QS_F32, 4, shape);
    memset(x->data, 0x7f, (size_t)x->size * 4);
    expect_batch_error(d, &g, 0, NULL, 2, x, QS_ERR_SHAPE, "1 x 28 x 28", "model 'toy' expects 3 x 32 x 32");
    graph_for(&g, 1, 28, 28);
    expect_batch_error(d, &g, 0, NULL, 3, x, QS_ERR_SHAPE, "batch tensor is float32 [2, 1, 28, 28], expected float32 [3, 1, 28, 28]", NULL);
    qs_tensor_t *bad = qs_tensor_create(QS_I32, 4, shape);
    expect_batch_error(d, &g, 0, NULL, 2, bad, QS_ERR_SHAPE, "int32", NULL);
    qs_tensor_free(bad);
    int64_t s3[3] = {2, 28, 28};
    bad = qs_tensor_create(QS_F32, 3, s3);
    expect_batch_error(d, &g, 0, NULL, 2, bad, QS_ERR_SHAPE, "[2, 28, 28]", NULL);
    qs_tensor_free(bad);
    int64_t idx[2] = {3, 10};
    expect_batch_error(d, &g, 0, idx, 2, x, QS_ERR_INVALID, "image index 10 (batch entry 1) is outside [0, 10)", NULL);
    idx[1] = -1;
    expect_batch_error(d, &g, 0, idx, 2, x, QS_ERR_INVALID, "image index -1", NULL);
    expect_batch_error(d, &g, 9, NULL, 2, x, QS_ERR_INVALID, "images 9..10 are outside [0, 10)", NULL);
    expect_batch_error(d, &g, -1, NULL, 2, x, QS_ERR_INVALID, "outside", NULL);
    g.norm_std[0] = 0.0f;
    expect_batch_error(d, &g, 0, NULL, 2, x, QS_ERR_NUMERIC, "std 0", NULL);
    /* errors leave the output alone */
    const uint32_t *w = x->data;
    for (int64_t i = 0; i < x->size; i++)
        REQUIRE(w[i] == 0x7f7f7f7fu);
    qs_tensor_free(x);
    qs_dataset_free(d);
}
END_TEST

START_TEST(t_batch_speed)
{
    /* not asserted: how long 10k Fashion-MNIST-sized images take to normalize */
    qs_dataset_t *d = mem_dataset(10000, 1, 28, 28, false);
    qs_graph_t g;
    graph_for(&g, 1, 28, 28);
    g.norm_mean[0] = 0.2860f;
    g.norm_std[0] = 0.3530f;
    int64_t shape[4] = {10000, 1, 28, 28};
    qs_tensor_t *x = qs_tensor_create(QS_F32, 4, shape);
    double t0 = qs_now_s();
    for (int r = 0; r < 5; r++)
        ck_assert_int_eq(qs_dataset_batch(d, &g, 0, NULL, 10000, x, NULL), QS_OK);
    double dt = (qs_now_s() - t0) / 5;
    printf("test_dataset: a batch of 10000 28x28 images in %.2f ms (%.0f Mpixel/s)\n", dt * 1e3, 7.84 / dt);
    qs_tensor_free(x);
    qs_dataset_free(d);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("dataset");
    TCase *tc = tcase_create("idx");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_idx_roundtrip);
    tcase_add_test(tc, t_idx_env_and_open);
    tcase_add_test(tc, t_idx_missing);
    tcase_add_test(tc, t_idx_truncated);
    tcase_add_test(tc, t_idx_cut_gzip);
    tcase_add_test(tc, t_idx_bad_header);
    tcase_add_test(tc, t_idx_counts_labels_trailing);
    tcase_add_test(tc, t_idx_not_gzip);
    tcase_add_test(tc, t_idx_debian);
    suite_add_tcase(s, tc);
    tc = tcase_create("h5");
    tcase_add_test(tc, t_h5_uint8);
    tcase_add_test(tc, t_h5_float);
    tcase_add_test(tc, t_h5_num_classes);
    tcase_add_test(tc, t_h5_bad);
    tcase_add_test(tc, t_open_forms);
    suite_add_tcase(s, tc);
    tc = tcase_create("subset");
    tcase_add_test(tc, t_subset);
    tcase_add_test(tc, t_subset_uniform);
    suite_add_tcase(s, tc);
    tc = tcase_create("batch");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_batch_u8);
    tcase_add_test(tc, t_batch_f32);
    tcase_add_test(tc, t_batch_errors);
    tcase_add_test(tc, t_batch_speed);
    suite_add_tcase(s, tc);
    return s;
}

QS_TEST_MAIN(make_suite)
