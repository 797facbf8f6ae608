/* pr_certify's double passes where a bound's own product underflows (docs/certify.md L2, L9, L10,
 * L13): inputs near 2^±1000 whose products lose everything below 2^-1074, each against pr_hiprec
 * at 300 bits. Every enclosure must contain the true error of the truth rounded to double, and of
 * a candidate off by 1e-2, with the Arb rows allowed and without them.
 *   - first product: fl(Q·w) underflows to 0 and is then multiplied by K ≈ 2^1000 (σ = 2^76): the
 *     pass sees every score as 0 while the true diagonal scores are about 1 (L13);
 *   - Schur's ω_ℓ = √(r·c) with r·c below 2^-1074 (W ≈ 2^-540, K ≈ 2^580, a cancelling score);
 *   - ε_P = γ_{d+1}‖dO_i‖‖V_j‖ with a subnormal dO row and V ≈ 2^1000 cancelling in dO·V (L10);
 *   - an all-zero W's dw (no support: no division by its size).
 * Each failed before the fix of the bound it names. The mantissas are random (seed printed). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pr_test.h"
#include "pr_status.h"
#include "pr_rng.h"
#include "pr_hiprec.h"
#include "pr_certify.h"

enum { N = 2, D = 2, ND = N * D, L = 2 * N - 1, PREC = 300 };
static const char *const part[5] = {"O", "dQ", "dK", "dV", "dw"};

typedef struct {
    const char *name;
    double Q[ND], K[ND], V[ND], dO[ND], w3[L * D * D], sigma;
    int identity; /* no W: pr_certify_forward / _backward with --pos identity */
} inst_t;

static double mant(pr_rng_t rng) { return 1.0 + pr_rng_uniform(rng); }

/* the truth's balls: O, dQ, dK, dV, dw (dw: s × (2n-1)) */
static int truth(arb_ptr T[5], const inst_t *x, const pr_posw_struct *W)
{
    pr_attn_opts_t ao;
    pr_attn_opts_default(&ao, D);
    ao.sigma = x->sigma;
    int st = pr_hiprec_forward(T[0], x->Q, x->K, x->V, W, N, D, &ao, PREC);
    return st ? st : pr_hiprec_backward(T[1], T[2], T[3], W->s ? T[4] : NULL, x->Q, x->K, x->V, W, x->dO, N, D, &ao, PREC);
}

/* [lo, hi] of the true max |c - truth| */
static void true_err(double *lo, double *hi, const double *c, arb_srcptr T, size_t len)
{
    arb_t e;
    arb_init(e);
    pr_hiprec_max_error(e, c, T, len, PREC);
    *lo = pr_hiprec_lbound_d(e);
    *hi = pr_hiprec_ubound_d(e);
    arb_clear(e);
}

static void check(const inst_t *x, const char *what, const pr_certify_result_t *r, const double *c, arb_srcptr T,
                  size_t len, double atol, int nofb)
{
    double tl, th;
    true_err(&tl, &th, c, T, len);
    /* wrong when provably so: the truth's error outside the enclosure, certified above atol, refuted
     * within it */
    int ok = r->lower <= th && r->upper >= tl && !(r->verdict == PR_CERT_CERTIFIED && tl > atol) &&
             !(r->verdict == PR_CERT_REFUTED && th <= atol);
    PR_CHECK(ok, "%s, %s%s: enclosure [%.17g, %.17g] verdict %d at atol %g vs the truth's [%.17g, %.17g]", x->name,
             what, nofb ? " (no Arb rows)" : "", r->lower, r->upper, r->verdict, atol, tl, th);
}

static void run(const inst_t *x)
{
    pr_posw_t W;
    if (x->identity)
        PR_CHECK_OK(pr_posw_init_identity(W, N, D));
    else
        PR_CHECK_OK(pr_posw_init_dense(W, x->w3, N, D));
    arb_ptr T[5];
    size_t len[5] = {ND, ND, ND, ND, (size_t)(W->s ? W->s : 1) * L};
    for (int t = 0; t < 5; t++)
        T[t] = _arb_vec_init((slong)len[t]);
    PR_CHECK_OK(truth(T, x, W));
    pr_certify_problem_t pb;
    pr_certify_problem_default(&pb);
    pb.pos = PR_CERTIFY_POS_IDENTITY;
    pb.scale = PR_CERTIFY_SCALE_GIVEN;
    pb.sigma = x->sigma;
    /* candidates: the truth rounded, and that minus 1e-2 (atol 1e-2 + 1e-5: the verdict must follow) */
    double C[5][ND * 4];
    for (int off = 0; off < 2; off++) {
        for (int t = 0; t < 5; t++)
            for (size_t k = 0; k < len[t]; k++)
                C[t][k] = arf_get_d(arb_midref(T[t] + k), ARF_RND_NEAR) - (off && k == 0 ? 1e-2 : 0.0);
        for (int nofb = 0; nofb < 2; nofb++) {
            pr_certify_opts_t op;
            pr_certify_opts_default(&op);
            op.atol = off ? 1e-2 + 1e-5 : 0.0;
            op.max_fallback_s = nofb ? 0.0 : -1.0;
            pr_certify_result_t r, g[4];
            if (x->identity) {
                PR_CHECK_OK(pr_certify_forward(&r, C[0], x->Q, x->K, x->V, N, D, &pb, &op));
                PR_CHECK_OK(pr_certify_backward(g, C[1], C[2], C[3], x->Q, x->K, x->V, x->dO, N, D, &pb, &op));
            } else {
                PR_CHECK_OK(pr_certify_forward_posw(&r, C[0], x->Q, x->K, x->V, W, N, D, &pb, &op));
                PR_CHECK_OK(pr_certify_backward_dw(g, C[1], C[2], C[3], C[4], x->Q, x->K, x->V, x->dO,
                                                   W, 1, N, D, &pb, &op));
            }
            check(x, part[0], &r, C[0], T[0], len[0], op.atol, nofb);
            for (int t = 0; t < (x->identity || !W->s ? 3 : 4); t++)
                check(x, part[t + 1], g + t, C[t + 1], T[t + 1], len[t + 1], op.atol, nofb);
        }
    }
    for (int t = 0; t < 5; t++)
        _arb_vec_clear(T[t], (slong)len[t]);
    pr_posw_clear(W);
}

static double *w_at(inst_t *x, int l, int a, int b) { return x->w3 + ((size_t)(l + N - 1) * D + a) * D + b; }

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_certify_underflow", 1518));
    for (int trial = 0; trial < 3; trial++) {
        inst_t a = {.name = "fl(Q·w) underflows, times K ≈ 2^1000", .sigma = 0x1p76};
        *w_at(&a, 0, 0, 0) = ldexp(mant(rng), -537);
        for (int i = 0; i < N; i++) {
            a.Q[i * D] = ldexp(mant(rng), -541);
            a.K[i * D] = ldexp(mant(rng), 999);
            a.V[i * D + i] = 1.0;
        }
        a.dO[0] = 1.0;
        run(&a);

        inst_t b = {.name = "Schur's omega below 2^-1074", .sigma = M_SQRT1_2};
        b.Q[0] = mant(rng), b.Q[1] = mant(rng), b.Q[2] = 1.0;
        b.K[0] = ldexp(mant(rng), 580), b.K[1] = ldexp(mant(rng), 580);
        double wa = ldexp(mant(rng), -541);
        *w_at(&b, 0, 0, 0) = wa;
        /* -wb cancels wa's term to about 2^-50 of it: the score's rounding is then most of it */
        *w_at(&b, 0, 1, 1) = -(b.Q[0] * ldexp(wa, 540) * ldexp(b.K[0], -580)) / (b.Q[1] * ldexp(b.K[1], -580)) *
                             0x1p-540 * (1.0 + 0x1p-50);
        b.V[0] = b.V[3] = 1.0;
        b.dO[0] = 1.0;
        run(&b);

        inst_t c = {.name = "subnormal dO row, dO·V cancelling", .sigma = M_SQRT1_2, .identity = 1};
        c.K[0] = c.K[3] = 1.0;
        double m0 = mant(rng), m1 = mant(rng), mv = mant(rng);
        c.dO[0] = ldexp(m0, -1041), c.dO[1] = ldexp(m1, -1041);
        c.V[0] = ldexp(mv, 999);
        c.V[1] = -ldexp(m0 * mv / m1 * (1.0 + 0x1p-50), 999);
        run(&c);
    }
    inst_t z = {.name = "all-zero W", .sigma = 0.5};
    for (int k = 0; k < ND; k++)
        z.Q[k] = z.K[k] = z.V[k] = z.dO[k] = 1.0 + k;
    run(&z);
    return pr_test_finish("test_certify_underflow");
}
