/* polyrope attn through the built binary ($POLYROPE): outputs equal the library's on the same
 * generated or .npy inputs; every bad input (NaN/Inf, odd d with RoPE, n = 0, mismatched
 * shapes, bad .npy, the fast paths' refusals) is one line on stderr and exit status 2. */
#include <float.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include "polyrope.h"
#include "pr_test.h"
#include "pr_test_cli.h"

/* a bad invocation: exit 2, exactly one line on stderr containing `must` */
static void bad(const char *args, const char *must)
{
    int rc = pr_test_cli_run("cli", args);
    PR_CHECK(rc == 2 && pr_test_lines(pr_test_cli_err) == 1 && strstr(pr_test_cli_err, must) && !pr_test_cli_out[0],
             "polyrope %s: exit %d, stderr '%s' (want exit 2, one line containing '%s')", args, rc, pr_test_cli_err,
             must);
}

static void write2(const char *path, const double *x, long r, long c)
{
    long shape[2] = {r, c};
    if (pr_npy_write(path, x, 2, shape))
        abort();
}

static double *read_expect(const char *path, int ndim, const long *shape)
{
    double *x;
    int st = pr_npy_read_shape(&x, path, ndim, shape);
    PR_CHECK(st == PR_OK, "%s: %s", path, pr_strerror(st));
    return x;
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* a float64 .npy (version 1.0) of the given shape with only `rows` rows of its data: the header
 * alone when rows = 0, the data cut short otherwise */
static void header_only(const char *path, const char *shape, size_t rows, size_t row_len)
{
    char dict[128];
    int len = snprintf(dict, sizeof dict, "{'descr': '<f8', 'fortran_order': False, 'shape': %s, }", shape);
    while ((10 + len + 1) % 64)
        dict[len++] = ' ';
    dict[len++] = '\n';
    FILE *f = fopen(path, "wb");
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(len & 0xff), (unsigned char)(len >> 8)};
    if (!f || fwrite(pre, 1, 10, f) != 10 || fwrite(dict, 1, (size_t)len, f) != (size_t)len)
        abort();
    for (size_t i = 0; i < rows * row_len; i++) {
        double x = 0.25;
        if (fwrite(&x, 8, 1, f) != 1)
            abort();
    }
    fclose(f);
}

/* --max-mem is checked on the files' headers before any data is read: a file whose header is
 * past the limit and whose data is short is refused for its size, not read (it was read whole
 * first: the refusal said "truncated"); within the limit its shortness is still found */
static void sizes_before_data(void)
{
    header_only("cli_big_q.npy", "(4, 65536, 64)", 3, 64);
    bad("attn --q cli_big_q.npy --k cli_big_q.npy --v cli_big_q.npy --max-mem 0.05", "raise --max-mem to");
    header_only("cli_big_q2.npy", "(262144, 64)", 3, 64);
    bad("attn --q cli_big_q2.npy --max-mem 0.05", "raise --max-mem to");
    header_only("cli_big_w.npy", "(131071, 32, 32)", 0, 0);
    bad("attn --w cli_big_w.npy --max-mem 0.05", "raise --max-mem to");
    header_only("cli_short_q.npy", "(16, 4)", 3, 4);
    bad("attn --q cli_short_q.npy", "cli_short_q.npy: ");
    PR_CHECK(strstr(pr_test_cli_err, pr_strerror(PR_ENPY_TRUNCATED)) != NULL, "a short file within the limit: '%s'",
             pr_test_cli_err);
}

/* Hostile sizes and files (issue 12): each is refused before any work (exit 2, one line naming
 * the limit and the option that raises it, or both disagreeing values), and no output is left. */
static void hostile(pr_rng_t rng)
{
    /* resource limits: memory of the buffers, of a plan; work of the dense runs and a plan */
    bad("attn --n 1000000 --d 65536", "raise --max-mem to");
    bad("attn --n 67108864 --d 16 --algo fft", "raise --max-mem to");
    bad("attn --n 67108864 --d 65536 --backward --pos general", "raise --max-mem to");
    bad("attn --n 4096 --d 16 --max-work 1e6", "past the limit --max-work 1e+06: raise --max-work to");
    bad("attn --n 8000 --d 16 --algo fft --check --max-work 1e9", "or drop --check");
    bad("attn --n 64 --d 16 --certify --max-work 1e6", "or drop --certify");
    bad("attn --algo fft --pos general --d 64 --n 16 --eps 1e-3 --B 2", "more than this machine can address");
    bad("attn --algo fft --pos general --d 2 --n 64 --max-work 1e3", "raise --max-work to");
    bad("attn --algo lowrank --d 64 --n 64 --B 3 --eps 1e-8 --backward", "more than this machine can address");
    bad("attn --algo lowrank --d 16 --n 64 --backward --max-mem 0.001", "raise --max-mem to");
    bad("attn --algo fft --d 2 --n 4096 --max-mem 1e-3", "raise --max-mem to");
    /* the advertised --degree range is the one that is fitted; inside it, a degree double cannot
     * carry says so */
    bad("attn --degree 1000 --algo fft", "--degree must lie in [0, 170]");
    bad("attn --degree 100 --algo fft --d 2 --n 16", "use a lower --degree");
    bad("attn --degree 60 --algo fft --d 2 --n 16", "use a lower --degree");
    /* an infinite floor: R is too large for double, not "use --eps inf" */
    bad("attn --n 8 --d 4 --eps 1e-300 --B 100 --algo fft", "too large for double");
    bad("attn --n 16 --d 2 --B 1e150 --algo lowrank --backward", "too large for double");
    /* a W file against --n / --d: both values named */
    long s3[3] = {31, 4, 4};
    double *w3 = malloc(sizeof(double) * 31 * 16);
    pr_rng_fill(w3, 31 * 16, 1.0, rng);
    PR_CHECK_OK(pr_npy_write("cli_w31.npy", w3, 3, s3));
    free(w3);
    bad("attn --n 8 --w cli_w31.npy", "means n = 16, d = 4, but --n 8");
    bad("attn --d 2 --w cli_w31.npy", "means n = 16, d = 4, but --n 256 --d 2");
    PR_CHECK(pr_test_cli_run("cli", "attn --n 16 --d 4 --w cli_w31.npy") == 0, "agreeing --n --d --w: %s", pr_test_cli_err);
    /* outputs: decided before the work, none left by a failing run */
    mkdir("cli_o2", 0777);
    mkdir("cli_o2/dq.npy", 0777);
    remove("cli_o2/o.npy");
    bad("attn --n 16 --backward --out cli_o2", "cli_o2/dq.npy is a directory");
    PR_CHECK(!exists("cli_o2/o.npy"), "attn --backward --out DIR with DIR/dq.npy a directory left DIR/o.npy");
    FILE *f = fopen("cli_o3", "w");
    if (f)
        fclose(f);
    bad("attn --n 16 --out cli_o3", "not a directory");
    bad("attn --n 16 --out cli_o3/x", "cannot create the directory");
    bad("attn --n 16 --out ''", "empty directory name");
    remove("cli_o4/o.npy");
    rmdir("cli_o4");
    setenv("POLYROPE_FFTW_WISDOM", "cli_no_such_dir/w", 1);
    int rc = pr_test_cli_run("cli", "attn --n 16 --out cli_o4");
    unsetenv("POLYROPE_FFTW_WISDOM");
    PR_CHECK(rc == 2 && !pr_test_cli_out[0] && pr_test_lines(pr_test_cli_err) == 1 && !exists("cli_o4"),
             "bad $POLYROPE_FFTW_WISDOM: exit %d, stdout '%s', stderr '%s', cli_o4 %s", rc, pr_test_cli_out,
             pr_test_cli_err, exists("cli_o4") ? "written" : "absent");
    /* a run that succeeds leaves only its outputs (no temporaries) */
    PR_CHECK(pr_test_cli_run("cli", "attn --n 16 --d 2 --pos general --algo fft --backward --out cli_o5") == 0,
             "--out cli_o5: %s", pr_test_cli_err);
    const char *outs[] = {"o", "dq", "dk", "dv", "dw"};
    for (int i = 0; i < 5; i++) {
        char path[64];
        snprintf(path, sizeof path, "cli_o5/%s.npy", outs[i]);
        PR_CHECK(exists(path), "--out cli_o5: no %s", path);
    }
    PR_CHECK(pr_test_cli_run("cli", "attn --n 16 --out cli_o5") == 0, "--out over earlier outputs: %s", pr_test_cli_err);
    /* small and degenerate sizes run */
    const char *tiny[] = {"--n 1 --d 2 --algo fft", "--n 1 --d 2 --algo lowrank --backward",
                          "--B 0 --algo fft --n 16 --d 2 --backward", "--n 1 --d 1 --pos identity --algo fft --backward",
                          "--B 0 --algo auto --n 16 --d 2 --backward"};
    for (int i = 0; i < 5; i++) {
        char args[160];
        snprintf(args, sizeof args, "attn %s", tiny[i]);
        PR_CHECK(pr_test_cli_run("cli", args) == 0, "polyrope %s: %s", args, pr_test_cli_err);
    }
}

int main(void)
{
    if (!getenv("POLYROPE")) {
        fprintf(stderr, "test_attn_cli: set POLYROPE to the polyrope binary (meson test does)\n");
        return 1;
    }
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_attn_cli", 20261123));

    /* generated inputs: the binary's outputs equal the library's on the same stream */
    {
        int n = 37, d = 6;
        size_t nd = (size_t)n * d, L = 2 * (size_t)n - 1;
        int rc = pr_test_cli_run("cli", "attn --n 37 --d 6 --B 1.5 --seed 7 --pos general --causal --alibi 0.2 --backward "
                     "--out cli_gen --json");
        PR_CHECK(rc == 0 && !pr_test_cli_err[0], "generated run: exit %d, stderr %s", rc, pr_test_cli_err);
        PR_CHECK(pr_test_lines(pr_test_cli_out) == 1 && pr_test_cli_out[0] == '{' && strstr(pr_test_cli_out, "\"n\": 37") &&
                 strstr(pr_test_cli_out, "\"algo\": \"dense\"") && strstr(pr_test_cli_out, "\"eps\": null") &&
                 strstr(pr_test_cli_out, "\"grad_err_inf\": null") && strstr(pr_test_cli_out, "\"time_s\": "),
                 "json: %s", pr_test_cli_out);
        double *Q = malloc(sizeof(double) * nd), *K = malloc(sizeof(double) * nd), *V = malloc(sizeof(double) * nd);
        double *dO = malloc(sizeof(double) * nd), *O = malloc(sizeof(double) * nd), *lse = malloc(sizeof(double) * n);
        double *dQ = malloc(sizeof(double) * nd), *dK = malloc(sizeof(double) * nd), *dV = malloc(sizeof(double) * nd);
        double *beta = malloc(sizeof(double) * L), *w3 = malloc(sizeof(double) * L * d * d);
        pr_rng_t gen;
        pr_rng_init(gen, 7);
        pr_rng_fill(Q, (long)nd, 1.5, gen);
        pr_rng_fill(K, (long)nd, 1.5, gen);
        pr_rng_fill(V, (long)nd, 1.5, gen);
        pr_posw_t W;
        PR_CHECK_OK(pr_posw_init_general(W, n, d, gen));
        pr_rng_fill(dO, (long)nd, 1.0, gen);
        double *dw = malloc(sizeof(double) * W->s * L);
        pr_attn_opts_t opts;
        pr_attn_opts_default(&opts, d);
        opts.causal = 1;
        PR_CHECK_OK(pr_bias_alibi(beta, n, 0.2));
        opts.beta = beta;
        PR_CHECK_OK(pr_dense_forward(O, lse, Q, K, V, W, n, d, &opts));
        PR_CHECK_OK(pr_dense_backward(dQ, dK, dV, dw, Q, K, V, W, O, lse, dO, n, d, &opts));
        long s2[2] = {n, d}, s3[3] = {(long)L, d, d};
        double *o = read_expect("cli_gen/o.npy", 2, s2), *dq = read_expect("cli_gen/dq.npy", 2, s2);
        double *dk = read_expect("cli_gen/dk.npy", 2, s2), *dv = read_expect("cli_gen/dv.npy", 2, s2);
        double *dwf = read_expect("cli_gen/dw.npy", 3, s3);
        /* the forward is deterministic (one thread per query block); the backward's dQ and dw
         * sum per-thread parts, whose split may differ: a few rounding steps of the largest
         * gradient entry */
        PR_CHECK(o && !memcmp(o, O, sizeof(double) * nd), "o.npy differs from the library's O");
        pr_posw_struct G = *W;
        G.w = dw;
        pr_posw_to_dense(w3, &G);
        double scale = fmax(pr_vec_max_abs(dQ, nd), fmax(pr_vec_max_abs(dK, nd), pr_vec_max_abs(dw, W->s * L)));
        double tol = 16 * n * (DBL_EPSILON / 2) * fmax(scale, 1);
        if (dq && dk && dv && dwf) {
            double e = fmax(fmax(pr_vec_max_abs_diff(dq, dQ, nd), pr_vec_max_abs_diff(dk, dK, nd)),
                            fmax(pr_vec_max_abs_diff(dv, dV, nd), pr_vec_max_abs_diff(dwf, w3, L * d * d)));
            PR_CHECK(e <= tol, "gradient files differ from the library's: %g > %g", e, tol);
        }
        free(o); free(dq); free(dk); free(dv); free(dwf);

        /* the same problem from .npy files (Q, K, V, W, dO): same O */
        write2("cli_q.npy", Q, n, d);
        write2("cli_k.npy", K, n, d);
        write2("cli_v.npy", V, n, d);
        write2("cli_do.npy", dO, n, d);
        pr_posw_to_dense(w3, W);
        PR_CHECK_OK(pr_npy_write("cli_w.npy", w3, 3, s3));
        rc = pr_test_cli_run("cli", "attn --q cli_q.npy --k cli_k.npy --v cli_v.npy --w cli_w.npy --do cli_do.npy --causal --alibi 0.2 "
                 "--backward --out cli_file");
        PR_CHECK(rc == 0 && !pr_test_cli_err[0] && strstr(pr_test_cli_out, "wrote cli_file/o.npy"), "file run: exit %d, %s %s", rc,
                 pr_test_cli_out, pr_test_cli_err);
        o = read_expect("cli_file/o.npy", 2, s2);
        PR_CHECK(o && !memcmp(o, O, sizeof(double) * nd), "o.npy from files differs from the library's O");
        free(o);

        /* bad files and bad values, each named in its one-line error */
        Q[5] = NAN;
        write2("cli_qnan.npy", Q, n, d);
        Q[5] = 0;
        bad("attn --q cli_qnan.npy --k cli_k.npy --v cli_v.npy", "cli_qnan.npy: contains NaN or Inf");
        w3[17] = INFINITY;
        PR_CHECK_OK(pr_npy_write("cli_winf.npy", w3, 3, s3));
        bad("attn --q cli_q.npy --w cli_winf.npy", "cli_winf.npy: contains NaN or Inf");
        V[0] = -INFINITY;
        write2("cli_vinf.npy", V, n, d);
        bad("attn --v cli_vinf.npy", "cli_vinf.npy: contains NaN");
        write2("cli_k5.npy", K, n - 1, d);
        bad("attn --q cli_q.npy --k cli_k5.npy", "cli_k5.npy: shape (36, 6), expected (37, 6)");
        write2("cli_do5.npy", dO, n, d - 1);
        bad("attn --q cli_q.npy --do cli_do5.npy --backward", "cli_do5.npy: shape");
        bad("attn --q cli_q.npy --w cli_do.npy", "--w cli_do.npy: shape (37, 6), expected (73, 6, 6)");
        bad("attn --q cli_q.npy --n 12", "disagrees with --n");
        write2("cli_odd.npy", Q, n * 2, 3);
        bad("attn --q cli_odd.npy", "even head dimension");
        write2("cli_empty.npy", Q, 0, d);
        bad("attn --q cli_empty.npy", "at least 1");
        FILE *f = fopen("cli_junk.npy", "wb");
        fputs("this is not an npy file", f);
        fclose(f);
        bad("attn --k cli_junk.npy", "cli_junk.npy: not an .npy file");
        f = fopen("cli_trunc.npy", "wb");
        FILE *g = fopen("cli_q.npy", "rb");
        char buf[200];
        size_t got = fread(buf, 1, sizeof buf, g);
        fwrite(buf, 1, got, f);
        fclose(g);
        fclose(f);
        bad("attn --q cli_trunc.npy", "cli_trunc.npy: .npy file is shorter than its header says");
        bad("attn --q no_such_file.npy", "no_such_file.npy");
        bad("attn --do cli_do.npy", "add --backward");
        bad("attn --algo fft --q cli_q.npy --k cli_k.npy --v cli_v.npy --B 0.01", "raise --B");
        bad("attn --algo lowrank --q cli_qnan.npy --k cli_k.npy --v cli_v.npy", "contains NaN");
        pr_posw_clear(W);
        free(Q); free(K); free(V); free(dO); free(O); free(lse); free(dQ); free(dK); free(dV);
        free(beta); free(w3); free(dw);
    }
    bad("attn --d 3", "even head dimension");
    bad("attn --d 5 --pos general", "even head dimension");
    PR_CHECK(pr_test_cli_run("cli", "attn --d 5 --n 9 --pos identity") == 0, "odd d without RoPE is fine: %s", pr_test_cli_err);
    bad("attn --n 0", "--n must lie in");
    /* the fast paths (issue 5): refusals say what to change; runs stay within their bound */
    bad("attn --algo fft", "past the limit --max-mem 6: raise --max-mem to");
    bad("attn --algo fft --pos general --d 2 --n 64 --eps 1e-15", "below the floating-point floor");
    bad("attn --algo lowrank --pos general --d 2 --n 64", "factorised");
    bad("attn --algo fft --pos general --d 2 --eps 0", "--eps must lie in");
    const char *fast_runs[] = {
        "--algo fft --pos general --d 2 --n 200 --causal --fftw measure",
        "--algo fft --pos identity --d 2 --n 100 --alibi 0.1 --poly taylor",
        "--algo lowrank --pos rope-neox --d 4 --n 300 --causal --eps 1e-4",
        "--algo fft --pos rope --d 2 --n 150 --B 0.5 --eps 1e-9 --poly minimax",
        "--algo auto --pos rope --d 4 --n 300",
    };
    for (int r = 0; r < 5; r++) {
        char args[256];
        snprintf(args, sizeof args, "attn %s --json", fast_runs[r]);
        int rc = pr_test_cli_run("cli", args);
        double err = pr_test_cli_json("err_inf"), bound = pr_test_cli_json("bound"), eps = pr_test_cli_json("eps");
        int dense = strstr(pr_test_cli_out, "\"algo_used\": \"dense\"") != NULL;
        /* auto names the dense path as --algo does */
        PR_CHECK(!strstr(fast_runs[r], "auto") || (strstr(pr_test_cli_out, "\"predicted_dense_s\": ") &&
                 !strstr(pr_test_cli_out, "exact")), "polyrope %s: %s", args, pr_test_cli_out);
        PR_CHECK(rc == 0 && (dense || (err <= bound && bound <= eps && pr_test_cli_json("degree") >= 0
                 && pr_test_cli_json("floor") < bound)), "polyrope %s: exit %d err_inf %g bound %g eps %g %s", args, rc, err,
                 bound, eps, pr_test_cli_err);
    }
    bad("attn --pos nope", "--pos must be one of");
    /* one name per concept: the double-precision dense path is "dense" (exact/ is Arb) */
    bad("attn --algo exact", "--algo exact is now --algo dense");
    bad("attn --n 8 --algo=exact --json", "--algo exact is now --algo dense");
    PR_CHECK(pr_test_cli_run("cli", "attn --n 8 --d 2 --algo=dense") == 0 && strstr(pr_test_cli_out, "algo=dense"),
             "--algo=dense: %s %s", pr_test_cli_out, pr_test_cli_err);
    bad("attn --algo fft --fftw patient", "--fftw must be one of");
    bad("attn --eps 0", "--eps must lie in");
    bad("attn --rope-base 1", "--rope-base");
    bad("attn --frobnicate", "unknown option");
    bad("attn --B nan", "--B expects a finite number");
    PR_CHECK(pr_test_cli_run("cli", "attn --help") == 0 && strstr(pr_test_cli_out, "--alibi") && strstr(pr_test_cli_out, "--backward"),
             "--help: %s", pr_test_cli_out);
    hostile(rng);
    sizes_before_data();
    return pr_test_finish("test_attn_cli");
}
