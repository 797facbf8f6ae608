#include <math.h>
#include <stdlib.h>
#include <flint/fmpz_poly.h>
#include <flint/fmpz_vec.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_xtoeplitz.h"

enum { PR_XT_PREC = 256 };

const char *pr_xtoeplitz_verdict_name(pr_xtoeplitz_verdict_t v)
{
    return v == PR_XTOEPLITZ_CERTIFIED ? "certified" : v == PR_XTOEPLITZ_REFUTED ? "refuted" : "unknown";
}

/* p = Σ_k m_k z^k with v[k] = m_k·2^e exactly (|v[k]| when absval); returns e. Each finite
 * double is f·2^q with f·2^53 an integer, so e = min over nonzeros of q - 53 makes all m_k
 * integers. */
static slong pr_dyadic_poly(fmpz_poly_t p, const double *v, long len, int absval)
{
    slong e = WORD_MAX;
    for (long k = 0; k < len; k++)
        if (v[k] != 0) {
            int q;
            frexp(v[k], &q);
            if (q - 53 < e)
                e = q - 53;
        }
    fmpz_poly_zero(p);
    if (e == WORD_MAX)
        return 0;
    fmpz_t m;
    fmpz_init(m);
    for (long k = 0; k < len; k++)
        if (v[k] != 0) {
            int q;
            double f = frexp(absval ? fabs(v[k]) : v[k], &q);
            fmpz_set_d(m, ldexp(f, 53)); /* an integer of at most 53 bits: exact */
            fmpz_mul_2exp(m, m, (ulong)(q - 53 - e));
            fmpz_poly_set_coeff_fmpz(p, k, m);
        }
    fmpz_clear(m);
    return e;
}

/* out[k] = coefficient off+k of A·B, k < len, where A, B are the dyadic polynomials of a, b
 * (of |a|, |b| when absval); the value is out[k]·2^(*exp). */
static void pr_xconv(fmpz *out, slong *exp, const double *a, long la, const double *b, long lb,
                     long off, long len, int absval)
{
    fmpz_poly_t A, B;
    fmpz_poly_init(A);
    fmpz_poly_init(B);
    *exp = pr_dyadic_poly(A, a, la, absval) + pr_dyadic_poly(B, b, lb, absval);
    fmpz_poly_mul(A, A, B);
    for (long k = 0; k < len; k++)
        fmpz_poly_get_coeff_fmpz(out + k, A, off + k);
    fmpz_poly_clear(A);
    fmpz_poly_clear(B);
}

/* ts = the symbol of op(T): causal drops the original ℓ < 0, trans maps ℓ to -ℓ. */
static void pr_op_symbol(double *ts, const double *t, long n, unsigned op)
{
    for (long k = 0; k < 2 * n - 1; k++)
        ts[k] = 0;
    for (long l = -(n - 1); l < n; l++)
        if (!((op & PR_TOEPLITZ_CAUSAL) && l < 0))
            ts[((op & PR_TOEPLITZ_TRANS) ? -l : l) + n - 1] = t[l + n - 1];
}

/* Validates (t, x, n, op) and returns the op-symbol in a new array (*ts), or a status. */
static int pr_prepare(double **ts, const double *t, const double *x, long n, unsigned op)
{
    if (n < 1 || (op & ~3u))
        return PR_EINVAL;
    if (pr_vec_check_finite(t, 2 * (size_t)n - 1) || pr_vec_check_finite(x, (size_t)n))
        return PR_ENONFINITE;
    if (!(*ts = malloc(sizeof(double) * (2 * (size_t)n - 1))))
        return PR_ENOMEM;
    pr_op_symbol(*ts, t, n, op);
    return PR_OK;
}

int pr_xtoeplitz_apply(fmpz *y, slong *exp, const double *t, const double *x, long n, unsigned op)
{
    double *ts;
    int st = pr_prepare(&ts, t, x, n, op);
    if (st)
        return st;
    /* y_i = Σ_j ts[i-j+n-1] x_j: coefficient i+n-1 of the product */
    pr_xconv(y, exp, ts, 2 * n - 1, x, n, n - 1, n, 0);
    free(ts);
    return PR_OK;
}

/* yr = y reversed, so that c(ℓ) = Σ x_i yr_{n-1-j} is coefficient ℓ+n-1 of X·Yr */
static int pr_reversed(double **yr, const double *x, const double *y, long n)
{
    if (n < 1)
        return PR_EINVAL;
    if (pr_vec_check_finite(x, (size_t)n) || pr_vec_check_finite(y, (size_t)n))
        return PR_ENONFINITE;
    if (!(*yr = malloc(sizeof(double) * (size_t)n)))
        return PR_ENOMEM;
    for (long j = 0; j < n; j++)
        (*yr)[n - 1 - j] = y[j];
    return PR_OK;
}

int pr_xtoeplitz_correlate(fmpz *c, slong *exp, const double *x, const double *y, long n)
{
    double *yr;
    int st = pr_reversed(&yr, x, y, n);
    if (st)
        return st;
    pr_xconv(c, exp, x, n, yr, n, 0, 2 * n - 1, 0);
    free(yr);
    return PR_OK;
}

void pr_xtoeplitz_max_error(arb_t err, const double *yf, const fmpz *y, slong exp, long len)
{
    arf_t a, b, worst;
    fmpz_t e;
    arf_init(a);
    arf_init(b);
    arf_init(worst);
    fmpz_init_set_si(e, exp);
    for (long i = 0; i < len; i++) {
        arf_set_d(a, yf[i]);
        arf_set_fmpz_2exp(b, y + i, e);
        arf_sub(a, a, b, ARF_PREC_EXACT, ARF_RND_DOWN); /* exact */
        arf_abs(a, a);
        if (arf_cmp(a, worst) > 0)
            arf_set(worst, a);
    }
    arb_set_arf(err, worst);
    arf_clear(a);
    arf_clear(b);
    arf_clear(worst);
    fmpz_clear(e);
}

/* Claim C4, FFT path. The standard a-priori bound for a product computed as
 * ifft(fft(a) ∘ fft(b)) (Percival, "Rapid multiplication modulo the sum and difference of
 * highly composite numbers", Math. Comp. 72 (2003) 387–395, Theorem 5.1; used by
 * Brent–Percival–Zimmermann for GMP/GIMPS) is, for a radix-2 transform of length 2^k with
 * unit roundoff u and twiddle errors ≤ β,
 *     ‖z' − z‖∞ ≤ ‖a‖₂ ‖b‖₂ [(1+u)^{3k} (1+u√5)^{3k+1} (1+β)^{3k} − 1].
 * We take k = ⌈log₂ L⌉ for FFTW's mixed-radix length L, β = u (FFTW computes its twiddles in
 * extended precision and rounds once), and two more factors (1+u) for the final multiply by
 * fl(1/L). For FFTW's mixed-radix r2c/c2r codelets this form is the standard model rather than
 * a theorem about that exact code, which is why it is checked against the certified observed
 * error (pr_xtoeplitz_certify). */
static void pr_fft_bound(arb_t bound, const double *a, long la, const double *b, long lb, long L)
{
    slong prec = PR_XT_PREC;
    long k = 0;
    while ((1L << k) < L)
        k++;
    arb_t u, f, g, na, nb;
    arb_init(u);
    arb_init(f);
    arb_init(g);
    arb_init(na);
    arb_init(nb);
    arb_set_ui(u, 1);
    arb_mul_2exp_si(u, u, -53);
    arb_add_ui(f, u, 1, prec);
    arb_pow_ui(g, f, (ulong)(3 * k + 2 + 3 * k), prec); /* (1+u)^{3k+2} (1+β)^{3k}, β = u */
    arb_sqrt_ui(f, 5, prec);
    arb_mul(f, f, u, prec);
    arb_add_ui(f, f, 1, prec);
    arb_pow_ui(f, f, (ulong)(3 * k + 1), prec);
    arb_mul(g, g, f, prec);
    arb_sub_ui(g, g, 1, prec);
    arb_zero(na);
    for (long i = 0; i < la; i++) {
        arb_set_d(f, a[i]);
        arb_addmul(na, f, f, prec);
    }
    arb_zero(nb);
    for (long i = 0; i < lb; i++) {
        arb_set_d(f, b[i]);
        arb_addmul(nb, f, f, prec);
    }
    arb_mul(na, na, nb, prec);
    arb_sqrt(na, na, prec);
    arb_mul(bound, na, g, prec);
    arb_clear(u);
    arb_clear(f);
    arb_clear(g);
    arb_clear(na);
    arb_clear(nb);
}

/* Direct path: each output is a dot product of at most n terms, so (Higham, Accuracy and
 * Stability of Numerical Algorithms, 2nd ed., §3.1, (3.5), any summation order)
 *     |ŷ_i − y_i| ≤ γ_n (|A| |b|)_i,   γ_n = n u / (1 − n u).
 * (|A||b|)_i is computed exactly (the same FLINT product on absolute values). */
static void pr_direct_bound(arb_t bound, const double *a, long la, const double *b, long lb,
                            long off, long len, long n)
{
    slong prec = PR_XT_PREC, exp;
    fmpz *s = _fmpz_vec_init(len);
    pr_xconv(s, &exp, a, la, b, lb, off, len, 1);
    fmpz_t mx, e;
    fmpz_init(mx);
    fmpz_init_set_si(e, exp);
    for (long k = 0; k < len; k++)
        if (fmpz_cmp(s + k, mx) > 0)
            fmpz_set(mx, s + k);
    arb_t g, d;
    arb_init(g);
    arb_init(d);
    arb_set_ui(g, (ulong)n);
    arb_mul_2exp_si(g, g, -53);
    arb_sub_ui(d, g, 1, prec);
    arb_neg(d, d);
    arb_div(g, g, d, prec); /* γ_n */
    arb_set_fmpz_2exp(d, mx, e);
    arb_mul(bound, g, d, prec);
    arb_clear(g);
    arb_clear(d);
    fmpz_clear(mx);
    fmpz_clear(e);
    _fmpz_vec_clear(s, len);
}

int pr_xtoeplitz_apriori_bound(arb_t bound, const double *t, const double *x, unsigned op,
                               const pr_toeplitz_plan_t P)
{
    long n = P->n;
    double *ts;
    int st = pr_prepare(&ts, t, x, n, op);
    if (st)
        return st;
    if (P->use_direct)
        pr_direct_bound(bound, ts, 2 * n - 1, x, n, n - 1, n, n);
    else
        pr_fft_bound(bound, ts, 2 * n - 1, x, n, P->L);
    free(ts);
    return PR_OK;
}

int pr_xtoeplitz_apriori_bound_correlate(arb_t bound, const double *x, const double *y,
                                         const pr_toeplitz_plan_t P)
{
    long n = P->n;
    double *yr;
    int st = pr_reversed(&yr, x, y, n);
    if (st)
        return st;
    if (P->use_direct)
        pr_direct_bound(bound, x, n, yr, n, 0, 2 * n - 1, n);
    else
        pr_fft_bound(bound, x, n, yr, n, P->L);
    free(yr);
    return PR_OK;
}

static pr_xtoeplitz_verdict_t pr_verdict(const arb_t err, const arb_t bound)
{
    return arb_le(err, bound) ? PR_XTOEPLITZ_CERTIFIED
         : arb_gt(err, bound) ? PR_XTOEPLITZ_REFUTED : PR_XTOEPLITZ_UNKNOWN;
}

/* Runs the engine into yf (len doubles) and the exact product into y (len fmpz). */
static int pr_certify_run(pr_xtoeplitz_verdict_t *verdict, arb_t err, arb_t bound,
                          const double *t, const double *x, unsigned op, int correlate,
                          const pr_toeplitz_plan_t P)
{
    long n = P->n, len = correlate ? 2 * n - 1 : n;
    double *yf = malloc(sizeof(double) * (size_t)len);
    fmpz *y = _fmpz_vec_init(len);
    pr_toeplitz_work_t ws;
    int st = yf ? pr_toeplitz_work_init(ws, P) : PR_ENOMEM;
    if (st) {
        free(yf);
        _fmpz_vec_clear(y, len);
        return st;
    }
    slong exp = 0;
    if (correlate) {
        st = pr_toeplitz_correlate(yf, t, 1, x, 1, P, ws);
        if (!st)
            st = pr_xtoeplitz_correlate(y, &exp, t, x, n);
        if (!st)
            st = pr_xtoeplitz_apriori_bound_correlate(bound, t, x, P);
    } else {
        st = pr_toeplitz_apply(yf, 1, t, x, 1, op, P, ws);
        if (!st)
            st = pr_xtoeplitz_apply(y, &exp, t, x, n, op);
        if (!st)
            st = pr_xtoeplitz_apriori_bound(bound, t, x, op, P);
    }
    if (!st) {
        pr_xtoeplitz_max_error(err, yf, y, exp, len);
        *verdict = pr_verdict(err, bound);
    }
    pr_toeplitz_work_clear(ws);
    free(yf);
    _fmpz_vec_clear(y, len);
    return st;
}

int pr_xtoeplitz_certify(pr_xtoeplitz_verdict_t *verdict, arb_t err, arb_t bound,
                         const double *t, const double *x, unsigned op,
                         const pr_toeplitz_plan_t P)
{
    return pr_certify_run(verdict, err, bound, t, x, op, 0, P);
}

int pr_xtoeplitz_certify_correlate(pr_xtoeplitz_verdict_t *verdict, arb_t err, arb_t bound,
                                   const double *x, const double *y,
                                   const pr_toeplitz_plan_t P)
{
    return pr_certify_run(verdict, err, bound, x, y, 0, 1, P);
}
