/* pr_certexp internals shared by pr_certexp.c (the certified sup norm and its Taylor models),
 * pr_certexp_construct.c (the constructions in Arb) and pr_certexp_degree.c (the certified least
 * degree). Not installed. */
#ifndef PR_CERTEXP_IMPL_H
#define PR_CERTEXP_IMPL_H

#include "pr_certexp.h"

#define TM_ORDER 48   /* highest Taylor-model order m on a piece (pr_certexp.c's tm_order chooses) */
/* Remez stops once the levelled |E| spreads by less than this relative amount; the least-degree
 * search tightens it (REMEZ_SPREAD_MIN at the finest) where a degree is undecided */
#define REMEZ_SPREAD 1e-6
#define REMEZ_SPREAD_MIN 1e-15

/* z = x op d for a double d, at precision prec (ARF_PREC_EXACT for exact) */
static inline void pr_certexp_op_d(void (*op)(arb_t, const arb_t, const arb_t, slong), arb_t z,
                                   const arb_t x, double d, slong prec)
{
    arb_t t;
    arb_init(t);
    arb_set_d(t, d);
    op(z, x, t, prec);
    arb_clear(t);
}

/* ---- derivatives of the error E in closed form ----
 * EXP_REL:  E = e^{-x} P - 1, E^{(k)} = e^{-x} D_k with D_0 = P, D_{k+1} = D_k' - D_k.
 * additive: E = P - e^{σx},   E^{(k)} = D_k - σ^k e^{σx} with D_k = P^{(k)}. */
typedef struct {
    pr_expoly_setting_t setting;
    int sigma, m;
    arb_poly_struct D[TM_ORDER + 2];
} pr_certexp_tm_t;

/* D_0..D_{m+1} of P for setting (m <= TM_ORDER) */
void pr_certexp_tm_init(pr_certexp_tm_t *c, const arb_poly_t P, pr_expoly_setting_t setting, int m, slong prec);
void pr_certexp_tm_clear(pr_certexp_tm_t *c);
/* E^{(k)}(x)/k! for one k, fx the exponential factor at x; x may be a ball (then an enclosure over it) */
void pr_certexp_tm_deriv(arb_t y, const pr_certexp_tm_t *c, int k, const arb_t x, const arb_t fx, slong prec);
/* the exponential factor: e^{-x} (EXP_REL) or e^{σx} */
void pr_certexp_tm_expfac(arb_t f, const pr_certexp_tm_t *c, const arb_t x, slong prec);
/* e[0..K]: Taylor coefficients of E at x */
void pr_certexp_tm_coeffs(arb_ptr e, const pr_certexp_tm_t *c, const arb_t x, int K, slong prec);

/* pr_certexp_construct, and for the minimax (g > 0 or xref != NULL) the reference on which the
 * result alternates into xref[0..g+2) (may be NULL) and Remez's stopping spread (pr_certexp_construct.c) */
int pr_certexp_construct_ref(arb_poly_t P, double *xref, pr_expoly_kind_t kind, pr_expoly_setting_t setting,
                             double R, int g, double spread, slong prec);

#endif
