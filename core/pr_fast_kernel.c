/* pr_fast's kernels: the multiply-accumulate, portable (fma()) and AVX2, the same bits; the
 * streamed copy of the sums; the scaling of an inverse into the parts (pr_fast_impl.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "pr_cpu.h"
#include "pr_status.h"
#include "pr_fast_impl.h"

int pr_fast_kernel_avx2_(void)
{
    return pr_cpu_kernel_ok(PR_CPU_AVX2_FMA, "POLYROPE_FAST_KERNEL");
}

static void mac_scalar(double *const *Y, const double *const *X, int m, const double *A, long im,
                       long k0, long nb, int first)
{
    for (int j = 0; j < m; j++) {
        double *y = Y[j];
        const double *x = X[j];
        for (long k = k0; k < nb; k++) {
            double ar = A[k], ai = A[im + k], xr = x[2 * k], xi = x[2 * k + 1];
            double ur = first ? ar * xr : fma(ar, xr, y[2 * k]);
            double ui = first ? ar * xi : fma(ar, xi, y[2 * k + 1]);
            y[2 * k] = fma(-ai, xi, ur);
            y[2 * k + 1] = fma(ai, xr, ui);
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* four frequencies at a time: A spread to [ar0 ar0 ar1 ar1] and [-ai0 ai0 -ai1 ai1] (and the
 * same for 2, 3) once for the m <= JTILE columns j; x swapped to [xi xr] for the second fma */
enum { JTILE = 4 };   /* 2·JTILE + 2 streams: more defeat the hardware prefetchers (8 heads) */

__attribute__((target("avx2,fma")))
static void mac_avx2_tile(double *const *Y, const double *const *X, int m, const double *A, long im,
                          long nb, int first)
{
    const __m256d neg = _mm256_set_pd(0.0, -0.0, 0.0, -0.0);
    long k = 0;
    for (; k + 4 <= nb; k += 4) {
        __m256d ar = _mm256_loadu_pd(A + k), ai = _mm256_loadu_pd(A + im + k);
        __m256d r01 = _mm256_permute4x64_pd(ar, 0x50), r23 = _mm256_permute4x64_pd(ar, 0xfa);
        __m256d i01 = _mm256_xor_pd(_mm256_permute4x64_pd(ai, 0x50), neg);
        __m256d i23 = _mm256_xor_pd(_mm256_permute4x64_pd(ai, 0xfa), neg);
        for (int j = 0; j < m; j++) {
            const double *x = X[j] + 2 * k;
            double *y = Y[j] + 2 * k;
            __m256d x01 = _mm256_loadu_pd(x), x23 = _mm256_loadu_pd(x + 4);
            __m256d u01 = first ? _mm256_mul_pd(r01, x01) : _mm256_fmadd_pd(r01, x01, _mm256_loadu_pd(y));
            __m256d u23 = first ? _mm256_mul_pd(r23, x23) : _mm256_fmadd_pd(r23, x23, _mm256_loadu_pd(y + 4));
            _mm256_storeu_pd(y, _mm256_fmadd_pd(i01, _mm256_permute_pd(x01, 5), u01));
            _mm256_storeu_pd(y + 4, _mm256_fmadd_pd(i23, _mm256_permute_pd(x23, 5), u23));
        }
    }
    mac_scalar(Y, X, m, A, im, k, nb, first);
}
#endif

void pr_fast_mac_(double *const *Y, const double *const *X, int m, const double *A, long im, long nb,
                  int first, int avx2)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (avx2) {
        for (int j = 0; j < m; j += JTILE)
            mac_avx2_tile(Y + j, X + j, m - j < JTILE ? m - j : JTILE, A, im, nb, first);
        return;
    }
#endif
    (void)avx2;
    mac_scalar(Y, X, m, A, im, 0, nb, first);
}

void pr_fast_copy_nt_(double *dst, const double *src, long len, int avx2)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (avx2) {
        long k = 0;
        for (; k + 2 <= len; k += 2)
            _mm_stream_pd(dst + k, _mm_loadu_pd(src + k));
        memcpy(dst + k, src + k, sizeof(double) * (size_t)(len - k));
        return;
    }
#endif
    (void)avx2;
    memcpy(dst, src, sizeof(double) * (size_t)len);
}

void pr_fast_copy_nt_fence_(int avx2)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (avx2)
        _mm_sfence();
#endif
    (void)avx2;
}

int pr_fast_scale_into_(double *const *y, double *keep, const double *const *u, int m, int first,
                        const double *restrict c, double s, int n)
{
    int bad = 0;
    for (int i = 0; i < n; i++)
        bad |= !isfinite(s * c[i]);
    if (bad)
        return PR_EDOMAIN;
    if (keep)
        for (int i = 0; i < n; i++)
            keep[i] = s * c[i];
    for (int r = 0; r < m; r++) {
        double *restrict yr = y[r];
        const double *restrict ur = u[r];
        if (first)
            for (int i = 0; i < n; i++)
                yr[i] = (s * c[i]) * ur[i];
        else
            for (int i = 0; i < n; i++)
                yr[i] += (s * c[i]) * ur[i];
    }
    return PR_OK;
}
