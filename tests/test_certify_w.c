/* pr_certify with a general W (docs/certify.md L13, L14) against independent oracles: the Arb
 * reference pr_hiprec_certify at 256 bits on small heads (every branch that can say certified:
 * the double pass alone, with its Arb rows, Arb rows only, Arb rows at the lowest precision), the
 * float64 dense forward at n = 1024 for float32 and float16 candidates, W = I against --pos
 * identity's engine, known-bug kernels refuted and a correct float32 kernel certified at the
 * tolerance its error deserves and refuted just below it. */
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
#include "pr_npy.h"
#include "test_certify_common.h"


static int make_w(pr_posw_t W, const wcfg_t *c, pr_rng_t rng) { return random_w(W, c->n, c->d, c->dense_w, rng); }


/* max |cand - true| enclosed by pr_hiprec_certify at 256 bits (W's doubles, σ and ALiBi real) */
static int hiprec_err(double *lo, double *hi, const double *cand, const double *Q, const double *K,
                      const double *V, const pr_posw_t W, const wcfg_t *c, double *beta)
{
    pr_attn_opts_t ao;
    opts_of(&ao, beta, c);
    pr_hiprec_def_t def;
    pr_hiprec_def_real(&def, c->scale == PR_CERTIFY_SCALE_INV_D ? PR_SCALE_INV_D : PR_SCALE_INV_SQRT_D, c->alibi);
    def.rope = 0;
    arb_t e1, e2;
    arb_init(e1);
    arb_init(e2);
    int st = pr_hiprec_certify(e1, e2, cand, NULL, NULL, NULL, NULL, Q, K, V, W, NULL, c->n, c->d, &ao, &def, 256);
    *lo = pr_hiprec_lbound_d(e1);
    *hi = pr_hiprec_ubound_d(e1);
    arb_clear(e1);
    arb_clear(e2);
    return st;
}

/* small heads: the double pass alone, with Arb rows, and the Arb rows at 64 bits all meet the
 * 256-bit Arb enclosure; the w3 and support forms agree */
static void test_vs_hiprec(pr_rng_t rng)
{
    const wcfg_t cfgs[] = {
        {17, 8, 0, PR_CERTIFY_SCALE_INV_D, 0, 0.0, 1.0},
        {40, 6, 1, PR_CERTIFY_SCALE_INV_SQRT_D, 0, 0.1, 3.0},  /* 0.1·|ℓ| not a double: a real bias */
        {33, 4, 0, PR_CERTIFY_SCALE_INV_SQRT_D, 1, 0.25, 2.0},
        {64, 8, 1, PR_CERTIFY_SCALE_INV_D, 1, 0.0, 4.0},
        {1, 2, 0, PR_CERTIFY_SCALE_INV_D, 0, 0.0, 1.0},
        {5, 3, 1, PR_CERTIFY_SCALE_INV_SQRT_D, 1, 0.5, 8.0},   /* odd d: no RoPE needed */
    };
    for (size_t k = 0; k < sizeof(cfgs) / sizeof(cfgs[0]); k++) {
        const wcfg_t *c = cfgs + k;
        size_t nd = (size_t)c->n * c->d, L = 2 * (size_t)c->n - 1;
        double *Q = malloc(sizeof(double) * (nd * 5 + 2 * L + L * c->d * c->d)), *K = Q + nd, *V = K + nd,
               *O = V + nd, *C = O + nd, *beta = C + nd, *w3 = beta + 2 * L;
        fill(Q, 3 * nd, c->B, rng);
        pr_posw_t W;
        pr_attn_opts_t ao;
        PR_CHECK_OK(make_w(W, c, rng));
        pr_posw_to_dense(w3, W);
        opts_of(&ao, beta, c);
        PR_CHECK_OK(pr_dense_forward(O, NULL, Q, K, V, W, c->n, c->d, &ao));
        for (int variant = 0; variant < 2; variant++) {
            candidate_of(C, O, nd, variant, rng);
            pr_certify_problem_t pb;
            pr_certify_opts_t op;
            wprob_of(&pb, c);
            pr_certify_opts_default(&op);
            op.dtype = PR_CERTIFY_FLOAT32;
            pr_certify_result_t r, r0, r1, rs;
            double hl = NAN, hh = NAN;
            PR_CHECK_OK(hiprec_err(&hl, &hh, C, Q, K, V, W, c, beta));
            PR_CHECK_OK(pr_certify_forward_w(&r, C, Q, K, V, w3, c->n, c->d, &pb, &op));
            PR_CHECK_OK(pr_certify_forward_posw(&rs, C, Q, K, V, W, c->n, c->d, &pb, &op));
            PR_CHECK(r.lower <= hh && hl <= r.upper && r.upper <= r.lower * (1 + 1e-6),
                     "config %zu variant %d (n %d d %d causal %d scale %d dense %d alibi %g B %g): [%.17g, %.17g] "
                     "vs Arb's [%.17g, %.17g]", k, variant, c->n, c->d, c->causal, c->scale, c->dense_w, c->alibi,
                     c->B, r.lower, r.upper, hl, hh);
            PR_CHECK(rs.lower == r.lower && rs.upper == r.upper && rs.rows_fallback == r.rows_fallback,
                     "config %zu variant %d: support form [%.17g, %.17g] vs w3 form [%.17g, %.17g]", k, variant,
                     rs.lower, rs.upper, r.lower, r.upper);
            PR_CHECK(r.verdict == 1 && r.witness_row >= 0 && r.lower > 0.0, "config %zu variant %d: atol 0 not "
                     "refuted (verdict %d)", k, variant, r.verdict);
            /* the double pass alone (L13, L3-L5) */
            op.max_fallback_s = 0.0;
            PR_CHECK_OK(pr_certify_forward_w(&r0, C, Q, K, V, w3, c->n, c->d, &pb, &op));
            PR_CHECK(r0.rows_fallback == 0 && r0.lower <= hh && hl <= r0.upper && r0.upper - r0.lower < 1e-11 &&
                     r0.bound_max > 0.0, "config %zu variant %d: double pass [%.17g, %.17g] (%ld Arb rows, E %g) vs "
                     "Arb's [%.17g, %.17g]", k, variant, r0.lower, r0.upper, r0.rows_fallback, r0.bound_max, hl, hh);
            /* certified at the double pass's upper bound, by the double pass alone */
            op.atol = r0.upper * (1 + 1e-9);
            PR_CHECK_OK(pr_certify_forward_w(&r0, C, Q, K, V, w3, c->n, c->d, &pb, &op));
            PR_CHECK(r0.verdict == 0 && r0.rows_fallback == 0, "config %zu variant %d: atol %.17g, double pass "
                     "verdict %d", k, variant, op.atol, r0.verdict);
            /* Arb rows at the lowest precision (64 bits: the products Q·w rounded into balls) */
            op.max_fallback_s = 60.0;
            op.atol = 0.0;
            op.prec = 64;
            PR_CHECK_OK(pr_certify_forward_w(&r1, C, Q, K, V, w3, c->n, c->d, &pb, &op));
            PR_CHECK(r1.lower <= hh && hl <= r1.upper, "config %zu variant %d: 64-bit Arb rows [%.17g, %.17g] vs "
                     "[%.17g, %.17g]", k, variant, r1.lower, r1.upper, hl, hh);
        }
        pr_posw_clear(W);
        free(Q);
    }
}

/* The sharpest oracle for the double pass's bound: the candidate is the true output rounded to
 * double (pr_hiprec at 256 bits; σ = 1/4 and ALiBi 1/4 are exact for d = 16), so its error is
 * below an ulp while the pass's own value Ô errs by far more (large scores, a dense W of s = 256
 * terms, L13): a bound E below Ô's true error would prove a lower bound above the truth. */
static void test_sharp(pr_rng_t rng)
{
    for (int dense = 0; dense < 2; dense++) {
        wcfg_t c = {48, 16, dense, PR_CERTIFY_SCALE_INV_SQRT_D, dense, 0.25, dense ? 12.0 : 5.0};
        size_t nd = (size_t)c.n * c.d;
        double *Q = malloc(sizeof(double) * (nd * 4 + 2 * (size_t)c.n)), *K = Q + nd, *V = K + nd, *C = V + nd,
               *beta = C + nd;
        fill(Q, 3 * nd, c.B, rng);
        pr_posw_t W;
        pr_attn_opts_t ao;
        PR_CHECK_OK(make_w(W, &c, rng));
        opts_of(&ao, beta, &c);
        PR_CHECK(ao.sigma == 0.25 && ao.beta && beta[0] == -(c.n - 1) * 0.25, "σ and β exact");
        arb_ptr O = _arb_vec_init((slong)nd);
        PR_CHECK_OK(pr_hiprec_forward(O, Q, K, V, W, c.n, c.d, &ao, 256));
        for (size_t t = 0; t < nd; t++)
            C[t] = arf_get_d(arb_midref(O + t), ARF_RND_NEAR);
        _arb_vec_clear(O, (slong)nd);
        pr_certify_problem_t pb;
        pr_certify_opts_t op;
        wprob_of(&pb, &c);
        pr_certify_opts_default(&op);
        op.max_fallback_s = 0.0;
        pr_certify_result_t r;
        double hl = NAN, hh = NAN;
        PR_CHECK_OK(hiprec_err(&hl, &hh, C, Q, K, V, W, &c, beta));
        PR_CHECK_OK(pr_certify_forward_posw(&r, C, Q, K, V, W, c.n, c.d, &pb, &op));
        PR_CHECK(r.rows_fallback == 0 && r.lower <= hh && hl <= r.upper && r.bound_max > 10 * hh,
                 "dense %d: double pass [%.17g, %.17g] (E %g) vs the truth in [%.17g, %.17g]", dense, r.lower, r.upper,
                 r.bound_max, hl, hh);
        pr_posw_clear(W);
        free(Q);
    }
}

/* scores too large for the double pass (Δ > 1/2): every row in Arb (L14), certified at 256 bits'
 * error and meeting pr_hiprec; at 64 bits too */
static void test_arb_only(pr_rng_t rng)
{
    wcfg_t c = {12, 4, 1, PR_CERTIFY_SCALE_INV_D, 0, 0.0, 1e9};
    size_t nd = (size_t)c.n * c.d;
    double Q[48 * 4], *K = Q + nd, *V = K + nd, *C = V + nd, beta[2 * 23];
    fill(Q, 2 * nd, c.B, rng);
    fill(V, nd, 1.0, rng);
    pr_posw_t W;
    PR_CHECK_OK(make_w(W, &c, rng));
    pr_attn_opts_t ao;
    opts_of(&ao, beta, &c);
    PR_CHECK_OK(pr_dense_forward(C, NULL, Q, K, V, W, c.n, c.d, &ao));
    to_f32(C, C, nd);
    pr_certify_problem_t pb;
    pr_certify_opts_t op;
    wprob_of(&pb, &c);
    pr_certify_opts_default(&op);
    op.atol = 1.0;
    double hl = NAN, hh = NAN;
    PR_CHECK_OK(hiprec_err(&hl, &hh, C, Q, K, V, W, &c, beta));
    for (long prec = 128; prec >= 64; prec -= 64) {
        pr_certify_result_t r;
        op.prec = prec;
        PR_CHECK_OK(pr_certify_forward_posw(&r, C, Q, K, V, W, c.n, c.d, &pb, &op));
        PR_CHECK(r.rows_fallback == c.n && r.bound_max == 0.0 && r.verdict == 0 && r.lower <= hh && hl <= r.upper,
                 "prec %ld: every row in Arb: %ld rows, E %g, verdict %d, [%.17g, %.17g] vs [%.17g, %.17g]", prec,
                 r.rows_fallback, r.bound_max, r.verdict, r.lower, r.upper, hl, hh);
    }
    pr_posw_clear(W);
}

/* W = I at every offset: the same problem as pr_certify_forward's --pos identity (its own scores,
 * L2): both enclosures hold the truth, so they meet; W = 0 (an empty support) is uniform attention */
static void test_identity_zero(pr_rng_t rng)
{
    const int n = 300, d = 8;
    size_t nd = (size_t)n * d;
    double *Q = malloc(sizeof(double) * nd * 5), *K = Q + nd, *V = K + nd, *O = V + nd, *C = O + nd, beta[600];
    fill(Q, 3 * nd, 2.0, rng);
    cfg_t c = {n, d, PR_CERTIFY_POS_IDENTITY, 1, PR_CERTIFY_SCALE_INV_SQRT_D, 0.3, 2.0};
    pr_posw_t W;
    pr_attn_opts_t ao;
    PR_CHECK_OK(problem_of(W, &ao, beta, &c, 0));
    PR_CHECK_OK(pr_dense_forward(O, NULL, Q, K, V, W, n, d, &ao));
    to_f32(C, O, nd);
    pr_certify_problem_t pb;
    pr_certify_opts_t op;
    prob_of(&pb, &c);
    pr_certify_opts_default(&op);
    pr_certify_result_t ri, rw;
    PR_CHECK_OK(pr_certify_forward(&ri, C, Q, K, V, n, d, &pb, &op));
    PR_CHECK_OK(pr_certify_forward_posw(&rw, C, Q, K, V, W, n, d, &pb, &op));
    PR_CHECK(rw.lower <= ri.upper && ri.lower <= rw.upper && rw.upper <= rw.lower * (1 + 1e-6),
             "W = I [%.17g, %.17g] vs --pos identity [%.17g, %.17g]", rw.lower, rw.upper, ri.lower, ri.upper);
    pr_posw_clear(W);
    /* W = 0: O_i is the mean of V over the unmasked keys; the candidate is that mean in double */
    PR_CHECK_OK(pr_posw_init(W, n, d, 0));
    for (int i = 0; i < n; i++)
        for (int col = 0; col < d; col++) {
            double s = 0.0;
            for (int j = 0; j <= i; j++)
                s += V[(size_t)j * d + col];
            C[(size_t)i * d + col] = s / (i + 1);
        }
    pb.alibi = 0.0;
    op.atol = 1e-13;
    PR_CHECK_OK(pr_certify_forward_posw(&rw, C, Q, K, V, W, n, d, &pb, &op));
    PR_CHECK(rw.verdict == 0 && rw.upper < 1e-13, "W = 0 (uniform attention): verdict %d, [%.17g, %.17g]",
             rw.verdict, rw.lower, rw.upper);
    pr_posw_clear(W);
    free(Q);
}

/* n = 1024: the float64 dense forward (libm's exp) as a reference, within its own error estimate,
 * for float32- and float16-rounded candidates; the double pass alone meets the refined enclosure,
 * and a tolerance inside the double pass's enclosure is decided by Arb rows */
static void test_vs_float64(pr_rng_t rng)
{
    const wcfg_t c = {1024, 16, 1, PR_CERTIFY_SCALE_INV_SQRT_D, 0, 0.05, 2.0};
    const int n = c.n, d = c.d;
    size_t nd = (size_t)n * d;
    double *Q = malloc(sizeof(double) * (nd * 5 + 2 * (size_t)n)), *K = Q + nd, *V = K + nd, *O = V + nd,
           *C = O + nd, *beta = C + nd;
    fill(Q, 3 * nd, c.B, rng);
    pr_posw_t W;
    pr_attn_opts_t ao;
    PR_CHECK_OK(make_w(W, &c, rng));
    opts_of(&ao, beta, &c);
    PR_CHECK_OK(pr_dense_forward(O, NULL, Q, K, V, W, n, d, &ao));
    pr_dense_err_t est;
    PR_CHECK_OK(pr_dense_error_est(&est, Q, K, V, W, O, NULL, n, d, &ao));
    pr_certify_problem_t pb;
    wprob_of(&pb, &c);
    check_rounded(C, O, est.o, Q, K, V, W, n, d, &pb);
    pr_posw_clear(W);
    free(Q);
}

/* a float32 kernel with a general W (every operation in float), with known bugs */
enum { BUG_NONE, BUG_ENTRY, BUG_TRANSPOSE, BUG_OFFSET, BUG_CAUSAL, BUG_SCALE, BUG_COUNT };
static const char *const bug_name[BUG_COUNT] = {"none", "one W entry", "W transposed", "W_{j-i}", "causal mask",
                                                "missing scale"};

static void f32_kernel(double *O, const double *Q, const double *K, const double *V, const pr_posw_t W, int causal,
                       int bug)
{
    int n = W->n, d = W->d;
    float *s = malloc(sizeof(float) * n), sig = bug == BUG_SCALE ? 1.0f : 1.0f / (float)d;
    for (int i = 0; i < n; i++) {
        int jn = !causal ? n : bug == BUG_CAUSAL ? (i + 2 < n ? i + 2 : n) : i + 1;
        for (int j = 0; j < jn; j++) {
            long l = bug == BUG_OFFSET ? (long)j - i : (long)i - j;
            float t = 0.0f;
            for (int k = 0; k < W->s; k++) {
                int a = bug == BUG_TRANSPOSE ? W->b[k] : W->a[k], b = bug == BUG_TRANSPOSE ? W->a[k] : W->b[k];
                float w = (float)pr_posw_at(W, k, l) + (bug == BUG_ENTRY && k == 0 ? 0.5f : 0.0f);
                t += (float)Q[(size_t)i * d + a] * w * (float)K[(size_t)j * d + b];
            }
            s[j] = sig * t;
        }
        f32_softmax_pv(O + (size_t)i * d, s, jn, V, d);
    }
    free(s);
}

/* each bug refuted at ten times the correct kernel's error; the correct kernel certified at its
 * certified error (+1%) and refuted just below its proved lower bound (-1%) */
static void test_kernels(pr_rng_t rng)
{
    const int n = 200, d = 16;
    size_t nd = (size_t)n * d;
    double *Q = malloc(sizeof(double) * nd * 4), *K = Q + nd, *V = K + nd, *O = V + nd;
    fill(Q, 3 * nd, 2.0, rng);
    wcfg_t c = {n, d, 0, PR_CERTIFY_SCALE_INV_D, 0, 0.0, 2.0};
    pr_posw_t W;
    PR_CHECK_OK(make_w(W, &c, rng));
    for (int causal = 0; causal < 2; causal++) {
        pr_certify_problem_t pb;
        pr_certify_opts_t op;
        c.causal = causal;
        wprob_of(&pb, &c);
        pr_certify_opts_default(&op);
        op.dtype = PR_CERTIFY_FLOAT32;
        pr_certify_result_t ok, r;
        f32_kernel(O, Q, K, V, W, causal, BUG_NONE);
        check_deserved(&ok, O, Q, K, V, W, n, d, &pb, causal ? "causal" : "not causal");
        for (int bug = 1; bug < BUG_COUNT; bug++) {
            if (bug == BUG_CAUSAL && !causal)
                continue;
            f32_kernel(O, Q, K, V, W, causal, bug);
            op.atol = 10.0 * ok.upper;
            PR_CHECK_OK(pr_certify_forward_posw(&r, O, Q, K, V, W, n, d, &pb, &op));
            PR_CHECK(r.verdict == 1 && r.lower > op.atol, "causal %d, bug '%s': verdict %d, error in [%.17g, %.17g]",
                     causal, bug_name[bug], r.verdict, r.lower, r.upper);
        }
    }
    pr_posw_clear(W);
    free(Q);
}

/* statuses: a non-finite W entry, W's sizes against n and d */
static void test_refusals(pr_rng_t rng)
{
    const int n = 4, d = 2;
    double Q[8 * 4], *K = Q + 8, *V = K + 8, *C = V + 8, w3[7 * 4] = {0};
    fill(Q, 32, 1.0, rng);
    pr_certify_problem_t pb;
    pr_certify_opts_t op;
    pr_certify_problem_default(&pb);
    pr_certify_opts_default(&op);
    pr_certify_result_t r;
    w3[5] = NAN;
    PR_CHECK(pr_certify_forward_w(&r, C, Q, K, V, w3, n, d, &pb, &op) == PR_ENONFINITE, "a NaN in W");
    pr_posw_t W;
    PR_CHECK_OK(pr_posw_init_identity(W, n + 1, d));
    PR_CHECK(pr_certify_forward_posw(&r, C, Q, K, V, W, n, d, &pb, &op) == PR_ESHAPE, "W for n + 1");
    PR_CHECK(pr_certify_forward_posw(&r, C, Q, K, V, NULL, n, d, &pb, &op) == PR_EINVAL, "no W");
    pr_posw_clear(W);
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_certify_w", 1513));
    test_vs_hiprec(rng);
    test_sharp(rng);
    test_arb_only(rng);
    test_identity_zero(rng);
    test_vs_float64(rng);
    test_kernels(rng);
    test_refusals(rng);
    return pr_test_finish("test_certify_w");
}
