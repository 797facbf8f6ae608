/* The fast forward paths (issue 5): term enumeration (C3, C12), the expansion against the dense
 * P(M) to rounding for every kind of W, causal or not, with a bias (C2), output error against
 * exact attention within eps (C9), identity W = plain attention's low-rank path (C14), low-rank =
 * FFT on RoPE in both layouts, kept = streamed spectra, and bad input. */
#include <math.h>
#include <float.h>
#include <string.h>
#include "polyrope.h"
#include "pr_test.h"

/* Independent oracle: A_ij = f(M_ij) e^{β}, summed in the textbook order, O(n² s). */
static void naive(double *O, const double *Q, const double *K, const double *V,
                  const pr_posw_struct *W, int n, int d, const pr_attn_opts_t *o)
{
    double *num = malloc(sizeof(double) * d);
    for (int i = 0; i < n; i++) {
        double den = 0.0;
        memset(num, 0, sizeof(double) * d);
        for (int j = 0; j < n; j++) {
            double lb = pr_attn_log_bias(o, n, i - j), m = 0.0;
            if (lb == -INFINITY)
                continue;
            for (int k = 0; k < W->s; k++)
                m += Q[i * d + W->a[k]] * pr_posw_at(W, k, i - j) * K[j * d + W->b[k]];
            m *= o->sigma;
            double A = (o->poly ? pr_expoly_horner(o->poly, o->poly_degree, m) : exp(m)) * exp(lb);
            den += A;
            for (int c = 0; c < d; c++)
                num[c] += A * V[j * d + c];
        }
        for (int c = 0; c < d; c++)
            O[i * d + c] = num[c] / den;
    }
    free(num);
}

static const char *kind_names[] = {"rope", "rope-neox", "general", "identity", "custom"};

static int make_w(pr_posw_t W, int kind, int n, int d, pr_rng_t rng)
{
    switch (kind) {
    case 0: return pr_posw_init_rope(W, n, d, 10000.0, PR_ROPE_INTERLEAVED);
    case 1: return pr_posw_init_rope(W, n, d, 10000.0, PR_ROPE_NEOX);
    case 2: return pr_posw_init_general(W, n, d, rng);
    case 3: return pr_posw_init_identity(W, n, d);
    default: {
        /* a random sparse support, entries in [-1, 1] */
        size_t L = 2 * (size_t)n - 1, dd = (size_t)d * d;
        double *w3 = calloc(L * dd, sizeof(double));
        int used = 0;
        for (size_t ab = 0; ab < dd; ab++)
            if (pr_rng_below(rng, 3) == 0 || (ab == dd - 1 && !used)) {
                used = 1;
                for (size_t l = 0; l < L; l++)
                    w3[l * dd + ab] = pr_rng_range(rng, -1.0, 1.0);
            }
        int st = pr_posw_init_dense(W, w3, n, d);
        free(w3);
        return st;
    }
    }
}

/* The FFT path's polynomial of degree >= g for this instance, raised until its relative error is
 * below 1/2 (so P > 0 and the row sums are positive), with info's floor for it; po gets P. */
static int fit_positive(pr_expoly_t p, pr_control_info_t *info, pr_attn_opts_t *po, const double *Q,
                        const double *K, const double *V, const pr_posw_t W, int n, int d, int g)
{
    pr_control_opts_t fo;
    pr_control_opts_default(&fo);
    fo.eps = 1e300;   /* no target: a given degree, and the floor it has */
    for (fo.degree = g;; fo.degree++) {
        int st = pr_control_choose(p, info, Q, K, V, W, n, d, po, &fo, 0);
        if ((st && st != PR_EFLOOR) || info->poly_err < 0.5) {
            po->poly = p->c;
            po->poly_degree = p->degree;
            return st;
        }
    }
}

/* Q, K, V uniform in [-B, B), then room for two outputs O1, O2, in one block (free Q frees all);
 * W of the kind; σ = 1/d, causal or not */
static double *instance(pr_posw_t W, pr_attn_opts_t *o, int kind, int n, int d, double B, int causal,
                        pr_rng_t rng)
{
    double *Q = malloc(sizeof(double) * n * d * 5);
    pr_rng_fill(Q, 3L * n * d, B, rng);
    PR_CHECK_OK(make_w(W, kind, n, d, rng));
    pr_attn_opts_default(o, d);
    o->causal = causal;
    return Q;
}

/* C2: plan + execute = the dense P(M) of the same polynomial, to the floor estimate */
static void test_c2(pr_rng_t rng)
{
    for (int trial = 0; trial < 40; trial++) {
        int kind = trial % 5, causal = (trial / 5) % 2, alibi = trial % 7 == 3;
        int d = kind == 4 ? 1 + (int)pr_rng_below(rng, 3) : 2 * (1 + (int)pr_rng_below(rng, 2));
        int n = 1 + (int)pr_rng_below(rng, 48), g = 1 + (int)pr_rng_below(rng, d == 4 ? 5 : 8);
        double B = pr_rng_range(rng, 0.3, 1.5);
        pr_posw_t W;
        pr_attn_opts_t o;
        double *Q = instance(W, &o, kind, n, d, B, causal, rng), *K = Q + n * d, *V = K + n * d;
        double *O1 = V + n * d, *O2 = O1 + n * d, *beta = malloc(sizeof(double) * (2 * n - 1));
        if (alibi) {
            PR_CHECK_OK(pr_bias_alibi(beta, n, 0.1));
            o.beta = beta;
        }
        pr_control_info_t info;
        pr_expoly_t p;
        pr_expoly_init(p);
        pr_attn_opts_t po = o;
        PR_CHECK_OK(fit_positive(p, &info, &po, Q, K, V, W, n, d, g));
        g = p->degree;
        /* measured FFTW plans: another algorithm, the same bound */
        unsigned flags = trial % 4 == 1 ? PR_FAST_MEASURE : PR_FAST_ESTIMATE;
        pr_fast_plan_t F;
        PR_CHECK_OK(pr_fast_plan(F, W, &po, (size_t)1 << 30, 1000000, flags));
        PR_CHECK_OK(pr_fast_execute(O1, F, Q, K, V));
        naive(O2, Q, K, V, W, n, d, &po);
        /* tolerance: the floor estimate (the fast path's rounding) plus the oracle's own rounding,
         * n summands of relative error (g + 2s) u each: 4 (n + g + 2s) u ‖V‖∞ covers it */
        double err = pr_vec_max_abs_diff(O1, O2, (size_t)n * d);
        double tol = info.floor + 4.0 * (n + g + 2 * W->s) * DBL_EPSILON * info.vnorm;
        PR_CHECK(err <= tol, "C2 %s n=%d d=%d g=%d B=%g causal=%d alibi=%d flags=%u: err %g > tol %g",
                 kind_names[kind], n, d, g, B, causal, alibi, flags, err, tol);
        PR_CHECK(F->transforms == (d + 1) * (F->terms->am->count_fwd + F->terms->bm->count_fwd),
                 "transforms %ld: one forward per b-marginal and column, one inverse per a-marginal and column",
                 F->transforms);
        /* streamed spectra: the same terms, the same sums, the same bits (a measured plan is
         * the same algorithm again: FFTW keeps it as wisdom in the process) */
        pr_fast_plan_t Fs;
        size_t need = pr_fast_plan_bytes(n, d, W->s, g, F->terms->da, F->terms->db, 1);
        PR_CHECK_OK(pr_fast_plan(Fs, W, &po, need, 1000000, flags));
        PR_CHECK(Fs->streamed || need >= pr_fast_plan_bytes(n, d, W->s, g, F->terms->da, F->terms->db, 0),
                 "plan with budget %zu not streamed", need);
        PR_CHECK_OK(pr_fast_execute(O2, Fs, Q, K, V));
        PR_CHECK(pr_vec_max_abs_diff(O1, O2, (size_t)n * d) == 0.0, "kept != streamed n=%d d=%d g=%d", n, d, g);
        /* x̂ this small: each group's sums made in the inverse phase; by frequency blocks before it
         * (the path of larger x̂) they are the same sums in the same order */
        PR_CHECK(F->products_fused && !Fs->products_fused, "n=%d: products fused %d, streamed %d", n,
                 F->products_fused, Fs->products_fused);
        F->products_blocked = 1;
        PR_CHECK_OK(pr_fast_execute(O2, F, Q, K, V));
        PR_CHECK(!F->products_fused && pr_vec_max_abs_diff(O1, O2, (size_t)n * d) == 0.0,
                 "blocked products != fused n=%d d=%d g=%d", n, d, g);
        /* and fused again over the sums the blocked execute left (the first pair overwrites them) */
        F->products_blocked = 0;
        PR_CHECK_OK(pr_fast_execute(O2, F, Q, K, V));
        PR_CHECK(F->products_fused && pr_vec_max_abs_diff(O1, O2, (size_t)n * d) == 0.0,
                 "fused products after blocked ones differ n=%d d=%d g=%d", n, d, g);
        /* the estimate is the allocating code's dry run: equal to what the plans counted as they
         * allocated, and at least their spectra (kept: nterms, x̂: b-marginals × (d+1)) */
        size_t sl8 = 8 * pr_toeplitz_spec_len(F->tp);
        const pr_expand_struct *T = F->terms;
        size_t bk = pr_fast_plan_bytes_heads(n, d, W->s, g, T->da, T->db, T->npairs_fwd, 1, F->streamed),
               bs = pr_fast_plan_bytes_heads(n, d, W->s, g, T->da, T->db, T->npairs_fwd, 1, Fs->streamed);
        PR_CHECK(F->bytes == bk && Fs->bytes == bs
                 && F->bytes >= sl8 * (F->streamed ? 0 : T->npairs_fwd) + sl8 * T->bm->count_fwd * (d + 1)
                 && F->bytes <= pr_fast_plan_bytes(n, d, W->s, g, T->da, T->db, F->streamed),
                 "%s n=%d d=%d g=%d: plan bytes %zu / %zu, dry run %zu / %zu", kind_names[kind], n, d, g, F->bytes,
                 Fs->bytes, bk, bs);
        pr_fast_destroy(Fs);
        pr_fast_destroy(F);
        pr_expoly_clear(p);
        pr_posw_clear(W);
        free(Q);
        free(beta);
    }
}

/* C9: the output against exact attention, within eps and within the reported bound */
static void test_eps(pr_rng_t rng)
{
    const double epss[] = {1e-2, 1e-4, 1e-6, 1e-9};
    for (int trial = 0; trial < 24; trial++) {
        int kind = trial % 4, causal = trial % 3 == 1, d = 2 * (1 + (int)pr_rng_below(rng, 2));
        int n = 2 + (int)pr_rng_below(rng, 40);
        double B = pr_rng_range(rng, 0.25, 1.25), eps = epss[trial % 4];
        pr_posw_t W;
        pr_attn_opts_t o;
        double *Q = instance(W, &o, kind, n, d, B, causal, rng), *K = Q + n * d, *V = K + n * d;
        double *O1 = V + n * d, *O2 = O1 + n * d;
        pr_control_opts_t fo;
        pr_control_opts_default(&fo);
        fo.eps = eps;
        fo.B = B;
        naive(O2, Q, K, V, W, n, d, &o);
        pr_control_info_t info;
        int st = pr_control_forward_fft(O1, &info, Q, K, V, W, n, d, &o, &fo);
        PR_CHECK(st == PR_OK, "fft %s n=%d d=%d B=%g eps=%g: %s", kind_names[kind], n, d, B, eps, pr_strerror(st));
        double err = pr_vec_max_abs_diff(O1, O2, (size_t)n * d);
        PR_CHECK(err <= info.bound && info.bound <= eps, "fft %s n=%d d=%d B=%g eps=%g causal=%d: err %g bound %g",
                 kind_names[kind], n, d, B, eps, causal, err, info.bound);
        if (pr_lowrank_applies(W)) {
            st = pr_control_forward_lowrank(O1, &info, Q, K, V, W, n, d, &o, &fo);
            PR_CHECK(st == PR_OK, "lowrank: %s", pr_strerror(st));
            err = pr_vec_max_abs_diff(O1, O2, (size_t)n * d);
            PR_CHECK(err <= info.bound && info.bound <= eps,
                     "lowrank %s n=%d d=%d B=%g eps=%g causal=%d: err %g bound %g", kind_names[kind], n, d,
                     B, eps, causal, err, info.bound);
        }
        pr_posw_clear(W);
        free(Q);
    }
}

/* The same polynomial through the low-rank and the FFT path: RoPE in both layouts, and the
 * identity, where the low-rank path is plain attention's fast path (C14). Each path rounds to
 * within its floor; the oracle between them is each other. */
static void test_agree(pr_rng_t rng)
{
    for (int trial = 0; trial < 18; trial++) {
        int kind = trial % 3 == 2 ? 3 : trial % 3, causal = trial % 2, d = 2 * (1 + (int)pr_rng_below(rng, 2));
        int n = 1 + (int)pr_rng_below(rng, 300), g = 2 + (int)pr_rng_below(rng, d == 4 ? 4 : 7);
        pr_posw_t W;
        pr_attn_opts_t o;
        double *Q = instance(W, &o, kind, n, d, 1.0, causal, rng), *K = Q + n * d, *V = K + n * d;
        double *O1 = V + n * d, *O2 = O1 + n * d;
        pr_control_info_t info;
        pr_expoly_t p;
        pr_expoly_init(p);
        pr_attn_opts_t po = o;
        PR_CHECK_OK(fit_positive(p, &info, &po, Q, K, V, W, n, d, g));
        double tol = 2.0 * info.floor;   /* the FFT floor is the larger of the two (ρ >= 1) */
        /* measured FFTW plans: another algorithm, the same bound */
        unsigned flags = trial % 4 == 1 ? PR_FAST_MEASURE : PR_FAST_ESTIMATE;
        pr_fast_plan_t F;
        PR_CHECK_OK(pr_fast_plan(F, W, &po, (size_t)1 << 30, 1000000, flags));
        PR_CHECK_OK(pr_fast_execute(O1, F, Q, K, V));
        PR_CHECK_OK(pr_lowrank_execute(O2, Q, K, V, W, n, d, &po, (size_t)1 << 30, 1000000));
        double err = pr_vec_max_abs_diff(O1, O2, (size_t)n * d);
        PR_CHECK(err <= tol, "lowrank vs fft %s n=%d d=%d g=%d causal=%d: %g > %g", kind_names[kind], n, d,
                 g, causal, err, tol);
        /* the low-rank budget is its dry run: exactly that many bytes run, one fewer is refused */
        double lb = pr_lowrank_bytes(n, d, po.poly_degree);
        PR_CHECK(lb == floor(lb) && pr_lowrank_execute(O2, Q, K, V, W, n, d, &po, (size_t)lb, 1000000) == PR_OK
                 && pr_lowrank_execute(O2, Q, K, V, W, n, d, &po, (size_t)lb - 1, 1000000) == PR_EBUDGET,
                 "lowrank budget at its estimate %g n=%d d=%d g=%d", lb, n, d, po.poly_degree);
        pr_fast_destroy(F);
        pr_expoly_clear(p);
        pr_posw_clear(W);
        free(Q);
    }
}

static void test_bad(pr_rng_t rng)
{
    int n = 16, d = 2;
    pr_posw_t W;
    pr_attn_opts_t o;
    double *Q = instance(W, &o, 2, n, d, 1.0, 0, rng), *K = Q + n * d, *V = K + n * d, *O = V + n * d;
    pr_control_opts_t fo;
    pr_control_opts_default(&fo);
    pr_control_info_t info;
    fo.eps = 0.0;
    PR_CHECK(pr_control_forward_fft(O, &info, Q, K, V, W, n, d, &o, &fo) == PR_EINVAL, "eps = 0");
    fo.eps = 1e-6;
    fo.B = 0.5;
    PR_CHECK(pr_control_forward_fft(O, &info, Q, K, V, W, n, d, &o, &fo) == PR_EBOUND, "entries past B");
    fo.widen = 1;
    PR_CHECK(pr_control_forward_fft(O, &info, Q, K, V, W, n, d, &o, &fo) == PR_OK && info.widened, "widen");
    fo.B = 0.0;
    fo.eps = 1e-15;
    PR_CHECK(pr_control_forward_fft(O, &info, Q, K, V, W, n, d, &o, &fo) == PR_EFLOOR && info.floor > 5e-16,
             "below the floor: floor %g", info.floor);
    fo.eps = 1e-6;
    fo.max_terms = 100;
    PR_CHECK(pr_control_forward_fft(O, &info, Q, K, V, W, n, d, &o, &fo) == PR_EBUDGET, "term budget");
    pr_control_opts_default(&fo);
    Q[5] = NAN;
    PR_CHECK(pr_control_forward_fft(O, &info, Q, K, V, W, n, d, &o, &fo) == PR_ENONFINITE, "NaN");
    PR_CHECK(pr_control_forward_lowrank(O, &info, Q, K, V, W, n, d, &o, &fo) == PR_EINVAL, "lowrank on general W");
    Q[5] = 0.5;
    fo.plan_flags = 2;
    PR_CHECK(pr_control_forward_fft(O, &info, Q, K, V, W, n, d, &o, &fo) == PR_EINVAL, "unknown plan flag");
    pr_posw_clear(W);
    free(Q);
}

/* pr_budget (issue 12): sizes past a limit, past size_t or not a number are refused with the limit
 * recorded; the fast paths refuse through it before planning (the forward's needs grow with the
 * degree, the backward's add to them) */
static void test_budget(pr_rng_t rng)
{
    pr_budget_t b;
    pr_budget_init(b, 1000.0, 1e6);
    PR_CHECK(pr_budget_bytes(b, 1000.0, "x") == PR_OK && b->hit == PR_BUDGET_NONE, "at the memory limit");
    PR_CHECK(pr_budget_bytes(b, 1001.0, "x") == PR_EBUDGET && b->hit == PR_BUDGET_MEMORY && b->need == 1001.0,
             "past the memory limit: hit %d need %g", b->hit, b->need);
    PR_CHECK(pr_budget_ops(b, 2e6, "y") == PR_EBUDGET && b->hit == PR_BUDGET_WORK && b->need == 2e6, "past work");
    char m[300];
    pr_budget_explain(m, sizeof m, b, "--max-mem", "--max-work");
    PR_CHECK(strstr(m, "y needs about 2e+06 operations, past the limit --max-work 1e+06: raise --max-work to"),
             "explain: '%s'", m);
    /* a negative d once sized a stack array (UBSan: non-positive VLA bound) */
    double x2[2] = {1.0, 2.0}, y2[2];
    PR_CHECK(pr_rope_rotate(y2, x2, 1, -2, 10000.0, PR_ROPE_INTERLEAVED, 1) == PR_EINVAL, "rope_rotate d = -2");
    pr_budget_init(b, 0.0, 0.0);   /* no limits: still past size_t, NaN and Inf are refused */
    PR_CHECK(pr_budget_bytes(b, 1e300, "z") == PR_EBUDGET && pr_budget_bytes(b, NAN, "z") == PR_EBUDGET &&
             pr_budget_bytes(b, -1.0, "z") == PR_EBUDGET && pr_budget_ops(b, INFINITY, "z") == PR_EBUDGET &&
             pr_budget_bytes(b, 1e12, "z") == PR_OK && pr_budget_ops(b, 1e30, "z") == PR_OK, "no limits");
    pr_budget_explain(m, sizeof m, b, "--max-mem", "--max-work");
    PR_CHECK(strstr(m, "z needs more operations than a double can count") != NULL, "explain inf: '%s'", m);

    int n = 64, d = 2;
    pr_posw_t W;
    pr_attn_opts_t o;
    double *Q = instance(W, &o, 2, n, d, 1.0, 0, rng), *K = Q + n * d, *V = K + n * d, *O = V + n * d;
    double b1, o1, b2, o2, bb, bo;
    pr_fast_needs(&b1, &o1, W, n, d, 3);
    pr_fast_needs(&b2, &o2, W, n, d, 6);
    pr_backward_needs(&bb, &bo, W, n, d, 3, 0);
    PR_CHECK(b1 > 0 && b2 > b1 && o2 > o1 && bb > 0 && bo > o1, "needs: g=3 %g B %g ops, g=6 %g B %g ops, "
             "backward %g B %g ops", b1, o1, b2, o2, bb, bo);
    pr_control_opts_t fo;
    pr_control_opts_default(&fo);
    pr_control_info_t info;
    fo.degree = 3;
    fo.eps = 1.0;
    fo.mem_budget = (size_t)b1 - 1;
    PR_CHECK(pr_control_forward_fft(O, &info, Q, K, V, W, n, d, &o, &fo) == PR_EBUDGET
             && info.budget.hit == PR_BUDGET_MEMORY && info.budget.need == b1, "fft memory: hit %d need %g (%g)", info.budget.hit, info.budget.need, b1);
    fo.mem_budget = (size_t)b1 + 1;
    PR_CHECK_OK(pr_control_forward_fft(O, &info, Q, K, V, W, n, d, &o, &fo));
    fo.max_ops = o1 / 2;
    PR_CHECK(pr_control_forward_fft(O, &info, Q, K, V, W, n, d, &o, &fo) == PR_EBUDGET
             && info.budget.hit == PR_BUDGET_WORK, "fft work: hit %d", info.budget.hit);
    fo.max_ops = 0.0;
    double *g = malloc(sizeof(double) * (4 * n * d + 2 * W->s * (2 * n - 1)));
    pr_rng_fill(g, 4L * n * d + 2L * W->s * (2 * n - 1), 1.0, rng);
    pr_control_backward_report_t rep;
    /* the backward is admitted at its least plan (nothing kept), which then keeps what fits beside the
       forward: a budget between the least and the full plan ran (it was refused while the check counted
       the kept spectra and symbol sums) */
    double bl = pr_backward_needs_least(W, n, d, 3, 1);
    PR_CHECK(bl > 0 && bl < bb, "backward: least %g B, full %g B", bl, bb);
    fo.mem_budget = (size_t)(b1 + bl) - 1;
    PR_CHECK(pr_control_backward(O, g, g + n * d, g + 2 * n * d, g + 4 * n * d, &info, &rep, Q, K, V, W, g + 3 * n * d,
                                 n, d, &o, &fo, 0) == PR_EBUDGET && info.budget.hit == PR_BUDGET_MEMORY &&
             info.budget.need == b1 + bl, "backward memory: hit %d need %g (%g)", info.budget.hit, info.budget.need,
             b1 + bl);
    fo.mem_budget = (size_t)(b1 + bl) + 1;
    PR_CHECK(pr_control_backward(O, g, g + n * d, g + 2 * n * d, g + 4 * n * d, &info, &rep, Q, K, V, W, g + 3 * n * d,
                                 n, d, &o, &fo, 0) == PR_OK, "backward at a budget between its least (%g B) and full "
             "(%g B) plans, beside the forward's %g B: refused", bl, bb, b1);
    free(g);
    pr_posw_clear(W);
    free(Q);
}

/* --algo auto's cost model: each path's prediction from its calibration, the least one picked,
 * the FFT path's fixed part within what was measured */
static void test_auto(pr_rng_t rng)
{
    int n = 16384, d = 2;   /* below about 8192 the FFT path's operation count rules it out untimed */
    pr_posw_t W;
    pr_attn_opts_t o;
    double *Q = instance(W, &o, 2, n, d, 1.0, 0, rng), *K = Q + n * d, *V = K + n * d;
    pr_control_opts_t fo;
    pr_control_opts_default(&fo);
    pr_auto_t a;
    PR_CHECK_OK(pr_auto_predict(&a, Q, K, V, NULL, W, n, d, &o, &fo));
    PR_CHECK(a.status[0] == PR_OK && a.status[2] == PR_OK && a.status[1] != PR_OK,
             "statuses %d %d %d (general W: no low-rank path)", a.status[0], a.status[1], a.status[2]);
    PR_CHECK(a.fft_fixed >= 0.0 && a.fft_fixed <= a.t_cal[2] && a.t[2] >= a.t_cal[2] && isfinite(a.t[2]),
             "fft: calibration %g s at n=%d, fixed %g s, predicted %g s at n=%d", a.t_cal[2], a.n_cal, a.fft_fixed,
             a.t[2], n);
    PR_CHECK(a.t[a.pick] <= a.t[0] && a.t[a.pick] <= a.t[1] && a.t[a.pick] <= a.t[2], "pick %d: %g %g %g", a.pick,
             a.t[0], a.t[1], a.t[2]);
    pr_posw_clear(W);
    free(Q);
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_fast", 20261123));
    test_c2(rng);
    test_eps(rng);
    test_agree(rng);
    test_bad(rng);
    test_budget(rng);
    test_auto(rng);
    return pr_test_finish("test_fast");
}
