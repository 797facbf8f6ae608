/* pr_dense: the dense reference attention, exact up to rounding, for every kind of W
 * (docs/math.md §1, §7). Streaming: never an n×n matrix in memory.
 * With opts->poly set, A = P(M)·e^β replaces exp(M)·e^β, and the backward uses the same
 * formulas with that A (what the fast paths approximate; claims C2, G3).
 * Factorised RoPE and W = I go through rotated Q, K and dgemm tiles; any other kind through
 * the O(n² s) loop over the support (a copy of W with kind = PR_POS_CUSTOM forces that loop).
 * Both use the OpenMP threads, with OpenBLAS single-threaded inside them. */
#ifndef PR_DENSE_H
#define PR_DENSE_H

#include "pr_attn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* O (n×d) and, if lse != NULL, lse[i] = log Σ_j A_ij (the backward's recomputation needs it).
 * PR_EDOMAIN when a polynomial row sum Σ_j A_ij is not positive and finite, when
 * σ·max|Q|·max|K|·max_ℓ Σ_k|w_k(ℓ)| is so large that scores could overflow, or when an
 * output overflows. */
int pr_dense_forward(double *O, double *lse,
                     const double *Q, const double *K, const double *V, const pr_posw_t W,
                     int n, int d, const pr_attn_opts_t *opts);

/* Given O and lse from pr_dense_forward and the upstream dO:
 *   P = D^{-1}A, dV = Pᵀ dO, r_i = <dO_i, O_i>, dM = P ∘ (dO Vᵀ - r 1ᵀ),
 *   dQ_ia = σ Σ_j dM_ij Σ_b w_ab(i-j) K_jb,  dK_jb = σ Σ_i dM_ij Σ_a Q_ia w_ab(i-j),
 *   dw_k(ℓ) = σ Σ_{i-j=ℓ} dM_ij Q_{i a_k} K_{j b_k}  (dw: s×(2n-1), may be NULL; when
 *   given, the O(n² s) loop runs whatever the kind of W). With a polynomial these are the
 *   formulas above evaluated with its A, not the derivative of its forward. Statuses as the
 *   forward's, and PR_ENONFINITE for a non-finite O, lse or dO. */
int pr_dense_backward(double *dQ, double *dK, double *dV, double *dw,
                      const double *Q, const double *K, const double *V, const pr_posw_t W,
                      const double *O, const double *lse, const double *dO,
                      int n, int d, const pr_attn_opts_t *opts);

/* A-priori error estimates of the dense reference from its data (derivation at
 * pr_dense_error_est in pr_dense_err.c): first-order γ_k-style bounds on the largest entry error of
 * each output of pr_dense_forward/pr_dense_backward against the real-number problem (RoPE angles
 * θ_k = base^{-2k/d}, σ = 1/d or 1/√d and β as exact reals from their double inputs), assuming
 * libm's exp, pow, cos and sin within one ulp. A double estimate: it chooses and warns, never
 * certifies (pr_hiprec_certify does). Worst case over the data, so pessimistic (by up to n for
 * dK, dV, dw, whose sums run over a column of P). */
typedef struct {
    double score;            /* |ΔM_ij|, the scores' absolute error (β and the row shift included) */
    double o;                /* max |ΔO_ic| */
    double dq, dk, dv, dw;   /* max entry errors of the gradients (NAN without dO) */
} pr_dense_err_t;

/* O is pr_dense_forward's output (its size enters r_i = <dO_i, O_i>); dO may be NULL (forward
 * only). Exp attention only: PR_EINVAL with opts->poly. */
int pr_dense_error_est(pr_dense_err_t *err, const double *Q, const double *K, const double *V,
                       const pr_posw_t W, const double *O, const double *dO, int n, int d,
                       const pr_attn_opts_t *opts);

/* The papers' objective (docs/math.md §7): Q = A1·X, K = A2, V = A3·Y with A1, A2, A3
 * n×d and X, Y d×d; L(X) = ½‖O - E‖²_F. Sets *loss and, if dX != NULL, dX = A1ᵀ·dQ (d×d)
 * with dQ from pr_dense_backward at dO = O - E (claim G2). */
int pr_dense_loss_x(double *loss, double *dX, const double *A1, const double *X, const double *A2,
                    const double *A3, const double *Y, const double *E, const pr_posw_t W, int n,
                    int d, const pr_attn_opts_t *opts);

#ifdef __cplusplus
}
#endif
#endif
