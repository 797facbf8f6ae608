/* proofs-check: every check runs at small size and passes (or says honestly that its module is
 * not built); deliberately broken inputs make the relevant checks fail; the regression
 * baseline catches a value that grew. */
#include <stdlib.h>
#include <string.h>
#include "polyrope.h"
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

int main(void)
{
    uint64_t seed = pr_test_seed("test_checks", 20261123);
    pr_check_opts_t o = {3, seed, PR_FAULT_NONE};
    pr_check_result_t *res = calloc((size_t)pr_ncheck, sizeof(*res));

    /* every claim of DESIGN.md §4 has a check */
    static const char *ids[] = {"C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10", "C11",
                                "C12", "C14", "G1", "G2", "G3", "G4", "G5", "F1"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        PR_CHECK(pr_check_find(ids[i]) != NULL, "no check for %s", ids[i]);

    for (int i = 0; i < pr_ncheck; i++) {
        pr_check_verdict_t v = run(pr_checks[i].id, &o, &res[i]);
        PR_CHECK(v == PR_CHECK_PASS || v == PR_CHECK_NOTBUILT || v == PR_CHECK_INFO,
                 "%s: verdict %s, worst %g bound %g (%s)", pr_checks[i].id, pr_check_verdict_name(v),
                 res[i].worst, res[i].bound, res[i].note);
        PR_CHECK(v == PR_CHECK_NOTBUILT || res[i].trials > 0, "%s ran no trial", pr_checks[i].id);
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
    f = tmpfile();
    fprintf(f, "C1 only-two-fields\n");
    rewind(f);
    PR_CHECK(pr_check_compare(null, f, res, pr_ncheck, 1.0) == -1, "malformed baseline accepted");
    fclose(f);
    fclose(null);

    /* command line: unknown claim is bad usage; a failing check exits 1 */
    if (getenv("POLYROPE")) {
        const char *args = "check C99";
        PR_CHECK(pr_test_cli_run("test_checks", args) == 2, "unknown claim: polyrope %s", args);
        args = "check C3 C12 --trials 2 --record checks_rec.txt";
        PR_CHECK(pr_test_cli_run("test_checks", args) == 0, "polyrope %s", args);
        f = fopen("checks_rec.txt", "a");
        if (f) {
            fprintf(f, "C3 s<=8 -1\n"); /* a recorded value no run can meet */
            fclose(f);
        }
        args = "check C3 --trials 2 --baseline checks_rec.txt";
        PR_CHECK(pr_test_cli_run("test_checks", args) == 1, "regression not reported: polyrope %s", args);
        args = "check --baseline no/such/file";
        PR_CHECK(pr_test_cli_run("test_checks", args) == 2, "polyrope %s", args);
    }
    free(res);
    return pr_test_finish("test_checks");
}
