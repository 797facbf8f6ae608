#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <flint/fmpz_poly.h>
#include "pr_status.h"
#include "pr_vec.h"
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

static void qvec_set(fmpq *y, const fmpq *x, size_t len)
{
    for (size_t i = 0; i < len; i++)
        fmpq_set(y + i, x + i);
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

static int terms_ok(int s, int g)
{
    /* C(s+g, g) ≤ budget, computed incrementally in double (a double may choose) */
    double c = 1.0;
    for (int k = 1; k <= g; k++)
        c = c * (s + k) / k;
    return c <= PR_XEXPAND_MAX_TERMS;
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

/* The state of the multiset walk: level k holds u, v, t after choosing e_0..e_{k-1}. */
typedef struct {
    const pr_xexpand_struct *E;
    const fmpq *coef, *X;
    fmpq *Y;
    int g, m;
    int *e;
    fmpq **u, **v, **t;     /* per level */
    fmpz *by_degree;        /* counting mode when coef == NULL */
    fmpz_poly_t pt, px, pp;
    fmpz_t dt, dx, num;
    fmpq_t alpha, q;
} walk_t;

/* y += α diag(u) T diag(v) X for the current leaf */
static void leaf(walk_t *W, int k)
{
    const pr_xexpand_struct *E = W->E;
    int n = E->n, deg = 0;
    for (int i = 0; i < E->s; i++)
        deg += W->e[i];
    if (!W->coef) {
        fmpz_add_ui(W->by_degree + deg, W->by_degree + deg, 1);
        return;
    }
    if (fmpq_is_zero(W->coef + deg))
        return;
    /* α = c_|e| |e|!/Π e_i! σ^|e| */
    fmpz_fac_ui(W->num, (ulong)deg);
    fmpz_one(W->dx);
    for (int i = 0; i < E->s; i++) {
        fmpz_fac_ui(W->dt, (ulong)W->e[i]);
        fmpz_mul(W->dx, W->dx, W->dt);
    }
    fmpq_set_fmpz_frac(W->alpha, W->num, W->dx);
    fmpq_mul(W->alpha, W->alpha, W->coef + deg);
    for (int i = 0; i < deg; i++)
        fmpq_mul(W->alpha, W->alpha, E->sigma);
    const fmpq *u = W->u[k], *v = W->v[k], *t = W->t[k];
    qvec_to_poly(W->pt, W->dt, t, 2 * (size_t)n - 1);
    fmpq *vx = qvec_init(n);
    for (int c = 0; c < W->m; c++) {
        for (int j = 0; j < n; j++)
            fmpq_mul(vx + j, v + j, W->X + (size_t)j * W->m + c);
        qvec_to_poly(W->px, W->dx, vx, n);
        /* coefficient i+n-1 of t(z) x(z) is Σ_j t(i-j) x_j: the Toeplitz product (C4 exact) */
        fmpz_poly_mul(W->pp, W->pt, W->px);
        fmpz_mul(W->dx, W->dx, W->dt);
        for (int i = 0; i < n; i++) {
            fmpz_poly_get_coeff_fmpz(W->num, W->pp, i + n - 1);
            fmpq_set_fmpz_frac(W->q, W->num, W->dx);
            fmpq_mul(W->q, W->q, u + i);
            fmpq_addmul(W->Y + (size_t)i * W->m + c, W->q, W->alpha);
        }
    }
    qvec_clear(vx, n);
}

/* choose e_k = 0..rem; level k+1 = level k times (Q_a, w_ab, K_b)^{e_k} */
static void walk(walk_t *W, int k, int rem)
{
    const pr_xexpand_struct *E = W->E;
    if (k == E->s) {
        leaf(W, k);
        return;
    }
    int n = E->n, d = E->d;
    size_t L = 2 * (size_t)n - 1;
    int counting = W->coef == NULL;
    if (!counting) {
        qvec_set(W->u[k + 1], W->u[k], n);
        qvec_set(W->v[k + 1], W->v[k], n);
        qvec_set(W->t[k + 1], W->t[k], L);
    }
    for (int ek = 0; ek <= rem; ek++) {
        W->e[k] = ek;
        if (ek > 0 && !counting) {
            for (int i = 0; i < n; i++) {
                fmpq_mul(W->u[k + 1] + i, W->u[k + 1] + i, E->Q + (size_t)i * d + E->a[k]);
                fmpq_mul(W->v[k + 1] + i, W->v[k + 1] + i, E->K + (size_t)i * d + E->b[k]);
            }
            for (size_t l = 0; l < L; l++)
                fmpq_mul(W->t[k + 1] + l, W->t[k + 1] + l, E->w + (size_t)k * L + l);
        }
        walk(W, k + 1, rem - ek);
    }
    W->e[k] = 0;
}

static int run_walk(fmpq *Y, fmpz *by_degree, const pr_xexpand_struct *E, int s, int n, int causal,
                    const fmpq *coef, int g, const fmpq *X, int m)
{
    if (g < 0 || m < 0 || s < 0)
        return PR_EINVAL;
    if (!terms_ok(s, g))
        return PR_EBUDGET;
    walk_t W;
    memset(&W, 0, sizeof W);
    pr_xexpand_struct dummy;
    memset(&dummy, 0, sizeof dummy);
    dummy.s = s;
    W.E = E ? E : &dummy;
    W.coef = coef;
    W.X = X;
    W.Y = Y;
    W.g = g;
    W.m = m;
    W.by_degree = by_degree;
    W.e = calloc((size_t)s + 1, sizeof(int));
    size_t L = 2 * (size_t)n - 1;
    int levels = coef ? s + 1 : 0;
    W.u = calloc((size_t)s + 1, sizeof(fmpq *));
    W.v = calloc((size_t)s + 1, sizeof(fmpq *));
    W.t = calloc((size_t)s + 1, sizeof(fmpq *));
    if (!W.e || !W.u || !W.v || !W.t) {
        free(W.e);
        free(W.u);
        free(W.v);
        free(W.t);
        return PR_ENOMEM;
    }
    for (int k = 0; k < levels; k++) {
        W.u[k] = qvec_init(n);
        W.v[k] = qvec_init(n);
        W.t[k] = qvec_init(L);
    }
    if (coef) {
        for (int i = 0; i < n; i++) {
            fmpq_one(W.u[0] + i);
            fmpq_one(W.v[0] + i);
        }
        for (size_t l = 0; l < L; l++)
            if (!(causal && (long)l < n - 1))
                fmpq_one(W.t[0] + l);
        qvec_zero(Y, (size_t)n * m);
    }
    fmpz_poly_init(W.pt);
    fmpz_poly_init(W.px);
    fmpz_poly_init(W.pp);
    fmpz_init(W.dt);
    fmpz_init(W.dx);
    fmpz_init(W.num);
    fmpq_init(W.alpha);
    fmpq_init(W.q);
    walk(&W, 0, g);
    fmpz_poly_clear(W.pt);
    fmpz_poly_clear(W.px);
    fmpz_poly_clear(W.pp);
    fmpz_clear(W.dt);
    fmpz_clear(W.dx);
    fmpz_clear(W.num);
    fmpq_clear(W.alpha);
    fmpq_clear(W.q);
    for (int k = 0; k < levels; k++) {
        qvec_clear(W.u[k], n);
        qvec_clear(W.v[k], n);
        qvec_clear(W.t[k], L);
    }
    free(W.e);
    free(W.u);
    free(W.v);
    free(W.t);
    return PR_OK;
}

int pr_xexpand_apply(fmpq *Y, const pr_xexpand_t E, const fmpq *coef, int g,
                     const fmpq *X, int m)
{
    if (!coef)
        return PR_EINVAL;
    return run_walk(Y, NULL, E, E->s, E->n, E->causal, coef, g, X, m);
}

int pr_xexpand_count(fmpz_t total, fmpz *by_degree, int s, int g)
{
    if (s < 0 || g < 0)
        return PR_EINVAL;
    _fmpz_vec_zero(by_degree, g + 1);
    int st = run_walk(NULL, by_degree, NULL, s, 1, 0, NULL, g, NULL, 0);
    fmpz_zero(total);
    for (int k = 0; k <= g; k++)
        fmpz_add(total, total, by_degree + k);
    return st;
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
    /* X = [V | 1]: one walk gives both Ã V and Ã 1 */
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

/* The double mirror of the walk: same order of terms, direct Toeplitz sums. */
typedef struct {
    const double *Q, *K, *X;
    const pr_posw_struct *W;
    const double *coef;
    int n, d, g, m;
    double sigma;
    int *e;
    double **u, **v, **t, *Y, *vx;
} dwalk_t;

static void dleaf(dwalk_t *D, int k)
{
    int n = D->n, m = D->m, deg = 0;
    double mult = 1.0;
    for (int i = 0; i < D->W->s; i++)
        deg += D->e[i];
    if (D->coef[deg] == 0.0)
        return;
    /* multinomial |e|!/Π e_i! as a product of binomial steps */
    int acc = 0;
    for (int i = 0; i < D->W->s; i++)
        for (int r = 1; r <= D->e[i]; r++)
            mult = mult * (++acc) / r;
    double alpha = D->coef[deg] * mult * pow(D->sigma, deg);
    const double *u = D->u[k], *v = D->v[k], *t = D->t[k];
    for (int c = 0; c < m; c++) {
        for (int j = 0; j < n; j++)
            D->vx[j] = v[j] * D->X[(size_t)j * m + c];
        for (int i = 0; i < n; i++) {
            double y = 0.0;
            for (int j = 0; j < n; j++)
                y += t[i - j + n - 1] * D->vx[j];
            D->Y[(size_t)i * m + c] += alpha * u[i] * y;
        }
    }
}

static void dwalk(dwalk_t *D, int k, int rem)
{
    const pr_posw_struct *W = D->W;
    if (k == W->s) {
        dleaf(D, k);
        return;
    }
    int n = D->n, d = D->d;
    size_t L = 2 * (size_t)n - 1;
    memcpy(D->u[k + 1], D->u[k], sizeof(double) * n);
    memcpy(D->v[k + 1], D->v[k], sizeof(double) * n);
    memcpy(D->t[k + 1], D->t[k], sizeof(double) * L);
    for (int ek = 0; ek <= rem; ek++) {
        D->e[k] = ek;
        if (ek > 0) {
            for (int i = 0; i < n; i++) {
                D->u[k + 1][i] *= D->Q[(size_t)i * d + W->a[k]];
                D->v[k + 1][i] *= D->K[(size_t)i * d + W->b[k]];
            }
            const double *wk = pr_posw_seq(W, k);
            for (size_t l = 0; l < L; l++)
                D->t[k + 1][l] *= wk[l];
        }
        dwalk(D, k + 1, rem - ek);
    }
    D->e[k] = 0;
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
    if (!terms_ok(W->s, g))
        return PR_EBUDGET;
    int s = W->s;
    size_t L = 2 * (size_t)n - 1;
    dwalk_t D = {Q, K, X, W, coef, n, d, g, m, opts->sigma, 0, 0, 0, 0, Y, 0};
    D.e = calloc((size_t)s + 1, sizeof(int));
    D.u = calloc((size_t)s + 1, sizeof(double *));
    D.v = calloc((size_t)s + 1, sizeof(double *));
    D.t = calloc((size_t)s + 1, sizeof(double *));
    D.vx = malloc(sizeof(double) * n);
    int ok = D.e && D.u && D.v && D.t && D.vx;
    for (int k = 0; ok && k <= s; k++) {
        D.u[k] = malloc(sizeof(double) * n);
        D.v[k] = malloc(sizeof(double) * n);
        D.t[k] = malloc(sizeof(double) * L);
        ok = D.u[k] && D.v[k] && D.t[k];
    }
    if (ok) {
        memset(Y, 0, sizeof(double) * (size_t)n * m);
        for (int i = 0; i < n; i++)
            D.u[0][i] = D.v[0][i] = 1.0;
        for (size_t l = 0; l < L; l++)
            D.t[0][l] = opts->causal && (long)l < n - 1 ? 0.0 : 1.0;
        dwalk(&D, 0, g);
    }
    for (int k = 0; D.u && k <= s; k++) {
        free(D.u[k]);
        if (D.v)
            free(D.v[k]);
        if (D.t)
            free(D.t[k]);
    }
    free(D.e);
    free(D.u);
    free(D.v);
    free(D.t);
    free(D.vx);
    return ok ? PR_OK : PR_ENOMEM;
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
