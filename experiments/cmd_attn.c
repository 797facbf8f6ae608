/* polyrope attn: one attention run (docs/cli.md). Inputs are generated from --seed or read
 * from .npy files; each algorithm is one function behind the dispatch table `algos`; the
 * dense reference (`exact`) is also what the others are compared with for err_inf. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <omp.h>
#include "polyrope-exact.h"
#include "cli.h"
#include "commands.h"

static const char *CMD = "attn";

/* the options that raise the two limits of pr_budget */
#define MEM_OPT "--max-mem"
#define WORK_OPT "--max-work"

/* One problem and what an algorithm returns for it. */
typedef struct {
    int n, d, backward;
    const double *Q, *K, *V, *dO;
    const pr_posw_struct *W;
    pr_attn_opts_t opts;
    double eps;
    long degree;            /* 0: the algorithm chooses */
    const char *poly;
    unsigned plan_flags;    /* FFT path: PR_FAST_ESTIMATE or PR_FAST_MEASURE */
    /* outputs (n×d each; dw s×(2n-1) for a general W) */
    double *O, *dQ, *dK, *dV, *dw;
    /* what the algorithm reports; NAN / -1 where it does not apply */
    double bound;           /* a-priori bound on ‖Õ - O‖∞ */
    long degree_used, terms;
    double time_s, time_backward_s;
    /* the fast paths' report (NAN / -1 where it does not apply) */
    double B_declared;      /* --B when given with input files: the bound the data must meet */
    double R, floor, plan_s;
    long transforms;
    int streamed;
    const char *algo_used;  /* what --algo auto picked */
    double predicted[3];    /* auto: predicted seconds for exact, lowrank, fft */
    char msg[700];          /* a one-line error of the algorithm's own, if any */
    double grad_bound[4];   /* fast paths with --backward: propagated bounds on dQ, dK, dV, dw */
    double max_bytes, max_ops;  /* --max-mem (bytes), --max-work: pr_budget's limits */
} attn_job_t;

/* operations of the dense reference on n × d with s support pairs (forward; the backward about
 * twice more) */
static double dense_ops(double n, double d, double s, int backward)
{
    return 2.0 * n * n * (s + d) * (backward ? 3.0 : 1.0);
}

/* the dense reference: exact up to rounding */
static int algo_exact(attn_job_t *job)
{
    int n = job->n, d = job->d;
    pr_budget_t b;
    pr_budget_init(b, job->max_bytes, job->max_ops);
    if (pr_budget_ops(b, dense_ops(n, d, job->W->s, job->backward), "the dense reference")) {
        char m[300];
        pr_budget_explain(m, sizeof m, b, MEM_OPT, WORK_OPT);
        snprintf(job->msg, sizeof job->msg, "%s, or use --algo fft or lowrank", m);
        return PR_EBUDGET;
    }
    double *lse = malloc(sizeof(double) * n);
    if (!lse)
        return PR_ENOMEM;
    double t = pr_timing_wall();
    int st = pr_dense_forward(job->O, lse, job->Q, job->K, job->V, job->W, n, d, &job->opts);
    job->time_s = pr_timing_wall() - t;
    if (!st && job->backward) {
        t = pr_timing_wall();
        st = pr_dense_backward(job->dQ, job->dK, job->dV, job->dw, job->Q, job->K, job->V, job->W,
                               job->O, lse, job->dO, n, d, &job->opts);
        job->time_backward_s = pr_timing_wall() - t;
    }
    free(lse);
    job->bound = NAN;
    job->degree_used = job->terms = -1;
    return st;
}

/* ---- the fast paths (pr_fast, pr_lowrank): error control, then one forward ---- */

static int fast_opts(pr_control_opts_t *o, const attn_job_t *job)
{
    pr_control_opts_default(o);
    o->eps = job->eps;
    o->B = job->B_declared;
    o->degree = (int)job->degree;
    o->plan_flags = job->plan_flags;
    /* memory and work are the limits (pr_budget); the term count is bounded by them */
    o->mem_budget = (size_t)job->max_bytes;
    o->max_ops = job->max_ops;
    o->max_terms = LONG_MAX;
    return pr_expoly_kind_parse(&o->kind, job->poly);
}

/* the error control's refusals as one line saying what to change */
static int fast_fail(attn_job_t *job, int st, const pr_control_info_t *info, const char *algo)
{
    char *m = job->msg;
    size_t len = sizeof job->msg;
    switch (st) {
    case PR_EFLOOR:
        if (!isfinite(info->floor) && job->degree > 0 && info->degree > 0) {
            snprintf(m, len, "%s: --degree %ld has an infinite floating-point floor on [-%.4g, %.4g] (its "
                     "coefficients cancel past double): use a lower --degree, or 0 for the least meeting --eps",
                     algo, job->degree, info->R, info->R);
            break;
        }
        if (!isfinite(info->floor)) {
            snprintf(m, len, "%s: R = %.4g from the data is too large for double (e^{2R} times the rounding unit "
                     "passes 1, so no --eps is reachable): use inputs with smaller entries (R below about 15) or "
                     "--algo exact", algo, info->R);
            break;
        }
        snprintf(m, len, "--eps %g is below the floating-point floor %.3g of the %s expansion (R = %.4g from the "
                 "data, |V| <= %.3g): use --eps %.2g or more, or inputs with smaller entries", job->eps, info->floor,
                 algo, info->R, info->vnorm, 2.0 * info->floor);
        break;
    case PR_EBOUND:
        snprintf(m, len, "an entry of Q, K or V has magnitude %.6g > --B %g, so the bound does not hold: raise --B to "
                 "at least %.6g (or drop --B to take R from the data)", info->data_max, job->B_declared, info->data_max);
        break;
    case PR_EBUDGET: {
        char why[300];
        pr_budget_explain(why, sizeof why, &info->budget, MEM_OPT, WORK_OPT);
        snprintf(m, len, "%s: degree %d (%.4g %s): %s; or raise --eps, use inputs with smaller entries (lower R = "
                 "%.4g), or --algo exact", algo, info->degree, info->terms, strcmp(algo, "fft") ? "features" : "terms",
                 why, info->R);
        break;
    }
    case PR_EDOMAIN:
        if (job->degree > 0) {
            snprintf(m, len, "%s: --degree %ld cannot be fitted to e^x on [-%.4g, %.4g] in double (its conversion "
                     "to monomials loses all precision): use a lower --degree, or 0 for the least meeting --eps",
                     algo, job->degree, info->R, info->R);
            break;
        }
        snprintf(m, len, "%s: no polynomial for e^x on [-%.4g, %.4g] reaches relative error %.3g in double: raise "
                 "--eps or use inputs with smaller entries", algo, info->R, info->R, info->eps_A);
        break;
    case PR_EINVAL:
        if (!strcmp(algo, "lowrank")) {
            snprintf(m, len, "--algo lowrank needs factorised position matrices (--pos rope, rope-neox or identity) "
                     "and no --alibi: use --algo fft for this W");
            break;
        }
        /* fall through */
    default:
        snprintf(m, len, "%s: %s", algo, pr_strerror(st));
    }
    return st;
}

/* --degree fixes the degree instead of the least one meeting --eps. One rule for every degree:
 * its a-priori bound must meet --eps, else the run is refused before any work (exit 2), naming
 * the least degree that does. --algo auto checks each fast path it may pick. */
static int degree_check(attn_job_t *job, const char *algo)
{
    if (job->degree <= 0 || !strcmp(algo, "exact"))
        return PR_OK;
    int st = PR_OK;
    pr_expoly_t p;
    pr_expoly_init(p);
    for (int lr = 0; lr < 2 && !st; lr++) {
        if (!strcmp(algo, lr ? "fft" : "lowrank") ||
            (!strcmp(algo, "auto") && lr && (!pr_lowrank_applies(job->W) || job->opts.beta)))
            continue;
        const char *name = lr ? "lowrank" : "fft";
        pr_control_opts_t o;
        pr_control_info_t info;
        if ((st = fast_opts(&o, job)))
            break;
        if ((st = pr_control_choose(p, &info, job->Q, job->K, job->V, job->W, job->n, job->d, &job->opts, &o, lr))) {
            /* auto just does not pick a path that cannot run */
            if (!strcmp(algo, "auto")) {
                st = PR_OK;
                continue;
            }
            fast_fail(job, st, &info, name);
            break;
        }
        if (info.eps_met)
            continue;
        double bound = info.bound;
        o.degree = 0;
        int least = pr_control_choose(p, &info, job->Q, job->K, job->V, job->W, job->n, job->d, &job->opts, &o, lr)
                    ? -1 : info.degree;
        if (!isfinite(bound) && least > 0 && job->degree > least) {
            /* above the least degree the error only falls: an infinite bound is the floor's */
            snprintf(job->msg, sizeof job->msg, "%s: --degree %ld has an infinite floating-point floor (its "
                     "coefficients cancel past double): use a lower --degree (%d meets --eps %g), or 0 for the "
                     "least meeting --eps", name, job->degree, least, job->eps);
            st = PR_EINVAL;
            break;
        }
        char alt[128] = "";
        if (least > 0)
            snprintf(alt, sizeof alt, "use --degree %d or more, ", least);
        if (bound < 1.0)
            snprintf(alt + strlen(alt), sizeof alt - strlen(alt), "raise --eps to that bound, ");
        snprintf(job->msg, sizeof job->msg, "--degree %ld does not meet --eps %g: the %s path's bound for it is %.3g "
                 "(a fixed degree must meet --eps): %s%sdrop --degree", job->degree, job->eps, name, bound, alt,
                 alt[0] ? "or " : "");
        st = PR_EINVAL;
    }
    pr_expoly_clear(p);
    return st;
}

static void fast_report(attn_job_t *job, const pr_control_info_t *info)
{
    job->bound = info->bound;
    job->degree_used = info->degree;
    job->terms = (long)info->terms;
    job->R = info->R;
    job->floor = info->floor;
}

/* --backward on a fast path: the forward with its plan kept, then the fast backward (pr_backward) */
static int fast_backward(attn_job_t *job, const pr_control_opts_t *o, int lowrank)
{
    pr_control_info_t info;
    pr_control_backward_report_t rep;
    const char *name = lowrank ? "lowrank" : "fft";
    int st = pr_control_backward(job->O, job->dQ, job->dK, job->dV, lowrank ? NULL : job->dw, &info, &rep,
                                 job->Q, job->K, job->V, job->W, job->dO, job->n, job->d, &job->opts, o, lowrank);
    if (st)
        return fast_fail(job, st, &info, name);
    fast_report(job, &info);
    job->time_s = rep.forward_s;
    job->time_backward_s = rep.backward_s;
    job->grad_bound[0] = rep.bound.dq;
    job->grad_bound[1] = rep.bound.dk;
    job->grad_bound[2] = rep.bound.dv;
    job->grad_bound[3] = rep.bound.dw;
    if (!lowrank) {
        job->transforms = info.transforms + info.plan_transforms + rep.transforms;
        job->plan_s = info.plan_seconds;
        job->streamed = info.streamed;
    }
    return PR_OK;
}

static int algo_fast(attn_job_t *job, int lowrank)
{
    pr_control_opts_t o;
    pr_control_info_t info;
    int st = fast_opts(&o, job);
    if (st)
        return st;
    if (job->backward)
        return fast_backward(job, &o, lowrank);
    double t = pr_timing_wall();
    st = (lowrank ? pr_control_forward_lowrank : pr_control_forward_fft)(job->O, &info, job->Q, job->K, job->V,
                                                                         job->W, job->n, job->d, &job->opts, &o);
    job->time_s = pr_timing_wall() - t;
    if (st)
        return fast_fail(job, st, &info, lowrank ? "lowrank" : "fft");
    fast_report(job, &info);
    if (!lowrank) {
        job->transforms = info.transforms + info.plan_transforms;
        job->plan_s = info.plan_seconds;
        job->streamed = info.streamed;
    }
    return PR_OK;
}

static int algo_lowrank(attn_job_t *job) { return algo_fast(job, 1); }
static int algo_fft(attn_job_t *job) { return algo_fast(job, 0); }

/* the cost model (pr_auto: each path timed on the leading rows, with the backward when asked)
 * picks; exact when no fast path meets the target */
static int algo_auto(attn_job_t *job)
{
    pr_control_opts_t o;
    pr_auto_t a;
    int st = fast_opts(&o, job);
    if (!st && (st = pr_auto_predict(&a, job->Q, job->K, job->V, job->backward ? job->dO : NULL, job->W, job->n,
                                     job->d, &job->opts, &o)))
        return st;
    for (int k = 0; k < 3; k++)
        job->predicted[k] = a.t[k];
    job->algo_used = pr_auto_algo_name(a.pick);
    return a.pick == PR_AUTO_DENSE ? algo_exact(job) : a.pick == PR_AUTO_LOWRANK ? algo_lowrank(job) : algo_fft(job);
}

static const struct {
    const char *name;
    int (*run)(attn_job_t *);
} algos[] = {
    {"exact", algo_exact},
    {"lowrank", algo_lowrank},
    {"fft", algo_fft},
    {"auto", algo_auto},
};

/* A read .npy must have the given shape; on any problem a one-line error naming the file. */
static int load(double **x, const char *path, const char *opt, int ndim, const long *want)
{
    int nd;
    long shape[PR_NPY_MAXDIM];
    int st = pr_npy_read(x, &nd, shape, path);
    if (st)
        return pr_cli_fail(CMD, "--%s %s: %s", opt, path, st == PR_EIO ? strerror(errno) : pr_strerror(st));
    int same = nd == ndim;
    for (int i = 0; same && i < nd; i++)
        same = shape[i] == want[i];
    if (!same) {
        char got[160] = "(", wants[160] = "(";
        for (int i = 0; i < nd; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%ld%s", shape[i], i + 1 < nd ? ", " : "");
        for (int i = 0; i < ndim; i++)
            snprintf(wants + strlen(wants), sizeof wants - strlen(wants), "%ld%s", want[i], i + 1 < ndim ? ", " : "");
        free(*x);
        *x = 0;
        return pr_cli_fail(CMD, "--%s %s: shape %s), expected %s) to match the other inputs", opt, path, got, wants);
    }
    size_t len = 1;
    for (int i = 0; i < nd; i++)
        len *= (size_t)shape[i];
    if (pr_vec_check_finite(*x, len))
        return pr_cli_fail(CMD, "--%s %s: contains NaN or Inf; every entry must be finite", opt, path);
    return 0;
}

/* the shape of an .npy, to size the problem from the first input file */
static int peek(int *nd, long *shape, const char *path, const char *opt)
{
    double *x;
    int st = pr_npy_read(&x, nd, shape, path);
    free(x);
    if (st)
        return pr_cli_fail(CMD, "--%s %s: %s", opt, path, st == PR_EIO ? strerror(errno) : pr_strerror(st));
    return 0;
}

/* --out DIR: decided before the work (DIR exists or is created, each output can be replaced) and
 * written to temporaries in DIR, renamed over the outputs' names once all are written; on any
 * failure the temporaries (and DIR, if this run created it) are removed: no partial outputs. */
enum { OUT_MAX = 5 };
typedef struct {
    const char *dir;
    int count, made_dir;
    const char *name[OUT_MAX];
    char tmp[OUT_MAX][4096], path[OUT_MAX][4096];
} outset_t;

static void out_discard(outset_t *os)
{
    for (int i = 0; i < os->count; i++)
        if (os->tmp[i][0])
            unlink(os->tmp[i]);
    if (os->made_dir)
        rmdir(os->dir);
    os->count = 0;
    os->made_dir = 0;
}

static int out_prepare(outset_t *os, const char *dir, const char *const *names, int count)
{
    memset(os, 0, sizeof *os);
    os->dir = dir;
    struct stat sb;
    if (!*dir)
        return pr_cli_fail(CMD, "--out: an empty directory name; give a directory, e.g. --out run1");
    if (mkdir(dir, 0777) == 0)
        os->made_dir = 1;
    else if (errno != EEXIST)
        return pr_cli_fail(CMD, "--out %s: cannot create the directory: %s", dir, strerror(errno));
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode)) {
        out_discard(os);
        return pr_cli_fail(CMD, "--out %s: exists and is not a directory; give a directory", dir);
    }
    mode_t mask = umask(0);
    umask(mask);
    for (int i = 0; i < count; i++) {
        os->name[i] = names[i];
        os->count = i + 1;
        if ((size_t)snprintf(os->path[i], sizeof os->path[i], "%s/%s", dir, names[i]) >= sizeof os->path[i] ||
            (size_t)snprintf(os->tmp[i], sizeof os->tmp[i], "%s/.%s.XXXXXX", dir, names[i]) >= sizeof os->tmp[i]) {
            os->tmp[i][0] = 0;
            out_discard(os);
            return pr_cli_fail(CMD, "--out %s: the path is too long", dir);
        }
        if (!stat(os->path[i], &sb) && (S_ISDIR(sb.st_mode) || access(os->path[i], W_OK))) {
            os->tmp[i][0] = 0;
            out_discard(os);
            return pr_cli_fail(CMD, "--out %s: %s %s; remove it or choose another --out", dir, os->path[i],
                               S_ISDIR(sb.st_mode) ? "is a directory" : "is not writable");
        }
        int fd = mkstemp(os->tmp[i]);
        if (fd < 0) {
            int e = errno;
            os->tmp[i][0] = 0;
            out_discard(os);
            return pr_cli_fail(CMD, "--out %s: cannot write there: %s", dir, strerror(e));
        }
        fchmod(fd, 0666 & ~mask);   /* mkstemp makes 0600; the outputs get the usual mode */
        close(fd);
    }
    return 0;
}

/* output `name` (one of those prepared) into its temporary */
static int out_write(outset_t *os, const char *name, const double *x, int ndim, const long *shape)
{
    for (int i = 0; i < os->count; i++)
        if (!strcmp(os->name[i], name)) {
            if (pr_npy_write(os->tmp[i], x, ndim, shape))
                return pr_cli_fail(CMD, "--out: cannot write %s: %s", os->path[i], strerror(errno));
            return 0;
        }
    return pr_cli_fail_status(CMD, PR_EINVAL, name);
}

static int out_commit(outset_t *os)
{
    for (int i = 0; i < os->count; i++) {
        if (rename(os->tmp[i], os->path[i]))
            return pr_cli_fail(CMD, "--out: cannot rename %s to %s: %s", os->tmp[i], os->path[i], strerror(errno));
        os->tmp[i][0] = 0;
    }
    os->made_dir = 0;
    return 0;
}

/* Before anything is allocated: the buffers of the inputs, outputs and reference (in double, so
 * that no product of sizes wraps) against --max-mem. s_max bounds W's support. */
static int budget_buffers(double max_bytes, double n, double d, double s_max, int files, int wfile, int backward,
                          int general, int reference, int alibi)
{
    double nd = n * d, L = 2.0 * n - 1.0;
    double doubles = 5.0 * nd + files * nd + s_max * L + (wfile ? L * d * d : 0.0) + (alibi ? L : 0.0) +
                     (backward ? 3.0 * nd + (general ? s_max * L + L * d * d : 0.0) : 0.0) +
                     (reference ? 4.0 * nd + (general ? s_max * L : 0.0) : 0.0);
    pr_budget_t b;
    pr_budget_init(b, max_bytes, 0.0);
    if (pr_budget_bytes(b, 8.0 * doubles, "holding the inputs and outputs")) {
        char m[300];
        pr_budget_explain(m, sizeof m, b, MEM_OPT, WORK_OPT);
        return pr_cli_fail(CMD, "n = %.0f, d = %.0f: %s, or use a smaller --n or --d", n, d, m);
    }
    return 0;
}

/* ---- how far each float result can be trusted (issue 13) ---- */

/* A result is trusted when its estimated rounding error (the dense estimate: for a fast path,
 * not its bound, which is the --eps the user asked for) is below 2^-10 of its largest entry
 * (ten correct bits at its scale); otherwise attn warns and points to --certify. */
#define ATTN_TRUST 0x1p-10

/* Estimated errors (pr_dense_error_est; for a fast path its a-priori bound plus the dense
 * estimate, which covers the rounding of W, σ and β) of the run's outputs O, dQ, dK, dV, dw
 * and, when err_inf was measured, of the dense reference's. NAN where not computed. */
typedef struct {
    double run[5], ref[5];
    double fp[5];                    /* the run's rounding part (= run for exact) */
    double scale[5], ref_scale[5];   /* the results' largest entries */
} attn_est_t;

static const char *const est_names[5] = {"O", "dQ", "dK", "dV", "dw"};

static void est_set(double *e, double *fp, double *scale, const pr_dense_err_t *de, const attn_job_t *job,
                    const double *O, const double *dQ, const double *dK, const double *dV, const double *dw, int fast)
{
    size_t nd = (size_t)job->n * job->d, sw = (size_t)job->W->s * (2 * (size_t)job->n - 1);
    const double *x[5] = {O, dQ, dK, dV, dw};
    size_t len[5] = {nd, nd, nd, nd, sw};
    double base[5] = {de->o, de->dq, de->dk, de->dv, de->dw};
    double fastb[5] = {job->bound, job->grad_bound[0], job->grad_bound[1], job->grad_bound[2], job->grad_bound[3]};
    for (int t = 0; t < 5; t++) {
        e[t] = x[t] ? base[t] + (fast ? fastb[t] : 0.0) : NAN;
        fp[t] = x[t] ? base[t] : NAN;
        scale[t] = x[t] ? pr_vec_max_abs(x[t], len[t]) : NAN;
    }
}

/* the dense estimate for these outputs (dO only with the gradients) */
static int est_dense(pr_dense_err_t *de, const attn_job_t *job, const double *O, int grads)
{
    return pr_dense_error_est(de, job->Q, job->K, job->V, job->W, O, grads ? job->dO : NULL, job->n, job->d,
                              &job->opts);
}

static int est_run(attn_est_t *est, const attn_job_t *job, int fast)
{
    pr_dense_err_t de;
    for (int t = 0; t < 5; t++)
        est->run[t] = est->ref[t] = est->fp[t] = est->scale[t] = est->ref_scale[t] = NAN;
    int st = est_dense(&de, job, job->O, job->backward);
    if (!st)
        est_set(est->run, est->fp, est->scale, &de, job, job->O, job->backward ? job->dQ : 0, job->backward ? job->dK : 0,
                job->backward ? job->dV : 0, job->backward ? job->dw : 0, fast);
    return st;
}

static int est_ref(attn_est_t *est, const attn_job_t *ref)
{
    pr_dense_err_t de;
    double fpref[5];
    int st = est_dense(&de, ref, ref->O, ref->backward);
    if (!st)
        est_set(est->ref, fpref, est->ref_scale, &de, ref, ref->O, ref->backward ? ref->dQ : 0,
                ref->backward ? ref->dK : 0, ref->backward ? ref->dV : 0, ref->backward ? ref->dw : 0, 0);
    return st;
}

/* the largest of the gradients' estimates */
static double est_grad(const double *e)
{
    double m = NAN;
    for (int t = 1; t < 5; t++)
        if (!isnan(e[t]))
            m = isnan(m) ? e[t] : fmax(m, e[t]);
    return m;
}

/* 1 when every estimate is at most ATTN_TRUST of its result's scale; else one warning line */
static int est_trusted(const attn_est_t *est, int warn)
{
    char list[600] = "";
    int bad = 0;
    for (int r = 0; r < 2; r++)
        for (int t = 0; t < 5; t++) {
            double e = r ? est->ref[t] : est->fp[t], m = r ? est->ref_scale[t] : est->scale[t];
            if (isnan(e) || e <= ATTN_TRUST * m)
                continue;
            size_t l = strlen(list);
            snprintf(list + l, sizeof list - l, "%s%s%s %.2g against max %.2g", bad ? "; " : "",
                     r ? "the dense reference's " : "", est_names[t], e, m);
            bad++;
        }
    if (bad && warn)
        fprintf(stderr, "polyrope %s: warning: estimated error as large as the result (%s): the result cannot be "
                "trusted; --certify gives a certified error\n", CMD, list);
    return !bad;
}

/* --certify: the outputs' errors against the Arb reference of the real-number problem (RoPE's
 * θ_k = base^{-2k/d} and its cosines and sines, σ = 1/d or 1/√d, ALiBi's -m|ℓ|, from the doubles
 * given), and the verdict: for a fast path, of err_inf <= bound; for exact, "certified" when the
 * certified errors are finite. Infinite or undecided: "unknown". */
typedef struct {
    double err, grad;
    pr_cert_verdict_t verdict;
} attn_cert_t;

#define ATTN_CERT_OF "attention of the real numbers the given doubles define (RoPE angles base^(-2k/d), " \
                     "their cos and sin, sigma, ALiBi slope times |i-j|, computed in Arb)"

/* past n = 512, a forward on RoPE or W = I: pr_certify's double pass and Arb rows (docs/certify.md) */
static int certify_large(attn_cert_t *c, const attn_job_t *job, pr_scale_t scale, double alibi)
{
    pr_certify_problem_t pb = {job->W->kind == PR_POS_IDENTITY ? PR_CERTIFY_POS_IDENTITY : job->W->kind ==
                               PR_POS_ROPE_NEOX ? PR_CERTIFY_POS_ROPE_NEOX : PR_CERTIFY_POS_ROPE, job->W->rope_base,
                               (int)scale, 0.0, job->opts.causal, alibi};
    pr_certify_opts_t op;
    pr_certify_opts_default(&op);
    op.atol = isfinite(job->bound) ? job->bound : 0.0;
    pr_certify_result_t r;
    int st = pr_certify_forward(&r, job->O, job->Q, job->K, job->V, job->n, job->d, &pb, &op);
    c->err = r.upper;
    c->grad = NAN;
    c->verdict = !isfinite(r.upper) ? PR_CERT_UNKNOWN : isfinite(job->bound) ? r.verdict : PR_CERT_CERTIFIED;
    return st;
}

static int certify_run(attn_cert_t *c, const attn_job_t *job, pr_scale_t scale, double alibi)
{
    if (job->n > 512)
        return certify_large(c, job, scale, alibi);
    arb_t e1, e2, b;
    arb_init(e1);
    arb_init(e2);
    arb_init(b);
    pr_hiprec_def_t def;
    pr_hiprec_def_real(&def, scale, alibi);
    int bw = job->backward;
    int st = pr_hiprec_certify(e1, e2, job->O, bw ? job->dQ : 0, job->dK, job->dV, bw ? job->dw : 0, job->Q, job->K,
                               job->V, job->W, job->dO, job->n, job->d, &job->opts, &def, PR_HIPREC_MIN_PREC);
    if (!st) {
        c->err = pr_hiprec_ubound_d(e1);
        c->grad = bw ? pr_hiprec_ubound_d(e2) : NAN;
        arb_set_d(b, job->bound);
        if (!isfinite(c->err) || (bw && !isfinite(c->grad)))
            c->verdict = PR_CERT_UNKNOWN;
        else
            c->verdict = isfinite(job->bound) ? pr_hiprec_verdict(e1, b) : PR_CERT_CERTIFIED;
    }
    arb_clear(e1);
    arb_clear(e2);
    arb_clear(b);
    return st;
}

/* the --json fields of issue 13: estimates, trust, what dw covers, whether eps is met */
static void json_honest(const attn_job_t *job, const attn_est_t *est, int trusted, int dw, int fixed)
{
    pr_cli_json_num("err_est", est->run[0], 17, ", ");
    pr_cli_json_num("grad_err_est", est_grad(est->run), 17, ", ");
    pr_cli_json_num("ref_err_est", est->ref[0], 17, ", ");
    pr_cli_json_num("ref_grad_err_est", est_grad(est->ref), 17, ", ");
    printf("\"trusted\": %s, ", trusted ? "true" : "false");
    if (dw)
        printf("\"dw_entries\": \"support of W (entries of W that are zero at every offset get no gradient)\", ");
    if (isfinite(job->eps) && job->degree_used >= 0)
        printf("\"eps_met\": %s, \"degree_fixed\": %s, ", job->bound <= job->eps ? "true" : "false",
               fixed ? "true" : "false");
}

static void text_honest(const attn_est_t *est, int exact)
{
    printf("  estimated error (%s): O %.3g", exact ? "dense, derived from the data" : "bound + dense estimate",
           est->run[0]);
    if (!isnan(est_grad(est->run)))
        printf(", gradients %.3g", est_grad(est->run));
    if (!isnan(est->ref[0]))
        printf("; of the dense reference: O %.3g", est->ref[0]);
    if (!isnan(est_grad(est->ref)))
        printf(", gradients %.3g", est_grad(est->ref));
    printf("\n");
}

int pr_cmd_attn(int argc, char **argv)
{
    long n = 256, d = 16, seed = 1, degree = 0;
    double B = 1.0, eps = 1e-6, rope_base = PR_ROPE_BASE_DEFAULT, alibi = 0.0, max_mem = 6.0, max_work = 1e13;
    const char *qf = 0, *kf = 0, *vf = 0, *wf = 0, *dof = 0, *out = 0;
    const char *pos = "rope", *algo = "exact", *poly = "chebyshev", *scale = "inv-d", *fftw = "estimate";
    int causal = 0, backward = 0, json = 0, check = 0, certify = 0;
    pr_opt_t opts[] = {
        {"n", PR_OPT_INT, &n, "sequence length (generated inputs)", 0, 1, 1 << 26, 0},
        {"d", PR_OPT_INT, &d, "head dimension (generated inputs; even for RoPE)", 0, 1, 1 << 16, 0},
        {"B", PR_OPT_DOUBLE, &B, "generated Q, K, V uniform in [-B, B)", 0, 0, 1e150, 0},
        {"seed", PR_OPT_INT, &seed, "seed of the generated inputs (Q, K, V, then W, then dO)", 0, 0, 9e18, 0},
        {"q", PR_OPT_STRING, &qf, "read Q from FILE.npy, shape (n, d)", 0, 0, 0, 0},
        {"k", PR_OPT_STRING, &kf, "read K from FILE.npy, shape (n, d)", 0, 0, 0, 0},
        {"v", PR_OPT_STRING, &vf, "read V from FILE.npy, shape (n, d)", 0, 0, 0, 0},
        {"w", PR_OPT_STRING, &wf, "read a general W from FILE.npy, shape (2n-1, d, d), indexed by l+n-1", 0, 0, 0, 0},
        {"do", PR_OPT_STRING, &dof, "read the upstream gradient dO from FILE.npy, shape (n, d) (with --backward)", 0, 0, 0, 0},
        {"pos", PR_OPT_CHOICE, &pos, "position matrices W", "rope|rope-neox|general|identity", 0, 0, 0},
        {"rope-base", PR_OPT_DOUBLE, &rope_base, "RoPE angle base (> 1)", 0, 0, 0, 0},
        {"algo", PR_OPT_CHOICE, &algo, "algorithm", "exact|lowrank|fft|auto", 0, 0, 0},
        {"eps", PR_OPT_DOUBLE, &eps, "target output error of the fast paths", 0, 1e-300, 1, 0},
        {"poly", PR_OPT_CHOICE, &poly, "polynomial for e^x in the fast paths", "taylor|chebyshev|minimax", 0, 0, 0},
        {"degree", PR_OPT_INT, &degree, "polynomial degree of the fast paths (0: the least meeting --eps); a fixed "
         "degree must still meet --eps (its bound <= eps), else the run is refused", 0, 0, PR_EXPOLY_MAX_DEGREE, 0},
        {"fftw", PR_OPT_CHOICE, &fftw, "FFTW planning of the fft path: estimate (reproducible bit for bit) or measure "
         "(seconds of planning, faster transforms from n ~ 2^16; kept in $POLYROPE_FFTW_WISDOM if set)",
         "estimate|measure", 0, 0, 0},
        {"scale", PR_OPT_CHOICE, &scale, "score scale sigma: 1/d or 1/sqrt(d)", "inv-d|inv-sqrt-d", 0, 0, 0},
        {"causal", PR_OPT_FLAG, &causal, "causal mask (key j <= query i)", 0, 0, 0, 0},
        {"alibi", PR_OPT_DOUBLE, &alibi, "ALiBi bias -SLOPE*|i-j| (0: none)", 0, 0, 1e300, 0},
        {"backward", PR_OPT_FLAG, &backward, "also the gradients dQ, dK, dV (and dW for a general W, on the support "
         "of W only: entries of W zero at every offset get no gradient)", 0, 0, 0, 0},
        {"certify", PR_OPT_FLAG, &certify, "certified err_inf (and grad_err_inf) against an Arb reference of the "
         "real-number problem (RoPE angles, their cos and sin, sigma and ALiBi computed in Arb from the given doubles), "
         "n <= 512 (past it, the forward with RoPE or identity through pr_certify, docs/certify.md); a verdict other "
         "than certified is exit 1", 0, 0, 0, 0},
        {"check", PR_OPT_FLAG, &check, "fast algorithms: compare with the dense reference (err_inf) even when n > 4096", 0, 0, 0, 0},
        {"out", PR_OPT_STRING, &out, "write o.npy (and dq, dk, dv, dw .npy with --backward) into DIR", 0, 0, 0, 0},
        {"json", PR_OPT_FLAG, &json, "print one JSON object", 0, 0, 0, 0},
        {"max-mem", PR_OPT_DOUBLE, &max_mem, "memory limit in GiB: a run whose buffers or plans would pass it is "
         "refused before it starts", 0, 1e-3, 1e6, 0},
        {"max-work", PR_OPT_DOUBLE, &max_work, "work limit in (estimated) floating-point operations: a run past it "
         "is refused before it starts; 1e13 is tens of minutes", 0, 1, 1e30, 0},
    };
    pr_cmd_spec_t spec = {"attn", "", "One attention run O = softmax(M + bias) V, optionally with its gradients.",
        "Inputs are generated uniformly in [-B, B) from --seed (dO in [-1, 1)), or read from\n"
        "little-endian float64 C-order .npy files; n and d then come from the files. W: --pos, or\n"
        "a general W from --w. Times are wall-clock seconds. With --json one object is printed;\n"
        "fields that do not apply (eps, degree, terms, bound, err_inf for exact) are null; err_inf\n"
        "is also null when the dense reference would pass --max-work (unless --check asks for it).\n"
        "Every result carries an estimate of its own error (err_est, grad_err_est; ref_err_est for\n"
        "the dense reference behind err_inf): for exact, first-order bounds derived from the data\n"
        "(pr_dense_error_est, a double: it warns, never certifies); for a fast path, its bound plus\n"
        "that. When a rounding estimate passes 2^-10 of its result's largest entry, a warning on\n"
        "stderr says so and \"trusted\" is false: use --certify. --certify's verdict: for a fast path,\n"
        "of err_inf <= bound; for exact, certified when the certified errors are finite; unknown\n"
        "(infinite or undecided at 128 bits) or refuted exits 1, after printing the result.\n"
        "Example: polyrope attn --n 1024 --d 16 --B 2 --causal --backward --out run1 --json",
        opts, sizeof opts / sizeof opts[0]};
    int rc = pr_cli_parse_nopos(&spec, argc, argv);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!(rope_base > 1.0))
        return pr_cli_fail(CMD, "--rope-base must be greater than 1, got %g", rope_base);
    int ai = 0;
    while (strcmp(algos[ai].name, algo))
        ai++;
    if (wf && pr_cli_given(&spec, "pos") && strcmp(pos, "general"))
        return pr_cli_fail(CMD, "--w gives a general W; drop --pos %s (or use --pos general)", pos);
    if (wf)
        pos = "general";
    if (dof && !backward)
        return pr_cli_fail(CMD, "--do %s is the upstream gradient of the backward pass: add --backward", dof);

    /* sizes: from the first input file, else --n and --d */
    const char *sizer = qf ? "q" : kf ? "k" : vf ? "v" : dof ? "do" : 0;
    const char *sizer_path = qf ? qf : kf ? kf : vf ? vf : dof;
    if (sizer) {
        int nd;
        long shape[PR_NPY_MAXDIM];
        if ((rc = peek(&nd, shape, sizer_path, sizer)))
            return rc;
        if (nd != 2)
            return pr_cli_fail(CMD, "--%s %s: a %d-D array; an n x d matrix (2-D) is expected", sizer, sizer_path, nd);
        long rows = shape[0], cols = shape[1];
        if ((pr_cli_given(&spec, "n") && rows != n) || (pr_cli_given(&spec, "d") && cols != d))
            return pr_cli_fail(CMD, "--%s %s: shape (%ld, %ld) disagrees with --n %ld --d %ld; drop --n/--d",
                               sizer, sizer_path, rows, cols, n, d);
        n = rows;
        d = cols;
        if (n < 1 || d < 1)
            return pr_cli_fail(CMD, "--%s %s: shape (%ld, %ld): n and d must be at least 1", sizer, sizer_path, n, d);
        if (n > 1 << 26 || d > 1 << 16)
            return pr_cli_fail(CMD, "--%s %s: shape (%ld, %ld): n must be at most %d and d at most %d (as --n, --d)",
                               sizer, sizer_path, n, d, 1 << 26, 1 << 16);
    } else if (wf) {
        /* a W file alone fixes n and d too */
        int nd;
        long shape[PR_NPY_MAXDIM];
        if ((rc = peek(&nd, shape, wf, "w")))
            return rc;
        if (nd != 3 || shape[0] % 2 == 0 || shape[1] != shape[2] || shape[1] < 1)
            return pr_cli_fail(CMD, "--w %s: a W array has shape (2n-1, d, d)", wf);
        long wn = (shape[0] + 1) / 2, wd = shape[1];
        if ((pr_cli_given(&spec, "n") && wn != n) || (pr_cli_given(&spec, "d") && wd != d))
            return pr_cli_fail(CMD, "--w %s: shape (%ld, %ld, %ld) means n = %ld, d = %ld, but --n %ld --d %ld were "
                               "given; drop --n/--d or give a W of shape (2n-1, d, d)", wf, shape[0], shape[1],
                               shape[2], wn, wd, n, d);
        if (wn > 1 << 26 || wd > 1 << 16)
            return pr_cli_fail(CMD, "--w %s: shape (%ld, %ld, %ld): n must be at most %d and d at most %d (as --n, --d)",
                               wf, shape[0], shape[1], shape[2], 1 << 26, 1 << 16);
        n = wn;
        d = wd;
    }
    int is_rope = !strcmp(pos, "rope") || !strcmp(pos, "rope-neox");
    if ((is_rope || !strcmp(pos, "general")) && !wf && d % 2)
        return pr_cli_fail(CMD, "d = %ld: --pos %s needs an even head dimension d", d, pos);
    int general = !strcmp(pos, "general");
    int exact_algo = algos[ai].run == algo_exact;
    if (certify && n > 512 && (backward || !strcmp(pos, "general")))
        return pr_cli_fail(CMD, "--certify past n = 512 covers the forward with RoPE or identity: use --n 512 or "
                           "less with %s (n = %ld)", backward ? "--backward" : "a general W", n);
    /* the limits (pr_budget), before anything is allocated: memory of the buffers here, work of
     * the dense runs once W's support is known, the fast paths' plans after P is chosen */
    double max_bytes = max_mem * 1024.0 * 1024.0 * 1024.0;
    if ((rc = budget_buffers(max_bytes, (double)n, (double)d, wf ? (double)d * d : is_rope || general ? 2.0 * d : d,
                             !!qf + !!kf + !!vf + !!dof, wf != 0, backward, general, !exact_algo, alibi > 0)))
        return rc;
    outset_t os;
    memset(&os, 0, sizeof os);
    if (out) {
        const char *names[OUT_MAX] = {"o.npy", "dq.npy", "dk.npy", "dv.npy", "dw.npy"};
        if ((rc = out_prepare(&os, out, names, backward ? (general ? 5 : 4) : 1)))
            return rc;
    }

    size_t nd = (size_t)n * d, L = 2 * (size_t)n - 1;
    double *Q = malloc(sizeof(double) * nd), *K = malloc(sizeof(double) * nd), *V = malloc(sizeof(double) * nd);
    double *dO = malloc(sizeof(double) * nd), *O = malloc(sizeof(double) * nd), *beta = 0;
    double *dQ = 0, *dK = 0, *dV = 0, *dw = 0, *w3 = 0;
    double *fq = 0, *fk = 0, *fv = 0, *fdo = 0;
    pr_posw_t W;
    memset(W, 0, sizeof W);
    rc = 0;
    if (!Q || !K || !V || !dO || !O) {
        rc = pr_cli_fail(CMD, "n = %ld, d = %ld: out of memory for the inputs", n, d);
        goto done;
    }
    pr_rng_t rng;
    pr_rng_init(rng, (uint64_t)seed);
    pr_rng_fill(Q, (long)nd, B, rng);
    pr_rng_fill(K, (long)nd, B, rng);
    pr_rng_fill(V, (long)nd, B, rng);
    long want2[2] = {n, d}, want3[3] = {(long)L, d, d};
    const char *files[4] = {qf, kf, vf, dof}, *names[4] = {"q", "k", "v", "do"};
    double **loaded[4] = {&fq, &fk, &fv, &fdo}, *dst[4] = {Q, K, V, dO};
    for (int t = 0; t < 3; t++)
        if (files[t]) {
            if ((rc = load(loaded[t], files[t], names[t], 2, want2)))
                goto done;
            memcpy(dst[t], *loaded[t], sizeof(double) * nd);
        }
    int st;
    if (wf) {
        if ((rc = load(&w3, wf, "w", 3, want3)))
            goto done;
        st = pr_posw_init_dense(W, w3, (int)n, (int)d);
    } else if (is_rope) {
        st = pr_posw_init_rope(W, (int)n, (int)d, rope_base, strcmp(pos, "rope") ? PR_ROPE_NEOX : PR_ROPE_INTERLEAVED);
    } else if (!strcmp(pos, "general")) {
        st = pr_posw_init_general(W, (int)n, (int)d, rng);
    } else {
        st = pr_posw_init_identity(W, (int)n, (int)d);
    }
    if (st) {
        rc = pr_cli_fail_status(CMD, st, "position matrices W");
        goto done;
    }
    pr_rng_fill(dO, (long)nd, 1.0, rng);
    if (dof) {
        if ((rc = load(&fdo, dof, "do", 2, want2)))
            goto done;
        memcpy(dO, fdo, sizeof(double) * nd);
    }

    attn_job_t job;
    memset(&job, 0, sizeof job);
    job.n = (int)n;
    job.d = (int)d;
    job.backward = backward;
    job.Q = Q;
    job.K = K;
    job.V = V;
    job.dO = dO;
    job.W = W;
    job.eps = eps;
    job.degree = degree;
    job.poly = poly;
    job.plan_flags = strcmp(fftw, "measure") ? PR_FAST_ESTIMATE : PR_FAST_MEASURE;
    job.O = O;
    job.B_declared = (qf || kf || vf) && pr_cli_given(&spec, "B") ? B : 0.0;
    job.R = job.floor = job.plan_s = NAN;
    job.transforms = -1;
    job.predicted[0] = job.predicted[1] = job.predicted[2] = NAN;
    for (int k = 0; k < 4; k++)
        job.grad_bound[k] = NAN;
    job.max_bytes = max_bytes;
    job.max_ops = max_work;
    pr_attn_opts_default(&job.opts, (int)d);
    job.opts.sigma = pr_scale_sigma(strcmp(scale, "inv-d") ? PR_SCALE_INV_SQRT_D : PR_SCALE_INV_D, (int)d);
    job.opts.causal = causal;
    if (alibi > 0) {
        if (!(beta = malloc(sizeof(double) * L)) || (st = pr_bias_alibi(beta, (int)n, alibi))) {
            rc = pr_cli_fail(CMD, "--alibi: out of memory");
            goto done;
        }
        job.opts.beta = beta;
    }
    /* the dense runs' work: the algorithm itself (algo_exact checks it), --check's reference
     * (refused), the reference err_inf takes when n <= 4096 (skipped past the limit), --certify's
     * Arb reference (about 100 double operations per ball operation) */
    int reference = !exact_algo && (check || n <= 4096);
    {
        pr_budget_t b;
        pr_budget_init(b, max_bytes, max_work);
        double dops = dense_ops((double)n, (double)d, W->s, backward);
        char m[300];
        if (reference && pr_budget_ops(b, dops, "the dense reference of --check")) {
            if (!check)
                reference = 0;
            else {
                pr_budget_explain(m, sizeof m, b, MEM_OPT, WORK_OPT);
                rc = pr_cli_fail(CMD, "%s, or drop --check", m);
                goto done;
            }
        }
        if (certify && pr_budget_ops(b, (n > 512 ? 5.0 : 100.0) * dops, "the certified reference of --certify")) {
            pr_budget_explain(m, sizeof m, b, MEM_OPT, WORK_OPT);
            rc = pr_cli_fail(CMD, "%s, or drop --certify", m);
            goto done;
        }
    }
    if (backward) {
        dQ = job.dQ = malloc(sizeof(double) * nd);
        dK = job.dK = malloc(sizeof(double) * nd);
        dV = job.dV = malloc(sizeof(double) * nd);
        if (general)
            dw = job.dw = malloc(sizeof(double) * W->s * L);
        if (!dQ || !dK || !dV || (general && !dw)) {
            rc = pr_cli_fail(CMD, "n = %ld, d = %ld: out of memory for the gradients", n, d);
            goto done;
        }
    }
    if ((st = degree_check(&job, algo)) || (st = algos[ai].run(&job))) {
        rc = job.msg[0] ? pr_cli_fail(CMD, "%s", job.msg) : pr_cli_fail_status(CMD, st, algo);
        goto done;
    }
    int exact = algos[ai].run == algo_exact || (job.algo_used && !strcmp(job.algo_used, "exact"));
    attn_est_t est;
    if ((st = est_run(&est, &job, !exact))) {
        rc = pr_cli_fail_status(CMD, st, "error estimate");
        goto done;
    }
    /* err_inf against the dense reference (null for exact: it is the reference) */
    double err_inf = NAN, grad_err_inf = NAN;
    if (reference) {
        attn_job_t ref = job;
        double *buf = malloc(sizeof(double) * (4 * nd + (general ? W->s * L : 0)));
        if (!buf) {
            rc = pr_cli_fail(CMD, "out of memory for the reference run; drop --check");
            goto done;
        }
        ref.O = buf;
        ref.dQ = buf + nd;
        ref.dK = buf + 2 * nd;
        ref.dV = buf + 3 * nd;
        ref.dw = general && backward ? buf + 4 * nd : 0;
        if ((st = algo_exact(&ref)) || (st = est_ref(&est, &ref))) {
            free(buf);
            rc = pr_cli_fail_status(CMD, st, "dense reference");
            goto done;
        }
        err_inf = pr_vec_max_abs_diff(O, ref.O, nd);
        if (backward) {
            grad_err_inf = fmax(pr_vec_max_abs_diff(dQ, ref.dQ, nd),
                                fmax(pr_vec_max_abs_diff(dK, ref.dK, nd), pr_vec_max_abs_diff(dV, ref.dV, nd)));
            if (dw)
                grad_err_inf = fmax(grad_err_inf, pr_vec_max_abs_diff(dw, ref.dw, W->s * L));
        }
        free(buf);
    }

    /* --certify (issue 7, 13): of the real-number problem; unknown or refuted is exit 1 below */
    attn_cert_t cert = {NAN, NAN, PR_CERT_UNKNOWN};
    if (certify) {
        if ((st = certify_run(&cert, &job, strcmp(scale, "inv-d") ? PR_SCALE_INV_SQRT_D : PR_SCALE_INV_D, alibi))) {
            rc = pr_cli_fail_status(CMD, st, "certified reference");
            goto done;
        }
    }
    double cert_err = cert.err, cert_grad = cert.grad;
    const char *cert_verdict = certify ? pr_cert_verdict_name(cert.verdict) : 0;

    if (out) {
        if ((rc = out_write(&os, "o.npy", O, 2, want2)))
            goto done;
        if (backward && ((rc = out_write(&os, "dq.npy", dQ, 2, want2)) || (rc = out_write(&os, "dk.npy", dK, 2, want2)) ||
                         (rc = out_write(&os, "dv.npy", dV, 2, want2))))
            goto done;
        if (dw) {
            pr_posw_struct G = *W;
            G.w = dw;
            if (!(w3 = w3 ? w3 : malloc(sizeof(double) * L * d * d))) {
                rc = pr_cli_fail(CMD, "out of memory for dw.npy");
                goto done;
            }
            pr_posw_to_dense(w3, &G);
            if ((rc = out_write(&os, "dw.npy", w3, 3, want3)))
                goto done;
        }
        if ((rc = out_commit(&os)))
            goto done;
    }

    /* B: the generating bound, or the data's when any of Q, K, V came from a file */
    double Bout = qf || kf || vf ? fmax(pr_vec_max_abs(Q, nd), fmax(pr_vec_max_abs(K, nd), pr_vec_max_abs(V, nd))) : B;
    double R = isfinite(job.R) ? job.R
             : job.opts.sigma * pr_vec_max_abs(Q, nd) * pr_vec_max_abs(K, nd) * pr_posw_max_rowsum(W);
    int trusted = est_trusted(&est, 1);
    if (json) {
        printf("{\"cmd\": \"attn\", ");
        pr_cli_json_int("n", n, ", ");
        pr_cli_json_int("d", d, ", ");
        pr_cli_json_num("B", Bout, 17, ", ");
        pr_cli_json_num("eps", exact ? NAN : eps, 17, ", ");
        printf("\"algo\": \"%s\", \"pos\": \"%s\", ", algo, pos);
        pr_cli_json_int("degree", job.degree_used, ", ");
        pr_cli_json_int("terms", job.terms, ", ");
        pr_cli_json_num("R", R, 17, ", ");
        pr_cli_json_num("time_s", job.time_s, 17, ", ");
        pr_cli_json_num("err_inf", err_inf, 17, ", ");
        pr_cli_json_num("bound", job.bound, 17, ", ");
        pr_cli_json_num("floor", job.floor, 17, ", ");
        pr_cli_json_int("transforms", job.transforms, ", ");
        pr_cli_json_num("plan_s", job.plan_s, 17, ", ");
        if (job.transforms >= 0)
            printf("\"streamed\": %s, ", job.streamed ? "true" : "false");
        if (job.algo_used) {
            printf("\"algo_used\": \"%s\", ", job.algo_used);
            pr_cli_json_num("predicted_exact_s", job.predicted[0], 17, ", ");
            pr_cli_json_num("predicted_lowrank_s", job.predicted[1], 17, ", ");
            pr_cli_json_num("predicted_fft_s", job.predicted[2], 17, ", ");
        }
        pr_cli_json_num("grad_err_inf", grad_err_inf, 17, ", ");
        pr_cli_json_num("certified_err_inf", cert_err, 17, ", ");
        pr_cli_json_num("certified_grad_err_inf", cert_grad, 17, ", ");
        if (cert_verdict)
            printf("\"certified_verdict\": \"%s\", \"certificate_of\": \"%s\", ", cert_verdict, ATTN_CERT_OF);
        json_honest(&job, &est, trusted, general && backward, degree > 0);
        /* the bound on grad_err_inf: the largest of the per-gradient bounds (dw's when computed) */
        double gb = fmax(job.grad_bound[0], fmax(job.grad_bound[1], job.grad_bound[2]));
        pr_cli_json_num("grad_bound", isnan(job.grad_bound[3]) ? gb : fmax(gb, job.grad_bound[3]), 17, ", ");
        pr_cli_json_num("grad_bound_dq", job.grad_bound[0], 17, ", ");
        pr_cli_json_num("grad_bound_dk", job.grad_bound[1], 17, ", ");
        pr_cli_json_num("grad_bound_dv", job.grad_bound[2], 17, ", ");
        pr_cli_json_num("grad_bound_dw", job.grad_bound[3], 17, ", ");
        pr_cli_json_num("time_backward_s", backward ? job.time_backward_s : NAN, 17, ", ");
        pr_cli_json_num("sigma", job.opts.sigma, 17, ", ");
        printf("\"scale\": \"%s\", \"causal\": %s, ", scale, causal ? "true" : "false");
        pr_cli_json_num("alibi", alibi, 17, ", ");
        pr_cli_json_num("rope_base", is_rope ? rope_base : NAN, 17, ", ");
        pr_cli_json_int("seed", seed, ", ");
        printf("\"backward\": %s, ", backward ? "true" : "false");
        pr_cli_json_num("max_abs_o", pr_vec_max_abs(O, nd), 17, ", ");
        if (out)
            printf("\"out\": \"%s\", ", out);
        printf("\"threads\": %d}\n", omp_get_max_threads());
    } else {
        printf("attn: n=%ld d=%ld pos=%s algo=%s scale=%s%s%s\n", n, d, pos, algo, scale, causal ? " causal" : "",
               alibi > 0 ? " alibi" : "");
        printf("  B = %g, R = %.6g (%s)\n", Bout, R, isfinite(job.R) ? "the fast path's bound on max|M_ij| from the data"
                                                   : "sigma max|Q| max|K| max_l sum|w_l|");
        printf("  forward %.6f s, max|O| = %.6g\n", job.time_s, pr_vec_max_abs(O, nd));
        if (job.algo_used)
            printf("  auto: %s (predicted exact %.3g s, lowrank %.3g s, fft %.3g s)\n", job.algo_used,
                   job.predicted[0], job.predicted[1], job.predicted[2]);
        if (!exact)
            printf("  degree %ld, terms %ld, bound %.3g (floor %.3g), err_inf %.3g\n", job.degree_used, job.terms,
                   job.bound, job.floor, err_inf);
        if (job.transforms >= 0)
            printf("  %ld transforms (plan %.3f s%s)\n", job.transforms, job.plan_s,
                   job.streamed ? ", symbols' spectra streamed" : "");
        if (backward)
            printf("  backward %.6f s, max|dQ| = %.6g, max|dK| = %.6g, max|dV| = %.6g\n", job.time_backward_s,
                   pr_vec_max_abs(dQ, nd), pr_vec_max_abs(dK, nd), pr_vec_max_abs(dV, nd));
        if (backward && !exact) {
            printf("  gradient bounds dQ %.3g, dK %.3g, dV %.3g", job.grad_bound[0], job.grad_bound[1], job.grad_bound[2]);
            if (isfinite(job.grad_bound[3]))
                printf(", dw %.3g", job.grad_bound[3]);
            printf("; grad_err_inf %.3g\n", grad_err_inf);
        }
        text_honest(&est, exact);
        if (certify)
            printf("  certified (Arb, %d bits, of the real-number definition): err_inf <= %.3g; %s%s\n",
                   PR_HIPREC_MIN_PREC, cert_err, exact || !isfinite(job.bound) ? "" : "err_inf <= bound: ",
                   cert_verdict);
        if (certify && backward)
            printf("  certified (Arb): grad_err_inf <= %.3g\n", cert_grad);
        if (out)
            printf("  wrote %s/o.npy%s%s\n", out, backward ? ", dq.npy, dk.npy, dv.npy" : "", dw ? ", dw.npy" : "");
    }
    /* a certificate that is not "certified" is a failed check: exit 1 */
    if (!rc && certify && cert.verdict != PR_CERT_CERTIFIED) {
        fprintf(stderr, "polyrope %s: --certify: %s\n", CMD, cert.verdict == PR_CERT_UNKNOWN
                ? "unknown: the certified error is infinite or undecided at 128 bits (entries this large leave "
                  "the ball arithmetic no correct digits); the result is not certified"
                : "refuted: the certified error exceeds the fast path's bound");
        rc = 1;
    }
done:
    if (rc)
        out_discard(&os);
    free(Q); free(K); free(V); free(dO); free(O); free(beta);
    free(dQ); free(dK); free(dV); free(dw); free(w3);
    free(fq); free(fk); free(fv); free(fdo);
    pr_posw_clear(W);
    return rc;
}
