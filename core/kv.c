/* core/kv.c — the one tokenizer of spec words ("key=value,key=value") and
 * the strict value parsers every module uses on them, so that a typo in a
 * spec string gets the same kind of message wherever it is written.
 *
 * Grammar: words separated by ','; white space (spaces, tabs, newlines)
 * around a word, a key or a value is ignored; a word is "key=value" (split
 * at the first '=', so the value keeps any later '=' and every ':' verbatim:
 * "stochastic:42:8") or a bare key. An empty text gives no words; an empty word ("a=1,,b=2", or a
 * trailing comma) is an error, as are an empty key or value, whitespace
 * inside a key or value, a duplicate key and more than QS_KV_MAX words. */
#include "core/core.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *what_or_default(const char *what) { return what && *what ? what : "spec"; }

static bool is_blank(char c) { return isspace((unsigned char)c) != 0; }

/* Trims [*b, *e) of blanks. */
static void trim(const char **b, const char **e)
{
    while (*b < *e && is_blank(**b))
        (*b)++;
    while (*e > *b && is_blank((*e)[-1]))
        (*e)--;
}

static int copy_token(const char *what, const char *role, int pos, const char *b, const char *e, char *dst,
                      size_t cap)
{
    size_t n = (size_t)(e - b);
    for (const char *c = b; c < e; c++) {
        if (isspace((unsigned char)*c) || iscntrl((unsigned char)*c))
            return qs_error(QS_ERR_INVALID, "%s: word %d: unexpected space or control character in %s '%.*s'",
                            what, pos, role, (int)n, b);
    }
    if (n >= cap)
        return qs_error(QS_ERR_INVALID, "%s: word %d: %s '%.*s...' is longer than %zu characters", what, pos, role,
                        20, b, cap - 1);
    memcpy(dst, b, n);
    dst[n] = '\0';
    return QS_OK;
}

int qs_kv_parse(const char *text, const char *what, qs_kv_t *out)
{
    what = what_or_default(what);
    memset(out, 0, sizeof *out);
    if (!text)
        return QS_OK;
    const char *tb = text, *te = text + strlen(text);
    trim(&tb, &te);
    if (tb == te)
        return QS_OK; /* nothing at all: no words */

    int pos = 0;
    const char *p = text;
    for (;;) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        pos++;
        const char *wb = p, *we = end;
        trim(&wb, &we);
        if (wb == we)
            return qs_error(QS_ERR_INVALID, "%s: empty word at position %d", what, pos);
        if (out->count == QS_KV_MAX)
            return qs_error(QS_ERR_INVALID, "%s: more than %d words", what, QS_KV_MAX);

        int i = out->count;
        const char *eq = memchr(wb, '=', (size_t)(we - wb));
        const char *kb = wb, *ke = eq ? eq : we;
        trim(&kb, &ke);
        if (kb == ke)
            return qs_error(QS_ERR_INVALID, "%s: word %d '%.*s' has no key before '='", what, pos, (int)(we - wb), wb);
        int rc = copy_token(what, "key", pos, kb, ke, out->item[i].key, sizeof out->item[i].key);
        if (rc < 0)
            return rc;
        if (eq) {
            const char *vb = eq + 1, *ve = we;
            trim(&vb, &ve);
            if (vb == ve)
                return qs_error(QS_ERR_INVALID, "%s: key '%s' has no value after '='", what, out->item[i].key);
            rc = copy_token(what, "value", pos, vb, ve, out->item[i].value, sizeof out->item[i].value);
            if (rc < 0)
                return rc;
            out->item[i].bare = false;
        } else {
            out->item[i].value[0] = '\0';
            out->item[i].bare = true;
        }
        if (qs_kv_find(out, out->item[i].key) >= 0)
            return qs_error(QS_ERR_INVALID, "%s: duplicate key '%s'", what, out->item[i].key);
        out->count++;

        if (*end == '\0')
            break;
        p = end + 1;
    }
    return QS_OK;
}

int qs_kv_find(const qs_kv_t *kv, const char *key)
{
    if (!kv || !key)
        return -1;
    for (int i = 0; i < kv->count; i++)
        if (strcmp(kv->item[i].key, key) == 0)
            return i;
    return -1;
}

/* "what: key 'k': " or "what: " when there is no key */
static void prefix(char *buf, size_t n, const char *what, const char *key)
{
    if (key && *key)
        snprintf(buf, n, "%s: key '%s'", what_or_default(what), key);
    else
        snprintf(buf, n, "%s", what_or_default(what));
}

int qs_kv_choice(const char *what, const char *key, const char *value, const char *const *choices, int *index)
{
    if (!value)
        value = "";
    for (int i = 0; choices && choices[i]; i++) {
        if (strcmp(choices[i], value) == 0) {
            if (index)
                *index = i;
            return QS_OK;
        }
    }
    char pre[256], list[QS_ERROR_MAX];
    prefix(pre, sizeof pre, what, key);
    size_t used = 0;
    list[0] = '\0';
    for (int i = 0; choices && choices[i] && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", choices[i]);
    return qs_error(QS_ERR_INVALID, "%s: unknown value '%s', expected one of: %s", pre, value, list);
}

int qs_kv_int(const char *what, const char *key, const char *value, int64_t lo, int64_t hi, int64_t *out)
{
    char pre[256];
    prefix(pre, sizeof pre, what, key);
    if (!value)
        value = "";
    const char *s = value;
    if (*s == '+' || *s == '-')
        s++;
    if (!isdigit((unsigned char)*s))
        return qs_error(QS_ERR_INVALID, "%s: expected an integer, got '%s'", pre, value);
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (*end != '\0')
        return qs_error(QS_ERR_INVALID, "%s: expected an integer, got '%s'", pre, value);
    if (errno == ERANGE || v < lo || v > hi)
        return qs_error(QS_ERR_INVALID, "%s: %s is out of range %lld..%lld", pre, value, (long long)lo,
                        (long long)hi);
    *out = (int64_t)v;
    return QS_OK;
}

int qs_kv_double(const char *what, const char *key, const char *value, double lo, double hi, double *out)
{
    char pre[256];
    prefix(pre, sizeof pre, what, key);
    if (!value)
        value = "";
    /* strtod also takes leading spaces, hex floats, "nan" and "inf":
     * a NaN or a hex float is refused; infinity passes only if the range includes it */
    if (*value == '\0' || isspace((unsigned char)*value))
        return qs_error(QS_ERR_INVALID, "%s: expected a number, got '%s'", pre, value);
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (*end != '\0' || isnan(v) || strpbrk(value, "xX"))
        return qs_error(QS_ERR_INVALID, "%s: expected a number, got '%s'", pre, value);
    if (v < lo || v > hi)
        return qs_error(QS_ERR_INVALID, "%s: %s is out of range %g..%g", pre, value, lo, hi);
    *out = v;
    return QS_OK;
}
