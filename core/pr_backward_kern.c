/* The backward execute's inner loops (docs/math.md §7; pr_backward.c's derivation): the pairs'
 * symbols and κ^w, dw through the parents, and the frequency-domain products' kernels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "pr_cpu.h"
#include "pr_backward_impl.h"

/* pre[0..m) = t_f on the offsets l0.. of a block: e^β Π_k w_k^{f_k}, factor by factor in k order
 * (every time-domain pair sum takes its terms through here: the same bits wherever it is made) */
static inline void term_block(double *restrict pre, const pr_backward_plan *p, const unsigned char *f, size_t l0,
                              size_t m)
{
    size_t L = 2 * (size_t)p->n - 1;
    memcpy(pre, p->bias + l0, sizeof(double) * m);
    for (int k = 0; k < p->s; k++) {
        const double *w = p->wpow + ((size_t)k * (p->G + 1) + f[k]) * L + l0;
        for (size_t q = 0; q < m; q++)
            pre[q] *= w[q];
    }
}

/* For the nb pairs q0.. of a batch, by blocks of SYM_BLK offsets outside and the pairs' terms
 * inside (so that κ^w's blocks stay in cache across the batch):
 *   th->tsym[i] = Σ_{f in pair i} mult(f) σ^|f| t_f when sym[i] (t_f = bias · Π_k w_k^{f_k}),
 *   κ^w(ℓ) += α_f t_f(ℓ) N_i(ℓ) when Ns[i] != NULL. */
__attribute__((target_clones("avx2", "default")))
void pr_backward_symbols_(const pr_backward_plan *p, bw_thread *th, long q0, int nb, const int *sym,
                          const double *const *Ns)
{
    int n = p->n, s = p->s;
    const pr_expand_struct *E = p->E;
    size_t L = 2 * (size_t)n - 1;
    double *pre = th->preb;
    for (size_t l0 = 0; l0 < L; l0 += SYM_BLK) {
        size_t m = L - l0 < SYM_BLK ? L - l0 : SYM_BLK;
        for (int i = 0; i < nb; i++) {
            const double *N = Ns[i];
            double *sum = th->tsym + (size_t)i * L + l0;
            if (!sym[i] && !N)
                continue;
            if (sym[i])
                memset(sum, 0, sizeof(double) * m);
            for (long t = E->pstart[q0 + i]; t < E->pstart[q0 + i + 1]; t++) {
                term_block(pre, p, E->e + (size_t)t * s, l0, m);
                if (sym[i]) {
                    double b = p->base[t];
                    for (size_t q = 0; q < m; q++)
                        sum[q] += b * pre[q];
                }
                if (N && p->alpha[t] != 0.0) {
                    double al = p->alpha[t];
                    for (size_t q = 0; q < m; q++)
                        th->kappa_w[l0 + q] += al * pre[q] * N[l0 + q];
                }
            }
        }
    }
}

/* dw_k(ℓ) += C_i(ℓ) Σ_{f in pair i} α̂_f f_k t_{f-k}(ℓ) for the batch's pairs q0 + i with Cs[i],
 * through the parents: α̂_f f_k = σ α_{f-k} (pr_backward.c's derivation, (2)), and the terms
 * e = f - k of pair q0 + i are those of its parent pair P = pair_sub[(q0 + i) s + k], of size
 * m' = |P|, where σ α_e = σ c_{m'} mult(e) σ^{m'}. So dw_k += C_i ∘ (σ c_{m'} S_P) with S_P the
 * parent's time-domain symbol sum Σ_e mult(e) σ^{m'} t_e: the plan's (psym), or made here once
 * per parent of the batch and block of offsets (as pr_backward_symbols_ makes it: the same bits),
 * s products per parent term; then one product per (pair, k) and offset. */
__attribute__((target_clones("avx2", "default")))
void pr_backward_dw_(const pr_backward_plan *p, bw_thread *th, long q0, int nb, const double *const *Cs,
                     double *dw)
{
    int s = p->s, np = 0;
    const pr_expand_struct *E = p->E;
    size_t L = 2 * (size_t)p->n - 1;
    long *pl = th->plist;
    int *ix = th->pidx;
    for (int i = 0; i < nb; i++)
        for (int k = 0; k < s; k++) {
            long par = Cs[i] ? p->pair_sub[(q0 + i) * s + k] : -1;
            int j = -1;
            if (par >= 0) {
                for (j = 0; j < np && pl[j] != par; j++)
                    ;
                if (j == np)
                    pl[np++] = par;
            }
            ix[i * s + k] = j;
        }
    for (size_t l0 = 0; l0 < L; l0 += SYM_BLK) {
        size_t m = L - l0 < SYM_BLK ? L - l0 : SYM_BLK;
        for (int j = 0; j < np && !p->psym; j++) {
            double *S = th->dws + (size_t)j * SYM_BLK;
            memset(S, 0, sizeof(double) * m);
            for (long t = E->pstart[pl[j]]; t < E->pstart[pl[j] + 1]; t++) {
                double b = p->base[t];
                term_block(th->preb, p, E->e + (size_t)t * s, l0, m);
                for (size_t q = 0; q < m; q++)
                    S[q] += b * th->preb[q];
            }
        }
        for (int i = 0; i < nb; i++)
            for (int k = 0; k < s; k++) {
                int j = ix[i * s + k];
                double a = j < 0 ? 0.0 : p->sigma * p->poly[E->deg[E->pstart[pl[j]]]];
                if (a == 0.0)
                    continue;
                const double *S = p->psym ? p->psym + (size_t)pl[j] * L + l0 : th->dws + (size_t)j * SYM_BLK;
                const double *C = Cs[i] + l0;
                double *o = dw + (size_t)k * L + l0;
                for (size_t q = 0; q < m; q++)
                    o[q] += C[q] * (a * S[q]);
            }
    }
}

/* One kv head's ncol columns of one pair on the mq frequencies of a block, the pair's spectrum
 * ah·t̂ = a + ib read from T (real part T[q·ts], imaginary part T[toff + q·ts]: a = h·T[q·ts],
 * b = h·T[toff + q·ts]; planar, ts = 1, or interleaved, ts = 2 and toff = 1), y, x and the sums
 * interleaved (column c at offset c·cs in aq, ak, y and x):
 *   wq: aq_c += (a + ib) y_c (unless aq is NULL: dQ's sums are the forward's, dq_forward),
 *       ak_c += (a - ib) x_c  (dQ's and dK's sums), each component two
 *       fused multiply-adds: aq_re = fma(-b, yi, fma(a, yr, aq_re)), aq_im = fma(b, yr, fma(a, yi,
 *       aq_im)), ak_re = fma(b, xi, fma(a, xr, ak_re)), ak_im = fma(-b, xr, fma(a, xi, ak_im));
 *   wz: za += [xr yr, xi yi], zb += [xr yi, xi yr] over the columns in order (dw's Σ_c x_c ∘
 *       conj(y_c)); zf: column 0 starts za, zb (the first kv head); zout (the last kv head): the
 *       sums folded into it instead, re = za_re + za_im, im = zb_im - zb_re, else kept in za, zb
 *       for the next kv head. za, zb stay in registers across the columns.
 * The scalar version does the same operations per frequency as the AVX2 one (fma() is exact
 * fused), so the result depends neither on the CPU's path nor on a frequency's place in a vector. */
static void mac_cols_scalar(double *restrict aq, double *restrict ak, double *restrict za, double *restrict zb,
                            double *restrict zout, const double *y, const double *x, const double *T, long toff,
                            long ts, double h, size_t cs, int ncol, long q0, long mq, int wq, int wz, int zf)
{
    for (long q = q0; q < mq; q++) {
        double a = wq ? h * T[q * ts] : 0.0, b = wq ? h * T[toff + q * ts] : 0.0;
        double z0 = zf ? 0.0 : za[2 * q], z1 = zf ? 0.0 : za[2 * q + 1];
        double z2 = zf ? 0.0 : zb[2 * q], z3 = zf ? 0.0 : zb[2 * q + 1];
        for (int c = 0; c < ncol; c++) {
            size_t o = (size_t)c * cs + 2 * (size_t)q;
            double yr = y[o], yi = y[o + 1], xr = x[o], xi = x[o + 1];
            if (wq && aq) {
                aq[o] = fma(-b, yi, fma(a, yr, aq[o]));
                aq[o + 1] = fma(b, yr, fma(a, yi, aq[o + 1]));
            }
            if (wq) {
                ak[o] = fma(b, xi, fma(a, xr, ak[o]));
                ak[o + 1] = fma(-b, xr, fma(a, xi, ak[o + 1]));
            }
            if (wz && zf && c == 0) {
                z0 = xr * yr;
                z1 = xi * yi;
                z2 = xr * yi;
                z3 = xi * yr;
            } else if (wz) {
                z0 = fma(xr, yr, z0);
                z1 = fma(xi, yi, z1);
                z2 = fma(xr, yi, z2);
                z3 = fma(xi, yr, z3);
            }
        }
        if (wz && zout) {
            zout[2 * q] = z0 + z1;
            zout[2 * q + 1] = z3 - z2;
        } else if (wz) {
            za[2 * q] = z0;
            za[2 * q + 1] = z1;
            zb[2 * q] = z2;
            zb[2 * q + 1] = z3;
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* r = h·[a0 a0 a1 a1], i = h·[-b0 b0 -b1 b1] for frequencies q, q+1 of T (the scalar a, b); T
 * planar (ts = 1) or interleaved (ts = 2, toff = 1), as mac_batch passes it */
__attribute__((target("avx2,fma")))
static inline void spread2(__m256d *r, __m256d *i, const double *T, long toff, long ts, long q, __m256d hv)
{
    const __m256d neg = _mm256_set_pd(0.0, -0.0, 0.0, -0.0);
    __m256d a, b;
    if (ts == 1) {
        a = _mm256_permute4x64_pd(_mm256_castpd128_pd256(_mm_loadu_pd(T + q)), 0x50);
        b = _mm256_permute4x64_pd(_mm256_castpd128_pd256(_mm_loadu_pd(T + toff + q)), 0x50);
    } else {   /* interleaved: ts = 2, toff = 1 */
        __m256d v = _mm256_loadu_pd(T + 2 * q);
        a = _mm256_movedup_pd(v);
        b = _mm256_permute_pd(v, 0xf);
    }
    *r = _mm256_mul_pd(hv, a);
    *i = _mm256_xor_pd(_mm256_mul_pd(hv, b), neg);
}

/* two frequencies per vector; swapping [re im] to [im re] gives the cross terms */
__attribute__((target("avx2,fma")))
static void mac_cols_avx2(double *restrict aq, double *restrict ak, double *restrict za, double *restrict zb,
                          double *restrict zout, const double *y, const double *x, const double *T, long toff, long ts,
                          double h, size_t cs, int ncol, long mq, int wq, int wz, int zf)
{
    const __m256d hv = _mm256_set1_pd(h);
    long q = 0;
    for (; q + 2 <= mq; q += 2) {
        __m256d rv = _mm256_setzero_pd(), iv = _mm256_setzero_pd();
        if (wq)
            spread2(&rv, &iv, T, toff, ts, q, hv);
        __m256d zav = zf ? _mm256_setzero_pd() : _mm256_loadu_pd(za + 2 * q);
        __m256d zbv = zf ? _mm256_setzero_pd() : _mm256_loadu_pd(zb + 2 * q);
        for (int c = 0; c < ncol; c++) {
            size_t o = (size_t)c * cs + 2 * (size_t)q;
            __m256d yv = _mm256_loadu_pd(y + o), xv = _mm256_loadu_pd(x + o);
            __m256d ys = _mm256_permute_pd(yv, 5);
            if (wq && aq) {
                __m256d u = _mm256_fmadd_pd(rv, yv, _mm256_loadu_pd(aq + o));
                _mm256_storeu_pd(aq + o, _mm256_fmadd_pd(iv, ys, u));
            }
            if (wq) {
                __m256d u = _mm256_fmadd_pd(rv, xv, _mm256_loadu_pd(ak + o));
                _mm256_storeu_pd(ak + o, _mm256_fnmadd_pd(iv, _mm256_permute_pd(xv, 5), u));
            }
            if (wz && zf && c == 0) {
                zav = _mm256_mul_pd(xv, yv);
                zbv = _mm256_mul_pd(xv, ys);
            } else if (wz) {
                zav = _mm256_fmadd_pd(xv, yv, zav);
                zbv = _mm256_fmadd_pd(xv, ys, zbv);
            }
        }
        if (wz && zout) {
            /* [z0+z1, z3-z2] per frequency: zav = [z0 z1], zbv = [z2 z3]; hadd gives z0+z1, hsub of
             * [z3 z2] gives z3-z2 */
            __m256d zs = _mm256_permute_pd(zbv, 5);
            __m256d re = _mm256_hadd_pd(zav, zav), im = _mm256_hsub_pd(zs, zs);
            _mm256_storeu_pd(zout + 2 * q, _mm256_blend_pd(re, im, 0xa));
        } else if (wz) {
            _mm256_storeu_pd(za + 2 * q, zav);
            _mm256_storeu_pd(zb + 2 * q, zbv);
        }
    }
    mac_cols_scalar(aq, ak, za, zb, zout, y, x, T, toff, ts, h, cs, ncol, q, mq, wq, wz, zf);
}
#endif

void pr_backward_mac_cols_(double *aq, double *ak, double *za, double *zb, double *zout, const double *y,
                           const double *x, const double *T, long toff, long ts, double h, size_t cs, int ncol,
                           long mq, int wq, int wz, int zf, int vec)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (vec) {
        mac_cols_avx2(aq, ak, za, zb, zout, y, x, T, toff, ts, h, cs, ncol, mq, wq, wz, zf);
        return;
    }
#endif
    (void)vec;
    mac_cols_scalar(aq, ak, za, zb, zout, y, x, T, toff, ts, h, cs, ncol, 0, mq, wq, wz, zf);
}

/* pr_backward_mac_cols_'s AVX2 path: on a CPU with AVX2 and FMA, unless $POLYROPE_BACKWARD_KERNEL=generic forces
 * the scalar one (test_backward_heads checks that both give the same bits) */
int pr_backward_mac_vec_(void)
{
    return pr_cpu_kernel_ok(PR_CPU_AVX2_FMA, "POLYROPE_BACKWARD_KERNEL");
}

