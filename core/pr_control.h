/* pr_control: error control for the fast paths, and the whole-path drivers (docs/math.md §3, §4,
 * §7, §8; claims C6, C9, C11, G4).
 *
 * One layer above the paths themselves (pr_fast: the FFT forward, pr_lowrank: the feature-map
 * forward, pr_backward: the gradients) and below the --algo auto model (pr_auto) and the commands
 * (docs/modules.md). From the data and a target ‖Õ - O‖∞ <= eps it finds R, chooses the
 * polynomial P and its degree, bounds the floating-point floor, checks the run against the memory
 * and work budget (pr_budget), and then runs one path end to end. Every estimate here is a double:
 * it chooses a parameter, it certifies nothing (docs/verdicts.md); exact/ certifies. */
#ifndef PR_CONTROL_H
#define PR_CONTROL_H

#include <stddef.h>
#include "pr_attn.h"
#include "pr_posw.h"
#include "pr_expoly.h"
#include "pr_budget.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    double eps;             /* target ‖Õ - O‖∞ (> 0) */
    double B;               /* declared bound on |Q|, |K|, |V| entries; 0 = none declared */
    int widen;              /* entries past B: 0 refuse with PR_EBOUND, 1 proceed (R is from the data) */
    pr_expoly_kind_t kind;  /* polynomial construction */
    int degree;             /* > 0: use this degree instead of the least one for eps (info->eps_met
                             * then says whether it meets eps; the command line refuses it if not) */
    size_t mem_budget;      /* bytes a plan may hold (> 0; also pr_control_budget's memory limit) */
    long max_terms;         /* largest term (or feature) count accepted */
    double max_ops;         /* estimated operations a run may do (pr_control_needs); 0: no limit */
    unsigned plan_flags;    /* PR_FAST_ESTIMATE or PR_FAST_MEASURE (FFT path) */
} pr_control_opts_t;

void pr_control_opts_default(pr_control_opts_t *o);

/* What the error control chose and what holds. All estimates in double (docs/verdicts.md: a double may
 * choose a parameter, not certify); exact/ certifies. */
typedef struct {
    double R;               /* max |M_ij| <= R, from the data (claim C6) */
    double R_floor;         /* σ Σ_ab max|Q_a| max|w_ab| max|K_b|: bounds each term's size */
    double vnorm;           /* ‖V‖∞ */
    double data_max;        /* max(|Q|, |K|, |V|) entries, against the declared B */
    int widened;            /* 1 when entries passed B and widen was set */
    double eps_A;           /* relative error asked of P on [-R, R] */
    double poly_err;        /* P's estimated relative error (pr_expoly eps_A + conv_err) */
    int degree;
    double terms;           /* C(s+g, g) for the FFT path, C(d+g, g) features for low-rank */
    double floor;           /* a-priori floating-point floor on ‖Õ - O‖∞ */
    double bound;           /* 2 poly_err/(1 - poly_err) ‖V‖∞ + floor (claim C9 + floor) */
    int eps_met;            /* 1 when bound <= eps (always, unless o->degree fixed the degree) */
    double ops_factor;      /* the engine's rounding factor the floor was multiplied by */
    int streamed;           /* FFT path: 1 when the symbols' spectra were streamed */
    long transforms;        /* FFT path: transforms done by the execute (planning not counted) */
    long plan_transforms;   /* FFT path: symbol transforms done by the plan */
    double plan_seconds;    /* FFT path: planning time */
    pr_budget_struct budget;/* on PR_EBUDGET from pr_control_budget: the limit hit, the amount, what */
    int head;               /* with heads: the query head whose data was refused, else -1 */
} pr_control_info_t;

/* Many heads on one plan (docs/cli.md, attn): Q, O, dO, dQ (h, n, d); K, V, dK, dV (h_kv, n, d),
 * h_kv dividing h (grouped-query: query head i reads kv head i / (h / h_kv)); a batch (b, h, n, d)
 * is b·h heads over b·h_kv. The error control chooses P once, for the worst head (the largest R,
 * R_floor and ‖V‖∞ over the heads), so that its bound holds for every head; each head's own bound
 * under that P (its data's floor and ‖V‖∞) is reported. A NULL pr_control_heads_t * is one head. */
typedef struct {
    int h, h_kv;
    double *bound;          /* NULL or h: each query head's bound on ‖Õ - O‖∞ */
    struct pr_control_backward_bound_s *grad;  /* NULL or h: each query head's gradient bounds (G4):
                               its dQ, its kv head's (summed) dK and dV, dw's */
} pr_control_heads_t;

/* Sets the data part of info (R, R_floor, vnorm, data_max, widened) for the FFT path (R from W's
 * row sums) or the low-rank path (lowrank = 1: R = σ max‖Q_i‖₂ max‖K_j‖₂, valid for RoPE).
 * PR_EBOUND when entries pass o->B and o->widen is 0. */
int pr_control_data_info(pr_control_info_t *info, const double *Q, const double *K, const double *V,
                         const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts,
                         const pr_control_opts_t *o, int lowrank);

/* Chooses P for the target o->eps given info's data part and the engine's rounding factor
 * ρ·(per_degree·g + log_ops) (FFT path: ρ = pr_control_rho, per_degree = 2, log_ops = 3 log2 L;
 * the low-rank path its own): eps_A = eps'/(2‖V‖∞ + eps') with eps' = eps less the floor, the
 * least degree of the kind (or o->degree), then floor = 2‖V‖∞ f/(1-f) with
 * f = pr_expoly_floor(c, g, R_floor, eps_A)·ρ(per_degree·g + log_ops), and bound.
 * PR_EFLOOR when the floor is above eps/2 (info->floor says it), PR_EDOMAIN when double cannot
 * fit P. A fixed o->degree is fitted whatever its bound: PR_OK with info->eps_met = 0 when its
 * bound (infinite when P's relative error reaches 1) is above eps; only the a-priori floor of
 * eps itself gives PR_EFLOOR then. */
int pr_control_choose_poly(pr_expoly_t p, pr_control_info_t *info, const pr_control_opts_t *o,
                           double rho, double per_degree, double log_ops);

/* ρ = √(Σ_ℓ b_ℓ²)·√n / min_i Σ_j b_{i-j} (b = e^β, 0 where masked): turns the 2-norm error
 * bound of an FFT convolution into a fraction of the smallest row sum. √2 unmasked, n causal. */
double pr_control_rho(int n, const pr_attn_opts_t *opts);

/* pr_control_data_info then pr_control_choose_poly with the rounding factor of the FFT path
 * (lowrank = 0) or of the low-rank path (lowrank = 1); info->terms for the degree chosen. */
int pr_control_choose(pr_expoly_t p, pr_control_info_t *info, const double *Q, const double *K,
                      const double *V, const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts,
                      const pr_control_opts_t *o, int lowrank);

/* The same for every head (the worst head's data part; info->head names a refused head's data);
 * PR_EINVAL for bad h, h_kv. */
int pr_control_choose_heads(pr_expoly_t p, pr_control_info_t *info, const double *Q, const double *K,
                            const double *V, const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts,
                            const pr_control_opts_t *o, int lowrank, const pr_control_heads_t *heads);

/* Memory (bytes) and work (operations) of the FFT path's forward (lowrank = 0: pr_fast_needs) or
 * the low-rank path's (1: pr_lowrank_bytes and its two dgemms) for W, n, d and degree g. */
void pr_control_needs(double *bytes, double *ops, const pr_posw_t W, int n, int d, int g, int lowrank);

/* The forward's pr_control_needs plus extra_bytes and extra_ops (a backward's, or 0), checked
 * against o->mem_budget and o->max_ops into info->budget (pr_budget): PR_OK or PR_EBUDGET. The
 * drivers call it after choosing P (info->degree), before anything is planned. */
int pr_control_budget(pr_control_info_t *info, const pr_posw_t W, int n, int d,
                      const pr_control_opts_t *o, int lowrank, double extra_bytes, double extra_ops,
                      const char *what);

/* pr_control_choose, then pr_control_budget for the path's forward (and its backward,
 * pr_backward_needs, when backward = 1), before anything is planned: P in p, po = opts with P. */
int pr_control_prepare(pr_expoly_t p, pr_attn_opts_t *po, pr_control_info_t *info, const double *Q,
                       const double *K, const double *V, const pr_posw_t W, int n, int d,
                       const pr_attn_opts_t *opts, const pr_control_opts_t *o, int lowrank, int backward);

/* The whole FFT path: check, choose P, pr_control_budget, pr_fast_plan, pr_fast_execute. info may
 * be NULL. */
int pr_control_forward_fft(double *O, pr_control_info_t *info, const double *Q, const double *K,
                           const double *V, const pr_posw_t W, int n, int d,
                           const pr_attn_opts_t *opts, const pr_control_opts_t *o);

/* The whole low-rank path: check, choose P, pr_control_budget, pr_lowrank_execute. PR_EINVAL when
 * W does not factorise or opts->beta is set. info may be NULL. */
int pr_control_forward_lowrank(double *O, pr_control_info_t *info, const double *Q, const double *K,
                               const double *V, const pr_posw_t W, int n, int d,
                               const pr_attn_opts_t *opts, const pr_control_opts_t *o);

/* Either path (lowrank = 1: the low-rank one) for every head on one plan: P chosen once for all
 * heads (pr_control_choose_heads), the budget checked for the plan once and the work of every
 * head, one plan, every head executed; heads->bound filled. info as the one-head drivers'. */
int pr_control_forward_heads(double *O, pr_control_info_t *info, const double *Q, const double *K,
                             const double *V, const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts,
                             const pr_control_opts_t *o, int lowrank, const pr_control_heads_t *heads);

/* Propagated bound (claim G4, docs/math.md §7) on |fast gradient - exact gradient| entrywise,
 * for a polynomial with |P(x) - eˣ| <= eps_A·eˣ on [-R, R] and the same dO. kappa (n entries
 * κ_j = Σ_i P̃_ij ‖dO_i‖₁) from the fast run (pr_backward_execute or pr_backward_lowrank);
 * kappa_w (2n-1, pr_backward_kappa_w) tightens dw's bound, or NULL. W and σ of the problem.
 * Each field is the max over the entries. PR_EINVAL unless 0 <= eps_A < 1/3. */
typedef struct pr_control_backward_bound_s {
    double dq, dk, dv, dw;
} pr_control_backward_bound_t;

int pr_control_backward_bound(pr_control_backward_bound_t *bound, double eps_A,
                              const double *Q, const double *K, const double *V,
                              const pr_posw_struct *W, const double *dO, const double *kappa,
                              const double *kappa_w, int n, int d, double sigma);

/* The same for h query heads over h_kv kv heads (pr_control_heads_t's layout) with kappa
 * (h_kv × n) and kappa_w summed over the heads, as pr_backward_execute_heads returns them: each
 * head's bounds being entrywise (κ_j, κ^w_ℓ times constants of the data), the summed dK, dV of a
 * kv head take the largest constant of its query heads times the summed κ_j, dw the largest over
 * every head times the summed κ^w. bound: dQ's largest over the heads, dK's and dV's over the kv
 * heads, dw's; per_head (NULL or h): each query head's dQ bound, its kv head's dK and dV bounds
 * and dw's. */
int pr_control_backward_bound_heads(pr_control_backward_bound_t *bound, pr_control_backward_bound_t *per_head,
                                    double eps_A, const double *Q, const double *K, const double *V,
                                    const pr_posw_struct *W, const double *dO, const double *kappa,
                                    const double *kappa_w, int n, int d, int h, int h_kv, double sigma);

/* The whole fast path with its gradients, as pr_control_forward_fft / _lowrank (lowrank = 1) do
 * the forward: error control for o->eps (info as theirs), the forward (O, with the plan kept for
 * the backward; pr_control_budget with pr_backward_needs first), then dQ, dK, dV (and dw for the
 * FFT path when dw != NULL) for the upstream dO, and the propagated bound
 * (pr_control_backward_bound with eps_A = P's error plus the forward's relative floor, so that the
 * rounding the floor accounts for is covered too). */
typedef struct {
    pr_control_backward_bound_t bound;
    double forward_s, backward_s;   /* wall time of the forward (plan + execute) and backward */
    long terms;                     /* backward terms (FFT: C(s+g+1, g+1)) or features (C(d+g+1, g+1)) */
    long transforms;                /* FFT path: transforms of the backward's execute */
} pr_control_backward_report_t;

int pr_control_backward(double *O, double *dQ, double *dK, double *dV, double *dw,
                        pr_control_info_t *info, pr_control_backward_report_t *rep,
                        const double *Q, const double *K, const double *V, const pr_posw_struct *W,
                        const double *dO, int n, int d, const pr_attn_opts_t *opts,
                        const pr_control_opts_t *o, int lowrank);

/* The same for every head on one forward plan and one backward plan (heads as in
 * pr_control_forward_heads; pr_backward_execute_heads, pr_backward_lowrank_heads): dK, dV (h_kv,
 * n, d) summed over the query heads of a kv head, dw over every head (W is shared); rep->bound
 * from pr_control_backward_bound_heads; heads->bound and heads->grad each head's. */
int pr_control_backward_heads(double *O, double *dQ, double *dK, double *dV, double *dw,
                              pr_control_info_t *info, pr_control_backward_report_t *rep,
                              const double *Q, const double *K, const double *V, const pr_posw_struct *W,
                              const double *dO, int n, int d, const pr_attn_opts_t *opts,
                              const pr_control_opts_t *o, int lowrank, const pr_control_heads_t *heads);

#ifdef __cplusplus
}
#endif
#endif
