/* Checks against the high-precision Arb reference (pr_hiprec): C6, C9, C11, C14, G1, G2. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "check_impl.h"

#define DEFAULT_PREC 256
/* in a check (opts in scope): the precision it runs at */
#define PREC (opts->prec ? (slong)opts->prec : (slong)DEFAULT_PREC)
/* two enclosures of the same real number differ by less than this at PREC bits */
#define TINY_EXP (-100)

/* ok flag from a three-way verdict of "x ≤ y"; an infinite or NaN tolerance y proves nothing
 * (the observed ratio x/y would read 0 against a normalised bound of 1): a failure */
static int le3(const arb_t x, const arb_t y)
{
    return arb_is_finite(y) ? pr_check_ok(pr_hiprec_verdict(x, y)) : 0;
}

/* upper bound of x / y as a double */
static double ratio_ub(const arb_t x, const arb_t y)
{
    arb_t r;
    arb_init(r);
    arb_div(r, x, y, DEFAULT_PREC);
    double v = pr_hiprec_ubound_d(r);
    arb_clear(r);
    return v;
}

static void tiny(arb_t t)
{
    arb_one(t);
    arb_mul_2exp_si(t, t, TINY_EXP);
}

/* C6: max|M| ≤ R from the data. Every third trial is the tight instance W = I, Q = K = B. */
int pr_check_c6(pr_check_result_t *res, const pr_check_opts_t *opts)
{
    pr_rng_t rng;
    for (long trial = 0; trial < opts->trials; trial++) {
        if (!pr_check_trial(res, rng, 0xC6, trial))
            continue;
        int tight = trial % 3 == 0, n = pr_inst_int(rng, 2, 16), d = 2 * pr_inst_int(rng, 1, 4);
        double B = pr_rng_range(rng, 0.25, 3.0);
        pr_inst_t I;
        int st = pr_inst_init(&I, n, d, B, tight ? PR_POS_IDENTITY : pr_inst_random_kind(rng),
                              pr_inst_random_mask(rng, 1), rng);
        if (st)
            return st;
        if (tight)
            for (int i = 0; i < n * d; i++)
                I.Q[i] = I.K[i] = B;
        pr_inst_dump(res, &I);
        arb_ptr M = _arb_vec_init((slong)n * n);
        arb_t R, mx, t;
        arb_init(R);
        arb_init(mx);
        arb_init(t);
        st = pr_hiprec_scores(M, I.Q, I.K, I.W, n, d, &I.opts, PREC);
        if (!st) {
            arb_zero(mx);
            for (int i = 0; i < n * n; i++) {
                arb_abs(t, M + i);
                arb_max(mx, mx, t, PREC);
            }
            pr_inst_R_arb(R, &I, PREC);
            pr_check_observe(res, tight ? "tight" : I.config, ratio_ub(mx, R), 1.0, le3(mx, R));
        }
        arb_clear(R);
        arb_clear(mx);
        arb_clear(t);
        _arb_vec_clear(M, (slong)n * n);
        pr_inst_clear(&I);
        if (st)
            return st;
    }
    pr_check_note(res, "the tight instances (W = I, Q = K = B) reach max|M| = R exactly");
    return PR_OK;
}

/* C9: P = Taylor polynomial of degree g (double coefficients, exact as given), ε_A certified
 * (pr_taylor_eps_A); Õ and O are Arb enclosures. Then the fast paths end to end (pr_control_forward_fft,
 * pr_control_forward_lowrank for target eps) against the Arb O, within the bound they report. */
/* The fast paths for a random target eps and polynomial kind, against the Arb O, within the
 * bound each reports (2 poly_err/(1 - poly_err)‖V‖∞ + floor: poly_err is pr_expoly's estimate).
 * A refusal (PR_EFLOOR, PR_EDOMAIN, PR_EBUDGET) is the documented behaviour, counted apart. */
static int c9_fast(pr_check_result_t *res, const pr_inst_t *I, pr_rng_t rng, long *refused, int counted)
{
    const pr_check_opts_t *opts = res->opts;
    int n = I->n, d = I->d;
    size_t nd = (size_t)n * d;
    pr_control_opts_t fo;
    pr_control_opts_default(&fo);
    fo.eps = pow(10.0, -pr_rng_range(rng, 2.0, 6.0));
    fo.kind = (pr_expoly_kind_t)pr_rng_below(rng, 3);
    pr_check_put_d(res, "fast_eps", fo.eps);
    pr_check_put(res, "fast_poly", "%s", pr_expoly_kind_name(fo.kind));
    arb_ptr O = _arb_vec_init((slong)nd);
    double *Of = malloc(sizeof(double) * nd);
    int st = pr_hiprec_forward(O, I->Q, I->K, I->V, I->W, n, d, &I->opts, PREC);
    for (int path = 0; !st && path < 2; path++) {
        if (path == 1 && (!pr_lowrank_applies(I->W) || I->opts.beta))
            continue;
        pr_control_info_t info;
        int fs = path ? pr_control_forward_lowrank(Of, &info, I->Q, I->K, I->V, I->W, n, d, &I->opts, &fo)
                      : pr_control_forward_fft(Of, &info, I->Q, I->K, I->V, I->W, n, d, &I->opts, &fo);
        if (fs == PR_EFLOOR || fs == PR_EDOMAIN || fs == PR_EBUDGET) {
            (*refused)++;
            continue;
        }
        if ((st = fs))
            break;
        arb_t err, b;
        arb_init(err);
        arb_init(b);
        pr_hiprec_max_error(err, Of, O, nd, PREC);
        arb_set_d(b, info.bound);
        char cfg[PR_CHECK_CONFIG_LEN];
        snprintf(cfg, sizeof cfg, "%s/%s", path ? "lowrank" : "fft", pr_expoly_kind_name(fo.kind));
        /* the trial's first observation counts it (its reference part may have had ε_A ≥ 1) */
        (counted ? pr_check_observe_part : pr_check_observe)(res, cfg, ratio_ub(err, b), 1.0,
                                                              info.bound <= fo.eps ? le3(err, b) : 0);
        counted = 1;
        arb_clear(err);
        arb_clear(b);
    }
    _arb_vec_clear(O, (slong)nd);
    free(Of);
    return st;
}

int pr_check_c9(pr_check_result_t *res, const pr_check_opts_t *opts)
{
    pr_rng_t rng;
    long refused = 0;
    for (long trial = 0; trial < opts->trials; trial++) {
        if (!pr_check_trial(res, rng, 0xC9, trial))
            continue;
        pr_inst_t I;
        int st = pr_inst_random(&I, rng, 12, 2, 0.3, 1.6, 1);
        if (st)
            return st;
        int n = I.n, d = I.d;
        arb_t R, epsA, t, bound, diff;
        arb_init(R);
        arb_init(epsA);
        arb_init(t);
        arb_init(bound);
        arb_init(diff);
        pr_inst_R_arb(R, &I, PREC);
        /* g from 1 to 12: ε_A from near 1 down to rounding level */
        int g = pr_inst_int(rng, 1, 12);
        double *c = malloc(sizeof(double) * (g + 1));
        pr_taylor_d(c, g);
        pr_inst_dump(res, &I);
        pr_check_put_vec(res, "coef", c, 1, g + 1);
        pr_taylor_eps_A(epsA, c, g, R, PREC);
        arb_one(t);
        int counted = 0;
        if (arb_lt(epsA, t)) {
            /* bound = 2 ε_A/(1-ε_A) ‖V‖∞ */
            arb_sub(t, t, epsA, PREC);
            arb_div(bound, epsA, t, PREC);
            arb_mul_2exp_si(bound, bound, 1);
            arb_set_d(t, pr_vec_max_abs(I.V, (size_t)n * d));
            arb_mul(bound, bound, t, PREC);
            arb_ptr O = _arb_vec_init((slong)n * d), Op = _arb_vec_init((slong)n * d);
            pr_attn_opts_t po = I.opts;
            po.poly = c;
            po.poly_degree = g;
            st = pr_hiprec_forward(O, I.Q, I.K, I.V, I.W, n, d, &I.opts, PREC);
            if (!st)
                st = pr_hiprec_forward(Op, I.Q, I.K, I.V, I.W, n, d, &po, PREC);
            if (!st) {
                pr_hiprec_max_diff(diff, Op, O, (size_t)n * d, PREC);
                pr_check_observe(res, I.config, ratio_ub(diff, bound), 1.0, le3(diff, bound));
                counted = 1;
            }
            _arb_vec_clear(O, (slong)n * d);
            _arb_vec_clear(Op, (slong)n * d);
        }
        if (!st)
            st = c9_fast(res, &I, rng, &refused, counted);
        free(c);
        arb_clear(R);
        arb_clear(epsA);
        arb_clear(t);
        arb_clear(bound);
        arb_clear(diff);
        pr_inst_clear(&I);
        if (st)
            return st;
    }
    pr_check_note(res, "reference: P = Taylor, g in [1,12], certified eps_A < 1; fast paths: eps in [1e-6, 1e-2], "
                       "%ld runs refused (floor/domain/budget)", refused);
    return PR_OK;
}

/* C11, float: (R_i Q_i)·(R_j K_j) from pr_rope_rotate against Σ Q_ia w_ab(i-j) K_jb from
 * pr_posw, within 64·2d·(n+4)·u·B² (2d products of size ≤ B², each side's angles accurate to
 * about n·u, as in tests/test_rope.c). Arb: both sides with exact angles base^{-2k/d}·m must
 * agree to 2^-100 (certified). Worst = the larger of the two ratios. */
int pr_check_c11(pr_check_result_t *res, const pr_check_opts_t *opts)
{
    pr_rng_t rng;
    for (long trial = 0; trial < opts->trials; trial++) {
        if (!pr_check_trial(res, rng, 0xC11, trial))
            continue;
        int n = pr_inst_int(rng, 2, 24), d = 2 * pr_inst_int(rng, 1, 4);
        double B = pr_rng_range(rng, 0.5, 2.0);
        double base = trial % 2 ? PR_ROPE_BASE_DEFAULT : pr_rng_range(rng, 2.0, 500.0);
        pr_rope_layout_t layout = pr_rng_below(rng, 2) ? PR_ROPE_NEOX : PR_ROPE_INTERLEAVED;
        size_t nd = (size_t)n * d;
        double *Qr = malloc(sizeof(double) * nd), *Kr = malloc(sizeof(double) * nd);
        pr_problem_t P;
        pr_problem_init(P);
        int st = Qr && Kr ? pr_problem_generate(P, rng, n, d, B, layout == PR_ROPE_NEOX ? PR_POS_ROPE_NEOX : PR_POS_ROPE,
                                                base, 0) : PR_ENOMEM;
        if (st) {
            free(Qr); free(Kr);
            return st;
        }
        const double *Q = P->Q, *K = P->K;
        const pr_posw_struct *W = P->W;
        pr_check_put(res, "n", "%d", n);
        pr_check_put(res, "d", "%d", d);
        pr_check_put_d(res, "base", base);
        pr_check_put(res, "layout", "%s", layout == PR_ROPE_NEOX ? "neox" : "interleaved");
        pr_check_put_vec(res, "Q", Q, n, d);
        pr_check_put_vec(res, "K", K, n, d);
        st = pr_rope_rotate(Qr, Q, n, d, base, layout, 1);
        if (!st)
            st = pr_rope_rotate(Kr, K, n, d, base, layout, 1);
        if (st) {
            pr_problem_clear(P);
            free(Qr); free(Kr);
            return st;
        }
        double err = 0.0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double lhs = 0, rhs = 0;
                for (int a = 0; a < d; a++)
                    lhs += Qr[i * d + a] * Kr[j * d + a];
                for (int t = 0; t < W->s; t++)
                    rhs += Q[i * d + W->a[t]] * pr_posw_at(W, t, i - j) * K[j * d + W->b[t]];
                err = fmax(err, fabs(lhs - rhs));
            }
        double tol = 64.0 * (2 * d) * (n + 4) * DBL_EPSILON * B * B;
        /* Arb: with φ = (j-i)θ_k, q·R_{j-i}k per pair against the dot of rotated pairs */
        arb_t th, ang, c, s, lhs, rhs, diff, t, u, e, tn;
        arb_init(th); arb_init(ang); arb_init(c); arb_init(s); arb_init(lhs); arb_init(rhs);
        arb_init(diff); arb_init(t); arb_init(u); arb_init(e); arb_init(tn);
        arb_zero(diff);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                arb_zero(lhs);
                arb_zero(rhs);
                for (int k = 0; k < d / 2; k++) {
                    int x, y;
                    pr_rope_pair(&x, &y, k, d, layout);
                    arb_set_d(th, base);
                    arb_set_si(e, -2 * k);
                    arb_div_si(e, e, d, PREC);
                    arb_pow(th, th, e, PREC);
                    double qx = Q[i * d + x], qy = Q[i * d + y], kx = K[j * d + x], ky = K[j * d + y];
                    /* rotated q by iθ, k by jθ, dotted */
                    arb_t rq[2], rk[2];
                    for (int z = 0; z < 2; z++) {
                        arb_init(rq[z]);
                        arb_init(rk[z]);
                    }
                    arb_mul_si(ang, th, i, PREC);
                    arb_sin_cos(s, c, ang, PREC);
                    arb_set_d(t, qx); arb_mul(rq[0], t, c, PREC); arb_set_d(t, -qy); arb_addmul(rq[0], t, s, PREC);
                    arb_set_d(t, qx); arb_mul(rq[1], t, s, PREC); arb_set_d(t, qy); arb_addmul(rq[1], t, c, PREC);
                    arb_mul_si(ang, th, j, PREC);
                    arb_sin_cos(s, c, ang, PREC);
                    arb_set_d(t, kx); arb_mul(rk[0], t, c, PREC); arb_set_d(t, -ky); arb_addmul(rk[0], t, s, PREC);
                    arb_set_d(t, kx); arb_mul(rk[1], t, s, PREC); arb_set_d(t, ky); arb_addmul(rk[1], t, c, PREC);
                    arb_addmul(lhs, rq[0], rk[0], PREC);
                    arb_addmul(lhs, rq[1], rk[1], PREC);
                    /* q·R_{j-i}k = qx(kx cos φ - ky sin φ) + qy(kx sin φ + ky cos φ) */
                    arb_mul_si(ang, th, j - i, PREC);
                    arb_sin_cos(s, c, ang, PREC);
                    arb_set_d(t, kx); arb_mul(u, t, c, PREC); arb_set_d(t, -ky); arb_addmul(u, t, s, PREC);
                    arb_set_d(t, qx); arb_addmul(rhs, t, u, PREC);
                    arb_set_d(t, kx); arb_mul(u, t, s, PREC); arb_set_d(t, ky); arb_addmul(u, t, c, PREC);
                    arb_set_d(t, qy); arb_addmul(rhs, t, u, PREC);
                    for (int z = 0; z < 2; z++) {
                        arb_clear(rq[z]);
                        arb_clear(rk[z]);
                    }
                }
                arb_sub(t, lhs, rhs, PREC);
                arb_abs(t, t);
                arb_max(diff, diff, t, PREC);
            }
        tiny(tn);
        double ra = ratio_ub(diff, tn), rf = err / tol;
        int ok = err <= tol ? le3(diff, tn) : 0;
        pr_check_observe(res, layout == PR_ROPE_NEOX ? "rope-neox" : "rope", fmax(ra, rf), 1.0, ok);
        arb_clear(th); arb_clear(ang); arb_clear(c); arb_clear(s); arb_clear(lhs); arb_clear(rhs);
        arb_clear(diff); arb_clear(t); arb_clear(u); arb_clear(e); arb_clear(tn);
        pr_problem_clear(P);
        free(Qr); free(Kr);
    }
    return PR_OK;
}

/* C14: the reference with W = I (s = d sequences of ones) against plain attention
 * softmax(σ Q Kᵀ + β) V written out directly; both Arb enclosures of the same reals. */
int pr_check_c14(pr_check_result_t *res, const pr_check_opts_t *opts)
{
    pr_rng_t rng;
    for (long trial = 0; trial < opts->trials; trial++) {
        if (!pr_check_trial(res, rng, 0xC14, trial))
            continue;
        int n = pr_inst_int(rng, 2, 16), d = pr_inst_int(rng, 1, 8);
        pr_inst_t I;
        int st = pr_inst_init(&I, n, 2 * ((d + 1) / 2), pr_rng_range(rng, 0.3, 3.0), PR_POS_IDENTITY,
                              pr_inst_random_mask(rng, 1), rng);
        if (st)
            return st;
        d = I.d;
        pr_inst_dump(res, &I);
        size_t nd = (size_t)n * d;
        arb_ptr O = _arb_vec_init((slong)nd), Op = _arb_vec_init((slong)nd);
        arb_ptr q = _arb_vec_init((slong)nd), k = _arb_vec_init((slong)nd), v = _arb_vec_init((slong)nd);
        arb_ptr a = _arb_vec_init(n);
        arb_t S, D, t, diff, tn;
        arb_init(S); arb_init(D); arb_init(t); arb_init(diff); arb_init(tn);
        st = pr_hiprec_forward(O, I.Q, I.K, I.V, I.W, n, d, &I.opts, PREC);
        pr_hiprec_set_d_vec(q, I.Q, nd);
        pr_hiprec_set_d_vec(k, I.K, nd);
        pr_hiprec_set_d_vec(v, I.V, nd);
        for (int i = 0; !st && i < n; i++) {
            arb_zero(D);
            for (int j = 0; j < n; j++) {
                if (I.opts.causal && j > i) {
                    arb_zero(a + j);
                    continue;
                }
                arb_dot(S, NULL, 0, q + (size_t)i * d, 1, k + (size_t)j * d, 1, d, PREC);
                arb_set_d(t, I.opts.sigma);
                arb_mul(S, S, t, PREC);
                if (I.opts.beta) {
                    arb_set_d(t, I.opts.beta[i - j + n - 1]);
                    arb_add(S, S, t, PREC);
                }
                arb_exp(a + j, S, PREC);
                arb_add(D, D, a + j, PREC);
            }
            for (int c = 0; c < d; c++) {
                arb_dot(t, NULL, 0, a, 1, v + c, d, n, PREC);
                arb_div(Op + (size_t)i * d + c, t, D, PREC);
            }
        }
        double *Od = malloc(sizeof(double) * nd);
        if (!st)
            st = pr_dense_forward(Od, NULL, I.Q, I.K, I.V, I.W, n, d, &I.opts);
        if (!st) {
            /* reference with W = I against plain attention: equal to 2^-100 (certified) */
            pr_hiprec_max_diff(diff, O, Op, nd, PREC);
            tiny(tn);
            int ok = le3(diff, tn);
            double ra = ratio_ub(diff, tn);
            /* the dense double path with W = I against plain attention: within its rounding */
            arb_t tol;
            arb_init(tol);
            arb_set_d(tol, pr_check_dense_tol(I.B * I.B, I.B, I.W->s, n, 0));
            pr_hiprec_max_error(diff, Od, Op, nd, PREC);
            int okd = le3(diff, tol);
            double rd = ratio_ub(diff, tol);
            arb_clear(tol);
            char cfg[PR_CHECK_CONFIG_LEN + 8];
            pr_check_observe(res, I.config, ra, 1.0, ok);
            snprintf(cfg, sizeof cfg, "%s/dense", I.config);
            pr_check_observe_part(res, cfg, rd, 1.0, okd);
        }
        free(Od);
        arb_clear(S); arb_clear(D); arb_clear(t); arb_clear(diff); arb_clear(tn);
        _arb_vec_clear(O, (slong)nd);
        _arb_vec_clear(Op, (slong)nd);
        _arb_vec_clear(q, (slong)nd);
        _arb_vec_clear(k, (slong)nd);
        _arb_vec_clear(v, (slong)nd);
        _arb_vec_clear(a, n);
        pr_inst_clear(&I);
        if (st)
            return st;
    }
    return PR_OK;
}

/* A scalar loss of a step t along a direction, for central differences. */
typedef int (*loss_fn)(arb_t L, const arb_t t, void *ctx, slong prec);

/* D(h) = (L(h) - L(-h))/2h against gu = <closed-form gradient, direction>. The truncation
 * error of D(h) is c h² + O(h⁴) and D(2h) - D(h) = 3c h² + O(h⁴), so
 * tol = 4|D(2h) - D(h)| + 2^-100 (1 + |gu|) bounds it with room (h = 2^-30: h⁴ ≈ 2^-120).
 * Sets the ok flag and *ratio = upper bound of |D(h) - gu| / tol; returns the loss's status
 * (an error is the check's error, never an "unknown"). */
static int cdiff_compare(int *ok, double *ratio, loss_fn f, void *ctx, const arb_t gu, slong prec)
{
    arb_t t, Lp, Lm, D1, D2, err, tol, x;
    arb_init(t); arb_init(Lp); arb_init(Lm); arb_init(D1); arb_init(D2); arb_init(err);
    arb_init(tol); arb_init(x);
    int st = PR_OK;
    *ok = 0;
    arb_ptr D[2] = {D1, D2};
    for (int r = 0; r < 2; r++) {
        arb_one(t);
        arb_mul_2exp_si(t, t, -30 + r);
        if ((st = f(Lp, t, ctx, prec)))
            goto done;
        arb_neg(t, t);
        if ((st = f(Lm, t, ctx, prec)))
            goto done;
        arb_sub(D[r], Lp, Lm, prec);
        arb_mul_2exp_si(D[r], D[r], 30 - r - 1);
    }
    arb_sub(err, D1, gu, prec);
    arb_abs(err, err);
    arb_sub(tol, D2, D1, prec);
    arb_abs(tol, tol);
    arb_mul_2exp_si(tol, tol, 2);
    arb_abs(x, gu);
    arb_add_si(x, x, 1, prec);
    arb_mul_2exp_si(x, x, TINY_EXP);
    arb_add(tol, tol, x, prec);
    /* tol's own ball: within its lower end is a pass, beyond its upper end a failure, between
     * undecided (at low precision tol's ball is wide: its lower end alone would refute) */
    arb_get_lbound_arf(arb_midref(x), tol, prec);
    mag_zero(arb_radref(x));
    *ok = arb_le(err, x) ? 1 : arb_gt(err, tol) ? 0 : -1;
    *ratio = ratio_ub(err, x);
done:
    arb_clear(t); arb_clear(Lp); arb_clear(Lm); arb_clear(D1); arb_clear(D2); arb_clear(err);
    arb_clear(tol); arb_clear(x);
    return st;
}

/* G1: L = Σ dO ∘ O(Q + t uQ, K + t uK, V + t uV, w + t uw). */
typedef struct {
    const pr_inst_t *I;
    arb_srcptr x, u, dO;   /* x = [Q K V w], u = direction, same layout */
    size_t nd, sw;
} g1_ctx;

static int g1_loss(arb_t L, const arb_t t, void *vctx, slong prec)
{
    g1_ctx *c = vctx;
    size_t len = 3 * c->nd + c->sw;
    arb_ptr y = _arb_vec_init((slong)len), O = _arb_vec_init((slong)c->nd);
    for (size_t i = 0; i < len; i++) {
        arb_set(y + i, c->x + i);
        arb_addmul(y + i, t, c->u + i, prec);
    }
    int st = pr_hiprec_forward_arb(O, NULL, y, y + c->nd, y + 2 * c->nd, y + 3 * c->nd, c->I->W,
                                   c->I->n, c->I->d, &c->I->opts, prec);
    arb_dot(L, NULL, 0, c->dO, 1, O, 1, (slong)c->nd, prec);
    _arb_vec_clear(y, (slong)len);
    _arb_vec_clear(O, (slong)c->nd);
    return st;
}

int pr_check_g1(pr_check_result_t *res, const pr_check_opts_t *opts)
{
    pr_rng_t rng;
    for (long trial = 0; trial < opts->trials; trial++) {
        if (!pr_check_trial(res, rng, 0x61, trial))
            continue;
        pr_inst_t I;
        int st = pr_inst_random(&I, rng, 6, 2, 0.3, 1.5, 1);
        if (st)
            return st;
        int n = I.n, d = I.d;
        size_t nd = (size_t)n * d, sw = (size_t)I.W->s * (2 * (size_t)n - 1), len = 3 * nd + sw;
        arb_ptr x = _arb_vec_init((slong)len), u = _arb_vec_init((slong)len), g = _arb_vec_init((slong)len);
        arb_ptr dO = _arb_vec_init((slong)nd);
        double *tmp = malloc(sizeof(double) * len);
        pr_hiprec_set_d_vec(x, I.Q, nd);
        pr_hiprec_set_d_vec(x + nd, I.K, nd);
        pr_hiprec_set_d_vec(x + 2 * nd, I.V, nd);
        pr_hiprec_set_d_vec(x + 3 * nd, I.W->w, sw);
        pr_rng_fill(tmp, (long)len, 1.0, rng);
        pr_hiprec_set_d_vec(u, tmp, len);
        pr_inst_dump(res, &I);
        pr_check_put_vec(res, "u", tmp, 1, (long)len);
        pr_rng_fill(tmp, (long)nd, 1.0, rng);
        pr_hiprec_set_d_vec(dO, tmp, nd);
        pr_check_put_vec(res, "dO", tmp, n, d);
        st = pr_hiprec_backward_arb(g, g + nd, g + 2 * nd, g + 3 * nd, NULL, x, x + nd, x + 2 * nd,
                                    x + 3 * nd, dO, I.W, n, d, &I.opts, PREC);
        /* the dense double backward against the closed form in Arb */
        double *gd = malloc(sizeof(double) * len), *Od = malloc(sizeof(double) * nd);
        double *lse = malloc(sizeof(double) * n), rd = INFINITY;
        int okd = 0;
        if (!st)
            st = pr_dense_forward(Od, lse, I.Q, I.K, I.V, I.W, n, d, &I.opts);
        if (!st)
            st = pr_dense_backward(gd, gd + nd, gd + 2 * nd, gd + 3 * nd, I.Q, I.K, I.V, I.W, Od, lse,
                                   tmp, n, d, &I.opts);
        if (!st) {
            arb_t err, tol;
            arb_init(err);
            arb_init(tol);
            arb_set_d(tol, pr_check_dense_tol(pr_posw_max_rowsum(I.W) * I.opts.sigma * I.B * I.B, I.B,
                                              I.W->s, n, 1));
            pr_hiprec_max_error(err, gd, g, len, PREC);
            okd = le3(err, tol);
            rd = ratio_ub(err, tol);
            arb_clear(err);
            arb_clear(tol);
        }
        free(gd);
        free(Od);
        free(lse);
        if (!st) {
            if (opts->fault == PR_FAULT_GRAD_SIGN)
                _arb_vec_neg(g, g, (slong)nd);
            arb_t gu;
            arb_init(gu);
            arb_dot(gu, NULL, 0, g, 1, u, 1, (slong)len, PREC);
            g1_ctx c = {&I, x, u, dO, nd, sw};
            double ratio = INFINITY;
            int ok;
            if (!(st = cdiff_compare(&ok, &ratio, g1_loss, &c, gu, PREC))) {
                char cfg[PR_CHECK_CONFIG_LEN + 8];
                pr_check_observe(res, I.config, ratio, 1.0, ok);
                snprintf(cfg, sizeof cfg, "%s/dense", I.config);
                pr_check_observe_part(res, cfg, rd, 1.0, okd);
            }
            arb_clear(gu);
        }
        free(tmp);
        _arb_vec_clear(x, (slong)len);
        _arb_vec_clear(u, (slong)len);
        _arb_vec_clear(g, (slong)len);
        _arb_vec_clear(dO, (slong)nd);
        pr_inst_clear(&I);
        if (st)
            return st;
    }
    return PR_OK;
}

/* G2 (b): Q = A1 (X + tU), K = A2, V = A3 Y; L = ½‖O - E‖²_F. */
typedef struct {
    const pr_inst_t *I;
    arb_srcptr A1, X, U, K, V, E, w;
} g2_ctx;

/* Q = A1 X' with X' = X + tU (n×d times d×d) */
static void g2_q(arb_ptr Q, const g2_ctx *c, const arb_t t, slong prec)
{
    int n = c->I->n, d = c->I->d;
    arb_ptr Xt = _arb_vec_init((slong)d * d);
    for (int i = 0; i < d * d; i++) {
        arb_set(Xt + i, c->X + i);
        arb_addmul(Xt + i, t, c->U + i, prec);
    }
    for (int i = 0; i < n; i++)
        for (int b = 0; b < d; b++)
            arb_dot(Q + (size_t)i * d + b, NULL, 0, c->A1 + (size_t)i * d, 1, Xt + b, d, d, prec);
    _arb_vec_clear(Xt, (slong)d * d);
}

static int g2_loss(arb_t L, const arb_t t, void *vctx, slong prec)
{
    g2_ctx *c = vctx;
    size_t nd = (size_t)c->I->n * c->I->d;
    arb_ptr Q = _arb_vec_init((slong)nd), O = _arb_vec_init((slong)nd);
    g2_q(Q, c, t, prec);
    int st = pr_hiprec_forward_arb(O, NULL, Q, c->K, c->V, c->w, c->I->W, c->I->n, c->I->d,
                                   &c->I->opts, prec);
    _arb_vec_sub(O, O, c->E, (slong)nd, prec);
    arb_dot(L, NULL, 0, O, 1, O, 1, (slong)nd, prec);
    arb_mul_2exp_si(L, L, -1);
    _arb_vec_clear(Q, (slong)nd);
    _arb_vec_clear(O, (slong)nd);
    return st;
}

int pr_check_g2(pr_check_result_t *res, const pr_check_opts_t *opts)
{
    pr_rng_t rng;
    for (long trial = 0; trial < opts->trials; trial++) {
        if (!pr_check_trial(res, rng, 0x62, trial))
            continue;
        pr_inst_t I;
        int st = pr_inst_random(&I, rng, 6, 2, 0.3, 1.2, 1);
        if (st)
            return st;
        int n = I.n, d = I.d;
        size_t nd = (size_t)n * d, dd = (size_t)d * d, sw = (size_t)I.W->s * (2 * (size_t)n - 1);
        arb_ptr A1 = _arb_vec_init((slong)nd), X = _arb_vec_init((slong)dd), U = _arb_vec_init((slong)dd);
        arb_ptr K = _arb_vec_init((slong)nd), V = _arb_vec_init((slong)nd), E = _arb_vec_init((slong)nd);
        arb_ptr w = _arb_vec_init((slong)sw), Q = _arb_vec_init((slong)nd), O = _arb_vec_init((slong)nd);
        arb_ptr dQ = _arb_vec_init((slong)nd), dM = _arb_vec_init((slong)n * n), Y = _arb_vec_init((slong)dd);
        double *Xd = malloc(sizeof(double) * dd), *Yd = malloc(sizeof(double) * dd);
        double *Ud = malloc(sizeof(double) * dd), *Ed = malloc(sizeof(double) * nd);
        double *dXd = malloc(sizeof(double) * dd), loss;
        /* A1, A3 entries in [-B, B] (the instance's Q and V), X, Y, U, E in [-1, 1] */
        pr_hiprec_set_d_vec(A1, I.Q, nd);
        pr_hiprec_set_d_vec(K, I.K, nd);
        pr_hiprec_set_d_vec(w, I.W->w, sw);
        pr_rng_fill(Xd, (long)dd, 1.0, rng);
        pr_rng_fill(Yd, (long)dd, 1.0, rng);
        pr_rng_fill(Ud, (long)dd, 1.0, rng);
        pr_rng_fill(Ed, (long)nd, 1.0, rng);
        pr_inst_dump(res, &I);
        pr_check_put_vec(res, "X", Xd, d, d);
        pr_check_put_vec(res, "Y", Yd, d, d);
        pr_check_put_vec(res, "U", Ud, d, d);
        pr_check_put_vec(res, "E", Ed, n, d);
        pr_hiprec_set_d_vec(X, Xd, dd);
        pr_hiprec_set_d_vec(Y, Yd, dd);
        pr_hiprec_set_d_vec(U, Ud, dd);
        pr_hiprec_set_d_vec(E, Ed, nd);
        arb_t zero, gu, t, rs, mx, tn;
        arb_init(zero); arb_init(gu); arb_init(t); arb_init(rs); arb_init(mx); arb_init(tn);
        /* V = A3 Y with A3 = the instance's V */
        for (int i = 0; i < n; i++)
            for (int a = 0; a < d; a++) {
                arb_set_d(t, I.V[(size_t)i * d + a]);
                for (int b = 0; b < d; b++)
                    arb_addmul(V + (size_t)i * d + b, t, Y + (size_t)a * d + b, PREC);
            }
        g2_ctx c = {&I, A1, X, U, K, V, E, w};
        g2_q(Q, &c, zero, PREC);
        st = pr_hiprec_forward_arb(O, NULL, Q, K, V, w, I.W, n, d, &I.opts, PREC);
        if (!st) {
            _arb_vec_sub(O, O, E, (slong)nd, PREC); /* dO = O - E */
            st = pr_hiprec_backward_arb(dQ, NULL, NULL, NULL, dM, Q, K, V, w, O, I.W, n, d, &I.opts, PREC);
        }
        if (!st) {
            /* rows of dM sum to 0 */
            arb_zero(mx);
            for (int i = 0; i < n; i++) {
                arb_zero(rs);
                for (int j = 0; j < n; j++)
                    arb_add(rs, rs, dM + (size_t)i * n + j, PREC);
                arb_abs(rs, rs);
                arb_max(mx, mx, rs, PREC);
            }
            tiny(tn);
            int ok_rows = le3(mx, tn);
            /* gX = A1ᵀ dQ; <gX, U> */
            arb_ptr gX = _arb_vec_init((slong)dd);
            for (int a = 0; a < d; a++)
                for (int b = 0; b < d; b++)
                    arb_dot(gX + (size_t)a * d + b, NULL, 0, A1 + a, d, dQ + b, d, n, PREC);
            arb_dot(gu, NULL, 0, gX, 1, U, 1, (slong)dd, PREC);
            double ratio = INFINITY;
            int ok_dx = 0;
            st = cdiff_compare(&ok_dx, &ratio, g2_loss, &c, gu, PREC);
            /* the dense double dL/dX: inputs bounded by Bv = max(B, d B) (V = A3 Y) and
             * |dO| ≤ Bv + 1; dX = A1ᵀ dQ adds a factor n B and its own n-term rounding */
            int ok_dd = 0;
            double rdd = INFINITY;
            if (!st && !(st = pr_dense_loss_x(&loss, dXd, I.Q, Xd, I.K, I.V, Yd, Ed, I.W, n, d, &I.opts))) {
                double Bv = I.B * d + 1, R = I.opts.sigma * Bv * Bv * pr_posw_max_rowsum(I.W);
                arb_set_d(t, 2.0 * n * I.B * pr_check_dense_tol(R, Bv, I.W->s, n, 1));
                pr_hiprec_max_error(rs, dXd, gX, dd, PREC);
                ok_dd = le3(rs, t);
                rdd = ratio_ub(rs, t);
            }
            _arb_vec_clear(gX, (slong)dd);
            char cfg[PR_CHECK_CONFIG_LEN + 8];
            snprintf(cfg, sizeof cfg, "%s/rowsum", I.config);
            pr_check_observe(res, cfg, ratio_ub(mx, tn), 1.0, ok_rows);
            snprintf(cfg, sizeof cfg, "%s/dLdX", I.config);
            pr_check_observe_part(res, cfg, ratio, 1.0, ok_dx);
            snprintf(cfg, sizeof cfg, "%s/dense", I.config);
            pr_check_observe_part(res, cfg, rdd, 1.0, ok_dd);
        }
        arb_clear(zero); arb_clear(gu); arb_clear(t); arb_clear(rs); arb_clear(mx); arb_clear(tn);
        free(Xd); free(Yd); free(Ud); free(Ed); free(dXd);
        _arb_vec_clear(A1, (slong)nd); _arb_vec_clear(X, (slong)dd); _arb_vec_clear(U, (slong)dd);
        _arb_vec_clear(K, (slong)nd); _arb_vec_clear(V, (slong)nd); _arb_vec_clear(E, (slong)nd);
        _arb_vec_clear(w, (slong)sw); _arb_vec_clear(Q, (slong)nd); _arb_vec_clear(O, (slong)nd);
        _arb_vec_clear(dQ, (slong)nd); _arb_vec_clear(dM, (slong)n * n); _arb_vec_clear(Y, (slong)dd);
        pr_inst_clear(&I);
        if (st)
            return st;
    }
    return PR_OK;
}
