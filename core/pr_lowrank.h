/* pr_lowrank: the forward pass for factorised position matrices (RoPE, identity) by the
 * polynomial method (Alman–Song 2023 after rotating Q and K; docs/math.md §6;
 * claims C11, C12).
 *
 * With q'_i = R_i Q_i and k'_j = R_j K_j, M_ij = σ q'_i·k'_j and
 *     P(σ q·k) = Σ_k c_k σ^k (q·k)^k = Σ_m φ_m(q) ψ_m(k),
 *     φ_m(q) = c_|m| σ^|m| multinomial(m) q^m,  ψ_m(k) = k^m,
 * over the multisets m of [d] with |m| <= g: C(d+g, g) symmetric-monomial features, each built
 * from its parent (pr_expand_marg_t order), one multiplication per row. Then Ã[V | 1] = Φ (Ψᵀ [V | 1])
 * by blocks of rows (dgemm); causal: the prefix sums Z_b = Σ_{blocks < b} Ψᵀ[V | 1] serve the
 * rows of block b, and the entries inside a block's diagonal square are P(σ q'_i·k'_j) directly. */
#ifndef PR_LOWRANK_H
#define PR_LOWRANK_H

#include <stddef.h>
#include "pr_attn.h"
#include "pr_posw.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when W's scores factorise so that this path applies: the RoPE kinds and the identity */
int pr_lowrank_applies(const pr_posw_t W);

/* The rotation of the low-rank paths, forward and backward (docs/math.md §6): Xr row i =
 * R_{sign·i} X row i (pr_rope_rotate) for the RoPE kinds of its layout and base; X copied for the
 * identity (kind PR_POS_IDENTITY). n×d row-major, Xr may equal X. PR_EINVAL for another kind. */
int pr_lowrank_rotate(double *Xr, const double *X, int n, int d, pr_pos_kind_t kind, double rope_base,
                      int sign);

/* A plan: everything that depends on W, σ, the mask and P but not on Q, K, V: the features'
 * table (C(d+g, g) multisets, their coefficients) and every buffer, so that execute allocates
 * nothing and one plan serves any number of heads. PR_EINVAL when W does not factorise, opts->beta
 * is set (a general bias does not factorise: use the FFT path) or opts->poly is missing (P is
 * copied: the plan keeps its own); PR_EBUDGET when C(d+g, g) passes max_features or the buffers
 * pass mem_budget (checked before anything is allocated). */
typedef struct pr_lowrank_plan_s pr_lowrank_plan_t;

int pr_lowrank_plan(pr_lowrank_plan_t **plan, const pr_posw_t W, const pr_attn_opts_t *opts,
                    size_t mem_budget, long max_features);

/* O (h, n, d) = diag(Ã 1)^{-1} Ã V per query head, Ã_ij = P(M_ij) (0 above the diagonal when
 * causal); Q (h, n, d), K and V (h_kv, n, d), h_kv dividing h (grouped-query: query head i reads
 * kv head i / (h / h_kv)). Unmasked, the keys' sum Ψᵀ[V | 1] is made once per kv head; each head's
 * result is bit for bit the one-head execute's. PR_EINVAL for bad h, h_kv, PR_ENONFINITE for NaN
 * or Inf in Q, K, V, PR_EDOMAIN if a row sum of Ã is not positive. */
int pr_lowrank_execute_heads(double *O, pr_lowrank_plan_t *plan, int h, int h_kv, const double *Q,
                             const double *K, const double *V);

void pr_lowrank_destroy(pr_lowrank_plan_t *plan);

/* One head in one call: pr_attn_check, pr_lowrank_plan, pr_lowrank_execute_heads, destroy. */
int pr_lowrank_execute(double *O, const double *Q, const double *K, const double *V,
                       const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts,
                       size_t mem_budget, long max_features);

/* Bytes a plan holds for degree g (+Inf past pr_expand_binom's range): its allocations counted by
 * a dry run (pr_mem) plus the features' table (pr_expand_marg_bytes); what mem_budget is checked
 * against, before anything is allocated. Any number of heads: the buffers are reused. */
double pr_lowrank_bytes(int n, int d, int g);

/* Memory (bytes, pr_lowrank_bytes) and work (operations: two dgemms of n × C(d+g, g) × (d+1)) of
 * one head's forward for n, d and degree g, as pr_fast_needs gives the FFT path's. */
void pr_lowrank_needs(double *bytes, double *ops, int n, int d, int g);

#ifdef __cplusplus
}
#endif
#endif
