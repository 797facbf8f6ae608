/* polyrope sweep: the grid syntax, and the promises of the driver checked on the binary:
 * a sweep SIGKILLed at random moments and resumed gives exactly the rows of an uninterrupted
 * run (no loss, no duplicates, no torn line); a torn last line is dropped; shards merge back
 * into the single-process rows; a resume of a different sweep is refused. */
#include <math.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include "polyrope.h"
#include "pr_test.h"
#include "../experiments/sweep.h"
#include "sweep_util.h"

static void check_grid(void)
{
    pr_grid_t g;
    char err[256] = "";
    PR_CHECK_OK(pr_grid_parse(&g, "n=256..4096*2; B=0.5..2+0.5;pos=rope,general;seed=7", err, sizeof err));
    PR_CHECK(g.naxes == 4, "naxes %d", g.naxes);
    PR_CHECK(pr_grid_count(&g) == 5 * 4 * 2, "count %ld", pr_grid_count(&g));
    const pr_axis_t *n = pr_grid_axis(&g, "n"), *B = pr_grid_axis(&g, "B");
    PR_CHECK(n && n->nv == 5 && !strcmp(n->v[4], "4096"), "n range");
    PR_CHECK(B && B->nv == 4 && !strcmp(B->v[0], "0.5") && !strcmp(B->v[3], "2"), "B range");
    /* the last axis varies fastest; idx 9 = n index 1, B index 0, pos index 1 (seed one value) */
    pr_cfg_t c;
    pr_cfg_at(&c, &g, 9);
    char *key = pr_cfg_key(&c);
    PR_CHECK(!strcmp(key, "n=512;B=0.5;pos=general;seed=7"), "key of idx 9: %s", key);
    PR_CHECK(pr_cfg_long(&c, "n") == 512 && pr_cfg_double(&c, "B") == 0.5, "cfg values");
    PR_CHECK(isnan(pr_cfg_double(&c, "eps")) && !pr_cfg_str(&c, "eps"), "absent axis");
    free(key);
    char *text = pr_grid_text(&g);
    PR_CHECK(!strcmp(text, "n=256,512,1024,2048,4096;B=0.5,1,1.5,2;pos=rope,general;seed=7"), "text %s", text);
    free(text);
    pr_grid_clear(&g);

    /* each malformed grid is refused with an explanation */
    const char *bad[] = {"n=1.5", "q=1", "pos=cube", "n=16..8*2", "n=4..64", "B=1..2*1", "n=", "n=1;n=2",
                         "eps=abc", "B=nan", "seed"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        int st = pr_grid_parse(&g, bad[i], err, sizeof err);
        PR_CHECK(st == PR_EINVAL && err[0], "grid '%s' accepted (st %d)", bad[i], st);
        pr_grid_clear(&g);
    }
}

/* data rows of a equal those of b, in order, each once; a ends with a newline */
static void same_rows(const char *a, const char *b, const char *what)
{
    char **ra, **rb, *ba, *bb;
    int nla, nlb;
    int na = data_rows(&ra, &ba, a, &nla), nb = data_rows(&rb, &bb, b, &nlb);
    PR_CHECK(na > 0 && na == nb, "%s: %d rows against %d", what, na, nb);
    PR_CHECK(nla, "%s: %s does not end with a newline (torn line)", what, a);
    for (int i = 0; i < na && i < nb; i++)
        PR_CHECK(!strcmp(ra[i], rb[i]), "%s: row %d differs:\n  %s\n  %s", what, i, ra[i], rb[i]);
    free(ra), free(rb), free(ba), free(bb);
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_sweep", 8));
    check_grid();

    char dir[] = "/tmp/pr_sweep_XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char ref[256], run[256], log[256], part[3][256], merged[256];
    snprintf(ref, sizeof ref, "%s/ref.csv", dir);
    snprintf(run, sizeof run, "%s/run.csv", dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    snprintf(merged, sizeof merged, "%s/merged.csv", dir);
    /* deterministic rows (no timing column), a second or so in all */
    char *grid = "n=64..512*2;d=2,4,8;B=1;pos=rope,rope-neox;seed=1..8+1";

    double t0 = pr_timing_wall();
    PR_CHECK(run_polyrope(log, (char *[]){"sweep", "factorise", "--grid", grid, "--out", ref, 0}) == 0,
             "uninterrupted sweep failed (%s)", log);
    double T = pr_timing_wall() - t0;
    printf("uninterrupted sweep: %.2f s\n", T);

    /* killed three times at random moments, resumed after each, then finished */
    int kills = 0;
    for (int round = 0; round < 4; round++) {
        char *args[] = {"sweep", "factorise", "--grid", grid, "--out", run, round ? "--resume" : 0, 0};
        pid_t pid = spawn_polyrope(log, args);
        int status;
        if (round < 3) {
            double at = pr_rng_range(rng, 0.05, 0.6) * T;
            struct timespec ts = {(time_t)at, (long)((at - floor(at)) * 1e9)};
            nanosleep(&ts, 0);
            kills += kill(pid, SIGKILL) == 0;
            waitpid(pid, &status, 0);
            printf("round %d: SIGKILL after %.3f s\n", round, at);
        } else {
            waitpid(pid, &status, 0);
            PR_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "final resume failed (%s)", log);
        }
    }
    PR_CHECK(kills == 3, "kills %d", kills);
    same_rows(run, ref, "killed and resumed");

    /* a torn last line (a kill inside a write on some other writer) is dropped on resume */
    char *rows = slurp(ref, 0);
    char *cut = rows ? strstr(rows, "\n48,") : 0;
    PR_CHECK(cut != 0, "row 48 not found in %s", ref);
    if (cut) {
        FILE *f = fopen(run, "w");
        fwrite(rows, 1, cut - rows + 1, f);
        fputs("48,n=128;d=2;B", f);
        fclose(f);
        PR_CHECK(run_polyrope(log, (char *[]){"sweep", "factorise", "--grid", grid, "--out", run, "--resume", 0}) == 0,
                 "resume after a torn line failed (%s)", log);
        same_rows(run, ref, "torn line");
    }
    free(rows);

    /* without --resume an existing file is not overwritten; a resume of another sweep is refused */
    PR_CHECK(run_polyrope(log, (char *[]){"sweep", "factorise", "--grid", grid, "--out", run, 0}) == 2,
             "overwrote an existing CSV");
    PR_CHECK(run_polyrope(log, (char *[]){"sweep", "factorise", "--grid", "n=8;d=2;B=1;pos=rope;seed=1", "--out", run,
                                          "--resume", 0}) == 2, "resumed a different sweep");
    same_rows(run, ref, "refused runs leave the file alone");

    /* three shards, merged (one given twice: duplicates dropped), equal the single run */
    char *ins[5];
    for (int k = 0; k < 3; k++) {
        char sh[8];
        snprintf(part[k], sizeof part[k], "%s/part%d.csv", dir, k + 1);
        snprintf(sh, sizeof sh, "%d/3", k + 1);
        PR_CHECK(run_polyrope(log, (char *[]){"sweep", "factorise", "--grid", grid, "--shard", sh, "--out", part[k], 0}) == 0,
                 "shard %s failed", sh);
        ins[k] = part[k];
    }
    PR_CHECK(run_polyrope(log, (char *[]){"sweep", "--merge", merged, ins[2], ins[0], ins[1], ins[0], 0}) == 0,
             "merge failed (%s)", log);
    same_rows(merged, ref, "merged shards");
    char *mtext = slurp(merged, 0);
    PR_CHECK(mtext && strstr(mtext, "# preset: factorise") && strstr(mtext, "# git commit:") && !strstr(mtext, "# shard:"),
             "merged header");
    free(mtext);
    /* a missing shard is refused, naming it (test_sweep_input has the other refusals) */
    PR_CHECK(run_polyrope(log, (char *[]){"sweep", "--merge", merged, ins[0], ins[1], 0}) == 2, "partial merge");
    char *warn = slurp(log, 0);
    PR_CHECK(warn && strstr(warn, "shard 3/3 is missing"), "a missing shard not named: %s", warn ? warn : "");
    free(warn);
    /* shards of different sweeps do not merge */
    char tiny[256];
    snprintf(tiny, sizeof tiny, "%s/tiny.csv", dir);
    PR_CHECK(run_polyrope(log, (char *[]){"sweep", "factorise", "--size", "tiny", "--out", tiny, 0}) == 0, "tiny sweep");
    PR_CHECK(run_polyrope(log, (char *[]){"sweep", "--merge", merged, ref, tiny, 0}) == 2, "merged different sweeps");
    /* shards of one sweep made by two builds do not merge: the commit line is the first file's */
    char other[256];
    snprintf(other, sizeof other, "%s/part2-other-commit.csv", dir);
    char *ptext = slurp(part[1], 0), *at = ptext ? strstr(ptext, "# git commit: ") : 0;
    PR_CHECK(at != 0, "no commit line in %s", part[1]);
    if (at) {
        at[14] = at[14] == '0' ? '1' : '0';
        FILE *fo = fopen(other, "w");
        PR_CHECK(fo && fputs(ptext, fo) >= 0 && !fclose(fo), "cannot write %s", other);
        PR_CHECK(run_polyrope(log, (char *[]){"sweep", "--merge", merged, ins[0], other, ins[2], 0}) == 2,
                 "merged shards of two commits");
        char *why = slurp(log, 0);
        PR_CHECK(why && strstr(why, "git commit"), "the commit mismatch not named: %s", why ? why : "");
        free(why);
    }
    free(ptext);
    PR_CHECK(run_polyrope(log, (char *[]){"sweep", "factorise", "--size", "tiny", "--out", part[0], "--resume", 0}) == 2,
             "resume of a shard as a whole sweep");

    /* --resume on a file that is not this driver's leaves it alone */
    char foreign[256];
    snprintf(foreign, sizeof foreign, "%s/foreign.csv", dir);
    FILE *ff = fopen(foreign, "w");
    fputs("a,b\n1,2\nno newline", ff);
    fclose(ff);
    PR_CHECK(run_polyrope(log, (char *[]){"sweep", "factorise", "--size", "tiny", "--out", foreign, "--resume", 0}) == 2,
             "resumed a foreign file");
    char *ftext = slurp(foreign, 0);
    PR_CHECK(ftext && !strcmp(ftext, "a,b\n1,2\nno newline"), "a foreign file was changed: '%s'", ftext ? ftext : "");
    free(ftext);

    /* bad usage exits 2 */
    PR_CHECK(run_polyrope(log, (char *[]){"sweep", "nosuch", "--out", run, 0}) == 2, "unknown preset");
    PR_CHECK(run_polyrope(log, (char *[]){"sweep", "factorise", "--out", run, "--shard", "4/3", 0}) == 2, "bad shard");
    PR_CHECK(run_polyrope(log, (char *[]){"sweep", "factorise", "--out", run, "--grid", "eps=1e-3", 0}) == 2,
             "axis outside the preset");
    PR_CHECK(run_polyrope(log, (char *[]){"sweep", "factorise", 0}) == 2, "missing --out");

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (!pr_test_failed_count && system(cmd))
        return 1;
    return pr_test_finish("test_sweep");
}
