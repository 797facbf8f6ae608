/* polyrope attn: how far each float result can be trusted (issue 13), --certify, and the
 * report (cmd_attn.h). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "pr_certify.h"
#include "cmd_attn.h"

static const char *CMD = "attn";

/* A result is trusted when its estimated rounding error (the dense estimate: for a fast path,
 * not its bound, which is the --eps the user asked for) is below 2^-10 of its largest entry
 * (ten correct bits at its scale); otherwise attn warns and points to --certify. */
#define ATTN_TRUST 0x1p-10

static const char *const est_names[5] = {"O", "dQ", "dK", "dV", "dw"};

static void est_set(double *e, double *fp, double *scale, const pr_dense_err_t *de, const pr_cmd_attn_job_t *job,
                    const double *O, const double *dQ, const double *dK, const double *dV, const double *dw, int fast)
{
    size_t nd = (size_t)job->n * job->d, sw = (size_t)job->W->s * (2 * (size_t)job->n - 1);
    size_t nq = nd * job->heads, nk = nd * job->kv_heads;
    const double *x[5] = {O, dQ, dK, dV, dw};
    size_t len[5] = {nq, nq, nk, nk, sw};
    double base[5] = {de->o, de->dq, de->dk, de->dv, de->dw};
    double fastb[5] = {job->bound, job->grad_bound[0], job->grad_bound[1], job->grad_bound[2], job->grad_bound[3]};
    for (int t = 0; t < 5; t++) {
        e[t] = x[t] ? base[t] + (fast ? fastb[t] : 0.0) : NAN;
        fp[t] = x[t] ? base[t] : NAN;
        scale[t] = x[t] ? pr_vec_max_abs(x[t], len[t]) : NAN;
    }
}

/* the dense estimate for these outputs (dO only with the gradients), head by head: O's and dQ's
 * the largest over the heads, dK's and dV's the largest over kv heads of their query heads' sum,
 * dw's the sum over the heads (their parts are summed) */
static int est_dense(pr_dense_err_t *de, const pr_cmd_attn_job_t *job, const double *O, int grads)
{
    size_t nd = (size_t)job->n * job->d;
    int group = job->heads / job->kv_heads;
    double kv[2] = {0.0, 0.0};
    for (int q = 0; q < job->heads; q++) {
        pr_cmd_attn_job_t v;
        pr_dense_err_t e;
        pr_cmd_attn_head(&v, job, q);
        int st = pr_dense_error_est(&e, v.Q, v.K, v.V, job->W, O + q * nd, grads ? v.dO : NULL, job->n, job->d,
                                    &job->opts);
        if (st)
            return st;
        kv[0] = q % group ? kv[0] + e.dk : e.dk;
        kv[1] = q % group ? kv[1] + e.dv : e.dv;
        if (!q) {
            *de = e;
            continue;
        }
        de->score = fmax(de->score, e.score);
        de->o = fmax(de->o, e.o);
        de->dq = fmax(de->dq, e.dq);
        de->dk = fmax(de->dk, kv[0]);
        de->dv = fmax(de->dv, kv[1]);
        de->dw += e.dw;
    }
    return PR_OK;
}

int pr_cmd_attn_est_run(pr_cmd_attn_est_t *est, const pr_cmd_attn_job_t *job, int fast)
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

int pr_cmd_attn_est_ref(pr_cmd_attn_est_t *est, const pr_cmd_attn_job_t *ref)
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
static int est_trusted(const pr_cmd_attn_est_t *est, int warn)
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
 * given), and the verdict: for a fast path, of err_inf <= bound; for dense, "certified" when the
 * certified errors are finite. Infinite or undecided: "unknown". */
#define ATTN_CERT_OF "attention of the real numbers the given doubles define (RoPE angles base^(-2k/d), " \
                     "their cos and sin, sigma, ALiBi slope times |i-j|, computed in Arb)"

/* past n = 512: pr_certify's double pass and Arb rows (docs/certify.md; a general W by L13-L17);
 * the verdict is of the forward's err_inf <= bound, as below; the gradients' certified error is the
 * largest of dQ's, dK's, dV's and (a general W) dw's, as pr_hiprec_certify's below */
static int certify_large(pr_cmd_attn_cert_t *c, const pr_cmd_attn_job_t *job, pr_scale_t scale, double alibi)
{
    pr_certify_problem_t pb = {job->W->kind == PR_POS_IDENTITY ? PR_CERTIFY_POS_IDENTITY : job->W->kind ==
                               PR_POS_ROPE_NEOX ? PR_CERTIFY_POS_ROPE_NEOX : PR_CERTIFY_POS_ROPE, job->W->rope_base,
                               (int)scale, 0.0, job->opts.causal, alibi};
    pr_certify_opts_t op;
    pr_certify_opts_default(&op);
    op.atol = isfinite(job->bound) ? job->bound : 0.0;
    pr_certify_result_t r, g[4];
    int general = !pr_posw_is_factorised(job->W) && job->W->kind != PR_POS_IDENTITY;
    int st = general ? pr_certify_forward_posw(&r, job->O, job->Q, job->K, job->V, job->W, job->n, job->d, &pb, &op)
                     : pr_certify_forward(&r, job->O, job->Q, job->K, job->V, job->n, job->d, &pb, &op);
    if (st)
        return st;
    c->err = r.upper;
    c->grad = NAN;
    c->verdict = !isfinite(r.upper) ? PR_CERT_UNKNOWN : isfinite(job->bound) ? r.verdict : PR_CERT_CERTIFIED;
    if (!job->backward)
        return PR_OK;
    /* only the enclosures are used: every element the double pass bounds is within DBL_MAX, so the open ones
       are those it cannot bound (rows past L4's range), recomputed in Arb within the default budget (dQ's rows,
       dK's and dV's key rows: docs/certify.md L7, L20) */
    op.atol = DBL_MAX;
    g[3].upper = 0.0;
    if (general && job->dw)
        st = pr_certify_backward_dw(g, job->dQ, job->dK, job->dV, job->dw, job->Q, job->K, job->V, job->dO, job->W, 1,
                                    job->n, job->d, &pb, &op);
    else if (general)
        st = pr_certify_backward_heads_posw(g, job->dQ, job->dK, job->dV, job->Q, job->K, job->V, job->dO, job->W, 1,
                                            1, 1, job->n, job->d, &pb, &op);
    else
        st = pr_certify_backward(g, job->dQ, job->dK, job->dV, job->Q, job->K, job->V, job->dO, job->n, job->d, &pb,
                                 &op);
    if (st)
        return st;
    c->grad = fmax(fmax(g[0].upper, g[1].upper), fmax(g[2].upper, g[3].upper));
    if (!isfinite(c->grad))
        c->verdict = PR_CERT_UNKNOWN;
    return PR_OK;
}

int pr_cmd_attn_certify(pr_cmd_attn_cert_t *c, const pr_cmd_attn_job_t *job, pr_scale_t scale, double alibi)
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
static void json_honest(const pr_cmd_attn_job_t *job, const pr_cmd_attn_est_t *est, int trusted, int dw, int fixed)
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

static void text_honest(const pr_cmd_attn_est_t *est, int dense)
{
    printf("  estimated error (%s): O %.3g", dense ? "dense, derived from the data" : "bound + dense estimate",
           est->run[0]);
    if (!isnan(est_grad(est->run)))
        printf(", gradients %.3g", est_grad(est->run));
    if (!isnan(est->ref[0]))
        printf("; of the dense reference: O %.3g", est->ref[0]);
    if (!isnan(est_grad(est->ref)))
        printf(", gradients %.3g", est_grad(est->ref));
    printf("\n");
}


/* B: the generating bound, or the data's when any of Q, K, V came from a file */
static double report_B(const pr_cmd_attn_result_t *r)
{
    const pr_cmd_attn_args_t *a = r->a;
    const pr_cmd_attn_job_t *job = r->job;
    size_t nd = (size_t)job->n * job->d, nq = nd * job->heads, nk = nd * job->kv_heads;
    if (!a->qf && !a->kf && !a->vf)
        return a->B;
    return fmax(pr_vec_max_abs(job->Q, nq), fmax(pr_vec_max_abs(job->K, nk), pr_vec_max_abs(job->V, nk)));
}

/* R: the fast path's bound on max|M_ij| from the data, else σ max|Q| max|K| max_l Σ|w_l| */
static double report_R(const pr_cmd_attn_job_t *job)
{
    size_t nd = (size_t)job->n * job->d;
    return isfinite(job->R) ? job->R
                            : job->opts.sigma * pr_vec_max_abs(job->Q, nd * job->heads) *
                                  pr_vec_max_abs(job->K, nd * job->kv_heads) * pr_posw_max_rowsum(job->W);
}

/* "key": [x0, x1, ...], one per query head (null where not computed) */
static void json_heads(const char *key, const double *x, int heads)
{
    printf("\"%s\": [", key);
    for (int q = 0; q < heads; q++) {
        double v = x ? x[q] : NAN;
        if (isfinite(v))
            printf("%.17g", v);
        else
            printf("null");
        printf("%s", q + 1 < heads ? ", " : "], ");
    }
}

/* the heads: their layout, per-head times (one plan runs them all: the total over the heads), and
 * each head's bound, gradients' bound and err_inf */
static void json_per_head(const pr_cmd_attn_result_t *r)
{
    const pr_cmd_attn_job_t *job = r->job;
    int H = job->heads;
    pr_cli_json_int("batch", job->batch, ", ");
    pr_cli_json_int("heads", H / job->batch, ", ");
    pr_cli_json_int("kv_heads", job->kv_heads / job->batch, ", ");
    pr_cli_json_num("time_per_head_s", job->time_s / H, 17, ", ");
    pr_cli_json_num("time_backward_per_head_s", job->backward ? job->time_backward_s / H : NAN, 17, ", ");
    double *g = malloc(sizeof(double) * H);
    for (int q = 0; g && q < H; q++) {
        const pr_control_backward_bound_t *b = job->head_grad + q;
        g[q] = r->dense || !job->backward ? NAN : fmax(fmax(b->dq, b->dk), fmax(b->dv, job->dw ? b->dw : b->dv));
    }
    json_heads("head_bound", r->dense ? NULL : job->head_bound, H);
    json_heads("head_grad_bound", g, H);
    json_heads("head_err_inf", r->head_err, H);
    free(g);
}

static void report_json(const pr_cmd_attn_result_t *r, int trusted)
{
    const pr_cmd_attn_args_t *a = r->a;
    const pr_cmd_attn_job_t *job = r->job;
    size_t nd = (size_t)job->n * job->d;
    int certify = a->certify, backward = job->backward;
    printf("{\"cmd\": \"attn\", ");
    pr_cli_json_int("n", job->n, ", ");
    pr_cli_json_int("d", job->d, ", ");
    json_per_head(r);
    pr_cli_json_num("B", report_B(r), 17, ", ");
    pr_cli_json_num("eps", r->dense ? NAN : a->eps, 17, ", ");
    printf("\"algo\": \"%s\", \"pos\": \"%s\", ", a->algo, a->pos);
    pr_cli_json_int("degree", job->degree_used, ", ");
    pr_cli_json_int("terms", job->terms, ", ");
    pr_cli_json_num("R", report_R(job), 17, ", ");
    pr_cli_json_num("time_s", job->time_s, 17, ", ");
    pr_cli_json_num("err_inf", r->err_inf, 17, ", ");
    pr_cli_json_num("bound", job->bound, 17, ", ");
    pr_cli_json_num("floor", job->floor, 17, ", ");
    pr_cli_json_int("transforms", job->transforms, ", ");
    pr_cli_json_num("plan_s", job->plan_s, 17, ", ");
    if (job->transforms >= 0)
        printf("\"streamed\": %s, ", job->streamed ? "true" : "false");
    if (job->algo_used) {
        printf("\"algo_used\": \"%s\", ", job->algo_used);
        pr_cli_json_num("predicted_dense_s", job->predicted[0], 17, ", ");
        pr_cli_json_num("predicted_lowrank_s", job->predicted[1], 17, ", ");
        pr_cli_json_num("predicted_fft_s", job->predicted[2], 17, ", ");
    }
    pr_cli_json_num("grad_err_inf", r->grad_err_inf, 17, ", ");
    pr_cli_json_num("certified_err_inf", certify ? r->cert.err : NAN, 17, ", ");
    pr_cli_json_num("certified_grad_err_inf", certify ? r->cert.grad : NAN, 17, ", ");
    if (certify)
        printf("\"certified_verdict\": \"%s\", \"certificate_of\": \"%s\", ", pr_cert_verdict_name(r->cert.verdict),
               ATTN_CERT_OF);
    json_honest(job, &r->est, trusted, job->dw != NULL, a->degree > 0);
    /* the bound on grad_err_inf: the largest of the per-gradient bounds (dw's when computed) */
    double gb = fmax(job->grad_bound[0], fmax(job->grad_bound[1], job->grad_bound[2]));
    pr_cli_json_num("grad_bound", isnan(job->grad_bound[3]) ? gb : fmax(gb, job->grad_bound[3]), 17, ", ");
    pr_cli_json_num("grad_bound_dq", job->grad_bound[0], 17, ", ");
    pr_cli_json_num("grad_bound_dk", job->grad_bound[1], 17, ", ");
    pr_cli_json_num("grad_bound_dv", job->grad_bound[2], 17, ", ");
    pr_cli_json_num("grad_bound_dw", job->grad_bound[3], 17, ", ");
    pr_cli_json_num("time_backward_s", backward ? job->time_backward_s : NAN, 17, ", ");
    pr_cli_json_num("sigma", job->opts.sigma, 17, ", ");
    printf("\"scale\": \"%s\", \"causal\": %s, ", a->scale, a->causal ? "true" : "false");
    pr_cli_json_num("alibi", a->alibi, 17, ", ");
    pr_cli_json_num("rope_base", pr_posw_is_factorised(job->W) ? a->rope_base : NAN, 17, ", ");
    pr_cli_json_int("seed", a->seed, ", ");
    printf("\"backward\": %s, ", backward ? "true" : "false");
    pr_cli_json_num("max_abs_o", pr_vec_max_abs(job->O, nd * job->heads), 17, ", ");
    if (a->out)
        printf("\"out\": \"%s\", ", a->out);
    printf("\"threads\": %d}\n", omp_get_max_threads());
}

static void report_text(const pr_cmd_attn_result_t *r)
{
    const pr_cmd_attn_args_t *a = r->a;
    const pr_cmd_attn_job_t *job = r->job;
    size_t nd = (size_t)job->n * job->d;
    int dense = r->dense, backward = job->backward;
    printf("attn: n=%d d=%d pos=%s algo=%s scale=%s%s%s\n", job->n, job->d, a->pos, a->algo, a->scale,
           a->causal ? " causal" : "", a->alibi > 0 ? " alibi" : "");
    printf("  B = %g, R = %.6g (%s)\n", report_B(r), report_R(job),
           isfinite(job->R) ? "the fast path's bound on max|M_ij| from the data" : "sigma max|Q| max|K| max_l sum|w_l|");
    if (job->heads > 1)
        printf("  %d heads (batch %d, %d kv heads), one plan: per head forward %.6f s%s", job->heads, job->batch,
               job->kv_heads, job->time_s / job->heads, backward ? "" : "\n");
    if (job->heads > 1 && backward)
        printf(", backward %.6f s\n", job->time_backward_s / job->heads);
    for (int q = 0; job->heads > 1 && !dense && q < job->heads; q++)
        printf("%s%.3g%s", q ? ", " : "  each head's bound: ", job->head_bound[q], q + 1 < job->heads ? "" : "\n");
    printf("  forward %.6f s, max|O| = %.6g\n", job->time_s, pr_vec_max_abs(job->O, nd * job->heads));
    if (job->algo_used)
        printf("  auto: %s (predicted dense %.3g s, lowrank %.3g s, fft %.3g s)\n", job->algo_used, job->predicted[0],
               job->predicted[1], job->predicted[2]);
    if (!dense)
        printf("  degree %ld, terms %ld, bound %.3g (floor %.3g), err_inf %.3g\n", job->degree_used, job->terms,
               job->bound, job->floor, r->err_inf);
    if (job->transforms >= 0)
        printf("  %ld transforms (plan %.3f s%s)\n", job->transforms, job->plan_s,
               job->streamed ? ", symbols' spectra streamed" : "");
    if (backward)
        printf("  backward %.6f s, max|dQ| = %.6g, max|dK| = %.6g, max|dV| = %.6g\n", job->time_backward_s,
               pr_vec_max_abs(job->dQ, nd * job->heads), pr_vec_max_abs(job->dK, nd * job->kv_heads),
               pr_vec_max_abs(job->dV, nd * job->kv_heads));
    if (backward && !dense) {
        printf("  gradient bounds dQ %.3g, dK %.3g, dV %.3g", job->grad_bound[0], job->grad_bound[1], job->grad_bound[2]);
        if (isfinite(job->grad_bound[3]))
            printf(", dw %.3g", job->grad_bound[3]);
        printf("; grad_err_inf %.3g\n", r->grad_err_inf);
    }
    text_honest(&r->est, dense);
    if (a->certify)
        printf("  certified (Arb, %d bits, of the real-number definition): err_inf <= %.3g; %s%s\n", PR_HIPREC_MIN_PREC,
               r->cert.err, dense || !isfinite(job->bound) ? "" : "err_inf <= bound: ",
               pr_cert_verdict_name(r->cert.verdict));
    if (a->certify && backward)
        printf("  certified (Arb): grad_err_inf <= %.3g\n", r->cert.grad);
    if (a->out)
        printf("  wrote %s/o.npy%s%s\n", a->out, backward ? ", dq.npy, dk.npy, dv.npy" : "", job->dw ? ", dw.npy" : "");
}

void pr_cmd_attn_report(const pr_cmd_attn_result_t *r)
{
    int trusted = est_trusted(&r->est, 1);
    if (r->a->json)
        report_json(r, trusted);
    else
        report_text(r);
}
