/* polyrope bench dense: the dense reference forward (and backward) against this machine's own
 * dgemm rate, measured in the same run, at n = --nmin, 2·nmin, ... up to --n. The forward must do
 * the two n×n×d products, 4 n²d flops; at the dgemm rate that is the floor, and the printed ratio
 * is floor time / forward time (issue 16: torch's float64 matmul-softmax-matmul takes about
 * 1/0.22 of the floor on 2 threads, so a forward within 0.25 of torch is a ratio ≥ 0.88). The
 * backward's five products are 10 n²d flops. Each n also gets its time per n² over the largest
 * n's: the fixed costs (thread start, tables, buffers) show as a factor above 1 at small n. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <omp.h>
#include "polyrope.h"
#include "cli.h"
#include "commands.h"

/* floor time / forward time at which the forward is within 0.25 of torch (0.22 / 0.25) */
#define DENSE_TARGET 0.88

/* dgemm on square matrices of side m with OpenBLAS's own threads (all cores) */
typedef struct {
    double *A, *B, *C;
    int m;
} gemm_t;

static int gemm_init(gemm_t *g, int m)
{
    size_t mm = (size_t)m * m;
    g->m = m;
    g->A = malloc(sizeof(double) * mm);
    g->B = malloc(sizeof(double) * mm);
    g->C = malloc(sizeof(double) * mm);
    if (!g->A || !g->B || !g->C)
        return PR_ENOMEM;
    pr_rng_t rng;
    pr_rng_init(rng, 1);
    pr_rng_fill(g->A, (long)mm, 1.0, rng);
    pr_rng_fill(g->B, (long)mm, 1.0, rng);
    return PR_OK;
}

static void gemm_clear(gemm_t *g)
{
    free(g->A); free(g->B); free(g->C);
}

/* wall and process CPU seconds of one product */
static void gemm_time(double *wall, double *cpu, gemm_t *g)
{
    int m = g->m;
    openblas_set_num_threads(omp_get_max_threads());
    double t = pr_timing_wall(), c = pr_timing_cpu();
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, m, 1.0, g->A, m, g->B, m, 0.0, g->C, m);
    *cpu = pr_timing_cpu() - c;
    *wall = pr_timing_wall() - t;
}

/* dgemm at the forward's own shapes: all scores Q Kᵀ (2 n² d flop) as 128-row panels
 * 128 × n × d, one panel per OpenMP thread at a time, OpenBLAS single-threaded inside */
static int panel_time(double *secs, const double *Q, const double *K, int n, int d)
{
    enum { ROWS = 128 };
    int nb = (n + ROWS - 1) / ROWS, ok = 1, saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
    double t = pr_timing_wall();
#pragma omp parallel reduction(&& : ok)
    {
        double *C = malloc(sizeof(double) * ROWS * (size_t)n);
        ok = C != 0;
#pragma omp for schedule(dynamic, 1)
        for (int b = 0; b < nb; b++) {
            int m = n - b * ROWS < ROWS ? n - b * ROWS : ROWS;
            if (C)
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, d, 1.0, Q + (size_t)b * ROWS * d, d,
                            K, d, 0.0, C, n);
        }
        free(C);
    }
    *secs = pr_timing_wall() - t;
    openblas_set_num_threads(saved);
    return ok ? PR_OK : PR_ENOMEM;
}

typedef struct {
    double *Q, *K, *V, *O, *lse, *dO, *dQ, *dK, *dV;
    pr_posw_t W;
    int n, d, has_W;
} fwd_t;

static void fwd_clear(fwd_t *f)
{
    free(f->Q); free(f->K); free(f->V); free(f->O); free(f->lse);
    free(f->dO); free(f->dQ); free(f->dK); free(f->dV);
    if (f->has_W)
        pr_posw_clear(f->W);
    memset(f, 0, sizeof *f);
}

/* inputs of a RoPE problem (Q, K, V and, with grads, dO) and room for its outputs */
static int fwd_init(fwd_t *f, int n, int d, int grads)
{
    size_t nd = (size_t)n * d, bytes = sizeof(double) * nd;
    memset(f, 0, sizeof *f);
    f->n = n;
    f->d = d;
    f->Q = malloc(bytes);
    f->K = malloc(bytes);
    f->V = malloc(bytes);
    f->O = malloc(bytes);
    f->lse = malloc(sizeof(double) * (size_t)n);
    int st = f->Q && f->K && f->V && f->O && f->lse ? PR_OK : PR_ENOMEM;
    if (!st && grads) {
        f->dO = malloc(bytes);
        f->dQ = malloc(bytes);
        f->dK = malloc(bytes);
        f->dV = malloc(bytes);
        st = f->dO && f->dQ && f->dK && f->dV ? PR_OK : PR_ENOMEM;
    }
    if (!st && !(st = pr_posw_init_rope(f->W, n, d, PR_ROPE_BASE_DEFAULT, PR_ROPE_INTERLEAVED)))
        f->has_W = 1;
    if (st) {
        fwd_clear(f);
        return st;
    }
    pr_rng_t rng;
    pr_rng_init(rng, 2);
    pr_rng_fill(f->Q, (long)nd, 1.0, rng);
    pr_rng_fill(f->K, (long)nd, 1.0, rng);
    pr_rng_fill(f->V, (long)nd, 1.0, rng);
    if (grads)
        pr_rng_fill(f->dO, (long)nd, 1.0, rng);
    return PR_OK;
}

/* wall and process CPU seconds of the forward (backward = 0) or of the backward on its output */
static int dense_time(double *wall, double *cpu, fwd_t *f, int backward)
{
    pr_attn_opts_t opts;
    pr_attn_opts_default(&opts, f->d);
    double t = pr_timing_wall(), c = pr_timing_cpu();
    int st = backward ? pr_dense_backward(f->dQ, f->dK, f->dV, 0, f->Q, f->K, f->V, f->W, f->O, f->lse, f->dO, f->n,
                                          f->d, &opts)
                      : pr_dense_forward(f->O, f->lse, f->Q, f->K, f->V, f->W, f->n, f->d, &opts);
    *cpu = pr_timing_cpu() - c;
    *wall = pr_timing_wall() - t;
    return st;
}

typedef struct {
    long n;
    double panel_s, fwd_s, fwd_cpu, bwd_s, bwd_cpu;   /* least over the reps */
    double square_rate, panel_rate, gemm_rate;         /* dgemm (flop/s): square, panels, the better */
    double gemm_cpu_rate;                              /* square, in process CPU time */
} row_t;

/* the measurements of one n alternate (square dgemm, panels, forward, backward) so that they all
 * see the same load on a shared machine; the fastest of reps counts */
static int run_n(row_t *r, gemm_t *g, int d, long reps, int backward)
{
    fwd_t f;
    int st = fwd_init(&f, (int)r->n, d, backward);
    double gemm_s = INFINITY, gemm_cpu = INFINITY, w, c;
    r->panel_s = r->fwd_s = r->fwd_cpu = r->bwd_s = r->bwd_cpu = INFINITY;
    for (long k = 0; !st && k < reps; k++) {
        gemm_time(&w, &c, g);
        gemm_s = fmin(gemm_s, w);
        gemm_cpu = fmin(gemm_cpu, c);
        if (!(st = panel_time(&w, f.Q, f.K, f.n, d)))
            r->panel_s = fmin(r->panel_s, w);
        if (!st && !(st = dense_time(&w, &c, &f, 0))) {
            r->fwd_s = fmin(r->fwd_s, w);
            r->fwd_cpu = fmin(r->fwd_cpu, c);
        }
        if (!st && backward && !(st = dense_time(&w, &c, &f, 1))) {
            r->bwd_s = fmin(r->bwd_s, w);
            r->bwd_cpu = fmin(r->bwd_cpu, c);
        }
    }
    fwd_clear(&f);
    /* the machine's dgemm rate: the better of square products and the forward's own shapes */
    double square = 2.0 * g->m * g->m * (double)g->m;
    r->square_rate = square / gemm_s;
    r->panel_rate = 2.0 * r->n * (double)r->n * d / r->panel_s;
    r->gemm_rate = fmax(r->square_rate, r->panel_rate);
    r->gemm_cpu_rate = square / gemm_cpu;
    return st;
}

/* floor time / measured time for `flops` at the dgemm rate (wall), and the same in CPU time */
static double floor_ratio(double flops, double secs, double rate) { return flops / rate / secs; }

static void print_row(const row_t *r, const row_t *big, int d, int json, int backward, int last)
{
    double n2 = (double)r->n * r->n, ff = 4.0 * n2 * d, fb = 10.0 * n2 * d;
    double fixed = r->fwd_s / n2 / (big->fwd_s / ((double)big->n * big->n));
    if (json) {
        printf("{\"n\": %ld, \"forward_s\": %.6f, \"forward_gflops\": %.3f, \"ratio\": %.4f, \"ratio_cpu\": %.4f, "
               "\"dgemm_gflops\": %.3f, \"forward_ns_per_n2\": %.4f, \"forward_fixed_factor\": %.4f",
               r->n, r->fwd_s, ff / r->fwd_s * 1e-9, floor_ratio(ff, r->fwd_s, r->gemm_rate),
               floor_ratio(ff, r->fwd_cpu, r->gemm_cpu_rate), r->gemm_rate * 1e-9, r->fwd_s / n2 * 1e9, fixed);
        if (backward)
            printf(", \"backward_s\": %.6f, \"backward_ratio\": %.4f, \"backward_ratio_cpu\": %.4f, "
                   "\"backward_ns_per_n2\": %.4f, \"backward_fixed_factor\": %.4f",
                   r->bwd_s, floor_ratio(fb, r->bwd_s, r->gemm_rate), floor_ratio(fb, r->bwd_cpu, r->gemm_cpu_rate),
                   r->bwd_s / n2 * 1e9, r->bwd_s / n2 / (big->bwd_s / ((double)big->n * big->n)));
        printf("}%s", last ? "" : ", ");
        return;
    }
    printf("%7ld %10.4f %8.3f %8.3f %8.2f %8.3f", r->n, r->fwd_s, floor_ratio(ff, r->fwd_s, r->gemm_rate),
           floor_ratio(ff, r->fwd_cpu, r->gemm_cpu_rate), r->fwd_s / n2 * 1e9, fixed);
    if (backward)
        printf(" %10.4f %8.3f %8.3f %8.2f %8.3f", r->bwd_s, floor_ratio(fb, r->bwd_s, r->gemm_rate),
               floor_ratio(fb, r->bwd_cpu, r->gemm_cpu_rate), r->bwd_s / n2 * 1e9,
               r->bwd_s / n2 / (big->bwd_s / ((double)big->n * big->n)));
    printf("\n");
}

/* the forward's own memory at n = mem_n: peak RSS over the RSS just before the call, when Q, K,
 * V, O and W (2d sequences of length 2n-1 for RoPE) are already resident. It runs first, so that
 * the high-water mark is its own. */
static int memory_run(double *mib, double *secs, double *peak, long mem_n, int d)
{
    fwd_t f;
    double cpu;
    int st = fwd_init(&f, (int)mem_n, d, 0);
    if (st)
        return st;
    double before = pr_timing_rss_mib();
    st = dense_time(secs, &cpu, &f, 0);
    fwd_clear(&f);
    *peak = pr_timing_peak_rss_mib();
    *mib = *peak - before;
    return st;
}

int pr_bench_dense(int argc, char **argv)
{
    long n = 8192, nmin = 4096, d = 64, reps = 3, mem_n = 65536;
    int json = 0, memory = 0, backward = 0;
    pr_opt_t opts[] = {
        {"n", PR_OPT_INT, &n, "largest sequence length timed", 0, 1, 1 << 20, 0},
        {"nmin", PR_OPT_INT, &nmin, "smallest; every nmin * 2^k below --n is timed too (--nmin 256: the fixed costs)", 0, 1, 1 << 20, 0},
        {"d", PR_OPT_INT, &d, "head dimension (even: RoPE)", 0, 2, 4096, 0},
        {"reps", PR_OPT_INT, &reps, "runs of each measurement; the fastest counts", 0, 1, 100, 0},
        {"backward", PR_OPT_FLAG, &backward, "time the dense backward too (10 n^2 d flops)", 0, 0, 0, 0},
        {"memory", PR_OPT_FLAG, &memory, "first run the forward at --mem-n x --d and report its memory (a full run: minutes)", 0, 0, 0, 0},
        {"mem-n", PR_OPT_INT, &mem_n, "sequence length of the --memory run", 0, 1, 1 << 22, 0},
        {"json", PR_OPT_FLAG, &json, "print one JSON object", 0, 0, 0, 0},
    };
    pr_cmd_spec_t spec = {"bench dense", "",
        "The dense reference forward (factorised RoPE, all cores) against this machine's dgemm rate.",
        "At each n (--nmin, 2 nmin, ... and --n), alternating, the fastest of --reps runs each: dgemm\n"
        "on square matrices of side 2048 (OpenBLAS threads on all cores) and at the forward's shapes\n"
        "(the scores Q K^T in 128-row panels, one per core); the dgemm rate is the better of the two.\n"
        "The forward must do 4 n^2 d flops: ratio = that at the dgemm rate (the floor) / the forward's\n"
        "time, target >= 0.88 (torch's float64 matmul-softmax-matmul takes about 1/0.22 of the floor on\n"
        "2 threads: 0.88 is within 0.25 of torch). ratio_cpu is the same in process CPU time, which\n"
        "other jobs on a shared machine distort less. ns/n^2 is the time over n^2, and fixed its\n"
        "value over the largest n's: above 1, fixed costs. --backward adds the dense backward\n"
        "(10 n^2 d flops). JSON: the top-level keys are the largest n's, \"rows\" has every n. With\n"
        "--memory, the forward also runs at n = --mem-n: its own memory (peak RSS over the RSS before\n"
        "the call; target < 256 MiB at 65536 x 64) and the whole process's peak RSS are reported.",
        opts, sizeof opts / sizeof opts[0]};
    int rc = pr_cli_parse_nopos(&spec, argc, argv);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (d % 2)
        return pr_cli_fail(spec.name, "--d %ld: RoPE needs an even head dimension d", d);
    if (nmin > n)
        return pr_cli_fail(spec.name, "--nmin %ld exceeds --n %ld: give --nmin <= --n", nmin, n);
    double mem_mib = NAN, mem_s = NAN, peak_mib = NAN;
    double inputs_mib = 4.0 * mem_n * d * 8 / 1048576.0, w_mib = 2.0 * d * (2.0 * mem_n - 1) * 8 / 1048576.0;
    int st = memory ? memory_run(&mem_mib, &mem_s, &peak_mib, mem_n, (int)d) : PR_OK;
    if (st)
        return pr_cli_fail_status(spec.name, st, "dense forward, --memory run");
    enum { SIDE = 2048, MAXROWS = 24 };
    row_t rows[MAXROWS];
    int nr = 0;
    for (long m = nmin; m < n && nr < MAXROWS - 1; m *= 2)
        rows[nr++].n = m;
    rows[nr++].n = n;
    gemm_t g;
    memset(&g, 0, sizeof g);
    st = gemm_init(&g, SIDE);
    for (int k = 0; !st && k < nr; k++)
        st = run_n(&rows[k], &g, (int)d, reps, backward);
    gemm_clear(&g);
    if (st)
        return pr_cli_fail_status(spec.name, st, "dense forward");
    const row_t *big = &rows[nr - 1];
    double ff = 4.0 * n * (double)n * d;
    int threads = omp_get_max_threads();
    if (json) {
        /* the first-round keys, at the largest n */
        printf("{\"bench\": \"dense\", \"n\": %ld, \"d\": %ld, \"threads\": %d, \"dgemm_gflops\": %.3f, "
               "\"dgemm_square_gflops\": %.3f, \"dgemm_panel_gflops\": %.3f, \"forward_s\": %.6f, \"forward_gflops\": %.3f, \"ratio\": %.4f, \"ratio_cpu\": %.4f, "
               "\"target\": %.2f, \"rows\": [",
               n, d, threads, big->gemm_rate * 1e-9, big->square_rate * 1e-9, big->panel_rate * 1e-9, big->fwd_s, ff / big->fwd_s * 1e-9,
               floor_ratio(ff, big->fwd_s, big->gemm_rate), floor_ratio(ff, big->fwd_cpu, big->gemm_cpu_rate),
               DENSE_TARGET);
        for (int k = 0; k < nr; k++)
            print_row(&rows[k], big, (int)d, 1, backward, k == nr - 1);
        printf("]");
        if (memory)
            printf(", \"mem_n\": %ld, \"mem_forward_s\": %.3f, \"forward_mem_mib\": %.1f, \"peak_rss_mib\": %.1f, "
                   "\"qkvo_mib\": %.1f, \"w_mib\": %.1f, \"mem_target_mib\": 256",
                   mem_n, mem_s, mem_mib, peak_mib, inputs_mib, w_mib);
        printf("}\n");
        return 0;
    }
    printf("dense reference, RoPE, d = %ld, %d threads; dgemm floor %.2f GFLOP/s at n = %ld (target ratio >= %.2f)\n",
           d, threads, big->gemm_rate * 1e-9, n, DENSE_TARGET);
    printf("%7s %10s %8s %8s %8s %8s", "n", "forward_s", "ratio", "cpu", "ns/n^2", "fixed");
    if (backward)
        printf(" %10s %8s %8s %8s %8s", "backward_s", "ratio", "cpu", "ns/n^2", "fixed");
    printf("\n");
    for (int k = 0; k < nr; k++)
        print_row(&rows[k], big, (int)d, 0, backward, k == nr - 1);
    if (memory)
        printf("memory, forward n=%ld d=%ld:    %8.1f MiB over its inputs (target < 256); process peak %.1f MiB\n"
               "                                   (of which Q, K, V, O %.1f MiB and RoPE W sequences %.1f MiB)\n",
               mem_n, d, mem_mib, peak_mib, inputs_mib, w_mib);
    return 0;
}
