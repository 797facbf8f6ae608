/* pr_certify internals shared by pr_certify.c (the double pass, docs/certify.md L1-L5),
 * pr_certify_arb.c (the Arb rows and gradients, L6), pr_certify_w.c (a general W, L13-L14) and
 * pr_certify_gradd.c (the gradients in double, L8-L12). Not installed. */
#ifndef PR_CERTIFY_IMPL_H
#define PR_CERTIFY_IMPL_H

#include <fenv.h>
#include <stdint.h>
#include <arb.h>
#include "pr_posw.h"
#include "pr_certify.h"

/* The double passes' bounds hold under round to nearest without flush-to-zero, and Arb assumes
 * the default environment (docs/certify.md): every thread that computes for a certificate runs in
 * FE_DFL_ENV, its own environment put aside. enter: PR_EDOMAIN if it cannot be set (no bound would
 * hold); leave restores what enter saved and returns st, or PR_EDOMAIN if st is PR_OK and the
 * restore failed. */
typedef struct {
    fenv_t env;
    int saved;
} pr_certify_fenv_t;

static inline int pr_certify_fenv_enter(pr_certify_fenv_t *f)
{
    f->saved = fegetenv(&f->env) == 0;
    return f->saved && fesetenv(FE_DFL_ENV) == 0 ? PR_OK : PR_EDOMAIN;
}

static inline int pr_certify_fenv_leave(int st, const pr_certify_fenv_t *f)
{
    return f->saved && fesetenv(&f->env) != 0 && st == PR_OK ? PR_EDOMAIN : st;
}

/* The row blocks of a double pass over OpenMP threads: OpenBLAS serial inside, dynamic schedule,
 * each thread in the certificate's environment (pr_certify_fenv_enter) with its own scratch from
 * init, block(ctx, scratch, b) for each block b < nb it takes, then done(ctx, scratch) (merge and
 * free; every thread runs it). The first failure (init, environment, restore) is returned.
 * nthreads <= 0: OpenMP's default team. */
typedef struct {
    void *ctx;
    int (*init)(void *ctx, void **scratch);
    void (*block)(void *ctx, void *scratch, int b);
    void (*done)(void *ctx, void *scratch);
} pr_certify_blocks_t;

int pr_certify_run_blocks(const pr_certify_blocks_t *B, int nb, int nthreads);

/* ball ⊙ exact double (Arb 2.23 has no _d variants) */
static inline void cert_arb_op_d(arb_t z, const arb_t x, double v, int op, slong prec)
{
    arf_t t;
    arf_init(t);
    arf_set_d(t, v);
    if (op == '+')
        arb_add_arf(z, x, t, prec);
    else if (op == '-')
        arb_sub_arf(z, x, t, prec);
    else if (op == '*')
        arb_mul_arf(z, x, t, prec);
    else
        arb_div_arf(z, x, t, prec);
    arf_clear(t);
}
#define cert_add_d(z, x, v, prec) cert_arb_op_d(z, x, v, '+', prec)
#define cert_sub_d(z, x, v, prec) cert_arb_op_d(z, x, v, '-', prec)
#define cert_mul_d(z, x, v, prec) cert_arb_op_d(z, x, v, '*', prec)
#define cert_div_d(z, x, v, prec) cert_arb_op_d(z, x, v, '/', prec)

/* element states of the verdict */
enum { CERT_OK = 0, CERT_BAD = 1, CERT_OPEN = 2 };

/* The tightening rule (docs/certify.md L6), one for the output's rows, dQ's rows and dK/dV's key rows: a
 * row whose largest upper bound is above L (the largest lower bound over all elements) may hold the
 * largest error; if its enclosure is also wider than PR_CERTIFY_TIGHT relative, its Arb recomputation
 * tightens [lower, upper]. d elements of the row at lo, hi. */
#define PR_CERTIFY_TIGHT 1e-9
static inline int pr_certify_row_loose(const double *lo, const double *hi, int d, double L)
{
    double u = 0.0, l = 0.0;
    for (int c = 0; c < d; c++) {
        u = hi[c] > u ? hi[c] : u;
        l = lo[c] > l ? lo[c] : l;
    }
    return u > L && u - l > PR_CERTIFY_TIGHT * u;
}

/* order: the n rows (d elements each at hi) by their largest upper bound, largest first (ties by index);
 * PR_ENOMEM or PR_OK */
int pr_certify_rows_by_upper(int *order, const double *hi, int n, int d);

/* whether a result's enclosure is wider than PR_CERTIFY_TIGHT relative (its rows may tighten it) */
static inline int pr_certify_result_loose(const pr_certify_result_t *r)
{
    return r->upper - r->lower > PR_CERTIFY_TIGHT * r->upper;
}

/* the largest of m lower bounds (0 if none) */
static inline double pr_certify_lower_max(const double *lo, size_t m)
{
    double L = 0.0;
    for (size_t t = 0; t < m; t++)
        L = lo[t] > L ? lo[t] : L;
    return L;
}

typedef struct {
    int n, d, h;              /* h = d/2 pairs */
    int rope, layout;         /* rope: 1 for the RoPE kinds; layout: pr_rope_layout_t */
    int causal;
    double alibi;             /* slope m (exact double), 0 for none */
    int scale;                /* PR_CERTIFY_SCALE_* */
    double sigma_given;       /* σ for PR_CERTIFY_SCALE_GIVEN */
    double sig;               /* σ̂, the double used by the double pass */
    double sig_rel;           /* |σ̂ - σ| <= sig_rel·σ̂ */
    double *ch, *sh, *cl, *sl; /* cos/sin of m·θ_k as hi + lo, [m*h + k]; NULL without RoPE */
    double tau_lo;            /* |cos - ch - cl|, |sin - sh - sl| <= tau_lo (L1) */
    double u;                 /* unit roundoff of the current rounding mode */
    double atol, rtol;
    int dtype;
    slong prec;
} cert_prob_t;

/* (ch, sh, cl, sl) and σ̂ for prob: the rotation tables from Arb (L1). */
int pr_certify_prob_init(cert_prob_t *p, const pr_certify_problem_t *prob, const pr_certify_opts_t *opts,
                         int n, int d);
void pr_certify_prob_clear(cert_prob_t *p);

/* y = R_m x as balls (x one row of d doubles at position m); identity copies x exactly (L1) */
void pr_certify_rotate_row_arb(arb_ptr y, const double *x, int m, const cert_prob_t *p, slong prec);
/* y = R_m x (sign 1) or R_mᵀ x (sign -1) for a ball row; y may not alias x */
void pr_certify_rotate_balls(arb_ptr y, arb_srcptr x, int m, int sign, const cert_prob_t *p, slong prec);
/* σ as a ball: the real number of its definition */
void pr_certify_sigma_arb(arb_t s, const cert_prob_t *p, slong prec);

/* Arb row i's weights: A[j] ∋ e^{M_ij - shift} for j < jn (unmasked keys), S ∋ Σ_j A[j]; returns jn */
int pr_certify_arb_weights(arb_ptr A, arb_t S, arb_srcptr Qs_i, arb_srcptr Kr, int i, const cert_prob_t *p,
                           slong prec);
/* the same from the scores A[0..jn) ∋ σ-scaled, bias-free M_ij: adds β, shifts, exponentiates */
void pr_certify_arb_softmax(arb_ptr A, arb_t S, int i, int jn, const cert_prob_t *p, slong prec);
/* the same, the shift (the largest midpoint) in mx: A[j] ∋ e^{M_ij - mx} */
void pr_certify_arb_softmax_at(arb_ptr A, arb_t S, arf_t mx, int i, int jn, const cert_prob_t *p, slong prec);
/* O[c] ∋ Σ_j A[j] V_jc / S for the weights of pr_certify_arb_softmax */
void pr_certify_arb_pv(arb_ptr O, arb_srcptr A, const arb_t S, arb_srcptr Vb, int jn, const cert_prob_t *p,
                       slong prec);

/* Arb row i: O[c] ∋ O_true[i, c], from rotated, σ-scaled Qs (row i only read) and K rotated
 * (Kr, n×d) and V balls (n×d) */
int pr_certify_arb_row(arb_ptr O, arb_srcptr Qs_i, arb_srcptr Kr, arb_srcptr Vb, int i,
                       const cert_prob_t *p, slong prec);

/* the bias β_{i-j} as a ball (0 without ALiBi); call only for unmasked (i, j) */
void pr_certify_bias_arb(arb_t b, const cert_prob_t *p, long l, slong prec);

/* |cand - ref| for every element of a ball vector: lower/upper bounds and the verdict state
 * against atol + rtol·|ref| */
void pr_certify_judge(double *lo, double *hi, unsigned char *state, const double *cand, arb_srcptr ref,
                      long len, const cert_prob_t *p, slong prec);

/* the result from per-element bounds (len elements, rows of width d) */
void pr_certify_summarise(pr_certify_result_t *res, const double *lo, const double *hi,
                          const unsigned char *state, const double *cand, long len, int d,
                          int dtype);

double pr_certify_up(double x);    /* an upper bound of a double expression's value x: x(1 + 2^-40)⁺ */
/* η: one operation's absolute error from underflow, taken generously (the true one is 2^-1075) */
#define ETA 0x1p-1021
/* an upper bound of a·η·z for a, z >= 0, each product rounded up: a product that underflowed by up
 * to η and was then multiplied by up to z (docs/certify.md L2, L13) */
double pr_certify_underflow_carry(double a, double z);
double pr_certify_down(double x);  /* a lower bound: x(1 - 2^-40)⁻, 0 if negative */

/* the double pass (pr_certify.c, docs/certify.md L1-L5), shared with the gradients' (L8-L12) */
#define TJ 64            /* key columns per partial sum (L5's depth TJ + ⌈n/TJ⌉) */
#define EXP_DEG 14       /* Taylor degree of e^r on |r| <= EXP_R (L3) */
/* e^x for x in [EXP_UNDER, 0]: 2^k·p(r), r = x - k ln 2 (L3); the constants from exp_init */
typedef struct {
    double c[EXP_DEG + 1];
    double l1, l2;      /* ln 2 ≈ l1 + l2, l1 with 32 significant bits */
    double eps;         /* |ê - e^x| <= eps·e^x */
    double eps2;        /* the same for the compensated e^{x_h + x_l}, |x_l| <= 2^-20 (L21, pr_certify_dd.c) */
} cexp_t;

/* the double pass's per-head data */
typedef struct {
    const cert_prob_t *p;
    const cexp_t *ex;
    const double *Oc, *V;
    double *Qr, *Kr;        /* rotated Q, K (L1) */
    double *nQ, *nK;        /* upper bounds of the rows' 2-norms */
    double *vrange, *vabs;  /* per column: max V - min V, max |V| */
    double cs;              /* score constant of L2: |M̂ - M| <= cs·σ̂·nQ_i·nK_j (·om[i-j+n-1], L13) */
    double tiny;            /* the scores' underflow allowance in Δ (L2, L13) */
    const pr_posw_struct *W; /* a general W (L13), or NULL: RoPE or identity */
    double *Kt, *wrev;      /* W only: K transposed (d×n), w_k reversed (s×(2n-1), as pr_dense) */
    double *om;             /* W only: om[ℓ+n-1] >= ‖|W_ℓ|‖₂ (L13) */
    double *lo, *hi;        /* bounds of |cand - true| per element */
    unsigned char *state;
    unsigned char *rowfail; /* 1: the double pass could not bound this row */
    double bound_max;
} pass_t;

/* what a row's exponentials leave for its bounds (L4) */
typedef struct {
    double lam;    /* Λ = Σ_j λ_j ê_j */
    double lmax;   /* max_j λ_j */
    double under;  /* terms below EXP_UNDER, set to 0 */
    int fail;      /* the double pass cannot bound this row (some Δ_j > 1/2, or no finite score) */
    double shift;  /* m̂_i: x̂_j = fl(M̂_ij - shift) */
} rowx_t;

static inline double pr_certify_exp_eval(const cexp_t *e, double x)
{
    /* trunc is exact: k is within 1 of x/ln 2 - 1/2, so |r| <= 0.3466 < EXP_R (L3) */
    double kd = (double)(long)(x * 1.4426950408889634 - 0.5);
    double r = (x - kd * e->l1) - kd * e->l2;
    double p = e->c[EXP_DEG];
    for (int m = EXP_DEG - 1; m >= 0; m--)
        p = p * r + e->c[m];
    union { uint64_t i; double d; } s;
    s.i = (uint64_t)((long)kd + 1023) << 52;
    return p * s.d;
}

double pr_certify_gamma(double k, double u); /* γ_k rounded up */
double pr_certify_rho(const cert_prob_t *p);  /* L1's ρ (0 without RoPE) */
/* cs of L2 (dgemm scores) */
double pr_certify_score_const(const cert_prob_t *p);
int pr_certify_exp_init(cexp_t *e, double u);
void pr_certify_rotate_d(double *Xr, const double *X, const cert_prob_t *p);
void pr_certify_norms_up(double *nr, const double *X, int n, int d, double u);
void pr_certify_row_exps(rowx_t *rx, const pass_t *ps, int i, double *s, int jn, int w);
/* Oc may be NULL (the gradients' pass); W NULL for RoPE or identity (p's pos), else a general W
 * (p without RoPE) */
int pr_certify_pass_setup(pass_t *ps, const cert_prob_t *p, const cexp_t *ex, const double *Oc, const double *Q,
                          const double *K, const double *V, const pr_posw_struct *W);
void pr_certify_pass_clear(pass_t *ps);
/* the verdict of each element from a double value v and its bound E (L5's rule; E = ∞ or NaN: open) */
void pr_certify_judge_d(double *lo, double *hi, unsigned char *state, const double *cand, const double *v,
                        const double *E, long len, const cert_prob_t *p);

/* a general W (pr_certify_w.c, L13, L14): Kt, wrev, om, cs and tiny of ps for W; *om_max
 * gets the largest om */
int pr_certify_w_setup(pass_t *ps, double *om_max, const pr_posw_struct *W, const double *K);
/* S[r·w + j] = σ̂ ŝ_ij for rows i0..i0+mi and their unmasked keys j (L13), 0 for the masked ones;
 * part: 128 doubles of scratch */
void pr_certify_w_scores(double *S, double *part, const pass_t *ps, int i0, int mi, int w);
/* Arb row i's scores with W (L14): A[j] ∋ σ Q_i W_{i-j} K_jᵀ (bias-free) for the jn unmasked keys; returns jn */
int pr_certify_w_arb_scores(arb_ptr A, const double *Q_i, const double *K, const arb_t sig, int i,
                            const pr_posw_struct *W, const cert_prob_t *p, slong prec);
/* Arb row i with W (L14): O[c] ∋ O_true[i, c], from the doubles Q_i (d), K (n×d), V as balls and σ */
int pr_certify_w_arb_row(arb_ptr O, const double *Q_i, const double *K, arb_srcptr Vb, const arb_t sig, int i,
                         const pass_t *ps, slong prec);

/* what the kv columns' Arb fallback (L20, pr_certify_cols.c) keeps of a group's double pass: per row of each
 * head, l_i = Σ_j e^{M_ij - shift} in [S/((1 + g)(1 + lam)), S/((1 - g)(1 - lam)) + under·2^-1008] and
 * |D̂ - D_i| <= eD (ok = 0: the pass could not bound the row); dK̂, its bound, dV̂, its bound (n×d each, for the
 * candidates given) */
typedef struct {
    double shift, S, g, lam, under, D, eD;
    int ok;
} cert_rowenc_t;

typedef struct {
    cert_rowenc_t *enc; /* g×n, head-major */
    double *kv;         /* 4 n×d */
} cert_kvkeep_t;

/* the gradients' scores in double-double (pr_certify_dd.c, docs/certify.md L21) */
typedef struct {
    double sig_lo, tau_sig; /* |σ - σ̂ - σ_lo| <= τ_σ (0 for a given σ) */
    double rho2, mu;        /* the rotation: |a - a_h - a_l| <= ρ₂(|x| + |y|), |a_l| <= μ(|x| + |y|) */
    double ct, tiny_t;      /* |t_h + t_l - a·b| <= ct·‖Q_i‖‖K_j‖ + tiny_t */
} cert_dd_t;

/* Xh + Xl ≈ the rows of X (n×d) rotated (L21; identity: Xh = X, Xl = 0) */
void pr_certify_rotate_dd(double *Xh, double *Xl, const double *X, const cert_prob_t *p);
/* dd's constants for the rotated rows' hi parts Qh, Kh (n×d) */
int pr_certify_dd_setup(cert_dd_t *dd, const cert_prob_t *p, const double *Qh, const double *Kh);
/* L18: S[r·ld + j] = fl(alpha·Dot2(A_r, B_j)), rows r < mi of A (stride d), keys j < w of Bt (d×n) */
void pr_certify_dot2_rows(double *S, const double *A, const double *Bt, int mi, int w, int ld, int n, int d,
                          double alpha);
/* L21: S + Sl = Dot2 of (A + Al)_r with (Bt + Blt)_j, hi and lo unrounded */
void pr_certify_dot2dd_rows(double *S, double *Sl, const double *A, const double *Al, const double *Bt,
                            const double *Blt, int mi, int w, int ld, int n, int d);
/* e^{x_h + x_l} within eps2 (L21) for x_h in [-700, 0.34], |x_l| <= 2^-20 */
double pr_certify_exp_comp(const cexp_t *e, double xh, double xl);
/* row i's exponentials from its scores' t_h, t_l (L21; rx as pr_certify_row_exps); scr: w doubles */
void pr_certify_row_exps_dd(rowx_t *rx, const pass_t *ps, const cert_dd_t *dd, int i, double *sh, double *sl,
                            double *scr, int jn, int w);

/* one kv group's gradients in double (pr_certify_gradd.c, L8-L12; a general W: L13, L15, else W NULL
 * and p's pos): g query heads at Q, dO (n×d each);
 * res[3h] for head h's dQ, res[1], res[2] for the group's dK, dV (NULL candidates skipped), and with W and
 * dwc (s×(2n-1) as W->w) res[3g] for dw summed over the group (L17, no Arb fallback); dQ rows
 * left open recomputed in Arb within budget_s seconds a head (L7); *open: some verdict is unknown
 * (the whole group's Arb fallback may decide it); keep: NULL, or what L20 needs */
int pr_certify_grad_group(pr_certify_result_t *res, int *open, const double *dQc, const double *dKc,
                          const double *dVc, const double *dwc, const double *Q, const double *K, const double *V,
                          const double *dO, const pr_posw_struct *W, int g, const cert_prob_t *p, double budget_s,
                          cert_kvkeep_t *keep);
/* row i of one head in balls (L7, pr_certify_grad.c): A[j] ∋ e^{M_ij - mx} for the jn unmasked keys (returned),
 * mx the shift, S ∋ l_i = Σ_j A[j], O ∋ O_i (d), r ∋ D_i = ⟨dO_i, O_i⟩; Qs_i = σR_iQ_i and Kr (n×d, R_jK_j) as
 * balls, or with W the doubles Q_i, K; Vb (n×d), dOb_i (d) balls */
int pr_certify_arb_row_stats(arb_ptr A, arb_ptr O, arf_t mx, arb_t S, arb_t r, arb_srcptr Qs_i, const double *Q_i,
                             arb_srcptr dOb_i, const double *K, arb_srcptr Kr, arb_srcptr Vb, const arb_t sig, int i,
                             const pr_posw_struct *W, const cert_prob_t *p, slong prec);
/* a general W's gradient rows (L16), σ not applied: q = 1: dQ's row fix, row[a] += Σ_{k: a_k = a} Σ_{j<m}
 * c_j w_k(fix - j) X_{j,b_k} (X = K); q = 0: dK's row fix, row[b] += Σ_{k: b_k = b} Σ_{i<m} c_i X_{i,a_k}
 * w_k(i - fix) (X = Q); c at stride cs, y: m balls of scratch */
void pr_certify_arb_w_grad_row(arb_ptr row, arb_srcptr c, slong cs, int m, int fix, int q, const double *X,
                               const pr_posw_struct *W, const cert_prob_t *p, arb_ptr y, slong prec);
/* L20: key rows j of a kv group's dK, dV (rk, rv: their results from the double pass, summarised again) with an
 * open element, recomputed in balls column j of P by column from keep's row enclosures, then with the rows
 * themselves in Arb (rows = 0: not, for tests of the enclosures alone), within budget_s CPU seconds; g query
 * heads at Q, dO */
int pr_certify_kv_cols(pr_certify_result_t *rk, pr_certify_result_t *rv, const double *dKc, const double *dVc,
                       const double *Q, const double *K, const double *V, const double *dO, const pr_posw_struct *W,
                       int g, const cert_prob_t *p, const cert_kvkeep_t *keep, double budget_s, int rows);
/* dQ's rows of one head (Q, dO n×d) with an open element, or loose (pr_certify_row_loose), recomputed in Arb (L7, O(n·d) each; W: L16, O(n·s)) within
 * budget_s seconds, their lo, hi, state updated and res summarised again (rows_fallback: the rows) */
int pr_certify_grad_rows_arb(pr_certify_result_t *res, double *lo, double *hi, unsigned char *state,
                             const double *cand, const double *Q, const double *K, const double *V, const double *dO,
                             const pr_posw_struct *W, const cert_prob_t *p, double budget_s);

#endif
