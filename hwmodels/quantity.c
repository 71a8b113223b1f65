/* hwmodels/quantity.c — numbers with units in target files: "2.3 GHz",
 * "48 KiB", "204.8 GB/s", "64 B/cycle", "0.2 pJ", "20 pJ/bit", "270 W",
 * "45 nm", "0.9 V". Decimal prefixes are powers of 1000 (KB = 1000 B), binary
 * ones powers of 1024 (KiB = 1024 B), as IEC 80000-13 defines them. */
#include "hwmodels/hw_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* SI prefix at the start of u for a unit whose symbol follows: the factor and the prefix length. */
static bool si_prefix(const char *u, const char *symbol, double *f)
{
    static const struct {
        const char *p;
        double f;
    } pre[] = {{"f", 1e-15}, {"p", 1e-12}, {"n", 1e-9}, {"u", 1e-6}, {"\xc2\xb5", 1e-6}, {"m", 1e-3},
               {"", 1},      {"k", 1e3},   {"K", 1e3},  {"M", 1e6}, {"G", 1e9},         {"T", 1e12}};
    for (size_t i = 0; i < sizeof pre / sizeof *pre; i++) {
        size_t n = strlen(pre[i].p);
        if (strncmp(u, pre[i].p, n) == 0 && strcmp(u + n, symbol) == 0) {
            *f = pre[i].f;
            return true;
        }
    }
    return false;
}

static bool byte_unit(const char *u, double *f)
{
    static const struct {
        const char *p;
        double f;
    } pre[] = {{"", 1},      {"k", 1e3},           {"K", 1e3},           {"M", 1e6},
               {"G", 1e9},   {"T", 1e12},          {"Ki", 1024.0},       {"Mi", 1048576.0},
               {"Gi", 1073741824.0}, {"Ti", 1099511627776.0}};
    for (size_t i = 0; i < sizeof pre / sizeof *pre; i++) {
        size_t n = strlen(pre[i].p);
        if (strncmp(u, pre[i].p, n) == 0 && (strcmp(u + n, "B") == 0 || (n == 0 && strcmp(u, "bytes") == 0))) {
            *f = pre[i].f;
            return true;
        }
    }
    return false;
}

const char *qs_hw_dim_example(qs_q_dim_t dim)
{
    switch (dim) {
    case QS_Q_NUMBER: return "a number";
    case QS_Q_ENERGY: return "an energy (e.g. 0.2 pJ, 1.3 nJ)";
    case QS_Q_ENERGY_BYTE: return "an energy per byte (e.g. 2.5 pJ/B, 20 pJ/bit)";
    case QS_Q_BYTES: return "a size (e.g. 48 KiB, 40 MB)";
    case QS_Q_BANDWIDTH: return "a bandwidth (e.g. 204.8 GB/s, 64 B/cycle)";
    case QS_Q_FREQUENCY: return "a frequency (e.g. 2.3 GHz)";
    case QS_Q_POWER: return "a power (e.g. 270 W, 50 mW)";
    case QS_Q_LENGTH_NM: return "a technology node (e.g. 45 nm)";
    case QS_Q_VOLTAGE: return "a voltage (e.g. 0.9 V)";
    }
    return "a quantity";
}

static bool unit_factor(const char *u, qs_q_dim_t dim, double *f, bool *per_cycle)
{
    char a[32];
    const char *slash = strchr(u, '/');
    switch (dim) {
    case QS_Q_NUMBER: return false;
    case QS_Q_ENERGY: return si_prefix(u, "J", f);
    case QS_Q_ENERGY_BYTE: {
        if (!slash || (size_t)(slash - u) >= sizeof a)
            return false;
        memcpy(a, u, (size_t)(slash - u));
        a[slash - u] = '\0';
        if (!si_prefix(a, "J", f))
            return false;
        if (strcmp(slash + 1, "B") == 0 || strcmp(slash + 1, "byte") == 0)
            return true;
        if (strcmp(slash + 1, "bit") == 0 || strcmp(slash + 1, "b") == 0) {
            *f *= 8;
            return true;
        }
        return false;
    }
    case QS_Q_BYTES: return byte_unit(u, f);
    case QS_Q_BANDWIDTH:
        if (!slash || (size_t)(slash - u) >= sizeof a)
            return false;
        memcpy(a, u, (size_t)(slash - u));
        a[slash - u] = '\0';
        if (!byte_unit(a, f))
            return false;
        if (strcmp(slash + 1, "cycle") == 0) {
            *per_cycle = true;
            return true;
        }
        return strcmp(slash + 1, "s") == 0;
    case QS_Q_FREQUENCY: return si_prefix(u, "Hz", f);
    case QS_Q_POWER: return si_prefix(u, "W", f);
    case QS_Q_LENGTH_NM:
        *f = 1;
        return strcmp(u, "nm") == 0;
    case QS_Q_VOLTAGE: return si_prefix(u, "V", f);
    }
    return false;
}

int qs_hw_quantity(const char *text, qs_q_dim_t dim, double *out, bool *per_cycle)
{
    bool pc = false;
    char *end;
    const char *s = text ? text : "";
    while (isspace((unsigned char)*s))
        s++;
    double v = strtod(s, &end);
    if (end == s || !(isdigit((unsigned char)*s) || *s == '.' || *s == '-' || *s == '+'))
        return qs_error(QS_ERR_FORMAT, "expected %s, got '%s'", qs_hw_dim_example(dim), text ? text : "");
    while (isspace((unsigned char)*end))
        end++;
    char u[48];
    size_t n = strlen(end);
    while (n && isspace((unsigned char)end[n - 1]))
        n--;
    if (n >= sizeof u)
        return qs_error(QS_ERR_FORMAT, "expected %s, got '%s'", qs_hw_dim_example(dim), text);
    memcpy(u, end, n);
    u[n] = '\0';
    double f = 1;
    if (n && !unit_factor(u, dim, &f, &pc))
        return qs_error(QS_ERR_FORMAT, "expected %s, got '%s' (unit '%s')", qs_hw_dim_example(dim), text, u);
    if (!isfinite(v))
        return qs_error(QS_ERR_FORMAT, "expected a finite %s, got '%s'", qs_hw_dim_example(dim), text);
    if (v < 0)
        return qs_error(QS_ERR_FORMAT, "'%s': must not be negative", text);
    *out = v * f;
    if (per_cycle)
        *per_cycle = pc;
    else if (pc)
        return qs_error(QS_ERR_FORMAT, "'%s': a per-cycle value is not allowed here", text);
    return QS_OK;
}
