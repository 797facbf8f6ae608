/* pr_dense_impl.h: what the files of module pr_dense share (pr_dense.c: preparation and the
 * forward; pr_dense_tile.c: score tiles and their weights; pr_dense_backward.c; pr_dense_err.c:
 * the error estimate). Internal: not installed. */
#ifndef PR_DENSE_IMPL_H
#define PR_DENSE_IMPL_H

#include <stddef.h>
#include <cblas.h>
#include "pr_dense.h"

enum { BQ = 128, BK = 256 };

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define PR_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define PR_CLONES
#endif

typedef struct {
    int n, d, gemm;
    size_t L;              /* 2n - 1 */
    const double *Qf, *Kf; /* GEMM: σ·Q' and K' (n×d) */
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
    double *own[4];        /* buffers to free */
} pr_dense_prep_t;

/* a×b doubles (at least one), NULL on overflow or failure */
double *pr_dense_alloc_(size_t a, size_t b);

/* loop: force the O(n² s) loop (the backward needs it for dw). Clear even after a failure. */
int pr_dense_prep_init_(pr_dense_prep_t *p, const double *Q, const double *K, const pr_posw_struct *W,
                        int n, int d, const pr_attn_opts_t *opts, int loop);
void pr_dense_prep_clear_(pr_dense_prep_t *p);

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
