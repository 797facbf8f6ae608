/* presets: each experiment as a table of columns plus a row function that calls libpolyrope,
 * and a verdict read back from the finished CSV (docs/claims.md claim ids). */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "polyrope-exact.h"
#include "sweep.h"

/* One generated problem (pr_problem: the instance polyrope attn and proofs-check draw from the
 * same seed): Q, K, V uniform in [-B, B), W of the kind named by pos, then dO in [-1, 1) when
 * want_do. */
typedef pr_problem_struct problem_t;

static void problem_free(problem_t *p)
{
    pr_problem_clear(p);
}

static int problem_make(problem_t *p, uint64_t seed, int n, int d, double B, const char *pos, int want_do)
{
    pr_pos_kind_t kind;
    pr_rng_t rng;
    pr_rng_init(rng, seed);
    pr_problem_init(p);
    int st = pr_problem_kind_parse(&kind, pos);
    return st ? st : pr_problem_generate(p, rng, n, d, B, kind, PR_ROPE_BASE_DEFAULT, want_do ? PR_PROBLEM_DO : 0);
}

/* ------------------------------------------------------------------ verdicts: shared */

/* appends to a claim's detail, cut at its end: a long value read from a CSV never writes past it */
static void detail_add(pr_claim_result_t *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void detail_add(pr_claim_result_t *res, const char *fmt, ...)
{
    size_t len = strnlen(res->detail, sizeof res->detail);
    if (len + 1 >= sizeof res->detail)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->detail + len, sizeof res->detail - len, fmt, ap);
    va_end(ap);
}

/* the verdict of a claim resting on two pieces of evidence: passed only if both passed */
static pr_verdict_t verdict_worse(pr_verdict_t a, pr_verdict_t b)
{
    static const pr_verdict_t order[] = {PR_VERDICT_FAILED, PR_VERDICT_NOT_RUN, PR_VERDICT_INCONCLUSIVE,
                                         PR_VERDICT_INFO, PR_VERDICT_PASSED};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (a == order[i] || b == order[i])
            return order[i];
    return PR_VERDICT_INCONCLUSIVE;
}

static void not_run(pr_claim_result_t *res, const char *claim, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void not_run(pr_claim_result_t *res, const char *claim, const char *fmt, ...)
{
    res->claim = claim;
    res->verdict = PR_VERDICT_NOT_RUN;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->detail, sizeof res->detail, fmt, ap);
    va_end(ap);
}

/* a row the error control refused (floor, budget, domain): the method declined to run there,
 * which is its documented answer, not a failure; the claims are about the runs it makes */
static int refused(const char *status)
{
    return !strcmp(status, pr_strerror(PR_EFLOOR)) || !strcmp(status, pr_strerror(PR_EBUDGET)) ||
           !strcmp(status, pr_strerror(PR_EDOMAIN));
}

/* A verdict rests on the whole grid: one row for each configuration (idx 0..N-1 once each, N
 * from the '# configurations:' line), every row ok or refused, and the columns it reads (comma
 * separated in cols). Returns 1 if so, with the count of refused rows in *nrefused; else fills
 * res as "not run" with the reason and returns 0. */
static int evidence_ok_timed(pr_claim_result_t *res, const char *claim, const pr_csv_t *t, const char *cols,
                             long *nrefused, long *ntimed);
static int evidence_ok(pr_claim_result_t *res, const char *claim, const pr_csv_t *t, const char *cols, long *nrefused)
{
    return evidence_ok_timed(res, claim, t, cols, nrefused, NULL);
}

/* evidence_ok, but a row stopped at its CPU budget (PR_ETIME) is counted in *ntimed, when
 * ntimed is not NULL, for the verdict to weigh (else it is a row that did not run) */
static int evidence_ok_timed(pr_claim_result_t *res, const char *claim, const pr_csv_t *t, const char *cols,
                             long *nrefused, long *ntimed)
{
    *nrefused = 0;
    if (ntimed)
        *ntimed = 0;
    int st = pr_csv_col(t, "status");
    if (st < 0 || pr_csv_col(t, "idx") < 0) {
        not_run(res, claim, "the CSV has no %s column", st < 0 ? "status" : "idx");
        return 0;
    }
    for (const char *c = cols; *c;) {
        size_t n = strcspn(c, ",");
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)n, c);
        if (pr_csv_col(t, name) < 0) {
            not_run(res, claim, "the CSV has no %s column", name);
            return 0;
        }
        c += n + (c[n] == ',');
    }
    const char *conf = pr_csv_comment(t, "configurations");
    char *end = 0;
    long want = conf ? strtol(conf, &end, 10) : -1;
    if (!conf || end == conf || *end || want < 1) {
        not_run(res, claim, "the CSV has no valid '# configurations:' line");
        return 0;
    }
    if (t->nrows != want) {
        not_run(res, claim, "%ld rows for %ld configurations: the sweep did not finish", t->nrows, want);
        return 0;
    }
    unsigned char *seen = calloc((size_t)want, 1);
    if (!seen) {
        not_run(res, claim, "out of memory reading the CSV");
        return 0;
    }
    long bad = 0, first = -1, dup = 0;
    for (long r = 0; r < t->nrows; r++) {
        double idx = pr_csv_num(t, r, "idx");
        if (!(idx >= 0 && idx < want) || idx != floor(idx) || seen[(long)idx]++)
            dup++;
        if (refused(t->rows[r][st]))
            (*nrefused)++;
        else if (ntimed && !strcmp(t->rows[r][st], pr_strerror(PR_ETIME)))
            (*ntimed)++;
        else if (strcmp(t->rows[r][st], "ok") && !bad++)
            first = r;
    }
    free(seen);
    if (dup) {
        not_run(res, claim, "%ld rows with a missing, repeated or out-of-range idx: the grid is not covered", dup);
        return 0;
    }
    if (bad) {
        const char *key = pr_csv_str(t, first, "key");
        not_run(res, claim, "%ld of %ld configurations did not run (first: %.60s: %.60s)", bad, t->nrows,
                key ? key : "?", t->rows[first][st]);
        return 0;
    }
    return 1;
}

static void note_refused(pr_claim_result_t *res, long nrefused)
{
    if (nrefused)
        detail_add(res, "; %ld configurations refused by the error control (floor, budget or domain): not judged",
                   nrefused);
}

/* ------------------------------------------------------------------ factorise (C11, C6) */

enum { FA_R, FA_MAXM, FA_ERR, FA_BOUND };

/* M_ij through the rescaled-Toeplitz form σ Σ_k Q_{i a_k} w_k(i-j) K_{j b_k}, and through the
 * rotated dot product σ (R_i Q_i)·(R_j K_j) when W is RoPE (claim C11); max |M| against R (C6). */
static int factorise_row(double *out, const pr_cfg_t *cfg)
{
    int n = (int)pr_cfg_long(cfg, "n"), d = (int)pr_cfg_long(cfg, "d");
    double B = pr_cfg_double(cfg, "B");
    if (n < 1 || d < 2 || d % 2 || !(B > 0))
        return PR_EINVAL;
    problem_t pb;
    double *Qr = 0, *Kr = 0;
    int st = problem_make(&pb, (uint64_t)pr_cfg_long(cfg, "seed"), n, d, B, pr_cfg_str(cfg, "pos"), 0);
    if (st)
        return st;
    const double *Q = pb.Q, *K = pb.K;
    pr_posw_struct *W = pb.W;
    int fact = pr_posw_is_factorised(W);
    pr_rope_layout_t layout = W->kind == PR_POS_ROPE_NEOX ? PR_ROPE_NEOX : PR_ROPE_INTERLEAVED;
    if (fact) {
        Qr = malloc(sizeof(double) * n * d);
        Kr = malloc(sizeof(double) * n * d);
        if (!Qr || !Kr)
            st = PR_ENOMEM;
        if (!st)
            st = pr_rope_rotate(Qr, Q, n, d, W->rope_base, layout, 1);
        if (!st)
            st = pr_rope_rotate(Kr, K, n, d, W->rope_base, layout, 1);
    }
    double sigma = pr_scale_sigma(PR_SCALE_INV_D, d);
    /* R from the data (docs/math.md §3) */
    double R = sigma * pr_vec_max_abs(Q, (size_t)n * d) * pr_vec_max_abs(K, (size_t)n * d) * pr_posw_max_rowsum(W);
    double maxm = 0, err = 0;
    for (int i = 0; !st && i < n; i++)
        for (int j = 0; j < n; j++) {
            double m = 0;
            for (int k = 0; k < W->s; k++)
                m += Q[(size_t)i * d + W->a[k]] * pr_posw_at(W, k, i - j) * K[(size_t)j * d + W->b[k]];
            m *= sigma;
            maxm = fmax(maxm, fabs(m));
            if (fact) {
                double f = 0;
                for (int a = 0; a < d; a++)
                    f += Qr[(size_t)i * d + a] * Kr[(size_t)j * d + a];
                err = fmax(err, fabs(m - sigma * f));
            }
        }
    /* Bound on |M_W - M_rot|, first order in u = 2^-53. Each cos/sin(mθ), |m| < n, is off by at
     * most e_w = (3n+1)u (θ carries ≤ 2u relative error, mθ one more, cos/sin are 1-Lipschitz,
     * libm adds ≤ 1 ulp). With |Q|,|K| ≤ B and Σ_k|w_k| ≤ √2·d:
     *   M_W: 2d terms, w off by e_w each: 2d·B²e_w; rounding γ_{2d+2}·√2d·B²;
     *   M_rot: entries ≤ √2B off by B(2e_w+5u), d products: 2√2·d·B²(2e_w+5u); rounding γ_{d+1}·2dB².
     * Sum: σB²d·[7.66 e_w + 4.83 d u + 22.5 u] ≤ σB²d·u·(24n + 8d + 40). */
    double u = DBL_EPSILON / 2;
    out[FA_R] = R;
    out[FA_MAXM] = maxm;
    out[FA_ERR] = fact ? err : NAN;
    out[FA_BOUND] = fact ? sigma * B * B * d * u * (24.0 * n + 8.0 * d + 40.0) : NAN;
    problem_free(&pb);
    free(Qr), free(Kr);
    return st;
}

/* fills res for one claim: passed when every row has num <= factor·den. A row with both NaN
 * is outside the claim (C11 on a W that does not factorise); a row with one of them NaN, or
 * an undefined ratio (inf/inf), decides nothing and leaves the claim inconclusive. */
static void ratio_verdict(pr_claim_result_t *res, const char *claim, const pr_csv_t *t, const char *num,
                          const char *den, double factor, const char *what)
{
    char cols[128];
    snprintf(cols, sizeof cols, "%s,%s", num, den);
    long rows = 0, undecided = 0, nrefused;
    if (!evidence_ok(res, claim, t, cols, &nrefused))
        return;
    double worst = 0;
    res->claim = claim;
    for (long r = 0; r < t->nrows; r++) {
        double a = pr_csv_num(t, r, num), b = pr_csv_num(t, r, den);
        if (isnan(a) && isnan(b))
            continue;
        double q = b > 0 ? a / (factor * b) : a > 0 ? INFINITY : a <= 0 && b == 0 ? 0 : NAN;
        if (isnan(q)) {
            undecided++;
            continue;
        }
        rows++;
        worst = fmax(worst, q);
    }
    res->verdict = worst > 1 ? PR_VERDICT_FAILED : !rows || undecided ? PR_VERDICT_INCONCLUSIVE : PR_VERDICT_PASSED;
    snprintf(res->detail, sizeof res->detail, "%s: worst %s / %s = %.3g over %ld rows", what, num, den, worst * factor,
             rows);
    if (undecided)
        detail_add(res, "; %ld rows undecided (NaN or inf/inf)", undecided);
    else if (!rows)
        detail_add(res, "; no row to judge");
    note_refused(res, nrefused);
}

static int factorise_verdict(pr_claim_result_t *res, const pr_csv_t *t)
{
    ratio_verdict(&res[0], "C11", t, "err", "bound", 1, "|M via W - M via rotated Q,K|");
    /* M is a sum of ≤ 2d+1 rounded products: it may exceed R by γ_{2d+2}·R; d ≤ 1024 here */
    ratio_verdict(&res[1], "C6", t, "max_abs_M", "R", 1 + 2100 * DBL_EPSILON, "max |M| against R from the data");
    return 2;
}

/* ------------------------------------------------------------------ degree (C7, C8) */

enum { DG_DEGREE, DG_CERTIFIED, DG_ERR_BOUND, DG_AA, DG_DOUBLE_DEGREE };

/* the certified least degree (g certified, g - 1 refuted, both in Arb) of the construction named
 * by poly for the setting named by fn, beside the Aggarwal–Alman value and double's estimate */
static int degree_row(double *out, const pr_cfg_t *cfg)
{
    pr_expoly_kind_t kind;
    pr_expoly_setting_t setting;
    double R = pr_cfg_double(cfg, "R"), eps = pr_cfg_double(cfg, "eps");
    int st = pr_expoly_kind_parse(&kind, pr_cfg_str(cfg, "poly"));
    if (!st)
        st = pr_expoly_setting_parse(&setting, pr_cfg_str(cfg, "fn"));
    if (st)
        return st;
    pr_expoly_t p;
    pr_expoly_init(p);
    int hint = -1;
    /* double's estimate is only a starting point for the certified search */
    if (!pr_expoly_fit_eps(p, kind, setting, R, eps)) {
        hint = p->degree;
        out[DG_DOUBLE_DEGREE] = p->degree;
    }
    pr_expoly_clear(p);
    pr_certexp_degree_t d;
    pr_certexp_degree_init(d);
    st = pr_certexp_least_degree(d, kind, setting, R, eps, hint, 400);
    if (!st) {
        out[DG_DEGREE] = d->degree;
        out[DG_CERTIFIED] = d->verdict == PR_CERT_CERTIFIED;
        if (d->degree >= 0) {
            arf_t ub;
            arf_init(ub);
            arb_get_ubound_arf(ub, d->at->bound, 64);
            out[DG_ERR_BOUND] = arf_get_d(ub, ARF_RND_UP);
            arf_clear(ub);
        }
        out[DG_AA] = pr_expoly_aa22_setting(setting, R, eps);
    }
    pr_certexp_degree_clear(d);
    return st;
}

/* Θ(aa) on the sweep: the ratio degree/aa must stay within a bounded band while aa itself
 * varies; the band and the least-squares constant c (degree ≈ c·aa) are reported. */
static void degree_claim(pr_claim_result_t *res, const char *claim, const char *fn, const pr_csv_t *t)
{
    double lo = INFINITY, hi = 0, amin = INFINITY, amax = 0, sga = 0, saa = 0;
    long rows = 0, uncertified = 0, failed = 0, nrefused, ntimed, timed = 0;
    /* a search stopped at its CPU budget has no degree: not certified within the budget */
    if (!evidence_ok_timed(res, claim, t, "fn,degree,aa,certified", &nrefused, &ntimed))
        return;
    res->claim = claim;
    for (long r = 0; r < t->nrows; r++) {
        const char *f = pr_csv_str(t, r, "fn");
        if (!f || strcmp(f, fn))
            continue;
        double g = pr_csv_num(t, r, "degree"), a = pr_csv_num(t, r, "aa"), c = pr_csv_num(t, r, "certified");
        if (ntimed && !strcmp(pr_csv_str(t, r, "status"), pr_strerror(PR_ETIME))) {
            timed++;
            continue;
        }
        if (!isfinite(g) || !(a > 0 && a < INFINITY)) {
            failed++;
            continue;
        }
        uncertified += c != 1;
        rows++;
        lo = fmin(lo, g / a), hi = fmax(hi, g / a);
        amin = fmin(amin, a), amax = fmax(amax, a);
        sga += g * a, saa += a * a;
    }
    /* a band of 3 while aa grows tenfold is what Θ(·) with modest constants looks like here */
    if (!rows || amax < 10 * amin) {
        res->verdict = PR_VERDICT_INCONCLUSIVE;
        snprintf(res->detail, sizeof res->detail, "%s: %ld rows, AA value range %.3g..%.3g too narrow to judge", fn,
                 rows, amin, amax);
        return;
    }
    res->verdict = uncertified || failed || timed ? PR_VERDICT_INCONCLUSIVE
                 : hi <= 3 * lo                  ? PR_VERDICT_PASSED
                                                 : PR_VERDICT_FAILED;
    snprintf(res->detail, sizeof res->detail,
             "%s: certified least degree / AA value in [%.3g, %.3g] over %ld rows (AA %.3g..%.3g); fitted degree = "
             "%.3g·AA; %ld not certified, %ld failed",
             fn, lo, hi, rows, amin, amax, sga / saa, uncertified, failed);
    if (timed)
        detail_add(res, "; %ld not certified within the row's CPU budget (status PR_ETIME)", timed);
}

static int degree_verdict(pr_claim_result_t *res, const pr_csv_t *t)
{
    degree_claim(&res[0], "C7", "exp-abs", t);
    degree_claim(&res[1], "C8", "expneg-abs", t);
    return 2;
}

/* ------------------------------------------------------------------ fast paths: shared */

static int fast_options(pr_control_opts_t *o, const pr_cfg_t *cfg, double eps, double B)
{
    pr_control_opts_default(o);
    o->eps = eps;
    o->B = B;
    const char *poly = pr_cfg_str(cfg, "poly");
    return poly ? pr_expoly_kind_parse(&o->kind, poly) : PR_OK;
}

static int algo_is(const pr_cfg_t *cfg, const char *name)
{
    const char *a = pr_cfg_str(cfg, "algo");
    return a && !strcmp(a, name);
}

/* O of the exact problem (f = exp), and lse for its backward: the reference of every error
 * column. It is exact up to rounding (about 1e-15 here), far below the eps the grids ask for. */
static int dense_reference(double *O, double *lse, const problem_t *p, const pr_attn_opts_t *opts)
{
    return pr_dense_forward(O, lse, p->Q, p->K, p->V, p->W, p->n, p->d, opts);
}

/* ------------------------------------------------------------------ error (C9, G4) */

enum { ER_DEGREE, ER_TERMS, ER_R, ER_ERR, ER_BOUND, ER_DQ, ER_DQB, ER_DK, ER_DKB, ER_DV, ER_DVB };

/* the fast forward and backward against the dense exact ones, beside the guarantees */
static int error_row(double *out, const pr_cfg_t *cfg)
{
    int n = (int)pr_cfg_long(cfg, "n"), d = (int)pr_cfg_long(cfg, "d");
    double B = pr_cfg_double(cfg, "B"), eps = pr_cfg_double(cfg, "eps");
    /* the error of the fast paths: the dense path is the reference itself */
    if (n < 1 || d < 2 || !(B > 0) || !(eps > 0) || !(algo_is(cfg, "fft") || algo_is(cfg, "lowrank")))
        return PR_EINVAL;
    problem_t p;
    int st = problem_make(&p, (uint64_t)pr_cfg_long(cfg, "seed"), n, d, B, pr_cfg_str(cfg, "pos"), 1);
    if (st)
        return st;
    /* the low-rank path is for a factorised W only: elsewhere the row is not applicable (NaN) */
    if (algo_is(cfg, "lowrank") && !pr_lowrank_applies(p.W)) {
        problem_free(&p);
        return PR_OK;
    }
    size_t nd = (size_t)n * d;
    double *buf = calloc(8 * nd + n, sizeof(double));
    if (!buf) {
        problem_free(&p);
        return PR_ENOMEM;
    }
    double *O = buf, *dQ = O + nd, *dK = dQ + nd, *dV = dK + nd;
    double *Or = dV + nd, *dQr = Or + nd, *dKr = dQr + nd, *dVr = dKr + nd, *lse = dVr + nd;
    pr_attn_opts_t opts;
    pr_attn_opts_default(&opts, d);
    pr_control_opts_t o;
    pr_control_info_t info;
    pr_control_backward_report_t rep;
    st = fast_options(&o, cfg, eps, B);
    if (!st)
        st = pr_control_backward(O, dQ, dK, dV, NULL, &info, &rep, p.Q, p.K, p.V, p.W, p.dO, n, d, &opts, &o,
                                 algo_is(cfg, "lowrank"));
    if (!st)
        st = dense_reference(Or, lse, &p, &opts);
    if (!st)
        st = pr_dense_backward(dQr, dKr, dVr, NULL, p.Q, p.K, p.V, p.W, Or, lse, p.dO, n, d, &opts);
    if (!st) {
        out[ER_DEGREE] = info.degree;
        out[ER_TERMS] = info.terms;
        out[ER_R] = info.R;
        out[ER_ERR] = pr_vec_max_abs_diff(O, Or, nd);
        out[ER_BOUND] = info.bound;
        out[ER_DQ] = pr_vec_max_abs_diff(dQ, dQr, nd);
        out[ER_DQB] = rep.bound.dq;
        out[ER_DK] = pr_vec_max_abs_diff(dK, dKr, nd);
        out[ER_DKB] = rep.bound.dk;
        out[ER_DV] = pr_vec_max_abs_diff(dV, dVr, nd);
        out[ER_DVB] = rep.bound.dv;
    }
    free(buf);
    problem_free(&p);
    return st;
}

static int error_verdict(pr_claim_result_t *res, const pr_csv_t *t)
{
    ratio_verdict(&res[0], "C9", t, "err_inf", "bound", 1, "output error against 2ε_A/(1-ε_A)‖V‖∞ + floor");
    /* G4: the worst of the three gradients, each against its own propagated bound */
    static const char *const e[] = {"dq_err", "dk_err", "dv_err"}, *const b[] = {"dq_bound", "dk_bound", "dv_bound"};
    res[1] = (pr_claim_result_t){.claim = "G4", .verdict = PR_VERDICT_PASSED};
    for (int k = 0; k < 3; k++) {
        pr_claim_result_t part;
        ratio_verdict(&part, "G4", t, e[k], b[k], 1, "gradient");
        res[1].verdict = verdict_worse(res[1].verdict, part.verdict);
        const char *text = part.detail;
        if (!strncmp(text, "gradient: ", 10))
            text += 10;
        detail_add(&res[1], "%s%s", k ? "; " : "", text);
    }
    return 2;
}

/* ------------------------------------------------------------------ scaling (C5, G5) */

enum { SC_DEGREE, SC_TERMS, SC_TIME, SC_BACK_TIME, SC_MODEL };

/* forward and backward wall time of one algorithm (dense, fft or lowrank) */
static int scaling_row(double *out, const pr_cfg_t *cfg)
{
    int n = (int)pr_cfg_long(cfg, "n"), d = (int)pr_cfg_long(cfg, "d");
    double B = pr_cfg_double(cfg, "B"), eps = pr_cfg_double(cfg, "eps");
    if (n < 2 || d < 2 || !(B > 0) || !(eps > 0))
        return PR_EINVAL;
    problem_t p;
    int st = problem_make(&p, (uint64_t)pr_cfg_long(cfg, "seed"), n, d, B, pr_cfg_str(cfg, "pos"), 1);
    if (st)
        return st;
    /* the low-rank path is for a factorised W only: elsewhere the row is not applicable (NaN) */
    if (algo_is(cfg, "lowrank") && !pr_lowrank_applies(p.W)) {
        problem_free(&p);
        return PR_OK;
    }
    size_t nd = (size_t)n * d;
    double *buf = calloc(4 * nd + n, sizeof(double));
    if (!buf) {
        problem_free(&p);
        return PR_ENOMEM;
    }
    double *O = buf, *dQ = O + nd, *dK = dQ + nd, *dV = dK + nd, *lse = dV + nd;
    pr_attn_opts_t opts;
    pr_attn_opts_default(&opts, d);
    if (algo_is(cfg, "dense")) {
        double t0 = pr_timing_wall();
        st = pr_dense_forward(O, lse, p.Q, p.K, p.V, p.W, n, d, &opts);
        double t1 = pr_timing_wall();
        if (!st)
            st = pr_dense_backward(dQ, dK, dV, NULL, p.Q, p.K, p.V, p.W, O, lse, p.dO, n, d, &opts);
        out[SC_TIME] = t1 - t0;
        out[SC_BACK_TIME] = pr_timing_wall() - t1;
        out[SC_MODEL] = (double)n * n * p.W->s;
    } else {
        pr_control_opts_t o;
        pr_control_info_t info;
        pr_control_backward_report_t rep;
        int lowrank = algo_is(cfg, "lowrank");
        st = fast_options(&o, cfg, eps, B);
        if (!st)
            st = pr_control_backward(O, dQ, dK, dV, NULL, &info, &rep, p.Q, p.K, p.V, p.W, p.dO, n, d, &opts, &o,
                                     lowrank);
        if (!st) {
            out[SC_DEGREE] = info.degree;
            out[SC_TERMS] = info.terms;
            out[SC_TIME] = rep.forward_s;
            out[SC_BACK_TIME] = rep.backward_s;
            /* C5's cost model: C(s+g, g)(d+1) n log n (FFT), C(d+g, g)(d+1) n (low rank) */
            out[SC_MODEL] = info.terms * (d + 1) * n * (lowrank ? 1.0 : log2((double)n));
        }
    }
    free(buf);
    problem_free(&p);
    return st;
}

/* Rows r and q are in one series when every axis but n agrees (the axes are the columns
 * between key and status); with dense_of, q must be the dense series of r's other axes. */
static int same_series(const pr_csv_t *t, long r, long q, int dense_of)
{
    int st = pr_csv_col(t, "status"), n = pr_csv_col(t, "n"), algo = pr_csv_col(t, "algo");
    int idx = pr_csv_col(t, "idx"), key = pr_csv_col(t, "key");
    for (int c = 0; c < st; c++) {
        if (c == n || c == idx || c == key)
            continue;
        if (dense_of && c == algo) {
            if (strcmp(t->rows[q][c], "dense"))
                return 0;
        } else if (strcmp(t->rows[r][c], t->rows[q][c])) {
            return 0;
        }
    }
    return 1;
}

/* Least-squares slope of log time against log n over the upper half of n (on a log scale) in
 * r's series; NaN when fewer than three sizes are there or one of them has no positive time. */
static double series_slope(const pr_csv_t *t, long r, const char *col, double *nmax)
{
    *nmax = 0;
    for (long q = 0; q < t->nrows; q++)
        if (same_series(t, r, q, 0))
            *nmax = fmax(*nmax, pr_csv_num(t, q, "n"));
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int k = 0, missing = 0;
    for (long q = 0; q < t->nrows; q++) {
        double n = pr_csv_num(t, q, "n"), y = pr_csv_num(t, q, col);
        if (!same_series(t, r, q, 0) || !(n * n >= *nmax * 4)) /* n ≥ sqrt(nmax)·2 */
            continue;
        if (!(y > 0 && y < INFINITY) || !(n > 0 && n < INFINITY)) {
            missing++;
            continue;
        }
        double x = log(n), ly = log(y);
        sx += x, sy += ly, sxx += x * x, sxy += x * ly, k++;
    }
    double den = k * sxx - sx * sx;
    /* fewer than three sizes make no slope worth a verdict */
    return k >= 3 && !missing && den > 0 ? (k * sxy - sx * sy) / den : NAN;
}

/* the least n of r's series from which its time stays below the dense series' time at the
 * same n (at every larger n too); NaN if there is none */
static double crossover(const pr_csv_t *t, long r, const char *col)
{
    double nbad = -INFINITY, nstar = NAN;
    for (int pass = 0; pass < 2; pass++)
        for (long q = 0; q < t->nrows; q++) {
            if (!same_series(t, r, q, 0))
                continue;
            double n = pr_csv_num(t, q, "n"), y = pr_csv_num(t, q, col), yd = NAN;
            for (long p = 0; p < t->nrows; p++)
                if (same_series(t, r, p, 1) && pr_csv_num(t, p, "n") == n)
                    yd = pr_csv_num(t, p, col);
            int below = y < yd;
            if (pass == 0 && !below)
                nbad = fmax(nbad, isnan(n) ? INFINITY : n);
            if (pass == 1 && below && n > nbad && !(n >= nstar))
                nstar = n;
        }
    return nstar;
}

static void scaling_claim(pr_claim_result_t *res, const char *claim, const pr_csv_t *t, const char *col)
{
    char cols[64];
    snprintf(cols, sizeof cols, "n,algo,%s", col);
    long nrefused;
    if (!evidence_ok(res, claim, t, cols, &nrefused))
        return;
    res->claim = claim;
    int fast = 0, bad = 0, unknown = 0, ac = pr_csv_col(t, "algo");
    snprintf(res->detail, sizeof res->detail, "log-log slope of %s over the upper half of n:", col);
    for (long r = 0; r < t->nrows; r++) {
        int first = 1;
        for (long q = 0; q < r && first; q++)
            first = !same_series(t, r, q, 0);
        if (!first)
            continue;
        const char *algo = t->rows[r][ac], *pos = pr_csv_str(t, r, "pos");
        /* a series with no time at all is not applicable (the low-rank path on a general W) */
        int any = 0;
        for (long q = 0; q < t->nrows && !any; q++)
            any = same_series(t, r, q, 0) && !isnan(pr_csv_num(t, q, col));
        if (!any)
            continue;
        double nmax, slope = series_slope(t, r, col, &nmax);
        int dense = !strcmp(algo, "dense");
        detail_add(res, " %.20s%s%.20s %.2f%s", algo, pos ? " on " : "", pos ? pos : "", slope, dense ? ";" : "");
        if (dense)
            continue;
        fast++;
        /* n log n has slope 1 + 1/ln n ≈ 1.1 here; 1.4 leaves room for noise, still far from 2 */
        bad += slope > 1.4;
        unknown += !isfinite(slope);
        double nstar = crossover(t, r, col);
        if (isnan(nstar))
            detail_add(res, ", n* > %.0f;", nmax);
        else
            detail_add(res, ", n* = %.0f;", nstar);
    }
    if (!fast)
        detail_add(res, " no fast series");
    note_refused(res, nrefused);
    res->verdict = !fast || (unknown && !bad) ? PR_VERDICT_INCONCLUSIVE : bad ? PR_VERDICT_FAILED : PR_VERDICT_PASSED;
}

static int scaling_verdict(pr_claim_result_t *res, const pr_csv_t *t)
{
    scaling_claim(&res[0], "C5", t, "time_s");
    scaling_claim(&res[1], "G5", t, "back_time_s");
    return 2;
}

/* ------------------------------------------------------------------ rope-vs-general (C12) */

enum { RG_DEG_LR, RG_FEATURES, RG_DEG_FFT, RG_TERMS, RG_T_LR, RG_T_FFT, RG_ERR_LR, RG_BOUND_LR, RG_ERR_FFT, RG_BOUND_FFT };

/* factorised RoPE through both fast paths: low rank (C(d+g, g) features after rotating Q, K)
 * and the general FFT path (C(2d+g, g) Toeplitz terms), against the dense result */
static int rope_general_row(double *out, const pr_cfg_t *cfg)
{
    int n = (int)pr_cfg_long(cfg, "n"), d = (int)pr_cfg_long(cfg, "d");
    double B = pr_cfg_double(cfg, "B"), eps = pr_cfg_double(cfg, "eps");
    if (n < 2 || d < 2 || !(B > 0) || !(eps > 0))
        return PR_EINVAL;
    problem_t p;
    int st = problem_make(&p, (uint64_t)pr_cfg_long(cfg, "seed"), n, d, B, "rope", 1);
    if (st)
        return st;
    size_t nd = (size_t)n * d;
    double *O = malloc(sizeof(double) * nd), *Or = malloc(sizeof(double) * nd);
    pr_attn_opts_t opts;
    pr_attn_opts_default(&opts, d);
    pr_control_opts_t o;
    pr_control_info_t il, iff;
    st = !O || !Or ? PR_ENOMEM : fast_options(&o, cfg, eps, B);
    if (!st)
        st = dense_reference(Or, NULL, &p, &opts);
    double t0 = pr_timing_wall();
    if (!st)
        st = pr_control_forward_lowrank(O, &il, p.Q, p.K, p.V, p.W, n, d, &opts, &o);
    double t1 = pr_timing_wall();
    if (!st) {
        out[RG_DEG_LR] = il.degree, out[RG_FEATURES] = il.terms, out[RG_T_LR] = t1 - t0;
        out[RG_ERR_LR] = pr_vec_max_abs_diff(O, Or, nd), out[RG_BOUND_LR] = il.bound;
        t0 = pr_timing_wall();
        st = pr_control_forward_fft(O, &iff, p.Q, p.K, p.V, p.W, n, d, &opts, &o);
        t1 = pr_timing_wall();
    }
    if (!st) {
        out[RG_DEG_FFT] = iff.degree, out[RG_TERMS] = iff.terms, out[RG_T_FFT] = t1 - t0;
        out[RG_ERR_FFT] = pr_vec_max_abs_diff(O, Or, nd), out[RG_BOUND_FFT] = iff.bound;
    }
    free(O), free(Or);
    problem_free(&p);
    return st;
}

/* an integer in [lo, hi] read from a CSV cell, or -1 */
static int cell_int(const pr_csv_t *t, long r, const char *col, int lo, int hi)
{
    double x = pr_csv_num(t, r, col);
    return x >= lo && x <= hi && x == floor(x) ? (int)x : -1;
}

static int rope_general_verdict(pr_claim_result_t *res, const pr_csv_t *t)
{
    long rows = 0, wrong = 0, undecided = 0, nrefused;
    if (!evidence_ok(&res[0], "C12", t, "d,degree_lowrank,degree_fft,features,terms", &nrefused))
        return 1;
    double lo = INFINITY, hi = 0;
    for (long r = 0; r < t->nrows; r++) {
        if (refused(pr_csv_str(t, r, "status")))
            continue;   /* counted in nrefused: the method declined to run there */
        /* bounds keep the binomials below 2^53 and their loops short */
        int d = cell_int(t, r, "d", 1, 4096), gl = cell_int(t, r, "degree_lowrank", 0, 64),
            gf = cell_int(t, r, "degree_fft", 0, 64);
        double f = pr_csv_num(t, r, "features"), T = pr_csv_num(t, r, "terms");
        if (d < 0 || gl < 0 || gf < 0 || !(f > 0) || !(T > 0)) {
            undecided++;
            continue;
        }
        rows++;
        wrong += f != pr_expand_binom(d, gl) || T != pr_expand_binom(2 * d, gf);
        lo = fmin(lo, T / f), hi = fmax(hi, T / f);
    }
    res[0].claim = "C12";
    res[0].verdict = wrong ? PR_VERDICT_FAILED : !rows || undecided ? PR_VERDICT_INCONCLUSIVE : PR_VERDICT_PASSED;
    snprintf(res[0].detail, sizeof res[0].detail,
             "features = C(d+g,g) and terms = C(2d+g,g) in %ld of %ld rows; terms/features %.3g..%.3g", rows - wrong,
             rows, lo, hi);
    if (undecided)
        detail_add(&res[0], "; %ld rows without a degree, count or d to judge", undecided);
    note_refused(&res[0], nrefused);
    return 1;
}

/* ------------------------------------------------------------------ threshold (C10, F1) */

/* the FFT path runs while its terms stay under this (past it, the blow-up C10 predicts) */
enum { THRESHOLD_MAX_TERMS = 20000 };

enum { TH_D, TH_EPS, TH_B, TH_R, TH_DEGREE, TH_TERMS, TH_EXPONENT, TH_RAN, TH_TIME, TH_DENSE_TIME, TH_FLOOR, TH_LOST_BITS };

/* The regime of the theorems: d = 2⌈log2(n)/4⌉ = O(log n), eps = 1/n, B = Bs·√(ln n), general W.
 * Degree and terms come from the error control; the FFT path runs only while its terms stay
 * under a budget (past it, "ran" is 0: that refusal is the blow-up the claim predicts). */
static int threshold_row(double *out, const pr_cfg_t *cfg)
{
    int n = (int)pr_cfg_long(cfg, "n");
    double Bs = pr_cfg_double(cfg, "Bs");
    if (n < 4 || !(Bs > 0))
        return PR_EINVAL;
    int d = 2 * (int)ceil(log2((double)n) / 4);
    double eps = 1.0 / n, B = Bs * sqrt(log((double)n));
    problem_t p;
    int st = problem_make(&p, (uint64_t)pr_cfg_long(cfg, "seed"), n, d, B, "general", 1);
    if (st)
        return st;
    size_t nd = (size_t)n * d;
    double *O = malloc(sizeof(double) * nd);
    pr_attn_opts_t opts;
    pr_attn_opts_default(&opts, d);
    pr_control_opts_t o;
    pr_control_info_t info;
    st = O ? fast_options(&o, cfg, eps, B) : PR_ENOMEM;
    o.max_terms = THRESHOLD_MAX_TERMS;
    out[TH_D] = d, out[TH_EPS] = eps, out[TH_B] = B;
    if (!st) {
        double t0 = pr_timing_wall();
        int fs = pr_control_forward_fft(O, &info, p.Q, p.K, p.V, p.W, n, d, &opts, &o);
        double t1 = pr_timing_wall();
        out[TH_R] = info.R;
        if (info.degree > 0) {
            out[TH_DEGREE] = info.degree;
            out[TH_TERMS] = info.terms;
            out[TH_EXPONENT] = log(info.terms * (d + 1)) / log((double)n);
        }
        out[TH_RAN] = fs == PR_OK;
        out[TH_TIME] = fs == PR_OK ? t1 - t0 : NAN;
        out[TH_FLOOR] = info.floor;
        out[TH_LOST_BITS] = info.floor > 0 ? log2(info.floor / (DBL_EPSILON / 2)) : NAN;
        if (fs != PR_OK && fs != PR_EBUDGET && fs != PR_EFLOOR && fs != PR_EDOMAIN)
            st = fs;
        t0 = pr_timing_wall();
        if (!st)
            st = pr_dense_forward(O, NULL, p.Q, p.K, p.V, p.W, n, d, &opts);
        out[TH_DENSE_TIME] = pr_timing_wall() - t0;
    }
    free(O);
    problem_free(&p);
    return st;
}

static void threshold_c10(pr_claim_result_t *res, const pr_csv_t *t)
{
    /* C10: at each n, the cost exponent ln(terms·(d+1))/ln n is below 1 at the smallest Bs (the
     * FFT path beats n²) and reaches 1 at the largest (it no longer does): the blow-up. */
    long ns = 0, failed = 0, few = 0, undecided = 0, nrefused;
    if (!evidence_ok(res, "C10", t, "n,Bs,exponent,ran", &nrefused))
        return;
    res->claim = "C10";
    snprintf(res->detail, sizeof res->detail, "ln(terms·(d+1))/ln n from the smallest to the largest B/√ln n:");
    for (long r = 0; r < t->nrows; r++) {
        double n = pr_csv_num(t, r, "n");
        int dup = 0;
        for (long q = 0; q < r && !dup; q++)
            dup = pr_csv_num(t, q, "n") == n;
        if (dup)
            continue;
        if (!(n >= 4 && n < INFINITY)) {
            undecided++;
            continue;
        }
        ns++;
        double bmin = INFINITY, bmax = -INFINITY, emin = NAN, emax = NAN;
        int nb = 0;
        for (long q = 0; q < t->nrows; q++) {
            if (pr_csv_num(t, q, "n") != n)
                continue;
            double e = pr_csv_num(t, q, "exponent"), bs = pr_csv_num(t, q, "Bs"), ran = pr_csv_num(t, q, "ran");
            /* a row the error control refused outright (floor, or no double polynomial) has no
             * degree: the path cannot run at all there, the extreme of the blow-up */
            if (isnan(e) && ran == 0)
                e = INFINITY;
            if (isnan(e) || !isfinite(bs)) {
                undecided++;
                continue;
            }
            nb++;
            if (bs < bmin)
                bmin = bs, emin = e;
            if (bs > bmax)
                bmax = bs, emax = e;
        }
        /* three values of Bs per n at least: one point on each side of the threshold is no trend */
        if (nb < 3)
            few++;
        else
            failed += !(emin < 1 && emax >= 1);
        detail_add(res, " n=%.0f: %.2f→%.2f;", n, emin, emax);
    }
    res->verdict = failed ? PR_VERDICT_FAILED : !ns || few || undecided ? PR_VERDICT_INCONCLUSIVE : PR_VERDICT_PASSED;
    if (few)
        detail_add(res, " %ld n with fewer than 3 values of Bs;", few);
    if (undecided)
        detail_add(res, " %ld rows without n, Bs or exponent;", undecided);
    note_refused(res, nrefused);
}

static int threshold_verdict(pr_claim_result_t *res, const pr_csv_t *t)
{
    threshold_c10(&res[0], t);
    /* F1 is decided by the exact-mode run of the expansion (polyrope check F1); this sweep
     * measures only the a-priori floor: shown beside the claim, it decides nothing */
    long nrefused;
    if (!evidence_ok(&res[1], "F1", t, "lost_bits,R", &nrefused))
        return 2;
    double lo = INFINITY, hi = 0;
    long rows = 0;
    for (long r = 0; r < t->nrows; r++) {
        double lb = pr_csv_num(t, r, "lost_bits"), R = pr_csv_num(t, r, "R");
        if (!isfinite(lb) || !(R > 0 && R < INFINITY))
            continue;
        rows++;
        lo = fmin(lo, lb / (2 * R / log(2.0))), hi = fmax(hi, lb / (2 * R / log(2.0)));
    }
    res[1].claim = "F1";
    res[1].verdict = PR_VERDICT_INFO;
    snprintf(res[1].detail, sizeof res[1].detail,
             "a-priori floor only: lost bits / (2R/ln 2) in [%.3g, %.3g] over %ld rows; the exact-mode run against "
             "the float run is polyrope check F1",
             lo, hi, rows);
    return 2;
}

/* ------------------------------------------------------------------ cost models */

/* seconds per operation counted by dense_seconds and by pr_control_needs, and the factor on
 * pr_certexp_cost_seconds (how each was measured: below) */
#define DENSE_SECONDS_PER_OP 4e-10
#define FAST_SECONDS_PER_OP 2e-10
/* minimax's certified search runs Remez at every degree it tries: measured 2.5 times what
 * pr_certexp_cost_seconds predicts from its (lower) degree; taylor and chebyshev 1.0 */
#define DG_MINIMAX_SCALE 2.5
/* the dense path on RoPE takes 0.6 of the general W's time per counted operation (measured at
 * n = 1024..65536) */
#define DENSE_ROPE_SCALE 0.6

/* Predicted CPU seconds of one row (sweep and reproduce predict a run's duration from them).
 * Each is an operation count of what the row runs times a constant fitted on this project's
 * 2-core machine (AMD EPYC, 2026-11-28): rows of each full grid timed one by one with the CPU
 * clock (the row function alone, no driver), the constant set so the model is within a factor
 * of 2 on most rows and above the measured sum over the sample. The fast paths' counts are
 * pr_control_needs at the degree the error control picks for the row's data (choosing it costs a
 * generated problem and a double fit: milliseconds). A model is an estimate, never a bound:
 * the rows that can run long get a CPU budget (row_seconds) instead. */

/* dense forward's seconds: n² entries, each s products of W plus d of the score */
static double dense_seconds(const problem_t *p)
{
    double n = p->n;
    return DENSE_SECONDS_PER_OP * n * n * (p->W->s + p->d) * (pr_posw_is_factorised(p->W) ? DENSE_ROPE_SCALE : 1);
}

/* pr_control_needs' operations of the fast path (lowrank: the low-rank one) at the degree it
 * chooses for p, plus those of the backward's degree g + 1 when backward; 0 when the error
 * control refuses the row (it ends there), as past max_terms when that is > 0 */
static double fast_ops(const problem_t *p, const pr_cfg_t *cfg, double eps, double B, int lowrank, int backward,
                       long max_terms)
{
    pr_attn_opts_t opts;
    pr_attn_opts_default(&opts, p->d);
    pr_control_opts_t o;
    pr_control_info_t info;
    pr_expoly_t e;
    pr_expoly_init(e);
    int st = fast_options(&o, cfg, eps, B);
    if (max_terms > 0)
        o.max_terms = max_terms;
    if (!st)
        st = pr_control_choose(e, &info, p->Q, p->K, p->V, p->W, p->n, p->d, &opts, &o, lowrank);
    pr_expoly_clear(e);
    /* refused by the terms or memory budget: the row ends there */
    if (st || info.terms > (double)o.max_terms || pr_control_budget(&info, p->W, p->n, p->d, &o, lowrank, 0, 0, "cost"))
        return 0;
    double bytes, ops, ops1 = 0;
    pr_control_needs(&bytes, &ops, p->W, p->n, p->d, info.degree, lowrank);
    if (backward)
        pr_control_needs(&bytes, &ops1, p->W, p->n, p->d, info.degree + 1, lowrank);
    return isfinite(ops + ops1) ? ops + ops1 : 1e300;
}

/* the row's problem (Q, K, V and W from its seed), for a cost model; 0 if it cannot be made */
static int cost_problem(problem_t *p, const pr_cfg_t *cfg, int n, int d, double B, const char *pos)
{
    return n >= 2 && d >= 1 && B > 0 && !problem_make(p, (uint64_t)pr_cfg_long(cfg, "seed"), n, d, B, pos, 1);
}

/* factorise: n² scores through W (s = 2d products) and, for RoPE, the rotated dot product (d);
 * fitted on n = 512..4096, d = 2, 8, 32 (CPU clock): 0.5e-9 + 1.25e-9 s (+ 1.5e-9 + 0.8e-9 d
 * for RoPE) seconds per n² */
static double factorise_cost(const pr_cfg_t *cfg)
{
    double n = (double)pr_cfg_long(cfg, "n"), d = (double)pr_cfg_long(cfg, "d");
    const char *pos = pr_cfg_str(cfg, "pos");
    int rope = pos && !strncmp(pos, "rope", 4);
    return n * n * (0.5e-9 + 1.25e-9 * 2 * d + (rope ? 1.5e-9 + 0.8e-9 * d : 0));
}

/* degree: pr_certexp_cost_seconds (fitted on the same machine, exact/pr_certexp.c), measured
 * here on R = 8..128, eps = 1e-2, 1e-12, the three settings and both constructions: within
 * 0.8..1.2 for chebyshev at R >= 64, where the time goes */
static double degree_cost(const pr_cfg_t *cfg)
{
    pr_expoly_kind_t kind;
    pr_expoly_setting_t setting;
    if (pr_expoly_kind_parse(&kind, pr_cfg_str(cfg, "poly")) || pr_expoly_setting_parse(&setting, pr_cfg_str(cfg, "fn")))
        return 0;
    int g;
    slong prec;
    double t = pr_certexp_cost_seconds(&g, &prec, kind, setting, pr_cfg_double(cfg, "R"), pr_cfg_double(cfg, "eps"), -1, 0);
    return isfinite(t) ? 0.01 + (kind == PR_EXPOLY_MINIMAX ? DG_MINIMAX_SCALE : 1.0) * t : 0;
}

/* one path's forward and backward (scaling; dense: 3 dense forwards' time), plus with reference
 * the dense forward and backward the errors are measured against (error: 4 more) */
static double path_cost(const pr_cfg_t *cfg, int reference)
{
    int n = (int)pr_cfg_long(cfg, "n"), d = (int)pr_cfg_long(cfg, "d");
    double B = pr_cfg_double(cfg, "B"), eps = pr_cfg_double(cfg, "eps"), t = 0;
    problem_t p;
    if (!cost_problem(&p, cfg, n, d, B, pr_cfg_str(cfg, "pos")))
        return 0;
    int lowrank = algo_is(cfg, "lowrank");
    if (algo_is(cfg, "dense"))
        t = 3 * dense_seconds(&p);
    else if (!lowrank || pr_lowrank_applies(p.W))
        t = FAST_SECONDS_PER_OP * fast_ops(&p, cfg, eps, B, lowrank, 1, 0) + (reference ? 4 * dense_seconds(&p) : 0);
    problem_free(&p);
    return 0.002 + t;
}

static double error_cost(const pr_cfg_t *cfg)
{
    return path_cost(cfg, 1);
}

static double scaling_cost(const pr_cfg_t *cfg)
{
    return path_cost(cfg, 0);
}

/* threshold: the FFT forward (while its terms stay under the row's budget) and the dense one */
static double threshold_cost(const pr_cfg_t *cfg)
{
    int n = (int)pr_cfg_long(cfg, "n"), d = 2 * (int)ceil(log2((double)n) / 4);
    double Bs = pr_cfg_double(cfg, "Bs"), B = Bs * sqrt(log((double)n)), t;
    problem_t p;
    if (n < 4 || !cost_problem(&p, cfg, n, d, B, "general"))
        return 0;
    t = FAST_SECONDS_PER_OP * fast_ops(&p, cfg, 1.0 / n, B, 0, 0, THRESHOLD_MAX_TERMS) + dense_seconds(&p);
    problem_free(&p);
    return 0.002 + t;
}

/* rope-vs-general: the dense reference, the low-rank and the FFT forward on RoPE */
static double rope_general_cost(const pr_cfg_t *cfg)
{
    int n = (int)pr_cfg_long(cfg, "n"), d = (int)pr_cfg_long(cfg, "d");
    double B = pr_cfg_double(cfg, "B"), eps = pr_cfg_double(cfg, "eps"), t;
    problem_t p;
    if (!cost_problem(&p, cfg, n, d, B, "rope"))
        return 0;
    t = FAST_SECONDS_PER_OP * (fast_ops(&p, cfg, eps, B, 1, 0, 0) + fast_ops(&p, cfg, eps, B, 0, 0, 0)) +
        dense_seconds(&p);
    problem_free(&p);
    return 0.002 + t;
}

/* ------------------------------------------------------------------ the table */

const pr_preset_t pr_presets[] = {
    {
        .name = "factorise",
        .claims = "C11 C6",
        .summary = "RoPE scores through W_l = R_{-l} against the rotated dot product; max |M| against R",
        .axes = "n,d,B,pos,seed",
        .grid_tiny = "n=8,16;d=2,4;B=1;pos=rope,rope-neox,general;seed=1",
        .grid_quick = "n=16..1024*2;d=4,16;B=1,2;pos=rope,rope-neox,general;seed=1",
        .grid_full = "n=16..4096*2;d=2,8,32;B=0.5,1,2,4;pos=rope,rope-neox,general;seed=1,2,3",
        .columns = "R,max_abs_M,err,bound",
        .limits = "d=even",
        .row = factorise_row,
        .verdict = factorise_verdict,
        .cost = factorise_cost,
    },
    {
        .name = "degree",
        .claims = "C7 C8",
        .summary = "certified least degree (of the poly column's construction; minimax: of any polynomial) for e^x and e^-x against Aggarwal-Alman",
        .axes = "R,eps,fn,poly",
        .grid_tiny = "R=1,16;eps=1e-3;fn=exp-abs,expneg-abs;poly=chebyshev",
        .grid_quick = "R=0.25..64*2;eps=1e-2,1e-4,1e-8,1e-12;fn=exp-abs,expneg-abs;poly=chebyshev",
        .grid_full = "R=0.125..128*1.4142135623731;eps=1e-2,1e-3,1e-4,1e-6,1e-8,1e-10,1e-12;"
                     "fn=exp-abs,expneg-abs,exp-rel;poly=chebyshev,minimax",
        .columns = "degree,certified,err_bound,aa,double_degree",
        .row = degree_row,
        .verdict = degree_verdict,
        .cost = degree_cost,
        /* R = 128 with exp-rel took 20 to 50 s; a search past 120 s is stopped, not waited for */
        .row_seconds = 120,
    },
    {
        .name = "error",
        .claims = "C9 G4",
        .summary = "observed output and gradient error against the guarantee across eps, B, d",
        .axes = "n,d,B,eps,pos,algo,poly,seed",
        .grid_tiny = "n=16;d=2;B=0.5;eps=1e-3;pos=rope;algo=fft,lowrank;poly=chebyshev;seed=1",
        .grid_quick = "n=64;d=2,4;B=0.5,1;eps=1e-2,1e-4,1e-6;pos=rope,general;algo=fft,lowrank;poly=chebyshev;seed=1",
        .grid_full = "n=128;d=2,4,6;B=0.25,0.5,1,1.5;eps=1e-2,1e-4,1e-6,1e-8;pos=rope,general;algo=fft,lowrank;poly=taylor,chebyshev;seed=1,2",
        .columns = "degree,terms,R,err_inf,bound,dq_err,dq_bound,dk_err,dk_bound,dv_err,dv_bound",
        .limits = "d>=2;algo=fft|lowrank",
        .row = error_row,
        .verdict = error_verdict,
        .cost = error_cost,
    },
    {
        .name = "scaling",
        .claims = "C5 G5",
        .summary = "time against n for the dense, low-rank and FFT paths: slopes and crossovers n*",
        .axes = "n,d,B,eps,pos,algo,seed",
        .grid_tiny = "n=32,64;d=2;B=0.5;eps=1e-2;pos=general;algo=dense,fft;seed=1",
        .grid_quick = "n=128..32768*2;d=2;B=0.5;eps=1e-3;pos=rope,general;algo=dense,fft,lowrank;seed=1",
        .grid_full = "n=128..65536*2;d=2,4;B=0.5;eps=1e-3,1e-6;pos=rope,general;algo=dense,fft,lowrank;seed=1",
        .columns = "degree,terms,time_s,back_time_s,model",
        .limits = "n>=2;d>=2",
        .row = scaling_row,
        .verdict = scaling_verdict,
        .cost = scaling_cost,
    },
    {
        .name = "threshold",
        .claims = "C10 F1",
        .summary = "d and eps tied to n; degree, terms, time, crossover and missing bits against B/sqrt(log n)",
        .axes = "n,Bs,seed",
        .grid_tiny = "n=64;Bs=0.25,1.5;seed=1",
        .grid_quick = "n=256,1024,4096,16384;Bs=0.125,0.25,0.375,0.5,0.75,1,1.5,2;seed=1",
        .grid_full = "n=256..16384*4;Bs=0.125..3+0.125;seed=1,2",
        .columns = "d,eps,B,R,degree,terms,exponent,ran,time_s,dense_time_s,floor,lost_bits",
        .limits = "n>=4",
        .row = threshold_row,
        .verdict = threshold_verdict,
        .cost = threshold_cost,
    },
    {
        .name = "rope-vs-general",
        .claims = "C12",
        .summary = "low-rank features C(d+g,g) against Toeplitz terms C(2d+g,g) on factorised RoPE, with times",
        .axes = "n,d,B,eps,seed",
        .grid_tiny = "n=32;d=2;B=0.5;eps=1e-2;seed=1",
        .grid_quick = "n=256,1024;d=2,4,8;B=0.5;eps=1e-2,1e-4;seed=1",
        .grid_full = "n=256..8192*2;d=2,4,8,16;B=0.5,1;eps=1e-2,1e-4,1e-6;seed=1",
        .columns = "degree_lowrank,features,degree_fft,terms,lowrank_time_s,fft_time_s,err_lowrank,bound_lowrank,err_fft,bound_fft",
        .limits = "n>=2;d=even",
        .row = rope_general_row,
        .verdict = rope_general_verdict,
        .cost = rope_general_cost,
    },
};
const int pr_npresets = sizeof pr_presets / sizeof pr_presets[0];
