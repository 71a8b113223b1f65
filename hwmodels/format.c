/* hwmodels/format.c — the operand format vocabulary of targets and
 * workloads (docs/targets.md, "Formats"), and which formats hold every
 * value of which, the rule a target's "map up" follows. */
#include "hwmodels/hw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    qs_hw_fmt_kind_t kind;
    int bits, e, m;
} named_t;

/* Element bits; a block format's shared scale is counted in the workload's scale_bytes. */
static const named_t named[] = {
    {"binary", QS_HW_FMT_BINARY, 1, 0, 0},
    {"fp32", QS_HW_FMT_FLOAT, 32, 8, 23},
    {"tf32", QS_HW_FMT_FLOAT, 32, 8, 10}, /* stored in 32 bits */
    {"fp16", QS_HW_FMT_FLOAT, 16, 5, 10},
    {"bf16", QS_HW_FMT_FLOAT, 16, 8, 7},
    {"fp8-e4m3", QS_HW_FMT_FLOAT, 8, 4, 3},
    {"fp8-e5m2", QS_HW_FMT_FLOAT, 8, 5, 2},
    {"fp8-e4m3fnuz", QS_HW_FMT_FLOAT, 8, 4, 3},
    {"fp8-e5m2fnuz", QS_HW_FMT_FLOAT, 8, 5, 2},
    {"fp6-e3m2", QS_HW_FMT_FLOAT, 6, 3, 2},
    {"fp6-e2m3", QS_HW_FMT_FLOAT, 6, 2, 3},
    {"fp4-e2m1", QS_HW_FMT_FLOAT, 4, 2, 1},
    {"mxfp8-e4m3", QS_HW_FMT_BLOCK, 8, 4, 3},
    {"mxfp8-e5m2", QS_HW_FMT_BLOCK, 8, 5, 2},
    {"mxfp6-e3m2", QS_HW_FMT_BLOCK, 6, 3, 2},
    {"mxfp6-e2m3", QS_HW_FMT_BLOCK, 6, 2, 3},
    {"mxfp4", QS_HW_FMT_BLOCK, 4, 2, 1},
    {"mxint8", QS_HW_FMT_BLOCK, 8, 0, 7},
    {"nvfp4", QS_HW_FMT_BLOCK, 4, 2, 1},
};

int qs_hw_format_parse(const char *name, qs_hw_format_t *f)
{
    memset(f, 0, sizeof *f);
    if (!name || strlen(name) >= sizeof f->name)
        return qs_error(QS_ERR_INVALID, "format '%s': unknown", name ? name : "");
    snprintf(f->name, sizeof f->name, "%s", name);
    if (strncmp(name, "int", 3) == 0) {
        f->kind = QS_HW_FMT_INT;
        if (strcmp(name + 3, "*") == 0)
            return QS_OK;
        char *end;
        long b = strtol(name + 3, &end, 10);
        if (name[3] >= '1' && name[3] <= '9' && *end == '\0' && b >= 1 && b <= 32) {
            f->bits = (int)b;
            return QS_OK;
        }
        return qs_error(QS_ERR_INVALID, "format '%s': integer formats are int1 .. int32 (or int* for any width)",
                        name);
    }
    for (size_t i = 0; i < sizeof named / sizeof *named; i++)
        if (strcmp(named[i].name, name) == 0) {
            f->kind = named[i].kind;
            f->bits = named[i].bits;
            f->exp_bits = named[i].e;
            f->man_bits = named[i].m;
            return QS_OK;
        }
    char list[512] = "";
    for (size_t i = 0; i < sizeof named / sizeof *named; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), ", %s", named[i].name);
    return qs_error(QS_ERR_INVALID, "format '%s': unknown (expected int1 .. int32, int*%s)", name, list);
}

bool qs_hw_format_fits(const qs_hw_format_t *from, const qs_hw_format_t *to)
{
    if (to->kind == QS_HW_FMT_INT && to->bits == 0) /* int*: any integer width */
        return from->kind == QS_HW_FMT_INT || from->kind == QS_HW_FMT_BINARY;
    switch (from->kind) {
    case QS_HW_FMT_INT:
        /* a float with m mantissa bits holds every integer of magnitude up to 2^(m+1) */
        /* ... and, conservatively, 2^bits within its normal range: bits <= 2^(E-1) - 1 */
        return (to->kind == QS_HW_FMT_INT && to->bits >= from->bits) ||
               (to->kind == QS_HW_FMT_FLOAT && from->bits <= to->man_bits + 1 &&
                from->bits <= (1 << (to->exp_bits - 1)) - 1);
    case QS_HW_FMT_BINARY:
        return to->kind == QS_HW_FMT_BINARY || (to->kind == QS_HW_FMT_INT && to->bits >= 2) ||
               to->kind == QS_HW_FMT_FLOAT;
    case QS_HW_FMT_FLOAT:
        return to->kind == QS_HW_FMT_FLOAT && to->exp_bits >= from->exp_bits && to->man_bits >= from->man_bits;
    case QS_HW_FMT_BLOCK:
        /* a block format runs only on a unit that names it */
        return to->kind == QS_HW_FMT_BLOCK && strcmp(to->name, from->name) == 0;
    }
    return false;
}
