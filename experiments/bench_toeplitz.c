/* polyrope bench toeplitz: the Toeplitz engine against bare FFTW transforms of the same length
 * in the same run (target: within 1.25x), and the crossover n of the direct and FFT paths. */
#include <errno.h>
#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "commands.h"
#include "polyrope.h"

static const double target_ratio = 1.25;

/* Everything one size needs: the engine's plan and the bare FFTW baseline's buffers. */
typedef struct {
    long n, L, batch;
    pr_toeplitz_plan_t P;
    pr_toeplitz_work_t ws;
    fftw_plan fwd, inv;
    double *t, *X, *Y;           /* engine: symbol, batch inputs (n each), outputs */
    double *tpad, *Xpad, *out;   /* bare: embedded symbol, pre-padded inputs (L each), output (L) */
    fftw_complex *that, *spec;
} bench_size_t;

static void size_clear(bench_size_t *b)
{
    if (b->fwd)
        fftw_destroy_plan(b->fwd);
    if (b->inv)
        fftw_destroy_plan(b->inv);
    pr_toeplitz_work_clear(b->ws);
    pr_toeplitz_destroy(b->P);
    free(b->t); free(b->X); free(b->Y);
    fftw_free(b->tpad); fftw_free(b->Xpad); fftw_free(b->out);
    fftw_free(b->that); fftw_free(b->spec);
    memset(b, 0, sizeof *b);
}

static int size_init(bench_size_t *b, long n, long batch, unsigned flags, pr_rng_t rng)
{
    memset(b, 0, sizeof *b);
    int st = pr_toeplitz_plan(b->P, n, flags | PR_TOEPLITZ_FORCE_FFT);
    if (st)
        return st;
    long L = b->L = b->P->L;
    b->n = n;
    b->batch = batch;
    if ((st = pr_toeplitz_work_init(b->ws, b->P)))
        return st;
    size_t nf = (size_t)b->P->nfreq;
    b->t = malloc(sizeof(double) * (2 * n - 1));
    b->X = malloc(sizeof(double) * n * batch);
    b->Y = malloc(sizeof(double) * n * batch);
    b->tpad = fftw_malloc(sizeof(double) * L);
    b->Xpad = fftw_malloc(sizeof(double) * L * batch);
    b->out = fftw_malloc(sizeof(double) * L);
    b->that = fftw_malloc(sizeof(fftw_complex) * nf);
    b->spec = fftw_malloc(sizeof(fftw_complex) * nf);
    if (!b->t || !b->X || !b->Y || !b->tpad || !b->Xpad || !b->out || !b->that || !b->spec)
        return PR_ENOMEM;
    unsigned ff = flags & PR_TOEPLITZ_MEASURE ? FFTW_MEASURE : FFTW_ESTIMATE;
    b->fwd = fftw_plan_dft_r2c_1d((int)L, b->Xpad, b->spec, ff);
    b->inv = fftw_plan_dft_c2r_1d((int)L, b->spec, b->out, ff);
    if (!b->fwd || !b->inv)
        return PR_EFFTW;
    pr_rng_fill(b->t, 2 * n - 1, 1.0, rng);
    pr_rng_fill(b->X, n * batch, 1.0, rng);
    memset(b->tpad, 0, sizeof(double) * L);
    for (long l = -(n - 1); l < n; l++)
        b->tpad[l < 0 ? L + l : l] = b->t[l + n - 1];
    memset(b->Xpad, 0, sizeof(double) * L * batch);
    for (long k = 0; k < batch; k++)
        memcpy(b->Xpad + k * L, b->X + k * n, sizeof(double) * n);
    return PR_OK;
}

/* The baseline: one forward transform of the symbol, then per vector forward, pointwise
 * product, inverse; inputs already padded, no checks, no scaling, no copies. */
static int run_bare(void *arg)
{
    bench_size_t *b = arg;
    long nf = b->P->nfreq;
    fftw_execute_dft_r2c(b->fwd, b->tpad, b->that);
    for (long k = 0; k < b->batch; k++) {
        fftw_execute_dft_r2c(b->fwd, b->Xpad + k * b->L, b->spec);
        for (long f = 0; f < nf; f++) {
            double ar = b->spec[f][0], ai = b->spec[f][1], br = b->that[f][0], bi = b->that[f][1];
            b->spec[f][0] = ar * br - ai * bi;
            b->spec[f][1] = ar * bi + ai * br;
        }
        fftw_execute_dft_c2r(b->inv, b->spec, b->out);
    }
    return PR_OK;
}

static int run_engine(void *arg)
{
    bench_size_t *b = arg;
    return pr_toeplitz_apply_many(b->Y, 1, b->n, b->t, b->X, 1, b->n, b->batch,
                                  PR_TOEPLITZ_FULL, b->P, b->ws);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, long len)
{
    qsort(v, (size_t)len, sizeof *v, cmp_double);
    return len % 2 ? v[len / 2] : 0.5 * (v[len / 2 - 1] + v[len / 2]);
}

/* One product on a plan, for the direct/FFT crossover. */
typedef struct {
    const double *t, *x;
    double *y;
    const pr_toeplitz_plan_struct *P;
} one_product_t;

static int run_one(void *arg)
{
    one_product_t *o = arg;
    return pr_toeplitz_apply(o->y, 1, o->t, o->x, 1, PR_TOEPLITZ_FULL, o->P, NULL);
}

/* Times fa against fb. The machine is shared, so they alternate segment by segment (order
 * swapped every pair) and both see the same load: *ratio is the median over pairs of
 * time(fb)/time(fa), and *ta, *tb the best seconds per call. Each segment repeats its call
 * enough times to last ≥ 20 µs, so the clock's own cost does not count. At least 16 pairs,
 * then pairs until `budget` seconds have passed. */
static int time_pair(double *ratio, double *ta, double *tb, int (*fa)(void *), void *ca,
                     int (*fb)(void *), void *cb, double budget, double *pairs, long maxpairs)
{
    long reps = 1;
    int st = 0;
    for (;;) {
        double t0 = pr_timing_wall();
        for (long r = 0; r < reps && !st; r++)
            st = fa(ca);
        if (st || pr_timing_wall() - t0 >= 2e-5 || reps > (1L << 20))
            break;
        reps *= 2;
    }
    *ta = *tb = INFINITY;
    long np = 0;
    double t_end = pr_timing_wall() + budget;
    while (!st && np < maxpairs && (np < 16 || pr_timing_wall() < t_end)) {
        double d[2];
        for (int h = 0; h < 2; h++) {
            int first_a = (np % 2) == 0, use_a = h == 0 ? first_a : !first_a;
            double t0 = pr_timing_wall();
            for (long r = 0; r < reps && !st; r++)
                st = use_a ? fa(ca) : fb(cb);
            d[use_a ? 0 : 1] = (pr_timing_wall() - t0) / (double)reps;
        }
        *ta = fmin(*ta, d[0]);
        *tb = fmin(*tb, d[1]);
        pairs[np++] = d[1] / d[0];
    }
    *ratio = np ? median(pairs, np) : NAN;
    return st;
}

/* Parses a comma-separated list of sizes in [lo, hi]; returns the count or -1. */
static int parse_sizes(long *out, int max, const char *s, long lo, long hi)
{
    int k = 0;
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || end == s || v < lo || v > hi || k == max || (*end && *end != ','))
            return -1;
        out[k++] = v;
        s = *end ? end + 1 : end;
    }
    return k;
}

int pr_bench_toeplitz(int argc, char **argv)
{
    const char *cmd = "bench toeplitz";
    const char *sizes = "127,1000,4096,10007,65536", *xsizes = "2,4,8,12,16,24,32,48,64,96,128,192,256,384,512";
    const char *wisdom = NULL;
    long batch = 32, seed = 1;
    double budget = 0.3;
    int json = 0, measure = 0;
    pr_opt_t opts[] = {
        {"sizes", PR_OPT_STRING, &sizes, "comma-separated n for the engine-vs-FFTW comparison", 0, 0, 0, 0},
        {"crossover-sizes", PR_OPT_STRING, &xsizes, "comma-separated n for the direct-vs-FFT crossover", 0, 0, 0, 0},
        {"batch", PR_OPT_INT, &batch, "vectors per batch (one symbol, many x)", 0, 1, 4096, 0},
        {"time", PR_OPT_DOUBLE, &budget, "seconds of alternating timing per size", 0, 1e-3, 60, 0},
        {"measure", PR_OPT_FLAG, &measure, "plan with FFTW_MEASURE (and time candidate lengths)", 0, 0, 0, 0},
        {"wisdom", PR_OPT_STRING, &wisdom, "FFTW wisdom file, imported if it exists and exported at the end (every command also uses $" PR_TOEPLITZ_WISDOM_ENV ")", 0, 0, 0, 0},
        {"seed", PR_OPT_INT, &seed, "seed of the random inputs", 0, 0, 1e15, 0},
        {"json", PR_OPT_FLAG, &json, "print one JSON object instead of the table", 0, 0, 0, 0},
    };
    pr_cmd_spec_t spec = {cmd, "",
        "Toeplitz engine against bare FFTW transforms of the same length, and the direct/FFT crossover.",
        "For each n of --sizes, times a batch of products T x_k (one symbol, --batch vectors) with\n"
        "pr_toeplitz_apply_many on the FFT path, and the bare FFTW work for the same batch: one r2c\n"
        "of the symbol, then per vector r2c, pointwise product and c2r on pre-padded buffers of the\n"
        "same length L. Ratio = engine / bare; the target is <= 1.25. Both are timed in the same run,\n"
        "alternating call by call (the machine may be shared), and the ratio is the median over the\n"
        "pairs; the best times per batch are printed beside it. Then, for each n of\n"
        "--crossover-sizes, times one product on the direct and the FFT path (alternating the same\n"
        "way) and prints the crossover n* (the smallest tested n from which FFT is faster at every\n"
        "larger tested n), and the path pr_toeplitz_plan picks by its own plan-time timing.\n"
        "FFTW wisdom: --wisdom FILE, or for every polyrope command the environment variable\n"
        PR_TOEPLITZ_WISDOM_ENV " (imported before the command if the file exists, exported after).\n"
        "Use it with --measure: FFTW_MEASURE plans are then made once and reused.\n"
        "Exit status 0 whether or not the target is met (timings on a shared machine are a\n"
        "measurement, not a check); \"within_target\" in --json says whether it was.",
        opts, sizeof opts / sizeof opts[0]};
    int rc = pr_cli_parse_nopos(&spec, argc, argv);
    if (rc)
        return rc < 0 ? 0 : rc;
    long ns[64], xs[64];
    int nn = parse_sizes(ns, 64, sizes, 1, 1L << 24), nx = parse_sizes(xs, 64, xsizes, 1, 1L << 14);
    if (nn < 1)
        return pr_cli_fail(cmd, "--sizes must be up to 64 comma-separated integers in [1, 2^24], got '%s'", sizes);
    if (nx < 1)
        return pr_cli_fail(cmd, "--crossover-sizes must be up to 64 comma-separated integers in [1, 2^14], got '%s'", xsizes);
    /* $POLYROPE_FFTW_WISDOM is handled for every command by main; --wisdom adds a file */
    if (wisdom && access(wisdom, F_OK) == 0) {
        int st = pr_toeplitz_wisdom_import(wisdom);
        if (st)
            return pr_cli_fail_status(cmd, st, wisdom);
    }
    unsigned flags = measure ? PR_TOEPLITZ_MEASURE : PR_TOEPLITZ_ESTIMATE;
    pr_rng_t rng;
    pr_rng_init(rng, (uint64_t)seed);
    enum { maxpairs = 100000 };
    double *pairs = malloc(sizeof(double) * maxpairs);
    char *text = NULL;
    size_t text_len = 0;
    /* the report is written to memory and printed only when the whole run succeeded */
    FILE *out = pairs ? open_memstream(&text, &text_len) : NULL;
    int st = out ? PR_OK : PR_ENOMEM;
    const char *what = "timing buffers";

    if (!st && json)
        fprintf(out, "{\"bench\": \"toeplitz\", \"version\": \"%s\", \"commit\": \"%s\", \"batch\": %ld, "
                     "\"measure\": %s, \"target_ratio\": %.2f, \"engine\": [",
                pr_version(), pr_git_commit(), batch, measure ? "true" : "false", target_ratio);
    else if (!st)
        fprintf(out, "# engine vs bare FFTW: a batch of %ld products sharing one symbol (%s planning)\n"
                     "# bare_s, engine_s: best seconds per batch; ratio: median engine/bare over alternating pairs\n"
                     "%9s %9s %13s %13s %8s %11s %6s\n", batch, measure ? "FFTW_MEASURE" : "FFTW_ESTIMATE",
                "n", "L", "bare_s", "engine_s", "ratio", "transforms", "ok");
    double worst = 0;
    for (int a = 0; a < nn && !st; a++) {
        bench_size_t b;
        double ratio = NAN, tb = NAN, te = NAN;
        what = "setting up the engine and the baseline";
        st = size_init(&b, ns[a], batch, flags, rng);
        if (!st) {
            what = "engine";
            st = time_pair(&ratio, &tb, &te, run_bare, &b, run_engine, &b, budget, pairs, maxpairs);
        }
        /* the engine's own counters, over one more batch */
        long L = b.L, transforms = 0;
        if (!st) {
            b.ws->n_forward = b.ws->n_inverse = 0;
            st = run_engine(&b);
            transforms = b.ws->n_forward + b.ws->n_inverse;
        }
        size_clear(&b);
        if (st)
            break;
        worst = fmax(worst, ratio);
        if (json)
            fprintf(out, "%s{\"n\": %ld, \"L\": %ld, \"bare_s\": %.6g, \"engine_s\": %.6g, \"ratio\": %.4f, "
                         "\"transforms_per_batch\": %ld}", a ? ", " : "", ns[a], L, tb, te, ratio, transforms);
        else
            fprintf(out, "%9ld %9ld %13.6g %13.6g %8.3f %11ld %6s\n", ns[a], L, tb, te, ratio,
                    transforms, ratio <= target_ratio ? "yes" : "NO");
    }

    /* direct vs FFT for one product, and the path the plan picks by its own timing */
    if (!st && json)
        fprintf(out, "], \"max_ratio\": %.4f, \"within_target\": %s, \"crossover\": [", worst,
                worst <= target_ratio ? "true" : "false");
    else if (!st)
        fprintf(out, "max ratio %.3f (target <= %.2f): %s\n\n# direct vs FFT path, one product T x\n"
                     "%9s %13s %13s %12s %12s\n", worst, target_ratio,
                worst <= target_ratio ? "within" : "NOT within", "n", "direct_s", "fft_s", "direct/fft",
                "plan_picks");
    long nstar = -1, nplan = -1;
    for (int a = 0; a < nx && !st; a++) {
        long n = xs[a];
        pr_toeplitz_plan_t D, F, A;
        double *buf = malloc(sizeof(double) * 4 * n), ratio = NAN, td = NAN, tf = NAN;
        what = "crossover run";
        st = buf ? pr_toeplitz_plan(D, n, flags | PR_TOEPLITZ_FORCE_DIRECT) : PR_ENOMEM;
        if (!st)
            st = pr_toeplitz_plan(F, n, flags | PR_TOEPLITZ_FORCE_FFT);
        if (!st)
            st = pr_toeplitz_plan(A, n, flags);
        if (!st) {
            pr_rng_fill(buf, 3 * n, 1.0, rng);
            one_product_t od = {buf, buf + 2 * n, buf + 3 * n, D}, of = od;
            of.P = F;
            st = time_pair(&ratio, &td, &tf, run_one, &od, run_one, &of, budget, pairs, maxpairs);
        }
        int picks_direct = A->use_direct;
        free(buf);
        pr_toeplitz_destroy(D);
        pr_toeplitz_destroy(F);
        pr_toeplitz_destroy(A);
        if (st)
            break;
        /* ratio = fft/direct; the crossover is where FFT wins from then on (sizes in the order given) */
        nstar = ratio < 1 ? (nstar < 0 ? n : nstar) : -1;
        nplan = !picks_direct ? (nplan < 0 ? n : nplan) : -1;
        if (json)
            fprintf(out, "%s{\"n\": %ld, \"direct_s\": %.6g, \"fft_s\": %.6g, \"direct_over_fft\": %.4f, "
                         "\"plan_picks\": \"%s\"}", a ? ", " : "", n, td, tf, 1 / ratio,
                    picks_direct ? "direct" : "fft");
        else
            fprintf(out, "%9ld %13.6g %13.6g %12.3f %12s\n", n, td, tf, 1 / ratio,
                    picks_direct ? "direct" : "fft");
    }
    if (!st && json)
        fprintf(out, "], \"crossover_n\": %ld, \"plan_crossover_n\": %ld}\n", nstar, nplan);
    else if (!st)
        fprintf(out, "crossover n* = %ld (FFT faster at every tested n >= n*; -1: not within the sizes)\n"
                     "pr_toeplitz_plan's own timing switches to FFT at n = %ld\n", nstar, nplan);
    if (!st && wisdom) {
        what = wisdom;
        st = pr_toeplitz_wisdom_export(wisdom);
    }
    if (out)
        fclose(out);
    if (!st)
        fputs(text, stdout);
    free(text);
    free(pairs);
    return st ? pr_cli_fail_status(cmd, st, what) : 0;
}
