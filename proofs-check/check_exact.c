/* Checks in exact arithmetic: C1, C2 (pr_xexpand), C3, C12 (enumeration), F1 (exact minus float). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "check_impl.h"

#define PREC 128

/* an upper bound of max |x_i - y_i| as a double (0 exactly when equal) */
static double qmax_diff(const fmpq *x, const fmpq *y, size_t len)
{
    fmpq_t t, m;
    fmpq_init(t);
    fmpq_init(m);
    for (size_t i = 0; i < len; i++) {
        fmpq_sub(t, x + i, y + i);
        fmpq_abs(t, t);
        if (fmpq_cmp(t, m) > 0)
            fmpq_set(m, t);
    }
    arb_t a;
    arb_init(a);
    arb_set_fmpq(a, m, PREC);
    double r = fmpq_is_zero(m) ? 0.0 : fmax(pr_hiprec_ubound_d(a), DBL_TRUE_MIN);
    arb_clear(a);
    fmpq_clear(t);
    fmpq_clear(m);
    return r;
}

/* an upper bound of max |x_i - y_i| for a double vector x and an exact y */
static double qd_max_err(const double *x, const fmpq *y, size_t len)
{
    arb_ptr ya = _arb_vec_init((slong)len);
    arb_t e;
    arb_init(e);
    for (size_t i = 0; i < len; i++)
        arb_set_fmpq(ya + i, y + i, PREC);
    pr_hiprec_max_error(e, x, ya, len, PREC);
    double r = pr_hiprec_ubound_d(e);
    arb_clear(e);
    _arb_vec_clear(ya, (slong)len);
    return r;
}

/* a copy of W with w_0(0) changed: the wrong Toeplitz symbol of PR_FAULT_SYMBOL */
static int posw_wrong_symbol(pr_posw_t F, const pr_posw_t W)
{
    int st = pr_posw_init(F, W->n, W->d, W->s);
    if (st)
        return st;
    memcpy(F->a, W->a, sizeof(int) * W->s);
    memcpy(F->b, W->b, sizeof(int) * W->s);
    memcpy(F->w, W->w, sizeof(double) * W->s * (2 * (size_t)W->n - 1));
    F->w[W->n - 1] += 0.5;
    return PR_OK;
}

/* C1 (g = 1, P(x) = x) and C2 (Taylor, g ≤ 4): expansion applied to X against the dense
 * entries, in rationals; must agree exactly. C2 adds the double run of the same walk against
 * the exact one, within the recursive-summation bound γ_N·n·P̂(R)·‖X‖∞ with
 * N = T + n + 3g + 8 roundings on any path (T terms, n-long Toeplitz sums, g-fold products of
 * u, v, t, and a few for α and the final scaling) and P̂(R) = Σ|c_k|R^k ≥ Σ_e |term_e|/n. */
static int check_expand(pr_check_result_t *res, const pr_check_opts_t *opts, int is_c1)
{
    pr_rng_t rng;
    double worst_exact = 0.0;
    for (long trial = 0; trial < opts->trials; trial++) {
        if (!pr_check_trial(res, rng, (is_c1 ? 0xC1 : 0xC2), trial))
            continue;
        pr_inst_t I;
        int st = pr_inst_random(&I, rng, is_c1 ? 12 : 7, is_c1 ? 3 : 1, 0.5, 2.0, 0);
        if (st)
            return st;
        int n = I.n, d = I.d, g = is_c1 ? 1 : pr_inst_int(rng, 0, 4), m = 2;
        fmpq *c = _fmpq_vec_init(g + 1), *cx = _fmpq_vec_init(g + 1);
        double *cd = malloc(sizeof(double) * (g + 1)), *Xd = malloc(sizeof(double) * n * m);
        double *Yd = malloc(sizeof(double) * n * m);
        fmpq *X = _fmpq_vec_init(n * m), *Y1 = _fmpq_vec_init(n * m), *Y2 = _fmpq_vec_init(n * m);
        pr_rng_fill(Xd, (long)n * m, 1.0, rng);
        for (int i = 0; i < n * m; i++)
            pr_xexpand_fmpq_set_d(X + i, Xd[i]);
        if (is_c1) {
            cd[0] = 0.0;
            cd[1] = 1.0;
        } else {
            pr_taylor_d(cd, g);
        }
        for (int k = 0; k <= g; k++)
            pr_xexpand_fmpq_set_d(c + k, cd[k]);
        for (int k = 0; k <= g; k++)
            fmpq_set(cx + k, c + k);
        pr_inst_dump(res, &I);
        pr_check_put(res, "g", "%d", g);
        pr_check_put_vec(res, "X", Xd, n, m);
        pr_check_put_vec(res, "coef", cd, 1, g + 1);
        if (opts->fault == PR_FAULT_POLY_COEF) {
            fmpq_t eps;
            fmpq_init(eps);
            fmpq_set_si(eps, 1, 1024);
            fmpq_add(cx + (g > 0), cx + (g > 0), eps);
            fmpq_clear(eps);
        }
        pr_posw_t F;
        int wrong = opts->fault == PR_FAULT_SYMBOL;
        if (wrong && (st = posw_wrong_symbol(F, I.W)))
            return st;
        pr_xexpand_t E, Ex;
        st = pr_xexpand_init(E, I.Q, I.K, I.W, n, d, &I.opts);
        if (!st)
            st = pr_xexpand_init(Ex, I.Q, I.K, wrong ? F : I.W, n, d, &I.opts);
        if (!st)
            st = pr_xexpand_apply(Y1, Ex, cx, g, X, m);
        if (!st)
            st = pr_xexpand_direct(Y2, E, c, g, X, m);
        if (!st) {
            char cfg[PR_CHECK_CONFIG_LEN + 8];
            double diff = qmax_diff(Y1, Y2, (size_t)n * m);
            worst_exact = fmax(worst_exact, diff);
            snprintf(cfg, sizeof cfg, "%s/exact", I.config);
            pr_check_observe(res, cfg, diff, 0.0, diff == 0.0);
            if (!is_c1 && !(st = pr_xexpand_apply_d(Yd, I.Q, I.K, I.W, n, d, &I.opts, cd, g, Xd, m))) {
                arb_t R;
                arb_init(R);
                pr_inst_R_arb(R, &I, PREC);
                double Rd = pr_hiprec_ubound_d(R), Phat = pr_poly_abs(cd, g, Rd), T = 1.0;
                for (int k = 1; k <= g; k++)
                    T = T * (I.W->s + k) / k;
                double N = T + n + 3 * g + 8, u = DBL_EPSILON / 2;
                double ratio = qd_max_err(Yd, Y2, (size_t)n * m) / (u * n * Phat * pr_vec_max_abs(Xd, (size_t)n * m));
                double bound = N / (1 - N * u);
                snprintf(cfg, sizeof cfg, "%s/float", I.config);
                pr_check_observe_part(res, cfg, ratio, bound, ratio <= bound);
                arb_clear(R);
            }
            pr_xexpand_clear(Ex);
        }
        pr_xexpand_clear(E);
        if (wrong)
            pr_posw_clear(F);
        _fmpq_vec_clear(c, g + 1);
        _fmpq_vec_clear(cx, g + 1);
        _fmpq_vec_clear(X, n * m);
        _fmpq_vec_clear(Y1, n * m);
        _fmpq_vec_clear(Y2, n * m);
        free(cd);
        free(Xd);
        free(Yd);
        pr_inst_clear(&I);
        if (st)
            return st;
    }
    pr_check_note(res, "exact side: max |difference| %.3e (must be 0)", worst_exact);
    if (!is_c1)
        pr_check_note(res, "float side: worst = error / (u n P(R) ||X||), bound = gamma count N");
    return PR_OK;
}

int pr_check_c1(pr_check_result_t *res, const pr_check_opts_t *opts)
{
    return check_expand(res, opts, 1);
}

int pr_check_c2(pr_check_result_t *res, const pr_check_opts_t *opts)
{
    return check_expand(res, opts, 0);
}

/* |enumerated total - C(s+g,g)| + Σ_k |enumerated degree-k - C(s+k-1,k)|, enumerated by the
 * exact expansion's walk */
static double count_mismatch(fmpz_t total, int s, int g)
{
    fmpz *by = _fmpz_vec_init(g + 1);
    fmpz_t f, diff;
    fmpz_init(f);
    fmpz_init(diff);
    double bad = 0.0;
    if (pr_xexpand_count(total, by, s, g)) {
        bad = INFINITY;
    } else {
        fmpz_bin_uiui(f, (ulong)(s + g), (ulong)g);
        fmpz_sub(diff, total, f);
        bad += fabs(fmpz_get_d(diff));
        for (int k = 0; k <= g; k++) {
            fmpz_bin_uiui(f, (ulong)(s + k - 1), (ulong)k);
            if (s == 0 && k == 0)
                fmpz_one(f);
            fmpz_sub(diff, by + k, f);
            bad += fabs(fmpz_get_d(diff));
        }
    }
    fmpz_clear(f);
    fmpz_clear(diff);
    _fmpz_vec_clear(by, g + 1);
    return bad;
}

/* The fast paths' one enumeration (pr_expand) against the formulas: the term list of a support
 * of s entries (count and degree histogram) and the marginal enumeration of s values (the
 * low-rank features when s = d). */
static double fast_mismatch(int s, int g)
{
    int *ab = malloc(sizeof(int) * (s ? s : 1));
    double bad = 0.0;
    for (int k = 0; k < s; k++)
        ab[k] = k;
    pr_expand_t T;
    pr_expand_marg_t M;
    int st = pr_expand_init(T, ab, ab, s, g, 0, PR_XEXPAND_MAX_TERMS);
    int sm = pr_expand_marg_init(M, s, g, 0, PR_XEXPAND_MAX_TERMS);
    if (st || sm) {
        bad = INFINITY;
    } else {
        bad += fabs((double)T->nterms - pr_expand_binom(s, g)) + fabs((double)M->count - pr_expand_binom(s, g));
        for (int k = 0; k <= g; k++) {
            long cnt = 0;
            for (long e = 0; e < T->nterms; e++)
                cnt += T->deg[e] == k;
            bad += fabs((double)cnt - (k ? pr_expand_binom(s - 1, k) : 1.0));
        }
    }
    pr_expand_clear(T);
    pr_expand_marg_clear(M);
    free(ab);
    return bad;
}

int pr_check_c3(pr_check_result_t *res, const pr_check_opts_t *opts)
{
    pr_rng_t rng;
    fmpz_t total;
    fmpz_init(total);
    for (long trial = 0; trial < opts->trials; trial++) {
        if (!pr_check_trial(res, rng, 0xC3, trial))
            continue;
        /* s = 2d as for RoPE and general W, or any s; g while C(s+g,g) stays enumerable */
        int s = trial % 2 ? 2 * pr_inst_int(rng, 1, 8) : pr_inst_int(rng, 1, 16);
        int g = pr_inst_int(rng, 0, s > 8 ? 4 : 6);
        pr_check_put(res, "s", "%d", s);
        pr_check_put(res, "g", "%d", g);
        double bad = count_mismatch(total, s, g) + fast_mismatch(s, g);
        pr_check_observe(res, s > 8 ? "s>8" : "s<=8", bad, 0.0, bad == 0.0);
        if (trial == opts->trials - 1)
            pr_check_note(res, "e.g. s=%d g=%d: %.0f terms", s, g, fmpz_get_d(total));
    }
    fmpz_clear(total);
    return PR_OK;
}

int pr_check_c12(pr_check_result_t *res, const pr_check_opts_t *opts)
{
    pr_rng_t rng;
    fmpz_t feat, terms;
    fmpz_init(feat);
    fmpz_init(terms);
    for (long trial = 0; trial < opts->trials; trial++) {
        if (!pr_check_trial(res, rng, 0xC12, trial))
            continue;
        int d = 2 * pr_inst_int(rng, 1, 4), g = pr_inst_int(rng, 0, 4);
        pr_check_put(res, "d", "%d", d);
        pr_check_put(res, "g", "%d", g);
        /* low-rank features: monomials of degree ≤ g in the d rotated coordinates;
         * Toeplitz terms: multisets of size ≤ g of the s = 2d support entries */
        double bad = count_mismatch(feat, d, g) + count_mismatch(terms, 2 * d, g) +
                     fast_mismatch(d, g) + fast_mismatch(2 * d, g);
        pr_check_observe(res, "enumeration", bad, 0.0, bad == 0.0);
        if (trial == opts->trials - 1)
            pr_check_note(res, "d=%d g=%d: %.0f low-rank features vs %.0f Toeplitz terms (ratio %.3g)", d, g,
                          fmpz_get_d(feat), fmpz_get_d(terms),
                          fmpz_get_d(terms) / fmpz_get_d(feat));
    }
    fmpz_clear(feat);
    fmpz_clear(terms);
    return PR_OK;
}

/* F1: the expansion in double against the same expansion in rationals, for R up to ~6.
 * Half the trials are adversarial (W = I, Q = B, K = -B: every M_ij = -R, where the Taylor
 * sum cancels most). Bound, in units of u e^{2R} ‖V‖∞: with D_i ≥ n_i(1-ε_A)e^{-R} (P ≥
 * (1-ε_A)e^x, C9), |ΔN_i|, |ΔD_i|/‖V‖ ≤ γ_N n_i P̂(R), P̂(R) ≤ e^R (positive Taylor
 * coefficients), the quotient's error is ≤ 2γ_N e^{2R}‖V‖/((1-ε_A) - γ_N e^{2R}) plus one
 * rounding of the division. ε_A ≤ e^R R^{g+1}/(g+1)! (Lagrange remainder) ≤ 1/4 by choice of g;
 * the double coefficients add ≤ u relative each. */
int pr_check_f1(pr_check_result_t *res, const pr_check_opts_t *opts)
{
    pr_rng_t rng;
    int nfit = 0, nfx = 0;
    long refused = 0;
    double *fx = malloc(sizeof(double) * 4 * (opts->trials + 1)), *fy = fx + (opts->trials + 1);
    double *dx = fy + (opts->trials + 1), *dy = dx + (opts->trials + 1);
    for (long trial = 0; trial < opts->trials; trial++) {
        if (!pr_check_trial(res, rng, 0xF1, trial))
            continue;
        int adversarial = trial % 2 == 0, n = pr_inst_int(rng, 2, 5), d = 2;
        double B = pr_rng_range(rng, 0.7, 2.4);
        pr_pos_kind_t kind = adversarial ? PR_POS_IDENTITY : pr_inst_random_kind(rng);
        pr_inst_t I;
        int st = pr_inst_init(&I, n, d, B, kind, pr_inst_random_mask(rng, 0), rng);
        if (st) {
            free(fx);
            return st;
        }
        if (adversarial)
            for (int i = 0; i < n * d; i++) {
                I.Q[i] = B;
                I.K[i] = -B;
            }
        arb_t Ra;
        arb_init(Ra);
        pr_inst_R_arb(Ra, &I, PREC);
        double R = pr_hiprec_ubound_d(Ra);
        int g = pr_taylor_degree(R, 0.25);
        double *cd = malloc(sizeof(double) * (g + 1)), *Of = malloc(sizeof(double) * n * d);
        fmpq *c = _fmpq_vec_init(g + 1), *Ox = _fmpq_vec_init(n * d);
        pr_taylor_d(cd, g);
        for (int k = 0; k <= g; k++)
            pr_xexpand_fmpq_set_d(c + k, cd[k]);
        pr_inst_dump(res, &I);
        pr_check_put_vec(res, "coef", cd, 1, g + 1);
        pr_xexpand_t E;
        st = pr_xexpand_init(E, I.Q, I.K, I.W, n, d, &I.opts);
        if (!st)
            st = pr_xexpand_output(Ox, E, c, g, I.V);
        if (!st)
            st = pr_xexpand_output_d(Of, I.Q, I.K, I.V, I.W, n, d, &I.opts, cd, g);
        if (!st) {
            double T = 1.0;
            for (int k = 1; k <= g; k++)
                T = T * (I.W->s + k) / k;
            double u = DBL_EPSILON / 2, N = T + n + 3 * g + 8, gam = N * u / (1 - N * u) * (1 + 2 * u);
            double e2R = exp(2 * R), epsA = 0.25 + (g + 1) * u;
            double Vn = pr_vec_max_abs(I.V, (size_t)n * d);
            double err = qd_max_err(Of, Ox, (size_t)n * d);
            double norm = err / (u * e2R * Vn);
            double bound = 1.01 * ((2 * gam / u) / ((1 - epsA) - gam * e2R) + 2 / e2R);
            int ok = gam * e2R < (1 - epsA) / 2 ? norm <= bound : -1;
            pr_check_observe(res, adversarial ? "adversarial" : I.config, norm, bound, ok);
            /* the FFT engine on the same P against the same exact run, within its own
             * a-priori floor (pr_control_choose_poly's formula: pr_expoly_floor times the
             * engine's factor ρ(2g + 3 log2 L), then 2‖V‖∞ f/(1 - f)) */
            pr_fast_plan_t F;
            pr_attn_opts_t po = I.opts;
            po.poly = cd;
            po.poly_degree = g;
            pr_control_opts_t fo;
            pr_control_opts_default(&fo);
            pr_control_info_t info;
            if (!(st = pr_control_data_info(&info, I.Q, I.K, I.V, I.W, n, d, &I.opts, &fo, 0)) &&
                !(st = pr_fast_plan(F, I.W, &po, (size_t)1 << 30, 1000000, PR_FAST_ESTIMATE))) {
                int fs = pr_fast_execute(Of, F, I.Q, I.K, I.V);
                pr_fast_destroy(F);
                double Lt = (double)pr_toeplitz_good_size(2L * n - 1, 5, 1);
                double f = pr_expoly_floor(cd, g, info.R_floor, epsA) * pr_control_rho(n, &I.opts)
                           * (2.0 * g + 3.0 * log2(Lt));
                double fb = 2 * Vn * f / (1 - f);
                char cfg[PR_CHECK_CONFIG_LEN + 8];
                snprintf(cfg, sizeof cfg, "fft/%s", adversarial ? "adversarial" : I.config);
                if (fs == PR_EDOMAIN) {
                    refused++;
                } else if (!(st = fs)) {
                    double e2 = qd_max_err(Of, Ox, (size_t)n * d);
                    pr_check_observe_part(res, cfg, e2 / fb, 1.0, f < 1 ? e2 <= fb : -1);
                    if (adversarial && e2 > 0) {
                        fx[nfx] = R;
                        fy[nfx++] = log(e2);
                    }
                }
            }
            if (adversarial && err > 0) {
                dx[nfit] = R;
                dy[nfit++] = log(err);
            }
        }
        pr_xexpand_clear(E);
        free(cd);
        free(Of);
        _fmpq_vec_clear(c, g + 1);
        _fmpq_vec_clear(Ox, n * d);
        arb_clear(Ra);
        pr_inst_clear(&I);
        if (st) {
            free(fx);
            return st;
        }
    }
    if (nfit >= 2)
        pr_check_note(res, "adversarial fit, direct sums: d ln(err)/dR = %.2f over %d runs (claim: up to 2)",
                      pr_check_slope(dx, dy, nfit), nfit);
    if (nfx >= 2)
        pr_check_note(res, "FFT engine: d ln(err)/dR = %.2f over %d runs, worst/bound vs its own floor in configs fft/*; %ld refused",
                      pr_check_slope(fx, fy, nfx), nfx, refused);
    free(fx);
    return PR_OK;
}
