#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "pr_status.h"
#include "pr_expand.h"

double pr_expand_binom(int m, int k)
{
    if (k < 0 || m < -1)
        return 0.0;
    double r = 1.0;
    for (int i = 1; i <= k; i++) {
        r = r * (m + i) / i;
        if (r > 0x1p62)
            return INFINITY;
    }
    return r;
}

double pr_expand_multinomial(const unsigned char *e, int s)
{
    double r = 1.0;
    int tot = 0;
    for (int k = 0; k < s; k++)
        for (int i = 1; i <= e[k]; i++)
            r = r * (++tot) / i;
    return r;
}

static int cmp_int(const void *x, const void *y)
{
    int p = *(const int *)x, q = *(const int *)y;
    return (p > q) - (p < q);
}

/* the distinct values of x[0..s) into val (increasing), their count; idx[k] = index of x[k] in
 * val when idx is given. -1 without memory. */
static int distinct(int *val, int *idx, const int *x, int s)
{
    memcpy(val, x, sizeof(int) * s);
    qsort(val, s, sizeof(int), cmp_int);
    int D = 0;
    for (int k = 0; k < s; k++)
        if (k == 0 || val[k] != val[D - 1])
            val[D++] = val[k];
    for (int k = 0; idx && k < s; k++)
        idx[k] = (int)((const int *)bsearch(&x[k], val, D, sizeof(int), cmp_int) - val);
    return D;
}

int pr_expand_ndistinct(const int *x, int s)
{
    int *val = malloc(sizeof(int) * (s > 0 ? s : 1));
    if (!val)
        return s;   /* an upper bound: what callers size by */
    int D = s > 0 ? distinct(val, NULL, x, s) : 0;
    free(val);
    return D;
}

/* ---- multisets of D values, size-major ---- */

/* every table of M for `count` multisets of D values up to size top, through mem */
static void marg_alloc(pr_expand_marg_struct *M, pr_mem_t mem, int D, int top, size_t count)
{
    M->size_start = pr_mem_alloc(mem, (size_t)top + 2, sizeof(long));
    M->cnt = pr_mem_alloc(mem, count, (size_t)D);
    M->deg = pr_mem_alloc(mem, count, 1);
    M->parent = pr_mem_alloc(mem, count, sizeof(long));
    M->last = pr_mem_alloc(mem, count, sizeof(int));
    M->sorted = pr_mem_alloc(mem, count, sizeof(long));
}

double pr_expand_marg_bytes(int D, int g, int extend)
{
    double c = pr_expand_binom(D, g + extend);
    if (!isfinite(c) || D < 1)
        return INFINITY;
    pr_expand_marg_struct M;
    pr_mem_t mem;
    pr_mem_init(mem, 1);
    marg_alloc(&M, mem, D, g + extend, (size_t)c);
    return mem->bytes;
}

static int marg_cmp(const void *x, const void *y, void *ctx)
{
    const pr_expand_marg_struct *M = ctx;
    return memcmp(M->cnt + (size_t)*(const long *)x * M->D, M->cnt + (size_t)*(const long *)y * M->D,
                  M->D);
}

int pr_expand_marg_init(pr_expand_marg_t M, int D, int g, int extend, long max_count)
{
    memset(M, 0, sizeof(*M));
    int top = g + (extend != 0);
    if (D < 1 || g < 0 || top > PR_EXPAND_MAX_DEGREE)
        return PR_EINVAL;
    double c = pr_expand_binom(D, top);
    if (!(c <= (double)max_count))
        return PR_EBUDGET;
    M->D = D;
    M->g = g;
    M->top = top;
    M->count_fwd = (long)pr_expand_binom(D, g);
    M->count = (long)c;
    pr_mem_t mem;
    pr_mem_init(mem, 0);
    marg_alloc(M, mem, D, top, (size_t)M->count);
    M->bytes = mem->bytes;
    if (pr_mem_status(mem)) {
        pr_expand_marg_clear(M);
        return PR_ENOMEM;
    }
    /* level k from level k-1: each parent p, then one more copy of a value v >= last[p] */
    long pos = 1;
    memset(M->cnt, 0, D);
    M->deg[0] = 0;
    M->parent[0] = -1;
    M->last[0] = -1;
    M->size_start[0] = 0;
    M->size_start[1] = 1;
    for (int k = 1; k <= top; k++) {
        for (long p = M->size_start[k - 1]; p < M->size_start[k]; p++)
            for (int v = M->last[p] < 0 ? 0 : M->last[p]; v < D; v++, pos++) {
                memcpy(M->cnt + (size_t)pos * D, M->cnt + (size_t)p * D, D);
                M->cnt[(size_t)pos * D + v]++;
                M->deg[pos] = (unsigned char)k;
                M->parent[pos] = p;
                M->last[pos] = v;
            }
        M->size_start[k + 1] = pos;
    }
    for (long i = 0; i < M->count; i++)
        M->sorted[i] = i;
    qsort_r(M->sorted, (size_t)M->count, sizeof(long), marg_cmp, M);
    return pos == M->count ? PR_OK : PR_EINVAL;   /* cannot fail: Σ_k C(D+k-1, k) = C(D+top, top) */
}

void pr_expand_marg_clear(pr_expand_marg_t M)
{
    free(M->size_start);
    free(M->cnt);
    free(M->deg);
    free(M->parent);
    free(M->last);
    free(M->sorted);
    memset(M, 0, sizeof(*M));
}

long pr_expand_marg_find(const pr_expand_marg_t M, const unsigned char *cnt)
{
    long lo = 0, hi = M->count;
    while (lo < hi) {
        long mid = lo + (hi - lo) / 2;
        int c = memcmp(M->cnt + (size_t)M->sorted[mid] * M->D, cnt, M->D);
        if (c == 0)
            return M->sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* ---- coefficients ---- */

/* the coefficient of a multiset of size m and multinomial mult (math.md §5, §7) */
static double coef(pr_expand_coef_t kind, const double *c, int g, const double *sp, int m, double mult)
{
    if (kind == PR_EXPAND_ALPHA)
        return m <= g ? c[m] * mult * sp[m] : 0.0;
    return m >= 1 ? c[m - 1] / m * mult * sp[m] : 0.0;
}

/* sp[k] = σ^k, k <= top, as pow computes it */
static void sigma_powers(double *sp, double sigma, int top)
{
    for (int k = 0; k <= top; k++)
        sp[k] = pow(sigma, k);
}

void pr_expand_coefs(double *out, const pr_expand_t E, pr_expand_coef_t kind, const double *c,
                     double sigma)
{
    double sp[PR_EXPAND_MAX_DEGREE + 1];
    sigma_powers(sp, sigma, E->top);
    for (long t = 0; t < E->nterms; t++)
        out[t] = coef(kind, c, E->g, sp, E->deg[t], E->mult[t]);
}

void pr_expand_marg_coefs(double *out, const pr_expand_marg_t M, pr_expand_coef_t kind,
                          const double *c, double sigma)
{
    double sp[PR_EXPAND_MAX_DEGREE + 1];
    sigma_powers(sp, sigma, M->top);
    for (long m = 0; m < M->count; m++)
        out[m] = coef(kind, c, M->g, sp, M->deg[m], pr_expand_multinomial(M->cnt + (size_t)m * M->D, M->D));
}

/* ---- the terms ---- */

/* every table of E that pr_expand_init keeps (the marginals' aside), through mem */
static void terms_alloc(pr_expand_struct *E, pr_mem_t mem, int s, int da, size_t nterms,
                        size_t ngroups)
{
    E->aval = pr_mem_alloc(mem, (size_t)s, sizeof(int));
    E->bval = pr_mem_alloc(mem, (size_t)s, sizeof(int));
    E->arow = pr_mem_alloc(mem, (size_t)s, sizeof(int));
    E->bcol = pr_mem_alloc(mem, (size_t)s, sizeof(int));
    E->slot = pr_mem_alloc(mem, (size_t)s, sizeof(int));
    E->rstart = pr_mem_alloc(mem, (size_t)da + 1, sizeof(int));
    E->e = pr_mem_alloc(mem, nterms, (size_t)s);
    E->deg = pr_mem_alloc(mem, nterms, 1);
    E->mult = pr_mem_alloc(mem, nterms, sizeof(double));
    E->bmi = pr_mem_alloc(mem, nterms, sizeof(long));
    E->gstart = pr_mem_alloc(mem, ngroups + 1, sizeof(long));
    E->pstart = pr_mem_alloc(mem, nterms + 1, sizeof(long));   /* at most one pair per term */
    E->gpair = pr_mem_alloc(mem, ngroups + 1, sizeof(long));
}

double pr_expand_bytes(int s, int da, int db, int g, int extend)
{
    double nt = pr_expand_binom(s, g + extend), na = pr_expand_binom(da, g + extend);
    if (!isfinite(nt) || s < 1 || da < 1 || db < 1)
        return INFINITY;
    pr_expand_struct E;
    pr_mem_t mem;
    pr_mem_init(mem, 1);
    terms_alloc(&E, mem, s, da, (size_t)nt, (size_t)na);
    return mem->bytes + pr_expand_marg_bytes(da, g, extend) + pr_expand_marg_bytes(db, g, extend);
}

static int slot_cmp(const void *x, const void *y, void *ctx)
{
    const int *const *ab = ctx;
    int p = *(const int *)x, q = *(const int *)y;
    if (ab[0][p] != ab[0][q])
        return ab[0][p] < ab[0][q] ? -1 : 1;
    if (ab[1][p] != ab[1][q])
        return ab[1][p] < ab[1][q] ? -1 : 1;
    return (p > q) - (p < q);
}

/* The first multiplicities of group mu in depth-first order: each row's count on its last slot. */
static void group_first(unsigned char *e, const pr_expand_struct *E, const unsigned char *mu)
{
    memset(e, 0, E->s);
    for (int r = 0; r < E->da; r++)
        e[E->slot[E->rstart[r + 1] - 1]] = mu[r];
}

/* The next multiplicities in depth-first order (slot positions in sorted order, each row's last
 * slot taking the rest): 0 after the last. */
static int group_next(unsigned char *e, const pr_expand_struct *E, const unsigned char *mu)
{
    for (int r = E->da - 1; r >= 0; r--) {
        int p0 = E->rstart[r], p1 = E->rstart[r + 1] - 1;
        /* the rightmost position p < p1 of row r that can take one more from the slots after it */
        int rest = e[E->slot[p1]];
        for (int p = p1 - 1; p >= p0; p--) {
            if (rest > 0) {
                e[E->slot[p]]++;
                for (int q = p + 1; q < p1; q++)
                    e[E->slot[q]] = 0;
                e[E->slot[p1]] = (unsigned char)(rest - 1);
                for (int r2 = r + 1; r2 < E->da; r2++) {
                    for (int q = E->rstart[r2]; q < E->rstart[r2 + 1]; q++)
                        e[E->slot[q]] = 0;
                    e[E->slot[E->rstart[r2 + 1] - 1]] = mu[r2];
                }
                return 1;
            }
            rest += e[E->slot[p]];
        }
    }
    return 0;
}

static int term_cmp(const void *x, const void *y, void *ctx)
{
    const long *bmi = ctx;
    long p = *(const long *)x, q = *(const long *)y;
    if (bmi[p] != bmi[q])
        return bmi[p] < bmi[q] ? -1 : 1;
    return (p > q) - (p < q);
}

/* scratch of fill_group, sized by the largest group */
typedef struct {
    long *ord, *bmi;
    double *mult;
    unsigned char *e, *bcnt;
} group_scratch;

/* Group m's terms in depth-first order, then sorted by b-marginal (ties kept in that order). */
static int fill_group(pr_expand_struct *E, long m, group_scratch *w)
{
    int s = E->s;
    const unsigned char *mu = E->am->cnt + (size_t)m * E->da;
    long t0 = E->gstart[m], len = E->gstart[m + 1] - t0;
    unsigned char *e = E->e + (size_t)t0 * s;
    group_first(w->e, E, mu);
    for (long j = 0; j < len; j++) {
        unsigned char *ej = w->e + (size_t)j * s;
        if (j > 0) {
            memcpy(ej, ej - s, s);
            if (!group_next(ej, E, mu))
                return PR_EINVAL;   /* cannot happen: the group holds Π_r C(len_r+μ_r-1, μ_r) */
        }
        memset(w->bcnt, 0, E->db);
        for (int k = 0; k < s; k++)
            w->bcnt[E->bcol[k]] += ej[k];
        w->bmi[j] = pr_expand_marg_find(E->bm, w->bcnt);
        w->mult[j] = pr_expand_multinomial(ej, s);
        w->ord[j] = j;
    }
    qsort_r(w->ord, (size_t)len, sizeof(long), term_cmp, w->bmi);
    for (long j = 0; j < len; j++) {
        long o = w->ord[j];
        memcpy(e + (size_t)j * s, w->e + (size_t)o * s, s);
        E->bmi[t0 + j] = w->bmi[o];
        E->mult[t0 + j] = w->mult[o];
        E->deg[t0 + j] = E->am->deg[m];
        if (j == 0 || w->bmi[o] != E->bmi[t0 + j - 1])
            E->pstart[E->npairs++] = t0 + j;
    }
    E->gpair[m + 1] = E->npairs;
    return PR_OK;
}

/* support tables: distinct values, the (a, b)-sorted slots and their rows */
static void support(pr_expand_struct *E, const int *a, const int *b)
{
    int s = E->s;
    distinct(E->aval, E->arow, a, s);
    distinct(E->bval, E->bcol, b, s);
    for (int k = 0; k < s; k++)
        E->slot[k] = k;
    const int *ab[2] = {a, b};
    qsort_r(E->slot, (size_t)s, sizeof(int), slot_cmp, (void *)ab);
    int r = 0;
    E->rstart[0] = 0;
    for (int p = 0; p < s; p++)
        while (E->arow[E->slot[p]] > r)
            E->rstart[++r] = p;
    while (r < E->da)
        E->rstart[++r] = s;
}

int pr_expand_init(pr_expand_t E, const int *a, const int *b, int s, int g, int extend,
                   long max_terms)
{
    memset(E, 0, sizeof(*E));
    int top = g + (extend != 0);
    if (s < 1 || g < 0 || top > PR_EXPAND_MAX_DEGREE)
        return PR_EINVAL;
    for (int k = 0; k < s; k++)
        if (a[k] < 0 || b[k] < 0)
            return PR_EINVAL;
    double nt = pr_expand_binom(s, top);
    if (!(nt <= (double)max_terms))
        return PR_EBUDGET;
    E->s = s;
    E->g = g;
    E->top = top;
    E->nterms_fwd = (long)pr_expand_binom(s, g);
    E->nterms = (long)nt;
    int *val = malloc(sizeof(int) * s);
    if (!val)
        return PR_ENOMEM;
    E->da = distinct(val, NULL, a, s);
    E->db = distinct(val, NULL, b, s);
    free(val);
    int st = pr_expand_marg_init(E->am, E->da, g, extend, max_terms);
    if (!st)
        st = pr_expand_marg_init(E->bm, E->db, g, extend, max_terms);
    pr_mem_t mem;
    pr_mem_init(mem, 0);
    if (!st) {
        terms_alloc(E, mem, s, E->da, (size_t)E->nterms, (size_t)E->am->count);
        E->bytes = mem->bytes + E->am->bytes + E->bm->bytes;
        st = pr_mem_status(mem);
    }
    if (st) {
        pr_expand_clear(E);
        return st;
    }
    support(E, a, b);
    /* group μ holds Π_r C(|row r| + μ_r - 1, μ_r) terms */
    long big = 0;
    E->gstart[0] = 0;
    for (long m = 0; m < E->am->count; m++) {
        double cnt = 1.0;
        for (int r = 0; r < E->da; r++)
            cnt *= pr_expand_binom(E->rstart[r + 1] - E->rstart[r] - 1, E->am->cnt[(size_t)m * E->da + r]);
        E->gstart[m + 1] = E->gstart[m] + (long)cnt;
        big = (long)cnt > big ? (long)cnt : big;
    }
    if (E->gstart[E->am->count] != E->nterms) {   /* cannot happen: Σ_μ Π_r C(...) = C(s+top, top) */
        pr_expand_clear(E);
        return PR_EINVAL;
    }
    group_scratch w = {malloc(sizeof(long) * big), malloc(sizeof(long) * big),
                       malloc(sizeof(double) * big), malloc((size_t)big * s), malloc(E->db)};
    st = w.ord && w.bmi && w.mult && w.e && w.bcnt ? PR_OK : PR_ENOMEM;
    E->gpair[0] = 0;
    for (long m = 0; m < E->am->count && !st; m++)
        st = fill_group(E, m, &w);
    if (!st) {
        E->pstart[E->npairs] = E->nterms;
        E->npairs_fwd = E->gpair[E->am->count_fwd];
    }
    free(w.ord); free(w.bmi); free(w.mult); free(w.e); free(w.bcnt);
    if (st)
        pr_expand_clear(E);
    return st;
}

void pr_expand_clear(pr_expand_t E)
{
    free(E->aval); free(E->bval); free(E->arow); free(E->bcol); free(E->slot); free(E->rstart);
    free(E->e); free(E->deg); free(E->mult); free(E->bmi); free(E->gstart); free(E->pstart);
    free(E->gpair);
    pr_expand_marg_clear(E->am);
    pr_expand_marg_clear(E->bm);
    memset(E, 0, sizeof(*E));
}

void pr_expand_marg_eval(double *restrict uv, const pr_expand_marg_t M, long m, const double *restrict X, int d,
                         const int *val, int n)
{
    enum { PIECE = 512 };   /* rows per piece: one pass over memory instead of one per factor */
    const unsigned char *cnt = M->cnt + (size_t)m * M->D;
    for (int i0 = 0; i0 < n; i0 += PIECE) {
        int i1 = n - i0 < PIECE ? n : i0 + PIECE;
        for (int i = i0; i < i1; i++)
            uv[i] = 1.0;
        for (int v = 0; v < M->D; v++)
            for (int r = 0; r < cnt[v]; r++)
                for (int i = i0; i < i1; i++)
                    uv[i] *= X[(size_t)i * d + val[v]];
    }
}
