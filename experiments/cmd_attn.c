/* polyrope attn: one attention run (docs/cli.md). Inputs are generated from --seed by
 * pr_problem (the instance a sweep row or a check trial draws from the same seed) or read from
 * .npy files. The phases, in order: parse, sizes, limits, inputs, run, compare with the dense
 * reference, certify, write, report; cmd_attn.h says which file holds which. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cmd_attn.h"
#include "commands.h"

static const char *CMD = "attn";

void pr_cmd_attn_args_init(pr_cmd_attn_args_t *a)
{
    memset(a, 0, sizeof *a);
    a->n = 256;
    a->d = 16;
    a->seed = 1;
    a->B = 1.0;
    a->eps = 1e-6;
    a->rope_base = PR_ROPE_BASE_DEFAULT;
    a->max_mem = 6.0;
    a->max_work = 1e13;
    a->pos = "rope";
    a->algo = "dense";
    a->poly = "chebyshev";
    a->scale = "inv-d";
    a->fftw = "estimate";
    const pr_opt_t opts[] = {
        {"n", PR_OPT_INT, &a->n, "sequence length (generated inputs)", 0, 1, 1 << 26, 0},
        {"d", PR_OPT_INT, &a->d, "head dimension (generated inputs; even for RoPE)", 0, 1, 1 << 16, 0},
        {"heads", PR_OPT_INT, &a->heads, "generated inputs: N query heads, Q, dO and the outputs of shape (N, n, d), "
         "on one plan; head 0 is the one-head problem of --seed, the others are drawn after it (0: one head, shape "
         "(n, d))", 0, 0, 1 << 20, 0},
        {"kv-heads", PR_OPT_INT, &a->kv_heads, "generated inputs with --heads: N key/value heads dividing --heads "
         "(grouped-query), K and V of shape (N, n, d) (0: as --heads)", 0, 0, 1 << 20, 0},
        {"B", PR_OPT_DOUBLE, &a->B, "generated Q, K, V uniform in [-B, B)", 0, 0, 1e150, 0},
        {"seed", PR_OPT_INT, &a->seed, "seed of the generated inputs: Q, K, V, then W, then dO (pr_problem: a sweep row with this seed "
         "draws the same)", 0, 0, 9e18, 0},
        {"q", PR_OPT_STRING, &a->qf, "read Q from FILE.npy, shape (n, d), or heads (h, n, d) or (b, h, n, d)", 0, 0, 0,
         0},
        {"k", PR_OPT_STRING, &a->kf, "read K from FILE.npy, shape (n, d), or (h_kv, n, d) or (b, h_kv, n, d) with "
         "h_kv dividing Q's h (grouped-query: query head i reads kv head i / (h / h_kv))", 0, 0, 0, 0},
        {"v", PR_OPT_STRING, &a->vf, "read V from FILE.npy, of K's shape", 0, 0, 0, 0},
        {"w", PR_OPT_STRING, &a->wf, "read a general W from FILE.npy, shape (2n-1, d, d), indexed by l+n-1", 0, 0, 0, 0},
        {"do", PR_OPT_STRING, &a->dof, "read the upstream gradient dO from FILE.npy, of Q's shape (with --backward)", 0, 0,
         0, 0},
        {"pos", PR_OPT_CHOICE, &a->pos, "position matrices W", "rope|rope-neox|general|identity", 0, 0, 0},
        {"rope-base", PR_OPT_DOUBLE, &a->rope_base, "RoPE angle base (> 1)", 0, 0, 0, 0},
        {"algo", PR_OPT_CHOICE, &a->algo, "algorithm (dense: the double-precision reference; "
         "--certify's is Arb)", "dense|lowrank|fft|auto", 0, 0, 0},
        {"eps", PR_OPT_DOUBLE, &a->eps, "target output error of the fast paths", 0, 1e-300, 1, 0},
        {"poly", PR_OPT_CHOICE, &a->poly, "polynomial for e^x in the fast paths", "taylor|chebyshev|minimax", 0, 0, 0},
        {"degree", PR_OPT_INT, &a->degree, "polynomial degree of the fast paths (0: the least meeting --eps); a fixed "
         "degree must still meet --eps (its bound <= eps), else the run is refused", 0, 0, PR_EXPOLY_MAX_DEGREE, 0},
        {"fftw", PR_OPT_CHOICE, &a->fftw, "FFTW planning of the fft path: estimate (reproducible bit for bit) or measure "
         "(seconds of planning, faster transforms from n ~ 2^16; kept in $POLYROPE_FFTW_WISDOM if set)",
         "estimate|measure", 0, 0, 0},
        {"scale", PR_OPT_CHOICE, &a->scale, "score scale sigma: 1/d or 1/sqrt(d)", "inv-d|inv-sqrt-d", 0, 0, 0},
        {"causal", PR_OPT_FLAG, &a->causal, "causal mask (key j <= query i)", 0, 0, 0, 0},
        {"alibi", PR_OPT_DOUBLE, &a->alibi, "ALiBi bias -SLOPE*|i-j| (0: none)", 0, 0, 1e300, 0},
        {"backward", PR_OPT_FLAG, &a->backward, "also the gradients dQ, dK, dV (and dW for a general W, on the support "
         "of W only: entries of W zero at every offset get no gradient)", 0, 0, 0, 0},
        {"certify", PR_OPT_FLAG, &a->certify, "certified err_inf (and grad_err_inf) against an Arb reference of the "
         "real-number problem (RoPE angles, their cos and sin, sigma and ALiBi computed in Arb from the given doubles), "
         "n <= 512 (past it through pr_certify's double pass, docs/certify.md: the forward and the gradients, dw "
         "included, for any W, with Arb rows, and dK's and dV's key rows, where it cannot bound them: 60 s a head); a "
         "verdict other than certified is exit 1", 0, 0, 0, 0},
        {"check", PR_OPT_FLAG, &a->check, "fast algorithms: compare with the dense reference (err_inf) even when n > 4096", 0, 0, 0, 0},
        {"out", PR_OPT_STRING, &a->out, "write o.npy (and dq, dk, dv, dw .npy with --backward) into DIR", 0, 0, 0, 0},
        {"json", PR_OPT_FLAG, &a->json, "print one JSON object", 0, 0, 0, 0},
        {"max-mem", PR_OPT_DOUBLE, &a->max_mem, "memory limit in GiB: a run whose buffers or plans would pass it is "
         "refused before it starts", 0, 1e-3, 1e6, 0},
        {"max-work", PR_OPT_DOUBLE, &a->max_work, "work limit in (estimated) floating-point operations: a run past it "
         "is refused before it starts; 1e13 is tens of minutes", 0, 1, 1e30, 0},
    };
    _Static_assert(sizeof opts / sizeof opts[0] == PR_CMD_ATTN_NOPTS, "PR_CMD_ATTN_NOPTS counts the options");
    memcpy(a->opts, opts, sizeof opts);
    pr_cmd_spec_t spec = {"attn", "", "One attention run O = softmax(M + bias) V, optionally with its gradients.",
        "Inputs are generated uniformly in [-B, B) from --seed (dO in [-1, 1)), or read from\n"
        "little-endian float64 C-order .npy files; n and d then come from the files. W: --pos, or\n"
        "a general W from --w. Heads: Q, K, V (and dO) files of shape (h, n, d) or (b, h, n, d),\n"
        "K, V with h_kv heads dividing h, or generated by --heads H [--kv-heads K], run on one\n"
        "plan: the fast paths choose the degree once, for the worst head (largest R and |V|),\n"
        "so that each head's bound meets --eps; outputs have the inputs' shapes (dK, dV summed\n"
        "over the query heads sharing a kv head, dw over all heads). Times are wall-clock seconds,\n"
        "of all heads. With --json one object is printed; fields that do not apply (eps, degree,\n"
        "terms, bound, err_inf for dense) are null; err_inf is also null when the dense reference\n"
        "would pass --max-work (unless --check asks for it).\n"
        "Every result carries an estimate of its own error (err_est, grad_err_est; ref_err_est for\n"
        "the dense reference behind err_inf): for dense, first-order bounds derived from the data\n"
        "(pr_dense_error_est, a double: it warns, never certifies); for a fast path, its bound plus\n"
        "that. When a rounding estimate passes 2^-10 of its result's largest entry, a warning on\n"
        "stderr says so and \"trusted\" is false: use --certify. --certify's verdict: for a fast path,\n"
        "of err_inf <= bound; for dense, certified when the certified errors are finite; unknown\n"
        "(infinite or undecided at 128 bits) or refuted exits 1, after printing the result.\n"
        "Example: polyrope attn --n 1024 --d 16 --B 2 --causal --backward --out run1 --json",
        a->opts, PR_CMD_ATTN_NOPTS};
    a->spec = spec;
}

/* One run: its options, the problem, the outputs and what is reported. */
typedef struct {
    pr_cmd_attn_args_t a;
    int general, reference;      /* W general (dw computed); err_inf against the dense reference */
    size_t nd, L;
    pr_problem_t P;
    pr_cmd_attn_layout_t lay;    /* the inputs' heads and the outputs' shapes */
    size_t H, HKV;               /* query heads, kv heads (a batch folded in) */
    double *O, *dQ, *dK, *dV, *dw;
    double *w3;                  /* a (2n-1, d, d) W: --w's, then dw.npy's */
    double *head_bound, *head_err;
    pr_control_backward_bound_t *head_grad;
    pr_cmd_attn_job_t job;
    pr_cmd_attn_out_t os;
    pr_cmd_attn_result_t res;
} attn_t;

/* --algo exact was the dense path's old name; exact/ means Arb, so the name is refused */
static int old_name(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if ((!strcmp(argv[i], "--algo") && i + 1 < argc && !strcmp(argv[i + 1], "exact")) ||
            !strcmp(argv[i], "--algo=exact"))
            return pr_cli_fail(CMD, "--algo exact is now --algo dense (the double-precision dense reference; "
                               "--certify gives the Arb one)");
    return 0;
}

/* parse: the options and how they combine; 0 to run, else the exit status (-1: --help shown) */
static int parse(pr_cmd_attn_args_t *a, int argc, char **argv)
{
    int rc = old_name(argc, argv);
    if (rc || (rc = pr_cli_parse_nopos(&a->spec, argc, argv)))
        return rc;
    if (!(a->rope_base > 1.0))
        return pr_cli_fail(CMD, "--rope-base must be greater than 1, got %g", a->rope_base);
    if (a->wf && pr_cli_given(&a->spec, "pos") && strcmp(a->pos, "general"))
        return pr_cli_fail(CMD, "--w gives a general W; drop --pos %s (or use --pos general)", a->pos);
    if (a->wf)
        a->pos = "general";
    if (a->dof && !a->backward)
        return pr_cli_fail(CMD, "--do %s is the upstream gradient of the backward pass: add --backward", a->dof);
    if ((a->heads || a->kv_heads) && (a->qf || a->kf || a->vf || a->dof))
        return pr_cli_fail(CMD, "--%s is for generated inputs; the files' shapes give the heads: drop it",
                           a->heads ? "heads" : "kv-heads");
    return 0;
}

/* n, d and the heads from Q, K, V, dO files (pr_cmd_attn_layout) */
static int size_from_matrix(attn_t *r)
{
    pr_cmd_attn_args_t *a = &r->a;
    const char *files[4] = {a->qf, a->kf, a->vf, a->dof};
    int rc = pr_cmd_attn_layout(&r->lay, files, a->backward);
    if (rc)
        return rc;
    const char *opt = a->qf ? "q" : a->kf ? "k" : a->vf ? "v" : "do";
    const char *path = a->qf ? a->qf : a->kf ? a->kf : a->vf ? a->vf : a->dof;
    long rows = r->lay.n, cols = r->lay.d;
    if ((pr_cli_given(&a->spec, "n") && rows != a->n) || (pr_cli_given(&a->spec, "d") && cols != a->d))
        return pr_cli_fail(CMD, "--%s %s: n = %ld, d = %ld in the file disagrees with --n %ld --d %ld; drop --n/--d", opt, path,
                           rows, cols, a->n, a->d);
    if (rows > 1 << 26 || cols > 1 << 16)
        return pr_cli_fail(CMD, "--%s %s: n = %ld, d = %ld: n must be at most %d and d at most %d (as --n, --d)", opt,
                           path, rows, cols, 1 << 26, 1 << 16);
    if (r->lay.b * r->lay.h > 1 << 20)
        return pr_cli_fail(CMD, "--%s %s: %ld heads; at most %d", opt, path, r->lay.b * r->lay.h, 1 << 20);
    a->n = rows;
    a->d = cols;
    return 0;
}

/* a W file alone fixes n and d too */
static int size_from_w(pr_cmd_attn_args_t *a)
{
    pr_npy_info_t info;
    int rc = pr_cmd_attn_peek(&info, a->wf, "w");
    if (rc)
        return rc;
    int nd = info.ndim;
    const long *shape = info.shape;
    if (nd != 3 || shape[0] % 2 == 0 || shape[1] != shape[2] || shape[1] < 1)
        return pr_cli_fail(CMD, "--w %s: a W array has shape (2n-1, d, d)", a->wf);
    long wn = (shape[0] + 1) / 2, wd = shape[1];
    if ((pr_cli_given(&a->spec, "n") && wn != a->n) || (pr_cli_given(&a->spec, "d") && wd != a->d))
        return pr_cli_fail(CMD, "--w %s: shape (%ld, %ld, %ld) means n = %ld, d = %ld, but --n %ld --d %ld were "
                           "given; drop --n/--d or give a W of shape (2n-1, d, d)", a->wf, shape[0], shape[1],
                           shape[2], wn, wd, a->n, a->d);
    if (wn > 1 << 26 || wd > 1 << 16)
        return pr_cli_fail(CMD, "--w %s: shape (%ld, %ld, %ld): n must be at most %d and d at most %d (as --n, --d)",
                           a->wf, shape[0], shape[1], shape[2], 1 << 26, 1 << 16);
    a->n = wn;
    a->d = wd;
    return 0;
}

/* Before anything is allocated: the buffers of the inputs, outputs and reference (in double, so
 * that no product of sizes wraps) against --max-mem. s_max bounds W's support. */
static int budget_buffers(const attn_t *r, double max_bytes)
{
    const pr_cmd_attn_args_t *a = &r->a;
    /* every n×d buffer of a query head's size (kv heads are no more) */
    double n = (double)a->n, d = (double)a->d, nd = n * d * (double)r->H, L = 2.0 * n - 1.0;
    double s_max = a->wf ? d * d : strcmp(a->pos, "identity") ? 2.0 * d : d;
    int files = !!a->qf + !!a->kf + !!a->vf + !!a->dof, general = r->general, reference = strcmp(a->algo, "dense");
    double doubles = 5.0 * nd + files * nd + s_max * L + (a->wf ? L * d * d : 0.0) + (a->alibi > 0 ? L : 0.0) +
                     (a->backward ? 3.0 * nd + (general ? s_max * L + L * d * d : 0.0) : 0.0) +
                     (reference ? 4.0 * nd + (general ? s_max * L : 0.0) : 0.0);
    pr_budget_t b;
    pr_budget_init(b, max_bytes, 0.0);
    if (pr_budget_bytes(b, 8.0 * doubles, "holding the inputs and outputs")) {
        char m[300];
        pr_budget_explain(m, sizeof m, b, PR_CMD_ATTN_MEM_OPT, PR_CMD_ATTN_WORK_OPT);
        return pr_cli_fail(CMD, "n = %.0f, d = %.0f: %s, or use a smaller --n or --d", n, d, m);
    }
    return 0;
}

/* sizes and limits, before any work: n, d from the files, the head dimension W needs,
 * --certify's size, the buffers against --max-mem, and the --out directory */
static int prepare(attn_t *r)
{
    pr_cmd_attn_args_t *a = &r->a;
    int rc = a->qf || a->kf || a->vf || a->dof ? size_from_matrix(r) : a->wf ? size_from_w(a) : 0;
    if (rc)
        return rc;
    pr_cmd_attn_layout_t *lay = &r->lay;
    if (!(a->qf || a->kf || a->vf || a->dof) && (rc = pr_cmd_attn_layout_generated(lay, a->n, a->d, a->heads,
                                                                                     a->kv_heads)))
        return rc;
    r->H = (size_t)(lay->b * lay->h);
    r->HKV = (size_t)(lay->b * lay->h_kv);
    r->general = !strcmp(a->pos, "general");
    if (strcmp(a->pos, "identity") && !a->wf && a->d % 2)
        return pr_cli_fail(CMD, "d = %ld: --pos %s needs an even head dimension d", a->d, a->pos);
    if (a->certify && a->backward && r->H > 1)
        return pr_cli_fail(CMD, "--certify --backward takes one head (%zu given): certify the forward of all heads, "
                           "or each head's gradients from its own files", r->H);
    r->nd = (size_t)a->n * a->d;
    r->L = 2 * (size_t)a->n - 1;
    if ((rc = budget_buffers(r, a->max_mem * 1024.0 * 1024.0 * 1024.0)))
        return rc;
    if (a->out) {
        const char *names[PR_CMD_ATTN_OUT_MAX] = {"o.npy", "dq.npy", "dk.npy", "dv.npy", "dw.npy"};
        return pr_cmd_attn_out_prepare(&r->os, a->out, names, a->backward ? (r->general ? 5 : 4) : 1);
    }
    return 0;
}

/* a generated input replaced by its file */
static int replace(double **x, const char *path, const char *opt, int ndim, const long *shape)
{
    double *f = 0;
    int rc = pr_cmd_attn_load(&f, path, opt, ndim, shape);
    if (rc)
        return rc;
    free(*x);
    *x = f;
    return 0;
}

/* x (len doubles) grown to count·len, the new part drawn from rng in [-B, B) */
static int grow(double **x, size_t len, size_t count, double B, pr_rng_t rng)
{
    if (!*x || count <= 1)
        return 0;
    double *y = realloc(*x, sizeof(double) * len * count);
    if (!y)
        return pr_cli_fail(CMD, "%zu heads of n×d = %zu: out of memory for the inputs", count, len);
    *x = y;
    pr_rng_fill(y + len, (long)(len * (count - 1)), B, rng);
    return 0;
}

/* --heads: head 0 is pr_problem's one-head instance (Q, K, V, W, dO); the other heads are drawn
 * after it from the same stream, Q's, then K's, V's, then dO's (docs/cli.md, generated inputs) */
static int more_heads(attn_t *r, pr_rng_t rng)
{
    pr_problem_struct *P = r->P;
    if (r->a.qf || r->a.kf || r->a.vf || r->a.dof)
        return 0;
    int rc = grow(&P->Q, r->nd, r->H, r->a.B, rng);
    if (!rc)
        rc = grow(&P->K, r->nd, r->HKV, r->a.B, rng);
    if (!rc)
        rc = grow(&P->V, r->nd, r->HKV, r->a.B, rng);
    return rc ? rc : grow(&P->dO, r->nd, r->H, 1.0, rng);
}

/* inputs: pr_problem's instance for --seed, then the files over it; W, σ, the mask and ALiBi */
static int inputs(attn_t *r)
{
    pr_cmd_attn_args_t *a = &r->a;
    pr_problem_struct *P = r->P;
    int n = (int)a->n, d = (int)a->d;
    pr_pos_kind_t kind = PR_POS_CUSTOM;
    if (!a->wf && pr_problem_kind_parse(&kind, a->pos))
        return pr_cli_fail_status(CMD, PR_EINVAL, "--pos");
    pr_rng_t rng;
    pr_rng_init(rng, (uint64_t)a->seed);
    int st = pr_problem_generate(P, rng, n, d, a->B, kind, a->rope_base, a->backward ? PR_PROBLEM_DO : 0);
    if (st == PR_ENOMEM)
        return pr_cli_fail(CMD, "n = %d, d = %d: out of memory for the inputs", n, d);
    if (st)
        return pr_cli_fail_status(CMD, st, "position matrices W");
    int rc = more_heads(r, rng);
    if (rc)
        return rc;
    long want3[3] = {(long)r->L, d, d}, *qs = r->lay.qshape, *ks = r->lay.kshape;
    int nd = r->lay.ndim;
    if ((a->qf && (rc = replace(&P->Q, a->qf, "q", nd, qs))) || (a->kf && (rc = replace(&P->K, a->kf, "k", nd, ks))) ||
        (a->vf && (rc = replace(&P->V, a->vf, "v", nd, ks))) || (a->dof && (rc = replace(&P->dO, a->dof, "do", nd, qs))))
        return rc;
    if (a->wf) {
        if ((rc = pr_cmd_attn_load(&r->w3, a->wf, "w", 3, want3)))
            return rc;
        if ((st = pr_posw_init_dense(P->W, r->w3, n, d)))
            return pr_cli_fail_status(CMD, st, "position matrices W");
    }
    P->opts.sigma = pr_scale_sigma(strcmp(a->scale, "inv-d") ? PR_SCALE_INV_SQRT_D : PR_SCALE_INV_D, d);
    P->opts.causal = a->causal;
    if (a->alibi > 0 && pr_problem_alibi(P, a->alibi))
        return pr_cli_fail(CMD, "--alibi: out of memory");
    return 0;
}

/* the job: the problem, the options of the algorithms, and the output buffers */
static int job_make(attn_t *r)
{
    pr_cmd_attn_args_t *a = &r->a;
    pr_cmd_attn_job_t *job = &r->job;
    memset(job, 0, sizeof *job);
    job->n = (int)a->n;
    job->d = (int)a->d;
    job->heads = (int)r->H;
    job->kv_heads = (int)r->HKV;
    job->batch = (int)r->lay.b;
    job->backward = a->backward;
    job->Q = r->P->Q;
    job->K = r->P->K;
    job->V = r->P->V;
    job->dO = r->P->dO;
    job->W = r->P->W;
    job->opts = r->P->opts;
    job->eps = a->eps;
    job->degree = a->degree;
    job->poly = a->poly;
    job->plan_flags = strcmp(a->fftw, "measure") ? PR_FAST_ESTIMATE : PR_FAST_MEASURE;
    job->B_declared = (a->qf || a->kf || a->vf) && pr_cli_given(&a->spec, "B") ? a->B : 0.0;
    job->R = job->floor = job->plan_s = NAN;
    job->transforms = -1;
    job->predicted[0] = job->predicted[1] = job->predicted[2] = NAN;
    for (int k = 0; k < 4; k++)
        job->grad_bound[k] = NAN;
    job->max_bytes = a->max_mem * 1024.0 * 1024.0 * 1024.0;
    job->max_ops = a->max_work;
    size_t nq = r->nd * r->H, nk = r->nd * r->HKV;
    job->O = r->O = malloc(sizeof(double) * nq);
    job->head_bound = r->head_bound = malloc(sizeof(double) * r->H);
    job->head_grad = r->head_grad = malloc(sizeof(pr_control_backward_bound_t) * r->H);
    if (a->backward) {
        job->dQ = r->dQ = malloc(sizeof(double) * nq);
        job->dK = r->dK = malloc(sizeof(double) * nk);
        job->dV = r->dV = malloc(sizeof(double) * nk);
        if (r->general)
            job->dw = r->dw = malloc(sizeof(double) * job->W->s * r->L);
    }
    if (!r->O || !r->head_bound || !r->head_grad ||
        (a->backward && (!r->dQ || !r->dK || !r->dV || (r->general && !r->dw))))
        return pr_cli_fail(CMD, "n = %ld, d = %ld: out of memory for the outputs", a->n, a->d);
    return 0;
}

/* The dense runs' work once W's support is known: the algorithm itself (pr_cmd_attn_dense
 * checks it), --check's reference (refused), the reference err_inf takes when n <= 4096
 * (skipped past the limit), --certify's Arb reference (about 100 double operations per ball
 * operation). */
static int budget_dense(attn_t *r)
{
    const pr_cmd_attn_args_t *a = &r->a;
    r->reference = strcmp(a->algo, "dense") && (a->check || a->n <= 4096);
    pr_budget_t b;
    pr_budget_init(b, r->job.max_bytes, a->max_work);
    double dops = (double)r->H * pr_cmd_attn_dense_ops((double)a->n, (double)a->d, r->P->W->s, a->backward);
    char m[300];
    if (r->reference && pr_budget_ops(b, dops, "the dense reference of --check")) {
        if (!a->check) {
            r->reference = 0;
        } else {
            pr_budget_explain(m, sizeof m, b, PR_CMD_ATTN_MEM_OPT, PR_CMD_ATTN_WORK_OPT);
            return pr_cli_fail(CMD, "%s, or drop --check", m);
        }
    }
    if (a->certify && pr_budget_ops(b, (a->n > 512 ? 5.0 : 100.0) * dops, "the certified reference of --certify")) {
        pr_budget_explain(m, sizeof m, b, PR_CMD_ATTN_MEM_OPT, PR_CMD_ATTN_WORK_OPT);
        return pr_cli_fail(CMD, "%s, or drop --certify", m);
    }
    return 0;
}

/* err_inf (and grad_err_inf) against the dense reference, and the reference's own estimate
 * (none for dense: it is the reference) */
static int compare(attn_t *r)
{
    pr_cmd_attn_result_t *res = &r->res;
    res->err_inf = res->grad_err_inf = NAN;
    if (!r->reference)
        return 0;
    size_t nq = r->nd * r->H, nk = r->nd * r->HKV, sw = r->dw ? r->P->W->s * r->L : 0;
    pr_cmd_attn_job_t ref = r->job;
    double *buf = malloc(sizeof(double) * (2 * nq + 2 * nk + sw));
    if (!buf || !(r->head_err = malloc(sizeof(double) * r->H))) {
        free(buf);
        return pr_cli_fail(CMD, "out of memory for the reference run; drop --check");
    }
    ref.O = buf;
    ref.dQ = buf + nq;
    ref.dK = buf + 2 * nq;
    ref.dV = buf + 2 * nq + nk;
    ref.dw = r->dw ? buf + 2 * nq + 2 * nk : 0;
    ref.head_bound = NULL;
    int st = pr_cmd_attn_dense(&ref);
    if (!st)
        st = pr_cmd_attn_est_ref(&res->est, &ref);
    if (!st) {
        res->err_inf = pr_vec_max_abs_diff(r->O, ref.O, nq);
        for (size_t q = 0; q < r->H; q++)
            r->head_err[q] = pr_vec_max_abs_diff(r->O + q * r->nd, ref.O + q * r->nd, r->nd);
        res->head_err = r->head_err;
        if (r->a.backward)
            res->grad_err_inf = fmax(pr_vec_max_abs_diff(r->dQ, ref.dQ, nq),
                                     fmax(pr_vec_max_abs_diff(r->dK, ref.dK, nk), pr_vec_max_abs_diff(r->dV, ref.dV, nk)));
        if (r->dw)
            res->grad_err_inf = fmax(res->grad_err_inf, pr_vec_max_abs_diff(r->dw, ref.dw, sw));
    }
    free(buf);
    return st ? pr_cli_fail_status(CMD, st, "dense reference") : 0;
}

/* --out: every output into its temporary, then all renamed into place */
static int write_outputs(attn_t *r)
{
    pr_cmd_attn_out_t *os = &r->os;
    long want3[3] = {(long)r->L, r->a.d, r->a.d}, *qs = r->lay.qshape, *ks = r->lay.kshape;
    int nd = r->lay.ndim, rc = pr_cmd_attn_out_write(os, "o.npy", r->O, nd, qs);
    if (!rc && r->a.backward && ((rc = pr_cmd_attn_out_write(os, "dq.npy", r->dQ, nd, qs)) ||
                                 (rc = pr_cmd_attn_out_write(os, "dk.npy", r->dK, nd, ks)) ||
                                 (rc = pr_cmd_attn_out_write(os, "dv.npy", r->dV, nd, ks))))
        return rc;
    if (!rc && r->dw) {
        pr_posw_struct G = *r->P->W;
        G.w = r->dw;
        if (!(r->w3 = r->w3 ? r->w3 : malloc(sizeof(double) * r->L * r->a.d * r->a.d)))
            return pr_cli_fail(CMD, "out of memory for dw.npy");
        pr_posw_to_dense(r->w3, &G);
        rc = pr_cmd_attn_out_write(os, "dw.npy", r->w3, 3, want3);
    }
    return rc ? rc : pr_cmd_attn_out_commit(os);
}

/* --certify head by head (one head with --backward): the largest certified errors, and the
 * worst verdict (refuted over unknown over certified) */
static int certify_heads(pr_cmd_attn_cert_t *c, const pr_cmd_attn_job_t *job, pr_scale_t scale, double alibi)
{
    for (int q = 0; q < job->heads; q++) {
        pr_cmd_attn_job_t v;
        pr_cmd_attn_cert_t hc;
        pr_cmd_attn_head(&v, job, q);
        int st = pr_cmd_attn_certify(job->heads > 1 ? &hc : c, job->heads > 1 ? &v : job, scale, alibi);
        if (st || job->heads == 1)
            return st;
        c->err = q ? fmax(c->err, hc.err) : hc.err;
        c->grad = hc.grad;
        c->verdict = !q || hc.verdict == PR_CERT_REFUTED || (hc.verdict == PR_CERT_UNKNOWN &&
                     c->verdict == PR_CERT_CERTIFIED) ? hc.verdict : c->verdict;
    }
    return PR_OK;
}

/* run, estimate, compare, certify, write: 0, or the exit status of the first failure */
static int work(attn_t *r)
{
    pr_cmd_attn_args_t *a = &r->a;
    pr_cmd_attn_result_t *res = &r->res;
    pr_cmd_attn_job_t *job = &r->job;
    int st = pr_cmd_attn_run(job, a->algo);
    if (st)
        return job->msg[0] ? pr_cli_fail(CMD, "%s", job->msg) : pr_cli_fail_status(CMD, st, a->algo);
    res->a = a;
    res->job = job;
    res->dense = !strcmp(a->algo, "dense") || (job->algo_used && !strcmp(job->algo_used, "dense"));
    if ((st = pr_cmd_attn_est_run(&res->est, job, !res->dense)))
        return pr_cli_fail_status(CMD, st, "error estimate");
    int rc = compare(r);
    if (rc)
        return rc;
    /* --certify (issue 7, 13): of the real-number problem; unknown or refuted is exit 1 */
    res->cert = (pr_cmd_attn_cert_t){NAN, NAN, PR_CERT_UNKNOWN};
    if (a->certify && (st = certify_heads(&res->cert, job, strcmp(a->scale, "inv-d") ? PR_SCALE_INV_SQRT_D
                                                                                    : PR_SCALE_INV_D, a->alibi)))
        return pr_cli_fail_status(CMD, st, "certified reference");
    return a->out ? write_outputs(r) : 0;
}

int pr_cmd_attn(int argc, char **argv)
{
    attn_t *r = calloc(1, sizeof *r);
    if (!r)
        return pr_cli_fail(CMD, "out of memory");
    pr_cmd_attn_args_init(&r->a);
    pr_problem_init(r->P);
    int rc = parse(&r->a, argc, argv);
    if (!rc)
        rc = prepare(r);
    if (!rc && !(rc = inputs(r)) && !(rc = job_make(r)) && !(rc = budget_dense(r)) && !(rc = work(r))) {
        pr_cmd_attn_report(&r->res);
        /* a certificate that is not "certified" is a failed check: exit 1 */
        if (r->a.certify && r->res.cert.verdict != PR_CERT_CERTIFIED) {
            fprintf(stderr, "polyrope %s: --certify: %s\n", CMD, r->res.cert.verdict == PR_CERT_UNKNOWN
                    ? "unknown: the certified error is infinite or undecided at 128 bits (entries this large leave "
                      "the ball arithmetic no correct digits); the result is not certified"
                    : "refuted: the certified error exceeds the fast path's bound");
            rc = 1;
        }
    }
    if (rc)
        pr_cmd_attn_out_discard(&r->os);   /* after the rename, nothing is left to discard */
    free(r->O); free(r->dQ); free(r->dK); free(r->dV); free(r->dw); free(r->w3);
    free(r->head_bound); free(r->head_grad); free(r->head_err);
    pr_problem_clear(r->P);
    free(r);
    return rc < 0 ? 0 : rc;
}
