/* The general-W fast backward with many heads on one plan (issue 16): h heads in one execute
 * give each Q head's dQ bit for bit as a one-head execute on its slices (same plan, same thread
 * count), and with h_kv = h also dK, dV, κ; grouped-query kv heads get the sums of their Q
 * heads' dK, dV, κ, and dw (W is shared) the sum over all heads, within the rounding bound of
 * G3 (pr_backward_g3_tol, once per summand); a plan borrowing the forward's
 * expansion and pair spectra agrees with one on its own expansion and with the dense backward
 * on the same P within that bound (claim G3); the plan's bytes are its dry run; bad head counts
 * are refused; a plan under a budget too small for what it keeps (dw's parents' symbol sums,
 * then the size-(g+1) pair spectra) gives the same bits, with that many more transforms; an
 * (h, h_kv) execute runs the transforms of an (h_kv, h_kv) one. By turns P is e^{rx}'s Taylor part
 * (r in [1/2, 1]), or that with its odd coefficients zeroed (pairs of a size with c_m = 0 take
 * no forward spectrum, and dQ/dK's or dV's products vanish by parity), and the borrowed forward
 * plan keeps its pair spectra or streams them (every pair then summed here). */
#include <float.h>
#include <math.h>
#include <string.h>
#include <omp.h>
#include "polyrope.h"
#include "proofs-check/checks.h"
#include "pr_test.h"

#define U DBL_EPSILON

static const char *posname[] = {"rope", "general", "identity"};

static int make_w(pr_posw_t W, int pos, int n, int d, pr_rng_t rng)
{
    if (pos == 0)
        return pr_posw_init_rope(W, n, d, 10000.0, PR_ROPE_INTERLEAVED);
    if (pos == 1)
        return pr_posw_init_general(W, n, d, rng);
    return pr_posw_init_identity(W, n, d);
}

/* Σ|c_k| R^k */
static double poly_abs(const double *c, int g, double R)
{
    double s = 0.0, x = 1.0;
    for (int k = 0; k <= g; k++, x *= R)
        s += fabs(c[k]) * x;
    return s;
}

typedef struct {
    int n, d, h, hkv, g;
    size_t nd, L;
    double *Q, *K, *V, *dO, *O, *lse;     /* h or hkv heads */
    double *dQ, *dK, *dV, *dw, *kap, *kw; /* the heads execute */
    double *sQ, *sK, *sV, *sw, *skap, *skw; /* one-head executes: per head, kv sums, dw sum */
    double *tol[4];                        /* dQ's per Q head; dK's, dV's (and κ's: the same scale) per
                                              kv head, and dw's and κ^w's: twice the sum of the
                                              summands' pr_backward_g3_tol */
} inst_t;

static void inst_alloc(inst_t *I)
{
    size_t nd = I->nd, h = (size_t)I->h, k = (size_t)I->hkv, n = (size_t)I->n;
    double **bufs[] = {&I->Q, &I->dO, &I->O, &I->dQ, &I->sQ};
    for (int b = 0; b < 5; b++)
        *bufs[b] = calloc(h * nd, sizeof(double));
    double **kb[] = {&I->K, &I->V, &I->dK, &I->dV, &I->sK, &I->sV};
    for (int b = 0; b < 6; b++)
        *kb[b] = calloc(k * nd, sizeof(double));
    I->lse = calloc(h * n, sizeof(double));
    I->kap = calloc(k * n, sizeof(double));
    I->skap = calloc(k * n, sizeof(double));
    I->dw = calloc(4 * (size_t)I->d * I->d * I->L, sizeof(double));
    I->sw = calloc(4 * (size_t)I->d * I->d * I->L, sizeof(double));
    I->kw = calloc(I->L, sizeof(double));
    I->skw = calloc(I->L, sizeof(double));
    for (int t = 0; t < 4; t++)
        I->tol[t] = calloc(t == 3 ? 2 : (t == 0 ? h : k), sizeof(double));
}

static void inst_free(inst_t *I)
{
    double *b[] = {I->Q, I->K, I->V, I->dO, I->O, I->lse, I->dQ, I->dK, I->dV, I->dw, I->kap, I->kw,
                   I->sQ, I->sK, I->sV, I->sw, I->skap, I->skw, I->tol[0], I->tol[1], I->tol[2], I->tol[3]};
    for (size_t k = 0; k < sizeof b / sizeof b[0]; k++)
        free(b[k]);
}

static int same_bits(const double *a, const double *b, size_t m)
{
    return !memcmp(a, b, sizeof(double) * m);
}

/* max |a - b| - tol, entrywise: > 0 means out of tolerance */
static double excess(const double *a, const double *b, size_t m, double tol)
{
    return pr_vec_max_abs_diff(a, b, m) - tol;
}

static long edomain_runs;   /* trials whose crafted forward failed after remaking x̂ */

static void test_heads(pr_rng_t rng)
{
    int nthr0 = omp_get_max_threads();
    /* 36 random trials, then h = 8 on h_kv = 1, 2, 4 kv heads on 1, 2, 3 threads (grouped-query
     * models run 4-8 Q heads per kv head) */
    for (int trial = 0; trial < 45; trial++) {
        inst_t I = {0};
        int pos = trial % 3, causal = (trial / 3) % 2, borrow = (trial / 6) % 2;
        int zodd = (trial / 12) % 3 == 1, streamed = borrow && (trial / 12) % 3 == 2;
        I.d = pos == 1 ? 2 : 2 * (1 + (int)pr_rng_below(rng, 2));
        I.n = 1 + (int)pr_rng_below(rng, 24);
        I.g = 1 + (int)pr_rng_below(rng, I.d == 2 ? 4 : 2);
        I.hkv = 1 + (int)pr_rng_below(rng, 3);
        I.h = I.hkv * (1 + (int)pr_rng_below(rng, 3));
        int nthr = 1 + trial % 3;
        if (trial >= 36) {
            I.hkv = 1 << ((trial - 36) % 3);
            I.h = 8;
            nthr = 1 + (trial - 36) / 3;
        }
        int planned = I.h + (int)pr_rng_below(rng, 2), n = I.n, d = I.d;
        I.nd = (size_t)n * d;
        I.L = 2 * (size_t)n - 1;
        char what[240];
        snprintf(what, sizeof what, "trial %d: %s n=%d d=%d g=%d causal=%d h=%d h_kv=%d planned=%d "
                 "threads=%d borrow=%d streamed=%d zero_odd=%d", trial, posname[pos], n, d, I.g, causal, I.h, I.hkv,
                 planned, nthr, borrow, streamed, zodd);
        pr_posw_t W;
        PR_CHECK_OK(make_w(W, pos, n, d, rng));
        pr_attn_opts_t o;
        pr_attn_opts_default(&o, d);
        o.causal = causal;
        /* e^{rx}'s Taylor part, r in [1/2, 1]: dQ's factor c_{m-1}/(m c_m) = 1/r, not 1 */
        double c[8] = {1.0}, r = 0.5 + 0.5 * pr_rng_uniform(rng);
        for (int k = 1; k <= I.g; k++)
            c[k] = c[k - 1] * r / k;
        for (int k = 1; k <= I.g && zodd; k += 2)
            c[k] = 0.0;     /* cosh's Taylor part: P ≥ 1, row sums stay positive */
        o.poly = c;
        o.poly_degree = I.g;
        inst_alloc(&I);
        size_t nd = I.nd, L = I.L, sL = (size_t)W->s * L;
        pr_rng_fill(I.Q, (long)(I.h * nd), 1.0, rng);
        pr_rng_fill(I.K, (long)(I.hkv * nd), 1.0, rng);
        pr_rng_fill(I.V, (long)(I.hkv * nd), 1.0, rng);
        pr_rng_fill(I.dO, (long)(I.h * nd), 1.0, rng);
        /* O and lse of the same P per head (the dense forward on P) */
        for (int hq = 0; hq < I.h; hq++)
            PR_CHECK_OK(pr_dense_forward(I.O + hq * nd, I.lse + (size_t)hq * n, I.Q + hq * nd,
                                         I.K + pr_attn_kv_head(hq, I.h, I.hkv) * nd,
                                         I.V + pr_attn_kv_head(hq, I.h, I.hkv) * nd, W, n, d, &o));
        omp_set_num_threads(nthr);
        pr_fast_plan_t F;
        memset(F, 0, sizeof F);
        if (borrow) {
            /* streamed: a budget one byte short of the kept plan */
            PR_CHECK_OK(pr_fast_plan_heads(F, W, &o, planned, (size_t)1 << 30, 1000000, PR_FAST_ESTIMATE));
            if (streamed) {
                size_t kept = F->bytes;
                pr_fast_destroy(F);
                PR_CHECK_OK(pr_fast_plan_heads(F, W, &o, planned, kept - 1, 1000000, PR_FAST_ESTIMATE));
            }
            PR_CHECK(F->streamed == streamed, "%s: the forward plan %s", what, streamed ? "kept" : "streamed");
        }
        pr_backward_plan *p = NULL;
        PR_CHECK_OK(pr_backward_plan_heads(&p, borrow ? F : NULL, W, &o, planned, 1, 0));
        omp_set_num_threads(nthr0);
        if (!p) {
            inst_free(&I);
            pr_posw_clear(W);
            continue;
        }
        /* the plan holds what its dry run counts (on a forward plan: the expansion is F's) */
        if (borrow) {
            double bytes, ops;
            omp_set_num_threads(nthr);
            pr_backward_needs_heads(&bytes, &ops, W, n, d, I.g, planned, 0);
            omp_set_num_threads(nthr0);
            pr_backward_info_t info;
            pr_backward_info(&info, p);
            PR_CHECK(info.bytes == bytes, "%s: pr_backward_needs_heads %.0f bytes, the plan holds %.0f", what,
                     bytes, info.bytes);
        }
        PR_CHECK_OK(pr_backward_execute_heads(p, I.dQ, I.dK, I.dV, I.dw, I.kap, I.Q, I.K, I.V, I.O, I.lse,
                                              I.dO, I.h, I.hkv));
        memcpy(I.kw, pr_backward_kappa_w(p), sizeof(double) * L);
        /* the products' scalar path (POLYROPE_BACKWARD_KERNEL=generic) gives the AVX2 path's bits */
        {
            size_t tot = (I.h + 2 * I.hkv) * nd + sL + I.hkv * (size_t)n;
            double *gq = malloc(sizeof(double) * tot), *gk = gq + I.h * nd, *gv = gk + I.hkv * nd;
            double *gw = gv + I.hkv * nd, *gkap = gw + sL;
            const char *kern = getenv("POLYROPE_BACKWARD_KERNEL");
            char *kept = kern ? strdup(kern) : NULL;
            PR_CHECK(setenv("POLYROPE_BACKWARD_KERNEL", "generic", 1) == 0, "setenv");
            PR_CHECK_OK(pr_backward_execute_heads(p, gq, gk, gv, gw, gkap, I.Q, I.K, I.V, I.O, I.lse, I.dO, I.h,
                                                  I.hkv));
            PR_CHECK((kept ? setenv("POLYROPE_BACKWARD_KERNEL", kept, 1) : unsetenv("POLYROPE_BACKWARD_KERNEL")) == 0,
                     "restoring POLYROPE_BACKWARD_KERNEL");
            PR_CHECK(same_bits(gq, I.dQ, I.h * nd) && same_bits(gk, I.dK, I.hkv * nd) &&
                     same_bits(gv, I.dV, I.hkv * nd) && same_bits(gw, I.dw, sL) &&
                     same_bits(gkap, I.kap, I.hkv * (size_t)n) && same_bits(pr_backward_kappa_w(p), I.kw, L),
                     "%s: the scalar products differ from the vector ones", what);
            free(kept);
            free(gq);
        }
        /* A kept forward plan's K, V half (x̂, the sums' scaled inverses) is the backward's Ŷ and dQ's
         * sums of the sizes <= g: as F's last execute left it when that ran on the same K, V, else
         * made on F by F's code (pr_fast_execute_kv, recorded): the same bits either way, and the
         * same bits as a forward execute leaves, (#ν + #μ of sizes <= g)(d+1)h_kv transforms more
         * when made (kv_transforms). A K or V differing in one bit, another kv head count, or a
         * forward execute that failed after it remade x̂: made again. A streamed F: none of it. */
        if (borrow) {
            size_t tot = (3 * I.h + 4 * I.hkv) * nd + sL + I.hkv * (size_t)n;
            double *rq = malloc(sizeof(double) * tot), *rk = rq + I.h * nd, *rv = rk + I.hkv * nd;
            double *rw = rv + I.hkv * nd, *rkap = rw + sL, *Of = rkap + I.hkv * (size_t)n;
            double *nq = Of + I.h * nd, *nk = nq + I.h * nd, *nv = nk + I.hkv * nd;
            long made = streamed ? 0 : (F->terms->bm->count_fwd + F->terms->am->count_fwd) * (d + 1) * I.hkv;
            size_t sl = pr_toeplitz_spec_len(F->tp), ny = (size_t)F->terms->am->count_fwd * I.hkv * (d + 1);
            double *ys = malloc(sizeof(double) * (ny * (size_t)n + 1));
            pr_backward_info_t i1, n0, n1;
            /* the record moved to other K (the first execute above made the half for I.K) */
            double *K2 = malloc(sizeof(double) * I.hkv * nd);
            memcpy(K2, I.K, sizeof(double) * I.hkv * nd);
            K2[0] = K2[0] / 2 + 0.25;
            omp_set_num_threads(nthr);
            PR_CHECK_OK(pr_fast_execute_heads(Of, F, I.h, I.hkv, I.Q, K2, I.V));
            omp_set_num_threads(nthr0);
            PR_CHECK(pr_fast_plan_xhat(F, I.hkv, I.K, I.V) == NULL && pr_fast_plan_ysum(F, I.hkv, I.K, I.V) == NULL &&
                     pr_fast_plan_xhat(F, I.hkv, K2, I.V) == (streamed ? NULL : F->xhat) &&
                     pr_fast_plan_ysum(F, I.hkv, K2, I.V) == (streamed ? NULL : F->sums),
                     "%s: the record after an execute on another K", what);
            /* no dw, no κ: the half made here, its products by frequency blocks (the path of x̂ over
             * 4 MiB), and the forward's below in the inverse phase where x̂ is smaller: the same bits */
            F->products_blocked = 1;
            PR_CHECK_OK(pr_backward_execute_heads(p, nq, nk, nv, NULL, NULL, I.Q, I.K, I.V, I.O, I.lse, I.dO, I.h,
                                                  I.hkv));
            F->products_blocked = 0;
            PR_CHECK(streamed || !F->products_fused, "%s: the half not made by frequency blocks", what);
            pr_backward_info(&n0, p);
            PR_CHECK(n0.kv_transforms == made && !n0.forward_xhat &&
                     pr_fast_plan_xhat(F, I.hkv, I.K, I.V) == (streamed ? NULL : F->xhat),
                     "%s: the backward made %ld transforms of F's half (%ld expected), recorded %d", what,
                     n0.kv_transforms, made, pr_fast_plan_xhat(F, I.hkv, I.K, I.V) != NULL);
            for (size_t k = 0; k < ny && !streamed; k++)
                memcpy(ys + k * n, F->sums + k * sl, sizeof(double) * n);
            /* the forward's execute on I.K leaves the half the backward made, bit for bit */
            omp_set_num_threads(nthr);
            PR_CHECK_OK(pr_fast_execute_heads(Of, F, I.h, I.hkv, I.Q, I.K, I.V));
            omp_set_num_threads(nthr0);
            int same_y = 1;
            for (size_t k = 0; k < ny && !streamed; k++)
                same_y &= same_bits(ys + k * n, F->sums + k * sl, (size_t)n);
            PR_CHECK(same_y && pr_fast_plan_ysum(F, I.hkv, I.K, I.V) == (streamed ? NULL : F->sums),
                     "%s: the sums' inverses the backward made are not the forward's", what);
            PR_CHECK_OK(pr_backward_execute_heads(p, rq, rk, rv, rw, rkap, I.Q, I.K, I.V, I.O, I.lse, I.dO, I.h,
                                                  I.hkv));
            pr_backward_info(&i1, p);
            PR_CHECK(i1.forward_xhat == !streamed && i1.kv_transforms == 0, "%s: forward_xhat %d, %ld made", what,
                     i1.forward_xhat, i1.kv_transforms);
            PR_CHECK(same_bits(rq, I.dQ, I.h * nd) && same_bits(rk, I.dK, I.hkv * nd) &&
                     same_bits(rv, I.dV, I.hkv * nd) && same_bits(rw, I.dw, sL) &&
                     same_bits(rkap, I.kap, I.hkv * (size_t)n) && same_bits(pr_backward_kappa_w(p), I.kw, L),
                     "%s: with the forward's half taken: other bits", what);
            /* dQ reads the forward's inverses (size 1 at least: c_0, c_1 != 0 unless the odd
             * coefficients are zero, which zeroes every factor c_{m-1}/(m c_m) there): doubled, dQ moves */
            if (!streamed) {
                double *tq = malloc(sizeof(double) * (I.h + 2 * I.hkv) * nd), *tk = tq + I.h * nd;
                for (size_t k = 0; k < ny; k++)
                    for (int i = 0; i < n; i++)
                        F->sums[k * sl + i] *= 2.0;
                PR_CHECK_OK(pr_backward_execute_heads(p, tq, tk, tk + I.hkv * nd, NULL, NULL, I.Q, I.K, I.V, I.O, I.lse,
                                                      I.dO, I.h, I.hkv));
                PR_CHECK(same_bits(tq, I.dQ, I.h * nd) == zodd && same_bits(tk, I.dK, I.hkv * nd),
                         "%s: dQ %s the forward's doubled inverses", what, zodd ? "moved with" : "did not read");
                free(tq);
                omp_set_num_threads(nthr);
                PR_CHECK_OK(pr_fast_execute_heads(Of, F, I.h, I.hkv, I.Q, I.K, I.V));
                omp_set_num_threads(nthr0);
            }
            PR_CHECK_OK(pr_backward_execute_heads(p, rq, rk, rv, NULL, NULL, I.Q, I.K, I.V, I.O, I.lse, I.dO, I.h,
                                                  I.hkv));
            pr_backward_info(&n1, p);
            PR_CHECK(same_bits(rq, nq, I.h * nd) && same_bits(rk, nk, I.hkv * nd) && same_bits(rv, nv, I.hkv * nd) &&
                     n0.transforms - n1.transforms == made, "%s: without dw and κ, the forward's half taken: other "
                     "bits, or %ld transforms where making it took %ld", what, n1.transforms, n0.transforms);
            double keep = I.K[nd * I.hkv - 1];
            I.K[nd * I.hkv - 1] = nextafter(keep, INFINITY);
            int sees_k = pr_fast_plan_xhat(F, I.hkv, I.K, I.V) != NULL;
            I.K[nd * I.hkv - 1] = keep;
            keep = I.V[0];
            I.V[0] = -keep;
            int sees_v = keep != 0.0 && pr_fast_plan_xhat(F, I.hkv, I.K, I.V) != NULL;
            I.V[0] = keep;
            PR_CHECK(!sees_k && !sees_v && (I.hkv == 1 || !pr_fast_plan_xhat(F, 1, I.K, I.V)),
                     "%s: the half offered for other K (%d), V (%d) or kv heads", what, sees_k, sees_v);
            long m1;
            PR_CHECK(pr_fast_execute_kv(&m1, F, I.hkv, I.K, I.V) == (streamed ? PR_EINVAL : PR_OK) && m1 == 0,
                     "%s: pr_fast_execute_kv on the recorded K, V", what);
            /* a refused execute leaves the record as it was */
            keep = I.Q[0];
            I.Q[0] = NAN;
            PR_CHECK(pr_fast_execute_heads(Of, F, I.h, I.hkv, I.Q, I.K, I.V) == PR_ENONFINITE &&
                     pr_fast_plan_xhat(F, I.hkv, I.K, I.V) == (streamed ? NULL : F->xhat),
                     "%s: the half lost by a refused execute", what);
            I.Q[0] = keep;
            keep = I.V[0];
            I.V[0] = INFINITY;
            PR_CHECK(pr_fast_execute_kv(&m1, F, I.hkv, I.K, I.V) == (streamed ? PR_EINVAL : PR_ENONFINITE) && m1 == 0,
                     "%s: pr_fast_execute_kv on a non-finite V", what);
            I.V[0] = keep;
            PR_CHECK(pr_fast_plan_xhat(F, I.hkv, I.K, I.V) == (streamed ? NULL : F->xhat),
                     "%s: the half lost by a refused pr_fast_execute_kv", what);
            /* an execute that fails once x̂ is remade from K2 (causal row 0 sees only key 0: with
             * q_0 = -1000 k_0 under RoPE or the identity an odd P makes its row sum negative) leaves
             * no record, neither of K nor of K2 */
            omp_set_num_threads(nthr);
            memcpy(nq, I.Q, sizeof(double) * I.h * nd);
            for (int hq = 0; hq < I.h; hq++)
                for (int c2 = 0; c2 < d; c2++)
                    nq[hq * nd + c2] = -1000.0 * K2[pr_attn_kv_head(hq, I.h, I.hkv) * nd + c2];
            int fst = pr_fast_execute_heads(Of, F, I.h, I.hkv, nq, K2, I.V);
            omp_set_num_threads(nthr0);
            PR_CHECK(fst == PR_OK || fst == PR_EDOMAIN, "%s: forward on the crafted Q: status %d", what, fst);
            if (fst == PR_EDOMAIN) {
                edomain_runs++;
                PR_CHECK(pr_fast_plan_xhat(F, I.hkv, I.K, I.V) == NULL && pr_fast_plan_xhat(F, I.hkv, K2, I.V) == NULL,
                         "%s: x̂ offered after a forward that failed (PR_EDOMAIN) once x̂ was remade", what);
            }
            free(K2);
            /* made again (the later checks compare with this execute's counts) */
            PR_CHECK_OK(pr_backward_execute_heads(p, rq, rk, rv, rw, rkap, I.Q, I.K, I.V, I.O, I.lse, I.dO, I.h,
                                                  I.hkv));
            pr_backward_info(&i1, p);
            PR_CHECK(same_bits(rq, I.dQ, I.h * nd) && same_bits(rw, I.dw, sL) && i1.kv_transforms == made &&
                     !i1.forward_xhat, "%s: the half made again after the forward moved on", what);
            free(ys);
            free(rq);
        }
        /* a budget one byte short of the plan: dw's parents' symbol sums, then also the size-(g+1)
         * pair spectra, are made per execute instead of at plan time, by the same routines: the
         * same bits */
        pr_backward_info_t full, il;
        pr_backward_info(&full, p);
        il = full;
        for (int level = 1; level >= 0; level--) {
            double above = il.bytes;
            pr_backward_plan *pl = NULL;
            omp_set_num_threads(nthr);
            PR_CHECK_OK(pr_backward_plan_heads(&pl, borrow ? F : NULL, W, &o, planned, 1, above - 1));
            omp_set_num_threads(nthr0);
            pr_backward_info(&il, pl);
            size_t tot = (I.h + 2 * I.hkv) * nd + sL + I.hkv * (size_t)n;
            double *lq = malloc(sizeof(double) * tot), *lk = lq + I.h * nd, *lv = lk + I.hkv * nd;
            double *lw = lv + I.hkv * nd, *lkap = lw + sL;
            PR_CHECK_OK(pr_backward_execute_heads(pl, lq, lk, lv, lw, lkap, I.Q, I.K, I.V, I.O, I.lse, I.dO, I.h,
                                                  I.hkv));
            pr_backward_info(&il, pl);
            long more = level ? 0 : full.kept_spectra;
            PR_CHECK(full.kept_spectra > 0 && full.kept_symbols > 0 && il.kept_symbols == 0 &&
                     (il.kept_spectra > 0) == level &&
                     il.transforms - il.kv_transforms == full.transforms - full.kv_transforms + more,
                     "%s: level %d: kept %ld, %ld, lean plan kept %ld, %ld; transforms %ld, lean %ld", what, level,
                     full.kept_spectra, full.kept_symbols, il.kept_spectra, il.kept_symbols, full.transforms,
                     il.transforms);
            PR_CHECK(same_bits(lq, I.dQ, I.h * nd) && same_bits(lk, I.dK, I.hkv * nd) &&
                     same_bits(lv, I.dV, I.hkv * nd) && same_bits(lw, I.dw, sL) &&
                     same_bits(lkap, I.kap, I.hkv * (size_t)n) && same_bits(pr_backward_kappa_w(pl), I.kw, L),
                     "%s: the plan of level %d differs", what, level);
            free(lq);
            pr_backward_destroy(pl);
        }
        /* a Q head adds no transform of its own: the (h, h_kv) execute runs those of (h_kv, h_kv) */
        {
            pr_backward_info_t ih, ik;
            pr_backward_info(&ih, p);
            double *sc = malloc(sizeof(double) * (3 * I.hkv * nd + sL + I.hkv * (size_t)n));
            PR_CHECK_OK(pr_backward_execute_heads(p, sc, sc + I.hkv * nd, sc + 2 * I.hkv * nd, sc + 3 * I.hkv * nd,
                                                  sc + 3 * I.hkv * nd + sL, I.Q, I.K, I.V, I.O, I.lse, I.dO, I.hkv,
                                                  I.hkv));
            pr_backward_info(&ik, p);
            PR_CHECK(ih.transforms - ih.kv_transforms == ik.transforms - ik.kv_transforms,
                     "%s: %ld transforms for h=%d, %ld for h=h_kv=%d", what, ih.transforms, I.h, ik.transforms, I.hkv);
            free(sc);
        }
        /* one-head executes on the slices of the same plan */
        double *g1 = malloc(sizeof(double) * (3 * nd + sL + 2 * (size_t)n + L));
        double *q1 = g1, *k1 = g1 + nd, *v1 = g1 + 2 * nd, *w1 = g1 + 3 * nd, *kp1 = w1 + sL;
        double scale[4];
        for (int hq = 0; hq < I.h; hq++) {
            int kv = (int)pr_attn_kv_head(hq, I.h, I.hkv);
            const double *Qh = I.Q + hq * nd, *Kh = I.K + kv * nd, *Vh = I.V + kv * nd;
            PR_CHECK_OK(pr_backward_execute_heads(p, q1, k1, v1, w1, kp1, Qh, Kh, Vh, I.O + hq * nd,
                                                  I.lse + (size_t)hq * n, I.dO + hq * nd, 1, 1));
            PR_CHECK(same_bits(q1, I.dQ + hq * nd, nd), "%s: head %d's dQ is not the one-head execute's", what, hq);
            if (I.h == I.hkv)
                PR_CHECK(same_bits(k1, I.dK + kv * nd, nd) && same_bits(v1, I.dV + kv * nd, nd) &&
                         same_bits(kp1, I.kap + (size_t)kv * n, n),
                         "%s: head %d's dK, dV, kappa are not the one-head execute's", what, hq);
            memcpy(I.sQ + hq * nd, q1, sizeof(double) * nd);
            for (size_t k = 0; k < nd; k++) {
                I.sK[kv * nd + k] += k1[k];
                I.sV[kv * nd + k] += v1[k];
            }
            for (int j = 0; j < n; j++)
                I.skap[(size_t)kv * n + j] += kp1[j];
            for (size_t k = 0; k < sL; k++)
                I.sw[k] += w1[k];
            for (size_t k = 0; k < L; k++)
                I.skw[k] += pr_backward_kappa_w(p)[k];
            /* each summand's G3 bound, for the sums' (each side errs by at most the sum of them) */
            double R = o.sigma * pr_vec_max_abs(Qh, nd) * pr_vec_max_abs(Kh, nd) * pr_posw_max_rowsum(W);
            pr_check_g3_scales(scale, poly_abs(c, I.g, R), o.sigma, Qh, Kh, Vh, I.dO + hq * nd,
                               I.lse + (size_t)hq * n, W, n, d);
            pr_backward_info_t info;
            pr_backward_info(&info, p);
            I.tol[0][hq] = pr_backward_g3_tol(scale[0], n, info.terms, 0.0);
            I.tol[1][kv] += 2 * pr_backward_g3_tol(scale[1], n, info.terms, 0.0);
            I.tol[2][kv] += 2 * pr_backward_g3_tol(scale[2], n, info.terms, 0.0);
            I.tol[3][0] += 2 * pr_backward_g3_tol(scale[3], n, info.terms, 0.0);
            I.tol[3][1] += 2 * pr_backward_g3_tol(scale[2], n, info.terms, 0.0);
        }
        for (int kv = 0; kv < I.hkv; kv++) {
            PR_CHECK(excess(I.dK + kv * nd, I.sK + kv * nd, nd, I.tol[1][kv]) <= 0 &&
                     excess(I.dV + kv * nd, I.sV + kv * nd, nd, I.tol[2][kv]) <= 0,
                     "%s: kv head %d's dK, dV are not the sums of its Q heads' (tol %.3g, %.3g)", what, kv,
                     I.tol[1][kv], I.tol[2][kv]);
            /* κ_j = Σ_i ‖dO_i‖₁ P̃_ij has dV's scale (n P_abs(R) ν / D_min) */
            PR_CHECK(excess(I.kap + (size_t)kv * n, I.skap + (size_t)kv * n, n, I.tol[2][kv]) <= 0,
                     "%s: kv head %d's kappa is not the sum of its Q heads'", what, kv);
        }
        PR_CHECK(excess(I.dw, I.sw, sL, I.tol[3][0]) <= 0, "%s: dw is not the sum over heads (err %.3g tol %.3g)",
                 what, pr_vec_max_abs_diff(I.dw, I.sw, sL), I.tol[3][0]);
        PR_CHECK(excess(I.kw, I.skw, L, I.tol[3][1]) <= 0, "%s: kappa_w is not the sum over heads",
                 what);
        /* against the dense backward on the same P, head by head (G3): dQ per head, and dw summed
         * over the heads (each summand within its G3 tolerance: the sum within theirs) */
        o.poly = c;
        memset(I.sw, 0, sizeof(double) * sL);
        for (int hq = 0; hq < I.h; hq++) {
            int kv = (int)pr_attn_kv_head(hq, I.h, I.hkv);
            PR_CHECK_OK(pr_dense_backward(q1, k1, v1, w1, I.Q + hq * nd, I.K + kv * nd, I.V + kv * nd, W,
                                          I.O + hq * nd, I.lse + (size_t)hq * n, I.dO + hq * nd, n, d, &o));
            double err = pr_vec_max_abs_diff(q1, I.dQ + hq * nd, nd);
            PR_CHECK(err <= I.tol[0][hq], "%s: head %d's dQ against the dense backward: err %.3g tol %.3g", what,
                     hq, err, I.tol[0][hq]);
            for (size_t k = 0; k < sL; k++)
                I.sw[k] += w1[k];
        }
        PR_CHECK(excess(I.dw, I.sw, sL, I.tol[3][0]) <= 0, "%s: dw against the dense backward's sum over heads "
                 "(err %.3g tol %.3g)", what, pr_vec_max_abs_diff(I.dw, I.sw, sL), I.tol[3][0]);
        /* the other source of the pairs' spectra: a plan on its own expansion (time-domain pair
         * sums) against the one borrowing F (F's plan-time pair spectra), or the reverse */
        if (borrow) {
            pr_backward_plan *p2 = NULL;
            PR_CHECK_OK(pr_backward_plan_heads(&p2, NULL, W, &o, I.h, 1, 0));
            double *dQ2 = malloc(sizeof(double) * I.h * nd), *dK2 = malloc(sizeof(double) * I.hkv * nd);
            double *dV2 = malloc(sizeof(double) * I.hkv * nd), *dw2 = malloc(sizeof(double) * sL);
            PR_CHECK_OK(pr_backward_execute_heads(p2, dQ2, dK2, dV2, dw2, NULL, I.Q, I.K, I.V, I.O, I.lse, I.dO,
                                                  I.h, I.hkv));
            for (int hq = 0; hq < I.h; hq++)
                PR_CHECK(excess(dQ2 + hq * nd, I.dQ + hq * nd, nd, 2 * I.tol[0][hq]) <= 0,
                         "%s: head %d's dQ, own expansion against F's", what, hq);
            for (int kv = 0; kv < I.hkv; kv++)
                PR_CHECK(excess(dK2 + kv * nd, I.dK + kv * nd, nd, I.tol[1][kv]) <= 0 &&
                         excess(dV2 + kv * nd, I.dV + kv * nd, nd, I.tol[2][kv]) <= 0,
                         "%s: kv head %d's dK, dV, own expansion against F's", what, kv);
            PR_CHECK(excess(dw2, I.dw, sL, I.tol[3][0]) <= 0, "%s: dw, own expansion against F's", what);
            pr_backward_info_t i1, i2;
            pr_backward_info(&i1, p);
            pr_backward_info(&i2, p2);
            PR_CHECK(i2.reused_spectra == 0 && (F->streamed ? i1.reused_spectra == 0 : i1.reused_spectra > 0) &&
                     i1.terms == i2.terms &&
                     i1.ab_pairs == i2.ab_pairs, "%s: reused pairs %ld (own plan %ld), terms %ld/%ld", what,
                     i1.reused_spectra, i2.reused_spectra, i1.terms, i2.terms);
            free(dQ2); free(dK2); free(dV2); free(dw2);
            pr_backward_destroy(p2);
        }
        /* a kept forward plan of one head under a backward of h_kv > 1 kv heads: F's spectra serve,
         * its K, V half cannot (it holds one kv head), and the backward makes its own, within G3 */
        if (borrow && !streamed && I.hkv > 1) {
            pr_fast_plan_t F1;
            pr_backward_plan *p1 = NULL;
            omp_set_num_threads(nthr);
            PR_CHECK_OK(pr_fast_plan(F1, W, &o, (size_t)1 << 30, 1000000, PR_FAST_ESTIMATE));
            PR_CHECK_OK(pr_backward_plan_heads(&p1, F1, W, &o, planned, 1, 0));
            omp_set_num_threads(nthr0);
            double *dQ1 = malloc(sizeof(double) * (I.h + 2 * I.hkv) * nd + sizeof(double) * sL);
            double *dK1 = dQ1 + I.h * nd, *dV1 = dK1 + I.hkv * nd, *dw1 = dV1 + I.hkv * nd;
            PR_CHECK_OK(pr_backward_execute_heads(p1, dQ1, dK1, dV1, dw1, NULL, I.Q, I.K, I.V, I.O, I.lse, I.dO, I.h,
                                                  I.hkv));
            pr_backward_info_t if1;
            pr_backward_info(&if1, p1);
            PR_CHECK(!F1->streamed && if1.reused_spectra > 0 && if1.kv_transforms == 0 && !if1.forward_xhat &&
                     pr_fast_plan_xhat(F1, 1, I.K, I.V) == NULL,
                     "%s: one-head F under %d kv heads: reused %ld, made on F %ld", what, I.hkv, if1.reused_spectra,
                     if1.kv_transforms);
            for (int hq = 0; hq < I.h; hq++)
                PR_CHECK(excess(dQ1 + hq * nd, I.dQ + hq * nd, nd, 2 * I.tol[0][hq]) <= 0,
                         "%s: head %d's dQ on a one-head F against F's half", what, hq);
            PR_CHECK(excess(dw1, I.dw, sL, I.tol[3][0]) <= 0, "%s: dw on a one-head F", what);
            free(dQ1);
            pr_backward_destroy(p1);
            pr_fast_destroy(F1);
        }
        /* refusals: more heads than planned, h_kv not dividing h, no heads */
        PR_CHECK(pr_backward_execute_heads(p, I.dQ, I.dK, I.dV, NULL, NULL, I.Q, I.K, I.V, I.O, I.lse, I.dO,
                                           planned + 1, 1) == PR_EINVAL, "%s: h > planned accepted", what);
        if (I.h >= 2)
            PR_CHECK(pr_backward_execute_heads(p, I.dQ, I.dK, I.dV, NULL, NULL, I.Q, I.K, I.V, I.O, I.lse, I.dO,
                                               I.h, I.h + 1) == PR_EINVAL, "%s: h_kv > h accepted", what);
        if (I.h == 3 || I.h == 4)
            PR_CHECK(pr_backward_execute_heads(p, I.dQ, I.dK, I.dV, NULL, NULL, I.Q, I.K, I.V, I.O, I.lse, I.dO,
                                               I.h, I.h == 3 ? 2 : 3) == PR_EINVAL,
                     "%s: h_kv not dividing h accepted", what);
        PR_CHECK(pr_backward_execute_heads(p, I.dQ, I.dK, I.dV, NULL, NULL, I.Q, I.K, I.V, I.O, I.lse, I.dO,
                                           0, 1) == PR_EINVAL, "%s: h = 0 accepted", what);
        pr_backward_plan *p0 = NULL;
        PR_CHECK(pr_backward_plan_heads(&p0, NULL, W, &o, 0, 1, 0) == PR_EINVAL && !p0, "%s: 0 heads planned", what);
        free(g1);
        pr_backward_destroy(p);
        if (borrow)
            pr_fast_destroy(F);
        inst_free(&I);
        pr_posw_clear(W);
    }
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_backward_heads", 20261128));
    test_heads(rng);
    PR_CHECK(edomain_runs > 0, "no trial's forward failed after remaking x̂: that case went untested");
    printf("test_backward_heads: %ld forwards failed after remaking x̂, none left a record\n", edomain_runs);
    return pr_test_finish("test_backward_heads");
}
