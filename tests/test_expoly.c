/* Polynomials for exp (issue 3; claims C7, C8): certified bounds contain the true error,
 * perturbations are refuted, minimax equioscillates and beats Chebyshev, degrees are monotone,
 * e^{-x} needs fewer degrees than e^x where Aggarwal–Alman says so, bad input via the binary. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "polyrope-exact.h"
#include "pr_test.h"
#include "pr_test_cli.h"

/* |E(x)| at 256 bits, for a double point x */
static void true_err(arb_t y, const double *c, int g, pr_expoly_setting_t s, double x)
{
    arb_t xx, f, t;
    arb_init(xx); arb_init(f); arb_init(t);
    arb_set_d(xx, x);
    arb_zero(y);
    for (int k = g; k >= 0; k--) {
        arb_mul(y, y, xx, 256);
        arb_set_d(t, c[k]);
        arb_add(y, y, t, 256);
    }
    if (s == PR_EXPOLY_EXPNEG_ABS)
        arb_neg(xx, xx);
    arb_exp(f, xx, 256);
    if (s == PR_EXPOLY_EXP_REL) {
        arb_div(y, y, f, 256);
        arb_sub_ui(y, y, 1, 256);
    } else {
        arb_sub(y, y, f, 256);
    }
    arb_abs(y, y);
    arb_clear(xx); arb_clear(f); arb_clear(t);
}

/* exit status and number of stderr lines of `$POLYROPE args` */
static int run_cli(const char *args, int *lines)
{
    int rc = pr_test_cli_run("test_expoly", args);
    *lines = pr_test_lines(pr_test_cli_err);
    return rc;
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_expoly", 20261123));

    /* 1. containment: the certified bound is above |E| at random points (256-bit reference) */
    for (int trial = 0; trial < 12; trial++) {
        pr_expoly_kind_t kind = (pr_expoly_kind_t)(trial % 3);
        pr_expoly_setting_t set = (pr_expoly_setting_t)((trial / 3) % 3);
        double R = pr_rng_range(rng, 0.5, 5.0);
        int g = 3 + (int)pr_rng_below(rng, 12);
        pr_expoly_t p;
        pr_expoly_init(p);
        PR_CHECK_OK(pr_expoly_fit(p, kind, set, R, g));
        if (!p->c)
            continue;
        /* eps_A is an estimate from a dense sample: twice it (plus rounding) is a threshold
         * the certifier must reach; a failure here means estimate or certifier is wrong */
        double thr = 2 * (p->eps_A + p->conv_err) + 1e-300;
        pr_certexp_t r;
        pr_certexp_init(r);
        PR_CHECK_OK(pr_certexp_sup_d(r, p->c, g, set, R, thr, 0));
        PR_CHECK(r->verdict == PR_CERT_CERTIFIED, "kind=%d set=%d R=%.17g g=%d thr=%g verdict=%d",
                 kind, set, R, g, thr, r->verdict);
        arb_t e;
        arb_init(e);
        for (int i = 0; i < 50; i++) {
            double x = pr_rng_range(rng, p->lo, p->hi);
            true_err(e, p->c, g, set, x);
            PR_CHECK(!arb_gt(e, r->bound), "containment kind=%d set=%d R=%.17g g=%d x=%.17g", kind, set, R, g, x);
        }
        /* certified means the whole bound lies below the threshold */
        arb_t th;
        arb_init(th);
        arb_set_d(th, thr);
        PR_CHECK(arb_lt(r->bound, th), "bound below threshold: R=%.17g g=%d", R, g);
        arb_clear(th);
        arb_clear(e);
        pr_certexp_clear(r);
        pr_expoly_clear(p);
    }

    /* 2. a polynomial with one coefficient perturbed is refuted. Changing c_k by
     * δ = 8 eps e^R / R^k moves P(R) by 8 eps e^R, i.e. E(R) by 8 eps: |E(R)| >= 7 eps. */
    {
        double R = 2, eps = 1e-8;
        pr_expoly_t p;
        pr_expoly_init(p);
        PR_CHECK_OK(pr_expoly_fit_eps(p, PR_EXPOLY_CHEBYSHEV, PR_EXPOLY_EXP_REL, R, eps));
        int k = (int)pr_rng_below(rng, (uint64_t)p->degree + 1);
        pr_certexp_t r;
        pr_certexp_init(r);
        PR_CHECK_OK(pr_certexp_sup_d(r, p->c, p->degree, PR_EXPOLY_EXP_REL, R, eps, 0));
        PR_CHECK(r->verdict == PR_CERT_CERTIFIED, "unperturbed g=%d verdict=%d", p->degree, r->verdict);
        p->c[k] += 8 * eps * exp(R) / pow(R, k);
        PR_CHECK_OK(pr_certexp_sup_d(r, p->c, p->degree, PR_EXPOLY_EXP_REL, R, eps, 0));
        PR_CHECK(r->verdict == PR_CERT_REFUTED, "perturbed k=%d g=%d verdict=%d", k, p->degree, r->verdict);
        PR_CHECK(arb_is_finite(r->witness_err) && r->witness >= -R && r->witness <= R, "witness %g", r->witness);
        pr_certexp_clear(r);
        pr_expoly_clear(p);
    }

    /* 3. minimax equioscillates at g + 2 points and is never above Chebyshev */
    for (int trial = 0; trial < 6; trial++) {
        pr_expoly_setting_t set = (pr_expoly_setting_t)(trial % 3);
        double R = pr_rng_range(rng, 0.5, 3.0);
        int g = 2 + (int)pr_rng_below(rng, 8);
        pr_expoly_t mm, ch;
        pr_expoly_init(mm);
        pr_expoly_init(ch);
        PR_CHECK_OK(pr_expoly_fit(mm, PR_EXPOLY_MINIMAX, set, R, g));
        PR_CHECK_OK(pr_expoly_fit(ch, PR_EXPOLY_CHEBYSHEV, set, R, g));
        if (!mm->c || !ch->c)
            continue;
        PR_CHECK(mm->eps_A <= ch->eps_A * (1 + 1e-9), "minimax %g > chebyshev %g set=%d R=%.17g g=%d",
                 mm->eps_A, ch->eps_A, set, R, g);
        /* count sign runs whose peak reaches the levelled error (within 1e-4 relative: Remez
         * stops at 1e-6, the sample grid of 20000 points misses peaks by far less) */
        int N = 20000, runs = 0, sign = 0;
        double peak = 0;
        for (int i = 0; i <= N; i++) {
            double x = mm->lo + (mm->hi - mm->lo) * i / N;
            double e = pr_expoly_err_at(set, x, pr_expoly_eval_cheb(mm, x));
            int s = e > 0 ? 1 : -1;
            if (s != sign) {
                runs += peak >= mm->eps_A * (1 - 1e-4);
                sign = s;
                peak = 0;
            }
            peak = fmax(peak, fabs(e));
        }
        runs += peak >= mm->eps_A * (1 - 1e-4);
        PR_CHECK(runs >= g + 2, "alternation set=%d R=%.17g g=%d runs=%d", set, R, g, runs);
        pr_expoly_clear(mm);
        pr_expoly_clear(ch);
    }

    /* 4. degrees monotone in eps and in R (double, and certified on a small grid) */
    for (int kind = 0; kind < 3; kind++) {
        int prev = -1;
        for (double eps = 1e-2; eps >= 1e-12; eps /= 10) {
            pr_expoly_t p;
            pr_expoly_init(p);
            PR_CHECK_OK(pr_expoly_fit_eps(p, (pr_expoly_kind_t)kind, PR_EXPOLY_EXP_REL, 1.5, eps));
            PR_CHECK(p->degree >= prev, "eps monotone kind=%d eps=%g g=%d prev=%d", kind, eps, p->degree, prev);
            prev = p->degree;
            pr_expoly_clear(p);
        }
        prev = -1;
        for (double R = 0.25; R <= 32; R *= 2) {
            pr_certexp_degree_t d;
            pr_certexp_degree_init(d);
            PR_CHECK_OK(pr_certexp_least_degree(d, (pr_expoly_kind_t)kind, PR_EXPOLY_EXP_REL, R, 1e-8, -1, 1000));
            PR_CHECK(d->verdict == PR_CERT_CERTIFIED && d->degree >= prev, "R monotone kind=%d R=%g g=%d prev=%d",
                     kind, R, d->degree, prev);
            prev = d->degree;
            pr_certexp_degree_clear(d);
        }
    }

    /* 4b. in the range where double is sound, its least degree agrees with the certified one
     * (they may differ by one only when the error lands within conv_err or the sampling gap of
     * eps); the certified minimax never needs more degrees than Chebyshev, nor Chebyshev than
     * Taylor, since each certified error is within 1/8 of the true sup and the kinds' errors
     * are ordered at every degree */
    for (int trial = 0; trial < 6; trial++) {
        double R = pr_rng_range(rng, 0.5, 6.0), eps = pow(10, -pr_rng_range(rng, 3, 8));
        int deg[3];
        for (int kind = 0; kind < 3; kind++) {
            pr_expoly_t p;
            pr_certexp_degree_t d;
            pr_expoly_init(p);
            pr_certexp_degree_init(d);
            PR_CHECK_OK(pr_expoly_fit_eps(p, (pr_expoly_kind_t)kind, PR_EXPOLY_EXP_REL, R, eps));
            PR_CHECK_OK(pr_certexp_least_degree(d, (pr_expoly_kind_t)kind, PR_EXPOLY_EXP_REL, R, eps, -1, 1000));
            PR_CHECK(d->verdict == PR_CERT_CERTIFIED && abs(d->degree - p->degree) <= 1,
                     "double vs certified kind=%d R=%.17g eps=%.17g: %d vs %d", kind, R, eps, p->degree, d->degree);
            deg[kind] = d->degree;
            pr_certexp_degree_clear(d);
            pr_expoly_clear(p);
        }
        PR_CHECK(deg[2] <= deg[1] && deg[1] <= deg[0], "R=%.17g eps=%.17g taylor %d chebyshev %d minimax %d",
                 R, eps, deg[0], deg[1], deg[2]);
    }

    /* 4c. at R = 32 (no double construction) the Arb minimax is certified, its bound contains
     * the error at random points (256 bits) and its lower bound is below the bound */
    {
        double R = 32, eps = 1e-12;
        pr_certexp_degree_t d;
        pr_certexp_degree_init(d);
        PR_CHECK_OK(pr_certexp_least_degree(d, PR_EXPOLY_MINIMAX, PR_EXPOLY_EXP_REL, R, eps, -1, 1000));
        PR_CHECK(d->verdict == PR_CERT_CERTIFIED, "R=32 minimax verdict %d", d->verdict);
        arb_t x, y, f, lb;
        arb_init(x); arb_init(y); arb_init(f); arb_init(lb);
        for (int i = 0; i < 50 && d->degree >= 0; i++) {
            double xd = pr_rng_range(rng, -R, R);
            arb_set_d(x, xd);
            arb_poly_evaluate(y, d->poly, x, 256);
            arb_neg(f, x);
            arb_exp(f, f, 256);
            arb_mul(y, y, f, 256);
            arb_sub_ui(y, y, 1, 256);
            arb_abs(y, y);
            PR_CHECK(!arb_gt(y, d->at->bound), "R=32 containment x=%.17g", xd);
        }
        arf_t ub;
        arf_init(ub);
        arb_get_ubound_arf(ub, d->at->bound, 64);
        arb_set_arf(lb, ub);
        PR_CHECK(arb_le(d->at->lower, lb) && arb_contains_zero(d->at->bound), "lower <= bound");
        arf_clear(ub);
        arb_clear(x); arb_clear(y); arb_clear(f); arb_clear(lb);
        pr_certexp_degree_clear(d);
    }

    /* 5. e^{-x} on [0, L] needs fewer degrees than e^x on [0, L] where the Aggarwal–Alman values
     * say so: L = 32, δ = 1e-10 gives √(L ln 1/δ) ≈ 27 < L = 32 */
    {
        double L = 32, delta = 1e-10;
        PR_CHECK(pr_expoly_aa22_neg(L, delta) < pr_expoly_aa22(L, delta), "AA values");
        pr_certexp_degree_t dn, dp;
        pr_certexp_degree_init(dn);
        pr_certexp_degree_init(dp);
        PR_CHECK_OK(pr_certexp_least_degree(dn, PR_EXPOLY_CHEBYSHEV, PR_EXPOLY_EXPNEG_ABS, L, delta, -1, 1000));
        PR_CHECK_OK(pr_certexp_least_degree(dp, PR_EXPOLY_CHEBYSHEV, PR_EXPOLY_EXP_ABS, L, delta, -1, 1000));
        PR_CHECK(dn->verdict == PR_CERT_CERTIFIED && dp->verdict == PR_CERT_CERTIFIED && dn->degree < dp->degree,
                 "e^-x degree %d vs e^x degree %d", dn->degree, dp->degree);
        pr_certexp_degree_clear(dn);
        pr_certexp_degree_clear(dp);
    }

    /* 6. exact Taylor coefficients */
    {
        fmpq_poly_t q;
        fmpq_poly_init(q);
        pr_certexp_taylor_fmpq(q, 6, -1);
        fmpq_t c, want;
        fmpq_init(c);
        fmpq_init(want);
        fmpq_poly_get_coeff_fmpq(c, q, 5);
        fmpq_set_si(want, -1, 120);
        PR_CHECK(fmpq_equal(c, want), "taylor coefficient 5 of e^-x");
        fmpq_clear(c);
        fmpq_clear(want);
        fmpq_poly_clear(q);
    }

    /* 7. library refusals */
    {
        pr_expoly_t p;
        pr_expoly_init(p);
        PR_CHECK(pr_expoly_fit(p, PR_EXPOLY_TAYLOR, PR_EXPOLY_EXP_REL, 0, 3) == PR_EINVAL, "R = 0");
        PR_CHECK(pr_expoly_fit(p, PR_EXPOLY_TAYLOR, PR_EXPOLY_EXP_REL, NAN, 3) == PR_EINVAL, "R = NaN");
        PR_CHECK(pr_expoly_fit(p, PR_EXPOLY_TAYLOR, PR_EXPOLY_EXP_REL, 1, PR_EXPOLY_MAX_DEGREE + 1) == PR_EINVAL,
                 "g too large");
        PR_CHECK(pr_expoly_fit(p, PR_EXPOLY_CHEBYSHEV, PR_EXPOLY_EXP_REL, 32, 100) == PR_EDOMAIN, "R = 32 double");
        PR_CHECK(pr_expoly_fit_eps(p, PR_EXPOLY_MINIMAX, PR_EXPOLY_EXP_REL, 1, 1.5) == PR_EINVAL, "eps 1.5");
        PR_CHECK(pr_expoly_fit_eps(p, PR_EXPOLY_MINIMAX, PR_EXPOLY_EXP_REL, 32, 1e-15) == PR_EDOMAIN, "eps/R past double");
        pr_expoly_clear(p);
    }

    /* 8. bad input through the binary: one line on stderr, exit 2 */
    const char *bad[] = {"degree --R 0", "degree --R -1", "degree --eps 0", "degree --eps 1", "degree --eps 2",
                         "degree --R 32 --eps 1e-15", "degree --poly cubic", "degree --R nan"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int lines, rc = run_cli(bad[i], &lines);
        PR_CHECK(rc == 2 && lines == 1, "'%s': exit %d, %d stderr lines", bad[i], rc, lines);
    }
    int lines;
    PR_CHECK(run_cli("degree --R 2 --eps 1e-8 --certify --json", &lines) == 0, "certified run");
    PR_CHECK(run_cli("degree --R 2 --degree 200", &lines) == 2 && lines == 1, "degree past double");
    PR_CHECK(run_cli("degree --R 2 --degree -1", &lines) == 2 && lines == 1, "negative degree");
    /* R = 2, eps = 1e-8: Chebyshev needs 12 (certified above), so degree 11 is refuted, 12 certified */
    PR_CHECK(run_cli("degree --R 2 --eps 1e-8 --degree 11 --certify", &lines) == 1, "degree 11 refuted");
    PR_CHECK(run_cli("degree --R 2 --eps 1e-8 --degree 12 --certify", &lines) == 0, "degree 12 certified");
    remove("test_expoly.out");
    remove("test_expoly.err");
    return pr_test_finish("test_expoly");
}
