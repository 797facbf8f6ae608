#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "pr_npy.h"
#include "pr_status.h"
#include "checks.h"
#include "check_impl.h"

const pr_check_t pr_checks[] = {
    {"C1", "M is a sum of s rescaled Toeplitz matrices (exact, FLINT fmpq)",
     "max |expansion - dense| over M X", pr_check_c1, 1},
    {"C2", "P(M) = sum_e alpha_e diag(u_e) T_e diag(v_e) (exact; float to rounding)",
     "exact: max |difference|; float: error / rounding bound", pr_check_c2, 1},
    {"C3", "term count C(s+g,g); degree-k part C(s+k-1,k)",
     "max |enumerated - formula|", pr_check_c3, 1},
    {"C4", "FFT Toeplitz product = dense product (certified vs exact FLINT)",
     "exact error / the engine's a-priori bound (Arb)", pr_check_c4, 1},
    {"C5", "forward cost Theta(C(s+g,g)(d+1) n log n); crossover n* vs dense",
     "fitted log-log slope of the fast forward's time / claimed exponent 1", pr_check_c5, 0},
    {"C6", "max|M| <= R = sigma B^2 max_l sum |w_ab(l)|",
     "max|M| / R (Arb upper bound)", pr_check_c6, 1},
    {"C7", "least degree (of Chebyshev interpolation, certified) for e^x tracks Aggarwal-Alman",
     "band max(r, 1/r), r = (g+1)/(c(A+1)) with fitted c; g certified", pr_check_c7, 1},
    {"C8", "least degree (of Chebyshev interp., certified) for e^-x on [0,L] tracks Theta(...)",
     "band max(r, 1/r), r = (g+1)/(c(A+1)) with fitted c; g certified", pr_check_c8, 1},
    {"C9", "||O~ - O||inf <= 2 eps_A/(1-eps_A) ||V||inf",
     "||O~ - O||inf / bound (Arb, certified)", pr_check_c9, 1},
    {"C10", "B = o(sqrt log n) => g = o(log n), terms n^o(1); blow-up past sqrt log n",
     "g/ln n at the largest n / at the smallest (certified least degree)", pr_check_c10, 0},
    {"C11", "RoPE factorises: Q_i R_{j-i} K_j^T = (R_i Q_i).(R_j K_j)",
     "float error / derived tolerance (Arb side certified)", pr_check_c11, 1},
    {"C12", "low-rank features C(d+g,g) vs Toeplitz terms C(2d+g,g)",
     "max |enumerated - formula|", pr_check_c12, 1},
    {"C14", "W_l = I reduces to plain attention",
     "max(|ref(W=I) - plain| / 2^-100, |dense double(W=I) - plain| / rounding tol)", pr_check_c14, 1},
    {"G1", "closed-form backward = derivative (high-precision central differences)",
     "max(|difference quotient - <grad, u>| / derived tol, |dense double - Arb| / rounding tol)", pr_check_g1, 1},
    {"G2", "rows of dM sum to 0; dL/dX = A1^T dQ",
     "max(|dM row sum| / 2^-100, dL/dX derivative error / tol, |dense dX - Arb| / tol)", pr_check_g2, 1},
    {"G3", "fast backward = dense backward on the same P (to rounding)",
     "|fast - Arb backward on P| / rounding tolerance", pr_check_g3, 1},
    {"G4", "gradient error <= the propagated bound for eps",
     "|fast - Arb exact gradient| / (propagated bound + rounding)", pr_check_g4, 1},
    {"G5", "backward cost near-linear in n; crossover n*",
     "fitted log-log slope of the fast backward's time / claimed exponent 1", pr_check_g5, 0},
    {"F1", "double's floor grows like e^{2R} u (exact-mode run vs float run)",
     "error / (u e^{2R} ||V||inf), bound = gamma-count", pr_check_f1, 1},
};
const int pr_ncheck = sizeof pr_checks / sizeof pr_checks[0];

const pr_check_t *pr_check_find(const char *id)
{
    for (int i = 0; i < pr_ncheck; i++)
        if (!strcasecmp(pr_checks[i].id, id))
            return &pr_checks[i];
    return NULL;
}

/* The cost model of pr_check_predict, in CPU seconds of a release build on one core of the
 * project's machine (2 cores), from `polyrope check NAME --trials T --seed S` over several seeds
 * (T = 100 to 10000, user time; the fixed part from T = 1..3). A trial's sizes are random and
 * its cost heavy-tailed (G3: 0.005 to 0.08 s a trial by seed): per is the largest seed's mean. */
typedef enum {
    COST_TRIALS,           /* fixed + per × trials (one trial alone with opts->only) */
    COST_ALL_TRIALS,       /* fixed + per × trials, also with opts->only: the fit needs every trial */
    COST_REPS,             /* fixed + per × min(trials, 3): timing repetitions at fixed sizes */
    COST_FIXED             /* fixed: sizes and repetitions do not follow --trials */
} cost_shape_t;

static const struct {
    const char *id;
    cost_shape_t shape;
    double fixed, per;
} cost_table[] = {
    {"C1", COST_TRIALS, 0.0, 0.0005},
    {"C2", COST_TRIALS, 0.0, 0.0005},
    {"C3", COST_TRIALS, 0.0, 0.0002},
    {"C4", COST_TRIALS, 0.0, 0.0001},
    {"C5", COST_REPS, 0.05, 0.03},
    {"C6", COST_TRIALS, 0.0, 0.0001},
    {"C7", COST_ALL_TRIALS, 0.0, 0.016},
    {"C8", COST_ALL_TRIALS, 0.0, 0.0065},
    {"C9", COST_TRIALS, 0.0, 0.021},
    {"C10", COST_FIXED, 1.4, 0.0},
    {"C11", COST_TRIALS, 0.0, 0.0023},
    {"C12", COST_TRIALS, 0.0, 0.0003},
    {"C14", COST_TRIALS, 0.0, 0.012},
    {"G1", COST_TRIALS, 0.0, 0.012},
    {"G2", COST_TRIALS, 0.0, 0.012},
    {"G3", COST_TRIALS, 0.0, 0.083},
    {"G4", COST_TRIALS, 0.0, 0.077},
    {"G5", COST_REPS, 0.1, 0.06},
    {"F1", COST_TRIALS, 0.0, 0.12},
};
_Static_assert(sizeof cost_table / sizeof cost_table[0] == sizeof pr_checks / sizeof pr_checks[0],
               "every claim has a cost");

int pr_check_predict(double *seconds, const pr_check_t *c, const pr_check_opts_t *opts)
{
    *seconds = 0.0;
    if (opts->trials < 1)
        return PR_EINVAL;
    for (size_t i = 0; i < sizeof cost_table / sizeof cost_table[0]; i++) {
        if (strcmp(cost_table[i].id, c->id))
            continue;
        double t = (double)opts->trials;
        switch (cost_table[i].shape) {
        case COST_TRIALS: t = opts->only ? 1.0 : t; break;
        case COST_REPS: t = fmin(t, 3.0); break;
        case COST_FIXED: t = 0.0; break;
        default: break;
        }
        *seconds = cost_table[i].fixed + cost_table[i].per * t;
        return PR_OK;
    }
    return PR_EINVAL;
}

const char *pr_check_verdict_name(pr_check_verdict_t v)
{
    switch (v) {
    case PR_CHECK_PASS: return "pass";
    case PR_CHECK_FAIL: return "FAIL";
    case PR_CHECK_UNKNOWN: return "unknown";
    default: return "info";
    }
}

int pr_check_ok(pr_cert_verdict_t v)
{
    return v == PR_CERT_CERTIFIED ? 1 : v == PR_CERT_REFUTED ? 0 : -1;
}

/* the current trial's record and --replay output: one printf to both */
static void rec_printf(pr_check_result_t *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rec_printf(pr_check_result_t *res, const char *fmt, ...)
{
    va_list ap;
    if (res->rec) {
        va_start(ap, fmt);
        if (vfprintf(res->rec, fmt, ap) < 0 && !res->dump_status)
            res->dump_status = PR_EIO;
        va_end(ap);
    }
    if (res->opts && res->opts->show) {
        va_start(ap, fmt);
        vfprintf(res->opts->show, fmt, ap);
        va_end(ap);
    }
}

static void rec_close(pr_check_result_t *res)
{
    if (res->rec && fclose(res->rec) && !res->dump_status)
        res->dump_status = PR_EIO;
    res->rec = NULL;
}

/* dir/CLAIM[/trial-K] (k > 0) */
static int trial_dir(char *path, size_t cap, const pr_check_result_t *res, long k)
{
    int len = k ? snprintf(path, cap, "%s/%s/trial-%ld", res->opts->dump, res->id, k)
                : snprintf(path, cap, "%s/%s", res->opts->dump, res->id);
    return len < 0 || (size_t)len >= cap ? PR_EINVAL : PR_OK;
}

static int make_dir(const char *path)
{
    return mkdir(path, 0777) && errno != EEXIST ? PR_EIO : PR_OK;
}

void pr_check_trial_rng(pr_rng_t rng, const pr_check_opts_t *opts, uint64_t salt, long trial)
{
    /* a stream of its own per trial: trial k replays without trials 1..k-1 */
    pr_rng_init(rng, opts->seed ^ salt ^ ((uint64_t)(trial + 1) * 0xD1B54A32D192ED03ULL));
    if (opts->progress)
        opts->progress(opts->progress_arg, trial + 1);
}

int pr_check_trial(pr_check_result_t *res, pr_rng_t rng, uint64_t salt, long trial)
{
    if (!pr_check_trial_open(res, trial))
        return 0;
    pr_check_trial_rng(rng, res->opts, salt, trial);
    return 1;
}

int pr_check_trial_open(pr_check_result_t *res, long trial)
{
    const pr_check_opts_t *o = res->opts;
    rec_close(res);
    if (o->only && trial + 1 != o->only)
        return 0;
    res->cur_trial = trial + 1;
    if (o->dump) {
        char path[4096];
        int st = trial_dir(path, sizeof path - 16, res, 0);
        if (!st)
            st = make_dir(path);
        if (!st)
            st = trial_dir(path, sizeof path - 16, res, res->cur_trial);
        if (!st)
            st = make_dir(path);
        if (!st) {
            strcat(path, "/trial.txt");
            if (!(res->rec = fopen(path, "w")))
                st = PR_EIO;
        }
        if (st && !res->dump_status)
            res->dump_status = st;
    }
    rec_printf(res, "claim %s\nseed %llu\ntrial %ld\nreplay polyrope check %s --replay %llu/%ld\n", res->id,
               (unsigned long long)o->seed, res->cur_trial, res->id, (unsigned long long)o->seed,
               res->cur_trial);
    return 1;
}

void pr_check_put(pr_check_result_t *res, const char *key, const char *fmt, ...)
{
    if (!res->rec && !(res->opts && res->opts->show))
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    rec_printf(res, "%s %s\n", key, buf);
}

void pr_check_put_d(pr_check_result_t *res, const char *key, double v)
{
    pr_check_put(res, key, "%.17g %a", v, v);
}

void pr_check_put_vec(pr_check_result_t *res, const char *name, const double *x, long rows, long cols)
{
    if (!res->rec && !(res->opts && res->opts->show))
        return;
    rec_printf(res, "array %s %ld %ld%s%s%s\n", name, rows, cols, res->rec ? " " : "", res->rec ? name : "",
               res->rec ? ".npy" : "");
    if (res->rec) {
        char path[4096];
        long shape[2] = {rows, cols};
        int st = trial_dir(path, sizeof path - 64, res, res->cur_trial);
        if (!st && strlen(name) < 48) {
            strcat(path, "/");
            strcat(path, name);
            strcat(path, ".npy");
            st = pr_npy_write(path, x, 2, shape);
        }
        if (st && !res->dump_status)
            res->dump_status = st ? st : PR_EINVAL;
    }
    if (res->opts->show) {
        for (long k = 0; k < rows * cols; k++)
            fprintf(res->opts->show, "%.17g%s", x[k], (k + 1) % cols == 0 ? "\n" : " ");
    }
}

int pr_check_run(pr_check_result_t *res, const pr_check_t *c, const pr_check_opts_t *opts)
{
    memset(res, 0, sizeof(*res));
    res->id = c->id;
    res->statement = c->statement;
    res->units = c->units;
    res->verdict = PR_CHECK_PASS;
    res->opts = opts;
    if (opts->trials < 1 || opts->only < 0 || opts->only > opts->trials ||
        (!c->replayable && (opts->only || opts->dump || opts->show))) {
        res->verdict = PR_CHECK_FAIL;
        pr_check_note(res, "not run: %s", pr_strerror(PR_EINVAL));
        return PR_EINVAL;
    }
    int st = c->run(res, opts);
    rec_close(res);
    res->cur_trial = 0;
    if (!st)
        st = res->dump_status;
    /* passed needs evidence: a trial, finite numbers, no error */
    if (st) {
        res->verdict = PR_CHECK_FAIL;
        pr_check_note(res, "could not run to the end: %s", pr_strerror(st));
    } else if (res->verdict == PR_CHECK_INFO && !(isfinite(res->worst) && isfinite(res->bound))) {
        res->verdict = PR_CHECK_FAIL;
        pr_check_note(res, "FAIL: the measurement gave no finite value");
    } else if ((res->verdict == PR_CHECK_PASS || res->verdict == PR_CHECK_UNKNOWN) && res->trials < 1) {
        res->verdict = PR_CHECK_FAIL;
        pr_check_note(res, "FAIL: no trial ran, nothing was checked");
    } else if (res->verdict == PR_CHECK_PASS && !(isfinite(res->worst) && isfinite(res->bound))) {
        res->verdict = PR_CHECK_FAIL;
        pr_check_note(res, "FAIL: worst or bound not finite");
    }
    if (res->first_fail) {
        if (c->replayable)
            pr_check_note(res, "first failure: trial %ld, %s; replay: polyrope check %s --replay %llu/%ld",
                          res->first_fail, res->fail_config, c->id, (unsigned long long)opts->seed,
                          res->first_fail);
        else
            pr_check_note(res, "first failure: trial %ld, %s; replay: polyrope check %s --seed %llu --trials %ld",
                          res->first_fail, res->fail_config, c->id, (unsigned long long)opts->seed,
                          res->first_fail);
    }
    res->opts = NULL;
    return st;
}

void pr_check_observe(pr_check_result_t *res, const char *config, double value, double bound, int ok)
{
    res->trials++;
    pr_check_observe_part(res, config, value, bound, ok);
}

void pr_check_observe_part(pr_check_result_t *res, const char *config, double value, double bound, int ok)
{
    /* a NaN, or a pass resting on an infinite number, is a failure, never a pass */
    int finite = isfinite(value) && isfinite(bound);
    int failed = ok == 0 || isnan(value) || isnan(bound) || (ok > 0 && !finite);
    rec_printf(res, "observed %s %.17g %a bound %.17g %a %s\n", config, value, value, bound, bound,
               failed ? "FAIL" : ok > 0 ? "pass" : "unknown");
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
            res->first_fail = res->cur_trial > 0 ? res->cur_trial : res->trials > 0 ? res->trials : 1;
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

void pr_check_print_header(FILE *f)
{
    fprintf(f, "%-4s %7s %11s %11s  %-13s %s\n", "id", "trials", "worst", "bound", "verdict", "claim / notes");
}

void pr_check_print(FILE *f, const pr_check_result_t *res)
{
    fprintf(f, "%-4s %7ld %11.3e %11.3e  %-13s %s\n", res->id, res->trials, res->worst, res->bound,
            pr_check_verdict_name(res->verdict), res->statement);
    if (res->units && *res->units)
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

static int config_char(int c)
{
    return isalnum(c) || strchr("/<>=_.+-", c);
}

/* one whitespace-delimited field of p (advanced past it) into out (cap bytes), or -1 if
 * missing or too long */
static int field(char **p, char *out, size_t cap)
{
    while (**p == ' ' || **p == '\t')
        (*p)++;
    size_t len = 0;
    while ((*p)[len] && !isspace((unsigned char)(*p)[len]))
        len++;
    if (!len || len >= cap)
        return -1;
    memcpy(out, *p, len);
    out[len] = 0;
    *p += len;
    return 0;
}

static int why_set(char *why, size_t why_len, long line, const char *what)
{
    if (why_len)
        snprintf(why, why_len, "line %ld: %s", line, what);
    return PR_EINVAL;
}

int pr_check_baseline_read(pr_check_baseline_t *B, FILE *f, char *why, size_t why_len)
{
    memset(B, 0, sizeof(*B));
    if (why_len)
        why[0] = 0;
    char line[PR_CHECK_LINE_MAX + 2];
    long lineno = 0;
    for (;;) {
        /* fgets cannot tell a NUL byte from the end of the line: read byte by byte */
        size_t len = 0;
        int c;
        while ((c = getc(f)) != EOF && c != '\n') {
            if (c == 0)
                return why_set(why, why_len, lineno + 1, "a NUL byte (not a text file)");
            if (len >= PR_CHECK_LINE_MAX)
                return why_set(why, why_len, lineno + 1, "line too long");
            line[len++] = (char)c;
        }
        if (ferror(f))
            return PR_EIO;
        if (c == EOF && len == 0)
            break;
        line[len] = 0;
        lineno++;
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '#' || *p == 0)
            continue;
        char id[16], config[PR_CHECK_CONFIG_LEN], num[64];
        if (field(&p, id, sizeof id) || field(&p, config, sizeof config) || field(&p, num, sizeof num))
            return why_set(why, why_len, lineno, "expected 'CLAIM CONFIG VALUE'");
        while (isspace((unsigned char)*p))
            p++;
        if (*p)
            return why_set(why, why_len, lineno, "more than three fields");
        const pr_check_t *ck = pr_check_find(id);
        if (!ck)
            return why_set(why, why_len, lineno, "unknown claim id (see polyrope check --list)");
        for (char *q = config; *q; q++)
            if (!config_char((unsigned char)*q))
                return why_set(why, why_len, lineno, "configuration with a character outside [A-Za-z0-9/<>=_.+-]");
        char *endp;
        errno = 0;
        double v = strtod(num, &endp);
        if (*endp || endp == num || errno == ERANGE || !isfinite(v) || v < 0)
            return why_set(why, why_len, lineno, "value is not a finite number >= 0");
        for (long k = 0; k < B->n; k++)
            if (B->e[k].id == ck->id && !strcmp(B->e[k].config, config))
                return why_set(why, why_len, lineno, "claim and configuration given twice");
        if (B->n == PR_CHECK_BASELINE_MAX)
            return why_set(why, why_len, lineno, "too many entries");
        if (B->n == B->alloc) {
            long na = B->alloc ? 2 * B->alloc : 64;
            pr_check_base_entry_t *e = realloc(B->e, sizeof(*e) * (size_t)na);
            if (!e)
                return PR_ENOMEM;
            B->e = e;
            B->alloc = na;
        }
        B->e[B->n].id = ck->id;
        memcpy(B->e[B->n].config, config, sizeof config);
        B->e[B->n].value = v;
        B->n++;
    }
    return PR_OK;
}

void pr_check_baseline_clear(pr_check_baseline_t *B)
{
    free(B->e);
    memset(B, 0, sizeof(*B));
}

int pr_check_baseline_compare(FILE *out, const pr_check_baseline_t *B, const pr_check_result_t *res,
                              int nres, double margin)
{
    int bad = 0;
    for (long b = 0; b < B->n; b++) {
        const pr_check_base_entry_t *e = &B->e[b];
        for (int r = 0; r < nres; r++) {
            if (strcasecmp(res[r].id, e->id))
                continue;
            for (int k = 0; k < res[r].nconfig; k++) {
                if (strcmp(res[r].config[k], e->config))
                    continue;
                double now = res[r].config_worst[k];
                if (!(now <= e->value * (1.0 + margin))) {
                    fprintf(out, "regression: %s %s worst %.3e, recorded %.3e (margin %g)\n",
                            e->id, e->config, now, e->value, margin);
                    bad++;
                }
            }
        }
    }
    return bad;
}

int pr_check_compare(FILE *out, FILE *baseline, const pr_check_result_t *res, int nres, double margin)
{
    pr_check_baseline_t B;
    char why[128];
    int st = pr_check_baseline_read(&B, baseline, why, sizeof why);
    int bad = st ? -1 : pr_check_baseline_compare(out, &B, res, nres, margin);
    if (st)
        fprintf(out, "baseline: %s\n", st == PR_EINVAL ? why : pr_strerror(st));
    pr_check_baseline_clear(&B);
    return bad;
}

double pr_check_dense_tol(double R, double B, int s, int n, int grad)
{
    const double u = DBL_EPSILON / 2;
    double dM = 2.0 * (s + 4 * n + 8) * u * (R + 1.0), base = dM + (n + 8) * u;
    return grad ? 64.0 * base * (B + 1) * (B + 1) * (B + 1) * s * n : 2.0 * base * B;
}
