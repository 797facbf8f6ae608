/* pr_flat: attention over a batch of heads with scalar options, for callers through a foreign
 * function interface (the Python module's ctypes, python/polyrope): flat arrays of doubles and
 * plain ints, no structs to mirror. The work is the library's own: the dense reference head by
 * head, the fast paths every head on one plan (pr_control_forward_heads). */
#ifndef PR_FLAT_H
#define PR_FLAT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    PR_FLAT_EXACT = 0,   /* the dense reference (pr_dense_forward) */
    PR_FLAT_FFT = 1,     /* the FFT path for target eps (pr_control_forward_heads) */
    PR_FLAT_LOWRANK = 2  /* the feature-map path for target eps (pr_control_forward_heads, lowrank) */
} pr_flat_algo_t;

/* O (b, h, n, d) = attention of every query head, C order: Q is (b, h, n, d), K and V are
 * (b, h_kv, n, d) with h_kv dividing h (grouped-query: query head hi reads kv head
 * hi / (h / h_kv)).
 *   pos: a pr_pos_kind_t, PR_POS_ROPE, PR_POS_ROPE_NEOX or PR_POS_IDENTITY, or PR_POS_CUSTOM
 *        with w a (2n-1, d, d) array indexed by ℓ+n-1 (as attn --w; w is ignored otherwise);
 *   rope_base > 1 (RoPE kinds); sigma the score scale (finite, > 0; pr_scale_sigma gives 1/d and
 *   1/√d as attn does); causal 0 or 1; alibi a slope >= 0 (0: none);
 *   algo a pr_flat_algo_t, eps > 0 the fast paths' target on max|Õ - O| (ignored by exact).
 * The fast paths choose P once for the b·h heads (for the worst head's data, so that the target
 * holds for each) and run them all on one plan. bound: NULL or b·h doubles, each head's a-priori
 * bound under that P (NAN for exact; a double estimate, docs/verdicts.md). msg: NULL or msg_len
 * bytes for a one-line reason when the status is not PR_OK (argument errors say which argument,
 * a head's data its (bi, hi)). No partial result: O is left untouched when
 * the arguments are refused, and set to all zeros when the work itself fails. */
int pr_flat_attention(double *O, double *bound, char *msg, size_t msg_len,
                      const double *Q, const double *K, const double *V, const double *w,
                      long b, long h, long h_kv, long n, long d,
                      int pos, double rope_base, double sigma, int causal, double alibi,
                      int algo, double eps);

#ifdef __cplusplus
}
#endif
#endif
