/* polyrope bench certify: pr_certify_forward on a float32 kernel's output against the dense
 * forward at the same size (and pr_certify_backward against the dense backward), in one run (issue 15: ratio <= 20 at n = 16384, d = 128, one head;
 * hi/lo <= 1 + 1e-6 for a float32 candidate with B <= 4). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <omp.h>
#include "polyrope-exact.h"
#include "pr_certify.h"
#include "cli.h"
#include "commands.h"

/* the candidate: attention computed in float32 (RoPE by libm in double, then float; sgemm scores,
 * expf softmax, sgemm P·V), as a float32 kernel would, widened exactly to double */
static int f32_kernel(double *O, const double *Q, const double *K, const double *V, int n, int d, double sigma)
{
    enum { ROWS = 64 };
    size_t nd = (size_t)n * d;
    float *q = malloc(sizeof(float) * nd), *k = malloc(sizeof(float) * nd), *v = malloc(sizeof(float) * nd);
    double *r = malloc(sizeof(double) * nd);
    int ok = q && k && v && r;
    for (int pass = 0; ok && pass < 2; pass++) {
        ok = !pr_rope_rotate(r, pass ? K : Q, n, d, PR_ROPE_BASE_DEFAULT, PR_ROPE_INTERLEAVED, 1);
        for (size_t t = 0; ok && t < nd; t++)
            (pass ? k : q)[t] = (float)r[t];
    }
    for (size_t t = 0; ok && t < nd; t++)
        v[t] = (float)V[t];
    int nb = (n + ROWS - 1) / ROWS, saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
#pragma omp parallel if (ok)
    {
        float *S = malloc(sizeof(float) * ROWS * (size_t)n), *o = malloc(sizeof(float) * ROWS * (size_t)d);
#pragma omp for schedule(dynamic, 1)
        for (int b = 0; b < nb; b++) {
            if (!S || !o)
                continue;
            int i0 = b * ROWS, m = n - i0 < ROWS ? n - i0 : ROWS;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, d, (float)sigma, q + (size_t)i0 * d, d, k, d,
                        0.0f, S, n);
            for (int i = 0; i < m; i++) {
                float *s = S + (size_t)i * n, mx = -INFINITY, sum = 0.0f;
                for (int j = 0; j < n; j++)
                    mx = s[j] > mx ? s[j] : mx;
                for (int j = 0; j < n; j++)
                    sum += (s[j] = expf(s[j] - mx));
                for (int j = 0; j < n; j++)
                    s[j] /= sum;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, d, n, 1.0f, S, n, v, d, 0.0f, o, d);
            for (size_t t = 0; t < (size_t)m * d; t++)
                O[(size_t)i0 * d + t] = o[t];
        }
        free(S);
        free(o);
    }
    openblas_set_num_threads(saved);
    free(q);
    free(k);
    free(v);
    free(r);
    return ok ? PR_OK : PR_ENOMEM;
}

/* the candidate for a general W: scores Σ_k q_a w_k(i-j) k_b in float (summed over the support in
 * its order, vectorised over keys as pr_dense does), expf softmax and P·V in float */
static int f32_kernel_w(double *O, const double *Q, const double *K, const double *V, const pr_posw_struct *W,
                        double sigma)
{
    int n = W->n, d = W->d, ok = 1;
    size_t L = 2 * (size_t)n - 1;
    float *kt = malloc(sizeof(float) * (size_t)n * d), *wr = malloc(sizeof(float) * (W->s ? W->s * L : 1));
    if (!kt || !wr) {
        free(kt);
        free(wr);
        return PR_ENOMEM;
    }
    for (int j = 0; j < n; j++)
        for (int c = 0; c < d; c++)
            kt[(size_t)c * n + j] = (float)K[(size_t)j * d + c];
    for (int k = 0; k < W->s; k++)
        for (size_t t = 0; t < L; t++)
            wr[k * L + t] = (float)W->w[k * L + L - 1 - t];
#pragma omp parallel
    {
        float *s = malloc(sizeof(float) * n), *t = malloc(sizeof(float) * d);
        if (!s || !t) {
#pragma omp atomic write
            ok = 0;
        }
#pragma omp for schedule(dynamic, 16)
        for (int i = 0; i < n; i++) {
            if (!s || !t)
                continue;
            float mx = -INFINITY, sum = 0.0f;
            memset(s, 0, sizeof(float) * n);
            for (int k = 0; k < W->s; k++) {
                float q = (float)Q[(size_t)i * d + W->a[k]];
                const float *w = wr + k * L + (size_t)(n - 1 - i), *kb = kt + (size_t)W->b[k] * n;
                for (int j = 0; j < n; j++)
                    s[j] += q * w[j] * kb[j];
            }
            for (int j = 0; j < n; j++) {
                s[j] *= (float)sigma;
                mx = s[j] > mx ? s[j] : mx;
            }
            for (int j = 0; j < n; j++)
                sum += (s[j] = expf(s[j] - mx));
            memset(t, 0, sizeof(float) * d);
            for (int j = 0; j < n; j++)
                for (int c = 0; c < d; c++)
                    t[c] += s[j] * (float)V[(size_t)j * d + c];
            for (int c = 0; c < d; c++)
                O[(size_t)i * d + c] = (double)(t[c] / sum);
        }
        free(s);
        free(t);
    }
    free(kt);
    free(wr);
    return ok ? PR_OK : PR_ENOMEM;
}

typedef struct {
    int n, d, heads, general;
    double cert_s, dense_s, tight, fallback, lower, upper, ulps;
    int verdict;
    int grad;                           /* the gradients were run */
    double gcert_s, gdense_s, gtight, gfallback, glower, gupper; /* over dQ, dK, dV */
    double gtk[3];                      /* hi/lo of dQ, dK, dV alone (the largest over heads) */
} run_t;

/* the gradients of one head: the dense backward (timed), rounded to float32 as the candidates, and
 * their certification (docs/certify.md L8-L12; a general W, r->general: L13, L15) */
static int run_grad(run_t *r, const double *Q, const double *K, const double *V, const double *O, const double *lse,
                    const pr_posw_struct *W, int n, int d, const pr_attn_opts_t *ao, const pr_certify_problem_t *pb,
                    const pr_certify_opts_t *op, pr_rng_t rng, int heads)
{
    size_t nd = (size_t)n * d;
    double *dO = malloc(sizeof(double) * nd * 4), *G = dO + nd;
    if (!dO)
        return PR_ENOMEM;
    pr_rng_fill(dO, (long)nd, 1.0, rng);
    double t = pr_timing_wall();
    int st = pr_dense_backward(G, G + nd, G + 2 * nd, NULL, Q, K, V, W, O, lse, dO, n, d, ao);
    r->gdense_s += pr_timing_wall() - t;
    for (size_t e = 0; e < 3 * nd; e++)
        G[e] = (double)(float)G[e];
    pr_certify_result_t res[3];
    if (!st && r->general)
        st = pr_certify_backward_heads_posw(res, G, G + nd, G + 2 * nd, Q, K, V, dO, W, 1, 1, 1, n, d, pb, op);
    else if (!st)
        st = pr_certify_backward(res, G, G + nd, G + 2 * nd, Q, K, V, dO, n, d, pb, op);
    for (int k = 0; k < 3 && !st; k++) {
        r->gtight = fmax(r->gtight, res[k].upper / res[k].lower);
        r->gtk[k] = fmax(r->gtk[k], res[k].upper / res[k].lower);
        r->gfallback = fmax(r->gfallback, (double)res[k].rows_fallback / ((double)res[k].rows * heads));
        r->glower = fmax(r->glower, res[k].lower);
        r->gupper = fmax(r->gupper, res[k].upper);
    }
    if (!st)
        r->gcert_s += res[0].time_s;
    r->grad = 1;
    free(dO);
    return st;
}

/* one size: dense forward (one run), the candidate, and its certification, per head (grad: the
 * gradients too); general: a general W (random on RoPE's support, pr_posw_init_general) instead of RoPE */
static int run_size(run_t *r, int n, int d, int heads, double B, long seed, int sqrt_d, int grad, int general)
{
    size_t nd = (size_t)n * d;
    double *Q = malloc(sizeof(double) * (nd * 4 + n)), *K = Q + nd, *V = K + nd, *O = V + nd, *lse = O + nd;
    pr_posw_t W;
    pr_rng_t rng;
    pr_rng_init(rng, (uint64_t)seed);
    int st = !Q ? PR_ENOMEM : general ? pr_posw_init_general(W, n, d, rng)
                                      : pr_posw_init_rope(W, n, d, PR_ROPE_BASE_DEFAULT, PR_ROPE_INTERLEAVED);
    if (st) {
        free(Q);
        return st;
    }
    memset(r, 0, sizeof(*r));
    r->general = general;
    r->n = n;
    r->d = d;
    r->heads = heads;
    r->tight = r->gtight = r->gtk[0] = r->gtk[1] = r->gtk[2] = 1.0;
    pr_attn_opts_t ao;
    pr_attn_opts_default(&ao, d);
    ao.sigma = pr_scale_sigma(sqrt_d ? PR_SCALE_INV_SQRT_D : PR_SCALE_INV_D, d);
    pr_certify_problem_t pb;
    pr_certify_problem_default(&pb);
    pb.scale = sqrt_d ? PR_CERTIFY_SCALE_INV_SQRT_D : PR_CERTIFY_SCALE_INV_D;
    pr_certify_opts_t op;
    pr_certify_opts_default(&op);
    op.dtype = PR_CERTIFY_FLOAT32;
    for (int h = 0; h < heads && !st; h++) {
        pr_rng_fill(Q, (long)nd * 3, B, rng);
        double t = pr_timing_wall();
        st = pr_dense_forward(O, lse, Q, K, V, W, n, d, &ao);
        r->dense_s += pr_timing_wall() - t;
        if (!st && grad)
            st = run_grad(r, Q, K, V, O, lse, W, n, d, &ao, &pb, &op, rng, heads);
        if (!st)
            st = general ? f32_kernel_w(O, Q, K, V, W, ao.sigma) : f32_kernel(O, Q, K, V, n, d, ao.sigma);
        pr_certify_result_t res;
        if (!st)
            st = general ? pr_certify_forward_posw(&res, O, Q, K, V, W, n, d, &pb, &op)
                         : pr_certify_forward(&res, O, Q, K, V, n, d, &pb, &op);
        if (st)
            break;
        r->cert_s += res.time_s;
        r->tight = fmax(r->tight, res.upper / res.lower);
        r->fallback += (double)res.rows_fallback / ((double)res.rows * heads);
        r->lower = fmax(r->lower, res.lower);
        r->upper = fmax(r->upper, res.upper);
        r->ulps = fmax(r->ulps, res.ulps_upper);
        r->verdict = res.verdict;
    }
    pr_posw_clear(W);
    free(Q);
    return st;
}

static void print_run(const run_t *r, int json, const char *sep)
{
    if (json)
        printf("{%s\"n\": %d, \"d\": %d, \"heads\": %d, \"certify_s\": %.4f, \"dense_s\": %.4f, \"ratio\": %.3f, "
               "\"hi_over_lo\": %.12g, \"fallback_fraction\": %.6g, \"lower\": %.17g, \"upper\": %.17g, "
               "\"ulps_upper\": %.4g",
               r->general ? "\"pos\": \"general\", " : "", r->n, r->d, r->heads, r->cert_s, r->dense_s,
               r->cert_s / r->dense_s, r->tight, r->fallback, r->lower, r->upper, r->ulps);
    if (json && r->grad)
        printf(", \"grad\": {\"certify_s\": %.4f, \"dense_backward_s\": %.4f, \"ratio\": %.3f, \"hi_over_lo\": %.12g, "
               "\"fallback_fraction\": %.6g, \"lower\": %.17g, \"upper\": %.17g, \"hi_over_lo_minus_1\": "
               "{\"dq\": %.3g, \"dk\": %.3g, \"dv\": %.3g}}",
               r->gcert_s, r->gdense_s, r->gcert_s / r->gdense_s, r->gtight, r->gfallback, r->glower, r->gupper,
               r->gtk[0] - 1.0, r->gtk[1] - 1.0, r->gtk[2] - 1.0);
    if (json)
        printf("}%s", sep);
    else
        printf("%sn %6d  d %4d  heads %2d:  certify %8.3f s  dense %8.3f s  ratio %7.2f  hi/lo - 1 %.2e  "
               "fallback %.4f  max|err| in [%.9g, %.9g]\n",
               r->general ? "general W: " : "", r->n, r->d, r->heads, r->cert_s, r->dense_s, r->cert_s / r->dense_s, r->tight - 1.0, r->fallback,
               r->lower, r->upper);
    if (!json && r->grad)
        printf("  gradients:  certify %8.3f s  dense backward %8.3f s  ratio %7.2f  hi/lo - 1 %.2e (dQ %.2e, dK %.2e, "
               "dV %.2e)  fallback %.4f\n", r->gcert_s, r->gdense_s, r->gcert_s / r->gdense_s, r->gtight - 1.0,
               r->gtk[0] - 1.0, r->gtk[1] - 1.0, r->gtk[2] - 1.0, r->gfallback);
}

int pr_bench_certify(int argc, char **argv)
{
    long n = 16384, d = 128, heads = 1, seed = 15, wn = 2048;
    double B = 4.0;
    int json = 0, grow = 0, fwd_only = 0;
    const char *scale = "inv-d";
    pr_opt_t opts[] = {
        {"n", PR_OPT_INT, &n, "sequence length", 0, 1, 1 << 20, 0},
        {"d", PR_OPT_INT, &d, "head dimension (even: RoPE)", 0, 2, 1024, 0},
        {"heads", PR_OPT_INT, &heads, "heads (each its own Q, K, V)", 0, 1, 64, 0},
        {"B", PR_OPT_DOUBLE, &B, "entries of Q, K, V uniform in [-B, B]", 0, 1e-3, 64, 0},
        {"seed", PR_OPT_INT, &seed, "seed of the inputs", 0, 0, 1e15, 0},
        {"scale", PR_OPT_CHOICE, &scale, "score scale sigma: 1/d or 1/sqrt(d)", "inv-d|inv-sqrt-d", 0, 0, 0},
        {"grow", PR_OPT_FLAG, &grow, "also run n/4, n/2 (d), n/2 with d/2, and 2 heads at n/2: the cost's growth", 0,
         0, 0, 0},
        {"w-n", PR_OPT_INT, &wn, "n of the general-W line (a general W random on RoPE's support, the same d; "
         "capped at --n); 0: none", 0, 0, 1 << 20, 0},
        {"forward-only", PR_OPT_FLAG, &fwd_only, "skip the gradients (dQ, dK, dV against the dense backward)", 0, 0,
         0, 0},
        {"json", PR_OPT_FLAG, &json, "print one JSON object", 0, 0, 0, 0},
    };
    pr_cmd_spec_t spec = {"bench certify", "",
        "pr_certify_forward (polyrope certify) on a float32 kernel's output against the dense forward.",
        "One run each, same inputs: RoPE interleaved, sigma (--scale), Q, K, V uniform in [-B, B]; the\n"
        "candidate is attention computed in float32 (sgemm, expf). Printed: ratio = certification\n"
        "time / dense forward time (target <= 20 at n = 16384, d = 128, one head), hi/lo of the\n"
        "certified enclosure of max|O_cand - O_true| (target <= 1 + 1e-6 for B <= 4), and the fraction\n"
        "of rows recomputed in Arb (the fallback). --grow adds smaller sizes to show how the cost grows\n"
        "with n, d and heads (docs/certify.md). Unless --forward-only, the first size also certifies the\n"
        "gradients (the dense backward rounded to float32, upstream dO uniform in [-1, 1]) against the\n"
        "dense backward's time: \"grad\": {ratio, hi_over_lo, fallback_fraction, hi_over_lo_minus_1 of\n"
        "dq, dk, dv}. A general W (--w-n) is\n"
        "one more line against the dense forward with that W: \"general_w\": {ratio, hi_over_lo, ...}, and\n"
        "(unless --forward-only) its gradients against the dense backward with that W: \"grad\": {...}.",
        opts, sizeof opts / sizeof opts[0]};
    int rc = pr_cli_parse_nopos(&spec, argc, argv);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (d % 2)
        return pr_cli_fail(spec.name, "--d %ld: RoPE needs an even head dimension d", d);
    run_t runs[5], rw;
    int sq = !strcmp(scale, "inv-sqrt-d"), nr = 0;
    int st = run_size(&runs[nr++], (int)n, (int)d, (int)heads, B, seed, sq, !fwd_only, 0);
    if (!st && grow) {
        const long g[4][3] = {{n / 4, d, 1}, {n / 2, d, 1}, {n / 2, d / 2 + (d / 2) % 2, 1}, {n / 2, d, 2}};
        for (int k = 0; k < 4 && !st; k++)
            if (g[k][0] >= 1 && g[k][1] >= 2)
                st = run_size(&runs[nr++], (int)g[k][0], (int)g[k][1], (int)g[k][2], B, seed, sq, 0, 0);
    }
    if (!st && wn > 0)
        st = run_size(&rw, (int)(wn < n ? wn : n), (int)d, 1, B, seed, sq, !fwd_only, 1);
    if (st)
        return pr_cli_fail_status(spec.name, st, "certify");
    const run_t *r = runs;
    if (json) {
        printf("{\"bench\": \"certify\", \"n\": %d, \"d\": %d, \"heads\": %d, \"B\": %g, \"scale\": \"%s\", \"threads\": %d, "
               "\"certify_s\": %.4f, \"dense_s\": %.4f, \"ratio\": %.3f, \"target\": 20, \"hi_over_lo\": %.12g, "
               "\"hi_over_lo_minus_1\": %.3g, \"tightness_target\": 1.000001, \"fallback_fraction\": %.6g, \"lower\": %.17g, \"upper\": %.17g, "
               "\"verdict_atol0\": \"%s\", ",
               r->n, r->d, r->heads, B, scale, omp_get_max_threads(), r->cert_s, r->dense_s, r->cert_s / r->dense_s,
               r->tight, r->tight - 1.0, r->fallback, r->lower, r->upper, pr_cert_verdict_name((pr_cert_verdict_t)r->verdict));
        if (r->grad)
            printf("\"grad_ratio\": %.3f, \"grad_hi_over_lo\": %.12g, \"grad_hi_over_lo_minus_1\": {\"dq\": %.3g, "
                   "\"dk\": %.3g, \"dv\": %.3g}, \"grad_fallback_fraction\": %.6g, ",
                   r->gcert_s / r->gdense_s, r->gtight, r->gtk[0] - 1.0, r->gtk[1] - 1.0, r->gtk[2] - 1.0, r->gfallback);
        if (wn > 0) {
            printf("\"general_w\": ");
            print_run(&rw, 1, ", ");
        }
        printf("\"growth\": [");
        for (int k = 0; k < nr; k++)
            print_run(runs + k, 1, k + 1 < nr ? ", " : "");
        printf("]}\n");
    } else {
        for (int k = 0; k < nr; k++)
            print_run(runs + k, 0, "");
        if (wn > 0)
            print_run(&rw, 0, "");
        printf("targets: ratio <= 20 at n = 16384, d = 128, one head; hi/lo <= 1 + 1e-6 for B <= 4\n");
    }
    return 0;
}
