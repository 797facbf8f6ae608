/* pr_lowrank_rotate, the one rotation of the low-rank paths (forward and backward): for each
 * factorised kind, the scores of the rotated rows are W's own (q'_i·k'_j = Σ_t q_{a_t} w_t(i-j)
 * k_{b_t}, claim C11: the kind is mapped to W's layout), bit for bit pr_rope_rotate of that layout
 * (sign passed through, in place allowed); the identity copies; other kinds are refused. */
#include <float.h>
#include <math.h>
#include <string.h>
#include "polyrope.h"
#include "pr_test.h"

static void one_kind(pr_rng_t rng, pr_pos_kind_t kind, int trial)
{
    int d = 2 * (1 + (int)pr_rng_below(rng, 6)), n = 1 + (int)pr_rng_below(rng, 30);
    double base = trial % 2 ? PR_ROPE_BASE_DEFAULT : pr_rng_range(rng, 1.5, 500.0);
    size_t nd = (size_t)n * d;
    double *q = malloc(sizeof(double) * nd), *k = malloc(sizeof(double) * nd);
    double *qr = malloc(sizeof(double) * nd), *kr = malloc(sizeof(double) * nd), *ref = malloc(sizeof(double) * nd);
    pr_rng_fill(q, (long)nd, 1.0, rng);
    pr_rng_fill(k, (long)nd, 1.0, rng);
    pr_posw_t W;
    if (kind == PR_POS_IDENTITY)
        PR_CHECK_OK(pr_posw_init_identity(W, n, d));
    else
        PR_CHECK_OK(pr_posw_init_rope(W, n, d, base, kind == PR_POS_ROPE ? PR_ROPE_INTERLEAVED : PR_ROPE_NEOX));
    PR_CHECK_OK(pr_lowrank_rotate(qr, q, n, d, W->kind, W->rope_base, 1));
    PR_CHECK_OK(pr_lowrank_rotate(kr, k, n, d, W->kind, W->rope_base, 1));
    /* both sides are sums of at most 2d products of entries <= 1 whose cos and sin are within a
     * few n·u of each other's (math.md §2): test_rope's allowance */
    double worst = 0.0, tol = 64.0 * (2 * d) * (n + 4) * DBL_EPSILON;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double lhs = 0.0, rhs = 0.0;
            for (int a = 0; a < d; a++)
                lhs += qr[i * d + a] * kr[j * d + a];
            for (int t = 0; t < W->s; t++)
                rhs += q[i * d + W->a[t]] * pr_posw_at(W, t, i - j) * k[j * d + W->b[t]];
            worst = fmax(worst, fabs(lhs - rhs));
        }
    PR_CHECK(worst <= tol, "trial %d kind %s n=%d d=%d base=%.17g: rotated scores off W's by %g (tol %g)", trial,
             pr_pos_kind_name(kind), n, d, base, worst, tol);
    for (int sign = -1; sign <= 1; sign += 2) {
        if (kind == PR_POS_IDENTITY)
            memcpy(ref, q, sizeof(double) * nd);
        else
            PR_CHECK_OK(pr_rope_rotate(ref, q, n, d, base, kind == PR_POS_ROPE ? PR_ROPE_INTERLEAVED : PR_ROPE_NEOX,
                                       sign));
        PR_CHECK_OK(pr_lowrank_rotate(qr, q, n, d, W->kind, W->rope_base, sign));
        PR_CHECK(!memcmp(qr, ref, sizeof(double) * nd), "trial %d kind %s sign %d n=%d d=%d: not pr_rope_rotate's bits",
                 trial, pr_pos_kind_name(kind), sign, n, d);
        memcpy(qr, q, sizeof(double) * nd);
        PR_CHECK_OK(pr_lowrank_rotate(qr, qr, n, d, W->kind, W->rope_base, sign));
        PR_CHECK(!memcmp(qr, ref, sizeof(double) * nd), "trial %d kind %s sign %d n=%d d=%d: in place differs", trial,
                 pr_pos_kind_name(kind), sign, n, d);
    }
    pr_posw_clear(W);
    free(q); free(k); free(qr); free(kr); free(ref);
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_lowrank", 20261128));
    static const pr_pos_kind_t kinds[3] = {PR_POS_ROPE, PR_POS_ROPE_NEOX, PR_POS_IDENTITY};
    for (int trial = 0; trial < 30; trial++)
        one_kind(rng, kinds[trial % 3], trial);
    double x[4] = {1.0, 2.0, 3.0, 4.0};
    PR_CHECK(pr_lowrank_rotate(x, x, 2, 2, PR_POS_GENERAL, 0.0, 1) == PR_EINVAL, "a general W has no rotation");
    PR_CHECK(pr_lowrank_rotate(x, x, 1, 3, PR_POS_ROPE, PR_ROPE_BASE_DEFAULT, 1) == PR_EODD, "RoPE with odd d");
    return pr_test_finish("test_lowrank");
}
