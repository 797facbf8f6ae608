/* pr_dense: the dense reference backward (formulas in pr_dense.h), over the forward's tiles. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_dense_impl.h"

/* LOOP-mode gradients of one tile from dM: dq (n×d) += Σ_j dM·σw·K, dkt (d×BK, this key
 * block, transposed) += Σ_i dM·σw·Q, dwrev += dM·Q·K (σ is applied at the end) */
PR_CLONES
static void loop_backward(double *dq, double *dkt, double *dwrev, const double *dM, const pr_dense_prep_t *p,
                          int i0, int mi, int j0, int mj)
{
    int d = p->d;
    for (int r = 0; r < mi; r++) {
        int i = i0 + r;
        const double *mrow = dM + (size_t)r * BK;
        for (int k = 0; k < p->s; k++) {
            double q = p->Q[(size_t)i * d + p->a[k]];
            size_t off = k * p->L + rev_at(p, i, j0);
            const double *w = p->wrev + off;
            const double *kt = p->Kt + (size_t)p->b[k] * p->n + j0;
            double *dk = dkt + (size_t)p->b[k] * BK, *dw = dwrev ? dwrev + off : 0, sq = 0.0;
            for (int c = 0; c < mj; c++) {
                double t = mrow[c] * w[c];
                sq += t * kt[c];
                dk[c] += t * q;
            }
            if (dw)
                for (int c = 0; c < mj; c++)
                    dw[c] += mrow[c] * q * kt[c];
            dq[(size_t)i * d + p->a[k]] += sq;
        }
    }
}

typedef struct {
    const double *Q, *V, *lse, *dO, *rr;
    double *dV;
} bwd_in_t;

/* Backward on one tile: recomputes P from lse, adds Pᵀ dO to dV, forms dM (in dP) and
 * accumulates dq and dk: GEMM mode dq += dM·K' and dk += dMᵀ·(σQ') (dk is BK×d), LOOP mode
 * through loop_backward (dk is d×BK). */
static void backward_tile(const pr_dense_prep_t *p, const bwd_in_t *in, int i0, int mi, int j0, int mj,
                          double *S, double *dP, double *dq, double *dk, double *dwrev)
{
    int d = p->d;
    pr_dense_tile_scores_(S, p, i0, mi, j0, mj);
    for (int r = 0; r < mi; r++) {
        double *srow = S + (size_t)r * BK;
        if (!p->poly)
            pr_dense_row_bias_max_(srow, p, i0 + r, j0, mj);
        pr_dense_row_weights_(srow, p, i0 + r, j0, mj, in->lse[i0 + r]);
    }
    /* dV_J += Pᵀ dO_I;  dP = dO_I V_Jᵀ;  dM = P ∘ (dP - r) */
    const double *dOi = in->dO + (size_t)i0 * d;
    if (p->kern) {
        pr_dense_pv_(in->dV + (size_t)j0 * d, d, S, 1, BK, dOi, d, mj, d, mi);
        pr_dense_qk_(dP, BK, dOi, d, p->Vp + (size_t)j0 * d, mi, mj, d);
    } else {
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, mj, d, mi, 1.0, S, BK, dOi, d, 1.0,
                    in->dV + (size_t)j0 * d, d);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mi, mj, d, 1.0, dOi, d,
                    in->V + (size_t)j0 * d, d, 0.0, dP, BK);
    }
    for (int r = 0; r < mi; r++) {
        double ri = in->rr[i0 + r];
        double *prow = dP + (size_t)r * BK;
        const double *srow = S + (size_t)r * BK;
        for (int c = 0; c < mj; c++)
            prow[c] = srow[c] * (prow[c] - ri);
    }
    if (p->gemm && p->kern) {
        pr_dense_pv_(dq + (size_t)i0 * d, d, dP, BK, 1, p->Kf + (size_t)j0 * d, d, mi, d, mj);
        pr_dense_pv_(dk, d, dP, 1, BK, p->Qf + (size_t)i0 * d, d, mj, d, mi);
    } else if (p->gemm) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mi, d, mj, 1.0, dP, BK,
                    p->Kf + (size_t)j0 * d, d, 1.0, dq + (size_t)i0 * d, d);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, mj, d, mi, 1.0, dP, BK,
                    p->Qf + (size_t)i0 * d, d, 1.0, dk, d);
    } else {
        loop_backward(dq, dk, dwrev, dP, p, i0, mi, j0, mj);
    }
}

int pr_dense_backward(double *dQ, double *dK, double *dV, double *dw, const double *Q,
                      const double *K, const double *V, const pr_posw_t W, const double *O,
                      const double *lse, const double *dO, int n, int d,
                      const pr_attn_opts_t *opts)
{
    int st = pr_attn_check(Q, K, V, W, n, d, opts);
    if (st || (st = pr_dense_check_range_(Q, K, W, n, d, opts)))
        return st;
    size_t nd = (size_t)n * d;
    if (pr_vec_check_finite(O, nd) || pr_vec_check_finite(dO, nd) || pr_vec_check_finite(lse, n))
        return PR_ENONFINITE;
    pr_dense_prep_t p;
    double *rr = pr_dense_alloc_(n, 1);
    if (!rr)
        return PR_ENOMEM;
    if ((st = pr_dense_prep_init_(&p, Q, K, V, W, n, d, opts, dw != 0))) {
        pr_dense_prep_clear_(&p);
        free(rr);
        return st;
    }
    bwd_in_t in = {Q, V, lse, dO, rr, dV};
    size_t wlen = dw ? (size_t)W->s * p.L : 0;
    /* key blocks narrower than BK (down to 64) where BK would leave fewer than 2 per thread: at
     * n = 256 one block ran on one thread. Each key's sums run over the queries in the same
     * order whatever its block. */
    int bk = pr_dense_block_(n, BK, 64, 2), nkb = (n + bk - 1) / bk, nth = omp_get_max_threads(), saved;
    int shared = PR_OK;
    if (nth > nkb)
        nth = nkb;
    /* each thread owns whole key blocks (dK, dV rows) and keeps its own dQ and dw */
    double *dqall = pr_dense_alloc_(nd, nth), *dwall = dw ? pr_dense_alloc_(wlen, nth) : 0;
    if (!dqall || (dw && !dwall)) {
        free(dqall);
        free(dwall);
        free(rr);
        pr_dense_prep_clear_(&p);
        return PR_ENOMEM;
    }
    /* r_i = <dO_i, O_i>, dV = 0 and the threads' dQ = 0 here: a loop over the threads would add
     * a barrier, which on a loaded machine costs more than these O(n d) passes */
    for (int i = 0; i < n; i++) {
        double s = 0.0;
        for (int c = 0; c < d; c++)
            s += dO[(size_t)i * d + c] * O[(size_t)i * d + c];
        rr[i] = s;
    }
    memset(dV, 0, sizeof(double) * nd);
    memset(dqall, 0, sizeof(double) * nd * nth);
    if (dw)
        memset(dwall, 0, sizeof(double) * wlen * nth);
    pr_dense_blas_serial_begin_(&saved);
#pragma omp parallel num_threads(nth)
    {
        int t = omp_get_thread_num();
        double *S = pr_dense_alloc_(BQ, BK), *dP = pr_dense_alloc_(BQ, BK), *dk = pr_dense_alloc_(BK, d);
        double *dq = dqall + nd * t, *dwr = dw ? dwall + wlen * t : 0;
        int mine = S && dP && dk ? PR_OK : PR_ENOMEM;
        /* static: which key blocks add into a thread's dQ and dw, and so their bits, must not
         * depend on the scheduling (dynamic changed dQ from run to run) */
#pragma omp for schedule(static, 1)
        for (int jb = 0; jb < nkb; jb++) {
            if (mine)
                continue;
            int j0 = jb * bk, mj = n - j0 < bk ? n - j0 : bk;
            memset(dk, 0, sizeof(double) * BK * d);
            int ib0 = p.causal ? j0 / BQ : 0;
            for (int ib = ib0; ib * BQ < n; ib++) {
                int i0 = ib * BQ, mi = n - i0 < BQ ? n - i0 : BQ;
                backward_tile(&p, &in, i0, mi, j0, mj, S, dP, dq, dk, dwr);
            }
            /* GEMM mode: dk is (BK×d) dK' rows; LOOP mode: (d×BK), dK transposed */
            for (int c = 0; c < mj; c++)
                for (int e = 0; e < d; e++)
                    dK[(size_t)(j0 + c) * d + e] = p.gemm ? dk[(size_t)c * d + e] : dk[(size_t)e * BK + c];
        }
        pr_dense_set_status_(&shared, mine);
        free(S);
        free(dP);
        free(dk);
    }
    pr_dense_blas_serial_end_(saved);
    if (!shared) {
        /* dQ' = σ Σ_j dM K'_j;  dQ = R_iᵀ dQ', dK = R_jᵀ dK' (σ is already in σQ') */
        double sq = p.gemm ? opts->sigma : 1.0;
        for (size_t x = 0; x < nd; x++) {
            double s = 0.0;
            for (int t = 0; t < nth; t++)
                s += dqall[nd * t + x];
            dQ[x] = s * sq;
        }
        if (p.gemm && pr_posw_is_factorised(W)) {
            pr_dense_rotate_(dQ, dQ, W, -1);
            pr_dense_rotate_(dK, dK, W, -1);
        }
        if (dw)
            for (int k = 0; k < W->s; k++)
                for (size_t tt = 0; tt < p.L; tt++) {
                    double s = 0.0;
                    for (int t = 0; t < nth; t++)
                        s += dwall[wlen * t + k * p.L + tt];
                    /* dwrev accumulated dM·Q·K without σ (wrev carries σ, dw does not) */
                    dw[k * p.L + p.L - 1 - tt] = opts->sigma * s;
                }
    }
    /* sums of huge entries can overflow: refuse rather than return Inf */
    if (!shared && (pr_vec_check_finite(dQ, nd) || pr_vec_check_finite(dK, nd) || pr_vec_check_finite(dV, nd) ||
                    (dw && pr_vec_check_finite(dw, wlen))))
        shared = PR_EDOMAIN;
    free(dqall);
    free(dwall);
    free(rr);
    pr_dense_prep_clear_(&p);
    return shared;
}

