/* pr_dense: the dense reference attention, exact up to rounding, for every kind of W
 * (DESIGN.md §1 "Attention", "Backward"). Streaming: never an n×n matrix in memory.
 * With opts->poly set, A = P(M)·e^β replaces exp(M)·e^β, and the backward uses the same
 * formulas with that A (what the fast paths approximate; claims C2, G3). */
#ifndef PR_DENSE_H
#define PR_DENSE_H

#include "pr_attn.h"

/* O (n×d) and, if lse != NULL, lse[i] = log Σ_j A_ij (the backward's recomputation needs it). */
int pr_dense_forward(double *O, double *lse,
                     const double *Q, const double *K, const double *V, const pr_posw_t W,
                     int n, int d, const pr_attn_opts_t *opts);

/* Given O and lse from pr_dense_forward and the upstream dO:
 *   P = D^{-1}A, dV = Pᵀ dO, r_i = <dO_i, O_i>, dM = P ∘ (dO Vᵀ - r 1ᵀ),
 *   dQ_ia = σ Σ_j dM_ij Σ_b w_ab(i-j) K_jb,  dK_jb = σ Σ_i dM_ij Σ_a Q_ia w_ab(i-j),
 *   dw_k(ℓ) = σ Σ_{i-j=ℓ} dM_ij Q_{i a_k} K_{j b_k}  (dw: s×(2n-1), may be NULL). */
int pr_dense_backward(double *dQ, double *dK, double *dV, double *dw,
                      const double *Q, const double *K, const double *V, const pr_posw_t W,
                      const double *O, const double *lse, const double *dO,
                      int n, int d, const pr_attn_opts_t *opts);

#endif
