/* pr_xexpand: the rescaled-Toeplitz expansion (docs/math.md) run in exact rational arithmetic,
 * so that claim C2 holds with equality, and the same algebra in double, so that the
 * floating-point floor (F1) is measured as exact minus float.
 *
 *   P(M) = Σ_e α_e diag(u_e) T_e diag(v_e),  e a multiset of S with |e| ≤ g,
 *   α_e = c_{|e|} · multinomial(e) · σ^{|e|},  u_e(i) = Π Q_{i a}^{e_ab},
 *   v_e(j) = Π K_{j b}^{e_ab},  t_e(ℓ) = Π w_ab(ℓ)^{e_ab}  (times the causal mask).
 *
 * The terms are core/pr_expand's, in its order (the fast paths' enumeration); only the
 * arithmetic here is rational. Inputs are doubles, taken as the exact dyadic rationals they
 * are; Toeplitz products are FLINT fmpz_poly multiplications. A bias β other than the causal
 * mask is not rational and is refused (PR_EINVAL). With g = 1 and P(x) = x the expansion is M itself (claim C1). */
#ifndef PR_XEXPAND_H
#define PR_XEXPAND_H

#include <flint/fmpq.h>
#include <flint/fmpz.h>
#include "pr_attn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* more terms than this are refused (PR_EBUDGET): the exact run is for small instances */
#define PR_XEXPAND_MAX_TERMS 200000

typedef struct {
    int n, d, s, causal;
    const int *a, *b;   /* the support of W (borrowed) */
    fmpq *Q, *K;        /* n×d */
    fmpq *w;            /* s×(2n-1) */
    fmpq_t sigma;
} pr_xexpand_struct;
typedef pr_xexpand_struct pr_xexpand_t[1];

/* y = x exactly (x finite) */
void pr_xexpand_fmpq_set_d(fmpq_t y, double x);

/* The problem (Q, K, W, σ, mask) as rationals. W must outlive E. */
int pr_xexpand_init(pr_xexpand_t E, const double *Q, const double *K, const pr_posw_struct *W,
                    int n, int d, const pr_attn_opts_t *opts);
void pr_xexpand_clear(pr_xexpand_t E);

/* Y = Σ_e α_e diag(u_e) T_e diag(v_e) X (n×m, row-major), exactly, with the coefficients
 * c_0..c_g of P. */
int pr_xexpand_apply(fmpq *Y, const pr_xexpand_t E, const fmpq *coef, int g,
                     const fmpq *X, int m);

/* Y = (P(M) ∘ mask) X exactly, from the entries M_ij: the dense side of C1/C2. */
int pr_xexpand_direct(fmpq *Y, const pr_xexpand_t E, const fmpq *coef, int g,
                      const fmpq *X, int m);

/* Õ = diag(Ã1)^{-1} Ã V exactly through the expansion (n×d); PR_EDOMAIN if a row sum is 0. */
int pr_xexpand_output(fmpq *O, const pr_xexpand_t E, const fmpq *coef, int g, const double *V);

/* Y = Σ_e α_e diag(u_e) T_e diag(v_e) X in double: the same terms, each term's Toeplitz product
 * summed directly, terms added in the same order (C2 float side). */
int pr_xexpand_apply_d(double *Y, const double *Q, const double *K, const pr_posw_struct *W,
                       int n, int d, const pr_attn_opts_t *opts, const double *coef, int g,
                       const double *X, int m);

/* The same algebra in double: each term's Toeplitz product summed directly, terms in the
 * same order. Its distance to pr_xexpand_output is the floating-point floor (F1). */
int pr_xexpand_output_d(double *O, const double *Q, const double *K, const double *V,
                        const pr_posw_struct *W, int n, int d, const pr_attn_opts_t *opts,
                        const double *coef, int g);

/* by_degree[k] = number of multisets of size k of an s-set, k = 0..g, counted over the
 * enumeration the expansion uses (pr_expand; claim C3); *total = their sum. */
int pr_xexpand_count(fmpz_t total, fmpz *by_degree, int s, int g);

#ifdef __cplusplus
}
#endif
#endif
