/* pr_xtoeplitz: exact Toeplitz products with FLINT, and the certified error of the float
 * engine pr_toeplitz (claim C4: FFT Toeplitz product = dense product, to a proven bound).
 *
 * Every double is a dyadic rational m·2^q. Scaling a whole array to one common exponent turns
 * it into integers, and the Toeplitz product / correlation becomes one fmpz_poly_mul: the
 * result is exact, returned as integers y[i] with a common exponent, y_i = y[i]·2^exp.
 * Conventions (symbol layout, op flags) are those of core/pr_toeplitz.h. */
#ifndef PR_XTOEPLITZ_H
#define PR_XTOEPLITZ_H

#include <flint/fmpz.h>
#include <arb.h>
#include "pr_toeplitz.h"
#include "pr_certexp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Exact y = op(T) x: y_i = y[i]·2^(*exp), i < n. y holds n initialised fmpz.
 * PR_EINVAL (n < 1, bad op), PR_ENONFINITE. */
int pr_xtoeplitz_apply(fmpz *y, slong *exp, const double *t, const double *x, long n,
                       unsigned op);

/* Exact correlation c(ℓ) = Σ_{i-j=ℓ} x_i y_j = c[ℓ+n-1]·2^(*exp); c holds 2n-1 fmpz. */
int pr_xtoeplitz_correlate(fmpz *c, slong *exp, const double *x, const double *y, long n);

/* The same on integers (rational data: scale by a common denominator first): y = op(T) x for
 * a symbol t of 2n-1 fmpz and x of n fmpz; c(ℓ) = c[ℓ+n-1]. Exact, any size. PR_EINVAL. */
int pr_xtoeplitz_apply_fmpz(fmpz *y, const fmpz *t, const fmpz *x, long n, unsigned op);
int pr_xtoeplitz_correlate_fmpz(fmpz *c, const fmpz *x, const fmpz *y, long n);

/* err = max_i |yf[i] - y[i]·2^exp| exactly (a ball of radius 0); +inf if some yf[i] is not
 * finite (so that "err ≤ bound" is refuted, never certified). */
void pr_xtoeplitz_max_error(arb_t err, const double *yf, const fmpz *y, slong exp, long len);

/* The a-priori bound on max_i |ŷ_i − y_i| for the float engine's op(T) x on plan P (direct or
 * FFT path, as P chose), as an Arb enclosure of the formula. See pr_xtoeplitz.c for the forms. */
int pr_xtoeplitz_apriori_bound(arb_t bound, const double *t, const double *x, unsigned op,
                               const pr_toeplitz_plan_t P);
/* The same for pr_toeplitz_correlate(x, y). */
int pr_xtoeplitz_apriori_bound_correlate(arb_t bound, const double *x, const double *y,
                                         const pr_toeplitz_plan_t P);

/* Runs the float engine (pr_toeplitz_apply on P) on (t, x), computes the exact product, and
 * returns its max error err (exact), the a-priori bound, and the verdict err ≤ bound
 * (certified: proven; refuted: err > bound proven; unknown: the enclosures overlap). */
int pr_xtoeplitz_certify(pr_cert_verdict_t *verdict, arb_t err, arb_t bound,
                         const double *t, const double *x, unsigned op,
                         const pr_toeplitz_plan_t P);
/* The same for pr_toeplitz_correlate. */
int pr_xtoeplitz_certify_correlate(pr_cert_verdict_t *verdict, arb_t err, arb_t bound,
                                   const double *x, const double *y,
                                   const pr_toeplitz_plan_t P);

#ifdef __cplusplus
}
#endif
#endif
