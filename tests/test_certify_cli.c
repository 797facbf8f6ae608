/* polyrope certify from the shell: exit statuses 0 certified, 1 refuted, 3 unknown, 2 (one line on
 * stderr, nothing on stdout) for every unsupported input; --json's per-head enclosures in order. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pr_test.h"
#include "pr_test_cli.h"
#include "pr_status.h"
#include "pr_rng.h"
#include "pr_npy.h"
#include "pr_dense.h"

/* the k-th number after "key": in the JSON output (k = 0 first) */
static double json_nth(const char *key, int k)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = pr_test_cli_out;
    for (int t = 0; p && t <= k; t++)
        if ((p = strstr(p, pat)))
            p += strlen(pat);
    return p && strncmp(p, "null", 4) ? strtod(p, NULL) : NAN;
}

/* exit 2, one line on stderr naming `what`, nothing on stdout */
static void refused(const char *args, const char *what)
{
    int rc = pr_test_cli_run("cert_cli", args);
    PR_CHECK(rc == 2 && pr_test_lines(pr_test_cli_err) == 1 && !*pr_test_cli_out && strstr(pr_test_cli_err, what),
             "polyrope %s: exit %d, stderr '%s' (want one line with '%s'), stdout '%.80s'", args, rc, pr_test_cli_err,
             what, pr_test_cli_out);
}

/* a raw .npy with the given header dict and len bytes of payload (zeros when data is NULL) */
static void write_raw_data(const char *path, const char *dict, const void *data, size_t len)
{
    char hdr[256];
    int hl = snprintf(hdr, sizeof hdr, "%s", dict);
    int total = 10 + hl + 1, pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    unsigned short h = (unsigned short)(hl + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fwrite(&h, 2, 1, f);
    fwrite(hdr, 1, (size_t)hl, f);
    for (int k = 0; k < pad; k++)
        fputc(' ', f);
    fputc('\n', f);
    if (data)
        fwrite(data, 1, len, f);
    else
        for (size_t k = 0; k < len; k++)
            fputc(0, f);
    fclose(f);
}

static void write_raw(const char *path, const char *dict, size_t len) { write_raw_data(path, dict, NULL, len); }

/* x (values exact in every dtype) as a .npy of dtype t (0 float64 ... 3 bfloat16 bits as '<u2') */
static void write_dtype(const char *path, const double *x, int ndim, const long *shape, int t)
{
    static const char *const descr[4] = {"'<f8'", "'<f4'", "'<f2'", "'<u2'"};
    static const size_t size[4] = {8, 4, 2, 2};
    size_t len = 1;
    char dict[200], dims[100] = "";
    for (int k = 0; k < ndim; k++) {
        len *= (size_t)shape[k];
        snprintf(dims + strlen(dims), sizeof dims - strlen(dims), "%ld, ", shape[k]);
    }
    unsigned char *buf = malloc(len * size[t]);
    for (size_t k = 0; k < len; k++) {
        float f = (float)x[k];
        _Float16 h = (_Float16)x[k];
        unsigned int b;
        memcpy(&b, &f, 4);
        unsigned short u = (unsigned short)(b >> 16);
        memcpy(buf + k * size[t], t == 0 ? (const void *)&x[k] : t == 1 ? (const void *)&f : t == 2 ? (const void *)&h
                                                                                                   : (const void *)&u,
               size[t]);
    }
    snprintf(dict, sizeof dict, "{'descr': %s, 'fortran_order': False, 'shape': (%s), }", descr[t], dims);
    write_raw_data(path, dict, buf, len * size[t]);
    free(buf);
}

/* every dtype and every shape: the same numbers as float64 files holding the same values */
static void test_dtypes(pr_rng_t rng)
{
    enum { H = 2, N = 16, D = 4 };
    size_t nd = (size_t)N * D;
    double Q[H * N * D], K[H * N * D], V[H * N * D], O[H * N * D];
    for (size_t t = 0; t < H * nd; t++) {
        Q[t] = (double)((long)pr_rng_below(rng, 33) - 16) / 8;
        K[t] = (double)((long)pr_rng_below(rng, 33) - 16) / 8;
        V[t] = (double)((long)pr_rng_below(rng, 33) - 16) / 8;
        O[t] = (double)((long)pr_rng_below(rng, 255) - 127) / 128; /* 8 bits: a value of every dtype */
    }
    static const char *const name[4] = {"float64", "float32", "float16", "bfloat16"};
    long shapes[3][4] = {{N, D}, {H, N, D}, {1, H, N, D}};
    for (int sh = 0; sh < 3; sh++) {
        int ndim = sh + 2;
        double ref_lo = NAN, ref_up = NAN;
        for (int t = 0; t < 4; t++) {
            write_dtype("cd_q.npy", Q, ndim, shapes[sh], t);
            write_dtype("cd_k.npy", K, ndim, shapes[sh], t);
            write_dtype("cd_v.npy", V, ndim, shapes[sh], t);
            write_dtype("cd_o.npy", O, ndim, shapes[sh], t);
            int rc = pr_test_cli_run("cert_cli", t == 3 ? "certify --q cd_q.npy --k cd_k.npy --v cd_v.npy --o cd_o.npy "
                                                          "--bf16 --atol 10 --json"
                                                        : "certify --q cd_q.npy --k cd_k.npy --v cd_v.npy --o cd_o.npy "
                                                          "--atol 10 --json");
            char want[64];
            snprintf(want, sizeof want, "\"dtype\": \"%s\"", name[t]);
            double lo = json_nth("lower", 0), up = json_nth("upper", 0);
            if (t == 0) {
                ref_lo = lo;
                ref_up = up;
            }
            PR_CHECK(rc == 0 && strstr(pr_test_cli_out, want) && lo == ref_lo && up == ref_up && lo > 0,
                     "%s, %d-D: exit %d, [%.17g, %.17g] vs float64's [%.17g, %.17g]\n%s%s", name[t], ndim, rc, lo, up,
                     ref_lo, ref_up, pr_test_cli_out, pr_test_cli_err);
        }
    }
    /* 16-bit integers without --bf16 are refused */
    refused("certify --q cd_q.npy --k cd_k.npy --v cd_v.npy --o cd_o.npy", "cd_q.npy");
}

/* --w past n = 512 with a real ALiBi bias (0.1·|i-j| is no double): a float32 candidate of a
 * general W and its float32 gradients certified at atol 1e-6 and refuted at 1e-12; each enclosure
 * holds the float64 dense forward's or backward's error within that reference's own estimate */
static void test_general_w(pr_rng_t rng)
{
    enum { N = 600, D = 4 };
    size_t nd = (size_t)N * D, L = 2 * (size_t)N - 1;
    double *Q = malloc(sizeof(double) * (nd * 12 + L * D * D + L + N)), *K = Q + nd, *V = K + nd, *O = V + nd, *C = O + nd;
    double *w3 = C + nd, *beta = w3 + L * D * D, *dO = beta + L, *G = dO + nd, *GC = G + 3 * nd, *lse = GC + 3 * nd;
    pr_rng_fill(Q, 3 * (long)nd, 2.0, rng);
    pr_rng_fill(dO, (long)nd, 1.0, rng);
    pr_posw_t W;
    PR_CHECK_OK(pr_posw_init_general(W, N, D, rng));
    pr_posw_to_dense(w3, W);
    pr_attn_opts_t ao;
    pr_attn_opts_default(&ao, D);
    ao.causal = 1;
    PR_CHECK_OK(pr_bias_alibi(beta, N, 0.1));
    ao.beta = beta;
    PR_CHECK_OK(pr_dense_forward(O, lse, Q, K, V, W, N, D, &ao));
    PR_CHECK_OK(pr_dense_backward(G, G + nd, G + 2 * nd, NULL, Q, K, V, W, O, lse, dO, N, D, &ao));
    pr_dense_err_t est;
    PR_CHECK_OK(pr_dense_error_est(&est, Q, K, V, W, O, dO, N, D, &ao));
    double e = 0.0, eg[3] = {0, 0, 0}, est_g[3] = {est.dq, est.dk, est.dv};
    for (size_t t = 0; t < nd; t++) {
        C[t] = (double)(float)O[t];
        e = fmax(e, fabs(C[t] - O[t]));
    }
    for (size_t t = 0; t < 3 * nd; t++) {
        GC[t] = (double)(float)G[t];
        eg[t / nd] = fmax(eg[t / nd], fabs(GC[t] - G[t]));
    }
    long s2[2] = {N, D}, s3[3] = {(long)L, D, D};
    PR_CHECK_OK(pr_npy_write("cc_wq.npy", Q, 2, s2));
    PR_CHECK_OK(pr_npy_write("cc_wk.npy", K, 2, s2));
    PR_CHECK_OK(pr_npy_write("cc_wv.npy", V, 2, s2));
    PR_CHECK_OK(pr_npy_write("cc_wo.npy", C, 2, s2));
    PR_CHECK_OK(pr_npy_write("cc_wg.npy", w3, 3, s3));
    PR_CHECK_OK(pr_npy_write("cc_wdo.npy", dO, 2, s2));
    PR_CHECK_OK(pr_npy_write("cc_wdq.npy", GC, 2, s2));
    PR_CHECK_OK(pr_npy_write("cc_wdk.npy", GC + nd, 2, s2));
    PR_CHECK_OK(pr_npy_write("cc_wdv.npy", GC + 2 * nd, 2, s2));
    const char *a = "certify --q cc_wq.npy --k cc_wk.npy --v cc_wv.npy --o cc_wo.npy --w cc_wg.npy --causal --alibi 0.1";
    char args[512];
    snprintf(args, sizeof args, "%s --atol 1e-6 --dtype float32 --json", a);
    int rc = pr_test_cli_run("cert_cli", args);
    double lo = json_nth("lower", 0), up = json_nth("upper", 0);
    PR_CHECK(rc == 0 && lo <= e + 2 * est.o && e <= up + 2 * est.o && up <= lo * (1 + 1e-6) &&
             json_nth("rows", 0) == N, "--w at n = %d: exit %d, [%.17g, %.17g] vs the float64 reference's %.17g "
             "(its error ~%.3g)\n%s%s", N, rc, lo, up, e, est.o, pr_test_cli_out, pr_test_cli_err);
    snprintf(args, sizeof args, "%s --atol 1e-12", a);
    rc = pr_test_cli_run("cert_cli", args);
    PR_CHECK(rc == 1 && strstr(pr_test_cli_out, "refuted"), "--w at atol 1e-12: exit %d\n%s%s", rc, pr_test_cli_out,
             pr_test_cli_err);
    /* the gradients (docs/certify.md L15): "lower" k = 2, 4, 6 are dQ's, dK's, dV's (odd k: their ulps) */
    const char *gr = "--do cc_wdo.npy --dq cc_wdq.npy --dk cc_wdk.npy --dv cc_wdv.npy";
    snprintf(args, sizeof args, "%s %s --atol 1e-6 --dtype float32 --json", a, gr);
    rc = pr_test_cli_run("cert_cli", args);
    for (int t = 0; t < 3; t++) {
        lo = json_nth("lower", 2 * t + 2);
        up = json_nth("upper", 2 * t + 2);
        PR_CHECK(rc == 0 && lo <= eg[t] + 2 * est_g[t] && eg[t] <= up + 2 * est_g[t] && up <= lo * 1.001,
                 "--w gradient %d at n = %d: exit %d, [%.17g, %.17g] vs the float64 reference's %.17g (its error "
                 "~%.3g)\n%s%s", t, N, rc, lo, up, eg[t], est_g[t], pr_test_cli_out, pr_test_cli_err);
    }
    snprintf(args, sizeof args, "%s %s --atol 1e-12 --dtype float32", a, gr);
    rc = pr_test_cli_run("cert_cli", args);
    PR_CHECK(rc == 1 && strstr(pr_test_cli_out, "dQ") && strstr(pr_test_cli_out, "refuted"), "--w gradients at atol "
             "1e-12: exit %d\n%s%s", rc, pr_test_cli_out, pr_test_cli_err);
    pr_posw_clear(W);
    free(Q);
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_certify_cli", 1516));
    PR_CHECK(pr_test_cli_tmpdir("test_certify_cli") == 0, "no scratch folder under /tmp");
    enum { H = 2, HK = 1, N = 48, D = 8 };
    size_t nd = (size_t)N * D;
    static double Q[H * N * D], K[HK * N * D], V[HK * N * D], O[H * N * D], T[H * N * D];
    pr_rng_fill(Q, H * (long)nd, 1.0, rng);
    pr_rng_fill(K, HK * (long)nd, 1.0, rng);
    pr_rng_fill(V, HK * (long)nd, 1.0, rng);
    /* each head's dense forward, rounded to float32: a candidate (no RoPE: --pos identity) */
    pr_posw_t W;
    PR_CHECK_OK(pr_posw_init_identity(W, N, D));
    pr_attn_opts_t ao;
    pr_attn_opts_default(&ao, D);
    for (int h = 0; h < H; h++)
        PR_CHECK_OK(pr_dense_forward(O + h * nd, NULL, Q + h * nd, K, V, W, N, D, &ao));
    pr_posw_clear(W);
    for (size_t t = 0; t < H * nd; t++)
        T[t] = (double)(float)O[t];
    long s3[3] = {H, N, D}, k3[3] = {HK, N, D}, s2[2] = {N, D}, s4[4] = {1, H, N, D}, k4[4] = {1, HK, N, D};
    PR_CHECK_OK(pr_npy_write("cc_q.npy", Q, 3, s3));
    PR_CHECK_OK(pr_npy_write("cc_k.npy", K, 3, k3));
    PR_CHECK_OK(pr_npy_write("cc_v.npy", V, 3, k3));
    PR_CHECK_OK(pr_npy_write("cc_o.npy", T, 3, s3));
    PR_CHECK_OK(pr_npy_write("cc_q4.npy", Q, 4, s4));
    PR_CHECK_OK(pr_npy_write("cc_k4.npy", K, 4, k4));
    PR_CHECK_OK(pr_npy_write("cc_o4.npy", T, 4, s4));
    PR_CHECK_OK(pr_npy_write("cc_q2.npy", Q, 2, s2));
    PR_CHECK_OK(pr_npy_write("cc_v2.npy", V, 2, s2));
    long s3k[3] = {3, N, D};
    static double Z[3 * N * D];
    PR_CHECK_OK(pr_npy_write("cc_k3.npy", Z, 3, s3k));
    const char *base = "certify --q cc_q.npy --k cc_k.npy --v cc_v.npy --o cc_o.npy --pos identity";
    char args[1024];

    /* refuted at atol 0 (exit 1), certified at a generous atol (exit 0), heads in order */
    int rc = pr_test_cli_run("cert_cli", base);
    PR_CHECK(rc == 1 && strstr(pr_test_cli_out, "refuted"), "atol 0: exit %d\n%s%s", rc, pr_test_cli_out,
             pr_test_cli_err);
    snprintf(args, sizeof args, "%s --atol 1e-6 --dtype float32 --json", base);
    rc = pr_test_cli_run("cert_cli", args);
    double lo0 = json_nth("lower", 0), up0 = json_nth("upper", 0), lo1 = json_nth("lower", 2), up1 = json_nth("upper", 2);
    PR_CHECK(rc == 0 && pr_test_lines(pr_test_cli_out) == 1 && lo0 > 0 && up0 <= lo0 * (1 + 1e-6) && lo1 > 0 &&
             up1 <= lo1 * (1 + 1e-6) && strstr(pr_test_cli_out, "\"verdict\": \"certified\"}"),
             "--json: exit %d\n%s%s", rc, pr_test_cli_out, pr_test_cli_err);
    /* head 1's enclosure is head 1's: the same from a (n, d) file of that head alone */
    double e1 = 0.0;
    for (size_t t = 0; t < nd; t++)
        e1 = fmax(e1, fabs(T[nd + t] - O[nd + t]));
    PR_CHECK(fabs(e1 - lo1) <= 1e-12 && fabs(json_nth("lower", 0) - e1) > 0.0,
             "head 1: float64 reference's error %.17g vs [%.17g, %.17g]", e1, lo1, up1);
    /* 4-D (b, h, n, d) gives the same numbers */
    rc = pr_test_cli_run("cert_cli", "certify --q cc_q4.npy --k cc_k4.npy --v cc_k4.npy --o cc_o4.npy --pos identity "
                                     "--atol 1 --json");
    PR_CHECK(rc == 0 && json_nth("num_heads", 0) == H && json_nth("batch", 0) == 1, "4-D: exit %d\n%s%s", rc,
             pr_test_cli_out, pr_test_cli_err);
    /* unknown (exit 3): a tolerance inside the double pass's enclosure, no Arb rows */
    snprintf(args, sizeof args, "%s --max-fallback-s 0 --json", base);
    pr_test_cli_run("cert_cli", args);
    double a = 0.0;
    for (int k = 0; k < 2 * H; k += 2)
        a = fmax(a, 0.5 * (json_nth("lower", k) + json_nth("upper", k)));
    snprintf(args, sizeof args, "%s --max-fallback-s 0 --atol %.17g", base, a);
    rc = pr_test_cli_run("cert_cli", args);
    PR_CHECK(rc == 3 && strstr(pr_test_cli_out, "unknown"), "atol %.17g without Arb rows: exit %d\n%s%s", a, rc,
             pr_test_cli_out, pr_test_cli_err);
    snprintf(args, sizeof args, "%s --atol %.17g", base, a);
    rc = pr_test_cli_run("cert_cli", args);
    PR_CHECK(rc == 0 || rc == 1, "atol %.17g with Arb rows: exit %d (decided)\n%s%s", a, rc, pr_test_cli_out,
             pr_test_cli_err);

    /* unsupported inputs and usage: exit 2, one line */
    refused("certify --q cc_q.npy --k cc_k.npy --v cc_v.npy", "--o is required");
    refused("certify --q cc_q.npy --k cc_k3.npy --v cc_k3.npy --o cc_o.npy", "multiple");
    refused("certify --q cc_q.npy --k cc_k.npy --v cc_v2.npy --o cc_o.npy", "--v");
    refused("certify --q cc_q2.npy --k cc_k.npy --v cc_v.npy --o cc_q2.npy", "--k");
    refused("certify --q cc_q.npy --k cc_k.npy --v cc_v.npy --o cc_o.npy --do cc_o.npy", "--dq");
    refused("certify --q cc_q.npy --k cc_k.npy --v cc_v.npy --o cc_q.npy --dtype float16", "not a float16 value");
    refused("certify --q cc_q.npy --k cc_k.npy --v cc_v.npy --o cc_o.npy --rope-base 1", "--rope-base");
    refused("certify --q cc_q.npy --k cc_k.npy --v cc_v.npy --o cc_nonexistent.npy", "cc_nonexistent.npy");
    refused("certify --q '' --k cc_k.npy --v cc_v.npy --o cc_o.npy", "empty");
    static double odd[N * 3];
    long so[2] = {N, 3};
    PR_CHECK_OK(pr_npy_write("cc_odd.npy", odd, 2, so));
    refused("certify --q cc_odd.npy --k cc_odd.npy --v cc_odd.npy --o cc_odd.npy", "even");
    static double nan1[N * D];
    nan1[7] = NAN;
    PR_CHECK_OK(pr_npy_write("cc_nan.npy", nan1, 2, s2));
    refused("certify --q cc_nan.npy --k cc_q2.npy --v cc_q2.npy --o cc_q2.npy", "finite");
    char dict[200];
    const char *bad[][2] = {{"'<i4'", "False"}, {"'>f8'", "False"}, {"'<f8'", "True"}, {"'<c16'", "False"}};
    for (int k = 0; k < 4; k++) {
        snprintf(dict, sizeof dict, "{'descr': %s, 'fortran_order': %s, 'shape': (%d, %d), }", bad[k][0], bad[k][1], N, D);
        write_raw("cc_bad.npy", dict, (size_t)N * D * 16);
        refused("certify --q cc_bad.npy --k cc_q2.npy --v cc_q2.npy --o cc_q2.npy", "cc_bad.npy");
    }
    static double big[600 * 2];
    long sb[2] = {600, 2};
    PR_CHECK_OK(pr_npy_write("cc_big.npy", big, 2, sb));
    /* gradients past n = 512 (the double pass alone): zero inputs, zero gradients */
    int rcg = pr_test_cli_run("cert_cli", "certify --q cc_big.npy --k cc_big.npy --v cc_big.npy --o cc_big.npy "
                                          "--do cc_big.npy --dq cc_big.npy --dk cc_big.npy --dv cc_big.npy --atol 1e-200");
    PR_CHECK(rcg == 0, "gradients at n = 600: exit %d", rcg);
    test_dtypes(rng);
    /* --w: a general W (here W = I at every offset: the same as --pos identity) */
    static double w3[(2 * N - 1) * D * (D + 1)]; /* room for the wrong shape (2n-1, d, d+1) too */
    for (int l = 0; l < 2 * N - 1; l++)
        for (int c = 0; c < D; c++)
            w3[((size_t)l * D + c) * D + c] = 1.0;
    long sw[3] = {2 * N - 1, D, D}, swb[3] = {2 * N - 1, D, D + 1};
    PR_CHECK_OK(pr_npy_write("cc_w.npy", w3, 3, sw));
    PR_CHECK_OK(pr_npy_write("cc_wbad.npy", w3, 3, swb));
    snprintf(args, sizeof args, "%s --json", base);
    pr_test_cli_run("cert_cli", args);
    double ilo = json_nth("lower", 0), iup = json_nth("upper", 0);
    rc = pr_test_cli_run("cert_cli", "certify --q cc_q.npy --k cc_k.npy --v cc_v.npy --o cc_o.npy --w cc_w.npy --json");
    PR_CHECK(rc == 1 && json_nth("lower", 0) <= iup && ilo <= json_nth("upper", 0),
             "--w identity: exit %d, [%.17g, %.17g] vs --pos identity's [%.17g, %.17g]", rc, json_nth("lower", 0),
             json_nth("upper", 0), ilo, iup);
    refused("certify --q cc_q.npy --k cc_k.npy --v cc_v.npy --o cc_o.npy --w cc_w.npy --pos rope", "--pos");
    refused("certify --q cc_q.npy --k cc_k.npy --v cc_v.npy --o cc_o.npy --w cc_wbad.npy", "(2n-1, d, d)");
    /* gradients with --w (grouped-query): W = I encloses what --pos identity does, per head and gradient
       (the candidates are anything: Q's and K's own files) */
    const char *gi = "--do cc_o.npy --dq cc_q.npy --dk cc_k.npy --dv cc_v.npy --json";
    snprintf(args, sizeof args, "%s %s", base, gi);
    int rci = pr_test_cli_run("cert_cli", args);
    double glo[6], gup[6];
    for (int k = 0; k < 6; k++) {
        glo[k] = json_nth("lower", 2 * k); /* odd: the ulps' */
        gup[k] = json_nth("upper", 2 * k);
    }
    snprintf(args, sizeof args, "certify --q cc_q.npy --k cc_k.npy --v cc_v.npy --o cc_o.npy --w cc_w.npy %s", gi);
    rc = pr_test_cli_run("cert_cli", args);
    for (int k = 0; k < 6; k++) /* head 0's O, dQ, dK, dV, head 1's O, dQ */
        PR_CHECK(rc == 1 && rci == 1 && glo[k] > 0 && json_nth("lower", 2 * k) <= gup[k] &&
                 glo[k] <= json_nth("upper", 2 * k), "--w identity's gradients (%d): exit %d, [%.17g, %.17g] vs --pos "
                 "identity's [%.17g, %.17g]", k, rc, json_nth("lower", 2 * k), json_nth("upper", 2 * k), glo[k], gup[k]);
    refused("certify --q cc_q.npy --k cc_k.npy --v cc_v.npy --o cc_o.npy --w cc_w.npy --dq cc_q.npy", "--do");
    test_general_w(rng);
    /* attn --certify past n = 512 (the forward with RoPE) through the same engine */
    rc = pr_test_cli_run("cert_cli", "attn --n 1024 --d 8 --B 2 --algo lowrank --eps 1e-5 --certify --json");
    double ce = pr_test_cli_json("certified_err_inf"), ei = pr_test_cli_json("err_inf"), bd = pr_test_cli_json("bound");
    PR_CHECK(rc == 0 && strstr(pr_test_cli_out, "\"certified_verdict\": \"certified\"") && ce >= ei * (1 - 1e-6) &&
             ce <= ei + 1e-12 && ce <= bd, "attn --n 1024 --certify: exit %d, certified %.17g, err_inf %.17g, bound %g\n%s%s",
             rc, ce, ei, bd, pr_test_cli_out, pr_test_cli_err);
    /* and its gradients: the true error is grad_err_inf within the dense reference's own error
     * (ref_grad_err_est), and the certified upper bound exceeds the true error by at most the
     * engine's width (~1e-12 relative, docs/certify.md L8-L12), far below that estimate */
    rc = pr_test_cli_run("cert_cli", "attn --n 1024 --d 8 --B 2 --algo lowrank --eps 1e-5 --certify --backward --json");
    double cg = pr_test_cli_json("certified_grad_err_inf"), eg = pr_test_cli_json("grad_err_inf");
    double rg = pr_test_cli_json("ref_grad_err_est");
    PR_CHECK(rc == 0 && strstr(pr_test_cli_out, "\"certified_verdict\": \"certified\"") && isfinite(cg) &&
             cg >= eg - rg && cg <= eg + rg, "attn --n 1024 --certify --backward: exit %d, certified grad "
             "%.17g, grad_err_inf %.17g, ref est %.3g\n%s%s", rc, cg, eg, rg, pr_test_cli_out, pr_test_cli_err);
    /* and a general W's forward (docs/certify.md L13, L14) and gradients (L15) */
    rc = pr_test_cli_run("cert_cli", "attn --n 1024 --d 4 --B 1 --pos general --algo fft --eps 1e-4 --certify --json");
    ce = pr_test_cli_json("certified_err_inf");
    ei = pr_test_cli_json("err_inf");
    bd = pr_test_cli_json("bound");
    PR_CHECK(rc == 0 && strstr(pr_test_cli_out, "\"certified_verdict\": \"certified\"") && ce >= ei * (1 - 1e-6) &&
             ce <= ei + 1e-12 && ce <= bd, "attn --n 1024 --pos general --certify: exit %d, certified %.17g, err_inf "
             "%.17g, bound %g\n%s%s", rc, ce, ei, bd, pr_test_cli_out, pr_test_cli_err);
    rc = pr_test_cli_run("cert_cli", "attn --n 1024 --d 4 --B 1 --pos general --algo fft --eps 1e-4 --certify "
                                     "--backward --json");
    cg = pr_test_cli_json("certified_grad_err_inf");
    eg = pr_test_cli_json("grad_err_inf");
    rg = pr_test_cli_json("ref_grad_err_est");
    PR_CHECK(rc == 0 && strstr(pr_test_cli_out, "\"certified_verdict\": \"certified\"") && isfinite(cg) &&
             cg >= eg - rg && cg <= eg + rg, "attn --n 1024 --pos general --certify --backward: exit %d, certified "
             "grad %.17g, grad_err_inf %.17g, ref est %.3g\n%s%s", rc, cg, eg, rg, pr_test_cli_out, pr_test_cli_err);
    /* bench certify --json: ratio, tightness and fallback fraction, here at a small size */
    rc = pr_test_cli_run("cert_cli", "bench certify --n 512 --d 16 --grow --json");
    double ratio = pr_test_cli_json("ratio"), tight = pr_test_cli_json("hi_over_lo");
    double fb = pr_test_cli_json("fallback_fraction");
    double gratio = pr_test_cli_json("grad_ratio"), gtight = pr_test_cli_json("grad_hi_over_lo");
    PR_CHECK(rc == 0 && gratio > 0 && gtight >= 1.0 && gtight < 2.0, "bench certify: gradients' ratio %g, hi/lo %g",
             gratio, gtight);
    PR_CHECK(rc == 0 && ratio > 0 && tight >= 1.0 && tight <= 1 + 1e-6 && fb >= 0 && fb <= 1 &&
             strstr(pr_test_cli_out, "\"growth\": [{"), "bench certify: exit %d\n%s%s", rc, pr_test_cli_out,
             pr_test_cli_err);
    /* its general-W line (docs/certify.md L13): the object after the top level's numbers */
    double wtight = json_nth("hi_over_lo", 1), wratio = json_nth("ratio", 1);
    PR_CHECK(rc == 0 && strstr(pr_test_cli_out, "\"general_w\": {\"pos\": \"general\", \"n\": 512,") && wratio > 0 &&
             wtight >= 1.0 && wtight <= 1 + 1e-6, "bench certify: general W's ratio %g, hi/lo %.17g", wratio, wtight);
    /* and its gradients (L15): the "grad" object inside general_w, the second one printed */
    const char *gw = strstr(pr_test_cli_out, "\"general_w\"");
    const char *gg = gw ? strstr(gw, "\"grad\": {") : NULL;
    double wgt = gg ? strtod(strstr(gg, "\"hi_over_lo\": ") + 14, NULL) : NAN;
    PR_CHECK(gg && gg < strstr(gw, "\"growth\"") && wgt >= 1.0 && wgt < 2.0, "bench certify: general W's gradients, "
             "hi/lo %g\n%s", wgt, pr_test_cli_out);
    refused("bench certify --d 7", "even");
    return pr_test_finish("test_certify_cli");
}
