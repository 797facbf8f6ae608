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

/* the engine's rounding factor ρ·(per_degree·g + log_ops) of a path, as f = {ρ, per_degree, log_ops} */
static void path_factors(double f[3], int n, int d, const pr_attn_opts_t *opts, int lowrank)
{
    /* low-rank: g products per feature, sums of n·C(d+g, g) <= n (d+1)^g terms in dgemm's blocked
     * order, relative to each row's own sum: ρ = 1, causal or not */
    f[0] = lowrank ? 1.0 : pr_control_rho(n, opts);
    f[1] = lowrank ? 2.0 + 2.0 * log2(d + 1.0) : 2.0;
    f[2] = lowrank ? 2.0 * log2((double)n) : 3.0 * log2((double)pr_toeplitz_good_size(2L * n - 1, 5, 1));
}

static int heads_bad(const pr_control_heads_t *hd)
{
    return hd && (hd->h < 1 || hd->h_kv < 1 || hd->h % hd->h_kv);
}

/* query head q's K or V (h_kv heads of n×d) */
static const double *kv_head(const double *X, const pr_control_heads_t *hd, int q, size_t nd)
{
    return hd ? X + (size_t)pr_attn_kv_head(q, hd->h, hd->h_kv) * nd : X;
}

/* the data part of info for every head: the worst head's R, R_floor, ‖V‖∞ and entries, so that
 * the P chosen from it holds for each head (docs/cli.md, attn heads); info->head names the head a
 * refusal came from. per: NULL, or each head's R_floor and ‖V‖∞ (2h: what its bound needs). */
static int data_info_heads(pr_control_info_t *info, double *per, const double *Q, const double *K,
                           const double *V, const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts,
                           const pr_control_opts_t *o, int lowrank, const pr_control_heads_t *hd)
{
    size_t nd = (size_t)n * d;
    int h = hd ? hd->h : 1;
    pr_control_info_t worst;
    for (int q = 0; q < h; q++) {
        int st = pr_control_data_info(info, Q + q * nd, kv_head(K, hd, q, nd), kv_head(V, hd, q, nd), W, n, d, opts,
                                      o, lowrank);
        info->head = q;
        if (st == PR_EBOUND && hd) {
            /* the entries of every head, so that the --B a refusal asks for covers them all */
            info->data_max = fmax(pr_vec_max_abs(Q, nd * hd->h),
                                  fmax(pr_vec_max_abs(K, nd * hd->h_kv), pr_vec_max_abs(V, nd * hd->h_kv)));
        }
        if (st)
            return st;
        if (per) {
            per[2 * q] = info->R_floor;
            per[2 * q + 1] = info->vnorm;
        }
        if (q) {
            info->R = fmax(info->R, worst.R);
            info->R_floor = fmax(info->R_floor, worst.R_floor);
            info->vnorm = fmax(info->vnorm, worst.vnorm);
            info->data_max = fmax(info->data_max, worst.data_max);
            info->widened |= worst.widened;
        }
        worst = *info;
    }
    info->head = -1;
    return PR_OK;
}

/* pr_control_choose_heads, each head's R_floor and ‖V‖∞ into per (NULL: not kept) */
static int choose_heads(pr_expoly_t p, pr_control_info_t *info, double *per, const double *Q,
                        const double *K, const double *V, const pr_posw_t W, int n, int d,
                        const pr_attn_opts_t *opts, const pr_control_opts_t *o, int lowrank,
                        const pr_control_heads_t *heads)
{
    info->head = -1;   /* a refusal before the data names no head */
    if (heads_bad(heads))
        return PR_EINVAL;
    int st = data_info_heads(info, per, Q, K, V, W, n, d, opts, o, lowrank, heads);
    if (st)
        return st;
    double f[3];
    path_factors(f, n, d, opts, lowrank);
    st = pr_control_choose_poly(p, info, o, f[0], f[1], f[2]);
    info->terms = pr_expand_binom(lowrank ? d : W->s, info->degree);
    return st;
}

int pr_control_choose_heads(pr_expoly_t p, pr_control_info_t *info, const double *Q, const double *K,
                            const double *V, const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts,
                            const pr_control_opts_t *o, int lowrank, const pr_control_heads_t *heads)
{
    return choose_heads(p, info, NULL, Q, K, V, W, n, d, opts, o, lowrank, heads);
}

int pr_control_choose(pr_expoly_t p, pr_control_info_t *info, const double *Q, const double *K,
                      const double *V, const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts,
                      const pr_control_opts_t *o, int lowrank)
{
    return pr_control_choose_heads(p, info, Q, K, V, W, n, d, opts, o, lowrank, NULL);
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

/* choose_heads (each head's R_floor, ‖V‖∞ into per), then pr_control_budget for h heads' forward (and
 * backward): the plan's bytes once plus extra_bytes (the heads' own buffers), the operations per
 * head */
static int prepare_heads(pr_expoly_t p, pr_attn_opts_t *po, pr_control_info_t *info, double *per,
                         const double *Q, const double *K, const double *V, const pr_posw_t W, int n, int d,
                         const pr_attn_opts_t *opts, const pr_control_opts_t *o, int lowrank, int backward,
                         const pr_control_heads_t *heads, double extra_bytes)
{
    static const char *what[2][2] = {{"the fft path's plan", "the fft path's forward and backward"},
                                     {"the lowrank path's features", "the lowrank path's forward and backward"}};
    int st = choose_heads(p, info, per, Q, K, V, W, n, d, opts, o, lowrank, heads);
    if (st)
        return st;
    int h = heads ? heads->h : 1;
    double fb, fo, hb = 0.0, ho = 0.0, bb = 0.0, bo = 0.0;
    /* pr_control_budget counts one head's forward; the heads' plan and work on top of it */
    pr_control_needs(&fb, &fo, W, n, d, p->degree, lowrank);
    if (h > 1 && lowrank) {
        hb = fb;
        ho = h * fo;
    } else if (h > 1) {
        pr_fast_needs_heads(&hb, &ho, W, n, d, p->degree, h, heads->h_kv);
    }
    /* the backward: the FFT path's plan for h heads, at its least (it keeps spectra and symbol sums
       only where the room left allows: backward_room); the low-rank path's buffers serve every head */
    if (backward && !lowrank) {
        pr_backward_needs_heads(&bb, &bo, W, n, d, p->degree, h, 0);
        bb = pr_backward_needs_least(W, n, d, p->degree, h);
    } else if (backward)
        pr_backward_needs(&bb, &bo, W, n, d, p->degree, lowrank);
    if (backward && lowrank)
        bo *= h;
    if ((st = pr_control_budget(info, W, n, d, o, lowrank, bb + extra_bytes + (h > 1 ? hb - fb : 0.0),
                                (h > 1 ? ho - fo : 0.0) + bo, what[lowrank][backward])))
        return st;
    *po = *opts;
    po->poly = p->c;
    po->poly_degree = p->degree;
    return PR_OK;
}

int pr_control_prepare(pr_expoly_t p, pr_attn_opts_t *po, pr_control_info_t *info, const double *Q,
                       const double *K, const double *V, const pr_posw_t W, int n, int d,
                       const pr_attn_opts_t *opts, const pr_control_opts_t *o, int lowrank, int backward)
{
    return prepare_heads(p, po, info, NULL, Q, K, V, W, n, d, opts, o, lowrank, backward, NULL, 0.0);
}

/* NULL, or room for each head's R_floor and ‖V‖∞ when heads->bound asks for the heads' bounds */
static int per_heads_alloc(double **per, const pr_control_heads_t *hd)
{
    *per = NULL;
    if (!hd || !hd->bound || hd->h < 1)
        return PR_OK;
    *per = malloc(2 * sizeof(double) * (size_t)hd->h);
    return *per ? PR_OK : PR_ENOMEM;
}

/* each query head's bound under the common P (heads->bound) from its data part, as choose_heads
 * kept it (per): computed once, not again from the data */
static void heads_bounds(const pr_control_heads_t *hd, const double *per, const pr_expoly_t p, int n,
                         int d, const pr_attn_opts_t *opts, int lowrank)
{
    if (!per)
        return;
    double f[3];
    path_factors(f, n, d, opts, lowrank);
    for (int q = 0; q < hd->h; q++) {
        pr_control_info_t hi = {.R_floor = per[2 * q], .vnorm = per[2 * q + 1]};
        poly_bound(&hi, p, f[0], f[1], f[2]);
        hd->bound[q] = hi.bound;
    }
}

/* the forward of every head on one plan (F planned by the caller for the FFT path); lse: NULL or
 * h × n row sums' logarithms for the backward */
static int forward_run(double *O, double *lse, pr_control_info_t *info, pr_fast_plan_t F, const double *Q,
                       const double *K, const double *V, const pr_posw_t W, const pr_attn_opts_t *po,
                       const pr_control_opts_t *o, int lowrank, int h, int h_kv)
{
    if (lowrank) {
        pr_lowrank_plan_t *L;
        int st = pr_lowrank_plan(&L, W, po, o->mem_budget, o->max_terms);
        if (!st)
            st = pr_lowrank_execute_heads(O, L, h, h_kv, Q, K, V);
        pr_lowrank_destroy(L);
        return st;
    }
    int st = pr_fast_execute_heads(O, F, h, h_kv, Q, K, V);
    if (!st && lse)
        pr_backward_lse_from_fast(lse, F);
    info->streamed = F->streamed;
    info->transforms = F->transforms;
    info->plan_transforms = F->plan_transforms;
    info->plan_seconds = F->plan_seconds;
    return st;
}

int pr_control_forward_heads(double *O, pr_control_info_t *info, const double *Q, const double *K,
                             const double *V, const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts,
                             const pr_control_opts_t *o, int lowrank, const pr_control_heads_t *heads)
{
    pr_control_info_t own;
    if (!info)
        info = &own;
    info->head = -1;   /* a refusal before the data names no head */
    if (lowrank && (!pr_lowrank_applies(W) || opts->beta))
        return PR_EINVAL;
    pr_expoly_t p;
    pr_expoly_init(p);
    pr_attn_opts_t po;
    double *per;
    int st = per_heads_alloc(&per, heads);
    if (!st)
        st = prepare_heads(p, &po, info, per, Q, K, V, W, n, d, opts, o, lowrank, 0, heads,
                           per ? 16.0 * heads->h : 0.0);
    int h = heads ? heads->h : 1, h_kv = heads ? heads->h_kv : 1;
    if (!st && lowrank) {
        st = forward_run(O, NULL, info, NULL, Q, K, V, W, &po, o, 1, h, h_kv);
    } else if (!st) {
        pr_fast_plan_t F;
        if (!(st = pr_fast_plan_gqa(F, W, &po, h, h_kv, o->mem_budget, o->max_terms, o->plan_flags))) {
            st = forward_run(O, NULL, info, F, Q, K, V, W, &po, o, 0, h, h_kv);
            pr_fast_destroy(F);
        }
    }
    if (!st)
        heads_bounds(heads, per, p, n, d, opts, lowrank);
    free(per);
    pr_expoly_clear(p);
    return st;
}

int pr_control_forward_fft(double *O, pr_control_info_t *info, const double *Q, const double *K,
                           const double *V, const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts,
                           const pr_control_opts_t *o)
{
    return pr_control_forward_heads(O, info, Q, K, V, W, n, d, opts, o, 0, NULL);
}

int pr_control_forward_lowrank(double *O, pr_control_info_t *info, const double *Q, const double *K,
                               const double *V, const pr_posw_t W, int n, int d,
                               const pr_attn_opts_t *opts, const pr_control_opts_t *o)
{
    return pr_control_forward_heads(O, info, Q, K, V, W, n, d, opts, o, 1, NULL);
}

/* ---- the gradients: the G4 bound and the driver ---- */

/* ρ, ρ': W's largest row sums max_{a, ℓ} Σ_{k: a_k = a} |w_k(ℓ)| and the same over b_k */
static void w_rowsums(double *rho, double *rhop, const pr_posw_struct *W)
{
    size_t L = 2 * (size_t)W->n - 1;
    *rho = *rhop = 0.0;
    for (int a = 0; a < W->d; a++)
        for (size_t l = 0; l < L; l++) {
            double ra = 0.0, rb = 0.0;
            for (int k = 0; k < W->s; k++) {
                double w = fabs(W->w[(size_t)k * L + l]);
                ra += W->a[k] == a ? w : 0.0;
                rb += W->b[k] == a ? w : 0.0;
            }
            *rho = fmax(*rho, ra);
            *rhop = fmax(*rhop, rb);
        }
}

int pr_control_backward_bound_heads(pr_control_backward_bound_t *bound, pr_control_backward_bound_t *per_head,
                                    double eps_A, const double *Q, const double *K, const double *V,
                                    const pr_posw_struct *W, const double *dO, const double *kappa,
                                    const double *kappa_w, int n, int d, int h, int h_kv, double sigma)
{
    if (!(eps_A >= 0.0) || !(eps_A < 1.0 / 3.0) || n <= 0 || d <= 0 || W->n != n || W->d != d || h < 1 ||
        h_kv < 1 || h % h_kv)
        return PR_EINVAL;
    size_t nd = (size_t)n * d, L = 2 * (size_t)n - 1;
    int group = h / h_kv;
    double eta = 2.0 * eps_A / (1.0 - eps_A), rho, rhop, nusum = 0.0, qall = 0.0, kall = 0.0, vall = 0.0;
    w_rowsums(&rho, &rhop, W);
    /* entrywise in j, each head's dK, dV error is at most its constant times κ_j: summed over a kv
     * head's query heads, the largest constant times the summed κ_j */
    for (int k = 0; k < h_kv; k++) {
        double qinf = pr_vec_max_abs(Q + k * group * nd, group * nd), kinf = pr_vec_max_abs(K + k * nd, nd);
        double vinf = pr_vec_max_abs(V + k * nd, nd), kapmax = pr_vec_max_abs(kappa + (size_t)k * n, n);
        double dk = 3.0 * eta * sigma * vinf * qinf * rhop * kapmax / (1.0 - eta), dv = eta * kapmax / (1.0 - eta);
        qall = fmax(qall, qinf);
        kall = fmax(kall, kinf);
        vall = fmax(vall, vinf);
        for (int q = k * group; q < (k + 1) * group; q++) {
            double numax = 0.0;
            for (int i = 0; i < n; i++) {
                double l1 = 0.0;
                for (int c = 0; c < d; c++)
                    l1 += fabs(dO[((size_t)q * n + i) * d + c]);
                numax = fmax(numax, l1);
                nusum += l1;
            }
            double dq = 3.0 * eta * sigma * vinf * kinf * rho * numax;
            bound->dq = q ? fmax(bound->dq, dq) : dq;
            if (per_head)
                per_head[q] = (pr_control_backward_bound_t){dq, dk, dv, 0.0};
        }
        bound->dk = k ? fmax(bound->dk, dk) : dk;
        bound->dv = k ? fmax(bound->dv, dv) : dv;
    }
    /* dw is summed over every head: the largest entries, the summed diagonal weights */
    double diag = kappa_w ? pr_vec_max_abs(kappa_w, L) / (1.0 - eta) : nusum;
    bound->dw = 3.0 * eta * sigma * vall * qall * kall * diag;
    for (int q = 0; per_head && q < h; q++)
        per_head[q].dw = bound->dw;
    return PR_OK;
}

int pr_control_backward_bound(pr_control_backward_bound_t *bound, double eps_A,
                              const double *Q, const double *K, const double *V, const pr_posw_struct *W,
                              const double *dO, const double *kappa, const double *kappa_w, int n, int d,
                              double sigma)
{
    return pr_control_backward_bound_heads(bound, NULL, eps_A, Q, K, V, W, dO, kappa, kappa_w, n, d, 1, 1, sigma);
}

/* the gradients' bounds (G4) for every head, P's error plus the forward's relative floor (the
 * worst head's: the rounding the floor accounts for is covered too) */
static int grad_bounds(pr_control_backward_report_t *rep, const pr_control_info_t *info, const double *Q,
                       const double *K, const double *V, const pr_posw_struct *W, const double *dO,
                       const double *kappa, const double *kappa_w, int n, int d, double sigma,
                       const pr_control_heads_t *hd)
{
    /* the floor is 2‖V‖∞ f/(1-f) with f the relative rounding of Ã's rows: add f to P's error */
    double f = info->vnorm > 0 ? info->floor / (2.0 * info->vnorm + info->floor) : 0.0;
    int h = hd ? hd->h : 1, h_kv = hd ? hd->h_kv : 1;
    pr_control_backward_bound_t *per = hd ? hd->grad : NULL;
    if (info->poly_err + f < 1.0 / 3.0)
        return pr_control_backward_bound_heads(&rep->bound, per, info->poly_err + f, Q, K, V, W, dO, kappa, kappa_w,
                                               n, d, h, h_kv, sigma);
    /* a P too far from e^x (a forced low --degree) leaves the gradients without a bound, not
     * the run without gradients */
    rep->bound.dq = rep->bound.dk = rep->bound.dv = rep->bound.dw = INFINITY;
    for (int q = 0; per && q < h; q++)
        per[q] = rep->bound;
    return PR_OK;
}

int pr_control_backward_heads(double *O, double *dQ, double *dK, double *dV, double *dw,
                              pr_control_info_t *info, pr_control_backward_report_t *rep,
                              const double *Q, const double *K, const double *V, const pr_posw_struct *W,
                              const double *dO, int n, int d, const pr_attn_opts_t *opts,
                              const pr_control_opts_t *o, int lowrank, const pr_control_heads_t *heads)
{
    info->head = -1;   /* a refusal before the data names no head */
    if (heads_bad(heads) || (lowrank && (!pr_lowrank_applies(W) || opts->beta)))
        return PR_EINVAL;
    int h = heads ? heads->h : 1, h_kv = heads ? heads->h_kv : 1;
    size_t nd = (size_t)n * d;
    int st = pr_attn_check(Q, K, V, W, n, d, opts);
    if (st)
        return st;
    if (pr_vec_check_finite(dO, nd * h))
        return PR_ENONFINITE;
    memset(rep, 0, sizeof(*rep));
    double t0 = pr_timing_wall();
    /* error control exactly as the forward alone does it; the forward's and the backward's
     * memory and work checked before either is planned; past one head, the heads' own buffers:
     * lse (FFT path), kappa, the low-rank path's grouped-query dK, dV parts, the heads' R_floor, ‖V‖∞ */
    double own = 8.0 * ((lowrank ? 0.0 : h - 1.0) * n + (h_kv - 1.0) * n + (lowrank && h > h_kv ? 2.0 * nd + n : 0.0) +
                        (heads && heads->bound ? 2.0 * h : 0.0));
    pr_expoly_t p;
    pr_expoly_init(p);
    pr_attn_opts_t po;
    double *per;
    if ((st = per_heads_alloc(&per, heads)) ||
        (st = prepare_heads(p, &po, info, per, Q, K, V, W, n, d, opts, o, lowrank, 1, heads, own))) {
        free(per);
        pr_expoly_clear(p);
        return st;
    }
    double *kappa = malloc(sizeof(double) * n * h_kv), *lse = lowrank ? NULL : malloc(sizeof(double) * n * h);
    pr_fast_plan_t F;
    pr_backward_plan *bp = NULL;
    int planned = 0;
    st = PR_ENOMEM;
    if (!kappa || (!lowrank && !lse))
        goto done;
    if (lowrank) {
        st = forward_run(O, NULL, info, NULL, Q, K, V, W, &po, o, 1, h, h_kv);
        rep->forward_s = pr_timing_wall() - t0;
        t0 = pr_timing_wall();
        if (!st)
            st = pr_backward_lowrank_heads(dQ, dK, dV, kappa, Q, K, V, W, O, NULL, dO, n, d, h, h_kv, &po);
        rep->terms = (long)pr_expand_binom(d, p->degree + 1);
    } else {
        if ((st = pr_fast_plan_gqa(F, W, &po, h, h_kv, o->mem_budget, o->max_terms, o->plan_flags)))
            goto done;
        planned = 1;
        if ((st = forward_run(O, lse, info, F, Q, K, V, W, &po, o, 0, h, h_kv)))
            goto done;
        rep->forward_s = pr_timing_wall() - t0;
        t0 = pr_timing_wall();
        /* the backward plan's room: the budget less the forward plan and the heads' buffers, and at
           least its least size (which the budget check above admitted beside them) */
        double room = fmax((double)o->mem_budget - (double)F->bytes - own,
                           pr_backward_needs_least(W, n, d, po.poly_degree, h));
        if ((st = pr_backward_plan_heads(&bp, F, W, &po, h, dw != NULL, room)) ||
            (st = pr_backward_execute_heads(bp, dQ, dK, dV, dw, kappa, Q, K, V, O, lse, dO, h, h_kv)))
            goto done;
        pr_backward_info_t bi;
        pr_backward_info(&bi, bp);
        rep->terms = bi.terms;
        rep->transforms = bi.transforms;
    }
    rep->backward_s = pr_timing_wall() - t0;
    if (!st)
        st = grad_bounds(rep, info, Q, K, V, W, dO, kappa, bp ? pr_backward_kappa_w(bp) : NULL, n, d, opts->sigma,
                         heads);
    if (!st)
        heads_bounds(heads, per, p, n, d, opts, lowrank);
    if (!st && (lowrank || !dw)) {
        rep->bound.dw = NAN;
        for (int q = 0; heads && heads->grad && q < h; q++)
            heads->grad[q].dw = NAN;
    }
done:
    pr_backward_destroy(bp);
    if (planned)
        pr_fast_destroy(F);
    pr_expoly_clear(p);
    free(per);
    free(kappa);
    free(lse);
    return st;
}

int pr_control_backward(double *O, double *dQ, double *dK, double *dV, double *dw,
                        pr_control_info_t *info, pr_control_backward_report_t *rep,
                        const double *Q, const double *K, const double *V, const pr_posw_struct *W,
                        const double *dO, int n, int d, const pr_attn_opts_t *opts,
                        const pr_control_opts_t *o, int lowrank)
{
    return pr_control_backward_heads(O, dQ, dK, dV, dw, info, rep, Q, K, V, W, dO, n, d, opts, o, lowrank, NULL);
}
