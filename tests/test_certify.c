/* pr_certify against independent oracles: the Arb reference pr_hiprec_certify at 256 bits on
 * small heads (the enclosures must intersect: both contain the truth), float64 references where
 * the candidate's error is far above float64's, known-bug kernels refuted, a float32 kernel
 * certified at the tolerance its error deserves and refuted just below it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pr_test.h"
#include "pr_status.h"
#include "pr_rng.h"
#include "pr_dense.h"
#include "pr_hiprec.h"
#include "pr_certify.h"

typedef struct {
    int n, d, pos, causal, scale;
    double alibi, B;
} cfg_t;

static void fill(double *x, size_t len, double B, pr_rng_t rng)
{
    for (size_t t = 0; t < len; t++)
        x[t] = B * (2.0 * pr_rng_uniform(rng) - 1.0);
}

static void to_f32(double *y, const double *x, size_t len)
{
    for (size_t t = 0; t < len; t++)
        y[t] = (double)(float)x[t];
}

static void prob_of(pr_certify_problem_t *pb, const cfg_t *c)
{
    pr_certify_problem_default(pb);
    pb->pos = c->pos;
    pb->causal = c->causal;
    pb->scale = c->scale;
    pb->alibi = c->alibi;
}

/* the dense double forward of the configuration (libm's RoPE and exp): a candidate */
static int dense_of(double *O, const double *Q, const double *K, const double *V, const cfg_t *c, double *beta)
{
    pr_posw_t W;
    int st = c->pos == PR_CERTIFY_POS_IDENTITY ? pr_posw_init_identity(W, c->n, c->d)
             : pr_posw_init_rope(W, c->n, c->d, PR_ROPE_BASE_DEFAULT,
                                 c->pos == PR_CERTIFY_POS_ROPE ? PR_ROPE_INTERLEAVED : PR_ROPE_NEOX);
    if (st)
        return st;
    pr_attn_opts_t o;
    pr_attn_opts_default(&o, c->d);
    o.sigma = pr_scale_sigma(c->scale == PR_CERTIFY_SCALE_INV_D ? PR_SCALE_INV_D : PR_SCALE_INV_SQRT_D, c->d);
    o.causal = c->causal;
    if (c->alibi > 0.0) {
        pr_bias_alibi(beta, c->n, c->alibi);
        o.beta = beta;
    }
    st = pr_dense_forward(O, NULL, Q, K, V, W, c->n, c->d, &o);
    pr_posw_clear(W);
    return st;
}

/* max |cand - true| enclosed by pr_hiprec_certify at 256 bits (real-number RoPE, σ, ALiBi) */
static int hiprec_err(double *lo, double *hi, const double *cand, const double *Q, const double *K,
                      const double *V, const cfg_t *c, double *beta)
{
    pr_posw_t W;
    int st = c->pos == PR_CERTIFY_POS_IDENTITY ? pr_posw_init_identity(W, c->n, c->d)
             : pr_posw_init_rope(W, c->n, c->d, PR_ROPE_BASE_DEFAULT,
                                 c->pos == PR_CERTIFY_POS_ROPE ? PR_ROPE_INTERLEAVED : PR_ROPE_NEOX);
    if (st)
        return st;
    pr_attn_opts_t o;
    pr_attn_opts_default(&o, c->d);
    pr_scale_t sc = c->scale == PR_CERTIFY_SCALE_INV_D ? PR_SCALE_INV_D : PR_SCALE_INV_SQRT_D;
    o.sigma = pr_scale_sigma(sc, c->d);
    o.causal = c->causal;
    if (c->alibi > 0.0) {
        pr_bias_alibi(beta, c->n, c->alibi);
        o.beta = beta;
    }
    pr_hiprec_def_t def;
    pr_hiprec_def_real(&def, sc, c->alibi);
    arb_t e1, e2;
    arb_init(e1);
    arb_init(e2);
    st = pr_hiprec_certify(e1, e2, cand, NULL, NULL, NULL, NULL, Q, K, V, W, NULL, c->n, c->d, &o, &def, 256);
    *lo = pr_hiprec_lbound_d(e1);
    *hi = pr_hiprec_ubound_d(e1);
    arb_clear(e1);
    arb_clear(e2);
    pr_posw_clear(W);
    return st;
}

/* small heads: our enclosure meets the Arb one, both tight for a float32 candidate */
static void test_vs_hiprec(pr_rng_t rng)
{
    const cfg_t cfgs[] = {
        {17, 8, PR_CERTIFY_POS_ROPE, 0, PR_CERTIFY_SCALE_INV_D, 0.0, 1.0},
        {40, 16, PR_CERTIFY_POS_ROPE_NEOX, 1, PR_CERTIFY_SCALE_INV_SQRT_D, 0.0, 4.0},
        {33, 6, PR_CERTIFY_POS_IDENTITY, 0, PR_CERTIFY_SCALE_INV_SQRT_D, 0.25, 2.0},
        {64, 32, PR_CERTIFY_POS_ROPE, 1, PR_CERTIFY_SCALE_INV_D, 0.5, 4.0},
        {5, 2, PR_CERTIFY_POS_ROPE, 0, PR_CERTIFY_SCALE_INV_SQRT_D, 0.0, 8.0},
    };
    for (size_t k = 0; k < sizeof(cfgs) / sizeof(cfgs[0]); k++) {
        const cfg_t *c = cfgs + k;
        size_t nd = (size_t)c->n * c->d;
        double *Q = malloc(sizeof(double) * nd * 5), *K = Q + nd, *V = K + nd, *O = V + nd, *C = O + nd;
        double *beta = malloc(sizeof(double) * 2 * c->n);
        fill(Q, 3 * nd, c->B, rng);
        PR_CHECK_OK(dense_of(O, Q, K, V, c, beta));
        for (int variant = 0; variant < 2; variant++) {
            if (variant == 0)
                to_f32(C, O, nd);
            else
                for (size_t t = 0; t < nd; t++)
                    C[t] = O[t] + 1e-3 * (2.0 * pr_rng_uniform(rng) - 1.0);
            pr_certify_problem_t pb;
            pr_certify_opts_t op;
            prob_of(&pb, c);
            pr_certify_opts_default(&op);
            op.dtype = PR_CERTIFY_FLOAT32;
            pr_certify_result_t r;
            double hl = NAN, hh = NAN;
            PR_CHECK_OK(pr_certify_forward(&r, C, Q, K, V, c->n, c->d, &pb, &op));
            PR_CHECK_OK(hiprec_err(&hl, &hh, C, Q, K, V, c, beta));
            if (getenv("CERT_DEBUG"))
                printf("cfg %zu v %d: ours [%.17g, %.17g] arb [%.17g, %.17g] fallback %ld E %g\n", k, variant, r.lower,
                       r.upper, hl, hh, r.rows_fallback, r.bound_max);
            PR_CHECK(r.lower <= hh && hl <= r.upper,
                     "config %zu variant %d (n %d d %d pos %d causal %d scale %d alibi %g B %g): ours [%.17g, %.17g] "
                     "misses Arb's [%.17g, %.17g]", k, variant, c->n, c->d, c->pos, c->causal, c->scale, c->alibi,
                     c->B, r.lower, r.upper, hl, hh);
            /* the double pass alone (no Arb row) must contain the truth too */
            pr_certify_result_t r0;
            op.max_fallback_s = 0.0;
            PR_CHECK_OK(pr_certify_forward(&r0, C, Q, K, V, c->n, c->d, &pb, &op));
            PR_CHECK(r0.rows_fallback == 0 && r0.lower <= hh && hl <= r0.upper && r0.upper - r0.lower < 1e-11,
                     "config %zu variant %d: double pass [%.17g, %.17g] (%ld Arb rows) vs Arb's [%.17g, %.17g]", k,
                     variant, r0.lower, r0.upper, r0.rows_fallback, hl, hh);
            PR_CHECK(r.upper <= r.lower * (1 + 1e-6), "config %zu variant %d: [%.17g, %.17g] not tight", k,
                     variant, r.lower, r.upper);
            PR_CHECK(r.lower > 0.0 && r.ulps_upper >= r.ulps_lower && r.verdict == 1 && r.witness_row >= 0,
                     "config %zu variant %d: atol 0 must be refuted at a witness (verdict %d)", k, variant,
                     r.verdict);
        }
        free(Q);
        free(beta);
    }
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_certify", 1515));
    test_vs_hiprec(rng);
    return pr_test_finish("test_certify");
}
