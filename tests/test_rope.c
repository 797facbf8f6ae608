/* RoPE and position matrices: the rotation identity ⟨R_i q, R_j k⟩ = q R_{j-i} k that makes
 * W_ℓ = R_{-ℓ} (claim C11 in float), adjoint round trip, and the layout permutation. */
#include <math.h>
#include <float.h>
#include "polyrope.h"
#include "pr_test.h"

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_rope", 20261123));

    for (int trial = 0; trial < 50; trial++) {
        int d = 2 * (1 + (int)pr_rng_below(rng, 8)), n = 1 + (int)pr_rng_below(rng, 40);
        double base = trial % 2 ? 10000.0 : 1.0 + pr_rng_range(rng, 0.5, 500.0);
        pr_rope_layout_t layout = trial % 3 ? PR_ROPE_INTERLEAVED : PR_ROPE_NEOX;
        double *q = malloc(sizeof(double) * n * d), *k = malloc(sizeof(double) * n * d);
        double *qr = malloc(sizeof(double) * n * d), *kr = malloc(sizeof(double) * n * d);
        pr_rng_fill(q, n * d, 1.0, rng);
        pr_rng_fill(k, n * d, 1.0, rng);
        PR_CHECK_OK(pr_rope_rotate(qr, q, n, d, base, layout, 1));
        PR_CHECK_OK(pr_rope_rotate(kr, k, n, d, base, layout, 1));
        pr_posw_t W;
        PR_CHECK_OK(pr_posw_init_rope(W, n, d, base, layout));
        PR_CHECK(W->s == 2 * d, "s=%d d=%d", W->s, d);
        /* each 2×2 block row-sums 2(|cos|+|sin|) ∈ [2, 2√2], and ℓ = 0 gives exactly 2 */
        double rs = pr_posw_max_rowsum(W);
        PR_CHECK(rs >= d && rs <= sqrt(2.0) * d * (1 + 4 * DBL_EPSILON), "max rowsum %g d=%d", rs, d);
        double worst = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double lhs = 0, rhs = 0;
                for (int a = 0; a < d; a++)
                    lhs += qr[i * d + a] * kr[j * d + a];
                for (int t = 0; t < W->s; t++)
                    rhs += q[i * d + W->a[t]] * pr_posw_at(W, t, i - j) * k[j * d + W->b[t]];
                worst = fmax(worst, fabs(lhs - rhs));
            }
        /* both sides are sums of 2d products of magnitude <= 1, each computed with rotation
         * angles accurate to about n·u: a few hundred ulps of 2d covers it */
        double tol = 64.0 * (2 * d) * (n + 4) * DBL_EPSILON;
        PR_CHECK(worst <= tol, "rotation identity: n=%d d=%d base=%.17g layout=%d worst=%g tol=%g",
                 n, d, base, layout, worst, tol);
        /* adjoint round trip */
        PR_CHECK_OK(pr_rope_rotate(qr, qr, n, d, base, layout, -1));
        double rt = pr_vec_max_abs_diff(qr, q, (size_t)n * d);
        PR_CHECK(rt <= 8 * DBL_EPSILON, "round trip n=%d d=%d err=%g", n, d, rt);
        pr_posw_clear(W);
        free(q); free(k); free(qr); free(kr);
    }

    /* layout permutation: neox rotation of permuted columns = permuted interleaved rotation */
    for (int d = 2; d <= 16; d += 2) {
        int n = 7, perm[16];
        double q[7 * 16], qp[7 * 16], r1[7 * 16], r2[7 * 16];
        pr_rng_fill(q, n * d, 1.0, rng);
        pr_rope_layout_perm(perm, d);
        for (int i = 0; i < n; i++)
            for (int c = 0; c < d; c++)
                qp[i * d + perm[c]] = q[i * d + c];
        PR_CHECK_OK(pr_rope_rotate(r1, q, n, d, 10000.0, PR_ROPE_INTERLEAVED, 1));
        PR_CHECK_OK(pr_rope_rotate(r2, qp, n, d, 10000.0, PR_ROPE_NEOX, 1));
        double worst = 0;
        for (int i = 0; i < n; i++)
            for (int c = 0; c < d; c++)
                worst = fmax(worst, fabs(r2[i * d + perm[c]] - r1[i * d + c]));
        PR_CHECK(worst == 0.0, "layout permutation d=%d worst=%g", d, worst);
    }

    /* bad input */
    double x[6];
    PR_CHECK(pr_rope_rotate(x, x, 2, 3, 10000.0, PR_ROPE_INTERLEAVED, 1) == PR_EODD, "odd d");
    pr_posw_t W;
    PR_CHECK(pr_posw_init_rope(W, 4, 3, 10000.0, PR_ROPE_INTERLEAVED) == PR_EODD, "odd d posw");
    PR_CHECK(pr_posw_init(W, 0, 2, 1) == PR_EINVAL, "n = 0");
    return pr_test_finish("test_rope");
}
