/* pr_fast: the general-W forward pass by the polynomial method and the FFT (Alman–Song 2025;
 * docs/math.md §5, §8; claims C2, C3, C5, C9).
 *
 * With P(x) = Σ_k c_k x^k of degree g, expand P(M) over the multisets e of the support S,
 * |e| <= g (pr_expand: the terms, their marginals and coefficients):
 *     P(M) = Σ_e α_e diag(u_e) T_e diag(v_e),   α_e = c_|e| · multinomial(e) · σ^|e|,
 *     u_e(i) = Π Q_ia^e_ab,  v_e(j) = Π K_jb^e_ab,  t_e(ℓ) = Π w_ab(ℓ)^e_ab.
 * The causal mask and a Toeplitz bias fold into the symbols: t_e(ℓ)·e^{β_ℓ}, 0 where masked.
 * Then Õ = diag(Ã 1)^{-1} Ã V with Ã = Σ_e α_e diag(u_e) T_e diag(v_e) computed column by
 * column of X = [V | 1] as
 *     Ã X_c = Σ_μ diag(u_μ) · inverse( Σ_{e: a-marg(e)=μ} α_e t̂_e ∘ FFT(v_{b-marg(e)} ∘ X_c) ):
 * one forward transform per b-marginal and column, products summed in the frequency domain per
 * a-marginal, one inverse transform per a-marginal and column.
 *
 * Terms are in pr_expand's order (groups by a-marginal, one group live at a time). A symbol is
 * built from the previous term's prefix products over the support sorted by (a, b), one
 * precomputed power w_k^p per slot that changed, so consecutive terms cost O(n) each. The
 * backward (math.md §7) extends the same expansion to degree g+1: its term t < nterms is this
 * plan's term t (pr_fast_plan_spectrum). */
#ifndef PR_FAST_H
#define PR_FAST_H

#include <stddef.h>
#include "pr_attn.h"
#include "pr_toeplitz.h"
#include "pr_expoly.h"
#include "pr_budget.h"
#include "pr_expand.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One thread's scratch: symbol prefix products, spectra, a marginal product, partial sums. */
typedef struct {
    pr_toeplitz_work_t ws;
    double *tbuf;           /* s × (2n-1): prefix products of the current symbol, by sorted slot */
    const double **pref;    /* s + 1: pref[p] = product over slots [0, p) (NULL: all ones) */
    long prev;              /* the term pref holds, or -1 */
    double *acc;            /* (d+3) spectra: the planar running sums of one a-marginal (d+1), an
                               interleaved scratch for FFTW, a planar leaf spectrum */
    double *leaf;           /* 2n-1: α_e t_e e^β of one term */
    double *uv;             /* n: u_μ (or v_ν) of one marginal */
    double *vx;             /* n: v_ν ∘ X_c, one column at a time */
    double *col;            /* n: one inverse transform's output */
    double *num;            /* n × (d+1): this thread's part of Ã [V | 1] */
    double fftw_seconds;
    int st;
} pr_fast_thread_struct;

/* A plan: everything that depends on W, the mask/bias, σ and P but not on Q, K, V. Execute splits
 * the b-marginals, then the a-marginal groups (balanced by term count), over nthreads OpenMP
 * threads; for a given thread count the result does not depend on scheduling. */
typedef struct {
    int n, d, s, g;
    pr_expand_t terms;      /* the forward's terms: nterms = C(s+g, g) (claim C3) */
    double *alpha;          /* nterms: α_e */
    pr_toeplitz_plan_t tp;
    int nthreads;
    pr_fast_thread_struct *thr;
    int streamed;           /* 0: all symbols' spectra kept; 1: recomputed in each execute */
    double *spec;           /* kept: nterms spectra of α_e t_e(ℓ) e^{β_ℓ} (0 where masked), each
                               planar: nfreq real parts then nfreq imaginary parts, stride
                               pr_toeplitz_spec_len (an FFTW r2c of length tp->L) */
    double *pw;             /* s × g × (2n-1) powers w_k^p, p = 1..g (freed once a kept plan has
                               its spectra) */
    double *bias;           /* 2n-1: e^{β_ℓ}, 0 where masked */
    double *xhat;           /* bm.count × (d+1) planar spectra of v_ν ∘ X_c */
    size_t bytes;           /* the most the plan holds at once (a kept plan's powers included),
                               counted as allocated: pr_fast_plan_bytes for its sizes */
    double plan_seconds;    /* wall time of pr_fast_plan */
    long plan_transforms;   /* symbol transforms done while planning */
    long transforms;        /* forward + inverse transforms of the last execute */
    long fwd_transforms, inv_transforms;
    double fftw_seconds;    /* per thread, time inside transforms in the last execute (if timing) */
    int timing;             /* set to 1 to measure fftw_seconds (costs two clock reads each) */
} pr_fast_plan_struct;
typedef pr_fast_plan_struct pr_fast_plan_t[1];

/* Bytes pr_fast_plan holds for these sizes (da, db: distinct a and b values of the support), kept
 * or streamed, with omp_get_max_threads() threads' scratch: the plan's allocating code run in
 * count-only mode (pr_mem), so it equals F->bytes. 0 if it overflows. */
size_t pr_fast_plan_bytes(int n, int d, int s, int g, int da, int db, int streamed);

/* Plan flags (bitwise or). */
enum {
    PR_FAST_ESTIMATE = 0,   /* FFTW_ESTIMATE plans: no planning cost, bit-for-bit reproducible
                               (FFTW takes a measured plan instead when its wisdom has one) */
    PR_FAST_MEASURE = 1     /* FFTW_MEASURE plans for the transform length: seconds of planning
                               (none with wisdom), transforms up to twice faster from n ≈ 2^16 on
                               (FFTW's estimates pick cache-unfriendly algorithms there). The
                               algorithm is chosen by timing, so the last bits of results may
                               differ between processes unless $POLYROPE_FFTW_WISDOM keeps it. */
};

/* Plans the expansion of opts->poly (required: the fast paths approximate P, not exp) for W of
 * order n, under opts' σ, causal mask and bias. The symbols' spectra are kept when the plan then
 * fits in mem_budget bytes, else streamed; PR_EBUDGET if even the streamed plan does not fit or
 * the term count passes max_terms. PR_EINVAL without opts->poly or for unknown flags. */
int pr_fast_plan(pr_fast_plan_t F, const pr_posw_t W, const pr_attn_opts_t *opts,
                 size_t mem_budget, long max_terms, unsigned flags);
void pr_fast_destroy(pr_fast_plan_t F);

/* O (n×d) = diag(Ã 1)^{-1} Ã V for this plan. Allocates nothing. PR_ENONFINITE for NaN/Inf in
 * Q, K, V; PR_EDOMAIN if a row sum of Ã is not positive (P's relative error is then not < 1,
 * or rounding exceeded the floor). */
int pr_fast_execute(double *O, pr_fast_plan_t F, const double *Q, const double *K, const double *V);

/* D̃_i = (Ã 1)_i from the last pr_fast_execute into D (n entries): the backward's row sums. */
void pr_fast_rowsums(double *D, const pr_fast_plan_t F);

/* Planar spectrum of α_e t_e e^β for term e (kept plans only; NULL when streamed). */
const double *pr_fast_plan_spectrum(const pr_fast_plan_t F, long term);

/* ---- error control (shared by the FFT and low-rank paths) ---- */

typedef struct {
    double eps;             /* target ‖Õ - O‖∞ (> 0) */
    double B;               /* declared bound on |Q|, |K|, |V| entries; 0 = none declared */
    int widen;              /* entries past B: 0 refuse with PR_EBOUND, 1 proceed (R is from the data) */
    pr_expoly_kind_t kind;  /* polynomial construction */
    int degree;             /* > 0: use this degree instead of the least one for eps (info->eps_met
                             * then says whether it meets eps; the command line refuses it if not) */
    size_t mem_budget;      /* bytes a plan may hold (> 0; also pr_fast_budget's memory limit) */
    long max_terms;         /* largest term (or feature) count accepted */
    double max_ops;         /* estimated operations a run may do (pr_fast_needs); 0: no limit */
    unsigned plan_flags;    /* PR_FAST_ESTIMATE or PR_FAST_MEASURE (FFT path) */
} pr_fast_opts_t;

void pr_fast_opts_default(pr_fast_opts_t *o);

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
    pr_budget_struct budget;/* on PR_EBUDGET from pr_fast_budget: the limit hit, the amount, what */
} pr_fast_info_t;

/* Sets the data part of info (R, R_floor, vnorm, data_max, widened) for the FFT path (R from W's
 * row sums) or the low-rank path (lowrank = 1: R = σ max‖Q_i‖₂ max‖K_j‖₂, valid for RoPE).
 * PR_EBOUND when entries pass o->B and o->widen is 0. */
int pr_fast_data_info(pr_fast_info_t *info, const double *Q, const double *K, const double *V,
                      const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts,
                      const pr_fast_opts_t *o, int lowrank);

/* Chooses P for the target o->eps given info's data part and the engine's rounding factor
 * ρ·(per_degree·g + log_ops) (FFT path: ρ = pr_fast_rho, per_degree = 2, log_ops = 3 log2 L; the
 * low-rank path its own): eps_A = eps'/(2‖V‖∞ + eps') with eps' = eps less the floor, the least
 * degree of the kind (or o->degree), then floor = 2‖V‖∞ f/(1-f) with
 * f = pr_expoly_floor(c, g, R_floor, eps_A)·ρ(per_degree·g + log_ops), and bound.
 * PR_EFLOOR when the floor is above eps/2 (info->floor says it), PR_EDOMAIN when double cannot
 * fit P. A fixed o->degree is fitted whatever its bound: PR_OK with info->eps_met = 0 when its
 * bound (infinite when P's relative error reaches 1) is above eps; only the a-priori floor of
 * eps itself gives PR_EFLOOR then. */
int pr_fast_choose_poly(pr_expoly_t p, pr_fast_info_t *info, const pr_fast_opts_t *o,
                        double rho, double per_degree, double log_ops);

/* ρ = √(Σ_ℓ b_ℓ²)·√n / min_i Σ_j b_{i-j} (b = e^β, 0 where masked): turns the 2-norm error
 * bound of an FFT convolution into a fraction of the smallest row sum. √2 unmasked, n causal. */
double pr_fast_rho(int n, const pr_attn_opts_t *opts);

/* pr_fast_data_info then pr_fast_choose_poly with the rounding factor of the FFT path
 * (lowrank = 0) or of the low-rank path (lowrank = 1); info->terms for the degree chosen. */
int pr_fast_choose(pr_expoly_t p, pr_fast_info_t *info, const double *Q, const double *K,
                   const double *V, const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts,
                   const pr_fast_opts_t *o, int lowrank);

/* Memory (bytes) and work (operations) of the FFT path's forward (lowrank = 0) or the low-rank
 * path's (1) for W, n, d and degree g: estimates in double (+Inf past it) that bound what the
 * plans allocate and roughly what execute computes. */
void pr_fast_needs(double *bytes, double *ops, const pr_posw_t W, int n, int d, int g, int lowrank);

/* The forward's pr_fast_needs plus extra_bytes and extra_ops (a backward's, or 0), checked
 * against o->mem_budget and o->max_ops into info->budget (pr_budget): PR_OK or PR_EBUDGET. The
 * fast paths call it after choosing P (info->degree), before anything is planned. */
int pr_fast_budget(pr_fast_info_t *info, const pr_posw_t W, int n, int d, const pr_fast_opts_t *o,
                   int lowrank, double extra_bytes, double extra_ops, const char *what);

/* The whole FFT path: check, choose P, pr_fast_budget, plan, execute. info may be NULL. */
int pr_fast_forward(double *O, pr_fast_info_t *info, const double *Q, const double *K,
                    const double *V, const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts,
                    const pr_fast_opts_t *o);

/* ---- --algo auto ---- */

typedef enum { PR_FAST_ALGO_DENSE = 0, PR_FAST_ALGO_LOWRANK = 1, PR_FAST_ALGO_FFT = 2 } pr_fast_algo_t;

typedef struct {
    int n_cal;              /* calibration size: the first n_cal rows, W's offsets |ℓ| < n_cal */
    int n_cal_dense;        /* the dense reference's: doubled from n_cal until a run takes 30 ms */
    double t_cal[3];        /* seconds measured there: dense, low-rank, FFT (plan + execute) */
    double fft_fixed;       /* FFT: the part of t_cal[2] that does not grow with n (term tables,
                               allocations), from a second calibration at n_cal/2; 0 if none */
    double t[3];            /* predicted at n: dense ∝ n², low-rank ∝ n, FFT fft_fixed + the rest
                               ∝ L log L; INFINITY where the path does not apply or refuses the
                               target */
    int status[3];          /* why a path was ruled out (PR_OK when it was timed) */
    pr_fast_algo_t pick;    /* the least predicted time */
} pr_fast_auto_t;

/* Cost model calibrated on this machine: runs each applicable path on the leading n_cal <= 1024
 * rows (with the degrees the full problem needs for o->eps), times it, and scales. A fast path
 * whose operation count (low-rank 4 n F (d+1); FFT terms (d+2) 3 L log2 L, planning included)
 * passes 8 times the dense n² (s + d) is not timed (status PR_EBUDGET). */
int pr_fast_auto(pr_fast_auto_t *a, const double *Q, const double *K, const double *V,
                 const pr_posw_t W, int n, int d, const pr_attn_opts_t *opts, const pr_fast_opts_t *o);
const char *pr_fast_algo_name(pr_fast_algo_t algo);

#ifdef __cplusplus
}
#endif
#endif
