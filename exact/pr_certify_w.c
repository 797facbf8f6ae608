/* pr_certify for a general W (attn's --w): the whole head in Arb through pr_hiprec, with σ the
 * real number of its definition and the verdict per element (docs/certify.md, "General W"). */
#include <fenv.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "pr_status.h"
#include "pr_timing.h"
#include "pr_hiprec.h"
#include "pr_vec.h"
#include "pr_certify_impl.h"

/* β_ℓ = -m|ℓ| into beta[0..2n-1) when every product is a double (then pr_hiprec's exact doubles) */
static int alibi_exact(double *beta, double m, int n)
{
    for (long l = -(n - 1); l <= n - 1; l++) {
        double x = m * (double)labs(l);
        if (!isfinite(x) || fma(m, (double)labs(l), -x) != 0.0)
            return PR_EDOMAIN;
        beta[l + n - 1] = -x;
    }
    return PR_OK;
}

static int forward_w(pr_certify_result_t *res, const double *O_cand, const double *Q, const double *K,
                     const double *V, const double *w3, int n, int d, const pr_certify_problem_t *prob,
                     const pr_certify_opts_t *opts)
{
    pr_certify_problem_t pb = *prob;
    pb.pos = PR_CERTIFY_POS_IDENTITY; /* W carries the positions */
    cert_prob_t p;
    int st = pr_certify_prob_init(&p, &pb, opts, n, d);
    size_t nd = (size_t)n * d;
    if (!st && (pr_vec_check_finite(Q, nd) || pr_vec_check_finite(K, nd) || pr_vec_check_finite(V, nd)))
        st = PR_ENONFINITE;
    if (!st && n > PR_CERTIFY_GRAD_MAX_N)
        st = PR_EBUDGET;
    pr_posw_t W;
    memset(W, 0, sizeof(W));
    double *beta = malloc(sizeof(double) * (2 * (size_t)n - 1));
    if (!st)
        st = beta ? pr_posw_init_dense(W, w3, n, d) : PR_ENOMEM;
    if (!st && p.alibi > 0.0)
        st = alibi_exact(beta, p.alibi, n);
    double *lo = NULL, *hi = NULL;
    unsigned char *state = NULL;
    if (!st) {
        lo = malloc(sizeof(double) * nd);
        hi = malloc(sizeof(double) * nd);
        state = malloc(nd);
        st = lo && hi && state ? PR_OK : PR_ENOMEM;
    }
    if (!st) {
        slong prec = p.prec, L = 2 * (slong)n - 1;
        arb_ptr Qs = _arb_vec_init((slong)nd), Kb = _arb_vec_init((slong)nd), Vb = _arb_vec_init((slong)nd);
        arb_ptr wb = _arb_vec_init(W->s * L), O = _arb_vec_init((slong)nd);
        arb_t sig;
        arb_init(sig);
        pr_certify_sigma_arb(sig, &p, prec);
        pr_hiprec_set_d_vec(Qs, Q, nd);
        _arb_vec_scalar_mul(Qs, Qs, (slong)nd, sig, prec); /* σ as a real number: folded into Q */
        pr_hiprec_set_d_vec(Kb, K, nd);
        pr_hiprec_set_d_vec(Vb, V, nd);
        pr_hiprec_set_d_vec(wb, W->w, (size_t)(W->s * L));
        pr_attn_opts_t ao;
        pr_attn_opts_default(&ao, d);
        ao.sigma = 1.0;
        ao.causal = p.causal;
        ao.beta = p.alibi > 0.0 ? beta : NULL;
        st = pr_hiprec_forward_arb(O, NULL, Qs, Kb, Vb, wb, W, n, d, &ao, prec);
        if (!st) {
            pr_certify_judge(lo, hi, state, O_cand, O, (long)nd, &p, prec);
            pr_certify_summarise(res, lo, hi, state, O_cand, (long)nd, d, p.dtype);
            res->rows = res->rows_fallback = n;
        }
        arb_clear(sig);
        _arb_vec_clear(Qs, (slong)nd);
        _arb_vec_clear(Kb, (slong)nd);
        _arb_vec_clear(Vb, (slong)nd);
        _arb_vec_clear(wb, W->s * L);
        _arb_vec_clear(O, (slong)nd);
    }
    free(lo);
    free(hi);
    free(state);
    free(beta);
    pr_posw_clear(W);
    pr_certify_prob_clear(&p);
    return st;
}

int pr_certify_forward_w(pr_certify_result_t *res, const double *O_cand, const double *Q, const double *K,
                         const double *V, const double *w3, int n, int d, const pr_certify_problem_t *prob,
                         const pr_certify_opts_t *opts)
{
    if (!res || !O_cand || !Q || !K || !V || !w3 || !prob || !opts)
        return PR_EINVAL;
    memset(res, 0, sizeof(*res));
    double t0 = pr_timing_wall();
    fenv_t env; /* Arb assumes the default floating-point environment */
    fegetenv(&env);
    fesetenv(FE_DFL_ENV);
    int st = forward_w(res, O_cand, Q, K, V, w3, n, d, prob, opts);
    fesetenv(&env);
    res->time_s = pr_timing_wall() - t0;
    return st;
}
