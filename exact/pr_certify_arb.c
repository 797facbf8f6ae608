/* pr_certify's Arb side: the problem's real numbers (RoPE's cos/sin, σ; docs/certify.md L1),
 * one output row in ball arithmetic (the fallback, L6), the verdict of each element, and the
 * certified gradients (the whole head in Arb, n <= PR_CERTIFY_GRAD_MAX_N). */
#include <fenv.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <acb.h>
#include "pr_status.h"
#include "pr_rope.h"
#include "pr_npy.h"
#include "pr_certexp.h"
#include "pr_certify_impl.h"

#define TABLE_PREC 192

/* every point of x is <= v (proved) */
static int arb_le_d_ok(const arb_t x, double v)
{
    arf_t b;
    arf_init(b);
    arb_get_ubound_arf(b, x, TABLE_PREC);
    int ok = arf_cmp_d(b, v) <= 0;
    arf_clear(b);
    return ok;
}

/* hi + lo of the ball x's midpoint; 0 if |x - hi - lo| <= tau is not proved */
static int split_dd(double *hi, double *lo, const arb_t x, double tau)
{
    arb_t t;
    arb_init(t);
    *hi = arf_get_d(arb_midref(x), ARF_RND_NEAR);
    cert_sub_d(t, x, *hi, TABLE_PREC);
    *lo = arf_get_d(arb_midref(t), ARF_RND_NEAR);
    cert_sub_d(t, t, *lo, TABLE_PREC);
    arb_abs(t, t);
    int ok = arb_le_d_ok(t, tau);
    arb_clear(t);
    return ok;
}

/* cos/sin of m·θ_k, θ_k = base^{-2k/d}, by powers of e^{iθ_k} at TABLE_PREC bits (L1) */
static int tables(cert_prob_t *p, double base)
{
    size_t len = (size_t)p->n * p->h;
    p->ch = malloc(sizeof(double) * len);
    p->sh = malloc(sizeof(double) * len);
    p->cl = malloc(sizeof(double) * len);
    p->sl = malloc(sizeof(double) * len);
    if (!p->ch || !p->sh || !p->cl || !p->sl)
        return PR_ENOMEM;
    p->tau_lo = 0x1p-100;
    arb_t th, e;
    acb_t z1, z;
    arb_init(th);
    arb_init(e);
    acb_init(z1);
    acb_init(z);
    int ok = 1;
    for (int k = 0; k < p->h && ok; k++) {
        arb_set_d(e, base);
        arb_set_si(th, -2 * k);
        arb_div_si(th, th, p->d, TABLE_PREC);
        arb_pow(th, e, th, TABLE_PREC);
        arb_sin_cos(acb_imagref(z1), acb_realref(z1), th, TABLE_PREC);
        for (int m = 0; m < p->n && ok; m++) {
            size_t t = (size_t)m * p->h + k;
            /* the product's rectangular balls grow by cos θ + sin θ <= √2 a step: restart every 64 */
            if (m % 64 == 0) {
                arb_mul_si(e, th, m, TABLE_PREC);
                arb_sin_cos(acb_imagref(z), acb_realref(z), e, TABLE_PREC);
            }
            ok = split_dd(p->ch + t, p->cl + t, acb_realref(z), p->tau_lo) &&
                 split_dd(p->sh + t, p->sl + t, acb_imagref(z), p->tau_lo);
            acb_mul(z, z, z1, TABLE_PREC);
        }
    }
    arb_clear(th);
    arb_clear(e);
    acb_clear(z1);
    acb_clear(z);
    return ok ? PR_OK : PR_EPREC;
}

void pr_certify_sigma_arb(arb_t s, const cert_prob_t *p, slong prec)
{
    if (p->scale == PR_CERTIFY_SCALE_GIVEN) {
        arb_set_d(s, p->sigma_given);
        return;
    }
    arb_set_ui(s, (ulong)p->d);
    if (p->scale == PR_CERTIFY_SCALE_INV_SQRT_D)
        arb_rsqrt(s, s, prec);
    else
        arb_inv(s, s, prec);
}

int pr_certify_prob_init(cert_prob_t *p, const pr_certify_problem_t *prob, const pr_certify_opts_t *opts,
                         int n, int d)
{
    memset(p, 0, sizeof(*p));
    if (n < 1 || d < 1 || !prob || !opts || prob->causal < 0 || prob->causal > 1 ||
        prob->pos < PR_CERTIFY_POS_ROPE || prob->pos > PR_CERTIFY_POS_IDENTITY ||
        prob->scale < PR_CERTIFY_SCALE_INV_D || prob->scale > PR_CERTIFY_SCALE_GIVEN ||
        !(prob->alibi >= 0.0) || !isfinite(prob->alibi) || !(opts->atol >= 0.0) || !isfinite(opts->atol) ||
        !(opts->rtol >= 0.0) || !isfinite(opts->rtol) || opts->dtype < PR_CERTIFY_FLOAT64 ||
        opts->dtype > PR_CERTIFY_BFLOAT16)
        return PR_EINVAL;
    if (prob->scale == PR_CERTIFY_SCALE_GIVEN && !(prob->sigma > 0.0 && isfinite(prob->sigma)))
        return PR_EINVAL;
    p->n = n;
    p->d = d;
    p->h = d / 2;
    p->rope = prob->pos != PR_CERTIFY_POS_IDENTITY;
    p->layout = prob->pos == PR_CERTIFY_POS_ROPE_NEOX ? PR_ROPE_NEOX : PR_ROPE_INTERLEAVED;
    p->causal = prob->causal;
    p->alibi = prob->alibi;
    p->scale = prob->scale;
    p->sigma_given = prob->sigma;
    p->atol = opts->atol;
    p->rtol = opts->rtol;
    p->dtype = opts->dtype;
    p->prec = opts->prec > 0 ? opts->prec : 128;
    if (p->prec < 64 || p->prec > 4096)
        return PR_EINVAL;
    /* the callers set round-to-nearest; u = 2^-52 would cover any other mode */
    p->u = fegetround() == FE_TONEAREST ? 0x1p-53 : 0x1p-52;
    if (p->rope && (d % 2))
        return PR_EODD;
    if (p->rope && !(prob->rope_base > 1.0 && isfinite(prob->rope_base)))
        return PR_EINVAL;
    arb_t s;
    arb_init(s);
    pr_certify_sigma_arb(s, p, 128);
    p->sig = arf_get_d(arb_midref(s), ARF_RND_NEAR);
    cert_sub_d(s, s, p->sig, 128);
    cert_div_d(s, s, p->sig, 128);
    arb_abs(s, s);
    p->sig_rel = arb_le_d_ok(s, 0.0) ? 0.0 : 0x1p-52;
    int ok = arb_le_d_ok(s, p->sig_rel);
    arb_clear(s);
    if (!ok)
        return PR_EPREC;
    return p->rope ? tables(p, prob->rope_base) : PR_OK;
}

void pr_certify_prob_clear(cert_prob_t *p)
{
    free(p->ch);
    free(p->sh);
    free(p->cl);
    free(p->sl);
    p->ch = p->sh = p->cl = p->sl = NULL;
}

/* c ∋ cos m·θ_k, s ∋ sin m·θ_k (L1) */
static void cs_ball(arb_t c, arb_t s, const cert_prob_t *p, int m, int k, slong prec)
{
    size_t t = (size_t)m * p->h + k;
    arb_set_d(c, p->ch[t]);
    cert_add_d(c, c, p->cl[t], prec);
    arb_add_error_2exp_si(c, -100);
    arb_set_d(s, p->sh[t]);
    cert_add_d(s, s, p->sl[t], prec);
    arb_add_error_2exp_si(s, -100);
}

void pr_certify_rotate_balls(arb_ptr y, arb_srcptr x, int m, int sign, const cert_prob_t *p, slong prec)
{
    if (!p->rope) {
        _arb_vec_set(y, x, p->d);
        return;
    }
    arb_t c, s, t;
    arb_init(c);
    arb_init(s);
    arb_init(t);
    for (int k = 0; k < p->h; k++) {
        int a, b;
        pr_rope_pair(&a, &b, k, p->d, (pr_rope_layout_t)p->layout);
        cs_ball(c, s, p, m, k, prec);
        if (sign < 0)
            arb_neg(s, s);
        arb_mul(y + a, x + a, c, prec);
        arb_mul(t, x + b, s, prec);
        arb_sub(y + a, y + a, t, prec);
        arb_mul(y + b, x + a, s, prec);
        arb_mul(t, x + b, c, prec);
        arb_add(y + b, y + b, t, prec);
    }
    arb_clear(c);
    arb_clear(s);
    arb_clear(t);
}

void pr_certify_rotate_row_arb(arb_ptr y, const double *x, int m, const cert_prob_t *p, slong prec)
{
    arb_ptr xb = _arb_vec_init(p->d);
    for (int c = 0; c < p->d; c++)
        arb_set_d(xb + c, x[c]);
    pr_certify_rotate_balls(y, xb, m, 1, p, prec);
    _arb_vec_clear(xb, p->d);
}

void pr_certify_bias_arb(arb_t b, const cert_prob_t *p, long l, slong prec)
{
    arb_set_d(b, p->alibi);
    arb_mul_si(b, b, -labs(l), prec);
}

void pr_certify_arb_softmax_at(arb_ptr A, arb_t S, arf_t mx, int i, int jn, const cert_prob_t *p, slong prec)
{
    arb_t b;
    arb_init(b);
    arf_set_d(mx, -INFINITY);
    for (int j = 0; j < jn; j++) {
        if (p->alibi > 0.0) {
            pr_certify_bias_arb(b, p, (long)i - j, prec);
            arb_add(A + j, A + j, b, prec);
        }
        if (arf_cmp(arb_midref(A + j), mx) > 0)
            arf_set(mx, arb_midref(A + j));
    }
    arb_zero(S);
    for (int j = 0; j < jn; j++) {
        arb_sub_arf(A + j, A + j, mx, prec);
        arb_exp(A + j, A + j, prec);
        arb_add(S, S, A + j, prec);
    }
    arb_clear(b);
}

void pr_certify_arb_softmax(arb_ptr A, arb_t S, int i, int jn, const cert_prob_t *p, slong prec)
{
    arf_t mx;
    arf_init(mx);
    pr_certify_arb_softmax_at(A, S, mx, i, jn, p, prec);
    arf_clear(mx);
}

int pr_certify_arb_weights(arb_ptr A, arb_t S, arb_srcptr Qs_i, arb_srcptr Kr, int i, const cert_prob_t *p,
                       slong prec)
{
    int jn = p->causal ? i + 1 : p->n, d = p->d;
    for (int j = 0; j < jn; j++)
        arb_dot(A + j, NULL, 0, Qs_i, 1, Kr + (size_t)j * d, 1, d, prec);
    pr_certify_arb_softmax(A, S, i, jn, p, prec);
    return jn;
}

void pr_certify_arb_pv(arb_ptr O, arb_srcptr A, const arb_t S, arb_srcptr Vb, int jn, const cert_prob_t *p,
                       slong prec)
{
    for (int c = 0; c < p->d; c++) {
        arb_dot(O + c, NULL, 0, A, 1, Vb + c, p->d, jn, prec);
        arb_div(O + c, O + c, S, prec);
    }
}

int pr_certify_arb_row(arb_ptr O, arb_srcptr Qs_i, arb_srcptr Kr, arb_srcptr Vb, int i, const cert_prob_t *p,
                       slong prec)
{
    arb_ptr A = _arb_vec_init(p->n);
    arb_t S;
    arb_init(S);
    int jn = pr_certify_arb_weights(A, S, Qs_i, Kr, i, p, prec);
    pr_certify_arb_pv(O, A, S, Vb, jn, p, prec);
    arb_clear(S);
    _arb_vec_clear(A, p->n);
    return PR_OK;
}

void pr_certify_judge(double *lo, double *hi, unsigned char *state, const double *cand, arb_srcptr ref, long len,
                      const cert_prob_t *p, slong prec)
{
    arb_t e, t;
    arf_t b;
    arb_init(e);
    arb_init(t);
    arf_init(b);
    for (long k = 0; k < len; k++) {
        if (!isfinite(cand[k])) {
            lo[k] = hi[k] = INFINITY;
            state[k] = CERT_BAD;
            continue;
        }
        cert_sub_d(e, ref + k, cand[k], prec);
        arb_abs(e, e);
        arb_get_lbound_arf(b, e, prec);
        lo[k] = arf_sgn(b) > 0 ? arf_get_d(b, ARF_RND_DOWN) : 0.0;
        arb_get_ubound_arf(b, e, prec);
        hi[k] = arf_is_finite(b) ? arf_get_d(b, ARF_RND_UP) : INFINITY;
        arb_abs(t, ref + k);
        cert_mul_d(t, t, p->rtol, prec); /* rtol, atol: exact doubles */
        cert_add_d(t, t, p->atol, prec);
        if (arb_le(e, t))
            state[k] = CERT_OK;
        else if (arb_gt(e, t))
            state[k] = CERT_BAD;
        else
            state[k] = CERT_OPEN;
    }
    arb_clear(e);
    arb_clear(t);
    arf_clear(b);
}

_Static_assert(PR_CERTIFY_FLOAT32 == (int)PR_NPY_F32 && PR_CERTIFY_FLOAT16 == (int)PR_NPY_F16 &&
               PR_CERTIFY_BFLOAT16 == (int)PR_NPY_BF16 && PR_CERTIFY_FLOAT64 == (int)PR_NPY_F64,
               "pr_certify's dtypes are pr_npy_dtype_t's");

void pr_certify_summarise(pr_certify_result_t *res, const double *lo, const double *hi, const unsigned char *state,
                          const double *cand, long len, int d, int dtype)
{
    long worst = 0, bad = -1, open = 0, rows_open = 0, last_open = -1;
    double L = 0.0, U = 0.0;
    for (long k = 0; k < len; k++) {
        if (state[k] == CERT_OPEN && k / d != last_open) { /* a row with an open element */
            rows_open++;
            last_open = k / d;
        }
        if (k == 0 || lo[k] > L) {
            L = lo[k];
            worst = k;
        }
        U = hi[k] > U ? hi[k] : U;
        if (state[k] == CERT_BAD && bad < 0)
            bad = k;
        open += state[k] == CERT_OPEN;
    }
    res->lower = L;
    res->upper = U;
    res->worst_row = len ? worst / d : -1;
    res->worst_col = len ? worst % d : -1;
    /* at the worst element, in ulps of its candidate value: a power of 2, so exact unless out of range */
    double q = len && isfinite(cand[worst]) ? pr_npy_ulp((pr_npy_dtype_t)dtype, cand[worst]) : NAN;
    res->ulps_lower = len ? pr_certify_down(lo[worst] / q) : NAN;
    res->ulps_upper = len ? pr_certify_up(hi[worst] / q) : NAN;
    res->rows_open = rows_open;
    res->verdict = bad >= 0 ? PR_CERT_REFUTED : open ? PR_CERT_UNKNOWN : PR_CERT_CERTIFIED;
    res->witness_row = bad >= 0 ? bad / d : -1;
    res->witness_col = bad >= 0 ? bad % d : -1;
}
