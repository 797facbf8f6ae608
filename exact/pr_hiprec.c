#include <math.h>
#include <stdlib.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_hiprec.h"

void pr_hiprec_set_d_vec(arb_ptr y, const double *x, size_t len)
{
    for (size_t i = 0; i < len; i++)
        arb_set_d(y + i, x[i]);
}

static int check_args(const pr_posw_struct *W, int n, int d, const pr_attn_opts_t *opts, slong prec)
{
    if (n <= 0 || d <= 0 || prec < PR_HIPREC_MIN_PREC)
        return PR_EINVAL;
    if (W->n != n || W->d != d)
        return PR_ESHAPE;
    if (!(opts->sigma > 0.0) || !isfinite(opts->sigma) || (opts->poly && opts->poly_degree < 0))
        return PR_EINVAL;
    /* n² weights must fit */
    if ((size_t)n > 46340)
        return PR_ESIZE;
    return PR_OK;
}

/* σ and the biases β_ℓ as balls: the doubles of opts (exact), or the real-number definition */
typedef struct {
    arb_t sigma;
    arb_ptr beta;           /* 2n-1 balls, or NULL: no bias */
    slong L;
} defn_t;

static void defn_init(defn_t *f, const pr_attn_opts_t *opts, const pr_hiprec_def_t *def, int n, int d,
                      slong prec)
{
    arb_init(f->sigma);
    f->L = 2 * (slong)n - 1;
    f->beta = NULL;
    if (def && def->scale == PR_SCALE_INV_SQRT_D) {
        arb_rsqrt_ui(f->sigma, (ulong)d, prec);
    } else if (def && def->scale == PR_SCALE_INV_D) {
        arb_one(f->sigma);
        arb_div_si(f->sigma, f->sigma, d, prec);
    } else {
        arb_set_d(f->sigma, opts->sigma);
    }
    if (def && def->alibi > 0.0) {
        f->beta = _arb_vec_init(f->L);
        for (slong t = 0; t < f->L; t++) {
            arb_set_d(f->beta + t, def->alibi);
            arb_mul_si(f->beta + t, f->beta + t, -labs((long)(t - (n - 1))), prec);
        }
    } else if (opts->beta) {
        f->beta = _arb_vec_init(f->L);
        pr_hiprec_set_d_vec(f->beta, opts->beta, (size_t)f->L);
    }
}

static void defn_clear(defn_t *f)
{
    arb_clear(f->sigma);
    if (f->beta)
        _arb_vec_clear(f->beta, f->L);
}

/* f(M) e^{β_ℓ} into a, or 0 where masked: the attention weight before normalisation */
static void weight(arb_t a, const arb_t M, const pr_attn_opts_t *opts, arb_srcptr beta, int n, long l,
                   slong prec)
{
    if (opts->causal && l < 0) {
        arb_zero(a);
        return;
    }
    if (opts->poly) {
        /* Horner; each double coefficient is exact */
        arb_t c;
        arb_init(c);
        arb_set_d(a, opts->poly[opts->poly_degree]);
        for (int k = opts->poly_degree - 1; k >= 0; k--) {
            arb_mul(a, a, M, prec);
            arb_set_d(c, opts->poly[k]);
            arb_add(a, a, c, prec);
        }
        arb_clear(c);
    } else {
        arb_exp(a, M, prec);
    }
    if (beta) {
        arb_t e;
        arb_init(e);
        arb_exp(e, beta + (l + n - 1), prec);
        arb_mul(a, a, e, prec);
        arb_clear(e);
    }
}

/* RoPE's W_ℓ = R_{-ℓ} in Arb from its definition: θ_k = base^{-2k/d}, the sequences 4k..4k+3
 * of pr_posw_init_rope's support being cos ℓθ_k, sin ℓθ_k, -sin ℓθ_k, cos ℓθ_k */
static void rope_balls(arb_ptr w, const pr_posw_struct *W, slong prec)
{
    int n = W->n, d = W->d;
    slong L = 2 * (slong)n - 1;
    arb_t base, th, ang, c, sn;
    arb_init(base);
    arb_init(th);
    arb_init(ang);
    arb_init(c);
    arb_init(sn);
    arb_set_d(base, W->rope_base);
    for (int k = 0; k < d / 2; k++) {
        arb_set_si(th, -2 * k);
        arb_div_si(th, th, d, prec);
        arb_pow(th, base, th, prec);
        for (slong t = 0; t < L; t++) {
            arb_mul_si(ang, th, (slong)(t - (n - 1)), prec);
            arb_sin_cos(sn, c, ang, prec);
            arb_set(w + (4 * k) * L + t, c);
            arb_set(w + (4 * k + 1) * L + t, sn);
            arb_neg(w + (4 * k + 2) * L + t, sn);
            arb_set(w + (4 * k + 3) * L + t, c);
        }
    }
    arb_clear(base);
    arb_clear(th);
    arb_clear(ang);
    arb_clear(c);
    arb_clear(sn);
}

/* Ball copies of the double inputs, shared by the two double entry points. */
typedef struct {
    arb_ptr Q, K, V, w, dO;
    size_t nd, sw;
} balls_t;

static int balls_init(balls_t *b, const double *Q, const double *K, const double *V,
                      const pr_posw_struct *W, const double *dO, int n, int d,
                      const pr_attn_opts_t *opts, const pr_hiprec_def_t *def, slong prec)
{
    int st = pr_attn_check(Q, K, V, W, n, d, opts);
    if (st)
        return st;
    b->nd = (size_t)n * d;
    b->sw = (size_t)W->s * (2 * (size_t)n - 1);
    b->Q = _arb_vec_init(b->nd);
    b->K = _arb_vec_init(b->nd);
    b->V = _arb_vec_init(b->nd);
    b->w = _arb_vec_init(b->sw ? b->sw : 1);
    b->dO = _arb_vec_init(b->nd);
    pr_hiprec_set_d_vec(b->Q, Q, b->nd);
    pr_hiprec_set_d_vec(b->K, K, b->nd);
    pr_hiprec_set_d_vec(b->V, V, b->nd);
    if (def && def->rope && pr_posw_is_factorised(W) && W->s == 2 * d)
        rope_balls(b->w, W, prec);
    else
        pr_hiprec_set_d_vec(b->w, W->w, b->sw);
    if (dO)
        pr_hiprec_set_d_vec(b->dO, dO, b->nd);
    return PR_OK;
}

static void balls_clear(balls_t *b)
{
    _arb_vec_clear(b->Q, b->nd);
    _arb_vec_clear(b->K, b->nd);
    _arb_vec_clear(b->V, b->nd);
    _arb_vec_clear(b->w, b->sw ? b->sw : 1);
    _arb_vec_clear(b->dO, b->nd);
}

/* M = σ Σ_k Q_{i a_k} w_k(i-j) K_{j b_k}; t is scratch */
static void score(arb_t M, arb_t t, arb_srcptr Q, arb_srcptr K, arb_srcptr w, const arb_t sigma,
                  const pr_posw_struct *W, int i, int j, slong prec)
{
    int n = W->n, d = W->d;
    size_t L = 2 * (size_t)n - 1, l = (size_t)(i - j + n - 1);
    arb_zero(M);
    for (int k = 0; k < W->s; k++) {
        arb_mul(t, Q + (size_t)i * d + W->a[k], w + (size_t)k * L + l, prec);
        arb_addmul(M, t, K + (size_t)j * d + W->b[k], prec);
    }
    arb_mul(M, M, sigma, prec);
}

int pr_hiprec_scores(arb_ptr M, const double *Q, const double *K, const pr_posw_struct *W,
                     int n, int d, const pr_attn_opts_t *opts, slong prec)
{
    balls_t b;
    int st = balls_init(&b, Q, K, Q, W, NULL, n, d, opts, NULL, prec);
    if (st)
        return st;
    if ((st = check_args(W, n, d, opts, prec)) == PR_OK) {
        arb_t t, sigma;
        arb_init(t);
        arb_init(sigma);
        arb_set_d(sigma, opts->sigma);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                score(M + (size_t)i * n + j, t, b.Q, b.K, b.w, sigma, W, i, j, prec);
        arb_clear(t);
        arb_clear(sigma);
    }
    balls_clear(&b);
    return st;
}

static int forward_core(arb_ptr O, arb_ptr P, arb_srcptr Q, arb_srcptr K, arb_srcptr V, arb_srcptr w,
                        const defn_t *f, const pr_posw_struct *W, int n, int d, const pr_attn_opts_t *opts,
                        slong prec)
{
    int st = check_args(W, n, d, opts, prec);
    if (st)
        return st;
    arb_ptr row = _arb_vec_init(n);
    arb_t M, t, D;
    arb_init(M);
    arb_init(t);
    arb_init(D);
    for (int i = 0; i < n; i++) {
        arb_zero(D);
        for (int j = 0; j < n; j++) {
            long l = (long)i - j;
            arb_zero(M);
            if (!(opts->causal && l < 0))
                score(M, t, Q, K, w, f->sigma, W, i, j, prec);
            weight(row + j, M, opts, f->beta, n, l, prec);
            arb_add(D, D, row + j, prec);
        }
        for (int j = 0; j < n; j++)
            arb_div(row + j, row + j, D, prec);
        for (int c = 0; c < d; c++)
            arb_dot(O + (size_t)i * d + c, NULL, 0, row, 1, V + c, d, n, prec);
        if (P)
            _arb_vec_set(P + (size_t)i * n, row, n);
    }
    arb_clear(M);
    arb_clear(t);
    arb_clear(D);
    _arb_vec_clear(row, n);
    return PR_OK;
}

int pr_hiprec_forward_arb(arb_ptr O, arb_ptr P,
                          arb_srcptr Q, arb_srcptr K, arb_srcptr V, arb_srcptr w,
                          const pr_posw_struct *W, int n, int d, const pr_attn_opts_t *opts,
                          slong prec)
{
    int st = check_args(W, n, d, opts, prec);
    if (st)
        return st;
    defn_t f;
    defn_init(&f, opts, NULL, n, d, prec);
    st = forward_core(O, P, Q, K, V, w, &f, W, n, d, opts, prec);
    defn_clear(&f);
    return st;
}

static int backward_core(arb_ptr dQ, arb_ptr dK, arb_ptr dV, arb_ptr dw, arb_ptr dM,
                         arb_srcptr Q, arb_srcptr K, arb_srcptr V, arb_srcptr w, arb_srcptr dO,
                         const defn_t *f, const pr_posw_struct *W, int n, int d,
                         const pr_attn_opts_t *opts, slong prec)
{
    int st = check_args(W, n, d, opts, prec);
    if (st)
        return st;
    size_t nd = (size_t)n * d, nn = (size_t)n * n, L = 2 * (size_t)n - 1;
    arb_ptr O = _arb_vec_init(nd), P = _arb_vec_init(nn), r = _arb_vec_init(n);
    arb_ptr G = _arb_vec_init(nn); /* dM */
    st = forward_core(O, P, Q, K, V, w, f, W, n, d, opts, prec);
    if (st)
        goto done;
    arb_t t, u;
    arb_init(t);
    arb_init(u);
    /* r_i = <dO_i, O_i>; dM_ij = P_ij (<dO_i, V_j> - r_i) */
    for (int i = 0; i < n; i++) {
        arb_dot(r + i, NULL, 0, dO + (size_t)i * d, 1, O + (size_t)i * d, 1, d, prec);
        for (int j = 0; j < n; j++) {
            arb_dot(t, r + i, 1, dO + (size_t)i * d, 1, V + (size_t)j * d, 1, d, prec);
            arb_neg(t, t); /* arb_dot gave r_i - <dO_i, V_j> */
            arb_mul(G + (size_t)i * n + j, P + (size_t)i * n + j, t, prec);
        }
    }
    if (dV)
        for (int j = 0; j < n; j++)
            for (int c = 0; c < d; c++)
                arb_dot(dV + (size_t)j * d + c, NULL, 0, P + j, n, dO + c, d, n, prec);
    if (dQ)
        _arb_vec_zero(dQ, nd);
    if (dK)
        _arb_vec_zero(dK, nd);
    if (dw)
        _arb_vec_zero(dw, (size_t)W->s * L);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            long l = (long)i - j;
            if (opts->causal && l < 0)
                continue;
            arb_mul(u, G + (size_t)i * n + j, f->sigma, prec); /* σ dM_ij */
            for (int k = 0; k < W->s; k++) {
                arb_srcptr wk = w + (size_t)k * L + (size_t)(l + n - 1);
                arb_srcptr q = Q + (size_t)i * d + W->a[k], kk = K + (size_t)j * d + W->b[k];
                if (dQ) {
                    arb_mul(t, u, wk, prec);
                    arb_addmul(dQ + (size_t)i * d + W->a[k], t, kk, prec);
                }
                if (dK) {
                    arb_mul(t, u, wk, prec);
                    arb_addmul(dK + (size_t)j * d + W->b[k], t, q, prec);
                }
                if (dw) {
                    arb_mul(t, u, q, prec);
                    arb_addmul(dw + (size_t)k * L + (size_t)(l + n - 1), t, kk, prec);
                }
            }
        }
    if (dM)
        _arb_vec_set(dM, G, nn);
    arb_clear(t);
    arb_clear(u);
done:
    _arb_vec_clear(O, nd);
    _arb_vec_clear(P, nn);
    _arb_vec_clear(G, nn);
    _arb_vec_clear(r, n);
    return st;
}

int pr_hiprec_backward_arb(arb_ptr dQ, arb_ptr dK, arb_ptr dV, arb_ptr dw, arb_ptr dM,
                           arb_srcptr Q, arb_srcptr K, arb_srcptr V, arb_srcptr w,
                           arb_srcptr dO, const pr_posw_struct *W, int n, int d,
                           const pr_attn_opts_t *opts, slong prec)
{
    int st = check_args(W, n, d, opts, prec);
    if (st)
        return st;
    defn_t f;
    defn_init(&f, opts, NULL, n, d, prec);
    st = backward_core(dQ, dK, dV, dw, dM, Q, K, V, w, dO, &f, W, n, d, opts, prec);
    defn_clear(&f);
    return st;
}

/* the double entry points: balls of the inputs, σ and β (def NULL: as given; else the
 * real-number definition) */
static int hiprec_forward(arb_ptr O, const double *Q, const double *K, const double *V,
                          const pr_posw_struct *W, int n, int d, const pr_attn_opts_t *opts,
                          const pr_hiprec_def_t *def, slong prec)
{
    balls_t b;
    int st = balls_init(&b, Q, K, V, W, NULL, n, d, opts, def, prec);
    if (st)
        return st;
    defn_t f;
    defn_init(&f, opts, def, n, d, prec);
    st = forward_core(O, NULL, b.Q, b.K, b.V, b.w, &f, W, n, d, opts, prec);
    defn_clear(&f);
    balls_clear(&b);
    return st;
}

static int hiprec_backward(arb_ptr dQ, arb_ptr dK, arb_ptr dV, arb_ptr dw,
                           const double *Q, const double *K, const double *V,
                           const pr_posw_struct *W, const double *dO, int n, int d,
                           const pr_attn_opts_t *opts, const pr_hiprec_def_t *def, slong prec)
{
    if (n > 0 && d > 0 && pr_vec_check_finite(dO, (size_t)n * d))
        return PR_ENONFINITE;
    balls_t b;
    int st = balls_init(&b, Q, K, V, W, dO, n, d, opts, def, prec);
    if (st)
        return st;
    defn_t f;
    defn_init(&f, opts, def, n, d, prec);
    st = backward_core(dQ, dK, dV, dw, NULL, b.Q, b.K, b.V, b.w, b.dO, &f, W, n, d, opts, prec);
    defn_clear(&f);
    balls_clear(&b);
    return st;
}

int pr_hiprec_forward(arb_ptr O, const double *Q, const double *K, const double *V,
                      const pr_posw_struct *W, int n, int d, const pr_attn_opts_t *opts,
                      slong prec)
{
    return hiprec_forward(O, Q, K, V, W, n, d, opts, NULL, prec);
}

int pr_hiprec_backward(arb_ptr dQ, arb_ptr dK, arb_ptr dV, arb_ptr dw,
                       const double *Q, const double *K, const double *V,
                       const pr_posw_struct *W, const double *dO, int n, int d,
                       const pr_attn_opts_t *opts, slong prec)
{
    return hiprec_backward(dQ, dK, dV, dw, Q, K, V, W, dO, n, d, opts, NULL, prec);
}

void pr_hiprec_def_real(pr_hiprec_def_t *def, pr_scale_t scale, double alibi)
{
    def->rope = 1;
    def->scale = (int)scale;
    def->alibi = alibi;
}

int pr_hiprec_certify(arb_t err_O, arb_t err_grad, const double *O, const double *dQ,
                      const double *dK, const double *dV, const double *dw,
                      const double *Q, const double *K, const double *V, const pr_posw_struct *W,
                      const double *dO, int n, int d, const pr_attn_opts_t *opts,
                      const pr_hiprec_def_t *def, slong prec)
{
    int st = pr_attn_check(Q, K, V, W, n, d, opts);
    if (st)
        return st;
    if (def && (!(def->alibi >= 0.0) || !isfinite(def->alibi) || (def->alibi > 0.0 && !opts->beta) ||
                (def->scale != -1 && def->scale != PR_SCALE_INV_D && def->scale != PR_SCALE_INV_SQRT_D)))
        return PR_EINVAL;
    size_t nd = (size_t)n * d, sw = (size_t)W->s * (2 * (size_t)n - 1);
    if (pr_vec_check_finite(O, nd) || (dQ && (pr_vec_check_finite(dQ, nd) || pr_vec_check_finite(dK, nd) ||
                                              pr_vec_check_finite(dV, nd) || pr_vec_check_finite(dO, nd) ||
                                              (dw && pr_vec_check_finite(dw, sw)))))
        return PR_ENONFINITE;
    arb_ptr ref = _arb_vec_init((slong)(3 * nd + sw));
    st = hiprec_forward(ref, Q, K, V, W, n, d, opts, def, prec);
    if (!st)
        pr_hiprec_max_error(err_O, O, ref, nd, prec);
    if (!st && dQ) {
        st = hiprec_backward(ref, ref + nd, ref + 2 * nd, ref + 3 * nd, Q, K, V, W, dO, n, d, opts, def, prec);
        const double *g[4] = {dQ, dK, dV, dw};
        size_t len[4] = {nd, nd, nd, sw};
        arb_t e;
        arb_init(e);
        arb_zero(err_grad);
        for (int t = 0; !st && t < 4; t++)
            if (g[t]) {
                pr_hiprec_max_error(e, g[t], ref + t * nd, len[t], prec);
                arb_max(err_grad, err_grad, e, prec);
            }
        arb_clear(e);
    }
    _arb_vec_clear(ref, (slong)(3 * nd + sw));
    return st;
}

void pr_hiprec_max_diff(arb_t err, arb_srcptr x, arb_srcptr y, size_t len, slong prec)
{
    arb_t t;
    arb_init(t);
    arb_zero(err);
    for (size_t i = 0; i < len; i++) {
        arb_sub(t, x + i, y + i, prec);
        arb_abs(t, t);
        arb_max(err, err, t, prec);
    }
    arb_clear(t);
}

void pr_hiprec_max_error(arb_t err, const double *x, arb_srcptr ref, size_t len, slong prec)
{
    arb_t t;
    arb_init(t);
    arb_zero(err);
    for (size_t i = 0; i < len; i++) {
        arb_set_d(t, x[i]);
        arb_sub(t, t, ref + i, prec);
        arb_abs(t, t);
        arb_max(err, err, t, prec);
    }
    arb_clear(t);
}

pr_cert_verdict_t pr_hiprec_verdict(const arb_t quantity, const arb_t threshold)
{
    if (arb_le(quantity, threshold))
        return PR_CERT_CERTIFIED;
    if (arb_gt(quantity, threshold))
        return PR_CERT_REFUTED;
    return PR_CERT_UNKNOWN;
}

double pr_hiprec_ubound_d(const arb_t x)
{
    if (!arb_is_finite(x))
        return INFINITY;
    arf_t u;
    arf_init(u);
    arb_get_abs_ubound_arf(u, x, 64);
    double r = arf_get_d(u, ARF_RND_UP);
    arf_clear(u);
    return r;
}

double pr_hiprec_lbound_d(const arb_t x)
{
    arb_t a;
    arf_t u;
    arb_init(a);
    arf_init(u);
    arb_abs(a, x);
    arb_get_lbound_arf(u, a, 64);
    /* an indeterminate (NaN) ball says nothing: 0 is the only lower bound of |x| it proves */
    double d = arf_is_nan(u) ? 0.0 : arf_get_d(u, ARF_RND_DOWN);
    arf_clear(u);
    arb_clear(a);
    return d;
}
