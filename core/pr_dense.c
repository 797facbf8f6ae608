/* Dense reference attention, forward and backward, streaming over tiles of BQ queries ×
 * BK keys (FlashAttention's scheme): the forward keeps a running row max m, row sum l and
 * accumulator per query block; the backward recomputes each tile's probabilities from lse.
 * Two ways to get a score tile:
 *   GEMM: factorised RoPE (and W = I): M = (σQ')(K')ᵀ with Q' = R_i Q_i, K' = R_j K_j
 *         rotated once, tiles through cblas_dgemm;
 *   LOOP: any W, the O(n² s) sum over the support, with K transposed and each sequence w_k
 *         stored reversed so that the inner loop over keys is contiguous. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_dense_impl.h"

int pr_dense_block_(int n, int width, int least, int per_thread)
{
    int want = per_thread * omp_get_max_threads();
    while (width > least && (n + width - 1) / width < want)
        width /= 2;
    return width;
}

double *pr_dense_alloc_(size_t a, size_t b)
{
    size_t len;
    if (pr_size_mul(&len, a, b) || len > SIZE_MAX / sizeof(double) - 8)
        return 0;
    /* whole cache lines: a 64-byte vector load from an unaligned row straddles two */
    return aligned_alloc(64, (sizeof(double) * (len ? len : 1) + 63) / 64 * 64);
}

void pr_dense_prep_clear_(pr_dense_prep_t *p)
{
    for (int i = 0; i < 5; i++)
        free(p->own[i]);
}

/* |M_ij| ≤ σ·max|Q|·max|K|·max_ℓ Σ_k |w_k(ℓ)| (docs/math.md §3, claim C6);
 * refuse inputs where that could overflow, rather than return NaN */
int pr_dense_check_range_(const double *Q, const double *K, const pr_posw_struct *W, int n, int d,
                          const pr_attn_opts_t *opts)
{
    size_t nd = (size_t)n * d;
    double R = opts->sigma * pr_vec_max_abs(Q, nd) * pr_vec_max_abs(K, nd) * pr_posw_max_rowsum(W);
    return R < 0x1p1000 ? PR_OK : PR_EDOMAIN;
}

static double *reversed(const double *x, size_t L, double scale)
{
    double *r = pr_dense_alloc_(L, 1);
    if (r)
        for (size_t t = 0; t < L; t++)
            r[t] = scale * x[L - 1 - t];
    return r;
}

/* W's RoPE sequences hold cos ℓθ_k and sin ℓθ_k for ℓ = -(n-1)..n-1, computed as pr_rope_rotate
 * computes them (pr_posw_init_rope): reading them at ℓ = i gives bit for bit pr_rope_rotate's
 * result without its n·d/2 cos and sin calls (at n = 256, d = 64 those cost as much as the
 * forward's tiles). Rows [i0, i1), each entry then times scale (1: unchanged); W NULL: X·scale. */
void pr_dense_rotate_rows_(double *Xr, const double *X, const pr_posw_struct *W, int d, int sign, double scale,
                           int i0, int i1)
{
    enum { ROWS = 64 };   /* rows per block: the block's X stays in cache across the pairs */
    for (int r0 = i0; r0 < i1; r0 += ROWS) {
        int r1 = i1 - r0 < ROWS ? i1 : r0 + ROWS;
        size_t x0 = (size_t)r0 * d, x1 = (size_t)r1 * d;
        for (int k = 0; W && k < d / 2; k++) {
            const double *c = pr_posw_seq(W, 4 * k) + (W->n - 1), *sn = pr_posw_seq(W, 4 * k + 1) + (W->n - 1);
            size_t a = (size_t)W->a[4 * k], b = (size_t)W->b[4 * k + 1];
            for (int i = r0; i < r1; i++) {
                const double *x = X + (size_t)i * d;
                double *xr = Xr + (size_t)i * d, u = x[a], v = x[b], s = sign * sn[i];
                xr[a] = u * c[i] - v * s;
                xr[b] = u * s + v * c[i];
            }
        }
        if (!W && Xr != X)
            memcpy(Xr + x0, X + x0, sizeof(double) * (x1 - x0));
        if (scale != 1.0)
            for (size_t x = x0; x < x1; x++)
                Xr[x] *= scale;
    }
}

void pr_dense_rotate_(double *Xr, const double *X, const pr_posw_struct *W, int sign)
{
    pr_dense_rotate_rows_(Xr, X, W, W->d, sign, 1.0, 0, W->n);
}

/* what prep_init_ fills from the rows of Q, K and V (on the calling thread: a parallel region of
 * its own would add a synchronisation, which on a loaded machine costs more than it saves) */
static void prep_fill(const pr_dense_prep_t *p, double *qf, double *kf, double *kp, double *vp, const double *Q,
                      const double *K, const double *V, const pr_posw_struct *W, double sigma)
{
    int n = p->n, d = p->d;
    const pr_posw_struct *R = pr_posw_is_factorised(W) ? W : 0;
    if (qf)
        pr_dense_rotate_rows_(qf, Q, R, d, 1, sigma, 0, n);
    if (kf)
        pr_dense_rotate_rows_(kf, K, R, d, 1, 1.0, 0, n);
    if (kp)
        pr_dense_pack_(kp, K, R, n, d);
    if (vp)
        pr_dense_pack_(vp, V, 0, n, d);
}

/* loop: force the O(n² s) loop (the backward needs it for dw) */
int pr_dense_prep_init_(pr_dense_prep_t *p, const double *Q, const double *K, const double *V,
                        const pr_posw_struct *W, int n, int d, const pr_attn_opts_t *opts, int loop)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    p->d = d;
    p->L = 2 * (size_t)n - 1;
    p->causal = opts->causal;
    p->poly = opts->poly;
    p->g = opts->poly_degree;
    p->vexp = pr_dense_avx512_();
    p->kern = pr_dense_kernel_ok_(d);
    size_t nd = (size_t)n * d, plen = pr_dense_packed_len_(n, d);
    double *vp = 0, *qf = 0, *kf = 0, *kp = 0;
    if (V && p->kern && !(vp = p->own[4] = pr_dense_alloc_(plen, 1)))
        return PR_ENOMEM;
    p->Vp = vp;
    int rope = pr_posw_is_factorised(W);
    p->gemm = !loop && (rope || W->kind == PR_POS_IDENTITY);
    if (opts->beta) {
        if (opts->poly) {
            double *eb = pr_dense_alloc_(p->L, 1);
            if (!eb)
                return PR_ENOMEM;
            for (size_t t = 0; t < p->L; t++)
                eb[t] = exp(opts->beta[t]);
            p->ebrev = p->own[0] = reversed(eb, p->L, 1.0);
            free(eb);
            if (!p->ebrev)
                return PR_ENOMEM;
        } else if (!(p->brev = p->own[0] = reversed(opts->beta, p->L, 1.0))) {
            return PR_ENOMEM;
        }
    }
    if (p->gemm) {
        /* σQ' and, for the kernels' scores, K' packed (rotated while packing); only the backward
         * (given V) and OpenBLAS's tiles read K' itself */
        if (!(qf = p->own[1] = pr_dense_alloc_(nd, 1)))
            return PR_ENOMEM;
        if ((!p->kern || V) && !(kf = p->own[2] = pr_dense_alloc_(nd, 1)))
            return PR_ENOMEM;
        if (p->kern && !(kp = p->own[3] = pr_dense_alloc_(plen, 1)))
            return PR_ENOMEM;
        p->Qf = qf;
        p->Kf = kf;
        p->Kp = kp;
    }
    prep_fill(p, qf, kf, kp, vp, Q, K, V, W, opts->sigma);
    if (p->gemm)
        return PR_OK;
    p->Q = Q;
    p->a = W->a;
    p->b = W->b;
    p->s = W->s;
    double *kt = p->own[1] = pr_dense_alloc_(nd, 1), *wr = p->own[2] = pr_dense_alloc_(W->s, p->L);
    if (!kt || !wr)
        return PR_ENOMEM;
    for (int j = 0; j < n; j++)
        for (int c = 0; c < d; c++)
            kt[(size_t)c * n + j] = K[(size_t)j * d + c];
    for (int k = 0; k < W->s; k++) {
        const double *w = pr_posw_seq(W, k);
        for (size_t t = 0; t < p->L; t++)
            wr[k * p->L + t] = opts->sigma * w[p->L - 1 - t];
    }
    p->Kt = kt;
    p->wrev = wr;
    return PR_OK;
}

/* one query block's running state: FlashAttention's row max m, row sum l and accumulator */
typedef struct {
    int i0, mi;
    double *acc, m[BQ], l[BQ];
} qblock_t;

/* the key tile at j0 into block b's state (S: the score tile's room) */
static void block_tile(qblock_t *b, const pr_dense_prep_t *p, const double *V, double *S, int j0)
{
    int d = p->d, i0 = b->i0, mi = b->mi, mj = p->n - j0 < BK ? p->n - j0 : BK;
    double *m = b->m, *l = b->l, *acc = b->acc;
    pr_dense_tile_scores_(S, p, i0, mi, j0, mj);
    for (int r = 0; r < mi; r++) {
        double *srow = S + (size_t)r * BK;
        if (p->poly) {
            l[r] += pr_dense_row_weights_(srow, p, i0 + r, j0, mj, 0.0);
            continue;
        }
        double mt = pr_dense_row_bias_max_(srow, p, i0 + r, j0, mj);
        double mn = mt > m[r] ? mt : m[r];
        if (mn == -INFINITY) {
            memset(srow, 0, sizeof(double) * mj);
            continue;
        }
        double sc = m[r] == mn ? 1.0 : exp(m[r] - mn);   /* exp(0) = 1: no call when the max stays */
        l[r] = l[r] * sc + pr_dense_row_weights_(srow, p, i0 + r, j0, mj, mn);
        if (sc != 1.0)
            for (int c = 0; c < d; c++)
                acc[(size_t)r * d + c] *= sc;
        m[r] = mn;
    }
    if (p->kern)
        pr_dense_pv_(acc, d, S, BK, 1, V + (size_t)j0 * d, d, mi, d, mj);
    else
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mi, d, mj, 1.0, S, BK, V + (size_t)j0 * d, d, 1.0,
                    acc, d);
}

static int block_finish(double *O, double *lse, const pr_dense_prep_t *p, const qblock_t *b)
{
    int d = p->d;
    for (int r = 0; r < b->mi; r++) {
        double l = b->l[r], *o = O + (size_t)(b->i0 + r) * d;
        /* exp: l ≥ 1 (the max term is e^0); a polynomial may give any row sum */
        if (!(l > 0.0) || !isfinite(l))
            return PR_EDOMAIN;
        double inv = 1.0 / l;
        for (int c = 0; c < d; c++)
            o[c] = b->acc[(size_t)r * d + c] * inv;
        /* huge V can overflow the weighted sums: refuse rather than return Inf */
        if (pr_vec_check_finite(o, d))
            return PR_EDOMAIN;
        if (lse)
            lse[b->i0 + r] = (p->poly ? 0.0 : b->m[r]) + log(l);
    }
    return PR_OK;
}

/* ng query blocks over the key tiles together: each K and V tile, read from memory once, serves
 * them all from L2 (at n = 8192 the keys and values, 16 MiB, no longer stay in the last level) */
static int forward_group(double *O, double *lse, const double *V, const pr_dense_prep_t *p, qblock_t *g, int ng,
                         double *S)
{
    for (int k = 0; k < ng; k++) {
        for (int r = 0; r < g[k].mi; r++) {
            g[k].m[r] = -INFINITY;
            g[k].l[r] = 0.0;
        }
        memset(g[k].acc, 0, sizeof(double) * g[k].mi * p->d);
    }
    int jend = key_end(p, g[ng - 1].i0, g[ng - 1].mi);
    for (int j0 = 0; j0 < jend; j0 += BK)
        for (int k = 0; k < ng; k++)
            if (j0 < key_end(p, g[k].i0, g[k].mi))
                block_tile(&g[k], p, V, S, j0);
    for (int k = 0; k < ng; k++) {
        int st = block_finish(O, lse, p, &g[k]);
        if (st)
            return st;
    }
    return PR_OK;
}

int pr_dense_forward(double *O, double *lse, const double *Q, const double *K, const double *V,
                     const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts)
{
    int st = pr_attn_check(Q, K, V, W, n, d, opts);
    if (st || (st = pr_dense_check_range_(Q, K, W, n, d, opts)))
        return st;
    pr_dense_prep_t p;
    if ((st = pr_dense_prep_init_(&p, Q, K, 0, W, n, d, opts, 0))) {
        pr_dense_prep_clear_(&p);
        return st;
    }
    /* query blocks narrower than BQ where BQ would leave fewer than 2 per thread (moderate n): a
     * row's sums are the same whatever its block; groups of FWD_GROUP blocks where that leaves at
     * least 4 groups per thread */
    enum { FWD_GROUP = 2 };
    int bq = pr_dense_block_(n, BQ, 32, 2), nb = (n + bq - 1) / bq, saved, shared = PR_OK;
    int gs = nb >= 4 * FWD_GROUP * omp_get_max_threads() ? FWD_GROUP : 1, ngr = (nb + gs - 1) / gs;
    pr_dense_blas_serial_begin_(&saved);
#pragma omp parallel
    {
        qblock_t g[FWD_GROUP];
        double *S = pr_dense_alloc_(BQ, BK), *acc = pr_dense_alloc_((size_t)gs * BQ, d);
        int mine = S && acc ? PR_OK : PR_ENOMEM;
#pragma omp for schedule(dynamic, 1)
        for (int ig = 0; ig < ngr; ig++) {
            if (mine)
                continue;
            int ng = 0;
            for (int ib = ig * gs; ib < nb && ib < (ig + 1) * gs; ib++, ng++) {
                g[ng].i0 = ib * bq;
                g[ng].mi = n - ib * bq < bq ? n - ib * bq : bq;
                g[ng].acc = acc + (size_t)ng * BQ * d;
            }
            mine = forward_group(O, lse, V, &p, g, ng, S);
        }
        pr_dense_set_status_(&shared, mine);
        free(S);
        free(acc);
    }
    pr_dense_blas_serial_end_(saved);
    pr_dense_prep_clear_(&p);
    return shared;
}

int pr_dense_loss_x(double *loss, double *dX, const double *A1, const double *X, const double *A2,
                    const double *A3, const double *Y, const double *E, const pr_posw_t W, int n,
                    int d, const pr_attn_opts_t *opts)
{
    size_t nd = (size_t)n * d;
    if (n <= 0 || d <= 0)
        return PR_EINVAL;
    if (pr_vec_check_finite(X, (size_t)d * d) || pr_vec_check_finite(Y, (size_t)d * d) ||
        pr_vec_check_finite(A1, nd) || pr_vec_check_finite(A3, nd) || pr_vec_check_finite(E, nd))
        return PR_ENONFINITE;
    double *Q = pr_dense_alloc_(nd, 1), *V = pr_dense_alloc_(nd, 1), *O = pr_dense_alloc_(nd, 1), *dO = pr_dense_alloc_(nd, 1);
    double *dQ = pr_dense_alloc_(nd, 1), *dK = pr_dense_alloc_(nd, 1), *dV = pr_dense_alloc_(nd, 1), *lse = pr_dense_alloc_(n, 1);
    int st = Q && V && O && dO && dQ && dK && dV && lse ? PR_OK : PR_ENOMEM;
    if (!st) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, d, 1.0, A1, d, X, d, 0.0, Q, d);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, d, 1.0, A3, d, Y, d, 0.0, V, d);
        st = pr_dense_forward(O, lse, Q, A2, V, W, n, d, opts);
    }
    if (!st) {
        double s = 0.0;
        for (size_t x = 0; x < nd; x++) {
            dO[x] = O[x] - E[x];
            s += dO[x] * dO[x];
        }
        *loss = 0.5 * s;
        if (dX) {
            st = pr_dense_backward(dQ, dK, dV, 0, Q, A2, V, W, O, lse, dO, n, d, opts);
            if (!st)
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, n, 1.0, A1, d, dQ, d,
                            0.0, dX, d);
        }
    }
    free(Q);
    free(V);
    free(O);
    free(dO);
    free(dQ);
    free(dK);
    free(dV);
    free(lse);
    return st;
}
