/* Property tests of the certifiers (issue 13): pr_xtoeplitz, pr_xexpand and pr_hiprec against
 * independent evaluations written here (naive O(n²) sums in FLINT fmpq, doubles converted
 * through arf, not the library's dyadic scaling; attention written out in Arb at 1024 bits).
 * "certified" must imply that the bound holds for the exact value; every ball must contain the
 * exact value; refusals are the documented statuses. Forced low precision: pr_hiprec at its
 * minimum (and below it, refused); wide input balls: the output ball contains the outputs of
 * points inside the input balls. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "polyrope.h"
#include "proofs-check/check_impl.h"
#include "pr_test.h"

#define HI 1024

/* q = x exactly, through arf (independent of pr_xexpand_fmpq_set_d and pr_xtoeplitz's scaling) */
static void q_from_d(fmpq_t q, double x)
{
    arf_t a;
    fmpz_t m, e;
    arf_init(a);
    fmpz_init(m);
    fmpz_init(e);
    arf_set_d(a, x);
    arf_get_fmpz_2exp(m, e, a);
    fmpz_set(fmpq_numref(q), m);
    fmpz_one(fmpq_denref(q));
    slong ex = fmpz_get_si(e);
    if (ex >= 0)
        fmpq_mul_2exp(q, q, (ulong)ex);
    else
        fmpq_div_2exp(q, q, (ulong)-ex);
    arf_clear(a);
    fmpz_clear(m);
    fmpz_clear(e);
}

static int qvec_equal(const fmpq *a, const fmpq *b, long len)
{
    for (long i = 0; i < len; i++)
        if (!fmpq_equal(a + i, b + i))
            return 0;
    return 1;
}

/* a random double of magnitude 2^[elo, ehi], or a subnormal, or zero */
static double rand_d(pr_rng_t rng, int elo, int ehi, int special)
{
    double v = pr_rng_range(rng, -1.0, 1.0);
    if (special && pr_rng_below(rng, 8) == 0)
        return 0.0;
    if (special && pr_rng_below(rng, 8) == 0)
        return (double)(int)pr_rng_below(rng, 1000) * DBL_TRUE_MIN * (pr_rng_below(rng, 2) ? 1 : -1);
    return ldexp(v, elo + (int)pr_rng_below(rng, (uint64_t)(ehi - elo + 1)));
}

/* ---- pr_xtoeplitz ---- */

/* exact y = op(T)x (correlate: c(l) = Σ_{i-j=l} t_i x_j) by the definition, and max(|A||b|) */
static void naive_toeplitz(fmpq *y, fmpq_t absmax, const double *t, const double *x, long n, unsigned op,
                           int correlate)
{
    long len = correlate ? 2 * n - 1 : n;
    fmpq_t a, b, p, ab;
    fmpq_init(a);
    fmpq_init(b);
    fmpq_init(p);
    fmpq_init(ab);
    fmpq_zero(absmax);
    for (long r = 0; r < len; r++) {
        fmpq_zero(y + r);
        fmpq_zero(ab);
        for (long j = 0; j < n; j++) {
            double tv;
            if (correlate) {
                long i = r - (n - 1) + j; /* i - j = l */
                if (i < 0 || i >= n)
                    continue;
                tv = t[i];
            } else {
                long l = r - j, orig = (op & PR_TOEPLITZ_TRANS) ? -l : l;
                if ((op & PR_TOEPLITZ_CAUSAL) && orig < 0)
                    continue;
                tv = t[orig + n - 1];
            }
            q_from_d(a, tv);
            q_from_d(b, x[j]);
            fmpq_mul(p, a, b);
            fmpq_add(y + r, y + r, p);
            fmpq_abs(p, p);
            fmpq_add(ab, ab, p);
        }
        if (fmpq_cmp(ab, absmax) > 0)
            fmpq_set(absmax, ab);
    }
    fmpq_clear(a);
    fmpq_clear(b);
    fmpq_clear(p);
    fmpq_clear(ab);
}

static void test_xtoeplitz(pr_rng_t rng)
{
    static const unsigned ops[] = {PR_TOEPLITZ_FULL, PR_TOEPLITZ_CAUSAL, PR_TOEPLITZ_TRANS,
                                   PR_TOEPLITZ_CAUSAL | PR_TOEPLITZ_TRANS};
    int ncert = 0, nref = 0, nrefused = 0;
    for (int trial = 0; trial < 240; trial++) {
        long n = 1 + (long)pr_rng_below(rng, trial % 5 == 0 ? 130 : 24);
        int which = trial % 5, correlate = which == 4, fft = (trial / 5) % 2, family = (trial / 10) % 4;
        unsigned op = correlate ? 0 : ops[which];
        /* exponent ranges of t and x per family: moderate; extreme, with subnormals and zeros
         * (products from 2^-2100 to 2^900); t mixing 2^±500 entries; large enough that the
         * engine overflows (refused, PR_EDOMAIN) */
        static const int tlo[] = {-30, -1074, -520, 500}, thi[] = {30, 450, 500, 540};
        static const int xlo[] = {-30, -1074, -500, 500}, xhi[] = {30, 450, 500, 540};
        long lt = correlate ? n : 2 * n - 1, len = correlate ? 2 * n - 1 : n;
        double *t = malloc(sizeof(double) * (size_t)lt), *x = malloc(sizeof(double) * (size_t)n);
        double *yf = malloc(sizeof(double) * (size_t)len);
        for (long k = 0; k < lt; k++)
            t[k] = family == 2 ? rand_d(rng, k % 2 ? 480 : -520, k % 2 ? 500 : -500, 0)
                               : rand_d(rng, tlo[family], thi[family], family == 1);
        for (long k = 0; k < n; k++)
            x[k] = rand_d(rng, xlo[family], xhi[family], family == 1);
        pr_toeplitz_plan_t P;
        PR_CHECK_OK(pr_toeplitz_plan(P, n, PR_TOEPLITZ_ESTIMATE | (fft ? PR_TOEPLITZ_FORCE_FFT : PR_TOEPLITZ_FORCE_DIRECT)));
        pr_cert_verdict_t v;
        arb_t err, bound, e2;
        arb_init(err);
        arb_init(bound);
        arb_init(e2);
        int st = correlate ? pr_xtoeplitz_certify_correlate(&v, err, bound, t, x, P)
                           : pr_xtoeplitz_certify(&v, err, bound, t, x, op, P);
        int st2 = correlate ? pr_toeplitz_correlate(yf, t, 1, x, 1, P, NULL)
                            : pr_toeplitz_apply(yf, 1, t, x, 1, op, P, NULL);
        PR_CHECK(st == st2, "trial %d n %ld op %u corr %d fft %d family %d: certify %d, engine %d", trial, n, op,
                 correlate, fft, family, st, st2);
        if (st == PR_EDOMAIN) {
            nrefused++;
        } else if (!st && !st2) {
            fmpq *y = _fmpq_vec_init(len);
            fmpq_t ab, d, m;
            fmpq_init(ab);
            fmpq_init(d);
            fmpq_init(m);
            naive_toeplitz(y, ab, t, x, n, op, correlate);
            fmpq_zero(m);
            for (long k = 0; k < len; k++) {
                q_from_d(d, yf[k]);
                fmpq_sub(d, d, y + k);
                fmpq_abs(d, d);
                if (fmpq_cmp(d, m) > 0)
                    fmpq_set(m, d);
            }
            /* err is the exact error (a point) */
            PR_CHECK(arb_contains_fmpq(err, m) && arb_is_exact(err),
                     "trial %d n %ld op %u corr %d fft %d family %d: err does not hold the exact error", trial, n,
                     op, correlate, fft, family);
            /* the direct path's bound is γ_n max(|A||b|) + n 2^-1074: recomputed exactly */
            if (!fft) {
                fmpq_t g;
                fmpq_init(g);
                fmpq_set_si(g, n, 1);
                fmpq_div_2exp(g, g, 53);
                fmpq_one(d);
                fmpq_sub(d, d, g);
                fmpq_div(g, g, d);
                fmpq_mul(g, g, ab);
                fmpq_set_si(d, n, 1);
                fmpq_div_2exp(d, d, 1074);
                fmpq_add(g, g, d);
                PR_CHECK(arb_contains_fmpq(bound, g), "trial %d n %ld op %u corr %d family %d: direct bound "
                         "does not hold gamma_n max(|A||b|) + n 2^-1074", trial, n, op, correlate, family);
                fmpq_clear(g);
            }
            /* certified implies the exact error is within every point of the bound */
            arb_set_fmpq(e2, m, HI);
            if (v == PR_CERT_CERTIFIED) {
                ncert++;
                PR_CHECK(arb_le(e2, bound), "trial %d n %ld op %u corr %d fft %d family %d: certified, yet the "
                         "exact error exceeds the bound", trial, n, op, correlate, fft, family);
            } else if (v == PR_CERT_REFUTED) {
                nref++;
                PR_CHECK(arb_gt(e2, bound), "trial %d: refuted, yet the exact error is within", trial);
                printf("xtoeplitz refuted: trial %d n %ld op %u corr %d fft %d family %d: err %.3e > bound %.3e\n",
                       trial, n, op, correlate, fft, family, pr_hiprec_lbound_d(err), pr_hiprec_ubound_d(bound));
            }
            _fmpq_vec_clear(y, len);
            fmpq_clear(ab);
            fmpq_clear(d);
            fmpq_clear(m);
        }
        arb_clear(err);
        arb_clear(bound);
        arb_clear(e2);
        pr_toeplitz_destroy(P);
        free(t);
        free(x);
        free(yf);
    }
    PR_CHECK(ncert > 100 && nrefused > 0, "xtoeplitz: %d certified, %d refused by the engine", ncert, nrefused);
    /* the a-priori bounds hold on every family, subnormal data included (they had no
     * underflow term: an n = 2 product of subnormals exceeded them) */
    PR_CHECK(nref == 0, "xtoeplitz: %d engine errors beyond the a-priori bound", nref);
    printf("xtoeplitz: %d certified (each re-checked exactly), %d refuted, %d refused (overflow)\n", ncert, nref,
           nrefused);

    /* the refuted branch: an output off by more than the bound */
    long n = 16;
    double t[31], x[16], y[16];
    for (int k = 0; k < 31; k++)
        t[k] = pr_rng_range(rng, -1, 1);
    for (int k = 0; k < 16; k++)
        x[k] = pr_rng_range(rng, -1, 1);
    pr_toeplitz_plan_t P;
    PR_CHECK_OK(pr_toeplitz_plan(P, n, PR_TOEPLITZ_ESTIMATE | PR_TOEPLITZ_FORCE_FFT));
    PR_CHECK_OK(pr_toeplitz_apply(y, 1, t, x, 1, 0, P, NULL));
    fmpz *ye = _fmpz_vec_init(n);
    slong e;
    arb_t err, bound;
    arb_init(err);
    arb_init(bound);
    PR_CHECK_OK(pr_xtoeplitz_apply(ye, &e, t, x, n, 0));
    PR_CHECK_OK(pr_xtoeplitz_apriori_bound(bound, t, x, 0, P));
    pr_xtoeplitz_max_error(err, y, ye, e, n);
    PR_CHECK(pr_hiprec_verdict(err, bound) == PR_CERT_CERTIFIED, "the engine's own output not certified");
    y[3] += 1e-6;
    pr_xtoeplitz_max_error(err, y, ye, e, n);
    PR_CHECK(pr_hiprec_verdict(err, bound) == PR_CERT_REFUTED, "a wrong output not refuted");
    /* a NaN or an infinity in the output is never within a bound (NaN used to drop out of the max) */
    y[3] = NAN;
    pr_xtoeplitz_max_error(err, y, ye, e, n);
    arb_set_d(bound, 1e300);
    PR_CHECK(pr_hiprec_verdict(err, bound) != PR_CERT_CERTIFIED, "a NaN output certified within 1e300");
    y[3] = INFINITY;
    pr_xtoeplitz_max_error(err, y, ye, e, n);
    PR_CHECK(pr_hiprec_verdict(err, bound) != PR_CERT_CERTIFIED, "an infinite output certified");
    /* refusals */
    x[2] = NAN;
    PR_CHECK(pr_xtoeplitz_apply(ye, &e, t, x, n, 0) == PR_ENONFINITE, "NaN input accepted");
    PR_CHECK(pr_xtoeplitz_apriori_bound(bound, t, x, 0, P) == PR_ENONFINITE, "NaN input bounded");
    x[2] = 0.5;
    PR_CHECK(pr_xtoeplitz_apply(ye, &e, t, x, 0, 0) == PR_EINVAL, "n = 0 accepted");
    PR_CHECK(pr_xtoeplitz_apply(ye, &e, t, x, n, 8) == PR_EINVAL, "a bad op accepted");
    arb_clear(err);
    arb_clear(bound);
    _fmpz_vec_clear(ye, n);
    pr_toeplitz_destroy(P);
}

/* ---- pr_xexpand ---- */

/* M_ij exactly from the definition (mask not applied) */
static void naive_scores(fmpq *M, const pr_inst_t *I)
{
    int n = I->n, d = I->d;
    long L = 2L * n - 1;
    fmpq_t a, b, c, sg;
    fmpq_init(a);
    fmpq_init(b);
    fmpq_init(c);
    fmpq_init(sg);
    q_from_d(sg, I->opts.sigma);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            fmpq *m = M + (size_t)i * n + j;
            fmpq_zero(m);
            for (int t = 0; t < I->W->s; t++) {
                q_from_d(a, I->Q[(size_t)i * d + I->W->a[t]]);
                q_from_d(b, I->W->w[(size_t)t * L + i - j + n - 1]);
                q_from_d(c, I->K[(size_t)j * d + I->W->b[t]]);
                fmpq_mul(a, a, b);
                fmpq_mul(a, a, c);
                fmpq_add(m, m, a);
            }
            fmpq_mul(m, m, sg);
        }
    fmpq_clear(a);
    fmpq_clear(b);
    fmpq_clear(c);
    fmpq_clear(sg);
}

static void test_xexpand(pr_rng_t rng)
{
    /* pr_xexpand_fmpq_set_d against the arf path, including the edges of the double range */
    static const double edge[] = {0.0, -0.0, DBL_TRUE_MIN, -DBL_TRUE_MIN, DBL_MIN, DBL_MAX, -DBL_MAX, 1.0, -0.1};
    fmpq_t q1, q2;
    fmpq_init(q1);
    fmpq_init(q2);
    for (int k = 0; k < 400; k++) {
        double v = k < 9 ? edge[k] : rand_d(rng, -1074, 1023, 1);
        pr_xexpand_fmpq_set_d(q1, v);
        q_from_d(q2, v);
        PR_CHECK(fmpq_equal(q1, q2), "pr_xexpand_fmpq_set_d(%a) is not exact", v);
    }
    fmpq_clear(q1);
    fmpq_clear(q2);

    int nout = 0;
    for (int trial = 0; trial < 40; trial++) {
        pr_inst_t I;
        int n = 2 + (int)pr_rng_below(rng, 4), d = 2 * (1 + (int)pr_rng_below(rng, 2));
        PR_CHECK_OK(pr_inst_init(&I, n, d, pr_rng_range(rng, 0.3, 1.5), pr_inst_random_kind(rng),
                                 pr_inst_random_mask(rng, 0), rng));
        int g = (int)pr_rng_below(rng, 4), m = 2;
        if (I.W->s > 8 && g > 2)
            g = 2;
        double *cd = malloc(sizeof(double) * (g + 1)), *Xd = malloc(sizeof(double) * n * m);
        for (int k = 0; k <= g; k++)
            cd[k] = trial % 2 ? pr_rng_range(rng, -2, 2) : 1.0 / tgamma(k + 1.0);
        pr_rng_fill(Xd, (long)n * m, 1.0, rng);
        fmpq *c = _fmpq_vec_init(g + 1), *X = _fmpq_vec_init(n * m), *Y1 = _fmpq_vec_init(n * m);
        fmpq *Y2 = _fmpq_vec_init(n * m), *Yn = _fmpq_vec_init(n * m), *M = _fmpq_vec_init(n * n);
        fmpq *PM = _fmpq_vec_init(n * n), *O = _fmpq_vec_init(n * d), *On = _fmpq_vec_init(n * d);
        for (int k = 0; k <= g; k++)
            q_from_d(c + k, cd[k]);
        for (int k = 0; k < n * m; k++)
            q_from_d(X + k, Xd[k]);
        naive_scores(M, &I);
        /* P(M) ∘ mask by Horner, then Y = P(M) X and O = P(M)V / row sums */
        fmpq_t t, rs, v;
        fmpq_init(t);
        fmpq_init(rs);
        fmpq_init(v);
        int zero_row = 0;
        for (int i = 0; i < n; i++) {
            fmpq_zero(rs);
            for (int j = 0; j < n; j++) {
                fmpq *p = PM + (size_t)i * n + j;
                fmpq_zero(p);
                if (I.opts.causal && j > i)
                    continue;
                for (int k = g; k >= 0; k--) {
                    fmpq_mul(p, p, M + (size_t)i * n + j);
                    fmpq_add(p, p, c + k);
                }
                fmpq_add(rs, rs, p);
            }
            zero_row |= fmpq_is_zero(rs);
            for (int col = 0; col < m; col++) {
                fmpq *y = Yn + (size_t)i * m + col;
                fmpq_zero(y);
                for (int j = 0; j < n; j++)
                    fmpq_addmul(y, PM + (size_t)i * n + j, X + (size_t)j * m + col);
            }
            for (int col = 0; col < d && !fmpq_is_zero(rs); col++) {
                fmpq *o = On + (size_t)i * d + col;
                fmpq_zero(o);
                for (int j = 0; j < n; j++) {
                    q_from_d(v, I.V[(size_t)j * d + col]);
                    fmpq_addmul(o, PM + (size_t)i * n + j, v);
                }
                fmpq_div(o, o, rs);
            }
        }
        pr_xexpand_t E;
        PR_CHECK_OK(pr_xexpand_init(E, I.Q, I.K, I.W, n, d, &I.opts));
        PR_CHECK_OK(pr_xexpand_apply(Y1, E, c, g, X, m));
        PR_CHECK_OK(pr_xexpand_direct(Y2, E, c, g, X, m));
        PR_CHECK(qvec_equal(Y1, Yn, n * m) && qvec_equal(Y2, Yn, n * m),
                 "trial %d (%s, n %d d %d g %d): expansion or direct differs from P(M)X by the definition", trial,
                 I.config, n, d, g);
        int st = pr_xexpand_output(O, E, c, g, I.V);
        if (zero_row) {
            PR_CHECK(st == PR_EDOMAIN, "trial %d: a zero row sum gave %d, not PR_EDOMAIN", trial, st);
        } else {
            nout++;
            PR_CHECK(st == 0 && qvec_equal(O, On, n * d), "trial %d (%s, g %d): output differs (st %d)",
                     trial, I.config, g, st);
        }
        pr_xexpand_clear(E);
        fmpq_clear(t);
        fmpq_clear(rs);
        fmpq_clear(v);
        _fmpq_vec_clear(c, g + 1);
        _fmpq_vec_clear(X, n * m);
        _fmpq_vec_clear(Y1, n * m);
        _fmpq_vec_clear(Y2, n * m);
        _fmpq_vec_clear(Yn, n * m);
        _fmpq_vec_clear(M, n * n);
        _fmpq_vec_clear(PM, n * n);
        _fmpq_vec_clear(O, n * d);
        _fmpq_vec_clear(On, n * d);
        free(cd);
        free(Xd);
        pr_inst_clear(&I);
    }
    PR_CHECK(nout > 20, "xexpand: only %d outputs compared", nout);

    /* refusals: zero polynomial (every row sum 0), a bias, a NaN, too many terms */
    pr_inst_t I;
    PR_CHECK_OK(pr_inst_init(&I, 4, 2, 1.0, PR_POS_ROPE, PR_MASK_NONE, rng));
    fmpq *c = _fmpq_vec_init(3), *O = _fmpq_vec_init(8);
    pr_xexpand_t E;
    PR_CHECK_OK(pr_xexpand_init(E, I.Q, I.K, I.W, 4, 2, &I.opts));
    PR_CHECK(pr_xexpand_output(O, E, c, 2, I.V) == PR_EDOMAIN, "zero polynomial: row sums 0 not refused");
    pr_xexpand_clear(E);
    pr_attn_opts_t bo = I.opts;
    double beta[7];
    PR_CHECK_OK(pr_bias_alibi(beta, 4, 0.3));
    bo.beta = beta;
    PR_CHECK(pr_xexpand_init(E, I.Q, I.K, I.W, 4, 2, &bo) == PR_EINVAL, "a bias accepted");
    I.Q[3] = NAN;
    PR_CHECK(pr_xexpand_init(E, I.Q, I.K, I.W, 4, 2, &I.opts) == PR_ENONFINITE, "NaN accepted");
    pr_inst_clear(&I);
    _fmpq_vec_clear(c, 3);
    _fmpq_vec_clear(O, 8);
    PR_CHECK_OK(pr_inst_init(&I, 3, 8, 1.0, PR_POS_GENERAL, PR_MASK_NONE, rng));
    c = _fmpq_vec_init(9);
    fmpq *X = _fmpq_vec_init(3), *Y = _fmpq_vec_init(3);
    PR_CHECK_OK(pr_xexpand_init(E, I.Q, I.K, I.W, 3, 8, &I.opts));
    PR_CHECK(pr_xexpand_apply(Y, E, c, 8, X, 1) == PR_EBUDGET, "C(%d+8,8) terms not refused", I.W->s);
    pr_xexpand_clear(E);
    _fmpq_vec_clear(c, 9);
    _fmpq_vec_clear(X, 3);
    _fmpq_vec_clear(Y, 3);
    pr_inst_clear(&I);
}

/* ---- pr_hiprec (current API) ---- */

/* O by the definition, from ball inputs (softmax(σ Q W Kᵀ + β) V, causal; with opts.poly the
 * weights P(M_ij) e^β), at prec */
static void naive_forward(arb_ptr O, arb_srcptr Q, arb_srcptr K, arb_srcptr V, arb_srcptr w, const pr_inst_t *I,
                          const pr_attn_opts_t *opts, slong prec)
{
    int n = I->n, d = I->d;
    long L = 2L * n - 1;
    arb_ptr a = _arb_vec_init(n);
    arb_t m, t, D, sg;
    arb_init(m);
    arb_init(t);
    arb_init(D);
    arb_init(sg);
    arb_set_d(sg, opts->sigma);
    for (int i = 0; i < n; i++) {
        arb_zero(D);
        for (int j = 0; j < n; j++) {
            arb_zero(a + j);
            if (opts->causal && j > i)
                continue;
            arb_zero(m);
            for (int s = 0; s < I->W->s; s++) {
                arb_mul(t, Q + (size_t)i * d + I->W->a[s], w + (size_t)s * L + i - j + n - 1, prec);
                arb_addmul(m, t, K + (size_t)j * d + I->W->b[s], prec);
            }
            arb_mul(m, m, sg, prec);
            if (opts->poly) {
                arb_zero(a + j);
                for (int k = opts->poly_degree; k >= 0; k--) {
                    arb_mul(a + j, a + j, m, prec);
                    arb_set_d(t, opts->poly[k]);
                    arb_add(a + j, a + j, t, prec);
                }
                arb_zero(m);
            }
            if (opts->beta) {
                arb_set_d(t, opts->beta[i - j + n - 1]);
                arb_add(m, m, t, prec);
            }
            if (opts->poly) {
                arb_exp(t, m, prec);
                arb_mul(a + j, a + j, t, prec);
            } else {
                arb_exp(a + j, m, prec);
            }
            arb_add(D, D, a + j, prec);
        }
        for (int c = 0; c < d; c++) {
            arb_zero(t);
            for (int j = 0; j < n; j++)
                arb_addmul(t, a + j, V + (size_t)j * d + c, prec);
            arb_div(O + (size_t)i * d + c, t, D, prec);
        }
    }
    _arb_vec_clear(a, n);
    arb_clear(m);
    arb_clear(t);
    arb_clear(D);
    arb_clear(sg);
}

/* the four inputs Q, K, V, w */
static void vecs_clear(arb_ptr v[4], const size_t len[4])
{
    for (int z = 0; z < 4; z++)
        _arb_vec_clear(v[z], (slong)len[z]);
}

static void test_hiprec(pr_rng_t rng)
{
    int nwide = 0;
    for (int trial = 0; trial < 24; trial++) {
        pr_inst_t I;
        PR_CHECK_OK(pr_inst_random(&I, rng, 8, 2, 0.3, 3.0, 1));
        int n = I.n, d = I.d;
        size_t nd = (size_t)n * d, sw = (size_t)I.W->s * (2 * (size_t)n - 1);
        arb_ptr O = _arb_vec_init((slong)nd), Oref = _arb_vec_init((slong)nd);
        arb_ptr q = _arb_vec_init((slong)nd), k = _arb_vec_init((slong)nd), v = _arb_vec_init((slong)nd);
        arb_ptr w = _arb_vec_init((slong)sw);
        pr_hiprec_set_d_vec(q, I.Q, nd);
        pr_hiprec_set_d_vec(k, I.K, nd);
        pr_hiprec_set_d_vec(v, I.V, nd);
        pr_hiprec_set_d_vec(w, I.W->w, sw);
        /* every third trial P-attention (a Taylor polynomial), the others exp */
        double c[7];
        pr_taylor_d(c, 6);
        if (trial % 3 == 1) {
            I.opts.poly = c;
            I.opts.poly_degree = 6;
        }
        naive_forward(Oref, q, k, v, w, &I, &I.opts, HI);
        /* below the minimum precision: refused; at the minimum: every ball holds the truth */
        PR_CHECK(pr_hiprec_forward(O, I.Q, I.K, I.V, I.W, n, d, &I.opts, PR_HIPREC_MIN_PREC - 1) == PR_EINVAL,
                 "prec %d accepted", PR_HIPREC_MIN_PREC - 1);
        PR_CHECK_OK(pr_hiprec_forward(O, I.Q, I.K, I.V, I.W, n, d, &I.opts, PR_HIPREC_MIN_PREC));
        for (size_t i = 0; i < nd; i++)
            PR_CHECK(arb_overlaps(O + i, Oref + i), "trial %d (%s n %d): O[%zu] at prec %d misses the truth", trial,
                     I.config, n, i, PR_HIPREC_MIN_PREC);
        /* the certified error of the dense double output holds the true error */
        double *Od = malloc(sizeof(double) * nd);
        PR_CHECK_OK(pr_dense_forward(Od, NULL, I.Q, I.K, I.V, I.W, n, d, &I.opts));
        arb_t e, eref, thr;
        arb_init(e);
        arb_init(eref);
        arb_init(thr);
        PR_CHECK_OK(pr_hiprec_certify(e, NULL, Od, NULL, NULL, NULL, NULL, I.Q, I.K, I.V, I.W, NULL, n, d, &I.opts, NULL,
                                      PR_HIPREC_MIN_PREC));
        pr_hiprec_max_error(eref, Od, Oref, nd, HI);
        PR_CHECK(arb_overlaps(e, eref), "trial %d: certified err_O misses the true error", trial);
        /* a threshold just above the true error: certified must mean the truth is below it */
        arb_set_d(thr, pr_hiprec_ubound_d(eref));
        if (pr_hiprec_verdict(e, thr) == PR_CERT_CERTIFIED)
            PR_CHECK(arb_le(eref, thr), "trial %d: certified err <= threshold is false", trial);
        PR_CHECK(pr_hiprec_ubound_d(e) >= pr_hiprec_lbound_d(eref), "trial %d: ubound below the true error", trial);
        /* wide input balls: points inside them give outputs inside the output ball */
        int rexp = trial % 3 == 0 ? -2 : -12;
        arb_ptr qb = _arb_vec_init((slong)nd), kb = _arb_vec_init((slong)nd), vb = _arb_vec_init((slong)nd);
        arb_ptr wb = _arb_vec_init((slong)sw), Ob = _arb_vec_init((slong)nd), Op = _arb_vec_init((slong)nd);
        arb_ptr src[4] = {q, k, v, w}, dst[4] = {qb, kb, vb, wb};
        size_t len[4] = {nd, nd, nd, sw};
        for (int z = 0; z < 4; z++)
            for (size_t i = 0; i < len[z]; i++) {
                arb_set(dst[z] + i, src[z] + i);
                mag_set_ui_2exp_si(arb_radref(dst[z] + i), 1, rexp);
            }
        int st = pr_hiprec_forward_arb(Ob, NULL, qb, kb, vb, wb, I.W, n, d, &I.opts, PR_HIPREC_MIN_PREC);
        PR_CHECK(st == 0, "trial %d: wide balls gave %d", trial, st);
        for (int pt = 0; pt < 3 && !st; pt++) {
            arb_ptr pq = _arb_vec_init((slong)nd), pk = _arb_vec_init((slong)nd), pv = _arb_vec_init((slong)nd);
            arb_ptr pw = _arb_vec_init((slong)sw), ps[4] = {pq, pk, pv, pw};
            for (int z = 0; z < 4; z++)
                for (size_t i = 0; i < len[z]; i++) {
                    /* a point of the ball: mid + r·u, u ∈ [-1, 1] (exact in Arb) */
                    arb_set_d(ps[z] + i, pt == 0 ? 1.0 : pt == 1 ? -1.0 : pr_rng_range(rng, -1, 1));
                    arb_mul_2exp_si(ps[z] + i, ps[z] + i, rexp);
                    arb_add(ps[z] + i, ps[z] + i, src[z] + i, ARF_PREC_EXACT);
                }
            naive_forward(Op, pq, pk, pv, pw, &I, &I.opts, HI);
            for (size_t i = 0; i < nd; i++)
                PR_CHECK(arb_contains(Ob + i, Op + i), "trial %d (%s, radius 2^%d) point %d: O[%zu] outside the "
                         "wide output ball", trial, I.config, rexp, pt, i);
            nwide++;
            vecs_clear(ps, len);
        }
        vecs_clear(dst, len);
        _arb_vec_clear(Ob, (slong)nd);
        _arb_vec_clear(Op, (slong)nd);
        arb_clear(e);
        arb_clear(eref);
        arb_clear(thr);
        free(Od);
        _arb_vec_clear(O, (slong)nd);
        _arb_vec_clear(Oref, (slong)nd);
        vecs_clear(src, len);
        pr_inst_clear(&I);
    }
    PR_CHECK(nwide >= 60, "only %d wide-ball points", nwide);

    /* the three-way verdict and the rounded bounds on hand-made balls */
    arb_t a, b;
    arb_init(a);
    arb_init(b);
    arb_one(a);
    arb_one(b);
    PR_CHECK(pr_hiprec_verdict(a, b) == PR_CERT_CERTIFIED, "1 <= 1 not certified");
    mag_set_ui_2exp_si(arb_radref(a), 1, -10);
    PR_CHECK(pr_hiprec_verdict(a, b) == PR_CERT_UNKNOWN, "[1 +- 2^-10] <= 1 decided");
    arb_set_d(b, 0.5);
    PR_CHECK(pr_hiprec_verdict(a, b) == PR_CERT_REFUTED, "[1 +- 2^-10] <= 0.5 not refuted");
    arb_indeterminate(a);
    PR_CHECK(pr_hiprec_verdict(a, b) == PR_CERT_UNKNOWN, "NaN ball decided");
    PR_CHECK(pr_hiprec_lbound_d(a) == 0.0 && pr_hiprec_ubound_d(a) == INFINITY,
             "NaN ball: lbound_d %g (want 0), ubound_d %g (want inf)", pr_hiprec_lbound_d(a), pr_hiprec_ubound_d(a));
    arb_pos_inf(a);
    PR_CHECK(pr_hiprec_verdict(a, b) == PR_CERT_REFUTED, "+inf <= 0.5 not refuted");
    for (int k = 0; k < 200; k++) {
        arf_t u;
        arf_init(u);
        arb_set_d(a, ldexp(pr_rng_range(rng, -1, 1), (int)pr_rng_below(rng, 200) - 100));
        mag_set_d(arb_radref(a), ldexp(pr_rng_uniform(rng), (int)pr_rng_below(rng, 200) - 100));
        arb_get_abs_ubound_arf(u, a, HI);
        PR_CHECK(arf_cmp_d(u, pr_hiprec_ubound_d(a)) <= 0, "ubound_d below the ball's upper end");
        arb_get_abs_lbound_arf(u, a, HI);
        PR_CHECK(arf_cmp_d(u, pr_hiprec_lbound_d(a)) >= 0, "lbound_d above the ball's lower end");
        arf_clear(u);
    }
    arb_clear(a);
    arb_clear(b);
}

int main(void)
{
    uint64_t seed = pr_test_seed("test_certifiers", 20261128);
    pr_rng_t rng;
    pr_rng_init(rng, seed);
    test_xtoeplitz(rng);
    test_xexpand(rng);
    test_hiprec(rng);
    return pr_test_finish("test_certifiers");
}
