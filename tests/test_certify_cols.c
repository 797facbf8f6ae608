/* pr_certify's Arb fallback for dK and dV past n = 512, column by column (docs/certify.md L20), against
 * pr_hiprec at 256 bits on the whole kv group: RoPE (one head, with a row the double pass cannot bound),
 * grouped-query heads without RoPE (causal, ALiBi) and with a general W. A float32 candidate at a tolerance
 * one part in 10^9 above its true largest error is certified, one part in 10^9 below refuted, and left
 * unknown with a zero budget; the enclosures from the double pass's row enclosures alone (no Arb rows) hold
 * the truth, are tighter than the double pass's, and certify at their own upper bound where the double pass
 * cannot. `attn --certify --backward` past n = 512 gets a finite gradient error where a row's scores are past
 * the double pass (it had no Arb budget there). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pr_test.h"
#include "pr_test_cli.h"
#include "pr_npy.h"
#include "pr_status.h"
#include "pr_hiprec.h"
#include "pr_certify_impl.h"
#include "test_certify_common.h"

#define POS_W (-1) /* a general W on RoPE's support */

typedef struct {
    int n, d, g, pos, causal;
    double alibi, B;
    int huge; /* query row 5 of head 0 times 2^52: its scores past what the double pass bounds (L4) */
} kcase_t;

typedef struct {
    const kcase_t *c;
    double *Q, *K, *V, *dO; /* g×n×d, n×d, n×d, g×n×d */
    double *G;              /* dQ of each head (g×n×d), then dK, dV summed over the heads: the dense backward */
    pr_posw_t W;
    pr_attn_opts_t o;
    double *beta;
    arb_ptr ref;            /* true dK | dV (not with RoPE, whose real cos, sin pr_hiprec_certify takes) */
} inst_t;

static void inst_make(inst_t *x, const kcase_t *c, pr_rng_t rng)
{
    int n = c->n, d = c->d, g = c->g;
    size_t nd = (size_t)n * d, gnd = (size_t)g * nd;
    memset(x, 0, sizeof(*x));
    x->c = c;
    x->Q = malloc(sizeof(double) * (3 * gnd + 4 * nd + 2 * (size_t)n + 2 * nd));
    x->K = x->Q + gnd;
    x->V = x->K + nd;
    x->dO = x->V + nd;
    x->G = x->dO + gnd;
    x->beta = x->G + gnd + 2 * nd;
    double *O = x->beta + 2 * (size_t)n, *lse = O + nd, *dK = O, *dV = O + nd; /* scratch */
    fill(x->Q, gnd, c->B, rng);
    fill(x->K, 2 * nd, c->B, rng);
    fill(x->dO, gnd, 1.0, rng);
    for (int a = 0; c->huge && a < d; a++)
        x->Q[5 * (size_t)d + a] = ldexp(x->Q[5 * (size_t)d + a], 52);
    PR_CHECK_OK(c->pos == PR_CERTIFY_POS_IDENTITY ? pr_posw_init_identity(x->W, n, d)
                : c->pos == POS_W                  ? random_w(x->W, n, d, 0, rng)
                                                   : pr_posw_init_rope(x->W, n, d, PR_ROPE_BASE_DEFAULT,
                                                                       PR_ROPE_INTERLEAVED));
    pr_attn_opts_default(&x->o, d);
    x->o.sigma = pr_scale_sigma(PR_SCALE_INV_D, d); /* d a power of 2: exact */
    x->o.causal = c->causal;
    if (c->alibi > 0.0) {
        PR_CHECK_OK(pr_bias_alibi(x->beta, n, c->alibi));
        x->o.beta = x->beta;
    }
    double *sK = x->G + gnd, *sV = sK + nd;
    memset(sK, 0, sizeof(double) * 2 * nd);
    if (c->pos != PR_CERTIFY_POS_ROPE) {
        x->ref = _arb_vec_init(2 * (slong)nd);
    }
    arb_ptr hk = x->ref ? _arb_vec_init(2 * (slong)nd) : NULL;
    for (int h = 0; h < g; h++) {
        const double *Qh = x->Q + h * nd, *dOh = x->dO + h * nd;
        double *Ob = malloc(sizeof(double) * (nd + n));
        PR_CHECK_OK(pr_dense_forward(Ob, Ob + nd, Qh, x->K, x->V, x->W, n, d, &x->o));
        PR_CHECK_OK(pr_dense_backward(x->G + h * nd, dK, dV, NULL, Qh, x->K, x->V, x->W, Ob, Ob + nd, dOh, n, d,
                                      &x->o));
        free(Ob);
        for (size_t t = 0; t < nd; t++) {
            sK[t] += dK[t];
            sV[t] += dV[t];
        }
        if (hk) {
            PR_CHECK_OK(pr_hiprec_backward(NULL, hk, hk + nd, NULL, Qh, x->K, x->V, x->W, dOh, n, d, &x->o, 256));
            _arb_vec_add(x->ref, x->ref, hk, 2 * (slong)nd, 256);
        }
    }
    (void)lse;
    if (hk)
        _arb_vec_clear(hk, 2 * (slong)nd);
}

static void inst_free(inst_t *x)
{
    if (x->ref)
        _arb_vec_clear(x->ref, 2 * (slong)x->c->n * x->c->d);
    pr_posw_clear(x->W);
    free(x->Q);
}

/* the problem of c and the options: atol, the Arb budget */
static void prob_for(pr_certify_problem_t *pb, pr_certify_opts_t *op, const kcase_t *c, double atol, double budget)
{
    pr_certify_problem_default(pb);
    pb->pos = c->pos == POS_W ? PR_CERTIFY_POS_IDENTITY : c->pos;
    pb->causal = c->causal;
    pb->alibi = c->alibi;
    pr_certify_opts_default(op);
    op->atol = atol;
    op->max_fallback_s = budget;
}

/* [lo, hi] ∋ the largest error of gradient t's candidate C (1: dK, 2: dV) against the truth at 256 bits; with
 * RoPE (one head) pr_hiprec_certify of the real problem, the other gradients the dense backward's doubles, whose
 * errors are far below a float32 candidate's */
static void truth_err(double *lo, double *hi, const inst_t *x, int t, const double *C)
{
    const kcase_t *c = x->c;
    size_t nd = (size_t)c->n * c->d;
    arb_t e, e2;
    arb_init(e);
    arb_init(e2);
    if (x->ref) {
        pr_hiprec_max_error(e, C, x->ref + (t - 1) * nd, nd, 256);
    } else {
        const double *G = x->G + nd; /* dK | dV */
        pr_hiprec_def_t def;
        pr_hiprec_def_real(&def, PR_SCALE_INV_D, c->alibi);
        PR_CHECK_OK(pr_hiprec_certify(e2, e, x->G /* O: unused here */, x->G, t == 1 ? C : G, t == 2 ? C : G + nd,
                                      NULL, x->Q, x->K, x->V, x->W, x->dO, c->n, c->d, &x->o, &def, 256));
    }
    *lo = pr_hiprec_lbound_d(e);
    *hi = pr_hiprec_ubound_d(e);
    arb_clear(e);
    arb_clear(e2);
}

static int certify(pr_certify_result_t *r, const inst_t *x, const double *dKc, const double *dVc, double atol,
                   double budget)
{
    const kcase_t *c = x->c;
    pr_certify_problem_t pb;
    pr_certify_opts_t op;
    prob_for(&pb, &op, c, atol, budget);
    return pr_certify_backward_heads_posw(r, NULL, dKc, dVc, x->Q, x->K, x->V, x->dO, c->pos == POS_W ? x->W : NULL,
                                          1, c->g, 1, c->n, c->d, &pb, &op);
}

static const char *const gname[3] = {"dQ", "dK", "dV"};

/* a float32 candidate at its true largest error ± 10^-9 relative: unknown with a zero budget, certified and
 * refuted with Arb columns (and Arb rows: the double pass's enclosures of l_i, D_i are far wider than 10^-9 of
 * a float32 error) */
static void test_edge(const kcase_t *c, int t, pr_rng_t rng)
{
    inst_t x;
    inst_make(&x, c, rng);
    size_t nd = (size_t)c->n * c->d;
    double *C = malloc(sizeof(double) * nd), hl, hh;
    to_f32(C, x.G + (size_t)c->g * nd + (t - 1) * nd, nd);
    truth_err(&hl, &hh, &x, t, C);
    pr_certify_result_t *r = malloc(sizeof(*r) * 3 * c->g);
    const double *dKc = t == 1 ? C : NULL, *dVc = t == 2 ? C : NULL;
    double above = hh * (1.0 + 1e-9), below = hl * (1.0 - 1e-9);
    PR_CHECK_OK(certify(r, &x, dKc, dVc, above, 0.0));
    PR_CHECK(r[t].verdict == PR_CERT_UNKNOWN && r[t].rows_fallback == 0 && r[t].rows_open >= 1,
             "n %d g %d pos %d %s: budget 0, atol %.17g: verdict %d, %ld Arb rows, %ld open", c->n, c->g, c->pos,
             gname[t], above, r[t].verdict, r[t].rows_fallback, r[t].rows_open);
    PR_CHECK_OK(certify(r, &x, dKc, dVc, above, -1.0));
    PR_CHECK(r[t].verdict == PR_CERT_CERTIFIED && r[t].rows_fallback >= 1 && r[t].rows_open == 0 &&
                 r[t].lower <= hh && hl <= r[t].upper,
             "n %d g %d pos %d %s: atol %.17g (truth [%.17g, %.17g]): verdict %d, [%.17g, %.17g], %ld of %ld key rows "
             "in Arb, %ld open", c->n, c->g, c->pos, gname[t], above, hl, hh, r[t].verdict, r[t].lower, r[t].upper,
             r[t].rows_fallback, r[t].rows, r[t].rows_open);
    PR_CHECK_OK(certify(r, &x, dKc, dVc, below, -1.0));
    PR_CHECK(r[t].verdict == PR_CERT_REFUTED && r[t].lower > below && r[t].lower <= hh,
             "n %d g %d pos %d %s: atol %.17g (truth [%.17g, %.17g]): verdict %d, [%.17g, %.17g]", c->n, c->g, c->pos,
             gname[t], below, hl, hh, r[t].verdict, r[t].lower, r[t].upper);
    printf("  n %d g %d pos %d %s: truth %.6g; 1e-9 above certified, below refuted (%ld key rows in Arb)\n", c->n,
           c->g, c->pos, gname[t], hh, r[t].rows_fallback);
    free(r);
    free(C);
    inst_free(&x);
}

/* the double pass, then L20 alone (rows = 0) from its row enclosures, on the candidates dKc, dVc */
static void pass_and_cols(pr_certify_result_t *r0, pr_certify_result_t *r1, const inst_t *x, const double *dKc,
                          const double *dVc, double atol)
{
    const kcase_t *c = x->c;
    int n = c->n, d = c->d, g = c->g, open = 0;
    pr_certify_problem_t pb;
    pr_certify_opts_t op;
    prob_for(&pb, &op, c, atol, 0.0);
    cert_prob_t p;
    PR_CHECK_OK(pr_certify_prob_init(&p, &pb, &op, n, d));
    cert_kvkeep_t keep = {malloc(sizeof(cert_rowenc_t) * g * n), malloc(sizeof(double) * 4 * n * d)};
    pr_certify_result_t *r = calloc(3 * (size_t)g, sizeof(*r));
    const pr_posw_struct *W = c->pos == POS_W ? x->W : NULL;
    PR_CHECK_OK(pr_certify_grad_group(r, &open, NULL, dKc, dVc, NULL, x->Q, x->K, x->V, x->dO, W, g, &p, 0.0, &keep));
    memcpy(r0, r, sizeof(*r) * 3);
    PR_CHECK_OK(pr_certify_kv_cols(r + 1, r + 2, dKc, dVc, x->Q, x->K, x->V, x->dO, W, g, &p, &keep, 1e9, 0));
    memcpy(r1, r, sizeof(*r) * 3);
    free(r);
    free(keep.enc);
    free(keep.kv);
    pr_certify_prob_clear(&p);
}

/* L20 from the double pass's enclosures of l_i and D_i alone: candidates the truth rounded to double (without
 * RoPE; with RoPE the dense backward's doubles), atol = 0 so that every element is open to the double pass */
static void test_enclosures(const kcase_t *c, pr_rng_t rng)
{
    inst_t x;
    inst_make(&x, c, rng);
    size_t nd = (size_t)c->n * c->d;
    double *C = malloc(sizeof(double) * 2 * nd), hl[3], hh[3];
    for (size_t k = 0; k < 2 * nd; k++)
        C[k] = x.ref ? arf_get_d(arb_midref(x.ref + k), ARF_RND_NEAR) : x.G[c->g * nd + k];
    for (int t = 1; t < 3; t++)
        truth_err(hl + t, hh + t, &x, t, C + (t - 1) * nd);
    pr_certify_result_t r0[3], r1[3];
    pass_and_cols(r0, r1, &x, C, C + nd, 0.0);
    for (int t = 1; t < 3; t++) {
        /* with RoPE pr_hiprec_certify encloses the largest error over both gradients */
        double top = x.ref ? hh[t] : fmax(hh[1], hh[2]);
        PR_CHECK(r1[t].lower <= top && r1[t].upper >= hl[t] && r1[t].upper < r0[t].upper && r1[t].rows_fallback >= 1,
                 "n %d g %d pos %d %s: double pass [%.17g, %.17g], L20 [%.17g, %.17g] (%ld key rows), truth "
                 "[%.17g, %.17g]", c->n, c->g, c->pos, gname[t], r0[t].lower, r0[t].upper, r1[t].lower, r1[t].upper,
                 r1[t].rows_fallback, hl[t], top);
        printf("  n %d g %d pos %d %s: upper bound of the error: double pass %.3g, L20 from its enclosures %.3g\n",
               c->n, c->g, c->pos, gname[t], r0[t].upper, r1[t].upper);
        /* at L20's own upper bound: certified by it, not by the double pass */
        pr_certify_result_t s0[3], s1[3];
        pass_and_cols(s0, s1, &x, t == 1 ? C : NULL, t == 2 ? C + nd : NULL, r1[t].upper);
        PR_CHECK(s0[t].verdict == PR_CERT_UNKNOWN && s1[t].verdict == PR_CERT_CERTIFIED,
                 "n %d g %d pos %d %s: atol %.17g: double pass verdict %d, with L20 %d", c->n, c->g, c->pos, gname[t],
                 r1[t].upper, s0[t].verdict, s1[t].verdict);
    }
    free(C);
    inst_free(&x);
}

/* attn --certify --backward at n = 520 with a query row the double pass cannot bound (L4): its dQ row and
 * every key row of dK, dV in Arb (L7, L20), a finite certified gradient error and exit 0 (with no Arb there,
 * as before, the error was infinite: unknown, exit 1). The dense path's own dK is far off here (its estimate
 * says so): the error is finite, not small. */
static void test_attn_cli(pr_rng_t rng)
{
    enum { N = 520, D = 4 };
    static double X[4][N * D];
    for (int k = 0; k < 4; k++)
        fill(X[k], (size_t)N * D, k == 3 ? 1.0 : 2.0, rng);
    for (int a = 0; a < D; a++)
        X[0][5 * D + a] = ldexp(X[0][5 * D + a], 52);
    long sh[2] = {N, D};
    const char *names[4] = {"cc_q.npy", "cc_k.npy", "cc_v.npy", "cc_do.npy"};
    for (int k = 0; k < 4; k++)
        PR_CHECK_OK(pr_npy_write(names[k], X[k], 2, sh));
    int rc = pr_test_cli_run("cols_cli", "attn --algo dense --pos identity --backward --certify --json --q cc_q.npy "
                                         "--k cc_k.npy --v cc_v.npy --do cc_do.npy");
    double g = pr_test_cli_json("certified_grad_err_inf");
    PR_CHECK(rc == 0 && isfinite(g) && strstr(pr_test_cli_out, "\"certified_verdict\": \"certified\""),
             "attn past n = 512, a row past the double pass: exit %d, certified_grad_err_inf %g\n%s%s", rc, g,
             pr_test_cli_out, pr_test_cli_err);
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_certify_cols", 20));
    PR_CHECK(pr_test_cli_tmpdir("test_certify_cols") == 0, "no scratch folder under /tmp");
    test_attn_cli(rng);
    const kcase_t rope = {600, 4, 1, PR_CERTIFY_POS_ROPE, 0, 0.0, 2.0, 0};
    const kcase_t gqa = {640, 4, 2, PR_CERTIFY_POS_IDENTITY, 1, 0.25, 2.0, 0};
    const kcase_t gqa_huge = {640, 4, 2, PR_CERTIFY_POS_IDENTITY, 1, 0.25, 2.0, 1};
    const kcase_t gw = {576, 4, 2, POS_W, 0, 0.0, 2.0, 0};
    test_edge(&rope, 2, rng);
    test_edge(&gqa_huge, 1, rng);
    test_edge(&gw, 1, rng);
    test_edge(&gw, 2, rng);
    const kcase_t rope_causal = {600, 4, 1, PR_CERTIFY_POS_ROPE, 1, 0.0, 2.0, 0};
    test_enclosures(&rope_causal, rng);
    test_enclosures(&gqa, rng);
    test_enclosures(&gw, rng);
    return pr_test_finish("test_certify_cols");
}
