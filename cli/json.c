/* cli/json.c — the tiny JSON writer behind every `--json`: one flat object
 * per command, keys from the metric registry plus a few descriptive strings.
 * Numbers are printed in the shortest form that reads back to the same
 * double; NaN and infinities, which JSON cannot hold, are written as null. */
#include "cli/cli.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0. */
static int utf8_len(const unsigned char *p)
{
    int n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : 0;
    if (p[0] >= 0xf5)
        n = 0;
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && p[0] == 0xe0 && p[1] < 0xa0) || (n == 3 && p[0] == 0xed && p[1] >= 0xa0) ||
        (n == 4 && p[0] == 0xf0 && p[1] < 0x90) || (n == 4 && p[0] == 0xf4 && p[1] >= 0x90))
        return 0;
    return n;
}

void qs_json_write_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x80) {
            /* JSON text is UTF-8: a byte that does not start a well-formed
             * sequence (a file name in another encoding) becomes U+FFFD */
            int n = utf8_len(p);
            if (n == 0) {
                fputs("\\ufffd", out);
            } else {
                fwrite(p, 1, (size_t)n, out);
                p += n - 1;
            }
            continue;
        }
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\b': fputs("\\b", out); break;
        case '\f': fputs("\\f", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            /* other control characters must be escaped */
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
