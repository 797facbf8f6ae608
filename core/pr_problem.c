#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_problem.h"

void pr_problem_init(pr_problem_t P)
{
    memset(P, 0, sizeof *P);
}

void pr_problem_clear(pr_problem_t P)
{
    free(P->Q);
    free(P->K);
    free(P->V);
    free(P->dO);
    free(P->beta);
    pr_posw_clear(P->W);
    memset(P, 0, sizeof *P);
}

static int make_w(pr_problem_t P, pr_rng_t rng, pr_pos_kind_t kind, double rope_base)
{
    switch (kind) {
    case PR_POS_ROPE: return pr_posw_init_rope(P->W, P->n, P->d, rope_base, PR_ROPE_INTERLEAVED);
    case PR_POS_ROPE_NEOX: return pr_posw_init_rope(P->W, P->n, P->d, rope_base, PR_ROPE_NEOX);
    case PR_POS_GENERAL: return pr_posw_init_general(P->W, P->n, P->d, rng);
    case PR_POS_IDENTITY: return pr_posw_init_identity(P->W, P->n, P->d);
    case PR_POS_CUSTOM: return PR_OK;
    default: return PR_EINVAL;
    }
}

int pr_problem_generate(pr_problem_t P, pr_rng_t rng, int n, int d, double B, pr_pos_kind_t kind,
                        double rope_base, unsigned flags)
{
    pr_problem_clear(P);
    size_t nd;
    if (n < 1 || d < 1 || !(B >= 0.0) || !isfinite(B))
        return PR_EINVAL;
    if (pr_size_mul(&nd, (size_t)n, (size_t)d) || nd > SIZE_MAX / sizeof(double) || nd > (size_t)LONG_MAX)
        return PR_ESIZE;
    P->n = n;
    P->d = d;
    P->B = B;
    P->Q = malloc(sizeof(double) * nd);
    P->K = malloc(sizeof(double) * nd);
    P->V = malloc(sizeof(double) * nd);
    if (flags & PR_PROBLEM_DO)
        P->dO = malloc(sizeof(double) * nd);
    if (!P->Q || !P->K || !P->V || ((flags & PR_PROBLEM_DO) && !P->dO)) {
        pr_problem_clear(P);
        return PR_ENOMEM;
    }
    /* the order is the contract (pr_problem.h): Q, K, V, W, dO */
    pr_rng_fill(P->Q, (long)nd, B, rng);
    pr_rng_fill(P->K, (long)nd, B, rng);
    pr_rng_fill(P->V, (long)nd, B, rng);
    int st = make_w(P, rng, kind, rope_base);
    if (st) {
        pr_problem_clear(P);
        return st;
    }
    if (P->dO)
        pr_rng_fill(P->dO, (long)nd, 1.0, rng);
    pr_attn_opts_default(&P->opts, d);
    return PR_OK;
}

int pr_problem_alibi(pr_problem_t P, double slope)
{
    if (P->n < 1)
        return PR_EINVAL;
    double *beta = P->beta ? P->beta : malloc(sizeof(double) * (2 * (size_t)P->n - 1));
    if (!beta)
        return PR_ENOMEM;
    P->beta = beta;
    int st = pr_bias_alibi(beta, P->n, slope);
    P->opts.beta = st ? NULL : beta;
    return st;
}

int pr_problem_kind_parse(pr_pos_kind_t *kind, const char *name)
{
    static const pr_pos_kind_t kinds[] = {PR_POS_ROPE, PR_POS_ROPE_NEOX, PR_POS_GENERAL, PR_POS_IDENTITY};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(name, pr_pos_kind_name(kinds[i]))) {
            *kind = kinds[i];
            return PR_OK;
        }
    return PR_EINVAL;
}
