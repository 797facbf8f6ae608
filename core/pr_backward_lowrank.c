/* The fast backward for factorised W: the low-rank path (docs/math.md §6, §7). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_rope.h"
#include "pr_lowrank.h"
#include "pr_backward_impl.h"

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
    double Fd = pr_backward_binom_(d, G);
    /* the caller's budget is pr_backward_needs; here only what size_t products can hold */
    if (!(pr_backward_lowrank_bytes_(n, d, Fd) < 0.25 * (double)SIZE_MAX))
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
    pr_backward_enum_(mono, &cnt, cur, 0, d, G);
    for (long t = 0; t < F; t++) {
        unsigned char *x = cur;
        memcpy(x, mono + (size_t)t * d, (size_t)d);
        int m = pr_backward_vec_size_(x, d);
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
        double mult = pr_backward_multinomial_(x, d), sm = pow(opts->sigma, m);
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
