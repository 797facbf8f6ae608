/* Random instances shared by the checks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "check_impl.h"

int pr_inst_int(pr_rng_t rng, int lo, int hi)
{
    return lo + (int)pr_rng_below(rng, (uint64_t)(hi - lo + 1));
}

pr_pos_kind_t pr_inst_random_kind(pr_rng_t rng)
{
    static const pr_pos_kind_t kinds[] = {PR_POS_ROPE, PR_POS_ROPE_NEOX, PR_POS_GENERAL, PR_POS_IDENTITY};
    return kinds[pr_rng_below(rng, 4)];
}

pr_mask_t pr_inst_random_mask(pr_rng_t rng, int bias_ok)
{
    return (pr_mask_t)pr_rng_below(rng, bias_ok ? 3 : 2);
}

static const char *mask_name(pr_mask_t m)
{
    return m == PR_MASK_CAUSAL ? "causal" : m == PR_MASK_ALIBI ? "alibi" : "full";
}

int pr_inst_init(pr_inst_t *I, int n, int d, double B, pr_pos_kind_t kind, pr_mask_t mask,
                 pr_rng_t rng)
{
    memset(I, 0, sizeof(*I));
    pr_problem_init(I->P);
    int st = pr_problem_generate(I->P, rng, n, d, B, kind, PR_ROPE_BASE_DEFAULT, 0);
    if (!st && mask == PR_MASK_ALIBI)
        st = pr_problem_alibi(I->P, pr_rng_range(rng, 0.0, 0.5));
    if (st) {
        pr_inst_clear(I);
        return st;
    }
    I->n = n;
    I->d = d;
    I->B = B;
    I->kind = kind;
    I->mask = mask;
    I->Q = I->P->Q;
    I->K = I->P->K;
    I->V = I->P->V;
    I->beta = I->P->beta;
    I->W = I->P->W;
    I->opts = I->P->opts;
    I->opts.causal = mask == PR_MASK_CAUSAL;
    snprintf(I->config, sizeof I->config, "%s/%s", pr_pos_kind_name(kind), mask_name(mask));
    return PR_OK;
}

int pr_inst_random(pr_inst_t *I, pr_rng_t rng, int nmax, int dhalf_max, double Blo, double Bhi,
                   int bias_ok)
{
    int n = pr_inst_int(rng, 2, nmax), d = 2 * pr_inst_int(rng, 1, dhalf_max);
    double B = pr_rng_range(rng, Blo, Bhi);
    pr_pos_kind_t kind = pr_inst_random_kind(rng);
    return pr_inst_init(I, n, d, B, kind, pr_inst_random_mask(rng, bias_ok), rng);
}

void pr_inst_clear(pr_inst_t *I)
{
    pr_problem_clear(I->P);
    memset(I, 0, sizeof(*I));
}

void pr_inst_dump(pr_check_result_t *res, const pr_inst_t *I)
{
    if (!res->rec && !(res->opts && res->opts->show))
        return;
    int n = I->n, d = I->d, s = I->W->s;
    pr_check_put(res, "config", "%s", I->config);
    pr_check_put(res, "n", "%d", n);
    pr_check_put(res, "d", "%d", d);
    pr_check_put(res, "s", "%d", s);
    pr_check_put(res, "kind", "%s", pr_pos_kind_name(I->kind));
    pr_check_put(res, "mask", "%s", mask_name(I->mask));
    pr_check_put(res, "causal", "%d", I->opts.causal);
    pr_check_put_d(res, "sigma", I->opts.sigma);
    pr_check_put_d(res, "B", I->B);
    pr_check_put_vec(res, "Q", I->Q, n, d);
    pr_check_put_vec(res, "K", I->K, n, d);
    pr_check_put_vec(res, "V", I->V, n, d);
    pr_check_put_vec(res, "w", I->W->w, s, 2L * n - 1);
    double *ab = malloc(sizeof(double) * 2 * (size_t)s);
    if (ab) {
        for (int k = 0; k < s; k++) {
            ab[2 * k] = I->W->a[k];
            ab[2 * k + 1] = I->W->b[k];
        }
        pr_check_put_vec(res, "ab", ab, s, 2);
        free(ab);
    } else if (!res->dump_status) {
        res->dump_status = PR_ENOMEM;
    }
    if (I->opts.beta)
        pr_check_put_vec(res, "beta", I->opts.beta, 1, 2L * n - 1);
}

void pr_inst_R_arb(arb_t R, const pr_inst_t *I, slong prec)
{
    size_t nd = (size_t)I->n * I->d, L = 2 * (size_t)I->n - 1;
    double B = fmax(pr_vec_max_abs(I->Q, nd), pr_vec_max_abs(I->K, nd)); /* exact: a max */
    arb_t t, rs;
    arb_init(t);
    arb_init(rs);
    arb_zero(R);
    for (size_t l = 0; l < L; l++) {
        arb_zero(rs);
        for (int k = 0; k < I->W->s; k++) {
            arb_set_d(t, fabs(I->W->w[(size_t)k * L + l]));
            arb_add(rs, rs, t, prec);
        }
        arb_max(R, R, rs, prec);
    }
    arb_set_d(t, B);
    arb_mul(R, R, t, prec);
    arb_mul(R, R, t, prec);
    arb_set_d(t, I->opts.sigma);
    arb_mul(R, R, t, prec);
    arb_clear(t);
    arb_clear(rs);
}

void pr_taylor_d(double *c, int g)
{
    /* the exact 1/k! of pr_certexp, rounded: the checks then use each double's exact value */
    fmpq_poly_t P;
    fmpq_t q;
    fmpq_poly_init(P);
    fmpq_init(q);
    pr_certexp_taylor_fmpq(P, g, 1);
    for (int k = 0; k <= g; k++) {
        fmpq_poly_get_coeff_fmpq(q, P, k);
        c[k] = fmpq_get_d(q);
    }
    fmpq_clear(q);
    fmpq_poly_clear(P);
}

void pr_taylor_eps_A(arb_t epsA, const double *c, int g, const arb_t R, slong prec)
{
    arb_t t, ck, Rk;
    arb_init(t);
    arb_init(ck);
    arb_init(Rk);
    arb_pow_ui(epsA, R, (ulong)g + 1, prec);
    arb_fac_ui(t, (ulong)g + 1, prec);
    arb_div(epsA, epsA, t, prec);
    arb_one(Rk);
    for (int k = 0; k <= g; k++) {
        arb_fac_ui(t, (ulong)k, prec);
        arb_inv(t, t, prec);
        arb_set_d(ck, c[k]);
        arb_sub(t, ck, t, prec);
        arb_abs(t, t);
        arb_addmul(epsA, t, Rk, prec);
        arb_mul(Rk, Rk, R, prec);
    }
    arb_exp(t, R, prec);
    arb_mul(epsA, epsA, t, prec);
    arb_clear(t);
    arb_clear(ck);
    arb_clear(Rk);
}

int pr_taylor_degree(double R, double target)
{
    double t = exp(R) * R;
    int g = 0;
    while (t > target && g < 400) {
        g++;
        t *= R / (g + 1);
    }
    return g;
}

double pr_poly_abs(const double *c, int g, double R)
{
    double y = 0.0;
    for (int k = g; k >= 0; k--)
        y = y * R + fabs(c[k]);
    return y;
}

double pr_check_slope(const double *x, const double *y, int m)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < m; i++) {
        sx += x[i];
        sy += y[i];
        sxx += x[i] * x[i];
        sxy += x[i] * y[i];
    }
    return (m * sxy - sx * sy) / (m * sxx - sx * sx);
}
