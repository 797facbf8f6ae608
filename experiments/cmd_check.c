/* polyrope check: the proofs-check claims (docs/cli.md, docs/claims.md). Every argument, the baseline's
 * content and the output paths are validated before any check runs. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "pr_status.h"
#include "pr_timing.h"
#include "proofs-check/checks.h"
#include "cli.h"
#include "commands.h"

/* "SEED/TRIAL", both decimal, TRIAL in [1, 1e6] */
static int parse_replay(const char *s, uint64_t *seed, long *trial)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '/' || end[1] < '0' || end[1] > '9')
        return -1;
    const char *t = end + 1;
    long k = strtol(t, &end, 10);
    if (errno || *end || k < 1 || k > 1000000)
        return -1;
    *seed = v;
    *trial = k;
    return 0;
}

/* The claims to run: "all" alone (or nothing) means every one; otherwise known names, each
 * once. Returns 0, or an exit status after one line on stderr. */
static int pick_claims(const pr_check_t **run, int *nrun, char **pos, int npos)
{
    *nrun = 0;
    for (int p = 0; p < npos; p++) {
        if (!strcasecmp(pos[p], "all")) {
            if (npos > 1)
                return pr_cli_fail("check", "'all' cannot be combined with claim names: give 'all' alone or the names");
            continue;
        }
        const pr_check_t *c = pr_check_find(pos[p]);
        if (!c)
            return pr_cli_fail("check", "unknown claim '%s' (see polyrope check --list)", pos[p]);
        for (int q = 0; q < *nrun; q++)
            if (run[q] == c)
                return pr_cli_fail("check", "claim '%s' named twice: name each claim once", pos[p]);
        run[(*nrun)++] = c;
    }
    if (*nrun == 0)
        for (; *nrun < pr_ncheck; (*nrun)++)
            run[*nrun] = &pr_checks[*nrun];
    return 0;
}

/* --dump DIR: DIR exists as a writable folder (created if its parent exists) and holds no
 * earlier dump of these claims */
static int prepare_dump(const char *dir, const pr_check_t **run, int nrun)
{
    struct stat sb;
    if (!*dir)
        return pr_cli_fail("check", "--dump needs a folder name");
    if (stat(dir, &sb) && (errno != ENOENT || mkdir(dir, 0777)))
        return pr_cli_fail("check", "cannot create --dump folder '%s': %s (its parent must exist)", dir, strerror(errno));
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode) || access(dir, W_OK | X_OK))
        return pr_cli_fail("check", "--dump '%s' is not a writable folder: give a new or writable folder", dir);
    for (int i = 0; i < nrun; i++) {
        char path[4096];
        int len = snprintf(path, sizeof path, "%s/%s", dir, run[i]->id);
        if (len < 0 || (size_t)len >= sizeof path - 64)
            return pr_cli_fail("check", "--dump folder name too long");
        if (!stat(path, &sb))
            return pr_cli_fail("check", "'%s' exists from an earlier dump: give a new folder or remove it", path);
    }
    return 0;
}

/* Progress on a terminal's stderr: claim k of N, its trial, and the time left: the prediction
 * still to run, scaled by how the run has kept to it so far. */
typedef struct {
    int show, k, n;
    const char *id;
    long trials;           /* of the current claim; 0 when it has no trials to count (C5, C10, G5) */
    double t0, last, total, before, claim; /* predicted: the whole run, the claims done, this claim */
} progress_t;

static void progress_line(progress_t *p, long trial)
{
    double now = pr_timing_wall(), el = now - p->t0;
    if (trial > 1 && now - p->last < 0.25)
        return;
    p->last = now;
    double done = p->before + (p->trials ? p->claim * (double)(trial - 1) / (double)p->trials : 0.0);
    double left = p->total - done;
    if (done > 1.0 && el > 1.0)
        left *= el / done;
    fprintf(stderr, "\rpolyrope check: claim %d of %d (%s)", p->k, p->n, p->id);
    if (p->trials)
        fprintf(stderr, ", trial %ld/%ld", trial, p->trials);
    long eta = (long)ceil(left);
    fprintf(stderr, ", ETA %ld:%02ld   ", eta / 60, eta % 60);
}

static void progress_trial(void *arg, long trial)
{
    progress_line(arg, trial);
}

static void progress_clear(const progress_t *p)
{
    if (p->show)
        fprintf(stderr, "\r%79s\r", "");
}

int pr_cmd_check(int argc, char **argv)
{
    long trials = 20, seed = 20261123;
    double margin = 1.0, max_seconds = 3600;
    const char *record = NULL, *baseline = NULL, *replay = NULL, *dump = NULL;
    int list = 0;
    pr_opt_t o[] = {
        {"trials", PR_OPT_INT, &trials, "random instances per claim", 0, 1, 1e6, 0},
        {"seed", PR_OPT_INT, &seed, "seed of every check (same seed, same instances)", 0, 0, 9.2e18, 0},
        {"record", PR_OPT_STRING, &record, "write the worst observed value per claim and configuration to FILE", 0, 0, 0, 0},
        {"baseline", PR_OPT_STRING, &baseline, "fail if any value grew beyond the one recorded in FILE by more than --margin", 0, 0, 0, 0},
        {"margin", PR_OPT_DOUBLE, &margin, "allowed relative growth over the baseline (1 = twice the recorded worst)", 0, 0, 1e6, 0},
        {"replay", PR_OPT_STRING, &replay, "SEED/TRIAL: re-run that one trial of one claim, printing its instance and result", 0, 0, 0, 0},
        {"dump", PR_OPT_STRING, &dump, "write each trial's instance and result to DIR/CLAIM/trial-K/ (trial.txt, *.npy)", 0, 0, 0, 0},
        {"max-seconds", PR_OPT_DOUBLE, &max_seconds, "refuse up front when the predicted CPU time is above this", 0, 0, 1e9, 0},
        {"list", PR_OPT_FLAG, &list, "list the claims and exit", 0, 0, 0, 0},
    };
    pr_cmd_spec_t spec = {
        "check", "[NAME...|all]",
        "run the proofs-check claims of docs/claims.md (C1-C14, G1-G5, F1)",
        "Each claim is a seeded randomised program over a range of n, d, B, eps and kinds of W\n"
        "(rope, rope-neox, general, identity; full, causal and ALiBi masks). It prints claim,\n"
        "trials, worst observed, bound and verdict:\n"
        "  pass     at least one trial observed; every observed value and bound finite, every\n"
        "           value within its bound (proven with Arb/FLINT where the claim says\n"
        "           certified); no error. Trials a check skips (counted in its note) are\n"
        "           neither passes nor failures; 'trials' counts the observed ones\n"
        "  FAIL     a trial exceeded its bound or gave NaN or infinity, no trial was observed,\n"
        "           or the check could not run (reason in the note)\n"
        "  unknown  an Arb enclosure straddled the bound: undecided, not a pass\n"
        "  info     timing (C5, G5): slope and crossover, never fails on noise (FAIL if the\n"
        "           slope is not a finite number)\n"
        "Name claims (each once) or 'all' alone; an unknown name is refused. Trials are\n"
        "independent: trial K of seed S is the same instance whatever --trials is, so\n"
        "--replay S/K re-runs it alone, and --dump writes every trial's inputs (.npy, exact\n"
        "doubles) with the observed value and bound (%.17g and %a) for re-checking outside\n"
        "polyrope. C5, C10 and G5 (timing, fixed sizes) have no --replay or --dump; C7 and C8\n"
        "compute every trial for their fit (give the run's --trials) and show the one replayed.\n"
        "The run's CPU time is predicted first (a cost per claim and trial, calibrated on the\n"
        "project's machine: proofs-check/checks.c) and refused past --max-seconds; a terminal's\n"
        "stderr shows progress (claim k of N, trial, ETA).\n"
        "Exit status 1 if any claim fails or any value regressed against --baseline.",
        o, (int)(sizeof o / sizeof o[0])};
    char **pos = malloc(sizeof(char *) * (argc > 0 ? argc : 1));
    const pr_check_t **run = malloc(sizeof(*run) * (size_t)(pr_ncheck + argc + 1));
    double *cost = malloc(sizeof(*cost) * (size_t)(pr_ncheck + argc + 1)); /* predicted, per claim */
    int npos = 0, nrun = 0;
    if (!pos || !run || !cost) {
        free(pos);
        free(run);
        free(cost);
        return pr_cli_fail_status("check", PR_ENOMEM, "arguments");
    }
    int rc = pr_cli_parse(&spec, argc, argv, pos, &npos);
    if (!rc && list) {
        for (int i = 0; i < pr_ncheck; i++)
            printf("%-4s %s%s\n", pr_checks[i].id, pr_checks[i].statement,
                   pr_checks[i].replayable ? "" : " [no --replay/--dump]");
        rc = -1;
    }
    if (!rc)
        rc = pick_claims(run, &nrun, pos, npos);
    free(pos);
    pr_check_opts_t copts = {trials, (uint64_t)seed, PR_FAULT_NONE, 0, NULL, NULL, 0, NULL, NULL};
    if (!rc && replay) {
        if (parse_replay(replay, &copts.seed, &copts.only))
            rc = pr_cli_fail("check", "--replay expects SEED/TRIAL, e.g. 20261123/3 (TRIAL from 1)");
        else if (nrun != 1 || npos != 1)
            rc = pr_cli_fail("check", "--replay re-runs one trial of one claim: name exactly one claim");
        else if (pr_cli_given(&spec, "seed"))
            rc = pr_cli_fail("check", "--replay SEED/TRIAL sets the seed: drop --seed");
        else if (record || baseline)
            rc = pr_cli_fail("check", "--replay runs one trial: it cannot --record or compare with --baseline");
        else if (pr_cli_given(&spec, "trials") && trials < copts.only)
            rc = pr_cli_fail("check", "--replay trial %ld is beyond --trials %ld", copts.only, trials);
        else if (!pr_cli_given(&spec, "trials") && copts.trials < copts.only)
            copts.trials = copts.only; /* C7 and C8 fit over --trials: give the run's */
        copts.show = stdout;
    }
    for (int i = 0; !rc && (replay || dump) && i < nrun; i++)
        if (!run[i]->replayable)
            rc = pr_cli_fail("check", "%s fits over all its trials: it has no --replay or --dump (name replayable claims, see --list)",
                             run[i]->id);
    /* the budget, before anything is written */
    double predicted = 0.0, most = -1.0;
    const char *most_id = "";
    for (int i = 0; !rc && i < nrun; i++) {
        int st = pr_check_predict(&cost[i], run[i], &copts);
        if (st)
            rc = pr_cli_fail_status("check", st, "predicting the run time");
        predicted += cost[i];
        if (cost[i] > most) {
            most = cost[i];
            most_id = run[i]->id;
        }
    }
    if (!rc && predicted > max_seconds) {
        char secs[32], hours[32] = "", in[32] = "";
        snprintf(secs, sizeof secs, predicted < 10 ? "%.2g" : "%.0f", predicted);
        if (predicted >= 3600)
            snprintf(hours, sizeof hours, ", %.1f h", predicted / 3600);
        if (nrun > 1)
            snprintf(in, sizeof in, ", most in %s", most_id);
        rc = pr_cli_fail("check", "%d claim%s at %ld trials: predicted %s s of CPU (calibrated%s%s), past "
                         "--max-seconds %g: raise it or give fewer --trials", nrun, nrun == 1 ? "" : "s",
                         copts.trials, secs, hours, in, max_seconds);
    }
    if (!rc && dump && !(rc = prepare_dump(dump, run, nrun)))
        copts.dump = dump;
    /* the baseline read and judged now, the record's folder proven writable now */
    pr_check_baseline_t B = {0, 0, NULL};
    int have_base = 0, rfd = -1;
    char rtmp[4096] = "";
    if (!rc && baseline) {
        FILE *bf = fopen(baseline, "r");
        char why[128];
        int st = bf ? pr_check_baseline_read(&B, bf, why, sizeof why) : PR_EIO;
        if (bf)
            fclose(bf);
        if (!bf)
            rc = pr_cli_fail("check", "cannot read baseline '%s': give an existing file written by --record", baseline);
        else if (st)
            rc = pr_cli_fail("check", "baseline '%s' %s%s: expected lines 'CLAIM CONFIG VALUE' as --record writes",
                             baseline, st == PR_EINVAL ? "is malformed, " : "", st == PR_EINVAL ? why : pr_strerror(st));
        have_base = !rc;
    }
    if (!rc && record) {
        struct stat sb;
        int len = snprintf(rtmp, sizeof rtmp, "%s.tmpXXXXXX", record);
        if (!*record || len < 0 || (size_t)len >= sizeof rtmp || (!stat(record, &sb) && !S_ISREG(sb.st_mode)) ||
            (rfd = mkstemp(rtmp)) < 0) {
            rtmp[0] = 0;
            rc = pr_cli_fail("check", "cannot write record '%s': give a file in an existing, writable folder", record);
        } else {
            mode_t m = umask(0);
            umask(m);
            fchmod(rfd, 0666 & ~m); /* mkstemp's 0600 would make the record private */
        }
    }
    if (rc) {
        pr_check_baseline_clear(&B);
        free(run);
        free(cost);
        return rc < 0 ? 0 : rc;
    }

    pr_check_result_t *res = calloc((size_t)nrun, sizeof(*res));
    if (!res) {
        if (rfd >= 0) {
            close(rfd);
            unlink(rtmp);
        }
        pr_check_baseline_clear(&B);
        free(run);
        free(cost);
        return pr_cli_fail_status("check", PR_ENOMEM, "results");
    }
    int failed = 0, counts[PR_CHECK_INFO + 1] = {0};
    if (replay)
        printf("polyrope check %s: replay of trial %ld, seed %llu (of %ld trials)\n", run[0]->id, copts.only,
               (unsigned long long)copts.seed, copts.trials);
    else
        printf("polyrope check: seed %ld, %ld trials per claim\n", seed, trials);
    fflush(stdout);
    /* on --replay the trial's instance is printed as it runs: no progress line through it */
    progress_t pg = {isatty(2) && !replay, 0, nrun, "", 0, pr_timing_wall(), 0.0, predicted, 0.0, 0.0};
    if (pg.show) {
        copts.progress = progress_trial;
        copts.progress_arg = &pg;
    }
    for (int i = 0; i < nrun; i++) {
        if (pg.show) {
            pg.claim = cost[i];
            pg.k = i + 1;
            pg.id = run[i]->id;
            pg.trials = run[i]->replayable ? copts.trials : 0;
            progress_line(&pg, 1);
        }
        int st = pr_check_run(&res[i], run[i], &copts);
        progress_clear(&pg);
        pg.before += pg.claim;
        if (replay)
            printf("\n");
        if (i == 0)
            pr_check_print_header(stdout);
        if (st)
            fprintf(stderr, "polyrope check: %s could not run: %s\n", run[i]->id, pr_strerror(st));
        pr_check_print(stdout, &res[i]);
        fflush(stdout);
        counts[res[i].verdict]++;
        failed |= res[i].verdict == PR_CHECK_FAIL;
    }
    printf("%d pass, %d FAIL, %d unknown, %d info\n", counts[PR_CHECK_PASS], counts[PR_CHECK_FAIL],
           counts[PR_CHECK_UNKNOWN], counts[PR_CHECK_INFO]);
    if (dump)
        printf("dumped each trial to %s/CLAIM/trial-K/\n", dump);
    if (have_base) {
        int bad = pr_check_baseline_compare(stdout, &B, res, nrun, margin);
        printf("baseline %s: %d regression%s (margin %g)\n", baseline, bad, bad == 1 ? "" : "s", margin);
        failed |= bad > 0;
    }
    pr_check_baseline_clear(&B);
    if (rfd >= 0) {
        FILE *rf = fdopen(rfd, "w");
        int st = rf ? pr_check_record(rf, res, nrun, &copts) : PR_EIO;
        if (!rf)
            close(rfd);
        if ((rf && fclose(rf)) || (!st && rename(rtmp, record)))
            st = PR_EIO;
        if (st) {
            unlink(rtmp);
            free(run);
            free(cost);
            free(res);
            fprintf(stderr, "polyrope check: cannot write record '%s': %s\n", record, pr_strerror(st));
            return 1;
        }
        printf("recorded worst values to %s\n", record);
    }
    free(run);
    free(cost);
    free(res);
    return failed ? 1 : 0;
}
