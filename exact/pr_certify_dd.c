/* pr_certify's gradients' scores in double-double (docs/certify.md L18, L21): the RoPE rotation from L1's
 * ĉ + c_lo by error-free products, the scores by Dot2 kept as hi + lo, the shift M - m̂ unrounded and
 * e^{x_h + x_l} (pr_certify_exp_eval2), with the bound Δ of each score. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "pr_status.h"
#include "pr_rope.h"
#include "pr_vec.h"
#include "pr_certify_impl.h"

/* h + l = x(c + cl) + y(s + sl) less L21's error: the products split by an FMA, their sum by TwoSum, the
 * small products and the errors added in double */
static inline void rot_dd(double *h, double *l, double x, double c, double cl, double y, double s, double sl)
{
    double p1 = x * c, e1 = fma(x, c, -p1), p2 = y * s, e2 = fma(y, s, -p2);
    double t = p1 + p2, z = t - p1, es = (p1 - (t - z)) + (p2 - z);
    *h = t;
    *l = ((es + e1) + e2) + (x * cl + y * sl);
}

void pr_certify_rotate_dd(double *Xh, double *Xl, const double *X, const cert_prob_t *p)
{
    int n = p->n, d = p->d;
    if (!p->rope) {
        memcpy(Xh, X, sizeof(double) * (size_t)n * d);
        memset(Xl, 0, sizeof(double) * (size_t)n * d);
        return;
    }
    for (int m = 0; m < n; m++) {
        const double *x = X + (size_t)m * d;
        double *yh = Xh + (size_t)m * d, *yl = Xl + (size_t)m * d;
        for (int k = 0; k < p->h; k++) {
            int a, b;
            pr_rope_pair(&a, &b, k, d, (pr_rope_layout_t)p->layout);
            size_t t = (size_t)m * p->h + k;
            double c = p->ch[t], cl = p->cl[t], s = p->sh[t], sl = p->sl[t];
            rot_dd(yh + a, yl + a, x[a], c, cl, -x[b], s, sl); /* x_a cos - x_b sin */
            rot_dd(yh + b, yl + b, x[b], c, cl, x[a], s, sl);  /* x_a sin + x_b cos */
        }
    }
}

/* L18, L21: Dot2 of rows r < mi of A (stride d; Al its low parts, or NULL) with keys j < w of B given transposed
 * (Bt, Blt: d×n); vectorised over keys, any evaluation order of the lanes. Without Al: S[r·ld + j] =
 * fl(alpha·fl(hi + lo)); with Al: S = hi, Sl = lo, lo also summing the cross terms a·b_lo + a_lo·b. */
#define D2W 64 /* keys per strip (the strip's hi, lo stay in L1) */
static inline __attribute__((always_inline)) void dot2_body(double *S, double *Sl, const double *A, const double *Al,
                                                            const double *Bt, const double *Blt, int mi, int w,
                                                            int ld, int n, int d, double alpha, const int dd)
{
    for (int j0 = 0; j0 < w; j0 += D2W) /* the strip of B stays in cache for all rows */
        for (int r = 0; r < mi; r++) {
            int m = w - j0 < D2W ? w - j0 : D2W;
            double hi[D2W] = {0}, lo[D2W] = {0};
            for (int c = 0; c < d; c++) {
                double a = A[(size_t)r * d + c], al = dd ? Al[(size_t)r * d + c] : 0.0;
                const double *b = Bt + (size_t)c * n + j0, *bl = dd ? Blt + (size_t)c * n + j0 : b;
#pragma omp simd
                for (int j = 0; j < m; j++) {
                    double x = a * b[j], ex = fma(a, b[j], -x); /* x + ex = a·b exactly (no underflow) */
                    double t = hi[j] + x, z = t - hi[j];
                    double q = ((hi[j] - (t - z)) + (x - z)) + ex; /* TwoSum's error: t + err = hi + x */
                    lo[j] += dd ? q + (a * bl[j] + al * b[j]) : q;
                    hi[j] = t;
                }
            }
            for (int j = 0; j < m; j++)
                if (dd) {
                    S[(size_t)r * ld + j0 + j] = hi[j];
                    Sl[(size_t)r * ld + j0 + j] = lo[j];
                } else {
                    S[(size_t)r * ld + j0 + j] = alpha * (hi[j] + lo[j]);
                }
        }
}

__attribute__((target("avx2,fma"))) static void dot2_fma(double *S, const double *A, const double *Bt, int mi,
                                                         int w, int ld, int n, int d, double alpha)
{
    dot2_body(S, NULL, A, NULL, Bt, NULL, mi, w, ld, n, d, alpha, 0);
}

__attribute__((target("avx2,fma"))) static void dot2dd_fma(double *S, double *Sl, const double *A, const double *Al,
                                                           const double *Bt, const double *Blt, int mi, int w,
                                                           int ld, int n, int d)
{
    dot2_body(S, Sl, A, Al, Bt, Blt, mi, w, ld, n, d, 1.0, 1);
}

static int has_fma(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

void pr_certify_dot2_rows(double *S, const double *A, const double *Bt, int mi, int w, int ld, int n, int d,
                          double alpha)
{
    if (has_fma())
        dot2_fma(S, A, Bt, mi, w, ld, n, d, alpha);
    else
        dot2_body(S, NULL, A, NULL, Bt, NULL, mi, w, ld, n, d, alpha, 0);
}

void pr_certify_dot2dd_rows(double *S, double *Sl, const double *A, const double *Al, const double *Bt,
                            const double *Blt, int mi, int w, int ld, int n, int d)
{
    if (has_fma())
        dot2dd_fma(S, Sl, A, Al, Bt, Blt, mi, w, ld, n, d);
    else
        dot2_body(S, Sl, A, Al, Bt, Blt, mi, w, ld, n, d, 1.0, 1);
}

int pr_certify_dd_setup(cert_dd_t *dd, const cert_prob_t *p, const double *Qh, const double *Kh)
{
    double u = p->u, tau = p->tau_lo, g2 = pr_certify_gamma(2, u), g3 = pr_certify_gamma(3, u);
    int d = p->d;
    size_t nd = (size_t)p->n * d;
    memset(dd, 0, sizeof(*dd));
    /* σ = σ̂ + σ_lo within 2^-100 σ̂ (a given σ is exact) */
    if (p->scale != PR_CERTIFY_SCALE_GIVEN) {
        arb_t s;
        arf_t b;
        arb_init(s);
        arf_init(b);
        pr_certify_sigma_arb(s, p, 192);
        cert_sub_d(s, s, p->sig, 192);
        dd->sig_lo = arf_get_d(arb_midref(s), ARF_RND_NEAR);
        cert_sub_d(s, s, dd->sig_lo, 192);
        arb_get_abs_ubound_arf(b, s, 192);
        dd->tau_sig = pr_certify_up(p->sig * 0x1p-100); /* σ̂ >= 1/d >= 2^-10 (d <= 1024): no underflow */
        int ok = arf_cmp_d(b, dd->tau_sig) <= 0 && fabs(dd->sig_lo) <= 2.0 * u * p->sig;
        arf_clear(b);
        arb_clear(s);
        if (!ok)
            return PR_EPREC;
    }
    /* L21: |a - a_h - a_l| <= ρ₂(|x| + |y|), |a_l| <= μ(|x| + |y|), each entry also within 8η */
    if (p->rope) {
        double nu = u * (1.0 + u) * (1.0 + u) + u * (1.0 + u) + (1.0 + g2) * (u + 2.0 * tau);
        dd->rho2 = pr_certify_up(tau + g2 * (u + 2.0 * tau) + g3 * nu);
        dd->mu = pr_certify_up((1.0 + g3) * nu);
    }
    double rho = pr_certify_rho(p), r1 = 1.0 + 2.0 * rho, gdd = pr_certify_gamma(d + 5, u),
           gd = pr_certify_gamma(d, u), mu = dd->mu, r2 = dd->rho2;
    /* L21: |t_h + t_l - a·b| <= c_t ‖Q_i‖ ‖K_j‖ + tiny_t */
    dd->ct = pr_certify_up((gdd * (gd * (1.0 + u) * r1 * r1 + (1.0 + u) * 4.0 * mu * r1) + 4.0 * mu * mu +
                            2.0 * r2 * (2.0 + 2.0 * r2)) * 1.001);
    double mx = pr_vec_max_abs(Qh, nd) + pr_vec_max_abs(Kh, nd);
    dd->tiny_t = pr_certify_up((6.0 * d + 8.0) * ETA + pr_certify_underflow_carry(16.0 * d, 2.0 * mx));
    return PR_OK;
}

/* e^{x_h + x_l} for x_h in [-700, 0.34], |x_l| <= 2^-20 (L21): k as L3's, r_h + r_l = x_h + x_l - k(l1 + l2) by
 * TwoSum and TwoProd, p(r_h) by compensated Horner (Graillat, Langlois and Louvet), ê = 2^k fl(p_h + fl(ĉ + p_h r_l)) */
static inline __attribute__((always_inline)) double exp_comp(const cexp_t *e, double xh, double xl)
{
    double kd = (double)(long)(xh * 1.4426950408889634 - 0.5), a = kd * e->l1; /* k·l1 exact */
    double s1 = xh - a, z = s1 - xh, e1 = (xh - (s1 - z)) + (-a - z);
    double bh = kd * e->l2, bl = fma(kd, e->l2, -bh);
    double r0 = s1 - bh;
    z = r0 - s1;
    double e2 = (s1 - (r0 - z)) + (-bh - z), rh = r0 + xl;
    z = rh - r0;
    double e3 = (r0 - (rh - z)) + (xl - z), rl = ((e1 + e2) - bl) + e3;
    double ph = e->c[EXP_DEG], c = 0.0;
    for (int m = EXP_DEG - 1; m >= 0; m--) {
        double t = ph * rh, pe = fma(ph, rh, -t), s = t + e->c[m];
        z = s - t;
        double se = (t - (s - z)) + (e->c[m] - z);
        ph = s;
        c = c * rh + (pe + se);
    }
    union { uint64_t i; double d; } k2;
    k2.i = (uint64_t)((long)kd + 1023) << 52;
    return (ph + (c + ph * rl)) * k2.d;
}

double pr_certify_exp_comp(const cexp_t *e, double xh, double xl)
{
    return exp_comp(e, xh, xl);
}

/* row i (L21): the scores' hi + lo in sh, sl (jn unmasked keys) in, ê_j out in sh (0 from jn to w); scr: w doubles */
static inline __attribute__((always_inline)) void row_exps_body(rowx_t *rx, const pass_t *ps, const cert_dd_t *dd, int i,
                                                                double *sh, double *sl, double *scr, int jn, int w)
{
    const cert_prob_t *p = ps->p;
    double u = p->u, sg = p->sig, sgl = dd->sig_lo, asl = fabs(sgl), al = p->alibi, tau = dd->tau_sig;
    double g3 = pr_certify_gamma(3, u), mx = -INFINITY, dmax = 0.0, under = 0.0, xlmax = 0.0, xhmax = 0.0;
    /* t's part: (σ̂ + |σ_lo| + τ_σ)ε_t <= (1 + 3u)σ̂(c_t‖Q_i‖‖K_j‖ + tiny_t), each product rounded up (L2's rule);
       the TwoProds' and roundings' underflow: 8η */
    double kap = pr_certify_up(pr_certify_up(dd->ct * sg * (1.0 + 3.0 * u)) * ps->nQ[i]);
    double tiny = pr_certify_up(dd->tiny_t * sg * (1.0 + 3.0 * u)) + 8.0 * ETA;
    for (int j = 0; j < jn; j++) {
        /* σ̂t_h = p_h + p_l and m|ℓ| = b_h + b_l exactly (FMA), s + e = p_h - b_h (TwoSum) */
        double th = sh[j], tl = sl[j], lab = (double)labs((long)i - j);
        double ph = sg * th, pl = fma(sg, th, -ph), bh = al * lab, bl = fma(al, lab, -bh);
        double s = ph - bh, z = s - ph, e = (ph - (s - z)) + (-bh - z), q1 = sg * tl, q2 = sgl * th;
        sh[j] = s;
        sl[j] = ((e + pl) - bl) + (q1 + q2);
        /* the low sum's rounding, q1's and q2's, σ_lo·t_l omitted, σ's residual τ_σ|t| */
        double aq = fabs(q1) + fabs(q2);
        scr[j] = g3 * (fabs(e) + fabs(pl) + fabs(bl) + aq) + u * aq + asl * fabs(tl) + tau * (fabs(th) + fabs(tl));
        mx = s > mx ? s : mx;
    }
    const cexp_t *ex = ps->ex;
    double eps = ex->eps2;
    const double *nK = ps->nK;
    for (int j = 0; j < jn; j++) {
        /* x_h + e = s - m̂ (TwoSum), x_l = fl(s_l + e): Δ adds u|x_l| */
        double s = sh[j], xh = s - mx, z = xh - s, e = (s - (xh - z)) + (-mx - z), xl = sl[j] + e;
        double dl = scr[j] + u * fabs(xl) + kap * nK[j] + tiny;
        dmax = dl > dmax ? dl : dmax;
        /* renormalised by TwoSum (exact): |x_l| <= u|x_h| even where u|M| is above 1 */
        s = xh + xl;
        z = s - xh;
        xl = (xh - (s - z)) + (xl - z);
        xh = s;
        int lo = xh < -700.0;
        /* the exp's domain (L21): x_h <= 0.34 (the best key's x_l can be up to u|M̂|, so x_h > 0 happens),
           |x_l| <= 2^-20 where the weight is evaluated */
        xhmax = xh > xhmax ? xh : xhmax;
        xlmax = !lo && fabs(xl) > xlmax ? fabs(xl) : xlmax;
        double ev = exp_comp(ex, lo ? 0.0 : xh, lo ? 0.0 : xl);
        under += lo;
        sh[j] = lo ? 0.0 : ev;
    }
    for (int j = jn; j < w; j++)
        sh[j] = 0.0;
    dmax = pr_certify_up(dmax); /* Δ_j's own dozen roundings */
    rx->lam = 0.0;
    rx->lmax = pr_certify_up(eps + (1.0 + eps) * (dmax + dmax * dmax));
    rx->under = under;
    rx->shift = mx; /* ê_j ≈ e^{M_ij - mx}, x_h + x_l = M_ij - mx within Δ_j */
    rx->fail = !(dmax <= 0.5) || !isfinite(mx) || !(xlmax <= 0x1p-20) || !(xhmax <= 0.34);
}

__attribute__((target("avx2,fma"))) static void row_exps_fma(rowx_t *rx, const pass_t *ps, const cert_dd_t *dd, int i,
                                                             double *sh, double *sl, double *scr, int jn, int w)
{
    row_exps_body(rx, ps, dd, i, sh, sl, scr, jn, w);
}

void pr_certify_row_exps_dd(rowx_t *rx, const pass_t *ps, const cert_dd_t *dd, int i, double *sh, double *sl,
                            double *scr, int jn, int w)
{
    if (has_fma())
        row_exps_fma(rx, ps, dd, i, sh, sl, scr, jn, w);
    else
        row_exps_body(rx, ps, dd, i, sh, sl, scr, jn, w);
}
