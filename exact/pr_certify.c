/* pr_certify: the double pass with its rigorous a-posteriori bound (docs/certify.md L1-L5),
 * the Arb fallback rows, and the API of pr_certify.h. */
#include <fenv.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <omp.h>
#include "pr_status.h"
#include "pr_attn.h"
#include "pr_rope.h"
#include "pr_timing.h"
#include "pr_vec.h"
#include "pr_certexp.h"
#include "pr_certify_impl.h"

#define BI 32            /* rows per block of the double pass */
#define EXP_R 0.35
#define EXP_UNDER (-700.0) /* below: ê = 0, e^x <= e^-700·e^Δ (L3) */

double pr_certify_up(double x) { return nextafter(x * (1.0 + 0x1p-40), INFINITY); }
double pr_certify_down(double x)
{
    double y = nextafter(x * (1.0 - 0x1p-40), -INFINITY);
    return y > 0.0 ? y : 0.0;
}

/* γ_k = k u / (1 - k u), rounded up (L2) */
double pr_certify_underflow_carry(double a, double z)
{
    return pr_certify_up(pr_certify_up(pr_certify_up(a) * ETA) * z);
}

double pr_certify_gamma(double k, double u) { return pr_certify_up(k * u / (1.0 - k * u)); }


int pr_certify_exp_init(cexp_t *e, double u)
{
    arb_t t, f;
    arb_init(t);
    arb_init(f);
    for (int k = 0; k <= EXP_DEG; k++) {
        arb_fac_ui(f, (ulong)k, 128);
        arb_inv(t, f, 128);
        e->c[k] = arf_get_d(arb_midref(t), ARF_RND_NEAR);
    }
    arb_const_log2(t, 192);
    e->l1 = ldexp(floor(ldexp(arf_get_d(arb_midref(t), ARF_RND_DOWN), 32)), -32);
    cert_sub_d(t, t, e->l1, 192);
    e->l2 = arf_get_d(arb_midref(t), ARF_RND_NEAR);
    cert_sub_d(t, t, e->l2, 192);
    double tail = arf_get_d(arb_midref(t), ARF_RND_UP);
    int ok = fabs(tail) + mag_get_d(arb_radref(t)) < 0x1p-85;
    arb_clear(t);
    arb_clear(f);
    if (!ok)
        return PR_EPREC;
    pr_certexp_t r;
    pr_certexp_init(r);
    int st = pr_certexp_sup_d(r, e->c, EXP_DEG, PR_EXPOLY_EXP_REL, EXP_R, 0x1p-57, 0);
    double ep = st ? INFINITY : arf_get_d(arb_midref(r->bound), ARF_RND_UP) + mag_get_d(arb_radref(r->bound));
    int verdict = r->verdict;
    pr_certexp_clear(r);
    if (st)
        return st;
    if (verdict != PR_CERT_CERTIFIED)
        return PR_EPREC;
    /* |r̂ - r| <= u(|t| + |k l2| + |r̂|) + |k| 2^-85 <= 0.75u + 2^-70 for |k| <= 1011 (L3) */
    double er = 0.75 * u + 0x1p-70;
    /* Horner's rounding (Higham, eq. 5.3): |p̂ - p| <= Σ_k γ_{2k+1} |c_k| |r̂|^k (c_0's γ_1 is the last addition),
       with |r̂| <= 0.35, relative to p(r̂) >= e^-0.35 (1 - ε_p); no libm in a bound: e^0.35 < √2.0138 < 1.4191
       (e^0.7 < 2.0138); 1e-300 covers an underflowing power of r̂ */
    double horner = 0.0, rk = 1.0;
    for (int k = 0; k <= EXP_DEG; k++, rk *= 0.35)
        horner += pr_certify_gamma(2 * k + 1, u) * fabs(e->c[k]) * rk;
    horner = pr_certify_up(horner * 1.4191 / (1.0 - ep) + 1e-300);
    /* Π(1 + x_i) - 1 <= e^S - 1 <= S(1 + S) for S = Σ x_i <= 1: no 1 + x rounded to a multiple of 2u */
    double S = ep + horner + 2.0 * er;
    e->eps = pr_certify_up(S * (1.0 + S) * 1.01 + 1e-300);
    /* L21: r_h + r_l by error-free transformations (|r_l| <= 1.07u, its error γ_3·1.06u + |k|2^-85), p(r_h) by
       compensated Horner (Graillat, Langlois and Louvet: p(r_h) = p_h + c*, |c*| <= γ_28 p̃, |ĉ - c*| <= γ_28² p̃,
       p̃ = Σ|c_k| 0.36^k), ê = fl(p_h + fl(ĉ + fl(p_h r_l))) >= 0.70 relative to q = p(r_h)(1 + r_l) */
    double g28 = pr_certify_gamma(2 * EXP_DEG, u), g2 = pr_certify_gamma(2, u), rl = 1.07 * u, pt = 0.0;
    rk = 1.0;
    for (int k = 0; k <= EXP_DEG; k++, rk *= 0.36)
        pt += fabs(e->c[k]) * rk;
    pt = pr_certify_up(pt * (1.0 + pr_certify_gamma(2 * EXP_DEG + 2, u)));
    double rest = g28 * g28 * pt + g28 * pt * rl + g2 * (2.0 * g28 * pt + pt * (1.0 + g28) * rl);
    double thc = (u + rest / 0.70) / (1.0 - u), psi = 2.0 * rl * rl;
    double erc = pr_certify_gamma(3, u) * 1.06 * u + 0x1p-75;
    S = 2.0 * erc + ep + thc + psi / (1.0 - psi);
    e->eps2 = pr_certify_up(S * (1.0 + S) * 1.01 + 1e-300);
    return PR_OK;
}



void pr_certify_rotate_d(double *Xr, const double *X, const cert_prob_t *p)
{
    int n = p->n, d = p->d;
    if (!p->rope) {
        memcpy(Xr, X, sizeof(double) * (size_t)n * d);
        return;
    }
    for (int m = 0; m < n; m++) {
        const double *x = X + (size_t)m * d;
        double *y = Xr + (size_t)m * d;
        for (int k = 0; k < p->h; k++) {
            int a, b;
            pr_rope_pair(&a, &b, k, d, (pr_rope_layout_t)p->layout);
            double c = p->ch[(size_t)m * p->h + k], s = p->sh[(size_t)m * p->h + k];
            y[a] = x[a] * c - x[b] * s;
            y[b] = x[a] * s + x[b] * c;
        }
    }
}

/* upper bounds of the rows' 2-norms: Σ (x/2^e)² with 2^e the row's largest |x| (exact scaling, so
 * no square underflows or overflows unless it is below 2^-1000 of the largest, covered by d·2^-1000) */
void pr_certify_norms_up(double *nr, const double *X, int n, int d, double u)
{
    double f = 1.0 + (d + 4) * u;
    for (int i = 0; i < n; i++) {
        const double *x = X + (size_t)i * d;
        double mx = 0.0, s = 0.0;
        for (int c = 0; c < d; c++)
            mx = fabs(x[c]) > mx ? fabs(x[c]) : mx;
        if (mx == 0.0) {
            nr[i] = 0.0;
            continue;
        }
        int e = ilogb(mx);
        for (int c = 0; c < d; c++) {
            double y = ldexp(x[c], -e);
            s += y * y;
        }
        nr[i] = pr_certify_up(ldexp(sqrt(s) * f + d * 0x1p-1000, e));
    }
}


/* row i: scores s[0..jn) in, ê_j out (zero from jn to the block's width w) (L2-L4); om: a general
 * W's factor om[ℓ+n-1] of the score bound (L13), NULL for RoPE or identity (inlined twice) */
static inline void row_exps(rowx_t *rx, const pass_t *ps, int i, double *s, int jn, int w, const double *om)
{
    const cert_prob_t *p = ps->p;
    double u = p->u, kap = pr_certify_up(pr_certify_up(ps->cs * p->sig) * ps->nQ[i]), al = p->alibi;
    double eps = ps->ex->eps;
    double mx = -INFINITY, lam = 0.0, dmax = 0.0, under = 0.0;
    const double *nK = ps->nK, *omi = om ? om + p->n - 1 + i : NULL;
    const cexp_t *ex = ps->ex;
    for (int j = 0; j < jn; j++) {
        s[j] -= al * (double)labs((long)i - j);
        mx = s[j] > mx ? s[j] : mx;
    }
    /* nK·om underflowed by at most η, then times κ (L13) */
    double tiny = om ? ps->tiny + pr_certify_up(kap * ETA) : ps->tiny;
#pragma omp simd reduction(+ : lam, under) reduction(max : dmax)
    for (int j = 0; j < jn; j++) {
        double b = al * (double)labs((long)i - j), x = s[j] - mx;
        double dl = kap * (om ? nK[j] * omi[-j] : nK[j]) + u * (b + fabs(s[j]) + fabs(x)) + tiny;
        dmax = dl > dmax ? dl : dmax;
        int lo = x < EXP_UNDER;
        double e = pr_certify_exp_eval(ex, lo ? 0.0 : x);
        e = lo ? 0.0 : e;
        under += lo;
        lam += (eps + (1.0 + eps) * (dl + dl * dl)) * e;
        s[j] = e;
    }
    for (int j = jn; j < w; j++)
        s[j] = 0.0;
    rx->lam = lam;
    dmax = pr_certify_up(dmax); /* Δ_j's own roundings (L2's rule) */
    rx->lmax = pr_certify_up(eps + (1.0 + eps) * (dmax + dmax * dmax));
    rx->under = under;
    rx->shift = mx;
    rx->fail = !(dmax <= 0.5) || !isfinite(mx);
}

void pr_certify_row_exps(rowx_t *rx, const pass_t *ps, int i, double *s, int jn, int w)
{
    if (ps->om)
        row_exps(rx, ps, i, s, jn, w, ps->om);
    else
        row_exps(rx, ps, i, s, jn, w, NULL);
}

/* row i's Ô_c = acc_c/S and its bound E_c >= |Ô_c - O_c| (L4, L5) for a row the pass could bound */
static void row_oerr(double *o, double *E, const pass_t *ps, const rowx_t *rx, const double *acc, double S,
                     int jn)
{
    const cert_prob_t *p = ps->p;
    double u = p->u, eta = 0x1p-1021;
    double gk = pr_certify_gamma((jn < TJ ? jn : TJ) + (jn + TJ - 1) / TJ + 1, u);
    double Sl = pr_certify_down(S * (1.0 - gk));
    /* L4: Σ_j |ê_j - A*_j| <= Λ/(1 - λmax) + (underflowed terms)·e^-699 */
    /* Λ: jn terms of ~10 roundings each, summed one after another: within (1 + γ_{jn+10}) */
    double lam = rx->lam * (1.0 + pr_certify_gamma(jn + 10, u));
    double dev = pr_certify_up((lam / (1.0 - rx->lmax) + rx->under * 0x1p-1008) / Sl); /* e^-699 < 2^-1008 */
    double e5 = pr_certify_up(2.0 * gk / (1.0 - gk));
    for (int c = 0; c < p->d; c++) {
        o[c] = acc[c] / S;
        E[c] = pr_certify_up(dev * ps->vrange[c] + e5 * ps->vabs[c] + u * fabs(o[c]) + (jn + 2) * eta);
    }
}

/* row i's bounds from Ô's numerators acc[0..d) and denominator S (L4, L5) */
static void row_bounds(pass_t *ps, int i, const rowx_t *rx, const double *acc, double S, int jn, double *oE)
{
    const cert_prob_t *p = ps->p;
    int d = p->d;
    double *lo = ps->lo + (size_t)i * d, *hi = ps->hi + (size_t)i * d;
    unsigned char *st = ps->state + (size_t)i * d;
    if (rx->fail) {
        ps->rowfail[i] = 1;
        for (int c = 0; c < d; c++) {
            lo[c] = 0.0;
            hi[c] = INFINITY;
            st[c] = CERT_OPEN;
        }
        return;
    }
    row_oerr(oE, oE + d, ps, rx, acc, S, jn);
    pr_certify_judge_d(lo, hi, st, ps->Oc + (size_t)i * d, oE, oE + d, d, p);
    for (int c = 0; c < d; c++)
        if (oE[d + c] > ps->bound_max)
            ps->bound_max = oE[d + c];
}

/* the verdict of each element from a double value v and its bound E (L5's rule) */
void pr_certify_judge_d(double *lo, double *hi, unsigned char *state, const double *cand, const double *v,
                        const double *E, long len, const cert_prob_t *p)
{
    double u = p->u;
    for (long k = 0; k < len; k++) {
        double e = E[k] <= 1e300 ? E[k] : INFINITY;
        if (!isfinite(cand[k])) {
            lo[k] = hi[k] = INFINITY;
            state[k] = CERT_BAD;
            continue;
        }
        if (!isfinite(e) || !isfinite(v[k])) {
            lo[k] = 0.0;
            hi[k] = INFINITY;
            state[k] = CERT_OPEN;
            continue;
        }
        double diff = fabs(cand[k] - v[k]);
        hi[k] = pr_certify_up(diff * (1.0 + u) + e);
        lo[k] = pr_certify_down(diff * (1.0 - u) - e);
        double tlo = pr_certify_down(p->atol + p->rtol * pr_certify_down(fabs(v[k]) * (1.0 - u) - e));
        double thi = pr_certify_up(p->atol + p->rtol * (fabs(v[k]) * (1.0 + u) + e));
        state[k] = hi[k] <= tlo ? CERT_OK : lo[k] > thi ? CERT_BAD : CERT_OPEN;
    }
}

/* acc = Ê·V (mi×d) and sum = Ê·1 from the weights E (mi×w) in partial sums of TJ terms (L5) */
static void pv(double *acc, double *sum, double *tmp, const double *E, const double *V, int mi, int w, int d)
{
    memset(acc, 0, sizeof(double) * mi * d);
    memset(sum, 0, sizeof(double) * mi);
    for (int j0 = 0; j0 < w; j0 += TJ) {
        int mj = w - j0 < TJ ? w - j0 : TJ;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mi, d, mj, 1.0, E + j0, w, V + (size_t)j0 * d, d,
                    0.0, tmp, d);
        for (int r = 0; r < mi; r++) {
            const double *e = E + (size_t)r * w + j0;
            double sp = 0.0;
            for (int j = 0; j < mj; j++)
                sp += e[j];
            sum[r] += sp;
        }
        for (int t = 0; t < mi * d; t++)
            acc[t] += tmp[t];
    }
}

/* rows i0..i0+mi: scores, exponentials, N = Ê·V and S = Σ ê in partial sums of TJ terms (L5) */
static void pass_block(pass_t *ps, int i0, int mi, double *S, double *tmp, double *acc, double *sum, rowx_t *rx)
{
    const cert_prob_t *p = ps->p;
    int n = p->n, d = p->d, w = p->causal ? i0 + mi : n;
    if (ps->W)
        pr_certify_w_scores(S, tmp, ps, i0, mi, w); /* tmp is free until pv */
    else
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mi, w, d, p->sig, ps->Qr + (size_t)i0 * d, d, ps->Kr,
                    d, 0.0, S, w);
    for (int r = 0; r < mi; r++)
        pr_certify_row_exps(rx + r, ps, i0 + r, S + (size_t)r * w, p->causal ? i0 + r + 1 : n, w);
    pv(acc, sum, tmp, S, ps->V, mi, w, d);
    for (int r = 0; r < mi; r++)
        row_bounds(ps, i0 + r, rx + r, acc + (size_t)r * d, sum[r], p->causal ? i0 + r + 1 : n, tmp);
}

int pr_certify_run_blocks(const pr_certify_blocks_t *B, int nb, int nthreads)
{
    int shared = PR_OK;
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
#pragma omp parallel num_threads(nthreads > 0 ? nthreads : omp_get_max_threads())
    {
        void *scratch = NULL;
        int mine = B->init(B->ctx, &scratch);
        pr_certify_fenv_t env; /* each thread its own */
        int envst = pr_certify_fenv_enter(&env);
        mine = mine ? mine : envst;
#pragma omp for schedule(dynamic, 1)
        for (int b = 0; b < nb; b++)
            if (!mine)
                B->block(B->ctx, scratch, b);
        mine = pr_certify_fenv_leave(mine, &env);
        B->done(B->ctx, scratch);
        if (mine) {
#pragma omp critical(pr_certify_blocks_status)
            shared = mine;
        }
    }
    openblas_set_num_threads(saved);
    return shared;
}

/* the double pass over all rows: one thread's copy of the pass (its own bound_max) and buffers */
typedef struct {
    pass_t me;
    double *S, *tmp;
    rowx_t *rx;
} pass_thread_t;

static int pass_thread_init(void *ctx, void **scratch)
{
    const pass_t *ps = ctx;
    int n = ps->p->n, d = ps->p->d;
    size_t nt = 2 * BI * (size_t)d + BI; /* and at least pr_certify_w_scores' 128 */
    pass_thread_t *th = calloc(1, sizeof *th);
    *scratch = th;
    if (!th)
        return PR_ENOMEM;
    th->me = *ps;
    th->me.bound_max = 0.0;
    th->S = malloc(sizeof(double) * (size_t)BI * n);
    th->tmp = malloc(sizeof(double) * (nt > 128 ? nt : 128));
    th->rx = malloc(sizeof(rowx_t) * BI);
    return th->S && th->tmp && th->rx ? PR_OK : PR_ENOMEM;
}

static void pass_thread_block(void *ctx, void *scratch, int b)
{
    pass_thread_t *th = scratch;
    int n = th->me.p->n, d = th->me.p->d, i0 = b * BI, mi = n - i0 < BI ? n - i0 : BI;
    (void)ctx;
    pass_block(&th->me, i0, mi, th->S, th->tmp, th->tmp + BI * (size_t)d, th->tmp + 2 * BI * (size_t)d, th->rx);
}

static void pass_thread_done(void *ctx, void *scratch)
{
    pass_t *ps = ctx;
    pass_thread_t *th = scratch;
    if (!th)
        return;
#pragma omp critical(pr_certify_pass_max)
    ps->bound_max = th->me.bound_max > ps->bound_max ? th->me.bound_max : ps->bound_max;
    free(th->S);
    free(th->tmp);
    free(th->rx);
    free(th);
}

/* every thread copies *ps in init before any reaches done (the blocks' loop ends in a barrier),
 * so bound_max may be reset here and maximised in done */
static int pass_run(pass_t *ps)
{
    ps->bound_max = 0.0;
    pr_certify_blocks_t B = {ps, pass_thread_init, pass_thread_block, pass_thread_done};
    return pr_certify_run_blocks(&B, (ps->p->n + BI - 1) / BI, 0);
}

/* L2's constant: |M̂_ij - M_ij| <= cs·σ̂·‖Q_i‖·‖K_j‖ for the bias-free score */
double pr_certify_rho(const cert_prob_t *p)
{
    double u = p->u;
    /* L1: |â - a| <= ρ(|x| + |y|), ĉ, ŝ within u + 2^-100 of cos, sin */
    return p->rope ? pr_certify_gamma(2, u) * (1.0 + u + 0x1p-100) + u + 0x1p-100 : 0.0;
}

/* L2's constant */
double pr_certify_score_const(const cert_prob_t *p)
{
    double u = p->u, rho = pr_certify_rho(p);
    double g = 1.0 + 2.0 * rho, sr = p->sig_rel, gd = pr_certify_gamma(p->d + 1, u);
    double c = gd * g * g + sr * g * g + (1.0 + sr) * (2.0 * rho * g + 2.0 * rho);
    return pr_certify_up(c * 1.001);
}

int pr_certify_pass_setup(pass_t *ps, const cert_prob_t *p, const cexp_t *ex, const double *Oc, const double *Q,
                          const double *K, const double *V, const pr_posw_struct *W)
{
    int n = p->n, d = p->d;
    size_t nd = (size_t)n * d;
    memset(ps, 0, sizeof(*ps));
    ps->p = p;
    ps->ex = ex;
    ps->Oc = Oc;
    ps->V = V;
    ps->Qr = malloc(sizeof(double) * nd);
    ps->Kr = malloc(sizeof(double) * nd);
    ps->nQ = malloc(sizeof(double) * n);
    ps->nK = malloc(sizeof(double) * n);
    ps->vrange = malloc(sizeof(double) * d);
    ps->vabs = malloc(sizeof(double) * d);
    ps->lo = malloc(sizeof(double) * nd);
    ps->hi = malloc(sizeof(double) * nd);
    ps->state = malloc(nd);
    ps->rowfail = calloc((size_t)n, 1);
    if (!ps->Qr || !ps->Kr || !ps->nQ || !ps->nK || !ps->vrange || !ps->vabs || !ps->lo || !ps->hi ||
        !ps->state || !ps->rowfail)
        return PR_ENOMEM;
    pr_certify_rotate_d(ps->Qr, Q, p);
    pr_certify_rotate_d(ps->Kr, K, p);
    pr_certify_norms_up(ps->nQ, Q, n, d, p->u);
    pr_certify_norms_up(ps->nK, K, n, d, p->u);
    for (int c = 0; c < d; c++) {
        double mn = INFINITY, mx = -INFINITY, ab = 0.0;
        for (int j = 0; j < n; j++) {
            double v = V[(size_t)j * d + c];
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
            ab = fabs(v) > ab ? fabs(v) : ab;
        }
        ps->vrange[c] = pr_certify_up(mx - mn);
        ps->vabs[c] = ab;
    }
    ps->cs = pr_certify_score_const(p);
    /* L2: the products' underflow, d + 3 of η, times σ̂ when σ̂ > 1; a rotated entry's underflow
     * times the other side's largest entry */
    ps->tiny = pr_certify_up((d + 3) * ETA * (p->sig > 1.0 ? p->sig : 1.0)) +
               pr_certify_underflow_carry(p->sig * 2.0 * d, pr_vec_max_abs(ps->Qr, nd) + pr_vec_max_abs(ps->Kr, nd));
    double om = 1.0;
    int st = W ? pr_certify_w_setup(ps, &om, W, K) : PR_OK;
    if (st)
        return st;
    /* scores beyond 2^500 leave no room for the bounds: refuse (docs/certify.md) */
    double qm = 0.0, km = 0.0;
    for (int i = 0; i < n; i++) {
        qm = ps->nQ[i] > qm ? ps->nQ[i] : qm;
        km = ps->nK[i] > km ? ps->nK[i] : km;
    }
    /* rounded up at each product: an underflowed σ̂·qm must not hide a large km·om */
    double top = pr_certify_up(pr_certify_up(pr_certify_up(p->sig * qm) * km) * om);
    if (!(top < 0x1p500) || !(p->alibi * n < 0x1p500))
        return PR_EDOMAIN;
    return PR_OK;
}

void pr_certify_pass_clear(pass_t *ps)
{
    free(ps->Qr);
    free(ps->Kr);
    free(ps->nQ);
    free(ps->nK);
    free(ps->vrange);
    free(ps->vabs);
    free(ps->lo);
    free(ps->hi);
    free(ps->state);
    free(ps->rowfail);
    free(ps->Kt);
    free(ps->wrev);
    free(ps->om);
}

/* the Arb fallback (L6): K rotated and V as balls, built at the first row that needs them */
typedef struct {
    arb_ptr Kr, Vb, Qs, O;
    arb_t sig;
    int ready;
} fallback_t;

static int fallback_row(fallback_t *fb, pass_t *ps, const double *Q, const double *K, int i)
{
    const cert_prob_t *p = ps->p;
    int n = p->n, d = p->d;
    slong prec = p->prec;
    if (!fb->ready) {
        fb->Kr = ps->W ? NULL : _arb_vec_init((slong)n * d);
        fb->Vb = _arb_vec_init((slong)n * d);
        fb->Qs = _arb_vec_init(d);
        fb->O = _arb_vec_init(d);
        arb_init(fb->sig);
        fb->ready = 1;
        for (int j = 0; !ps->W && j < n; j++)
            pr_certify_rotate_row_arb(fb->Kr + (size_t)j * d, K + (size_t)j * d, j, p, prec);
        for (size_t t = 0; t < (size_t)n * d; t++)
            arb_set_d(fb->Vb + t, ps->V[t]);
        pr_certify_sigma_arb(fb->sig, p, prec);
    }
    int st;
    if (ps->W) {
        st = pr_certify_w_arb_row(fb->O, Q + (size_t)i * d, K, fb->Vb, fb->sig, i, ps, prec);
    } else {
        pr_certify_rotate_row_arb(fb->Qs, Q + (size_t)i * d, i, p, prec);
        _arb_vec_scalar_mul(fb->Qs, fb->Qs, d, fb->sig, prec);
        st = pr_certify_arb_row(fb->O, fb->Qs, fb->Kr, fb->Vb, i, p, prec);
    }
    if (!st)
        pr_certify_judge(ps->lo + (size_t)i * d, ps->hi + (size_t)i * d, ps->state + (size_t)i * d,
                         ps->Oc + (size_t)i * d, fb->O, d, p, prec);
    return st;
}

static void fallback_clear(fallback_t *fb, const pass_t *ps)
{
    int n = ps->p->n, d = ps->p->d;
    if (!fb->ready)
        return;
    if (fb->Kr)
        _arb_vec_clear(fb->Kr, (slong)n * d);
    _arb_vec_clear(fb->Vb, (slong)n * d);
    _arb_vec_clear(fb->Qs, d);
    _arb_vec_clear(fb->O, d);
    arb_clear(fb->sig);
}

typedef struct {
    double u;   /* the row's largest upper bound */
    int i;
} rowkey_t;

static int by_upper_desc(const void *a, const void *b)
{
    double x = ((const rowkey_t *)a)->u, y = ((const rowkey_t *)b)->u;
    return x < y ? 1 : x > y ? -1 : ((const rowkey_t *)a)->i - ((const rowkey_t *)b)->i;
}

int pr_certify_rows_by_upper(int *order, const double *hi, int n, int d)
{
    rowkey_t *key = malloc(sizeof(rowkey_t) * (size_t)n);
    if (!key)
        return PR_ENOMEM;
    for (int i = 0; i < n; i++) {
        double u = 0.0;
        for (int c = 0; c < d; c++)
            u = hi[(size_t)i * d + c] > u ? hi[(size_t)i * d + c] : u;
        key[i].u = u;
        key[i].i = i;
    }
    qsort(key, (size_t)n, sizeof(rowkey_t), by_upper_desc);
    for (int r = 0; r < n; r++)
        order[r] = key[r].i;
    free(key);
    return PR_OK;
}

/* rows whose verdict is open, or loose (pr_certify_row_loose), go to Arb, largest upper bound first,
 * within the time budget */
static int refine(pass_t *ps, const double *Q, const double *K, double budget_s, long *nrows)
{
    const cert_prob_t *p = ps->p;
    int n = p->n, d = p->d, st = PR_OK, refuted = 0;
    double t0 = pr_timing_wall(), L = pr_certify_lower_max(ps->lo, (size_t)n * d);
    int *key = malloc(sizeof(int) * n);
    if (!key || pr_certify_rows_by_upper(key, ps->hi, n, d)) {
        free(key);
        return PR_ENOMEM;
    }
    for (size_t t = 0; t < (size_t)n * d; t++)
        refuted |= ps->state[t] == CERT_BAD;
    fallback_t fb = {0};
    *nrows = 0;
    for (int r = 0; r < n && !st; r++) {
        int i = key[r], open = 0;
        for (int c = 0; c < d; c++)
            open |= ps->state[(size_t)i * d + c] == CERT_OPEN;
        int loose = pr_certify_row_loose(ps->lo + (size_t)i * d, ps->hi + (size_t)i * d, d, L);
        if (!(open && !refuted) && !loose)
            continue;
        if (!(pr_timing_wall() - t0 < budget_s))
            break;
        st = fallback_row(&fb, ps, Q, K, i);
        ++*nrows;
        for (int c = 0; c < d; c++) {
            size_t t = (size_t)i * d + c;
            L = ps->lo[t] > L ? ps->lo[t] : L;
            refuted |= ps->state[t] == CERT_BAD;
        }
    }
    fallback_clear(&fb, ps);
    free(key);
    return st;
}

/* one head: RoPE or identity (W NULL), or a general W (L13, L14) */
static int forward(pr_certify_result_t *res, const double *O_cand, const double *Q, const double *K,
                   const double *V, const pr_posw_struct *W, int n, int d, const pr_certify_problem_t *prob,
                   const pr_certify_opts_t *opts)
{
    double t0 = pr_timing_wall();
    if (!res || !O_cand || !Q || !K || !V || !prob)
        return PR_EINVAL;
    memset(res, 0, sizeof(*res));
    pr_certify_problem_t pb = *prob;
    if (W)
        pb.pos = PR_CERTIFY_POS_IDENTITY; /* W carries the positions */
    cert_prob_t p;
    int st = pr_certify_prob_init(&p, &pb, opts, n, d);
    size_t nd = (size_t)n * d;
    if (!st && W && (W->n != n || W->d != d))
        st = PR_ESHAPE;
    if (!st && (pr_vec_check_finite(Q, nd) || pr_vec_check_finite(K, nd) || pr_vec_check_finite(V, nd) ||
                (W && pr_vec_check_finite(W->w, (size_t)W->s * (2 * (size_t)n - 1)))))
        st = PR_ENONFINITE;
    cexp_t ex;
    pass_t ps;
    memset(&ps, 0, sizeof ps);
    if (!st && !(st = pr_certify_exp_init(&ex, p.u)) && !(st = pr_certify_pass_setup(&ps, &p, &ex, O_cand, Q, K, V, W))
        && !(st = pass_run(&ps)))
        st = refine(&ps, Q, K, opts->max_fallback_s >= 0.0 ? opts->max_fallback_s : 60.0, &res->rows_fallback);
    if (!st) {
        pr_certify_summarise(res, ps.lo, ps.hi, ps.state, O_cand, (long)nd, d, p.dtype);
        res->rows = n;
        res->bound_max = ps.bound_max;
    }
    pr_certify_pass_clear(&ps);
    pr_certify_prob_clear(&p);
    res->time_s = pr_timing_wall() - t0;
    return st;
}

/* the caller's rounding mode and flush-to-zero flags are put aside for the call */
static int forward_env(pr_certify_result_t *res, const double *O_cand, const double *Q, const double *K,
                       const double *V, const pr_posw_struct *W, int n, int d, const pr_certify_problem_t *prob,
                       const pr_certify_opts_t *opts)
{
    pr_certify_fenv_t env;
    int st = pr_certify_fenv_enter(&env);
    if (!st)
        st = forward(res, O_cand, Q, K, V, W, n, d, prob, opts);
    return pr_certify_fenv_leave(st, &env);
}

int pr_certify_forward(pr_certify_result_t *res, const double *O_cand, const double *Q, const double *K,
                       const double *V, int n, int d, const pr_certify_problem_t *prob,
                       const pr_certify_opts_t *opts)
{
    return forward_env(res, O_cand, Q, K, V, NULL, n, d, prob, opts);
}

int pr_certify_forward_posw(pr_certify_result_t *res, const double *O_cand, const double *Q, const double *K,
                            const double *V, const pr_posw_struct *W, int n, int d,
                            const pr_certify_problem_t *prob, const pr_certify_opts_t *opts)
{
    if (!W)
        return PR_EINVAL;
    return forward_env(res, O_cand, Q, K, V, W, n, d, prob, opts);
}

int pr_certify_forward_heads(pr_certify_result_t *res, const double *O_cand, const double *Q, const double *K,
                             const double *V, int batch, int heads, int kv_heads, int n, int d,
                             const pr_certify_problem_t *prob, const pr_certify_opts_t *opts)
{
    if (batch < 1 || heads < 1 || kv_heads < 1 || n < 1 || d < 1)
        return PR_EINVAL;
    if (heads % kv_heads)
        return PR_ESHAPE;
    size_t nd = (size_t)n * d;
    for (long t = 0; t < (long)batch * heads; t++) {
        size_t qo = (size_t)t * nd, ko = (size_t)pr_attn_kv_head(t, heads, kv_heads) * nd;
        int st = pr_certify_forward(res + t, O_cand + qo, Q + qo, K + ko, V + ko, n, d, prob, opts);
        if (st)
            return st;
    }
    return PR_OK;
}

void pr_certify_problem_default(pr_certify_problem_t *prob)
{
    memset(prob, 0, sizeof(*prob));
    prob->pos = PR_CERTIFY_POS_ROPE;
    prob->rope_base = PR_ROPE_BASE_DEFAULT;
    prob->scale = PR_CERTIFY_SCALE_INV_D;
}

void pr_certify_opts_default(pr_certify_opts_t *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->dtype = PR_CERTIFY_FLOAT64;
    opts->max_fallback_s = -1.0;
}
