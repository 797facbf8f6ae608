/* pr_certify's gradients with a general W (docs/certify.md L13, L15, L16) against independent oracles:
 * pr_hiprec at 256 bits on small heads (the double pass alone, with dQ's Arb rows, with the whole
 * group in Arb, and Arb at the lowest precision; W on RoPE's support and a dense W, ALiBi, causal,
 * grouped-query), the true gradients rounded to double as the sharpest candidates, the float64 dense
 * backward at n = 1024 for float32 and float16 candidates, a float32 backward kernel with known bugs
 * refuted and certified at the tolerance its error deserves, the w3 and support forms, refusals. */
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
#include "test_certify_common.h"

static const char *const gname[3] = {"dQ", "dK", "dV"};



/* one head: the dense float64 forward and backward with W into G = dQ | dK | dV; est its error estimate
 * (NULL: none) */
static int dense_grads(double *G, pr_dense_err_t *est, const double *Q, const double *K, const double *V,
                       const double *dO, const pr_posw_struct *W, const wcfg_t *c)
{
    size_t nd = (size_t)c->n * c->d;
    double *O = malloc(sizeof(double) * (nd + 3 * (size_t)c->n)), *lse = O + nd, *beta = lse + c->n;
    if (!O)
        return PR_ENOMEM;
    pr_attn_opts_t ao;
    opts_of(&ao, beta, c);
    int st = pr_dense_forward(O, lse, Q, K, V, W, c->n, c->d, &ao);
    if (!st)
        st = pr_dense_backward(G, G + nd, G + 2 * nd, NULL, Q, K, V, W, O, lse, dO, c->n, c->d, &ao);
    if (!st && est)
        st = pr_dense_error_est(est, Q, K, V, W, O, dO, c->n, c->d, &ao);
    free(O);
    return st;
}

/* one head of c: Q, K, V (entries below c->B), dO and W random, then G = dQ | dK | dV, their float64
 * dense gradients; returns Q | K | V | dO | G (7 n×d, free it) */
static double *grad_case(pr_posw_t W, const wcfg_t *c, pr_rng_t rng)
{
    size_t nd = (size_t)c->n * c->d;
    double *Q = malloc(sizeof(double) * nd * 7);
    if (!Q)
        abort();
    fill(Q, 3 * nd, c->B, rng);
    fill(Q + 3 * nd, nd, 1.0, rng);
    PR_CHECK_OK(random_w(W, c->n, c->d, c->dense_w, rng));
    PR_CHECK_OK(dense_grads(Q + 4 * nd, NULL, Q, Q + nd, Q + 2 * nd, Q + 3 * nd, W, c));
    return Q;
}

/* the largest error of G = dQ | dK | dV enclosed by pr_hiprec_certify at 256 bits (W's doubles, σ and
 * ALiBi the real numbers) */
static int hiprec_max(double *lo, double *hi, const double *G, const double *Q, const double *K, const double *V,
                      const double *dO, const pr_posw_struct *W, const wcfg_t *c)
{
    size_t nd = (size_t)c->n * c->d;
    double *O = malloc(sizeof(double) * (nd + 2 * (size_t)c->n)), *beta = O + nd;
    if (!O)
        return PR_ENOMEM;
    pr_attn_opts_t ao;
    opts_of(&ao, beta, c);
    pr_hiprec_def_t def;
    pr_hiprec_def_real(&def, c->scale == PR_CERTIFY_SCALE_INV_D ? PR_SCALE_INV_D : PR_SCALE_INV_SQRT_D, c->alibi);
    def.rope = 0;
    arb_t e1, e2;
    arb_init(e1);
    arb_init(e2);
    int st = pr_dense_forward(O, NULL, Q, K, V, W, c->n, c->d, &ao);
    if (!st)
        st = pr_hiprec_certify(e1, e2, O, G, G + nd, G + 2 * nd, NULL, Q, K, V, W, dO, c->n, c->d, &ao, &def, 256);
    *lo = pr_hiprec_lbound_d(e2);
    *hi = pr_hiprec_ubound_d(e2);
    arb_clear(e1);
    arb_clear(e2);
    free(O);
    return st;
}

/* the true gradients T = dQ | dK | dV in balls at 256 bits; σ and the bias must be exact doubles */
static int hiprec_balls(arb_ptr T, const double *Q, const double *K, const double *V, const double *dO,
                        const pr_posw_struct *W, const wcfg_t *c)
{
    size_t nd = (size_t)c->n * c->d;
    double *beta = malloc(sizeof(double) * 2 * (size_t)c->n);
    if (!beta)
        return PR_ENOMEM;
    pr_attn_opts_t ao;
    opts_of(&ao, beta, c);
    int st = pr_hiprec_backward(T, T + nd, T + 2 * nd, NULL, Q, K, V, W, dO, c->n, c->d, &ao, 256);
    free(beta);
    return st;
}

/* [lo, hi] ∋ max |x - truth| over len entries for the balls T */
static void ball_err(double *lo, double *hi, const double *x, arb_srcptr T, size_t len)
{
    arb_t e;
    arb_init(e);
    pr_hiprec_max_error(e, x, T, len, 256);
    *lo = pr_hiprec_lbound_d(e);
    *hi = pr_hiprec_ubound_d(e);
    arb_clear(e);
}

static double max3(const pr_certify_result_t r[3], int upper)
{
    return upper ? fmax(r[0].upper, fmax(r[1].upper, r[2].upper)) : fmax(r[0].lower, fmax(r[1].lower, r[2].lower));
}

/* small heads: gradient t rounded to float32 (the others double), so that it holds the largest error;
 * the double pass alone, the default (Arb where undecided) and Arb at 64 bits meet pr_hiprec; the w3
 * and support forms agree */
static void test_vs_hiprec(pr_rng_t rng)
{
    const wcfg_t cfgs[] = {{20, 8, 0, PR_CERTIFY_SCALE_INV_D, 0, 0.0, 2.0},
                           {17, 6, 1, PR_CERTIFY_SCALE_INV_SQRT_D, 0, 0.1, 3.0}, /* 0.1·|ℓ|: a real bias */
                           {16, 4, 0, PR_CERTIFY_SCALE_INV_SQRT_D, 1, 0.25, 2.0},
                           {12, 5, 1, PR_CERTIFY_SCALE_INV_D, 1, 0.0, 1.5},
                           {1, 2, 0, PR_CERTIFY_SCALE_INV_D, 1, 0.0, 1.0}};
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        const wcfg_t *c = cfgs + k;
        size_t nd = (size_t)c->n * c->d, L = 2 * (size_t)c->n - 1;
        double *Q = malloc(sizeof(double) * (nd * 10 + L * c->d * c->d)), *K = Q + nd, *V = K + nd, *dO = V + nd,
               *G = dO + nd, *Gt = G + 3 * nd, *w3 = Gt + 3 * nd;
        fill(Q, 3 * nd, c->B, rng);
        fill(dO, nd, 1.0, rng);
        pr_posw_t W;
        PR_CHECK_OK(random_w(W, c->n, c->d, c->dense_w, rng));
        pr_posw_to_dense(w3, W);
        PR_CHECK_OK(dense_grads(G, NULL, Q, K, V, dO, W, c));
        pr_certify_problem_t pb;
        wprob_of(&pb, c);
        for (int t = 0; t < 3; t++) {
            memcpy(Gt, G, sizeof(double) * 3 * nd);
            to_f32(Gt + t * nd, Gt + t * nd, nd);
            double hl, hh;
            PR_CHECK_OK(hiprec_max(&hl, &hh, Gt, Q, K, V, dO, W, c));
            pr_certify_result_t r[3], rw[3];
            /* the double pass alone; the default; Arb at 64 bits (dQ's rows, else the group's) at a tolerance
               inside the double pass's enclosure */
            for (int mode = 0; mode < 3; mode++) {
                pr_certify_opts_t op;
                pr_certify_opts_default(&op);
                op.max_fallback_s = mode ? -1.0 : 0.0;
                op.prec = mode == 2 ? 64 : 0;
                op.atol = mode == 2 ? r[t].lower + 0.3 * (r[t].upper - r[t].lower) : 0.0;
                PR_CHECK_OK(pr_certify_backward_heads_posw(r, Gt, Gt + nd, Gt + 2 * nd, Q, K, V, dO, W, 1, 1, 1, c->n,
                                                           c->d, &pb, &op));
                double lo = max3(r, 0), hi = max3(r, 1);
                PR_CHECK(lo <= hh && hl <= hi && r[t].lower == lo && (mode || r[t].rows_fallback == 0) &&
                         (mode < 2 || c->n == 1 || r[t].rows_fallback >= 1),
                         "config %zu (n %d d %d causal %d dense %d alibi %g), %s float32, mode %d: [%.17g, %.17g] "
                         "(%s's [%.17g, %.17g], fallback %ld) vs pr_hiprec [%.17g, %.17g]", k, c->n, c->d, c->causal,
                         c->dense_w, c->alibi, gname[t], mode, lo, hi, gname[t], r[t].lower, r[t].upper,
                         r[t].rows_fallback, hl, hh);
                if (mode == 1) {
                    PR_CHECK_OK(pr_certify_backward_heads_w(rw, Gt, Gt + nd, Gt + 2 * nd, Q, K, V, dO, w3, 1, 1, 1,
                                                            c->n, c->d, &pb, &op));
                    for (int u = 0; u < 3; u++)
                        PR_CHECK(rw[u].lower == r[u].lower && rw[u].upper == r[u].upper,
                                 "config %zu, %s: w3 form [%.17g, %.17g] vs support form [%.17g, %.17g]", k, gname[u],
                                 rw[u].lower, rw[u].upper, r[u].lower, r[u].upper);
                }
            }
        }
        pr_posw_clear(W);
        free(Q);
    }
}

/* The sharpest oracle for the double pass's bounds (L13, L8-L12, L15): the candidates are the true
 * gradients rounded to double (σ = 1/4 and ALiBi 1/4 exact for d = 16), so their errors are below an
 * ulp while the pass's own values err by far more (a dense W of 256 terms, dO up to 4): a bound
 * below that error would prove a lower bound above the truth (dropping L15's sums of Z|W||K| and
 * Z|Q||W| fails here). Per gradient, with grouped-query heads. */
static void test_sharp(pr_rng_t rng)
{
    enum { H = 2 };
    const wcfg_t c = {30, 16, 1, PR_CERTIFY_SCALE_INV_SQRT_D, 1, 0.25, 2.0};
    size_t nd = (size_t)c.n * c.d;
    double *Q = malloc(sizeof(double) * nd * (4 * H + 4)), *K = Q + H * nd, *V = K + nd, *dO = V + nd,
           *G = dO + H * nd; /* dQ of each head, then dK, dV */
    fill(Q, (H + 2) * nd, c.B, rng);
    fill(dO, H * nd, 4.0, rng);
    pr_posw_t W;
    PR_CHECK_OK(random_w(W, c.n, c.d, 1, rng));
    arb_ptr T = _arb_vec_init(3 * (slong)nd), S = _arb_vec_init((slong)(H + 2) * nd);
    for (int h = 0; h < H; h++) {
        PR_CHECK_OK(hiprec_balls(T, Q + h * nd, K, V, dO + h * nd, W, &c));
        _arb_vec_set(S + h * nd, T, (slong)nd);
        _arb_vec_add(S + H * nd, S + H * nd, T + nd, 2 * (slong)nd, 256);
    }
    for (size_t t = 0; t < (H + 2) * nd; t++)
        G[t] = arf_get_d(arb_midref(S + t), ARF_RND_NEAR);
    pr_certify_problem_t pb;
    pr_certify_opts_t op;
    wprob_of(&pb, &c);
    pr_certify_opts_default(&op);
    op.max_fallback_s = 0.0;
    pr_certify_result_t r[3 * H];
    PR_CHECK_OK(pr_certify_backward_heads_posw(r, G, G + H * nd, G + (H + 1) * nd, Q, K, V, dO, W, 1, H, 1, c.n,
                                               c.d, &pb, &op));
    for (int t = 0; t < 4; t++) { /* dQ of head 0, the group's dK, dV, dQ of head 1 */
        const pr_certify_result_t *rt = r + (t == 3 ? 3 : t);
        size_t off = t == 0 ? 0 : t == 3 ? nd : (size_t)(H + t - 1) * nd;
        double hl, hh;
        ball_err(&hl, &hh, G + off, S + off, nd);
        PR_CHECK(rt->lower <= hh && hl <= rt->upper && rt->bound_max > 10 * hh && isfinite(rt->upper),
                 "%s%s: double pass [%.17g, %.17g] (E %g) vs the truth's error in [%.17g, %.17g]", gname[t % 3],
                 t == 3 ? " of head 1" : "", rt->lower, rt->upper, rt->bound_max, hl, hh);
    }
    _arb_vec_clear(T, 3 * (slong)nd);
    _arb_vec_clear(S, (slong)(H + 2) * nd);
    pr_posw_clear(W);
    free(Q);
}

/* dw (L17) of a group of two query heads: a float32 candidate's enclosure holds the error against the
 * 256-bit truth (σ = 1/8, ALiBi 1/4 exact) and is certified at +1%, refuted at -1%; the truth rounded to
 * double (an error below an ulp, the pass's own far above) is not refuted by the bound */
static void test_dw(pr_rng_t rng)
{
    enum { H = 2 };
    const wcfg_t cfgs[] = {{40, 8, 1, PR_CERTIFY_SCALE_INV_D, 0, 0.25, 2.0}, {24, 4, 0, PR_CERTIFY_SCALE_INV_SQRT_D, 1,
                                                                              0.0, 3.0}};
    for (int k = 0; k < 2; k++) {
        const wcfg_t *c = cfgs + k;
        size_t nd = (size_t)c->n * c->d, L = 2 * (size_t)c->n - 1;
        pr_posw_t W;
        PR_CHECK_OK(random_w(W, c->n, c->d, c->dense_w, rng));
        size_t sL = (size_t)W->s * L;
        double *Q = malloc(sizeof(double) * (nd * (3 * H + 5) + 3 * sL)), *K = Q + H * nd, *V = K + nd, *dO = V + nd,
               *G = dO + H * nd, *dw = G + 3 * nd, *dws = dw + sL, *C = dws + sL;
        fill(Q, (H + 2) * nd, c->B, rng);
        fill(dO, H * nd, 1.0, rng);
        arb_ptr T = _arb_vec_init((slong)sL), Ts = _arb_vec_init((slong)sL);
        double *beta = malloc(sizeof(double) * 2 * (size_t)c->n), *O = malloc(sizeof(double) * (nd + c->n));
        pr_attn_opts_t ao;
        opts_of(&ao, beta, c);
        memset(dws, 0, sizeof(double) * sL);
        for (int h = 0; h < H; h++) {
            PR_CHECK_OK(pr_dense_forward(O, O + nd, Q + h * nd, K, V, W, c->n, c->d, &ao));
            PR_CHECK_OK(pr_dense_backward(G, G + nd, G + 2 * nd, dw, Q + h * nd, K, V, W, O, O + nd, dO + h * nd, c->n,
                                          c->d, &ao));
            for (size_t t = 0; t < sL; t++)
                dws[t] += dw[t];
            PR_CHECK_OK(pr_hiprec_backward(NULL, NULL, NULL, T, Q + h * nd, K, V, W, dO + h * nd, c->n, c->d, &ao, 256));
            _arb_vec_add(Ts, Ts, T, (slong)sL, 256);
        }
        pr_certify_problem_t pb;
        pr_certify_opts_t op;
        wprob_of(&pb, c);
        pr_certify_opts_default(&op);
        op.dtype = PR_CERTIFY_FLOAT32;
        pr_certify_result_t r[3 * H + 1], r1[3 * H + 1];
        double hl, hh;
        to_f32(C, dws, sL);
        ball_err(&hl, &hh, C, Ts, sL);
        PR_CHECK_OK(pr_certify_backward_dw(r, NULL, NULL, NULL, C, Q, K, V, dO, W, H, c->n, c->d, &pb, &op));
        const pr_certify_result_t *rw = r + 3 * H;
        PR_CHECK(rw->lower <= hh && hl <= rw->upper && rw->upper <= rw->lower * 1.001 && rw->rows == W->s &&
                 r[0].rows == 0, "config %d: float32 dw [%.17g, %.17g] vs pr_hiprec [%.17g, %.17g] (rows %ld)", k,
                 rw->lower, rw->upper, hl, hh, rw->rows);
        op.atol = rw->upper * 1.01;
        PR_CHECK_OK(pr_certify_backward_dw(r1, NULL, NULL, NULL, C, Q, K, V, dO, W, H, c->n, c->d, &pb, &op));
        PR_CHECK(r1[3 * H].verdict == 0, "config %d: dw at atol %.17g: verdict %d", k, op.atol, r1[3 * H].verdict);
        op.atol = rw->lower * 0.99;
        PR_CHECK_OK(pr_certify_backward_dw(r1, NULL, NULL, NULL, C, Q, K, V, dO, W, H, c->n, c->d, &pb, &op));
        PR_CHECK(r1[3 * H].verdict == 1 && r1[3 * H].witness_row >= 0, "config %d: dw at atol %.17g: verdict %d", k,
                 op.atol, r1[3 * H].verdict);
        for (size_t t = 0; t < sL; t++)
            C[t] = arf_get_d(arb_midref(Ts + t), ARF_RND_NEAR);
        ball_err(&hl, &hh, C, Ts, sL);
        op.atol = 0.0;
        PR_CHECK_OK(pr_certify_backward_dw(r1, NULL, NULL, NULL, C, Q, K, V, dO, W, H, c->n, c->d, &pb, &op));
        PR_CHECK(r1[3 * H].lower <= hh && hl <= r1[3 * H].upper && r1[3 * H].bound_max > 10 * hh,
                 "config %d: dw rounded from the truth: [%.17g, %.17g] (E %g) vs [%.17g, %.17g]", k, r1[3 * H].lower,
                 r1[3 * H].upper, r1[3 * H].bound_max, hl, hh);
        PR_CHECK(pr_certify_backward_dw(r1, NULL, NULL, NULL, NULL, Q, K, V, dO, W, H, c->n, c->d, &pb, &op) ==
                 PR_EINVAL, "dw without its candidate");
        _arb_vec_clear(T, (slong)sL);
        _arb_vec_clear(Ts, (slong)sL);
        free(beta);
        free(O);
        pr_posw_clear(W);
        free(Q);
    }
}

/* dQ's rows in Arb with W (L16) where the double pass leaves them open, at a tolerance inside its
 * enclosure: at n = 40 (dQ alone, so no whole-group fallback) against pr_hiprec, and past n = 512 */
static void test_dq_rows(pr_rng_t rng)
{
    const wcfg_t cfgs[] = {{40, 8, 1, PR_CERTIFY_SCALE_INV_SQRT_D, 0, 0.25, 2.0},
                           {600, 4, 0, PR_CERTIFY_SCALE_INV_D, 1, 0.0, 2.0}};
    for (int k = 0; k < 2; k++) {
        const wcfg_t *c = cfgs + k;
        size_t nd = (size_t)c->n * c->d;
        pr_posw_t W;
        double *Q = grad_case(W, c, rng), *K = Q + nd, *V = K + nd, *dO = V + nd, *G = dO + nd;
        to_f32(G, G, nd);
        pr_certify_problem_t pb;
        pr_certify_opts_t op;
        wprob_of(&pb, c);
        pr_certify_opts_default(&op);
        op.max_fallback_s = 0.0;
        pr_certify_result_t r0[3], r[3];
        PR_CHECK_OK(pr_certify_backward_heads_posw(r0, G, NULL, NULL, Q, K, V, dO, W, 1, 1, 1, c->n, c->d, &pb, &op));
        op.atol = r0[0].lower + 0.3 * (r0[0].upper - r0[0].lower);
        PR_CHECK_OK(pr_certify_backward_heads_posw(r0, G, NULL, NULL, Q, K, V, dO, W, 1, 1, 1, c->n, c->d, &pb, &op));
        op.max_fallback_s = 60.0;
        PR_CHECK_OK(pr_certify_backward_heads_posw(r, G, NULL, NULL, Q, K, V, dO, W, 1, 1, 1, c->n, c->d, &pb, &op));
        PR_CHECK(r0[0].verdict == PR_CERT_UNKNOWN && r[0].verdict != PR_CERT_UNKNOWN && r[0].rows_fallback >= 1 &&
                 r[0].rows_fallback < c->n && r[0].lower <= r0[0].upper && r0[0].lower <= r[0].upper,
                 "n %d: atol %.17g: double pass [%.17g, %.17g] verdict %d; with dQ rows in Arb [%.17g, %.17g] verdict "
                 "%d (%ld rows)", c->n, op.atol, r0[0].lower, r0[0].upper, r0[0].verdict, r[0].lower, r[0].upper,
                 r[0].verdict, r[0].rows_fallback);
        if (c->n <= 40) {
            double hl, hh;
            PR_CHECK_OK(hiprec_max(&hl, &hh, G, Q, K, V, dO, W, c)); /* dK, dV: double, far below dQ's float32 */
            PR_CHECK(r[0].lower <= hh && hl <= r[0].upper && (r[0].verdict == 0 ? hl <= op.atol : hh > op.atol),
                     "n %d: dQ rows in Arb [%.17g, %.17g] verdict %d at atol %.17g vs pr_hiprec [%.17g, %.17g]",
                     c->n, r[0].lower, r[0].upper, r[0].verdict, op.atol, hl, hh);
        }
        pr_posw_clear(W);
        free(Q);
    }
}

/* dK and dV left open by the double pass: the whole group in Arb (L16) decides them where n²·s·g
 * <= 2^25 (against pr_hiprec), and past it the open key rows column by column (L20) */
static void test_group_fallback(pr_rng_t rng)
{
    const wcfg_t cfgs[] = {{24, 6, 1, PR_CERTIFY_SCALE_INV_D, 1, 0.1, 2.0},
                           {400, 16, 0, PR_CERTIFY_SCALE_INV_D, 1, 0.0, 1.0}}; /* 400²·256 > 2^25 */
    for (int k = 0; k < 2; k++) {
        const wcfg_t *c = cfgs + k;
        size_t nd = (size_t)c->n * c->d;
        pr_posw_t W;
        double *Q = grad_case(W, c, rng), *K = Q + nd, *V = K + nd, *dO = V + nd, *G = dO + nd;
        to_f32(G + nd, G + nd, nd);
        pr_certify_problem_t pb;
        pr_certify_opts_t op;
        wprob_of(&pb, c);
        pr_certify_opts_default(&op);
        op.max_fallback_s = 0.0;
        pr_certify_result_t r0[3], r[3];
        PR_CHECK_OK(pr_certify_backward_heads_posw(r0, NULL, G + nd, NULL, Q, K, V, dO, W, 1, 1, 1, c->n, c->d, &pb,
                                                   &op));
        op.atol = r0[1].lower + 0.3 * (r0[1].upper - r0[1].lower);
        PR_CHECK_OK(pr_certify_backward_heads_posw(r0, NULL, G + nd, NULL, Q, K, V, dO, W, 1, 1, 1, c->n, c->d, &pb,
                                                   &op));
        op.max_fallback_s = -1.0;
        PR_CHECK_OK(pr_certify_backward_heads_posw(r, NULL, G + nd, NULL, Q, K, V, dO, W, 1, 1, 1, c->n, c->d, &pb,
                                                   &op));
        PR_CHECK(r0[1].verdict == PR_CERT_UNKNOWN && r0[1].rows_fallback == 0, "n %d: atol %.17g: double pass "
                 "[%.17g, %.17g] verdict %d", c->n, op.atol, r0[1].lower, r0[1].upper, r0[1].verdict);
        if (k == 0) {
            double hl, hh;
            PR_CHECK_OK(hiprec_max(&hl, &hh, G, Q, K, V, dO, W, c)); /* dQ, dV double: dK's error the largest */
            PR_CHECK(r[1].verdict != PR_CERT_UNKNOWN && r[1].rows_fallback == c->n && r[1].lower <= hh &&
                     hl <= r[1].upper && (r[1].verdict == 0 ? hl <= op.atol : hh > op.atol),
                     "n %d: whole group in Arb [%.17g, %.17g] verdict %d (%ld rows) at atol %.17g vs pr_hiprec "
                     "[%.17g, %.17g]", c->n, r[1].lower, r[1].upper, r[1].verdict, r[1].rows_fallback, op.atol, hl, hh);
        } else {
            /* past 2^25 ball operations not the whole group: dK's open key rows by L20's columns (pr_hiprec on this
               dense W would take minutes: test_certify_cols checks L20 against it on W's of RoPE's support) */
            PR_CHECK(r[1].verdict != PR_CERT_UNKNOWN && r[1].rows_fallback >= 1 && r[1].rows_fallback < c->n &&
                     r[1].rows_open == 0 && r[1].lower <= r0[1].upper && r0[1].lower <= r[1].upper &&
                     (r[1].verdict == 0 ? r[1].upper <= op.atol : r[1].lower > op.atol),
                     "n %d, s %d: past 2^25 ball operations, key rows in Arb: verdict %d, %ld of %ld rows, [%.17g, "
                     "%.17g] (double pass [%.17g, %.17g]) at atol %.17g", c->n, W->s, r[1].verdict, r[1].rows_fallback,
                     r[1].rows, r[1].lower, r[1].upper, r0[1].lower, r0[1].upper, op.atol);
        }
        pr_posw_clear(W);
        free(Q);
    }
}

/* n = 1024: the float64 dense backward with W as the reference, within twice its error estimate,
 * for float32- and float16-rounded gradients; the double pass alone decides */
static void test_vs_float64(pr_rng_t rng)
{
    const wcfg_t c = {1024, 16, 1, PR_CERTIFY_SCALE_INV_SQRT_D, 0, 0.05, 2.0};
    size_t nd = (size_t)c.n * c.d;
    double *Q = malloc(sizeof(double) * nd * 10), *K = Q + nd, *V = K + nd, *dO = V + nd, *G = dO + nd, *C = G + 3 * nd;
    fill(Q, 3 * nd, c.B, rng);
    fill(dO, nd, 1.0, rng);
    pr_posw_t W;
    PR_CHECK_OK(random_w(W, c.n, c.d, 0, rng));
    pr_dense_err_t est;
    PR_CHECK_OK(dense_grads(G, &est, Q, K, V, dO, W, &c));
    double e64[3] = {est.dq, est.dk, est.dv};
    pr_certify_problem_t pb;
    wprob_of(&pb, &c);
    for (int dt = PR_CERTIFY_FLOAT32; dt <= PR_CERTIFY_FLOAT16; dt++) {
        double mx[3] = {0, 0, 0};
        for (size_t e = 0; e < 3 * nd; e++) {
            double ul = pr_npy_ulp((pr_npy_dtype_t)dt, G[e]);
            C[e] = dt == PR_CERTIFY_FLOAT32 ? (double)(float)G[e] : nearbyint(G[e] / ul) * ul;
            mx[e / nd] = fmax(mx[e / nd], fabs(C[e] - G[e]));
        }
        pr_certify_opts_t op;
        pr_certify_opts_default(&op);
        op.dtype = dt;
        op.max_fallback_s = 0.0; /* the double pass alone; then with L6's tightening rows */
        pr_certify_result_t r[3], rt[3];
        PR_CHECK_OK(pr_certify_backward_heads_posw(r, C, C + nd, C + 2 * nd, Q, K, V, dO, W, 1, 1, 1, c.n, c.d, &pb,
                                                   &op));
        op.max_fallback_s = -1.0;
        PR_CHECK_OK(pr_certify_backward_heads_posw(rt, C, C + nd, C + 2 * nd, Q, K, V, dO, W, 1, 1, 1, c.n, c.d, &pb,
                                                   &op));
        for (int t = 0; t < 3; t++) {
            PR_CHECK(mx[t] >= r[t].lower - 2 * e64[t] && mx[t] <= r[t].upper + 2 * e64[t] &&
                     r[t].upper <= r[t].lower * 1.001, "dtype %d, %s: float64 reference's %.17g (its error <= ~%.3g) "
                     "outside [%.17g, %.17g]", dt, gname[t], mx[t], e64[t], r[t].lower, r[t].upper);
            PR_CHECK(mx[t] >= rt[t].lower - 2 * e64[t] && mx[t] <= rt[t].upper + 2 * e64[t] &&
                     rt[t].upper - rt[t].lower <= r[t].upper - r[t].lower, "dtype %d, %s tightened: %.17g outside "
                     "[%.17g, %.17g] or wider than the double pass's [%.17g, %.17g]", dt, gname[t], mx[t], rt[t].lower,
                     rt[t].upper, r[t].lower, r[t].upper);
            PR_CHECK(r[t].ulps_upper <= 0.5 * (1 + 1e-3) && r[t].ulps_lower <= r[t].ulps_upper,
                     "dtype %d, %s: a rounded candidate is within half an ulp: [%.17g, %.17g]", dt, gname[t],
                     r[t].ulps_lower, r[t].ulps_upper);
        }
    }
    pr_posw_clear(W);
    free(Q);
}

/* a float32 backward kernel with a general W (every operation in float, math.md §7), with known bugs */
enum { BUG_NONE, BUG_ENTRY, BUG_SCALE, BUG_CAUSAL, BUG_SWAP, BUG_COUNT };
static const char *const bug_name[BUG_COUNT] = {"none", "one W entry", "missing scale", "causal mask",
                                                "dK and dV swapped"};

static void f32_backward(double *G, const double *Q, const double *K, const double *V, const double *dO,
                         const pr_posw_t W, int causal, int bug)
{
    int n = W->n, d = W->d;
    size_t nd = (size_t)n * d;
    float *P = malloc(sizeof(float) * (2 * (size_t)n + 3 * nd)), *dP = P + n, *gq = dP + n, *gk = gq + nd,
          *gv = gk + nd, sig = bug == BUG_SCALE ? 1.0f : 1.0f / (float)d;
    memset(gq, 0, sizeof(float) * 3 * nd);
    for (int i = 0; i < n; i++) {
        int jn = !causal ? n : bug == BUG_CAUSAL ? (i + 2 < n ? i + 2 : n) : i + 1;
        float mx = -INFINITY, sum = 0.0f, D = 0.0f;
        for (int j = 0; j < jn; j++) {
            float t = 0.0f;
            for (int k = 0; k < W->s; k++) {
                float w = (float)pr_posw_at(W, k, (long)i - j) + (bug == BUG_ENTRY && k == 0 ? 0.5f : 0.0f);
                t += (float)Q[(size_t)i * d + W->a[k]] * w * (float)K[(size_t)j * d + W->b[k]];
            }
            P[j] = sig * t;
            mx = P[j] > mx ? P[j] : mx;
        }
        for (int j = 0; j < jn; j++)
            sum += (P[j] = expf(P[j] - mx));
        for (int j = 0; j < jn; j++) {
            float t = 0.0f;
            P[j] /= sum;
            for (int c = 0; c < d; c++)
                t += (float)dO[(size_t)i * d + c] * (float)V[(size_t)j * d + c];
            dP[j] = t;
            D += P[j] * t;
        }
        for (int j = 0; j < jn; j++) {
            float ds = P[j] * (dP[j] - D);
            for (int c = 0; c < d; c++)
                gv[(size_t)j * d + c] += P[j] * (float)dO[(size_t)i * d + c];
            for (int k = 0; k < W->s; k++) {
                float w = (float)pr_posw_at(W, k, (long)i - j) + (bug == BUG_ENTRY && k == 0 ? 0.5f : 0.0f);
                gq[(size_t)i * d + W->a[k]] += sig * ds * w * (float)K[(size_t)j * d + W->b[k]];
                gk[(size_t)j * d + W->b[k]] += sig * ds * w * (float)Q[(size_t)i * d + W->a[k]];
            }
        }
    }
    for (size_t t = 0; t < nd; t++) {
        G[t] = gq[t];
        G[nd + t] = bug == BUG_SWAP ? gv[t] : gk[t];
        G[2 * nd + t] = bug == BUG_SWAP ? gk[t] : gv[t];
    }
    free(P);
}

/* the correct float32 kernel's gradients certified at their certified error (+1%) and refuted below
 * their proved error (-1%); each bug refuted at ten times the correct error */
static void test_kernels(pr_rng_t rng)
{
    const wcfg_t c0 = {96, 8, 0, PR_CERTIFY_SCALE_INV_D, 0, 0.0, 2.0};
    size_t nd = (size_t)c0.n * c0.d;
    double *Q = malloc(sizeof(double) * nd * 7), *K = Q + nd, *V = K + nd, *dO = V + nd, *G = dO + nd;
    fill(Q, 3 * nd, c0.B, rng);
    fill(dO, nd, 1.0, rng);
    pr_posw_t W;
    PR_CHECK_OK(random_w(W, c0.n, c0.d, 0, rng));
    for (int causal = 0; causal < 2; causal++) {
        wcfg_t c = c0;
        c.causal = causal;
        pr_certify_problem_t pb;
        pr_certify_opts_t op;
        wprob_of(&pb, &c);
        pr_certify_opts_default(&op);
        op.dtype = PR_CERTIFY_FLOAT32;
        pr_certify_result_t ok[3], r[3];
        f32_backward(G, Q, K, V, dO, W, causal, BUG_NONE);
        PR_CHECK_OK(pr_certify_backward_heads_posw(ok, G, G + nd, G + 2 * nd, Q, K, V, dO, W, 1, 1, 1, c.n, c.d, &pb,
                                                   &op));
        for (int t = 0; t < 3; t++) {
            const double *cq = t == 0 ? G : NULL, *ck = t == 1 ? G + nd : NULL, *cv = t == 2 ? G + 2 * nd : NULL;
            PR_CHECK(ok[t].lower > 0.0 && ok[t].upper <= ok[t].lower * 1.001, "causal %d, %s: float32 error "
                     "[%.17g, %.17g]", causal, gname[t], ok[t].lower, ok[t].upper);
            op.atol = ok[t].upper * 1.01;
            PR_CHECK_OK(pr_certify_backward_heads_posw(r, cq, ck, cv, Q, K, V, dO, W, 1, 1, 1, c.n, c.d, &pb, &op));
            PR_CHECK(r[t].verdict == 0, "causal %d, %s: atol %.17g above the certified error: verdict %d", causal,
                     gname[t], op.atol, r[t].verdict);
            op.atol = ok[t].lower * 0.99;
            PR_CHECK_OK(pr_certify_backward_heads_posw(r, cq, ck, cv, Q, K, V, dO, W, 1, 1, 1, c.n, c.d, &pb, &op));
            PR_CHECK(r[t].verdict == 1 && r[t].witness_row >= 0, "causal %d, %s: atol %.17g below the proved error: "
                     "verdict %d", causal, gname[t], op.atol, r[t].verdict);
        }
        for (int bug = 1; bug < BUG_COUNT; bug++) {
            if (bug == BUG_CAUSAL && !causal)
                continue;
            f32_backward(G, Q, K, V, dO, W, causal, bug);
            op.atol = 10.0 * max3(ok, 1);
            PR_CHECK_OK(pr_certify_backward_heads_posw(r, G, G + nd, G + 2 * nd, Q, K, V, dO, W, 1, 1, 1, c.n, c.d,
                                                       &pb, &op));
            /* each bug shows in these gradients (a swap in dK and dV; the mask in all three) */
            for (int t = bug == BUG_SWAP ? 1 : 0; t < 3; t++)
                PR_CHECK(r[t].verdict == 1 && r[t].lower > op.atol, "causal %d, bug '%s', %s: verdict %d, error in "
                         "[%.17g, %.17g]", causal, bug_name[bug], gname[t], r[t].verdict, r[t].lower, r[t].upper);
        }
    }
    pr_posw_clear(W);
    free(Q);
}

/* W = I as a general W and --pos identity: both enclose the same truth; statuses: W's sizes, a
 * non-finite W, no W */
static void test_forms(pr_rng_t rng)
{
    const wcfg_t c = {30, 4, 1, PR_CERTIFY_SCALE_INV_D, 0, 0.0, 2.0};
    size_t nd = (size_t)c.n * c.d, L = 2 * (size_t)c.n - 1;
    double *Q = malloc(sizeof(double) * (nd * 7 + L * c.d * c.d)), *K = Q + nd, *V = K + nd, *dO = V + nd,
           *G = dO + nd, *w3 = G + 3 * nd;
    fill(Q, 3 * nd, c.B, rng);
    fill(dO, nd, 1.0, rng);
    pr_posw_t I;
    PR_CHECK_OK(pr_posw_init_identity(I, c.n, c.d));
    PR_CHECK_OK(dense_grads(G, NULL, Q, K, V, dO, I, &c));
    to_f32(G, G, 3 * nd);
    pr_posw_to_dense(w3, I);
    pr_certify_problem_t pb;
    pr_certify_opts_t op;
    wprob_of(&pb, &c);
    pr_certify_opts_default(&op);
    op.max_fallback_s = 0.0;
    pr_certify_result_t rw[3], ri[3];
    PR_CHECK_OK(pr_certify_backward_heads_w(rw, G, G + nd, G + 2 * nd, Q, K, V, dO, w3, 1, 1, 1, c.n, c.d, &pb, &op));
    pb.pos = PR_CERTIFY_POS_IDENTITY;
    PR_CHECK_OK(pr_certify_backward(ri, G, G + nd, G + 2 * nd, Q, K, V, dO, c.n, c.d, &pb, &op));
    for (int t = 0; t < 3; t++)
        PR_CHECK(rw[t].lower <= ri[t].upper && ri[t].lower <= rw[t].upper && rw[t].upper <= rw[t].lower * 1.001,
                 "%s: W = I [%.17g, %.17g] vs --pos identity [%.17g, %.17g]", gname[t], rw[t].lower, rw[t].upper,
                 ri[t].lower, ri[t].upper);
    pr_posw_t W1;
    PR_CHECK_OK(pr_posw_init_identity(W1, c.n + 1, c.d));
    PR_CHECK(pr_certify_backward_heads_posw(rw, G, NULL, NULL, Q, K, V, dO, W1, 1, 1, 1, c.n, c.d, &pb, &op) ==
             PR_ESHAPE, "W for n + 1");
    w3[7] = NAN;
    PR_CHECK(pr_certify_backward_heads_w(rw, G, NULL, NULL, Q, K, V, dO, w3, 1, 1, 1, c.n, c.d, &pb, &op) ==
             PR_ENONFINITE, "a NaN in W");
    PR_CHECK(pr_certify_backward_heads_w(rw, G, NULL, NULL, Q, K, V, dO, NULL, 1, 1, 1, c.n, c.d, &pb, &op) ==
             PR_EINVAL, "no W");
    PR_CHECK(pr_certify_forward_heads_w(rw, G, Q, K, V, NULL, 1, 1, 1, c.n, c.d, &pb, &op) == PR_EINVAL, "no W");
    pr_posw_clear(W1);
    pr_posw_clear(I);
    free(Q);
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_certify_wgrad", 1517));
    test_vs_hiprec(rng);
    test_sharp(rng);
    test_dw(rng);
    test_dq_rows(rng);
    test_group_fallback(rng);
    test_vs_float64(rng);
    test_kernels(rng);
    test_forms(rng);
    return pr_test_finish("test_certify_wgrad");
}
