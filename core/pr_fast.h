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
 * Terms are in pr_expand's order (groups by a-marginal, one group live at a time), the expansion
 * built once up to degree g+1 (the backward borrows F->terms; this plan uses its |e| <= g part).
 * The symbols of one (μ, ν) pair share both marginals, so their sum Σ_{e in pair} α_e t_e e^β is
 * transformed once: 506 spectra instead of 1001 for d = 2, g = 10 (math.md §5). A symbol e^β t_e
 * is built from the previous term's prefix products over the support sorted by (a, b), the
 * slots that changed multiplied in again, so consecutive terms cost O(n) each.
 *
 * Heads. One plan serves up to `heads` heads on the same W: execute reads each pair spectrum once
 * per frequency block for every kv head and column. Q, O are (h, n, d), K, V (h_kv, n, d)
 * row-major, h_kv dividing h (grouped-query attention: Q head i uses K, V head i / (h / h_kv)).
 * The sums and their inverse transforms depend on K, V only: they are made per kv head, and each
 * Q head only scales them by its u_μ (math.md §5). */
#ifndef PR_FAST_H
#define PR_FAST_H

#include <stddef.h>
#include "pr_attn.h"
#include "pr_toeplitz.h"
#include "pr_expand.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One thread's scratch: symbol prefix products, spectra, marginal products, a block of one
 * group's sums. */
typedef struct {
    pr_toeplitz_work_t ws;
    double *tbuf;           /* s × (2n-1): prefix products of the current symbol, by sorted slot */
    const double **pref;    /* s + 1: pref[p] = e^β times the product over slots [0, p) */
    long prev;              /* the term pref holds, or -1 */
    double *acc;            /* streamed: kv_heads·(d+1) interleaved spectra, one group's running
                               sums (kv head, then column); kept plans sum into F->sums */
    double *inter;          /* one interleaved spectrum (FFTW's output), after acc */
    double *leaf_spec;      /* one planar pair spectrum (streamed), after inter */
    double *blk;            /* kept: kv_heads·(d+1) × FBLOCK_MAX interleaved frequencies, one group's
                               block of sums (products by frequency blocks) */
    double **yp;            /* kv_heads·(d+1): one group's sums */
    const double **xp;      /* kv_heads·(d+1): the x̂ spectra one pair multiplies */
    double *leaf;           /* 2n-1: Σ α_e t_e e^β over one pair */
    double *u;              /* heads × n: u_μ of the Q heads of one kv head (or v_ν in the first n) */
    double **op;            /* heads: the parts one inverse transform is scaled into */
    const double **up;      /* heads: their u_μ */
    double fftw_seconds;
    int st;
} pr_fast_thread_struct;

/* A plan: everything that depends on W, the mask/bias, σ and P but not on Q, K, V. Execute splits
 * the b-marginals, then (kept) the frequencies, over nthreads OpenMP threads, then deals them
 * (chunk of a-marginal groups, head) tasks as they come free and adds the chunks' parts in chunk
 * order: for a given thread count (the chunks are fixed at plan time) the result depends neither
 * on the scheduling, nor on how many heads share the execute, nor on whether the spectra are
 * kept. */
typedef struct {
    int n, d, s, g;
    int heads;              /* the most heads one execute may take */
    int kv_heads;           /* the most key/value heads one execute may take (<= heads) */
    int exec_heads;         /* heads of the last execute (its row sums) */
    pr_expand_t terms;      /* built to degree g+1: terms [0, nterms_fwd = C(s+g, g)) are the
                               forward's (claim C3), pairs [0, npairs_fwd) theirs */
    double *alpha;          /* terms->nterms: α_e (0 past the forward's) */
    pr_toeplitz_plan_t tp;
    int nthreads;
    pr_fast_thread_struct *thr;
    int streamed;           /* 0: the pairs' spectra kept; 1: recomputed in each execute */
    double *spec;           /* kept: npairs_fwd spectra of Σ_{e in pair} α_e t_e(ℓ) e^{β_ℓ} (0
                               where masked), each planar: nfreq real parts then nfreq imaginary
                               parts, stride pr_toeplitz_spec_len (an FFTW r2c of length tp->L) */
    double *w;              /* s × (2n-1): the sequences w_k (freed once a kept plan has its
                               spectra) */
    double *bias;           /* 2n-1: e^{β_ℓ}, 0 where masked */
    double *sums;           /* kept: am.count_fwd × kv_heads × (d+1) interleaved spectra, each
                               group's Σ over its pairs of pair spectrum ∘ x̂ per kv head and column;
                               after the inverse phase their scaled inverses (pr_fast_plan_ysum) */
    double *xhat;           /* bm.count_fwd × h_kv × (d+1) interleaved spectra of v_ν ∘ X_c (room
                               for kv_heads kv heads) */
    double *kv_rec;         /* kept plans: 2 × kv_heads × n × d: K, then V, of the last successful
                               execute or pr_fast_execute_kv (NULL when streamed) */
    int rec_kv;             /* its kv heads (x̂ is theirs), 0 when none (pr_fast_plan_xhat) */
    int nchunks;            /* the inverse phase's chunks of a-marginal groups (fixed at plan time) */
    double *part;           /* nchunks × heads × (d+1) × n: each chunk's part of Ã [V | 1] per
                               head, by column (the last: the row sums) */
    double *num;            /* = part: the chunks' sum, added into the first */
    int avx2;               /* 1: the AVX2 multiply-accumulate, 0: the portable fma() one (the same
                               bits; $POLYROPE_FAST_KERNEL=generic at plan time forces it) */
    size_t bytes;           /* the most the plan holds at once (the sequences w, freed once a kept
                               plan has its spectra, included),
                               counted as allocated: pr_fast_plan_bytes_heads for its sizes */
    double plan_seconds;    /* wall time of pr_fast_plan */
    long plan_transforms;   /* symbol transforms done while planning */
    long transforms;        /* forward + inverse transforms of the last execute */
    long fwd_transforms, inv_transforms;
    double fftw_seconds;    /* per thread, time inside transforms in the last execute (if timing) */
    double phase_seconds[4];/* wall time of the last execute's phases: x̂, products, inverse
                               transforms, division */
    int timing;             /* set to 1 to measure fftw_seconds (costs two clock reads each) */
    int products_blocked;   /* set to 1 for the products by frequency blocks at every size (tests: the
                               same bits as each group's in the inverse phase) */
    int products_fused;     /* 1: the last run (execute or pr_fast_execute_kv, set as it starts, failed
                               or not) formed each group's sums in the inverse phase (kept spectra, x̂
                               within 4 MiB: math.md §5); a successful execute's phase_seconds[1] is
                               then ~0 */
} pr_fast_plan_struct;
typedef pr_fast_plan_struct pr_fast_plan_t[1];

/* Bytes pr_fast_plan_gqa holds for these sizes (da, db: distinct a and b values of the
 * support; npairs: the forward's (μ, ν) pairs, E->npairs_fwd, or -1 for the bound
 * Σ_k min(C(s+k-1, k), C(da+k-1, k) C(db+k-1, k)), attained by a full support), kept or streamed,
 * with omp_get_max_threads() threads' scratch: the plan's allocating code run in count-only mode
 * (pr_mem), so it equals F->bytes. 0 if it overflows. */
size_t pr_fast_plan_bytes_gqa(int n, int d, int s, int g, int da, int db, long npairs, int heads,
                              int kv_heads, int streamed);

/* pr_fast_plan_bytes_gqa with kv_heads = heads (pr_fast_plan_heads' plan). */
size_t pr_fast_plan_bytes_heads(int n, int d, int s, int g, int da, int db, long npairs, int heads,
                                int streamed);

/* pr_fast_plan_bytes_heads for one head and npairs = -1: exact when streamed, at least F->bytes
 * when kept. */
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
 * order n, under opts' σ, causal mask and bias, for up to `heads` Q heads over up to kv_heads
 * key/value heads per execute (the sums and x̂ are per kv head). The pairs' spectra are kept when
 * the plan then fits in mem_budget bytes, else streamed; PR_EBUDGET if even the streamed plan does
 * not fit or the forward's term count C(s+g, g) passes max_terms. PR_EINVAL without opts->poly,
 * unless 1 <= kv_heads <= heads, or for unknown flags. */
int pr_fast_plan_gqa(pr_fast_plan_t F, const pr_posw_t W, const pr_attn_opts_t *opts, int heads,
                     int kv_heads, size_t mem_budget, long max_terms, unsigned flags);

/* pr_fast_plan_gqa with kv_heads = heads (any grouping of up to `heads` heads). */
int pr_fast_plan_heads(pr_fast_plan_t F, const pr_posw_t W, const pr_attn_opts_t *opts, int heads,
                       size_t mem_budget, long max_terms, unsigned flags);

/* pr_fast_plan_heads for one head. */
int pr_fast_plan(pr_fast_plan_t F, const pr_posw_t W, const pr_attn_opts_t *opts,
                 size_t mem_budget, long max_terms, unsigned flags);
void pr_fast_destroy(pr_fast_plan_t F);

/* O (h×n×d) = diag(Ã 1)^{-1} Ã V per head for this plan, Q (h×n×d), K, V (h_kv×n×d): Q head i
 * with K, V head i / (h / h_kv). Allocates nothing; each head's result is bit for bit that of a
 * one-head execute on its slices. PR_EINVAL unless 1 <= h <= F->heads, h_kv <= F->kv_heads and
 * h_kv divides h; PR_ENONFINITE for NaN/Inf in Q, K, V; PR_EDOMAIN if a row sum of Ã is not
 * positive (P's relative error is then not < 1, or rounding exceeded the floor). */
int pr_fast_execute_heads(double *O, pr_fast_plan_t F, int h, int h_kv, const double *Q,
                          const double *K, const double *V);

/* pr_fast_execute_heads for one head: O (n×d) from Q, K, V (n×d). */
int pr_fast_execute(double *O, pr_fast_plan_t F, const double *Q, const double *K, const double *V);

/* The last execute's x̂ when it was made from exactly these K, V (h_kv × n × d each, compared bit
 * for bit with the plan's record of them) on h_kv kv heads, else NULL (always for a streamed plan,
 * which keeps no record): FFT(v_ν ∘ X_c) of
 * b-marginal ν < terms->bm->count_fwd, kv head k and column c of X = [V_k | 1] at
 * ((ν·h_kv + k)(d+1) + c)·pr_toeplitz_spec_len(tp), interleaved, v_ν by pr_expand_marg_eval and
 * transformed by pr_toeplitz_vec_spec(_mul) on F->tp. The backward takes it as its Ŷ. */
const double *pr_fast_plan_xhat(const pr_fast_plan_t F, int h_kv, const double *K, const double *V);

/* Under the same condition, the last execute's inverse transforms of the sums, scaled by 1/L as
 * the execute scales them (pr_toeplitz_spec_inverse's roundings): (1/L)·IFFT(Σ_{pairs of μ} pair
 * spectrum ∘ x̂_ν) of a-marginal μ < terms->am->count_fwd, kv head k and column c, n doubles at
 * ((μ·h_kv + k)(d+1) + c)·pr_toeplitz_spec_len(tp); else NULL. They depend on K, V and the plan
 * only; dQ's sums of the sizes <= g are multiples of them, and the backward takes them. */
const double *pr_fast_plan_ysum(const pr_fast_plan_t F, int h_kv, const double *K, const double *V);

/* The half of an execute that depends on K, V only (x̂, the products, the inverse transforms),
 * made on F's buffers with the bits an execute makes, and recorded, unless the record already
 * holds these K, V (*made: the transforms it made, 0 then). It changes neither the last execute's
 * row sums nor its timing. For the backward (pr_backward_execute_heads); not concurrently with
 * another execute on F. PR_EINVAL for a streamed plan or h_kv outside [1, F->kv_heads];
 * PR_ENONFINITE for NaN/Inf in K, V; PR_EDOMAIN if an inverse is not finite. */
int pr_fast_execute_kv(long *made, pr_fast_plan_t F, int h_kv, const double *K, const double *V);

/* D̃_i = (Ã 1)_i from the last execute into D: F->exec_heads × n entries, head-major (n for one
 * head): the backward's row sums. */
void pr_fast_rowsums(double *D, const pr_fast_plan_t F);

/* The n row sums of head `head` (< F->exec_heads) of the last execute into D. */
void pr_fast_rowsums_head(double *D, const pr_fast_plan_t F, int head);

/* Planar spectrum of Σ_{e in pair} α_e t_e e^β for a forward pair (< terms->npairs_fwd; kept
 * plans only, NULL when streamed or out of range). */
const double *pr_fast_plan_pair_spectrum(const pr_fast_plan_t F, long pair);

/* Memory (bytes) and work (operations) of the FFT path's forward for W, n, d and degree g:
 * estimates in double (+Inf past it). The bytes are pr_fast_plan_bytes of the streamed plan (what
 * pr_fast_plan holds at least); the operations roughly what execute computes. pr_control_needs
 * adds the low-rank path's. */
void pr_fast_needs(double *bytes, double *ops, const pr_posw_t W, int n, int d, int g);

/* The same for a plan of `heads` Q heads over kv_heads K, V heads (dividing heads; grouped-query:
 * x̂, the sums and the transforms are per kv head) executed on as many. */
void pr_fast_needs_heads(double *bytes, double *ops, const pr_posw_t W, int n, int d, int g,
                         int heads, int kv_heads);

#ifdef __cplusplus
}
#endif
#endif
