/* polyrope: the command line, a thin layer over libpolyrope (docs/cli.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pr_xversion.h"
#include "pr_status.h"
#include "pr_toeplitz.h"
#include "commands.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *summary;
} commands[] = {
    {"attn", pr_cmd_attn, "one attention run (forward, optionally backward) on generated or .npy inputs"},
    {"degree", pr_cmd_degree, "least polynomial degree for e^x on [-R, R] to relative error eps"},
    {"check", pr_cmd_check, "run the proofs-check claims (C1-C14, G1-G5, F1)"},
    {"sweep", pr_cmd_sweep, "sweep n, d, B, eps, ... from a preset or a grid into a CSV"},
    {"plot", pr_cmd_plot, "draw PNG and PDF figures from sweep CSVs"},
    {"certify", pr_cmd_certify, "certified error of a candidate attention output (and gradients) against true attention"},
    {"bench", pr_cmd_bench, "benchmarks, each as a ratio against its baseline (dense, toeplitz, fast, backward)"},
    {"reproduce", pr_cmd_reproduce, "the main job: every experiment, figures and REPORT.md"},
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

static void usage(FILE *f)
{
    fprintf(f, "usage: polyrope <command> [options]   (polyrope <command> --help for each)\n\n"
               "RoPE attention in almost linear time, and the checks of that claim.\n\ncommands:\n");
    for (int i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nexit status: 0 success, 1 a check failed, 2 bad usage or input\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        pr_xversion_fprint(stdout, "");
        return 0;
    }
    for (int i = 0; i < NCOMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            /* FFTW wisdom for every command, from and to $POLYROPE_FFTW_WISDOM */
            int st = pr_toeplitz_wisdom_env_import(), rc;
            if (st) {
                fprintf(stderr, "polyrope: $%s = %s: cannot be read as FFTW wisdom, written or created (point it "
                        "at a writable file, or unset it)\n", PR_TOEPLITZ_WISDOM_ENV, getenv(PR_TOEPLITZ_WISDOM_ENV));
                return 2;
            }
            rc = commands[i].run(argc - 1, argv + 1);
            if ((st = pr_toeplitz_wisdom_env_export())) {
                fprintf(stderr, "polyrope: $%s: %s\n", PR_TOEPLITZ_WISDOM_ENV, pr_strerror(st));
                return rc ? rc : 2;
            }
            return rc;
        }
    fprintf(stderr, "polyrope: unknown command '%s' (see polyrope --help)\n", argv[1]);
    return 2;
}
