/* core/status.c — status codes and the per-thread error message.
 * Each thread has its own last error; the thread pool carries a worker's
 * error back to the caller through qs_error_save/qs_error_restore. */
#include "core/core.h"

#include <stdarg.h>
#include <string.h>

static _Thread_local qs_error_state_t tls_err;

int qs_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tls_err.msg, sizeof tls_err.msg, fmt, ap);
    va_end(ap);
    tls_err.code = code;
    return code;
}

int qs_error_context(const char *fmt, ...)
{
    char prefix[QS_ERROR_MAX], old[QS_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, tls_err.msg, sizeof old);
    size_t np = strlen(prefix), no = strlen(old);
    if (np + no >= sizeof tls_err.msg)
        no = sizeof tls_err.msg - 1 - np;
    memcpy(tls_err.msg, prefix, np);
    memcpy(tls_err.msg + np, old, no);
    tls_err.msg[np + no] = '\0';
    if (tls_err.code == QS_OK)
        tls_err.code = QS_ERR_INTERNAL;
    return tls_err.code;
}

const char *qs_last_error(void) { return tls_err.msg; }
int qs_last_status(void) { return tls_err.code; }

void qs_clear_error(void)
{
    tls_err.code = QS_OK;
    tls_err.msg[0] = '\0';
}

const char *qs_status_name(int code)
{
    switch (code) {
    case QS_OK: return "ok";
    case QS_ERR_NOMEM: return "out of memory";
    case QS_ERR_INVALID: return "invalid argument";
    case QS_ERR_IO: return "input/output error";
    case QS_ERR_FORMAT: return "bad file format";
    case QS_ERR_SHAPE: return "wrong shape";
    case QS_ERR_NUMERIC: return "non-finite number";
    case QS_ERR_UNSUPPORTED: return "unsupported";
    case QS_ERR_INTERRUPTED: return "interrupted";
    case QS_ERR_INTERNAL: return "internal error";
    default: return "unknown error";
    }
}

void qs_error_save(qs_error_state_t *st) { *st = tls_err; }
void qs_error_restore(const qs_error_state_t *st) { tls_err = *st; }
