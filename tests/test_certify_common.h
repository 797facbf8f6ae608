/* test_certify*.c's shared problem setup: a configuration, random inputs, and the problem as
 * pr_certify, pr_dense and pr_hiprec take it. */
#ifndef TEST_CERTIFY_COMMON_H
#define TEST_CERTIFY_COMMON_H

#include <math.h>
#include <stdlib.h>
#include "pr_test.h"
#include "pr_status.h"
#include "pr_rng.h"
#include "pr_dense.h"
#include "pr_npy.h"
#include "pr_certify.h"
#include "pr_rope.h"

typedef struct {
    int n, d, pos, causal, scale;
    double alibi, B;
} cfg_t;

static inline void fill(double *x, size_t len, double B, pr_rng_t rng)
{
    for (size_t t = 0; t < len; t++)
        x[t] = B * (2.0 * pr_rng_uniform(rng) - 1.0);
}

/* a general W: random in [-1, 1] on the RoPE support (pr_posw_init_general), or on every entry scaled
 * by 1/d (dense) */
static inline int random_w(pr_posw_t W, int n, int d, int dense, pr_rng_t rng)
{
    if (!dense)
        return pr_posw_init_general(W, n, d, rng);
    size_t len = (2 * (size_t)n - 1) * d * d;
    double *w3 = malloc(sizeof(double) * len);
    if (!w3)
        return PR_ENOMEM;
    fill(w3, len, 1.0 / d, rng);
    int st = pr_posw_init_dense(W, w3, n, d);
    free(w3);
    return st;
}

static inline void prob_of(pr_certify_problem_t *pb, const cfg_t *c)
{
    pr_certify_problem_default(pb);
    pb->pos = c->pos;
    pb->causal = c->causal;
    pb->scale = c->scale;
    pb->alibi = c->alibi;
}

/* W and options as pr_dense and pr_hiprec take them; layout_bug: the other RoPE layout */
static inline int problem_of(pr_posw_t W, pr_attn_opts_t *o, double *beta, const cfg_t *c, int layout_bug)
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

static inline void to_f32(double *y, const double *x, size_t len)
{
    for (size_t t = 0; t < len; t++)
        y[t] = (double)(float)x[t];
}

/* the candidates of the small-head tests from a double output O: variant 0 rounds it to float32,
 * variant 1 adds noise of 1e-3 */
static inline void candidate_of(double *C, const double *O, size_t len, int variant, pr_rng_t rng)
{
    if (variant == 0)
        to_f32(C, O, len);
    else
        for (size_t t = 0; t < len; t++)
            C[t] = O[t] + 1e-3 * (2.0 * pr_rng_uniform(rng) - 1.0);
}

/* pr_certify_forward (W NULL: RoPE or identity, pb's pos) or pr_certify_forward_posw */
static inline int certify_head(pr_certify_result_t *r, const double *C, const double *Q, const double *K,
                               const double *V, const pr_posw_struct *W, int n, int d, const pr_certify_problem_t *pb,
                               const pr_certify_opts_t *op)
{
    return W ? pr_certify_forward_posw(r, C, Q, K, V, W, n, d, pb, op) : pr_certify_forward(r, C, Q, K, V, n, d, pb, op);
}

/* a float32 kernel's row from its scores s[0..jn) (overwritten): softmax and P·V in float */
static inline void f32_softmax_pv(double *o, float *s, int jn, const double *V, int d)
{
    float mx = -INFINITY, sum = 0.0f;
    for (int j = 0; j < jn; j++)
        mx = s[j] > mx ? s[j] : mx;
    for (int j = 0; j < jn; j++)
        sum += (s[j] = expf(s[j] - mx));
    for (int c = 0; c < d; c++) {
        float t = 0.0f;
        for (int j = 0; j < jn; j++)
            t += s[j] * (float)V[(size_t)j * d + c];
        o[c] = (double)(t / sum);
    }
}

/* a correct float32 kernel's output O: tight, certified at its certified error (+1%) and refuted
 * just below its proved lower bound (-1%); ok gets its enclosure at atol 0 */
static inline void check_deserved(pr_certify_result_t *ok, const double *O, const double *Q, const double *K,
                                  const double *V, const pr_posw_struct *W, int n, int d,
                                  const pr_certify_problem_t *pb, const char *what)
{
    pr_certify_opts_t op;
    pr_certify_opts_default(&op);
    op.dtype = PR_CERTIFY_FLOAT32;
    pr_certify_result_t r;
    PR_CHECK_OK(certify_head(ok, O, Q, K, V, W, n, d, pb, &op));
    PR_CHECK(ok->lower > 0.0 && ok->upper <= ok->lower * (1 + 1e-6), "%s: float32 kernel's error [%.17g, %.17g]",
             what, ok->lower, ok->upper);
    op.atol = ok->upper * 1.01;
    PR_CHECK_OK(certify_head(&r, O, Q, K, V, W, n, d, pb, &op));
    PR_CHECK(r.verdict == 0, "%s: atol %.17g above the certified error: verdict %d", what, op.atol, r.verdict);
    op.atol = ok->lower * 0.99;
    PR_CHECK_OK(certify_head(&r, O, Q, K, V, W, n, d, pb, &op));
    PR_CHECK(r.verdict == 1 && r.witness_row >= 0, "%s: atol %.17g below the proved error: verdict %d", what,
             op.atol, r.verdict);
}

/* O: a float64 forward of the problem, within est_o of the truth (pr_dense_error_est). Its float32-
 * and float16-rounded copies (into C) have errors within est_o of their distance to O, inside the
 * enclosure, within half an ulp; the double pass alone meets the refined enclosure, and a
 * tolerance inside the double pass's enclosure (unknown there) is decided by Arb rows */
static inline void check_rounded(double *C, const double *O, double est_o, const double *Q, const double *K,
                                 const double *V, const pr_posw_struct *W, int n, int d, const pr_certify_problem_t *pb)
{
    size_t nd = (size_t)n * d;
    for (int dt = PR_CERTIFY_FLOAT32; dt <= PR_CERTIFY_FLOAT16; dt++) {
        double mx = 0.0;
        for (size_t t = 0; t < nd; t++) {
            double ul = pr_npy_ulp((pr_npy_dtype_t)dt, O[t]);
            C[t] = dt == PR_CERTIFY_FLOAT32 ? (double)(float)O[t] : nearbyint(O[t] / ul) * ul;
            mx = fmax(mx, fabs(C[t] - O[t]));
        }
        pr_certify_opts_t op;
        pr_certify_opts_default(&op);
        op.dtype = dt;
        pr_certify_result_t r, r0;
        PR_CHECK_OK(certify_head(&r, C, Q, K, V, W, n, d, pb, &op));
        PR_CHECK(mx >= r.lower - 2 * est_o && mx <= r.upper + 2 * est_o && r.upper <= r.lower * (1 + 1e-6),
                 "dtype %d: float64 reference's %.17g (its error <= ~%.3g) outside [%.17g, %.17g]", dt, mx, est_o,
                 r.lower, r.upper);
        PR_CHECK(r.ulps_upper <= 0.5 * (1 + 1e-6) && r.ulps_lower <= r.ulps_upper,
                 "dtype %d: a rounded candidate is within half an ulp: [%.17g, %.17g]", dt, r.ulps_lower,
                 r.ulps_upper);
        op.max_fallback_s = 0.0;
        PR_CHECK_OK(certify_head(&r0, C, Q, K, V, W, n, d, pb, &op));
        PR_CHECK(r0.lower <= r.upper && r.lower <= r0.upper && r0.rows_fallback == 0 && r0.bound_max < 1e-12,
                 "dtype %d: double pass [%.17g, %.17g] (E %g) misses the refined [%.17g, %.17g]", dt, r0.lower,
                 r0.upper, r0.bound_max, r.lower, r.upper);
        /* not the midpoint: row 0 of a causal head has Ô = V_0 exactly, so its true error is the
         * midpoint of its enclosure, which Arb could not tell from such an atol */
        op.atol = r0.lower + 0.3 * (r0.upper - r0.lower);
        PR_CHECK_OK(certify_head(&r0, C, Q, K, V, W, n, d, pb, &op));
        op.max_fallback_s = 60.0;
        PR_CHECK_OK(certify_head(&r, C, Q, K, V, W, n, d, pb, &op));
        PR_CHECK(r0.verdict == 2 && r.verdict != 2 && r.rows_fallback >= 1, "dtype %d: atol %.17g: double pass "
                 "verdict %d, with Arb rows %d (%ld rows)", dt, op.atol, r0.verdict, r.verdict, r.rows_fallback);
    }
}


/* a general-W configuration (test_certify_w, test_certify_wgrad): its attention options (beta: 2n-1
 * doubles when alibi > 0) and its certify problem */
typedef struct {
    int n, d, causal, scale, dense_w;
    double alibi, B;
} wcfg_t;

static inline void opts_of(pr_attn_opts_t *ao, double *beta, const wcfg_t *c)
{
    pr_attn_opts_default(ao, c->d);
    ao->sigma = pr_scale_sigma(c->scale == PR_CERTIFY_SCALE_INV_D ? PR_SCALE_INV_D : PR_SCALE_INV_SQRT_D, c->d);
    ao->causal = c->causal;
    if (c->alibi > 0.0 && !pr_bias_alibi(beta, c->n, c->alibi))
        ao->beta = beta;
}

static inline void wprob_of(pr_certify_problem_t *pb, const wcfg_t *c)
{
    pr_certify_problem_default(pb);
    pb->scale = c->scale;
    pb->causal = c->causal;
    pb->alibi = c->alibi;
}

#endif
