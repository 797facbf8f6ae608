#include <math.h>
#include <stdlib.h>
#include <flint/fmpz_poly.h>
#include <flint/fmpz_vec.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_xtoeplitz.h"
#include "pr_hiprec.h"

enum { PR_XT_PREC = 256 };

/* m[k] = integers with v[k] = m[k]·2^e exactly (|v[k]| when absval); returns e. Each finite
 * double is f·2^q with f·2^53 an integer, so e = min over nonzeros of q - 53 makes every m[k]
 * an integer. */
static slong pr_dyadic_vec(fmpz *m, const double *v, long len, int absval)
{
    slong e = WORD_MAX;
    for (long k = 0; k < len; k++)
        if (v[k] != 0) {
            int q;
            frexp(v[k], &q);
            if (q - 53 < e)
                e = q - 53;
        }
    for (long k = 0; k < len; k++) {
        int q;
        double f = frexp(absval ? fabs(v[k]) : v[k], &q);
        fmpz_set_d(m + k, ldexp(f, 53)); /* an integer of at most 53 bits: exact */
        if (v[k] != 0)
            fmpz_mul_2exp(m + k, m + k, (ulong)(q - 53 - e));
    }
    return e == WORD_MAX ? 0 : e;
}

/* Index in t of entry ℓ'+n-1 of the symbol of op(T), or -1 if that entry is zero: trans maps
 * ℓ to -ℓ, causal drops the original ℓ < 0. */
static long pr_op_src(long pos, long n, unsigned op)
{
    long l = pos - (n - 1), orig = (op & PR_TOEPLITZ_TRANS) ? -l : l;
    return ((op & PR_TOEPLITZ_CAUSAL) && orig < 0) ? -1 : orig + n - 1;
}

/* p = Σ_k v[src(k)] z^k, k < len, with src the identity, a reversal, or the op-symbol map */
static void pr_poly_from(fmpz_poly_t p, const fmpz *v, long len, long n, int reverse, int op_map,
                         unsigned op)
{
    fmpz_poly_fit_length(p, len);
    for (long k = 0; k < len; k++) {
        long src = op_map ? pr_op_src(k, n, op) : reverse ? len - 1 - k : k;
        if (src < 0)
            fmpz_zero(p->coeffs + k);
        else
            fmpz_set(p->coeffs + k, v + src);
    }
    _fmpz_poly_set_length(p, len);
    _fmpz_poly_normalise(p);
}

/* out[k] = coefficient off+k of A·B, k < len; clears A and B */
static void pr_zmul_out(fmpz *out, fmpz_poly_t A, fmpz_poly_t B, long off, long len)
{
    fmpz_poly_mul(A, A, B);
    for (long k = 0; k < len; k++)
        fmpz_poly_get_coeff_fmpz(out + k, A, off + k);
    fmpz_poly_clear(A);
    fmpz_poly_clear(B);
}

int pr_xtoeplitz_apply_fmpz(fmpz *y, const fmpz *t, const fmpz *x, long n, unsigned op)
{
    if (n < 1 || (op & ~3u))
        return PR_EINVAL;
    fmpz_poly_t A, B;
    fmpz_poly_init(A);
    fmpz_poly_init(B);
    /* y_i = Σ_j ts[i-j+n-1] x_j: coefficient i+n-1 of the product */
    pr_poly_from(A, t, 2 * n - 1, n, 0, 1, op);
    pr_poly_from(B, x, n, n, 0, 0, 0);
    pr_zmul_out(y, A, B, n - 1, n);
    return PR_OK;
}

int pr_xtoeplitz_correlate_fmpz(fmpz *c, const fmpz *x, const fmpz *y, long n)
{
    if (n < 1)
        return PR_EINVAL;
    fmpz_poly_t A, B;
    fmpz_poly_init(A);
    fmpz_poly_init(B);
    /* with y reversed, c(ℓ) = Σ x_i y_j (i-j = ℓ) is coefficient ℓ+n-1 */
    pr_poly_from(A, x, n, n, 0, 0, 0);
    pr_poly_from(B, y, n, n, 1, 0, 0);
    pr_zmul_out(c, A, B, 0, 2 * n - 1);
    return PR_OK;
}

/* The exact product (correlate = 0) or correlation (1) of doubles a (la) and b (n), of their
 * absolute values when absval: out (n or 2n-1 fmpz) times 2^(*exp). */
static int pr_xrun(fmpz *out, slong *exp, const double *a, const double *b, long n, unsigned op,
                   int correlate, int absval)
{
    long la = correlate ? n : 2 * n - 1;
    if (n < 1 || (op & ~3u))
        return PR_EINVAL;
    if (pr_vec_check_finite(a, (size_t)la) || pr_vec_check_finite(b, (size_t)n))
        return PR_ENONFINITE;
    fmpz *ma = _fmpz_vec_init(la), *mb = _fmpz_vec_init(n);
    *exp = pr_dyadic_vec(ma, a, la, absval) + pr_dyadic_vec(mb, b, n, absval);
    int st = correlate ? pr_xtoeplitz_correlate_fmpz(out, ma, mb, n)
                       : pr_xtoeplitz_apply_fmpz(out, ma, mb, n, op);
    _fmpz_vec_clear(ma, la);
    _fmpz_vec_clear(mb, n);
    return st;
}

int pr_xtoeplitz_apply(fmpz *y, slong *exp, const double *t, const double *x, long n, unsigned op)
{
    return pr_xrun(y, exp, t, x, n, op, 0, 0);
}

int pr_xtoeplitz_correlate(fmpz *c, slong *exp, const double *x, const double *y, long n)
{
    return pr_xrun(c, exp, x, y, n, 0, 1, 0);
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
        /* a NaN would compare as nothing and drop out of the max: its error is +inf */
        if (!isfinite(yf[i])) {
            arf_pos_inf(worst);
            break;
        }
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

/* s = Σ a[i]² (t is scratch) */
static void pr_sumsq(arb_t s, const double *a, long len, arb_t t, slong prec)
{
    arb_zero(s);
    for (long i = 0; i < len; i++) {
        arb_set_d(t, a[i]);
        arb_addmul(s, t, t, prec);
    }
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
 * error (pr_xtoeplitz_certify).
 * Underflow: that model has no absolute error term, and subnormal data break it (an n = 2
 * product of subnormals erred by more than the bound). With fl(xy) = xy(1+δ) + η, |η| ≤ η₀ =
 * 2^-1075, and exact sums in the subnormal range, each stage of a transform injects at most
 * 2√2 η₀ per complex entry (2-norm √L 2√2 η₀), later stages amplify by √2 each (≤ 3.42 √L over
 * all stages), so each forward spectrum errs by ≤ 10 L η₀ in 2-norm; the pointwise product
 * scales that by ‖b̂‖∞ ≤ ‖b‖₁ (resp. ‖a‖₁) and adds √L 2√2 η₀; the inverse (gain √L, its own
 * 10 L η₀) and the 1/L scaling (one η₀) give
 *     ‖Δz‖∞ ≤ [10 √L (‖a‖₁ + ‖b‖₁) + 2√2 + 11] η₀,
 * added with a factor 2 for the second-order terms. */
static void pr_underflow_term(arb_t t, const double *a, long la, const double *b, long lb, long L, slong prec)
{
    arb_t s, x;
    arb_init(s);
    arb_init(x);
    arb_zero(s);
    for (long i = 0; i < la; i++) {
        arb_set_d(x, fabs(a[i]));
        arb_add(s, s, x, prec);
    }
    for (long i = 0; i < lb; i++) {
        arb_set_d(x, fabs(b[i]));
        arb_add(s, s, x, prec);
    }
    arb_sqrt_ui(x, (ulong)L, prec);
    arb_mul(s, s, x, prec);
    arb_mul_ui(s, s, 10, prec);
    arb_add_ui(s, s, 14, prec); /* 2√2 + 11 ≤ 14 */
    arb_mul_2exp_si(t, s, 1 - 1075);
    arb_clear(s);
    arb_clear(x);
}

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
    pr_sumsq(na, a, la, f, prec);
    pr_sumsq(nb, b, lb, f, prec);
    arb_mul(na, na, nb, prec);
    arb_sqrt(na, na, prec);
    arb_mul(bound, na, g, prec);
    pr_underflow_term(g, a, la, b, lb, L, prec);
    arb_add(bound, bound, g, prec);
    arb_clear(u);
    arb_clear(f);
    arb_clear(g);
    arb_clear(na);
    arb_clear(nb);
}

/* Direct path: each output is a dot product of at most n terms, so (Higham, Accuracy and
 * Stability of Numerical Algorithms, 2nd ed., §3.1, (3.5), any summation order)
 *     |ŷ_i − y_i| ≤ γ_n (|A| |b|)_i + n 2^-1074,   γ_n = n u / (1 − n u),
 * the last term for underflow (each of the n products may add η ≤ 2^-1075 absolute, carried
 * through ≤ n sums by (1+u) factors; sums are exact in the subnormal range).
 * max_i (|A||b|)_i is computed exactly (the same FLINT product on absolute values). */
static int pr_direct_bound(arb_t bound, const double *a, const double *b, long n, unsigned op,
                           int correlate)
{
    slong prec = PR_XT_PREC, exp;
    long len = correlate ? 2 * n - 1 : n;
    fmpz *s = _fmpz_vec_init(len);
    int st = pr_xrun(s, &exp, a, b, n, op, correlate, 1);
    if (!st) {
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
        arb_set_ui(d, (ulong)n);
        arb_mul_2exp_si(d, d, -1074);
        arb_add(bound, bound, d, prec);
        arb_clear(g);
        arb_clear(d);
        fmpz_clear(mx);
        fmpz_clear(e);
    }
    _fmpz_vec_clear(s, len);
    return st;
}

int pr_xtoeplitz_apriori_bound(arb_t bound, const double *t, const double *x, unsigned op,
                               const pr_toeplitz_plan_t P)
{
    long n = P->n;
    if (P->use_direct)
        return pr_direct_bound(bound, t, x, n, op, 0);
    if (op & ~3u)
        return PR_EINVAL;
    if (pr_vec_check_finite(t, 2 * (size_t)n - 1) || pr_vec_check_finite(x, (size_t)n))
        return PR_ENONFINITE;
    double *ts = malloc(sizeof(double) * (2 * (size_t)n - 1));
    if (!ts)
        return PR_ENOMEM;
    for (long k = 0; k < 2 * n - 1; k++) {
        long src = pr_op_src(k, n, op);
        ts[k] = src < 0 ? 0 : t[src];
    }
    pr_fft_bound(bound, ts, 2 * n - 1, x, n, P->L);
    free(ts);
    return PR_OK;
}

int pr_xtoeplitz_apriori_bound_correlate(arb_t bound, const double *x, const double *y,
                                         const pr_toeplitz_plan_t P)
{
    long n = P->n;
    if (P->use_direct)
        return pr_direct_bound(bound, x, y, n, 0, 1);
    if (pr_vec_check_finite(x, (size_t)n) || pr_vec_check_finite(y, (size_t)n))
        return PR_ENONFINITE;
    pr_fft_bound(bound, x, n, y, n, P->L);
    return PR_OK;
}

/* Runs the engine into yf (len doubles) and the exact product into y (len fmpz). */
static int pr_certify_run(pr_cert_verdict_t *verdict, arb_t err, arb_t bound,
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
        *verdict = pr_hiprec_verdict(err, bound);
    }
    pr_toeplitz_work_clear(ws);
    free(yf);
    _fmpz_vec_clear(y, len);
    return st;
}

int pr_xtoeplitz_certify(pr_cert_verdict_t *verdict, arb_t err, arb_t bound,
                         const double *t, const double *x, unsigned op,
                         const pr_toeplitz_plan_t P)
{
    return pr_certify_run(verdict, err, bound, t, x, op, 0, P);
}

int pr_xtoeplitz_certify_correlate(pr_cert_verdict_t *verdict, arb_t err, arb_t bound,
                                   const double *x, const double *y,
                                   const pr_toeplitz_plan_t P)
{
    return pr_certify_run(verdict, err, bound, x, y, 0, 1, P);
}
