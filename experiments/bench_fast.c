/* polyrope bench fast: the fast forward paths against the dense reference, in one run.
 * General W (d = 2): execute with the W plan made once, planning time beside it, dense/fast time
 * ratio, crossover n*, log-log slope over 2^12..2^18, the time share inside FFTW transforms, and
 * one streamed run at n = 2^20 with its memory. Low-rank RoPE (d = 4): ratio and crossover.
 * The auto cost model's predictions beside the measured times. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "polyrope.h"
#include "cli.h"
#include "commands.h"

typedef struct {
    int n;
    double fast, plan, dense, fftw_frac, pred_fast, pred_dense, mem_gib;
    double heads_s;         /* --heads H: one execute of H heads on one plan (0 without) */
    double heads_fftw_frac; /* the share of that execute inside transforms */
    double heads_tph;       /* its transforms per head */
    double gqa_s, gqa_fftw_frac, gqa_tph;   /* the same for H heads over --kv-heads K (0 without) */
    double phase[4];        /* the timed execute's phases (pr_fast_plan_struct.phase_seconds) */
    int fused;              /* its products were made in the inverse phase (products_fused) */
    double xhat_gib, spec_gib, pw_gib;   /* where the plan's memory goes */
    int dense_measured, degree, streamed;
    long transforms, pairs;
    double terms;
} row_t;

typedef struct {
    double B, eps;
    long seed;
    int dense_max;          /* largest n the dense reference is run at; beyond, n² extrapolation */
    int heads;              /* general W: also time this many heads on one plan (1: not) */
    int kv_heads;           /* and these many kv heads under them (= heads: not) */
    unsigned plan_flags;    /* PR_FAST_MEASURE or PR_FAST_ESTIMATE */
} cfg_t;

typedef struct {
    double *Q, *K, *V, *O;
    pr_posw_t W;
    pr_attn_opts_t opts;
} inst_t;

static int inst_init(inst_t *I, int n, int d, pr_pos_kind_t kind, const cfg_t *c)
{
    pr_rng_t rng;
    pr_rng_init(rng, (uint64_t)c->seed + n);
    size_t nd = (size_t)n * d;
    I->Q = malloc(sizeof(double) * nd * 4);
    if (!I->Q)
        return PR_ENOMEM;
    I->K = I->Q + nd;
    I->V = I->K + nd;
    I->O = I->V + nd;
    pr_rng_fill(I->Q, (long)nd, c->B, rng);
    pr_rng_fill(I->K, (long)nd, c->B, rng);
    pr_rng_fill(I->V, (long)nd, c->B, rng);
    pr_attn_opts_default(&I->opts, d);
    int st = kind == PR_POS_GENERAL ? pr_posw_init_general(I->W, n, d, rng)
                                    : pr_posw_init_rope(I->W, n, d, PR_ROPE_BASE_DEFAULT, PR_ROPE_INTERLEAVED);
    if (st)
        free(I->Q);
    return st;
}

static void inst_clear(inst_t *I)
{
    free(I->Q);
    pr_posw_clear(I->W);
}

/* dense time at n, measured up to dense_max, else extrapolated ∝ n² from the last measurement */
static int dense_time(row_t *r, inst_t *I, int d, const cfg_t *c, double *last_t, int *last_n)
{
    int st = PR_OK;
    if (r->n <= c->dense_max) {
        PR_TIMED(st, r->dense, pr_dense_forward(I->O, NULL, I->Q, I->K, I->V, I->W, r->n, d, &I->opts));
        r->dense_measured = 1;
        *last_t = r->dense;
        *last_n = r->n;
    } else {
        double q = (double)r->n / *last_n;
        r->dense = *last_t * q * q;
    }
    return st;
}

/* the instance at r->n and its polynomial for c->eps (the degree the path needs) */
static int setup(inst_t *I, pr_expoly_t p, pr_control_opts_t *fo, const row_t *r, const cfg_t *c, int d,
                 size_t budget, int lowrank)
{
    int st = inst_init(I, r->n, d, lowrank ? PR_POS_ROPE : PR_POS_GENERAL, c);
    if (st)
        return st;
    pr_control_opts_default(fo);
    fo->eps = c->eps;
    fo->B = c->B;
    fo->mem_budget = budget;
    fo->plan_flags = c->plan_flags;
    pr_control_info_t info;
    pr_expoly_init(p);
    if ((st = pr_control_choose(p, &info, I->Q, I->K, I->V, I->W, r->n, d, &I->opts, fo, lowrank))) {
        pr_expoly_clear(p);
        inst_clear(I);
    }
    return st;
}

/* --heads H (--kv-heads K): H Q heads over kv K, V heads (the instance's head, then more drawn
 * from the same generator) on one plan of the same polynomial for kv heads, one execute timed into
 * *secs, its FFTW share and transforms per head (none, *secs 0, when that plan would stream or not
 * fit the budget at all) */
static int run_heads(double *secs, double *fftw, double *tph, const inst_t *I, const pr_attn_opts_t *po,
                     const cfg_t *c, int n, int d, size_t budget, int kv)
{
    int h = c->heads;
    size_t nd = (size_t)n * d;
    double *buf = malloc(sizeof(double) * nd * (2 * h + 2 * kv));
    if (!buf)
        return PR_ENOMEM;
    double *Q = buf, *K = Q + nd * h, *V = K + nd * kv, *O = V + nd * kv;
    pr_rng_t rng;
    pr_rng_init(rng, (uint64_t)c->seed + n + 1);
    pr_rng_fill(Q, (long)(nd * h), c->B, rng);
    pr_rng_fill(K, (long)(nd * kv), c->B, rng);
    pr_rng_fill(V, (long)(nd * kv), c->B, rng);
    memcpy(Q, I->Q, sizeof(double) * nd);
    memcpy(K, I->K, sizeof(double) * nd);
    memcpy(V, I->V, sizeof(double) * nd);
    pr_fast_plan_t F;
    int st = pr_fast_plan_gqa(F, I->W, po, h, kv, budget, LONG_MAX, c->plan_flags);
    if (!st) {
        if (!F->streamed) { /* past the budget the heads' plan streams: not the comparison asked */
            PR_TIMED(st, *secs, pr_fast_execute_heads(O, F, h, kv, Q, K, V));
            F->timing = 1;  /* one more run, with the clock around every transform */
            double t0 = pr_timing_wall();
            if (!st)
                st = pr_fast_execute_heads(O, F, h, kv, Q, K, V);
            *fftw = F->fftw_seconds / (pr_timing_wall() - t0);
            *tph = (double)F->transforms / h;
        }
        pr_fast_destroy(F);
    }
    free(buf);
    return st == PR_EBUDGET ? PR_OK : st;   /* nor where even a streamed one does not fit */
}

/* execute time (plan made once), plan time, FFTW share; lowrank: execute time */
static int run(row_t *r, const cfg_t *c, int d, size_t budget, int lowrank, int predict)
{
    inst_t I;
    pr_expoly_t p;
    pr_control_opts_t fo;
    int n = r->n, st = setup(&I, p, &fo, r, c, d, budget, lowrank);
    if (st)
        return st;
    pr_attn_opts_t po = I.opts;
    po.poly = p->c;
    po.poly_degree = p->degree;
    r->degree = p->degree;
    r->terms = pr_expand_binom(lowrank ? d : I.W->s, p->degree);
    pr_fast_plan_t F;
    memset(F, 0, sizeof(F));
    if (lowrank) {
        PR_TIMED(st, r->fast, pr_lowrank_execute(I.O, I.Q, I.K, I.V, I.W, n, d, &po, fo.mem_budget, fo.max_terms));
    } else if (!(st = pr_fast_plan(F, I.W, &po, budget, fo.max_terms, fo.plan_flags))) {
        r->plan = F->plan_seconds;
        r->streamed = F->streamed;
        r->mem_gib = F->bytes / 1073741824.0;
        double sl_gib = pr_toeplitz_spec_len(F->tp) * 8.0 / 1073741824.0;
        r->xhat_gib = sl_gib * F->terms->bm->count_fwd * (d + 1);
        r->spec_gib = F->streamed ? 0.0 : sl_gib * F->terms->npairs_fwd;
        r->pw_gib = F->streamed ? 8.0 * F->s * (2.0 * n - 1) / 1073741824.0 : 0.0;
        r->pairs = F->terms->npairs_fwd;
        if (!F->streamed)   /* a streamed execute takes a minute: once is enough */
            PR_TIMED(st, r->fast, pr_fast_execute(I.O, F, I.Q, I.K, I.V));
        F->timing = 1;      /* one more run, with the clock around every transform */
        double t0 = pr_timing_wall();
        if (!st)
            st = pr_fast_execute(I.O, F, I.Q, I.K, I.V);
        double el = pr_timing_wall() - t0;
        r->fast = F->streamed ? el : r->fast;
        r->fftw_frac = F->fftw_seconds / el;
        memcpy(r->phase, F->phase_seconds, sizeof(r->phase));
        r->fused = F->products_fused || F->streamed;
        r->transforms = F->transforms;
    }
    if (!st && !lowrank && c->heads > 1 && !F->streamed)
        st = run_heads(&r->heads_s, &r->heads_fftw_frac, &r->heads_tph, &I, &po, c, n, d, budget, c->heads);
    if (!st && !lowrank && c->kv_heads < c->heads && !F->streamed)
        st = run_heads(&r->gqa_s, &r->gqa_fftw_frac, &r->gqa_tph, &I, &po, c, n, d, budget, c->kv_heads);
    if (!st && predict) {
        pr_auto_t a;
        if (!(st = pr_auto_predict(&a, I.Q, I.K, I.V, NULL, I.W, n, d, &I.opts, &fo))) {
            r->pred_fast = a.t[lowrank ? 1 : 2];
            r->pred_dense = a.t[0];
        }
    }
    pr_fast_destroy(F);
    pr_expoly_clear(p);
    inst_clear(&I);
    return st;
}

/* Resets the process's peak resident memory (Linux: "5" written to /proc/self/clear_refs) so that
 * the 2^20 run's peak is its own, not a kept plan's of the sweep before it; 0 where it cannot. */
static int peak_rss_reset(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return 0;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

/* smallest measured n from which the fast path stays faster, interpolated in log n between the
 * bracketing sizes; 0 if it never is */
static double crossover(const row_t *r, int cnt)
{
    int k = cnt;
    while (k > 0 && r[k - 1].fast < r[k - 1].dense)
        k--;
    if (k == cnt)
        return 0.0;
    if (k == 0)
        return r[0].n;
    /* log(dense/fast) crosses 0 between k-1 and k */
    double y0 = log(r[k - 1].dense / r[k - 1].fast), y1 = log(r[k].dense / r[k].fast);
    double x0 = log2(r[k - 1].n), x1 = log2(r[k].n);
    return exp2(x0 + (x1 - x0) * y0 / (y0 - y1));
}

/* least-squares slope of log t against log n over lo <= n <= hi */
static double slope(const row_t *r, int cnt, int lo, int hi)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int m = 0;
    for (int k = 0; k < cnt; k++)
        if (r[k].n >= lo && r[k].n <= hi) {
            double x = log((double)r[k].n), y = log(r[k].fast);
            sx += x; sy += y; sxx += x * x; sxy += x * y;
            m++;
        }
    return m < 2 ? NAN : (m * sxy - sx * sy) / (m * sxx - sx * sx);
}

static void print_rows(int lowrank, const row_t *r, int cnt, int json, int heads, int kv)
{
    for (int k = 0; k < cnt; k++) {
        if (json) {
            printf("%s{\"n\": %d, \"fast_s\": %.6g, \"plan_s\": %.6g, \"dense_s\": %.6g, \"dense_measured\": %s, "
                   "\"ratio_dense_over_fast\": %.4g, \"fftw_fraction\": %.3f, \"degree\": %d, \"terms\": %.0f, "
                   "\"transforms\": %ld, \"streamed\": %s, \"plan_gib\": %.3f, ", k ? ", " : "", r[k].n,
                   r[k].fast, r[k].plan, r[k].dense, r[k].dense_measured ? "true" : "false", r[k].dense / r[k].fast,
                   r[k].fftw_frac, r[k].degree, r[k].terms, r[k].transforms, r[k].streamed ? "true" : "false",
                   r[k].mem_gib);
            pr_cli_json_num("pred_fast_s", r[k].pred_fast, 6, ", ");
            if (lowrank) {   /* the low-rank path has none of these phases */
                printf("\"phases_s\": null, \"products_in_inverse\": null, ");
            } else {
                printf("\"phases_s\": {\"xhat\": %.4g, ", r[k].phase[0]);
                pr_cli_json_num("products", r[k].fused ? NAN : r[k].phase[1], 4, ", ");
                printf("\"inverse\": %.4g, \"divide\": %.4g}, \"products_in_inverse\": %s, ", r[k].phase[2],
                       r[k].phase[3], r[k].fused ? "true" : "false");
            }
            if (heads > 1) {
                printf("\"heads\": %d, ", heads);
                pr_cli_json_num("heads_s", r[k].heads_s > 0 ? r[k].heads_s : NAN, 6, ", ");
                pr_cli_json_num("per_head_s", r[k].heads_s > 0 ? r[k].heads_s / heads : NAN, 6, ", ");
                pr_cli_json_num("per_head_ratio", r[k].heads_s > 0 ? r[k].heads_s / heads / r[k].fast : NAN, 4,
                                ", ");
                pr_cli_json_num("heads_fftw_fraction", r[k].heads_s > 0 ? r[k].heads_fftw_frac : NAN, 3, ", ");
                pr_cli_json_num("transforms_per_head", r[k].heads_s > 0 ? r[k].heads_tph : NAN, 4, ", ");
            }
            if (kv < heads) {
                double g = r[k].gqa_s > 0 ? r[k].gqa_s : NAN;
                printf("\"kv_heads\": %d, ", kv);
                pr_cli_json_num("heads_gqa_s", g, 6, ", ");
                pr_cli_json_num("per_head_ratio_gqa", g / heads / r[k].fast, 4, ", ");
                pr_cli_json_num("heads_gqa_fftw_fraction", g > 0 ? r[k].gqa_fftw_frac : NAN, 3, ", ");
                pr_cli_json_num("transforms_per_head_gqa", g > 0 ? r[k].gqa_tph : NAN, 4, ", ");
            }
            pr_cli_json_num("pred_dense_s", r[k].pred_dense, 6, "}");
        } else {
            printf("  %-8d %10.4g %10.4g %10.4g%c %9.3g %6.2f %4d %7.0f %6ld %6.2f %10.3g %10.3g", r[k].n, r[k].fast,
                   r[k].plan, r[k].dense, r[k].dense_measured ? ' ' : '*', r[k].dense / r[k].fast, r[k].fftw_frac,
                   r[k].degree, r[k].terms, r[k].transforms, r[k].mem_gib, r[k].pred_fast, r[k].pred_dense);
            if (heads > 1)
                printf(" %10.4g %10.4g %9.3f", r[k].heads_s, r[k].heads_s / heads, r[k].heads_s / heads / r[k].fast);
            if (kv < heads)
                printf(" %10.4g %9.3f", r[k].gqa_s, r[k].gqa_s / heads / r[k].fast);
            printf("\n");
        }
    }
}

/* one row: the fast path (run) and the dense reference (dense_time) at size n */
static int measure(row_t *r, int n, int d, pr_pos_kind_t kind, int lowrank, const cfg_t *c, size_t budget,
                   int predict, double *last_t, int *last_n)
{
    memset(r, 0, sizeof(*r));
    r->n = n;
    r->pred_fast = r->pred_dense = NAN;
    int st = run(r, c, d, budget, lowrank, predict);
    if (!st) {
        inst_t I;
        if (!(st = inst_init(&I, n, d, kind, c))) {
            st = dense_time(r, &I, d, c, last_t, last_n);
            inst_clear(&I);
        }
    }
    return st;
}

/* Rows for n = 2^lo2 .. 2^hi2, measured in `rounds` rounds over all sizes, each size keeping
 * its least execute and dense times: interference from other jobs (memory bandwidth above all,
 * which the large sizes need most) seldom hits one size in every round. Planning time and the
 * auto cost model's predictions are the first round's (later rounds plan from the process's
 * FFTW wisdom, so their planning would hide the measuring). */
static int sweep(row_t *rows, int *count, int lo2, int hi2, int d, int lowrank, const cfg_t *c, size_t budget,
                 int rounds, const char *label)
{
    int st = PR_OK;
    for (int round = 0; round < rounds && !st; round++) {
        int last_n = 0;
        double last_t = 0.0;
        for (int l2 = lo2, k = 0; l2 <= hi2 && !st; l2++, k++) {
            row_t r;
            st = measure(&r, 1 << l2, d, lowrank ? PR_POS_ROPE : PR_POS_GENERAL, lowrank, c, budget,
                         round == 0 && l2 % 2 == 0, &last_t, &last_n);
            if (st)
                break;
            /* progress on stderr, also with --json (the object goes to stdout) */
            fprintf(stderr, "bench fast: %s n=%d round %d/%d: execute %.3g s, plan %.3g s\n", label, r.n,
                    round + 1, rounds, r.fast, r.plan);
            if (round == 0) {
                rows[k] = r;
                *count = k + 1;
                continue;
            }
            row_t *b = &rows[k];
            if (r.fast < b->fast) {
                b->fast = r.fast;
                b->fftw_frac = r.fftw_frac;
                memcpy(b->phase, r.phase, sizeof(b->phase));
            }
            if (r.heads_s > 0 && r.heads_s < b->heads_s) {
                b->heads_s = r.heads_s;
                b->heads_fftw_frac = r.heads_fftw_frac;
            }
            if (r.gqa_s > 0 && r.gqa_s < b->gqa_s) {
                b->gqa_s = r.gqa_s;
                b->gqa_fftw_frac = r.gqa_fftw_frac;
            }
            b->dense = fmin(b->dense, r.dense);
        }
    }
    return st;
}

int pr_bench_fast(int argc, char **argv)
{
    int json = 0, quick = 0, skip_big = 0;
    long seed = 1, max_log2 = 18, rounds = 3, heads = 1, kv_heads = 0;
    cfg_t c = {.B = 1.0, .eps = 1e-6, .dense_max = 16384, .heads = 1};
    long dense_max = c.dense_max;
    const char *fftw_plan = "measure";
    pr_opt_t opts[] = {
        {"json", PR_OPT_FLAG, &json, "print one JSON object", 0, 0, 0, 0},
        {"quick", PR_OPT_FLAG, &quick, "general W up to 2^14, low-rank up to 2^12, no 2^20 run (about a minute)", 0, 0, 0, 0},
        {"skip-big", PR_OPT_FLAG, &skip_big, "skip the streamed n = 2^20 run (about 4 GiB and several minutes)", 0, 0, 0, 0},
        {"max-log2n", PR_OPT_INT, &max_log2, "largest log2 n of the general-W sweep", 0, 10, 20, 0},
        {"dense-max", PR_OPT_INT, &dense_max, "largest n the dense reference runs at (beyond: n^2 extrapolation, marked *)", 0, 256, 1 << 20, 0},
        {"seed", PR_OPT_INT, &seed, "random seed of the instances", 0, 0, 1e9, 0},
        {"heads", PR_OPT_INT, &heads, "general W: also time this many heads on one plan, one execute (per_head_ratio: "
         "its time per head over one head's)", 0, 1, 64, 0},
        {"kv-heads", PR_OPT_INT, &kv_heads, "with --heads H: also time H heads over this many kv heads (dividing H) "
         "on one grouped-query plan (per_head_ratio_gqa; 0: not)", 0, 0, 64, 0},
        {"rounds", PR_OPT_INT, &rounds, "rounds over all sizes; each size keeps its least times (--quick: 1)", 0, 1,
         20, 0},
        {"fftw", PR_OPT_CHOICE, &fftw_plan, "FFTW planning of the general-W plan (measure: seconds of planning per n, "
         "counted in plan_s, for faster transforms)", "measure|estimate", 0, 0, 0},
    };
    pr_cmd_spec_t spec = {"bench fast", "", "the fast forward paths against the dense reference: ratios, crossover n*, slope",
        "General W (random entries on the RoPE support), d = 2, B = 1, eps = 1e-6: fast execute time with\n"
        "the W plan made once (planning time beside it), dense time, their ratio, the crossover n*, the\n"
        "log-log slope over n = 2^12..2^18, the time share inside FFTW transforms, and a streamed run at\n"
        "n = 2^20 (symbols' spectra recomputed per execute) with its memory (peak_rss_gib: its own peak where\n"
        "Linux lets the peak be reset, peak_rss_own true; else the process's). Low-rank path on RoPE, d = 4,\n"
        "B = 1, eps = 1e-6: ratio and crossover. pred_* columns: the --algo auto cost model's predictions.\n"
        "Each time is the least of at least 3 runs, and of --rounds rounds over all sizes (what other\n"
        "jobs on the machine inflate least).\n"
        "The general-W plan is made with FFTW_MEASURE by default, as a plan reused across heads and calls\n"
        "would be (polyrope attn --fftw measure); --fftw estimate times FFTW's estimated plans instead.\n"
        "With $POLYROPE_FFTW_WISDOM set, measured plans are kept there and later runs skip the measuring.\n"
        "--heads H (general W): each size also plans H heads at once and times one execute of H heads (Q, K, V\n"
        "of H heads each); heads_s, per_head_s = heads_s / H and per_head_ratio = per_head_s / fast_s per row,\n"
        "heads_fftw_fraction the share of that execute inside transforms (which every head pays in full), and\n"
        "per_head_ratio at the largest n <= 2^16 in the summary (null where the heads' plan would stream).\n"
        "--kv-heads K (with --heads H, K dividing H) also times H heads over K kv heads (grouped-query: a\n"
        "group's Q heads share the sums and inverse transforms) on one plan: heads_gqa_s, per_head_ratio_gqa,\n"
        "heads_gqa_fftw_fraction, transforms_per_head_gqa (transforms_per_head: the same for H kv heads).\n"
        "--json general-W rows also give phases_s (null in low-rank rows), the wall time of the timed\n"
        "execute's phases: xhat (the transforms of v*X), products (pair spectra times those, summed per\n"
        "a-marginal; null where each group's are made in the inverse phase instead, products_in_inverse\n"
        "true: streamed plans, and kept ones whose xhat fits in 4 MiB), inverse (the inverse transforms,\n"
        "scaled and summed), divide (by the row sums).",
        opts, sizeof opts / sizeof opts[0]};
    int r = pr_cli_parse_nopos(&spec, argc, argv);
    if (r)
        return r < 0 ? 0 : r;
    c.seed = seed;
    c.dense_max = (int)dense_max;
    c.heads = (int)heads;
    if (kv_heads && (heads < 2 || heads % kv_heads))
        return pr_cli_fail("bench fast", "--kv-heads %ld needs --heads H > 1, a multiple of it (got --heads %ld)",
                           kv_heads, heads);
    c.kv_heads = kv_heads ? (int)kv_heads : c.heads;
    c.plan_flags = strcmp(fftw_plan, "estimate") ? PR_FAST_MEASURE : PR_FAST_ESTIMATE;
    if (quick) {
        max_log2 = max_log2 < 14 ? max_log2 : 14;
        skip_big = 1;
        rounds = pr_cli_given(&spec, "rounds") ? rounds : 1;
    }
    const size_t budget = (size_t)6 << 30;
    int st = PR_OK;
    /* general W */
    row_t gen[16];
    int ng = 0;
    st = sweep(gen, &ng, 8, (int)max_log2, 2, 0, &c, budget, (int)rounds, "general W");
    row_t big = {.n = 1 << 20};
    double big_rss = 0.0, big_wall = 0.0;
    int rss_reset = 0;
    if (!st && !skip_big) {
        fprintf(stderr, "bench fast: general W n=2^20, streamed (a few minutes)\n");
        rss_reset = peak_rss_reset();
        double t0 = pr_timing_wall();
        st = run(&big, &c, 2, budget, 0, 0);
        big_wall = pr_timing_wall() - t0;
        big_rss = pr_timing_peak_rss_mib() / 1024.0;
        int k = ng - 1;
        while (k > 0 && !gen[k].dense_measured)
            k--;
        double q = (double)big.n / gen[k].n;
        big.dense = gen[k].dense * q * q;
    }
    /* low-rank RoPE */
    row_t lr[16];
    int nl = 0;
    if (!st)
        st = sweep(lr, &nl, 6, quick ? 12 : 14, 4, 1, &c, budget, (int)rounds, "low-rank");
    if (st)
        return pr_cli_fail_status("bench fast", st, "benchmark run");
    double ncross_g = crossover(gen, ng), ncross_l = crossover(lr, nl);
    double sl = slope(gen, ng, 1 << 12, 1 << 18);
    double fftw = 0.0;
    int nf = 0;
    for (int k = 0; k < ng; k++)
        if (gen[k].n >= 1 << 12) {
            fftw += gen[k].fftw_frac;
            nf++;
        }
    fftw = nf ? fftw / nf : NAN;
    /* --heads: the per-head ratio at the largest n <= 2^16 (issue 16's size) */
    int ph_k = 0;
    for (int k = 0; k < ng; k++)
        if (gen[k].n <= 1 << 16)
            ph_k = k;
    int ph_n = ng ? gen[ph_k].n : 0;
    double ph_ratio = ng && gen[ph_k].heads_s > 0 ? gen[ph_k].heads_s / c.heads / gen[ph_k].fast : NAN;
    double ph_gqa = ng && gen[ph_k].gqa_s > 0 ? gen[ph_k].gqa_s / c.heads / gen[ph_k].fast : NAN;
    if (json) {
        printf("{\"bench\": \"fast\", \"B\": %g, \"eps\": %g, \"seed\": %ld, \"fftw\": \"%s\", \"rounds\": %ld, "
               "\"general\": {\"d\": 2, \"rows\": [", c.B, c.eps, seed, fftw_plan, rounds);
        print_rows(0, gen, ng, 1, c.heads, c.kv_heads);
        printf("], ");
        pr_cli_json_num("crossover_n", ncross_g, 6, ", ");
        pr_cli_json_num("slope_2e12_2e18", sl, 6, ", ");
        pr_cli_json_num("fftw_fraction", fftw, 6, "");
        if (c.heads > 1) {
            printf(", \"heads\": %d, \"per_head_ratio_n\": %d, ", c.heads, ph_n);
            pr_cli_json_num("per_head_ratio", ph_ratio, 4, "");
        }
        if (c.kv_heads < c.heads) {
            printf(", \"kv_heads\": %d, ", c.kv_heads);
            pr_cli_json_num("per_head_ratio_gqa", ph_gqa, 4, "");
        }
        if (!skip_big)
            printf(", \"n_2e20\": {\"fast_s\": %.4g, \"plan_s\": %.4g, \"wall_s\": %.4g, \"streamed\": %s, "
                   "\"plan_gib\": %.3f, \"peak_rss_gib\": %.3f, \"transforms\": %ld, \"degree\": %d, \"terms\": %.0f, "
                   "\"fftw_fraction\": %.3f, \"dense_extrapolated_s\": %.4g, \"xhat_gib\": %.3f, "
                   "\"powers_gib\": %.3f, \"kept_spectra_gib\": %.3f, \"peak_rss_own\": %s}",
                   big.fast, big.plan, big_wall, big.streamed ? "true" : "false", big.mem_gib, big_rss,
                   big.transforms, big.degree, big.terms, big.fftw_frac, big.dense, big.xhat_gib, big.pw_gib,
                   big.spec_gib, rss_reset ? "true" : "false");
        printf("}, \"lowrank\": {\"d\": 4, \"pos\": \"rope\", \"rows\": [");
        print_rows(1, lr, nl, 1, 1, 1);
        printf("], ");
        pr_cli_json_num("crossover_n", ncross_l, 6, "}}\n");
    } else {
        printf("general W, d = 2, B = %g, eps = %g (execute with the plan made once, FFTW %s; * = dense "
               "extrapolated)\n", c.B, c.eps, fftw_plan);
        printf("  %-8s %10s %10s %11s %9s %6s %4s %7s %6s %6s %10s %10s", "n", "fast_s", "plan_s", "dense_s",
               "dense/fast", "fftw", "g", "terms", "transf", "GiB", "pred_fast", "pred_dense");
        if (c.heads > 1)
            printf(" %10s %10s %9s", "heads_s", "per_head_s", "per_head");
        if (c.kv_heads < c.heads)
            printf(" %10s %9s", "gqa_s", "per_h_gqa");
        printf("\n");
        print_rows(0, gen, ng, 0, c.heads, c.kv_heads);
        if (c.heads > 1)
            printf("  %d heads on one plan at n = %d: %.4g s per head, %.3f of one head's execute\n", c.heads,
                   ph_n, ph_ratio * gen[ph_k].fast, ph_ratio);
        if (c.kv_heads < c.heads)
            printf("  %d heads over %d kv heads on one plan at n = %d: %.4g s per head, %.3f of one head's "
                   "execute\n", c.heads, c.kv_heads, ph_n, ph_gqa * gen[ph_k].fast, ph_gqa);
        printf("  crossover n* = %.0f   log-log slope 2^12..2^18 = %.3f   FFTW share (n >= 2^12) = %.2f\n",
               ncross_g, sl, fftw);
        if (!skip_big)
            printf("  n = 2^20: execute %.3g s (streamed %s, degree %d, %.0f terms, %ld transforms), plan %.3g s,"
                   " plan memory %.2f GiB, peak RSS %.2f GiB (%s), FFTW share %.2f, dense extrapolated %.3g s\n",
                   big.fast, big.streamed ? "yes" : "no", big.degree, big.terms, big.transforms, big.plan,
                   big.mem_gib, big_rss, rss_reset ? "this run's" : "the process's", big.fftw_frac, big.dense);
        if (!skip_big)
            printf("  memory at 2^20: %.2f GiB spectra of v*X per b-marginal and column, %.2f GiB sequences w_k for "
                   "streaming the symbols, %.2f GiB kept pair spectra (they would need %.1f GiB)\n", big.xhat_gib,
                   big.pw_gib, big.spec_gib, big.pairs * 16.0 * (big.n + 1) / 1073741824.0);
        printf("low-rank, RoPE, d = 4, B = %g, eps = %g\n", c.B, c.eps);
        printf("  %-8s %10s %10s %11s %9s %6s %4s %7s %6s %6s %10s %10s\n", "n", "fast_s", "plan_s", "dense_s",
               "dense/fast", "fftw", "g", "feats", "transf", "GiB", "pred_fast", "pred_dense");
        print_rows(1, lr, nl, 0, 1, 1);
        printf("  crossover n* = %.0f\n", ncross_l);
    }
    return 0;
}
