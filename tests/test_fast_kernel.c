/* The general-W forward's decomposition and kernels (issue 16): the AVX2 multiply-accumulate and
 * the portable fma() one ($POLYROPE_FAST_KERNEL=generic at plan time) give the same bits, kept and
 * streamed, one head or many, at sizes whose frequency counts leave every remainder of the
 * 4-frequency loop; and the inverse phase's chunks are fixed at plan time, so an execute that gets
 * fewer threads than planned (from inside a parallel region) gives the same bits. */
#include <math.h>
#include <string.h>
#include <omp.h>
#include "polyrope.h"
#include "pr_test.h"

typedef struct {
    pr_posw_t W;
    pr_attn_opts_t o;
    double c[8];
    int n, d, h, h_kv;
    double *Q, *K, *V;
} inst_t;

static void inst_init(inst_t *I, pr_rng_t rng, int n, int d, int g, int h, int h_kv, int causal)
{
    I->n = n;
    I->d = d;
    I->h = h;
    I->h_kv = h_kv;
    PR_CHECK_OK(pr_posw_init_general(I->W, n, d, rng));
    pr_attn_opts_default(&I->o, d);
    I->o.causal = causal;
    I->c[0] = 1.0;   /* exp's Taylor coefficients: P > 0, so are the row sums */
    for (int k = 1; k <= g; k++)
        I->c[k] = I->c[k - 1] / k;
    I->o.poly = I->c;
    I->o.poly_degree = g;
    size_t nd = (size_t)n * d;
    I->Q = malloc(sizeof(double) * nd * h);
    I->K = malloc(sizeof(double) * nd * h_kv);
    I->V = malloc(sizeof(double) * nd * h_kv);
    pr_rng_fill(I->Q, (long)(nd * h), 0.8, rng);
    pr_rng_fill(I->K, (long)(nd * h_kv), 0.8, rng);
    pr_rng_fill(I->V, (long)(nd * h_kv), 1.0, rng);
}

static void inst_clear(inst_t *I)
{
    pr_posw_clear(I->W);
    free(I->Q); free(I->K); free(I->V);
}

/* O from a plan made with $POLYROPE_FAST_KERNEL = kernel (NULL: unset), kept or streamed; *avx2
 * the plan's kernel */
static void run(double *O, int *avx2, const inst_t *I, const char *kernel, int streamed)
{
    const char *kept_env = getenv("POLYROPE_FAST_KERNEL");
    char *saved = kept_env ? strdup(kept_env) : NULL;
    PR_CHECK((kernel ? setenv("POLYROPE_FAST_KERNEL", kernel, 1) : unsetenv("POLYROPE_FAST_KERNEL")) == 0, "setenv");
    pr_fast_plan_t F;
    size_t budget = (size_t)1 << 30;
    if (streamed)
        budget = pr_fast_plan_bytes_heads(I->n, I->d, I->W->s, I->o.poly_degree, pr_expand_ndistinct(I->W->a, I->W->s),
                                          pr_expand_ndistinct(I->W->b, I->W->s), -1, I->h, 1);
    int st = pr_fast_plan_heads(F, I->W, &I->o, I->h, budget, 1000000, PR_FAST_ESTIMATE);
    PR_CHECK(st == PR_OK, "plan: %s", pr_strerror(st));
    PR_CHECK((saved ? setenv("POLYROPE_FAST_KERNEL", saved, 1) : unsetenv("POLYROPE_FAST_KERNEL")) == 0, "restore");
    free(saved);
    if (st)
        return;
    PR_CHECK(F->streamed == streamed, "streamed %d, asked %d", F->streamed, streamed);
    *avx2 = F->avx2;
    PR_CHECK_OK(pr_fast_execute_heads(O, F, I->h, I->h_kv, I->Q, I->K, I->V));
    pr_fast_destroy(F);
}

static void test_kernels(pr_rng_t rng)
{
    int saw_avx2 = 0;
    for (int trial = 0; trial < 24; trial++) {
        /* L = 2n (FFTW's even sizes) has n+1 frequencies: n mod 4 covers the loop's remainders */
        int n = 4 * (1 + (int)pr_rng_below(rng, 30)) + trial % 4, d = 2 * (1 + (int)pr_rng_below(rng, 2));
        int g = 1 + (int)pr_rng_below(rng, d == 2 ? 6 : 3), h_kv = 1 + (int)pr_rng_below(rng, 2);
        int h = h_kv * (1 + (int)pr_rng_below(rng, 4)), causal = (int)pr_rng_below(rng, 2);
        int streamed = trial % 3 == 2;
        inst_t I;
        inst_init(&I, rng, n, d, g, h, h_kv, causal);
        size_t len = (size_t)n * d * h;
        double *Oa = malloc(sizeof(double) * len), *Og = malloc(sizeof(double) * len);
        int avx2 = -1, gen = -1;
        run(Oa, &avx2, &I, NULL, streamed);
        run(Og, &gen, &I, "generic", streamed);
        saw_avx2 |= avx2 == 1;
        PR_CHECK(gen == 0, "trial %d: $POLYROPE_FAST_KERNEL=generic left the plan's kernel at %d", trial, gen);
        PR_CHECK(!memcmp(Oa, Og, sizeof(double) * len), "trial %d: n=%d d=%d g=%d h=%d h_kv=%d causal=%d streamed=%d: "
                 "the AVX2 kernel (%d) and the portable one differ", trial, n, d, g, h, h_kv, causal, streamed, avx2);
        free(Oa); free(Og);
        inst_clear(&I);
    }
    if (!saw_avx2)
        printf("test_fast_kernel: no AVX2 and FMA on this CPU: the portable kernel against itself\n");
}

static void test_threads(pr_rng_t rng)
{
    for (int trial = 0; trial < 8; trial++) {
        int n = 20 + (int)pr_rng_below(rng, 200), h_kv = 1 + (int)pr_rng_below(rng, 2);
        int h = h_kv * (1 + (int)pr_rng_below(rng, 3)), g = 2 + (int)pr_rng_below(rng, 5);
        int nthr = 2 + (int)pr_rng_below(rng, 3);
        inst_t I;
        inst_init(&I, rng, n, 2, g, h, h_kv, trial % 2);
        size_t len = (size_t)n * 2 * h;
        double *O = malloc(sizeof(double) * len), *O1 = malloc(sizeof(double) * len);
        int keep = omp_get_max_threads(), levels = omp_get_max_active_levels();
        omp_set_num_threads(nthr);
        pr_fast_plan_t F;
        PR_CHECK_OK(pr_fast_plan_heads(F, I.W, &I.o, h, (size_t)1 << 30, 1000000, PR_FAST_ESTIMATE));
        omp_set_num_threads(keep);
        PR_CHECK_OK(pr_fast_execute_heads(O, F, h, h_kv, I.Q, I.K, I.V));
        /* inside an active parallel region, nested regions are inactive: one thread executes */
        omp_set_max_active_levels(1);
        int st = PR_OK, team = 0;
#pragma omp parallel num_threads(2)
#pragma omp single
        {
            st = pr_fast_execute_heads(O1, F, h, h_kv, I.Q, I.K, I.V);
#pragma omp parallel
            team = omp_get_num_threads();
        }
        omp_set_max_active_levels(levels);
        PR_CHECK(st == PR_OK && team == 1, "trial %d: nested execute: %s, team %d", trial, pr_strerror(st), team);
        PR_CHECK(F->nthreads > 1 && !memcmp(O, O1, sizeof(double) * len), "trial %d: n=%d g=%d h=%d h_kv=%d: "
                 "%d planned threads and one executing thread differ", trial, n, g, h, h_kv, F->nthreads);
        pr_fast_destroy(F);
        free(O); free(O1);
        inst_clear(&I);
    }
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_fast_kernel", 20261128));
    test_kernels(rng);
    test_threads(rng);
    return pr_test_finish("test_fast_kernel");
}
