/* pr_backward_impl.h: the backward plan's layout, shared by the files of module pr_backward
 * (pr_backward.c: plan; pr_backward_exec.c: execute; pr_backward_kern.c: its inner loops;
 * pr_backward_lowrank.c: the low-rank path).
 * Internal: not installed. */
#ifndef PR_BACKWARD_IMPL_H
#define PR_BACKWARD_IMPL_H

#include <math.h>
#include <stddef.h>
#include "pr_backward.h"
#include "pr_toeplitz.h"
#include "pr_fast.h"
#include "pr_expand.h"

enum { SYM_BLK = 256 };     /* offsets per block of the symbol loops */
enum { TBATCH = 32 };        /* at most this many (μ, ν) pairs are blocked together (symbols,
                                products): those of up to MUBATCH whole a-marginal groups, so that
                                the b-marginals' spectra stream once per batch, not per group (a
                                larger group is split into batches of TBATCH pairs) */
enum { MUBATCH = 4 };

/* One thread's scratch, and its part of the outputs (thread 0 writes the caller's outputs; the
 * others' parts are added in thread order, so the sums do not depend on scheduling). Per-head
 * buffers have room for the plan's `heads` (Q heads for dQ; kv heads for X̂, accQ, accK, accV,
 * dK, dV, kappa). */
typedef struct {
    pr_toeplitz_work_t ws;
    double *tsym;                /* tbatch × (2n-1): Σ_f mult(f) σ^|f| t_f of the pairs of a batch */
    double *csym, *cnu;          /* tbatch × (2n-1): correlations of the pairs of one batch */
    double *preb;                /* SYM_BLK: one term's symbol on one block of offsets */
    double *dws;                 /* tbatch × s × SYM_BLK: dw's parent pairs' symbol sums of one block */
    long *plist;                 /* tbatch × s: a batch's parent pairs, once each */
    int *pidx;                   /* tbatch × s: the parent of (pair i, k) as an index into plist, or -1 */
    double *rbuf, *zbuf, *ycol, *tmp;  /* n each */
    double *xsum;                /* (d+2) × n: a kv head's Σ_hq x_c u_μ, then dQ's inverses */
    double *That;                /* tbatch spectra: the pairs' own transforms */
    double *Xhat;                /* MUBATCH × heads × (d+2): Σ_hq x_c u_μ per a-marginal of a batch and
                                    kv head (its Q heads hq) */
    double *accQ;                /* MUBATCH × heads × (d+1): dQ's frequency-domain sums, alike */
    double *corr;                /* 2 × tbatch spectra: the pairs' correlations (dw's, then κ^w's) */
    double *accK, *accV;         /* heads × maxnu × (d+1): dK's, dV's sums per kv head and ν */
    double *dQ, *dK, *dV, *kappa, *dw, *kappa_w;      /* this thread's part (thread 0: kappa_w only) */
    int st;
} bw_thread;

struct pr_backward_plan_s {
    int n, d, s, g, G, want_dw;
    int heads;                   /* the most Q heads one execute may take */
    int da, db;                  /* distinct a, b values of the support (E->da, E->db) */
    long Lfft;                   /* transform length of tp */
    size_t sl;                   /* doubles per spectrum */
    const pr_expand_struct *E;   /* the terms up to degree G = g+1 (math.md §7): F->terms, or own_E */
    pr_expand_t own_E;
    int has_E;
    pr_fast_plan_struct *F;      /* NULL, or the forward plan whose kept pair spectra serve the
                                    pairs of size m ≤ g with c_m ≠ 0 (its terms are E) and, kept,
                                    whose K, V half (pr_fast_execute_kv) serves Ŷ and dQ's sums */
    double *alpha, *salpha, *base; /* E->nterms: α_f (0 for |f| > g), σ α_f (dw's parents, math.md
                                    §7), and mult(f) σ^|f|, of which α_f and α̂_f are multiples
                                    within a size */
    double *poly;                /* c_0..c_g */
    long *pair_sub, *pair_add;   /* s per pair (sized by terms): the pair of marginals (μ - a_k,
                                    ν - b_k), resp. (μ + a_k, ν + b_k), or -1 (no such pair) */
    long reused;                 /* pairs whose spectrum is F's */
    int keep;                    /* made at plan time: 2, keptG and psym; 1, keptG; 0, neither */
    double sigma;
    long npsym;                  /* room in psym: the pairs of size ≤ g at most (plan_shape) */
    double *psym;                /* npsym × (2n-1) (with dw): Σ_{f in q} mult(f) σ^|f| t_f per pair q <
                                    qG (size ≤ g, dw's parents), the time-domain sums of
                                    pr_backward_symbols_ */
    long nkeep;                  /* room in keptG: the pairs of size G at most (pr_backward.c's plan_shape) */
    long qG;                     /* the first pair of size G (they are contiguous) */
    double *keptG;               /* nkeep spectra (interleaved): Σ_f mult(f) σ^G t̂_f of pair qG + k */
    int tbatch;                  /* pairs per batch: min(TBATCH, MUBATCH·maxnu) */
    long maxnu;                  /* b-marginals of the most numerous size */
    int nthreads;                /* ≤ the a-marginals of size G: the μ loop is what is split */
    double bytes;                /* what the plan holds (pr_mem: the dry run counts the same) */
    long transforms;
    /* engine: the forward's Toeplitz plan, or our own */
    const pr_toeplitz_plan_struct *tp;
    pr_toeplitz_plan_t own_tp;
    int has_own_tp;
    /* tables (symbol layout: offset ℓ at ℓ+n-1) and buffers */
    double *wpow;                /* s × (G+1) × (2n-1): w_k^p */
    double *bias;                /* 2n-1: e^{β_ℓ}, 0 where masked */
    double *qpow, *kpow;         /* heads × da × (G+1) × n: Q_{i,aval[r]}^p per head; K, bval alike */
    double *xc;                  /* heads × (d+2) × n: dO_c/D̃ (c<d), -r/D̃, ‖dO‖₁/D̃ per Q head */
    int has_kappa_w;             /* thr[0].kappa_w = Σ_{i-j=ℓ} ‖dO_i‖₁ P̃_ij (with dw and kappa) */
    double *Yhat;                /* spectra of y_c v_ν per kv head for the ν of two sizes (m even,
                                    m odd), shared: [m&1][kv][ν][c] */
    size_t ysize;                /* doubles per size class of Yhat */
    int forward_xhat;            /* the last execute took F's K, V half as F's last execute left it */
    long kv_transforms;          /* the last execute's transforms of F's K, V half (made on F) */
    bw_thread *thr;
};

/* The spectrum F keeps for pair q of size m (F's Σ_{e in q} α_e t̂_e e^β, planar), when it keeps
 * one and c_m ≠ 0 (else F's would be 0 where α̂ is not: the pair is transformed here). */
static inline const double *bw_forward_pair(const pr_backward_plan *p, long q, int m)
{
    if (!p->F || m > p->g || p->poly[m] == 0.0)
        return NULL;
    return pr_fast_plan_pair_spectrum(p->F, q);
}

/* The spectrum the plan keeps for pair q of size m (m = G, when the budget allowed them), or NULL */
static inline const double *bw_kept_pair(const pr_backward_plan *p, long q, int m)
{
    return m == p->G && p->keptG ? p->keptG + (size_t)(q - p->qG) * p->sl : NULL;
}

/* Row i's rescalings of dM̃ (pr_backward.c's derivation, (1)) at x[c·stride]: x_c(i) = dO_ic/D̃_i
 * (c < d), x_d(i) = -r_i/D̃_i and, for the G4 bound's κ, x_{d+1}(i) = ‖dO_i‖₁/D̃_i; rinv = 1/D̃_i. */
static inline void bw_xcols(double *x, size_t stride, const double *dO, const double *O, double rinv,
                            int i, int d)
{
    double r = 0.0, l1 = 0.0;
    for (int c = 0; c < d; c++) {
        double g = dO[(size_t)i * d + c];
        r += g * O[(size_t)i * d + c];
        l1 += fabs(g);
        x[(size_t)c * stride] = g * rinv;
    }
    x[(size_t)d * stride] = -r * rinv;
    x[(size_t)(d + 1) * stride] = l1 * rinv;
}

/* pr_backward_kern.c, the execute's inner loops (their comments there): the symbol sums of a
 * batch's pairs and κ^w; dw through the parents; one kv head's columns of the products; whether
 * the products take their AVX2 path. */
void pr_backward_symbols_(const pr_backward_plan *p, bw_thread *th, long q0, int nb, const int *sym,
                          const double *const *Ns);
void pr_backward_dw_(const pr_backward_plan *p, bw_thread *th, long q0, int nb, const double *const *Cs,
                     double *dw);
void pr_backward_mac_cols_(double *aq, double *ak, double *za, double *zb, double *zout, const double *y,
                           const double *x, const double *T, long toff, long ts, double h, size_t cs, int ncol,
                           long mq, int wq, int wz, int zf, int vec);
int pr_backward_mac_vec_(void);

/* Bytes pr_backward_lowrank holds for n, d and degree g, by a dry run of its allocations (pr_mem)
 * and of its features' (pr_expand_marg_bytes); +Inf past double. */
double pr_backward_lowrank_bytes_(int n, int d, int g);

#endif
