/* polyrope bench fast and bench backward through the built binary ($POLYROPE), at small sizes:
 * one JSON object on stdout and progress on stderr; the counts the issues ask to report agree
 * with the expansion (transforms of the forward, terms of the backward); a slope fitted over
 * fewer than two sizes is null, not a number; a bad --fftw is one line and exit status 2. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "polyrope.h"
#include "pr_test.h"
#include "pr_test_cli.h"

static void bad(const char *args, const char *must)
{
    int rc = pr_test_cli_run("bench", args);
    PR_CHECK(rc == 2 && pr_test_lines(pr_test_cli_err) == 1 && strstr(pr_test_cli_err, must) && !pr_test_cli_out[0],
             "polyrope %s: exit %d, stderr '%s' (want exit 2, one line containing '%s')", args, rc, pr_test_cli_err,
             must);
}

int main(void)
{
    if (!getenv("POLYROPE")) {
        fprintf(stderr, "test_bench_cli: set POLYROPE to the polyrope binary (meson test does)\n");
        return 1;
    }
    unsigned long long seed = pr_test_seed("test_bench_cli", 1) % 1000000000ULL;
    char args[512];

    /* bench fast: general W (d = 2, s = 4) up to n = 2^10, low-rank up to 2^12 */
    snprintf(args, sizeof args, "bench fast --quick --max-log2n 10 --json --fftw estimate --seed %llu", seed);
    int rc = pr_test_cli_run("bench", args);
    PR_CHECK(rc == 0 && pr_test_lines(pr_test_cli_out) == 1 && pr_test_cli_out[0] == '{',
             "polyrope %s: exit %d, stdout '%.200s', stderr '%.200s'", args, rc, pr_test_cli_out, pr_test_cli_err);
    PR_CHECK(strstr(pr_test_cli_err, "bench fast: general W n=1024") && strstr(pr_test_cli_err, "low-rank n=4096"),
             "progress on stderr: '%.300s'", pr_test_cli_err);
    PR_CHECK(strstr(pr_test_cli_out, "\"fftw\": \"estimate\""), "fftw planning not reported: %.200s", pr_test_cli_out);
    /* one forward transform per b-marginal and column, one inverse per a-marginal and column:
     * C(2+g, g) marginals each side for the RoPE block support, d + 1 = 3 columns */
    double g = pr_test_cli_json("degree"), transforms = pr_test_cli_json("transforms");
    double marg = pr_expand_binom(2, (int)g);
    PR_CHECK(g >= 1 && transforms == 2 * 3 * marg, "degree %g: transforms %g, expected %g", g, transforms,
             2 * 3 * marg);
    PR_CHECK(pr_test_cli_json("terms") == pr_expand_binom(4, (int)g), "degree %g: terms %g", g,
             pr_test_cli_json("terms"));
    PR_CHECK(strstr(pr_test_cli_out, "\"slope_2e12_2e18\": null"), "slope over no sizes in range is not null: %.400s",
             strstr(pr_test_cli_out, "slope") ? strstr(pr_test_cli_out, "slope") : pr_test_cli_out);
    PR_CHECK(pr_test_cli_json("ratio_dense_over_fast") > 0.0, "ratio %g", pr_test_cli_json("ratio_dense_over_fast"));
    /* the timed execute's phases (the first row's), each some time, divide the least; at these
     * sizes (x̂ within 4 MiB) the products are made in the inverse phase, and say so */
    double px = pr_test_cli_json("xhat"), pp = pr_test_cli_json("products"), pi = pr_test_cli_json("inverse"),
           pd = pr_test_cli_json("divide");
    const char *fused = strstr(pr_test_cli_out, "\"products_in_inverse\": "),
               *lowrank = strstr(pr_test_cli_out, "\"lowrank\"");
    /* the low-rank rows have none of those phases */
    PR_CHECK(lowrank && strstr(lowrank, "\"phases_s\": null, \"products_in_inverse\": null") &&
             !strstr(lowrank, "\"xhat\""), "low-rank phases: %.300s", lowrank ? lowrank : pr_test_cli_out);
    PR_CHECK(px > 0 && isnan(pp) && pi > 0 && pd >= 0 && pd < px + pi && fused &&
             !strncmp(fused + strlen("\"products_in_inverse\": "), "true", 4), "phases_s %g %g %g %g, %.40s", px,
             pp, pi, pd, fused ? fused : "no products_in_inverse");
    bad("bench fast --fftw patient", "--fftw must be one of");

    /* bench backward: terms are the multisets of S with |f| <= g + 1 */
    snprintf(args, sizeof args, "bench backward --nmin 512 --nmax 1024 --dense-max 1024 --json --seed %llu", seed);
    rc = pr_test_cli_run("bench", args);
    PR_CHECK(rc == 0 && pr_test_lines(pr_test_cli_out) == 1 && pr_test_cli_out[0] == '{',
             "polyrope %s: exit %d, stdout '%.200s', stderr '%.200s'", args, rc, pr_test_cli_out, pr_test_cli_err);
    PR_CHECK(strstr(pr_test_cli_err, "bench backward: n=1024"), "progress on stderr: '%.300s'", pr_test_cli_err);
    PR_CHECK(strstr(pr_test_cli_out, "\"fftw\": \"measure\""), "fftw planning not reported: %.200s", pr_test_cli_out);
    g = pr_test_cli_json("degree");
    PR_CHECK(g >= 1 && pr_test_cli_json("terms") == pr_expand_binom(4, (int)g + 1)
             && pr_test_cli_json("forward_terms") == pr_expand_binom(4, (int)g),
             "degree %g: terms %g forward_terms %g", g, pr_test_cli_json("terms"), pr_test_cli_json("forward_terms"));
    PR_CHECK(strstr(pr_test_cli_out, "\"slope\": null") && pr_test_cli_json("ceiling_bwd_over_fwd") == 10
             && pr_test_cli_json("max_bwd_over_fwd") > 0.0,
             "slope, ceiling or ratio: %.600s", pr_test_cli_out);
    bad("bench backward --fftw quick", "--fftw must be one of");
    return pr_test_finish("test_bench_cli");
}
