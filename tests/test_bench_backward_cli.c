/* polyrope bench backward through the built binary ($POLYROPE), at small sizes (issue 16):
 * with --nmin above --dense-max no dense size runs, and the dense figures are null in --json and
 * "-" in the table, never a NaN (they printed -nan before); --heads H adds the H-head execute and
 * its per_head_ratio (finite, positive) with today's keys kept, --kv-heads K the grouped-query
 * execute's gqa_per_head_ratio; --quick, --heads and --kv-heads are in --help; a bad --heads or
 * --kv-heads is one line and exit status 2. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "polyrope.h"
#include "pr_test.h"
#include "pr_test_cli.h"

static int has_nan(const char *s)
{
    return strstr(s, "nan") || strstr(s, "NaN");
}

int main(void)
{
    if (!getenv("POLYROPE")) {
        fprintf(stderr, "test_bench_backward_cli: set POLYROPE to the polyrope binary (meson test does)\n");
        return 1;
    }
    unsigned long long seed = pr_test_seed("test_bench_backward_cli", 1) % 1000000000ULL;
    char args[512];

    /* no dense size: null, not -nan */
    snprintf(args, sizeof args, "bench backward --nmin 256 --nmax 512 --dense-max 128 --rounds 1 --fftw estimate "
             "--json --seed %llu", seed);
    int rc = pr_test_cli_run("bench_bwd", args);
    PR_CHECK(rc == 0 && pr_test_lines(pr_test_cli_out) == 1 && !has_nan(pr_test_cli_out) &&
             strstr(pr_test_cli_out, "\"dense_bwd_s\": null") && strstr(pr_test_cli_out, "\"dense_over_bwd\": null") &&
             pr_test_cli_json("crossover_n") == -1, "polyrope %s: exit %d, stdout '%.600s'", args, rc, pr_test_cli_out);
    snprintf(args, sizeof args, "bench backward --nmin 256 --nmax 256 --dense-max 128 --rounds 1 --fftw estimate "
             "--seed %llu", seed);
    rc = pr_test_cli_run("bench_bwd", args);
    PR_CHECK(rc == 0 && !has_nan(pr_test_cli_out), "polyrope %s: exit %d, stdout '%.600s'", args, rc, pr_test_cli_out);

    /* --heads: the H-head execute and its per-head ratio, today's keys beside */
    snprintf(args, sizeof args, "bench backward --nmin 256 --nmax 512 --dense-max 256 --rounds 1 --fftw estimate "
             "--heads 3 --json --seed %llu", seed);
    rc = pr_test_cli_run("bench_bwd", args);
    double ph = pr_test_cli_json("per_head_ratio");
    PR_CHECK(rc == 0 && pr_test_lines(pr_test_cli_out) == 1 && pr_test_cli_json("heads") == 3 && ph > 0 &&
             isfinite(ph) && pr_test_cli_json("per_head_n") == 512 && pr_test_cli_json("heads_bwd_s") > 0 &&
             pr_test_cli_json("max_bwd_over_fwd") > 0 && pr_test_cli_json("dense_over_bwd") > 0 &&
             strstr(pr_test_cli_out, "\"crossover_n\": ") && strstr(pr_test_cli_out, "\"targets_met\": "),
             "polyrope %s: exit %d, stdout '%.900s'", args, rc, pr_test_cli_out);
    /* --kv-heads: H Q heads on K kv heads, beside the H-head figures */
    snprintf(args, sizeof args, "bench backward --nmin 256 --nmax 256 --dense-max 256 --rounds 1 --fftw estimate "
             "--heads 4 --kv-heads 2 --json --seed %llu", seed);
    rc = pr_test_cli_run("bench_bwd", args);
    double gq = pr_test_cli_json("gqa_per_head_ratio");
    PR_CHECK(rc == 0 && pr_test_lines(pr_test_cli_out) == 1 && pr_test_cli_json("kv_heads") == 2 && gq > 0 &&
             isfinite(gq) && pr_test_cli_json("gqa_bwd_s") > 0 && pr_test_cli_json("per_head_ratio") > 0 &&
             !has_nan(pr_test_cli_out), "polyrope %s: exit %d, stdout '%.900s'", args, rc, pr_test_cli_out);
    /* one head: no per-head figure */
    snprintf(args, sizeof args, "bench backward --nmin 256 --nmax 256 --rounds 1 --fftw estimate --json --seed %llu",
             seed);
    rc = pr_test_cli_run("bench_bwd", args);
    PR_CHECK(rc == 0 && strstr(pr_test_cli_out, "\"per_head_ratio\": null"), "polyrope %s: exit %d, stdout '%.600s'",
             args, rc, pr_test_cli_out);

    rc = pr_test_cli_run("bench_bwd", "bench backward --help");
    PR_CHECK(rc == 0 && strstr(pr_test_cli_out, "--quick") && strstr(pr_test_cli_out, "--heads") &&
             strstr(pr_test_cli_out, "--kv-heads"),
             "bench backward --help: exit %d '%.400s'", rc, pr_test_cli_out);
    rc = pr_test_cli_run("bench_bwd", "bench backward --heads 0");
    PR_CHECK(rc == 2 && pr_test_lines(pr_test_cli_err) == 1 && strstr(pr_test_cli_err, "--heads") && !pr_test_cli_out[0],
             "bench backward --heads 0: exit %d, stderr '%s'", rc, pr_test_cli_err);
    const char *bad[] = {"bench backward --heads 4 --kv-heads 3", "bench backward --heads 4 --kv-heads 4",
                         "bench backward --kv-heads 2"};
    for (int k = 0; k < 3; k++) {
        rc = pr_test_cli_run("bench_bwd", bad[k]);
        PR_CHECK(rc == 2 && pr_test_lines(pr_test_cli_err) == 1 && strstr(pr_test_cli_err, "--kv-heads") &&
                 !pr_test_cli_out[0], "%s: exit %d, stderr '%s'", bad[k], rc, pr_test_cli_err);
    }
    return pr_test_finish("test_bench_backward_cli");
}
