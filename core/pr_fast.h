/* pr_fast: the general-W forward pass by the polynomial method and the FFT (Alman–Song 2025;
 * docs/math.md §5, §8; claims C2, C3, C5, C9).
 *
 * With P(x) = Σ_k c_k x^k of degree g, expand P(M) over the multisets e of the support S,
 * |e| <= g:
 *     P(M) = Σ_e α_e diag(u_e) T_e diag(v_e),   α_e = c_|e| · multinomial(e) · σ^|e|,
 *     u_e(i) = Π Q_ia^e_ab,  v_e(j) = Π K_jb^e_ab,  t_e(ℓ) = Π w_ab(ℓ)^e_ab.
 * The causal mask and a Toeplitz bias fold into the symbols: t_e(ℓ)·e^{β_ℓ}, 0 where masked.
 * Then Õ = diag(Ã 1)^{-1} Ã V with Ã = Σ_e α_e diag(u_e) T_e diag(v_e) computed column by
 * column of X = [V | 1] as
 *     Ã X_c = Σ_μ diag(u_μ) · inverse( Σ_{e: a-marg(e)=μ} α_e t̂_e ∘ FFT(v_{b-marg(e)} ∘ X_c) ):
 * one forward transform per b-marginal and column, products summed in the frequency domain per
 * a-marginal, one inverse transform per a-marginal and column.
 *
 * Order of the terms. Terms are grouped by a-marginal μ (groups in the order of the a-marginal
 * enumeration below); inside a group, by a depth-first walk over the support sorted by (a, b)
 * that gives each row a the μ_a copies. Each node of that walk multiplies its parent's symbol by
 * one precomputed power w_ab^p, so every symbol costs O(n) from its parent, and a group is
 * contiguous (one accumulator live at a time). Marginals (multisets of the distinct a, resp. b,
 * values of S) are enumerated depth first: marginal m is its parent plus one copy of value
 * last[m] (the largest), so u and v are built from their parents, O(n) each.
 *
 * The backward (issue 6) reuses pr_fast_terms_t and a plan's spectra (pr_fast_plan_spectrum). */
#ifndef PR_FAST_H
#define PR_FAST_H

#include <stddef.h>
#include "pr_attn.h"
#include "pr_toeplitz.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Multisets of D values with at most g elements, depth first. */
typedef struct {
    int D, g;
    long count;             /* C(D+g, g) */
    unsigned char *cnt;     /* count × D multiplicities */
    int *deg;               /* size of each multiset */
    long *parent;           /* -1 for the empty multiset */
    int *last;              /* value added to the parent (the largest), -1 for the empty one */
    long *sorted;           /* indices sorted by cnt, for pr_fast_marg_find */
} pr_fast_marg_struct;
typedef pr_fast_marg_struct pr_fast_marg_t[1];

/* The terms of the expansion for a support S (s pairs (a_k, b_k)) and degree g. */
typedef struct {
    int s, g;
    int da, db;             /* distinct a values, distinct b values in S */
    int *aval, *bval;       /* those values (columns of Q, resp. K), increasing */
    int *arow, *bcol;       /* s: index of a_k in aval, of b_k in bval */
    int *slot;              /* s: support entries sorted by (a, b) */
    pr_fast_marg_t am, bm;  /* a-marginals (over aval) and b-marginals (over bval) */
    long nterms;            /* C(s+g, g) (claim C3) */
    unsigned char *e;       /* nterms × s multiplicities, indexed by support entry k */
    int *deg;               /* |e| */
    double *alpha;          /* c_|e| · multinomial(e) · σ^|e| */
    long *bmi;              /* b-marginal index of each term */
    long *gstart;           /* am.count + 1: terms of a-marginal m are [gstart[m], gstart[m+1]) */
} pr_fast_terms_struct;
typedef pr_fast_terms_struct pr_fast_terms_t[1];

/* C(m+k, k) as a double (exact below 2^53); +Inf past DBL_MAX. */
double pr_fast_binom(int m, int k);

/* The marginal enumeration; PR_ESIZE if C(D+g, g) passes max_count. */
int pr_fast_marg_init(pr_fast_marg_t M, int D, int g, long max_count);
void pr_fast_marg_clear(pr_fast_marg_t M);
/* index of the multiset with multiplicities cnt[0..D), or -1 */
long pr_fast_marg_find(const pr_fast_marg_t M, const unsigned char *cnt);

/* Enumerates the terms for W's support, degree g = poly_degree, coefficients c[0..g] and score
 * scale sigma. PR_EBUDGET if C(s+g, g) passes max_terms. */
int pr_fast_terms_init(pr_fast_terms_t T, const int *a, const int *b, int s, const double *c, int g,
                       double sigma, long max_terms);
void pr_fast_terms_clear(pr_fast_terms_t T);

/* One thread's scratch: the walk's symbol buffers, spectra, marginal products, partial sums. */
typedef struct {
    pr_toeplitz_work_t ws;
    double *tbuf;           /* (s+1) × (2n-1): symbol prefixes of the walk, and the leaf */
    double *acc;            /* (d+3) spectra: the planar running sums of one a-marginal (d+1), an
                               interleaved scratch for FFTW, a planar leaf spectrum */
    double *uv;             /* (g+1) × n: u (or v) of the marginals on the current path */
    double *vx;             /* n: v_ν ∘ X_c, one column at a time */
    double *col;            /* n: one inverse transform's output */
    double *num;            /* n × (d+1): this thread's part of Ã [V | 1] */
    unsigned char *ecur;    /* s: the walk's current multiplicities */
    double fftw_seconds;
    int st;
} pr_fast_thread_struct;

/* A plan: everything that depends on W, the mask/bias, σ and P but not on Q, K, V. Execute splits
 * the b-marginals, then the a-marginal groups (balanced by term count), over nthreads OpenMP
 * threads; for a given thread count the result does not depend on scheduling. */
typedef struct {
    int n, d, s, g;
    pr_fast_terms_t terms;
    pr_toeplitz_plan_t tp;
    int nthreads;
    pr_fast_thread_struct *thr;
    int streamed;           /* 0: all symbols' spectra kept; 1: recomputed in each execute */
    double *spec;           /* kept: nterms spectra of α_e t_e(ℓ) e^{β_ℓ} (0 where masked), each
                               planar: nfreq real parts then nfreq imaginary parts, stride
                               pr_toeplitz_spec_len (an FFTW r2c of length tp->L) */
    double *pw;             /* streamed: s × g × (2n-1) powers w_k^p, p = 1..g */
    double *bias;           /* 2n-1: e^{β_ℓ}, 0 where masked */
    double *xhat;           /* bm.count × (d+1) planar spectra of v_ν ∘ X_c */
    int *rstart;            /* da + 1: first slot of each row of the sorted support */
    size_t bytes;           /* memory the plan holds */
    double plan_seconds;    /* wall time of pr_fast_plan */
    long plan_transforms;   /* symbol transforms done while planning */
    long transforms;        /* forward + inverse transforms of the last execute */
    long fwd_transforms, inv_transforms;
    double fftw_seconds;    /* per thread, time inside transforms in the last execute (if timing) */
    int timing;             /* set to 1 to measure fftw_seconds (costs two clock reads each) */
} pr_fast_plan_struct;
typedef pr_fast_plan_struct pr_fast_plan_t[1];

/* Bytes a plan for these sizes would hold, kept and streamed, with omp_get_max_threads() threads'
 * scratch (0 if it overflows). */
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

/* Memory (bytes) and work (operations) of the FFT path's forward for W, n, d and degree g:
 * estimates in double (+Inf past it) that bound what pr_fast_plan allocates (streamed) and
 * roughly what execute computes. pr_control_needs adds the low-rank path's. */
void pr_fast_needs(double *bytes, double *ops, const pr_posw_t W, int n, int d, int g);

#ifdef __cplusplus
}
#endif
#endif
