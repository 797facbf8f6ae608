/* pr_dense_impl.h: what the files of module pr_dense share (pr_dense.c: preparation and the
 * forward; pr_dense_tile.c: score tiles and their weights; pr_dense_backward.c; pr_dense_err.c:
 * the error estimate). Internal: not installed. */
#ifndef PR_DENSE_IMPL_H
#define PR_DENSE_IMPL_H

#include <stddef.h>
#include <cblas.h>
#include "pr_dense.h"

enum { BQ = 128, BK = 256 };
enum { PR_DENSE_NR = 32 };  /* keys per packed strip (pr_dense_kernel.c); BK is a multiple */

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define PR_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define PR_CLONES
#endif

typedef struct {
    int n, d, gemm;
    size_t L;              /* 2n - 1 */
    const double *Qf, *Kf; /* GEMM: σ·Q' and K' (n×d; Kf only without kern or with V) */
    int kern;              /* products through pr_dense_kernel.c (else OpenBLAS) */
    int vexp;              /* exp through pr_dense_exp_sum_ (else vexp_sum) */
    const double *Kp;      /* GEMM and kern: K' packed (pr_dense_pack_) */
    const double *Vp;      /* kern, when prep_init was given V (the backward's dO Vᵀ): V packed */
    const double *Q;       /* LOOP: Q (n×d) */
    double *Kt;            /* LOOP: Kᵀ (d×n) */
    double *wrev;          /* LOOP: wrev[k·L + t] = σ·w_k(n-1-t), so w_k(i-j) = wrev[k·L + n-1-i+j] */
    const int *a, *b;
    int s;
    int causal;
    double *brev;          /* β reversed like wrev (exp path; NULL when no β) */
    double *ebrev;         /* e^β reversed (polynomial path; NULL when no β) */
    const double *poly;
    int g;
    double *own[5];        /* buffers to free */
} pr_dense_prep_t;

/* a×b doubles (at least one), 64-byte aligned, NULL on overflow or failure; free() frees */
double *pr_dense_alloc_(size_t a, size_t b);

/* width halved from width (a power of two times least) down to least while n/width blocks would
 * leave fewer than per_thread per OpenMP thread: blocks for moderate n */
int pr_dense_block_(int n, int width, int least, int per_thread);

/* loop: force the O(n² s) loop (the backward needs it for dw); V may be NULL (see Vp). Clear
 * even after a failure. */
int pr_dense_prep_init_(pr_dense_prep_t *p, const double *Q, const double *K, const double *V,
                        const pr_posw_struct *W, int n, int d, const pr_attn_opts_t *opts, int loop);
void pr_dense_prep_clear_(pr_dense_prep_t *p);

/* Xr = X rotated by R_{sign·i} in row i (pr_rope_rotate's result) from the factorised RoPE W's
 * own cos and sin sequences; Xr may equal X */
void pr_dense_rotate_(double *Xr, const double *X, const pr_posw_struct *W, int sign);
/* rows [i0, i1) of that (W NULL: X itself, d its row length), each entry then times scale (the
 * product of the rotated entry: the same bits as a separate pass) */
void pr_dense_rotate_rows_(double *Xr, const double *X, const pr_posw_struct *W, int d, int sign, double scale,
                           int i0, int i1);

/* |M_ij| ≤ σ·max|Q|·max|K|·max_ℓ Σ_k |w_k(ℓ)| (docs/math.md §3, claim C6);
 * refuse inputs where that could overflow, rather than return NaN */
int pr_dense_check_range_(const double *Q, const double *K, const pr_posw_struct *W, int n, int d,
                          const pr_attn_opts_t *opts);

/* offset of w_k(i - j0) in a reversed sequence */
static inline size_t rev_at(const pr_dense_prep_t *p, int i, int j0) { return (size_t)(p->n - 1 - i + j0); }

/* number of unmasked keys of row i in the tile starting at j0 */
static inline int row_len(const pr_dense_prep_t *p, int i, int j0, int mj)
{
    if (!p->causal)
        return mj;
    int c = i - j0 + 1;
    return c < 0 ? 0 : c > mj ? mj : c;
}

/* keys [0, key_end) can be unmasked for queries [i0, i0 + mi) */
static inline int key_end(const pr_dense_prep_t *p, int i0, int mi) { return p->causal ? i0 + mi : p->n; }

/* S[r][c] = M_{i0+r, j0+c} (row stride BK) */
void pr_dense_tile_scores_(double *S, const pr_dense_prep_t *p, int i0, int mi, int j0, int mj);

/* One score-tile row (query i) into weights exp(M + β - shift) (exp path: β already added
 * by pr_dense_row_bias_max_) or P(M)·e^β·e^{-shift}; masked entries 0. The forward passes the running
 * max (exp) or 0 (polynomial), the backward lse. Returns the row sum. */
double pr_dense_row_weights_(double *srow, const pr_dense_prep_t *p, int i, int j0, int mj, double shift);

/* exp path: adds β to the unmasked part of the row and returns its max (-inf if none) */
double pr_dense_row_bias_max_(double *srow, const pr_dense_prep_t *p, int i, int j0, int mj);

/* pr_dense_kernel.c: 1 when this CPU has AVX-512F (then pr_dense_exp_sum_ serves); 1 when the
 * product kernels also serve head dimension d (a multiple of 8) */
int pr_dense_avx512_(void);
int pr_dense_kernel_ok_(int d);
/* y[c] = exp(x[c] - m) for c < len, x[c] - m ≤ 700, within 1.1u (0 below -708); returns the sum.
 * AVX-512F only (pr_dense_avx512_). y may equal x. */
double pr_dense_exp_sum_(double *y, const double *x, double m, int len);
/* doubles of X (n×d) packed: strips of PR_DENSE_NR rows, each d×PR_DENSE_NR, zero-padded; W
 * NULL, or a factorised RoPE W whose R_j turns row j first (bit for bit pr_dense_rotate_) */
size_t pr_dense_packed_len_(int n, int d);
void pr_dense_pack_(double *Xp, const double *X, const pr_posw_struct *W, int n, int d);
/* C (M×N, row stride ldc; the columns up to N rounded up to PR_DENSE_NR are written, from the
 * packed rows there, which are zeros past the last) =
 * A (M×K, row stride lda) · Bᵀ with B packed by pr_dense_pack_ (Bp at B's row 0 of a strip) */
void pr_dense_qk_(double *C, size_t ldc, const double *A, size_t lda, const double *Bp, int M, int N,
                  int K);
/* C (M×N, N a multiple of 8, row stride ldc) += A·B, A (M×K) with entry (r, k) at
 * A[r·ars + k·acs] (so Aᵀ too), B (K×N, row stride ldb) */
void pr_dense_pv_(double *C, size_t ldc, const double *A, size_t ars, size_t acs, const double *B,
                  size_t ldb, int M, int N, int K);

/* OpenBLAS runs single-threaded inside our OpenMP regions, so that the two levels of threads
 * do not oversubscribe the cores; its thread count is restored afterwards. */
static inline void pr_dense_blas_serial_begin_(int *saved)
{
    *saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
}

static inline void pr_dense_blas_serial_end_(int saved) { openblas_set_num_threads(saved); }

static inline void pr_dense_set_status_(int *shared, int st)
{
    if (st) {
#pragma omp critical(pr_dense_status)
        if (!*shared)
            *shared = st;
    }
}

#endif
