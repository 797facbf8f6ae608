/* pr_rope: rotary position embedding (docs/math.md §2).
 * θ_k = base^{-2k/d}, k = 0..d/2-1; R_m rotates pair k by m·θ_k:
 *   (x, y) -> (x cos mθ - y sin mθ, x sin mθ + y cos mθ).
 * Layouts: interleaved (GPT-J) pairs (2k, 2k+1); neox (rotate-half) pairs (k, k+d/2). */
#ifndef PR_ROPE_H
#define PR_ROPE_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    PR_ROPE_INTERLEAVED = 0,
    PR_ROPE_NEOX = 1
} pr_rope_layout_t;

#define PR_ROPE_BASE_DEFAULT 10000.0

/* theta[k] = base^{-2k/d}, k < d/2. d even, base > 1. In double through libm's pow (and the
 * angles mθ, cos, sin below through libm): roundings of the real numbers of the definition,
 * which pr_hiprec_certify (pr_hiprec_def_t) computes in Arb; pr_dense_error_est bounds the
 * difference (|Δ(mθ)| ≤ 3.4|m|u). */
int pr_rope_angles(double *theta, int d, double base);

/* column indices (*x, *y) of pair k in the layout */
void pr_rope_pair(int *x, int *y, int k, int d, pr_rope_layout_t layout);

/* Xr row i = R_{sign·i} X row i (sign = +1 rotates, -1 applies the adjoint R_iᵀ = R_{-i}).
 * X and Xr are n×d row-major; Xr may equal X. */
int pr_rope_rotate(double *Xr, const double *X, int n, int d, double base,
                   pr_rope_layout_t layout, int sign);

/* perm[c] = column of the neox layout that holds interleaved column c,
 * so that neox attention on Q[:, perm] equals interleaved attention on Q. */
void pr_rope_layout_perm(int *perm, int d);

#ifdef __cplusplus
}
#endif
#endif
