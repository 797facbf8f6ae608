/* proofs-check: every check runs at small size and passes (timing checks: info); deliberately
 * broken inputs make the relevant checks fail; the regression
 * baseline catches a value that grew. */
#include <fcntl.h>
#include <glob.h>
#include <math.h>
#include <pty.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "polyrope-exact.h"
#include "proofs-check/checks.h"
#include "pr_test.h"
#include "pr_test_cli.h"

static pr_check_verdict_t run(const char *id, const pr_check_opts_t *o, pr_check_result_t *r)
{
    const pr_check_t *c = pr_check_find(id);
    PR_CHECK(c != NULL, "claim %s missing", id);
    if (!c)
        return PR_CHECK_FAIL;
    PR_CHECK_OK(pr_check_run(r, c, o));
    return r->verdict;
}

/* The baseline reader is strict: every malformed line is refused (-1), nothing is skipped. */
static void baseline_strict(const pr_check_result_t *res, int nres, uint64_t seed)
{
    static const char *bad[] = {
        "C1 only-two-fields\n",
        "C99 rope/full 0.5\n",                       /* unknown claim */
        "C3 s<=8 0 extra\n",                         /* a fourth field */
        "C3 s<=8 nan\n", "C3 s<=8 inf\n", "C3 s<=8 -1\n", "C3 s<=8 1e999\n", "C3 s<=8 0x\n", "C3 s<=8 1.5abc\n",
        "C3 s<=8 0\nC3 s<=8 1\n",                    /* twice */
        "C3 s<=8;rm 0\n", "C3 s\"8 0\n",             /* configuration characters */
        "C3 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 0\n", /* configuration too long */
        "\x7f" "ELF\x02\x01\x01\n",
    };
    FILE *null = fopen("/dev/null", "w");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *f = tmpfile();
        fputs(bad[i], f);
        rewind(f);
        int r = pr_check_compare(null, f, res, nres, 1.0);
        PR_CHECK(r == -1, "malformed baseline accepted (%d): '%s'", r, bad[i]);
        fclose(f);
    }
    /* a NUL byte, and a line longer than PR_CHECK_LINE_MAX */
    FILE *f = tmpfile();
    fwrite("C3 s<=8 0\0 junk\n", 1, 16, f);
    rewind(f);
    PR_CHECK(pr_check_compare(null, f, res, nres, 1.0) == -1, "baseline with a NUL byte accepted");
    fclose(f);
    f = tmpfile();
    for (int k = 0; k < PR_CHECK_LINE_MAX + 10; k++)
        fputc(k < 2 ? "C3"[k] : ' ', f);
    fputs("s<=8 0\n", f);
    rewind(f);
    PR_CHECK(pr_check_compare(null, f, res, nres, 1.0) == -1, "baseline line longer than the limit accepted");
    fclose(f);
    /* good content: comments, blank lines, CRLF, no final newline */
    f = tmpfile();
    fputs("# comment\n\n  C3 s<=8 0\r\nc3 s>8 0.0", f);
    rewind(f);
    pr_check_baseline_t B;
    char why[128];
    PR_CHECK(pr_check_baseline_read(&B, f, why, sizeof why) == 0 && B.n == 2, "good baseline refused: %s", why);
    pr_check_baseline_clear(&B);
    fclose(f);
    /* random bytes and mutated good lines: refused or read, never a crash (ASan build) and
     * never a value that is not finite and >= 0 */
    pr_rng_t rng;
    pr_rng_init(rng, seed);
    static const char good[] = "C4 fft/full 0.25\nC6 tight 1\n";
    for (int k = 0; k < 3000; k++) {
        char buf[600];
        size_t len = k % 2 ? sizeof good - 1 : (size_t)pr_rng_below(rng, sizeof buf);
        if (k % 2) {
            memcpy(buf, good, len);
            for (int m = 0; m < 3; m++)
                buf[pr_rng_below(rng, len)] = (char)pr_rng_below(rng, 256);
        } else {
            for (size_t i = 0; i < len; i++)
                buf[i] = k % 4 ? (char)pr_rng_below(rng, 256) : " \n#C4fult/0.e-9x"[pr_rng_below(rng, 16)];
        }
        f = tmpfile();
        fwrite(buf, 1, len, f);
        rewind(f);
        int st = pr_check_baseline_read(&B, f, why, sizeof why);
        int sane = 1;
        for (long e = 0; !st && e < B.n; e++)
            sane &= isfinite(B.e[e].value) && B.e[e].value >= 0 && pr_check_find(B.e[e].id) != NULL;
        PR_CHECK((st == 0 || st == PR_EINVAL) && sane, "baseline bytes #%d (seed %llu): status %d, sane %d", k,
                 (unsigned long long)seed, st, sane);
        pr_check_baseline_clear(&B);
        fclose(f);
    }
    fclose(null);
}

/* fake checks for the verdict rules */
static double fake_value, fake_bound;
static int fake_ok, fake_status, fake_observe;
static pr_check_verdict_t fake_verdict;
static int fake_run(pr_check_result_t *res, const pr_check_opts_t *opts)
{
    (void)opts;
    if (fake_observe)
        pr_check_observe(res, "fake", fake_value, fake_bound, fake_ok);
    if (fake_verdict == PR_CHECK_INFO) {
        res->verdict = PR_CHECK_INFO;
        res->worst = fake_value;
        res->bound = fake_bound;
    }
    return fake_status;
}

/* "pass" needs a trial, finite values and bounds and no error; otherwise FAIL. */
static void verdict_audit(void)
{
    static const struct {
        int observe;
        double value, bound;
        int ok, status;
        pr_check_verdict_t info, want;
        const char *what;
    } cases[] = {
        {1, 0.5, 1.0, 1, 0, PR_CHECK_PASS, PR_CHECK_PASS, "finite and within: pass"},
        {1, 0.5, 1.0, -1, 0, PR_CHECK_PASS, PR_CHECK_UNKNOWN, "undecided: unknown"},
        {1, 2.0, 1.0, 0, 0, PR_CHECK_PASS, PR_CHECK_FAIL, "exceeded: FAIL"},
        {0, 0, 0, 1, 0, PR_CHECK_PASS, PR_CHECK_FAIL, "no trial ran"},
        {1, NAN, 1.0, 1, 0, PR_CHECK_PASS, PR_CHECK_FAIL, "NaN value said ok"},
        {1, NAN, 1.0, -1, 0, PR_CHECK_PASS, PR_CHECK_FAIL, "NaN value said unknown"},
        {1, 0.5, NAN, 1, 0, PR_CHECK_PASS, PR_CHECK_FAIL, "NaN bound"},
        {1, 0.5, INFINITY, 1, 0, PR_CHECK_PASS, PR_CHECK_FAIL, "infinite bound said ok"},
        {1, INFINITY, 1.0, 1, 0, PR_CHECK_PASS, PR_CHECK_FAIL, "infinite value said ok"},
        {1, 0.5, 1.0, 1, PR_ENOMEM, PR_CHECK_PASS, PR_CHECK_FAIL, "an error after a passing trial"},
        {0, NAN, 1.0, 1, 0, PR_CHECK_INFO, PR_CHECK_FAIL, "timing with a NaN slope"},
        {0, 1.2, 1.0, 1, 0, PR_CHECK_INFO, PR_CHECK_INFO, "timing with a finite slope: info"},
    };
    pr_check_t fake = {"FAKE", "fake claim", "fake units", fake_run, 1};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake_observe = cases[i].observe;
        fake_value = cases[i].value;
        fake_bound = cases[i].bound;
        fake_ok = cases[i].ok;
        fake_status = cases[i].status;
        fake_verdict = cases[i].info;
        pr_check_opts_t o = {1, 1, PR_FAULT_NONE, 0, NULL, NULL, 0, NULL, NULL};
        pr_check_result_t r;
        int st = pr_check_run(&r, &fake, &o);
        PR_CHECK(r.verdict == cases[i].want && st == cases[i].status,
                 "%s: verdict %s (want %s), status %d (want %d); %s", cases[i].what,
                 pr_check_verdict_name(r.verdict), pr_check_verdict_name(cases[i].want), st, cases[i].status, r.note);
    }
    /* no trials: refused, not passed */
    pr_check_opts_t o = {0, 1, PR_FAULT_NONE, 0, NULL, NULL, 0, NULL, NULL};
    pr_check_result_t r;
    fake_observe = 1;
    fake_status = 0;
    fake_verdict = PR_CHECK_PASS;
    PR_CHECK(pr_check_run(&r, &fake, &o) == PR_EINVAL && r.verdict == PR_CHECK_FAIL, "0 trials: verdict %s",
             pr_check_verdict_name(r.verdict));
}

/* The Arb-reference checks at forced low precision (their references' minimum and a little
 * more): the claims are true, so every verdict is pass or unknown, never FAIL (a wide
 * tolerance ball used to refute G2's difference quotient at 128 bits), and a pass there is a
 * pass at the default precision. */
static void low_precision(uint64_t seed)
{
    static const char *ids[] = {"C6", "C9", "C11", "C14", "G1", "G2"};
    static const long precs[] = {PR_HIPREC_MIN_PREC, PR_HIPREC_MIN_PREC + 32};
    for (int p = 0; p < 2; p++)
        for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
            pr_check_opts_t o = {12, seed, PR_FAULT_NONE, 0, NULL, NULL, precs[p], NULL, NULL};
            pr_check_result_t r, rd;
            PR_CHECK_OK(pr_check_run(&r, pr_check_find(ids[i]), &o));
            PR_CHECK(r.verdict == PR_CHECK_PASS || r.verdict == PR_CHECK_UNKNOWN,
                     "%s at prec %ld (seed %llu): %s, worst %g, %s", ids[i], precs[p], (unsigned long long)seed,
                     pr_check_verdict_name(r.verdict), r.worst, r.note);
            if (r.verdict == PR_CHECK_PASS) {
                o.prec = 0;
                PR_CHECK_OK(pr_check_run(&rd, pr_check_find(ids[i]), &o));
                PR_CHECK(rd.verdict == PR_CHECK_PASS, "%s passes at prec %ld, %s at the default", ids[i], precs[p],
                         pr_check_verdict_name(rd.verdict));
            }
        }
}

/* The cost model of pr_check_predict, by its properties: every claim has a positive finite cost
 * that does not fall with --trials; a replay costs one trial, except C7 and C8 (their fit computes
 * every trial); the timing claims (C5, G5: at most 3 repetitions) and C10 (fixed sizes) stop growing
 * at 3 trials. The fast suite's check all --trials 20 fits the default budget of an hour; a million
 * trials do not. */
static void predict_model(void)
{
    double all20 = 0.0, allM = 0.0;
    for (int i = 0; i < pr_ncheck; i++) {
        const pr_check_t *c = &pr_checks[i];
        const long T[] = {1, 2, 3, 20, 1000, 1000000};
        double prev = 0.0, at[6];
        for (int k = 0; k < 6; k++) {
            pr_check_opts_t o = {T[k], 1, PR_FAULT_NONE, 0, NULL, NULL, 0, NULL, NULL};
            PR_CHECK_OK(pr_check_predict(&at[k], c, &o));
            PR_CHECK(isfinite(at[k]) && at[k] > 0 && at[k] >= prev, "%s at %ld trials: predicted %g s (at fewer: %g)",
                     c->id, T[k], at[k], prev);
            prev = at[k];
        }
        all20 += at[3];
        allM += at[5];
        int fit = !strcmp(c->id, "C7") || !strcmp(c->id, "C8");
        if (c->replayable) {
            pr_check_opts_t o = {1000000, 1, PR_FAULT_NONE, 3, NULL, NULL, 0, NULL, NULL};
            double one;
            PR_CHECK_OK(pr_check_predict(&one, c, &o));
            PR_CHECK(one == (fit ? at[5] : at[0]), "%s --replay of trial 3 of 1e6: predicted %g s, want %g", c->id, one,
                     fit ? at[5] : at[0]);
            PR_CHECK(at[5] > at[2], "%s: a million trials cost no more than 3 (%g s)", c->id, at[5]);
        } else {
            PR_CHECK(at[5] == at[2], "%s: fixed sizes, yet 1e6 trials predicted %g s against %g s for 3", c->id, at[5],
                     at[2]);
        }
        pr_check_opts_t none = {0, 1, PR_FAULT_NONE, 0, NULL, NULL, 0, NULL, NULL};
        double x;
        PR_CHECK(pr_check_predict(&x, c, &none) == PR_EINVAL, "%s: 0 trials predicted", c->id);
    }
    printf("predicted: check all --trials 20 %.1f s, --trials 1000000 %.0f s\n", all20, allM);
    PR_CHECK(all20 < 3600 && allM > 3600, "check all predicted %g s at 20 trials, %g s at 1e6", all20, allM);
}

/* Runs `$POLYROPE args` (pr_test_cli_run) with its CPU time capped a little past ours: a run the
 * budget fails to refuse would take days, and ends here as a failure instead of a hang. The
 * wall time it took goes to *seconds. */
static int run_capped(const char *args, double *seconds)
{
    struct rlimit old, cap;
    int have = !getrlimit(RLIMIT_CPU, &old);
    cap = old;
    cap.rlim_cur = (rlim_t)((double)clock() / CLOCKS_PER_SEC) + 20;
    if (have && (old.rlim_cur == RLIM_INFINITY || cap.rlim_cur < old.rlim_cur) &&
        (old.rlim_max == RLIM_INFINITY || cap.rlim_cur <= old.rlim_max))
        setrlimit(RLIMIT_CPU, &cap);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = pr_test_cli_run("test_checks", args);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (have)
        setrlimit(RLIMIT_CPU, &old);
    *seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return rc;
}

/* A run predicted past --max-seconds is refused up front: exit 2, one line naming the prediction and
 * the option, nothing on stdout, no --record or --dump written, in well under a second. A replay
 * costs one trial (C4), but C7 computes all the run's trials for its fit. */
static void budget_cli(void)
{
    static const struct { const char *args; int want; } runs[] = {
        {"check all --trials 1000000 --record test_checks_budget_rec.txt", 2},
        {"check C3 --max-seconds 0.000001", 2},
        {"check C4 --trials 1000000 --max-seconds 1 --dump test_checks_budget_dump", 2},
        {"check C7 --replay 1/2 --trials 1000000", 2},
        {"check C4 --replay 1/2 --trials 1000000", 0},
    };
    struct stat sb;
    glob_t g;
    /* leftovers of an earlier run (on code that did not refuse) would fail the checks below */
    if (!glob("test_checks_budget_rec.txt*", 0, NULL, &g)) {
        for (size_t k = 0; k < g.gl_pathc; k++)
            remove(g.gl_pathv[k]);
        globfree(&g);
    }
    rmdir("test_checks_budget_dump");
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        double secs;
        int rc = run_capped(runs[i].args, &secs);
        if (runs[i].want == 0) {
            PR_CHECK(rc == 0 && !pr_test_cli_err[0], "polyrope %s: exit %d (want 0), stderr '%.200s'", runs[i].args, rc,
                     pr_test_cli_err);
            continue;
        }
        printf("refused in %.3f s: %s", secs, pr_test_cli_err);
        PR_CHECK(rc == 2 && pr_test_lines(pr_test_cli_err) == 1 && !pr_test_cli_out[0] &&
                 strstr(pr_test_cli_err, "predicted") && strstr(pr_test_cli_err, "--max-seconds"),
                 "polyrope %s: exit %d (want 2), stderr '%.200s' (want one line naming the prediction and "
                 "--max-seconds), stdout '%.80s' (want none)", runs[i].args, rc, pr_test_cli_err, pr_test_cli_out);
        PR_CHECK(secs < 0.5, "polyrope %s: refused after %.3f s (want well under a second)", runs[i].args, secs);
    }
    int found = glob("test_checks_budget_rec.txt*", 0, NULL, &g);
    if (!found)
        globfree(&g);
    PR_CHECK(found == GLOB_NOMATCH, "a refused run wrote test_checks_budget_rec.txt (or its temporary)");
    PR_CHECK(stat("test_checks_budget_dump", &sb), "a refused run created its --dump folder");
}

/* Progress goes to stderr when it is a terminal: claim k of N and an ETA (run under a pty, stdout
 * to /dev/null); when it is not, nothing (the runs above and in main check an empty stderr). */
static void progress_tty(void)
{
    const char *bin = getenv("POLYROPE");
    int master;
    pid_t pid = forkpty(&master, NULL, NULL, NULL);
    PR_CHECK(pid >= 0, "forkpty failed");
    if (pid < 0)
        return;
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, 1);
        execl(bin, bin, "check", "C3", "C12", "--trials", "3", (char *)NULL);
        _exit(127);
    }
    char buf[8192];
    size_t len = 0;
    ssize_t r;
    while (len + 1 < sizeof buf && (r = read(master, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)r;
    buf[len] = 0;
    close(master);
    int ws;
    waitpid(pid, &ws, 0);
    PR_CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "check C3 C12 --trials 3 on a terminal: status %d", ws);
    PR_CHECK(strstr(buf, "claim 1 of 2 (C3)") && strstr(buf, "claim 2 of 2 (C12), trial 1/3") && strstr(buf, "ETA"),
             "no progress on a terminal's stderr: '%.300s'", buf);
}

int main(void)
{
    uint64_t seed = pr_test_seed("test_checks", 20261123);
    pr_check_opts_t o = {3, seed, PR_FAULT_NONE, 0, NULL, NULL, 0, NULL, NULL};
    pr_check_result_t *res = calloc((size_t)pr_ncheck, sizeof(*res));

    /* every claim of docs/claims.md has a check */
    static const char *ids[] = {"C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10", "C11",
                                "C12", "C14", "G1", "G2", "G3", "G4", "G5", "F1"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        PR_CHECK(pr_check_find(ids[i]) != NULL, "no check for %s", ids[i]);

    for (int i = 0; i < pr_ncheck; i++) {
        pr_check_verdict_t v = run(pr_checks[i].id, &o, &res[i]);
        PR_CHECK(v == PR_CHECK_PASS || v == PR_CHECK_INFO,
                 "%s: verdict %s, worst %g bound %g (%s)", pr_checks[i].id, pr_check_verdict_name(v),
                 res[i].worst, res[i].bound, res[i].note);
        PR_CHECK(res[i].trials > 0, "%s ran no trial", pr_checks[i].id);
    }

    /* broken inputs: each must make its check fail */
    static const struct { const char *id; pr_check_fault_t fault; } broken[] = {
        {"C1", PR_FAULT_SYMBOL}, {"C4", PR_FAULT_SYMBOL}, {"C2", PR_FAULT_POLY_COEF},
        {"G1", PR_FAULT_GRAD_SIGN},
    };
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        pr_check_result_t r;
        pr_check_opts_t b = o;
        b.fault = broken[i].fault;
        pr_check_verdict_t v = run(broken[i].id, &b, &r);
        PR_CHECK(v == PR_CHECK_FAIL, "%s with fault %d: verdict %s, worst %g", broken[i].id,
                 broken[i].fault, pr_check_verdict_name(v), r.worst);
        PR_CHECK(r.first_fail > 0 && strstr(r.note, "replay: polyrope check"), "%s: no replay line", broken[i].id);
        printf("broken input (fault %d): %s %s, worst %.3g vs bound %.3g; %s\n", broken[i].fault, r.id,
               pr_check_verdict_name(v), r.worst, r.bound, r.note);
    }

    /* record, then compare: identical results do not regress; a smaller recorded value does */
    FILE *f = tmpfile();
    PR_CHECK_OK(pr_check_record(f, res, pr_ncheck, &o));
    rewind(f);
    FILE *null = fopen("/dev/null", "w");
    PR_CHECK(pr_check_compare(null, f, res, pr_ncheck, 0.0) == 0, "identical run regressed");
    fclose(f);
    int k = -1;
    for (int i = 0; i < pr_ncheck && k < 0; i++)
        if (res[i].nconfig && res[i].config_worst[0] > 0)
            k = i;
    PR_CHECK(k >= 0, "no check observed a positive value");
    if (k >= 0) {
        f = tmpfile();
        fprintf(f, "# lowered\n%s %s %.17g\n", res[k].id, res[k].config[0], res[k].config_worst[0] / 4);
        rewind(f);
        PR_CHECK(pr_check_compare(null, f, res, pr_ncheck, 1.0) == 1, "a 4x growth passed margin 1");
        fclose(f);
    }
    fclose(null);
    baseline_strict(res, pr_ncheck, seed);
    verdict_audit();
    low_precision(seed);
    predict_model();

    /* command line: bad usage is exit 2 with one line on stderr and nothing run (no table) */
    if (getenv("POLYROPE")) {
        static const char *bad[] = {
            "check C99", "check all C99", "check C3 C99", "check C99 all", "check all C3", "check C3 c3",
            "check C3 --baseline no/such/file", "check C3 --baseline test_checks_garbage.txt",
            "check C3 --baseline test_checks_unknown_id.txt", "check C3 --record no/such/dir/rec.txt",
            "check C3 --record .", "check C3 --record ''",
            "check C4 --replay 1", "check C4 --replay x/1", "check C4 --replay 1/0", "check C4 --replay 1/2x",
            "check C4 C6 --replay 1/2", "check all --replay 1/2", "check C10 --replay 1/2", "check C4 --replay 1/5 --trials 3",
            "check C4 --replay 1/2 --seed 3", "check C4 --replay 1/2 --record r.txt", "check C5 --dump test_checks_dump",
            "check C4 --dump no/such/parent/dir", "check C3 --max-seconds -1", "check C3 --max-seconds x",
        };
        f = fopen("test_checks_garbage.txt", "w");
        if (f) {
            fputs("\x7f" "ELF\x01\x02 binary junk\n", f);
            fclose(f);
        }
        f = fopen("test_checks_unknown_id.txt", "w");
        if (f) {
            fputs("# a baseline naming a claim that does not exist\nC99 rope/full 0.5\n", f);
            fclose(f);
        }
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            int rc = pr_test_cli_run("test_checks", bad[i]);
            PR_CHECK(rc == 2 && pr_test_lines(pr_test_cli_err) == 1 && !pr_test_cli_out[0],
                     "polyrope %s: exit %d (want 2), stderr %d lines (want 1), stdout '%.80s' (want none)", bad[i],
                     rc, pr_test_lines(pr_test_cli_err), pr_test_cli_out);
        }
        const char *args = "check C3 C12 --trials 2 --record checks_rec.txt";
        PR_CHECK(pr_test_cli_run("test_checks", args) == 0 && !pr_test_cli_err[0], "polyrope %s: stderr '%.200s'",
                 args, pr_test_cli_err);
        /* a baseline recording 0 for a configuration that observes more: a regression */
        args = "check C4 --trials 2 --record checks_rec4.txt";
        PR_CHECK(pr_test_cli_run("test_checks", args) == 0, "polyrope %s", args);
        char line[256] = "", claim[16], config[64];
        f = fopen("checks_rec4.txt", "r");
        while (f && fgets(line, sizeof line, f) && line[0] == '#')
            ;
        if (f)
            fclose(f);
        PR_CHECK(sscanf(line, "%15s %63s", claim, config) == 2, "no entry in checks_rec4.txt: '%s'", line);
        f = fopen("checks_rec4.txt", "w");
        if (f) {
            fprintf(f, "%s %s 0\n", claim, config);
            fclose(f);
        }
        args = "check C4 --trials 2 --baseline checks_rec4.txt";
        PR_CHECK(pr_test_cli_run("test_checks", args) == 1, "regression not reported: polyrope %s", args);
        /* --help states what "pass" means */
        PR_CHECK(pr_test_cli_run("test_checks", "check --help") == 0 &&
                 strstr(pr_test_cli_out, "pass     at least one trial observed") && strstr(pr_test_cli_out, "--replay"),
                 "check --help does not define pass or --replay");
        PR_CHECK(pr_test_cli_run("test_checks", "check --help") == 0 && strstr(pr_test_cli_out, "--max-seconds") &&
                 strstr(pr_test_cli_out, "(default 3600)"), "check --help does not state --max-seconds and its default");
        budget_cli();
        progress_tty();
    }
    free(res);
    return pr_test_finish("test_checks");
}
