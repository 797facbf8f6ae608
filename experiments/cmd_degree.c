/* polyrope degree: least polynomial degree for exp to a target error (docs/cli.md; C7, C8). */
#include <math.h>
#include <mpfr.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "polyrope-exact.h"
#include "cli.h"
#include "commands.h"

/* What was proved, printed so that it stays true: an upper end rounded up, a lower end
 * rounded down (|x| for lower), in `digits` significant decimal digits; "null" if not finite. */
static void fmt_bound(char *buf, size_t n, const arb_t x, int upper, int digits)
{
    arf_t u;
    mpfr_t m;
    arf_init(u);
    mpfr_init2(m, 128);
    if (upper) {
        arb_get_ubound_arf(u, x, 128);
    } else {
        arb_t a;
        arb_init(a);
        arb_abs(a, x);
        arb_get_lbound_arf(u, a, 128);
        arb_clear(a);
    }
    if (!arf_is_finite(u))
        snprintf(buf, n, "null");
    else {
        arf_get_mpfr(m, u, upper ? MPFR_RNDU : MPFR_RNDD);
        mpfr_snprintf(buf, n, upper ? "%.*RUg" : "%.*RDg", digits, m);
    }
    mpfr_clear(m);
    arf_clear(u);
}

/* the certified upper bound (below eps) rounded up in at least `digits` digits, more where
 * fewer would round it up to eps or past it (the bound is below eps: say so) */
static void fmt_ub_below(char *buf, size_t n, const arb_t x, double eps, int digits)
{
    mpfr_t m;
    mpfr_init2(m, 128);
    for (; digits <= 40; digits++) {
        fmt_bound(buf, n, x, 1, digits);
        if (mpfr_set_str(m, buf, 10, MPFR_RNDU) || mpfr_cmp_d(m, eps) < 0)
            break;
    }
    mpfr_clear(m);
}

typedef struct {
    int show;
    double t0;
} progress_t;

/* one line on a terminal's stderr, rewritten in place */
static void progress(void *arg, int degree, const char *stage)
{
    progress_t *p = arg;
    if (p->show)
        fprintf(stderr, "\rpolyrope degree: %s, degree %d, %.0f s   ", stage, degree, pr_timing_wall() - p->t0);
}

int pr_cmd_degree(int argc, char **argv)
{
    double R = 4, eps = 1e-6, max_seconds = 60;
    const char *poly = "chebyshev", *setting_s = "exp-rel", *coeffs = NULL;
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
        {"certify", PR_OPT_FLAG, &certify, "certify in Arb: g certified, every degree below proved to fail", 0, 0, 0, 0},
        {"max-seconds", PR_OPT_DOUBLE, &max_seconds,
         "with --certify: refuse up front when the predicted CPU time is above this", 0, 0, 1e9, 0},
        {"coeffs", PR_OPT_STRING, &coeffs,
         "with --certify: write the certified (with --degree: or refuted) polynomial's coefficients to "
         "FILE, c_0 first, one exact dyadic m*2^(e) a line (Sollya and mpmath read them)", 0, 0, 0, 0},
        {"json", PR_OPT_FLAG, &json, "print one JSON object", 0, 0, 0, 0},
    };
    pr_cmd_spec_t spec = {"degree", "", "Least degree of a polynomial approximating exp to error eps.",
        "Without --certify the construction runs in double and the error is an estimate; the double\n"
        "construction refuses (exit 2) where its power-basis coefficients cannot be represented\n"
        "(large R or small eps). With --certify the constructions run in Arb and the least degree\n"
        "is proved: degree g is certified below eps, and every degree below g fails. For minimax\n"
        "it is the least degree of ANY polynomial: the best approximation of degree g-1 is proved\n"
        "above eps (de la Vallee Poussin: its error alternates at g+1 exact points, each above\n"
        "eps). For taylor and chebyshev it is the least degree of THAT construction: each lower\n"
        "degree is refuted at a witness point, or (from the minimax least degree down) for every\n"
        "polynomial; where a lower degree is undecided the verdict is unknown and g only an upper\n"
        "bound of the least. Bounds print rounded outward (upper up, lower down), the witness exactly as\n"
        "m*2^(e). With --degree G, that one degree is built and its error estimated (or, with\n"
        "--certify, certified below eps or refuted at a witness; exit 1 unless certified).\n"
        "The certified run's CPU time is predicted first (as g^3, g the estimated degree) and\n"
        "refused past --max-seconds; a terminal's stderr shows progress.\n"
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
    if (coeffs && !certify)
        return pr_cli_fail("degree", "--coeffs writes a certified polynomial: add --certify");
    int given_degree = pr_cli_given(&spec, "degree");
    pr_expoly_kind_t kind;
    pr_expoly_setting_t setting;
    pr_expoly_kind_parse(&kind, poly);
    pr_expoly_setting_parse(&setting, setting_s);
    if (certify) {
        int g_est;
        slong prec_est;
        double secs = pr_certexp_cost_seconds(&g_est, &prec_est, kind, setting, R, eps, (int)gdeg, given_degree);
        if (!given_degree && g_est > max_degree + 8)
            return pr_cli_fail("degree", "R = %g, eps = %g needs a degree near %d, past --max-degree %ld: raise it",
                               R, eps, g_est, max_degree);
        if (secs > max_seconds)
            return pr_cli_fail("degree", "R = %g, eps = %g: predicted %.0f s of CPU (degree ~%d at %ld bits), past "
                               "--max-seconds %g: raise it", R, eps, secs, g_est, (long)prec_est, max_seconds);
    }
    FILE *cf = NULL;
    if (coeffs && !(cf = fopen(coeffs, "w")))
        return pr_cli_fail("degree", "--coeffs %s: cannot open for writing", coeffs);
    double aa = pr_expoly_aa22_setting(setting, R, eps), t0 = pr_timing_wall();
    int degree, certified = 0, st, refuted_all = -1, below_witness = 0;
    char ub[64] = "null", lb[64] = "null", ub6[32] = "", lb6[32] = "", wlo[64] = "null", whi[64] = "null";
    char estar[64] = "null", estar6[32] = "";
    char *wx = NULL;
    double err_est = NAN, witness = NAN;
    clock_t c0 = clock();
    const char *verdict = "estimate";
    progress_t pg = {isatty(2), t0};

    pr_expoly_t p;
    pr_expoly_init(p);
    arb_poly_t P;
    arb_poly_init(P);
    pr_certexp_t r;
    pr_certexp_init(r);
    pr_certexp_degree_t d;
    pr_certexp_degree_init(d);
    const pr_certexp_struct *at = NULL, *wit = NULL;
    if (!certify) {
        st = given_degree ? pr_expoly_fit(p, kind, setting, R, (int)gdeg) : pr_expoly_fit_eps(p, kind, setting, R, eps);
        if (st == PR_EDOMAIN || (st == PR_EINVAL && given_degree)) {
            pr_expoly_clear(p);
            return pr_cli_fail("degree", "R = %g, %s is past what double can represent (power-basis coefficients "
                               "span too many magnitudes, or degree > %d): rerun with --certify for the Arb "
                               "construction", R, given_degree ? "this degree" : "this eps", PR_EXPOLY_MAX_DEGREE);
        }
        degree = p->degree;
        err_est = p->eps_A + p->conv_err;
    } else if (given_degree) {
        /* certify (or refute) the one degree asked for */
        st = pr_certexp_certify_degree(r, P, kind, setting, R, eps, (int)gdeg);
        degree = (int)gdeg;
        certified = r->verdict == PR_CERT_CERTIFIED;
        verdict = pr_cert_verdict_name(r->verdict);
        at = r;
        wit = r->verdict == PR_CERT_REFUTED ? r : NULL;
    } else {
        /* the double's least degree, where it is sound, is a good place to start */
        st = pr_expoly_fit_eps(p, kind, setting, R, eps);
        st = pr_certexp_least_degree_progress(d, kind, setting, R, eps, st ? -1 : p->degree, (int)max_degree,
                                              progress, &pg);
        if (pg.show)
            fprintf(stderr, "\r%70s\r", "");
        if (st == PR_EDOMAIN) {
            pr_certexp_degree_clear(d);
            pr_expoly_clear(p);
            arb_poly_clear(P);
            pr_certexp_clear(r);
            if (cf) {
                fclose(cf);
                remove(coeffs);
            }
            return pr_cli_fail("degree", "R = %g, eps = %g needs a degree past --max-degree %ld: raise it",
                               R, eps, max_degree);
        }
        degree = d->degree;
        certified = d->verdict == PR_CERT_CERTIFIED;
        verdict = pr_cert_verdict_name(d->verdict);
        at = degree >= 0 ? d->at : NULL;
        refuted_all = d->refuted_all;
        /* a witness is printed for degree g - 1 when the proof for every polynomial stops below it */
        below_witness = degree > 0 && refuted_all < degree - 1 && d->below->verdict == PR_CERT_REFUTED;
        wit = below_witness ? d->below : NULL;
        if (refuted_all >= 0) {
            fmt_bound(estar, sizeof estar, d->lower_all, 0, 17);
            fmt_bound(estar6, sizeof estar6, d->lower_all, 0, 6);
        }
        arb_poly_swap(P, d->poly);
    }
    if (!st && at) {
        if (at->verdict == PR_CERT_CERTIFIED) {
            fmt_ub_below(ub, sizeof ub, at->bound, eps, 17);
            fmt_ub_below(ub6, sizeof ub6, at->bound, eps, 6);
        }
        if (at->verdict != PR_CERT_REFUTED) {
            fmt_bound(lb, sizeof lb, at->lower, 0, 17);
            fmt_bound(lb6, sizeof lb6, at->lower, 0, 6);
        }
    }
    if (!st && wit) {
        wx = pr_certexp_arf_str(arb_midref(wit->witness_x));
        witness = arf_get_d(arb_midref(wit->witness_x), ARF_RND_NEAR);
        arb_t e;
        arb_init(e);
        arb_abs(e, wit->witness_err);
        fmt_bound(wlo, sizeof wlo, e, 0, 17);
        fmt_bound(whi, sizeof whi, e, 1, 17);
        if (at == wit) {
            fmt_bound(lb, sizeof lb, e, 0, 17);
            fmt_bound(lb6, sizeof lb6, e, 0, 6);
        }
        arb_clear(e);
    }
    /* the polynomial the verdict is about: the certified one, or with --degree the refuted one */
    int decided = certified || (given_degree && wit);
    if (!st && cf && decided)
        st = pr_certexp_write_coeffs(cf, P);
    if (cf) {
        if (fclose(cf) && !st)
            st = PR_EIO;
        if (st || !decided)
            remove(coeffs);   /* no partial or undecided output */
    }
    pr_certexp_degree_clear(d);
    pr_certexp_clear(r);
    arb_poly_clear(P);
    pr_expoly_clear(p);
    if (st) {
        flint_free(wx);
        return pr_cli_fail_status("degree", st, certify ? "certification" : "double construction");
    }
    const char *least_of = given_degree ? NULL : certify && kind == PR_EXPOLY_MINIMAX ? "any polynomial"
                         : kind == PR_EXPOLY_TAYLOR ? "the taylor construction"
                         : kind == PR_EXPOLY_CHEBYSHEV ? "the chebyshev construction"
                         : "the double minimax construction";
    double secs = pr_timing_wall() - t0, cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    if (json) {
        printf("{\"R\": %.17g, \"eps\": %.17g, \"poly\": \"%s\", \"setting\": \"%s\", \"degree\": %d, ",
               R, eps, poly, setting_s, degree);
        if (least_of)
            printf("\"least_of\": \"%s\", ", least_of);
        else
            printf("\"least_of\": null, ");
        if (certify)
            printf("\"err_ub\": %s, \"err_lb\": %s, ", ub, lb);
        else
            pr_cli_json_num("err_est", err_est, 17, ", ");
        printf("\"certified\": %s, \"verdict\": \"%s\", ", certified ? "true" : "false", verdict);
        pr_cli_json_int("refuted_all", refuted_all, ", ");
        printf("\"refuted_all_err_lb\": %s, ", estar);
        pr_cli_json_num("aa22", aa, 17, ", ");
        pr_cli_json_num("floor", setting == PR_EXPOLY_EXP_REL && degree >= 0 ? pr_expoly_floor_taylor(R, degree) : NAN,
                        17, ", ");
        pr_cli_json_num("witness", witness, 17, ", ");
        if (wx)
            printf("\"witness_x\": \"%s\", ", wx);
        else
            printf("\"witness_x\": null, ");
        printf("\"witness_err_lo\": %s, \"witness_err_hi\": %s, ", wlo, whi);
        printf("\"time_s\": %.6f, \"cpu_s\": %.6f}\n", secs, cpu);
    } else {
        printf("%s, %s, R = %g, eps = %g\n", poly, setting_s, R, eps);
        if (given_degree)
            printf("degree         %d (%s)\n", degree, verdict);
        else if (certify && !certified && degree >= 0)
            printf("least degree   <= %d (unknown: %d certified, the degrees below not all proved to fail)\n",
                   degree, degree);
        else
            printf("least degree   %d (%s; least of %s)\n", degree, verdict, least_of);
        if (!certify)
            printf("error ~        %.6g (estimate)\n", err_est);
        if (*ub6)
            printf("error <=       %s (certified, Arb, rounded up)\n", ub6);
        if (*lb6)
            printf("error >=       %s (certified at a point, rounded down)\n", lb6);
        if (wx)
            printf("degree %d      refuted at x = %s (~%.17g), |error| >= %s\n",
                   given_degree ? degree : degree - 1, wx, witness, wlo);
        if (refuted_all >= 0)
            printf("degree <= %d  fails for every polynomial: best error >= %s (de la Vallee Poussin)\n",
                   refuted_all, estar6);
        printf("aa22           %.4g\n", aa);
        printf("time           %.3f s (cpu %.3f s)\n", secs, cpu);
    }
    flint_free(wx);
    return certify && !certified ? 1 : 0;
}
