/* pr_hiprec and pr_xexpand: the references that the checks rely on.
 * Oracles: the dense double reference (i2) must lie within its rounding bound of the Arb
 * enclosures, enclosures are tight, bad inputs give statuses; exact conversions round-trip;
 * the exact expansion on tiny instances agrees with the dense rational P(M). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "polyrope-exact.h"
#include "proofs-check/checks.h"
#include "pr_test.h"
#include "pr_test_cli.h"

#define PREC 128

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_hiprec", 20261123));

    for (int trial = 0; trial < 24; trial++) {
        int n = 1 + (int)pr_rng_below(rng, 12), d = 2 * (1 + (int)pr_rng_below(rng, 3));
        double B = pr_rng_range(rng, 0.25, 2.0);
        size_t nd = (size_t)n * d;
        double *Q = malloc(sizeof(double) * nd), *K = malloc(sizeof(double) * nd);
        double *V = malloc(sizeof(double) * nd), *O = malloc(sizeof(double) * nd);
        double *dO = malloc(sizeof(double) * nd), *lse = malloc(sizeof(double) * n);
        double *dQ = malloc(sizeof(double) * nd), *dK = malloc(sizeof(double) * nd);
        double *dV = malloc(sizeof(double) * nd);
        pr_rng_fill(Q, (long)nd, B, rng);
        pr_rng_fill(K, (long)nd, B, rng);
        pr_rng_fill(V, (long)nd, B, rng);
        pr_rng_fill(dO, (long)nd, 1.0, rng);
        pr_posw_t W;
        int kind = trial % 3;
        if (kind == 0)
            PR_CHECK_OK(pr_posw_init_rope(W, n, d, PR_ROPE_BASE_DEFAULT, PR_ROPE_INTERLEAVED));
        else if (kind == 1)
            PR_CHECK_OK(pr_posw_init_general(W, n, d, rng));
        else
            PR_CHECK_OK(pr_posw_init_identity(W, n, d));
        pr_attn_opts_t opts;
        pr_attn_opts_default(&opts, d);
        opts.causal = trial % 2;
        size_t sw = (size_t)W->s * (2 * (size_t)n - 1);
        double *dw = malloc(sizeof(double) * sw);
        arb_ptr Oa = _arb_vec_init((slong)nd), dQa = _arb_vec_init((slong)nd);
        arb_ptr dKa = _arb_vec_init((slong)nd), dVa = _arb_vec_init((slong)nd);
        arb_ptr dwa = _arb_vec_init((slong)sw);
        PR_CHECK_OK(pr_hiprec_forward(Oa, Q, K, V, W, n, d, &opts, PREC));
        PR_CHECK_OK(pr_hiprec_backward(dQa, dKa, dVa, dwa, Q, K, V, W, dO, n, d, &opts, PREC));
        /* enclosures are tight: relative accuracy ≥ 100 bits wherever the value is not ~0 */
        for (size_t i = 0; i < nd; i++)
            PR_CHECK(arb_rel_accuracy_bits(Oa + i) >= 100 || mag_cmp_2exp_si(arb_radref(Oa + i), -110) < 0,
                     "wide ball O[%zu]: %ld bits, n=%d d=%d", i, (long)arb_rel_accuracy_bits(Oa + i), n, d);
        /* the dense double path against the enclosures, within pr_check_dense_tol */
        double R = opts.sigma * B * B * pr_posw_max_rowsum(W);
        double tolO = pr_check_dense_tol(R, B, W->s, n, 0), tolG = pr_check_dense_tol(R, B, W->s, n, 1);
        arb_t err, thr;
        arb_init(err);
        arb_init(thr);
        PR_CHECK_OK(pr_dense_forward(O, lse, Q, K, V, W, n, d, &opts));
        pr_hiprec_max_error(err, O, Oa, nd, PREC);
        arb_set_d(thr, tolO);
        PR_CHECK(pr_hiprec_verdict(err, thr) == PR_CERT_CERTIFIED,
                 "dense O error %g > %g: n=%d d=%d kind=%d causal=%d", pr_hiprec_ubound_d(err), tolO,
                 n, d, kind, opts.causal);
        PR_CHECK_OK(pr_dense_backward(dQ, dK, dV, dw, Q, K, V, W, O, lse, dO, n, d, &opts));
        const double *g[4] = {dQ, dK, dV, dw};
        arb_srcptr ga[4] = {dQa, dKa, dVa, dwa};
        size_t len[4] = {nd, nd, nd, sw};
        for (int q = 0; q < 4; q++) {
            pr_hiprec_max_error(err, g[q], ga[q], len[q], PREC);
            arb_set_d(thr, tolG);
            PR_CHECK(pr_hiprec_verdict(err, thr) == PR_CERT_CERTIFIED,
                     "dense gradient %d error %g > %g: n=%d d=%d kind=%d causal=%d", q,
                     pr_hiprec_ubound_d(err), tolG, n, d, kind, opts.causal);
        }
        /* a wrong output is refuted, not just uncertified */
        O[0] += 1e-3;
        pr_hiprec_max_error(err, O, Oa, nd, PREC);
        arb_set_d(thr, 1e-4);
        PR_CHECK(pr_hiprec_verdict(err, thr) == PR_CERT_REFUTED, "perturbed O not refuted");
        arb_clear(err);
        arb_clear(thr);
        _arb_vec_clear(Oa, (slong)nd);
        _arb_vec_clear(dQa, (slong)nd);
        _arb_vec_clear(dKa, (slong)nd);
        _arb_vec_clear(dVa, (slong)nd);
        _arb_vec_clear(dwa, (slong)sw);
        pr_posw_clear(W);
        free(Q); free(K); free(V); free(O); free(dO); free(lse); free(dQ); free(dK); free(dV); free(dw);
    }

    /* bad inputs give statuses */
    {
        int n = 3, d = 2;
        double Q[6] = {1, 0, 0, 1, 1, 1}, K[6] = {0}, V[6] = {0};
        pr_posw_t W;
        pr_attn_opts_t opts;
        pr_attn_opts_default(&opts, d);
        PR_CHECK_OK(pr_posw_init_identity(W, n, d));
        arb_ptr Oa = _arb_vec_init(6);
        PR_CHECK(pr_hiprec_forward(Oa, Q, K, V, W, n, d, &opts, 64) == PR_EINVAL, "prec 64 accepted");
        PR_CHECK(pr_hiprec_forward(Oa, Q, K, V, W, n + 1, d, &opts, PREC) == PR_ESHAPE, "shape");
        Q[2] = NAN;
        PR_CHECK(pr_hiprec_forward(Oa, Q, K, V, W, n, d, &opts, PREC) == PR_ENONFINITE, "NaN accepted");
        Q[2] = 0;
        double beta[5] = {0, 0, 0, 0, 0};
        opts.beta = beta;
        pr_xexpand_t E;
        PR_CHECK(pr_xexpand_init(E, Q, K, W, n, d, &opts) == PR_EINVAL, "irrational bias accepted");
        _arb_vec_clear(Oa, 6);
        pr_posw_clear(W);
    }

    /* doubles are exact rationals: the conversion round-trips, subnormals and extremes included */
    {
        fmpq_t q;
        fmpq_init(q);
        double xs[] = {0.0, -0.0, 1.0, -3.5, DBL_MIN, DBL_TRUE_MIN, DBL_MAX, -1e-300, 0.1};
        for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
            pr_xexpand_fmpq_set_d(q, xs[i]);
            PR_CHECK(fmpq_get_d(q) == xs[i], "round trip %.17g", xs[i]);
        }
        for (int i = 0; i < 100; i++) {
            double x = ldexp(pr_rng_range(rng, -1, 1), (int)pr_rng_below(rng, 200) - 100);
            pr_xexpand_fmpq_set_d(q, x);
            PR_CHECK(fmpq_get_d(q) == x, "round trip %.17g", x);
        }
        fmpq_clear(q);
    }

    /* counts: multisets of a 3-set of size ≤ 2 are 1 + 3 + 6 = 10 */
    {
        fmpz_t total;
        fmpz *by = _fmpz_vec_init(3);
        fmpz_init(total);
        PR_CHECK_OK(pr_xexpand_count(total, by, 3, 2));
        PR_CHECK(fmpz_equal_si(total, 10) && fmpz_equal_si(by + 1, 3) && fmpz_equal_si(by + 2, 6),
                 "count(3,2) = %ld", fmpz_get_si(total));
        fmpz_clear(total);
        _fmpz_vec_clear(by, 3);
    }
    /* polyrope attn --certify: the fast path's error is certified within its reported bound */
    if (getenv("POLYROPE")) {
        const char *args = "attn --n 40 --d 4 --pos general --algo fft --eps 1e-4 --backward --certify --json";
        int rc = pr_test_cli_run("test_hiprec", args);
        PR_CHECK(rc == 0 && pr_test_cli_out[0] && strstr(pr_test_cli_out, "\"certified_verdict\": \"certified\"") &&
                 !strstr(pr_test_cli_out, "\"certified_grad_err_inf\": null"), "polyrope %s gave: %s", args,
                 pr_test_cli_out);
    }
    return pr_test_finish("test_hiprec");
}
