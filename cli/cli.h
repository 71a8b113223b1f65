/* cli/cli.h — what the files of the quasar command share: the subcommand
 * table entry, exit codes, error printing, option helpers and the JSON writer.
 * The command only parses arguments, calls libquasar and prints. */
#ifndef QS_CLI_H
#define QS_CLI_H

#include "quasar.h"

#include <stdio.h>

/* Exit codes of every subcommand. */
enum { QS_EXIT_OK = 0, QS_EXIT_RUNTIME = 1, QS_EXIT_USAGE = 2 };

/* A subcommand: run() gets argv[0] = the subcommand name and returns an exit code. */
typedef struct {
    const char *name;
    const char *summary;         /* one line for `quasar --help` */
    int (*run)(int argc, char **argv);
    void (*help)(FILE *out);     /* `quasar help NAME`, `quasar NAME --help` */
} qs_cli_command_t;

int qs_cmd_quantize(int argc, char **argv);
void qs_help_quantize(FILE *out);
int qs_cmd_info(int argc, char **argv);
void qs_help_info(FILE *out);
int qs_cmd_eval(int argc, char **argv);
void qs_help_eval(FILE *out);
int qs_cmd_train(int argc, char **argv);
void qs_help_train(FILE *out);
int qs_cmd_quantize_model(int argc, char **argv); void qs_help_quantize_model(FILE *out);
int qs_cmd_sensitivity(int argc, char **argv); void qs_help_sensitivity(FILE *out);
int qs_cmd_golden(int argc, char **argv); void qs_help_golden(FILE *out);
int qs_cmd_cost(int argc, char **argv); void qs_help_cost(FILE *out);
int qs_cmd_targets(int argc, char **argv); void qs_help_targets(FILE *out);
int qs_cmd_sweep(int argc, char **argv); void qs_help_sweep(FILE *out);
int qs_cmd_results(int argc, char **argv); void qs_help_results(FILE *out);
int qs_cmd_plot(int argc, char **argv); void qs_help_plot(FILE *out);
int qs_cmd_compress(int argc, char **argv); void qs_help_compress(FILE *out);
int qs_cmd_dfq(int argc, char **argv); void qs_help_dfq(FILE *out);

/* ---- network quantization options (cli/qopts.c) ----------------------------- */

typedef struct {
    bool any;                          /* some option below was given */
    const char *preset;
    const char *spec[QS_QT_COUNT];     /* --weights, --acts, --bias */
    int nlayers;
    const char *layers[QS_QCONFIG_MAX_OVERRIDES];
    const char *calib_data;
    int64_t calib_images;              /* 0: the default */
    uint64_t calib_seed;
    bool calib_seed_set;
    bool reference;                    /* not an option: calibrate on the BLAS-free path (eval --reference) */
} qs_cli_qopts_t;
extern const char *const qs_cli_qopts_help;
/* Like qs_cli_opt: 1 if argv[*i] was one of these options (consumed), 0 if
 * not, -1 on a usage error (printed). */
int qs_cli_qopts_parse(int argc, char **argv, int *i, qs_cli_qopts_t *o);
/* The configuration the options describe; -1 (library error set) if bad. */
int qs_cli_qopts_config(const qs_cli_qopts_t *o, qs_qconfig_t *c);
/* Resolves and calibrates g (progress on a terminal); -1 with the library error set. */
int qs_cli_quantize_net(const qs_graph_t *g, const qs_cli_qopts_t *o, qs_pool_t *pool, qs_qnet_t **out);
/* The quantized network of MODEL: a quantized-model file as it is (quantization
 * options then are an error that names cmd), or a float model quantized and
 * calibrated as o says; -1 with the library error set. */
int qs_cli_load_qnet(const char *cmd, const char *model, const qs_cli_qopts_t *o, qs_pool_t *pool, qs_qnet_t **out);
/* The integer engine's --acc SPEC, --requant SPEC and --layer NAME:acc=SPEC /
 * NAME:requant=SPEC into c: 1 consumed, 0 not, -1 usage error (printed). */
int qs_cli_intopts_parse(int argc, char **argv, int *i, qs_int_config_t *c);

/* "quasar: <message>" on stderr; returns code so that `return qs_cli_error(2, ...)` works. */
int qs_cli_error(int code, const char *fmt, ...) QS_PRINTF(2, 3);
/* Whether two paths name one file (the same string, or the same device and inode). */
bool qs_cli_same_file(const char *a, const char *b);
/* The library's last error as "quasar: <message>"; returns code. */
int qs_cli_fail(int code);

/* Option scanning: matches argv[*i] against "--name" or "--name=VALUE" and
 * yields the value (the next argument in the first form). Returns 1 on a
 * match, 0 if argv[*i] is another option, -1 (message printed) if the value is
 * missing. */
int qs_cli_opt(int argc, char **argv, int *i, const char *name, const char **value);

/* ---- JSON (cli/json.c) ------------------------------------------------------- */

/* A tiny writer for one flat object: {"key": value, ...}. Numbers are
 * written so that they read back exactly; NaN and infinities become null. */
typedef struct {
    FILE *out;
    int count;
} qs_json_t;
void qs_json_begin(qs_json_t *j, FILE *out);
void qs_json_str(qs_json_t *j, const char *key, const char *value); /* NULL value: null */
void qs_json_num(qs_json_t *j, const char *key, double value);
void qs_json_int(qs_json_t *j, const char *key, int64_t value);
void qs_json_bool(qs_json_t *j, const char *key, bool value);
void qs_json_end(qs_json_t *j); /* closes the object and ends the line */
/* A metric by its registry name (core's qs_metric_find): refuses, with an
 * internal error, a name the registry does not know, so --json keys cannot
 * drift from results.h5 columns. */
int qs_json_metric(qs_json_t *j, const char *name, double value);
/* A JSON string literal (quotes and escapes) onto out. */
void qs_json_write_string(FILE *out, const char *s);

#endif
