/* polyrope attn (docs/cli.md "attn"), in phases, one file each:
 *   cmd_attn.c     the options, the sizes, the inputs (pr_problem) and the order of the phases
 *   attn_run.c     the algorithms (dense, lowrank, fft, auto) and their one-line refusals
 *   attn_io.c      .npy inputs and --out (all outputs or none)
 *   attn_report.c  error estimates, --certify, and the JSON or text report
 * The option table is exported (pr_cmd_attn_args_init) so that the fuzzer parses with the
 * command's own table (tests/fuzz/fuzz_cli.c). */
#ifndef PR_CMD_ATTN_H
#define PR_CMD_ATTN_H

#include <stddef.h>
#include "polyrope-exact.h"
#include "cli.h"

/* the options that raise the two limits of pr_budget */
#define PR_CMD_ATTN_MEM_OPT "--max-mem"
#define PR_CMD_ATTN_WORK_OPT "--max-work"

enum { PR_CMD_ATTN_NOPTS = 28 };

/* The options of polyrope attn and the table that parses them (and prints --help). The table
 * points into the struct itself: initialise it where it stays, never copy it. */
typedef struct {
    long n, d, seed, degree, heads, kv_heads;   /* heads, kv_heads: 0 when not given */
    double B, eps, rope_base, alibi, max_mem, max_work;
    const char *qf, *kf, *vf, *wf, *dof, *out;
    const char *pos, *algo, *poly, *scale, *fftw;
    int causal, backward, json, check, certify;
    pr_opt_t opts[PR_CMD_ATTN_NOPTS];
    pr_cmd_spec_t spec;
} pr_cmd_attn_args_t;

/* the defaults, and the table pointing at them */
void pr_cmd_attn_args_init(pr_cmd_attn_args_t *a);

/* One problem and what an algorithm returns for it. Heads (docs/cli.md "Heads"): Q, O, dO, dQ hold
 * `heads` query heads of n×d, K, V, dK, dV `kv_heads` (a batch b folded in: head bi·h + hi), query
 * head q reading kv head q / (heads / kv_heads); dw is summed over the heads (W is shared). */
typedef struct {
    int n, d, backward;
    int heads, kv_heads, batch;
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
    double predicted[3];    /* auto: predicted seconds for dense, lowrank, fft */
    char msg[700];          /* a one-line error of the algorithm's own, if any */
    double grad_bound[4];   /* fast paths with --backward: propagated bounds on dQ, dK, dV, dw */
    double max_bytes, max_ops;  /* --max-mem (bytes), --max-work: pr_budget's limits */
    double *head_bound;     /* heads: each query head's bound (fast paths; else NAN) */
    pr_control_backward_bound_t *head_grad;  /* heads: each query head's gradient parts' bounds */
} pr_cmd_attn_job_t;

/* ---- attn_run.c ---- */

/* operations of the dense reference on n × d with s support pairs */
double pr_cmd_attn_dense_ops(double n, double d, double s, int backward);
/* runs --algo `algo` (dense, lowrank, fft or auto) after checking a fixed --degree against
 * --eps; a refusal of the algorithm's own is one line in job->msg */
int pr_cmd_attn_run(pr_cmd_attn_job_t *job, const char *algo);
/* the dense reference alone (err_inf's), head by head, grouped-query dK, dV and dw summed */
int pr_cmd_attn_dense(pr_cmd_attn_job_t *job);
/* query head q of job as a one-head job (its slices, its bounds); dK, dV, dw are the whole
 * job's: a caller with grouped-query heads or dw gives the view its own */
void pr_cmd_attn_head(pr_cmd_attn_job_t *view, const pr_cmd_attn_job_t *job, int q);

/* ---- attn_io.c ---- */

/* a read .npy of the given shape, finite; else one line naming the file (exit status 2) and
 * *x NULL */
int pr_cmd_attn_load(double **x, const char *path, const char *opt, int ndim, const long *want);
/* the shape of an .npy from its header alone (pr_npy_peek): the sizes are checked against
 * --max-mem before any file's data is read */
int pr_cmd_attn_peek(pr_npy_info_t *info, const char *path, const char *opt);

/* The layout of the given inputs (Q, K, V, dO files; NULL where generated) as attention heads:
 * (n, d), (h, n, d) or (b, h, n, d), K and V of one shape with h_kv heads dividing Q's h, dO of
 * Q's shape; generated inputs beside files are one head, so several heads need Q, K and V from
 * files (and dO with --backward). Else one line naming the file and what to change (exit status 2).
 * pr_cmd_attn_layout_generated: the layout of generated inputs, one head (n, d) when heads is 0,
 * else (heads, n, d) over kv_heads (0: heads) kv heads. */
typedef struct {
    int ndim;               /* of the files' shapes (2 when all are generated) */
    long b, h, h_kv, n, d;
    long qshape[4], kshape[4];  /* the outputs' shapes: O, dQ as Q; dK, dV as K */
} pr_cmd_attn_layout_t;

int pr_cmd_attn_layout(pr_cmd_attn_layout_t *lay, const char *const files[4], int backward);
int pr_cmd_attn_layout_generated(pr_cmd_attn_layout_t *lay, long n, long d, long heads, long kv_heads);

/* --out DIR: decided before the work (DIR exists or is created, each output can be replaced) and
 * written to temporaries in DIR, renamed over the outputs' names once all are written; on any
 * failure the temporaries (and DIR, if this run created it) are removed: no partial outputs. */
enum { PR_CMD_ATTN_OUT_MAX = 5 };
typedef struct {
    const char *dir;
    int count, made_dir;
    const char *name[PR_CMD_ATTN_OUT_MAX];
    char tmp[PR_CMD_ATTN_OUT_MAX][4096], path[PR_CMD_ATTN_OUT_MAX][4096];
} pr_cmd_attn_out_t;

int pr_cmd_attn_out_prepare(pr_cmd_attn_out_t *os, const char *dir, const char *const *names, int count);
int pr_cmd_attn_out_write(pr_cmd_attn_out_t *os, const char *name, const double *x, int ndim, const long *shape);
int pr_cmd_attn_out_commit(pr_cmd_attn_out_t *os);
void pr_cmd_attn_out_discard(pr_cmd_attn_out_t *os);

/* ---- attn_report.c ---- */

/* Estimated errors (pr_dense_error_est; for a fast path its a-priori bound plus the dense
 * estimate, which covers the rounding of W, σ and β) of the run's outputs O, dQ, dK, dV, dw
 * and, when err_inf was measured, of the dense reference's. NAN where not computed. */
typedef struct {
    double run[5], ref[5];
    double fp[5];                    /* the run's rounding part (= run for dense) */
    double scale[5], ref_scale[5];   /* the results' largest entries */
} pr_cmd_attn_est_t;

/* --certify's certified errors and verdict */
typedef struct {
    double err, grad;
    pr_cert_verdict_t verdict;
} pr_cmd_attn_cert_t;

/* everything the report prints */
typedef struct {
    const pr_cmd_attn_args_t *a;
    const pr_cmd_attn_job_t *job;
    int dense;                       /* the dense path ran (asked for, or picked by auto) */
    double err_inf, grad_err_inf;    /* against the dense reference; NAN if not compared */
    double *head_err;                /* NULL, or err_inf of each query head's O */
    pr_cmd_attn_est_t est;
    pr_cmd_attn_cert_t cert;         /* with --certify */
} pr_cmd_attn_result_t;

int pr_cmd_attn_est_run(pr_cmd_attn_est_t *est, const pr_cmd_attn_job_t *job, int fast);
int pr_cmd_attn_est_ref(pr_cmd_attn_est_t *est, const pr_cmd_attn_job_t *ref);
int pr_cmd_attn_certify(pr_cmd_attn_cert_t *c, const pr_cmd_attn_job_t *job, pr_scale_t scale, double alibi);
/* the report on stdout (--json: one object); a warning line on stderr when an estimate says
 * the result cannot be trusted */
void pr_cmd_attn_report(const pr_cmd_attn_result_t *r);

#endif
