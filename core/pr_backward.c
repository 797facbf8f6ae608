/* The fast backward (docs/math.md §7, §5; claims G3, G4, G5).
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
 *     Σ_c X̂_{μ,c} conj(Ŷ_{ν,c}) summed before it. The spectra of the terms with |f| ≤ g are the
 *     forward plan's (it keeps α_f t̂_f; α̂_f t̂_f is that times α̂_f/α_f), so only the
 *     C(s+g, g+1) symbols of degree g+1 (and all of them when the forward streams) are built, from
 *     the power tables of the w_k, and transformed in each execute.
 *     Terms are visited by size |f| = m; only the ν of size m are live at a time, which bounds
 *     the memory by (#ν of one size)·(d+1)·(1 + 2·threads) spectra (Ŷ shared, each thread its
 *     own dK/dV sums, added in thread order before the inverse transforms). Inside a (μ, ν) run,
 *     batches of up to TBATCH terms are done block by block (offsets for the symbols and dw, frequencies
 *     for the products) with the terms inside, so the accumulators stay in cache; the spectra of
 *     the terms of one (μ, ν) are summed, Σ_f α̂_f t̂_f, before their products with Ŷ_ν and X̂_μ
 *     (C(s+g+1, g+1) terms, far fewer pairs). Within a size, α_f = (m c_m/c_{m-1}) α̂_f, so
 *     dV's transposed sums for the columns dO_c/D̃ are dK's, scaled: they cost no product of their own.
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
 *   |Δdw_k(ℓ)| ≤ 3η σ V∞ ‖Q‖∞ ‖K‖∞ Σ_{i-j=ℓ} ν_i P_ij ≤ 3η σ V∞ ‖Q‖∞ ‖K‖∞ κ^w(ℓ)/(1-η),
 * κ^w(ℓ) = Σ_{i-j=ℓ} ν_i P̃_ij = Σ_f α_f t_f(ℓ) Σ_{i-j=ℓ} (ν_i/D̃_i) u_f(i) v_f(j): one more
 * correlation per (μ, ν) from spectra already made (without it: κ^w ≤ Σ_i ν_i, as each row meets
 * a diagonal once and P_ij ≤ 1). κ and κ^w are computed by the fast path in double, so the
 * bound is an estimate that chooses nothing and certifies nothing (docs/verdicts.md); it holds to
 * within the double floor of the run (F1). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <omp.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_rope.h"
#include "pr_lowrank.h"
#include "pr_backward_impl.h"
#include "pr_timing.h"

/* ---- multisets of S and their marginals ------------------------------------------------------- */

/* mult(f) = |f|! / Π f_k! as a product of binomials, exact in double while it stays below 2^53 */
double pr_backward_multinomial_(const unsigned char *f, int s)
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
double pr_backward_binom_(int a, int b)
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
void pr_backward_enum_(unsigned char *f, long *cnt, unsigned char *cur, int k, int s, int left)
{
    if (k == s) {
        memcpy(f + (size_t)(*cnt) * s, cur, (size_t)s);
        (*cnt)++;
        return;
    }
    for (int e = 0; e <= left; e++) {
        cur[k] = (unsigned char)e;
        pr_backward_enum_(f, cnt, cur, k + 1, s, left - e);
    }
}

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
    free(p->alpha); free(p->ahat); free(p->fspec); free(p->poly); free(p->mu); free(p->nu); free(p->mu_start);
    free(p->nu_size_start);
    free(p->mu_size_start);
    free(p->wpow); free(p->bias); free(p->qpow); free(p->kpow); free(p->xc);
    pr_toeplitz_spec_free(p->Yhat);
    for (int t = 0; p->thr && t < p->nthreads; t++) {
        bw_thread *th = &p->thr[t];
        free(th->tsym); free(th->csym); free(th->cnu); free(th->preb);
        free(th->rbuf); free(th->zbuf); free(th->ycol); free(th->tmp);
        pr_toeplitz_spec_free(th->That); pr_toeplitz_spec_free(th->Xhat);
        pr_toeplitz_spec_free(th->accQ); pr_toeplitz_spec_free(th->corr);
        pr_toeplitz_spec_free(th->accK); pr_toeplitz_spec_free(th->accV);
        free(th->dQ); free(th->dK); free(th->dV); free(th->kappa); free(th->dw); free(th->kappa_w);
        pr_toeplitz_work_clear(th->ws);
    }
    free(p->thr);
    if (p->has_own_tp)
        pr_toeplitz_destroy(p->own_tp);
    free(p);
}

int pr_backward_vec_size_(const unsigned char *x, int d)
{
    int t = 0;
    for (int a = 0; a < d; a++)
        t += x[a];
    return t;
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
    p->mu_size_start = calloc((size_t)p->G + 2, sizeof(int));
    if (!p->mu_size_start)
        goto done;
    for (int m = 0, u = 0; m <= p->G + 1; m++) {
        while (u < p->nmu && pr_backward_vec_size_(p->mu + (size_t)u * d, d) < m)
            u++;
        p->mu_size_start[m] = u;
    }
    st = PR_OK;
done:
    free(mu); free(nu); free(ord); free(nord); free(nuid);
    return st;
}


/* Buffers are written once here so that their pages are mapped by the plan, not by the first
 * execute. */
static double *dalloc(pr_backward_plan *p, size_t count)
{
    p->bytes += 8.0 * count;
    double *x = malloc(sizeof(double) * (count ? count : 1));
    if (x)
        memset(x, 0, sizeof(double) * count);
    return x;
}

static double *salloc(pr_backward_plan *p, size_t count)
{
    p->bytes += 8.0 * p->sl * count;
    double *x = pr_toeplitz_spec_alloc(p->tp, count);
    if (x)
        memset(x, 0, sizeof(double) * p->sl * count);
    return x;
}

/* ordering of the forward's terms by multiplicity vector, for the lookup of reusable spectra */
static int cmp_term(const void *x, const void *y, void *ctx)
{
    const pr_fast_terms_struct *T = ctx;
    long i = *(const long *)x, j = *(const long *)y;
    return memcmp(T->e + (size_t)i * T->s, T->e + (size_t)j * T->s, (size_t)T->s);
}

/* fspec[t] = the forward plan's kept (planar) spectrum of α_f t_f for each f with |f| ≤ g and α_f ≠ 0 */
static int map_forward_spectra(pr_backward_plan *p, const pr_fast_plan_struct *F)
{
    const pr_fast_terms_struct *T = F->terms;
    long *ord = malloc(sizeof(long) * (T->nterms ? T->nterms : 1));
    if (!ord)
        return PR_ENOMEM;
    for (long i = 0; i < T->nterms; i++)
        ord[i] = i;
    qsort_r(ord, (size_t)T->nterms, sizeof(long), cmp_term, (void *)T);
    for (long t = 0; t < p->nf; t++) {
        const unsigned char *f = p->f + (size_t)t * p->s;
        if (p->alpha[t] == 0.0)
            continue;
        long lo = 0, hi = T->nterms - 1;
        while (lo <= hi) {
            long mid = (lo + hi) / 2;
            int c = memcmp(T->e + (size_t)ord[mid] * p->s, f, (size_t)p->s);
            if (!c) {
                p->fspec[t] = pr_fast_plan_spectrum(F, ord[mid]);
                p->reused += p->fspec[t] != NULL;
                break;
            }
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid - 1;
        }
    }
    free(ord);
    return PR_OK;
}

/* bytes of a plan before it is made: power tables, the term tables, the spectra of one size class
 * of ν, and nt threads' scratch (sl doubles per spectrum) */
static double fft_bytes(int n, int d, int s, int G, size_t sl, int nt)
{
    double nfd = pr_backward_binom_(s, G), nu_one_size = pr_backward_binom_(d - 1, G);
    double tb = fmin(TBATCH, fmax(2.0, nfd));   /* the batch is at most this (p->tbatch) */
    return 8.0 * ((double)s * (G + 1) * (2.0 * n) + 2.0 * d * (G + 1) * n + (d + 2.0) * n) +
           16.0 * sl * nu_one_size * (d + 1) + nfd * (s + 32.0) +
           nt * (8.0 * ((3.0 * tb + s) * 2.0 * n + (3.0 * d + 5) * n) +
                 8.0 * sl * (tb + (d + 2.0) + (d + 1.0) + 1.0 + nu_one_size * 2.0 * (d + 1)));
}

/* bytes of pr_backward_lowrank for F features of degree ≤ G */
double pr_backward_lowrank_bytes_(int n, int d, double F)
{
    return F * (d + 8.0 * d + 4.0 + 8.0 * (2.0 + 2.0 * d + 3.0 + 1.0)) + 8.0 * (2.0 * n * d + n + d + 2.0);
}

void pr_backward_needs(double *bytes, double *ops, const pr_posw_struct *W, int n, int d, int g,
                       int lowrank)
{
    double Lf = (double)pr_toeplitz_good_size(2L * n - 1, 5, 1), lg = log2(Lf);
    if (lowrank) {
        double F = pr_backward_binom_(d, g + 1);
        *bytes = pr_backward_lowrank_bytes_(n, d, F);
        /* per row two feature products of (d+1) and (d+2) columns, and the features' index search */
        *ops = 2.0 * n * F * (2.0 * d + 5.0) + F * d * log2(F + 1.0);
        return;
    }
    *bytes = fft_bytes(n, d, W->s, g + 1, (size_t)(2 * (long)(Lf / 2 + 1)), omp_get_max_threads());
    /* per term a symbol transform and about 3(d+1) spectral products; per marginal about
     * 3(d+1) transforms (at most as many marginals as terms) */
    double T = pr_backward_binom_(W->s, g + 1);
    *ops = T * Lf * (5.0 * lg + 12.0 * (d + 1.0)) + 2.0 * pr_backward_binom_(d, g + 1) * 3.0 * (d + 1.0) * 5.0 * Lf * lg;
}

int pr_backward_plan_fft(pr_backward_plan **plan, const pr_fast_plan_struct *F,
                         const pr_posw_struct *W, const pr_attn_opts_t *opts, int want_dw,
                         double max_bytes)
{
    *plan = NULL;
    int n = W->n, d = W->d;
    if (!opts->poly || opts->poly_degree < 0 || !(opts->sigma > 0.0) || !isfinite(opts->sigma))
        return PR_EINVAL;
    if (W->s <= 0)
        return PR_ESHAPE;
    if (F && (F->n != n || F->d != d || F->s != W->s || F->g != opts->poly_degree))
        return PR_ESHAPE;
    if (opts->poly_degree > 254)
        return PR_EINVAL;       /* multiplicities are unsigned char (pr_expoly stops at 170) */
    int s = W->s, g = opts->poly_degree, G = g + 1;
    if (pr_vec_check_finite(opts->poly, (size_t)g + 1) ||
        pr_vec_check_finite(W->w, (size_t)s * (2 * (size_t)n - 1)) ||
        (opts->beta && pr_vec_check_finite(opts->beta, 2 * (size_t)n - 1)))
        return PR_ENONFINITE;
    double nfd = pr_backward_binom_(s, G), est;
    {
        double Lf = (double)pr_toeplitz_good_size(2L * n - 1, 5, 1);
        est = fft_bytes(n, d, s, G, (size_t)(2 * (long)(Lf / 2 + 1)), omp_get_max_threads());
    }
    /* before anything is allocated: past max_bytes, or past what size_t products can hold */
    if (!(est < 0.25 * (double)SIZE_MAX) || (max_bytes > 0 && est > max_bytes))
        return PR_EBUDGET;
    pr_backward_plan *p = calloc(1, sizeof(*p));
    if (!p)
        return PR_ENOMEM;
    int st;
    if (F)
        p->tp = F->tp;
    else {
        if ((st = pr_toeplitz_plan(p->own_tp, n, PR_TOEPLITZ_ESTIMATE | PR_TOEPLITZ_FORCE_FFT))) {
            free(p);
            return st;
        }
        p->has_own_tp = 1;
        p->tp = p->own_tp;
    }
    p->sl = pr_toeplitz_spec_len(p->tp);
    int nt = omp_get_max_threads();
    p->n = n; p->d = d; p->s = s; p->g = g; p->G = G;
    p->want_dw = want_dw;
    p->nf = (long)nfd;
    st = PR_ENOMEM;
    p->wa = malloc(sizeof(int) * s);
    p->wb = malloc(sizeof(int) * s);
    unsigned char *fraw = malloc((size_t)p->nf * s), *cur = calloc((size_t)s, 1);
    if (!p->wa || !p->wb || !fraw || !cur)
        goto fail;
    memcpy(p->wa, W->a, sizeof(int) * s);
    memcpy(p->wb, W->b, sizeof(int) * s);
    long cnt = 0;
    pr_backward_enum_(fraw, &cnt, cur, 0, s, G);
    if ((st = build_groups(p, fraw)))
        goto fail;
    /* batch buffers no larger than the largest group needs (small degrees: a few terms) */
    p->tbatch = 2;
    for (int u = 0; u < p->nmu; u++)
        if (p->mu_start[u + 1] - p->mu_start[u] > p->tbatch)
            p->tbatch = (int)(p->mu_start[u + 1] - p->mu_start[u]);
    p->tbatch = p->tbatch < TBATCH ? p->tbatch : TBATCH;
    st = PR_ENOMEM;
    p->alpha = malloc(sizeof(double) * p->nf);
    p->ahat = malloc(sizeof(double) * p->nf);
    p->fspec = calloc((size_t)p->nf, sizeof(*p->fspec));
    p->poly = malloc(sizeof(double) * (g + 1));
    if (!p->alpha || !p->ahat || !p->fspec || !p->poly)
        goto fail;
    memcpy(p->poly, opts->poly, sizeof(double) * (g + 1));
    for (long t = 0; t < p->nf; t++) {
        const unsigned char *f = p->f + (size_t)t * s;
        int m = pr_backward_vec_size_(f, s);
        double mult = pr_backward_multinomial_(f, s), sm = pow(opts->sigma, m);
        p->alpha[t] = m <= g ? opts->poly[m] * mult * sm : 0.0;
        p->ahat[t] = m >= 1 ? opts->poly[m - 1] / m * mult * sm : 0.0;
    }
    if (F && !F->streamed && (st = map_forward_spectra(p, F)))
        goto fail;
    st = PR_ENOMEM;
    int maxnu = 0;
    for (int m = 0; m <= G; m++)
        if (p->nu_size_start[m + 1] - p->nu_size_start[m] > maxnu)
            maxnu = p->nu_size_start[m + 1] - p->nu_size_start[m];
    size_t L = 2 * (size_t)n - 1;
    p->bytes += (double)p->nf * (s + 32.0);
    p->wpow = dalloc(p, (size_t)s * (G + 1) * L);
    p->bias = dalloc(p, L);
    p->qpow = dalloc(p, (size_t)d * (G + 1) * n);
    p->kpow = dalloc(p, (size_t)d * (G + 1) * n);
    p->xc = dalloc(p, (size_t)(d + 2) * n);
    p->ysize = (size_t)(d + 1) * maxnu * p->sl;
    p->Yhat = salloc(p, 2 * (size_t)(d + 1) * maxnu);
    if (!p->wpow || !p->bias || !p->qpow || !p->kpow || !p->xc || !p->Yhat)
        goto fail;
    /* no more threads than a-marginals of the largest size: the μ loop is what is split */
    int mu_max = p->mu_size_start[G + 1] - p->mu_size_start[G];
    p->nthreads = nt < mu_max ? nt : mu_max > 0 ? mu_max : 1;
    if (!(p->thr = calloc((size_t)p->nthreads, sizeof(bw_thread))))
        goto fail;
    for (int i = 0; i < p->nthreads; i++) {
        bw_thread *th = &p->thr[i];
        size_t nd = (size_t)n * d;
        th->tsym = dalloc(p, (size_t)p->tbatch * L);
        th->csym = dalloc(p, (size_t)p->tbatch * L);
        th->cnu = dalloc(p, (size_t)p->tbatch * L);
        th->kappa_w = dalloc(p, L);
        th->preb = dalloc(p, (size_t)(s + 1) * SYM_BLK);
        th->rbuf = dalloc(p, (size_t)n);
        th->zbuf = dalloc(p, (size_t)n);
        th->ycol = dalloc(p, (size_t)n);
        th->tmp = dalloc(p, (size_t)n);
        th->That = salloc(p, p->tbatch);
        th->Xhat = salloc(p, (size_t)d + 2);
        th->accQ = salloc(p, (size_t)d + 1);
        th->corr = salloc(p, 1);
        th->accK = salloc(p, (size_t)(d + 1) * maxnu);
        th->accV = salloc(p, (size_t)(d + 1) * maxnu);
        if (!th->tsym || !th->csym || !th->cnu || !th->kappa_w || !th->preb || !th->rbuf || !th->zbuf ||
            !th->ycol || !th->tmp || !th->That || !th->Xhat || !th->accQ || !th->corr || !th->accK ||
            !th->accV)
            goto fail;
        if (i > 0) {
            th->dQ = dalloc(p, nd);
            th->dK = dalloc(p, nd);
            th->dV = dalloc(p, nd);
            th->kappa = dalloc(p, (size_t)n);
            th->dw = want_dw ? dalloc(p, (size_t)s * L) : NULL;
            if (!th->dQ || !th->dK || !th->dV || !th->kappa || (want_dw && !th->dw))
                goto fail;
        }
        if ((st = pr_toeplitz_work_init(th->ws, p->tp)))
            goto fail;
        st = PR_ENOMEM;
    }
    st = PR_EBUDGET;
    if (max_bytes > 0 && p->bytes > max_bytes)
        goto fail;
    for (long l = -(n - 1); l <= n - 1; l++) {
        size_t li = (size_t)(l + n - 1);
        p->bias[li] = exp(pr_attn_log_bias(opts, n, l));
        for (int k = 0; k < s; k++) {
            double w = pr_posw_at(W, k, l), acc = 1.0;
            for (int e = 0; e <= G; e++) {
                p->wpow[((size_t)k * (G + 1) + e) * L + li] = acc;
                acc *= w;
            }
        }
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
    pr_fast_rowsums(lse, F);
    for (int i = 0; i < F->n; i++)
        lse[i] = log(lse[i]);
}

const double *pr_backward_kappa_w(const pr_backward_plan *p)
{
    return p->has_kappa_w ? p->thr[0].kappa_w : NULL;
}

void pr_backward_info(pr_backward_info_t *info, const pr_backward_plan *p)
{
    info->terms = p->nf;
    info->a_marginals = p->nmu;
    info->b_marginals = p->nnu;
    info->ab_pairs = p->npairs;
    info->reused_spectra = p->reused;
    info->bytes = p->bytes;
    info->transforms = p->transforms;
}

/* ---- error bound and the papers' dL/dX --------------------------------------------------------- */

int pr_backward_bound(pr_backward_bound_t *bound, double eps_A,
                      const double *Q, const double *K, const double *V, const pr_posw_struct *W,
                      const double *dO, const double *kappa, const double *kappa_w, int n, int d,
                      double sigma)
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
    double diag = kappa_w ? pr_vec_max_abs(kappa_w, L) / (1.0 - eta) : nusum;
    bound->dw = 3.0 * eta * sigma * vinf * qinf * kinf * diag;
    return PR_OK;
}

int pr_backward_fast(double *O, double *dQ, double *dK, double *dV, double *dw,
                     pr_fast_info_t *info, pr_backward_report_t *rep,
                     const double *Q, const double *K, const double *V, const pr_posw_struct *W,
                     const double *dO, int n, int d, const pr_attn_opts_t *opts,
                     const pr_fast_opts_t *o, int lowrank)
{
    if (lowrank && (!pr_lowrank_applies(W) || opts->beta))
        return PR_EINVAL;
    int st = pr_attn_check(Q, K, V, W, n, d, opts);
    if (st)
        return st;
    if (pr_vec_check_finite(dO, (size_t)n * d))
        return PR_ENONFINITE;
    memset(rep, 0, sizeof(*rep));
    double t0 = pr_timing_wall();
    /* error control exactly as the forward alone does it */
    pr_expoly_t p;
    pr_expoly_init(p);
    if ((st = pr_fast_choose(p, info, Q, K, V, W, n, d, opts, o, lowrank))) {
        pr_expoly_clear(p);
        return st;
    }
    /* the forward's and the backward's memory and work, before either is planned */
    double bb, bo;
    pr_backward_needs(&bb, &bo, W, n, d, p->degree, lowrank);
    if ((st = pr_fast_budget(info, W, n, d, o, lowrank, bb, bo, lowrank ? "the lowrank path's forward and "
                             "backward" : "the fft path's forward and backward"))) {
        pr_expoly_clear(p);
        return st;
    }
    pr_attn_opts_t po = *opts;
    po.poly = p->c;
    po.poly_degree = p->degree;
    double *kappa = malloc(sizeof(double) * n), *lse = malloc(sizeof(double) * n);
    pr_fast_plan_t F;
    pr_backward_plan *bp = NULL;
    int planned = 0;
    st = PR_ENOMEM;
    if (!kappa || !lse)
        goto done;
    if (lowrank) {
        st = pr_lowrank_execute(O, Q, K, V, W, n, d, &po, o->mem_budget, o->max_terms);
        rep->forward_s = pr_timing_wall() - t0;
        t0 = pr_timing_wall();
        if (!st)
            st = pr_backward_lowrank(dQ, dK, dV, kappa, Q, K, V, W, O, NULL, dO, n, d, &po);
        rep->terms = (long)pr_fast_binom(d, p->degree + 1);
    } else {
        if ((st = pr_fast_plan(F, W, &po, o->mem_budget, o->max_terms, o->plan_flags)))
            goto done;
        planned = 1;
        if ((st = pr_fast_execute(O, F, Q, K, V)))
            goto done;
        info->streamed = F->streamed;
        info->transforms = F->transforms;
        info->plan_transforms = F->plan_transforms;
        info->plan_seconds = F->plan_seconds;
        rep->forward_s = pr_timing_wall() - t0;
        t0 = pr_timing_wall();
        pr_backward_lse_from_fast(lse, F);
        if ((st = pr_backward_plan_fft(&bp, F, W, &po, dw != NULL, (double)o->mem_budget)))
            goto done;
        if ((st = pr_backward_execute(bp, dQ, dK, dV, dw, kappa, Q, K, V, O, lse, dO)))
            goto done;
        pr_backward_info_t bi;
        pr_backward_info(&bi, bp);
        rep->terms = bi.terms;
        rep->transforms = bi.transforms;
    }
    rep->backward_s = pr_timing_wall() - t0;
    if (!st) {
        /* the floor is 2‖V‖∞ f/(1-f) with f the relative rounding of Ã's rows: add f to P's error */
        double f = info->vnorm > 0 ? info->floor / (2.0 * info->vnorm + info->floor) : 0.0;
        /* a P too far from e^x (a forced low --degree) leaves the gradients without a bound, not
         * the run without gradients */
        if (info->poly_err + f < 1.0 / 3.0)
            st = pr_backward_bound(&rep->bound, info->poly_err + f, Q, K, V, W, dO, kappa,
                                   bp ? pr_backward_kappa_w(bp) : NULL, n, d, opts->sigma);
        else
            rep->bound.dq = rep->bound.dk = rep->bound.dv = rep->bound.dw = INFINITY;
        if (lowrank || !dw)
            rep->bound.dw = NAN;
    }
done:
    pr_backward_destroy(bp);
    if (planned)
        pr_fast_destroy(F);
    pr_expoly_clear(p);
    free(kappa);
    free(lse);
    return st;
}

int pr_backward_dx(double *dX, const double *A1, const double *dQ, int n, int d)
{
    if (n <= 0 || d <= 0)
        return PR_EINVAL;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, n, 1.0, A1, d, dQ, d, 0.0, dX, d);
    return PR_OK;
}
