/* The Toeplitz engine (core/pr_toeplitz) against exact FLINT products (exact/pr_xtoeplitz,
 * claim C4), against the dense matrix, and by its algebraic properties; threads; bad input.
 *
 * Tolerances. Each float result is within its a-priori bound (pr_xtoeplitz_apriori_bound:
 * Percival's FFT bound or γ_n|T||x| for the direct path) of the exact value, and the certifier
 * checks exactly that against FLINT. Property checks compare two float results, so their
 * tolerance is the sum of the two sides' bounds. With small-integer data every exact value is
 * an integer below 2^53, so a dense double loop is exact and is an independent oracle for the
 * index conventions (transpose, causal, correlation). */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <flint/fmpz_vec.h>
#include "polyrope-exact.h"
#include "pr_test.h"

static const unsigned ops[4] = {PR_TOEPLITZ_FULL, PR_TOEPLITZ_CAUSAL, PR_TOEPLITZ_TRANS,
                                PR_TOEPLITZ_CAUSAL | PR_TOEPLITZ_TRANS};

/* the a-priori bound of op(T) x on P, as a double rounded up (a test tolerance, not a proof) */
static double bound_of(const double *t, const double *x, unsigned op, const pr_toeplitz_plan_t P)
{
    arb_t b;
    arf_t u;
    arb_init(b);
    arf_init(u);
    int st = pr_xtoeplitz_apriori_bound(b, t, x, op, P);
    arb_get_ubound_arf(u, b, 64);
    double r = st ? INFINITY : arf_get_d(u, ARF_RND_UP);
    arb_clear(b);
    arf_clear(u);
    return r;
}

/* y = op(T) x by the dense matrix: T_ij = t(i-j), trans uses T_ji, causal keeps i-j ≥ 0 */
static void dense_apply(double *y, const double *t, const double *x, long n, unsigned op)
{
    for (long r = 0; r < n; r++) {
        double s = 0;
        for (long c = 0; c < n; c++) {
            long i = op & PR_TOEPLITZ_TRANS ? c : r, j = op & PR_TOEPLITZ_TRANS ? r : c;
            if (!((op & PR_TOEPLITZ_CAUSAL) && i < j))
                s += t[i - j + n - 1] * x[c];
        }
        y[r] = s;
    }
}

static void fill_int(double *v, long len, int b, pr_rng_t rng)
{
    for (long k = 0; k < len; k++)
        v[k] = (double)((long)pr_rng_below(rng, 2 * (uint64_t)b + 1) - b);
}

/* entries in [-1,1) times 2^e with e uniform in [-emax, emax]: a wide dynamic range */
static void fill_wide(double *v, long len, int emax, pr_rng_t rng)
{
    for (long k = 0; k < len; k++)
        v[k] = ldexp(pr_rng_range(rng, -1, 1), (int)pr_rng_below(rng, 2 * emax + 1) - emax);
}

static const char *path_name(const pr_toeplitz_plan_t P) { return P->use_direct ? "direct" : "fft"; }

/* err/bound as a double, for the printed summary only (the verdict is what is checked) */
static double ratio_of(const arb_t err, const arb_t bnd)
{
    arb_t r;
    arb_init(r);
    arb_div(r, err, bnd, 64);
    double v = arf_get_d(arb_midref(r), ARF_RND_NEAR);
    arb_clear(r);
    return v;
}

int main(void)
{
    pr_rng_t rng;
    uint64_t seed = pr_test_seed("test_toeplitz", 20261123);
    pr_rng_init(rng, seed);

    /* good sizes: ≥ m, even, only allowed primes, and no smaller such number exists */
    for (long m = 1; m <= 600; m++)
        for (int p = 2; p <= 7; p += (p == 2 ? 1 : 2)) {
            long g = pr_toeplitz_good_size(m, p, 1), r = g, smaller = 0;
            for (int q = 2; q <= p; q++)
                while (r % q == 0)
                    r /= q;
            for (long c = m; c < g && !smaller; c += 1) {
                long s = c;
                for (int q = 2; q <= p; q++)
                    while (s % q == 0)
                        s /= q;
                smaller = s == 1 && c % 2 == 0;
            }
            PR_CHECK(g >= m && g % 2 == 0 && r == 1 && !smaller, "good_size(%ld,%d)=%ld", m, p, g);
        }

    /* float engine against exact FLINT products: all paths, ops, lengths incl. primes */
    static const long ns[] = {1, 2, 3, 5, 7, 8, 13, 16, 31, 64, 97, 100, 127, 211, 256, 509, 1000};
    static const unsigned pflags[3] = {PR_TOEPLITZ_FORCE_FFT, PR_TOEPLITZ_FORCE_DIRECT, 0};
    double worst_ratio[2] = {0, 0}; /* [direct?] */
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
        long n = ns[a];
        double *t = malloc(sizeof(double) * (2 * n - 1)), *x = malloc(sizeof(double) * n);
        for (int pf = 0; pf < 3; pf++) {
            pr_toeplitz_plan_t P;
            static const unsigned effort[3] = {PR_TOEPLITZ_ESTIMATE, PR_TOEPLITZ_MEASURE, PR_TOEPLITZ_MEASURE_FIXED};
            PR_CHECK_OK(pr_toeplitz_plan(P, n, pflags[pf] | effort[a % 3]));
            PR_CHECK(P->L >= 2 * n - 1 && P->nfreq == P->L / 2 + 1, "n=%ld L=%ld", n, P->L);
            PR_CHECK(pr_toeplitz_spec_len(P) == 2 * (size_t)P->nfreq && pr_toeplitz_spec_len_of(P->L) == 2 * (size_t)P->nfreq,
                     "n=%ld L=%ld: spectrum lengths %zu, %zu for %ld frequencies", n, P->L, pr_toeplitz_spec_len(P),
                     pr_toeplitz_spec_len_of(P->L), P->nfreq);
            PR_CHECK(effort[a % 3] == PR_TOEPLITZ_MEASURE || P->L == pr_toeplitz_good_size(2 * n - 1, 5, 1),
                     "n=%ld flags %u: L=%ld is not the estimated length", n, effort[a % 3], P->L);
            for (int trial = 0; trial < 2; trial++) {
                if (trial) {
                    fill_wide(t, 2 * n - 1, 30, rng);
                    fill_wide(x, n, 30, rng);
                } else {
                    pr_rng_fill(t, 2 * n - 1, 1.0, rng);
                    pr_rng_fill(x, n, 1.0, rng);
                }
                for (int o = 0; o < 4; o++) {
                    pr_cert_verdict_t v;
                    arb_t err, bnd;
                    arb_init(err);
                    arb_init(bnd);
                    PR_CHECK_OK(pr_xtoeplitz_certify(&v, err, bnd, t, x, ops[o], P));
                    PR_CHECK(v == PR_CERT_CERTIFIED,
                             "C4 product n=%ld L=%ld path=%s op=%u trial=%d: err %s bound %s (%s)",
                             n, P->L, path_name(P), ops[o], trial, arb_get_str(err, 10, 0),
                             arb_get_str(bnd, 10, 0), pr_cert_verdict_name(v));
                    worst_ratio[P->use_direct] = fmax(worst_ratio[P->use_direct], ratio_of(err, bnd));
                    arb_clear(err);
                    arb_clear(bnd);
                }
                pr_cert_verdict_t v;
                arb_t err, bnd;
                arb_init(err);
                arb_init(bnd);
                PR_CHECK_OK(pr_xtoeplitz_certify_correlate(&v, err, bnd, t, x, P));
                PR_CHECK(v == PR_CERT_CERTIFIED, "C4 correlation n=%ld path=%s trial=%d: err %s bound %s",
                         n, path_name(P), trial, arb_get_str(err, 10, 0), arb_get_str(bnd, 10, 0));
                worst_ratio[P->use_direct] = fmax(worst_ratio[P->use_direct], ratio_of(err, bnd));
                arb_clear(err);
                arb_clear(bnd);
            }
            pr_toeplitz_destroy(P);
        }
        free(t);
        free(x);
    }

    printf("C4: worst observed error / a-priori bound: fft path %.3g, direct path %.3g\n",
           worst_ratio[0], worst_ratio[1]);

    /* index conventions against the dense matrix and a direct correlation loop (integer data:
     * the dense loop is exact, and the engine's bound is < 1/2 so rounding recovers it) */
    for (long n = 1; n <= 40; n += (n < 10 ? 1 : 7)) {
        double t[80], x[40], y[40], yd[40], c[80], cd[80];
        fill_int(t, 2 * n - 1, 8, rng);
        fill_int(x, n, 8, rng);
        for (int pf = 0; pf < 2; pf++) {
            pr_toeplitz_plan_t P;
            PR_CHECK_OK(pr_toeplitz_plan(P, n, pflags[pf]));
            for (int o = 0; o < 4; o++) {
                PR_CHECK_OK(pr_toeplitz_apply(y, 1, t, x, 1, ops[o], P, NULL));
                dense_apply(yd, t, x, n, ops[o]);
                double tol = bound_of(t, x, ops[o], P);
                PR_CHECK(tol < 0.5 && pr_vec_max_abs_diff(y, yd, n) <= tol,
                         "dense n=%ld op=%u path=%s diff=%g tol=%g", n, ops[o], path_name(P),
                         pr_vec_max_abs_diff(y, yd, n), tol);
            }
            PR_CHECK_OK(pr_toeplitz_correlate(c, t, 1, x, 1, P, NULL));
            for (long l = -(n - 1); l < n; l++) {
                cd[l + n - 1] = 0;
                for (long i = 0; i < n; i++)
                    for (long j = 0; j < n; j++)
                        if (i - j == l)
                            cd[l + n - 1] += t[i] * x[j];
            }
            double cdiff = pr_vec_max_abs_diff(c, cd, 2 * n - 1);
            PR_CHECK(cdiff < 0.5, "correlation loop n=%ld path=%s diff=%g", n, path_name(P), cdiff);
            pr_toeplitz_destroy(P);
        }
    }

    /* the fused forms pr_fast uses: vec_spec_mul = vec_spec of the products formed first, and
     * inverse_raw · (1/L) = spec_inverse, bit for bit; a non-finite product refused */
    for (long n = 1; n <= 700; n = n * 4 + 3) {
        pr_toeplitz_plan_t P;
        PR_CHECK_OK(pr_toeplitz_plan(P, n, PR_TOEPLITZ_FORCE_FFT));
        size_t sl = pr_toeplitz_spec_len(P);
        long inc = 1 + (long)pr_rng_below(rng, 3);
        double *u = malloc(sizeof(double) * n), *x = malloc(sizeof(double) * n * inc), *ux = malloc(sizeof(double) * n);
        double *h1 = pr_toeplitz_spec_alloc(P, 4), *h2 = h1 + sl, *h3 = h2 + sl, *h4 = h3 + sl;
        double *y1 = malloc(sizeof(double) * n);
        pr_rng_fill(u, n, 1.0, rng);
        fill_wide(x, n * inc, 30, rng);
        for (long j = 0; j < n; j++)
            ux[j] = u[j] * x[j * inc];
        PR_CHECK_OK(pr_toeplitz_vec_spec_mul(h1, u, x, inc, P, NULL));
        PR_CHECK_OK(pr_toeplitz_vec_spec(h2, ux, 1, P, NULL));
        PR_CHECK(!memcmp(h1, h2, sizeof(double) * sl), "vec_spec_mul n=%ld incx=%ld: not vec_spec of the products",
                 n, inc);
        memcpy(h3, h1, sizeof(double) * sl);
        PR_CHECK_OK(pr_toeplitz_spec_inverse(y1, 1, h3, P, NULL));
        const double *raw = pr_toeplitz_spec_inverse_raw(h1, P, NULL);
        long same = 0;
        for (long i = 0; i < n; i++)
            same += y1[i] == raw[i] * (1.0 / (double)P->L);
        PR_CHECK(same == n, "inverse_raw n=%ld: %ld of %ld entries scaled differ from spec_inverse", n, n - same, n);
        memcpy(h4, h2, sizeof(double) * sl);
        x[(n - 1) * inc] = INFINITY;
        PR_CHECK(pr_toeplitz_vec_spec_mul(h4, u, x, inc, P, NULL) == PR_ENONFINITE, "vec_spec_mul n=%ld: Inf taken", n);
        PR_CHECK(pr_toeplitz_vec_spec_mul(h4, u, x, 0, P, NULL) == PR_EINVAL, "vec_spec_mul n=%ld: incx 0 taken", n);
        free(u); free(x); free(ux); free(y1);
        pr_toeplitz_spec_free(h1);
        pr_toeplitz_destroy(P);
    }

    /* linearity, shift, impulse, and the frequency-domain sum (FFT path, random data) */
    for (long n = 5; n <= 300; n = n * 3 + 1) {
        pr_toeplitz_plan_t P;
        PR_CHECK_OK(pr_toeplitz_plan(P, n, PR_TOEPLITZ_FORCE_FFT));
        double *t = malloc(sizeof(double) * (2 * n - 1)), *t2 = malloc(sizeof(double) * (2 * n - 1));
        double *x = malloc(sizeof(double) * n), *x2 = malloc(sizeof(double) * n), *xs = malloc(sizeof(double) * n);
        double *y1 = malloc(sizeof(double) * n), *y2 = malloc(sizeof(double) * n), *y3 = malloc(sizeof(double) * n);
        pr_rng_fill(t, 2 * n - 1, 1.0, rng);
        pr_rng_fill(t2, 2 * n - 1, 1.0, rng);
        pr_rng_fill(x, n, 1.0, rng);
        pr_rng_fill(x2, n, 1.0, rng);
        /* T(x + 2 x2) = T x + 2 T x2: exact sums of dyadic values in [-3, 3) */
        for (long j = 0; j < n; j++)
            xs[j] = x[j] + 2 * x2[j];
        PR_CHECK_OK(pr_toeplitz_apply(y1, 1, t, x, 1, PR_TOEPLITZ_FULL, P, NULL));
        PR_CHECK_OK(pr_toeplitz_apply(y2, 1, t, x2, 1, PR_TOEPLITZ_FULL, P, NULL));
        PR_CHECK_OK(pr_toeplitz_apply(y3, 1, t, xs, 1, PR_TOEPLITZ_FULL, P, NULL));
        /* tolerance: the three bounds, plus the rounding of y1 + 2 y2 (|.| ≤ 3n, 2 roundings) */
        double tol = bound_of(t, xs, 0, P) + bound_of(t, x, 0, P) + 2 * bound_of(t, x2, 0, P)
                     + 2 * DBL_EPSILON * 3 * n, worst = 0;
        for (long i = 0; i < n; i++)
            worst = fmax(worst, fabs(y3[i] - (y1[i] + 2 * y2[i])));
        PR_CHECK(worst <= tol, "linearity n=%ld worst=%g tol=%g", n, worst, tol);

        /* shift: with x_{n-1} = 0, (T Sx)_i = (T x)_{i-1} for i ≥ 1 */
        x[n - 1] = 0;
        xs[0] = 0;
        for (long j = 1; j < n; j++)
            xs[j] = x[j - 1];
        PR_CHECK_OK(pr_toeplitz_apply(y1, 1, t, x, 1, PR_TOEPLITZ_FULL, P, NULL));
        PR_CHECK_OK(pr_toeplitz_apply(y2, 1, t, xs, 1, PR_TOEPLITZ_FULL, P, NULL));
        tol = 2 * bound_of(t, x, 0, P);
        worst = pr_vec_max_abs_diff(y2 + 1, y1, n - 1);
        PR_CHECK(worst <= tol, "shift n=%ld worst=%g tol=%g", n, worst, tol);

        /* impulse: T e_j = column j, (T e_j)_i = t(i-j) */
        long j0 = (long)pr_rng_below(rng, n);
        memset(xs, 0, sizeof(double) * n);
        xs[j0] = 1;
        PR_CHECK_OK(pr_toeplitz_apply(y1, 1, t, xs, 1, PR_TOEPLITZ_FULL, P, NULL));
        tol = bound_of(t, xs, 0, P);
        worst = 0;
        for (long i = 0; i < n; i++)
            worst = fmax(worst, fabs(y1[i] - t[i - j0 + n - 1]));
        PR_CHECK(worst <= tol, "impulse n=%ld j=%ld worst=%g tol=%g", n, j0, worst, tol);

        /* frequency domain: 3 T x + 2 T2ᵀ x2 with one inverse, against the two products.
         * The Percival bound is linear in the inputs, so the sum's error is within
         * 3 bound(T, x) + 2 bound(T2ᵀ, x2); each product adds its own bound and the float sum
         * two roundings of a value ≤ 5n. */
        double *sp = pr_toeplitz_spec_alloc(P, 5);
        size_t sl = pr_toeplitz_spec_len(P);
        PR_CHECK(sp != NULL && sl == 2 * (size_t)P->nfreq, "spec_alloc");
        pr_toeplitz_work_t ws;
        PR_CHECK_OK(pr_toeplitz_work_init(ws, P));
        PR_CHECK_OK(pr_toeplitz_symbol_spec(sp, t, PR_TOEPLITZ_FULL, P, ws));
        PR_CHECK_OK(pr_toeplitz_symbol_spec(sp + sl, t2, PR_TOEPLITZ_FULL, P, ws));
        PR_CHECK_OK(pr_toeplitz_vec_spec(sp + 2 * sl, x, 1, P, ws));
        PR_CHECK_OK(pr_toeplitz_vec_spec(sp + 3 * sl, x2, 1, P, ws));
        pr_toeplitz_spec_zero(sp + 4 * sl, P);
        pr_toeplitz_spec_mac(sp + 4 * sl, sp, sp + 2 * sl, 3.0, P);
        pr_toeplitz_spec_mac_conj(sp + 4 * sl, sp + 3 * sl, sp + sl, 2.0, P);
        PR_CHECK_OK(pr_toeplitz_spec_inverse(y3, 1, sp + 4 * sl, P, ws));
        PR_CHECK(ws->n_forward == 4 && ws->n_inverse == 1 && ws->n_direct == 0,
                 "counters %ld %ld %ld", ws->n_forward, ws->n_inverse, ws->n_direct);
        PR_CHECK_OK(pr_toeplitz_apply(y1, 1, t, x, 1, PR_TOEPLITZ_FULL, P, ws));
        PR_CHECK_OK(pr_toeplitz_apply(y2, 1, t2, x2, 1, PR_TOEPLITZ_TRANS, P, ws));
        tol = 2 * (3 * bound_of(t, x, 0, P) + 2 * bound_of(t2, x2, PR_TOEPLITZ_TRANS, P))
              + 2 * DBL_EPSILON * 5 * n;
        worst = 0;
        for (long i = 0; i < n; i++)
            worst = fmax(worst, fabs(y3[i] - (3 * y1[i] + 2 * y2[i])));
        PR_CHECK(worst <= tol, "spectral sum n=%ld worst=%g tol=%g", n, worst, tol);
        /* the transposed symbol's spectrum is the conjugate of the symbol's: the same bits */
        PR_CHECK_OK(pr_toeplitz_symbol_spec(sp + 4 * sl, t2, PR_TOEPLITZ_TRANS, P, ws));
        worst = 0;
        for (long k = 0; k < P->nfreq; k++)
            worst = fmax(worst, fabs(sp[4 * sl + 2 * k] - sp[sl + 2 * k])
                                    + fabs(sp[4 * sl + 2 * k + 1] + sp[sl + 2 * k + 1]));
        tol = 2 * bound_of(t2, x2, 0, P); /* a loose, derived cap: each differs from exact by far less */
        PR_CHECK(worst <= tol, "transposed spectrum n=%ld worst=%g", n, worst);
        /* the fused correlation sum is zero then mac_conj per pair, bit for bit (sp: 4 spectra,
         * pairs (0, 2) and (1, 3)) */
        {
            double *fused = pr_toeplitz_spec_alloc(P, 2), *steps = fused + sl;
            pr_toeplitz_spec_sum_conj(fused, sp, sp + 2 * sl, 2, P);
            pr_toeplitz_spec_zero(steps, P);
            pr_toeplitz_spec_mac_conj(steps, sp, sp + 2 * sl, 1.0, P);
            pr_toeplitz_spec_mac_conj(steps, sp + sl, sp + 3 * sl, 1.0, P);
            PR_CHECK(memcmp(fused, steps, sizeof(double) * sl) == 0, "sum_conj != mac_conj steps n=%ld", n);
            pr_toeplitz_spec_free(fused);
        }
        /* inverse_sym of a symbol's spectrum returns the symbol */
        PR_CHECK_OK(pr_toeplitz_symbol_spec(sp + 4 * sl, t, PR_TOEPLITZ_FULL, P, ws));
        PR_CHECK_OK(pr_toeplitz_spec_inverse_sym(t2, sp + 4 * sl, P, ws));
        worst = pr_vec_max_abs_diff(t2, t, 2 * n - 1);
        PR_CHECK(worst <= bound_of(t, xs, 0, P), "symbol round trip n=%ld worst=%g", n, worst);

        /* apply_many / apply_symbols with strides = one product at a time, bit for bit */
        long cnt = 3;
        double *X = malloc(sizeof(double) * n * cnt), *Y = malloc(sizeof(double) * n * cnt);
        double *TS = malloc(sizeof(double) * (2 * n) * cnt);
        pr_rng_fill(X, n * cnt, 1.0, rng);
        pr_rng_fill(TS, 2 * n * cnt, 1.0, rng);
        ws->n_forward = ws->n_inverse = 0;
        PR_CHECK_OK(pr_toeplitz_apply_many(Y, cnt, 1, t, X, cnt, 1, cnt, PR_TOEPLITZ_CAUSAL, P, ws));
        PR_CHECK(ws->n_forward == cnt + 1 && ws->n_inverse == cnt, "apply_many counters");
        int same = 1;
        for (long k = 0; k < cnt; k++) {
            PR_CHECK_OK(pr_toeplitz_apply(y1, 1, t, X + k, cnt, PR_TOEPLITZ_CAUSAL, P, ws));
            for (long i = 0; i < n; i++)
                same &= y1[i] == Y[i * cnt + k];
        }
        PR_CHECK(same, "apply_many n=%ld", n);
        PR_CHECK_OK(pr_toeplitz_apply_symbols(Y, 1, n, TS, 2 * n, x, 1, cnt, PR_TOEPLITZ_TRANS, P, ws));
        same = 1;
        for (long k = 0; k < cnt; k++) {
            PR_CHECK_OK(pr_toeplitz_apply(y1, 1, TS + 2 * n * k, x, 1, PR_TOEPLITZ_TRANS, P, ws));
            for (long i = 0; i < n; i++)
                same &= y1[i] == Y[k * n + i];
        }
        PR_CHECK(same, "apply_symbols n=%ld", n);
        free(X); free(Y); free(TS);
        pr_toeplitz_work_clear(ws);
        pr_toeplitz_spec_free(sp);
        free(t); free(t2); free(x); free(x2); free(xs); free(y1); free(y2); free(y3);
        pr_toeplitz_destroy(P);
    }

    /* many threads executing on one plan, each with its own workspace: same bits as serial */
    {
        long n = 777, nv = 64;
        pr_toeplitz_plan_t P;
        PR_CHECK_OK(pr_toeplitz_plan(P, n, PR_TOEPLITZ_FORCE_FFT));
        double *t = malloc(sizeof(double) * (2 * n - 1)), *X = malloc(sizeof(double) * n * nv);
        double *Ys = malloc(sizeof(double) * n * nv), *Yp = malloc(sizeof(double) * n * nv);
        pr_rng_fill(t, 2 * n - 1, 1.0, rng);
        pr_rng_fill(X, n * nv, 1.0, rng);
        for (long k = 0; k < nv; k++)
            PR_CHECK_OK(pr_toeplitz_apply(Ys + k * n, 1, t, X + k * n, 1, (unsigned)(k % 4), P, NULL));
        long fwd = 0, bad = 0;
#pragma omp parallel num_threads(4) reduction(+ : fwd, bad)
        {
            pr_toeplitz_work_t ws;
            if (pr_toeplitz_work_init(ws, P))
                bad++;
            else {
#pragma omp for schedule(dynamic, 1)
                for (long k = 0; k < nv; k++)
                    bad += pr_toeplitz_apply(Yp + k * n, 1, t, X + k * n, 1, (unsigned)(k % 4), P, ws) != 0;
                fwd += ws->n_forward;
                pr_toeplitz_work_clear(ws);
            }
        }
        PR_CHECK(bad == 0 && fwd == 2 * nv, "threads: bad=%ld forward=%ld", bad, fwd);
        PR_CHECK(memcmp(Ys, Yp, sizeof(double) * n * nv) == 0, "threads: results differ from serial");
        free(t); free(X); free(Ys); free(Yp);
        pr_toeplitz_destroy(P);
    }

    /* the plan-time choice of path is a measurement */
    {
        pr_toeplitz_plan_t P;
        PR_CHECK_OK(pr_toeplitz_plan(P, 50, 0));
        PR_CHECK(P->t_direct > 0 && P->t_fft > 0 && P->use_direct == (P->t_direct < P->t_fft),
                 "auto path: direct %g fft %g use_direct %d", P->t_direct, P->t_fft, P->use_direct);
        pr_toeplitz_destroy(P);
    }

    /* wisdom round trip */
    {
        char path[64];
        snprintf(path, sizeof path, "test_toeplitz_wisdom_%ld.txt", (long)getpid());
        PR_CHECK_OK(pr_toeplitz_wisdom_export(path));
        PR_CHECK_OK(pr_toeplitz_wisdom_import(path));
        remove(path);
        PR_CHECK(pr_toeplitz_wisdom_import("/nonexistent/wisdom") == PR_EIO, "missing wisdom file");
    }

    /* exact integer products against a direct fmpz loop, with entries far beyond 2^53 */
    for (long n = 1; n <= 12; n++)
        for (int o = 0; o < 4; o++) {
            fmpz *t = _fmpz_vec_init(2 * n - 1), *x = _fmpz_vec_init(n), *y = _fmpz_vec_init(n);
            fmpz *c = _fmpz_vec_init(2 * n - 1);
            fmpz_t s, p;
            fmpz_init(s);
            fmpz_init(p);
            for (long k = 0; k < 2 * n - 1; k++) {
                fmpz_set_si(t + k, (slong)pr_rng_below(rng, 2001) - 1000);
                fmpz_mul_2exp(t + k, t + k, 100);
            }
            for (long k = 0; k < n; k++)
                fmpz_set_si(x + k, (slong)pr_rng_below(rng, 2001) - 1000);
            PR_CHECK_OK(pr_xtoeplitz_apply_fmpz(y, t, x, n, ops[o]));
            int ok = 1;
            for (long r = 0; r < n; r++) {
                fmpz_zero(s);
                for (long cc = 0; cc < n; cc++) {
                    long i = ops[o] & PR_TOEPLITZ_TRANS ? cc : r, j = ops[o] & PR_TOEPLITZ_TRANS ? r : cc;
                    if (!((ops[o] & PR_TOEPLITZ_CAUSAL) && i < j))
                        fmpz_addmul(s, t + (i - j + n - 1), x + cc);
                }
                ok &= fmpz_equal(s, y + r);
            }
            PR_CHECK(ok, "apply_fmpz n=%ld op=%u", n, ops[o]);
            PR_CHECK_OK(pr_xtoeplitz_correlate_fmpz(c, t, x, n));
            ok = 1;
            for (long l = -(n - 1); l < n; l++) {
                fmpz_zero(s);
                for (long j = 0; j < n; j++)
                    if (j + l >= 0 && j + l < n)
                        fmpz_addmul(s, t + j + l, x + j);
                ok &= fmpz_equal(s, c + l + n - 1);
            }
            PR_CHECK(ok, "correlate_fmpz n=%ld", n);
            fmpz_clear(s);
            fmpz_clear(p);
            _fmpz_vec_clear(t, 2 * n - 1);
            _fmpz_vec_clear(x, n);
            _fmpz_vec_clear(y, n);
            _fmpz_vec_clear(c, 2 * n - 1);
        }

    /* wisdom-only planning: what was measured plans again, a new length does not */
    {
        pr_toeplitz_plan_t P;
        PR_CHECK_OK(pr_toeplitz_plan(P, 300, PR_TOEPLITZ_MEASURE | PR_TOEPLITZ_FORCE_FFT));
        pr_toeplitz_destroy(P);
        /* every candidate length was measured, so all plan from wisdom (which one wins the
         * timing again may differ: measuring is a measurement) */
        PR_CHECK_OK(pr_toeplitz_plan(P, 300, PR_TOEPLITZ_MEASURE | PR_TOEPLITZ_WISDOM_ONLY | PR_TOEPLITZ_FORCE_FFT));
        PR_CHECK(P->L >= 599 && P->L <= 1024, "wisdom-only L %ld", P->L);
        pr_toeplitz_destroy(P);
        /* no length near 2·98305 has been planned in this process */
        PR_CHECK(pr_toeplitz_plan(P, 98304 + 1, PR_TOEPLITZ_MEASURE | PR_TOEPLITZ_WISDOM_ONLY) == PR_EFFTW,
                 "wisdom-only without wisdom");
        PR_CHECK(pr_toeplitz_plan(P, 300, PR_TOEPLITZ_MEASURE | PR_TOEPLITZ_MEASURE_FIXED) == PR_EINVAL,
                 "both measuring modes");
    }

    /* the command line: bench toeplitz in JSON, a bad option, and the wisdom variable */
    const char *exe = getenv("POLYROPE");
    if (exe) {
        char cmd[1024], line[4096];
        char wis[64];
        snprintf(wis, sizeof wis, "test_toeplitz_cli_wisdom_%ld.txt", (long)getpid());
        snprintf(cmd, sizeof cmd, "%s=%s '%s' bench toeplitz --json --sizes 50,300 --crossover-sizes 4,200 "
                 "--time 0.005 --batch 4", PR_TOEPLITZ_WISDOM_ENV, wis, exe);
        FILE *f = popen(cmd, "r");
        size_t got = f ? fread(line, 1, sizeof line - 1, f) : 0;
        line[got] = 0;
        int rc = f ? pclose(f) : -1;
        PR_CHECK(rc == 0 && strstr(line, "\"crossover_n\"") && strstr(line, "\"ratio\"")
                 && strstr(line, "\"transforms_per_batch\": 9"), "bench json: rc=%d out=%s", rc, line);
        FILE *w = fopen(wis, "r");
        PR_CHECK(w != NULL, "bench did not export wisdom to $%s", PR_TOEPLITZ_WISDOM_ENV);
        if (w)
            fclose(w);
        remove(wis);
        snprintf(cmd, sizeof cmd, "'%s' bench toeplitz --sizes 0 2>&1", exe);
        f = popen(cmd, "r");
        got = f ? fread(line, 1, sizeof line - 1, f) : 0;
        line[got] = 0;
        rc = f ? pclose(f) : -1;
        PR_CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 2 && strstr(line, "--sizes"), "bad --sizes: %s", line);
    }

    /* bad input: statuses, not crashes */
    {
        pr_toeplitz_plan_t P;
        PR_CHECK(pr_toeplitz_plan(P, 0, 0) == PR_EINVAL, "n = 0");
        PR_CHECK(pr_toeplitz_plan(P, -3, 0) == PR_EINVAL, "n < 0");
        PR_CHECK(pr_toeplitz_plan(P, 8, 1u << 10) == PR_EINVAL, "bad flags");
        PR_CHECK(pr_toeplitz_plan(P, 8, PR_TOEPLITZ_FORCE_FFT | PR_TOEPLITZ_FORCE_DIRECT) == PR_EINVAL,
                 "both paths forced");
        PR_CHECK(pr_toeplitz_plan(P, LONG_MAX, 0) == PR_ESIZE, "n = LONG_MAX");
        PR_CHECK(pr_toeplitz_plan(P, 1L << 40, 0) == PR_ESIZE, "L beyond FFTW's int");
        /* n = physical bytes / 8 needs ≥ 3·2n doubles of workspace: more than the machine has
         * (or, on a big machine, a length beyond FFTW's int) */
        long phys = sysconf(_SC_PHYS_PAGES) * (sysconf(_SC_PAGESIZE) / 8);
        PR_CHECK(pr_toeplitz_plan(P, phys < (1L << 30) ? phys : (1L << 30), 0) == PR_ESIZE,
                 "buffers beyond physical memory");
        pr_toeplitz_destroy(P);
        long n = 9;
        PR_CHECK_OK(pr_toeplitz_plan(P, n, PR_TOEPLITZ_FORCE_FFT));
        double t[17], x[9], y[9], c[17];
        pr_rng_fill(t, 17, 1.0, rng);
        pr_rng_fill(x, 9, 1.0, rng);
        double *sp = pr_toeplitz_spec_alloc(P, 1);
        t[4] = NAN;
        PR_CHECK(pr_toeplitz_symbol_spec(sp, t, 0, P, NULL) == PR_ENONFINITE, "NaN symbol spec");
        PR_CHECK(pr_toeplitz_apply(y, 1, t, x, 1, 0, P, NULL) == PR_ENONFINITE, "NaN symbol apply");
        PR_CHECK(pr_toeplitz_apply_symbols(y, 1, 9, t, 17, x, 1, 1, 0, P, NULL) == PR_ENONFINITE,
                 "NaN symbol apply_symbols");
        t[4] = 0.5;
        x[8] = -INFINITY;
        PR_CHECK(pr_toeplitz_vec_spec(sp, x, 1, P, NULL) == PR_ENONFINITE, "Inf vector spec");
        PR_CHECK(pr_toeplitz_correlate(c, x, 1, t, 1, P, NULL) == PR_ENONFINITE, "Inf correlate");
        x[8] = 0.25;
        /* a stride-3 x of n = 9 entries spans 3(n-1)+1 doubles: its own array (x has only 9) */
        double xs[3 * 8 + 1];
        pr_rng_fill(xs, 3 * 8 + 1, 1.0, rng);
        xs[3] = INFINITY;
        PR_CHECK(pr_toeplitz_apply(y, 1, t, xs, 3, 0, P, NULL) == PR_ENONFINITE, "+Inf strided x");
        x[3] = INFINITY;
        PR_CHECK(pr_toeplitz_apply(y, 1, t, x, 1, 0, P, NULL) == PR_ENONFINITE, "+Inf x");
        x[3] = DBL_MAX;
        PR_CHECK(pr_toeplitz_vec_spec(sp, x, 1, P, NULL) == PR_OK, "DBL_MAX is finite");
        x[3] = 0.125;
        pr_toeplitz_plan_t D;
        PR_CHECK_OK(pr_toeplitz_plan(D, n, PR_TOEPLITZ_FORCE_DIRECT));
        x[0] = NAN;
        PR_CHECK(pr_toeplitz_apply(y, 1, t, x, 1, PR_TOEPLITZ_TRANS, D, NULL) == PR_ENONFINITE, "NaN x direct");
        PR_CHECK(pr_toeplitz_apply(y, 1, t, x, 1, 0, D, NULL) == PR_ENONFINITE, "NaN x direct");
        PR_CHECK(pr_toeplitz_correlate(c, x, 1, t, 1, D, NULL) == PR_ENONFINITE, "NaN correlate direct");
        x[0] = 1;
        t[0] = -INFINITY;
        PR_CHECK(pr_toeplitz_apply(y, 1, t, x, 1, 0, D, NULL) == PR_ENONFINITE, "Inf symbol direct");
        t[0] = 0.5;
        pr_toeplitz_destroy(D);
        PR_CHECK(pr_toeplitz_apply(y, 1, t, x, 1, 4, P, NULL) == PR_EINVAL, "bad op");
        PR_CHECK(pr_toeplitz_apply(y, 1, t, x, 0, 0, P, NULL) == PR_EINVAL, "incx = 0");
        PR_CHECK(pr_toeplitz_symbol_spec(sp, t, 8, P, NULL) == PR_EINVAL, "bad op symbol");
        for (int k = 0; k < 17; k++)
            t[k] = 1e300;
        for (int k = 0; k < 9; k++)
            x[k] = 1e300;
        PR_CHECK(pr_toeplitz_apply(y, 1, t, x, 1, 0, P, NULL) == PR_EDOMAIN, "overflow");
        pr_toeplitz_spec_free(sp);
        pr_toeplitz_destroy(P);
        fmpz *ye = _fmpz_vec_init(9);
        slong e;
        PR_CHECK(pr_xtoeplitz_apply(ye, &e, t, x, 0, 0) == PR_EINVAL, "exact n = 0");
        t[0] = NAN;
        PR_CHECK(pr_xtoeplitz_apply(ye, &e, t, x, 9, 0) == PR_ENONFINITE, "exact NaN");
        _fmpz_vec_clear(ye, 9);
    }
    return pr_test_finish("test_toeplitz");
}
