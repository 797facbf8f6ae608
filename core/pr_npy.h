/* pr_npy: .npy files in C order, as numpy writes them. Reads format versions 1.0-3.0 of
 * little-endian float64, float32 and float16 (widened exactly to double) and, when the caller
 * asks, bfloat16 saved as 16-bit integers ('<u2' or '<i2', the bits of each bfloat16); writes
 * float64, version 1.0. Attention arrays are (n, d), (h, n, d) or (b, h, n, d): pr_npy_heads. */
#ifndef PR_NPY_H
#define PR_NPY_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PR_NPY_MAXDIM 8

/* The element type of a file (the data are always returned as doubles, exactly). */
typedef enum {
    PR_NPY_F64 = 0, /* '<f8' */
    PR_NPY_F32,     /* '<f4' */
    PR_NPY_F16,     /* '<f2', IEEE binary16 */
    PR_NPY_BF16     /* '<u2' or '<i2' read with PR_NPY_ASK_BF16: bfloat16 bit patterns */
} pr_npy_dtype_t;

/* flags of pr_npy_load */
enum {
    PR_NPY_ASK_BF16 = 1 /* read '<u2' and '<i2' as bfloat16 (otherwise integers are refused) */
};

typedef struct {
    int ndim;
    long shape[PR_NPY_MAXDIM];
    pr_npy_dtype_t dtype;
    char descr[24]; /* the header's 'descr' as written ("" if not read that far), for messages */
} pr_npy_info_t;

/* Reads the whole array, widened to double; *data is malloc'ed (free it). Any malformed,
 * truncated or unsupported file gives its PR_ENPY_* status (pr_npy_hint says more for
 * PR_ENPY_DTYPE and PR_ENPY_ORDER) and leaves *data NULL and info->ndim 0; a shape whose size
 * overflows gives PR_ESIZE. Pipes are read too; a directory gives PR_EIO with errno EISDIR. */
int pr_npy_load(double **data, pr_npy_info_t *info, const char *path, int flags);

/* The header alone: info (shape, dtype) from the file's prefix and header, read as pr_npy_load
 * reads them, with its statuses for them; none of the data is read or checked (a short or long
 * file is pr_npy_load's to find). For checking sizes against a limit before reading the data. */
int pr_npy_peek(pr_npy_info_t *info, const char *path, int flags);

/* The same parser over the bytes buf[0..len) of a whole file (fuzzing, embedded data). */
int pr_npy_load_mem(double **data, pr_npy_info_t *info, const void *buf, size_t len, int flags);

/* After PR_ENPY_DTYPE or PR_ENPY_ORDER from a load into info: what is wrong with the file and
 * what to do, one phrase without a newline (e.g. "big-endian data; save arr.astype('<f4')").
 * For any other status, pr_strerror(status). Never NULL. */
const char *pr_npy_hint(int status, const pr_npy_info_t *info);

/* "float64", "float32", "float16", "bfloat16" */
const char *pr_npy_dtype_name(pr_npy_dtype_t dtype);

/* The spacing of dtype's numbers at x: 2^(max(e, emin) - p + 1) for 2^e <= |x| < 2^(e+1)
 * (p = 53, 24, 11, 8 significand bits; emin = -1022, -126, -14, -126), the least subnormal at
 * x = 0, NAN for a non-finite x. Exact (a power of two); for errors in units in the last place. */
double pr_npy_ulp(pr_npy_dtype_t dtype, double x);

/* The readers of earlier callers, without the dtype: pr_npy_load without flags (float64, float32
 * and float16 widened; 16-bit integers refused), the shape as ndim and shape[]. */
int pr_npy_read(double **data, int *ndim, long shape[PR_NPY_MAXDIM], const char *path);
int pr_npy_read_mem(double **data, int *ndim, long shape[PR_NPY_MAXDIM], const void *buf, size_t len);

/* As pr_npy_read, and also PR_ENPY_SHAPE unless the shape equals want[0..ndim). */
int pr_npy_read_shape(double **data, const char *path, int ndim, const long *want);

int pr_npy_write(const char *path, const double *data, int ndim, const long *shape);

/* Attention layout: (n, d) is b = h = 1, (h, n, d) is b = 1; head (bi, hi) is the n×d block
 * at offset ((bi·h + hi)·n)·d. */
typedef struct {
    long b, h, n, d;
} pr_npy_heads_t;

/* The layout of info's shape: PR_ENPY_SHAPE unless ndim is 2, 3 or 4 and every dimension > 0. */
int pr_npy_heads(pr_npy_heads_t *heads, const pr_npy_info_t *info);

/* Grouped-query attention: K or V (kv) may have fewer heads than Q (q). *group = q->h / kv->h,
 * so that query head hi reads kv head hi / *group. PR_ESHAPE unless b and n agree and kv->h
 * divides q->h (d is the caller's to compare: V may differ from K). */
int pr_npy_heads_group(long *group, const pr_npy_heads_t *q, const pr_npy_heads_t *kv);

#ifdef __cplusplus
}
#endif
#endif
