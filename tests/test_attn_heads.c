/* polyrope attn with many heads (issue 16) through the built binary ($POLYROPE): a run on
 * (h, n, d) or (b, h, n, d) files equals h separate runs on the (n, d) slices bit for bit (same
 * threads) for dense, fft and lowrank, forward and backward, grouped-query dK, dV (and dw) being
 * the separate runs' summed in head order (bit for bit for dense and lowrank; the fft path sums
 * in its own order: within the two sums' bounds); --json's per-head keys; the outputs have the inputs'
 * shapes; bad head layouts are refused with one line (exit 2). The heads are row permutations of
 * one (Q, K, V): a permutation keeps every column's largest entry and row norm, so R and ‖V‖∞
 * (hence the degree and P the error control picks) are the same in the heads run and the
 * separate ones, and the outputs can be compared bit for bit. Seed: $PR_SEED. */
#include <math.h>
#include <string.h>
#include "polyrope.h"
#include "pr_test.h"
#include "pr_test_cli.h"

enum { N = 24, D = 4, HMAX = 8 };

static void bad(const char *args, const char *must)
{
    int rc = pr_test_cli_run("heads", args);
    PR_CHECK(rc == 2 && pr_test_lines(pr_test_cli_err) == 1 && strstr(pr_test_cli_err, must) && !pr_test_cli_out[0],
             "polyrope %s: exit %d, stderr '%s' (want exit 2, one line containing '%s')", args, rc, pr_test_cli_err,
             must);
}

static void save(const char *path, const double *x, int ndim, const long *shape)
{
    PR_CHECK_OK(pr_npy_write(path, x, ndim, shape));
}

/* count heads, each a random row permutation of base (n×d) */
static void permuted(double *x, const double *base, int count, pr_rng_t rng)
{
    int perm[N];
    for (int t = 0; t < count; t++) {
        for (int i = 0; i < N; i++)
            perm[i] = i;
        for (int i = N - 1; i > 0; i--) {
            int j = (int)pr_rng_below(rng, (uint64_t)i + 1), s = perm[i];
            perm[i] = perm[j];
            perm[j] = s;
        }
        for (int i = 0; i < N; i++)
            memcpy(x + ((size_t)t * N + i) * D, base + (size_t)perm[i] * D, sizeof(double) * D);
    }
}

/* the array `key` of the --json output: count numbers (NAN for null); 0 unless exactly count */
static int json_array(double *x, const char *key, int count)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": [", key);
    const char *p = strstr(pr_test_cli_out, pat);
    if (!p)
        return 0;
    p += strlen(pat);
    for (int k = 0; k < count; k++) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!strncmp(p, "null", 4)) {
            x[k] = NAN;
            p += 4;
        } else {
            char *e;
            x[k] = strtod(p, &e);
            if (e == p)
                return 0;
            p = e;
        }
    }
    return *p == ']';
}

static double *load(const char *path, int ndim, const long *shape)
{
    double *x = NULL;
    int st = pr_npy_read_shape(&x, path, ndim, shape);
    PR_CHECK(st == PR_OK, "%s: %s", path, pr_strerror(st));
    return x;
}

/* x (count) == y bit for bit */
static int same(const double *x, const double *y, size_t count)
{
    return x && y && !memcmp(x, y, sizeof(double) * count);
}

/* One layout (b, h, h_kv) and algorithm: the heads run against a separate run per query head. */
static void against_slices(int b, int h, int h_kv, const char *algo, const char *opts, int backward, int general,
                           pr_rng_t rng)
{
    int H = b * h, HK = b * h_kv, group = h / h_kv, rank = b > 1 ? 4 : 3;
    size_t nd = (size_t)N * D, L = 2 * N - 1, sw = L * D * D;
    double base[3][N * D], *Q = malloc(sizeof(double) * nd * H), *K = malloc(sizeof(double) * nd * HK);
    double *V = malloc(sizeof(double) * nd * HK), *dO = malloc(sizeof(double) * nd * H);
    for (int t = 0; t < 3; t++)
        for (size_t i = 0; i < nd; i++)
            base[t][i] = pr_rng_range(rng, -1.0, 1.0);
    permuted(Q, base[0], H, rng);
    permuted(K, base[1], HK, rng);
    permuted(V, base[2], HK, rng);
    for (size_t i = 0; i < nd * H; i++)
        dO[i] = pr_rng_range(rng, -1.0, 1.0);
    long qs[4] = {b, h, N, D}, ks[4] = {b, h_kv, N, D}, *q = qs + 4 - rank, *k = ks + 4 - rank;
    save("heads_q.npy", Q, rank, q);
    save("heads_k.npy", K, rank, k);
    save("heads_v.npy", V, rank, k);
    save("heads_do.npy", dO, rank, q);
    char what[160], args[1024], wopt[64] = "";
    snprintf(what, sizeof what, "b=%d h=%d h_kv=%d --algo %s %s%s%s", b, h, h_kv, algo, opts,
             backward ? " --backward" : "", general ? " --pos general" : "");
    if (general) {
        pr_posw_t W;
        PR_CHECK_OK(pr_posw_init_general(W, N, D, rng));
        double *w3 = malloc(sizeof(double) * sw);
        pr_posw_to_dense(w3, W);
        long s3[3] = {(long)L, D, D};
        save("heads_w.npy", w3, 3, s3);
        free(w3);
        pr_posw_clear(W);
        snprintf(wopt, sizeof wopt, "--w heads_w.npy");
    }
    snprintf(args, sizeof args, "attn --q heads_q.npy --k heads_k.npy --v heads_v.npy %s %s %s --algo %s %s --json "
             "--check --out heads_all", wopt, backward ? "--do heads_do.npy --backward" : "", opts, algo, "");
    int rc = pr_test_cli_run("heads", args);
    PR_CHECK(rc == 0, "%s: exit %d: %s", what, rc, pr_test_cli_err);
    double hb[HMAX], he[HMAX], tot = pr_test_cli_json("time_s"), per = pr_test_cli_json("time_per_head_s");
    double bound = pr_test_cli_json("bound"), err = pr_test_cli_json("err_inf");
    /* the summed gradients' bounds: this run's, and below the runs alone (dK, dV of one kv head,
     * dw of all heads) */
    double gbh[3] = {pr_test_cli_json("grad_bound_dk"), pr_test_cli_json("grad_bound_dv"),
                     pr_test_cli_json("grad_bound_dw")}, gbs[3][HMAX] = {{0}};
    PR_CHECK(pr_test_cli_json("batch") == b && pr_test_cli_json("heads") == h && pr_test_cli_json("kv_heads") == h_kv &&
             json_array(hb, "head_bound", H) && json_array(he, "head_err_inf", H) && per == tot / H,
             "%s: per-head keys: %s", what, pr_test_cli_out);
    double emax = 0.0, bmax = 0.0;
    for (int t = 0; t < H; t++) {
        emax = fmax(emax, he[t]);
        bmax = fmax(bmax, hb[t]);
    }
    int dense = !strcmp(algo, "dense");
    PR_CHECK(dense ? isnan(err) && isnan(he[0]) && isnan(bound) && isnan(hb[0])
                   : emax == err && bmax == bound && err <= bound,
             "%s: err_inf %g vs the heads' largest %g, bound %g vs %g", what, err, emax, bound, bmax);
    double *O = load("heads_all/o.npy", rank, q), *dQ = NULL, *dK = NULL, *dV = NULL, *dw = NULL;
    long s3[3] = {(long)L, D, D};
    if (backward) {
        dQ = load("heads_all/dq.npy", rank, q);
        dK = load("heads_all/dk.npy", rank, k);
        dV = load("heads_all/dv.npy", rank, k);
        if (general)
            dw = load("heads_all/dw.npy", 3, s3);
    }
    /* each query head alone, its kv head's slices; the parts of dK, dV, dw summed in head order */
    double *sK = calloc(nd * HK, sizeof(double)), *sV = calloc(nd * HK, sizeof(double)), *sw3 = calloc(sw, 8);
    long s2[2] = {N, D};
    for (int t = 0; t < H; t++) {
        int kv = t / group;
        save("heads_q1.npy", Q + t * nd, 2, s2);
        save("heads_k1.npy", K + kv * nd, 2, s2);
        save("heads_v1.npy", V + kv * nd, 2, s2);
        save("heads_do1.npy", dO + t * nd, 2, s2);
        snprintf(args, sizeof args, "attn --q heads_q1.npy --k heads_k1.npy --v heads_v1.npy %s %s %s --algo %s "
                 "--json --out heads_one", wopt, backward ? "--do heads_do1.npy --backward" : "", opts, algo);
        rc = pr_test_cli_run("heads", args);
        PR_CHECK(rc == 0, "%s: head %d alone: exit %d: %s", what, t, rc, pr_test_cli_err);
        double b1 = pr_test_cli_json("bound");
        gbs[0][kv] += pr_test_cli_json("grad_bound_dk");
        gbs[1][kv] += pr_test_cli_json("grad_bound_dv");
        gbs[2][0] += pr_test_cli_json("grad_bound_dw");
        PR_CHECK((isnan(b1) && isnan(hb[t])) || b1 == hb[t], "%s: head %d's bound %.17g, alone %.17g", what, t, hb[t],
                 b1);
        double *o1 = load("heads_one/o.npy", 2, s2);
        PR_CHECK(same(o1, O + t * nd, nd), "%s: head %d's O differs from its run alone", what, t);
        free(o1);
        if (!backward)
            continue;
        double *g[3] = {load("heads_one/dq.npy", 2, s2), load("heads_one/dk.npy", 2, s2),
                        load("heads_one/dv.npy", 2, s2)};
        PR_CHECK(same(g[0], dQ + t * nd, nd), "%s: head %d's dQ differs from its run alone", what, t);
        for (size_t i = 0; g[1] && g[2] && i < nd; i++) {
            sK[kv * nd + i] = t % group ? sK[kv * nd + i] + g[1][i] : g[1][i];
            sV[kv * nd + i] = t % group ? sV[kv * nd + i] + g[2][i] : g[2][i];
        }
        if (general) {
            double *w1 = load("heads_one/dw.npy", 3, s3);
            for (size_t i = 0; w1 && i < sw; i++)
                sw3[i] = t ? sw3[i] + w1[i] : w1[i];
            free(w1);
        }
        free(g[0]); free(g[1]); free(g[2]);
    }
    /* dense and lowrank sum the parts in head order: bit for bit; the fft path's
     * pr_backward_execute_heads sums in its own order: both sums within their bounds of the exact
     * gradients, so within the sum of the bounds of each other */
    int exact = strcmp(algo, "fft") || (group == 1 && !(general && H > 1));
    for (int kv = 0; backward && kv < HK; kv++) {
        double ek = pr_vec_max_abs_diff(sK + kv * nd, dK + kv * nd, nd), ev = pr_vec_max_abs_diff(sV + kv * nd, dV + kv * nd, nd);
        PR_CHECK(exact ? same(sK + kv * nd, dK + kv * nd, nd) && same(sV + kv * nd, dV + kv * nd, nd)
                       : ek <= gbh[0] + gbs[0][kv] && ev <= gbh[1] + gbs[1][kv],
                 "%s: kv head %d: dK, dV differ from the runs alone summed over its query heads by %g, %g (bounds "
                 "%g + %g, %g + %g)", what, kv, ek, ev, gbh[0], gbs[0][kv], gbh[1], gbs[1][kv]);
    }
    if (backward && general) {
        double ew = pr_vec_max_abs_diff(sw3, dw, sw);
        PR_CHECK(exact ? same(sw3, dw, sw) : ew <= gbh[2] + gbs[2][0], "%s: dw differs from the runs alone summed by "
                 "%g (bounds %g + %g)", what, ew, gbh[2], gbs[2][0]);
    }
    free(Q); free(K); free(V); free(dO); free(O); free(dQ); free(dK); free(dV); free(dw);
    free(sK); free(sV); free(sw3);
}

/* --heads H --kv-heads K (generated inputs): the instance docs/cli.md describes (head 0 is the
 * one-head problem of --seed, dO only with --backward, then the other heads' Q, K, V, dO drawn in
 * that order), so that the run equals one on those inputs given as files, bit for bit, and on the
 * dense path (no P chosen for the worst head) its head 0 a one-head run of the seed */
static void generated_heads(int h, int hk, const char *algo, int backward)
{
    enum { SEED = 11 };
    size_t nd = (size_t)N * D;
    char what[96], args[512];
    snprintf(what, sizeof what, "--heads %d --kv-heads %d --algo %s%s", h, hk, algo, backward ? " --backward" : "");
    pr_problem_t P;
    pr_rng_t rng;
    pr_problem_init(P);
    pr_rng_init(rng, SEED);
    PR_CHECK_OK(pr_problem_generate(P, rng, N, D, 0.8, PR_POS_ROPE, PR_ROPE_BASE_DEFAULT, backward ? PR_PROBLEM_DO : 0));
    double *x[4] = {malloc(sizeof(double) * nd * h), malloc(sizeof(double) * nd * hk),
                    malloc(sizeof(double) * nd * hk), malloc(sizeof(double) * nd * h)};
    const double *first[4] = {P->Q, P->K, P->V, P->dO};
    int count[4] = {h, hk, hk, h};
    for (int t = 0; t < 3 + backward; t++) {
        memcpy(x[t], first[t], sizeof(double) * nd);
        pr_rng_fill(x[t] + nd, (long)(nd * (count[t] - 1)), t == 3 ? 1.0 : 0.8, rng);
    }
    long qs[3] = {h, N, D}, ks[3] = {hk, N, D}, s2[2] = {N, D};
    save("heads_gq.npy", x[0], 3, qs);
    save("heads_gk.npy", x[1], 3, ks);
    save("heads_gv.npy", x[2], 3, ks);
    if (backward)
        save("heads_gdo.npy", x[3], 3, qs);
    const char *bw = backward ? " --backward" : "";
    snprintf(args, sizeof args, "attn --heads %d --kv-heads %d --n %d --d %d --B 0.8 --seed %d --algo %s%s --json "
             "--out heads_gen", h, hk, N, D, SEED, algo, bw);
    int rc = pr_test_cli_run("heads", args);
    PR_CHECK(rc == 0 && pr_test_cli_json("heads") == h && pr_test_cli_json("kv_heads") == hk, "%s: exit %d: %s %s",
             what, rc, pr_test_cli_out, pr_test_cli_err);
    snprintf(args, sizeof args, "attn --q heads_gq.npy --k heads_gk.npy --v heads_gv.npy%s --algo %s%s --out "
             "heads_genf", backward ? " --do heads_gdo.npy" : "", algo, bw);
    rc = pr_test_cli_run("heads", args);
    PR_CHECK(rc == 0, "%s, as files: exit %d: %s", what, rc, pr_test_cli_err);
    snprintf(args, sizeof args, "attn --n %d --d %d --B 0.8 --seed %d --algo %s%s --out heads_gen1", N, D, SEED,
             algo, bw);
    rc = pr_test_cli_run("heads", args);
    PR_CHECK(rc == 0, "%s, one head: exit %d: %s", what, rc, pr_test_cli_err);
    static const char *outs[4] = {"o", "dq", "dk", "dv"};
    for (int t = 0; t < (backward ? 4 : 1); t++) {
        char p1[64], p2[64], p3[64];
        snprintf(p1, sizeof p1, "heads_gen/%s.npy", outs[t]);
        snprintf(p2, sizeof p2, "heads_genf/%s.npy", outs[t]);
        snprintf(p3, sizeof p3, "heads_gen1/%s.npy", outs[t]);
        int kv = t >= 2;
        double *a = load(p1, 3, kv ? ks : qs), *b = load(p2, 3, kv ? ks : qs), *c = load(p3, 2, s2);
        PR_CHECK(same(a, b, nd * (kv ? hk : h)), "%s: %s differs from the run on the same inputs as files", what, p1);
        /* head 0 alone: its dK, dV are summed with the other heads of its kv head */
        PR_CHECK(strcmp(algo, "dense") || (kv && h / hk > 1) || same(a, c, nd), "%s: head 0 of %s differs from the "
                 "one-head run of the seed", what, p1);
        free(a); free(b); free(c);
    }
    for (int t = 0; t < 4; t++)
        free(x[t]);
    pr_problem_clear(P);
}

static void refusals(pr_rng_t rng)
{
    double *x = malloc(sizeof(double) * 3 * 2 * N * D);
    for (size_t i = 0; i < 3 * 2 * N * D; i++)
        x[i] = pr_rng_range(rng, -1.0, 1.0);
    long s4[4] = {2, 3, N, D}, s3[3] = {3, N, D}, k3[3] = {2, N, D}, k4[4] = {2, 2, N, D}, n3[3] = {3, N - 1, D};
    long d3[3] = {3, N, D - 2}, k1[3] = {1, N, D}, s2[2] = {N, D}, b4[4] = {3, 2, N, D};
    save("heads_q3.npy", x, 3, s3);
    save("heads_q4.npy", x, 4, s4);
    save("heads_k2.npy", x, 3, k3);
    save("heads_k4.npy", x, 4, k4);
    save("heads_kn.npy", x, 3, n3);
    save("heads_kd.npy", x, 3, d3);
    save("heads_k1.npy", x, 3, k1);
    save("heads_k2d.npy", x, 2, s2);
    save("heads_kb.npy", x, 4, b4);
    bad("attn --q heads_q3.npy --k heads_k2.npy --v heads_k2.npy", "2 key/value heads do not divide 3 query heads");
    bad("attn --q heads_q4.npy --k heads_k4.npy --v heads_k4.npy", "2 key/value heads do not divide 3 query heads");
    bad("attn --q heads_q3.npy --k heads_kn.npy --v heads_kn.npy", "heads_kn.npy: shape (3, 23, 4), expected (3, 24, 4)");
    bad("attn --q heads_q3.npy --k heads_kd.npy --v heads_kd.npy", "heads_kd.npy: shape (3, 24, 2), expected (3, 24, 4)");
    bad("attn --q heads_q3.npy --k heads_k2d.npy --v heads_k2d.npy", "heads_k2d.npy: shape (24, 4), expected (1, 24, 4)");
    bad("attn --q heads_q4.npy --k heads_kb.npy --v heads_kb.npy", "heads_kb.npy: shape (3, 2, 24, 4), expected (2, 2, 24, 4)");
    bad("attn --q heads_q3.npy --k heads_k1.npy --v heads_q3.npy", "K and V must have the same shape");
    bad("attn --q heads_q3.npy --k heads_k1.npy --v heads_k1.npy --do heads_k1.npy --backward", "dO has Q's shape");
    bad("attn --q heads_q3.npy", "give --q, --k, --v as files too");
    bad("attn --heads 3 --kv-heads 2", "--kv-heads 2 does not divide --heads 3");
    bad("attn --kv-heads 2", "--kv-heads 2 needs --heads");
    bad("attn --heads 2 --q heads_q3.npy", "--heads is for generated inputs");
    bad("attn --heads -1", "--heads");
    bad("attn --q heads_q3.npy --k heads_k1.npy --v heads_k1.npy --backward", "give --q, --k, --v and --do");
    bad("attn --q heads_q3.npy --k heads_k1.npy --v heads_k1.npy --n 20", "disagrees with --n");
    bad("attn --q heads_q3.npy --k heads_k1.npy --v heads_k1.npy --do heads_q3.npy --backward --certify",
        "--certify --backward takes one head");
    /* entries past --B in heads 0 and 2: the --B asked for covers every head (it named head 0's
     * 1.5 before) */
    x[5] = 1.5;
    x[2 * N * D + 7] = -3.0;
    save("heads_qb.npy", x, 3, s3);
    bad("attn --q heads_qb.npy --k heads_k1.npy --v heads_k1.npy --algo fft --B 1", "raise --B to at least 3");
    x[5] = x[2 * N * D + 7] = 0.5;
    /* a refusal before any head's data names no head (it named a head from an uninitialised field) */
    bad("attn --q heads_q3.npy --k heads_k1.npy --v heads_k1.npy --algo lowrank --alibi 0.1",
        "attn: --algo lowrank needs factorised");
    bad("attn --q heads_q3.npy --k heads_k1.npy --v heads_k1.npy --do heads_q3.npy --backward --algo lowrank "
        "--alibi 0.1", "attn: --algo lowrank needs factorised");
    /* --certify head by head: every head's forward certified, the text report names the heads */
    int rc = pr_test_cli_run("heads", "attn --q heads_q3.npy --k heads_k1.npy --v heads_k1.npy --algo fft --certify "
                             "--json");
    double ce = pr_test_cli_json("certified_err_inf"), bd = pr_test_cli_json("bound");
    PR_CHECK(rc == 0 && strstr(pr_test_cli_out, "\"certified_verdict\": \"certified\"") && ce <= bd,
             "--certify with 3 heads: exit %d, certified %g, bound %g: %s %s", rc, ce, bd, pr_test_cli_out,
             pr_test_cli_err);
    rc = pr_test_cli_run("heads", "attn --q heads_q3.npy --k heads_k1.npy --v heads_k1.npy --algo lowrank");
    PR_CHECK(rc == 0 && strstr(pr_test_cli_out, "3 heads (batch 1, 1 kv heads), one plan") &&
             strstr(pr_test_cli_out, "each head's bound: "), "text report of 3 heads: exit %d: %s %s", rc,
             pr_test_cli_out, pr_test_cli_err);
    free(x);
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_attn_heads", 20261128));
    against_slices(1, 4, 2, "dense", "", 1, 0, rng);
    against_slices(1, 3, 1, "fft", "--causal --eps 1e-7", 0, 0, rng);
    against_slices(2, 2, 1, "fft", "--eps 1e-6", 1, 1, rng);
    against_slices(1, 4, 2, "lowrank", "--causal", 1, 0, rng);
    against_slices(2, 4, 4, "lowrank", "--pos identity --eps 1e-7", 0, 0, rng);
    against_slices(2, 2, 2, "fft", "--pos rope-neox", 1, 0, rng);
    generated_heads(3, 1, "dense", 1);
    generated_heads(4, 2, "lowrank", 1);
    generated_heads(2, 2, "fft", 0);
    refusals(rng);
    return pr_test_finish("test_attn_heads");
}
