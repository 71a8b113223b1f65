/* core/progress.c — progress callbacks: how long work reports and how it is
 * cancelled, since nothing below cli/ prints. */
#include "core/core.h"

#include <time.h>

double qs_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void qs_progress_begin(qs_progress_cb_t *cb)
{
    if (cb)
        cb->start_s = qs_now_s();
}

int qs_progress_report(qs_progress_cb_t *cb, const char *task, int64_t done, int64_t total, const char *detail)
{
    if (!cb || !cb->fn)
        return QS_OK;
    qs_progress_t pr;
    pr.task = task ? task : "";
    pr.done = done;
    pr.total = total;
    pr.elapsed_s = qs_now_s() - cb->start_s;
    pr.detail = detail;
    if (cb->fn(&pr, cb->user) != 0)
        return qs_error(QS_ERR_INTERRUPTED, "%s: interrupted", task && *task ? task : "work");
    return QS_OK;
}
