/* pr_certexp: certified error of polynomial approximations of exp, certified least degree,
 * and the constructions in Arb for the range where double is not sound (issue 3).
 *
 * Claims: C7 (least degree for e^x vs Aggarwal–Alman), C8 (e^{-x} on [0, L]), C9 (a certified
 * eps_A feeds the output bound 2 eps_A/(1 - eps_A) ||V||). Settings and kinds are those of
 * pr_expoly.h. A double never certifies here: every bound is an Arb ball's upper end. */
#ifndef PR_CERTEXP_H
#define PR_CERTEXP_H

#include <stdio.h>
#include <arb.h>
#include <arb_poly.h>
#include <flint/fmpq_poly.h>
#include "pr_expoly.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    PR_CERT_CERTIFIED = 0,  /* sup |E| < threshold, proved */
    PR_CERT_REFUTED = 1,    /* |E(witness)| > threshold, proved */
    PR_CERT_UNKNOWN = 2     /* neither within the subdivision/precision budget */
} pr_cert_verdict_t;

/* What pr_certexp_sup did, counted per branch (tests assert that each is exercised). */
enum {
    PR_CERTEXP_BR_PIECE = 0,   /* pieces bounded by a Taylor model */
    PR_CERTEXP_BR_ACCEPT,      /* piece bounded below the threshold */
    PR_CERTEXP_BR_SPLIT,       /* piece bisected (bound above threshold, or not yet tight) */
    PR_CERTEXP_BR_UNCOVERED,   /* piece above the threshold that could not be split: unknown */
    PR_CERTEXP_BR_REFUTE,      /* a centre's |E| above the threshold: refuted */
    PR_CERTEXP_BR_RETRY,       /* precision doubled after evaluation noise near the threshold */
    PR_CERTEXP_NBRANCH
};

typedef struct {
    pr_cert_verdict_t verdict;
    arb_t bound;        /* a ball whose upper end u is exact (lower end <= 0): sup_x |E(x)| <= u
                           when certified (then u < threshold); refuted/unknown: the bound over
                           the pieces examined (a lower bound comes from witness_err) */
    arb_t lower;        /* max |E| at the points evaluated: its lower end is a lower bound of sup|E| */
    arb_t witness_x;    /* refuted: an exact point of the interval ... */
    arb_t witness_err;  /* ... and the ball E(witness_x), with |E| > threshold */
    double witness;     /* witness_x rounded to double, for printing */
    long pieces;        /* subintervals bounded */
    slong prec;         /* working precision used */
    long branch[PR_CERTEXP_NBRANCH];  /* counts, accumulated over calls until pr_certexp_init */
} pr_certexp_struct;
typedef pr_certexp_struct pr_certexp_t[1];

void pr_certexp_init(pr_certexp_t r);
void pr_certexp_clear(pr_certexp_t r);

/* Certified sup over the setting's interval of the error E of P (power basis in x; each
 * coefficient ball is honoured, so exact coefficients give exact claims), compared with thresh:
 *   E = P e^{-x} - 1 (EXP_REL), P - e^x (EXP_ABS), P - e^{-x} (EXPNEG_ABS).
 * Method (C7/C8): Chebyshev-graded subdivision; on each piece [x0 - h, x0 + h] a Taylor model
 *   E(x0 + s) = Σ_{k<=m} e_k s^k + rem, e_k = E^{(k)}(x0)/k!, |rem| <= sup|E^{(m+1)}| h^{m+1}/(m+1)!,
 * with the derivatives in closed form (EXP_REL: E^{(k)} = e^{-x}(D - 1)^k P) and the remainder's
 * derivative bounded by interval evaluation over the piece; the quadratic part is maximised
 * exactly, the rest by Σ|e_k| h^k; m grows with the degree (g/3 in [16, 48]). Pieces whose
 * bound is not below thresh, or not within 1/8 of the largest |E| seen (so that the bound is
 * tight), are bisected; a centre with |E| > thresh refutes. CERTIFIED only when every piece of
 * the cover is bounded below thresh (a piece that cannot be split further, or past a budget of
 * 20000 pieces, leaves UNKNOWN: every run terminates, at any precision and coefficient radius).
 * prec <= 0 chooses a precision from R and thresh; evaluation noise near thresh doubles it (at
 * most twice).
 * PR_EINVAL for bad R, thresh <= 0 or empty P. */
int pr_certexp_sup(pr_certexp_t r, const arb_poly_t P, pr_expoly_setting_t setting, double R,
                   double thresh, slong prec);
/* the same for exact double coefficients c[0..g] (as built by pr_expoly) */
int pr_certexp_sup_d(pr_certexp_t r, const double *c, int g, pr_expoly_setting_t setting, double R,
                     double thresh, slong prec);

/* The construction of pr_expoly in Arb at precision prec, power basis in x, coefficients rounded
 * to their midpoints (so the polynomial is exact and is what gets certified): Taylor at the
 * interval's centre (exact rationals for EXP_REL), Chebyshev interpolation at first-kind nodes,
 * minimax by Remez exchange with midpoint arithmetic. Sound for any R: nothing is rounded to
 * double. PR_EINVAL for bad R or g < 0; PR_ECONVERGE if Remez fails. */
int pr_certexp_construct(arb_poly_t P, pr_expoly_kind_t kind, pr_expoly_setting_t setting, double R,
                         int g, slong prec);

/* The construction of degree g in Arb (precision chosen from R, eps and g) into P, and its
 * certification against eps into r: one step of the least-degree search, for error-versus-degree
 * curves (C7, C8). PR_EINVAL for bad R, eps or g. */
int pr_certexp_certify_degree(pr_certexp_t r, arb_poly_t P, pr_expoly_kind_t kind, pr_expoly_setting_t setting,
                              double R, double eps, int g);

/* Exact Taylor polynomial Σ_{k<=g} (±x)^k/k! of e^{±x} at 0 (sign = +1 or -1), for exact-mode runs. */
void pr_certexp_taylor_fmpq(fmpq_poly_t P, int g, int sign);

typedef struct {
    int degree;               /* least g certified, or -1 if none was */
    pr_cert_verdict_t verdict;/* CERTIFIED when degree g is certified and every degree below g is
                                 proved to fail (see pr_certexp_least_degree); else UNKNOWN, and
                                 degree is only an upper bound of the least */
    pr_certexp_t at;          /* certification of degree g (bound = certified eps_A) */
    pr_certexp_t below;       /* taylor/chebyshev: the construction of degree g - 1 refuted at a
                                 witness (when g > 0 and refuted_all < g - 1) */
    int refuted_all;          /* every polynomial of degree <= refuted_all has sup|E| > eps, by de la
                                 Vallée Poussin on the best approximation; -1 if not used */
    arb_t lower_all;          /* its lower bound of E*_{refuted_all} (> eps) */
    arb_poly_t poly;          /* the certified polynomial of degree g */
    int constructions;        /* constructions certified or refuted */
} pr_certexp_degree_struct;
typedef pr_certexp_degree_struct pr_certexp_degree_t[1];

void pr_certexp_degree_init(pr_certexp_degree_t d);
void pr_certexp_degree_clear(pr_certexp_degree_t d);

/* Certified least degree g with sup|E| < eps on the setting's interval (C7 for EXP_REL/EXP_ABS,
 * C8 for EXPNEG_ABS), with the constructions run in Arb (pr_certexp_construct), so no double
 * rounding enters. Degree g of the construction is certified, and every degree below fails:
 *   minimax: least degree of ANY polynomial: de la Vallée Poussin proves E*_{g-1} > eps (the best
 *     approximation of degree g - 1, hence every lower degree, misses eps);
 *   taylor, chebyshev: least degree of THAT construction: each degree h < g of it refuted, by its
 *     own witness or, from some degree down, by E*_h > eps as above.
 * A degree that is neither certified nor refuted (eps within Remez's resolution of E*) leaves
 * the verdict UNKNOWN; degree is then the least degree certified.
 * g_hint >= 0 starts the search there (e.g. pr_expoly_fit_eps's degree); -1 estimates one.
 * PR_EINVAL for R <= 0 or eps outside (0, 1); PR_EDOMAIN if no g <= max_degree reaches eps
 * (or the estimated degree is already past it). */
int pr_certexp_least_degree(pr_certexp_degree_t d, pr_expoly_kind_t kind, pr_expoly_setting_t setting,
                            double R, double eps, int g_hint, int max_degree);

/* The same, calling progress(arg, degree, stage) before each degree it builds (for a progress
 * line on a terminal); progress may be NULL. */
typedef void (*pr_certexp_progress_fn)(void *arg, int degree, const char *stage);
int pr_certexp_least_degree_progress(pr_certexp_degree_t d, pr_expoly_kind_t kind, pr_expoly_setting_t setting,
                                     double R, double eps, int g_hint, int max_degree,
                                     pr_certexp_progress_fn progress, void *arg);

/* An estimate (not a bound) of the CPU seconds of pr_certexp_least_degree (single = 0) or of
 * pr_certexp_certify_degree at degree g (single = 1, g >= 0), on this project's reference
 * machine; *g_est and *prec_est receive the degree and precision it is based on. The work grows
 * like g^3 (Remez solves of size g, Taylor-model pieces of order up to 48, both at a precision
 * growing with g); fitted on degree --R 32, 64, 90 --certify (0.3, 2.5, 6.3 s), times
 * (prec/896)^1.4 past 896 bits (small eps: --R 50 --eps 1e-300 took 184 s at 2262 bits). */
double pr_certexp_cost_seconds(int *g_est, slong *prec_est, pr_expoly_kind_t kind, pr_expoly_setting_t setting,
                               double R, double eps, int g, int single);

/* x exactly as "m*2^(e)" (m odd or 0, integers in decimal), read by Sollya and by Python
 * (replace ^ with **); flint_free the result. */
char *pr_certexp_arf_str(const arf_t x);
/* The midpoints of P's coefficients, c_0 first, one "m*2^(e)" per line: exact dyadics, covered
 * by any certificate of P (which holds for every polynomial inside its coefficient balls). */
int pr_certexp_write_coeffs(FILE *f, const arb_poly_t P);

const char *pr_cert_verdict_name(pr_cert_verdict_t v);

#ifdef __cplusplus
}
#endif
#endif
