/* The fast backward for factorised W: the low-rank path (docs/math.md §6, §7).
 *
 * With q'_i = R_i Q_i, k'_j = R_j K_j (RoPE; the identity for W = I), M_ij = σ q'_i·k'_j and
 * P(M_ij) = Σ_α α_α q'^α_i k'^α_j over the features α (multisets of the d coordinates, |α| ≤ g:
 * pr_expand's marginal order, the forward's). The backward's degree g+1 features carry α̂_α as
 * the FFT path's terms do (pr_backward.c's derivation, (2)):
 *   dQ'_ia = Σ_α α̂_α ∂(q'^α)/∂q'_a (i) Σ_c x_c(i) S_α,c(i),  S_α,c(i) = Σ_{j seen by i} y_c(j) k'^α_j,
 *   dK'_jb = Σ_α α̂_α ∂(k'^α)/∂k'_b (j) Σ_c y_c(j) T_α,c(j),  T_α,c(j) = Σ_{i seeing j} x_c(i) q'^α_i,
 *   dV_jc = Σ_α α_α k'^α_j T_α,c(j) (x_c = dO_c/D̃ there),
 * with the causal mask as prefix sums over j and suffix sums over i. */
#include <math.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_lowrank.h"
#include "pr_expand.h"
#include "pr_mem.h"
#include "pr_backward_impl.h"

/* The path's buffers, for F features. */
typedef struct {
    long F;
    long *drop;             /* F × d: the feature less one copy of coordinate a, or -1 */
    double *alpha, *ahat;   /* F: α_α (0 for |α| = g+1), α̂_α (0 for α = ∅) */
    double *S, *T;          /* F × (d+1), F × (d+2): the running sums S_α,c and T_α,c */
    double *mon;            /* F: one row's monomials */
    double *Qr, *Kr;        /* n × d: the rotated Q and K */
    double *xc;             /* d+2: one row's x_c (dO_c/D̃, -r/D̃, ‖dO‖₁/D̃) */
    double *rinv;           /* n: 1/D̃ */
    unsigned char *cur;     /* d: a feature less one coordinate */
} lr_bufs;

/* Every buffer through M (a dry M counts them: pr_backward_needs). */
static int lr_buffers(lr_bufs *b, pr_mem_t M, int n, int d, long F)
{
    size_t nd = (size_t)n * d;
    b->F = F;
    b->drop = pr_mem_alloc(M, (size_t)F, sizeof(long) * d);
    b->alpha = pr_mem_alloc(M, (size_t)F, sizeof(double));
    b->ahat = pr_mem_alloc(M, (size_t)F, sizeof(double));
    b->S = pr_mem_zalloc(M, (size_t)F, sizeof(double) * (d + 1));
    b->T = pr_mem_zalloc(M, (size_t)F, sizeof(double) * (d + 2));
    b->mon = pr_mem_alloc(M, (size_t)F, sizeof(double));
    b->Qr = pr_mem_alloc(M, nd, sizeof(double));
    b->Kr = pr_mem_alloc(M, nd, sizeof(double));
    b->xc = pr_mem_alloc(M, (size_t)d + 2, sizeof(double));
    b->rinv = pr_mem_alloc(M, (size_t)n, sizeof(double));
    b->cur = pr_mem_alloc(M, (size_t)d, 1);
    return pr_mem_status(M);
}

static void lr_free(lr_bufs *b)
{
    free(b->drop); free(b->alpha); free(b->ahat); free(b->S); free(b->T); free(b->mon);
    free(b->Qr); free(b->Kr); free(b->xc); free(b->rinv); free(b->cur);
}

double pr_backward_lowrank_bytes_(int n, int d, int g)
{
    double F = pr_expand_binom(d, g + 1);   /* +Inf past 2^62; past 2^53 only a count to refuse */
    if (!isfinite(F))
        return INFINITY;
    lr_bufs b;
    pr_mem_t M;
    pr_mem_init(M, 1);
    lr_buffers(&b, M, n, d, (long)F);
    return M->bytes + pr_expand_marg_bytes(d, g, 1);
}

/* mon[α] = Π x_a^{α_a} for every feature, each from its parent (the feature less its last value) */
static void monomials(double *mon, const double *x, const pr_expand_marg_t Fm)
{
    mon[0] = 1.0;
    for (long t = 1; t < Fm->count; t++)
        mon[t] = mon[Fm->parent[t]] * x[Fm->last[t]];
}

/* drop[t][a] = the feature t less one copy of a (-1 if it has none); the coefficients */
static void lr_features(lr_bufs *b, const pr_expand_marg_t Fm, const pr_attn_opts_t *opts)
{
    int d = Fm->D;
    unsigned char *x = b->cur;
    for (long t = 0; t < Fm->count; t++)
        for (int a = 0; a < d; a++) {
            const unsigned char *f = Fm->cnt + (size_t)t * d;
            long *dr = b->drop + (size_t)t * d + a;
            *dr = -1;
            if (!f[a])
                continue;
            if (a == Fm->last[t]) {
                *dr = Fm->parent[t];
                continue;
            }
            memcpy(x, f, (size_t)d);
            x[a]--;
            *dr = pr_expand_marg_find(Fm, x);
        }
    pr_expand_marg_coefs(b->alpha, Fm, PR_EXPAND_ALPHA, opts->poly, opts->sigma);
    pr_expand_marg_coefs(b->ahat, Fm, PR_EXPAND_ALPHA_HAT, opts->poly, opts->sigma);
}

/* S_α += [V_j | 1] k'^α_j */
static void add_key(lr_bufs *b, const pr_expand_marg_t Fm, const double *V, int j, int d)
{
    monomials(b->mon, b->Kr + (size_t)j * d, Fm);
    for (long t = 0; t < b->F; t++) {
        double *St = b->S + t * (d + 1);
        for (int c = 0; c < d; c++)
            St[c] += V[(size_t)j * d + c] * b->mon[t];
        St[d] += b->mon[t];
    }
}

/* T_α += x(i) q'^α_i */
static void add_query(lr_bufs *b, const pr_expand_marg_t Fm, const double *dO, const double *O, int i,
                      int d)
{
    bw_xcols(b->xc, 1, dO, O, b->rinv[i], i, d);
    monomials(b->mon, b->Qr + (size_t)i * d, Fm);
    for (long t = 0; t < b->F; t++)
        for (int c = 0; c < d + 2; c++)
            b->T[t * (d + 2) + c] += b->xc[c] * b->mon[t];
}

/* Rows in order (the keys each sees summed in S): D̃ when lse is NULL, and dQ'. */
static int lr_queries(lr_bufs *b, double *dQ, const pr_expand_marg_t Fm, const double *V,
                      const double *O, const double *lse, const double *dO, int n, int d, int causal)
{
    const unsigned char *mono = Fm->cnt;
    if (!causal)
        for (int j = 0; j < n; j++)
            add_key(b, Fm, V, j, d);
    for (int i = 0; i < n; i++) {
        if (causal)
            add_key(b, Fm, V, i, d);
        monomials(b->mon, b->Qr + (size_t)i * d, Fm);
        if (lse)
            b->rinv[i] = exp(-lse[i]);
        else {
            /* D̃_i = Σ_α α_α q'^α_i Σ_j k'^α_j over the j row i sees */
            double D = 0.0;
            for (long t = 0; t < b->F; t++)
                D += b->alpha[t] * b->mon[t] * b->S[t * (d + 1) + d];
            if (!(D > 0.0) || !isfinite(D))
                return PR_EDOMAIN;
            b->rinv[i] = 1.0 / D;
        }
        bw_xcols(b->xc, 1, dO, O, b->rinv[i], i, d);
        for (long t = 1; t < b->F; t++) {
            double z = 0.0;
            for (int c = 0; c <= d; c++)
                z += b->xc[c] * b->S[t * (d + 1) + c];
            z *= b->ahat[t];
            for (int a = 0; a < d; a++)
                if (b->drop[t * d + a] >= 0)
                    dQ[(size_t)i * d + a] += z * mono[(size_t)t * d + a] * b->mon[b->drop[t * d + a]];
        }
    }
    return PR_OK;
}

/* Columns in reverse (the rows that see each summed in T): dV, κ and dK'. */
static void lr_keys(lr_bufs *b, double *dK, double *dV, double *kappa, const pr_expand_marg_t Fm,
                    const double *V, const double *O, const double *dO, int n, int d, int causal)
{
    const unsigned char *mono = Fm->cnt;
    if (!causal)
        for (int i = 0; i < n; i++)
            add_query(b, Fm, dO, O, i, d);
    for (int j = n - 1; j >= 0; j--) {
        if (causal)
            add_query(b, Fm, dO, O, j, d);
        monomials(b->mon, b->Kr + (size_t)j * d, Fm);
        double kap = 0.0;
        for (long t = 0; t < b->F; t++) {
            const double *Tt = b->T + t * (d + 2);
            double mt = b->mon[t];
            if (b->alpha[t] != 0.0) {
                for (int c = 0; c < d; c++)
                    dV[(size_t)j * d + c] += b->alpha[t] * mt * Tt[c];
                kap += b->alpha[t] * mt * Tt[d + 1];
            }
            if (t == 0)
                continue;
            double z = Tt[d];
            for (int c = 0; c < d; c++)
                z += V[(size_t)j * d + c] * Tt[c];
            z *= b->ahat[t];
            for (int a = 0; a < d; a++)
                if (b->drop[t * d + a] >= 0)
                    dK[(size_t)j * d + a] += z * mono[(size_t)t * d + a] * b->mon[b->drop[t * d + a]];
        }
        if (kappa)
            kappa[j] = kap;
    }
}

/* One query head on the rotated Kr (its kv head) and Qr: dQ', dK', dV for that head alone, dQ and
 * dK mapped back through the rotation. */
static int lr_head(lr_bufs *b, double *dQ, double *dK, double *dV, double *kappa, const pr_expand_marg_t Fm,
                   const double *V, const double *O, const double *lse, const double *dO, const pr_posw_struct *W,
                   int n, int d, int causal)
{
    size_t nd = (size_t)n * d;
    memset(b->S, 0, sizeof(double) * (size_t)b->F * (d + 1));
    memset(b->T, 0, sizeof(double) * (size_t)b->F * (d + 2));
    memset(dQ, 0, sizeof(double) * nd);
    memset(dK, 0, sizeof(double) * nd);
    memset(dV, 0, sizeof(double) * nd);
    int st = lr_queries(b, dQ, Fm, V, O, lse, dO, n, d, causal);
    if (st)
        return st;
    lr_keys(b, dK, dV, kappa, Fm, V, O, dO, n, d, causal);
    /* back through the rotation: dQ = R_iᵀ dQ'_i */
    if ((st = pr_lowrank_rotate(dQ, dQ, n, d, W->kind, W->rope_base, -1)))
        return st;
    return pr_lowrank_rotate(dK, dK, n, d, W->kind, W->rope_base, -1);
}

int pr_backward_lowrank_heads(double *dQ, double *dK, double *dV, double *kappa,
                              const double *Q, const double *K, const double *V, const pr_posw_struct *W,
                              const double *O, const double *lse, const double *dO,
                              int n, int d, int h, int h_kv, const pr_attn_opts_t *opts)
{
    if (h < 1 || h_kv < 1 || h % h_kv)
        return PR_EINVAL;
    size_t nd = (size_t)n * d;
    /* the one-head checks (sizes, W, σ, P) on head 0, then every head's entries finite */
    int st = pr_attn_check(Q, K, V, W, n, d, opts);
    if (st)
        return st;
    if (!pr_lowrank_applies(W) || !opts->poly || opts->beta)
        return PR_EINVAL;
    if (pr_posw_is_factorised(W) && d % 2)
        return PR_EODD;
    if (pr_vec_check_finite(Q, nd * h) || pr_vec_check_finite(K, nd * h_kv) || pr_vec_check_finite(V, nd * h_kv) ||
        pr_vec_check_finite(O, nd * h) || pr_vec_check_finite(dO, nd * h) ||
        (lse && pr_vec_check_finite(lse, (size_t)n * h)))
        return PR_ENONFINITE;
    int g = opts->poly_degree, group = h / h_kv;
    if (g + 1 > PR_EXPAND_MAX_DEGREE)   /* multiplicities are unsigned char (pr_expoly stops at 170) */
        return PR_EINVAL;
    /* the caller's budget is pr_backward_needs; here only what size_t products can hold */
    if (!(pr_backward_lowrank_bytes_(n, d, g) < 0.25 * (double)SIZE_MAX))
        return PR_ESIZE;
    pr_expand_marg_t Fm;
    if ((st = pr_expand_marg_init(Fm, d, g, 1, LONG_MAX)))
        return st;
    lr_bufs b;
    pr_mem_t M;
    pr_mem_init(M, 0);
    /* grouped-query: each head's dK, dV (and κ) into pieces, summed into its kv head's in head order */
    double *piece = group > 1 ? malloc(sizeof(double) * (2 * nd + (size_t)n)) : NULL;
    if ((st = lr_buffers(&b, M, n, d, Fm->count)) || (group > 1 && !piece && (st = PR_ENOMEM)))
        goto done;
    lr_features(&b, Fm, opts);
    for (int k = 0; k < h_kv && !st; k++) {
        const double *Vk = V + k * nd;
        if ((st = pr_lowrank_rotate(b.Kr, K + k * nd, n, d, W->kind, W->rope_base, 1)))
            break;
        for (int q = k * group; q < (k + 1) * group && !st; q++) {
            double *hk = piece ? piece : dK + k * nd, *hv = piece ? piece + nd : dV + k * nd;
            double *hkap = !kappa ? NULL : piece ? piece + 2 * nd : kappa + (size_t)k * n;
            if ((st = pr_lowrank_rotate(b.Qr, Q + q * nd, n, d, W->kind, W->rope_base, 1)) ||
                (st = lr_head(&b, dQ + q * nd, hk, hv, hkap, Fm, Vk, O + q * nd, lse ? lse + (size_t)q * n : NULL,
                              dO + q * nd, W, n, d, opts->causal)) || !piece)
                continue;
            int first = q == k * group;
            for (size_t i = 0; i < nd; i++) {
                dK[k * nd + i] = first ? hk[i] : dK[k * nd + i] + hk[i];
                dV[k * nd + i] = first ? hv[i] : dV[k * nd + i] + hv[i];
            }
            for (size_t j = 0; hkap && j < (size_t)n; j++)
                kappa[k * (size_t)n + j] = first ? hkap[j] : kappa[k * (size_t)n + j] + hkap[j];
        }
    }
done:
    free(piece);
    lr_free(&b);
    pr_expand_marg_clear(Fm);
    return st;
}

int pr_backward_lowrank(double *dQ, double *dK, double *dV, double *kappa,
                        const double *Q, const double *K, const double *V, const pr_posw_struct *W,
                        const double *O, const double *lse, const double *dO,
                        int n, int d, const pr_attn_opts_t *opts)
{
    return pr_backward_lowrank_heads(dQ, dK, dV, kappa, Q, K, V, W, O, lse, dO, n, d, 1, 1, opts);
}
