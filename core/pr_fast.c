#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "pr_status.h"
#include "pr_vec.h"
#include "pr_fast.h"
#include "pr_timing.h"
#include "pr_fast_impl.h"

/* Layouts. The pairs' spectra are kept planar (nfreq real parts, then nfreq imaginary parts:
 * pr_fast_plan_pair_spectrum's layout); x̂ and the accumulators are FFTW's interleaved complex
 * numbers, so that they go to and from the transforms without a copy (FFTW's split-array
 * transforms take twice as long). */

enum { FBLOCK_MAX = 2048 };   /* frequencies of a products block (mac_freqs) */

static void to_planar(double *pl, const double *in, long nfreq)
{
    for (long k = 0; k < nfreq; k++) {
        pl[k] = in[2 * k];
        pl[nfreq + k] = in[2 * k + 1];
    }
}

/* ---- symbols ---- */

/* buf = t ∘ w^x, multiplied in as x factors w (t·w·w···, left to right) by cache-sized pieces:
 * no table of powers (at n = 2^20 it held 0.6 GiB of a streamed plan), the same rounding count
 * as t ∘ (w·w···) */
static void times_power(double *restrict buf, const double *restrict t, const double *restrict w, int x,
                        long L)
{
    enum { PIECE = 512 };
    for (long l0 = 0; l0 < L; l0 += PIECE) {
        long l1 = L - l0 < PIECE ? L : l0 + PIECE;
        for (long l = l0; l < l1; l++)
            buf[l] = t[l] * w[l];
        for (int r = 1; r < x; r++)
            for (long l = l0; l < l1; l++)
                buf[l] *= w[l];
    }
}

/* e^β t_e = e^β Π_k w_k^{e_k}, the product taken over the support sorted by (a, b) from the
 * prefix products the thread holds for its previous term: only the slots from the first one that
 * changed are redone (the bias is the empty prefix, so it costs no pass of its own). */
static const double *symbol(const pr_fast_plan_struct *F, pr_fast_thread_struct *th, long term)
{
    const pr_expand_struct *T = F->terms;
    int s = T->s, p0 = 0;
    long L = 2L * F->n - 1;
    const unsigned char *e = T->e + (size_t)term * s;
    if (th->prev >= 0) {
        const unsigned char *q = T->e + (size_t)th->prev * s;
        while (p0 < s && e[T->slot[p0]] == q[T->slot[p0]])
            p0++;
    }
    th->pref[0] = F->bias;
    for (int p = p0; p < s; p++) {
        int k = T->slot[p], x = e[k];
        const double *t = th->pref[p];
        if (x > 0) {
            double *buf = th->tbuf + (size_t)p * L;
            times_power(buf, t, F->w + (size_t)k * L, x, L);
            t = buf;
        }
        th->pref[p + 1] = t;
    }
    th->prev = term;
    return th->pref[s];
}

/* the planar spectrum of Σ_{e in pair} α_e t_e e^β into out: one transform per pair, the same
 * sums kept or streamed */
static int pair_spec(double *out, const pr_fast_plan_struct *F, pr_fast_thread_struct *th, long pair)
{
    const pr_expand_struct *T = F->terms;
    long L = 2L * F->n - 1;
    for (long term = T->pstart[pair]; term < T->pstart[pair + 1]; term++) {
        const double *t = symbol(F, th, term);
        double a = F->alpha[term];
        if (term == T->pstart[pair])
            for (long l = 0; l < L; l++)
                th->leaf[l] = a * t[l];
        else
            for (long l = 0; l < L; l++)
                th->leaf[l] += a * t[l];
    }
    double t0 = F->timing ? pr_timing_wall() : 0.0;
    int st = pr_toeplitz_symbol_spec(th->inter, th->leaf, PR_TOEPLITZ_FULL, F->tp, th->ws);
    if (F->timing)
        th->fftw_seconds += pr_timing_wall() - t0;
    if (!st)
        to_planar(out, th->inter, F->tp->nfreq);
    return st;
}

/* ---- plan ---- */

/* What a plan's allocations depend on. */
typedef struct {
    int n, d, s, g, da, db, heads, kv, streamed, nthreads, nchunks;
    long L, Lt, nterms, nb, npairs;   /* Lt: the transform length */
    long na;                /* the forward's a-marginal groups */
    size_t sl;              /* doubles per spectrum */
} dims_t;

/* Σ_k min(C(s+k-1, k), C(da+k-1, k) C(db+k-1, k)): at most one pair per term, and per pair of
 * marginals of one size */
static double pairs_bound(int s, int g, int da, int db)
{
    double p = 0.0;
    for (int k = 0; k <= g; k++)
        p += fmin(pr_expand_binom(s - 1, k), pr_expand_binom(da - 1, k) * pr_expand_binom(db - 1, k));
    return p;
}

static void dims_set(dims_t *D, int n, int d, int s, int g, int da, int db, long npairs, int heads, int kv,
                     int streamed)
{
    long Lt = pr_toeplitz_good_size(2L * n - 1, 5, 1);   /* pr_toeplitz_plan's length (FORCE_FFT) */
    int nt = omp_get_max_threads();
    double na = pr_expand_binom(da, g);
    *D = (dims_t){.n = n, .d = d, .s = s, .g = g, .da = da, .db = db, .heads = heads, .kv = kv,
                  .streamed = streamed, .nthreads = na < nt ? (int)na : nt, .L = 2L * n - 1, .Lt = Lt,
                  .nterms = (long)pr_expand_binom(s, g + 1), .nb = (long)pr_expand_binom(db, g),
                  .npairs = npairs >= 0 ? npairs : (long)pairs_bound(s, g, da, db),
                  .sl = pr_toeplitz_spec_len_of(Lt)};
    D->na = (long)na;
    /* the inverse phase's chunks of groups: two per thread, so that dealing them largest first
     * balances the streamed plans' uneven groups too */
    D->nchunks = 2 * D->nthreads < na ? 2 * D->nthreads : (int)na;
}

/* Every allocation of a plan of sizes D through mem: with tp NULL (dry) nothing is allocated and
 * mem->bytes is what would be; with tp the same allocations are made into F. The term tables are
 * pr_expand's (counted by its own dry run). */
static void plan_alloc(pr_fast_plan_struct *F, pr_mem_t mem, const dims_t *D, const pr_toeplitz_plan_struct *tp)
{
    size_t L = (size_t)D->L, sl = D->sl, n = (size_t)D->n, d1 = (size_t)D->d + 1, h = (size_t)D->heads,
           kv = (size_t)D->kv;
    pr_mem_note(mem, pr_expand_bytes(D->s, D->da, D->db, D->g, 1));
    F->alpha = pr_mem_alloc(mem, (size_t)D->nterms, sizeof(double));
    F->thr = pr_mem_zalloc(mem, (size_t)D->nthreads, sizeof(pr_fast_thread_struct));
    F->bias = pr_mem_alloc(mem, L, sizeof(double));
    F->w = pr_mem_big(mem, (size_t)D->s, L * sizeof(double));
    F->xhat = pr_mem_big(mem, (size_t)D->nb * kv, sl * d1 * sizeof(double));
    /* kept plans only: a streamed one is where memory is short (n = 2^20: 32 MiB more, against 4 GiB) */
    F->kv_rec = D->streamed ? NULL : pr_mem_alloc(mem, 2 * kv * n, (size_t)D->d * sizeof(double));
    F->spec = D->streamed ? NULL : pr_mem_big(mem, (size_t)D->npairs, sl * sizeof(double));
    /* kept: every group's sums at once, per kv head (the threads split the frequencies, then the
     * groups; fused: the groups only), on huge pages as x̂ and the spectra: 8 heads' blocks touch
     * more 4 KiB pages than the TLB holds */
    F->sums = D->streamed ? NULL : pr_mem_big(mem, (size_t)D->na * kv * d1, sl * sizeof(double));
    F->part = pr_mem_alloc(mem, (size_t)D->nchunks * h * d1, n * sizeof(double));
    F->num = F->part;   /* the chunks' parts are added into the first */
    for (int t = 0; t < D->nthreads && (mem->dry || F->thr); t++) {
        pr_fast_thread_struct dummy, *th = F->thr ? &F->thr[t] : &dummy;
        th->tbuf = pr_mem_alloc(mem, (size_t)D->s * L, sizeof(double));
        th->pref = pr_mem_alloc(mem, (size_t)D->s + 1, sizeof(double *));
        th->leaf = pr_mem_alloc(mem, L, sizeof(double));
        th->u = pr_mem_alloc(mem, h * n, sizeof(double));   /* u_μ of a kv head's Q heads */
        th->op = pr_mem_alloc(mem, h, sizeof(double *));
        th->up = pr_mem_alloc(mem, h, sizeof(double *));
        th->blk = pr_mem_alloc(mem, D->streamed ? 0 : kv * d1 * 2 * FBLOCK_MAX, sizeof(double));
        th->yp = pr_mem_alloc(mem, kv * d1, sizeof(double *));
        th->xp = pr_mem_alloc(mem, kv * d1, sizeof(double *));
        /* FFTW's: (streamed) one group's sums, an interleaved and a planar pair spectrum, the
         * workspace */
        size_t nacc = D->streamed ? kv * d1 : 0;
        pr_mem_note(mem, 8.0 * sl * (double)(nacc + 2));
        pr_mem_note(mem, pr_toeplitz_work_bytes(D->Lt));
        if (tp && F->thr) {
            th->acc = pr_toeplitz_spec_alloc(tp, nacc + 2);
            th->inter = th->acc ? th->acc + nacc * sl : NULL;
            th->leaf_spec = th->acc ? th->inter + sl : NULL;
            mem->failed |= !th->acc || pr_toeplitz_work_init(th->ws, tp) != PR_OK;
        }
    }
}

/* pr_fast_plan_bytes_gqa in double: +Inf when the counts pass double's exact range */
static double plan_bytes(int n, int d, int s, int g, int da, int db, long npairs, int heads, int kv, int streamed)
{
    if (!isfinite(pr_expand_binom(s, g + 1)) || n < 1 || d < 1 || da < 1 || db < 1 || kv < 1 || heads < kv)
        return INFINITY;
    dims_t D;
    dims_set(&D, n, d, s, g, da, db, npairs, heads, kv, streamed);
    pr_fast_plan_struct F;
    pr_mem_t mem;
    pr_mem_init(mem, 1);
    plan_alloc(&F, mem, &D, NULL);
    return mem->bytes;
}

size_t pr_fast_plan_bytes_gqa(int n, int d, int s, int g, int da, int db, long npairs, int heads,
                              int kv_heads, int streamed)
{
    double b = plan_bytes(n, d, s, g, da, db, npairs, heads, kv_heads, streamed);
    return b < 0.5 * (double)SIZE_MAX ? (size_t)b : 0;
}

size_t pr_fast_plan_bytes_heads(int n, int d, int s, int g, int da, int db, long npairs, int heads,
                                int streamed)
{
    return pr_fast_plan_bytes_gqa(n, d, s, g, da, db, npairs, heads, heads, streamed);
}

size_t pr_fast_plan_bytes(int n, int d, int s, int g, int da, int db, int streamed)
{
    return pr_fast_plan_bytes_heads(n, d, s, g, da, db, -1, 1, streamed);
}

/* transforms done by all threads' workspaces: forward (inverse = 0) or inverse (1) */
static long transforms(const pr_fast_plan_struct *F, int inverse)
{
    long c = 0;
    for (int t = 0; t < F->nthreads; t++)
        c += inverse ? F->thr[t].ws->n_inverse : F->thr[t].ws->n_forward;
    return c;
}

/* First a-marginal group of thread id of nth for the plan's pair spectra: contiguous chunks of
 * about equal work, a group weighing its pairs (their symbols and transforms) plus 3. A pair's
 * spectrum does not depend on the split. */
static long group_chunk(const pr_expand_struct *T, int id, int nth)
{
    long m = 0, ng = T->am->count_fwd;
    double total = (double)T->npairs_fwd + 3.0 * ng;
    while (m < ng && ((double)T->gpair[m] + 3.0 * m) * nth < total * id)
        m++;
    return m;
}

/* the kept spectra: each thread the pairs of its chunk of groups */
static int plan_spectra(pr_fast_plan_struct *F)
{
    const pr_expand_struct *T = F->terms;
    int st = PR_OK;
    long f0 = transforms(F, 0);
#pragma omp parallel num_threads(F->nthreads)
    {
        int id = omp_get_thread_num(), nth = omp_get_num_threads();
        pr_fast_thread_struct *th = &F->thr[id];
        size_t sl = pr_toeplitz_spec_len(F->tp);
        long p1 = T->gpair[group_chunk(T, id + 1, nth)];
        th->st = PR_OK;
        th->prev = -1;
        for (long p = T->gpair[group_chunk(T, id, nth)]; p < p1 && !th->st; p++)
            th->st = pair_spec(F->spec + (size_t)p * sl, F, th, p);
    }
    for (int t = 0; t < F->nthreads; t++)
        st = st ? st : F->thr[t].st;
    F->plan_transforms = transforms(F, 0) - f0;
    return st;
}

/* bias, the sequences w_k, and execute's buffers written once so that
 * the plan, not the first execute, takes their page faults (at n = 2^15 they cost as much as the
 * execute itself) */
static void plan_tables(pr_fast_plan_struct *F, const pr_posw_t W, const pr_attn_opts_t *opts)
{
    int n = F->n, d = F->d, s = F->s;
    size_t L = 2 * (size_t)n - 1, h = (size_t)F->heads, kv = (size_t)F->kv_heads;
    size_t sl = pr_toeplitz_spec_len(F->tp);
    memset(F->xhat, 0, sizeof(double) * sl * F->terms->bm->count_fwd * kv * (d + 1));
    if (F->sums)
        memset(F->sums, 0, sizeof(double) * sl * F->terms->am->count_fwd * kv * (d + 1));
    for (int t = 0; t < F->nthreads; t++) {
        pr_fast_thread_struct *th = &F->thr[t];
        memset(th->tbuf, 0, sizeof(double) * s * L);
        memset(th->leaf, 0, sizeof(double) * L);
        memset(th->u, 0, sizeof(double) * h * n);
        if (!F->streamed)
            memset(th->blk, 0, sizeof(double) * kv * (d + 1) * 2 * FBLOCK_MAX);
    }
    memset(F->part, 0, sizeof(double) * F->nchunks * h * n * (d + 1));
    if (F->kv_rec)
        memset(F->kv_rec, 0, sizeof(double) * 2 * kv * n * d);
    for (long l = -(n - 1); l <= n - 1; l++)
        F->bias[l + n - 1] = exp(pr_attn_log_bias(opts, n, l));
    memcpy(F->w, W->w, sizeof(double) * s * L);
}

int pr_fast_plan_gqa(pr_fast_plan_t F, const pr_posw_t W, const pr_attn_opts_t *opts, int heads,
                     int kv_heads, size_t mem_budget, long max_terms, unsigned flags)
{
    double t0 = pr_timing_wall();
    memset(F, 0, sizeof(*F));
    if (!opts->poly || opts->poly_degree < 0 || W->s < 1 || kv_heads < 1 || heads < kv_heads ||
        (flags & ~(unsigned)PR_FAST_MEASURE))
        return PR_EINVAL;
    if (!(opts->sigma > 0.0) || !isfinite(opts->sigma) || opts->poly_degree + 1 > PR_EXPAND_MAX_DEGREE)
        return PR_EINVAL;
    int n = W->n, d = W->d, s = W->s, g = opts->poly_degree;
    long L = 2L * n - 1;
    if (pr_vec_check_finite(W->w, (size_t)s * L) || pr_vec_check_finite(opts->poly, g + 1)
        || (opts->beta && pr_vec_check_finite(opts->beta, L)))
        return PR_ENONFINITE;
    if (!(pr_expand_binom(s, g) <= (double)max_terms))
        return PR_EBUDGET;
    /* the streamed plan (term tables included) within the budget before any table is made */
    int da = pr_expand_ndistinct(W->a, s), db = pr_expand_ndistinct(W->b, s);
    size_t streamed = pr_fast_plan_bytes_gqa(n, d, s, g, da, db, 0, heads, kv_heads, 1);
    if (!streamed || streamed > mem_budget)
        return PR_EBUDGET;
    int st = pr_expand_init(F->terms, W->a, W->b, s, g, 1, LONG_MAX);
    if (st)
        return st;
    long np = F->terms->npairs_fwd;
    size_t kept = pr_fast_plan_bytes_gqa(n, d, s, g, da, db, np, heads, kv_heads, 0);
    F->n = n;
    F->d = d;
    F->s = s;
    F->g = g;
    F->heads = heads;
    F->kv_heads = kv_heads;
    F->streamed = !kept || kept > mem_budget;
    unsigned tflags = flags & PR_FAST_MEASURE ? PR_TOEPLITZ_MEASURE_FIXED : PR_TOEPLITZ_ESTIMATE;
    if ((st = pr_toeplitz_plan(F->tp, n, tflags | PR_TOEPLITZ_FORCE_FFT))) {
        pr_fast_destroy(F);
        return st;
    }
    dims_t D;
    dims_set(&D, n, d, s, g, da, db, np, heads, kv_heads, F->streamed);
    pr_mem_t mem;
    pr_mem_init(mem, 0);
    plan_alloc(F, mem, &D, F->tp);
    F->nthreads = F->thr ? D.nthreads : 0;
    F->nchunks = D.nchunks;
    F->bytes = (size_t)mem->bytes;
    if ((st = pr_mem_status(mem))) {
        pr_fast_destroy(F);
        return st;
    }
    F->avx2 = pr_fast_kernel_avx2_();
    pr_expand_coefs(F->alpha, F->terms, PR_EXPAND_ALPHA, opts->poly, opts->sigma);
    plan_tables(F, W, opts);
    if (!F->streamed) {
        st = plan_spectra(F);
        free(F->w);   /* the sequences are only needed to stream */
        F->w = NULL;
        if (st) {
            pr_fast_destroy(F);
            return st;
        }
    }
    F->plan_seconds = pr_timing_wall() - t0;
    return PR_OK;
}

int pr_fast_plan_heads(pr_fast_plan_t F, const pr_posw_t W, const pr_attn_opts_t *opts, int heads,
                       size_t mem_budget, long max_terms, unsigned flags)
{
    return pr_fast_plan_gqa(F, W, opts, heads, heads, mem_budget, max_terms, flags);
}

int pr_fast_plan(pr_fast_plan_t F, const pr_posw_t W, const pr_attn_opts_t *opts,
                 size_t mem_budget, long max_terms, unsigned flags)
{
    return pr_fast_plan_gqa(F, W, opts, 1, 1, mem_budget, max_terms, flags);
}

static void thread_clear(pr_fast_thread_struct *th)
{
    pr_toeplitz_spec_free(th->acc);
    free(th->tbuf); free(th->pref); free(th->leaf); free(th->u); free(th->op); free(th->up); free(th->blk);
    free(th->yp); free(th->xp);
    pr_toeplitz_work_clear(th->ws);
}

void pr_fast_destroy(pr_fast_plan_t F)
{
    pr_expand_clear(F->terms);
    free(F->alpha);
    free(F->spec);
    free(F->kv_rec);
    free(F->xhat);
    free(F->sums);
    free(F->part);
    for (int t = 0; F->thr && t < F->nthreads; t++)
        thread_clear(&F->thr[t]);
    free(F->thr);
    free(F->w); free(F->bias);
    pr_toeplitz_destroy(F->tp);
    memset(F, 0, sizeof(*F));
}

const double *pr_fast_plan_xhat(const pr_fast_plan_t F, int h_kv, const double *K, const double *V)
{
    size_t len = (size_t)h_kv * F->n * F->d;
    if (!F->kv_rec || F->rec_kv < 1 || h_kv != F->rec_kv || memcmp(F->kv_rec, K, sizeof(double) * len) ||
        memcmp(F->kv_rec + len, V, sizeof(double) * len))
        return NULL;
    return F->xhat;
}

const double *pr_fast_plan_ysum(const pr_fast_plan_t F, int h_kv, const double *K, const double *V)
{
    return pr_fast_plan_xhat(F, h_kv, K, V) ? F->sums : NULL;
}

void pr_fast_rowsums_head(double *D, const pr_fast_plan_t F, int head)
{
    memcpy(D, F->num + ((size_t)head * (F->d + 1) + F->d) * F->n, sizeof(double) * F->n);
}

void pr_fast_rowsums(double *D, const pr_fast_plan_t F)
{
    for (int k = 0; k < F->exec_heads; k++)
        pr_fast_rowsums_head(D + (size_t)k * F->n, F, k);
}

const double *pr_fast_plan_pair_spectrum(const pr_fast_plan_t F, long pair)
{
    if (F->streamed || pair < 0 || pair >= F->terms->npairs_fwd)
        return NULL;
    return F->spec + (size_t)pair * pr_toeplitz_spec_len(F->tp);
}

/* ---- execute ---- */

/* One execute's heads: h Q heads over h_kv K, V heads, rep = h / h_kv. */
typedef struct {
    int h, h_kv, rep;
    const double *Q, *K, *V;
} heads_t;

/* th->xp[j] for pair p from frequency f0: x̂ of the pair's ν for (kv head k, column c) at
 * j = k(d+1) + c */
static void pair_ptrs(const pr_fast_plan_struct *F, pr_fast_thread_struct *th, const heads_t *H, long p, long f0)
{
    size_t sl = pr_toeplitz_spec_len(F->tp), hc = (size_t)H->h_kv * (F->d + 1);
    long nu = F->terms->bmi[F->terms->pstart[p]];
    const double *X = F->xhat + (size_t)nu * hc * sl + 2 * f0;
    for (size_t j = 0; j < hc; j++)
        th->xp[j] = X + j * sl;
}

/* th->yp[j] = the sums of (kv head, column) j of the group whose sums start at acc, from f0 */
static void sum_ptrs(const pr_fast_plan_struct *F, pr_fast_thread_struct *th, const heads_t *H, double *acc,
                     long f0)
{
    size_t sl = pr_toeplitz_spec_len(F->tp), hc = (size_t)H->h_kv * (F->d + 1);
    for (size_t j = 0; j < hc; j++)
        th->yp[j] = acc + j * sl + 2 * f0;
}

/* Kept spectra, all groups, frequencies [f0, f1): by blocks (<= FBLOCK_MAX frequencies) whose x̂
 * (all ν, kv heads and columns: about XBLOCK_BYTES, in the last-level cache) stays while every pair meets it, so that
 * x̂, the pair spectra and the sums stream from memory once per execute. The blocking changes no
 * sum (each frequency's pairs are added in the same order). (Summing a group's pairs in registers
 * instead, the sums written once, was slower: 2 streams per pair defeat the prefetchers.) */
enum { XBLOCK_BYTES = 4 << 20 };
/* below this many bytes of sums (n <= 1024 at d = 2, g = 10) they stay in cache for the inverse phase
 * and are stored normally: streamed out past the cache they made n = 512 and 1024 take 1.8 and 1.6 times
 * as long (bench fast, one run each); from 2048 on the streaming stores are faster */
enum { NT_MIN_BYTES = 4 << 20 };

static void mac_freqs(pr_fast_plan_struct *F, pr_fast_thread_struct *th, const heads_t *H, long f0, long f1)
{
    const pr_expand_struct *T = F->terms;
    size_t sl = pr_toeplitz_spec_len(F->tp);
    int hc = H->h_kv * (F->d + 1);
    double fb = XBLOCK_BYTES / (16.0 * T->bm->count_fwd * H->h_kv * (F->d + 1));
    long fblock = fb < 64 ? 64 : fb > FBLOCK_MAX ? FBLOCK_MAX : (long)fb / 4 * 4;
    int nt = F->avx2 && 8.0 * (double)sl * T->am->count_fwd * hc > NT_MIN_BYTES;
    for (long b0 = f0; b0 < f1; b0 += fblock) {
        long nb = f1 - b0 < fblock ? f1 - b0 : fblock;
        for (long m = 0; m < T->am->count_fwd; m++) {
            /* a group's block summed in the thread's cache-resident scratch, then streamed out:
             * the sums' lines are not read from memory before their first write */
            for (int j = 0; j < hc; j++)
                th->yp[j] = th->blk + (size_t)j * 2 * fblock;
            for (long p = T->gpair[m]; p < T->gpair[m + 1]; p++) {
                pair_ptrs(F, th, H, p, b0);
                pr_fast_mac_(th->yp, th->xp, hc, F->spec + (size_t)p * sl + b0, F->tp->nfreq, nb, p == T->gpair[m],
                             F->avx2);
            }
            double *y = F->sums + (size_t)m * hc * sl + 2 * b0;
            for (int j = 0; j < hc; j++)
                pr_fast_copy_nt_(y + (size_t)j * sl, th->yp[j], 2 * nb, nt);
        }
    }
    pr_fast_copy_nt_fence_(nt);
}

/* Group m's sums, every frequency, into acc: its pair spectra kept or, streamed, each made here. */
static int group_sums(pr_fast_plan_struct *F, pr_fast_thread_struct *th, const heads_t *H, long m, double *acc)
{
    const pr_expand_struct *T = F->terms;
    size_t sl = pr_toeplitz_spec_len(F->tp);
    int hc = H->h_kv * (F->d + 1);
    sum_ptrs(F, th, H, acc, 0);
    for (long p = T->gpair[m]; p < T->gpair[m + 1]; p++) {
        const double *A = F->streamed ? th->leaf_spec : F->spec + (size_t)p * sl;
        int st = F->streamed ? pair_spec(th->leaf_spec, F, th, p) : PR_OK;
        if (st)
            return st;
        pair_ptrs(F, th, H, p, 0);
        pr_fast_mac_(th->yp, th->xp, hc, A, F->tp->nfreq, F->tp->nfreq, p == T->gpair[m], F->avx2);
    }
    return PR_OK;
}

/* Kept spectra whose x̂ (every ν, kv head and column) is within XBLOCK_BYTES: the products by
 * frequency blocks would keep nothing in cache that is not there anyway, so each group's sums are
 * made where they are inverted, in cache (as a streamed plan's), not written out in one phase and
 * read back in the next: n = 1024 (d = 2, g = 10) 1.145 -> 1.055 ms. The same sums in the same
 * order. */
static int fused(const pr_fast_plan_struct *F, const heads_t *H)
{
    return !F->streamed && !F->products_blocked &&
           8.0 * (double)pr_toeplitz_spec_len(F->tp) * F->terms->bm->count_fwd * H->h_kv * (F->d + 1) <= XBLOCK_BYTES;
}

/* x̂[ν][k][c] = FFT(v_ν ∘ X_c), X = [V_k | 1] for kv head k, for the (ν, k) of index [lo, hi)
 * (index ν·h_kv + k) */
static int xhat_chunk(pr_fast_plan_struct *F, pr_fast_thread_struct *th, const heads_t *H, long lo,
                      long hi)
{
    const pr_expand_struct *T = F->terms;
    int n = F->n, d = F->d;
    size_t sl = pr_toeplitz_spec_len(F->tp), nd = (size_t)n * d;
    for (long j = lo; j < hi; j++) {
        long m = j / H->h_kv;
        const double *K = H->K + (j % H->h_kv) * nd, *V = H->V + (j % H->h_kv) * nd;
        pr_expand_marg_eval(th->u, T->bm, m, K, d, T->bval, n);
        for (int c = 0; c <= d; c++) {
            double t0 = F->timing ? pr_timing_wall() : 0.0, *xh = F->xhat + ((size_t)j * (d + 1) + c) * sl;
            int st = c < d ? pr_toeplitz_vec_spec_mul(xh, th->u, V + c, d, F->tp, th->ws)
                           : pr_toeplitz_vec_spec(xh, th->u, 1, F->tp, th->ws);
            if (F->timing)
                th->fftw_seconds += pr_timing_wall() - t0;
            if (st)
                return st;
        }
    }
    return PR_OK;
}

/* part[((q - k0·rep)(d+1) + c)·n + i] (=, first; else +=) u_μ^q(i) · inverse(sums of kv head k,
 * column c)(i) for the Q heads q = k·rep + r of the kv heads k in [k0, k1) (none without H->Q),
 * group m's sums at acc: one inverse per (kv head, column), which its rep Q heads share (math.md
 * §5). A kept plan's sums are replaced by their scaled inverse (the first n entries), which the
 * backward takes (pr_fast_plan_ysum); a streamed plan's are destroyed. */
static int group_cols(pr_fast_plan_struct *F, pr_fast_thread_struct *th, const heads_t *H, long m, int k0,
                      int k1, double *acc, double *part, int first)
{
    int n = F->n, d = F->d, rep = H->Q ? H->rep : 0, st = PR_OK;
    size_t sl = pr_toeplitz_spec_len(F->tp), cols = (size_t)d + 1, nd = (size_t)n * d;
    for (int k = k0; k < k1 && !st; k++) {
        for (int r = 0; r < rep; r++) {
            th->up[r] = th->u + (size_t)r * n;
            pr_expand_marg_eval(th->u + (size_t)r * n, F->terms->am, m, H->Q + (size_t)(k * rep + r) * nd, d,
                                F->terms->aval, n);
        }
        for (size_t c = 0; c < cols && !st; c++) {
            for (int r = 0; r < rep; r++)
                th->op[r] = part + ((size_t)((k - k0) * rep + r) * cols + c) * n;
            double t0 = F->timing ? pr_timing_wall() : 0.0;
            double *sums = acc + (k * cols + c) * sl;
            const double *y = pr_toeplitz_spec_inverse_raw(sums, F->tp, th->ws);
            if (F->timing)
                th->fftw_seconds += pr_timing_wall() - t0;
            st = pr_fast_scale_into_(th->op, F->streamed ? NULL : sums, th->up, rep, first, y,
                                     1.0 / (double)F->tp->L, n);
        }
    }
    return st;
}

/* Group chunk c of nchunk (contiguous, about equal group counts): its first group. */
static long chunk_start(const pr_fast_plan_struct *F, int c)
{
    return F->terms->am->count_fwd * c / F->nchunks;
}

/* F->part[c] = Σ_{μ in chunk c} diag(u_μ) inverse(sums of μ) for the Q heads of kv heads [k0, k1)
 * (kept: from F->sums; streamed or fused: every kv head, each group's sums made here), the groups
 * in order */
static int chunk_run(pr_fast_plan_struct *F, pr_fast_thread_struct *th, const heads_t *H, int c, int k0, int k1)
{
    size_t sl = pr_toeplitz_spec_len(F->tp), cols = (size_t)F->d + 1, hc = (size_t)H->h_kv * cols;
    size_t off = (size_t)k0 * H->rep * cols * F->n;
    double *part = F->part + (size_t)c * F->heads * cols * F->n + off;
    int st = PR_OK;
    for (long m = chunk_start(F, c); m < chunk_start(F, c + 1) && !st; m++) {
        double *acc = F->streamed ? th->acc : F->sums + (size_t)m * hc * sl;
        if (F->streamed || F->products_fused)
            st = group_sums(F, th, H, m, acc);
        if (!st)
            st = group_cols(F, th, H, m, k0, k1, acc, part, m == chunk_start(F, c));
    }
    return st;
}

/* The inverse phase: tasks (chunk, kv head) where the sums were made before it, chunks where
 * they are made here (streamed or fused: a group's sums serve every head there), dealt to the
 * threads as they come free, the largest chunks first; then F->num = the chunks' parts added in
 * chunk order. The chunks are fixed at plan time, so the sums do not
 * depend on the scheduling, the head counts or whether the spectra are kept. */
static void groups_run(pr_fast_plan_struct *F, pr_fast_thread_struct *th, const heads_t *H)
{
    int whole = F->streamed || F->products_fused, per = whole ? 1 : H->h_kv, ntask = F->nchunks * per;
#pragma omp for schedule(dynamic, 1)
    for (int t = 0; t < ntask; t++) {
        int c = F->nchunks - 1 - t / per, k = t % per;
        if (!th->st)
            th->st = chunk_run(F, th, H, c, whole ? 0 : k, whole ? H->h_kv : k + 1);
    }
    size_t cols = (size_t)F->d + 1, stride = (size_t)F->heads * cols * F->n;
    long len = H->Q ? (long)((size_t)H->h * cols * F->n) : 0;
#pragma omp for schedule(static)
    for (long i = 0; i < len; i++) {
        double v = F->part[i];
        for (int c = 1; c < F->nchunks; c++)
            v += F->part[c * stride + i];
        F->part[i] = v;
    }
}

/* F's record := K, V of h_kv kv heads (x̂ and the sums' inverses are theirs) */
static void record_kv(pr_fast_plan_struct *F, int h_kv, const double *K, const double *V)
{
    size_t len = (size_t)h_kv * F->n * F->d;
    if (!F->kv_rec)
        return;
    memcpy(F->kv_rec, K, sizeof(double) * len);
    memcpy(F->kv_rec + len, V, sizeof(double) * len);
    F->rec_kv = h_kv;
}

/* The phases of an execute: x̂, the products (kept, not fused), the inverse transforms and, with
 * Q, their scaling into the parts (tp: their wall times). Without Q only the K, V half (no part, row sum or
 * timing changes). */
static int run(pr_fast_plan_struct *F, const heads_t *H, double *tp)
{
    int st = PR_OK, used = 1;
    F->rec_kv = 0;   /* x̂ and the sums are about to change: recorded again once the execute succeeds */
    F->products_fused = fused(F, H);
#pragma omp parallel num_threads(F->nthreads)
    {
        int id = omp_get_thread_num(), nth = omp_get_num_threads();
        pr_fast_thread_struct *th = &F->thr[id];
        th->fftw_seconds = 0.0;
        th->prev = -1;
        long nj = F->terms->bm->count_fwd * H->h_kv;
        double t0 = pr_timing_wall();
        th->st = xhat_chunk(F, th, H, nj * id / nth, nj * (id + 1) / nth);
#pragma omp barrier
        double t1 = pr_timing_wall();
        if (!F->streamed && !F->products_fused) {   /* all of x̂ is needed: statuses are read after */
            long nf = F->tp->nfreq;
            mac_freqs(F, th, H, nf * id / nth, nf * (id + 1) / nth);
#pragma omp barrier
        }
        double t2 = pr_timing_wall();
        groups_run(F, th, H);   /* ends in the loop's barrier */
        if (id == 0) {
            used = nth;
            tp[0] = t1 - t0;
            tp[1] = t2 - t1;
            tp[2] = pr_timing_wall() - t2;
        }
    }
    double fs = 0.0;
    for (int t = 0; t < used; t++) {
        st = st ? st : F->thr[t].st;
        fs += F->thr[t].fftw_seconds / used;
    }
    if (H->Q)
        F->fftw_seconds = fs;
    return st;
}

static int check_heads(const pr_fast_plan_struct *F, int h, int h_kv)
{
    return h < 1 || h > F->heads || h_kv < 1 || h_kv > F->kv_heads || h % h_kv ? PR_EINVAL : PR_OK;
}

int pr_fast_execute_heads(double *O, pr_fast_plan_t F, int h, int h_kv, const double *Q,
                          const double *K, const double *V)
{
    int n = F->n, d = F->d, st;
    if ((st = check_heads(F, h, h_kv)))
        return st;
    size_t nd = (size_t)n * d;
    if (pr_vec_check_finite(Q, nd * h) || pr_vec_check_finite(K, nd * h_kv) || pr_vec_check_finite(V, nd * h_kv))
        return PR_ENONFINITE;
    heads_t H = {h, h_kv, h / h_kv, Q, K, V};
    long f0 = transforms(F, 0), i0 = transforms(F, 1);
    double tp[4] = {0};
    st = run(F, &H, tp);
    F->fwd_transforms = transforms(F, 0) - f0;
    F->inv_transforms = transforms(F, 1) - i0;
    F->transforms = F->fwd_transforms + F->inv_transforms;
    F->exec_heads = 0;
    if (st)
        return st;
    double t3 = pr_timing_wall();
    size_t cols = (size_t)d + 1;
    for (int k = 0; k < h; k++) {
        const double *num = F->num + (size_t)k * cols * n, *den = num + (size_t)d * n;
        double *o = O + (size_t)k * nd;
        for (int i = 0; i < n; i++) {
            if (!(den[i] > 0.0) || !isfinite(den[i]))
                return PR_EDOMAIN;
            for (int c = 0; c < d; c++)
                o[(size_t)i * d + c] = num[(size_t)c * n + i] / den[i];
        }
    }
    F->exec_heads = h;
    record_kv(F, h_kv, K, V);
    tp[3] = pr_timing_wall() - t3;
    memcpy(F->phase_seconds, tp, sizeof(tp));
    return PR_OK;
}

int pr_fast_execute_kv(long *made, pr_fast_plan_t F, int h_kv, const double *K, const double *V)
{
    int st;
    *made = 0;
    if (F->streamed)
        return PR_EINVAL;
    if ((st = check_heads(F, h_kv, h_kv)))
        return st;
    if (pr_fast_plan_xhat(F, h_kv, K, V))
        return PR_OK;
    size_t nd = (size_t)F->n * F->d;
    if (pr_vec_check_finite(K, nd * h_kv) || pr_vec_check_finite(V, nd * h_kv))
        return PR_ENONFINITE;
    heads_t H = {h_kv, h_kv, 1, NULL, K, V};
    long t0 = transforms(F, 0) + transforms(F, 1);
    double tp[3];
    st = run(F, &H, tp);
    *made = transforms(F, 0) + transforms(F, 1) - t0;
    if (st)
        return st;
    record_kv(F, h_kv, K, V);
    return PR_OK;
}

int pr_fast_execute(double *O, pr_fast_plan_t F, const double *Q, const double *K, const double *V)
{
    return pr_fast_execute_heads(O, F, 1, 1, Q, K, V);
}

void pr_fast_needs_heads(double *bytes, double *ops, const pr_posw_t W, int n, int d, int g,
                         int heads, int kv_heads)
{
    double Lf = (double)pr_toeplitz_good_size(2L * n - 1, 5, 1), lg = log2(Lf);
    int s = W->s, da = pr_expand_ndistinct(W->a, s), db = pr_expand_ndistinct(W->b, s);
    *bytes = plan_bytes(n, d, s, g, da, db, 0, heads, kv_heads, 1);
    /* per pair a symbol transform (5 L log2 L, at most one pair per term) and per kv head d+1
     * spectral products; per marginal and kv head d+1 transforms (at most as many marginals as
     * terms, twice); a Q head's scaling of its group's inverses, O(n) each, is left out */
    double T = pr_expand_binom(s, g);
    *ops = T * Lf * (5.0 * lg + 4.0 * (d + 1.0) * kv_heads) +
           2.0 * pr_expand_binom(d, g) * (d + 1.0) * kv_heads * 5.0 * Lf * lg;
}

void pr_fast_needs(double *bytes, double *ops, const pr_posw_t W, int n, int d, int g)
{
    pr_fast_needs_heads(bytes, ops, W, n, d, g, 1, 1);
}
