/* The general-W forward with many heads on one plan (issue 16): h heads in one execute are h
 * one-head executes on the slices bit for bit (same thread count), grouped-query heads read K, V
 * head i / (h / h_kv) and share the inverse transforms (counted: one per a-marginal, kv head and
 * column), kept pair spectra = streamed ones bit for bit, the plan's bytes are its dry run (less
 * for fewer kv heads), the pair tables and accessors agree, and bad head counts are refused. */
#include <math.h>
#include <string.h>
#include <omp.h>
#include "polyrope.h"
#include "pr_test.h"

static int make_w(pr_posw_t W, int kind, int n, int d, pr_rng_t rng)
{
    switch (kind) {
    case 0: return pr_posw_init_rope(W, n, d, 10000.0, PR_ROPE_INTERLEAVED);
    case 1: return pr_posw_init_general(W, n, d, rng);
    default: {
        /* s random entries (a, b), repeats allowed in a and in b (uneven groups), in [-1, 1] */
        int s = 1 + (int)pr_rng_below(rng, (uint64_t)d + 2), st = pr_posw_init(W, n, d, s);
        for (int k = 0; k < s && !st; k++) {
            W->a[k] = (int)pr_rng_below(rng, (uint64_t)d);
            W->b[k] = (int)pr_rng_below(rng, (uint64_t)d);
            pr_rng_fill(pr_posw_seq(W, k), 2L * n - 1, 1.0, rng);
        }
        return st;
    }
    }
}

static const char *kind_names[] = {"rope", "general", "custom"};

/* a Taylor polynomial of exp of degree g, its coefficients positive (P > 0: the row sums are) */
static void taylor(double *c, int g)
{
    c[0] = 1.0;
    for (int k = 1; k <= g; k++)
        c[k] = c[k - 1] / k;
}

static void test_heads(pr_rng_t rng)
{
    for (int trial = 0; trial < 60; trial++) {
        int kind = trial % 3, causal = (trial / 3) % 2, d = 1 + (int)pr_rng_below(rng, 4);
        if (kind < 2)   /* RoPE and general W take an even d */
            d = 2 * (1 + (int)pr_rng_below(rng, 2));
        int n = 1 + (int)pr_rng_below(rng, 40), g = 1 + (int)pr_rng_below(rng, d >= 3 ? 3 : 6);
        if (trial >= 48) {   /* over 3 × 2048 frequencies: several of mac_freqs' blocks per thread */
            n = 8200 + (int)pr_rng_below(rng, 2000);
            g = 1 + (int)pr_rng_below(rng, 2);
        }
        int h_kv = 1 + (int)pr_rng_below(rng, 3), h = h_kv * (1 + (int)pr_rng_below(rng, 3));
        int planned = h + (int)pr_rng_below(rng, 2), nthr = 1 + (int)pr_rng_below(rng, 3);
        if (trial >= 51) {   /* Llama-style grouping: 8 Q heads over 1, 2 or 4 kv heads, 1 to 3 threads */
            h = planned = 8;
            h_kv = 1 << (trial % 3);
            nthr = 1 + (trial - 51) / 3;
        }
        /* kv heads planned: as executed, one more, or (kv_planned = planned) any grouping */
        int kv_planned = h_kv + (int)pr_rng_below(rng, 2);
        kv_planned = pr_rng_below(rng, 3) == 0 || kv_planned > planned ? planned : kv_planned;
        char what[240];
        snprintf(what, sizeof what, "trial %d: %s n=%d d=%d g=%d causal=%d h=%d h_kv=%d planned=%d kv_planned=%d "
                 "threads=%d", trial, kind_names[kind], n, d, g, causal, h, h_kv, planned, kv_planned, nthr);
        pr_posw_t W;
        PR_CHECK_OK(make_w(W, kind, n, d, rng));
        pr_attn_opts_t o;
        pr_attn_opts_default(&o, d);
        o.causal = causal;
        double c[8];
        taylor(c, g);
        o.poly = c;
        o.poly_degree = g;
        size_t nd = (size_t)n * d;
        double *Q = malloc(sizeof(double) * nd * h), *K = malloc(sizeof(double) * nd * h_kv),
               *V = malloc(sizeof(double) * nd * h_kv), *O = malloc(sizeof(double) * nd * h),
               *Os = malloc(sizeof(double) * nd * h), *O1 = malloc(sizeof(double) * nd),
               *D = malloc(sizeof(double) * n * h), *D1 = malloc(sizeof(double) * n);
        pr_rng_fill(Q, (long)(nd * h), 0.8, rng);
        pr_rng_fill(K, (long)(nd * h_kv), 0.8, rng);
        pr_rng_fill(V, (long)(nd * h_kv), 1.0, rng);
        int keep = omp_get_max_threads();
        omp_set_num_threads(nthr);
        pr_fast_plan_t F, Fs, F1;
        PR_CHECK_OK(pr_fast_plan_gqa(F, W, &o, planned, kv_planned, (size_t)1 << 30, 1000000, PR_FAST_ESTIMATE));
        const pr_expand_struct *T = F->terms;
        size_t stream = pr_fast_plan_bytes_gqa(n, d, W->s, g, T->da, T->db, T->npairs_fwd, planned, kv_planned, 1);
        PR_CHECK_OK(pr_fast_plan_gqa(Fs, W, &o, planned, kv_planned, stream, 1000000, PR_FAST_ESTIMATE));
        PR_CHECK_OK(pr_fast_plan(F1, W, &o, (size_t)1 << 30, 1000000, PR_FAST_ESTIMATE));
        /* the dry runs count the scratch of omp_get_max_threads() threads, as the plans did */
        size_t kept = pr_fast_plan_bytes_gqa(n, d, W->s, g, T->da, T->db, T->npairs_fwd, planned, kv_planned, 0),
               bound = pr_fast_plan_bytes_gqa(n, d, W->s, g, T->da, T->db, -1, planned, kv_planned, 0),
               mha = pr_fast_plan_bytes_heads(n, d, W->s, g, T->da, T->db, T->npairs_fwd, planned, 0);
        omp_set_num_threads(keep);
        PR_CHECK(!F->streamed && Fs->streamed && F->heads == planned && F->kv_heads == kv_planned,
                 "%s: streamed %d %d", what, F->streamed, Fs->streamed);
        /* the dry run is the allocation, heads included; fewer kv heads hold less (x̂ and sums) */
        PR_CHECK(F->bytes == kept && Fs->bytes == stream && F->bytes <= bound, "%s: bytes %zu, %zu vs dry runs %zu, "
                 "%zu (bound %zu)", what, F->bytes, Fs->bytes, kept, stream, bound);
        PR_CHECK(kv_planned == planned ? kept == mha : kept < mha, "%s: %zu bytes for %d kv heads, %zu for %d",
                 what, kept, kv_planned, mha, planned);
        PR_CHECK(T->nterms_fwd == (long)pr_expand_binom(W->s, g) && T->nterms == (long)pr_expand_binom(W->s, g + 1),
                 "%s: the plan's expansion is built to degree g+1: %ld %ld", what, T->nterms_fwd, T->nterms);
        PR_CHECK_OK(pr_fast_execute_heads(O, F, h, h_kv, Q, K, V));
        PR_CHECK(F->exec_heads == h, "%s: exec_heads %d", what, F->exec_heads);
        pr_fast_rowsums(D, F);
        /* transforms per kv head, not per Q head: (d+1) per b-marginal (forward) and per a-marginal
         * (inverse); a streamed plan also transforms every pair's symbol once */
        long xf = T->bm->count_fwd * h_kv * (d + 1), inv = T->am->count_fwd * h_kv * (d + 1);
        PR_CHECK(F->fwd_transforms == xf && F->inv_transforms == inv, "%s: %ld forward, %ld inverse transforms, "
                 "expected %ld, %ld", what, F->fwd_transforms, F->inv_transforms, xf, inv);
        PR_CHECK_OK(pr_fast_execute_heads(Os, Fs, h, h_kv, Q, K, V));
        PR_CHECK(!memcmp(O, Os, sizeof(double) * nd * h), "%s: kept != streamed", what);
        /* the products by frequency blocks, per kv head in the inverse phase, or each group's sums
         * made there for every kv head (x̂ within 4 MiB): the same bits */
        double xbytes = 8.0 * (double)pr_toeplitz_spec_len(F->tp) * T->bm->count_fwd * h_kv * (d + 1);
        PR_CHECK(F->products_fused == (xbytes <= 4 << 20), "%s: products fused %d with x̂ of %g bytes", what,
                 F->products_fused, xbytes);
        int fused = F->products_fused;
        F->products_blocked = 1;
        PR_CHECK_OK(pr_fast_execute_heads(Os, F, h, h_kv, Q, K, V));
        PR_CHECK(!F->products_fused && !memcmp(O, Os, sizeof(double) * nd * h), "%s: products by blocks != %s", what,
                 fused ? "fused" : "by blocks before");
        F->products_blocked = 0;
        PR_CHECK(Fs->fwd_transforms == xf + T->npairs_fwd && Fs->inv_transforms == inv, "%s: streamed: %ld forward, "
                 "%ld inverse transforms", what, Fs->fwd_transforms, Fs->inv_transforms);
        /* head i alone on its slices, K and V from head i / (h / h_kv): the same bits */
        for (int i = 0; i < h; i++) {
            int kv = i / (h / h_kv);
            PR_CHECK_OK(pr_fast_execute(O1, F1, Q + i * nd, K + kv * nd, V + kv * nd));
            pr_fast_rowsums(D1, F1);
            PR_CHECK(!memcmp(O1, O + i * nd, sizeof(double) * nd) && !memcmp(D1, D + (size_t)i * n, sizeof(double) * n),
                     "%s: head %d (kv head %d) differs from its one-head execute", what, i, kv);
        }
        /* the pair accessor: kept plans only, forward pairs only */
        for (long p = 0; p < T->npairs_fwd; p++)
            PR_CHECK(pr_fast_plan_pair_spectrum(F, p) == F->spec + (size_t)p * pr_toeplitz_spec_len(F->tp) &&
                     pr_fast_plan_pair_spectrum(Fs, p) == NULL, "%s: pair %ld accessor", what, p);
        PR_CHECK(pr_fast_plan_pair_spectrum(F, T->npairs_fwd) == NULL && pr_fast_plan_pair_spectrum(F, -1) == NULL,
                 "%s: pair accessor out of range", what);
        /* refusals: more heads than planned, kv heads that do not divide the heads */
        PR_CHECK(pr_fast_execute_heads(O, F, planned + 1, 1, Q, K, V) == PR_EINVAL &&
                 pr_fast_execute_heads(O, F, 0, 1, Q, K, V) == PR_EINVAL &&
                 pr_fast_execute_heads(O, F, h, 0, Q, K, V) == PR_EINVAL &&
                 (h < 2 || pr_fast_execute_heads(O, F, h, h + 1, Q, K, V) == PR_EINVAL) &&
                 (h != 3 || pr_fast_execute_heads(O, F, 3, 2, Q, K, V) == PR_EINVAL) &&
                 (kv_planned == planned || pr_fast_execute_heads(O, F, kv_planned + 1, kv_planned + 1, Q, K, V)
                                           == PR_EINVAL) &&
                 pr_fast_execute_heads(O, F1, 2, 1, Q, K, V) == PR_EINVAL, "%s: bad head counts accepted", what);
        Q[nd * h - 1] = NAN;
        PR_CHECK(pr_fast_execute_heads(O, F, h, h_kv, Q, K, V) == PR_ENONFINITE, "%s: NaN in the last head", what);
        pr_fast_destroy(F);
        pr_fast_destroy(Fs);
        pr_fast_destroy(F1);
        pr_posw_clear(W);
        free(Q); free(K); free(V); free(O); free(Os); free(O1); free(D); free(D1);
    }
    /* a plan for no head */
    pr_posw_t W;
    PR_CHECK_OK(pr_posw_init_general(W, 8, 2, rng));
    pr_attn_opts_t o;
    pr_attn_opts_default(&o, 2);
    double c[4];
    taylor(c, 3);
    o.poly = c;
    o.poly_degree = 3;
    pr_fast_plan_t F;
    PR_CHECK(pr_fast_plan_heads(F, W, &o, 0, (size_t)1 << 30, 1000000, 0) == PR_EINVAL, "0 heads planned");
    PR_CHECK(pr_fast_plan_gqa(F, W, &o, 2, 0, (size_t)1 << 30, 1000000, 0) == PR_EINVAL &&
             pr_fast_plan_gqa(F, W, &o, 2, 3, (size_t)1 << 30, 1000000, 0) == PR_EINVAL, "kv heads 0 or > heads planned");
    pr_posw_clear(W);
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_fast_heads", 20261128));
    test_heads(rng);
    return pr_test_finish("test_fast_heads");
}
