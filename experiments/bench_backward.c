/* polyrope bench backward: the fast backward (general W, FFT path) against the dense backward and
 * against the fast forward at the same size, in one run (claim G5). Both fast plans are made once
 * (as a plan for W is reused across heads and calls); the planning times are printed beside.
 * Reports the backward/dense time ratio, crossover n*, log-log slope over [slope-min, nmax], the
 * backward/forward ratio, and with --heads H the per-head time of an H-head execute on one plan
 * over a one-head execute's (issue 16's targets: n* <= 2048, backward/forward <= 5, per-head
 * ratio <= 0.5 at 8 heads, n = 2^16); with --kv-heads K also that of H Q heads on K kv heads
 * (grouped-query: the Q heads of a kv head share its transforms). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "polyrope.h"
#include "cli.h"
#include "commands.h"

typedef struct {
    int n, degree, dense_measured;
    long terms, fwd_terms, transforms;
    int forward_xhat;       /* the timed one-head backward took the forward's K, V half (x̂, the sums'
                               inverses) as its last execute left it (each timed backward follows a
                               forward execute on its inputs, as in training) */
    double fwd, bwd, dense, fwd_cpu, bwd_cpu, dense_cpu, fwd_plan, bwd_plan, bwd_mib;
    double hbwd, hbwd_cpu;  /* the H-head execute (heads > 1) */
    double gbwd, gbwd_cpu;  /* the H-head execute on K kv heads (0 < K < H) */
} row_t;

typedef struct {
    int d, dense_max, want_dw, heads, kv_heads;
    double B, eps;
    long seed;
    unsigned plan_flags;    /* the forward plan's (whose transforms the backward shares) */
} cfg_t;

static int run_size(row_t *r, const cfg_t *c, double *last_t, int *last_n)
{
    int n = r->n, d = c->d, h = c->heads, st;
    size_t nd = (size_t)n * d, hnd = nd * (size_t)h;
    pr_rng_t rng;
    pr_rng_init(rng, (uint64_t)c->seed + n);
    /* h heads of Q, K, V, O, dO, dQ, dK, dV (head 0 is the one-head run's), one of Od; h of lse */
    double *buf = malloc(sizeof(double) * (hnd * 8 + nd + (size_t)h * n));
    pr_posw_t W;
    if (!buf)
        return PR_ENOMEM;
    double *Q = buf, *K = Q + hnd, *V = K + hnd, *O = V + hnd, *dO = O + hnd, *dQ = dO + hnd;
    double *dK = dQ + hnd, *dV = dK + hnd, *Od = dV + hnd, *lse = Od + nd;
    pr_rng_fill(Q, (long)hnd, c->B, rng);
    pr_rng_fill(K, (long)hnd, c->B, rng);
    pr_rng_fill(V, (long)hnd, c->B, rng);
    pr_rng_fill(dO, (long)hnd, 1.0, rng);
    if ((st = pr_posw_init_general(W, n, d, rng))) {
        free(buf);
        return st;
    }
    double *dw = c->want_dw ? malloc(sizeof(double) * W->s * (2 * (size_t)n - 1)) : NULL;
    pr_attn_opts_t opts;
    pr_attn_opts_default(&opts, d);
    pr_control_opts_t fo;
    pr_control_opts_default(&fo);
    fo.eps = c->eps;
    fo.B = c->B;
    fo.plan_flags = c->plan_flags;
    pr_control_info_t info;
    pr_expoly_t p;
    pr_expoly_init(p);
    pr_fast_plan_t F;
    memset(F, 0, sizeof(F));
    pr_backward_plan *bp = NULL;
    if (c->want_dw && !dw)
        st = PR_ENOMEM;
    if (!st && !(st = pr_control_choose(p, &info, Q, K, V, W, n, d, &opts, &fo, 0))) {
        opts.poly = p->c;
        opts.poly_degree = p->degree;
        r->degree = p->degree;
        st = pr_fast_plan_heads(F, W, &opts, h, fo.mem_budget, fo.max_terms, fo.plan_flags);
    }
    if (!st) {
        r->fwd_plan = F->plan_seconds;
        r->fwd_terms = F->terms->nterms_fwd;
        PR_TIMED_CPU(st, r->fwd, r->fwd_cpu, pr_fast_execute(O, F, Q, K, V));
    }
    if (!st && h > 1)
        st = pr_fast_execute_heads(O, F, h, h, Q, K, V);
    if (!st) {
        pr_fast_rowsums(lse, F);
        for (int i = 0; i < h * n; i++)
            lse[i] = log(lse[i]);
        double t0 = pr_timing_wall();
        st = pr_backward_plan_heads(&bp, F, W, &opts, h, c->want_dw, 0);
        r->bwd_plan = pr_timing_wall() - t0;
    }
    /* each timed backward after a forward execute on its inputs (that forward's K, V half serves it) */
    if (!st)
        st = pr_fast_execute(O, F, Q, K, V);
    if (!st) {
        /* the gradients only: kappa (the bound's weights) is not asked for */
        PR_TIMED_CPU(st, r->bwd, r->bwd_cpu, pr_backward_execute(bp, dQ, dK, dV, dw, NULL, Q, K, V, O, lse, dO));
        pr_backward_info_t bi;
        pr_backward_info(&bi, bp);
        r->terms = bi.terms;
        r->transforms = bi.transforms;
        r->forward_xhat = bi.forward_xhat;
        r->bwd_mib = bi.bytes / 1048576.0;
    }
    if (!st && h > 1 && !(st = pr_fast_execute_heads(O, F, h, h, Q, K, V)))
        PR_TIMED_CPU(st, r->hbwd, r->hbwd_cpu, pr_backward_execute_heads(bp, dQ, dK, dV, dw, NULL, Q, K, V, O, lse,
                                                                          dO, h, h));
    /* grouped-query: the first K heads of K and V serve the H Q heads, O and lse their forward's */
    int kv = c->kv_heads;
    if (!st && kv > 0 && kv < h && !(st = pr_fast_execute_heads(O, F, h, kv, Q, K, V))) {
        pr_backward_lse_from_fast(lse, F);
        PR_TIMED_CPU(st, r->gbwd, r->gbwd_cpu, pr_backward_execute_heads(bp, dQ, dK, dV, dw, NULL, Q, K, V, O, lse,
                                                                          dO, h, kv));
    }
    pr_backward_destroy(bp);
    if (F->terms->nterms_fwd)
        pr_fast_destroy(F);
    /* the dense backward of the exact problem, with its own forward's O and lse */
    opts.poly = NULL;
    opts.poly_degree = 0;
    if (!st && n <= c->dense_max) {
        st = pr_dense_forward(Od, lse, Q, K, V, W, n, d, &opts);
        if (!st)
            PR_TIMED_CPU(st, r->dense, r->dense_cpu, pr_dense_backward(dQ, dK, dV, dw, Q, K, V, W, Od, lse, dO, n, d, &opts));
        r->dense_measured = 1;
        last_t[0] = r->dense;
        last_t[1] = r->dense_cpu;
        *last_n = n;
    } else if (!st) {
        /* n² from the largest measured n; none measured (--nmin above --dense-max): unknown */
        double q = *last_n ? (double)n / *last_n : NAN;
        r->dense = last_t[0] * q * q;
        r->dense_cpu = last_t[1] * q * q;
    }
    pr_expoly_clear(p);
    pr_posw_clear(W);
    free(dw);
    free(buf);
    return st;
}

/* least-squares slope of log t against log n over rows with n in [lo, hi] (cpu: CPU times) */
static double loglog_slope(const row_t *r, int nr, int lo, int hi, int cpu)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int m = 0;
    for (int i = 0; i < nr; i++)
        if (r[i].n >= lo && r[i].n <= hi) {
            double x = log((double)r[i].n), y = log(cpu ? r[i].bwd_cpu : r[i].bwd);
            sx += x; sy += y; sxx += x * x; sxy += x * y;
            m++;
        }
    return m >= 2 ? (m * sxy - sx * sy) / (m * sxx - sx * sx) : NAN;
}

/* the row at n = 2^16 (issue 16's per-head target), else the largest */
static const row_t *head_row(const row_t *r, int nr)
{
    for (int i = 0; i < nr; i++)
        if (r[i].n == 65536)
            return &r[i];
    return &r[nr - 1];
}

/* per-head time of the H-head execute over the one-head execute's (CPU or wall) */
static double per_head(const row_t *r, int h, int cpu)
{
    return h > 1 ? (cpu ? r->hbwd_cpu / r->bwd_cpu : r->hbwd / r->bwd) / h : NAN;
}

/* the same for the H heads on K kv heads (0 < K < H) */
static double per_head_gqa(const row_t *r, const cfg_t *c, int cpu)
{
    int h = c->heads, k = c->kv_heads;
    return k > 0 && k < h ? (cpu ? r->gbwd_cpu / r->bwd_cpu : r->gbwd / r->bwd) / h : NAN;
}

static void print_json(const row_t *rows, int nr, const cfg_t *c, const char *fftw_plan, long rounds,
                       int threads, long nstar, long nstar_wall, double slope, double slope_wall,
                       long slope_min, long nmax, double worst, double worst_wall, int ok)
{
    int s = 2 * c->d;
    printf("{\"bench\": \"backward\", \"pos\": \"general\", \"d\": %d, \"s\": %d, \"B\": %g, \"eps\": %g, "
           "\"dw\": %s, \"fftw\": \"%s\", \"rounds\": %ld, \"heads\": %d, \"kv_heads\": %d, \"rows\": [", c->d, s,
           c->B, c->eps, c->want_dw ? "true" : "false", fftw_plan, rounds, c->heads, c->kv_heads);
    for (int i = 0; i < nr; i++) {
        const row_t *r = &rows[i];
        printf("%s{\"n\": %d, \"degree\": %d, \"terms\": %ld, \"forward_terms\": %ld, \"transforms\": %ld, "
               "\"forward_xhat\": %s, \"fwd_s\": %.6g, \"bwd_s\": %.6g, ", i ? ", " : "", r->n, r->degree, r->terms,
               r->fwd_terms, r->transforms, r->forward_xhat ? "true" : "false", r->fwd, r->bwd);
        /* the dense figures are unknown (null) when no size up to --dense-max ran */
        pr_cli_json_num("dense_bwd_s", r->dense, 6, ", ");
        printf("\"fwd_cpu_s\": %.6g, \"bwd_cpu_s\": %.6g, ", r->fwd_cpu, r->bwd_cpu);
        pr_cli_json_num("dense_cpu_s", r->dense_cpu, 6, ", ");
        printf("\"dense_measured\": %s, ", r->dense_measured ? "true" : "false");
        pr_cli_json_num("dense_over_bwd", r->dense_cpu / r->bwd_cpu, 4, ", ");
        printf("\"bwd_over_fwd\": %.4g, \"bwd_over_fwd_wall\": %.4g, \"fwd_plan_s\": %.4g, "
               "\"bwd_plan_s\": %.4g, \"bwd_mib\": %.1f, ", r->bwd_cpu / r->fwd_cpu, r->bwd / r->fwd, r->fwd_plan,
               r->bwd_plan, r->bwd_mib);
        pr_cli_json_num("heads_bwd_s", c->heads > 1 ? r->hbwd : NAN, 6, ", ");
        pr_cli_json_num("per_head_ratio", per_head(r, c->heads, 1), 4, ", ");
        pr_cli_json_num("per_head_ratio_wall", per_head(r, c->heads, 0), 4, ", ");
        pr_cli_json_num("gqa_bwd_s", per_head_gqa(r, c, 1) > 0 ? r->gbwd : NAN, 6, ", ");
        pr_cli_json_num("gqa_per_head_ratio", per_head_gqa(r, c, 1), 4, ", ");
        pr_cli_json_num("gqa_per_head_ratio_wall", per_head_gqa(r, c, 0), 4, "}");
    }
    /* a slope fitted over fewer than two sizes is NaN: JSON null */
    printf("], \"threads\": %d, \"crossover_n\": %ld, \"crossover_n_wall\": %ld, ", threads, nstar, nstar_wall);
    pr_cli_json_num("slope", slope, 4, ", ");
    pr_cli_json_num("slope_wall", slope_wall, 4, ", ");
    const row_t *hr = head_row(rows, nr);
    printf("\"slope_range\": [%ld, %ld], \"max_bwd_over_fwd\": %.4g, \"max_bwd_over_fwd_wall\": %.4g, "
           "\"ceiling_bwd_over_fwd\": %d, \"target_bwd_over_fwd\": 5, \"target_crossover_n\": 2048, "
           "\"per_head_n\": %d, ", slope_min, nmax, worst, worst_wall, 2 * s + 2, hr->n);
    pr_cli_json_num("per_head_ratio", per_head(hr, c->heads, 1), 4, ", ");
    pr_cli_json_num("gqa_per_head_ratio", per_head_gqa(hr, c, 1), 4, ", ");
    printf("\"targets_met\": %s}\n", ok ? "true" : "false");
}

int pr_bench_backward(int argc, char **argv)
{
    cfg_t c = {.d = 2, .dense_max = 8192, .want_dw = 1, .heads = 1, .B = 1.0, .eps = 1e-6, .seed = 1};
    long nmin = 1024, nmax = 262144, slope_min = 4096, d = 2, dense_max = 8192, seed = 1, rounds = 3, heads = 1;
    long kv_heads = 0;
    int json = 0, no_dw = 0, quick = 0;
    const char *fftw_plan = "measure";
    pr_opt_t opts[] = {
        {"nmin", PR_OPT_INT, &nmin, "smallest n (powers of 2 from here)", 0, 2, 1L << 22, 0},
        {"nmax", PR_OPT_INT, &nmax, "largest n (--quick: 2^15 unless given)", 0, 2, 1L << 22, 0},
        {"slope-min", PR_OPT_INT, &slope_min, "fit the log-log slope over [slope-min, nmax]", 0, 2, 1L << 22, 0},
        {"d", PR_OPT_INT, &d, "head dimension (even)", 0, 2, 16, 0},
        {"B", PR_OPT_DOUBLE, &c.B, "entries of Q, K, V uniform in [-B, B]", 0, 1e-3, 10, 0},
        {"eps", PR_OPT_DOUBLE, &c.eps, "target output error of the forward", 0, 1e-14, 0.1, 0},
        {"dense-max", PR_OPT_INT, &dense_max, "largest n the dense backward runs at; beyond it, n² extrapolation "
         "from the largest measured n (none measured: null in --json, - in the table)", 0, 2, 1L << 20, 0},
        {"no-dw", PR_OPT_FLAG, &no_dw, "skip dw (W's gradient) in both backwards", 0, 0, 0, 0},
        {"heads", PR_OPT_INT, &heads, "also time one execute of this many heads on one plan (per_head_ratio: its "
         "time per head over one head's)", 0, 1, 64, 0},
        {"kv-heads", PR_OPT_INT, &kv_heads, "with --heads H: also time the H Q heads on this many kv heads, dividing H "
         "and fewer than H (grouped-query; gqa_per_head_ratio; 0: not)", 0, 0, 64, 0},
        {"seed", PR_OPT_INT, &seed, "seed of the generated inputs", 0, 0, 1L << 62, 0},
        {"json", PR_OPT_FLAG, &json, "print one JSON object instead of the table", 0, 0, 0, 0},
        {"quick", PR_OPT_FLAG, &quick, "n up to 2^15 and one round unless given (about a minute)", 0, 0, 0, 0},
        {"rounds", PR_OPT_INT, &rounds, "rounds over all sizes; each size keeps its least times (--quick: 1)", 0, 1,
         20, 0},
        {"fftw", PR_OPT_CHOICE, &fftw_plan, "FFTW planning of the forward plan, whose transforms the backward "
         "shares (as in bench fast)", "measure|estimate", 0, 0, 0},
    };
    pr_cmd_spec_t spec = {"bench backward", "",
        "fast backward (general W, FFT path) against the dense backward and the fast forward",
        "Default: general W, d = 2, B = 1, eps = 1e-6, n = 2^10..2^18; targets: crossover n* <= 2048,\n"
        "slope over 2^12..2^18 <= 1.2, backward <= 5 x the fast forward at every n, and with --heads 8\n"
        "a per-head time <= 0.5 x one head's at n = 2^16 (per_head_ratio; at the largest n without 2^16).\n"
        "Times are per execute with the plans made once, the least of at least 3 runs and of --rounds\n"
        "rounds over all sizes; the ratios are measured in one run. Ratios marked * use CPU times (all\n"
        "three run on the same OpenMP threads), wall-clock ones are in --json. Each timed backward follows\n"
        "a forward execute on its inputs, as in training, and takes what that forward made from K, V alone\n"
        "(its transforms of v*[V | 1] and the inverses of its sums, which are dQ's up to a factor per size)\n"
        "for the sizes <= g (forward_xhat in --json; the same bits as making them).",
        opts, (int)(sizeof opts / sizeof opts[0])};
    int rc = pr_cli_parse_nopos(&spec, argc, argv);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (d % 2)
        return pr_cli_fail("bench backward", "--d must be even (the general W has the RoPE block support)");
    if (quick) {
        nmax = pr_cli_given(&spec, "nmax") || nmax < 32768 ? nmax : 32768;
        rounds = pr_cli_given(&spec, "rounds") ? rounds : 1;
    }
    if (nmin > nmax)
        return pr_cli_fail("bench backward", "--nmin %ld exceeds --nmax %ld", nmin, nmax);
    if (kv_heads && (kv_heads >= heads || heads % kv_heads))
        return pr_cli_fail("bench backward", "--kv-heads %ld must divide --heads %ld and be fewer (grouped-query)",
                           kv_heads, heads);
    c.d = (int)d;
    c.dense_max = (int)dense_max;
    c.seed = seed;
    c.want_dw = !no_dw;
    c.heads = (int)heads;
    c.kv_heads = (int)kv_heads;
    c.plan_flags = strcmp(fftw_plan, "estimate") ? PR_FAST_MEASURE : PR_FAST_ESTIMATE;
    int s = 2 * c.d, nr = 0, threads = omp_get_max_threads();
    row_t rows[32];
    /* rounds over all sizes, each size keeping its least execute times (as bench fast):
     * interference from other jobs seldom hits one size in every round. Planning times are the
     * first round's (later rounds plan from the process's FFTW wisdom). */
    for (int round = 0; round < rounds; round++) {
        double last_t[2] = {0.0, 0.0};
        int last_n = 0, k = 0;
        for (long n = nmin; n <= nmax && k < 32; n *= 2, k++) {
            row_t r;
            memset(&r, 0, sizeof r);
            r.n = (int)n;
            int st = run_size(&r, &c, last_t, &last_n);
            if (st)
                return pr_cli_fail_status("bench backward", st, "at this size (lower --nmax or raise --eps)");
            fprintf(stderr, "bench backward: n=%d round %d/%ld: backward %.3g s, forward %.3g s\n", r.n, round + 1,
                    rounds, r.bwd, r.fwd);
            if (round == 0) {
                rows[k] = r;
                nr = k + 1;
                continue;
            }
            row_t *b = &rows[k];
            b->fwd = fmin(b->fwd, r.fwd);
            b->bwd = fmin(b->bwd, r.bwd);
            b->dense = fmin(b->dense, r.dense);
            b->fwd_cpu = fmin(b->fwd_cpu, r.fwd_cpu);
            b->bwd_cpu = fmin(b->bwd_cpu, r.bwd_cpu);
            b->dense_cpu = fmin(b->dense_cpu, r.dense_cpu);
            b->hbwd = fmin(b->hbwd, r.hbwd);
            b->hbwd_cpu = fmin(b->hbwd_cpu, r.hbwd_cpu);
            b->gbwd = fmin(b->gbwd, r.gbwd);
            b->gbwd_cpu = fmin(b->gbwd_cpu, r.gbwd_cpu);
        }
    }
    if (!json) {
        printf("# fast backward vs dense backward and fast forward: general W, d=%d (s=%d), B=%g, eps=%g%s, FFTW %s, "
               "%ld rounds\n%9s %4s %7s %11s %11s %11s %10s %9s %11s %9s", c.d, s, c.B, c.eps,
               c.want_dw ? ", with dw" : "", fftw_plan, rounds, "n", "g", "terms", "fwd_s", "bwd_s", "dense_s",
               "dense/bwd*", "bwd/fwd*", "bwd_plan_s", "bwd_MiB");
        if (c.heads > 1)
            printf(" %8s%-3d %10s", "heads_", c.heads, "per_head*");
        if (c.kv_heads > 0)
            printf(" %6s%-3d %10s", "kv_", c.kv_heads, "gqa_head*");
        printf("\n");
        for (int i = 0; i < nr; i++) {
            const row_t *r = &rows[i];
            if (isfinite(r->dense))
                printf("%9d %4d %7ld %11.4g %11.4g %11.4g%s %9.3f", r->n, r->degree, r->terms, r->fwd, r->bwd,
                       r->dense, r->dense_measured ? " " : "*", r->dense_cpu / r->bwd_cpu);
            else
                printf("%9d %4d %7ld %11.4g %11.4g %11s  %9s", r->n, r->degree, r->terms, r->fwd, r->bwd, "-", "-");
            printf(" %9.3f %11.4g %9.1f", r->bwd_cpu / r->fwd_cpu, r->bwd_plan, r->bwd_mib);
            if (c.heads > 1)
                printf(" %11.4g %10.3f", r->hbwd, per_head(r, c.heads, 1));
            if (c.kv_heads > 0)
                printf(" %9.4g %10.3f", r->gbwd, per_head_gqa(r, &c, 1));
            printf("\n");
        }
    }
    /* crossover: the least n from which the fast backward is faster at every larger tested n.
     * All three run on `threads` OpenMP threads; CPU times are what other jobs on a shared
     * machine inflate least, so crossover, slope and backward/forward use them, with the
     * wall-clock figures beside. */
    long nstar = -1, nstar_wall = -1;
    for (int i = nr - 1; i >= 0 && rows[i].dense_cpu > rows[i].bwd_cpu; i--)
        nstar = rows[i].n;
    for (int i = nr - 1; i >= 0 && rows[i].dense > rows[i].bwd; i--)
        nstar_wall = rows[i].n;
    double slope = loglog_slope(rows, nr, (int)slope_min, (int)nmax, 1);
    double slope_wall = loglog_slope(rows, nr, (int)slope_min, (int)nmax, 0), worst = 0.0, worst_wall = 0.0;
    for (int i = 0; i < nr; i++) {
        worst = fmax(worst, rows[i].bwd_cpu / rows[i].fwd_cpu);
        worst_wall = fmax(worst_wall, rows[i].bwd / rows[i].fwd);
    }
    double ph = per_head(head_row(rows, nr), c.heads, 1);
    int ok = nstar > 0 && nstar <= 2048 && !(slope > 1.2) && worst <= 5.0 && (c.heads < 8 || ph <= 0.5);
    if (json)
        print_json(rows, nr, &c, fftw_plan, rounds, threads, nstar, nstar_wall, slope, slope_wall, slope_min, nmax,
                   worst, worst_wall, ok);
    else {
        printf("(* dense time extrapolated as n^2 from the largest measured n; ratios marked * from CPU times, "
               "all on %d threads)\n"
               "crossover n* = %ld (dense CPU time vs backward CPU time; target <= 2048; "
               "-1: not within the sizes; wall clock: %ld)\n"
               "max backward/forward CPU time = %.3f (target <= 5; wall %.3f)\n", threads, nstar, nstar_wall,
               worst, worst_wall);
        if (isfinite(slope))
            printf("log-log slope of the backward's CPU time over [%ld, %ld] = %.3f (target <= 1.2; wall %.3f)\n",
                   slope_min, nmax, slope, slope_wall);
        else
            printf("log-log slope over [%ld, %ld]: - (fewer than two sizes)\n", slope_min, nmax);
        if (c.heads > 1)
            printf("per-head time of %d heads over one head's at n = %d: %.3f (CPU; target <= 0.5 at 8 heads, "
                   "n = 65536; wall %.3f)\n", c.heads, head_row(rows, nr)->n, ph,
                   per_head(head_row(rows, nr), c.heads, 0));
        if (c.kv_heads > 0)
            printf("per-head time of %d heads on %d kv heads over one head's at n = %d: %.3f (CPU; wall %.3f)\n",
                   c.heads, c.kv_heads, head_row(rows, nr)->n, per_head_gqa(head_row(rows, nr), &c, 1),
                   per_head_gqa(head_row(rows, nr), &c, 0));
    }
    return 0;
}
