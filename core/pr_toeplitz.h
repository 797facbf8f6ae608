/* pr_toeplitz: the FFT Toeplitz engine over FFTW3 (issue 4; claim C4).
 *
 * Conventions (those of pr_posw.h sequences). A symbol t has length 2n-1 and holds t(ℓ) at
 * t[ℓ+n-1] for ℓ ∈ [-(n-1), n-1]. The Toeplitz matrix T of t acts on x ∈ R^n by
 *     (T x)_i = Σ_{j<n} t(i-j) x_j,          i < n,
 * its transpose by (Tᵀ x)_j = Σ_{i<n} t(i-j) x_i, and its causal (lower-triangular) part keeps
 * only ℓ = i-j ≥ 0. The correlation of x, y ∈ R^n is c(ℓ) = Σ_{i-j=ℓ} x_i y_j, stored like a symbol.
 *
 * How it works. T x is the first n entries of the cyclic convolution, of length L ≥ 2n-1, of the
 * circular embedding of t (t(ℓ) at ℓ mod L) with x padded by zeros. A plan fixes n and L, with L
 * chosen among FFTW's fast sizes 2^a 3^b 5^c 7^d (timed when measuring), and makes the r2c / c2r
 * plans. A spectrum is the r2c transform of length L: pr_toeplitz_spec_len(P) doubles holding
 * L/2+1 complex numbers (re, im interleaved, the layout of fftw_complex).
 *
 * Frequency-domain use (the fast forward/backward): transform each symbol once and each vector
 * once, multiply-accumulate spectra (Y += s·A∘B, or s·A∘conj(B) for the transpose and for the
 * correlation), and pay one inverse transform per sum:
 *     T x   = inverse(t̂ ∘ x̂)          Tᵀ x = inverse(x̂ ∘ conj(t̂))
 *     c     = inverse_sym(x̂ ∘ conj(ŷ))  (the correlation, all 2n-1 offsets)
 * Sums of such products are linear, so Σ_e s_e T_e x_e = inverse(Σ_e s_e t̂_e ∘ x̂_e).
 *
 * Plans, workspaces, threads. pr_toeplitz_plan does all FFTW planning and allocation; it takes an
 * internal lock, so it may be called from several threads, but FFTW planning done elsewhere in
 * the same process must not run concurrently with it. Every execute function takes a workspace
 * (scratch buffers and transform counters) and allocates nothing. Several threads may execute on
 * one plan at once, each with its own workspace (pr_toeplitz_work_init); passing ws = NULL uses
 * the plan's own workspace, for single-threaded callers only.
 *
 * Spectra passed to the engine should come from pr_toeplitz_spec_alloc (SIMD-aligned);
 * other pointers work but cost a copy per transform.
 *
 * Direct path. For small n a direct O(n²) loop beats the FFT. pr_toeplitz_plan times both for
 * the given n (unless a path is forced) and the apply functions below use the faster one; the
 * frequency-domain functions always use the FFT. The two paths agree to rounding (see
 * exact/pr_xtoeplitz.h for the certified error of either). For bit-for-bit reproducible
 * results across runs, force a path and plan with PR_TOEPLITZ_ESTIMATE (measuring may pick
 * another length or FFTW algorithm each run). */
#ifndef PR_TOEPLITZ_H
#define PR_TOEPLITZ_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Plan flags (bitwise or). */
enum {
    PR_TOEPLITZ_ESTIMATE = 0,     /* FFTW_ESTIMATE planning; L = smallest even 2^a3^b5^c ≥ 2n-1 */
    PR_TOEPLITZ_MEASURE = 1,      /* FFTW_MEASURE planning; L timed among fast sizes ≥ 2n-1 */
    PR_TOEPLITZ_FORCE_FFT = 2,    /* apply functions always use the FFT path */
    PR_TOEPLITZ_FORCE_DIRECT = 4, /* apply functions always use the direct O(n²) path */
    PR_TOEPLITZ_WISDOM_ONLY = 8,  /* FFTW_WISDOM_ONLY: fail with PR_EFFTW unless wisdom has the plan */
    PR_TOEPLITZ_MEASURE_FIXED = 16 /* FFTW_MEASURE for the ESTIMATE length only (no length search):
                                      the algorithm is timed, L is not */
};

/* Operation flags (bitwise or) for symbols and products. */
enum {
    PR_TOEPLITZ_FULL = 0,   /* T: all offsets */
    PR_TOEPLITZ_CAUSAL = 1, /* only offsets ℓ = i-j ≥ 0 (lower-triangular T) */
    PR_TOEPLITZ_TRANS = 2   /* the transpose (of the causal part with CAUSAL: upper-triangular) */
};

/* Per-thread scratch and counters. Counters accumulate; reset them by assigning 0. */
typedef struct {
    double *real;           /* L doubles, aligned: padded vector (entries n..L-1 stay zero) */
    double *real2;          /* L doubles, aligned: embedded symbol / inverse output */
    double *spec;           /* spec_len doubles, aligned: spectrum scratch */
    double *spec2;          /* spec_len doubles, aligned: second spectrum scratch */
    long n_forward;         /* r2c transforms done with this workspace */
    long n_inverse;         /* c2r transforms done */
    long n_direct;          /* products done by the direct path */
} pr_toeplitz_work_struct;
typedef pr_toeplitz_work_struct pr_toeplitz_work_t[1];

typedef struct {
    long n;                 /* matrix order */
    long L;                 /* transform length, ≥ 2n-1 */
    long nfreq;             /* L/2+1 complex frequencies */
    int use_direct;         /* 1 when the apply functions use the direct path */
    unsigned flags;         /* the plan flags */
    double t_direct;        /* seconds per product measured at plan time (0 if not measured) */
    double t_fft;           /* the same for the FFT path (two forward + one inverse + product) */
    void *fwd;              /* fftw_plan r2c, L → nfreq */
    void *inv;              /* fftw_plan c2r, nfreq → L */
    pr_toeplitz_work_struct own;   /* workspace used when ws = NULL */
} pr_toeplitz_plan_struct;
typedef pr_toeplitz_plan_struct pr_toeplitz_plan_t[1];

/* ---- plans ---- */

/* Plans products of order n ≥ 1. PR_EINVAL for n < 1 or bad flags, PR_ESIZE when L or a buffer
 * would not fit (L > INT_MAX for FFTW, or the bytes overflow size_t), PR_ENOMEM, PR_EFFTW. On
 * failure P holds nothing to free (pr_toeplitz_destroy on it is harmless). */
int pr_toeplitz_plan(pr_toeplitz_plan_t P, long n, unsigned flags);
void pr_toeplitz_destroy(pr_toeplitz_plan_t P);

/* Smallest m' ≥ m whose only prime factors are among 2, 3, 5, 7 and not above maxp
 * (maxp ∈ {2,3,5,7}); m' even when even != 0. 0 if m' would exceed LONG_MAX/8. */
long pr_toeplitz_good_size(long m, int maxp, int even);

/* Number of doubles in one spectrum: 2·(L/2+1). */
size_t pr_toeplitz_spec_len(const pr_toeplitz_plan_t P);
/* The same for transform length L, before a plan exists (dry runs). */
size_t pr_toeplitz_spec_len_of(long L);

/* count spectra, zeroed and SIMD-aligned (NULL on overflow or no memory); free with
 * pr_toeplitz_spec_free. Spectrum k starts at k·pr_toeplitz_spec_len(P). */
double *pr_toeplitz_spec_alloc(const pr_toeplitz_plan_t P, size_t count);
void pr_toeplitz_spec_free(double *spec);

/* Per-thread workspace for P (allocates). */
int pr_toeplitz_work_init(pr_toeplitz_work_t ws, const pr_toeplitz_plan_t P);
/* Bytes pr_toeplitz_work_init allocates for transform length L (dry runs count it before a plan
 * exists). */
double pr_toeplitz_work_bytes(long L);
/* (a pointer, not pr_toeplitz_work_t: GCC's array-parameter check misfires on a workspace inside
 * an array of thread structs, -Wstringop-overflow) */
void pr_toeplitz_work_clear(pr_toeplitz_work_struct *ws);

/* ---- frequency domain (always FFT; one transform each) ---- */

/* that = spectrum of the circular embedding of the symbol t (2n-1 entries); with
 * PR_TOEPLITZ_CAUSAL the offsets ℓ < 0 are dropped, with PR_TOEPLITZ_TRANS t(ℓ) ↦ t(-ℓ).
 * PR_ENONFINITE if t has a NaN or Inf (that is then left unchanged). */
int pr_toeplitz_symbol_spec(double *that, const double *t, unsigned op,
                            const pr_toeplitz_plan_t P, pr_toeplitz_work_struct *ws);

/* xhat = spectrum of x (n entries x[0], x[incx], ..., incx ≥ 1) padded with zeros.
 * PR_ENONFINITE if x has a NaN or Inf. */
int pr_toeplitz_vec_spec(double *xhat, const double *x, long incx,
                         const pr_toeplitz_plan_t P, pr_toeplitz_work_struct *ws);

/* pr_toeplitz_vec_spec of the products u[j]·x[j·incx] (the same bits as forming them first,
 * without the pass over a vector of them). PR_ENONFINITE if a product is a NaN or Inf. */
int pr_toeplitz_vec_spec_mul(double *xhat, const double *u, const double *x, long incx,
                             const pr_toeplitz_plan_t P, pr_toeplitz_work_struct *ws);

/* Y += scale · A ∘ B (entrywise complex product). Y may alias neither A nor B. */
void pr_toeplitz_spec_mac(double *Y, const double *A, const double *B, double scale,
                          const pr_toeplitz_plan_t P);
/* Y += scale · A ∘ conj(B): transposed products (A = x̂, B = t̂) and correlations. */
void pr_toeplitz_spec_mac_conj(double *Y, const double *A, const double *B, double scale,
                               const pr_toeplitz_plan_t P);
/* Y = Σ_{c<count} A_c ∘ conj(B_c), A_c = A + c·spec_len, B_c likewise, in one pass (the same sums,
 * in the same order, as zero then count calls of pr_toeplitz_spec_mac_conj with scale 1). */
void pr_toeplitz_spec_sum_conj(double *Y, const double *A, const double *B, int count,
                               const pr_toeplitz_plan_t P);
/* Y = 0 */
void pr_toeplitz_spec_zero(double *Y, const pr_toeplitz_plan_t P);

/* y[i·incy] = entry i < n of the inverse transform of Yhat (scaled by 1/L): the product.
 * Yhat is destroyed (FFTW's c2r overwrites its input). */
int pr_toeplitz_spec_inverse(double *y, long incy, double *Yhat,
                             const pr_toeplitz_plan_t P, pr_toeplitz_work_struct *ws);
/* The inverse transform of Yhat unscaled (its first n entries times 1/P->L are
 * pr_toeplitz_spec_inverse's), in ws: valid until ws's next transform. For callers that scale it
 * straight into their own sums. Yhat is destroyed. */
const double *pr_toeplitz_spec_inverse_raw(double *Yhat, const pr_toeplitz_plan_t P, pr_toeplitz_work_struct *ws);
/* c[ℓ+n-1] = entry ℓ mod L of the inverse transform, ℓ ∈ [-(n-1), n-1]: a correlation or a
 * symbol. Yhat is destroyed. */
int pr_toeplitz_spec_inverse_sym(double *c, double *Yhat,
                                 const pr_toeplitz_plan_t P, pr_toeplitz_work_struct *ws);

/* ---- products (direct or FFT as the plan chose) ----
 * Inputs are checked as they are read: on PR_ENONFINITE (NaN/Inf input) or PR_EDOMAIN (a finite
 * input whose product overflows) the outputs are unspecified. */

/* y = op(T) x for one symbol t and one x. */
int pr_toeplitz_apply(double *y, long incy, const double *t, const double *x, long incx,
                      unsigned op, const pr_toeplitz_plan_t P, pr_toeplitz_work_struct *ws);

/* Many vectors sharing one T: Y_k = op(T) X_k for k < count, where X_k has entries
 * X[k·ldx + j·incx] and Y_k entries Y[k·ldy + i·incy] (columns of a row-major n×d matrix:
 * incx = d, ldx = 1). One symbol transform, then one forward + one inverse per vector. */
int pr_toeplitz_apply_many(double *Y, long incy, long ldy, const double *t,
                           const double *X, long incx, long ldx, long count, unsigned op,
                           const pr_toeplitz_plan_t P, pr_toeplitz_work_struct *ws);

/* Many symbols against one x: Y_k = op(T_k) x, T_k with symbol ts[k·ldt ...] (ldt ≥ 2n-1),
 * Y_k at Y[k·ldy + i·incy]. One vector transform, then one symbol + one inverse per k. */
int pr_toeplitz_apply_symbols(double *Y, long incy, long ldy, const double *ts, long ldt,
                              const double *x, long incx, long count, unsigned op,
                              const pr_toeplitz_plan_t P, pr_toeplitz_work_struct *ws);

/* Correlation c[ℓ+n-1] = Σ_{i-j=ℓ} x_i y_j, ℓ ∈ [-(n-1), n-1] (the backward's dw). */
int pr_toeplitz_correlate(double *c, const double *x, long incx, const double *y, long incy,
                          const pr_toeplitz_plan_t P, pr_toeplitz_work_struct *ws);

/* ---- FFTW wisdom (process-wide; serialised with planning) ---- */

/* Imports wisdom from a file written by pr_toeplitz_wisdom_export (or fftw-wisdom).
 * PR_EIO if the file cannot be read or is not FFTW wisdom. */
int pr_toeplitz_wisdom_import(const char *path);
/* Exports all accumulated wisdom to path. PR_EIO on failure. */
int pr_toeplitz_wisdom_export(const char *path);
/* The environment variable the command line reads: if set, every polyrope command imports
 * wisdom from that file before it runs (a missing file is not an error) and exports to it after. */
#define PR_TOEPLITZ_WISDOM_ENV "POLYROPE_FFTW_WISDOM"
/* Import from $POLYROPE_FFTW_WISDOM: PR_OK if unset, empty or the file does not exist yet (and
 * its directory is writable); PR_EIO if it exists but cannot be read as wisdom or written, or it
 * does not exist and cannot be created: the export after the work would fail. */
int pr_toeplitz_wisdom_env_import(void);
/* Export to $POLYROPE_FFTW_WISDOM if set and not empty: PR_OK or PR_EIO. */
int pr_toeplitz_wisdom_env_export(void);

#ifdef __cplusplus
}
#endif
#endif
