/* Dense reference attention: forward against a long-double textbook loop over the dense
 * (2n-1, d, d) W for every kind of W, mask, bias and f (exhaustive n = 1..8, d = 2..8, then
 * random larger sizes); factorised path = general loop on the same W; W = I = plain
 * attention (claim C14); causal = explicit mask; RoPE layout equivalence; backward against
 * central differences of the textbook (claim G1), dL/dX (G2) and zero row sums of dM (G2). */
#include <float.h>
#include <math.h>
#include <string.h>
#include "polyrope.h"
#include "pr_test.h"

static const double u = DBL_EPSILON / 2;

typedef long double ld;

/* row i of the textbook's A: A_ij = f(M_ij)·e^{β} with M_ij = σ Q_i W_{i-j} K_jᵀ from the
 * dense W (0 where masked), in long double; returns the row sum l_i */
static ld textbook_row(ld *A, const ld *Q, const ld *K, const ld *w3, int n, int d,
                       const pr_attn_opts_t *opts, int i)
{
    ld l = 0;
    for (int j = 0; j < n; j++) {
        const ld *Wl = w3 + (size_t)(i - j + n - 1) * d * d;
        ld m = 0;
        for (int a = 0; a < d; a++)
            for (int b = 0; b < d; b++)
                m += Q[i * d + a] * Wl[a * d + b] * K[j * d + b];
        m *= opts->sigma;
        ld f;
        if (opts->poly) {
            f = opts->poly[opts->poly_degree];
            for (int t = opts->poly_degree - 1; t >= 0; t--)
                f = f * m + opts->poly[t];
            if (opts->beta)
                f *= expl(opts->beta[i - j + n - 1]);
        } else {
            f = expl(m + (opts->beta ? opts->beta[i - j + n - 1] : 0));
        }
        A[j] = opts->causal && j > i ? 0 : f;
        l += A[j];
    }
    return l;
}

/* textbook: O = D⁻¹AV with A from textbook_row; no streaming, no max subtraction, all in
 * long double */
static void textbook(ld *O, const ld *Q, const ld *K, const ld *V, const ld *w3, int n, int d,
                     const pr_attn_opts_t *opts)
{
    ld *A = malloc(sizeof(ld) * n);
    for (int i = 0; i < n; i++) {
        ld l = textbook_row(A, Q, K, w3, n, d, opts, i);
        for (int c = 0; c < d; c++) {
            ld o = 0;
            for (int j = 0; j < n; j++)
                o += A[j] * V[j * d + c];
            O[i * d + c] = o / l;
        }
    }
    free(A);
}

/* the backward formulas of docs/math.md written out on the whole n×n matrices, in long
 * double: P = D⁻¹A, dV = Pᵀ dO, r_i = <dO_i, O_i>, dM = P ∘ (dO Vᵀ - r 1ᵀ), dQ, dK, dw */
static void textbook_backward(ld *dQ, ld *dK, ld *dV, ld *dw, const ld *Q, const ld *K, const ld *V,
                              const ld *w3, const double *dO, const pr_posw_struct *W,
                              const pr_attn_opts_t *opts)
{
    int n = W->n, d = W->d;
    size_t nd = (size_t)n * d, L = 2 * (size_t)n - 1;
    ld *O = malloc(sizeof(ld) * nd), *P = malloc(sizeof(ld) * n * n);
    textbook(O, Q, K, V, w3, n, d, opts);
    /* P from the same scores: rebuild A row by row */
    for (int i = 0; i < n; i++) {
        ld l = textbook_row(P + (size_t)i * n, Q, K, w3, n, d, opts, i);
        for (int j = 0; j < n; j++)
            P[i * n + j] /= l;
    }
    for (size_t x = 0; x < nd; x++)
        dQ[x] = dK[x] = dV[x] = 0;
    for (size_t x = 0; x < W->s * L; x++)
        dw[x] = 0;
    for (int i = 0; i < n; i++) {
        ld r = 0;
        for (int c = 0; c < d; c++)
            r += dO[i * d + c] * O[i * d + c];
        for (int j = 0; j < n; j++) {
            ld dp = 0;
            for (int c = 0; c < d; c++) {
                dp += dO[i * d + c] * V[j * d + c];
                dV[j * d + c] += P[i * n + j] * dO[i * d + c];
            }
            ld dm = P[i * n + j] * (dp - r) * opts->sigma;
            const ld *Wl = w3 + (size_t)(i - j + n - 1) * d * d;
            for (int a = 0; a < d; a++)
                for (int b = 0; b < d; b++) {
                    dQ[i * d + a] += dm * Wl[a * d + b] * K[j * d + b];
                    dK[j * d + b] += dm * Q[i * d + a] * Wl[a * d + b];
                }
            for (int k = 0; k < W->s; k++)
                dw[k * L + i - j + n - 1] += dm * Q[i * d + W->a[k]] * K[j * d + W->b[k]];
        }
    }
    free(O);
    free(P);
}

static ld *to_ld(const double *x, size_t len)
{
    ld *y = malloc(sizeof(ld) * (len ? len : 1));
    for (size_t i = 0; i < len; i++)
        y[i] = x[i];
    return y;
}

typedef struct {
    int n, d;
    double *Q, *K, *V, *w3, *beta, poly[16];
    pr_posw_t W;
    pr_attn_opts_t opts;
    double bound;   /* max |V| */
    double R;       /* σ·max|Q|·max|K|·max rowsum of W */
    const char *desc;
} prob_t;

/* kind: 0 rope, 1 neox, 2 general, 3 identity, 4 random dense custom W */
static void prob_init(prob_t *p, int n, int d, int kind, int mask, int poly, int isqrt, double B,
                      pr_rng_t rng)
{
    static char desc[256];
    memset(p, 0, sizeof *p);
    p->n = n;
    p->d = d;
    size_t nd = (size_t)n * d, L = 2 * (size_t)n - 1;
    p->Q = malloc(sizeof(double) * nd);
    p->K = malloc(sizeof(double) * nd);
    p->V = malloc(sizeof(double) * nd);
    p->w3 = malloc(sizeof(double) * L * d * d);
    pr_rng_fill(p->Q, nd, B, rng);
    pr_rng_fill(p->K, nd, B, rng);
    pr_rng_fill(p->V, nd, 1.0, rng);
    int st;
    if (kind == 0 || kind == 1)
        st = pr_posw_init_rope(p->W, n, d, kind ? 50.0 : 10000.0, kind ? PR_ROPE_NEOX : PR_ROPE_INTERLEAVED);
    else if (kind == 2)
        st = pr_posw_init_general(p->W, n, d, rng);
    else if (kind == 3)
        st = pr_posw_init_identity(p->W, n, d);
    else {
        /* a sparse random dense W: about a third of the entries used */
        for (size_t t = 0; t < L * d * d; t++)
            p->w3[t] = 0;
        for (int ab = 0; ab < d * d; ab++)
            if (pr_rng_below(rng, 3) == 0)
                for (size_t l = 0; l < L; l++)
                    p->w3[l * d * d + ab] = pr_rng_range(rng, -1, 1);
        st = pr_posw_init_dense(p->W, p->w3, n, d);
    }
    if (st)
        abort();
    pr_posw_to_dense(p->w3, p->W);
    pr_attn_opts_default(&p->opts, d);
    p->opts.sigma = pr_scale_sigma(isqrt ? PR_SCALE_INV_SQRT_D : PR_SCALE_INV_D, d);
    p->opts.causal = mask == 1 || mask == 3;
    if (mask >= 2) {
        p->beta = malloc(sizeof(double) * L);
        if (mask == 2)
            pr_bias_alibi(p->beta, n, 0.25);
        else
            pr_rng_fill(p->beta, L, 1.0, rng);
        p->opts.beta = p->beta;
    }
    if (poly) {
        /* Taylor polynomial of e^x of degree g: positive on the small range used here */
        int g = 4 + poly;
        double c = 1;
        for (int t = 0; t <= g; t++) {
            p->poly[t] = c;
            c /= t + 1;
        }
        p->opts.poly = p->poly;
        p->opts.poly_degree = g;
    }
    p->bound = pr_vec_max_abs(p->V, nd);
    p->R = p->opts.sigma * pr_vec_max_abs(p->Q, nd) * pr_vec_max_abs(p->K, nd) * pr_posw_max_rowsum(p->W);
    snprintf(desc, sizeof desc, "n=%d d=%d kind=%d mask=%d poly=%d isqrt=%d B=%g", n, d, kind, mask,
             poly, isqrt, B);
    p->desc = desc;
}

static void prob_clear(prob_t *p)
{
    free(p->Q);
    free(p->K);
    free(p->V);
    free(p->w3);
    free(p->beta);
    pr_posw_clear(p->W);
}

/* Forward tolerance. Each score sums ≤ s products, so |δM| ≤ γ_{s+3}·R (R bounds the sum of
 * |products| too); f(M + β) then has relative error ≤ |δM| + 8u (exp or Horner of a positive
 * series, plus the bias product), each weight p_ij = A_ij/l twice that, and O = Σ p_ij V_j adds
 * n + d rounding steps of |V|. The factor 2 is headroom for the second-order terms. */
static double fwd_tol(const prob_t *p)
{
    double s = p->W->s;
    return 2 * (2 * ((s + 3) * u * fmax(p->R, 1) + 8 * u) + (p->n + p->d + 4) * u) * fmax(p->bound, 1);
}

static double max_diff_ld(const double *x, const ld *y, size_t len)
{
    double m = 0;
    for (size_t i = 0; i < len; i++)
        m = fmax(m, (double)fabsl((ld)x[i] - y[i]));
    return m;
}

static void check_forward(prob_t *p)
{
    size_t nd = (size_t)p->n * p->d, L = 2 * (size_t)p->n - 1;
    double *O = malloc(sizeof(double) * nd), *lse = malloc(sizeof(double) * p->n);
    ld *Qx = to_ld(p->Q, nd), *Kx = to_ld(p->K, nd), *Vx = to_ld(p->V, nd);
    ld *wx = to_ld(p->w3, L * p->d * p->d), *Ox = malloc(sizeof(ld) * nd);
    PR_CHECK_OK(pr_dense_forward(O, lse, p->Q, p->K, p->V, p->W, p->n, p->d, &p->opts));
    textbook(Ox, Qx, Kx, Vx, wx, p->n, p->d, &p->opts);
    double err = max_diff_ld(O, Ox, nd), tol = fwd_tol(p);
    PR_CHECK(err <= tol, "forward vs textbook: %s err=%g tol=%g", p->desc, err, tol);
    /* the general loop on the same W (kind custom) agrees with the factorised path */
    pr_posw_struct gen = *p->W;
    gen.kind = PR_POS_CUSTOM;
    double *O2 = malloc(sizeof(double) * nd);
    PR_CHECK_OK(pr_dense_forward(O2, 0, p->Q, p->K, p->V, &gen, p->n, p->d, &p->opts));
    err = pr_vec_max_abs_diff(O, O2, nd);
    PR_CHECK(err <= 2 * tol, "factorised vs loop: %s err=%g tol=%g", p->desc, err, 2 * tol);
    free(O);
    free(O2);
    free(lse);
    free(Qx);
    free(Kx);
    free(Vx);
    free(wx);
    free(Ox);
}

/* L = Σ dO ∘ O in long double, for central differences */
static ld objective(const prob_t *p, const double *dO, const ld *Q, const ld *K, const ld *V, const ld *w3)
{
    size_t nd = (size_t)p->n * p->d;
    ld *O = malloc(sizeof(ld) * nd), s = 0;
    textbook(O, Q, K, V, w3, p->n, p->d, &p->opts);
    for (size_t x = 0; x < nd; x++)
        s += dO[x] * O[x];
    free(O);
    return s;
}

/* Central differences with steps h and h/2, in long double (u_ld = 2^-64). The difference of
 * the two estimates bounds the truncation error of the finer one by 4/3 of itself (its error
 * is h²/24·f''' + O(h⁴) against h²/6·f''' for the coarser); each quotient adds the textbook's
 * rounding, ≤ 64·u_ld·Σ|terms|/h with Σ|terms| ≤ Σ|dO|·max|V|. The closed form itself is in
 * double: its own error is ≤ 64(n + s)u times the gradient scale. */
static void check_grad(const prob_t *p, const double *g, ld *var, size_t len, const char *what,
                       const double *dO, ld *Qx, ld *Kx, ld *Vx, ld *wx, double gscale,
                       const size_t *idx)
{
    size_t nd = (size_t)p->n * p->d;
    double sum_dO = 0;
    for (size_t x = 0; x < nd; x++)
        sum_dO += fabs(dO[x]);
    const ld h = 1e-4L, uld = LDBL_EPSILON / 2;
    double worst = 0, worst_tol = 0;
    int bad = -1;
    for (size_t q = 0; q < len; q++) {
        size_t t = idx ? idx[q] : q;
        ld save = var[t], fd[2];
        for (int r = 0; r < 2; r++) {
            ld hh = r ? h / 2 : h;
            var[t] = save + hh;
            ld fp = objective(p, dO, Qx, Kx, Vx, wx);
            var[t] = save - hh;
            ld fm = objective(p, dO, Qx, Kx, Vx, wx);
            fd[r] = (fp - fm) / (2 * hh);
        }
        var[t] = save;
        double gt = g[q];
        double tol = (double)(4.0L / 3 * fabsl(fd[0] - fd[1]) + 64 * uld * sum_dO * fmax(p->bound, 1) / (h / 2)) +
                     64 * (p->n + p->W->s + 4) * u * gscale;
        double err = (double)fabsl((ld)gt - fd[1]);
        if (err - tol > worst - worst_tol) {
            worst = err;
            worst_tol = tol;
            bad = (int)t;
        }
    }
    PR_CHECK(worst <= worst_tol, "%s vs central differences: %s index %d err=%g tol=%g", what,
             p->desc, bad, worst, worst_tol);
}

static void check_backward(prob_t *p, pr_rng_t rng)
{
    int n = p->n, d = p->d;
    size_t nd = (size_t)n * d, L = 2 * (size_t)n - 1;
    double *O = malloc(sizeof(double) * nd), *lse = malloc(sizeof(double) * n);
    double *dO = malloc(sizeof(double) * nd), *dQ = malloc(sizeof(double) * nd);
    double *dK = malloc(sizeof(double) * nd), *dV = malloc(sizeof(double) * nd);
    double *dw = malloc(sizeof(double) * p->W->s * L);
    pr_rng_fill(dO, nd, 1.0, rng);
    PR_CHECK_OK(pr_dense_forward(O, lse, p->Q, p->K, p->V, p->W, n, d, &p->opts));
    PR_CHECK_OK(pr_dense_backward(dQ, dK, dV, dw, p->Q, p->K, p->V, p->W, O, lse, dO, n, d, &p->opts));
    ld *Qx = to_ld(p->Q, nd), *Kx = to_ld(p->K, nd), *Vx = to_ld(p->V, nd);
    ld *wx = to_ld(p->w3, L * d * d);
    double gscale = fmax(p->bound, 1) * pr_vec_max_abs(dO, nd) * n * fmax(p->R, 1);
    /* against the formulas written out: P's weights carry the forward's relative error
     * (fwd_tol without the |V| factor), each gradient sums n·(s + 2) such products */
    ld *tq = malloc(sizeof(ld) * nd), *tk = malloc(sizeof(ld) * nd), *tv = malloc(sizeof(ld) * nd);
    ld *tw = malloc(sizeof(ld) * p->W->s * L);
    textbook_backward(tq, tk, tv, tw, Qx, Kx, Vx, wx, dO, p->W, &p->opts);
    double ftol = 64 * (n + p->W->s + 4) * u * gscale + 4 * fwd_tol(p) * gscale;
    double e1 = max_diff_ld(dQ, tq, nd), e2 = max_diff_ld(dK, tk, nd), e3 = max_diff_ld(dV, tv, nd);
    double e4 = max_diff_ld(dw, tw, p->W->s * L);
    PR_CHECK(fmax(fmax(e1, e2), fmax(e3, e4)) <= ftol, "backward vs formulas: %s dQ %g dK %g dV %g dw %g tol=%g",
             p->desc, e1, e2, e3, e4, ftol);
    free(tq); free(tk); free(tv); free(tw);
    /* the formulas are the derivative only for f = exp */
    if (!p->opts.poly) {
    check_grad(p, dQ, Qx, nd, "dQ", dO, Qx, Kx, Vx, wx, gscale, 0);
    check_grad(p, dK, Kx, nd, "dK", dO, Qx, Kx, Vx, wx, gscale, 0);
    check_grad(p, dV, Vx, nd, "dV", dO, Qx, Kx, Vx, wx, gscale, 0);
    /* dw_k(ℓ) is the derivative along entry (a_k, b_k) of W_ℓ in the dense array */
    size_t s = p->W->s, *idx = malloc(sizeof(size_t) * s * L);
    for (size_t k = 0; k < s; k++)
        for (size_t l = 0; l < L; l++)
            idx[k * L + l] = l * d * d + p->W->a[k] * d + p->W->b[k];
    check_grad(p, dw, wx, s * L, "dw", dO, Qx, Kx, Vx, wx, gscale, idx);
    free(idx);
    }
    /* without dw the factorised path runs: same gradients to rounding */
    double *dQ2 = malloc(sizeof(double) * nd), *dK2 = malloc(sizeof(double) * nd), *dV2 = malloc(sizeof(double) * nd);
    PR_CHECK_OK(pr_dense_backward(dQ2, dK2, dV2, 0, p->Q, p->K, p->V, p->W, O, lse, dO, n, d, &p->opts));
    double tol = 64 * (n + p->W->s + 4) * u * gscale;
    double e = fmax(pr_vec_max_abs_diff(dQ, dQ2, nd), fmax(pr_vec_max_abs_diff(dK, dK2, nd), pr_vec_max_abs_diff(dV, dV2, nd)));
    PR_CHECK(e <= tol, "backward with/without dw: %s err=%g tol=%g", p->desc, e, tol);
    free(dQ2); free(dK2); free(dV2);
    free(Qx); free(Kx); free(Vx); free(wx);
    free(O); free(lse); free(dO); free(dQ); free(dK); free(dV); free(dw);
}

/* Rows of dM sum to zero (claim G2): with K's column 0 all ones and W's row 0 holding only
 * w_00 ≡ 1, dQ_i0 = σ Σ_j dM_ij. */
static void check_dm_rows(pr_rng_t rng)
{
    for (int trial = 0; trial < 20; trial++) {
        int n = 1 + (int)pr_rng_below(rng, 40), d = 1 + (int)pr_rng_below(rng, 6);
        size_t nd = (size_t)n * d, L = 2 * (size_t)n - 1;
        double *w3 = malloc(sizeof(double) * L * d * d), *Q = malloc(sizeof(double) * nd);
        double *K = malloc(sizeof(double) * nd), *V = malloc(sizeof(double) * nd);
        double *O = malloc(sizeof(double) * nd), *lse = malloc(sizeof(double) * n);
        double *dO = malloc(sizeof(double) * nd), *dQ = malloc(sizeof(double) * nd);
        double *dK = malloc(sizeof(double) * nd), *dV = malloc(sizeof(double) * nd);
        pr_rng_fill(w3, L * d * d, 1.0, rng);
        for (size_t l = 0; l < L; l++)
            for (int b = 0; b < d; b++)
                w3[l * d * d + b] = b == 0;
        pr_rng_fill(Q, nd, 2.0, rng);
        pr_rng_fill(K, nd, 2.0, rng);
        pr_rng_fill(V, nd, 1.0, rng);
        pr_rng_fill(dO, nd, 1.0, rng);
        for (int j = 0; j < n; j++)
            K[j * d] = 1.0;
        pr_posw_t W;
        PR_CHECK_OK(pr_posw_init_dense(W, w3, n, d));
        pr_attn_opts_t opts;
        pr_attn_opts_default(&opts, d);
        opts.causal = trial % 2;
        PR_CHECK_OK(pr_dense_forward(O, lse, Q, K, V, W, n, d, &opts));
        PR_CHECK_OK(pr_dense_backward(dQ, dK, dV, 0, Q, K, V, W, O, lse, dO, n, d, &opts));
        /* |dM_ij| ≤ p_ij·(|dP_ij| + |r_i|) ≤ 2d·p_ij, so Σ_j |dM_ij| ≤ 2d; each step of the
         * sums rounds: (n + 2d + 8)·u per unit */
        double worst = 0, tol = opts.sigma * 2 * d * (n + 2 * d + 8) * u * 4;
        for (int i = 0; i < n; i++)
            worst = fmax(worst, fabs(dQ[i * d]));
        PR_CHECK(worst <= tol, "dM row sums: n=%d d=%d causal=%d worst=%g tol=%g", n, d, opts.causal, worst, tol);
        pr_posw_clear(W);
        free(w3); free(Q); free(K); free(V); free(O); free(lse); free(dO); free(dQ); free(dK); free(dV);
    }
}

/* dL/dX = A1ᵀ dQ for L(X) = ½‖O - E‖² with Q = A1 X, K = A2, V = A3 Y (claim G2) */
static void check_loss_x(pr_rng_t rng)
{
    for (int trial = 0; trial < 6; trial++) {
        int n = 2 + (int)pr_rng_below(rng, 9), d = 2 * (1 + (int)pr_rng_below(rng, 3));
        size_t nd = (size_t)n * d, dd = (size_t)d * d;
        double *A1 = malloc(sizeof(double) * nd), *A2 = malloc(sizeof(double) * nd);
        double *A3 = malloc(sizeof(double) * nd), *E = malloc(sizeof(double) * nd);
        double *X = malloc(sizeof(double) * dd), *Y = malloc(sizeof(double) * dd), *dX = malloc(sizeof(double) * dd);
        pr_rng_fill(A1, nd, 1.0, rng);
        pr_rng_fill(A2, nd, 1.0, rng);
        pr_rng_fill(A3, nd, 1.0, rng);
        pr_rng_fill(E, nd, 1.0, rng);
        pr_rng_fill(X, dd, 1.0, rng);
        pr_rng_fill(Y, dd, 1.0, rng);
        pr_posw_t W;
        PR_CHECK_OK(trial % 2 ? pr_posw_init_general(W, n, d, rng) : pr_posw_init_rope(W, n, d, 10000.0, PR_ROPE_INTERLEAVED));
        pr_attn_opts_t opts;
        pr_attn_opts_default(&opts, d);
        opts.causal = trial % 3 == 0;
        double loss, lp, lm, l2p, l2m, worst = 0, worst_tol = 0;
        PR_CHECK_OK(pr_dense_loss_x(&loss, dX, A1, X, A2, A3, Y, E, W, n, d, &opts));
        /* here in double: the loss rounds to ≤ (n d + 64) u · (2 + ...) ≤ 64·n·d·u·L-scale, and
         * the truncation is bounded by 4/3 of the two step sizes' difference as in check_grad */
        const double h = 1e-3;
        for (size_t t = 0; t < dd; t++) {
            double save = X[t];
            X[t] = save + h; pr_dense_loss_x(&lp, 0, A1, X, A2, A3, Y, E, W, n, d, &opts);
            X[t] = save - h; pr_dense_loss_x(&lm, 0, A1, X, A2, A3, Y, E, W, n, d, &opts);
            X[t] = save + h / 2; pr_dense_loss_x(&l2p, 0, A1, X, A2, A3, Y, E, W, n, d, &opts);
            X[t] = save - h / 2; pr_dense_loss_x(&l2m, 0, A1, X, A2, A3, Y, E, W, n, d, &opts);
            X[t] = save;
            double f1 = (lp - lm) / (2 * h), f2 = (l2p - l2m) / h;
            double tol = 4.0 / 3 * fabs(f1 - f2) + 2 * 64.0 * (n * d + 64) * u * fmax(loss, 1) / (h / 2);
            double err = fabs(dX[t] - f2);
            if (err - tol > worst - worst_tol) {
                worst = err;
                worst_tol = tol;
            }
        }
        PR_CHECK(worst <= worst_tol, "dL/dX: n=%d d=%d trial=%d err=%g tol=%g", n, d, trial, worst, worst_tol);
        pr_posw_clear(W);
        free(A1); free(A2); free(A3); free(E); free(X); free(Y); free(dX);
    }
}

/* neox attention on the permuted columns of Q and K = interleaved attention */
static void check_layouts(pr_rng_t rng)
{
    for (int trial = 0; trial < 10; trial++) {
        int n = 1 + (int)pr_rng_below(rng, 300), d = 2 * (1 + (int)pr_rng_below(rng, 8));
        size_t nd = (size_t)n * d;
        double *Q = malloc(sizeof(double) * nd), *K = malloc(sizeof(double) * nd), *V = malloc(sizeof(double) * nd);
        double *Qp = malloc(sizeof(double) * nd), *Kp = malloc(sizeof(double) * nd);
        double *O1 = malloc(sizeof(double) * nd), *O2 = malloc(sizeof(double) * nd);
        int perm[16];
        pr_rope_layout_perm(perm, d);
        pr_rng_fill(Q, nd, 2.0, rng);
        pr_rng_fill(K, nd, 2.0, rng);
        pr_rng_fill(V, nd, 1.0, rng);
        for (int i = 0; i < n; i++)
            for (int c = 0; c < d; c++) {
                Qp[i * d + perm[c]] = Q[i * d + c];
                Kp[i * d + perm[c]] = K[i * d + c];
            }
        pr_posw_t Wi, Wn;
        PR_CHECK_OK(pr_posw_init_rope(Wi, n, d, 10000.0, PR_ROPE_INTERLEAVED));
        PR_CHECK_OK(pr_posw_init_rope(Wn, n, d, 10000.0, PR_ROPE_NEOX));
        pr_attn_opts_t opts;
        pr_attn_opts_default(&opts, d);
        opts.causal = trial % 2;
        PR_CHECK_OK(pr_dense_forward(O1, 0, Q, K, V, Wi, n, d, &opts));
        PR_CHECK_OK(pr_dense_forward(O2, 0, Qp, Kp, V, Wn, n, d, &opts));
        /* the rotated products agree exactly (test_rope); only summation order may differ */
        double err = pr_vec_max_abs_diff(O1, O2, nd), tol = 8 * (n + 2 * d + 16) * u * 4;
        PR_CHECK(err <= tol, "layouts: n=%d d=%d err=%g tol=%g", n, d, err, tol);
        pr_posw_clear(Wi);
        pr_posw_clear(Wn);
        free(Q); free(K); free(V); free(Qp); free(Kp); free(O1); free(O2);
    }
}

/* W = I against plain softmax(σ Q Kᵀ) V; causal against an explicit finite mask β = -10⁴
 * (e^-10⁴ underflows to 0, so the two define the same A) */
static void check_identity_and_mask(pr_rng_t rng)
{
    for (int trial = 0; trial < 10; trial++) {
        int n = 1 + (int)pr_rng_below(rng, 600), d = 1 + (int)pr_rng_below(rng, 12);
        size_t nd = (size_t)n * d, L = 2 * (size_t)n - 1;
        double *Q = malloc(sizeof(double) * nd), *K = malloc(sizeof(double) * nd), *V = malloc(sizeof(double) * nd);
        double *O1 = malloc(sizeof(double) * nd), *O2 = malloc(sizeof(double) * nd), *beta = malloc(sizeof(double) * L);
        pr_rng_fill(Q, nd, 1.5, rng);
        pr_rng_fill(K, nd, 1.5, rng);
        pr_rng_fill(V, nd, 1.0, rng);
        pr_posw_t W;
        PR_CHECK_OK(pr_posw_init_identity(W, n, d));
        pr_attn_opts_t opts;
        pr_attn_opts_default(&opts, d);
        opts.causal = 1;
        PR_CHECK_OK(pr_dense_forward(O1, 0, Q, K, V, W, n, d, &opts));
        for (size_t l = 0; l < L; l++)
            beta[l] = (long)l - (n - 1) < 0 ? -1e4 : 0.0;
        opts.causal = 0;
        opts.beta = beta;
        PR_CHECK_OK(pr_dense_forward(O2, 0, Q, K, V, W, n, d, &opts));
        double err = pr_vec_max_abs_diff(O1, O2, nd), tol = 16 * (n + d + 16) * u;
        PR_CHECK(err <= tol, "causal vs explicit mask: n=%d d=%d err=%g tol=%g", n, d, err, tol);
        /* plain attention, row by row in double with libm exp */
        double *sc = malloc(sizeof(double) * n), worst = 0;
        opts.beta = 0;
        PR_CHECK_OK(pr_dense_forward(O2, 0, Q, K, V, W, n, d, &opts));
        for (int i = 0; i < n; i++) {
            double mx = -INFINITY, l = 0;
            for (int j = 0; j < n; j++) {
                double m = 0;
                for (int c = 0; c < d; c++)
                    m += Q[i * d + c] * K[j * d + c];
                sc[j] = m / d;
                mx = fmax(mx, sc[j]);
            }
            for (int j = 0; j < n; j++)
                l += (sc[j] = exp(sc[j] - mx));
            for (int c = 0; c < d; c++) {
                double o = 0;
                for (int j = 0; j < n; j++)
                    o += sc[j] * V[j * d + c];
                worst = fmax(worst, fabs(o / l - O2[i * d + c]));
            }
        }
        /* scores within 2.25 of each other: (d + 4)u·2.25 per score, doubled per weight, plus
         * 2n + d + 8 rounding steps on both sides */
        tol = 2 * (2 * (d + 4) * 2.25 + 2 * n + d + 16) * u;
        PR_CHECK(worst <= tol, "identity vs plain attention: n=%d d=%d err=%g tol=%g", n, d, worst, tol);
        free(sc);
        pr_posw_clear(W);
        free(Q); free(K); free(V); free(O1); free(O2); free(beta);
    }
}

static void check_bad_input(void)
{
    int n = 4, d = 4;
    double Q[16] = {0}, K[16] = {0}, V[16] = {0}, O[16], lse[4];
    pr_posw_t W;
    PR_CHECK_OK(pr_posw_init_rope(W, n, d, 10000.0, PR_ROPE_INTERLEAVED));
    pr_attn_opts_t opts;
    pr_attn_opts_default(&opts, d);
    Q[5] = NAN;
    PR_CHECK(pr_dense_forward(O, lse, Q, K, V, W, n, d, &opts) == PR_ENONFINITE, "NaN in Q");
    Q[5] = 0;
    V[3] = INFINITY;
    PR_CHECK(pr_dense_forward(O, lse, Q, K, V, W, n, d, &opts) == PR_ENONFINITE, "Inf in V");
    V[3] = 0;
    PR_CHECK(pr_dense_forward(O, lse, Q, K, V, W, 0, d, &opts) == PR_EINVAL, "n = 0");
    PR_CHECK(pr_dense_forward(O, lse, Q, K, V, W, 3, d, &opts) == PR_ESHAPE, "W sized for another n");
    Q[0] = K[0] = 1e200;
    PR_CHECK(pr_dense_forward(O, lse, Q, K, V, W, n, d, &opts) == PR_EDOMAIN, "scores overflow");
    Q[0] = K[0] = 0;
    for (int x = 0; x < 16; x++)
        V[x] = 1e308;
    PR_CHECK(pr_dense_forward(O, lse, Q, K, V, W, n, d, &opts) == PR_EDOMAIN, "output overflows");
    for (int x = 0; x < 16; x++)
        V[x] = 0;
    /* a polynomial whose row sums vanish: P = x on scores that are all 0 */
    double px[2] = {0, 1};
    opts.poly = px;
    opts.poly_degree = 1;
    PR_CHECK(pr_dense_forward(O, lse, Q, K, V, W, n, d, &opts) == PR_EDOMAIN, "row sum 0");
    pr_posw_clear(W);
}

int main(void)
{
    pr_rng_t rng;
    pr_rng_init(rng, pr_test_seed("test_dense", 20261123));

    /* exhaustive small sizes: every n = 1..8, d = 2..8, each kind of W that exists for d,
     * each mask (none, causal, ALiBi, random bias with causal), exp and a polynomial */
    for (int n = 1; n <= 8; n++)
        for (int d = 2; d <= 8; d++)
            for (int kind = 0; kind <= 4; kind++) {
                if (d % 2 && kind <= 2)
                    continue;
                for (int mask = 0; mask < 4; mask++) {
                    prob_t p;
                    prob_init(&p, n, d, kind, mask, (n + d + mask) % 3 == 0 ? 1 + mask : 0, mask == 2, 2.0, rng);
                    check_forward(&p);
                    prob_clear(&p);
                }
            }
    /* larger random sizes crossing the tile edges (128 queries × 256 keys) */
    for (int trial = 0; trial < 12; trial++) {
        int n = 100 + (int)pr_rng_below(rng, 300), d = 2 * (1 + (int)pr_rng_below(rng, 6));
        prob_t p;
        prob_init(&p, n, d, trial % 5, trial % 4, trial % 3 == 0, trial % 2, 1.0 + trial % 3, rng);
        check_forward(&p);
        prob_clear(&p);
    }
    /* backward against central differences */
    for (int trial = 0; trial < 16; trial++) {
        int n = 1 + (int)pr_rng_below(rng, 7), d = 2 * (1 + (int)pr_rng_below(rng, 2));
        prob_t p;
        prob_init(&p, n, d, trial % 5, trial % 4, trial % 4 == 1 ? 2 : 0, 0, 1.0, rng);
        check_backward(&p, rng);
        prob_clear(&p);
    }
    check_dm_rows(rng);
    check_loss_x(rng);
    check_layouts(rng);
    check_identity_and_mask(rng);
    check_bad_input();
    return pr_test_finish("test_dense");
}
