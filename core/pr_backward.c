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
#include "pr_backward.h"
#include "pr_timing.h"

/* ---- multisets of S and their marginals ------------------------------------------------------- */

/* mult(f) = |f|! / Π f_k! as a product of binomials, exact in double while it stays below 2^53 */
static double multinomial(const unsigned char *f, int s)
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

enum { SYM_BLK = 256 };     /* offsets per block of the symbol loops */
enum { TBATCH = 32 };        /* at most this many terms of one a-marginal group are blocked together
                                (symbols, products); a plan's batch is min(TBATCH, its largest group) */

/* One thread's scratch, and its part of the outputs (thread 0 writes the caller's outputs; the
 * others' parts are added in thread order, so the sums do not depend on scheduling). */
typedef struct {
    pr_toeplitz_work_t ws;
    double *tsym;                /* tbatch × (2n-1): the symbols of one batch */
    double *csym, *cnu;          /* tbatch × (2n-1): correlations of the (μ, ν) of one batch */
    double *preb;                /* (s+1) × SYM_BLK: prefix products of one block of offsets */
    double *rbuf, *zbuf, *ycol, *tmp;  /* n each */
    double *That, *Xhat, *accQ, *corr, *accK, *accV;  /* spectra */
    double *dQ, *dK, *dV, *kappa, *dw, *kappa_w;      /* this thread's part (thread 0: kappa_w only) */
    int st;
} bw_thread;

struct pr_backward_plan_s {
    int n, d, s, g, G, want_dw;
    size_t sl;                   /* doubles per spectrum */
    int *wa, *wb;                /* support pairs */
    long nf;                     /* multisets, sorted by (|f|, μ, ν) */
    unsigned char *f;            /* nf × s */
    int *fmu, *fnu;              /* marginal ids */
    double *alpha, *ahat;        /* α_f (0 for |f| > g), α̂_f (0 for |f| = 0) */
    double *poly;                /* c_0..c_g */
    const double **fspec;        /* the forward's spectrum of α_f t_f, or NULL: transform t_f */
    int nmu, nnu;
    unsigned char *mu, *nu;      /* nmu × d, nnu × d exponent vectors */
    long *mu_start;              /* first f of each μ (nmu+1 entries) */
    int *nu_size_start;          /* first ν of each size (G+2 entries); ν sorted by (|ν|, ν) */
    long npairs, reused;
    int tbatch;                  /* terms per batch: min(TBATCH, the largest a-marginal group), ≥ 2 */
    double bytes;
    long transforms;
    /* engine: the forward's Toeplitz plan, or our own */
    int *mu_size_start;          /* first μ of each size (G+2 entries); μ ids are sorted by size */
    const pr_toeplitz_plan_struct *tp;
    pr_toeplitz_plan_t own_tp;
    int has_own_tp;
    /* tables (symbol layout: offset ℓ at ℓ+n-1) and buffers */
    double *wpow;                /* s × (G+1) × (2n-1): w_k^p */
    double *bias;                /* 2n-1: e^{β_ℓ}, 0 where masked */
    double *qpow, *kpow;         /* d × (G+1) × n */
    double *xc;                  /* (d+2) × n: dO_c/D̃ (c<d), -r/D̃, ‖dO‖₁/D̃ */
    int has_kappa_w;             /* thr[0].kappa_w = Σ_{i-j=ℓ} ‖dO_i‖₁ P̃_ij (with dw and kappa) */
    double *Yhat;                /* spectra of y_c v_ν for the ν of two sizes (m even, m odd), shared */
    size_t ysize;                /* doubles per size class of Yhat */
    int nthreads;
    bw_thread *thr;
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

static int vec_size(const unsigned char *x, int d)
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
        while (u < p->nmu && vec_size(p->mu + (size_t)u * d, d) < m)
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
    const pr_expand_struct *T = ctx;
    long i = *(const long *)x, j = *(const long *)y;
    return memcmp(T->e + (size_t)i * T->s, T->e + (size_t)j * T->s, (size_t)T->s);
}

/* fspec[t] = the forward plan's kept (planar) spectrum of α_f t_f for each f with |f| ≤ g and α_f ≠ 0 */
static int map_forward_spectra(pr_backward_plan *p, const pr_fast_plan_struct *F)
{
    const pr_expand_struct *T = F->terms;
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
    double nfd = binom_count(s, G), nu_one_size = binom_count(d - 1, G);
    double tb = fmin(TBATCH, fmax(2.0, nfd));   /* the batch is at most this (p->tbatch) */
    return 8.0 * ((double)s * (G + 1) * (2.0 * n) + 2.0 * d * (G + 1) * n + (d + 2.0) * n) +
           16.0 * sl * nu_one_size * (d + 1) + nfd * (s + 32.0) +
           nt * (8.0 * ((3.0 * tb + s) * 2.0 * n + (3.0 * d + 5) * n) +
                 8.0 * sl * (tb + (d + 2.0) + (d + 1.0) + 1.0 + nu_one_size * 2.0 * (d + 1)));
}

/* bytes of pr_backward_lowrank for F features of degree ≤ G */
static double lowrank_bytes(int n, int d, double F)
{
    return F * (d + 8.0 * d + 4.0 + 8.0 * (2.0 + 2.0 * d + 3.0 + 1.0)) + 8.0 * (2.0 * n * d + n + d + 2.0);
}

void pr_backward_needs(double *bytes, double *ops, const pr_posw_struct *W, int n, int d, int g,
                       int lowrank)
{
    double Lf = (double)pr_toeplitz_good_size(2L * n - 1, 5, 1), lg = log2(Lf);
    if (lowrank) {
        double F = binom_count(d, g + 1);
        *bytes = lowrank_bytes(n, d, F);
        /* per row two feature products of (d+1) and (d+2) columns, and the features' index search */
        *ops = 2.0 * n * F * (2.0 * d + 5.0) + F * d * log2(F + 1.0);
        return;
    }
    *bytes = fft_bytes(n, d, W->s, g + 1, (size_t)(2 * (long)(Lf / 2 + 1)), omp_get_max_threads());
    /* per term a symbol transform and about 3(d+1) spectral products; per marginal about
     * 3(d+1) transforms (at most as many marginals as terms) */
    double T = binom_count(W->s, g + 1);
    *ops = T * Lf * (5.0 * lg + 12.0 * (d + 1.0)) + 2.0 * binom_count(d, g + 1) * 3.0 * (d + 1.0) * 5.0 * Lf * lg;
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
    double nfd = binom_count(s, G), est;
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
    enum_multisets(fraw, &cnt, cur, 0, s, G);
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
        int m = vec_size(f, s);
        double mult = multinomial(f, s), sm = pow(opts->sigma, m);
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

/* spectrum of x ∘ y (n entries) into out */
static int fwd(const pr_backward_plan *p, bw_thread *th, double *out, const double *x, const double *y)
{
    for (int i = 0; i < p->n; i++)
        th->rbuf[i] = x[i] * y[i];
    return pr_toeplitz_vec_spec(out, th->rbuf, 1, p->tp, th->ws);
}

/* th->zbuf = the product held by spectrum in (destroyed) */
static int inv(const pr_backward_plan *p, bw_thread *th, double *in)
{
    return pr_toeplitz_spec_inverse(th->zbuf, 1, in, p->tp, th->ws);
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

/* For the nb terms t0.. of one a-marginal group, by blocks of SYM_BLK offsets outside and terms
 * inside (so that dw's and κ^w's blocks stay in cache across the batch):
 *   th->tsym[i] = t_f = bias · Π_k w_k^{f_k} when sym[i],
 *   dw_k(ℓ) += α̂_f f_k t_{f-k}(ℓ) C_i(ℓ) when Cs[i] != NULL (prefix and suffix products give
 *   every t_{f-k} in O(s) per offset),  κ^w(ℓ) += α_f t_f(ℓ) N_i(ℓ) when Ns[i] != NULL. */
__attribute__((target_clones("avx2", "default")))
static void symbols_batch(const pr_backward_plan *p, bw_thread *th, long t0, int nb, const int *sym,
                          const double *const *Cs, const double *const *Ns, double *dw)
{
    int n = p->n, s = p->s, G = p->G;
    size_t L = 2 * (size_t)n - 1;
    double *pre = th->preb, suf[SYM_BLK], hc[SYM_BLK];
    for (size_t l0 = 0; l0 < L; l0 += SYM_BLK) {
        size_t m = L - l0 < SYM_BLK ? L - l0 : SYM_BLK;
        for (int i = 0; i < nb; i++) {
            const unsigned char *f = p->f + (size_t)(t0 + i) * s;
            const double *C = Cs[i];
            if (!sym[i] && !Ns[i] && !C)
                continue;
            memcpy(pre, p->bias + l0, sizeof(double) * m);
            for (int k = 0; k < s; k++) {
                const double *w = p->wpow + ((size_t)k * (G + 1) + f[k]) * L + l0;
                double *in = pre + (size_t)k * SYM_BLK, *out = in + SYM_BLK;
                for (size_t q = 0; q < m; q++)
                    out[q] = in[q] * w[q];
            }
            const double *ts = pre + (size_t)s * SYM_BLK;
            if (sym[i])
                memcpy(th->tsym + (size_t)i * L + l0, ts, sizeof(double) * m);
            if (Ns[i]) {
                double al = p->alpha[t0 + i];
                for (size_t q = 0; q < m; q++)
                    th->kappa_w[l0 + q] += al * ts[q] * Ns[i][l0 + q];
            }
            if (!C)
                continue;
            double ah = p->ahat[t0 + i];
            for (size_t q = 0; q < m; q++) {
                suf[q] = 1.0;
                hc[q] = ah * C[l0 + q];
            }
            for (int k = s - 1; k >= 0; k--) {
                const double *w = p->wpow + ((size_t)k * (G + 1) + f[k]) * L + l0;
                if (f[k]) {
                    const double *w1 = p->wpow + ((size_t)k * (G + 1) + f[k] - 1) * L + l0;
                    const double *pk = pre + (size_t)k * SYM_BLK;
                    double *o = dw + (size_t)k * L + l0, fk = f[k];
                    for (size_t q = 0; q < m; q++)
                        o[q] += hc[q] * fk * pk[q] * suf[q] * w1[q];
                }
                for (size_t q = 0; q < m; q++)
                    suf[q] *= w[q];
            }
        }
    }
}

/* (sr, si) = h·(tr, ti), or += when `add` (tr, ti: m entries at stride ts) */
static inline void scaled_sum(double *restrict sr, double *restrict si, int add, double h, const double *tr,
                              const double *ti, long ts, long m)
{
    if (!add)
        for (long q = 0; q < m; q++) {
            sr[q] = h * tr[q * ts];
            si[q] = h * ti[q * ts];
        }
    else
        for (long q = 0; q < m; q++) {
            sr[q] += h * tr[q * ts];
            si[q] += h * ti[q * ts];
        }
}

/* The products of nb terms, fused so that each spectrum T[i] (real part T[i][q·stride[i]],
 * imaginary part T[i][toff[i] + q·stride[i]]: the forward's planar layout or the engine's
 * interleaved one) is read once:
 *   accQ_c += ah·T∘Ŷ_c,  accK_c += ah·X̂_c∘conj(T)  (c ≤ d),  accV_c += al·X̂_c'∘conj(T)
 * with c' = c for c < d and the ‖dO‖₁ column for c = d (only that one when vshare: dV then comes
 * from accK, see pr_backward_execute); Ŷ and the dK/dV sums are those of term i's ν. Consecutive
 * terms of one ν (one (μ, ν) pair: the same Ŷ, X̂ and sums) are first summed into S = Σ ah·T and
 * S' = Σ al·T, so the 3(d+1) products are paid once per pair and run, not once per term.
 * Accumulators are interleaved (the engine's layout, for its inverse transforms). Frequency
 * blocks outside, terms inside: the accumulators' and the input spectra's blocks stay in cache
 * across the batch. */
__attribute__((target_clones("avx2", "default")))
static void mac_batch(const pr_backward_plan *p, bw_thread *th, int nb, const double *const *T,
                      const long *toff, const long *tstride, const double *ah, const double *al,
                      int vshare, const double *const *Ys, double *const *aKs, double *const *aVs)
{
    int d = p->d;
    long nq = p->tp->nfreq;
    size_t sl = p->sl;
    enum { BLK = 512 };
    double sr[BLK], si[BLK], vr[BLK], vi[BLK];
    for (long q0 = 0; q0 < nq; q0 += BLK) {
        long m = nq - q0 < BLK ? nq - q0 : BLK;
        for (int i0 = 0, i1; i0 < nb; i0 = i1) {
            int wq = 0, wv = 0;
            for (i1 = i0; i1 < nb && Ys[i1] == Ys[i0]; i1++) {
                const double *tr = T[i1] + q0 * tstride[i1], *ti = T[i1] + toff[i1] + q0 * tstride[i1];
                long ts = tstride[i1];
                if (ah[i1] != 0.0)
                    scaled_sum(sr, si, wq++, ah[i1], tr, ti, ts, m);
                if (al[i1] != 0.0)
                    scaled_sum(vr, vi, wv++, al[i1], tr, ti, ts, m);
            }
            for (int c = 0; c <= d; c++) {
                const double *y = Ys[i0] + (size_t)c * sl + 2 * q0, *x = th->Xhat + (size_t)c * sl + 2 * q0;
                double *aq = th->accQ + (size_t)c * sl + 2 * q0, *ak = aKs[i0] + (size_t)c * sl + 2 * q0;
                if (wq)
                    for (long q = 0; q < m; q++) {
                        double a = sr[q], b = si[q];
                        aq[2 * q] += a * y[2 * q] - b * y[2 * q + 1];
                        aq[2 * q + 1] += a * y[2 * q + 1] + b * y[2 * q];
                        ak[2 * q] += a * x[2 * q] + b * x[2 * q + 1];
                        ak[2 * q + 1] += a * x[2 * q + 1] - b * x[2 * q];
                    }
                const double *xv = th->Xhat + (size_t)(c < d ? c : d + 1) * sl + 2 * q0;
                double *av = aVs[i0] + (size_t)c * sl + 2 * q0;
                if (wv && (c == d || !vshare))
                    for (long q = 0; q < m; q++) {
                        double a = vr[q], b = vi[q];
                        av[2 * q] += a * xv[2 * q] + b * xv[2 * q + 1];
                        av[2 * q + 1] += a * xv[2 * q + 1] - b * xv[2 * q];
                    }
            }
        }
    }
}

#define TRY(call)             \
    do {                      \
        if ((st = (call)))    \
            return st;        \
    } while (0)

/* Everything of a-marginal μ (size m): X̂ = FFT(x_c u_μ), the terms' products into th->accQ and
 * the thread's accK/accV, dw and κ^w, then dQ's part of μ. */
static int do_mu(const pr_backward_plan *p, bw_thread *th, int mu, int m, int vshare, int want_dw,
                 int want_kappa, double *dQ, double *dw)
{
    int n = p->n, d = p->d, G = p->G, st;
    size_t sl = p->sl, L = 2 * (size_t)n - 1;
    const pr_toeplitz_plan_struct *tp = p->tp;
    int nu0 = p->nu_size_start[m];
    const unsigned char *muv = p->mu + (size_t)mu * d;
    marg_product(th->tmp, p->qpow, muv, -1, d, G, n);
    for (int c = 0; c < d + 2; c++)
        TRY(fwd(p, th, th->Xhat + (size_t)c * sl, p->xc + (size_t)c * n, th->tmp));
    for (int c = 0; c <= d; c++)
        pr_toeplitz_spec_zero(th->accQ + (size_t)c * sl, tp);
    long t = p->mu_start[mu], tend = p->mu_start[mu + 1];
    int kwm = want_dw && want_kappa && m <= p->g;
    int wantC = want_dw && m >= 1, lastnu = -1;
    for (int nb; t < tend; t += nb) {
        nb = tend - t < p->tbatch ? (int)(tend - t) : p->tbatch;
        int sym[TBATCH], any = wantC || kwm, slot = -1;
        const double *T[TBATCH], *Ys[TBATCH], *Cs[TBATCH], *Ns[TBATCH];
        double *aKs[TBATCH], *aVs[TBATCH];
        long toff[TBATCH], tstride[TBATCH];
        double ah[TBATCH], al[TBATCH];
        for (int i = 0; i < nb; i++) {
            int nuid = p->fnu[t + i];
            size_t vo = (size_t)(nuid - nu0) * (d + 1) * sl;
            if (i == 0 || nuid != p->fnu[t + i - 1]) {
                double *C = th->csym + (size_t)++slot * L, *N = th->cnu + (size_t)slot * L;
                if (nuid == lastnu) {
                    /* the run goes on from the previous batch: its correlations are in the last slot */
                    memcpy(C, th->csym + (size_t)(p->tbatch - 1) * L, sizeof(double) * L * wantC);
                    memcpy(N, th->cnu + (size_t)(p->tbatch - 1) * L, sizeof(double) * L * kwm);
                } else {
                    const double *Y = p->Yhat + (m & 1) * p->ysize + vo;
                    if (wantC) {
                        /* Σ_c C_{μν,c}: one correlation per (μ, ν) */
                        pr_toeplitz_spec_sum_conj(th->corr, th->Xhat, Y, d + 1, tp);
                        TRY(pr_toeplitz_spec_inverse_sym(C, th->corr, tp, th->ws));
                    }
                    if (kwm) {
                        /* for dw's bound: Σ_{i-j=ℓ} ‖dO_i‖₁ P̃_ij = Σ_f α_f t_f(ℓ) C^ν_{μν}(ℓ) */
                        pr_toeplitz_spec_zero(th->corr, tp);
                        pr_toeplitz_spec_mac_conj(th->corr, th->Xhat + (size_t)(d + 1) * sl, Y + (size_t)d * sl, 1.0, tp);
                        TRY(pr_toeplitz_spec_inverse_sym(N, th->corr, tp, th->ws));
                    }
                }
            }
            T[i] = p->fspec[t + i];
            ah[i] = p->ahat[t + i];
            al[i] = p->alpha[t + i];
            sym[i] = !T[i];
            any |= sym[i];
            Ys[i] = p->Yhat + (m & 1) * p->ysize + vo;
            aKs[i] = th->accK + vo;
            aVs[i] = th->accV + vo;
            Cs[i] = wantC ? th->csym + (size_t)slot * L : NULL;
            Ns[i] = kwm && al[i] != 0.0 ? th->cnu + (size_t)slot * L : NULL;
        }
        /* keep the last ν's correlations for a run that goes on into the next batch */
        lastnu = p->fnu[t + nb - 1];
        if (slot != p->tbatch - 1) {
            memcpy(th->csym + (size_t)(p->tbatch - 1) * L, th->csym + (size_t)slot * L, sizeof(double) * L * wantC);
            memcpy(th->cnu + (size_t)(p->tbatch - 1) * L, th->cnu + (size_t)slot * L, sizeof(double) * L * kwm);
        }
        if (any)
            symbols_batch(p, th, t, nb, sym, Cs, Ns, dw);
        for (int i = 0; i < nb; i++) {
            if (T[i]) {
                /* the forward's planar spectrum holds α_f t̂_f */
                ah[i] /= al[i];
                al[i] = 1.0;
                tstride[i] = 1;
                toff[i] = (long)tp->nfreq;
            } else {
                double *Ti = th->That + (size_t)i * sl;
                TRY(pr_toeplitz_symbol_spec(Ti, th->tsym + (size_t)i * L, PR_TOEPLITZ_FULL, tp, th->ws));
                T[i] = Ti;
                tstride[i] = 2;
                toff[i] = 1;
            }
        }
        mac_batch(p, th, nb, T, toff, tstride, ah, al, vshare, Ys, aKs, aVs);
    }
    if (m >= 1) {
        /* dQ_ia += ∂u_μ/∂Q_ia Σ_c x_c(i) [Σ_f α̂_f T_f (y_c v_ν)](i) */
        memset(th->ycol, 0, sizeof(double) * n);
        for (int c = 0; c <= d; c++) {
            TRY(inv(p, th, th->accQ + (size_t)c * sl));
            for (int i = 0; i < n; i++)
                th->ycol[i] += p->xc[(size_t)c * n + i] * th->zbuf[i];
        }
        add_marg_grad(dQ, th->ycol, p->qpow, muv, th->tmp, d, G, n);
    }
    return PR_OK;
}

/* dK, dV (and κ) of b-marginal ν (size m) from the threads' summed accumulators. */
static int do_nu(const pr_backward_plan *p, bw_thread *th, int nth, int v, int m, int vshare,
                 double vscale, const double *V, double *dK, double *dV, double *kappa, int want_kappa)
{
    int n = p->n, d = p->d, G = p->G, st;
    size_t sl = p->sl;
    const unsigned char *nuv = p->nu + (size_t)v * d;
    size_t vo = (size_t)(v - p->nu_size_start[m]) * (d + 1) * sl;
    double *vnu = th->rbuf, *ycol = th->ycol;
    double *accK = p->thr[0].accK, *accV = p->thr[0].accV;
    /* the threads' sums of this ν into thread 0's, in thread order */
    for (int t = 1; t < nth; t++)
        for (size_t q = vo; q < vo + (size_t)(d + 1) * sl; q++) {
            accK[q] += p->thr[t].accK[q];
            accV[q] += p->thr[t].accV[q];
        }
    if (m <= p->g)
        marg_product(vnu, p->kpow, nuv, -1, d, G, n);
    if (m >= 1) {
        memset(ycol, 0, sizeof(double) * n);
        for (int c = 0; c <= d; c++) {
            TRY(inv(p, th, accK + vo + (size_t)c * sl));
            for (int j = 0; j < n; j++)
                ycol[j] += (c < d ? V[(size_t)j * d + c] : 1.0) * th->zbuf[j];
            if (vshare && c < d)
                for (int j = 0; j < n; j++)
                    dV[(size_t)j * d + c] += vscale * vnu[j] * th->zbuf[j];
        }
        add_marg_grad(dK, ycol, p->kpow, nuv, th->tmp, d, G, n);
    }
    if (m <= p->g)
        for (int c = 0; c <= d; c++) {
            if (c == d && !want_kappa)
                break;
            if (c < d && vshare)
                continue;
            TRY(inv(p, th, accV + vo + (size_t)c * sl));
            for (int j = 0; j < n; j++) {
                double z = vnu[j] * th->zbuf[j];
                if (c < d)
                    dV[(size_t)j * d + c] += z;
                else
                    kappa[j] += z;
            }
        }
    return PR_OK;
}
#undef TRY

/* Ŷ item q of size m: the spectrum of y_c v_ν (c = q mod (d+1), ν the (q div (d+1))-th of size m) */
static int yhat_item(const pr_backward_plan *p, bw_thread *th, int m, long q, const double *V)
{
    int n = p->n, d = p->d, c = (int)(q % (d + 1));
    int v = p->nu_size_start[m] + (int)(q / (d + 1));
    marg_product(th->tmp, p->kpow, p->nu + (size_t)v * d, -1, d, p->G, n);
    for (int j = 0; j < n; j++)
        th->ycol[j] = c < d ? V[(size_t)j * d + c] : 1.0;
    return fwd(p, th, p->Yhat + (m & 1) * p->ysize + (size_t)q * p->sl, th->ycol, th->tmp);
}

/* first a-marginal of thread id's share of the size-m ones, balanced by term count */
static int mu_chunk(const pr_backward_plan *p, int m, int id, int nth)
{
    int u0 = p->mu_size_start[m], u1 = p->mu_size_start[m + 1];
    long base = p->mu_start[u0], tot = p->mu_start[u1] - base, want = tot * id / nth;
    int u = u0;
    while (u < u1 && p->mu_start[u] - base < want)
        u++;
    return id == nth ? u1 : u;
}

int pr_backward_execute(pr_backward_plan *p, double *dQ, double *dK, double *dV, double *dw,
                        double *kappa, const double *Q, const double *K, const double *V,
                        const double *O, const double *lse, const double *dO)
{
    int n = p->n, d = p->d, s = p->s, G = p->G, st = PR_OK;
    size_t sl = p->sl, L = 2 * (size_t)n - 1;
    if (dw && !p->want_dw)
        return PR_EINVAL;
    size_t nd = (size_t)n * d;
    if (pr_vec_check_finite(Q, nd) || pr_vec_check_finite(K, nd) || pr_vec_check_finite(V, nd) ||
        pr_vec_check_finite(O, nd) || pr_vec_check_finite(dO, nd) || pr_vec_check_finite(lse, n))
        return PR_ENONFINITE;
    long tr0 = 0;
    for (int t = 0; t < p->nthreads; t++)
        tr0 += p->thr[t].ws->n_forward + p->thr[t].ws->n_inverse;
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
    p->has_kappa_w = dw && kappa;
    int want_dw = dw != NULL, want_kappa = kappa != NULL, used = 1;
#pragma omp parallel num_threads(p->nthreads)
    {
        int id = omp_get_thread_num(), nth = omp_get_num_threads();
        bw_thread *th = &p->thr[id];
        /* thread 0 writes the outputs, the others their own parts */
        double *tQ = id ? th->dQ : dQ, *tK = id ? th->dK : dK, *tV = id ? th->dV : dV;
        double *tkap = id ? th->kappa : kappa, *tdw = id ? th->dw : dw;
        th->st = PR_OK;
        memset(tQ, 0, sizeof(double) * nd);
        memset(tK, 0, sizeof(double) * nd);
        memset(tV, 0, sizeof(double) * nd);
        if (tkap)
            memset(tkap, 0, sizeof(double) * n);
        if (want_dw)
            memset(tdw, 0, sizeof(double) * (size_t)s * L);
        memset(th->kappa_w, 0, sizeof(double) * L);
        if (id == 0)
            used = nth;
        /* Ŷ of size 0 (only dw's correlations need it); each later size's Ŷ is made beside the
         * previous size's inverse transforms, in the other half of Yhat */
        if (want_dw) {
#pragma omp for schedule(static)
            for (long q = 0; q < (long)(d + 1); q++)
                if (!th->st)
                    th->st = yhat_item(p, th, 0, q, V);
        }
        for (int m = 0; m <= G; m++) {
            int nu0 = p->nu_size_start[m], nu1 = p->nu_size_start[m + 1];
            size_t nacc = (size_t)(nu1 - nu0) * (d + 1);
            long nnext = m < G ? (long)(p->nu_size_start[m + 2] - nu1) * (d + 1) : 0;
            /* α_f = (m c_m / c_{m-1}) α̂_f for every f of size m, and dV's transposed products
             * (columns dO_c/D̃ u_μ) are dK's: for c < d, dV takes accK's inverse transforms scaled
             * by vscale instead of accumulating its own */
            int vshare = m >= 1 && m <= p->g && p->poly[m - 1] != 0.0;
            double vscale = vshare ? m * p->poly[m] / p->poly[m - 1] : 0.0;
            memset(th->accK, 0, sizeof(double) * nacc * sl);
            memset(th->accV, 0, sizeof(double) * nacc * sl);
            for (int mu = mu_chunk(p, m, id, nth); mu < mu_chunk(p, m, id + 1, nth) && !th->st; mu++)
                th->st = do_mu(p, th, mu, m, vshare, want_dw, want_kappa, tQ, tdw);
#pragma omp barrier
#pragma omp for schedule(static)
            for (long q = 0; q < (nu1 - nu0) + nnext; q++) {
                if (th->st)
                    continue;
                if (q < nu1 - nu0)
                    th->st = do_nu(p, th, nth, nu0 + (int)q, m, vshare, vscale, V, tK, tV, tkap, want_kappa);
                else
                    th->st = yhat_item(p, th, m + 1, q - (nu1 - nu0), V);
            }
        }
    }
    long tr1 = 0;
    for (int t = 0; t < p->nthreads; t++) {
        st = st ? st : p->thr[t].st;
        tr1 += p->thr[t].ws->n_forward + p->thr[t].ws->n_inverse;
    }
    p->transforms = tr1 - tr0;
    if (st)
        return st;
    /* the threads' parts in thread order: the same sums whatever the scheduling */
    for (int t = 1; t < used; t++) {
        const bw_thread *th = &p->thr[t];
        for (size_t k = 0; k < nd; k++) {
            dQ[k] += th->dQ[k];
            dK[k] += th->dK[k];
            dV[k] += th->dV[k];
        }
        if (kappa)
            for (int j = 0; j < n; j++)
                kappa[j] += th->kappa[j];
        if (dw)
            for (size_t k = 0; k < (size_t)s * L; k++)
                dw[k] += th->dw[k];
        for (size_t k = 0; k < L; k++)
            p->thr[0].kappa_w[k] += th->kappa_w[k];
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
    if (!pr_lowrank_applies(W) || !opts->poly || opts->beta)
        return PR_EINVAL;
    int rope = pr_posw_is_factorised(W);
    if (rope && d % 2)
        return PR_EODD;
    size_t nd = (size_t)n * d;
    if (pr_vec_check_finite(O, nd) || pr_vec_check_finite(dO, nd) || (lse && pr_vec_check_finite(lse, n)))
        return PR_ENONFINITE;
    int g = opts->poly_degree, G = g + 1;
    if (G > 255)
        return PR_EINVAL;       /* multiplicities are unsigned char (pr_expoly stops at 170) */
    double Fd = binom_count(d, G);
    /* the caller's budget is pr_backward_needs; here only what size_t products can hold */
    if (!(lowrank_bytes(n, d, Fd) < 0.25 * (double)SIZE_MAX))
        return PR_ESIZE;
    long F = (long)Fd;
    pr_rope_layout_t layout = W->kind == PR_POS_ROPE ? PR_ROPE_INTERLEAVED : PR_ROPE_NEOX;
    unsigned char *mono = malloc((size_t)F * d), *cur = calloc((size_t)d, 1);
    long *drop = malloc(sizeof(long) * F * d);
    int *first = malloc(sizeof(int) * F);
    double *alpha = malloc(sizeof(double) * F), *ahat = malloc(sizeof(double) * F);
    double *S = calloc((size_t)F * (d + 1), sizeof(double)), *T = calloc((size_t)F * (d + 2), sizeof(double));
    double *mon = malloc(sizeof(double) * F), *Qr = malloc(sizeof(double) * nd), *Kr = malloc(sizeof(double) * nd);
    double *xc = malloc(sizeof(double) * (d + 2)), *rinv = malloc(sizeof(double) * n);
    st = PR_ENOMEM;
    if (!mono || !cur || !drop || !first || !alpha || !ahat || !S || !T || !mon || !Qr || !Kr || !xc || !rinv)
        goto done;
    long cnt = 0;
    enum_multisets(mono, &cnt, cur, 0, d, G);
    for (long t = 0; t < F; t++) {
        unsigned char *x = cur;
        memcpy(x, mono + (size_t)t * d, (size_t)d);
        int m = vec_size(x, d);
        first[t] = -1;
        for (int a = 0; a < d; a++) {
            drop[t * d + a] = -1;
            if (x[a]) {
                if (first[t] < 0)
                    first[t] = a;
                x[a]--;
                drop[t * d + a] = mono_index(mono, F, x, d);
                x[a]++;
            }
        }
        double mult = multinomial(x, d), sm = pow(opts->sigma, m);
        alpha[t] = m <= g ? opts->poly[m] * mult * sm : 0.0;
        ahat[t] = m >= 1 ? opts->poly[m - 1] / m * mult * sm : 0.0;
    }
    if (!rope) {
        memcpy(Qr, Q, sizeof(double) * nd);
        memcpy(Kr, K, sizeof(double) * nd);
    } else if ((st = pr_rope_rotate(Qr, Q, n, d, W->rope_base, layout, 1)) ||
               (st = pr_rope_rotate(Kr, K, n, d, W->rope_base, layout, 1)))
        goto done;
    memset(dQ, 0, sizeof(double) * nd);
    memset(dK, 0, sizeof(double) * nd);
    memset(dV, 0, sizeof(double) * nd);
    /* S[α][c] = Σ_j y_c(j) k'^α_j over the j a row i sees; T[α][c] = Σ_i x_c(i) q'^α_i */
#define XCOLS(i)                                                                     \
    do {                                                                             \
        double inv_d_ = rinv[i], r_ = 0.0, l1_ = 0.0;                                \
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
        monomials(mon, Qr + (size_t)i * d, drop, first, F, d);
        if (lse)
            rinv[i] = exp(-lse[i]);
        else {
            /* D̃_i = Σ_α α_α q'^α_i Σ_j k'^α_j over the j row i sees */
            double D = 0.0;
            for (long t = 0; t < F; t++)
                D += alpha[t] * mon[t] * S[t * (d + 1) + d];
            if (!(D > 0.0) || !isfinite(D)) {
                st = PR_EDOMAIN;
                goto done;
            }
            rinv[i] = 1.0 / D;
        }
        XCOLS(i);
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
    if (rope && ((st = pr_rope_rotate(dQ, dQ, n, d, W->rope_base, layout, -1)) ||
                 (st = pr_rope_rotate(dK, dK, n, d, W->rope_base, layout, -1))))
        goto done;
    st = PR_OK;
done:
    free(mono); free(cur); free(drop); free(first); free(alpha); free(ahat); free(S); free(T);
    free(mon); free(Qr); free(Kr); free(xc); free(rinv);
    return st;
}

/* ---- the papers' dL/dX --------------------------------------------------------- */

int pr_backward_dx(double *dX, const double *A1, const double *dQ, int n, int d)
{
    if (n <= 0 || d <= 0)
        return PR_EINVAL;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, n, 1.0, A1, d, dQ, d, 0.0, dX, d);
    return PR_OK;
}
