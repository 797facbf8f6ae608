/* pr_dense: score tiles (GEMM or LOOP, pr_dense.c) and their weights, exp or a polynomial. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "pr_dense_impl.h"

PR_CLONES
static void loop_scores(double *S, const pr_dense_prep_t *p, int i0, int mi, int j0, int mj)
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
void pr_dense_tile_scores_(double *S, const pr_dense_prep_t *p, int i0, int mi, int j0, int mj)
{
    if (p->gemm && p->kern)
        pr_dense_qk_(S, BK, p->Qf + (size_t)i0 * p->d, p->d, p->Kp + (size_t)j0 * p->d, mi, mj, p->d);
    else if (p->gemm)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mi, mj, p->d, 1.0,
                    p->Qf + (size_t)i0 * p->d, p->d, p->Kf + (size_t)j0 * p->d, p->d, 0.0, S, BK);
    else
        loop_scores(S, p, i0, mi, j0, mj);
}

/* y[c] = exp(x[c] - m) for c < len, x[c] - m ≤ 700; returns the sum. Range reduction
 * x = k ln2 + r, |r| ≤ ln2/2 (ln2 split so k·ln2hi is exact), Taylor to degree 13
 * (remainder < 2e-17 relative), 2^k built from the exponent bits. Results below e^-708
 * (subnormal) are flushed to 0: an absolute error under 1e-307 against a row sum ≥ 1.
 * Relative error ≤ 2.7u: v - k·ln2hi is exact (Sterbenz), r = that - k·ln2lo rounds once
 * (|Δr| ≤ 0.35u, so e^r moves by 0.35u); Horner's step E_j = E_{j+1} r + c_j rounds the sum (u),
 * the product (u·|E_{j+1} r| / E_j) and carries c_j's own rounding (u, j ≥ 3) and E_{j+1}'s
 * error times |E_{j+1} r| / E_j, which is ≤ 0.415 at j = 0 (|e^r - 1| / e^r), 0.225 at j = 1,
 * 0.135 at j = 2 and ≤ 0.11 above: relative errors ≤ 2.37u (j ≥ 3), 1.46u, 1.56u, 2.06u at j = 0;
 * with the remainder (0.2u) 2.61u, and 2.7u with the second-order terms
 * (tests/test_dense_kernel.c checks the forward's weights against it). */
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
double pr_dense_row_weights_(double *srow, const pr_dense_prep_t *p, int i, int j0, int mj, double shift)
{
    int len = row_len(p, i, j0, mj);
    double sum = 0.0;
    if (p->poly) {
        const double *eb = p->ebrev ? p->ebrev + rev_at(p, i, j0) : 0;
        sum = vpoly_sum(srow, srow, eb, exp(-shift), len, p->poly, p->g);
    } else if (len > 0) {
        sum = p->vexp ? pr_dense_exp_sum_(srow, srow, shift, len) : vexp_sum(srow, srow, shift, len);
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
double pr_dense_row_bias_max_(double *srow, const pr_dense_prep_t *p, int i, int j0, int mj)
{
    return vadd_max(srow, p->brev ? p->brev + rev_at(p, i, j0) : 0, row_len(p, i, j0, mj));
}

