/* polyrope bench dense through the built binary ($POLYROPE), at small sizes: one JSON object whose
 * top-level keys are the largest n's and whose rows hold every n from --nmin doubling up to --n
 * (the largest's fixed-cost factor exactly 1, the others' ratios positive), the backward's keys
 * with --backward, the table without --json; bad usage is one line on stderr and exit status 2. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "polyrope.h"
#include "pr_test.h"
#include "pr_test_cli.h"

static void bad(const char *args, const char *must)
{
    int rc = pr_test_cli_run("bench_dense", args);
    PR_CHECK(rc == 2 && pr_test_lines(pr_test_cli_err) == 1 && strstr(pr_test_cli_err, must) && !pr_test_cli_out[0],
             "polyrope %s: exit %d, stderr '%s' (want exit 2, one line containing '%s')", args, rc, pr_test_cli_err,
             must);
}

/* the number `key` in the row of n (NAN if missing) */
static double row_num(long n, const char *key)
{
    char pat[64], kp[64];
    snprintf(pat, sizeof pat, "{\"n\": %ld, ", n);
    snprintf(kp, sizeof kp, "\"%s\": ", key);
    const char *row = strstr(pr_test_cli_out, pat), *end = row ? strchr(row, '}') : 0;
    const char *p = row ? strstr(row, kp) : 0;
    return p && p < end ? strtod(p + strlen(kp), NULL) : NAN;
}

int main(void)
{
    if (!getenv("POLYROPE")) {
        fprintf(stderr, "test_bench_dense_cli: set POLYROPE to the polyrope binary (meson test does)\n");
        return 1;
    }
    (void)pr_test_seed("test_bench_dense_cli", 1);
    const char *args = "bench dense --nmin 128 --n 384 --d 16 --reps 1 --backward --json";
    int rc = pr_test_cli_run("bench_dense", args);
    PR_CHECK(rc == 0 && pr_test_lines(pr_test_cli_out) == 1 && pr_test_cli_out[0] == '{',
             "polyrope %s: exit %d, stdout '%.200s', stderr '%.200s'", args, rc, pr_test_cli_out, pr_test_cli_err);
    PR_CHECK(pr_test_cli_json("n") == 384 && pr_test_cli_json("d") == 16 && pr_test_cli_json("target") == 0.88,
             "top level: %.300s", pr_test_cli_out);
    PR_CHECK(pr_test_cli_json("ratio") > 0 && pr_test_cli_json("ratio_cpu") > 0 && pr_test_cli_json("dgemm_gflops") > 0,
             "ratios: %.300s", pr_test_cli_out);
    /* 128, 256 and then --n itself (not a doubling of --nmin) */
    const long ns[3] = {128, 256, 384};
    for (int k = 0; k < 3; k++)
        PR_CHECK(row_num(ns[k], "ratio") > 0 && row_num(ns[k], "forward_s") > 0 && row_num(ns[k], "backward_ratio") > 0
                 && row_num(ns[k], "forward_fixed_factor") > 0,
                 "row n=%ld: %.600s", ns[k], pr_test_cli_out);
    PR_CHECK(row_num(384, "forward_fixed_factor") == 1 && row_num(384, "backward_fixed_factor") == 1,
             "the largest n's fixed factor is not 1: %.600s", pr_test_cli_out);
    PR_CHECK(isnan(row_num(512, "ratio")), "a row past --n: %.600s", pr_test_cli_out);

    rc = pr_test_cli_run("bench_dense", "bench dense --nmin 256 --n 256 --d 8 --reps 1");
    PR_CHECK(rc == 0 && strstr(pr_test_cli_out, "target ratio >= 0.88") && pr_test_lines(pr_test_cli_out) == 3
             && !strstr(pr_test_cli_out, "backward_s"),
             "table: exit %d, '%.400s'", rc, pr_test_cli_out);

    bad("bench dense --nmin 1024 --n 512", "--nmin 1024 exceeds --n 512");
    bad("bench dense --d 7", "RoPE needs an even head dimension");
    bad("bench dense --n 0", "--n");
    return pr_test_finish("test_bench_dense_cli");
}
