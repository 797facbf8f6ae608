/* polyrope check: the proofs-check claims (DESIGN.md §3, §4). */
#include <stdlib.h>
#include <string.h>
#include "pr_status.h"
#include "proofs-check/checks.h"
#include "cli.h"
#include "commands.h"

int pr_cmd_check(int argc, char **argv)
{
    long trials = 20, seed = 20261123;
    double margin = 1.0;
    const char *record = NULL, *baseline = NULL;
    int list = 0;
    pr_opt_t o[] = {
        {"trials", PR_OPT_INT, &trials, "random instances per claim", 0, 1, 1e6, 0},
        {"seed", PR_OPT_INT, &seed, "seed of every check (same seed, same instances)", 0, 0, 9.2e18, 0},
        {"record", PR_OPT_STRING, &record, "write the worst observed value per claim and configuration to FILE", 0, 0, 0, 0},
        {"baseline", PR_OPT_STRING, &baseline, "fail if any value grew beyond the one recorded in FILE by more than --margin", 0, 0, 0, 0},
        {"margin", PR_OPT_DOUBLE, &margin, "allowed relative growth over the baseline (1 = twice the recorded worst)", 0, 0, 1e6, 0},
        {"list", PR_OPT_FLAG, &list, "list the claims and exit", 0, 0, 0, 0},
    };
    pr_cmd_spec_t spec = {
        "check", "[NAME...|all]",
        "run the proofs-check claims of DESIGN.md section 4 (C1-C14, G1-G5, F1)",
        "Each claim is a seeded randomised program over a range of n, d, B, eps and kinds of W\n"
        "(rope, rope-neox, general, identity; full, causal and ALiBi masks). It prints claim,\n"
        "trials, worst observed, bound and verdict: pass, FAIL, unknown (an Arb enclosure\n"
        "straddled the bound), not built yet (the claim's module has not landed: nothing\n"
        "checked), info (timing: slope and crossover, never fails on noise).\n"
        "Exit status 1 if any claim fails or any value regressed against --baseline.",
        o, (int)(sizeof o / sizeof o[0])};
    char **pos = malloc(sizeof(char *) * (argc > 0 ? argc : 1));
    int npos = 0;
    if (!pos)
        return pr_cli_fail_status("check", PR_ENOMEM, "arguments");
    int rc = pr_cli_parse(&spec, argc, argv, pos, &npos);
    if (rc) {
        free(pos);
        return rc < 0 ? 0 : rc;
    }
    if (list) {
        for (int i = 0; i < pr_ncheck; i++)
            printf("%-4s %s\n", pr_checks[i].id, pr_checks[i].statement);
        free(pos);
        return 0;
    }
    /* which claims: none named or "all" means every one */
    const pr_check_t **run = malloc(sizeof(*run) * (size_t)(pr_ncheck + npos));
    int nrun = 0;
    for (int p = 0; p < npos; p++) {
        if (!strcmp(pos[p], "all")) {
            npos = 0;
            break;
        }
        const pr_check_t *c = pr_check_find(pos[p]);
        if (!c) {
            rc = pr_cli_fail("check", "unknown claim '%s' (see polyrope check --list)", pos[p]);
            free(run);
            free(pos);
            return rc;
        }
        run[nrun++] = c;
    }
    if (npos == 0)
        for (nrun = 0; nrun < pr_ncheck; nrun++)
            run[nrun] = &pr_checks[nrun];
    free(pos);

    FILE *bf = NULL;
    if (baseline && !(bf = fopen(baseline, "r"))) {
        free(run);
        return pr_cli_fail("check", "cannot read baseline '%s': give an existing file written by --record", baseline);
    }
    pr_check_opts_t copts = {trials, (uint64_t)seed, PR_FAULT_NONE};
    pr_check_result_t *res = calloc((size_t)nrun, sizeof(*res));
    int failed = 0, counts[5] = {0};
    printf("polyrope check: seed %ld, %ld trials per claim\n", seed, trials);
    pr_check_print_header(stdout);
    for (int i = 0; i < nrun; i++) {
        int st = pr_check_run(&res[i], run[i], &copts);
        if (st) {
            fprintf(stderr, "polyrope check: %s could not run: %s\n", run[i]->id, pr_strerror(st));
            res[i].verdict = PR_CHECK_FAIL;
        }
        pr_check_print(stdout, &res[i]);
        fflush(stdout);
        counts[res[i].verdict]++;
        failed |= res[i].verdict == PR_CHECK_FAIL;
    }
    printf("%d pass, %d FAIL, %d unknown, %d not built yet, %d info\n",
           counts[PR_CHECK_PASS], counts[PR_CHECK_FAIL], counts[PR_CHECK_UNKNOWN],
           counts[PR_CHECK_NOTBUILT], counts[PR_CHECK_INFO]);
    if (bf) {
        int bad = pr_check_compare(stdout, bf, res, nrun, margin);
        fclose(bf);
        if (bad < 0) {
            free(run);
            free(res);
            return pr_cli_fail("check", "baseline '%s' is malformed: expected lines 'CLAIM CONFIG VALUE'", baseline);
        }
        printf("baseline %s: %d regression%s (margin %g)\n", baseline, bad, bad == 1 ? "" : "s", margin);
        failed |= bad > 0;
    }
    if (record) {
        FILE *rf = fopen(record, "w");
        int st = rf ? pr_check_record(rf, res, nrun, &copts) : PR_EIO;
        if (rf && fclose(rf))
            st = PR_EIO;
        if (st) {
            free(run);
            free(res);
            return pr_cli_fail("check", "cannot write record '%s': check the directory exists and is writable", record);
        }
        printf("recorded worst values to %s\n", record);
    }
    free(run);
    free(res);
    return failed ? 1 : 0;
}
