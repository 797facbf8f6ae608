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
 *     Σ_c X̂_{μ,c} conj(Ŷ_{ν,c}) summed before it.
 * (4) Sharing by pairs: every product above depends on f only through (μ, ν) and α̂_f (or α_f),
 *     so a pair's terms enter through Σ_f α̂_f t̂_f. Within a size m, α̂_f = (c_{m-1}/(m c_m)) α_f,
 *     both multiples of mult(f) σ^m: for m ≤ g and c_m ≠ 0 that sum is a multiple of the forward
 *     plan's kept pair spectrum Σ_f α_f t̂_f; the pairs of size g+1 (c_{g+1} = 0: no forward
 *     spectrum) sum mult(f) σ^m t_f in the time domain and are transformed once per pair at plan
 *     time (unless the memory budget refuses them: then per execute, like the other pairs, of a
 *     size with c_m = 0 or under a streamed forward). dw needs
 *     the terms one by one, but only in the time domain, against the pair's C, and through their
 *     parents: α̂_f f_k t_{f-k} = σ α_e t_e with e = f - k, a term of the pair (μ - a_k, ν - b_k),
 *     so dw_k = Σ_{pairs} C ∘ Σ_{e in the pair less k} σ α_e t_e, and within the parent pair P
 *     (size m') σ α_e = σ c_{m'} mult(e) σ^{m'}: dw_k = Σ_{pairs} C ∘ σ c_{m'} S_P with S_P the
 *     parent's time-domain symbol sum Σ_e mult(e) σ^{m'} t_e, kept by the plan for every pair of
 *     size ≤ g when memory allows (else made once per batch and block of offsets from its terms):
 *     one product per (pair, k) and offset.
 *     The terms are pr_expand's, built to degree g+1 (the forward plan's, borrowed): grouped by μ,
 *     the groups by size, sorted by ν inside a group, so that a pair is a run of terms.
 *     Terms are visited by size |f| = m; only the ν of size m are live at a time, which bounds
 *     the memory by (#ν of one size)·(d+1)·(2 + 2·threads) spectra per head (Ŷ shared and double-
 *     buffered by the parity of the size, each
 *     thread its own dK/dV sums, added in thread order before the inverse transforms). Batches
 *     of up to TBATCH pairs (whole groups, up to MUBATCH of them) run block by block (frequencies
 *     for the products and correlations, every head inside; offsets for the symbols and dw), so
 *     the accumulators stay in cache, each pair spectrum is read once per block, and the Ŷ and
 *     dK/dV sums of a ν once per batch. Within a size, α_f = (m c_m/c_{m-1})
 *     α̂_f, so dV's transposed sums for the columns dO_c/D̃ are dK's, scaled: they cost no product
 *     of their own.
 * (5) Heads on one W: per head only the marginal transforms and the products; dw's correlations
 *     are summed over the heads before their inverse (W is shared), so its symbol work is paid once.
 *     Grouped-query heads (Q heads hq sharing a kv head): dQ's sums Σ_ν α̂ T̂_μν ∘ Ŷ_{ν,c} hold no Q
 *     head, so their products and inverses are made once per kv head; every other product takes
 *     X̂ linearly (dK, dV, κ, dw, κ^w summed over the group), so Σ_hq x_c u_μ is summed in the
 *     time domain before one transform per (kv head, μ, c). A Q head adds only time-domain work.
 *
 * ---- Propagated error bound (claim G4; pr_control_backward_bound computes it) ---------------
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
#include <float.h>
#include <math.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <omp.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_backward_impl.h"
#include "pr_budget.h"

/* ---- the plan's shape and buffers -------------------------------------------------------------- */

/* The sizes that fix every buffer: W's support, the degree g, the transform length, the thread
 * count and want_dw. The plan and its dry run (pr_backward_needs) both take them from here.
 * PR_EBUDGET past what a long and exact double counts hold, PR_ENOMEM. */
static int plan_shape(pr_backward_plan *p, const pr_posw_struct *W, int g, long Lfft, int nt,
                      int heads, int want_dw)
{
    int s = W->s, G = g + 1;
    p->heads = heads;
    p->n = W->n;
    p->d = W->d;
    p->s = s;
    p->g = g;
    p->G = G;
    p->want_dw = want_dw;
    p->Lfft = Lfft;
    p->sl = pr_toeplitz_spec_len_of(Lfft);
    p->da = pr_expand_ndistinct(W->a, s);
    p->db = pr_expand_ndistinct(W->b, s);
    /* the a-marginals of size G (what the threads split) and the b-marginals of size G (the most
     * numerous size) */
    double mutop = pr_expand_binom(p->da - 1, G), nutop = pr_expand_binom(p->db - 1, G);
    /* the pairs of size G: at most (μ of size G)·(ν of size G), and at most the terms of size G */
    double termsG = pr_expand_binom(s - 1, G), keep = mutop * nutop < termsG ? mutop * nutop : termsG;
    /* the pairs of size ≤ g alike, size by size */
    double psym = 0.0;
    for (int m = 0; m <= g; m++) {
        double mn = pr_expand_binom(p->da - 1, m) * pr_expand_binom(p->db - 1, m), tm = pr_expand_binom(s - 1, m);
        psym += mn < tm ? mn : tm;
    }
    /* every size_t product of the buffers' sizes stays exact: the largest are the term tables,
     * Yhat's, the accumulators' and the kept spectra */
    double big = pr_expand_binom(s, G) * (s + 16.0) + (nutop * 4.0 * heads * (W->d + 1.0) + keep + psym) * (Lfft + 2.0);
    if (!(big < 0x1p56) || Lfft <= 0 || heads < 1)
        return PR_EBUDGET;
    p->maxnu = (long)nutop;
    p->nkeep = (long)keep;
    p->npsym = (long)psym;
    p->nthreads = nt < mutop ? nt : (int)mutop;
    /* pairs per batch: TBATCH, or what MUBATCH groups can hold (each at most maxnu pairs) */
    p->tbatch = (long)MUBATCH * p->maxnu < TBATCH ? (int)(MUBATCH * p->maxnu) : TBATCH;
    return PR_OK;
}

/* count spectra from the engine (zeroed), counted in M at sl doubles each */
static double *spectra(pr_mem_t M, const pr_backward_plan *p, size_t count)
{
    pr_mem_note(M, 8.0 * (double)p->sl * (double)count);
    if (M->dry)
        return NULL;
    double *x = pr_toeplitz_spec_alloc(p->tp, count);
    if (!x)
        M->failed = 1;
    return x;
}

/* One thread's scratch and (threads > 0) its part of the outputs, through M. */
static void thread_buffers(bw_thread *th, pr_mem_t M, const pr_backward_plan *p, int id)
{
    size_t n = (size_t)p->n, d = (size_t)p->d, L = 2 * n - 1, tb = (size_t)p->tbatch, h = (size_t)p->heads;
    th->tsym = pr_mem_zalloc(M, tb * L, sizeof(double));
    th->csym = pr_mem_zalloc(M, tb * L, sizeof(double));
    th->cnu = pr_mem_zalloc(M, tb * L, sizeof(double));
    th->kappa_w = pr_mem_zalloc(M, L, sizeof(double));
    th->preb = pr_mem_zalloc(M, SYM_BLK, sizeof(double));
    th->dws = pr_mem_zalloc(M, tb * (size_t)p->s * SYM_BLK, sizeof(double));
    th->plist = pr_mem_zalloc(M, tb * (size_t)p->s, sizeof(long));
    th->pidx = pr_mem_zalloc(M, tb * (size_t)p->s, sizeof(int));
    th->rbuf = pr_mem_zalloc(M, n, sizeof(double));
    th->zbuf = pr_mem_zalloc(M, n, sizeof(double));
    th->ycol = pr_mem_zalloc(M, n, sizeof(double));
    th->tmp = pr_mem_zalloc(M, n, sizeof(double));
    th->xsum = pr_mem_zalloc(M, (d + 2) * n, sizeof(double));
    th->That = spectra(M, p, tb);
    th->Xhat = spectra(M, p, MUBATCH * h * (d + 2));
    th->accQ = spectra(M, p, MUBATCH * h * (d + 1));
    th->corr = spectra(M, p, 2 * tb);
    th->accK = spectra(M, p, h * (d + 1) * (size_t)p->maxnu);
    th->accV = spectra(M, p, h * (d + 1) * (size_t)p->maxnu);
    if (id > 0) {
        th->dQ = pr_mem_zalloc(M, h * n * d, sizeof(double));
        th->dK = pr_mem_zalloc(M, h * n * d, sizeof(double));
        th->dV = pr_mem_zalloc(M, h * n * d, sizeof(double));
        th->kappa = pr_mem_zalloc(M, h * n, sizeof(double));
        th->dw = p->want_dw ? pr_mem_zalloc(M, (size_t)p->s * L, sizeof(double)) : NULL;
    }
    /* the engine's workspace: two padded vectors and two spectra (pr_toeplitz_work_struct) */
    pr_mem_note(M, pr_toeplitz_work_bytes(p->Lfft));
    if (!M->dry && pr_mem_status(M) == PR_OK && pr_toeplitz_work_init(th->ws, p->tp))
        M->failed = 1;
}

/* Every buffer of a plan of p's shape, through M: a dry M allocates nothing and counts what the
 * plan would hold (the budget check, pr_backward_needs), a real one allocates exactly that,
 * zeroed so that the pages are mapped by the plan, not by the first execute. An expansion of its
 * own (own_E: no forward plan to borrow it from) is counted by its own dry run (pr_expand_bytes). */
static int plan_buffers(pr_backward_plan *p, pr_mem_t M, int own_E)
{
    size_t n = (size_t)p->n, d = (size_t)p->d, L = 2 * n - 1, G1 = (size_t)p->G + 1, h = (size_t)p->heads;
    size_t nterms = (size_t)pr_expand_binom(p->s, p->G);
    if (own_E)
        pr_mem_note(M, pr_expand_bytes(p->s, p->da, p->db, p->g, 1));
    p->alpha = pr_mem_alloc(M, nterms, sizeof(double));
    p->salpha = pr_mem_alloc(M, nterms, sizeof(double));
    p->base = pr_mem_alloc(M, nterms, sizeof(double));
    p->poly = pr_mem_alloc(M, (size_t)p->g + 1, sizeof(double));
    p->pair_sub = pr_mem_alloc(M, nterms * (size_t)p->s, sizeof(long));
    p->pair_add = pr_mem_alloc(M, nterms * (size_t)p->s, sizeof(long));
    p->wpow = pr_mem_zalloc(M, (size_t)p->s * G1 * L, sizeof(double));
    p->bias = pr_mem_zalloc(M, L, sizeof(double));
    p->qpow = pr_mem_zalloc(M, h * (size_t)p->da * G1 * n, sizeof(double));
    p->kpow = pr_mem_zalloc(M, h * (size_t)p->db * G1 * n, sizeof(double));
    p->xc = pr_mem_zalloc(M, h * (d + 2) * n, sizeof(double));
    p->ysize = h * (d + 1) * (size_t)p->maxnu * p->sl;
    p->Yhat = spectra(M, p, 2 * h * (d + 1) * (size_t)p->maxnu);
    p->keptG = p->keep ? spectra(M, p, (size_t)p->nkeep) : NULL;
    p->psym = p->keep > 1 && p->want_dw ? pr_mem_zalloc(M, (size_t)p->npsym * L, sizeof(double)) : NULL;
    p->thr = pr_mem_zalloc(M, (size_t)p->nthreads, sizeof(bw_thread));
    for (int i = 0; i < p->nthreads && pr_mem_status(M) == PR_OK; i++) {
        bw_thread dry;
        thread_buffers(M->dry ? &dry : &p->thr[i], M, p, i);
    }
    return pr_mem_status(M);
}

void pr_backward_destroy(pr_backward_plan *p)
{
    if (!p)
        return;
    free(p->alpha); free(p->salpha); free(p->base); free(p->poly); free(p->pair_sub); free(p->pair_add);
    free(p->wpow); free(p->bias); free(p->qpow); free(p->kpow); free(p->xc);
    pr_toeplitz_spec_free(p->Yhat);
    pr_toeplitz_spec_free(p->keptG);
    free(p->psym);
    for (int t = 0; p->thr && t < p->nthreads; t++) {
        bw_thread *th = &p->thr[t];
        free(th->tsym); free(th->csym); free(th->cnu); free(th->preb); free(th->dws);
        free(th->plist); free(th->pidx);
        free(th->rbuf); free(th->zbuf); free(th->ycol); free(th->tmp); free(th->xsum);
        pr_toeplitz_spec_free(th->That); pr_toeplitz_spec_free(th->Xhat);
        pr_toeplitz_spec_free(th->accQ); pr_toeplitz_spec_free(th->corr);
        pr_toeplitz_spec_free(th->accK); pr_toeplitz_spec_free(th->accV);
        free(th->dQ); free(th->dK); free(th->dV); free(th->kappa); free(th->dw); free(th->kappa_w);
        pr_toeplitz_work_clear(th->ws);
    }
    free(p->thr);
    if (p->has_E)
        pr_expand_clear(p->own_E);
    if (p->has_own_tp)
        pr_toeplitz_destroy(p->own_tp);
    free(p);
}

/* the plan's own dry run with keep (2: everything, 0: nothing kept), on a forward plan of ESTIMATE
 * length (whose expansion it borrows) */
static double dry_bytes(const pr_posw_struct *W, int n, int d, int g, int heads, long Lfft, int keep)
{
    pr_backward_plan p = {.keep = keep};
    pr_mem_t M;
    pr_mem_init(M, 1);
    if (W->n == n && W->d == d && !plan_shape(&p, W, g, Lfft, omp_get_max_threads(), heads, 1) &&
        !plan_buffers(&p, M, 0))
        return M->bytes;
    return INFINITY;
}

double pr_backward_needs_least(const pr_posw_struct *W, int n, int d, int g, int heads)
{
    return dry_bytes(W, n, d, g, heads, pr_toeplitz_good_size(2L * n - 1, 5, 1), 0);
}

void pr_backward_needs_heads(double *bytes, double *ops, const pr_posw_struct *W, int n, int d, int g,
                             int heads, int lowrank)
{
    long Lfft = pr_toeplitz_good_size(2L * n - 1, 5, 1);
    double Lf = (double)Lfft, lg = log2(Lf), h = heads;
    if (lowrank) {
        double F = pr_expand_binom(d, g + 1);
        *bytes = heads == 1 ? pr_backward_lowrank_bytes_(n, d, g) : INFINITY;
        /* per row two feature products of (d+1) and (d+2) columns, and the features' index search */
        *ops = 2.0 * n * F * (2.0 * d + 5.0) + F * d * log2(F + 1.0);
        return;
    }
    *bytes = dry_bytes(W, n, d, g, heads, Lfft, 2);
    /* per term the symbol and dw products; per pair a transform at most and 3(d+1) spectral
     * products per head; per marginal about 3(d+1) transforms per head (at most as many marginals
     * as terms) */
    double T = pr_expand_binom(W->s, g + 1);
    *ops = T * Lf * (5.0 * lg + 12.0 * h * (d + 1.0)) +
           2.0 * h * pr_expand_binom(d, g + 1) * 3.0 * (d + 1.0) * 5.0 * Lf * lg;
}

void pr_backward_needs(double *bytes, double *ops, const pr_posw_struct *W, int n, int d, int g,
                       int lowrank)
{
    pr_backward_needs_heads(bytes, ops, W, n, d, g, 1, lowrank);
}

/* ---- planning ---------------------------------------------------------------------------------- */

static int plan_check(const pr_fast_plan_struct *F, const pr_posw_struct *W, const pr_attn_opts_t *opts,
                      int heads)
{
    int n = W->n, d = W->d, g = opts->poly_degree;
    if (!opts->poly || g < 0 || !(opts->sigma > 0.0) || !isfinite(opts->sigma) || heads < 1)
        return PR_EINVAL;
    if (W->s <= 0)
        return PR_ESHAPE;
    if (F && (F->n != n || F->d != d || F->s != W->s || F->g != g || F->terms->top != g + 1))
        return PR_ESHAPE;
    if (g + 1 > PR_EXPAND_MAX_DEGREE)
        return PR_EINVAL;       /* multiplicities are unsigned char (pr_expoly stops at 170) */
    if (pr_vec_check_finite(opts->poly, (size_t)g + 1) ||
        pr_vec_check_finite(W->w, (size_t)W->s * (2 * (size_t)n - 1)) ||
        (opts->beta && pr_vec_check_finite(opts->beta, 2 * (size_t)n - 1)))
        return PR_ENONFINITE;
    return PR_OK;
}

/* the pair of a-marginal mu and b-marginal nu, or -1 (either is -1, or no term has both) */
static long find_pair(const pr_expand_struct *E, long mu, long nu)
{
    for (long q = mu < 0 || nu < 0 ? 0 : E->gpair[mu]; mu >= 0 && nu >= 0 && q < E->gpair[mu + 1]; q++)
        if (E->bmi[E->pstart[q]] == nu)
            return q;
    return -1;
}

/* marginal id with one more (sign 1) or one fewer (-1) copy of value r, or -1 (c: M->D scratch) */
static long marg_step(unsigned char *c, const pr_expand_marg_struct *M, long id, int r, int sign)
{
    memcpy(c, M->cnt + (size_t)id * M->D, (size_t)M->D);
    if ((sign < 0 && c[r] == 0) || (sign > 0 && c[r] == UCHAR_MAX))
        return -1;
    c[r] = (unsigned char)(c[r] + sign);
    return pr_expand_marg_find(M, c);
}

/* pair_sub, pair_add: dw's parents (math.md §7: the terms e = f - k of a pair's f). PR_ENOMEM. */
static int plan_pair_steps(pr_backward_plan *p)
{
    const pr_expand_struct *E = p->E;
    int s = p->s;
    unsigned char *c = malloc((size_t)(p->da > p->db ? p->da : p->db));
    if (!c)
        return PR_ENOMEM;
    for (long u = 0; u < E->am->count; u++)
        for (long q = E->gpair[u]; q < E->gpair[u + 1]; q++) {
            long nu = E->bmi[E->pstart[q]];
            for (int k = 0; k < s; k++) {
                int ra = E->arow[k], rb = E->bcol[k];
                long ms = marg_step(c, E->am, u, ra, -1), ma = marg_step(c, E->am, u, ra, 1);
                p->pair_sub[q * s + k] = find_pair(E, ms, marg_step(c, E->bm, nu, rb, -1));
                p->pair_add[q * s + k] = find_pair(E, ma, marg_step(c, E->bm, nu, rb, 1));
            }
        }
    free(c);
    return PR_OK;
}

/* the coefficients, the bias and the powers w_k^p of the symbols (offset ℓ at ℓ+n-1); PR_ENOMEM */
static int plan_tables(pr_backward_plan *p, const pr_posw_struct *W, const pr_attn_opts_t *opts)
{
    int n = p->n, s = p->s, G = p->G;
    size_t L = 2 * (size_t)n - 1;
    const pr_expand_struct *E = p->E;
    pr_expand_coefs(p->alpha, E, PR_EXPAND_ALPHA, opts->poly, opts->sigma);
    double sig[PR_EXPAND_MAX_DEGREE + 1];
    sig[0] = 1.0;
    for (int k = 1; k <= G; k++)
        sig[k] = sig[k - 1] * opts->sigma;
    for (long t = 0; t < E->nterms; t++) {
        p->base[t] = E->mult[t] * sig[E->deg[t]];
        p->salpha[t] = opts->sigma * p->alpha[t];
    }
    memcpy(p->poly, opts->poly, sizeof(double) * ((size_t)p->g + 1));
    p->sigma = opts->sigma;
    for (long q = 0; q < E->npairs; q++)
        p->reused += bw_forward_pair(p, q, E->deg[E->pstart[q]]) != NULL;
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
    return plan_pair_steps(p);
}

/* Made once here by the execute's own routines instead of in every execute, so with the same
 * bits (math.md §7): the size-G pairs' spectra (no forward spectrum serves them: c_G = 0) and,
 * with psym, the time-domain symbol sums of the pairs of size ≤ g (dw's parents). */
static int plan_kept(pr_backward_plan *p)
{
    const pr_expand_struct *E = p->E;
    size_t L = 2 * (size_t)p->n - 1;
    p->qG = E->gpair[E->am->size_start[p->G]];
    long q1 = E->gpair[E->am->size_start[p->G + 1]], tb = p->tbatch, q0 = p->psym ? 0 : p->qG;
    if (!p->keptG)
        return PR_OK;
    for (int t = 0; t < p->nthreads; t++)
        p->thr[t].st = PR_OK;
#pragma omp parallel for num_threads(p->nthreads) schedule(static)
    for (long q = q0; q < q1; q += tb) {
        bw_thread *th = &p->thr[omp_get_thread_num()];
        int nb = (int)(q1 - q < tb ? q1 - q : tb), sym[TBATCH];
        const double *Ns[TBATCH] = {0};
        for (int i = 0; i < nb; i++)
            sym[i] = 1;
        if (th->st)
            continue;
        pr_backward_symbols_(p, th, q, nb, sym, Ns);
        for (int i = 0; i < nb && q + i < p->qG; i++)
            memcpy(p->psym + (size_t)(q + i) * L, th->tsym + (size_t)i * L, sizeof(double) * L);
        for (int i = 0; i < nb && !th->st; i++)
            if (q + i >= p->qG)
                th->st = pr_toeplitz_symbol_spec(p->keptG + (size_t)(q + i - p->qG) * p->sl, th->tsym + (size_t)i * L,
                                             PR_TOEPLITZ_FULL, p->tp, th->ws);
    }
    int st = PR_OK;
    for (int t = 0; t < p->nthreads; t++)
        st = st ? st : p->thr[t].st;
    return st;
}

int pr_backward_plan_heads(pr_backward_plan **plan, pr_fast_plan_struct *F,
                           const pr_posw_struct *W, const pr_attn_opts_t *opts, int heads,
                           int want_dw, double max_bytes)
{
    *plan = NULL;
    int st = plan_check(F, W, opts, heads);
    if (st)
        return st;
    pr_backward_plan *p = calloc(1, sizeof(*p));
    if (!p)
        return PR_ENOMEM;
    int g = opts->poly_degree;
    long Lfft = F ? F->tp->L : pr_toeplitz_good_size(2L * W->n - 1, 5, 1);
    if ((st = plan_shape(p, W, g, Lfft, omp_get_max_threads(), heads, want_dw)))
        goto fail;
    /* the dry run, before anything is allocated: one budget, max_bytes; the size-G pair spectra
     * are kept unless they alone pass it */
    pr_mem_t M;
    pr_budget_t b;
    pr_budget_init(b, max_bytes > 0 ? max_bytes : 0, 0);
    for (p->keep = 2; p->keep >= 0; p->keep--) {
        pr_mem_init(M, 1);
        if ((st = plan_buffers(p, M, !F)))
            goto fail;
        if (!(max_bytes > 0 && M->bytes > max_bytes))
            break;
    }
    p->keep = p->keep > 0 ? p->keep : 0;
    if ((st = pr_budget_bytes(b, M->bytes, "the backward plan")))
        goto fail;
    if (F) {
        /* the forward's expansion, built to degree g+1: borrowed, no second enumeration */
        p->tp = F->tp;
        p->E = F->terms;
        p->F = F;
    } else {
        if ((st = pr_toeplitz_plan(p->own_tp, W->n, PR_TOEPLITZ_ESTIMATE | PR_TOEPLITZ_FORCE_FFT)))
            goto fail;
        p->has_own_tp = 1;
        p->tp = p->own_tp;
        if ((st = pr_expand_init(p->own_E, W->a, W->b, W->s, g, 1, LONG_MAX)))
            goto fail;
        p->has_E = 1;
        p->E = p->own_E;
    }
    pr_mem_init(M, 0);
    st = plan_buffers(p, M, !F);
    p->bytes = M->bytes;
    if (st || (st = plan_tables(p, W, opts)) || (st = plan_kept(p)))
        goto fail;
    *plan = p;
    return PR_OK;
fail:
    pr_backward_destroy(p);
    return st;
}

int pr_backward_plan_fft(pr_backward_plan **plan, pr_fast_plan_struct *F,
                         const pr_posw_struct *W, const pr_attn_opts_t *opts, int want_dw,
                         double max_bytes)
{
    return pr_backward_plan_heads(plan, F, W, opts, 1, want_dw, max_bytes);
}

void pr_backward_lse_from_fast(double *lse, const pr_fast_plan_t F)
{
    pr_fast_rowsums(lse, F);
    for (size_t i = 0; i < (size_t)F->exec_heads * F->n; i++)
        lse[i] = log(lse[i]);
}

const double *pr_backward_kappa_w(const pr_backward_plan *p)
{
    return p->has_kappa_w ? p->thr[0].kappa_w : NULL;
}

void pr_backward_info(pr_backward_info_t *info, const pr_backward_plan *p)
{
    info->terms = p->E->nterms;
    info->a_marginals = p->E->am->count;
    info->b_marginals = p->E->bm->count;
    info->ab_pairs = p->E->npairs;
    info->reused_spectra = p->reused;
    info->kept_spectra = p->keptG ? p->E->npairs - (long)p->qG : 0;
    info->kept_symbols = p->psym ? (long)p->qG : 0;
    info->bytes = p->bytes;
    info->transforms = p->transforms;
    info->kv_transforms = p->kv_transforms;
    info->forward_xhat = p->forward_xhat;
}

double pr_backward_g3_tol(double scale, int n, long terms, double mpert)
{
    double u = DBL_EPSILON / 2;
    return 8.0 * u * (log2(2.0 * n + 2) + (double)terms + n) * scale + mpert * scale;
}

/* ---- the papers' dL/dX --------------------------------------------------------- */

int pr_backward_dx(double *dX, const double *A1, const double *dQ, int n, int d)
{
    if (n <= 0 || d <= 0)
        return PR_EINVAL;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, n, 1.0, A1, d, dQ, d, 0.0, dX, d);
    return PR_OK;
}
