#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <omp.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_fast.h"
#include "pr_timing.h"

double pr_fast_binom(int m, int k)
{
    double r = 1.0;
    for (int i = 1; i <= k; i++)
        r = r * (m + i) / i;
    return r;
}

/* ---- marginals: multisets of D values, |m| <= g, depth first ---- */

static void marg_walk(pr_fast_marg_struct *M, long *pos, long parent, int last, int depth,
                      unsigned char *cur)
{
    long idx = (*pos)++;
    memcpy(M->cnt + (size_t)idx * M->D, cur, M->D);
    M->deg[idx] = depth;
    M->parent[idx] = parent;
    M->last[idx] = last;
    if (depth == M->g)
        return;
    for (int v = last < 0 ? 0 : last; v < M->D; v++) {
        cur[v]++;
        marg_walk(M, pos, idx, v, depth + 1, cur);
        cur[v]--;
    }
}

static int marg_cmp(const void *x, const void *y, void *ctx)
{
    const pr_fast_marg_struct *M = ctx;
    return memcmp(M->cnt + (size_t)*(const long *)x * M->D, M->cnt + (size_t)*(const long *)y * M->D,
                  M->D);
}

int pr_fast_marg_init(pr_fast_marg_t M, int D, int g, long max_count)
{
    memset(M, 0, sizeof(*M));
    if (D < 1 || g < 0 || g > 255)
        return PR_EINVAL;
    double c = pr_fast_binom(D, g);
    if (!(c <= (double)max_count))
        return PR_ESIZE;
    M->D = D;
    M->g = g;
    M->count = (long)c;
    size_t cn = (size_t)M->count;
    M->cnt = malloc(cn * D);
    M->deg = malloc(cn * sizeof(int));
    M->parent = malloc(cn * sizeof(long));
    M->last = malloc(cn * sizeof(int));
    M->sorted = malloc(cn * sizeof(long));
    unsigned char *cur = calloc(D, 1);
    if (!M->cnt || !M->deg || !M->parent || !M->last || !M->sorted || !cur) {
        free(cur);
        pr_fast_marg_clear(M);
        return PR_ENOMEM;
    }
    long pos = 0;
    marg_walk(M, &pos, -1, -1, 0, cur);
    free(cur);
    for (long i = 0; i < M->count; i++)
        M->sorted[i] = i;
    qsort_r(M->sorted, cn, sizeof(long), marg_cmp, M);
    return PR_OK;
}

void pr_fast_marg_clear(pr_fast_marg_t M)
{
    free(M->cnt);
    free(M->deg);
    free(M->parent);
    free(M->last);
    free(M->sorted);
    memset(M, 0, sizeof(*M));
}

long pr_fast_marg_find(const pr_fast_marg_t M, const unsigned char *cnt)
{
    long lo = 0, hi = M->count;
    while (lo < hi) {
        long mid = (lo + hi) / 2;
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

/* ---- the walk over the terms of one a-marginal group ----
 * Slot positions p < s visit the support sorted by (a, b); row r owns [rstart[r], rstart[r+1]).
 * At the last slot of a row the multiplicity is forced (the rest of the row's count). */

typedef struct {
    const pr_fast_terms_struct *T;
    const int *rstart;          /* da + 1 */
    const unsigned char *mu;    /* the group's a-marginal, per row */
    unsigned char *e;           /* current multiplicities by support entry */
    long next;                  /* index of the next term */
    /* table mode */
    const double *c;
    double sigma;
    unsigned char *bcnt;
    /* symbol mode (F != NULL) */
    pr_fast_plan_struct *F;
    pr_fast_thread_struct *th;
    int accumulate;             /* streamed execute: add each leaf into th->acc; else keep it */
} walk_t;

static double multinomial(const unsigned char *e, int s)
{
    double r = 1.0;
    int tot = 0;
    for (int k = 0; k < s; k++)
        for (int i = 1; i <= e[k]; i++)
            r = r * (++tot) / i;
    return r;
}

/* Spectra are kept planar (nfreq real parts, then nfreq imaginary parts) so that the
 * multiply-accumulate runs on contiguous vectors; FFTW's interleaved layout is converted once per
 * transform. */
static void to_planar(double *pl, const double *in, long nfreq)
{
    for (long k = 0; k < nfreq; k++) {
        pl[k] = in[2 * k];
        pl[nfreq + k] = in[2 * k + 1];
    }
}

static void to_interleaved(double *in, const double *pl, long nfreq)
{
    for (long k = 0; k < nfreq; k++) {
        in[2 * k] = pl[k];
        in[2 * k + 1] = pl[nfreq + k];
    }
}

/* Y += A ∘ B on nb frequencies of planar spectra whose imaginary parts lie `im` doubles after
 * the real ones. The only floating-point kernel of the accumulation: kept and streamed plans
 * share it, so they agree bit for bit. */
__attribute__((target_clones("avx2", "default")))
static void mac_planar(double *restrict Y, const double *restrict A, const double *restrict B,
                       long nb, long im)
{
    double *restrict Yi = Y + im;
    const double *restrict Ai = A + im, *restrict Bi = B + im;
    for (long k = 0; k < nb; k++) {
        double ar = A[k], ai = Ai[k], br = B[k], bi = Bi[k];
        Y[k] += ar * br - ai * bi;
        Yi[k] += ar * bi + ai * br;
    }
}

/* acc[c] += t̂_e ∘ x̂[ν(e)][c] for c <= d, all frequencies (streamed plans) */
static void mac_term(pr_fast_plan_struct *F, pr_fast_thread_struct *th, const double *that, long term)
{
    size_t sl = pr_toeplitz_spec_len(F->tp);
    long nfreq = F->tp->nfreq;
    const double *xh = F->xhat + (size_t)F->terms->bmi[term] * (F->d + 1) * sl;
    for (int c = 0; c <= F->d; c++)
        mac_planar(th->acc + c * sl, that, xh + c * sl, nfreq, nfreq);
}

static int walk_leaf(walk_t *w, const double *t)
{
    const pr_fast_terms_struct *T = w->T;
    long term = w->next++;
    if (!w->F) {
        int s = T->s, deg = 0;
        memcpy(T->e + (size_t)term * s, w->e, s);
        memset(w->bcnt, 0, T->db);
        for (int k = 0; k < s; k++) {
            deg += w->e[k];
            w->bcnt[T->bcol[k]] += w->e[k];
        }
        T->deg[term] = deg;
        T->alpha[term] = w->c[deg] * multinomial(w->e, s) * pow(w->sigma, deg);
        T->bmi[term] = pr_fast_marg_find(T->bm, w->bcnt);
        return PR_OK;
    }
    pr_fast_plan_struct *F = w->F;
    pr_fast_thread_struct *th = w->th;
    long L = 2L * F->n - 1;
    double *leaf = th->tbuf + (size_t)T->s * L, a = T->alpha[term];
    for (long l = 0; l < L; l++)
        leaf[l] = a * (t ? t[l] : 1.0) * F->bias[l];
    size_t sl = pr_toeplitz_spec_len(F->tp);
    double *out = w->accumulate ? th->acc + (F->d + 2) * sl : F->spec + (size_t)term * sl;
    double *inter = th->acc + (F->d + 1) * sl;
    double t0 = F->timing ? pr_timing_wall() : 0.0;
    int st = pr_toeplitz_symbol_spec(inter, leaf, PR_TOEPLITZ_FULL, F->tp, th->ws);
    if (F->timing)
        th->fftw_seconds += pr_timing_wall() - t0;
    if (st)
        return st;
    to_planar(out, inter, F->tp->nfreq);
    if (w->accumulate)
        mac_term(F, th, out, term);
    return PR_OK;
}

static int walk(walk_t *w, int p, int row, int rem, const double *t)
{
    const pr_fast_terms_struct *T = w->T;
    if (p == T->s)
        return walk_leaf(w, t);
    int k = T->slot[p];
    int lastinrow = p + 1 == w->rstart[row + 1];
    int lo = lastinrow ? rem : 0;
    for (int x = lo; x <= rem; x++) {
        w->e[k] = (unsigned char)x;
        const double *tn = t;
        if (w->F && x > 0) {
            pr_fast_plan_struct *F = w->F;
            long L = 2L * F->n - 1;
            const double *pw = F->pw + ((size_t)k * T->g + (x - 1)) * L;
            double *buf = w->th->tbuf + (size_t)p * L;
            if (t)
                for (long l = 0; l < L; l++)
                    buf[l] = t[l] * pw[l];
            else
                memcpy(buf, pw, sizeof(double) * L);
            tn = buf;
        }
        int nrow = lastinrow ? row + 1 : row;
        int nrem = lastinrow ? (nrow < T->da ? w->mu[nrow] : 0) : rem - x;
        int st = walk(w, p + 1, nrow, nrem, tn);
        if (st)
            return st;
    }
    w->e[k] = 0;
    return PR_OK;
}

/* rows of the sorted support: rstart[r] = first slot position of row r */
static void row_starts(int *rstart, const pr_fast_terms_struct *T)
{
    int r = 0;
    rstart[0] = 0;
    for (int p = 0; p < T->s; p++)
        while (T->arow[T->slot[p]] > r)
            rstart[++r] = p;
    while (r < T->da)
        rstart[++r] = T->s;
}

static int walk_group(walk_t *w, long m)
{
    const pr_fast_terms_struct *T = w->T;
    w->mu = T->am->cnt + (size_t)m * T->da;
    w->next = T->gstart[m];
    memset(w->e, 0, T->s);
    return walk(w, 0, 0, w->mu[0], NULL);
}

/* ---- terms ---- */

static int distinct(int *val, int *idx, const int *x, int s)
{
    int D = 0;
    for (int k = 0; k < s; k++) {
        int seen = 0;
        for (int i = 0; i < D; i++)
            seen |= val[i] == x[k];
        if (!seen)
            val[D++] = x[k];
    }
    for (int i = 1; i < D; i++)
        for (int j = i; j > 0 && val[j - 1] > val[j]; j--) {
            int tmp = val[j];
            val[j] = val[j - 1];
            val[j - 1] = tmp;
        }
    for (int k = 0; k < s; k++)
        for (int i = 0; i < D; i++)
            if (val[i] == x[k])
                idx[k] = i;
    return D;
}

int pr_fast_terms_init(pr_fast_terms_t T, const int *a, const int *b, int s, const double *c, int g,
                       double sigma, long max_terms)
{
    memset(T, 0, sizeof(*T));
    if (s < 1 || g < 0 || g > 255)
        return PR_EINVAL;
    double nt = pr_fast_binom(s, g);
    if (!(nt <= (double)max_terms))
        return PR_EBUDGET;
    T->s = s;
    T->g = g;
    T->nterms = (long)nt;
    T->aval = malloc(sizeof(int) * s);
    T->bval = malloc(sizeof(int) * s);
    T->arow = malloc(sizeof(int) * s);
    T->bcol = malloc(sizeof(int) * s);
    T->slot = malloc(sizeof(int) * s);
    size_t n = (size_t)T->nterms;
    T->e = malloc(n * s);
    T->deg = malloc(n * sizeof(int));
    T->alpha = malloc(n * sizeof(double));
    T->bmi = malloc(n * sizeof(long));
    if (!T->aval || !T->bval || !T->arow || !T->bcol || !T->slot || !T->e || !T->deg || !T->alpha
        || !T->bmi) {
        pr_fast_terms_clear(T);
        return PR_ENOMEM;
    }
    for (int k = 0; k < s; k++)
        if (a[k] < 0 || b[k] < 0) {
            pr_fast_terms_clear(T);
            return PR_EINVAL;
        }
    T->da = distinct(T->aval, T->arow, a, s);
    T->db = distinct(T->bval, T->bcol, b, s);
    for (int k = 0; k < s; k++)
        T->slot[k] = k;
    for (int i = 1; i < s; i++)   /* insertion sort of the support by (a, b) */
        for (int j = i; j > 0; j--) {
            int p = T->slot[j - 1], q = T->slot[j];
            if (a[p] < a[q] || (a[p] == a[q] && b[p] <= b[q]))
                break;
            T->slot[j - 1] = q;
            T->slot[j] = p;
        }
    int st = pr_fast_marg_init(T->am, T->da, g, max_terms);
    if (!st)
        st = pr_fast_marg_init(T->bm, T->db, g, max_terms);
    if (!st && !(T->gstart = malloc(sizeof(long) * (T->am->count + 1))))
        st = PR_ENOMEM;
    if (st) {
        pr_fast_terms_clear(T);
        return st;
    }
    /* group m holds Π_r C(|row r| + μ_r - 1, μ_r) terms */
    int *rstart = malloc(sizeof(int) * (T->da + 1));
    unsigned char *e = calloc(s, 1), *bcnt = calloc(T->db, 1);
    if (!rstart || !e || !bcnt) {
        free(rstart); free(e); free(bcnt);
        pr_fast_terms_clear(T);
        return PR_ENOMEM;
    }
    row_starts(rstart, T);
    T->gstart[0] = 0;
    for (long m = 0; m < T->am->count; m++) {
        double cnt = 1.0;
        for (int r = 0; r < T->da; r++) {
            int len = rstart[r + 1] - rstart[r], mu = T->am->cnt[(size_t)m * T->da + r];
            cnt *= pr_fast_binom(len - 1, mu);
        }
        T->gstart[m + 1] = T->gstart[m] + (long)cnt;
    }
    walk_t w = {.T = T, .rstart = rstart, .e = e, .c = c, .sigma = sigma, .bcnt = bcnt};
    for (long m = 0; m < T->am->count && !st; m++)
        st = walk_group(&w, m);
    free(rstart); free(e); free(bcnt);
    if (!st && T->gstart[T->am->count] != T->nterms)
        st = PR_EINVAL;   /* cannot happen: Σ_μ Π_r C(...) = C(s+g, g) */
    if (st)
        pr_fast_terms_clear(T);
    return st;
}

void pr_fast_terms_clear(pr_fast_terms_t T)
{
    free(T->aval); free(T->bval); free(T->arow); free(T->bcol); free(T->slot);
    free(T->e); free(T->deg); free(T->alpha); free(T->bmi); free(T->gstart);
    pr_fast_marg_clear(T->am);
    pr_fast_marg_clear(T->bm);
    memset(T, 0, sizeof(*T));
}

/* ---- plan ---- */

static int values_in(const int *x, int s, int d);

/* pr_fast_plan_bytes in double (+Inf past it, never wrapped) */
static double plan_bytes(int n, int d, int s, int g, int da, int db, int streamed)
{
    (void)da; /* one a-marginal group is live at a time per thread: their count adds no memory */
    double L = 2.0 * n - 1, nf = pr_toeplitz_good_size(2L * n - 1, 5, 1) / 2 + 1;
    double spec = 16.0 * (nf + 8);
    double thread = spec * (d + 3) + 8.0 * (L * (s + 1) + n * (g + 1 + 2 + d + 1));  /* acc, tbuf, uv, vx, col, num */
    double bytes = spec * pr_fast_binom(db, g) * (d + 1) + 8.0 * L                   /* xhat, bias */
                 + thread * omp_get_max_threads()
                 + (double)pr_fast_binom(s, g) * (s + 24.0);                          /* term tables */
    return bytes + (streamed ? 8.0 * L * s * g : spec * pr_fast_binom(s, g));
}

size_t pr_fast_plan_bytes(int n, int d, int s, int g, int da, int db, int streamed)
{
    double bytes = plan_bytes(n, d, s, g, da, db, streamed);
    return bytes < 0.5 * SIZE_MAX ? (size_t)bytes : 0;
}

static void *alloc_doubles(size_t count)
{
    return count <= SIZE_MAX / sizeof(double) ? malloc(sizeof(double) * (count ? count : 1)) : NULL;
}

/* The large arrays (spectra, powers): 2 MiB aligned and backed by transparent huge pages where
 * the kernel allows, since first-touch page faults otherwise dominate planning on virtual
 * machines. Not zeroed: every entry is written before it is read. */
static double *alloc_big(size_t count)
{
    void *p = NULL;
    if (count > SIZE_MAX / sizeof(double) || posix_memalign(&p, (size_t)2 << 20, sizeof(double) * (count ? count : 1)))
        return NULL;
    madvise(p, sizeof(double) * count, MADV_HUGEPAGE);
    return p;
}

/* transforms done by all threads' workspaces: forward (inverse = 0) or inverse (1) */
static long transforms(const pr_fast_plan_struct *F, int inverse)
{
    long c = 0;
    for (int t = 0; t < F->nthreads; t++)
        c += inverse ? F->thr[t].ws->n_inverse : F->thr[t].ws->n_forward;
    return c;
}

/* first a-marginal group of thread id of nth: contiguous chunks of about nterms/nth terms */
static long group_chunk(const pr_fast_terms_struct *T, int id, int nth)
{
    long m = 0;
    while (m < T->am->count && (double)T->gstart[m] * nth < (double)T->nterms * id)
        m++;
    return m;
}

int pr_fast_plan(pr_fast_plan_t F, const pr_posw_t W, const pr_attn_opts_t *opts,
                 size_t mem_budget, long max_terms, unsigned flags)
{
    double t0 = pr_timing_wall();
    memset(F, 0, sizeof(*F));
    if (!opts->poly || opts->poly_degree < 0 || W->s < 1 || (flags & ~(unsigned)PR_FAST_MEASURE))
        return PR_EINVAL;
    if (!(opts->sigma > 0.0) || !isfinite(opts->sigma))
        return PR_EINVAL;
    int n = W->n, d = W->d, s = W->s, g = opts->poly_degree;
    long L = 2L * n - 1;
    if (pr_vec_check_finite(W->w, (size_t)s * L) || pr_vec_check_finite(opts->poly, g + 1)
        || (opts->beta && pr_vec_check_finite(opts->beta, L)))
        return PR_ENONFINITE;
    /* the streamed plan (term tables included) within the budget before any table is made */
    double need = plan_bytes(n, d, s, g, values_in(W->a, s, d), values_in(W->b, s, d), 1);
    if (!(need <= (double)mem_budget) || !(need < 0.5 * (double)SIZE_MAX))
        return PR_EBUDGET;
    int st = pr_fast_terms_init(F->terms, W->a, W->b, s, opts->poly, g, opts->sigma, max_terms);
    if (st)
        return st;
    const pr_fast_terms_struct *T = F->terms;
    F->n = n;
    F->d = d;
    F->s = s;
    F->g = g;
    size_t kept = pr_fast_plan_bytes(n, d, s, g, T->da, T->db, 0);
    size_t streamed = pr_fast_plan_bytes(n, d, s, g, T->da, T->db, 1);
    if (!streamed || streamed > mem_budget) {
        pr_fast_destroy(F);
        return PR_EBUDGET;
    }
    F->streamed = !kept || kept > mem_budget;
    F->bytes = F->streamed ? streamed : kept;
    unsigned tflags = flags & PR_FAST_MEASURE ? PR_TOEPLITZ_MEASURE_FIXED : PR_TOEPLITZ_ESTIMATE;
    if ((st = pr_toeplitz_plan(F->tp, n, tflags | PR_TOEPLITZ_FORCE_FFT))) {
        pr_fast_destroy(F);
        return st;
    }
    int nt = omp_get_max_threads();
    F->nthreads = nt < T->am->count ? nt : (int)T->am->count;
    F->thr = calloc(F->nthreads, sizeof(pr_fast_thread_struct));
    size_t sl = pr_toeplitz_spec_len(F->tp);
    F->bias = alloc_doubles(L);
    F->pw = alloc_big((size_t)s * g * L);
    F->xhat = alloc_big(sl * T->bm->count * (d + 1));
    F->rstart = malloc(sizeof(int) * (T->da + 1));
    if (!F->streamed)
        F->spec = alloc_big(sl * T->nterms);
    st = F->thr && F->bias && F->pw && F->xhat && F->rstart && (F->streamed || F->spec) ? PR_OK : PR_ENOMEM;
    for (int t = 0; t < F->nthreads && !st; t++) {
        pr_fast_thread_struct *th = &F->thr[t];
        if ((st = pr_toeplitz_work_init(th->ws, F->tp)))
            break;
        th->tbuf = alloc_doubles((size_t)(s + 1) * L);
        th->uv = alloc_doubles((size_t)(g + 1) * n);
        th->vx = alloc_doubles(n);
        th->col = alloc_doubles(n);
        th->num = alloc_doubles((size_t)n * (d + 1));
        th->acc = pr_toeplitz_spec_alloc(F->tp, (size_t)(d + 3));
        th->ecur = calloc(s, 1);
        if (!th->tbuf || !th->uv || !th->vx || !th->col || !th->num || !th->acc || !th->ecur)
            st = PR_ENOMEM;
    }
    if (st) {
        pr_fast_destroy(F);
        return st;
    }
    /* execute's buffers are written once here so that the plan, not the first execute, takes
     * their page faults (at n = 2^15 they cost as much as the execute itself) */
    memset(F->xhat, 0, sizeof(double) * sl * T->bm->count * (d + 1));
    for (int t = 0; t < F->nthreads; t++) {
        pr_fast_thread_struct *th = &F->thr[t];
        memset(th->tbuf, 0, sizeof(double) * (s + 1) * L);
        memset(th->uv, 0, sizeof(double) * (g + 1) * n);
        memset(th->vx, 0, sizeof(double) * n);
        memset(th->col, 0, sizeof(double) * n);
        memset(th->num, 0, sizeof(double) * n * (d + 1));
    }
    for (long l = -(n - 1); l <= n - 1; l++)
        F->bias[l + n - 1] = exp(pr_attn_log_bias(opts, n, l));
    /* powers w_k^p, each from the previous one */
    for (int k = 0; k < s; k++) {
        const double *w = pr_posw_seq(W, k);
        for (int p = 1; p <= g; p++) {
            double *dst = F->pw + ((size_t)k * g + p - 1) * L;
            if (p == 1)
                memcpy(dst, w, sizeof(double) * L);
            else
                for (long l = 0; l < L; l++)
                    dst[l] = dst[l - L] * w[l];
        }
    }
    row_starts(F->rstart, T);
    if (!F->streamed) {
        long f0 = transforms(F, 0);
#pragma omp parallel num_threads(F->nthreads)
        {
            int id = omp_get_thread_num(), nth = omp_get_num_threads();
            pr_fast_thread_struct *th = &F->thr[id];
            walk_t w = {.T = T, .rstart = F->rstart, .e = th->ecur, .F = F, .th = th};
            th->st = PR_OK;
            for (long m = group_chunk(T, id, nth); m < group_chunk(T, id + 1, nth) && !th->st; m++)
                th->st = walk_group(&w, m);
        }
        for (int t = 0; t < F->nthreads; t++)
            st = st ? st : F->thr[t].st;
        F->plan_transforms = transforms(F, 0) - f0;
        free(F->pw);   /* the powers are only needed to stream */
        F->pw = NULL;
        if (st) {
            pr_fast_destroy(F);
            return st;
        }
    }
    F->plan_seconds = pr_timing_wall() - t0;
    return PR_OK;
}

void pr_fast_destroy(pr_fast_plan_t F)
{
    pr_fast_terms_clear(F->terms);
    free(F->spec);
    free(F->xhat);
    for (int t = 0; F->thr && t < F->nthreads; t++) {
        pr_fast_thread_struct *th = &F->thr[t];
        pr_toeplitz_spec_free(th->acc);
        free(th->tbuf); free(th->uv); free(th->vx); free(th->col); free(th->num); free(th->ecur);
        if (th->ws->real)
            pr_toeplitz_work_clear(th->ws);
    }
    free(F->thr);
    free(F->rstart); free(F->pw); free(F->bias);
    pr_toeplitz_destroy(F->tp);
    memset(F, 0, sizeof(*F));
}

void pr_fast_rowsums(double *D, const pr_fast_plan_t F)
{
    for (int i = 0; i < F->n; i++)
        D[i] = F->thr[0].num[(size_t)i * (F->d + 1) + F->d];
}

const double *pr_fast_plan_spectrum(const pr_fast_plan_t F, long term)
{
    if (F->streamed || term < 0 || term >= F->terms->nterms)
        return NULL;
    return F->spec + (size_t)term * pr_toeplitz_spec_len(F->tp);
}

/* ---- execute ---- */

/* the marginal product along the depth-first path: uv[deg] = uv[deg-1] ∘ X[:, val[last]] */
static void marg_step(double *uv, const pr_fast_marg_struct *M, long m, const double *X, int d,
                      const int *val, int n)
{
    int k = M->deg[m];
    double *dst = uv + (size_t)k * n;
    if (k == 0) {
        for (int i = 0; i < n; i++)
            dst[i] = 1.0;
        return;
    }
    const double *src = dst - n;
    int c = val[M->last[m]];
    for (int i = 0; i < n; i++)
        dst[i] = src[i] * X[(size_t)i * d + c];
}

/* The kept spectra of group m against x̂, by blocks of frequencies so that the accumulators and
 * the x̂ blocks stay in cache and each symbol's spectrum streams from memory once. */
enum { FBLOCK = 512 };

static void mac_group(pr_fast_plan_struct *F, pr_fast_thread_struct *th, long m)
{
    const pr_fast_terms_struct *T = F->terms;
    size_t sl = pr_toeplitz_spec_len(F->tp), cols = (size_t)F->d + 1;
    long nfreq = F->tp->nfreq;
    for (long f0 = 0; f0 < nfreq; f0 += FBLOCK) {
        long nb = nfreq - f0 < FBLOCK ? nfreq - f0 : FBLOCK;
        for (long term = T->gstart[m]; term < T->gstart[m + 1]; term++) {
            const double *A = F->spec + (size_t)term * sl + f0;
            const double *X = F->xhat + (size_t)T->bmi[term] * cols * sl + f0;
            for (size_t c = 0; c < cols; c++)
                mac_planar(th->acc + c * sl + f0, A, X + c * sl, nb, nfreq);
        }
    }
}

/* uv[deg m] = the product of marginal m, with its ancestors' products below it (a thread starts
 * its chunk here; after that each marginal follows its parent, marg_step). Recursion of depth
 * deg m + 1 <= g + 1: no array sized by the degree. */
static void marg_path(double *uv, const pr_fast_marg_struct *M, long m, const double *X, int d,
                      const int *val, int n)
{
    if (M->parent[m] >= 0)
        marg_path(uv, M, M->parent[m], X, d, val, n);
    marg_step(uv, M, m, X, d, val, n);
}

/* x̂[ν][c] = FFT(v_ν ∘ X_c), X = [V | 1], for the b-marginals [lo, hi) */
static int xhat_chunk(pr_fast_plan_struct *F, pr_fast_thread_struct *th, long lo, long hi,
                      const double *K, const double *V)
{
    const pr_fast_terms_struct *T = F->terms;
    int n = F->n, d = F->d;
    size_t sl = pr_toeplitz_spec_len(F->tp);
    double *inter = th->acc + (size_t)(d + 1) * sl;
    for (long m = lo; m < hi; m++) {
        if (m == lo)
            marg_path(th->uv, T->bm, m, K, d, T->bval, n);
        else
            marg_step(th->uv, T->bm, m, K, d, T->bval, n);
        const double *v = th->uv + (size_t)T->bm->deg[m] * n;
        for (int c = 0; c <= d; c++) {
            const double *x = v;
            if (c < d) {
                for (int j = 0; j < n; j++)
                    th->vx[j] = v[j] * V[(size_t)j * d + c];
                x = th->vx;
            }
            double t0 = F->timing ? pr_timing_wall() : 0.0;
            int st = pr_toeplitz_vec_spec(inter, x, 1, F->tp, th->ws);
            if (F->timing)
                th->fftw_seconds += pr_timing_wall() - t0;
            if (st)
                return st;
            to_planar(F->xhat + ((size_t)m * (d + 1) + c) * sl, inter, F->tp->nfreq);
        }
    }
    return PR_OK;
}

/* th->num = Σ_μ diag(u_μ) inverse(Σ_{e in group μ} α_e t̂_e ∘ x̂) over the groups [lo, hi) */
static int groups_run(pr_fast_plan_struct *F, pr_fast_thread_struct *th, long lo, long hi,
                      const double *Q)
{
    const pr_fast_terms_struct *T = F->terms;
    int n = F->n, d = F->d, st = PR_OK;
    size_t sl = pr_toeplitz_spec_len(F->tp);
    double *inter = th->acc + (size_t)(d + 1) * sl;
    walk_t w = {.T = T, .rstart = F->rstart, .e = th->ecur, .F = F, .th = th, .accumulate = 1};
    memset(th->num, 0, sizeof(double) * n * (d + 1));
    for (long m = lo; m < hi && !st; m++) {
        if (m == lo)
            marg_path(th->uv, T->am, m, Q, d, T->aval, n);
        else
            marg_step(th->uv, T->am, m, Q, d, T->aval, n);
        const double *u = th->uv + (size_t)T->am->deg[m] * n;
        memset(th->acc, 0, sizeof(double) * sl * (d + 1));
        if (F->streamed)
            st = walk_group(&w, m);
        else
            mac_group(F, th, m);
        for (int c = 0; c <= d && !st; c++) {
            to_interleaved(inter, th->acc + c * sl, F->tp->nfreq);
            double t0 = F->timing ? pr_timing_wall() : 0.0;
            st = pr_toeplitz_spec_inverse(th->col, 1, inter, F->tp, th->ws);
            if (F->timing)
                th->fftw_seconds += pr_timing_wall() - t0;
            for (int i = 0; i < n; i++)
                th->num[(size_t)i * (d + 1) + c] += u[i] * th->col[i];
        }
    }
    return st;
}

int pr_fast_execute(double *O, pr_fast_plan_t F, const double *Q, const double *K, const double *V)
{
    int n = F->n, d = F->d, st = PR_OK;
    size_t nd = (size_t)n * d;
    if (pr_vec_check_finite(Q, nd) || pr_vec_check_finite(K, nd) || pr_vec_check_finite(V, nd))
        return PR_ENONFINITE;
    const pr_fast_terms_struct *T = F->terms;
    long f0 = transforms(F, 0), i0 = transforms(F, 1);
    int used = 1;
#pragma omp parallel num_threads(F->nthreads)
    {
        int id = omp_get_thread_num(), nth = omp_get_num_threads();
        pr_fast_thread_struct *th = &F->thr[id];
        th->fftw_seconds = 0.0;
        long nb = T->bm->count;
        th->st = xhat_chunk(F, th, nb * id / nth, nb * (id + 1) / nth, K, V);
#pragma omp barrier
        if (!th->st)
            th->st = groups_run(F, th, group_chunk(T, id, nth), group_chunk(T, id + 1, nth), Q);
        if (id == 0)
            used = nth;
    }
    F->fftw_seconds = 0.0;
    for (int t = 0; t < used; t++) {
        st = st ? st : F->thr[t].st;
        F->fftw_seconds += F->thr[t].fftw_seconds / used;
    }
    F->fwd_transforms = transforms(F, 0) - f0;
    F->inv_transforms = transforms(F, 1) - i0;
    F->transforms = F->fwd_transforms + F->inv_transforms;
    if (st)
        return st;
    /* the threads' parts in thread order: the same sums whatever the scheduling */
    double *num = F->thr[0].num;
    for (int t = 1; t < used; t++)
        for (size_t k = 0; k < (size_t)n * (d + 1); k++)
            num[k] += F->thr[t].num[k];
    for (int i = 0; i < n; i++) {
        const double *r = num + (size_t)i * (d + 1);
        if (!(r[d] > 0.0) || !isfinite(r[d]))
            return PR_EDOMAIN;
        for (int c = 0; c < d; c++)
            O[(size_t)i * d + c] = r[c] / r[d];
    }
    return PR_OK;
}


/* distinct values among x[0..s) in [0, d) */
static int values_in(const int *x, int s, int d)
{
    unsigned char *seen = calloc((size_t)d, 1);
    int k = 0;
    if (!seen)
        return d;
    for (int i = 0; i < s; i++)
        if (x[i] >= 0 && x[i] < d && !seen[x[i]]++)
            k++;
    free(seen);
    return k;
}

void pr_fast_needs(double *bytes, double *ops, const pr_posw_t W, int n, int d, int g)
{
    double Lf = (double)pr_toeplitz_good_size(2L * n - 1, 5, 1), lg = log2(Lf);
    *bytes = plan_bytes(n, d, W->s, g, values_in(W->a, W->s, d), values_in(W->b, W->s, d), 1);
    /* per term a symbol transform (5 L log2 L) and d+1 spectral products; per marginal d+1
     * transforms (at most as many marginals as terms, twice) */
    double T = pr_fast_binom(W->s, g);
    *ops = T * Lf * (5.0 * lg + 4.0 * (d + 1.0)) + 2.0 * pr_fast_binom(d, g) * (d + 1.0) * 5.0 * Lf * lg;
}

