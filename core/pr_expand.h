/* pr_expand: the rescaled-Toeplitz expansion's combinatorics, built once (docs/math.md §5-§7;
 * claims C1, C2, C3, C12, G3, G5).
 *
 * A term is a multiset e of the support S = {(a_k, b_k)}_{k<s} of W, written as multiplicities
 * e_k >= 0 by support entry. The forward (math.md §5) needs the terms with |e| <= g; the backward
 * (math.md §7) the same terms and those with |e| = g+1. One pr_expand_t holds both parts in one
 * order, the forward's first:
 *
 *     terms [0, nterms_fwd)        |e| <= g,   nterms_fwd = C(s+g, g)      (claim C3)
 *     terms [nterms_fwd, nterms)   |e| = g+1,  nterms = C(s+g+1, g+1)      (claims G3, G5)
 *
 * so that one expansion serves both: a forward plan builds it extended (F->terms) and the
 * backward borrows it, no remap between orders. An expansion built without the degree g+1 part
 * (extend = 0) is exactly the prefix of one built with it.
 *
 * Marginals. u_e depends only on the a-marginal of e (multiplicities per distinct a value), v_e
 * only on its b-marginal. Marginals, and the low-rank path's features (math.md §6: multisets of
 * the d coordinates), are multisets of D values, enumerated size-major: all of size 0, then 1,
 * ..., then g, then (extended) g+1, so that ids of one size are contiguous, the forward's part is
 * a prefix, and each multiset's parent (the multiset less one copy of its largest value `last`)
 * comes before it. Inside one size, children follow their parents' order, values increasing.
 *
 * Layout of the terms. Terms are grouped by a-marginal μ, groups in μ's id order (so by size,
 * and the forward's groups first): group μ is [gstart[μ], gstart[μ+1]). Inside a group the terms
 * are sorted by b-marginal id ν, so that the terms of one (μ, ν) pair are contiguous (the backward
 * sums their spectra before the products), ties in depth-first order over the support sorted by
 * (a, b) (consecutive terms share long prefixes: a symbol is built from the previous term's
 * prefix products).
 *
 * Coefficients (math.md §5, §7):
 *     α_e = c_|e| · multinomial(e) · σ^|e|            (0 for |e| = g+1)
 *     α̂_e = (c_{|e|-1} / |e|) · multinomial(e) · σ^|e|  (0 for e = ∅)
 * multinomial(e) = |e|! / Π e_k!, exact in double while it stays below 2^53.
 *
 * Sizes are formed in double by pr_expand_binom (exact below 2^53, +Inf past 2^62: the one
 * overflow rule), checked against the caller's limit before anything is allocated. The bytes an
 * expansion holds come from the allocating code itself run in count-only mode (pr_mem). */
#ifndef PR_EXPAND_H
#define PR_EXPAND_H

#include <stddef.h>
#include "pr_mem.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Multiplicities and degrees are unsigned char: g + 1 <= PR_EXPAND_MAX_DEGREE. */
#define PR_EXPAND_MAX_DEGREE 255

/* C(m+k, k) as a double: pr_expand_binom(s, g) = C(s+g, g) multisets of size <= g of s values,
 * pr_expand_binom(s-1, k) = C(s+k-1, k) of size exactly k. Exact below 2^53, +Inf once it
 * passes 2^62 (the one overflow rule); 0 for k < 0 or m < -1 (m = -1: multisets of no
 * values, 1 of size 0). */
double pr_expand_binom(int m, int k);

/* |e|! / Π_k e_k! for e[0..s), as a product of binomials in k's order (exact below 2^53). */
double pr_expand_multinomial(const unsigned char *e, int s);

/* Number of distinct values among x[0..s). */
int pr_expand_ndistinct(const int *x, int s);

/* ---- multisets of D values: marginals and low-rank features ---- */

typedef struct {
    int D, g, top;          /* top = g, or g + 1 when extended */
    long count_fwd;         /* C(D+g, g): ids [0, count_fwd) have size <= g */
    long count;             /* C(D+top, top) */
    long *size_start;       /* top + 2: ids of size k are [size_start[k], size_start[k+1]) */
    unsigned char *cnt;     /* count × D multiplicities */
    unsigned char *deg;     /* size of each multiset */
    long *parent;           /* the multiset less one copy of `last`; -1 for the empty one */
    int *last;              /* its largest value; -1 for the empty one */
    long *sorted;           /* ids sorted by cnt (memcmp), for pr_expand_marg_find */
    double bytes;           /* what the tables hold, counted as they were allocated */
} pr_expand_marg_struct;
typedef pr_expand_marg_struct pr_expand_marg_t[1];

/* Multisets of D >= 1 values of size <= g, and of size g+1 too when extend. PR_EBUDGET if the
 * count passes max_count, PR_EINVAL for D < 1, g < 0 or g + extend > PR_EXPAND_MAX_DEGREE. */
int pr_expand_marg_init(pr_expand_marg_t M, int D, int g, int extend, long max_count);
void pr_expand_marg_clear(pr_expand_marg_t M);

/* id of the multiset with multiplicities cnt[0..D), or -1 (also for a size past top) */
long pr_expand_marg_find(const pr_expand_marg_t M, const unsigned char *cnt);

/* uv[i] = Π_v X[i·d + val[v]]^{cnt_v} for multiset m (multiplicities M->cnt of the values val,
 * increasing), i < n: the factors multiplied in one at a time, value by value, by cache-sized
 * pieces of rows. The forward's x̂ and the backward's own Ŷ are both made by it. */
void pr_expand_marg_eval(double *uv, const pr_expand_marg_t M, long m, const double *X, int d, const int *val,
                         int n);

/* Bytes pr_expand_marg_init holds for these sizes (its allocations counted, none made); +Inf
 * past double. */
double pr_expand_marg_bytes(int D, int g, int extend);

/* ---- the terms ---- */

typedef struct {
    int s, g, top;          /* top = g (forward only) or g + 1 (with the backward's part) */
    int da, db;             /* distinct a values, distinct b values in S */
    int *aval, *bval;       /* those values (columns of Q, resp. K), increasing */
    int *arow, *bcol;       /* s: index of a_k in aval, of b_k in bval */
    int *slot;              /* s: support entries sorted by (a, b) */
    int *rstart;            /* da + 1: row r of the sorted support is slots [rstart[r], rstart[r+1]) */
    pr_expand_marg_t am;    /* a-marginals over aval: groups [0, am->count_fwd) are the forward's */
    pr_expand_marg_t bm;    /* b-marginals over bval */
    long nterms_fwd;        /* C(s+g, g): terms with |e| <= g (claim C3) */
    long nterms;            /* C(s+g+1, g+1) when extended (claims G3, G5), else nterms_fwd */
    long npairs_fwd;        /* pairs of the forward's terms: pairs [0, npairs_fwd) */
    long npairs;            /* distinct (a-marginal, b-marginal) pairs: runs inside the groups */
    long *pstart;           /* npairs + 1: pair p is terms [pstart[p], pstart[p+1]) */
    long *gpair;            /* am->count + 1: group μ's pairs are [gpair[μ], gpair[μ+1]) */
    unsigned char *e;       /* nterms × s multiplicities, by support entry k */
    unsigned char *deg;     /* |e| (= am->deg of the term's group) */
    double *mult;           /* multinomial(e) */
    long *bmi;              /* b-marginal id of each term (nondecreasing inside a group) */
    long *gstart;           /* am->count + 1: group μ is [gstart[μ], gstart[μ+1]) */
    double bytes;           /* what the tables hold, marginals included, counted as allocated */
} pr_expand_struct;
typedef pr_expand_struct pr_expand_t[1];

/* The terms for the support (a[k], b[k])_{k<s} (values >= 0) and degree g, with the degree g+1
 * part when extend. PR_EBUDGET if the term count passes max_terms; PR_EINVAL for s < 1, a
 * negative value, g < 0 or g + extend > PR_EXPAND_MAX_DEGREE. */
int pr_expand_init(pr_expand_t E, const int *a, const int *b, int s, int g, int extend,
                   long max_terms);
void pr_expand_clear(pr_expand_t E);

/* Bytes pr_expand_init holds for a support of s entries with da distinct a and db distinct b
 * values (its allocations counted, none made); +Inf past double. */
double pr_expand_bytes(int s, int da, int db, int g, int extend);

/* Coefficients of the terms: PR_EXPAND_ALPHA α_e, PR_EXPAND_ALPHA_HAT α̂_e (see above). */
typedef enum { PR_EXPAND_ALPHA = 0, PR_EXPAND_ALPHA_HAT = 1 } pr_expand_coef_t;

/* out[t] for every term t < E->nterms, from P's coefficients c[0..E->g] and the score scale σ. */
void pr_expand_coefs(double *out, const pr_expand_t E, pr_expand_coef_t kind, const double *c,
                     double sigma);

/* The same for the multisets of M (the low-rank features, math.md §6: φ_m's coefficient), c of
 * degree M->g. */
void pr_expand_marg_coefs(double *out, const pr_expand_marg_t M, pr_expand_coef_t kind,
                          const double *c, double sigma);

#ifdef __cplusplus
}
#endif
#endif
