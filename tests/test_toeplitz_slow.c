/* Slow suite: claim C4 at large and awkward lengths. The FFT engine's product, transposed
 * product and correlation are certified against exact FLINT products, and each observed error
 * must lie within the a-priori bound (pr_xtoeplitz.c states its form and source). */
#include <math.h>
#include "polyrope-exact.h"
#include "pr_test.h"

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_toeplitz_slow", 20261124));
    /* primes, 7-smooth and awkward lengths, then random ones */
    long ns[10] = {65521, 100003, 131071, 131072, 99225};
    int count = 5;
    while (count < 10)
        ns[count++] = 1 + (long)pr_rng_below(rng, 150000);
    double worst = 0;
    for (int a = 0; a < count; a++) {
        long n = ns[a];
        pr_toeplitz_plan_t P;
        PR_CHECK_OK(pr_toeplitz_plan(P, n, PR_TOEPLITZ_FORCE_FFT));
        double *t = malloc(sizeof(double) * (2 * n - 1)), *x = malloc(sizeof(double) * n);
        pr_rng_fill(t, 2 * n - 1, 1.0, rng);
        pr_rng_fill(x, n, 1.0, rng);
        for (int k = 0; k < 3; k++) {
            pr_cert_verdict_t v;
            arb_t err, bnd, r;
            arb_init(err);
            arb_init(bnd);
            arb_init(r);
            if (k < 2)
                PR_CHECK_OK(pr_xtoeplitz_certify(&v, err, bnd, t, x, k ? PR_TOEPLITZ_TRANS : 0, P));
            else
                PR_CHECK_OK(pr_xtoeplitz_certify_correlate(&v, err, bnd, x, t, P));
            arb_div(r, err, bnd, 64);
            double ratio = arf_get_d(arb_midref(r), ARF_RND_NEAR);
            worst = fmax(worst, ratio);
            printf("n=%ld L=%ld %s: err %s bound %s ratio %.3g\n", n, P->L,
                   k == 0 ? "T x" : k == 1 ? "T^T x" : "corr", arb_get_str(err, 5, 0),
                   arb_get_str(bnd, 5, 0), ratio);
            fflush(stdout);
            PR_CHECK(v == PR_CERT_CERTIFIED, "C4 n=%ld kind=%d: %s", n, k, pr_cert_verdict_name(v));
            arb_clear(err);
            arb_clear(bnd);
            arb_clear(r);
        }
        free(t);
        free(x);
        pr_toeplitz_destroy(P);
    }
    printf("C4 (slow): worst observed / bound %.3g\n", worst);
    return pr_test_finish("test_toeplitz_slow");
}
