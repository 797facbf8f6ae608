/* pr_certexp: the certified least degree of a construction for exp (claims C7, C8): a search over
 * degrees certified by pr_certexp_sup, then the proof that every lower degree fails (de la Vallée
 * Poussin on the best approximation, or each construction's own witnesses). */
#include <math.h>
#include <stdlib.h>
#include "pr_status.h"
#include "pr_certexp_impl.h"

void pr_certexp_degree_init(pr_certexp_degree_t d)
{
    d->degree = -1;
    d->verdict = PR_CERT_UNKNOWN;
    pr_certexp_init(d->at);
    pr_certexp_init(d->below);
    arb_poly_init(d->poly);
    d->constructions = 0;
    d->refuted_all = -1;
    arb_init(d->lower_all);
}

void pr_certexp_degree_clear(pr_certexp_degree_t d)
{
    pr_certexp_clear(d->at);
    pr_certexp_clear(d->below);
    arb_poly_clear(d->poly);
    arb_clear(d->lower_all);
}

/* a rough starting degree: where the Chebyshev (or Taylor) coefficient bound times the
 * weight drops below eps; only the search's speed depends on it */
static int degree_guess(pr_expoly_kind_t kind, pr_expoly_setting_t setting, double R, double eps)
{
    double lo, hi;
    pr_expoly_interval(&lo, &hi, setting, R);
    double mid = (lo + hi) / 2, rad = (hi - lo) / 2;
    /* log of f(mid) times the largest weight: the scale of both remainders */
    double base = (setting == PR_EXPOLY_EXPNEG_ABS ? -mid : mid) + (setting == PR_EXPOLY_EXP_REL ? R : 0);
    for (int g = 0; g < 1000000; g++) {
        /* Taylor: rad^{g+1}/(g+1)!; Chebyshev: 2 I_{g+1}(rad) ≈ 2 (rad/2)^{g+1}/(g+1)! e^{rad²/(4(g+2))} */
        double lerr = kind == PR_EXPOLY_TAYLOR
            ? (g + 1) * log(rad) - lgamma(g + 2.0) + base
            : log(2.0) + (g + 1) * log(rad / 2) - lgamma(g + 2.0) + rad * rad / (4 * (g + 2)) + base;
        if (lerr < log(eps)) {
            /* the relative minimax spends its error where e^x is small: about 0.8 R degrees
             * fewer than Chebyshev interpolation (observed for R in [2, 32]) */
            if (kind == PR_EXPOLY_MINIMAX && setting == PR_EXPOLY_EXP_REL)
                g -= (int)(0.8 * R);
            return g > 0 ? g : 0;
        }
    }
    return 1000000;
}

/* precision of a construction: the target's cancellation (e^{2X}/eps) plus the basis
 * conversion's growth: T_k has coefficients up to (1+√2)^k, the shift to x = mid + rad t up
 * to 2^k more */
static slong construct_prec(pr_expoly_setting_t setting, double R, double eps, int g)
{
    double lo, hi;
    pr_expoly_interval(&lo, &hi, setting, R);
    double X = fmax(fabs(lo), fabs(hi));
    return 96 + (slong)ceil((2 * X - log(eps)) / M_LN2 + 2.5 * g);
}

int pr_certexp_certify_degree(pr_certexp_t r, arb_poly_t P, pr_expoly_kind_t kind, pr_expoly_setting_t setting,
                              double R, double eps, int g)
{
    if (!(R > 0) || !isfinite(R) || !(eps > 0 && eps < 1) || g < 0)
        return PR_EINVAL;
    int st = pr_certexp_construct(P, kind, setting, R, g, construct_prec(setting, R, eps, g));
    if (!st)
        st = pr_certexp_sup(r, P, setting, R, eps, 0);
    return st;
}

/* de la Vallée Poussin: if E of P (degree n - 2) alternates in sign at the exact points
 * x[0] < ... < x[n-1], every polynomial Q of degree <= n - 2 has sup|E_Q| >= min_i |E(x_i)|
 * (else Q - P, over the positive weight, would alternate at n points: n - 1 roots). L gets that
 * minimum as a ball; returns 1 if the signs certainly alternate, else 0. */
static int dlvp_lower(arb_t L, const arb_poly_t P, const double *x, int n, pr_expoly_setting_t setting, slong prec)
{
    pr_certexp_tm_t c;
    pr_certexp_tm_init(&c, P, setting, 0, prec);
    arb_t xi, f, e;
    arb_init(xi); arb_init(f); arb_init(e);
    int ok = n >= 2, prev = 0;
    for (int i = 0; ok && i < n; i++) {
        arb_set_d(xi, x[i]);
        pr_certexp_tm_expfac(f, &c, xi, prec);
        pr_certexp_tm_deriv(e, &c, 0, xi, f, prec);
        int sg = arb_is_positive(e) ? 1 : arb_is_negative(e) ? -1 : 0;
        ok = sg != 0 && sg != prev && (i == 0 || x[i] > x[i - 1]);
        prev = sg;
        arb_abs(e, e);
        if (i == 0)
            arb_set(L, e);
        else
            arb_min(L, L, e, prec);
    }
    arb_clear(xi); arb_clear(f); arb_clear(e);
    pr_certexp_tm_clear(&c);
    return ok;
}

/* Degree h for every polynomial, by the best approximation: Remez at h with its stopping spread
 * tightened from REMEZ_SPREAD by 1000 per round down to spread_min. REFUTED when de la Vallée Poussin proves
 * E*_h > eps (the lower bound in L), CERTIFIED when the Remez polynomial is certified below eps
 * (into P and r), UNKNOWN when neither happens by REMEZ_SPREAD_MIN. */
static int best_decide(pr_cert_verdict_t *v, arb_t L, pr_certexp_t r, arb_poly_t P, pr_expoly_setting_t setting,
                       double R, double eps, int h, double spread_min)
{
    int st = PR_OK, n = h + 2;
    double *x = malloc(sizeof(double) * n);
    slong prec = construct_prec(setting, R, eps, h);
    arb_t th;
    arb_init(th);
    arb_set_d(th, eps);
    *v = PR_CERT_UNKNOWN;
    for (double spread = REMEZ_SPREAD; spread >= spread_min; spread /= 1000) {
        if ((st = pr_certexp_construct_ref(P, x, PR_EXPOLY_MINIMAX, setting, R, h, spread, prec)))
            break;
        if (dlvp_lower(L, P, x, n, setting, prec) && arb_gt(L, th)) {
            *v = PR_CERT_REFUTED;
            break;
        }
        if ((st = pr_certexp_sup(r, P, setting, R, eps, 0)))
            break;
        if (r->verdict == PR_CERT_CERTIFIED) {
            *v = PR_CERT_CERTIFIED;
            break;
        }
    }
    arb_clear(th);
    free(x);
    return st;
}

/* log of the error estimate of a result: the largest |E| seen (a lower bound, close to sup|E|
 * after the pass over all piece centres), or the certified bound */
static double log_err(const pr_certexp_t r)
{
    const arb_struct *v = arf_is_zero(arb_midref(r->lower)) ? r->bound : r->lower;
    double x = arf_get_d(arb_midref(v), ARF_RND_NEAR);
    if (x == 0)
        x = mag_get_d(arb_radref(v));
    return x > 0 ? log(x) : -INFINITY;
}

/* Every degree below *hi fails. Minimax: de la Vallée Poussin proves E*_{*hi-1} > eps, hence
 * for every polynomial of degree <= *hi - 1 (best approximation errors do not grow with the
 * degree); where Remez's polynomial at *hi - 1 is neither certified nor so refuted, Remez is
 * tightened; certified, it becomes the new *hi (the search's Remez stopped early). Taylor and
 * Chebyshev: the certified minimax least degree g* refutes every degree < g* at once; each
 * degree of the construction in [g*, *hi) is refuted by a witness of its own (a degree
 * certified there, the error not being monotone, becomes the new *hi). CERTIFIED in
 * d->verdict when every degree below *hi is refuted. lo: the degree the search refuted (its
 * witness is in d->below). */
static int prove_below(pr_certexp_degree_t d, int *hi, int lo, pr_expoly_kind_t kind, pr_expoly_setting_t setting,
                       double R, double eps, int max_degree, pr_certexp_progress_fn progress, void *arg)
{
    int st = PR_OK, h = *hi - 1, done = 0, floor_deg = -1;
    arb_poly_t B;
    arb_t L;
    arb_poly_init(B);
    arb_init(L);
    if (kind != PR_EXPOLY_MINIMAX) {
        pr_certexp_degree_t m;
        pr_certexp_degree_init(m);
        st = pr_certexp_least_degree_progress(m, PR_EXPOLY_MINIMAX, setting, R, eps, -1, max_degree, progress, arg);
        d->constructions += m->constructions;
        if (!st && m->verdict == PR_CERT_CERTIFIED && m->refuted_all >= 0) {
            d->refuted_all = m->refuted_all;
            arb_set(d->lower_all, m->lower_all);
            floor_deg = m->refuted_all;
        }
        pr_certexp_degree_clear(m);
        if (st == PR_EDOMAIN)
            st = PR_OK;
        if (floor_deg < 0 && *hi > 16)
            floor_deg = *hi - 1;   /* no proof from below: walking every degree would cost
                                      about *hi constructions; the verdict stays unknown */
    }
    for (; h > floor_deg && !st && !done; h--) {
        pr_cert_verdict_t v;
        pr_certexp_t r;
        pr_certexp_init(r);
        if (progress)
            progress(arg, h, "proving lower degrees fail");
        if (kind == PR_EXPOLY_MINIMAX) {
            st = best_decide(&v, L, r, B, setting, R, eps, h, REMEZ_SPREAD_MIN);
            d->constructions++;
            if (!st && v == PR_CERT_REFUTED) {
                d->refuted_all = h;
                arb_set(d->lower_all, L);
                done = 1;
            }
        } else if (h == lo) {
            v = PR_CERT_REFUTED;   /* the search's witness, in d->below */
        } else {
            st = pr_certexp_certify_degree(r, B, kind, setting, R, eps, h);
            d->constructions++;
            v = r->verdict;
        }
        if (st || v == PR_CERT_UNKNOWN) {
            pr_certexp_clear(r);
            break;
        }
        if (v == PR_CERT_CERTIFIED) {
            *hi = h;
            pr_certexp_clear(d->at);
            *d->at = *r;
            arb_poly_swap(d->poly, B);
        } else if (h != lo && h == *hi - 1 && kind != PR_EXPOLY_MINIMAX) {
            pr_certexp_clear(d->below);
            *d->below = *r;
        } else {
            pr_certexp_clear(r);
        }
    }
    if (!st && (done || h <= floor_deg) && (floor_deg < 0 || d->refuted_all == floor_deg))
        d->verdict = PR_CERT_CERTIFIED;
    arb_poly_clear(B);
    arb_clear(L);
    return st;
}

int pr_certexp_least_degree(pr_certexp_degree_t d, pr_expoly_kind_t kind, pr_expoly_setting_t setting,
                            double R, double eps, int g_hint, int max_degree)
{
    return pr_certexp_least_degree_progress(d, kind, setting, R, eps, g_hint, max_degree, NULL, NULL);
}

int pr_certexp_least_degree_progress(pr_certexp_degree_t d, pr_expoly_kind_t kind, pr_expoly_setting_t setting,
                                     double R, double eps, int g_hint, int max_degree,
                                     pr_certexp_progress_fn progress, void *arg)
{
    if (!(R > 0) || !isfinite(R) || !(eps > 0 && eps < 1) || (unsigned)kind > 2 || (unsigned)setting > 2
        || max_degree < 0)
        return PR_EINVAL;
    int g = g_hint >= 0 ? g_hint : degree_guess(kind, setting, R, eps);
    if (g > max_degree + 8)
        return PR_EDOMAIN;   /* far past the budget: do not build a huge polynomial to find out */
    g = g > max_degree ? max_degree : g;
    d->degree = -1;
    d->verdict = PR_CERT_UNKNOWN;
    d->constructions = 0;
    d->refuted_all = -1;
    /* The search keeps the least certified degree hi and the largest refuted degree lo; it is
     * done when hi = lo + 1. Each step extrapolates log sup|E| linearly in g from the last two
     * degrees tried (the error decays about geometrically in g), then clamps into (lo, hi). */
    int lo = -1, hi = -1, st = PR_OK, gp = -1;
    double lp = 0, le = log(eps);
    arb_poly_t Q;
    arb_poly_init(Q);
    for (int step = 0; step < 4 * max_degree + 8; step++) {
        pr_certexp_t r;
        pr_certexp_init(r);
        if (progress)
            progress(arg, g, "searching");
        if ((st = pr_certexp_certify_degree(r, Q, kind, setting, R, eps, g))) {
            pr_certexp_clear(r);
            break;
        }
        d->constructions++;
        double l = log_err(r);
        if (r->verdict == PR_CERT_UNKNOWN) {
            pr_certexp_clear(r);
            break;
        }
        if (r->verdict == PR_CERT_CERTIFIED) {
            hi = g;
            pr_certexp_clear(d->at);
            *d->at = *r;
            arb_poly_swap(d->poly, Q);
        } else {
            lo = g;
            pr_certexp_clear(d->below);
            *d->below = *r;
        }
        if (hi == 0 || (hi >= 0 && hi == lo + 1))
            break;
        /* next degree: extrapolate, or step by one without a usable slope */
        int next = hi >= 0 && lo < 0 ? g - 1 : g + 1;
        if (gp >= 0 && gp != g && isfinite(l) && isfinite(lp) && (l - lp) / (g - gp) < 0) {
            /* the pre-asymptotic errors (near 1) decay slowly and would send the extrapolation
             * far: move at most max(4, g/2) degrees per step */
            double slope = (l - lp) / (g - gp), step = fmax(4, g / 2), jump = (le - l) / slope;
            next = g + (int)ceil(fmax(-step, fmin(step, jump)));
        }
        if (hi >= 0 && next >= hi)
            next = hi - 1;
        if (next <= lo)
            next = lo + 1;
        if (next > max_degree) {
            st = PR_EDOMAIN;
            break;
        }
        gp = g;
        lp = l;
        g = next;
    }
    if (!st && hi == 0)
        d->verdict = PR_CERT_CERTIFIED;
    else if (!st && hi > 0 && hi == lo + 1)
        st = prove_below(d, &hi, lo, kind, setting, R, eps, max_degree, progress, arg);
    d->degree = hi;
    arb_poly_clear(Q);
    return st;
}

double pr_certexp_cost_seconds(int *g_est, slong *prec_est, pr_expoly_kind_t kind, pr_expoly_setting_t setting,
                               double R, double eps, int g, int single)
{
    if (!(R > 0) || !isfinite(R) || !(eps > 0 && eps < 1))
        return NAN;
    if (!single)
        g = degree_guess(kind, setting, R, eps);
    *g_est = g;
    *prec_est = construct_prec(setting, R, eps, g);
    /* the cubic was fitted at eps = 1e-6 (896 bits at R = 90); past that precision each
     * operation costs more, like p^1.4 (fitted on R = 50, eps = 1e-300: 2262 bits, 184 s; and
     * R = 20, eps = 1e-200: 1381 bits, 16 s) */
    double x = g / 207.0, t = 6.3 * x * x * x * fmax(1.0, pow(*prec_est / 896.0, 1.4));
    return single ? t / 20 : t;
}
