/* polyrope bench dense: the dense reference forward against this machine's own dgemm rate,
 * measured in the same run. Effective rate = 4 n² d / time (the two n×n×d products the
 * forward must do); the ratio to dgemm is what the target (≥ 0.40) is about. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <omp.h>
#include "polyrope.h"
#include "cli.h"
#include "commands.h"

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

/* seconds for one product */
static double gemm_time(gemm_t *g)
{
    int m = g->m;
    openblas_set_num_threads(omp_get_max_threads());
    double t = pr_timing_wall();
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, m, 1.0, g->A, m, g->B, m, 0.0, g->C, m);
    return pr_timing_wall() - t;
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
    double *Q, *K, *V, *O;
    pr_posw_t W;
    int n, d;
} fwd_t;

static int fwd_init(fwd_t *f, int n, int d)
{
    size_t nd = (size_t)n * d;
    f->n = n;
    f->d = d;
    f->Q = malloc(sizeof(double) * nd);
    f->K = malloc(sizeof(double) * nd);
    f->V = malloc(sizeof(double) * nd);
    f->O = malloc(sizeof(double) * nd);
    int st = f->Q && f->K && f->V && f->O ? pr_posw_init_rope(f->W, n, d, PR_ROPE_BASE_DEFAULT, PR_ROPE_INTERLEAVED) : PR_ENOMEM;
    if (st)
        return st;
    pr_rng_t rng;
    pr_rng_init(rng, 2);
    pr_rng_fill(f->Q, (long)nd, 1.0, rng);
    pr_rng_fill(f->K, (long)nd, 1.0, rng);
    pr_rng_fill(f->V, (long)nd, 1.0, rng);
    return PR_OK;
}

static void fwd_clear(fwd_t *f)
{
    free(f->Q); free(f->K); free(f->V); free(f->O);
    pr_posw_clear(f->W);
}

static int fwd_time(double *secs, fwd_t *f)
{
    pr_attn_opts_t opts;
    pr_attn_opts_default(&opts, f->d);
    double t = pr_timing_wall();
    int st = pr_dense_forward(f->O, 0, f->Q, f->K, f->V, f->W, f->n, f->d, &opts);
    *secs = pr_timing_wall() - t;
    return st;
}

int pr_bench_dense(int argc, char **argv)
{
    long n = 8192, d = 64, reps = 3, mem_n = 65536;
    int json = 0, memory = 0;
    pr_opt_t opts[] = {
        {"n", PR_OPT_INT, &n, "sequence length of the timed forward", 0, 1, 1 << 20, 0},
        {"d", PR_OPT_INT, &d, "head dimension (even: RoPE)", 0, 2, 4096, 0},
        {"reps", PR_OPT_INT, &reps, "runs of each measurement; the fastest counts", 0, 1, 100, 0},
        {"memory", PR_OPT_FLAG, &memory, "first run the forward at --mem-n x --d and report its memory (a full run: minutes)", 0, 0, 0, 0},
        {"mem-n", PR_OPT_INT, &mem_n, "sequence length of the --memory run", 0, 1, 1 << 22, 0},
        {"json", PR_OPT_FLAG, &json, "print one JSON object", 0, 0, 0, 0},
    };
    pr_cmd_spec_t spec = {"bench dense", "",
        "The dense reference forward (factorised RoPE, all cores) against this machine's dgemm rate.",
        "All rates are measured in this run, alternating, the fastest of --reps runs each: dgemm on\n"
        "square matrices of side 2048 (OpenBLAS threads on all cores) and at the forward's shapes\n"
        "(the scores Q K^T in 128-row panels, one per core); the dgemm rate is the better of the two.\n"
        "The forward's effective rate is 4 n^2 d / time; the ratio forward/dgemm is printed\n"
        "(target >= 0.40). With --memory,\n"
        "the forward also runs at n = --mem-n: its own memory (peak RSS over the RSS before the\n"
        "call; target < 256 MiB at 65536 x 64) and the whole process's peak RSS are reported.",
        opts, sizeof opts / sizeof opts[0]};
    int rc = pr_cli_parse_nopos(&spec, argc, argv);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (d % 2)
        return pr_cli_fail(spec.name, "--d %ld: RoPE needs an even head dimension d", d);

    /* the forward's own memory: peak RSS over the RSS just before the call, when Q, K, V, O
     * and W (2d sequences of length 2n-1 for RoPE) are already resident. It runs first, so
     * that the high-water mark is its own. */
    double mem_mib = NAN, mem_s = NAN, before_mib = NAN, inputs_mib = 4.0 * mem_n * d * 8 / 1048576.0;
    double w_mib = 2.0 * d * (2.0 * mem_n - 1) * 8 / 1048576.0;
    fwd_t f;
    memset(&f, 0, sizeof f);
    int st = PR_OK;
    if (memory) {
        if (!(st = fwd_init(&f, (int)mem_n, (int)d))) {
            before_mib = pr_timing_rss_mib();
            st = fwd_time(&mem_s, &f);
        }
        fwd_clear(&f);
        if (st)
            return pr_cli_fail_status(spec.name, st, "dense forward, --memory run");
        mem_mib = pr_timing_peak_rss_mib();
    }
    /* the two measurements alternate, so that both see the same load on a shared machine */
    enum { SIDE = 2048 };
    double gemm_s = INFINITY, panel_s = INFINITY, fwd_s = INFINITY, t;
    gemm_t g;
    memset(&g, 0, sizeof g);
    st = gemm_init(&g, SIDE);
    if (!st)
        st = fwd_init(&f, (int)n, (int)d);
    for (long r = 0; !st && r < reps; r++) {
        gemm_s = fmin(gemm_s, gemm_time(&g));
        if (!(st = panel_time(&t, f.Q, f.K, (int)n, (int)d)))
            panel_s = fmin(panel_s, t);
        if (!st && !(st = fwd_time(&t, &f)))
            fwd_s = fmin(fwd_s, t);
    }
    gemm_clear(&g);
    fwd_clear(&f);
    if (st)
        return pr_cli_fail_status(spec.name, st, "dense forward");
    /* the machine's dgemm rate: the better of square products and the forward's own shapes */
    double square_rate = 2.0 * SIDE * SIDE * (double)SIDE / gemm_s, panel_rate = 2.0 * n * (double)n * d / panel_s;
    double gemm_rate = fmax(square_rate, panel_rate);
    double fwd_rate = 4.0 * n * (double)n * d / fwd_s, ratio = fwd_rate / gemm_rate;
    int threads = omp_get_max_threads();
    if (json) {
        printf("{\"bench\": \"dense\", \"n\": %ld, \"d\": %ld, \"threads\": %d, \"dgemm_gflops\": %.3f, "
               "\"dgemm_square_gflops\": %.3f, \"dgemm_panel_gflops\": %.3f, "
               "\"forward_s\": %.6f, \"forward_gflops\": %.3f, \"ratio\": %.4f, \"target\": 0.40",
               n, d, threads, gemm_rate * 1e-9, square_rate * 1e-9, panel_rate * 1e-9, fwd_s, fwd_rate * 1e-9, ratio);
        if (memory)
            printf(", \"mem_n\": %ld, \"mem_forward_s\": %.3f, \"forward_mem_mib\": %.1f, \"peak_rss_mib\": %.1f, "
                   "\"qkvo_mib\": %.1f, \"w_mib\": %.1f, \"mem_target_mib\": 256",
                   mem_n, mem_s, mem_mib - before_mib, mem_mib, inputs_mib, w_mib);
        printf("}\n");
    } else {
        printf("dgemm, square 2048^3 (%d threads):  %8.2f GFLOP/s\n", threads, square_rate * 1e-9);
        printf("dgemm, panels 128 x %ld x %ld:     %8.2f GFLOP/s (all scores Q K^T)\n", n, d, panel_rate * 1e-9);
        printf("dense forward n=%ld d=%ld:       %8.2f GFLOP/s effective (4 n^2 d / %.4f s)\n", n, d,
               fwd_rate * 1e-9, fwd_s);
        printf("ratio forward / best dgemm:        %8.3f   (target >= 0.40)\n", ratio);
        if (memory)
            printf("memory, forward n=%ld d=%ld:    %8.1f MiB over its inputs (target < 256); process peak %.1f MiB\n"
                   "                                   (of which Q, K, V, O %.1f MiB and RoPE W sequences %.1f MiB)\n",
                   mem_n, d, mem_mib - before_mib, mem_mib, inputs_mib, w_mib);
    }
    return 0;
}
