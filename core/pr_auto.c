/* The --algo auto cost model (pr_auto.h): every path timed on the problem's leading rows. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_toeplitz.h"
#include "pr_dense.h"
#include "pr_fast.h"
#include "pr_lowrank.h"
#include "pr_backward.h"
#include "pr_timing.h"
#include "pr_auto.h"

const char *pr_auto_algo_name(pr_auto_algo_t algo)
{
    return algo == PR_AUTO_DENSE ? "dense" : algo == PR_AUTO_LOWRANK ? "lowrank" : "fft";
}

/* The leading m rows of the problem (W restricted to offsets |ℓ| < m: the leading m×m block of
 * every Toeplitz matrix; Q, K, V, dO's first m rows are their prefixes) and one run's outputs. */
typedef struct {
    int m, d, want_dw;
    pr_posw_t S;
    pr_attn_opts_t opts;    /* the problem's, with β cut to the block */
    const double *dO;       /* NULL: forward only */
    double *beta, *O, *lse, *dQ, *dK, *dV, *dw;
} lead_t;

static void lead_clear(lead_t *c)
{
    pr_posw_clear(c->S);
    free(c->beta); free(c->O); free(c->lse); free(c->dQ); free(c->dK); free(c->dV); free(c->dw);
    memset(c, 0, sizeof(*c));
}

static int lead_init(lead_t *c, const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts,
                     const double *dO, int m)
{
    memset(c, 0, sizeof(*c));
    size_t md = (size_t)m * d, L = 2 * (size_t)m - 1;
    int st = pr_posw_init(c->S, m, W->d, W->s);
    if (st)
        return st;
    memcpy(c->S->a, W->a, sizeof(int) * W->s);
    memcpy(c->S->b, W->b, sizeof(int) * W->s);
    for (int k = 0; k < W->s; k++)
        memcpy(pr_posw_seq(c->S, k), pr_posw_seq(W, k) + (W->n - m), sizeof(double) * L);
    c->S->kind = W->kind;
    c->S->rope_base = W->rope_base;
    c->m = m;
    c->d = d;
    c->opts = *opts;
    c->dO = dO;
    c->want_dw = dO && !pr_lowrank_applies(W);
    c->O = malloc(sizeof(double) * md);
    c->lse = malloc(sizeof(double) * m);
    int bad = !c->O || !c->lse;
    if (opts->beta) {
        c->opts.beta = c->beta = malloc(sizeof(double) * L);
        if (!(bad |= !c->beta))
            memcpy(c->beta, opts->beta + (n - m), sizeof(double) * L);
    }
    if (dO) {
        c->dQ = malloc(sizeof(double) * md);
        c->dK = malloc(sizeof(double) * md);
        c->dV = malloc(sizeof(double) * md);
        bad |= !c->dQ || !c->dK || !c->dV;
    }
    if (c->want_dw)
        bad |= !(c->dw = malloc(sizeof(double) * L * W->s));
    if (bad) {
        lead_clear(c);
        return PR_ENOMEM;
    }
    return PR_OK;
}

/* the faster of two dense runs (forward, and backward with dO) on the leading m rows (the first
 * pays for thread start-up) */
static int time_dense(double *t, const double *Q, const double *K, const double *V,
                      const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts,
                      const double *dO, int m)
{
    lead_t c;
    int st = lead_init(&c, W, n, d, opts, dO, m);
    *t = INFINITY;
    for (int rep = 0; rep < 2 && !st; rep++) {
        double t0 = pr_timing_wall();
        st = pr_dense_forward(c.O, c.lse, Q, K, V, c.S, m, d, &c.opts);
        if (!st && dO)
            st = pr_dense_backward(c.dQ, c.dK, c.dV, c.dw, Q, K, V, c.S, c.O, c.lse, dO, m, d, &c.opts);
        *t = fmin(*t, pr_timing_wall() - t0);
    }
    if (c.m)
        lead_clear(&c);
    return st;
}

/* the least of two low-rank runs (execute, and the low-rank backward with dO) */
static int time_lowrank(double *t, lead_t *c, const double *Q, const double *K, const double *V,
                        const pr_control_opts_t *o)
{
    int st = PR_OK;
    *t = INFINITY;
    for (int rep = 0; rep < 2 && !st; rep++) {
        double t0 = pr_timing_wall();
        st = pr_lowrank_execute(c->O, Q, K, V, c->S, c->m, c->d, &c->opts, o->mem_budget, o->max_terms);
        if (!st && c->dO)
            st = pr_backward_lowrank(c->dQ, c->dK, c->dV, NULL, Q, K, V, c->S, c->O, NULL, c->dO, c->m,
                                     c->d, &c->opts);
        *t = fmin(*t, pr_timing_wall() - t0);
    }
    return st;
}

/* the plans (forward, and backward with dO) + the least of two executes of the FFT path; planned
 * with estimates (measuring would cost more than the calibration run itself) */
static int time_fft(double *t, lead_t *c, const double *Q, const double *K, const double *V,
                    const pr_control_opts_t *o)
{
    pr_fast_plan_t F;
    pr_backward_plan *bp = NULL;
    int st = pr_fast_plan(F, c->S, &c->opts, o->mem_budget, o->max_terms, PR_FAST_ESTIMATE);
    if (st)
        return st;
    double plan = F->plan_seconds, best = INFINITY;
    if (c->dO) {
        double t0 = pr_timing_wall();
        st = pr_backward_plan_fft(&bp, F, c->S, &c->opts, c->want_dw, (double)o->mem_budget);
        plan += pr_timing_wall() - t0;
    }
    for (int rep = 0; rep < 2 && !st; rep++) {
        double t0 = pr_timing_wall();
        st = pr_fast_execute(c->O, F, Q, K, V);
        if (!st && c->dO) {
            pr_backward_lse_from_fast(c->lse, F);
            st = pr_backward_execute(bp, c->dQ, c->dK, c->dV, c->dw, NULL, Q, K, V, c->O, c->lse, c->dO);
        }
        best = fmin(best, pr_timing_wall() - t0);
    }
    *t = plan + best;
    pr_backward_destroy(bp);
    pr_fast_destroy(F);
    return st;
}

static double fft_work(int n)
{
    double L = (double)pr_toeplitz_good_size(2L * n - 1, 5, 1);
    return L * log2(L);
}

/* FFT path at the calibration size m, and at m/2 to separate the fixed cost: plan + execute =
 * a + b·L log L, where the term tables and allocations are a fixed cost that does not grow with
 * n (a failed second calibration only leaves the model proportional) */
static int calibrate_fft(pr_auto_t *a, lead_t *c, const double *Q, const double *K, const double *V,
                         const pr_posw_t W, int n, const pr_attn_opts_t *opts, const pr_control_opts_t *o)
{
    int m = c->m, st = time_fft(&a->t_cal[PR_AUTO_FFT], c, Q, K, V, o);
    lead_t h;
    if (st || m < 64 || lead_init(&h, W, n, c->d, opts, c->dO, m / 2))
        return st;
    h.opts.poly = c->opts.poly;
    h.opts.poly_degree = c->opts.poly_degree;
    double half = INFINITY, best = a->t_cal[PR_AUTO_FFT];
    int st2 = time_fft(&half, &h, Q, K, V, o);
    lead_clear(&h);
    double slope = (best - half) / (fft_work(m) - fft_work(m / 2));
    if (!st2 && slope > 0.0)
        a->fft_fixed = fmax(0.0, best - slope * fft_work(m));
    return PR_OK;
}

/* Error control for the full problem (the degree it needs), the budget at the full size, and the
 * operation-count filter: PR_OK when the path is worth timing, with P in p. */
static int fast_status(pr_expoly_t p, const double *Q, const double *K, const double *V,
                       const double *dO, const pr_posw_t W, int n, int d,
                       const pr_attn_opts_t *opts, const pr_control_opts_t *o, int lr)
{
    pr_control_info_t info;
    if (lr && (!pr_lowrank_applies(W) || opts->beta))
        return PR_EINVAL;
    int st = pr_control_choose(p, &info, Q, K, V, W, n, d, opts, o, lr);
    double bb = 0.0, bo = 0.0;
    if (!st && dO)
        pr_backward_needs(&bb, &bo, W, n, d, info.degree, lr);
    if (!st)
        st = pr_control_budget(&info, W, n, d, o, lr, bb, bo, "auto");
    /* not worth timing when its operation count is 8 times the dense one's, n² (s + d) */
    double L = (double)pr_toeplitz_good_size(2L * n - 1, 5, 1);
    if (!st && (lr ? 4.0 * n * info.terms * (d + 1) : info.terms * (d + 2) * 3.0 * L * log2(L)) >
                   8.0 * (double)n * n * (W->s + d))
        st = PR_EBUDGET;
    return st;
}

int pr_auto_predict(pr_auto_t *a, const double *Q, const double *K, const double *V,
                    const double *dO, const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts,
                    const pr_control_opts_t *o)
{
    memset(a, 0, sizeof(*a));
    int st = pr_attn_check(Q, K, V, W, n, d, opts);
    if (st)
        return st;
    if (dO && pr_vec_check_finite(dO, (size_t)n * d))
        return PR_ENONFINITE;
    int m = n < 1024 ? n : 1024;
    a->n_cal = m;
    a->backward = dO != NULL;
    /* the dense reference is timed at sizes doubling from m until a run takes 30 ms: shorter runs
     * are dominated by thread start-up and do not scale as n² */
    a->n_cal_dense = m;
    a->status[PR_AUTO_DENSE] = time_dense(&a->t_cal[0], Q, K, V, W, n, d, opts, dO, m);
    while (!a->status[0] && a->t_cal[0] < 0.03 && 2 * a->n_cal_dense <= n) {
        a->n_cal_dense *= 2;
        a->status[0] = time_dense(&a->t_cal[0], Q, K, V, W, n, d, opts, dO, a->n_cal_dense);
    }
    lead_t c;
    if ((st = lead_init(&c, W, n, d, opts, dO, m)))
        return st;
    pr_expoly_t p;
    pr_expoly_init(p);
    for (int path = PR_AUTO_LOWRANK; path <= PR_AUTO_FFT; path++) {
        int lr = path == PR_AUTO_LOWRANK;
        a->t_cal[path] = INFINITY;
        st = fast_status(p, Q, K, V, dO, W, n, d, opts, o, lr);
        c.opts.poly = p->c;
        c.opts.poly_degree = p->degree;
        if (!st)
            st = lr ? time_lowrank(&a->t_cal[path], &c, Q, K, V, o) : calibrate_fft(a, &c, Q, K, V, W, n, opts, o);
        a->status[path] = st;
    }
    pr_expoly_clear(p);
    lead_clear(&c);
    double r = (double)n / m, rd = (double)n / a->n_cal_dense;
    a->t[0] = a->status[0] ? INFINITY : a->t_cal[0] * rd * rd;
    a->t[1] = a->status[1] ? INFINITY : a->t_cal[1] * r;
    a->t[2] = a->status[2] ? INFINITY
                           : a->fft_fixed + (a->t_cal[2] - a->fft_fixed) * fft_work(n) / fft_work(m);
    a->pick = PR_AUTO_DENSE;
    for (int k = 1; k <= 2; k++)
        if (a->t[k] < a->t[a->pick])
            a->pick = (pr_auto_algo_t)k;
    return PR_OK;
}
