/* core/file.c — reading a whole file into memory, the one way every reader
 * of a text file (YAML specs and targets, journals, CSV) does it: messages
 * name the file, a folder is refused as a folder, and a size limit keeps a
 * wrong path (a disk image, a device) from exhausting memory. */
#include "core/core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int qs_file_read(const char *path, const char *what, size_t max, char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return qs_error(QS_ERR_IO, "%s: is a folder, not a %s", path, what);
    FILE *f = fopen(path, "rb");
    if (!f)
        return qs_error(QS_ERR_IO, "%s: cannot open the %s: %s", path, what, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 1 >= cap) { /* room for the NUL that ends the text */
            cap = cap ? 2 * cap : 65536;
            char *nb = cap > max + 2 ? NULL : realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return cap > max + 2 ? qs_error(QS_ERR_FORMAT, "%s: larger than %zu bytes: not a %s", path, max, what)
                                     : qs_error(QS_ERR_NOMEM, "%s: out of memory reading the %s", path, what);
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int e = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (e) {
        free(buf);
        return qs_error(QS_ERR_IO, "%s: cannot read the %s: %s", path, what, strerror(e));
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return QS_OK;
}
