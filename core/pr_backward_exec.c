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

/* One execute's heads: Q head hq uses kv head pr_attn_kv_head(hq, h, hkv). */
typedef struct {
    int h, hkv;
    int want_dw, want_kappa;
    int vec;                     /* pr_backward_mac_vec_() */
    const double *K, *V;         /* hkv × n × d */
    const double *Xf;            /* the forward's x̂ of these K, V (pr_fast_plan_xhat): Ŷ of the sizes
                                    <= g, or NULL */
    const double *Yf;            /* the forward's scaled inverses of its sums of these K, V
                                    (pr_fast_plan_ysum), or NULL: see dq_forward */
} bw_exec;

/* dQ's sums of the size-m a-marginals, Σ_ν α̂ Ŝ_μν ∘ Ŷ_{ν,c}, are c_{m-1}/(m c_m) times the
 * forward's Σ_ν Ŝ_μν ∘ x̂_{ν,c} when their pairs' spectra are F's (bw_forward_pair) and Ŷ is x̂:
 * their inverses are then F's, scaled (math.md §7), and mac_batch forms no accQ */
static inline int dq_forward(const pr_backward_plan *p, const bw_exec *x, int m)
{
    return x->Yf && m >= 1 && m <= p->g && p->poly[m] != 0.0;
}

/* A size whose dQ needs none of its pairs' products (size 0: no dQ; dq_forward) is shared among
 * the threads by equal counts of pairs, a group's pairs possibly on two threads (each makes the
 * group's X̂; the thread of its first pair adds its dQ); the others by whole groups (mu_chunk). */
static inline int by_pairs(const pr_backward_plan *p, const bw_exec *x, int m)
{
    return m == 0 || dq_forward(p, x, m);
}

/* the per-head blocks of the plan's and a thread's buffers */
static inline double *xcol(const pr_backward_plan *p, int hq, int c)
{
    return p->xc + ((size_t)hq * (p->d + 2) + c) * p->n;
}

/* X̂ and dQ's sums of the slot-th a-marginal of a batch and kv head kv (both depend on a Q head
 * only through its kv head, see do_mus) */
static inline double *xhat(const pr_backward_plan *p, const bw_thread *th, int slot, int kv, int c)
{
    return th->Xhat + (((size_t)slot * p->heads + kv) * (p->d + 2) + c) * p->sl;
}

static inline double *accq(const pr_backward_plan *p, const bw_thread *th, int slot, int kv, int c)
{
    return th->accQ + (((size_t)slot * p->heads + kv) * (p->d + 1) + c) * p->sl;
}

/* offset of (kv, ν-th of its size, column 0) in Ŷ's size class and in accK, accV */
static inline size_t nu_off(const pr_backward_plan *p, int kv, long nul)
{
    return ((size_t)kv * p->maxnu + (size_t)nul) * (p->d + 1) * p->sl;
}

/* Ŷ of (kv head kv, the nul-th ν of size m), column 0 (the columns at stride sl): the forward's
 * x̂ when it serves (sizes <= g, same K, V), else this execute's own in Yhat's size class */
static inline const double *yhat_at(const pr_backward_plan *p, const bw_exec *x, int m, int kv, long nul)
{
    if (x->Xf && m <= p->g)
        return x->Xf + ((size_t)(p->E->bm->size_start[m] + nul) * x->hkv + kv) * (p->d + 1) * p->sl;
    return p->Yhat + (size_t)(m & 1) * p->ysize + nu_off(p, kv, nul);
}

static inline const double *qpw(const pr_backward_plan *p, int hq)
{
    return p->qpow + (size_t)hq * p->da * (p->G + 1) * p->n;
}

static inline const double *kpw(const pr_backward_plan *p, int kv)
{
    return p->kpow + (size_t)kv * p->db * (p->G + 1) * p->n;
}

/* The products of nb pairs of size m, each pair's spectrum T[i] (real part T[i][q·stride[i]],
 * imaginary part T[i][toff[i] + q·stride[i]]: the forward's planar layout or the engine's
 * interleaved one) read once per block of frequencies for every kv head and column (X̂_{kv,c}:
 * the sum over the kv head's Q heads, do_mus):
 *   accQ_{kv,c} += ah·T∘Ŷ_{kv,ν,c},  accK_{kv,ν,c} += ah·X̂_{kv,c}∘conj(T)  (c ≤ d; mac_cols_),
 *   accV_{kv,ν,c} += al·X̂_{kv,c'}∘conj(T)
 * with c' = c for c < d and the ‖dO‖₁ column for c = d (κ's; only that one when vshare: dV then
 * comes from accK, see pr_backward_execute_heads). With the same blocks of X̂ and Ŷ, dw's
 * correlation Z[i] = Σ_kv Σ_{c≤d} X̂_{kv,c}∘conj(Ŷ_{kv,ν,c}) (W is shared: one sum over the heads)
 * and κ^w's Zn[i] = Σ_kv X̂_{kv,d+1}∘conj(Ŷ_{kv,ν,d}) (each when not NULL). Accumulators are
 * interleaved (the engine's layout, for its inverse transforms). Frequency blocks outside, pairs
 * and heads inside: the accumulators' and the input spectra's blocks stay in cache; the pairs by
 * ν, then μ, so that a ν's Ŷ and dK sums stay in L1 across its μ (each sum still takes its
 * pairs in the order of the batch: the same bits). */
static void mac_batch(const pr_backward_plan *p, bw_thread *th, const bw_exec *x, int m, int nb,
                      const double *const *T, const long *toff, const long *tstride, const double *ah,
                      const double *al, int vshare, const long *nul, const int *slot, double *const *Z,
                      double *const *Zn)
{
    int d = p->d;
    long nq = p->tp->nfreq;
    size_t sl = p->sl;
    enum { BLK = 512 };
    double za[2 * BLK], zb[2 * BLK], vr[BLK], vi[BLK], nr[BLK], ni[BLK];
    int ord[TBATCH];
    for (int i = 0; i < nb; i++) {
        int j = i;
        for (; j > 0 && nul[ord[j - 1]] > nul[i]; j--)
            ord[j] = ord[j - 1];
        ord[j] = i;
    }
    for (long q0 = 0; q0 < nq; q0 += BLK) {
        long mq = nq - q0 < BLK ? nq - q0 : BLK;
        for (int oi = 0; oi < nb; oi++) {
            int i = ord[oi];
            const double *tr = T[i] + q0 * tstride[i], *ti = T[i] + toff[i] + q0 * tstride[i];
            /* dV's own products: for its columns when not shared with dK's, for κ's when asked */
            int wq = ah[i] != 0.0, wv = al[i] != 0.0 && (!vshare || x->want_kappa), wz = Z[i] != NULL;
            int wn = Zn[i] != NULL;
            for (long q = 0; q < mq && wv; q++) {
                vr[q] = al[i] * tr[q * tstride[i]];
                vi[q] = al[i] * ti[q * tstride[i]];
            }
            for (long q = 0; q < mq && wn; q++)
                nr[q] = ni[q] = 0.0;
            for (int kv = 0; kv < x->hkv; kv++) {
                size_t yo = nu_off(p, kv, nul[i]) + 2 * (size_t)q0;
                const double *yh = yhat_at(p, x, m, kv, nul[i]) + 2 * (size_t)q0;
                /* the columns at stride sl in Ŷ, X̂, accQ and accK alike */
                if (wq || wz)
                    pr_backward_mac_cols_(dq_forward(p, x, m) ? NULL : accq(p, th, slot[i], kv, 0) + 2 * q0,
                                          th->accK + yo, za, zb, kv == x->hkv - 1 && wz ? Z[i] + 2 * q0 : NULL, yh,
                                          xhat(p, th, slot[i], kv, 0) + 2 * q0, tr, ti - tr, tstride[i], ah[i], sl,
                                          d + 1, mq, wq, wz, kv == 0, x->vec);
                for (int c = 0; c <= d; c++) {
                    if (!wv || (c == d ? !x->want_kappa : vshare))
                        continue;
                    const double *xv = xhat(p, th, slot[i], kv, c < d ? c : d + 1) + 2 * q0;
                    double *av = th->accV + yo + (size_t)c * sl;
                    for (long q = 0; q < mq; q++) {
                        double a = vr[q], b = vi[q];
                        av[2 * q] += a * xv[2 * q] + b * xv[2 * q + 1];
                        av[2 * q + 1] += a * xv[2 * q + 1] - b * xv[2 * q];
                    }
                }
                if (wn) {
                    const double *xk = xhat(p, th, slot[i], kv, d + 1) + 2 * q0, *yd = yh + (size_t)d * sl;
                    for (long q = 0; q < mq; q++) {
                        nr[q] += xk[2 * q] * yd[2 * q] + xk[2 * q + 1] * yd[2 * q + 1];
                        ni[q] += xk[2 * q + 1] * yd[2 * q] - xk[2 * q] * yd[2 * q + 1];
                    }
                }
            }
            for (long q = 0; q < mq && wn; q++) {
                Zn[i][2 * (q0 + q)] = nr[q];
                Zn[i][2 * (q0 + q) + 1] = ni[q];
            }
        }
    }
}

#define TRY(call)             \
    do {                      \
        if ((st = (call)))    \
            return st;        \
    } while (0)

/* The pairs [q, q+nb) of the a-marginal groups from u0 on (size m; group u0 + k in slot k): the
 * sums of the symbols of the pairs neither F nor the plan serves and their transforms, the products and
 * correlations (mac_batch), then dw and κ^w from the correlations (a second pass over the terms'
 * symbols). */
static int do_pairs(const pr_backward_plan *p, bw_thread *th, const bw_exec *x, long q, int nb, int m,
                    int vshare, double *dw, long u0)
{
    int n = p->n, st;
    size_t sl = p->sl, L = 2 * (size_t)n - 1, tb = (size_t)p->tbatch;
    const pr_toeplitz_plan_struct *tp = p->tp;
    const pr_expand_struct *E = p->E;
    int kwm = x->want_dw && x->want_kappa && m <= p->g, wantC = x->want_dw && m >= 1, anysym = 0;
    int sym[TBATCH] = {0}, none[TBATCH] = {0};
    const double *T[TBATCH] = {0}, *Cs[TBATCH] = {0}, *Ns[TBATCH] = {0};
    double *Z[TBATCH] = {0}, *Zn[TBATCH] = {0};
    long toff[TBATCH] = {0}, tstride[TBATCH] = {0}, nul[TBATCH] = {0}, u = u0;
    int slot[TBATCH] = {0};
    double ah[TBATCH] = {0}, al[TBATCH] = {0};
    double cm = m <= p->g ? p->poly[m] : 0.0, cm1 = m >= 1 ? p->poly[m - 1] : 0.0;
    for (int i = 0; i < nb; i++) {
        nul[i] = E->bmi[E->pstart[q + i]] - E->bm->size_start[m];
        while (E->gpair[u + 1] <= q + i)
            u++;
        slot[i] = (int)(u - u0);
        Z[i] = wantC ? th->corr + (size_t)i * sl : NULL;
        Zn[i] = kwm ? th->corr + (tb + (size_t)i) * sl : NULL;
        T[i] = bw_forward_pair(p, q + i, m);
        const double *kept = T[i] ? NULL : bw_kept_pair(p, q + i, m);
        sym[i] = !T[i] && !kept;
        anysym |= sym[i];
        if (kept) {
            T[i] = kept;
            ah[i] = cm1 / m;
            al[i] = cm;
            tstride[i] = 2;
            toff[i] = 1;
        } else if (T[i]) {
            /* F's planar spectrum holds Σ α_f t̂_f = c_m Σ mult(f) σ^m t̂_f */
            ah[i] = m >= 1 ? cm1 / (m * cm) : 0.0;   /* α̂ = 0 for the empty multiset */
            al[i] = 1.0;
            tstride[i] = 1;
            toff[i] = (long)tp->nfreq;
        } else {
            ah[i] = m >= 1 ? cm1 / m : 0.0;
            al[i] = cm;
            tstride[i] = 2;
            toff[i] = 1;
        }
    }
    if (anysym) {
        pr_backward_symbols_(p, th, q, nb, sym, Ns);
        for (int i = 0; i < nb; i++)
            if (sym[i]) {
                double *Ti = th->That + (size_t)i * sl;
                TRY(pr_toeplitz_symbol_spec(Ti, th->tsym + (size_t)i * L, PR_TOEPLITZ_FULL, tp, th->ws));
                T[i] = Ti;
            }
    }
    mac_batch(p, th, x, m, nb, T, toff, tstride, ah, al, vshare, nul, slot, Z, Zn);
    if (!wantC && !kwm)
        return PR_OK;
    for (int i = 0; i < nb; i++) {
        /* Σ_heads Σ_c C_{μν,c}: one correlation per (μ, ν); for dw's bound Σ_{i-j=ℓ} ‖dO_i‖₁ P̃_ij =
         * Σ_f α_f t_f(ℓ) C^ν_{μν}(ℓ) */
        if (wantC) {
            TRY(pr_toeplitz_spec_inverse_sym(th->csym + (size_t)i * L, Z[i], tp, th->ws));
            Cs[i] = th->csym + (size_t)i * L;
        }
        if (kwm) {
            TRY(pr_toeplitz_spec_inverse_sym(th->cnu + (size_t)i * L, Zn[i], tp, th->ws));
            Ns[i] = th->cnu + (size_t)i * L;
        }
    }
    if (kwm)
        pr_backward_symbols_(p, th, q, nb, none, Ns);
    if (wantC)
        pr_backward_dw_(p, th, q, nb, Cs, dw);
    return PR_OK;
}

/* Everything of the a-marginals [u, ue) (size m, at most MUBATCH) within the thread's pairs [qa, qb)
 * (by_pairs; else all of theirs): X̂ = FFT(Σ_hq x_c u_μ) per kv head (its Q heads' terms summed
 * before one transform: only these sums enter the products), their pairs' products into th->accQ
 * and the thread's accK/accV, dw and κ^w, then dQ's parts. */
static int do_mus(const pr_backward_plan *p, bw_thread *th, const bw_exec *x, long u, long ue, long qa, long qb,
                  int m, int vshare, double *dQ, double *dw)
{
    int n = p->n, d = p->d, G = p->G, st, grp = x->h / x->hkv, nx = d + 1 + x->want_kappa;
    const pr_expand_struct *E = p->E;
    for (long mu = u; mu < ue; mu++)
        for (int kv = 0; kv < x->hkv; kv++) {
            int k = (int)(mu - u);
            /* the group's Q heads in order; the first one's products as they are (one head: the
             * one-head execute's input bits) */
            for (int hq = kv * grp; hq < (kv + 1) * grp; hq++) {
                marg_product(th->tmp, qpw(p, hq), E->am->cnt + (size_t)mu * p->da, -1, p->da, G, n);
                for (int c = 0; c < nx; c++) {
                    const double *xc = xcol(p, hq, c);
                    double *xs = th->xsum + (size_t)c * n;
                    if (hq == kv * grp)
                        for (int i = 0; i < n; i++)
                            xs[i] = xc[i] * th->tmp[i];
                    else
                        for (int i = 0; i < n; i++)
                            xs[i] += xc[i] * th->tmp[i];
                }
            }
            for (int c = 0; c < nx; c++)
                TRY(pr_toeplitz_vec_spec(xhat(p, th, k, kv, c), th->xsum + (size_t)c * n, 1, p->tp, th->ws));
            for (int c = 0; c <= d && !dq_forward(p, x, m); c++)
                pr_toeplitz_spec_zero(accq(p, th, k, kv, c), p->tp);
        }
    long q1 = E->gpair[ue] < qb ? E->gpair[ue] : qb;
    for (long q = E->gpair[u] > qa ? E->gpair[u] : qa, nb; q < q1; q += nb) {
        nb = q1 - q < p->tbatch ? q1 - q : p->tbatch;
        TRY(do_pairs(p, th, x, q, (int)nb, m, vshare, dw, u));
    }
    int fw = dq_forward(p, x, m);
    double ah = fw ? p->poly[m - 1] / (m * p->poly[m]) : 1.0;
    for (long mu = u; mu < ue && m >= 1; mu++) {
        if (E->gpair[mu] < qa || E->gpair[mu] >= qb)
            continue;   /* the group's dQ is added by the thread of its first pair */
        for (int kv = 0; kv < x->hkv; kv++) {
            /* Σ_f α̂_f T_f (y_c v_ν) depends on the kv head only: inverted once for its Q heads, or
             * the forward's inverse times ah */
            const double *zs = fw ? x->Yf + ((size_t)mu * x->hkv + kv) * (d + 1) * p->sl : th->xsum;
            size_t zstride = fw ? p->sl : (size_t)n;
            for (int c = 0; c <= d && !fw; c++)
                TRY(pr_toeplitz_spec_inverse(th->xsum + (size_t)c * n, 1, accq(p, th, (int)(mu - u), kv, c), p->tp,
                                             th->ws));
            for (int hq = kv * grp; hq < (kv + 1) * grp; hq++) {
                /* dQ_ia += ∂u_μ/∂Q_ia Σ_c x_c(i) [Σ_f α̂_f T_f (y_c v_ν)](i) */
                memset(th->ycol, 0, sizeof(double) * n);
                for (int c = 0; c <= d; c++) {
                    const double *xc = xcol(p, hq, c), *z = zs + (size_t)c * zstride;
                    for (int i = 0; i < n; i++)
                        th->ycol[i] += xc[i] * z[i];
                }
                if (fw)
                    for (int i = 0; i < n; i++)
                        th->ycol[i] *= ah;
                add_marg_grad(dQ + (size_t)hq * n * d, th->ycol, qpw(p, hq), E->am->cnt + (size_t)mu * p->da,
                              th->tmp, E->aval, p->da, d, G, n);
            }
        }
    }
    return PR_OK;
}

/* dK, dV (and κ) of b-marginal ν (size m) and kv head kv from the threads' summed accumulators
 * (dK, dV, kappa: the kv head's blocks). */
static int do_nu(const pr_backward_plan *p, bw_thread *th, const bw_exec *x, int nth, long v, int kv,
                 int m, int vshare, double vscale, double *dK, double *dV, double *kappa)
{
    int n = p->n, d = p->d, G = p->G, st;
    size_t sl = p->sl;
    const unsigned char *nuv = p->E->bm->cnt + (size_t)v * p->db;
    size_t vo = nu_off(p, kv, v - p->E->bm->size_start[m]);
    const double *V = x->V + (size_t)kv * n * d;
    double *vnu = th->rbuf, *ycol = th->ycol;
    double *accK = p->thr[0].accK, *accV = p->thr[0].accV;
    /* the threads' sums of this ν into thread 0's, in thread order (accV's columns only where
     * mac_batch wrote them) */
    for (int t = 1; t < nth; t++) {
        for (size_t q = vo; q < vo + (size_t)(d + 1) * sl; q++)
            accK[q] += p->thr[t].accK[q];
        for (int c = 0; c <= d && m <= p->g; c++)
            if (c == d ? x->want_kappa : !vshare)
                for (size_t q = vo + (size_t)c * sl; q < vo + (size_t)(c + 1) * sl; q++)
                    accV[q] += p->thr[t].accV[q];
    }
    if (m <= p->g)
        marg_product(vnu, kpw(p, kv), nuv, -1, p->db, G, n);
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
        add_marg_grad(dK, ycol, kpw(p, kv), nuv, th->tmp, p->E->bval, p->db, d, G, n);
    }
    if (m <= p->g)
        for (int c = 0; c <= d; c++) {
            if (c == d && !x->want_kappa)
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

/* Ŷ item q of size m: the spectrum of y_c v_ν of kv head kv, with c = q mod (d+1), then ν the
 * (q div (d+1) mod #ν)-th of size m, kv = q div ((d+1)·#ν), y_c = V_c (c < d) or 1: made as the
 * forward makes its x̂ (pr_expand_marg_eval, then pr_toeplitz_vec_spec_mul); a kept forward
 * plan's x̂ serves instead for the sizes <= g (yhat_at) */
static int yhat_item(const pr_backward_plan *p, bw_thread *th, const bw_exec *x, int m, long q)
{
    int n = p->n, d = p->d, c = (int)(q % (d + 1));
    long nnu = p->E->bm->size_start[m + 1] - p->E->bm->size_start[m], r = q / (d + 1);
    long nul = r % nnu;
    int kv = (int)(r / nnu);
    const double *K = x->K + (size_t)kv * n * d, *V = x->V + (size_t)kv * n * d;
    double *out = p->Yhat + (size_t)(m & 1) * p->ysize + nu_off(p, kv, nul) + (size_t)c * p->sl;
    pr_expand_marg_eval(th->tmp, p->E->bm, p->E->bm->size_start[m] + nul, K, d, p->E->bval, n);
    return c < d ? pr_toeplitz_vec_spec_mul(out, th->tmp, V + c, d, p->tp, th->ws)
                 : pr_toeplitz_vec_spec(out, th->tmp, 1, p->tp, th->ws);
}

/* A-marginal μ's work in half transforms (one head; measured shares at d = 2, n = 2^16): its 2(d+1)
 * transforms (x_c u_μ, dQ's inverses) with their marginal products, 4(d+1); per pair dw's
 * correlation, the products and dw's symbol sums, 5; per pair of size g+1 its symbol's sum and
 * transform, 3 more. Independent of the head count, so that a head's thread shares, hence its
 * bits, are those of a one-head execute. */
static long mu_weight(const pr_backward_plan *p, long u)
{
    const pr_expand_struct *E = p->E;
    long np = E->gpair[u + 1] - E->gpair[u];
    return 5 * np + 4 * (p->d + 1) + (E->am->deg[u] == p->G ? 3 * np : 0);
}

/* first a-marginal of thread id's share of the size-m ones, balanced by mu_weight: the cut
 * nearest to id/nth of the total */
static long mu_chunk(const pr_backward_plan *p, int m, int id, int nth)
{
    long u0 = p->E->am->size_start[m], u1 = p->E->am->size_start[m + 1], tot = 0, acc = 0;
    if (id == nth)
        return u1;
    for (long u = u0; u < u1; u++)
        tot += mu_weight(p, u);
    long u = u0;
    while (u < u1 && (2 * acc + mu_weight(p, u)) * nth <= 2 * tot * id)
        acc += mu_weight(p, u++);
    return u;
}

/* the size-m a-marginals' work of thread t's share for h_kv kv heads, in mu_weight's units: per
 * further kv head its transforms and products again */
static long mu_load_groups(const pr_backward_plan *p, const bw_exec *x, int m, int t, int nth)
{
    const long *gp = p->E->gpair;
    long w = 0;
    for (long u = mu_chunk(p, m, t, nth), u1 = mu_chunk(p, m, t + 1, nth); u < u1; u++)
        w += mu_weight(p, u) + (x->hkv - 1) * (4 * (p->d + 1) + 2 * (gp[u + 1] - gp[u]));
    return w;
}

/* ... or, where the size is shared by pairs (by_pairs), the mean: the shares are even */
static long mu_load(const pr_backward_plan *p, const bw_exec *x, int m, int t, int nth)
{
    if (!by_pairs(p, x, m))
        return mu_load_groups(p, x, m, t, nth);
    long w = 0;
    for (int s = 0; s < nth; s++)
        w += mu_load_groups(p, x, m, s, nth);
    return w / nth;
}

/* Thread id's share [*y0, *y1) of the next size's nnext Ŷ items, made beside this size's
 * a-marginals (they fill the other half of Yhat, which this size does not read): contiguous, in
 * thread order, each thread taking what brings its load nearest the mean (an item: one
 * transform, 2 units). Which thread makes an item changes no bit. */
static void yhat_share(const pr_backward_plan *p, const bw_exec *x, int m, int id, int nth, long nnext, long *y0,
                       long *y1)
{
    long tot = 2 * nnext, lo = 0;
    for (int t = 0; t < nth; t++)
        tot += mu_load(p, x, m, t, nth);
    for (int t = 0; t <= id; t++) {
        long want = (tot / nth - mu_load(p, x, m, t, nth)) / 2;
        want = t == nth - 1 || want > nnext - lo ? nnext - lo : want < 0 ? 0 : want;
        *y0 = lo;
        *y1 = lo += want;
    }
}

/* threads 1..used-1's parts into the outputs (thread 0's), in thread order: the same sums
 * whatever the scheduling */
static void add_parts(pr_backward_plan *p, const bw_exec *x, int used, double *dQ, double *dK,
                      double *dV, double *dw, double *kappa)
{
    size_t nd = (size_t)p->n * p->d, L = 2 * (size_t)p->n - 1;
    for (int t = 1; t < used; t++) {
        const bw_thread *th = &p->thr[t];
        for (size_t k = 0; k < nd * x->h; k++)
            dQ[k] += th->dQ[k];
        for (size_t k = 0; k < nd * x->hkv; k++) {
            dK[k] += th->dK[k];
            dV[k] += th->dV[k];
        }
        if (kappa)
            for (size_t j = 0; j < (size_t)p->n * x->hkv; j++)
                kappa[j] += th->kappa[j];
        if (dw)
            for (size_t k = 0; k < (size_t)p->s * L; k++)
                dw[k] += th->dw[k];
        for (size_t k = 0; k < L; k++)
            p->thr[0].kappa_w[k] += th->kappa_w[k];
    }
}

/* the rescalings x_c and the power tables of every head */
static int exec_inputs(pr_backward_plan *p, const bw_exec *x, const double *Q, const double *K,
                       const double *V, const double *O, const double *lse, const double *dO)
{
    int n = p->n, d = p->d, G = p->G;
    size_t nd = (size_t)n * d;
    if (pr_vec_check_finite(Q, nd * x->h) || pr_vec_check_finite(K, nd * x->hkv) ||
        pr_vec_check_finite(V, nd * x->hkv) || pr_vec_check_finite(O, nd * x->h) ||
        pr_vec_check_finite(dO, nd * x->h) || pr_vec_check_finite(lse, (size_t)n * x->h))
        return PR_ENONFINITE;
    for (int hq = 0; hq < x->h; hq++) {
        for (int i = 0; i < n; i++)
            bw_xcols(xcol(p, hq, 0) + i, (size_t)n, dO + hq * nd, O + hq * nd, exp(-lse[(size_t)hq * n + i]), i, d);
        powers((double *)qpw(p, hq), Q + hq * nd, p->E->aval, p->da, n, d, G);
    }
    for (int kv = 0; kv < x->hkv; kv++)
        powers((double *)kpw(p, kv), K + kv * nd, p->E->bval, p->db, n, d, G);
    return PR_OK;
}

int pr_backward_execute_heads(pr_backward_plan *p, double *dQ, double *dK, double *dV, double *dw,
                              double *kappa, const double *Q, const double *K, const double *V,
                              const double *O, const double *lse, const double *dO, int h, int h_kv)
{
    int n = p->n, d = p->d, s = p->s, G = p->G, st = PR_OK;
    size_t sl = p->sl, L = 2 * (size_t)n - 1, nd = (size_t)n * d;
    if ((dw && !p->want_dw) || h < 1 || h > p->heads || h_kv < 1 || h % h_kv)
        return PR_EINVAL;
    bw_exec x = {.h = h, .hkv = h_kv, .want_dw = dw != NULL, .want_kappa = kappa != NULL,
                 .vec = pr_backward_mac_vec_(), .K = K, .V = V};
    if ((st = exec_inputs(p, &x, Q, K, V, O, lse, dO)))
        return st;
    /* a kept F's K, V half: its last execute's when that was on these K, V (training runs the
     * forward, then the backward), else made here on F, by F's code: the same bits either way */
    long made = 0;
    if (p->F && !p->F->streamed && h_kv <= p->F->kv_heads) {
        if ((st = pr_fast_execute_kv(&made, p->F, h_kv, K, V)))
            return st;
        x.Xf = p->F->xhat;
        x.Yf = p->F->sums;
    }
    long tr0 = 0;
    for (int t = 0; t < p->nthreads; t++)
        tr0 += p->thr[t].ws->n_forward + p->thr[t].ws->n_inverse;
    p->has_kappa_w = dw && kappa;
    int used = 1;
#pragma omp parallel num_threads(p->nthreads)
    {
        int id = omp_get_thread_num(), nth = omp_get_num_threads();
        bw_thread *th = &p->thr[id];
        /* thread 0 writes the outputs, the others their own parts */
        double *tQ = id ? th->dQ : dQ, *tK = id ? th->dK : dK, *tV = id ? th->dV : dV;
        double *tkap = id ? th->kappa : kappa, *tdw = id ? th->dw : dw;
        th->st = PR_OK;
        memset(tQ, 0, sizeof(double) * nd * h);
        memset(tK, 0, sizeof(double) * nd * h_kv);
        memset(tV, 0, sizeof(double) * nd * h_kv);
        if (tkap)
            memset(tkap, 0, sizeof(double) * n * h_kv);
        if (x.want_dw)
            memset(tdw, 0, sizeof(double) * (size_t)s * L);
        memset(th->kappa_w, 0, sizeof(double) * L);
        if (id == 0)
            used = nth;
        /* Ŷ of size 0 (only dw's correlations need it); each later size's Ŷ is made beside the
         * previous size's a-marginals, in the other half of Yhat; the sizes <= g not at all when
         * the forward's x̂ serves (yhat_at) */
        if (x.want_dw && !x.Xf) {
#pragma omp for schedule(static)
            for (long q = 0; q < (long)(d + 1) * h_kv; q++)
                if (!th->st)
                    th->st = yhat_item(p, th, &x, 0, q);
        }
        for (int m = 0; m <= G; m++) {
            long nu0 = p->E->bm->size_start[m], nnu = p->E->bm->size_start[m + 1] - nu0;
            long nnext = m < G && !(x.Xf && m + 1 <= p->g) ? (p->E->bm->size_start[m + 2] - nu0 - nnu) * (d + 1) * h_kv
                                                           : 0;
            /* α_f = (m c_m / c_{m-1}) α̂_f for every f of size m, and dV's transposed products
             * (columns dO_c/D̃ u_μ) are dK's: for c < d, dV takes accK's inverse transforms scaled
             * by vscale instead of accumulating its own */
            int vshare = m >= 1 && m <= p->g && p->poly[m - 1] != 0.0;
            double vscale = vshare ? m * p->poly[m] / p->poly[m - 1] : 0.0;
            /* the sums of this size's ν, per kv head (the slots past nnu stay unused) */
            size_t nacc = (size_t)nnu * (d + 1) * sl;
            for (int kv = 0; kv < h_kv; kv++) {
                memset(th->accK + nu_off(p, kv, 0), 0, sizeof(double) * nacc);
                if (m <= p->g && (!vshare || x.want_kappa))
                    memset(th->accV + nu_off(p, kv, 0), 0, sizeof(double) * nacc);
            }
            /* the thread's pairs [qa, qb) (by_pairs) or groups [u0, u1), by batches of groups: at
             * most MUBATCH, and TBATCH of their pairs in [qa, qb) unless one group alone */
            const long *gp = p->E->gpair;
            long u0 = mu_chunk(p, m, id, nth), u1 = mu_chunk(p, m, id + 1, nth), qa = gp[u0], qb = gp[u1];
            if (by_pairs(p, &x, m)) {
                long s0 = p->E->am->size_start[m], s1 = p->E->am->size_start[m + 1], np = gp[s1] - gp[s0];
                qa = gp[s0] + np * id / nth;
                qb = gp[s0] + np * (id + 1) / nth;
                for (u0 = s0; u0 < s1 && gp[u0 + 1] <= qa; u0++)
                    ;
                for (u1 = u0; u1 < s1 && gp[u1] < qb; u1++)
                    ;
            }
            for (long u = u0, ue; u < u1 && !th->st; u = ue) {
                long np = (gp[u + 1] < qb ? gp[u + 1] : qb) - (gp[u] > qa ? gp[u] : qa);
                for (ue = u + 1; ue < u1 && ue - u < MUBATCH; ue++) {
                    long more = (gp[ue + 1] < qb ? gp[ue + 1] : qb) - gp[ue];
                    if (np + more > p->tbatch)
                        break;
                    np += more;
                }
                th->st = do_mus(p, th, &x, u, ue, qa, qb, m, vshare, tQ, tdw);
            }
            long y0 = 0, y1 = 0;
            yhat_share(p, &x, m, id, nth, nnext, &y0, &y1);
            for (long q = y0; q < y1 && !th->st; q++)
                th->st = yhat_item(p, th, &x, m + 1, q);
#pragma omp barrier
            /* ν by contiguous shares, the same for every kv head and head count: each ν adds into
             * the same thread's part whatever h (heads are bit for bit one-head executes) */
            for (long v = nnu * id / nth; v < nnu * (id + 1) / nth && !th->st; v++)
                for (int kv = 0; kv < h_kv && !th->st; kv++)
                    th->st = do_nu(p, th, &x, nth, nu0 + v, kv, m, vshare, vscale, tK + kv * nd, tV + kv * nd,
                                   tkap ? tkap + (size_t)kv * n : NULL);
#pragma omp barrier
        }
    }
    long tr1 = 0;
    for (int t = 0; t < p->nthreads; t++) {
        st = st ? st : p->thr[t].st;
        tr1 += p->thr[t].ws->n_forward + p->thr[t].ws->n_inverse;
    }
    p->transforms = tr1 - tr0 + made;
    p->kv_transforms = made;
    p->forward_xhat = x.Xf && !made;
    if (st)
        return st;
    add_parts(p, &x, used, dQ, dK, dV, dw, kappa);
    return PR_OK;
}

int pr_backward_execute(pr_backward_plan *p, double *dQ, double *dK, double *dV, double *dw,
                        double *kappa, const double *Q, const double *K, const double *V,
                        const double *O, const double *lse, const double *dO)
{
    return pr_backward_execute_heads(p, dQ, dK, dV, dw, kappa, Q, K, V, O, lse, dO, 1, 1);
}
