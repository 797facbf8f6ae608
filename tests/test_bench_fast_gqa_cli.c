/* polyrope bench fast --heads H --kv-heads K through the built binary ($POLYROPE), at small sizes:
 * the grouped-query keys beside today's, the transforms per head those of K kv heads (one forward
 * per b-marginal, one inverse per a-marginal, each per kv head and column: K/H of the one-head
 * count) while the --heads run pays the one-head count per head; K not dividing H, or without
 * --heads, is one line and exit status 2. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "polyrope.h"
#include "pr_test.h"
#include "pr_test_cli.h"

int main(void)
{
    if (!getenv("POLYROPE")) {
        fprintf(stderr, "test_bench_fast_gqa_cli: set POLYROPE to the polyrope binary (meson test does)\n");
        return 1;
    }
    unsigned long long seed = pr_test_seed("test_bench_fast_gqa_cli", 1) % 1000000000ULL;
    pr_rng_t rng;
    pr_rng_init(rng, seed);
    int kv = 1 << pr_rng_below(rng, 3), h = 8;   /* 8 Q heads over 1, 2 or 4 kv heads */
    char args[512];
    snprintf(args, sizeof args, "bench fast --quick --max-log2n 10 --json --fftw estimate --heads %d --kv-heads %d "
             "--seed %llu", h, kv, seed);
    int rc = pr_test_cli_run("bench_gqa", args);
    PR_CHECK(rc == 0 && pr_test_lines(pr_test_cli_out) == 1 && pr_test_cli_out[0] == '{',
             "polyrope %s: exit %d, stdout '%.200s', stderr '%.200s'", args, rc, pr_test_cli_out, pr_test_cli_err);
    /* the first row's (n = 2^8) counts: C(2+g, g) marginals each side, d + 1 = 3 columns */
    double g = pr_test_cli_json("degree"), one = pr_test_cli_json("transforms");
    double mha = pr_test_cli_json("transforms_per_head"), gqa = pr_test_cli_json("transforms_per_head_gqa");
    PR_CHECK(one == 2 * 3 * pr_expand_binom(2, (int)g) && mha == one && gqa == one * kv / h,
             "%s: transforms %g one head, %g per head of %d, %g per head over %d kv heads (degree %g)", args, one,
             mha, h, gqa, kv, g);
    PR_CHECK(pr_test_cli_json("kv_heads") == kv && pr_test_cli_json("heads") == h, "%s: heads %g, kv_heads %g", args,
             pr_test_cli_json("heads"), pr_test_cli_json("kv_heads"));
    const char *keys[] = {"per_head_ratio", "per_head_ratio_gqa", "heads_gqa_s", "heads_gqa_fftw_fraction"};
    for (int k = 0; k < 4; k++) {
        double v = pr_test_cli_json(keys[k]);
        PR_CHECK(v > 0 && isfinite(v), "%s: %s = %g", args, keys[k], v);
    }
    PR_CHECK(strstr(pr_test_cli_out, "\"per_head_ratio_gqa\": ") && strstr(pr_test_cli_out, "\"crossover_n\": "),
             "%s: summary keys missing: %.300s", args, pr_test_cli_out);
    /* bad usage: one line naming the fix, exit 2, nothing on stdout */
    static const char *bad[][2] = {
        {"bench fast --quick --heads 8 --kv-heads 3", "--kv-heads 3 needs --heads H > 1, a multiple of it"},
        {"bench fast --quick --kv-heads 2", "--kv-heads 2 needs --heads H > 1"}};
    for (int k = 0; k < 2; k++) {
        rc = pr_test_cli_run("bench_gqa", bad[k][0]);
        PR_CHECK(rc == 2 && pr_test_lines(pr_test_cli_err) == 1 && strstr(pr_test_cli_err, bad[k][1]) &&
                 !pr_test_cli_out[0], "polyrope %s: exit %d, stderr '%s' (want exit 2, one line with '%s')", bad[k][0],
                 rc, pr_test_cli_err, bad[k][1]);
    }
    return pr_test_finish("test_bench_fast_gqa_cli");
}
