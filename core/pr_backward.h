/* pr_backward: the fast backward pass of polynomial RoPE attention (Chen, Huo, Li, Liang, Shi,
 * Song, arXiv 2412.17316; docs/math.md §7, claims G3, G4, G5).
 *
 * Given the fast forward's output Õ, its row sums D̃_i = Σ_j Ã_ij (passed as lse_i = log D̃_i, as
 * pr_dense_forward returns them) and the upstream gradient dO, with P̃ = D̃⁻¹Ã and
 * Ã_ij = P(M_ij)·e^{β_{i-j}}:
 *   dV = P̃ᵀ dO,  r_i = <dO_i, Õ_i>,  dM̃ = P̃ ∘ (dO Vᵀ - r 1ᵀ),
 *   dQ_ia = σ Σ_j dM̃_ij Σ_b w_ab(i-j) K_jb,  dK_jb = σ Σ_i dM̃_ij Σ_a Q_ia w_ab(i-j),
 *   dw_k(ℓ) = σ Σ_{i-j=ℓ} dM̃_ij Q_{i a_k} K_{j b_k},
 * i.e. exactly what pr_dense_backward computes with opts->poly = P (claim G3), in time
 * C(s+g+1, g+1)·O(n log n) (general W, FFT path) or C(d+g+1, g+1)·O(n d) (RoPE, low-rank path).
 * The derivation (dM̃ ∘ T^{(a,b)} as rescaled Toeplitz sums) is at the top of pr_backward.c. */
#ifndef PR_BACKWARD_H
#define PR_BACKWARD_H

#include "pr_attn.h"
#include "pr_fast.h"

#ifdef __cplusplus
extern "C" {
#endif

/* General W: the FFT path. The plan takes the terms f of pr_expand built up to degree g+1
 * (C(s+g+1, g+1) of them, grouped by a-marginal, sorted by b-marginal inside a group; math.md
 * §7), tabulates the powers of the symbols and allocates every buffer; execute allocates nothing.
 * opts->poly (degree g ≥ 0) is required; opts->beta and opts->causal fold into the symbols.
 * F: the forward plan made for the same W, opts and n (or NULL). The backward then borrows F's
 * expansion (built to degree g+1) and Toeplitz plan, and each (μ, ν) pair of size m ≤ g with
 * c_m ≠ 0 takes F's kept pair spectrum Σ_{e in pair} α_e t̂_e (Σ α̂_f t̂_f is c_{m-1}/(m c_m) times
 * it); the other pairs sum their symbols in the time domain and are transformed once per pair:
 * those of size g+1 at plan time (kept_spectra), unless that alone passes max_bytes, the others
 * (c_m = 0, or F streamed) in each execute. A kept F's K, V half (x̂ and its sums' inverses,
 * pr_fast_execute_kv) serves as Ŷ of the sizes ≤ g and as dQ's sums of the sizes 1 ≤ m ≤ g with
 * c_m ≠ 0 (up to the factor c_{m-1}/(m c_m)): taken as F's last execute left
 * it when that ran on the same K, V, else made on F by an execute here, so that an execute here
 * writes F and must not run concurrently with another on F. F must outlive the backward plan. Without F
 * the plan builds its own expansion to degree g+1 and its own Toeplitz plan.
 * heads: the most Q heads one execute may take (pr_backward_execute_heads).
 * want_dw = 0 skips dw. Memory: the plan first runs its allocations dry (pr_mem) and refuses with
 * PR_EBUDGET, before allocating anything, when they pass max_bytes (0: no limit) even without the
 * kept size-(g+1) spectra.
 * Threads: the plan makes scratch and output parts for omp_get_max_threads() OpenMP threads (at
 * most the number of a-marginals of size g+1); execute splits each size's a-marginals (balanced
 * by their work, the next size's b-marginal transforms filling the shares to one load; a size
 * whose dQ sums are the forward's, and size 0, by equal counts of its (μ, ν) pairs instead), then
 * its b-marginals' inverse transforms over them, and adds the threads' parts in thread order: for
 * a given thread count the result does not depend on scheduling. */
typedef struct pr_backward_plan_s pr_backward_plan;

int pr_backward_plan_heads(pr_backward_plan **plan, pr_fast_plan_struct *F,
                           const pr_posw_struct *W, const pr_attn_opts_t *opts, int heads,
                           int want_dw, double max_bytes);

/* pr_backward_plan_heads for one head. */
int pr_backward_plan_fft(pr_backward_plan **plan, pr_fast_plan_struct *F,
                         const pr_posw_struct *W, const pr_attn_opts_t *opts, int want_dw,
                         double max_bytes);

/* h Q heads and h_kv kv heads (h_kv divides h; Q head i uses kv head i / (h / h_kv), grouped-query
 * attention), all on the plan's W, row-major and head-major:
 *   Q, O, dO, dQ: h × n × d;  lse: h × n;  K, V, dK, dV: h_kv × n × d (dK, dV summed over the Q
 *   heads sharing the kv head);  kappa: NULL or h_kv × n, κ_j = Σ_{i, Q heads} P̃_ij ‖dO_i‖₁ summed
 *   likewise (the weight of the summed dK, dV's bound, pr_control_backward_bound);  dw: s×(2n-1)
 *   as in pr_posw, summed over all heads (W is shared; NULL to skip; must be NULL if the plan was
 *   made without dw).
 * Each pair spectrum is read once per block of frequencies for every kv head and column, and dw's
 * correlations are summed over the heads before their one inverse transform per pair. The Q heads
 * of a kv head share its transforms and products (dQ's sums depend on the kv head only; the
 * others are linear in the group's x_c u_μ, summed before one transform): an (h, h_kv) execute
 * runs the transforms of an (h_kv, h_kv) one. Per head
 * dQ, and with h_kv = h dK, dV and kappa, are bit for bit those of one-head executes on the
 * head's slices, unless a kept F holds fewer than h_kv kv heads (its K, V half then serves the
 * one-head executes only). PR_EINVAL unless 1 ≤ h ≤ the planned heads and h_kv divides h. */
int pr_backward_execute_heads(pr_backward_plan *plan, double *dQ, double *dK, double *dV, double *dw,
                              double *kappa, const double *Q, const double *K, const double *V,
                              const double *O, const double *lse, const double *dO, int h, int h_kv);

/* One head: dQ, dK, dV: n×d; dw: s×(2n-1) as in pr_posw (NULL to skip; must be NULL if the plan
 * was made without dw); kappa: NULL or n entries κ_j = Σ_i P̃_ij ‖dO_i‖₁, the column weight that
 * pr_control_backward_bound needs. Q, K, V, O, lse, dO as in the header comment. */
int pr_backward_execute(pr_backward_plan *plan, double *dQ, double *dK, double *dV, double *dw,
                        double *kappa, const double *Q, const double *K, const double *V,
                        const double *O, const double *lse, const double *dO);

void pr_backward_destroy(pr_backward_plan *plan);

/* κ^w(ℓ) = Σ_{i-j=ℓ} ‖dO_i‖₁ P̃_ij at index ℓ+n-1 (summed over the heads) from the last execute
 * that computed dw and kappa (else NULL): the diagonal weights of dw's bound (one more
 * correlation per (μ, ν)). */
const double *pr_backward_kappa_w(const pr_backward_plan *plan);

/* lse_i = log D̃_i from the last pr_fast_execute (or _heads) of F, for every head it ran (h × n
 * entries, pr_fast_rowsums), the input execute needs. */
void pr_backward_lse_from_fast(double *lse, const pr_fast_plan_t F);

/* What the plan holds: terms = multisets with |f| ≤ g+1, the numbers of distinct a- and
 * b-marginals and of (a, b)-marginal pairs, the bytes allocated (counted as allocated; not
 * counting F, nor the Toeplitz plan made when F is NULL; the expansion when it is the plan's
 * own), and the transforms the last execute ran. */
typedef struct {
    long terms, a_marginals, b_marginals, ab_pairs;
    long reused_spectra;    /* pairs whose spectrum is the forward plan's */
    long kept_spectra;      /* pairs (of size g+1) whose spectrum the plan made (0: made per execute) */
    long kept_symbols;      /* pairs (of size ≤ g) whose time-domain symbol sum the plan made for dw
                               (0: made per execute) */
    double bytes;
    long transforms;
    long kv_transforms;     /* of which those of the forward plan's K, V half (pr_fast_execute_kv),
                               made on a kept F because its last execute was on other K, V */
    int forward_xhat;       /* 1 when the last execute took a kept forward plan's K, V half as its
                               last execute left it (pr_fast_plan_xhat): its x̂ as Ŷ and its sums'
                               inverses as dQ's, for the sizes <= g, none of it made here */
} pr_backward_info_t;

void pr_backward_info(pr_backward_info_t *info, const pr_backward_plan *plan);

/* Factorised W (RoPE of either layout, or the identity: pr_lowrank_applies): the low-rank path.
 * Rotates Q and K (RoPE), differentiates P(σ q'·k') through symmetric-monomial features of degree ≤ g+1, and maps the
 * gradients back with the rotation's adjoint R_iᵀ (pr_rope_rotate(..., -1)). Causal by prefix
 * and suffix sums. An additive bias opts->beta does not factorise: PR_EINVAL. Arguments as in
 * pr_backward_execute (no dw: W is fixed for RoPE), except that lse may be NULL: the row sums D̃
 * are then recomputed from the same features (pr_lowrank_execute does not return them);
 * PR_EDOMAIN if one is not positive. */
int pr_backward_lowrank(double *dQ, double *dK, double *dV, double *kappa,
                        const double *Q, const double *K, const double *V, const pr_posw_struct *W,
                        const double *O, const double *lse, const double *dO,
                        int n, int d, const pr_attn_opts_t *opts);

/* The same for h query heads on one features table (Q, O, dO, dQ (h, n, d), lse h × n or NULL;
 * K, V (h_kv, n, d), h_kv dividing h: query head i reads kv head i / (h / h_kv)). dK, dV (h_kv,
 * n, d) and kappa (h_kv × n, or NULL) are summed over the query heads sharing a kv head, in head
 * order, as pr_backward_execute_heads sums them: each head's part is bit for bit the one-head
 * call's. PR_EINVAL for bad h, h_kv. */
int pr_backward_lowrank_heads(double *dQ, double *dK, double *dV, double *kappa,
                              const double *Q, const double *K, const double *V, const pr_posw_struct *W,
                              const double *O, const double *lse, const double *dO,
                              int n, int d, int h, int h_kv, const pr_attn_opts_t *opts);

/* Memory (bytes) and work (operations) of the backward alone (pr_backward_plan_fft and execute,
 * or pr_backward_lowrank with lowrank = 1) for W, n, d and the forward's degree g, in double (+Inf
 * past it; pr_fast_needs gives the forward's). bytes is the allocating code's own dry run: exactly
 * what pr_backward_lowrank holds, or what pr_backward_plan_fft with want_dw and no budget holds
 * (info.bytes, with its kept spectra) on a forward plan of FFTW_ESTIMATE's transform length, whose
 * expansion it borrows, with omp_get_max_threads() threads. ops is an estimate. */
void pr_backward_needs(double *bytes, double *ops, const pr_posw_struct *W, int n, int d, int g,
                       int lowrank);

/* The same for a plan of `heads` heads executed on as many (the low-rank path: one head only,
 * +Inf bytes past it). */
void pr_backward_needs_heads(double *bytes, double *ops, const pr_posw_struct *W, int n, int d, int g,
                             int heads, int lowrank);

/* The least an FFT backward plan of `heads` heads holds (dry run): nothing kept (no size-(g+1) pair
 * spectra, no dw symbol sums), as pr_backward_plan_heads makes it when its max_bytes allows no more.
 * What a driver must find room for; +Inf if W does not fit n, d. */
double pr_backward_needs_least(const pr_posw_struct *W, int n, int d, int g, int heads);

/* Claim G3's rounding tolerance (docs/math.md §7; the tests and proofs-check's G3, G4 use it): how
 * far a fast backward's gradient entry may be from the same entry computed exactly on the same
 * P, given `scale`, a bound on the entry's absolute expansion Σ_f |α̂_f ∂u_f t_f v_f| ·
 * Σ_c |x_c(i) y_c(j)| summed over its ≤ n positions (σ ρ ‖·‖∞ P_abs(R) e^{β_max} · 2ν_i V∞ / D̃_i
 * for dQ, pr_check_g3_scales). Derivation, with u = DBL_EPSILON/2: an FFT product errs by at
 * most about u·log2 N of the 2-norm product, itself ≤ √2 × the absolute sum (N ≤ 2n + 2); the
 * frequency-domain sums of `terms` products add terms·u and the reference's n-term sums n·u, each
 * of the scale; the factor 8 covers √2 and the (d+2) column sums. mpert: a relative perturbation
 * of the scores already suffered by the inputs (the low-rank path's rotation: 64·2d(n+4)u·(g+1)
 * max(R, 1), test_rope's angle error amplified by P'_abs / P_abs), 0 for the FFT path:
 *   8u (log2(2n+2) + terms + n) · scale + mpert · scale. */
double pr_backward_g3_tol(double scale, int n, long terms, double mpert);

/* The papers' objective L(X) = ½‖O - E‖²_F with Q = A1·X (A1: n×d, X: d×d): with dO = O - E
 * and dQ from a backward, dL/dX = A1ᵀ dQ (d×d). */
int pr_backward_dx(double *dX, const double *A1, const double *dQ, int n, int d);

#ifdef __cplusplus
}
#endif
#endif
