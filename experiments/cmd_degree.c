/* polyrope degree: least polynomial degree for exp to a target error (DESIGN.md §3; C7, C8). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "polyrope.h"
#include "cli.h"
#include "commands.h"

int pr_cmd_degree(int argc, char **argv)
{
    double R = 4, eps = 1e-6;
    const char *poly = "chebyshev", *setting_s = "exp-rel";
    int certify = 0, json = 0;
    long max_degree = 1000, gdeg = 0;
    pr_opt_t opts[] = {
        {"R", PR_OPT_DOUBLE, &R, "half-width of [-R, R] (exp-rel), or length of [0, R]", 0, 0, 0, 0},
        {"eps", PR_OPT_DOUBLE, &eps, "target error, in (0, 1)", 0, 0, 0, 0},
        {"poly", PR_OPT_CHOICE, &poly, "construction", "taylor|chebyshev|minimax", 0, 0, 0},
        {"setting", PR_OPT_CHOICE, &setting_s,
         "exp-rel: e^x on [-R,R] relative; exp-abs: e^x on [0,R] additive; expneg-abs: e^-x on [0,R] additive",
         "exp-rel|exp-abs|expneg-abs", 0, 0, 0},
        {"degree", PR_OPT_INT, &gdeg, "evaluate this degree instead of searching for the least", 0, 0, 100000, 0},
        {"max-degree", PR_OPT_INT, &max_degree, "with --certify: give up past this degree", 0, 1, 100000, 0},
        {"certify", PR_OPT_FLAG, &certify, "certify in Arb: least g proved, g-1 refuted by a witness", 0, 0, 0, 0},
        {"json", PR_OPT_FLAG, &json, "print one JSON object", 0, 0, 0, 0},
    };
    pr_cmd_spec_t spec = {"degree", "", "Least degree of a polynomial approximating exp to error eps.",
        "Without --certify the construction runs in double and the error is an estimate; the double\n"
        "construction refuses (exit 2) where its power-basis coefficients cannot be represented\n"
        "(large R or small eps). With --certify the construction runs in Arb and the least degree\n"
        "is proved: the error of degree g is certified below eps and degree g-1 is refuted at a\n"
        "witness point. With --degree G, that one degree is built and its error estimated (or,\n"
        "with --certify, certified below eps or refuted at a witness; exit 1 unless certified).\n"
        "aa22 is the Aggarwal-Alman value max{L, ln(1/eps)/ln(ln(1/eps)/L)} (L = 2R\n"
        "for exp-rel; for expneg-abs max{sqrt(L ln(1/eps)), ...}), constants omitted.\n"
        "Exit status: 0 done, 1 not certified (undecided, or refuted with --degree), 2 bad input.",
        opts, (int)(sizeof opts / sizeof opts[0])};
    int rc = pr_cli_parse_nopos(&spec, argc, argv);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!(R > 0))
        return pr_cli_fail("degree", "--R must be > 0, got %g", R);
    if (!(eps > 0 && eps < 1))
        return pr_cli_fail("degree", "--eps must lie in (0, 1), got %g", eps);
    int given_degree = pr_cli_given(&spec, "degree");
    pr_expoly_kind_t kind;
    pr_expoly_setting_t setting;
    pr_expoly_kind_parse(&kind, poly);
    pr_expoly_setting_parse(&setting, setting_s);
    double aa = pr_expoly_aa22_setting(setting, R, eps), t0 = pr_timing_wall();
    int degree, certified = 0, st;
    double err_ub = NAN, err_lb = NAN, witness = NAN;
    clock_t c0 = clock();
    const char *verdict = "estimate";

    pr_expoly_t p;
    pr_expoly_init(p);
    if (!certify) {
        st = given_degree ? pr_expoly_fit(p, kind, setting, R, (int)gdeg) : pr_expoly_fit_eps(p, kind, setting, R, eps);
        if (st == PR_EDOMAIN || (st == PR_EINVAL && given_degree))
            return pr_cli_fail("degree", "R = %g, %s is past what double can represent (power-basis coefficients "
                               "span too many magnitudes, or degree > %d): rerun with --certify for the Arb "
                               "construction", R, given_degree ? "this degree" : "this eps", PR_EXPOLY_MAX_DEGREE);
        if (st)
            return pr_cli_fail_status("degree", st, "double construction");
        degree = p->degree;
        err_ub = p->eps_A + p->conv_err;
    } else if (given_degree) {
        /* certify (or refute) the one degree asked for */
        pr_certexp_t r;
        arb_poly_t P;
        pr_certexp_init(r);
        arb_poly_init(P);
        st = pr_certexp_certify_degree(r, P, kind, setting, R, eps, (int)gdeg);
        degree = (int)gdeg;
        certified = r->verdict == PR_CERT_CERTIFIED;
        verdict = pr_cert_verdict_name(r->verdict);
        err_ub = certified ? pr_hiprec_ubound_d(r->bound) : NAN;
        err_lb = pr_hiprec_lbound_d(r->verdict == PR_CERT_REFUTED ? r->witness_err : r->lower);
        witness = r->verdict == PR_CERT_REFUTED ? r->witness : NAN;
        arb_poly_clear(P);
        pr_certexp_clear(r);
        if (st)
            return pr_cli_fail_status("degree", st, "certification");
    } else {
        pr_certexp_degree_t d;
        pr_certexp_degree_init(d);
        /* the double's least degree, where it is sound, is a good place to start */
        st = pr_expoly_fit_eps(p, kind, setting, R, eps);
        st = pr_certexp_least_degree(d, kind, setting, R, eps, st ? -1 : p->degree, (int)max_degree);
        if (st == PR_EDOMAIN) {
            pr_certexp_degree_clear(d);
            pr_expoly_clear(p);
            return pr_cli_fail("degree", "R = %g, eps = %g needs a degree past --max-degree %ld: raise it",
                               R, eps, max_degree);
        }
        if (st) {
            pr_certexp_degree_clear(d);
            pr_expoly_clear(p);
            return pr_cli_fail_status("degree", st, "certified least degree");
        }
        degree = d->degree;
        certified = d->verdict == PR_CERT_CERTIFIED;
        verdict = pr_cert_verdict_name(d->verdict);
        if (degree >= 0) {
            err_ub = pr_hiprec_ubound_d(d->at->bound);
            err_lb = pr_hiprec_lbound_d(d->at->lower);
        }
        witness = d->below->verdict == PR_CERT_REFUTED ? d->below->witness : NAN;
        pr_certexp_degree_clear(d);
    }
    pr_expoly_clear(p);
    double secs = pr_timing_wall() - t0, cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    if (json) {
        printf("{\"R\": %.17g, \"eps\": %.17g, \"poly\": \"%s\", \"setting\": \"%s\", \"degree\": %d, ",
               R, eps, poly, setting_s, degree);
        pr_cli_json_num("err_ub", err_ub, 17, ", ");
        pr_cli_json_num("err_lb", err_lb, 17, ", ");
        printf("\"certified\": %s, \"verdict\": \"%s\", ", certified ? "true" : "false", verdict);
        pr_cli_json_num("aa22", aa, 17, ", ");
        pr_cli_json_num("floor", setting == PR_EXPOLY_EXP_REL && degree >= 0 ? pr_expoly_floor_taylor(R, degree) : NAN,
                        17, ", ");
        pr_cli_json_num("witness", witness, 17, ", ");
        printf("\"time_s\": %.6f, \"cpu_s\": %.6f}\n", secs, cpu);
    } else {
        printf("%s, %s, R = %g, eps = %g\n", poly, setting_s, R, eps);
        printf("%s   %d (%s)\n", given_degree ? "degree      " : "least degree", degree, verdict);
        if (isfinite(err_ub))
            printf("error <=       %.6g%s\n", err_ub, certified ? " (certified, Arb)" : " (estimate)");
        if (isfinite(err_lb))
            printf("error >=       %.6g (certified: attained at a point)\n", err_lb);
        if (isfinite(witness))
            printf("degree %d      refuted at x = %.17g\n", given_degree ? degree : degree - 1, witness);
        printf("aa22           %.4g\n", aa);
        printf("time           %.3f s (cpu %.3f s)\n", secs, cpu);
    }
    return certify && !certified ? 1 : 0;
}
