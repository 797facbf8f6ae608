/* pr_expoly: polynomial approximations of exp in double (docs/math.md §4,
 * "Floating-point floor"; claims C7, C8, C9, F1).
 *
 * Three settings, each an interval and an error measure:
 *   PR_EXPOLY_EXP_REL     e^x on [-R, R], relative:  |P(x) - e^x| <= eps_A e^x  (the fast paths)
 *   PR_EXPOLY_EXP_ABS     e^x on [0, R], additive:   |P(x) - e^x| <= eps          (Aggarwal–Alman, C7)
 *   PR_EXPOLY_EXPNEG_ABS  e^{-x} on [0, R], additive: |P(x) - e^{-x}| <= eps      (Aggarwal–Alman, C8)
 * and three constructions: truncated Taylor at the interval's centre, Chebyshev interpolation
 * (first-kind nodes), and minimax (Remez exchange on the setting's weighted error). For the
 * relative error the minimax needs markedly fewer degrees than Chebyshev interpolation once R
 * is large (about 0.8 R fewer: at R = 32, eps = 1e-15 it is 66 against 90, Taylor 137), because
 * it spends its error where e^x is small.
 *
 * Everything here is double and estimates; exact/pr_certexp certifies, and runs the same
 * constructions in Arb where double is not sound (large R). A double construction whose
 * power-basis conversion would lose the target to rounding is refused with PR_EDOMAIN. */
#ifndef PR_EXPOLY_H
#define PR_EXPOLY_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    PR_EXPOLY_TAYLOR = 0,     /* truncated Taylor series at the interval's centre */
    PR_EXPOLY_CHEBYSHEV = 1,  /* interpolation at the g+1 first-kind Chebyshev nodes */
    PR_EXPOLY_MINIMAX = 2     /* best approximation in the setting's error (Remez) */
} pr_expoly_kind_t;

typedef enum {
    PR_EXPOLY_EXP_REL = 0,    /* e^x on [-R, R], relative error */
    PR_EXPOLY_EXP_ABS = 1,    /* e^x on [0, R], additive error */
    PR_EXPOLY_EXPNEG_ABS = 2  /* e^{-x} on [0, R], additive error */
} pr_expoly_setting_t;

/* Highest degree a double construction accepts: 1/k! is a normal double up to k = 170. */
#define PR_EXPOLY_MAX_DEGREE 170

typedef struct {
    pr_expoly_kind_t kind;
    pr_expoly_setting_t setting;
    double R;         /* half-width (EXP_REL) or length (the two additive settings) */
    double lo, hi;    /* the interval: [-R, R] or [0, R] */
    int degree;       /* g */
    double *c;        /* c[0..g]: power-basis coefficients in x, P(x) = Σ c_k x^k */
    double *cheb;     /* a[0..g]: P = Σ' a_k T_k(t), t = (2x - lo - hi)/(hi - lo) (a_0 counted once) */
    double conv_err;  /* estimated error, in the setting's measure, that rounding of the power-basis
                         conversion adds: max over the interval of |Σ (c_k - c_k*) x^k|·weight */
    double eps_A;     /* estimated error of Horner(c) in the setting's measure, from a dense sample
                         (an estimate, not a bound: pr_certexp certifies) */
    double floor;     /* floating-point floor of the expansion with these c, in the setting's measure:
                         pr_expoly_floor(c, g, max|x|, eps_A) for EXP_REL; u Σ|c_k| R^k (absolute)
                         for the additive settings */
} pr_expoly_struct;
typedef pr_expoly_struct pr_expoly_t[1];

void pr_expoly_init(pr_expoly_t p);
void pr_expoly_clear(pr_expoly_t p);

/* The approximation of the given kind and degree g in [0, PR_EXPOLY_MAX_DEGREE], with c, cheb,
 * conv_err, eps_A and floor filled. PR_EINVAL for R <= 0, non-finite R or g out of range;
 * PR_EDOMAIN when the conversion rounding conv_err exceeds 1e-3 (the coefficients span too many
 * orders of magnitude for double: use pr_certexp_construct); PR_ECONVERGE if Remez fails. */
int pr_expoly_fit(pr_expoly_t p, pr_expoly_kind_t kind, pr_expoly_setting_t setting, double R, int g);

/* The least degree g whose estimated error eps_A + conv_err is <= eps, and that polynomial.
 * PR_EINVAL for R <= 0 or eps outside (0, 1); PR_EDOMAIN when double cannot reach eps
 * (conversion rounding above eps/4, or g would pass PR_EXPOLY_MAX_DEGREE). */
int pr_expoly_fit_eps(pr_expoly_t p, pr_expoly_kind_t kind, pr_expoly_setting_t setting, double R,
                      double eps);

/* Horner on the power basis c[0..g]; Clenshaw on Chebyshev coefficients a[0..g] at t ∈ [-1, 1]. */
double pr_expoly_horner(const double *c, int g, double x);
double pr_expoly_clenshaw(const double *a, int g, double t);
/* P(x) by Horner on p->c, and by Clenshaw on p->cheb */
double pr_expoly_eval(const pr_expoly_t p, double x);
double pr_expoly_eval_cheb(const pr_expoly_t p, double x);
/* the setting's error of value y at x: (y - e^x)/e^x, y - e^x or y - e^{-x} */
double pr_expoly_err_at(pr_expoly_setting_t setting, double x, double y);

/* Floating-point floor of the rescaled-Toeplitz expansion (docs/math.md §8, F1).
 * Entry Ã_ij = Σ_e α_e u_e(i) t_e(i-j) v_e(j). Grouping the multisets e by |e| = k,
 *   Σ_{|e|=k} |α_e u_e(i) t_e(i-j) v_e(j)| = |c_k| (σ Σ_{(a,b)∈S} |Q_ia| |w_ab(i-j)| |K_jb|)^k <= |c_k| R^k
 * (multinomial theorem; the bracket is <= R by the definition of R). Even with every term
 * correctly rounded and an exact sum, a double result carries an absolute error up to
 * u·Σ_e|terms| <= u·S, S = Σ_k |c_k| R^k, u = 2^-53, while A_ij >= min P >= (1 - eps_A) e^{-R}.
 * So no double evaluation of the expansion promises a relative entry error below
 *   floor = u · S · e^{R} / (1 - eps_A)
 * (for Taylor S <= e^R: floor <= u e^{2R}/(1 - eps_A), i.e. about 2R/ln 2 bits lost). This is a
 * floor, not the engine's bound: each engine multiplies it by its own operation-count factor
 * (products of g factors, FFT of length N: roughly (2g + log2 N)). Returns +Inf if S overflows. */
double pr_expoly_floor(const double *c, int g, double R, double eps_A);
/* The same a priori, before any fit: the Taylor coefficients 1/k! and eps_A = 0. */
double pr_expoly_floor_taylor(double R, int g);

/* Aggarwal–Alman 2022 values (constants omitted; the experiments fit them).
 * pr_expoly_aa22: e^x on an interval of length L, additive delta: max{L, ln(1/δ)/ln(ln(1/δ)/L)} (C7).
 * pr_expoly_aa22_neg: e^{-x} on [0, L]: max{√(L ln(1/δ)), ln(1/δ)/ln(ln(1/δ)/L)} (C8).
 * Where ln(1/δ)/L < e the logarithm in the denominator is taken as 1 (the formula's regime
 * boundary; the max is then Θ(L) resp. Θ(√(L ln 1/δ)) anyway). NaN for L <= 0 or δ ∉ (0, 1). */
double pr_expoly_aa22(double L, double delta);
double pr_expoly_aa22_neg(double L, double delta);
/* The value for a setting: EXP_REL uses L = 2R (shift x -> x + R), EXP_ABS L = R, EXPNEG_ABS the twin. */
double pr_expoly_aa22_setting(pr_expoly_setting_t setting, double R, double eps);

/* names "taylor" "chebyshev" "minimax" and "exp-rel" "exp-abs" "expneg-abs"; parse returns PR_EINVAL */
const char *pr_expoly_kind_name(pr_expoly_kind_t kind);
int pr_expoly_kind_parse(pr_expoly_kind_t *kind, const char *name);
const char *pr_expoly_setting_name(pr_expoly_setting_t setting);
int pr_expoly_setting_parse(pr_expoly_setting_t *setting, const char *name);
/* the interval of a setting */
void pr_expoly_interval(double *lo, double *hi, pr_expoly_setting_t setting, double R);

#ifdef __cplusplus
}
#endif
#endif
