#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_expoly.h"
#include "pr_expand.h"
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

/* a plan's buffers besides the features' table (coef_poly: its own copy of P) */
typedef struct {
    double *coef, *Z, *Phi, *Psi, *Qr, *Kr, *Xb, *Nb, *coef_poly;
} lr_bufs;

struct pr_lowrank_plan_s {
    int n, d;
    pr_pos_kind_t kind;         /* W's: a RoPE kind or the identity */
    double rope_base;
    pr_attn_opts_t opts;        /* the problem's, with poly the plan's copy */
    pr_expand_marg_t M;         /* the features: multisets of [d] of size <= g */
    lr_bufs b;
};

/* every buffer for F features through mem (nothing allocated when it is dry) */
static void bufs_alloc(lr_bufs *b, pr_mem_t mem, int n, int d, size_t F, int g)
{
    b->coef_poly = pr_mem_alloc(mem, (size_t)g + 1, sizeof(double));
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
    free(b->Nb); free(b->coef_poly);
}

double pr_lowrank_bytes(int n, int d, int g)
{
    double F = pr_expand_binom(d, g);
    if (!isfinite(F) || n < 1 || d < 1)
        return INFINITY;
    lr_bufs b;
    pr_mem_t mem;
    pr_mem_init(mem, 1);
    bufs_alloc(&b, mem, n, d, (size_t)F, g);
    return mem->bytes + pr_expand_marg_bytes(d, g, 0);
}

void pr_lowrank_needs(double *bytes, double *ops, int n, int d, int g)
{
    /* the plan's buffers; per query head two dgemms of n × F × (d+1) */
    *bytes = pr_lowrank_bytes(n, d, g);
    *ops = 4.0 * n * pr_expand_binom(d, g) * (d + 1.0);
}

/* Z = Σ_j ψ(k'_j) [V_j | 1]ᵀ over every key (the unmasked case: one per kv head) */
static void keys_sum(const pr_lowrank_plan_t *P, const double *V)
{
    const lr_bufs *b = &P->b;
    int n = P->n, d = P->d, d1 = d + 1;
    long F = P->M->count;
    memset(b->Z, 0, sizeof(double) * (size_t)F * d1);
    for (long r0 = 0; r0 < n; r0 += BLOCK) {
        int rows = n - r0 < BLOCK ? (int)(n - r0) : BLOCK;
        features(b->Psi, b->Kr + r0 * d, rows, d, P->M, NULL);
        xblock(b->Xb, V, r0, rows, d);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)F, d1, rows, 1.0, b->Psi, (int)F, b->Xb, d1, 1.0,
                    b->Z, d1);
    }
}

/* Ã[V | 1] rows by blocks, then O; unmasked, Z holds keys_sum's; causal, the prefix sums are
 * built here */
static int rows_run(double *O, const pr_lowrank_plan_t *P, const double *V)
{
    const lr_bufs *b = &P->b;
    int n = P->n, d = P->d, g = P->opts.poly_degree, d1 = d + 1;
    long F = P->M->count;
    const pr_attn_opts_t *opts = &P->opts;
    if (opts->causal)
        memset(b->Z, 0, sizeof(double) * (size_t)F * d1);
    for (long r0 = 0; r0 < n; r0 += BLOCK) {
        int rows = n - r0 < BLOCK ? (int)(n - r0) : BLOCK;
        features(b->Phi, b->Qr + r0 * d, rows, d, P->M, b->coef);
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
                    double A = pr_expoly_horner(b->coef_poly, g, opts->sigma * dot);
                    for (int c = 0; c < d1; c++)
                        b->Nb[(size_t)i * d1 + c] += A * b->Xb[(size_t)j * d1 + c];
                }
            features(b->Psi, b->Kr + r0 * d, rows, d, P->M, NULL);
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

int pr_lowrank_rotate(double *Xr, const double *X, int n, int d, pr_pos_kind_t kind, double rope_base,
                      int sign)
{
    if (kind == PR_POS_IDENTITY) {
        if (Xr != X && n > 0 && d > 0)
            memmove(Xr, X, sizeof(double) * (size_t)n * (size_t)d);
        return PR_OK;
    }
    if (kind != PR_POS_ROPE && kind != PR_POS_ROPE_NEOX)
        return PR_EINVAL;
    return pr_rope_rotate(Xr, X, n, d, rope_base, kind == PR_POS_ROPE ? PR_ROPE_INTERLEAVED : PR_ROPE_NEOX, sign);
}

/* X rotated into Xr (RoPE), or copied (W = I) */
static int rotate(double *Xr, const pr_lowrank_plan_t *P, const double *X)
{
    return pr_lowrank_rotate(Xr, X, P->n, P->d, P->kind, P->rope_base, 1);
}

int pr_lowrank_plan(pr_lowrank_plan_t **plan, const pr_posw_t W, const pr_attn_opts_t *opts,
                    size_t mem_budget, long max_features)
{
    *plan = NULL;
    int n = W->n, d = W->d;
    if (!opts->poly || !pr_lowrank_applies(W) || opts->beta || opts->poly_degree < 0)
        return PR_EINVAL;
    int g = opts->poly_degree;
    /* the buffers within the budget before the feature tables are made */
    double bytes = pr_lowrank_bytes(n, d, g);
    if (!(bytes <= (double)mem_budget) || !(bytes < 0.5 * (double)SIZE_MAX))
        return PR_EBUDGET;
    pr_lowrank_plan_t *P = calloc(1, sizeof *P);
    if (!P)
        return PR_ENOMEM;
    int st = pr_expand_marg_init(P->M, d, g, 0, max_features);
    if (st) {
        free(P);
        return st;
    }
    P->n = n;
    P->d = d;
    P->opts = *opts;
    P->kind = W->kind;
    P->rope_base = W->rope_base;
    pr_mem_t mem;
    pr_mem_init(mem, 0);
    bufs_alloc(&P->b, mem, n, d, (size_t)P->M->count, g);
    if ((st = pr_mem_status(mem))) {
        pr_lowrank_destroy(P);
        return st;
    }
    /* the plan keeps its own P; φ_m's coefficient c_|m| σ^|m| multinomial(m) (math.md §6) */
    memcpy(P->b.coef_poly, opts->poly, sizeof(double) * (g + 1));
    P->opts.poly = P->b.coef_poly;
    pr_expand_marg_coefs(P->b.coef, P->M, PR_EXPAND_ALPHA, opts->poly, opts->sigma);
    *plan = P;
    return PR_OK;
}

int pr_lowrank_execute_heads(double *O, pr_lowrank_plan_t *P, int h, int h_kv, const double *Q,
                             const double *K, const double *V)
{
    if (h < 1 || h_kv < 1 || h % h_kv)
        return PR_EINVAL;
    size_t nd = (size_t)P->n * P->d;
    if (pr_vec_check_finite(Q, nd * h) || pr_vec_check_finite(K, nd * h_kv) || pr_vec_check_finite(V, nd * h_kv))
        return PR_ENONFINITE;
    int group = h / h_kv, st = PR_OK;
    for (int k = 0; k < h_kv && !st; k++) {
        const double *Vk = V + k * nd;
        if ((st = rotate(P->b.Kr, P, K + k * nd)))
            break;
        /* unmasked, the keys' sum serves the whole group of query heads */
        if (!P->opts.causal)
            keys_sum(P, Vk);
        for (int q = k * group; q < (k + 1) * group && !st; q++)
            if (!(st = rotate(P->b.Qr, P, Q + q * nd)))
                st = rows_run(O + q * nd, P, Vk);
    }
    return st;
}

void pr_lowrank_destroy(pr_lowrank_plan_t *P)
{
    if (!P)
        return;
    bufs_free(&P->b);
    pr_expand_marg_clear(P->M);
    free(P);
}

int pr_lowrank_execute(double *O, const double *Q, const double *K, const double *V,
                       const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts,
                       size_t mem_budget, long max_features)
{
    int st = pr_attn_check(Q, K, V, W, n, d, opts);
    if (st)
        return st;
    pr_lowrank_plan_t *P;
    if ((st = pr_lowrank_plan(&P, W, opts, mem_budget, max_features)))
        return st;
    st = pr_lowrank_execute_heads(O, P, 1, 1, Q, K, V);
    pr_lowrank_destroy(P);
    return st;
}
