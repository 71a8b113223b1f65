/* bench/fakequant.c — fake-quantization throughput against memcpy.
 *
 * A float32 tensor of 64 Mi elements (shape [4096, 16384]; --size N changes
 * the element count) of Gaussian-like values from Philox is fake-quantized
 * into a separate output buffer with precomputed parameters (calibration is
 * not timed):
 *   int8-tensor      int8 symmetric, per tensor, nearest-even
 *   int8-channel     int8 symmetric, per channel on axis 0, nearest-even
 *   int8-stochastic  int8 symmetric, per tensor, stochastic rounding
 * each with a pool of 1 and of 2 threads; and on one thread, the grids
 *   ls-2-ch576       ls-2 per channel on rows of 576 (a 3x3x64 conv's
 *                    reduction), its fit (case ls-2-ch576-fit: sort and
 *                    exact scan per row) and its quantization
 *   fp8-e4m3         fp8-e4m3 behind a per-tensor scale
 *   mxfp4            OCP MXFP4, blocks of 32 along the rows
 * The reference is a single-threaded
 * memcpy of the same buffer into the same output buffer, measured in the same
 * run, and used for both thread counts: ratio_memcpy = t(memcpy) / t(case).
 * Every time is the best of --reps repetitions (default 5).
 *
 * Output: one line per measurement, `bench=fakequant case=... threads=...
 * melem_s=... ratio_memcpy=...`, and a `case=memcpy` line with its own
 * bandwidth; nothing else on stdout (errors go to stderr). */
#include "quant/quant.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [--size ELEMENTS] [--reps R]\n", argv0);
    return 2;
}

/* Approximately N(0, 1): the sum of four uniforms, centred and scaled. */
static void fill_gaussian(float *x, int64_t n)
{
    enum { B = 4096 };
    uint32_t w[4 * B];
    for (int64_t off = 0; off < n; off += B) {
        int64_t m = n - off < B ? n - off : B;
        qs_rng_fill_u32(12345, 0, (uint64_t)off * 4, (size_t)(4 * m), w);
        for (int64_t j = 0; j < m; j++) {
            double u = ((double)w[4 * j] + w[4 * j + 1] + w[4 * j + 2] + w[4 * j + 3]) * 0x1p-32;
            x[off + j] = (float)((u - 2.0) * 1.7320508075688772);
        }
    }
}

static int set_params(const qs_quantizer_t *q, const qs_tensor_t *x, qs_qparams_t *p)
{
    const float *v = qs_f32(x);
    int64_t rows = q->gran.kind == QS_GRAN_CHANNEL ? x->shape[0] : 1;
    int64_t cols = x->size / rows;
    for (int64_t r = 0; r < rows; r++) {
        float lo = 0, hi = 0;
        for (int64_t j = 0; j < cols; j++) {
            float t = v[r * cols + j];
            lo = t < lo ? t : lo;
            hi = t > hi ? t : hi;
        }
        int rc = qs_qparams_from_range(q, lo, hi, &p->scale[r], &p->zero_point[r]);
        if (rc < 0)
            return rc;
    }
    return QS_OK;
}

int main(int argc, char **argv)
{
    int64_t n = INT64_C(64) << 20;
    int reps = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc)
            n = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else
            return usage(argv[0]);
    }
    if (n < 1 || reps < 1)
        return usage(argv[0]);
    /* [4096, n / 4096] when that divides, else one row */
    int64_t shape[2] = {4096, n / 4096};
    if (n % 4096 != 0) {
        shape[0] = 1;
        shape[1] = n;
    }
    qs_tensor_t *x = qs_tensor_create(QS_F32, 2, shape);
    qs_tensor_t *y = qs_tensor_create(QS_F32, 2, shape);
    if (!x || !y) {
        fprintf(stderr, "fakequant: %s\n", qs_last_error());
        return 1;
    }
    fill_gaussian(qs_f32(x), n);
    size_t bytes = (size_t)n * sizeof(float);

    double t_copy = INFINITY;
    memcpy(qs_f32(y), qs_f32(x), bytes); /* first touch of the output pages */
    for (int r = 0; r < reps; r++) {
        double t0 = qs_now_s();
        memcpy(qs_f32(y), qs_f32(x), bytes);
        double t = qs_now_s() - t0;
        t_copy = t < t_copy ? t : t_copy;
    }
    printf("bench=fakequant case=memcpy threads=1 gb_s=%.2f melem_s=%.1f\n", 2.0 * (double)bytes / t_copy * 1e-9,
           (double)n / t_copy * 1e-6);

    static const struct {
        const char *name;
        qs_gran_kind_t gran;
        qs_round_mode_t round;
    } cases[] = {
        {"int8-tensor", QS_GRAN_TENSOR, QS_ROUND_NEAREST_EVEN},
        {"int8-channel", QS_GRAN_CHANNEL, QS_ROUND_NEAREST_EVEN},
        {"int8-stochastic", QS_GRAN_TENSOR, QS_ROUND_STOCHASTIC},
    };
    static const int threads[] = {1, 2};
    int status = 0;
    for (size_t ti = 0; ti < sizeof threads / sizeof *threads && status == 0; ti++) {
        qs_pool_t *pool = qs_pool_create(threads[ti]);
        if (!pool) {
            fprintf(stderr, "fakequant: %s\n", qs_last_error());
            status = 1;
            break;
        }
        for (size_t ci = 0; ci < sizeof cases / sizeof *cases && status == 0; ci++) {
            qs_quantizer_t q;
            qs_quantizer_default(&q);
            q.gran.kind = cases[ci].gran;
            q.gran.axis = 0;
            q.round.mode = cases[ci].round;
            q.round.seed = 1;
            qs_qparams_t *p = NULL;
            if (qs_qparams_create(&q, 2, shape, &p) < 0 || set_params(&q, x, p) < 0 ||
                qs_quantize(&q, p, x, NULL, y, pool, NULL) < 0) {
                fprintf(stderr, "fakequant: %s: %s\n", cases[ci].name, qs_last_error());
                qs_qparams_free(p);
                status = 1;
                break;
            }
            double best = INFINITY;
            for (int r = 0; r < reps; r++) {
                double t0 = qs_now_s();
                qs_quantize(&q, p, x, NULL, y, pool, NULL);
                double t = qs_now_s() - t0;
                best = t < best ? t : best;
            }
            printf("bench=fakequant case=%s threads=%d melem_s=%.1f ratio_memcpy=%.3f\n", cases[ci].name,
                   threads[ti], (double)n / best * 1e-6, t_copy / best);
            fflush(stdout);
            qs_qparams_free(p);
        }
        qs_pool_free(pool);
    }
    /* the grids: the fit timed once, the quantization as the best of reps */
    static const struct {
        const char *name, *spec;
        int64_t row;
    } grids[] = {
        {"ls-2-ch576", "grid=ls-2,gran=channel", 576},
        {"fp8-e4m3", "grid=fp8-e4m3", 0},
        {"mxfp4", "grid=mxfp4", 0},
    };
    for (size_t gi = 0; gi < sizeof grids / sizeof *grids && status == 0; gi++) {
        qs_quantizer_t q;
        qs_quantizer_default(&q);
        qs_tensor_t xv = *x, yv = *y;
        if (grids[gi].row) { /* [n / row, row] */
            xv.ndim = yv.ndim = 2;
            xv.shape[0] = yv.shape[0] = n / grids[gi].row;
            xv.shape[1] = yv.shape[1] = grids[gi].row;
            xv.size = yv.size = xv.shape[0] * grids[gi].row;
        }
        qs_qparams_t *p = NULL;
        double t0 = qs_now_s();
        if (qs_quantizer_parse(grids[gi].spec, "bench", &q) < 0 || qs_calibrate(&q, &xv, &p) < 0) {
            fprintf(stderr, "fakequant: %s: %s\n", grids[gi].name, qs_last_error());
            status = 1;
            break;
        }
        double tfit = qs_now_s() - t0;
        if (grids[gi].row)
            printf("bench=fakequant case=%s-fit threads=1 melem_s=%.1f ratio_memcpy=%.3f\n", grids[gi].name,
                   (double)xv.size / tfit * 1e-6, t_copy * (double)xv.size / (double)n / tfit);
        double best = INFINITY;
        for (int r = 0; r < reps && status == 0; r++) {
            t0 = qs_now_s();
            if (qs_quantize(&q, p, &xv, NULL, &yv, NULL, NULL) < 0) {
                fprintf(stderr, "fakequant: %s: %s\n", grids[gi].name, qs_last_error());
                status = 1;
            }
            double t = qs_now_s() - t0;
            best = t < best ? t : best;
        }
        if (status == 0)
            printf("bench=fakequant case=%s threads=1 melem_s=%.1f ratio_memcpy=%.3f\n", grids[gi].name,
                   (double)xv.size / best * 1e-6, t_copy * (double)xv.size / (double)n / best);
        fflush(stdout);
        qs_qparams_free(p);
    }
    qs_tensor_free(x);
    qs_tensor_free(y);
    return status;
}
