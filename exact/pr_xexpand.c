#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <flint/fmpz_poly.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_expand.h"
#include "pr_xexpand.h"

void pr_xexpand_fmpq_set_d(fmpq_t y, double x)
{
    int e;
    double m = frexp(x, &e); /* x = m 2^e, |m| in [0.5, 1): m 2^53 is an integer */
    fmpz_set_d(fmpq_numref(y), ldexp(m, 53));
    fmpz_one(fmpq_denref(y));
    e -= 53;
    if (e >= 0)
        fmpz_mul_2exp(fmpq_numref(y), fmpq_numref(y), (ulong)e);
    else
        fmpz_mul_2exp(fmpq_denref(y), fmpq_denref(y), (ulong)(-e));
    fmpq_canonicalise(y);
}

static fmpq *qvec_init(size_t len)
{
    fmpq *v = flint_malloc(sizeof(fmpq) * (len ? len : 1));
    for (size_t i = 0; i < len; i++)
        fmpq_init(v + i);
    return v;
}

static void qvec_clear(fmpq *v, size_t len)
{
    for (size_t i = 0; i < len; i++)
        fmpq_clear(v + i);
    flint_free(v);
}

static void qvec_zero(fmpq *y, size_t len)
{
    for (size_t i = 0; i < len; i++)
        fmpq_zero(y + i);
}

static void qvec_set_d(fmpq *y, const double *x, size_t len)
{
    for (size_t i = 0; i < len; i++)
        pr_xexpand_fmpq_set_d(y + i, x[i]);
}

int pr_xexpand_init(pr_xexpand_t E, const double *Q, const double *K, const pr_posw_struct *W,
                    int n, int d, const pr_attn_opts_t *opts)
{
    memset(E, 0, sizeof(*E));
    if (n <= 0 || d <= 0 || n > 46340)
        return PR_EINVAL;
    if (W->n != n || W->d != d)
        return PR_ESHAPE;
    if (opts->beta || !(opts->sigma > 0.0) || !isfinite(opts->sigma))
        return PR_EINVAL;
    size_t nd = (size_t)n * d, sw = (size_t)W->s * (2 * (size_t)n - 1);
    if (pr_vec_check_finite(Q, nd) || pr_vec_check_finite(K, nd) || pr_vec_check_finite(W->w, sw))
        return PR_ENONFINITE;
    E->n = n;
    E->d = d;
    E->s = W->s;
    E->causal = opts->causal;
    E->a = W->a;
    E->b = W->b;
    E->Q = qvec_init(nd);
    E->K = qvec_init(nd);
    E->w = qvec_init(sw);
    qvec_set_d(E->Q, Q, nd);
    qvec_set_d(E->K, K, nd);
    qvec_set_d(E->w, W->w, sw);
    fmpq_init(E->sigma);
    pr_xexpand_fmpq_set_d(E->sigma, opts->sigma);
    return PR_OK;
}

void pr_xexpand_clear(pr_xexpand_t E)
{
    if (!E->Q)
        return;
    size_t nd = (size_t)E->n * E->d, sw = (size_t)E->s * (2 * (size_t)E->n - 1);
    qvec_clear(E->Q, nd);
    qvec_clear(E->K, nd);
    qvec_clear(E->w, sw);
    fmpq_clear(E->sigma);
    memset(E, 0, sizeof(*E));
}

/* p / den = Σ x_i z^i with den the lcm of the denominators */
static void qvec_to_poly(fmpz_poly_t p, fmpz_t den, const fmpq *x, size_t len)
{
    fmpz_t t;
    fmpz_init(t);
    fmpz_one(den);
    for (size_t i = 0; i < len; i++)
        fmpz_lcm(den, den, fmpq_denref(x + i));
    fmpz_poly_zero(p);
    for (size_t i = 0; i < len; i++) {
        fmpz_divexact(t, den, fmpq_denref(x + i));
        fmpz_mul(t, t, fmpq_numref(x + i));
        fmpz_poly_set_coeff_fmpz(p, (slong)i, t);
    }
    fmpz_clear(t);
}

/* The terms of the expansion in pr_expand's order (the forward's, claim C3). PR_EBUDGET past
 * PR_XEXPAND_MAX_TERMS: the exact run is for small instances. */
static int terms_init(pr_expand_t T, const int *a, const int *b, int s, int g)
{
    return pr_expand_init(T, a, b, s, g, 0, PR_XEXPAND_MAX_TERMS);
}

/* Scratch of the exact run: one term's u, v, t and products. */
typedef struct {
    fmpq *u, *v, *t, *vx;
    fmpz_poly_t pt, px, pp;
    fmpz_t dt, dx, num;
    fmpq_t alpha, q;
} qterm_t;

/* u = Π_k X[:, col_k]^{e_k} (n rows of d columns) */
static void qmarg(fmpq *u, const fmpq *X, int n, int d, const int *col, const unsigned char *e, int s)
{
    for (int i = 0; i < n; i++)
        fmpq_one(u + i);
    for (int k = 0; k < s; k++)
        for (int r = 0; r < e[k]; r++)
            for (int i = 0; i < n; i++)
                fmpq_mul(u + i, u + i, X + (size_t)i * d + col[k]);
}

/* Y += α_e diag(u_e) T_e diag(v_e) X for term e, α_e = c_|e| |e|!/Π e_k! σ^|e| exactly */
static void qterm(fmpq *Y, qterm_t *W, const pr_xexpand_struct *E, const unsigned char *e, int deg,
                  const fmpq *coef, const fmpq *X, int m)
{
    int n = E->n, s = E->s;
    size_t L = 2 * (size_t)n - 1;
    fmpz_fac_ui(W->num, (ulong)deg);
    fmpz_one(W->dx);
    for (int k = 0; k < s; k++) {
        fmpz_fac_ui(W->dt, (ulong)e[k]);
        fmpz_mul(W->dx, W->dx, W->dt);
    }
    fmpq_set_fmpz_frac(W->alpha, W->num, W->dx);
    fmpq_mul(W->alpha, W->alpha, coef + deg);
    for (int i = 0; i < deg; i++)
        fmpq_mul(W->alpha, W->alpha, E->sigma);
    qmarg(W->u, E->Q, n, E->d, E->a, e, s);
    qmarg(W->v, E->K, n, E->d, E->b, e, s);
    for (size_t l = 0; l < L; l++)
        if (E->causal && (long)l < n - 1)
            fmpq_zero(W->t + l);
        else
            fmpq_one(W->t + l);
    for (int k = 0; k < s; k++)
        for (int r = 0; r < e[k]; r++)
            for (size_t l = 0; l < L; l++)
                fmpq_mul(W->t + l, W->t + l, E->w + (size_t)k * L + l);
    qvec_to_poly(W->pt, W->dt, W->t, L);
    for (int c = 0; c < m; c++) {
        for (int j = 0; j < n; j++)
            fmpq_mul(W->vx + j, W->v + j, X + (size_t)j * m + c);
        qvec_to_poly(W->px, W->dx, W->vx, n);
        /* coefficient i+n-1 of t(z) x(z) is Σ_j t(i-j) x_j: the Toeplitz product (C4 exact) */
        fmpz_poly_mul(W->pp, W->pt, W->px);
        fmpz_mul(W->dx, W->dx, W->dt);
        for (int i = 0; i < n; i++) {
            fmpz_poly_get_coeff_fmpz(W->num, W->pp, i + n - 1);
            fmpq_set_fmpz_frac(W->q, W->num, W->dx);
            fmpq_mul(W->q, W->q, W->u + i);
            fmpq_addmul(Y + (size_t)i * m + c, W->q, W->alpha);
        }
    }
}

int pr_xexpand_apply(fmpq *Y, const pr_xexpand_t E, const fmpq *coef, int g,
                     const fmpq *X, int m)
{
    if (!coef || g < 0 || m < 0)
        return PR_EINVAL;
    pr_expand_t T;
    int st = terms_init(T, E->a, E->b, E->s, g);
    if (st)
        return st;
    int n = E->n;
    qterm_t W;
    W.u = qvec_init(n);
    W.v = qvec_init(n);
    W.vx = qvec_init(n);
    W.t = qvec_init(2 * (size_t)n - 1);
    fmpz_poly_init(W.pt);
    fmpz_poly_init(W.px);
    fmpz_poly_init(W.pp);
    fmpz_init(W.dt);
    fmpz_init(W.dx);
    fmpz_init(W.num);
    fmpq_init(W.alpha);
    fmpq_init(W.q);
    qvec_zero(Y, (size_t)n * m);
    for (long t = 0; t < T->nterms; t++)
        if (!fmpq_is_zero(coef + T->deg[t]))
            qterm(Y, &W, E, T->e + (size_t)t * E->s, T->deg[t], coef, X, m);
    fmpz_poly_clear(W.pt);
    fmpz_poly_clear(W.px);
    fmpz_poly_clear(W.pp);
    fmpz_clear(W.dt);
    fmpz_clear(W.dx);
    fmpz_clear(W.num);
    fmpq_clear(W.alpha);
    fmpq_clear(W.q);
    qvec_clear(W.u, n);
    qvec_clear(W.v, n);
    qvec_clear(W.vx, n);
    qvec_clear(W.t, 2 * (size_t)n - 1);
    pr_expand_clear(T);
    return PR_OK;
}

int pr_xexpand_count(fmpz_t total, fmpz *by_degree, int s, int g)
{
    if (s < 0 || g < 0)
        return PR_EINVAL;
    _fmpz_vec_zero(by_degree, g + 1);
    fmpz_zero(total);
    if (s == 0) {   /* the empty support: only the empty multiset */
        fmpz_one(by_degree);
        fmpz_one(total);
        return PR_OK;
    }
    int *ab = malloc(sizeof(int) * s);
    if (!ab)
        return PR_ENOMEM;
    for (int k = 0; k < s; k++)
        ab[k] = k;
    pr_expand_t T;
    int st = terms_init(T, ab, ab, s, g);
    free(ab);
    if (st)
        return st;
    for (long t = 0; t < T->nterms; t++)
        fmpz_add_ui(by_degree + T->deg[t], by_degree + T->deg[t], 1);
    for (int k = 0; k <= g; k++)
        fmpz_add(total, total, by_degree + k);
    pr_expand_clear(T);
    return PR_OK;
}

int pr_xexpand_direct(fmpq *Y, const pr_xexpand_t E, const fmpq *coef, int g,
                      const fmpq *X, int m)
{
    if (!coef || g < 0 || m < 0)
        return PR_EINVAL;
    int n = E->n, d = E->d;
    size_t L = 2 * (size_t)n - 1;
    fmpq_t M, p, t;
    fmpq_init(M);
    fmpq_init(p);
    fmpq_init(t);
    qvec_zero(Y, (size_t)n * m);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            long l = (long)i - j;
            if (E->causal && l < 0)
                continue;
            fmpq_zero(M);
            for (int k = 0; k < E->s; k++) {
                fmpq_mul(t, E->Q + (size_t)i * d + E->a[k], E->w + (size_t)k * L + (size_t)(l + n - 1));
                fmpq_addmul(M, t, E->K + (size_t)j * d + E->b[k]);
            }
            fmpq_mul(M, M, E->sigma);
            fmpq_set(p, coef + g);
            for (int k = g - 1; k >= 0; k--) {
                fmpq_mul(p, p, M);
                fmpq_add(p, p, coef + k);
            }
            for (int c = 0; c < m; c++)
                fmpq_addmul(Y + (size_t)i * m + c, p, X + (size_t)j * m + c);
        }
    fmpq_clear(M);
    fmpq_clear(p);
    fmpq_clear(t);
    return PR_OK;
}

int pr_xexpand_output(fmpq *O, const pr_xexpand_t E, const fmpq *coef, int g, const double *V)
{
    int n = E->n, d = E->d, m = d + 1;
    if (pr_vec_check_finite(V, (size_t)n * d))
        return PR_ENONFINITE;
    /* X = [V | 1]: one pass over the terms gives both Ã V and Ã 1 */
    fmpq *X = qvec_init((size_t)n * m), *Y = qvec_init((size_t)n * m);
    for (int i = 0; i < n; i++) {
        qvec_set_d(X + (size_t)i * m, V + (size_t)i * d, d);
        fmpq_one(X + (size_t)i * m + d);
    }
    int st = pr_xexpand_apply(Y, E, coef, g, X, m);
    for (int i = 0; !st && i < n; i++) {
        fmpq *den = Y + (size_t)i * m + d;
        if (fmpq_is_zero(den)) {
            st = PR_EDOMAIN;
            break;
        }
        for (int c = 0; c < d; c++)
            fmpq_div(O + (size_t)i * d + c, Y + (size_t)i * m + c, den);
    }
    qvec_clear(X, (size_t)n * m);
    qvec_clear(Y, (size_t)n * m);
    return st;
}

/* u = Π_k X[:, col_k]^{e_k} in double */
static void dmarg(double *u, const double *X, int n, int d, const int *col, const unsigned char *e, int s)
{
    for (int i = 0; i < n; i++)
        u[i] = 1.0;
    for (int k = 0; k < s; k++)
        for (int r = 0; r < e[k]; r++)
            for (int i = 0; i < n; i++)
                u[i] *= X[(size_t)i * d + col[k]];
}

/* The double twin of pr_xexpand_apply: the same terms in the same order, direct Toeplitz sums. */
static void dterms(double *Y, const pr_expand_t T, const double *alpha, const double *Q, const double *K,
                   const pr_posw_struct *W, int n, int d, int causal, const double *X, int m, double *buf)
{
    size_t L = 2 * (size_t)n - 1;
    int s = W->s;
    double *u = buf, *v = u + n, *vx = v + n, *t = vx + n;
    memset(Y, 0, sizeof(double) * (size_t)n * m);
    for (long term = 0; term < T->nterms; term++) {
        const unsigned char *e = T->e + (size_t)term * s;
        if (alpha[term] == 0.0)
            continue;
        dmarg(u, Q, n, d, W->a, e, s);
        dmarg(v, K, n, d, W->b, e, s);
        for (size_t l = 0; l < L; l++)
            t[l] = causal && (long)l < n - 1 ? 0.0 : 1.0;
        for (int k = 0; k < s; k++)
            for (int r = 0; r < e[k]; r++)
                for (size_t l = 0; l < L; l++)
                    t[l] *= pr_posw_seq(W, k)[l];
        for (int c = 0; c < m; c++) {
            for (int j = 0; j < n; j++)
                vx[j] = v[j] * X[(size_t)j * m + c];
            for (int i = 0; i < n; i++) {
                double y = 0.0;
                for (int j = 0; j < n; j++)
                    y += t[i - j + n - 1] * vx[j];
                Y[(size_t)i * m + c] += alpha[term] * u[i] * y;
            }
        }
    }
}

int pr_xexpand_apply_d(double *Y, const double *Q, const double *K, const pr_posw_struct *W,
                       int n, int d, const pr_attn_opts_t *opts, const double *coef, int g,
                       const double *X, int m)
{
    int st = pr_attn_check(Q, K, Q, W, n, d, opts);
    if (st)
        return st;
    if (opts->beta || !coef || g < 0 || m < 0)
        return PR_EINVAL;
    if (pr_vec_check_finite(coef, (size_t)g + 1) || pr_vec_check_finite(X, (size_t)n * m))
        return PR_ENONFINITE;
    pr_expand_t T;
    if ((st = terms_init(T, W->a, W->b, W->s, g)))
        return st;
    double *alpha = malloc(sizeof(double) * T->nterms), *buf = malloc(sizeof(double) * (5 * (size_t)n));
    if (alpha && buf) {
        pr_expand_coefs(alpha, T, PR_EXPAND_ALPHA, coef, opts->sigma);
        dterms(Y, T, alpha, Q, K, W, n, d, opts->causal, X, m, buf);
    }
    st = alpha && buf ? PR_OK : PR_ENOMEM;
    free(alpha);
    free(buf);
    pr_expand_clear(T);
    return st;
}

int pr_xexpand_output_d(double *O, const double *Q, const double *K, const double *V,
                        const pr_posw_struct *W, int n, int d, const pr_attn_opts_t *opts,
                        const double *coef, int g)
{
    int st = pr_attn_check(Q, K, V, W, n, d, opts);
    if (st)
        return st;
    int m = d + 1;
    size_t nm = (size_t)n * m;
    double *X = malloc(sizeof(double) * nm), *Y = malloc(sizeof(double) * nm);
    if (!X || !Y) {
        free(X);
        free(Y);
        return PR_ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        memcpy(X + (size_t)i * m, V + (size_t)i * d, sizeof(double) * d);
        X[(size_t)i * m + d] = 1.0;
    }
    st = pr_xexpand_apply_d(Y, Q, K, W, n, d, opts, coef, g, X, m);
    for (int i = 0; !st && i < n; i++)
        for (int c = 0; c < d; c++)
            O[(size_t)i * d + c] = Y[(size_t)i * m + c] / Y[(size_t)i * m + d];
    free(X);
    free(Y);
    return st;
}
