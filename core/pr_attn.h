/* pr_attn: the attention problem every algorithm solves (docs/math.md §1).
 *   M_ij = σ Σ_k Q_{i a_k} w_k(i-j) K_{j b_k},  A_ij = f(M_ij) · e^{β_{i-j}},
 *   O = diag(A·1)^{-1} A V,
 * with f = exp (the exact problem) or a polynomial P (what the fast paths compute). */
#ifndef PR_ATTN_H
#define PR_ATTN_H

#include "pr_posw.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    PR_SCALE_INV_D = 0,      /* σ = 1/d, as in the papers */
    PR_SCALE_INV_SQRT_D = 1  /* σ = 1/√d */
} pr_scale_t;

double pr_scale_sigma(pr_scale_t scale, int d);

typedef struct {
    double sigma;            /* score scale σ */
    int causal;              /* β_ℓ = -∞ for ℓ = i - j < 0 */
    const double *beta;      /* NULL, or 2n-1 finite biases β_ℓ at index ℓ+n-1 (ALiBi, learned) */
    const double *poly;      /* NULL for f = exp; else power-basis coefficients c_0..c_g of P */
    int poly_degree;         /* g, when poly != NULL */
} pr_attn_opts_t;

/* σ = 1/d, no mask, no bias, f = exp */
void pr_attn_opts_default(pr_attn_opts_t *opts, int d);

/* β_ℓ = -m|ℓ| (ALiBi slope m ≥ 0) into beta[0..2n-1) */
int pr_bias_alibi(double *beta, int n, double m);

/* log of the bias factor at offset ℓ: -INFINITY where masked */
double pr_attn_log_bias(const pr_attn_opts_t *opts, int n, long l);

/* Checks shared by every algorithm's entry point: n, d > 0, finite Q, K, V, W sized n×d,
 * finite σ > 0, finite β, a polynomial of degree ≥ 0. */
int pr_attn_check(const double *Q, const double *K, const double *V, const pr_posw_struct *W,
                  int n, int d, const pr_attn_opts_t *opts);

/* Grouped-query attention: h query heads over h_kv kv heads (h_kv divides h), query head q reads
 * kv head q / (h / h_kv) (docs/math.md §5, Heads). A batch (b, h) is b·h query heads over b·h_kv kv heads
 * by the same formula: bi·h_kv + hi / (h / h_kv) = (bi·h + hi) / (h / h_kv). */
static inline long pr_attn_kv_head(long q, long h, long h_kv)
{
    return q / (h / h_kv);
}

#ifdef __cplusplus
}
#endif
#endif
