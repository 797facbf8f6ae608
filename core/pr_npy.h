/* pr_npy: .npy files of little-endian float64 in C order; reads format versions 1.0-3.0,
 * writes 1.0. */
#ifndef PR_NPY_H
#define PR_NPY_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PR_NPY_MAXDIM 8

/* Reads the whole array; *data is malloc'ed (free it). Any malformed, truncated or
 * wrongly typed file gives its PR_ENPY_* status and leaves *data NULL; a shape whose size
 * overflows gives PR_ESIZE. Pipes are read too; a directory gives PR_EIO with errno EISDIR. */
int pr_npy_read(double **data, int *ndim, long shape[PR_NPY_MAXDIM], const char *path);

/* The same parser over the bytes buf[0..len) of a whole file (fuzzing, embedded data). */
int pr_npy_read_mem(double **data, int *ndim, long shape[PR_NPY_MAXDIM], const void *buf, size_t len);

/* As pr_npy_read, and also PR_ENPY_SHAPE unless the shape equals want[0..ndim). */
int pr_npy_read_shape(double **data, const char *path, int ndim, const long *want);

int pr_npy_write(const char *path, const double *data, int ndim, const long *shape);

#ifdef __cplusplus
}
#endif
#endif
