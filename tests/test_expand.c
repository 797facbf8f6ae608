/* pr_expand (issue 14): the one expansion, against independent oracles. Exhaustive over small
 * supports and degrees: every multiset of S of size <= g (resp. g+1) appears exactly once
 * (odometer over all exponent vectors), counts C(s+g, g) and C(s+g+1, g+1) (claim C3), the
 * forward's terms are exactly the prefix of the extended enumeration, groups and marginals agree
 * with the multiplicities, multinomials against integer factorials, α and α̂ by the multinomial
 * theorem, and the byte counts of the dry run equal the allocations. */
#include <math.h>
#include <float.h>
#include <stdint.h>
#include <string.h>
#include "polyrope.h"
#include "pr_test.h"

enum { SMAX = 6, GMAX = 5 };

/* exact C(n, k) by Pascal's triangle (n <= 62) */
static uint64_t pascal(int n, int k)
{
    static uint64_t T[64][64];
    if (!T[0][0])
        for (int i = 0; i < 64; i++)
            for (int j = 0; j <= i; j++)
                T[i][j] = j == 0 || j == i ? 1 : T[i - 1][j - 1] + T[i - 1][j];
    return k < 0 || k > n ? 0 : T[n][k];
}

/* |e|! / Π e_k! with 64-bit integers (|e| <= 20) */
static uint64_t multinomial_int(const unsigned char *e, int s)
{
    uint64_t r = 1;
    int tot = 0;
    for (int k = 0; k < s; k++) {
        tot += e[k];
        r *= pascal(tot, e[k]);
    }
    return r;
}

/* index of e in the odometer over {0..top}^s */
static long code(const unsigned char *e, int s, int top)
{
    long c = 0;
    for (int k = s - 1; k >= 0; k--)
        c = c * (top + 1) + e[k];
    return c;
}

static void test_binom(void)
{
    for (int m = 0; m <= 40; m++)
        for (int k = 0; k <= 20; k++)
            PR_CHECK(pr_expand_binom(m, k) == (double)pascal(m + k, k), "binom(%d, %d) = %g", m, k,
                     pr_expand_binom(m, k));
    PR_CHECK(pr_expand_binom(-1, 0) == 1.0 && pr_expand_binom(-1, 3) == 0.0 && pr_expand_binom(4, -1) == 0.0,
             "binom edges");
    /* the one overflow rule: +Inf once past 2^62 (C(200, 100) ≈ 9e58) */
    PR_CHECK(isinf(pr_expand_binom(100, 100)), "binom(100, 100) = %g", pr_expand_binom(100, 100));
    PR_CHECK(pr_expand_binom(61, 1) == 62.0, "binom(61, 1)");
}

/* marginals of D values to degree g (+1): counts, size classes, parents, find, prefix */
static void check_marg(const pr_expand_marg_t M, const pr_expand_marg_t F, int D, int g, int top)
{
    PR_CHECK(M->count == (long)pascal(D + top, top) && M->count_fwd == (long)pascal(D + g, g),
             "marg D=%d g=%d top=%d count %ld/%ld", D, g, top, M->count, M->count_fwd);
    PR_CHECK(M->bytes == pr_expand_marg_bytes(D, g, top - g), "marg bytes %g vs %g D=%d g=%d", M->bytes,
             pr_expand_marg_bytes(D, g, top - g), D, g);
    for (int k = 0; k <= top; k++)
        PR_CHECK(M->size_start[k + 1] - M->size_start[k] == (long)pascal(D + k - 1, k),
                 "marg size %d class %ld D=%d", k, M->size_start[k + 1] - M->size_start[k], D);
    for (long m = 0; m < M->count; m++) {
        const unsigned char *c = M->cnt + (size_t)m * D;
        int sz = 0;
        for (int v = 0; v < D; v++)
            sz += c[v];
        PR_CHECK(sz == M->deg[m] && m >= M->size_start[sz] && m < M->size_start[sz + 1], "marg %ld size", m);
        PR_CHECK(pr_expand_marg_find(M, c) == m, "marg %ld find D=%d g=%d", m, D, g);
        if (m == 0)
            continue;
        unsigned char p[SMAX + 1];
        memcpy(p, M->cnt + (size_t)M->parent[m] * D, D);
        p[M->last[m]]++;
        int largest = D - 1;
        while (!c[largest])
            largest--;
        PR_CHECK(M->parent[m] < m && !memcmp(p, c, D) && M->last[m] == largest, "marg %ld parent", m);
        /* the forward's enumeration is the prefix */
        if (m < F->count)
            PR_CHECK(!memcmp(c, F->cnt + (size_t)m * D, D) && F->parent[m] == M->parent[m], "marg %ld prefix", m);
    }
}

static void check_terms(const pr_expand_t E, const pr_expand_t F, const int *a, const int *b, int s,
                        int g, const char *what)
{
    int top = E->top;
    long nodo = 1;
    for (int k = 0; k < s; k++)
        nodo *= top + 1;
    unsigned char *seen = calloc(nodo, 1);
    PR_CHECK(E->nterms == (long)pascal(s + top, top) && E->nterms_fwd == (long)pascal(s + g, g),
             "%s: C3 counts %ld %ld", what, E->nterms, E->nterms_fwd);
    PR_CHECK(E->bytes == pr_expand_bytes(s, E->da, E->db, g, top - g), "%s: bytes %g vs %g", what, E->bytes,
             pr_expand_bytes(s, E->da, E->db, g, top - g));
    long pairs = 0;
    for (long m = 0; m < E->am->count; m++) {
        PR_CHECK(E->gpair[m] == pairs, "%s: group %ld's first pair %ld vs %ld", what, m, E->gpair[m], pairs);
        PR_CHECK(m != E->am->count_fwd || E->npairs_fwd == pairs, "%s: forward pairs %ld vs %ld", what,
                 E->npairs_fwd, pairs);
        for (long t = E->gstart[m]; t < E->gstart[m + 1]; t++) {
            const unsigned char *e = E->e + (size_t)t * s;
            unsigned char am[SMAX] = {0}, bm[SMAX] = {0};
            int deg = 0;
            for (int k = 0; k < s; k++) {
                deg += e[k];
                PR_CHECK(E->aval[E->arow[k]] == a[k] && E->bval[E->bcol[k]] == b[k], "%s: arow/bcol", what);
                am[E->arow[k]] += e[k];
                bm[E->bcol[k]] += e[k];
            }
            long c = code(e, s, top);
            PR_CHECK(deg <= top && !seen[c], "%s: term %ld deg %d repeated %d", what, t, deg, seen[c]);
            seen[c] = 1;
            PR_CHECK((t < E->nterms_fwd) == (deg <= g) && E->deg[t] == deg, "%s: term %ld (deg %d) on the wrong side",
                     what, t, deg);
            PR_CHECK(!memcmp(am, E->am->cnt + (size_t)m * E->da, E->da), "%s: term %ld a-marginal", what, t);
            PR_CHECK(!memcmp(bm, E->bm->cnt + (size_t)E->bmi[t] * E->db, E->db), "%s: term %ld b-marginal", what, t);
            PR_CHECK(t == E->gstart[m] || E->bmi[t] >= E->bmi[t - 1], "%s: term %ld not sorted by ν", what, t);
            if (t == E->gstart[m] || E->bmi[t] != E->bmi[t - 1]) {
                PR_CHECK(E->pstart[pairs] == t, "%s: pair %ld starts at %ld, not %ld", what, pairs, E->pstart[pairs], t);
                pairs++;
            }
            PR_CHECK(E->mult[t] == (double)multinomial_int(e, s), "%s: term %ld multinomial %g", what, t, E->mult[t]);
            if (t < F->nterms)
                PR_CHECK(!memcmp(e, F->e + (size_t)t * s, s) && F->bmi[t] == E->bmi[t] && F->mult[t] == E->mult[t],
                         "%s: term %ld differs from the forward's", what, t);
        }
    }
    PR_CHECK(pairs == E->npairs && E->pstart[pairs] == E->nterms && E->gpair[E->am->count] == pairs
             && (E->top > g || E->npairs_fwd == pairs), "%s: pairs %ld vs %ld", what, pairs, E->npairs);
    for (long p = 0; p < F->npairs_fwd; p++)
        PR_CHECK(F->pstart[p] == E->pstart[p], "%s: forward pair %ld differs", what, p);
    PR_CHECK(F->npairs_fwd == E->npairs_fwd, "%s: forward pairs %ld vs %ld", what, F->npairs_fwd, E->npairs_fwd);
    long cnt = 0;
    for (long c = 0; c < nodo; c++)
        cnt += seen[c];
    PR_CHECK(cnt == E->nterms, "%s: %ld distinct of %ld", what, cnt, E->nterms);
    for (long m = 0; m <= F->am->count; m++)
        PR_CHECK(F->gstart[m] == E->gstart[m], "%s: group %ld start", what, m);
    free(seen);
}

/* α and α̂ by the multinomial theorem: Σ_{|e|=k} α_e x^e = c_k σ^k (Σx)^k and
 * Σ_{|e|=k} α̂_e x^e = (c_{k-1}/k) σ^k (Σx)^k; and entry by entry against integer multinomials */
static void check_coefs(const pr_expand_t E, const double *c, double sigma, const double *x, const char *what)
{
    int s = E->s;
    double *al = malloc(sizeof(double) * E->nterms), *ah = malloc(sizeof(double) * E->nterms);
    double lhs[2][GMAX + 2] = {{0}}, sx = 0.0, mag[GMAX + 2] = {0};
    pr_expand_coefs(al, E, PR_EXPAND_ALPHA, c, sigma);
    pr_expand_coefs(ah, E, PR_EXPAND_ALPHA_HAT, c, sigma);
    for (int k = 0; k < s; k++)
        sx += x[k];
    for (long t = 0; t < E->nterms; t++) {
        const unsigned char *e = E->e + (size_t)t * s;
        int deg = E->deg[t];
        double mono = 1.0, mi = (double)multinomial_int(e, s), sk = pow(sigma, deg);
        for (int k = 0; k < s; k++)
            mono *= pow(x[k], e[k]);
        double wa = deg <= E->g ? c[deg] * mi * sk : 0.0, wh = deg >= 1 ? c[deg - 1] / deg * mi * sk : 0.0;
        /* two (three) roundings apart at most: |x̃ - x| <= 4u|x| */
        PR_CHECK(fabs(al[t] - wa) <= 4 * DBL_EPSILON * fabs(wa) && fabs(ah[t] - wh) <= 4 * DBL_EPSILON * fabs(wh),
                 "%s: term %ld α %.17g vs %.17g, α̂ %.17g vs %.17g", what, t, al[t], wa, ah[t], wh);
        lhs[0][deg] += al[t] * mono;
        lhs[1][deg] += ah[t] * mono;
        mag[deg] += mi * pow(sigma, deg);
    }
    for (int k = 0; k <= E->top; k++) {
        double ra = k <= E->g ? c[k] * pow(sigma * sx, k) : 0.0, rh = k ? c[k - 1] / k * pow(sigma * sx, k) : 0.0;
        /* |x| <= 1, |c| <= 1: sums of at most C(s+k-1,k) terms each below mag; (terms + k + 4)u each */
        double tol = (pascal(s + k - 1, k) + k + 8.0) * DBL_EPSILON * (mag[k] + fabs(pow(sigma * sx, k)));
        PR_CHECK(fabs(lhs[0][k] - ra) <= tol && fabs(lhs[1][k] - rh) <= tol, "%s: k=%d α %g vs %g, α̂ %g vs %g",
                 what, k, lhs[0][k], ra, lhs[1][k], rh);
    }
    free(al);
    free(ah);
}

static void test_exhaustive(pr_rng_t rng)
{
    char what[160];
    for (int s = 1; s <= SMAX; s++)
        for (int g = 0; g <= GMAX; g++) {
            int a[SMAX], b[SMAX], d = 1 + (int)pr_rng_below(rng, 4);
            for (int k = 0; k < s; k++) {   /* repeated pairs allowed: the algebra does not need distinct ones */
                a[k] = (int)pr_rng_below(rng, d);
                b[k] = (int)pr_rng_below(rng, d);
            }
            snprintf(what, sizeof what, "s=%d g=%d a=%d%d%d%d%d%d b=%d%d%d%d%d%d", s, g, a[0], s > 1 ? a[1] : 0,
                     s > 2 ? a[2] : 0, s > 3 ? a[3] : 0, s > 4 ? a[4] : 0, s > 5 ? a[5] : 0, b[0], s > 1 ? b[1] : 0,
                     s > 2 ? b[2] : 0, s > 3 ? b[3] : 0, s > 4 ? b[4] : 0, s > 5 ? b[5] : 0);
            pr_expand_t F, E;
            PR_CHECK_OK(pr_expand_init(F, a, b, s, g, 0, 1000000));
            PR_CHECK_OK(pr_expand_init(E, a, b, s, g, 1, 1000000));
            check_terms(F, F, a, b, s, g, what);
            check_terms(E, F, a, b, s, g, what);
            check_marg(E->am, F->am, E->da, g, g + 1);
            check_marg(E->bm, F->bm, E->db, g, g + 1);
            double c[GMAX + 2], x[SMAX], sigma = pr_rng_range(rng, 0.1, 1.0);
            for (int k = 0; k <= g; k++)
                c[k] = pr_rng_range(rng, -1.0, 1.0);
            for (int k = 0; k < s; k++)
                x[k] = pr_rng_range(rng, -1.0, 1.0);
            check_coefs(E, c, sigma, x, what);
            pr_expand_clear(F);
            pr_expand_clear(E);
        }
    /* features (math.md §6): C(d+g, g) and, extended, C(d+g+1, g+1) (claim C12's counts) */
    for (int D = 1; D <= SMAX; D++)
        for (int g = 0; g <= GMAX; g++) {
            pr_expand_marg_t M, F;
            PR_CHECK_OK(pr_expand_marg_init(F, D, g, 0, 100000));
            PR_CHECK_OK(pr_expand_marg_init(M, D, g, 1, 100000));
            check_marg(F, F, D, g, g);
            check_marg(M, F, D, g, g + 1);
            /* φ's coefficients: Σ_{|m|=k} coef_m x^m = c_k σ^k (Σx)^k at x = 1: the multinomials sum to D^k */
            double c[GMAX + 2], *co = malloc(sizeof(double) * M->count), sum[GMAX + 2] = {0};
            for (int k = 0; k <= g; k++)
                c[k] = 1.0;
            pr_expand_marg_coefs(co, M, PR_EXPAND_ALPHA, c, 1.0);
            for (long m = 0; m < M->count; m++)
                sum[M->deg[m]] += co[m];
            for (int k = 0; k <= g + 1; k++)
                PR_CHECK(sum[k] == (k <= g ? pow(D, k) : 0.0), "features D=%d k=%d: %g", D, k, sum[k]);
            free(co);
            pr_expand_marg_clear(M);
            pr_expand_marg_clear(F);
        }
}

static void test_bad(void)
{
    int a[2] = {0, 1}, b[2] = {1, -1};
    pr_expand_t E;
    pr_expand_marg_t M;
    PR_CHECK(pr_expand_init(E, a, b, 2, 2, 0, 100) == PR_EINVAL, "negative b");
    PR_CHECK(pr_expand_init(E, a, a, 0, 2, 0, 100) == PR_EINVAL, "s = 0");
    PR_CHECK(pr_expand_init(E, a, a, 2, 255, 1, 1000000) == PR_EINVAL, "degree 256");
    PR_CHECK(pr_expand_init(E, a, a, 2, 3, 1, 9) == PR_EBUDGET, "C(6, 4) = 15 > 9 terms");
    PR_CHECK(pr_expand_init(E, a, a, 2, 3, 0, 10) == PR_OK && E->nterms == 10, "C(5, 3) = 10 terms");
    pr_expand_clear(E);
    PR_CHECK(pr_expand_marg_init(M, 0, 2, 0, 100) == PR_EINVAL, "D = 0");
    PR_CHECK(pr_expand_marg_init(M, 3, 2, 1, 19) == PR_EBUDGET, "C(6, 3) = 20 > 19");
    PR_CHECK(isinf(pr_expand_bytes(200, 100, 100, 100, 1)), "bytes past double");
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_expand", 14));
    test_binom();
    test_exhaustive(rng);
    test_bad();
    return pr_test_finish("test_expand");
}
