/* Many heads through the error control's drivers (issue 16; pr_control_forward_heads,
 * pr_control_backward_heads): P is chosen once for the worst head (info's R, ‖V‖∞ are the heads'
 * largest), every head's output is bit for bit a one-head plan's on its slices under that P (FFT:
 * pr_fast_plan; low-rank: pr_lowrank_execute, pr_backward_lowrank; dQ always, dK, dV without
 * grouped-query heads or on the low-rank path, whose parts are summed in head order), each head's
 * bound is its own data's under that P (C9 plus its floor) and holds against the dense reference
 * plus its estimated rounding (summed dK, dV and dw: their bound plus the heads' estimates), and
 * bad head counts or a non-finite head are refused, naming the head. Every Q head and kv head has
 * its own random scale, the largest first, last or anywhere: a worst head taken from the last or
 * the first head, a kv head 0 read for every head, or head 0's bound given to every head fails
 * (each did, tried as a mutation). Seed: $PR_SEED. */
#include <math.h>
#include <string.h>
#include "polyrope.h"
#include "pr_test.h"

typedef struct {
    int n, d, h, h_kv, causal, lowrank, backward, kind;
    int largest;            /* 0: random scales; 1: head 0 and kv head 0 the largest; 2: the last ones */
    char what[200];
} hcase_t;

/* the dense reference of query head q and its estimated rounding (O; dQ, dK, dV, dw parts) */
static void dense_head(double *O, double *g3, double *dw, pr_dense_err_t *de, const double *Q, const double *K,
                       const double *V, const double *dO, const pr_posw_t W, int n, int d,
                       const pr_attn_opts_t *opts, int backward)
{
    double *lse = malloc(sizeof(double) * n);
    size_t nd = (size_t)n * d;
    PR_CHECK_OK(pr_dense_forward(O, lse, Q, K, V, W, n, d, opts));
    if (backward)
        PR_CHECK_OK(pr_dense_backward(g3, g3 + nd, g3 + 2 * nd, dw, Q, K, V, W, O, lse, dO, n, d, opts));
    PR_CHECK_OK(pr_dense_error_est(de, Q, K, V, W, O, backward ? dO : NULL, n, d, opts));
    free(lse);
}

/* max_i |x_i - y_i| - tol_i <= 0 for all i; the first entry past it */
static long past(const double *x, const double *y, const double *tol, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!(fabs(x[i] - y[i]) <= tol[i]))
            return (long)i;
    return -1;
}

/* the one-head reference under the heads' P: head q's O (and dQ, and its dK, dV, dw parts) */
static void one_head(double *O, double *dQ, double *dK, double *dV, double *dw, const hcase_t *c,
                     const double *Q, const double *K, const double *V, const double *dO, const pr_posw_struct *W,
                     const pr_attn_opts_t *po)
{
    int n = c->n, d = c->d;
    if (c->lowrank) {
        PR_CHECK_OK(pr_lowrank_execute(O, Q, K, V, W, n, d, po, (size_t)1 << 30, 1000000));
        if (c->backward)
            PR_CHECK_OK(pr_backward_lowrank(dQ, dK, dV, NULL, Q, K, V, W, O, NULL, dO, n, d, po));
        return;
    }
    pr_fast_plan_t F;
    PR_CHECK_OK(pr_fast_plan(F, W, po, (size_t)1 << 30, 1000000, PR_FAST_ESTIMATE));
    PR_CHECK_OK(pr_fast_execute(O, F, Q, K, V));
    if (c->backward) {
        double *lse = malloc(sizeof(double) * n);
        pr_backward_lse_from_fast(lse, F);
        pr_backward_plan *bp;
        PR_CHECK_OK(pr_backward_plan_fft(&bp, F, W, po, dw != NULL, 0.0));
        PR_CHECK_OK(pr_backward_execute(bp, dQ, dK, dV, dw, NULL, Q, K, V, O, lse, dO));
        pr_backward_destroy(bp);
        free(lse);
    }
    pr_fast_destroy(F);
}

/* into the total t, the first part copied, the others added (head order) */
static void add_part(double *t, const double *x, size_t len, int first)
{
    for (size_t i = 0; i < len; i++)
        t[i] = first ? x[i] : t[i] + x[i];
}

static void one_case(hcase_t *c, pr_rng_t rng)
{
    int n = c->n, d = c->d, h = c->h, h_kv = c->h_kv, group = h / h_kv, general = c->kind == 2;
    size_t nd = (size_t)n * d, L = 2 * (size_t)n - 1;
    pr_posw_t W;
    if (c->kind == 0)
        PR_CHECK_OK(pr_posw_init_rope(W, n, d, 100.0, PR_ROPE_INTERLEAVED));
    else if (c->kind == 1)
        PR_CHECK_OK(pr_posw_init_identity(W, n, d));
    else
        PR_CHECK_OK(pr_posw_init_general(W, n, d, rng));
    size_t sw = general && c->backward ? (size_t)W->s * L : 0;
    double *Q = malloc(sizeof(double) * nd * h), *K = malloc(sizeof(double) * nd * h_kv);
    double *V = malloc(sizeof(double) * nd * h_kv), *dO = malloc(sizeof(double) * nd * h);
    /* every head its own scale, drawn apart from its index (scales rising with the index let a
     * "last head wins" or "head 0 everywhere" bug pass): random, or the largest first, or last */
    for (int q = 0; q < h; q++) {
        int top = c->largest == 1 ? q == 0 : c->largest == 2 ? q == h - 1 : 0;
        pr_rng_fill(Q + q * nd, (long)nd, top ? 1.2 : pr_rng_range(rng, 0.1, 1.0), rng);
    }
    for (int k = 0; k < h_kv; k++) {
        int top = c->largest == 1 ? k == 0 : c->largest == 2 ? k == h_kv - 1 : 0;
        pr_rng_fill(K + k * nd, (long)nd, top ? 1.1 : pr_rng_range(rng, 0.2, 1.0), rng);
        pr_rng_fill(V + k * nd, (long)nd, top ? 2.5 : pr_rng_range(rng, 0.2, 2.0), rng);
    }
    pr_rng_fill(dO, (long)(nd * h), 1.0, rng);
    /* outputs: the heads run (g: dQ, dK, dV, dw), the references (r), one head's parts (p) */
    double *O = malloc(sizeof(double) * nd * h), *Or = malloc(sizeof(double) * nd * h);
    double *g = calloc(nd * (h + 2 * h_kv) + sw, sizeof(double)), *r = calloc(nd * (h + 2 * h_kv) + sw, sizeof(double));
    double *p = malloc(sizeof(double) * (2 * nd + sw + 1)), bound[8];
    pr_control_backward_bound_t gb[8];
    pr_attn_opts_t opts;
    pr_attn_opts_default(&opts, d);
    opts.causal = c->causal;
    pr_control_opts_t o;
    pr_control_opts_default(&o);
    o.eps = 1e-7;
    pr_control_heads_t hd = {h, h_kv, bound, gb};
    pr_control_info_t info;
    pr_control_backward_report_t rep;
    double *dQ = g, *dK = g + nd * h, *dV = dK + nd * h_kv, *dw = sw ? dV + nd * h_kv : NULL;
    int st = c->backward ? pr_control_backward_heads(O, dQ, dK, dV, dw, &info, &rep, Q, K, V, W, dO, n, d, &opts,
                                                     &o, c->lowrank, &hd)
                         : pr_control_forward_heads(O, &info, Q, K, V, W, n, d, &opts, &o, c->lowrank, &hd);
    PR_CHECK(st == PR_OK, "%s: status %d %s", c->what, st, pr_strerror(st));
    /* P as the driver chose it, for the worst head: its R is the heads' largest */
    pr_expoly_t P;
    pr_expoly_init(P);
    pr_control_info_t ci, hi;
    PR_CHECK_OK(pr_control_choose_heads(P, &ci, Q, K, V, W, n, d, &opts, &o, c->lowrank, &hd));
    double Rmax = 0.0, vmax = 0.0, e = info.poly_err;
    for (int q = 0; q < h; q++) {
        PR_CHECK_OK(pr_control_data_info(&hi, Q + q * nd, K + (q / group) * nd, V + (q / group) * nd, W, n, d, &opts,
                                         &o, c->lowrank));
        Rmax = fmax(Rmax, hi.R);
        vmax = fmax(vmax, hi.vnorm);
        /* head q's own bound under the common P (pr_control.h): C9's 2e/(1-e)‖V_q‖∞ plus the floor
         * of its own R_floor, in the driver's operations */
        double f = pr_expoly_floor(P->c, P->degree, hi.R_floor, e) * info.ops_factor;
        double want = 2.0 * e / (1.0 - e) * hi.vnorm + (f < 1.0 ? 2.0 * hi.vnorm * f / (1.0 - f) : INFINITY);
        PR_CHECK(bound[q] == want, "%s: head %d's bound %.17g, its own data's %.17g (R_floor %g, |V| %g)", c->what, q,
                 bound[q], want, hi.R_floor, hi.vnorm);
    }
    PR_CHECK(ci.R == Rmax && ci.vnorm == vmax && info.R == Rmax && info.degree == ci.degree && info.bound <= o.eps,
             "%s: R %g vs the heads' largest %g, vnorm %g vs %g, degree %d vs %d, bound %g", c->what, info.R, Rmax,
             info.vnorm, vmax, info.degree, ci.degree, info.bound);
    pr_attn_opts_t po = opts;
    po.poly = P->c;
    po.poly_degree = P->degree;
    double *Rq = r, *Rk = r + nd * h, *Rv = Rk + nd * h_kv, *Rw = sw ? Rv + nd * h_kv : NULL;
    for (int q = 0; q < h; q++) {
        size_t k = (size_t)(q / group) * nd;
        one_head(Or + q * nd, Rq + q * nd, p, p + nd, Rw ? p + 2 * nd : NULL, c, Q + q * nd, K + k, V + k,
                 dO + q * nd, W, &po);
        if (c->backward) {
            add_part(Rk + k, p, nd, q % group == 0);
            add_part(Rv + k, p + nd, nd, q % group == 0);
            if (Rw)
                add_part(Rw, p + 2 * nd, sw, q == 0);
        }
        PR_CHECK(bound[q] <= info.bound, "%s: head %d's bound %g past the common %g", c->what, q, bound[q],
                 info.bound);
    }
    PR_CHECK(!memcmp(O, Or, sizeof(double) * nd * h), "%s: O differs from the one-head plans'", c->what);
    /* dQ bit for bit; dK, dV too without grouped-query heads, and every sum on the low-rank path
     * (its parts are summed in head order); the FFT path's summed dK, dV, dw (pr_backward_execute_heads
     * sums in its own order) are held to the dense reference below */
    if (c->backward)
        PR_CHECK(!memcmp(g, r, sizeof(double) * nd * h) && ((!c->lowrank && group > 1) ||
                 !memcmp(g + nd * h, r + nd * h, sizeof(double) * 2 * nd * h_kv)) &&
                 (!sw || h > 1 || !memcmp(dw, Rw, sizeof(double) * sw)),
                 "%s: dQ%s differ from the one-head plans' (parts summed in head order)", c->what,
                 c->lowrank || group == 1 ? ", dK, dV" : "");
    /* against the dense reference: each head's bound plus the reference's estimated rounding;
     * dK, dV of a kv head: the sum of its query heads' bounds and estimates */
    double *tol = malloc(sizeof(double) * (nd * (h + 2 * h_kv) + sw));
    double *D = malloc(sizeof(double) * (nd * (1 + 3 + 2 * h_kv) + 2 * sw + 1));
    double *Dg = D + nd, *Dk = Dg + 3 * nd, *Dv = Dk + nd * h_kv, *Dw = Dv + nd * h_kv, *Dw1 = Dw + sw, wtol = 0.0;
    for (int q = 0; q < h; q++) {
        size_t k = (size_t)(q / group) * nd;
        pr_dense_err_t de;
        dense_head(D, Dg, sw ? Dw1 : NULL, &de, Q + q * nd, K + k, V + k, dO + q * nd, W, n, d, &opts, c->backward);
        for (size_t i = 0; i < nd; i++)
            tol[i] = bound[q] + de.o;
        long bad = past(O + q * nd, D, tol, nd);
        PR_CHECK(bad < 0, "%s: head %d: O[%ld] = %.17g vs dense %.17g past bound %g + %g", c->what, q, bad,
                 O[q * nd + (bad < 0 ? 0 : bad)], D[bad < 0 ? 0 : bad], bound[q], de.o);
        if (!c->backward)
            continue;
        for (size_t i = 0; i < nd; i++)
            tol[i] = gb[q].dq + de.dq;
        bad = past(dQ + q * nd, Dg, tol, nd);
        PR_CHECK(bad < 0, "%s: head %d: dQ[%ld] past its bound %g + %g", c->what, q, bad, gb[q].dq, de.dq);
        add_part(Dk + k, Dg + nd, nd, q % group == 0);
        add_part(Dv + k, Dg + 2 * nd, nd, q % group == 0);
        if (sw) {
            add_part(Dw, Dw1, sw, q == 0);
            wtol += de.dw;
        }
        /* gb[q].dk, .dv: its kv head's bound on the summed dK, dV, once; the estimates add up */
        for (size_t i = 0; i < nd; i++) {
            tol[nd + k + i] = (q % group ? tol[nd + k + i] : gb[q].dk) + de.dk;
            tol[nd * (1 + h_kv) + k + i] = (q % group ? tol[nd * (1 + h_kv) + k + i] : gb[q].dv) + de.dv;
        }
    }
    if (c->backward) {
        long bk = past(dK, Dk, tol + nd, nd * h_kv), bv = past(dV, Dv, tol + nd * (1 + h_kv), nd * h_kv);
        PR_CHECK(bk < 0 && bv < 0, "%s: dK[%ld] or dV[%ld] past its bound plus its heads' estimates", c->what, bk, bv);
        /* dw summed over the heads: its bound plus the heads' estimates */
        for (size_t i = 0; i < sw; i++)
            tol[i] = rep.bound.dw + wtol;
        long bw = sw ? past(dw, Dw, tol, sw) : -1;
        PR_CHECK(bw < 0, "%s: dw[%ld] past its bound %g + %g", c->what, bw, rep.bound.dw, wtol);
        PR_CHECK(rep.bound.dq >= gb[0].dq && rep.bound.dk >= gb[0].dk && (sw ? rep.bound.dw >= gb[0].dw
                 : isnan(rep.bound.dw)), "%s: the totals' bounds below head 0's", c->what);
    }
    pr_expoly_clear(P);
    pr_posw_clear(W);
    free(Q); free(K); free(V); free(dO); free(O); free(Or); free(g); free(r); free(p); free(tol); free(D);
}

/* bad head counts; a non-finite entry in head 2 is refused, info.head naming it */
static void refusals(pr_rng_t rng)
{
    int n = 8, d = 2;
    size_t nd = (size_t)n * d;
    pr_posw_t W;
    PR_CHECK_OK(pr_posw_init_rope(W, n, d, 100.0, PR_ROPE_INTERLEAVED));
    double *Q = malloc(sizeof(double) * nd * 4), *K = malloc(sizeof(double) * nd * 4);
    double *V = malloc(sizeof(double) * nd * 4), *O = malloc(sizeof(double) * nd * 4);
    pr_rng_fill(Q, (long)nd * 4, 1.0, rng);
    pr_rng_fill(K, (long)nd * 4, 1.0, rng);
    pr_rng_fill(V, (long)nd * 4, 1.0, rng);
    pr_attn_opts_t opts;
    pr_attn_opts_default(&opts, d);
    pr_control_opts_t o;
    pr_control_opts_default(&o);
    pr_control_info_t info;
    const int bad[][2] = {{3, 2}, {0, 1}, {2, 0}, {2, 4}};
    for (int lr = 0; lr < 2; lr++) {
        for (int t = 0; t < 4; t++) {
            pr_control_heads_t hd = {bad[t][0], bad[t][1], NULL, NULL};
            PR_CHECK(pr_control_forward_heads(O, &info, Q, K, V, W, n, d, &opts, &o, lr, &hd) == PR_EINVAL,
                     "lowrank %d: h = %d over h_kv = %d accepted", lr, bad[t][0], bad[t][1]);
        }
        Q[2 * nd + 5] = INFINITY;
        pr_control_heads_t hd = {4, 2, NULL, NULL};
        int st = pr_control_forward_heads(O, &info, Q, K, V, W, n, d, &opts, &o, lr, &hd);
        PR_CHECK(st == PR_ENONFINITE && info.head == 2, "lowrank %d: Inf in head 2: status %d, head %d", lr, st,
                 info.head);
        Q[2 * nd + 5] = 0.5;
    }
    pr_posw_clear(W);
    free(Q); free(K); free(V); free(O);
}

/* The FFT path's admission of grouped-query heads counts x̂ and the sums per kv head (as
 * pr_fast_plan_gqa holds them), not per Q head: 8 heads over 1 kv head run at a budget that 8
 * kv heads' plan passes (refused before: it counted 8). */
static void gqa_budget(pr_rng_t rng)
{
    int n = 64, d = 2, h = 8, h_kv = 1, g = 3;
    size_t nd = (size_t)n * d;
    pr_posw_t W;
    PR_CHECK_OK(pr_posw_init_general(W, n, d, rng));
    double *Q = malloc(sizeof(double) * nd * h), *K = malloc(sizeof(double) * nd * h_kv);
    double *V = malloc(sizeof(double) * nd * h_kv), *O = malloc(sizeof(double) * nd * h);
    pr_rng_fill(Q, (long)nd * h, 1.0, rng);
    pr_rng_fill(K, (long)nd * h_kv, 1.0, rng);
    pr_rng_fill(V, (long)nd * h_kv, 1.0, rng);
    pr_attn_opts_t opts;
    pr_attn_opts_default(&opts, d);
    pr_control_opts_t o;
    pr_control_opts_default(&o);
    o.degree = g;
    o.eps = 1.0;
    pr_control_info_t info;
    pr_control_heads_t hd = {h, h_kv, NULL, NULL};
    double gb, go, mb, mo;
    pr_fast_needs_heads(&gb, &go, W, n, d, g, h, h_kv);
    pr_fast_needs_heads(&mb, &mo, W, n, d, g, h, h);
    PR_CHECK(gb < mb && go < mo, "needs: %g B %g ops over 1 kv head, %g B %g ops over 8", gb, go, mb, mo);
    o.mem_budget = 1;
    PR_CHECK(pr_control_forward_heads(O, &info, Q, K, V, W, n, d, &opts, &o, 0, &hd) == PR_EBUDGET &&
             info.budget.hit == PR_BUDGET_MEMORY && info.budget.need < mb, "admission needs %g B (per kv head: %g, "
             "per Q head: %g)", info.budget.need, gb, mb);
    o.mem_budget = (size_t)info.budget.need + 1;
    PR_CHECK(o.mem_budget < mb, "budget %zu", o.mem_budget);
    int st = pr_control_forward_heads(O, &info, Q, K, V, W, n, d, &opts, &o, 0, &hd);
    PR_CHECK(st == PR_OK, "8 heads over 1 kv head at %zu B (8 kv heads' streamed plan: %g B): status %d",
             o.mem_budget, mb, st);
    pr_posw_clear(W);
    free(Q); free(K); free(V); free(O);
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_heads", 20261128));
    for (int t = 0; t < 24; t++) {
        hcase_t c;
        c.lowrank = t % 2;
        c.backward = (t / 2) % 2;
        c.kind = c.lowrank ? (int)pr_rng_below(rng, 2) : 2 * (int)pr_rng_below(rng, 2);
        c.causal = (int)pr_rng_below(rng, 2);
        c.n = 2 + (int)pr_rng_below(rng, 30);
        c.d = 2;
        c.h_kv = 1 + (int)pr_rng_below(rng, 2);
        c.h = c.h_kv * (1 + (int)pr_rng_below(rng, 3));
        c.largest = (t / 4) % 3;
        snprintf(c.what, sizeof c.what, "case %d: %s %s kind %d causal %d n=%d d=%d h=%d h_kv=%d largest %d", t,
                 c.lowrank ? "lowrank" : "fft", c.backward ? "backward" : "forward", c.kind, c.causal, c.n, c.d, c.h,
                 c.h_kv, c.largest);
        one_case(&c, rng);
    }
    refusals(rng);
    gqa_budget(rng);
    return pr_test_finish("test_heads");
}
