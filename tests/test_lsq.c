/* tests/test_lsq.c — least-squares sign-basis grids: ls-2 and ls-t equal to
 * brute force over every assignment on many short vectors (lengths 1..9,
 * the depthwise case), the orderings ls-2 <= gf-2 <= ls-1 and
 * ls-2 <= ls-t <= ls-1, ls-1's closed form, and on a large Gaussian sample
 * the normalized MSE of ls-2 and ls-t within 1% of the optimal 4-level and
 * 3-level Gaussian quantizers (Max 1960: 0.1175 and 0.1902). */
#include "quasar.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>

/* The least error over every subset of x as the outer (ls-2) or non-zero (ls-t) group,
 * each group at its optimal level (the mean magnitude). */
static double brute(qs_lsq_kind_t kind, const float *x, int n)
{
    double best = INFINITY;
    for (unsigned m = 0; m < (1u << n); m++) {
        double s[2] = {0, 0}, q[2] = {0, 0};
        int c[2] = {0, 0};
        for (int i = 0; i < n; i++) {
            int o = (m >> i) & 1;
            double a = fabs(x[i]);
            s[o] += a, q[o] += a * a, c[o]++;
        }
        double e = 0;
        for (int o = 0; o < 2; o++) {
            if (kind == QS_LSQ_T && o == 0)
                e += q[0]; /* the zero level */
            else if (c[o])
                e += q[o] - s[o] * s[o] / c[o];
        }
        best = e < best ? e : best;
    }
    return best / n;
}

static void random_vec(float *x, int n, uint64_t seed)
{
    for (int i = 0; i < n; i++) {
        double u = qs_rng_uniform(seed, 1, (uint64_t)i), v = qs_rng_uniform(seed, 2, (uint64_t)i);
        x[i] = (float)(sqrt(-2 * log(1 - u)) * cos(2 * M_PI * v) * (seed % 3 + 0.5));
        if (seed % 5 == 0 && i % 3 == 0)
            x[i] = x[0]; /* repeated values: ties at thresholds */
    }
}

static double fit_mse(qs_lsq_kind_t kind, int k, const float *x, int n)
{
    qs_lsq_grid_t g;
    ck_assert_msg(qs_lsq_fit(kind, k, x, n, &g) == QS_OK, "%s", qs_last_error());
    return qs_lsq_mse(&g, x, n);
}

START_TEST(test_exact_against_brute_force)
{
    float x[9];
    for (uint64_t seed = 1; seed <= 3000; seed++) {
        int n = 1 + (int)(seed % 9);
        random_vec(x, n, seed);
        double e2 = fit_mse(QS_LSQ_2, 0, x, n), et = fit_mse(QS_LSQ_T, 0, x, n);
        double b2 = brute(QS_LSQ_2, x, n), bt = brute(QS_LSQ_T, x, n);
        REQUIRE_MSG(fabs(e2 - b2) <= 1e-9 * (1 + b2), "ls-2 seed %llu n %d: %.17g vs brute %.17g",
                    (unsigned long long)seed, n, e2, b2);
        REQUIRE_MSG(fabs(et - bt) <= 1e-9 * (1 + bt), "ls-t seed %llu n %d: %.17g vs brute %.17g",
                    (unsigned long long)seed, n, et, bt);
    }
}
END_TEST

START_TEST(test_orderings)
{
    float x[257];
    for (uint64_t seed = 1; seed <= 300; seed++) {
        int n = 1 + (int)(seed * 7 % 257);
        random_vec(x, n, seed + 10000);
        double l1 = fit_mse(QS_LSQ_1, 0, x, n), g2 = fit_mse(QS_LSQ_GF, 2, x, n), g3 = fit_mse(QS_LSQ_GF, 3, x, n);
        double l2 = fit_mse(QS_LSQ_2, 0, x, n), lt = fit_mse(QS_LSQ_T, 0, x, n);
        const double tol = 1e-12 * (1 + l1);
        REQUIRE_MSG(l2 <= g2 + tol && g2 <= l1 + tol, "seed %llu: ls-2 %g gf-2 %g ls-1 %g", (unsigned long long)seed, l2, g2, l1);
        REQUIRE_MSG(l2 <= lt + tol && lt <= l1 + tol, "seed %llu: ls-2 %g ls-t %g ls-1 %g", (unsigned long long)seed, l2, lt, l1);
        REQUIRE(g3 <= g2 + tol);
    }
    /* ls-1: v = mean |x| */
    const float y[4] = {1, -3, 0.5f, -0.5f};
    qs_lsq_grid_t g;
    ck_assert_int_eq(qs_lsq_fit(QS_LSQ_1, 0, y, 4, &g), QS_OK);
    ck_assert(g.v[0] == 1.25 && qs_lsq_quantize(&g, -0.1) == -1.25 && qs_lsq_quantize(&g, 0) == 1.25);
    /* ls-2 on two clusters: levels at the clusters' magnitudes */
    const float z[6] = {1, -1, 1, 4, -4, 4};
    ck_assert_int_eq(qs_lsq_fit(QS_LSQ_2, 0, z, 6, &g), QS_OK);
    ck_assert(g.v[0] == 2.5 && g.v[1] == 1.5);
    ck_assert(qs_lsq_quantize(&g, 2.5) == 1.0);  /* on the threshold: the smaller level */
    ck_assert(qs_lsq_quantize(&g, -2.6) == -4.0);
    /* bad input */
    const float bad[2] = {1, NAN};
    ck_assert_int_lt(qs_lsq_fit(QS_LSQ_2, 0, bad, 2, &g), 0);
    ck_assert_int_lt(qs_lsq_fit(QS_LSQ_GF, 9, z, 6, &g), 0);
    ck_assert_int_lt(qs_lsq_fit(QS_LSQ_T, 0, z, 0, &g), 0);
}
END_TEST

START_TEST(test_gaussian_optimum)
{
    const int64_t n = 1 << 20;
    float *x = malloc((size_t)n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    double var = 0;
    for (int64_t i = 0; i < n; i++) {
        double u = qs_rng_uniform(3, 1, (uint64_t)i), v = qs_rng_uniform(3, 2, (uint64_t)i);
        x[i] = (float)(sqrt(-2 * log(1 - u)) * cos(2 * M_PI * v));
        var += (double)x[i] * x[i];
    }
    var /= (double)n;
    double e2 = fit_mse(QS_LSQ_2, 0, x, n) / var, et = fit_mse(QS_LSQ_T, 0, x, n) / var;
    ck_assert_msg(fabs(e2 / 0.1175 - 1) < 0.01, "ls-2 normalized MSE %.5f, optimal 4-level 0.1175", e2);
    ck_assert_msg(fabs(et / 0.1902 - 1) < 0.01, "ls-t normalized MSE %.5f, optimal 3-level 0.1902", et);
    free(x);
}
END_TEST

static Suite *lsq_suite(void)
{
    Suite *s = suite_create("lsq");
    TCase *tc = tcase_create("lsq");
    tcase_add_test(tc, test_exact_against_brute_force);
    tcase_add_test(tc, test_orderings);
    tcase_add_test(tc, test_gaussian_optimum);
    suite_add_tcase(s, tc);
    return s;
}

QS_TEST_MAIN(lsq_suite)
