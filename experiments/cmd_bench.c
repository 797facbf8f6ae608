#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "commands.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *summary;
} benches[] = {
    {"dense", pr_bench_dense, "dense reference forward against this machine's dgemm rate"},
    {"toeplitz", pr_bench_toeplitz, "Toeplitz engine against bare FFTW transforms; direct/FFT crossover"},
    {"fast", pr_bench_fast, "fast forward paths against the dense reference: ratios, crossover n*, slope"},
    {"backward", pr_bench_backward, "fast backward against the dense backward: ratios, crossover n*, slope"},
    {"certify", pr_bench_certify, "certify a float32 kernel's output against the dense forward: ratio, hi/lo, fallback"},
};
enum { NBENCH = sizeof benches / sizeof benches[0] };

int pr_cmd_bench(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f, "usage: polyrope bench NAME [--json] [options]   (polyrope bench NAME --help)\n\n"
                   "Each benchmark measures ours against its baseline in one run and prints the ratio.\n\n");
        for (int i = 0; i < NBENCH; i++)
            fprintf(f, "  %-10s %s\n", benches[i].name, benches[i].summary);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 0; i < NBENCH; i++)
        if (!strcmp(argv[1], benches[i].name))
            return benches[i].run(argc - 1, argv + 1);
    return pr_cli_fail("bench", "unknown benchmark '%s' (dense, toeplitz, fast, backward, certify)", argv[1]);
}
