/* pr_backward_impl.h: the backward plan's layout, shared by the files of module pr_backward
 * (pr_backward.c: plan; pr_backward_exec.c: execute; pr_backward_lowrank.c: the low-rank path).
 * Internal: not installed. */
#ifndef PR_BACKWARD_IMPL_H
#define PR_BACKWARD_IMPL_H

#include <stddef.h>
#include "pr_backward.h"
#include "pr_toeplitz.h"

enum { SYM_BLK = 256 };     /* offsets per block of the symbol loops */
enum { TBATCH = 32 };        /* at most this many terms of one a-marginal group are blocked together
                                (symbols, products); a plan's batch is min(TBATCH, its largest group) */

/* One thread's scratch, and its part of the outputs (thread 0 writes the caller's outputs; the
 * others' parts are added in thread order, so the sums do not depend on scheduling). */
typedef struct {
    pr_toeplitz_work_t ws;
    double *tsym;                /* tbatch × (2n-1): the symbols of one batch */
    double *csym, *cnu;          /* tbatch × (2n-1): correlations of the (μ, ν) of one batch */
    double *preb;                /* (s+1) × SYM_BLK: prefix products of one block of offsets */
    double *rbuf, *zbuf, *ycol, *tmp;  /* n each */
    double *That, *Xhat, *accQ, *corr, *accK, *accV;  /* spectra */
    double *dQ, *dK, *dV, *kappa, *dw, *kappa_w;      /* this thread's part (thread 0: kappa_w only) */
    int st;
} bw_thread;

struct pr_backward_plan_s {
    int n, d, s, g, G, want_dw;
    size_t sl;                   /* doubles per spectrum */
    int *wa, *wb;                /* support pairs */
    long nf;                     /* multisets, sorted by (|f|, μ, ν) */
    unsigned char *f;            /* nf × s */
    int *fmu, *fnu;              /* marginal ids */
    double *alpha, *ahat;        /* α_f (0 for |f| > g), α̂_f (0 for |f| = 0) */
    double *poly;                /* c_0..c_g */
    const double **fspec;        /* the forward's spectrum of α_f t_f, or NULL: transform t_f */
    int nmu, nnu;
    unsigned char *mu, *nu;      /* nmu × d, nnu × d exponent vectors */
    long *mu_start;              /* first f of each μ (nmu+1 entries) */
    int *nu_size_start;          /* first ν of each size (G+2 entries); ν sorted by (|ν|, ν) */
    long npairs, reused;
    int tbatch;                  /* terms per batch: min(TBATCH, the largest a-marginal group), ≥ 2 */
    double bytes;
    long transforms;
    /* engine: the forward's Toeplitz plan, or our own */
    int *mu_size_start;          /* first μ of each size (G+2 entries); μ ids are sorted by size */
    const pr_toeplitz_plan_struct *tp;
    pr_toeplitz_plan_t own_tp;
    int has_own_tp;
    /* tables (symbol layout: offset ℓ at ℓ+n-1) and buffers */
    double *wpow;                /* s × (G+1) × (2n-1): w_k^p */
    double *bias;                /* 2n-1: e^{β_ℓ}, 0 where masked */
    double *qpow, *kpow;         /* d × (G+1) × n */
    double *xc;                  /* (d+2) × n: dO_c/D̃ (c<d), -r/D̃, ‖dO‖₁/D̃ */
    int has_kappa_w;             /* thr[0].kappa_w = Σ_{i-j=ℓ} ‖dO_i‖₁ P̃_ij (with dw and kappa) */
    double *Yhat;                /* spectra of y_c v_ν for the ν of two sizes (m even, m odd), shared */
    size_t ysize;                /* doubles per size class of Yhat */
    int nthreads;
    bw_thread *thr;
};

/* multisets (temporary: pr_expand takes them over) */
double pr_backward_multinomial_(const unsigned char *f, int s);
double pr_backward_binom_(int a, int b);
void pr_backward_enum_(unsigned char *f, long *cnt, unsigned char *cur, int k, int s, int left);
int pr_backward_vec_size_(const unsigned char *x, int d);
double pr_backward_lowrank_bytes_(int n, int d, double F);

#endif
