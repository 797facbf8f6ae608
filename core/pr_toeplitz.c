#include <fftw3.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "pr_status.h"
#include "pr_toeplitz.h"
#include "pr_vec.h"
#include "pr_timing.h"

/* FFTW's planner, wisdom and plan destruction are not thread-safe: every call of ours goes
 * through this lock. */
static pthread_mutex_t pr_fftw_lock = PTHREAD_MUTEX_INITIALIZER;

/* Above this order the direct path is not timed: its n² multiply-adds (≥ 4·10⁶) cost far more
 * than a transform of length ~2n, and the bench's measured crossover is orders of magnitude
 * lower (see `polyrope bench toeplitz`). */
enum { PR_TOEPLITZ_DIRECT_TIME_MAX = 2048 };

long pr_toeplitz_good_size(long m, int maxp, int even)
{
    if (m < 1)
        m = 1;
    if (m > LONG_MAX / 8 || (maxp != 2 && maxp != 3 && maxp != 5 && maxp != 7))
        return 0;
    /* smallest 2^a·3^b·5^c·7^d ≥ m: for each odd part o = 3^b 5^c 7^d < 2m, the least power of
     * two p with o·p ≥ m (p ≥ 2 when even). At most log³ m candidates. */
    long best = LONG_MAX;
    for (long o7 = 1; o7 < 2 * m; o7 = maxp >= 7 ? 7 * o7 : 2 * m)
        for (long o5 = o7; o5 < 2 * m; o5 = maxp >= 5 ? 5 * o5 : 2 * m)
            for (long o3 = o5; o3 < 2 * m; o3 = maxp >= 3 ? 3 * o3 : 2 * m) {
                long v = o3 * (even ? 2 : 1);
                while (v < m)
                    v *= 2;
                if (v < best)
                    best = v;
            }
    return best;
}

size_t pr_toeplitz_spec_len_of(long L)
{
    return 2 * (size_t)(L / 2 + 1);
}

size_t pr_toeplitz_spec_len(const pr_toeplitz_plan_t P)
{
    return pr_toeplitz_spec_len_of(P->L);
}

static int pr_aligned(const void *p)
{
    return fftw_alignment_of((double *)p) == 0;
}

double *pr_toeplitz_spec_alloc(const pr_toeplitz_plan_t P, size_t count)
{
    size_t len, bytes;
    if (count == 0 || pr_size_mul(&len, count, pr_toeplitz_spec_len(P))
        || pr_size_mul(&bytes, len, sizeof(double)))
        return NULL;
    double *s = fftw_malloc(bytes);
    if (s)
        memset(s, 0, bytes);
    return s;
}

void pr_toeplitz_spec_free(double *spec)
{
    fftw_free(spec);
}

void pr_toeplitz_work_clear(pr_toeplitz_work_struct *ws)
{
    fftw_free(ws->real);
    fftw_free(ws->real2);
    fftw_free(ws->spec);
    fftw_free(ws->spec2);
    memset(ws, 0, sizeof *ws);
}

static int pr_work_alloc(pr_toeplitz_work_struct *ws, long L, size_t spec_len)
{
    memset(ws, 0, sizeof *ws);
    ws->real = fftw_malloc(sizeof(double) * (size_t)L);
    ws->real2 = fftw_malloc(sizeof(double) * (size_t)L);
    ws->spec = fftw_malloc(sizeof(double) * spec_len);
    ws->spec2 = fftw_malloc(sizeof(double) * spec_len);
    if (!ws->real || !ws->real2 || !ws->spec || !ws->spec2) {
        pr_toeplitz_work_clear(ws);
        return PR_ENOMEM;
    }
    /* ws->real's padding is zeroed once here (only its first n entries are ever written); the
     * others are written so that their pages are mapped here, not in the first transform */
    memset(ws->real, 0, sizeof(double) * (size_t)L);
    memset(ws->real2, 0, sizeof(double) * (size_t)L);
    memset(ws->spec, 0, sizeof(double) * spec_len);
    memset(ws->spec2, 0, sizeof(double) * spec_len);
    return PR_OK;
}

double pr_toeplitz_work_bytes(long L)
{
    return 8.0 * (2.0 * (double)L + 2.0 * (double)pr_toeplitz_spec_len_of(L));
}

int pr_toeplitz_work_init(pr_toeplitz_work_t ws, const pr_toeplitz_plan_t P)
{
    return pr_work_alloc(ws, P->L, pr_toeplitz_spec_len(P));
}

/* ---- transforms on a workspace ---- */

static pr_toeplitz_work_struct *pr_ws(const pr_toeplitz_plan_struct *P, pr_toeplitz_work_struct *ws)
{
    return ws ? ws : (pr_toeplitz_work_struct *)&P->own;
}

/* out = r2c(in), in = ws->real or ws->real2 (r2c out of place keeps its input) */
static void pr_forward(double *out, double *in, const pr_toeplitz_plan_struct *P,
                       pr_toeplitz_work_struct *ws)
{
    if (pr_aligned(out)) {
        fftw_execute_dft_r2c((fftw_plan)P->fwd, in, (fftw_complex *)out);
    } else {
        fftw_execute_dft_r2c((fftw_plan)P->fwd, in, (fftw_complex *)ws->spec);
        memcpy(out, ws->spec, sizeof(double) * pr_toeplitz_spec_len(P));
    }
    ws->n_forward++;
}

/* ws->real2 = c2r(Yhat) unscaled; Yhat destroyed */
static void pr_inverse(double *Yhat, const pr_toeplitz_plan_struct *P, pr_toeplitz_work_struct *ws)
{
    if (!pr_aligned(Yhat)) {
        memcpy(ws->spec, Yhat, sizeof(double) * pr_toeplitz_spec_len(P));
        Yhat = ws->spec;
    }
    fftw_execute_dft_c2r((fftw_plan)P->inv, (fftw_complex *)Yhat, ws->real2);
    ws->n_inverse++;
}

/* Bit 63 set if v is NaN or ±Inf (exponent field all ones): integer and, add, or only, so
 * that the loops below vectorise and the check costs next to nothing. */
static inline uint64_t pr_nonfinite(double v)
{
    const uint64_t expo = 0x7ffULL << 52;
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return ((b & expo) + (1ULL << 52)) & (1ULL << 63);
}

/* dst[j] = x[j·incx], j < n; returns nonzero if some entry is not finite */
static uint64_t pr_load(double *restrict dst, const double *restrict x, long n, long incx)
{
    uint64_t bad = 0;
    if (incx == 1)
        for (long j = 0; j < n; j++) {
            dst[j] = x[j];
            bad |= pr_nonfinite(x[j]);
        }
    else
        for (long j = 0; j < n; j++) {
            dst[j] = x[j * incx];
            bad |= pr_nonfinite(x[j * incx]);
        }
    return bad;
}

/* y[i·incy] = s·src[i], i < n; PR_EDOMAIN if a result is not finite (finite inputs overflowed) */
static int pr_store(double *restrict y, long incy, const double *restrict src, double s, long n)
{
    uint64_t bad = 0;
    if (incy == 1)
        for (long i = 0; i < n; i++) {
            double v = s * src[i];
            y[i] = v;
            bad |= pr_nonfinite(v);
        }
    else
        for (long i = 0; i < n; i++) {
            double v = s * src[i];
            y[i * incy] = v;
            bad |= pr_nonfinite(v);
        }
    return bad ? PR_EDOMAIN : PR_OK;
}

/* r = circular embedding of op(t), length L; nonzero if t has a non-finite entry */
static uint64_t pr_embed_symbol(double *r, const double *t, unsigned op, long n, long L)
{
    uint64_t bad = 0;
    for (long k = 0; k < 2 * n - 1; k++)
        bad |= pr_nonfinite(t[k]);
    memset(r, 0, sizeof(double) * (size_t)L);
    int causal = op & PR_TOEPLITZ_CAUSAL, trans = op & PR_TOEPLITZ_TRANS;
    /* ℓ ≥ 0 goes to position ℓ (position -ℓ mod L when transposed), ℓ < 0 likewise */
    for (long l = 0; l < n; l++)
        r[trans ? (l ? L - l : 0) : l] = t[l + n - 1];
    if (!causal)
        for (long l = 1; l < n; l++)
            r[trans ? l : L - l] = t[n - 1 - l];
    return bad;
}

int pr_toeplitz_symbol_spec(double *that, const double *t, unsigned op,
                            const pr_toeplitz_plan_t P, pr_toeplitz_work_struct *ws)
{
    if (op & ~3u)
        return PR_EINVAL;
    ws = pr_ws(P, ws);
    if (pr_embed_symbol(ws->real2, t, op, P->n, P->L))
        return PR_ENONFINITE;
    pr_forward(that, ws->real2, P, ws);
    return PR_OK;
}

int pr_toeplitz_vec_spec(double *xhat, const double *x, long incx,
                         const pr_toeplitz_plan_t P, pr_toeplitz_work_struct *ws)
{
    if (incx < 1)
        return PR_EINVAL;
    ws = pr_ws(P, ws);
    if (pr_load(ws->real, x, P->n, incx))
        return PR_ENONFINITE;
    pr_forward(xhat, ws->real, P, ws);
    return PR_OK;
}

int pr_toeplitz_vec_spec_mul(double *xhat, const double *u, const double *x, long incx,
                             const pr_toeplitz_plan_t P, pr_toeplitz_work_struct *ws)
{
    if (incx < 1)
        return PR_EINVAL;
    ws = pr_ws(P, ws);
    uint64_t bad = 0;
    for (long j = 0; j < P->n; j++)
        bad |= pr_nonfinite(ws->real[j] = u[j] * x[j * incx]);
    if (bad)
        return PR_ENONFINITE;
    pr_forward(xhat, ws->real, P, ws);
    return PR_OK;
}

__attribute__((target_clones("avx2", "default")))
void pr_toeplitz_spec_mac(double *Y, const double *A, const double *B, double scale,
                          const pr_toeplitz_plan_t P)
{
    for (long k = 0; k < P->nfreq; k++) {
        double ar = A[2 * k], ai = A[2 * k + 1], br = B[2 * k], bi = B[2 * k + 1];
        Y[2 * k] += scale * (ar * br - ai * bi);
        Y[2 * k + 1] += scale * (ar * bi + ai * br);
    }
}

__attribute__((target_clones("avx2", "default")))
void pr_toeplitz_spec_mac_conj(double *Y, const double *A, const double *B, double scale,
                               const pr_toeplitz_plan_t P)
{
    for (long k = 0; k < P->nfreq; k++) {
        double ar = A[2 * k], ai = A[2 * k + 1], br = B[2 * k], bi = B[2 * k + 1];
        Y[2 * k] += scale * (ar * br + ai * bi);
        Y[2 * k + 1] += scale * (ai * br - ar * bi);
    }
}

__attribute__((target_clones("avx2", "default")))
void pr_toeplitz_spec_sum_conj(double *Y, const double *A, const double *B, int count,
                               const pr_toeplitz_plan_t P)
{
    enum { BLK = 256 };     /* frequencies per block: the partial sums stay in L1 */
    size_t sl = pr_toeplitz_spec_len(P);
    double yr[BLK], yi[BLK];
    for (long k0 = 0; k0 < P->nfreq; k0 += BLK) {
        long m = P->nfreq - k0 < BLK ? P->nfreq - k0 : BLK;
        for (long q = 0; q < m; q++)
            yr[q] = yi[q] = 0.0;
        for (int c = 0; c < count; c++) {
            const double *a = A + c * sl + 2 * k0, *b = B + c * sl + 2 * k0;
            for (long q = 0; q < m; q++) {
                yr[q] += a[2 * q] * b[2 * q] + a[2 * q + 1] * b[2 * q + 1];
                yi[q] += a[2 * q + 1] * b[2 * q] - a[2 * q] * b[2 * q + 1];
            }
        }
        for (long q = 0; q < m; q++) {
            Y[2 * (k0 + q)] = yr[q];
            Y[2 * (k0 + q) + 1] = yi[q];
        }
    }
}

void pr_toeplitz_spec_zero(double *Y, const pr_toeplitz_plan_t P)
{
    memset(Y, 0, sizeof(double) * pr_toeplitz_spec_len(P));
}

/* A ∘= B, or A ∘= conj(B) (two loops: no extra multiply in the hot one) */
static void pr_spec_mul(double *A, const double *B, int conj, long nfreq)
{
    if (conj)
        for (long k = 0; k < nfreq; k++) {
            double ar = A[2 * k], ai = A[2 * k + 1], br = B[2 * k], bi = B[2 * k + 1];
            A[2 * k] = ar * br + ai * bi;
            A[2 * k + 1] = ai * br - ar * bi;
        }
    else
        for (long k = 0; k < nfreq; k++) {
            double ar = A[2 * k], ai = A[2 * k + 1], br = B[2 * k], bi = B[2 * k + 1];
            A[2 * k] = ar * br - ai * bi;
            A[2 * k + 1] = ar * bi + ai * br;
        }
}

int pr_toeplitz_spec_inverse(double *y, long incy, double *Yhat,
                             const pr_toeplitz_plan_t P, pr_toeplitz_work_struct *ws)
{
    if (incy < 1)
        return PR_EINVAL;
    ws = pr_ws(P, ws);
    pr_inverse(Yhat, P, ws);
    return pr_store(y, incy, ws->real2, 1.0 / (double)P->L, P->n);
}

const double *pr_toeplitz_spec_inverse_raw(double *Yhat, const pr_toeplitz_plan_t P, pr_toeplitz_work_struct *ws)
{
    ws = pr_ws(P, ws);
    pr_inverse(Yhat, P, ws);
    return ws->real2;
}

int pr_toeplitz_spec_inverse_sym(double *c, double *Yhat,
                                 const pr_toeplitz_plan_t P, pr_toeplitz_work_struct *ws)
{
    ws = pr_ws(P, ws);
    pr_inverse(Yhat, P, ws);
    long n = P->n, L = P->L;
    double s = 1.0 / (double)L;
    /* ℓ < 0 sits at L+ℓ, ℓ ≥ 0 at ℓ */
    int st = pr_store(c, 1, ws->real2 + L - (n - 1), s, n - 1);
    int st2 = pr_store(c + n - 1, 1, ws->real2, s, n);
    return st ? st : st2;
}

/* ---- direct path ---- */

/* Σ_k a[k] b[k] with four partial sums (any order satisfies the γ_len bound of pr_xtoeplitz). */
static double pr_dot(const double *a, const double *b, long len)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    long k = 0;
    for (; k + 4 <= len; k += 4) {
        s0 += a[k] * b[k];
        s1 += a[k + 1] * b[k + 1];
        s2 += a[k + 2] * b[k + 2];
        s3 += a[k + 3] * b[k + 3];
    }
    for (; k < len; k++)
        s0 += a[k] * b[k];
    return (s0 + s1) + (s2 + s3);
}

/* ws->real2 = op(T) x directly (n entries); nonzero if x has a non-finite entry */
static uint64_t pr_direct(const double *t, const double *x, long incx, unsigned op, long n,
                          pr_toeplitz_work_struct *ws)
{
    double *xc = ws->real, *y = ws->real2;
    int causal = op & PR_TOEPLITZ_CAUSAL;
    ws->n_direct++;
    if (op & PR_TOEPLITZ_TRANS) {
        /* y_j = Σ_i t[(n-1-j) + i] x_i, causal: i ≥ j */
        if (pr_load(xc, x, n, incx))
            return 1;
        for (long j = 0; j < n; j++) {
            long i0 = causal ? j : 0;
            y[j] = pr_dot(t + (n - 1 - j) + i0, xc + i0, n - i0);
        }
        return 0;
    }
    /* with xr[k] = x_{n-1-k}: y_i = Σ_k t[i+k] xr[k], causal: k ≥ n-1-i */
    uint64_t bad = 0;
    for (long k = 0; k < n; k++) {
        xc[k] = x[(n - 1 - k) * incx];
        bad |= pr_nonfinite(xc[k]);
    }
    for (long i = 0; i < n && !bad; i++) {
        long k0 = causal ? n - 1 - i : 0;
        y[i] = pr_dot(t + i + k0, xc + k0, n - k0);
    }
    return bad;
}

/* ---- products ---- */

int pr_toeplitz_apply_many(double *Y, long incy, long ldy, const double *t,
                           const double *X, long incx, long ldx, long count, unsigned op,
                           const pr_toeplitz_plan_t P, pr_toeplitz_work_struct *ws)
{
    if ((op & ~3u) || incx < 1 || incy < 1 || count < 0)
        return PR_EINVAL;
    long n = P->n;
    ws = pr_ws(P, ws);
    int direct = P->use_direct;
    double s = 1.0;
    if (direct) {
        if (pr_vec_check_finite(t, 2 * (size_t)n - 1))
            return PR_ENONFINITE;
    } else {
        if (pr_embed_symbol(ws->real2, t, op, n, P->L))
            return PR_ENONFINITE;
        pr_forward(ws->spec2, ws->real2, P, ws);
        s = 1.0 / (double)P->L;
    }
    for (long k = 0; k < count; k++) {
        if (direct) {
            if (pr_direct(t, X + k * ldx, incx, op, n, ws))
                return PR_ENONFINITE;
        } else {
            if (pr_load(ws->real, X + k * ldx, n, incx))
                return PR_ENONFINITE;
            pr_forward(ws->spec, ws->real, P, ws);
            pr_spec_mul(ws->spec, ws->spec2, 0, P->nfreq);
            pr_inverse(ws->spec, P, ws);
        }
        if (pr_store(Y + k * ldy, incy, ws->real2, s, n))
            return PR_EDOMAIN;
    }
    return PR_OK;
}

int pr_toeplitz_apply(double *y, long incy, const double *t, const double *x, long incx,
                      unsigned op, const pr_toeplitz_plan_t P, pr_toeplitz_work_struct *ws)
{
    return pr_toeplitz_apply_many(y, incy, 0, t, x, incx, 0, 1, op, P, ws);
}

int pr_toeplitz_apply_symbols(double *Y, long incy, long ldy, const double *ts, long ldt,
                              const double *x, long incx, long count, unsigned op,
                              const pr_toeplitz_plan_t P, pr_toeplitz_work_struct *ws)
{
    long n = P->n;
    if ((op & ~3u) || incx < 1 || incy < 1 || count < 0 || (count > 1 && ldt < 2 * n - 1))
        return PR_EINVAL;
    if (P->use_direct || count == 1) {
        for (long k = 0; k < count; k++) {
            int st = pr_toeplitz_apply_many(Y + k * ldy, incy, 0, ts + k * ldt, x, incx, 0, 1,
                                            op, P, ws);
            if (st)
                return st;
        }
        return PR_OK;
    }
    ws = pr_ws(P, ws);
    int st = pr_toeplitz_vec_spec(ws->spec2, x, incx, P, ws);
    for (long k = 0; k < count && !st; k++) {
        if (pr_embed_symbol(ws->real2, ts + k * ldt, op, n, P->L))
            return PR_ENONFINITE;
        pr_forward(ws->spec, ws->real2, P, ws);
        pr_spec_mul(ws->spec, ws->spec2, 0, P->nfreq);
        st = pr_toeplitz_spec_inverse(Y + k * ldy, incy, ws->spec, P, ws);
    }
    return st;
}

int pr_toeplitz_correlate(double *c, const double *x, long incx, const double *y, long incy,
                          const pr_toeplitz_plan_t P, pr_toeplitz_work_struct *ws)
{
    if (incx < 1 || incy < 1)
        return PR_EINVAL;
    long n = P->n;
    ws = pr_ws(P, ws);
    if (P->use_direct) {
        /* c(ℓ) = Σ_j x_{j+ℓ} y_j over 0 ≤ j, j+ℓ < n */
        double *xc = ws->real, *yc = ws->spec;
        if (pr_load(xc, x, n, incx) | pr_load(yc, y, n, incy))
            return PR_ENONFINITE;
        for (long l = -(n - 1); l < n; l++)
            ws->real2[l + n - 1] = l >= 0 ? pr_dot(xc + l, yc, n - l) : pr_dot(xc, yc - l, n + l);
        ws->n_direct++;
        return pr_store(c, 1, ws->real2, 1.0, 2 * n - 1);
    }
    int st = pr_toeplitz_vec_spec(ws->spec2, y, incy, P, ws);
    if (!st)
        st = pr_toeplitz_vec_spec(ws->spec, x, incx, P, ws);
    if (st)
        return st;
    pr_spec_mul(ws->spec, ws->spec2, 1, P->nfreq);
    return pr_toeplitz_spec_inverse_sym(c, ws->spec, P, ws);
}

/* ---- plans ---- */

static void pr_destroy_fftw(void *fwd, void *inv)
{
    pthread_mutex_lock(&pr_fftw_lock);
    if (fwd)
        fftw_destroy_plan((fftw_plan)fwd);
    if (inv)
        fftw_destroy_plan((fftw_plan)inv);
    pthread_mutex_unlock(&pr_fftw_lock);
}

void pr_toeplitz_destroy(pr_toeplitz_plan_t P)
{
    pr_destroy_fftw(P->fwd, P->inv);
    pr_toeplitz_work_clear(&P->own);
    memset(P, 0, sizeof *P);
}

/* PR_ESIZE unless length L fits FFTW's int and twice the plan's own workspace (two real and
 * two spectrum buffers, 4L+4 doubles; the second copy stands for callers' workspaces and
 * spectra) fits both size_t and physical memory. */
static int pr_check_fits(long L)
{
    size_t bytes;
    if (L > INT_MAX || pr_size_mul(&bytes, 4 * (size_t)L + 4, 2 * sizeof(double)))
        return PR_ESIZE;
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    if (pages > 0 && psize > 0 && bytes / (size_t)psize > (size_t)pages)
        return PR_ESIZE;
    return PR_OK;
}

/* Makes P->fwd and P->inv for length L on P->own (allocated here). */
static int pr_make_fftw(pr_toeplitz_plan_struct *P, long L, unsigned fftw_flags)
{
    int st = pr_work_alloc(&P->own, L, pr_toeplitz_spec_len_of(L));
    if (st)
        return st;
    P->L = L;
    P->nfreq = L / 2 + 1;
    pthread_mutex_lock(&pr_fftw_lock);
    P->fwd = fftw_plan_dft_r2c_1d((int)L, P->own.real, (fftw_complex *)P->own.spec, fftw_flags);
    P->inv = fftw_plan_dft_c2r_1d((int)L, (fftw_complex *)P->own.spec, P->own.real2, fftw_flags);
    pthread_mutex_unlock(&pr_fftw_lock);
    /* measuring overwrote the arrays: restore the zero padding */
    memset(P->own.real, 0, sizeof(double) * (size_t)L);
    if (!P->fwd || !P->inv) {
        pr_destroy_fftw(P->fwd, P->inv);
        P->fwd = P->inv = NULL;
        pr_toeplitz_work_clear(&P->own);
        return PR_EFFTW;
    }
    return PR_OK;
}

/* Seconds per call of one forward and one inverse transform (best of a few runs). */
static double pr_time_transforms(pr_toeplitz_plan_struct *P)
{
    double best = INFINITY;
    for (int round = 0; round < 3; round++) {
        long reps = 0;
        double t0 = pr_timing_wall(), el;
        do {
            fftw_execute_dft_r2c((fftw_plan)P->fwd, P->own.real, (fftw_complex *)P->own.spec);
            fftw_execute_dft_c2r((fftw_plan)P->inv, (fftw_complex *)P->own.spec, P->own.real2);
            reps++;
        } while ((el = pr_timing_wall() - t0) < 2e-3);
        best = fmin(best, el / reps);
    }
    return best;
}

/* Seconds per pr_toeplitz_apply on P with the direct (1) or FFT (0) path. */
static double pr_time_apply(pr_toeplitz_plan_struct *P, int direct, double *t, double *x, double *y)
{
    P->use_direct = direct;
    double best = INFINITY;
    for (int round = 0; round < 3; round++) {
        long reps = 0;
        double t0 = pr_timing_wall(), el;
        do {
            pr_toeplitz_apply(y, 1, t, x, 1, PR_TOEPLITZ_FULL, P, NULL);
            reps++;
        } while ((el = pr_timing_wall() - t0) < 1e-3);
        best = fmin(best, el / reps);
    }
    return best;
}

int pr_toeplitz_plan(pr_toeplitz_plan_t P, long n, unsigned flags)
{
    memset(P, 0, sizeof *P);
    if (n < 1 || (flags & ~31u)
        || ((flags & PR_TOEPLITZ_FORCE_FFT) && (flags & PR_TOEPLITZ_FORCE_DIRECT))
        || ((flags & PR_TOEPLITZ_MEASURE) && (flags & PR_TOEPLITZ_MEASURE_FIXED)))
        return PR_EINVAL;
    if (n > LONG_MAX / 16)
        return PR_ESIZE;
    long m = 2 * n - 1;
    unsigned fftw_flags = (flags & (PR_TOEPLITZ_MEASURE | PR_TOEPLITZ_MEASURE_FIXED) ? FFTW_MEASURE : FFTW_ESTIMATE)
                          | (flags & PR_TOEPLITZ_WISDOM_ONLY ? FFTW_WISDOM_ONLY : 0);
    long cand[4] = {pr_toeplitz_good_size(m, 5, 1), pr_toeplitz_good_size(m, 7, 1),
                    pr_toeplitz_good_size(m, 3, 1), pr_toeplitz_good_size(m, 2, 1)};
    /* FFTW's codelets for 2, 3, 5 are the fast ones: estimating takes the smallest 5-smooth
     * even length; measuring times the smallest even 7-, 5-, 3- and 2-smooth lengths. */
    int ncand = flags & PR_TOEPLITZ_MEASURE ? 4 : 1;
    int st = pr_check_fits(cand[0]);
    if (st)
        return st;
    long bestL = 0;
    double best = INFINITY;
    for (int c = 0; c < ncand; c++) {
        int dup = 0;
        for (int e = 0; e < c; e++)
            dup |= cand[e] == cand[c];
        if (dup || pr_check_fits(cand[c]))
            continue;
        st = pr_make_fftw(P, cand[c], fftw_flags);
        if (st == PR_ENOMEM)
            return st;
        if (st)
            continue;
        double tc = ncand > 1 ? pr_time_transforms(P) : 0;
        if (tc < best) {
            best = tc;
            bestL = cand[c];
        }
        pr_toeplitz_destroy(P);
    }
    if (!bestL)
        return PR_EFFTW;
    P->n = n;
    P->flags = flags;
    if ((st = pr_make_fftw(P, bestL, fftw_flags))) {
        memset(P, 0, sizeof *P);
        return st;
    }
    if (flags & (PR_TOEPLITZ_FORCE_FFT | PR_TOEPLITZ_FORCE_DIRECT)) {
        P->use_direct = (flags & PR_TOEPLITZ_FORCE_DIRECT) != 0;
        return PR_OK;
    }
    if (n > PR_TOEPLITZ_DIRECT_TIME_MAX)
        return PR_OK;
    /* Time both paths on this n with a fixed, finite input. */
    double *buf = fftw_malloc(sizeof(double) * (size_t)(4 * n));
    if (!buf) {
        pr_toeplitz_destroy(P);
        return PR_ENOMEM;
    }
    double *t = buf, *x = buf + 2 * n, *y = buf + 3 * n;
    for (long k = 0; k < 2 * n; k++)
        t[k] = (double)(k % 7) - 3.0;
    for (long k = 0; k < n; k++)
        x[k] = (double)(k % 5) - 2.0;
    P->t_direct = pr_time_apply(P, 1, t, x, y);
    P->t_fft = pr_time_apply(P, 0, t, x, y);
    fftw_free(buf);
    P->use_direct = P->t_direct < P->t_fft;
    P->own.n_forward = P->own.n_inverse = P->own.n_direct = 0;
    return PR_OK;
}

/* ---- wisdom ---- */

int pr_toeplitz_wisdom_import(const char *path)
{
    if (!path)
        return PR_EINVAL;
    pthread_mutex_lock(&pr_fftw_lock);
    int ok = fftw_import_wisdom_from_filename(path);
    pthread_mutex_unlock(&pr_fftw_lock);
    return ok ? PR_OK : PR_EIO;
}

int pr_toeplitz_wisdom_export(const char *path)
{
    if (!path)
        return PR_EINVAL;
    pthread_mutex_lock(&pr_fftw_lock);
    int ok = fftw_export_wisdom_to_filename(path);
    pthread_mutex_unlock(&pr_fftw_lock);
    return ok ? PR_OK : PR_EIO;
}

int pr_toeplitz_wisdom_env_import(void)
{
    const char *path = getenv(PR_TOEPLITZ_WISDOM_ENV);
    if (!path || !*path)
        return PR_OK;
    if (access(path, F_OK) != 0) {
        /* the export at the end must be able to create it: decided now, before any work */
        size_t len = strlen(path);
        char *dir = malloc(len + 2);
        if (!dir)
            return PR_ENOMEM;
        memcpy(dir, path, len + 1);
        char *slash = strrchr(dir, '/');
        if (!slash)
            strcpy(dir, ".");
        else
            slash[slash == dir] = 0;   /* "/w" -> "/" */
        int ok = access(dir, W_OK | X_OK) == 0;
        free(dir);
        return ok ? PR_OK : PR_EIO;
    }
    if (access(path, R_OK | W_OK) != 0)
        return PR_EIO;
    return pr_toeplitz_wisdom_import(path);
}

int pr_toeplitz_wisdom_env_export(void)
{
    const char *path = getenv(PR_TOEPLITZ_WISDOM_ENV);
    return path && *path ? pr_toeplitz_wisdom_export(path) : PR_OK;
}
