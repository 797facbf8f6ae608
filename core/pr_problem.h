/* pr_problem: the one seeded problem generator of polyrope attn, the sweep presets and
 * proofs-check, so that one seed gives one instance everywhere (docs/cli.md, "Generated
 * inputs"). From a pr_rng stream, in this order: Q, K, V uniform in [-B, B), then W of the
 * chosen kind (a general W draws its entries), then dO uniform in [-1, 1) when asked for.
 * A caller that needs less, or draws more after it, still sees the same Q, K, V and W. */
#ifndef PR_PROBLEM_H
#define PR_PROBLEM_H

#include "pr_attn.h"
#include "pr_posw.h"
#include "pr_rng.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int n, d;
    double B;                 /* Q, K, V were drawn in [-B, B) */
    double *Q, *K, *V;        /* n×d each, row-major */
    double *dO;               /* n×d, or NULL without PR_PROBLEM_DO */
    double *beta;             /* 2n-1 ALiBi biases, or NULL (pr_problem_alibi) */
    pr_posw_t W;              /* empty for PR_POS_CUSTOM: the caller fills it */
    pr_attn_opts_t opts;      /* σ = 1/d, no mask, no bias; opts.beta = beta */
} pr_problem_struct;
typedef pr_problem_struct pr_problem_t[1];

/* pr_problem_generate's flags */
enum {
    PR_PROBLEM_DO = 1         /* also draw the upstream gradient dO (last) */
};

void pr_problem_init(pr_problem_t P);
void pr_problem_clear(pr_problem_t P);

/* Draws the problem of size n×d (n, d >= 1; d even for the RoPE and general kinds) from rng,
 * which it advances. rope_base: the RoPE kinds' angle base (> 1). Whatever P held is cleared
 * first; on failure P is left empty. */
int pr_problem_generate(pr_problem_t P, pr_rng_t rng, int n, int d, double B, pr_pos_kind_t kind,
                        double rope_base, unsigned flags);

/* The ALiBi bias β_ℓ = -slope·|ℓ| (slope >= 0) into P->beta and P->opts.beta. */
int pr_problem_alibi(pr_problem_t P, double slope);

/* The kind named rope, rope-neox, general or identity (pr_pos_kind_name's names); PR_EINVAL
 * for any other name. */
int pr_problem_kind_parse(pr_pos_kind_t *kind, const char *name);

#ifdef __cplusplus
}
#endif
#endif
