/* docs/certify.md L21, kernel by kernel, against Arb at 256 bits (the true rotation from L1's balls, σ and the
 * ALiBi bias as real numbers): the double-double scores t_h + t_l within c_t‖Q_i‖‖K_j‖ + tiny_t of a_i·b_j,
 * and the exponentials of row_exps_dd within λ of e^{X_ij} up to the row's common shift (the ratio of any two
 * weights within (1 + λ)/(1 - λ) of the true one). Inputs of entries near 1, near 2^200 (scores about 2^400,
 * below the 2^500 refusal: the exponentials are checked where Δ <= 1/2), near 2^-530 (every product underflows),
 * and without RoPE with a large common part (scores up to about 2^50, O(1) apart: the low parts carry the softmax);
 * RoPE both layouts and none, σ = 1/d or 1/√d, ALiBi or not (2^34: rows whose other keys all underflow). Then
 * whole certificates of scores near 2^54 whose best key's low part puts x_h above 0 (big_low_part). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arb.h>
#include "pr_test.h"
#include "pr_status.h"
#include "pr_rng.h"
#include "pr_certify.h"
#include "pr_certify_impl.h"
#include "test_certify_common.h"

#define PREC 256

typedef struct {
    cfg_t c;  /* causal unused: every key of a row */
    int kind; /* 0: uniform in [-B, B]; 1: a common row of entries in [-B, B] plus uniform in ±2/(B√d) (identity:
                 scores near σ‖c‖², up to about 2^50, O(1) apart) */
} dcase_t;

static void inputs(double *Q, double *K, const dcase_t *dc, pr_rng_t rng)
{
    const cfg_t *c = &dc->c;
    size_t nd = (size_t)c->n * c->d;
    double common[64];
    for (int k = 0; k < c->d; k++)
        common[k] = c->B * (2.0 * pr_rng_uniform(rng) - 1.0);
    for (size_t t = 0; t < 2 * nd; t++) {
        double r = 2.0 * pr_rng_uniform(rng) - 1.0;
        double *x = t < nd ? Q + t : K + (t - nd);
        *x = dc->kind ? common[t % c->d] + 2.0 * r / (c->B * sqrt((double)c->d)) : c->B * r;
    }
}

static void transpose(double *Xt, const double *X, int n, int d)
{
    for (int j = 0; j < n; j++)
        for (int k = 0; k < d; k++)
            Xt[(size_t)k * n + j] = X[(size_t)j * d + k];
}

static void run(const dcase_t *dc, pr_rng_t rng, uint64_t seed)
{
    const cfg_t *c = &dc->c;
    int n = c->n, d = c->d;
    size_t nd = (size_t)n * d;
    double *Q = malloc(sizeof(double) * nd * 9 + sizeof(double) * 3 * n), *K = Q + nd, *V = K + nd, *Qh = V + nd,
           *Ql = Qh + nd, *Kh = Ql + nd, *Kl = Kh + nd, *Kht = Kl + nd, *Klt = Kht + nd, *th = Klt + nd,
           *tl = th + n, *scr = tl + n;
    inputs(Q, K, dc, rng);
    memset(V, 0, sizeof(double) * nd);
    pr_certify_problem_t pb;
    prob_of(&pb, c);
    pr_certify_opts_t op;
    pr_certify_opts_default(&op);
    cert_prob_t p;
    cexp_t ex;
    pass_t ps;
    cert_dd_t dd;
    memset(&ps, 0, sizeof ps);
    PR_CHECK_OK(pr_certify_prob_init(&p, &pb, &op, n, d));
    PR_CHECK_OK(pr_certify_exp_init(&ex, p.u));
    PR_CHECK_OK(pr_certify_pass_setup(&ps, &p, &ex, NULL, Q, K, V, NULL));
    pr_certify_rotate_dd(Qh, Ql, Q, &p);
    pr_certify_rotate_dd(Kh, Kl, K, &p);
    transpose(Kht, Kh, n, d);
    transpose(Klt, Kl, n, d);
    PR_CHECK_OK(pr_certify_dd_setup(&dd, &p, Qh, Kh));
    arb_ptr a = _arb_vec_init(d), B = _arb_vec_init(nd), X = _arb_vec_init(n);
    arb_t sig, t, e, r;
    arb_init(sig);
    arb_init(t);
    arb_init(e);
    arb_init(r);
    pr_certify_sigma_arb(sig, &p, PREC);
    for (int j = 0; j < n; j++)
        pr_certify_rotate_row_arb(B + (size_t)j * d, K + (size_t)j * d, j, &p, PREC);
    for (int i = 0; i < n; i++) {
        pr_certify_rotate_row_arb(a, Q + (size_t)i * d, i, &p, PREC);
        pr_certify_dot2dd_rows(th, tl, Qh + (size_t)i * d, Ql + (size_t)i * d, Kht, Klt, 1, n, n, n, d);
        for (int j = 0; j < n; j++) {
            /* the score: |t_h + t_l - a_i·b_j| <= c_t‖Q_i‖‖K_j‖ + tiny_t */
            arb_dot(t, NULL, 0, a, 1, B + (size_t)j * d, 1, d, PREC);
            arb_mul(X + j, t, sig, PREC);
            pr_certify_bias_arb(e, &p, (long)i - j, PREC);
            arb_add(X + j, X + j, e, PREC);
            cert_sub_d(t, t, th[j], PREC);
            cert_sub_d(t, t, tl[j], PREC);
            arb_abs(t, t);
            double bound = pr_certify_up(pr_certify_up(dd.ct * ps.nQ[i]) * ps.nK[j]) + dd.tiny_t;
            arb_set_d(e, bound);
            PR_CHECK(arb_le(t, e), "n %d d %d pos %d scale %d alibi %g B %g kind %d: score (%d, %d): |t_h + t_l - a·b| "
                     "= %.3g above c_t‖Q‖‖K‖ + tiny_t = %.3g (seed %llu)", n, d, c->pos, c->scale, c->alibi, c->B,
                     dc->kind, i, j, arf_get_d(arb_midref(t), ARF_RND_UP), bound, (unsigned long long)seed);
        }
        rowx_t rx;
        pr_certify_row_exps_dd(&rx, &ps, &dd, i, th, tl, scr, n, n);
        /* scores near 2^400 leave Δ > 1/2 (the row goes to Arb); every other case is bounded */
        PR_CHECK(!rx.fail || c->B > 1e50, "row %d: the pass could not bound it (n %d d %d B %g kind %d)", i, n, d, c->B,
                 dc->kind);
        if (rx.fail)
            continue;
        /* the weights up to the row's shift: ê_j/ê_k vs e^{X_j - X_k}, k the largest weight */
        int k = 0;
        for (int j = 1; j < n; j++)
            k = th[j] > th[k] ? j : k;
        double lam = rx.lmax, q = pr_certify_up((1.0 + lam) / (1.0 - lam) - 1.0);
        for (int j = 0; j < n; j++) {
            if (th[j] == 0.0)
                continue; /* underflowed (L3): below e^-699 */
            arb_sub(t, X + j, X + k, PREC);
            arb_exp(t, t, PREC);
            arb_set_d(r, th[j]);
            cert_div_d(r, r, th[k], PREC);
            arb_div(r, r, t, PREC);
            cert_sub_d(r, r, 1.0, PREC);
            arb_abs(r, r);
            arb_set_d(e, q);
            PR_CHECK(arb_le(r, e), "n %d d %d pos %d scale %d alibi %g B %g kind %d: row %d: ê_%d/ê_%d off by %.3g u "
                     "relative, above (1 + λ)/(1 - λ) - 1 = %.3g u (seed %llu)", n, d, c->pos, c->scale, c->alibi, c->B,
                     dc->kind, i, j, k, arf_get_d(arb_midref(r), ARF_RND_UP) / p.u, q / p.u, (unsigned long long)seed);
        }
    }
    arb_clear(sig);
    arb_clear(t);
    arb_clear(e);
    arb_clear(r);
    _arb_vec_clear(a, d);
    _arb_vec_clear(B, nd);
    _arb_vec_clear(X, n);
    pr_certify_pass_clear(&ps);
    pr_certify_prob_clear(&p);
    free(Q);
}

/* Scores near 2^54 whose softmax lives in their low parts (n = 2, d = 2, identity, σ = 1): Q_i = (q0, 1),
 * K = ((k0, 0), (k0, -δ)), so the scores differ by exactly δ and the best key's low part (the product's
 * bits below 2^54's ulp) is up to 2: its x_h after the shift is positive, outside the exp's first domain
 * (L21; the review's replay certified a dV off by 1.76). dO = 1, so dV_j = 2P_j. The truth rounded to
 * double must not be refuted; a dV with the two rows swapped must not be certified. */
static void big_low_part(pr_rng_t rng, uint64_t seed)
{
    double q0 = 134217729.0 + 2.0 * (double)pr_rng_below(rng, 64), k0 = 134217729.0 + 2.0 * (double)pr_rng_below(rng, 64);
    double dl = 0.25 + 2.0 * pr_rng_uniform(rng);
    double Q[4] = {q0, 1.0, q0, 1.0}, K[4] = {k0, 0.0, k0, -dl}, V[4] = {1.0, 0.0, 0.0, 1.0}, dO[4] = {1, 1, 1, 1};
    arb_t p0, t;
    arb_init(p0);
    arb_init(t);
    arb_set_d(t, dl);
    arb_neg(t, t);
    arb_exp(t, t, PREC); /* P = (1, e^-δ)/(1 + e^-δ) */
    arb_add_ui(p0, t, 1, PREC);
    arb_ui_div(p0, 2, p0, PREC); /* dV row 0 = 2/(1 + e^-δ), row 1 = 2 - that */
    double a = arf_get_d(arb_midref(p0), ARF_RND_NEAR), b = 2.0 - a;
    for (int wrong = 0; wrong < 2; wrong++) {
        double dV[4] = {wrong ? b : a, wrong ? b : a, wrong ? a : b, wrong ? a : b};
        pr_certify_problem_t pb;
        pr_certify_problem_default(&pb);
        pb.pos = PR_CERTIFY_POS_IDENTITY;
        pb.scale = PR_CERTIFY_SCALE_GIVEN;
        pb.sigma = 1.0;
        pr_certify_opts_t op;
        pr_certify_opts_default(&op);
        op.atol = 1e-14;
        op.max_fallback_s = 0.0;
        pr_certify_result_t r[3];
        memset(r, 0, sizeof r);
        int st = pr_certify_backward(r, NULL, NULL, dV, Q, K, V, dO, 2, 2, &pb, &op);
        /* true error: about 1e-16 for the rounded truth, |a - b| for the swapped rows */
        double err = wrong ? fabs(a - b) : 0.0;
        PR_CHECK(st == PR_OK && r[2].lower <= err + 1e-15 && r[2].upper >= err - 1e-15 && (wrong ? r[2].verdict != 0 : r[2].verdict != 1),
                 "q0 %.17g k0 %.17g δ %.17g, dV %s: status %d verdict %d [%.3g, %.3g], true error about %.3g (seed %llu)",
                 q0, k0, dl, wrong ? "rows swapped" : "the truth rounded", st, r[2].verdict, r[2].lower, r[2].upper, err,
                 (unsigned long long)seed);
    }
    arb_clear(p0);
    arb_clear(t);
}

int main(void)
{
    pr_rng_t rng;
    uint64_t seed = pr_test_seed("test_certify_dd", 1520);
    pr_rng_init(rng, seed);
    const dcase_t cases[] = {
        {{24, 8, PR_CERTIFY_POS_ROPE, 0, PR_CERTIFY_SCALE_INV_D, 0.0, 4.0}, 0},
        {{19, 6, PR_CERTIFY_POS_ROPE_NEOX, 0, PR_CERTIFY_SCALE_INV_SQRT_D, 0.375, 3.0}, 0},
        {{17, 5, PR_CERTIFY_POS_IDENTITY, 0, PR_CERTIFY_SCALE_INV_SQRT_D, 0.1, 2.0}, 0},
        {{20, 8, PR_CERTIFY_POS_ROPE, 0, PR_CERTIFY_SCALE_INV_SQRT_D, 0.0, 0x1p200}, 0},
        {{20, 8, PR_CERTIFY_POS_ROPE_NEOX, 0, PR_CERTIFY_SCALE_INV_D, 0.25, 0x1p-530}, 0},
        {{16, 8, PR_CERTIFY_POS_IDENTITY, 0, PR_CERTIFY_SCALE_INV_D, 0.0, 0x1p-530}, 0},
        {{22, 8, PR_CERTIFY_POS_IDENTITY, 0, PR_CERTIFY_SCALE_INV_SQRT_D, 0.0, 0x1p20}, 1},
        {{22, 6, PR_CERTIFY_POS_IDENTITY, 0, PR_CERTIFY_SCALE_INV_D, 0.5, 0x1p21}, 1},
        {{40, 8, PR_CERTIFY_POS_IDENTITY, 0, PR_CERTIFY_SCALE_INV_SQRT_D, 0.0, 0x1p25}, 1},
        /* ALiBi 2^34: every key but the diagonal underflows; their low parts must not fail the row */
        {{16, 4, PR_CERTIFY_POS_ROPE, 0, PR_CERTIFY_SCALE_INV_SQRT_D, 0x1p34 + 1.0 / 3.0, 1.0}, 0},
    };
    for (int rep = 0; rep < 3; rep++)
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
            run(cases + k, rng, seed);
    for (int rep = 0; rep < 8; rep++)
        big_low_part(rng, seed);
    return pr_test_finish("test_certify_dd");
}
