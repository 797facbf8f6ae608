/* The fast backward's execute (docs/math.md §7; the derivation is at the top of pr_backward.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_backward_impl.h"

/* ---- execute ---------------------------------------------------------------------------------- */

/* out[i] = Π_r pw[r][e_r][i] over a marginal's D values (pw: D × (G+1) × n); skip = -1, or a
 * value whose exponent is lowered by one */
static void marg_product(double *out, const double *pw, const unsigned char *e, int skip,
                         int D, int G, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = 1.0;
    for (int a = 0; a < D; a++) {
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

/* pw[r][e][i] = X[i][val[r]]^e for the D columns val of a marginal, e ≤ G (X: n×d) */
static void powers(double *pw, const double *X, const int *val, int D, int n, int d, int G)
{
    for (int r = 0; r < D; r++) {
        double *base = pw + (size_t)r * (G + 1) * n;
        for (int i = 0; i < n; i++)
            base[i] = 1.0;
        for (int e = 1; e <= G; e++)
            for (int i = 0; i < n; i++)
                base[(size_t)e * n + i] = base[(size_t)(e - 1) * n + i] * X[(size_t)i * d + val[r]];
    }
}

/* dX[i][val[r]] += z[i] · ∂(Π_r X_{i,val[r]}^{e_r})/∂X_{i,val[r]} for every r with e_r > 0 */
static void add_marg_grad(double *dX, const double *z, const double *pw, const unsigned char *e,
                          double *tmp, const int *val, int D, int d, int G, int n)
{
    for (int r = 0; r < D; r++) {
        if (!e[r])
            continue;
        marg_product(tmp, pw, e, r, D, G, n);
        for (int i = 0; i < n; i++)
            dX[(size_t)i * d + val[r]] += e[r] * tmp[i] * z[i];
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
            const unsigned char *f = p->E->e + (size_t)(t0 + i) * s;
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
static int do_mu(const pr_backward_plan *p, bw_thread *th, long mu, int m, int vshare, int want_dw,
                 int want_kappa, double *dQ, double *dw)
{
    int n = p->n, d = p->d, G = p->G, st;
    size_t sl = p->sl, L = 2 * (size_t)n - 1;
    const pr_toeplitz_plan_struct *tp = p->tp;
    const pr_expand_struct *E = p->E;
    long nu0 = E->bm->size_start[m];
    const unsigned char *muv = E->am->cnt + (size_t)mu * p->da;
    marg_product(th->tmp, p->qpow, muv, -1, p->da, G, n);
    for (int c = 0; c < d + 2; c++)
        TRY(fwd(p, th, th->Xhat + (size_t)c * sl, p->xc + (size_t)c * n, th->tmp));
    for (int c = 0; c <= d; c++)
        pr_toeplitz_spec_zero(th->accQ + (size_t)c * sl, tp);
    long t = E->gstart[mu], tend = E->gstart[mu + 1];
    int kwm = want_dw && want_kappa && m <= p->g;
    int wantC = want_dw && m >= 1;
    long lastnu = -1;
    for (int nb; t < tend; t += nb) {
        nb = tend - t < p->tbatch ? (int)(tend - t) : p->tbatch;
        int sym[TBATCH], any = wantC || kwm, slot = -1;
        const double *T[TBATCH], *Ys[TBATCH], *Cs[TBATCH], *Ns[TBATCH];
        double *aKs[TBATCH], *aVs[TBATCH];
        long toff[TBATCH], tstride[TBATCH];
        double ah[TBATCH], al[TBATCH];
        for (int i = 0; i < nb; i++) {
            long nuid = E->bmi[t + i];
            size_t vo = (size_t)(nuid - nu0) * (d + 1) * sl;
            if (i == 0 || nuid != E->bmi[t + i - 1]) {
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
            T[i] = bw_forward_spectrum(p, t + i);
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
        lastnu = E->bmi[t + nb - 1];
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
        add_marg_grad(dQ, th->ycol, p->qpow, muv, th->tmp, p->E->aval, p->da, d, G, n);
    }
    return PR_OK;
}

/* dK, dV (and κ) of b-marginal ν (size m) from the threads' summed accumulators. */
static int do_nu(const pr_backward_plan *p, bw_thread *th, int nth, long v, int m, int vshare,
                 double vscale, const double *V, double *dK, double *dV, double *kappa, int want_kappa)
{
    int n = p->n, d = p->d, G = p->G, st;
    size_t sl = p->sl;
    const unsigned char *nuv = p->E->bm->cnt + (size_t)v * p->db;
    size_t vo = (size_t)(v - p->E->bm->size_start[m]) * (d + 1) * sl;
    double *vnu = th->rbuf, *ycol = th->ycol;
    double *accK = p->thr[0].accK, *accV = p->thr[0].accV;
    /* the threads' sums of this ν into thread 0's, in thread order */
    for (int t = 1; t < nth; t++)
        for (size_t q = vo; q < vo + (size_t)(d + 1) * sl; q++) {
            accK[q] += p->thr[t].accK[q];
            accV[q] += p->thr[t].accV[q];
        }
    if (m <= p->g)
        marg_product(vnu, p->kpow, nuv, -1, p->db, G, n);
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
        add_marg_grad(dK, ycol, p->kpow, nuv, th->tmp, p->E->bval, p->db, d, G, n);
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
    long v = p->E->bm->size_start[m] + q / (d + 1);
    marg_product(th->tmp, p->kpow, p->E->bm->cnt + (size_t)v * p->db, -1, p->db, p->G, n);
    for (int j = 0; j < n; j++)
        th->ycol[j] = c < d ? V[(size_t)j * d + c] : 1.0;
    return fwd(p, th, p->Yhat + (m & 1) * p->ysize + (size_t)q * p->sl, th->ycol, th->tmp);
}

/* first a-marginal of thread id's share of the size-m ones, balanced by term count */
static long mu_chunk(const pr_backward_plan *p, int m, int id, int nth)
{
    const long *gs = p->E->gstart;
    long u0 = p->E->am->size_start[m], u1 = p->E->am->size_start[m + 1];
    long base = gs[u0], tot = gs[u1] - base, want = tot * id / nth;
    long u = u0;
    while (u < u1 && gs[u] - base < want)
        u++;
    return id == nth ? u1 : u;
}

/* threads 1..used-1's parts into the outputs (thread 0's), in thread order: the same sums
 * whatever the scheduling */
static void add_parts(pr_backward_plan *p, int used, double *dQ, double *dK, double *dV, double *dw,
                      double *kappa)
{
    size_t nd = (size_t)p->n * p->d, L = 2 * (size_t)p->n - 1;
    for (int t = 1; t < used; t++) {
        const bw_thread *th = &p->thr[t];
        for (size_t k = 0; k < nd; k++) {
            dQ[k] += th->dQ[k];
            dK[k] += th->dK[k];
            dV[k] += th->dV[k];
        }
        if (kappa)
            for (int j = 0; j < p->n; j++)
                kappa[j] += th->kappa[j];
        if (dw)
            for (size_t k = 0; k < (size_t)p->s * L; k++)
                dw[k] += th->dw[k];
        for (size_t k = 0; k < L; k++)
            p->thr[0].kappa_w[k] += th->kappa_w[k];
    }
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
    for (int i = 0; i < n; i++)
        bw_xcols(p->xc + i, (size_t)n, dO, O, exp(-lse[i]), i, d);
    powers(p->qpow, Q, p->E->aval, p->da, n, d, G);
    powers(p->kpow, K, p->E->bval, p->db, n, d, G);
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
            long nu0 = p->E->bm->size_start[m], nu1 = p->E->bm->size_start[m + 1];
            size_t nacc = (size_t)(nu1 - nu0) * (d + 1);
            long nnext = m < G ? (p->E->bm->size_start[m + 2] - nu1) * (d + 1) : 0;
            /* α_f = (m c_m / c_{m-1}) α̂_f for every f of size m, and dV's transposed products
             * (columns dO_c/D̃ u_μ) are dK's: for c < d, dV takes accK's inverse transforms scaled
             * by vscale instead of accumulating its own */
            int vshare = m >= 1 && m <= p->g && p->poly[m - 1] != 0.0;
            double vscale = vshare ? m * p->poly[m] / p->poly[m - 1] : 0.0;
            memset(th->accK, 0, sizeof(double) * nacc * sl);
            memset(th->accV, 0, sizeof(double) * nacc * sl);
            for (long mu = mu_chunk(p, m, id, nth); mu < mu_chunk(p, m, id + 1, nth) && !th->st; mu++)
                th->st = do_mu(p, th, mu, m, vshare, want_dw, want_kappa, tQ, tdw);
#pragma omp barrier
#pragma omp for schedule(static)
            for (long q = 0; q < (nu1 - nu0) + nnext; q++) {
                if (th->st)
                    continue;
                if (q < nu1 - nu0)
                    th->st = do_nu(p, th, nth, nu0 + q, m, vshare, vscale, V, tK, tV, tkap, want_kappa);
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
    add_parts(p, used, dQ, dK, dV, dw, kappa);
    return PR_OK;
}
