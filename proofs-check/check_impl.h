/* proofs-check internals: the checks, and the random instances they share. */
#ifndef PR_CHECK_IMPL_H
#define PR_CHECK_IMPL_H

#include "polyrope.h"
#include "checks.h"

int pr_check_c1(pr_check_result_t *res, const pr_check_opts_t *opts);
int pr_check_c2(pr_check_result_t *res, const pr_check_opts_t *opts);
int pr_check_c3(pr_check_result_t *res, const pr_check_opts_t *opts);
int pr_check_c4(pr_check_result_t *res, const pr_check_opts_t *opts);
int pr_check_c5(pr_check_result_t *res, const pr_check_opts_t *opts);
int pr_check_c6(pr_check_result_t *res, const pr_check_opts_t *opts);
int pr_check_c7(pr_check_result_t *res, const pr_check_opts_t *opts);
int pr_check_c8(pr_check_result_t *res, const pr_check_opts_t *opts);
int pr_check_c9(pr_check_result_t *res, const pr_check_opts_t *opts);
int pr_check_c10(pr_check_result_t *res, const pr_check_opts_t *opts);
int pr_check_c11(pr_check_result_t *res, const pr_check_opts_t *opts);
int pr_check_c12(pr_check_result_t *res, const pr_check_opts_t *opts);
int pr_check_c14(pr_check_result_t *res, const pr_check_opts_t *opts);
int pr_check_g1(pr_check_result_t *res, const pr_check_opts_t *opts);
int pr_check_g2(pr_check_result_t *res, const pr_check_opts_t *opts);
int pr_check_g3(pr_check_result_t *res, const pr_check_opts_t *opts);
int pr_check_g4(pr_check_result_t *res, const pr_check_opts_t *opts);
int pr_check_g5(pr_check_result_t *res, const pr_check_opts_t *opts);
int pr_check_f1(pr_check_result_t *res, const pr_check_opts_t *opts);

/* The ok flag of pr_check_observe for a certified verdict: certified → 1 (pass),
 * refuted → 0 (FAIL), unknown → -1 (unknown). */
int pr_check_ok(pr_cert_verdict_t v);

typedef enum { PR_MASK_NONE = 0, PR_MASK_CAUSAL, PR_MASK_ALIBI, PR_MASK_COUNT } pr_mask_t;

/* One random attention problem from the trial's stream: pr_problem's Q, K, V uniform in
 * [-B, B), then W of the given kind (what attn and a sweep row draw from a stream seeded
 * alike), then the ALiBi slope when mask is PR_MASK_ALIBI. Not to be copied: W points into P. */
typedef struct {
    int n, d;
    double B;
    pr_pos_kind_t kind;
    pr_mask_t mask;
    pr_problem_t P;                   /* owns the arrays below */
    double *Q, *K, *V, *beta;         /* P's, named as the checks use them */
    pr_posw_struct *W;                /* P->W */
    pr_attn_opts_t opts;
    char config[PR_CHECK_CONFIG_LEN]; /* "kind/mask", the regression key */
} pr_inst_t;

/* kind: rope, rope-neox, general or identity; d even. */
int pr_inst_init(pr_inst_t *I, int n, int d, double B, pr_pos_kind_t kind, pr_mask_t mask,
                 pr_rng_t rng);
void pr_inst_clear(pr_inst_t *I);
/* I into the current trial's record (pr_check_put): sizes, kind, mask, σ, B, and Q, K, V,
 * w (s×(2n-1)), the support ab (s×2: a, b) and β (ALiBi) as arrays */
void pr_inst_dump(pr_check_result_t *res, const pr_inst_t *I);
/* n ∈ [2, nmax], d = 2·[1, dhalf_max], B uniform in [Blo, Bhi], a random kind and mask
 * (ALiBi only if bias_ok) */
int pr_inst_random(pr_inst_t *I, pr_rng_t rng, int nmax, int dhalf_max, double Blo, double Bhi,
                   int bias_ok);
/* a uniformly chosen kind among rope, rope-neox, general, identity */
pr_pos_kind_t pr_inst_random_kind(pr_rng_t rng);
/* a uniformly chosen mask: none, causal, or (if bias_ok) ALiBi */
pr_mask_t pr_inst_random_mask(pr_rng_t rng, int bias_ok);
/* a uniform integer in [lo, hi] */
int pr_inst_int(pr_rng_t rng, int lo, int hi);

/* R = σ·max(‖Q‖∞,‖K‖∞)²·max_ℓ Σ|w(ℓ)| in Arb from the data (docs/math.md, claim C6) */
void pr_inst_R_arb(arb_t R, const pr_inst_t *I, slong prec);

/* Certified ε_A of the double polynomial c[0..g] against 1/k! on [-R, R] (relative):
 * for x ∈ [-R, R], |e^x - T_g(x)|/e^x ≤ e^R R^{g+1}/(g+1)! (Lagrange remainder, ξ - x ≤ R),
 * and the coefficients' rounding adds ≤ e^R Σ_k |c_k - 1/k!| R^k. */
void pr_taylor_eps_A(arb_t epsA, const double *c, int g, const arb_t R, slong prec);
/* least g with e^R R^{g+1}/(g+1)! ≤ target (a double choosing a parameter) */
int pr_taylor_degree(double R, double target);
/* Σ_k |c_k| R^k */
double pr_poly_abs(const double *c, int g, double R);

/* least-squares slope of y on x[0..m) */
double pr_check_slope(const double *x, const double *y, int m);

/* Taylor coefficients 1/k!, k = 0..g, as doubles (from pr_certexp's exact ones). */
void pr_taylor_d(double *c, int g);

#endif
