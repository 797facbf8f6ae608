/* pr_dense: the GEMM mode's products in our own AVX-512 kernels (when the CPU has AVX-512F and
 * d is a multiple of 8), so that nothing is repacked per tile: the keys (and, for the backward,
 * V) are packed once per call into strips of PR_DENSE_NR rows, and the other operand is read in
 * place. OpenBLAS repacks both operands of every tile product; with an inner dimension of
 * d = 64 that packing was a fifth of the forward. The sums are the same dot products in a
 * different order (each entry a sum of d or BK products): the error bounds of
 * pr_dense_error_est hold unchanged (γ_d and γ_n terms). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "pr_cpu.h"
#include "pr_dense_impl.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define PR_DENSE_AVX512 1
#include <immintrin.h>
#define PR_AVX512 __attribute__((target("avx512f")))
#define PR_INLINE __attribute__((always_inline)) inline
#else
#define PR_DENSE_AVX512 0
#endif

/* $POLYROPE_DENSE_KERNEL=generic forces the OpenBLAS tiles and the portable exp on any CPU, so
 * that the paths a machine without AVX-512 runs are tested here too (tests/meson.build). */
int pr_dense_avx512_(void)
{
#if PR_DENSE_AVX512
    return pr_cpu_kernel_ok(PR_CPU_AVX512F, "POLYROPE_DENSE_KERNEL");
#else
    return 0;
#endif
}

int pr_dense_kernel_ok_(int d) { return d % 8 == 0 && pr_dense_avx512_(); }

size_t pr_dense_packed_len_(int n, int d)
{
    return ((size_t)n + PR_DENSE_NR - 1) / PR_DENSE_NR * PR_DENSE_NR * (size_t)d;
}

/* each strip transposed first, then each RoPE pair's two rows of the strip turned in place,
 * contiguous in the keys with W's contiguous cos and sin (pr_dense_rotate_'s numbers and
 * expressions: the same bits) */
void pr_dense_pack_(double *Xp, const double *X, const pr_posw_struct *W, int n, int d)
{
    for (int sb = 0; sb < (n + PR_DENSE_NR - 1) / PR_DENSE_NR; sb++) {
        double *strip = Xp + (size_t)sb * PR_DENSE_NR * d;
        int j0 = sb * PR_DENSE_NR, rows = n - j0 < PR_DENSE_NR ? n - j0 : PR_DENSE_NR;
        for (int jj = 0; jj < PR_DENSE_NR; jj++) {
            const double *x = jj < rows ? X + (size_t)(j0 + jj) * d : 0;
            for (int k = 0; k < d; k++)
                strip[(size_t)k * PR_DENSE_NR + jj] = x ? x[k] : 0.0;
        }
        for (int k = 0; W && k < d / 2; k++) {
            const double *c = pr_posw_seq(W, 4 * k) + (n - 1) + j0, *sn = pr_posw_seq(W, 4 * k + 1) + (n - 1) + j0;
            double *xa = strip + (size_t)W->a[4 * k] * PR_DENSE_NR, *xb = strip + (size_t)W->b[4 * k + 1] * PR_DENSE_NR;
            for (int jj = 0; jj < rows; jj++) {
                double u = xa[jj], v = xb[jj];
                xa[jj] = u * c[jj] - v * sn[jj];
                xb[jj] = u * sn[jj] + v * c[jj];
            }
        }
    }
}

#if PR_DENSE_AVX512
/* Register blocks (32 zmm registers): qk keeps MR × 4 accumulators and a strip's 4 vectors of
 * one k; pv keeps MR × NZ accumulators and NZ vectors of B's row k. Each A entry is broadcast
 * once per k and used for NZ (4) products. */
enum { QK_MR = 6, PV_MR = 6, PV_NZ = 4 };

/* C (MR × NR, row stride ldc) = A (MR × K, row stride lda) · strip (K × NR) */
PR_AVX512 static PR_INLINE void qk_micro(double *C, size_t ldc, const double *A, size_t lda,
                                         const double *strip, int K, int MR)
{
    __m512d acc[QK_MR][4];
    for (int r = 0; r < MR; r++)
        for (int z = 0; z < 4; z++)
            acc[r][z] = _mm512_setzero_pd();
    for (int k = 0; k < K; k++) {
        __m512d b[4];
        for (int z = 0; z < 4; z++)
            b[z] = _mm512_loadu_pd(strip + (size_t)k * PR_DENSE_NR + 8 * z);
        for (int r = 0; r < MR; r++) {
            __m512d a = _mm512_set1_pd(A[r * lda + k]);
            for (int z = 0; z < 4; z++)
                acc[r][z] = _mm512_fmadd_pd(a, b[z], acc[r][z]);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int z = 0; z < 4; z++)
            _mm512_storeu_pd(C + r * ldc + 8 * z, acc[r][z]);
}

PR_AVX512 static void qk_rows(double *C, size_t ldc, const double *A, size_t lda, const double *strip,
                              int K, int mr)
{
    switch (mr) {
    case 6: qk_micro(C, ldc, A, lda, strip, K, 6); break;
    case 5: qk_micro(C, ldc, A, lda, strip, K, 5); break;
    case 4: qk_micro(C, ldc, A, lda, strip, K, 4); break;
    case 3: qk_micro(C, ldc, A, lda, strip, K, 3); break;
    case 2: qk_micro(C, ldc, A, lda, strip, K, 2); break;
    default: qk_micro(C, ldc, A, lda, strip, K, 1); break;
    }
}

PR_AVX512 static void qk_avx512(double *C, size_t ldc, const double *A, size_t lda, const double *Bp,
                                int M, int N, int K)
{
    for (int c0 = 0; c0 < N; c0 += PR_DENSE_NR) {
        const double *strip = Bp + (size_t)c0 * K;
        int r0 = 0;
        /* whole blocks inlined here (no call per block), the last rows through the switch */
        for (; r0 + QK_MR <= M; r0 += QK_MR)
            qk_micro(C + r0 * ldc + c0, ldc, A + r0 * lda, lda, strip, K, QK_MR);
        if (r0 < M)
            qk_rows(C + r0 * ldc + c0, ldc, A + r0 * lda, lda, strip, K, M - r0);
    }
}

/* C (MR × 8·NZ, row stride ldc) += A (MR × K; entry (r, k) at A[r·ars + k·acs]) · B (K × 8·NZ,
 * row stride ldb) */
PR_AVX512 static PR_INLINE void pv_micro(double *C, size_t ldc, const double *A, size_t ars, size_t acs,
                                         const double *B, size_t ldb, int K, int MR, int NZ)
{
    __m512d acc[PV_MR][PV_NZ];
    for (int r = 0; r < MR; r++)
        for (int z = 0; z < NZ; z++)
            acc[r][z] = _mm512_loadu_pd(C + r * ldc + 8 * z);
    for (int k = 0; k < K; k++) {
        __m512d b[PV_NZ];
        for (int z = 0; z < NZ; z++)
            b[z] = _mm512_loadu_pd(B + (size_t)k * ldb + 8 * z);
        for (int r = 0; r < MR; r++) {
            __m512d a = _mm512_set1_pd(A[r * ars + k * acs]);
            for (int z = 0; z < NZ; z++)
                acc[r][z] = _mm512_fmadd_pd(a, b[z], acc[r][z]);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int z = 0; z < NZ; z++)
            _mm512_storeu_pd(C + r * ldc + 8 * z, acc[r][z]);
}

#define PV_CASES(MR)                                                                \
    switch (nz) {                                                                   \
    case 4: pv_micro(C, ldc, A, ars, acs, B, ldb, K, MR, 4); break;                 \
    case 3: pv_micro(C, ldc, A, ars, acs, B, ldb, K, MR, 3); break;                 \
    case 2: pv_micro(C, ldc, A, ars, acs, B, ldb, K, MR, 2); break;                 \
    default: pv_micro(C, ldc, A, ars, acs, B, ldb, K, MR, 1); break;                \
    }                                                                               \
    break;

PR_AVX512 static void pv_block(double *C, size_t ldc, const double *A, size_t ars, size_t acs,
                               const double *B, size_t ldb, int K, int mr, int nz)
{
    switch (mr) {
    case 6: PV_CASES(6)
    case 5: PV_CASES(5)
    case 4: PV_CASES(4)
    case 3: PV_CASES(3)
    case 2: PV_CASES(2)
    default: PV_CASES(1)
    }
}

PR_AVX512 static void pv_avx512(double *C, size_t ldc, const double *A, size_t ars, size_t acs,
                                const double *B, size_t ldb, int M, int N, int K)
{
    /* B in chunks of KC rows and 8·PV_NZ columns: a tile's keys at once (the accumulators are
     * loaded and stored once per chunk: 32 rows ran at 51 GFLOP/s, 256 at 56, of 58 peak) */
    enum { KC = 256 };
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC;
        for (int c0 = 0; c0 < N; c0 += 8 * PV_NZ) {
            int nz = (N - c0 < 8 * PV_NZ ? N - c0 : 8 * PV_NZ) / 8;
            int r0 = 0;
            if (nz == PV_NZ)
                for (; r0 + PV_MR <= M; r0 += PV_MR)
                    pv_micro(C + r0 * ldc + c0, ldc, A + r0 * ars + k0 * acs, ars, acs, B + (size_t)k0 * ldb + c0,
                             ldb, kc, PV_MR, PV_NZ);
            for (; r0 < M; r0 += PV_MR)
                pv_block(C + r0 * ldc + c0, ldc, A + r0 * ars + k0 * acs, ars, acs,
                         B + (size_t)k0 * ldb + c0, ldb, kc, M - r0 < PV_MR ? M - r0 : PV_MR, nz);
        }
    }
}

/* exp(v) = 2^(k/16) e^r with k = round(16 v / ln2) and r = v - k ln2/16, |r| ≤ ln2/32 + 2^-40:
 * ln2/16 is split so that k·hi is exact (hi has 33 bits, |k| < 2^14) and v - k·hi is exact
 * (Sterbenz), so r carries one rounding (relative u, which moves the result by |r|u ≤ 0.022u).
 * 2^(j/16) = T_hi[j] + T_lo[j] to 2^-106 (tables from mpmath at 300 bits, correctly rounded).
 * q = e^r - 1 = r + r²(1/2 + r/6 + … + r⁵/5040) (Estrin), truncated after r^7/7!: relative
 * error 1.2e-18 < 0.011u; its roundings are relative to q, |q| ≤ 0.022, so ≤ 0.03u of the result.
 * e^v = 2^(k>>4) (T_hi + (T_hi q + T_lo)): the last addition rounds once (u), the fma's rounding
 * is relative to |T_hi q + T_lo| ≤ 0.023 T_hi (0.023u), and 2^(k>>4) enters the exponent bits
 * exactly (the result stays normal for v ≥ -708). Total relative error ≤ 1.1u (measured maximum
 * 1.03u over 2.4·10⁷ arguments against long double expl; tests/test_dense_kernel.c checks 2·10⁵);
 * v < -708 gives 0, as vexp_sum does; v > 709 is outside the contract (callers pass x - max ≤ 0).
 * Per vector of 8: 13 multiply-adds, two permutes, no gather, no table in memory. */
static const double exp_thi[16] = {
    0x1.0000000000000p+0, 0x1.0b5586cf9890fp+0, 0x1.172b83c7d517bp+0, 0x1.2387a6e756238p+0,
    0x1.306fe0a31b715p+0, 0x1.3dea64c123422p+0, 0x1.4bfdad5362a27p+0, 0x1.5ab07dd485429p+0,
    0x1.6a09e667f3bcdp+0, 0x1.7a11473eb0187p+0, 0x1.8ace5422aa0dbp+0, 0x1.9c49182a3f090p+0,
    0x1.ae89f995ad3adp+0, 0x1.c199bdd85529cp+0, 0x1.d5818dcfba487p+0, 0x1.ea4afa2a490dap+0};
static const double exp_tlo[16] = {
    0x0.0p+0, 0x1.8a62e4adc610bp-54, -0x1.19041b9d78a76p-55, 0x1.9b07eb6c70573p-54,
    0x1.6f46ad23182e4p-55, 0x1.ada0911f09ebcp-55, 0x1.d4397afec42e2p-56, 0x1.6324c054647adp-54,
    -0x1.bdd3413b26456p-54, -0x1.41577ee04992fp-55, 0x1.6e9f156864b27p-54, 0x1.c7c46b071f2bep-56,
    0x1.7a1cd345dcc81p-54, 0x1.11065895048ddp-55, 0x1.2ed02d75b3707p-55, -0x1.e9c23179c2893p-54};

typedef struct {
    __m512d thi0, thi1, tlo0, tlo1, m, c16, shift, hi, lo, lim, c2, c3, c4, c5, c6, c7;
    __m512i base;
} exp_consts_t;

/* exp(x - m) on the lanes of mk, 0 elsewhere and where x - m < -708 */
PR_AVX512 static PR_INLINE __m512d exp8(const exp_consts_t *e, __m512d x, __mmask8 mk)
{
    __m512d v = _mm512_sub_pd(x, e->m);
    __m512d t = _mm512_fmadd_pd(v, e->c16, e->shift), k = _mm512_sub_pd(t, e->shift);
    __m512d r = _mm512_fnmadd_pd(k, e->lo, _mm512_fnmadd_pd(k, e->hi, v));
    __m512d r2 = _mm512_mul_pd(r, r), r4 = _mm512_mul_pd(r2, r2);
    __m512d a = _mm512_fmadd_pd(e->c3, r, e->c2), b = _mm512_fmadd_pd(e->c5, r, e->c4);
    __m512d c = _mm512_fmadd_pd(e->c7, r, e->c6);
    __m512d q = _mm512_fmadd_pd(_mm512_fmadd_pd(c, r4, _mm512_fmadd_pd(b, r2, a)), r2, r);
    /* the bits of t are those of 1.5·2^52 + k: the table index is k mod 16 (the permutes read
     * the low 4 bits), the exponent k >> 4 */
    __m512i ti = _mm512_castpd_si512(t), ki = _mm512_sub_epi64(ti, e->base);
    __m512d th = _mm512_permutex2var_pd(e->thi0, ti, e->thi1), tl = _mm512_permutex2var_pd(e->tlo0, ti, e->tlo1);
    __m512d y = _mm512_add_pd(th, _mm512_fmadd_pd(th, q, tl));
    __m512i yb = _mm512_add_epi64(_mm512_castpd_si512(y), _mm512_slli_epi64(_mm512_srai_epi64(ki, 4), 52));
    return _mm512_maskz_mov_pd(_mm512_mask_cmp_pd_mask(mk, v, e->lim, _CMP_NLT_UQ), _mm512_castsi512_pd(yb));
}

PR_AVX512 static double exp_sum_avx512(double *y, const double *x, double m, int len)
{
    const exp_consts_t e = {
        _mm512_loadu_pd(exp_thi), _mm512_loadu_pd(exp_thi + 8), _mm512_loadu_pd(exp_tlo),
        _mm512_loadu_pd(exp_tlo + 8), _mm512_set1_pd(m), _mm512_set1_pd(0x1.71547652b82fep+4),
        _mm512_set1_pd(0x1.8p52), _mm512_set1_pd(0x1.62e42fee00000p-5),
        _mm512_set1_pd(0x1.a39ef35793c76p-37), _mm512_set1_pd(-708.0), _mm512_set1_pd(0.5),
        _mm512_set1_pd(1.0 / 6), _mm512_set1_pd(1.0 / 24), _mm512_set1_pd(1.0 / 120),
        _mm512_set1_pd(1.0 / 720), _mm512_set1_pd(1.0 / 5040), _mm512_set1_epi64(0x4338000000000000LL)};
    __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
    int c = 0;
    /* two vectors per step: two independent chains in flight */
    for (; c + 16 <= len; c += 16) {
        __m512d o0 = exp8(&e, _mm512_loadu_pd(x + c), 0xff), o1 = exp8(&e, _mm512_loadu_pd(x + c + 8), 0xff);
        _mm512_storeu_pd(y + c, o0);
        _mm512_storeu_pd(y + c + 8, o1);
        acc0 = _mm512_add_pd(acc0, o0);
        acc1 = _mm512_add_pd(acc1, o1);
    }
    for (; c < len; c += 8) {
        __mmask8 mk = len - c >= 8 ? 0xff : (__mmask8)((1u << (len - c)) - 1);
        __m512d o = exp8(&e, _mm512_maskz_loadu_pd(mk, x + c), mk);
        _mm512_mask_storeu_pd(y + c, mk, o);
        acc0 = _mm512_add_pd(acc0, o);
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1));
}
#endif

double pr_dense_exp_sum_(double *y, const double *x, double m, int len)
{
#if PR_DENSE_AVX512
    return exp_sum_avx512(y, x, m, len);
#else
    (void)y, (void)x, (void)m, (void)len;
    return NAN;
#endif
}

void pr_dense_qk_(double *C, size_t ldc, const double *A, size_t lda, const double *Bp, int M, int N,
                  int K)
{
#if PR_DENSE_AVX512
    qk_avx512(C, ldc, A, lda, Bp, M, N, K);
#else
    (void)C, (void)ldc, (void)A, (void)lda, (void)Bp, (void)M, (void)N, (void)K;
#endif
}

void pr_dense_pv_(double *C, size_t ldc, const double *A, size_t ars, size_t acs, const double *B,
                  size_t ldb, int M, int N, int K)
{
#if PR_DENSE_AVX512
    pv_avx512(C, ldc, A, ars, acs, B, ldb, M, N, K);
#else
    (void)C, (void)ldc, (void)A, (void)ars, (void)acs, (void)B, (void)ldb, (void)M, (void)N, (void)K;
#endif
}
