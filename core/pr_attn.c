#include <math.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_attn.h"

double pr_scale_sigma(pr_scale_t scale, int d)
{
    return scale == PR_SCALE_INV_SQRT_D ? 1.0 / sqrt((double)d) : 1.0 / d;
}

void pr_attn_opts_default(pr_attn_opts_t *opts, int d)
{
    opts->sigma = pr_scale_sigma(PR_SCALE_INV_D, d);
    opts->causal = 0;
    opts->beta = 0;
    opts->poly = 0;
    opts->poly_degree = 0;
}

int pr_bias_alibi(double *beta, int n, double m)
{
    if (n <= 0 || !(m >= 0.0) || !isfinite(m))
        return PR_EINVAL;
    for (long l = -(n - 1); l <= n - 1; l++)
        beta[l + n - 1] = -m * fabs((double)l);
    return PR_OK;
}

double pr_attn_log_bias(const pr_attn_opts_t *opts, int n, long l)
{
    if (opts->causal && l < 0)
        return -INFINITY;
    return opts->beta ? opts->beta[l + n - 1] : 0.0;
}

int pr_attn_check(const double *Q, const double *K, const double *V, const pr_posw_struct *W,
                  int n, int d, const pr_attn_opts_t *opts)
{
    if (n <= 0 || d <= 0)
        return PR_EINVAL;
    if (W->n != n || W->d != d)
        return PR_ESHAPE;
    if (!(opts->sigma > 0.0) || !isfinite(opts->sigma))
        return PR_EINVAL;
    if (opts->poly && opts->poly_degree < 0)
        return PR_EINVAL;
    size_t nd = (size_t)n * d;
    if (pr_vec_check_finite(Q, nd) || pr_vec_check_finite(K, nd) || pr_vec_check_finite(V, nd))
        return PR_ENONFINITE;
    if (pr_vec_check_finite(W->w, (size_t)W->s * (2 * (size_t)n - 1)))
        return PR_ENONFINITE;
    if (opts->beta && pr_vec_check_finite(opts->beta, 2 * (size_t)n - 1))
        return PR_ENONFINITE;
    if (opts->poly && pr_vec_check_finite(opts->poly, (size_t)opts->poly_degree + 1))
        return PR_ENONFINITE;
    return PR_OK;
}
