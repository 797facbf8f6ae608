/* Slow suite: the README's GNU parallel recipe. A preset run as 4 shards under GNU parallel
 * and merged equals the single-process run row for row. Skips (exit 77) without `parallel`. */
#include <sys/stat.h>
#include "polyrope.h"
#include "pr_test.h"
#include "sweep_util.h"

int main(void)
{
    pr_test_seed("test_sweep_parallel", 0); /* deterministic: the preset carries its seeds */
    if (system("parallel --version >/dev/null 2>&1") != 0) {
        printf("SKIP: GNU parallel is not installed (Debian: apt-get install parallel; .ci/deps lists it)\n");
        return 77;
    }
    char dir[] = "/tmp/pr_par_XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char single[256], merged[256], log[256], cmd[2048];
    snprintf(single, sizeof single, "%s/single.csv", dir);
    snprintf(merged, sizeof merged, "%s/merged.csv", dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    PR_CHECK(run_polyrope(log, (char *[]){"sweep", "factorise", "--size", "quick", "--out", single, 0}) == 0,
             "single-process sweep failed (%s)", log);
    /* the recipe of `polyrope sweep --help`, with the binary under test */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && parallel --will-cite '%s' sweep factorise --size quick --shard {}/4 --out part{}.csv --resume "
             "::: 1 2 3 4 && '%s' sweep --merge merged.csv part1.csv part2.csv part3.csv part4.csv",
             dir, polyrope_bin(), polyrope_bin());
    PR_CHECK(system(cmd) == 0, "parallel run failed: %s", cmd);
    char **ra, **rb, *ba, *bb;
    int nla, nlb;
    int na = data_rows(&ra, &ba, merged, &nla), nb = data_rows(&rb, &bb, single, &nlb);
    PR_CHECK(na > 0 && na == nb && nla, "merged %d rows, single %d", na, nb);
    for (int i = 0; i < na && i < nb; i++)
        PR_CHECK(!strcmp(ra[i], rb[i]), "row %d differs:\n  %s\n  %s", i, ra[i], rb[i]);
    free(ra), free(rb), free(ba), free(bb);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (!pr_test_failed_count && system(cmd))
        return 1;
    return pr_test_finish("test_sweep_parallel");
}
