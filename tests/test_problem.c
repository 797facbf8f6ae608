/* pr_problem, the one generator (issue 14): its stream against the documented order drawn by
 * hand (Q, K, V, W, dO), the prefix property, its refusals; and one seed giving one instance in
 * proofs-check (pr_inst_init), polyrope attn (its O and R) and a sweep row (factorise's R and
 * max |M|). */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include "polyrope.h"
#include "proofs-check/check_impl.h"
#include "pr_test.h"
#include "pr_test_cli.h"

static const pr_pos_kind_t kinds[] = {PR_POS_ROPE, PR_POS_ROPE_NEOX, PR_POS_GENERAL, PR_POS_IDENTITY};

static int same(const double *x, const double *y, size_t len)
{
    return x && y && !memcmp(x, y, sizeof(double) * len);
}

static int same_w(const pr_posw_struct *A, const pr_posw_struct *B)
{
    size_t len = (size_t)A->s * (2 * (size_t)A->n - 1);
    return A->n == B->n && A->d == B->d && A->s == B->s && A->kind == B->kind &&
           !memcmp(A->a, B->a, sizeof(int) * A->s) && !memcmp(A->b, B->b, sizeof(int) * A->s) && same(A->w, B->w, len);
}

/* the documented stream, drawn by hand */
static void by_hand(double *Q, double *K, double *V, pr_posw_t W, double *dO, uint64_t seed, int n, int d, double B,
                    pr_pos_kind_t kind, double base)
{
    pr_rng_t r;
    pr_rng_init(r, seed);
    long nd = (long)n * d;
    pr_rng_fill(Q, nd, B, r);
    pr_rng_fill(K, nd, B, r);
    pr_rng_fill(V, nd, B, r);
    int st = kind == PR_POS_ROPE ? pr_posw_init_rope(W, n, d, base, PR_ROPE_INTERLEAVED)
           : kind == PR_POS_ROPE_NEOX ? pr_posw_init_rope(W, n, d, base, PR_ROPE_NEOX)
           : kind == PR_POS_GENERAL ? pr_posw_init_general(W, n, d, r) : pr_posw_init_identity(W, n, d);
    PR_CHECK_OK(st);
    pr_rng_fill(dO, nd, 1.0, r);
}

static void stream(pr_rng_t rng)
{
    for (int t = 0; t < 40; t++) {
        int n = 1 + (int)pr_rng_below(rng, 20), d = 2 * (1 + (int)pr_rng_below(rng, 4));
        double B = pr_rng_range(rng, 0.0, 3.0), base = t % 2 ? PR_ROPE_BASE_DEFAULT : pr_rng_range(rng, 2.0, 500.0);
        pr_pos_kind_t kind = kinds[t % 4];
        uint64_t seed = pr_rng_u64(rng);
        size_t nd = (size_t)n * d;
        double *Q = malloc(sizeof(double) * nd), *K = malloc(sizeof(double) * nd), *V = malloc(sizeof(double) * nd);
        double *dO = malloc(sizeof(double) * nd);
        pr_posw_t W;
        by_hand(Q, K, V, W, dO, seed, n, d, B, kind, base);
        pr_problem_t P, P0;
        pr_problem_init(P);
        pr_problem_init(P0);
        pr_rng_t r;
        pr_rng_init(r, seed);
        PR_CHECK_OK(pr_problem_generate(P, r, n, d, B, kind, base, PR_PROBLEM_DO));
        pr_rng_init(r, seed);
        PR_CHECK_OK(pr_problem_generate(P0, r, n, d, B, kind, base, 0));
        PR_CHECK(same(P->Q, Q, nd) && same(P->K, K, nd) && same(P->V, V, nd) && same_w(P->W, W) && same(P->dO, dO, nd),
                 "seed %llu n %d d %d B %.17g %s base %.17g: not the documented stream Q, K, V, W, dO",
                 (unsigned long long)seed, n, d, B, pr_pos_kind_name(kind), base);
        /* without dO: the same prefix, nothing more */
        PR_CHECK(same(P0->Q, Q, nd) && same(P0->K, K, nd) && same(P0->V, V, nd) && same_w(P0->W, W) && !P0->dO,
                 "seed %llu %s: without PR_PROBLEM_DO the prefix differs", (unsigned long long)seed,
                 pr_pos_kind_name(kind));
        PR_CHECK(P->opts.sigma == 1.0 / d && !P->opts.causal && !P->opts.beta && P->B == B && P->n == n && P->d == d,
                 "seed %llu: the default options and sizes", (unsigned long long)seed);
        /* ALiBi: the bias of pr_bias_alibi, in opts */
        double slope = pr_rng_range(rng, 0.0, 1.0);
        double *beta = malloc(sizeof(double) * (2 * (size_t)n - 1));
        PR_CHECK_OK(pr_bias_alibi(beta, n, slope));
        PR_CHECK_OK(pr_problem_alibi(P, slope));
        PR_CHECK(same(P->beta, beta, 2 * (size_t)n - 1) && P->opts.beta == P->beta, "alibi %.17g n %d", slope, n);
        PR_CHECK(pr_problem_alibi(P, -1.0) == PR_EINVAL && !P->opts.beta, "a negative slope");
        /* a generate over a used problem replaces it (ASan: nothing leaks) */
        pr_rng_init(r, seed);
        PR_CHECK_OK(pr_problem_generate(P, r, n, d, B, kind, base, 0));
        PR_CHECK(same(P->Q, Q, nd) && !P->dO && !P->beta, "seed %llu: regenerated", (unsigned long long)seed);
        /* custom: W left to the caller, dO straight after V */
        pr_rng_init(r, seed);
        PR_CHECK_OK(pr_problem_generate(P, r, n, d, B, PR_POS_CUSTOM, base, PR_PROBLEM_DO));
        PR_CHECK(P->W->s == 0 && !P->W->w && same(P->V, V, nd) && (kind == PR_POS_GENERAL || same(P->dO, dO, nd)),
                 "seed %llu custom", (unsigned long long)seed);
        pr_problem_clear(P);
        pr_problem_clear(P0);
        pr_posw_clear(W);
        free(Q); free(K); free(V); free(dO); free(beta);
    }
}

static void refusals(void)
{
    pr_problem_t P;
    pr_problem_init(P);
    pr_rng_t r;
    pr_rng_init(r, 1);
    struct {
        int n, d;
        double B;
        pr_pos_kind_t kind;
        int want;
    } bad[] = {
        {0, 2, 1.0, PR_POS_ROPE, PR_EINVAL},       {4, 0, 1.0, PR_POS_IDENTITY, PR_EINVAL},
        {4, 3, 1.0, PR_POS_ROPE, PR_EODD},         {4, 3, 1.0, PR_POS_GENERAL, PR_EODD},
        {4, 2, -1.0, PR_POS_ROPE, PR_EINVAL},      {4, 2, NAN, PR_POS_ROPE, PR_EINVAL},
        {4, 2, INFINITY, PR_POS_ROPE, PR_EINVAL},  {INT_MAX, INT_MAX, 1.0, PR_POS_IDENTITY, PR_ESIZE},
        {4, 2, 1.0, (pr_pos_kind_t)99, PR_EINVAL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int st = pr_problem_generate(P, r, bad[i].n, bad[i].d, bad[i].B, bad[i].kind, PR_ROPE_BASE_DEFAULT, PR_PROBLEM_DO);
        PR_CHECK(st == bad[i].want && !P->Q && !P->W->w, "n %d d %d B %g kind %d: status %d, want %d", bad[i].n, bad[i].d,
                 bad[i].B, (int)bad[i].kind, st, bad[i].want);
    }
    PR_CHECK(pr_problem_generate(P, r, 4, 2, 1.0, PR_POS_ROPE, 1.0, 0) == PR_EINVAL && !P->Q, "RoPE base 1");
    PR_CHECK(pr_problem_alibi(P, 0.5) == PR_EINVAL, "alibi on an empty problem");
    for (int k = 0; k < 4; k++) {
        pr_pos_kind_t got = PR_POS_CUSTOM;
        PR_CHECK(pr_problem_kind_parse(&got, pr_pos_kind_name(kinds[k])) == PR_OK && got == kinds[k], "parse %s",
                 pr_pos_kind_name(kinds[k]));
    }
    pr_pos_kind_t got;
    PR_CHECK(pr_problem_kind_parse(&got, "custom") == PR_EINVAL && pr_problem_kind_parse(&got, "") == PR_EINVAL &&
             pr_problem_kind_parse(&got, "Rope") == PR_EINVAL, "parse: only the four generated kinds");
    pr_problem_clear(P);
}

/* R = σ max|Q| max|K| max_ℓ Σ|w(ℓ)| and max |M_ij|, as attn and the factorise preset compute them */
static void r_and_m(double *R, double *maxm, const pr_problem_struct *P)
{
    int n = P->n, d = P->d;
    const pr_posw_struct *W = P->W;
    double sigma = 1.0 / d;
    *R = sigma * pr_vec_max_abs(P->Q, (size_t)n * d) * pr_vec_max_abs(P->K, (size_t)n * d) * pr_posw_max_rowsum(W);
    *maxm = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double m = 0;
            for (int k = 0; k < W->s; k++)
                m += P->Q[(size_t)i * d + W->a[k]] * pr_posw_at(W, k, i - j) * P->K[(size_t)j * d + W->b[k]];
            *maxm = fmax(*maxm, fabs(m * sigma));
        }
}

/* the number in column `col` of the first data row of a sweep CSV (NAN if absent) */
static double csv_value(const char *path, const char *col)
{
    static char buf[1 << 14];
    pr_test_slurp(buf, sizeof buf, path);
    char *hdr = strstr(buf, "\nidx,"), *row = hdr ? strchr(hdr + 1, '\n') : NULL;
    if (!row)
        return NAN;
    *row++ = 0;
    int k = 0;
    for (char *c = hdr + 1, *save = 0; (c = strtok_r(c, ",", &save)); c = NULL, k++)
        if (!strcmp(c, col))
            break;
    for (char *c = row; c; c = strchr(c, ','), c = c ? c + 1 : c)
        if (!k--)
            return strtod(c, NULL);
    return NAN;
}

/* one seed, one instance: proofs-check, attn and a sweep row */
static void everywhere(pr_rng_t rng)
{
    for (int t = 0; t < 4; t++) {
        int n = 5 + (int)pr_rng_below(rng, 20), d = 2 * (1 + (int)pr_rng_below(rng, 3));
        double B = 0.25 * (1 + (int)pr_rng_below(rng, 8));
        long seed = (long)pr_rng_below(rng, 1000000);
        pr_pos_kind_t kind = kinds[t];
        const char *pos = pr_pos_kind_name(kind);
        pr_problem_t P;
        pr_problem_init(P);
        pr_rng_t r;
        pr_rng_init(r, (uint64_t)seed);
        PR_CHECK_OK(pr_problem_generate(P, r, n, d, B, kind, PR_ROPE_BASE_DEFAULT, 0));
        size_t nd = (size_t)n * d;

        /* proofs-check: the instance of a trial whose stream is this seed's */
        pr_inst_t I;
        pr_rng_init(r, (uint64_t)seed);
        PR_CHECK_OK(pr_inst_init(&I, n, d, B, kind, PR_MASK_NONE, r));
        PR_CHECK(same(I.Q, P->Q, nd) && same(I.K, P->K, nd) && same(I.V, P->V, nd) && same_w(I.W, P->W),
                 "check instance: seed %ld n %d d %d B %g %s differs from pr_problem's", seed, n, d, B, pos);
        pr_inst_clear(&I);
        /* with ALiBi, its slope is drawn after W, uniform in [0, 0.5) */
        pr_rng_init(r, (uint64_t)seed);
        PR_CHECK_OK(pr_inst_init(&I, n, d, B, kind, PR_MASK_ALIBI, r));
        pr_problem_t A;
        pr_problem_init(A);
        pr_rng_init(r, (uint64_t)seed);
        PR_CHECK_OK(pr_problem_generate(A, r, n, d, B, kind, PR_ROPE_BASE_DEFAULT, 0));
        PR_CHECK_OK(pr_problem_alibi(A, pr_rng_range(r, 0.0, 0.5)));
        PR_CHECK(same(I.Q, A->Q, nd) && same_w(I.W, A->W) && same(I.opts.beta, A->beta, 2 * (size_t)n - 1),
                 "check instance with ALiBi: seed %ld n %d d %d B %g %s", seed, n, d, B, pos);
        pr_problem_clear(A);
        pr_inst_clear(&I);

        /* attn: its O is the dense forward of this problem, bit for bit; its R this R */
        char args[512];
        double R, maxm;
        r_and_m(&R, &maxm, P);
        snprintf(args, sizeof args, "attn --n %d --d %d --B %.17g --seed %ld --pos %s --json --out prob_attn", n, d, B,
                 seed, pos);
        int rc = pr_test_cli_run("problem", args);
        PR_CHECK(rc == 0 && pr_test_cli_json("R") == R, "polyrope %s: exit %d, R %.17g, want %.17g; %s", args, rc,
                 pr_test_cli_json("R"), R, pr_test_cli_err);
        double *O = malloc(sizeof(double) * nd), *o = 0;
        long shape[2] = {n, d};
        PR_CHECK_OK(pr_dense_forward(O, NULL, P->Q, P->K, P->V, P->W, n, d, &P->opts));
        PR_CHECK(!pr_npy_read_shape(&o, "prob_attn/o.npy", 2, shape) && same(o, O, nd),
                 "polyrope %s: o.npy is not the dense forward of pr_problem's instance", args);
        free(o);
        free(O);

        /* a sweep row (factorise): R and max |M|, printed to 10 digits */
        char grid[256];
        snprintf(grid, sizeof grid, "sweep factorise --grid 'n=%d;d=%d;B=%.17g;pos=%s;seed=%ld' --out prob_sweep.csv",
                 n, d, B, pos, seed);
        remove("prob_sweep.csv");
        rc = pr_test_cli_run("problem", grid);
        double cR = csv_value("prob_sweep.csv", "R"), cm = csv_value("prob_sweep.csv", "max_abs_M");
        /* %.10g: each printed value within half a unit of its 10th digit */
        PR_CHECK(rc == 0 && fabs(cR - R) <= 5e-10 * R && fabs(cm - maxm) <= 5e-10 * maxm,
                 "polyrope %s: exit %d, R %.17g max|M| %.17g, want %.17g %.17g; %s", grid, rc, cR, cm, R, maxm,
                 pr_test_cli_err);
        pr_problem_clear(P);
    }
}

int main(void)
{
    if (!getenv("POLYROPE")) {
        fprintf(stderr, "test_problem: set POLYROPE to the polyrope binary (meson test does)\n");
        return 1;
    }
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_problem", 20261128));
    stream(rng);
    refusals();
    everywhere(rng);
    return pr_test_finish("test_problem");
}
