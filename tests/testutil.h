/* tests/testutil.h — what every check suite shares: a temp folder and the
 * usual main(). */
#ifndef QS_TESTUTIL_H
#define QS_TESTUTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* A fresh path under $QS_TEST_TMP (default /tmp) for a test file. */
static inline const char *qs_test_path(char *buf, size_t n, const char *name)
{
    const char *dir = getenv("QS_TEST_TMP");
    if (!dir || !*dir)
        dir = "/tmp";
    mkdir(dir, 0777);
    snprintf(buf, n, "%s/%d-%s", dir, (int)getpid(), name);
    return buf;
}

/* check's ck_assert records every passing assertion (through a pipe in fork
 * mode), which costs seconds over the millions of comparisons in loops;
 * these call check only when the condition fails. */
#define REQUIRE(c)                                                                                         \
    do {                                                                                                   \
        if (!(c))                                                                                          \
            ck_abort_msg("assertion '%s' failed", #c);                                                     \
    } while (0)
#define REQUIRE_MSG(c, ...)                                                                                \
    do {                                                                                                   \
        if (!(c))                                                                                          \
            ck_abort_msg(__VA_ARGS__);                                                                     \
    } while (0)

#define QS_TEST_MAIN(make_suite)                                  \
    int main(void)                                                \
    {                                                             \
        SRunner *sr = srunner_create(make_suite());               \
        srunner_run_all(sr, CK_NORMAL);                           \
        int failed = srunner_ntests_failed(sr);                   \
        srunner_free(sr);                                         \
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;         \
    }

#endif
