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
#include <cblas.h>
#include <omp.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_rope.h"
#include "pr_dense.h"

enum { BQ = 128, BK = 256 };

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define PR_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define PR_CLONES
#endif

typedef struct {
    int n, d, gemm;
    size_t L;              /* 2n - 1 */
    const double *Qf, *Kf; /* GEMM: σ·Q' and K' (n×d) */
    const double *Q;       /* LOOP: Q (n×d) */
    double *Kt;            /* LOOP: Kᵀ (d×n) */
    double *wrev;          /* LOOP: wrev[k·L + t] = σ·w_k(n-1-t), so w_k(i-j) = wrev[k·L + n-1-i+j] */
    const int *a, *b;
    int s;
    int causal;
    double *brev;          /* β reversed like wrev (exp path; NULL when no β) */
    double *ebrev;         /* e^β reversed (polynomial path; NULL when no β) */
    const double *poly;
    int g;
    double *own[4];        /* buffers to free */
} prep_t;

static double *dalloc(size_t a, size_t b)
{
    size_t len;
    if (pr_size_mul(&len, a, b) || len > SIZE_MAX / sizeof(double))
        return 0;
    return malloc(sizeof(double) * (len ? len : 1));
}

static void prep_clear(prep_t *p)
{
    for (int i = 0; i < 4; i++)
        free(p->own[i]);
}

/* |M_ij| ≤ σ·max|Q|·max|K|·max_ℓ Σ_k |w_k(ℓ)| (docs/math.md §3, claim C6);
 * refuse inputs where that could overflow, rather than return NaN */
static int check_range(const double *Q, const double *K, const pr_posw_struct *W, int n, int d,
                       const pr_attn_opts_t *opts)
{
    size_t nd = (size_t)n * d;
    double R = opts->sigma * pr_vec_max_abs(Q, nd) * pr_vec_max_abs(K, nd) * pr_posw_max_rowsum(W);
    return R < 0x1p1000 ? PR_OK : PR_EDOMAIN;
}

static double *reversed(const double *x, size_t L, double scale)
{
    double *r = dalloc(L, 1);
    if (r)
        for (size_t t = 0; t < L; t++)
            r[t] = scale * x[L - 1 - t];
    return r;
}

/* loop: force the O(n² s) loop (the backward needs it for dw) */
static int prep_init(prep_t *p, const double *Q, const double *K, const pr_posw_struct *W, int n,
                     int d, const pr_attn_opts_t *opts, int loop)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    p->d = d;
    p->L = 2 * (size_t)n - 1;
    p->causal = opts->causal;
    p->poly = opts->poly;
    p->g = opts->poly_degree;
    size_t nd = (size_t)n * d;
    int rope = pr_posw_is_factorised(W);
    p->gemm = !loop && (rope || W->kind == PR_POS_IDENTITY);
    if (opts->beta) {
        if (opts->poly) {
            double *eb = dalloc(p->L, 1);
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
        double *qf = p->own[1] = dalloc(nd, 1), *kf = p->own[2] = dalloc(nd, 1);
        if (!qf || !kf)
            return PR_ENOMEM;
        if (rope) {
            pr_rope_layout_t lay = W->kind == PR_POS_ROPE ? PR_ROPE_INTERLEAVED : PR_ROPE_NEOX;
            int st = pr_rope_rotate(qf, Q, n, d, W->rope_base, lay, 1);
            if (!st)
                st = pr_rope_rotate(kf, K, n, d, W->rope_base, lay, 1);
            if (st)
                return st;
        } else {
            memcpy(qf, Q, sizeof(double) * nd);
            memcpy(kf, K, sizeof(double) * nd);
        }
        for (size_t i = 0; i < nd; i++)
            qf[i] *= opts->sigma;
        p->Qf = qf;
        p->Kf = kf;
        return PR_OK;
    }
    p->Q = Q;
    p->a = W->a;
    p->b = W->b;
    p->s = W->s;
    double *kt = p->own[1] = dalloc(nd, 1), *wr = p->own[2] = dalloc(W->s, p->L);
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

/* offset of w_k(i - j0) in a reversed sequence */
static inline size_t rev_at(const prep_t *p, int i, int j0) { return (size_t)(p->n - 1 - i + j0); }

/* number of unmasked keys of row i in the tile starting at j0 */
static inline int row_len(const prep_t *p, int i, int j0, int mj)
{
    if (!p->causal)
        return mj;
    int c = i - j0 + 1;
    return c < 0 ? 0 : c > mj ? mj : c;
}

PR_CLONES
static void loop_scores(double *S, const prep_t *p, int i0, int mi, int j0, int mj)
{
    for (int r = 0; r < mi; r++) {
        int i = i0 + r;
        double *srow = S + (size_t)r * BK;
        for (int c = 0; c < mj; c++)
            srow[c] = 0.0;
        for (int k = 0; k < p->s; k++) {
            double q = p->Q[(size_t)i * p->d + p->a[k]];
            const double *w = p->wrev + k * p->L + rev_at(p, i, j0);
            const double *kt = p->Kt + (size_t)p->b[k] * p->n + j0;
            for (int c = 0; c < mj; c++)
                srow[c] += q * w[c] * kt[c];
        }
    }
}

/* S[r][c] = M_{i0+r, j0+c} (row stride BK) */
static void tile_scores(double *S, const prep_t *p, int i0, int mi, int j0, int mj)
{
    if (p->gemm)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mi, mj, p->d, 1.0,
                    p->Qf + (size_t)i0 * p->d, p->d, p->Kf + (size_t)j0 * p->d, p->d, 0.0, S, BK);
    else
        loop_scores(S, p, i0, mi, j0, mj);
}

/* y[c] = exp(x[c] - m) for c < len, x[c] - m ≤ 700; returns the sum. Range reduction
 * x = k ln2 + r, |r| ≤ ln2/2 (ln2 split so k·ln2hi is exact), Taylor to degree 13
 * (remainder < 2e-17 relative), 2^k built from the exponent bits. Results below e^-708
 * (subnormal) are flushed to 0: an absolute error under 1e-307 against a row sum ≥ 1. */
PR_CLONES
static double vexp_sum(double *y, const double *x, double m, int len)
{
    const double log2e = 1.4426950408889634, ln2hi = 6.93147180369123816490e-01,
                 ln2lo = 1.90821492927058770002e-10, shift = 0x1.8p52;
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int c = 0; c < len; c++) {
        double v = x[c] - m;
        double t = v * log2e + shift, k = t - shift;
        double r = (v - k * ln2hi) - k * ln2lo;
        double e = 1.0 / 6227020800.0;
        e = e * r + 1.0 / 479001600.0;
        e = e * r + 1.0 / 39916800.0;
        e = e * r + 1.0 / 3628800.0;
        e = e * r + 1.0 / 362880.0;
        e = e * r + 1.0 / 40320.0;
        e = e * r + 1.0 / 5040.0;
        e = e * r + 1.0 / 720.0;
        e = e * r + 1.0 / 120.0;
        e = e * r + 1.0 / 24.0;
        e = e * r + 1.0 / 6.0;
        e = e * r + 0.5;
        e = e * r + 1.0;
        e = e * r + 1.0;
        uint64_t tb, sb;
        memcpy(&tb, &t, 8);
        sb = (tb - 0x4338000000000000ULL + 1023) << 52; /* bits of t - shift = k */
        double scale;
        memcpy(&scale, &sb, 8);
        double out = v < -708.0 ? 0.0 : e * scale;
        y[c] = out;
        sum += out;
    }
    return sum;
}

/* y[c] = P(x[c])·f[c]·scale (f = NULL means 1) for c < len by Horner; returns the sum */
PR_CLONES
static double vpoly_sum(double *y, const double *x, const double *f, double scale, int len,
                        const double *coef, int g)
{
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int c = 0; c < len; c++) {
        double v = coef[g];
        for (int t = g - 1; t >= 0; t--)
            v = v * x[c] + coef[t];
        v *= (f ? f[c] : 1.0) * scale;
        y[c] = v;
        sum += v;
    }
    return sum;
}

/* One score-tile row (query i) into weights exp(M + β - shift) (exp path: β already added
 * by row_bias_max) or P(M)·e^β·e^{-shift}; masked entries 0. The forward passes the running
 * max (exp) or 0 (polynomial), the backward lse. Returns the row sum. */
static double row_weights(double *srow, const prep_t *p, int i, int j0, int mj, double shift)
{
    int len = row_len(p, i, j0, mj);
    double sum = 0.0;
    if (p->poly) {
        const double *eb = p->ebrev ? p->ebrev + rev_at(p, i, j0) : 0;
        sum = vpoly_sum(srow, srow, eb, exp(-shift), len, p->poly, p->g);
    } else if (len > 0) {
        sum = vexp_sum(srow, srow, shift, len);
    }
    for (int c = len; c < mj; c++)
        srow[c] = 0.0;
    return sum;
}

/* x[c] += b[c] (b may be NULL) for c < len; returns max x[c] (-inf for len = 0) */
PR_CLONES
static double vadd_max(double *x, const double *b, int len)
{
    double mx = -INFINITY;
    if (b) {
#pragma omp simd
        for (int c = 0; c < len; c++)
            x[c] += b[c];
    }
#pragma omp simd reduction(max : mx)
    for (int c = 0; c < len; c++)
        mx = x[c] > mx ? x[c] : mx;
    return mx;
}

/* exp path: adds β to the unmasked part of the row and returns its max (-inf if none) */
static double row_bias_max(double *srow, const prep_t *p, int i, int j0, int mj)
{
    return vadd_max(srow, p->brev ? p->brev + rev_at(p, i, j0) : 0, row_len(p, i, j0, mj));
}

/* keys [0, key_end) can be unmasked for queries [i0, i0 + mi) */
static int key_end(const prep_t *p, int i0, int mi) { return p->causal ? i0 + mi : p->n; }

static int forward_block(double *O, double *lse, const double *V, const prep_t *p, int i0, int mi,
                         double *S, double *acc, double *m, double *l)
{
    int d = p->d;
    for (int r = 0; r < mi; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0;
    }
    memset(acc, 0, sizeof(double) * mi * d);
    int jend = key_end(p, i0, mi);
    for (int j0 = 0; j0 < jend; j0 += BK) {
        int mj = p->n - j0 < BK ? p->n - j0 : BK;
        tile_scores(S, p, i0, mi, j0, mj);
        for (int r = 0; r < mi; r++) {
            double *srow = S + (size_t)r * BK;
            if (p->poly) {
                l[r] += row_weights(srow, p, i0 + r, j0, mj, 0.0);
                continue;
            }
            double mt = row_bias_max(srow, p, i0 + r, j0, mj);
            double mn = mt > m[r] ? mt : m[r];
            if (mn == -INFINITY) {
                memset(srow, 0, sizeof(double) * mj);
                continue;
            }
            double sc = exp(m[r] - mn);
            l[r] = l[r] * sc + row_weights(srow, p, i0 + r, j0, mj, mn);
            if (sc != 1.0)
                for (int c = 0; c < d; c++)
                    acc[(size_t)r * d + c] *= sc;
            m[r] = mn;
        }
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mi, d, mj, 1.0, S, BK,
                    V + (size_t)j0 * d, d, 1.0, acc, d);
    }
    for (int r = 0; r < mi; r++) {
        /* exp: l ≥ 1 (the max term is e^0); a polynomial may give any row sum */
        if (!(l[r] > 0.0) || !isfinite(l[r]))
            return PR_EDOMAIN;
        double inv = 1.0 / l[r];
        for (int c = 0; c < d; c++)
            O[(size_t)(i0 + r) * d + c] = acc[(size_t)r * d + c] * inv;
        /* huge V can overflow the weighted sums: refuse rather than return Inf */
        if (pr_vec_check_finite(O + (size_t)(i0 + r) * d, d))
            return PR_EDOMAIN;
        if (lse)
            lse[i0 + r] = (p->poly ? 0.0 : m[r]) + log(l[r]);
    }
    return PR_OK;
}

/* OpenBLAS runs single-threaded inside our OpenMP regions, so that the two levels of threads
 * do not oversubscribe the cores; its thread count is restored afterwards. */
static void blas_serial_begin(int *saved)
{
    *saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
}

static void blas_serial_end(int saved) { openblas_set_num_threads(saved); }

static void set_status(int *shared, int st)
{
    if (st) {
#pragma omp critical(pr_dense_status)
        if (!*shared)
            *shared = st;
    }
}

int pr_dense_forward(double *O, double *lse, const double *Q, const double *K, const double *V,
                     const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts)
{
    int st = pr_attn_check(Q, K, V, W, n, d, opts);
    if (st || (st = check_range(Q, K, W, n, d, opts)))
        return st;
    prep_t p;
    if ((st = prep_init(&p, Q, K, W, n, d, opts, 0))) {
        prep_clear(&p);
        return st;
    }
    int nb = (n + BQ - 1) / BQ, saved, shared = PR_OK;
    blas_serial_begin(&saved);
#pragma omp parallel
    {
        double *S = dalloc(BQ, BK), *acc = dalloc(BQ, d), m[BQ], l[BQ];
        int mine = S && acc ? PR_OK : PR_ENOMEM;
#pragma omp for schedule(dynamic, 1)
        for (int ib = 0; ib < nb; ib++) {
            if (mine)
                continue;
            int i0 = ib * BQ, mi = n - i0 < BQ ? n - i0 : BQ;
            mine = forward_block(O, lse, V, &p, i0, mi, S, acc, m, l);
        }
        set_status(&shared, mine);
        free(S);
        free(acc);
    }
    blas_serial_end(saved);
    prep_clear(&p);
    return shared;
}

/* LOOP-mode gradients of one tile from dM: dq (n×d) += Σ_j dM·σw·K, dkt (d×BK, this key
 * block, transposed) += Σ_i dM·σw·Q, dwrev += dM·Q·K (σ is applied at the end) */
PR_CLONES
static void loop_backward(double *dq, double *dkt, double *dwrev, const double *dM, const prep_t *p,
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
static void backward_tile(const prep_t *p, const bwd_in_t *in, int i0, int mi, int j0, int mj,
                          double *S, double *dP, double *dq, double *dk, double *dwrev)
{
    int d = p->d;
    tile_scores(S, p, i0, mi, j0, mj);
    for (int r = 0; r < mi; r++) {
        double *srow = S + (size_t)r * BK;
        if (!p->poly)
            row_bias_max(srow, p, i0 + r, j0, mj);
        row_weights(srow, p, i0 + r, j0, mj, in->lse[i0 + r]);
    }
    /* dV_J += Pᵀ dO_I;  dP = dO_I V_Jᵀ;  dM = P ∘ (dP - r) */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, mj, d, mi, 1.0, S, BK,
                in->dO + (size_t)i0 * d, d, 1.0, in->dV + (size_t)j0 * d, d);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mi, mj, d, 1.0, in->dO + (size_t)i0 * d, d,
                in->V + (size_t)j0 * d, d, 0.0, dP, BK);
    for (int r = 0; r < mi; r++) {
        double ri = in->rr[i0 + r];
        double *prow = dP + (size_t)r * BK;
        const double *srow = S + (size_t)r * BK;
        for (int c = 0; c < mj; c++)
            prow[c] = srow[c] * (prow[c] - ri);
    }
    if (p->gemm) {
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
    if (st || (st = check_range(Q, K, W, n, d, opts)))
        return st;
    size_t nd = (size_t)n * d;
    if (pr_vec_check_finite(O, nd) || pr_vec_check_finite(dO, nd) || pr_vec_check_finite(lse, n))
        return PR_ENONFINITE;
    prep_t p;
    double *rr = dalloc(n, 1);
    if (!rr)
        return PR_ENOMEM;
    if ((st = prep_init(&p, Q, K, W, n, d, opts, dw != 0))) {
        prep_clear(&p);
        free(rr);
        return st;
    }
    for (int i = 0; i < n; i++) {
        double s = 0.0;
        for (int c = 0; c < d; c++)
            s += dO[(size_t)i * d + c] * O[(size_t)i * d + c];
        rr[i] = s;
    }
    memset(dV, 0, sizeof(double) * nd);
    bwd_in_t in = {Q, V, lse, dO, rr, dV};
    size_t wlen = dw ? (size_t)W->s * p.L : 0;
    int nkb = (n + BK - 1) / BK, nth = omp_get_max_threads(), saved, shared = PR_OK;
    if (nth > nkb)
        nth = nkb;
    /* each thread owns whole key blocks (dK, dV rows) and keeps its own dQ and dw */
    double *dqall = dalloc(nd, nth), *dwall = dw ? dalloc(wlen, nth) : 0;
    if (!dqall || (dw && !dwall)) {
        free(dqall);
        free(dwall);
        free(rr);
        prep_clear(&p);
        return PR_ENOMEM;
    }
    memset(dqall, 0, sizeof(double) * nd * nth);
    if (dw)
        memset(dwall, 0, sizeof(double) * wlen * nth);
    blas_serial_begin(&saved);
#pragma omp parallel num_threads(nth)
    {
        int t = omp_get_thread_num();
        double *S = dalloc(BQ, BK), *dP = dalloc(BQ, BK), *dk = dalloc(BK, d);
        double *dq = dqall + nd * t, *dwr = dw ? dwall + wlen * t : 0;
        int mine = S && dP && dk ? PR_OK : PR_ENOMEM;
#pragma omp for schedule(dynamic, 1)
        for (int jb = 0; jb < nkb; jb++) {
            if (mine)
                continue;
            int j0 = jb * BK, mj = n - j0 < BK ? n - j0 : BK;
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
        set_status(&shared, mine);
        free(S);
        free(dP);
        free(dk);
    }
    blas_serial_end(saved);
    if (!shared) {
        for (size_t x = 0; x < nd; x++) {
            double s = 0.0;
            for (int t = 0; t < nth; t++)
                s += dqall[nd * t + x];
            dQ[x] = s;
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
        if (p.gemm) {
            /* dQ' = σ Σ_j dM K'_j;  dQ = R_iᵀ dQ', dK = R_jᵀ dK' (σ is already in σQ') */
            for (size_t x = 0; x < nd; x++)
                dQ[x] *= opts->sigma;
            if (pr_posw_is_factorised(W)) {
                pr_rope_layout_t lay = W->kind == PR_POS_ROPE ? PR_ROPE_INTERLEAVED : PR_ROPE_NEOX;
                shared = pr_rope_rotate(dQ, dQ, n, d, W->rope_base, lay, -1);
                if (!shared)
                    shared = pr_rope_rotate(dK, dK, n, d, W->rope_base, lay, -1);
            }
        }
    }
    /* sums of huge entries can overflow: refuse rather than return Inf */
    if (!shared && (pr_vec_check_finite(dQ, nd) || pr_vec_check_finite(dK, nd) || pr_vec_check_finite(dV, nd) ||
                    (dw && pr_vec_check_finite(dw, wlen))))
        shared = PR_EDOMAIN;
    free(dqall);
    free(dwall);
    free(rr);
    prep_clear(&p);
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
    double *Q = dalloc(nd, 1), *V = dalloc(nd, 1), *O = dalloc(nd, 1), *dO = dalloc(nd, 1);
    double *dQ = dalloc(nd, 1), *dK = dalloc(nd, 1), *dV = dalloc(nd, 1), *lse = dalloc(n, 1);
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

/* gap[i] = (largest - second largest) of the computed M_ij + β_{i-j} over the unmasked keys
 * of row i (+inf with one key), by the forward's own score tiles; cnt[i] = that number of keys */
static int row_gaps(double *gap, int *cnt, const prep_t *p)
{
    int n = p->n, nb = (n + BQ - 1) / BQ, saved, shared = PR_OK;
    blas_serial_begin(&saved);
#pragma omp parallel
    {
        double *S = dalloc(BQ, BK);
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
                tile_scores(S, p, i0, mi, j0, mj);
                for (int r = 0; r < mi; r++) {
                    double *srow = S + (size_t)r * BK;
                    int len = row_len(p, i0 + r, j0, mj);
                    row_bias_max(srow, p, i0 + r, j0, mj);
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
        set_status(&shared, mine);
        free(S);
    }
    blas_serial_end(saved);
    return shared;
}

/* Σ_j |ΔP_ij| ≤ τ_i from each row's score gap (see pr_dense_error_est); returns max_i τ_i, or a
 * negative status */
static double gap_tau(const double *Q, const double *K, const pr_posw_struct *W, int n, int d,
                      const pr_attn_opts_t *opts, double eM, double apriori, double rounding, int *st)
{
    prep_t p;
    double *gap = dalloc(n, 1), tau = 0.0;
    int *cnt = malloc(sizeof(int) * (size_t)n);
    *st = gap && cnt ? prep_init(&p, Q, K, W, n, d, opts, 0) : PR_ENOMEM;
    if (!*st)
        *st = row_gaps(gap, cnt, &p);
    if (gap && cnt)
        prep_clear(&p);
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
 *   Weights. Each e^{M+β-m} has relative error ρ = expm1(ε_M) + (n/128 + 8)u (exp, tile
 *   rescalings); the row sum γ_n more, so P̂_ij = P_ij(1 + δ), |δ| ≤ τ_rel = 2ρ + (n + 2)u, and
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
