/* pr_certify against independent oracles: the Arb reference pr_hiprec_certify at 256 bits on
 * small heads (the enclosures must intersect: both contain the truth), float64 references where
 * the candidate's error is far above float64's, known-bug kernels refuted, a float32 kernel
 * certified at the tolerance its error deserves and refuted just below it. */
#include <fenv.h>
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
#include "pr_rope.h"
#include "test_certify_common.h"

/* the dense double forward of the configuration (libm's RoPE and exp): a candidate */
static int dense_of(double *O, const double *Q, const double *K, const double *V, const cfg_t *c, double *beta)
{
    pr_posw_t W;
    pr_attn_opts_t o;
    int st = problem_of(W, &o, beta, c, 0);
    if (st)
        return st;
    st = pr_dense_forward(O, NULL, Q, K, V, W, c->n, c->d, &o);
    pr_posw_clear(W);
    return st;
}

/* max |cand - true| enclosed by pr_hiprec_certify at 256 bits (real-number RoPE, σ, ALiBi) */
static int hiprec_err(double *lo, double *hi, const double *cand, const double *Q, const double *K,
                      const double *V, const cfg_t *c, double *beta)
{
    pr_posw_t W;
    pr_attn_opts_t o;
    int st = problem_of(W, &o, beta, c, 0);
    if (st)
        return st;
    pr_hiprec_def_t def;
    pr_hiprec_def_real(&def, c->scale == PR_CERTIFY_SCALE_INV_D ? PR_SCALE_INV_D : PR_SCALE_INV_SQRT_D, c->alibi);
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
            candidate_of(C, O, nd, variant, rng);
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

/* a naive float32 kernel (RoPE by libm, then every operation in float), with known bugs */
enum { BUG_NONE, BUG_LAYOUT, BUG_SCALE, BUG_CAUSAL, BUG_OFFSET, BUG_COUNT };
static const char *const bug_name[BUG_COUNT] = {"none", "rope layout", "missing scale", "causal mask", "position"};

static void f32_kernel(double *O, const double *Q, const double *K, const double *V, int n, int d, int causal, int bug)
{
    float *q = malloc(sizeof(float) * n * d), *k = malloc(sizeof(float) * n * d), *s = malloc(sizeof(float) * n);
    double *th = malloc(sizeof(double) * d / 2);
    pr_rope_angles(th, d, PR_ROPE_BASE_DEFAULT);
    pr_rope_layout_t lay = bug == BUG_LAYOUT ? PR_ROPE_NEOX : PR_ROPE_INTERLEAVED;
    for (int i = 0; i < n; i++)
        for (int h = 0; h < d / 2; h++) {
            int a, b;
            pr_rope_pair(&a, &b, h, d, lay);
            double mq = i + (bug == BUG_OFFSET), cq = cos(mq * th[h]), sq = sin(mq * th[h]);
            double ck = cos(i * th[h]), sk = sin(i * th[h]);
            const double *x = Q + (size_t)i * d, *y = K + (size_t)i * d;
            q[i * d + a] = (float)(x[a] * cq - x[b] * sq);
            q[i * d + b] = (float)(x[a] * sq + x[b] * cq);
            k[i * d + a] = (float)(y[a] * ck - y[b] * sk);
            k[i * d + b] = (float)(y[a] * sk + y[b] * ck);
        }
    float sig = bug == BUG_SCALE ? 1.0f : 1.0f / (float)d;
    for (int i = 0; i < n; i++) {
        int jn = !causal ? n : bug == BUG_CAUSAL ? (i + 2 < n ? i + 2 : n) : i + 1;
        for (int j = 0; j < jn; j++) {
            float t = 0.0f;
            for (int c = 0; c < d; c++)
                t += q[i * d + c] * k[j * d + c];
            s[j] = sig * t;
        }
        f32_softmax_pv(O + (size_t)i * d, s, jn, V, d);
    }
    free(q);
    free(k);
    free(s);
    free(th);
}

/* each bug refuted at ten times the correct kernel's error; the correct kernel certified at its
 * certified error (+1%) and refuted just below its proved lower bound (-1%) */
static void test_kernels(pr_rng_t rng)
{
    const int n = 200, d = 16;
    size_t nd = (size_t)n * d;
    double *Q = malloc(sizeof(double) * nd * 4), *K = Q + nd, *V = K + nd, *O = V + nd;
    fill(Q, 3 * nd, 2.0, rng);
    for (int causal = 0; causal < 2; causal++) {
        pr_certify_problem_t pb;
        pr_certify_opts_t op;
        pr_certify_problem_default(&pb);
        pb.causal = causal;
        pr_certify_opts_default(&op);
        op.dtype = PR_CERTIFY_FLOAT32;
        pr_certify_result_t ok, r;
        f32_kernel(O, Q, K, V, n, d, causal, BUG_NONE);
        check_deserved(&ok, O, Q, K, V, NULL, n, d, &pb, causal ? "causal" : "not causal");
        /* the relative tolerance it deserves: certified at max err/|true| (+1%), from a second run */
        op.atol = 0.0;
        op.rtol = 1.0;
        PR_CHECK_OK(pr_certify_forward(&r, O, Q, K, V, n, d, &pb, &op));
        PR_CHECK(r.verdict == 0, "causal %d: rtol 1 refused a float32 kernel (verdict %d)", causal, r.verdict);
        for (int bug = 1; bug < BUG_COUNT; bug++) {
            if (bug == BUG_CAUSAL && !causal)
                continue;
            f32_kernel(O, Q, K, V, n, d, causal, bug);
            op.atol = 10.0 * ok.upper;
            op.rtol = 0.0;
            PR_CHECK_OK(pr_certify_forward(&r, O, Q, K, V, n, d, &pb, &op));
            PR_CHECK(r.verdict == 1 && r.lower > op.atol,
                     "causal %d, bug '%s': verdict %d, error in [%.17g, %.17g]", causal, bug_name[bug], r.verdict,
                     r.lower, r.upper);
        }
    }
    free(Q);
}

/* n = 1024: the float64 dense forward (libm) as a reference, within its own error estimate, for
 * float32- and float16-rounded candidates; the double pass alone meets the refined enclosure */
static void test_vs_float64(pr_rng_t rng)
{
    const int n = 1024, d = 32;
    size_t nd = (size_t)n * d;
    double *Q = malloc(sizeof(double) * nd * 5), *K = Q + nd, *V = K + nd, *O = V + nd, *C = O + nd;
    double beta[2 * 1024];
    fill(Q, 3 * nd, 3.0, rng);
    cfg_t c = {n, d, PR_CERTIFY_POS_ROPE_NEOX, 1, PR_CERTIFY_SCALE_INV_SQRT_D, 0.0, 3.0};
    PR_CHECK_OK(dense_of(O, Q, K, V, &c, beta));
    pr_posw_t W;
    PR_CHECK_OK(pr_posw_init_rope(W, n, d, PR_ROPE_BASE_DEFAULT, PR_ROPE_NEOX));
    pr_attn_opts_t ao;
    pr_attn_opts_default(&ao, d);
    ao.sigma = pr_scale_sigma(PR_SCALE_INV_SQRT_D, d);
    ao.causal = 1;
    pr_dense_err_t est;
    PR_CHECK_OK(pr_dense_error_est(&est, Q, K, V, W, O, NULL, n, d, &ao));
    pr_posw_clear(W);
    pr_certify_problem_t pb;
    prob_of(&pb, &c);
    check_rounded(C, O, est.o, Q, K, V, NULL, n, d, &pb);
    free(Q);
}

/* scores too large for the double pass (Δ > 1/2): every row in Arb, against pr_hiprec */
static void test_arb_only(pr_rng_t rng)
{
    cfg_t c = {9, 4, PR_CERTIFY_POS_ROPE, 0, PR_CERTIFY_SCALE_INV_D, 0.0, 1e9};
    size_t nd = (size_t)c.n * c.d;
    double Q[36 * 5], *K = Q + nd, *V = K + nd, *O = V + nd, *C = O + nd, beta[18];
    fill(Q, 2 * nd, c.B, rng);
    fill(V, nd, 1.0, rng);
    PR_CHECK_OK(dense_of(O, Q, K, V, &c, beta));
    to_f32(C, O, nd);
    C[5] = NAN;
    pr_certify_problem_t pb;
    pr_certify_opts_t op;
    prob_of(&pb, &c);
    pr_certify_opts_default(&op);
    op.atol = 1.0;
    pr_certify_result_t r;
    PR_CHECK_OK(pr_certify_forward(&r, C, Q, K, V, c.n, c.d, &pb, &op));
    PR_CHECK(r.verdict == 1 && r.witness_row == 1 && r.witness_col == 1 && r.upper == INFINITY,
             "a NaN candidate entry is refuted there: verdict %d at (%ld, %ld), upper %g", r.verdict, r.witness_row,
             r.witness_col, r.upper);
    C[5] = (double)(float)O[5];
    double hl = NAN, hh = NAN;
    PR_CHECK_OK(pr_certify_forward(&r, C, Q, K, V, c.n, c.d, &pb, &op));
    PR_CHECK_OK(hiprec_err(&hl, &hh, C, Q, K, V, &c, beta));
    PR_CHECK(r.rows_fallback == c.n && r.bound_max == 0.0 && r.verdict == 0, "every row in Arb: %ld rows, E %g, "
             "verdict %d", r.rows_fallback, r.bound_max, r.verdict);
    PR_CHECK(r.lower <= hh && hl <= r.upper, "Arb rows [%.17g, %.17g] vs pr_hiprec [%.17g, %.17g]", r.lower, r.upper,
             hl, hh);
}

/* batch 2 × 4 heads over 2 kv heads: each head as its own call on its kv head */
static void test_heads(pr_rng_t rng)
{
    const int B = 2, H = 4, HK = 2, n = 40, d = 8;
    size_t nd = (size_t)n * d;
    double *Q = malloc(sizeof(double) * nd * B * (2 * H + 2 * HK)), *O = Q + nd * B * H, *K = O + nd * B * H,
           *V = K + nd * B * HK;
    fill(Q, nd * B * (2 * H + 2 * HK), 1.5, rng);
    pr_certify_problem_t pb;
    pr_certify_opts_t op;
    pr_certify_problem_default(&pb);
    pr_certify_opts_default(&op);
    pr_certify_result_t r[8], one;
    PR_CHECK_OK(pr_certify_forward_heads(r, O, Q, K, V, B, H, HK, n, d, &pb, &op));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t qo = (size_t)(b * H + h) * nd, ko = (size_t)(b * HK + h / 2) * nd;
            PR_CHECK_OK(pr_certify_forward(&one, O + qo, Q + qo, K + ko, V + ko, n, d, &pb, &op));
            const pr_certify_result_t *x = r + b * H + h;
            PR_CHECK(x->lower == one.lower && x->upper == one.upper && x->worst_row == one.worst_row,
                     "batch %d head %d: [%.17g, %.17g] vs one call [%.17g, %.17g]", b, h, x->lower, x->upper,
                     one.lower, one.upper);
        }
    PR_CHECK(pr_certify_forward_heads(r, O, Q, K, V, B, H, 3, n, d, &pb, &op) == PR_ESHAPE, "4 heads over 3 kv heads");
    free(Q);
}

/* gradients against pr_hiprec_certify's (the largest of dQ, dK, dV) */
static void test_backward(pr_rng_t rng)
{
    cfg_t c = {24, 8, PR_CERTIFY_POS_ROPE, 1, PR_CERTIFY_SCALE_INV_SQRT_D, 0.125, 2.0};
    size_t nd = (size_t)c.n * c.d;
    double *Q = malloc(sizeof(double) * nd * 9), *K = Q + nd, *V = K + nd, *O = V + nd, *dO = O + nd, *dQ = dO + nd,
           *dK = dQ + nd, *dV = dK + nd, *lse = dV + nd, beta[48];
    fill(Q, 3 * nd, c.B, rng);
    fill(dO, nd, 1.0, rng);
    pr_posw_t W;
    PR_CHECK_OK(pr_posw_init_rope(W, c.n, c.d, PR_ROPE_BASE_DEFAULT, PR_ROPE_INTERLEAVED));
    pr_attn_opts_t ao;
    pr_attn_opts_default(&ao, c.d);
    ao.sigma = pr_scale_sigma(PR_SCALE_INV_SQRT_D, c.d);
    ao.causal = 1;
    PR_CHECK_OK(pr_bias_alibi(beta, c.n, c.alibi));
    ao.beta = beta;
    PR_CHECK_OK(pr_dense_forward(O, lse, Q, K, V, W, c.n, c.d, &ao));
    PR_CHECK_OK(pr_dense_backward(dQ, dK, dV, NULL, Q, K, V, W, O, lse, dO, c.n, c.d, &ao));
    for (size_t t = 0; t < nd; t++)
        dK[t] = (double)(float)dK[t];
    pr_hiprec_def_t def;
    pr_hiprec_def_real(&def, PR_SCALE_INV_SQRT_D, c.alibi);
    arb_t e1, e2;
    arb_init(e1);
    arb_init(e2);
    PR_CHECK_OK(pr_hiprec_certify(e1, e2, O, dQ, dK, dV, NULL, Q, K, V, W, dO, c.n, c.d, &ao, &def, 256));
    pr_certify_problem_t pb;
    pr_certify_opts_t op;
    prob_of(&pb, &c);
    pr_certify_opts_default(&op);
    pr_certify_result_t r[3];
    PR_CHECK_OK(pr_certify_backward(r, dQ, dK, dV, Q, K, V, dO, c.n, c.d, &pb, &op));
    double lo = fmax(r[0].lower, fmax(r[1].lower, r[2].lower)), hi = fmax(r[0].upper, fmax(r[1].upper, r[2].upper));
    double hl = pr_hiprec_lbound_d(e2), hh = pr_hiprec_ubound_d(e2);
    PR_CHECK(lo <= hh && hl <= hi && hi <= lo * (1 + 1e-6) && r[1].upper > 10 * r[0].upper,
             "gradients [%.17g, %.17g] (dQ %.3g, dK %.3g, dV %.3g) vs pr_hiprec [%.17g, %.17g]", lo, hi, r[0].upper,
             r[1].upper, r[2].upper, hl, hh);
    /* the double pass alone (docs/certify.md L8-L12) meets pr_hiprec too */
    op.max_fallback_s = 0.0;
    PR_CHECK_OK(pr_certify_backward(r, dQ, dK, dV, Q, K, V, dO, c.n, c.d, &pb, &op));
    lo = fmax(r[0].lower, fmax(r[1].lower, r[2].lower));
    hi = fmax(r[0].upper, fmax(r[1].upper, r[2].upper));
    /* its width is its bound's: hi - lo <= 2 E (1 + u) + 2u |cand - Ĝ|, both ends rounded outward
     * by a factor 1 ± 2^-40 (pr_certify_up, pr_certify_down) */
    double bm = fmax(r[0].bound_max, fmax(r[1].bound_max, r[2].bound_max));
    PR_CHECK(lo <= hh && hl <= hi && hi - lo <= 2 * bm * (1 + 1e-9) + 0x1p-38 * hi && r[1].rows_fallback == 0,
             "double pass: gradients [%.17g, %.17g] (bound %.17g, fallback rows %ld) vs pr_hiprec [%.17g, %.17g]", lo,
             hi, bm, r[1].rows_fallback, hl, hh);
    arb_clear(e1);
    arb_clear(e2);
    pr_posw_clear(W);
    free(Q);
}

/* grouped-query gradients: a kv head's true dK, dV sum over its query heads (dense sums certified,
 * one head's alone refuted) */
static void test_backward_gqa(pr_rng_t rng)
{
    enum { H = 2, n = 20, d = 4 };
    size_t nd = (size_t)n * d;
    double *Q = malloc(sizeof(double) * nd * 16), *K = Q + H * nd, *V = K + nd, *dO = V + nd, *O = dO + H * nd;
    double *lse = O + nd, *dQ = lse + nd, *dK = dQ + H * nd, *dV = dK + H * nd, *sK = dV + H * nd, *sV = sK + nd;
    fill(Q, 2 * H * nd + 2 * nd, 1.5, rng);
    pr_posw_t W;
    PR_CHECK_OK(pr_posw_init_rope(W, n, d, PR_ROPE_BASE_DEFAULT, PR_ROPE_INTERLEAVED));
    pr_attn_opts_t ao;
    pr_attn_opts_default(&ao, d);
    for (int h = 0; h < H; h++) {
        PR_CHECK_OK(pr_dense_forward(O, lse, Q + h * nd, K, V, W, n, d, &ao));
        PR_CHECK_OK(pr_dense_backward(dQ + h * nd, dK + h * nd, dV + h * nd, NULL, Q + h * nd, K, V, W, O, lse,
                                      dO + h * nd, n, d, &ao));
    }
    pr_posw_clear(W);
    for (size_t t = 0; t < nd; t++) {
        sK[t] = dK[t] + dK[nd + t];
        sV[t] = dV[t] + dV[nd + t];
    }
    pr_certify_problem_t pb;
    pr_certify_opts_t op;
    pr_certify_problem_default(&pb);
    pr_certify_opts_default(&op);
    op.atol = 1e-12;
    pr_certify_result_t r[3 * H];
    PR_CHECK_OK(pr_certify_backward_heads(r, dQ, sK, sV, Q, K, V, dO, 1, H, 1, n, d, &pb, &op));
    PR_CHECK(r[0].verdict == 0 && r[1].verdict == 0 && r[2].verdict == 0 && r[3].verdict == 0 && r[4].rows == 0 &&
             r[5].rows == 0, "summed dK, dV: verdicts dQ0 %d dK %d dV %d dQ1 %d (rows of head 1's dK %ld)",
             r[0].verdict, r[1].verdict, r[2].verdict, r[3].verdict, r[4].rows);
    PR_CHECK_OK(pr_certify_backward_heads(r, dQ, dK, dV, Q, K, V, dO, 1, H, 1, n, d, &pb, &op));
    PR_CHECK(r[1].verdict == 1 && r[2].verdict == 1, "head 0's dK, dV alone: verdicts %d %d", r[1].verdict,
             r[2].verdict);
    free(Q);
}

/* Q·2^-530 and K·2^530 define the same scores, and the double pass computes the same numbers: the
 * same bounds (the row norms once underflowed to 0 for such Q, dropping the scores' rounding) */
static void test_scaling(pr_rng_t rng)
{
    cfg_t c = {40, 8, PR_CERTIFY_POS_ROPE, 0, PR_CERTIFY_SCALE_INV_D, 0.0, 2.0};
    size_t nd = (size_t)c.n * c.d;
    double *Q = malloc(sizeof(double) * nd * 7), *K = Q + nd, *V = K + nd, *O = V + nd, *C = O + nd, *Qs = C + nd,
           *Ks = Qs + nd, beta[80];
    fill(Q, 3 * nd, c.B, rng);
    PR_CHECK_OK(dense_of(O, Q, K, V, &c, beta));
    to_f32(C, O, nd);
    for (size_t t = 0; t < nd; t++) {
        Qs[t] = ldexp(Q[t], -530);
        Ks[t] = ldexp(K[t], 530);
    }
    pr_certify_problem_t pb;
    pr_certify_opts_t op;
    prob_of(&pb, &c);
    pr_certify_opts_default(&op);
    op.max_fallback_s = 0.0;
    pr_certify_result_t r0, r;
    PR_CHECK_OK(pr_certify_forward(&r0, C, Q, K, V, c.n, c.d, &pb, &op));
    PR_CHECK_OK(pr_certify_forward(&r, C, Qs, Ks, V, c.n, c.d, &pb, &op));
    PR_CHECK(r.bound_max == r0.bound_max && r.lower == r0.lower && r.upper == r0.upper,
             "scaled Q, K: E %.17g vs %.17g, [%.17g, %.17g] vs [%.17g, %.17g]", r.bound_max, r0.bound_max, r.lower,
             r.upper, r0.lower, r0.upper);
    free(Q);
}

/* a caller's rounding mode changes nothing (the call runs round-to-nearest) and is restored */
static void test_rounding(pr_rng_t rng)
{
    cfg_t c = {50, 8, PR_CERTIFY_POS_ROPE, 1, PR_CERTIFY_SCALE_INV_SQRT_D, 0.0, 2.0};
    size_t nd = (size_t)c.n * c.d;
    double *Q = malloc(sizeof(double) * nd * 5), *K = Q + nd, *V = K + nd, *O = V + nd, *C = O + nd, beta[100];
    fill(Q, 3 * nd, c.B, rng);
    PR_CHECK_OK(dense_of(O, Q, K, V, &c, beta));
    to_f32(C, O, nd);
    pr_certify_problem_t pb;
    pr_certify_opts_t op;
    prob_of(&pb, &c);
    pr_certify_opts_default(&op);
    pr_certify_result_t r0, r;
    PR_CHECK_OK(pr_certify_forward(&r0, C, Q, K, V, c.n, c.d, &pb, &op));
    const int modes[] = {FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO};
    for (int m = 0; m < 3; m++) {
        fesetround(modes[m]);
        int st = pr_certify_forward(&r, C, Q, K, V, c.n, c.d, &pb, &op);
        int after = fegetround();
        fesetround(FE_TONEAREST);
        PR_CHECK(!st && after == modes[m] && r.lower == r0.lower && r.upper == r0.upper && r.bound_max == r0.bound_max,
                 "mode %d: status %d, mode after %d, [%.17g, %.17g] vs [%.17g, %.17g]", modes[m], st, after, r.lower,
                 r.upper, r0.lower, r0.upper);
    }
    free(Q);
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_certify", 1515));
    test_vs_hiprec(rng);
    test_kernels(rng);
    test_vs_float64(rng);
    test_arb_only(rng);
    test_heads(rng);
    test_backward(rng);
    test_rounding(rng);
    test_backward_gqa(rng);
    test_scaling(rng);
    return pr_test_finish("test_certify");
}
