/* Error control and the whole-path drivers (pr_control.h; docs/math.md §3, §4, §7, §8). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_toeplitz.h"
#include "pr_fast.h"
#include "pr_lowrank.h"
#include "pr_backward.h"
#include "pr_timing.h"
#include "pr_control.h"

/* ---- choosing P and bounding the floor ---- */

void pr_control_opts_default(pr_control_opts_t *o)
{
    o->eps = 1e-6;
    o->B = 0.0;
    o->widen = 0;
    o->kind = PR_EXPOLY_CHEBYSHEV;
    o->degree = 0;
    o->mem_budget = (size_t)6 << 30;
    o->max_terms = 2000000;
    o->max_ops = 0.0;
    o->plan_flags = PR_FAST_ESTIMATE;
}

int pr_control_data_info(pr_control_info_t *info, const double *Q, const double *K, const double *V,
                         const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts,
                         const pr_control_opts_t *o, int lowrank)
{
    memset(info, 0, sizeof(*info));
    int st = pr_attn_check(Q, K, V, W, n, d, opts);
    if (st)
        return st;
    if (!(o->eps > 0.0) || !isfinite(o->eps) || o->B < 0.0 || !isfinite(o->B))
        return PR_EINVAL;
    size_t nd = (size_t)n * d;
    info->vnorm = pr_vec_max_abs(V, nd);
    info->data_max = fmax(info->vnorm, fmax(pr_vec_max_abs(Q, nd), pr_vec_max_abs(K, nd)));
    if (o->B > 0.0 && info->data_max > o->B) {
        if (!o->widen)
            return PR_EBOUND;
        info->widened = 1;
    }
    double *mq = calloc(2 * (size_t)d, sizeof(double));
    if (!mq)
        return PR_ENOMEM;
    double *mk = mq + d, sigma = opts->sigma, nq = 0.0, nk = 0.0;
    for (int i = 0; i < n; i++) {
        double sq = 0.0, sk = 0.0;
        for (int a = 0; a < d; a++) {
            double q = Q[(size_t)i * d + a], k = K[(size_t)i * d + a];
            mq[a] = fmax(mq[a], fabs(q));
            mk[a] = fmax(mk[a], fabs(k));
            sq += q * q;
            sk += k * k;
        }
        nq = fmax(nq, sq);
        nk = fmax(nk, sk);
    }
    /* |M_ij| <= σ Σ_k |Q_{i a_k}| |w_k(i-j)| |K_{j b_k}| <= σ max_ℓ Σ_k mq[a_k] |w_k(ℓ)| mk[b_k] */
    long L = 2L * n - 1;
    double R = 0.0, Rf = 0.0;
    for (long l = 0; l < L; l++) {
        double r = 0.0;
        for (int k = 0; k < W->s; k++)
            r += mq[W->a[k]] * fabs(W->w[(size_t)k * L + l]) * mk[W->b[k]];
        R = fmax(R, r);
    }
    for (int k = 0; k < W->s; k++)
        Rf += mq[W->a[k]] * pr_vec_max_abs(pr_posw_seq(W, k), L) * mk[W->b[k]];
    R *= sigma;
    Rf *= sigma;
    if (lowrank) {
        /* after rotation M_ij = σ q'_i·k'_j and rotations keep 2-norms (claim C11) */
        R = fmin(R, sigma * sqrt(nq) * sqrt(nk));
        Rf = sigma * sqrt(nq) * sqrt(nk);
    }
    free(mq);
    /* the polynomial needs an interval of positive width; any R >= max|M| is valid */
    info->R = fmax(R, 0x1p-20);
    info->R_floor = fmax(Rf, info->R);
    return PR_OK;
}

double pr_control_rho(int n, const pr_attn_opts_t *opts)
{
    /* min over rows of Σ_j b_{i-j}: row i sees offsets ℓ ∈ [i-n+1, i], a sliding window */
    double s2 = 0.0, win = 0.0, minrow = INFINITY;
    for (long l = -(n - 1); l <= n - 1; l++) {
        double b = exp(pr_attn_log_bias(opts, n, l));
        s2 += b * b;
    }
    for (long l = -(n - 1); l <= 0; l++)
        win += exp(pr_attn_log_bias(opts, n, l));
    for (long i = 0; i < n; i++) {
        if (i > 0)
            win += exp(pr_attn_log_bias(opts, n, i)) - exp(pr_attn_log_bias(opts, n, i - n));
        minrow = fmin(minrow, win);
    }
    return sqrt(s2) * sqrt((double)n) / minrow;
}

static void poly_bound(pr_control_info_t *info, const pr_expoly_t p, double rho, double per_degree,
                       double log_ops)
{
    info->degree = p->degree;
    info->poly_err = p->eps_A + p->conv_err;
    info->ops_factor = rho * (per_degree * p->degree + log_ops);
    double e = info->poly_err;
    double f = e < 1.0 ? pr_expoly_floor(p->c, p->degree, info->R_floor, e) * info->ops_factor : INFINITY;
    info->floor = f < 1.0 ? 2.0 * info->vnorm * f / (1.0 - f) : INFINITY;
    info->bound = e < 1.0 ? 2.0 * e / (1.0 - e) * info->vnorm + info->floor : INFINITY;
}

int pr_control_choose_poly(pr_expoly_t p, pr_control_info_t *info, const pr_control_opts_t *o,
                           double rho, double per_degree, double log_ops)
{
    double eps = o->eps, V = info->vnorm;
    if (!(eps > 0.0) || !isfinite(eps))
        return PR_EINVAL;
    /* a priori, before any fit: Σ_k |c_k| R^k >= P(R) ≈ e^R, so no P does better than
     * u e^{2R} times the engine's factor at g = 0 */
    double f0 = 0x1p-53 * exp(2.0 * info->R_floor) * rho * log_ops;
    info->floor = f0 < 1.0 ? 2.0 * V * f0 / (1.0 - f0) : INFINITY;
    if (!(info->floor <= 0.5 * eps))
        return PR_EFLOOR;
    /* C9: ‖Õ - O‖∞ <= 2ε_A/(1-ε_A)‖V‖∞ = eps' for ε_A = eps'/(2‖V‖∞ + eps') */
    double target = eps;
    for (int pass = 0; pass < 2; pass++) {
        info->eps_A = fmin(target / (2.0 * V + target), 0.5);
        int st = o->degree > 0 ? pr_expoly_fit(p, o->kind, PR_EXPOLY_EXP_REL, info->R, o->degree)
                               : pr_expoly_fit_eps(p, o->kind, PR_EXPOLY_EXP_REL, info->R, info->eps_A);
        if (st)
            return st;
        poly_bound(info, p, rho, per_degree, log_ops);
        info->eps_met = info->bound <= eps;
        /* a fixed degree is the caller's choice: report, the caller decides (one rule for
         * every degree, whether its bound is finite or not) */
        if (o->degree > 0)
            return PR_OK;
        if (!(info->floor <= 0.5 * eps))
            return PR_EFLOOR;
        if (info->eps_met)
            return PR_OK;
        target = eps - info->floor;   /* leave room for the floor, and refit */
    }
    return PR_OK;
}

int pr_control_choose(pr_expoly_t p, pr_control_info_t *info, const double *Q, const double *K,
                      const double *V, const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts,
                      const pr_control_opts_t *o, int lowrank)
{
    int st = pr_control_data_info(info, Q, K, V, W, n, d, opts, o, lowrank);
    if (st)
        return st;
    if (lowrank)
        /* g products per feature, sums of n·C(d+g, g) <= n (d+1)^g terms in dgemm's blocked order,
         * relative to each row's own sum: ρ = 1, causal or not */
        st = pr_control_choose_poly(p, info, o, 1.0, 2.0 + 2.0 * log2(d + 1.0), 2.0 * log2((double)n));
    else
        st = pr_control_choose_poly(p, info, o, pr_control_rho(n, opts), 2.0,
                                 3.0 * log2((double)pr_toeplitz_good_size(2L * n - 1, 5, 1)));
    info->terms = pr_expand_binom(lowrank ? d : W->s, info->degree);
    return st;
}

/* ---- memory and work, before anything is planned ---- */

void pr_control_needs(double *bytes, double *ops, const pr_posw_t W, int n, int d, int g, int lowrank)
{
    if (lowrank)
        pr_lowrank_needs(bytes, ops, n, d, g);
    else
        pr_fast_needs(bytes, ops, W, n, d, g);
}

int pr_control_budget(pr_control_info_t *info, const pr_posw_t W, int n, int d,
                      const pr_control_opts_t *o, int lowrank, double extra_bytes, double extra_ops,
                      const char *what)
{
    double bytes, ops;
    pr_control_needs(&bytes, &ops, W, n, d, info->degree, lowrank);
    pr_budget_init(&info->budget, (double)o->mem_budget, o->max_ops);
    int st = pr_budget_bytes(&info->budget, bytes + extra_bytes, what);
    return st ? st : pr_budget_ops(&info->budget, ops + extra_ops, what);
}

/* ---- the drivers ---- */

int pr_control_prepare(pr_expoly_t p, pr_attn_opts_t *po, pr_control_info_t *info, const double *Q,
                       const double *K, const double *V, const pr_posw_t W, int n, int d,
                       const pr_attn_opts_t *opts, const pr_control_opts_t *o, int lowrank, int backward)
{
    static const char *what[2][2] = {{"the fft path's plan", "the fft path's forward and backward"},
                                     {"the lowrank path's features", "the lowrank path's forward and backward"}};
    int st = pr_control_choose(p, info, Q, K, V, W, n, d, opts, o, lowrank);
    if (st)
        return st;
    double bb = 0.0, bo = 0.0;
    if (backward)
        pr_backward_needs(&bb, &bo, W, n, d, p->degree, lowrank);
    if ((st = pr_control_budget(info, W, n, d, o, lowrank, bb, bo, what[lowrank][backward])))
        return st;
    *po = *opts;
    po->poly = p->c;
    po->poly_degree = p->degree;
    return PR_OK;
}

int pr_control_forward_fft(double *O, pr_control_info_t *info, const double *Q, const double *K,
                           const double *V, const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts,
                           const pr_control_opts_t *o)
{
    pr_control_info_t own;
    if (!info)
        info = &own;
    pr_expoly_t p;
    pr_expoly_init(p);
    pr_attn_opts_t po;
    int st = pr_control_prepare(p, &po, info, Q, K, V, W, n, d, opts, o, 0, 0);
    if (!st) {
        pr_fast_plan_t F;
        st = pr_fast_plan(F, W, &po, o->mem_budget, o->max_terms, o->plan_flags);
        if (!st) {
            st = pr_fast_execute(O, F, Q, K, V);
            info->streamed = F->streamed;
            info->transforms = F->transforms;
            info->plan_transforms = F->plan_transforms;
            info->plan_seconds = F->plan_seconds;
            pr_fast_destroy(F);
        }
    }
    pr_expoly_clear(p);
    return st;
}

int pr_control_forward_lowrank(double *O, pr_control_info_t *info, const double *Q, const double *K,
                               const double *V, const pr_posw_t W, int n, int d,
                               const pr_attn_opts_t *opts, const pr_control_opts_t *o)
{
    pr_control_info_t own;
    if (!info)
        info = &own;
    if (!pr_lowrank_applies(W) || opts->beta)
        return PR_EINVAL;
    pr_expoly_t p;
    pr_expoly_init(p);
    pr_attn_opts_t po;
    int st = pr_control_prepare(p, &po, info, Q, K, V, W, n, d, opts, o, 1, 0);
    if (!st)
        st = pr_lowrank_execute(O, Q, K, V, W, n, d, &po, o->mem_budget, o->max_terms);
    pr_expoly_clear(p);
    return st;
}

/* ---- the gradients: the G4 bound and the driver ---- */

int pr_control_backward_bound(pr_control_backward_bound_t *bound, double eps_A,
                              const double *Q, const double *K, const double *V, const pr_posw_struct *W,
                              const double *dO, const double *kappa, const double *kappa_w, int n, int d,
                              double sigma)
{
    if (!(eps_A >= 0.0) || !(eps_A < 1.0 / 3.0) || n <= 0 || d <= 0 || W->n != n || W->d != d)
        return PR_EINVAL;
    size_t nd = (size_t)n * d, L = 2 * (size_t)n - 1;
    double eta = 2.0 * eps_A / (1.0 - eps_A);
    double qinf = pr_vec_max_abs(Q, nd), kinf = pr_vec_max_abs(K, nd), vinf = pr_vec_max_abs(V, nd);
    double rho = 0.0, rhop = 0.0, numax = 0.0, nusum = 0.0, kapmax = pr_vec_max_abs(kappa, n);
    for (int a = 0; a < d; a++)
        for (size_t l = 0; l < L; l++) {
            double ra = 0.0, rb = 0.0;
            for (int k = 0; k < W->s; k++) {
                double w = fabs(W->w[(size_t)k * L + l]);
                ra += W->a[k] == a ? w : 0.0;
                rb += W->b[k] == a ? w : 0.0;
            }
            rho = fmax(rho, ra);
            rhop = fmax(rhop, rb);
        }
    for (int i = 0; i < n; i++) {
        double l1 = 0.0;
        for (int c = 0; c < d; c++)
            l1 += fabs(dO[(size_t)i * d + c]);
        numax = fmax(numax, l1);
        nusum += l1;
    }
    bound->dq = 3.0 * eta * sigma * vinf * kinf * rho * numax;
    bound->dk = 3.0 * eta * sigma * vinf * qinf * rhop * kapmax / (1.0 - eta);
    bound->dv = eta * kapmax / (1.0 - eta);
    double diag = kappa_w ? pr_vec_max_abs(kappa_w, L) / (1.0 - eta) : nusum;
    bound->dw = 3.0 * eta * sigma * vinf * qinf * kinf * diag;
    return PR_OK;
}

int pr_control_backward(double *O, double *dQ, double *dK, double *dV, double *dw,
                        pr_control_info_t *info, pr_control_backward_report_t *rep,
                        const double *Q, const double *K, const double *V, const pr_posw_struct *W,
                        const double *dO, int n, int d, const pr_attn_opts_t *opts,
                        const pr_control_opts_t *o, int lowrank)
{
    if (lowrank && (!pr_lowrank_applies(W) || opts->beta))
        return PR_EINVAL;
    int st = pr_attn_check(Q, K, V, W, n, d, opts);
    if (st)
        return st;
    if (pr_vec_check_finite(dO, (size_t)n * d))
        return PR_ENONFINITE;
    memset(rep, 0, sizeof(*rep));
    double t0 = pr_timing_wall();
    /* error control exactly as the forward alone does it; the forward's and the backward's
     * memory and work checked before either is planned */
    pr_expoly_t p;
    pr_expoly_init(p);
    pr_attn_opts_t po;
    if ((st = pr_control_prepare(p, &po, info, Q, K, V, W, n, d, opts, o, lowrank, 1))) {
        pr_expoly_clear(p);
        return st;
    }
    double *kappa = malloc(sizeof(double) * n), *lse = malloc(sizeof(double) * n);
    pr_fast_plan_t F;
    pr_backward_plan *bp = NULL;
    int planned = 0;
    st = PR_ENOMEM;
    if (!kappa || !lse)
        goto done;
    if (lowrank) {
        st = pr_lowrank_execute(O, Q, K, V, W, n, d, &po, o->mem_budget, o->max_terms);
        rep->forward_s = pr_timing_wall() - t0;
        t0 = pr_timing_wall();
        if (!st)
            st = pr_backward_lowrank(dQ, dK, dV, kappa, Q, K, V, W, O, NULL, dO, n, d, &po);
        rep->terms = (long)pr_expand_binom(d, p->degree + 1);
    } else {
        if ((st = pr_fast_plan(F, W, &po, o->mem_budget, o->max_terms, o->plan_flags)))
            goto done;
        planned = 1;
        if ((st = pr_fast_execute(O, F, Q, K, V)))
            goto done;
        info->streamed = F->streamed;
        info->transforms = F->transforms;
        info->plan_transforms = F->plan_transforms;
        info->plan_seconds = F->plan_seconds;
        rep->forward_s = pr_timing_wall() - t0;
        t0 = pr_timing_wall();
        pr_backward_lse_from_fast(lse, F);
        if ((st = pr_backward_plan_fft(&bp, F, W, &po, dw != NULL, (double)o->mem_budget)))
            goto done;
        if ((st = pr_backward_execute(bp, dQ, dK, dV, dw, kappa, Q, K, V, O, lse, dO)))
            goto done;
        pr_backward_info_t bi;
        pr_backward_info(&bi, bp);
        rep->terms = bi.terms;
        rep->transforms = bi.transforms;
    }
    rep->backward_s = pr_timing_wall() - t0;
    if (!st) {
        /* the floor is 2‖V‖∞ f/(1-f) with f the relative rounding of Ã's rows: add f to P's error */
        double f = info->vnorm > 0 ? info->floor / (2.0 * info->vnorm + info->floor) : 0.0;
        /* a P too far from e^x (a forced low --degree) leaves the gradients without a bound, not
         * the run without gradients */
        if (info->poly_err + f < 1.0 / 3.0)
            st = pr_control_backward_bound(&rep->bound, info->poly_err + f, Q, K, V, W, dO, kappa,
                                           bp ? pr_backward_kappa_w(bp) : NULL, n, d, opts->sigma);
        else
            rep->bound.dq = rep->bound.dk = rep->bound.dv = rep->bound.dw = INFINITY;
        if (lowrank || !dw)
            rep->bound.dw = NAN;
    }
done:
    pr_backward_destroy(bp);
    if (planned)
        pr_fast_destroy(F);
    pr_expoly_clear(p);
    free(kappa);
    free(lse);
    return st;
}
