/* pr_dense: the dense reference's a-priori error estimate (pr_dense_error_est). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_dense_impl.h"

/* gap[i] = (largest - second largest) of the computed M_ij + β_{i-j} over the unmasked keys
 * of row i (+inf with one key), by the forward's own score tiles; cnt[i] = that number of keys */
static int row_gaps(double *gap, int *cnt, const pr_dense_prep_t *p)
{
    int n = p->n, nb = (n + BQ - 1) / BQ, saved, shared = PR_OK;
    pr_dense_blas_serial_begin_(&saved);
#pragma omp parallel
    {
        double *S = pr_dense_alloc_(BQ, BK);
        int mine = S ? PR_OK : PR_ENOMEM;
#pragma omp for schedule(dynamic, 1)
        for (int ib = 0; ib < nb; ib++) {
            if (mine)
                continue;
            int i0 = ib * BQ, mi = n - i0 < BQ ? n - i0 : BQ;
            double m1[BQ], m2[BQ];
            for (int r = 0; r < mi; r++) {
                m1[r] = m2[r] = -INFINITY;
                cnt[i0 + r] = 0;
            }
            int jend = key_end(p, i0, mi);
            for (int j0 = 0; j0 < jend; j0 += BK) {
                int mj = n - j0 < BK ? n - j0 : BK;
                pr_dense_tile_scores_(S, p, i0, mi, j0, mj);
                for (int r = 0; r < mi; r++) {
                    double *srow = S + (size_t)r * BK;
                    int len = row_len(p, i0 + r, j0, mj);
                    pr_dense_row_bias_max_(srow, p, i0 + r, j0, mj);
                    for (int c = 0; c < len; c++) {
                        double x = srow[c];
                        if (x > m1[r]) {
                            m2[r] = m1[r];
                            m1[r] = x;
                        } else if (x > m2[r]) {
                            m2[r] = x;
                        }
                    }
                    cnt[i0 + r] += len;
                }
            }
            for (int r = 0; r < mi; r++)
                gap[i0 + r] = cnt[i0 + r] > 1 ? m1[r] - m2[r] : INFINITY;
        }
        pr_dense_set_status_(&shared, mine);
        free(S);
    }
    pr_dense_blas_serial_end_(saved);
    return shared;
}

/* Σ_j |ΔP_ij| ≤ τ_i from each row's score gap (see pr_dense_error_est); returns max_i τ_i, or a
 * negative status */
static double gap_tau(const double *Q, const double *K, const pr_posw_struct *W, int n, int d,
                      const pr_attn_opts_t *opts, double eM, double apriori, double rounding, int *st)
{
    pr_dense_prep_t p;
    double *gap = pr_dense_alloc_(n, 1), tau = 0.0;
    int *cnt = malloc(sizeof(int) * (size_t)n);
    *st = gap && cnt ? pr_dense_prep_init_(&p, Q, K, 0, W, n, d, opts, 0) : PR_ENOMEM;
    if (!*st)
        *st = row_gaps(gap, cnt, &p);
    if (gap && cnt)
        pr_dense_prep_clear_(&p);
    for (int i = 0; !*st && i < n; i++) {
        double t = cnt[i] > 1 ? 4.0 * (cnt[i] - 1) * exp(4.0 * eM - gap[i]) : 0.0;
        tau = fmax(tau, fmin(apriori, t + rounding));
    }
    free(gap);
    free(cnt);
    return tau;
}

/* Error estimate of the dense reference (u = 2^-53, γ_k ≈ k u to first order; the sum of the
 * terms is multiplied by 1.01 for the second-order ones).
 *   Scores. S = σ Σ_k max|Q_{a_k}| max(1, max_ℓ |w_k|) max|K_{b_k}| bounds Σ_k |σ Q w K|. The
 *   products and the sum of s terms (LOOP) or the rotation and dot product of d terms (GEMM)
 *   cost γ_{s+3} S; σ's rounding 2u S. RoPE against the real angles: θ̂ = pow(base, fl(-2k/d))
 *   has relative error (|ln θ| + 2)u (pow within one ulp, 2u), the angle fl(mθ̂) (|ln θ| + 3)u,
 *   so |Δ(mθ)| ≤ 3.4|m|u (θ|ln θ| ≤ 1/e) and |Δcos|, |Δsin| ≤ (3.4|m| + 2)u with |m| < n; a
 *   rotated entry (GEMM) is then off by (3.4n + 4)u (|x| + |y|) of its pair, a table entry (LOOP)
 *   by (3.4n + 2)u, so the scores by ≤ 4(3.4n + 4)u S. Adding β, the row shift and exp's
 *   reduction: 4u(S + max|β|). So |ΔM| ≤ ε_M = u (S (s + 10 + [RoPE] (14n + 16)) + 4 max|β|).
 *   Weights. Each e^{M+β-m} has relative error ρ = expm1(ε_M) + (n/128 + 8)u (exp: ≤ 1.1u with
 *   AVX-512, pr_dense_kernel.c, ≤ 2.7u for vexp_sum, pr_dense_tile.c; tile rescalings 2u each, n/BK of
 *   them; the products' sums are sequential, in the kernels as in OpenBLAS); the row sum γ_n more, so P̂_ij = P_ij(1 + δ), |δ| ≤ τ_rel = 2ρ + (n + 2)u, and
 *   Σ_j |ΔP_ij| ≤ τ = min(2, τ_rel) (two probability vectors). A posteriori, when that is not
 *   small: with g_i the gap between the two largest computed M_ij + β of row i (n_i keys), the
 *   true and computed maxima are the same key once g_i > 4ε_M, the others' weights relative to
 *   it are ≤ (n_i - 1)e^{-(g_i - 4ε_M)} = ρ_i in both, so Σ_j |ΔP_ij| ≤ 2(ρ_i + ρ_i) plus the
 *   rounding 2(n/128 + n + 10)u: τ = max_i of the smaller bound (one more pass of score tiles).
 *   O = P V (γ_n, and the division): |ΔO| ≤ (τ + (n + 3)u) ‖V‖∞, and ≤ 2‖V‖∞ + that rounding
 *   (O is a convex combination of rows of V).
 *   Backward, with a_i = ‖dO_i‖₁, A = max a_i, G = ‖V‖∞ + ‖O‖∞ ≥ |dO_i·V_j - r_i| / a_i:
 *   dO_i·V_j - r_i has error ≤ a_i η, η = (d + 1)u G + |ΔO|; dM_ij = P_ij(…) then has
 *   Σ_j |ΔdM_ij| ≤ a_i κ_row, κ_row = η + (τ + 2u) G, and Σ_i |ΔdM_ij| (any column, any
 *   diagonal) ≤ A κ_col, κ_col = n (η + (min(1, τ_rel) + 2u) G).
 *   ω_Q = max_{a,ℓ} Σ_{k: a_k = a} |w_k(ℓ)| max|K_{b_k}| (ω_K likewise), c_Q = max_a Σ_{k: a_k = a}
 *   max|K_{b_k}| (c_K likewise), ε_w = [RoPE] (11n + 12)u the table's error (LOOP) or the
 *   rotated K' (Q') and the rotation back of dQ' (dK') (GEMM: 3(3.4n + 4)u):
 *     |ΔdQ| ≤ σ A (ω_Q κ_row + 3 G (ε_w c_Q + (n + s + 8)u ω_Q))   (row sums: Σ_j |dM_ij| ≤ a_i G (1 + τ))
 *     |ΔdK| ≤ σ A (ω_K κ_col + 3 n G (ε_w c_K + (n + s + 8)u ω_K))
 *     |ΔdV| ≤ n max|dO| (min(1, τ_rel) + (n + 2)u)
 *     |Δdw| ≤ σ max_k(max|Q_{a_k}| max|K_{b_k}|) A (κ_col + 3 n (n + 8)u G). */
int pr_dense_error_est(pr_dense_err_t *err, const double *Q, const double *K, const double *V,
                       const pr_posw_t W, const double *O, const double *dO, int n, int d,
                       const pr_attn_opts_t *opts)
{
    int st = pr_attn_check(Q, K, V, W, n, d, opts);
    if (st)
        return st;
    if (opts->poly)
        return PR_EINVAL;
    size_t nd = (size_t)n * d, L = 2 * (size_t)n - 1;
    if (pr_vec_check_finite(O, nd) || (dO && pr_vec_check_finite(dO, nd)))
        return PR_ENONFINITE;
    double *mq = calloc(4 * (size_t)d, sizeof(double));
    if (!mq)
        return PR_ENOMEM;
    double *mk = mq + d, *accq = mq + 2 * (size_t)d, *acck = mq + 3 * (size_t)d;
    for (size_t i = 0; i < nd; i++) {
        mq[i % d] = fmax(mq[i % d], fabs(Q[i]));
        mk[i % d] = fmax(mk[i % d], fabs(K[i]));
    }
    const double u = 0x1p-53, sigma = opts->sigma;
    int rope = pr_posw_is_factorised(W);
    double S = 0.0, qk = 0.0, wq = 0.0, wk = 0.0, cq = 0.0, ck = 0.0, bmax = 0.0;
    for (int k = 0; k < W->s; k++) {
        double wm = pr_vec_max_abs(pr_posw_seq(W, k), L);
        S += mq[W->a[k]] * fmax(1.0, wm) * mk[W->b[k]];
        qk = fmax(qk, mq[W->a[k]] * mk[W->b[k]]);
    }
    S *= sigma;
    /* ω_Q, ω_K over offsets, then c_Q, c_K (ℓ = n: no offset, |w| taken as 1) */
    for (size_t l = 0; l <= L; l++) {
        memset(accq, 0, sizeof(double) * 2 * (size_t)d);
        for (int k = 0; k < W->s; k++) {
            double w = l < L ? fabs(W->w[(size_t)k * L + l]) : 1.0;
            accq[W->a[k]] += w * mk[W->b[k]];
            acck[W->b[k]] += mq[W->a[k]] * w;
        }
        for (int a = 0; a < d; a++) {
            if (l < L) {
                wq = fmax(wq, accq[a]);
                wk = fmax(wk, acck[a]);
            } else {
                cq = fmax(cq, accq[a]);
                ck = fmax(ck, acck[a]);
            }
        }
    }
    free(mq);
    if (opts->beta)
        bmax = pr_vec_max_abs(opts->beta, L);
    double eM = u * (S * (W->s + 10.0 + (rope ? 14.0 * n + 16.0 : 0.0)) + 4.0 * bmax);
    double rho = expm1(eM) + (n / 128.0 + 8.0) * u;
    double trel = 2.0 * rho + (n + 2.0) * u, tau = fmin(2.0, trel);
    if (tau > 0x1p-20) {
        tau = gap_tau(Q, K, W, n, d, opts, eM, tau, 2.0 * (n / 128.0 + n + 10.0) * u, &st);
        if (st)
            return st;
    }
    double vn = pr_vec_max_abs(V, nd), on = pr_vec_max_abs(O, nd);
    err->score = eM;
    err->o = 1.01 * (tau + (n + 3.0) * u) * vn;
    err->dq = err->dk = err->dv = err->dw = NAN;
    if (dO) {
        double A = 0.0, G = vn + on, ew = rope ? (11.0 * n + 12.0) * u : 0.0;
        for (int i = 0; i < n; i++) {
            double a = 0.0;
            for (int c = 0; c < d; c++)
                a += fabs(dO[(size_t)i * d + c]);
            A = fmax(A, a);
        }
        double eta = (d + 1.0) * u * G + err->o;
        double krow = eta + (tau + 2.0 * u) * G, kcol = n * (eta + (fmin(1.0, tau) + 2.0 * u) * G);
        double acc = (n + W->s + 8.0) * u;
        err->dq = 1.01 * sigma * A * (wq * krow + 3.0 * G * (ew * cq + acc * wq));
        err->dk = 1.01 * sigma * A * (wk * kcol + 3.0 * n * G * (ew * ck + acc * wk));
        err->dv = 1.01 * n * pr_vec_max_abs(dO, nd) * (fmin(1.0, tau) + (n + 2.0) * u);
        err->dw = 1.01 * sigma * qk * A * (kcol + 3.0 * n * (n + 8.0) * u * G);
    }
    return PR_OK;
}
