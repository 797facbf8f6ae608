/* proofs-check replay and dump (issue 13): a trial re-run alone (--replay SEED/TRIAL) observes
 * the same values bit for bit as in the full run; dumped trials of C4 and C6 are re-checked
 * outside polyrope (tests/check_recheck.py: Fraction and mpmath), and a corrupted dump is caught. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "polyrope-exact.h"
#include "proofs-check/checks.h"
#include "pr_test.h"
#include "pr_test_cli.h"

/* the "observed ..." lines of a text (values as %.17g and %a), concatenated */
static void observed_lines(char *out, size_t cap, const char *text)
{
    out[0] = 0;
    for (const char *p = strstr(text, "observed "); p; p = strstr(p + 1, "\nobserved ")) {
        if (*p == '\n')
            p++;
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p + 1) : strlen(p), have = strlen(out);
        if (have + len + 1 < cap)
            strncat(out, p, len);
    }
}

static char *slurp_stream(FILE *f)
{
    long len;
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    rewind(f);
    char *s = malloc((size_t)len + 1);
    size_t got = s ? fread(s, 1, (size_t)len, f) : 0;
    if (s)
        s[got] = 0;
    return s;
}

/* the observed lines of trial k in a shown run: from "trial k" to the next "claim " */
static void trial_lines(char *out, size_t cap, char *text, long k)
{
    char mark[32];
    snprintf(mark, sizeof mark, "\ntrial %ld\n", k);
    char *p = strstr(text, mark), *q = p ? strstr(p + 1, "\nclaim ") : NULL;
    out[0] = 0;
    if (!p)
        return;
    if (q)
        q++; /* keep the last line's newline */
    char keep = q ? *q : 0;
    if (q)
        *q = 0;
    observed_lines(out, cap, p);
    if (q)
        *q = keep;
}

/* runs c with opts (show into a temporary file), returns what it showed (free it) */
static char *run_shown(pr_check_result_t *r, const pr_check_t *c, pr_check_opts_t o)
{
    FILE *f = tmpfile();
    o.show = f;
    PR_CHECK_OK(pr_check_run(r, c, &o));
    char *text = slurp_stream(f);
    fclose(f);
    return text;
}

int main(void)
{
    uint64_t seed = pr_test_seed("test_check_replay", 20261123);
    static char full[1 << 16], one[1 << 16];

    /* library: every replayable claim, 3 trials shown, then trials 1..3 alone */
    for (int i = 0; i < pr_ncheck; i++) {
        const pr_check_t *c = &pr_checks[i];
        if (!c->replayable)
            continue;
        pr_check_opts_t o = {3, seed, PR_FAULT_NONE, 0, NULL, NULL, 0, NULL, NULL};
        pr_check_result_t r, r1;
        char *text = run_shown(&r, c, o);
        int compared = 0;
        for (long k = 1; k <= 3 && text; k++) {
            trial_lines(full, sizeof full, text, k);
            o.only = k;
            char *t1 = run_shown(&r1, c, o);
            observed_lines(one, sizeof one, t1 ? t1 : "");
            free(t1);
            compared += one[0] != 0;
            /* a trial that observed something is counted and judged on its own */
            PR_CHECK(!one[0] || (r1.trials == 1 && r1.verdict != PR_CHECK_FAIL), "%s seed %llu trial %ld alone: %ld "
                     "trials, %s (%s)", c->id, (unsigned long long)seed, k, r1.trials,
                     pr_check_verdict_name(r1.verdict), r1.note);
            PR_CHECK(!strcmp(full, one),
                     "%s seed %llu trial %ld: replay observed\n%s\nfull run observed\n%s", c->id,
                     (unsigned long long)seed, k, one, full);
        }
        free(text);
        PR_CHECK(compared > 0, "%s seed %llu: no trial of 1..3 observed anything", c->id, (unsigned long long)seed);
        /* a replay of a trial beyond --trials, and of a non-replayable claim, is refused */
        pr_check_opts_t bad = {3, seed, PR_FAULT_NONE, 4, NULL, NULL, 0, NULL, NULL};
        PR_CHECK(pr_check_run(&r1, c, &bad) == PR_EINVAL, "%s: replay of trial 4 of 3 accepted", c->id);
    }
    pr_check_result_t r;
    pr_check_opts_t nr = {3, seed, PR_FAULT_NONE, 2, NULL, NULL, 0, NULL, NULL};
    PR_CHECK(pr_check_run(&r, pr_check_find("C10"), &nr) == PR_EINVAL && r.verdict == PR_CHECK_FAIL,
             "C10 (a fixed sequence of sizes) replayed");

    /* a failing trial replays as the same failure: the first failure of a broken symbol (C4)
     * and of a flipped gradient (G1), re-run alone */
    static const struct { const char *id; pr_check_fault_t fault; } broken[] = {{"C4", PR_FAULT_SYMBOL},
                                                                                {"G1", PR_FAULT_GRAD_SIGN}};
    for (int b = 0; b < 2; b++) {
        pr_check_result_t rf, r1;
        pr_check_opts_t fo = {4, seed, broken[b].fault, 0, NULL, NULL, 0, NULL, NULL};
        char *text = run_shown(&rf, pr_check_find(broken[b].id), fo);
        PR_CHECK(rf.verdict == PR_CHECK_FAIL && rf.first_fail > 0, "%s fault: verdict %s", broken[b].id,
                 pr_check_verdict_name(rf.verdict));
        trial_lines(full, sizeof full, text ? text : "", rf.first_fail);
        free(text);
        fo.only = rf.first_fail;
        text = run_shown(&r1, pr_check_find(broken[b].id), fo);
        observed_lines(one, sizeof one, text ? text : "");
        free(text);
        PR_CHECK(r1.verdict == PR_CHECK_FAIL && r1.first_fail == rf.first_fail && full[0] && !strcmp(full, one) &&
                 !strcmp(r1.fail_config, rf.fail_config),
                 "%s seed %llu: replay of failing trial %ld gave %s\n%s\nthe full run\n%s", broken[b].id,
                 (unsigned long long)seed, rf.first_fail, pr_check_verdict_name(r1.verdict), one, full);
    }

    /* a dump that cannot be written is an error, never a pass */
    pr_check_opts_t nd = {2, seed, PR_FAULT_NONE, 0, "no/such/folder", NULL, 0, NULL, NULL};
    int st = pr_check_run(&r, pr_check_find("C3"), &nd);
    PR_CHECK(st == PR_EIO && r.verdict == PR_CHECK_FAIL, "unwritable dump: status %d, verdict %s", st,
             pr_check_verdict_name(r.verdict));

    /* command line: dump, re-check outside polyrope, replay one trial bit for bit */
    const char *py = "/usr/bin/python3", *script = getenv("PR_RECHECK");
    if (getenv("POLYROPE") && script) {
        char args[1024], dir[64];
        snprintf(dir, sizeof dir, "test_check_replay_dump");
        snprintf(args, sizeof args, "-rf '%s'", dir);
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "rm %s", args);
        PR_CHECK(system(cmd) == 0, "%s", cmd);
        snprintf(args, sizeof args, "check C4 C6 --trials 8 --seed %llu --dump %s", (unsigned long long)seed, dir);
        PR_CHECK(pr_test_cli_run("test_check_replay", args) == 0, "polyrope %s: %s", args, pr_test_cli_err);
        /* the same dump again would mix two runs: refused before any work */
        PR_CHECK(pr_test_cli_run("test_check_replay", args) == 2 && !pr_test_cli_out[0], "polyrope %s twice", args);
        if (access(py, X_OK) == 0) {
            snprintf(cmd, sizeof cmd, "%s '%s' %s", py, script, dir);
            int ws = system(cmd);
            PR_CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "independent re-check failed: %s", cmd);
            /* a wrong engine output in one dumped trial must be caught */
            char path[256];
            snprintf(path, sizeof path, "%s/C4/trial-3/y.npy", dir);
            double *y = NULL;
            int ndim;
            long shape[PR_NPY_MAXDIM];
            if (!pr_npy_read(&y, &ndim, shape, path)) {
                y[0] += 1e-3 * (1 + fabs(y[0]));
                PR_CHECK_OK(pr_npy_write(path, y, ndim, shape));
                free(y);
                ws = system(cmd);
                PR_CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 1, "a corrupted dump passed the re-check: %s", cmd);
            } else {
                PR_CHECK(0, "cannot read %s", path);
            }
            /* C6 at its references' minimum precision: what passes there is true (re-checked) */
            const char *lowdir = "test_check_replay_low";
            snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir %s", lowdir, lowdir);
            PR_CHECK(system(cmd) == 0, "%s", cmd);
            static const char *ids[] = {"C4", "C6"};
            for (int i = 0; i < 2; i++) {
                pr_check_result_t rl;
                pr_check_opts_t lo = {12, seed, PR_FAULT_NONE, 0, lowdir, NULL, PR_HIPREC_MIN_PREC, NULL, NULL};
                PR_CHECK_OK(pr_check_run(&rl, pr_check_find(ids[i]), &lo));
            }
            snprintf(cmd, sizeof cmd, "%s '%s' %s", py, script, lowdir);
            ws = system(cmd);
            PR_CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "low-precision dump: independent re-check failed: %s", cmd);
        } else {
            printf("test_check_replay: %s missing, independent re-check not run\n", py);
        }
        /* replay of trial 5 prints the same observed line as the dump wrote */
        static char dumped[1 << 16];
        char tpath[256];
        snprintf(tpath, sizeof tpath, "%s/C4/trial-5/trial.txt", dir);
        pr_test_slurp(dumped, sizeof dumped, tpath);
        observed_lines(full, sizeof full, dumped);
        snprintf(args, sizeof args, "check C4 --replay %llu/5", (unsigned long long)seed);
        PR_CHECK(pr_test_cli_run("test_check_replay", args) == 0, "polyrope %s", args);
        observed_lines(one, sizeof one, pr_test_cli_out);
        PR_CHECK(full[0] && !strcmp(full, one), "polyrope %s printed\n%s\nthe dump has\n%s", args, one, full);
        PR_CHECK(strstr(pr_test_cli_out, "array t 1 ") && strstr(pr_test_cli_out, "array x 1 "),
                 "polyrope %s: instance not printed", args);
    }
    return pr_test_finish("test_check_replay");
}
