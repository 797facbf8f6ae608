#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "pr_status.h"
#include "checks.h"
#include "check_impl.h"

const pr_check_t pr_checks[] = {
    {"C1", "M is a sum of s rescaled Toeplitz matrices (exact, FLINT fmpq)",
     "max |expansion - dense| over M X", pr_check_c1},
    {"C2", "P(M) = sum_e alpha_e diag(u_e) T_e diag(v_e) (exact; float to rounding)",
     "exact: max |difference|; float: error / rounding bound", pr_check_c2},
    {"C3", "term count C(s+g,g); degree-k part C(s+k-1,k)",
     "max |enumerated - formula|", pr_check_c3},
    {"C4", "FFT Toeplitz product = dense product (certified vs exact FLINT)",
     "exact error / the engine's a-priori bound (Arb)", pr_check_c4},
    {"C5", "forward cost Theta(C(s+g,g)(d+1) n log n); crossover n* vs dense",
     "fitted log-log slope of the fast forward's time / claimed exponent 1", pr_check_c5},
    {"C6", "max|M| <= R = sigma B^2 max_l sum |w_ab(l)|",
     "max|M| / R (Arb upper bound)", pr_check_c6},
    {"C7", "least degree for e^x tracks the Aggarwal-Alman bound",
     "band max(r, 1/r), r = (g+1)/(c(A+1)) with fitted c; g certified", pr_check_c7},
    {"C8", "least degree for e^-x on [0,L] tracks Theta(max{sqrt(L log 1/d), ...})",
     "band max(r, 1/r), r = (g+1)/(c(A+1)) with fitted c; g certified", pr_check_c8},
    {"C9", "||O~ - O||inf <= 2 eps_A/(1-eps_A) ||V||inf",
     "||O~ - O||inf / bound (Arb, certified)", pr_check_c9},
    {"C10", "B = o(sqrt log n) => g = o(log n), terms n^o(1); blow-up past sqrt log n",
     "g/ln n at the largest n / at the smallest (certified least degree)", pr_check_c10},
    {"C11", "RoPE factorises: Q_i R_{j-i} K_j^T = (R_i Q_i).(R_j K_j)",
     "float error / derived tolerance (Arb side certified)", pr_check_c11},
    {"C12", "low-rank features C(d+g,g) vs Toeplitz terms C(2d+g,g)",
     "max |enumerated - formula|", pr_check_c12},
    {"C14", "W_l = I reduces to plain attention",
     "max(|ref(W=I) - plain| / 2^-100, |dense double(W=I) - plain| / rounding tol)", pr_check_c14},
    {"G1", "closed-form backward = derivative (high-precision central differences)",
     "max(|difference quotient - <grad, u>| / derived tol, |dense double - Arb| / rounding tol)", pr_check_g1},
    {"G2", "rows of dM sum to 0; dL/dX = A1^T dQ",
     "max(|dM row sum| / 2^-100, dL/dX derivative error / tol, |dense dX - Arb| / tol)", pr_check_g2},
    {"G3", "fast backward = dense backward on the same P (to rounding)",
     "|fast - Arb backward on P| / rounding tolerance", pr_check_g3},
    {"G4", "gradient error <= the propagated bound for eps",
     "|fast - Arb exact gradient| / (propagated bound + rounding)", pr_check_g4},
    {"G5", "backward cost near-linear in n; crossover n*",
     "fitted log-log slope of the fast backward's time / claimed exponent 1", pr_check_g5},
    {"F1", "double's floor grows like e^{2R} u (exact-mode run vs float run)",
     "error / (u e^{2R} ||V||inf), bound = gamma-count", pr_check_f1},
};
const int pr_ncheck = sizeof pr_checks / sizeof pr_checks[0];

const pr_check_t *pr_check_find(const char *id)
{
    for (int i = 0; i < pr_ncheck; i++)
        if (!strcasecmp(pr_checks[i].id, id))
            return &pr_checks[i];
    return NULL;
}

const char *pr_check_verdict_name(pr_check_verdict_t v)
{
    switch (v) {
    case PR_CHECK_PASS: return "pass";
    case PR_CHECK_FAIL: return "FAIL";
    case PR_CHECK_UNKNOWN: return "unknown";
    case PR_CHECK_NOTBUILT: return "not built yet";
    default: return "info";
    }
}

int pr_check_ok(pr_cert_verdict_t v)
{
    return v == PR_CERT_CERTIFIED ? 1 : v == PR_CERT_REFUTED ? 0 : -1;
}

int pr_check_run(pr_check_result_t *res, const pr_check_t *c, const pr_check_opts_t *opts)
{
    memset(res, 0, sizeof(*res));
    res->id = c->id;
    res->statement = c->statement;
    res->units = c->units;
    res->verdict = PR_CHECK_PASS;
    if (opts->trials < 1)
        return PR_EINVAL;
    int st = c->run(res, opts);
    if (res->first_fail)
        pr_check_note(res, "first failure: trial %ld, %s; replay: polyrope check %s --seed %llu --trials %ld",
                      res->first_fail, res->fail_config, c->id, (unsigned long long)opts->seed, res->first_fail);
    return st;
}

void pr_check_observe(pr_check_result_t *res, const char *config, double value, double bound, int ok)
{
    res->trials++;
    pr_check_observe_part(res, config, value, bound, ok);
}

void pr_check_observe_part(pr_check_result_t *res, const char *config, double value, double bound, int ok)
{
    int failed = ok == 0 || isnan(value);
    /* failures take precedence in the worst/bound columns */
    if (failed && !res->first_fail) {
        res->worst = value;
        res->bound = bound;
    } else if ((failed || !res->first_fail) && (!(value <= res->worst) || res->nconfig == 0)) {
        res->worst = value;
        res->bound = bound;
    }
    if (failed) {
        res->verdict = PR_CHECK_FAIL;
        if (!res->first_fail) {
            res->first_fail = res->trials > 0 ? res->trials : 1;
            snprintf(res->fail_config, sizeof res->fail_config, "%s", config);
        }
    }
    else if (ok < 0 && res->verdict == PR_CHECK_PASS)
        res->verdict = PR_CHECK_UNKNOWN;
    int k = 0;
    while (k < res->nconfig && strcmp(res->config[k], config))
        k++;
    if (k == res->nconfig) {
        if (k == PR_CHECK_MAX_CONFIGS)
            return;
        snprintf(res->config[k], PR_CHECK_CONFIG_LEN, "%s", config);
        res->config_worst[k] = value;
        res->nconfig++;
    } else if (!(value <= res->config_worst[k])) {
        res->config_worst[k] = value;
    }
}

void pr_check_note(pr_check_result_t *res, const char *fmt, ...)
{
    va_list ap;
    size_t len = strlen(res->note);
    if (len && len + 2 < sizeof res->note) {
        strcat(res->note, "; ");
        len += 2;
    }
    va_start(ap, fmt);
    vsnprintf(res->note + len, sizeof res->note - len, fmt, ap);
    va_end(ap);
}

int pr_check_not_built(pr_check_result_t *res, const char *what)
{
    res->verdict = PR_CHECK_NOTBUILT;
    res->worst = res->bound = NAN;
    pr_check_note(res, "needs %s, not built yet", what);
    return PR_OK;
}

void pr_check_print_header(FILE *f)
{
    fprintf(f, "%-4s %7s %11s %11s  %-13s %s\n", "id", "trials", "worst", "bound", "verdict", "claim / notes");
}

void pr_check_print(FILE *f, const pr_check_result_t *res)
{
    fprintf(f, "%-4s %7ld %11.3e %11.3e  %-13s %s\n", res->id, res->trials, res->worst, res->bound,
            pr_check_verdict_name(res->verdict), res->statement);
    if (res->units && *res->units && res->verdict != PR_CHECK_NOTBUILT)
        fprintf(f, "%45s worst/bound: %s\n", "", res->units);
    if (res->note[0])
        fprintf(f, "%45s %s\n", "", res->note);
}

int pr_check_record(FILE *f, const pr_check_result_t *res, int nres, const pr_check_opts_t *opts)
{
    fprintf(f, "# polyrope check --record: worst observed per claim and configuration\n");
    fprintf(f, "# seed %llu trials %ld\n", (unsigned long long)opts->seed, opts->trials);
    for (int r = 0; r < nres; r++)
        for (int k = 0; k < res[r].nconfig; k++)
            fprintf(f, "%s %s %.17g\n", res[r].id, res[r].config[k], res[r].config_worst[k]);
    return ferror(f) ? PR_EIO : PR_OK;
}

int pr_check_compare(FILE *out, FILE *baseline, const pr_check_result_t *res, int nres, double margin)
{
    char line[256];
    int bad = 0;
    while (fgets(line, sizeof line, baseline)) {
        char id[16], config[PR_CHECK_CONFIG_LEN + 1];
        double old;
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '#' || *p == 0)
            continue;
        if (sscanf(p, "%15s %48s %lf", id, config, &old) != 3)
            return -1;
        for (int r = 0; r < nres; r++) {
            if (strcasecmp(res[r].id, id))
                continue;
            for (int k = 0; k < res[r].nconfig; k++) {
                if (strcmp(res[r].config[k], config))
                    continue;
                double now = res[r].config_worst[k];
                if (!(now <= old * (1.0 + margin))) {
                    fprintf(out, "regression: %s %s worst %.3e, recorded %.3e (margin %g)\n",
                            id, config, now, old, margin);
                    bad++;
                }
            }
        }
    }
    return bad;
}

double pr_check_dense_tol(double R, double B, int s, int n, int grad)
{
    const double u = DBL_EPSILON / 2;
    double dM = 2.0 * (s + 4 * n + 8) * u * (R + 1.0), base = dM + (n + 8) * u;
    return grad ? 64.0 * base * (B + 1) * (B + 1) * (B + 1) * s * n : 2.0 * base * B;
}
