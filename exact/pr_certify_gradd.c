/* pr_certify's gradients in double with a rigorous bound per element (docs/certify.md L8-L12):
 * the forward's scores, exponentials and bounds (L1-L5, or a general W's L13) per block of rows,
 * then dP = dO·Vᵀ, D = rowsum(dO∘O), dS = P∘(dP - D), dQ = σRᵀ(dS·K̂), dK = σRᵀ(dSᵀ·Q̂) (with W
 * the sums over its support, L15), dV = Pᵀ·dO, and beside each product its bound as a product of
 * nonnegative matrices. */
#include <fenv.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <omp.h>
#include "pr_status.h"
#include "pr_rope.h"
#include "pr_vec.h"
#include "pr_certexp.h"
#include "pr_certify_impl.h"

#define GB 32    /* rows per block */
#define TG 8     /* key columns per partial of dS·K̂, the partials summed by Sum2 (L19) */
#define UD 8     /* rows per partial of dŜᵀ·Q̂ and P̂ᵀ·dO (L19) */
#define KT 256   /* keys per tile of those partials (the tile's sums stay in cache) */
#define TAU 0x1p-1006 /* an underflowed weight's P, and fl(ê/Ŝ)'s absolute error (L8) */
#define JW 128   /* key columns per tile of a general W's dQ, dK sums (L15's depth) */

/* one query head of a group */
typedef struct {
    pass_t ps;              /* the forward's data: Q̂r, K̂r, norms, V's ranges (L1-L5) */
    const double *dO;
    double *ndO, *nV;       /* row-norm bounds of dO and V */
    double *Wq, *Wk;        /* |X̂r| + β_X/γ (L11) */
    double *Kht, *Klt, *Vt; /* K rotated in double-double (L21) and V, transposed (d×n) for Dot2 (RoPE or identity) */
    double *Qh, *Ql;        /* the head's Q rotated in double-double (L21) */
    cert_dd_t dd;           /* L21's constants */
    double *dQ, *EQ;        /* dQ̂ and its bound */
    unsigned char *qopen;   /* rows the pass could not bound */
    double gam;             /* γ_G (L11, L15) */
    double gbT, gbU;        /* 1 + 2γ of the depth of the bound sums of T and U (L11, L15) */
    double etaT, etaU;      /* their underflow allowances per element */
    int fail;               /* some row failed: dK, dV open */
    double **acc;           /* per thread: Û, E_U, V̂, E_V, Û's and V̂'s Sum2 errors (n×d each, L19), then with dw
                               its sums and their bounds (s×(2n-1) each, ℓ reversed as wrev) */
    int dw;                 /* dw wanted (W only, L17) */
    double gbW, etaW;       /* dw's bound sums' factor and underflow allowance (L17) */
    cert_rowenc_t *enc;     /* NULL, or this head's rows' enclosures for L20 */
} ghead_t;

/* Wx = (|X̂r| + (ρ/γ)(|x_a| + |x_b|))(1 + 2^-40) for every pair (a, b) of each row (L11) */
static void weights(double *W, const double *Xr, const double *X, const cert_prob_t *p, double gam)
{
    double rg = pr_certify_up(pr_certify_rho(p) / gam);
    for (int m = 0; m < p->n; m++) {
        const double *x = X + (size_t)m * p->d, *xr = Xr + (size_t)m * p->d;
        double *w = W + (size_t)m * p->d;
        for (int c = 0; c < p->d; c++)
            w[c] = fabs(xr[c]);
        for (int k = 0; p->rope && k < p->h; k++) {
            int a, b;
            pr_rope_pair(&a, &b, k, p->d, (pr_rope_layout_t)p->layout);
            double r = rg * (fabs(x[a]) + fabs(x[b]));
            w[a] += r;
            w[b] += r;
        }
        for (int c = 0; c < p->d; c++)
            w[c] *= 1.0 + 0x1p-40;
    }
}

/* L19: hi + lo += x by TwoSum (Sum2's step: hi + the exact errors stay the exact sum of what was added) */
static void sum2_add(double *hi, double *lo, const double *x, size_t len)
{
#pragma omp simd
    for (size_t t = 0; t < len; t++) {
        double a = hi[t] + x[t], z = a - hi[t];
        lo[t] += (hi[t] - (a - z)) + (x[t] - z);
        hi[t] = a;
    }
}

/* Xt = Xᵀ (X n×d) */
static void transpose(double *Xt, const double *X, int n, int d)
{
    for (int j = 0; j < n; j++)
        for (int c = 0; c < d; c++)
            Xt[(size_t)c * n + j] = X[(size_t)j * d + c];
}

/* y = σ̂ T̂ with |y - σT| <= ey (E_T bounds |T̂ - T|), then out = R_mᵀ y, err its bound (L11) */
static void scale_rotate(double *out, double *err, const double *T, const double *ET, int m, const cert_prob_t *p,
                         double *y, double *ey)
{
    int d = p->d;
    double u = p->u, s = p->sig, sr = p->sig_rel, rho = pr_certify_rho(p);
    for (int c = 0; c < d; c++) {
        y[c] = s * T[c];
        ey[c] = pr_certify_up(s * ET[c] * (1.0 + sr) + sr * s * fabs(T[c]) + u * fabs(y[c]) + ETA);
    }
    if (!p->rope) {
        memcpy(out, y, sizeof(double) * d);
        memcpy(err, ey, sizeof(double) * d);
        return;
    }
    for (int k = 0; k < p->h; k++) {
        int a, b;
        pr_rope_pair(&a, &b, k, d, (pr_rope_layout_t)p->layout);
        double c = p->ch[(size_t)m * p->h + k], sn = p->sh[(size_t)m * p->h + k];
        out[a] = y[a] * c + y[b] * sn;
        out[b] = -y[a] * sn + y[b] * c;
        /* |cos| <= |ĉ| + u + 2^-100 (L1): each entry's error weighs its partners' by the true |cos|, |sin| */
        double r = rho * (fabs(y[a]) + fabs(y[b])), ac = fabs(c) + u + 0x1p-99, as = fabs(sn) + u + 0x1p-99;
        err[a] = pr_certify_up(r + ac * ey[a] + as * ey[b]);
        err[b] = pr_certify_up(r + as * ey[a] + ac * ey[b]);
    }
}

/* L18: ε_P = (u|dP̂| + γ_d²‖dO_i‖‖V_j‖ + 4dη)/(1 - u) bounds |dP̂ - dP| for Dot2's dP̂; cdp = γ_d²‖dO_i‖ (the
 * factor 1 + 2u >= 1/(1 - u)) */
static inline double eps_p(double g, double cdp, double nVj, double u, int d)
{
    return (u * fabs(g) + cdp * nVj + 4.0 * d * ETA) * (1.0 + 2.0 * u);
}

/* Ŝ = Σ_j ê_j by Sum2 (L19: |Ŝ - Σ ê| <= (u + γ_{jn}²) Σ ê, the terms nonnegative) */
static double row_sum(const double *e, int jn)
{
    double S = 0.0, lo = 0.0;
    for (int j = 0; j < jn; j++)
        sum2_add(&S, &lo, e + j, 1);
    return S + lo;
}

/* L9: D̂ = Σ_j P̂_j dP̂_j by Dot2 (Ogita, Rump and Oishi's compensated dot product: error at most
 * u|Σ| + γ_n² Σ|P̂_j dP̂_j| without underflow), and *eD >= |D̂ - D| from L8's κ and L18's ε_P,j */
static double row_d(double *eD, const double *P, const double *G, const double *nV, int jn, double cdp, double k,
                    const cert_prob_t *p)
{
    double u = p->u, hi = 0.0, lo = 0.0, a1 = 0.0, b1 = 0.0, c1 = 0.0;
    for (int j = 0; j < jn; j++) {
        double x = P[j] * G[j], ex = fma(P[j], G[j], -x); /* x + ex = P̂ dP̂ exactly (no underflow) */
        double t = hi + x, z = t - hi, es = (hi - (t - z)) + (x - z); /* t + es = hi + x exactly */
        hi = t;
        lo += es + ex;
        double ep = eps_p(G[j], cdp, nV[j], u, p->d);
        a1 += fabs(x);
        b1 += P[j] * ep;
        c1 += fabs(G[j]) + ep;
    }
    double D = hi + lo, gn = pr_certify_gamma(jn, u), gs = 1.0 + pr_certify_gamma(jn + 4, u);
    /* a1, b1, c1: nonnegative sums of jn terms of up to 3 roundings: their exact values within 1 + γ_{jn+4} */
    double dot = (u * fabs(D) + gn * gn * a1 * gs * (1.0 + u) + 4.0 * jn * ETA) / (1.0 - u);
    *eD = pr_certify_up(dot + ((1.0 + k) * b1 + k * a1 * (1.0 + u) + TAU * c1) * gs + (3.0 * p->d + 3.0) * ETA);
    return D;
}

/* rows i0..i0+mi of one head: P̂ in Pm, dŜ in G, its bound weight Z in Z (all mi×w) (L8-L10) */
static void block_ds(ghead_t *hd, int i0, int mi, int w, double *Pm, double *G, double *Z, double *kap,
                     rowx_t *rx, double *scr)
{
    pass_t *ps = &hd->ps;
    const cert_prob_t *p = ps->p;
    int n = p->n, d = p->d;
    double u = p->u, gam = hd->gam, gd = pr_certify_gamma(d, u);
    gd = pr_certify_up(gd * gd); /* L18: Dot2's γ_d² */
    const double *dOb = hd->dO + (size_t)i0 * d;
    if (ps->W) /* L13's scores; scr: 128 doubles */
        pr_certify_w_scores(Pm, scr, ps, i0, mi, w);
    else /* L21's scores, t_h in Pm and t_l in G */
        pr_certify_dot2dd_rows(Pm, G, hd->Qh + (size_t)i0 * d, hd->Ql + (size_t)i0 * d, hd->Kht, hd->Klt, mi, w, w,
                               n, d);
    for (int r = 0; r < mi; r++) {
        int jn = p->causal ? i0 + r + 1 : n;
        if (ps->W)
            pr_certify_row_exps(rx + r, ps, i0 + r, Pm + (size_t)r * w, jn, w);
        else
            pr_certify_row_exps_dd(rx + r, ps, &hd->dd, i0 + r, Pm + (size_t)r * w, G + (size_t)r * w,
                                   Z + (size_t)r * w, jn, w);
    }
    pr_certify_dot2_rows(G, dOb, hd->Vt, mi, w, w, n, d, 1.0); /* L18's dP̂ */
    for (int r = 0; r < mi; r++) {
        int i = i0 + r, jn = p->causal ? i + 1 : n;
        double *Pr = Pm + (size_t)r * w, *Gr = G + (size_t)r * w, *Zr = Z + (size_t)r * w;
        if (rx[r].fail) {
            hd->qopen[i] = 1; /* row i is this block's alone */
            if (hd->enc)
                hd->enc[i].ok = 0;
#pragma omp atomic write
            hd->fail = 1;
            memset(Pr, 0, sizeof(double) * w);
            memset(Gr, 0, sizeof(double) * w);
            memset(Zr, 0, sizeof(double) * w);
            kap[r] = 0.0;
            continue;
        }
        /* L8: |P̂ - P| <= κ P̂ + τ */
        double gk = pr_certify_gamma(jn, u);
        gk = pr_certify_up(u + gk * gk); /* L19: Ŝ by Sum2 */
        double lam = rx[r].lmax + rx[r].under * 0x1p-1006;
        double k = pr_certify_up(((1.0 + lam) * (1.0 + gk) / ((1.0 - lam) * (1.0 - u)) - 1.0) * 1.01);
        kap[r] = k;
        double S = row_sum(Pr, jn), cdp = pr_certify_up(gd * hd->ndO[i]), eD;
        const double *nV = hd->nV;
        for (int j = 0; j < jn; j++)
            Pr[j] /= S;
        double D = row_d(&eD, Pr, Gr, nV, jn, cdp, k, p); /* L9 */
        if (hd->enc) { /* L20: Σ ê = (l - under)(1 + θ̄), |θ̄| <= λ (L4); |Ŝ - Σ ê| <= gk Σ ê (L19) */
            cert_rowenc_t *e = hd->enc + i;
            *e = (cert_rowenc_t){rx[r].shift, S, gk, lam, rx[r].under, D, eD, 1};
        }
        /* L10: dŜ = fl(P̂ fl(dP̂ - D̂)) and δ >= |dŜ - dS|; Z = γ|dŜ| + (1 + γ)δ, inflated by 2^-40
           for its own ~20 roundings */
#pragma omp simd
        for (int j = 0; j < jn; j++) {
            double P = Pr[j], g = Gr[j] - D, e1 = eps_p(Gr[j], cdp, nV[j], u, d) + eD;
            double ag = fabs(g) * (1.0 + u) + e1, ds = P * g;
            double dl = P * (u * fabs(g) + e1 + k * ag) + u * fabs(ds) + ETA + TAU * ag;
            Gr[j] = ds;
            Zr[j] = (gam * fabs(ds) + (1.0 + gam) * dl) * (1.0 + 0x1p-40);
        }
        for (int j = jn; j < w; j++)
            Gr[j] = Zr[j] = 0.0;
    }
}

/* a general W (L15): rows i0..i0+mi's T̂_i = Σ_j dŜ_ij W_{i-j} K_j and the sums Σ_j Z_ij |W_{i-j}||K_j| of its
 * bound into T and ET (mi×d), and Û_j += Σ_i dŜ_ij Q_i W_{i-j} and its bound's sums into U, EU (n×d), by tiles
 * of JW keys: each tile's Û part summed in part (2·d·JW doubles) first; dw (NULL: not wanted, L17): dw_k(ℓ)'s
 * sums Σ_{i-j=ℓ} dŜ_ij Q_{i,a_k} K_{j,b_k} and Σ Z_ij |Q_{i,a_k}||K_{j,b_k}|, reversed as wrev, s×(2n-1) each */
static void w_products(const ghead_t *hd, int i0, int mi, int w, const double *G, const double *Z, double *T,
                       double *ET, double *U, double *EU, double *part, double *dw)
{
    const pass_t *ps = &hd->ps;
    const pr_posw_struct *W = ps->W;
    int n = ps->p->n, d = ps->p->d, causal = ps->p->causal;
    size_t L = 2 * (size_t)n - 1;
    double *pu = part, *pe = part + (size_t)d * JW;
    memset(T, 0, sizeof(double) * mi * d);
    memset(ET, 0, sizeof(double) * mi * d);
    for (int j0 = 0; j0 < w; j0 += JW) {
        int m = w - j0 < JW ? w - j0 : JW;
        memset(part, 0, sizeof(double) * 2 * d * JW);
        for (int k = 0; k < W->s; k++) {
            const double *kt = ps->Kt + (size_t)W->b[k] * n + j0;
            double *ub = pu + (size_t)W->b[k] * JW, *eb = pe + (size_t)W->b[k] * JW;
            for (int r = 0; r < mi; r++) {
                int i = i0 + r, mr = (causal ? i + 1 : n) - j0;
                mr = mr < m ? mr : m;
                /* w_k(i - j) for j = j0, j0 + 1, ...: the reversed sequence from n - 1 - i + j0 on */
                const double *wk = ps->wrev + k * L + (size_t)(n - 1 - i + j0);
                const double *g = G + (size_t)r * w + j0, *z = Z + (size_t)r * w + j0;
                double q = ps->Qr[(size_t)i * d + W->a[k]], aq = fabs(q), t = 0.0, e = 0.0;
#pragma omp simd reduction(+ : t, e)
                for (int j = 0; j < mr; j++) {
                    double x = g[j] * wk[j], y = z[j] * fabs(wk[j]);
                    t += x * kt[j];
                    e += y * fabs(kt[j]);
                    ub[j] += x * q;
                    eb[j] += y * aq;
                }
                if (dw) {
                    double *dv = dw + k * L + (size_t)(n - 1 - i + j0), *de = dv + (size_t)W->s * L;
#pragma omp simd
                    for (int j = 0; j < mr; j++) {
                        dv[j] += g[j] * kt[j] * q;
                        de[j] += z[j] * fabs(kt[j]) * aq;
                    }
                }
                T[(size_t)r * d + W->a[k]] += t;
                ET[(size_t)r * d + W->a[k]] += e;
            }
        }
        for (int j = 0; j < m; j++)
            for (int b = 0; b < d; b++) {
                U[(size_t)(j0 + j) * d + b] += pu[(size_t)b * JW + j];
                EU[(size_t)(j0 + j) * d + b] += pe[(size_t)b * JW + j];
            }
    }
}

/* L19: hi + lo += Aᵀ·B (A mi×w, B mi×d) in partials of UD rows, each added by Sum2, by tiles of KT keys;
 * big: KT×d doubles */
static void sum2_tn(double *hi, double *lo, const double *A, const double *B, int mi, int w, int d, double *big)
{
    for (int j0 = 0; j0 < w; j0 += KT) {
        int mj = w - j0 < KT ? w - j0 : KT;
        for (int r0 = 0; r0 < mi; r0 += UD) {
            int mr = mi - r0 < UD ? mi - r0 : UD;
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, mj, d, mr, 1.0, A + (size_t)r0 * w + j0, w,
                        B + (size_t)r0 * d, d, 0.0, big, d);
            sum2_add(hi + (size_t)j0 * d, lo + (size_t)j0 * d, big, (size_t)mj * d);
        }
    }
}

/* one block: dQ̂'s rows and their bounds, and the thread's Û, E_U, V̂, E_V (L11, L12, L15) */
static void block(ghead_t *hd, int i0, int mi, double *Pm, double *G, double *Z, double *buf, rowx_t *rx,
                  double *acc, double *big)
{
    const cert_prob_t *p = hd->ps.p;
    int n = p->n, d = p->d, w = p->causal ? i0 + mi : n;
    size_t nd = (size_t)n * d;
    double kap[GB];
    double *T = buf, *tmp = buf + (size_t)GB * d, *ET = buf + 2 * (size_t)GB * d, *y = ET + (size_t)GB * d,
           *ey = y + d, *part = ey + d + GB;
    block_ds(hd, i0, mi, w, Pm, G, Z, kap, rx, part);
    const double *Qb = hd->ps.Qr + (size_t)i0 * d, *Wqb = hd->Wq + (size_t)i0 * d, *dOb = hd->dO + (size_t)i0 * d;
    if (hd->ps.W) {
        w_products(hd, i0, mi, w, G, Z, T, ET, acc, acc + nd, part, hd->dw ? acc + 6 * nd : NULL);
    } else { /* L19: partials of depth TG (T) and GB (Û), summed by Sum2 */
        double *Tlo = big + nd;
        memset(T, 0, sizeof(double) * mi * d);
        memset(Tlo, 0, sizeof(double) * mi * d);
        for (int j0 = 0; j0 < w; j0 += TG) {
            int mj = w - j0 < TG ? w - j0 : TG;
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mi, d, mj, 1.0, G + j0, w,
                        hd->ps.Kr + (size_t)j0 * d, d, 0.0, tmp, d);
            sum2_add(T, Tlo, tmp, (size_t)mi * d);
        }
        for (int t = 0; t < mi * d; t++)
            T[t] += Tlo[t];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mi, d, w, 1.0, Z, w, hd->Wk, d, 0.0, ET, d);
        sum2_tn(acc, acc + 4 * nd, G, Qb, mi, w, d, big);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, w, d, mi, 1.0, Z, w, Wqb, d, 1.0, acc + nd, d);
    }
    /* L19's Sum2 leaves u|T̂| (times 1/(1 - u) <= 1.001); a general W's plain sums (L15) are within it too */
    for (int r = 0; r < mi; r++) {
        int i = i0 + r;
        for (int c = 0; c < d; c++)
            ET[(size_t)r * d + c] = pr_certify_up(ET[(size_t)r * d + c] * hd->gbT + hd->etaT +
                                                  1.001 * p->u * fabs(T[(size_t)r * d + c]));
        scale_rotate(hd->dQ + (size_t)i * d, hd->EQ + (size_t)i * d, T + (size_t)r * d, ET + (size_t)r * d, i, p, y,
                     ey);
    }
    sum2_tn(acc + 2 * nd, acc + 5 * nd, Pm, dOb, mi, w, d, big); /* L19 */
    /* L12: Σ_i (κ_i + γ) P̂_ij |dO_i| */
    for (int r = 0; r < mi; r++)
        for (int c = 0; c < d; c++)
            tmp[(size_t)r * d + c] = (kap[r] + hd->gam) * fabs(dOb[(size_t)r * d + c]) * (1.0 + 0x1p-40);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, w, d, mi, 1.0, Pm, w, tmp, d, 1.0, acc + 3 * nd, d);
}

/* all blocks of one head over the threads: each thread its buffers and its part of the sums */
typedef struct {
    double *Pm, *buf, *acc, *big; /* big: a block's n×d product, then T's Sum2 errors (GB×d) */
    rowx_t *rx;
} gthread_t;

static int gthread_init(void *ctx, void **scratch)
{
    ghead_t *hd = ctx;
    int n = hd->ps.p->n, d = hd->ps.p->d;
    gthread_t *th = calloc(1, sizeof *th);
    *scratch = th;
    if (!th)
        return PR_ENOMEM;
    th->acc = hd->acc[omp_get_thread_num()];
    th->Pm = malloc(sizeof(double) * 3 * (size_t)GB * n);
    /* T, tmp, ET (GB×d each), y, ey, then 128 doubles for L13's scores or W's 2·d·JW part (L15) */
    th->buf = malloc(sizeof(double) * (3 * (size_t)GB * d + 2 * d + GB + (hd->ps.W ? 2 * (size_t)d * JW + 128 : 128)));
    th->rx = malloc(sizeof(rowx_t) * GB);
    th->big = malloc(sizeof(double) * ((size_t)n * d + (size_t)GB * d));
    return th->Pm && th->buf && th->rx && th->big ? PR_OK : PR_ENOMEM;
}

static void gthread_block(void *ctx, void *scratch, int b)
{
    ghead_t *hd = ctx;
    gthread_t *th = scratch;
    int n = hd->ps.p->n, i0 = b * GB, mi = n - i0 < GB ? n - i0 : GB;
    block(hd, i0, mi, th->Pm, th->Pm + (size_t)GB * n, th->Pm + 2 * (size_t)GB * n, th->buf, th->rx, th->acc, th->big);
}

static void gthread_done(void *ctx, void *scratch)
{
    gthread_t *th = scratch;
    (void)ctx;
    if (!th)
        return;
    free(th->Pm);
    free(th->buf);
    free(th->big);
    free(th->rx);
    free(th);
}

static int run_head(ghead_t *hd, int nt)
{
    pr_certify_blocks_t B = {hd, gthread_init, gthread_block, gthread_done};
    return pr_certify_run_blocks(&B, (hd->ps.p->n + GB - 1) / GB, nt);
}

/* a result from len values and bounds in rows of width (open elements: E = ∞) */
static void result_len(pr_certify_result_t *res, double *lo, double *hi, unsigned char *st, const double *cand,
                       const double *v, const double *E, long len, int width, const cert_prob_t *p)
{
    pr_certify_judge_d(lo, hi, st, cand, v, E, len, p);
    pr_certify_summarise(res, lo, hi, st, cand, len, width, p->dtype);
    res->rows = len / width;
    res->rows_fallback = 0;
    double bm = 0.0;
    for (long t = 0; t < len; t++)
        bm = E[t] > bm ? E[t] : bm;
    res->bound_max = bm;
}

/* the result of an n×d gradient */
static void result_of(pr_certify_result_t *res, double *lo, double *hi, unsigned char *st, const double *cand,
                      const double *v, const double *E, const cert_prob_t *p)
{
    result_len(res, lo, hi, st, cand, v, E, (long)p->n * p->d, p->d, p);
}

/* dK or dV of the group from the threads' sums (t = 0: Û, 2: V̂) and their bounds (L11, L12, L15): the
 * bound sums' computed values times gb, plus eta */
static void kv_values(double *v, double *E, double **acc, int nt, int t, const cert_prob_t *p, int g, double dOmax,
                      int fail, double gb, double eta)
{
    int n = p->n, d = p->d;
    size_t nd = (size_t)n * d;
    double y[2 * 1024];
    for (int j = 0; j < n; j++) {
        double *vj = v + (size_t)j * d, *Ej = E + (size_t)j * d;
        for (int c = 0; c < d; c++) {
            double s = 0.0, sl = 0.0, e = 0.0; /* L19: the threads' sums and Sum2 errors, by Sum2 */
            for (int k = 0; k < nt; k++) {
                double x[2] = {acc[k][(size_t)t * nd + (size_t)j * d + c],
                               acc[k][(size_t)(4 + t / 2) * nd + (size_t)j * d + c]};
                sum2_add(&s, &sl, x, 1);
                sum2_add(&s, &sl, x + 1, 1);
                e += acc[k][(size_t)(t + 1) * nd + (size_t)j * d + c];
            }
            vj[c] = s + sl;
            Ej[c] = fail ? INFINITY : pr_certify_up(e * gb + eta + 1.001 * p->u * fabs(vj[c]));
            if (t == 2) /* the underflowed weights (L12) */
                Ej[c] = pr_certify_up(Ej[c] + TAU * (double)n * g * dOmax);
        }
        if (t == 0) { /* dK_j = σ R_jᵀ U_j */
            double *T = y, *ET = y + d;
            memcpy(T, vj, sizeof(double) * d);
            memcpy(ET, Ej, sizeof(double) * d);
            double w[2 * 1024];
            scale_rotate(vj, Ej, T, ET, j, p, w, w + d);
        }
    }
}

/* dw_k(ℓ) = σ̂ Σ_threads (the sums of L17) at v[k·L + ℓ + n - 1] (pr_dense_backward's layout), E its bound */
static void dw_values(double *v, double *E, double **acc, int nt, const ghead_t *hd, int fail)
{
    const cert_prob_t *p = hd->ps.p;
    const pr_posw_struct *W = hd->ps.W;
    size_t nd = (size_t)p->n * p->d, L = 2 * (size_t)p->n - 1, sL = (size_t)W->s * L;
    double u = p->u, sg = p->sig, sr = p->sig_rel;
    for (int k = 0; k < W->s; k++)
        for (size_t t = 0; t < L; t++) {
            double T = 0.0, ET = 0.0;
            for (int th = 0; th < nt; th++) {
                T += acc[th][6 * nd + k * L + t];
                ET += acc[th][6 * nd + sL + k * L + t];
            }
            ET = ET * hd->gbW + hd->etaW;
            size_t o = k * L + L - 1 - t; /* wrev's index t is ℓ = n - 1 - t */
            v[o] = sg * T;
            E[o] = fail ? INFINITY : pr_certify_up(sg * ET * (1.0 + sr) + sr * sg * fabs(T) + u * fabs(v[o]) + ETA);
        }
}

/* the depths of the sums of dQ's T and of dK's U and the bounds' factors and underflow allowances
 * (L11; with W, L15), and γ of Z (L11), for g heads over nt threads */
static void depths(ghead_t *hd, const double *Q, const double *K, const pr_posw_struct *W, int g, int nt)
{
    const cert_prob_t *p = hd->ps.p;
    int n = p->n, d = p->d, nb = (n + GB - 1) / GB;
    double u = p->u;
    /* RoPE or identity (L19): dS·K̂'s partials of TG keys, Û's and V̂'s of UD rows, each summed by
       Sum2 (their number below M = ng + 2nt + 64) */
    double kt = n < TG ? n : TG, ku = n < UD ? n : UD, gm = pr_certify_gamma((double)n * g + 2 * nt + 64, u);
    hd->gbT = 1.0 + 2.0 * pr_certify_gamma(n + 2, u);
    hd->etaT = (n + 2) * ETA;
    hd->gbU = 1.0 + 2.0 * pr_certify_gamma((double)n * g + GB + nt + 2, u);
    hd->etaU = (2.0 * n * g + 64) * ETA;
    if (W) {
        /* L15: T's dots of at most JW terms, added up over ⌈n/JW⌉ tiles and the s_a entries of a column a; U's
           parts of GB·s_b terms, added over g·nb blocks and nt threads; two roundings per term, whose
           underflow costs at most η(|last factor| + 2) */
        int sa = 1, sb = 1, ca[1024] = {0}, cb[1024] = {0};
        for (int k = 0; k < W->s; k++) {
            sa = ++ca[W->a[k]] > sa ? ca[W->a[k]] : sa;
            sb = ++cb[W->b[k]] > sb ? cb[W->b[k]] : sb;
        }
        double zmax = 0.0;
        for (size_t t = 0; t < (size_t)n * d; t++)
            zmax = fabs(K[t]) > zmax ? fabs(K[t]) : zmax;
        for (size_t t = 0; t < (size_t)g * n * d; t++)
            zmax = fabs(Q[t]) > zmax ? fabs(Q[t]) : zmax;
        double kT = (n < JW ? n : JW) + (double)((n + JW - 1) / JW) * sa, kU = (double)GB * sb + (double)g * nb + nt;
        hd->gbT = 1.0 + 2.0 * pr_certify_gamma(kT + 2, u);
        hd->etaT = pr_certify_up(2.0 * n * sa * ETA * (zmax + 2.0) + (n + 2) * ETA);
        hd->gbU = 1.0 + 2.0 * pr_certify_gamma(kU + 2, u);
        hd->etaU = pr_certify_up(2.0 * g * n * sb * ETA * (zmax + 2.0) + (2.0 * n * g + 64) * ETA);
        kt = kT > kt ? kT : kt;
        ku = kU > ku ? kU : ku;
        if (hd->dw) { /* L17: one term per row of each head, summed along, then over the threads */
            double kW = (double)g * n + nt;
            hd->gbW = 1.0 + 2.0 * pr_certify_gamma(kW + 2, u);
            hd->etaW = pr_certify_up(2.0 * g * n * ETA * (zmax + 2.0));
            ku = kW > ku ? kW : ku;
        }
    }
    hd->gam = pr_certify_up(pr_certify_gamma((kt > ku ? kt : ku) + 2, u) + 3.0 * gm * gm);
}

int pr_certify_grad_group(pr_certify_result_t *res, int *open, const double *dQc, const double *dKc,
                          const double *dVc, const double *dwc, const double *Q, const double *K, const double *V,
                          const double *dO, const pr_posw_struct *W, int g, const cert_prob_t *p, double budget_s,
                          cert_kvkeep_t *keep)
{
    int n = p->n, d = p->d, nt = omp_get_max_threads(), st = PR_OK;
    size_t nd = (size_t)n * d, sL = W ? (size_t)W->s * (2 * (size_t)n - 1) : 0;
    if (d > 1024 || (dwc && !W))
        return PR_EINVAL;
    cexp_t ex;
    if ((st = pr_certify_exp_init(&ex, p->u)))
        return st;
    ghead_t hd;
    memset(&hd, 0, sizeof(hd));
    hd.dw = dwc != NULL;
    nt = nt > 64 ? 64 : nt;
    size_t per = 6 * nd + (hd.dw ? 2 * sL : 0); /* a thread's sums */
    double *acc_all = calloc((size_t)nt * per, sizeof(double)), *acc[64];
    hd.ndO = malloc(sizeof(double) * n);
    hd.nV = malloc(sizeof(double) * n);
    hd.Wq = malloc(sizeof(double) * nd);
    hd.Wk = malloc(sizeof(double) * nd);
    hd.dQ = malloc(sizeof(double) * nd);
    hd.EQ = malloc(sizeof(double) * nd);
    hd.qopen = malloc(n);
    if (!W) {
        hd.Kht = malloc(sizeof(double) * nd);
        hd.Klt = malloc(sizeof(double) * nd);
        hd.Qh = malloc(sizeof(double) * nd);
        hd.Ql = malloc(sizeof(double) * nd);
    }
    hd.Vt = malloc(sizeof(double) * nd);
    size_t nb = nd > sL ? nd : sL; /* the results' buffers: n×d, or dw's s×(2n-1) */
    double *lo = malloc(sizeof(double) * nb), *hi = malloc(sizeof(double) * nb);
    unsigned char *sb = malloc(nb);
    if (!acc_all || !hd.ndO || !hd.nV || !hd.Wq || !hd.Wk || !hd.dQ || !hd.EQ || !hd.qopen || !lo || !hi || !sb ||
        (!W && (!hd.Kht || !hd.Klt || !hd.Qh || !hd.Ql)) || !hd.Vt)
        st = PR_ENOMEM;
    else
        transpose(hd.Vt, V, n, d);
    if (!st && !W) { /* L21: K rotated in double-double, transposed (Qh, Ql as scratch) */
        pr_certify_rotate_dd(hd.Qh, hd.Ql, K, p);
        transpose(hd.Kht, hd.Qh, n, d);
        transpose(hd.Klt, hd.Ql, n, d);
    }
    for (int k = 0; k < nt && !st; k++)
        acc[k] = acc_all + (size_t)k * per;
    hd.acc = acc;
    int fail = 0;
    long nopen = 0;
    hd.ps.p = p;
    depths(&hd, Q, K, W, g, nt);
    double dOmax = 0.0;
    if (!st)
        pr_certify_norms_up(hd.nV, V, n, d, p->u);
    for (int h = 0; h < g && !st; h++) {
        const double *Qh = Q + (size_t)h * nd;
        hd.dO = dO + (size_t)h * nd;
        hd.fail = 0;
        memset(hd.qopen, 0, n);
        hd.enc = keep ? keep->enc + (size_t)h * n : NULL;
        if (hd.enc)
            memset(hd.enc, 0, sizeof(cert_rowenc_t) * n); /* ok = 0 until the pass bounds the row */
        if (!(st = pr_certify_pass_setup(&hd.ps, p, &ex, NULL, Qh, K, V, W))) {
            pr_certify_norms_up(hd.ndO, hd.dO, n, d, p->u);
            if (!W) { /* L21: Q rotated in double-double and the scores' constants */
                pr_certify_rotate_dd(hd.Qh, hd.Ql, Qh, p);
                st = pr_certify_dd_setup(&hd.dd, p, hd.Qh, hd.ps.Kr);
                weights(hd.Wq, hd.ps.Qr, Qh, p, hd.gam);
                weights(hd.Wk, hd.ps.Kr, K, p, hd.gam);
            }
            st = st ? st : run_head(&hd, nt);
        } else if (st == PR_EDOMAIN) { /* scores past 2^500: nothing bounded here, all open */
            st = PR_OK;
            hd.fail = 1;
            memset(hd.qopen, 1, n);
            memset(hd.dQ, 0, sizeof(double) * nd);
        }
        pr_certify_pass_clear(&hd.ps);
        fail |= hd.fail;
        for (size_t t = 0; t < nd && !st; t++)
            dOmax = fabs(hd.dO[t]) > dOmax ? fabs(hd.dO[t]) : dOmax;
        for (int i = 0; i < n && !st; i++)
            for (int c = 0; hd.qopen[i] && c < d; c++)
                hd.EQ[(size_t)i * d + c] = INFINITY;
        if (!st && dQc) {
            pr_certify_result_t *rq = res + 3 * (size_t)h;
            result_of(rq, lo, hi, sb, dQc + (size_t)h * nd, hd.dQ, hd.EQ, p);
            if ((rq->verdict == PR_CERT_UNKNOWN || pr_certify_result_loose(rq)) && budget_s > 0.0)
                st = pr_certify_grad_rows_arb(rq, lo, hi, sb, dQc + (size_t)h * nd, Qh, K, V, hd.dO, W, p, budget_s);
            nopen += rq->verdict == PR_CERT_UNKNOWN;
        }
    }
    /* V̂'s depth: min(n, GB) + g·nb + nt, as Û's without W (L12) */
    double vgb = 1.0 + 2.0 * pr_certify_gamma((double)n * g + GB + nt + 2, p->u), veta = (2.0 * n * g + 64) * ETA;
    for (int t = 0; t < 2 && !st; t++) {
        const double *cand = t ? dVc : dKc;
        if (!cand)
            continue;
        kv_values(hd.dQ, hd.EQ, acc, nt, 2 * t, p, g, dOmax, fail, t ? vgb : hd.gbU, t ? veta : hd.etaU);
        result_of(res + 1 + t, lo, hi, sb, cand, hd.dQ, hd.EQ, p);
        if (keep) {
            memcpy(keep->kv + 2 * t * nd, hd.dQ, sizeof(double) * nd);
            memcpy(keep->kv + (2 * t + 1) * nd, hd.EQ, sizeof(double) * nd);
        }
        nopen += res[1 + t].verdict == PR_CERT_UNKNOWN;
    }
    if (!st && dwc) { /* res[3g]: dw (L17), no Arb fallback */
        double *v = malloc(sizeof(double) * sL), *E = malloc(sizeof(double) * sL);
        if (v && E) {
            hd.ps.p = p;
            hd.ps.W = W;
            dw_values(v, E, acc, nt, &hd, fail);
            result_len(res + 3 * (size_t)g, lo, hi, sb, dwc, v, E, (long)sL, (int)(2 * n - 1), p); /* rows of 2n-1 offsets; s may be 0 */
        } else {
            st = PR_ENOMEM;
        }
        free(v);
        free(E);
    }
    *open = nopen > 0;
    free(acc_all);
    free(hd.ndO);
    free(hd.nV);
    free(hd.Wq);
    free(hd.Wk);
    free(hd.dQ);
    free(hd.EQ);
    free(hd.qopen);
    free(hd.Kht);
    free(hd.Klt);
    free(hd.Qh);
    free(hd.Ql);
    free(hd.Vt);
    free(lo);
    free(hi);
    free(sb);
    return st;
}
