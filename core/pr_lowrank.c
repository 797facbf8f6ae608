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

/* f[m] for the rows x[0..rows): f_root = 1, f_m = f_parent · x[last] (pr_expand's parents come
 * first), then times coef (if any) */
static void features(double *f, const double *x, int rows, int d, const pr_expand_marg_t M,
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

/* pr_lowrank_execute's buffers besides the features' table */
typedef struct {
    double *coef, *Z, *Phi, *Psi, *Qr, *Kr, *Xb, *Nb;
} lr_bufs;

/* every buffer for F features through mem (nothing allocated when it is dry) */
static void bufs_alloc(lr_bufs *b, pr_mem_t mem, int n, int d, size_t F)
{
    size_t d1 = (size_t)d + 1, nd = (size_t)n * d;
    b->coef = pr_mem_alloc(mem, F, sizeof(double));
    b->Z = pr_mem_zalloc(mem, F, d1 * sizeof(double));
    b->Phi = pr_mem_alloc(mem, F, BLOCK * sizeof(double));
    b->Psi = pr_mem_alloc(mem, F, BLOCK * sizeof(double));
    b->Qr = pr_mem_alloc(mem, nd, sizeof(double));
    b->Kr = pr_mem_alloc(mem, nd, sizeof(double));
    b->Xb = pr_mem_alloc(mem, BLOCK * d1, sizeof(double));
    b->Nb = pr_mem_alloc(mem, BLOCK * d1, sizeof(double));
}

static void bufs_free(lr_bufs *b)
{
    free(b->coef); free(b->Z); free(b->Phi); free(b->Psi); free(b->Qr); free(b->Kr); free(b->Xb);
    free(b->Nb);
}

double pr_lowrank_bytes(int n, int d, int g)
{
    double F = pr_expand_binom(d, g);
    if (!isfinite(F) || n < 1 || d < 1)
        return INFINITY;
    lr_bufs b;
    pr_mem_t mem;
    pr_mem_init(mem, 1);
    bufs_alloc(&b, mem, n, d, (size_t)F);
    return mem->bytes + pr_expand_marg_bytes(d, g, 0);
}

/* Ã[V | 1] rows by blocks, then O; the features of K' summed into Z first unless causal */
static int lowrank_run(double *O, const lr_bufs *b, const pr_expand_marg_t M, const double *V, int n,
                       int d, const pr_attn_opts_t *opts)
{
    int g = opts->poly_degree, d1 = d + 1;
    long F = M->count;
    if (!opts->causal) {
        for (long r0 = 0; r0 < n; r0 += BLOCK) {
            int rows = n - r0 < BLOCK ? (int)(n - r0) : BLOCK;
            features(b->Psi, b->Kr + r0 * d, rows, d, M, NULL);
            xblock(b->Xb, V, r0, rows, d);
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)F, d1, rows, 1.0, b->Psi, (int)F,
                        b->Xb, d1, 1.0, b->Z, d1);
        }
    }
    for (long r0 = 0; r0 < n; r0 += BLOCK) {
        int rows = n - r0 < BLOCK ? (int)(n - r0) : BLOCK;
        features(b->Phi, b->Qr + r0 * d, rows, d, M, b->coef);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, d1, (int)F, 1.0, b->Phi, (int)F,
                    b->Z, d1, 0.0, b->Nb, d1);
        if (opts->causal) {
            /* the block's own lower triangle directly, then its rows join the prefix sum */
            xblock(b->Xb, V, r0, rows, d);
            for (int i = 0; i < rows; i++)
                for (int j = 0; j <= i; j++) {
                    double dot = 0.0;
                    for (int a = 0; a < d; a++)
                        dot += b->Qr[(r0 + i) * d + a] * b->Kr[(r0 + j) * d + a];
                    double A = pr_expoly_horner(opts->poly, g, opts->sigma * dot);
                    for (int c = 0; c < d1; c++)
                        b->Nb[(size_t)i * d1 + c] += A * b->Xb[(size_t)j * d1 + c];
                }
            features(b->Psi, b->Kr + r0 * d, rows, d, M, NULL);
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)F, d1, rows, 1.0, b->Psi, (int)F,
                        b->Xb, d1, 1.0, b->Z, d1);
        }
        for (int i = 0; i < rows; i++) {
            const double *r = b->Nb + (size_t)i * d1;
            if (!(r[d] > 0.0) || !isfinite(r[d]))
                return PR_EDOMAIN;
            for (int c = 0; c < d; c++)
                O[(r0 + i) * d + c] = r[c] / r[d];
        }
    }
    return PR_OK;
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
    int g = opts->poly_degree;
    /* the buffers within the budget before the feature tables are made */
    double bytes = pr_lowrank_bytes(n, d, g);
    if (!(bytes <= (double)mem_budget) || !(bytes < 0.5 * (double)SIZE_MAX))
        return PR_EBUDGET;
    pr_expand_marg_t M;
    if ((st = pr_expand_marg_init(M, d, g, 0, max_features)))
        return st;
    lr_bufs b;
    pr_mem_t mem;
    pr_mem_init(mem, 0);
    bufs_alloc(&b, mem, n, d, (size_t)M->count);
    if ((st = pr_mem_status(mem)))
        goto done;
    /* φ_m's coefficient c_|m| σ^|m| multinomial(m) (math.md §6) */
    pr_expand_marg_coefs(b.coef, M, PR_EXPAND_ALPHA, opts->poly, opts->sigma);
    if (W->kind == PR_POS_IDENTITY) {
        memcpy(b.Qr, Q, sizeof(double) * n * d);
        memcpy(b.Kr, K, sizeof(double) * n * d);
    } else {
        pr_rope_layout_t lay = W->kind == PR_POS_ROPE ? PR_ROPE_INTERLEAVED : PR_ROPE_NEOX;
        if ((st = pr_rope_rotate(b.Qr, Q, n, d, W->rope_base, lay, 1))
            || (st = pr_rope_rotate(b.Kr, K, n, d, W->rope_base, lay, 1)))
            goto done;
    }
    st = lowrank_run(O, &b, M, V, n, d, opts);
done:
    bufs_free(&b);
    pr_expand_marg_clear(M);
    return st;
}
