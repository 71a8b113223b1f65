/* results/journal.c — the journal: the append-only text file that is a
 * sweep's source of truth (format in docs/results.md). Each finished run
 * appends its layer lines and then its run line with one write, flushed to
 * the disk before the run counts as done; results.h5 is rebuilt from it.
 *
 * A crash can only tear the last line (no newline yet), which the reader
 * ignores; layer lines whose run line never came are ignored too, so a run
 * is in the journal exactly when its run line is. Running a run again (a
 * resumed sweep, an --force) appends it again: the last run line of a hash
 * wins, in the place of the first. */
#define _POSIX_C_SOURCE 200809L
#include "results/results.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOURNAL_HEADER "# quasar journal 1\n"

struct qs_res_journal {
    FILE *f;
    char *path;
    pthread_mutex_t mu; /* one append at a time: each run's lines stay together */
    bool broken;        /* an append failed: part of it may still sit in the stdio buffer */
};

/* ---- text buffer --------------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
    bool failed;
} buf_t;

static void buf_put(buf_t *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void buf_str(buf_t *b, const char *s) { buf_put(b, s, strlen(s)); }

/* Values may hold anything but NUL; the four characters that would break a
 * line or a field (and the escape character itself) are escaped. */
static void buf_escaped(buf_t *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '\\': buf_put(b, "\\\\", 2); break;
        case '\t': buf_put(b, "\\t", 2); break;
        case '\n': buf_put(b, "\\n", 2); break;
        case '\r': buf_put(b, "\\r", 2); break;
        default: buf_put(b, s, 1);
        }
    }
}

static void buf_field(buf_t *b, const char *key, const char *val)
{
    buf_put(b, "\t", 1);
    buf_str(b, key);
    buf_put(b, "=", 1);
    buf_escaped(b, val);
}

/* ---- writing ----------------------------------------------------------------------------------- */

/* A file that does not end in a newline was torn by a crash mid-append:
 * the reader ignores that tail, but the next append would glue its first
 * line onto it and make a malformed line in the middle. Cutting the tail
 * off keeps every later append readable. */
static int cut_torn_tail(int fd, const char *path, off_t size)
{
    off_t end = size;
    char c;
    while (end > 0) {
        if (pread(fd, &c, 1, end - 1) != 1)
            return qs_error(QS_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
        if (c == '\n')
            break;
        end--;
    }
    if (end != size && ftruncate(fd, end) != 0)
        return qs_error(QS_ERR_IO, "%s: cannot cut the torn last line: %s", path, strerror(errno));
    return (int)(end == 0);
}

int qs_res_journal_open(const char *path, qs_res_journal_t **out)
{
    if (!out)
        return qs_error(QS_ERR_INVALID, "journal: no output given");
    *out = NULL;
    if (!path || !*path)
        return qs_error(QS_ERR_INVALID, "journal: no path given");
    int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (fd < 0)
        return qs_error(QS_ERR_IO, "%s: cannot open the journal: %s", path, strerror(errno));
    struct stat st;
    memset(&st, 0, sizeof st);
    int rc = QS_OK;
    if (fstat(fd, &st) != 0)
        rc = qs_error(QS_ERR_IO, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = qs_error(QS_ERR_IO, "%s: not a regular file", path);
    size_t hn = strlen(JOURNAL_HEADER);
    bool empty = st.st_size == 0;
    if (rc == QS_OK && !empty) {
        char head[sizeof JOURNAL_HEADER];
        ssize_t got = pread(fd, head, hn, 0);
        if (got < 0)
            rc = qs_error(QS_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
        else if ((size_t)got < hn && memchr(head, '\n', (size_t)got) == NULL &&
                 memcmp(head, JOURNAL_HEADER, (size_t)got) == 0)
            empty = true; /* a crash while the header was being written: start over */
        else if ((size_t)got < hn || memcmp(head, JOURNAL_HEADER, hn) != 0)
            rc = qs_error(QS_ERR_FORMAT, "%s: not a quasar journal (the first line is not '# quasar journal 1')",
                          path);
        if (rc == QS_OK && !empty && (rc = cut_torn_tail(fd, path, st.st_size)) > 0)
            rc = QS_OK;
        if (rc == QS_OK && empty && ftruncate(fd, 0) != 0)
            rc = qs_error(QS_ERR_IO, "%s: %s", path, strerror(errno));
    }
    if (rc == QS_OK && empty) {
        errno = 0;
        if (write(fd, JOURNAL_HEADER, hn) != (ssize_t)hn || fsync(fd) != 0)
            rc = qs_error(QS_ERR_IO, "%s: cannot write the journal header: %s", path,
                          strerror(errno ? errno : ENOSPC));
    }
    qs_res_journal_t *j = NULL;
    if (rc == QS_OK && (!(j = calloc(1, sizeof *j)) || !(j->path = strdup(path))))
        rc = qs_error(QS_ERR_NOMEM, "out of memory");
    if (rc == QS_OK && !(j->f = fdopen(fd, "a")))
        rc = qs_error(QS_ERR_IO, "%s: %s", path, strerror(errno));
    if (rc == QS_OK && pthread_mutex_init(&j->mu, NULL) != 0) {
        fclose(j->f);
        j->f = NULL;
        fd = -1;
        rc = qs_error(QS_ERR_NOMEM, "journal: cannot create a mutex");
    }
    if (rc < 0) {
        if (j && j->f)
            fclose(j->f);
        else if (fd >= 0)
            close(fd);
        if (j)
            free(j->path);
        free(j);
        return rc;
    }
    *out = j;
    return QS_OK;
}

int qs_res_journal_append(qs_res_journal_t *j, const qs_res_record_t *run, const qs_res_record_t *layers, int nlayers)
{
    if (!j || !run)
        return qs_error(QS_ERR_INVALID, "journal: no journal or run given");
    const char *hash = qs_res_record_get(run, "run");
    if (!hash || !*hash)
        return qs_error(QS_ERR_INVALID, "%s: the run has no 'run' hash", j->path);
    if (nlayers < 0 || (nlayers > 0 && !layers))
        return qs_error(QS_ERR_INVALID, "%s: bad layer count %d", j->path, nlayers);
    /* the whole run in one buffer and one write: concurrent runs (and a
     * crash) cannot interleave or split its lines except at the very end */
    buf_t b = {0};
    for (int l = 0; l < nlayers; l++) {
        buf_str(&b, "layer");
        buf_field(&b, "run", hash);
        for (int i = 0; i < layers[l].n; i++)
            if (strcmp(layers[l].key[i], "run") != 0)
                buf_field(&b, layers[l].key[i], layers[l].val[i]);
        buf_put(&b, "\n", 1);
    }
    buf_str(&b, "run");
    buf_field(&b, "run", hash);
    for (int i = 0; i < run->n; i++)
        if (strcmp(run->key[i], "run") != 0)
            buf_field(&b, run->key[i], run->val[i]);
    buf_put(&b, "\n", 1);
    if (b.failed) {
        free(b.p);
        return qs_error(QS_ERR_NOMEM, "out of memory");
    }
    int rc = QS_OK;
    pthread_mutex_lock(&j->mu);
    errno = 0;
    if (j->broken)
        rc = qs_error(QS_ERR_IO, "%s: an earlier append failed; reopen the journal to go on", j->path);
    else if (fwrite(b.p, 1, b.n, j->f) != b.n || fflush(j->f) != 0)
        rc = qs_error(QS_ERR_IO, "%s: cannot append: %s", j->path, strerror(errno ? errno : EIO));
    else if (fsync(fileno(j->f)) != 0)
        rc = qs_error(QS_ERR_IO, "%s: cannot flush to disk: %s", j->path, strerror(errno));
    /* a partial run may sit in the stdio buffer: appending after it would
     * glue the next run onto it, whereas reopening cuts the torn tail off */
    if (rc < 0)
        j->broken = true;
    pthread_mutex_unlock(&j->mu);
    free(b.p);
    return rc;
}

void qs_res_journal_close(qs_res_journal_t *j)
{
    if (!j)
        return;
    if (j->f)
        fclose(j->f);
    pthread_mutex_destroy(&j->mu);
    free(j->path);
    free(j);
}

/* ---- reading ----------------------------------------------------------------------------------- */

/* A string -> index map (open addressing): a sweep's journal holds thousands
 * of runs and many more layer lines, each looked up by hash. */
typedef struct {
    char **key;
    int *val;
    size_t cap, n;
} map_t;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int map_find(const map_t *m, const char *k)
{
    if (m->cap == 0)
        return -1;
    for (size_t i = hash_str(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->key[i])
            return -1;
        if (strcmp(m->key[i], k) == 0)
            return m->val[i];
    }
}

/* k is borrowed: it must outlive the map */
static int map_put(map_t *m, char *k, int v)
{
    if (2 * (m->n + 1) > m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 64;
        char **key = calloc(cap, sizeof *key);
        int *val = calloc(cap, sizeof *val);
        if (!key || !val) {
            free(key);
            free(val);
            return QS_ERR_NOMEM;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->key[i])
                continue;
            size_t j = hash_str(m->key[i]) & (cap - 1);
            while (key[j])
                j = (j + 1) & (cap - 1);
            key[j] = m->key[i];
            val[j] = m->val[i];
        }
        free(m->key);
        free(m->val);
        m->key = key;
        m->val = val;
        m->cap = cap;
    }
    size_t i = hash_str(k) & (m->cap - 1);
    while (m->key[i])
        i = (i + 1) & (m->cap - 1);
    m->key[i] = k;
    m->val[i] = v;
    m->n++;
    return QS_OK;
}

static void map_free(map_t *m)
{
    free(m->key);
    free(m->val);
}

/* One run hash and what the journal says about it so far. */
typedef struct {
    char *hash;
    qs_res_record_t run;   /* the last run line */
    bool has_run;
    int order;             /* position among runs: that of its first run line */
    qs_res_record_t *pending, *done; /* layer lines since the last run line; those of the last run line */
    int npending, ndone, cap_pending;
} entry_t;

static void free_layers(qs_res_record_t *l, int n)
{
    for (int i = 0; i < n; i++)
        qs_res_record_clear(&l[i]);
    free(l);
}

/* Undoes buf_escaped in place; false on a bad escape. */
static bool unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r != '\\') {
            *w++ = *r;
            continue;
        }
        switch (*++r) {
        case '\\': *w++ = '\\'; break;
        case 't': *w++ = '\t'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        default: return false;
        }
    }
    *w = '\0';
    return true;
}

/* Parses one line (without its newline, modified in place) into kind and
 * rec; an error message names path:lineno. */
static int parse_line(const char *path, int lineno, char *line, bool *is_run, qs_res_record_t *rec)
{
    char *save = NULL;
    char *kind = strtok_r(line, "\t", &save);
    if (!kind)
        return qs_error(QS_ERR_FORMAT, "%s:%d: an empty line", path, lineno);
    if (strcmp(kind, "run") == 0)
        *is_run = true;
    else if (strcmp(kind, "layer") == 0)
        *is_run = false;
    else
        return qs_error(QS_ERR_FORMAT, "%s:%d: unknown line kind '%.40s' (expected run or layer)", path, lineno, kind);
    int nfield = 0;
    for (char *f = strtok_r(NULL, "\t", &save); f; f = strtok_r(NULL, "\t", &save), nfield++) {
        char *eq = strchr(f, '=');
        if (!eq || eq == f)
            return qs_error(QS_ERR_FORMAT, "%s:%d: field %d '%.40s' is not KEY=VALUE", path, lineno, nfield + 1, f);
        *eq = '\0';
        if (qs_res_record_get(rec, f))
            return qs_error(QS_ERR_FORMAT, "%s:%d: key '%.40s' appears twice", path, lineno, f);
        if (!unescape(eq + 1))
            return qs_error(QS_ERR_FORMAT, "%s:%d: key '%.40s': a bad escape (expected \\\\, \\t, \\n or \\r)", path,
                            lineno, f);
        if (!*is_run && nfield == 0 && strcmp(f, "run") != 0)
            return qs_error(QS_ERR_FORMAT, "%s:%d: a layer line must start with run=HASH", path, lineno);
        if (qs_res_record_set(rec, f, eq + 1) < 0)
            return qs_error_context("%s:%d: ", path, lineno);
    }
    const char *h = qs_res_record_get(rec, "run");
    if (!h || !*h)
        return qs_error(QS_ERR_FORMAT, "%s:%d: no run=HASH field", path, lineno);
    return QS_OK;
}

static int read_file(const char *path, char **text, size_t *len)
{
    return qs_file_read(path, "journal", (size_t)1 << 34, text, len);
}

static int journal_parse(const char *path, qs_res_table_t **runs, qs_res_table_t **layers)
{
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, &text, &len);
    if (rc < 0)
        return rc;
    size_t hn = strlen(JOURNAL_HEADER);
    if (len < hn || memcmp(text, JOURNAL_HEADER, hn) != 0) {
        /* a journal that never got past its header (a crash while creating it) is empty */
        bool torn_header = len < hn && memcmp(text, JOURNAL_HEADER, len) == 0;
        free(text);
        if (!torn_header)
            return qs_error(QS_ERR_FORMAT, "%s: not a quasar journal (the first line is not '# quasar journal 1')",
                            path);
        text = NULL;
        len = 0;
    }
    map_t map = {0};
    entry_t *e = NULL;
    int ne = 0, cap_e = 0, nruns = 0;
    int lineno = 1;
    int prev = -1; /* the entry of the previous line if it was a layer line, else -1 */
    for (size_t pos = text ? hn : 0; rc == QS_OK && pos < len;) {
        lineno++;
        char *nl = memchr(text + pos, '\n', len - pos);
        if (!nl)
            break; /* a torn last line: the append it belongs to never finished */
        char *line = text + pos;
        pos = (size_t)(nl - text) + 1;
        if (memchr(line, '\0', (size_t)(nl - line))) {
            rc = qs_error(QS_ERR_FORMAT, "%s:%d: a NUL byte in the line", path, lineno);
            break;
        }
        *nl = '\0';
        if (nl > line && nl[-1] == '\r') /* CRLF line ends (a journal edited elsewhere): values escape their CRs */
            nl[-1] = '\0';
        if (line[0] == '\0' || line[0] == '#')
            continue;
        bool is_run = false;
        qs_res_record_t rec;
        qs_res_record_init(&rec);
        if ((rc = parse_line(path, lineno, line, &is_run, &rec)) < 0) {
            qs_res_record_clear(&rec);
            break;
        }
        const char *hash = qs_res_record_get(&rec, "run");
        int k = map_find(&map, hash);
        if (k < 0) {
            if (ne == cap_e) {
                int cap = cap_e ? 2 * cap_e : 64;
                entry_t *e2 = realloc(e, (size_t)cap * sizeof *e2);
                if (!e2) {
                    qs_res_record_clear(&rec);
                    rc = qs_error(QS_ERR_NOMEM, "out of memory");
                    break;
                }
                e = e2;
                cap_e = cap;
            }
            memset(&e[ne], 0, sizeof e[ne]);
            if (!(e[ne].hash = strdup(hash)) || map_put(&map, e[ne].hash, ne) < 0) {
                free(e[ne].hash);
                qs_res_record_clear(&rec);
                rc = qs_error(QS_ERR_NOMEM, "out of memory");
                break;
            }
            k = ne++;
        }
        entry_t *en = &e[k];
        if (is_run) {
            qs_res_record_clear(&en->run);
            en->run = rec;
            if (!en->has_run)
                en->order = nruns++;
            en->has_run = true;
            free_layers(en->done, en->ndone);
            en->done = en->pending;
            en->ndone = en->npending;
            en->pending = NULL;
            en->npending = en->cap_pending = 0;
        } else if (layers) {
            /* one append writes a run's layer lines together: layer lines of this run that do not
             * follow directly are left from an append that never finished (a crash between the
             * writes of a long append), and this append replaces them */
            if (prev != k) {
                free_layers(en->pending, en->npending);
                en->pending = NULL;
                en->npending = en->cap_pending = 0;
            }
            if (en->npending == en->cap_pending) {
                int cap = en->cap_pending ? 2 * en->cap_pending : 16;
                qs_res_record_t *p2 = realloc(en->pending, (size_t)cap * sizeof *p2);
                if (!p2) {
                    qs_res_record_clear(&rec);
                    rc = qs_error(QS_ERR_NOMEM, "out of memory");
                    break;
                }
                en->pending = p2;
                en->cap_pending = cap;
            }
            en->pending[en->npending++] = rec;
        } else {
            qs_res_record_clear(&rec);
        }
        prev = is_run ? -1 : k;
    }
    /* the runs in the order of their first run line, then their layers in the same order */
    int *order = rc == QS_OK ? malloc(((size_t)nruns + 1) * sizeof *order) : NULL;
    if (rc == QS_OK && !order)
        rc = qs_error(QS_ERR_NOMEM, "out of memory");
    for (int k = 0; rc == QS_OK && k < ne; k++)
        if (e[k].has_run)
            order[e[k].order] = k;
    qs_res_table_t *rt = rc == QS_OK ? qs_res_table_create() : NULL;
    qs_res_table_t *lt = rc == QS_OK && layers ? qs_res_table_create() : NULL;
    if (rc == QS_OK && (!rt || (layers && !lt)))
        rc = QS_ERR_NOMEM;
    if (rc == QS_OK && qs_res_table_add_col(rt, "run") < 0)
        rc = QS_ERR_NOMEM;
    if (rc == QS_OK && lt && qs_res_table_add_col(lt, "run") < 0)
        rc = QS_ERR_NOMEM;
    for (int i = 0; rc == QS_OK && i < nruns; i++) {
        entry_t *en = &e[order[i]];
        if (qs_res_table_add_record(rt, &en->run) < 0) {
            rc = QS_ERR_NOMEM;
            break;
        }
        for (int l = 0; lt && l < en->ndone; l++)
            if (qs_res_table_add_record(lt, &en->done[l]) < 0) {
                rc = QS_ERR_NOMEM;
                break;
            }
    }
    for (int k = 0; k < ne; k++) {
        free(e[k].hash);
        qs_res_record_clear(&e[k].run);
        free_layers(e[k].pending, e[k].npending);
        free_layers(e[k].done, e[k].ndone);
    }
    free(e);
    free(order);
    map_free(&map);
    free(text);
    if (rc < 0) {
        qs_res_table_free(rt);
        qs_res_table_free(lt);
        return rc;
    }
    *runs = rt;
    if (layers)
        *layers = lt;
    return QS_OK;
}

int qs_res_journal_read(const char *path, qs_res_table_t **runs, qs_res_table_t **layers)
{
    if (!runs)
        return qs_error(QS_ERR_INVALID, "journal: no output given");
    *runs = NULL;
    if (layers)
        *layers = NULL;
    if (!path)
        return qs_error(QS_ERR_INVALID, "journal: no path given");
    return journal_parse(path, runs, layers);
}

int qs_res_journal_hashes(const char *path, char ***hashes, int *n)
{
    if (!hashes || !n || !path)
        return qs_error(QS_ERR_INVALID, "journal: bad arguments");
    *hashes = NULL;
    *n = 0;
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT)
        return QS_OK;
    qs_res_table_t *runs = NULL;
    int rc = journal_parse(path, &runs, NULL);
    if (rc < 0)
        return rc;
    char **h = calloc((size_t)runs->nrows + 1, sizeof *h);
    if (!h) {
        qs_res_table_free(runs);
        return qs_error(QS_ERR_NOMEM, "out of memory");
    }
    int c = qs_res_table_col(runs, "run");
    for (int r = 0; r < runs->nrows; r++) {
        if (!(h[r] = strdup(qs_res_table_get(runs, r, c)))) {
            qs_res_strings_free(h, r);
            qs_res_table_free(runs);
            return qs_error(QS_ERR_NOMEM, "out of memory");
        }
    }
    *n = runs->nrows;
    *hashes = h;
    qs_res_table_free(runs);
    return QS_OK;
}

void qs_res_strings_free(char **s, int n)
{
    if (!s)
        return;
    for (int i = 0; i < n; i++)
        free(s[i]);
    free(s);
}
