/* polyrope attn: the algorithms, each one function behind the dispatch table `algos`, and
 * their refusals as one line saying what to change (cmd_attn.h). */
#include <limits.h>
#include <math.h>
#include <string.h>
#include "cmd_attn.h"

/* the forward; the backward about twice more */
double pr_cmd_attn_dense_ops(double n, double d, double s, int backward)
{
    return 2.0 * n * n * (s + d) * (backward ? 3.0 : 1.0);
}

void pr_cmd_attn_head(pr_cmd_attn_job_t *v, const pr_cmd_attn_job_t *job, int q)
{
    size_t nd = (size_t)job->n * job->d, k = (size_t)pr_attn_kv_head(q, job->heads, job->kv_heads) * nd;
    *v = *job;
    v->heads = v->kv_heads = v->batch = 1;
    v->Q = job->Q + q * nd;
    v->K = job->K + k;
    v->V = job->V + k;
    v->dO = job->dO ? job->dO + q * nd : NULL;
    v->O = job->O + q * nd;
    v->dQ = job->dQ ? job->dQ + q * nd : NULL;
    v->dK = job->dK ? job->dK + k : NULL;
    v->dV = job->dV ? job->dV + k : NULL;
    if (job->head_bound)
        v->bound = job->head_bound[q];
    if (job->head_grad && job->backward) {
        const pr_control_backward_bound_t *g = job->head_grad + q;
        double gb[4] = {g->dq, g->dk, g->dv, job->dw ? g->dw : NAN};
        memcpy(v->grad_bound, gb, sizeof gb);
    }
    v->head_bound = NULL;
    v->head_grad = NULL;
}

/* one head */
static int dense_one(pr_cmd_attn_job_t *job)
{
    int n = job->n, d = job->d;
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
    return st;
}

/* part x into the total t: the first part copied, the others added in head order */
static void part_add(double *t, const double *x, size_t len, int first)
{
    for (size_t i = 0; i < len; i++)
        t[i] = first ? x[i] : t[i] + x[i];
}

int pr_cmd_attn_dense(pr_cmd_attn_job_t *job)
{
    int n = job->n, d = job->d, h = job->heads, group = job->heads / job->kv_heads;
    pr_budget_t b;
    pr_budget_init(b, job->max_bytes, job->max_ops);
    if (pr_budget_ops(b, h * pr_cmd_attn_dense_ops(n, d, job->W->s, job->backward), "the dense reference")) {
        char m[300];
        pr_budget_explain(m, sizeof m, b, PR_CMD_ATTN_MEM_OPT, PR_CMD_ATTN_WORK_OPT);
        snprintf(job->msg, sizeof job->msg, "%s, or use --algo fft or lowrank", m);
        return PR_EBUDGET;
    }
    job->bound = NAN;
    job->degree_used = job->terms = -1;
    for (int q = 0; job->head_bound && q < h; q++)
        job->head_bound[q] = NAN;   /* no a-priori bound on the dense path */
    if (h == 1)
        return dense_one(job);
    /* head by head; grouped-query dK, dV and (several heads) dw through parts summed in head order */
    size_t nd = (size_t)n * d, sw = job->dw ? (size_t)job->W->s * (2 * (size_t)n - 1) : 0;
    int parts = job->backward && (group > 1 || sw);
    double *part = parts ? malloc(sizeof(double) * (2 * nd + sw)) : NULL, ts = 0.0, tb = 0.0;
    int st = parts && !part ? PR_ENOMEM : PR_OK;
    for (int q = 0; q < h && !st; q++) {
        pr_cmd_attn_job_t v;
        pr_cmd_attn_head(&v, job, q);
        if (group > 1 && job->backward) {
            v.dK = part;
            v.dV = part + nd;
        }
        v.dw = sw ? part + 2 * nd : NULL;
        if ((st = dense_one(&v)))
            break;
        ts += v.time_s;
        tb += v.time_backward_s;
        if (group > 1 && job->backward) {
            size_t k = (size_t)pr_attn_kv_head(q, h, job->kv_heads) * nd;
            part_add(job->dK + k, v.dK, nd, q % group == 0);
            part_add(job->dV + k, v.dV, nd, q % group == 0);
        }
        if (sw)
            part_add(job->dw, v.dw, sw, q == 0);
    }
    job->time_s = ts;
    job->time_backward_s = tb;
    free(part);
    return st;
}

/* ---- the fast paths (pr_fast, pr_lowrank): error control, then one forward ---- */

static int fast_opts(pr_control_opts_t *o, const pr_cmd_attn_job_t *job)
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
static int fast_fail(pr_cmd_attn_job_t *job, int st, const pr_control_info_t *info, const char *algo)
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
                     "--algo dense", algo, info->R);
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
        pr_budget_explain(why, sizeof why, &info->budget, PR_CMD_ATTN_MEM_OPT, PR_CMD_ATTN_WORK_OPT);
        snprintf(m, len, "%s: degree %d (%.4g %s): %s; or raise --eps, use inputs with smaller entries (lower R = "
                 "%.4g), or --algo dense", algo, info->degree, info->terms, strcmp(algo, "fft") ? "features" : "terms",
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
static int degree_check(pr_cmd_attn_job_t *job, const char *algo)
{
    if (job->degree <= 0 || !strcmp(algo, "dense"))
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
        pr_control_heads_t hd = {job->heads, job->kv_heads, NULL, NULL};
        if ((st = fast_opts(&o, job)))
            break;
        if ((st = pr_control_choose_heads(p, &info, job->Q, job->K, job->V, job->W, job->n, job->d, &job->opts, &o, lr,
                                          &hd))) {
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
        int least = pr_control_choose_heads(p, &info, job->Q, job->K, job->V, job->W, job->n, job->d, &job->opts, &o,
                                            lr, &hd) ? -1 : info.degree;
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

/* what the error control chose; bound: the largest of the heads' own (each under the common P) */
static void fast_report(pr_cmd_attn_job_t *job, const pr_control_info_t *info)
{
    job->bound = job->head_bound[0];
    for (int q = 1; q < job->heads; q++)
        job->bound = fmax(job->bound, job->head_bound[q]);
    job->degree_used = info->degree;
    job->terms = (long)info->terms;
    job->R = info->R;
    job->floor = info->floor;
}

/* a refusal of one head's data names it (bi, hi) */
static int fast_fail_head(pr_cmd_attn_job_t *job, int st, const pr_control_info_t *info, const char *algo)
{
    fast_fail(job, st, info, algo);
    /* (past --B, the bound asked for already covers every head) */
    if (job->heads > 1 && info->head >= 0 && st != PR_EBOUND) {
        char m[sizeof job->msg + 64];
        int h = job->heads / job->batch;
        snprintf(m, sizeof m, "head (%d, %d) of the inputs: %s", info->head / h, info->head % h, job->msg);
        size_t l = strlen(m) < sizeof job->msg ? strlen(m) : sizeof job->msg - 1;
        memcpy(job->msg, m, l);
        job->msg[l] = 0;
    }
    return st;
}

/* --backward on a fast path: the forward with its plan kept, then the fast backward (pr_backward),
 * every head on the same plans */
static int fast_backward(pr_cmd_attn_job_t *job, const pr_control_opts_t *o, int lowrank)
{
    pr_control_info_t info;
    pr_control_backward_report_t rep;
    pr_control_heads_t hd = {job->heads, job->kv_heads, job->head_bound, job->head_grad};
    const char *name = lowrank ? "lowrank" : "fft";
    int st = pr_control_backward_heads(job->O, job->dQ, job->dK, job->dV, lowrank ? NULL : job->dw, &info, &rep,
                                       job->Q, job->K, job->V, job->W, job->dO, job->n, job->d, &job->opts, o, lowrank,
                                       &hd);
    if (st)
        return fast_fail_head(job, st, &info, name);
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

static int algo_fast(pr_cmd_attn_job_t *job, int lowrank)
{
    pr_control_opts_t o;
    pr_control_info_t info;
    int st = fast_opts(&o, job);
    if (st)
        return st;
    if (job->backward)
        return fast_backward(job, &o, lowrank);
    pr_control_heads_t hd = {job->heads, job->kv_heads, job->head_bound, NULL};
    double t = pr_timing_wall();
    st = pr_control_forward_heads(job->O, &info, job->Q, job->K, job->V, job->W, job->n, job->d, &job->opts, &o,
                                  lowrank, &hd);
    job->time_s = pr_timing_wall() - t;
    if (st)
        return fast_fail_head(job, st, &info, lowrank ? "lowrank" : "fft");
    fast_report(job, &info);
    if (!lowrank) {
        job->transforms = info.transforms + info.plan_transforms;
        job->plan_s = info.plan_seconds;
        job->streamed = info.streamed;
    }
    return PR_OK;
}

static int algo_lowrank(pr_cmd_attn_job_t *job) { return algo_fast(job, 1); }
static int algo_fft(pr_cmd_attn_job_t *job) { return algo_fast(job, 0); }

/* the cost model (pr_auto: each path timed on the leading rows, with the backward when asked)
 * picks; dense when no fast path meets the target */
static int algo_auto(pr_cmd_attn_job_t *job)
{
    pr_control_opts_t o;
    pr_auto_t a;
    /* the model is timed on the first head; the pick then runs every head (the predictions are
     * the first head's times the heads) */
    pr_cmd_attn_job_t v;
    pr_cmd_attn_head(&v, job, 0);
    int st = fast_opts(&o, job);
    if (st || (st = pr_auto_predict(&a, v.Q, v.K, v.V, job->backward ? v.dO : NULL, job->W, job->n, job->d,
                                    &job->opts, &o)))
        return st;
    for (int k = 0; k < 3; k++)
        job->predicted[k] = a.t[k] * job->heads;
    job->algo_used = pr_auto_algo_name(a.pick);
    return a.pick == PR_AUTO_DENSE     ? pr_cmd_attn_dense(job)
           : a.pick == PR_AUTO_LOWRANK ? algo_lowrank(job)
                                       : algo_fft(job);
}

static const struct {
    const char *name;
    int (*run)(pr_cmd_attn_job_t *);
} algos[] = {
    {"dense", pr_cmd_attn_dense},
    {"lowrank", algo_lowrank},
    {"fft", algo_fft},
    {"auto", algo_auto},
};

int pr_cmd_attn_run(pr_cmd_attn_job_t *job, const char *algo)
{
    for (size_t i = 0; i < sizeof algos / sizeof algos[0]; i++)
        if (!strcmp(algos[i].name, algo)) {
            int st = degree_check(job, algo);
            return st ? st : algos[i].run(job);
        }
    return PR_EINVAL;
}
