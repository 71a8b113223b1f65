/* cli/main.c — the `quasar` command: global options, the subcommand table and
 * the helpers every subcommand shares (error printing, option scanning).
 * Adding a subcommand is one line in `commands` (plus its cmd_*.c file). */
#include "config.h"

#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

static const qs_cli_command_t commands[] = {
    {"quantize", "quantize one tensor of an HDF5 file and report the error", qs_cmd_quantize, qs_help_quantize},
    {"info", "show a model's layers, shapes, parameters and MACs", qs_cmd_info, qs_help_info},
    {"eval", "evaluate a model's top-1/top-5 accuracy on a dataset (float engine)", qs_cmd_eval, qs_help_eval},
    {"train", "train a zoo architecture from a spec (SGD, cosine schedule, BN, augmentation)", qs_cmd_train, qs_help_train},
    {"quantize-model", "quantize and calibrate a model and save it as a quantized-model file", qs_cmd_quantize_model, qs_help_quantize_model},
    {"sensitivity", "rank layers and activation points by the accuracy they cost when quantized", qs_cmd_sensitivity, qs_help_sensitivity},
    {"golden", "write golden test vectors of conv2d/linear layers for RTL test benches (integer engine)", qs_cmd_golden, qs_help_golden},
    {"cost", "price a quantized network on hardware targets: energy, latency, traffic, verdict per layer", qs_cmd_cost, qs_help_cost},
    {"targets", "list the hardware targets, or show one: units, formats, memory, features", qs_cmd_targets, qs_help_targets},
    {"sweep", "run an experiment spec: every point quantized, evaluated and priced, stored in results.h5 with figures", qs_cmd_sweep, qs_help_sweep},
    {"results", "list, show, export or take the Pareto front of the runs of a sweep", qs_cmd_results, qs_help_results},
    {"plot", "draw a figure from the runs of a sweep (gnuplot: PNG, PDF or SVG, with .dat and .gp)", qs_cmd_plot, qs_help_plot},
    {"compress", "prune a model (magnitude, global, N:M or channels) and save it, optionally fine-tuned", qs_cmd_compress, qs_help_compress},
    {"dfq", "data-free quantization: equalize layers, absorb high biases, correct biases; save the model", qs_cmd_dfq, qs_help_dfq},
};
#define NCOMMANDS (sizeof commands / sizeof *commands)

int qs_cli_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("quasar: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

bool qs_cli_same_file(const char *a, const char *b)
{
    struct stat x, y;
    return strcmp(a, b) == 0 || (stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino);
}

int qs_cli_fail(int code)
{
    const char *msg = qs_last_error();
    return qs_cli_error(code, "%s", *msg ? msg : qs_status_name(qs_last_status()));
}

int qs_cli_opt(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        qs_cli_error(QS_EXIT_USAGE, "%s needs a value", name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

static const qs_cli_command_t *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void command_list(char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < NCOMMANDS; i++) {
        int w = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", commands[i].name);
        if (w < 0 || (size_t)w >= n - used)
            return;
        used += (size_t)w;
    }
}

static int unknown_command(const char *name)
{
    char list[512];
    command_list(list, sizeof list);
    return qs_cli_error(QS_EXIT_USAGE, "unknown command '%s' (commands: %s, help)", name, list);
}

static void usage(FILE *out)
{
    fprintf(out,
            "quasar %s — hardware-aware quantization simulator\n"
            "\n"
            "Usage: quasar COMMAND [ARGUMENTS]\n"
            "       quasar help COMMAND\n"
            "       quasar --help | --version\n"
            "\n"
            "Commands:\n",
            PACKAGE_VERSION);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-12s %s\n", "help", "show the help of a command");
    fprintf(out, "\n"
                 "Exit status: 0 success, 1 runtime error, 2 usage error.\n"
                 "The quantizer spec grammar and every command are described in docs/spec.md.\n");
}

/* Standard output is where the results go: a failed write (a full disk, a
 * closed pipe) is an error, not a silent success. */
static int finish(int code)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        int e = errno;
        qs_cli_error(QS_EXIT_RUNTIME, "cannot write to standard output: %s", strerror(e ? e : EIO));
        if (code == QS_EXIT_OK)
            code = QS_EXIT_RUNTIME;
    }
    return code;
}

static int dispatch(int argc, char **argv);

int main(int argc, char **argv) { return finish(dispatch(argc, argv)); }

static int dispatch(int argc, char **argv)
{
    if (argc < 2) {
        char list[512];
        command_list(list, sizeof list);
        return qs_cli_error(QS_EXIT_USAGE, "no command given (commands: %s, help; see 'quasar --help')", list);
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return QS_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("quasar %s\n", PACKAGE_VERSION);
        return QS_EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0) {
        if (argc == 2) {
            usage(stdout);
            return QS_EXIT_OK;
        }
        if (argc > 3)
            return qs_cli_error(QS_EXIT_USAGE, "help takes one command name");
        const qs_cli_command_t *c = find_command(argv[2]);
        if (!c)
            return unknown_command(argv[2]);
        c->help(stdout);
        return QS_EXIT_OK;
    }
    if (cmd[0] == '-')
        return qs_cli_error(QS_EXIT_USAGE, "unknown option '%s' (try 'quasar --help')", cmd);
    const qs_cli_command_t *c = find_command(cmd);
    if (!c)
        return unknown_command(cmd);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            c->help(stdout);
            return QS_EXIT_OK;
        }
    }
    return c->run(argc - 1, argv + 1);
}

#if defined(__SANITIZE_ADDRESS__)
/* In the sanitizer build, an allocation too large to satisfy (a file that
 * declares a 2^40-element dataset) returns NULL, as in every other build, so
 * that it gets quasar's "out of memory" message instead of an ASan abort. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }
#endif
