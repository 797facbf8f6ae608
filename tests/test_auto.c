/* pr_auto: the --algo auto model. Its predictions follow from its own calibrations by the stated
 * growth laws, it picks the least, and with an upstream gradient it accounts for the backward
 * itself (issue 14: the backward/forward ratios used to be constants measured on one machine, so
 * a path whose forward fits the budget but whose backward does not was picked, then refused). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "polyrope.h"
#include "pr_test.h"

static double fft_work(int n)
{
    double L = (double)pr_toeplitz_good_size(2L * n - 1, 5, 1);
    return L * log2(L);
}

/* the model's arithmetic from its calibrations (pr_auto.h), and the pick is the least */
static void check_model(const pr_auto_t *a, int n, const char *what)
{
    double rd = (double)n / a->n_cal_dense, r = (double)n / a->n_cal;
    PR_CHECK(a->status[0] || a->t[0] == a->t_cal[0] * rd * rd, "%s: dense %g from %g at %d", what, a->t[0],
             a->t_cal[0], a->n_cal_dense);
    PR_CHECK(a->status[1] ? isinf(a->t[1]) : a->t[1] == a->t_cal[1] * r, "%s: lowrank %g from %g (status %d)",
             what, a->t[1], a->t_cal[1], a->status[1]);
    double fft = a->fft_fixed + (a->t_cal[2] - a->fft_fixed) * fft_work(n) / fft_work(a->n_cal);
    PR_CHECK(a->status[2] ? isinf(a->t[2]) : a->t[2] == fft && a->fft_fixed >= 0.0 && a->fft_fixed <= a->t_cal[2],
             "%s: fft %g from %g, fixed %g (status %d)", what, a->t[2], a->t_cal[2], a->fft_fixed, a->status[2]);
    for (int k = 0; k < 3; k++)
        PR_CHECK(a->t[a->pick] <= a->t[k], "%s: pick %s at %g s, %s at %g s", what, pr_auto_algo_name(a->pick),
                 a->t[a->pick], pr_auto_algo_name((pr_auto_algo_t)k), a->t[k]);
}

/* General W, n large enough that the FFT path is timed: a memory budget between the FFT
 * forward's needs and its forward + backward's rules the path out with dO only. */
static void test_backward_budget(pr_rng_t rng)
{
    int n = 16384, d = 2;   /* below about 8192 the FFT path's operation count rules it out untimed */
    pr_posw_t W;
    pr_attn_opts_t opts;
    PR_CHECK_OK(pr_posw_init_general(W, n, d, rng));
    pr_attn_opts_default(&opts, d);
    double *Q = malloc(sizeof(double) * 4 * n * d), *K = Q + n * d, *V = K + n * d, *dO = V + n * d;
    pr_rng_fill(Q, 4L * n * d, 1.0, rng);
    pr_control_opts_t o;
    pr_control_opts_default(&o);
    pr_control_info_t info;
    pr_expoly_t p;
    pr_expoly_init(p);
    PR_CHECK_OK(pr_control_choose(p, &info, Q, K, V, W, n, d, &opts, &o, 0));
    double fb, fops, bb, bops;
    pr_fast_needs(&fb, &fops, W, n, d, info.degree);
    pr_backward_needs(&bb, &bops, W, n, d, info.degree, 0);
    pr_expoly_clear(p);
    o.mem_budget = (size_t)(fb + 0.5 * bb);
    pr_auto_t a;
    PR_CHECK_OK(pr_auto_predict(&a, Q, K, V, NULL, W, n, d, &opts, &o));
    PR_CHECK(!a.backward && a.status[0] == PR_OK && a.status[2] == PR_OK && a.status[1] == PR_EINVAL,
             "forward, budget %zu B (fft forward %g B, backward %g B): statuses %d %d %d", o.mem_budget, fb, bb,
             a.status[0], a.status[1], a.status[2]);
    check_model(&a, n, "forward");
    PR_CHECK_OK(pr_auto_predict(&a, Q, K, V, dO, W, n, d, &opts, &o));
    PR_CHECK(a.backward && a.status[0] == PR_OK && a.status[2] == PR_EBUDGET && a.pick == PR_AUTO_DENSE,
             "backward, budget %zu B (fft forward %g B, backward %g B): statuses %d %d %d, pick %s", o.mem_budget,
             fb, bb, a.status[0], a.status[1], a.status[2], pr_auto_algo_name(a.pick));
    check_model(&a, n, "backward within the budget");
    o.mem_budget = (size_t)(fb + bb) + 1;
    PR_CHECK_OK(pr_auto_predict(&a, Q, K, V, dO, W, n, d, &opts, &o));
    PR_CHECK(a.backward && a.status[2] == PR_OK && isfinite(a.t[2]), "backward, budget %zu B: fft status %d, %g s",
             o.mem_budget, a.status[2], a.t[2]);
    check_model(&a, n, "backward");
    dO[7] = NAN;
    PR_CHECK(pr_auto_predict(&a, Q, K, V, dO, W, n, d, &opts, &o) == PR_ENONFINITE, "NaN in dO");
    pr_posw_clear(W);
    free(Q);
}

/* RoPE: the low-rank path and its backward are timed together; β rules the low-rank path out */
static void test_rope(pr_rng_t rng)
{
    int n = 2048, d = 4;
    pr_posw_t W;
    pr_attn_opts_t opts;
    PR_CHECK_OK(pr_posw_init_rope(W, n, d, 10000.0, PR_ROPE_NEOX));
    pr_attn_opts_default(&opts, d);
    opts.causal = 1;
    double *Q = malloc(sizeof(double) * 4 * n * d), *K = Q + n * d, *V = K + n * d, *dO = V + n * d;
    double *beta = malloc(sizeof(double) * (2 * n - 1));
    pr_rng_fill(Q, 4L * n * d, 1.0, rng);
    pr_control_opts_t o;
    pr_control_opts_default(&o);
    o.eps = 1e-3;
    pr_auto_t a;
    PR_CHECK_OK(pr_auto_predict(&a, Q, K, V, dO, W, n, d, &opts, &o));
    PR_CHECK(a.backward && a.n_cal == 1024 && a.status[1] == PR_OK && isfinite(a.t[1]) && a.t_cal[1] > 0.0,
             "rope backward: lowrank status %d, %g s from %g s at %d", a.status[1], a.t[1], a.t_cal[1], a.n_cal);
    check_model(&a, n, "rope backward");
    PR_CHECK_OK(pr_bias_alibi(beta, n, 0.1));
    opts.beta = beta;
    PR_CHECK_OK(pr_auto_predict(&a, Q, K, V, dO, W, n, d, &opts, &o));
    PR_CHECK(a.status[1] == PR_EINVAL && isinf(a.t[1]) && a.pick != PR_AUTO_LOWRANK, "alibi: lowrank status %d",
             a.status[1]);
    check_model(&a, n, "rope alibi backward");
    PR_CHECK(!strcmp(pr_auto_algo_name(PR_AUTO_DENSE), "dense") && !strcmp(pr_auto_algo_name(PR_AUTO_FFT), "fft")
             && !strcmp(pr_auto_algo_name(PR_AUTO_LOWRANK), "lowrank"), "algorithm names");
    pr_posw_clear(W);
    free(Q);
    free(beta);
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_auto", 20261128));
    test_backward_budget(rng);
    test_rope(rng);
    return pr_test_finish("test_auto");
}
