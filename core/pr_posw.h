/* pr_posw: position matrices W_ℓ ∈ R^{d×d}, ℓ = i - j ∈ [-(n-1), n-1] (docs/math.md §1).
 * All W_ℓ share a support S = {(a_k, b_k)}, k < s; entry k is held as the sequence
 * w_k(ℓ) at w[k*(2n-1) + ℓ + n - 1]. */
#ifndef PR_POSW_H
#define PR_POSW_H

#include <stddef.h>
#include "pr_rng.h"
#include "pr_rope.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    PR_POS_ROPE = 0,      /* W_ℓ = R_{-ℓ}, interleaved pairs: factorises */
    PR_POS_ROPE_NEOX,     /* the same in the neox layout */
    PR_POS_GENERAL,       /* random entries in [-1,1] per offset on the RoPE block support */
    PR_POS_IDENTITY,      /* W_ℓ = I: plain attention */
    PR_POS_CUSTOM         /* read from a (2n-1, d, d) array */
} pr_pos_kind_t;

typedef struct {
    int n, d, s;
    int *a, *b;           /* support pairs, s each */
    double *w;            /* s × (2n-1) */
    pr_pos_kind_t kind;
    double rope_base;     /* for the RoPE kinds */
} pr_posw_struct;
typedef pr_posw_struct pr_posw_t[1];

/* index of offset ℓ in a sequence */
static inline long pr_posw_index(int n, long l) { return l + n - 1; }
static inline double pr_posw_at(const pr_posw_struct *W, int k, long l)
{
    return W->w[(size_t)k * (2 * (size_t)W->n - 1) + (size_t)(l + W->n - 1)];
}
static inline double *pr_posw_seq(const pr_posw_struct *W, int k)
{
    return W->w + (size_t)k * (2 * (size_t)W->n - 1);
}

/* Allocates an empty support of size s (all sequences zero, kind custom). */
int pr_posw_init(pr_posw_t W, int n, int d, int s);
void pr_posw_clear(pr_posw_t W);
/* Generators: each calls init itself. */
int pr_posw_init_rope(pr_posw_t W, int n, int d, double base, pr_rope_layout_t layout);
int pr_posw_init_general(pr_posw_t W, int n, int d, pr_rng_t rng);
int pr_posw_init_identity(pr_posw_t W, int n, int d);
/* From a dense (2n-1, d, d) array indexed [ℓ+n-1][a][b]; S = entries nonzero at some ℓ. */
int pr_posw_init_dense(pr_posw_t W, const double *w3, int n, int d);
/* Into a dense (2n-1, d, d) array. */
void pr_posw_to_dense(double *w3, const pr_posw_t W);
/* max_ℓ Σ_k |w_k(ℓ)|: the factor of R in docs/math.md §3 */
double pr_posw_max_rowsum(const pr_posw_t W);
/* 1 for the RoPE kinds, whose scores factorise as (R_i Q_i)·(R_j K_j) */
int pr_posw_is_factorised(const pr_posw_t W);
const char *pr_pos_kind_name(pr_pos_kind_t kind);

#ifdef __cplusplus
}
#endif
#endif
