/* pr_certify: certified error of anyone's attention output against the real-number attention
 * of its inputs (issue 15; derivation and lemma ids L1-L20 in docs/certify.md).
 *
 * For one head, pr_certify_forward encloses max_{i,c} |O_cand[i,c] - O_true[i,c]| in
 * [lower, upper] and decides |cand - true| <= atol + rtol·|true| at every element. O_true is the
 * exact attention of the given doubles (math.md §1) with RoPE's angles, σ and ALiBi's bias the
 * real numbers of their definitions: the enclosure holds whatever the machine's libm does.
 * Method: every row in double with a rigorous a-posteriori bound E per element (cos/sin from MPFR,
 * exp by our own reduction and an Arb-certified polynomial, every rounding bounded); rows where E
 * is too wide to decide the verdict or to make [lower, upper] tight are recomputed in Arb ball
 * arithmetic (the fallback; counted in rows_fallback).
 *
 * ctypes-friendly: plain structs of doubles, longs and ints, arrays of doubles that the caller
 * widened exactly from the candidate's dtype, row-major. Outputs first, then inputs, then options. */
#ifndef PR_CERTIFY_H
#define PR_CERTIFY_H

#include "pr_posw.h"

#ifdef __cplusplus
extern "C" {
#endif

/* the candidate's own dtype: its ulp is how the error is also reported; the values of
 * pr_npy_dtype_t (pr_npy_ulp and pr_npy_dtype_name take them) */
enum {
    PR_CERTIFY_FLOAT64 = 0,
    PR_CERTIFY_FLOAT32 = 1,
    PR_CERTIFY_FLOAT16 = 2,
    PR_CERTIFY_BFLOAT16 = 3
};

/* position encoding applied to Q and K inside the problem */
enum {
    PR_CERTIFY_POS_ROPE = 0,       /* RoPE, interleaved pairs (2k, 2k+1) (math.md §2) */
    PR_CERTIFY_POS_ROPE_NEOX = 1,  /* RoPE, rotate-half pairs (k, k + d/2) */
    PR_CERTIFY_POS_IDENTITY = 2    /* none: Q, K used as given (already rotated, or no RoPE) */
};

/* score scale σ */
enum {
    PR_CERTIFY_SCALE_INV_D = 0,      /* σ = 1/d (the real number) */
    PR_CERTIFY_SCALE_INV_SQRT_D = 1, /* σ = 1/√d (the real number) */
    PR_CERTIFY_SCALE_GIVEN = 2       /* σ = the double `sigma`, exact */
};

/* the problem O_true solves: M_ij = σ (R_i Q_i)·(R_j K_j) + β_{i-j}, O = softmax_j(M) V */
typedef struct {
    int pos;             /* PR_CERTIFY_POS_* */
    double rope_base;    /* θ_k = base^{-2k/d}, base > 1 (the real number of the double) */
    int scale;           /* PR_CERTIFY_SCALE_* */
    double sigma;        /* used with PR_CERTIFY_SCALE_GIVEN: finite, > 0 */
    int causal;          /* 1: β_ℓ = -∞ for ℓ = i - j < 0 */
    double alibi;        /* ALiBi slope m >= 0 (0: none): β_ℓ = -m|ℓ|, m the exact double */
} pr_certify_problem_t;

/* RoPE interleaved, base 10000, σ = 1/d, no mask, no bias. (Only position differences enter
 * RoPE's scores, so an absolute offset of the positions changes nothing.) */
void pr_certify_problem_default(pr_certify_problem_t *prob);

typedef struct {
    double atol, rtol;   /* the tolerance |cand - true| <= atol + rtol·|true| (both >= 0, finite) */
    int dtype;           /* PR_CERTIFY_* dtype of the candidate, for ulps */
    double max_fallback_s; /* budget of the Arb fallback in seconds, < 0: default (60): per head for the
                              output's and dQ's rows (wall clock), per kv group for dK's and dV's key
                              rows (CPU, docs/certify.md L20); what is left undecided past it leaves the
                              verdict unknown (rows_open) */
    long prec;           /* Arb precision of the fallback in bits; <= 0: default (128) */
} pr_certify_opts_t;

/* atol = rtol = 0 (the verdict is then certified only for an exact candidate), float64,
 * default budget and precision */
void pr_certify_opts_default(pr_certify_opts_t *opts);

/* Verdicts as pr_cert_verdict_t (exact/pr_certexp.h): 0 certified, 1 refuted, 2 unknown. */
typedef struct {
    double lower, upper;   /* lower <= max |cand - true| <= upper (proved; upper rounded up) */
    long worst_row, worst_col; /* the element whose proved lower bound is `lower` */
    double ulps_lower, ulps_upper; /* the worst element's |cand - true| in ulps of its candidate
                                      value in dtype (subnormal ulp below the normal range);
                                      NaN when that value is not finite */
    int verdict;           /* of |cand - true| <= atol + rtol·|true| at every element */
    long witness_row, witness_col; /* refuted: an element proved out of tolerance; else -1 */
    long rows;             /* rows of this head */
    long rows_fallback;    /* rows recomputed in Arb (dK, dV: key rows j, the columns j of P, L20) */
    double bound_max;      /* the largest double-pass bound E of an element (diagnostic) */
    double time_s;         /* wall time of the call */
    long rows_open;        /* rows with an element left open (unknown) */
} pr_certify_result_t;

/* One head. Q, K, V, O_cand: n×d row-major doubles (exact values of the caller's dtypes).
 * d even for RoPE. Statuses: PR_EINVAL (bad problem/options, n or d < 1), PR_EODD,
 * PR_ENONFINITE (a non-finite input; a non-finite candidate entry is not an error: it is
 * refuted with upper = +Inf), PR_ENOMEM, PR_EDOMAIN (scores beyond double's range). */
int pr_certify_forward(pr_certify_result_t *res, const double *O_cand, const double *Q,
                       const double *K, const double *V, int n, int d,
                       const pr_certify_problem_t *prob, const pr_certify_opts_t *opts);

/* batch × heads heads, all (batch, heads, n, d) contiguous; K, V are (batch, kv_heads, n, d)
 * with heads % kv_heads == 0 (grouped-query attention: head h reads kv head h / (heads/kv_heads)).
 * res[b*heads + h]; stops at the first failing status. PR_ESHAPE if heads % kv_heads != 0. */
int pr_certify_forward_heads(pr_certify_result_t *res, const double *O_cand, const double *Q,
                             const double *K, const double *V, int batch, int heads,
                             int kv_heads, int n, int d, const pr_certify_problem_t *prob,
                             const pr_certify_opts_t *opts);

/* A general W (attn's --w): w3 is (2n-1, d, d) with W_ℓ at w3 + (ℓ+n-1)·d·d, its doubles exact
 * (math.md §1); prob->pos and rope_base are not used, σ and ALiBi are as above. The same double
 * pass and Arb rows as pr_certify_forward at any n, with the scores' bound of docs/certify.md L13
 * and Arb rows L14. PR_ENONFINITE for a non-finite entry of w3. */
int pr_certify_forward_w(pr_certify_result_t *res, const double *O_cand, const double *Q,
                         const double *K, const double *V, const double *w3, int n, int d,
                         const pr_certify_problem_t *prob, const pr_certify_opts_t *opts);

/* The same with W in its support form (pr_posw.h: n and d as given, any kind; a RoPE kind is then
 * taken as the doubles of its table, not as the real rotation). PR_ESHAPE if W's n, d differ. */
int pr_certify_forward_posw(pr_certify_result_t *res, const double *O_cand, const double *Q,
                            const double *K, const double *V, const pr_posw_struct *W, int n, int d,
                            const pr_certify_problem_t *prob, const pr_certify_opts_t *opts);

/* Every head of batch × heads with one general W (w3 as pr_certify_forward_w), grouped-query as
 * pr_certify_forward_heads: res[b*heads + h]. */
int pr_certify_forward_heads_w(pr_certify_result_t *res, const double *O_cand, const double *Q,
                               const double *K, const double *V, const double *w3, int batch, int heads,
                               int kv_heads, int n, int d, const pr_certify_problem_t *prob,
                               const pr_certify_opts_t *opts);

/* Gradients for the upstream dO (n×d): res[0], res[1], res[2] for dQ, dK, dV (any candidate
 * may be NULL: its result is left with verdict unknown and rows 0). A double pass with a rigorous
 * bound per element at any n (docs/certify.md L8-L12); where it leaves a verdict unknown, dQ's rows in
 * Arb (L7), then the whole head (kv group) again in Arb if n <= PR_CERTIFY_GRAD_MAX_N and max_fallback_s
 * != 0 (rows_fallback = n), else dK's and dV's open key rows column by column in Arb (L20; rows_fallback:
 * the key rows), within max_fallback_s; rows_open counts the rows left undecided. */
#define PR_CERTIFY_GRAD_MAX_N 512
int pr_certify_backward(pr_certify_result_t res[3], const double *dQ_cand, const double *dK_cand,
                        const double *dV_cand, const double *Q, const double *K, const double *V,
                        const double *dO, int n, int d, const pr_certify_problem_t *prob,
                        const pr_certify_opts_t *opts);

/* Batched as pr_certify_forward_heads: res[3*(b*heads + h) + t]; with GQA the true dK, dV of a kv
 * head sum over its query heads, so the dK, dV results are those of kv heads, stored at the
 * group's first query head (the others' dK, dV results have rows 0). */
int pr_certify_backward_heads(pr_certify_result_t *res, const double *dQ_cand,
                              const double *dK_cand, const double *dV_cand, const double *Q,
                              const double *K, const double *V, const double *dO, int batch,
                              int heads, int kv_heads, int n, int d,
                              const pr_certify_problem_t *prob, const pr_certify_opts_t *opts);

/* Gradients with a general W (W in its support form as pr_certify_forward_posw; NULL: prob->pos), results
 * as pr_certify_backward_heads: dQ, dK, dV (dw: pr_certify_backward_dw) for the upstream dO at any n, the double pass with
 * the scores of docs/certify.md L13 and the sums over W's support of L15; dQ's open rows in Arb (L16)
 * within the budget; a kv group still open again in Arb if n <= PR_CERTIFY_GRAD_MAX_N and n²·s·g <= 2^25
 * (s = |S|, g query heads a group), else its open key rows by L20. PR_ESHAPE if W's n, d differ; PR_ENONFINITE for a non-finite W. */
int pr_certify_backward_heads_posw(pr_certify_result_t *res, const double *dQ_cand,
                                   const double *dK_cand, const double *dV_cand, const double *Q,
                                   const double *K, const double *V, const double *dO,
                                   const pr_posw_struct *W, int batch, int heads, int kv_heads, int n,
                                   int d, const pr_certify_problem_t *prob, const pr_certify_opts_t *opts);

/* dw too, for one kv group (heads query heads on one K, V, all sharing W): res[3h + t] as
 * pr_certify_backward_heads, and res[3·heads] for dw_cand (W->s × (2n-1), dw_k(ℓ) at k(2n-1) + ℓ + n - 1:
 * pr_dense_backward's layout, W's support only) against the true Σ_heads σ Σ_{i-j=ℓ} dS_ij Q_{i,a_k} K_{j,b_k}
 * (docs/certify.md L17; in double only: an element the bound cannot decide stays unknown). */
int pr_certify_backward_dw(pr_certify_result_t *res, const double *dQ_cand, const double *dK_cand,
                           const double *dV_cand, const double *dw_cand, const double *Q, const double *K,
                           const double *V, const double *dO, const pr_posw_struct *W, int heads, int n,
                           int d, const pr_certify_problem_t *prob, const pr_certify_opts_t *opts);

/* The same with W as w3, (2n-1, d, d) (pr_certify_forward_w's). */
int pr_certify_backward_heads_w(pr_certify_result_t *res, const double *dQ_cand, const double *dK_cand,
                                const double *dV_cand, const double *Q, const double *K, const double *V,
                                const double *dO, const double *w3, int batch, int heads, int kv_heads,
                                int n, int d, const pr_certify_problem_t *prob,
                                const pr_certify_opts_t *opts);

#ifdef __cplusplus
}
#endif
#endif
