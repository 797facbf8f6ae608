/* The dense reference's AVX-512 path (core/pr_dense_kernel.c): its exp against long double expl
 * (within the 1.1u derived there, 0 below -708, every length and tail, in place), its two tile
 * products against long double sums (within γ_K of the sum of |products|: each entry is a
 * sequential sum of K fused products), then pr_dense_forward at head dimensions the kernels
 * serve (d a multiple of 8) against a long double RoPE textbook within pr_dense_error_est's
 * bound plus the textbook's own (derived at textbook_rope), its weights one by one within the
 * exp's bound (check_weights: exact scores, V = I), and pr_dense_backward's kernel path against
 * its loop path (dw given) within the sum of both estimates; the RoPE rotation from W's sequences against pr_rope_rotate (bit for bit);
 * the input scans every call makes (pr_vec_check_finite, pr_posw_max_rowsum)
 * against plain loops. On a CPU without AVX-512F (or under POLYROPE_DENSE_KERNEL=generic) the
 * first two parts are skipped (printed); the others then test the OpenBLAS path and the Taylor exp
 * at the same sizes. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "polyrope.h"
#include "pr_dense_impl.h"
#include "pr_test.h"

typedef long double ld;
static const double u = DBL_EPSILON / 2;

static double gamma_k(int k) { return k * u / (1 - k * u); }

static void check_exp(pr_rng_t rng)
{
    enum { NX = 200000 };
    double *x = malloc(sizeof(double) * NX), *y = malloc(sizeof(double) * NX);
    /* mostly the forward's range (-30, 0], then all of [-750, 700], then near 0 */
    for (int i = 0; i < NX; i++)
        x[i] = i % 4 == 0 ? pr_rng_range(rng, -750, 700) : i % 4 == 1 ? pr_rng_range(rng, -1e-3, 1e-3)
                                                                      : pr_rng_range(rng, -30, 0);
    x[0] = 0.0;
    x[1] = -708.0;
    x[2] = -708.0000001;
    x[3] = 700.0;
    x[4] = -0x1p-1074;
    double sum = pr_dense_exp_sum_(y, x, 0.0, NX), worst = 0.0;
    ld ysum = 0;
    int wi = 0, flush_ok = 1;
    for (int i = 0; i < NX; i++) {
        ysum += y[i];
        if (x[i] < -708.0) {
            flush_ok &= y[i] == 0.0;
            continue;
        }
        ld e = expl((ld)x[i]);
        double rel = (double)(fabsl((ld)y[i] - e) / e);
        if (rel > worst) {
            worst = rel;
            wi = i;
        }
    }
    PR_CHECK(worst <= 1.1 * u, "exp: relative error %.3f u at x = %a (y = %a), bound 1.1 u", worst / u, x[wi], y[wi]);
    PR_CHECK(flush_ok, "exp: an argument below -708 did not give 0");
    PR_CHECK(fabsl(sum - ysum) <= gamma_k(NX) * ysum, "exp: returned sum %.17g, outputs sum %.17Lg", sum, ysum);
    /* every length (the masked tail), shifted arguments (x - m exact: multiples of 2^-30 near
     * m), in place, and nothing written past len */
    for (int len = 0; len <= 40; len++) {
        double xs[48], ys[48], zs[48], m = pr_rng_range(rng, -4, 4);
        m = ldexp(nearbyint(ldexp(m, 30)), -30);
        for (int c = 0; c < 48; c++) {
            xs[c] = m + ldexp(nearbyint(ldexp(pr_rng_range(rng, -40, 0), 30)), -30);
            ys[c] = zs[c] = -1.0;
        }
        memcpy(zs, xs, sizeof(double) * len);
        double s1 = pr_dense_exp_sum_(ys, xs, m, len), s2 = pr_dense_exp_sum_(zs, zs, m, len), err = 0.0;
        for (int c = 0; c < len; c++) {
            ld e = expl((ld)xs[c] - (ld)m);
            err = fmax(err, (double)(fabsl((ld)ys[c] - e) / e));
        }
        int tail = 1;
        for (int c = len; c < 48; c++)
            tail &= ys[c] == -1.0 && zs[c] == -1.0;
        PR_CHECK(err <= 1.1 * u && tail && s1 == s2 && !memcmp(ys, zs, sizeof(double) * len),
                 "exp, len %d m %a: error %.3f u, tail untouched %d, in place same %d", len, m, err / u, tail,
                 s1 == s2 && !memcmp(ys, zs, sizeof(double) * len));
    }
    free(x);
    free(y);
}

/* C = A·Bᵀ (qk, B packed) and C += A·B (pv, A read normal or transposed) at random shapes,
 * each entry within γ_K (pv: γ_{K+1}, C's start included) of the sum of |terms| */
static void check_products(pr_rng_t rng)
{
    for (int trial = 0; trial < 60; trial++) {
        int M = 1 + (int)pr_rng_below(rng, trial % 3 ? 20 : 128), N = 1 + (int)pr_rng_below(rng, trial % 2 ? 40 : 256);
        int K = trial % 4 ? 8 * (1 + (int)pr_rng_below(rng, 17)) : 1 + (int)pr_rng_below(rng, 70);
        int Nr = (N + PR_DENSE_NR - 1) / PR_DENSE_NR * PR_DENSE_NR, rows = N + (int)pr_rng_below(rng, 3);
        double *A = pr_dense_alloc_(M, K), *B = pr_dense_alloc_(rows, K);
        double *Bp = pr_dense_alloc_(pr_dense_packed_len_(rows, K), 1), *C = pr_dense_alloc_(M, Nr + 3);
        pr_rng_fill(A, (long)M * K, 1.0, rng);
        pr_rng_fill(B, (long)rows * K, 1.0, rng);
        pr_dense_pack_(Bp, B, 0, rows, K);
        size_t ldc = (size_t)Nr + trial % 3;
        pr_dense_qk_(C, ldc, A, K, Bp, M, N, K);
        double worst = 0.0;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < Nr; j++) {
                ld s = 0, a = 0;
                for (int k = 0; k < K && j < rows; k++) {
                    s += (ld)A[i * K + k] * B[(size_t)j * K + k];
                    a += fabsl((ld)A[i * K + k] * B[(size_t)j * K + k]);
                }
                double e = (double)fabsl(C[i * ldc + j] - s), tol = gamma_k(K) * (double)a;
                worst = fmax(worst, tol > 0 ? e / tol : e > 0 ? INFINITY : 0);
            }
        PR_CHECK(worst <= 1.0, "qk M=%d N=%d K=%d rows=%d ldc=%zu: error %.3g of the bound", M, N, K, rows, ldc, worst);
        free(A); free(B); free(Bp); free(C);

        /* pv: M×N += (M×K)·(K×N), N a multiple of 8 */
        int tr = trial % 2, Np = 8 * (1 + (int)pr_rng_below(rng, trial % 5 ? 8 : 17));
        size_t ars = tr ? 1 : (size_t)K + 1, acs = tr ? (size_t)M + 2 : 1, ldb = (size_t)Np + 8 * (trial % 2);
        A = pr_dense_alloc_((size_t)M + 2, (size_t)K + 1);
        B = pr_dense_alloc_(K, ldb);
        C = pr_dense_alloc_(M, Np);
        double *C0 = pr_dense_alloc_(M, Np);
        pr_rng_fill(A, (long)(M + 2) * (K + 1), 1.0, rng);
        pr_rng_fill(B, (long)(K * ldb), 1.0, rng);
        pr_rng_fill(C0, (long)M * Np, 1.0, rng);
        memcpy(C, C0, sizeof(double) * M * Np);
        pr_dense_pv_(C, Np, A, ars, acs, B, ldb, M, Np, K);
        worst = 0.0;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < Np; j++) {
                ld s = C0[i * Np + j], a = fabsl((ld)C0[i * Np + j]);
                for (int k = 0; k < K; k++) {
                    ld t = (ld)A[i * ars + k * acs] * B[k * ldb + j];
                    s += t;
                    a += fabsl(t);
                }
                double e = (double)fabsl(C[i * Np + j] - s), tol = gamma_k(K + 1) * (double)a;
                worst = fmax(worst, tol > 0 ? e / tol : e > 0 ? INFINITY : 0);
            }
        PR_CHECK(worst <= 1.0, "pv M=%d N=%d K=%d transposed=%d: error %.3g of the bound", M, Np, K, tr, worst);
        free(A); free(B); free(C); free(C0);
    }
}

/* O of RoPE (or W = I) attention in long double (u_L = 2^-64), rows rotated with W's own cos and
 * sin sequences (the numbers the reference rotates with), no shift: O_tab, the exact attention on
 * those tables, up to the textbook's own rounding. Returns a first-order bound on that rounding,
 * derived as pr_dense_error_est's with u_L: a rotated entry is off by 2u_L (|x_a c| + |x_b s|), so
 * with a_ij = σ Σ_c |Q'|_ic |K'|_jc (those sums of moduli, |β| added) the score m_ij by
 * θ_m = (d + 6) u_L max a_ij; expl within 2u_L; so each A_ij is relatively off by
 * θ = θ_m + 2u_L, and O_ic = Σ_j P_ij V_jc moves by Σ_j P_ij |θ_j| |V_jc - O_ic| ≤ 2θ max|V| plus
 * the sums over n keys (numerator and l) and the division, (2n + 1) u_L max|V|. */
static double textbook_rope(ld *O, const double *Q, const double *K, const double *V, const pr_posw_struct *W,
                            const pr_attn_opts_t *opts, int rope)
{
    int n = W->n, d = W->d;
    ld *Qr = malloc(sizeof(ld) * n * d), *Kr = malloc(sizeof(ld) * n * d), *A = malloc(sizeof(ld) * n);
    ld *Qa = malloc(sizeof(ld) * n * d), *Ka = malloc(sizeof(ld) * n * d), amax = 0, vmax = 0;
    for (int i = 0; i < n * d; i++) {
        Qr[i] = Qa[i] = Q[i];
        Kr[i] = Ka[i] = K[i];
        vmax = fmaxl(vmax, fabsl((ld)V[i]));
    }
    for (int k = 0; rope && k < d / 2; k++) {
        int a = W->a[4 * k], b = W->b[4 * k + 1];
        for (int i = 0; i < n; i++) {
            ld c = pr_posw_at(W, 4 * k, i), s = pr_posw_at(W, 4 * k + 1, i);
            ld qa = Qr[i * d + a], qb = Qr[i * d + b], ka = Kr[i * d + a], kb = Kr[i * d + b];
            Qr[i * d + a] = qa * c - qb * s;
            Qr[i * d + b] = qa * s + qb * c;
            Kr[i * d + a] = ka * c - kb * s;
            Kr[i * d + b] = ka * s + kb * c;
            Qa[i * d + a] = fabsl(qa * c) + fabsl(qb * s);
            Qa[i * d + b] = fabsl(qa * s) + fabsl(qb * c);
            Ka[i * d + a] = fabsl(ka * c) + fabsl(kb * s);
            Ka[i * d + b] = fabsl(ka * s) + fabsl(kb * c);
        }
    }
    for (int i = 0; i < n; i++) {
        ld l = 0;
        for (int j = 0; j < n; j++) {
            ld m = 0, a = 0;
            for (int c = 0; c < d; c++) {
                m += Qr[i * d + c] * Kr[j * d + c];
                a += fabsl(Qa[i * d + c] * Ka[j * d + c]);
            }
            ld b = opts->beta ? opts->beta[i - j + n - 1] : 0;
            m = m * opts->sigma + b;
            amax = fmaxl(amax, a * opts->sigma + fabsl(b));
            A[j] = opts->causal && j > i ? 0 : expl(m);
            l += A[j];
        }
        /* O_i = Σ_j A_ij V_j / l, a row of V at a time */
        ld *Oi = O + (size_t)i * d;
        memset(Oi, 0, sizeof(ld) * d);
        for (int j = 0; j < n; j++)
            for (int c = 0; c < d; c++)
                Oi[c] += A[j] * V[j * d + c];
        for (int c = 0; c < d; c++)
            Oi[c] /= l;
    }
    free(Qr);
    free(Kr);
    free(A);
    free(Qa);
    free(Ka);
    const ld uL = 0x1p-64L, theta = (d + 6) * uL * amax + 2 * uL;
    return (double)(1.01L * (2 * theta + (2 * n + 1) * uL) * vmax);
}

/* the checks every dense call makes on its inputs, rewritten to vectorise: pr_vec_check_finite
 * finds one NaN or ±Inf at any position of any length (blocks of 1024 and their tails), passes
 * finite data of any size; pr_posw_max_rowsum equals the offset-by-offset sums bit for bit */
static void check_input_scans(pr_rng_t rng)
{
    static double x[2100];
    const double bad[3] = {NAN, INFINITY, -INFINITY};
    int ok = 1;
    for (int len = 0; len <= 2100; len += 1 + len / 64) {
        for (int i = 0; i < len; i++)
            x[i] = i % 5 == 0 ? DBL_MAX : i % 5 == 1 ? -0.0 : i % 5 == 2 ? 0x1p-1074 : pr_rng_range(rng, -1e300, 1e300);
        ok &= pr_vec_check_finite(x, len) == PR_OK;
        for (int pos = 0; pos < len; pos += 1 + (int)pr_rng_below(rng, 97)) {
            double keep = x[pos];
            x[pos] = bad[pos % 3];
            int st = pr_vec_check_finite(x, len);
            PR_CHECK(st == PR_ENONFINITE, "check_finite: %g at %d of %d not found", x[pos], pos, len);
            x[pos] = keep;
        }
    }
    PR_CHECK(ok, "check_finite refused finite data");
    for (int trial = 0; trial < 20; trial++) {
        int n = 1 + (int)pr_rng_below(rng, 700), d = 2 * (1 + (int)pr_rng_below(rng, 6));
        pr_posw_t W;
        if (pr_posw_init_general(W, n, d, rng))
            abort();
        double m = 0.0;
        for (long l = 0; l < 2L * n - 1; l++) {
            double sum = 0.0;
            for (int k = 0; k < W->s; k++)
                sum += fabs(W->w[(size_t)k * (2 * n - 1) + l]);
            m = fmax(m, sum);
        }
        PR_CHECK(pr_posw_max_rowsum(W) == m, "max_rowsum n=%d d=%d: %a, offset by offset %a", n, d,
                 pr_posw_max_rowsum(W), m);
        pr_posw_clear(W);
    }
}

/* the rotation from W's own cos and sin sequences is pr_rope_rotate's, bit for bit (docs/math.md
 * §2), both layouts, both signs, in place too */
static void check_rotation(pr_rng_t rng)
{
    for (int trial = 0; trial < 24; trial++) {
        int n = 1 + (int)pr_rng_below(rng, 300), d = 2 * (1 + (int)pr_rng_below(rng, 40)), sign = trial % 2 ? -1 : 1;
        pr_rope_layout_t lay = trial % 4 < 2 ? PR_ROPE_INTERLEAVED : PR_ROPE_NEOX;
        double base = trial % 3 ? 10000.0 : 37.5;
        size_t nd = (size_t)n * d;
        double *X = malloc(sizeof(double) * nd), *A = malloc(sizeof(double) * nd), *B = malloc(sizeof(double) * nd);
        pr_rng_fill(X, (long)nd, 3.0, rng);
        pr_posw_t W;
        if (pr_posw_init_rope(W, n, d, base, lay))
            abort();
        PR_CHECK_OK(pr_rope_rotate(A, X, n, d, base, lay, sign));
        pr_dense_rotate_(B, X, W, sign);
        PR_CHECK(!memcmp(A, B, sizeof(double) * nd), "rotation n=%d d=%d layout=%d sign=%d base=%g differs", n, d,
                 (int)lay, sign, base);
        if (sign == 1) {
            /* packing with the rotation gives the packed rotated rows, bit for bit */
            double *P1 = pr_dense_alloc_(pr_dense_packed_len_(n, d), 1), *P2 = pr_dense_alloc_(pr_dense_packed_len_(n, d), 1);
            pr_dense_pack_(P1, X, W, n, d);
            pr_dense_pack_(P2, B, 0, n, d);
            PR_CHECK(!memcmp(P1, P2, sizeof(double) * pr_dense_packed_len_(n, d)), "rotating pack n=%d d=%d layout=%d differs",
                     n, d, (int)lay);
            free(P1);
            free(P2);
        }
        pr_dense_rotate_(X, X, W, sign);
        PR_CHECK(!memcmp(A, X, sizeof(double) * nd), "rotation in place n=%d d=%d differs", n, d);
        pr_posw_clear(W);
        free(X); free(A); free(B);
    }
}

/* The forward's weights one by one, on data where nothing else rounds: W = I, σ = 1/64, Q and K
 * nonzero in two columns only, multiples of 2^-12 below 2^8 (products of 21-bit integers: every
 * score and every score minus its row's max is exact), n ≤ 64 keys (one tile: no rescaling) and
 * V = I (n × d, d = 64), so acc_ij = ŵ_ij exactly and O_ij = fl(ŵ_ij · inv_i) with inv_i = fl(1/l_i);
 * the row's max key has ŵ = exp(0) = 1 exactly, so O at that key is inv_i itself. Hence
 * O_ij / O_i,max = ŵ_ij (1 + δ), |δ| ≤ u, and ŵ_ij = e^{v_ij}(1 + θ), |θ| ≤ E, the exp's
 * documented bound: 1.1u (pr_dense_kernel.c) or 2.7u (vexp_sum, pr_dense_tile.c). So
 * |O_ij / O_i,max - e^{v_ij}| ≤ (E + u + 2^-60) e^{v_ij}, the last term the long double ratio and
 * expl; below e^-700, where O may be subnormal, 2^-1074 / inv_i more. Arguments v < -708 give 0.
 * An exp off by 4u anywhere on [-700, 0] fails this (2.1u of slack with AVX-512, 3.7u without). */
static void check_weights(pr_rng_t rng)
{
    enum { D = 64 };
    const double E = pr_dense_avx512_() ? 1.1 * u : 2.7 * u;
    const double scales[] = {1.0, 4.0, 16.0, 100.0, 255.0};
    for (int trial = 0; trial < 10; trial++) {
        int n = trial < 5 ? 64 : 1 + (int)pr_rng_below(rng, 64), causal = trial % 2;
        double sc = scales[trial % 5];
        size_t nd = (size_t)n * D;
        double *Q = calloc(nd, sizeof(double)), *K = calloc(nd, sizeof(double)), *V = calloc(nd, sizeof(double));
        double *O = malloc(sizeof(double) * nd);
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < 2; c++) {
                Q[(size_t)i * D + c] = ldexp(nearbyint(ldexp(pr_rng_range(rng, -sc, sc), 12)), -12);
                K[(size_t)i * D + c] = ldexp(nearbyint(ldexp(pr_rng_range(rng, -sc, sc), 12)), -12);
            }
            V[(size_t)i * D + i] = 1.0;
        }
        pr_posw_t W;
        if (pr_posw_init_identity(W, n, D))
            abort();
        pr_attn_opts_t opts;
        pr_attn_opts_default(&opts, D);
        opts.sigma = 0x1p-6;
        opts.causal = causal;
        PR_CHECK_OK(pr_dense_forward(O, NULL, Q, K, V, W, n, D, &opts));
        double worst = 0.0;
        int wi = 0, wj = 0, zeros = 1;
        for (int i = 0; i < n; i++) {
            int len = causal ? i + 1 : n, jm = 0;
            double M[64], m = -INFINITY;
            for (int j = 0; j < len; j++) {
                /* exact: see above */
                M[j] = opts.sigma * (Q[(size_t)i * D] * K[(size_t)j * D] + Q[(size_t)i * D + 1] * K[(size_t)j * D + 1]);
                if (M[j] > m) {
                    m = M[j];
                    jm = j;
                }
            }
            const double *Oi = O + (size_t)i * D;
            ld inv = Oi[jm];
            for (int j = 0; j < D; j++) {
                double v = j < len ? M[j] - m : -INFINITY;
                if (v < -708.0) {
                    zeros &= Oi[j] == 0.0;
                    continue;
                }
                ld e = expl((ld)v), err = fabsl((ld)Oi[j] / inv - e);
                ld tol = (E + u + 0x1p-60) * e + (v < -700.0 ? 0x1p-1074L / inv : 0);
                double r = (double)(err / tol);
                if (r > worst) {
                    worst = r;
                    wi = i;
                    wj = j;
                }
            }
        }
        PR_CHECK(worst <= 1.0, "weights n=%d causal=%d scale %g: weight (%d, %d) off by %.3g of the bound (%.2f u + u)",
                 n, causal, sc, wi, wj, worst, E / u);
        PR_CHECK(zeros, "weights n=%d causal=%d scale %g: a masked key or an argument below -708 did not give 0", n,
                 causal, sc);
        pr_posw_clear(W);
        free(Q); free(K); free(V); free(O);
    }
}

static void check_attention(pr_rng_t rng)
{
    const int ns[] = {1, 37, 300}, ds[] = {8, 24, 64, 72, 128};
    int trial = 0;
    for (int in = 0; in < 3; in++)
        for (int id = 0; id < 5; id++, trial++) {
            int n = ns[in], d = ds[id], kind = trial % 3, mask = trial % 4;
            size_t nd = (size_t)n * d, L = 2 * (size_t)n - 1;
            double *Q = malloc(sizeof(double) * nd), *K = malloc(sizeof(double) * nd), *V = malloc(sizeof(double) * nd);
            double *O = malloc(sizeof(double) * nd), *lse = malloc(sizeof(double) * n), *dO = malloc(sizeof(double) * nd);
            double *g1 = malloc(sizeof(double) * 3 * nd), *g2 = malloc(sizeof(double) * 3 * nd), *beta = 0;
            ld *Ot = malloc(sizeof(ld) * nd);
            pr_rng_fill(Q, (long)nd, 1.5, rng);
            pr_rng_fill(K, (long)nd, 1.5, rng);
            pr_rng_fill(V, (long)nd, 1.0, rng);
            pr_rng_fill(dO, (long)nd, 1.0, rng);
            pr_posw_t W;
            int st = kind == 2 ? pr_posw_init_identity(W, n, d)
                               : pr_posw_init_rope(W, n, d, kind ? 500.0 : 10000.0, kind ? PR_ROPE_NEOX : PR_ROPE_INTERLEAVED);
            if (st)
                abort();
            pr_attn_opts_t opts;
            pr_attn_opts_default(&opts, d);
            opts.causal = mask & 1;
            if (mask >= 2) {
                beta = malloc(sizeof(double) * L);
                pr_bias_alibi(beta, n, 0.125);
                opts.beta = beta;
            }
            PR_CHECK_OK(pr_dense_forward(O, lse, Q, K, V, W, n, d, &opts));
            double tb = textbook_rope(Ot, Q, K, V, W, &opts, kind != 2);
            pr_dense_err_t est;
            PR_CHECK_OK(pr_dense_error_est(&est, Q, K, V, W, O, dO, n, d, &opts));
            double err = 0.0;
            for (size_t x = 0; x < nd; x++)
                err = fmax(err, (double)fabsl((ld)O[x] - Ot[x]));
            /* |O - Ot| ≤ |O - O_tab| + |O_tab - Ot|: est.o bounds the first (its derivation, with
             * the tables' own errors counted as well), tb the second (textbook_rope) */
            PR_CHECK(err <= est.o + tb, "forward n=%d d=%d kind=%d mask=%d: err %g, estimate %g + textbook's %g", n, d,
                     kind, mask, err, est.o, tb);
            /* the backward's kernel path (GEMM mode) against its loop path (dw forces it) on the
             * portable products (OpenBLAS, not our kernels: an independent reference). Each is
             * within est.d* of the exact gradients (pr_dense_error_est covers both modes), so
             * they differ by at most twice that */
            double *dw = malloc(sizeof(double) * W->s * L);
            const char *kern = getenv("POLYROPE_DENSE_KERNEL");
            char *kept = kern ? strdup(kern) : NULL;
            PR_CHECK_OK(pr_dense_backward(g1, g1 + nd, g1 + 2 * nd, 0, Q, K, V, W, O, lse, dO, n, d, &opts));
            PR_CHECK(setenv("POLYROPE_DENSE_KERNEL", "generic", 1) == 0, "setenv");
            PR_CHECK_OK(pr_dense_backward(g2, g2 + nd, g2 + 2 * nd, dw, Q, K, V, W, O, lse, dO, n, d, &opts));
            PR_CHECK((kept ? setenv("POLYROPE_DENSE_KERNEL", kept, 1) : unsetenv("POLYROPE_DENSE_KERNEL")) == 0,
                     "restoring POLYROPE_DENSE_KERNEL");
            free(kept);
            double eq = pr_vec_max_abs_diff(g1, g2, nd), ek = pr_vec_max_abs_diff(g1 + nd, g2 + nd, nd);
            double ev = pr_vec_max_abs_diff(g1 + 2 * nd, g2 + 2 * nd, nd);
            PR_CHECK(eq <= 2 * est.dq && ek <= 2 * est.dk && ev <= 2 * est.dv,
                     "backward kernel vs loop n=%d d=%d kind=%d mask=%d: dQ %g (%g) dK %g (%g) dV %g (%g)", n, d, kind,
                     mask, eq, 2 * est.dq, ek, 2 * est.dk, ev, 2 * est.dv);
            pr_posw_clear(W);
            free(Q); free(K); free(V); free(O); free(lse); free(dO); free(g1); free(g2); free(beta); free(Ot); free(dw);
        }
}

/* Blocks narrower than BQ and BK at moderate n (pr_dense_block_; 1, 2, 3, 5 threads give different
 * blocks) and the forward's groups of query blocks (n = 1100: on one thread only): with our kernels (each entry a sequential sum in key order) O, lse, dK and dV are the
 * same bits whatever the thread count; OpenBLAS may order a tile's sums by its shape, so there
 * (and for dQ, whose per-thread partial sums are added at the end) each output is within twice
 * its estimate of the one-thread result (both within the estimate of the exact one); a repeat at
 * one thread count gives the same bits. */
static void check_blocks(pr_rng_t rng)
{
    const int ns[] = {1, 37, 256, 300, 700, 1100}, threads[] = {1, 2, 3, 5};
    int keep = omp_get_max_threads();
    for (int trial = 0; trial < 12; trial++) {
        int n = ns[trial % 6], d = trial % 3 ? 64 : 24, kind = trial % 2, causal = (trial / 2) % 2;
        int kern = pr_dense_kernel_ok_(d);
        size_t nd = (size_t)n * d, L = 2 * (size_t)n - 1;
        double *in = malloc(sizeof(double) * 4 * nd), *beta = trial % 4 == 3 ? malloc(sizeof(double) * L) : 0;
        double *out[4];
        pr_rng_fill(in, (long)(4 * nd), 1.5, rng);
        const double *Q = in, *K = in + nd, *V = in + 2 * nd, *dO = in + 3 * nd;
        pr_posw_t W;
        if (kind ? pr_posw_init_rope(W, n, d, 10000.0, PR_ROPE_INTERLEAVED) : pr_posw_init_identity(W, n, d))
            abort();
        pr_attn_opts_t opts;
        pr_attn_opts_default(&opts, d);
        opts.causal = causal;
        if (beta) {
            pr_bias_alibi(beta, n, 0.25);
            opts.beta = beta;
        }
        pr_dense_err_t est = {0};
        for (int t = 0; t < 4; t++) {
            /* O, lse, dQ, dK, dV */
            double *o = out[t] = malloc(sizeof(double) * (4 * nd + n));
            omp_set_num_threads(threads[t]);
            PR_CHECK_OK(pr_dense_forward(o, o + 4 * nd, Q, K, V, W, n, d, &opts));
            PR_CHECK_OK(pr_dense_backward(o + nd, o + 2 * nd, o + 3 * nd, 0, Q, K, V, W, o, o + 4 * nd, dO, n, d, &opts));
            if (t == 0)
                PR_CHECK_OK(pr_dense_error_est(&est, Q, K, V, W, o, dO, n, d, &opts));
            /* the same thread count again: the same bits, dQ included (whose per-thread sums depended
             * on the scheduling of the key blocks: at n = 256 on 2 threads about half the runs differed) */
            double *rg = malloc(sizeof(double) * 3 * nd);
            for (int rep = 0; rep < 4 && threads[t] > 1; rep++) {
                PR_CHECK_OK(pr_dense_backward(rg, rg + nd, rg + 2 * nd, 0, Q, K, V, W, o, o + 4 * nd, dO, n, d, &opts));
                PR_CHECK(!memcmp(rg, o + nd, sizeof(double) * 3 * nd),
                         "blocks n=%d d=%d rope=%d causal=%d, %d threads: a repeated backward changed dQ, dK or dV "
                         "(dQ off by %g)", n, d, kind, causal, threads[t], pr_vec_max_abs_diff(rg, o + nd, nd));
            }
            free(rg);
        }
        for (int t = 1; t < 4; t++) {
            int same_o = !memcmp(out[0], out[t], sizeof(double) * nd) &&
                         !memcmp(out[0] + 4 * nd, out[t] + 4 * nd, sizeof(double) * n);
            int same_kv = !memcmp(out[0] + 2 * nd, out[t] + 2 * nd, sizeof(double) * 2 * nd);
            double eo = pr_vec_max_abs_diff(out[0], out[t], nd), eq = pr_vec_max_abs_diff(out[0] + nd, out[t] + nd, nd);
            double ek = pr_vec_max_abs_diff(out[0] + 2 * nd, out[t] + 2 * nd, nd);
            double ev = pr_vec_max_abs_diff(out[0] + 3 * nd, out[t] + 3 * nd, nd);
            int ok = kern ? same_o && same_kv : eo <= 2 * est.o && ek <= 2 * est.dk && ev <= 2 * est.dv;
            PR_CHECK(ok && eq <= 2 * est.dq,
                     "blocks n=%d d=%d rope=%d causal=%d beta=%d kernels=%d, %d threads against 1: O and lse same %d "
                     "(off by %g), dK and dV same %d (off by %g, %g), dQ off by %g (bound %g)", n, d, kind, causal,
                     beta != 0, kern, threads[t], same_o, eo, same_kv, ek, ev, eq, 2 * est.dq);
        }
        omp_set_num_threads(keep);
        for (int t = 0; t < 4; t++)
            free(out[t]);
        pr_posw_clear(W);
        free(in);
        free(beta);
    }
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_dense_kernel", 20261128));
    if (pr_dense_avx512_()) {
        check_exp(rng);
        check_products(rng);
    } else {
        printf("test_dense_kernel: no AVX-512F on this CPU: exp and product kernels skipped\n");
    }
    check_input_scans(rng);
    check_rotation(rng);
    check_weights(rng);
    check_blocks(rng);
    check_attention(rng);
    return pr_test_finish("test_dense_kernel");
}
