#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_expoly.h"
#include "pr_fast.h"
#include "pr_lowrank.h"

enum { BLOCK = 128 };   /* rows per block: the causal diagonal squares cost BLOCK/2 (d + g) per row */

int pr_lowrank_applies(const pr_posw_t W)
{
    return pr_posw_is_factorised(W) || W->kind == PR_POS_IDENTITY;
}

/* f[m] for the rows x[0..rows): f_root = 1, f_m = f_parent · x[last], then times coef (if any) */
static void features(double *f, const double *x, int rows, int d, const pr_fast_marg_t M,
                     const double *coef)
{
    long F = M->count;
    for (int i = 0; i < rows; i++) {
        double *fi = f + (size_t)i * F;
        const double *xi = x + (size_t)i * d;
        fi[0] = 1.0;
        for (long m = 1; m < F; m++)
            fi[m] = fi[M->parent[m]] * xi[M->last[m]];
        if (coef)
            for (long m = 0; m < F; m++)
                fi[m] *= coef[m];
    }
}

/* X block = [V | 1] rows r0 .. r0+rows */
static void xblock(double *X, const double *V, long r0, int rows, int d)
{
    for (int i = 0; i < rows; i++) {
        memcpy(X + (size_t)i * (d + 1), V + (size_t)(r0 + i) * d, sizeof(double) * d);
        X[(size_t)i * (d + 1) + d] = 1.0;
    }
}

double pr_lowrank_bytes(int n, int d, int g)
{
    double F = pr_fast_binom(d, g);
    return 8.0 * (F * (2.0 * BLOCK + d + 2) + 2.0 * n * d + BLOCK * 2.0 * (d + 1)) + F * (d + 24.0);
}

int pr_lowrank_execute(double *O, const double *Q, const double *K, const double *V,
                       const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts,
                       size_t mem_budget, long max_features)
{
    int st = pr_attn_check(Q, K, V, W, n, d, opts);
    if (st)
        return st;
    if (!opts->poly || !pr_lowrank_applies(W) || opts->beta)
        return PR_EINVAL;
    int g = opts->poly_degree, d1 = d + 1;
    /* the buffers within the budget before the feature tables are made */
    double bytes = pr_lowrank_bytes(n, d, g);
    if (!(bytes <= (double)mem_budget) || !(bytes < 0.5 * (double)SIZE_MAX))
        return PR_EBUDGET;
    pr_fast_marg_t M;
    if ((st = pr_fast_marg_init(M, d, g, max_features)))
        return st == PR_ESIZE ? PR_EBUDGET : st;
    long F = M->count;
    double *coef = malloc(sizeof(double) * F), *Z = calloc((size_t)F * d1, sizeof(double));
    double *Phi = malloc(sizeof(double) * F * BLOCK), *Psi = malloc(sizeof(double) * F * BLOCK);
    double *Qr = malloc(sizeof(double) * n * d), *Kr = malloc(sizeof(double) * n * d);
    double *Xb = malloc(sizeof(double) * BLOCK * d1), *Nb = malloc(sizeof(double) * BLOCK * d1);
    if (!coef || !Z || !Phi || !Psi || !Qr || !Kr || !Xb || !Nb) {
        st = PR_ENOMEM;
        goto done;
    }
    /* coef_m = c_|m| σ^|m| multinomial(m): multinomial(m) = multinomial(parent)·|m| / m_last */
    coef[0] = 1.0;
    for (long m = 1; m < F; m++)
        coef[m] = coef[M->parent[m]] * M->deg[m] / M->cnt[(size_t)m * d + M->last[m]];
    for (long m = 0; m < F; m++)
        coef[m] *= opts->poly[M->deg[m]] * pow(opts->sigma, M->deg[m]);
    if (W->kind == PR_POS_IDENTITY) {
        memcpy(Qr, Q, sizeof(double) * n * d);
        memcpy(Kr, K, sizeof(double) * n * d);
    } else {
        pr_rope_layout_t lay = W->kind == PR_POS_ROPE ? PR_ROPE_INTERLEAVED : PR_ROPE_NEOX;
        if ((st = pr_rope_rotate(Qr, Q, n, d, W->rope_base, lay, 1))
            || (st = pr_rope_rotate(Kr, K, n, d, W->rope_base, lay, 1)))
            goto done;
    }
    if (!opts->causal) {
        for (long r0 = 0; r0 < n; r0 += BLOCK) {
            int rows = n - r0 < BLOCK ? (int)(n - r0) : BLOCK;
            features(Psi, Kr + r0 * d, rows, d, M, NULL);
            xblock(Xb, V, r0, rows, d);
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)F, d1, rows, 1.0, Psi, (int)F,
                        Xb, d1, 1.0, Z, d1);
        }
    }
    for (long r0 = 0; r0 < n; r0 += BLOCK) {
        int rows = n - r0 < BLOCK ? (int)(n - r0) : BLOCK;
        features(Phi, Qr + r0 * d, rows, d, M, coef);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, d1, (int)F, 1.0, Phi, (int)F,
                    Z, d1, 0.0, Nb, d1);
        if (opts->causal) {
            /* the block's own lower triangle directly, then its rows join the prefix sum */
            xblock(Xb, V, r0, rows, d);
            for (int i = 0; i < rows; i++)
                for (int j = 0; j <= i; j++) {
                    double dot = 0.0;
                    for (int a = 0; a < d; a++)
                        dot += Qr[(r0 + i) * d + a] * Kr[(r0 + j) * d + a];
                    double A = pr_expoly_horner(opts->poly, g, opts->sigma * dot);
                    for (int c = 0; c < d1; c++)
                        Nb[(size_t)i * d1 + c] += A * Xb[(size_t)j * d1 + c];
                }
            features(Psi, Kr + r0 * d, rows, d, M, NULL);
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)F, d1, rows, 1.0, Psi, (int)F,
                        Xb, d1, 1.0, Z, d1);
        }
        for (int i = 0; i < rows; i++) {
            const double *r = Nb + (size_t)i * d1;
            if (!(r[d] > 0.0) || !isfinite(r[d])) {
                st = PR_EDOMAIN;
                goto done;
            }
            for (int c = 0; c < d; c++)
                O[(r0 + i) * d + c] = r[c] / r[d];
        }
    }
done:
    free(coef); free(Z); free(Phi); free(Psi); free(Qr); free(Kr); free(Xb); free(Nb);
    pr_fast_marg_clear(M);
    return st;
}
