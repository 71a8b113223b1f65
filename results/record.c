/* results/record.c — a record: the named text cells of one run (or of one
 * layer of a run), in the order they were set. Everything a run produces
 * becomes text here, so that the journal, the tables, CSV and results.h5
 * all carry the same cells; numbers are written so that they read back to
 * the same double. */
#include "results/results.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void qs_res_record_init(qs_res_record_t *r)
{
    if (r)
        memset(r, 0, sizeof *r);
}

void qs_res_record_clear(qs_res_record_t *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n; i++) {
        free(r->key[i]);
        free(r->val[i]);
    }
    free(r->key);
    free(r->val);
    qs_res_record_init(r);
}

/* Keys become journal keys, HDF5 dataset names and CSV headers: a small
 * alphabet keeps every one of those formats simple (no quoting, no '/' or
 * '=' or tab to escape). */
static bool key_ok(const char *k)
{
    if (!k || !*k)
        return false;
    for (const char *p = k; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == ':' || c == '-'))
            return false;
    }
    return true;
}

static int find(const qs_res_record_t *r, const char *key)
{
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->key[i], key) == 0)
            return i;
    return -1;
}

int qs_res_record_set(qs_res_record_t *r, const char *key, const char *val)
{
    if (!r)
        return qs_error(QS_ERR_INVALID, "record: no record given");
    if (!key_ok(key))
        return qs_error(QS_ERR_INVALID, "record: bad key '%s' (expected letters, digits, '_', '.', ':' or '-')",
                        key ? key : "(null)");
    if (!val)
        return qs_error(QS_ERR_INVALID, "record: key '%s': no value given", key);
    char *v = strdup(val);
    if (!v)
        return qs_error(QS_ERR_NOMEM, "out of memory");
    int i = find(r, key);
    if (i >= 0) {
        free(r->val[i]);
        r->val[i] = v;
        return QS_OK;
    }
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 16;
        char **k2 = realloc(r->key, (size_t)cap * sizeof *k2);
        if (k2)
            r->key = k2;
        char **v2 = k2 ? realloc(r->val, (size_t)cap * sizeof *v2) : NULL;
        if (!v2) {
            free(v);
            return qs_error(QS_ERR_NOMEM, "out of memory");
        }
        r->val = v2;
        r->cap = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return qs_error(QS_ERR_NOMEM, "out of memory");
    }
    r->key[r->n] = k;
    r->val[r->n] = v;
    r->n++;
    return QS_OK;
}

int qs_res_record_num(qs_res_record_t *r, const char *key, double v)
{
    char buf[40];
    /* printf gives "-nan" for some NaNs and "inf" spellings vary; fixed
     * spellings keep files comparable and strtod reads all three. */
    if (isnan(v))
        snprintf(buf, sizeof buf, "nan");
    else if (isinf(v))
        snprintf(buf, sizeof buf, "%s", v > 0 ? "inf" : "-inf");
    else
        snprintf(buf, sizeof buf, "%.17g", v);
    return qs_res_record_set(r, key, buf);
}

const char *qs_res_record_get(const qs_res_record_t *r, const char *key)
{
    if (!r || !key)
        return NULL;
    int i = find(r, key);
    return i >= 0 ? r->val[i] : NULL;
}
