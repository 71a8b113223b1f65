/* cli/json.c — the tiny JSON writer behind every `--json`: one flat object
 * per command, keys from the metric registry plus a few descriptive strings.
 * Numbers are printed in the shortest form that reads back to the same
 * double; NaN and infinities, which JSON cannot hold, are written as null. */
#include "cli/cli.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void qs_json_write_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\b': fputs("\\b", out); break;
        case '\f': fputs("\\f", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            /* other control characters must be escaped; bytes >= 0x80 pass
             * through (file names are taken to be UTF-8) */
            if (*p < 0x20)
                fprintf(out, "\\u%04x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

static void key(qs_json_t *j, const char *k)
{
    fputs(j->count++ ? ", " : "", j->out);
    qs_json_write_string(j->out, k);
    fputs(": ", j->out);
}

void qs_json_begin(qs_json_t *j, FILE *out)
{
    j->out = out;
    j->count = 0;
    fputc('{', out);
}

void qs_json_str(qs_json_t *j, const char *k, const char *value)
{
    key(j, k);
    if (value)
        qs_json_write_string(j->out, value);
    else
        fputs("null", j->out);
}

void qs_json_num(qs_json_t *j, const char *k, double value)
{
    key(j, k);
    if (!isfinite(value)) {
        fputs("null", j->out);
        return;
    }
    /* the shortest form that reads back exactly, without an exponent for
     * integral magnitudes ("1000", not "1e+03") */
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, value);
        if (strtod(buf, NULL) == value && !(strchr(buf, 'e') && fabs(value) >= 1.0 && fabs(value) < 1e17))
            break;
        snprintf(buf, sizeof buf, "%.17g", value);
    }
    fputs(buf, j->out);
}

void qs_json_int(qs_json_t *j, const char *k, int64_t value)
{
    key(j, k);
    fprintf(j->out, "%" PRId64, value);
}

void qs_json_bool(qs_json_t *j, const char *k, bool value)
{
    key(j, k);
    fputs(value ? "true" : "false", j->out);
}

void qs_json_end(qs_json_t *j) { fputs("}\n", j->out); }

int qs_json_metric(qs_json_t *j, const char *name, double value)
{
    if (!qs_metric_find(name))
        return qs_error(QS_ERR_INTERNAL, "metric '%s' is not in the metric registry", name);
    qs_json_num(j, name, value);
    return QS_OK;
}
