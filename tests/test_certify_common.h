/* test_certify*.c's shared problem setup: a configuration, random inputs, and the problem as
 * pr_certify, pr_dense and pr_hiprec take it. */
#ifndef TEST_CERTIFY_COMMON_H
#define TEST_CERTIFY_COMMON_H

#include "pr_rng.h"
#include "pr_dense.h"
#include "pr_certify.h"
#include "pr_rope.h"

typedef struct {
    int n, d, pos, causal, scale;
    double alibi, B;
} cfg_t;

static void fill(double *x, size_t len, double B, pr_rng_t rng)
{
    for (size_t t = 0; t < len; t++)
        x[t] = B * (2.0 * pr_rng_uniform(rng) - 1.0);
}

static void prob_of(pr_certify_problem_t *pb, const cfg_t *c)
{
    pr_certify_problem_default(pb);
    pb->pos = c->pos;
    pb->causal = c->causal;
    pb->scale = c->scale;
    pb->alibi = c->alibi;
}

/* W and options as pr_dense and pr_hiprec take them; layout_bug: the other RoPE layout */
static int problem_of(pr_posw_t W, pr_attn_opts_t *o, double *beta, const cfg_t *c, int layout_bug)
{
    pr_rope_layout_t lay = c->pos == PR_CERTIFY_POS_ROPE ? PR_ROPE_INTERLEAVED : PR_ROPE_NEOX;
    if (layout_bug)
        lay = lay == PR_ROPE_NEOX ? PR_ROPE_INTERLEAVED : PR_ROPE_NEOX;
    int st = c->pos == PR_CERTIFY_POS_IDENTITY ? pr_posw_init_identity(W, c->n, c->d)
                                               : pr_posw_init_rope(W, c->n, c->d, PR_ROPE_BASE_DEFAULT, lay);
    pr_attn_opts_default(o, c->d);
    o->sigma = pr_scale_sigma(c->scale == PR_CERTIFY_SCALE_INV_D ? PR_SCALE_INV_D : PR_SCALE_INV_SQRT_D, c->d);
    o->causal = c->causal;
    if (!st && c->alibi > 0.0) {
        st = pr_bias_alibi(beta, c->n, c->alibi);
        o->beta = beta;
    }
    return st;
}

#endif
