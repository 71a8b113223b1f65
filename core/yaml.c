/* core/yaml.c — YAML documents (experiment specs, hardware targets) as a
 * small tree whose nodes remember their line, so that every message can say
 * "spec.yaml:12: key 'bits': expected an integer, got 'eight'".
 *
 * Parsed with libyaml's event API into our own nodes: scalars (kept as text;
 * the typed getters interpret them), maps (keys must be scalars, duplicates
 * are an error) and sequences. Aliases and anchors' reuse (*name, <<: *name)
 * are refused with a message: specs are meant to be read by people, and a
 * tree without shared nodes is simpler to validate. One document per file.
 *
 * Empty documents: a file with no document at all (empty, or only comments)
 * and a document whose root is a null scalar ("---" alone, "~") both give an
 * empty map as the root, so "nothing set" reads as "all defaults". */
#include "core/core.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define QS_YAML_MAX_DEPTH 200

struct qs_yaml_node {
    qs_yaml_kind_t kind;
    int line;
    char *scalar;     /* QS_YAML_SCALAR */
    bool null_value;  /* an empty or '~'/'null' plain scalar */
    size_t n, cap;    /* entries of a map or sequence */
    char **keys;      /* QS_YAML_MAP */
    int *key_lines;   /* QS_YAML_MAP */
    qs_yaml_node_t **vals;
};

struct qs_yaml_doc {
    char *name;
    qs_yaml_node_t *root;
};

static void node_free(qs_yaml_node_t *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++) {
        if (n->keys)
            free(n->keys[i]);
        node_free(n->vals[i]);
    }
    free(n->keys);
    free(n->key_lines);
    free(n->vals);
    free(n->scalar);
    free(n);
}

static qs_yaml_node_t *node_new(qs_yaml_kind_t kind, int line)
{
    qs_yaml_node_t *n = calloc(1, sizeof *n);
    if (n) {
        n->kind = kind;
        n->line = line;
    }
    return n;
}

static int node_append(qs_yaml_node_t *n, char *key, int key_line, qs_yaml_node_t *val)
{
    if (n->n == n->cap) {
        size_t cap = n->cap ? 2 * n->cap : 8;
        qs_yaml_node_t **v = realloc(n->vals, cap * sizeof *v);
        if (!v)
            return QS_ERR_NOMEM;
        n->vals = v;
        if (n->kind == QS_YAML_MAP) {
            char **k = realloc(n->keys, cap * sizeof *k);
            if (!k)
                return QS_ERR_NOMEM;
            n->keys = k;
            int *kl = realloc(n->key_lines, cap * sizeof *kl);
            if (!kl)
                return QS_ERR_NOMEM;
            n->key_lines = kl;
        }
        n->cap = cap;
    }
    if (n->kind == QS_YAML_MAP) {
        n->keys[n->n] = key;
        n->key_lines[n->n] = key_line;
    }
    n->vals[n->n++] = val;
    return QS_OK;
}

/* ---- parsing ------------------------------------------------------------------------ */

typedef struct {
    yaml_parser_t parser;
    const char *name;
} parse_t;

static int parse_error(parse_t *p)
{
    yaml_parser_t *y = &p->parser;
    if (y->error == YAML_MEMORY_ERROR)
        return qs_error(QS_ERR_NOMEM, "%s: out of memory", p->name);
    if (y->error == YAML_READER_ERROR)
        return qs_error(QS_ERR_FORMAT, "%s: %s (at byte %zu)", p->name, y->problem ? y->problem : "cannot read",
                        y->problem_offset);
    const char *problem = y->problem ? y->problem : "syntax error";
    int line = (int)y->problem_mark.line + 1;
    if (y->context)
        return qs_error(QS_ERR_FORMAT, "%s:%d: %s (%s at line %d)", p->name, line, problem, y->context,
                        (int)y->context_mark.line + 1);
    return qs_error(QS_ERR_FORMAT, "%s:%d: %s", p->name, line, problem);
}

static int next_event(parse_t *p, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&p->parser, ev))
        return parse_error(p);
    return QS_OK;
}

static bool is_null_scalar(const yaml_event_t *ev)
{
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = (const char *)ev->data.scalar.value;
    return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static int parse_node(parse_t *p, yaml_event_t *ev, int depth, qs_yaml_node_t **out);

/* Parses the entries of a map or sequence up to its end event. */
static int parse_children(parse_t *p, qs_yaml_node_t *n, int depth)
{
    for (;;) {
        yaml_event_t ev;
        int rc = next_event(p, &ev);
        if (rc < 0)
            return rc;
        if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return QS_OK;
        }
        char *key = NULL;
        int key_line = 0;
        if (n->kind == QS_YAML_MAP) {
            key_line = (int)ev.start_mark.line + 1;
            if (ev.type == YAML_ALIAS_EVENT) {
                rc = qs_error(QS_ERR_FORMAT, "%s:%d: aliases (*%s) are not supported; write the value out", p->name,
                              key_line, (const char *)ev.data.alias.anchor);
                yaml_event_delete(&ev);
                return rc;
            }
            if (ev.type != YAML_SCALAR_EVENT) {
                yaml_event_delete(&ev);
                return qs_error(QS_ERR_FORMAT, "%s:%d: a key must be a plain word, not a map or a sequence", p->name,
                                key_line);
            }
            key = strdup((const char *)ev.data.scalar.value);
            yaml_event_delete(&ev);
            if (!key)
                return qs_error(QS_ERR_NOMEM, "%s: out of memory", p->name);
            for (size_t i = 0; i < n->n; i++) {
                if (strcmp(n->keys[i], key) == 0) {
                    rc = qs_error(QS_ERR_FORMAT, "%s:%d: duplicate key '%s' (first at line %d)", p->name, key_line,
                                  key, n->key_lines[i]);
                    free(key);
                    return rc;
                }
            }
            rc = next_event(p, &ev);
            if (rc < 0) {
                free(key);
                return rc;
            }
        }
        qs_yaml_node_t *child = NULL;
        rc = parse_node(p, &ev, depth + 1, &child);
        if (rc == QS_OK && node_append(n, key, key_line, child) < 0)
            rc = qs_error(QS_ERR_NOMEM, "%s: out of memory", p->name);
        if (rc < 0) {
            free(key);
            node_free(child);
            return rc;
        }
    }
}

/* Builds the node that starts with ev (which it consumes). */
static int parse_node(parse_t *p, yaml_event_t *ev, int depth, qs_yaml_node_t **out)
{
    *out = NULL;
    int line = (int)ev->start_mark.line + 1;
    int rc = QS_OK;
    if (depth > QS_YAML_MAX_DEPTH) {
        rc = qs_error(QS_ERR_FORMAT, "%s:%d: nested more than %d levels deep", p->name, line, QS_YAML_MAX_DEPTH);
        yaml_event_delete(ev);
        return rc;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        qs_yaml_node_t *n = node_new(QS_YAML_SCALAR, line);
        if (n) {
            n->null_value = is_null_scalar(ev);
            n->scalar = strdup(n->null_value ? "" : (const char *)ev->data.scalar.value);
        }
        if (!n || !n->scalar) {
            node_free(n);
            rc = qs_error(QS_ERR_NOMEM, "%s: out of memory", p->name);
        } else {
            *out = n;
        }
        yaml_event_delete(ev);
        return rc;
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        qs_yaml_node_t *n = node_new(ev->type == YAML_MAPPING_START_EVENT ? QS_YAML_MAP : QS_YAML_SEQ, line);
        yaml_event_delete(ev);
        if (!n)
            return qs_error(QS_ERR_NOMEM, "%s: out of memory", p->name);
        rc = parse_children(p, n, depth);
        if (rc < 0) {
            node_free(n);
            return rc;
        }
        *out = n;
        return QS_OK;
    }
    case YAML_ALIAS_EVENT:
        rc = qs_error(QS_ERR_FORMAT, "%s:%d: aliases (*%s) are not supported; write the value out", p->name, line,
                      (const char *)ev->data.alias.anchor);
        yaml_event_delete(ev);
        return rc;
    default:
        rc = qs_error(QS_ERR_INTERNAL, "%s:%d: unexpected YAML event %d", p->name, line, (int)ev->type);
        yaml_event_delete(ev);
        return rc;
    }
}

/* stream-start, then at most one document, then stream-end */
static int parse_stream(parse_t *p, qs_yaml_node_t **root)
{
    yaml_event_t ev;
    int rc;
    *root = NULL;
    for (;;) {
        rc = next_event(p, &ev);
        if (rc < 0)
            return rc;
        yaml_event_type_t type = ev.type;
        int line = (int)ev.start_mark.line + 1;
        yaml_event_delete(&ev);
        switch (type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            break;
        case YAML_STREAM_END_EVENT:
            return QS_OK;
        case YAML_DOCUMENT_START_EVENT:
            if (*root)
                return qs_error(QS_ERR_FORMAT, "%s:%d: a second document ('---'); one document per file is expected",
                                p->name, line);
            rc = next_event(p, &ev);
            if (rc < 0)
                return rc;
            rc = parse_node(p, &ev, 0, root);
            if (rc < 0)
                return rc;
            break;
        default:
            return qs_error(QS_ERR_INTERNAL, "%s:%d: unexpected YAML event %d", p->name, line, (int)type);
        }
    }
}

qs_yaml_doc_t *qs_yaml_parse(const char *text, size_t len, const char *name)
{
    if (!name || !*name)
        name = "<string>";
    qs_yaml_doc_t *d = calloc(1, sizeof *d);
    if (!d || !(d->name = strdup(name))) {
        free(d);
        qs_error(QS_ERR_NOMEM, "%s: out of memory", name);
        return NULL;
    }
    parse_t p;
    p.name = d->name;
    if (!yaml_parser_initialize(&p.parser)) {
        qs_yaml_free(d);
        qs_error(QS_ERR_NOMEM, "%s: out of memory", name);
        return NULL;
    }
    yaml_parser_set_input_string(&p.parser, (const unsigned char *)(text ? text : ""), text ? len : 0);
    int rc = parse_stream(&p, &d->root);
    yaml_parser_delete(&p.parser);
    if (rc == QS_OK && (!d->root || (d->root->kind == QS_YAML_SCALAR && d->root->null_value))) {
        int line = d->root ? d->root->line : 1;
        node_free(d->root);
        d->root = node_new(QS_YAML_MAP, line);
        if (!d->root)
            rc = qs_error(QS_ERR_NOMEM, "%s: out of memory", name);
    }
    if (rc < 0) {
        qs_yaml_free(d);
        return NULL;
    }
    return d;
}

qs_yaml_doc_t *qs_yaml_load(const char *path)
{
    if (!path || !*path) {
        qs_error(QS_ERR_INVALID, "no YAML file name given");
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0;
    if (qs_file_read(path, "YAML file", 64u << 20, &buf, &len) < 0)
        return NULL;
    qs_yaml_doc_t *d = qs_yaml_parse(buf, len, path);
    free(buf);
    return d;
}

void qs_yaml_free(qs_yaml_doc_t *d)
{
    if (!d)
        return;
    node_free(d->root);
    free(d->name);
    free(d);
}

/* ---- the tree ------------------------------------------------------------------------------ */

const char *qs_yaml_name(const qs_yaml_doc_t *d) { return d ? d->name : ""; }
const qs_yaml_node_t *qs_yaml_root(const qs_yaml_doc_t *d) { return d ? d->root : NULL; }
qs_yaml_kind_t qs_yaml_kind(const qs_yaml_node_t *n) { return n ? n->kind : QS_YAML_SCALAR; }
int qs_yaml_line(const qs_yaml_node_t *n) { return n ? n->line : 0; }
const char *qs_yaml_scalar(const qs_yaml_node_t *n) { return n && n->kind == QS_YAML_SCALAR ? n->scalar : NULL; }
size_t qs_yaml_len(const qs_yaml_node_t *n) { return n && n->kind != QS_YAML_SCALAR ? n->n : 0; }

const qs_yaml_node_t *qs_yaml_at(const qs_yaml_node_t *n, size_t i)
{
    return n && n->kind != QS_YAML_SCALAR && i < n->n ? n->vals[i] : NULL;
}

const char *qs_yaml_key_at(const qs_yaml_node_t *n, size_t i)
{
    return n && n->kind == QS_YAML_MAP && i < n->n ? n->keys[i] : NULL;
}

const qs_yaml_node_t *qs_yaml_get(const qs_yaml_node_t *map, const char *key)
{
    if (!map || map->kind != QS_YAML_MAP || !key)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i], key) == 0)
            return map->vals[i];
    return NULL;
}

/* ---- typed getters ------------------------------------------------------------------------- */

static const char *kind_name(qs_yaml_kind_t k)
{
    return k == QS_YAML_MAP ? "a map" : k == QS_YAML_SEQ ? "a sequence" : "a value";
}

/* Finds key for a typed getter: *val NULL when absent and not required (QS_OK). */
static int lookup(const qs_yaml_doc_t *d, const qs_yaml_node_t *map, const char *key, bool required, const char *what,
                  const qs_yaml_node_t **val)
{
    const char *name = qs_yaml_name(d);
    *val = NULL;
    /* a NULL map is an absent section: all its keys are absent */
    if (map && map->kind != QS_YAML_MAP)
        return qs_error(QS_ERR_FORMAT, "%s:%d: expected a map with key '%s', got %s", name, map->line, key,
                        kind_name(map->kind));
    const qs_yaml_node_t *v = qs_yaml_get(map, key);
    if (!v) {
        if (!required)
            return QS_OK;
        if (map)
            return qs_error(QS_ERR_FORMAT, "%s:%d: missing key '%s'", name, map->line, key);
        return qs_error(QS_ERR_FORMAT, "%s: missing key '%s'", name, key);
    }
    if (v->kind != QS_YAML_SCALAR)
        return qs_error(QS_ERR_FORMAT, "%s:%d: key '%s': expected %s, got %s", name, v->line, key, what,
                        kind_name(v->kind));
    *val = v;
    return QS_OK;
}

int qs_yaml_get_str(const qs_yaml_doc_t *d, const qs_yaml_node_t *map, const char *key, bool required,
                    const char **out)
{
    const qs_yaml_node_t *v;
    int rc = lookup(d, map, key, required, "a string", &v);
    if (rc == QS_OK && v)
        *out = v->scalar;
    return rc;
}

static int no_value(const qs_yaml_doc_t *d, const qs_yaml_node_t *v, const char *key, const char *what)
{
    return qs_error(QS_ERR_FORMAT, "%s:%d: key '%s': expected %s, got no value", qs_yaml_name(d), v->line, key, what);
}

int qs_yaml_get_int(const qs_yaml_doc_t *d, const qs_yaml_node_t *map, const char *key, bool required, int64_t *out)
{
    const qs_yaml_node_t *v;
    int rc = lookup(d, map, key, required, "an integer", &v);
    if (rc < 0 || !v)
        return rc;
    if (v->null_value)
        return no_value(d, v, key, "an integer");
    const char *s = v->scalar, *digits = s + (*s == '+' || *s == '-');
    char *end;
    errno = 0;
    long long x = isdigit((unsigned char)*digits) ? strtoll(s, &end, 10) : 0;
    if (!isdigit((unsigned char)*digits) || *end != '\0')
        return qs_error(QS_ERR_FORMAT, "%s:%d: key '%s': expected an integer, got '%s'", qs_yaml_name(d), v->line, key,
                        s);
    if (errno == ERANGE)
        return qs_error(QS_ERR_FORMAT, "%s:%d: key '%s': %s is out of the range of a 64-bit integer", qs_yaml_name(d),
                        v->line, key, s);
    *out = (int64_t)x;
    return QS_OK;
}

int qs_yaml_get_double(const qs_yaml_doc_t *d, const qs_yaml_node_t *map, const char *key, bool required, double *out)
{
    const qs_yaml_node_t *v;
    int rc = lookup(d, map, key, required, "a number", &v);
    if (rc < 0 || !v)
        return rc;
    if (v->null_value)
        return no_value(d, v, key, "a number");
    const char *s = v->scalar;
    double x;
    /* YAML writes infinities as .inf; NaN is never a meaningful setting */
    if (strcasecmp(s, ".inf") == 0 || strcasecmp(s, "+.inf") == 0) {
        x = INFINITY;
    } else if (strcasecmp(s, "-.inf") == 0) {
        x = -INFINITY;
    } else {
        char *end;
        x = strtod(s, &end);
        if (!*s || isspace((unsigned char)*s) || *end != '\0' || isnan(x) || strpbrk(s, "xX"))
            return qs_error(QS_ERR_FORMAT, "%s:%d: key '%s': expected a number, got '%s'", qs_yaml_name(d), v->line,
                            key, s);
    }
    *out = x;
    return QS_OK;
}

int qs_yaml_get_bool(const qs_yaml_doc_t *d, const qs_yaml_node_t *map, const char *key, bool required, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", NULL};
    static const char *const no[] = {"false", "no", "off", NULL};
    const qs_yaml_node_t *v;
    int rc = lookup(d, map, key, required, "true or false", &v);
    if (rc < 0 || !v)
        return rc;
    for (int i = 0; yes[i]; i++) {
        if (strcasecmp(v->scalar, yes[i]) == 0) {
            *out = true;
            return QS_OK;
        }
        if (strcasecmp(v->scalar, no[i]) == 0) {
            *out = false;
            return QS_OK;
        }
    }
    if (v->null_value)
        return no_value(d, v, key, "true or false");
    return qs_error(QS_ERR_FORMAT, "%s:%d: key '%s': expected true or false, got '%s'", qs_yaml_name(d), v->line, key,
                    v->scalar);
}

/* Edit distance (bounded strings) for "did you mean" hints. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

int qs_yaml_check_keys(const qs_yaml_doc_t *d, const qs_yaml_node_t *map, const char *const *allowed)
{
    if (!map)
        return QS_OK;
    if (map->kind != QS_YAML_MAP)
        return qs_error(QS_ERR_FORMAT, "%s:%d: expected a map, got %s", qs_yaml_name(d), map->line,
                        kind_name(map->kind));
    for (size_t i = 0; i < map->n; i++) {
        bool ok = false;
        for (size_t j = 0; allowed && allowed[j] && !ok; j++)
            ok = strcmp(map->keys[i], allowed[j]) == 0;
        if (ok)
            continue;
        char list[QS_ERROR_MAX / 2];
        size_t used = 0;
        const char *hint = NULL;
        size_t best = 3; /* hint only for up to 2 edits */
        list[0] = '\0';
        for (size_t j = 0; allowed && allowed[j]; j++) {
            if (used < sizeof list)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", j ? ", " : "", allowed[j]);
            size_t e = edit_distance(map->keys[i], allowed[j]);
            if (e < best) {
                best = e;
                hint = allowed[j];
            }
        }
        if (hint)
            return qs_error(QS_ERR_FORMAT, "%s:%d: unknown key '%s' (expected one of: %s); did you mean '%s'?",
                            qs_yaml_name(d), map->key_lines[i], map->keys[i], list, hint);
        return qs_error(QS_ERR_FORMAT, "%s:%d: unknown key '%s' (expected one of: %s)", qs_yaml_name(d),
                        map->key_lines[i], map->keys[i], list);
    }
    return QS_OK;
}
