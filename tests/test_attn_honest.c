/* Honest attn results (issue 13). Oracles: the Arb reference (pr_hiprec_certify of the
 * real-number problem) for the dense error estimates on random instances; mpmath at 60 digits
 * (tests/attn_mpmath.py, $PR_ORACLE, run by /usr/bin/python3) for what `attn --certify`
 * certifies; the command line for the --degree rule, the warnings and the unknown verdict. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "polyrope-exact.h"
#include "pr_test.h"
#include "pr_test_cli.h"

#define PREC 128

/* the number printed by the oracle on q/k/v/o .npy files of DIR (NAN if it failed) */
static double oracle(const char *dir, const char *scale, double alibi, int causal)
{
    const char *py = getenv("PR_ORACLE");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' %s/q.npy %s/k.npy %s/v.npy %s/o.npy 10000 %s %.17g %d", py ? py : "",
             dir, dir, dir, dir, scale, alibi, causal);
    FILE *f = popen(cmd, "r");
    double x = NAN;
    if (f) {
        if (fscanf(f, "%lf", &x) != 1)
            x = NAN;
        if (pclose(f))
            x = NAN;
    }
    return x;
}

static void write2(const char *path, const double *x, long r, long c)
{
    long shape[2] = {r, c};
    if (pr_npy_write(path, x, 2, shape))
        abort();
}

static int has(const char *key_value) { return strstr(pr_test_cli_out, key_value) != NULL; }

/* pr_dense_error_est against the certified errors of the dense outputs, random instances */
static void estimates_cover(pr_rng_t rng)
{
    for (int trial = 0; trial < 60; trial++) {
        int n = 1 + (int)pr_rng_below(rng, 20), d = 2 * (1 + (int)pr_rng_below(rng, 3)), kind = trial % 4;
        double B = exp(pr_rng_range(rng, log(0.1), log(trial % 5 == 4 ? 1e9 : 6.0)));
        double alibi = trial % 3 == 0 ? pr_rng_range(rng, 0.0, 2.0) : 0.0;
        pr_scale_t scale = trial % 2 ? PR_SCALE_INV_SQRT_D : PR_SCALE_INV_D;
        size_t nd = (size_t)n * d, L = 2 * (size_t)n - 1;
        double *buf = malloc(sizeof(double) * (8 * nd + L + n));
        double *Q = buf, *K = Q + nd, *V = K + nd, *dO = V + nd, *O = dO + nd, *dQ = O + nd, *dK = dQ + nd;
        double *dV = dK + nd, *beta = dV + nd, *lse = beta + L;
        pr_rng_fill(Q, 3L * (long)nd, B, rng);
        pr_rng_fill(dO, (long)nd, 1.0, rng);
        pr_posw_t W;
        if (kind == 0 || kind == 1)
            PR_CHECK_OK(pr_posw_init_rope(W, n, d, PR_ROPE_BASE_DEFAULT, kind ? PR_ROPE_NEOX : PR_ROPE_INTERLEAVED));
        else if (kind == 2)
            PR_CHECK_OK(pr_posw_init_general(W, n, d, rng));
        else
            PR_CHECK_OK(pr_posw_init_identity(W, n, d));
        double *dw = malloc(sizeof(double) * W->s * L);
        pr_attn_opts_t opts;
        pr_attn_opts_default(&opts, d);
        opts.sigma = pr_scale_sigma(scale, d);
        opts.causal = trial % 5 == 1;
        if (alibi > 0) {
            PR_CHECK_OK(pr_bias_alibi(beta, n, alibi));
            opts.beta = beta;
        }
        int st = pr_dense_forward(O, lse, Q, K, V, W, n, d, &opts);
        if (!st)
            st = pr_dense_backward(dQ, dK, dV, kind == 2 ? dw : 0, Q, K, V, W, O, lse, dO, n, d, &opts);
        PR_CHECK(st == 0, "dense: %s, trial %d", pr_strerror(st), trial);
        pr_dense_err_t e;
        PR_CHECK_OK(pr_dense_error_est(&e, Q, K, V, W, O, dO, n, d, &opts));
        arb_t eo, eg;
        arb_init(eo);
        arb_init(eg);
        pr_hiprec_def_t def;
        pr_hiprec_def_real(&def, scale, alibi);
        PR_CHECK_OK(pr_hiprec_certify(eo, eg, O, dQ, dK, dV, kind == 2 ? dw : 0, Q, K, V, W, dO, n, d, &opts, &def,
                                      PREC));
        double co = pr_hiprec_ubound_d(eo), cg = pr_hiprec_ubound_d(eg);
        double eg_max = fmax(fmax(e.dq, e.dk), fmax(e.dv, kind == 2 ? e.dw : 0.0));
        PR_CHECK(co <= e.o && cg <= eg_max, "estimate below the certified error: O %g > %g or grads %g > %g; "
                 "trial %d n=%d d=%d B=%.17g kind=%d alibi=%g scale=%d causal=%d", co, e.o, cg, eg_max, trial, n, d, B,
                 kind, alibi, (int)scale, opts.causal);
        /* each gradient apart where the doubles are the real numbers (σ exact, no RoPE, no ALiBi) */
        double sg = opts.sigma;
        if (kind >= 2 && alibi == 0.0 && sg * (scale ? sqrt((double)d) : (double)d) == 1.0 && sg == ldexp(1.0, ilogb(sg))) {
            size_t sw = (size_t)W->s * L;
            arb_ptr g = _arb_vec_init((slong)(3 * nd + sw));
            PR_CHECK_OK(pr_hiprec_backward(g, g + nd, g + 2 * nd, g + 3 * nd, Q, K, V, W, dO, n, d, &opts, PREC));
            const double *x[4] = {dQ, dK, dV, dw}, est[4] = {e.dq, e.dk, e.dv, e.dw};
            for (int t = 0; t < (kind == 2 ? 4 : 3); t++) {
                pr_hiprec_max_error(eo, x[t], g + t * nd, t < 3 ? nd : sw, PREC);
                double c = pr_hiprec_ubound_d(eo);
                PR_CHECK(c <= est[t], "gradient %d: certified %g > estimate %g; trial %d n=%d d=%d B=%.17g kind=%d",
                         t, c, est[t], trial, n, d, B, kind);
            }
            _arb_vec_clear(g, (slong)(3 * nd + sw));
        }
        arb_clear(eo);
        arb_clear(eg);
        free(dw);
        free(buf);
        pr_posw_clear(W);
    }
}

/* a fixed --degree: one rule, its bound must meet --eps (library: eps_met reports it) */
static void degree_rule(void)
{
    const char *refused[] = {"attn --algo fft --degree 1 --n 64 --d 4", "attn --algo fft --degree 2 --n 64 --d 4",
                             "attn --algo lowrank --degree 2 --n 64 --d 4", "attn --algo auto --degree 2 --n 64 --d 4"};
    for (int t = 0; t < 4; t++) {
        int rc = pr_test_cli_run("honest", refused[t]);
        PR_CHECK(rc == 2 && pr_test_lines(pr_test_cli_err) == 1 && strstr(pr_test_cli_err, "does not meet --eps") &&
                 strstr(pr_test_cli_err, "use --degree") && !pr_test_cli_out[0],
                 "polyrope %s: exit %d, stderr '%s' (want exit 2, does not meet --eps)", refused[t], rc, pr_test_cli_err);
    }
    int rc = pr_test_cli_run("honest", "attn --algo fft --degree 9 --n 64 --d 4 --json");
    double bound = pr_test_cli_json("bound"), eps = pr_test_cli_json("eps");
    PR_CHECK(rc == 0 && bound <= eps && has("\"eps_met\": true") && has("\"degree_fixed\": true"),
             "--degree 9 meets 1e-6: exit %d bound %g %s", rc, bound, pr_test_cli_out);

    int n = 64, d = 4;
    double *Q = malloc(sizeof(double) * 3 * n * d);
    pr_rng_t r;
    pr_rng_init(r, 1);
    pr_rng_fill(Q, 3L * n * d, 1.0, r);
    pr_posw_t W;
    PR_CHECK_OK(pr_posw_init_rope(W, n, d, PR_ROPE_BASE_DEFAULT, PR_ROPE_INTERLEAVED));
    pr_attn_opts_t opts;
    pr_attn_opts_default(&opts, d);
    pr_control_opts_t o;
    pr_control_opts_default(&o);
    pr_expoly_t p;
    pr_expoly_init(p);
    pr_control_info_t info;
    for (o.degree = 1; o.degree <= 2; o.degree++) {
        int st = pr_control_choose(p, &info, Q, Q + n * d, Q + 2 * n * d, W, n, d, &opts, &o, 0);
        PR_CHECK(st == PR_OK && !info.eps_met && !(info.bound <= o.eps), "degree %d: %s, eps_met %d, bound %g",
                 o.degree, pr_strerror(st), info.eps_met, info.bound);
    }
    o.degree = 0;
    PR_CHECK(!pr_control_choose(p, &info, Q, Q + n * d, Q + 2 * n * d, W, n, d, &opts, &o, 0) && info.eps_met &&
             info.bound <= o.eps, "least degree: eps_met %d bound %g", info.eps_met, info.bound);
    pr_expoly_clear(p);
    pr_posw_clear(W);
    free(Q);
}

/* what --certify certifies: the real-number problem, checked against mpmath */
static void certify_real(pr_rng_t rng)
{
    struct {
        int n, d;
        double B, alibi;
        const char *scale;
        int causal;
    } cases[] = {{16, 2, 30.0, 0.0, "inv-d", 0}, {12, 6, 8.0, 0.0, "inv-sqrt-d", 0}, {10, 4, 5.0, 0.3, "inv-d", 1}};
    for (int t = 0; t < 3; t++) {
        int n = cases[t].n, d = cases[t].d;
        size_t nd = (size_t)n * d;
        double *x = malloc(sizeof(double) * 3 * nd);
        pr_rng_fill(x, 3L * (long)nd, cases[t].B, rng);
        mkdir("honest_cert", 0777);
        write2("honest_cert/q.npy", x, n, d);
        write2("honest_cert/k.npy", x + nd, n, d);
        write2("honest_cert/v.npy", x + 2 * nd, n, d);
        char args[512];
        snprintf(args, sizeof args, "attn --q honest_cert/q.npy --k honest_cert/k.npy --v honest_cert/v.npy --scale %s "
                 "--alibi %g%s --certify --json --out honest_cert", cases[t].scale, cases[t].alibi,
                 cases[t].causal ? " --causal" : "");
        int rc = pr_test_cli_run("honest", args);
        double cert = pr_test_cli_json("certified_err_inf");
        double truth = oracle("honest_cert", cases[t].scale, cases[t].alibi, cases[t].causal);
        /* an upper bound, and a tight one (a 128-bit ball): above the truth by a relative 1e-9 at most */
        PR_CHECK(rc == 0 && has("\"certificate_of\": \"attention of the real numbers") && truth <= cert &&
                 cert <= truth * (1 + 1e-9) + 1e-300,
                 "polyrope %s: exit %d, certified %.17g, mpmath %.17g (inputs in honest_cert/)", args, rc, cert, truth);
        free(x);
    }
}

/* the estimates, the warning, the unknown verdict */
static void warnings(pr_rng_t rng)
{
    /* entries near 1e10: the dense backward cancels in dO·Vᵀ - r; it warns, its estimate covers
     * the certified error, and the certificate is finite (exit 0) */
    int rc = pr_test_cli_run("honest", "attn --n 8 --d 2 --B 1e10 --backward --certify --json");
    double cg = pr_test_cli_json("certified_grad_err_inf"), eg = pr_test_cli_json("grad_err_est");
    double co = pr_test_cli_json("certified_err_inf"), eo = pr_test_cli_json("err_est");
    PR_CHECK(rc == 0 && pr_test_lines(pr_test_cli_err) == 1 && strstr(pr_test_cli_err, "warning") &&
             strstr(pr_test_cli_err, "--certify") && has("\"trusted\": false") && cg > 1.0 && cg <= eg && co <= eo,
             "1e10: exit %d, stderr '%s', certified %g (O %g), estimated %g (O %g)", rc, pr_test_cli_err, cg, co, eg, eo);
    /* B = 1e20: no digits left in Arb at 128 bits: unknown, exit 1 */
    rc = pr_test_cli_run("honest", "attn --n 16 --d 2 --B 1e20 --certify --json");
    PR_CHECK(rc == 1 && has("\"certified_verdict\": \"unknown\"") && strstr(pr_test_cli_err, "unknown"),
             "B = 1e20: exit %d, %s, stderr '%s'", rc, pr_test_cli_out, pr_test_cli_err);
    /* normal inputs: no warning, trusted, and the estimates cover the certified errors */
    const char *kinds[] = {"--pos rope", "--pos rope-neox --causal", "--pos general --alibi 0.5",
                           "--pos identity --scale inv-sqrt-d", "--algo fft --pos general --d 2",
                           "--algo lowrank --d 2 --eps 1e-4"};
    for (int t = 0; t < 6; t++) {
        char args[256];
        long seed = (long)pr_rng_below(rng, 1000);
        snprintf(args, sizeof args, "attn %s --n 48 --B 1.5 --backward --certify --json --seed %ld", kinds[t], seed);
        rc = pr_test_cli_run("honest", args);
        co = pr_test_cli_json("certified_err_inf");
        cg = pr_test_cli_json("certified_grad_err_inf");
        eo = pr_test_cli_json("err_est");
        eg = pr_test_cli_json("grad_err_est");
        PR_CHECK(rc == 0 && !pr_test_cli_err[0] && has("\"trusted\": true") && co <= eo && cg <= eg,
                 "polyrope %s: exit %d, stderr '%s', certified %g/%g, estimated %g/%g", args, rc, pr_test_cli_err, co,
                 cg, eo, eg);
    }
}

/* pr_hiprec_def_t's checks and the three verdicts */
static void hiprec_branches(void)
{
    int n = 4, d = 2;
    double x[24];
    for (int i = 0; i < 24; i++)
        x[i] = 0.125 * (i % 7) - 0.3;
    pr_posw_t W;
    PR_CHECK_OK(pr_posw_init_rope(W, n, d, PR_ROPE_BASE_DEFAULT, PR_ROPE_INTERLEAVED));
    pr_attn_opts_t opts;
    pr_attn_opts_default(&opts, d);
    arb_t e1, e2;
    arb_init(e1);
    arb_init(e2);
    pr_hiprec_def_t def;
    pr_hiprec_def_real(&def, PR_SCALE_INV_D, 0.5);   /* an ALiBi slope without its β */
    PR_CHECK(pr_hiprec_certify(e1, e2, x, 0, 0, 0, 0, x, x + 8, x + 16, W, 0, n, d, &opts, &def, PREC) == PR_EINVAL,
             "ALiBi slope without opts->beta accepted");
    pr_hiprec_def_real(&def, (pr_scale_t)7, 0.0);
    PR_CHECK(pr_hiprec_certify(e1, e2, x, 0, 0, 0, 0, x, x + 8, x + 16, W, 0, n, d, &opts, &def, PREC) == PR_EINVAL,
             "unknown scale accepted");
    arb_t q, t;
    arb_init(q);
    arb_init(t);
    arb_set_d(t, 1.0);
    arb_set_d(q, 0.5);
    PR_CHECK(pr_hiprec_verdict(q, t) == PR_CERT_CERTIFIED, "0.5 <= 1 not certified");
    arb_set_d(q, 2.0);
    PR_CHECK(pr_hiprec_verdict(q, t) == PR_CERT_REFUTED, "2 <= 1 not refuted");
    arb_set_d(q, 1.0);
    mag_set_d(arb_radref(q), 0.25);
    PR_CHECK(pr_hiprec_verdict(q, t) == PR_CERT_UNKNOWN, "[0.75, 1.25] <= 1 not unknown");
    arb_clear(q);
    arb_clear(t);
    arb_clear(e1);
    arb_clear(e2);
    pr_posw_clear(W);
}

int main(void)
{
    if (!getenv("POLYROPE") || !getenv("PR_ORACLE")) {
        fprintf(stderr, "test_attn_honest: set POLYROPE and PR_ORACLE (meson test does)\n");
        return 1;
    }
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_attn_honest", 20261128));
    estimates_cover(rng);
    hiprec_branches();
    degree_rule();
    certify_real(rng);
    warnings(rng);
    return pr_test_finish("test_attn_honest");
}
