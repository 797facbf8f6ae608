/* The fast backward (DESIGN.md §1 "Backward", "Rescaled-Toeplitz expansion"; claims G3, G4, G5).
 *
 * ---- Derivation: dM̃ ∘ T^{(a,b)} as rescaled Toeplitz sums ------------------------------------
 * The forward expands Ã = Σ_e α_e diag(u_e) T_e diag(v_e) over multisets e of S, |e| ≤ g, with
 * α_e = c_|e| mult(e) σ^|e|, u_e(i) = Π Q_{i a}^{e_ab}, v_e(j) = Π K_{j b}^{e_ab} and T_e the
 * Toeplitz matrix of t_e(ℓ) = e^{β_ℓ} Π w_ab(ℓ)^{e_ab} (0 where masked).
 * (1) dM̃ has rank-(d+1) rescalings of the same terms. With x_c(i) = dO_ic / D̃_i, y_c(j) = V_jc
 *     for c < d, and x_d(i) = -r_i / D̃_i, y_d(j) = 1:
 *       dM̃_ij = P̃_ij (Σ_c dO_ic V_jc - r_i) = Ã_ij Σ_{c≤d} x_c(i) y_c(j),
 *       dM̃ = Σ_e α_e Σ_{c≤d} diag(x_c u_e) T_e diag(y_c v_e)      ((d+1) × the forward's terms).
 * (2) dM̃ ∘ T^{(a,b)}: the Hadamard product of two Toeplitz matrices is Toeplitz with the product
 *     symbol, t_e·w_k = t_{e+k} (k = (a,b) ∈ S), and u_e(i) Q_{i a} = u_{e+k}(i),
 *     v_e(j) K_{j b} = v_{e+k}(j). So
 *       dQ_ia = σ Σ_{k: a_k = a} Σ_e α_e Σ_c x_c(i) u_e(i) [T_{e+k} (y_c v_{e+k})](i).
 *     Substituting f = e + k (1 ≤ |f| ≤ g+1) and using mult(f - k) = mult(f)·f_k/|f|:
 *       σ α_{f-k} = α̂_f · f_k,  with α̂_f := (c_{|f|-1}/|f|) mult(f) σ^{|f|},
 *     and Σ_{k ∈ f, a_k = a} f_k u_{f-k}(i) = ∂u_f/∂Q_ia (i). Hence
 *       dQ_ia = Σ_f α̂_f (∂u_f/∂Q_ia)(i) Σ_c x_c(i) [T_f (y_c v_f)](i),
 *       dK_jb = Σ_f α̂_f (∂v_f/∂K_jb)(j) Σ_c y_c(j) [T_fᵀ (x_c u_f)](j),
 *       dw_k(ℓ) = Σ_f α̂_f f_k t_{f-k}(ℓ) Σ_c C_{f,c}(ℓ),  C_{f,c}(ℓ) = Σ_{i-j=ℓ} x_c u_f(i) y_c v_f(j),
 *     i.e. the gradient of Σ_ij G_ij P̂(M_ij) e^{β} with P̂' = P (P̂ has coefficients c_{k-1}/k)
 *     and G_ij = Σ_c x_c(i) y_c(j) held fixed: every (a,b) ∈ S is absorbed into one expansion of
 *     degree g+1, C(s+g+1, g+1) rescaled Toeplitz terms instead of s·C(s+g, g).
 *     And dV_jc = Σ_e α_e v_e(j) [T_eᵀ (u_e dO_c / D̃)](j) (transposed products).
 * (3) Sharing by marginals: u_f and ∂u_f/∂Q depend only on the a-marginal μ of f, v_f only on its
 *     b-marginal ν. One forward FFT per (ν, c) for y_c v_ν and per (μ, c) for x_c u_μ; the dQ
 *     products are summed in the frequency domain per μ (one inverse FFT per (μ, c)), the dK and
 *     dV products per ν (one inverse per (ν, c)); C_f depends only on (μ, ν): one inverse per pair,
 *     Σ_c X̂_{μ,c} conj(Ŷ_{ν,c}) summed before it. Each symbol t_f is built once from the power
 *     tables of the w_k and transformed once per execute (its spectrum is not stored: at large n
 *     the C(s+g+1, g+1) spectra do not fit in memory; streaming them costs one FFT each).
 *     Terms are visited by size |f| = m; only the ν of size m are live at a time, which bounds
 *     the memory by (#ν of one size)·3(d+1) spectra.
 *
 * ---- Propagated error bound (claim G4) -------------------------------------------------------
 * Let |P(x) - eˣ| ≤ ε_A eˣ on [-R, R] (R bounds |M_ij|), P the exact softmax weights, and
 * η = 2ε_A/(1-ε_A). Then (C9's argument) D̃_i/D_i ∈ [1-ε_A, 1+ε_A] and |P̃_ij - P_ij| ≤ η P_ij,
 * and P̃ is row-stochastic and nonnegative (P > 0 on [-R, R] when ε_A < 1). With ν_i = ‖dO_i‖₁,
 * V∞ = ‖V‖∞, G_ij = <dO_i, V_j> - r_i:
 *   |r̃_i - r_i| ≤ ν_i ‖Õ_i - O_i‖∞ ≤ η ν_i V∞;   |G̃_ij| ≤ ν_i V∞ + ν_i ‖Õ_i‖∞ ≤ 2 ν_i V∞;
 *   |dM̃_ij - dM_ij| ≤ |P̃_ij - P_ij| |G̃_ij| + P_ij |r̃_i - r_i| ≤ 3η ν_i V∞ P_ij.
 * With ρ_a = max_ℓ Σ_{b:(a,b)∈S} |w_ab(ℓ)|, ρ'_b = max_ℓ Σ_{a:(a,b)∈S} |w_ab(ℓ)|, Σ_j P_ij = 1 and
 * P_ij ≤ P̃_ij/(1-η) (since (1-ε_A)/(1+ε_A) ≥ 1-η), κ_j = Σ_i P̃_ij ν_i:
 *   |ΔdQ_ia| ≤ σ Σ_j |ΔdM_ij| ‖K‖∞ ρ_a ≤ 3η σ V∞ ‖K‖∞ ρ_a ν_i,
 *   |ΔdK_jb| ≤ 3η σ V∞ ‖Q‖∞ ρ'_b Σ_i ν_i P_ij ≤ 3η σ V∞ ‖Q‖∞ ρ'_b κ_j/(1-η),
 *   |ΔdV_jc| ≤ Σ_i |P̃_ij - P_ij| |dO_ic| ≤ η κ_j/(1-η),
 *   |Δdw_k(ℓ)| ≤ 3η σ V∞ ‖Q‖∞ ‖K‖∞ Σ_{i-j=ℓ} ν_i P_ij ≤ 3η σ V∞ ‖Q‖∞ ‖K‖∞ Σ_i ν_i
 * (each row meets a diagonal once and P_ij ≤ 1). κ is computed by the fast path in double, so the
 * bound is an estimate that chooses nothing and certifies nothing (DESIGN.md §2); it holds to
 * within the double floor of the run (F1). */
#include <complex.h>
#include <fftw3.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_rope.h"
#include "pr_backward.h"

typedef double complex cplx;

/* ---- multisets of S and their marginals ------------------------------------------------------- */

/* mult(f) = |f|! / Π f_k! as a product of binomials, exact in double while it stays below 2^53 */
static double multinomial(const int *f, int s)
{
    double m = 1.0;
    int tot = 0;
    for (int k = 0; k < s; k++)
        for (int t = 1; t <= f[k]; t++) {
            tot++;
            m = m * tot / t;
        }
    return m;
}

/* C(a+b, b) in double; INFINITY past 2^62 */
static double binom_count(int a, int b)
{
    double c = 1.0;
    for (int t = 1; t <= b; t++) {
        c = c * (a + t) / t;
        if (c > 0x1p62)
            return INFINITY;
    }
    return c;
}

/* Writes every multiset of size ≤ G over s slots (as exponent vectors) into f[cnt*s...]. */
static void enum_multisets(unsigned char *f, long *cnt, unsigned char *cur, int k, int s, int left)
{
    if (k == s) {
        memcpy(f + (size_t)(*cnt) * s, cur, (size_t)s);
        (*cnt)++;
        return;
    }
    for (int e = 0; e <= left; e++) {
        cur[k] = (unsigned char)e;
        enum_multisets(f, cnt, cur, k + 1, s, left - e);
    }
}

struct pr_backward_plan_s {
    int n, d, s, g, G, N, Nc, Ncs, want_dw;
    double sigma;
    int *wa, *wb;                /* support pairs */
    long nf;                     /* multisets, sorted by (|f|, μ, ν) */
    unsigned char *f;            /* nf × s */
    int *fmu, *fnu;              /* marginal ids */
    double *alpha, *ahat;        /* α_f (0 for |f| > g), α̂_f (0 for |f| = 0), both / N */
    int nmu, nnu;
    unsigned char *mu, *nu;      /* nmu × d, nnu × d exponent vectors */
    long *mu_start;              /* first f of each μ (nmu+1 entries) */
    int *nu_size_start;          /* first ν of each size (G+2 entries); ν sorted by (|ν|, ν) */
    long npairs;
    double bytes;
    long transforms;
    /* tables and buffers */
    double *wpow;                /* s × (G+1) × N, w_k^p in circular layout */
    double *bias;                /* N: e^{β_ℓ}, 0 where masked or outside [-(n-1), n-1] */
    double *qpow, *kpow;         /* d × (G+1) × n */
    double *xc;                  /* (d+2) × n: dO_c/D̃ (c<d), -r/D̃, ‖dO‖₁/D̃ */
    double *rbuf, *zbuf, *tsym;  /* N reals */
    double *wsum;                /* n reals */
    cplx *That, *Xhat, *accQ, *Yhat, *accK, *accV, *corr;
    fftw_plan r2c, c2r;
};

static int cmp_vec(const unsigned char *x, const unsigned char *y, int d)
{
    int sx = 0, sy = 0;
    for (int a = 0; a < d; a++) {
        sx += x[a];
        sy += y[a];
    }
    if (sx != sy)
        return sx < sy ? -1 : 1;
    return memcmp(x, y, (size_t)d);
}

typedef struct {
    unsigned char *mu, *nu;
    int d;
} marg_ctx;

static int cmp_f(const void *p, const void *q, void *ctx)
{
    const marg_ctx *c = ctx;
    long i = *(const long *)p, j = *(const long *)q;
    int r = cmp_vec(c->mu + i * c->d, c->mu + j * c->d, c->d);
    if (!r)
        r = memcmp(c->nu + i * c->d, c->nu + j * c->d, (size_t)c->d);
    return r ? r : (i < j ? -1 : i > j);
}

static int cmp_nu(const void *p, const void *q, void *ctx)
{
    const marg_ctx *c = ctx;
    long i = *(const long *)p, j = *(const long *)q;
    int r = cmp_vec(c->nu + i * c->d, c->nu + j * c->d, c->d);
    return r ? r : (i < j ? -1 : i > j);
}

void pr_backward_destroy(pr_backward_plan *p)
{
    if (!p)
        return;
    free(p->wa); free(p->wb); free(p->f); free(p->fmu); free(p->fnu);
    free(p->alpha); free(p->ahat); free(p->mu); free(p->nu); free(p->mu_start);
    free(p->nu_size_start);
    fftw_free(p->wpow); fftw_free(p->bias); fftw_free(p->qpow); fftw_free(p->kpow);
    fftw_free(p->xc); fftw_free(p->rbuf); fftw_free(p->zbuf); fftw_free(p->tsym);
    fftw_free(p->wsum); fftw_free(p->That); fftw_free(p->Xhat); fftw_free(p->accQ);
    fftw_free(p->Yhat); fftw_free(p->accK); fftw_free(p->accV); fftw_free(p->corr);
    if (p->r2c)
        fftw_destroy_plan(p->r2c);
    if (p->c2r)
        fftw_destroy_plan(p->c2r);
    free(p);
}

/* Sorts the multisets by (|f|, μ, ν) and numbers the distinct marginals. */
static int build_groups(pr_backward_plan *p, const unsigned char *fraw)
{
    int d = p->d, s = p->s;
    long nf = p->nf;
    unsigned char *mu = malloc((size_t)nf * d), *nu = malloc((size_t)nf * d);
    long *ord = malloc(sizeof(long) * nf), *nord = malloc(sizeof(long) * nf);
    int *nuid = malloc(sizeof(int) * nf);
    int st = PR_ENOMEM;
    if (!mu || !nu || !ord || !nord || !nuid)
        goto done;
    memset(mu, 0, (size_t)nf * d);
    memset(nu, 0, (size_t)nf * d);
    for (long t = 0; t < nf; t++) {
        for (int k = 0; k < s; k++) {
            mu[t * d + p->wa[k]] += fraw[t * s + k];
            nu[t * d + p->wb[k]] += fraw[t * s + k];
        }
        ord[t] = nord[t] = t;
    }
    marg_ctx ctx = {mu, nu, d};
    qsort_r(ord, (size_t)nf, sizeof(long), cmp_f, &ctx);
    qsort_r(nord, (size_t)nf, sizeof(long), cmp_nu, &ctx);
    /* ν ids in (|ν|, ν) order */
    p->nnu = 0;
    for (long t = 0; t < nf; t++) {
        if (t == 0 || cmp_vec(nu + nord[t] * d, nu + nord[t - 1] * d, d))
            p->nnu++;
        nuid[nord[t]] = p->nnu - 1;
    }
    p->nu = malloc((size_t)p->nnu * d);
    p->nu_size_start = calloc((size_t)p->G + 2, sizeof(int));
    p->f = malloc((size_t)nf * s);
    p->fmu = malloc(sizeof(int) * nf);
    p->fnu = malloc(sizeof(int) * nf);
    if (!p->nu || !p->nu_size_start || !p->f || !p->fmu || !p->fnu)
        goto done;
    for (long t = 0; t < nf; t++)
        memcpy(p->nu + (size_t)nuid[nord[t]] * d, nu + nord[t] * d, (size_t)d);
    for (int m = 0, v = 0; m <= p->G + 1; m++) {
        while (v < p->nnu) {
            int sz = 0;
            for (int a = 0; a < d; a++)
                sz += p->nu[(size_t)v * d + a];
            if (sz >= m)
                break;
            v++;
        }
        p->nu_size_start[m] = v;
    }
    p->nmu = 0;
    p->npairs = 0;
    for (long t = 0; t < nf; t++) {
        long o = ord[t];
        int newmu = t == 0 || cmp_vec(mu + o * d, mu + ord[t - 1] * d, d);
        if (newmu)
            p->nmu++;
        if (newmu || nuid[o] != nuid[ord[t - 1]])
            p->npairs++;
        memcpy(p->f + (size_t)t * s, fraw + (size_t)o * s, (size_t)s);
        p->fmu[t] = p->nmu - 1;
        p->fnu[t] = nuid[o];
    }
    p->mu = malloc((size_t)p->nmu * d);
    p->mu_start = malloc(sizeof(long) * ((size_t)p->nmu + 1));
    if (!p->mu || !p->mu_start)
        goto done;
    for (long t = 0; t < nf; t++)
        if (t == 0 || p->fmu[t] != p->fmu[t - 1]) {
            memcpy(p->mu + (size_t)p->fmu[t] * d, mu + ord[t] * d, (size_t)d);
            p->mu_start[p->fmu[t]] = t;
        }
    p->mu_start[p->nmu] = nf;
    st = PR_OK;
done:
    free(mu); free(nu); free(ord); free(nord); free(nuid);
    return st;
}

static int vec_size(const unsigned char *x, int d)
{
    int t = 0;
    for (int a = 0; a < d; a++)
        t += x[a];
    return t;
}

static void *falloc(pr_backward_plan *p, size_t count, size_t size)
{
    p->bytes += (double)count * size;
    void *x = fftw_malloc(count * size);
    if (x)
        memset(x, 0, count * size);
    return x;
}

int pr_backward_plan_fft(pr_backward_plan **plan, const pr_posw_struct *W, int n, int d,
                         const pr_attn_opts_t *opts, int want_dw, double max_bytes)
{
    *plan = NULL;
    if (n <= 0 || d <= 0 || !opts->poly || opts->poly_degree < 0 || !(opts->sigma > 0.0) ||
        !isfinite(opts->sigma))
        return PR_EINVAL;
    if (W->n != n || W->d != d || W->s <= 0)
        return PR_ESHAPE;
    if (d > 255 || opts->poly_degree > 253)
        return PR_EBUDGET;
    int s = W->s, g = opts->poly_degree, G = g + 1;
    if (pr_vec_check_finite(opts->poly, (size_t)g + 1) ||
        pr_vec_check_finite(W->w, (size_t)s * (2 * (size_t)n - 1)) ||
        (opts->beta && pr_vec_check_finite(opts->beta, 2 * (size_t)n - 1)))
        return PR_ENONFINITE;
    double nfd = binom_count(s, G);
    if (n > (1 << 28) || nfd > 1e8)
        return PR_EBUDGET;
    int N = 2;
    while (N < 2 * n - 1)
        N *= 2;
    int Nc = N / 2 + 1, Ncs = (Nc + 3) & ~3;
    /* memory estimate before allocating: power tables, spectra of one size class */
    double nu_one_size = binom_count(d - 1, G); /* vectors of size G over d slots */
    double est = 8.0 * ((double)s * (G + 1) * N + 2.0 * d * (G + 1) * n + (d + 2.0) * n + 4.0 * N) +
                 16.0 * Ncs * ((d + 3.0) + (d + 1.0) + 1 + nu_one_size * 3.0 * (d + 1)) +
                 nfd * (s + 24.0);
    if (max_bytes > 0 && est > max_bytes)
        return PR_EBUDGET;

    pr_backward_plan *p = calloc(1, sizeof(*p));
    if (!p)
        return PR_ENOMEM;
    p->n = n; p->d = d; p->s = s; p->g = g; p->G = G; p->N = N; p->Nc = Nc; p->Ncs = Ncs;
    p->want_dw = want_dw;
    p->sigma = opts->sigma;
    p->nf = (long)nfd;
    int st = PR_ENOMEM;
    p->wa = malloc(sizeof(int) * s);
    p->wb = malloc(sizeof(int) * s);
    unsigned char *fraw = malloc((size_t)p->nf * s), *cur = calloc((size_t)s, 1);
    if (!p->wa || !p->wb || !fraw || !cur)
        goto fail;
    memcpy(p->wa, W->a, sizeof(int) * s);
    memcpy(p->wb, W->b, sizeof(int) * s);
    long cnt = 0;
    enum_multisets(fraw, &cnt, cur, 0, s, G);
    st = build_groups(p, fraw);
    if (st)
        goto fail;
    st = PR_ENOMEM;
    p->alpha = malloc(sizeof(double) * p->nf);
    p->ahat = malloc(sizeof(double) * p->nf);
    if (!p->alpha || !p->ahat)
        goto fail;
    for (long t = 0; t < p->nf; t++) {
        int f[256], m = 0;
        for (int k = 0; k < s; k++)
            m += f[k] = p->f[(size_t)t * s + k];
        double mult = multinomial(f, s), sm = pow(opts->sigma, m);
        p->alpha[t] = m <= g ? opts->poly[m] * mult * sm / N : 0.0;
        p->ahat[t] = m >= 1 ? opts->poly[m - 1] / m * mult * sm / N : 0.0;
    }
    int maxnu = 0;
    for (int m = 0; m <= G; m++)
        if (p->nu_size_start[m + 1] - p->nu_size_start[m] > maxnu)
            maxnu = p->nu_size_start[m + 1] - p->nu_size_start[m];
    p->bytes = (double)p->nf * (s + 24.0);
    p->wpow = falloc(p, (size_t)s * (G + 1) * N, sizeof(double));
    p->bias = falloc(p, (size_t)N, sizeof(double));
    p->qpow = falloc(p, (size_t)d * (G + 1) * n, sizeof(double));
    p->kpow = falloc(p, (size_t)d * (G + 1) * n, sizeof(double));
    p->xc = falloc(p, (size_t)(d + 2) * n, sizeof(double));
    p->rbuf = falloc(p, (size_t)N, sizeof(double));
    p->zbuf = falloc(p, (size_t)N, sizeof(double));
    p->tsym = falloc(p, (size_t)N, sizeof(double));
    p->wsum = falloc(p, (size_t)n, sizeof(double));
    p->That = falloc(p, (size_t)Ncs, sizeof(cplx));
    p->Xhat = falloc(p, (size_t)Ncs * (d + 2), sizeof(cplx));
    p->accQ = falloc(p, (size_t)Ncs * (d + 1), sizeof(cplx));
    p->corr = falloc(p, (size_t)Ncs, sizeof(cplx));
    p->Yhat = falloc(p, (size_t)Ncs * (d + 1) * maxnu, sizeof(cplx));
    p->accK = falloc(p, (size_t)Ncs * (d + 1) * maxnu, sizeof(cplx));
    p->accV = falloc(p, (size_t)Ncs * (d + 1) * maxnu, sizeof(cplx));
    if (!p->wpow || !p->bias || !p->qpow || !p->kpow || !p->xc || !p->rbuf || !p->zbuf ||
        !p->tsym || !p->wsum || !p->That || !p->Xhat || !p->accQ || !p->corr || !p->Yhat ||
        !p->accK || !p->accV)
        goto fail;
    if (max_bytes > 0 && p->bytes > max_bytes) {
        st = PR_EBUDGET;
        goto fail;
    }
    /* symbol tables: bias (mask folded in) and w_k^p, circular layout ℓ mod N */
    for (long l = -(n - 1); l <= n - 1; l++) {
        long ci = l < 0 ? N + l : l;
        double lb = pr_attn_log_bias(opts, n, l);
        p->bias[ci] = exp(lb);
        for (int k = 0; k < s; k++) {
            double w = pr_posw_at(W, k, l), acc = 1.0;
            for (int e = 0; e <= G; e++) {
                p->wpow[((size_t)k * (G + 1) + e) * N + ci] = acc;
                acc *= w;
            }
        }
    }
    p->r2c = fftw_plan_dft_r2c_1d(N, p->rbuf, (fftw_complex *)p->That, FFTW_ESTIMATE);
    p->c2r = fftw_plan_dft_c2r_1d(N, (fftw_complex *)p->corr, p->zbuf, FFTW_ESTIMATE);
    if (!p->r2c || !p->c2r) {
        st = PR_EFFTW;
        goto fail;
    }
    free(fraw);
    free(cur);
    *plan = p;
    return PR_OK;
fail:
    free(fraw);
    free(cur);
    pr_backward_destroy(p);
    return st;
}

void pr_backward_lse_from_fast(double *lse, const pr_fast_plan_t F)
{
    for (int i = 0; i < F->n; i++)
        lse[i] = log(F->num[(size_t)i * (F->d + 1) + F->d]);
}

void pr_backward_info(pr_backward_info_t *info, const pr_backward_plan *p)
{
    info->terms = p->nf;
    info->a_marginals = p->nmu;
    info->b_marginals = p->nnu;
    info->ab_pairs = p->npairs;
    info->bytes = p->bytes;
    info->transforms = p->transforms;
}

/* ---- execute ---------------------------------------------------------------------------------- */

/* out[i] = Π_a pw[a][e_a][i] (pw: d × (G+1) × n); skip = -1, or a slot whose exponent is lowered by one */
static void marg_product(double *out, const double *pw, const unsigned char *e, int skip,
                         int d, int G, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = 1.0;
    for (int a = 0; a < d; a++) {
        int p = e[a] - (a == skip);
        if (p == 0)
            continue;
        const double *x = pw + ((size_t)a * (G + 1) + p) * n;
        for (int i = 0; i < n; i++)
            out[i] *= x[i];
    }
}

/* forward transform of x ∘ y (n entries, zero-padded to N) into out */
static void fwd(pr_backward_plan *p, cplx *out, const double *x, const double *y)
{
    for (int i = 0; i < p->n; i++)
        p->rbuf[i] = x[i] * y[i];
    memset(p->rbuf + p->n, 0, sizeof(double) * (p->N - p->n));
    fftw_execute_dft_r2c(p->r2c, p->rbuf, (fftw_complex *)out);
    p->transforms++;
}

/* inverse transform of in (destroyed) into p->zbuf */
static void inv(pr_backward_plan *p, cplx *in)
{
    fftw_execute_dft_c2r(p->c2r, (fftw_complex *)in, p->zbuf);
    p->transforms++;
}

static void powers(double *pw, const double *X, int n, int d, int G)
{
    for (int a = 0; a < d; a++) {
        double *base = pw + (size_t)a * (G + 1) * n;
        for (int i = 0; i < n; i++)
            base[i] = 1.0;
        for (int e = 1; e <= G; e++)
            for (int i = 0; i < n; i++)
                base[(size_t)e * n + i] = base[(size_t)(e - 1) * n + i] * X[(size_t)i * d + a];
    }
}

/* dX[i][a] += z[i] · ∂(Π_a X_ia^{e_a})/∂X_ia for every a with e_a > 0 */
static void add_marg_grad(double *dX, const double *z, const double *pw, const unsigned char *e,
                          double *tmp, int d, int G, int n)
{
    for (int a = 0; a < d; a++) {
        if (!e[a])
            continue;
        marg_product(tmp, pw, e, a, d, G, n);
        for (int i = 0; i < n; i++)
            dX[(size_t)i * d + a] += e[a] * tmp[i] * z[i];
    }
}

int pr_backward_execute(pr_backward_plan *p, double *dQ, double *dK, double *dV, double *dw,
                        double *kappa, const double *Q, const double *K, const double *V,
                        const double *O, const double *lse, const double *dO)
{
    int n = p->n, d = p->d, s = p->s, G = p->G, N = p->N, Ncs = p->Ncs, Nc = p->Nc;
    if (dw && !p->want_dw)
        return PR_EINVAL;
    size_t nd = (size_t)n * d;
    if (pr_vec_check_finite(Q, nd) || pr_vec_check_finite(K, nd) || pr_vec_check_finite(V, nd) ||
        pr_vec_check_finite(O, nd) || pr_vec_check_finite(dO, nd) || pr_vec_check_finite(lse, n))
        return PR_ENONFINITE;
    p->transforms = 0;
    /* x columns: dO_c/D̃, -r/D̃, ‖dO‖₁/D̃ */
    for (int i = 0; i < n; i++) {
        double inv_d = exp(-lse[i]), r = 0.0, l1 = 0.0;
        for (int c = 0; c < d; c++) {
            double g = dO[(size_t)i * d + c];
            r += g * O[(size_t)i * d + c];
            l1 += fabs(g);
            p->xc[(size_t)c * n + i] = g * inv_d;
        }
        p->xc[(size_t)d * n + i] = -r * inv_d;
        p->xc[(size_t)(d + 1) * n + i] = l1 * inv_d;
    }
    powers(p->qpow, Q, n, d, G);
    powers(p->kpow, K, n, d, G);
    memset(dQ, 0, sizeof(double) * nd);
    memset(dK, 0, sizeof(double) * nd);
    memset(dV, 0, sizeof(double) * nd);
    if (dw)
        memset(dw, 0, sizeof(double) * (size_t)s * (2 * (size_t)n - 1));
    if (kappa)
        memset(kappa, 0, sizeof(double) * n);
    /* y columns: V_c and 1, read through a strided copy into tsym */
    double *ycol = p->tsym, *tmp = p->wsum;
    long t = 0;
    for (int m = 0; m <= G; m++) {
        int nu0 = p->nu_size_start[m], nu1 = p->nu_size_start[m + 1];
        size_t nsz = (size_t)(nu1 - nu0) * (d + 1) * Ncs;
        memset(p->accK, 0, sizeof(cplx) * nsz);
        memset(p->accV, 0, sizeof(cplx) * nsz);
        if (m >= 1)
            for (int v = nu0; v < nu1; v++) {
                marg_product(tmp, p->kpow, p->nu + (size_t)v * d, -1, d, G, n);
                for (int c = 0; c <= d; c++) {
                    for (int j = 0; j < n; j++)
                        ycol[j] = c < d ? V[(size_t)j * d + c] : 1.0;
                    fwd(p, p->Yhat + ((size_t)(v - nu0) * (d + 1) + c) * Ncs, ycol, tmp);
                }
            }
        while (t < p->nf && vec_size(p->mu + (size_t)p->fmu[t] * d, d) == m) {
            int mu = p->fmu[t];
            const unsigned char *muv = p->mu + (size_t)mu * d;
            marg_product(tmp, p->qpow, muv, -1, d, G, n);
            for (int c = 0; c < d + 2; c++)
                fwd(p, p->Xhat + (size_t)c * Ncs, p->xc + (size_t)c * n, tmp);
            memset(p->accQ, 0, sizeof(cplx) * (d + 1) * Ncs);
            long tend = p->mu_start[mu + 1];
            while (t < tend) {
                int nuid = p->fnu[t];
                long rend = t;
                while (rend < tend && p->fnu[rend] == nuid)
                    rend++;
                size_t vo = (size_t)(nuid - nu0) * (d + 1) * Ncs;
                const cplx *Y = p->Yhat + vo;
                cplx *aK = p->accK + vo, *aV = p->accV + vo;
                double *C = NULL;
                if (dw && m >= 1) {
                    for (int q = 0; q < Nc; q++) {
                        cplx z = 0;
                        for (int c = 0; c <= d; c++)
                            z += p->Xhat[(size_t)c * Ncs + q] * conj(Y[(size_t)c * Ncs + q]);
                        p->corr[q] = z;
                    }
                    inv(p, p->corr);
                    C = p->zbuf;
                }
                for (; t < rend; t++) {
                    const unsigned char *f = p->f + (size_t)t * s;
                    double ah = p->ahat[t], al = p->alpha[t];
                    /* t_f = bias · Π_k w_k^{f_k}, and dw_k(ℓ) += α̂_f f_k t_{f-k}(ℓ) C(ℓ) */
                    for (long l = -(n - 1); l <= n - 1; l++) {
                        long ci = l < 0 ? N + l : l;
                        double b = p->bias[ci];
                        if (b == 0.0) {
                            p->rbuf[ci] = 0.0;
                            continue;
                        }
                        double pre[257], pw[256];
                        pre[0] = b;
                        for (int k = 0; k < s; k++) {
                            pw[k] = p->wpow[((size_t)k * (G + 1) + f[k]) * N + ci];
                            pre[k + 1] = pre[k] * pw[k];
                        }
                        p->rbuf[ci] = pre[s];
                        if (C && ah != 0.0) {
                            /* ah carries 1/N and C the c2r factor N */
                            double suf = 1.0, hc = ah * C[ci];
                            for (int k = s - 1; k >= 0; k--) {
                                if (f[k])
                                    dw[(size_t)k * (2 * (size_t)n - 1) + (size_t)(l + n - 1)] +=
                                        hc * f[k] * pre[k] * suf *
                                        p->wpow[((size_t)k * (G + 1) + f[k] - 1) * N + ci];
                                suf *= pw[k];
                            }
                        }
                    }
                    for (long ci = n; ci < N - (n - 1); ci++)
                        p->rbuf[ci] = 0.0;
                    fftw_execute_dft_r2c(p->r2c, p->rbuf, (fftw_complex *)p->That);
                    p->transforms++;
                    if (ah != 0.0)
                        for (int q = 0; q < Nc; q++) {
                            cplx tq = ah * p->That[q], tk = conj(tq);
                            for (int c = 0; c <= d; c++) {
                                p->accQ[(size_t)c * Ncs + q] += tq * Y[(size_t)c * Ncs + q];
                                aK[(size_t)c * Ncs + q] += tk * p->Xhat[(size_t)c * Ncs + q];
                            }
                        }
                    if (al != 0.0)
                        for (int q = 0; q < Nc; q++) {
                            cplx tv = al * conj(p->That[q]);
                            for (int c = 0; c < d; c++)
                                aV[(size_t)c * Ncs + q] += tv * p->Xhat[(size_t)c * Ncs + q];
                            aV[(size_t)d * Ncs + q] += tv * p->Xhat[(size_t)(d + 1) * Ncs + q];
                        }
                }
            }
            if (m >= 1) {
                /* dQ_ia += ∂u_μ/∂Q_ia Σ_c x_c(i) [Σ_f α̂_f T_f (y_c v_ν)](i) */
                for (int i = 0; i < n; i++)
                    ycol[i] = 0.0;
                for (int c = 0; c <= d; c++) {
                    inv(p, p->accQ + (size_t)c * Ncs);
                    for (int i = 0; i < n; i++)
                        ycol[i] += p->xc[(size_t)c * n + i] * p->zbuf[i];
                }
                add_marg_grad(dQ, ycol, p->qpow, muv, tmp, d, G, n);
            }
        }
        for (int v = nu0; v < nu1; v++) {
            const unsigned char *nuv = p->nu + (size_t)v * d;
            size_t vo = (size_t)(v - nu0) * (d + 1) * Ncs;
            if (m >= 1) {
                for (int j = 0; j < n; j++)
                    ycol[j] = 0.0;
                for (int c = 0; c <= d; c++) {
                    inv(p, p->accK + vo + (size_t)c * Ncs);
                    for (int j = 0; j < n; j++)
                        ycol[j] += (c < d ? V[(size_t)j * d + c] : 1.0) * p->zbuf[j];
                }
                add_marg_grad(dK, ycol, p->kpow, nuv, tmp, d, G, n);
            }
            if (m <= p->g) {
                marg_product(tmp, p->kpow, nuv, -1, d, G, n);
                for (int c = 0; c <= d; c++) {
                    if (c == d && !kappa)
                        break;
                    inv(p, p->accV + vo + (size_t)c * Ncs);
                    for (int j = 0; j < n; j++) {
                        double z = tmp[j] * p->zbuf[j];
                        if (c < d)
                            dV[(size_t)j * d + c] += z;
                        else
                            kappa[j] += z;
                    }
                }
            }
        }
    }
    return PR_OK;
}

/* ---- low-rank path for factorised RoPE --------------------------------------------------------- */

/* index of exponent vector x among the sorted (lexicographic) vectors mono[0..F) */
static long mono_index(const unsigned char *mono, long F, const unsigned char *x, int d)
{
    long lo = 0, hi = F - 1;
    while (lo <= hi) {
        long mid = (lo + hi) / 2;
        int c = memcmp(mono + (size_t)mid * d, x, (size_t)d);
        if (!c)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* mon[α] = Π x_a^{α_a} for every α, each from a parent of lower index */
static void monomials(double *mon, const double *x, const long *drop, const int *first, long F, int d)
{
    mon[0] = 1.0;
    for (long t = 1; t < F; t++)
        mon[t] = mon[drop[t * d + first[t]]] * x[first[t]];
}

int pr_backward_lowrank(double *dQ, double *dK, double *dV, double *kappa,
                        const double *Q, const double *K, const double *V, const pr_posw_struct *W,
                        const double *O, const double *lse, const double *dO,
                        int n, int d, const pr_attn_opts_t *opts)
{
    int st = pr_attn_check(Q, K, V, W, n, d, opts);
    if (st)
        return st;
    if (!pr_posw_is_factorised(W) || !opts->poly || opts->beta)
        return PR_EINVAL;
    if (d % 2)
        return PR_EODD;
    size_t nd = (size_t)n * d;
    if (pr_vec_check_finite(O, nd) || pr_vec_check_finite(dO, nd) || pr_vec_check_finite(lse, n))
        return PR_ENONFINITE;
    int g = opts->poly_degree, G = g + 1;
    if (d > 255 || G > 255)
        return PR_EBUDGET;
    double Fd = binom_count(d, G);
    if (Fd > 1e7)
        return PR_EBUDGET;
    long F = (long)Fd;
    pr_rope_layout_t layout = W->kind == PR_POS_ROPE ? PR_ROPE_INTERLEAVED : PR_ROPE_NEOX;
    unsigned char *mono = malloc((size_t)F * d), *cur = calloc((size_t)d, 1);
    long *drop = malloc(sizeof(long) * F * d);
    int *first = malloc(sizeof(int) * F);
    double *alpha = malloc(sizeof(double) * F), *ahat = malloc(sizeof(double) * F);
    double *S = calloc((size_t)F * (d + 1), sizeof(double)), *T = calloc((size_t)F * (d + 2), sizeof(double));
    double *mon = malloc(sizeof(double) * F), *Qr = malloc(sizeof(double) * nd), *Kr = malloc(sizeof(double) * nd);
    double *xc = malloc(sizeof(double) * (d + 2));
    st = PR_ENOMEM;
    if (!mono || !cur || !drop || !first || !alpha || !ahat || !S || !T || !mon || !Qr || !Kr || !xc)
        goto done;
    long cnt = 0;
    enum_multisets(mono, &cnt, cur, 0, d, G);
    for (long t = 0; t < F; t++) {
        unsigned char *x = cur;
        memcpy(x, mono + (size_t)t * d, (size_t)d);
        int e[256], m = 0;
        first[t] = -1;
        for (int a = 0; a < d; a++) {
            m += e[a] = x[a];
            drop[t * d + a] = -1;
            if (x[a]) {
                if (first[t] < 0)
                    first[t] = a;
                x[a]--;
                drop[t * d + a] = mono_index(mono, F, x, d);
                x[a]++;
            }
        }
        double mult = multinomial(e, d), sm = pow(opts->sigma, m);
        alpha[t] = m <= g ? opts->poly[m] * mult * sm : 0.0;
        ahat[t] = m >= 1 ? opts->poly[m - 1] / m * mult * sm : 0.0;
    }
    if ((st = pr_rope_rotate(Qr, Q, n, d, W->rope_base, layout, 1)) ||
        (st = pr_rope_rotate(Kr, K, n, d, W->rope_base, layout, 1)))
        goto done;
    memset(dQ, 0, sizeof(double) * nd);
    memset(dK, 0, sizeof(double) * nd);
    memset(dV, 0, sizeof(double) * nd);
    /* S[α][c] = Σ_j y_c(j) k'^α_j over the j a row i sees; T[α][c] = Σ_i x_c(i) q'^α_i */
#define XCOLS(i)                                                                     \
    do {                                                                             \
        double inv_d_ = exp(-lse[i]), r_ = 0.0, l1_ = 0.0;                           \
        for (int c = 0; c < d; c++) {                                                \
            double g_ = dO[(size_t)(i) * d + c];                                      \
            r_ += g_ * O[(size_t)(i) * d + c];                                        \
            l1_ += fabs(g_);                                                         \
            xc[c] = g_ * inv_d_;                                                     \
        }                                                                            \
        xc[d] = -r_ * inv_d_;                                                        \
        xc[d + 1] = l1_ * inv_d_;                                                    \
    } while (0)
    if (!opts->causal)
        for (int j = 0; j < n; j++) {
            monomials(mon, Kr + (size_t)j * d, drop, first, F, d);
            for (long t = 0; t < F; t++) {
                for (int c = 0; c < d; c++)
                    S[t * (d + 1) + c] += V[(size_t)j * d + c] * mon[t];
                S[t * (d + 1) + d] += mon[t];
            }
        }
    for (int i = 0; i < n; i++) {
        if (opts->causal) {
            monomials(mon, Kr + (size_t)i * d, drop, first, F, d);
            for (long t = 0; t < F; t++) {
                for (int c = 0; c < d; c++)
                    S[t * (d + 1) + c] += V[(size_t)i * d + c] * mon[t];
                S[t * (d + 1) + d] += mon[t];
            }
        }
        XCOLS(i);
        monomials(mon, Qr + (size_t)i * d, drop, first, F, d);
        for (long t = 1; t < F; t++) {
            double z = 0.0;
            for (int c = 0; c <= d; c++)
                z += xc[c] * S[t * (d + 1) + c];
            z *= ahat[t];
            for (int a = 0; a < d; a++)
                if (drop[t * d + a] >= 0)
                    dQ[(size_t)i * d + a] += z * mono[(size_t)t * d + a] * mon[drop[t * d + a]];
        }
    }
    if (!opts->causal)
        for (int i = 0; i < n; i++) {
            XCOLS(i);
            monomials(mon, Qr + (size_t)i * d, drop, first, F, d);
            for (long t = 0; t < F; t++)
                for (int c = 0; c < d + 2; c++)
                    T[t * (d + 2) + c] += xc[c] * mon[t];
        }
    for (int j = n - 1; j >= 0; j--) {
        if (opts->causal) {
            XCOLS(j);
            monomials(mon, Qr + (size_t)j * d, drop, first, F, d);
            for (long t = 0; t < F; t++)
                for (int c = 0; c < d + 2; c++)
                    T[t * (d + 2) + c] += xc[c] * mon[t];
        }
        monomials(mon, Kr + (size_t)j * d, drop, first, F, d);
        double kap = 0.0;
        for (long t = 0; t < F; t++) {
            const double *Tt = T + t * (d + 2);
            if (alpha[t] != 0.0) {
                for (int c = 0; c < d; c++)
                    dV[(size_t)j * d + c] += alpha[t] * mon[t] * Tt[c];
                kap += alpha[t] * mon[t] * Tt[d + 1];
            }
            if (t == 0)
                continue;
            double z = Tt[d];
            for (int c = 0; c < d; c++)
                z += V[(size_t)j * d + c] * Tt[c];
            z *= ahat[t];
            for (int b = 0; b < d; b++)
                if (drop[t * d + b] >= 0)
                    dK[(size_t)j * d + b] += z * mono[(size_t)t * d + b] * mon[drop[t * d + b]];
        }
        if (kappa)
            kappa[j] = kap;
    }
#undef XCOLS
    /* back through the rotation: dQ = R_iᵀ dQ'_i */
    if ((st = pr_rope_rotate(dQ, dQ, n, d, W->rope_base, layout, -1)) ||
        (st = pr_rope_rotate(dK, dK, n, d, W->rope_base, layout, -1)))
        goto done;
    st = PR_OK;
done:
    free(mono); free(cur); free(drop); free(first); free(alpha); free(ahat); free(S); free(T);
    free(mon); free(Qr); free(Kr); free(xc);
    return st;
}

/* ---- error bound and the papers' dL/dX --------------------------------------------------------- */

int pr_backward_bound(pr_backward_bound_t *bound, double eps_A,
                      const double *Q, const double *K, const double *V, const pr_posw_struct *W,
                      const double *dO, const double *kappa, int n, int d, double sigma)
{
    if (!(eps_A >= 0.0) || !(eps_A < 1.0 / 3.0) || n <= 0 || d <= 0 || W->n != n || W->d != d)
        return PR_EINVAL;
    size_t nd = (size_t)n * d, L = 2 * (size_t)n - 1;
    double eta = 2.0 * eps_A / (1.0 - eps_A);
    double qinf = pr_vec_max_abs(Q, nd), kinf = pr_vec_max_abs(K, nd), vinf = pr_vec_max_abs(V, nd);
    double rho = 0.0, rhop = 0.0, numax = 0.0, nusum = 0.0, kapmax = pr_vec_max_abs(kappa, n);
    for (int a = 0; a < d; a++)
        for (size_t l = 0; l < L; l++) {
            double ra = 0.0, rb = 0.0;
            for (int k = 0; k < W->s; k++) {
                double w = fabs(W->w[(size_t)k * L + l]);
                ra += W->a[k] == a ? w : 0.0;
                rb += W->b[k] == a ? w : 0.0;
            }
            rho = fmax(rho, ra);
            rhop = fmax(rhop, rb);
        }
    for (int i = 0; i < n; i++) {
        double l1 = 0.0;
        for (int c = 0; c < d; c++)
            l1 += fabs(dO[(size_t)i * d + c]);
        numax = fmax(numax, l1);
        nusum += l1;
    }
    bound->dq = 3.0 * eta * sigma * vinf * kinf * rho * numax;
    bound->dk = 3.0 * eta * sigma * vinf * qinf * rhop * kapmax / (1.0 - eta);
    bound->dv = eta * kapmax / (1.0 - eta);
    bound->dw = 3.0 * eta * sigma * vinf * qinf * kinf * nusum;
    return PR_OK;
}

int pr_backward_dx(double *dX, const double *A1, const double *dQ, int n, int d)
{
    if (n <= 0 || d <= 0)
        return PR_EINVAL;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, n, 1.0, A1, d, dQ, d, 0.0, dX, d);
    return PR_OK;
}
