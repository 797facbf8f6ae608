/* pr_flat_attention (the Python module's entry): every head equals pr_dense_forward on that head
 * (query head hi on kv head hi / group), the fast paths equal their pr_control drivers with the
 * same bound, and with many heads each head a one-head plan's under the P chosen for all, and every bad argument is refused with its status, a one-line reason naming it and
 * O all zeros. Seed: $PR_TEST_SEED. */
#include <math.h>
#include <string.h>
#include "polyrope.h"
#include "pr_test.h"

static double *uniform(pr_rng_t rng, size_t count)
{
    double *x = malloc(sizeof(double) * count);
    for (size_t i = 0; i < count; i++)
        x[i] = 2.0 * pr_rng_uniform(rng) - 1.0;
    return x;
}

/* batch 2, 6 query heads over 3 kv heads, every position kind: head by head as pr_dense */
static void per_head(pr_rng_t rng)
{
    const long b = 2, h = 6, hk = 3, n = 11, d = 4;
    size_t head = (size_t)(n * d);
    double *Q = uniform(rng, b * h * head), *K = uniform(rng, b * hk * head), *V = uniform(rng, b * hk * head);
    double *O = malloc(sizeof(double) * b * h * head), *R = malloc(sizeof(double) * head);
    double *w3 = uniform(rng, (size_t)(2 * n - 1) * d * d), bound[12];
    const int kinds[] = {PR_POS_ROPE, PR_POS_ROPE_NEOX, PR_POS_IDENTITY, PR_POS_CUSTOM};
    for (int t = 0; t < 4; t++) {
        char msg[256];
        int causal = t % 2;
        double alibi = t == 2 ? 0.5 : 0.0, sigma = 1.0 / sqrt((double)d);
        int st = pr_flat_attention(O, bound, msg, sizeof msg, Q, K, V, w3, b, h, hk, n, d, kinds[t], 500.0, sigma,
                                   causal, alibi, PR_FLAT_EXACT, 1e-6);
        PR_CHECK(st == PR_OK, "kind %d: %s", kinds[t], msg);
        pr_posw_t W;
        if (kinds[t] == PR_POS_CUSTOM)
            PR_CHECK_OK(pr_posw_init_dense(W, w3, (int)n, (int)d));
        else if (kinds[t] == PR_POS_IDENTITY)
            PR_CHECK_OK(pr_posw_init_identity(W, (int)n, (int)d));
        else
            PR_CHECK_OK(pr_posw_init_rope(W, (int)n, (int)d, 500.0,
                                          kinds[t] == PR_POS_ROPE ? PR_ROPE_INTERLEAVED : PR_ROPE_NEOX));
        pr_attn_opts_t opts;
        pr_attn_opts_default(&opts, (int)d);
        opts.sigma = sigma;
        opts.causal = causal;
        double beta[21];
        if (alibi > 0) {
            PR_CHECK_OK(pr_bias_alibi(beta, (int)n, alibi));
            opts.beta = beta;
        }
        for (long bh = 0; bh < b * h; bh++) {
            long kv = (bh / h) * hk + (bh % h) / (h / hk);
            PR_CHECK_OK(pr_dense_forward(R, NULL, Q + bh * head, K + kv * head, V + kv * head, W, (int)n, (int)d,
                                         &opts));
            PR_CHECK(!memcmp(R, O + bh * head, sizeof(double) * head) && isnan(bound[bh]),
                     "kind %d, head %ld differs from pr_dense_forward", kinds[t], bh);
        }
        pr_posw_clear(W);
    }
    /* the FFT path: the driver's output and bound */
    double bd[12];
    char msg[256];
    int st = pr_flat_attention(O, bd, msg, sizeof msg, Q, K, V, NULL, 1, 1, 1, n, d, PR_POS_ROPE, 10000.0,
                               1.0 / d, 1, 0.0, PR_FLAT_FFT, 1e-5);
    PR_CHECK(st == PR_OK, "fft: %s", msg);
    pr_posw_t W;
    PR_CHECK_OK(pr_posw_init_rope(W, (int)n, (int)d, 10000.0, PR_ROPE_INTERLEAVED));
    pr_attn_opts_t opts;
    pr_attn_opts_default(&opts, (int)d);
    opts.causal = 1;
    pr_control_opts_t o;
    pr_control_opts_default(&o);
    o.eps = 1e-5;
    o.widen = 1;
    pr_control_info_t info;
    PR_CHECK_OK(pr_control_forward_fft(R, &info, Q, K, V, W, (int)n, (int)d, &opts, &o));
    PR_CHECK(!memcmp(R, O, sizeof(double) * head) && bd[0] == info.bound && bd[0] <= 1e-5, "fft: bound %g vs %g",
             bd[0], info.bound);
    pr_posw_clear(W);
    free(Q);
    free(K);
    free(V);
    free(O);
    free(R);
    free(w3);
}

/* the fast paths with batch 2, 4 query heads over 2 kv heads: P chosen once for the worst head
 * (pr_control_choose_heads over the 8 heads), each head bit for bit a one-head plan's under it,
 * each head's bound within eps and holding against pr_dense_forward plus its estimated rounding */
static void fast_heads(pr_rng_t rng)
{
    const long b = 2, h = 4, hk = 2, n = 13, d = 2;
    size_t head = (size_t)(n * d);
    double *Q = uniform(rng, b * h * head), *K = uniform(rng, b * hk * head), *V = uniform(rng, b * hk * head);
    double *O = malloc(sizeof(double) * b * h * head), *R = malloc(sizeof(double) * head), bound[8];
    for (size_t i = 0; i < 3 * head; i++)
        Q[i] *= 2.0;   /* the first heads larger: the worst head sets P */
    for (int lr = 0; lr < 2; lr++) {
        char msg[256];
        int st = pr_flat_attention(O, bound, msg, sizeof msg, Q, K, V, NULL, b, h, hk, n, d, PR_POS_ROPE, 100.0, 0.5,
                                   lr, 0.0, lr ? PR_FLAT_LOWRANK : PR_FLAT_FFT, 1e-7);
        PR_CHECK(st == PR_OK, "lowrank %d: %s", lr, msg);
        pr_posw_t W;
        PR_CHECK_OK(pr_posw_init_rope(W, (int)n, (int)d, 100.0, PR_ROPE_INTERLEAVED));
        pr_attn_opts_t opts;
        pr_attn_opts_default(&opts, (int)d);
        opts.sigma = 0.5;
        opts.causal = lr;
        pr_control_opts_t o;
        pr_control_opts_default(&o);
        o.eps = 1e-7;
        o.widen = 1;
        pr_control_heads_t hd = {(int)(b * h), (int)(b * hk), NULL, NULL};
        pr_control_info_t info;
        pr_expoly_t P;
        pr_expoly_init(P);
        PR_CHECK_OK(pr_control_choose_heads(P, &info, Q, K, V, W, (int)n, (int)d, &opts, &o, lr, &hd));
        pr_attn_opts_t po = opts;
        po.poly = P->c;
        po.poly_degree = P->degree;
        pr_fast_plan_t F;
        PR_CHECK_OK(pr_fast_plan(F, W, &po, (size_t)1 << 30, 1000000, PR_FAST_ESTIMATE));
        for (long bh = 0; bh < b * h; bh++) {
            long kv = (bh / h) * hk + (bh % h) / (h / hk);
            if (lr)
                PR_CHECK_OK(pr_lowrank_execute(R, Q + bh * head, K + kv * head, V + kv * head, W, (int)n, (int)d, &po,
                                               (size_t)1 << 30, 1000000));
            else
                PR_CHECK_OK(pr_fast_execute(R, F, Q + bh * head, K + kv * head, V + kv * head));
            PR_CHECK(!memcmp(R, O + bh * head, sizeof(double) * head) && bound[bh] <= 1e-7,
                     "lowrank %d, head %ld differs from a one-head plan under the heads' P, or bound %g > eps", lr, bh,
                     bound[bh]);
            pr_dense_err_t de;
            PR_CHECK_OK(pr_dense_forward(R, NULL, Q + bh * head, K + kv * head, V + kv * head, W, (int)n, (int)d,
                                         &opts));
            PR_CHECK_OK(pr_dense_error_est(&de, Q + bh * head, K + kv * head, V + kv * head, W, R, NULL, (int)n,
                                           (int)d, &opts));
            double err = pr_vec_max_abs_diff(R, O + bh * head, head);
            PR_CHECK(err <= bound[bh] + de.o, "lowrank %d, head %ld: err %g past its bound %g + %g", lr, bh, err,
                     bound[bh], de.o);
        }
        pr_fast_destroy(F);
        pr_expoly_clear(P);
        pr_posw_clear(W);
        /* a head's data refused: named (bi, hi), O all zeros */
        Q[5 * head + 3] = NAN;
        st = pr_flat_attention(O, bound, msg, sizeof msg, Q, K, V, NULL, b, h, hk, n, d, PR_POS_ROPE, 100.0, 0.5, lr,
                               0.0, lr ? PR_FLAT_LOWRANK : PR_FLAT_FFT, 1e-7);
        PR_CHECK(st == PR_ENONFINITE && strstr(msg, "head (1, 1)") && pr_vec_max_abs(O, b * h * head) == 0.0,
                 "lowrank %d: NaN in head (1, 1): status %d, \"%s\"", lr, st, msg);
        Q[5 * head + 3] = 0.25;
    }
    free(Q);
    free(K);
    free(V);
    free(O);
    free(R);
}

/* each bad argument: its status and a one-line reason with the given words; O untouched when the
 * arguments are refused, all zeros when the work failed (late: no partial result either way) */
static void refusals(pr_rng_t rng)
{
    const long n = 6, d = 4;
    double *Q = uniform(rng, 2 * n * d), *K = uniform(rng, 2 * n * d), *V = uniform(rng, 2 * n * d);
    double O[2 * 6 * 4];
    struct {
        long b, h, hk, n, d;
        int pos;
        double base, sigma;
        int causal;
        double alibi;
        int algo;
        double eps;
        int want, late;
        const char *words;
    } c[] = {
        {1, 0, 1, n, d, PR_POS_ROPE, 1e4, 0.25, 0, 0, 0, 1e-6, PR_EINVAL, 0, "must be positive"},
        {1, 2, 0, n, d, PR_POS_ROPE, 1e4, 0.25, 0, 0, 0, 1e-6, PR_EINVAL, 0, "must be positive"},
        {1, 3, 2, n, d, PR_POS_ROPE, 1e4, 0.25, 0, 0, 0, 1e-6, PR_ESHAPE, 0, "not a multiple"},
        {1, 1, 1, n, 3, PR_POS_ROPE, 1e4, 0.25, 0, 0, 0, 1e-6, PR_EODD, 0, "even head dimension"},
        {1, 1, 1, 1L << 40, d, PR_POS_ROPE, 1e4, 0.25, 0, 0, 0, 1e-6, PR_ESIZE, 0, "too large"},
        {1L << 30, 1L << 30, 1, n, d, PR_POS_ROPE, 1e4, 0.25, 0, 0, 0, 1e-6, PR_ESIZE, 0, "overflow"},
        {1, 1, 1, n, d, 2, 1e4, 0.25, 0, 0, 0, 1e-6, PR_EINVAL, 0, "pos 2"},
        {1, 1, 1, n, d, PR_POS_CUSTOM, 1e4, 0.25, 0, 0, 0, 1e-6, PR_EINVAL, 0, "(2n-1, d, d)"},
        {1, 1, 1, n, d, PR_POS_ROPE, 1.0, 0.25, 0, 0, 0, 1e-6, PR_EINVAL, 0, "rope_base 1"},
        {1, 1, 1, n, d, PR_POS_ROPE, 1e4, 0.0, 0, 0, 0, 1e-6, PR_EINVAL, 0, "score scale 0"},
        {1, 1, 1, n, d, PR_POS_ROPE, 1e4, NAN, 0, 0, 0, 1e-6, PR_EINVAL, 0, "score scale nan"},
        {1, 1, 1, n, d, PR_POS_ROPE, 1e4, 0.25, 2, 0, 0, 1e-6, PR_EINVAL, 0, "causal 2"},
        {1, 1, 1, n, d, PR_POS_ROPE, 1e4, 0.25, 0, -1, 0, 1e-6, PR_EINVAL, 0, "alibi slope -1"},
        {1, 1, 1, n, d, PR_POS_ROPE, 1e4, 0.25, 0, 0, 7, 1e-6, PR_EINVAL, 0, "algo 7"},
        {1, 1, 1, n, d, PR_POS_ROPE, 1e4, 0.25, 0, 0, PR_FLAT_FFT, 0.0, PR_EINVAL, 0, "eps 0"},
        {1, 1, 1, n, d, PR_POS_ROPE, 1e4, 0.25, 0, 0, PR_FLAT_FFT, 1e-300, PR_EFLOOR, 1, "floor"},
        {1, 1, 1, n, d, PR_POS_ROPE, 1e4, 0.25, 0, 0.5, PR_FLAT_LOWRANK, 1e-6, PR_EINVAL, 1, "no alibi"},
        /* query head 1 holds an Inf (set below): head 0 is computed, then the failure names head 1 */
        {1, 2, 1, n, d, PR_POS_ROPE, 1e4, 0.25, 0, 0, 0, 1e-6, PR_ENONFINITE, 1, "head (0, 1)"},
    };
    size_t cases = sizeof c / sizeof c[0];
    for (size_t t = 0; t < cases; t++) {
        char msg[256] = "unset";
        for (size_t i = 0; i < sizeof O / sizeof O[0]; i++)
            O[i] = 1.0;
        Q[n * d] = t + 1 == cases ? INFINITY : 0.5;
        int st = pr_flat_attention(O, NULL, msg, sizeof msg, Q, K, V, NULL, c[t].b, c[t].h, c[t].hk, c[t].n, c[t].d,
                                   c[t].pos, c[t].base, c[t].sigma, c[t].causal, c[t].alibi, c[t].algo, c[t].eps);
        int same = 1;
        for (size_t i = 0; i < sizeof O / sizeof O[0]; i++)
            same &= O[i] == (c[t].late && i < (size_t)(c[t].b * c[t].h * n * d) ? 0.0 : 1.0);
        PR_CHECK(st == c[t].want && strstr(msg, c[t].words) && !strchr(msg, '\n') && same,
                 "case %zu: status %d (want %d), O as expected %d, msg \"%s\"", t, st, c[t].want, same, msg);
    }
    free(Q);
    free(K);
    free(V);
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_flat", 20261128));
    per_head(rng);
    fast_heads(rng);
    refusals(rng);
    return pr_test_finish("test_flat");
}
