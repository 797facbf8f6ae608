/* pr_fast's frequency-domain multiply-accumulate kernels (pr_fast_kernel.c), internal to the
 * module. Spectra A are planar (nfreq real parts, then the imaginary parts `im` doubles later:
 * the kept pair spectra's layout); X and Y are FFTW's interleaved complex numbers. Every
 * component is formed by two fused multiply-adds, the first a product for the first term,
 *     re = fma(-ai, xi, fma(ar, xr, y_re)),  im = fma(ai, xr, fma(ar, xi, y_im)),
 * so the AVX2 and the portable fma() versions give the same bits (kept and streamed plans, one
 * head or many, agree bit for bit: docs/math.md §5). */
#ifndef PR_FAST_IMPL_H
#define PR_FAST_IMPL_H

/* 1 when the AVX2 kernels run: the CPU has AVX2 and FMA and $POLYROPE_FAST_KERNEL is not
 * "generic" (which forces the portable ones, so that the suite tests both on one machine). */
int pr_fast_kernel_avx2_(void);

/* Y_j = A ∘ X_j (first) or Y_j += A ∘ X_j, j < m, frequencies [0, nb). */
void pr_fast_mac_(double *const *Y, const double *const *X, int m, const double *A, long im, long nb,
                  int first, int avx2);

/* y_r[i] = (s·c[i])·u_r[i] (first) or y_r[i] += (s·c[i])·u_r[i], r < m (m = 0: none), i < n: an
 * inverse transform c scaled by s = 1/L (pr_toeplitz_spec_inverse's roundings) and by each Q
 * head's u_μ into its part, without a pass through a column of its own; keep (NULL: not) gets
 * s·c[i] itself. PR_EDOMAIN if an s·c[i] is not finite. */
int pr_fast_scale_into_(double *const *y, double *keep, const double *const *u, int m, int first, const double *c,
                        double s, int n);

/* dst[0, len) = src[0, len) by non-temporal stores where avx2 (dst 16-byte aligned): the lines
 * are not read first; pr_fast_copy_nt_fence_ orders them before a barrier. */
void pr_fast_copy_nt_(double *dst, const double *src, long len, int avx2);
void pr_fast_copy_nt_fence_(int avx2);

#endif
