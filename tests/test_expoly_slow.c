/* Slow: a certified degree sweep (C7, C8). Every (kind, setting, R, eps) on the grid gets a
 * certified least degree; degrees are monotone in R and eps, minimax never needs more than
 * Chebyshev, and degree/aa22 stays within a constant band (the Θ of Aggarwal–Alman). Prints
 * the band per kind and setting, and the CPU time per pair. */
#include <math.h>
#include <stdio.h>
#include <time.h>
#include "polyrope-exact.h"
#include "pr_test.h"

#define NR 7
#define NE 8

int main(void)
{
    pr_test_seed("test_expoly_slow", 0);   /* deterministic grid; printed for the harness */
    const double Rs[NR] = {0.5, 1, 2, 4, 8, 16, 32};
    double eps[NE];
    for (int j = 0; j < NE; j++)
        eps[j] = pow(10.0, -2.0 * (j + 1));   /* 1e-2 .. 1e-16 */
    static int deg[3][3][NR][NE];
    long pairs = 0;
    clock_t c0 = clock();
    double worst = 0;
    for (int set = 0; set < 3; set++)
        for (int kind = 0; kind < 3; kind++) {
            double lo = INFINITY, hi = 0;
            for (int i = 0; i < NR; i++)
                for (int j = 0; j < NE; j++) {
                    pr_certexp_degree_t d;
                    pr_certexp_degree_init(d);
                    clock_t t = clock();
                    PR_CHECK_OK(pr_certexp_least_degree(d, (pr_expoly_kind_t)kind, (pr_expoly_setting_t)set, Rs[i],
                                                        eps[j], -1, 1000));
                    worst = fmax(worst, (double)(clock() - t) / CLOCKS_PER_SEC);
                    pairs++;
                    PR_CHECK(d->verdict == PR_CERT_CERTIFIED, "kind=%d set=%d R=%g eps=%g verdict=%d", kind, set,
                             Rs[i], eps[j], d->verdict);
                    int g = deg[set][kind][i][j] = d->degree;
                    double ratio = g / pr_expoly_aa22_setting((pr_expoly_setting_t)set, Rs[i], eps[j]);
                    lo = fmin(lo, ratio);
                    hi = fmax(hi, ratio);
                    if (i > 0)
                        PR_CHECK(g >= deg[set][kind][i - 1][j], "R monotone kind=%d set=%d R=%g eps=%g: %d < %d",
                                 kind, set, Rs[i], eps[j], g, deg[set][kind][i - 1][j]);
                    if (j > 0)
                        PR_CHECK(g >= deg[set][kind][i][j - 1], "eps monotone kind=%d set=%d R=%g eps=%g: %d < %d",
                                 kind, set, Rs[i], eps[j], g, deg[set][kind][i][j - 1]);
                    if (kind == PR_EXPOLY_MINIMAX)
                        PR_CHECK(g <= deg[set][PR_EXPOLY_CHEBYSHEV][i][j], "minimax %d > chebyshev %d set=%d R=%g eps=%g",
                                 g, deg[set][PR_EXPOLY_CHEBYSHEV][i][j], set, Rs[i], eps[j]);
                    pr_certexp_degree_clear(d);
                }
            printf("%-10s %-10s degree/aa22 in [%.3f, %.3f]\n", pr_expoly_kind_name((pr_expoly_kind_t)kind),
                   pr_expoly_setting_name((pr_expoly_setting_t)set), lo, hi);
            /* Θ(aa22): the least degree is within a constant factor of the formula; Taylor's
             * constant is the largest (about e for e^x relative at large R). A band of [1/8, 8]
             * leaves room for the constants while catching a wrong growth rate. */
            PR_CHECK(lo >= 0.125 && hi <= 8, "band kind=%d set=%d [%g, %g]", kind, set, lo, hi);
        }
    double cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    printf("%ld certified least degrees, cpu %.2f s (%.4f s per pair, worst %.3f s)\n", pairs, cpu, cpu / pairs, worst);
    return pr_test_finish("test_expoly_slow");
}
