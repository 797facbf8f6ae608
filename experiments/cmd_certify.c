/* polyrope certify: certified error of someone else's attention output (and gradients) against
 * the real-number attention of its inputs, per head, with a three-way verdict (issue 15;
 * docs/certify.md). Exit 0 certified, 1 refuted, 3 unknown, 2 bad usage or input. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "polyrope-exact.h"
#include "pr_certify.h"
#include "cli.h"
#include "commands.h"

#define CMD "certify"
#define EXIT_UNKNOWN 3

enum { A_Q, A_K, A_V, A_O, A_DO, A_DQ, A_DK, A_DV, A_W, A_N };
static const char *const arg_name[A_N] = {"q", "k", "v", "o", "do", "dq", "dk", "dv", "w"};

typedef struct {
    double *x[A_N];
    pr_npy_info_t info[A_N];
    pr_npy_heads_t lay[A_N];
    int batch, heads, kv_heads, n, d;
} inputs_t;

static void inputs_clear(inputs_t *in)
{
    for (int a = 0; a < A_N; a++)
        free(in->x[a]);
}

/* K-shaped arrays: V and the kv gradients */
static int kv_shaped(int a) { return a == A_K || a == A_V || a == A_DK || a == A_DV; }

/* shapes: (n, d), (h, n, d) or (b, h, n, d); O, dO, dQ as Q; V, dK, dV as K; K's heads divide Q's */
static int check_shapes(inputs_t *in)
{
    for (int a = 0; a < A_W; a++) {
        if (!in->x[a])
            continue;
        const pr_npy_info_t *f = in->info + a;
        if (pr_npy_heads(in->lay + a, f))
            return pr_cli_fail(CMD, "--%s: a %d-D array; (n, d), (h, n, d) or (b, h, n, d) is expected", arg_name[a],
                               f->ndim);
        const pr_npy_heads_t *l = in->lay + a;
        if (l->n > (1L << 26) || l->d > (1L << 16) || l->b * l->h > (1L << 20))
            return pr_cli_fail(CMD, "--%s: (b %ld, h %ld, n %ld, d %ld): n must be at most 2^26, d at most 2^16 and "
                               "b*h at most 2^20", arg_name[a], l->b, l->h, l->n, l->d);
    }
    const pr_npy_heads_t *q = in->lay + A_Q, *k = in->lay + A_K;
    for (int a = 0; a < A_W; a++) {
        if (!in->x[a] || a == A_Q || a == A_K)
            continue;
        int ref = kv_shaped(a) ? A_K : A_Q;
        const pr_npy_heads_t *o = in->lay + a, *w = in->lay + ref;
        if (o->b != w->b || o->h != w->h || o->n != w->n || o->d != w->d || in->info[a].ndim != in->info[ref].ndim)
            return pr_cli_fail(CMD, "--%s: shape (b %ld, h %ld, n %ld, d %ld) differs from --%s's (b %ld, h %ld, n %ld, "
                               "d %ld)", arg_name[a], o->b, o->h, o->n, o->d, arg_name[ref], w->b, w->h, w->n, w->d);
    }
    if (q->b != k->b || q->n != k->n || q->d != k->d || in->info[A_Q].ndim != in->info[A_K].ndim)
        return pr_cli_fail(CMD, "--q and --k: shapes (b %ld, h %ld, n %ld, d %ld) and (b %ld, h %ld, n %ld, d %ld) must "
                           "agree in b, n and d", q->b, q->h, q->n, q->d, k->b, k->h, k->n, k->d);
    long group;
    if (pr_npy_heads_group(&group, q, k))
        return pr_cli_fail(CMD, "--q has %ld heads and --k %ld: grouped-query attention needs the query heads to be "
                           "a multiple of the key/value heads", q->h, k->h);
    in->batch = (int)q->b;
    in->heads = (int)q->h;
    in->kv_heads = (int)k->h;
    in->n = (int)q->n;
    in->d = (int)q->d;
    const pr_npy_info_t *w = in->info + A_W;
    if (in->x[A_W] && (w->ndim != 3 || w->shape[0] != 2L * in->n - 1 || w->shape[1] != in->d || w->shape[2] != in->d))
        return pr_cli_fail(CMD, "--w: a general W has shape (2n-1, d, d) = (%ld, %d, %d), indexed by l+n-1", 2L * in->n - 1,
                           in->d, in->d);
    return 0;
}

static int read_all(inputs_t *in, const char *const path[A_N], int bf16)
{
    for (int a = 0; a < A_N; a++) {
        if (!path[a])
            continue;
        if (!*path[a])
            return pr_cli_fail(CMD, "--%s: an empty path; give the .npy file", arg_name[a]);
        int st = pr_npy_load(&in->x[a], in->info + a, path[a], bf16 ? PR_NPY_ASK_BF16 : 0);
        if (st)
            return pr_cli_fail(CMD, "--%s %s: %s", arg_name[a], path[a],
                               st == PR_EIO ? strerror(errno) : pr_npy_hint(st, in->info + a));
    }
    return 0;
}

/* x is a finite value of dtype: a multiple of its ulp there, within its range */
static int of_dtype(double x, int dtype)
{
    static const double top[4] = {DBL_MAX, 0x1.fffffep127, 65504.0, 0x1.fep127};
    double q = pr_npy_ulp((pr_npy_dtype_t)dtype, x);
    return fabs(x) <= top[dtype] && fmod(x, q) == 0.0;
}

/* inputs must be finite; candidates may hold anything (non-finite entries are refuted) */
static int check_values(const inputs_t *in, int dtype)
{
    size_t qlen = (size_t)in->batch * in->heads * in->n * in->d, klen = (size_t)in->batch * in->kv_heads * in->n * in->d;
    for (int a = 0; a < A_N; a++) {
        if (!in->x[a])
            continue;
        size_t len = a == A_W ? (2 * (size_t)in->n - 1) * in->d * in->d : kv_shaped(a) ? klen : qlen;
        int cand = a == A_O || a == A_DQ || a == A_DK || a == A_DV;
        for (size_t t = 0; t < len; t++) {
            double x = in->x[a][t];
            if (!cand && !isfinite(x))
                return pr_cli_fail(CMD, "--%s: entry %zu is %g; inputs must be finite", arg_name[a], t, x);
            if (cand && isfinite(x) && !of_dtype(x, dtype))
                return pr_cli_fail(CMD, "--%s: entry %zu (%.17g) is not a %s value; give --dtype of the candidate",
                                   arg_name[a], t, x, pr_npy_dtype_name((pr_npy_dtype_t)dtype));
        }
    }
    return 0;
}

static void print_obj(const char *key, const pr_certify_result_t *r, const char *sep)
{
    printf("\"%s\": {", key);
    pr_cli_json_num("lower", r->lower, 17, ", ");
    pr_cli_json_num("upper", r->upper, 17, ", ");
    printf("\"worst\": [%ld, %ld], \"ulps\": {", r->worst_row, r->worst_col);
    pr_cli_json_num("lower", r->ulps_lower, 17, ", ");
    pr_cli_json_num("upper", r->ulps_upper, 17, "}, ");
    printf("\"verdict\": \"%s\", ", pr_cert_verdict_name((pr_cert_verdict_t)r->verdict));
    if (r->witness_row >= 0)
        printf("\"witness\": [%ld, %ld], ", r->witness_row, r->witness_col);
    else
        printf("\"witness\": null, ");
    pr_cli_json_int("fallback_rows", r->rows_fallback, ", ");
    pr_cli_json_int("open_rows", r->rows_open, ", ");
    pr_cli_json_int("rows", r->rows, ", ");
    pr_cli_json_num("time_s", r->time_s, 4, "}");
    printf("%s", sep);
}

static void print_line(const char *what, int b, int h, const pr_certify_result_t *r, int dtype)
{
    printf("batch %d head %d %-3s max|err| in [%.9g, %.9g] at (%ld, %ld), %.4g..%.4g ulps (%s): %s", b, h, what,
           r->lower, r->upper, r->worst_row, r->worst_col, r->ulps_lower, r->ulps_upper,
           pr_npy_dtype_name((pr_npy_dtype_t)dtype), pr_cert_verdict_name((pr_cert_verdict_t)r->verdict));
    if (r->witness_row >= 0)
        printf(" at (%ld, %ld)", r->witness_row, r->witness_col);
    printf(" [Arb rows %ld/%ld, %ld open, %.3f s]\n", r->rows_fallback, r->rows, r->rows_open, r->time_s);
}

/* worst verdict over every result: refuted > unknown > certified */
static int combine(int v, const pr_certify_result_t *r)
{
    if (r->rows == 0)
        return v;
    if (v == PR_CERT_REFUTED || r->verdict == PR_CERT_REFUTED)
        return PR_CERT_REFUTED;
    return v == PR_CERT_UNKNOWN || r->verdict == PR_CERT_UNKNOWN ? PR_CERT_UNKNOWN : PR_CERT_CERTIFIED;
}

static int report(const inputs_t *in, const pr_certify_result_t *fw, const pr_certify_result_t *bw, int json,
                  const pr_certify_opts_t *op)
{
    int v = PR_CERT_CERTIFIED, nh = in->batch * in->heads;
    static const char *const gname[3] = {"dQ", "dK", "dV"};
    if (json)
        printf("{\"n\": %d, \"d\": %d, \"batch\": %d, \"num_heads\": %d, \"kv_heads\": %d, \"dtype\": \"%s\", \"atol\": "
               "%.17g, \"rtol\": %.17g, \"heads\": [",
               in->n, in->d, in->batch, in->heads, in->kv_heads, pr_npy_dtype_name((pr_npy_dtype_t)op->dtype), op->atol,
               op->rtol);
    for (int t = 0; t < nh; t++) {
        int b = t / in->heads, h = t % in->heads;
        v = combine(v, fw + t);
        if (json) {
            printf("{\"batch\": %d, \"head\": %d, ", b, h);
            print_obj("O", fw + t, "");
        } else {
            print_line("O", b, h, fw + t, op->dtype);
        }
        for (int g = 0; bw && g < 3; g++) {
            const pr_certify_result_t *r = bw + 3 * (size_t)t + g;
            if (r->rows == 0)
                continue;
            v = combine(v, r);
            if (json) {
                printf(", ");
                print_obj(gname[g], r, "");
            } else {
                print_line(gname[g], b, h, r, op->dtype);
            }
        }
        if (json)
            printf("}%s", t + 1 < nh ? ", " : "");
    }
    if (json)
        printf("], \"verdict\": \"%s\"}\n", pr_cert_verdict_name((pr_cert_verdict_t)v));
    else
        printf("verdict: %s (|cand - true| <= %g + %g |true| at every element)\n",
               pr_cert_verdict_name((pr_cert_verdict_t)v), op->atol, op->rtol);
    return v == PR_CERT_CERTIFIED ? 0 : v == PR_CERT_REFUTED ? 1 : EXIT_UNKNOWN;
}

/* what the inputs ask for, against the limits (before any work): sizes of --w, RoPE's even d, memory */
static int check_limits(const inputs_t *in, int general, const pr_certify_problem_t *pb, const char *pos, int grads,
                        double max_mem)
{
    int rc = 0;
    if (!general && pb->pos != PR_CERTIFY_POS_IDENTITY && in->d % 2)
        rc = pr_cli_fail(CMD, "d = %d: --pos %s needs an even head dimension d (or --pos identity)", in->d, pos);
    /* memory of one head: the double pass (8 n x d doubles and a 32 x n panel per thread), the
     * Arb rows (K and V as 48-byte balls), the gradients' double pass (4 n x d doubles and three
     * 32 x n panels per thread, 10 n x d more) and their Arb fallback (n x n balls, n <= 512; past it
     * L20's columns: a kv group's Q and dO as balls twice (two layouts), K and V, dK's and dV's values and
     * bounds, the rows' enclosures); a general W twice more in its support form (at most d x d sequences of
     * 2n - 1) */
    double g = in->kv_heads > 0 ? (double)in->heads / in->kv_heads : 1.0; /* query heads a kv group (L20) */
    double nd = (double)in->n * in->d, bytes = 8.0 * (8 * nd + 64.0 * in->n) + 2 * 48.0 * nd;
    if (general)
        bytes += 2 * 8.0 * (2.0 * in->n - 1) * in->d * in->d;
    if (grads)
        bytes += 8.0 * (10 * nd + 2 * (4 * nd + 96.0 * in->n)) +
                 (in->n <= PR_CERTIFY_GRAD_MAX_N ? 48.0 * (8 * nd + (double)in->n * in->n)
                                                 : 48.0 * (4.0 * g + 2) * nd + 8.0 * 4 * nd + 200.0 * g * in->n);
    if (!rc && bytes > max_mem * 1073741824.0)
        rc = pr_cli_fail(CMD, "a head needs about %.2f GiB, past --max-mem %g: raise --max-mem", bytes / 1073741824.0,
                         max_mem);
    return rc;
}

int pr_cmd_certify(int argc, char **argv)
{
    const char *path[A_N] = {0};
    const char *pos = "rope", *scale = "inv-d", *dtype_s = "file";
    double rope_base = PR_ROPE_BASE_DEFAULT, alibi = 0.0, atol = 0.0, rtol = 0.0, fallback_s = 60.0, max_mem = 6.0;
    int causal = 0, json = 0, bf16 = 0;
    pr_opt_t opts[] = {
        {"q", PR_OPT_STRING, &path[A_Q], "queries Q, .npy of shape (n, d), (h, n, d) or (b, h, n, d)", 0, 0, 0, 0},
        {"k", PR_OPT_STRING, &path[A_K], "keys K: as Q, with h_kv heads dividing Q's h (grouped-query)", 0, 0, 0, 0},
        {"v", PR_OPT_STRING, &path[A_V], "values V: K's shape", 0, 0, 0, 0},
        {"o", PR_OPT_STRING, &path[A_O], "the candidate output O to certify: Q's shape", 0, 0, 0, 0},
        {"do", PR_OPT_STRING, &path[A_DO], "upstream gradient dO (Q's shape), with any of --dq --dk --dv", 0, 0, 0, 0},
        {"dq", PR_OPT_STRING, &path[A_DQ], "candidate dQ (Q's shape)", 0, 0, 0, 0},
        {"dk", PR_OPT_STRING, &path[A_DK], "candidate dK (K's shape; with GQA summed over each group)", 0, 0, 0, 0},
        {"dv", PR_OPT_STRING, &path[A_DV], "candidate dV (K's shape; with GQA summed over each group)", 0, 0, 0, 0},
        {"w", PR_OPT_STRING, &path[A_W], "a general W instead of --pos: .npy of shape (2n-1, d, d) indexed by l+n-1, "
         "shared by every head (output and gradients)",
         0, 0, 0, 0},
        {"pos", PR_OPT_CHOICE, &pos, "RoPE applied inside attention (interleaved or neox pairs), or identity when Q and K "
         "come already rotated (or without RoPE)", "rope|rope-neox|identity", 0, 0, 0},
        {"rope-base", PR_OPT_DOUBLE, &rope_base, "RoPE angle base (> 1)", 0, 0, 0, 0},
        {"scale", PR_OPT_CHOICE, &scale, "score scale sigma: 1/d or 1/sqrt(d) (the real numbers)", "inv-d|inv-sqrt-d",
         0, 0, 0},
        {"causal", PR_OPT_FLAG, &causal, "causal mask (key j <= query i)", 0, 0, 0, 0},
        {"alibi", PR_OPT_DOUBLE, &alibi, "ALiBi bias -SLOPE*|i-j| (0: none)", 0, 0, 1e300, 0},
        {"atol", PR_OPT_DOUBLE, &atol, "absolute tolerance A of |cand - true| <= A + R |true|", 0, 0, 1e300, 0},
        {"rtol", PR_OPT_DOUBLE, &rtol, "relative tolerance R", 0, 0, 1e300, 0},
        {"bf16", PR_OPT_FLAG, &bf16, "read 16-bit integer arrays ('<u2', '<i2') as the bits of bfloat16 numbers", 0, 0,
         0, 0},
        {"dtype", PR_OPT_CHOICE, &dtype_s, "the candidate's dtype, for errors in its ulps: that of the --o file, or "
         "one whose values it holds (e.g. float32 results saved as float64)", "file|float64|float32|float16|bfloat16",
         0, 0, 0},
        {"max-fallback-s", PR_OPT_DOUBLE, &fallback_s, "seconds per head (gradients: CPU seconds per kv head for "
         "dK's and dV's key rows) for rows recomputed in Arb; rows left undecided past it make the verdict unknown "
         "(open_rows counts them)", 0, 0, 1e9, 0},
        {"max-mem", PR_OPT_DOUBLE, &max_mem, "memory limit in GiB, checked before the run", 0, 1e-3, 1e6, 0},
        {"json", PR_OPT_FLAG, &json, "print one JSON object", 0, 0, 0, 0},
    };
    pr_cmd_spec_t spec = {CMD, "",
        "Certified error of a candidate attention output (and gradients) against true attention.",
        "O_true is the real-number attention of the given Q, K, V (little-endian .npy of float64,\n"
        "float32, float16, or bfloat16 bits with --bf16, widened exactly): RoPE's angles, cos and\n"
        "sin, sigma and ALiBi are the real numbers of their definitions, so the enclosure holds\n"
        "whatever libm and the rounding mode do. Per head it prints a certified enclosure [lower,\n"
        "upper] of max |cand - true|, the element of the largest lower bound, its error in ulps of\n"
        "--dtype, and the verdict of |cand - true| <= atol + rtol |true| at every element: certified\n"
        "(exit 0), refuted (exit 1, with a witness element), unknown (exit 3); bad usage or input is\n"
        "exit 2 (docs/verdicts.md, docs/certify.md). A non-finite candidate entry is refuted. Each\n"
        "row runs in double with a proved error bound; rows it cannot decide or bound tightly are\n"
        "recomputed in Arb (\"Arb rows\"). Gradients (--do with --dq/--dk/--dv) likewise in double,\n"
        "dQ's undecided rows in Arb at any n, the head again in Arb where still undecided (n <= 512;\n"
        "with --w while n^2 s g <= 2^25, s = W's support, g query heads per kv head), past it dK's\n"
        "and dV's undecided key rows j, column j of the weights in Arb from the double pass's row\n"
        "sums (then the rows themselves in Arb where that is too wide). A general W (--w): output\n"
        "and gradients likewise, at any n (dw is not certified).\n"
        "With --json one object: per head {\"O\": {\"lower\", \"upper\",\n"
        "\"worst\", \"ulps\", \"verdict\", \"witness\", ...}, \"dQ\": ...}, heads in order.\n"
        "Example: polyrope certify --q q.npy --k k.npy --v v.npy --o o.npy --rtol 1e-3",
        opts, sizeof opts / sizeof opts[0]};
    int rc = pr_cli_parse_nopos(&spec, argc, argv);
    if (rc)
        return rc < 0 ? 0 : rc;
    for (int a = A_Q; a <= A_O; a++)
        if (!path[a])
            return pr_cli_fail(CMD, "--%s is required (--q, --k, --v and the candidate --o)", arg_name[a]);
    int grads = !!path[A_DQ] + !!path[A_DK] + !!path[A_DV];
    if (path[A_DO] && !grads)
        return pr_cli_fail(CMD, "--do is the upstream gradient: add the candidate gradients --dq, --dk and/or --dv");
    if (grads && !path[A_DO])
        return pr_cli_fail(CMD, "--dq/--dk/--dv need the upstream gradient --do");
    if (!(rope_base > 1.0))
        return pr_cli_fail(CMD, "--rope-base must be greater than 1, got %g", rope_base);
    if (path[A_W] && pr_cli_given(&spec, "pos"))
        return pr_cli_fail(CMD, "--w gives a general W; drop --pos %s", pos);
    pr_certify_problem_t pb;
    pr_certify_problem_default(&pb);
    pb.pos = !strcmp(pos, "rope") ? PR_CERTIFY_POS_ROPE : !strcmp(pos, "rope-neox") ? PR_CERTIFY_POS_ROPE_NEOX
                                                                                     : PR_CERTIFY_POS_IDENTITY;
    pb.rope_base = rope_base;
    pb.scale = strcmp(scale, "inv-d") ? PR_CERTIFY_SCALE_INV_SQRT_D : PR_CERTIFY_SCALE_INV_D;
    pb.causal = causal;
    pb.alibi = alibi;
    pr_certify_opts_t op;
    pr_certify_opts_default(&op);
    op.atol = atol;
    op.rtol = rtol;
    op.max_fallback_s = fallback_s;
    inputs_t in;
    memset(&in, 0, sizeof in);
    if ((rc = read_all(&in, path, bf16)) || (rc = check_shapes(&in))) {
        inputs_clear(&in);
        return rc;
    }
    op.dtype = (int)in.info[A_O].dtype; /* pr_npy_dtype_t and PR_CERTIFY_FLOAT64... agree */
    for (int t = 0; t < 4; t++)
        if (!strcmp(dtype_s, pr_npy_dtype_name((pr_npy_dtype_t)t)))
            op.dtype = t;
    if ((rc = check_values(&in, op.dtype))) {
        inputs_clear(&in);
        return rc;
    }
    rc = check_limits(&in, path[A_W] != NULL, &pb, pos, grads, max_mem);
    if (rc) {
        inputs_clear(&in);
        return rc;
    }
    size_t nh = (size_t)in.batch * in.heads;
    pr_certify_result_t *fw = calloc(nh, sizeof *fw), *bw = grads ? calloc(3 * nh, sizeof *bw) : NULL;
    int st = !fw || (grads && !bw) ? PR_ENOMEM : PR_OK;
    if (!st && path[A_W])
        st = pr_certify_forward_heads_w(fw, in.x[A_O], in.x[A_Q], in.x[A_K], in.x[A_V], in.x[A_W], in.batch, in.heads,
                                        in.kv_heads, in.n, in.d, &pb, &op);
    else if (!st)
        st = pr_certify_forward_heads(fw, in.x[A_O], in.x[A_Q], in.x[A_K], in.x[A_V], in.batch, in.heads, in.kv_heads,
                                      in.n, in.d, &pb, &op);
    if (!st && grads && path[A_W])
        st = pr_certify_backward_heads_w(bw, in.x[A_DQ], in.x[A_DK], in.x[A_DV], in.x[A_Q], in.x[A_K], in.x[A_V],
                                         in.x[A_DO], in.x[A_W], in.batch, in.heads, in.kv_heads, in.n, in.d, &pb, &op);
    else if (!st && grads)
        st = pr_certify_backward_heads(bw, in.x[A_DQ], in.x[A_DK], in.x[A_DV], in.x[A_Q], in.x[A_K], in.x[A_V],
                                       in.x[A_DO], in.batch, in.heads, in.kv_heads, in.n, in.d, &pb, &op);
    rc = st ? pr_cli_fail_status(CMD, st, "certification") : report(&in, fw, bw, json, &op);
    free(fw);
    free(bw);
    inputs_clear(&in);
    return rc;
}
