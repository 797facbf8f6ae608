/* pr_hiprec: high-precision reference attention and gradients in Arb ball arithmetic
 * (docs/math.md §1, §7; used by claims C6, C9, C11, C14, G1, G2, G4).
 *
 * Inputs given as doubles are exact dyadic rationals, so every output ball is a certified
 * enclosure of the exact value of the problem those doubles define (σ included: the double
 * σ is taken as exact); pr_hiprec_certify can instead take RoPE's W, σ and ALiBi's β as the
 * real numbers of their definition (pr_hiprec_def_t). Works for every kind of W, causal masks, biases β and a polynomial P
 * in place of exp (pr_attn_opts_t). Cost O(n² s) ball operations: meant for n up to a few
 * hundred. prec ≥ PR_HIPREC_MIN_PREC bits. */
#ifndef PR_HIPREC_H
#define PR_HIPREC_H

#include <arb.h>
#include "pr_attn.h"
#include "pr_certexp.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PR_HIPREC_MIN_PREC 128

/* Forward with ball inputs: O (n×d). If P != NULL it receives the n×n weights A_ij / D_i.
 * Q, K, V are n×d; w is s×(2n-1) laid out as W->w; W supplies the support and sizes only. */
int pr_hiprec_forward_arb(arb_ptr O, arb_ptr P,
                          arb_srcptr Q, arb_srcptr K, arb_srcptr V, arb_srcptr w,
                          const pr_posw_struct *W, int n, int d, const pr_attn_opts_t *opts,
                          slong prec);

/* Backward with ball inputs (formulas of docs/math.md §7, as pr_dense_backward; with
 * opts->poly the same formulas with A = P(M)e^β). Any of dQ, dK (n×d), dV (n×d),
 * dw (s×(2n-1)), dM (n×n) may be NULL. */
int pr_hiprec_backward_arb(arb_ptr dQ, arb_ptr dK, arb_ptr dV, arb_ptr dw, arb_ptr dM,
                           arb_srcptr Q, arb_srcptr K, arb_srcptr V, arb_srcptr w,
                           arb_srcptr dO, const pr_posw_struct *W, int n, int d,
                           const pr_attn_opts_t *opts, slong prec);

/* The same with double inputs (exact), W's own sequences. */
int pr_hiprec_forward(arb_ptr O, const double *Q, const double *K, const double *V,
                      const pr_posw_struct *W, int n, int d, const pr_attn_opts_t *opts,
                      slong prec);
int pr_hiprec_backward(arb_ptr dQ, arb_ptr dK, arb_ptr dV, arb_ptr dw,
                       const double *Q, const double *K, const double *V,
                       const pr_posw_struct *W, const double *dO, int n, int d,
                       const pr_attn_opts_t *opts, slong prec);

/* The scores M_ij = σ Q_i W_{i-j} K_jᵀ for all i, j (n×n, mask not applied). */
int pr_hiprec_scores(arb_ptr M, const double *Q, const double *K, const pr_posw_struct *W,
                     int n, int d, const pr_attn_opts_t *opts, slong prec);

/* What a certificate is of. The doubles of the inputs (Q, K, V, dO, a general W, the RoPE base,
 * an ALiBi slope) are exact; what the problem computes from them can be taken as the doubles the
 * library rounded them to (def NULL: W->w, opts->sigma, opts->beta as given) or as the real
 * numbers of the definition (docs/math.md), computed in Arb, so that the enclosure holds
 * whatever libm does:
 *   rope:  1: a RoPE W (kind PR_POS_ROPE or _NEOX, s = 2d) is θ_k = base^{-2k/d} (base =
 *          W->rope_base), w = cos ℓθ_k, ±sin ℓθ_k; 0: W->w as given;
 *   scale: PR_SCALE_INV_D: σ = 1/d; PR_SCALE_INV_SQRT_D: σ = 1/√d; -1: opts->sigma as given;
 *   alibi: > 0: β_ℓ = -alibi·|ℓ| (opts->beta must be set, its rounding); 0: opts->beta as given. */
typedef struct {
    int rope;
    int scale;
    double alibi;
} pr_hiprec_def_t;

/* the real-number definition: rope = 1, σ of the scale, the ALiBi slope (0: none or opts->beta) */
void pr_hiprec_def_real(pr_hiprec_def_t *def, pr_scale_t scale, double alibi);

/* Certified errors of double outputs of one problem (what `polyrope attn --certify` prints):
 * err_O ∋ max_i |O[i] - O_i|; if dQ != NULL (with dK, dV and, when dw != NULL, dw, for the
 * upstream dO), err_grad ∋ the largest entry error over the gradients given. The reference is
 * exact attention (opts->poly NULL) or P-attention (opts->poly set), of the problem def says
 * (NULL: the doubles as given). An error ball may be infinite (the verdict is then unknown). */
int pr_hiprec_certify(arb_t err_O, arb_t err_grad, const double *O, const double *dQ,
                      const double *dK, const double *dV, const double *dw,
                      const double *Q, const double *K, const double *V, const pr_posw_struct *W,
                      const double *dO, int n, int d, const pr_attn_opts_t *opts,
                      const pr_hiprec_def_t *def, slong prec);

/* x[0..len) as exact balls */
void pr_hiprec_set_d_vec(arb_ptr y, const double *x, size_t len);

/* err ∋ max_i |x[i] - ref_i| for the exact values ref_i enclosed by ref[i]:
 * arb_get_ubound_arf(err) is a certified upper bound of the error of the double output x. */
void pr_hiprec_max_error(arb_t err, const double *x, arb_srcptr ref, size_t len, slong prec);

/* err ∋ max_i |x_i - y_i| for the exact values enclosed by two ball vectors */
void pr_hiprec_max_diff(arb_t err, arb_srcptr x, arb_srcptr y, size_t len, slong prec);

/* Three-way verdict of "quantity ≤ threshold" for balls enclosing both: certified when every
 * point of quantity is ≤ every point of threshold, refuted when every point is >, else
 * unknown (raise prec). */
pr_cert_verdict_t pr_hiprec_verdict(const arb_t quantity, const arb_t threshold);

/* An upper bound of |x| (every point of the ball) rounded up to a double; +Inf if unbounded. */
double pr_hiprec_ubound_d(const arb_t x);
/* A lower bound of |x| (every point of the ball) rounded down to a double; 0 for a NaN ball. */
double pr_hiprec_lbound_d(const arb_t x);

#ifdef __cplusplus
}
#endif
#endif
