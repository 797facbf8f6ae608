/* The float library alone (issue 14): this program is built against libpolyrope and polyrope.h
 * only, without exact/ on its include path and without Arb, FLINT, GMP or MPFR on its link line;
 * tests/test_install.sh checks its NEEDED entries and builds it again from an installed tree
 * with `pkg-config --cflags --libs polyrope`. It runs the dense reference and both fast paths on
 * seeded instances: each fast path within its own bound (pr_control) plus the dense reference's
 * error estimate (pr_dense_error_est), the auto model picking one of them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "polyrope.h"
#include "pr_test.h"

#if defined(POLYROPE_EXACT_H) || defined(ARB_H) || defined(FLINT_H) || defined(__GMP_H__) || defined(__MPFR_H)
#error "polyrope.h pulled in the exact library or one of its dependencies"
#endif

static void one(pr_rng_t rng, int trial)
{
    int n = 64 + (int)pr_rng_below(rng, 200), d = 2 * (1 + (int)pr_rng_below(rng, 4)), causal = trial % 2;
    double B = pr_rng_range(rng, 0.2, 1.0);
    size_t nd = (size_t)n * d;
    pr_posw_t W;
    PR_CHECK_OK(pr_posw_init_rope(W, n, d, 10000.0, trial % 3 ? PR_ROPE_NEOX : PR_ROPE_INTERLEAVED));
    pr_attn_opts_t opts;
    pr_attn_opts_default(&opts, d);
    opts.causal = causal;
    double *Q = malloc(sizeof(double) * 5 * nd), *K = Q + nd, *V = K + nd, *O = V + nd, *Of = O + nd;
    pr_rng_fill(Q, 3L * (long)nd, B, rng);
    PR_CHECK_OK(pr_dense_forward(O, NULL, Q, K, V, W, n, d, &opts));
    pr_dense_err_t est;
    PR_CHECK_OK(pr_dense_error_est(&est, Q, K, V, W, O, NULL, n, d, &opts));
    pr_control_opts_t o;
    pr_control_opts_default(&o);
    o.eps = 1e-6;
    for (int lr = 0; lr < 2; lr++) {
        pr_control_info_t info;
        int st = lr ? pr_control_forward_lowrank(Of, &info, Q, K, V, W, n, d, &opts, &o)
                    : pr_control_forward_fft(Of, &info, Q, K, V, W, n, d, &opts, &o);
        double err = pr_vec_max_abs_diff(Of, O, nd);
        PR_CHECK(st == PR_OK && err <= info.bound + est.o, "trial %d (n %d, d %d, B %g, causal %d) %s: %s, "
                 "err %g > bound %g + dense estimate %g", trial, n, d, B, causal, lr ? "lowrank" : "fft",
                 pr_strerror(st), err, info.bound, est.o);
    }
    pr_auto_t a;
    PR_CHECK_OK(pr_auto_predict(&a, Q, K, V, NULL, W, n, d, &opts, &o));
    PR_CHECK(isfinite(a.t[a.pick]) && a.status[a.pick] == PR_OK, "trial %d: auto picked %s (status %d, %g s)",
             trial, pr_auto_algo_name(a.pick), a.status[a.pick], a.t[a.pick]);
    pr_posw_clear(W);
    free(Q);
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_float_only", 20261128));
    pr_version_fprint(stdout, "test_float_only: ");
    for (int trial = 0; trial < 6; trial++)
        one(rng, trial);
    return pr_test_finish("test_float_only");
}
